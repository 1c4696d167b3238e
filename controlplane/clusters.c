/* The Clusters API: CreateCluster, DeleteCluster, DescribeClusters, ListClusters, with the ECS
 * model's field names, validation and errors. */
#include "controlplane/model.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/strv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DESCRIBE 100

static void cluster_clearp (cp_cluster *c)
{
  cp_cluster_clear (c);
}
#define _cleanup_cluster_ __attribute__ ((cleanup (cluster_clearp)))

/* An optional string member; a value of another JSON type is a SerializationException, as the
 * service reports type mismatches. */
static int opt_str (const cJSON *in, const char *key, const char **out, cp_fault *fault)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (in, key);
  if (v == NULL || cJSON_IsNull (v))
    return 0;
  if (!cJSON_IsString (v))
    return cp_fail (fault, "SerializationException", "'%s' must be a string.", key);
  *out = v->valuestring;
  return 0;
}

static int opt_arr (const cJSON *in, const char *key, const cJSON **out, cp_fault *fault)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (in, key);
  if (v == NULL || cJSON_IsNull (v))
    return 0;
  if (!cJSON_IsArray (v))
    return cp_fail (fault, "SerializationException", "'%s' must be a list.", key);
  *out = v;
  return 0;
}

static bool valid_cluster_name (const char *name)
{
  size_t n = strlen (name);
  return n >= 1 && n <= 255
         && strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                          "0123456789-_")
                == n;
}

char *cp_cluster_arn (const cp_ctx *ctx, const char *name)
{
  char *arn = NULL;
  if (asprintf (&arn, "arn:aws:ecs:%s:%s:cluster/%s", ctx->region, ctx->account_id, name) < 0)
    return NULL;
  return arn;
}

/* A cluster reference is a name or this control plane's ARN of one. Writes the name to out and
 * returns true, or false when it cannot name one of our clusters. */
static bool cluster_ref_name (const cp_ctx *ctx, const char *ref, char out[256])
{
  char prefix[160];
  snprintf (prefix, sizeof prefix, "arn:aws:ecs:%s:%s:cluster/", ctx->region, ctx->account_id);
  if (strncmp (ref, prefix, strlen (prefix)) == 0)
    ref += strlen (prefix);
  else if (strncmp (ref, "arn:", 4) == 0)
    return false;
  if (!valid_cluster_name (ref))
    return false;
  strcpy (out, ref);
  return true;
}

int cp_cluster_require (cp_ctx *ctx, const cJSON *in, char name[256], cp_fault *fault)
{
  const char *ref = "default";
  _cleanup_cluster_ cp_cluster c = { 0 };
  berr *err = NULL;
  if (opt_str (in, "cluster", &ref, fault) < 0)
    return -1;
  int found
      = cluster_ref_name (ctx, ref, name) ? cp_store_get_cluster (ctx->store, name, &c, &err) : 0;
  if (found < 0)
    return cp_fail_server (fault, &err);
  if (found == 0 || strcmp (c.status, "ACTIVE") != 0)
    return cp_fail (fault, "ClusterNotFoundException", "Cluster not found.");
  return 0;
}

/* Adds key (a JSON array stored as text) to obj; stored text that does not parse reads as []. */
static bool add_json_array (cJSON *obj, const char *key, const char *text)
{
  cJSON *v = cJSON_Parse (text ? text : "[]");
  if (v == NULL || !cJSON_IsArray (v))
    {
      cJSON_Delete (v);
      v = cJSON_CreateArray ();
    }
  return v && cJSON_AddItemToObject (obj, key, v);
}

/* The ECS Cluster shape. Tags and settings come back only when asked for (include), as ECS
 * does; counts come from the in-memory model. */
static cJSON *cluster_json (const cp_ctx *ctx, const cp_cluster *c, bool tags, bool settings)
{
  cp_cluster_counts n = cp_model_cluster_counts (ctx->model, c->name);
  _cleanup_free_ char *arn = cp_cluster_arn (ctx, c->name);
  _cleanup_json_ cJSON *j = cJSON_CreateObject ();
  if (arn == NULL || j == NULL || !cJSON_AddStringToObject (j, "clusterArn", arn)
      || !cJSON_AddStringToObject (j, "clusterName", c->name)
      || !cJSON_AddStringToObject (j, "status", c->status)
      || !cJSON_AddNumberToObject (j, "registeredContainerInstancesCount", n.instances)
      || !cJSON_AddNumberToObject (j, "runningTasksCount", n.running)
      || !cJSON_AddNumberToObject (j, "pendingTasksCount", n.pending)
      || !cJSON_AddNumberToObject (j, "activeServicesCount", n.services)
      || !cJSON_AddArrayToObject (j, "statistics")
      || !cJSON_AddArrayToObject (j, "capacityProviders")
      || !cJSON_AddArrayToObject (j, "defaultCapacityProviderStrategy")
      || (tags && !add_json_array (j, "tags", c->tags_json))
      || (settings && !add_json_array (j, "settings", c->settings_json)))
    return NULL;
  return steal_ptr (&j);
}
/* Cluster settings: only containerInsights exists (enabled, disabled or enhanced). */
static int parse_settings (const cJSON *in, char **out, cp_fault *fault)
{
  const cJSON *settings = NULL, *s;
  const char *value = "disabled";
  if (opt_arr (in, "settings", &settings, fault) < 0)
    return -1;
  cJSON_ArrayForEach (s, settings)
  {
    const char *name = NULL, *v = NULL;
    if (!cJSON_IsObject (s))
      return cp_fail (fault, "SerializationException", "Each setting must be an object.");
    if (opt_str (s, "name", &name, fault) < 0 || opt_str (s, "value", &v, fault) < 0)
      return -1;
    if (name == NULL || strcmp (name, "containerInsights") != 0)
      return cp_fail (fault, "InvalidParameterException",
                      "Cluster setting name must be 'containerInsights'.");
    if (v == NULL
        || (strcmp (v, "enabled") != 0 && strcmp (v, "disabled") != 0
            && strcmp (v, "enhanced") != 0))
      return cp_fail (fault, "InvalidParameterException",
                      "containerInsights must be enabled, disabled or enhanced.");
    value = v;
  }
  if (asprintf (out, "[{\"name\":\"containerInsights\",\"value\":\"%s\"}]", value) < 0)
    return cp_fail_oom (fault);
  return 0;
}

static int respond_cluster (cp_ctx *ctx, const cp_cluster *c, bool extras, cJSON **out,
                            cp_fault *fault)
{
  cJSON *cj = cluster_json (ctx, c, extras, extras);
  if (cj == NULL || (*out = cJSON_CreateObject ()) == NULL)
    {
      cJSON_Delete (cj);
      return cp_fail_oom (fault);
    }
  cJSON_AddItemToObject (*out, "cluster", cj);
  return 0;
}

/* Creating a cluster that is already ACTIVE returns it unchanged, as ECS does. */
int cp_create_cluster (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  const char *name = "default";
  _cleanup_cluster_ cp_cluster c = { 0 };
  _cleanup_free_ char *tags = NULL, *settings = NULL;
  berr *err = NULL;
  if (opt_str (in, "clusterName", &name, fault) < 0)
    return -1;
  if (!valid_cluster_name (name))
    return cp_fail (fault, "InvalidParameterException",
                    "Cluster name can have up to 255 characters: letters (uppercase and "
                    "lowercase), numbers, hyphens and underscores.");
  if (cp_tags_parse (cJSON_GetObjectItemCaseSensitive (in, "tags"), &tags, fault) < 0
      || parse_settings (in, &settings, fault) < 0)
    return -1;
  int found = cp_store_get_cluster (ctx->store, name, &c, &err);
  if (found < 0)
    return cp_fail_server (fault, &err);
  if (found && strcmp (c.status, "ACTIVE") == 0)
    return respond_cluster (ctx, &c, true, out, fault);
  cp_cluster_clear (&c);
  cp_cluster fresh = { .name = (char *)name,
                       .status = (char *)"ACTIVE",
                       .tags_json = tags,
                       .settings_json = settings,
                       .created_at = time (NULL) };
  if (cp_store_put_cluster (ctx->store, &fresh, &err) < 0)
    return cp_fail_server (fault, &err);
  return respond_cluster (ctx, &fresh, true, out, fault);
}

/* Marks the cluster INACTIVE (DescribeClusters still shows it, as ECS does for a while).
 * A cluster with registered instances or tasks not yet STOPPED cannot be deleted. */
int cp_delete_cluster (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  const char *ref = NULL;
  char name[256];
  _cleanup_cluster_ cp_cluster c = { 0 };
  berr *err = NULL;
  if (opt_str (in, "cluster", &ref, fault) < 0)
    return -1;
  if (ref == NULL)
    return cp_fail (fault, "InvalidParameterException", "cluster is required.");
  int found
      = cluster_ref_name (ctx, ref, name) ? cp_store_get_cluster (ctx->store, name, &c, &err) : 0;
  if (found < 0)
    return cp_fail_server (fault, &err);
  if (found == 0 || strcmp (c.status, "ACTIVE") != 0)
    return cp_fail (fault, "ClusterNotFoundException", "Cluster not found.");
  cp_cluster_counts n = cp_model_cluster_counts (ctx->model, name);
  if (n.services > 0)
    return cp_fail (fault, "ClusterContainsServicesException",
                    "The Cluster cannot be deleted while Services are active.");
  if (n.instances > 0)
    return cp_fail (fault, "ClusterContainsContainerInstancesException",
                    "The Cluster cannot be deleted while Container Instances are active or "
                    "draining.");
  if (n.running + n.pending + n.stopping > 0)
    return cp_fail (fault, "ClusterContainsTasksException",
                    "The Cluster cannot be deleted while Tasks are active.");
  free (c.status);
  if ((c.status = strdup ("INACTIVE")) == NULL)
    return cp_fail_oom (fault);
  if (cp_store_put_cluster (ctx->store, &c, &err) < 0)
    return cp_fail_server (fault, &err);
  return respond_cluster (ctx, &c, false, out, fault);
}

/* include: ATTACHMENTS, CONFIGURATIONS, SETTINGS, STATISTICS, TAGS. */
static int parse_include (const cJSON *in, bool *tags, bool *settings, cp_fault *fault)
{
  static const char *const known[]
      = { "ATTACHMENTS", "CONFIGURATIONS", "SETTINGS", "STATISTICS", "TAGS" };
  const cJSON *include = NULL, *i;
  if (opt_arr (in, "include", &include, fault) < 0)
    return -1;
  cJSON_ArrayForEach (i, include)
  {
    bool ok = false;
    if (!cJSON_IsString (i))
      return cp_fail (fault, "SerializationException", "'include' must be a list of strings.");
    for (size_t k = 0; k < ARRAY_SIZE (known); k++)
      ok |= strcmp (i->valuestring, known[k]) == 0;
    if (!ok)
      return cp_fail (fault, "InvalidParameterException", "Unknown include value '%.64s'.",
                      i->valuestring);
    *tags |= strcmp (i->valuestring, "TAGS") == 0;
    *settings |= strcmp (i->valuestring, "SETTINGS") == 0;
  }
  return 0;
}

static int describe_one (cp_ctx *ctx, const char *ref, bool tags, bool settings, cJSON *clusters,
                         cJSON *failures, cp_fault *fault)
{
  char name[256];
  _cleanup_cluster_ cp_cluster c = { 0 };
  berr *err = NULL;
  int found
      = cluster_ref_name (ctx, ref, name) ? cp_store_get_cluster (ctx->store, name, &c, &err) : 0;
  if (found < 0)
    return cp_fail_server (fault, &err);
  if (found)
    {
      cJSON *cj = cluster_json (ctx, &c, tags, settings);
      return cj && cJSON_AddItemToArray (clusters, cj) ? 0 : cp_fail_oom (fault);
    }
  /* A failure names the ARN the reference would have had. */
  _cleanup_free_ char *arn
      = strncmp (ref, "arn:", 4) == 0 ? strdup (ref) : cp_cluster_arn (ctx, ref);
  cJSON *f = cJSON_CreateObject ();
  if (arn == NULL || f == NULL || !cJSON_AddStringToObject (f, "arn", arn)
      || !cJSON_AddStringToObject (f, "reason", "MISSING") || !cJSON_AddItemToArray (failures, f))
    {
      cJSON_Delete (f);
      return cp_fail_oom (fault);
    }
  return 0;
}

/* No clusters listed means the default cluster, as in ECS. */
int cp_describe_clusters (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  const cJSON *refs = NULL, *r;
  bool tags = false, settings = false;
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  cJSON *clusters = cJSON_AddArrayToObject (res, "clusters");
  cJSON *failures = cJSON_AddArrayToObject (res, "failures");
  if (clusters == NULL || failures == NULL)
    return cp_fail_oom (fault);
  if (opt_arr (in, "clusters", &refs, fault) < 0 || parse_include (in, &tags, &settings, fault) < 0)
    return -1;
  if (cJSON_GetArraySize (refs) > MAX_DESCRIBE)
    return cp_fail (fault, "InvalidParameterException",
                    "At most %d clusters can be described at once.", MAX_DESCRIBE);
  cJSON_ArrayForEach (r, refs)
  {
    if (!cJSON_IsString (r))
      return cp_fail (fault, "SerializationException", "'clusters' must be a list of strings.");
  }
  if (cJSON_GetArraySize (refs) == 0)
    {
      if (describe_one (ctx, "default", tags, settings, clusters, failures, fault) < 0)
        return -1;
    }
  cJSON_ArrayForEach (r, refs)
  {
    if (describe_one (ctx, r->valuestring, tags, settings, clusters, failures, fault) < 0)
      return -1;
  }
  *out = steal_ptr (&res);
  return 0;
}

/* A token names the last cluster of the previous page (cp_token_add). */
static int decode_token (const char *token, char name[256], cp_fault *fault)
{
  if (cp_token_decode (token, name, 256, fault) < 0)
    return -1;
  return valid_cluster_name (name)
             ? 0
             : cp_fail (fault, "InvalidParameterException", "Invalid nextToken.");
}

static int page_response (cp_ctx *ctx, char **names, bool more, cJSON **out, cp_fault *fault)
{
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  cJSON *arns = cJSON_AddArrayToObject (res, "clusterArns");
  size_t n = 0;
  if (arns == NULL)
    return cp_fail_oom (fault);
  for (; names[n]; n++)
    {
      _cleanup_free_ char *arn = cp_cluster_arn (ctx, names[n]);
      if (arn == NULL || !cJSON_AddItemToArray (arns, cJSON_CreateString (arn)))
        return cp_fail_oom (fault);
    }
  if (more && n > 0 && cp_token_add (res, names[n - 1], fault) < 0)
    return -1;
  *out = steal_ptr (&res);
  return 0;
}

int cp_list_clusters (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  const char *token = NULL;
  char after[256] = "";
  int64_t limit = 100;
  _cleanup_strv_ char **names = NULL;
  bool more = false;
  berr *err = NULL;
  const cJSON *max = cJSON_GetObjectItemCaseSensitive (in, "maxResults");
  if (max && !cJSON_IsNull (max))
    {
      if (!cJSON_IsNumber (max))
        return cp_fail (fault, "SerializationException", "'maxResults' must be an integer.");
      /* Range first: converting an out-of-range double to an integer is undefined. */
      if (!(max->valuedouble >= 1 && max->valuedouble <= 100))
        return cp_fail (fault, "InvalidParameterException",
                        "maxResults must be between 1 and 100.");
      limit = (int64_t)max->valuedouble;
      if ((double)limit != max->valuedouble)
        return cp_fail (fault, "SerializationException", "'maxResults' must be an integer.");
    }
  if (opt_str (in, "nextToken", &token, fault) < 0
      || (token && decode_token (token, after, fault) < 0))
    return -1;
  if (cp_store_list_clusters (ctx->store, token ? after : NULL, (int)limit, &names, &more, &err)
      < 0)
    return cp_fail_server (fault, &err);
  return page_response (ctx, names, more, out, fault);
}
