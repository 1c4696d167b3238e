/* Measures a whole node: berth-control plus berth-agent (started by bench/node.sh in a throwaway
 * network namespace): RunTask to RUNNING beside `crun run -d` (figure 11), then the agent's RSS
 * and CPU idle and with many tasks, and berth-shim's memory per container (figure 12).
 * Usage: node PORT CREDENTIALS AGENT_PID STATE_DIR CRUN_ROOT CRUN_BUNDLE LOAD_FAMILY
 *             [LAT_TASKS [LOAD_TASKS [CPU_SECONDS [FLOOR_PID]]]]
 * FLOOR_PID: bench/libfloor, the agent's shared libraries and nothing else (figure 12a). */
#include "cpclient.h"

#include <cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define P50_TARGET_MS 50.0
#define P99_TARGET_MS 150.0
#define IDLE_RSS_TARGET_KIB 4096.0
#define LOAD_RSS_TARGET_KIB 16384.0
#define CPU_TARGET_PCT 1.0
#define SHIM_TARGET_KIB 512.0

extern char **environ;

/* One process's memory, KiB: status (VmRSS, RssAnon, RssFile) and smaps_rollup (Pss split). */
typedef struct mem
{
  long rss, rss_anon, rss_file, pss, pss_anon, pss_file;
} mem;

static void sleep_ms (long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
  nanosleep (&ts, NULL);
}

/* The admin key's connection to berth-control on port. */
static int admin_api (cpc_api *a, int port, const char *creds)
{
  char key[64], secret[96];
  if (cpc_read_key (creds, "admin", key, secret) < 0)
    return -1;
  return cpc_api_init (a, "node", port, key, secret);
}

/* ---------------------------------------------------------------------------------------------
 * /proc readers: the bench's own, so it reads exactly the fields it reports. */

/* The value (KiB) of the line starting with `key` in a /proc file, or -1. */
static long proc_kib (const char *path, const char *key)
{
  char line[256];
  long v = -1;
  size_t n = strlen (key);
  FILE *f = fopen (path, "re");
  if (f == NULL)
    return -1;
  while (fgets (line, sizeof line, f))
    if (strncmp (line, key, n) == 0 && line[n] == ':')
      {
        v = strtol (line + n + 1, NULL, 10);
        break;
      }
  fclose (f);
  return v;
}

static int mem_of (int pid, mem *m)
{
  char st[64], sm[64];
  snprintf (st, sizeof st, "/proc/%d/status", pid);
  snprintf (sm, sizeof sm, "/proc/%d/smaps_rollup", pid);
  m->rss = proc_kib (st, "VmRSS");
  m->rss_anon = proc_kib (st, "RssAnon");
  m->rss_file = proc_kib (st, "RssFile");
  m->pss = proc_kib (sm, "Pss");
  m->pss_anon = proc_kib (sm, "Pss_Anon");
  m->pss_file = proc_kib (sm, "Pss_File");
  return m->rss < 0 || m->pss < 0 ? -1 : 0;
}

/* With BENCH_NODE_SMAPS=PREFIX set, keeps a copy of pid's smaps as PREFIX.TAG, to see which
 * mappings the resident memory is in. */
static void keep_smaps (int pid, const char *tag)
{
  const char *prefix = getenv ("BENCH_NODE_SMAPS");
  char src[64], dst[512], chunk[65536];
  if (prefix == NULL || *prefix == '\0')
    return;
  snprintf (src, sizeof src, "/proc/%d/smaps", pid);
  snprintf (dst, sizeof dst, "%s.%s", prefix, tag);
  int in = open (src, O_RDONLY | O_CLOEXEC);
  int out = open (dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  for (ssize_t n; in >= 0 && out >= 0 && (n = read (in, chunk, sizeof chunk)) > 0;)
    if (write (out, chunk, (size_t)n) != n)
      break;
  if (in >= 0)
    close (in);
  if (out >= 0)
    close (out);
}

/* utime + stime of every thread of pid, in clock ticks, or -1. */
static long long cpu_ticks (int pid)
{
  char path[64], line[1024];
  unsigned long long ut, st;
  snprintf (path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen (path, "re");
  if (f == NULL)
    return -1;
  char *ok = fgets (line, sizeof line, f);
  fclose (f);
  char *p = ok ? strrchr (line, ')') : NULL;
  if (p == NULL
      || sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return -1;
  return (long long)(ut + st);
}

/* ---------------------------------------------------------------------------------------------
 * Tasks */

static int cmp_dbl (const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of n sorted values. */
static double pct (const double *v, int n, int p)
{
  int k = (n * p + 99) / 100;
  return v[k < 1 ? 0 : k - 1];
}

static double num (const cJSON *o, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, key);
  return cJSON_IsNumber (v) ? v->valuedouble : -1;
}

static const char *str (const cJSON *o, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, key);
  return cJSON_IsString (v) ? v->valuestring : "";
}

/* Waits up to 60 s for the agent to register and connect its channel. */
static int wait_connected (cpc_api *a)
{
  for (int tries = 0; tries < 300; tries++)
    {
      cJSON *l = cpc_call (a, "ListContainerInstances", "{\"cluster\":\"default\"}", NULL);
      const cJSON *arn = cJSON_GetArrayItem (cJSON_GetObjectItem (l, "containerInstanceArns"), 0);
      if (cJSON_IsString (arn))
        {
          char body[512];
          snprintf (body, sizeof body, "{\"cluster\":\"default\",\"containerInstances\":[\"%s\"]}",
                    arn->valuestring);
          cJSON *d = cpc_call (a, "DescribeContainerInstances", body, NULL);
          const cJSON *ci = cJSON_GetArrayItem (cJSON_GetObjectItem (d, "containerInstances"), 0);
          bool up = cJSON_IsTrue (cJSON_GetObjectItem (ci, "agentConnected"));
          cJSON_Delete (d);
          if (up)
            {
              cJSON_Delete (l);
              return 0;
            }
        }
      cJSON_Delete (l);
      sleep_ms (200);
    }
  fprintf (stderr, "node: the agent did not connect within 60 s\n");
  return -1;
}

static int register_family (cpc_api *a, const char *family, const char *mode)
{
  char body[1024];
  snprintf (body, sizeof body,
            "{\"family\":\"%s\",\"networkMode\":\"%s\",\"containerDefinitions\":[{\"name\":\"c\","
            "\"image\":\"berth/bench-sleep:latest\",\"essential\":true,\"memory\":16}]}",
            family, mode);
  cJSON *j = cpc_call (a, "RegisterTaskDefinition", body, NULL);
  cJSON_Delete (j);
  return j ? 0 : -1;
}

/* RunTask of `count` tasks; appends their ARNs to arns[*n]. */
static int run_tasks (cpc_api *a, const char *family, int count, char **arns, int *n)
{
  char body[256];
  snprintf (body, sizeof body,
            "{\"cluster\":\"default\",\"taskDefinition\":\"%s\",\"count\":%d,"
            "\"startedBy\":\"bench\"}",
            family, count);
  cJSON *j = cpc_call (a, "RunTask", body, NULL), *t;
  int placed = 0;
  cJSON_ArrayForEach (t, cJSON_GetObjectItem (j, "tasks"))
  {
    arns[(*n)++] = strdup (str (t, "taskArn"));
    placed++;
  }
  if (j && placed < count)
    {
      char *why = cJSON_PrintUnformatted (cJSON_GetObjectItem (j, "failures"));
      fprintf (stderr, "node: RunTask placed %d of %d: %s\n", placed, count, why ? why : "");
      free (why);
    }
  cJSON_Delete (j);
  return placed == count ? 0 : -1;
}

/* DescribeTasks of up to 100 ARNs; counts RUNNING ones and fails on a STOPPED one. */
static int count_running (cpc_api *a, char **arns, int n, int *running)
{
  cJSON *req = cJSON_CreateObject (), *list = cJSON_AddArrayToObject (req, "tasks"), *t;
  cJSON_AddStringToObject (req, "cluster", "default");
  for (int i = 0; i < n; i++)
    cJSON_AddItemToArray (list, cJSON_CreateString (arns[i]));
  char *body = cJSON_PrintUnformatted (req);
  cJSON *j = cpc_call (a, "DescribeTasks", body, NULL);
  free (body);
  cJSON_Delete (req);
  int r = j ? 0 : -1;
  cJSON_ArrayForEach (t, cJSON_GetObjectItem (j, "tasks"))
  {
    if (strcmp (str (t, "lastStatus"), "RUNNING") == 0)
      (*running)++;
    else if (strcmp (str (t, "lastStatus"), "STOPPED") == 0)
      {
        fprintf (stderr, "node: task %s stopped: %s\n", str (t, "taskArn"),
                 str (t, "stoppedReason"));
        r = -1;
      }
  }
  cJSON_Delete (j);
  return r;
}

/* One task through RunTask, then DescribeTasks every 5 ms until RUNNING. Sets the latency
 * berth-control recorded (startedAt - createdAt) and the one this client saw. */
static int one_task (cpc_api *a, const char *family, char **arns, int *n, double *rec_ms,
                     double *seen_ms)
{
  char body[512];
  int64_t t0 = cpc_now_ns ();
  if (run_tasks (a, family, 1, arns, n) < 0)
    return -1;
  snprintf (body, sizeof body, "{\"cluster\":\"default\",\"tasks\":[\"%s\"]}", arns[*n - 1]);
  for (int tries = 0; tries < 12000; tries++)
    {
      cJSON *j = cpc_call (a, "DescribeTasks", body, NULL);
      cJSON *t = j ? cJSON_GetArrayItem (cJSON_GetObjectItem (j, "tasks"), 0) : NULL;
      const char *status = str (t, "lastStatus");
      if (strcmp (status, "RUNNING") == 0)
        {
          *seen_ms = (double)(cpc_now_ns () - t0) / 1e6;
          *rec_ms = (num (t, "startedAt") - num (t, "createdAt")) * 1000.0;
          cJSON_Delete (j);
          return 0;
        }
      if (t == NULL || strcmp (status, "STOPPED") == 0)
        {
          fprintf (stderr, "node: task %s: %s %s\n", arns[*n - 1], status,
                   str (t, "stoppedReason"));
          cJSON_Delete (j);
          return -1;
        }
      cJSON_Delete (j);
      sleep_ms (5);
    }
  fprintf (stderr, "node: task %s not RUNNING after 60 s\n", arns[*n - 1]);
  return -1;
}

/* Runs argv with stdin and stdout on /dev/null; returns its wall time in ms, or -1. */
static double spawn_ms (char *const argv[])
{
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int status;
  int64_t t0 = cpc_now_ns ();
  int r = posix_spawnp (&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  if (r != 0 || waitpid (pid, &status, 0) < 0)
    return -1;
  double ms = (double)(cpc_now_ns () - t0) / 1e6;
  return WIFEXITED (status) && WEXITSTATUS (status) == 0 ? ms : -1;
}

/* The floor: `crun run -d` of the same rootfs (returns once the process runs), then an untimed
 * delete. */
static double crun_ms (const char *root, const char *bundle, int i)
{
  char id[64];
  snprintf (id, sizeof id, "bench-node-%d-%d", (int)getpid (), i);
  char *run[]
      = { "crun", "--root", (char *)root, "run", "-d", "--bundle", (char *)bundle, id, NULL };
  char *del[] = { "crun", "--root", (char *)root, "delete", "-f", id, NULL };
  double ms = spawn_ms (run);
  spawn_ms (del);
  return ms;
}

/* ---------------------------------------------------------------------------------------------
 * Figure 11 */

static void latency_row (const char *name, double *v, int n, const char *key)
{
  qsort (v, (size_t)n, sizeof *v, cmp_dbl);
  printf ("   %-52s %8.1f %8.1f %8.1f\n", name, pct (v, n, 50), pct (v, n, 99), v[n - 1]);
  printf ("raw node.%s.p50_ms %.2f\nraw node.%s.p99_ms %.2f\n", key, pct (v, n, 50), key,
          pct (v, n, 99));
}

/* Median of v[from, to) (unsorted; copied): shows whether start time grows with running tasks. */
static double median_of (const double *v, int from, int to)
{
  double w[to - from];
  memcpy (w, v + from, sizeof w);
  qsort (w, (size_t)(to - from), sizeof *w, cmp_dbl);
  return pct (w, to - from, 50);
}

static int figure11 (cpc_api *a, const char *crun_root, const char *bundle, int n, char **arns,
                     int *n_arns)
{
  double *rec = calloc ((size_t)n, sizeof *rec), *seen = calloc ((size_t)n, sizeof *seen);
  double *fl = calloc ((size_t)n, sizeof *fl);
  int r = -1;
  /* untimed warm-up of both: page cache, the agent's first bridge setup */
  double w1, w2;
  if (rec == NULL || seen == NULL || fl == NULL
      || one_task (a, "bench-bridge", arns, n_arns, &w1, &w2) < 0
      || crun_ms (crun_root, bundle, -1) < 0)
    goto out;
  for (int i = 0; i < n; i++)
    if (one_task (a, "bench-bridge", arns, n_arns, &rec[i], &seen[i]) < 0
        || (fl[i] = crun_ms (crun_root, bundle, i)) < 0)
      {
        fprintf (stderr, "node: figure 11 stopped at task %d\n", i);
        goto out;
      }
  printf ("   %d tasks, one at a time (sequential: each RunTask waits for the previous task's "
          "RUNNING),\n   interleaved with %d `crun run -d` of the same rootfs; each berth task "
          "stays running\n",
          n, n);
  printf ("   %-52s %8s %8s %8s\n", "", "p50 ms", "p99 ms", "max ms");
  double p50 = 0, p99 = 0, f50, f99;
  int q = n >= 8 ? n / 4 : 1;
  double early = median_of (rec, 0, q), late = median_of (rec, n - q, n);
  latency_row ("berth, RunTask -> RUNNING (berth-control)", rec, n, "recorded");
  p50 = pct (rec, n, 50), p99 = pct (rec, n, 99);
  latency_row ("berth, the same seen by DescribeTasks (5 ms)", seen, n, "seen");
  latency_row ("crun run -d (floor: no network, no control plane)", fl, n, "crun");
  f50 = pct (fl, n, 50), f99 = pct (fl, n, 99);
  printf ("   berth / crun: p50 %.1f x, p99 %.1f x\n", p50 / f50, p99 / f99);
  printf ("   berth median of the first %d tasks %.1f ms, of the last %d %.1f ms\n", q, early, q,
          late);
  printf ("raw node.recorded.first_quarter_p50_ms %.2f\nraw node.recorded.last_quarter_p50_ms "
          "%.2f\n",
          early, late);
  printf ("   verdict: %s - p50 %.1f ms (target <= %.0f), p99 %.1f ms (target <= %.0f)\n",
          p50 <= P50_TARGET_MS && p99 <= P99_TARGET_MS ? "PASS" : "MISS", p50, P50_TARGET_MS, p99,
          P99_TARGET_MS);
  r = 0;
out:
  free (rec), free (seen), free (fl);
  return r;
}

/* ---------------------------------------------------------------------------------------------
 * Figure 12 */

static void mem_row (const char *name, const mem *m, double target, const char *key)
{
  printf ("   %-30s %7ld %7ld %7ld %7ld %7ld %7ld", name, m->rss, m->rss_anon, m->rss_file, m->pss,
          m->pss_anon, m->pss_file);
  if (target > 0)
    printf ("  %5.2f  %s", (double)m->rss / target, m->rss <= target ? "PASS" : "MISS");
  printf ("\nraw node.%s.rss_kib %ld\nraw node.%s.rss_anon_kib %ld\nraw node.%s.pss_kib %ld\n", key,
          m->rss, key, m->rss_anon, key, m->pss);
}

static void mem_header (void)
{
  printf ("   %-30s %7s %7s %7s %7s %7s %7s  %5s\n", "KiB", "VmRSS", "anon", "file", "Pss",
          "Pss an", "Pss fi", "x tgt");
}

/* CPU of pid over `seconds`, as % of one core. */
static double cpu_pct (int pid, int seconds)
{
  long long t0 = cpu_ticks (pid);
  int64_t w0 = cpc_now_ns ();
  sleep ((unsigned)seconds);
  long long t1 = cpu_ticks (pid);
  double wall = (double)(cpc_now_ns () - w0) / 1e9;
  return t0 < 0 || t1 < 0 ? -1 : 100.0 * (double)(t1 - t0) / (double)sysconf (_SC_CLK_TCK) / wall;
}

static bool is_our_shim (int pid, const char *state_dir)
{
  char path[64], comm[32] = "", cmd[4096];
  snprintf (path, sizeof path, "/proc/%d/comm", pid);
  FILE *f = fopen (path, "re");
  if (f == NULL)
    return false;
  bool shim = fgets (comm, sizeof comm, f) && strncmp (comm, "berth-shim", 10) == 0;
  fclose (f);
  if (!shim)
    return false;
  snprintf (path, sizeof path, "/proc/%d/cmdline", pid);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : read (fd, cmd, sizeof cmd - 1);
  if (fd >= 0)
    close (fd);
  if (n <= 0)
    return false;
  for (ssize_t i = 0; i < n; i++)
    if (cmd[i] == '\0')
      cmd[i] = ' ';
  cmd[n] = '\0';
  return strstr (cmd, state_dir) != NULL;
}

/* The first child of pid (a shim's container init), or -1. */
static int first_child (int pid)
{
  char path[64];
  int child = -1;
  snprintf (path, sizeof path, "/proc/%d/task/%d/children", pid, pid);
  FILE *f = fopen (path, "re");
  if (f == NULL)
    return -1;
  if (fscanf (f, "%d", &child) != 1)
    child = -1;
  fclose (f);
  return child;
}

static void mem_add (mem *sum, const mem *m)
{
  sum->rss += m->rss, sum->rss_anon += m->rss_anon, sum->rss_file += m->rss_file;
  sum->pss += m->pss, sum->pss_anon += m->pss_anon, sum->pss_file += m->pss_file;
}

static void mem_div (mem *m, int n)
{
  m->rss /= n, m->rss_anon /= n, m->rss_file /= n;
  m->pss /= n, m->pss_anon /= n, m->pss_file /= n;
}

/* Every shim of this run and its container's init: mean memory of each, shims' CPU. */
static int shims (const char *state_dir, int seconds, mem *shim, mem *init, double *cpu)
{
  DIR *d = opendir ("/proc");
  int pids[4096], n = 0, inits = 0;
  memset (shim, 0, sizeof *shim), memset (init, 0, sizeof *init);
  for (struct dirent *e; d && (e = readdir (d)) && n < 4096;)
    if (isdigit ((unsigned char)e->d_name[0]) && is_our_shim (atoi (e->d_name), state_dir))
      pids[n++] = atoi (e->d_name);
  if (d)
    closedir (d);
  long long t0 = 0, t1 = 0;
  for (int i = 0; i < n; i++)
    {
      mem m;
      int c = first_child (pids[i]);
      if (mem_of (pids[i], &m) == 0)
        mem_add (shim, &m);
      if (c > 0 && mem_of (c, &m) == 0)
        mem_add (init, &m), inits++;
      t0 += cpu_ticks (pids[i]);
    }
  int64_t w0 = cpc_now_ns ();
  sleep ((unsigned)seconds);
  for (int i = 0; i < n; i++)
    t1 += cpu_ticks (pids[i]);
  *cpu = 100.0 * (double)(t1 - t0) / (double)sysconf (_SC_CLK_TCK)
         / ((double)(cpc_now_ns () - w0) / 1e9);
  if (n)
    mem_div (shim, n);
  if (inits)
    mem_div (init, inits);
  return n;
}

/* Starts tasks until `target` run, then waits until all report RUNNING. */
static int load_up (cpc_api *a, const char *family, char **arns, int *n, int target)
{
  while (*n < target)
    if (run_tasks (a, family, target - *n < 10 ? target - *n : 10, arns, n) < 0)
      return -1;
  for (int tries = 0; tries < 600; tries++)
    {
      int running = 0;
      for (int i = 0; i < *n; i += 100)
        if (count_running (a, arns + i, *n - i < 100 ? *n - i : 100, &running) < 0)
          return -1;
      if (running == *n)
        return 0;
      sleep (1);
    }
  fprintf (stderr, "node: not all %d tasks RUNNING after 600 s\n", *n);
  return -1;
}

static int figure12_load (cpc_api *a, int agent, const char *state_dir, const char *family,
                          char **arns, int *n, int target, int seconds)
{
  mem m, shim, init;
  double cpu, shim_cpu;
  if (load_up (a, family, arns, n, target) < 0)
    return -1;
  sleep (10); /* settle: the last reports and a first telemetry cycle */
  cpu = cpu_pct (agent, seconds);
  mem_of (agent, &m);
  keep_smaps (agent, "load");
  int shims_n = shims (state_dir, 5, &shim, &init, &shim_cpu);
  mem_header ();
  char name[64];
  snprintf (name, sizeof name, "agent, %d tasks running", *n);
  mem_row (name, &m, LOAD_RSS_TARGET_KIB, "agent_load");
  snprintf (name, sizeof name, "berth-shim (mean of %d)", shims_n);
  mem_row (name, &shim, SHIM_TARGET_KIB, "shim");
  mem_row ("container init `sleep` (floor)", &init, 0, "sleep");
  printf ("   berth-shim / sleep: VmRSS %.2f x, Pss %.2f x\n", (double)shim.rss / (double)init.rss,
          (double)shim.pss / (double)init.pss);
  printf ("   agent CPU with %d tasks over %d s: %.2f%% of a core (target <= %.0f%%): %s\n", *n,
          seconds, cpu, CPU_TARGET_PCT, cpu <= CPU_TARGET_PCT ? "PASS" : "MISS");
  printf ("   all %d shims together: %.2f%% of a core\n", shims_n, shim_cpu);
  printf ("raw node.agent_load.cpu_pct %.3f\nraw node.shims.cpu_pct %.3f\n", cpu, shim_cpu);
  return 0;
}

int main (int argc, char **argv)
{
  if (argc < 8)
    {
      fprintf (stderr, "usage: node PORT CREDENTIALS AGENT_PID STATE_DIR CRUN_ROOT CRUN_BUNDLE "
                       "LOAD_FAMILY [LAT_TASKS [LOAD_TASKS [CPU_SECONDS [FLOOR_PID]]]]\n");
      return 2;
    }
  int port = atoi (argv[1]), agent = atoi (argv[3]);
  int lat = argc > 8 ? atoi (argv[8]) : 200, load = argc > 9 ? atoi (argv[9]) : 500;
  if (lat < 1 || load < lat + 1)
    {
      fprintf (stderr, "node: LAT_TASKS must be >= 1 and LOAD_TASKS > LAT_TASKS\n");
      return 2;
    }
  int seconds = argc > 10 ? atoi (argv[10]) : 60;
  int floor_pid = argc > 11 ? atoi (argv[11]) : 0;
  char **arns = calloc ((size_t)(lat + load + 2), sizeof *arns);
  int n = 0, rc = 1;
  cpc_api a;
  curl_global_init (CURL_GLOBAL_DEFAULT);
  if (arns == NULL || admin_api (&a, port, argv[2]) < 0 || wait_connected (&a) < 0
      || register_family (&a, "bench-bridge", "bridge") < 0
      || register_family (&a, "bench-none", "none") < 0)
    goto out;
  mem m;
  sleep (25); /* settle: registration done and one telemetry cycle (20 s) past */
  double idle_cpu = cpu_pct (agent, 10);
  mem_of (agent, &m);
  keep_smaps (agent, "idle");
  printf ("== 12a. berth-agent idle: registered, connected, no task ==\n");
  mem_header ();
  mem_row ("agent, idle", &m, IDLE_RSS_TARGET_KIB, "agent_idle");
  mem fl;
  if (floor_pid > 0 && mem_of (floor_pid, &fl) == 0)
    {
      /* The same libraries, curl initialised, nothing else: what linking them costs. */
      mem_row ("its libraries alone (floor)", &fl, IDLE_RSS_TARGET_KIB, "libfloor");
      printf ("   agent / floor: VmRSS %.2f x, anon %.2f x; the agent's own VmRSS above the "
              "floor: %ld KiB\n",
              (double)m.rss / (double)fl.rss, (double)m.rss_anon / (double)fl.rss_anon,
              m.rss - fl.rss);
    }
  printf ("   agent CPU idle over 10 s: %.2f%% of a core\nraw node.agent_idle.cpu_pct %.3f\n\n",
          idle_cpu, idle_cpu);
  fflush (stdout);
  printf ("== 11. RunTask to RUNNING reported, cached image, bridge mode ==\n");
  if (figure11 (&a, argv[5], argv[6], lat, arns, &n) < 0)
    goto out;
  printf ("\n== 12b. berth-agent with %d running tasks (%s), berth-shim per container ==\n", load,
          argv[7]);
  fflush (stdout);
  rc = figure12_load (&a, agent, argv[4], argv[7], arns, &n, load, seconds) < 0;
out:
  for (int i = 0; i < n; i++)
    free (arns[i]);
  free (arns);
  curl_global_cleanup ();
  return rc;
}
