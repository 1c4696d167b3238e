/* The ECS API dispatcher: X-Amz-Target action -> handler, role checks, JSON decoding and ECS
 * error objects. Everything after authentication goes through cp_dispatch. */
#include "controlplane/model.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct cp_action
{
  const char *name;
  cp_handler handler;
  bool agent; /* an agent key may call it */
} cp_action;

/* The agent role may call only what a container instance needs: RegisterContainerInstance,
 * DeregisterContainerInstance, DiscoverPollEndpoint, Submit{Task,Container}StateChange,
 * SubmitAttachmentStateChanges (and the poll/telemetry endpoints when they exist). Those
 * handlers also check that an agent's key is the one bound to the instance it names. */
static const cp_action actions[] = {
  { "CreateCluster", cp_create_cluster, true }, /* the agent creates its cluster, as ECS's role */
  { "DeleteCluster", cp_delete_cluster, false },
  { "DescribeClusters", cp_describe_clusters, false },
  { "ListClusters", cp_list_clusters, false },
  { "RegisterTaskDefinition", cp_register_task_definition, false },
  { "DeregisterTaskDefinition", cp_deregister_task_definition, false },
  { "DescribeTaskDefinition", cp_describe_task_definition, false },
  { "ListTaskDefinitions", cp_list_task_definitions, false },
  { "ListTaskDefinitionFamilies", cp_list_task_definition_families, false },
  { "RegisterContainerInstance", cp_register_container_instance, true },
  { "DeregisterContainerInstance", cp_deregister_container_instance, true },
  { "DescribeContainerInstances", cp_describe_container_instances, false },
  { "ListContainerInstances", cp_list_container_instances, false },
  /* the agent may drain (or re-activate) its own instance: `berth-agent --drain` */
  { "UpdateContainerInstancesState", cp_update_container_instances_state, true },
  { "PutAttributes", cp_put_attributes, false },
  { "ListAttributes", cp_list_attributes, false },
  { "DeleteAttributes", cp_delete_attributes, false },
  { "RunTask", cp_run_task, false },
  { "StartTask", cp_start_task, false },
  { "StopTask", cp_stop_task, false },
  { "DescribeTasks", cp_describe_tasks, false },
  { "ListTasks", cp_list_tasks, false },
  { "DiscoverPollEndpoint", cp_discover_poll_endpoint, true },
  { "SubmitTaskStateChange", cp_submit_task_state_change, true },
  { "SubmitContainerStateChange", cp_submit_container_state_change, true },
  { "SubmitAttachmentStateChanges", cp_submit_attachment_state_changes, true },
  { "TagResource", cp_tag_resource, false },
  { "UntagResource", cp_untag_resource, false },
  { "ListTagsForResource", cp_list_tags_for_resource, false },
  { "CreateService", cp_create_service, false },
  { "UpdateService", cp_update_service, false },
  { "DeleteService", cp_delete_service, false },
  { "DescribeServices", cp_describe_services, false },
  { "ListServices", cp_list_services, false },
  /* Berth's own additions to the API (X-Amz-Target BerthControlV1.*, docs/controlplane.md). */
  { "BerthControlV1.DescribeServiceMetrics", cp_describe_service_metrics, false },
  /* The agent channel (X-Amz-Target BerthChannelV1.*, docs/protocol.md). */
  { "BerthChannelV1.Poll", cp_channel_poll_handler, true },
  { "BerthChannelV1.PublishMetrics", cp_channel_publish_metrics, true },
  { "BerthChannelV1.PublishHealth", cp_channel_publish_health, true },
  { "BerthChannelV1.PublishInstanceStatus", cp_channel_publish_instance_status, true },
};

int cp_fail (cp_fault *fault, const char *type, const char *fmt, ...)
{
  va_list ap;
  fault->type = type;
  fault->status = strcmp (type, "ServerException") == 0                       ? 500
                  : strcmp (type, "MissingAuthenticationTokenException") == 0 ? 403
                                                                              : 400;
  va_start (ap, fmt);
  vsnprintf (fault->message, sizeof fault->message, fmt, ap);
  va_end (ap);
  return -1;
}

int cp_fail_server (cp_fault *fault, berr **err)
{
  blog_berr (err);
  return cp_fail (fault, "ServerException", "Server error: the request could not be completed.");
}

char *cp_error_body (const char *type, const char *message)
{
  _cleanup_json_ cJSON *j = cJSON_CreateObject ();
  if (j == NULL || !cJSON_AddStringToObject (j, "__type", type)
      || !cJSON_AddStringToObject (j, "message", message))
    return NULL;
  return cJSON_PrintUnformatted (j);
}

int cp_ctx_open (const char *db_path, const char *region, const char *account_id, cp_ctx **out,
                 berr **err)
{
  cp_ctx *ctx = calloc (1, sizeof *ctx);
  if (ctx == NULL || (ctx->region = strdup (region)) == NULL
      || (ctx->account_id = strdup (account_id)) == NULL)
    {
      cp_ctx_free (ctx);
      return berr_sys (err, "allocate context");
    }
  ctx->role_duration_s = CP_DEFAULT_ROLE_DURATION_S;
  if (cp_store_open (db_path, &ctx->store, err) < 0 || cp_model_load (ctx, err) < 0
      || cp_channel_new (ctx, err) < 0)
    {
      cp_ctx_free (ctx);
      return -1;
    }
  *out = ctx;
  return 0;
}

void cp_ctx_free (cp_ctx *ctx)
{
  if (ctx == NULL)
    return;
  cp_channel_free (ctx->chan);
  cp_roles_free (ctx->roles);
  cp_model_free (ctx->model);
  cp_store_free (ctx->store);
  free (ctx->base_url);
  free (ctx->region);
  free (ctx->account_id);
  free (ctx);
}

static const cp_action *find_action (const char *name)
{
  for (size_t i = 0; i < ARRAY_SIZE (actions); i++)
    if (strcmp (actions[i].name, name) == 0)
      return &actions[i];
  return NULL;
}

/* Decodes the body: empty means {}; anything but one JSON object is a SerializationException. */
static int decode_body (const char *body, size_t len, cJSON **out, cp_fault *fault)
{
  _cleanup_berr_ berr *err = NULL;
  size_t i = 0;
  while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
    i++;
  if (i == len)
    return (*out = cJSON_CreateObject ()) ? 0 : cp_fail (fault, "ServerException", "out of memory");
  if (memchr (body, '\0', len) != NULL || bjson_parse (body, len, out, &err) < 0)
    return cp_fail (fault, "SerializationException", "Request body is not valid JSON.");
  if (!cJSON_IsObject (*out))
    {
      cJSON_Delete (*out);
      *out = NULL;
      return cp_fail (fault, "SerializationException", "Request body must be a JSON object.");
    }
  return 0;
}

static int run_action (cp_ctx *ctx, enum cp_role role, const char *name, const char *body,
                       size_t len, cJSON **out, cp_fault *fault)
{
  const cp_action *action = find_action (name);
  _cleanup_json_ cJSON *in = NULL;
  if (action == NULL)
    return cp_fail (fault, "UnknownOperationException", "Unknown operation %.100s", name);
  if (role == CP_ROLE_AGENT && !action->agent)
    return cp_fail (fault, "AccessDeniedException",
                    "The agent role is not authorized to perform: ecs:%s", action->name);
  if (decode_body (body, len, &in, fault) < 0)
    return -1;
  return action->handler (ctx, in, out, fault);
}

int cp_dispatch (cp_ctx *ctx, enum cp_role role, const char *action, const char *body, size_t len,
                 char **response)
{
  return cp_dispatch_as (ctx, role, "", action, body, len, response);
}

int cp_dispatch_as (cp_ctx *ctx, enum cp_role role, const char *access_key_id, const char *action,
                    const char *body, size_t len, char **response)
{
  cp_fault fault = { 0 };
  ctx->caller_role = role;
  snprintf (ctx->caller_key, sizeof ctx->caller_key, "%s", access_key_id);
  _cleanup_json_ cJSON *out = NULL;
  if (run_action (ctx, role, action, body, len, &out, &fault) < 0)
    {
      /* A store failure may have left the in-memory model ahead of the store: the store is
       * the truth, so read it again. */
      berr *err = NULL;
      if (fault.status == 500 && cp_model_reload (ctx, &err) < 0)
        blog_berr (&err);
      blog_debug ("%s: %s: %s", action, fault.type, fault.message);
      *response = cp_error_body (fault.type, fault.message);
      return *response ? fault.status : -1;
    }
  /* Whatever changed tasks, instances or services moves the services along (reads do not). */
  const char *verb = strncmp (action, "BerthControlV1.", 15) == 0 ? action + 15 : action;
  if (strncmp (verb, "Describe", 8) != 0 && strncmp (verb, "List", 4) != 0)
    {
      /* Stopped tasks are forgotten after an hour; checking once a minute is plenty. */
      int64_t now = (int64_t)time (NULL);
      if (now - ctx->last_expiry >= 60)
        {
          ctx->last_expiry = now;
          cp_tasks_expire (ctx, now, CP_STOPPED_RETENTION);
        }
      cp_services_reconcile (ctx);
    }
  *response = out ? cJSON_PrintUnformatted (out) : strdup ("{}");
  return *response ? 200 : -1;
}
