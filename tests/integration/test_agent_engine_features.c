/* Integration tests of task engine features beyond the basic lifecycle, with real containers
 * (tests/support/engine.h): privileged containers and ECS_DISABLE_PRIVILEGED, container restart
 * policies (restartPolicy). */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "tests/support/cp.h"
#include "tests/support/engine.h"
#include "tests/support/support.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMAGE TS_ENG_IMAGE
#define ARN_PREFIX TS_ENG_ARN_PREFIX

static char *images_dir; /* the mkimages.sh output, built once */
static ts_eng f;

static void suite_setup (void)
{
  images_dir = ts_eng_images_build ();
}

static void suite_teardown (void)
{
  ts_eng_images_remove (images_dir);
}

static void setup (void)
{
  ts_eng_setup (&f, images_dir);
}

static void teardown (void)
{
  ts_eng_teardown (&f);
}

/* The json-file log of container id ("<task id>-<name>"), NULL when none yet. */
static char *container_log (const char *id)
{
  char path[4096];
  snprintf (path, sizeof path, "%s/shims/%s/container.log", f.state, id);
  return ts_read_file (path);
}

/* Runs the loop until the container's log has want; returns the log. */
static char *wait_log (const char *id, const char *want)
{
  char *log = NULL;
  for (int t = 0; t < 10000; t += 50)
    {
      free (log);
      log = container_log (id);
      if (log && strstr (log, want))
        return log;
      ts_eng_run_for (&f, 50);
    }
  ck_abort_msg ("%s: no `%s` in the log: %s", id, want, log ? log : "(none)");
  return NULL;
}

/* The memory limit of pid's cgroup (v1 memory controller), from the host. */
static long long memory_limit_of (pid_t pid)
{
  char path[4096], line[4096];
  long long limit = -1;
  snprintf (path, sizeof path, "/proc/%d/cgroup", pid);
  FILE *fp = fopen (path, "re");
  ck_assert_ptr_nonnull (fp);
  while (fgets (line, sizeof line, fp))
    {
      char *c = strstr (line, ":memory:");
      if (c == NULL)
        continue;
      c[strcspn (c, "\n")] = '\0';
      snprintf (path, sizeof path, "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", c + 8);
      _cleanup_free_ char *v = ts_read_file (path);
      limit = v ? atoll (v) : -1;
    }
  fclose (fp);
  return limit;
}

/* This process's bounding set as /proc prints it (the most a privileged container gets). */
static const char *own_bounding_set (void)
{
  static char set[32];
  _cleanup_free_ char *st = ts_read_file ("/proc/self/status");
  const char *b = st ? strstr (st, "CapBnd:\t") : NULL;
  ck_assert_ptr_nonnull (b);
  snprintf (set, sizeof set, "%.16s", b + 8);
  return set;
}

/* What a container prints about its own confinement, then it sleeps. */
#define PROBE                                                                                      \
  "busybox grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status;"                             \
  " busybox grep ' /sys sysfs ' /proc/mounts;"                                                     \
  " busybox grep -c ' /proc/kcore ' /proc/mounts;"                                                 \
  " busybox mknod /tmp/kmsg c 1 11 && busybox head -n 1 /tmp/kmsg >/dev/null && echo kmsg-ok;"     \
  " echo probe-done; exec busybox sleep 60"

START_TEST (test_privileged_container_has_every_capability_and_device_but_keeps_its_limits)
{
  const char *arn = ARN_PREFIX "priv1";
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"priv\",\"image\":\"" IMAGE "\",\"privileged\":true,\"memory\":48,"
                 "\"command\":[\"sh\",\"-c\",\"" PROBE "\"]},"
                 "{\"name\":\"plain\",\"image\":\"" IMAGE "\",\"memory\":48,"
                 "\"command\":[\"sh\",\"-c\",\"" PROBE "\"]}]");
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  char want[64];
  snprintf (want, sizeof want, "CapEff:\\t%s", own_bounding_set ());
  _cleanup_free_ char *priv = wait_log ("priv1-priv", "probe-done");
  ck_assert_msg (strstr (priv, want), "want %s: %s", want, priv);
  ck_assert_msg (strstr (priv, "Seccomp:\\t0"), "%s", priv);
  ck_assert_msg (strstr (priv, "NoNewPrivs:\\t0"), "%s", priv);
  ck_assert_msg (strstr (priv, "sysfs /sys sysfs rw"), "%s", priv);
  ck_assert_msg (strstr (priv, "\"0\\n\""), "/proc/kcore still masked: %s", priv);
  ck_assert_msg (strstr (priv, "kmsg-ok"), "%s", priv);
  _cleanup_free_ char *plain = wait_log ("priv1-plain", "probe-done");
  ck_assert_msg (strstr (plain, want) == NULL, "%s", plain);
  ck_assert_msg (strstr (plain, "Seccomp:\\t2"), "%s", plain);
  ck_assert_msg (strstr (plain, "sysfs /sys sysfs ro"), "%s", plain);
  ck_assert_msg (strstr (plain, "kmsg-ok") == NULL, "%s", plain);
  /* cgroups still apply to the privileged one */
  ck_assert_int_eq (memory_limit_of (ts_eng_pid_of (&f, arn, "priv")), 48LL << 20);
  ts_eng_desire_stopped (&f, arn);
  ts_eng_run_until (&f, arn, "STOPPED", 15000);
}
END_TEST

START_TEST (test_disable_privileged_stops_the_task_and_drops_the_capability)
{
  const char *arn = ARN_PREFIX "priv2";
  const char *caps[32], *reason = NULL;
  f.cfg.disable_privileged = true;
  size_t n = agent_capabilities (&f.cfg, caps, 32);
  for (size_t i = 0; i < n; i++)
    ck_assert_msg (strstr (caps[i], "privileged") == NULL, "%s", caps[i]);
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"priv\",\"image\":\"" IMAGE "\",\"privileged\":true,"
                 "\"command\":[\"busybox\",\"sleep\",\"60\"]}]");
  ts_eng_run_until (&f, arn, "STOPPED", 5000);
  agent_engine_task_known (f.eng, arn, &reason);
  ck_assert_msg (reason && strstr (reason, "ECS_DISABLE_PRIVILEGED"), "%s",
                 reason ? reason : "none");
  pid_t pid;
  int code;
  ck_assert_int_eq (agent_engine_container_info (f.eng, arn, "priv", &pid, &code), 0);
  ck_assert_int_eq (code, -1); /* never ran */
}
END_TEST

/* Counts its runs in /n (the rootfs stays across restarts in place), exits 3 until the third. */
#define COUNTER                                                                                    \
  "n=$(cat /n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /n; echo run-$n; busybox sleep 1;"     \
  " test $n -ge 3 && exit 0; exit 3"

START_TEST (test_restart_policy_restarts_in_place_until_an_ignored_exit_code)
{
  const char *arn = ARN_PREFIX "rs1";
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"app\",\"image\":\"" IMAGE "\",\"essential\":true,"
                 "\"restartPolicy\":{\"enabled\":true,\"ignoredExitCodes\":[0],"
                 "\"restartAttemptPeriod\":0.5},"
                 "\"command\":[\"sh\",\"-c\",\"" COUNTER "\"]}]");
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  pid_t first = ts_eng_pid_of (&f, arn, "app");
  ck_assert_int_gt (first, 0);
  /* an essential container restarted by its policy does not stop the task */
  for (int t = 0; t < 15000 && agent_engine_container_restarts (f.eng, arn, "app") < 2; t += 20)
    {
      ts_eng_run_for (&f, 20);
      ck_assert_str_ne (agent_engine_task_known (f.eng, arn, NULL), "STOPPED");
    }
  ck_assert_int_eq (agent_engine_container_restarts (f.eng, arn, "app"), 2);
  /* the third run exits 0, which is ignored: the container stops, and with it the task */
  ts_eng_run_until (&f, arn, "STOPPED", 10000);
  ck_assert_int_eq (agent_engine_container_restarts (f.eng, arn, "app"), 2);
  _cleanup_free_ char *log = container_log ("rs1-app");
  ck_assert_msg (log && strstr (log, "run-1") && strstr (log, "run-2") && strstr (log, "run-3"),
                 "%s", log ? log : "(none)");
  _cleanup_json_ cJSON *ob = ts_eng_outbox (&f, arn);
  ck_assert_int_eq (cJSON_GetArraySize (ob), 2); /* RUNNING once, then STOPPED */
  ck_assert_str_eq (ts_json_str (cJSON_GetArrayItem (ob, 1), "status"), "STOPPED");
  ck_assert_int_eq (ts_eng_exit_code_of (cJSON_GetArrayItem (ob, 1), "app"), 0);
  /* the count is in the container record too */
  berr *err = NULL;
  agent_container_rec *cr = NULL;
  size_t n = 0;
  ts_eng_ok (agent_store_list_containers (f.store, arn, &cr, &n, &err), &err);
  ck_assert_uint_eq (n, 1);
  ck_assert_msg (strstr (cr[0].body, "\"restartCount\":2"), "%s", cr[0].body);
  agent_container_rec_clear (&cr[0]);
  free (cr);
}
END_TEST

START_TEST (test_restart_policy_skips_early_exits_and_stopping_tasks)
{
  const char *early = ARN_PREFIX "rs2", *stopping = ARN_PREFIX "rs3";
  ts_eng_open (&f);
  /* exits after 1 s, before its 30 s restartAttemptPeriod: not restarted, the task stops */
  ts_eng_inject (&f, early, "none",
                 "[{\"name\":\"app\",\"image\":\"" IMAGE "\",\"essential\":true,"
                 "\"restartPolicy\":{\"enabled\":true,\"restartAttemptPeriod\":30},"
                 "\"command\":[\"sh\",\"-c\",\"busybox sleep 1; exit 4\"]}]");
  /* stopped on purpose: not restarted */
  ts_eng_inject (&f, stopping, "none",
                 "[{\"name\":\"app\",\"image\":\"" IMAGE "\",\"essential\":true,"
                 "\"restartPolicy\":{\"enabled\":true,\"restartAttemptPeriod\":0},"
                 "\"command\":[\"busybox\",\"sleep\",\"60\"]}]");
  ts_eng_run_until (&f, stopping, "RUNNING", 10000);
  ts_eng_run_until (&f, early, "STOPPED", 10000);
  ck_assert_int_eq (agent_engine_container_restarts (f.eng, early, "app"), 0);
  pid_t pid;
  int code;
  agent_engine_container_info (f.eng, early, "app", &pid, &code);
  ck_assert_int_eq (code, 4);
  ts_eng_desire_stopped (&f, stopping);
  ts_eng_run_until (&f, stopping, "STOPPED", 10000);
  ck_assert_int_eq (agent_engine_container_restarts (f.eng, stopping, "app"), 0);
}
END_TEST

int main (void)
{
  if (!ts_is_root ())
    {
      printf ("test_agent_engine_features: needs root (containers, mounts)\n");
      return 0;
    }
  Suite *s = suite_create ("agent_engine_features");
  TCase *tc = tcase_create ("features");
  tcase_set_timeout (tc, 120);
  tcase_add_unchecked_fixture (tc, suite_setup, suite_teardown);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc,
                  test_privileged_container_has_every_capability_and_device_but_keeps_its_limits);
  tcase_add_test (tc, test_disable_privileged_stops_the_task_and_drops_the_capability);
  tcase_add_test (tc, test_restart_policy_restarts_in_place_until_an_ignored_exit_code);
  tcase_add_test (tc, test_restart_policy_skips_early_exits_and_stopping_tasks);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
