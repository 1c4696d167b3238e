/* Integration tests of the task engine's container health checks: real containers (busybox image
 * imported, berth-shim, berth-runtime), checks run with `berth-runtime exec` on short intervals,
 * tasks injected into the agent store in the ACS shape. */
#include "agent/agent.h"
#include "images/images.h"
#include "lib/cleanup.h"
#include "lib/clock.h"
#include "lib/json.h"
#include "net/net.h"
#include "runtime/runtime.h"
#include "tests/support/engine.h"
#include "tests/support/support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define IMAGE TS_ENG_IMAGE
#define ARN_PREFIX TS_ENG_ARN_PREFIX

static ts_eng f;
TS_ENG_FIXTURES (f)

static const char *health (const char *arn, const char *name)
{
  const char *h = agent_engine_container_health (f.eng, arn, name, NULL);
  return h ? h : "NONE";
}

/* Runs the loop until the container's health is want (or timeout_ms). */
static void run_until_health (const char *arn, const char *name, const char *want, int timeout_ms)
{
  for (int t = 0; t < timeout_ms && strcmp (health (arn, name), want) != 0; t += 20)
    ck_assert_int_ge (sd_event_run (f.ev, 20000), 0);
  ck_assert_msg (strcmp (health (arn, name), want) == 0, "%s is %s, not %s", name,
                 health (arn, name), want);
}

/* A container definition: sleeps, with a healthCheck (hc: the JSON object, or NULL). */
#define APP(name, cmd, hc)                                                                         \
  "{\"name\":\"" name "\",\"image\":\"" IMAGE "\",\"essential\":true,\"memory\":32,"               \
  "\"command\":[\"sh\",\"-c\",\"" cmd "\"]" hc "}"

START_TEST (test_passing_check_makes_the_container_healthy_and_no_check_has_no_health)
{
  const char *arn = ARN_PREFIX "h-ok";
  ts_eng_open (&f);
  ts_eng_inject (
      &f, arn, "none",
      "[" APP ("web", "busybox sleep 60",
               ",\"healthCheck\":{\"command\":[\"CMD\",\"sh\",\"-c\",\"test -d /proc/1\"],"
               "\"interval\":0.3,\"timeout\":5}") "," APP ("plain", "busybox sleep 60", "") "]");
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  ck_assert_str_eq (health (arn, "web"), "UNKNOWN"); /* the first check is an interval later */
  ck_assert_str_eq (health (arn, "plain"), "NONE");
  run_until_health (arn, "web", "HEALTHY", 5000);
  int64_t since = 0;
  agent_engine_container_health (f.eng, arn, "web", &since);
  ck_assert_int_gt (since, 0);
  ts_eng_run_for (&f, 1000); /* stays healthy over more checks */
  ck_assert_str_eq (health (arn, "web"), "HEALTHY");
}
END_TEST

START_TEST (test_failing_check_makes_it_unhealthy_after_retries_and_the_task_keeps_running)
{
  const char *arn = ARN_PREFIX "h-bad";
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[" APP ("web", "busybox sleep 60",
                          ",\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"exit 1\"],"
                          "\"interval\":0.3,\"retries\":3}") "]");
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  ts_eng_run_for (&f, 750); /* two failures: not yet */
  ck_assert_str_eq (health (arn, "web"), "UNKNOWN");
  run_until_health (arn, "web", "UNHEALTHY", 5000);
  /* ECS: an unhealthy essential container does not stop a task by itself */
  ts_eng_run_for (&f, 500);
  ck_assert_str_eq (agent_engine_task_known (f.eng, arn, NULL), "RUNNING");
  ck_assert_int_gt (ts_eng_pid_of (&f, arn, "web"), 0);
}
END_TEST

START_TEST (test_check_past_its_timeout_is_killed_and_counts_as_a_failure)
{
  const char *arn = ARN_PREFIX "h-slow";
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[" APP ("web", "busybox sleep 60",
                          ",\"healthCheck\":{\"command\":[\"CMD\",\"busybox\",\"sleep\",\"37.25\"],"
                          "\"interval\":0.2,\"timeout\":1.5,\"retries\":1}") "]");
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  bool seen = false; /* the check runs (polled: an exec under load takes a while) */
  for (int t = 0; t < 1500 && !(seen = ts_eng_process_with_arg ("37.25")); t += 50)
    ts_eng_run_for (&f, 50);
  ck_assert (seen);
  run_until_health (arn, "web", "UNHEALTHY", 5000);
  ts_eng_run_for (&f,
                  100); /* the killed check is reaped: neither berth-runtime nor sleep is left */
  ck_assert (!ts_eng_process_with_arg ("37.25"));
}
END_TEST

START_TEST (test_failures_in_the_start_period_do_not_count)
{
  const char *arn = ARN_PREFIX "h-start";
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[" APP ("web", "busybox sleep 60",
                          ",\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"exit 1\"],"
                          "\"interval\":0.2,\"retries\":1,\"startPeriod\":2}") "]");
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  ts_eng_run_for (&f, 1200); /* several failures, all in the start period */
  ck_assert_str_eq (health (arn, "web"), "UNKNOWN");
  run_until_health (arn, "web", "UNHEALTHY", 4000);
}
END_TEST

START_TEST (test_healthy_dependency_starts_the_dependent_only_once_healthy)
{
  const char *arn = ARN_PREFIX "h-dep";
  ts_eng_open (&f);
  ts_eng_inject (
      &f, arn, "none",
      "[" APP (
          "db", "busybox sleep 1.5; touch /tmp/ready; busybox sleep 60",
          ",\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"test -f /tmp/ready\"],"
          "\"interval\":0.2,\"retries\":100}") "," APP ("app", "busybox sleep 60",
                                                        ",\"dependsOn\":[{\"containerName\":\"db\","
                                                        "\"condition\":\"HEALTHY\"}]") "]");
  for (int t = 0; t < 10000 && ts_eng_pid_of (&f, arn, "db") == 0; t += 20)
    sd_event_run (f.ev, 20000);
  ck_assert_int_gt (ts_eng_pid_of (&f, arn, "db"), 0);
  ts_eng_run_for (&f, 800);
  ck_assert_int_eq (ts_eng_pid_of (&f, arn, "app"), 0); /* db is not healthy yet */
  ck_assert_str_eq (health (arn, "db"), "UNKNOWN");
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  ck_assert_str_eq (health (arn, "db"), "HEALTHY");
  ck_assert_int_gt (ts_eng_pid_of (&f, arn, "app"), 0);
}
END_TEST

START_TEST (test_unhealthy_dependency_stops_the_task_without_starting_the_dependent)
{
  const char *arn = ARN_PREFIX "h-depbad";
  ts_eng_open (&f);
  ts_eng_inject (
      &f, arn, "none",
      "[" APP (
          "db", "busybox sleep 60",
          ",\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"exit 1\"],"
          "\"interval\":0.2,\"retries\":1}") "," APP ("app", "busybox sleep 60",
                                                      ",\"dependsOn\":[{\"containerName\":\"db\","
                                                      "\"condition\":\"HEALTHY\"}]") "]");
  ts_eng_run_until (&f, arn, "STOPPED", 15000);
  const char *reason = NULL;
  agent_engine_task_known (f.eng, arn, &reason);
  ck_assert_msg (reason && strstr (reason, "DependencyConditionNotSatisfied: HEALTHY"), "%s",
                 reason ? reason : "none");
  ck_assert_int_eq (ts_eng_code_of (&f, arn, "app"), -1); /* never ran */
}
END_TEST

int main (void)
{
  if (!ts_is_root ())
    {
      printf ("test_agent_engine_health: needs root (containers, mounts)\n");
      return 0;
    }
  Suite *s = suite_create ("agent_engine_health");
  TCase *tc = tcase_create ("health");
  tcase_set_timeout (tc, 120);
  tcase_add_unchecked_fixture (tc, eng_suite_setup, eng_suite_teardown);
  tcase_add_checked_fixture (tc, eng_setup, eng_teardown);
  tcase_add_test (tc, test_passing_check_makes_the_container_healthy_and_no_check_has_no_health);
  tcase_add_test (tc,
                  test_failing_check_makes_it_unhealthy_after_retries_and_the_task_keeps_running);
  tcase_add_test (tc, test_check_past_its_timeout_is_killed_and_counts_as_a_failure);
  tcase_add_test (tc, test_failures_in_the_start_period_do_not_count);
  tcase_add_test (tc, test_healthy_dependency_starts_the_dependent_only_once_healthy);
  tcase_add_test (tc, test_unhealthy_dependency_stops_the_task_without_starting_the_dependent);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
