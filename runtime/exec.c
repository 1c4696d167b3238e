/* exec into a running container: join its namespaces through a pidfd (checked against the
 * recorded start time), its cgroup, and its seccomp filter, then run the process setup shared
 * with launch. Health checks use this. */
#include "runtime/internal.h"

#include "cgroups/cgroups.h"
#include "lib/cleanup.h"
#include "lib/fs.h"

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

static const struct
{
  const char *name;
  int flag;
} ns_files[] = {
  { "mnt", CLONE_NEWNS },  { "net", CLONE_NEWNET },       { "ipc", CLONE_NEWIPC },
  { "uts", CLONE_NEWUTS }, { "cgroup", CLONE_NEWCGROUP }, { "pid", CLONE_NEWPID },
};

/* The namespaces the container does not share with us. */
static int differing_namespaces (pid_t pid, int *flags, berr **err)
{
  *flags = 0;
  for (size_t i = 0; i < ARRAY_SIZE (ns_files); i++)
    {
      char theirs[64], ours[64];
      struct stat a, b;
      snprintf (theirs, sizeof theirs, "/proc/%d/ns/%s", (int)pid, ns_files[i].name);
      snprintf (ours, sizeof ours, "/proc/self/ns/%s", ns_files[i].name);
      if (stat (theirs, &a) < 0)
        return berr_sys (err, "stat `%s`", theirs);
      if (stat (ours, &b) < 0)
        return berr_sys (err, "stat `%s`", ours);
      if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
        *flags |= ns_files[i].flag;
    }
  return 0;
}

static int load_filter (int dfd, struct sock_fprog *prog, berr **err)
{
  char *buf = NULL;
  size_t len = 0;
  if (bfs_read_all (dfd, "seccomp.bpf", 1 << 20, &buf, &len, NULL) < 0)
    return 0; /* the container has no filter */
  if (len == 0 || len % sizeof (struct sock_filter) != 0
      || len / sizeof (struct sock_filter) > 0xffff)
    {
      free (buf);
      return berr_make (err, EINVAL, "corrupt seccomp.bpf in the container's state");
    }
  prog->filter = (struct sock_filter *)buf;
  prog->len = (unsigned short)(len / sizeof (struct sock_filter));
  return 1;
}

struct exec_child
{
  const struct rt_process *proc;
  const int *stdio;
  int pidfd;
  int ns_flags;
  int sync_fd;
  struct sock_fprog *filter;
};

static int send_ready (void *arg, berr **err)
{
  if (rt_sync_send (*(int *)arg, RT_SYNC_READY, NULL) < 0)
    return berr_sys (err, "report readiness");
  return 0;
}

__attribute__ ((noreturn)) static void exec_child_main (struct exec_child *c)
{
  berr *err = NULL;
  struct rt_sync_msg m;
  int r = rt_sync_recv (c->sync_fd, &m, &err);
  if (r > 0 && m.type == RT_SYNC_GO)
    {
      sigset_t all;
      sigfillset (&all);
      sigprocmask (SIG_UNBLOCK, &all, NULL);
      for (int i = 0; c->stdio && i < 3; i++)
        if (c->stdio[i] >= 0 && c->stdio[i] != i)
          dup2 (c->stdio[i], i);
      int other = c->ns_flags & ~CLONE_NEWPID;
      if (other && setns (c->pidfd, other) < 0)
        berr_sys (&err, "join the container's namespaces");
      else
        {
          int keep = c->sync_fd;
          rt_exec_process (c->proc, c->filter, &keep, 1, send_ready, &c->sync_fd, &err);
        }
    }
  else if (r == 0)
    berr_make (&err, EPROTO, "the launcher went away");
  rt_sync_send (c->sync_fd, RT_SYNC_ERROR, err);
  _exit (127);
}

/* Waits for READY then EOF (exec happened) or ERROR. */
static int await_exec (int fd, berr **err)
{
  struct rt_sync_msg m;
  bool ready = false;
  int r;
  while ((r = rt_sync_recv (fd, &m, err)) > 0)
    {
      if (m.type == RT_SYNC_ERROR)
        return rt_sync_error (&m, err);
      ready |= m.type == RT_SYNC_READY;
    }
  if (r < 0)
    return -1;
  return ready ? 0 : berr_make (err, EIO, "exec'd process died during setup");
}

static pid_t clone_exec (struct exec_child *c, int cgfd, int own_pidns)
{
  if ((c->ns_flags & CLONE_NEWPID) && setns (c->pidfd, CLONE_NEWPID) < 0)
    return -1;
  struct clone_args args = {
    .flags = cgfd >= 0 ? CLONE_INTO_CGROUP : 0,
    .exit_signal = SIGCHLD,
    .cgroup = cgfd >= 0 ? (uint64_t)cgfd : 0,
  };
  pid_t pid = (pid_t)syscall (SYS_clone3, &args, sizeof args);
  int saved = errno;
  if (pid == 0)
    exec_child_main (c);
  if ((c->ns_flags & CLONE_NEWPID) && setns (own_pidns, CLONE_NEWPID) < 0)
    saved = errno;
  errno = saved;
  return pid;
}

struct exec_run
{
  struct rt_state *st;
  cg_group *cg;
  int dfd, pidfd, own_pidns;
  int sync[2];
  struct sock_fprog filter;
};

static void exec_run_release (struct exec_run *r)
{
  rt_state_free (r->st);
  if (r->cg)
    cg_free (r->cg);
  int fds[] = { r->dfd, r->pidfd, r->own_pidns, r->sync[0], r->sync[1] };
  for (size_t i = 0; i < ARRAY_SIZE (fds); i++)
    if (fds[i] >= 0)
      close (fds[i]);
  free (r->filter.filter);
}

static int exec_prepare (struct exec_run *r, const char *state_root, const char *id, berr **err)
{
  if (rt_state_load (state_root, id, &r->st, err) < 0)
    return -1;
  if (strcmp (r->st->status, "running") != 0)
    return berr_make (err, EINVAL, "container `%s` is %s, not running", id, r->st->status);
  if ((r->pidfd = rt_state_pidfd (r->st, err)) < 0
      || (r->dfd = rt_state_dir_open (state_root, id, false, err)) < 0
      || load_filter (r->dfd, &r->filter, err) < 0)
    return -1;
  if (r->st->cgroup_path && cg_open (r->st->cgroup_path, &r->cg, err) < 0)
    return berr_wrap (err, "cgroup of `%s`", id);
  if ((r->own_pidns = open ("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC)) < 0)
    return berr_sys (err, "open /proc/self/ns/pid");
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, r->sync) < 0)
    return berr_sys (err, "socketpair");
  return 0;
}

int rt_container_exec (const char *state_root, const char *id, const struct rt_process *proc,
                       const int stdio[3], pid_t *pid_out, int *wait_status, berr **err)
{
  struct exec_run r = { .dfd = -1, .pidfd = -1, .own_pidns = -1, .sync = { -1, -1 } };
  int ret = -1;
  pid_t pid = -1;
  if (exec_prepare (&r, state_root, id, err) < 0)
    goto out;
  struct exec_child c = { .proc = proc,
                          .stdio = stdio,
                          .pidfd = r.pidfd,
                          .sync_fd = r.sync[1],
                          .filter = r.filter.filter ? &r.filter : NULL };
  if (differing_namespaces (r.st->pid, &c.ns_flags, err) < 0)
    goto out;
  int cgfd = r.cg ? cg_clone_fd (r.cg) : -1;
  if ((pid = clone_exec (&c, cgfd, r.own_pidns)) < 0)
    {
      berr_sys (err, "clone a process into `%s`", id);
      goto out;
    }
  close (r.sync[1]);
  r.sync[1] = -1;
  if (r.cg && cgfd < 0 && cg_attach (r.cg, pid, err) < 0)
    goto out;
  if (rt_sync_send (r.sync[0], RT_SYNC_GO, NULL) < 0 || await_exec (r.sync[0], err) < 0)
    {
      if (err && *err == NULL)
        berr_sys (err, "exec into `%s`", id);
      goto out;
    }
  if (pid_out)
    *pid_out = pid;
  if (wait_status)
    while (waitpid (pid, wait_status, 0) < 0)
      if (errno != EINTR)
        {
          berr_sys (err, "wait for the exec'd process");
          goto out;
        }
  ret = 0;
out:
  if (ret < 0 && pid > 0)
    {
      kill (pid, SIGKILL);
      waitpid (pid, NULL, 0);
    }
  exec_run_release (&r);
  return ret;
}
