/* Measures berth-control's RunTask placement throughput through its HTTP API: starts a server
 * on a scratch data directory, registers N container instances, then times RunTask requests
 * (SigV4-signed by libcurl with the admin key) per placement strategy. bench/README.md.
 * Usage: placement BERTH_CONTROL DATA_DIR [INSTANCES [REQUESTS [COUNT]]] */
#include "cpclient.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TARGET_PER_S 2000.0

static int cmp_i64 (const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int setup_cluster (cpc_api *a, int instances)
{
  int64_t ns;
  char body[1024];
  cJSON *j = cpc_call (a, "CreateCluster", "{\"clusterName\":\"bench\"}", &ns);
  cJSON_Delete (j);
  j = cpc_call (a, "RegisterTaskDefinition",
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
      if ((j = cpc_call (a, "RegisterContainerInstance", body, &ns)) == NULL)
        return -1;
      cJSON_Delete (j);
    }
  return 0;
}

/* Times requests RunTasks of count copies with strategy; prints the figures. */
static int run_strategy (cpc_api *a, const char *name, const char *strategy, int requests,
                         int count)
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
      cJSON *j = cpc_call (a, "RunTask", body, &ns);
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
  int port = cpc_free_port ();
  mkdir (argv[2], 0700);
  snprintf (creds, sizeof creds, "%s/credentials", argv[2]);
  pid_t pid = cpc_start_server (argv[1], argv[2], port, NULL);
  for (int i = 0; i < 200 && cpc_read_key (creds, "admin", key, secret) < 0; i++)
    usleep (25000);
  usleep (100000);
  cpc_api a;
  int rc = 1;
  curl_global_init (CURL_GLOBAL_DEFAULT);
  if (pid < 0 || cpc_read_key (creds, "admin", key, secret) < 0
      || cpc_api_init (&a, "placement", port, key, secret) < 0)
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
