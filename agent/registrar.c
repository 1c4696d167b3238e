/* The registration flow on the event loop: RegisterContainerInstance with the stored instance
 * ARN, CreateCluster when the cluster is missing, backoff on retryable failures, the identity
 * stored before anyone is told the host is registered. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "lib/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CALL_TIMEOUT_MS 30000L

struct agent_registrar
{
  agent_registrar_opts o;
  agent_registered_fn done;
  void *userdata;
  agent_backoff backoff;
  sd_event_source *retry_timer;
  char *instance_arn; /* stored one, sent when re-registering */
  bool created_cluster;
  unsigned attempts;
};

static int attempt (agent_registrar *r, berr **err);

/* Tells the owner, who may free r: nothing touches r afterwards. */
static void finish (agent_registrar *r, int status, const char *arn, const char *error)
{
  agent_registration res = { .exit_status = status, .instance_arn = arn, .error = error };
  if (error)
    blog_error ("registration failed: %s", error);
  r->done (&res, r->userdata);
}

static void retry_why (agent_registrar *r, const char *what, const char *why);

/* A call that could not even be sent (no credentials yet: cloud-init or an operator may write
 * them after the agent started, and the chain re-reads the file) is retried like a failed one. */
static void attempt_or_retry (agent_registrar *r)
{
  _cleanup_berr_ berr *err = NULL;
  if (attempt (r, &err) < 0)
    retry_why (r, "RegisterContainerInstance", err->msg);
}

static int on_retry_timer (sd_event_source *s, uint64_t usec, void *userdata)
{
  attempt_or_retry (userdata);
  return 0;
}

static void retry_later (agent_registrar *r, const char *what, const agent_http_result *res)
{
  retry_why (r, what, agent_http_why (res));
}

static void retry_why (agent_registrar *r, const char *what, const char *why)
{
  uint64_t delay = agent_backoff_next (&r->backoff);
  blog_warn ("%s failed (%s), retrying in %.1f s", what, why, (double)delay / 1e6);
  int e = r->retry_timer ? sd_event_source_set_time_relative (r->retry_timer, delay)
                         : sd_event_add_time_relative (r->o.ev, &r->retry_timer, CLOCK_MONOTONIC,
                                                       delay, 0, on_retry_timer, r);
  if (e >= 0)
    e = sd_event_source_set_enabled (r->retry_timer, SD_EVENT_ONESHOT);
  if (e < 0)
    finish (r, AGENT_EXIT_RESTART, NULL, "cannot arm the registration retry timer");
}

/* "Type: message" of a failed call, for the terminal error. */
static void describe (const char *call, const agent_http_result *res, char *buf, size_t size)
{
  snprintf (buf, size, "%s: %s%s%s (HTTP %ld)", call, res->error_type ? res->error_type : "error",
            res->error_message ? ": " : "", res->error_message ? res->error_message : "",
            res->status);
}

static void on_create_done (const agent_http_result *res, void *userdata)
{
  agent_registrar *r = userdata;
  char msg[1024];
  if (res->curl_code == 0 && res->status == 200)
    {
      blog_info ("created cluster %s", r->o.cfg->cluster);
      attempt_or_retry (r);
      return;
    }
  if (agent_http_retryable (res))
    {
      r->created_cluster = false;
      {
        retry_later (r, "CreateCluster", res);
        return;
      }
    }
  describe ("CreateCluster", res, msg, sizeof msg);
  finish (r, AGENT_EXIT_TERMINAL, NULL, msg);
}

/* The cluster's name for CreateCluster: ECS_CLUSTER may be an ARN. */
static const char *cluster_name (const char *cluster)
{
  const char *slash = strstr (cluster, ":cluster/");
  return slash ? slash + strlen (":cluster/") : cluster;
}

static int create_cluster (agent_registrar *r, berr **err)
{
  _cleanup_json_ cJSON *body = cJSON_CreateObject ();
  if (body == NULL
      || !cJSON_AddStringToObject (body, "clusterName", cluster_name (r->o.cfg->cluster)))
    return berr_make (err, ENOMEM, "CreateCluster: out of memory");
  r->created_cluster = true;
  blog_info ("cluster %s does not exist; creating it", r->o.cfg->cluster);
  return agent_http_call (r->o.http, AGENT_ECS_TARGET_PREFIX "CreateCluster", body, CALL_TIMEOUT_MS,
                          on_create_done, r, err);
}

/* Each attribute sent should come back; a difference is logged, not fatal (the control plane
 * may add attributes of its own). */
static void check_attributes (const cJSON *sent, const cJSON *instance)
{
  const cJSON *a, *b;
  const cJSON *got = cJSON_GetObjectItemCaseSensitive (instance, "attributes");
  cJSON_ArrayForEach (a, cJSON_GetObjectItemCaseSensitive (sent, "attributes"))
  {
    const char *name = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (a, "name"));
    bool found = false;
    cJSON_ArrayForEach (b, got)
    {
      const char *n = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (b, "name"));
      found |= name && n && strcmp (name, n) == 0;
    }
    if (!found)
      blog_warn ("the control plane did not record attribute %s", name ? name : "?");
  }
}

static void on_register_done (const agent_http_result *res, void *userdata);

static int attempt (agent_registrar *r, berr **err)
{
  _cleanup_json_ cJSON *req = NULL;
  if (agent_register_request (r->o.cfg, r->o.facts, r->instance_arn, NULL, &req, err) < 0)
    return -1;
  r->attempts++;
  return agent_http_call (r->o.http, AGENT_ECS_TARGET_PREFIX "RegisterContainerInstance", req,
                          CALL_TIMEOUT_MS, on_register_done, r, err);
}

static void registered (agent_registrar *r, const agent_http_result *res)
{
  const cJSON *ci = cJSON_GetObjectItemCaseSensitive (res->body, "containerInstance");
  const char *arn
      = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (ci, "containerInstanceArn"));
  _cleanup_berr_ berr *err = NULL;
  _cleanup_json_ cJSON *sent = NULL;
  if (arn == NULL || *arn == '\0')
    {
      retry_later (r, "RegisterContainerInstance (no containerInstanceArn in the answer)", res);
      return;
    }
  if (agent_register_request (r->o.cfg, r->o.facts, NULL, "x", &sent, &err) == 0)
    check_attributes (sent, ci);
  if (agent_store_set_identity (r->o.store, r->o.cfg->cluster, arn, &err) < 0)
    {
      finish (r, AGENT_EXIT_RESTART, NULL, err->msg);
      return;
    }
  blog_info ("registered in cluster %s as %s", r->o.cfg->cluster, arn);
  agent_backoff_reset (&r->backoff);
  finish (r, 0, arn, NULL);
}

static void on_register_done (const agent_http_result *res, void *userdata)
{
  agent_registrar *r = userdata;
  _cleanup_berr_ berr *err = NULL;
  char msg[1024];
  if (res->curl_code == 0 && res->status == 200)
    {
      registered (r, res);
      return;
    }
  if (res->error_type && strcmp (res->error_type, "ClusterNotFoundException") == 0
      && !r->created_cluster)
    {
      if (create_cluster (r, &err) < 0)
        finish (r, AGENT_EXIT_RESTART, NULL, err->msg);
      return;
    }
  if (agent_http_retryable (res))
    {
      retry_later (r, "RegisterContainerInstance", res);
      return;
    }
  describe ("RegisterContainerInstance", res, msg, sizeof msg);
  finish (r, AGENT_EXIT_TERMINAL, NULL, msg);
}

int agent_registrar_start (const agent_registrar_opts *o, agent_registered_fn done, void *userdata,
                           agent_registrar **out, berr **err)
{
  agent_identity id;
  if (agent_store_get_identity (o->store, &id, err) < 0)
    return berr_wrap (err, "registration");
  if (id.cluster && strcmp (id.cluster, o->cfg->cluster) != 0)
    {
      berr_make (err, EINVAL, "registered in cluster `%s`, configured for `%s`", id.cluster,
                 o->cfg->cluster);
      agent_identity_clear (&id);
      return -1;
    }
  agent_registrar *r = calloc (1, sizeof *r);
  if (r == NULL)
    {
      agent_identity_clear (&id);
      return berr_sys (err, "allocate");
    }
  r->o = *o;
  r->done = done;
  r->userdata = userdata;
  r->instance_arn = steal_ptr (&id.container_instance_arn);
  agent_identity_clear (&id);
  agent_backoff_init (&r->backoff, AGENT_BACKOFF_REGISTER, o->seed);
  attempt_or_retry (r);
  *out = r;
  return 0;
}

void agent_registrar_free (agent_registrar *r)
{
  if (r == NULL)
    return;
  agent_http_cancel (r->o.http, r);
  sd_event_source_disable_unref (r->retry_timer);
  free (r->instance_arn);
  free (r);
}

unsigned agent_registrar_attempts (const agent_registrar *r)
{
  return r->attempts;
}
