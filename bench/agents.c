/* Measures berth-control holding many agent long-polls at once: N container instances
 * registered with the agent key, then N concurrent BerthChannelV1.Poll requests from one
 * process (curl multi), each re-sent as soon as its heartbeat comes back; reports the server's
 * RSS and its CPU over a steady interval. bench/README.md, figure 10.
 * Usage: agents BERTH_CONTROL DATA_DIR [AGENTS [SECONDS [WAIT_SECONDS]]] */
#include <arpa/inet.h>
#include <cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RSS_TARGET_MB 64.0
#define CPU_TARGET_PCT 5.0

typedef struct buf
{
  char *p;
  size_t n;
} buf;

typedef struct api
{
  CURL *curl;
  char url[64];
  char userpwd[192];
} api;

static size_t on_data (char *data, size_t size, size_t nmemb, void *cls)
{
  buf *b = cls;
  char *g = realloc (b->p, b->n + size * nmemb + 1);
  if (g == NULL)
    return 0;
  memcpy (g + b->n, data, size * nmemb);
  b->p = g;
  b->n += size * nmemb;
  b->p[b->n] = '\0';
  return size * nmemb;
}

static int64_t now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One signed call; returns the parsed response (NULL on HTTP or transport failure). */
static cJSON *call (api *a, const char *action, const char *body, int64_t *ns)
{
  char target[128];
  buf b = { 0 };
  long code = 0;
  struct curl_slist *h = NULL;
  snprintf (target, sizeof target, "X-Amz-Target: AmazonEC2ContainerServiceV20141113.%s", action);
  h = curl_slist_append (h, "Content-Type: application/x-amz-json-1.1");
  h = curl_slist_append (h, target);
  curl_easy_setopt (a->curl, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt (a->curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt (a->curl, CURLOPT_WRITEDATA, &b);
  int64_t t0 = now_ns ();
  CURLcode rc = curl_easy_perform (a->curl);
  *ns = now_ns () - t0;
  curl_slist_free_all (h);
  curl_easy_getinfo (a->curl, CURLINFO_RESPONSE_CODE, &code);
  cJSON *j = rc == CURLE_OK && code == 200 ? cJSON_Parse (b.p ? b.p : "") : NULL;
  if (j == NULL)
    fprintf (stderr, "agents: %s: %s %ld %s\n", action, curl_easy_strerror (rc), code,
             b.p ? b.p : "");
  free (b.p);
  return j;
}

static int api_init (api *a, int port, const char *key, const char *secret)
{
  snprintf (a->url, sizeof a->url, "http://127.0.0.1:%d/", port);
  snprintf (a->userpwd, sizeof a->userpwd, "%s:%s", key, secret);
  if ((a->curl = curl_easy_init ()) == NULL)
    return -1;
  curl_easy_setopt (a->curl, CURLOPT_URL, a->url);
  curl_easy_setopt (a->curl, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:ecs");
  curl_easy_setopt (a->curl, CURLOPT_USERPWD, a->userpwd);
  curl_easy_setopt (a->curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt (a->curl, CURLOPT_TIMEOUT, 30L);
  return 0;
}

static int free_port (void)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof sa;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind (fd, (struct sockaddr *)&sa, sizeof sa) < 0
      || getsockname (fd, (struct sockaddr *)&sa, &len) < 0)
    return -1;
  close (fd);
  return ntohs (sa.sin_port);
}

/* Reads key and secret of [profile] from the credentials file berth-control wrote. */
static int read_key (const char *path, const char *profile, char key[64], char secret[96])
{
  char line[256], want[64];
  bool in = false;
  FILE *f = fopen (path, "re");
  if (f == NULL)
    return -1;
  snprintf (want, sizeof want, "[%s]", profile);
  key[0] = secret[0] = '\0';
  while (fgets (line, sizeof line, f))
    {
      line[strcspn (line, "\n")] = '\0';
      if (line[0] == '[')
        in = strcmp (line, want) == 0;
      else if (in)
        {
          sscanf (line, "aws_access_key_id = %63s", key);
          sscanf (line, "aws_secret_access_key = %95s", secret);
        }
    }
  fclose (f);
  return key[0] && secret[0] ? 0 : -1;
}

static pid_t start_server (const char *bin, const char *dir, int port)
{
  char listen[64];
  snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
  pid_t pid = fork ();
  if (pid == 0)
    {
      execl (bin, bin, "--data-dir", dir, "--listen", listen, "--log-level", "error",
             "--agent-timeout", "60000", "--agent-lost-timeout", "3600000", NULL);
      _exit (127);
    }
  return pid;
}

/* One simulated agent: its instance and its poll in flight. */
typedef struct agent
{
  CURL *easy;
  char body[512];
  buf b;
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
  curl_easy_setopt (g->easy, CURLOPT_WRITEFUNCTION, on_data);
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
  return (double)now_ns () / 1e9;
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
          g->b = (buf){ 0 };
          curl_multi_remove_handle (multi, g->easy);
          curl_multi_add_handle (multi, g->easy);
        }
      curl_multi_poll (multi, NULL, 0, 100, NULL);
    }
}

static int register_agents (api *adm, api *ag, int n, char ***arns)
{
  int64_t ns;
  cJSON_Delete (call (adm, "CreateCluster", "{\"clusterName\":\"bench\"}", &ns));
  *arns = calloc ((size_t)n, sizeof **arns);
  for (int i = 0; i < n; i++)
    {
      cJSON *j = call (ag, "RegisterContainerInstance",
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
  int port = free_port ();
  mkdir (argv[2], 0700);
  pid_t pid = start_server (argv[1], argv[2], port);
  snprintf (creds, sizeof creds, "%s/credentials", argv[2]);
  for (int i = 0; i < 100 && read_key (creds, "agent", gkey, gsecret) < 0; i++)
    usleep (50000);
  curl_global_init (CURL_GLOBAL_DEFAULT);
  api adm, ag;
  char **arns = NULL;
  if (read_key (creds, "admin", akey, asecret) < 0 || read_key (creds, "agent", gkey, gsecret) < 0
      || api_init (&adm, port, akey, asecret) < 0 || api_init (&ag, port, gkey, gsecret) < 0
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
