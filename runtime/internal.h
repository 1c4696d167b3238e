/* Declarations shared between the runtime's own files; not part of the public API. */
#ifndef BERTH_RUNTIME_INTERNAL_H
#define BERTH_RUNTIME_INTERNAL_H

#include "runtime/runtime.h"

#include <linux/filter.h>
#include <stdint.h>

/* Parent and child talk over a SOCK_SEQPACKET socketpair, one message per datagram. */
enum rt_sync_type
{
  RT_SYNC_GO = 1, /* parent -> child: placed in the cgroup, carry on */
  RT_SYNC_READY,  /* child -> parent: set up; about to exec (run) or wait for start (create) */
  RT_SYNC_ERROR,  /* child -> parent: setup failed, msg says why */
};

struct rt_sync_msg
{
  int32_t type;
  int32_t errnum;
  char msg[1024];
};

int rt_sync_send (int fd, enum rt_sync_type type, const berr *e);
/* Turns a child's ERROR message into *err (keeping its errno); returns -1. */
int rt_sync_error (const struct rt_sync_msg *m, berr **err);
/* Returns 1 for a message, 0 at EOF, -1 on error. */
int rt_sync_recv (int fd, struct rt_sync_msg *m, berr **err);

/* Everything the child needs, prepared by the parent before the clone. */
struct rt_child_ctx
{
  const struct rt_spec *spec;
  int sync_fd;
  int exec_fifo_dirfd; /* create mode: the state directory holding exec.fifo; else -1 */
  const int *stdio;    /* 3 fds or NULL */
  struct sock_fprog seccomp;
  bool have_seccomp;
  bool new_cgroupns_v2; /* mount cgroup2 for "cgroup" mounts */
};

/* Child side of the launch: never returns. */
__attribute__ ((noreturn)) void rt_child_main (struct rt_child_ctx *ctx);

/* Mounts, /dev, the working directory, then pivot_root (child, in its new mount namespace). */
int rt_setup_rootfs (const struct rt_spec *spec, bool cgroup2, berr **err);
/* sysctls, after /proc is mounted in the container (namespaced keys only). */
int rt_apply_sysctls (const struct rt_spec *spec, berr **err);
/* After pivot_root and sysctls: masked paths, read-only paths, read-only root. */
int rt_finish_rootfs (const struct rt_spec *spec, berr **err);

/* Called right before execve, after capabilities and seccomp are in place. */
typedef int (*rt_before_exec_fn) (void *arg, berr **err);

/* The process part shared by launch and exec: user, rlimits, fds, cwd, environment,
 * capabilities, no_new_privs, seccomp, then exec. Only returns on failure. keep[] lists fds
 * that stay open (they are CLOEXEC) until the exec. */
int rt_exec_process (const struct rt_process *proc, const struct sock_fprog *seccomp,
                     const int *keep, size_t n_keep, rt_before_exec_fn before_exec, void *arg,
                     berr **err);

/* Resolves "name[:group]" (or numeric) using the container's /etc/passwd and /etc/group,
 * read from rootfd (the container's root). Fills uid, gid, and supplementary groups. */
int rt_user_resolve (int rootfd, const char *user, uid_t *uid, gid_t *gid, gid_t **groups,
                     size_t *n_groups, char **home, berr **err);
/* Parsers behind rt_user_resolve, exposed for the fuzz target. */
/* Finds name (or, if numeric, the uid) in passwd text; home is newly allocated (may be NULL). */
int rt_passwd_lookup (const char *passwd, const char *name, uid_t *uid, gid_t *gid, char **home);
int rt_group_lookup (const char *group, const char *name, gid_t *gid);
/* Supplementary groups that list user as a member (newly allocated array). */
int rt_group_members (const char *group, const char *user, gid_t **gids, size_t *n);

/* State directory helpers. */
int rt_state_dir_open (const char *state_root, const char *id, bool create, berr **err);
int rt_state_save (int dirfd, const struct rt_state *st, berr **err);
int rt_validate_id (const char *id, berr **err);
uint64_t rt_proc_start_time (pid_t pid);
/* A pidfd for the container's init, checked against the recorded start time. */
int rt_state_pidfd (const struct rt_state *st, berr **err);

#endif
