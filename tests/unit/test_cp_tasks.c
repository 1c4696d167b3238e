/* Unit tests of berth-control's container instances and tasks in process (cp_dispatch_as on a
 * store in a temp dir): ARN parsing, resource accounting, caller binding, awsvpc addresses,
 * reload from the store, listing, attributes and tags. */
#include "controlplane/model.h"
#include "lib/cleanup.h"
#include "tests/support/support.h"

#include <cJSON.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN "BKIAADMIN"
#define AGENT1 "BKAGONE"
#define AGENT2 "BKAGTWO"

static char *dir;
static cp_ctx *ctx;

static const char *ts_json_str (const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItem (obj, key);
  return cJSON_IsString (v) ? v->valuestring : "";
}

static void open_ctx (void)
{
  _cleanup_free_ char *db = NULL, *subnets = NULL;
  berr *err = NULL;
  ck_assert_int_ge (asprintf (&db, "%s/db", dir), 0);
  ck_assert_int_ge (asprintf (&subnets, "%s/subnets.json", dir), 0);
  ck_assert_int_eq (cp_ctx_open (db, "us-east-1", "000000000000", &ctx, &err), 0);
  ck_assert_int_eq (cp_ctx_load_subnets (ctx, subnets, &err), 0);
}

static void setup (void)
{
  dir = ts_mkdtemp ("cp-tasks");
  _cleanup_free_ char *path = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/subnets.json", dir), 0);
  FILE *f = fopen (path, "we");
  ck_assert_ptr_nonnull (f);
  /* A /29: addresses .1 (gateway) to .6 usable, so .2 to .6 go to tasks. */
  fputs ("[{\"subnetId\": \"subnet-a\", \"cidr\": \"10.1.0.0/29\", \"gateway\": \"10.1.0.1\","
         " \"dns\": [\"10.1.0.1\"]}]",
         f);
  fclose (f);
  open_ctx ();
}

static void teardown (void)
{
  cp_ctx_free (ctx);
  ts_rmtree (dir);
  free (dir);
}

/* Calls action as (role, key) with body; returns the parsed response and sets *status. */
static cJSON *call_as (enum cp_role role, const char *key, const char *action, const char *body,
                       int *status)
{
  char *resp = NULL;
  *status = cp_dispatch_as (ctx, role, key, action, body, strlen (body), &resp);
  ck_assert_ptr_nonnull (resp);
  cJSON *j = cJSON_Parse (resp);
  free (resp);
  ck_assert_ptr_nonnull (j);
  return j;
}

/* The request body fmt makes with ap (newly allocated). */
static char *body_of (const char *fmt, va_list ap) __attribute__ ((format (printf, 1, 0)));
static char *body_of (const char *fmt, va_list ap)
{
  char *body = NULL;
  ck_assert_int_ge (vasprintf (&body, fmt, ap), 0);
  return body;
}

static cJSON *ok_as (enum cp_role role, const char *key, const char *action, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
static cJSON *ok_as (enum cp_role role, const char *key, const char *action, const char *fmt, ...)
{
  va_list ap;
  int status;
  va_start (ap, fmt);
  _cleanup_free_ char *body = body_of (fmt, ap);
  va_end (ap);
  cJSON *j = call_as (role, key, action, body, &status);
  if (status != 200)
    {
      char *text = cJSON_PrintUnformatted (j);
      ck_abort_msg ("%s %s: %d %s", action, body, status, text);
    }
  return j;
}

#define ok(action, ...) ok_as (CP_ROLE_ADMIN, ADMIN, action, __VA_ARGS__)

static void fails_as (enum cp_role role, const char *key, const char *type, const char *action,
                      const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));
static void fails_as (enum cp_role role, const char *key, const char *type, const char *action,
                      const char *fmt, ...)
{
  va_list ap;
  int status;
  va_start (ap, fmt);
  _cleanup_free_ char *body = body_of (fmt, ap);
  va_end (ap);
  cJSON *j = call_as (role, key, action, body, &status);
  const char *got = ts_json_str (j, "__type");
  ck_assert_msg (status == 400 && strcmp (got, type) == 0, "%s %s: %d %s (want %s)", action, body,
                 status, got, type);
  cJSON_Delete (j);
}

#define fails(type, action, ...) fails_as (CP_ROLE_ADMIN, ADMIN, type, action, __VA_ARGS__)

/* Registers an instance with cpu, memory, eni as key; returns its ARN (static storage). */
static const char *register_instance (const char *key, int cpu, int mem, int eni)
{
  static char arns[8][160];
  static int next;
  cJSON *j = ok_as (key[2] == 'A' ? CP_ROLE_AGENT : CP_ROLE_ADMIN, key, "RegisterContainerInstance",
                    "{\"cluster\":\"c\",\"totalResources\":["
                    "{\"name\":\"CPU\",\"type\":\"INTEGER\",\"integerValue\":%d},"
                    "{\"name\":\"MEMORY\",\"type\":\"INTEGER\",\"integerValue\":%d},"
                    "{\"name\":\"PORTS\",\"type\":\"STRINGSET\",\"stringSetValue\":[\"22\"]},"
                    "{\"name\":\"ENI\",\"type\":\"INTEGER\",\"integerValue\":%d}],"
                    "\"attributes\":[{\"name\":\"zone\",\"value\":\"z%d\"}]}",
                    cpu, mem, eni, next);
  char *out = arns[next++ % 8];
  snprintf (out, 160, "%s",
            ts_json_str (cJSON_GetObjectItem (j, "containerInstance"), "containerInstanceArn"));
  cJSON_Delete (j);
  return out;
}

/* The first task's lastStatus in DescribeTasks of task is want. */
static void assert_last_status (const char *task, const char *want)
{
  cJSON *tj = ok ("DescribeTasks", "{\"cluster\":\"c\",\"tasks\":[\"%s\"]}", task);
  ck_assert_str_eq (
      ts_json_str (cJSON_GetArrayItem (cJSON_GetObjectItem (tj, "tasks"), 0), "lastStatus"), want);
  cJSON_Delete (tj);
}

/* Reports task's status as its agent would (SubmitTaskStateChange). */
static void submit_task_status (const char *task, const char *status)
{
  cJSON_Delete (ok ("SubmitTaskStateChange",
                    "{\"cluster\":\"c\",\"task\":\"%s\",\"status\":\"%s\"}", task, status));
}

/* How many instances ListContainerInstances with body lists. */
static int instances_listed (const char *body)
{
  cJSON *l = ok ("ListContainerInstances", "%s", body);
  int n = cJSON_GetArraySize (cJSON_GetObjectItem (l, "containerInstanceArns"));
  cJSON_Delete (l);
  return n;
}

static void create_cluster_and_defs (void)
{
  cJSON_Delete (ok ("CreateCluster", "{\"clusterName\":\"c\"}"));
  cJSON_Delete (ok ("RegisterTaskDefinition",
                    "{\"family\":\"br\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
                    "\"x\",\"cpu\":256,\"memory\":512,\"portMappings\":[{\"containerPort\":80,"
                    "\"hostPort\":8080},{\"containerPort\":53,\"hostPort\":53,\"protocol\":"
                    "\"udp\"}]}]}"));
  cJSON_Delete (ok ("RegisterTaskDefinition",
                    "{\"family\":\"small\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
                    "\"x\",\"cpu\":100,\"memory\":100},{\"name\":\"side\",\"image\":\"x\","
                    "\"memoryReservation\":28}]}"));
  cJSON_Delete (ok ("RegisterTaskDefinition",
                    "{\"family\":\"vpc\",\"networkMode\":\"awsvpc\",\"cpu\":\"128\",\"memory\":"
                    "\"128\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":\"x\"}]}"));
}

/* remainingResources value of name for instance arn. */
static int64_t remaining (const char *arn, const char *name)
{
  cJSON *j = ok ("DescribeContainerInstances",
                 "{\"cluster\":\"c\",\"containerInstances\":[\"%s\"]}", arn);
  const cJSON *ci = cJSON_GetArrayItem (cJSON_GetObjectItem (j, "containerInstances"), 0), *r;
  int64_t v = -1;
  cJSON_ArrayForEach (r, cJSON_GetObjectItem (ci, "remainingResources"))
  {
    if (strcmp (ts_json_str (r, "name"), name) == 0)
      v = strcmp (name, "PORTS") == 0 || strcmp (name, "PORTS_UDP") == 0
              ? cJSON_GetArraySize (cJSON_GetObjectItem (r, "stringSetValue"))
              : (int64_t)cJSON_GetObjectItem (r, "integerValue")->valuedouble;
  }
  cJSON_Delete (j);
  return v;
}

/* Runs count copies of taskdef; returns the response. */
static cJSON *run (const char *taskdef, int count)
{
  return ok ("RunTask", "{\"cluster\":\"c\",\"taskDefinition\":\"%s\",\"count\":%d}", taskdef,
             count);
}

static const char *task_arn (const cJSON *res, int i)
{
  return ts_json_str (cJSON_GetArrayItem (cJSON_GetObjectItem (res, "tasks"), i), "taskArn");
}

START_TEST (test_arns_parse_only_for_this_region_and_account)
{
  char type[32], rest[512];
  ck_assert (cp_arn_parse (ctx, "arn:aws:ecs:us-east-1:000000000000:task/c/abc", type, rest));
  ck_assert_str_eq (type, "task");
  ck_assert_str_eq (rest, "c/abc");
  ck_assert (cp_arn_parse (ctx, "arn:aws:ecs:us-east-1:000000000000:cluster/web", type, rest));
  ck_assert_str_eq (type, "cluster");
  ck_assert (!cp_arn_parse (ctx, "arn:aws:ecs:eu-west-1:000000000000:task/c/abc", type, rest));
  ck_assert (!cp_arn_parse (ctx, "arn:aws:ecs:us-east-1:111111111111:task/c/abc", type, rest));
  ck_assert (!cp_arn_parse (ctx, "arn:aws:ec2:us-east-1:000000000000:task/c/abc", type, rest));
  ck_assert (!cp_arn_parse (ctx, "arn:aws:ecs:us-east-1:000000000000:task", type, rest));
  ck_assert (!cp_arn_parse (ctx, "arn:aws:ecs:us-east-1:000000000000:task/", type, rest));
  ck_assert (!cp_arn_parse (ctx, "arn:aws:ecs:us-east-1:000000000000:/x", type, rest));
  /* Lookups by ARN need the right type and cluster; by id, 32 hex digits. */
  create_cluster_and_defs ();
  const char *ci = register_instance (ADMIN, 1024, 1024, 0);
  const char *id = strrchr (ci, '/') + 1;
  ck_assert_ptr_nonnull (cp_instance_find (ctx, "c", ci));
  ck_assert_ptr_nonnull (cp_instance_find (ctx, "c", id));
  ck_assert_ptr_null (cp_instance_find (ctx, "other", id));
  char wrong[256];
  snprintf (wrong, sizeof wrong, "arn:aws:ecs:us-east-1:000000000000:task/c/%s", id);
  ck_assert_ptr_null (cp_instance_find (ctx, "c", wrong));
  ck_assert_ptr_null (cp_instance_find (ctx, "c", "ABCDEF"));
}
END_TEST

START_TEST (test_placed_tasks_take_resources_and_stopping_gives_them_back)
{
  create_cluster_and_defs ();
  const char *ci = register_instance (ADMIN, 1024, 2048, 0);
  cJSON *r = run ("br", 1);
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (r, "tasks")), 1);
  ck_assert_int_eq (remaining (ci, "CPU"), 1024 - 256);
  ck_assert_int_eq (remaining (ci, "MEMORY"), 2048 - 512);
  ck_assert_int_eq (remaining (ci, "PORTS"), 2); /* 22 reserved + 8080 */
  ck_assert_int_eq (remaining (ci, "PORTS_UDP"), 1);
  /* The same static host port cannot be placed twice on one instance. */
  cJSON *r2 = run ("br", 1);
  const cJSON *f = cJSON_GetArrayItem (cJSON_GetObjectItem (r2, "failures"), 0);
  ck_assert_str_eq (ts_json_str (f, "reason"), "RESOURCE:PORTS");
  ck_assert_str_eq (ts_json_str (f, "arn"), ci);
  cJSON_Delete (r2);
  /* Memory sums hard limits, or reservations where there is none: 100 + 28. */
  cJSON *r3 = run ("small", 2);
  ck_assert_str_eq (
      ts_json_str (cJSON_GetArrayItem (cJSON_GetObjectItem (r3, "tasks"), 0), "memory"), "128");
  ck_assert_int_eq (remaining (ci, "CPU"), 1024 - 256 - 200);
  ck_assert_int_eq (remaining (ci, "MEMORY"), 2048 - 512 - 256);
  /* Too big for what remains: RESOURCE:CPU. */
  cJSON *r4
      = ok ("RunTask",
            "{\"cluster\":\"c\",\"taskDefinition\":\"small\",\"overrides\":{\"cpu\":\"1024\"}}");
  ck_assert_str_eq (
      ts_json_str (cJSON_GetArrayItem (cJSON_GetObjectItem (r4, "failures"), 0), "reason"),
      "RESOURCE:CPU");
  cJSON_Delete (r4);
  /* StopTask alone only asks; STOPPED from the agent frees. */
  cJSON_Delete (ok ("StopTask", "{\"cluster\":\"c\",\"task\":\"%s\"}", task_arn (r, 0)));
  ck_assert_int_eq (remaining (ci, "CPU"), 1024 - 256 - 200);
  submit_task_status (task_arn (r, 0), "STOPPED");
  ck_assert_int_eq (remaining (ci, "CPU"), 1024 - 200);
  ck_assert_int_eq (remaining (ci, "MEMORY"), 2048 - 256);
  ck_assert_int_eq (remaining (ci, "PORTS"), 1);
  ck_assert_int_eq (remaining (ci, "PORTS_UDP"), 0);
  /* A second STOPPED gives nothing back twice. */
  submit_task_status (task_arn (r, 0), "STOPPED");
  ck_assert_int_eq (remaining (ci, "CPU"), 1024 - 200);
  cJSON_Delete (r);
  cJSON_Delete (r3);
}
END_TEST

START_TEST (test_task_states_set_times_counts_and_stop_codes)
{
  create_cluster_and_defs ();
  const char *ci = register_instance (ADMIN, 1024, 2048, 0);
  cJSON *r = run ("small", 1);
  const char *t = task_arn (r, 0);
  cJSON *d = ok ("DescribeContainerInstances",
                 "{\"cluster\":\"c\",\"containerInstances\":[\"%s\"]}", ci);
  const cJSON *c = cJSON_GetArrayItem (cJSON_GetObjectItem (d, "containerInstances"), 0);
  ck_assert_int_eq (cJSON_GetObjectItem (c, "pendingTasksCount")->valueint, 1);
  cJSON_Delete (d);
  cJSON_Delete (ok ("SubmitTaskStateChange",
                    "{\"cluster\":\"c\",\"task\":\"%s\",\"status\":\"RUNNING\",\"pullStartedAt\":5,"
                    "\"containers\":[{\"containerName\":\"app\",\"status\":\"RUNNING\","
                    "\"runtimeId\":\"r1\",\"networkBindings\":[{\"containerPort\":80,"
                    "\"hostPort\":80}]}]}",
                    t));
  d = ok ("DescribeContainerInstances", "{\"cluster\":\"c\",\"containerInstances\":[\"%s\"]}", ci);
  c = cJSON_GetArrayItem (cJSON_GetObjectItem (d, "containerInstances"), 0);
  ck_assert_int_eq (cJSON_GetObjectItem (c, "pendingTasksCount")->valueint, 0);
  ck_assert_int_eq (cJSON_GetObjectItem (c, "runningTasksCount")->valueint, 1);
  cJSON_Delete (d);
  cJSON *tj = ok ("DescribeTasks", "{\"cluster\":\"c\",\"tasks\":[\"%s\"]}", t);
  const cJSON *task = cJSON_GetArrayItem (cJSON_GetObjectItem (tj, "tasks"), 0);
  ck_assert_str_eq (ts_json_str (task, "lastStatus"), "RUNNING");
  ck_assert_ptr_nonnull (cJSON_GetObjectItem (task, "startedAt"));
  ck_assert_int_eq (cJSON_GetObjectItem (task, "pullStartedAt")->valueint, 5);
  const cJSON *app = cJSON_GetArrayItem (cJSON_GetObjectItem (task, "containers"), 0);
  ck_assert_str_eq (ts_json_str (app, "runtimeId"), "r1");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (app, "networkBindings")), 1);
  cJSON_Delete (tj);
  cJSON_Delete (ok ("SubmitContainerStateChange",
                    "{\"cluster\":\"c\",\"task\":\"%s\",\"containerName\":\"app\",\"status\":"
                    "\"STOPPED\",\"exitCode\":3,\"reason\":\"boom\"}",
                    t));
  cJSON_Delete (ok ("SubmitTaskStateChange",
                    "{\"cluster\":\"c\",\"task\":\"%s\",\"status\":\"STOPPED\",\"reason\":\"app "
                    "exited\"}",
                    t));
  tj = ok ("DescribeTasks", "{\"cluster\":\"c\",\"tasks\":[\"%s\"]}", t);
  task = cJSON_GetArrayItem (cJSON_GetObjectItem (tj, "tasks"), 0);
  ck_assert_str_eq (ts_json_str (task, "lastStatus"), "STOPPED");
  ck_assert_str_eq (ts_json_str (task, "desiredStatus"), "STOPPED");
  ck_assert_str_eq (ts_json_str (task, "stopCode"), "EssentialContainerExited");
  ck_assert_str_eq (ts_json_str (task, "stoppedReason"), "app exited");
  ck_assert_ptr_nonnull (cJSON_GetObjectItem (task, "stoppedAt"));
  app = cJSON_GetArrayItem (cJSON_GetObjectItem (task, "containers"), 0);
  ck_assert_int_eq (cJSON_GetObjectItem (app, "exitCode")->valueint, 3);
  ck_assert_str_eq (ts_json_str (app, "reason"), "boom");
  /* Stopped stays stopped. */
  submit_task_status (t, "RUNNING");
  cJSON_Delete (tj);
  assert_last_status (t, "STOPPED");
  cJSON_Delete (r);
}
END_TEST

START_TEST (test_agent_keys_touch_only_their_own_instance)
{
  create_cluster_and_defs ();
  const char *mine = register_instance (AGENT1, 1024, 1024, 0);
  char mine_copy[160];
  snprintf (mine_copy, sizeof mine_copy, "%s", mine);
  cJSON *r = ok ("StartTask",
                 "{\"cluster\":\"c\",\"taskDefinition\":\"small\","
                 "\"containerInstances\":[\"%s\"]}",
                 mine_copy);
  const char *t = task_arn (r, 0);
  fails_as (CP_ROLE_AGENT, AGENT1, "AccessDeniedException", "RunTask",
            "{\"cluster\":\"c\",\"taskDefinition\":\"small\"}");
  fails_as (CP_ROLE_AGENT, AGENT2, "AccessDeniedException", "SubmitTaskStateChange",
            "{\"cluster\":\"c\",\"task\":\"%s\",\"status\":\"RUNNING\"}", t);
  fails_as (CP_ROLE_AGENT, AGENT2, "AccessDeniedException", "SubmitContainerStateChange",
            "{\"cluster\":\"c\",\"task\":\"%s\",\"containerName\":\"app\",\"status\":\"RUNNING\"}",
            t);
  fails_as (CP_ROLE_AGENT, AGENT2, "AccessDeniedException", "DeregisterContainerInstance",
            "{\"cluster\":\"c\",\"containerInstance\":\"%s\",\"force\":true}", mine_copy);
  fails_as (CP_ROLE_AGENT, AGENT2, "AccessDeniedException", "DiscoverPollEndpoint",
            "{\"cluster\":\"c\",\"containerInstance\":\"%s\"}", mine_copy);
  fails_as (CP_ROLE_AGENT, AGENT2, "AccessDeniedException", "RegisterContainerInstance",
            "{\"cluster\":\"c\",\"containerInstanceArn\":\"%s\",\"totalResources\":["
            "{\"name\":\"CPU\",\"integerValue\":1},{\"name\":\"MEMORY\",\"integerValue\":1}]}",
            mine_copy);
  cJSON_Delete (ok_as (CP_ROLE_AGENT, AGENT1, "SubmitTaskStateChange",
                       "{\"cluster\":\"c\",\"task\":\"%s\",\"status\":\"RUNNING\"}", t));
  cJSON *d = ok_as (CP_ROLE_AGENT, AGENT1, "DiscoverPollEndpoint",
                    "{\"cluster\":\"c\",\"containerInstance\":\"%s\"}", mine_copy);
  ck_assert_ptr_nonnull (strstr (ts_json_str (d, "endpoint"), "http://"));
  cJSON_Delete (d);
  /* Re-registration with the stored ARN keeps the instance and what its tasks hold. */
  cJSON *re = ok_as (CP_ROLE_AGENT, AGENT1, "RegisterContainerInstance",
                     "{\"cluster\":\"c\",\"containerInstanceArn\":\"%s\",\"totalResources\":["
                     "{\"name\":\"CPU\",\"type\":\"INTEGER\",\"integerValue\":2048},"
                     "{\"name\":\"MEMORY\",\"type\":\"INTEGER\",\"integerValue\":1024}]}",
                     mine_copy);
  const cJSON *ci = cJSON_GetObjectItem (re, "containerInstance");
  ck_assert_str_eq (ts_json_str (ci, "containerInstanceArn"), mine_copy);
  ck_assert_int_eq (cJSON_GetObjectItem (ci, "version")->valueint, 2);
  cJSON_Delete (re);
  ck_assert_int_eq (remaining (mine_copy, "CPU"), 2048 - 100);
  ck_assert_int_eq (remaining (mine_copy, "MEMORY"), 1024 - 128);
  /* Its own key may deregister it, and with force its tasks stop. */
  fails_as (CP_ROLE_AGENT, AGENT1, "InvalidParameterException", "DeregisterContainerInstance",
            "{\"cluster\":\"c\",\"containerInstance\":\"%s\"}", mine_copy);
  cJSON_Delete (ok_as (CP_ROLE_AGENT, AGENT1, "DeregisterContainerInstance",
                       "{\"cluster\":\"c\",\"containerInstance\":\"%s\",\"force\":true}",
                       mine_copy));
  assert_last_status (t, "STOPPED");
  cJSON_Delete (r);
}
END_TEST

START_TEST (test_draining_and_deregistered_instances_get_no_tasks)
{
  create_cluster_and_defs ();
  const char *a = register_instance (ADMIN, 1024, 1024, 0);
  char a_copy[160];
  snprintf (a_copy, sizeof a_copy, "%s", a);
  cJSON_Delete (ok ("UpdateContainerInstancesState",
                    "{\"cluster\":\"c\",\"containerInstances\":[\"%s\"],\"status\":\"DRAINING\"}",
                    a_copy));
  cJSON *r = run ("small", 2);
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (r, "tasks")), 0);
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (r, "failures")), 2);
  ck_assert_str_eq (
      ts_json_str (cJSON_GetArrayItem (cJSON_GetObjectItem (r, "failures"), 0), "reason"), "AGENT");
  cJSON_Delete (r);
  fails ("InvalidParameterException", "UpdateContainerInstancesState",
         "{\"cluster\":\"c\",\"containerInstances\":[\"%s\"],\"status\":\"REGISTERING\"}", a_copy);
  const char *b = register_instance (ADMIN, 1024, 1024, 0);
  r = run ("small", 1);
  ck_assert_str_eq (ts_json_str (cJSON_GetArrayItem (cJSON_GetObjectItem (r, "tasks"), 0),
                                 "containerInstanceArn"),
                    b);
  cJSON_Delete (r);
  /* ListContainerInstances by status and by attribute. */
  ck_assert_int_eq (instances_listed ("{\"cluster\":\"c\",\"status\":\"DRAINING\"}"), 1);
  ck_assert_int_eq (instances_listed ("{\"cluster\":\"c\",\"filter\":\"attribute:zone == z1\"}"),
                    1);
  ck_assert_int_eq (
      instances_listed ("{\"cluster\":\"c\",\"filter\":\"attribute:ecs.os-type exists\"}"), 2);
  fails ("InvalidParameterException", "ListContainerInstances",
         "{\"cluster\":\"c\",\"filter\":\"runningTasksCount >> 1\"}");
  /* The whole cluster query language, pattern matches included. */
  ck_assert_int_eq (instances_listed ("{\"cluster\":\"c\",\"filter\":\"attribute:zone =~ z9\"}"),
                    0);
  /* Placement sees the same instance view as the filter: registeredAt and agentConnected. */
  r = ok ("RunTask", "{\"cluster\":\"c\",\"taskDefinition\":\"small\",\"placementConstraints\":"
                     "[{\"type\":\"memberOf\",\"expression\":\"registeredAt > 2020-01-01 and "
                     "agentConnected == true\"}]}");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (r, "tasks")), 1);
  cJSON_Delete (r);
  ck_assert_int_eq (
      instances_listed ("{\"cluster\":\"c\",\"filter\":\"registeredAt > 2020-01-01\"}"), 2);
  cJSON *l = ok ("ListContainerInstances", "{\"cluster\":\"c\",\"maxResults\":1}");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l, "containerInstanceArns")), 1);
  const char *token = ts_json_str (l, "nextToken");
  ck_assert_str_ne (token, "");
  cJSON *l2 = ok ("ListContainerInstances", "{\"cluster\":\"c\",\"nextToken\":\"%s\"}", token);
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l2, "containerInstanceArns")), 1);
  ck_assert_ptr_null (cJSON_GetObjectItem (l2, "nextToken"));
  cJSON_Delete (l2);
  cJSON_Delete (l);
}
END_TEST

START_TEST (test_awsvpc_tasks_get_addresses_from_their_subnet_until_it_is_full)
{
  create_cluster_and_defs ();
  register_instance (ADMIN, 8192, 8192, 10);
  fails ("InvalidParameterException", "RunTask", "{\"cluster\":\"c\",\"taskDefinition\":\"vpc\"}");
  fails ("InvalidParameterException", "RunTask",
         "{\"cluster\":\"c\",\"taskDefinition\":\"vpc\",\"networkConfiguration\":{"
         "\"awsvpcConfiguration\":{\"subnets\":[\"subnet-zzz\"]}}}");
  fails ("InvalidParameterException", "RunTask",
         "{\"cluster\":\"c\",\"taskDefinition\":\"small\",\"networkConfiguration\":{"
         "\"awsvpcConfiguration\":{\"subnets\":[\"subnet-a\"]}}}");
  /* 10.1.0.0/29: .2 to .6 (not the network, .1 the gateway, .7 the broadcast). */
  cJSON *r = ok ("RunTask", "{\"cluster\":\"c\",\"taskDefinition\":\"vpc\",\"count\":6,"
                            "\"networkConfiguration\":{\"awsvpcConfiguration\":{\"subnets\":["
                            "\"subnet-a\"]}}}");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (r, "tasks")), 5);
  ck_assert_str_eq (
      ts_json_str (cJSON_GetArrayItem (cJSON_GetObjectItem (r, "failures"), 0), "reason"),
      "RESOURCE:IP");
  const cJSON *t0 = cJSON_GetArrayItem (cJSON_GetObjectItem (r, "tasks"), 0);
  const cJSON *att = cJSON_GetArrayItem (cJSON_GetObjectItem (t0, "attachments"), 0);
  ck_assert_str_eq (ts_json_str (att, "type"), "ElasticNetworkInterface");
  const cJSON *d;
  char ip[32] = "", mac[32] = "", subnet[32] = "";
  cJSON_ArrayForEach (d, cJSON_GetObjectItem (att, "details"))
  {
    if (strcmp (ts_json_str (d, "name"), "privateIPv4Address") == 0)
      snprintf (ip, sizeof ip, "%s", ts_json_str (d, "value"));
    if (strcmp (ts_json_str (d, "name"), "macAddress") == 0)
      snprintf (mac, sizeof mac, "%s", ts_json_str (d, "value"));
    if (strcmp (ts_json_str (d, "name"), "subnetId") == 0)
      snprintf (subnet, sizeof subnet, "%s", ts_json_str (d, "value"));
  }
  ck_assert_str_eq (ip, "10.1.0.2");
  ck_assert_str_eq (subnet, "subnet-a");
  ck_assert_int_eq (strlen (mac), 17);
  ck_assert (strncmp (mac, "02:", 3) == 0); /* locally administered, unicast */
  const cJSON *ni = cJSON_GetArrayItem (
      cJSON_GetObjectItem (cJSON_GetArrayItem (cJSON_GetObjectItem (t0, "containers"), 0),
                           "networkInterfaces"),
      0);
  ck_assert_str_eq (ts_json_str (ni, "privateIpv4Address"), "10.1.0.2");
  /* Stopping the first frees .2, which the next task gets, also after a reload. */
  submit_task_status (task_arn (r, 0), "STOPPED");
  cp_ctx_free (ctx);
  open_ctx ();
  cJSON *r2 = ok ("RunTask", "{\"cluster\":\"c\",\"taskDefinition\":\"vpc\",\"count\":2,"
                             "\"networkConfiguration\":{\"awsvpcConfiguration\":{\"subnets\":["
                             "\"subnet-a\"]}}}");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (r2, "tasks")), 1);
  char *text = cJSON_PrintUnformatted (r2);
  ck_assert_ptr_nonnull (strstr (text, "\"10.1.0.2\""));
  free (text);
  cJSON_Delete (r2);
  cJSON_Delete (r);
}
END_TEST

START_TEST (test_reload_from_the_store_restores_holdings_and_bindings)
{
  create_cluster_and_defs ();
  const char *a = register_instance (AGENT1, 1024, 2048, 0);
  char arn[160];
  snprintf (arn, sizeof arn, "%s", a);
  cJSON *r = run ("br", 1);
  char t[200];
  snprintf (t, sizeof t, "%s", task_arn (r, 0));
  cJSON_Delete (r);
  cJSON_Delete (ok_as (CP_ROLE_AGENT, AGENT1, "SubmitTaskStateChange",
                       "{\"cluster\":\"c\",\"task\":\"%s\",\"status\":\"RUNNING\"}", t));
  cp_ctx_free (ctx);
  open_ctx ();
  ck_assert_int_eq (remaining (arn, "CPU"), 1024 - 256);
  ck_assert_int_eq (remaining (arn, "PORTS"), 2);
  cJSON *d = ok ("DescribeContainerInstances",
                 "{\"cluster\":\"c\",\"containerInstances\":[\"%s\"]}", arn);
  ck_assert_int_eq (
      cJSON_GetObjectItem (cJSON_GetArrayItem (cJSON_GetObjectItem (d, "containerInstances"), 0),
                           "runningTasksCount")
          ->valueint,
      1);
  cJSON_Delete (d);
  fails_as (CP_ROLE_AGENT, AGENT2, "AccessDeniedException", "SubmitTaskStateChange",
            "{\"cluster\":\"c\",\"task\":\"%s\",\"status\":\"STOPPED\"}", t);
  cJSON_Delete (ok_as (CP_ROLE_AGENT, AGENT1, "SubmitTaskStateChange",
                       "{\"cluster\":\"c\",\"task\":\"%s\",\"status\":\"STOPPED\"}", t));
  ck_assert_int_eq (remaining (arn, "CPU"), 1024);
}
END_TEST

START_TEST (test_run_task_input_errors)
{
  create_cluster_and_defs ();
  char ci[160];
  snprintf (ci, sizeof ci, "%s", register_instance (ADMIN, 1024, 1024, 0));
  fails ("ClusterNotFoundException", "RunTask",
         "{\"cluster\":\"nope\",\"taskDefinition\":\"small\"}");
  fails ("InvalidParameterException", "RunTask", "{\"cluster\":\"c\"}");
  fails ("ClientException", "RunTask", "{\"cluster\":\"c\",\"taskDefinition\":\"ghost\"}");
  fails ("InvalidParameterException", "RunTask",
         "{\"cluster\":\"c\",\"taskDefinition\":\"small\",\"count\":0}");
  fails ("InvalidParameterException", "RunTask",
         "{\"cluster\":\"c\",\"taskDefinition\":\"small\",\"count\":11}");
  fails ("SerializationException", "RunTask",
         "{\"cluster\":\"c\",\"taskDefinition\":\"small\",\"count\":\"2\"}");
  fails ("SerializationException", "RunTask",
         "{\"cluster\":\"c\",\"taskDefinition\":\"small\",\"count\":1.5}");
  fails ("InvalidParameterException", "RunTask",
         "{\"cluster\":\"c\",\"taskDefinition\":\"small\",\"launchType\":\"FARGATE\"}");
  fails ("InvalidParameterException", "RunTask",
         "{\"cluster\":\"c\",\"taskDefinition\":\"small\",\"overrides\":{\"containerOverrides\":"
         "[{\"name\":\"ghost\"}]}}");
  fails ("SerializationException", "RunTask",
         "{\"cluster\":\"c\",\"taskDefinition\":\"small\",\"overrides\":{\"containerOverrides\":"
         "[{\"name\":\"app\",\"command\":\"ls\"}]}}");
  fails ("InvalidParameterException", "RunTask",
         "{\"cluster\":\"c\",\"taskDefinition\":\"small\",\"placementStrategy\":[\"binpack\"]}");
  cJSON_Delete (ok ("DeregisterTaskDefinition", "{\"taskDefinition\":\"small:1\"}"));
  fails ("ClientException", "RunTask", "{\"cluster\":\"c\",\"taskDefinition\":\"small:1\"}");
  fails ("InvalidParameterException", "StopTask", "{\"cluster\":\"c\",\"task\":\"%032d\"}", 0);
  fails ("InvalidParameterException", "StartTask",
         "{\"cluster\":\"c\",\"taskDefinition\":\"br\",\"containerInstances\":[\"%s\",\"%s\"]}", ci,
         ci);
  fails ("InvalidParameterException", "StartTask",
         "{\"cluster\":\"c\",\"taskDefinition\":\"br\",\"containerInstances\":[\"%032d\"]}", 0);
  cJSON *d = ok ("DescribeTasks", "{\"cluster\":\"c\",\"tasks\":[\"%032d\"]}", 0);
  ck_assert_str_eq (
      ts_json_str (cJSON_GetArrayItem (cJSON_GetObjectItem (d, "failures"), 0), "reason"),
      "MISSING");
  cJSON_Delete (d);
  fails ("InvalidParameterException", "DescribeTasks", "{\"cluster\":\"c\",\"tasks\":[]}");
  fails ("InvalidParameterException", "RegisterContainerInstance",
         "{\"cluster\":\"c\",\"totalResources\":[{\"name\":\"CPU\",\"integerValue\":0}]}");
  fails ("SerializationException", "RegisterContainerInstance",
         "{\"cluster\":\"c\",\"totalResources\":{\"name\":\"CPU\"}}");
}
END_TEST

START_TEST (test_list_tasks_filters_and_pages)
{
  create_cluster_and_defs ();
  const char *a = register_instance (ADMIN, 8192, 8192, 0);
  char arn[160];
  snprintf (arn, sizeof arn, "%s", a);
  cJSON_Delete (run ("small", 3));
  cJSON *r = ok ("RunTask", "{\"cluster\":\"c\",\"taskDefinition\":\"br\",\"startedBy\":\"me\","
                            "\"group\":\"service:web\"}");
  cJSON *l = ok ("ListTasks", "{\"cluster\":\"c\"}");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l, "taskArns")), 4);
  cJSON_Delete (l);
  l = ok ("ListTasks", "{\"cluster\":\"c\",\"family\":\"br\"}");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l, "taskArns")), 1);
  cJSON_Delete (l);
  l = ok ("ListTasks", "{\"cluster\":\"c\",\"startedBy\":\"me\"}");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l, "taskArns")), 1);
  cJSON_Delete (l);
  l = ok ("ListTasks", "{\"cluster\":\"c\",\"serviceName\":\"web\"}");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l, "taskArns")), 1);
  cJSON_Delete (l);
  l = ok ("ListTasks", "{\"cluster\":\"c\",\"containerInstance\":\"%s\"}", arn);
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l, "taskArns")), 4);
  cJSON_Delete (l);
  submit_task_status (task_arn (r, 0), "STOPPED");
  l = ok ("ListTasks", "{\"cluster\":\"c\",\"desiredStatus\":\"STOPPED\"}");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l, "taskArns")), 1);
  cJSON_Delete (l);
  fails ("InvalidParameterException", "ListTasks",
         "{\"cluster\":\"c\",\"desiredStatus\":\"GONE\"}");
  /* Three pages of one, then nothing more. */
  l = ok ("ListTasks", "{\"cluster\":\"c\",\"maxResults\":2}");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l, "taskArns")), 2);
  cJSON *l2 = ok ("ListTasks", "{\"cluster\":\"c\",\"maxResults\":2,\"nextToken\":\"%s\"}",
                  ts_json_str (l, "nextToken"));
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l2, "taskArns")), 1);
  ck_assert_ptr_null (cJSON_GetObjectItem (l2, "nextToken"));
  cJSON_Delete (l2);
  cJSON_Delete (l);
  cJSON_Delete (r);
}
END_TEST

START_TEST (test_attributes_and_tags_on_instances_tasks_clusters_and_definitions)
{
  create_cluster_and_defs ();
  const char *a = register_instance (ADMIN, 1024, 1024, 0);
  char arn[160];
  snprintf (arn, sizeof arn, "%s", a);
  cJSON_Delete (ok ("PutAttributes",
                    "{\"cluster\":\"c\",\"attributes\":[{\"name\":\"disk\","
                    "\"value\":\"ssd\",\"targetId\":\"%s\"}]}",
                    arn));
  cJSON *l = ok ("ListAttributes", "{\"cluster\":\"c\",\"targetType\":\"container-instance\","
                                   "\"attributeName\":\"disk\",\"attributeValue\":\"ssd\"}");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l, "attributes")), 1);
  ck_assert_str_eq (
      ts_json_str (cJSON_GetArrayItem (cJSON_GetObjectItem (l, "attributes"), 0), "targetId"), arn);
  cJSON_Delete (l);
  l = ok ("ListAttributes", "{\"cluster\":\"c\",\"targetType\":\"container-instance\","
                            "\"maxResults\":2}");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l, "attributes")), 2);
  cJSON *l2 = ok ("ListAttributes",
                  "{\"cluster\":\"c\",\"targetType\":\"container-instance\","
                  "\"nextToken\":\"%s\"}",
                  ts_json_str (l, "nextToken"));
  /* zone, 4 ecs.*, disk: 6 in all. */
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l2, "attributes")), 4);
  cJSON_Delete (l2);
  cJSON_Delete (l);
  fails ("TargetNotFoundException", "PutAttributes",
         "{\"cluster\":\"c\",\"attributes\":[{\"name\":\"x\",\"targetId\":\"%032d\"}]}", 0);
  fails ("InvalidParameterException", "PutAttributes",
         "{\"cluster\":\"c\",\"attributes\":[{\"name\":\"bad name\",\"targetId\":\"%s\"}]}", arn);
  fails ("InvalidParameterException", "ListAttributes",
         "{\"cluster\":\"c\",\"targetType\":\"task\"}");
  cJSON_Delete (ok ("DeleteAttributes",
                    "{\"cluster\":\"c\",\"attributes\":[{\"name\":\"disk\","
                    "\"targetId\":\"%s\"}]}",
                    arn));
  l = ok ("ListAttributes", "{\"cluster\":\"c\",\"targetType\":\"container-instance\","
                            "\"attributeName\":\"disk\"}");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l, "attributes")), 0);
  cJSON_Delete (l);

  cJSON *r = run ("small", 1);
  const char *resources[] = { arn, task_arn (r, 0), "arn:aws:ecs:us-east-1:000000000000:cluster/c",
                              "arn:aws:ecs:us-east-1:000000000000:task-definition/small:1" };
  for (size_t i = 0; i < 4; i++)
    {
      cJSON_Delete (ok ("TagResource",
                        "{\"resourceArn\":\"%s\",\"tags\":[{\"key\":\"a\","
                        "\"value\":\"1\"},{\"key\":\"b\",\"value\":\"2\"}]}",
                        resources[i]));
      cJSON_Delete (ok ("TagResource",
                        "{\"resourceArn\":\"%s\",\"tags\":[{\"key\":\"a\","
                        "\"value\":\"3\"}]}",
                        resources[i]));
      cJSON_Delete (
          ok ("UntagResource", "{\"resourceArn\":\"%s\",\"tagKeys\":[\"b\"]}", resources[i]));
      cJSON *t = ok ("ListTagsForResource", "{\"resourceArn\":\"%s\"}", resources[i]);
      const cJSON *tags = cJSON_GetObjectItem (t, "tags");
      ck_assert_msg (cJSON_GetArraySize (tags) == 1, "%s", resources[i]);
      ck_assert_str_eq (ts_json_str (cJSON_GetArrayItem (tags, 0), "value"), "3");
      cJSON_Delete (t);
    }
  fails ("ResourceNotFoundException", "ListTagsForResource",
         "{\"resourceArn\":\"arn:aws:ecs:us-east-1:000000000000:task/c/%032d\"}", 0);
  fails ("ClusterNotFoundException", "TagResource",
         "{\"resourceArn\":\"arn:aws:ecs:us-east-1:000000000000:cluster/ghost\",\"tags\":[{"
         "\"key\":\"a\",\"value\":\"1\"}]}");
  fails ("InvalidParameterException", "ListTagsForResource",
         "{\"resourceArn\":\"arn:aws:ecs:eu-west-1:000000000000:cluster/c\"}");
  fails ("InvalidParameterException", "TagResource",
         "{\"resourceArn\":\"%s\",\"tags\":[{\"key\":\"aws:x\",\"value\":\"1\"}]}", arn);
  /* Task tags come back from DescribeTasks only with include TAGS. */
  cJSON *d = ok ("DescribeTasks", "{\"cluster\":\"c\",\"tasks\":[\"%s\"]}", task_arn (r, 0));
  ck_assert_ptr_null (
      cJSON_GetObjectItem (cJSON_GetArrayItem (cJSON_GetObjectItem (d, "tasks"), 0), "tags"));
  cJSON_Delete (d);
  d = ok ("DescribeTasks", "{\"cluster\":\"c\",\"tasks\":[\"%s\"],\"include\":[\"TAGS\"]}",
          task_arn (r, 0));
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (
                        cJSON_GetArrayItem (cJSON_GetObjectItem (d, "tasks"), 0), "tags")),
                    1);
  cJSON_Delete (d);
  cJSON_Delete (r);
}
END_TEST

START_TEST (test_clusters_count_instances_and_tasks_and_are_not_deleted_while_they_exist)
{
  create_cluster_and_defs ();
  const char *a = register_instance (ADMIN, 4096, 4096, 0);
  char arn[160];
  snprintf (arn, sizeof arn, "%s", a);
  cJSON *r = run ("small", 2);
  submit_task_status (task_arn (r, 0), "RUNNING");
  cJSON *d = ok ("DescribeClusters", "{\"clusters\":[\"c\"]}");
  const cJSON *c = cJSON_GetArrayItem (cJSON_GetObjectItem (d, "clusters"), 0);
  ck_assert_int_eq (cJSON_GetObjectItem (c, "registeredContainerInstancesCount")->valueint, 1);
  ck_assert_int_eq (cJSON_GetObjectItem (c, "runningTasksCount")->valueint, 1);
  ck_assert_int_eq (cJSON_GetObjectItem (c, "pendingTasksCount")->valueint, 1);
  cJSON_Delete (d);
  fails ("ClusterContainsContainerInstancesException", "DeleteCluster", "{\"cluster\":\"c\"}");
  cJSON_Delete (ok ("DeregisterContainerInstance",
                    "{\"cluster\":\"c\",\"containerInstance\":\"%s\",\"force\":true}", arn));
  /* Forced deregistration stopped its tasks, so now the cluster can go. */
  cJSON_Delete (ok ("DeleteCluster", "{\"cluster\":\"c\"}"));
  cJSON_Delete (r);
}
END_TEST

START_TEST (test_deregistering_without_force_waits_until_its_tasks_stopped)
{
  create_cluster_and_defs ();
  const char *a = register_instance (ADMIN, 4096, 4096, 0);
  char arn[160];
  snprintf (arn, sizeof arn, "%s", a);
  cJSON *r = run ("small", 1);
  /* Deregistering needs force while the task holds resources. */
  fails ("InvalidParameterException", "DeregisterContainerInstance",
         "{\"cluster\":\"c\",\"containerInstance\":\"%s\"}", arn);
  submit_task_status (task_arn (r, 0), "DEACTIVATING");
  fails ("InvalidParameterException", "DeregisterContainerInstance",
         "{\"cluster\":\"c\",\"containerInstance\":\"%s\"}", arn);
  submit_task_status (task_arn (r, 0), "STOPPED");
  cJSON_Delete (
      ok ("DeregisterContainerInstance", "{\"cluster\":\"c\",\"containerInstance\":\"%s\"}", arn));
  cJSON_Delete (ok ("DeleteCluster", "{\"cluster\":\"c\"}"));
  cJSON_Delete (r);
}
END_TEST

/* A write the store refuses (another connection holds the write lock past the busy timeout)
 * answers ServerException and leaves the model as the store has it. */
START_TEST (test_a_failed_store_write_leaves_the_model_as_the_store_has_it)
{
  create_cluster_and_defs ();
  const char *a = register_instance (ADMIN, 1024, 1024, 0);
  char arn[160];
  snprintf (arn, sizeof arn, "%s", a);
  cJSON *r = run ("small", 1);
  _cleanup_free_ char *db = NULL;
  sqlite3 *lock = NULL;
  ck_assert_int_ge (asprintf (&db, "%s/db", dir), 0);
  ck_assert_int_eq (sqlite3_open (db, &lock), SQLITE_OK);
  ck_assert_int_eq (sqlite3_exec (lock, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
  int status;
  _cleanup_free_ char *body = NULL;
  ck_assert_int_ge (asprintf (&body, "{\"cluster\":\"c\",\"task\":\"%s\",\"status\":\"STOPPED\"}",
                              task_arn (r, 0)),
                    0);
  cJSON *e = call_as (CP_ROLE_ADMIN, ADMIN, "SubmitTaskStateChange", body, &status);
  ck_assert_int_eq (status, 500);
  ck_assert_str_eq (ts_json_str (e, "__type"), "ServerException");
  cJSON_Delete (e);
  sqlite3_exec (lock, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close (lock);
  /* Not stopped: still holding its resources, as stored. */
  ck_assert_int_eq (remaining (arn, "CPU"), 1024 - 100);
  assert_last_status (task_arn (r, 0), "PENDING");
  cJSON_Delete (ok ("SubmitTaskStateChange", "%s", body));
  ck_assert_int_eq (remaining (arn, "CPU"), 1024);
  cJSON_Delete (r);
}
END_TEST

static Suite *tasks_suite (void)
{
  Suite *s = suite_create ("controlplane-tasks");
  TCase *tc = tcase_create ("tasks");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 30);
  tcase_add_test (tc, test_arns_parse_only_for_this_region_and_account);
  tcase_add_test (tc, test_placed_tasks_take_resources_and_stopping_gives_them_back);
  tcase_add_test (tc, test_task_states_set_times_counts_and_stop_codes);
  tcase_add_test (tc, test_agent_keys_touch_only_their_own_instance);
  tcase_add_test (tc, test_draining_and_deregistered_instances_get_no_tasks);
  tcase_add_test (tc, test_awsvpc_tasks_get_addresses_from_their_subnet_until_it_is_full);
  tcase_add_test (tc, test_reload_from_the_store_restores_holdings_and_bindings);
  tcase_add_test (tc, test_run_task_input_errors);
  tcase_add_test (tc, test_list_tasks_filters_and_pages);
  tcase_add_test (tc, test_attributes_and_tags_on_instances_tasks_clusters_and_definitions);
  tcase_add_test (tc, test_clusters_count_instances_and_tasks_and_are_not_deleted_while_they_exist);
  tcase_add_test (tc, test_deregistering_without_force_waits_until_its_tasks_stopped);
  tcase_add_test (tc, test_a_failed_store_write_leaves_the_model_as_the_store_has_it);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (tasks_suite ());
}
