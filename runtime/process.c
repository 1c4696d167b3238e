/* The last steps before a container process runs, shared by launch and exec: identity, limits,
 * descriptors, working directory, environment, capabilities, no_new_privs and seccomp, in the
 * order that keeps each step possible and the result least privileged. */
#include "runtime/internal.h"

#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/strv.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static int cmp_int (const void *a, const void *b)
{
  return *(const int *)a - *(const int *)b;
}

/* Closes every descriptor above stdio except keep[] (CVE-2024-21626: no host fd may survive
 * into the chdir or the exec). */
static int close_other_fds (const int *keep, size_t n_keep, berr **err)
{
  int sorted[8];
  size_t n = 0;
  for (size_t i = 0; i < n_keep && n < ARRAY_SIZE (sorted); i++)
    if (keep[i] > 2)
      sorted[n++] = keep[i];
  qsort (sorted, n, sizeof sorted[0], cmp_int);
  unsigned int from = 3;
  for (size_t i = 0; i <= n; i++)
    {
      unsigned int to = i < n ? (unsigned int)sorted[i] - 1 : ~0U;
      if (from <= to && close_range (from, to, 0) < 0)
        return berr_sys (err, "close_range");
      if (i < n)
        from = (unsigned int)sorted[i] + 1;
    }
  return 0;
}

static int enter_cwd (const char *cwd, berr **err)
{
  if (chdir (cwd ? cwd : "/") < 0)
    return berr_sys (err, "chdir to the working directory `%s`", cwd);
  char buf[4096];
  /* A path outside the root (e.g. through a leaked fd) shows as "(unreachable)/...". */
  if (getcwd (buf, sizeof buf) == NULL || buf[0] != '/')
    return berr_make (err, EPERM, "working directory `%s` is outside the container", cwd);
  return 0;
}

static int apply_rlimits (const struct rt_process *p, berr **err)
{
  for (size_t i = 0; i < p->n_rlimits; i++)
    {
      struct rlimit rl = { p->rlimits[i].soft, p->rlimits[i].hard };
      if (setrlimit (p->rlimits[i].resource, &rl) < 0)
        return berr_sys (err, "setrlimit %d", p->rlimits[i].resource);
    }
  if (p->oom_score_adj_set)
    {
      char v[16];
      snprintf (v, sizeof v, "%d", p->oom_score_adj);
      if (bfs_write_file (AT_FDCWD, "/proc/self/oom_score_adj", v, err) < 0)
        return -1;
    }
  return 0;
}

static int drop_bounding (uint64_t keep, berr **err)
{
  int last = (int)cap_max_bits () - 1;
  for (int c = 0; c <= last && c < 64; c++)
    if (!(keep & (1ULL << c)) && prctl (PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
      return berr_sys (err, "drop capability %d from the bounding set", c);
  return 0;
}

static int set_cap_sets (const struct rt_caps *caps, berr **err)
{
  cap_t c = cap_init ();
  if (c == NULL)
    return berr_sys (err, "cap_init");
  int last = (int)cap_max_bits () - 1;
  int ret = 0;
  for (cap_value_t v = 0; v <= last && v < 64; v++)
    {
      uint64_t bit = 1ULL << v;
      if ((caps->effective & bit) && cap_set_flag (c, CAP_EFFECTIVE, 1, &v, CAP_SET) < 0)
        ret = -1;
      if ((caps->permitted & bit) && cap_set_flag (c, CAP_PERMITTED, 1, &v, CAP_SET) < 0)
        ret = -1;
      if ((caps->inheritable & bit) && cap_set_flag (c, CAP_INHERITABLE, 1, &v, CAP_SET) < 0)
        ret = -1;
    }
  if (ret < 0 || cap_set_proc (c) < 0)
    ret = berr_sys (err, "set capabilities");
  cap_free (c);
  if (ret < 0)
    return ret;
  /* The kernel only lets a capability be ambient if it is permitted and inheritable. Bundles
   * from common `spec` commands list ambient ones with an empty inheritable set; like the other
   * runtimes, Berth skips those rather than fail the container (docs/runtime.md). */
  uint64_t possible = caps->ambient & caps->permitted & caps->inheritable;
  for (cap_value_t v = 0; v <= last && v < 64; v++)
    if ((possible & (1ULL << v)) && cap_set_ambient (v, CAP_SET) < 0)
      return berr_sys (err, "raise ambient capability %d", v);
  return 0;
}

/* Bounding set, then identity with KEEPCAPS so permitted survives setuid, then the sets. */
static int switch_identity (const struct rt_process *p, uid_t uid, gid_t gid, const gid_t *groups,
                            size_t n_groups, berr **err)
{
  if (drop_bounding (p->caps.bounding, err) < 0)
    return -1;
  if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return berr_sys (err, "PR_SET_KEEPCAPS");
  if (setgroups (n_groups, groups) < 0)
    return berr_sys (err, "setgroups");
  if (setresgid (gid, gid, gid) < 0)
    return berr_sys (err, "setresgid %u", (unsigned)gid);
  if (setresuid (uid, uid, uid) < 0)
    return berr_sys (err, "setresuid %u", (unsigned)uid);
  if (set_cap_sets (&p->caps, err) < 0)
    return -1;
  if (prctl (PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    return berr_sys (err, "PR_SET_KEEPCAPS");
  return 0;
}

static int load_seccomp (const struct sock_fprog *prog, berr **err)
{
  if (prog == NULL)
    return 0;
  if (syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0)
    return berr_sys (err, "load the seccomp filter");
  return 0;
}

/* The environment for exec: the process's own, plus PATH and HOME when missing. */
static char **build_env (const struct rt_process *p, const char *home)
{
  char **env = strv_dup (p->env);
  if (env == NULL)
    return NULL;
  if (strv_env_get (env, "PATH") == NULL && strv_env_set (&env, "PATH", DEFAULT_PATH) < 0)
    goto fail;
  if (strv_env_get (env, "HOME") == NULL && strv_env_set (&env, "HOME", home ? home : "/") < 0)
    goto fail;
  return env;
fail:
  strv_free (env);
  return NULL;
}

int rt_exec_process (const struct rt_process *p, const struct sock_fprog *seccomp, const int *keep,
                     size_t n_keep, rt_before_exec_fn before_exec, void *arg, berr **err)
{
  uid_t uid = p->uid;
  gid_t gid = p->gid;
  _cleanup_free_ gid_t *groups = NULL;
  size_t n_groups = p->n_groups;
  _cleanup_free_ char *home = NULL;
  if (p->args == NULL || p->args[0] == NULL)
    return berr_make (err, EINVAL, "no process to run (empty args)");
  if (p->user && *p->user)
    {
      _cleanup_close_ int root = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (rt_user_resolve (root, p->user, &uid, &gid, &groups, &n_groups, &home, err) < 0)
        return -1;
    }
  else if (n_groups && (groups = malloc (n_groups * sizeof *groups)))
    memcpy (groups, p->groups, n_groups * sizeof *groups);
  if (apply_rlimits (p, err) < 0 || close_other_fds (keep, n_keep, err) < 0
      || enter_cwd (p->cwd, err) < 0)
    return -1;
  _cleanup_strv_ char **env = build_env (p, home);
  if (env == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  /* Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it before the drop. */
  if (!p->no_new_privs && load_seccomp (seccomp, err) < 0)
    return -1;
  if (switch_identity (p, uid, gid, groups, n_groups, err) < 0)
    return -1;
  if (p->no_new_privs && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return berr_sys (err, "PR_SET_NO_NEW_PRIVS");
  if (p->no_new_privs && load_seccomp (seccomp, err) < 0)
    return -1;
  if (before_exec && before_exec (arg, err) < 0)
    return -1;
  /* execvpe searches the caller's PATH, so the container's environment must be ours now. */
  environ = env;
  execvpe (p->args[0], p->args, env);
  return berr_sys (err, "exec `%s`", p->args[0]);
}
