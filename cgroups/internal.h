/* cgroups component internals shared by its .c files (prefix cgi_); not part of the public API,
 * which is cgroups/cgroups.h alone. */
#ifndef BERTH_CGROUPS_INTERNAL_H
#define BERTH_CGROUPS_INTERNAL_H

#include "cgroups/cgroups.h"

#include <stdbool.h>
#include <stddef.h>

/* The controllers Berth manages. cpuacct and devices exist only on v1: on v2 CPU usage is in
 * cpu.stat and device access is an eBPF program. */
enum cgi_ctrl
{
  CGI_CPU = 0,
  CGI_CPUACCT,
  CGI_MEMORY,
  CGI_PIDS,
  CGI_DEVICES,
  CGI_N_CTRL,
};

extern const char *const cgi_ctrl_names[CGI_N_CTRL];

/* Facts about the host's cgroup mounts, found once (cgroup_init parses the mount table) and
 * never changed afterwards. */
struct cgi_host
{
  enum cg_mode mode;
  char *mount[CGI_N_CTRL]; /* mount point of the controller's hierarchy, NULL when absent */
  bool v2[CGI_N_CTRL];     /* the controller lives in the cgroup2 hierarchy */
  char *v2_mount;          /* the cgroup2 mount, NULL when there is none */
};

/* The host facts (initialising libcgroup on first use). */
int cgi_host_get (const struct cgi_host **out, berr **err);

/* One directory per distinct hierarchy: cpu and cpuacct share one when co-mounted, and on v2
 * every controller shares the one group directory. */
struct cgi_hier
{
  enum cgi_ctrl ctrl; /* a controller of this hierarchy, to name it to libcgroup */
  const char *dir;    /* points into cg_group.dir[] */
  bool v2;
};

struct cg_group
{
  char *path;            /* relative to the hierarchy roots, no leading or trailing '/' */
  char *dir[CGI_N_CTRL]; /* absolute group directory per controller, NULL when absent */
  char *v2_dir;          /* the group's cgroup2 directory when a managed controller is there */
  int v2_fd;             /* O_DIRECTORY fd of v2_dir, else -1 */
  bool unified;          /* pure v2 host: v2_fd is usable with CLONE_INTO_CGROUP */
  struct cgi_hier hier[CGI_N_CTRL];
  size_t n_hier;
  const struct cgi_host *host;
};

/* Writes one control file through libcgroup (cgroup_modify_cgroup), which resolves the
 * controller's directory for this group; the error names the file and the value. */
int cgi_write (cg_group *g, enum cgi_ctrl ctrl, const char *file, const char *value, berr **err);

/* Reads a small control file (dir + "/" + file, or dirfd-relative when dirfd >= 0) into buf,
 * NUL-terminated. Returns the length or a negative value (errno set, no berr: hot path). */
ssize_t cgi_read_small (int dirfd, const char *dir, const char *file, char *buf, size_t size);

/* The value of "key N" in a flat-keyed file (memory.stat, cpu.stat, memory.events). */
int cgi_keyed_u64 (const char *text, const char *key, uint64_t *out);

/* Device rules: v1 files or a v2 eBPF program attached to the group. */
int cgi_devices_apply (cg_group *g, const struct cg_device_rule *rules, size_t n, berr **err);

/* Builds the eBPF device program for rules into insns (struct bpf_insn, at most max);
 * returns the instruction count or -1 if it does not fit or a rule is invalid. Exposed for
 * the unit tests. */
int cgi_devices_build_prog (const struct cg_device_rule *rules, size_t n, void *insns, size_t max);

/* Loads the program for rules and attaches it to the cgroup2 directory cgfd (dir names it in
 * errors), replacing the device programs attached there before. */
int cgi_devices_attach_bpf (int cgfd, const char *dir, const struct cg_device_rule *rules, size_t n,
                            berr **err);

/* Checks a rule: type a/b/c, access a non-empty subset of "rwm". */
bool cgi_device_rule_valid (const struct cg_device_rule *r);

/* "c 1:3 rwm" ('*' for any major or minor; "a" for everything), as v1 devices.allow wants. */
int cgi_device_rule_format (const struct cg_device_rule *r, char *buf, size_t size);

#endif
