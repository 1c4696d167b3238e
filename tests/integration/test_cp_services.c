/* berth-control's services end to end: a real server driven by the real aws CLI, a test agent
 * (the agent profile) reporting task states, `aws ecs wait services-stable` through a rolling
 * update, delete-service --force and the ECS errors. */
#include "controlplane/internal.h"
#include "lib/cleanup.h"
#include "tests/support/cp.h"
#include "tests/support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ts_cp cp;

static void setup (void)
{
  ts_cp_setup (&cp);
}

static void teardown (void)
{
  ts_cp_teardown (&cp);
}

#define aws_quiet(...)                                                                             \
  do                                                                                               \
    {                                                                                              \
      char *o_ = NULL;                                                                             \
      int rc_ = ts_cp_aws (&cp, &o_, __VA_ARGS__);                                                 \
      ck_assert_msg (rc_ == 0, "exit %d: %s", rc_, o_ ? o_ : "");                                  \
      free (o_);                                                                                   \
    }                                                                                              \
  while (0)

#define RESOURCES                                                                                  \
  "'[{\"name\":\"CPU\",\"type\":\"INTEGER\",\"integerValue\":2048},"                               \
  "{\"name\":\"MEMORY\",\"type\":\"INTEGER\",\"integerValue\":4096}]'"

static const cJSON *first (const cJSON *obj, const char *list)
{
  return cJSON_GetArrayItem (cJSON_GetObjectItem (obj, list), 0);
}

static int num (const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItem (obj, key);
  return cJSON_IsNumber (v) ? (int)v->valuedouble : -1;
}

static void cluster_instance_and_definitions (void)
{
  cJSON_Delete (ts_cp_aws_ok (&cp, "create-cluster --cluster-name c"));
  for (int rev = 1; rev <= 2; rev++)
    cJSON_Delete (ts_cp_aws_ok (&cp,
                                "register-task-definition --family web --container-definitions "
                                "'[{\"name\":\"app\",\"image\":\"busybox:%d\",\"cpu\":128,"
                                "\"memory\":128}]'",
                                rev));
  cJSON_Delete (ts_cp_aws_ok (&cp, "register-container-instance --cluster c --profile agent "
                                   "--total-resources " RESOURCES));
}

/* The test agent: reports every PENDING task of the service RUNNING and every task asked to
 * stop STOPPED; returns how many reports it sent. */
static int agent_round (const char *service)
{
  const char *desired[] = { "RUNNING", "STOPPED" };
  int sent = 0;
  for (int d = 0; d < 2; d++)
    {
      cJSON *l = ts_cp_aws_ok (&cp, "list-tasks --cluster c --service-name %s --desired-status %s",
                               service, desired[d]);
      const cJSON *a;
      cJSON_ArrayForEach (a, cJSON_GetObjectItem (l, "taskArns"))
      {
        cJSON *t = ts_cp_aws_ok (&cp, "describe-tasks --cluster c --tasks %s", a->valuestring);
        const char *last = ts_json_str (first (t, "tasks"), "lastStatus");
        const char *to = d == 0 ? (strcmp (last, "PENDING") == 0 ? "RUNNING" : NULL)
                                : (strcmp (last, "STOPPED") != 0 ? "STOPPED" : NULL);
        if (to)
          {
            cJSON_Delete (ts_cp_aws_ok (&cp,
                                        "submit-task-state-change --profile agent --cluster c "
                                        "--task %s --status %s",
                                        a->valuestring, to));
            sent++;
          }
        cJSON_Delete (t);
      }
      cJSON_Delete (l);
    }
  return sent;
}

static cJSON *describe_web (void)
{
  return ts_cp_aws_ok (&cp, "describe-services --cluster c --services web");
}

START_TEST (test_create_update_wait_stable_and_delete_through_the_cli)
{
  cluster_instance_and_definitions ();
  cJSON *j = ts_cp_aws_ok (&cp, "create-service --cluster c --service-name web "
                                "--task-definition web:1 --desired-count 2 "
                                "--deployment-configuration "
                                "maximumPercent=200,minimumHealthyPercent=100");
  const cJSON *s = cJSON_GetObjectItem (j, "service");
  ck_assert_str_eq (ts_json_str (s, "status"), "ACTIVE");
  ck_assert_str_eq (ts_json_str (s, "serviceArn"),
                    "arn:aws:ecs:us-east-1:000000000000:service/c/web");
  ck_assert_str_eq (ts_json_str (first (s, "deployments"), "rolloutState"), "IN_PROGRESS");
  cJSON_Delete (j);
  for (int i = 0; i < 5 && agent_round ("web") > 0; i++)
    ;
  aws_quiet ("wait services-stable --cluster c --services web");
  j = describe_web ();
  s = first (j, "services");
  ck_assert_int_eq (num (s, "runningCount"), 2);
  ck_assert_str_eq (ts_json_str (first (s, "events"), "message"),
                    "(service web) has reached a steady state.");
  cJSON_Delete (j);

  /* A new revision rolls out; the agent keeps reporting until the service is stable again. */
  j = ts_cp_aws_ok (&cp, "update-service --cluster c --service web --task-definition web:2");
  ck_assert_int_eq (
      cJSON_GetArraySize (cJSON_GetObjectItem (cJSON_GetObjectItem (j, "service"), "deployments")),
      2);
  cJSON_Delete (j);
  for (int i = 0; i < 6 && agent_round ("web") > 0; i++)
    ;
  aws_quiet ("wait services-stable --cluster c --services web");
  j = describe_web ();
  s = first (j, "services");
  ck_assert (strstr (ts_json_str (s, "taskDefinition"), "task-definition/web:2"));
  ck_assert_str_eq (ts_json_str (first (s, "deployments"), "rolloutState"), "COMPLETED");
  cJSON_Delete (j);

  j = ts_cp_aws_ok (&cp, "list-services --cluster c");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (j, "serviceArns")), 1);
  cJSON_Delete (j);
  free (ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                              "delete-service --cluster c --service web"));
  j = ts_cp_aws_ok (&cp, "delete-service --cluster c --service web --force");
  ck_assert_str_eq (ts_json_str (cJSON_GetObjectItem (j, "service"), "status"), "DRAINING");
  cJSON_Delete (j);
  free (ts_cp_aws_fails_with (&cp, "ServiceNotActiveException",
                              "update-service --cluster c --service web --desired-count 1"));
  agent_round ("web");
  aws_quiet ("wait services-inactive --cluster c --services web");
}
END_TEST

START_TEST (test_service_errors_through_the_cli)
{
  cluster_instance_and_definitions ();
  free (ts_cp_aws_fails_with (&cp, "ServiceNotFoundException",
                              "update-service --cluster c --service nope --desired-count 1"));
  free (ts_cp_aws_fails_with (&cp, "ServiceNotFoundException",
                              "delete-service --cluster c --service nope"));
  free (ts_cp_aws_fails_with (&cp, "ClusterNotFoundException",
                              "create-service --cluster nope --service-name x "
                              "--task-definition web:1"));
  free (ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                              "create-service --cluster c --service-name x --task-definition "
                              "web:1 --deployment-configuration maximumPercent=50"));
  free (ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                              "create-service --cluster c --service-name x --task-definition "
                              "web:1 --deployment-configuration minimumHealthyPercent=101"));
  free (ts_cp_aws_fails_with (&cp, "InvalidParameterException",
                              "create-service --cluster c --service-name x --task-definition "
                              "web:1 --scheduling-strategy DAEMON --desired-count 3"));
  cJSON *j = ts_cp_aws_ok (&cp, "describe-services --cluster c --services nope");
  ck_assert_str_eq (ts_json_str (first (j, "failures"), "reason"), "MISSING");
  cJSON_Delete (j);
  char *o = NULL;
  ck_assert_int_ne (ts_cp_aws (&cp, &o, "wait services-stable --cluster c --services nope"), 0);
  free (o);
}
END_TEST

static Suite *services_suite (void)
{
  Suite *s = suite_create ("cp_services_cli");
  TCase *tc = tcase_create ("cli");
  tcase_set_timeout (tc, 180);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_create_update_wait_stable_and_delete_through_the_cli);
  tcase_add_test (tc, test_service_errors_through_the_cli);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (services_suite ());
}
