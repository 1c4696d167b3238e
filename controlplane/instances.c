/* The Container instances API: Register/Deregister/Describe/List and UpdateContainerInstancesState,
 * on the in-memory model (model.h), each instance bound to the access key that registered it. */
#include "controlplane/cql.h"
#include "controlplane/model.h"
#include "lib/cleanup.h"
#include "lib/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#define MAX_ATTRIBUTES 100

static bool valid_attr_name (const char *s)
{
  size_t n = strlen (s);
  return n >= 1 && n <= 128
         && strspn (s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./@") == n;
}

/* Attribute lists: [{name, value?}], names 1-128 of letters, digits, -_./@, values <= 128. */
int cp_attributes_check (const cJSON *attrs, bool targets, cp_fault *fault)
{
  const cJSON *a;
  if (cJSON_GetArraySize (attrs) > MAX_ATTRIBUTES)
    return cp_fail (fault, "AttributeLimitExceededException", "At most %d attributes can be given.",
                    MAX_ATTRIBUTES);
  cJSON_ArrayForEach (a, attrs)
  {
    const char *name = NULL, *value = NULL, *tt = NULL, *tid = NULL;
    if (!cJSON_IsObject (a))
      return cp_fail (fault, "SerializationException", "Each attribute must be a structure.");
    if (cp_opt_str (a, "name", &name, fault) < 0 || cp_opt_str (a, "value", &value, fault) < 0
        || cp_opt_str (a, "targetType", &tt, fault) < 0
        || cp_opt_str (a, "targetId", &tid, fault) < 0)
      return -1;
    if (name == NULL || !valid_attr_name (name))
      return cp_fail (fault, "InvalidParameterException",
                      "Attribute names have 1 to 128 letters, digits, hyphens, underscores, "
                      "periods, at signs and slashes.");
    if (value && (strlen (value) > 128 || strpbrk (value, "\t\n\r")))
      return cp_fail (fault, "InvalidParameterException",
                      "Attribute values have at most 128 characters.");
    if (tt && strcmp (tt, "container-instance") != 0)
      return cp_fail (fault, "InvalidParameterException", "targetType must be container-instance.");
    if (targets && tid == NULL)
      return cp_fail (fault, "InvalidParameterException", "targetId is required.");
  }
  return 0;
}

int cp_instance_set_attribute (cp_instance *ci, const char *name, const char *value)
{
  cJSON *attrs = cJSON_GetObjectItemCaseSensitive (ci->doc, "attributes"), *a;
  if (!cJSON_IsArray (attrs) && !cp_jset (ci->doc, "attributes", attrs = cJSON_CreateArray ()))
    return -1;
  cJSON_ArrayForEach (a, attrs)
  {
    if (strcmp (cp_jstr (a, "name"), name) == 0)
      {
        cJSON_DeleteItemFromObjectCaseSensitive (a, "value");
        return value == NULL || cJSON_AddStringToObject (a, "value", value) ? 0 : -1;
      }
  }
  cJSON *o = cJSON_CreateObject ();
  if (o == NULL || !cJSON_AddItemToArray (attrs, o) || !cJSON_AddStringToObject (o, "name", name)
      || (value && !cJSON_AddStringToObject (o, "value", value)))
    return -1;
  cp_instance_sync (ci);
  return 0;
}

static const char *arch_name (void)
{
  static struct utsname u;
  if (uname (&u) < 0)
    return "x86_64";
  return strcmp (u.machine, "aarch64") == 0 ? "arm64" : u.machine;
}

static bool has_attribute (const cJSON *attrs, const char *name)
{
  const cJSON *a;
  cJSON_ArrayForEach (a, attrs)
  {
    if (strcmp (cp_jstr (a, "name"), name) == 0)
      return true;
  }
  return false;
}

/* The registration's attributes plus the ecs.* ones an agent on this host would report. */
static int set_attributes (cp_instance *ci, const cJSON *given)
{
  const cJSON *a;
  const char *defaults[][2] = { { "ecs.os-type", "linux" },
                                { "ecs.os-family", "LINUX" },
                                { "ecs.cpu-architecture", arch_name () },
                                { "ecs.capability.task-eni", NULL } };
  if (!cp_jset (ci->doc, "attributes", cJSON_CreateArray ()))
    return -1;
  cJSON_ArrayForEach (a, given)
  {
    const char *value = cJSON_IsString (cJSON_GetObjectItemCaseSensitive (a, "value"))
                            ? cp_jstr (a, "value")
                            : NULL;
    if (cp_instance_set_attribute (ci, cp_jstr (a, "name"), value) < 0)
      return -1;
  }
  for (size_t i = 0; i < ARRAY_SIZE (defaults); i++)
    if (!has_attribute (given, defaults[i][0])
        && cp_instance_set_attribute (ci, defaults[i][0], defaults[i][1]) < 0)
      return -1;
  return 0;
}

/* totalResources: [{name, type, integerValue | longValue | doubleValue | stringSetValue}]. */
static int check_resources (const cJSON *res, cp_fault *fault)
{
  const cJSON *r, *p;
  cJSON_ArrayForEach (r, res)
  {
    const char *name = NULL, *type = NULL;
    const cJSON *set = NULL;
    int64_t v = 0;
    if (!cJSON_IsObject (r))
      return cp_fail (fault, "SerializationException", "Each resource must be a structure.");
    if (cp_opt_str (r, "name", &name, fault) < 0 || cp_opt_str (r, "type", &type, fault) < 0
        || cp_opt_int (r, "integerValue", 0, INT32_MAX, &v, fault) < 0
        || cp_opt_int (r, "longValue", 0, INT64_MAX / 2, &v, fault) < 0
        || cp_opt_strlist (r, "stringSetValue", 65536, &set, fault) < 0)
      return -1;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive (r, "doubleValue");
    if (d && !cJSON_IsNull (d) && !cJSON_IsNumber (d))
      return cp_fail (fault, "SerializationException", "'doubleValue' must be a number.");
    if (name == NULL || *name == '\0')
      return cp_fail (fault, "InvalidParameterException", "Each resource needs a name.");
    cJSON_ArrayForEach (p, set)
    {
      char *end;
      long port = strtol (p->valuestring, &end, 10);
      if (*end != '\0' || port < 1 || port > 65535)
        return cp_fail (fault, "InvalidParameterException", "'%.32s' is not a port number.",
                        p->valuestring);
    }
  }
  return 0;
}

static int respond_instance (const cp_instance *ci, cJSON **out, cp_fault *fault)
{
  cJSON *j = cp_instance_json (ci);
  if (j == NULL || (*out = cJSON_CreateObject ()) == NULL)
    {
      cJSON_Delete (j);
      return cp_fail_oom (fault);
    }
  cJSON_AddItemToObject (*out, "containerInstance", j);
  return 0;
}

/* Everything a (re-)registration sets: resources, version, attributes, tags. */
static int apply_registration (cp_ctx *ctx, cp_instance *ci, const cJSON *in, const char *tags,
                               cp_fault *fault)
{
  const cJSON *res = cJSON_GetObjectItemCaseSensitive (in, "totalResources");
  const cJSON *ver = cJSON_GetObjectItemCaseSensitive (in, "versionInfo");
  cp_model *m = ctx->model;
  /* Re-registration changes what the instance has: give back what its tasks hold, reset,
   * then let them take it again from the new totals. */
  for (size_t i = 0; i < m->n_task; i++)
    if (strcmp (m->task[i]->instance_id, ci->id) == 0 && m->task[i]->holding)
      cp_task_release (m, m->task[i]), m->task[i]->holding = true;
  ci->tcp.n = ci->udp.n = 0;
  ci->n_groups = 0;
  ci->running = ci->pending = 0;
  if (!cp_jset (ci->doc, "registeredResources",
                res ? cJSON_Duplicate (res, true) : cJSON_CreateArray ())
      || !cp_jset (ci->doc, "versionInfo",
                   cJSON_IsObject (ver) ? cJSON_Duplicate (ver, true) : cJSON_CreateObject ())
      || set_attributes (ci, cJSON_GetObjectItemCaseSensitive (in, "attributes")) < 0
      || !cp_jset (ci->doc, "tags", cJSON_Parse (tags))
      || !cp_jset_str (ci->doc, "status", "ACTIVE")
      || !cp_jset (ci->doc, "agentConnected", cJSON_CreateTrue ()))
    return cp_fail_oom (fault);
  ci->cpu = cp_resource_int (res, "CPU");
  ci->memory = cp_resource_int (res, "MEMORY");
  ci->eni = cp_resource_int (res, "ENI");
  if (cp_resource_ports (res, "PORTS", &ci->tcp) < 0
      || cp_resource_ports (res, "PORTS_UDP", &ci->udp) < 0)
    return cp_fail_oom (fault);
  cp_instance_sync (ci);
  for (size_t i = 0; i < m->n_task; i++)
    if (strcmp (m->task[i]->instance_id, ci->id) == 0 && m->task[i]->holding)
      {
        m->task[i]->holding = false;
        if (cp_task_take (m, m->task[i]) < 0)
          return cp_fail_oom (fault);
      }
  return 0;
}

/* The EC2 instance id from an instance identity document, or one made from our id. */
static int ec2_id (const cp_instance *ci, const cJSON *in, char out[64])
{
  _cleanup_json_ cJSON *doc = cJSON_Parse (cp_jstr (in, "instanceIdentityDocument"));
  const char *given = cp_jstr (doc, "instanceId");
  if (*given && strlen (given) < 64)
    return snprintf (out, 64, "%s", given);
  return snprintf (out, 64, "i-%.17s", ci->id);
}

static cp_instance *new_instance (cp_ctx *ctx, const char *cluster, const cJSON *in)
{
  cp_instance *ci = calloc (1, sizeof *ci);
  char ec2[64];
  if (ci == NULL || cp_random_id (ci->id) < 0
      || asprintf (&ci->arn, "arn:aws:ecs:%s:%s:container-instance/%s/%s", ctx->region,
                   ctx->account_id, cluster, ci->id)
             < 0)
    {
      if (ci)
        ci->arn = NULL;
      cp_instance_free (ci);
      return NULL;
    }
  ec2_id (ci, in, ec2);
  snprintf (ci->key, sizeof ci->key, "%s", ctx->caller_key);
  if ((ci->cluster = strdup (cluster)) == NULL || (ci->doc = cJSON_CreateObject ()) == NULL
      || !cJSON_AddStringToObject (ci->doc, "containerInstanceArn", ci->arn)
      || !cJSON_AddStringToObject (ci->doc, "ec2InstanceId", ec2)
      || !cJSON_AddNumberToObject (ci->doc, "version", 1)
      || !cJSON_AddTrueToObject (ci->doc, "agentConnected")
      || !cJSON_AddNumberToObject (ci->doc, "registeredAt", (double)time (NULL))
      || !cJSON_AddArrayToObject (ci->doc, "attachments"))
    {
      cp_instance_free (ci);
      return NULL;
    }
  return ci;
}

static int register_args (const cJSON *in, const char **arn, char **tags, cp_fault *fault)
{
  const cJSON *res = NULL, *ver = NULL, *attrs = NULL;
  const char *doc = NULL, *sig = NULL;
  if (cp_opt_arr (in, "totalResources", &res, fault) < 0
      || cp_opt_obj (in, "versionInfo", &ver, fault) < 0
      || cp_opt_arr (in, "attributes", &attrs, fault) < 0
      || cp_opt_str (in, "containerInstanceArn", arn, fault) < 0
      || cp_opt_str (in, "instanceIdentityDocument", &doc, fault) < 0
      || cp_opt_str (in, "instanceIdentityDocumentSignature", &sig, fault) < 0
      || check_resources (res, fault) < 0 || cp_attributes_check (attrs, false, fault) < 0
      || cp_tags_parse (cJSON_GetObjectItemCaseSensitive (in, "tags"), tags, fault) < 0)
    return -1;
  if (cp_resource_int (res, "CPU") <= 0 || cp_resource_int (res, "MEMORY") <= 0)
    return cp_fail (fault, "InvalidParameterException",
                    "totalResources must give CPU and MEMORY as positive integers.");
  return 0;
}

int cp_register_container_instance (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256];
  const char *arn = NULL;
  _cleanup_free_ char *tags = NULL;
  if (cp_cluster_require (ctx, in, cluster, fault) < 0
      || register_args (in, &arn, &tags, fault) < 0)
    return -1;
  if (arn)
    {
      /* An agent that restarts registers again with the ARN it stored. */
      cp_instance *ci = cp_instance_find (ctx, cluster, arn);
      if (ci == NULL || strcmp (cp_jstr (ci->doc, "status"), "INACTIVE") == 0)
        return cp_fail (fault, "InvalidParameterException",
                        "The referenced container instance was not found.");
      if (cp_caller_may (ctx, ci->key, fault) < 0
          || apply_registration (ctx, ci, in, tags, fault) < 0
          || !cp_jset_num (ci->doc, "version",
                           cJSON_GetNumberValue (cJSON_GetObjectItem (ci->doc, "version")) + 1)
          || cp_instance_save (ctx, ci, fault) < 0)
        return -1;
      cp_channel_resend_credentials (ctx, ci);
      return respond_instance (ci, out, fault);
    }
  cp_instance *ci = new_instance (ctx, cluster, in);
  if (ci == NULL)
    return cp_fail_oom (fault);
  if (apply_registration (ctx, ci, in, tags, fault) < 0 || cp_instance_save (ctx, ci, fault) < 0)
    {
      cp_instance_free (ci);
      return -1;
    }
  if (cp_model_add_instance (ctx->model, ci) < 0)
    {
      cp_instance_free (ci);
      return cp_fail_oom (fault);
    }
  return respond_instance (ci, out, fault);
}

/* A required instance reference of cluster that still is registered. */
static int find_registered (cp_ctx *ctx, const char *cluster, const cJSON *in, cp_instance **out,
                            cp_fault *fault)
{
  const char *ref = NULL;
  if (cp_opt_str (in, "containerInstance", &ref, fault) < 0)
    return -1;
  if (ref == NULL)
    return cp_fail (fault, "InvalidParameterException", "containerInstance is required.");
  *out = cp_instance_find (ctx, cluster, ref);
  if (*out == NULL || strcmp (cp_jstr ((*out)->doc, "status"), "INACTIVE") == 0)
    return cp_fail (fault, "InvalidParameterException",
                    "The referenced container instance was not found.");
  return cp_caller_may (ctx, (*out)->key, fault);
}

/* Without force, an instance with tasks that hold resources is kept; with force, those tasks
 * are marked STOPPED here, since no agent will ever report them. */
int cp_deregister_container_instance (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256];
  bool force = false;
  cp_instance *ci = NULL;
  cp_model *m = ctx->model;
  berr *err = NULL;
  if (cp_cluster_require (ctx, in, cluster, fault) < 0
      || cp_opt_bool (in, "force", &force, fault) < 0
      || find_registered (ctx, cluster, in, &ci, fault) < 0)
    return -1;
  if (!force && ci->running + ci->pending > 0)
    return cp_fail (fault, "InvalidParameterException",
                    "The container instance has %d tasks; stop them first or deregister with "
                    "force.",
                    ci->running + ci->pending);
  if (cp_store_begin (ctx->store, &err) < 0)
    return cp_fail_server (fault, &err);
  for (size_t i = 0; i < m->n_task; i++)
    if (strcmp (m->task[i]->instance_id, ci->id) == 0 && m->task[i]->holding
        && cp_task_stop_now (ctx, m->task[i], "Container instance deregistered", fault) < 0)
      {
        cp_store_rollback (ctx->store);
        return -1;
      }
  if (!cp_jset_str (ci->doc, "status", "INACTIVE")
      || !cp_jset (ci->doc, "agentConnected", cJSON_CreateFalse ()))
    {
      cp_store_rollback (ctx->store);
      return cp_fail_oom (fault);
    }
  cp_instance_sync (ci);
  if (cp_instance_save (ctx, ci, fault) < 0)
    {
      cp_store_rollback (ctx->store);
      return -1;
    }
  if (cp_store_commit (ctx->store, &err) < 0)
    return cp_fail_server (fault, &err);
  /* The agent hears of its stopped tasks, then that it is closed. */
  for (size_t i = 0; i < m->n_task; i++)
    if (strcmp (m->task[i]->instance_id, ci->id) == 0
        && strcmp (cp_jstr (m->task[i]->doc, "stoppedReason"), "Container instance deregistered")
               == 0)
      cp_channel_task_changed (ctx, m->task[i]);
  cp_channel_instance_closed (ctx, ci, "deregistered");
  return respond_instance (ci, out, fault);
}

static int add_failure (cJSON *failures, const char *arn, const char *reason, cp_fault *fault)
{
  cJSON *f = cJSON_CreateObject ();
  if (f == NULL || !cJSON_AddItemToArray (failures, f)
      || (arn && !cJSON_AddStringToObject (f, "arn", arn))
      || !cJSON_AddStringToObject (f, "reason", reason))
    return cp_fail_oom (fault);
  return 0;
}

int cp_add_failure (cJSON *failures, const char *arn, const char *reason, cp_fault *fault)
{
  return add_failure (failures, arn, reason, fault);
}

/* The ARN a missing reference would have had, for failures. */
static char *missing_arn (cp_ctx *ctx, const char *cluster, const char *ref)
{
  char *arn = NULL;
  if (strncmp (ref, "arn:", 4) == 0)
    return strdup (ref);
  if (asprintf (&arn, "arn:aws:ecs:%s:%s:container-instance/%s/%s", ctx->region, ctx->account_id,
                cluster, ref)
      < 0)
    return NULL;
  return arn;
}

static int include_tags (const cJSON *in, bool *tags, bool *health, cp_fault *fault)
{
  const cJSON *inc = NULL, *i;
  if (cp_opt_strlist (in, "include", 10, &inc, fault) < 0)
    return -1;
  cJSON_ArrayForEach (i, inc)
  {
    if (strcmp (i->valuestring, "TAGS") != 0
        && strcmp (i->valuestring, "CONTAINER_INSTANCE_HEALTH") != 0)
      return cp_fail (fault, "InvalidParameterException", "Unknown include value '%.64s'.",
                      i->valuestring);
    *tags |= strcmp (i->valuestring, "TAGS") == 0;
    *health |= strcmp (i->valuestring, "CONTAINER_INSTANCE_HEALTH") == 0;
  }
  return 0;
}

/* An instance whose agent never published its status: INSUFFICIENT_DATA, as ECS shows. */
static bool add_no_health (cJSON *j)
{
  cJSON *hs;
  if (cJSON_GetObjectItem (j, "healthStatus"))
    return true;
  return (hs = cJSON_AddObjectToObject (j, "healthStatus")) != NULL
         && cJSON_AddStringToObject (hs, "overallStatus", "INSUFFICIENT_DATA")
         && cJSON_AddArrayToObject (hs, "details") != NULL;
}

int cp_describe_container_instances (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256];
  const cJSON *refs = NULL, *r;
  bool tags = false, health = false;
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  cJSON *list = cJSON_AddArrayToObject (res, "containerInstances");
  cJSON *failures = cJSON_AddArrayToObject (res, "failures");
  if (list == NULL || failures == NULL)
    return cp_fail_oom (fault);
  if (cp_cluster_require (ctx, in, cluster, fault) < 0
      || cp_opt_strlist (in, "containerInstances", 100, &refs, fault) < 0
      || include_tags (in, &tags, &health, fault) < 0)
    return -1;
  if (cJSON_GetArraySize (refs) == 0)
    return cp_fail (fault, "InvalidParameterException", "containerInstances is required.");
  cJSON_ArrayForEach (r, refs)
  {
    cp_instance *ci = cp_instance_find (ctx, cluster, r->valuestring);
    if (ci == NULL)
      {
        _cleanup_free_ char *arn = missing_arn (ctx, cluster, r->valuestring);
        if (arn == NULL || add_failure (failures, arn, "MISSING", fault) < 0)
          return cp_fail_oom (fault);
        continue;
      }
    cJSON *j = cp_instance_json (ci);
    if (j && !tags)
      cJSON_DeleteItemFromObjectCaseSensitive (j, "tags");
    if (j && !health)
      cJSON_DeleteItemFromObjectCaseSensitive (j, "healthStatus");
    if (j == NULL || !cJSON_AddItemToArray (list, j) || (health && !add_no_health (j)))
      return cp_fail_oom (fault);
  }
  *out = steal_ptr (&res);
  return 0;
}

static void cql_freep (cp_cql **q)
{
  cp_cql_free (*q);
}

/* ListContainerInstances' filter is the cluster query language of placement constraints,
 * evaluated against each instance's scheduler view. */
static bool filter_matches (const cp_cql *q, const cp_instance *ci)
{
  if (q == NULL)
    return true;
  cp_sched_instance v = cp_instance_sched_view (ci);
  return cp_cql_eval (q, &v, NULL);
}

static bool status_matches (const cp_instance *ci, const char *status)
{
  const char *s = cp_jstr (ci->doc, "status");
  if (status)
    return strcmp (s, status) == 0;
  return strcmp (s, "INACTIVE") != 0;
}

int cp_list_container_instances (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  static const char *const statuses[]
      = { "ACTIVE", "DRAINING", "REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED" };
  char cluster[256], after[64];
  const char *status = NULL, *filter = NULL;
  int64_t limit;
  __attribute__ ((cleanup (cql_freep))) cp_cql *q = NULL;
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  cJSON *arns = cJSON_AddArrayToObject (res, "containerInstanceArns");
  if (arns == NULL)
    return cp_fail_oom (fault);
  if (cp_cluster_require (ctx, in, cluster, fault) < 0
      || cp_opt_str (in, "status", &status, fault) < 0
      || cp_opt_str (in, "filter", &filter, fault) < 0
      || (filter && cp_cql_parse (filter, &q, fault) < 0)
      || cp_page_args (in, &limit, after, sizeof after, fault) < 0)
    return -1;
  bool known = status == NULL;
  for (size_t i = 0; i < ARRAY_SIZE (statuses); i++)
    known |= status && strcmp (status, statuses[i]) == 0;
  if (!known)
    return cp_fail (fault, "InvalidParameterException", "Unknown status '%.32s'.", status);
  cp_model *m = ctx->model;
  size_t i = 0, n = 0, last = 0;
  if (*after)
    {
      while (i < m->n_inst && strcmp (m->inst[i]->id, after) != 0)
        i++;
      if (i++ == m->n_inst)
        return cp_fail (fault, "InvalidParameterException", "Invalid nextToken.");
    }
  for (; i < m->n_inst; i++)
    {
      cp_instance *ci = m->inst[i];
      if (strcmp (ci->cluster, cluster) != 0 || !status_matches (ci, status)
          || !filter_matches (q, ci))
        continue;
      if ((int64_t)n == limit)
        {
          if (cp_token_add (res, m->inst[last]->id, fault) < 0)
            return -1;
          break;
        }
      if (!cJSON_AddItemToArray (arns, cJSON_CreateString (ci->arn)))
        return cp_fail_oom (fault);
      n++, last = i;
    }
  *out = steal_ptr (&res);
  return 0;
}

int cp_update_container_instances_state (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256];
  const cJSON *refs = NULL, *r;
  const char *status = NULL;
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  cJSON *list = cJSON_AddArrayToObject (res, "containerInstances");
  cJSON *failures = cJSON_AddArrayToObject (res, "failures");
  if (list == NULL || failures == NULL)
    return cp_fail_oom (fault);
  if (cp_cluster_require (ctx, in, cluster, fault) < 0
      || cp_opt_strlist (in, "containerInstances", 10, &refs, fault) < 0
      || cp_opt_str (in, "status", &status, fault) < 0)
    return -1;
  if (cJSON_GetArraySize (refs) == 0)
    return cp_fail (fault, "InvalidParameterException", "containerInstances is required.");
  if (status == NULL || (strcmp (status, "ACTIVE") != 0 && strcmp (status, "DRAINING") != 0))
    return cp_fail (fault, "InvalidParameterException",
                    "Container instances can only be set to ACTIVE or DRAINING.");
  cJSON_ArrayForEach (r, refs)
  {
    cp_instance *ci = cp_instance_find (ctx, cluster, r->valuestring);
    if (ci == NULL || strcmp (cp_jstr (ci->doc, "status"), "INACTIVE") == 0)
      {
        _cleanup_free_ char *arn = missing_arn (ctx, cluster, r->valuestring);
        if (arn == NULL || add_failure (failures, arn, ci ? "INACTIVE" : "MISSING", fault) < 0)
          return cp_fail_oom (fault);
        continue;
      }
    if (cp_caller_may (ctx, ci->key, fault) < 0) /* an agent: only its own instance */
      return -1;
    if (!cp_jset_str (ci->doc, "status", status))
      return cp_fail_oom (fault);
    cp_instance_sync (ci);
    if (cp_instance_save (ctx, ci, fault) < 0)
      return -1;
    cJSON *j = cp_instance_json (ci);
    if (j == NULL || !cJSON_AddItemToArray (list, j))
      return cp_fail_oom (fault);
  }
  *out = steal_ptr (&res);
  return 0;
}
