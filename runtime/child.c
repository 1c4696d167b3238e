/* Child side of the launch: wait for the parent's go, enter namespaces, build the filesystem
 * view, then hand over to the process setup that ends in exec. Errors travel back to the parent
 * over the sync socket; nothing here returns. */
#include "runtime/internal.h"

#include "lib/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static const int ns_setns_type[RT_NS__COUNT] = {
  [RT_NS_PID] = CLONE_NEWPID,   [RT_NS_NET] = CLONE_NEWNET,  [RT_NS_IPC] = CLONE_NEWIPC,
  [RT_NS_UTS] = CLONE_NEWUTS,   [RT_NS_MOUNT] = CLONE_NEWNS, [RT_NS_CGROUP] = CLONE_NEWCGROUP,
  [RT_NS_USER] = CLONE_NEWUSER,
};

/* The user namespace first (it decides what the others may do), pid was entered by the parent. */
static int join_namespaces (const struct rt_spec *spec, berr **err)
{
  static const enum rt_ns_type order[]
      = { RT_NS_USER, RT_NS_NET, RT_NS_IPC, RT_NS_UTS, RT_NS_CGROUP, RT_NS_MOUNT };
  for (size_t i = 0; i < ARRAY_SIZE (order); i++)
    {
      const struct rt_namespace *ns = &spec->ns[order[i]];
      if (!ns->enabled || ns->path == NULL)
        continue;
      _cleanup_close_ int fd = open (ns->path, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        return berr_sys (err, "open namespace `%s`", ns->path);
      if (setns (fd, ns_setns_type[order[i]]) < 0)
        return berr_sys (err, "join namespace `%s`", ns->path);
    }
  return 0;
}

/* A launcher may have blocked or caught signals (the shim does): the container starts clean. */
static void reset_signals (void)
{
  sigset_t all;
  sigfillset (&all);
  sigprocmask (SIG_UNBLOCK, &all, NULL);
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP)
      signal (s, SIG_DFL);
}

static int install_stdio (const int *stdio, berr **err)
{
  for (int i = 0; stdio && i < 3; i++)
    if (stdio[i] >= 0 && stdio[i] != i && dup2 (stdio[i], i) < 0)
      return berr_sys (err, "set up fd %d", i);
  return 0;
}

struct ready_arg
{
  int sync_fd;
  int fifo_dirfd;
};

/* Tell the parent setup worked; in create mode park until `start` opens the exec fifo. */
static int ready_then_maybe_wait (void *p, berr **err)
{
  struct ready_arg *a = p;
  if (rt_sync_send (a->sync_fd, RT_SYNC_READY, NULL) < 0)
    return berr_sys (err, "report readiness");
  if (a->fifo_dirfd < 0)
    return 0;
  int fd = openat (a->fifo_dirfd, "exec.fifo", O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return berr_sys (err, "wait on exec.fifo");
  ssize_t n = write (fd, "0", 1);
  close (fd);
  if (n != 1)
    return berr_sys (err, "write exec.fifo");
  close (a->fifo_dirfd);
  return 0;
}

/* The parent's GO says the child now sits in its cgroups. Setup does not need them (no
 * user code runs yet), so it overlaps with the parent's v1 attach, whose cgroup.procs write
 * waits for an RCU grace period; only the process setup waits for GO. */
static int wait_for_go (int sync_fd, berr **err)
{
  struct rt_sync_msg m;
  int r = rt_sync_recv (sync_fd, &m, err);
  if (r <= 0 || m.type != RT_SYNC_GO)
    return r < 0 ? -1 : berr_make (err, EPROTO, "the launcher went away");
  return 0;
}

static int child_setup (struct rt_child_ctx *ctx, berr **err)
{
  const struct rt_spec *spec = ctx->spec;
  reset_signals ();
  if (install_stdio (ctx->stdio, err) < 0)
    return -1;
  if (setsid () < 0)
    return berr_sys (err, "setsid");
  if (join_namespaces (spec, err) < 0)
    return -1;
  if (spec->hostname && spec->ns[RT_NS_UTS].enabled && spec->ns[RT_NS_UTS].path == NULL
      && sethostname (spec->hostname, strlen (spec->hostname)) < 0)
    return berr_sys (err, "set hostname `%s`", spec->hostname);
  if (!spec->ns[RT_NS_MOUNT].enabled || spec->ns[RT_NS_MOUNT].path)
    return berr_make (err, EINVAL, "a container needs its own mount namespace");
  umask (0);
  if (rt_setup_rootfs (spec, ctx->new_cgroupns_v2, err) < 0 || rt_apply_sysctls (spec, err) < 0
      || rt_finish_rootfs (spec, err) < 0)
    return -1;
  umask (022);
  return wait_for_go (ctx->sync_fd, err);
}

void rt_child_main (struct rt_child_ctx *ctx)
{
  berr *err = NULL;
  /* Not dumpable while host resources are still reachable (exec resets it). */
  prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (child_setup (ctx, &err) == 0)
    {
      struct ready_arg ra = { ctx->sync_fd, ctx->exec_fifo_dirfd };
      int keep[2] = { ctx->sync_fd, ctx->exec_fifo_dirfd };
      rt_exec_process (&ctx->spec->process, ctx->have_seccomp ? &ctx->seccomp : NULL, keep,
                       ctx->exec_fifo_dirfd >= 0 ? 2 : 1, ready_then_maybe_wait, &ra, &err);
    }
  /* After READY in create mode the parent is gone: the container's stderr is all we have. */
  if (rt_sync_send (ctx->sync_fd, RT_SYNC_ERROR, err) < 0 && err)
    dprintf (STDERR_FILENO, "berth: %s\n", err->msg);
  _exit (127);
}
