/* Integration tests of berth-control's channel messages beyond payloads and of the telemetry
 * views: task role credentials (--task-roles), ENI attachments, instance health, service
 * metrics. A real server, the aws CLI, and raw signed channel calls (ts_cp_call). */
#include "lib/cleanup.h"
#include "tests/support/cp.h"
#include "tests/support/support.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TASK_ROLE "arn:aws:iam::000000000000:role/app"
#define EXEC_ROLE "arn:aws:iam::000000000000:role/exec"
#define TASK_SECRET "task-secret-Zq8h3VbL"
#define EXEC_SECRET "exec-secret-Pw4Kc9Xn"

static ts_cp cp;
static char *roles_dir;

static void setup (void)
{
  ts_cp_setup (&cp);
  cJSON_Delete (ts_cp_aws_ok (&cp, "create-cluster --cluster-name m"));
}

static void teardown (void)
{
  ts_cp_teardown (&cp);
  ts_cp_set_extra_args (NULL);
}

/* berth-control started with a roles file naming TASK_ROLE and EXEC_ROLE and credentials that
 * last duration seconds. */
static void setup_roles (void)
{
  static char path[512];
  static const char *args[] = { "--task-roles", path, "--task-role-duration", "6", NULL };
  roles_dir = ts_mkdtemp ("cp-roles");
  snprintf (path, sizeof path, "%s/roles", roles_dir);
  FILE *f = fopen (path, "we");
  ck_assert_ptr_nonnull (f);
  fputs ("# the operator's role credentials\n"
         "[" TASK_ROLE "]\n"
         "aws_access_key_id = AKIATASKROLE0000001\n"
         "aws_secret_access_key = " TASK_SECRET "\n"
         "aws_session_token = task-token\n"
         "\n[" EXEC_ROLE "]\n"
         "aws_access_key_id=AKIAEXECROLE0000001\n"
         "aws_secret_access_key=" EXEC_SECRET "\n",
         f);
  fclose (f);
  chmod (path, 0600);
  ts_cp_set_extra_args (args);
  setup ();
}

static void teardown_roles (void)
{
  teardown ();
  ts_rmtree (roles_dir);
  free (roles_dir);
}

static const cJSON *first (const cJSON *obj, const char *list)
{
  return cJSON_GetArrayItem (cJSON_GetObjectItem (obj, list), 0);
}

static char *register_instance (const char *extra)
{
  cJSON *r = ts_cp_aws_ok (&cp,
                           "register-container-instance --profile agent --cluster m "
                           "--total-resources name=CPU,type=INTEGER,integerValue=2048 "
                           "name=MEMORY,type=INTEGER,integerValue=2048 %s",
                           extra);
  char *arn
      = strdup (ts_json_str (cJSON_GetObjectItem (r, "containerInstance"), "containerInstanceArn"));
  cJSON_Delete (r);
  return arn;
}

static char *run_task (const char *args)
{
  cJSON *r = ts_cp_aws_ok (&cp, "run-task --cluster m %s", args);
  char *arn = strdup (ts_json_str (first (r, "tasks"), "taskArn"));
  cJSON_Delete (r);
  ck_assert_str_ne (arn, "");
  return arn;
}

/* One Poll as the agent; returns the response's messages list (owned by *resp). */
static cJSON *poll (const char *inst, int ack, int wait, cJSON **resp)
{
  _cleanup_free_ char *body = NULL, *out = NULL;
  ck_assert_int_ge (asprintf (&body,
                              "{\"cluster\":\"m\",\"containerInstance\":\"%s\",\"ackSeqNum\":%d,"
                              "\"waitSeconds\":%d}",
                              inst, ack, wait),
                    0);
  long status = ts_cp_call (&cp, "agent", "BerthChannelV1.Poll", body, &out);
  ck_assert_msg (status == 200, "Poll: %ld %s", status, out ? out : "");
  *resp = cJSON_Parse (out);
  ck_assert_ptr_nonnull (*resp);
  return cJSON_GetObjectItem (*resp, "messages");
}

static const cJSON *msg_of (const cJSON *messages, int i, const char *type)
{
  const cJSON *m = cJSON_GetArrayItem (messages, i);
  ck_assert_msg (m, "no message %d", i);
  ck_assert_str_eq (ts_json_str (m, "type"), type);
  return cJSON_GetObjectItem (m, "message");
}

static char *server_log (void)
{
  _cleanup_free_ char *path = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/log", cp.dir), 0);
  return ts_read_file (path);
}

static void register_role_definition (void)
{
  cJSON_Delete (ts_cp_aws_ok (&cp,
                              "register-task-definition --family roled --task-role-arn " TASK_ROLE
                              " --execution-role-arn " EXEC_ROLE " --container-definitions "
                              "'[{\"name\":\"app\",\"image\":\"busybox\",\"memory\":64}]'"));
}

START_TEST (test_role_credentials_come_before_the_payload_and_are_refreshed_before_expiry)
{
  _cleanup_free_ char *inst = register_instance (""), *task = NULL, *log = NULL;
  register_role_definition ();
  task = run_task ("--task-definition roled");
  cJSON *resp, *resp2;
  cJSON *msgs = poll (inst, 0, 0, &resp);
  ck_assert_int_eq (cJSON_GetArraySize (msgs), 3);
  const cJSON *c1 = msg_of (msgs, 0, "IAMRoleCredentialsMessage");
  const cJSON *c2 = msg_of (msgs, 1, "IAMRoleCredentialsMessage");
  const cJSON *p = msg_of (msgs, 2, "PayloadMessage");
  ck_assert_str_eq (ts_json_str (c1, "roleType"), "TaskApplication");
  ck_assert_str_eq (ts_json_str (c2, "roleType"), "TaskExecution");
  ck_assert_str_eq (ts_json_str (c1, "taskArn"), task);
  ck_assert_str_eq (ts_json_str (c1, "containerInstanceArn"), inst);
  ck_assert_int_eq (cJSON_GetObjectItem (c1, "seqNum")->valueint, 1);
  ck_assert_int_eq (cJSON_GetObjectItem (p, "seqNum")->valueint, 3);
  const cJSON *rc1 = cJSON_GetObjectItem (c1, "roleCredentials");
  const cJSON *rc2 = cJSON_GetObjectItem (c2, "roleCredentials");
  ck_assert_str_eq (ts_json_str (rc1, "roleArn"), TASK_ROLE);
  ck_assert_str_eq (ts_json_str (rc1, "accessKeyId"), "AKIATASKROLE0000001");
  ck_assert_str_eq (ts_json_str (rc1, "secretAccessKey"), TASK_SECRET);
  ck_assert_str_eq (ts_json_str (rc1, "sessionToken"), "task-token");
  ck_assert_str_eq (ts_json_str (rc2, "secretAccessKey"), EXEC_SECRET);
  ck_assert_ptr_null (cJSON_GetObjectItem (rc2, "sessionToken"));
  ck_assert_int_eq (strlen (ts_json_str (rc1, "credentialsId")), 32);
  ck_assert_str_ne (ts_json_str (rc1, "credentialsId"), ts_json_str (rc2, "credentialsId"));
  _cleanup_free_ char *exp1 = strdup (ts_json_str (rc1, "expiration"));
  _cleanup_free_ char *id1 = strdup (ts_json_str (rc1, "credentialsId"));
  ck_assert_int_eq (strlen (exp1), 20); /* 2026-11-22T21:00:00Z */
  /* The payload names the roles and the credentials' ids, never the secrets. */
  const cJSON *t = first (p, "tasks");
  ck_assert_str_eq (ts_json_str (t, "taskRoleArn"), TASK_ROLE);
  ck_assert_str_eq (ts_json_str (t, "executionRoleArn"), EXEC_ROLE);
  ck_assert_str_eq (ts_json_str (t, "credentialsId"), id1);
  ck_assert_str_eq (ts_json_str (t, "executionCredentialsId"), ts_json_str (rc2, "credentialsId"));
  _cleanup_free_ char *payload = cJSON_PrintUnformatted (p);
  ck_assert_ptr_null (strstr (payload, TASK_SECRET));
  cJSON *d = ts_cp_aws_ok (&cp, "describe-tasks --cluster m --tasks %s", task);
  _cleanup_free_ char *described = cJSON_PrintUnformatted (d);
  ck_assert_ptr_null (strstr (described, "_credentials"));
  ck_assert_ptr_null (strstr (described, TASK_SECRET));
  cJSON_Delete (d);
  /* Acked; 6 s credentials are sent again a sixth of that before they expire: same id, later
   * expiration. */
  int refreshed = 0;
  for (int i = 0; i < 30 && refreshed < 2; i++)
    {
      msgs = poll (inst, 3 + refreshed, 2, &resp2);
      const cJSON *m = cJSON_GetArrayItem (msgs, 0);
      if (strcmp (ts_json_str (m, "type"), "IAMRoleCredentialsMessage") == 0)
        {
          const cJSON *rc
              = cJSON_GetObjectItem (cJSON_GetObjectItem (m, "message"), "roleCredentials");
          if (strcmp (ts_json_str (rc, "roleArn"), TASK_ROLE) == 0)
            {
              ck_assert_str_eq (ts_json_str (rc, "credentialsId"), id1);
              ck_assert_msg (strcmp (ts_json_str (rc, "expiration"), exp1) > 0,
                             "expiration %s not after %s", ts_json_str (rc, "expiration"), exp1);
            }
          refreshed += cJSON_GetArraySize (msgs);
        }
      cJSON_Delete (resp2);
    }
  ck_assert_int_eq (refreshed, 2);
  cJSON_Delete (resp);
  log = server_log ();
  ck_assert_ptr_nonnull (strstr (log, "credentials"));
  ck_assert_ptr_null (strstr (log, TASK_SECRET));
  ck_assert_ptr_null (strstr (log, EXEC_SECRET));
  /* A clean stop frees the roles (under ASan: no leak). */
  ck_assert_int_eq (ts_cp_signal (&cp, SIGTERM), 0);
}
END_TEST

START_TEST (test_a_role_the_roles_file_does_not_name_fails_run_task)
{
  _cleanup_free_ char *inst = register_instance ("");
  register_role_definition ();
  _cleanup_free_ char *msg
      = ts_cp_aws_fails_with (&cp, "ClientException",
                              "run-task --cluster m --task-definition roled --overrides "
                              "'{\"taskRoleArn\":\"arn:aws:iam::000000000000:role/unknown\"}'");
  ck_assert_ptr_nonnull (strstr (msg, "unable to assume the role"));
  ck_assert_ptr_nonnull (strstr (msg, "role/unknown"));
  cJSON *l = ts_cp_aws_ok (&cp, "list-tasks --cluster m");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l, "taskArns")), 0);
  cJSON_Delete (l);
  /* A definition without roles still runs, with no credentials message. */
  cJSON_Delete (ts_cp_aws_ok (&cp, "register-task-definition --family plain "
                                   "--container-definitions "
                                   "'[{\"name\":\"app\",\"image\":\"busybox\",\"memory\":64}]'"));
  _cleanup_free_ char *task = run_task ("--task-definition plain");
  cJSON *resp;
  cJSON *msgs = poll (inst, 0, 0, &resp);
  ck_assert_int_eq (cJSON_GetArraySize (msgs), 1);
  msg_of (msgs, 0, "PayloadMessage");
  cJSON_Delete (resp);
}
END_TEST

typedef struct held_poll
{
  const char *inst;
  cJSON *resp;
} held_poll;

static void *poll_held (void *arg)
{
  held_poll *h = arg;
  char body[512], *out = NULL;
  snprintf (body, sizeof body,
            "{\"cluster\":\"m\",\"containerInstance\":\"%s\",\"ackSeqNum\":0,"
            "\"waitSeconds\":20}",
            h->inst);
  if (ts_cp_call (&cp, "agent", "BerthChannelV1.Poll", body, &out) == 200)
    h->resp = cJSON_Parse (out);
  free (out);
  return NULL;
}

/* The credentials are logged without waking the poll; the payload wakes it with all three. */
START_TEST (test_a_held_poll_gets_the_credentials_and_the_payload_in_one_answer)
{
  _cleanup_free_ char *inst = register_instance ("");
  register_role_definition ();
  held_poll h = { .inst = inst };
  pthread_t th;
  ck_assert_int_eq (pthread_create (&th, NULL, poll_held, &h), 0);
  usleep (500000); /* the poll is held by now (if not, it finds the same three messages) */
  _cleanup_free_ char *task = run_task ("--task-definition roled");
  pthread_join (th, NULL);
  ck_assert_ptr_nonnull (h.resp);
  cJSON *msgs = cJSON_GetObjectItem (h.resp, "messages");
  ck_assert_int_eq (cJSON_GetArraySize (msgs), 3);
  msg_of (msgs, 0, "IAMRoleCredentialsMessage");
  msg_of (msgs, 1, "IAMRoleCredentialsMessage");
  ck_assert_str_eq (ts_json_str (first (msg_of (msgs, 2, "PayloadMessage"), "tasks"), "arn"), task);
  cJSON_Delete (h.resp);
}
END_TEST

/* A roles file that others may read is refused at start. */
START_TEST (test_a_roles_file_readable_by_others_is_refused)
{
  _cleanup_free_ char *bin = ts_bin ("berth-control"), *cmd = NULL, *out = NULL;
  _cleanup_free_ char *path = ts_cp_write (&cp, "roles-open",
                                           "[" TASK_ROLE "]\n"
                                           "aws_access_key_id = A\n"
                                           "aws_secret_access_key = S\n");
  int status;
  chmod (path, 0644);
  ck_assert_int_ge (asprintf (&cmd,
                              "%s --data-dir %s/other --listen 127.0.0.1:%d --task-roles %s 2>&1",
                              bin, cp.dir, ts_free_port (), path),
                    0);
  ck_assert_int_eq (ts_sh (cmd, &out, &status), 0);
  ck_assert_int_ne (ts_exit_code (status), 0);
  ck_assert_msg (strstr (out, "accessible by group or others"), "%s", out);
}
END_TEST

START_TEST (test_awsvpc_tasks_get_an_attach_eni_message_before_their_payload)
{
  ts_cp_signal (&cp, SIGTERM);
  free (ts_cp_write (&cp, "subnets.json",
                     "[{\"subnetId\": \"subnet-m\", \"cidr\": \"10.43.0.0/24\", "
                     "\"gateway\": \"10.43.0.1\", \"dns\": [\"10.43.0.53\"]}]"));
  ts_cp_start (&cp);
  _cleanup_free_ char *inst = register_instance ("name=ENI,type=INTEGER,integerValue=4");
  cJSON_Delete (ts_cp_aws_ok (&cp, "register-task-definition --family vpc --network-mode awsvpc "
                                   "--container-definitions "
                                   "'[{\"name\":\"app\",\"image\":\"busybox\",\"memory\":64}]'"));
  _cleanup_free_ char *task
      = run_task ("--task-definition vpc --network-configuration "
                  "'awsvpcConfiguration={subnets=[subnet-m],assignPublicIp=DISABLED}'");
  cJSON *resp;
  cJSON *msgs = poll (inst, 0, 0, &resp);
  ck_assert_int_eq (cJSON_GetArraySize (msgs), 2);
  const cJSON *a = msg_of (msgs, 0, "AttachTaskNetworkInterfacesMessage");
  const cJSON *p = msg_of (msgs, 1, "PayloadMessage");
  ck_assert_str_eq (ts_json_str (a, "taskArn"), task);
  ck_assert_str_eq (ts_json_str (a, "containerInstanceArn"), inst);
  ck_assert_int_gt (cJSON_GetObjectItem (a, "waitTimeoutMs")->valueint, 0);
  const cJSON *eni = first (a, "elasticNetworkInterfaces");
  ck_assert_str_eq (ts_json_str (first (eni, "ipv4Addresses"), "privateAddress"), "10.43.0.2");
  ck_assert_str_eq (ts_json_str (eni, "subnetGatewayIpv4Address"), "10.43.0.1/24");
  ck_assert_int_eq (strlen (ts_json_str (eni, "macAddress")), 17);
  ck_assert_ptr_nonnull (strstr (ts_json_str (eni, "attachmentArn"), ":attachment/"));
  ck_assert_str_eq (
      cJSON_GetArrayItem (cJSON_GetObjectItem (eni, "domainNameServers"), 0)->valuestring,
      "10.43.0.53");
  /* The payload keeps the same interface for agents that read it from there. */
  const cJSON *peni = first (first (p, "tasks"), "elasticNetworkInterfaces");
  ck_assert_str_eq (ts_json_str (peni, "macAddress"), ts_json_str (eni, "macAddress"));
  ck_assert_str_eq (ts_json_str (peni, "attachmentArn"), ts_json_str (eni, "attachmentArn"));
  cJSON_Delete (resp);
}
END_TEST

static long publish (const char *target, const char *inst, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
static long publish (const char *target, const char *inst, const char *fmt, ...)
{
  _cleanup_free_ char *body = NULL, *out = NULL, *rest = NULL;
  va_list ap;
  va_start (ap, fmt);
  ck_assert_int_ge (vasprintf (&rest, fmt, ap), 0);
  va_end (ap);
  ck_assert_int_ge (asprintf (&body,
                              "{\"metadata\":{\"cluster\":\"m\",\"containerInstance\":\"%s\"},%s}",
                              inst, rest),
                    0);
  return ts_cp_call (&cp, "agent", target, body, &out);
}

static const cJSON *health_of (cJSON **d, const char *inst)
{
  *d = ts_cp_aws_ok (&cp,
                     "describe-container-instances --cluster m --container-instances %s "
                     "--include CONTAINER_INSTANCE_HEALTH",
                     inst);
  return cJSON_GetObjectItem (first (*d, "containerInstances"), "healthStatus");
}

START_TEST (test_published_instance_status_is_kept_and_shown_as_health_status)
{
  _cleanup_free_ char *inst = register_instance ("");
  cJSON *d;
  const cJSON *h = health_of (&d, inst);
  ck_assert_str_eq (ts_json_str (h, "overallStatus"), "INSUFFICIENT_DATA");
  cJSON_Delete (d);
  ck_assert_int_eq (
      publish ("BerthChannelV1.PublishInstanceStatus", inst,
               "\"statuses\":[{\"type\":\"CONTAINER_RUNTIME\",\"status\":\"%s\","
               "\"lastUpdated\":\"2026-11-22T20:00:00Z\",\"lastStatusChange\":1795000000}]",
               "IMPAIRED"),
      200);
  h = health_of (&d, inst);
  ck_assert_str_eq (ts_json_str (h, "overallStatus"), "IMPAIRED");
  const cJSON *det = first (h, "details");
  ck_assert_str_eq (ts_json_str (det, "type"), "CONTAINER_RUNTIME");
  ck_assert_str_eq (ts_json_str (det, "status"), "IMPAIRED");
  /* The CLI prints timestamps as dates. */
  ck_assert_ptr_nonnull (strstr (ts_json_str (det, "lastUpdated"), "2026-11-22T20:00:00"));
  ck_assert_str_ne (ts_json_str (det, "lastStatusChange"), "");
  cJSON_Delete (d);
  /* Without include, no healthStatus (as ECS). */
  d = ts_cp_aws_ok (&cp, "describe-container-instances --cluster m --container-instances %s", inst);
  ck_assert_ptr_null (cJSON_GetObjectItem (first (d, "containerInstances"), "healthStatus"));
  cJSON_Delete (d);
  /* Back to OK; kept across a kill -9 since the status changed. */
  ck_assert_int_eq (publish ("BerthChannelV1.PublishInstanceStatus", inst,
                             "\"statuses\":[{\"type\":\"CONTAINER_RUNTIME\",\"status\":\"%s\"}]",
                             "OK"),
                    200);
  ts_cp_signal (&cp, SIGKILL);
  ts_cp_start (&cp);
  h = health_of (&d, inst);
  ck_assert_str_eq (ts_json_str (h, "overallStatus"), "OK");
  ck_assert_str_eq (ts_json_str (first (h, "details"), "status"), "OK");
  cJSON_Delete (d);
  /* Unknown statuses and types are refused. */
  ck_assert_int_eq (publish ("BerthChannelV1.PublishInstanceStatus", inst,
                             "\"statuses\":[{\"type\":\"CONTAINER_RUNTIME\",\"status\":\"%s\"}]",
                             "BROKEN"),
                    400);
  ck_assert_int_eq (publish ("BerthChannelV1.PublishInstanceStatus", inst,
                             "\"statuses\":[{\"type\":\"%s\",\"status\":\"OK\"}]", "DISK"),
                    400);
}
END_TEST

static const cJSON *find_task (const cJSON *list, const char *arn)
{
  const cJSON *t;
  cJSON_ArrayForEach (t, list)
  {
    if (strcmp (ts_json_str (t, "taskArn"), arn) == 0)
      return t;
  }
  return NULL;
}

START_TEST (test_service_metrics_sum_the_telemetry_of_each_services_tasks)
{
  _cleanup_free_ char *inst = register_instance (""), *out = NULL, *metrics = NULL;
  cJSON_Delete (ts_cp_aws_ok (&cp, "register-task-definition --family web "
                                   "--container-definitions "
                                   "'[{\"name\":\"app\",\"image\":\"busybox\",\"memory\":64},"
                                   "{\"name\":\"side\",\"image\":\"busybox\",\"memory\":32}]'"));
  cJSON_Delete (ts_cp_aws_ok (&cp, "create-service --cluster m --service-name front "
                                   "--task-definition web --desired-count 2"));
  cJSON *l = ts_cp_aws_ok (&cp, "list-tasks --cluster m --service-name front");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (l, "taskArns")), 2);
  const char *t1 = cJSON_GetArrayItem (cJSON_GetObjectItem (l, "taskArns"), 0)->valuestring;
  const char *t2 = cJSON_GetArrayItem (cJSON_GetObjectItem (l, "taskArns"), 1)->valuestring;
  /* A task outside the service reports too and is not counted. */
  _cleanup_free_ char *lone = run_task ("--task-definition web");
  const char *tasks[] = { t1, t2, lone };
  const double cpu[] = { 10, 30, 99 }, mem[] = { 100, 200, 999 };
  for (int i = 0; i < 3; i++)
    {
      _cleanup_free_ char *tm = NULL;
      /* sum/sampleCount: app cpu[i]*3/3, side 5; memory app mem[i], side 20. */
      ck_assert_int_ge (
          asprintf (&tm,
                    "\"taskMetrics\":[{\"taskArn\":\"%s\",\"containerMetrics\":["
                    "{\"containerName\":\"app\",\"cpuStatsSet\":{\"sampleCount\":3,\"sum\":%g},"
                    "\"memoryStatsSet\":{\"sampleCount\":1,\"sum\":%g}},"
                    "{\"containerName\":\"side\",\"cpuStatsSet\":{\"sampleCount\":2,\"sum\":10},"
                    "\"memoryStatsSet\":{\"sampleCount\":2,\"sum\":40}}]}]",
                    tasks[i], cpu[i] * 3, mem[i]),
          0);
      ck_assert_int_eq (publish ("BerthChannelV1.PublishMetrics", inst, "%s", tm), 200);
    }
  long status = ts_cp_call (&cp, "admin", "BerthControlV1.DescribeServiceMetrics",
                            "{\"cluster\":\"m\",\"services\":[\"front\",\"nope\"]}", &metrics);
  ck_assert_msg (status == 200, "%ld %s", status, metrics);
  cJSON *r = cJSON_Parse (metrics);
  const cJSON *s = first (r, "services");
  ck_assert_str_eq (ts_json_str (s, "serviceName"), "front");
  ck_assert_double_eq_tol (cJSON_GetObjectItem (s, "cpuPercent")->valuedouble, 10 + 30 + 2 * 5,
                           1e-9);
  ck_assert_double_eq_tol (cJSON_GetObjectItem (s, "memoryMiB")->valuedouble, 100 + 200 + 2 * 20,
                           1e-9);
  ck_assert_int_eq (cJSON_GetObjectItem (s, "taskCount")->valueint, 2);
  ck_assert_int_eq (cJSON_GetObjectItem (s, "reportingTaskCount")->valueint, 2);
  const cJSON *v = find_task (cJSON_GetObjectItem (s, "tasks"), t2);
  ck_assert_ptr_nonnull (v);
  ck_assert_double_eq_tol (cJSON_GetObjectItem (v, "cpuPercent")->valuedouble, 35, 1e-9);
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (v, "containers")), 2);
  ck_assert_ptr_null (find_task (cJSON_GetObjectItem (s, "tasks"), lone));
  ck_assert_str_eq (ts_json_str (first (r, "failures"), "reason"), "MISSING");
  cJSON_Delete (r);
  /* Every service of the cluster when none is named; the agent key may not ask. */
  free (metrics);
  ck_assert_int_eq (ts_cp_call (&cp, "admin", "BerthControlV1.DescribeServiceMetrics",
                                "{\"cluster\":\"m\"}", &metrics),
                    200);
  r = cJSON_Parse (metrics);
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (r, "services")), 1);
  cJSON_Delete (r);
  free (metrics);
  ck_assert_int_eq (ts_cp_call (&cp, "agent", "BerthControlV1.DescribeServiceMetrics",
                                "{\"cluster\":\"m\"}", &metrics),
                    400);
  ck_assert_ptr_nonnull (strstr (metrics, "AccessDeniedException"));
  cJSON_Delete (l);
  ck_assert_int_eq (ts_cp_signal (&cp, SIGTERM), 0);
}
END_TEST

static Suite *messages_suite (void)
{
  Suite *s = suite_create ("cp-channel-messages");
  TCase *tc = tcase_create ("roles");
  tcase_set_timeout (tc, 120);
  tcase_add_checked_fixture (tc, setup_roles, teardown_roles);
  tcase_add_test (tc,
                  test_role_credentials_come_before_the_payload_and_are_refreshed_before_expiry);
  tcase_add_test (tc, test_a_role_the_roles_file_does_not_name_fails_run_task);
  tcase_add_test (tc, test_a_held_poll_gets_the_credentials_and_the_payload_in_one_answer);
  suite_add_tcase (s, tc);
  tc = tcase_create ("messages");
  tcase_set_timeout (tc, 120);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_a_roles_file_readable_by_others_is_refused);
  tcase_add_test (tc, test_awsvpc_tasks_get_an_attach_eni_message_before_their_payload);
  tcase_add_test (tc, test_published_instance_status_is_kept_and_shown_as_health_status);
  tcase_add_test (tc, test_service_metrics_sum_the_telemetry_of_each_services_tasks);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (messages_suite ());
}
