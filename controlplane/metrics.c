/* BerthControlV1.DescribeServiceMetrics: the per-service CPU/memory view of the telemetry agents
 * publish (PublishMetrics, kept in memory by channel.c), per task and container. */
#include "controlplane/model.h"
#include "lib/cleanup.h"
#include "lib/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {taskArn, containers: [...], cpuPercent, memoryMiB, updatedAt} of one task; *reported says
 * whether any container had metrics (else the sums are absent). */
static cJSON *task_metrics (const cp_ctx *ctx, const cp_task *t, double *cpu, double *mem,
                            bool *reported)
{
  const cJSON *ct;
  double latest = 0;
  *cpu = *mem = 0;
  *reported = false;
  cJSON *o = cJSON_CreateObject (), *list;
  if (o == NULL || !cJSON_AddStringToObject (o, "taskArn", t->arn)
      || (list = cJSON_AddArrayToObject (o, "containers")) == NULL)
    goto fail;
  cJSON_ArrayForEach (ct, cJSON_GetObjectItem (t->doc, "containers"))
  {
    double c, m, at;
    const char *name = cp_jstr (ct, "name");
    if (!cp_channel_container_metrics (ctx, t->arn, name, &c, &m, &at))
      continue;
    cJSON *e = cJSON_CreateObject ();
    if (e == NULL || !cJSON_AddItemToArray (list, e) || !cJSON_AddStringToObject (e, "name", name)
        || !cJSON_AddNumberToObject (e, "cpuPercent", c)
        || !cJSON_AddNumberToObject (e, "memoryMiB", m)
        || !cJSON_AddNumberToObject (e, "updatedAt", at))
      {
        cJSON_Delete (e);
        goto fail;
      }
    *cpu += c, *mem += m;
    latest = at > latest ? at : latest;
    *reported = true;
  }
  if (*reported
      && (!cJSON_AddNumberToObject (o, "cpuPercent", *cpu)
          || !cJSON_AddNumberToObject (o, "memoryMiB", *mem)
          || !cJSON_AddNumberToObject (o, "updatedAt", latest)))
    goto fail;
  return o;
fail:
  cJSON_Delete (o);
  return NULL;
}

/* The view of one service: its tasks that have not stopped (group service:<name>). */
static cJSON *service_metrics (const cp_ctx *ctx, const cJSON *doc)
{
  char group[300];
  double cpu = 0, mem = 0;
  int reporting = 0, n = 0;
  snprintf (group, sizeof group, "service:%s", cp_jstr (doc, "serviceName"));
  cJSON *o = cJSON_CreateObject (), *tasks;
  if (o == NULL || !cJSON_AddStringToObject (o, "serviceArn", cp_jstr (doc, "serviceArn"))
      || !cJSON_AddStringToObject (o, "serviceName", cp_jstr (doc, "serviceName"))
      || (tasks = cJSON_AddArrayToObject (o, "tasks")) == NULL)
    goto fail;
  for (size_t i = 0; i < ctx->model->n_task; i++)
    {
      const cp_task *t = ctx->model->task[i];
      double c, m;
      bool reported;
      if (strcmp (t->cluster, cp_jstr (doc, "_cluster")) != 0
          || strcmp (cp_jstr (t->doc, "group"), group) != 0
          || strcmp (cp_jstr (t->doc, "lastStatus"), "STOPPED") == 0)
        continue;
      n++;
      if (!cJSON_AddItemToArray (tasks, task_metrics (ctx, t, &c, &m, &reported)))
        goto fail;
      if (reported)
        cpu += c, mem += m, reporting++;
    }
  if (!cJSON_AddNumberToObject (o, "cpuPercent", cpu)
      || !cJSON_AddNumberToObject (o, "memoryMiB", mem)
      || !cJSON_AddNumberToObject (o, "taskCount", n)
      || !cJSON_AddNumberToObject (o, "reportingTaskCount", reporting))
    goto fail;
  return o;
fail:
  cJSON_Delete (o);
  return NULL;
}

/* Request {cluster, services: [name or ARN, at most 10]}; without services, every service of
 * the cluster that is not INACTIVE. Unknown services come back in failures (MISSING). */
int cp_describe_service_metrics (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256];
  const cJSON *refs = NULL, *r;
  cJSON *doc;
  if (cp_cluster_require (ctx, in, cluster, fault) < 0
      || cp_opt_strlist (in, "services", 10, &refs, fault) < 0)
    return -1;
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  cJSON *list = cJSON_AddArrayToObject (res, "services");
  cJSON *failures = cJSON_AddArrayToObject (res, "failures");
  if (list == NULL || failures == NULL)
    return cp_fail_oom (fault);
  if (refs == NULL)
    cJSON_ArrayForEach (doc, ctx->model->services)
    {
      if (strcmp (cp_jstr (doc, "_cluster"), cluster) == 0
          && strcmp (cp_jstr (doc, "status"), "INACTIVE") != 0
          && !cJSON_AddItemToArray (list, service_metrics (ctx, doc)))
        return cp_fail_oom (fault);
    }
  cJSON_ArrayForEach (r, refs)
  {
    if ((doc = cp_service_find (ctx, cluster, r->valuestring)) == NULL)
      {
        if (cp_add_failure (failures, r->valuestring, "MISSING", fault) < 0)
          return -1;
        continue;
      }
    if (!cJSON_AddItemToArray (list, service_metrics (ctx, doc)))
      return cp_fail_oom (fault);
  }
  *out = steal_ptr (&res);
  return 0;
}
