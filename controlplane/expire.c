/* Forgetting STOPPED tasks after a retention period, as ECS does (stopped tasks stay visible
 * for about an hour), so the model and the store do not grow with every task ever run. */
#include "controlplane/model.h"
#include "lib/log.h"

#include <string.h>

int cp_tasks_expire (cp_ctx *ctx, int64_t now, int64_t retention)
{
  cp_model *m = ctx->model;
  size_t kept = 0;
  int gone = 0;
  berr *err = NULL;
  for (size_t i = 0; i < m->n_task; i++)
    {
      cp_task *t = m->task[i];
      const cJSON *at = cJSON_GetObjectItemCaseSensitive (t->doc, "stoppedAt");
      bool old = !t->holding && strcmp (cp_jstr (t->doc, "lastStatus"), "STOPPED") == 0
                 && cJSON_IsNumber (at) && (int64_t)at->valuedouble + retention < now;
      /* Kept in memory when the store refuses, so the two never disagree. */
      if (old && cp_store_delete_doc (ctx->store, CP_DOC_TASK, t->id, &err) == 0)
        {
          cp_task_free (t);
          gone++;
          continue;
        }
      if (old)
        blog_berr (&err);
      m->task[kept++] = t; /* order kept: ListTasks pages by it */
    }
  m->n_task = kept;
  return gone;
}
