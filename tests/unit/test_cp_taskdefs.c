/* Unit tests of berth-control's task definitions in process: the validation rules one by one,
 * task cpu/memory strings, wrong JSON types, and the store's migration from schema 1 to 2. */
#include "controlplane/internal.h"
#include "lib/cleanup.h"
#include "tests/support/support.h"

#include <cJSON.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Validates the JSON text; returns "ok" or "<type>: <message>" (static storage). */
static const char *validate (const char *json)
{
  static char result[600];
  cp_fault fault = { 0 };
  cJSON *in = cJSON_Parse (json);
  ck_assert_msg (in != NULL, "test JSON does not parse: %s", json);
  int rc = cp_taskdef_validate (in, &fault);
  cJSON_Delete (in);
  if (rc == 0)
    return "ok";
  snprintf (result, sizeof result, "%s: %s", fault.type, fault.message);
  return result;
}

#define ck_rejects(json, type, fragment)                                                           \
  do                                                                                               \
    {                                                                                              \
      const char *r_ = validate (json);                                                            \
      ck_assert_msg (strncmp (r_, type ":", strlen (type ":")) == 0 && strstr (r_, fragment),      \
                     "%s: got '%s', want %s with '%s'", json, r_, type, fragment);                 \
    }                                                                                              \
  while (0)

#define A "{\"name\":\"a\",\"image\":\"x\",\"memory\":64"
#define B "{\"name\":\"b\",\"image\":\"x\",\"memory\":64"
#define TD(extra, containers)                                                                      \
  "{\"family\":\"f\"" extra ",\"containerDefinitions\":[" containers "]}"

START_TEST (test_task_cpu_and_memory_strings_parse_as_ecs_accepts_them)
{
  ck_assert_int_eq (cp_taskdef_cpu_units ("256"), 256);
  ck_assert_int_eq (cp_taskdef_cpu_units ("0.25 vCPU"), 256);
  ck_assert_int_eq (cp_taskdef_cpu_units ("1 vcpu"), 1024);
  ck_assert_int_eq (cp_taskdef_cpu_units ("2vCPU"), 2048);
  ck_assert_int_eq (cp_taskdef_cpu_units ("127"), -1);
  ck_assert_int_eq (cp_taskdef_cpu_units ("0.0001 vCPU"), -1);
  ck_assert_int_eq (cp_taskdef_cpu_units ("1.5"), -1);
  ck_assert_int_eq (cp_taskdef_cpu_units ("-256"), -1);
  ck_assert_int_eq (cp_taskdef_cpu_units ("256 MB"), -1);
  ck_assert_int_eq (cp_taskdef_cpu_units (""), -1);
  ck_assert_int_eq (cp_taskdef_memory_mib ("512"), 512);
  ck_assert_int_eq (cp_taskdef_memory_mib ("1 GB"), 1024);
  ck_assert_int_eq (cp_taskdef_memory_mib ("0.5GB"), 512);
  ck_assert_int_eq (cp_taskdef_memory_mib ("2 gb"), 2048);
  ck_assert_int_eq (cp_taskdef_memory_mib ("5"), -1);
  ck_assert_int_eq (cp_taskdef_memory_mib ("1 TB"), -1);
  ck_assert_int_eq (cp_taskdef_memory_mib ("99999999999"), -1);
}
END_TEST

START_TEST (test_valid_definitions_pass_and_get_ecs_defaults)
{
  ck_assert_str_eq (validate (TD ("", A "}")), "ok");
  ck_assert_str_eq (validate (TD (",\"memory\":\"1 GB\",\"cpu\":\"1 vCPU\"",
                                  "{\"name\":\"a\",\"image\":\"x\",\"cpu\":1024}")),
                    "ok");
  ck_assert_str_eq (validate (TD (",\"networkMode\":\"awsvpc\"",
                                  A ",\"portMappings\":[{\"containerPort\":80,\"hostPort\":80},"
                                    "{\"containerPort\":81}]}")),
                    "ok");
  ck_assert_str_eq (
      validate (TD ("", A ",\"portMappings\":[{\"containerPort\":80,\"hostPort\":8080}]}")), "ok");
  /* A diamond is not a cycle. */
  ck_assert_str_eq (
      validate (TD ("", A ",\"dependsOn\":[{\"containerName\":\"b\",\"condition\":\"START\"},"
                          "{\"containerName\":\"c\",\"condition\":\"START\"}]}," B
                          ",\"dependsOn\":[{\"containerName\":\"c\",\"condition\":\"START\"}]},"
                          "{\"name\":\"c\",\"image\":\"x\",\"memory\":6}")),
      "ok");
  cp_fault fault = { 0 };
  cJSON *in = cJSON_Parse (TD (",\"cpu\":\"0.5 vCPU\",\"memory\":\"1GB\"",
                               A ",\"portMappings\":[{\"containerPort\":80}]}"));
  ck_assert_int_eq (cp_taskdef_validate (in, &fault), 0);
  cJSON *c = cJSON_GetArrayItem (cJSON_GetObjectItem (in, "containerDefinitions"), 0);
  ck_assert (cJSON_IsTrue (cJSON_GetObjectItem (c, "essential")));
  ck_assert_int_eq (cJSON_GetObjectItem (c, "cpu")->valueint, 0);
  ck_assert_str_eq (cJSON_GetObjectItem (
                        cJSON_GetArrayItem (cJSON_GetObjectItem (c, "portMappings"), 0), "protocol")
                        ->valuestring,
                    "tcp");
  ck_assert_str_eq (cJSON_GetObjectItem (in, "cpu")->valuestring, "512");
  ck_assert_str_eq (cJSON_GetObjectItem (in, "memory")->valuestring, "1024");
  cJSON_Delete (in);
}
END_TEST

START_TEST (test_family_and_container_rules_are_enforced)
{
  ck_assert_str_eq (validate ("{\"containerDefinitions\":[" A "}]}"),
                    "InvalidParameterException: family is required.");
  ck_rejects ("{\"family\":\"\",\"containerDefinitions\":[" A "}]}", "ClientException", "Family");
  ck_rejects ("{\"family\":\"a/b\",\"containerDefinitions\":[" A "}]}", "ClientException",
              "Family");
  char long_family[300];
  memset (long_family, 'x', 256);
  long_family[256] = '\0';
  _cleanup_free_ char *json = NULL;
  ck_assert_int_ge (
      asprintf (&json, "{\"family\":\"%s\",\"containerDefinitions\":[" A "}]}", long_family), 0);
  ck_rejects (json, "ClientException", "255");
  ck_rejects ("{\"family\":\"f\"}", "ClientException", "Container list cannot be empty");
  ck_rejects (TD ("", ""), "ClientException", "Container list cannot be empty");
  ck_rejects (TD ("", A "}," A "}"), "ClientException", "'a' is used twice");
  ck_rejects (TD ("", "{\"image\":\"x\",\"memory\":64}"), "ClientException",
              "Container.name should not be null or empty");
  ck_rejects (TD ("", "{\"name\":\"a b\",\"image\":\"x\",\"memory\":64}"), "ClientException",
              "Container name 'a b' is invalid");
  ck_rejects (TD ("", "{\"name\":\"a\",\"image\":\"\",\"memory\":64}"), "ClientException",
              "Container.image should not be null or empty");
  ck_rejects (TD ("", A ",\"essential\":false}"), "ClientException",
              "at least one essential container");
  ck_rejects (TD ("", A "},{\"name\":\"x\",\"image\":\"x\",\"memory\":64},"
                        "{\"name\":\"c\",\"image\":\"x\",\"memory\":64},"
                        "{\"name\":\"d\",\"image\":\"x\",\"memory\":64},"
                        "{\"name\":\"e\",\"image\":\"x\",\"memory\":64},"
                        "{\"name\":\"f\",\"image\":\"x\",\"memory\":64},"
                        "{\"name\":\"g\",\"image\":\"x\",\"memory\":64},"
                        "{\"name\":\"h\",\"image\":\"x\",\"memory\":64},"
                        "{\"name\":\"i\",\"image\":\"x\",\"memory\":64},"
                        "{\"name\":\"j\",\"image\":\"x\",\"memory\":64}," B "}"),
              "ClientException", "at most 10 containers");
}
END_TEST

START_TEST (test_cpu_and_memory_must_fit_the_task)
{
  ck_rejects (TD ("", "{\"name\":\"a\",\"image\":\"x\"}"), "ClientException",
              "At least one of 'memory' or 'memoryReservation' must be specified");
  ck_assert_str_eq (validate (TD (",\"memory\":\"512\"", "{\"name\":\"a\",\"image\":\"x\"}")),
                    "ok");
  ck_rejects (TD (",\"cpu\":\"1024\"", A ",\"cpu\":1000}," B ",\"cpu\":25}"), "ClientException",
              "(1025) is greater than the task cpu (1024)");
  ck_assert_str_eq (validate (TD (",\"cpu\":\"1024\"", A ",\"cpu\":1000}," B ",\"cpu\":24}")),
                    "ok");
  ck_rejects (TD (",\"memory\":\"0.5 GB\"", "{\"name\":\"a\",\"image\":\"x\",\"memory\":513}"),
              "ClientException", "greater than the task memory (512 MiB)");
  ck_rejects (TD (",\"memory\":\"512\"", "{\"name\":\"a\",\"image\":\"x\","
                                         "\"memoryReservation\":600}"),
              "ClientException", "greater than the task memory");
  ck_rejects (TD ("", "{\"name\":\"a\",\"image\":\"x\",\"memory\":100,"
                      "\"memoryReservation\":200}"),
              "ClientException", "must not exceed 'memory'");
  ck_rejects (TD ("", "{\"name\":\"a\",\"image\":\"x\",\"memory\":4}"), "ClientException",
              "at least 6 MiB");
  ck_rejects (TD ("", A ",\"cpu\":-1}"), "ClientException", "Invalid 'cpu' setting");
  ck_rejects (TD (",\"cpu\":\"0.1 vCPU\"", A "}"), "ClientException",
              "Invalid 'cpu' setting for task");
  ck_rejects (TD (",\"memory\":\"lots\"", A "}"), "ClientException",
              "Invalid 'memory' setting for task");
}
END_TEST

START_TEST (test_port_mappings_follow_the_network_mode)
{
  ck_rejects (TD (",\"networkMode\":\"awsvpc\"",
                  A ",\"portMappings\":[{\"containerPort\":80,\"hostPort\":0}]}"),
              "ClientException", "networkMode=awsvpc, the host ports and container ports");
  ck_rejects (TD (",\"networkMode\":\"host\"",
                  A ",\"portMappings\":[{\"containerPort\":80,\"hostPort\":8080}]}"),
              "ClientException", "networkMode=host");
  ck_assert_str_eq (
      validate (TD (",\"networkMode\":\"host\"", A ",\"portMappings\":[{\"containerPort\":80}]}")),
      "ok");
  ck_rejects (TD (",\"networkMode\":\"none\"", A ",\"portMappings\":[{\"containerPort\":80}]}"),
              "ClientException", "networkMode=none");
  ck_assert_str_eq (validate (TD (",\"networkMode\":\"none\"", A "}")), "ok");
  ck_rejects (TD (",\"networkMode\":\"nat\"", A "}"), "InvalidParameterException",
              "Invalid networkMode 'nat'");
  ck_rejects (TD ("", A ",\"portMappings\":[{\"hostPort\":80}]}"), "ClientException",
              "Invalid 'containerPort'");
  ck_rejects (TD ("", A ",\"portMappings\":[{\"containerPort\":70000}]}"), "ClientException",
              "Invalid 'containerPort'");
  ck_rejects (TD ("", A ",\"portMappings\":[{\"containerPort\":80,\"hostPort\":-2}]}"),
              "ClientException", "Invalid 'hostPort'");
  ck_rejects (TD ("", A ",\"portMappings\":[{\"containerPort\":80,\"protocol\":\"sctp\"}]}"),
              "InvalidParameterException", "tcp or udp");
}
END_TEST

START_TEST (test_depends_on_needs_known_containers_and_no_cycle)
{
  ck_rejects (TD ("", A ",\"dependsOn\":[{\"containerName\":\"z\",\"condition\":\"START\"}]}"),
              "ClientException", "depends on container 'z', which is not in");
  ck_rejects (TD ("", A ",\"dependsOn\":[{\"containerName\":\"a\",\"condition\":\"START\"}]}"),
              "ClientException", "form a cycle: a -> a.");
  ck_rejects (TD ("", A ",\"dependsOn\":[{\"containerName\":\"b\",\"condition\":\"START\"}]}," B
                        ",\"dependsOn\":[{\"containerName\":\"a\",\"condition\":\"HEALTHY\"}]}"),
              "ClientException", "form a cycle: a -> b -> a.");
  /* The cycle reported is the cycle, not the path that led to it. */
  ck_rejects (TD ("", "{\"name\":\"s\",\"image\":\"x\",\"memory\":64,\"dependsOn\":"
                      "[{\"containerName\":\"a\",\"condition\":\"START\"}]}," A
                      ",\"dependsOn\":[{\"containerName\":\"b\",\"condition\":\"START\"}]}," B
                      ",\"dependsOn\":[{\"containerName\":\"a\",\"condition\":\"START\"}]}"),
              "ClientException", "form a cycle: a -> b -> a.");
  ck_rejects (
      TD ("", A ",\"dependsOn\":[{\"containerName\":\"b\",\"condition\":\"SOON\"}]}," B "}"),
      "ClientException", "START, COMPLETE, SUCCESS or HEALTHY");
  ck_rejects (TD ("", A ",\"dependsOn\":[{\"containerName\":\"b\"}]}," B "}"), "ClientException",
              "START, COMPLETE, SUCCESS or HEALTHY");
  ck_rejects (
      TD ("", A ",\"dependsOn\":[{\"containerName\":\"b\",\"condition\":\"SUCCESS\"}]}," B "}"),
      "ClientException", "cannot depend on essential container 'b'");
  ck_assert_str_eq (
      validate (TD ("", A ",\"dependsOn\":[{\"containerName\":\"b\",\"condition\":\"SUCCESS\"}]}," B
                          ",\"essential\":false}")),
      "ok");
}
END_TEST

START_TEST (test_mount_points_need_declared_volumes)
{
  ck_rejects (TD ("", A ",\"mountPoints\":[{\"sourceVolume\":\"v\",\"containerPath\":\"/v\"}]}"),
              "ClientException", "volume 'v' is not defined");
  ck_assert_str_eq (
      validate (TD (",\"volumes\":[{\"name\":\"v\"}]",
                    A ",\"mountPoints\":[{\"sourceVolume\":\"v\",\"containerPath\":\"/v\"}]}")),
      "ok");
  ck_rejects (
      TD (",\"volumes\":[{\"name\":\"v\"}]", A ",\"mountPoints\":[{\"sourceVolume\":\"v\"}]}"),
      "ClientException", "Invalid 'containerPath'");
  ck_rejects (TD (",\"volumes\":[{\"name\":\"v\"},{\"name\":\"v\"}]", A "}"), "ClientException",
              "Duplicate volume name 'v'");
  /* 101 volumes. */
  char many[4096] = "{\"family\":\"f\",\"containerDefinitions\":[" A "}],\"volumes\":[{}";
  for (int i = 0; i < 100; i++)
    snprintf (many + strlen (many), sizeof many - strlen (many), ",{\"name\":\"v%d\"}", i);
  strcat (many, "]}");
  ck_rejects (many, "ClientException", "at most 100 volumes");
  ck_rejects (TD (",\"volumes\":[{\"name\":\"a:b\"}]", A "}"), "ClientException", "Volume names");
}
END_TEST

START_TEST (test_members_of_the_wrong_type_are_serialization_errors)
{
  ck_rejects ("{\"family\":7,\"containerDefinitions\":[" A "}]}", "SerializationException",
              "'family'");
  ck_rejects ("{\"family\":\"f\",\"containerDefinitions\":{}}", "SerializationException",
              "'containerDefinitions'");
  ck_rejects ("{\"family\":\"f\",\"containerDefinitions\":[7]}", "SerializationException",
              "'containerDefinitions'");
  ck_rejects (TD (",\"cpu\":256", A "}"), "SerializationException", "'cpu'");
  ck_rejects (TD ("", A ",\"cpu\":\"256\"}"), "SerializationException",
              "'containerDefinitions.cpu'");
  ck_rejects (TD ("", A ",\"cpu\":1.5}"), "SerializationException", "'containerDefinitions.cpu'");
  ck_rejects (TD ("", "{\"name\":\"a\",\"image\":\"x\",\"memory\":1e12}"), "SerializationException",
              "'containerDefinitions.memory'");
  ck_rejects (TD ("", A ",\"essential\":\"yes\"}"), "SerializationException", "essential");
  ck_rejects (TD ("", A ",\"command\":[\"sh\",1]}"), "SerializationException", "command");
  ck_rejects (TD ("", A ",\"portMappings\":[{\"containerPort\":\"80\"}]}"),
              "SerializationException", "'portMappings.containerPort'");
  ck_rejects (TD ("", A ",\"dependsOn\":[{\"containerName\":[]}]}"), "SerializationException",
              "dependsOn.containerName");
  ck_rejects (TD (",\"volumes\":[{\"name\":1}]", A "}"), "SerializationException", "volumes.name");
}
END_TEST

/* Through the dispatcher: tags, references and list parameters that the CLI would not send. */
START_TEST (test_dispatcher_rejects_bad_references_tags_and_list_parameters)
{
  cp_ctx *ctx = NULL;
  berr *err = NULL;
  char *resp = NULL;
  ck_assert_int_eq (cp_ctx_open (":memory:", "us-east-1", "000000000000", &ctx, &err), 0);
  struct
  {
    const char *action, *body, *type;
  } cases[] = {
    { "DescribeTaskDefinition", "{}", "InvalidParameterException" },
    { "DescribeTaskDefinition", "{\"taskDefinition\":5}", "SerializationException" },
    { "DescribeTaskDefinition", "{\"taskDefinition\":\"f:0\"}", "ClientException" },
    { "DescribeTaskDefinition", "{\"taskDefinition\":\"f:1x\"}", "ClientException" },
    { "DescribeTaskDefinition", "{\"taskDefinition\":\"f\",\"include\":[1]}",
      "SerializationException" },
    { "DeregisterTaskDefinition",
      "{\"taskDefinition\":\"arn:aws:ecs:us-east-1:000000000000:"
      "task-definition/f\"}",
      "ClientException" },
    { "ListTaskDefinitions", "{\"maxResults\":0}", "InvalidParameterException" },
    { "ListTaskDefinitions", "{\"maxResults\":1.5}", "SerializationException" },
    { "ListTaskDefinitions", "{\"sort\":\"UP\"}", "InvalidParameterException" },
    { "ListTaskDefinitions", "{\"nextToken\":\"6162\"}", "InvalidParameterException" },
    { "ListTaskDefinitions", "{\"nextToken\":\"ABCD\"}", "InvalidParameterException" },
    { "ListTaskDefinitionFamilies", "{\"status\":\"DELETE_IN_PROGRESS\"}",
      "InvalidParameterException" },
    { "ListTaskDefinitionFamilies", "{\"familyPrefix\":[]}", "SerializationException" },
    { "RegisterTaskDefinition",
      "{\"family\":\"f\",\"containerDefinitions\":[" A "}],\"tags\":[{\"value\":\"v\"}]}",
      "InvalidParameterException" },
    { "RegisterTaskDefinition",
      "{\"family\":\"f\",\"containerDefinitions\":[" A "}],\"tags\":[{\"key\":1}]}",
      "SerializationException" },
  };
  for (size_t i = 0; i < ARRAY_SIZE (cases); i++)
    {
      int status = cp_dispatch (ctx, CP_ROLE_ADMIN, cases[i].action, cases[i].body,
                                strlen (cases[i].body), &resp);
      ck_assert_msg (status == 400 && strstr (resp, cases[i].type), "%s %s: %d %s", cases[i].action,
                     cases[i].body, status, resp);
      free (resp);
    }
  /* The agent role cannot touch task definitions. */
  ck_assert_int_eq (cp_dispatch (ctx, CP_ROLE_AGENT, "ListTaskDefinitions", "{}", 2, &resp), 400);
  ck_assert_ptr_nonnull (strstr (resp, "AccessDeniedException"));
  free (resp);
  cp_ctx_free (ctx);
}
END_TEST

/* A store written by schema 1 (clusters only) gains the task definitions table and keeps its
 * data. */
START_TEST (test_store_migrates_a_version_1_store_to_task_definitions)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("cp-td-store"), *path = NULL;
  sqlite3 *db = NULL;
  cp_store *store = NULL;
  berr *err = NULL;
  int version = 0;
  ck_assert_int_ge (asprintf (&path, "%s/db", dir), 0);
  ck_assert_int_eq (sqlite3_open (path, &db), SQLITE_OK);
  ck_assert_int_eq (sqlite3_exec (db,
                                  "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                                  "INSERT INTO schema_version VALUES (1);"
                                  "CREATE TABLE credentials (access_key_id TEXT PRIMARY KEY,"
                                  " secret TEXT NOT NULL, role TEXT NOT NULL,"
                                  " created_at INTEGER NOT NULL);"
                                  "CREATE TABLE clusters (name TEXT PRIMARY KEY, status TEXT"
                                  " NOT NULL, tags TEXT NOT NULL DEFAULT '[]', settings TEXT NOT"
                                  " NULL DEFAULT '[]', created_at INTEGER NOT NULL);"
                                  "INSERT INTO clusters VALUES ('old', 'ACTIVE', '[]', '[]', 1);",
                                  NULL, NULL, NULL),
                    SQLITE_OK);
  sqlite3_close (db);
  ck_assert_int_eq (cp_store_open (path, &store, &err), 0);
  ck_assert_int_eq (cp_store_schema_version (store, &version, &err), 0);
  ck_assert_int_eq (version, 4);
  cp_cluster c = { 0 };
  ck_assert_int_eq (cp_store_get_cluster (store, "old", &c, &err), 1);
  cp_cluster_clear (&c);
  cp_taskdef td = { .family = (char *)"f", .body_json = (char *)"{}", .registered_at = 5 };
  ck_assert_int_eq (cp_store_add_taskdef (store, &td, &err), 0);
  ck_assert_int_eq (td.revision, 1);
  ck_assert_int_eq (cp_store_add_taskdef (store, &td, &err), 0);
  ck_assert_int_eq (td.revision, 2);
  cp_store_free (store);
  ck_assert_int_eq (cp_store_open (path, &store, &err), 0);
  cp_taskdef got = { 0 };
  ck_assert_int_eq (cp_store_get_taskdef (store, "f", 0, &got, &err), 1);
  ck_assert_int_eq (got.revision, 2);
  ck_assert_str_eq (got.status, "ACTIVE");
  cp_taskdef_clear (&got);
  ck_assert_int_eq (cp_store_deregister_taskdef (store, "f", 2, 9, &err), 0);
  ck_assert_int_eq (cp_store_get_taskdef (store, "f", 0, &got, &err), 1);
  ck_assert_int_eq (got.revision, 1);
  cp_taskdef_clear (&got);
  ck_assert_int_eq (cp_store_get_taskdef (store, "g", 0, &got, &err), 0);
  cp_store_free (store);
  ts_rmtree (dir);
}
END_TEST

static Suite *taskdefs_suite (void)
{
  Suite *s = suite_create ("controlplane-taskdefs");
  TCase *tc = tcase_create ("validation");
  tcase_add_test (tc, test_task_cpu_and_memory_strings_parse_as_ecs_accepts_them);
  tcase_add_test (tc, test_valid_definitions_pass_and_get_ecs_defaults);
  tcase_add_test (tc, test_family_and_container_rules_are_enforced);
  tcase_add_test (tc, test_cpu_and_memory_must_fit_the_task);
  tcase_add_test (tc, test_port_mappings_follow_the_network_mode);
  tcase_add_test (tc, test_depends_on_needs_known_containers_and_no_cycle);
  tcase_add_test (tc, test_mount_points_need_declared_volumes);
  tcase_add_test (tc, test_members_of_the_wrong_type_are_serialization_errors);
  tcase_add_test (tc, test_dispatcher_rejects_bad_references_tags_and_list_parameters);
  tcase_add_test (tc, test_store_migrates_a_version_1_store_to_task_definitions);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (taskdefs_suite ());
}
