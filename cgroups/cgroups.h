/* cgroups: task and container cgroups on cgroup v2, v1 and hybrid hosts, through libcgroup.
 * This header is the component's whole public API (prefix cg_). */
#ifndef BERTH_CGROUPS_H
#define BERTH_CGROUPS_H

#include "lib/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum cg_mode
{
  CG_MODE_UNIFIED = 0, /* pure cgroup v2: one hierarchy at /sys/fs/cgroup */
  CG_MODE_HYBRID,      /* v1 controllers plus a cgroup2 mount (e.g. /sys/fs/cgroup/unified) */
  CG_MODE_LEGACY,      /* v1 only */
};

/* Detects the host's layout once (cached). */
int cg_detect_mode (enum cg_mode *out, berr **err);
const char *cg_mode_name (enum cg_mode mode);

/* One device-access rule; the list is applied as "deny everything, then these". */
struct cg_device_rule
{
  bool allow;
  char type;     /* 'a' (all), 'c' or 'b' */
  int64_t major; /* -1: any */
  int64_t minor; /* -1: any */
  char access[4]; /* subset of "rwm" */
};

/* Limits in ECS terms; a zero field is "leave unset". */
struct cg_limits
{
  int64_t cpu_units;     /* ECS cpu units (1024 = one core): v1 cpu.shares, v2 cpu.weight */
  int64_t cpu_quota_us;  /* hard CPU limit per period (task-level cpu) */
  int64_t cpu_period_us; /* default 100000 when a quota is set */
  int64_t memory_max;    /* bytes: hard limit (v2 memory.max, v1 memory.limit_in_bytes) */
  int64_t memory_low;    /* bytes: reservation (v2 memory.low, v1 memory.soft_limit_in_bytes) */
  int64_t pids_max;      /* > 0: limit; -1: explicitly unlimited */
  const struct cg_device_rule *devices; /* applied when devices_set */
  size_t n_devices;
  bool devices_set;
};

struct cg_stats
{
  uint64_t cpu_usage_ns;   /* cumulative CPU time */
  uint64_t memory_usage;   /* bytes, minus inactive file cache (as ECS reports memory) */
  uint64_t memory_limit;   /* bytes; 0 when unlimited */
  uint64_t pids_current;
  uint64_t oom_kills;      /* OOM kills inside this group since creation */
};

typedef struct cg_group cg_group;

/* Creates (or adopts, if it exists) the group at path, relative to every hierarchy's root,
 * e.g. "berth/task-1/web", and applies lim (may be NULL). */
int cg_create (const char *path, const struct cg_limits *lim, cg_group **out, berr **err);
/* Opens an existing group (re-attach after a restart); ENOENT if it is gone. */
int cg_open (const char *path, cg_group **out, berr **err);
int cg_set_limits (cg_group *g, const struct cg_limits *lim, berr **err);
/* Moves pid into the group in every hierarchy. */
int cg_attach (cg_group *g, pid_t pid, berr **err);
/* A directory fd for clone3(CLONE_INTO_CGROUP) on pure v2, else -1. Owned by the group. */
int cg_clone_fd (const cg_group *g);
/* Absolute directory of the group for a controller ("memory", "cpu", "pids", ...), or of the
 * v2 group when controller is NULL. Owned by the group; NULL if the controller is absent. */
const char *cg_dir (const cg_group *g, const char *controller);
const char *cg_path (const cg_group *g);
int cg_get_stats (cg_group *g, struct cg_stats *out, berr **err);
/* Signals every process in the group (cgroup.kill for SIGKILL on v2). */
int cg_kill_all (cg_group *g, int sig, berr **err);
/* Removes the group's directories (the processes must be gone; waits briefly for the kernel). */
int cg_destroy (cg_group *g, berr **err);
void cg_free (cg_group *g);

/* ECS cpu units to v1 cpu.shares (min 2) and to v2 cpu.weight (1..10000). */
uint64_t cg_cpu_units_to_shares (int64_t units);
uint64_t cg_cpu_units_to_weight (int64_t units);

/* systemd hosts: a transient scope (Delegate=yes) holding pid, created over sd-bus, so the
 * tasks' cgroups live outside the agent's service cgroup (docs/cgroups.md). Returns the
 * scope's cgroup path (newly allocated) in *cgroup_path. */
bool cg_systemd_running (void);
int cg_systemd_create_scope (const char *unit, const char *slice, pid_t pid, char **cgroup_path,
                             berr **err);
int cg_systemd_stop_unit (const char *unit, berr **err);

#endif
