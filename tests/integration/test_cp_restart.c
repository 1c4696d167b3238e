/* Restart test of berth-control: concurrent writers record every request that got HTTP 200
 * while the server is killed with SIGKILL mid-stream and restarted on the same data directory,
 * several times; afterwards every acknowledged write must be there and the server answer. */
#include "lib/cleanup.h"
#include "tests/support/cp.h"
#include "tests/support/support.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WRITERS 4
#define MAX_ACKED 4000
#define KILLS 5
#define TARGET "AmazonEC2ContainerServiceV20141113."

static ts_cp cp;

/* What one writer was told succeeded. */
typedef struct writer
{
  int id;
  pthread_t thread;
  char (*clusters)[64];
  char (*taskdefs)[64]; /* family:revision */
  char (*tasks)[160];
  char (*tags)[160]; /* "<cluster name> <key> <value>" */
  size_t n_clusters, n_taskdefs, n_tasks, n_tags;
  long server_errors, other_errors;
} writer;

static atomic_int stop_writers;
static atomic_long acked_total;

static void setup (void)
{
  ts_cp_setup (&cp);
  cJSON_Delete (ts_cp_aws_ok (&cp, "create-cluster --cluster-name load"));
  cJSON_Delete (ts_cp_aws_ok (&cp, "register-container-instance --profile agent --cluster load "
                                   "--total-resources name=CPU,type=INTEGER,integerValue=1000000 "
                                   "name=MEMORY,type=INTEGER,integerValue=1000000"));
}

static void teardown (void)
{
  ts_cp_teardown (&cp);
}

/* One admin call; *res the parsed answer when it is 200. */
static long call (const char *action, const char *body, cJSON **res)
{
  char target[128];
  char *out = NULL;
  snprintf (target, sizeof target, TARGET "%s", action);
  long status = ts_cp_call (&cp, "admin", target, body, &out);
  *res = status == 200 && out ? cJSON_Parse (out) : NULL;
  free (out);
  return status;
}

static long op_create_cluster (writer *w, int i)
{
  char name[64], body[128];
  cJSON *res;
  snprintf (name, sizeof name, "w%d-%d", w->id, i);
  snprintf (body, sizeof body, "{\"clusterName\":\"%s\"}", name);
  long status = call ("CreateCluster", body, &res);
  if (status == 200 && res)
    snprintf (w->clusters[w->n_clusters++], 64, "%s", name);
  cJSON_Delete (res);
  return status;
}

static long op_register (writer *w)
{
  char body[256];
  cJSON *res;
  snprintf (body, sizeof body,
            "{\"family\":\"f%d\",\"containerDefinitions\":[{\"name\":\"app\",\"image\":"
            "\"busybox\",\"memory\":6}]}",
            w->id);
  long status = call ("RegisterTaskDefinition", body, &res);
  const cJSON *td = cJSON_GetObjectItem (res, "taskDefinition");
  const cJSON *rev = cJSON_GetObjectItem (td, "revision");
  if (status == 200 && cJSON_IsNumber (rev))
    snprintf (w->taskdefs[w->n_taskdefs++], 64, "f%d:%d", w->id, rev->valueint);
  cJSON_Delete (res);
  return status;
}

static long op_run (writer *w)
{
  char body[128];
  cJSON *res;
  const cJSON *t;
  snprintf (body, sizeof body, "{\"cluster\":\"load\",\"taskDefinition\":\"f%d\",\"count\":2}",
            w->id);
  long status = call ("RunTask", body, &res);
  cJSON_ArrayForEach (t, cJSON_GetObjectItem (res, "tasks"))
  {
    if (status == 200 && w->n_tasks < MAX_ACKED)
      snprintf (w->tasks[w->n_tasks++], 160, "%s", ts_json_str (t, "taskArn"));
  }
  cJSON_Delete (res);
  return status;
}

static long op_tag (writer *w, int i)
{
  char body[256];
  cJSON *res;
  if (w->n_clusters == 0)
    return 0;
  const char *name = w->clusters[w->n_clusters - 1];
  snprintf (body, sizeof body,
            "{\"resourceArn\":\"arn:aws:ecs:us-east-1:000000000000:cluster/%s\","
            "\"tags\":[{\"key\":\"k%d\",\"value\":\"v%d\"}]}",
            name, i, i);
  long status = call ("TagResource", body, &res);
  if (status == 200)
    snprintf (w->tags[w->n_tags++], 160, "%s k%d v%d", name, i, i);
  cJSON_Delete (res);
  return status;
}

static void *write_loop (void *arg)
{
  writer *w = arg;
  for (int i = 0; !atomic_load (&stop_writers) && i < MAX_ACKED; i++)
    {
      long status;
      switch (i % 4)
        {
        case 0:
          status = op_create_cluster (w, i);
          break;
        case 1:
          status = op_register (w);
          break;
        case 2:
          status = op_run (w);
          break;
        default:
          status = op_tag (w, i);
          break;
        }
      if (status == 200)
        atomic_fetch_add (&acked_total, 1);
      else if (status >= 500)
        w->server_errors++;
      else if (status == 0)
        usleep (5000); /* the server is down: try again shortly */
      else
        w->other_errors++;
    }
  return NULL;
}

/* Waits until the writers got n more acknowledgements. */
static void wait_acked (long n)
{
  long from = atomic_load (&acked_total);
  for (int i = 0; i < 60000 && atomic_load (&acked_total) < from + n; i++)
    usleep (1000);
  ck_assert_int_ge (atomic_load (&acked_total), from + n);
}

static cJSON *call_ok (const char *action, const char *body)
{
  cJSON *res;
  long status = call (action, body, &res);
  ck_assert_msg (status == 200 && res, "%s %s: %ld", action, body, status);
  return res;
}

static void check_clusters (const writer *w)
{
  for (size_t i = 0; i < w->n_clusters; i++)
    {
      char body[128];
      snprintf (body, sizeof body, "{\"clusters\":[\"%s\"]}", w->clusters[i]);
      cJSON *r = call_ok ("DescribeClusters", body);
      const cJSON *c = cJSON_GetArrayItem (cJSON_GetObjectItem (r, "clusters"), 0);
      ck_assert_msg (c && strcmp (ts_json_str (c, "status"), "ACTIVE") == 0,
                     "acknowledged cluster %s lost", w->clusters[i]);
      cJSON_Delete (r);
    }
}

static void check_taskdefs (const writer *w)
{
  for (size_t i = 0; i < w->n_taskdefs; i++)
    {
      char body[128];
      snprintf (body, sizeof body, "{\"taskDefinition\":\"%s\"}", w->taskdefs[i]);
      cJSON *r;
      long status = call ("DescribeTaskDefinition", body, &r);
      ck_assert_msg (status == 200, "acknowledged task definition %s lost", w->taskdefs[i]);
      cJSON_Delete (r);
    }
}

static void check_tasks (const writer *w)
{
  for (size_t i = 0; i < w->n_tasks; i += 100)
    {
      _cleanup_free_ char *body = strdup ("{\"cluster\":\"load\",\"tasks\":[");
      for (size_t k = i; k < w->n_tasks && k < i + 100; k++)
        {
          char *more = NULL;
          ck_assert_int_ge (asprintf (&more, "%s%s\"%s\"", body, k > i ? "," : "", w->tasks[k]), 0);
          free (body);
          body = more;
        }
      char *done = NULL;
      ck_assert_int_ge (asprintf (&done, "%s]}", body), 0);
      free (body);
      body = done;
      cJSON *r = call_ok ("DescribeTasks", body);
      const cJSON *f = cJSON_GetArrayItem (cJSON_GetObjectItem (r, "failures"), 0);
      ck_assert_msg (f == NULL, "acknowledged task %s lost", ts_json_str (f, "arn"));
      size_t want = w->n_tasks - i < 100 ? w->n_tasks - i : 100;
      ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (r, "tasks")), want);
      cJSON_Delete (r);
    }
}

static void check_tags (const writer *w)
{
  for (size_t i = 0; i < w->n_tags; i++)
    {
      char name[64], key[32], value[32], body[256];
      const cJSON *t;
      bool found = false;
      ck_assert_int_eq (sscanf (w->tags[i], "%63s %31s %31s", name, key, value), 3);
      snprintf (body, sizeof body,
                "{\"resourceArn\":\"arn:aws:ecs:us-east-1:000000000000:cluster/%s\"}", name);
      cJSON *r = call_ok ("ListTagsForResource", body);
      cJSON_ArrayForEach (t, cJSON_GetObjectItem (r, "tags"))
      {
        found |= strcmp (ts_json_str (t, "key"), key) == 0
                 && strcmp (ts_json_str (t, "value"), value) == 0;
      }
      ck_assert_msg (found, "acknowledged tag %s lost", w->tags[i]);
      cJSON_Delete (r);
    }
}

START_TEST (test_kill_9_under_concurrent_writes_loses_nothing_acknowledged)
{
  writer w[WRITERS];
  memset (w, 0, sizeof w);
  atomic_store (&stop_writers, 0);
  for (int i = 0; i < WRITERS; i++)
    {
      w[i].id = i;
      w[i].clusters = calloc (MAX_ACKED, sizeof *w[i].clusters);
      w[i].taskdefs = calloc (MAX_ACKED, sizeof *w[i].taskdefs);
      w[i].tasks = calloc (MAX_ACKED, sizeof *w[i].tasks);
      w[i].tags = calloc (MAX_ACKED, sizeof *w[i].tags);
      ck_assert_int_eq (pthread_create (&w[i].thread, NULL, write_loop, &w[i]), 0);
    }
  for (int k = 0; k < KILLS; k++)
    {
      wait_acked (60 + 17 * k); /* kill at a different point each round */
      ck_assert_int_eq (ts_cp_signal (&cp, SIGKILL) & 0x7f, SIGKILL);
      usleep (20000); /* writers meet a closed port meanwhile */
      ts_cp_start (&cp);
    }
  wait_acked (40);
  atomic_store (&stop_writers, 1);
  long acked = atomic_load (&acked_total), server_errors = 0;
  for (int i = 0; i < WRITERS; i++)
    {
      pthread_join (w[i].thread, NULL);
      server_errors += w[i].server_errors;
    }
  /* One last kill after the last acknowledgement, then everything is checked. */
  ts_cp_signal (&cp, SIGKILL);
  ts_cp_start (&cp);
  size_t n[4] = { 0 };
  for (int i = 0; i < WRITERS; i++)
    {
      check_clusters (&w[i]);
      check_taskdefs (&w[i]);
      check_tasks (&w[i]);
      check_tags (&w[i]);
      n[0] += w[i].n_clusters, n[1] += w[i].n_taskdefs, n[2] += w[i].n_tasks, n[3] += w[i].n_tags;
    }
  printf ("restart: %ld acknowledged writes over %d kills (%zu clusters, %zu task definitions, "
          "%zu tasks, %zu tags), all present\n",
          acked, KILLS + 1, n[0], n[1], n[2], n[3]);
  ck_assert_int_eq (server_errors, 0);
  ck_assert_uint_gt (n[0], 0);
  ck_assert_uint_gt (n[2], 0);
  ck_assert_uint_gt (n[3], 0);
  /* The daemon answers normally: the CLI lists and creates. */
  cJSON *l = ts_cp_aws_ok (&cp, "list-tasks --cluster load");
  ck_assert_int_gt (cJSON_GetArraySize (cJSON_GetObjectItem (l, "taskArns")), 0);
  cJSON_Delete (l);
  cJSON_Delete (ts_cp_aws_ok (&cp, "create-cluster --cluster-name after"));
  cJSON *d = ts_cp_aws_ok (&cp, "describe-clusters --clusters after");
  ck_assert_str_eq (
      ts_json_str (cJSON_GetArrayItem (cJSON_GetObjectItem (d, "clusters"), 0), "status"),
      "ACTIVE");
  cJSON_Delete (d);
  for (int i = 0; i < WRITERS; i++)
    {
      free (w[i].clusters);
      free (w[i].taskdefs);
      free (w[i].tasks);
      free (w[i].tags);
    }
  ck_assert_int_eq (ts_cp_signal (&cp, SIGTERM), 0);
}
END_TEST

static Suite *restart_suite (void)
{
  Suite *s = suite_create ("cp-restart");
  TCase *tc = tcase_create ("restart");
  tcase_set_timeout (tc, 300);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_kill_9_under_concurrent_writes_loses_nothing_acknowledged);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (restart_suite ());
}
