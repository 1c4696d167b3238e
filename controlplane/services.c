/* ECS services: CreateService, UpdateService, DeleteService, DescribeServices, ListServices, and
 * the service controller that keeps each service's tasks at its deployments (docs/controlplane.md).
 */
#include "controlplane/model.h"
#include "controlplane/sched.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EVENTS 100
#define MAX_DESIRED 10000
#define BATCH 10 /* RunTask's count limit */
/* Tasks one pass starts at most: a large service fills up over a few calls instead of one
 * request placing thousands of tasks. */
#define MAX_STARTS 100

/* A service document is the ECS Service shape plus private members starting with '_':
 * _cluster (name), _lastCompleted (task definition ARN of the last COMPLETED deployment),
 * _steady (the steady-state event was sent for the current state), _tags (JSON array). */

static bool is_private (const char *key)
{
  return key[0] == '_';
}

static cJSON *service_json (const cJSON *doc, bool tags)
{
  cJSON *out = cJSON_CreateObject (), *it;
  if (out == NULL)
    return NULL;
  cJSON_ArrayForEach (it, doc)
  {
    if (is_private (it->string))
      continue;
    if (!cJSON_AddItemToObject (out, it->string, cJSON_Duplicate (it, true)))
      goto fail;
  }
  cJSON_ArrayForEach (it, cJSON_GetObjectItem (out, "deployments"))
  {
    cJSON_DeleteItemFromObjectCaseSensitive (it, "_hc");
  }
  if (tags
      && !cJSON_AddItemToObject (out, "tags",
                                 cJSON_Duplicate (cJSON_GetObjectItem (doc, "_tags"), true)))
    goto fail;
  return out;
fail:
  cJSON_Delete (out);
  return NULL;
}

static int load_service (void *cls, const char *id, const char *cluster, const char *body,
                         berr **err)
{
  cp_ctx *ctx = cls;
  cJSON *doc = cJSON_Parse (body);
  (void)cluster;
  if (doc == NULL || !cJSON_IsObject (doc))
    {
      cJSON_Delete (doc);
      blog_warn ("service %s: stored document does not parse, skipped", id);
      return 0;
    }
  if (!cJSON_AddItemToArray (ctx->model->services, doc))
    {
      cJSON_Delete (doc);
      return berr_sys (err, "load service");
    }
  return 0;
}

int cp_services_load (cp_ctx *ctx, berr **err)
{
  if ((ctx->model->services = cJSON_CreateArray ()) == NULL)
    return berr_sys (err, "allocate services");
  return cp_store_load_docs (ctx->store, CP_DOC_SERVICE, load_service, ctx, err);
}

static int service_save (cp_ctx *ctx, const cJSON *doc, cp_fault *fault)
{
  char id[600];
  berr *err = NULL;
  _cleanup_free_ char *body = cJSON_PrintUnformatted (doc);
  if (body == NULL)
    return cp_fail_oom (fault);
  snprintf (id, sizeof id, "%s/%s", cp_jstr (doc, "_cluster"), cp_jstr (doc, "serviceName"));
  if (cp_store_put_doc (ctx->store, CP_DOC_SERVICE, id, cp_jstr (doc, "_cluster"), body, &err) < 0)
    return cp_fail_server (fault, &err);
  return 0;
}

/* A service of cluster by name or ARN (service/<cluster>/<name> or the old service/<name>). */
static cJSON *service_find (cp_ctx *ctx, const char *cluster, const char *ref)
{
  char type[32], rest[512];
  const char *name = ref;
  cJSON *doc;
  if (strncmp (ref, "arn:", 4) == 0)
    {
      if (!cp_arn_parse (ctx, ref, type, rest) || strcmp (type, "service") != 0)
        return NULL;
      char *slash = strchr (rest, '/');
      if (slash && (*slash = '\0', strcmp (rest, cluster) != 0))
        return NULL;
      name = slash ? ref + strlen (ref) - strlen (slash + 1) : ref + strlen (ref) - strlen (rest);
    }
  cJSON_ArrayForEach (doc, ctx->model->services)
  {
    if (strcmp (cp_jstr (doc, "_cluster"), cluster) == 0
        && strcmp (cp_jstr (doc, "serviceName"), name) == 0)
      return doc;
  }
  return NULL;
}

cJSON *cp_service_find (cp_ctx *ctx, const char *cluster, const char *ref)
{
  return service_find (ctx, cluster, ref);
}

static int64_t jint (const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (obj, key);
  return cJSON_IsNumber (v) ? (int64_t)v->valuedouble : 0;
}

static bool jbool (const cJSON *obj, const char *key)
{
  return cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (obj, key));
}

static void uuid (char out[37])
{
  char id[CP_ID_LEN + 1] = "00000000000000000000000000000000";
  (void)cp_random_id (id);
  snprintf (out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", id, id + 8, id + 12, id + 16, id + 20);
}

/* Adds an event (newest first, at most MAX_EVENTS); the same message twice in a row is kept
 * once, so a placement failure repeated on every pass does not flood the list. */
static void add_event (cJSON *doc, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void add_event (cJSON *doc, const char *fmt, ...)
{
  char msg[1024], id[37];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  cJSON *events = cJSON_GetObjectItem (doc, "events"), *e;
  if (events == NULL || strcmp (cp_jstr (cJSON_GetArrayItem (events, 0), "message"), msg) == 0)
    return;
  uuid (id);
  if ((e = cJSON_CreateObject ()) == NULL)
    return;
  if (!cJSON_AddStringToObject (e, "id", id)
      || !cJSON_AddNumberToObject (e, "createdAt", (double)time (NULL))
      || !cJSON_AddStringToObject (e, "message", msg) || !cJSON_InsertItemInArray (events, 0, e))
    {
      cJSON_Delete (e);
      return;
    }
  while (cJSON_GetArraySize (events) > MAX_EVENTS)
    cJSON_DeleteItemFromArray (events, MAX_EVENTS);
}

/* ---- requests ---- */

/* deploymentConfiguration merged over cur (defaults for a new service), checked. */
static int parse_deploy_config (const cJSON *in, cJSON *cur, bool daemon, cp_fault *fault)
{
  const cJSON *dc = NULL, *cb = NULL;
  int64_t max = jint (cur, "maximumPercent"), min = jint (cur, "minimumHealthyPercent");
  bool enable = false, rollback = false;
  if (cp_opt_obj (in, "deploymentConfiguration", &dc, fault) < 0
      || cp_opt_int (dc, "maximumPercent", 0, 1000, &max, fault) < 0
      || cp_opt_int (dc, "minimumHealthyPercent", 0, 1000, &min, fault) < 0
      || cp_opt_obj (dc, "deploymentCircuitBreaker", &cb, fault) < 0
      || cp_opt_bool (cb, "enable", &enable, fault) < 0
      || cp_opt_bool (cb, "rollback", &rollback, fault) < 0)
    return -1;
  if (min > 100)
    return cp_fail (fault, "InvalidParameterException",
                    "minimumHealthyPercent must be between 0 and 100.");
  if (daemon && max != 100)
    return cp_fail (fault, "InvalidParameterException",
                    "The maximumPercent of a DAEMON service must be 100.");
  if (max < 100 || max > 200)
    return cp_fail (fault, "InvalidParameterException",
                    "maximumPercent must be between 100 and 200.");
  if (!cp_jset_num (cur, "maximumPercent", (double)max)
      || !cp_jset_num (cur, "minimumHealthyPercent", (double)min))
    return cp_fail_oom (fault);
  if (cb)
    {
      cJSON *c = cJSON_CreateObject ();
      if (c == NULL || !cJSON_AddBoolToObject (c, "enable", enable)
          || !cJSON_AddBoolToObject (c, "rollback", rollback))
        {
          cJSON_Delete (c);
          return cp_fail_oom (fault);
        }
      if (!cp_jset (cur, "deploymentCircuitBreaker", c))
        return cp_fail_oom (fault);
    }
  return 0;
}

/* The task definition a service runs: must exist and be ACTIVE; *arn newly allocated. */
static int resolve_taskdef (cp_ctx *ctx, const char *ref, char **arn, cJSON **body, cp_fault *fault)
{
  cp_taskdef td = { 0 };
  int found = cp_taskdef_resolve (ctx, ref, &td, fault);
  int r = 0;
  if (found < 0)
    return -1;
  if (found == 0)
    r = cp_fail (fault, "ClientException", "TaskDefinition not found.");
  else if (strcmp (td.status, "ACTIVE") != 0)
    r = cp_fail (fault, "ClientException", "TaskDefinition is inactive");
  else if ((*arn = cp_taskdef_arn (ctx, td.family, td.revision)) == NULL
           || (*body = cJSON_Parse (td.body_json)) == NULL)
    r = cp_fail_oom (fault);
  cp_taskdef_clear (&td);
  return r;
}

/* networkConfiguration against the definition's network mode, as RunTask checks it. */
static int check_network (cp_ctx *ctx, const cJSON *body, const cJSON *net, cp_fault *fault)
{
  const cJSON *vpc = NULL, *subnets = NULL, *s;
  bool awsvpc = strcmp (cp_jstr (body, "networkMode"), "awsvpc") == 0;
  if (cp_opt_obj (net, "awsvpcConfiguration", &vpc, fault) < 0
      || cp_opt_strlist (vpc, "subnets", 16, &subnets, fault) < 0)
    return -1;
  if (awsvpc && vpc == NULL)
    return cp_fail (fault, "InvalidParameterException",
                    "Network Configuration must be provided when networkMode 'awsvpc' is "
                    "specified.");
  if (!awsvpc && vpc)
    return cp_fail (fault, "InvalidParameterException",
                    "Network Configuration is not valid for the given networkMode of this task "
                    "definition.");
  if (awsvpc && cJSON_GetArraySize (subnets) == 0)
    return cp_fail (fault, "InvalidParameterException", "subnets can not be empty.");
  cJSON_ArrayForEach (s, subnets)
  {
    if (cp_subnet_find (ctx->model, s->valuestring) == NULL)
      return cp_fail (fault, "InvalidParameterException",
                      "Error retrieving subnet information for [%.64s]: the subnet ID does not "
                      "exist.",
                      s->valuestring);
  }
  return 0;
}

static bool valid_name (const char *s)
{
  size_t n = strlen (s);
  return n >= 1 && n <= 255
         && strspn (s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

/* A new deployment at the front of deployments[] as PRIMARY; the others become ACTIVE. */
static bool has_health_check (const cJSON *body)
{
  const cJSON *ct;
  cJSON_ArrayForEach (ct, cJSON_GetObjectItem (body, "containerDefinitions"))
  {
    if (cJSON_IsObject (cJSON_GetObjectItem (ct, "healthCheck")))
      return true;
  }
  return false;
}

static int add_deployment (cJSON *doc, const char *td_arn, const cJSON *body, cp_fault *fault)
{
  char id[40];
  uint64_t r = 0;
  char hex[CP_ID_LEN + 1];
  if (cp_random_id (hex) < 0)
    return cp_fail_oom (fault);
  for (int i = 0; i < 15; i++)
    r = r * 16 + (uint64_t)(strchr ("0123456789abcdef", hex[i]) - "0123456789abcdef");
  snprintf (id, sizeof id, "ecs-svc/%019" PRIu64, (uint64_t)(r % 10000000000000000000ULL));
  cJSON *deps = cJSON_GetObjectItem (doc, "deployments"), *d, *o;
  double now = (double)time (NULL);
  cJSON_ArrayForEach (o, deps)
  {
    if (!cp_jset_str (o, "status", "ACTIVE"))
      return cp_fail_oom (fault);
  }
  if ((d = cJSON_CreateObject ()) == NULL || !cJSON_InsertItemInArray (deps, 0, d))
    {
      cJSON_Delete (d);
      return cp_fail_oom (fault);
    }
  if (!cJSON_AddStringToObject (d, "id", id) || !cJSON_AddStringToObject (d, "status", "PRIMARY")
      || !cJSON_AddStringToObject (d, "taskDefinition", td_arn)
      || !cJSON_AddNumberToObject (d, "desiredCount", (double)jint (doc, "desiredCount"))
      || !cJSON_AddNumberToObject (d, "pendingCount", 0)
      || !cJSON_AddNumberToObject (d, "runningCount", 0)
      || !cJSON_AddNumberToObject (d, "failedTasks", 0)
      || !cJSON_AddNumberToObject (d, "createdAt", now)
      || !cJSON_AddNumberToObject (d, "updatedAt", now)
      || !cJSON_AddStringToObject (d, "launchType", cp_jstr (doc, "launchType"))
      || !cJSON_AddStringToObject (d, "rolloutState", "IN_PROGRESS")
      || !cJSON_AddStringToObject (d, "rolloutStateReason", "ECS deployment detected.")
      || !cJSON_AddBoolToObject (d, "_hc", has_health_check (body))
      || !cp_jset_str (doc, "taskDefinition", td_arn)
      || !cp_jset (doc, "_steady", cJSON_CreateFalse ()))
    return cp_fail_oom (fault);
  const cJSON *net = cJSON_GetObjectItem (doc, "networkConfiguration");
  if (net && !cJSON_AddItemToObject (d, "networkConfiguration", cJSON_Duplicate (net, true)))
    return cp_fail_oom (fault);
  return 0;
}

/* Copies an optional member of the request into the document (validated elsewhere). */
static int copy_member (cJSON *doc, const cJSON *in, const char *key, cp_fault *fault)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (in, key);
  if (v == NULL || cJSON_IsNull (v))
    return 0;
  return cp_jset (doc, key, cJSON_Duplicate (v, true)) ? 0 : cp_fail_oom (fault);
}

typedef struct create_args
{
  char cluster[256];
  const char *name, *td_ref, *launch_type, *strategy_s, *propagate;
  const cJSON *strategy, *constraints, *net;
  int64_t desired;
  bool daemon, managed_tags;
  char *td_arn, *tags;
  cJSON *td_body;
} create_args;

static void create_args_clear (create_args *a)
{
  free (a->td_arn);
  free (a->tags);
  cJSON_Delete (a->td_body);
}

static int parse_create (cp_ctx *ctx, const cJSON *in, create_args *a, cp_fault *fault)
{
  a->desired = -1;
  a->launch_type = "EC2";
  a->strategy_s = "REPLICA";
  a->propagate = "NONE";
  if (cp_cluster_require (ctx, in, a->cluster, fault) < 0
      || cp_opt_str (in, "serviceName", &a->name, fault) < 0
      || cp_opt_str (in, "taskDefinition", &a->td_ref, fault) < 0
      || cp_opt_str (in, "launchType", &a->launch_type, fault) < 0
      || cp_opt_str (in, "schedulingStrategy", &a->strategy_s, fault) < 0
      || cp_opt_str (in, "propagateTags", &a->propagate, fault) < 0
      || cp_opt_bool (in, "enableECSManagedTags", &a->managed_tags, fault) < 0
      || cp_opt_arr (in, "placementStrategy", &a->strategy, fault) < 0
      || cp_opt_arr (in, "placementConstraints", &a->constraints, fault) < 0
      || cp_opt_obj (in, "networkConfiguration", &a->net, fault) < 0
      || cp_opt_int (in, "desiredCount", 0, MAX_DESIRED, &a->desired, fault) < 0
      || cp_tags_parse (cJSON_GetObjectItemCaseSensitive (in, "tags"), &a->tags, fault) < 0)
    return -1;
  if (a->name == NULL || !valid_name (a->name))
    return cp_fail (fault, "InvalidParameterException",
                    "serviceName has 1 to 255 letters, numbers, hyphens and underscores.");
  if (a->td_ref == NULL)
    return cp_fail (fault, "InvalidParameterException", "taskDefinition is required.");
  if (strcmp (a->launch_type, "EC2") != 0 && strcmp (a->launch_type, "EXTERNAL") != 0)
    return cp_fail (fault, "InvalidParameterException",
                    "launchType must be EC2 or EXTERNAL here (got '%.32s').", a->launch_type);
  if (strcmp (a->propagate, "NONE") != 0 && strcmp (a->propagate, "SERVICE") != 0
      && strcmp (a->propagate, "TASK_DEFINITION") != 0)
    return cp_fail (fault, "InvalidParameterException",
                    "propagateTags must be TASK_DEFINITION, SERVICE or NONE.");
  a->daemon = strcmp (a->strategy_s, "DAEMON") == 0;
  if (!a->daemon && strcmp (a->strategy_s, "REPLICA") != 0)
    return cp_fail (fault, "InvalidParameterException",
                    "schedulingStrategy must be REPLICA or DAEMON.");
  if (a->daemon && a->desired >= 0)
    return cp_fail (fault, "InvalidParameterException",
                    "The daemon scheduling strategy does not support a desired count for "
                    "services.");
  if (a->daemon && cJSON_GetArraySize (a->strategy) > 0)
    return cp_fail (fault, "InvalidParameterException",
                    "Placement strategies are not supported with DAEMON scheduling strategy.");
  if (cJSON_GetArraySize (a->strategy) > 5 || cJSON_GetArraySize (a->constraints) > 10)
    return cp_fail (fault, "InvalidParameterException",
                    "At most 5 placement strategies and 10 constraints.");
  if (a->desired < 0)
    a->desired = a->daemon ? 0 : 1;
  if (cp_sched_validate (a->strategy, a->constraints, fault) < 0
      || resolve_taskdef (ctx, a->td_ref, &a->td_arn, &a->td_body, fault) < 0)
    return -1;
  return check_network (ctx, a->td_body, a->net, fault);
}

static cJSON *new_service_doc (cp_ctx *ctx, const create_args *a, cp_fault *fault)
{
  _cleanup_json_ cJSON *doc = cJSON_CreateObject ();
  _cleanup_free_ char *arn = NULL, *cluster_arn = cp_cluster_arn (ctx, a->cluster);
  cJSON *dc;
  if (doc == NULL || cluster_arn == NULL
      || asprintf (&arn, "arn:aws:ecs:%s:%s:service/%s/%s", ctx->region, ctx->account_id,
                   a->cluster, a->name)
             < 0)
    {
      arn = NULL;
      cp_fail_oom (fault);
      return NULL;
    }
  if (!cJSON_AddStringToObject (doc, "serviceArn", arn)
      || !cJSON_AddStringToObject (doc, "serviceName", a->name)
      || !cJSON_AddStringToObject (doc, "clusterArn", cluster_arn)
      || !cJSON_AddStringToObject (doc, "status", "ACTIVE")
      || !cJSON_AddNumberToObject (doc, "desiredCount", (double)a->desired)
      || !cJSON_AddNumberToObject (doc, "runningCount", 0)
      || !cJSON_AddNumberToObject (doc, "pendingCount", 0)
      || !cJSON_AddStringToObject (doc, "launchType", a->launch_type)
      || (dc = cJSON_AddObjectToObject (doc, "deploymentConfiguration")) == NULL
      || !cJSON_AddNumberToObject (dc, "maximumPercent", a->daemon ? 100 : 200)
      || !cJSON_AddNumberToObject (dc, "minimumHealthyPercent", a->daemon ? 0 : 100)
      || !cJSON_AddArrayToObject (doc, "deployments") || !cJSON_AddArrayToObject (doc, "events")
      || !cJSON_AddNumberToObject (doc, "createdAt", (double)time (NULL))
      || !cJSON_AddStringToObject (doc, "schedulingStrategy", a->strategy_s)
      || !cJSON_AddStringToObject (doc, "propagateTags", a->propagate)
      || !cJSON_AddBoolToObject (doc, "enableECSManagedTags", a->managed_tags)
      || !cJSON_AddStringToObject (doc, "_cluster", a->cluster)
      || !cJSON_AddItemToObject (doc, "_tags", cJSON_Parse (a->tags))
      || !cJSON_AddItemToObject (doc, "placementConstraints",
                                 a->constraints ? cJSON_Duplicate (a->constraints, true)
                                                : cJSON_CreateArray ())
      || !cJSON_AddItemToObject (doc, "placementStrategy",
                                 a->strategy ? cJSON_Duplicate (a->strategy, true)
                                             : cJSON_CreateArray ()))
    {
      cp_fail_oom (fault);
      return NULL;
    }
  cJSON *ctl = cJSON_AddObjectToObject (doc, "deploymentController");
  if (ctl == NULL || !cJSON_AddStringToObject (ctl, "type", "ECS")
      || (a->net
          && !cJSON_AddItemToObject (doc, "networkConfiguration", cJSON_Duplicate (a->net, true))))
    {
      cp_fail_oom (fault);
      return NULL;
    }
  return steal_ptr (&doc);
}

static int answer_service (const cJSON *doc, cJSON **out, cp_fault *fault)
{
  cJSON *s = service_json (doc, false);
  if (s == NULL || (*out = cJSON_CreateObject ()) == NULL)
    {
      cJSON_Delete (s);
      return cp_fail_oom (fault);
    }
  cJSON_AddItemToObject (*out, "service", s);
  return 0;
}

/* Replaces (or appends) the service's document in the model and the store. */
static int service_store (cp_ctx *ctx, cJSON *old, cJSON *doc, cp_fault *fault)
{
  if (service_save (ctx, doc, fault) < 0)
    {
      cJSON_Delete (doc);
      return -1;
    }
  if (old)
    cJSON_ReplaceItemViaPointer (ctx->model->services, old, doc);
  else if (!cJSON_AddItemToArray (ctx->model->services, doc))
    {
      cJSON_Delete (doc);
      return cp_fail_oom (fault);
    }
  return 0;
}

int cp_create_service (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  create_args a = { 0 };
  int r = -1;
  if (parse_create (ctx, in, &a, fault) < 0)
    goto done;
  cJSON *old = service_find (ctx, a.cluster, a.name);
  if (old && strcmp (cp_jstr (old, "status"), "INACTIVE") != 0)
    {
      r = cp_fail (fault, "InvalidParameterException", "Creation of service was not idempotent.");
      goto done;
    }
  cJSON *doc = new_service_doc (ctx, &a, fault);
  if (doc == NULL)
    goto done;
  if (parse_deploy_config (in, cJSON_GetObjectItem (doc, "deploymentConfiguration"), a.daemon,
                           fault)
          < 0
      || add_deployment (doc, a.td_arn, a.td_body, fault) < 0)
    {
      cJSON_Delete (doc);
      goto done;
    }
  if (service_store (ctx, old, doc, fault) < 0)
    goto done;
  r = answer_service (doc, out, fault);
done:
  create_args_clear (&a);
  return r;
}

/* The cluster and service members; the service must exist (ServiceNotFoundException). */
static int require_service (cp_ctx *ctx, const cJSON *in, char cluster[256], cJSON **doc,
                            cp_fault *fault)
{
  const char *ref = NULL;
  if (cp_cluster_require (ctx, in, cluster, fault) < 0
      || cp_opt_str (in, "service", &ref, fault) < 0)
    return -1;
  if (ref == NULL)
    return cp_fail (fault, "InvalidParameterException", "service is required.");
  if ((*doc = service_find (ctx, cluster, ref)) == NULL)
    return cp_fail (fault, "ServiceNotFoundException", "Service not found.");
  return 0;
}

/* UpdateService's changes on a copy: a new task definition, network or placement, or
 * forceNewDeployment start a deployment; desiredCount and deploymentConfiguration do not. */
static int apply_update (cp_ctx *ctx, const cJSON *in, cJSON *doc, cp_fault *fault)
{
  const char *td_ref = NULL;
  const cJSON *net = NULL, *strategy = NULL, *constraints = NULL;
  int64_t desired = -1;
  bool force = false, daemon = strcmp (cp_jstr (doc, "schedulingStrategy"), "DAEMON") == 0;
  _cleanup_free_ char *td_arn = NULL;
  _cleanup_json_ cJSON *body = NULL;
  if (cp_opt_str (in, "taskDefinition", &td_ref, fault) < 0
      || cp_opt_obj (in, "networkConfiguration", &net, fault) < 0
      || cp_opt_arr (in, "placementStrategy", &strategy, fault) < 0
      || cp_opt_arr (in, "placementConstraints", &constraints, fault) < 0
      || cp_opt_bool (in, "forceNewDeployment", &force, fault) < 0
      || cp_opt_int (in, "desiredCount", 0, MAX_DESIRED, &desired, fault) < 0)
    return -1;
  if (daemon && desired >= 0)
    return cp_fail (fault, "InvalidParameterException",
                    "The daemon scheduling strategy does not support a desired count for "
                    "services.");
  if (cp_sched_validate (
          strategy ? strategy : cJSON_GetObjectItem (doc, "placementStrategy"),
          constraints ? constraints : cJSON_GetObjectItem (doc, "placementConstraints"), fault)
          < 0
      || resolve_taskdef (ctx, td_ref ? td_ref : cp_jstr (doc, "taskDefinition"), &td_arn, &body,
                          fault)
             < 0
      || check_network (ctx, body, net ? net : cJSON_GetObjectItem (doc, "networkConfiguration"),
                        fault)
             < 0
      || parse_deploy_config (in, cJSON_GetObjectItem (doc, "deploymentConfiguration"), daemon,
                              fault)
             < 0
      || copy_member (doc, in, "networkConfiguration", fault) < 0
      || copy_member (doc, in, "placementStrategy", fault) < 0
      || copy_member (doc, in, "placementConstraints", fault) < 0
      || copy_member (doc, in, "propagateTags", fault) < 0
      || copy_member (doc, in, "enableECSManagedTags", fault) < 0)
    return -1;
  if (desired >= 0 && !cp_jset_num (doc, "desiredCount", (double)desired))
    return cp_fail_oom (fault);
  if (force || net || strategy || constraints
      || strcmp (td_arn, cp_jstr (doc, "taskDefinition")) != 0)
    return add_deployment (doc, td_arn, body, fault);
  return 0;
}

int cp_update_service (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256];
  cJSON *old;
  if (require_service (ctx, in, cluster, &old, fault) < 0)
    return -1;
  if (strcmp (cp_jstr (old, "status"), "ACTIVE") != 0)
    return cp_fail (fault, "ServiceNotActiveException", "Service was not ACTIVE.");
  cJSON *doc = cJSON_Duplicate (old, true);
  if (doc == NULL)
    return cp_fail_oom (fault);
  if (apply_update (ctx, in, doc, fault) < 0)
    {
      cJSON_Delete (doc);
      return -1;
    }
  if (service_store (ctx, old, doc, fault) < 0)
    return -1;
  return answer_service (doc, out, fault);
}

/* DRAINING until the controller has stopped every task, then INACTIVE. A REPLICA service
 * still scaled above 0 needs force, as in ECS. */
int cp_delete_service (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256];
  cJSON *old;
  bool force = false;
  if (require_service (ctx, in, cluster, &old, fault) < 0
      || cp_opt_bool (in, "force", &force, fault) < 0)
    return -1;
  if (strcmp (cp_jstr (old, "status"), "ACTIVE") != 0)
    return cp_fail (fault, "ServiceNotActiveException", "Service was not ACTIVE.");
  if (!force && strcmp (cp_jstr (old, "schedulingStrategy"), "REPLICA") == 0
      && jint (old, "desiredCount") > 0)
    return cp_fail (fault, "InvalidParameterException",
                    "The service cannot be stopped while it is scaled above 0.");
  cJSON *doc = cJSON_Duplicate (old, true);
  if (doc == NULL || !cp_jset_str (doc, "status", "DRAINING")
      || !cp_jset_num (doc, "desiredCount", 0))
    {
      cJSON_Delete (doc);
      return cp_fail_oom (fault);
    }
  if (service_store (ctx, old, doc, fault) < 0)
    return -1;
  return answer_service (doc, out, fault);
}

int cp_describe_services (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256];
  const cJSON *refs = NULL, *inc = NULL, *r;
  bool tags = false;
  if (cp_cluster_require (ctx, in, cluster, fault) < 0
      || cp_opt_strlist (in, "services", 10, &refs, fault) < 0
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
    return cp_fail (fault, "InvalidParameterException", "Services cannot be empty.");
  cp_services_reconcile (ctx);
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  cJSON *list = cJSON_AddArrayToObject (res, "services");
  cJSON *failures = cJSON_AddArrayToObject (res, "failures");
  if (list == NULL || failures == NULL)
    return cp_fail_oom (fault);
  cJSON_ArrayForEach (r, refs)
  {
    cJSON *doc = service_find (ctx, cluster, r->valuestring);
    if (doc == NULL)
      {
        _cleanup_free_ char *arn = NULL;
        if (strncmp (r->valuestring, "arn:", 4) == 0)
          arn = strdup (r->valuestring);
        else if (asprintf (&arn, "arn:aws:ecs:%s:%s:service/%s/%s", ctx->region, ctx->account_id,
                           cluster, r->valuestring)
                 < 0)
          arn = NULL;
        if (arn == NULL || cp_add_failure (failures, arn, "MISSING", fault) < 0)
          return cp_fail_oom (fault);
        continue;
      }
    if (!cJSON_AddItemToArray (list, service_json (doc, tags)))
      return cp_fail_oom (fault);
  }
  *out = steal_ptr (&res);
  return 0;
}

int cp_list_services (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256], after[300];
  const char *launch = NULL, *strategy = NULL;
  int64_t limit, n = 0;
  const cJSON *doc, *last = NULL;
  if (cp_cluster_require (ctx, in, cluster, fault) < 0
      || cp_opt_str (in, "launchType", &launch, fault) < 0
      || cp_opt_str (in, "schedulingStrategy", &strategy, fault) < 0
      || cp_page_args (in, &limit, after, sizeof after, fault) < 0)
    return -1;
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  cJSON *arns = cJSON_AddArrayToObject (res, "serviceArns");
  if (arns == NULL)
    return cp_fail_oom (fault);
  /* In creation order; the token is the last name listed. */
  bool skipping = *after != '\0';
  cJSON_ArrayForEach (doc, ctx->model->services)
  {
    if (strcmp (cp_jstr (doc, "_cluster"), cluster) != 0)
      continue;
    if (skipping)
      {
        skipping = strcmp (cp_jstr (doc, "serviceName"), after) != 0;
        continue;
      }
    if (strcmp (cp_jstr (doc, "status"), "INACTIVE") == 0
        || (launch && strcmp (cp_jstr (doc, "launchType"), launch) != 0)
        || (strategy && strcmp (cp_jstr (doc, "schedulingStrategy"), strategy) != 0))
      continue;
    if (n == limit)
      {
        if (cp_token_add (res, cp_jstr (last, "serviceName"), fault) < 0)
          return -1;
        break;
      }
    if (!cJSON_AddItemToArray (arns, cJSON_CreateString (cp_jstr (doc, "serviceArn"))))
      return cp_fail_oom (fault);
    n++, last = doc;
  }
  if (skipping)
    return cp_fail (fault, "InvalidParameterException", "Invalid nextToken.");
  *out = steal_ptr (&res);
  return 0;
}

/* ---- the controller ---- */

#define MAX_DEPS 8

/* One live (not STOPPED) task of a service as the controller sees it. */
typedef struct svc_task
{
  cp_task *t;
  int dep;       /* index in deployments[] */
  bool stopping; /* desiredStatus STOPPED */
  bool running, healthy, draining;
} svc_task;

typedef struct svc_view
{
  cJSON *doc, *deps;
  int n_deps;
  svc_task *v;
  size_t n, cap;
  int live, healthy;
  int running[MAX_DEPS], pending[MAX_DEPS], failed[MAX_DEPS], count[MAX_DEPS];
} svc_view;

static cp_instance *instance_of (cp_model *m, cp_task *t)
{
  if (t->inst == NULL)
    t->inst = cp_instance_by_id (m, t->instance_id);
  return t->inst;
}

static bool failed_stop (const cp_task *t)
{
  const char *code = cp_jstr (t->doc, "stopCode");
  return strcmp (code, "TaskFailedToStart") == 0 || strcmp (code, "EssentialContainerExited") == 0;
}

static int dep_index (const svc_view *v, const char *started_by)
{
  for (int i = 0; i < v->n_deps; i++)
    if (strcmp (cp_jstr (cJSON_GetArrayItem (v->deps, i), "id"), started_by) == 0)
      return i;
  return -1;
}

static bool view_add (svc_view *v, svc_task st)
{
  if (v->n == v->cap)
    {
      size_t c = v->cap ? 2 * v->cap : 16;
      svc_task *g = realloc (v->v, c * sizeof *g);
      if (g == NULL)
        return false;
      v->v = g, v->cap = c;
    }
  v->v[v->n++] = st;
  return true;
}

/* Collects the service's tasks (group "service:NAME" in its cluster) and counts them. */
static bool view_build (cp_ctx *ctx, cJSON *doc, svc_view *v)
{
  char group[300];
  cp_model *m = ctx->model;
  free (v->v);
  *v = (svc_view){ .doc = doc, .deps = cJSON_GetObjectItem (doc, "deployments") };
  v->n_deps = cJSON_GetArraySize (v->deps);
  if (v->n_deps > MAX_DEPS)
    v->n_deps = MAX_DEPS;
  snprintf (group, sizeof group, "service:%s", cp_jstr (doc, "serviceName"));
  const char *cluster = cp_jstr (doc, "_cluster");
  for (size_t i = 0; i < m->n_task; i++)
    {
      cp_task *t = m->task[i];
      if (strcmp (t->cluster, cluster) != 0 || strcmp (cp_jstr (t->doc, "group"), group) != 0)
        continue;
      const char *last = cp_jstr (t->doc, "lastStatus");
      int dep = dep_index (v, cp_jstr (t->doc, "startedBy"));
      /* Only the service's own tasks count: a RunTask by hand with the same group is left
       * alone (a deployment stays listed while it has live tasks, so ours always match). */
      if (dep < 0)
        continue;
      if (strcmp (last, "STOPPED") == 0)
        {
          if (failed_stop (t))
            v->failed[dep]++;
          continue;
        }
      cp_instance *ci = instance_of (m, t);
      svc_task st = { .t = t, .dep = dep };
      st.stopping = strcmp (cp_jstr (t->doc, "desiredStatus"), "STOPPED") == 0;
      st.running = strcmp (last, "RUNNING") == 0;
      st.draining = ci == NULL || !ci->placeable;
      const cJSON *d = cJSON_GetArrayItem (v->deps, dep);
      st.healthy
          = st.running && !st.stopping
            && (!jbool (d, "_hc") || strcmp (cp_jstr (t->doc, "healthStatus"), "HEALTHY") == 0);
      if (!view_add (v, st))
        return false;
      v->live++;
      v->healthy += st.healthy;
      if (dep >= 0 && !st.stopping)
        {
          v->count[dep]++;
          v->running[dep] += st.running;
          v->pending[dep] += !st.running;
        }
    }
  return true;
}

static const char *short_id (const char *arn)
{
  const char *s = strrchr (arn, '/');
  return s ? s + 1 : arn;
}

/* The ECS event for a copy that could not be placed. */
static void placement_event (cJSON *doc, const cJSON *failure)
{
  const char *reason = cp_jstr (failure, "reason"), *arn = cp_jstr (failure, "arn");
  const char *what = strcmp (reason, "RESOURCE:MEMORY") == 0 ? "has insufficient memory available"
                     : strcmp (reason, "RESOURCE:CPU") == 0 ? "has insufficient CPU units available"
                     : strncmp (reason, "RESOURCE:PORTS", 14) == 0
                         ? "is already using a port required by your task"
                     : strcmp (reason, "RESOURCE:ENI") == 0 ? "has no ENI attachment left"
                     : strcmp (reason, "RESOURCE:IP") == 0  ? "has no address left in its subnets"
                     : strcmp (reason, "MissingAttribute") == 0
                         ? "is missing an attribute required by your task"
                         : "does not meet the placement constraints";
  const char *name = cp_jstr (doc, "serviceName");
  if (*arn == '\0' || strcmp (reason, "AGENT") == 0)
    add_event (doc,
               "(service %s) was unable to place a task because no container instance met all "
               "of its requirements. Reason: No Container Instances were found in your cluster.",
               name);
  else
    add_event (doc,
               "(service %s) was unable to place a task because no container instance met all "
               "of its requirements. The closest matching (container-instance %s) %s.",
               name, short_id (arn), what);
}

/* Starts count copies of deployment dep (RunTask, or StartTask on instance_arn for DAEMON);
 * returns how many started. */
static int start_tasks (cp_ctx *ctx, svc_view *v, int dep, int count, const char *instance_arn)
{
  cJSON *doc = v->doc, *d = cJSON_GetArrayItem (v->deps, dep);
  char group[300], msg[1024];
  int started = 0;
  size_t len = 0;
  snprintf (group, sizeof group, "service:%s", cp_jstr (doc, "serviceName"));
  msg[0] = '\0';
  while (count > 0)
    {
      int k = count > BATCH ? BATCH : count;
      cp_fault fault = { 0 };
      _cleanup_json_ cJSON *req = cJSON_CreateObject (), *out = NULL;
      const char *keys[] = { "placementStrategy", "placementConstraints", "networkConfiguration" };
      if (req == NULL || !cJSON_AddStringToObject (req, "cluster", cp_jstr (doc, "_cluster"))
          || !cJSON_AddStringToObject (req, "taskDefinition", cp_jstr (d, "taskDefinition"))
          || !cJSON_AddStringToObject (req, "group", group)
          || !cJSON_AddStringToObject (req, "startedBy", cp_jstr (d, "id"))
          || !cJSON_AddStringToObject (req, "launchType", cp_jstr (doc, "launchType")))
        break;
      for (size_t i = 0; i < ARRAY_SIZE (keys); i++)
        if (cJSON_GetObjectItem (doc, keys[i])
            && !cJSON_AddItemToObject (req, keys[i],
                                       cJSON_Duplicate (cJSON_GetObjectItem (doc, keys[i]), true)))
          break;
      if (strcmp (cp_jstr (doc, "propagateTags"), "SERVICE") == 0
          && !cJSON_AddItemToObject (req, "tags",
                                     cJSON_Duplicate (cJSON_GetObjectItem (doc, "_tags"), true)))
        break;
      cJSON *list;
      int r;
      if (instance_arn)
        {
          r = (list = cJSON_AddArrayToObject (req, "containerInstances"))
                      && cJSON_AddItemToArray (list, cJSON_CreateString (instance_arn))
                  ? cp_start_task (ctx, req, &out, &fault)
                  : -1;
        }
      else
        {
          r = cJSON_AddNumberToObject (req, "count", k) ? cp_run_task (ctx, req, &out, &fault) : -1;
        }
      if (r < 0)
        {
          add_event (doc, "(service %s) failed to start tasks: %s", cp_jstr (doc, "serviceName"),
                     fault.type ? fault.message : "out of memory");
          break;
        }
      const cJSON *t, *f;
      cJSON_ArrayForEach (t, cJSON_GetObjectItem (out, "tasks"))
      {
        started++;
        if (len < sizeof msg - 60)
          len += (size_t)snprintf (msg + len, sizeof msg - len, " (task %s)",
                                   short_id (cp_jstr (t, "taskArn")));
      }
      f = cJSON_GetArrayItem (cJSON_GetObjectItem (out, "failures"), 0);
      if (f)
        {
          placement_event (doc, f);
          break;
        }
      count -= k;
    }
  if (started)
    add_event (doc, "(service %s) has started %d tasks:%s.", cp_jstr (doc, "serviceName"), started,
               msg);
  return started;
}

/* Asks a task to stop as the service scheduler (its agent reports STOPPED later); a task
 * whose instance is gone is STOPPED at once. */
static bool stop_task (cp_ctx *ctx, cJSON *doc, cp_task *t, const char *reason)
{
  cp_fault fault = { 0 };
  _cleanup_json_ cJSON *req = cJSON_CreateObject (), *out = NULL;
  cp_instance *ci = instance_of (ctx->model, t);
  if (ci == NULL || !ci->registered)
    {
      if (!cp_jset_str (t->doc, "stoppedReason", reason)
          || !cp_jset_str (t->doc, "stopCode", "ServiceSchedulerInitiated"))
        return false;
      return cp_task_stop_now (ctx, t, reason, &fault) == 0;
    }
  if (req == NULL || !cJSON_AddStringToObject (req, "cluster", cp_jstr (doc, "_cluster"))
      || !cJSON_AddStringToObject (req, "task", t->arn)
      || !cJSON_AddStringToObject (req, "reason", reason)
      || cp_stop_task (ctx, req, &out, &fault) < 0)
    return false;
  return cp_jset_str (t->doc, "stopCode", "ServiceSchedulerInitiated")
         && cp_task_save (ctx, t, &fault) == 0;
}

typedef struct stop_list
{
  char msg[1024];
  size_t len;
  int n;
} stop_list;

static void stop_one (cp_ctx *ctx, svc_view *v, svc_task *st, const char *reason, stop_list *sl)
{
  if (!stop_task (ctx, v->doc, st->t, reason))
    return;
  st->stopping = true;
  if (st->dep >= 0)
    v->count[st->dep]--;
  if (st->healthy)
    v->healthy--;
  st->healthy = false;
  sl->n++;
  if (sl->len < sizeof sl->msg - 60)
    sl->len
        += (size_t)snprintf (sl->msg + sl->len, sizeof sl->msg - sl->len, " (task %s)", st->t->id);
}

static int64_t percent_floor (int64_t n, int64_t pct)
{
  return n * pct / 100;
}

static int64_t percent_ceil (int64_t n, int64_t pct)
{
  return (n * pct + 99) / 100;
}

static const cJSON *deploy_config (const cJSON *doc)
{
  return cJSON_GetObjectItem (doc, "deploymentConfiguration");
}

static bool primary_frozen (const svc_view *v)
{
  return strcmp (cp_jstr (cJSON_GetArrayItem (v->deps, 0), "rolloutState"), "FAILED") == 0;
}

/* Stops old-deployment and draining-instance tasks: those not healthy at once, healthy ones
 * only while the healthy count stays at or above minimumHealthyPercent of desired. */
static void stop_replaced (cp_ctx *ctx, svc_view *v, int64_t min_healthy, bool olds, stop_list *sl)
{
  for (int healthy_pass = 0; healthy_pass < 2; healthy_pass++)
    for (size_t i = 0; i < v->n; i++)
      {
        svc_task *st = &v->v[i];
        bool old = st->dep != 0;
        if (st->stopping || !(st->draining || (old && olds)) || st->healthy != healthy_pass)
          continue;
        if (st->healthy && v->healthy - 1 < min_healthy)
          return;
        stop_one (ctx, v, st, "Scaling activity initiated by deployment", sl);
      }
}

/* REPLICA: excess primary tasks go first (pending ones first), then replaced ones within
 * minimumHealthyPercent, then new primary tasks within maximumPercent. */
static void act_replica (cp_ctx *ctx, svc_view *v, stop_list *sl)
{
  const cJSON *dc = deploy_config (v->doc);
  bool active = strcmp (cp_jstr (v->doc, "status"), "ACTIVE") == 0;
  int64_t desired = active ? jint (v->doc, "desiredCount") : 0;
  int64_t min_healthy = percent_ceil (desired, jint (dc, "minimumHealthyPercent"));
  int64_t max_total = percent_floor (desired, jint (dc, "maximumPercent"));
  int64_t good = 0;
  for (size_t i = 0; i < v->n; i++)
    good += v->v[i].dep == 0 && !v->v[i].stopping && !v->v[i].draining;
  for (int running_pass = 0; running_pass < 2 && good > desired; running_pass++)
    for (size_t i = 0; i < v->n && good > desired; i++)
      {
        svc_task *st = &v->v[i];
        if (st->dep == 0 && !st->stopping && !st->draining && st->running == running_pass)
          {
            stop_one (ctx, v, st, "Scaling activity initiated by deployment", sl);
            good--;
          }
      }
  if (!active)
    min_healthy = 0;
  stop_replaced (ctx, v, min_healthy, !primary_frozen (v) || !active, sl);
  if (!active || primary_frozen (v))
    return;
  int64_t want = desired - good, room = max_total - v->live;
  if (want > room)
    want = room;
  if (want > MAX_STARTS)
    want = MAX_STARTS;
  if (want > 0)
    start_tasks (ctx, v, 0, (int)want, NULL);
}

/* DAEMON: one primary task on every ACTIVE instance of the cluster; tasks on DRAINING
 * instances stop, old-deployment tasks stop within minimumHealthyPercent before their
 * instance gets a new one. */
static void act_daemon (cp_ctx *ctx, svc_view *v, stop_list *sl)
{
  cp_model *m = ctx->model;
  const char *cluster = cp_jstr (v->doc, "_cluster");
  bool active = strcmp (cp_jstr (v->doc, "status"), "ACTIVE") == 0;
  int64_t eligible = 0;
  for (size_t i = 0; i < m->n_inst; i++)
    eligible += m->inst[i]->placeable && strcmp (m->inst[i]->cluster, cluster) == 0;
  if (active && jint (v->doc, "desiredCount") != eligible)
    cp_jset_num (v->doc, "desiredCount", (double)eligible);
  int64_t min_healthy
      = active ? percent_ceil (eligible, jint (deploy_config (v->doc), "minimumHealthyPercent"))
               : 0;
  for (size_t i = 0; i < v->n; i++)
    if (!active && !v->v[i].stopping)
      stop_one (ctx, v, &v->v[i], "Service deleted", sl);
  stop_replaced (ctx, v, min_healthy, !primary_frozen (v), sl);
  if (!active || primary_frozen (v))
    return;
  for (size_t i = 0; i < m->n_inst; i++)
    {
      cp_instance *ci = m->inst[i];
      bool has = false;
      if (!ci->placeable || strcmp (ci->cluster, cluster) != 0)
        continue;
      for (size_t k = 0; k < v->n && !has; k++)
        has = v->v[k].t->inst == ci;
      if (!has)
        start_tasks (ctx, v, 0, 1, ci->arn);
    }
}

/* ECS's circuit breaker threshold (ServiceDeploymentCircuitBreaker.threshold in the API
 * reference): 0.5 * desired count, at least 3 and at most 200. */
static int64_t breaker_threshold (int64_t desired)
{
  int64_t t = (desired + 1) / 2;
  return t < 3 ? 3 : t > 200 ? 200 : t;
}

/* Trips the breaker on an IN_PROGRESS primary with too many failed tasks; with rollback, a
 * new primary deployment of the last COMPLETED task definition. True when deployments
 * changed. */
static bool check_breaker (cp_ctx *ctx, svc_view *v)
{
  cJSON *d = cJSON_GetArrayItem (v->deps, 0);
  const cJSON *cb = cJSON_GetObjectItem (deploy_config (v->doc), "deploymentCircuitBreaker");
  const char *name = cp_jstr (v->doc, "serviceName");
  if (d == NULL || !jbool (cb, "enable") || strcmp (cp_jstr (d, "rolloutState"), "IN_PROGRESS") != 0
      || jint (d, "failedTasks") < breaker_threshold (jint (v->doc, "desiredCount")))
    return false;
  char id[64];
  snprintf (id, sizeof id, "%s", cp_jstr (d, "id"));
  cp_jset_str (d, "rolloutState", "FAILED");
  cp_jset_str (d, "rolloutStateReason", "ECS deployment circuit breaker: tasks failed to start.");
  add_event (v->doc, "(service %s) (deployment %s) deployment failed: tasks failed to start.", name,
             id);
  const char *last = cp_jstr (v->doc, "_lastCompleted");
  cp_fault fault = { 0 };
  cJSON *body = NULL;
  char *arn = NULL;
  if (!jbool (cb, "rollback") || *last == '\0' || strcmp (last, cp_jstr (d, "taskDefinition")) == 0)
    return false;
  bool ok = resolve_taskdef (ctx, last, &arn, &body, &fault) == 0
            && add_deployment (v->doc, arn, body, &fault) == 0;
  free (arn);
  cJSON_Delete (body);
  if (!ok)
    return false;
  char reason[128];
  snprintf (reason, sizeof reason,
            "ECS deployment circuit breaker: rolling back to deploymentId %s.", id);
  cp_jset_str (cJSON_GetArrayItem (v->deps, 0), "rolloutStateReason", reason);
  add_event (v->doc, "(service %s) rolling back to the last completed deployment.", name);
  return true;
}

/* Writes the counts into the deployments and the service, drops old deployments without
 * tasks, completes the rollout and notes the steady state. */
static void update_status (svc_view *v)
{
  cJSON *doc = v->doc;
  const char *name = cp_jstr (doc, "serviceName");
  double now = (double)time (NULL);
  int running = 0, pending = 0;
  for (int i = 0; i < v->n_deps; i++)
    {
      cJSON *d = cJSON_GetArrayItem (v->deps, i);
      int64_t desired = i == 0 ? jint (doc, "desiredCount") : v->count[i];
      int64_t failed
          = jint (d, "failedTasks") > v->failed[i] ? jint (d, "failedTasks") : v->failed[i];
      if (jint (d, "runningCount") != v->running[i] || jint (d, "pendingCount") != v->pending[i]
          || jint (d, "desiredCount") != desired || jint (d, "failedTasks") != failed)
        {
          cp_jset_num (d, "runningCount", v->running[i]);
          cp_jset_num (d, "pendingCount", v->pending[i]);
          cp_jset_num (d, "desiredCount", (double)desired);
          cp_jset_num (d, "failedTasks", (double)failed);
          cp_jset_num (d, "updatedAt", now);
        }
      running += v->running[i];
      pending += v->pending[i];
    }
  /* A replaced deployment with no task left is over (INACTIVE: no longer listed). */
  for (int i = v->n_deps - 1; i > 0; i--)
    {
      bool left = false;
      for (size_t k = 0; k < v->n && !left; k++)
        left = v->v[k].dep == i;
      if (!left)
        cJSON_DeleteItemFromArray (v->deps, i);
    }
  v->n_deps = cJSON_GetArraySize (v->deps);
  if (jint (doc, "runningCount") != running)
    cp_jset_num (doc, "runningCount", running);
  if (jint (doc, "pendingCount") != pending)
    cp_jset_num (doc, "pendingCount", pending);
  cJSON *p = cJSON_GetArrayItem (v->deps, 0);
  bool active = strcmp (cp_jstr (doc, "status"), "ACTIVE") == 0;
  bool steady = active && p && v->n_deps == 1 && v->running[0] == jint (doc, "desiredCount")
                && (size_t)v->running[0] == v->n && pending == 0;
  if (steady && strcmp (cp_jstr (p, "rolloutState"), "IN_PROGRESS") == 0)
    {
      char reason[128];
      snprintf (reason, sizeof reason, "ECS deployment %s completed.", cp_jstr (p, "id"));
      cp_jset_str (p, "rolloutState", "COMPLETED");
      cp_jset_str (p, "rolloutStateReason", reason);
      cp_jset_str (doc, "_lastCompleted", cp_jstr (p, "taskDefinition"));
      add_event (doc, "(service %s) (deployment %s) deployment completed.", name,
                 cp_jstr (p, "id"));
    }
  if (steady && !jbool (doc, "_steady"))
    add_event (doc, "(service %s) has reached a steady state.", name);
  if (jbool (doc, "_steady") != steady)
    cp_jset (doc, "_steady", cJSON_CreateBool (steady));
  if (strcmp (cp_jstr (doc, "status"), "DRAINING") == 0 && v->n == 0)
    cp_jset_str (doc, "status", "INACTIVE");
}

static void reconcile_one (cp_ctx *ctx, cJSON *doc)
{
  svc_view v = { 0 };
  stop_list sl = { 0 };
  cp_fault fault = { 0 };
  _cleanup_free_ char *before = cJSON_PrintUnformatted (doc), *after = NULL;
  bool daemon = strcmp (cp_jstr (doc, "schedulingStrategy"), "DAEMON") == 0;
  if (before == NULL || !view_build (ctx, doc, &v))
    goto done;
  update_status (&v);
  if (check_breaker (ctx, &v) && !view_build (ctx, doc, &v))
    goto done;
  if (daemon)
    act_daemon (ctx, &v, &sl);
  else
    act_replica (ctx, &v, &sl);
  if (sl.n)
    add_event (doc, "(service %s) has stopped %d running tasks:%s.", cp_jstr (doc, "serviceName"),
               sl.n, sl.msg);
  if (!view_build (ctx, doc, &v))
    goto done;
  update_status (&v);
  after = cJSON_PrintUnformatted (doc);
  if (after && strcmp (before, after) != 0 && service_save (ctx, doc, &fault) < 0)
    blog_warn ("service %s: %s", cp_jstr (doc, "serviceName"), fault.message);
done:
  free (v.v);
}

void cp_services_reconcile (cp_ctx *ctx)
{
  cJSON *doc;
  if (ctx->model == NULL || ctx->model->services == NULL)
    return;
  cJSON_ArrayForEach (doc, ctx->model->services)
  {
    if (strcmp (cp_jstr (doc, "status"), "INACTIVE") != 0)
      reconcile_one (ctx, doc);
  }
}
