/* Bridge network setup + teardown per task: Berth's net_bridge_setup/teardown against the same
 * steps run by a shell script of ip and nft commands, interleaved task by task in the namespace
 * this runs in (bench/net.sh makes it a throwaway one). Usage:
 *   netbench TASKS WORKDIR RESULTS SCRIPT LABEL [SCRIPT LABEL]...
 * The verdict is on the first script. */
#include "net/net.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die_berr (berr *e)
{
  fprintf (stderr, "netbench: %s\n", e->msg);
  exit (1);
}

/* One Berth task: a container namespace with eth0 on the bridge, an address, a default route and
 * one published TCP port, then all of it removed again. */
static double berth_task (net_bridge *br, int i)
{
  char key[32];
  snprintf (key, sizeof key, "bench%d", i);
  struct net_port_mapping m = { IPPROTO_TCP, 80, (uint16_t)(20000 + i) };
  struct net_bridge_endpoint ep;
  berr *e = NULL;
  double t0 = now_ms ();
  if (net_bridge_setup (br, key, &m, 1, &ep, &e) < 0 || net_bridge_teardown (br, key, &e) < 0)
    die_berr (e);
  double t = now_ms () - t0;
  net_bridge_endpoint_clear (&ep);
  return t;
}

/* The same task as `sh SCRIPT i`, spawned and waited for. */
static double script_task (const char *script, int i)
{
  char arg[16];
  snprintf (arg, sizeof arg, "%d", i);
  char *argv[] = { "sh", (char *)script, arg, NULL };
  pid_t pid;
  int status;
  double t0 = now_ms ();
  int r = posix_spawn (&pid, "/bin/sh", NULL, NULL, argv, environ);
  if (r != 0 || waitpid (pid, &status, 0) < 0 || !WIFEXITED (status) || WEXITSTATUS (status))
    {
      fprintf (stderr, "netbench: script task %d failed\n", i);
      exit (1);
    }
  return now_ms () - t0;
}

static int cmp_double (const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median and p99 (nearest rank) of v[0..n), which gets sorted. */
static void stats (double *v, int n, double *median, double *p99)
{
  qsort (v, (size_t)n, sizeof *v, cmp_double);
  *median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  int k = (99 * n + 99) / 100;
  *p99 = v[k > 0 ? k - 1 : 0];
}

#define MAX_SCRIPTS 4

static void row (const char *label, double *v, int n, double ref_m, double ref_p, double *m,
                 double *p)
{
  stats (v, n, m, p);
  if (ref_m > 0)
    printf ("   %-44s %10.2f %10.2f %8.2f %8.2f\n", label, *m, *p, ref_m / *m, ref_p / *p);
  else
    printf ("   %-44s %10.2f %10.2f\n", label, *m, *p);
}

int main (int argc, char **argv)
{
  int ns = (argc - 4) / 2;
  if (argc < 6 || (argc - 4) % 2 || ns > MAX_SCRIPTS)
    {
      fprintf (stderr, "usage: netbench TASKS WORKDIR RESULTS SCRIPT LABEL [SCRIPT LABEL]...\n");
      return 2;
    }
  int n = atoi (argv[1]);
  if (n < 1 || n > 10000)
    return 2;
  char ipam[4096], run_dir[4096];
  snprintf (ipam, sizeof ipam, "%s/ipam", argv[2]);
  snprintf (run_dir, sizeof run_dir, "%s/netns", argv[2]);
  struct net_bridge_config cfg = { .ipam_path = ipam, .run_dir = run_dir, .host_netns_fd = -1 };
  net_bridge *br = NULL;
  berr *e = NULL;
  if (net_bridge_open (&cfg, &br, &e) < 0)
    die_berr (e);
  /* Warm caches (binaries, libraries, the kernel's slabs) for all, untimed. */
  for (int i = 0; i < 5; i++)
    {
      berth_task (br, n + i);
      for (int k = 0; k < ns; k++)
        script_task (argv[4 + 2 * k], n + i);
    }
  double *b = calloc ((size_t)n, sizeof *b), *s[MAX_SCRIPTS];
  for (int k = 0; k < ns; k++)
    if ((s[k] = calloc ((size_t)n, sizeof *s[k])) == NULL)
      return 1;
  if (b == NULL)
    return 1;
  /* Alternate task by task, so a burst of load on the machine falls on all alike. */
  for (int i = 0; i < n; i++)
    {
      b[i] = berth_task (br, i);
      for (int k = 0; k < ns; k++)
        s[k][i] = script_task (argv[4 + 2 * k], i);
    }
  net_bridge_close (br);
  FILE *raw = fopen (argv[3], "ae");
  for (int i = 0; raw != NULL && i < n; i++)
    {
      fprintf (raw, "net.bridge.task%d berth_ms %.3f", i + 1, b[i]);
      for (int k = 0; k < ns; k++)
        fprintf (raw, " script%d_ms %.3f", k + 1, s[k][i]);
      fputc ('\n', raw);
    }
  double bm, bp, m0 = 0, p0 = 0;
  printf ("   %-44s %10s %10s %8s %8s\n", "per task (setup + teardown)", "median ms", "p99 ms",
          "x med", "x p99");
  row ("berth (net_bridge_setup + teardown)", b, n, 0, 0, &bm, &bp);
  if (raw != NULL)
    fprintf (raw, "net.bridge.berth median_ms %.3f p99_ms %.3f\n", bm, bp);
  for (int k = 0; k < ns; k++)
    {
      double m, p;
      row (argv[5 + 2 * k], s[k], n, bm, bp, &m, &p);
      if (raw != NULL)
        fprintf (raw, "net.bridge.script%d median_ms %.3f p99_ms %.3f ratio_median %.3f\n", k + 1,
                 m, p, bm / m);
      if (k == 0)
        m0 = m, p0 = p;
      free (s[k]);
    }
  if (raw != NULL)
    fclose (raw);
  printf ("   (x med, x p99: berth / that row)\n");
  printf ("   verdict: %s - berth median %.2f x, p99 %.2f x the first script (target <= 0.3 x)\n",
          bm / m0 <= 0.3 ? "PASS" : "MISS", bm / m0, bp / p0);
  free (b);
  return 0;
}
