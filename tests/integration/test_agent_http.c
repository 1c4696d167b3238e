/* Integration tests of berth-agent's HTTP client against a real berth-control on loopback: signed
 * AWS JSON 1.1 calls on an sd-event loop, ECS errors, roles, rotation, timeouts. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "tests/support/cp.h"
#include "tests/support/script.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct outcome
{
  int done;
  long status;
  int curl_code;
  bool retryable;
  char error_type[128];
  char message[512];
  cJSON *body; /* a copy */
} outcome;

static void on_done (const agent_http_result *res, void *userdata)
{
  outcome *o = userdata;
  o->done++;
  o->status = res->status;
  o->curl_code = res->curl_code;
  o->retryable = agent_http_retryable (res);
  snprintf (o->error_type, sizeof o->error_type, "%s", res->error_type ? res->error_type : "");
  snprintf (o->message, sizeof o->message, "%s",
            res->error_message ? res->error_message
                               : (res->transport_error ? res->transport_error : ""));
  o->body = res->body ? cJSON_Duplicate (res->body, true) : NULL;
}

typedef struct client
{
  sd_event *ev;
  agent_credprov *creds;
  agent_http *http;
  char *env[3];
} client;

static void client_open_ca (client *c, const char *endpoint, const char *creds_file,
                            const char *profile, const char *ca_file)
{
  _cleanup_berr_ berr *err = NULL;
  memset (c, 0, sizeof *c);
  ck_assert_int_ge (asprintf (&c->env[0], "AWS_SHARED_CREDENTIALS_FILE=%s", creds_file), 0);
  ck_assert_int_ge (asprintf (&c->env[1], "AWS_PROFILE=%s", profile), 0);
  ck_assert_int_eq (sd_event_new (&c->ev), 0);
  ck_assert_int_eq (agent_credprov_new (c->env, &c->creds, &err), 0);
  agent_http_opts o
      = { .endpoint = endpoint, .region = "us-east-1", .creds = c->creds, .ca_file = ca_file };
  ck_assert_msg (agent_http_new (c->ev, &o, &c->http, &err) == 0, "%s", err ? err->msg : "");
}

static void client_open (client *c, const char *endpoint, const char *creds_file,
                         const char *profile)
{
  client_open_ca (c, endpoint, creds_file, profile, NULL);
}

static void client_close (client *c)
{
  agent_http_free (c->http);
  agent_credprov_free (c->creds);
  sd_event_unref (c->ev);
  free (c->env[0]);
  free (c->env[1]);
}

/* Runs the loop until every request finished, or fails after timeout_s. */
static void run_until_idle (client *c, int timeout_s)
{
  time_t end = time (NULL) + timeout_s;
  while (agent_http_in_flight (c->http) > 0)
    {
      ck_assert_msg (time (NULL) < end, "requests still in flight after %d s", timeout_s);
      ck_assert_int_ge (sd_event_run (c->ev, 100000), 0);
    }
}

static void call (client *c, const char *action, const char *body, long timeout_ms, outcome *o)
{
  _cleanup_free_ char *target = NULL;
  _cleanup_berr_ berr *err = NULL;
  cJSON *j = cJSON_Parse (body);
  ck_assert_ptr_nonnull (j);
  ck_assert_int_ge (asprintf (&target, AGENT_ECS_TARGET_PREFIX "%s", action), 0);
  ck_assert_msg (agent_http_call (c->http, target, j, timeout_ms, on_done, o, &err) == 0, "%s",
                 err ? err->msg : "");
  cJSON_Delete (j);
}

static char *endpoint_of (int port)
{
  char *e = NULL;
  ck_assert_int_ge (asprintf (&e, "http://127.0.0.1:%d", port), 0);
  return e;
}

static char *creds_of (const ts_cp *cp)
{
  char *p = NULL;
  ck_assert_int_ge (asprintf (&p, "%s/credentials", cp->dir), 0);
  return p;
}

START_TEST (test_admin_key_creates_and_lists_clusters_through_the_loop)
{
  ts_cp cp;
  ts_cp_setup (&cp);
  _cleanup_free_ char *ep = endpoint_of (cp.port), *creds = creds_of (&cp);
  client c;
  client_open (&c, ep, creds, "admin");
  outcome created = { 0 }, listed = { 0 };
  call (&c, "CreateCluster", "{\"clusterName\":\"agent-http\"}", 10000, &created);
  run_until_idle (&c, 20);
  ck_assert_msg (created.status == 200, "status %ld: %s %s", created.status, created.error_type,
                 created.message);
  const cJSON *cluster = cJSON_GetObjectItem (created.body, "cluster");
  ck_assert_str_eq (ts_json_str (cluster, "clusterName"), "agent-http");
  call (&c, "ListClusters", "{}", 10000, &listed);
  run_until_idle (&c, 20);
  ck_assert_int_eq (listed.status, 200);
  _cleanup_free_ char *arns = cJSON_PrintUnformatted (listed.body);
  ck_assert_ptr_nonnull (strstr (arns, ":cluster/agent-http"));
  /* The aws CLI sees the same cluster: the call really reached the control plane's store. */
  cJSON *cli = ts_cp_aws_ok (&cp, "describe-clusters --clusters agent-http");
  ck_assert_str_eq (
      ts_json_str (cJSON_GetArrayItem (cJSON_GetObjectItem (cli, "clusters"), 0), "status"),
      "ACTIVE");
  cJSON_Delete (cli);
  cJSON_Delete (created.body);
  cJSON_Delete (listed.body);
  client_close (&c);
  ts_cp_teardown (&cp);
}
END_TEST

START_TEST (test_agent_key_gets_access_denied_on_an_admin_action)
{
  ts_cp cp;
  ts_cp_setup (&cp);
  _cleanup_free_ char *ep = endpoint_of (cp.port), *creds = creds_of (&cp);
  client c;
  client_open (&c, ep, creds, "agent");
  outcome o = { 0 };
  call (&c, "DeleteCluster", "{\"cluster\":\"nope\"}", 10000, &o);
  run_until_idle (&c, 20);
  ck_assert_int_eq (o.done, 1);
  ck_assert_int_eq (o.status, 400);
  ck_assert_str_eq (o.error_type, "AccessDeniedException");
  ck_assert (!o.retryable);
  cJSON_Delete (o.body);
  client_close (&c);
  ts_cp_teardown (&cp);
}
END_TEST

START_TEST (test_ecs_errors_carry_type_and_message)
{
  ts_cp cp;
  ts_cp_setup (&cp);
  _cleanup_free_ char *ep = endpoint_of (cp.port), *creds = creds_of (&cp);
  client c;
  client_open (&c, ep, creds, "admin");
  outcome missing = { 0 }, unknown = { 0 };
  call (&c, "DeleteCluster", "{\"cluster\":\"never-made\"}", 10000, &missing);
  call (&c, "NoSuchAction", "{}", 10000, &unknown);
  run_until_idle (&c, 20);
  ck_assert_int_eq (missing.status, 400);
  ck_assert_str_eq (missing.error_type, "ClusterNotFoundException");
  ck_assert_int_gt (strlen (missing.message), 0);
  ck_assert (!missing.retryable);
  ck_assert_str_eq (unknown.error_type, "UnknownOperationException");
  cJSON_Delete (missing.body);
  cJSON_Delete (unknown.body);
  client_close (&c);
  ts_cp_teardown (&cp);
}
END_TEST

START_TEST (test_many_requests_share_one_loop)
{
  ts_cp cp;
  ts_cp_setup (&cp);
  _cleanup_free_ char *ep = endpoint_of (cp.port), *creds = creds_of (&cp);
  client c;
  client_open (&c, ep, creds, "admin");
  outcome o[8] = { 0 };
  for (int i = 0; i < 8; i++)
    {
      char body[64];
      snprintf (body, sizeof body, "{\"clusterName\":\"c%d\"}", i);
      call (&c, "CreateCluster", body, 10000, &o[i]);
    }
  ck_assert_uint_eq (agent_http_in_flight (c.http), 8);
  run_until_idle (&c, 30);
  for (int i = 0; i < 8; i++)
    {
      ck_assert_int_eq (o[i].done, 1);
      ck_assert_int_eq (o[i].status, 200);
      cJSON_Delete (o[i].body);
    }
  client_close (&c);
  ts_cp_teardown (&cp);
}
END_TEST

/* Replaces path by rename, as credential rotation tools do. */
static void write_creds (const char *path, const char *text)
{
  _cleanup_free_ char *tmp = NULL;
  ck_assert_int_ge (asprintf (&tmp, "%s.new", path), 0);
  FILE *f = fopen (tmp, "we");
  ck_assert_ptr_nonnull (f);
  fputs (text, f);
  ck_assert_int_eq (fclose (f), 0);
  ck_assert_int_eq (rename (tmp, path), 0);
}

START_TEST (test_rotated_credentials_are_used_by_the_next_request)
{
  ts_cp cp;
  ts_cp_setup (&cp);
  _cleanup_free_ char *ep = endpoint_of (cp.port), *real = creds_of (&cp), *path = NULL;
  _cleanup_free_ char *text = ts_read_file (real);
  ck_assert_int_ge (asprintf (&path, "%s/rotating", cp.dir), 0);
  write_creds (path, "[admin]\naws_access_key_id=BKIAUNKNOWNKEY000000\n"
                     "aws_secret_access_key=not-the-secret\n");
  client c;
  client_open (&c, ep, path, "admin");
  outcome before = { 0 }, after = { 0 };
  call (&c, "ListClusters", "{}", 10000, &before);
  run_until_idle (&c, 20);
  ck_assert_str_eq (before.error_type, "UnrecognizedClientException");
  write_creds (path, text);
  call (&c, "ListClusters", "{}", 10000, &after);
  run_until_idle (&c, 20);
  ck_assert_msg (after.status == 200, "%ld %s", after.status, after.error_type);
  cJSON_Delete (before.body);
  cJSON_Delete (after.body);
  client_close (&c);
  ts_cp_teardown (&cp);
}
END_TEST

START_TEST (test_unreachable_endpoint_is_a_retryable_transport_error)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-http"), *path = NULL;
  _cleanup_free_ char *ep = endpoint_of (ts_free_port ());
  ck_assert_int_ge (asprintf (&path, "%s/credentials", dir), 0);
  write_creds (path, "[default]\naws_access_key_id=A\naws_secret_access_key=B\n");
  client c;
  client_open (&c, ep, path, "default");
  outcome o = { 0 };
  call (&c, "ListClusters", "{}", 5000, &o);
  run_until_idle (&c, 10);
  ck_assert_int_eq (o.status, 0);
  ck_assert_int_ne (o.curl_code, 0);
  ck_assert (o.retryable);
  client_close (&c);
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_a_silent_server_times_out)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-http"), *path = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/credentials", dir), 0);
  write_creds (path, "[default]\naws_access_key_id=A\naws_secret_access_key=B\n");
  /* A listening socket nobody accepts from: the connection completes, no answer ever comes. */
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  ck_assert_int_eq (bind (fd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq (listen (fd, 4), 0);
  ck_assert_int_eq (getsockname (fd, (struct sockaddr *)&a, &len), 0);
  _cleanup_free_ char *ep = endpoint_of (ntohs (a.sin_port));
  client c;
  client_open (&c, ep, path, "default");
  outcome o = { 0 };
  struct timespec t0, t1;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  call (&c, "ListClusters", "{}", 400, &o);
  run_until_idle (&c, 10);
  clock_gettime (CLOCK_MONOTONIC, &t1);
  double elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  ck_assert_int_eq (o.curl_code, 28); /* CURLE_OPERATION_TIMEDOUT */
  ck_assert (o.retryable);
  ck_assert_msg (elapsed >= 0.35 && elapsed < 3.0, "timed out after %.2f s", elapsed);
  close (fd);
  client_close (&c);
  ts_rmtree (dir);
}
END_TEST

/* 50 tags of 100-byte keys and 250-byte values: a body well past the size where curl would
 * otherwise ask for 100-continue, still signed correctly. */
START_TEST (test_large_bodies_are_signed_and_sent)
{
  ts_cp cp;
  ts_cp_setup (&cp);
  _cleanup_free_ char *ep = endpoint_of (cp.port), *creds = creds_of (&cp);
  client c;
  client_open (&c, ep, creds, "admin");
  cJSON *body = cJSON_CreateObject ();
  cJSON_AddStringToObject (body, "clusterName", "big");
  cJSON *tags = cJSON_AddArrayToObject (body, "tags");
  for (int i = 0; i < 50; i++)
    {
      char k[101], v[251];
      memset (k, 'k', 100);
      memset (v, 'v', 250);
      snprintf (k, sizeof k, "%03d", i);
      k[3] = 'k';
      k[100] = v[250] = '\0';
      cJSON *t = cJSON_CreateObject ();
      cJSON_AddStringToObject (t, "key", k);
      cJSON_AddStringToObject (t, "value", v);
      cJSON_AddItemToArray (tags, t);
    }
  _cleanup_free_ char *text = cJSON_PrintUnformatted (body);
  ck_assert_int_gt (strlen (text), 16000);
  outcome o = { 0 };
  call (&c, "CreateCluster", text, 10000, &o);
  run_until_idle (&c, 20);
  ck_assert_msg (o.status == 200, "%ld %s %s", o.status, o.error_type, o.message);
  cJSON_Delete (body);
  cJSON_Delete (o.body);
  client_close (&c);
  ts_cp_teardown (&cp);
}
END_TEST

/* A TLS server whose certificate names only DNS:localhost, signed by itself: verified with
 * BERTH_CA_FILE, refused without it, refused for a name it does not carry. */
START_TEST (test_https_is_verified_against_the_configured_ca)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-tls"), *creds = NULL, *ca = NULL, *key = NULL;
  _cleanup_free_ char *cert_pem = NULL, *key_pem = NULL, *by_name = NULL, *by_ip = NULL;
  ts_sh_ok ("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem "
            "-days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>&1",
            dir);
  ck_assert_int_ge (asprintf (&ca, "%s/cert.pem", dir), 0);
  ck_assert_int_ge (asprintf (&key, "%s/key.pem", dir), 0);
  ck_assert_int_ge (asprintf (&creds, "%s/credentials", dir), 0);
  write_creds (creds, "[default]\naws_access_key_id=A\naws_secret_access_key=B\n");
  cert_pem = ts_read_file (ca);
  key_pem = ts_read_file (key);
  ts_answer answers[] = { { 200, "{\"clusterArns\":[]}" } };
  ts_script s;
  ts_script_start (&s, answers, 1, cert_pem, key_pem);
  ck_assert_int_ge (asprintf (&by_name, "https://localhost:%d", s.port), 0);
  ck_assert_int_ge (asprintf (&by_ip, "https://127.0.0.1:%d", s.port), 0);
  struct
  {
    const char *endpoint, *ca;
    long status;
    int curl_code;
  } cases[] = {
    { by_name, ca, 200, 0 },  /* verified against the configured CA */
    { by_name, NULL, 0, 60 }, /* CURLE_PEER_FAILED_VERIFICATION: not a system CA */
    { by_ip, ca, 0, 60 },     /* the certificate does not name 127.0.0.1 */
  };
  for (size_t i = 0; i < ARRAY_SIZE (cases); i++)
    {
      client c;
      outcome o = { 0 };
      client_open_ca (&c, cases[i].endpoint, creds, "default", cases[i].ca);
      call (&c, "ListClusters", "{}", 10000, &o);
      run_until_idle (&c, 20);
      ck_assert_msg (o.status == cases[i].status && o.curl_code == cases[i].curl_code,
                     "case %zu: status %ld curl %d (%s)", i, o.status, o.curl_code, o.message);
      cJSON_Delete (o.body);
      client_close (&c);
    }
  ck_assert_uint_eq (s.calls, 1);
  ck_assert_str_eq (s.targets[0], AGENT_ECS_TARGET_PREFIX "ListClusters");
  ts_script_stop (&s);
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_plain_http_beyond_loopback_is_refused_unless_allowed)
{
  sd_event *ev;
  agent_http *h = NULL;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_int_eq (sd_event_new (&ev), 0);
  agent_http_opts o = { .endpoint = "http://192.0.2.1:8420", .region = "us-east-1" };
  ck_assert_int_lt (agent_http_new (ev, &o, &h, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "only to loopback"));
  berr_free (&err);
  o.allow_insecure = true;
  ck_assert_int_eq (agent_http_new (ev, &o, &h, &err), 0);
  agent_http_free (h);
  o.endpoint = "https://192.0.2.1:8420";
  o.allow_insecure = false;
  ck_assert_int_eq (agent_http_new (ev, &o, &h, &err), 0);
  agent_http_free (h);
  o.endpoint = "ftp://127.0.0.1";
  ck_assert_int_lt (agent_http_new (ev, &o, &h, &err), 0);
  sd_event_unref (ev);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("agent-http");
  TCase *tc = tcase_create ("core");
  tcase_set_timeout (tc, 90);
  tcase_add_test (tc, test_admin_key_creates_and_lists_clusters_through_the_loop);
  tcase_add_test (tc, test_agent_key_gets_access_denied_on_an_admin_action);
  tcase_add_test (tc, test_ecs_errors_carry_type_and_message);
  tcase_add_test (tc, test_many_requests_share_one_loop);
  tcase_add_test (tc, test_rotated_credentials_are_used_by_the_next_request);
  tcase_add_test (tc, test_unreachable_endpoint_is_a_retryable_transport_error);
  tcase_add_test (tc, test_a_silent_server_times_out);
  tcase_add_test (tc, test_large_bodies_are_signed_and_sent);
  tcase_add_test (tc, test_https_is_verified_against_the_configured_ca);
  tcase_add_test (tc, test_plain_http_beyond_loopback_is_refused_unless_allowed);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
