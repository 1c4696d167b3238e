/* End-to-end durability tests (tests/support/e2e.h): berth-agent killed with SIGKILL again and
 * again while tasks start and stop, then every task accounted for in berth-control with the right
 * exit codes, each state change accepted once and in order, and nothing left on the host; and
 * berth-control down for two minutes while tasks run and exit. */
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/strv.h"
#include "tests/support/e2e.h"
#include "tests/support/support.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static ts_e2e e;

#define SLEEPER(name, extra)                                                                       \
  "{\"name\":\"" name "\",\"image\":\"" TS_E2E_IMAGE "\",\"memory\":16,"                           \
  "\"command\":[\"sh\",\"-c\",\"trap 'exit 0' TERM; while :; do busybox sleep 1; done\"]" extra    \
  "}"
#define SHELL(name, cmd, extra)                                                                    \
  "{\"name\":\"" name "\",\"image\":\"" TS_E2E_IMAGE "\",\"memory\":16,"                           \
  "\"command\":[\"sh\",\"-c\",\"" cmd "\"]" extra "}"

static void setup (void)
{
  /* the shortest cleanup wait the agent accepts, so the leak check can see everything go */
  ts_e2e_setup (&e, "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION=1m\n");
}

static void teardown (void)
{
  ts_e2e_teardown (&e);
}

enum
{
  CYCLES = 50,
  MAX_TASKS = CYCLES
};

typedef struct churn_task
{
  char *arn;
  bool web;       /* a bridge-mode web task we stop; else one whose container exits 3 */
  bool stop_sent; /* StopTask called */
} churn_task;

/* Status order of a task's reports: each accepted one may not go back. */
static int rank (const char *status)
{
  static const char *const order[] = { "PENDING", "RUNNING", "STOPPED" };
  for (int i = 0; i < 3; i++)
    if (strcmp (status, order[i]) == 0)
      return i;
  return -1;
}

/* The accepted changes of task arn (lines "ARN STATUS containers..."), in order; checks no
 * duplicate (the same line twice) and no status going back; returns how many were STOPPED and
 * the last line in *last. */
static int check_changes (char **changes, const char *arn, const char **last)
{
  size_t len = strlen (arn);
  const char *prev = NULL;
  int stops = 0, r = -1;
  *last = NULL;
  for (size_t i = 0; changes[i]; i++)
    {
      const char *c = changes[i];
      if (strncmp (c, arn, len) != 0 || c[len] != ' ')
        continue;
      char status[16] = "";
      sscanf (c + len + 1, "%15s", status);
      int k = rank (status);
      ck_assert_msg (k >= 0, "odd status in %s", c);
      ck_assert_msg (k >= r, "status went back: %s after %s", c, prev);
      ck_assert_msg (prev == NULL || strcmp (prev, c) != 0, "accepted twice: %s", c);
      r = k;
      stops += k == 2;
      prev = c;
      *last = c;
    }
  return stops;
}

/* One cycle: a task started (a web task on even cycles, a short one on odd cycles), now and then
 * a web task stopped, then the agent killed with SIGKILL at a varied moment and started again. */
static void churn_cycle (int i, churn_task *tasks, int *n, const char *web_td, const char *short_td)
{
  bool web = i % 2 == 0;
  tasks[*n] = (churn_task){ .arn = ts_e2e_run (&e, web ? web_td : short_td), .web = web };
  ++*n;
  /* every fourth cycle: stop the web task just started, or one started a few cycles ago */
  int victim = (i % 8 == 0) ? *n - 1 : *n - 1 - 2 * (1 + i % 3);
  if (i % 4 == 0 && victim >= 0 && tasks[victim].web && !tasks[victim].stop_sent)
    {
      ts_e2e_stop_task (&e, tasks[victim].arn, "churn");
      tasks[victim].stop_sent = true;
    }
  /* kill -9 at varied moments after the calls: at once, while the launch is under way, later */
  usleep ((useconds_t)((i * 211) % 1000) * 1000);
  int st = ts_e2e_agent_signal (&e, SIGKILL);
  ck_assert_msg (WIFSIGNALED (st), "the agent had exited by itself: %#x", st);
  ts_e2e_agent_start (&e);
  /* now and then let it reconnect before the next calls */
  if (i % 10 == 9)
    ts_e2e_wait_connected (&e);
}

/* Waits until berth-control shows every task STOPPED; returns the tasks array. */
static cJSON *wait_all_stopped (churn_task *tasks, int n)
{
  char *arns[MAX_TASKS];
  for (int i = 0; i < n; i++)
    arns[i] = tasks[i].arn;
  for (int round = 0;; round++)
    {
      cJSON *all = ts_e2e_describe_many (&e, arns, n);
      int running = 0;
      const cJSON *t, *late = NULL;
      cJSON_ArrayForEach (t, all)
      {
        if (strcmp (ts_json_str (t, "lastStatus"), "STOPPED") != 0)
          running++, late = t;
      }
      if (running == 0)
        return all;
      _cleanup_free_ char *text = cJSON_PrintUnformatted (late);
      ck_assert_msg (round < 300, "%d tasks not STOPPED, e.g. %s", running, text);
      cJSON_Delete (all);
      usleep (500000);
    }
}

static bool all_zero (const ts_e2e_resources *r)
{
  return r->containers == 0 && r->shim_dirs == 0 && r->shims == 0 && r->rootfs == 0 && r->pins == 0
         && r->ipam == 0 && r->dnat == 0;
}

START_TEST (test_kill_9_during_churn_loses_no_task_no_state_change_and_no_resource)
{
  churn_task tasks[MAX_TASKS];
  int n = 0;
  _cleanup_free_ char *web_td = ts_e2e_register (
      &e, "web", "--network-mode bridge",
      "[{\"name\":\"web\",\"image\":\"" TS_E2E_WEB_IMAGE "\",\"memory\":16,"
      "\"portMappings\":[{\"containerPort\":8080,\"hostPort\":0,\"protocol\":\"tcp\"}]}]");
  _cleanup_free_ char *short_td = ts_e2e_register (
      &e, "short", "--network-mode none", "[" SHELL ("main", "busybox sleep 0.5; exit 3", "") "]");
  for (int i = 0; i < CYCLES; i++)
    churn_cycle (i, tasks, &n, web_td, short_td);
  ts_e2e_wait_connected (&e);
  for (int i = 0; i < n; i++)
    if (tasks[i].web && !tasks[i].stop_sent)
      ts_e2e_stop_task (&e, tasks[i].arn, "churn over");
  /* every task reaches STOPPED in berth-control, with its exit code */
  _cleanup_json_ cJSON *all = wait_all_stopped (tasks, n);
  const cJSON *described[MAX_TASKS];
  for (int i = 0; i < n; i++)
    {
      described[i] = ts_e2e_task_in (all, tasks[i].arn);
      ck_assert_ptr_nonnull (described[i]);
      const cJSON *c = cJSON_GetArrayItem (cJSON_GetObjectItem (described[i], "containers"), 0);
      int code = ts_e2e_int (c, "exitCode", -1);
      _cleanup_free_ char *text = cJSON_PrintUnformatted (described[i]);
      ck_assert_str_eq (ts_json_str (c, "lastStatus"), "STOPPED");
      if (tasks[i].web) /* its TERM trap, SIGTERM before the trap was set, or never started */
        ck_assert_msg (code == 0 || code == 143 || code == -1, "%s", text);
      else
        ck_assert_msg (code == 3, "%s", text);
    }
  /* berth-control accepted each task's stop once, after its other changes, with the same exit
   * code it shows */
  char **changes = ts_e2e_accepted_changes (&e);
  for (int i = 0; i < n; i++)
    {
      const char *last;
      int stops = check_changes (changes, tasks[i].arn, &last);
      ck_assert_msg (stops == 1, "task %s: %d STOPPED changes accepted", tasks[i].arn, stops);
      ck_assert_ptr_nonnull (strstr (last, " STOPPED "));
      const cJSON *c = cJSON_GetArrayItem (cJSON_GetObjectItem (described[i], "containers"), 0);
      char want[64];
      int code = ts_e2e_int (c, "exitCode", -1);
      if (code >= 0)
        snprintf (want, sizeof want, "=STOPPED/%d", code);
      else
        snprintf (want, sizeof want, "=STOPPED");
      ck_assert_msg (strstr (last, want), "task %s: last change `%s`, want %s", tasks[i].arn, last,
                     want);
      free (tasks[i].arn);
    }
  strv_free (changes);
  /* addresses and ports go at STOPPED, the rest after the cleanup wait (1 min) */
  ts_e2e_resources r;
  for (int i = 0; i < 600; i++)
    {
      ts_e2e_count_resources (&e, &r);
      if (all_zero (&r))
        break;
      usleep (500000);
    }
  ck_assert_msg (all_zero (&r),
                 "left: %d containers, %d shim dirs, %d shims, %d rootfs, %d pins, %d addresses, "
                 "%d port mappings",
                 r.containers, r.shim_dirs, r.shims, r.rootfs, r.pins, r.ipam, r.dnat);
  ck_assert_int_eq (kill (e.agent, 0), 0);
}
END_TEST

static bool agent_logged (const char *needle)
{
  _cleanup_free_ char *log = ts_read_file (e.log);
  return log && strstr (log, needle);
}

static bool both_running (const cJSON *t, void *arg)
{
  (void)arg;
  return strcmp (ts_json_str (t, "lastStatus"), "RUNNING") == 0;
}

START_TEST (test_control_plane_down_two_minutes_tasks_run_and_reports_arrive_in_order)
{
  _cleanup_free_ char *steady_td = ts_e2e_register (&e, "steady", "", "[" SLEEPER ("main", "") "]");
  /* side exits 6, then main exits 9: both while berth-control is down */
  _cleanup_free_ char *ending_td = ts_e2e_register (
      &e, "ending", "",
      "[" SHELL ("side", "busybox sleep 15; exit 6",
                 ",\"essential\":false") "," SHELL ("main", "busybox sleep 40; exit 9", "") "]");
  _cleanup_free_ char *steady = ts_e2e_run (&e, steady_td);
  _cleanup_free_ char *ending = ts_e2e_run (&e, ending_td);
  cJSON_Delete (ts_e2e_wait (&e, steady, both_running, NULL, 90));
  cJSON_Delete (ts_e2e_wait (&e, ending, both_running, NULL, 90));
  ts_e2e_cp_stop (&e, SIGKILL);
  /* two minutes without the control plane; meanwhile the ending task stops on the host */
  char stopped_line[512];
  snprintf (stopped_line, sizeof stopped_line, "task %s: STOPPED", ending);
  bool seen_stop = false;
  for (int s = 0; s < 120; s++)
    {
      seen_stop |= agent_logged (stopped_line);
      sleep (1);
    }
  ck_assert_msg (seen_stop, "the ending task did not stop while berth-control was down");
  ck_assert_int_eq (kill (e.agent, 0), 0);
  ts_e2e_resources r;
  ts_e2e_count_resources (&e, &r);
  ck_assert_int_ge (r.shims, 1); /* steady's container still runs */
  ts_e2e_cp_start (&e);
  ts_e2e_wait_connected (&e);
  _cleanup_json_ cJSON *t = ts_e2e_wait_status (&e, ending, "STOPPED", 180);
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (t, "side"), "exitCode", -1), 6);
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (t, "main"), "exitCode", -1), 9);
  _cleanup_json_ cJSON *st = ts_e2e_describe (&e, steady);
  ck_assert_str_eq (ts_json_str (st, "lastStatus"), "RUNNING");
  /* delivered afterwards, in order: the side container's exit (task still RUNNING), then the
   * stop */
  char **changes = ts_e2e_accepted_changes (&e);
  const char *last;
  ck_assert_int_eq (check_changes (changes, ending, &last), 1);
  int side_exit = -1, stop = -1;
  for (int i = 0; changes[i]; i++)
    if (strncmp (changes[i], ending, strlen (ending)) == 0)
      {
        if (side_exit < 0 && strstr (changes[i], " RUNNING ")
            && strstr (changes[i], "side=STOPPED/6"))
          side_exit = i;
        if (strstr (changes[i], " STOPPED "))
          stop = i;
      }
  ck_assert_msg (side_exit >= 0 && stop > side_exit, "side exit at %d, stop at %d", side_exit,
                 stop);
  ck_assert_ptr_nonnull (strstr (changes[stop], "main=STOPPED/9"));
  strv_free (changes);
  ts_e2e_stop_task (&e, steady, "done");
  _cleanup_json_ cJSON *s = ts_e2e_wait_status (&e, steady, "STOPPED", 90);
  ck_assert_int_eq (ts_e2e_int (ts_e2e_container (s, "main"), "exitCode", -1), 0);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("e2e-durability");
  TCase *tc = tcase_create ("core");
  tcase_set_timeout (tc, 900);
  tcase_add_unchecked_fixture (tc, ts_e2e_suite_setup, ts_e2e_suite_teardown);
  tcase_add_checked_fixture (tc, setup, teardown);
  TS_E2E_ADD (tc, test_kill_9_during_churn_loses_no_task_no_state_change_and_no_resource);
  TS_E2E_ADD (tc, test_control_plane_down_two_minutes_tasks_run_and_reports_arrive_in_order);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
