/* The monitor proper: a session leader and child subreaper that starts the container through
 * the OCI runtime, becomes its parent, logs its output and records how it ended. */
#include "runtime/shim/shim.h"

#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/strv.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Big enough that a burst never blocks the container while the shim is busy elsewhere. */
#define PIPE_SIZE (1024 * 1024)
/* How long a container reparented late (a runtime with an intermediate process) may take to
 * become our child, and how long an OOM kill may take to show in the counter. */
#define REPARENT_WAIT_MS 1000
#define OOM_SETTLE_MS 100

enum tag
{
  TAG_STDOUT = SHIM_STDOUT,
  TAG_STDERR = SHIM_STDERR,
  TAG_SIGNAL,
  TAG_PIDFD,
  TAG_TIMER,
};

/* The one top-level context. */
struct shim
{
  const struct shim_opts *opts;
  int dirfd;     /* the state directory */
  int report_fd; /* to the invoker, until the start is decided */
  int epfd, sigfd, timerfd, pidfd;
  pid_t runtime_pid;  /* while the runtime runs */
  int pending_signal; /* a stop signal that arrived before the container's pid was known */
  bool failed, exited, timer_armed;
  int wait_status;
  struct shim_stream streams[2];
  struct shim_log log;
  struct shim_oom oom;
  struct shim_state state;
};

static const int forwarded_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

static void report (struct shim *s, const char *kind, const char *msg)
{
  if (s->report_fd < 0)
    return;
  dprintf (s->report_fd, "%s %s", kind, msg);
  close (s->report_fd);
  s->report_fd = -1;
}

static void write_state (struct shim *s)
{
  berr *err = NULL;
  s->state.dropped = s->log.dropped;
  if (shim_state_write (s->dirfd, &s->state, &err) < 0)
    blog_berr (&err);
}

/* The start failed: tell the invoker, record it, and let the loop end. */
static void fail (struct shim *s, const char *msg)
{
  blog_error ("%s", msg);
  s->failed = true;
  s->state.status = SHIM_FAILED;
  s->state.error = msg;
  if (s->dirfd >= 0)
    write_state (s);
  report (s, "error", msg);
  s->state.error = NULL;
}

static void fail_berr (struct shim *s, berr **err)
{
  fail (s, (*err)->msg);
  berr_free (err);
}

/* No inherited descriptors; the state directory made and opened. */
static int open_state_dir (struct shim *s, berr **err)
{
  if (s->report_fd > 3)
    syscall (SYS_close_range, 3, s->report_fd - 1, 0);
  syscall (SYS_close_range, s->report_fd + 1, ~0U, 0);
  if (bfs_mkdirs (s->opts->state_dir, 0700, err) < 0)
    return -1;
  s->dirfd = open (s->opts->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->dirfd < 0)
    return berr_sys (err, "open the state directory `%s`", s->opts->state_dir);
  return 0;
}

/* Detach from the invoker: own session, subreaper for everything the runtime leaves behind,
 * `/` as working directory so no mount is held busy. Only once shim.pid is written: until then
 * the monitor is in its invoker's process group, so whoever gives up on a start (the agent's
 * ECS_CONTAINER_START_TIMEOUT) reaches it either through that group or through shim.pid. */
static int detach (struct shim *s, berr **err)
{
  if (setsid () < 0)
    return berr_sys (err, "setsid");
  if (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
    return berr_sys (err, "become a child subreaper");
  if (chdir ("/") < 0)
    return berr_sys (err, "chdir /");
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
  int log = openat (s->dirfd, "shim.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (null < 0 || log < 0)
    return berr_sys (err, "open /dev/null and shim.log");
  dup2 (null, STDIN_FILENO);
  dup2 (null, STDOUT_FILENO);
  dup2 (log, STDERR_FILENO);
  close (null);
  close (log);
  blog_setup ("berth-shim", BLOG_INFO, BLOG_SINK_STDERR);
  return 0;
}

/* Another live berth-shim owns this directory: starting would clobber its files. */
static int check_dir_unused (struct shim *s, berr **err)
{
  char buf[32] = "", path[64], comm[32] = "";
  _cleanup_close_ int fd = openat (s->dirfd, "shim.pid", O_RDONLY | O_CLOEXEC);
  uint64_t pid = 0;
  if (fd < 0 || read (fd, buf, sizeof buf - 1) <= 0 || bfs_parse_u64 (buf, &pid) < 0)
    return 0;
  snprintf (path, sizeof path, "/proc/%llu/comm", (unsigned long long)pid);
  _cleanup_close_ int cfd = open (path, O_RDONLY | O_CLOEXEC);
  if (cfd < 0 || read (cfd, comm, sizeof comm - 1) <= 0 || strcmp (comm, "berth-shim\n") != 0)
    return 0;
  /* Leave every file there alone, state.json included. */
  close (s->dirfd);
  s->dirfd = -1;
  return berr_make (err, EBUSY, "state directory `%s` is in use by berth-shim pid %llu",
                    s->opts->state_dir, (unsigned long long)pid);
}

static int write_pid_file (struct shim *s, berr **err)
{
  if (check_dir_unused (s, err) < 0)
    return -1;
  char buf[32];
  int n = snprintf (buf, sizeof buf, "%d\n", (int)getpid ());
  /* A previous container's files in a reused directory must not be taken for this one's. */
  unlinkat (s->dirfd, "state.json", 0);
  unlinkat (s->dirfd, "container.pid", 0);
  return bfs_write_atomic (s->dirfd, "shim.pid", buf, (size_t)n, 0644, err);
}

/* SIGCHLD and the stop signals arrive on a signalfd; SIGPIPE must not kill the shim when the
 * invoker is gone. Both are undone in the runtime's child before exec. */
static int setup_events (struct shim *s, berr **err)
{
  sigset_t set;
  sigemptyset (&set);
  sigaddset (&set, SIGCHLD);
  for (size_t i = 0; i < ARRAY_SIZE (forwarded_signals); i++)
    sigaddset (&set, forwarded_signals[i]);
  if (sigprocmask (SIG_BLOCK, &set, NULL) < 0)
    return berr_sys (err, "block signals");
  signal (SIGPIPE, SIG_IGN);
  s->sigfd = signalfd (-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  s->epfd = epoll_create1 (EPOLL_CLOEXEC);
  s->timerfd = timerfd_create (CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (s->sigfd < 0 || s->epfd < 0 || s->timerfd < 0)
    return berr_sys (err, "create the event descriptors");
  struct epoll_event ev = { .events = EPOLLIN, .data.u32 = TAG_SIGNAL };
  if (epoll_ctl (s->epfd, EPOLL_CTL_ADD, s->sigfd, &ev) < 0)
    return berr_sys (err, "epoll_ctl");
  ev.data.u32 = TAG_TIMER;
  if (epoll_ctl (s->epfd, EPOLL_CTL_ADD, s->timerfd, &ev) < 0)
    return berr_sys (err, "epoll_ctl");
  return 0;
}

/* One output pipe: our read end non-blocking and watched, the write end for the runtime. */
static int make_stream (struct shim *s, enum shim_stream_kind kind, int *write_end, berr **err)
{
  int p[2];
  if (pipe2 (p, O_CLOEXEC) < 0)
    return berr_sys (err, "pipe");
  if (fcntl (p[1], F_SETPIPE_SZ, PIPE_SIZE) < 0)
    blog_debug ("F_SETPIPE_SZ %d: %s", PIPE_SIZE, strerror (errno));
  fcntl (p[0], F_SETFL, O_NONBLOCK);
  *write_end = p[1];
  if (shim_stream_init (&s->streams[kind], p[0], kind, err) < 0)
    return -1;
  struct epoll_event ev = { .events = EPOLLIN, .data.u32 = kind };
  if (epoll_ctl (s->epfd, EPOLL_CTL_ADD, p[0], &ev) < 0)
    return berr_sys (err, "epoll_ctl");
  return 0;
}

/* In the forked child: undo the shim's signal setup, wire stdio, exec. An exec failure is
 * written where the runtime would write its own errors. */
static void __attribute__ ((noreturn)) exec_runtime (struct shim *s, char **argv, int out, int err)
{
  sigset_t none;
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  signal (SIGPIPE, SIG_DFL);
  dup2 (out, STDOUT_FILENO);
  dup2 (err, STDERR_FILENO);
  execvp (argv[0], argv);
  int e = errno;
  int fd = openat (s->dirfd, "runtime.log", O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd >= 0)
    dprintf (fd, "exec `%s`: %s\n", argv[0], strerror (e));
  _exit (127);
}

static char **runtime_argv (const struct shim_opts *o)
{
  char *log = NULL, *pidf = NULL;
  char **v = calloc (1, sizeof *v);
  if (v == NULL)
    return NULL;
  if (asprintf (&log, "%s/runtime.log", o->state_dir) < 0)
    log = NULL;
  if (asprintf (&pidf, "%s/container.pid", o->state_dir) < 0)
    pidf = NULL;
  if (log == NULL || pidf == NULL)
    {
      free (log);
      free (pidf);
      strv_free (v);
      return NULL;
    }
  const char *args[16];
  size_t n = 0;
  args[n++] = o->runtime;
  if (o->runtime_root)
    {
      args[n++] = "--root";
      args[n++] = o->runtime_root;
    }
  const char *rest[]
      = { "--log", log, "run", "--detach", "--bundle", o->bundle, "--pid-file", pidf, o->id };
  for (size_t i = 0; i < ARRAY_SIZE (rest); i++)
    args[n++] = rest[i];
  for (size_t i = 0; i < n && v != NULL; i++)
    if (strv_append (&v, args[i]) < 0)
      {
        strv_free (v);
        v = NULL;
      }
  free (log);
  free (pidf);
  return v;
}

static int spawn_runtime (struct shim *s, berr **err)
{
  int out = -1, errp = -1;
  if (make_stream (s, SHIM_STDOUT, &out, err) < 0 || make_stream (s, SHIM_STDERR, &errp, err) < 0)
    {
      if (out >= 0)
        close (out);
      return -1;
    }
  /* Truncated so the file holds only this start's errors. */
  int fd = openat (s->dirfd, "runtime.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0)
    close (fd);
  _cleanup_strv_ char **argv = runtime_argv (s->opts);
  if (argv == NULL)
    berr_make (err, ENOMEM, "out of memory");
  else if ((s->runtime_pid = fork ()) < 0)
    berr_sys (err, "fork");
  else if (s->runtime_pid == 0)
    exec_runtime (s, argv, out, errp);
  /* Only the container may hold the write ends, so its exit shows as end of file. */
  close (out);
  close (errp);
  return s->runtime_pid > 0 ? 0 : -1;
}

/* The parent from /proc/<pid>/stat (the comm field may hold spaces and ')'). */
static int proc_ppid (pid_t pid, pid_t *ppid)
{
  char path[64], buf[512];
  snprintf (path, sizeof path, "/proc/%d/stat", (int)pid);
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : read (fd, buf, sizeof buf - 1);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  char *p = strrchr (buf, ')');
  int parent = 0;
  char state = 0;
  if (p == NULL || sscanf (p + 1, " %c %d", &state, &parent) != 2)
    return -1;
  *ppid = parent;
  return 0;
}

/* The runtime has exited, so the container was handed to us, the nearest subreaper. A runtime
 * with an intermediate process may hand it over a moment later. */
static int check_our_child (pid_t pid, berr **err)
{
  pid_t ppid = 0;
  for (int waited = 0;; waited += 10)
    {
      if (proc_ppid (pid, &ppid) < 0)
        return berr_sys (err, "read /proc/%d/stat of the container", (int)pid);
      if (ppid == getpid ())
        break;
      if (waited >= REPARENT_WAIT_MS)
        return berr_make (err, 0, "container pid %d is not a child of the shim (parent %d)",
                          (int)pid, (int)ppid);
      struct timespec ts = { 0, 10 * 1000 * 1000 };
      nanosleep (&ts, NULL);
    }
  return 0;
}

static int read_container_pid (struct shim *s, pid_t *pid, berr **err)
{
  _cleanup_free_ char *buf = NULL;
  uint64_t v = 0;
  if (bfs_read_all (s->dirfd, "container.pid", 64, &buf, NULL, err) < 0)
    return berr_wrap (err, "the runtime succeeded but left no pid file");
  if (bfs_parse_u64 (buf, &v) < 0 || v <= 1 || v > 0x3fffffff || (pid_t)v == getpid ())
    return berr_make (err, 0, "bad container pid file: `%.20s`", buf);
  *pid = (pid_t)v;
  return 0;
}

static void forward_signal (struct shim *s, int signo)
{
  if (s->pidfd < 0)
    {
      s->pending_signal = signo;
      return;
    }
  blog_info ("forwarding signal %d to the container", signo);
  if (syscall (SYS_pidfd_send_signal, s->pidfd, signo, NULL, 0) < 0 && errno != ESRCH)
    blog_warn ("forward signal %d: %s", signo, strerror (errno));
}

static int container_started (struct shim *s, berr **err)
{
  pid_t pid = 0;
  if (read_container_pid (s, &pid, err) < 0 || check_our_child (pid, err) < 0)
    return -1;
  s->pidfd = (int)syscall (SYS_pidfd_open, pid, 0);
  if (s->pidfd < 0)
    return berr_sys (err, "pidfd_open %d", (int)pid);
  shim_oom_setup (&s->oom, pid);
  s->state.pid = pid;
  s->state.status = SHIM_RUNNING;
  s->state.started_ns = bclock_real_ns ();
  write_state (s);
  struct epoll_event ev = { .events = EPOLLIN, .data.u32 = TAG_PIDFD };
  if (epoll_ctl (s->epfd, EPOLL_CTL_ADD, s->pidfd, &ev) < 0)
    blog_warn ("watch the container's pidfd: %s (SIGCHLD still reaps it)", strerror (errno));
  char msg[32];
  snprintf (msg, sizeof msg, "%d", (int)pid);
  report (s, "ok", msg);
  blog_info ("container %s started, pid %d", s->opts->id, (int)pid);
  if (s->pending_signal)
    forward_signal (s, s->pending_signal);
  return 0;
}

/* The runtime's error: what it wrote to runtime.log, one line per error, joined with "; ". */
static void runtime_failed (struct shim *s, int status)
{
  _cleanup_free_ char *text = NULL;
  berr *err = NULL;
  if (bfs_read_all (s->dirfd, "runtime.log", 64 * 1024, &text, NULL, &err) < 0)
    berr_free (&err);
  struct sbuf b = { 0 };
  sbuf_addf (&b, "start container `%s`: ", s->opts->id);
  size_t start = b.len;
  for (char *save = NULL, *line = text ? strtok_r (text, "\n", &save) : NULL; line;
       line = strtok_r (NULL, "\n", &save))
    sbuf_addf (&b, "%s%s", b.len > start ? "; " : "", line);
  if (b.len == start && WIFSIGNALED (status))
    sbuf_addf (&b, "runtime `%s` killed by signal %d", s->opts->runtime, WTERMSIG (status));
  else if (b.len == start)
    sbuf_addf (&b, "runtime `%s` exited with status %d and logged nothing", s->opts->runtime,
               WEXITSTATUS (status));
  fail (s, b.oom ? "runtime failed (out of memory formatting its error)" : b.p);
  sbuf_free (&b);
}

/* Until the container's pid is known only the runtime is reaped, so the container's zombie
 * (if it already died) keeps its /proc entry for the checks above. */
static void reap (struct shim *s)
{
  int status = 0;
  if (s->runtime_pid > 0)
    {
      if (waitpid (s->runtime_pid, &status, WNOHANG) != s->runtime_pid)
        return;
      s->runtime_pid = 0;
      berr *err = NULL;
      if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        runtime_failed (s, status);
      else if (container_started (s, &err) < 0)
        fail_berr (s, &err);
    }
  if (s->state.pid <= 0)
    return;
  pid_t p;
  while ((p = waitpid (-1, &status, WNOHANG)) > 0)
    if (p == s->state.pid && !s->exited)
      {
        s->exited = true;
        s->wait_status = status;
      }
}

static void on_signals (struct shim *s)
{
  struct signalfd_siginfo si;
  while (read (s->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
    if ((int)si.ssi_signo != SIGCHLD)
      forward_signal (s, (int)si.ssi_signo);
  reap (s);
}

/* Dropped log lines reach state.json within a second, with one write however many drop. */
static void maybe_arm_timer (struct shim *s)
{
  if (s->timer_armed || s->log.dropped == s->state.dropped || s->state.pid <= 0)
    return;
  struct itimerspec its = { .it_value = { 1, 0 } };
  if (timerfd_settime (s->timerfd, 0, &its, NULL) == 0)
    s->timer_armed = true;
}

static void on_timer (struct shim *s)
{
  uint64_t ticks;
  if (read (s->timerfd, &ticks, sizeof ticks) < 0)
    return;
  s->timer_armed = false;
  write_state (s);
}

static void dispatch (struct shim *s, uint32_t tag)
{
  switch (tag)
    {
    case TAG_STDOUT:
    case TAG_STDERR:
      shim_stream_pump (&s->streams[tag], &s->log);
      break;
    case TAG_SIGNAL:
      on_signals (s);
      break;
    case TAG_PIDFD:
      reap (s);
      break;
    case TAG_TIMER:
      on_timer (s);
      break;
    default:
      break;
    }
}

static void run_loop (struct shim *s)
{
  struct epoll_event evs[8];
  while (!s->exited && !s->failed)
    {
      int n = epoll_wait (s->epfd, evs, ARRAY_SIZE (evs), -1);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          blog_error ("epoll_wait: %s", strerror (errno));
          return;
        }
      for (int i = 0; i < n && !s->exited && !s->failed; i++)
        dispatch (s, evs[i].data.u32);
      maybe_arm_timer (s);
    }
}

/* The container has exited: take the output still in the pipes (without waiting for a
 * daemonised grandchild that holds them open), then record how it ended. */
static void record_exit (struct shim *s)
{
  shim_stream_drain (&s->streams[SHIM_STDOUT], &s->log);
  shim_stream_drain (&s->streams[SHIM_STDERR], &s->log);
  int st = s->wait_status;
  s->state.finished_ns = bclock_real_ns ();
  s->state.status = SHIM_STOPPED;
  s->state.signo = WIFSIGNALED (st) ? WTERMSIG (st) : 0;
  s->state.exit_code = WIFSIGNALED (st) ? 128 + WTERMSIG (st) : WEXITSTATUS (st);
  /* The kernel bumps the counter just after sending SIGKILL: give it a moment. */
  if (s->state.signo == SIGKILL)
    for (int waited = 0; !(s->state.oom_killed = shim_oom_count_grew (&s->oom)); waited += 10)
      {
        if (waited >= OOM_SETTLE_MS || s->oom.fd < 0)
          break;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep (&ts, NULL);
      }
  write_state (s);
  blog_info ("container %s exited: code %d%s", s->opts->id, s->state.exit_code,
             s->state.oom_killed ? " (OOM killed)" : "");
}

static void cleanup (struct shim *s)
{
  for (int i = 0; i < 2; i++)
    shim_stream_free (&s->streams[i]);
  shim_log_close (&s->log);
  shim_oom_close (&s->oom);
  int *fds[] = { &s->dirfd, &s->epfd, &s->sigfd, &s->timerfd, &s->pidfd, &s->report_fd };
  for (size_t i = 0; i < ARRAY_SIZE (fds); i++)
    if (*fds[i] >= 0)
      {
        close (*fds[i]);
        *fds[i] = -1;
      }
}

static int setup (struct shim *s, berr **err)
{
  if (open_state_dir (s, err) < 0 || write_pid_file (s, err) < 0 || detach (s, err) < 0
      || setup_events (s, err) < 0)
    return -1;
  if (shim_log_open (&s->log, s->opts, err) < 0)
    return -1;
  return spawn_runtime (s, err);
}

int shim_monitor_run (const struct shim_opts *o, int report_fd)
{
  struct shim s = {
    .opts = o,
    .dirfd = -1,
    .report_fd = report_fd,
    .epfd = -1,
    .sigfd = -1,
    .timerfd = -1,
    .pidfd = -1,
    .streams = { { .fd = -1 }, { .fd = -1 } },
    .log = { .fd = -1 },
    .oom = { .fd = -1 },
  };
  s.state.id = o->id;
  s.state.shim_pid = getpid ();
  berr *err = NULL;
  if (setup (&s, &err) < 0)
    fail_berr (&s, &err);
  else
    run_loop (&s);
  if (s.exited)
    record_exit (&s);
  else if (s.failed)
    for (int i = 0; i < 2; i++) /* keep whatever the runtime printed */
      shim_stream_drain (&s.streams[i], &s.log);
  int code = s.exited ? 0 : 1;
  cleanup (&s);
  return code;
}
