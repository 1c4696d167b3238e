/* The Tasks API: RunTask and StartTask (placement through sched.h on the in-memory model, awsvpc
 * addresses), StopTask, DescribeTasks, ListTasks, and the task state transitions agents report. */
#include "controlplane/model.h"
#include "controlplane/sched.h"
#include "lib/cleanup.h"
#include "lib/json.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_COUNT 10
#define MAX_SUBNETS 16

/* A task's timestamps in epoch seconds with milliseconds, as ECS gives them: whole seconds would
 * hide how long a task takes to start (bench/README.md, figure 11). */
static double epoch_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
}

/* Everything RunTask and StartTask share, parsed and checked. */
typedef struct run_args
{
  char cluster[256];
  cp_taskdef td;
  cJSON *body; /* the task definition */
  char *td_arn;
  const char *launch_type, *group, *started_by, *reference_id;
  const cJSON *strategy, *constraints, *overrides;
  char *tags;
  bool awsvpc;
  cp_subnet *subnets[MAX_SUBNETS];
  int n_subnets;
  char default_group[300];
  cp_sched_task need;
  cp_u16v tcp, udp;
} run_args;

static void run_args_clear (run_args *a)
{
  cp_taskdef_clear (&a->td);
  cJSON_Delete (a->body);
  free (a->td_arn);
  free (a->tags);
  free (a->tcp.v);
  free (a->udp.v);
}
#define _cleanup_run_args_ __attribute__ ((cleanup (run_args_clear)))

static const cJSON *container_override (const run_args *a, const char *name)
{
  const cJSON *o;
  cJSON_ArrayForEach (o, cJSON_GetObjectItemCaseSensitive (a->overrides, "containerOverrides"))
  {
    if (strcmp (cp_jstr (o, "name"), name) == 0)
      return o;
  }
  return NULL;
}

/* An integer member of the override if given, else of the container definition. */
static int64_t ct_int (const cJSON *ct, const cJSON *ov, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (ov, key);
  if (!cJSON_IsNumber (v))
    v = cJSON_GetObjectItemCaseSensitive (ct, key);
  return cJSON_IsNumber (v) ? (int64_t)v->valuedouble : 0;
}

/* containerOverrides: each names a container of the definition; types as the model says. */
static int check_overrides (const run_args *a, cp_fault *fault)
{
  const cJSON *list = NULL, *o, *e;
  const char *s = NULL;
  if (cp_opt_arr (a->overrides, "containerOverrides", &list, fault) < 0
      || cp_opt_str (a->overrides, "taskRoleArn", &s, fault) < 0
      || cp_opt_str (a->overrides, "executionRoleArn", &s, fault) < 0)
    return -1;
  cJSON_ArrayForEach (o, list)
  {
    const char *name = NULL;
    const cJSON *cmd = NULL, *env = NULL, *ct;
    int64_t v;
    if (!cJSON_IsObject (o))
      return cp_fail (fault, "SerializationException", "Each container override is a structure.");
    if (cp_opt_str (o, "name", &name, fault) < 0
        || cp_opt_strlist (o, "command", 1000, &cmd, fault) < 0
        || cp_opt_arr (o, "environment", &env, fault) < 0
        || cp_opt_int (o, "cpu", 0, 10 * 1024 * 192, &v, fault) < 0
        || cp_opt_int (o, "memory", 6, INT32_MAX, &v, fault) < 0
        || cp_opt_int (o, "memoryReservation", 6, INT32_MAX, &v, fault) < 0)
      return -1;
    cJSON_ArrayForEach (e, env)
    {
      const char *n = NULL, *val = NULL;
      if (!cJSON_IsObject (e) || cp_opt_str (e, "name", &n, fault) < 0
          || cp_opt_str (e, "value", &val, fault) < 0)
        return fault->type ? -1
                           : cp_fail (fault, "SerializationException",
                                      "Each environment entry is a structure.");
    }
    bool found = false;
    cJSON_ArrayForEach (ct, cJSON_GetObjectItemCaseSensitive (a->body, "containerDefinitions"))
    {
      found |= name && strcmp (cp_jstr (ct, "name"), name) == 0;
    }
    if (!found)
      return cp_fail (fault, "InvalidParameterException",
                      "Override for container named %.255s is not a container in the "
                      "TaskDefinition.",
                      name ? name : "(none)");
  }
  return 0;
}

/* What one copy needs: task cpu/memory (override, task level, or the containers' sum) and the
 * static host ports of its port mappings. */
static int compute_need (run_args *a, cp_fault *fault)
{
  const cJSON *ct, *pm;
  const char *mode = cp_jstr (a->body, "networkMode");
  int64_t cpu = 0, mem = 0;
  cJSON_ArrayForEach (ct, cJSON_GetObjectItemCaseSensitive (a->body, "containerDefinitions"))
  {
    const cJSON *ov = container_override (a, cp_jstr (ct, "name"));
    int64_t hard = ct_int (ct, ov, "memory"), soft = ct_int (ct, ov, "memoryReservation");
    cpu += ct_int (ct, ov, "cpu");
    mem += hard ? hard : soft;
    cJSON_ArrayForEach (pm, cJSON_GetObjectItemCaseSensitive (ct, "portMappings"))
    {
      int64_t port = strcmp (mode, "host") == 0 ? ct_int (pm, NULL, "containerPort")
                                                : ct_int (pm, NULL, "hostPort");
      bool udp = strcmp (cp_jstr (pm, "protocol"), "udp") == 0;
      if (a->awsvpc || port <= 0 || port > 65535)
        continue;
      if (cp_u16v_push (udp ? &a->udp : &a->tcp, (uint16_t)port) < 0)
        return cp_fail_oom (fault);
    }
  }
  const char *tcpu = cp_jstr (a->overrides, "cpu"), *tmem = cp_jstr (a->overrides, "memory");
  if (*tcpu == '\0')
    tcpu = cp_jstr (a->body, "cpu");
  if (*tmem == '\0')
    tmem = cp_jstr (a->body, "memory");
  if (*tcpu && (cpu = cp_taskdef_cpu_units (tcpu)) < 0)
    return cp_fail (fault, "InvalidParameterException", "Invalid cpu override '%.32s'.", tcpu);
  if (*tmem && (mem = cp_taskdef_memory_mib (tmem)) < 0)
    return cp_fail (fault, "InvalidParameterException", "Invalid memory override '%.32s'.", tmem);
  a->need = (cp_sched_task){ .cpu = cpu,
                             .memory = mem,
                             .eni = a->awsvpc,
                             .ports_tcp = a->tcp.v,
                             .n_ports_tcp = a->tcp.n,
                             .ports_udp = a->udp.v,
                             .n_ports_udp = a->udp.n,
                             .group = a->group,
                             .strategy = a->strategy,
                             .constraints = a->constraints };
  return 0;
}

/* networkConfiguration.awsvpcConfiguration: required exactly for awsvpc definitions. */
static int parse_network (cp_ctx *ctx, run_args *a, const cJSON *in, cp_fault *fault)
{
  const cJSON *net = NULL, *vpc = NULL, *subnets = NULL, *sgs = NULL, *s;
  const char *public_ip = NULL;
  if (cp_opt_obj (in, "networkConfiguration", &net, fault) < 0
      || cp_opt_obj (net, "awsvpcConfiguration", &vpc, fault) < 0
      || cp_opt_strlist (vpc, "subnets", MAX_SUBNETS, &subnets, fault) < 0
      || cp_opt_strlist (vpc, "securityGroups", 5, &sgs, fault) < 0
      || cp_opt_str (vpc, "assignPublicIp", &public_ip, fault) < 0)
    return -1;
  a->awsvpc = strcmp (cp_jstr (a->body, "networkMode"), "awsvpc") == 0;
  if (a->awsvpc && vpc == NULL)
    return cp_fail (fault, "InvalidParameterException",
                    "Network Configuration must be provided when networkMode 'awsvpc' is "
                    "specified.");
  if (!a->awsvpc && vpc)
    return cp_fail (fault, "InvalidParameterException",
                    "Network Configuration is not valid for the given networkMode of this task "
                    "definition.");
  if (public_ip && strcmp (public_ip, "ENABLED") != 0 && strcmp (public_ip, "DISABLED") != 0)
    return cp_fail (fault, "InvalidParameterException",
                    "assignPublicIp must be ENABLED or DISABLED.");
  if (a->awsvpc && cJSON_GetArraySize (subnets) == 0)
    return cp_fail (fault, "InvalidParameterException", "subnets can not be empty.");
  cJSON_ArrayForEach (s, subnets)
  {
    cp_subnet *sub = cp_subnet_find (ctx->model, s->valuestring);
    if (sub == NULL)
      return cp_fail (fault, "InvalidParameterException",
                      "Error retrieving subnet information for [%.64s]: the subnet ID does not "
                      "exist.",
                      s->valuestring);
    a->subnets[a->n_subnets++] = sub;
  }
  return 0;
}

static int parse_strings (const cJSON *in, run_args *a, cp_fault *fault)
{
  a->launch_type = "EC2";
  if (cp_opt_str (in, "launchType", &a->launch_type, fault) < 0
      || cp_opt_str (in, "group", &a->group, fault) < 0
      || cp_opt_str (in, "startedBy", &a->started_by, fault) < 0
      || cp_opt_str (in, "referenceId", &a->reference_id, fault) < 0
      || cp_opt_obj (in, "overrides", &a->overrides, fault) < 0
      || cp_opt_arr (in, "placementStrategy", &a->strategy, fault) < 0
      || cp_opt_arr (in, "placementConstraints", &a->constraints, fault) < 0)
    return -1;
  if (strcmp (a->launch_type, "EC2") != 0 && strcmp (a->launch_type, "EXTERNAL") != 0)
    return cp_fail (fault, "InvalidParameterException",
                    "launchType must be EC2 or EXTERNAL here (got '%.32s').", a->launch_type);
  if (a->group && (strlen (a->group) < 1 || strlen (a->group) > 255))
    return cp_fail (fault, "InvalidParameterException", "group has 1 to 255 characters.");
  if (a->started_by && strlen (a->started_by) > 128)
    return cp_fail (fault, "InvalidParameterException", "startedBy has at most 128 characters.");
  if (a->reference_id && strlen (a->reference_id) > 64)
    return cp_fail (fault, "InvalidParameterException", "referenceId has at most 64 characters.");
  if (cJSON_GetArraySize (a->strategy) > 5 || cJSON_GetArraySize (a->constraints) > 10)
    return cp_fail (fault, "InvalidParameterException",
                    "At most 5 placement strategies and 10 constraints.");
  return 0;
}

static int parse_run_args (cp_ctx *ctx, const cJSON *in, run_args *a, cp_fault *fault)
{
  const char *ref = NULL;
  if (cp_cluster_require (ctx, in, a->cluster, fault) < 0
      || cp_opt_str (in, "taskDefinition", &ref, fault) < 0 || parse_strings (in, a, fault) < 0
      || cp_tags_parse (cJSON_GetObjectItemCaseSensitive (in, "tags"), &a->tags, fault) < 0)
    return -1;
  if (ref == NULL)
    return cp_fail (fault, "InvalidParameterException", "taskDefinition is required.");
  int found = cp_taskdef_resolve (ctx, ref, &a->td, fault);
  if (found < 0)
    return -1;
  if (found == 0)
    return cp_fail (fault, "ClientException", "TaskDefinition not found.");
  if (strcmp (a->td.status, "ACTIVE") != 0)
    return cp_fail (fault, "ClientException", "TaskDefinition is inactive");
  if ((a->body = cJSON_Parse (a->td.body_json)) == NULL
      || (a->td_arn = cp_taskdef_arn (ctx, a->td.family, a->td.revision)) == NULL)
    return cp_fail_oom (fault);
  snprintf (a->default_group, sizeof a->default_group, "family:%s", a->td.family);
  if (a->group == NULL)
    a->group = a->default_group;
  _cleanup_json_ cJSON *roles = NULL; /* checked here, issued per copy by new_task */
  if (check_overrides (a, fault) < 0 || parse_network (ctx, a, in, fault) < 0
      || cp_sched_validate (a->strategy, a->constraints, fault) < 0
      || cp_roles_for_task (ctx, a->body, a->overrides, &roles, fault) < 0)
    return -1;
  return compute_need (a, fault);
}

/* ---- building a task ---- */

static void uuid_of (const char *id, char out[37])
{
  snprintf (out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", id, id + 8, id + 12, id + 16, id + 20);
}

static cJSON *container_json (cp_ctx *ctx, const cp_task *t, const run_args *a, const cJSON *ct)
{
  char uid[CP_ID_LEN + 1], uuid[37], num[32];
  _cleanup_free_ char *arn = NULL;
  cJSON *c = cJSON_CreateObject ();
  const cJSON *ov = container_override (a, cp_jstr (ct, "name"));
  if (c == NULL || cp_random_id (uid) < 0)
    goto fail;
  uuid_of (uid, uuid);
  if (asprintf (&arn, "arn:aws:ecs:%s:%s:container/%s/%s/%s", ctx->region, ctx->account_id,
                t->cluster, t->id, uuid)
      < 0)
    {
      arn = NULL;
      goto fail;
    }
  snprintf (num, sizeof num, "%" PRId64, ct_int (ct, ov, "cpu"));
  if (!cJSON_AddStringToObject (c, "containerArn", arn)
      || !cJSON_AddStringToObject (c, "taskArn", t->arn)
      || !cJSON_AddStringToObject (c, "name", cp_jstr (ct, "name"))
      || !cJSON_AddStringToObject (c, "image", cp_jstr (ct, "image"))
      || !cJSON_AddStringToObject (c, "lastStatus", "PENDING")
      || !cJSON_AddArrayToObject (c, "networkBindings")
      || !cJSON_AddArrayToObject (c, "networkInterfaces")
      || !cJSON_AddStringToObject (c, "cpu", num))
    goto fail;
  const char *mems[] = { "memory", "memoryReservation" };
  for (size_t i = 0; i < 2; i++)
    if (ct_int (ct, ov, mems[i]))
      {
        snprintf (num, sizeof num, "%" PRId64, ct_int (ct, ov, mems[i]));
        if (!cJSON_AddStringToObject (c, mems[i], num))
          goto fail;
      }
  return c;
fail:
  cJSON_Delete (c);
  return NULL;
}

static bool add_detail (cJSON *details, const char *name, const char *value)
{
  cJSON *d = cJSON_CreateObject ();
  if (d == NULL || !cJSON_AddItemToArray (details, d))
    {
      cJSON_Delete (d);
      return false;
    }
  return cJSON_AddStringToObject (d, "name", name) && cJSON_AddStringToObject (d, "value", value);
}

/* The awsvpc ENI attachment: subnet, an address from it, a locally administered MAC. */
static int add_eni (cp_task *t, cp_subnet *s, cp_fault *fault)
{
  char ip[INET_ADDRSTRLEN], mac[18], eni[32], uuid[37];
  struct in_addr addr;
  if (cp_subnet_alloc (s, &t->hold.ip) < 0)
    return 1;
  if ((t->hold.subnet_id = strdup (s->id)) == NULL)
    return cp_fail_oom (fault);
  addr.s_addr = htonl (t->hold.ip);
  inet_ntop (AF_INET, &addr, ip, sizeof ip);
  /* 02: locally administered, unicast; the rest from the task id, unique per task. */
  snprintf (mac, sizeof mac, "02:%.2s:%.2s:%.2s:%.2s:%.2s", t->id, t->id + 2, t->id + 4, t->id + 6,
            t->id + 8);
  snprintf (eni, sizeof eni, "eni-%.17s", t->id + 10);
  uuid_of (t->id, uuid);
  cJSON *att = cJSON_CreateObject (), *details;
  if (att == NULL || !cJSON_AddItemToArray (cJSON_GetObjectItem (t->doc, "attachments"), att)
      || !cJSON_AddStringToObject (att, "id", uuid)
      || !cJSON_AddStringToObject (att, "type", "ElasticNetworkInterface")
      || !cJSON_AddStringToObject (att, "status", "PRECREATED")
      || (details = cJSON_AddArrayToObject (att, "details")) == NULL
      || !add_detail (details, "subnetId", s->id)
      || !add_detail (details, "networkInterfaceId", eni)
      || !add_detail (details, "macAddress", mac) || !add_detail (details, "privateIPv4Address", ip)
      || !add_detail (details, "subnetCidr", s->cidr)
      || !add_detail (details, "gateway", s->gateway))
    return cp_fail_oom (fault);
  const cJSON *c;
  cJSON_ArrayForEach (c, cJSON_GetObjectItem (t->doc, "containers"))
  {
    cJSON *ni = cJSON_CreateObject ();
    if (ni == NULL || !cJSON_AddItemToArray (cJSON_GetObjectItem (c, "networkInterfaces"), ni)
        || !cJSON_AddStringToObject (ni, "attachmentId", uuid)
        || !cJSON_AddStringToObject (ni, "privateIpv4Address", ip))
      return cp_fail_oom (fault);
  }
  return 0;
}

static bool add_opt_str (cJSON *o, const char *key, const char *value)
{
  return value == NULL || cJSON_AddStringToObject (o, key, value);
}

/* What one copy takes from its instance (group and awsvpc address are set apart). */
static int fill_hold (cp_hold *h, const run_args *a)
{
  h->cpu = a->need.cpu;
  h->memory = a->need.memory;
  h->eni = a->awsvpc;
  for (size_t i = 0; i < a->tcp.n; i++)
    if (cp_u16v_push (&h->tcp, a->tcp.v[i]) < 0)
      return -1;
  for (size_t i = 0; i < a->udp.n; i++)
    if (cp_u16v_push (&h->udp, a->udp.v[i]) < 0)
      return -1;
  return 0;
}

/* The Task document of a new copy on instance ci. */
static cp_task *new_task (cp_ctx *ctx, const run_args *a, const cp_instance *ci)
{
  cp_task *t = calloc (1, sizeof *t);
  _cleanup_free_ char *cluster_arn = cp_cluster_arn (ctx, a->cluster);
  char num[32];
  if (t == NULL || cluster_arn == NULL || cp_random_id (t->id) < 0
      || asprintf (&t->arn, "arn:aws:ecs:%s:%s:task/%s/%s", ctx->region, ctx->account_id,
                   a->cluster, t->id)
             < 0)
    {
      free (t);
      return NULL;
    }
  strcpy (t->instance_id, ci->id);
  cJSON *d = t->doc = cJSON_CreateObject (), *containers, *ct;
  if ((t->cluster = strdup (a->cluster)) == NULL || d == NULL
      || (t->hold.group = strdup (a->group)) == NULL
      || !cJSON_AddStringToObject (d, "taskArn", t->arn)
      || !cJSON_AddStringToObject (d, "clusterArn", cluster_arn)
      || !cJSON_AddStringToObject (d, "taskDefinitionArn", a->td_arn)
      || !cJSON_AddStringToObject (d, "containerInstanceArn", ci->arn)
      || !cJSON_AddStringToObject (d, "lastStatus", "PENDING")
      || !cJSON_AddStringToObject (d, "desiredStatus", "RUNNING")
      || !cJSON_AddNumberToObject (d, "createdAt", epoch_s ())
      || !cJSON_AddStringToObject (d, "launchType", a->launch_type)
      || !cJSON_AddStringToObject (d, "group", a->group)
      || !add_opt_str (d, "startedBy", a->started_by) || !cJSON_AddNumberToObject (d, "version", 1)
      || !cJSON_AddFalseToObject (d, "enableExecuteCommand")
      || !cJSON_AddArrayToObject (d, "attachments")
      || !cJSON_AddItemToObject (d, "overrides",
                                 a->overrides ? cJSON_Duplicate (a->overrides, true)
                                              : cJSON_CreateObject ())
      || !cJSON_AddItemToObject (d, "tags", cJSON_Parse (a->tags ? a->tags : "[]"))
      || (containers = cJSON_AddArrayToObject (d, "containers")) == NULL)
    goto fail;
  if (!cJSON_GetObjectItem (cJSON_GetObjectItem (d, "overrides"), "containerOverrides")
      && !cJSON_AddArrayToObject (cJSON_GetObjectItem (d, "overrides"), "containerOverrides"))
    goto fail;
  snprintf (num, sizeof num, "%" PRId64, a->need.cpu);
  if (!cJSON_AddStringToObject (d, "cpu", num))
    goto fail;
  snprintf (num, sizeof num, "%" PRId64, a->need.memory);
  if (!cJSON_AddStringToObject (d, "memory", num))
    goto fail;
  cJSON_ArrayForEach (ct, cJSON_GetObjectItemCaseSensitive (a->body, "containerDefinitions"))
  {
    if (!cJSON_AddItemToArray (containers, container_json (ctx, t, a, ct)))
      goto fail;
  }
  /* Role credentials: a fresh credentialsId per copy and role, kept out of the Task shape. */
  cp_fault fault = { 0 };
  cJSON *roles = NULL;
  if (cp_roles_for_task (ctx, a->body, a->overrides, &roles, &fault) < 0
      || (roles && !cJSON_AddItemToObject (d, "_credentials", roles)))
    {
      cJSON_Delete (roles);
      goto fail;
    }
  if (fill_hold (&t->hold, a) < 0)
    goto fail;
  return t;
fail:
  cp_task_free (t);
  return NULL;
}

/* ---- placement ---- */

/* The scheduler's view of the cluster's registered instances. */
static cp_sched_instance *snapshot (cp_model *m, const char *cluster, cp_instance ***map, size_t *n)
{
  cp_sched_instance *v = calloc (m->n_inst + 1, sizeof *v);
  *map = calloc (m->n_inst + 1, sizeof **map);
  *n = 0;
  if (v == NULL || *map == NULL)
    {
      free (v);
      free (*map);
      *map = NULL;
      return NULL;
    }
  for (size_t i = 0; i < m->n_inst; i++)
    {
      cp_instance *ci = m->inst[i];
      if (!ci->registered || strcmp (ci->cluster, cluster) != 0)
        continue;
      (*map)[*n] = ci;
      v[(*n)++] = cp_instance_sched_view (ci);
    }
  return v;
}

/* Undoes the copies created by this call (the store transaction was rolled back). */
static void drop_new (cp_model *m, size_t first)
{
  while (m->n_task > first)
    {
      cp_task *t = m->task[--m->n_task];
      cp_task_release (m, t);
      cp_task_free (t);
    }
}

/* Creates, takes and stores one copy per chosen instance; failures gets the others. */
static int create_tasks (cp_ctx *ctx, run_args *a, cp_instance **chosen, int n, cJSON *tasks,
                         cJSON *failures, cp_fault *fault)
{
  cp_model *m = ctx->model;
  size_t first = m->n_task;
  berr *err = NULL;
  if (cp_store_begin (ctx->store, &err) < 0)
    return cp_fail_server (fault, &err);
  for (int i = 0; i < n; i++)
    {
      cp_task *t = new_task (ctx, a, chosen[i]);
      int r = 0;
      if (t == NULL || cp_model_add_task (m, t) < 0)
        {
          cp_task_free (t);
          r = cp_fail_oom (fault);
        }
      else if (a->awsvpc && (r = add_eni (t, a->subnets[i % a->n_subnets], fault)) == 1)
        {
          /* No address left in the subnet: this copy fails, the others go on. */
          m->n_task--;
          cp_task_free (t);
          if (cp_add_failure (failures, chosen[i]->arn, "RESOURCE:IP", fault) < 0)
            r = -1;
          else
            continue;
        }
      if (r < 0 || cp_task_take (m, t) < 0 || cp_task_save (ctx, t, fault) < 0)
        {
          cp_store_rollback (ctx->store);
          drop_new (m, first);
          return fault->type ? -1 : cp_fail_oom (fault);
        }
    }
  if (cp_store_commit (ctx->store, &err) < 0)
    {
      cp_store_rollback (ctx->store);
      drop_new (m, first);
      return cp_fail_server (fault, &err);
    }
  for (size_t i = first; i < m->n_task; i++)
    cp_channel_task_changed (ctx, m->task[i]);
  for (size_t i = first; i < m->n_task; i++)
    if (!cJSON_AddItemToArray (tasks, cp_task_json (m->task[i], true)))
      return cp_fail_oom (fault);
  return 0;
}

static int place_and_create (cp_ctx *ctx, run_args *a, cp_sched_instance *snap, cp_instance **map,
                             size_t n, int count, cJSON *res, cp_fault *fault)
{
  int choices[MAX_COUNT];
  cp_sched_failure why[MAX_COUNT];
  cp_instance *chosen[MAX_COUNT];
  int k = 0;
  cJSON *tasks = cJSON_AddArrayToObject (res, "tasks");
  cJSON *failures = cJSON_AddArrayToObject (res, "failures");
  if (tasks == NULL || failures == NULL)
    return cp_fail_oom (fault);
  a->need.seed = (uint64_t)time (NULL) ^ (uint64_t)ctx->model->n_task;
  if (cp_sched_place (snap, n, &a->need, count, choices, why, fault) < 0)
    return -1;
  for (int c = 0; c < count; c++)
    {
      if (choices[c] >= 0 && (size_t)choices[c] < n)
        chosen[k++] = map[choices[c]];
      else if (cp_add_failure (failures, why[c].arn, why[c].reason, fault) < 0)
        return -1;
    }
  return create_tasks (ctx, a, chosen, k, tasks, failures, fault);
}

int cp_run_task (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  _cleanup_run_args_ run_args a = { 0 };
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  _cleanup_free_ cp_sched_instance *snap = NULL;
  _cleanup_free_ cp_instance **map = NULL;
  int64_t count = 1;
  size_t n;
  if (res == NULL)
    return cp_fail_oom (fault);
  if (cp_opt_int (in, "count", 1, MAX_COUNT, &count, fault) < 0
      || parse_run_args (ctx, in, &a, fault) < 0)
    return -1;
  if ((snap = snapshot (ctx->model, a.cluster, &map, &n)) == NULL)
    return cp_fail_oom (fault);
  if (place_and_create (ctx, &a, snap, map, n, (int)count, res, fault) < 0)
    return -1;
  *out = steal_ptr (&res);
  return 0;
}

/* The instances StartTask names: registered ones of the cluster, each once. */
static int named_instances (cp_ctx *ctx, const char *cluster, const cJSON *refs, cp_instance **map,
                            size_t *n, cp_fault *fault)
{
  const cJSON *r;
  *n = 0;
  if (cJSON_GetArraySize (refs) == 0)
    return cp_fail (fault, "InvalidParameterException", "containerInstances is required.");
  cJSON_ArrayForEach (r, refs)
  {
    cp_instance *ci = cp_instance_find (ctx, cluster, r->valuestring);
    if (ci == NULL || !ci->registered)
      return cp_fail (fault, "InvalidParameterException",
                      "The referenced container instance %.200s was not found.", r->valuestring);
    for (size_t k = 0; k < *n; k++)
      if (map[k] == ci)
        return cp_fail (fault, "InvalidParameterException",
                        "containerInstances names %.200s twice.", r->valuestring);
    map[(*n)++] = ci;
  }
  return 0;
}

/* One copy on each named instance, checked for resources like RunTask's: each instance on its
 * own, with no strategy or constraint, since StartTask names the place. */
int cp_start_task (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  _cleanup_run_args_ run_args a = { 0 };
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  const cJSON *refs = NULL;
  cp_instance *map[MAX_COUNT], *chosen[MAX_COUNT];
  size_t n;
  int k = 0;
  cJSON *tasks = cJSON_AddArrayToObject (res, "tasks");
  cJSON *failures = cJSON_AddArrayToObject (res, "failures");
  if (tasks == NULL || failures == NULL)
    return cp_fail_oom (fault);
  if (cp_opt_strlist (in, "containerInstances", MAX_COUNT, &refs, fault) < 0
      || parse_run_args (ctx, in, &a, fault) < 0
      || named_instances (ctx, a.cluster, refs, map, &n, fault) < 0)
    return -1;
  a.need.strategy = a.need.constraints = NULL;
  for (size_t i = 0; i < n; i++)
    {
      int choice;
      cp_sched_failure why;
      cp_sched_instance view = cp_instance_sched_view (map[i]);
      if (cp_sched_place (&view, 1, &a.need, 1, &choice, &why, fault) < 0)
        return -1;
      if (choice == 0)
        chosen[k++] = map[i];
      else if (cp_add_failure (failures, map[i]->arn, why.reason, fault) < 0)
        return -1;
    }
  if (create_tasks (ctx, &a, chosen, k, tasks, failures, fault) < 0)
    return -1;
  *out = steal_ptr (&res);
  return 0;
}

/* ---- state ---- */

static bool bump_version (cp_task *t)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (t->doc, "version");
  return cp_jset_num (t->doc, "version", (cJSON_IsNumber (v) ? v->valuedouble : 0) + 1);
}

/* Sets lastStatus; RUNNING records startedAt, STOPPED stoppedAt and gives the resources back.
 * A STOPPED task stays STOPPED. */
int cp_task_set_status (cp_ctx *ctx, cp_task *t, const char *status, cp_fault *fault)
{
  char old[32];
  double now = epoch_s ();
  snprintf (old, sizeof old, "%s", cp_jstr (t->doc, "lastStatus"));
  if (strcmp (old, "STOPPED") == 0 || strcmp (old, status) == 0)
    return 0;
  if (!cp_jset_str (t->doc, "lastStatus", status) || !bump_version (t))
    return cp_fail_oom (fault);
  if (strcmp (status, "RUNNING") == 0 && !cJSON_GetObjectItem (t->doc, "startedAt")
      && !cp_jset_num (t->doc, "startedAt", now))
    return cp_fail_oom (fault);
  if (strcmp (status, "STOPPED") == 0)
    {
      /* Counted under the status it held with, then released. */
      cp_jset_str (t->doc, "lastStatus", old);
      cp_task_release (ctx->model, t);
      if (!cp_jset_str (t->doc, "lastStatus", "STOPPED")
          || !cp_jset_str (t->doc, "desiredStatus", "STOPPED")
          || !cp_jset_num (t->doc, "stoppedAt", now)
          || (!cJSON_GetObjectItem (t->doc, "executionStoppedAt")
              && !cp_jset_num (t->doc, "executionStoppedAt", now)))
        return cp_fail_oom (fault);
      return 0;
    }
  cp_task_count_status (ctx->model, t, old);
  return 0;
}

int cp_task_stop_now (cp_ctx *ctx, cp_task *t, const char *reason, cp_fault *fault)
{
  cJSON *c;
  if (!cJSON_GetObjectItem (t->doc, "stoppedReason")
      && (!cp_jset_str (t->doc, "stoppedReason", reason)
          || !cp_jset_str (t->doc, "stopCode", "TaskFailedToStart")))
    return cp_fail_oom (fault);
  cJSON_ArrayForEach (c, cJSON_GetObjectItem (t->doc, "containers"))
  {
    if (!cp_jset_str (c, "lastStatus", "STOPPED"))
      return cp_fail_oom (fault);
  }
  if (cp_task_set_status (ctx, t, "STOPPED", fault) < 0)
    return -1;
  return cp_task_save (ctx, t, fault);
}

static int require_task (cp_ctx *ctx, const cJSON *in, char cluster[256], cp_task **t,
                         cp_fault *fault)
{
  const char *ref = NULL;
  if (cp_cluster_require (ctx, in, cluster, fault) < 0 || cp_opt_str (in, "task", &ref, fault) < 0)
    return -1;
  if (ref == NULL)
    return cp_fail (fault, "InvalidParameterException", "task is required.");
  if ((*t = cp_task_find (ctx, cluster, ref)) == NULL)
    return cp_fail (fault, "InvalidParameterException", "The referenced task was not found.");
  return 0;
}

int cp_require_task (cp_ctx *ctx, const cJSON *in, char cluster[256], cp_task **t, cp_fault *fault)
{
  return require_task (ctx, in, cluster, t, fault);
}

/* Asks the task to stop: its agent stops the containers and reports STOPPED. */
int cp_stop_task (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256];
  cp_task *t;
  const char *reason = "Task stopped by user";
  if (require_task (ctx, in, cluster, &t, fault) < 0
      || cp_opt_str (in, "reason", &reason, fault) < 0)
    return -1;
  if (strlen (reason) > 255)
    return cp_fail (fault, "InvalidParameterException", "reason has at most 255 characters.");
  if (strcmp (cp_jstr (t->doc, "desiredStatus"), "STOPPED") != 0)
    {
      if (!cp_jset_str (t->doc, "desiredStatus", "STOPPED")
          || !cp_jset_str (t->doc, "stoppedReason", reason)
          || !cp_jset_str (t->doc, "stopCode", "UserInitiated")
          || !cp_jset_num (t->doc, "stoppingAt", epoch_s ()) || !bump_version (t))
        return cp_fail_oom (fault);
      if (cp_task_save (ctx, t, fault) < 0)
        return -1;
      cp_channel_task_changed (ctx, t);
    }
  cJSON *j = cp_task_json (t, false);
  if (j == NULL || (*out = cJSON_CreateObject ()) == NULL)
    {
      cJSON_Delete (j);
      return cp_fail_oom (fault);
    }
  cJSON_AddItemToObject (*out, "task", j);
  return 0;
}

int cp_describe_tasks (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256];
  const cJSON *refs = NULL, *inc = NULL, *r;
  bool tags = false;
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  cJSON *list = cJSON_AddArrayToObject (res, "tasks");
  cJSON *failures = cJSON_AddArrayToObject (res, "failures");
  if (list == NULL || failures == NULL)
    return cp_fail_oom (fault);
  if (cp_cluster_require (ctx, in, cluster, fault) < 0
      || cp_opt_strlist (in, "tasks", 100, &refs, fault) < 0
      || cp_opt_strlist (in, "include", 1, &inc, fault) < 0)
    return -1;
  cJSON_ArrayForEach (r, inc)
  {
    if (strcmp (r->valuestring, "TAGS") != 0)
      return cp_fail (fault, "InvalidParameterException", "Unknown include value '%.64s'.",
                      r->valuestring);
    tags = true;
  }
  if (cJSON_GetArraySize (refs) == 0)
    return cp_fail (fault, "InvalidParameterException", "Tasks cannot be empty.");
  cJSON_ArrayForEach (r, refs)
  {
    cp_task *t = cp_task_find (ctx, cluster, r->valuestring);
    if (t == NULL)
      {
        _cleanup_free_ char *arn = NULL;
        if (strncmp (r->valuestring, "arn:", 4) == 0)
          arn = strdup (r->valuestring);
        else if (asprintf (&arn, "arn:aws:ecs:%s:%s:task/%s/%s", ctx->region, ctx->account_id,
                           cluster, r->valuestring)
                 < 0)
          arn = NULL;
        if (arn == NULL || cp_add_failure (failures, arn, "MISSING", fault) < 0)
          return cp_fail_oom (fault);
        continue;
      }
    if (!cJSON_AddItemToArray (list, cp_task_json (t, tags)))
      return cp_fail_oom (fault);
  }
  *out = steal_ptr (&res);
  return 0;
}

/* The family of a task definition ARN (…:task-definition/FAMILY:REV). */
static bool family_is (const cp_task *t, const char *family)
{
  const char *arn = cp_jstr (t->doc, "taskDefinitionArn");
  const char *slash = strrchr (arn, '/'), *colon = strrchr (arn, ':');
  size_t n = strlen (family);
  return slash && colon > slash && (size_t)(colon - slash - 1) == n
         && strncmp (slash + 1, family, n) == 0;
}

typedef struct list_filter
{
  const cp_instance *ci;
  const char *family, *service, *started_by, *desired, *launch_type;
} list_filter;

static bool task_matches (const list_filter *f, const cp_task *t)
{
  char group[300];
  if (f->ci && strcmp (t->instance_id, f->ci->id) != 0)
    return false;
  if (f->family && !family_is (t, f->family))
    return false;
  if (f->service)
    {
      snprintf (group, sizeof group, "service:%s", f->service);
      if (strcmp (cp_jstr (t->doc, "group"), group) != 0)
        return false;
    }
  if (f->started_by && strcmp (cp_jstr (t->doc, "startedBy"), f->started_by) != 0)
    return false;
  if (f->launch_type && strcmp (cp_jstr (t->doc, "launchType"), f->launch_type) != 0)
    return false;
  /* desiredStatus RUNNING (the default) also lists PENDING ones, as ECS does. */
  const char *ds = cp_jstr (t->doc, "desiredStatus");
  if (strcmp (f->desired, "STOPPED") == 0)
    return strcmp (ds, "STOPPED") == 0;
  if (strcmp (f->desired, "PENDING") == 0)
    return strcmp (ds, "RUNNING") == 0 && strcmp (cp_jstr (t->doc, "lastStatus"), "PENDING") == 0;
  return strcmp (ds, "RUNNING") == 0;
}

static int parse_list_filter (cp_ctx *ctx, const cJSON *in, const char *cluster, list_filter *f,
                              cp_fault *fault)
{
  const char *ci = NULL;
  f->desired = "RUNNING";
  if (cp_opt_str (in, "containerInstance", &ci, fault) < 0
      || cp_opt_str (in, "family", &f->family, fault) < 0
      || cp_opt_str (in, "serviceName", &f->service, fault) < 0
      || cp_opt_str (in, "startedBy", &f->started_by, fault) < 0
      || cp_opt_str (in, "desiredStatus", &f->desired, fault) < 0
      || cp_opt_str (in, "launchType", &f->launch_type, fault) < 0)
    return -1;
  if (strcmp (f->desired, "RUNNING") != 0 && strcmp (f->desired, "PENDING") != 0
      && strcmp (f->desired, "STOPPED") != 0)
    return cp_fail (fault, "InvalidParameterException",
                    "desiredStatus must be RUNNING, PENDING or STOPPED.");
  if (ci && (f->ci = cp_instance_find (ctx, cluster, ci)) == NULL)
    return cp_fail (fault, "InvalidParameterException",
                    "The referenced container instance was not found.");
  return 0;
}

int cp_list_tasks (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256], after[64];
  int64_t limit;
  list_filter f = { 0 };
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  cJSON *arns = cJSON_AddArrayToObject (res, "taskArns");
  if (arns == NULL)
    return cp_fail_oom (fault);
  if (cp_cluster_require (ctx, in, cluster, fault) < 0
      || parse_list_filter (ctx, in, cluster, &f, fault) < 0
      || cp_page_args (in, &limit, after, sizeof after, fault) < 0)
    return -1;
  cp_model *m = ctx->model;
  size_t i = 0, n = 0, last = 0;
  if (*after)
    {
      ssize_t pos = cp_task_pos (m, after);
      if (pos < 0)
        return cp_fail (fault, "InvalidParameterException", "Invalid nextToken.");
      i = (size_t)pos + 1;
    }
  for (; i < m->n_task; i++)
    {
      if (strcmp (m->task[i]->cluster, cluster) != 0 || !task_matches (&f, m->task[i]))
        continue;
      if ((int64_t)n == limit)
        {
          if (cp_token_add (res, m->task[last]->id, fault) < 0)
            return -1;
          break;
        }
      if (!cJSON_AddItemToArray (arns, cJSON_CreateString (m->task[i]->arn)))
        return cp_fail_oom (fault);
      n++, last = i;
    }
  *out = steal_ptr (&res);
  return 0;
}
