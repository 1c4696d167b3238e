/* Usage figures for telemetry. This runs every 20 s for every container, so it reads the
 * control files directly (one open, read, close each, into stack buffers; v2 files relative
 * to the group's open directory) instead of through libcgroup's stdio-based iterators. */
#include "cgroups/internal.h"

#include "lib/fs.h"

#include <errno.h>
#include <string.h>

/* v1 reports "no limit" as the largest page-aligned counter, about 2^63. */
#define V1_UNLIMITED (UINT64_C (1) << 62)

static int read_u64 (const cg_group *g, enum cgi_ctrl c, const char *file, uint64_t *out)
{
  char buf[64];
  int fd = g->host->v2[c] ? g->v2_fd : -1;
  if (cgi_read_small (fd, g->dir[c], file, buf, sizeof buf) < 0)
    return -1;
  if (strncmp (buf, "max", 3) == 0)
    {
      *out = 0; /* "max" is unlimited, reported as 0 */
      return 0;
    }
  if (bfs_parse_u64 (buf, out) < 0)
    {
      errno = EINVAL;
      return -1;
    }
  return 0;
}

static int read_keyed (const cg_group *g, enum cgi_ctrl c, const char *file, const char *key,
                       uint64_t *out)
{
  /* memory.stat is the largest (about 1.5 KB on v2, 1.3 KB on v1). */
  char buf[8192];
  int fd = g->host->v2[c] ? g->v2_fd : -1;
  if (cgi_read_small (fd, g->dir[c], file, buf, sizeof buf) < 0)
    return -1;
  if (cgi_keyed_u64 (buf, key, out) < 0)
    {
      errno = EINVAL;
      return -1;
    }
  return 0;
}

static int memory_stats (const cg_group *g, struct cg_stats *out, berr **err)
{
  bool v2 = g->host->v2[CGI_MEMORY];
  uint64_t usage, inactive = 0;
  if (read_u64 (g, CGI_MEMORY, v2 ? "memory.current" : "memory.usage_in_bytes", &usage) < 0
      || read_keyed (g, CGI_MEMORY, "memory.stat", v2 ? "inactive_file" : "total_inactive_file",
                     &inactive)
             < 0
      || read_u64 (g, CGI_MEMORY, v2 ? "memory.max" : "memory.limit_in_bytes", &out->memory_limit)
             < 0
      || read_keyed (g, CGI_MEMORY, v2 ? "memory.events" : "memory.oom_control", "oom_kill",
                     &out->oom_kills)
             < 0)
    return berr_sys (err, "read memory usage of `%s`", g->dir[CGI_MEMORY]);
  /* ECS reports memory without the page cache the kernel can drop at once. */
  out->memory_usage = usage > inactive ? usage - inactive : 0;
  if (!v2 && out->memory_limit >= V1_UNLIMITED)
    out->memory_limit = 0;
  return 0;
}

static int cpu_stats (const cg_group *g, struct cg_stats *out, berr **err)
{
  if (g->dir[CGI_CPUACCT])
    {
      if (read_u64 (g, CGI_CPUACCT, "cpuacct.usage", &out->cpu_usage_ns) < 0)
        return berr_sys (err, "read `%s/cpuacct.usage`", g->dir[CGI_CPUACCT]);
      return 0;
    }
  if (g->v2_fd < 0)
    return berr_make (err, ENOENT, "no cpuacct hierarchy and no cgroup2 group for `%s`", g->path);
  /* cpu.stat's usage_usec is kept by the cgroup core, with or without the cpu controller. */
  char buf[1024];
  uint64_t usec;
  if (cgi_read_small (g->v2_fd, NULL, "cpu.stat", buf, sizeof buf) < 0
      || cgi_keyed_u64 (buf, "usage_usec", &usec) < 0)
    return berr_sys (err, "read `%s/cpu.stat`", g->v2_dir);
  out->cpu_usage_ns = usec * 1000;
  return 0;
}

int cg_get_stats (cg_group *g, struct cg_stats *out, berr **err)
{
  memset (out, 0, sizeof *out);
  if (cpu_stats (g, out, err) < 0)
    return berr_wrap (err, "stats of cgroup `%s`", g->path);
  if (g->dir[CGI_MEMORY] && memory_stats (g, out, err) < 0)
    return berr_wrap (err, "stats of cgroup `%s`", g->path);
  if (g->dir[CGI_PIDS] && read_u64 (g, CGI_PIDS, "pids.current", &out->pids_current) < 0)
    {
      berr_sys (err, "read `%s/pids.current`", g->dir[CGI_PIDS]);
      return berr_wrap (err, "stats of cgroup `%s`", g->path);
    }
  return 0;
}
