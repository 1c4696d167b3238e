/* Benchmark driver for awsvpc network setup + teardown (bench/net-awsvpc.sh runs it inside a
 * throwaway network and mount namespace): per task, Berth's net_awsvpc_setup and teardown (the
 * on-prem macvlan path) against the same steps as one iproute2 shell script per task,
 * interleaved task by task. Prints one line per tool: median and p99 in microseconds.
 * Usage: netawsvpc N WORKDIR PARENT */
#include "net/net.h"

#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static int cmp_ll (const void *a, const void *b)
{
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

static void eni_of (int i, struct net_eni *e)
{
  memset (e, 0, sizeof *e);
  uint8_t mac[6] = { 0x02, 0x42, 0xbe, 0x00, (uint8_t)(i >> 8), (uint8_t)i }; /* as the script */
  memcpy (e->mac, mac, 6);
  e->addrs[0].s_addr = htonl (0x0a000000u | (uint32_t)(i + 2)); /* 10.0.x.y */
  e->n_addrs = 1;
  e->gateway.s_addr = htonl (0x0a000001u);
  e->prefixlen = 16;
  e->dns[0].s_addr = htonl (0x0a000002u);
  e->n_dns = 1;
  snprintf (e->search[0], sizeof e->search[0], "ec2.internal");
  e->n_search = 1;
  snprintf (e->hostname, sizeof e->hostname, "ip-10-0-0-%d.ec2.internal", i + 2);
}

/* The same steps as Berth's, as iproute2 commands: the macvlan made directly in the namespace,
 * the IMDS blackhole, the two files written atomically, and a teardown that unpins the namespace
 * and lets the kernel destroy its links, as Berth's does. MACs differ from Berth's
 * (02:42:be:01:..), as Berth's task of the same number may still be dying in the kernel's
 * namespace cleanup. */
static int write_script (const char *dir, int i, const char *parent, char *path, size_t len)
{
  snprintf (path, len, "%s/sh/task%d.sh", dir, i);
  FILE *f = fopen (path, "we");
  if (f == NULL)
    return -1;
  int a = i + 2;
  char ns[16], td[4200];
  snprintf (ns, sizeof ns, "s%d", i);
  snprintf (td, sizeof td, "%s/shtask%d", dir, i);
  fprintf (f, "set -e\nip netns add %s\n", ns);
  fprintf (f,
           "ip link add link %s name eth0 netns %s address 02:42:be:01:%02x:%02x"
           " type macvlan mode bridge\n",
           parent, ns, (i >> 8) & 0xff, i & 0xff);
  fprintf (f, "ip -n %s link set eth0 up\n", ns);
  fprintf (f, "ip -n %s addr add 10.0.%d.%d/16 dev eth0\n", ns, a >> 8, a & 0xff);
  fprintf (f, "ip -n %s route add default via 10.0.0.1 dev eth0\n", ns);
  fprintf (f, "ip -n %s route add blackhole 169.254.169.254/32\n", ns);
  fprintf (f, "mkdir -p %s\n", td);
  fprintf (f, "printf 'nameserver 10.0.0.2\\nsearch ec2.internal\\n' > %s/resolv.conf.tmp\n", td);
  fprintf (f, "mv %s/resolv.conf.tmp %s/resolv.conf\n", td, td);
  fprintf (f, "echo ip-10-0-0-%d.ec2.internal > %s/hostname.tmp\n", a, td);
  fprintf (f, "mv %s/hostname.tmp %s/hostname\n", td, td);
  fprintf (f, "ip netns del %s\n", ns);
  return fclose (f);
}

static int run_script (const char *path)
{
  char *argv[] = { "sh", (char *)path, NULL };
  pid_t pid;
  int st;
  if (posix_spawnp (&pid, "sh", NULL, NULL, argv, environ) != 0 || waitpid (pid, &st, 0) < 0)
    return -1;
  return WIFEXITED (st) && WEXITSTATUS (st) == 0 ? 0 : -1;
}

static int berth_task (const struct net_awsvpc_config *cfg, const char *dir, int i)
{
  char key[32], tdir[4096];
  struct net_eni e;
  char *path = NULL;
  berr *err = NULL;
  eni_of (i, &e);
  snprintf (key, sizeof key, "t%d", i);
  snprintf (tdir, sizeof tdir, "%s/task%d", dir, i);
  mkdir (tdir, 0755);
  if (net_awsvpc_setup (cfg, key, &e, tdir, &path, &err) < 0
      || net_awsvpc_teardown (cfg, key, &err) < 0)
    {
      fprintf (stderr, "berth task %d: %s\n", i, err->msg);
      berr_free (&err);
      return -1;
    }
  free (path);
  return 0;
}

static void report (const char *name, long long *v, int n)
{
  qsort (v, (size_t)n, sizeof *v, cmp_ll);
  int p99 = (n * 99 + 99) / 100 - 1;
  printf ("%s median_us %lld p99_us %lld n %d\n", name, v[n / 2], v[p99 < n ? p99 : n - 1], n);
}

int main (int argc, char **argv)
{
  if (argc != 4)
    {
      fprintf (stderr, "usage: netawsvpc N WORKDIR PARENT\n");
      return 2;
    }
  int n = atoi (argv[1]);
  const char *dir = argv[2], *parent = argv[3];
  char run_dir[4096], state[4096], shdir[4096];
  snprintf (run_dir, sizeof run_dir, "%s/netns", dir);
  snprintf (state, sizeof state, "%s/state", dir);
  snprintf (shdir, sizeof shdir, "%s/sh", dir);
  mkdir (shdir, 0755);
  struct net_awsvpc_config cfg = { .host_netns_fd = -1,
                                   .run_dir = run_dir,
                                   .state_dir = state,
                                   .parent = parent,
                                   .block_imds = true };
  long long *b = calloc ((size_t)n, sizeof *b), *s = calloc ((size_t)n, sizeof *s);
  char script[4096];
  /* One untimed round of each warms caches (and checks both work). */
  for (int i = -1; i < n; i++)
    {
      int k = i < 0 ? n : i;
      if (write_script (dir, k, parent, script, sizeof script) < 0)
        return 1;
      long long t0 = now_us ();
      if (berth_task (&cfg, dir, k) < 0)
        return 1;
      long long t1 = now_us ();
      if (run_script (script) < 0)
        {
          fprintf (stderr, "script %s failed\n", script);
          return 1;
        }
      long long t2 = now_us ();
      if (i >= 0)
        {
          b[i] = t1 - t0;
          s[i] = t2 - t1;
        }
    }
  report ("berth", b, n);
  report ("iproute2", s, n);
  free (b);
  free (s);
  return 0;
}
