/* The Attributes API: PutAttributes, ListAttributes, DeleteAttributes on container instances
 * (the only targetType ECS has), stored in the instance documents. */
#include "controlplane/model.h"
#include "lib/cleanup.h"
#include "lib/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each attribute's target, checked before anything changes. */
static int resolve_targets (cp_ctx *ctx, const char *cluster, const cJSON *attrs,
                            cp_instance **targets, cp_fault *fault)
{
  const cJSON *a;
  int i = 0;
  cJSON_ArrayForEach (a, attrs)
  {
    const char *ref = cp_jstr (a, "targetId");
    cp_instance *ci = cp_instance_find (ctx, cluster, ref);
    if (ci == NULL || strcmp (cp_jstr (ci->doc, "status"), "INACTIVE") == 0)
      return cp_fail (fault, "TargetNotFoundException",
                      "Could not find %.200s. TargetId should be a container instance ARN or "
                      "id in the cluster.",
                      ref);
    targets[i++] = ci;
  }
  return 0;
}

static int attr_args (cp_ctx *ctx, const cJSON *in, char cluster[256], const cJSON **attrs,
                      cp_instance ***targets, cp_fault *fault)
{
  if (cp_cluster_require (ctx, in, cluster, fault) < 0
      || cp_opt_arr (in, "attributes", attrs, fault) < 0
      || cp_attributes_check (*attrs, true, fault) < 0)
    return -1;
  if (cJSON_GetArraySize (*attrs) == 0)
    return cp_fail (fault, "InvalidParameterException", "attributes can not be empty.");
  if ((*targets = calloc ((size_t)cJSON_GetArraySize (*attrs), sizeof **targets)) == NULL)
    return cp_fail_oom (fault);
  return resolve_targets (ctx, cluster, *attrs, *targets, fault);
}

/* Writes every touched instance in one transaction; returns the attributes as given. */
static int finish (cp_ctx *ctx, const cJSON *attrs, cp_instance **targets, cJSON **out,
                   cp_fault *fault)
{
  berr *err = NULL;
  int n = cJSON_GetArraySize (attrs);
  if (cp_store_begin (ctx->store, &err) < 0)
    return cp_fail_server (fault, &err);
  for (int i = 0; i < n; i++)
    if (cp_instance_save (ctx, targets[i], fault) < 0)
      {
        cp_store_rollback (ctx->store);
        return -1;
      }
  if (cp_store_commit (ctx->store, &err) < 0)
    {
      cp_store_rollback (ctx->store);
      return cp_fail_server (fault, &err);
    }
  if ((*out = cJSON_CreateObject ()) == NULL
      || !cJSON_AddItemToObject (*out, "attributes", cJSON_Duplicate (attrs, true)))
    return cp_fail_oom (fault);
  return 0;
}

int cp_put_attributes (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256];
  const cJSON *attrs = NULL, *a;
  _cleanup_free_ cp_instance **targets = NULL;
  int i = 0;
  if (attr_args (ctx, in, cluster, &attrs, &targets, fault) < 0)
    return -1;
  cJSON_ArrayForEach (a, attrs)
  {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (a, "value");
    if (cp_instance_set_attribute (targets[i++], cp_jstr (a, "name"),
                                   cJSON_IsString (v) ? v->valuestring : NULL)
        < 0)
      return cp_fail_oom (fault);
  }
  return finish (ctx, attrs, targets, out, fault);
}

int cp_delete_attributes (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256];
  const cJSON *attrs = NULL, *a;
  _cleanup_free_ cp_instance **targets = NULL;
  int i = 0;
  if (attr_args (ctx, in, cluster, &attrs, &targets, fault) < 0)
    return -1;
  cJSON_ArrayForEach (a, attrs)
  {
    cJSON *list = cJSON_GetObjectItemCaseSensitive (targets[i++]->doc, "attributes");
    for (int k = cJSON_GetArraySize (list) - 1; k >= 0; k--)
      if (strcmp (cp_jstr (cJSON_GetArrayItem (list, k), "name"), cp_jstr (a, "name")) == 0)
        cJSON_DeleteItemFromArray (list, k);
  }
  return finish (ctx, attrs, targets, out, fault);
}

static bool attr_matches (const cJSON *a, const char *name, const char *value)
{
  return (name == NULL || strcmp (cp_jstr (a, "name"), name) == 0)
         && (value == NULL || strcmp (cp_jstr (a, "value"), value) == 0);
}

static int list_args (const cJSON *in, const char **name, const char **value, cp_fault *fault)
{
  const char *type = NULL;
  if (cp_opt_str (in, "targetType", &type, fault) < 0
      || cp_opt_str (in, "attributeName", name, fault) < 0
      || cp_opt_str (in, "attributeValue", value, fault) < 0)
    return -1;
  if (type == NULL || strcmp (type, "container-instance") != 0)
    return cp_fail (fault, "InvalidParameterException", "targetType must be container-instance.");
  if (*value && *name == NULL)
    return cp_fail (fault, "InvalidParameterException",
                    "attributeValue can only be given with attributeName.");
  return 0;
}

/* Tokens are "<instance id>/<attribute index>" of the last one returned. */
int cp_list_attributes (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  char cluster[256], after[128];
  const char *name = NULL, *value = NULL;
  int64_t limit;
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  cJSON *list = cJSON_AddArrayToObject (res, "attributes");
  if (list == NULL)
    return cp_fail_oom (fault);
  if (cp_cluster_require (ctx, in, cluster, fault) < 0 || list_args (in, &name, &value, fault) < 0
      || cp_page_args (in, &limit, after, sizeof after, fault) < 0)
    return -1;
  cp_model *m = ctx->model;
  bool skipping = *after != '\0';
  int n = 0;
  for (size_t i = 0; i < m->n_inst; i++)
    {
      cp_instance *ci = m->inst[i];
      const cJSON *a;
      int k = -1;
      if (strcmp (ci->cluster, cluster) != 0
          || strcmp (cp_jstr (ci->doc, "status"), "INACTIVE") == 0)
        continue;
      cJSON_ArrayForEach (a, cJSON_GetObjectItemCaseSensitive (ci->doc, "attributes"))
      {
        char here[128];
        k++;
        snprintf (here, sizeof here, "%s/%d", ci->id, k);
        if (skipping)
          {
            skipping = strcmp (here, after) != 0;
            continue;
          }
        if (!attr_matches (a, name, value))
          continue;
        if (n == limit)
          {
            cJSON *prev = cJSON_GetArrayItem (list, n - 1);
            if (cp_token_add (res, cp_jstr (prev, "_pos"), fault) < 0)
              return -1;
            goto done;
          }
        cJSON *o = cJSON_Duplicate (a, true);
        if (o == NULL || !cJSON_AddItemToArray (list, o)
            || !cJSON_AddStringToObject (o, "targetType", "container-instance")
            || !cJSON_AddStringToObject (o, "targetId", ci->arn)
            || !cJSON_AddStringToObject (o, "_pos", here))
          return cp_fail_oom (fault);
        n++;
      }
    }
  if (skipping)
    return cp_fail (fault, "InvalidParameterException", "Invalid nextToken.");
done:;
  cJSON *o;
  cJSON_ArrayForEach (o, list)
  {
    cJSON_DeleteItemFromObjectCaseSensitive (o, "_pos");
  }
  *out = steal_ptr (&res);
  return 0;
}
