/* Limits in ECS terms written to each controller's files under the names of its version:
 * libcgroup 2.0.2 does not translate v1 names to v2 ones, so the choice is made here. */
#include "cgroups/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

/* v1 cpu.shares bounds (kernel MIN_SHARES and MAX_SHARES). */
#define SHARES_MIN 2
#define SHARES_MAX 262144
#define DEFAULT_PERIOD_US 100000

uint64_t cg_cpu_units_to_shares (int64_t units)
{
  if (units <= 0)
    return 0; /* unset: leave the kernel's default */
  if (units < SHARES_MIN)
    return SHARES_MIN;
  return units > SHARES_MAX ? SHARES_MAX : (uint64_t)units;
}

/* The conversion runc and crun use, so a task gets the same weight under either: shares
 * [2, 262144] map linearly onto weight [1, 10000]. */
uint64_t cg_cpu_units_to_weight (int64_t units)
{
  uint64_t shares = cg_cpu_units_to_shares (units);
  if (shares == 0)
    return 0;
  uint64_t w = 1 + ((shares - SHARES_MIN) * 9999) / (SHARES_MAX - SHARES_MIN);
  return w < 1 ? 1 : (w > 10000 ? 10000 : w);
}

/* A byte or count limit as the file wants it: negative is "no limit". */
static void format_limit (char *buf, size_t size, int64_t v, bool v2)
{
  if (v < 0)
    snprintf (buf, size, "%s", v2 ? "max" : "-1");
  else
    snprintf (buf, size, "%" PRId64, v);
}

static int set_cpu (cg_group *g, const struct cg_limits *lim, berr **err)
{
  bool v2 = g->host->v2[CGI_CPU];
  char buf[64];
  if (lim->cpu_units > 0)
    {
      uint64_t v
          = v2 ? cg_cpu_units_to_weight (lim->cpu_units) : cg_cpu_units_to_shares (lim->cpu_units);
      snprintf (buf, sizeof buf, "%" PRIu64, v);
      if (cgi_write (g, CGI_CPU, v2 ? "cpu.weight" : "cpu.shares", buf, err) < 0)
        return -1;
    }
  if (lim->cpu_quota_us == 0)
    return 0;
  int64_t period = lim->cpu_period_us > 0 ? lim->cpu_period_us : DEFAULT_PERIOD_US;
  if (v2)
    {
      if (lim->cpu_quota_us < 0)
        snprintf (buf, sizeof buf, "max %" PRId64, period);
      else
        snprintf (buf, sizeof buf, "%" PRId64 " %" PRId64, lim->cpu_quota_us, period);
      return cgi_write (g, CGI_CPU, "cpu.max", buf, err);
    }
  /* Period first: the kernel checks the quota against the period in place. */
  snprintf (buf, sizeof buf, "%" PRId64, period);
  if (cgi_write (g, CGI_CPU, "cpu.cfs_period_us", buf, err) < 0)
    return -1;
  format_limit (buf, sizeof buf, lim->cpu_quota_us, false);
  return cgi_write (g, CGI_CPU, "cpu.cfs_quota_us", buf, err);
}

static int set_memory (cg_group *g, const struct cg_limits *lim, berr **err)
{
  bool v2 = g->host->v2[CGI_MEMORY];
  char buf[32];
  if (lim->memory_max)
    {
      format_limit (buf, sizeof buf, lim->memory_max, v2);
      if (cgi_write (g, CGI_MEMORY, v2 ? "memory.max" : "memory.limit_in_bytes", buf, err) < 0)
        return -1;
    }
  if (lim->memory_low)
    {
      format_limit (buf, sizeof buf, lim->memory_low, v2);
      if (cgi_write (g, CGI_MEMORY, v2 ? "memory.low" : "memory.soft_limit_in_bytes", buf, err) < 0)
        return -1;
    }
  return 0;
}

int cg_set_limits (cg_group *g, const struct cg_limits *lim, berr **err)
{
  char buf[32];
  if (lim == NULL)
    return 0;
  if (set_cpu (g, lim, err) < 0 || set_memory (g, lim, err) < 0)
    return berr_wrap (err, "set limits of cgroup `%s`", g->path);
  if (lim->pids_max)
    {
      /* pids.max has the same name and "max" spelling on v1 and v2. */
      if (lim->pids_max < 0)
        snprintf (buf, sizeof buf, "max");
      else
        snprintf (buf, sizeof buf, "%" PRId64, lim->pids_max);
      if (cgi_write (g, CGI_PIDS, "pids.max", buf, err) < 0)
        return berr_wrap (err, "set limits of cgroup `%s`", g->path);
    }
  if (lim->devices_set && cgi_devices_apply (g, lim->devices, lim->n_devices, err) < 0)
    return berr_wrap (err, "set device rules of cgroup `%s`", g->path);
  return 0;
}
