/* Unit tests of berth-agent's retry policies (backoff with jitter, which failures retry), its
 * URL policy, and the RegisterContainerInstance document against the botocore shapes. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "tests/support/cp.h"
#include "tests/support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Walks a policy for n steps: each delay within +-20% of the nominal one, nominal growing by
 * the multiplier up to the cap. */
static void check_policy (enum agent_backoff_kind kind, uint64_t min, uint64_t max, double mult)
{
  agent_backoff b;
  agent_backoff_init (&b, kind, 42);
  double nominal = (double)min;
  bool varied = false;
  uint64_t first = 0;
  for (int i = 0; i < 40; i++)
    {
      uint64_t d = agent_backoff_next (&b);
      ck_assert_msg ((double)d >= nominal * 0.8 - 1 && (double)d <= nominal * 1.2 + 1,
                     "step %d: %llu not within 20%% of %.0f", i, (unsigned long long)d, nominal);
      if (i == 0)
        first = d;
      varied |= d != (uint64_t)nominal;
      nominal = nominal * mult > (double)max ? (double)max : nominal * mult;
    }
  ck_assert_uint_eq (b.current_us, max);
  ck_assert (varied);
  agent_backoff_reset (&b);
  ck_assert_uint_eq (b.current_us, min);
  ck_assert ((double)first <= (double)min * 1.2);
}

START_TEST (test_backoff_policies_grow_to_their_caps_with_bounded_jitter)
{
  check_policy (AGENT_BACKOFF_REGISTER, 3000000, 192000000, 2.0);
  check_policy (AGENT_BACKOFF_RECONNECT, 250000, 120000000, 1.5);
  check_policy (AGENT_BACKOFF_OUTBOX, 1000000, 30000000, 2.0);
}
END_TEST

START_TEST (test_backoff_jitter_differs_between_seeds)
{
  agent_backoff a, b;
  agent_backoff_init (&a, AGENT_BACKOFF_REGISTER, 1);
  agent_backoff_init (&b, AGENT_BACKOFF_REGISTER, 2);
  int same = 0;
  for (int i = 0; i < 10; i++)
    same += agent_backoff_next (&a) == agent_backoff_next (&b);
  ck_assert_int_lt (same, 3);
}
END_TEST

START_TEST (test_only_throttling_server_and_transport_errors_retry)
{
  agent_http_result r = { 0 };
  r.curl_code = 7; /* CURLE_COULDNT_CONNECT */
  ck_assert (agent_http_retryable (&r));
  r = (agent_http_result){ .status = 503 };
  ck_assert (agent_http_retryable (&r));
  r = (agent_http_result){ .status = 500, .error_type = "ServerException" };
  ck_assert (agent_http_retryable (&r));
  r = (agent_http_result){ .status = 400, .error_type = "ThrottlingException" };
  ck_assert (agent_http_retryable (&r));
  r = (agent_http_result){ .status = 429 };
  ck_assert (agent_http_retryable (&r));
  r = (agent_http_result){ .status = 400, .error_type = "ClientException" };
  ck_assert (!agent_http_retryable (&r));
  r = (agent_http_result){ .status = 400, .error_type = "AccessDeniedException" };
  ck_assert (!agent_http_retryable (&r));
  r = (agent_http_result){ .status = 403, .error_type = "MissingAuthenticationTokenException" };
  ck_assert (!agent_http_retryable (&r));
}
END_TEST

START_TEST (test_loopback_urls_are_recognised)
{
  ck_assert (agent_url_is_loopback ("http://127.0.0.1:8420"));
  ck_assert (agent_url_is_loopback ("http://127.3.4.5/"));
  ck_assert (agent_url_is_loopback ("http://localhost:1"));
  ck_assert (agent_url_is_loopback ("http://[::1]:8420/x"));
  ck_assert (!agent_url_is_loopback ("http://128.0.0.1"));
  ck_assert (!agent_url_is_loopback ("http://[::2]:8420"));
  ck_assert (!agent_url_is_loopback ("http://localhost.example.com"));
  ck_assert (!agent_url_is_loopback ("http://127.0.0.1.nip.io"));
  ck_assert (!agent_url_is_loopback ("127.0.0.1"));
}
END_TEST

static agent_config config_of (const char *text)
{
  agent_config cfg;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_msg (agent_config_parse (text, strlen (text), NULL, &cfg, &err) == 0, "%s",
                 err ? err->msg : "");
  return cfg;
}

static const cJSON *resource (const cJSON *req, const char *name)
{
  const cJSON *r;
  cJSON_ArrayForEach (r, cJSON_GetObjectItem (req, "totalResources"))
  {
    if (strcmp (ts_json_str (r, "name"), name) == 0)
      return r;
  }
  ck_abort_msg ("no resource %s", name);
  return NULL;
}

static bool has_attr (const cJSON *req, const char *name, const char *value)
{
  const cJSON *a;
  cJSON_ArrayForEach (a, cJSON_GetObjectItem (req, "attributes"))
  {
    const cJSON *v = cJSON_GetObjectItem (a, "value");
    if (strcmp (ts_json_str (a, "name"), name) == 0
        && (value == NULL ? v == NULL : cJSON_IsString (v) && strcmp (v->valuestring, value) == 0))
      return true;
  }
  return false;
}

START_TEST (test_register_document_is_exact)
{
  agent_config cfg = config_of ("ECS_CLUSTER=web\nECS_RESERVED_MEMORY=512\n"
                                "ECS_RESERVED_PORTS_UDP=[53]\n"
                                "ECS_INSTANCE_ATTRIBUTES={\"stack\":\"prod\"}\n");
  agent_host_facts facts
      = { .cpus = 4, .mem_total_mib = 16000, .arch = "x86_64", .os_family = "debian_12" };
  _cleanup_json_ cJSON *req = NULL;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_int_eq (agent_register_request (&cfg, &facts, NULL, "tok-1", &req, &err), 0);
  _cleanup_free_ char *res = cJSON_PrintUnformatted (cJSON_GetObjectItem (req, "totalResources"));
  ck_assert_str_eq (res, "[{\"name\":\"CPU\",\"type\":\"INTEGER\",\"integerValue\":4096},"
                         "{\"name\":\"MEMORY\",\"type\":\"INTEGER\",\"integerValue\":15488},"
                         "{\"name\":\"PORTS\",\"type\":\"STRINGSET\",\"stringSetValue\":"
                         "[\"22\",\"2375\",\"2376\",\"51678\",\"51679\"]},"
                         "{\"name\":\"PORTS_UDP\",\"type\":\"STRINGSET\",\"stringSetValue\":"
                         "[\"53\"]},"
                         "{\"name\":\"ENI\",\"type\":\"INTEGER\",\"integerValue\":0}]");
  ck_assert_str_eq (ts_json_str (req, "cluster"), "web");
  ck_assert_str_eq (ts_json_str (req, "clientToken"), "tok-1");
  ck_assert_ptr_null (cJSON_GetObjectItem (req, "containerInstanceArn"));
  ck_assert (has_attr (req, "ecs.os-type", "linux"));
  ck_assert (has_attr (req, "ecs.os-family", "debian_12"));
  ck_assert (has_attr (req, "ecs.cpu-architecture", "x86_64"));
  ck_assert (has_attr (req, "stack", "prod"));
  ck_assert (has_attr (req, "com.amazonaws.ecs.capability.privileged-container", NULL));
  ck_assert (has_attr (req, "com.amazonaws.ecs.capability.logging-driver.json-file", NULL));
  ck_assert (!has_attr (req, "ecs.capability.task-eni", NULL));
  ck_assert (!has_attr (req, "com.amazonaws.ecs.capability.logging-driver.journald", NULL));
  const cJSON *vi = cJSON_GetObjectItem (req, "versionInfo");
  ck_assert_str_eq (ts_json_str (vi, "agentVersion"), AGENT_VERSION);
  /* Only members of RegisterContainerInstanceRequest, as the botocore model names them. */
  static const char *const members[] = { "cluster",
                                         "instanceIdentityDocument",
                                         "instanceIdentityDocumentSignature",
                                         "totalResources",
                                         "versionInfo",
                                         "containerInstanceArn",
                                         "attributes",
                                         "platformDevices",
                                         "tags",
                                         "clientToken" };
  const cJSON *m;
  cJSON_ArrayForEach (m, req)
  {
    bool known = false;
    for (size_t i = 0; i < ARRAY_SIZE (members); i++)
      known |= strcmp (m->string, members[i]) == 0;
    ck_assert_msg (known, "unknown member %s", m->string);
  }
  agent_config_free (&cfg);
}
END_TEST

#define BOTOCORE_ECS                                                                               \
  "/usr/lib/python3/dist-packages/awscli/botocore/data/ecs/2014-11-13/service-2.json"

/* Whether value fits the botocore shape name: JSON types, member names, required members. path
 * names the value; on a mismatch *why says where. */
static bool shape_ok (const cJSON *shapes, const char *name, const cJSON *value, const char *path,
                      char *why, size_t n)
{
  const cJSON *shape = cJSON_GetObjectItem (shapes, name), *m;
  const char *type = ts_json_str (shape, "type");
  char sub[256];
  bool ok = true;
  if (strcmp (type, "structure") == 0)
    {
      const cJSON *members = cJSON_GetObjectItem (shape, "members");
      if (!cJSON_IsObject (value))
        return snprintf (why, n, "%s is not an object", path), false;
      cJSON_ArrayForEach (m, value)
      {
        const cJSON *member = cJSON_GetObjectItem (members, m->string);
        snprintf (sub, sizeof sub, "%s.%s", path, m->string);
        /* clientToken is in the ECS agent's own API model, not in botocore's public one. */
        if (member == NULL && strcmp (sub, "request.clientToken") == 0)
          continue;
        if (member == NULL)
          return snprintf (why, n, "%s is not a member of %s", sub, name), false;
        ok = ok && shape_ok (shapes, ts_json_str (member, "shape"), m, sub, why, n);
      }
      cJSON_ArrayForEach (
          m, cJSON_GetObjectItem (shape,
                                  "required")) if (cJSON_GetObjectItem (value, m->valuestring)
                                                   == NULL) return snprintf (why, n, "%s lacks %s",
                                                                             path, m->valuestring),
          false;
      return ok;
    }
  if (strcmp (type, "list") == 0)
    {
      if (!cJSON_IsArray (value))
        return snprintf (why, n, "%s is not a list", path), false;
      cJSON_ArrayForEach (m, value) ok
          = ok
            && shape_ok (shapes, ts_json_str (cJSON_GetObjectItem (shape, "member"), "shape"), m,
                         path, why, n);
      return ok;
    }
  bool fits
      = strcmp (type, "string") == 0 ? cJSON_IsString (value)
        : strcmp (type, "integer") == 0 || strcmp (type, "long") == 0
            ? cJSON_IsNumber (value) && value->valuedouble == (double)(int64_t)value->valuedouble
        : strcmp (type, "double") == 0  ? cJSON_IsNumber (value)
        : strcmp (type, "boolean") == 0 ? cJSON_IsBool (value)
                                        : false;
  if (!fits)
    snprintf (why, n, "%s is not of type %s (shape %s)", path, type, name);
  return fits;
}

START_TEST (test_register_document_matches_the_botocore_model)
{
  _cleanup_free_ char *text = ts_read_file (BOTOCORE_ECS);
  ck_assert_msg (text != NULL, "the awscli package's botocore model is missing");
  cJSON *model = cJSON_Parse (text);
  const cJSON *shapes = cJSON_GetObjectItem (model, "shapes");
  agent_config cfg = config_of ("ECS_INSTANCE_ATTRIBUTES={\"a\":\"b\",\"c\":\"\"}\n"
                                "ECS_ENABLE_TASK_ENI=true\nECS_RESERVED_PORTS_UDP=[53]\n");
  agent_host_facts facts
      = { .cpus = 8, .mem_total_mib = 1000, .arch = "x86_64", .os_family = "debian_12" };
  _cleanup_json_ cJSON *req = NULL;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_int_eq (agent_register_request (&cfg, &facts, "arn:x", NULL, &req, &err), 0);
  char why[512] = "";
  ck_assert_msg (
      shape_ok (shapes, "RegisterContainerInstanceRequest", req, "request", why, sizeof why), "%s",
      why);
  /* The checker can fail: a string integerValue and an unknown member are caught. */
  cJSON *cpu = cJSON_GetArrayItem (cJSON_GetObjectItem (req, "totalResources"), 0);
  cJSON_ReplaceItemInObject (cpu, "integerValue", cJSON_CreateString ("4"));
  ck_assert (
      !shape_ok (shapes, "RegisterContainerInstanceRequest", req, "request", why, sizeof why));
  ck_assert_str_eq (why, "request.totalResources.integerValue is not of type integer (shape "
                         "Integer)");
  cJSON_ReplaceItemInObject (cpu, "integerValue", cJSON_CreateNumber (4));
  cJSON_AddStringToObject (req, "hostname", "x");
  ck_assert (
      !shape_ok (shapes, "RegisterContainerInstanceRequest", req, "request", why, sizeof why));
  ck_assert_str_eq (why, "request.hostname is not a member of RegisterContainerInstanceRequest");
  cJSON_Delete (model);
  agent_config_free (&cfg);
}
END_TEST

START_TEST (test_register_document_follows_the_configuration)
{
  agent_config cfg = config_of ("ECS_ENABLE_TASK_ENI=true\nBERTH_ENI_LIMIT=3\n"
                                "ECS_DISABLE_PRIVILEGED=true\nECS_EXTERNAL=true\n"
                                "ECS_AVAILABLE_LOGGING_DRIVERS=[\"journald\"]\n"
                                "ECS_RESERVED_PORTS=[]\n");
  agent_host_facts facts = { .cpus = 2, .mem_total_mib = 1024, .arch = "arm64" };
  _cleanup_json_ cJSON *req = NULL;
  _cleanup_berr_ berr *err = NULL;
  const char *arn = "arn:aws:ecs:us-east-1:000000000000:container-instance/default/abc";
  ck_assert_int_eq (agent_register_request (&cfg, &facts, arn, NULL, &req, &err), 0);
  ck_assert_str_eq (ts_json_str (req, "containerInstanceArn"), arn);
  ck_assert_int_eq (strlen (ts_json_str (req, "clientToken")), 36);
  ck_assert_int_eq (cJSON_GetObjectItem (resource (req, "ENI"), "integerValue")->valueint, 3);
  ck_assert_int_eq (cJSON_GetObjectItem (resource (req, "MEMORY"), "integerValue")->valueint, 1024);
  ck_assert_int_eq (
      cJSON_GetArraySize (cJSON_GetObjectItem (resource (req, "PORTS"), "stringSetValue")), 0);
  ck_assert (has_attr (req, "ecs.capability.task-eni", NULL));
  ck_assert (has_attr (req, "ecs.capability.external", NULL));
  ck_assert (has_attr (req, "com.amazonaws.ecs.capability.logging-driver.journald", NULL));
  ck_assert (!has_attr (req, "com.amazonaws.ecs.capability.privileged-container", NULL));
  ck_assert (has_attr (req, "ecs.cpu-architecture", "arm64"));
  agent_config_free (&cfg);
}
END_TEST

START_TEST (test_reserved_memory_above_the_host_is_refused)
{
  agent_config cfg = config_of ("ECS_RESERVED_MEMORY=2048\n");
  agent_host_facts facts = { .cpus = 1, .mem_total_mib = 2047, .arch = "x86_64" };
  cJSON *req = NULL;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_int_lt (agent_register_request (&cfg, &facts, NULL, "t", &req, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "ECS_RESERVED_MEMORY"));
  ck_assert_ptr_null (req);
  agent_config_free (&cfg);
}
END_TEST

START_TEST (test_host_facts_read_meminfo_under_the_given_root)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-proc"), *path = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/meminfo", dir), 0);
  FILE *f = fopen (path, "we");
  fputs ("MemTotal:        8388608 kB\nMemFree:  1 kB\n", f);
  fclose (f);
  agent_host_facts facts;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_int_eq (agent_host_facts_read (dir, &facts, &err), 0);
  ck_assert_uint_eq (facts.mem_total_mib, 8192);
  ck_assert_uint_ge (facts.cpus, 1);
  ck_assert (strcmp (facts.arch, "x86_64") == 0 || strcmp (facts.arch, "arm64") == 0);
  f = fopen (path, "we");
  fputs ("MemFree:  1 kB\n", f);
  fclose (f);
  ck_assert_int_lt (agent_host_facts_read (dir, &facts, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "MemTotal"));
  ts_rmtree (dir);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("agent-register");
  TCase *tc = tcase_create ("core");
  tcase_add_test (tc, test_backoff_policies_grow_to_their_caps_with_bounded_jitter);
  tcase_add_test (tc, test_backoff_jitter_differs_between_seeds);
  tcase_add_test (tc, test_only_throttling_server_and_transport_errors_retry);
  tcase_add_test (tc, test_loopback_urls_are_recognised);
  tcase_add_test (tc, test_register_document_is_exact);
  tcase_add_test (tc, test_register_document_matches_the_botocore_model);
  tcase_add_test (tc, test_register_document_follows_the_configuration);
  tcase_add_test (tc, test_reserved_memory_above_the_host_is_refused);
  tcase_add_test (tc, test_host_facts_read_meminfo_under_the_given_root);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
