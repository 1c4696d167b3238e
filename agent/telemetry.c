/* The telemetry publisher: every BERTH_TELEMETRY_INTERVAL, per-container CPU and memory read
 * from cgroup files (cgroups/cgroups.h) and sent as BerthChannelV1.PublishMetrics, then the
 * containers' health as PublishHealth. Which containers exist, where their cgroups are and
 * their health come from the engine through callbacks. */
#include "agent/agent.h"
#include "cgroups/cgroups.h"
#include "lib/cleanup.h"
#include "lib/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TASKS_PER_REQUEST 10
#define PUBLISH_TIMEOUT_MS 20000L

/* The previous reading of one cgroup, for the CPU delta. */
typedef struct sample
{
  char *path;
  uint64_t cpu_ns, wall_ns;
  bool seen; /* in the latest gathering */
} sample;

struct agent_telemetry
{
  agent_telemetry_opts o;
  char *cluster, *instance_arn;
  sd_event_source *timer;
  sample *samples;
  size_t n_samples;
  uint64_t published;        /* PublishMetrics requests answered 200 */
  uint64_t health_published; /* PublishHealth requests answered 200 */
};

static uint64_t wall_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static sample *sample_of (agent_telemetry *t, const char *path)
{
  for (size_t i = 0; i < t->n_samples; i++)
    if (strcmp (t->samples[i].path, path) == 0)
      return &t->samples[i];
  sample *grown = realloc (t->samples, (t->n_samples + 1) * sizeof *grown);
  if (grown == NULL)
    return NULL;
  t->samples = grown;
  sample *s = &t->samples[t->n_samples];
  *s = (sample){ .path = strdup (path) };
  if (s->path == NULL)
    return NULL;
  t->n_samples++;
  return s;
}

/* {min, max, sampleCount, sum} of one value. */
static cJSON *stat_set (double v)
{
  cJSON *s = cJSON_CreateObject ();
  if (s && cJSON_AddNumberToObject (s, "min", v) && cJSON_AddNumberToObject (s, "max", v)
      && cJSON_AddNumberToObject (s, "sampleCount", 1) && cJSON_AddNumberToObject (s, "sum", v))
    return s;
  cJSON_Delete (s);
  return NULL;
}

/* One container's metrics, or NULL when there is nothing yet (first reading, group gone). */
static cJSON *container_metrics (agent_telemetry *t, const agent_container_cgroup *c)
{
  cg_group *g = NULL;
  struct cg_stats st;
  _cleanup_berr_ berr *err = NULL;
  sample *s = sample_of (t, c->cgroup_path);
  if (s == NULL || cg_open (c->cgroup_path, &g, &err) < 0 || cg_get_stats (g, &st, &err) < 0)
    {
      cg_free (g);
      if (err)
        blog_debug ("telemetry: %s: %s", c->cgroup_path, err->msg);
      return NULL;
    }
  cg_free (g);
  uint64_t now = wall_ns ();
  bool first = s->wall_ns == 0 || st.cpu_usage_ns < s->cpu_ns;
  double cpu
      = first ? 0 : 100.0 * (double)(st.cpu_usage_ns - s->cpu_ns) / (double)(now - s->wall_ns);
  s->cpu_ns = st.cpu_usage_ns, s->wall_ns = now, s->seen = true;
  if (first)
    return NULL;
  cJSON *m = cJSON_CreateObject ();
  if (m && cJSON_AddStringToObject (m, "containerName", c->container)
      && cJSON_AddItemToObject (m, "cpuStatsSet", stat_set (cpu))
      && cJSON_AddItemToObject (m, "memoryStatsSet",
                                stat_set ((double)st.memory_usage / (1024.0 * 1024.0))))
    return m;
  cJSON_Delete (m);
  return NULL;
}

/* Whether a publish call was accepted; says why not. */
static bool accepted (const agent_http_result *res, const char *action)
{
  if (res->curl_code == 0 && res->status == 200)
    return true;
  blog_warn ("telemetry: %s failed: %s", action, agent_http_why (res));
  return false;
}

static void on_published (const agent_http_result *res, void *userdata)
{
  agent_telemetry *t = userdata;
  if (accepted (res, "PublishMetrics"))
    t->published++;
}

static void on_health_published (const agent_http_result *res, void *userdata)
{
  agent_telemetry *t = userdata;
  if (accepted (res, "PublishHealth"))
    t->health_published++;
}

/* Sends tasks (taken) as one request: PublishMetrics (member taskMetrics) or PublishHealth
 * (member tasks). */
static void publish_as (agent_telemetry *t, bool health, cJSON *tasks)
{
  _cleanup_berr_ berr *err = NULL;
  _cleanup_json_ cJSON *req = cJSON_CreateObject ();
  cJSON *md = req ? cJSON_AddObjectToObject (req, "metadata") : NULL;
  if (req == NULL || !cJSON_AddItemToObject (req, health ? "tasks" : "taskMetrics", tasks))
    {
      cJSON_Delete (tasks);
      return;
    }
  if (md == NULL || !cJSON_AddStringToObject (md, "cluster", t->cluster)
      || !cJSON_AddStringToObject (md, "containerInstance", t->instance_arn)
      || !cJSON_AddFalseToObject (md, "idle") || !cJSON_AddTrueToObject (md, "fin")
      || !cJSON_AddNumberToObject (req, "timestamp", (double)time (NULL)))
    return;
  if (agent_http_call (
          t->o.http, health ? "BerthChannelV1.PublishHealth" : "BerthChannelV1.PublishMetrics", req,
          PUBLISH_TIMEOUT_MS, health ? on_health_published : on_published, t, &err)
      < 0)
    blog_berr (&err);
}

static void publish (agent_telemetry *t, cJSON *tasks)
{
  publish_as (t, false, tasks);
}

/* The health of every container with a check, TASKS_PER_REQUEST tasks a request. */
static void collect_health (agent_telemetry *t)
{
  cJSON *tasks = NULL;
  if (t->o.gather_health == NULL || t->o.gather_health (t->o.userdata, &tasks) < 0)
    return;
  while (cJSON_GetArraySize (tasks) > 0)
    {
      cJSON *batch = cJSON_CreateArray ();
      for (int i = 0; batch && i < TASKS_PER_REQUEST && cJSON_GetArraySize (tasks) > 0; i++)
        cJSON_AddItemToArray (batch, cJSON_DetachItemFromArray (tasks, 0));
      if (batch == NULL)
        break;
      publish_as (t, true, batch);
    }
  cJSON_Delete (tasks);
}

/* The task entry of arn in tasks, created with the container's task fields. */
static cJSON *task_entry (cJSON *tasks, const agent_container_cgroup *c)
{
  cJSON *e;
  cJSON_ArrayForEach (e, tasks)
  {
    if (strcmp (cJSON_GetStringValue (cJSON_GetObjectItem (e, "taskArn")), c->task_arn) == 0)
      return e;
  }
  if ((e = cJSON_CreateObject ()) == NULL || !cJSON_AddItemToArray (tasks, e)
      || !cJSON_AddStringToObject (e, "taskArn", c->task_arn)
      || !cJSON_AddStringToObject (e, "taskDefinitionFamily", c->family ? c->family : "")
      || !cJSON_AddStringToObject (e, "taskDefinitionVersion", c->version ? c->version : "")
      || !cJSON_AddArrayToObject (e, "containerMetrics"))
    return NULL;
  return e;
}

void agent_telemetry_collect (agent_telemetry *t)
{
  agent_container_cgroup *list = NULL;
  size_t n = 0;
  cJSON *tasks = cJSON_CreateArray ();
  if (tasks == NULL || t->o.gather (t->o.userdata, &list, &n) < 0)
    {
      cJSON_Delete (tasks);
      return;
    }
  for (size_t i = 0; i < n; i++)
    {
      cJSON *m = container_metrics (t, &list[i]), *e;
      if (m == NULL)
        continue;
      if ((e = task_entry (tasks, &list[i])) == NULL
          || !cJSON_AddItemToArray (cJSON_GetObjectItem (e, "containerMetrics"), m))
        cJSON_Delete (m);
      if (cJSON_GetArraySize (tasks) > TASKS_PER_REQUEST)
        {
          /* The eleventh task starts the next request. */
          cJSON *last = cJSON_DetachItemFromArray (tasks, TASKS_PER_REQUEST);
          publish (t, tasks);
          tasks = cJSON_CreateArray ();
          if (tasks == NULL || !cJSON_AddItemToArray (tasks, last))
            cJSON_Delete (last);
        }
    }
  if (tasks && cJSON_GetArraySize (tasks) > 0)
    publish (t, tasks);
  else
    cJSON_Delete (tasks);
  if (t->o.gather_done)
    t->o.gather_done (t->o.userdata, list, n);
  collect_health (t);
}

static int on_timer (sd_event_source *s, uint64_t usec, void *userdata)
{
  agent_telemetry *t = userdata;
  agent_telemetry_collect (t);
  sd_event_source_set_time_relative (s, t->o.interval_us);
  return sd_event_source_set_enabled (s, SD_EVENT_ONESHOT);
}

int agent_telemetry_start (const agent_telemetry_opts *o, const char *cluster,
                           const char *instance_arn, agent_telemetry **out, berr **err)
{
  *out = NULL;
  if (o->interval_us == 0 || o->gather == NULL)
    return 0; /* disabled */
  agent_telemetry *t = calloc (1, sizeof *t);
  if (t == NULL || (t->cluster = strdup (cluster)) == NULL
      || (t->instance_arn = strdup (instance_arn)) == NULL)
    {
      agent_telemetry_free (t);
      return berr_sys (err, "allocate telemetry");
    }
  t->o = *o;
  int r = sd_event_add_time_relative (o->ev, &t->timer, CLOCK_MONOTONIC, o->interval_us, 0,
                                      on_timer, t);
  if (r < 0)
    {
      agent_telemetry_free (t);
      return berr_sysn (err, -r, "telemetry timer");
    }
  *out = t;
  return 0;
}

void agent_telemetry_free (agent_telemetry *t)
{
  if (t == NULL)
    return;
  if (t->o.http)
    agent_http_cancel (t->o.http, t);
  sd_event_source_disable_unref (t->timer);
  for (size_t i = 0; i < t->n_samples; i++)
    free (t->samples[i].path);
  free (t->samples);
  free (t->cluster);
  free (t->instance_arn);
  free (t);
}

uint64_t agent_telemetry_published (const agent_telemetry *t)
{
  return t ? t->published : 0;
}

uint64_t agent_telemetry_health_published (const agent_telemetry *t)
{
  return t ? t->health_published : 0;
}
