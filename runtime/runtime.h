/* runtime: Berth's container library (prefix rt_). A container is namespaces + pivot_root +
 * mounts + capabilities + seccomp + rlimits, launched by the sequence in docs/runtime.md.
 * berth-runtime (OCI CLI) and berth-shim sit on top. This header is the whole public API. */
#ifndef BERTH_RUNTIME_H
#define BERTH_RUNTIME_H

#include "lib/error.h"

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

enum rt_ns_type
{
  RT_NS_PID = 0,
  RT_NS_NET,
  RT_NS_IPC,
  RT_NS_UTS,
  RT_NS_MOUNT,
  RT_NS_CGROUP,
  RT_NS_USER,
  RT_NS__COUNT
};

struct rt_namespace
{
  bool enabled; /* false: share the launcher's namespace */
  char *path;   /* join this namespace (e.g. /run/berth/netns/x); NULL: create a new one */
};

struct rt_mount
{
  char *destination; /* inside the container */
  char *type;        /* "bind", "proc", "tmpfs", "sysfs", "devpts", "mqueue", "cgroup", ... */
  char *source;
  char *data;                /* fs-specific options, e.g. "size=65536k,mode=1777" */
  unsigned long flags;       /* MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY | MS_REC ... */
  unsigned long propagation; /* MS_PRIVATE, MS_SLAVE, MS_SHARED (| MS_REC), or 0 */
};

struct rt_rlimit
{
  int resource; /* RLIMIT_* */
  rlim_t soft, hard;
};

struct rt_device
{
  char *path; /* inside the container, e.g. /dev/fuse */
  char type;  /* 'c' or 'b' */
  int64_t major, minor;
  mode_t mode;
  uid_t uid;
  gid_t gid;
  char access[4]; /* "" (all: rwm), or from resources.devices' allow rule for this node */
};

struct rt_sysctl
{
  char *key; /* net.ipv4.ip_forward */
  char *value;
};

struct rt_caps
{
  uint64_t bounding, effective, permitted, inheritable, ambient; /* bit n = capability n */
};

struct rt_process
{
  char **args; /* argv; args[0] is looked up in PATH inside the container if not absolute */
  char **env;  /* KEY=VALUE */
  char *cwd;   /* absolute, inside the container; created if missing */
  uid_t uid;
  gid_t gid;
  gid_t *groups; /* supplementary groups */
  size_t n_groups;
  char *user; /* optional "name[:group]" resolved in the container's /etc/passwd */
  struct rt_caps caps;
  struct rt_rlimit *rlimits;
  size_t n_rlimits;
  bool no_new_privs;
  int oom_score_adj;
  bool oom_score_adj_set;
  bool terminal; /* not supported yet: rejected */
};

/* What the container's cgroup should be and limit (see cgroups/cgroups.h). */
struct rt_cgroup
{
  char *path;        /* relative to the hierarchy roots; NULL: no cgroup of its own */
  int64_t cpu_units; /* ECS units, shares/weight */
  int64_t cpu_quota_us;
  int64_t cpu_period_us;
  int64_t memory_max;
  int64_t memory_low;
  int64_t pids_max;
  bool devices_allow_all; /* resources.devices ends with an allow-all rule (privileged) */
};

struct rt_spec
{
  char *rootfs; /* absolute path on the host */
  bool readonly_root;
  char *hostname;
  struct rt_process process;
  struct rt_namespace ns[RT_NS__COUNT];
  struct rt_mount *mounts; /* applied in order after the rootfs is in place */
  size_t n_mounts;
  char **masked_paths;
  char **readonly_paths;
  struct rt_device *devices; /* nodes to create and allow beyond the defaults */
  size_t n_devices;
  struct rt_sysctl *sysctls;
  size_t n_sysctls;
  cJSON *seccomp; /* an OCI linux.seccomp object (owned); NULL: no filter */
  struct rt_cgroup cgroup;
};

/* A spec with Berth's hardened defaults (docs/runtime.md): new pid/net/ipc/uts/mount (and
 * cgroup on v2) namespaces, Docker's 14 capabilities, masked and read-only paths, the default
 * seccomp profile, no_new_privs, pids limit 2048, NOFILE 1024:1024, the standard /proc /dev
 * /dev/pts /dev/shm /dev/mqueue /sys mounts. rootfs and args are copied. */
int rt_spec_new_default (const char *rootfs, char *const *args, struct rt_spec **out, berr **err);

/* Builds a spec from an OCI runtime config.json (untrusted: every field type-checked). Relative
 * root.path is resolved against bundle_dir. */
int rt_spec_from_oci (const cJSON *config, const char *bundle_dir, struct rt_spec **out,
                      berr **err);

/* The default OCI config.json that `berth-runtime spec` writes (newly allocated). */
cJSON *rt_oci_default_config (void);

void rt_spec_free (struct rt_spec *spec);

/* Capability names ("CAP_NET_ADMIN" or "NET_ADMIN", any case) to bit numbers. */
int rt_cap_from_name (const char *name, int *cap, berr **err);
uint64_t rt_caps_docker_default (void);

/* The default seccomp profile as an OCI linux.seccomp object (newly allocated). caps lets the
 * profile allow what those capabilities need (e.g. mount with CAP_SYS_ADMIN). */
cJSON *rt_seccomp_default_profile (uint64_t caps);

/* Compiles an OCI seccomp object into a BPF program, cached by content under cache_dir (may be
 * NULL: no cache). Returns newly allocated instructions (struct sock_filter) and their count. */
int rt_seccomp_compile (const cJSON *profile, const char *cache_dir, void **prog, size_t *len,
                        berr **err);

enum rt_launch_mode
{
  RT_LAUNCH_RUN,    /* start the process as soon as it is set up */
  RT_LAUNCH_CREATE, /* set up, then wait until rt_container_start opens the exec fifo */
};

/* A launched container as the runtime records it in <state_root>/<id>/state.json. */
struct rt_state
{
  char *id;
  char *bundle;
  pid_t pid;
  uint64_t pid_start_time; /* /proc/<pid>/stat field 22: guards against pid reuse */
  char *status;            /* "creating", "created", "running", "stopped" */
  int64_t created_ns;
  char *cgroup_path;
};

struct rt_launch_opts
{
  const char *state_root; /* e.g. /run/berth/runtime */
  const char *id;
  const char *bundle; /* recorded in the state; may be NULL */
  enum rt_launch_mode mode;
  const char *seccomp_cache_dir; /* NULL: <state_root>/seccomp-cache */
  int stdio[3];                  /* fds to give the container as 0, 1, 2; -1: inherit */
};

/* Creates the container's cgroup, clones into new namespaces, sets it up and either starts it
 * (RT_LAUNCH_RUN) or leaves it waiting (RT_LAUNCH_CREATE). Errors from inside the child come
 * back here. The caller becomes the container's parent. *pid_out may be NULL. */
int rt_container_launch (const struct rt_spec *spec, const struct rt_launch_opts *opts,
                         pid_t *pid_out, berr **err);
int rt_container_start (const char *state_root, const char *id, berr **err);

/* Reads the state and refreshes status from the kernel (stopped if the pid is gone). */
int rt_state_load (const char *state_root, const char *id, struct rt_state **out, berr **err);
void rt_state_free (struct rt_state *st);

/* Sends sig through a pidfd that is checked against the recorded start time. */
int rt_container_kill (const char *state_root, const char *id, int sig, berr **err);
/* Sends sig to every process in the container's cgroup (exec'd processes included). */
int rt_container_kill_all (const char *state_root, const char *id, int sig, berr **err);

/* Removes the state and the cgroup; with force, kills a running container first. */
int rt_container_delete (const char *state_root, const char *id, bool force, berr **err);

/* Runs proc inside the running container id (its namespaces, cgroup, capabilities, seccomp).
 * Waits for it when wait_status is non-NULL, else returns its pid in *pid_out. */
int rt_container_exec (const char *state_root, const char *id, const struct rt_process *proc,
                       const int stdio[3], pid_t *pid_out, int *wait_status, berr **err);

/* Signal names ("TERM", "SIGTERM", "15") to numbers. */
int rt_signal_from_name (const char *name, int *sig, berr **err);

#endif
