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

#define IMAGE "test/busybox:v1"
#define ARN_PREFIX "arn:aws:ecs:us-east-1:000000000000:task/default/"

static char *images_dir; /* the mkimages.sh output, built once */

typedef struct fx
{
  char *dir, *store_path, *shim, *runtime, *state, *rtroot, *img_root;
  agent_config cfg;
  agent_store *store;
  sd_event *ev;
  struct img_store *images;
  struct img_registry *reg;
  struct img_puller *puller;
  agent_engine *eng;
  agent_http *http;
  agent_credprov *creds;
  uint64_t host_mem_mib;
} fx;

static fx f;

static void ok (int r, berr **err)
{
  ck_assert_msg (r >= 0, "%s", *err ? (*err)->msg : "(no error)");
  berr_free (err);
}

static void suite_setup (void)
{
  images_dir = ts_mkdtemp ("agent-engine-img");
  ts_sh_ok ("%s/tests/fixtures/mkimages.sh %s/out >/dev/null 2>&1",
            getenv ("BERTH_SRC") ? getenv ("BERTH_SRC") : ".", images_dir);
}

static void suite_teardown (void)
{
  ts_rmtree (images_dir);
  free (images_dir);
}

static char *cat (const char *a, const char *b)
{
  char *p = NULL;
  ck_assert_int_ge (asprintf (&p, "%s%s", a, b), 0);
  return p;
}

static void setup (void)
{
  berr *err = NULL;
  ck_assert_int_eq (unshare (CLONE_NEWNS), 0);
  ck_assert_int_eq (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
  memset (&f, 0, sizeof f);
  f.dir = ts_mkdtemp ("agent-engine");
  f.store_path = cat (f.dir, "/agent.db");
  f.state = cat (f.dir, "/state");
  f.rtroot = cat (f.dir, "/rt");
  f.img_root = cat (f.dir, "/images");
  f.shim = ts_bin ("berth-shim");
  f.runtime = ts_bin ("berth-runtime");
  const char *conf = "ECS_IMAGE_PULL_BEHAVIOR=once\nECS_CONTAINER_STOP_TIMEOUT=2s\n";
  ok (agent_config_parse (conf, strlen (conf), NULL, &f.cfg, &err), &err);
  f.cfg.task_cleanup_wait_us = 3600ULL * 1000000;
  ok (img_store_open (f.img_root, &f.images, &err), &err);
  _cleanup_free_ char *tar = cat (images_dir, "/out/docker.tar");
  int fd = open (tar, O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge (fd, 0);
  struct img_import_result ir;
  ok (img_store_import (f.images, fd, NULL, &ir, &err), &err);
  img_import_result_clear (&ir);
  close (fd);
  struct img_registry_opts ro = { .retries = -1, .connect_timeout_s = 2 };
  struct img_sink sink;
  img_store_sink (f.images, &sink);
  ok (img_registry_new (&ro, &f.reg, &err), &err);
  ok (img_puller_new (f.reg, &sink, NULL, &f.puller, &err), &err);
  ck_assert_int_eq (sd_event_new (&f.ev), 0);
}

static void engine_open_with (net_bridge *br)
{
  berr *err = NULL;
  agent_engine_opts o = { .ev = f.ev,
                          .store = f.store,
                          .cfg = &f.cfg,
                          .http = f.http,
                          .cluster = "c",
                          .images = f.images,
                          .puller = f.puller,
                          .shim_path = f.shim,
                          .runtime_path = f.runtime,
                          .state_dir = f.state,
                          .runtime_root = f.rtroot,
                          .bridge = br,
                          .max_pulls = 2,
                          .host_mem_mib = f.host_mem_mib ? f.host_mem_mib : 1 << 20,
                          .seed = 1 };
  if (f.store == NULL)
    ok (agent_store_open (f.store_path, &f.store, &err), &err);
  o.store = f.store;
  ok (agent_engine_new (&o, &f.eng, &err), &err);
}

static void engine_open (void)
{
  engine_open_with (NULL);
}

/* Kills whatever containers a test left, so no shim outlives it. */
static void kill_containers (void)
{
  DIR *d = opendir (f.rtroot);
  struct dirent *de;
  berr *err = NULL;
  while (d && (de = readdir (d)))
    if (de->d_name[0] != '.' && strcmp (de->d_name, "seccomp-cache") != 0)
      {
        rt_container_delete (f.rtroot, de->d_name, true, &err);
        berr_free (&err);
      }
  if (d)
    closedir (d);
  /* the shims write their final state, then exit: wait for them before removing their dirs */
  _cleanup_free_ char *shims = cat (f.state, "/shims");
  d = opendir (shims);
  while (d && (de = readdir (d)))
    if (de->d_name[0] != '.')
      {
        char path[4096];
        snprintf (path, sizeof path, "%s/%s/shim.pid", shims, de->d_name);
        _cleanup_free_ char *pid = ts_read_file (path);
        pid_t p = pid ? atoi (pid) : 0;
        int pfd = p > 0 ? (int)syscall (SYS_pidfd_open, p, 0) : -1;
        struct pollfd pf = { .fd = pfd, .events = POLLIN };
        if (pfd >= 0)
          {
            poll (&pf, 1, 3000);
            close (pfd);
          }
      }
  if (d)
    closedir (d);
  _cleanup_free_ char *rootfses = cat (f.img_root, "/containers");
  d = opendir (rootfses);
  while (d && (de = readdir (d)))
    if (de->d_name[0] != '.')
      {
        img_rootfs_remove (f.images, de->d_name, &err);
        berr_free (&err);
      }
  if (d)
    closedir (d);
}

static void teardown (void)
{
  agent_engine_free (f.eng);
  agent_http_free (f.http);
  agent_credprov_free (f.creds);
  kill_containers ();
  agent_store_close (f.store);
  img_puller_free (f.puller);
  img_registry_free (f.reg);
  img_store_close (f.images);
  sd_event_unref (f.ev);
  agent_config_free (&f.cfg);
  ts_rmtree (f.dir);
  free (f.dir), free (f.store_path), free (f.state), free (f.rtroot), free (f.img_root);
  free (f.shim), free (f.runtime);
}

/* Stores an ACS task (containers: a JSON array text) and tells the engine. */
static void inject_full (const char *arn, const char *mode, const char *containers,
                         const char *memory)
{
  berr *err = NULL;
  _cleanup_free_ char *body = NULL;
  ck_assert_int_ge (asprintf (&body,
                              "{\"arn\":\"%s\",\"family\":\"t\",\"version\":\"1\","
                              "\"desiredStatus\":\"RUNNING\",\"networkMode\":\"%s\","
                              "\"memory\":\"%s\",\"containers\":%s}",
                              arn, mode, memory, containers),
                    0);
  agent_task_rec r
      = { .arn = (char *)arn, .desired_status = "RUNNING", .known_status = "NONE", .body = body };
  ok (agent_store_put_task (f.store, &r, &err), &err);
  ok (agent_engine_task_updated (f.eng, arn, &err), &err);
}

static void inject (const char *arn, const char *mode, const char *containers)
{
  inject_full (arn, mode, containers, "512");
}

static bool status_is (const char *arn, const char *want)
{
  return strcmp (agent_engine_task_known (f.eng, arn, NULL), want) == 0;
}

/* Runs the loop until the task's known status is want (or timeout_ms). */
static void run_until (const char *arn, const char *want, int timeout_ms)
{
  int64_t end = (int64_t)timeout_ms * 1000;
  for (int64_t t = 0; t < end && !status_is (arn, want); t += 20000)
    ck_assert_int_ge (sd_event_run (f.ev, 20000), 0);
  const char *reason = NULL;
  const char *got = agent_engine_task_known (f.eng, arn, &reason);
  ck_assert_msg (strcmp (got, want) == 0, "task %s is %s, not %s (reason %s)", arn, got, want,
                 reason ? reason : "none");
}

static void run_for (int ms)
{
  for (int t = 0; t < ms; t += 20)
    sd_event_run (f.ev, 20000);
}

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

static pid_t pid_of (const char *arn, const char *name)
{
  pid_t pid = 0;
  int code;
  ck_assert_int_eq (agent_engine_container_info (f.eng, arn, name, &pid, &code), 0);
  return pid;
}

/* A container definition: sleeps, with a healthCheck (hc: the JSON object, or NULL). */
#define APP(name, cmd, hc)                                                                         \
  "{\"name\":\"" name "\",\"image\":\"" IMAGE "\",\"essential\":true,\"memory\":32,"               \
  "\"command\":[\"sh\",\"-c\",\"" cmd "\"]" hc "}"

START_TEST (test_passing_check_makes_the_container_healthy_and_no_check_has_no_health)
{
  const char *arn = ARN_PREFIX "h-ok";
  engine_open ();
  inject (
      arn, "none",
      "[" APP ("web", "busybox sleep 60",
               ",\"healthCheck\":{\"command\":[\"CMD\",\"sh\",\"-c\",\"test -d /proc/1\"],"
               "\"interval\":0.3,\"timeout\":5}") "," APP ("plain", "busybox sleep 60", "") "]");
  run_until (arn, "RUNNING", 10000);
  ck_assert_str_eq (health (arn, "web"), "UNKNOWN"); /* the first check is an interval later */
  ck_assert_str_eq (health (arn, "plain"), "NONE");
  run_until_health (arn, "web", "HEALTHY", 5000);
  int64_t since = 0;
  agent_engine_container_health (f.eng, arn, "web", &since);
  ck_assert_int_gt (since, 0);
  run_for (1000); /* stays healthy over more checks */
  ck_assert_str_eq (health (arn, "web"), "HEALTHY");
}
END_TEST

START_TEST (test_failing_check_makes_it_unhealthy_after_retries_and_the_task_keeps_running)
{
  const char *arn = ARN_PREFIX "h-bad";
  engine_open ();
  inject (arn, "none",
          "[" APP ("web", "busybox sleep 60",
                   ",\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"exit 1\"],"
                   "\"interval\":0.3,\"retries\":3}") "]");
  run_until (arn, "RUNNING", 10000);
  run_for (750); /* two failures: not yet */
  ck_assert_str_eq (health (arn, "web"), "UNKNOWN");
  run_until_health (arn, "web", "UNHEALTHY", 5000);
  /* ECS: an unhealthy essential container does not stop a task by itself */
  run_for (500);
  ck_assert_str_eq (agent_engine_task_known (f.eng, arn, NULL), "RUNNING");
  ck_assert_int_gt (pid_of (arn, "web"), 0);
}
END_TEST

/* Whether any process's command line has the word w. */
static bool process_with_arg (const char *w)
{
  DIR *d = opendir ("/proc");
  struct dirent *de;
  bool found = false;
  while (d && !found && (de = readdir (d)))
    {
      char path[300], buf[4096];
      if (de->d_name[0] < '1' || de->d_name[0] > '9')
        continue;
      snprintf (path, sizeof path, "/proc/%s/cmdline", de->d_name);
      int fd = open (path, O_RDONLY | O_CLOEXEC);
      ssize_t n = fd >= 0 ? read (fd, buf, sizeof buf - 1) : -1;
      if (fd >= 0)
        close (fd);
      for (ssize_t i = 0; i < n; i += (ssize_t)strlen (buf + i) + 1)
        {
          buf[n] = '\0';
          if (strcmp (buf + i, w) == 0)
            found = true;
        }
    }
  if (d)
    closedir (d);
  return found;
}

START_TEST (test_check_past_its_timeout_is_killed_and_counts_as_a_failure)
{
  const char *arn = ARN_PREFIX "h-slow";
  engine_open ();
  inject (arn, "none",
          "[" APP ("web", "busybox sleep 60",
                   ",\"healthCheck\":{\"command\":[\"CMD\",\"busybox\",\"sleep\",\"37.25\"],"
                   "\"interval\":0.2,\"timeout\":1.5,\"retries\":1}") "]");
  run_until (arn, "RUNNING", 10000);
  bool seen = false; /* the check runs (polled: an exec under load takes a while) */
  for (int t = 0; t < 1500 && !(seen = process_with_arg ("37.25")); t += 50)
    run_for (50);
  ck_assert (seen);
  run_until_health (arn, "web", "UNHEALTHY", 5000);
  run_for (100); /* the killed check is reaped: neither berth-runtime nor sleep is left */
  ck_assert (!process_with_arg ("37.25"));
}
END_TEST

START_TEST (test_failures_in_the_start_period_do_not_count)
{
  const char *arn = ARN_PREFIX "h-start";
  engine_open ();
  inject (arn, "none",
          "[" APP ("web", "busybox sleep 60",
                   ",\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"exit 1\"],"
                   "\"interval\":0.2,\"retries\":1,\"startPeriod\":2}") "]");
  run_until (arn, "RUNNING", 10000);
  run_for (1200); /* several failures, all in the start period */
  ck_assert_str_eq (health (arn, "web"), "UNKNOWN");
  run_until_health (arn, "web", "UNHEALTHY", 4000);
}
END_TEST

START_TEST (test_healthy_dependency_starts_the_dependent_only_once_healthy)
{
  const char *arn = ARN_PREFIX "h-dep";
  engine_open ();
  inject (
      arn, "none",
      "[" APP (
          "db", "busybox sleep 1.5; touch /tmp/ready; busybox sleep 60",
          ",\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"test -f /tmp/ready\"],"
          "\"interval\":0.2,\"retries\":100}") "," APP ("app", "busybox sleep 60",
                                                        ",\"dependsOn\":[{\"containerName\":\"db\","
                                                        "\"condition\":\"HEALTHY\"}]") "]");
  for (int t = 0; t < 10000 && pid_of (arn, "db") == 0; t += 20)
    sd_event_run (f.ev, 20000);
  ck_assert_int_gt (pid_of (arn, "db"), 0);
  run_for (800);
  ck_assert_int_eq (pid_of (arn, "app"), 0); /* db is not healthy yet */
  ck_assert_str_eq (health (arn, "db"), "UNKNOWN");
  run_until (arn, "RUNNING", 10000);
  ck_assert_str_eq (health (arn, "db"), "HEALTHY");
  ck_assert_int_gt (pid_of (arn, "app"), 0);
}
END_TEST

START_TEST (test_unhealthy_dependency_stops_the_task_without_starting_the_dependent)
{
  const char *arn = ARN_PREFIX "h-depbad";
  engine_open ();
  inject (
      arn, "none",
      "[" APP (
          "db", "busybox sleep 60",
          ",\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"exit 1\"],"
          "\"interval\":0.2,\"retries\":1}") "," APP ("app", "busybox sleep 60",
                                                      ",\"dependsOn\":[{\"containerName\":\"db\","
                                                      "\"condition\":\"HEALTHY\"}]") "]");
  run_until (arn, "STOPPED", 15000);
  const char *reason = NULL;
  agent_engine_task_known (f.eng, arn, &reason);
  ck_assert_msg (reason && strstr (reason, "DependencyConditionNotSatisfied: HEALTHY"), "%s",
                 reason ? reason : "none");
  pid_t pid;
  int code;
  ck_assert_int_eq (agent_engine_container_info (f.eng, arn, "app", &pid, &code), 0);
  ck_assert_int_eq (code, -1); /* never ran */
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
  tcase_add_unchecked_fixture (tc, suite_setup, suite_teardown);
  tcase_add_checked_fixture (tc, setup, teardown);
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
