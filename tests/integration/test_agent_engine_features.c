/* Integration tests of task engine features beyond the basic lifecycle, with real containers
 * (tests/support/engine.h): privileged containers and ECS_DISABLE_PRIVILEGED, container restart
 * policies (restartPolicy), initProcessEnabled, volumesFrom, ECS_CONTAINER_START_TIMEOUT, and
 * health sent to berth-control as PublishHealth. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "tests/support/cp.h"
#include "tests/support/engine.h"
#include "tests/support/support.h"

#include <dirent.h>
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
  ck_assert_int_eq (ts_eng_code_of (&f, arn, "priv"), -1); /* never ran */
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
  /* task metadata v4 shows the count, as ECS does for a container with a restart policy */
  _cleanup_json_ cJSON *md = agent_engine_v4 (f.eng, arn, "rs1-app", false, NULL);
  ck_assert_ptr_nonnull (md);
  const cJSON *rc = cJSON_GetObjectItem (md, "RestartCount");
  ck_assert (cJSON_IsNumber (rc));
  ck_assert_int_eq (rc->valueint, 2);
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
  ck_assert_int_eq (ts_eng_code_of (&f, early, "app"), 4);
  ts_eng_desire_stopped (&f, stopping);
  ts_eng_run_until (&f, stopping, "STOPPED", 10000);
  ck_assert_int_eq (agent_engine_container_restarts (f.eng, stopping, "app"), 0);
}
END_TEST

/* The parent pid and state of a process, from /proc; false when it is gone. */
static bool stat_of (pid_t pid, pid_t *ppid, char *state)
{
  char path[64];
  snprintf (path, sizeof path, "/proc/%d/stat", pid);
  _cleanup_free_ char *st = ts_read_file (path);
  const char *p = st ? strrchr (st, ')') : NULL;
  int pp = 0;
  if (p == NULL || sscanf (p + 2, "%c %d", state, &pp) != 2)
    return false;
  *ppid = pp;
  return true;
}

/* Zombies among the children and grandchildren of root (a container's first process). */
static int zombies_under (pid_t root)
{
  DIR *d = opendir ("/proc");
  struct dirent *de;
  int n = 0;
  while (d && (de = readdir (d)))
    {
      pid_t p = atoi (de->d_name), pp, gp;
      char st, pst;
      if (p <= 0 || !stat_of (p, &pp, &st) || st != 'Z')
        continue;
      if (pp == root || (stat_of (pp, &gp, &pst) && gp == root))
        n++;
    }
  if (d)
    closedir (d);
  return n;
}

/* An orphan is left to PID 1, then the process execs a sleep that never reaps. */
#define ORPHAN "(busybox sleep 0.2 &); exec busybox sleep 100"

START_TEST (test_init_process_reaps_orphans_and_forwards_the_stop_signal)
{
  const char *arn = ARN_PREFIX "init1";
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"with\",\"image\":\"" IMAGE "\","
                 "\"linuxParameters\":{\"initProcessEnabled\":true},"
                 "\"command\":[\"sh\",\"-c\",\"" ORPHAN "\"]},"
                 "{\"name\":\"without\",\"image\":\"" IMAGE "\","
                 "\"command\":[\"sh\",\"-c\",\"" ORPHAN "\"]}]");
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  pid_t with = ts_eng_pid_of (&f, arn, "with"), without = ts_eng_pid_of (&f, arn, "without");
  char path[64];
  snprintf (path, sizeof path, "/proc/%d/cmdline", with);
  _cleanup_free_ char *cmd = ts_read_file (path);
  ck_assert_msg (cmd && strcmp (cmd, "/dev/init") == 0, "PID 1 is %s", cmd ? cmd : "?");
  /* the orphan exits after 0.2 s: a zombie under the sleep that is PID 1, none under the init */
  for (int t = 0; t < 5000 && zombies_under (without) == 0; t += 50)
    ts_eng_run_for (&f, 50);
  /* (the init may still be reaping its own orphan's exit just now) */
  for (int t = 0; t < 3000 && zombies_under (with) > 0; t += 50)
    ts_eng_run_for (&f, 50);
  ck_assert_int_eq (zombies_under (with), 0);
  ck_assert_int_eq (zombies_under (without), 1); /* which stays */
  /* SIGTERM reaches the sleep through the init (143); PID 1 sleep ignores it: SIGKILL (137) */
  ts_eng_desire_stopped (&f, arn);
  ts_eng_run_until (&f, arn, "STOPPED", 15000);
  ck_assert_int_eq (ts_eng_code_of (&f, arn, "with"), 143);
  ck_assert_int_eq (ts_eng_code_of (&f, arn, "without"), 137);
}
END_TEST

START_TEST (test_init_process_exits_with_the_command_status)
{
  const char *arn = ARN_PREFIX "init2";
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"app\",\"image\":\"" IMAGE "\","
                 "\"linuxParameters\":{\"initProcessEnabled\":true},"
                 "\"command\":[\"sh\",\"-c\",\"echo pid-$$; exit 9\"]}]");
  ts_eng_run_until (&f, arn, "STOPPED", 10000);
  ck_assert_int_eq (ts_eng_code_of (&f, arn, "app"), 9);
  _cleanup_free_ char *log = container_log ("init2-app");
  ck_assert_msg (log && strstr (log, "pid-2"), "%s", log ? log : "(none)"); /* PID 1 is init */
}
END_TEST

START_TEST (test_volumes_from_mounts_every_volume_of_the_source_and_honours_read_only)
{
  const char *arn = ARN_PREFIX "vf1";
  _cleanup_free_ char *hostdir = ts_eng_cat (f.dir, "/hostvol"), *containers = NULL;
  ck_assert_int_eq (mkdir (hostdir, 0755), 0);
  f.cfg.task_cleanup_wait_us = 100000;
  ck_assert_int_ge (
      asprintf (
          &containers,
          "[{\"name\":\"src\",\"image\":\"" IMAGE "\","
          "\"mountPoints\":[{\"sourceVolume\":\"data\",\"containerPath\":\"/data\"},"
          "{\"sourceVolume\":\"hostv\",\"containerPath\":\"/h\"}],"
          "\"command\":[\"sh\",\"-c\",\"echo from-src > /data/x; echo host-src > /h/y;"
          " exec busybox sleep 60\"]},"
          "{\"name\":\"reader\",\"image\":\"" IMAGE "\","
          "\"volumesFrom\":[{\"sourceContainer\":\"src\",\"readOnly\":true}],"
          "\"command\":[\"sh\",\"-c\",\"until test -f /h/y; do busybox sleep 0.1; done;"
          " cat /data/x /h/y; touch /data/z 2>/dev/null && echo wrote || echo ro-ok;"
          " echo reader-done; exec busybox sleep 60\"]},"
          "{\"name\":\"writer\",\"image\":\"" IMAGE "\","
          "\"volumesFrom\":[{\"sourceContainer\":\"src\",\"readOnly\":false}],"
          "\"command\":[\"sh\",\"-c\",\"echo w > /data/w && echo rw-ok; echo writer-done;"
          " exec busybox sleep 60\"]},"
          "{\"name\":\"chain\",\"image\":\"" IMAGE "\","
          "\"volumesFrom\":[{\"sourceContainer\":\"reader\"}],"
          "\"command\":[\"sh\",\"-c\",\"until test -f /data/x; do busybox sleep 0.1; done;"
          " cat /data/x; touch /h/z 2>/dev/null && echo wrote || echo ro-ok;"
          " echo chain-done; exec busybox sleep 60\"]}],"
          "\"volumes\":[{\"name\":\"data\"},{\"name\":\"hostv\",\"host\":{\"sourcePath\":\"%s\"}}]",
          hostdir),
      0);
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none", containers);
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  _cleanup_free_ char *reader = wait_log ("vf1-reader", "reader-done");
  ck_assert_msg (strstr (reader, "from-src") && strstr (reader, "host-src"), "%s", reader);
  ck_assert_msg (strstr (reader, "ro-ok"), "%s", reader);
  _cleanup_free_ char *writer = wait_log ("vf1-writer", "writer-done");
  ck_assert_msg (strstr (writer, "rw-ok"), "%s", writer);
  /* volumesFrom a container that has them through its own volumesFrom: transitive, in the
   * reader's (read-only) mode, as docker's --volumes-from */
  _cleanup_free_ char *chain = wait_log ("vf1-chain", "chain-done");
  ck_assert_msg (strstr (chain, "from-src") && strstr (chain, "ro-ok"), "%s", chain);
  /* cleanup removes the task-scoped volume, never the host one */
  _cleanup_free_ char *scoped = ts_eng_cat (f.state, "/volumes/vf1/data/x");
  ck_assert_int_eq (access (scoped, F_OK), 0);
  ts_eng_desire_stopped (&f, arn);
  ts_eng_run_until (&f, arn, "STOPPED", 15000);
  cJSON_Delete (ts_eng_outbox (&f, arn)); /* the STOPPED report, as if accepted */
  ts_eng_run_until (&f, arn, "NONE", 5000);
  ck_assert_int_ne (access (scoped, F_OK), 0);
  _cleanup_free_ char *y = ts_eng_cat (hostdir, "/y");
  _cleanup_free_ char *got = ts_read_file (y);
  ck_assert_str_eq (got ? got : "", "host-src\n");
}
END_TEST

START_TEST (test_volumes_from_an_unknown_container_stops_the_task)
{
  const char *arn = ARN_PREFIX "vf2", *reason = NULL;
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"app\",\"image\":\"" IMAGE "\","
                 "\"volumesFrom\":[{\"sourceContainer\":\"nope\"}],"
                 "\"command\":[\"busybox\",\"sleep\",\"60\"]}]");
  ts_eng_run_until (&f, arn, "STOPPED", 10000);
  agent_engine_task_known (f.eng, arn, &reason);
  ck_assert_msg (reason && strstr (reason, "CannotStartContainerError")
                     && strstr (reason, "volumesFrom"),
                 "%s", reason ? reason : "none");
}
END_TEST

/* A container that prints the mark /data held and how many files its task-scoped /scratch
 * had, then writes its own mark into /data and a file into /scratch. */
#define DOCKER_VOLUMES(mark, shared_extra)                                                         \
  "[{\"name\":\"app\",\"image\":\"" IMAGE "\","                                                    \
  "\"mountPoints\":[{\"sourceVolume\":\"data\",\"containerPath\":\"/data\"},"                      \
  "{\"sourceVolume\":\"scratch\",\"containerPath\":\"/scratch\"}],"                                \
  "\"command\":[\"sh\",\"-c\",\"echo seen=$(cat /data/mark 2>/dev/null || echo none)"              \
  " scratch=$(ls /scratch | wc -l);"                                                               \
  " echo " mark " > /data/mark; touch /scratch/s; echo vol-done\"]}],"                             \
  "\"volumes\":[{\"name\":\"data\",\"dockerVolumeConfiguration\":{\"scope\":\"shared\","           \
  "\"driver\":\"local\"" shared_extra "}},"                                                        \
  "{\"name\":\"scratch\",\"dockerVolumeConfiguration\":{\"scope\":\"task\"}}]"

START_TEST (test_docker_volumes_task_scoped_and_shared_and_what_is_refused)
{
  const char *reason = NULL;
  f.cfg.task_cleanup_wait_us = 100000;
  ts_eng_open (&f);
  /* autoprovision makes the shared volume; the task-scoped one starts empty */
  ts_eng_inject (&f, ARN_PREFIX "dv1", "none", DOCKER_VOLUMES ("first", ",\"autoprovision\":true"));
  ts_eng_run_until (&f, ARN_PREFIX "dv1", "STOPPED", 15000);
  _cleanup_free_ char *one = wait_log ("dv1-app", "vol-done");
  ck_assert_msg (strstr (one, "seen=none scratch=0"), "%s", one);
  _cleanup_free_ char *mark = ts_eng_cat (f.volumes, "/data/mark");
  _cleanup_free_ char *got = ts_read_file (mark);
  ck_assert_str_eq (got ? got : "", "first\n");
  /* the next task (no autoprovision: the volume exists) sees it; its scratch is its own */
  ts_eng_inject (&f, ARN_PREFIX "dv2", "none", DOCKER_VOLUMES ("second", ""));
  ts_eng_run_until (&f, ARN_PREFIX "dv2", "STOPPED", 15000);
  _cleanup_free_ char *two = wait_log ("dv2-app", "vol-done");
  ck_assert_msg (strstr (two, "seen=first scratch=0"), "%s", two);
  /* cleanup removes the task-scoped volume and keeps the shared one */
  cJSON_Delete (ts_eng_outbox (&f, ARN_PREFIX "dv2"));
  ts_eng_run_until (&f, ARN_PREFIX "dv2", "NONE", 5000);
  _cleanup_free_ char *scoped = ts_eng_cat (f.state, "/volumes/dv2/scratch");
  ck_assert_int_ne (access (scoped, F_OK), 0);
  free (got);
  got = ts_read_file (mark);
  ck_assert_str_eq (got ? got : "", "second\n");
  /* refused, each with a reason and without a container run: another driver, driver options,
   * a shared volume that does not exist without autoprovision */
  static const struct
  {
    const char *arn, *volume, *want;
  } refused[] = {
    { ARN_PREFIX "dv3", "{\"driver\":\"rexray/ebs\"}", "driver `rexray/ebs` is not supported" },
    { ARN_PREFIX "dv4", "{\"driverOpts\":{\"type\":\"nfs\"}}", "driverOpts" },
    { ARN_PREFIX "dv5", "{\"scope\":\"shared\"}", "does not exist" },
  };
  for (size_t i = 0; i < ARRAY_SIZE (refused); i++)
    {
      _cleanup_free_ char *containers = NULL;
      ck_assert_int_ge (asprintf (&containers,
                                  "[{\"name\":\"app\",\"image\":\"" IMAGE "\","
                                  "\"mountPoints\":[{\"sourceVolume\":\"v\","
                                  "\"containerPath\":\"/v\"}],"
                                  "\"command\":[\"busybox\",\"sleep\",\"60\"]}],"
                                  "\"volumes\":[{\"name\":\"v\",\"dockerVolumeConfiguration\":%s}]",
                                  refused[i].volume),
                        0);
      ts_eng_inject (&f, refused[i].arn, "none", containers);
      ts_eng_run_until (&f, refused[i].arn, "STOPPED", 5000);
      agent_engine_task_known (f.eng, refused[i].arn, &reason);
      ck_assert_msg (reason && strstr (reason, "ResourceInitializationError")
                         && strstr (reason, refused[i].want),
                     "%s", reason ? reason : "none");
      ck_assert_int_eq (ts_eng_code_of (&f, refused[i].arn, "app"), -1); /* never ran */
    }
  _cleanup_free_ char *never = ts_eng_cat (f.volumes, "/v");
  ck_assert_int_ne (access (never, F_OK), 0);
  const char *caps[32];
  size_t n = agent_capabilities (&f.cfg, caps, 32);
  bool local = false;
  for (size_t i = 0; i < n; i++)
    local = local || strcmp (caps[i], "ecs.capability.docker-plugin.local") == 0;
  ck_assert (local);
}
END_TEST

START_TEST (test_start_timeout_kills_a_start_that_hangs_and_stops_the_task)
{
  const char *arn = ARN_PREFIX "tmo1", *reason = NULL;
  /* a runtime that never answers: the shim's start hangs */
  free (f.runtime);
  f.runtime = ts_eng_cat (f.dir, "/hanging-runtime");
  FILE *fp = fopen (f.runtime, "we");
  ck_assert_ptr_nonnull (fp);
  fputs ("#!/bin/sh\nexec sleep 987.25\n", fp);
  fclose (fp);
  ck_assert_int_eq (chmod (f.runtime, 0755), 0);
  f.cfg.container_start_timeout_us = 1000000;
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"app\",\"image\":\"" IMAGE "\","
                 "\"command\":[\"busybox\",\"sleep\",\"60\"]}]");
  bool seen = false; /* the start is under way: the shim ran the runtime */
  for (int t = 0; t < 10000 && !(seen = ts_eng_process_with_arg ("987.25")); t += 20)
    ts_eng_run_for (&f, 20);
  ck_assert (seen);
  ts_eng_run_until (&f, arn, "STOPPED", 10000);
  agent_engine_task_known (f.eng, arn, &reason);
  ck_assert_msg (reason && strstr (reason, "CannotStartContainerError")
                     && strstr (reason, "ECS_CONTAINER_START_TIMEOUT"),
                 "%s", reason ? reason : "none");
  /* nothing of the start is left: neither the shim (its --id) nor the runtime it ran */
  for (int t = 0;
       t < 3000 && (ts_eng_process_with_arg ("987.25") || ts_eng_process_with_arg ("tmo1-app"));
       t += 20)
    ts_eng_run_for (&f, 20);
  ck_assert (!ts_eng_process_with_arg ("987.25"));
  ck_assert (!ts_eng_process_with_arg ("tmo1-app"));
}
END_TEST

START_TEST (test_start_timeout_leaves_a_normal_start_alone)
{
  const char *arn = ARN_PREFIX "tmo2";
  f.cfg.container_start_timeout_us = 5000000;
  ts_eng_open (&f);
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"app\",\"image\":\"" IMAGE "\","
                 "\"command\":[\"busybox\",\"sleep\",\"60\"]}]");
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  ts_eng_run_for (&f, 5500); /* past the timeout: the running container is not touched */
  ck_assert_str_eq (agent_engine_task_known (f.eng, arn, NULL), "RUNNING");
  ck_assert_int_gt (ts_eng_pid_of (&f, arn, "app"), 0);
}
END_TEST

/* Opens the mapped /dev/fuse for reading, then for writing (opening it is harmless). */
#define OPEN_DEV                                                                                   \
  "(: < /dev/xfuse) 2>/dev/null && echo read-ok || echo read-denied;"                              \
  " (: > /dev/xfuse) 2>/dev/null && echo write-ok || echo write-denied; echo dev-done;"            \
  " exec busybox sleep 60"

START_TEST (test_linux_parameters_devices_are_made_and_allowed_with_their_permissions)
{
  const char *arn = ARN_PREFIX "dev1";
  ck_assert_int_eq (access ("/dev/fuse", F_OK), 0);
  ts_eng_open (&f);
  ts_eng_inject (
      &f, arn, "none",
      "[{\"name\":\"ro\",\"image\":\"" IMAGE "\",\"linuxParameters\":{\"devices\":"
      "[{\"hostPath\":\"/dev/fuse\",\"containerPath\":\"/dev/xfuse\",\"permissions\":[\"read\"]}]},"
      "\"command\":[\"sh\",\"-c\",\"" OPEN_DEV "\"]},"
      "{\"name\":\"rw\",\"image\":\"" IMAGE "\",\"linuxParameters\":{\"devices\":"
      "[{\"hostPath\":\"/dev/fuse\",\"containerPath\":\"/dev/xfuse\"}]},"
      "\"command\":[\"sh\",\"-c\",\"" OPEN_DEV "\"]},"
      "{\"name\":\"none\",\"image\":\"" IMAGE "\","
      "\"command\":[\"sh\",\"-c\",\"busybox mknod /dev/xfuse c 10 229; " OPEN_DEV "\"]}]");
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  _cleanup_free_ char *ro = wait_log ("dev1-ro", "dev-done");
  ck_assert_msg (strstr (ro, "read-ok") && strstr (ro, "write-denied"), "%s", ro);
  _cleanup_free_ char *rw = wait_log ("dev1-rw", "dev-done");
  ck_assert_msg (strstr (rw, "read-ok") && strstr (rw, "write-ok"), "%s", rw);
  /* without the device in its definition, a node it makes itself is not usable */
  _cleanup_free_ char *none = wait_log ("dev1-none", "dev-done");
  ck_assert_msg (strstr (none, "read-denied") && strstr (none, "write-denied"), "%s", none);
}
END_TEST

/* ---- PublishHealth to berth-control ---- */

#define RESOURCES                                                                                  \
  "'[{\"name\":\"CPU\",\"type\":\"INTEGER\",\"integerValue\":1024},"                               \
  "{\"name\":\"MEMORY\",\"type\":\"INTEGER\",\"integerValue\":2048},"                              \
  "{\"name\":\"PORTS\",\"type\":\"STRINGSET\",\"stringSetValue\":[]},"                             \
  "{\"name\":\"PORTS_UDP\",\"type\":\"STRINGSET\",\"stringSetValue\":[]}]'"

static int no_containers (void *userdata, agent_container_cgroup **out, size_t *n)
{
  (void)userdata;
  *out = NULL;
  *n = 0;
  return 0;
}

static int engine_health (void *userdata, cJSON **tasks)
{
  berr *err = NULL;
  int r = agent_engine_health_tasks (userdata, tasks, &err);
  berr_free (&err);
  return r;
}

/* The healthStatus berth-control shows for the task's first container ("" when none). */
static char *described_health (ts_cp *cp, const char *arn)
{
  cJSON *j = ts_cp_aws_ok (cp, "describe-tasks --cluster c --tasks %s", arn);
  const cJSON *t = cJSON_GetArrayItem (cJSON_GetObjectItem (j, "tasks"), 0);
  const cJSON *c = cJSON_GetArrayItem (cJSON_GetObjectItem (t, "containers"), 0);
  const char *h = cJSON_GetStringValue (cJSON_GetObjectItem (c, "healthStatus"));
  char *out = strdup (h ? h : "");
  cJSON_Delete (j);
  return out;
}

START_TEST (test_container_health_reaches_berth_control_as_publish_health)
{
  ts_cp cp;
  berr *err = NULL;
  char arn[512], creds_env[600], url[64];
  ts_cp_setup (&cp);
  cJSON_Delete (ts_cp_aws_ok (&cp, "create-cluster --cluster-name c"));
  cJSON_Delete (ts_cp_aws_ok (
      &cp, "register-task-definition --family hc --network-mode none --container-definitions "
           "'[{\"name\":\"app\",\"image\":\"" IMAGE "\",\"memory\":32}]'"));
  cJSON *j
      = ts_cp_aws_ok (&cp, "register-container-instance --cluster c --profile agent "
                           "--total-resources " RESOURCES " --version-info agentVersion=0.1.0");
  char inst[512];
  snprintf (inst, sizeof inst, "%s",
            ts_json_str (cJSON_GetObjectItem (j, "containerInstance"), "containerInstanceArn"));
  cJSON_Delete (j);
  j = ts_cp_aws_ok (&cp, "run-task --cluster c --task-definition hc");
  snprintf (arn, sizeof arn, "%s",
            ts_json_str (cJSON_GetArrayItem (cJSON_GetObjectItem (j, "tasks"), 0), "taskArn"));
  cJSON_Delete (j);
  snprintf (creds_env, sizeof creds_env, "AWS_SHARED_CREDENTIALS_FILE=%s/credentials", cp.dir);
  char *envp[] = { creds_env, "AWS_PROFILE=agent", NULL };
  ts_eng_ok (agent_credprov_new (envp, &f.creds, &err), &err);
  snprintf (url, sizeof url, "http://127.0.0.1:%d", cp.port);
  agent_http_opts ho = { .endpoint = url, .region = "us-east-1", .creds = f.creds };
  ts_eng_ok (agent_http_new (f.ev, &ho, &f.http, &err), &err);
  ts_eng_open (&f);
  /* the agent's copy has a fast check (berth-control validates ECS's 5 s minimum) */
  ts_eng_inject (&f, arn, "none",
                 "[{\"name\":\"app\",\"image\":\"" IMAGE "\",\"memory\":32,"
                 "\"command\":[\"busybox\",\"sleep\",\"60\"],"
                 "\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"exit 0\"],\"interval\":0.2}}]");
  ts_eng_run_until (&f, arn, "RUNNING", 10000);
  for (int t = 0; t < 5000; t += 20)
    {
      const char *h = agent_engine_container_health (f.eng, arn, "app", NULL);
      if (h && strcmp (h, "HEALTHY") == 0)
        break;
      ts_eng_run_for (&f, 20);
    }
  _cleanup_json_ cJSON *tasks = NULL;
  ts_eng_ok (agent_engine_health_tasks (f.eng, &tasks, &err), &err);
  const cJSON *c0
      = cJSON_GetArrayItem (cJSON_GetObjectItem (cJSON_GetArrayItem (tasks, 0), "containers"), 0);
  ck_assert_str_eq (ts_json_str (c0, "healthStatus"), "HEALTHY");
  ck_assert (cJSON_GetNumberValue (cJSON_GetObjectItem (c0, "statusSince")) > 1e9);
  agent_telemetry_opts to = { .ev = f.ev,
                              .http = f.http,
                              .interval_us = 3600ULL * 1000000,
                              .gather = no_containers,
                              .gather_health = engine_health,
                              .userdata = f.eng };
  agent_telemetry *tel = NULL;
  ts_eng_ok (agent_telemetry_start (&to, "c", inst, &tel, &err), &err);
  ck_assert_ptr_nonnull (tel);
  agent_telemetry_collect (tel);
  for (int t = 0; t < 10000 && agent_telemetry_health_published (tel) == 0; t += 20)
    ts_eng_run_for (&f, 20);
  ck_assert_uint_eq (agent_telemetry_health_published (tel), 1);
  _cleanup_free_ char *h = described_health (&cp, arn);
  ck_assert_str_eq (h, "HEALTHY");
  agent_telemetry_free (tel);
  agent_engine_free (f.eng);
  f.eng = NULL;
  ts_cp_teardown (&cp);
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
  tcase_add_unchecked_fixture (tc, eng_suite_setup, eng_suite_teardown);
  tcase_add_checked_fixture (tc, eng_setup, eng_teardown);
  tcase_add_test (tc,
                  test_privileged_container_has_every_capability_and_device_but_keeps_its_limits);
  tcase_add_test (tc, test_disable_privileged_stops_the_task_and_drops_the_capability);
  tcase_add_test (tc, test_restart_policy_restarts_in_place_until_an_ignored_exit_code);
  tcase_add_test (tc, test_restart_policy_skips_early_exits_and_stopping_tasks);
  tcase_add_test (tc, test_init_process_reaps_orphans_and_forwards_the_stop_signal);
  tcase_add_test (tc, test_init_process_exits_with_the_command_status);
  tcase_add_test (tc, test_volumes_from_mounts_every_volume_of_the_source_and_honours_read_only);
  tcase_add_test (tc, test_volumes_from_an_unknown_container_stops_the_task);
  tcase_add_test (tc, test_docker_volumes_task_scoped_and_shared_and_what_is_refused);
  tcase_add_test (tc, test_start_timeout_kills_a_start_that_hangs_and_stops_the_task);
  tcase_add_test (tc, test_start_timeout_leaves_a_normal_start_alone);
  tcase_add_test (tc, test_container_health_reaches_berth_control_as_publish_health);
  tcase_add_test (tc, test_linux_parameters_devices_are_made_and_allowed_with_their_permissions);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
