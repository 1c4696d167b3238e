/* Unit tests of berth-control's pieces in process: SigV4 verification against a request signed
 * by curl, the store's migrations, and the dispatcher's Clusters API on an in-memory store. */
#include "controlplane/internal.h"
#include "lib/cleanup.h"
#include "tests/support/support.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A request curl 7.88 signed (--aws-sigv4 aws:amz:us-east-1:ecs) with the key below. */
#define VEC_KEY "BKIAUNITTESTKEY00001"
#define VEC_SECRET "unitTestSecretKey/0123456789abcdefghijklmn"
#define VEC_DATE "20261122T153753Z"
#define VEC_TIME ((time_t)1795361873) /* VEC_DATE as Unix time */
#define VEC_BODY "{\"maxResults\":5}"
#define VEC_AUTH                                                                                   \
  "AWS4-HMAC-SHA256 Credential=" VEC_KEY "/20261122/us-east-1/ecs/aws4_request, "                  \
  "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "                                      \
  "Signature=88e51947816e95842b15ba11614034beec06b30b6cba94741a8a8da4baca0440"

typedef struct vec_headers
{
  const char *names[8];
  const char *values[8];
} vec_headers;

static char *vec_header (void *cls, const char *name)
{
  vec_headers *h = cls;
  for (int i = 0; i < 8 && h->names[i]; i++)
    if (strcasecmp (h->names[i], name) == 0)
      return h->values[i] ? strdup (h->values[i]) : NULL;
  return NULL;
}

static vec_headers vec_default (void)
{
  vec_headers h = {
    .names = { "Host", "Authorization", "X-Amz-Date", "Content-Type", "X-Amz-Target" },
    .values = { "127.0.0.1:18420", VEC_AUTH, VEC_DATE, "application/x-amz-json-1.1",
                "AmazonEC2ContainerServiceV20141113.ListClusters" },
  };
  return h;
}

static cp_store *vec_store (enum cp_role role)
{
  cp_store *store = NULL;
  berr *err = NULL;
  cp_credential c = { .access_key_id = VEC_KEY, .secret = VEC_SECRET, .role = role };
  ck_assert_int_eq (cp_store_open (":memory:", &store, &err), 0);
  ck_assert_int_eq (cp_store_add_credential (store, &c, &err), 0);
  return store;
}

/* Verifies the vector with headers h and body at time now; returns the fault type or "ok". */
static const char *vec_verify (cp_store *store, vec_headers *h, const char *body, time_t now,
                               enum cp_role *role)
{
  static cp_fault fault;
  cp_http_request req = { .method = "POST",
                          .path = "/",
                          .canonical_query = "",
                          .body = body,
                          .body_len = strlen (body),
                          .header = vec_header,
                          .cls = h };
  memset (&fault, 0, sizeof fault);
  if (cp_sigv4_verify (store, &req, "us-east-1", now, role, &fault) == 0)
    return "ok";
  return fault.type;
}

START_TEST (test_sigv4_accepts_request_signed_by_curl_with_the_keys_role)
{
  enum cp_role role = CP_ROLE_ADMIN;
  vec_headers h = vec_default ();
  cp_store *admin = vec_store (CP_ROLE_ADMIN), *agent = vec_store (CP_ROLE_AGENT);
  ck_assert_str_eq (vec_verify (admin, &h, VEC_BODY, VEC_TIME + 60, &role), "ok");
  ck_assert_int_eq (role, CP_ROLE_ADMIN);
  ck_assert_str_eq (vec_verify (agent, &h, VEC_BODY, VEC_TIME - 60, &role), "ok");
  ck_assert_int_eq (role, CP_ROLE_AGENT);
  cp_store_free (admin);
  cp_store_free (agent);
}
END_TEST

START_TEST (test_sigv4_rejects_a_signature_more_than_15_minutes_old_or_ahead)
{
  enum cp_role role;
  vec_headers h = vec_default ();
  cp_store *store = vec_store (CP_ROLE_ADMIN);
  ck_assert_str_eq (vec_verify (store, &h, VEC_BODY, VEC_TIME + 15 * 60, &role), "ok");
  ck_assert_str_eq (vec_verify (store, &h, VEC_BODY, VEC_TIME + 15 * 60 + 1, &role),
                    "InvalidSignatureException");
  ck_assert_str_eq (vec_verify (store, &h, VEC_BODY, VEC_TIME - 15 * 60 - 1, &role),
                    "InvalidSignatureException");
  cp_store_free (store);
}
END_TEST

START_TEST (test_sigv4_rejects_a_changed_body_header_or_signature)
{
  enum cp_role role;
  vec_headers h = vec_default ();
  cp_store *store = vec_store (CP_ROLE_ADMIN);
  ck_assert_str_eq (vec_verify (store, &h, "{\"maxResults\":6}", VEC_TIME, &role),
                    "InvalidSignatureException");
  h.values[4] = "AmazonEC2ContainerServiceV20141113.DeleteCluster";
  ck_assert_str_eq (vec_verify (store, &h, VEC_BODY, VEC_TIME, &role), "InvalidSignatureException");
  h = vec_default ();
  h.values[0] = "evil.example:80";
  ck_assert_str_eq (vec_verify (store, &h, VEC_BODY, VEC_TIME, &role), "InvalidSignatureException");
  h = vec_default ();
  h.values[1] = "AWS4-HMAC-SHA256 Credential=" VEC_KEY "/20261122/us-east-1/ecs/aws4_request, "
                "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
                "Signature=88e51947816e95842b15ba11614034beec06b30b6cba94741a8a8da4baca0441";
  ck_assert_str_eq (vec_verify (store, &h, VEC_BODY, VEC_TIME, &role), "InvalidSignatureException");
  cp_store_free (store);
}
END_TEST

START_TEST (test_sigv4_rejects_unsigned_unknown_key_and_wrong_scope)
{
  enum cp_role role;
  vec_headers h = vec_default ();
  cp_store *store = vec_store (CP_ROLE_ADMIN), *empty = NULL;
  berr *err = NULL;
  ck_assert_int_eq (cp_store_open (":memory:", &empty, &err), 0);
  ck_assert_str_eq (vec_verify (empty, &h, VEC_BODY, VEC_TIME, &role),
                    "UnrecognizedClientException");
  h.values[1] = NULL;
  ck_assert_str_eq (vec_verify (store, &h, VEC_BODY, VEC_TIME, &role),
                    "MissingAuthenticationTokenException");
  h.values[1] = "AWS4-HMAC-SHA256 Credential=" VEC_KEY "/20261122/us-east-1/ecs/aws4_request";
  ck_assert_str_eq (vec_verify (store, &h, VEC_BODY, VEC_TIME, &role),
                    "IncompleteSignatureException");
  h.values[1] = "AWS4-HMAC-SHA256 Credential=" VEC_KEY "/20261122/us-east-1/s3/aws4_request, "
                "SignedHeaders=host;x-amz-date, Signature=00";
  ck_assert_str_eq (vec_verify (store, &h, VEC_BODY, VEC_TIME, &role), "InvalidSignatureException");
  h.values[1] = "AWS4-HMAC-SHA256 Credential=" VEC_KEY "/20261122/eu-west-1/ecs/aws4_request, "
                "SignedHeaders=host;x-amz-date, Signature=00";
  ck_assert_str_eq (vec_verify (store, &h, VEC_BODY, VEC_TIME, &role), "InvalidSignatureException");
  h.values[1] = "AWS4-HMAC-SHA256 Credential=" VEC_KEY "/20261122/us-east-1/ecs/aws4_request, "
                "SignedHeaders=x-amz-date, Signature=00";
  ck_assert_str_eq (vec_verify (store, &h, VEC_BODY, VEC_TIME, &role),
                    "IncompleteSignatureException");
  h = vec_default ();
  h.values[2] = NULL;
  ck_assert_str_eq (vec_verify (store, &h, VEC_BODY, VEC_TIME, &role),
                    "IncompleteSignatureException");
  cp_store_free (store);
  cp_store_free (empty);
}
END_TEST

START_TEST (test_store_migrates_once_and_keeps_data_across_reopen)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("cp-store");
  _cleanup_free_ char *path = NULL;
  cp_store *store = NULL;
  berr *err = NULL;
  int version = 0;
  cp_cluster c = { .name = (char *)"kept", .status = (char *)"ACTIVE", .created_at = 7 };
  ck_assert_int_ge (asprintf (&path, "%s/db", dir), 0);
  ck_assert_int_eq (cp_store_open (path, &store, &err), 0);
  ck_assert_int_eq (cp_store_schema_version (store, &version, &err), 0);
  ck_assert_int_eq (version, 5);
  ck_assert_int_eq (cp_store_put_cluster (store, &c, &err), 0);
  cp_store_free (store);
  ck_assert_int_eq (cp_store_open (path, &store, &err), 0);
  ck_assert_int_eq (cp_store_schema_version (store, &version, &err), 0);
  ck_assert_int_eq (version, 5);
  cp_cluster got = { 0 };
  ck_assert_int_eq (cp_store_get_cluster (store, "kept", &got, &err), 1);
  ck_assert_str_eq (got.status, "ACTIVE");
  ck_assert_int_eq (got.created_at, 7);
  cp_cluster_clear (&got);
  cp_store_free (store);
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_store_credentials_are_generated_once)
{
  cp_store *store = NULL;
  berr *err = NULL;
  cp_credential a[2], b[2];
  bool created;
  ck_assert_int_eq (cp_store_open (":memory:", &store, &err), 0);
  ck_assert_int_eq (cp_store_ensure_credentials (store, a, &created, &err), 0);
  ck_assert (created);
  ck_assert_int_eq (cp_store_ensure_credentials (store, b, &created, &err), 0);
  ck_assert (!created);
  ck_assert_str_eq (a[0].access_key_id, b[0].access_key_id);
  ck_assert_str_eq (a[1].secret, b[1].secret);
  ck_assert_int_eq (b[0].role, CP_ROLE_ADMIN);
  ck_assert_int_eq (b[1].role, CP_ROLE_AGENT);
  ck_assert_int_eq (strlen (a[0].access_key_id), 20);
  ck_assert_int_eq (strlen (a[0].secret), 40);
  ck_assert_str_ne (a[0].secret, a[1].secret);
  cp_store_free (store);
}
END_TEST

/* Calls action with body; returns the parsed response and sets *status. */
static cJSON *call (cp_ctx *ctx, enum cp_role role, const char *action, const char *body,
                    int *status)
{
  char *resp = NULL;
  *status = cp_dispatch (ctx, role, action, body, strlen (body), &resp);
  ck_assert_ptr_nonnull (resp);
  cJSON *j = cJSON_Parse (resp);
  free (resp);
  ck_assert_ptr_nonnull (j);
  return j;
}

static const char *error_type (cJSON *j)
{
  cJSON *t = cJSON_GetObjectItem (j, "__type");
  return t && cJSON_IsString (t) ? t->valuestring : "none";
}

/* Asserts the call fails with status 400 and the given __type. */
static void expect_error (cp_ctx *ctx, enum cp_role role, const char *action, const char *body,
                          const char *type)
{
  int status;
  cJSON *j = call (ctx, role, action, body, &status);
  ck_assert_msg (status == 400 && strcmp (error_type (j), type) == 0, "%s %s: %d %s (want %s)",
                 action, body, status, error_type (j), type);
  cJSON_Delete (j);
}

static cp_ctx *mem_ctx (void)
{
  cp_ctx *ctx = NULL;
  berr *err = NULL;
  ck_assert_int_eq (cp_ctx_open (":memory:", "eu-west-3", "123456789012", &ctx, &err), 0);
  return ctx;
}

START_TEST (test_dispatch_cluster_lifecycle_with_ecs_shapes)
{
  cp_ctx *ctx = mem_ctx ();
  int status;
  cJSON *j
      = call (ctx, CP_ROLE_ADMIN, "CreateCluster",
              "{\"clusterName\":\"web\",\"tags\":[{\"key\":\"team\",\"value\":\"a\"}]}", &status);
  ck_assert_int_eq (status, 200);
  cJSON *c = cJSON_GetObjectItem (j, "cluster");
  ck_assert_str_eq (cJSON_GetObjectItem (c, "clusterArn")->valuestring,
                    "arn:aws:ecs:eu-west-3:123456789012:cluster/web");
  ck_assert_str_eq (cJSON_GetObjectItem (c, "status")->valuestring, "ACTIVE");
  cJSON_Delete (j);

  j = call (ctx, CP_ROLE_ADMIN, "DescribeClusters",
            "{\"clusters\":[\"arn:aws:ecs:eu-west-3:123456789012:cluster/web\",\"nope\","
            "\"arn:aws:ecs:us-east-1:123456789012:cluster/web\"],\"include\":[\"TAGS\"]}",
            &status);
  ck_assert_int_eq (status, 200);
  cJSON *clusters = cJSON_GetObjectItem (j, "clusters"),
        *failures = cJSON_GetObjectItem (j, "failures");
  ck_assert_int_eq (cJSON_GetArraySize (clusters), 1);
  cJSON *tag
      = cJSON_GetArrayItem (cJSON_GetObjectItem (cJSON_GetArrayItem (clusters, 0), "tags"), 0);
  ck_assert_str_eq (cJSON_GetObjectItem (tag, "value")->valuestring, "a");
  ck_assert_int_eq (cJSON_GetArraySize (failures), 2);
  cJSON *f = cJSON_GetArrayItem (failures, 0);
  ck_assert_str_eq (cJSON_GetObjectItem (f, "arn")->valuestring,
                    "arn:aws:ecs:eu-west-3:123456789012:cluster/nope");
  ck_assert_str_eq (cJSON_GetObjectItem (f, "reason")->valuestring, "MISSING");
  cJSON_Delete (j);

  j = call (ctx, CP_ROLE_ADMIN, "DeleteCluster", "{\"cluster\":\"web\"}", &status);
  ck_assert_int_eq (status, 200);
  ck_assert_str_eq (cJSON_GetObjectItem (cJSON_GetObjectItem (j, "cluster"), "status")->valuestring,
                    "INACTIVE");
  cJSON_Delete (j);
  expect_error (ctx, CP_ROLE_ADMIN, "DeleteCluster", "{\"cluster\":\"web\"}",
                "ClusterNotFoundException");
  j = call (ctx, CP_ROLE_ADMIN, "ListClusters", "", &status);
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (j, "clusterArns")), 0);
  cJSON_Delete (j);
  cp_ctx_free (ctx);
}
END_TEST

START_TEST (test_dispatch_list_clusters_pages_through_every_cluster_once)
{
  cp_ctx *ctx = mem_ctx ();
  int status, seen = 0, pages = 0;
  char body[700];
  for (int i = 0; i < 7; i++)
    {
      snprintf (body, sizeof body, "{\"clusterName\":\"c%d\"}", i);
      cJSON_Delete (call (ctx, CP_ROLE_ADMIN, "CreateCluster", body, &status));
      ck_assert_int_eq (status, 200);
    }
  char token[600] = "";
  do
    {
      if (token[0])
        snprintf (body, sizeof body, "{\"maxResults\":3,\"nextToken\":\"%s\"}", token);
      else
        snprintf (body, sizeof body, "{\"maxResults\":3}");
      cJSON *j = call (ctx, CP_ROLE_ADMIN, "ListClusters", body, &status);
      ck_assert_int_eq (status, 200);
      seen += cJSON_GetArraySize (cJSON_GetObjectItem (j, "clusterArns"));
      cJSON *next = cJSON_GetObjectItem (j, "nextToken");
      snprintf (token, sizeof token, "%s", next ? next->valuestring : "");
      cJSON_Delete (j);
      pages++;
    }
  while (token[0]);
  ck_assert_int_eq (seen, 7);
  ck_assert_int_eq (pages, 3);
  cp_ctx_free (ctx);
}
END_TEST

START_TEST (test_dispatch_refuses_bad_input_with_ecs_errors)
{
  cp_ctx *ctx = mem_ctx ();
  expect_error (ctx, CP_ROLE_ADMIN, "CreateCluster", "{\"clusterName\":", "SerializationException");
  expect_error (ctx, CP_ROLE_ADMIN, "CreateCluster", "[1]", "SerializationException");
  expect_error (ctx, CP_ROLE_ADMIN, "CreateCluster", "{\"clusterName\":5}",
                "SerializationException");
  expect_error (ctx, CP_ROLE_ADMIN, "CreateCluster", "{\"clusterName\":\"a b\"}",
                "InvalidParameterException");
  char longname[300];
  memset (longname, 'x', 256);
  longname[256] = '\0';
  char body[400];
  snprintf (body, sizeof body, "{\"clusterName\":\"%s\"}", longname);
  expect_error (ctx, CP_ROLE_ADMIN, "CreateCluster", body, "InvalidParameterException");
  expect_error (ctx, CP_ROLE_ADMIN, "CreateCluster",
                "{\"tags\":[{\"key\":\"aws:x\",\"value\":\"v\"}]}", "InvalidParameterException");
  expect_error (ctx, CP_ROLE_ADMIN, "CreateCluster",
                "{\"settings\":[{\"name\":\"containerInsights\",\"value\":\"maybe\"}]}",
                "InvalidParameterException");
  expect_error (ctx, CP_ROLE_ADMIN, "ListClusters", "{\"maxResults\":0}",
                "InvalidParameterException");
  expect_error (ctx, CP_ROLE_ADMIN, "ListClusters", "{\"maxResults\":1e300}",
                "InvalidParameterException");
  expect_error (ctx, CP_ROLE_ADMIN, "ListClusters", "{\"nextToken\":\"zz\"}",
                "InvalidParameterException");
  expect_error (ctx, CP_ROLE_ADMIN, "DescribeClusters", "{\"include\":[\"NOPE\"]}",
                "InvalidParameterException");
  expect_error (ctx, CP_ROLE_ADMIN, "DeleteCluster", "{}", "InvalidParameterException");
  expect_error (ctx, CP_ROLE_ADMIN, "Frobnicate", "{}", "UnknownOperationException");
  expect_error (ctx, CP_ROLE_AGENT, "DeleteCluster", "{}", "AccessDeniedException");
  cp_ctx_free (ctx);
}
END_TEST

START_TEST (test_parse_listen_recognises_loopback_addresses)
{
  char host[64];
  uint16_t port;
  bool lo;
  berr *err = NULL;
  ck_assert_int_eq (cp_parse_listen ("127.0.0.1:8420", host, sizeof host, &port, &lo, &err), 0);
  ck_assert (lo);
  ck_assert_int_eq (port, 8420);
  ck_assert_int_eq (cp_parse_listen ("[::1]:9", host, sizeof host, &port, &lo, &err), 0);
  ck_assert (lo);
  ck_assert_str_eq (host, "::1");
  ck_assert_int_eq (cp_parse_listen ("localhost:1", host, sizeof host, &port, &lo, &err), 0);
  ck_assert (lo);
  ck_assert_int_eq (cp_parse_listen ("0.0.0.0:1", host, sizeof host, &port, &lo, &err), 0);
  ck_assert (!lo);
  ck_assert_int_lt (cp_parse_listen ("1.2.3.4", host, sizeof host, &port, &lo, &err), 0);
  berr_free (&err);
  ck_assert_int_lt (cp_parse_listen ("1.2.3.4:70000", host, sizeof host, &port, &lo, &err), 0);
  berr_free (&err);
  ck_assert_int_lt (cp_parse_listen ("example.com:80", host, sizeof host, &port, &lo, &err), 0);
  berr_free (&err);
}
END_TEST

static Suite *controlplane_suite (void)
{
  Suite *s = suite_create ("controlplane");
  TCase *tc = tcase_create ("core");
  tcase_add_test (tc, test_sigv4_accepts_request_signed_by_curl_with_the_keys_role);
  tcase_add_test (tc, test_sigv4_rejects_a_signature_more_than_15_minutes_old_or_ahead);
  tcase_add_test (tc, test_sigv4_rejects_a_changed_body_header_or_signature);
  tcase_add_test (tc, test_sigv4_rejects_unsigned_unknown_key_and_wrong_scope);
  tcase_add_test (tc, test_store_migrates_once_and_keeps_data_across_reopen);
  tcase_add_test (tc, test_store_credentials_are_generated_once);
  tcase_add_test (tc, test_dispatch_cluster_lifecycle_with_ecs_shapes);
  tcase_add_test (tc, test_dispatch_list_clusters_pages_through_every_cluster_once);
  tcase_add_test (tc, test_dispatch_refuses_bad_input_with_ecs_errors);
  tcase_add_test (tc, test_parse_listen_recognises_loopback_addresses);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (controlplane_suite ());
}
