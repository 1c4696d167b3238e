/* Integration tests of the agent channel, both sides real: berth-control, the berth-agent daemon,
 * the aws CLI; raw channel calls go through the agent's own HTTP client (agent/http.c). */
#include "agent/agent.h"
#include "cgroups/cgroups.h"
#include "lib/cleanup.h"
#include "runtime/runtime.h"
#include "tests/support/cp.h"
#include "tests/support/support.h"

#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static ts_cp cp;
static const char *creds_file; /* NULL: berth-control's credentials file */
static pid_t agent_pid = -1;
static char *agent_dir;

static double now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The task definition's image, imported into the agent's store before its first start (tag
 * busybox, ECS_IMAGE_PULL_BEHAVIOR=prefer-cached): tasks really run, nothing is pulled. */
static void import_image (const char *cfg, const char *env)
{
  _cleanup_free_ char *bin = ts_bin ("berth-agent"), *tar = NULL;
  ck_assert_int_ge (asprintf (&tar, "%s/sample/sample-httpd.tar", agent_dir), 0);
  if (access (tar, F_OK) == 0)
    return;
  ts_sh_ok ("%s/tests/fixtures/mksample.sh %s/sample >/dev/null 2>&1",
            getenv ("BERTH_SRC") ? getenv ("BERTH_SRC") : ".", agent_dir);
  ts_sh_ok ("env -i %s %s --config %s --import %s --tag busybox >/dev/null", env, bin, cfg, tar);
}

static void start_agent (void)
{
  _cleanup_free_ char *bin = ts_bin ("berth-agent"), *cfg = NULL, *text = NULL, *creds = NULL;
  _cleanup_free_ char *log = NULL;
  ck_assert_int_ge (asprintf (&text,
                              "ECS_CLUSTER=ch\nECS_BACKEND_HOST=http://127.0.0.1:%d\n"
                              "ECS_DATADIR=%s/data\nBERTH_STATE_DIR=%s/run\nECS_LOGLEVEL=debug\n"
                              "BERTH_IMAGE_DIR=%s/images\nECS_IMAGE_PULL_BEHAVIOR=prefer-cached\n"
                              "ECS_CONTAINER_STOP_TIMEOUT=2s\n",
                              cp.port, agent_dir, agent_dir, agent_dir),
                    0);
  ck_assert_int_ge (asprintf (&cfg, "%s/ecs.config", agent_dir), 0);
  if (creds_file)
    ck_assert_int_ge (asprintf (&creds, "AWS_SHARED_CREDENTIALS_FILE=%s", creds_file), 0);
  else
    ck_assert_int_ge (asprintf (&creds, "AWS_SHARED_CREDENTIALS_FILE=%s/credentials", cp.dir), 0);
  ck_assert_int_ge (asprintf (&log, "%s/agent.log", agent_dir), 0);
  FILE *f = fopen (cfg, "we");
  ck_assert_ptr_nonnull (f);
  fputs (text, f);
  fclose (f);
  import_image (cfg, creds);
  agent_pid = fork ();
  ck_assert_int_ge (agent_pid, 0);
  if (agent_pid == 0)
    {
      char *env[] = { "PATH=/usr/bin:/bin", "HOME=/nonexistent", "AWS_PROFILE=agent", creds, NULL };
      FILE *out = fopen (log, "ae");
      if (out)
        dup2 (fileno (out), 1), dup2 (fileno (out), 2);
      execle (bin, bin, "--config", cfg, NULL, env);
      _exit (127);
    }
}

static int stop_agent (int sig)
{
  int status = 0;
  if (agent_pid > 0)
    {
      kill (agent_pid, sig);
      waitpid (agent_pid, &status, 0);
    }
  agent_pid = -1;
  return status;
}

static void setup (void)
{
  /* The agent's bridge and nft table, and its containers' mounts, stay in here. */
  ts_private_net ();
  ck_assert_int_eq (unshare (CLONE_NEWNS), 0);
  ck_assert_int_eq (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
  agent_dir = ts_mkdtemp ("agent-chan");
  ts_cp_setup (&cp);
  cJSON_Delete (ts_cp_aws_ok (&cp, "create-cluster --cluster-name ch"));
  cJSON_Delete (ts_cp_aws_ok (&cp,
                              "register-task-definition --family small --container-definitions "
                              "'[{\"name\":\"web\",\"image\":\"busybox\",\"memory\":64,"
                              "\"entryPoint\":[\"/bin/busybox\"],"
                              "\"command\":[\"sleep\",\"100\"]}]'"));
}

/* The agent is killed, its containers are not: they go, and their shims with them. */
static void kill_containers (void)
{
  _cleanup_free_ char *root = NULL;
  ck_assert_int_ge (asprintf (&root, "%s/run/runtime", agent_dir), 0);
  DIR *d = opendir (root);
  for (struct dirent *de; d && (de = readdir (d));)
    if (de->d_name[0] != '.' && strcmp (de->d_name, "seccomp-cache") != 0)
      {
        _cleanup_berr_ berr *err = NULL;
        rt_container_delete (root, de->d_name, true, &err);
      }
  if (d)
    closedir (d);
  ts_sh_ok ("for p in $(cat %s/run/shims/*/shim.pid 2>/dev/null); do "
            "while kill -0 $p 2>/dev/null; do sleep 0.05; done; done; "
            "awk -v d=%s 'index ($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | "
            "xargs -r umount -l",
            agent_dir, agent_dir);
}

static void teardown (void)
{
  stop_agent (SIGKILL);
  kill_containers ();
  ts_cp_teardown (&cp);
  ts_rmtree (agent_dir);
  free (agent_dir);
}

/* One value from the agent's store, read-only beside the running agent (never taking a write
 * lock the agent's own open would trip over); NULL when absent. */
static char *store_query (const char *sql, const char *arg)
{
  _cleanup_free_ char *db = NULL;
  sqlite3 *h = NULL;
  sqlite3_stmt *st = NULL;
  char *out = NULL;
  ck_assert_int_ge (asprintf (&db, "%s/data/agent.db", agent_dir), 0);
  if (access (db, F_OK) == 0 && sqlite3_open_v2 (db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK
      && sqlite3_busy_timeout (h, 2000) == SQLITE_OK
      && sqlite3_prepare_v2 (h, sql, -1, &st, NULL) == SQLITE_OK)
    {
      if (arg)
        sqlite3_bind_text (st, 1, arg, -1, SQLITE_STATIC);
      if (sqlite3_step (st) == SQLITE_ROW && sqlite3_column_text (st, 0))
        out = strdup ((const char *)sqlite3_column_text (st, 0));
    }
  sqlite3_finalize (st);
  sqlite3_close (h);
  return out;
}

static char *stored_field (const char *arn, const char *field)
{
  char sql[128];
  snprintf (sql, sizeof sql, "SELECT %s FROM tasks WHERE arn = ?", field);
  return store_query (sql, arn);
}

static int64_t stored_ack (void)
{
  _cleanup_free_ char *v = store_query ("SELECT acked_seq FROM channel", NULL);
  return v ? atoll (v) : -1;
}

static size_t stored_count (void)
{
  _cleanup_free_ char *v = store_query ("SELECT count (*) FROM tasks", NULL);
  return v ? (size_t)atoll (v) : 0;
}

/* Waits until the agent stored arn with desired status want; returns the seconds it took. */
static double wait_stored (const char *arn, const char *want, double timeout)
{
  double t0 = now_s ();
  for (;;)
    {
      _cleanup_free_ char *d = stored_field (arn, "desired_status");
      if (d && strcmp (d, want) == 0)
        return now_s () - t0;
      if (now_s () - t0 >= timeout)
        {
          _cleanup_free_ char *p1 = NULL, *p2 = NULL;
          ck_assert_int_ge (asprintf (&p1, "%s/agent.log", agent_dir), 0);
          ck_assert_int_ge (asprintf (&p2, "%s/log", cp.dir), 0);
          _cleanup_free_ char *l1 = ts_read_file (p1), *l2 = ts_read_file (p2);
          fprintf (stderr, "agent log:\n%s\nberth-control log:\n%s\n", l1 ? l1 : "", l2 ? l2 : "");
          ck_abort_msg ("task %s not stored as %s in %.1f s", arn, want, timeout);
        }
      usleep (5000);
    }
}

/* The registered instance's ARN once the agent polls (agentConnected and one instance). */
static char *wait_instance (void)
{
  for (int i = 0; i < 200; i++)
    {
      cJSON *l = ts_cp_aws_ok (&cp, "list-container-instances --cluster ch");
      cJSON *a = cJSON_GetArrayItem (cJSON_GetObjectItem (l, "containerInstanceArns"), 0);
      char *arn = a ? strdup (a->valuestring) : NULL;
      cJSON_Delete (l);
      if (arn && stored_ack () >= 0)
        return arn;
      free (arn);
      usleep (50000);
    }
  ck_abort_msg ("the agent did not register");
  return NULL;
}

static char *run_task (void)
{
  cJSON *r = ts_cp_aws_ok (&cp, "run-task --cluster ch --task-definition small");
  char *arn
      = strdup (ts_json_str (cJSON_GetArrayItem (cJSON_GetObjectItem (r, "tasks"), 0), "taskArn"));
  cJSON_Delete (r);
  ck_assert_str_ne (arn, "");
  return arn;
}

START_TEST (test_run_task_reaches_the_agent_store_and_stop_task_follows_at_once)
{
  start_agent ();
  _cleanup_free_ char *inst = wait_instance ();
  usleep (300000); /* let the first poll be held */
  _cleanup_free_ char *task = run_task ();
  double t_run = wait_stored (task, "RUNNING", 1.0);
  /* The payload carries the task definition's containers. */
  _cleanup_free_ char *body = stored_field (task, "body");
  ck_assert_ptr_nonnull (strstr (body, "\"image\":\"busybox\""));
  ck_assert_ptr_nonnull (strstr (body, "\"family\":\"small\""));
  usleep (300000);
  double t0 = now_s ();
  cJSON_Delete (ts_cp_aws_ok (&cp, "stop-task --cluster ch --task %s", task));
  double t_cli = now_s () - t0;
  double t_stop = wait_stored (task, "STOPPED", 5.0) + t_cli;
  printf ("run-task reached the agent's store in %.3f s; stop-task in %.3f s (of which the CLI "
          "took %.3f s)\n",
          t_run, t_stop, t_cli);
  ck_assert_int_eq (stored_count (), 1);
}
END_TEST

static char *instance_status (const char *inst)
{
  cJSON *r = ts_cp_aws_ok (
      &cp, "describe-container-instances --cluster ch --container-instances %s", inst);
  char *st = strdup (ts_json_str (
      cJSON_GetArrayItem (cJSON_GetObjectItem (r, "containerInstances"), 0), "status"));
  cJSON_Delete (r);
  return st;
}

START_TEST (test_drain_and_activate_commands_set_this_hosts_instance_state)
{
  start_agent ();
  _cleanup_free_ char *inst = wait_instance ();
  _cleanup_free_ char *bin = ts_bin ("berth-agent"), *out = NULL, *cmd = NULL;
  int status;
  ck_assert_int_ge (asprintf (&cmd,
                              "env -i AWS_PROFILE=agent AWS_SHARED_CREDENTIALS_FILE=%s/credentials "
                              "%s --config %s/ecs.config --drain",
                              cp.dir, bin, agent_dir),
                    0);
  ck_assert_int_eq (ts_sh (cmd, &out, &status), 0);
  ck_assert_msg (ts_exit_code (status) == 0, "%s", out);
  ck_assert_ptr_nonnull (strstr (out, "DRAINING"));
  _cleanup_free_ char *st = instance_status (inst);
  ck_assert_str_eq (st, "DRAINING");
  /* A DRAINING instance gets no new task. */
  cJSON *r = ts_cp_aws_ok (&cp, "run-task --cluster ch --task-definition small");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (r, "tasks")), 0);
  cJSON_Delete (r);
  free (out);
  cmd[strlen (cmd) - strlen ("--drain")] = '\0';
  char *again = NULL;
  ck_assert_int_ge (asprintf (&again, "%s--activate", cmd), 0);
  ck_assert_int_eq (ts_sh (again, &out, &status), 0);
  free (again);
  ck_assert_msg (ts_exit_code (status) == 0, "%s", out);
  free (st);
  st = instance_status (inst);
  ck_assert_str_eq (st, "ACTIVE");
}
END_TEST

START_TEST (test_an_agent_started_before_its_credentials_exist_registers_once_they_do)
{
  _cleanup_free_ char *later = NULL, *src = NULL, *log = NULL;
  ck_assert_int_ge (asprintf (&later, "%s/credentials-later", agent_dir), 0);
  ck_assert_int_ge (asprintf (&src, "%s/credentials", cp.dir), 0);
  ck_assert_int_ge (asprintf (&log, "%s/agent.log", agent_dir), 0);
  creds_file = later;
  /* The sample image is imported with berth-control's credentials in the environment, which
   * --import does not need: the missing file must not matter to it either. */
  start_agent ();
  creds_file = NULL;
  /* It retries (with the registration backoff, first 3 s) instead of exiting. */
  for (int i = 0; i < 200; i++)
    {
      _cleanup_free_ char *text = ts_read_file (log);
      if (text && strstr (text, "retrying in"))
        break;
      usleep (50000);
    }
  _cleanup_free_ char *text = ts_read_file (log);
  ck_assert_ptr_nonnull (strstr (text, "credentials"));
  ck_assert_int_eq (kill (agent_pid, 0), 0);
  ts_sh_ok ("cp %s %s.tmp && mv %s.tmp %s", src, later, later, later);
  _cleanup_free_ char *inst = wait_instance ();
  ck_assert_ptr_nonnull (inst);
}
END_TEST

START_TEST (test_a_task_queued_while_the_agent_is_down_is_delivered_after_restart_once)
{
  start_agent ();
  _cleanup_free_ char *inst = wait_instance ();
  stop_agent (SIGKILL);
  _cleanup_free_ char *task = run_task ();
  start_agent ();
  wait_stored (task, "RUNNING", 10.0);
  /* Killed again before its next poll acked anything further, then back: still one copy. */
  stop_agent (SIGKILL);
  start_agent ();
  usleep (500000);
  ck_assert_int_eq (stored_count (), 1);
  ck_assert_int_ge (stored_ack (), 1); /* 2 if the short lost timeout struck meanwhile */
}
END_TEST

START_TEST (test_seqnums_continue_across_a_kill_9_of_berth_control)
{
  start_agent ();
  _cleanup_free_ char *inst = wait_instance ();
  _cleanup_free_ char *t1 = run_task ();
  wait_stored (t1, "RUNNING", 2.0);
  ts_cp_signal (&cp, SIGKILL);
  ts_cp_start (&cp);
  _cleanup_free_ char *t2 = run_task ();
  wait_stored (t2, "RUNNING", 10.0);
  cJSON_Delete (ts_cp_aws_ok (&cp, "stop-task --cluster ch --task %s", t1));
  wait_stored (t1, "STOPPED", 10.0);
  /* 3, or 4 when t1 was still PENDING at the restart (sent again: docs/controlplane.md) */
  ck_assert_int_ge (stored_ack (), 3);
  ck_assert_int_le (stored_ack (), 4);
  ck_assert_int_eq (stored_count (), 2);
}
END_TEST

/* A crash between RunTask's commit and its message's append, made by hand: the message is
 * deleted from the log while berth-control is down. The restarted berth-control sends the
 * task again (it is still PENDING), so the agent gets it. */
START_TEST (test_a_task_whose_message_a_crash_lost_reaches_the_agent_after_restart)
{
  start_agent ();
  _cleanup_free_ char *inst = wait_instance ();
  stop_agent (SIGKILL);
  _cleanup_free_ char *task = run_task ();
  ts_cp_signal (&cp, SIGKILL);
  ts_sh_ok ("sqlite3 %s/berth-control.db \"DELETE FROM channel_messages WHERE body LIKE "
            "'%%%s%%'\"",
            cp.dir, task);
  _cleanup_free_ char *left = NULL;
  int st;
  char cmd[1024];
  snprintf (cmd, sizeof cmd,
            "sqlite3 %s/berth-control.db \"SELECT count (*) FROM channel_messages WHERE body "
            "LIKE '%%%s%%'\"",
            cp.dir, task);
  ck_assert_int_eq (ts_sh (cmd, &left, &st), 0);
  ck_assert_str_eq (left, "0\n");
  ts_cp_start (&cp);
  start_agent ();
  wait_stored (task, "RUNNING", 20.0);
}
END_TEST

START_TEST (test_agent_connected_flips_false_and_tasks_are_lost_after_the_timeouts)
{
  start_agent ();
  _cleanup_free_ char *inst = wait_instance ();
  _cleanup_free_ char *task = run_task ();
  wait_stored (task, "RUNNING", 2.0);
  cJSON *d = ts_cp_aws_ok (
      &cp, "describe-container-instances --cluster ch --container-instances %s", inst);
  cJSON *ci = cJSON_GetArrayItem (cJSON_GetObjectItem (d, "containerInstances"), 0);
  ck_assert (cJSON_IsTrue (cJSON_GetObjectItem (ci, "agentConnected")));
  cJSON_Delete (d);
  stop_agent (SIGTERM);
  double t0 = now_s ();
  bool connected = true, lost = false;
  while (now_s () - t0 < 15 && (connected || !lost))
    {
      usleep (200000);
      d = ts_cp_aws_ok (&cp, "describe-container-instances --cluster ch --container-instances %s",
                        inst);
      ci = cJSON_GetArrayItem (cJSON_GetObjectItem (d, "containerInstances"), 0);
      connected = cJSON_IsTrue (cJSON_GetObjectItem (ci, "agentConnected"));
      cJSON_Delete (d);
      d = ts_cp_aws_ok (&cp, "describe-tasks --cluster ch --tasks %s", task);
      cJSON *t = cJSON_GetArrayItem (cJSON_GetObjectItem (d, "tasks"), 0);
      lost = strcmp (ts_json_str (t, "lastStatus"), "STOPPED") == 0;
      if (lost)
        ck_assert_ptr_nonnull (strstr (ts_json_str (t, "stoppedReason"), "Task lost"));
      cJSON_Delete (d);
    }
  ck_assert_msg (!connected, "agentConnected still true");
  ck_assert_msg (lost, "the task was not marked lost");
  /* The returning agent hears that the task is to stop. */
  start_agent ();
  wait_stored (task, "STOPPED", 10.0);
}
END_TEST

/* ---- raw channel calls with the agent's HTTP client ---- */

typedef struct call
{
  bool done;
  long status;
  char *error_type;
  cJSON *body;
} call;

static void on_call (const agent_http_result *res, void *userdata)
{
  call *c = userdata;
  c->done = true;
  c->status = res->status;
  c->error_type = res->error_type ? strdup (res->error_type) : NULL;
  c->body = res->body ? cJSON_Duplicate (res->body, true) : NULL;
}

/* One call signed with key id/secret; waits for its answer. */
static call channel_call (const char *id, const char *secret, const char *target, const char *json)
{
  _cleanup_berr_ berr *err = NULL;
  _cleanup_free_ char *url = NULL, *a = NULL, *b = NULL;
  agent_credprov *p = NULL;
  sd_event *ev = NULL;
  agent_http *h = NULL;
  call c = { 0 };
  ck_assert_int_ge (asprintf (&url, "http://127.0.0.1:%d", cp.port), 0);
  ck_assert_int_ge (asprintf (&a, "AWS_ACCESS_KEY_ID=%s", id), 0);
  ck_assert_int_ge (asprintf (&b, "AWS_SECRET_ACCESS_KEY=%s", secret), 0);
  char *env[] = { a, b, NULL };
  ck_assert_int_eq (agent_credprov_new (env, &p, &err), 0);
  ck_assert_int_eq (sd_event_new (&ev), 0);
  agent_http_opts o = { .endpoint = url, .region = "us-east-1", .creds = p };
  ck_assert_int_eq (agent_http_new (ev, &o, &h, &err), 0);
  cJSON *body = cJSON_Parse (json);
  ck_assert_ptr_nonnull (body);
  ck_assert_int_eq (agent_http_call (h, target, body, 40000, on_call, &c, &err), 0);
  cJSON_Delete (body);
  while (!c.done)
    ck_assert_int_ge (sd_event_run (ev, 100000), 0);
  agent_http_free (h);
  sd_event_unref (ev);
  agent_credprov_free (p);
  return c;
}

static void call_clear (call *c)
{
  free (c->error_type);
  cJSON_Delete (c->body);
}

/* The value of key in the credentials file's profile section. */
static char *credential (const char *profile, const char *key)
{
  _cleanup_free_ char *path = NULL, *text = NULL, *head = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/credentials", cp.dir), 0);
  ck_assert_int_ge (asprintf (&head, "[%s]", profile), 0);
  text = ts_read_file (path);
  char *sec = strstr (text, head), *k = sec ? strstr (sec, key) : NULL;
  ck_assert_ptr_nonnull (k);
  k = strchr (k, '=') + 1;
  while (*k == ' ')
    k++;
  return strndup (k, strcspn (k, "\n"));
}

START_TEST (test_unacked_messages_come_again_and_another_agent_key_cannot_poll)
{
  _cleanup_free_ char *id = credential ("agent", "aws_access_key_id");
  _cleanup_free_ char *secret = credential ("agent", "aws_secret_access_key");
  _cleanup_free_ char *body = NULL, *sql = NULL, *out = NULL;
  setenv ("AWS_PROFILE", "agent", 1);
  cJSON *r = ts_cp_aws_ok (&cp, "register-container-instance --cluster ch "
                                "--total-resources name=CPU,type=INTEGER,integerValue=1024 "
                                "name=MEMORY,type=INTEGER,integerValue=1024");
  setenv ("AWS_PROFILE", "admin", 1);
  char *inst
      = strdup (ts_json_str (cJSON_GetObjectItem (r, "containerInstance"), "containerInstanceArn"));
  cJSON_Delete (r);
  _cleanup_free_ char *task = run_task ();
  ck_assert_int_ge (asprintf (&body,
                              "{\"cluster\":\"ch\",\"containerInstance\":\"%s\",\"ackSeqNum\":0,"
                              "\"waitSeconds\":1}",
                              inst),
                    0);
  call c1 = channel_call (id, secret, "BerthChannelV1.Poll", body);
  call c2 = channel_call (id, secret, "BerthChannelV1.Poll", body);
  ck_assert_int_eq (c1.status, 200);
  cJSON *m1 = cJSON_GetArrayItem (cJSON_GetObjectItem (c1.body, "messages"), 0);
  cJSON *m2 = cJSON_GetArrayItem (cJSON_GetObjectItem (c2.body, "messages"), 0);
  ck_assert_str_eq (ts_json_str (m1, "type"), "PayloadMessage");
  cJSON *p1 = cJSON_GetObjectItem (m1, "message"), *p2 = cJSON_GetObjectItem (m2, "message");
  ck_assert_str_eq (ts_json_str (p1, "messageId"), ts_json_str (p2, "messageId"));
  ck_assert_int_eq (cJSON_GetObjectItem (p1, "seqNum")->valueint, 1);
  cJSON *t = cJSON_GetArrayItem (cJSON_GetObjectItem (p1, "tasks"), 0);
  ck_assert_str_eq (ts_json_str (t, "arn"), task);
  ck_assert_str_eq (ts_json_str (t, "desiredStatus"), "RUNNING");
  call_clear (&c1);
  call_clear (&c2);
  /* Acked: an empty wait ends in a heartbeat. */
  free (body);
  ck_assert_int_ge (asprintf (&body,
                              "{\"cluster\":\"ch\",\"containerInstance\":\"%s\",\"ackSeqNum\":1,"
                              "\"waitSeconds\":1}",
                              inst),
                    0);
  double t0 = now_s ();
  c1 = channel_call (id, secret, "BerthChannelV1.Poll", body);
  double held = now_s () - t0;
  m1 = cJSON_GetArrayItem (cJSON_GetObjectItem (c1.body, "messages"), 0);
  ck_assert_str_eq (ts_json_str (m1, "type"), "HeartbeatMessage");
  ck_assert_msg (held > 0.7, "the poll was not held (%.2f s)", held);
  call_clear (&c1);
  /* Health published by the agent shows in DescribeTasks. */
  _cleanup_free_ char *health = NULL;
  ck_assert_int_ge (asprintf (&health,
                              "{\"metadata\":{\"cluster\":\"ch\",\"containerInstance\":\"%s\"},"
                              "\"tasks\":[{\"taskArn\":\"%s\",\"containers\":[{\"containerName\":"
                              "\"web\",\"healthStatus\":\"HEALTHY\"}]}]}",
                              inst, task),
                    0);
  c1 = channel_call (id, secret, "BerthChannelV1.PublishHealth", health);
  ck_assert_int_eq (c1.status, 200);
  call_clear (&c1);
  r = ts_cp_aws_ok (&cp, "describe-tasks --cluster ch --tasks %s", task);
  cJSON *ct = cJSON_GetArrayItem (
      cJSON_GetObjectItem (cJSON_GetArrayItem (cJSON_GetObjectItem (r, "tasks"), 0), "containers"),
      0);
  ck_assert_str_eq (ts_json_str (ct, "healthStatus"), "HEALTHY");
  cJSON_Delete (r);
  /* A second agent key may not poll the first one's instance. */
  ck_assert_int_ge (asprintf (&sql,
                              "sqlite3 %s/berth-control.db \"INSERT INTO credentials VALUES "
                              "('BKAGSECONDAGENT00001', 'second-secret', 'agent', 0)\"",
                              cp.dir),
                    0);
  int status;
  ck_assert_int_eq (ts_sh (sql, &out, &status), 0);
  ck_assert_int_eq (status, 0);
  c1 = channel_call ("BKAGSECONDAGENT00001", "second-secret", "BerthChannelV1.Poll", body);
  ck_assert_int_eq (c1.status, 400);
  ck_assert_str_eq (c1.error_type, "AccessDeniedException");
  call_clear (&c1);
  free (inst);
}
END_TEST

typedef struct tel_fixture
{
  agent_container_cgroup c;
} tel_fixture;

static int gather (void *userdata, agent_container_cgroup **out, size_t *n)
{
  tel_fixture *f = userdata;
  *out = &f->c;
  *n = 1;
  return 0;
}

/* A process burning CPU in a cgroup of its own stands for a container: its CPU and memory,
 * read from the cgroup files, reach berth-control. */
START_TEST (test_telemetry_from_cgroup_files_reaches_berth_control)
{
  _cleanup_berr_ berr *err = NULL;
  _cleanup_free_ char *url = NULL, *path = NULL, *log = NULL, *logpath = NULL;
  setenv ("AWS_PROFILE", "agent", 1);
  cJSON *r = ts_cp_aws_ok (&cp, "register-container-instance --cluster ch "
                                "--total-resources name=CPU,type=INTEGER,integerValue=1024 "
                                "name=MEMORY,type=INTEGER,integerValue=1024");
  setenv ("AWS_PROFILE", "admin", 1);
  _cleanup_free_ char *inst
      = strdup (ts_json_str (cJSON_GetObjectItem (r, "containerInstance"), "containerInstanceArn"));
  cJSON_Delete (r);
  _cleanup_free_ char *task = run_task ();
  ck_assert_int_ge (asprintf (&path, "berth-test-tel-%d/web", (int)getpid ()), 0);
  cg_group *g = NULL;
  ck_assert_msg (cg_create (path, NULL, &g, &err) == 0, "%s", err ? err->msg : "");
  pid_t child = fork ();
  ck_assert_int_ge (child, 0);
  if (child == 0)
    for (volatile unsigned long i = 0;; i++)
      ;
  ck_assert_int_eq (cg_attach (g, child, &err), 0);
  tel_fixture f = { .c = { .task_arn = task,
                           .family = "small",
                           .version = "1",
                           .container = "web",
                           .cgroup_path = path } };
  /* The agent's credentials and HTTP client. */
  _cleanup_free_ char *id = credential ("agent", "aws_access_key_id");
  _cleanup_free_ char *secret = credential ("agent", "aws_secret_access_key");
  _cleanup_free_ char *a = NULL, *b = NULL;
  ck_assert_int_ge (asprintf (&a, "AWS_ACCESS_KEY_ID=%s", id), 0);
  ck_assert_int_ge (asprintf (&b, "AWS_SECRET_ACCESS_KEY=%s", secret), 0);
  char *env[] = { a, b, NULL };
  agent_credprov *p = NULL;
  sd_event *ev = NULL;
  agent_http *h = NULL;
  agent_telemetry *t = NULL;
  ck_assert_int_ge (asprintf (&url, "http://127.0.0.1:%d", cp.port), 0);
  ck_assert_int_eq (agent_credprov_new (env, &p, &err), 0);
  ck_assert_int_eq (sd_event_new (&ev), 0);
  agent_http_opts o = { .endpoint = url, .region = "us-east-1", .creds = p };
  ck_assert_int_eq (agent_http_new (ev, &o, &h, &err), 0);
  agent_telemetry_opts to
      = { .ev = ev, .http = h, .interval_us = 200000, .gather = gather, .userdata = &f };
  ck_assert_int_eq (agent_telemetry_start (&to, "ch", inst, &t, &err), 0);
  double t0 = now_s ();
  while (agent_telemetry_published (t) < 2 && now_s () - t0 < 10)
    ck_assert_int_ge (sd_event_run (ev, 100000), 0);
  ck_assert_uint_ge (agent_telemetry_published (t), 2);
  agent_telemetry_free (t);
  agent_http_free (h);
  sd_event_unref (ev);
  agent_credprov_free (p);
  kill (child, SIGKILL);
  waitpid (child, NULL, 0);
  usleep (100000);
  cg_destroy (g, &err);
  cg_free (g);
  ck_assert_int_ge (asprintf (&logpath, "%s/log", cp.dir), 0);
  log = ts_read_file (logpath);
  char *line = strstr (log, "metrics: ");
  ck_assert_msg (line, "no metrics in berth-control's log");
  double cpu = 0;
  char *c = strstr (line, "cpu ");
  ck_assert_ptr_nonnull (c);
  cpu = atof (c + 4);
  printf ("telemetry: berth-control saw %.1f%% CPU for the busy cgroup\n", cpu);
  ck_assert_msg (cpu > 20, "cpu %.1f%% for a busy process", cpu);
}
END_TEST

static Suite *channel_suite (void)
{
  Suite *s = suite_create ("agent-channel");
  TCase *tc = tcase_create ("channel");
  tcase_set_timeout (tc, 90);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_run_task_reaches_the_agent_store_and_stop_task_follows_at_once);
  tcase_add_test (tc, test_a_task_queued_while_the_agent_is_down_is_delivered_after_restart_once);
  tcase_add_test (tc, test_drain_and_activate_commands_set_this_hosts_instance_state);
  tcase_add_test (tc, test_an_agent_started_before_its_credentials_exist_registers_once_they_do);
  tcase_add_test (tc, test_seqnums_continue_across_a_kill_9_of_berth_control);
  tcase_add_test (tc, test_a_task_whose_message_a_crash_lost_reaches_the_agent_after_restart);
  tcase_add_test (tc, test_agent_connected_flips_false_and_tasks_are_lost_after_the_timeouts);
  tcase_add_test (tc, test_unacked_messages_come_again_and_another_agent_key_cannot_poll);
  tcase_add_test (tc, test_telemetry_from_cgroup_files_reaches_berth_control);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  /* Short liveness timeouts for the flip and lost test. */
  static const char *const extra[]
      = { "--agent-timeout", "1500", "--agent-lost-timeout", "4000", NULL };
  ts_cp_set_extra_args (extra);
  return ts_run_suite (channel_suite ());
}
