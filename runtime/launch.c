/* Parent side of the launch sequence: cgroup first, seccomp compiled (cached) before the clone,
 * clone3 into new namespaces (and straight into the cgroup on v2), then wait for the child to
 * report that its setup worked, or why it did not. */
#include "runtime/internal.h"

#include "cgroups/cgroups.h"
#include "lib/cleanup.h"
#include "lib/clock.h"
#include "lib/fs.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int rt_sync_send (int fd, enum rt_sync_type type, const berr *e)
{
  struct rt_sync_msg m = { .type = type };
  if (e)
    {
      m.errnum = e->errnum;
      snprintf (m.msg, sizeof m.msg, "%s", e->msg);
    }
  ssize_t n;
  do
    n = send (fd, &m, sizeof m, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n == (ssize_t)sizeof m ? 0 : -1;
}

int rt_sync_error (const struct rt_sync_msg *m, berr **err)
{
  /* The child's message already carries its strerror text. */
  return berr_make (err, m->errnum, "%s", m->msg);
}

int rt_sync_recv (int fd, struct rt_sync_msg *m, berr **err)
{
  ssize_t n;
  do
    n = recv (fd, m, sizeof *m, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return berr_sys (err, "read from the container's setup channel");
  if (n == 0)
    return 0;
  if (n != (ssize_t)sizeof *m)
    return berr_make (err, EPROTO, "short message on the container's setup channel");
  m->msg[sizeof m->msg - 1] = '\0';
  return 1;
}

static const uint64_t ns_clone_flag[RT_NS__COUNT] = {
  [RT_NS_PID] = CLONE_NEWPID,   [RT_NS_NET] = CLONE_NEWNET,  [RT_NS_IPC] = CLONE_NEWIPC,
  [RT_NS_UTS] = CLONE_NEWUTS,   [RT_NS_MOUNT] = CLONE_NEWNS, [RT_NS_CGROUP] = CLONE_NEWCGROUP,
  [RT_NS_USER] = CLONE_NEWUSER,
};

/* Namespaces to create at clone time; joined ones (with a path) are entered by the child,
 * except pid, which the parent enters for its children only (pid_for_children). */
static uint64_t clone_flags_for (const struct rt_spec *spec)
{
  uint64_t flags = 0;
  for (int i = 0; i < RT_NS__COUNT; i++)
    if (spec->ns[i].enabled && spec->ns[i].path == NULL)
      flags |= ns_clone_flag[i];
  return flags;
}

/* The devices every container may use, as in the common engines: the null/zero/full/random/
 * urandom/tty/console/ptmx nodes and the pts devices, plus mknod of anything (creating a node
 * does not grant access to it). */
static const struct cg_device_rule default_device_rules[] = {
  { true, 'c', -1, -1, "m" }, { true, 'b', -1, -1, "m" },    { true, 'c', 1, 3, "rwm" },
  { true, 'c', 1, 5, "rwm" }, { true, 'c', 1, 7, "rwm" },    { true, 'c', 1, 8, "rwm" },
  { true, 'c', 1, 9, "rwm" }, { true, 'c', 5, 0, "rwm" },    { true, 'c', 5, 1, "rwm" },
  { true, 'c', 5, 2, "rwm" }, { true, 'c', 136, -1, "rwm" },
};

static int make_cgroup (const struct rt_spec *spec, cg_group **out, berr **err)
{
  const struct rt_cgroup *c = &spec->cgroup;
  size_t n = ARRAY_SIZE (default_device_rules) + spec->n_devices;
  _cleanup_free_ struct cg_device_rule *rules = calloc (n, sizeof *rules);
  if (rules == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  memcpy (rules, default_device_rules, sizeof default_device_rules);
  for (size_t i = 0; i < spec->n_devices; i++)
    {
      struct cg_device_rule *r = &rules[ARRAY_SIZE (default_device_rules) + i];
      *r = (struct cg_device_rule){ true, spec->devices[i].type, spec->devices[i].major,
                                    spec->devices[i].minor, "rwm" };
      if (spec->devices[i].access[0]) /* narrowed by resources.devices */
        memcpy (r->access, spec->devices[i].access, sizeof r->access);
    }
  if (c->devices_allow_all) /* privileged: every device */
    {
      rules[0] = (struct cg_device_rule){ true, 'a', -1, -1, "rwm" };
      n = 1;
    }
  struct cg_limits lim = {
    .cpu_units = c->cpu_units,
    .cpu_quota_us = c->cpu_quota_us,
    .cpu_period_us = c->cpu_period_us,
    .memory_max = c->memory_max,
    .memory_low = c->memory_low,
    .pids_max = c->pids_max,
    .devices = rules,
    .n_devices = n,
    .devices_set = true,
  };
  if (cg_create (c->path, &lim, out, err) < 0)
    return berr_wrap (err, "create cgroup `%s`", c->path);
  return 0;
}

/* Enters the pid namespace to join for our future children only; restored afterwards. */
static int enter_pid_ns_for_children (const struct rt_spec *spec, int *restore_fd, berr **err)
{
  *restore_fd = -1;
  const struct rt_namespace *ns = &spec->ns[RT_NS_PID];
  if (!ns->enabled || ns->path == NULL)
    return 0;
  _cleanup_close_ int fd = open (ns->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return berr_sys (err, "open pid namespace `%s`", ns->path);
  *restore_fd = open ("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  if (*restore_fd < 0)
    return berr_sys (err, "open /proc/self/ns/pid");
  if (setns (fd, CLONE_NEWPID) < 0)
    return berr_sys (err, "join pid namespace `%s`", ns->path);
  return 0;
}

static pid_t clone_child (uint64_t flags, int cgroup_fd, int *pidfd)
{
  struct clone_args args = {
    .flags = flags | CLONE_PIDFD | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0),
    .pidfd = (uint64_t)(uintptr_t)pidfd,
    .exit_signal = SIGCHLD,
    .cgroup = cgroup_fd >= 0 ? (uint64_t)cgroup_fd : 0,
  };
  return (pid_t)syscall (SYS_clone3, &args, sizeof args);
}

/* Waits for the child's verdict. READY then EOF means exec happened (run) or the container is
 * parked on its exec fifo (create); ERROR carries the child's message. */
static int await_child (int sync_fd, pid_t pid, enum rt_launch_mode mode, berr **err)
{
  struct rt_sync_msg m;
  bool ready = false;
  for (;;)
    {
      int r = rt_sync_recv (sync_fd, &m, err);
      if (r < 0)
        return -1;
      if (r == 0)
        break;
      if (m.type == RT_SYNC_ERROR)
        return rt_sync_error (&m, err);
      if (m.type == RT_SYNC_READY)
        {
          ready = true;
          if (mode == RT_LAUNCH_CREATE)
            return 0;
        }
    }
  if (ready)
    return 0;
  int status = 0;
  if (waitpid (pid, &status, WNOHANG) == pid && WIFSIGNALED (status))
    return berr_make (err, EIO, "container init died during setup (signal %d)", WTERMSIG (status));
  return berr_make (err, EIO, "container init exited during setup");
}

static int prepare_seccomp (const struct rt_spec *spec, const struct rt_launch_opts *opts,
                            struct rt_child_ctx *ctx, int state_dirfd, berr **err)
{
  if (spec->seccomp == NULL)
    return 0;
  _cleanup_free_ char *cache = NULL;
  if (opts->seccomp_cache_dir == NULL
      && asprintf (&cache, "%s/seccomp-cache", opts->state_root) < 0)
    return berr_make (err, ENOMEM, "out of memory");
  void *prog = NULL;
  size_t len = 0;
  if (rt_seccomp_compile (spec->seccomp, opts->seccomp_cache_dir ? opts->seccomp_cache_dir : cache,
                          &prog, &len, err)
      < 0)
    return berr_wrap (err, "seccomp profile");
  ctx->seccomp.filter = prog;
  ctx->seccomp.len = (unsigned short)len;
  ctx->have_seccomp = true;
  /* exec'd processes get the same filter: keep the compiled program with the state. */
  if (state_dirfd >= 0
      && bfs_write_atomic_volatile (state_dirfd, "seccomp.bpf", prog,
                                    len * sizeof (struct sock_filter), 0600, err)
             < 0)
    return -1;
  return 0;
}

struct launch
{
  const struct rt_spec *spec;
  const struct rt_launch_opts *opts;
  cg_group *cg;
  int state_dirfd;
  int sync[2];
  int pidfd;
  pid_t pid;
  struct rt_child_ctx ctx;
};

static void launch_release (struct launch *l)
{
  free ((void *)l->ctx.seccomp.filter);
  if (l->cg)
    cg_free (l->cg);
  for (int i = 0; i < 2; i++)
    if (l->sync[i] >= 0)
      close (l->sync[i]);
  if (l->pidfd >= 0)
    close (l->pidfd);
  if (l->state_dirfd >= 0)
    close (l->state_dirfd);
}

static int launch_record_state (struct launch *l, berr **err)
{
  struct rt_state st = {
    .id = (char *)l->opts->id,
    .bundle = (char *)l->opts->bundle,
    .pid = l->pid,
    .pid_start_time = rt_proc_start_time (l->pid),
    .status = l->opts->mode == RT_LAUNCH_CREATE ? "created" : "running",
    .created_ns = bclock_real_ns (),
    .cgroup_path = l->spec->cgroup.path,
  };
  return rt_state_save (l->state_dirfd, &st, err);
}

static int launch_clone (struct launch *l, berr **err)
{
  int restore_pidns = -1;
  if (enter_pid_ns_for_children (l->spec, &restore_pidns, err) < 0)
    {
      if (restore_pidns >= 0)
        close (restore_pidns);
      return -1;
    }
  int cgfd = l->cg ? cg_clone_fd (l->cg) : -1;
  l->pid = clone_child (clone_flags_for (l->spec), cgfd, &l->pidfd);
  int clone_errno = errno;
  if (l->pid == 0)
    {
      close (l->sync[0]);
      rt_child_main (&l->ctx);
    }
  if (restore_pidns >= 0)
    {
      if (setns (restore_pidns, CLONE_NEWPID) < 0)
        blog_warn ("could not restore the pid namespace for children: %s", strerror (errno));
      close (restore_pidns);
    }
  if (l->pid < 0)
    {
      errno = clone_errno;
      return berr_sys (err, "clone the container's init");
    }
  close (l->sync[1]);
  l->sync[1] = -1;
  return 0;
}

static void launch_abort (struct launch *l)
{
  if (l->pid > 0)
    {
      kill (l->pid, SIGKILL);
      waitpid (l->pid, NULL, 0);
    }
  if (l->cg)
    {
      berr *e = NULL;
      if (cg_destroy (l->cg, &e) < 0)
        blog_berr (&e);
    }
}

int rt_container_launch (const struct rt_spec *spec, const struct rt_launch_opts *opts,
                         pid_t *pid_out, berr **err)
{
  struct launch l = { .spec = spec,
                      .opts = opts,
                      .state_dirfd = -1,
                      .sync = { -1, -1 },
                      .pidfd = -1,
                      .ctx = { .spec = spec, .exec_fifo_dirfd = -1, .stdio = opts->stdio } };
  int ret = -1;
  enum cg_mode mode = CG_MODE_UNIFIED;
  if (rt_validate_id (opts->id, err) < 0 || cg_detect_mode (&mode, err) < 0)
    goto out;
  l.ctx.new_cgroupns_v2 = mode == CG_MODE_UNIFIED;
  if ((l.state_dirfd = rt_state_dir_open (opts->state_root, opts->id, true, err)) < 0)
    goto out;
  if (opts->mode == RT_LAUNCH_CREATE)
    {
      if (mkfifoat (l.state_dirfd, "exec.fifo", 0600) < 0 && errno != EEXIST)
        {
          berr_sys (err, "create exec.fifo");
          goto out;
        }
      l.ctx.exec_fifo_dirfd = l.state_dirfd;
    }
  if (prepare_seccomp (spec, opts, &l.ctx, l.state_dirfd, err) < 0)
    goto out;
  if (spec->cgroup.path && make_cgroup (spec, &l.cg, err) < 0)
    goto out;
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, l.sync) < 0)
    {
      berr_sys (err, "socketpair");
      goto out;
    }
  l.ctx.sync_fd = l.sync[1];
  if (launch_clone (&l, err) < 0)
    goto out;
  if (l.cg && cg_clone_fd (l.cg) < 0 && cg_attach (l.cg, l.pid, err) < 0)
    goto out;
  /* If the child already failed its setup, GO finds it gone; its ERROR is still queued. */
  rt_sync_send (l.sync[0], RT_SYNC_GO, NULL);
  if (await_child (l.sync[0], l.pid, opts->mode, err) < 0 || launch_record_state (&l, err) < 0)
    goto out;
  if (pid_out)
    *pid_out = l.pid;
  ret = 0;
out:
  if (ret < 0)
    {
      launch_abort (&l);
      if (l.state_dirfd >= 0)
        {
          close (l.state_dirfd);
          l.state_dirfd = -1;
          _cleanup_free_ char *dir = NULL;
          if (asprintf (&dir, "%s/%s", opts->state_root, opts->id) > 0)
            bfs_remove_tree (AT_FDCWD, dir, NULL);
        }
    }
  launch_release (&l);
  return ret;
}
