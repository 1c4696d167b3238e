/* berth-shim with real containers: exit status, signals, json-file logs and rotation, OOM
 * kills, footprint, re-attach and start failures. The runtime is $BUILD/bin/berth-runtime
 * (BERTH_SHIM_TEST_RUNTIME overrides it, e.g. /usr/sbin/runc). */
#include "lib/clock.h"
#include "lib/fs.h"
#include "tests/support/support.h"

#include <cJSON.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FINISH_TIMEOUT_MS 30000

/* The fixture of the running test (each test runs in its own forked process). */
static struct
{
  char *dir, *bundle, *state, *rtroot, *runtime, *shim, *tmpfs;
  char id[64];
} fx;

/* Holds one directory per test; set up and removed by the parent process, which also runs
 * when a failed assertion has ended a test before its own teardown. */
static char *base_dir;

static char *path_in (const char *dir, const char *name)
{
  char *p = NULL;
  ck_assert_int_ge (asprintf (&p, "%s/%s", dir, name), 0);
  return p;
}

static char *test_runtime (void)
{
  const char *rt = getenv ("BERTH_SHIM_TEST_RUNTIME");
  return rt && *rt ? strdup (rt) : ts_bin ("berth-runtime");
}

static void suite_setup (void)
{
  base_dir = ts_mkdtemp ("shim");
}

/* Whatever a failed test left: its container, its tmpfs mounts, its files. */
static void suite_teardown (void)
{
  char *runtime = test_runtime ();
  DIR *d = opendir (base_dir);
  for (struct dirent *de; d && (de = readdir (d)) != NULL;)
    {
      if (de->d_name[0] == '.')
        continue;
      char *dir = NULL, *idf = NULL, *root = NULL, *m1 = NULL, *m2 = NULL;
      if (asprintf (&dir, "%s/%s", base_dir, de->d_name) < 0 || asprintf (&idf, "%s/id", dir) < 0
          || asprintf (&root, "%s/rtroot", dir) < 0 || asprintf (&m1, "%s/small", dir) < 0
          || asprintf (&m2, "%s/full", dir) < 0)
        abort ();
      char *id = ts_read_file (idf);
      char *argv[] = { runtime, "--root", root, "delete", "--force", id, NULL };
      if (id)
        ts_run (argv, NULL, NULL);
      umount2 (m1, MNT_DETACH);
      umount2 (m2, MNT_DETACH);
      free (id);
      free (dir);
      free (idf);
      free (root);
      free (m1);
      free (m2);
    }
  if (d)
    closedir (d);
  ts_rmtree (base_dir);
  free (base_dir);
  free (runtime);
}

static void setup (void)
{
  /* The shim's invoker exits at once, so the shim is handed to us: reap it instead of leaving
   * zombies (this machine's init does not reap). */
  ck_assert_int_eq (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
  memset (&fx, 0, sizeof fx);
  snprintf (fx.id, sizeof fx.id, "shimtest-%d", (int)getpid ());
  fx.dir = path_in (base_dir, fx.id);
  ck_assert_int_eq (mkdir (fx.dir, 0700), 0);
  fx.bundle = path_in (fx.dir, "bundle");
  fx.state = path_in (fx.dir, "state");
  fx.rtroot = path_in (fx.dir, "rtroot");
  fx.runtime = test_runtime ();
  fx.shim = ts_bin ("berth-shim");
  char *idf = path_in (fx.dir, "id");
  berr *err = NULL;
  ck_assert_int_eq (bfs_write_atomic (AT_FDCWD, idf, fx.id, strlen (fx.id), 0644, &err), 0);
  free (idf);
  ck_assert_msg (access (fx.shim, X_OK) == 0, "%s is not built", fx.shim);
  ck_assert_msg (access (fx.runtime, X_OK) == 0, "runtime %s is not built", fx.runtime);
}

static void reap_children (void)
{
  for (int i = 0; i < 100; i++)
    {
      pid_t p = waitpid (-1, NULL, WNOHANG);
      if (p < 0)
        return;
      if (p == 0)
        {
          struct timespec ts = { 0, 20 * 1000 * 1000 };
          nanosleep (&ts, NULL);
        }
    }
}

static void teardown (void)
{
  char *argv[] = { fx.runtime, "--root", fx.rtroot, "delete", "--force", fx.id, NULL };
  ts_run (argv, NULL, NULL);
  reap_children ();
  if (fx.tmpfs)
    umount2 (fx.tmpfs, MNT_DETACH);
  ts_rmtree (fx.dir);
  free (fx.dir);
  free (fx.bundle);
  free (fx.state);
  free (fx.rtroot);
  free (fx.runtime);
  free (fx.shim);
  free (fx.tmpfs);
}

static cJSON *mount_entry (const char *dst, const char *type, const char *src, const char *opts)
{
  cJSON *m = cJSON_CreateObject ();
  cJSON_AddStringToObject (m, "destination", dst);
  cJSON_AddStringToObject (m, "type", type);
  cJSON_AddStringToObject (m, "source", src);
  cJSON *o = cJSON_AddArrayToObject (m, "options");
  char *copy = strdup (opts), *save = NULL;
  for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save))
    cJSON_AddItemToArray (o, cJSON_CreateString (t));
  free (copy);
  return m;
}

static cJSON *linux_section (long long mem_limit, bool pid_ns)
{
  cJSON *lx = cJSON_CreateObject ();
  cJSON *ns = cJSON_AddArrayToObject (lx, "namespaces");
  const char *types[] = { "ipc", "uts", "mount", "network", "pid" };
  for (size_t i = 0; i < sizeof types / sizeof types[0] - !pid_ns; i++)
    {
      cJSON *n = cJSON_CreateObject ();
      cJSON_AddStringToObject (n, "type", types[i]);
      cJSON_AddItemToArray (ns, n);
    }
  /* Its own cgroup, so limits apply and OOM kills are counted for this container alone. */
  char cgpath[128];
  snprintf (cgpath, sizeof cgpath, "/berth-shim-test-%s", fx.id);
  cJSON_AddStringToObject (lx, "cgroupsPath", cgpath);
  if (mem_limit > 0)
    {
      cJSON *mem = cJSON_AddObjectToObject (cJSON_AddObjectToObject (lx, "resources"), "memory");
      cJSON_AddNumberToObject (mem, "limit", (double)mem_limit);
      cJSON_AddNumberToObject (mem, "swap", (double)mem_limit); /* no swap beyond the limit */
    }
  return lx;
}

/* A minimal OCI bundle running `sh -c script` in the busybox rootfs. */
static void write_bundle_ns (const char *script, long long mem_limit, bool pid_ns)
{
  ck_assert_int_eq (mkdir (fx.bundle, 0755), 0);
  char *rootfs = ts_rootfs ();
  cJSON *c = cJSON_CreateObject ();
  cJSON_AddStringToObject (c, "ociVersion", "1.0.2");
  cJSON *p = cJSON_AddObjectToObject (c, "process");
  cJSON_AddBoolToObject (p, "terminal", 0);
  cJSON *user = cJSON_AddObjectToObject (p, "user");
  cJSON_AddNumberToObject (user, "uid", 0);
  cJSON_AddNumberToObject (user, "gid", 0);
  const char *args[] = { "sh", "-c", script };
  cJSON_AddItemToObject (p, "args", cJSON_CreateStringArray (args, 3));
  const char *env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root" };
  cJSON_AddItemToObject (p, "env", cJSON_CreateStringArray (env, 2));
  cJSON_AddStringToObject (p, "cwd", "/");
  cJSON_AddBoolToObject (p, "noNewPrivileges", 1);
  cJSON *root = cJSON_AddObjectToObject (c, "root");
  cJSON_AddStringToObject (root, "path", rootfs);
  cJSON_AddBoolToObject (root, "readonly", 1);
  cJSON_AddStringToObject (c, "hostname", "shimtest");
  cJSON *mounts = cJSON_AddArrayToObject (c, "mounts");
  cJSON_AddItemToArray (mounts, mount_entry ("/proc", "proc", "proc", "nosuid,noexec,nodev"));
  cJSON_AddItemToArray (
      mounts, mount_entry ("/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k"));
  cJSON_AddItemToArray (mounts, mount_entry ("/dev/pts", "devpts", "devpts",
                                             "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620"));
  cJSON_AddItemToArray (mounts, mount_entry ("/tmp", "tmpfs", "tmpfs", "nosuid,nodev,mode=1777"));
  cJSON_AddItemToArray (mounts, mount_entry ("/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,ro"));
  cJSON_AddItemToObject (c, "linux", linux_section (mem_limit, pid_ns));
  char *text = cJSON_Print (c);
  char *cfg = path_in (fx.bundle, "config.json");
  berr *err = NULL;
  ck_assert_msg (bfs_write_atomic (AT_FDCWD, cfg, text, strlen (text), 0644, &err) == 0, "%s",
                 err ? err->msg : "");
  free (cfg);
  free (text);
  free (rootfs);
  cJSON_Delete (c);
}

static void write_bundle (const char *script, long long mem_limit)
{
  write_bundle_ns (script, mem_limit, true);
}

/* Runs the shim (its invoker) with the common options plus extra (NULL-terminated). */
static int run_shim (const char *const *extra, char **out)
{
  const char *argv[32]
      = { fx.shim,    "--id",           fx.id,     "--state-dir", fx.state, "--runtime",
          fx.runtime, "--runtime-root", fx.rtroot, "--bundle",    fx.bundle };
  size_t n = 11;
  for (size_t i = 0; extra && extra[i] && n < 31; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  int status = 0;
  ck_assert_int_eq (ts_run ((char *const *)argv, out, &status), 0);
  return ts_exit_code (status);
}

/* Starts the container; returns its pid as printed by the invoker. */
static pid_t start (const char *const *extra)
{
  char *out = NULL;
  int code = run_shim (extra, &out);
  ck_assert_msg (code == 0, "berth-shim exited %d: %s", code, out);
  long pid = strtol (out, NULL, 10);
  ck_assert_msg (pid > 1, "berth-shim printed `%s`", out);
  free (out);
  return (pid_t)pid;
}

static char *state_file (const char *name)
{
  char *p = path_in (fx.state, name);
  char *s = ts_read_file (p);
  free (p);
  return s;
}

static cJSON *read_state (void)
{
  char *text = state_file ("state.json");
  ck_assert_msg (text != NULL, "no state.json");
  cJSON *j = cJSON_Parse (text);
  ck_assert_msg (j != NULL, "state.json is not JSON: %s", text);
  free (text);
  return j;
}

static const char *jstr (const cJSON *j, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (j, key);
  return cJSON_IsString (v) ? v->valuestring : NULL;
}

static double jnum (const cJSON *j, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (j, key);
  ck_assert_msg (cJSON_IsNumber (v), "state key %s is not a number", key);
  return v->valuedouble;
}

static pid_t shim_pid (void)
{
  char *text = state_file ("shim.pid");
  ck_assert_msg (text != NULL, "no shim.pid");
  pid_t pid = (pid_t)strtol (text, NULL, 10);
  free (text);
  return pid;
}

/* Under ASan+UBSan the shim's own reports land in shim.log. */
static void check_shim_log_clean (void)
{
  char *log = state_file ("shim.log");
  ck_assert_ptr_nonnull (log);
  ck_assert_msg (!strstr (log, "Sanitizer") && !strstr (log, "runtime error"), "shim.log: %s", log);
  free (log);
}

/* The re-attach protocol of docs/shim.md: wait on a pidfd of the shim, then read state.json.
 * The shim is our child here only because the test is a subreaper, so reap it as well. */
static cJSON *wait_final_state (void)
{
  pid_t pid = shim_pid ();
  int pidfd = (int)syscall (SYS_pidfd_open, pid, 0);
  if (pidfd >= 0)
    {
      struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
      ck_assert_msg (poll (&pfd, 1, FINISH_TIMEOUT_MS) == 1, "the shim did not exit in time");
      close (pidfd);
    }
  waitpid (pid, NULL, 0);
  check_shim_log_clean ();
  cJSON *st = read_state ();
  ck_assert_str_eq (jstr (st, "status"), "stopped");
  return st;
}

/* Every line of a log file, each parsed; asserts the json-file shape. Returns a cJSON array. */
static cJSON *read_log_records (const char *path)
{
  char *text = ts_read_file (path);
  ck_assert_msg (text != NULL, "no log file %s", path);
  cJSON *all = cJSON_CreateArray ();
  char *save = NULL;
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      cJSON *r = cJSON_Parse (line);
      ck_assert_msg (r != NULL, "log line is not JSON: %s", line);
      ck_assert_int_eq (cJSON_GetArraySize (r), 3);
      ck_assert_ptr_nonnull (jstr (r, "log"));
      const char *stream = jstr (r, "stream");
      ck_assert_msg (stream && (!strcmp (stream, "stdout") || !strcmp (stream, "stderr")),
                     "bad stream in %s", line);
      int64_t ns = 0;
      ck_assert_msg (jstr (r, "time") && bclock_parse_rfc3339 (jstr (r, "time"), &ns) == 0,
                     "bad time in %s", line);
      cJSON_AddItemToArray (all, r);
    }
  free (text);
  return all;
}

static cJSON *find_record (const cJSON *recs, const char *log)
{
  const cJSON *r;
  cJSON_ArrayForEach (r, recs) if (strcmp (jstr (r, "log"), log) == 0) return (cJSON *)r;
  return NULL;
}

START_TEST (test_exit_code_is_recorded)
{
  write_bundle ("exit 3", 0);
  pid_t pid = start (NULL);
  cJSON *st = wait_final_state ();
  ck_assert_str_eq (jstr (st, "id"), fx.id);
  ck_assert_int_eq ((int)jnum (st, "pid"), pid);
  ck_assert_int_eq ((int)jnum (st, "shimPid"), shim_pid ());
  ck_assert_int_eq ((int)jnum (st, "exitCode"), 3);
  ck_assert (cJSON_IsNull (cJSON_GetObjectItem (st, "signal")));
  ck_assert (cJSON_IsFalse (cJSON_GetObjectItem (st, "oomKilled")));
  ck_assert (cJSON_IsNull (cJSON_GetObjectItem (st, "error")));
  int64_t started = 0, finished = 0;
  ck_assert_int_eq (bclock_parse_rfc3339 (jstr (st, "startedAt"), &started), 0);
  ck_assert_int_eq (bclock_parse_rfc3339 (jstr (st, "finishedAt"), &finished), 0);
  ck_assert (finished >= started);
  cJSON_Delete (st);
}
END_TEST

START_TEST (test_sigkill_is_recorded_as_signal_kill_and_137)
{
  write_bundle ("sleep 100", 0);
  pid_t pid = start (NULL);
  ck_assert_int_eq (kill (pid, SIGKILL), 0);
  cJSON *st = wait_final_state ();
  ck_assert_str_eq (jstr (st, "signal"), "KILL");
  ck_assert_int_eq ((int)jnum (st, "exitCode"), 137);
  ck_assert (cJSON_IsFalse (cJSON_GetObjectItem (st, "oomKilled")));
  cJSON_Delete (st);
}
END_TEST

START_TEST (test_exit_recorded_while_grandchild_holds_output_open)
{
  /* Without a pid namespace the background sleep outlives the container's main process and
   * keeps its stdout open: the shim must record the exit anyway, not wait for end of file. */
  write_bundle_ns ("sleep 30 & echo grandchild $!; exit 6", 0, false);
  start (NULL);
  cJSON *st = wait_final_state ();
  ck_assert_int_eq ((int)jnum (st, "exitCode"), 6);
  char *log = state_file ("container.log");
  char *p = log ? strstr (log, "grandchild ") : NULL;
  ck_assert_msg (p != NULL, "log: %s", log);
  kill ((pid_t)strtol (p + 11, NULL, 10), SIGKILL);
  free (log);
  cJSON_Delete (st);
}
END_TEST

static bool file_exists (void *path)
{
  return access (path, F_OK) == 0;
}

START_TEST (test_shim_outlives_invoker_killed_right_after_start)
{
  write_bundle ("sleep 1; exit 7", 0);
  /* A runtime that takes half a second, so the invoker is surely still waiting when killed. */
  char *slow = path_in (fx.dir, "slow-runtime");
  FILE *f = fopen (slow, "w");
  ck_assert_ptr_nonnull (f);
  fprintf (f, "#!/bin/sh\nsleep 0.5\nexec '%s' \"$@\"\n", fx.runtime);
  fclose (f);
  ck_assert_int_eq (chmod (slow, 0755), 0);
  pid_t invoker = fork ();
  ck_assert_int_ge (invoker, 0);
  if (invoker == 0)
    {
      int null = open ("/dev/null", O_WRONLY);
      dup2 (null, 1);
      dup2 (null, 2);
      execl (fx.shim, fx.shim, "--id", fx.id, "--state-dir", fx.state, "--runtime", slow,
             "--runtime-root", fx.rtroot, "--bundle", fx.bundle, (char *)NULL);
      _exit (127);
    }
  char *pidfile = path_in (fx.state, "shim.pid");
  ck_assert (ts_wait_for (file_exists, pidfile, 10000));
  kill (invoker, SIGKILL);
  int status = 0;
  ck_assert_int_eq (waitpid (invoker, &status, 0), invoker);
  ck_assert (WIFSIGNALED (status));
  cJSON *st = wait_final_state ();
  ck_assert_int_eq ((int)jnum (st, "exitCode"), 7);
  cJSON_Delete (st);
  free (pidfile);
  free (slow);
}
END_TEST

static bool log_has (void *needle)
{
  char *log = state_file ("container.log");
  bool found = log && strstr (log, needle);
  free (log);
  return found;
}

START_TEST (test_sigterm_to_shim_reaches_container)
{
  write_bundle ("trap 'echo got-term; exit 0' TERM; echo ready; "
                "while :; do sleep 1 & wait $!; done",
                0);
  start (NULL);
  ck_assert (ts_wait_for (log_has, "ready", 10000));
  ck_assert_int_eq (kill (shim_pid (), SIGTERM), 0);
  cJSON *st = wait_final_state ();
  ck_assert_int_eq ((int)jnum (st, "exitCode"), 0);
  ck_assert (cJSON_IsNull (cJSON_GetObjectItem (st, "signal")));
  ck_assert (log_has ("got-term"));
  cJSON_Delete (st);
}
END_TEST

START_TEST (test_json_file_log_streams_escaping_and_long_line_split)
{
  write_bundle ("echo out-line; echo err-line >&2; "
                "printf 'q\"b\\\\s\\ttab\\001ctl\\033esc\\r\\n'; "
                "printf '\\303\\251 \\377\\376raw\\n'; "
                "head -c 40000 /dev/zero | tr '\\0' a; echo; printf no-newline",
                0);
  start (NULL);
  cJSON_Delete (wait_final_state ());
  char *path = path_in (fx.state, "container.log");
  char *raw = ts_read_file (path);
  ck_assert_ptr_nonnull (strstr (raw, "\\u0001ctl\\u001besc\\r\\n"));
  cJSON *recs = read_log_records (path);
  cJSON *r = find_record (recs, "out-line\n");
  ck_assert_msg (r != NULL, "no stdout line in %s", raw);
  ck_assert_str_eq (jstr (r, "stream"), "stdout");
  ck_assert_ptr_nonnull ((r = find_record (recs, "err-line\n")));
  ck_assert_str_eq (jstr (r, "stream"), "stderr");
  ck_assert_ptr_nonnull (find_record (recs, "q\"b\\s\ttab\001ctl\033esc\r\n"));
  ck_assert_ptr_nonnull (find_record (recs, "\303\251 \377\376raw\n")); /* bytes kept as is */
  ck_assert_ptr_nonnull (find_record (recs, "no-newline"));
  /* The 40000-byte line: pieces of at most 16 KiB, only the last ends in \n. */
  size_t total = 0, pieces = 0;
  const cJSON *it;
  cJSON_ArrayForEach (it, recs)
  {
    const char *log = jstr (it, "log");
    size_t len = strlen (log);
    if (log[0] != 'a')
      continue;
    ck_assert_uint_le (len, 16384);
    ck_assert_uint_eq (strspn (log, "a"), len - (log[len - 1] == '\n'));
    ck_assert (log[len - 1] != '\n' || total + len == 40001);
    total += len;
    pieces++;
  }
  ck_assert_uint_eq (total, 40001);
  ck_assert_uint_eq (pieces, 3);
  cJSON_Delete (recs);
  free (raw);
  free (path);
}
END_TEST

/* Counts container.log and its rotations; asserts each is within max and at most max_files. */
static int check_log_files (const char *base, size_t max_size, int max_files)
{
  int n = 0;
  for (int i = 0; i < max_files + 3; i++)
    {
      char *p = NULL;
      ck_assert_int_ge (i ? asprintf (&p, "%s.%d", base, i) : asprintf (&p, "%s", base), 0);
      struct stat st;
      if (stat (p, &st) == 0)
        {
          ck_assert_msg (i < max_files, "%s exists: more than %d files", p, max_files);
          ck_assert_msg ((size_t)st.st_size <= max_size, "%s is %lld bytes", p,
                         (long long)st.st_size);
          n++;
        }
      free (p);
    }
  return n;
}

START_TEST (test_rotation_keeps_three_files_within_max_size_under_fast_writer)
{
  /* About 2.5 MB in a burst, then a marker: the writer must never wait for the log. */
  write_bundle ("yes 0123456789abcdefghijklmnopqrstuvwxyz | head -n 60000; echo done-writing", 0);
  const char *extra[] = { "--log-max-size", "65536", "--log-max-files", "3", NULL };
  start (extra);
  char *base = path_in (fx.state, "container.log");
  pid_t shim = shim_pid ();
  for (int i = 0; i < 200 && kill (shim, 0) == 0; i++)
    {
      check_log_files (base, 65536, 3);
      struct timespec ts = { 0, 5 * 1000 * 1000 };
      nanosleep (&ts, NULL);
    }
  cJSON *st = wait_final_state ();
  ck_assert_int_eq ((int)jnum (st, "exitCode"), 0);
  ck_assert_int_eq ((int)jnum (st, "logDroppedLines"), 0);
  int64_t started = 0, finished = 0;
  bclock_parse_rfc3339 (jstr (st, "startedAt"), &started);
  bclock_parse_rfc3339 (jstr (st, "finishedAt"), &finished);
  ck_assert_msg (finished - started < 10LL * 1000000000, "the writer took %lld ms",
                 (long long)((finished - started) / 1000000));
  ck_assert_int_eq (check_log_files (base, 65536, 3), 3);
  cJSON *recs = read_log_records (base);
  ck_assert_ptr_nonnull (find_record (recs, "done-writing\n"));
  for (int i = 1; i < 3; i++)
    {
      char *p = NULL;
      ck_assert_int_ge (asprintf (&p, "%s.%d", base, i), 0);
      cJSON_Delete (read_log_records (p));
      free (p);
    }
  cJSON_Delete (recs);
  cJSON_Delete (st);
  free (base);
}
END_TEST

START_TEST (test_full_disk_drops_whole_lines_and_counts_them)
{
  /* The log lives on a 64 KiB tmpfs: writes fail with ENOSPC long before the output ends. */
  fx.tmpfs = path_in (fx.dir, "small");
  ck_assert_int_eq (mkdir (fx.tmpfs, 0755), 0);
  ck_assert_int_eq (mount ("tmpfs", fx.tmpfs, "tmpfs", 0, "size=64k"), 0);
  char *logf = path_in (fx.tmpfs, "c.log");
  write_bundle ("yes 0123456789abcdefghijklmnopqrstuvwxyz | head -n 20000; exit 4", 0);
  const char *extra[] = { "--log-file", logf, NULL };
  start (extra);
  cJSON *st = wait_final_state ();
  ck_assert_int_eq ((int)jnum (st, "exitCode"), 4);
  ck_assert_int_gt ((int)jnum (st, "logDroppedLines"), 0);
  cJSON *recs = read_log_records (logf); /* what was kept is whole records only */
  ck_assert_int_eq (cJSON_GetArraySize (recs) + (int)jnum (st, "logDroppedLines"), 20000);
  cJSON_Delete (recs);
  cJSON_Delete (st);
  free (logf);
}
END_TEST

START_TEST (test_log_write_failure_keeps_existing_log_content)
{
  /* A full tmpfs holding an earlier run's log: every new record fails, none may cut into it. */
  fx.tmpfs = path_in (fx.dir, "full");
  ck_assert_int_eq (mkdir (fx.tmpfs, 0755), 0);
  ck_assert_int_eq (mount ("tmpfs", fx.tmpfs, "tmpfs", 0, "size=64k"), 0);
  char *logf = path_in (fx.tmpfs, "c.log");
  const char rec[] = "{\"log\":\"before\\n\",\"stream\":\"stdout\",\"time\":"
                     "\"2026-01-01T00:00:00.000000000Z\"}\n";
  FILE *f = fopen (logf, "w");
  ck_assert_ptr_nonnull (f);
  for (size_t total = 0; total + sizeof rec - 1 <= 65536; total += sizeof rec - 1)
    fputs (rec, f);
  ck_assert_int_eq (fclose (f), 0);
  char *before = ts_read_file (logf);
  write_bundle ("i=0; while [ $i -lt 100 ]; do "
                "echo line-$i-0123456789012345678901234567890123456789012345678901234567890123"
                "45678901234567890123456789012345678901234567890123456789; i=$((i+1)); done",
                0);
  const char *extra[] = { "--log-file", logf, NULL };
  start (extra);
  cJSON *st = wait_final_state ();
  ck_assert_int_eq ((int)jnum (st, "exitCode"), 0);
  ck_assert_int_eq ((int)jnum (st, "logDroppedLines"), 100);
  char *after = ts_read_file (logf);
  ck_assert_str_eq (after, before);
  cJSON_Delete (st);
  free (before);
  free (after);
  free (logf);
}
END_TEST

START_TEST (test_oom_kill_is_reported)
{
  /* The shell itself holds the command substitution's output: it is the one the OOM killer
   * picks, and it is the container's process. */
  write_bundle ("x=$(yes 0123456789012345678901234567890123456789 | head -c 200000000); "
                "echo survived",
                32LL << 20);
  start (NULL);
  cJSON *st = wait_final_state ();
  ck_assert_str_eq (jstr (st, "signal"), "KILL");
  ck_assert_int_eq ((int)jnum (st, "exitCode"), 137);
  char *log = state_file ("shim.log");
  ck_assert_msg (cJSON_IsTrue (cJSON_GetObjectItem (st, "oomKilled")), "shim.log: %s", log);
  free (log);
  cJSON_Delete (st);
}
END_TEST

static long vm_rss_kib (pid_t pid)
{
  char path[64];
  snprintf (path, sizeof path, "/proc/%d/status", (int)pid);
  char *s = ts_read_file (path);
  ck_assert_ptr_nonnull (s);
  char *p = strstr (s, "VmRSS:");
  ck_assert_ptr_nonnull (p);
  long kib = strtol (p + 6, NULL, 10);
  free (s);
  return kib;
}

START_TEST (test_idle_shim_rss_is_at_most_512_kib)
{
  write_bundle ("echo hello; sleep 100", 0);
  pid_t pid = start (NULL);
  ck_assert (ts_wait_for (log_has, "hello", 10000));
  long kib = vm_rss_kib (shim_pid ());
  printf ("idle berth-shim VmRSS: %ld KiB\n", kib);
#if defined(__SANITIZE_ADDRESS__)
  /* ASan's shadow memory alone is megabytes; the target applies to the musl build. */
  ck_assert_int_gt (kib, 0);
#else
  ck_assert_msg (kib <= 512, "idle shim RSS is %ld KiB", kib);
#endif
  kill (pid, SIGKILL);
  cJSON_Delete (wait_final_state ());
}
END_TEST

/* What a restarted agent does: find the shim from the state directory and make sure the pid
 * really is this container's berth-shim. */
static void check_shim_identity (pid_t pid)
{
  char path[64];
  snprintf (path, sizeof path, "/proc/%d/comm", (int)pid);
  char *comm = ts_read_file (path);
  ck_assert_ptr_nonnull (comm);
  ck_assert_str_eq (comm, "berth-shim\n");
  free (comm);
  snprintf (path, sizeof path, "/proc/%d/cmdline", (int)pid);
  char *cmd = NULL;
  size_t len = 0;
  berr *err = NULL;
  ck_assert_int_eq (bfs_read_all (AT_FDCWD, path, 65536, &cmd, &len, &err), 0);
  bool found = false;
  for (size_t off = 0; off < len; off += strlen (cmd + off) + 1)
    if (strcmp (cmd + off, "--id") == 0 && off + 5 < len)
      found = strcmp (cmd + off + 5, fx.id) == 0;
  ck_assert_msg (found, "the shim's command line does not carry --id %s", fx.id);
  free (cmd);
}

START_TEST (test_reattach_reads_running_state_then_final_state)
{
  write_bundle ("sleep 2; exit 5", 0);
  pid_t pid = start (NULL);
  pid_t shim = shim_pid ();
  ck_assert_int_eq (kill (shim, 0), 0);
  check_shim_identity (shim);
  cJSON *st = read_state ();
  ck_assert_str_eq (jstr (st, "status"), "running");
  ck_assert_int_eq ((int)jnum (st, "pid"), pid);
  ck_assert (cJSON_IsNull (cJSON_GetObjectItem (st, "exitCode")));
  ck_assert (cJSON_IsNull (cJSON_GetObjectItem (st, "finishedAt")));
  cJSON_Delete (st);
  st = wait_final_state ();
  ck_assert_int_eq ((int)jnum (st, "exitCode"), 5);
  ck_assert_int_eq ((int)jnum (st, "pid"), pid);
  cJSON_Delete (st);
}
END_TEST

START_TEST (test_second_shim_refuses_a_state_dir_in_use)
{
  write_bundle ("sleep 100", 0);
  pid_t pid = start (NULL);
  char *out = NULL;
  char *argv[] = { fx.shim,    "--id",           "other",   "--state-dir", fx.state,  "--runtime",
                   fx.runtime, "--runtime-root", fx.rtroot, "--bundle",    fx.bundle, NULL };
  int status = 0;
  ck_assert_int_eq (ts_run (argv, &out, &status), 0);
  ck_assert_int_eq (ts_exit_code (status), 1);
  ck_assert_msg (strstr (out, "is in use by berth-shim"), "output: %s", out);
  cJSON *st = read_state (); /* the first shim's state is untouched */
  ck_assert_str_eq (jstr (st, "status"), "running");
  ck_assert_int_eq ((int)jnum (st, "pid"), pid);
  cJSON_Delete (st);
  kill (pid, SIGKILL);
  cJSON_Delete (wait_final_state ());
  free (out);
}
END_TEST

static void check_failed_state (const char *want_in_error)
{
  cJSON *st = read_state ();
  ck_assert_str_eq (jstr (st, "status"), "failed");
  const char *error = jstr (st, "error");
  ck_assert_msg (error && strstr (error, want_in_error), "state error `%s` lacks `%s`", error,
                 want_in_error);
  ck_assert_int_eq ((int)jnum (st, "pid"), 0);
  cJSON_Delete (st);
}

START_TEST (test_bad_bundle_fails_with_message_and_failed_state)
{
  ck_assert_int_eq (mkdir (fx.bundle, 0755), 0); /* no config.json */
  char *out = NULL;
  ck_assert_int_eq (run_shim (NULL, &out), 1);
  ck_assert_msg (strstr (out, "berth-shim: start container") != NULL, "output: %s", out);
  ck_assert_msg (strstr (out, "config.json") != NULL, "the error does not name the file: %s", out);
  check_failed_state ("config.json");
  waitpid (shim_pid (), NULL, 0);
  check_shim_log_clean ();
  free (out);
}
END_TEST

START_TEST (test_missing_runtime_fails_with_message_and_failed_state)
{
  write_bundle ("true", 0);
  free (fx.runtime);
  fx.runtime = strdup ("/nonexistent/berth-runtime");
  char *out = NULL;
  ck_assert_int_eq (run_shim (NULL, &out), 1);
  ck_assert_msg (strstr (out, "exec `/nonexistent/berth-runtime`: No such file or directory"),
                 "output: %s", out);
  check_failed_state ("No such file or directory");
  waitpid (shim_pid (), NULL, 0);
  check_shim_log_clean ();
  free (out);
}
END_TEST

START_TEST (test_log_driver_none_drains_a_loud_container_and_writes_no_log)
{
  /* 16 MB is far more than the two 1 MiB pipes hold: the container only finishes if the shim
   * keeps reading. */
  write_bundle ("yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 16000000; "
                "yes err | head -c 4000000 >&2; exit 3",
                0);
  const char *extra[] = { "--log-driver", "none", NULL };
  start (extra);
  cJSON *st = wait_final_state ();
  ck_assert_int_eq ((int)jnum (st, "exitCode"), 3);
  ck_assert_int_eq ((int)jnum (st, "logDroppedLines"), 0);
  char *path = path_in (fx.state, "container.log");
  ck_assert_msg (access (path, F_OK) < 0 && errno == ENOENT, "%s exists", path);
  cJSON_Delete (st);
  free (path);
}
END_TEST

/* One datagram of journald's native protocol as a cJSON object of its fields (either form:
 * KEY=VALUE\n, or KEY\n + little-endian 64-bit length + VALUE + \n). */
static cJSON *parse_native (const char *p, size_t n)
{
  cJSON *o = cJSON_CreateObject ();
  size_t i = 0;
  while (i < n)
    {
      const char *nl = memchr (p + i, '\n', n - i), *eq = memchr (p + i, '=', n - i);
      ck_assert_ptr_nonnull (nl);
      char *key = NULL, *val = NULL;
      if (eq && eq < nl)
        {
          key = strndup (p + i, (size_t)(eq - p - i));
          val = strndup (eq + 1, (size_t)(nl - eq - 1));
          i = (size_t)(nl - p) + 1;
        }
      else
        {
          key = strndup (p + i, (size_t)(nl - p - i));
          size_t at = (size_t)(nl - p) + 1;
          ck_assert_uint_le (at + 8, n);
          uint64_t len = 0;
          for (int b = 7; b >= 0; b--)
            len = (len << 8) | (unsigned char)p[at + (size_t)b];
          ck_assert_uint_le (at + 8 + len + 1, n);
          val = strndup (p + at + 8, len);
          ck_assert_int_eq (p[at + 8 + len], '\n');
          i = at + 8 + len + 1;
        }
      ck_assert_msg (cJSON_GetObjectItem (o, key) == NULL, "field %s twice", key);
      cJSON_AddStringToObject (o, key, val);
      free (key);
      free (val);
    }
  return o;
}

/* A unix datagram socket standing in for the journal's, named by BERTH_SHIM_JOURNAL_SOCKET. */
static int fake_journal (void)
{
  char *path = path_in (fx.dir, "journal.sock");
  int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ck_assert_int_ge (fd, 0);
  int sz = 4 << 20;
  setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  ck_assert_uint_lt (strlen (path), sizeof sa.sun_path);
  strcpy (sa.sun_path, path);
  ck_assert_int_eq (bind (fd, (struct sockaddr *)&sa, sizeof sa), 0);
  ck_assert_int_eq (setenv ("BERTH_SHIM_JOURNAL_SOCKET", path, 1), 0);
  free (path);
  return fd;
}

static const cJSON *find_message (const cJSON *msgs, const char *text)
{
  const cJSON *it;
  cJSON_ArrayForEach (it, msgs) if (strcmp (jstr (it, "MESSAGE"), text) == 0) return it;
  return NULL;
}

START_TEST (test_journald_driver_sends_native_datagrams_with_fields)
{
  int fd = fake_journal ();
  write_bundle ("echo out-line; echo err-line >&2; printf 'tab\\there'; echo; echo; "
                "head -c 20000 /dev/zero | tr '\\0' a; echo",
                0);
  const char *extra[]
      = { "--log-driver", "journald", "--log-tag", "my-tag", "--log-name", "web", NULL };
  start (extra);
  cJSON *st = wait_final_state ();
  ck_assert_int_eq ((int)jnum (st, "logDroppedLines"), 0);
  cJSON *msgs = cJSON_CreateArray ();
  char *buf = malloc (1 << 20);
  ssize_t n;
  while ((n = recv (fd, buf, 1 << 20, 0)) > 0)
    cJSON_AddItemToArray (msgs, parse_native (buf, (size_t)n));
  ck_assert_int_eq (n < 0 ? errno : 0, EAGAIN);
  /* out, err, tab, empty line, and the 20000-byte line in two pieces */
  ck_assert_int_eq (cJSON_GetArraySize (msgs), 6);
  const cJSON *m = find_message (msgs, "out-line");
  ck_assert_ptr_nonnull (m);
  ck_assert_str_eq (jstr (m, "PRIORITY"), "6");
  ck_assert_str_eq (jstr (m, "CONTAINER_NAME"), "web");
  ck_assert_str_eq (jstr (m, "CONTAINER_ID"), fx.id);
  ck_assert_str_eq (jstr (m, "CONTAINER_TAG"), "my-tag");
  ck_assert_str_eq (jstr (m, "SYSLOG_IDENTIFIER"), "my-tag");
  ck_assert_ptr_nonnull ((m = find_message (msgs, "err-line")));
  ck_assert_str_eq (jstr (m, "PRIORITY"), "3");
  ck_assert_ptr_nonnull (find_message (msgs, "tab\there"));
  ck_assert_ptr_nonnull (find_message (msgs, ""));
  size_t total = 0;
  const cJSON *it;
  cJSON_ArrayForEach (it, msgs) if (jstr (it, "MESSAGE")[0] == 'a') total
      += strlen (jstr (it, "MESSAGE"));
  ck_assert_uint_eq (total, 20000);
  char *path = path_in (fx.state, "container.log");
  ck_assert_int_lt (access (path, F_OK), 0);
  free (path);
  free (buf);
  cJSON_Delete (msgs);
  cJSON_Delete (st);
  close (fd);
}
END_TEST

START_TEST (test_journald_driver_counts_lines_dropped_without_a_socket)
{
  char *path = path_in (fx.dir, "no-journal.sock");
  ck_assert_int_eq (setenv ("BERTH_SHIM_JOURNAL_SOCKET", path, 1), 0);
  write_bundle ("yes line | head -n 500; echo err >&2", 0);
  const char *extra[] = { "--log-driver", "journald", NULL };
  start (extra);
  cJSON *st = wait_final_state ();
  ck_assert_int_eq ((int)jnum (st, "exitCode"), 0);
  ck_assert_int_eq ((int)jnum (st, "logDroppedLines"), 501);
  char *log = state_file ("shim.log");
  char *first = strstr (log, "is absent");
  ck_assert_msg (first != NULL, "shim.log: %s", log);
  ck_assert_msg (strstr (first + 1, "is absent") == NULL, "said more than once: %s", log);
  free (log);
  free (path);
  cJSON_Delete (st);
}
END_TEST

START_TEST (test_usage_errors_exit_1_with_message)
{
  char *out = NULL;
  char *argv[] = { fx.shim, "--state-dir", fx.state, NULL };
  int status = 0;
  ck_assert_int_eq (ts_run (argv, &out, &status), 0);
  ck_assert_int_eq (ts_exit_code (status), 1);
  ck_assert_msg (strstr (out, "--id is required"), "output: %s", out);
  free (out);
  const char *extra[] = { "--log-max-size", "12x", NULL };
  ck_assert_int_eq (run_shim (extra, &out), 1);
  ck_assert_msg (strstr (out, "--log-max-size"), "output: %s", out);
  free (out);
  const char *bad_driver[] = { "--log-driver", "awslogs", NULL };
  ck_assert_int_eq (run_shim (bad_driver, &out), 1);
  ck_assert_msg (strstr (out, "--log-driver: `awslogs`"), "output: %s", out);
  free (out);
}
END_TEST

static Suite *shim_suite (void)
{
  Suite *s = suite_create ("shim");
  TCase *tc = tcase_create ("shim");
  tcase_set_timeout (tc, 120);
  tcase_add_unchecked_fixture (tc, suite_setup, suite_teardown);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_exit_code_is_recorded);
  tcase_add_test (tc, test_sigkill_is_recorded_as_signal_kill_and_137);
  tcase_add_test (tc, test_shim_outlives_invoker_killed_right_after_start);
  tcase_add_test (tc, test_sigterm_to_shim_reaches_container);
  tcase_add_test (tc, test_exit_recorded_while_grandchild_holds_output_open);
  tcase_add_test (tc, test_json_file_log_streams_escaping_and_long_line_split);
  tcase_add_test (tc, test_rotation_keeps_three_files_within_max_size_under_fast_writer);
  tcase_add_test (tc, test_full_disk_drops_whole_lines_and_counts_them);
  tcase_add_test (tc, test_log_write_failure_keeps_existing_log_content);
  tcase_add_test (tc, test_oom_kill_is_reported);
  tcase_add_test (tc, test_idle_shim_rss_is_at_most_512_kib);
  tcase_add_test (tc, test_reattach_reads_running_state_then_final_state);
  tcase_add_test (tc, test_second_shim_refuses_a_state_dir_in_use);
  tcase_add_test (tc, test_bad_bundle_fails_with_message_and_failed_state);
  tcase_add_test (tc, test_missing_runtime_fails_with_message_and_failed_state);
  tcase_add_test (tc, test_log_driver_none_drains_a_loud_container_and_writes_no_log);
  tcase_add_test (tc, test_journald_driver_sends_native_datagrams_with_fields);
  tcase_add_test (tc, test_journald_driver_counts_lines_dropped_without_a_socket);
  tcase_add_test (tc, test_usage_errors_exit_1_with_message);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (shim_suite ());
}
