/* State reports of the task engine: SubmitTaskStateChange bodies written to the persisted outbox
 * in the same commit as the state they describe, then sent in order, one at a time, retried with
 * the outbox backoff until accepted, and never sent again once accepted. */
#include "agent/engine_internal.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/strv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static double secs (int64_t ns)
{
  return (double)ns / 1e9;
}

static cJSON *container_change (const eng_container *c)
{
  cJSON *o = cJSON_CreateObject ();
  if (o == NULL)
    return NULL;
  cJSON_AddStringToObject (o, "containerName", c->name);
  cJSON_AddStringToObject (o, "runtimeId", c->id);
  cJSON_AddStringToObject (o, "status",
                           c->known >= ES_RUNNING ? eng_status_name (c->known) : "PENDING");
  if (c->digest)
    cJSON_AddStringToObject (o, "imageDigest", c->digest);
  if (c->known == ES_STOPPED && c->exit_code >= 0)
    cJSON_AddNumberToObject (o, "exitCode", c->exit_code);
  if (c->reason)
    cJSON_AddStringToObject (o, "reason", c->reason);
  cJSON_AddItemToObject (o, "networkBindings",
                         c->bindings ? cJSON_Duplicate (c->bindings, true) : cJSON_CreateArray ());
  return o;
}

static cJSON *task_change (const eng_task *t)
{
  cJSON *b = cJSON_CreateObject ();
  cJSON *list = b ? cJSON_AddArrayToObject (b, "containers") : NULL;
  int64_t pull_start = 0, pull_stop = 0;
  if (list == NULL)
    {
      cJSON_Delete (b);
      return NULL;
    }
  cJSON_AddStringToObject (b, "cluster", t->e->o.cluster ? t->e->o.cluster : "default");
  cJSON_AddStringToObject (b, "task", t->arn);
  cJSON_AddStringToObject (b, "status", eng_status_name (t->known));
  if (t->known == ES_STOPPED && t->reason)
    cJSON_AddStringToObject (b, "reason", t->reason);
  for (size_t i = 0; i < t->n; i++)
    {
      const eng_container *c = &t->c[i];
      cJSON_AddItemToArray (list, container_change (c));
      if (c->pull_started_ns && (pull_start == 0 || c->pull_started_ns < pull_start))
        pull_start = c->pull_started_ns;
      if (c->pull_stopped_ns > pull_stop)
        pull_stop = c->pull_stopped_ns;
    }
  if (pull_start)
    cJSON_AddNumberToObject (b, "pullStartedAt", secs (pull_start));
  if (pull_stop)
    cJSON_AddNumberToObject (b, "pullStoppedAt", secs (pull_stop));
  if (t->known == ES_STOPPED && t->stopped_ns)
    cJSON_AddNumberToObject (b, "executionStoppedAt", secs (t->stopped_ns));
  return b;
}

/* One commit: the containers' records, the task's known (= reported) status, the report. */
int eng_report (eng_task *t, berr **err)
{
  agent_store *s = t->e->o.store;
  agent_task_rec r = { 0 };
  _cleanup_json_ cJSON *body = task_change (t);
  _cleanup_free_ char *text = body ? cJSON_PrintUnformatted (body) : NULL;
  if (text == NULL)
    return berr_make (err, ENOMEM, "task state change");
  if (agent_store_begin (s, err) < 0)
    return -1;
  int ret = agent_store_get_task (s, t->arn, &r, err);
  for (size_t i = 0; ret == 0 && i < t->n; i++)
    ret = eng_save_container (&t->c[i], err);
  if (ret == 0)
    {
      free (r.known_status);
      r.known_status = strdup (eng_status_name (t->known));
      ret = agent_store_put_task (s, &r, err);
    }
  if (ret == 0)
    ret = agent_store_outbox_push (s, t->arn, "task", text, NULL, err);
  if (ret == 0)
    ret = agent_store_commit (s, err);
  agent_task_rec_clear (&r);
  if (ret < 0)
    {
      agent_store_rollback (s);
      return berr_wrap (err, "task %s: record %s", t->arn, eng_status_name (t->known));
    }
  blog_info ("task %s: %s", t->arn, eng_status_name (t->known));
  t->reported = t->known;
  t->dirty = false;
  eng_send_kick (t->e);
  return 0;
}

static int on_retry (sd_event_source *s, uint64_t usec, void *userdata)
{
  agent_engine *e = userdata;
  (void)s, (void)usec;
  e->send_timer = sd_event_source_disable_unref (e->send_timer);
  eng_send_kick (e);
  return 0;
}

static void on_sent (const agent_http_result *res, void *userdata)
{
  agent_engine *e = userdata;
  _cleanup_berr_ berr *err = NULL;
  e->sending = false;
  bool ok = res->status == 200;
  if (!ok && agent_http_retryable (res))
    {
      uint64_t d = agent_backoff_next (&e->backoff);
      blog_warn ("SubmitTaskStateChange: %s; retrying in %llu ms", agent_http_why (res),
                 (unsigned long long)(d / 1000));
      sd_event_add_time_relative (e->o.ev, &e->send_timer, CLOCK_MONOTONIC, d, 0, on_retry, e);
      return;
    }
  if (!ok) /* refused for good: keeping it would block every later report of the task */
    blog_error ("SubmitTaskStateChange refused (%s: %s); dropping the report",
                res->error_type ? res->error_type : "?",
                res->error_message ? res->error_message : "");
  agent_backoff_reset (&e->backoff);
  if (agent_store_outbox_mark_sent (e->o.store, e->sending_id, &err) < 0)
    blog_berr (&err);
  else if (ok)
    e->sent++;
  eng_send_kick (e);
}

/* Sends the oldest unsent report of the task whose oldest entry is oldest, if idle. */
void eng_send_kick (agent_engine *e)
{
  _cleanup_berr_ berr *err = NULL;
  _cleanup_strv_ char **tasks = NULL;
  agent_outbox_entry ob = { 0 };
  if (e->o.http == NULL || e->sending || e->send_timer)
    return;
  if (agent_store_outbox_tasks (e->o.store, &tasks, &err) < 0)
    {
      blog_berr (&err);
      return;
    }
  if (tasks == NULL || tasks[0] == NULL
      || agent_store_outbox_next (e->o.store, tasks[0], &ob, &err) < 0)
    return;
  _cleanup_json_ cJSON *body = cJSON_Parse (ob.body);
  e->sending_id = ob.id;
  if (body == NULL)
    body = cJSON_CreateObject ();
  if (agent_http_call (e->o.http, AGENT_ECS_TARGET_PREFIX "SubmitTaskStateChange", body, 10000,
                       on_sent, e, &err)
      < 0)
    {
      blog_berr (&err);
      sd_event_add_time_relative (e->o.ev, &e->send_timer, CLOCK_MONOTONIC,
                                  agent_backoff_next (&e->backoff), 0, on_retry, e);
    }
  else
    e->sending = true;
  agent_outbox_entry_clear (&ob);
}

void eng_report_free (agent_engine *e)
{
  if (e->o.http && e->sending)
    agent_http_cancel (e->o.http, e);
  e->send_timer = sd_event_source_disable_unref (e->send_timer);
}
