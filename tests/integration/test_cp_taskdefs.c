/* berth-control's Task definitions API end to end: a real server driven by the real aws CLI,
 * registering from --cli-input-json files, describing by every reference form, listing with
 * filters and the CLI's paginator, deregistering, and each validation error. */
#include "lib/cleanup.h"
#include "tests/support/cp.h"
#include "tests/support/support.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define ARN_PREFIX "arn:aws:ecs:us-east-1:000000000000:task-definition/"

/* The server of the current test (each test runs in its own process). */
static ts_cp cp;

static void setup (void)
{
  ts_cp_setup (&cp);
}

static void teardown (void)
{
  ts_cp_teardown (&cp);
}

/* Registers the JSON definition text through --cli-input-json; returns the response. */
static cJSON *register_json (const char *json)
{
  _cleanup_free_ char *path = ts_cp_write (&cp, "td.json", json);
  return ts_cp_aws_ok (&cp, "register-task-definition --cli-input-json file://%s", path);
}

/* A minimal valid definition of family with one container. */
static void register_simple (const char *family)
{
  char json[512];
  snprintf (json, sizeof json,
            "{\"family\": \"%s\", \"containerDefinitions\": [{\"name\": \"c\", \"image\": "
            "\"busybox\", \"memory\": 64}]}",
            family);
  cJSON_Delete (register_json (json));
}

/* Registering the JSON must fail with code and a message containing want. */
static void register_fails (const char *code, const char *want, const char *json)
{
  _cleanup_free_ char *path = ts_cp_write (&cp, "bad.json", json);
  _cleanup_free_ char *out = ts_cp_aws_fails_with (
      &cp, code, "register-task-definition --cli-input-json file://%s", path);
  ck_assert_msg (strstr (out, want), "want '%s' in: %s", want, out);
}

static const cJSON *item (const cJSON *obj, const char *key)
{
  return cJSON_GetObjectItem (obj, key);
}

static const char *arn_at (const cJSON *list, const char *key, int i)
{
  const cJSON *v = cJSON_GetArrayItem (item (list, key), i);
  return cJSON_IsString (v) ? v->valuestring : "";
}

static const char web_json[]
    = "{\"family\": \"web\", \"networkMode\": \"awsvpc\", \"cpu\": \"0.5 vCPU\", \"memory\": "
      "\"1 GB\", \"containerDefinitions\": ["
      "{\"name\": \"app\", \"image\": \"busybox\", \"cpu\": 256, \"memory\": 512, "
      "\"portMappings\": [{\"containerPort\": 80, \"hostPort\": 80}], "
      "\"dependsOn\": [{\"containerName\": \"init\", \"condition\": \"SUCCESS\"}], "
      "\"mountPoints\": [{\"sourceVolume\": \"data\", \"containerPath\": \"/data\"}]}, "
      "{\"name\": \"init\", \"image\": \"busybox\", \"essential\": false, "
      "\"memoryReservation\": 64}], "
      "\"volumes\": [{\"name\": \"data\", \"host\": {\"sourcePath\": \"/srv\"}}], "
      "\"tags\": [{\"key\": \"team\", \"value\": \"blue\"}]}";

START_TEST (test_register_numbers_revisions_per_family_in_the_ecs_shape)
{
  cJSON *j = register_json (web_json);
  const cJSON *td = item (j, "taskDefinition");
  ck_assert_str_eq (ts_json_str (td, "taskDefinitionArn"), ARN_PREFIX "web:1");
  ck_assert_int_eq (item (td, "revision")->valueint, 1);
  ck_assert_str_eq (ts_json_str (td, "status"), "ACTIVE");
  ck_assert_str_eq (ts_json_str (td, "family"), "web");
  ck_assert_str_eq (ts_json_str (td, "networkMode"), "awsvpc");
  /* Task cpu and memory come back in units and MiB, as ECS returns them. */
  ck_assert_str_eq (ts_json_str (td, "cpu"), "512");
  ck_assert_str_eq (ts_json_str (td, "memory"), "1024");
  ck_assert_ptr_nonnull (item (td, "registeredAt"));
  const cJSON *compat = item (td, "compatibilities");
  ck_assert_int_eq (cJSON_GetArraySize (compat), 2);
  ck_assert_str_eq (cJSON_GetArrayItem (compat, 0)->valuestring, "EC2");
  ck_assert_str_eq (cJSON_GetArrayItem (compat, 1)->valuestring, "EXTERNAL");
  const cJSON *app = cJSON_GetArrayItem (item (td, "containerDefinitions"), 0);
  ck_assert (cJSON_IsTrue (item (app, "essential")));
  ck_assert_str_eq (ts_json_str (cJSON_GetArrayItem (item (app, "portMappings"), 0), "protocol"),
                    "tcp");
  ck_assert_str_eq (ts_json_str (cJSON_GetArrayItem (item (j, "tags"), 0), "key"), "team");
  ck_assert_ptr_null (item (td, "tags"));
  cJSON_Delete (j);

  j = register_json (web_json);
  ck_assert_str_eq (ts_json_str (item (j, "taskDefinition"), "taskDefinitionArn"),
                    ARN_PREFIX "web:2");
  cJSON_Delete (j);
  register_simple ("db");
  j = ts_cp_aws_ok (&cp, "describe-task-definition --task-definition db");
  ck_assert_int_eq (item (item (j, "taskDefinition"), "revision")->valueint, 1);
  cJSON_Delete (j);
}
END_TEST

START_TEST (test_describe_by_family_revision_and_arn_with_tags_on_request)
{
  cJSON_Delete (register_json (web_json));
  cJSON_Delete (register_json (web_json));
  cJSON *j = ts_cp_aws_ok (&cp, "describe-task-definition --task-definition web");
  ck_assert_str_eq (ts_json_str (item (j, "taskDefinition"), "taskDefinitionArn"),
                    ARN_PREFIX "web:2");
  ck_assert_ptr_null (item (j, "tags"));
  cJSON_Delete (j);
  j = ts_cp_aws_ok (&cp, "describe-task-definition --task-definition web:1 --include TAGS");
  ck_assert_int_eq (item (item (j, "taskDefinition"), "revision")->valueint, 1);
  ck_assert_str_eq (ts_json_str (cJSON_GetArrayItem (item (j, "tags"), 0), "value"), "blue");
  cJSON_Delete (j);
  j = ts_cp_aws_ok (&cp, "describe-task-definition --task-definition " ARN_PREFIX "web:2");
  ck_assert_int_eq (item (item (j, "taskDefinition"), "revision")->valueint, 2);
  cJSON_Delete (j);
  _cleanup_free_ char *e1 = ts_cp_aws_fails_with (
      &cp, "ClientException", "describe-task-definition --task-definition web:3");
  _cleanup_free_ char *e2 = ts_cp_aws_fails_with (
      &cp, "ClientException", "describe-task-definition --task-definition ghost");
  _cleanup_free_ char *e3
      = ts_cp_aws_fails_with (&cp, "ClientException",
                              "describe-task-definition --task-definition "
                              "arn:aws:ecs:eu-west-1:000000000000:task-definition/web:1");
  _cleanup_free_ char *e4
      = ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                              "describe-task-definition --task-definition web --include SECRETS");
}
END_TEST

START_TEST (test_deregister_makes_a_revision_inactive_but_still_describable)
{
  cJSON_Delete (register_json (web_json));
  cJSON_Delete (register_json (web_json));
  cJSON *j = ts_cp_aws_ok (&cp, "deregister-task-definition --task-definition web:2");
  ck_assert_str_eq (ts_json_str (item (j, "taskDefinition"), "status"), "INACTIVE");
  ck_assert_ptr_nonnull (item (item (j, "taskDefinition"), "deregisteredAt"));
  cJSON_Delete (j);
  /* The family alone now means the latest ACTIVE revision. */
  j = ts_cp_aws_ok (&cp, "describe-task-definition --task-definition web");
  ck_assert_int_eq (item (item (j, "taskDefinition"), "revision")->valueint, 1);
  cJSON_Delete (j);
  j = ts_cp_aws_ok (&cp, "describe-task-definition --task-definition web:2");
  ck_assert_str_eq (ts_json_str (item (j, "taskDefinition"), "status"), "INACTIVE");
  cJSON_Delete (j);
  cJSON_Delete (
      ts_cp_aws_ok (&cp, "deregister-task-definition --task-definition " ARN_PREFIX "web:1"));
  _cleanup_free_ char *e1 = ts_cp_aws_fails_with (&cp, "ClientException",
                                                  "describe-task-definition --task-definition web");
  _cleanup_free_ char *e2 = ts_cp_aws_fails_with (
      &cp, "ClientException", "deregister-task-definition --task-definition web");
  _cleanup_free_ char *e3 = ts_cp_aws_fails_with (
      &cp, "ClientException", "deregister-task-definition --task-definition web:9");
  /* A new registration continues the numbering. */
  cJSON *r = register_json (web_json);
  ck_assert_int_eq (item (item (r, "taskDefinition"), "revision")->valueint, 3);
  cJSON_Delete (r);
}
END_TEST

START_TEST (test_list_task_definitions_filters_sorts_and_paginates)
{
  register_simple ("api");
  register_simple ("api");
  register_simple ("web");
  register_simple ("worker");
  register_simple ("worker");
  cJSON_Delete (ts_cp_aws_ok (&cp, "deregister-task-definition --task-definition api:1"));
  cJSON *j = ts_cp_aws_ok (&cp, "list-task-definitions");
  ck_assert_int_eq (cJSON_GetArraySize (item (j, "taskDefinitionArns")), 4);
  ck_assert_str_eq (arn_at (j, "taskDefinitionArns", 0), ARN_PREFIX "api:2");
  ck_assert_str_eq (arn_at (j, "taskDefinitionArns", 3), ARN_PREFIX "worker:2");
  cJSON_Delete (j);
  j = ts_cp_aws_ok (&cp, "list-task-definitions --sort DESC");
  ck_assert_str_eq (arn_at (j, "taskDefinitionArns", 0), ARN_PREFIX "worker:2");
  ck_assert_str_eq (arn_at (j, "taskDefinitionArns", 1), ARN_PREFIX "worker:1");
  cJSON_Delete (j);
  j = ts_cp_aws_ok (&cp, "list-task-definitions --status INACTIVE");
  ck_assert_int_eq (cJSON_GetArraySize (item (j, "taskDefinitionArns")), 1);
  ck_assert_str_eq (arn_at (j, "taskDefinitionArns", 0), ARN_PREFIX "api:1");
  cJSON_Delete (j);
  j = ts_cp_aws_ok (&cp, "list-task-definitions --family-prefix w");
  ck_assert_int_eq (cJSON_GetArraySize (item (j, "taskDefinitionArns")), 3);
  cJSON_Delete (j);
  /* One page of two with a token, then the CLI's paginator through pages of two, both ways. */
  j = ts_cp_aws_ok (&cp, "list-task-definitions --no-paginate --max-results 2");
  ck_assert_int_eq (cJSON_GetArraySize (item (j, "taskDefinitionArns")), 2);
  ck_assert_str_ne (ts_json_str (j, "nextToken"), "");
  cJSON_Delete (j);
  j = ts_cp_aws_ok (&cp, "list-task-definitions --page-size 2");
  ck_assert_int_eq (cJSON_GetArraySize (item (j, "taskDefinitionArns")), 4);
  ck_assert_str_eq (arn_at (j, "taskDefinitionArns", 2), ARN_PREFIX "worker:1");
  cJSON_Delete (j);
  j = ts_cp_aws_ok (&cp, "list-task-definitions --page-size 1 --sort DESC");
  ck_assert_int_eq (cJSON_GetArraySize (item (j, "taskDefinitionArns")), 4);
  ck_assert_str_eq (arn_at (j, "taskDefinitionArns", 3), ARN_PREFIX "api:2");
  cJSON_Delete (j);
  _cleanup_free_ char *e1 = ts_cp_aws_fails_with (
      &cp, "InvalidParameterException", "list-task-definitions --no-paginate --next-token zz");
  _cleanup_free_ char *e2 = ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                                                  "list-task-definitions --status BROKEN");
}
END_TEST

START_TEST (test_list_task_definition_families_by_status_and_page)
{
  register_simple ("alpha");
  register_simple ("beta");
  register_simple ("beta");
  register_simple ("gamma");
  cJSON_Delete (ts_cp_aws_ok (&cp, "deregister-task-definition --task-definition alpha:1"));
  cJSON_Delete (ts_cp_aws_ok (&cp, "deregister-task-definition --task-definition beta:1"));
  cJSON *j = ts_cp_aws_ok (&cp, "list-task-definition-families");
  ck_assert_int_eq (cJSON_GetArraySize (item (j, "families")), 3);
  cJSON_Delete (j);
  j = ts_cp_aws_ok (&cp, "list-task-definition-families --status ACTIVE");
  ck_assert_int_eq (cJSON_GetArraySize (item (j, "families")), 2);
  ck_assert_str_eq (arn_at (j, "families", 0), "beta");
  cJSON_Delete (j);
  j = ts_cp_aws_ok (&cp, "list-task-definition-families --status INACTIVE");
  ck_assert_int_eq (cJSON_GetArraySize (item (j, "families")), 1);
  ck_assert_str_eq (arn_at (j, "families", 0), "alpha");
  cJSON_Delete (j);
  j = ts_cp_aws_ok (&cp, "list-task-definition-families --family-prefix g --status ALL");
  ck_assert_int_eq (cJSON_GetArraySize (item (j, "families")), 1);
  cJSON_Delete (j);
  j = ts_cp_aws_ok (&cp, "list-task-definition-families --no-paginate --max-results 2");
  ck_assert_int_eq (cJSON_GetArraySize (item (j, "families")), 2);
  ck_assert_str_ne (ts_json_str (j, "nextToken"), "");
  cJSON_Delete (j);
  j = ts_cp_aws_ok (&cp, "list-task-definition-families --page-size 1");
  ck_assert_int_eq (cJSON_GetArraySize (item (j, "families")), 3);
  ck_assert_str_eq (arn_at (j, "families", 2), "gamma");
  cJSON_Delete (j);
}
END_TEST

/* Each rule, with the error code and a fragment of the message the user sees. */
START_TEST (test_register_rejects_each_invalid_definition_with_ecs_errors)
{
#define C1 "{\"name\": \"a\", \"image\": \"busybox\", \"memory\": 64"
  register_fails ("ClientException", "Family",
                  "{\"family\": \"bad name\", \"containerDefinitions\": [" C1 "}]}");
  register_fails ("ClientException", "Container list cannot be empty",
                  "{\"family\": \"f\", \"containerDefinitions\": []}");
  register_fails ("ClientException", "must be unique",
                  "{\"family\": \"f\", \"containerDefinitions\": [" C1 "}, " C1 "}]}");
  register_fails ("ClientException", "Container name",
                  "{\"family\": \"f\", \"containerDefinitions\": [{\"name\": \"a.b\", "
                  "\"image\": \"x\", \"memory\": 64}]}");
  register_fails ("ClientException", "Container.image should not be null or empty",
                  "{\"family\": \"f\", \"containerDefinitions\": [{\"name\": \"a\", "
                  "\"memory\": 64}]}");
  register_fails ("ClientException", "At least one of 'memory' or 'memoryReservation'",
                  "{\"family\": \"f\", \"containerDefinitions\": [{\"name\": \"a\", "
                  "\"image\": \"x\"}]}");
  register_fails ("ClientException",
                  "sum of the containers' cpu (384) is greater than the task cpu (256)",
                  "{\"family\": \"f\", \"cpu\": \"256\", \"containerDefinitions\": [" C1
                  ", \"cpu\": 256}, {\"name\": \"b\", \"image\": \"x\", \"memory\": 64, "
                  "\"cpu\": 128}]}");
  register_fails ("ClientException", "greater than the task memory (512 MiB)",
                  "{\"family\": \"f\", \"memory\": \"512\", \"containerDefinitions\": "
                  "[{\"name\": \"a\", \"image\": \"x\", \"memory\": 1024}]}");
  register_fails ("ClientException", "Invalid 'cpu' setting for task",
                  "{\"family\": \"f\", \"cpu\": \"lots\", \"containerDefinitions\": [" C1 "}]}");
  register_fails ("ClientException", "Invalid 'memory' setting for task",
                  "{\"family\": \"f\", \"memory\": \"1 TB\", \"containerDefinitions\": [" C1 "}]}");
  register_fails ("ClientException", "networkMode=awsvpc, the host ports and container ports",
                  "{\"family\": \"f\", \"networkMode\": \"awsvpc\", \"containerDefinitions\": "
                  "[" C1 ", \"portMappings\": [{\"containerPort\": 80, \"hostPort\": 8080}]}]}");
  register_fails ("ClientException", "networkMode=host, the host ports and container ports",
                  "{\"family\": \"f\", \"networkMode\": \"host\", \"containerDefinitions\": "
                  "[" C1 ", \"portMappings\": [{\"containerPort\": 80, \"hostPort\": 81}]}]}");
  register_fails ("InvalidParameterException", "Invalid networkMode",
                  "{\"family\": \"f\", \"networkMode\": \"nat\", \"containerDefinitions\": [" C1
                  "}]}");
  register_fails ("ClientException", "not in the task definition",
                  "{\"family\": \"f\", \"containerDefinitions\": [" C1
                  ", \"dependsOn\": [{\"containerName\": \"ghost\", \"condition\": \"START\"}]}]}");
  register_fails ("ClientException", "form a cycle: a -> b -> c -> a",
                  "{\"family\": \"f\", \"containerDefinitions\": [" C1
                  ", \"dependsOn\": [{\"containerName\": \"b\", \"condition\": \"START\"}]}, "
                  "{\"name\": \"b\", \"image\": \"x\", \"memory\": 64, \"dependsOn\": "
                  "[{\"containerName\": \"c\", \"condition\": \"START\"}]}, "
                  "{\"name\": \"c\", \"image\": \"x\", \"memory\": 64, \"dependsOn\": "
                  "[{\"containerName\": \"a\", \"condition\": \"HEALTHY\"}]}]}");
  register_fails ("ClientException", "at least one essential container",
                  "{\"family\": \"f\", \"containerDefinitions\": [" C1 ", \"essential\": false}]}");
  register_fails (
      "ClientException", "volume 'nope' is not defined",
      "{\"family\": \"f\", \"containerDefinitions\": [" C1
      ", \"mountPoints\": [{\"sourceVolume\": \"nope\", \"containerPath\": \"/x\"}]}]}");
  register_fails ("ClientException", "autoprovision can be true only when the scope is shared",
                  "{\"family\": \"f\", \"containerDefinitions\": [" C1 "}], \"volumes\": "
                  "[{\"name\": \"v\", \"dockerVolumeConfiguration\": {\"scope\": \"task\", "
                  "\"autoprovision\": true}}]}");
  register_fails ("ClientException", "scope must be task or shared",
                  "{\"family\": \"f\", \"containerDefinitions\": [" C1 "}], \"volumes\": "
                  "[{\"name\": \"v\", \"dockerVolumeConfiguration\": {\"scope\": \"host\"}}]}");
  register_fails ("ClientException", "host or dockerVolumeConfiguration, not both",
                  "{\"family\": \"f\", \"containerDefinitions\": [" C1 "}], \"volumes\": "
                  "[{\"name\": \"v\", \"host\": {\"sourcePath\": \"/srv\"}, "
                  "\"dockerVolumeConfiguration\": {\"scope\": \"task\"}}]}");
  register_fails ("InvalidParameterException", "reserved",
                  "{\"family\": \"f\", \"containerDefinitions\": [" C1 "}], "
                  "\"tags\": [{\"key\": \"aws:x\", \"value\": \"y\"}]}");
  /* restartPolicy: Debian's aws CLI predates it, so these go as a newer SDK sends them */
  char *out = NULL;
  long st = ts_cp_call (&cp, "admin", "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition",
                        "{\"family\": \"f\", \"containerDefinitions\": [" C1
                        ", \"restartPolicy\": {\"enabled\": true, \"restartAttemptPeriod\": 10}}]}",
                        &out);
  ck_assert_int_eq (st, 400);
  ck_assert_msg (out && strstr (out, "ClientException") && strstr (out, "restartAttemptPeriod"),
                 "%s", out ? out : "");
  free (out);
  st = ts_cp_call (&cp, "admin", "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition",
                   "{\"family\": \"f\", \"containerDefinitions\": [" C1
                   ", \"restartPolicy\": {\"enabled\": true, \"ignoredExitCodes\": [\"0\"]}}]}",
                   &out);
  ck_assert_int_eq (st, 400);
  ck_assert_msg (out && strstr (out, "ignoredExitCodes"), "%s", out ? out : "");
  free (out);
#undef C1
  /* None of those registered anything; bridge mode takes any host port. */
  cJSON *j = ts_cp_aws_ok (&cp, "list-task-definition-families");
  ck_assert_int_eq (cJSON_GetArraySize (item (j, "families")), 0);
  cJSON_Delete (j);
  cJSON_Delete (register_json (
      "{\"family\": \"f\", \"containerDefinitions\": [{\"name\": \"a\", \"image\": \"x\", "
      "\"memoryReservation\": 64, \"portMappings\": [{\"containerPort\": 80, \"hostPort\": "
      "8080}]}]}"));
  /* a valid restartPolicy is kept as given */
  char *ok = NULL;
  ck_assert_int_eq (
      ts_cp_call (&cp, "admin", "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition",
                  "{\"family\": \"r\", \"containerDefinitions\": [{\"name\": \"a\", "
                  "\"image\": \"x\", \"memory\": 64, \"restartPolicy\": {\"enabled\": true, "
                  "\"ignoredExitCodes\": [0], \"restartAttemptPeriod\": 60}}]}",
                  &ok),
      200);
  ck_assert_msg (ok && strstr (ok, "\"restartAttemptPeriod\":60"), "%s", ok ? ok : "");
  free (ok);
  /* a shared, autoprovisioned local docker volume is a valid definition */
  cJSON_Delete (register_json (
      "{\"family\": \"g\", \"containerDefinitions\": [{\"name\": \"a\", \"image\": \"x\", "
      "\"memory\": 64, \"mountPoints\": [{\"sourceVolume\": \"d\", \"containerPath\": "
      "\"/d\"}]}], \"volumes\": [{\"name\": \"d\", \"dockerVolumeConfiguration\": "
      "{\"scope\": \"shared\", \"autoprovision\": true, \"driver\": \"local\"}}]}"));
}
END_TEST

/* Under ASan a leak in any of these request paths makes the exit status non-zero. */
START_TEST (test_task_definitions_survive_kill_9_and_sigterm_exits_clean)
{
  cJSON_Delete (register_json (web_json));
  ck_assert (WIFSIGNALED (ts_cp_signal (&cp, SIGKILL)));
  ts_cp_start (&cp);
  cJSON *j = ts_cp_aws_ok (&cp, "describe-task-definition --task-definition web:1 --include TAGS");
  ck_assert_str_eq (ts_json_str (item (j, "taskDefinition"), "status"), "ACTIVE");
  cJSON_Delete (j);
  cJSON_Delete (ts_cp_aws_ok (&cp, "list-task-definitions --max-results 1"));
  cJSON_Delete (ts_cp_aws_ok (&cp, "list-task-definition-families --max-results 1"));
  cJSON_Delete (ts_cp_aws_ok (&cp, "deregister-task-definition --task-definition web:1"));
  register_fails ("ClientException", "cycle",
                  "{\"family\": \"f\", \"containerDefinitions\": [{\"name\": \"a\", \"image\": "
                  "\"x\", \"memory\": 64, \"dependsOn\": [{\"containerName\": \"a\", "
                  "\"condition\": \"START\"}]}]}");
  int status = ts_cp_signal (&cp, SIGTERM);
  ck_assert (WIFEXITED (status));
  ck_assert_int_eq (WEXITSTATUS (status), 0);
}
END_TEST

static Suite *taskdefs_suite (void)
{
  Suite *s = suite_create ("controlplane-taskdefs");
  TCase *tc = tcase_create ("aws-cli");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 300);
  tcase_add_test (tc, test_register_numbers_revisions_per_family_in_the_ecs_shape);
  tcase_add_test (tc, test_describe_by_family_revision_and_arn_with_tags_on_request);
  tcase_add_test (tc, test_deregister_makes_a_revision_inactive_but_still_describable);
  tcase_add_test (tc, test_list_task_definitions_filters_sorts_and_paginates);
  tcase_add_test (tc, test_list_task_definition_families_by_status_and_page);
  tcase_add_test (tc, test_register_rejects_each_invalid_definition_with_ecs_errors);
  tcase_add_test (tc, test_task_definitions_survive_kill_9_and_sigterm_exits_clean);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (taskdefs_suite ());
}
