/* Container launch for the task engine: image pulls on a small worker pool (completion through
 * an eventfd on the loop), the shim started with fork+exec and watched with pidfds, stop with the
 * stop signal then SIGKILL, re-adoption of running shims after a restart. */
#include "agent/engine_internal.h"
#include "images/images.h"
#include "lib/cleanup.h"
#include "lib/clock.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int eng_build_config (eng_container *c, const struct img_config *ic, const char *bundle,
                      cJSON **out, berr **err);

static int pidfd_open_ (pid_t pid)
{
  return (int)syscall (SYS_pidfd_open, pid, 0);
}

static void job_free (eng_job *j)
{
  free (j->task_arn), free (j->name), free (j->image), free (j->id);
  free (j->digest), free (j->rootfs), free (j->error), free (j->stop_signal);
  free (j);
}

/* In a worker thread: pull, read the image config, make the root filesystem by digest. */
static void run_job (agent_engine *e, eng_job *j)
{
  _cleanup_berr_ berr *err = NULL;
  struct img_pull_result res = { 0 };
  struct img_pull_opts po = { .behavior = (enum img_pull_behavior)j->behavior };
  struct img_config *ic = NULL;
  if (img_pull (e->o.puller, j->image, &po, &res, &err) < 0)
    goto fail;
  j->digest = strdup (res.manifest_digest);
  img_pull_result_clear (&res);
  if (img_store_config (e->o.images, j->digest, &ic, &err) < 0)
    goto fail;
  if (ic->stop_signal)
    j->stop_signal = strdup (ic->stop_signal);
  img_config_free (ic);
  if (img_rootfs_create (e->o.images, j->digest, j->id, NULL, &j->rootfs, &err) < 0
      && berr_errno (err) == EEXIST)
    {
      /* a rootfs from a launch the agent did not finish: start over */
      berr_free (&err);
      if (img_rootfs_remove (e->o.images, j->id, &err) == 0)
        img_rootfs_create (e->o.images, j->digest, j->id, NULL, &j->rootfs, &err);
    }
  if (err == NULL)
    return;
fail:
  j->error = strdup (err ? err->msg : "unknown error");
}

static void *worker (void *arg)
{
  agent_engine *e = arg;
  pthread_mutex_lock (&e->mu);
  for (;;)
    {
      while (e->queue == NULL && !e->quit)
        pthread_cond_wait (&e->cv, &e->mu);
      if (e->queue == NULL)
        break;
      eng_job *j = e->queue;
      e->queue = j->next;
      pthread_mutex_unlock (&e->mu);
      run_job (e, j);
      pthread_mutex_lock (&e->mu);
      j->next = e->done;
      e->done = j;
      uint64_t one = 1;
      if (write (e->efd, &one, sizeof one) < 0)
        blog_warn ("pull pool: eventfd write failed");
    }
  pthread_mutex_unlock (&e->mu);
  return NULL;
}

static void pull_done (agent_engine *e, eng_job *j)
{
  _cleanup_berr_ berr *err = NULL;
  eng_container *c = eng_find_container (e, j->task_arn, j->name);
  if (c == NULL || !c->pulling)
    {
      if (j->rootfs && img_rootfs_remove (e->o.images, j->id, &err) < 0)
        blog_berr (&err);
      return;
    }
  c->pulling = false;
  c->pull_stopped_ns = bclock_real_ns ();
  if (j->error)
    {
      _cleanup_free_ char *m = NULL;
      eng_container_stopped (
          c, -1, asprintf (&m, "CannotPullContainerError: %s", j->error) < 0 ? NULL : m);
    }
  else
    {
      c->digest = steal_ptr (&j->digest);
      c->rootfs = steal_ptr (&j->rootfs);
      c->stop_signal = steal_ptr (&j->stop_signal);
      c->known = ES_PULLED;
      if (eng_save_container (c, &err) < 0)
        blog_berr (&err);
    }
  eng_step (c->task);
}

static int on_efd (sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  agent_engine *e = userdata;
  uint64_t v;
  (void)s, (void)revents;
  if (read (fd, &v, sizeof v) < 0 && errno != EAGAIN)
    blog_warn ("pull pool: eventfd read failed");
  pthread_mutex_lock (&e->mu);
  eng_job *list = e->done;
  e->done = NULL;
  pthread_mutex_unlock (&e->mu);
  while (list)
    {
      eng_job *j = list;
      list = j->next;
      pull_done (e, j);
      job_free (j);
    }
  return 0;
}

int eng_pool_start (agent_engine *e, berr **err)
{
  e->n_threads = e->o.max_pulls ? e->o.max_pulls : 2;
  pthread_mutex_init (&e->mu, NULL);
  pthread_cond_init (&e->cv, NULL);
  e->efd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (e->efd < 0)
    return berr_sys (err, "eventfd");
  int r = sd_event_add_io (e->o.ev, &e->efd_src, e->efd, EPOLLIN, on_efd, e);
  if (r < 0)
    return berr_sysn (err, -r, "pull pool: watch the eventfd");
  e->threads = calloc (e->n_threads, sizeof *e->threads);
  if (e->threads == NULL)
    return berr_make (err, ENOMEM, "pull pool");
  for (unsigned i = 0; i < e->n_threads; i++)
    if ((r = pthread_create (&e->threads[i], NULL, worker, e)) != 0)
      {
        e->n_threads = i;
        return berr_sysn (err, r, "pull pool: start a worker");
      }
  return 0;
}

void eng_pool_stop (agent_engine *e)
{
  if (e->threads)
    {
      pthread_mutex_lock (&e->mu);
      e->quit = true;
      while (e->queue)
        {
          eng_job *j = e->queue;
          e->queue = j->next;
          job_free (j);
        }
      pthread_cond_broadcast (&e->cv);
      pthread_mutex_unlock (&e->mu);
      for (unsigned i = 0; i < e->n_threads; i++)
        pthread_join (e->threads[i], NULL);
      free (e->threads);
    }
  while (e->done)
    {
      eng_job *j = e->done;
      e->done = j->next;
      job_free (j);
    }
  sd_event_source_disable_unref (e->efd_src);
  if (e->efd >= 0)
    close (e->efd);
  pthread_mutex_destroy (&e->mu);
  pthread_cond_destroy (&e->cv);
}

int eng_pull (eng_container *c, berr **err)
{
  agent_engine *e = c->task->e;
  eng_job *j = calloc (1, sizeof *j);
  if (j == NULL)
    return berr_make (err, ENOMEM, "pull job");
  j->task_arn = strdup (c->task->arn);
  j->name = strdup (c->name);
  j->image = strdup (c->image);
  j->id = strdup (c->id);
  j->behavior = e->o.cfg->image_pull_behavior;
  if (!j->task_arn || !j->name || !j->image || !j->id)
    {
      job_free (j);
      return berr_make (err, ENOMEM, "pull job");
    }
  c->pulling = true;
  c->pull_started_ns = bclock_real_ns ();
  pthread_mutex_lock (&e->mu);
  eng_job **p = &e->queue;
  while (*p)
    p = &(*p)->next;
  *p = j;
  pthread_cond_signal (&e->cv);
  pthread_mutex_unlock (&e->mu);
  return 0;
}

static char *path_of (agent_engine *e, const char *kind, const char *id, const char *file)
{
  char *p = NULL;
  if (asprintf (&p, "%s/%s/%s%s%s", e->o.state_dir, kind, id, file ? "/" : "", file ? file : "")
      < 0)
    return NULL;
  return p;
}

typedef struct shim_state
{
  char status[16];
  pid_t pid, shim_pid;
  int exit_code;
  bool oom;
  char *error;
} shim_state;

/* Reads the shim's state.json; ENOENT when there is none yet. */
static int read_shim_state (agent_engine *e, const char *id, shim_state *st, berr **err)
{
  _cleanup_free_ char *path = path_of (e, "shims", id, "state.json"), *buf = NULL;
  size_t len = 0;
  memset (st, 0, sizeof *st);
  st->exit_code = -1;
  if (path == NULL || bfs_read_all (AT_FDCWD, path, 1 << 20, &buf, &len, err) < 0)
    return -1;
  _cleanup_json_ cJSON *j = cJSON_ParseWithLength (buf, len);
  const char *status = cJSON_GetStringValue (cJSON_GetObjectItem (j, "status"));
  if (status == NULL)
    return berr_make (err, EINVAL, "`%s`: no status", path);
  snprintf (st->status, sizeof st->status, "%s", status);
  st->pid = (pid_t)cJSON_GetNumberValue (cJSON_GetObjectItem (j, "pid"));
  st->shim_pid = (pid_t)cJSON_GetNumberValue (cJSON_GetObjectItem (j, "shimPid"));
  const cJSON *ec = cJSON_GetObjectItem (j, "exitCode");
  if (cJSON_IsNumber (ec))
    st->exit_code = ec->valueint;
  st->oom = cJSON_IsTrue (cJSON_GetObjectItem (j, "oomKilled"));
  const char *m = cJSON_GetStringValue (cJSON_GetObjectItem (j, "error"));
  st->error = m ? strdup (m) : NULL;
  return 0;
}

static int on_shim_exit (sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* Whether pid is our container's shim (pids are reused): comm and --id in its cmdline. */
static bool is_our_shim (pid_t pid, const char *id)
{
  char p[64];
  _cleanup_free_ char *comm = NULL, *cmd = NULL;
  size_t n = 0;
  _cleanup_berr_ berr *err = NULL;
  snprintf (p, sizeof p, "/proc/%d/comm", pid);
  if (bfs_read_all (AT_FDCWD, p, 4096, &comm, &n, &err) < 0 || strcmp (comm, "berth-shim\n") != 0)
    return false;
  snprintf (p, sizeof p, "/proc/%d/cmdline", pid);
  if (bfs_read_all (AT_FDCWD, p, 1 << 16, &cmd, &n, &err) < 0)
    return false;
  for (size_t i = 0; i + 1 < n; i += strlen (cmd + i) + 1)
    if (strcmp (cmd + i, "--id") == 0 && i + 5 < n && strcmp (cmd + i + 5, id) == 0)
      return true;
  return false;
}

/* Watches the shim: its pidfd becomes readable when it exited (after its final state.json). */
static int watch_shim (eng_container *c, pid_t shim_pid)
{
  int fd = pidfd_open_ (shim_pid);
  if (fd < 0)
    return -1;
  if (!is_our_shim (shim_pid, c->id)
      || sd_event_add_io (c->task->e->o.ev, &c->watch, fd, EPOLLIN, on_shim_exit, c) < 0)
    {
      close (fd);
      return -1;
    }
  sd_event_source_set_io_fd_own (c->watch, true);
  c->shim_pid = shim_pid;
  return 0;
}

/* The shim is gone: its state.json says how the container ended. */
static void finish_from_state (eng_container *c)
{
  shim_state st;
  _cleanup_berr_ berr *err = NULL;
  agent_engine *e = c->task->e;
  if (read_shim_state (e, c->id, &st, &err) < 0 || strcmp (st.status, "running") == 0)
    eng_container_stopped (c, -1, "ContainerLost: the container's shim exited without a result");
  else if (strcmp (st.status, "failed") == 0)
    {
      _cleanup_free_ char *m = NULL;
      eng_container_stopped (
          c, -1,
          asprintf (&m, "CannotStartContainerError: %s", st.error ? st.error : "unknown") < 0 ? NULL
                                                                                              : m);
    }
  else
    eng_container_stopped (
        c, st.exit_code, st.oom ? "OutOfMemoryError: Container killed due to memory usage" : NULL);
  free (st.error);
  berr_free (&err);
  if (rt_container_delete (e->o.runtime_root, c->id, true, &err) < 0 && berr_errno (err) != ENOENT)
    blog_berr (&err);
}

/* The shim is gone and its container exited: restarts it in place when its restartPolicy
 * says so (same id, rootfs and log; the old runtime state goes first). true when it did (or
 * tried: a failed start stops the container as any other). */
static bool try_restart (eng_container *c)
{
  agent_engine *e = c->task->e;
  shim_state st;
  _cleanup_berr_ berr *err = NULL;
  if (read_shim_state (e, c->id, &st, &err) < 0)
    return false;
  free (st.error);
  if (strcmp (st.status, "stopped") != 0 || !eng_restart_wanted (c, st.exit_code))
    return false;
  eng_health_stop (c);
  if (rt_container_delete (e->o.runtime_root, c->id, true, &err) < 0 && berr_errno (err) != ENOENT)
    blog_berr (&err);
  berr_free (&err);
  c->restarts++;
  c->pid = 0;
  blog_info ("container %s exited with %d: restart %u (restartPolicy)", c->id, st.exit_code,
             c->restarts);
  if (eng_launch (c, &err) < 0)
    {
      _cleanup_free_ char *m = NULL;
      eng_container_stopped (
          c, -1, asprintf (&m, "CannotStartContainerError: %s", err->msg) < 0 ? NULL : m);
    }
  return true;
}

static int on_shim_exit (sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  eng_container *c = userdata;
  (void)s, (void)fd, (void)revents;
  c->watch = sd_event_source_disable_unref (c->watch);
  if (!try_restart (c))
    finish_from_state (c);
  eng_step (c->task);
  return 0;
}

/* The start gave up (ECS_CONTAINER_START_TIMEOUT) and the invoker is gone: whatever of the
 * container exists goes (the runtime's state and its cgroup's processes), then it is STOPPED. */
static void start_timed_out (eng_container *c)
{
  agent_engine *e = c->task->e;
  _cleanup_berr_ berr *err = NULL;
  _cleanup_free_ char *m = NULL;
  if (rt_container_delete (e->o.runtime_root, c->id, true, &err) < 0 && berr_errno (err) != ENOENT)
    blog_berr (&err);
  eng_container_stopped (c, -1,
                         asprintf (&m,
                                   "CannotStartContainerError: the container did not start "
                                   "within ECS_CONTAINER_START_TIMEOUT (%.0f s)",
                                   (double)e->o.cfg->container_start_timeout_us / 1e6)
                                 < 0
                             ? NULL
                             : m);
}

/* ECS_CONTAINER_START_TIMEOUT: the start has no outcome yet. SIGKILL to the invoker's process
 * group takes the invoker and a monitor that has not detached yet (a fork in flight included);
 * a monitor that detached wrote shim.pid first, so it and the runtime it started (its own
 * group, as session leader) are killed through that. The invoker's exit then finishes it. */
static int on_start_timeout (sd_event_source *s, uint64_t usec, void *userdata)
{
  eng_container *c = userdata;
  agent_engine *e = c->task->e;
  _cleanup_free_ char *pidfile = path_of (e, "shims", c->id, "shim.pid"), *buf = NULL;
  _cleanup_berr_ berr *err = NULL;
  size_t n = 0;
  uint64_t shim_pid = 0;
  (void)s, (void)usec;
  blog_warn ("container %s did not start in time: killing its start", c->id);
  c->start_timed_out = true;
  if (c->invoker_pid > 0)
    kill (-c->invoker_pid, SIGKILL);
  if (pidfile && bfs_read_all (AT_FDCWD, pidfile, 64, &buf, &n, &err) == 0
      && bfs_parse_u64 (buf, &shim_pid) == 0 && shim_pid > 0)
    {
      _cleanup_close_ int fd = pidfd_open_ ((pid_t)shim_pid);
      if (fd >= 0 && is_our_shim ((pid_t)shim_pid, c->id))
        {
          kill (-(pid_t)shim_pid, SIGKILL);
          syscall (SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
        }
    }
  return 0;
}

/* The invoker exits once the start has an outcome (state.json running or failed). A container
 * that already exited (state.json stopped, with a pid) did run: it goes through RUNNING, so the
 * task reports RUNNING before STOPPED as with any other container. */
static int on_invoker_exit (sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  eng_container *c = userdata;
  siginfo_t si = { 0 };
  shim_state st;
  _cleanup_berr_ berr *err = NULL;
  (void)s, (void)revents;
  if (waitid (P_PIDFD, (id_t)fd, &si, WEXITED) < 0)
    blog_warn ("container %s: waitid on the shim invoker: %m", c->id);
  c->watch = sd_event_source_disable_unref (c->watch);
  c->start_timer = sd_event_source_disable_unref (c->start_timer);
  c->launching = false;
  c->invoker_pid = 0;
  if (c->task->e->launching > 0 && --c->task->e->launching + 1 >= eng_max_creates (c->task->e))
    eng_kick (c->task->e); /* a start slot came free: containers waiting for one go */
  if (c->start_timed_out)
    {
      start_timed_out (c);
      eng_step (c->task);
      return 0;
    }
  if (read_shim_state (c->task->e, c->id, &st, &err) < 0)
    {
      _cleanup_free_ char *m = NULL;
      eng_container_stopped (
          c, -1, asprintf (&m, "CannotStartContainerError: %s", err->msg) < 0 ? NULL : m);
      eng_step (c->task);
      return 0;
    }
  free (st.error);
  bool running = strcmp (st.status, "running") == 0;
  if (running || (strcmp (st.status, "stopped") == 0 && st.pid > 0))
    {
      c->pid = st.pid;
      c->known = ES_RUNNING;
      c->run_started_ns = bclock_real_ns ();
      if (eng_save_container (c, &err) < 0)
        blog_berr (&err);
      if (!running || watch_shim (c, st.shim_pid) < 0)
        {
          eng_step (c->task);
          finish_from_state (c);
        }
      else
        eng_health_start (c);
    }
  else
    finish_from_state (c);
  eng_step (c->task);
  return 0;
}

static int write_bundle (eng_container *c, berr **err)
{
  agent_engine *e = c->task->e;
  struct img_config *ic = NULL;
  _cleanup_json_ cJSON *cfg = NULL;
  _cleanup_free_ char *dir = path_of (e, "bundles", c->id, NULL), *text = NULL;
  if (dir == NULL)
    return berr_make (err, ENOMEM, "bundle");
  if (img_store_config (e->o.images, c->digest, &ic, err) < 0)
    return -1;
  if (bfs_mkdirs (dir, 0700, err) < 0)
    {
      img_config_free (ic);
      return -1;
    }
  int r = eng_build_config (c, ic, dir, &cfg, err);
  img_config_free (ic);
  if (r < 0)
    return -1;
  if ((text = cJSON_Print (cfg)) == NULL)
    return berr_make (err, ENOMEM, "config.json");
  _cleanup_close_ int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return berr_sys (err, "open `%s`", dir);
  return bfs_write_atomic_volatile (dfd, "config.json", text, strlen (text), 0600, err);
}

/* The previous run's state.json and shim.pid, which must not be taken for the next run's. */
static int forget_run (const char *shimdir, berr **err)
{
  static const char *const names[] = { "state.json", "shim.pid" };
  for (size_t i = 0; i < 2; i++)
    {
      char p[4096];
      snprintf (p, sizeof p, "%s/%s", shimdir, names[i]);
      if (unlink (p) < 0 && errno != ENOENT)
        return berr_sys (err, "unlink `%s`", p);
    }
  return 0;
}

int eng_launch (eng_container *c, berr **err)
{
  agent_engine *e = c->task->e;
  _cleanup_free_ char *bundle = path_of (e, "bundles", c->id, NULL);
  _cleanup_free_ char *shimdir = path_of (e, "shims", c->id, NULL);
  eng_log_opts lo;
  if (bundle == NULL || shimdir == NULL)
    return berr_make (err, ENOMEM, "launch");
  if (eng_log_opts_of (c, &lo, err) < 0)
    return -1;
  if (eng_net_setup (c, err) < 0)
    return -1;
  if (c->restarts == 0 && bfs_remove_tree (AT_FDCWD, shimdir, err) < 0)
    return -1;
  if (c->restarts > 0 && forget_run (shimdir, err) < 0) /* a restart keeps the log */
    return -1;
  const char *argv[] = { e->o.shim_path,    "--id",           c->id,
                         "--state-dir",     shimdir,          "--runtime",
                         e->o.runtime_path, "--runtime-root", e->o.runtime_root,
                         "--bundle",        bundle,           lo.argv[0],
                         lo.argv[1],        lo.argv[2],       lo.argv[3],
                         lo.argv[4],        lo.argv[5],       NULL };
  /* The invoker is placed in the task's supervisor/ cgroup before it execs; the bundle (whose
   * cgroupsPath names the task root, which on systemd hosts exists only once the child does)
   * is written while it waits. */
  __attribute__ ((cleanup (eng_cg_launch_clear))) eng_cg_launch cl = { .go = { -1, -1 } };
  if (eng_cg_prepare (c->task, &cl, err) < 0)
    return -1;
  c->known = ES_CREATED; /* durable before the shim exists, so a restart looks for it */
  if (eng_save_container (c, err) < 0)
    return -1;
  pid_t pid = fork ();
  if (pid < 0)
    return berr_sys (err, "fork");
  if (pid == 0)
    {
      setpgid (0, 0); /* the start timeout kills the invoker's group (on_start_timeout) */
      eng_cg_child (&cl);
      int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
      if (null >= 0)
        dup2 (null, 0), dup2 (null, 1), dup2 (null, 2);
      execv (argv[0], (char *const *)argv);
      _exit (127);
    }
  setpgid (pid, pid); /* also here: the group exists whichever of the two runs first */
  if (eng_cg_place (c, pid, &cl, err) < 0 || write_bundle (c, err) < 0
      || eng_cg_release (&cl, err) < 0)
    {
      kill (pid, SIGKILL);
      waitpid (pid, NULL, 0);
      return -1;
    }
  int fd = pidfd_open_ (pid);
  int r = fd < 0 ? -errno : sd_event_add_io (e->o.ev, &c->watch, fd, EPOLLIN, on_invoker_exit, c);
  if (r < 0)
    {
      if (fd >= 0)
        close (fd);
      waitpid (pid, NULL, 0); /* cannot watch it: wait (the invoker returns within a start) */
      return berr_sysn (err, -r, "watch the shim invoker");
    }
  sd_event_source_set_io_fd_own (c->watch, true);
  c->launching = true;
  e->launching++;
  c->invoker_pid = pid;
  c->start_timed_out = false;
  uint64_t timeout = e->o.cfg->container_start_timeout_us;
  if (timeout > 0
      && sd_event_add_time_relative (e->o.ev, &c->start_timer, CLOCK_MONOTONIC, timeout, 0,
                                     on_start_timeout, c)
             < 0)
    blog_warn ("container %s: cannot arm the start timeout", c->id);
  return 0;
}

static int on_kill_timer (sd_event_source *s, uint64_t usec, void *userdata)
{
  eng_container *c = userdata;
  _cleanup_berr_ berr *err = NULL;
  (void)s, (void)usec;
  blog_info ("container %s did not stop in time: SIGKILL", c->id);
  if (rt_container_kill (c->task->e->o.runtime_root, c->id, SIGKILL, &err) < 0)
    blog_berr (&err);
  return 0;
}

void eng_stop_container (eng_container *c)
{
  agent_engine *e = c->task->e;
  _cleanup_berr_ berr *err = NULL;
  int sig = SIGTERM;
  uint64_t timeout = e->o.cfg->container_stop_timeout_us;
  const cJSON *st = cJSON_GetObjectItem (c->def, "stopTimeout");
  if (cJSON_IsNumber (st) && st->valuedouble >= 0)
    timeout = (uint64_t)st->valuedouble * 1000000;
  if (c->stop_signal && rt_signal_from_name (c->stop_signal, &sig, &err) < 0)
    {
      blog_berr (&err);
      sig = SIGTERM;
    }
  c->stop_sent = true;
  if (rt_container_kill (e->o.runtime_root, c->id, sig, &err) < 0)
    blog_berr (&err); /* already gone: the shim's exit follows */
  sd_event_add_time_relative (e->o.ev, &c->kill_timer, CLOCK_MONOTONIC, timeout, 0, on_kill_timer,
                              c);
}

/* After a restart: find the shim of a container the store says was created or running. */
int eng_adopt (eng_container *c)
{
  shim_state st;
  _cleanup_berr_ berr *err = NULL;
  agent_engine *e = c->task->e;
  _cleanup_free_ char *pidfile = path_of (e, "shims", c->id, "shim.pid"), *buf = NULL;
  size_t n = 0;
  uint64_t shim_pid = 0;
  if (read_shim_state (e, c->id, &st, &err) == 0)
    {
      if (st.pid)
        c->pid = st.pid;
      free (st.error);
    }
  berr_free (&err);
  if (pidfile && bfs_read_all (AT_FDCWD, pidfile, 64, &buf, &n, &err) == 0)
    {
      if (bfs_parse_u64 (buf, &shim_pid) < 0)
        shim_pid = 0;
    }
  if (shim_pid > 0 && watch_shim (c, (pid_t)shim_pid) == 0)
    {
      blog_info ("container %s re-adopted (shim %llu, pid %d)", c->id, (unsigned long long)shim_pid,
                 c->pid);
      if (c->known == ES_CREATED && c->pid > 0)
        c->known = ES_RUNNING;
      if (c->known == ES_RUNNING)
        eng_health_start (c); /* from UNKNOWN again, as Docker after a daemon restart */
      return 0;
    }
  if (!try_restart (c))    /* exited meanwhile: restarted by its policy, */
    finish_from_state (c); /* or finished (state.json has the code) or lost */
  return 0;
}

void eng_remove_container (eng_container *c)
{
  agent_engine *e = c->task->e;
  _cleanup_berr_ berr *err = NULL;
  _cleanup_free_ char *bundle = path_of (e, "bundles", c->id, NULL);
  _cleanup_free_ char *shimdir = path_of (e, "shims", c->id, NULL);
  if (rt_container_delete (e->o.runtime_root, c->id, true, &err) < 0 && berr_errno (err) != ENOENT)
    blog_berr (&err);
  berr_free (&err);
  eng_net_teardown (c);
  if (img_rootfs_remove (e->o.images, c->id, &err) < 0)
    blog_berr (&err);
  if (bundle && bfs_remove_tree (AT_FDCWD, bundle, &err) < 0)
    blog_berr (&err);
  if (shimdir && bfs_remove_tree (AT_FDCWD, shimdir, &err) < 0)
    blog_berr (&err);
}
