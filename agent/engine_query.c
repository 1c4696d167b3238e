/* The engine's side of the local endpoints: its tasks and containers as introspection (v1) and
 * task metadata v4 documents, container stats from the cgroups, and the hooks that open and
 * close each namespace's 169.254.170.2 socket. */
#include "agent/engine_internal.h"
#include "cgroups/cgroups.h"
#include "lib/clock.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *jstr (const cJSON *o, const char *key)
{
  return cJSON_GetStringValue (cJSON_GetObjectItem (o, key));
}

static const char *desired (const eng_task *t)
{
  return t->desired_stopped ? "STOPPED" : "RUNNING";
}

static const char *task_known (const eng_task *t)
{
  return t->known == ES_NONE ? "PENDING" : eng_status_name (t->known);
}

static eng_container *find_id (eng_task *t, const char *id)
{
  for (size_t i = 0; t && id && i < t->n; i++)
    if (strcmp (t->c[i].id, id) == 0)
      return &t->c[i];
  return NULL;
}

/* ---- introspection (v1) ---- */

/* What introspection and task metadata v4 both say of a container. */
static cJSON *container_common (const eng_container *c)
{
  cJSON *o = cJSON_CreateObject ();
  cJSON_AddStringToObject (o, "DockerId", c->id);
  cJSON_AddStringToObject (o, "DockerName", c->id);
  cJSON_AddStringToObject (o, "Name", c->name);
  cJSON_AddStringToObject (o, "Image", c->image ? c->image : "");
  cJSON_AddStringToObject (o, "ImageID", c->digest ? c->digest : "");
  cJSON_AddStringToObject (o, "KnownStatus", eng_status_name (c->known));
  if (c->bindings)
    cJSON_AddItemToObject (o, "Ports", cJSON_Duplicate (c->bindings, true));
  return o;
}

static cJSON *v1_task (const eng_task *t)
{
  cJSON *o = cJSON_CreateObject (), *cs = cJSON_AddArrayToObject (o, "Containers");
  cJSON_AddStringToObject (o, "Arn", t->arn);
  cJSON_AddStringToObject (o, "DesiredStatus", desired (t));
  cJSON_AddStringToObject (o, "KnownStatus", task_known (t));
  cJSON_AddStringToObject (o, "Family", jstr (t->body, "family") ? jstr (t->body, "family") : "");
  cJSON_AddStringToObject (o, "Version",
                           jstr (t->body, "version") ? jstr (t->body, "version") : "");
  for (size_t i = 0; cs && i < t->n; i++)
    {
      const eng_container *c = &t->c[i];
      cJSON_AddItemToArray (cs, container_common (c));
    }
  return o;
}

cJSON *agent_engine_v1_tasks (agent_engine *e, const char *taskarn, const char *dockerid)
{
  if (taskarn || dockerid)
    {
      for (eng_task *t = e->tasks; t; t = t->next)
        if ((taskarn == NULL || strcmp (t->arn, taskarn) == 0)
            && (dockerid == NULL || find_id (t, dockerid)))
          return v1_task (t);
      return NULL;
    }
  cJSON *o = cJSON_CreateObject (), *arr = cJSON_AddArrayToObject (o, "Tasks");
  for (eng_task *t = e->tasks; arr && t; t = t->next)
    cJSON_AddItemToArray (arr, v1_task (t));
  return o;
}

/* ---- task metadata v4 ---- */

static void add_labels (cJSON *o, const eng_container *c, const char *cluster)
{
  cJSON *l = cJSON_AddObjectToObject (o, "Labels");
  const cJSON *b = c->task->body;
  if (cluster)
    cJSON_AddStringToObject (l, "com.amazonaws.ecs.cluster", cluster);
  cJSON_AddStringToObject (l, "com.amazonaws.ecs.container-name", c->name);
  cJSON_AddStringToObject (l, "com.amazonaws.ecs.task-arn", c->task->arn);
  if (jstr (b, "family"))
    cJSON_AddStringToObject (l, "com.amazonaws.ecs.task-definition-family", jstr (b, "family"));
  if (jstr (b, "version"))
    cJSON_AddStringToObject (l, "com.amazonaws.ecs.task-definition-version", jstr (b, "version"));
}

/* The task's network mode and, for awsvpc, the ENI's IPv4 addresses. */
static void add_networks (cJSON *o, const eng_task *t)
{
  const char *mode = jstr (t->body, "networkMode");
  cJSON *nets = cJSON_AddArrayToObject (o, "Networks"), *n = cJSON_CreateObject (), *it;
  cJSON_AddStringToObject (n, "NetworkMode", mode && mode[0] ? mode : "bridge");
  cJSON *ips = cJSON_AddArrayToObject (n, "IPv4Addresses");
  const cJSON *eni
      = cJSON_GetArrayItem (cJSON_GetObjectItem (t->body, "elasticNetworkInterfaces"), 0);
  if (mode && strcmp (mode, "awsvpc") == 0)
    cJSON_ArrayForEach (it, cJSON_GetObjectItem (eni, "ipv4Addresses"))
    {
      if (jstr (it, "privateAddress"))
        cJSON_AddItemToArray (ips, cJSON_CreateString (jstr (it, "privateAddress")));
    }
  cJSON_AddItemToArray (nets, n);
}

static double num (const cJSON *o, const char *key)
{
  const cJSON *v = cJSON_GetObjectItem (o, key);
  if (cJSON_IsString (v))
    return strtod (v->valuestring, NULL);
  return cJSON_IsNumber (v) ? v->valuedouble : 0;
}

static cJSON *v4_container (const eng_container *c, const char *cluster)
{
  cJSON *o = container_common (c);
  add_labels (o, c, cluster);
  cJSON_AddStringToObject (o, "DesiredStatus", desired (c->task));
  cJSON *lim = cJSON_AddObjectToObject (o, "Limits");
  cJSON_AddNumberToObject (lim, "CPU", num (c->def, "cpu"));
  cJSON_AddNumberToObject (lim, "Memory", num (c->def, "memory"));
  if (c->exit_code >= 0)
    cJSON_AddNumberToObject (o, "ExitCode", c->exit_code);
  /* As ECS has it: only for a container whose restartPolicy is enabled. */
  if (cJSON_IsTrue (cJSON_GetObjectItem (cJSON_GetObjectItem (c->def, "restartPolicy"), "enabled")))
    cJSON_AddNumberToObject (o, "RestartCount", c->restarts);
  cJSON_AddStringToObject (o, "Type", "NORMAL");
  add_networks (o, c->task);
  return o;
}

static cJSON *v4_task (const eng_task *t, const char *cluster)
{
  cJSON *o = cJSON_CreateObject ();
  if (cluster)
    cJSON_AddStringToObject (o, "Cluster", cluster);
  cJSON_AddStringToObject (o, "TaskARN", t->arn);
  cJSON_AddStringToObject (o, "Family", jstr (t->body, "family") ? jstr (t->body, "family") : "");
  cJSON_AddStringToObject (o, "Revision",
                           jstr (t->body, "version") ? jstr (t->body, "version") : "");
  cJSON_AddStringToObject (o, "DesiredStatus", desired (t));
  cJSON_AddStringToObject (o, "KnownStatus", task_known (t));
  cJSON *lim = cJSON_AddObjectToObject (o, "Limits");
  if (num (t->body, "cpu") > 0)
    cJSON_AddNumberToObject (lim, "CPU", num (t->body, "cpu") / 1024);
  if (num (t->body, "memory") > 0)
    cJSON_AddNumberToObject (lim, "Memory", num (t->body, "memory"));
  cJSON_AddStringToObject (o, "LaunchType", "EC2");
  cJSON *cs = cJSON_AddArrayToObject (o, "Containers");
  for (size_t i = 0; cs && i < t->n; i++)
    cJSON_AddItemToArray (cs, v4_container (&t->c[i], cluster));
  return o;
}

cJSON *agent_engine_v4 (agent_engine *e, const char *task_arn, const char *id, bool task,
                        const char *cluster)
{
  eng_task *t = eng_find (e, task_arn);
  eng_container *c = find_id (t, id);
  if (c == NULL)
    return NULL;
  return task ? v4_task (t, cluster) : v4_container (c, cluster);
}

/* Docker's stats shape, from the container's cgroup; JSON null when it cannot be read (not
 * running, or its cgroup is gone), so one broken container never fails the others. */
static cJSON *stats_of (const eng_container *c)
{
  char path[512], now[BCLOCK_RFC3339_LEN];
  struct cg_stats st;
  cg_group *g = NULL;
  berr *err = NULL;
  if (eng_cg_container_path (c, path, sizeof path) >= sizeof path)
    return cJSON_CreateNull ();
  if (c->known != ES_RUNNING || cg_open (path, &g, &err) < 0 || cg_get_stats (g, &st, &err) < 0)
    {
      berr_free (&err);
      cg_free (g);
      return cJSON_CreateNull ();
    }
  cg_free (g);
  bclock_rfc3339 (bclock_real_ns (), now);
  cJSON *o = cJSON_CreateObject ();
  cJSON_AddStringToObject (o, "read", now);
  cJSON_AddStringToObject (o, "name", c->id);
  cJSON_AddStringToObject (o, "id", c->id);
  cJSON *cpu = cJSON_AddObjectToObject (o, "cpu_stats");
  cJSON_AddNumberToObject (cJSON_AddObjectToObject (cpu, "cpu_usage"), "total_usage",
                           (double)st.cpu_usage_ns);
  cJSON_AddNumberToObject (cpu, "online_cpus", (double)sysconf (_SC_NPROCESSORS_ONLN));
  cJSON *mem = cJSON_AddObjectToObject (o, "memory_stats");
  cJSON_AddNumberToObject (mem, "usage", (double)st.memory_usage);
  if (st.memory_limit)
    cJSON_AddNumberToObject (mem, "limit", (double)st.memory_limit);
  cJSON_AddNumberToObject (mem, "failcnt", (double)st.oom_kills);
  cJSON_AddNumberToObject (cJSON_AddObjectToObject (o, "pids_stats"), "current",
                           (double)st.pids_current);
  return o;
}

cJSON *agent_engine_v4_stats (agent_engine *e, const char *task_arn, const char *id, bool task)
{
  eng_task *t = eng_find (e, task_arn);
  eng_container *c = find_id (t, id);
  if (c == NULL)
    return NULL;
  if (!task)
    return stats_of (c);
  cJSON *o = cJSON_CreateObject ();
  for (size_t i = 0; o && i < t->n; i++)
    cJSON_AddItemToObject (o, t->c[i].id, stats_of (&t->c[i]));
  return o;
}

const cJSON *agent_engine_task_role_credentials (agent_engine *e, const char *task_arn)
{
  eng_task *t = eng_find (e, task_arn);
  const cJSON *rc = t ? cJSON_GetObjectItem (t->body, "roleCredentials") : NULL;
  return cJSON_IsObject (rc) ? rc : NULL;
}

/* ---- the socket hooks ---- */

/* The endpoint's key: the container's (bridge) or the task's (awsvpc: one namespace). */
static void ep_key (const eng_container *c, char *key, size_t size)
{
  if (eng_is_awsvpc (c->task))
    snprintf (key, size, "%s", c->task->id);
  else
    eng_net_key (c, key, size);
}

void eng_endpoint_open (eng_container *c)
{
  agent_endpoints *ep = c->task->e->o.endpoints;
  _cleanup_berr_ berr *err = NULL;
  char key[160];
  if (ep == NULL || c->netns == NULL)
    return;
  ep_key (c, key, sizeof key);
  bool awsvpc = eng_is_awsvpc (c->task);
  /* a failure costs this container its endpoint, never its start */
  if (agent_endpoints_open (ep, key, c->netns, c->task->arn, awsvpc ? NULL : c->id, &err) < 0)
    blog_berr (&err);
}

void eng_endpoint_close (eng_container *c)
{
  agent_endpoints *ep = c->task->e->o.endpoints;
  char key[160];
  if (ep == NULL)
    return;
  ep_key (c, key, sizeof key);
  agent_endpoints_close (ep, key);
}

/* After the engine reloaded its tasks: the sockets of containers that still have namespaces. */
void eng_endpoints_attach (agent_engine *e)
{
  if (e->o.endpoints == NULL)
    return;
  agent_endpoints_attach (e->o.endpoints, e);
  for (eng_task *t = e->tasks; t; t = t->next)
    for (size_t i = 0; i < t->n; i++)
      if (t->c[i].known >= ES_CREATED && t->c[i].known < ES_STOPPED)
        eng_endpoint_open (&t->c[i]);
}

void eng_endpoints_detach (agent_engine *e)
{
  if (e->o.endpoints)
    agent_endpoints_attach (e->o.endpoints, NULL);
}
