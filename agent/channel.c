/* The agent's side of the channel (docs/protocol.md): DiscoverPollEndpoint, then the long-poll
 * loop on sd-event; a payload's tasks are stored (with their seqNum) before they are acked. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "lib/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHANNEL_TARGET "BerthChannelV1."
#define DISCOVER_TIMEOUT_MS 30000L

struct agent_channel
{
  agent_channel_opts o;
  char *cluster, *instance_arn;
  agent_http *poll_http; /* to the discovered endpoint */
  agent_backoff backoff;
  sd_event_source *retry_timer;
  uint64_t polls, messages;
  bool ended;
};

static void start_discover (agent_channel *ch);

static const char *json_str_or (const cJSON *o, const char *key, const char *fallback)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, key);
  return cJSON_IsString (v) ? v->valuestring : fallback;
}

/* ---- parsing (shared with the fuzzer) ---- */

int agent_poll_parse (const cJSON *body, agent_poll_msg *msgs, size_t max, size_t *n, berr **err)
{
  const cJSON *list = cJSON_GetObjectItemCaseSensitive (body, "messages"), *m;
  *n = 0;
  if (!cJSON_IsArray (list))
    return berr_make (err, EPROTO, "Poll answer: `messages` is not a list");
  cJSON_ArrayForEach (m, list)
  {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive (m, "type");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive (m, "message");
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive (msg, "seqNum");
    if (*n == max)
      return berr_make (err, EPROTO, "Poll answer: more than %zu messages", max);
    if (!cJSON_IsString (type) || !cJSON_IsObject (msg))
      return berr_make (err, EPROTO, "Poll answer: message %zu has no type or body", *n);
    msgs[*n].type = type->valuestring;
    msgs[*n].message = msg;
    msgs[*n].seq = -1;
    if (seq
        && (!cJSON_IsNumber (seq) || seq->valuedouble < 1 || seq->valuedouble > 9e15
            || seq->valuedouble != floor (seq->valuedouble)))
      return berr_make (err, EPROTO, "Poll answer: message %zu has a bad seqNum", *n);
    if (seq)
      msgs[*n].seq = (int64_t)seq->valuedouble;
    if (strcmp (type->valuestring, "PayloadMessage") == 0)
      {
        const cJSON *tasks = cJSON_GetObjectItemCaseSensitive (msg, "tasks"), *t;
        if (!cJSON_IsArray (tasks) || msgs[*n].seq < 0)
          return berr_make (err, EPROTO, "Poll answer: PayloadMessage without tasks or seqNum");
        cJSON_ArrayForEach (t, tasks)
        {
          if (!cJSON_IsString (cJSON_GetObjectItemCaseSensitive (t, "arn"))
              || !cJSON_IsString (cJSON_GetObjectItemCaseSensitive (t, "desiredStatus")))
            return berr_make (err, EPROTO, "Poll answer: a task without arn or desiredStatus");
        }
      }
    (*n)++;
  }
  return 0;
}

/* ---- storing a payload ---- */

/* Desired status only moves forward: RUNNING never replaces STOPPED. */
static const char *desired_after (const char *stored, const char *sent)
{
  if (stored && strcmp (stored, "STOPPED") == 0)
    return stored;
  return sent;
}

static int store_task (agent_store *s, const cJSON *t, berr **err)
{
  const char *arn = cJSON_GetObjectItemCaseSensitive (t, "arn")->valuestring;
  const char *desired = cJSON_GetObjectItemCaseSensitive (t, "desiredStatus")->valuestring;
  agent_task_rec old = { 0 }, rec = { 0 };
  _cleanup_free_ char *body = cJSON_PrintUnformatted (t);
  _cleanup_berr_ berr *missing = NULL;
  if (body == NULL)
    return berr_make (err, ENOMEM, "store task: out of memory");
  int r = agent_store_get_task (s, arn, &old, &missing);
  if (r < 0 && missing->errnum != ENOENT)
    {
      *err = steal_ptr (&missing);
      return -1;
    }
  rec.arn = (char *)arn;
  rec.desired_status = (char *)desired_after (r == 0 ? old.desired_status : NULL, desired);
  rec.known_status = r == 0 ? old.known_status : "NONE";
  rec.body = body;
  r = agent_store_put_task (s, &rec, err);
  agent_task_rec_clear (&old);
  return r;
}

/* The payload's tasks and its seqNum in one durable commit; a repeat is harmless. */
static int store_payload (agent_channel *ch, const agent_poll_msg *m, berr **err)
{
  int64_t acked;
  const cJSON *t;
  if (agent_store_get_acked_seq (ch->o.store, &acked, err) < 0)
    return -1;
  if (m->seq <= acked)
    return 0;
  if (agent_store_begin (ch->o.store, err) < 0)
    return -1;
  cJSON_ArrayForEach (t, cJSON_GetObjectItemCaseSensitive (m->message, "tasks"))
  {
    if (store_task (ch->o.store, t, err) < 0)
      goto fail;
  }
  if (agent_store_set_acked_seq (ch->o.store, m->seq, err) < 0
      || agent_store_commit (ch->o.store, err) < 0)
    goto fail;
  return 1;
fail:
  agent_store_rollback (ch->o.store);
  return -1;
}

/* A TaskManifestMessage's tasks listed STOPPED that the store still has running: their desired
 * status moves forward (as a payload would move it). A task missing from the list is left alone
 * (docs/protocol.md: only a later payload stops it). Returns how many were changed. */
static int store_manifest_stops (agent_channel *ch, const cJSON *message, berr **err)
{
  const cJSON *t;
  int changed = 0;
  cJSON_ArrayForEach (t, cJSON_GetObjectItemCaseSensitive (message, "tasks"))
  {
    const cJSON *arn = cJSON_GetObjectItemCaseSensitive (t, "taskArn");
    const cJSON *desired = cJSON_GetObjectItemCaseSensitive (t, "desiredStatus");
    agent_task_rec rec = { 0 };
    _cleanup_berr_ berr *missing = NULL;
    if (!cJSON_IsString (arn) || !cJSON_IsString (desired)
        || strcmp (desired->valuestring, "STOPPED") != 0
        || agent_store_get_task (ch->o.store, arn->valuestring, &rec, &missing) < 0)
      continue;
    int r = 0;
    if (rec.desired_status == NULL || strcmp (rec.desired_status, "STOPPED") != 0)
      {
        free (rec.desired_status);
        rec.desired_status = strdup ("STOPPED");
        r = rec.desired_status ? agent_store_put_task (ch->o.store, &rec, err)
                               : berr_make (err, ENOMEM, "manifest");
        changed += r == 0;
      }
    agent_task_rec_clear (&rec);
    if (r < 0)
      return -1;
  }
  return changed;
}

/* Messages without tasks still count as received once handed over. */
static int store_seq (agent_channel *ch, int64_t seq, berr **err)
{
  int64_t acked;
  if (seq < 0 || agent_store_get_acked_seq (ch->o.store, &acked, err) < 0 || seq <= acked)
    return 0;
  return agent_store_set_acked_seq (ch->o.store, seq, err);
}

/* ---- the loop ---- */

static void end (agent_channel *ch, int status, const char *why)
{
  if (ch->ended)
    return;
  ch->ended = true;
  blog_error ("channel: %s", why);
  if (ch->o.end)
    ch->o.end (status, ch->o.userdata);
}

static int on_retry (sd_event_source *s, uint64_t usec, void *userdata)
{
  start_discover (userdata);
  return 0;
}

/* Later, with the reconnect backoff: rediscovers the endpoint and polls again. */
static void reconnect_later (agent_channel *ch, const char *why)
{
  uint64_t delay = agent_backoff_next (&ch->backoff);
  blog_warn ("channel: %s; reconnecting in %.2f s", why, (double)delay / 1e6);
  int e = ch->retry_timer ? sd_event_source_set_time_relative (ch->retry_timer, delay)
                          : sd_event_add_time_relative (ch->o.ev, &ch->retry_timer, CLOCK_MONOTONIC,
                                                        delay, 0, on_retry, ch);
  if (e >= 0)
    e = sd_event_source_set_enabled (ch->retry_timer, SD_EVENT_ONESHOT);
  if (e < 0)
    end (ch, AGENT_EXIT_RESTART, "cannot arm the reconnect timer");
}

static void poll_once (agent_channel *ch);

static void handle (agent_channel *ch, const agent_poll_msg *m, bool *closed)
{
  const agent_channel_handlers *h = &ch->o.handlers;
  _cleanup_berr_ berr *err = NULL;
  ch->messages++;
  if (strcmp (m->type, "PayloadMessage") == 0)
    {
      int r = store_payload (ch, m, &err);
      if (r < 0)
        {
          /* Not stored, so not acked (nor anything after it): the server sends it again. */
          blog_berr (&err);
          *closed = true;
          reconnect_later (ch, "a payload could not be stored");
          return;
        }
      if (h->payload)
        h->payload (m->message, r == 0, ch->o.userdata);
      return;
    }
  if (strcmp (m->type, "CloseMessage") == 0)
    {
      const char *reason = json_str_or (m->message, "reason", "");
      *closed = true;
      if (strcmp (reason, "deregistered") == 0)
        end (ch, AGENT_EXIT_TERMINAL, "the container instance was deregistered");
      else
        reconnect_later (ch, reason[0] ? reason : "closed by the server");
      return;
    }
  if (strcmp (m->type, "HeartbeatMessage") == 0 && h->heartbeat)
    h->heartbeat (m->message, ch->o.userdata);
  else if (strcmp (m->type, "TaskManifestMessage") == 0)
    {
      int changed = store_manifest_stops (ch, m->message, &err);
      if (changed < 0)
        blog_berr (&err);
      if (changed > 0 && h->manifest)
        h->manifest (m->message, ch->o.userdata);
    }
  else if (strcmp (m->type, "IAMRoleCredentialsMessage") == 0 && h->credentials)
    h->credentials (m->message, ch->o.userdata);
  else if (strcmp (m->type, "AttachTaskNetworkInterfacesMessage") == 0 && h->attach_eni)
    h->attach_eni (m->message, ch->o.userdata);
  if (strcmp (m->type, "TaskManifestMessage") != 0 && store_seq (ch, m->seq, &err) < 0)
    blog_berr (&err);
}

static void on_poll_done (const agent_http_result *res, void *userdata)
{
  agent_channel *ch = userdata;
  agent_poll_msg msgs[32];
  size_t n = 0;
  bool closed = false;
  _cleanup_berr_ berr *err = NULL;
  if (res->curl_code != 0 || res->status != 200)
    {
      char why[512];
      snprintf (why, sizeof why, "Poll failed: %s", agent_http_why (res));
      reconnect_later (ch, why);
      return;
    }
  if (agent_poll_parse (res->body, msgs, ARRAY_SIZE (msgs), &n, &err) < 0)
    {
      reconnect_later (ch, err->msg);
      return;
    }
  agent_backoff_reset (&ch->backoff);
  for (size_t i = 0; i < n && !closed && !ch->ended; i++)
    handle (ch, &msgs[i], &closed);
  if (!closed && !ch->ended)
    poll_once (ch);
}

static void poll_once (agent_channel *ch)
{
  int64_t acked = 0;
  _cleanup_berr_ berr *err = NULL;
  _cleanup_json_ cJSON *body = cJSON_CreateObject ();
  if (agent_store_get_acked_seq (ch->o.store, &acked, &err) < 0 || body == NULL
      || !cJSON_AddStringToObject (body, "cluster", ch->cluster)
      || !cJSON_AddStringToObject (body, "containerInstance", ch->instance_arn)
      || !cJSON_AddNumberToObject (body, "ackSeqNum", (double)acked)
      || !cJSON_AddNumberToObject (body, "waitSeconds", ch->o.wait_seconds))
    {
      reconnect_later (ch, err ? err->msg : "out of memory");
      return;
    }
  ch->polls++;
  /* Silent for waitSeconds + 10: the connection is dead; the timeout recycles it. */
  if (agent_http_call (ch->poll_http, CHANNEL_TARGET "Poll", body,
                       (long)(ch->o.wait_seconds + 10) * 1000, on_poll_done, ch, &err)
      < 0)
    reconnect_later (ch, err->msg);
}

static void on_discovered (const agent_http_result *res, void *userdata)
{
  agent_channel *ch = userdata;
  _cleanup_berr_ berr *err = NULL;
  const char *url = json_str_or (res->body, "endpoint", NULL);
  if (res->curl_code != 0 || res->status != 200 || url == NULL)
    {
      if (res->curl_code == 0 && !agent_http_retryable (res) && res->status != 200)
        blog_error ("DiscoverPollEndpoint: %s: %s", res->error_type ? res->error_type : "error",
                    res->error_message ? res->error_message : "");
      reconnect_later (ch, "DiscoverPollEndpoint failed");
      return;
    }
  agent_http_free (ch->poll_http);
  ch->poll_http = NULL;
  agent_http_opts o = { .endpoint = url,
                        .region = ch->o.cfg->region,
                        .ca_file = ch->o.cfg->ca_file,
                        .allow_insecure = ch->o.cfg->allow_insecure,
                        .creds = ch->o.creds };
  if (agent_http_new (ch->o.ev, &o, &ch->poll_http, &err) < 0)
    {
      reconnect_later (ch, err->msg);
      return;
    }
  blog_info ("channel: polling %s", url);
  poll_once (ch);
}

static void start_discover (agent_channel *ch)
{
  _cleanup_berr_ berr *err = NULL;
  _cleanup_json_ cJSON *body = cJSON_CreateObject ();
  if (body == NULL || !cJSON_AddStringToObject (body, "cluster", ch->cluster)
      || !cJSON_AddStringToObject (body, "containerInstance", ch->instance_arn))
    {
      reconnect_later (ch, "out of memory");
      return;
    }
  if (agent_http_call (ch->o.http, AGENT_ECS_TARGET_PREFIX "DiscoverPollEndpoint", body,
                       DISCOVER_TIMEOUT_MS, on_discovered, ch, &err)
      < 0)
    reconnect_later (ch, err->msg);
}

int agent_channel_start (const agent_channel_opts *o, const char *cluster, const char *instance_arn,
                         agent_channel **out, berr **err)
{
  agent_channel *ch = calloc (1, sizeof *ch);
  if (ch == NULL || (ch->cluster = strdup (cluster)) == NULL
      || (ch->instance_arn = strdup (instance_arn)) == NULL)
    {
      agent_channel_free (ch);
      return berr_sys (err, "allocate channel");
    }
  ch->o = *o;
  if (ch->o.wait_seconds == 0)
    ch->o.wait_seconds = 20;
  agent_backoff_init (&ch->backoff, AGENT_BACKOFF_RECONNECT, o->seed);
  start_discover (ch);
  *out = ch;
  return 0;
}

void agent_channel_free (agent_channel *ch)
{
  if (ch == NULL)
    return;
  if (ch->o.http)
    agent_http_cancel (ch->o.http, ch);
  agent_http_free (ch->poll_http);
  sd_event_source_disable_unref (ch->retry_timer);
  free (ch->cluster);
  free (ch->instance_arn);
  free (ch);
}

uint64_t agent_channel_polls (const agent_channel *ch)
{
  return ch->polls;
}
