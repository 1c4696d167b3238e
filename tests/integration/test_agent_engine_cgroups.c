/* Integration tests of the task engine's cgroup layout (docs/cgroups.md) with real containers:
 * shims in <task root>/supervisor, containers in <task root>/task/<name>, the task-level limits
 * on task/, re-adoption with the groups intact, and nothing left after cleanup. */
#include "agent/agent.h"
#include "cgroups/cgroups.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "tests/support/engine.h"
#include "tests/support/support.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMAGE TS_ENG_IMAGE
#define ARN_PREFIX TS_ENG_ARN_PREFIX

static ts_eng f;
TS_ENG_FIXTURES (f)

static void setup (void)
{
  eng_setup ();
  f.cfg.task_cleanup_wait_us = 200000;
}

/* Stores an ACS task with task-level cpu and memory and tells the engine. */
static void inject (const char *arn, const char *containers)
{
  _cleanup_free_ char *rest = ts_eng_cat (containers, ",\"cpu\":\"512\"");
  ts_eng_inject_full (&f, arn, "none", rest, "96");
}

/* Marks the task's reports sent, as berth-control's acceptance would (cleanup waits for it). */
static void accept_reports (const char *arn)
{
  cJSON_Delete (ts_eng_outbox (&f, arn));
}

/* ---- the groups, as the kernel shows them ---- */

static const char *const ctrls[] = { "memory", "cpu", "pids", NULL };

/* The task root's directories in the hierarchies the engine uses (memory, cpu, pids; v2: one). */
static char **root_dirs (const char *root)
{
  berr *err = NULL;
  cg_group *g = NULL;
  ts_eng_ok (cg_open (root, &g, &err), &err);
  char **v = calloc (ARRAY_SIZE (ctrls), sizeof *v);
  for (size_t i = 0; ctrls[i]; i++)
    v[i] = cg_dir (g, ctrls[i]) ? strdup (cg_dir (g, ctrls[i])) : NULL;
  cg_free (g);
  return v;
}

static void dirs_free (char **v)
{
  for (size_t i = 0; i + 1 < ARRAY_SIZE (ctrls); i++)
    free (v[i]);
  free (v);
}

/* Whether pid is listed in dir/sub/cgroup.procs. */
static bool in_group (const char *dir, const char *sub, pid_t pid)
{
  char path[4096], line[32];
  snprintf (path, sizeof path, "%s/%s/cgroup.procs", dir, sub);
  _cleanup_free_ char *text = ts_read_file (path);
  snprintf (line, sizeof line, "%d\n", (int)pid);
  if (text == NULL)
    return false;
  size_t n = strlen (line);
  for (const char *p = text; (p = strstr (p, line)) != NULL; p += n)
    if (p == text || p[-1] == '\n')
      return true;
  return false;
}

static pid_t shim_pid_of (const char *id)
{
  char path[4096];
  snprintf (path, sizeof path, "%s/shims/%s/shim.pid", f.state, id);
  _cleanup_free_ char *text = ts_read_file (path);
  return text ? atoi (text) : 0;
}

static pid_t container_pid (const char *arn, const char *name)
{
  pid_t pid = ts_eng_pid_of (&f, arn, name);
  ck_assert_int_gt (pid, 0);
  return pid;
}

/* Every shim in <root>/supervisor and every container in <root>/task/<name>, in each hierarchy. */
static void assert_placed (char **dirs, const char *arn, const char *id, const char *const *names)
{
  for (size_t k = 0; names[k]; k++)
    {
      char cid[512], sub[512];
      snprintf (cid, sizeof cid, "%s-%s", id, names[k]);
      snprintf (sub, sizeof sub, "task/%s", names[k]);
      pid_t shim = shim_pid_of (cid), pid = container_pid (arn, names[k]);
      ck_assert_int_gt (shim, 0);
      for (size_t i = 0; ctrls[i]; i++)
        if (dirs[i])
          {
            ck_assert_msg (in_group (dirs[i], "supervisor", shim), "shim %d not in %s/supervisor",
                           shim, dirs[i]);
            ck_assert_msg (in_group (dirs[i], sub, pid), "container %d not in %s/%s", pid, dirs[i],
                           sub);
          }
    }
}

/* The task/ group's memory limit and cpu quota, in the files of the host's version. */
static void assert_task_limits (char **dirs)
{
  char path[4096];
  snprintf (path, sizeof path, "%s/task/memory.max", dirs[0]);
  bool v2 = access (path, F_OK) == 0;
  if (!v2)
    snprintf (path, sizeof path, "%s/task/memory.limit_in_bytes", dirs[0]);
  _cleanup_free_ char *mem = ts_read_file (path);
  ck_assert_ptr_nonnull (mem);
  ck_assert_str_eq (mem, "100663296\n"); /* 96 MiB */
  if (v2)
    snprintf (path, sizeof path, "%s/task/cpu.max", dirs[1]);
  else
    snprintf (path, sizeof path, "%s/task/cpu.cfs_quota_us", dirs[1]);
  _cleanup_free_ char *cpu = ts_read_file (path);
  ck_assert_ptr_nonnull (cpu);
  ck_assert_str_eq (cpu, v2 ? "50000 100000\n" : "50000\n"); /* 512 units: half a core */
}

static void assert_gone (char **dirs)
{
  struct stat st;
  for (size_t i = 0; ctrls[i]; i++)
    if (dirs[i])
      ck_assert_msg (stat (dirs[i], &st) < 0 && errno == ENOENT, "%s is still there", dirs[i]);
}

/* The telemetry list names each running container's real group. */
static void assert_telemetry_paths (const char *root, size_t want)
{
  agent_container_cgroup *list = NULL;
  size_t n = 0;
  ck_assert_int_eq (agent_engine_running_containers (f.eng, &list, &n), 0);
  ck_assert_uint_eq (n, want);
  for (size_t i = 0; i < n; i++)
    {
      char path[1024];
      snprintf (path, sizeof path, "%s/task/%s", root, list[i].container);
      ck_assert_str_eq (list[i].cgroup_path, path);
      berr *err = NULL;
      cg_group *g = NULL;
      ts_eng_ok (cg_open (path, &g, &err), &err);
      struct cg_stats stats;
      ts_eng_ok (cg_get_stats (g, &stats, &err), &err);
      ck_assert_uint_gt (stats.memory_usage, 0);
      cg_free (g);
    }
  free (list);
}

static void wait_cleaned_up (const char *arn)
{
  accept_reports (arn);
  for (int t = 0; t < 10000 && !ts_eng_status_is (&f, arn, "NONE"); t += 20)
    sd_event_run (f.ev, 20000);
  ck_assert_str_eq (agent_engine_task_known (f.eng, arn, NULL), "NONE");
}

static const char *const two[] = { "web", "side", NULL };

/* A task's id (name and this process, so parallel runs differ), ARN and cgroup root. */
typedef struct
{
  char id[64], arn[256], root[128];
} task_names;

static task_names names_of (const char *name)
{
  task_names n;
  snprintf (n.id, sizeof n.id, "%s-%d", name, (int)getpid ());
  snprintf (n.arn, sizeof n.arn, ARN_PREFIX "%s", n.id);
  snprintf (n.root, sizeof n.root, "berth/task-%s", n.id);
  return n;
}

static const char *two_containers
    = "[{\"name\":\"web\",\"image\":\"" IMAGE "\",\"command\":[\"busybox\",\"sleep\",\"100\"]},"
      "{\"name\":\"side\",\"image\":\"" IMAGE "\",\"essential\":false,\"memory\":32,"
      "\"dependsOn\":[{\"containerName\":\"web\",\"condition\":\"START\"}],"
      "\"command\":[\"busybox\",\"sleep\",\"100\"]}]";

START_TEST (test_shims_in_supervisor_containers_in_task_limits_on_task_and_cleanup_removes_all)
{
  task_names n = names_of ("cg1");
  const char *id = n.id, *arn = n.arn, *root = n.root;
  ts_eng_open (&f);
  inject (arn, two_containers); /* "side" starts in a later step: a later shim of the task */
  ts_eng_run_until (&f, arn, "RUNNING", 20000);
  char **dirs = root_dirs (root);
  assert_placed (dirs, arn, id, two);
  assert_task_limits (dirs);
  assert_telemetry_paths (root, 2);
  ts_eng_desire_stopped (&f, arn);
  ts_eng_run_until (&f, arn, "STOPPED", 20000);
  assert_gone (dirs); /* at STOPPED already, not only at the cleanup */
  wait_cleaned_up (arn);
  assert_gone (dirs);
  dirs_free (dirs);
}
END_TEST

START_TEST (test_engine_recreated_readopts_with_the_groups_intact_and_stop_removes_them)
{
  task_names n = names_of ("cg2");
  const char *id = n.id, *arn = n.arn, *root = n.root;
  ts_eng_open (&f);
  inject (arn, two_containers);
  ts_eng_run_until (&f, arn, "RUNNING", 20000);
  pid_t web = container_pid (arn, "web");
  /* the agent goes away without stopping anything (as after kill -9 or SIGTERM) */
  agent_engine_free (f.eng);
  f.eng = NULL;
  char **dirs = root_dirs (root);
  ck_assert_int_eq (kill (web, 0), 0);
  ts_eng_open (&f);
  for (int i = 0; i < 10; i++)
    sd_event_run (f.ev, 20000);
  ck_assert_str_eq (agent_engine_task_known (f.eng, arn, NULL), "RUNNING");
  ck_assert_int_eq (container_pid (arn, "web"), web); /* re-adopted, same process */
  assert_placed (dirs, arn, id, two);
  assert_task_limits (dirs);
  assert_telemetry_paths (root, 2);
  ts_eng_desire_stopped (&f, arn);
  ts_eng_run_until (&f, arn, "STOPPED", 20000);
  ck_assert_int_ne (kill (web, 0), 0);
  wait_cleaned_up (arn);
  assert_gone (dirs);
  dirs_free (dirs);
}
END_TEST

START_TEST (test_a_launch_refused_after_the_invoker_was_placed_leaves_no_group)
{
  task_names n = names_of ("cg3");
  const char *arn = n.arn, *root = n.root;
  ts_eng_open (&f);
  /* "bad"'s bundle is refused after its invoker was forked and placed in the existing root's
   * supervisor/: the invoker is killed unseen, the task stops */
  inject (arn, "[{\"name\":\"ok\",\"image\":\"" IMAGE "\","
               "\"command\":[\"busybox\",\"sleep\",\"100\"]},"
               "{\"name\":\"bad\",\"image\":\"" IMAGE "\","
               "\"dependsOn\":[{\"containerName\":\"ok\",\"condition\":\"START\"}],"
               "\"mountPoints\":[{\"containerPath\":\"/x\"}],"
               "\"command\":[\"busybox\",\"sleep\",\"100\"]}]");
  pid_t pid = 0;
  int code;
  for (int i = 0; i < 1000 && pid == 0; i++)
    {
      sd_event_run (f.ev, 20000);
      agent_engine_container_info (f.eng, arn, "ok", &pid, &code);
    }
  ck_assert_int_gt (pid, 0);
  char **dirs = root_dirs (root);
  ts_eng_run_until (&f, arn, "STOPPED", 20000);
  const char *reason = NULL;
  agent_engine_task_known (f.eng, arn, &reason);
  ck_assert_ptr_nonnull (reason);
  ck_assert_msg (strstr (reason, "CannotStartContainerError") != NULL, "%s", reason);
  assert_gone (dirs); /* nothing of the refused invoker kept a group busy */
  wait_cleaned_up (arn);
  assert_gone (dirs);
  dirs_free (dirs);
}
END_TEST

START_TEST (test_a_task_stopped_before_a_restart_is_cleaned_up_with_its_groups_by_the_next_engine)
{
  task_names n = names_of ("cg4");
  const char *arn = n.arn, *root = n.root;
  f.cfg.task_cleanup_wait_us = 3600ULL * 1000000; /* not before the restart */
  ts_eng_open (&f);
  inject (arn, two_containers);
  ts_eng_run_until (&f, arn, "RUNNING", 20000);
  char **dirs = root_dirs (root);
  ts_eng_desire_stopped (&f, arn);
  ts_eng_run_until (&f, arn, "STOPPED", 20000);
  accept_reports (arn);
  agent_engine_free (f.eng);
  f.eng = NULL;
  /* as if the agent died between STOPPED and the groups' teardown: they are back */
  berr *err = NULL;
  cg_group *g = NULL;
  char sub[256];
  const char *const subs[] = { "supervisor", "task/web", NULL };
  for (size_t i = 0; subs[i]; i++)
    {
      snprintf (sub, sizeof sub, "%s/%s", root, subs[i]);
      ts_eng_ok (cg_create (sub, NULL, &g, &err), &err);
      cg_free (g);
    }
  f.cfg.task_cleanup_wait_us = 200000;
  ts_eng_open (&f);
  ck_assert_str_eq (agent_engine_task_known (f.eng, arn, NULL), "STOPPED");
  wait_cleaned_up (arn);
  assert_gone (dirs);
  dirs_free (dirs);
}
END_TEST

int main (void)
{
  if (!ts_is_root ())
    {
      printf ("test_agent_engine_cgroups: needs root (containers, cgroups)\n");
      return 0;
    }
  Suite *s = suite_create ("agent_engine_cgroups");
  TCase *tc = tcase_create ("layout");
  tcase_set_timeout (tc, 120);
  tcase_add_unchecked_fixture (tc, eng_suite_setup, eng_suite_teardown);
  tcase_add_checked_fixture (tc, setup, eng_teardown);
  tcase_add_test (
      tc, test_shims_in_supervisor_containers_in_task_limits_on_task_and_cleanup_removes_all);
  tcase_add_test (tc, test_engine_recreated_readopts_with_the_groups_intact_and_stop_removes_them);
  tcase_add_test (tc, test_a_launch_refused_after_the_invoker_was_placed_leaves_no_group);
  tcase_add_test (
      tc, test_a_task_stopped_before_a_restart_is_cleaned_up_with_its_groups_by_the_next_engine);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
