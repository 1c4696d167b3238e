/* Measures berth-control's RunTask placement throughput through its HTTP API: starts a server
 * on a scratch data directory, registers N container instances, then times RunTask requests
 * (SigV4-signed by libcurl with the admin key) per placement strategy. bench/README.md.
 * Usage: placement BERTH_CONTROL DATA_DIR [INSTANCES [REQUESTS [COUNT]]] */
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TARGET_PER_S 2000.0

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
    fprintf (stderr, "placement: %s: %s %ld %s\n", action, curl_easy_strerror (rc), code,
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
      execl (bin, bin, "--data-dir", dir, "--listen", listen, "--log-level", "error", NULL);
      _exit (127);
    }
  return pid;
}

static int cmp_i64 (const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int setup_cluster (api *a, int instances)
{
  int64_t ns;
  char body[1024];
  cJSON *j = call (a, "CreateCluster", "{\"clusterName\":\"bench\"}", &ns);
  cJSON_Delete (j);
  j = call (a, "RegisterTaskDefinition",
            "{\"family\":\"bench\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
            "\"busybox\",\"cpu\":16,\"memory\":32}]}",
            &ns);
  if (j == NULL)
    return -1;
  cJSON_Delete (j);
  for (int i = 0; i < instances; i++)
    {
      snprintf (body, sizeof body,
                "{\"cluster\":\"bench\",\"totalResources\":["
                "{\"name\":\"CPU\",\"type\":\"INTEGER\",\"integerValue\":4096},"
                "{\"name\":\"MEMORY\",\"type\":\"INTEGER\",\"integerValue\":16384},"
                "{\"name\":\"PORTS\",\"type\":\"STRINGSET\",\"stringSetValue\":[\"22\"]}],"
                "\"attributes\":[{\"name\":\"ecs.availability-zone\",\"value\":\"z%d\"}]}",
                i % 3);
      if ((j = call (a, "RegisterContainerInstance", body, &ns)) == NULL)
        return -1;
      cJSON_Delete (j);
    }
  return 0;
}

/* Times requests RunTasks of count copies with strategy; prints the figures. */
static int run_strategy (api *a, const char *name, const char *strategy, int requests, int count)
{
  int64_t *lat = calloc ((size_t)requests, sizeof *lat), ns, total = 0;
  long placed = 0;
  char body[512];
  if (lat == NULL)
    return -1;
  snprintf (body, sizeof body,
            "{\"cluster\":\"bench\",\"taskDefinition\":\"bench\",\"count\":%d,"
            "\"placementStrategy\":%s}",
            count, strategy);
  for (int r = 0; r < requests; r++)
    {
      cJSON *j = call (a, "RunTask", body, &ns);
      if (j == NULL)
        {
          free (lat);
          return -1;
        }
      placed += cJSON_GetArraySize (cJSON_GetObjectItem (j, "tasks"));
      cJSON_Delete (j);
      lat[r] = ns;
      total += ns;
    }
  qsort (lat, (size_t)requests, sizeof *lat, cmp_i64);
  double per_s = (double)placed / ((double)total / 1e9);
  double p50 = (double)lat[requests / 2] / 1e6, p99 = (double)lat[(requests * 99) / 100] / 1e6;
  printf ("   %-8s %8ld %10.0f %10.2f %10.2f   %s (target >= %.0f/s)\n", name, placed, per_s, p50,
          p99, per_s >= TARGET_PER_S ? "PASS" : "MISS", TARGET_PER_S);
  printf ("raw placement.%s.placed %ld\nraw placement.%s.per_s %.0f\nraw placement.%s.p50_ms "
          "%.3f\nraw placement.%s.p99_ms %.3f\n",
          name, placed, name, per_s, name, p50, name, p99);
  free (lat);
  return 0;
}

int main (int argc, char **argv)
{
  if (argc < 3)
    {
      fprintf (stderr, "usage: placement BERTH_CONTROL DATA_DIR [INSTANCES [REQUESTS [COUNT]]]\n");
      return 2;
    }
  int instances = argc > 3 ? atoi (argv[3]) : 1000;
  int requests = argc > 4 ? atoi (argv[4]) : 300;
  int count = argc > 5 ? atoi (argv[5]) : 10;
  char creds[512], key[64], secret[96];
  int port = free_port ();
  mkdir (argv[2], 0700);
  snprintf (creds, sizeof creds, "%s/credentials", argv[2]);
  pid_t pid = start_server (argv[1], argv[2], port);
  for (int i = 0; i < 200 && read_key (creds, "admin", key, secret) < 0; i++)
    usleep (25000);
  usleep (100000);
  api a;
  int rc = 1;
  curl_global_init (CURL_GLOBAL_DEFAULT);
  if (pid < 0 || read_key (creds, "admin", key, secret) < 0 || api_init (&a, port, key, secret) < 0)
    fprintf (stderr, "placement: berth-control did not start\n");
  else if (setup_cluster (&a, instances) == 0)
    {
      printf ("   %d instances, RunTask count %d, %d requests per strategy, one connection\n",
              instances, count, requests);
      printf ("   %-8s %8s %10s %10s %10s\n", "strategy", "placed", "per s", "p50 ms", "p99 ms");
      rc = run_strategy (&a, "binpack", "[{\"type\":\"binpack\",\"field\":\"memory\"}]", requests,
                         count)
               < 0
           || run_strategy (&a, "spread",
                            "[{\"type\":\"spread\",\"field\":\"attribute:ecs.availability-"
                            "zone\"},{\"type\":\"spread\",\"field\":\"instanceId\"}]",
                            requests, count)
                  < 0;
    }
  if (pid > 0)
    {
      kill (pid, SIGTERM);
      waitpid (pid, NULL, 0);
    }
  curl_global_cleanup ();
  return rc;
}
