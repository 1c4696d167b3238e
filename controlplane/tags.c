/* TagResource, UntagResource, ListTagsForResource for clusters, task definitions, tasks and
 * container instances, found by ARN. */
#include "controlplane/model.h"
#include "lib/cleanup.h"
#include "lib/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where a resource's tags live and how to write them back. */
typedef struct tagged
{
  char type[32];
  cp_cluster cluster;
  cp_taskdef td;
  cp_instance *ci;
  cp_task *task;
  cJSON *tags; /* parsed, owned here for clusters and task definitions */
} tagged;

static void tagged_clear (tagged *r)
{
  cp_cluster_clear (&r->cluster);
  cp_taskdef_clear (&r->td);
  if (r->ci == NULL && r->task == NULL)
    cJSON_Delete (r->tags);
}
#define _cleanup_tagged_ __attribute__ ((cleanup (tagged_clear)))

/* cluster/<name>, task-definition/<family>:<rev>, task/<cluster>/<id>,
 * container-instance/<cluster>/<id>. */
static int find_tagged (cp_ctx *ctx, const cJSON *in, tagged *r, cp_fault *fault)
{
  const char *arn = NULL;
  char rest[512];
  berr *err = NULL;
  int found = 0;
  if (cp_opt_str (in, "resourceArn", &arn, fault) < 0)
    return -1;
  if (arn == NULL)
    return cp_fail (fault, "InvalidParameterException", "resourceArn is required.");
  if (!cp_arn_parse (ctx, arn, r->type, rest))
    return cp_fail (fault, "InvalidParameterException", "Invalid resource ARN '%.200s'.", arn);
  char *slash = strchr (rest, '/');
  if (strcmp (r->type, "cluster") == 0)
    {
      found = slash ? 0 : cp_store_get_cluster (ctx->store, rest, &r->cluster, &err);
      if (found < 0)
        return cp_fail_server (fault, &err);
      found = found && strcmp (r->cluster.status, "ACTIVE") == 0;
      if (!found)
        return cp_fail (fault, "ClusterNotFoundException", "Cluster not found.");
      r->tags = cJSON_Parse (r->cluster.tags_json);
    }
  else if (strcmp (r->type, "task-definition") == 0)
    {
      if (strchr (rest, ':') == NULL || (found = cp_taskdef_resolve (ctx, arn, &r->td, fault)) < 0)
        return found < 0 ? -1 : cp_fail (fault, "InvalidParameterException", "Invalid ARN.");
      r->tags = found ? cJSON_Parse (r->td.tags_json) : NULL;
    }
  else if ((strcmp (r->type, "task") == 0 || strcmp (r->type, "container-instance") == 0) && slash)
    {
      *slash = '\0';
      if (r->type[0] == 't')
        r->task = cp_task_find (ctx, rest, arn);
      else
        r->ci = cp_instance_find (ctx, rest, arn);
      r->tags = r->task ? cJSON_GetObjectItem (r->task->doc, "tags")
                : r->ci ? cJSON_GetObjectItem (r->ci->doc, "tags")
                        : NULL;
      found = r->task || r->ci;
    }
  else
    return cp_fail (fault, "InvalidParameterException",
                    "Tags are supported on clusters, task definitions, tasks and container "
                    "instances.");
  if (!found)
    return cp_fail (fault, "ResourceNotFoundException", "The specified resource was not found.");
  if (!cJSON_IsArray (r->tags))
    return cp_fail_oom (fault);
  return 0;
}

static int save_tagged (cp_ctx *ctx, tagged *r, cp_fault *fault)
{
  _cleanup_free_ char *text = cJSON_PrintUnformatted (r->tags);
  berr *err = NULL;
  if (text == NULL)
    return cp_fail_oom (fault);
  if (r->task)
    return cp_task_save (ctx, r->task, fault);
  if (r->ci)
    return cp_instance_save (ctx, r->ci, fault);
  if (r->type[0] == 'c')
    {
      free (r->cluster.tags_json);
      r->cluster.tags_json = steal_ptr (&text);
      return cp_store_put_cluster (ctx->store, &r->cluster, &err) < 0 ? cp_fail_server (fault, &err)
                                                                      : 0;
    }
  return cp_store_set_taskdef_tags (ctx->store, r->td.family, r->td.revision, text, &err) < 0
             ? cp_fail_server (fault, &err)
             : 0;
}

static void remove_key (cJSON *tags, const char *key)
{
  for (int k = cJSON_GetArraySize (tags) - 1; k >= 0; k--)
    if (strcmp (cp_jstr (cJSON_GetArrayItem (tags, k), "key"), key) == 0)
      cJSON_DeleteItemFromArray (tags, k);
}

int cp_tag_resource (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  _cleanup_tagged_ tagged r = { 0 };
  _cleanup_free_ char *text = NULL;
  _cleanup_json_ cJSON *add = NULL;
  const cJSON *t;
  const cJSON *given = cJSON_GetObjectItemCaseSensitive (in, "tags");
  if (cp_tags_parse (given, &text, fault) < 0 || find_tagged (ctx, in, &r, fault) < 0)
    return -1;
  if ((add = cJSON_Parse (text)) == NULL)
    return cp_fail_oom (fault);
  if (cJSON_GetArraySize (add) == 0)
    return cp_fail (fault, "InvalidParameterException", "tags can not be empty.");
  cJSON_ArrayForEach (t, add)
  {
    remove_key (r.tags, cp_jstr (t, "key"));
    if (!cJSON_AddItemToArray (r.tags, cJSON_Duplicate (t, true)))
      return cp_fail_oom (fault);
  }
  if (cJSON_GetArraySize (r.tags) > 50)
    return cp_fail (fault, "InvalidParameterException", "A resource can have at most 50 tags.");
  if (save_tagged (ctx, &r, fault) < 0)
    return -1;
  return (*out = cJSON_CreateObject ()) ? 0 : cp_fail_oom (fault);
}

int cp_untag_resource (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  _cleanup_tagged_ tagged r = { 0 };
  const cJSON *keys = NULL, *k;
  if (cp_opt_strlist (in, "tagKeys", 50, &keys, fault) < 0 || find_tagged (ctx, in, &r, fault) < 0)
    return -1;
  if (cJSON_GetArraySize (keys) == 0)
    return cp_fail (fault, "InvalidParameterException", "tagKeys can not be empty.");
  cJSON_ArrayForEach (k, keys)
  {
    remove_key (r.tags, k->valuestring);
  }
  if (save_tagged (ctx, &r, fault) < 0)
    return -1;
  return (*out = cJSON_CreateObject ()) ? 0 : cp_fail_oom (fault);
}

int cp_list_tags_for_resource (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  _cleanup_tagged_ tagged r = { 0 };
  if (find_tagged (ctx, in, &r, fault) < 0)
    return -1;
  if ((*out = cJSON_CreateObject ()) == NULL
      || !cJSON_AddItemToObject (*out, "tags", cJSON_Duplicate (r.tags, true)))
    return cp_fail_oom (fault);
  return 0;
}
