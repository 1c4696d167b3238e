/* berth-control's container instances, tasks, attributes, tags and agent actions end to end: a
 * real server driven by the real aws CLI, with a test "agent" signing with the agent profile,
 * the CLI's tasks-running / tasks-stopped waiters, caller binding between two agent keys, and
 * a RunTask that survives kill -9. */
#include "controlplane/internal.h"
#include "lib/cleanup.h"
#include "tests/support/cp.h"
#include "tests/support/support.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static ts_cp cp;

static void setup (void)
{
  ts_cp_setup (&cp);
}

static void teardown (void)
{
  ts_cp_teardown (&cp);
}

/* For commands that print nothing on success (waiters, tag-resource). */
#define aws_quiet(...)                                                                             \
  do                                                                                               \
    {                                                                                              \
      char *o_ = NULL;                                                                             \
      int rc_ = ts_cp_aws (&cp, &o_, __VA_ARGS__);                                                 \
      ck_assert_msg (rc_ == 0, "exit %d: %s", rc_, o_ ? o_ : "");                                  \
      free (o_);                                                                                   \
    }                                                                                              \
  while (0)

static const cJSON *item (const cJSON *obj, const char *key)
{
  return cJSON_GetObjectItem (obj, key);
}

static const cJSON *first (const cJSON *obj, const char *list)
{
  return cJSON_GetArrayItem (item (obj, list), 0);
}

#define RESOURCES                                                                                  \
  "'[{\"name\":\"CPU\",\"type\":\"INTEGER\",\"integerValue\":1024},"                               \
  "{\"name\":\"MEMORY\",\"type\":\"INTEGER\",\"integerValue\":2048},"                              \
  "{\"name\":\"PORTS\",\"type\":\"STRINGSET\",\"stringSetValue\":[\"22\",\"2375\"]},"              \
  "{\"name\":\"PORTS_UDP\",\"type\":\"STRINGSET\",\"stringSetValue\":[]},"                         \
  "{\"name\":\"ENI\",\"type\":\"INTEGER\",\"integerValue\":4}]'"

/* Creates cluster c and task definitions small (bridge, 128 cpu, 256 MiB, host port 8080) and
 * vpc (awsvpc). */
static void cluster_and_definitions (void)
{
  cJSON_Delete (ts_cp_aws_ok (&cp, "create-cluster --cluster-name c"));
  cJSON_Delete (
      ts_cp_aws_ok (&cp, "register-task-definition --family small --container-definitions "
                         "'[{\"name\":\"app\",\"image\":\"busybox\",\"cpu\":128,\"memory\":256,"
                         "\"portMappings\":[{\"containerPort\":80,\"hostPort\":8080}]}]'"));
  cJSON_Delete (ts_cp_aws_ok (&cp, "register-task-definition --family vpc --network-mode awsvpc "
                                   "--cpu 256 --memory 256 --container-definitions "
                                   "'[{\"name\":\"app\",\"image\":\"busybox\"}]'"));
}

/* Registers an instance of cluster c with profile; writes its ARN to arn. */
static void register_instance (const char *profile, char arn[256])
{
  cJSON *j = ts_cp_aws_ok (&cp,
                           "register-container-instance --cluster c --profile %s "
                           "--total-resources " RESOURCES " --version-info agentVersion=1.2.3 "
                           "--attributes name=disk,value=ssd",
                           profile);
  snprintf (arn, 256, "%s", ts_json_str (item (j, "containerInstance"), "containerInstanceArn"));
  cJSON_Delete (j);
}

static const cJSON *resource (const cJSON *ci, const char *list, const char *name)
{
  const cJSON *r;
  cJSON_ArrayForEach (r, item (ci, list))
  {
    if (strcmp (ts_json_str (r, "name"), name) == 0)
      return r;
  }
  ck_abort_msg ("no %s in %s", name, list);
  return NULL;
}

static bool has_attribute (const cJSON *ci, const char *name, const char *value)
{
  const cJSON *a;
  cJSON_ArrayForEach (a, item (ci, "attributes"))
  {
    if (strcmp (ts_json_str (a, "name"), name) == 0)
      return value == NULL || strcmp (ts_json_str (a, "value"), value) == 0;
  }
  return false;
}

static cJSON *describe_instance (const char *arn)
{
  return ts_cp_aws_ok (&cp, "describe-container-instances --cluster c --container-instances %s",
                       arn);
}

START_TEST (test_container_instances_register_describe_list_drain_and_deregister)
{
  char arn[256];
  cluster_and_definitions ();
  register_instance ("agent", arn);
  ck_assert_ptr_nonnull (strstr (arn, "arn:aws:ecs:us-east-1:000000000000:container-instance/c/"));
  cJSON *d = describe_instance (arn);
  const cJSON *ci = first (d, "containerInstances");
  ck_assert_str_eq (ts_json_str (ci, "status"), "ACTIVE");
  ck_assert (cJSON_IsTrue (item (ci, "agentConnected")));
  ck_assert_int_eq (item (resource (ci, "registeredResources", "CPU"), "integerValue")->valueint,
                    1024);
  ck_assert_int_eq (item (resource (ci, "remainingResources", "MEMORY"), "integerValue")->valueint,
                    2048);
  ck_assert_int_eq (
      cJSON_GetArraySize (item (resource (ci, "remainingResources", "PORTS"), "stringSetValue")),
      2);
  ck_assert_int_eq (item (ci, "runningTasksCount")->valueint, 0);
  ck_assert_int_eq (item (ci, "pendingTasksCount")->valueint, 0);
  ck_assert_str_eq (ts_json_str (item (ci, "versionInfo"), "agentVersion"), "1.2.3");
  ck_assert_ptr_nonnull (item (ci, "registeredAt"));
  ck_assert (has_attribute (ci, "ecs.os-type", "linux"));
  ck_assert (has_attribute (ci, "ecs.cpu-architecture", NULL));
  ck_assert (has_attribute (ci, "disk", "ssd"));
  cJSON_Delete (d);

  /* Unknown instances are failures in Describe, errors where one is required. */
  d = ts_cp_aws_ok (&cp, "describe-container-instances --cluster c --container-instances "
                         "0123456789abcdef0123456789abcdef");
  ck_assert_str_eq (ts_json_str (first (d, "failures"), "reason"), "MISSING");
  cJSON_Delete (d);
  free (ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                              "deregister-container-instance --cluster c --container-instance "
                              "0123456789abcdef0123456789abcdef"));
  free (ts_cp_aws_fails_with (&cp, "ClusterNotFoundException",
                              "describe-container-instances --cluster nope "
                              "--container-instances %s",
                              arn));
  free (ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                              "list-container-instances --cluster c --filter "
                              "'runningTasksCount >> 1'"));

  /* DRAINING: listed under its status, gets no new task. */
  d = ts_cp_aws_ok (&cp,
                    "update-container-instances-state --cluster c --container-instances %s "
                    "--status DRAINING",
                    arn);
  ck_assert_str_eq (ts_json_str (first (d, "containerInstances"), "status"), "DRAINING");
  cJSON_Delete (d);
  d = ts_cp_aws_ok (&cp, "list-container-instances --cluster c --status DRAINING");
  ck_assert_str_eq (cJSON_GetArrayItem (item (d, "containerInstanceArns"), 0)->valuestring, arn);
  cJSON_Delete (d);
  d = ts_cp_aws_ok (&cp, "run-task --cluster c --task-definition small");
  ck_assert_int_eq (cJSON_GetArraySize (item (d, "tasks")), 0);
  ck_assert_str_eq (ts_json_str (first (d, "failures"), "reason"), "AGENT");
  cJSON_Delete (d);
  cJSON_Delete (ts_cp_aws_ok (&cp,
                              "update-container-instances-state --cluster c "
                              "--container-instances %s --status ACTIVE",
                              arn));
  d = ts_cp_aws_ok (&cp, "list-container-instances --cluster c --filter 'attribute:disk == ssd'");
  ck_assert_int_eq (cJSON_GetArraySize (item (d, "containerInstanceArns")), 1);
  cJSON_Delete (d);
  /* The filter is the whole cluster query language. */
  d = ts_cp_aws_ok (&cp, "list-container-instances --cluster c --filter "
                         "'attribute:disk in [hdd, ssd] and not(attribute:disk == hdd)'");
  ck_assert_int_eq (cJSON_GetArraySize (item (d, "containerInstanceArns")), 1);
  cJSON_Delete (d);
  d = ts_cp_aws_ok (&cp, "list-container-instances --cluster c --filter "
                         "'attribute:disk =~ h.* or ec2InstanceId == i-none'");
  ck_assert_int_eq (cJSON_GetArraySize (item (d, "containerInstanceArns")), 0);
  cJSON_Delete (d);

  /* A task on it: deregistering needs force. */
  d = ts_cp_aws_ok (&cp, "run-task --cluster c --task-definition small");
  ck_assert_str_eq (ts_json_str (first (d, "tasks"), "containerInstanceArn"), arn);
  cJSON_Delete (d);
  _cleanup_free_ char *e = ts_cp_aws_fails_with (
      &cp, "InvalidParameterException",
      "deregister-container-instance --cluster c --container-instance %s", arn);
  ck_assert_ptr_nonnull (strstr (e, "force"));
  d = ts_cp_aws_ok (
      &cp, "deregister-container-instance --cluster c --container-instance %s --force", arn);
  ck_assert_str_eq (ts_json_str (item (d, "containerInstance"), "status"), "INACTIVE");
  cJSON_Delete (d);
  d = ts_cp_aws_ok (&cp, "list-container-instances --cluster c");
  ck_assert_int_eq (cJSON_GetArraySize (item (d, "containerInstanceArns")), 0);
  cJSON_Delete (d);
}
END_TEST

/* The test agent reports a status for task arn with the agent profile. */
static void agent_reports (const char *profile, const char *arn, const char *status)
{
  cJSON_Delete (ts_cp_aws_ok (&cp,
                              "submit-task-state-change --profile %s --cluster c --task %s "
                              "--status %s --containers containerName=app,status=%s",
                              profile, arn, status, status));
}

START_TEST (test_waiters_see_tasks_running_and_stopped_as_the_agent_reports_them)
{
  char ci[256], t1[256], t2[256];
  cluster_and_definitions ();
  register_instance ("agent", ci);
  cJSON_Delete (ts_cp_aws_ok (&cp, "register-task-definition --family multi "
                                   "--container-definitions "
                                   "'[{\"name\":\"app\",\"image\":\"busybox\",\"memory\":64}]'"));
  cJSON *r = ts_cp_aws_ok (&cp, "run-task --cluster c --task-definition multi --count 2 "
                                "--started-by tester --tags key=team,value=blue");
  ck_assert_int_eq (cJSON_GetArraySize (item (r, "tasks")), 2);
  const cJSON *task = first (r, "tasks");
  snprintf (t1, sizeof t1, "%s", ts_json_str (task, "taskArn"));
  snprintf (t2, sizeof t2, "%s",
            ts_json_str (cJSON_GetArrayItem (item (r, "tasks"), 1), "taskArn"));
  ck_assert_str_eq (ts_json_str (task, "lastStatus"), "PENDING");
  ck_assert_str_eq (ts_json_str (task, "desiredStatus"), "RUNNING");
  ck_assert_str_eq (ts_json_str (task, "launchType"), "EC2");
  ck_assert_str_eq (ts_json_str (task, "group"), "family:multi");
  ck_assert_str_eq (ts_json_str (task, "startedBy"), "tester");
  ck_assert_str_eq (ts_json_str (task, "taskDefinitionArn"),
                    "arn:aws:ecs:us-east-1:000000000000:task-definition/multi:1");
  ck_assert_str_eq (ts_json_str (first (task, "containers"), "name"), "app");
  cJSON_Delete (r);

  agent_reports ("agent", t1, "RUNNING");
  agent_reports ("agent", t2, "RUNNING");
  aws_quiet ("wait tasks-running --cluster c --tasks %s %s", t1, t2);
  cJSON *d = ts_cp_aws_ok (&cp, "describe-tasks --cluster c --tasks %s --include TAGS", t1);
  task = first (d, "tasks");
  ck_assert_str_eq (ts_json_str (task, "lastStatus"), "RUNNING");
  ck_assert_ptr_nonnull (item (task, "startedAt"));
  ck_assert_str_eq (ts_json_str (first (task, "containers"), "lastStatus"), "RUNNING");
  ck_assert_str_eq (ts_json_str (first (task, "tags"), "value"), "blue");
  cJSON_Delete (d);
  d = describe_instance (ci);
  ck_assert_int_eq (item (first (d, "containerInstances"), "runningTasksCount")->valueint, 2);
  cJSON_Delete (d);

  d = ts_cp_aws_ok (&cp, "stop-task --cluster c --task %s --reason 'no longer needed'", t1);
  ck_assert_str_eq (ts_json_str (item (d, "task"), "desiredStatus"), "STOPPED");
  ck_assert_str_eq (ts_json_str (item (d, "task"), "stopCode"), "UserInitiated");
  cJSON_Delete (d);
  agent_reports ("agent", t1, "STOPPED");
  aws_quiet ("wait tasks-stopped --cluster c --tasks %s", t1);
  d = ts_cp_aws_ok (&cp, "describe-tasks --cluster c --tasks %s", t1);
  task = first (d, "tasks");
  ck_assert_str_eq (ts_json_str (task, "stoppedReason"), "no longer needed");
  ck_assert_ptr_nonnull (item (task, "stoppedAt"));
  ck_assert_ptr_null (item (task, "tags"));
  cJSON_Delete (d);
  d = ts_cp_aws_ok (&cp, "list-tasks --cluster c --desired-status STOPPED");
  ck_assert_int_eq (cJSON_GetArraySize (item (d, "taskArns")), 1);
  cJSON_Delete (d);
  d = ts_cp_aws_ok (&cp, "list-tasks --cluster c --started-by tester");
  ck_assert_int_eq (cJSON_GetArraySize (item (d, "taskArns")), 1);
  cJSON_Delete (d);
  d = describe_instance (ci);
  ck_assert_int_eq (item (first (d, "containerInstances"), "runningTasksCount")->valueint, 1);
  ck_assert_int_eq (
      item (resource (first (d, "containerInstances"), "remainingResources", "MEMORY"),
            "integerValue")
          ->valueint,
      2048 - 64);
  cJSON_Delete (d);
}
END_TEST

START_TEST (test_run_task_errors_through_the_cli)
{
  char ci[256];
  cluster_and_definitions ();
  register_instance ("admin", ci);
  free (ts_cp_aws_fails_with (&cp, "ClusterNotFoundException",
                              "run-task --cluster nope --task-definition small"));
  free (ts_cp_aws_fails_with (&cp, "ClientException",
                              "run-task --cluster c --task-definition ghost"));
  free (ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                              "run-task --cluster c --task-definition small --count 0"));
  free (ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                              "run-task --cluster c --task-definition small --count 11"));
  _cleanup_free_ char *e = ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                                                 "run-task --cluster c --task-definition vpc");
  ck_assert_ptr_nonnull (strstr (e, "Network Configuration must be provided"));
  free (ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                              "run-task --cluster c --task-definition vpc --network-configuration "
                              "'awsvpcConfiguration={subnets=[subnet-none]}'"));
  free (
      ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                            "run-task --cluster c --task-definition small --launch-type FARGATE"));
  free (ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                              "start-task --cluster c --task-definition small "
                              "--container-instances 0123456789abcdef0123456789abcdef"));
  free (ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                              "stop-task --cluster c --task 0123456789abcdef0123456789abcdef"));
  cJSON *d = ts_cp_aws_ok (&cp, "describe-tasks --cluster c --tasks "
                                "0123456789abcdef0123456789abcdef");
  ck_assert_str_eq (ts_json_str (first (d, "failures"), "reason"), "MISSING");
  cJSON_Delete (d);
  /* Wrong JSON types reach the server only through raw input. */
  _cleanup_free_ char *path = ts_cp_write (&cp, "bad.json",
                                           "{\"cluster\": \"c\", "
                                           "\"taskDefinition\": \"small\", "
                                           "\"count\": 0}");
  free (ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                              "run-task --cli-input-json file://%s", path));
  cJSON_Delete (ts_cp_aws_ok (&cp, "deregister-task-definition --task-definition small:1"));
  _cleanup_free_ char *e2 = ts_cp_aws_fails_with (&cp, "ClientException",
                                                  "run-task --cluster c --task-definition small:1");
  ck_assert_ptr_nonnull (strstr (e2, "inactive"));
  /* StartTask on the named instance; a second copy there does not fit port 8080. */
  cJSON_Delete (ts_cp_aws_ok (&cp,
                              "register-task-definition --family port "
                              "--container-definitions "
                              "'[{\"name\":\"app\",\"image\":\"busybox\",\"memory\":64,"
                              "\"portMappings\":[{\"containerPort\":80,\"hostPort\":8080}]}]'"));
  d = ts_cp_aws_ok (&cp, "start-task --cluster c --task-definition port --container-instances %s",
                    ci);
  ck_assert_str_eq (ts_json_str (first (d, "tasks"), "containerInstanceArn"), ci);
  cJSON_Delete (d);
  d = ts_cp_aws_ok (&cp, "start-task --cluster c --task-definition port --container-instances %s",
                    ci);
  ck_assert_str_eq (ts_json_str (first (d, "failures"), "reason"), "RESOURCE:PORTS");
  cJSON_Delete (d);
}
END_TEST

/* Adds a second agent key to the running server's store and a profile agent2 for it. */
static void add_second_agent (void)
{
  _cleanup_free_ char *db = NULL, *creds = NULL;
  cp_store *store = NULL;
  berr *err = NULL;
  cp_credential c = { .access_key_id = "BKAGSECONDAGENT00001",
                      .secret = "second-agent-secret-0000000000000000000",
                      .role = CP_ROLE_AGENT };
  ck_assert_int_ge (asprintf (&db, "%s/berth-control.db", cp.dir), 0);
  ck_assert_int_eq (cp_store_open (db, &store, &err), 0);
  ck_assert_int_eq (cp_store_add_credential (store, &c, &err), 0);
  cp_store_free (store);
  ck_assert_int_ge (asprintf (&creds, "%s/credentials", cp.dir), 0);
  FILE *f = fopen (creds, "ae");
  ck_assert_ptr_nonnull (f);
  fprintf (f, "\n[agent2]\naws_access_key_id = %s\naws_secret_access_key = %s\n", c.access_key_id,
           c.secret);
  fclose (f);
}

START_TEST (test_agent_keys_are_refused_admin_actions_and_other_instances)
{
  char ci[256], t[256];
  cluster_and_definitions ();
  register_instance ("agent", ci);
  free (ts_cp_aws_fails_with (&cp, "AccessDeniedException",
                              "run-task --profile agent --cluster c --task-definition small"));
  free (ts_cp_aws_fails_with (&cp, "AccessDeniedException",
                              "list-tasks --profile agent --cluster c"));
  cJSON *r = ts_cp_aws_ok (&cp, "run-task --cluster c --task-definition small");
  snprintf (t, sizeof t, "%s", ts_json_str (first (r, "tasks"), "taskArn"));
  cJSON_Delete (r);
  add_second_agent ();
  /* agent2 has its own instance, and cannot touch the first one or its task. */
  char ci2[256];
  register_instance ("agent2", ci2);
  _cleanup_free_ char *e = ts_cp_aws_fails_with (
      &cp, "AccessDeniedException",
      "submit-task-state-change --profile agent2 --cluster c --task %s --status RUNNING", t);
  free (ts_cp_aws_fails_with (&cp, "AccessDeniedException",
                              "submit-container-state-change --profile agent2 --cluster c "
                              "--task %s --container-name app --status RUNNING",
                              t));
  free (ts_cp_aws_fails_with (&cp, "AccessDeniedException",
                              "deregister-container-instance --profile agent2 --cluster c "
                              "--container-instance %s --force",
                              ci));
  free (ts_cp_aws_fails_with (&cp, "AccessDeniedException",
                              "discover-poll-endpoint --profile agent2 --cluster c "
                              "--container-instance %s",
                              ci));
  /* The bound key may. */
  agent_reports ("agent", t, "RUNNING");
  cJSON *d = ts_cp_aws_ok (&cp,
                           "discover-poll-endpoint --profile agent --cluster c "
                           "--container-instance %s",
                           ci);
  char want[64];
  snprintf (want, sizeof want, "http://127.0.0.1:%d/", cp.port);
  ck_assert_str_eq (ts_json_str (d, "endpoint"), want);
  ck_assert_str_eq (ts_json_str (d, "telemetryEndpoint"), want);
  cJSON_Delete (d);
  cJSON_Delete (ts_cp_aws_ok (&cp,
                              "submit-container-state-change --profile agent --cluster c "
                              "--task %s --container-name app --status RUNNING --runtime-id r1 "
                              "--network-bindings containerPort=80,hostPort=8080,protocol=tcp",
                              t));
  d = ts_cp_aws_ok (&cp, "describe-tasks --cluster c --tasks %s", t);
  const cJSON *c = first (first (d, "tasks"), "containers");
  ck_assert_str_eq (ts_json_str (c, "runtimeId"), "r1");
  ck_assert_int_eq (item (first (c, "networkBindings"), "hostPort")->valueint, 8080);
  cJSON_Delete (d);
}
END_TEST

START_TEST (test_awsvpc_tasks_get_an_eni_attachment_from_the_configured_subnet)
{
  char ci[256];
  ts_cp_signal (&cp, SIGTERM);
  free (ts_cp_write (&cp, "subnets.json",
                     "[{\"subnetId\": \"subnet-web\", \"cidr\": \"10.42.0.0/24\", "
                     "\"gateway\": \"10.42.0.1\", \"dns\": [\"10.42.0.2\"]}]"));
  ts_cp_start (&cp);
  cluster_and_definitions ();
  register_instance ("agent", ci);
  cJSON *r
      = ts_cp_aws_ok (&cp, "run-task --cluster c --task-definition vpc --count 2 "
                           "--network-configuration "
                           "'awsvpcConfiguration={subnets=[subnet-web],assignPublicIp=DISABLED}'");
  ck_assert_int_eq (cJSON_GetArraySize (item (r, "tasks")), 2);
  const cJSON *att = first (first (r, "tasks"), "attachments"), *d;
  ck_assert_str_eq (ts_json_str (att, "type"), "ElasticNetworkInterface");
  const char *names[] = { "subnetId", "networkInterfaceId", "macAddress", "privateIPv4Address" };
  for (size_t i = 0; i < 4; i++)
    {
      bool found = false;
      cJSON_ArrayForEach (d, item (att, "details"))
      {
        found |= strcmp (ts_json_str (d, "name"), names[i]) == 0;
        if (strcmp (ts_json_str (d, "name"), "privateIPv4Address") == 0)
          ck_assert_str_eq (ts_json_str (d, "value"), "10.42.0.2");
      }
      ck_assert_msg (found, "no %s", names[i]);
    }
  char att_arn[128], task[256];
  snprintf (att_arn, sizeof att_arn, "arn:aws:ecs:us-east-1:000000000000:attachment/%s",
            ts_json_str (att, "id"));
  snprintf (task, sizeof task, "%s", ts_json_str (first (r, "tasks"), "taskArn"));
  cJSON_Delete (r);
  cJSON_Delete (ts_cp_aws_ok (&cp,
                              "submit-attachment-state-changes --profile agent --cluster c "
                              "--attachments attachmentArn=%s,status=ATTACHED",
                              att_arn));
  cJSON *dt = ts_cp_aws_ok (&cp, "describe-tasks --cluster c --tasks %s", task);
  ck_assert_str_eq (ts_json_str (first (first (dt, "tasks"), "attachments"), "status"), "ATTACHED");
  cJSON_Delete (dt);
  dt = describe_instance (ci);
  ck_assert_int_eq (item (resource (first (dt, "containerInstances"), "remainingResources", "ENI"),
                          "integerValue")
                        ->valueint,
                    2);
  cJSON_Delete (dt);
}
END_TEST

START_TEST (test_run_task_survives_kill_9_right_after_it_returned)
{
  char ci[256], t[256];
  cluster_and_definitions ();
  register_instance ("agent", ci);
  cJSON *r = ts_cp_aws_ok (&cp, "run-task --cluster c --task-definition small");
  snprintf (t, sizeof t, "%s", ts_json_str (first (r, "tasks"), "taskArn"));
  cJSON_Delete (r);
  int status = ts_cp_signal (&cp, SIGKILL);
  ck_assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
  ts_cp_start (&cp);
  cJSON *d = ts_cp_aws_ok (&cp, "describe-tasks --cluster c --tasks %s", t);
  ck_assert_str_eq (ts_json_str (first (d, "tasks"), "lastStatus"), "PENDING");
  cJSON_Delete (d);
  d = describe_instance (ci);
  const cJSON *c = first (d, "containerInstances");
  ck_assert_int_eq (item (resource (c, "remainingResources", "CPU"), "integerValue")->valueint,
                    1024 - 128);
  ck_assert_int_eq (item (c, "pendingTasksCount")->valueint, 1);
  cJSON_Delete (d);
  /* The binding survived too. */
  agent_reports ("agent", t, "RUNNING");
  aws_quiet ("wait tasks-running --cluster c --tasks %s", t);
  status = ts_cp_signal (&cp, SIGTERM);
  ck_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
}
END_TEST

START_TEST (test_attributes_and_tags_through_the_cli)
{
  char ci[256], t[256];
  cluster_and_definitions ();
  register_instance ("agent", ci);
  cJSON_Delete (ts_cp_aws_ok (&cp,
                              "put-attributes --cluster c --attributes "
                              "name=rack,value=r7,targetId=%s",
                              ci));
  cJSON *l = ts_cp_aws_ok (&cp, "list-attributes --cluster c --target-type container-instance "
                                "--attribute-name rack");
  ck_assert_str_eq (ts_json_str (first (l, "attributes"), "value"), "r7");
  ck_assert_str_eq (ts_json_str (first (l, "attributes"), "targetId"), ci);
  cJSON_Delete (l);
  free (ts_cp_aws_fails_with (&cp, "TargetNotFoundException",
                              "put-attributes --cluster c --attributes "
                              "name=rack,value=r7,targetId=0123456789abcdef0123456789abcdef"));
  cJSON_Delete (
      ts_cp_aws_ok (&cp, "delete-attributes --cluster c --attributes name=rack,targetId=%s", ci));
  l = ts_cp_aws_ok (&cp, "list-attributes --cluster c --target-type container-instance "
                         "--attribute-name rack");
  ck_assert_int_eq (cJSON_GetArraySize (item (l, "attributes")), 0);
  cJSON_Delete (l);

  cJSON *r = ts_cp_aws_ok (&cp, "run-task --cluster c --task-definition small");
  snprintf (t, sizeof t, "%s", ts_json_str (first (r, "tasks"), "taskArn"));
  cJSON_Delete (r);
  const char *arns[] = { ci, t, "arn:aws:ecs:us-east-1:000000000000:cluster/c",
                         "arn:aws:ecs:us-east-1:000000000000:task-definition/small:1" };
  for (size_t i = 0; i < 4; i++)
    {
      aws_quiet ("tag-resource --resource-arn %s --tags key=a,value=1 key=b,value=2", arns[i]);
      aws_quiet ("untag-resource --resource-arn %s --tag-keys a", arns[i]);
      cJSON *tags = ts_cp_aws_ok (&cp, "list-tags-for-resource --resource-arn %s", arns[i]);
      ck_assert_int_eq (cJSON_GetArraySize (item (tags, "tags")), 1);
      ck_assert_str_eq (ts_json_str (first (tags, "tags"), "key"), "b");
      cJSON_Delete (tags);
    }
  free (ts_cp_aws_fails_with (&cp, "ResourceNotFoundException",
                              "list-tags-for-resource --resource-arn "
                              "arn:aws:ecs:us-east-1:000000000000:task/c/"
                              "0123456789abcdef0123456789abcdef"));
  free (ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                              "list-tags-for-resource --resource-arn arn:aws:s3:::bucket"));
}
END_TEST

static Suite *tasks_suite (void)
{
  Suite *s = suite_create ("controlplane-tasks");
  TCase *tc = tcase_create ("cli");
  tcase_set_timeout (tc, 120);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_container_instances_register_describe_list_drain_and_deregister);
  tcase_add_test (tc, test_waiters_see_tasks_running_and_stopped_as_the_agent_reports_them);
  tcase_add_test (tc, test_run_task_errors_through_the_cli);
  tcase_add_test (tc, test_agent_keys_are_refused_admin_actions_and_other_instances);
  tcase_add_test (tc, test_awsvpc_tasks_get_an_eni_attachment_from_the_configured_subnet);
  tcase_add_test (tc, test_run_task_survives_kill_9_right_after_it_returned);
  tcase_add_test (tc, test_attributes_and_tags_through_the_cli);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (tasks_suite ());
}
