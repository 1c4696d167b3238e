/* What the engine tells the rest of the daemon about its running containers: the telemetry
 * publisher's list of cgroups (agent_engine_running_containers). */
#include "agent/engine_internal.h"
#include "lib/json.h"

#include <stdlib.h>
#include <string.h>

/* The task definition's family and revision, as the payload's task carries them. */
static void task_def_names (const eng_task *t, const char **family, const char **version)
{
  const cJSON *f = cJSON_GetObjectItem (t->body, "family");
  const cJSON *v = cJSON_GetObjectItem (t->body, "version");
  *family = cJSON_IsString (f) ? f->valuestring : "";
  *version = cJSON_IsString (v) ? v->valuestring : "";
}

int agent_engine_running_containers (agent_engine *e, agent_container_cgroup **out, size_t *n)
{
  size_t count = 0, i = 0;
  for (eng_task *t = e->tasks; t; t = t->next)
    for (size_t k = 0; k < t->n; k++)
      count += t->c[k].known == ES_RUNNING;
  *out = NULL;
  *n = 0;
  if (count == 0)
    return 0;
  /* One allocation: the array, then each container's cgroup path ("<task root>/task/<name>",
   * as engine_spec.c's cgroupsPath). */
  size_t bytes = count * sizeof **out;
  for (eng_task *t = e->tasks; t; t = t->next)
    for (size_t k = 0; k < t->n; k++)
      if (t->c[k].known == ES_RUNNING)
        bytes += eng_cg_container_path (&t->c[k], NULL, 0) + 1;
  agent_container_cgroup *v = calloc (1, bytes);
  if (v == NULL)
    return -1;
  char *p = (char *)(v + count);
  for (eng_task *t = e->tasks; t; t = t->next)
    for (size_t k = 0; k < t->n; k++)
      if (t->c[k].known == ES_RUNNING)
        {
          agent_container_cgroup *c = &v[i++];
          c->task_arn = t->arn;
          c->container = t->c[k].name;
          task_def_names (t, &c->family, &c->version);
          c->cgroup_path = p;
          p += eng_cg_container_path (&t->c[k], p, (size_t)((char *)v + bytes - p)) + 1;
        }
  *out = v;
  *n = count;
  return 0;
}
