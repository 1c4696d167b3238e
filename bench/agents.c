/* Measures berth-control holding many agent long-polls at once: N container instances
 * registered with the agent key, then N concurrent BerthChannelV1.Poll requests from one
 * process (curl multi), each re-sent as soon as its heartbeat comes back; reports the server's
 * RSS and its CPU over a steady interval. bench/README.md, figure 10.
 * Usage: agents BERTH_CONTROL DATA_DIR [AGENTS [SECONDS [WAIT_SECONDS]]] */
#include "cpclient.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RSS_TARGET_MB 64.0
#define CPU_TARGET_PCT 5.0

/* One simulated agent: its instance and its poll in flight. */
typedef struct agent
{
  CURL *easy;
  char body[512];
  cpc_buf b;
  struct curl_slist *headers;
} agent;

static long heartbeats, failures;

static int agent_init (agent *g, const char *url, const char *userpwd, const char *arn, int wait)
{
  snprintf (g->body, sizeof g->body,
            "{\"cluster\":\"bench\",\"containerInstance\":\"%s\",\"ackSeqNum\":0,"
            "\"waitSeconds\":%d}",
            arn, wait);
  g->headers = curl_slist_append (NULL, "Content-Type: application/x-amz-json-1.1");
  g->headers = curl_slist_append (g->headers, "X-Amz-Target: BerthChannelV1.Poll");
  if ((g->easy = curl_easy_init ()) == NULL || g->headers == NULL)
    return -1;
  curl_easy_setopt (g->easy, CURLOPT_URL, url);
  curl_easy_setopt (g->easy, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:ecs");
  curl_easy_setopt (g->easy, CURLOPT_USERPWD, userpwd);
  curl_easy_setopt (g->easy, CURLOPT_HTTPHEADER, g->headers);
  curl_easy_setopt (g->easy, CURLOPT_POSTFIELDS, g->body);
  curl_easy_setopt (g->easy, CURLOPT_WRITEFUNCTION, cpc_on_data);
  curl_easy_setopt (g->easy, CURLOPT_WRITEDATA, &g->b);
  curl_easy_setopt (g->easy, CURLOPT_PRIVATE, g);
  curl_easy_setopt (g->easy, CURLOPT_TIMEOUT, (long)wait + 10);
  return 0;
}

/* The server's CPU time (user + system) in clock ticks and its RSS in KiB. */
static int server_usage (pid_t pid, unsigned long long *ticks, long *rss_kib, long *hwm_kib)
{
  char path[64], line[512];
  snprintf (path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen (path, "re");
  if (f == NULL || fgets (line, sizeof line, f) == NULL)
    {
      if (f)
        fclose (f);
      return -1;
    }
  fclose (f);
  unsigned long long ut, st;
  char *p = strrchr (line, ')');
  if (p == NULL
      || sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return -1;
  *ticks = ut + st;
  snprintf (path, sizeof path, "/proc/%d/status", (int)pid);
  if ((f = fopen (path, "re")) == NULL)
    return -1;
  while (fgets (line, sizeof line, f))
    {
      sscanf (line, "VmRSS: %ld", rss_kib);
      sscanf (line, "VmHWM: %ld", hwm_kib);
    }
  fclose (f);
  return 0;
}

static double now_s (void)
{
  return (double)cpc_now_ns () / 1e9;
}

/* Runs the multi until `until`; each finished poll is counted and sent again. */
static void pump (CURLM *multi, double until)
{
  int running, left;
  while (now_s () < until)
    {
      curl_multi_perform (multi, &running);
      CURLMsg *m;
      while ((m = curl_multi_info_read (multi, &left)))
        {
          if (m->msg != CURLMSG_DONE)
            continue;
          agent *g;
          long code = 0;
          curl_easy_getinfo (m->easy_handle, CURLINFO_PRIVATE, (char **)&g);
          curl_easy_getinfo (m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
          if (m->data.result == CURLE_OK && code == 200 && g->b.p
              && strstr (g->b.p, "HeartbeatMessage"))
            heartbeats++;
          else
            failures++;
          free (g->b.p);
          g->b = (cpc_buf){ 0 };
          curl_multi_remove_handle (multi, g->easy);
          curl_multi_add_handle (multi, g->easy);
        }
      curl_multi_poll (multi, NULL, 0, 100, NULL);
    }
}

static int register_agents (cpc_api *adm, cpc_api *ag, int n, char ***arns)
{
  int64_t ns;
  cJSON_Delete (cpc_call (adm, "CreateCluster", "{\"clusterName\":\"bench\"}", &ns));
  *arns = calloc ((size_t)n, sizeof **arns);
  for (int i = 0; i < n; i++)
    {
      cJSON *j = cpc_call (ag, "RegisterContainerInstance",
                           "{\"cluster\":\"bench\",\"totalResources\":["
                           "{\"name\":\"CPU\",\"type\":\"INTEGER\",\"integerValue\":4096},"
                           "{\"name\":\"MEMORY\",\"type\":\"INTEGER\",\"integerValue\":16384}]}",
                           &ns);
      cJSON *arn = cJSON_GetObjectItem (cJSON_GetObjectItem (j, "containerInstance"),
                                        "containerInstanceArn");
      if (!cJSON_IsString (arn) || ((*arns)[i] = strdup (arn->valuestring)) == NULL)
        {
          cJSON_Delete (j);
          return -1;
        }
      cJSON_Delete (j);
    }
  return 0;
}

int main (int argc, char **argv)
{
  if (argc < 3)
    {
      fprintf (stderr, "usage: agents BERTH_CONTROL DATA_DIR [AGENTS [SECONDS [WAIT]]]\n");
      return 2;
    }
  int n = argc > 3 ? atoi (argv[3]) : 1000, seconds = argc > 4 ? atoi (argv[4]) : 60;
  int wait = argc > 5 ? atoi (argv[5]) : 5;
  struct rlimit rl;
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      setrlimit (RLIMIT_NOFILE, &rl);
    }
  char creds[512], akey[64], asecret[96], gkey[64], gsecret[96], url[64], userpwd[192];
  int port = cpc_free_port ();
  mkdir (argv[2], 0700);
  static const char *const timeouts[]
      = { "--agent-timeout", "60000", "--agent-lost-timeout", "3600000", NULL };
  pid_t pid = cpc_start_server (argv[1], argv[2], port, timeouts);
  snprintf (creds, sizeof creds, "%s/credentials", argv[2]);
  for (int i = 0; i < 100 && cpc_read_key (creds, "agent", gkey, gsecret) < 0; i++)
    usleep (50000);
  curl_global_init (CURL_GLOBAL_DEFAULT);
  cpc_api adm, ag;
  char **arns = NULL;
  if (cpc_read_key (creds, "admin", akey, asecret) < 0
      || cpc_read_key (creds, "agent", gkey, gsecret) < 0
      || cpc_api_init (&adm, "agents", port, akey, asecret) < 0
      || cpc_api_init (&ag, "agents", port, gkey, gsecret) < 0
      || register_agents (&adm, &ag, n, &arns) < 0)
    {
      fprintf (stderr, "agents: setup failed\n");
      kill (pid, SIGKILL);
      return 1;
    }
  snprintf (url, sizeof url, "http://127.0.0.1:%d/", port);
  snprintf (userpwd, sizeof userpwd, "%s:%s", gkey, gsecret);
  CURLM *multi = curl_multi_init ();
  curl_multi_setopt (multi, CURLMOPT_MAXCONNECTS, (long)n + 16);
  agent *agents = calloc ((size_t)n, sizeof *agents);
  for (int i = 0; i < n; i++)
    if (agent_init (&agents[i], url, userpwd, arns[i], wait) < 0
        || curl_multi_add_handle (multi, agents[i].easy) != CURLM_OK)
      {
        fprintf (stderr, "agents: cannot start poll %d\n", i);
        kill (pid, SIGKILL);
        return 1;
      }
  /* Warm-up: every agent connected and at least one heartbeat round done. */
  pump (multi, now_s () + wait + 3);
  unsigned long long t0, t1;
  long rss0 = 0, rss1 = 0, hwm = 0;
  heartbeats = failures = 0;
  server_usage (pid, &t0, &rss0, &hwm);
  double s0 = now_s ();
  pump (multi, s0 + seconds);
  double elapsed = now_s () - s0;
  server_usage (pid, &t1, &rss1, &hwm);
  double cpu = 100.0 * (double)(t1 - t0) / (double)sysconf (_SC_CLK_TCK) / elapsed;
  printf ("   %d agents long-polling (waitSeconds %d) for %.0f s: %ld heartbeats (%.0f/s), %ld "
          "failed polls\n",
          n, wait, elapsed, heartbeats, (double)heartbeats / elapsed, failures);
  printf ("   berth-control: RSS %.1f MB (peak %.1f MB), CPU %.2f%% of a core\n", rss1 / 1024.0,
          hwm / 1024.0, cpu);
  printf ("   verdict: %s - RSS %.1f MB (target <= %.0f MB), CPU %.2f%% (target < %.0f%%)\n",
          rss1 / 1024.0 <= RSS_TARGET_MB && cpu < CPU_TARGET_PCT ? "PASS" : "MISS", rss1 / 1024.0,
          RSS_TARGET_MB, cpu, CPU_TARGET_PCT);
  printf ("raw agents=%d wait=%d seconds=%.1f heartbeats=%ld failures=%ld rss_kib=%ld hwm_kib=%ld "
          "cpu_pct=%.3f\n",
          n, wait, elapsed, heartbeats, failures, rss1, hwm, cpu);
  kill (pid, SIGTERM);
  waitpid (pid, NULL, 0);
  return failures > 0 ? 1 : 0;
}
