/* Unit tests of berth-control's services in process: cp_dispatch_as with many registered
 * instances (agent keys) and simulated agents reporting task states, checking the controller's
 * counts after every report. */
#include "controlplane/model.h"
#include "lib/cleanup.h"
#include "tests/support/support.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ADMIN "BKIAADMIN"
#define MAX_INST 16

static char *dir;
static cp_ctx *ctx;
static char inst_arn[MAX_INST][160];
static char inst_key[MAX_INST][32];
static int n_inst;

static const char *jstr (const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItem (obj, key);
  return cJSON_IsString (v) ? v->valuestring : "";
}

static int jint (const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItem (obj, key);
  return cJSON_IsNumber (v) ? (int)v->valuedouble : -1;
}

static void open_ctx (void)
{
  _cleanup_free_ char *db = NULL;
  berr *err = NULL;
  ck_assert_int_ge (asprintf (&db, "%s/db", dir), 0);
  ck_assert_int_eq (cp_ctx_open (db, "us-east-1", "000000000000", &ctx, &err), 0);
}

static void setup (void)
{
  dir = ts_mkdtemp ("cp-services");
  n_inst = 0;
  open_ctx ();
}

static void teardown (void)
{
  cp_ctx_free (ctx);
  ts_rmtree (dir);
  free (dir);
}

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

static cJSON *vcall (enum cp_role role, const char *key, const char *action, int *status,
                     const char *fmt, va_list ap)
{
  _cleanup_free_ char *body = NULL;
  ck_assert_int_ge (vasprintf (&body, fmt, ap), 0);
  return call_as (role, key, action, body, status);
}

static cJSON *ok_as (enum cp_role role, const char *key, const char *action, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
static cJSON *ok_as (enum cp_role role, const char *key, const char *action, const char *fmt, ...)
{
  va_list ap;
  int status;
  va_start (ap, fmt);
  cJSON *j = vcall (role, key, action, &status, fmt, ap);
  va_end (ap);
  if (status != 200)
    ck_abort_msg ("%s: %d %s", action, status, cJSON_PrintUnformatted (j));
  return j;
}

#define ok(action, ...) ok_as (CP_ROLE_ADMIN, ADMIN, action, __VA_ARGS__)
#define done(j) cJSON_Delete (j)

static void fails (const char *type, const char *action, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
static void fails (const char *type, const char *action, const char *fmt, ...)
{
  va_list ap;
  int status;
  va_start (ap, fmt);
  cJSON *j = vcall (CP_ROLE_ADMIN, ADMIN, action, &status, fmt, ap);
  va_end (ap);
  ck_assert_msg (status == 400 && strcmp (jstr (j, "__type"), type) == 0, "%s: %d %s (want %s)",
                 action, status, jstr (j, "__type"), type);
  cJSON_Delete (j);
}

/* Registers n instances, each with its own agent key. */
static void register_instances (int n, int cpu, int mem)
{
  for (int i = 0; i < n; i++, n_inst++)
    {
      ck_assert_int_lt (n_inst, MAX_INST);
      snprintf (inst_key[n_inst], sizeof inst_key[n_inst], "BKAG%02d", n_inst);
      cJSON *j = ok_as (CP_ROLE_AGENT, inst_key[n_inst], "RegisterContainerInstance",
                        "{\"cluster\":\"c\",\"totalResources\":["
                        "{\"name\":\"CPU\",\"type\":\"INTEGER\",\"integerValue\":%d},"
                        "{\"name\":\"MEMORY\",\"type\":\"INTEGER\",\"integerValue\":%d}]}",
                        cpu, mem);
      snprintf (inst_arn[n_inst], sizeof inst_arn[n_inst], "%s",
                jstr (cJSON_GetObjectItem (j, "containerInstance"), "containerInstanceArn"));
      done (j);
    }
}

static void setup_cluster (void)
{
  done (ok ("CreateCluster", "{\"clusterName\":\"c\"}"));
  for (int rev = 0; rev < 2; rev++)
    done (ok ("RegisterTaskDefinition",
              "{\"family\":\"web\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
              "\"x:%d\",\"cpu\":100,\"memory\":100}]}",
              rev));
}

/* The service's tasks (all statuses), as DescribeTasks gives them. */
static cJSON *service_tasks (const char *name)
{
  cJSON *all = cJSON_CreateArray ();
  const char *desired[] = { "RUNNING", "STOPPED" };
  for (int d = 0; d < 2; d++)
    {
      cJSON *l = ok ("ListTasks",
                     "{\"cluster\":\"c\",\"serviceName\":\"%s\",\"desiredStatus\":"
                     "\"%s\"}",
                     name, desired[d]);
      cJSON *arns = cJSON_GetObjectItem (l, "taskArns");
      if (cJSON_GetArraySize (arns) > 0)
        {
          char *list = cJSON_PrintUnformatted (arns);
          cJSON *t = ok ("DescribeTasks", "{\"cluster\":\"c\",\"tasks\":%s}", list);
          cJSON *x;
          while ((x = cJSON_DetachItemFromArray (cJSON_GetObjectItem (t, "tasks"), 0)))
            cJSON_AddItemToArray (all, x);
          free (list);
          done (t);
        }
      done (l);
    }
  return all;
}

static const char *key_of (const cJSON *task)
{
  for (int i = 0; i < n_inst; i++)
    if (strcmp (inst_arn[i], jstr (task, "containerInstanceArn")) == 0)
      return inst_key[i];
  ck_abort_msg ("task on an unknown instance");
  return NULL;
}

static void report (const cJSON *task, const char *status)
{
  done (ok_as (CP_ROLE_AGENT, key_of (task), "SubmitTaskStateChange",
               "{\"cluster\":\"c\",\"task\":\"%s\",\"status\":\"%s\"}", jstr (task, "taskArn"),
               status));
}

/* The agent's next report for one task of the service: a stopping task STOPPED, else a
 * PENDING one RUNNING (or STOPPED when fail_rev names its task definition revision).
 * False when nothing is left to report. */
static bool agent_step (const char *name, int fail_rev)
{
  cJSON *tasks = service_tasks (name), *t;
  bool did = false;
  for (int pass = 0; pass < 2 && !did; pass++)
    cJSON_ArrayForEach (t, tasks)
    {
      const char *last = jstr (t, "lastStatus"), *want = jstr (t, "desiredStatus");
      if (did || strcmp (last, "STOPPED") == 0)
        continue;
      char rev[16];
      snprintf (rev, sizeof rev, ":%d", fail_rev);
      const char *td = jstr (t, "taskDefinitionArn");
      bool bad = fail_rev > 0 && strlen (td) > strlen (rev)
                 && strcmp (td + strlen (td) - strlen (rev), rev) == 0;
      if (pass == 0 && strcmp (want, "STOPPED") == 0)
        report (t, "STOPPED"), did = true;
      else if (pass == 1 && strcmp (last, "PENDING") == 0)
        report (t, bad ? "STOPPED" : "RUNNING"), did = true;
    }
  done (tasks);
  return did;
}

static cJSON *describe (const char *name)
{
  cJSON *j = ok ("DescribeServices", "{\"cluster\":\"c\",\"services\":[\"%s\"]}", name);
  cJSON *s = cJSON_DetachItemFromArray (cJSON_GetObjectItem (j, "services"), 0);
  ck_assert_ptr_nonnull (s);
  done (j);
  return s;
}

/* Counts of the service's tasks: live (not STOPPED), healthy (RUNNING, desired RUNNING). */
static void counts (const char *name, int *live, int *healthy, int *pending)
{
  cJSON *tasks = service_tasks (name), *t;
  *live = *healthy = *pending = 0;
  cJSON_ArrayForEach (t, tasks)
  {
    bool stopped = strcmp (jstr (t, "lastStatus"), "STOPPED") == 0;
    bool wanted = strcmp (jstr (t, "desiredStatus"), "RUNNING") == 0;
    *live += !stopped;
    *healthy += wanted && strcmp (jstr (t, "lastStatus"), "RUNNING") == 0;
    *pending += wanted && strcmp (jstr (t, "lastStatus"), "PENDING") == 0;
  }
  done (tasks);
}

static bool has_event (const cJSON *svc, const char *needle)
{
  const cJSON *e;
  cJSON_ArrayForEach (e, cJSON_GetObjectItem (svc, "events"))
  {
    if (strstr (jstr (e, "message"), needle))
      return true;
  }
  return false;
}

static void settle (const char *name)
{
  for (int i = 0; i < 200 && agent_step (name, 0); i++)
    ;
}

static bool stable (const cJSON *s)
{
  return cJSON_GetArraySize (cJSON_GetObjectItem (s, "deployments")) == 1
         && jint (s, "runningCount") == jint (s, "desiredCount");
}

START_TEST (test_replica_service_scales_up_and_down_and_replaces_a_stopped_task)
{
  setup_cluster ();
  register_instances (3, 1024, 1024);
  done (ok ("CreateService", "{\"cluster\":\"c\",\"serviceName\":\"web\",\"taskDefinition\":"
                             "\"web:1\",\"desiredCount\":3}"));
  int live, healthy, pending;
  counts ("web", &live, &healthy, &pending);
  ck_assert_int_eq (pending, 3);
  cJSON *s = describe ("web");
  ck_assert_int_eq (jint (s, "pendingCount"), 3);
  ck_assert (has_event (s, "(service web) has started 3 tasks: (task "));
  ck_assert_str_eq (
      jstr (cJSON_GetArrayItem (cJSON_GetObjectItem (s, "deployments"), 0), "rolloutState"),
      "IN_PROGRESS");
  done (s);
  settle ("web");
  s = describe ("web");
  ck_assert (stable (s));
  ck_assert_int_eq (jint (s, "runningCount"), 3);
  cJSON *d = cJSON_GetArrayItem (cJSON_GetObjectItem (s, "deployments"), 0);
  ck_assert_str_eq (jstr (d, "rolloutState"), "COMPLETED");
  ck_assert_str_eq (jstr (d, "status"), "PRIMARY");
  ck_assert (strncmp (jstr (d, "id"), "ecs-svc/", 8) == 0);
  ck_assert_str_eq (jstr (cJSON_GetArrayItem (cJSON_GetObjectItem (s, "events"), 0), "message"),
                    "(service web) has reached a steady state.");
  char dep_id[64];
  snprintf (dep_id, sizeof dep_id, "%s", jstr (d, "id"));
  done (s);
  /* Tasks carry the service's group and the deployment as startedBy. */
  cJSON *tasks = service_tasks ("web");
  ck_assert_str_eq (jstr (cJSON_GetArrayItem (tasks, 0), "group"), "service:web");
  ck_assert_str_eq (jstr (cJSON_GetArrayItem (tasks, 0), "startedBy"), dep_id);
  /* One task dies: the controller starts a replacement. */
  report (cJSON_GetArrayItem (tasks, 0), "STOPPED");
  done (tasks);
  counts ("web", &live, &healthy, &pending);
  ck_assert_int_eq (healthy, 2);
  ck_assert_int_eq (pending, 1);
  settle ("web");
  counts ("web", &live, &healthy, &pending);
  ck_assert_int_eq (healthy, 3);
  /* A task run by hand in the service's group is not the service's. */
  cJSON *own = ok ("RunTask", "{\"cluster\":\"c\",\"taskDefinition\":\"web:1\",\"group\":"
                              "\"service:web\"}");
  s = describe ("web");
  ck_assert (stable (s));
  ck_assert_int_eq (jint (s, "runningCount"), 3);
  ck_assert_int_eq (jint (s, "pendingCount"), 0);
  done (s);
  report (cJSON_GetArrayItem (cJSON_GetObjectItem (own, "tasks"), 0), "STOPPED");
  done (own);
  /* Scale down to 1, then up to 2. */
  done (ok ("UpdateService", "{\"cluster\":\"c\",\"service\":\"web\",\"desiredCount\":1}"));
  counts ("web", &live, &healthy, &pending);
  ck_assert_int_eq (healthy, 1);
  settle ("web");
  counts ("web", &live, &healthy, &pending);
  ck_assert_int_eq (live, 1);
  done (ok ("UpdateService", "{\"cluster\":\"c\",\"service\":\"web\",\"desiredCount\":2}"));
  settle ("web");
  s = describe ("web");
  ck_assert (stable (s));
  ck_assert_int_eq (jint (s, "runningCount"), 2);
  done (s);
  /* The service survives a restart. */
  cp_ctx_free (ctx);
  open_ctx ();
  s = describe ("web");
  ck_assert_int_eq (jint (s, "desiredCount"), 2);
  ck_assert_str_eq (jstr (s, "status"), "ACTIVE");
  done (s);
}
END_TEST

START_TEST (test_rolling_update_honours_minimum_healthy_and_maximum_percent_at_every_step)
{
  setup_cluster ();
  register_instances (6, 4096, 4096);
  done (ok ("CreateService",
            "{\"cluster\":\"c\",\"serviceName\":\"web\",\"taskDefinition\":\"web:1\","
            "\"desiredCount\":4,\"deploymentConfiguration\":{\"minimumHealthyPercent\":50,"
            "\"maximumPercent\":150}}"));
  settle ("web");
  done (ok ("UpdateService", "{\"cluster\":\"c\",\"service\":\"web\",\"taskDefinition\":"
                             "\"web:2\"}"));
  int live, healthy, pending, steps = 0;
  cJSON *s = describe ("web");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (s, "deployments")), 2);
  ck_assert_str_eq (jstr (cJSON_GetArrayItem (cJSON_GetObjectItem (s, "deployments"), 1), "status"),
                    "ACTIVE");
  done (s);
  do
    {
      counts ("web", &live, &healthy, &pending);
      ck_assert_int_le (live, 6);    /* 150% of 4 */
      ck_assert_int_ge (healthy, 2); /* 50% of 4 */
      steps++;
    }
  while (agent_step ("web", 0) && steps < 100);
  s = describe ("web");
  ck_assert (stable (s));
  cJSON *d = cJSON_GetArrayItem (cJSON_GetObjectItem (s, "deployments"), 0);
  ck_assert (strstr (jstr (d, "taskDefinition"), "web:2"));
  ck_assert_str_eq (jstr (d, "rolloutState"), "COMPLETED");
  ck_assert (has_event (s, "deployment completed."));
  done (s);
  cJSON *tasks = service_tasks ("web"), *t;
  int new_running = 0;
  cJSON_ArrayForEach (t, tasks)
  {
    new_running += strcmp (jstr (t, "lastStatus"), "RUNNING") == 0
                   && strstr (jstr (t, "taskDefinitionArn"), "web:2");
  }
  ck_assert_int_eq (new_running, 4);
  done (tasks);
}
END_TEST

START_TEST (test_min_100_percent_starts_new_tasks_before_stopping_old_ones)
{
  setup_cluster ();
  register_instances (4, 4096, 4096);
  done (ok ("CreateService", "{\"cluster\":\"c\",\"serviceName\":\"web\",\"taskDefinition\":"
                             "\"web:1\",\"desiredCount\":2}"));
  settle ("web");
  done (ok ("UpdateService", "{\"cluster\":\"c\",\"service\":\"web\",\"taskDefinition\":"
                             "\"web:2\"}"));
  int live, healthy, pending, steps = 0;
  do
    {
      counts ("web", &live, &healthy, &pending);
      ck_assert_int_le (live, 4);
      ck_assert_int_ge (healthy, 2);
    }
  while (agent_step ("web", 0) && ++steps < 100);
  cJSON *s = describe ("web");
  ck_assert (stable (s));
  done (s);
}
END_TEST

START_TEST (test_circuit_breaker_fails_the_deployment_and_rolls_back)
{
  setup_cluster ();
  register_instances (4, 4096, 4096);
  done (ok ("CreateService",
            "{\"cluster\":\"c\",\"serviceName\":\"web\",\"taskDefinition\":\"web:1\","
            "\"desiredCount\":2,\"deploymentConfiguration\":{\"deploymentCircuitBreaker\":"
            "{\"enable\":true,\"rollback\":true}}}"));
  settle ("web");
  done (ok ("UpdateService", "{\"cluster\":\"c\",\"service\":\"web\",\"taskDefinition\":"
                             "\"web:2\"}"));
  /* Every web:2 task fails to start; web:1 keeps serving. */
  int steps = 0, live, healthy, pending;
  while (agent_step ("web", 2) && ++steps < 100)
    {
      counts ("web", &live, &healthy, &pending);
      ck_assert_int_ge (healthy, 2);
    }
  cJSON *s = describe ("web");
  ck_assert (stable (s));
  cJSON *d = cJSON_GetArrayItem (cJSON_GetObjectItem (s, "deployments"), 0);
  ck_assert (strstr (jstr (d, "taskDefinition"), "web:1"));
  ck_assert_str_eq (jstr (d, "rolloutState"), "COMPLETED");
  ck_assert (has_event (s, "deployment failed: tasks failed to start."));
  ck_assert_str_eq (jstr (s, "taskDefinition"), jstr (d, "taskDefinition"));
  done (s);
  /* Without rollback the deployment stays FAILED and launches nothing more. */
  done (ok ("UpdateService",
            "{\"cluster\":\"c\",\"service\":\"web\",\"taskDefinition\":\"web:2\","
            "\"deploymentConfiguration\":{\"deploymentCircuitBreaker\":{\"enable\":true,"
            "\"rollback\":false}}}"));
  steps = 0;
  while (agent_step ("web", 2) && ++steps < 100)
    ;
  s = describe ("web");
  d = cJSON_GetArrayItem (cJSON_GetObjectItem (s, "deployments"), 0);
  ck_assert_str_eq (jstr (d, "rolloutState"), "FAILED");
  ck_assert_int_ge (jint (d, "failedTasks"), 3); /* threshold: max(3, 0.5 * 2) */
  ck_assert_str_eq (jstr (d, "rolloutStateReason"),
                    "ECS deployment circuit breaker: tasks failed to start.");
  ck_assert_int_eq (jint (s, "runningCount"), 2); /* the old tasks still run */
  done (s);
}
END_TEST

START_TEST (test_tasks_on_a_draining_instance_are_replaced_before_they_stop)
{
  setup_cluster ();
  register_instances (1, 4096, 4096);
  done (ok ("CreateService", "{\"cluster\":\"c\",\"serviceName\":\"web\",\"taskDefinition\":"
                             "\"web:1\",\"desiredCount\":2}"));
  settle ("web");
  register_instances (2, 4096, 4096);
  done (ok ("UpdateContainerInstancesState",
            "{\"cluster\":\"c\",\"containerInstances\":[\"%s\"],\"status\":\"DRAINING\"}",
            inst_arn[0]));
  /* Both replacements start elsewhere first; the old ones keep running meanwhile. */
  int live, healthy, pending;
  counts ("web", &live, &healthy, &pending);
  ck_assert_int_eq (healthy, 2);
  ck_assert_int_eq (pending, 2);
  cJSON *tasks = service_tasks ("web"), *t;
  cJSON_ArrayForEach (t, tasks)
  {
    if (strcmp (jstr (t, "lastStatus"), "PENDING") == 0)
      ck_assert_str_ne (jstr (t, "containerInstanceArn"), inst_arn[0]);
  }
  done (tasks);
  int steps = 0;
  do
    {
      counts ("web", &live, &healthy, &pending);
      ck_assert_int_ge (healthy, 2);
      ck_assert_int_le (live, 4);
    }
  while (agent_step ("web", 0) && ++steps < 100);
  tasks = service_tasks ("web");
  int on_drained = 0;
  cJSON_ArrayForEach (t, tasks)
  {
    on_drained += strcmp (jstr (t, "lastStatus"), "STOPPED") != 0
                  && strcmp (jstr (t, "containerInstanceArn"), inst_arn[0]) == 0;
  }
  ck_assert_int_eq (on_drained, 0);
  done (tasks);
}
END_TEST

START_TEST (test_daemon_service_follows_instances_and_draining)
{
  setup_cluster ();
  register_instances (2, 1024, 1024);
  fails ("InvalidParameterException", "CreateService",
         "{\"cluster\":\"c\",\"serviceName\":\"d\",\"taskDefinition\":\"web:1\","
         "\"schedulingStrategy\":\"DAEMON\",\"desiredCount\":2}");
  done (ok ("CreateService", "{\"cluster\":\"c\",\"serviceName\":\"d\",\"taskDefinition\":"
                             "\"web:1\",\"schedulingStrategy\":\"DAEMON\"}"));
  settle ("d");
  cJSON *s = describe ("d");
  ck_assert_int_eq (jint (s, "desiredCount"), 2);
  ck_assert_int_eq (jint (s, "runningCount"), 2);
  done (s);
  register_instances (1, 1024, 1024);
  settle ("d");
  s = describe ("d");
  ck_assert_int_eq (jint (s, "runningCount"), 3);
  ck_assert (stable (s));
  done (s);
  cJSON *tasks = service_tasks ("d"), *t;
  int on_new = 0;
  cJSON_ArrayForEach (t, tasks)
  {
    on_new += strcmp (jstr (t, "containerInstanceArn"), inst_arn[2]) == 0;
  }
  ck_assert_int_eq (on_new, 1);
  done (tasks);
  done (ok ("UpdateContainerInstancesState",
            "{\"cluster\":\"c\",\"containerInstances\":[\"%s\"],\"status\":\"DRAINING\"}",
            inst_arn[1]));
  settle ("d");
  s = describe ("d");
  ck_assert_int_eq (jint (s, "desiredCount"), 2);
  ck_assert_int_eq (jint (s, "runningCount"), 2);
  done (s);
  int live, healthy, pending;
  counts ("d", &live, &healthy, &pending);
  ck_assert_int_eq (live, 2);
}
END_TEST

START_TEST (test_placement_failures_become_service_events)
{
  setup_cluster ();
  done (ok ("CreateService", "{\"cluster\":\"c\",\"serviceName\":\"web\",\"taskDefinition\":"
                             "\"web:1\",\"desiredCount\":1}"));
  cJSON *s = describe ("web");
  ck_assert (has_event (s, "(service web) was unable to place a task because no container "
                           "instance met all of its requirements. Reason: No Container "
                           "Instances were found in your cluster."));
  done (s);
  register_instances (1, 1024, 50);
  s = describe ("web");
  ck_assert (has_event (s, "has insufficient memory available."));
  ck_assert_int_eq (jint (s, "runningCount"), 0);
  done (s);
  /* Room appears: the service gets its task. */
  register_instances (1, 1024, 1024);
  settle ("web");
  s = describe ("web");
  ck_assert (stable (s));
  done (s);
}
END_TEST

START_TEST (test_delete_with_force_stops_the_tasks_and_errors_match_ecs)
{
  setup_cluster ();
  register_instances (2, 1024, 1024);
  done (ok ("CreateService", "{\"cluster\":\"c\",\"serviceName\":\"web\",\"taskDefinition\":"
                             "\"web:1\",\"desiredCount\":2,\"tags\":[{\"key\":\"k\","
                             "\"value\":\"v\"}]}"));
  settle ("web");
  fails ("InvalidParameterException", "CreateService",
         "{\"cluster\":\"c\",\"serviceName\":\"web\",\"taskDefinition\":\"web:1\"}");
  fails ("InvalidParameterException", "CreateService",
         "{\"cluster\":\"c\",\"serviceName\":\"x\",\"taskDefinition\":\"web:1\","
         "\"deploymentConfiguration\":{\"maximumPercent\":50}}");
  fails ("InvalidParameterException", "CreateService",
         "{\"cluster\":\"c\",\"serviceName\":\"x\",\"taskDefinition\":\"web:1\","
         "\"deploymentConfiguration\":{\"minimumHealthyPercent\":150}}");
  fails ("InvalidParameterException", "CreateService",
         "{\"cluster\":\"c\",\"serviceName\":\"x\",\"taskDefinition\":\"web:1\","
         "\"desiredCount\":-1}");
  fails ("InvalidParameterException", "CreateService",
         "{\"cluster\":\"c\",\"serviceName\":\"bad name\",\"taskDefinition\":\"web:1\"}");
  fails ("ClientException", "CreateService",
         "{\"cluster\":\"c\",\"serviceName\":\"x\",\"taskDefinition\":\"nope:1\"}");
  fails ("ClusterNotFoundException", "CreateService",
         "{\"cluster\":\"nope\",\"serviceName\":\"x\",\"taskDefinition\":\"web:1\"}");
  fails ("ServiceNotFoundException", "UpdateService",
         "{\"cluster\":\"c\",\"service\":\"nope\",\"desiredCount\":1}");
  fails ("InvalidParameterException", "DeleteService", "{\"cluster\":\"c\",\"service\":\"web\"}");
  fails ("ClusterContainsServicesException", "DeleteCluster", "{\"cluster\":\"c\"}");
  cJSON *cl = ok ("DescribeClusters", "{\"clusters\":[\"c\"]}");
  ck_assert_int_eq (
      jint (cJSON_GetArrayItem (cJSON_GetObjectItem (cl, "clusters"), 0), "activeServicesCount"),
      1);
  done (cl);
  cJSON *j = ok ("DescribeServices", "{\"cluster\":\"c\",\"services\":[\"web\",\"nope\"],"
                                     "\"include\":[\"TAGS\"]}");
  ck_assert_str_eq (jstr (cJSON_GetArrayItem (cJSON_GetObjectItem (j, "failures"), 0), "reason"),
                    "MISSING");
  cJSON *s = cJSON_GetArrayItem (cJSON_GetObjectItem (j, "services"), 0);
  ck_assert_str_eq (jstr (cJSON_GetArrayItem (cJSON_GetObjectItem (s, "tags"), 0), "value"), "v");
  ck_assert_ptr_null (cJSON_GetObjectItem (s, "_cluster"));
  done (j);
  j = ok ("ListServices", "{\"cluster\":\"c\"}");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (j, "serviceArns")), 1);
  ck_assert_str_eq (cJSON_GetArrayItem (cJSON_GetObjectItem (j, "serviceArns"), 0)->valuestring,
                    "arn:aws:ecs:us-east-1:000000000000:service/c/web");
  done (j);
  j = ok ("DeleteService", "{\"cluster\":\"c\",\"service\":\"web\",\"force\":true}");
  ck_assert_str_eq (jstr (cJSON_GetObjectItem (j, "service"), "status"), "DRAINING");
  done (j);
  int live, healthy, pending;
  counts ("web", &live, &healthy, &pending);
  ck_assert_int_eq (live, 2);
  ck_assert_int_eq (healthy, 0); /* both asked to stop */
  fails ("ServiceNotActiveException", "UpdateService",
         "{\"cluster\":\"c\",\"service\":\"web\",\"desiredCount\":1}");
  settle ("web");
  s = describe ("web");
  ck_assert_str_eq (jstr (s, "status"), "INACTIVE");
  done (s);
  fails ("ServiceNotActiveException", "DeleteService", "{\"cluster\":\"c\",\"service\":\"web\"}");
  j = ok ("ListServices", "{\"cluster\":\"c\"}");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (j, "serviceArns")), 0);
  done (j);
  /* The name is free again. */
  done (ok ("CreateService", "{\"cluster\":\"c\",\"serviceName\":\"web\",\"taskDefinition\":"
                             "\"web:1\",\"desiredCount\":0}"));
}
END_TEST

START_TEST (test_stopped_tasks_are_forgotten_after_the_retention_period)
{
  setup_cluster ();
  register_instances (1, 1024, 1024);
  done (ok ("CreateService", "{\"cluster\":\"c\",\"serviceName\":\"web\",\"taskDefinition\":"
                             "\"web:1\",\"desiredCount\":1}"));
  settle ("web");
  cJSON *tasks = service_tasks ("web");
  char arn[256];
  snprintf (arn, sizeof arn, "%s", jstr (cJSON_GetArrayItem (tasks, 0), "taskArn"));
  report (cJSON_GetArrayItem (tasks, 0), "STOPPED");
  done (tasks);
  settle ("web");
  int64_t now = (int64_t)time (NULL);
  ck_assert_int_eq (cp_tasks_expire (ctx, now, CP_STOPPED_RETENTION), 0);
  ck_assert_int_eq (cp_tasks_expire (ctx, now + CP_STOPPED_RETENTION + 5, CP_STOPPED_RETENTION), 1);
  for (int round = 0; round < 2; round++)
    {
      cJSON *j = ok ("DescribeTasks", "{\"cluster\":\"c\",\"tasks\":[\"%s\"]}", arn);
      ck_assert_str_eq (
          jstr (cJSON_GetArrayItem (cJSON_GetObjectItem (j, "failures"), 0), "reason"), "MISSING");
      done (j);
      /* Gone from the store too; the running replacement is kept. */
      cp_ctx_free (ctx);
      open_ctx ();
    }
  cJSON *s = describe ("web");
  ck_assert_int_eq (jint (s, "runningCount"), 1);
  done (s);
}
END_TEST

static Suite *services_suite (void)
{
  Suite *s = suite_create ("cp_services");
  TCase *tc = tcase_create ("services");
  tcase_set_timeout (tc, 60);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_replica_service_scales_up_and_down_and_replaces_a_stopped_task);
  tcase_add_test (tc,
                  test_rolling_update_honours_minimum_healthy_and_maximum_percent_at_every_step);
  tcase_add_test (tc, test_min_100_percent_starts_new_tasks_before_stopping_old_ones);
  tcase_add_test (tc, test_circuit_breaker_fails_the_deployment_and_rolls_back);
  tcase_add_test (tc, test_tasks_on_a_draining_instance_are_replaced_before_they_stop);
  tcase_add_test (tc, test_daemon_service_follows_instances_and_draining);
  tcase_add_test (tc, test_placement_failures_become_service_events);
  tcase_add_test (tc, test_delete_with_force_stops_the_tasks_and_errors_match_ecs);
  tcase_add_test (tc, test_stopped_tasks_are_forgotten_after_the_retention_period);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (services_suite ());
}
