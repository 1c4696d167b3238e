/* The agent-facing actions: DiscoverPollEndpoint and the Submit*StateChange calls through which
 * an agent reports its tasks, each allowed only for the key bound to the task's instance. */
#include "controlplane/model.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ack (cJSON **out, cp_fault *fault)
{
  if ((*out = cJSON_CreateObject ()) == NULL
      || !cJSON_AddStringToObject (*out, "acknowledgment", "true"))
    return cp_fail_oom (fault);
  return 0;
}

static bool known_status (const char *s)
{
  static const char *const all[]
      = { "PROVISIONING", "PENDING",        "ACTIVATING", "RUNNING", "DEACTIVATING",
          "STOPPING",     "DEPROVISIONING", "STOPPED",    "DELETED", "NONE" };
  for (size_t i = 0; i < ARRAY_SIZE (all); i++)
    if (strcmp (s, all[i]) == 0)
      return true;
  return false;
}

/* One debug line per accepted task state change: the task, its status and each container's
 * name=status[/exitCode], an audit trail of what the agents reported (the end-to-end tests compare
 * it with what the containers did). */
static void log_accepted (const cJSON *in, bool changed)
{
  if (blog_get_level () < BLOG_DEBUG)
    return;
  char line[1536];
  size_t n = (size_t)snprintf (line, sizeof line, "%s %s", cp_jstr (in, "task"),
                               cp_jstr (in, "status")[0] ? cp_jstr (in, "status") : "-");
  const cJSON *c;
  cJSON_ArrayForEach (c, cJSON_GetObjectItem (in, "containers"))
  {
    const cJSON *code = cJSON_GetObjectItem (c, "exitCode");
    if (n < sizeof line)
      n += (size_t)snprintf (line + n, sizeof line - n, " %s=%s", cp_jstr (c, "containerName"),
                             cp_jstr (c, "status"));
    if (n < sizeof line && cJSON_IsNumber (code))
      n += (size_t)snprintf (line + n, sizeof line - n, "/%d", code->valueint);
  }
  blog_debug ("task state change %s: %s", changed ? "accepted" : "repeated, nothing changed", line);
}

/* The task named by the request, if the caller's key may report for its instance. */
static int bound_task (cp_ctx *ctx, const cJSON *in, cp_task **t, cp_fault *fault)
{
  char cluster[256];
  if (cp_require_task (ctx, in, cluster, t, fault) < 0)
    return -1;
  cp_instance *ci = cp_instance_by_id (ctx->model, (*t)->instance_id);
  return cp_caller_may (ctx, ci ? ci->key : "", fault);
}

int cp_discover_poll_endpoint (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  const char *ref = NULL, *cluster = "default";
  const char *url = ctx->request_url[0]  ? ctx->request_url
                    : ctx->base_url      ? ctx->base_url
                                         : "http://" CP_DEFAULT_LISTEN "/";
  if (cp_opt_str (in, "containerInstance", &ref, fault) < 0
      || cp_opt_str (in, "cluster", &cluster, fault) < 0)
    return -1;
  if (ref)
    {
      char name[256];
      if (cp_cluster_require (ctx, in, name, fault) < 0)
        return -1;
      cp_instance *ci = cp_instance_find (ctx, name, ref);
      if (ci == NULL)
        return cp_fail (fault, "InvalidParameterException",
                        "The referenced container instance was not found.");
      if (cp_caller_may (ctx, ci->key, fault) < 0)
        return -1;
    }
  if ((*out = cJSON_CreateObject ()) == NULL || !cJSON_AddStringToObject (*out, "endpoint", url)
      || !cJSON_AddStringToObject (*out, "telemetryEndpoint", url)
      || !cJSON_AddStringToObject (*out, "serviceConnectEndpoint", url))
    return cp_fail_oom (fault);
  return 0;
}

/* Applies one container's reported state to the task document. */
static int apply_container (cp_task *t, const cJSON *ch, const char *name_key, cp_fault *fault)
{
  const char *name = NULL, *status = NULL, *reason = NULL, *rid = NULL, *digest = NULL;
  const cJSON *bindings = NULL, *c, *found = NULL;
  int64_t exit_code = -1;
  bool has_exit = cJSON_IsNumber (cJSON_GetObjectItemCaseSensitive (ch, "exitCode"));
  if (cp_opt_str (ch, name_key, &name, fault) < 0 || cp_opt_str (ch, "status", &status, fault) < 0
      || cp_opt_str (ch, "reason", &reason, fault) < 0
      || cp_opt_str (ch, "runtimeId", &rid, fault) < 0
      || cp_opt_str (ch, "imageDigest", &digest, fault) < 0
      || cp_opt_int (ch, "exitCode", INT32_MIN, INT32_MAX, &exit_code, fault) < 0
      || cp_opt_arr (ch, "networkBindings", &bindings, fault) < 0)
    return -1;
  cJSON_ArrayForEach (c, cJSON_GetObjectItem (t->doc, "containers"))
  {
    if (name && strcmp (cp_jstr (c, "name"), name) == 0)
      found = c;
  }
  if (found == NULL)
    return cp_fail (fault, "InvalidParameterException", "The task has no container named %.255s.",
                    name ? name : "(none)");
  if (status && !known_status (status))
    return cp_fail (fault, "InvalidParameterException", "Unknown status '%.32s'.", status);
  cJSON *ct = (cJSON *)found;
  if ((status && !cp_jset_str (ct, "lastStatus", status))
      || (reason && !cp_jset_str (ct, "reason", reason))
      || (rid && !cp_jset_str (ct, "runtimeId", rid))
      || (digest && !cp_jset_str (ct, "imageDigest", digest))
      || (has_exit && !cp_jset_num (ct, "exitCode", (double)exit_code))
      || (bindings && !cp_jset (ct, "networkBindings", cJSON_Duplicate (bindings, true))))
    return cp_fail_oom (fault);
  return 0;
}

static int apply_attachments (cp_task *t, const cJSON *list, cp_fault *fault)
{
  const cJSON *a;
  cJSON *att;
  cJSON_ArrayForEach (a, list)
  {
    const char *arn = NULL, *status = NULL;
    bool done = false;
    if (!cJSON_IsObject (a))
      return cp_fail (fault, "SerializationException", "Each attachment is a structure.");
    if (cp_opt_str (a, "attachmentArn", &arn, fault) < 0
        || cp_opt_str (a, "status", &status, fault) < 0)
      return -1;
    if (arn == NULL || status == NULL)
      return cp_fail (fault, "InvalidParameterException", "attachmentArn and status are required.");
    const char *id = strrchr (arn, '/') ? strrchr (arn, '/') + 1 : arn;
    cJSON_ArrayForEach (att, cJSON_GetObjectItem (t->doc, "attachments"))
    {
      if (strcmp (cp_jstr (att, "id"), id) == 0)
        {
          if (!cp_jset_str (att, "status", status))
            return cp_fail_oom (fault);
          done = true;
        }
    }
    if (!done)
      return cp_fail (fault, "InvalidParameterException", "Attachment %.100s not found.", arn);
  }
  return 0;
}

static int set_time (cp_task *t, const cJSON *in, const char *key, cp_fault *fault)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (in, key);
  if (v == NULL || cJSON_IsNull (v))
    return 0;
  if (!cJSON_IsNumber (v))
    return cp_fail (fault, "SerializationException", "'%s' must be a timestamp.", key);
  return cp_jset_num (t->doc, key, v->valuedouble) ? 0 : cp_fail_oom (fault);
}

int cp_submit_task_state_change (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  cp_task *t;
  const char *status = NULL, *reason = NULL;
  const cJSON *containers = NULL, *attachments = NULL, *managed = NULL, *c;
  if (bound_task (ctx, in, &t, fault) < 0 || cp_opt_str (in, "status", &status, fault) < 0
      || cp_opt_str (in, "reason", &reason, fault) < 0
      || cp_opt_arr (in, "containers", &containers, fault) < 0
      || cp_opt_arr (in, "attachments", &attachments, fault) < 0
      || cp_opt_arr (in, "managedAgents", &managed, fault) < 0)
    return -1;
  if (status && !known_status (status))
    return cp_fail (fault, "InvalidParameterException", "Unknown status '%.32s'.", status);
  /* An agent killed while its report was in flight sends it again after its restart (it never
   * saw the answer): a change that alters nothing is acknowledged without being applied twice. */
  _cleanup_json_ cJSON *before = cJSON_Duplicate (t->doc, true);
  if (before == NULL)
    return cp_fail_oom (fault);
  cJSON_ArrayForEach (c, containers)
  {
    if (!cJSON_IsObject (c))
      return cp_fail (fault, "SerializationException", "Each container change is a structure.");
    if (apply_container (t, c, "containerName", fault) < 0)
      return -1;
  }
  if (apply_attachments (t, attachments, fault) < 0 || set_time (t, in, "pullStartedAt", fault) < 0
      || set_time (t, in, "pullStoppedAt", fault) < 0
      || set_time (t, in, "executionStoppedAt", fault) < 0)
    return -1;
  /* A task that stops without being asked to: its essential container exited. */
  if (status && strcmp (status, "STOPPED") == 0 && !cJSON_GetObjectItem (t->doc, "stopCode")
      && (!cp_jset_str (t->doc, "stoppedReason", reason ? reason : "Essential container exited")
          || !cp_jset_str (t->doc, "stopCode", "EssentialContainerExited")))
    return cp_fail_oom (fault);
  if (status && cp_task_set_status (ctx, t, status, fault) < 0)
    return -1;
  bool changed = !cJSON_Compare (before, t->doc, true);
  if (changed && cp_task_save (ctx, t, fault) < 0)
    return -1;
  log_accepted (in, changed);
  return ack (out, fault);
}

int cp_submit_container_state_change (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  cp_task *t;
  if (bound_task (ctx, in, &t, fault) < 0 || apply_container (t, in, "containerName", fault) < 0
      || cp_task_save (ctx, t, fault) < 0)
    return -1;
  return ack (out, fault);
}

/* Finds the task holding attachment id (the tail of its ARN). */
static cp_task *task_of_attachment (cp_ctx *ctx, const char *cluster, const char *arn)
{
  const char *id = strrchr (arn, '/') ? strrchr (arn, '/') + 1 : arn;
  const cJSON *att;
  for (size_t i = 0; i < ctx->model->n_task; i++)
    {
      cp_task *t = ctx->model->task[i];
      if (strcmp (t->cluster, cluster) != 0)
        continue;
      cJSON_ArrayForEach (att, cJSON_GetObjectItem (t->doc, "attachments"))
      {
        if (strcmp (cp_jstr (att, "id"), id) == 0)
          return t;
      }
    }
  return NULL;
}

int cp_submit_attachment_state_changes (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256];
  const cJSON *list = NULL, *a;
  if (cp_cluster_require (ctx, in, cluster, fault) < 0
      || cp_opt_arr (in, "attachments", &list, fault) < 0)
    return -1;
  if (cJSON_GetArraySize (list) == 0)
    return cp_fail (fault, "InvalidParameterException", "attachments is required.");
  /* Check every change first, so a refused one leaves nothing half applied. */
  for (int pass = 0; pass < 2; pass++)
    cJSON_ArrayForEach (a, list)
    {
      const char *arn = cJSON_IsObject (a) ? cp_jstr (a, "attachmentArn") : "";
      cp_task *t = task_of_attachment (ctx, cluster, arn);
      if (t == NULL)
        return cp_fail (fault, "InvalidParameterException", "Attachment %.100s not found.", arn);
      cp_instance *ci = cp_instance_by_id (ctx->model, t->instance_id);
      _cleanup_json_ cJSON *one = cJSON_CreateArray ();
      if (one == NULL || !cJSON_AddItemReferenceToArray (one, (cJSON *)a))
        return cp_fail_oom (fault);
      if (cp_caller_may (ctx, ci ? ci->key : "", fault) < 0)
        return -1;
      if (pass == 1 && (apply_attachments (t, one, fault) < 0 || cp_task_save (ctx, t, fault) < 0))
        return -1;
    }
  return ack (out, fault);
}
