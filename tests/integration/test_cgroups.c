/* The cgroups component against the host's real cgroups (root): limits in the files, attach,
 * stats, pids and memory enforcement, kill, destroy, devices. Runs on hybrid hosts and, the
 * same binary, on pure cgroup v2 (the file names checked follow cg_detect_mode). */
#include "cgroups/cgroups.h"
#include "cgroups/internal.h"
#include "tests/support/support.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024 * 1024)

/* Every group of this run lives under "berth-test-<runner pid>"; the teardown removes it. */
static char test_root[64];
static enum cg_mode mode;

static char *group_path (const char *name)
{
  char *p;
  ck_assert_int_ge (asprintf (&p, "%s/%s", test_root, name), 0);
  return p;
}

static cg_group *must_create (const char *name, const struct cg_limits *lim)
{
  berr *err = NULL;
  cg_group *g = NULL;
  char *path = group_path (name);
  if (cg_create (path, lim, &g, &err) < 0)
    ck_abort_msg ("cg_create %s: %s", path, err->msg);
  free (path);
  return g;
}

static void must_destroy (cg_group *g)
{
  berr *err = NULL;
  if (cg_kill_all (g, SIGKILL, &err) < 0 || cg_destroy (g, &err) < 0)
    ck_abort_msg ("cleanup %s: %s", cg_path (g), err->msg);
  cg_free (g);
}

static bool unified (void)
{
  return mode == CG_MODE_UNIFIED;
}

/* The whole trimmed content of dir/file. */
static char *read_knob (const char *dir, const char *file)
{
  char path[4096];
  snprintf (path, sizeof path, "%s/%s", dir, file);
  char *s = ts_read_file (path);
  ck_assert_msg (s != NULL, "read %s", path);
  s[strcspn (s, "\n")] = '\0';
  return s;
}

static void assert_knob (const char *dir, const char *file, const char *want)
{
  char *got = read_knob (dir, file);
  ck_assert_msg (strcmp (got, want) == 0, "%s/%s: want `%s`, got `%s`", dir, file, want, got);
  free (got);
}

static bool procs_contains (const char *dir, pid_t pid)
{
  char path[4096], *s;
  snprintf (path, sizeof path, "%s/cgroup.procs", dir);
  if ((s = ts_read_file (path)) == NULL)
    return false;
  bool found = false;
  for (char *line = strtok (s, "\n"); line; line = strtok (NULL, "\n"))
    found |= atoi (line) == pid;
  free (s);
  return found;
}

/* A child that waits for a byte on a pipe (so it can be attached first), then runs fn. */
struct child
{
  pid_t pid;
  int go;    /* write a byte to let it run */
  int ready; /* fn writes a byte here when it has done its part */
};

static struct child spawn (void (*fn) (int ready_fd))
{
  int go[2], ready[2];
  ck_assert_int_eq (pipe2 (go, O_CLOEXEC), 0);
  ck_assert_int_eq (pipe2 (ready, O_CLOEXEC), 0);
  pid_t pid = fork ();
  ck_assert_int_ge (pid, 0);
  if (pid == 0)
    {
      char c;
      /* Check's handlers would signal the whole test's process group. */
      signal (SIGTERM, SIG_DFL);
      signal (SIGINT, SIG_DFL);
      close (go[1]);
      close (ready[0]);
      if (read (go[0], &c, 1) != 1)
        _exit (100);
      fn (ready[1]);
      _exit (0);
    }
  close (go[0]);
  close (ready[1]);
  return (struct child){ .pid = pid, .go = go[1], .ready = ready[0] };
}

static void start (struct child *c)
{
  ck_assert_int_eq (write (c->go, "g", 1), 1);
}

static void wait_ready (struct child *c)
{
  char b;
  ck_assert_int_eq (read (c->ready, &b, 1), 1);
}

static int reap (struct child *c)
{
  int status;
  ck_assert_int_eq (waitpid (c->pid, &status, 0), c->pid);
  close (c->go);
  close (c->ready);
  return status;
}

static void attach (cg_group *g, pid_t pid)
{
  berr *err = NULL;
  if (cg_attach (g, pid, &err) < 0)
    ck_abort_msg ("cg_attach: %s", err->msg);
}

static struct cg_stats stats (cg_group *g)
{
  berr *err = NULL;
  struct cg_stats st;
  if (cg_get_stats (g, &st, &err) < 0)
    ck_abort_msg ("cg_get_stats: %s", err->msg);
  return st;
}

static void fn_pause (int ready)
{
  (void)ready;
  for (;;)
    pause ();
}

START_TEST (test_create_writes_limits_under_each_versions_file_names)
{
  struct cg_limits lim = { .cpu_units = 512,
                           .cpu_quota_us = 50000,
                           .cpu_period_us = 100000,
                           .memory_max = 256 * MiB,
                           .memory_low = 128 * MiB,
                           .pids_max = 64 };
  cg_group *g = must_create ("limits", &lim);
  const char *mem = cg_dir (g, "memory"), *cpu = cg_dir (g, "cpu"), *pids = cg_dir (g, "pids");
  ck_assert_ptr_nonnull (mem);
  ck_assert_ptr_nonnull (cpu);
  ck_assert_ptr_nonnull (pids);
  if (unified ())
    {
      assert_knob (mem, "memory.max", "268435456");
      assert_knob (mem, "memory.low", "134217728");
      assert_knob (cpu, "cpu.weight", "20"); /* 1 + (510 * 9999) / 262142 */
      assert_knob (cpu, "cpu.max", "50000 100000");
    }
  else
    {
      assert_knob (mem, "memory.limit_in_bytes", "268435456");
      assert_knob (mem, "memory.soft_limit_in_bytes", "134217728");
      assert_knob (cpu, "cpu.shares", "512");
      assert_knob (cpu, "cpu.cfs_quota_us", "50000");
      assert_knob (cpu, "cpu.cfs_period_us", "100000");
    }
  assert_knob (pids, "pids.max", "64");
  struct cg_stats st = stats (g);
  ck_assert_uint_eq (st.memory_limit, 256 * MiB);
  must_destroy (g);
}
END_TEST

START_TEST (test_set_limits_changes_and_unsets_with_negative_values)
{
  struct cg_limits lim = { .memory_max = 64 * MiB, .pids_max = 10 };
  cg_group *g = must_create ("relimit", &lim);
  berr *err = NULL;
  struct cg_limits more = { .memory_max = -1, .pids_max = -1, .cpu_quota_us = 20000 };
  if (cg_set_limits (g, &more, &err) < 0)
    ck_abort_msg ("cg_set_limits: %s", err->msg);
  assert_knob (cg_dir (g, "pids"), "pids.max", "max");
  if (unified ())
    {
      assert_knob (cg_dir (g, "memory"), "memory.max", "max");
      assert_knob (cg_dir (g, "cpu"), "cpu.max", "20000 100000");
    }
  else
    {
      assert_knob (cg_dir (g, "memory"), "memory.limit_in_bytes", "9223372036854771712");
      assert_knob (cg_dir (g, "cpu"), "cpu.cfs_quota_us", "20000");
    }
  ck_assert_uint_eq (stats (g).memory_limit, 0);
  must_destroy (g);
}
END_TEST

START_TEST (test_attach_moves_the_process_into_every_hierarchy)
{
  cg_group *g = must_create ("attach", NULL);
  struct child c = spawn (fn_pause);
  attach (g, c.pid);
  const char *ctrls[] = { "memory", "cpu", "pids", "cpuacct", "devices" };
  int seen = 0;
  for (size_t i = 0; i < sizeof ctrls / sizeof *ctrls; i++)
    if (cg_dir (g, ctrls[i]))
      {
        ck_assert_msg (procs_contains (cg_dir (g, ctrls[i]), c.pid), "pid not in %s",
                       cg_dir (g, ctrls[i]));
        seen++;
      }
  ck_assert_int_ge (seen, 3);
  ck_assert_uint_eq (stats (g).pids_current, 1);
  kill (c.pid, SIGKILL);
  reap (&c);
  must_destroy (g);
}
END_TEST

static void fn_spin (int ready)
{
  (void)ready;
  for (volatile unsigned long i = 0;; i++)
    ;
}

START_TEST (test_stats_cpu_usage_grows_for_a_busy_child)
{
  cg_group *g = must_create ("cpu", NULL);
  struct child c = spawn (fn_spin);
  attach (g, c.pid);
  uint64_t before = stats (g).cpu_usage_ns;
  start (&c);
  usleep (400 * 1000);
  uint64_t after = stats (g).cpu_usage_ns;
  /* The machine is shared: ask for a quarter of the wall time. */
  ck_assert_msg (after - before >= 100 * 1000000ull, "cpu usage grew by %" PRIu64 " ns",
                 after - before);
  kill (c.pid, SIGKILL);
  reap (&c);
  must_destroy (g);
}
END_TEST

static void touch (size_t bytes)
{
  char *p = mmap (NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    _exit (101);
  for (size_t i = 0; i < bytes; i += 4096)
    p[i] = 1;
}

static void fn_touch_64m (int ready)
{
  touch (64 * MiB);
  if (write (ready, "r", 1) != 1)
    _exit (102);
  for (;;)
    pause ();
}

START_TEST (test_stats_memory_usage_counts_touched_memory)
{
  cg_group *g = must_create ("mem", NULL);
  struct child c = spawn (fn_touch_64m);
  attach (g, c.pid);
  uint64_t before = stats (g).memory_usage;
  start (&c);
  wait_ready (&c);
  struct cg_stats st = stats (g);
  ck_assert_msg (st.memory_usage >= before + 60 * MiB,
                 "memory usage %" PRIu64 " (before %" PRIu64 ")", st.memory_usage, before);
  ck_assert_uint_eq (st.memory_limit, 0);
  ck_assert_uint_eq (st.oom_kills, 0);
  kill (c.pid, SIGKILL);
  reap (&c);
  must_destroy (g);
}
END_TEST

static void fn_fork_many (int ready)
{
  /* Reports through the exit code how many of 10 forks the pids limit let through. */
  int ok = 0;
  pid_t kids[10];
  for (int i = 0; i < 10; i++)
    {
      kids[i] = fork ();
      if (kids[i] == 0)
        {
          pause ();
          _exit (0);
        }
      if (kids[i] > 0)
        ok++;
      else if (errno != EAGAIN)
        _exit (103);
    }
  for (int i = 0; i < 10; i++)
    if (kids[i] > 0)
      kill (kids[i], SIGKILL);
  (void)ready;
  _exit (ok);
}

START_TEST (test_pids_limit_makes_fork_fail_beyond_it)
{
  struct cg_limits lim = { .pids_max = 4 };
  cg_group *g = must_create ("pids", &lim);
  struct child c = spawn (fn_fork_many);
  attach (g, c.pid);
  start (&c);
  int status = reap (&c);
  ck_assert (WIFEXITED (status));
  /* The child itself is one of the four. */
  ck_assert_int_eq (WEXITSTATUS (status), 3);
  must_destroy (g);
}
END_TEST

static void fn_touch_256m (int ready)
{
  (void)ready;
  touch (256 * MiB);
  _exit (0);
}

START_TEST (test_memory_limit_oom_kills_and_counts_it)
{
  struct cg_limits lim = { .memory_max = 32 * MiB };
  cg_group *g = must_create ("oom", &lim);
  struct child c = spawn (fn_touch_256m);
  attach (g, c.pid);
  start (&c);
  int status = reap (&c);
  ck_assert_msg (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL, "status %#x", status);
  ck_assert_uint_ge (stats (g).oom_kills, 1);
  must_destroy (g);
}
END_TEST

static void fn_family (int ready)
{
  /* Three grandchildren in the child's group, then ready. */
  for (int i = 0; i < 3; i++)
    if (fork () == 0)
      for (;;)
        pause ();
  if (write (ready, "r", 1) != 1)
    _exit (104);
  for (;;)
    pause ();
}

static bool group_empty (void *arg)
{
  return stats (arg).pids_current == 0;
}

START_TEST (test_kill_all_kills_every_process_in_nested_groups)
{
  /* Processes only in leaves, as cgroup v2 requires. */
  cg_group *top = must_create ("kill", NULL);
  cg_group *leaf = must_create ("kill/a", NULL);
  cg_group *deep = must_create ("kill/b/c", NULL);
  struct child a = spawn (fn_family), b = spawn (fn_family);
  attach (leaf, a.pid);
  attach (deep, b.pid);
  start (&a);
  start (&b);
  wait_ready (&a);
  wait_ready (&b);
  ck_assert_uint_eq (stats (top).pids_current, 8);
  berr *err = NULL;
  if (cg_kill_all (top, SIGKILL, &err) < 0)
    ck_abort_msg ("cg_kill_all: %s", err->msg);
  ck_assert_int_eq (WTERMSIG (reap (&a)), SIGKILL);
  ck_assert_int_eq (WTERMSIG (reap (&b)), SIGKILL);
  ck_assert (ts_wait_for (group_empty, top, 2000));
  cg_free (leaf);
  cg_free (deep);
  must_destroy (top);
}
END_TEST

START_TEST (test_kill_all_delivers_other_signals_once)
{
  cg_group *g = must_create ("term", NULL);
  struct child c = spawn (fn_family);
  attach (g, c.pid);
  start (&c);
  wait_ready (&c);
  berr *err = NULL;
  if (cg_kill_all (g, SIGTERM, &err) < 0)
    ck_abort_msg ("cg_kill_all: %s", err->msg);
  int status = reap (&c);
  ck_assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGTERM);
  ck_assert (ts_wait_for (group_empty, g, 2000));
  must_destroy (g);
}
END_TEST

START_TEST (test_destroy_leaves_no_directory_in_any_hierarchy)
{
  cg_group *g = must_create ("gone", NULL);
  cg_group *child = must_create ("gone/a/b", NULL);
  struct child c = spawn (fn_pause);
  attach (child, c.pid);
  kill (c.pid, SIGKILL);
  reap (&c);
  char *dirs[8];
  int n = 0;
  const char *ctrls[] = { "memory", "cpu", "pids", "cpuacct", "devices" };
  for (size_t i = 0; i < 5; i++)
    if (cg_dir (g, ctrls[i]))
      dirs[n++] = strdup (cg_dir (g, ctrls[i]));
  ck_assert_int_ge (n, 3);
  berr *err = NULL;
  if (cg_destroy (g, &err) < 0)
    ck_abort_msg ("cg_destroy: %s", err->msg);
  struct stat st;
  for (int i = 0; i < n; i++)
    {
      ck_assert_msg (stat (dirs[i], &st) < 0 && errno == ENOENT, "%s still exists", dirs[i]);
      free (dirs[i]);
    }
  cg_free (child);
  cg_free (g);
}
END_TEST

START_TEST (test_destroy_refuses_a_group_that_still_has_processes)
{
  cg_group *g = must_create ("busy", NULL);
  struct child c = spawn (fn_pause);
  attach (g, c.pid);
  berr *err = NULL;
  ck_assert_int_lt (cg_destroy (g, &err), 0);
  ck_assert_int_eq (berr_errno (err), EBUSY);
  berr_free (&err);
  /* Not moved anywhere: still in its group. */
  ck_assert (procs_contains (cg_dir (g, "pids"), c.pid));
  kill (c.pid, SIGKILL);
  reap (&c);
  must_destroy (g);
}
END_TEST

START_TEST (test_open_of_a_missing_group_gives_enoent)
{
  berr *err = NULL;
  cg_group *g = NULL;
  char *path = group_path ("never-created");
  ck_assert_int_lt (cg_open (path, &g, &err), 0);
  ck_assert_int_eq (berr_errno (err), ENOENT);
  berr_free (&err);
  free (path);
}
END_TEST

START_TEST (test_open_and_create_adopt_an_existing_group)
{
  struct cg_limits lim = { .pids_max = 7 };
  cg_group *g = must_create ("adopt", &lim);
  struct child c = spawn (fn_pause);
  attach (g, c.pid);
  berr *err = NULL;
  cg_group *o = NULL, *again = NULL;
  char *path = group_path ("adopt");
  if (cg_open (path, &o, &err) < 0 || cg_create (path, NULL, &again, &err) < 0)
    ck_abort_msg ("re-open: %s", err->msg);
  ck_assert_str_eq (cg_path (o), path);
  ck_assert_uint_eq (stats (o).pids_current, 1);
  ck_assert (procs_contains (cg_dir (again, "pids"), c.pid));
  assert_knob (cg_dir (again, "pids"), "pids.max", "7");
  free (path);
  kill (c.pid, SIGKILL);
  reap (&c);
  cg_free (o);
  cg_free (again);
  must_destroy (g);
}
END_TEST

START_TEST (test_create_refuses_paths_that_leave_the_root)
{
  berr *err = NULL;
  cg_group *g = NULL;
  ck_assert_int_lt (cg_create ("berth-x/../../etc", NULL, &g, &err), 0);
  ck_assert_int_eq (berr_errno (err), EINVAL);
  berr_free (&err);
  ck_assert_int_lt (cg_create ("/", NULL, &g, &err), 0);
  ck_assert_int_eq (berr_errno (err), EINVAL);
  berr_free (&err);
}
END_TEST

static void fn_open_devices (int ready)
{
  /* Exit code: bit 0 /dev/null opened, bit 1 /dev/zero refused with EPERM. */
  int code = 0, fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd >= 0)
    code |= 1;
  fd = open ("/dev/zero", O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == EPERM)
    code |= 2;
  (void)ready;
  _exit (code);
}

static const struct cg_device_rule null_only[] = {
  { .allow = true, .type = 'c', .major = 1, .minor = 3, .access = "rwm" },
  { .allow = true, .type = 'c', .major = 136, .minor = -1, .access = "rw" },
};

START_TEST (test_device_rules_deny_all_but_the_listed_devices)
{
  struct cg_limits lim = { .devices = null_only, .n_devices = 2, .devices_set = true };
  cg_group *g = must_create ("devices", &lim);
  if (!unified ())
    {
      char path[4096];
      snprintf (path, sizeof path, "%s/devices.list", cg_dir (g, "devices"));
      char *all = ts_read_file (path);
      ck_assert_str_eq (all, "c 1:3 rwm\nc 136:* rw\n");
      free (all);
    }
  struct child c = spawn (fn_open_devices);
  attach (g, c.pid);
  start (&c);
  int status = reap (&c);
  ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 3, "status %#x", status);
  must_destroy (g);
}
END_TEST

/* Hybrid hosts: the v2 device program, on the cgroup2 mount that carries no controller. */
START_TEST (test_device_bpf_program_is_enforced_on_a_cgroup2_group)
{
  const struct cgi_host *h;
  berr *err = NULL;
  ck_assert_int_eq (cgi_host_get (&h, &err), 0);
  if (unified () || h->v2_mount == NULL)
    return; /* pure v2 covers this through the public API above */
  char dir[4096];
  snprintf (dir, sizeof dir, "%s/%s-bpf", h->v2_mount, test_root);
  ck_assert_int_eq (mkdir (dir, 0755), 0);
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ck_assert_int_ge (fd, 0);
  /* Attached twice: the second replaces the first instead of adding to it. */
  for (int i = 0; i < 2; i++)
    if (cgi_devices_attach_bpf (fd, dir, null_only, 2, &err) < 0)
      ck_abort_msg ("attach: %s", err->msg);
  struct child c = spawn (fn_open_devices);
  char pid[32], procs[4200];
  snprintf (pid, sizeof pid, "%d", c.pid);
  snprintf (procs, sizeof procs, "%s/cgroup.procs", dir);
  FILE *f = fopen (procs, "we");
  ck_assert_ptr_nonnull (f);
  ck_assert_int_ge (fputs (pid, f), 0);
  ck_assert_int_eq (fclose (f), 0);
  start (&c);
  int status = reap (&c);
  close (fd);
  ck_assert_int_eq (rmdir (dir), 0);
  ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 3, "status %#x", status);
}
END_TEST

/* The layout of docs/cgroups.md: the task root first holds the first shim (as a systemd scope
 * does), the shim moves to a leaf "supervisor", then the limited "task" group and a container
 * group below it are created. On v2 this exercises the no-internal-process rule. */
START_TEST (test_task_layout_supervisor_then_limited_containers)
{
  cg_group *root = must_create ("task-1", NULL);
  struct child shim = spawn (fn_pause);
  attach (root, shim.pid);
  cg_group *sup = must_create ("task-1/supervisor", NULL);
  attach (sup, shim.pid);
  struct cg_limits task_lim = { .memory_max = 512 * MiB, .cpu_quota_us = 100000 };
  struct cg_limits ctr_lim = { .memory_max = 128 * MiB, .cpu_units = 256, .pids_max = 100 };
  cg_group *task = must_create ("task-1/task", &task_lim);
  cg_group *ctr = must_create ("task-1/task/web", &ctr_lim);
  struct child app = spawn (fn_pause);
  attach (ctr, app.pid);
  ck_assert_uint_eq (stats (ctr).memory_limit, 128 * MiB);
  ck_assert_uint_eq (stats (task).memory_limit, 512 * MiB);
  ck_assert_uint_eq (stats (task).pids_current, 1);
  ck_assert_uint_eq (stats (sup).pids_current, 1);
  ck_assert (procs_contains (cg_dir (sup, "pids"), shim.pid));
  berr *err = NULL;
  if (cg_kill_all (task, SIGKILL, &err) < 0)
    ck_abort_msg ("kill: %s", err->msg);
  ck_assert_int_eq (WTERMSIG (reap (&app)), SIGKILL);
  ck_assert_int_eq (kill (shim.pid, 0), 0); /* the shim is outside the task group */
  kill (shim.pid, SIGKILL);
  reap (&shim);
  cg_free (ctr);
  cg_free (task);
  cg_free (sup);
  must_destroy (root);
}
END_TEST

START_TEST (test_clone_fd_only_on_pure_v2_and_clone3_lands_in_the_group)
{
  cg_group *g = must_create ("clone", NULL);
  int fd = cg_clone_fd (g);
  if (!unified ())
    {
      ck_assert_int_eq (fd, -1);
      ck_assert_ptr_null (cg_dir (g, NULL));
      must_destroy (g);
      return;
    }
  ck_assert_int_ge (fd, 0);
  struct clone_args args
      = { .flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (uint64_t)fd };
  long pid = syscall (SYS_clone3, &args, sizeof args);
  ck_assert_int_ge (pid, 0);
  if (pid == 0)
    {
      pause ();
      _exit (0);
    }
  ck_assert (procs_contains (cg_dir (g, NULL), (pid_t)pid));
  kill ((pid_t)pid, SIGKILL);
  waitpid ((pid_t)pid, NULL, 0);
  must_destroy (g);
}
END_TEST

/* read(2) calls this thread has made so far (/proc/thread-self/io syscr). */
static uint64_t read_calls (void)
{
  char *io = ts_read_file ("/proc/thread-self/io");
  ck_assert_ptr_nonnull (io);
  const char *at = strstr (io, "syscr: ");
  ck_assert_ptr_nonnull (at);
  uint64_t n = strtoull (at + 7, NULL, 10);
  free (io);
  return n;
}

/* Telemetry reads stats of every container every interval, so a read must touch only the
 * group's own files: a bounded number of read(2) calls, not a re-read of the mount table (what
 * libcgroup's own getters do). Counted, not timed: timings are noisy here. */
START_TEST (test_stats_read_is_cheap)
{
  struct cg_limits lim = { .memory_max = 64 * MiB, .pids_max = 10 };
  cg_group *g = must_create ("cheap", &lim);
  enum
  {
    N = 200
  };
  stats (g);
  uint64_t r0 = read_calls ();
  for (int i = 0; i < N; i++)
    stats (g);
  uint64_t per = (read_calls () - r0 - 1) / N;
  fprintf (stderr, "cg_get_stats: %" PRIu64 " read calls per call (%s)\n", per,
           cg_mode_name (mode));
  ck_assert_uint_le (per, 24);
  must_destroy (g);
}
END_TEST

START_TEST (test_systemd_scope_fails_cleanly_without_systemd)
{
  char *path = NULL;
  berr *err = NULL;
  if (cg_systemd_running ())
    return; /* the next test runs for real */
  ck_assert_int_lt (
      cg_systemd_create_scope ("berth-test.scope", "berth.slice", getpid (), &path, &err), 0);
  ck_assert_ptr_nonnull (err);
  ck_assert_ptr_null (path);
  berr_free (&err);
  ck_assert_int_lt (cg_systemd_stop_unit ("berth-test.scope", &err), 0);
  berr_free (&err);
}
END_TEST

static cg_group *must_create_abs (const char *scope, const char *sub, const struct cg_limits *lim)
{
  char *path;
  berr *err = NULL;
  cg_group *g = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/%s", scope, sub), 0);
  if (cg_create (path, lim, &g, &err) < 0)
    ck_abort_msg ("cg_create %s: %s", path, err->msg);
  free (path);
  return g;
}

/* Only where systemd runs (the VM): the layout of docs/cgroups.md in a real delegated scope. The
 * scope starts with the "shim"; it moves to supervisor, then task and a container get limits. */
START_TEST (test_systemd_scope_holds_the_documented_layout)
{
  if (!cg_systemd_running ())
    return;
  char *path = NULL, unit[64];
  berr *err = NULL;
  struct child shim = spawn (fn_pause), app = spawn (fn_pause);
  snprintf (unit, sizeof unit, "berth-test-%d.scope", (int)getpid ());
  if (cg_systemd_create_scope (unit, "berth-test.slice", shim.pid, &path, &err) < 0)
    ck_abort_msg ("scope: %s", err->msg);
  ck_assert_msg (strstr (path, "berth-test.slice/") && strstr (path, unit), "path %s", path);
  cg_group *sup = must_create_abs (path, "supervisor", NULL);
  attach (sup, shim.pid);
  struct cg_limits task_lim = { .memory_max = 256 * MiB, .cpu_quota_us = 50000 };
  struct cg_limits ctr_lim = { .memory_max = 64 * MiB, .cpu_units = 512, .pids_max = 50 };
  cg_group *task = must_create_abs (path, "task", &task_lim);
  cg_group *web = must_create_abs (path, "task/web", &ctr_lim);
  attach (web, app.pid);
  ck_assert_uint_eq (stats (task).memory_limit, 256 * MiB);
  ck_assert_uint_eq (stats (web).memory_limit, 64 * MiB);
  ck_assert_uint_eq (stats (web).pids_current, 1);
  ck_assert (procs_contains (cg_dir (sup, NULL), shim.pid));
  if (cg_kill_all (task, SIGKILL, &err) < 0 || cg_destroy (task, &err) < 0)
    ck_abort_msg ("task teardown: %s", err->msg);
  ck_assert_int_eq (WTERMSIG (reap (&app)), SIGKILL);
  if (cg_systemd_stop_unit (unit, &err) < 0)
    ck_abort_msg ("stop: %s", err->msg);
  ck_assert (WIFSIGNALED (reap (&shim)));
  ck_assert_int_eq (cg_systemd_stop_unit (unit, &err), 0); /* already gone: fine */
  if (cg_destroy (sup, &err) < 0)
    ck_abort_msg ("supervisor: %s", err->msg);
  cg_free (web);
  cg_free (task);
  cg_free (sup);
  free (path);
}
END_TEST

/* Runs in the runner process after the test case: kills and removes anything a failed test
 * left under the run's root group. */
static void remove_test_root (void)
{
  cg_group *g = NULL;
  berr *err = NULL;
  if (cg_open (test_root, &g, &err) < 0)
    {
      berr_free (&err);
      return;
    }
  if (cg_kill_all (g, SIGKILL, &err) < 0 || cg_destroy (g, &err) < 0)
    {
      fprintf (stderr, "cleanup of %s: %s\n", test_root, err->msg);
      berr_free (&err);
    }
  cg_free (g);
}

int main (void)
{
  if (!ts_is_root ())
    {
      fprintf (stderr, "test_cgroups needs root\n");
      return 77;
    }
  berr *err = NULL;
  if (cg_detect_mode (&mode, &err) < 0)
    {
      fprintf (stderr, "cg_detect_mode: %s\n", err->msg);
      return EXIT_FAILURE;
    }
  snprintf (test_root, sizeof test_root, "berth-test-%d", (int)getpid ());
  fprintf (stderr, "cgroup mode: %s\n", cg_mode_name (mode));
  Suite *s = suite_create ("cgroups");
  TCase *tc = tcase_create ("real");
  tcase_set_timeout (tc, 60);
  tcase_add_unchecked_fixture (tc, NULL, remove_test_root);
  tcase_add_test (tc, test_create_writes_limits_under_each_versions_file_names);
  tcase_add_test (tc, test_set_limits_changes_and_unsets_with_negative_values);
  tcase_add_test (tc, test_attach_moves_the_process_into_every_hierarchy);
  tcase_add_test (tc, test_stats_cpu_usage_grows_for_a_busy_child);
  tcase_add_test (tc, test_stats_memory_usage_counts_touched_memory);
  tcase_add_test (tc, test_pids_limit_makes_fork_fail_beyond_it);
  tcase_add_test (tc, test_memory_limit_oom_kills_and_counts_it);
  tcase_add_test (tc, test_kill_all_kills_every_process_in_nested_groups);
  tcase_add_test (tc, test_kill_all_delivers_other_signals_once);
  tcase_add_test (tc, test_destroy_leaves_no_directory_in_any_hierarchy);
  tcase_add_test (tc, test_destroy_refuses_a_group_that_still_has_processes);
  tcase_add_test (tc, test_open_of_a_missing_group_gives_enoent);
  tcase_add_test (tc, test_open_and_create_adopt_an_existing_group);
  tcase_add_test (tc, test_create_refuses_paths_that_leave_the_root);
  tcase_add_test (tc, test_device_rules_deny_all_but_the_listed_devices);
  tcase_add_test (tc, test_device_bpf_program_is_enforced_on_a_cgroup2_group);
  tcase_add_test (tc, test_task_layout_supervisor_then_limited_containers);
  tcase_add_test (tc, test_clone_fd_only_on_pure_v2_and_clone3_lands_in_the_group);
  tcase_add_test (tc, test_stats_read_is_cheap);
  tcase_add_test (tc, test_systemd_scope_fails_cleanly_without_systemd);
  tcase_add_test (tc, test_systemd_scope_holds_the_documented_layout);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
