/* The agent channel's server side (docs/protocol.md): the durable per-instance message log, the
 * held long-poll, liveness (agentConnected, lost tasks) and the telemetry intake. */
#include "controlplane/model.h"
#include "lib/cleanup.h"
#include "lib/clock.h"
#include "lib/json.h"
#include "lib/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BATCH 10
#define ENI_WAIT_MS 30000 /* how long the agent may take to attach an ENI */
#define LOST_REASON "Task lost: the container instance's agent stopped reporting"

/* One instance's channel: where its numbering is, the poll being held, when it last spoke. */
typedef struct chan_inst
{
  char id[CP_ID_LEN + 1];
  int64_t last;  /* highest seqNum given */
  int64_t acked; /* highest seqNum acknowledged */
  void *waiter;  /* the held poll, or NULL */
  uint64_t deadline_ms, contact_ms, manifest_ms;
  bool lost; /* its tasks were marked lost since its last contact */
} chan_inst;

typedef struct chan_metric
{
  char *task_arn, *name;
  double cpu, memory;
  double at; /* Unix seconds: when it was received */
} chan_metric;

struct cp_channel
{
  chan_inst *inst;
  size_t n, cap;
  size_t *index; /* open addressing over inst by id: 1 + position, 0 free */
  size_t index_cap;
  chan_metric *metrics;
  size_t n_metrics, cap_metrics;
  uint64_t connect_ms, lost_ms, manifest_interval_ms;
  uint64_t metrics_pruned_ms;
  cp_wake_fn wake;
  void *wake_cls;
  void *waiter_now; /* the connection of the poll being handled (NULL: answer at once) */
  bool held_now;    /* the handler kept it */
};

static uint64_t now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int cp_channel_new (cp_ctx *ctx, berr **err)
{
  if ((ctx->chan = calloc (1, sizeof *ctx->chan)) == NULL)
    return berr_sys (err, "allocate channel");
  ctx->chan->connect_ms = 60 * 1000;
  ctx->chan->lost_ms = 600 * 1000;
  ctx->chan->manifest_interval_ms = 300 * 1000;
  return 0;
}

void cp_channel_free (cp_channel *c)
{
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n_metrics; i++)
    free (c->metrics[i].task_arn), free (c->metrics[i].name);
  free (c->metrics);
  free (c->inst);
  free (c->index);
  free (c);
}

void cp_channel_configure (cp_ctx *ctx, unsigned connect_ms, unsigned lost_ms, cp_wake_fn wake,
                           void *cls)
{
  if (connect_ms)
    ctx->chan->connect_ms = connect_ms;
  if (lost_ms)
    ctx->chan->lost_ms = lost_ms;
  ctx->chan->wake = wake;
  ctx->chan->wake_cls = cls;
}

/* Ids are random hex: their first 16 digits are a good enough hash. Linear probing. */
static size_t slot_of (const cp_channel *c, const char *id)
{
  if (c->index_cap == 0)
    return 0;
  size_t h;
  char head[17];
  snprintf (head, sizeof head, "%.16s", id);
  h = (size_t)strtoull (head, NULL, 16);
  for (size_t i = h & (c->index_cap - 1);; i = (i + 1) & (c->index_cap - 1))
    if (c->index[i] == 0 || strcmp (c->inst[c->index[i] - 1].id, id) == 0)
      return i;
}

static int grow_index (cp_channel *c)
{
  size_t cap = c->index_cap ? 2 * c->index_cap : 256;
  size_t *old = c->index, old_cap = c->index_cap;
  if ((c->index = calloc (cap, sizeof *c->index)) == NULL)
    {
      c->index = old;
      return -1;
    }
  c->index_cap = cap;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i])
      c->index[slot_of (c, c->inst[old[i] - 1].id)] = old[i];
  free (old);
  return 0;
}

/* The channel state of instance id, created (numbering read from the store) on first use. */
static chan_inst *chan_get (cp_ctx *ctx, const char *id)
{
  cp_channel *c = ctx->chan;
  berr *err = NULL;
  size_t slot = slot_of (c, id);
  if (c->index_cap && c->index[slot])
    return &c->inst[c->index[slot] - 1];
  if (c->n == c->cap)
    {
      size_t cap = c->cap ? 2 * c->cap : 64;
      chan_inst *grown = realloc (c->inst, cap * sizeof *grown);
      if (grown == NULL)
        return NULL;
      c->inst = grown, c->cap = cap;
    }
  if (2 * (c->n + 1) > c->index_cap && grow_index (c) < 0)
    return NULL;
  chan_inst *s = &c->inst[c->n];
  memset (s, 0, sizeof *s);
  snprintf (s->id, sizeof s->id, "%s", id);
  if (cp_store_chan_last (ctx->store, id, &s->last, &err) < 0)
    {
      blog_berr (&err);
      return NULL;
    }
  s->acked = s->last;
  /* A berth-control that just started gives every agent the whole connect timeout. */
  s->contact_ms = s->manifest_ms = now_ms ();
  c->index[slot_of (c, id)] = ++c->n;
  return s;
}

static void message_id (char out[37])
{
  char id[CP_ID_LEN + 1] = "00000000000000000000000000000000";
  cp_random_id (id);
  snprintf (out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", id, id + 8, id + 12, id + 16, id + 20);
}

/* {"type": type, "message": msg} with messageId added; takes msg. */
static cJSON *envelope (const char *type, cJSON *msg)
{
  char id[37];
  cJSON *e = cJSON_CreateObject ();
  message_id (id);
  if (e == NULL || msg == NULL || !cJSON_AddStringToObject (msg, "messageId", id)
      || !cJSON_AddStringToObject (e, "type", type) || !cJSON_AddItemToObject (e, "message", msg))
    {
      cJSON_Delete (e);
      cJSON_Delete (msg);
      return NULL;
    }
  return e;
}

typedef struct batch
{
  cJSON *messages;
} batch;

static int add_logged (void *cls, int64_t seq, const char *body)
{
  batch *b = cls;
  cJSON *m = cJSON_Parse (body);
  if (m == NULL || !cJSON_AddItemToArray (b->messages, m))
    {
      cJSON_Delete (m);
      return -1;
    }
  return 0;
}

/* {"messages": messages, "serverTime": now}, printed; takes messages. */
static char *answer (cJSON *messages)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  _cleanup_json_ cJSON *o = cJSON_CreateObject ();
  if (o == NULL || messages == NULL || !cJSON_AddItemToObject (o, "messages", messages))
    {
      cJSON_Delete (messages);
      return NULL;
    }
  if (!cJSON_AddNumberToObject (o, "serverTime", (double)ts.tv_sec + ts.tv_nsec / 1e9))
    return NULL;
  return cJSON_PrintUnformatted (o);
}

/* The unacknowledged messages of s (at most MAX_BATCH) appended to messages. */
static int pending (cp_ctx *ctx, chan_inst *s, cJSON *messages)
{
  batch b = { messages };
  berr *err = NULL;
  if (s->last <= s->acked)
    return 0;
  if (cp_store_chan_list (ctx->store, s->id, s->acked, MAX_BATCH, add_logged, &b, &err) < 0)
    {
      blog_berr (&err);
      return -1;
    }
  return 0;
}

/* The answer to a wait that ended empty. */
static bool add_heartbeat (cJSON *messages)
{
  cJSON *hb = cJSON_CreateObject ();
  if (hb == NULL || !cJSON_AddTrueToObject (hb, "healthy"))
    {
      cJSON_Delete (hb);
      return false;
    }
  return cJSON_AddItemToArray (messages, envelope ("HeartbeatMessage", hb));
}

/* Answers the held poll of s (if any) with messages (taken; NULL: its pending messages). */
static void release (cp_ctx *ctx, chan_inst *s, cJSON *messages)
{
  void *w = s->waiter;
  if (w == NULL)
    {
      cJSON_Delete (messages);
      return;
    }
  s->waiter = NULL;
  s->contact_ms = now_ms ();
  if (messages == NULL && (messages = cJSON_CreateArray ()) != NULL)
    {
      pending (ctx, s, messages);
      if (cJSON_GetArraySize (messages) == 0)
        add_heartbeat (messages);
    }
  char *body = answer (messages);
  ctx->chan->wake (ctx->chan->wake_cls, w, body ? 200 : 500, body);
}

/* ---- the ACS task shape ---- */

static int apply_override (cJSON *ct, const cJSON *ov)
{
  static const char *const replace[] = { "command", "cpu", "memory", "memoryReservation" };
  const cJSON *v, *e;
  for (size_t i = 0; i < ARRAY_SIZE (replace); i++)
    if ((v = cJSON_GetObjectItemCaseSensitive (ov, replace[i])) && !cJSON_IsNull (v)
        && !cp_jset (ct, replace[i], cJSON_Duplicate (v, true)))
      return -1;
  cJSON *env = cJSON_GetObjectItemCaseSensitive (ct, "environment");
  if (env == NULL && (env = cJSON_AddArrayToObject (ct, "environment")) == NULL)
    return -1;
  cJSON_ArrayForEach (e, cJSON_GetObjectItemCaseSensitive (ov, "environment"))
  {
    int idx = 0;
    const cJSON *have;
    cJSON_ArrayForEach (have, env)
    {
      if (strcmp (cp_jstr (have, "name"), cp_jstr (e, "name")) == 0)
        break;
      idx++;
    }
    if (have && !cJSON_ReplaceItemInArray (env, idx, cJSON_Duplicate (e, true)))
      return -1;
    if (!have && !cJSON_AddItemToArray (env, cJSON_Duplicate (e, true)))
      return -1;
  }
  return 0;
}

static cJSON *containers_of (const cJSON *td, const cJSON *task)
{
  cJSON *out = cJSON_CreateArray ();
  const cJSON *def, *ov;
  const cJSON *ovs
      = cJSON_GetObjectItem (cJSON_GetObjectItem (task, "overrides"), "containerOverrides");
  cJSON_ArrayForEach (def, cJSON_GetObjectItemCaseSensitive (td, "containerDefinitions"))
  {
    cJSON *ct = cJSON_Duplicate (def, true);
    if (ct == NULL || !cJSON_AddItemToArray (out, ct))
      {
        cJSON_Delete (ct);
        goto fail;
      }
    cJSON_ArrayForEach (ov, ovs)
    {
      if (strcmp (cp_jstr (ov, "name"), cp_jstr (def, "name")) == 0 && apply_override (ct, ov) < 0)
        goto fail;
    }
  }
  return out;
fail:
  cJSON_Delete (out);
  return NULL;
}

static const char *detail (const cJSON *att, const char *name)
{
  const cJSON *d;
  cJSON_ArrayForEach (d, cJSON_GetObjectItem (att, "details"))
  {
    if (strcmp (cp_jstr (d, "name"), name) == 0)
      return cp_jstr (d, "value");
  }
  return "";
}

/* domainNameServers of the subnet the attachment's address is from (when still configured). */
static bool add_dns (cp_ctx *ctx, cJSON *eni, const char *subnet_id)
{
  cp_subnet *sn = cp_subnet_find (ctx->model, subnet_id);
  if (sn == NULL || cJSON_GetArraySize (sn->dns) == 0)
    return true;
  return cJSON_AddItemToObject (eni, "domainNameServers", cJSON_Duplicate (sn->dns, true));
}

/* The task's ENI attachment in the ACS ElasticNetworkInterface shape. */
static cJSON *enis_of (cp_ctx *ctx, const cJSON *task)
{
  cJSON *out = cJSON_CreateArray ();
  const cJSON *att;
  cJSON_ArrayForEach (att, cJSON_GetObjectItem (task, "attachments"))
  {
    if (strcmp (cp_jstr (att, "type"), "ElasticNetworkInterface") != 0)
      continue;
    char arn[256], gw[64];
    const char *cidr = detail (att, "subnetCidr"), *slash = strchr (cidr, '/');
    snprintf (arn, sizeof arn, "arn:aws:ecs:%s:%s:attachment/%s", ctx->region, ctx->account_id,
              cp_jstr (att, "id"));
    snprintf (gw, sizeof gw, "%s%s", detail (att, "gateway"), slash ? slash : "");
    cJSON *e = cJSON_CreateObject (), *ips, *ip;
    if (e == NULL || !cJSON_AddItemToArray (out, e)
        || !cJSON_AddStringToObject (e, "attachmentArn", arn)
        || !cJSON_AddStringToObject (e, "ec2Id", detail (att, "networkInterfaceId"))
        || !cJSON_AddStringToObject (e, "macAddress", detail (att, "macAddress"))
        || !cJSON_AddStringToObject (e, "subnetGatewayIpv4Address", gw)
        || (ips = cJSON_AddArrayToObject (e, "ipv4Addresses")) == NULL
        || (ip = cJSON_CreateObject ()) == NULL || !cJSON_AddItemToArray (ips, ip)
        || !cJSON_AddTrueToObject (ip, "primary")
        || !cJSON_AddStringToObject (ip, "privateAddress", detail (att, "privateIPv4Address"))
        || !add_dns (ctx, e, detail (att, "subnetId")))
      {
        cJSON_Delete (e);
        cJSON_Delete (out);
        return NULL;
      }
  }
  return out;
}

static bool add_dup (cJSON *o, const char *key, const cJSON *v, const char *fallback)
{
  if (v && !cJSON_IsNull (v))
    return cJSON_AddItemToObject (o, key, cJSON_Duplicate (v, true));
  return fallback == NULL || cJSON_AddStringToObject (o, key, fallback);
}

/* The task's roles (override, else task definition) and, when credentials were issued, their
 * ids: the secrets themselves travel only in IAMRoleCredentialsMessage. */
static bool add_roles (cJSON *o, const cJSON *td, const cJSON *task)
{
  static const char *const keys[] = { "taskRoleArn", "executionRoleArn" };
  const cJSON *ov = cJSON_GetObjectItem (task, "overrides"), *c;
  for (size_t i = 0; i < ARRAY_SIZE (keys); i++)
    {
      const char *arn = cJSON_GetStringValue (cJSON_GetObjectItem (ov, keys[i]));
      if (arn == NULL || arn[0] == '\0')
        arn = cJSON_GetStringValue (cJSON_GetObjectItem (td, keys[i]));
      if (arn && arn[0] && !cJSON_AddStringToObject (o, keys[i], arn))
        return false;
    }
  cJSON_ArrayForEach (c, cJSON_GetObjectItem (task, "_credentials"))
  {
    bool exec = strcmp (cp_jstr (c, "roleType"), "TaskExecution") == 0;
    if (!cJSON_AddStringToObject (o, exec ? "executionCredentialsId" : "credentialsId",
                                  cp_jstr (c, "credentialsId")))
      return false;
  }
  return true;
}

/* The PayloadMessage task of t, from its task definition with the overrides applied. */
static cJSON *acs_task (cp_ctx *ctx, const cp_task *t)
{
  cp_taskdef td = { 0 };
  cp_fault fault = { 0 };
  const cJSON *doc = t->doc;
  char version[32];
  if (cp_taskdef_resolve (ctx, cp_jstr (doc, "taskDefinitionArn"), &td, &fault) != 1)
    return NULL;
  _cleanup_json_ cJSON *body = cJSON_Parse (td.body_json);
  cJSON *o = cJSON_CreateObject ();
  snprintf (version, sizeof version, "%" PRId64, td.revision);
  bool ok = body && o && cJSON_AddStringToObject (o, "arn", t->arn)
            && cJSON_AddStringToObject (o, "family", td.family)
            && cJSON_AddStringToObject (o, "version", version)
            && cJSON_AddStringToObject (o, "desiredStatus", cp_jstr (doc, "desiredStatus"))
            && add_dup (o, "networkMode", cJSON_GetObjectItem (body, "networkMode"), "bridge")
            && add_dup (o, "cpu", cJSON_GetObjectItem (doc, "cpu"), NULL)
            && add_dup (o, "memory", cJSON_GetObjectItem (doc, "memory"), NULL)
            && add_dup (o, "pidMode", cJSON_GetObjectItem (body, "pidMode"), NULL)
            && add_dup (o, "ipcMode", cJSON_GetObjectItem (body, "ipcMode"), NULL)
            && cJSON_AddItemToObject (o, "containers", containers_of (body, doc))
            && cJSON_AddItemToObject (o, "volumes",
                                      cJSON_GetObjectItem (body, "volumes") ? cJSON_Duplicate (
                                          cJSON_GetObjectItem (body, "volumes"), true)
                                                                            : cJSON_CreateArray ())
            && cJSON_AddItemToObject (o, "elasticNetworkInterfaces", enis_of (ctx, doc))
            && add_roles (o, body, doc);
  cp_taskdef_clear (&td);
  if (!ok)
    {
      cJSON_Delete (o);
      return NULL;
    }
  return o;
}

/* Logs one message for instance s (seqNum next) durably, without waking its poll. Takes msg. */
static int queue_only (cp_ctx *ctx, chan_inst *s, const cp_instance *ci, const char *type,
                       cJSON *msg)
{
  _cleanup_free_ char *cluster_arn = cp_cluster_arn (ctx, ci->cluster);
  struct timespec ts;
  berr *err = NULL;
  clock_gettime (CLOCK_REALTIME, &ts);
  _cleanup_json_ cJSON *e = envelope (type, msg);
  if (e == NULL || cluster_arn == NULL)
    return -1;
  msg = cJSON_GetObjectItem (e, "message");
  if (!cJSON_AddStringToObject (msg, "clusterArn", cluster_arn)
      || !cJSON_AddStringToObject (msg, "containerInstanceArn", ci->arn)
      || !cJSON_AddNumberToObject (msg, "seqNum", (double)(s->last + 1))
      || !cJSON_AddNumberToObject (msg, "generatedAt", (double)ts.tv_sec))
    return -1;
  _cleanup_free_ char *body = cJSON_PrintUnformatted (e);
  if (body == NULL)
    return -1;
  if (cp_store_chan_append (ctx->store, s->id, s->last + 1, body, &err) < 0)
    {
      blog_berr (&err);
      return -1;
    }
  s->last++;
  return 0;
}

/* The same, then wakes the instance's poll with everything pending. */
static int queue (cp_ctx *ctx, chan_inst *s, const cp_instance *ci, const char *type, cJSON *msg)
{
  if (queue_only (ctx, s, ci, type, msg) < 0)
    return -1;
  release (ctx, s, NULL);
  return 0;
}

/* The IAMRoleCredentialsMessage of one _credentials entry c of task t (secrets from the roles
 * file; never logged). */
static cJSON *credentials_message (cp_ctx *ctx, const cp_task *t, const cJSON *c)
{
  const cp_role_cred *rc = cp_roles_find (ctx, cp_jstr (c, "roleArn"));
  const cJSON *exp = cJSON_GetObjectItem (c, "expiration");
  char when[32];
  struct tm tm;
  time_t e = cJSON_IsNumber (exp) ? (time_t)exp->valuedouble : 0;
  if (rc == NULL) /* the file no longer names it (restarted with another file) */
    return NULL;
  strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&e, &tm));
  cJSON *m = cJSON_CreateObject (), *rcj;
  if (m == NULL || !cJSON_AddStringToObject (m, "taskArn", t->arn)
      || !cJSON_AddStringToObject (m, "roleType", cp_jstr (c, "roleType"))
      || (rcj = cJSON_AddObjectToObject (m, "roleCredentials")) == NULL
      || !cJSON_AddStringToObject (rcj, "credentialsId", cp_jstr (c, "credentialsId"))
      || !cJSON_AddStringToObject (rcj, "roleArn", rc->arn)
      || !cJSON_AddStringToObject (rcj, "accessKeyId", rc->access_key_id)
      || !cJSON_AddStringToObject (rcj, "secretAccessKey", rc->secret_access_key)
      || (rc->session_token && !cJSON_AddStringToObject (rcj, "sessionToken", rc->session_token))
      || !cJSON_AddStringToObject (rcj, "expiration", when))
    {
      cJSON_Delete (m);
      return NULL;
    }
  return m;
}

/* What a task starting on an instance needs before its payload, as ECS sends it: the ENI to
 * attach (awsvpc), then the role credentials. Logged without waking the poll, so the payload's
 * wake-up answers it with all of them in one response. */
static int queue_before_payload (cp_ctx *ctx, chan_inst *s, const cp_instance *ci, const cp_task *t)
{
  const cJSON *c;
  cJSON *enis = enis_of (ctx, t->doc);
  if (enis == NULL)
    return -1;
  if (cJSON_GetArraySize (enis) > 0)
    {
      cJSON *m = cJSON_CreateObject ();
      if (m == NULL || !cJSON_AddStringToObject (m, "taskArn", t->arn)
          || !cJSON_AddItemToObject (m, "elasticNetworkInterfaces", steal_ptr (&enis))
          || !cJSON_AddNumberToObject (m, "waitTimeoutMs", ENI_WAIT_MS))
        {
          cJSON_Delete (enis);
          cJSON_Delete (m);
          return -1;
        }
      if (queue_only (ctx, s, ci, "AttachTaskNetworkInterfacesMessage", m) < 0)
        return -1;
    }
  cJSON_Delete (enis);
  cJSON_ArrayForEach (c, cJSON_GetObjectItem (t->doc, "_credentials"))
  {
    cJSON *m = credentials_message (ctx, t, c);
    if (m == NULL || queue_only (ctx, s, ci, "IAMRoleCredentialsMessage", m) < 0)
      return -1;
  }
  return 0;
}

void cp_channel_task_changed (cp_ctx *ctx, const cp_task *t)
{
  cp_instance *ci = cp_instance_by_id (ctx->model, t->instance_id);
  chan_inst *s = ci ? chan_get (ctx, ci->id) : NULL;
  if (s && strcmp (cp_jstr (t->doc, "desiredStatus"), "RUNNING") == 0
      && queue_before_payload (ctx, s, ci, t) < 0)
    blog_error ("channel: could not queue the attachments or credentials of task %s", t->arn);
  cJSON *msg = cJSON_CreateObject (), *tasks = NULL;
  if (msg)
    tasks = cJSON_AddArrayToObject (msg, "tasks");
  if (s == NULL || tasks == NULL || !cJSON_AddItemToArray (tasks, acs_task (ctx, t)))
    {
      cJSON_Delete (msg);
      blog_error ("channel: could not queue task %s for its instance (the next manifest lists it)",
                  t->arn);
      return;
    }
  if (queue (ctx, s, ci, "PayloadMessage", msg) < 0)
    blog_error ("channel: could not queue task %s for its instance (the next manifest lists it)",
                t->arn);
}

/* At start: a task's commit and its message's append are two writes, so a crash between them
 * would leave an acknowledged RunTask (or StopTask) its agent never hears of. Every task the
 * agent may not have been told about is sent again: not yet reported by the agent (PENDING),
 * or desired STOPPED and not yet stopped. The agent stores a repeat as a no-op. */
void cp_channel_resend_unsettled (cp_ctx *ctx)
{
  unsigned n = 0;
  for (size_t i = 0; i < ctx->model->n_task; i++)
    {
      const cp_task *t = ctx->model->task[i];
      const char *last = cp_jstr (t->doc, "lastStatus"), *want = cp_jstr (t->doc, "desiredStatus");
      if (t->instance_id[0] == '\0' || strcmp (last, "STOPPED") == 0
          || (strcmp (last, "PENDING") != 0 && strcmp (want, "STOPPED") != 0))
        continue;
      cp_channel_task_changed (ctx, t);
      n++;
    }
  if (n)
    blog_info ("channel: %u tasks not yet settled with their agents sent again", n);
}

void cp_channel_resend_credentials (cp_ctx *ctx, const cp_instance *ci)
{
  chan_inst *s = chan_get (ctx, ci->id);
  unsigned n = 0;
  if (s == NULL)
    return;
  for (size_t i = 0; i < ctx->model->n_task; i++)
    {
      const cp_task *t = ctx->model->task[i];
      const cJSON *c;
      if (strcmp (t->instance_id, ci->id) != 0
          || strcmp (cp_jstr (t->doc, "desiredStatus"), "RUNNING") != 0)
        continue;
      cJSON_ArrayForEach (c, cJSON_GetObjectItem (t->doc, "_credentials"))
      {
        if (cp_roles_find (ctx, cp_jstr (c, "roleArn")) == NULL)
          continue; /* the roles file no longer names it: said at the task's payload */
        cJSON *m = credentials_message (ctx, t, c);
        if (m == NULL || queue_only (ctx, s, ci, "IAMRoleCredentialsMessage", m) < 0)
          blog_error ("channel: could not queue the credentials of task %s again", t->arn);
        else
          n++;
      }
    }
  if (n == 0)
    return;
  release (ctx, s, NULL);
  blog_info ("instance %s: registered again, %u task credentials sent again", ci->id, n);
}

/* Answers the instance's held poll with a CloseMessage (deregistration). */
void cp_channel_instance_closed (cp_ctx *ctx, const cp_instance *ci, const char *reason)
{
  chan_inst *s = chan_get (ctx, ci->id);
  cJSON *msgs = cJSON_CreateArray (), *close = cJSON_CreateObject ();
  if (s == NULL || s->waiter == NULL || msgs == NULL || close == NULL
      || !cJSON_AddStringToObject (close, "reason", reason)
      || !cJSON_AddItemToArray (msgs, envelope ("CloseMessage", steal_ptr (&close))))
    {
      cJSON_Delete (close);
      cJSON_Delete (msgs);
      return;
    }
  pending (ctx, s, msgs);
  release (ctx, s, msgs);
}

/* ---- Poll ---- */

static cJSON *manifest (cp_ctx *ctx, chan_inst *s, const cp_instance *ci)
{
  _cleanup_free_ char *cluster_arn = cp_cluster_arn (ctx, ci->cluster);
  cJSON *m = cJSON_CreateObject (), *tasks;
  if (m == NULL || cluster_arn == NULL || !cJSON_AddStringToObject (m, "clusterArn", cluster_arn)
      || !cJSON_AddStringToObject (m, "containerInstanceArn", ci->arn)
      || !cJSON_AddNumberToObject (m, "seqNum", (double)s->last)
      || !cJSON_AddNumberToObject (m, "timeline", (double)now_ms ())
      || (tasks = cJSON_AddArrayToObject (m, "tasks")) == NULL)
    goto fail;
  for (size_t i = 0; i < ctx->model->n_task; i++)
    {
      const cp_task *t = ctx->model->task[i];
      cJSON *e;
      if (strcmp (t->instance_id, ci->id) != 0
          || (strcmp (cp_jstr (t->doc, "lastStatus"), "STOPPED") == 0
              && strcmp (cp_jstr (t->doc, "desiredStatus"), "STOPPED") == 0
              && !cJSON_GetObjectItem (t->doc, "stoppedReason")))
        continue;
      if ((e = cJSON_CreateObject ()) == NULL || !cJSON_AddItemToArray (tasks, e)
          || !cJSON_AddStringToObject (e, "taskArn", t->arn)
          || !cJSON_AddStringToObject (e, "desiredStatus", cp_jstr (t->doc, "desiredStatus")))
        goto fail;
    }
  return envelope ("TaskManifestMessage", m);
fail:
  cJSON_Delete (m);
  return NULL;
}

/* The poll's instance, checked against the caller's key. */
static int poll_instance (cp_ctx *ctx, const cJSON *in, cp_instance **ci, cp_fault *fault)
{
  char cluster[256];
  const char *ref = NULL;
  if (cp_cluster_require (ctx, in, cluster, fault) < 0
      || cp_opt_str (in, "containerInstance", &ref, fault) < 0)
    return -1;
  if (ref == NULL)
    return cp_fail (fault, "InvalidParameterException", "containerInstance is required.");
  if ((*ci = cp_instance_find (ctx, cluster, ref)) == NULL)
    return cp_fail (fault, "InvalidParameterException",
                    "The referenced container instance was not found.");
  return cp_caller_may (ctx, (*ci)->key, fault);
}

/* Contact from an agent: it is connected again, and its tasks may be lost again later. */
static void touch (cp_ctx *ctx, chan_inst *s, cp_instance *ci)
{
  cp_fault fault = { 0 };
  s->contact_ms = now_ms ();
  s->lost = false;
  if (ci->registered && !cJSON_IsTrue (cJSON_GetObjectItem (ci->doc, "agentConnected")))
    {
      bool set = cp_jset (ci->doc, "agentConnected", cJSON_CreateTrue ());
      cp_instance_sync (ci);
      if (!set || cp_instance_save (ctx, ci, &fault) < 0)
        blog_warn ("channel: could not record instance %s as connected", ci->id);
    }
}

int cp_channel_poll_handler (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  cp_instance *ci;
  int64_t ack = 0, wait_s = 20;
  berr *err = NULL;
  if (poll_instance (ctx, in, &ci, fault) < 0
      || cp_opt_int (in, "ackSeqNum", 0, INT64_MAX / 2, &ack, fault) < 0
      || cp_opt_int (in, "waitSeconds", 0, 30, &wait_s, fault) < 0)
    return -1;
  chan_inst *s = chan_get (ctx, ci->id);
  _cleanup_json_ cJSON *messages = cJSON_CreateArray ();
  if (s == NULL || messages == NULL)
    return cp_fail (fault, "ServerException", "Server error: the channel is unavailable.");
  touch (ctx, s, ci);
  if (s->waiter) /* only one poll per instance is held: the older one goes empty */
    release (ctx, s, cJSON_CreateArray ());
  if (ack > s->last)
    {
      /* The store lost messages the agent had: adopt its numbering and say what is true. */
      s->last = s->acked = ack;
      if (!cJSON_AddItemToArray (messages, manifest (ctx, s, ci)))
        return cp_fail_oom (fault);
    }
  else if (ack > s->acked)
    {
      s->acked = ack;
      if (cp_store_chan_prune (ctx->store, s->id, ack, &err) < 0)
        blog_berr (&err);
    }
  if (ack < s->acked) /* a restarted agent acks less than before: resend from its point */
    s->acked = ack;
  if (pending (ctx, s, messages) < 0)
    return cp_fail (fault, "ServerException", "Server error: the channel is unavailable.");
  if (!ci->registered)
    {
      cJSON *close = cJSON_CreateObject ();
      if (close == NULL || !cJSON_AddStringToObject (close, "reason", "deregistered")
          || !cJSON_AddItemToArray (messages, envelope ("CloseMessage", close)))
        return cp_fail_oom (fault);
    }
  if (cJSON_GetArraySize (messages) == 0 && ctx->chan->waiter_now && wait_s > 0)
    {
      s->waiter = ctx->chan->waiter_now;
      s->deadline_ms = now_ms () + (uint64_t)wait_s * 1000;
      ctx->chan->held_now = true;
      return 0;
    }
  if (cJSON_GetArraySize (messages) == 0 && !add_heartbeat (messages))
    return cp_fail_oom (fault);
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  if ((*out = cJSON_CreateObject ()) == NULL
      || !cJSON_AddItemToObject (*out, "messages", steal_ptr (&messages))
      || !cJSON_AddNumberToObject (*out, "serverTime", (double)ts.tv_sec + ts.tv_nsec / 1e9))
    return cp_fail_oom (fault);
  return 0;
}

int cp_channel_poll (cp_ctx *ctx, enum cp_role role, const char *key, const char *body, size_t len,
                     void *waiter, char **response)
{
  ctx->chan->waiter_now = ctx->chan->wake ? waiter : NULL;
  ctx->chan->held_now = false;
  int status = cp_dispatch_as (ctx, role, key, "BerthChannelV1.Poll", body, len, response);
  ctx->chan->waiter_now = NULL;
  if (ctx->chan->held_now)
    {
      free (*response);
      *response = NULL;
      return 0;
    }
  return status;
}

void cp_channel_forget (cp_ctx *ctx, void *waiter)
{
  for (size_t i = 0; i < ctx->chan->n; i++)
    if (ctx->chan->inst[i].waiter == waiter)
      ctx->chan->inst[i].waiter = NULL;
}

void cp_channel_close_all (cp_ctx *ctx, const char *reason)
{
  for (size_t i = 0; i < ctx->chan->n; i++)
    {
      chan_inst *s = &ctx->chan->inst[i];
      cJSON *msgs = cJSON_CreateArray (), *close = cJSON_CreateObject ();
      if (close && msgs && cJSON_AddStringToObject (close, "reason", reason))
        cJSON_AddItemToArray (msgs, envelope ("CloseMessage", steal_ptr (&close)));
      cJSON_Delete (close);
      release (ctx, s, msgs);
    }
}

/* ---- liveness ---- */

/* Past the lost timeout: the tasks are stopped here (resources freed) and queued as STOPPED for
 * the agent, should it come back. */
static void mark_lost (cp_ctx *ctx, chan_inst *s, cp_instance *ci)
{
  cp_fault fault = { 0 };
  s->lost = true;
  for (size_t i = 0; i < ctx->model->n_task; i++)
    {
      cp_task *t = ctx->model->task[i];
      if (strcmp (t->instance_id, ci->id) != 0
          || strcmp (cp_jstr (t->doc, "lastStatus"), "STOPPED") == 0)
        continue;
      blog_info ("task %s lost with the agent of instance %s", t->arn, ci->id);
      if (cp_task_stop_now (ctx, t, LOST_REASON, &fault) < 0)
        blog_error ("channel: %s: %s", fault.type, fault.message);
      cp_channel_task_changed (ctx, t);
    }
}

/* Returns whether the instance's tasks were just marked lost. */
static bool check_instance (cp_ctx *ctx, cp_instance *ci, uint64_t now)
{
  cp_fault fault = { 0 };
  chan_inst *s = chan_get (ctx, ci->id);
  if (s == NULL)
    return false;
  /* State created just now (or touched since the tick read the clock) is not older than now. */
  if (s->contact_ms > now)
    now = s->contact_ms;
  if (s->waiter && now >= s->deadline_ms)
    release (ctx, s, NULL); /* empty: the server's answer is a heartbeat */
  if (s->waiter && now >= s->manifest_ms + ctx->chan->manifest_interval_ms)
    {
      cJSON *msgs = cJSON_CreateArray ();
      s->manifest_ms = now;
      if (msgs && cJSON_AddItemToArray (msgs, manifest (ctx, s, ci)))
        release (ctx, s, msgs);
      else
        cJSON_Delete (msgs);
    }
  if (s->waiter)
    s->contact_ms = now;
  /* release () above may have stamped contact after the tick read the clock. */
  uint64_t silent = s->contact_ms >= now ? 0 : now - s->contact_ms;
  bool connected = silent < ctx->chan->connect_ms;
  if (ci->registered && !connected
      && cJSON_IsTrue (cJSON_GetObjectItem (ci->doc, "agentConnected")))
    {
      blog_info ("instance %s: agent disconnected", ci->id);
      bool set = cp_jset (ci->doc, "agentConnected", cJSON_CreateFalse ());
      cp_instance_sync (ci);
      if (!set || cp_instance_save (ctx, ci, &fault) < 0)
        blog_warn ("channel: could not record instance %s as disconnected", ci->id);
    }
  if (!ci->registered || s->lost || silent < ctx->chan->lost_ms)
    return false;
  mark_lost (ctx, s, ci);
  return true;
}

/* Sends role credentials again before they expire, with a later expiration (the same
 * credentialsId: it is in the containers' AWS_CONTAINER_CREDENTIALS_RELATIVE_URI). */
static void refresh_task (cp_ctx *ctx, cp_task *t, int64_t now)
{
  cJSON *c;
  cp_fault fault = { 0 };
  int64_t margin = ctx->role_duration_s / CP_ROLE_REFRESH_DIVISOR;
  cp_instance *ci = cp_instance_by_id (ctx->model, t->instance_id);
  chan_inst *s = ci ? chan_get (ctx, ci->id) : NULL;
  cJSON_ArrayForEach (c, cJSON_GetObjectItem (t->doc, "_credentials"))
  {
    const cJSON *exp = cJSON_GetObjectItem (c, "expiration");
    if (cJSON_IsNumber (exp) && (int64_t)exp->valuedouble - now > margin)
      continue;
    /* Restarted with a file that no longer names the role: nothing to send (said at the
     * task's payload, not every tick). */
    if (cp_roles_find (ctx, cp_jstr (c, "roleArn")) == NULL)
      continue;
    /* Durable first: a restart must not hand out an expiration older than one sent. */
    if (s == NULL || !cp_jset_num (c, "expiration", (double)(now + ctx->role_duration_s))
        || cp_task_save (ctx, t, &fault) < 0)
      {
        blog_error ("channel: could not refresh the credentials of task %s", t->arn);
        return;
      }
    cJSON *m = credentials_message (ctx, t, c);
    if (m == NULL || queue (ctx, s, ci, "IAMRoleCredentialsMessage", m) < 0)
      blog_error ("channel: could not queue the refreshed credentials of task %s", t->arn);
    else
      blog_info ("task %s: %s credentials %s refreshed", t->arn, cp_jstr (c, "roleType"),
                 cp_jstr (c, "credentialsId"));
  }
}

static void refresh_credentials (cp_ctx *ctx)
{
  int64_t now = (int64_t)time (NULL);
  for (size_t i = 0; i < ctx->model->n_task; i++)
    {
      cp_task *t = ctx->model->task[i];
      if (cJSON_GetObjectItem (t->doc, "_credentials")
          && strcmp (cp_jstr (t->doc, "desiredStatus"), "RUNNING") == 0)
        refresh_task (ctx, t, now);
    }
}

static void prune_metrics (cp_ctx *ctx);

void cp_channel_tick (cp_ctx *ctx)
{
  if (ctx->roles)
    refresh_credentials (ctx);
  if (now_ms () - ctx->chan->metrics_pruned_ms >= 60 * 1000)
    {
      ctx->chan->metrics_pruned_ms = now_ms ();
      prune_metrics (ctx);
    }
  uint64_t now = now_ms ();
  bool lost = false;
  for (size_t i = 0; i < ctx->model->n_inst; i++)
    lost |= check_instance (ctx, ctx->model->inst[i], now);
  /* Lost tasks stopped outside any API call: let the service controller replace them now. */
  if (lost)
    cp_services_reconcile (ctx);
}

/* ---- telemetry ---- */

/* The metadata's instance (checked against the caller), marked as heard from. */
static int telemetry_instance (cp_ctx *ctx, const cJSON *in, cp_instance **ci, cp_fault *fault)
{
  const cJSON *md = NULL;
  if (cp_opt_obj (in, "metadata", &md, fault) < 0)
    return -1;
  if (md == NULL)
    return cp_fail (fault, "InvalidParameterException", "metadata is required.");
  if (poll_instance (ctx, md, ci, fault) < 0)
    return -1;
  chan_inst *s = chan_get (ctx, (*ci)->id);
  if (s)
    touch (ctx, s, *ci);
  return 0;
}

static chan_metric *metric_slot (cp_channel *c, const char *task_arn, const char *name)
{
  for (size_t i = 0; i < c->n_metrics; i++)
    if (strcmp (c->metrics[i].task_arn, task_arn) == 0 && strcmp (c->metrics[i].name, name) == 0)
      return &c->metrics[i];
  if (c->n_metrics == c->cap_metrics)
    {
      size_t cap = c->cap_metrics ? 2 * c->cap_metrics : 64;
      chan_metric *grown = realloc (c->metrics, cap * sizeof *grown);
      if (grown == NULL)
        return NULL;
      c->metrics = grown, c->cap_metrics = cap;
    }
  chan_metric *m = &c->metrics[c->n_metrics];
  if ((m->task_arn = strdup (task_arn)) == NULL || (m->name = strdup (name)) == NULL)
    {
      free (m->task_arn);
      return NULL;
    }
  c->n_metrics++;
  return m;
}

/* The mean of a {min, max, sampleCount, sum} set (0 when empty). */
static double stat_mean (const cJSON *set)
{
  const cJSON *n = cJSON_GetObjectItem (set, "sampleCount"),
              *sum = cJSON_GetObjectItem (set, "sum");
  if (!cJSON_IsNumber (n) || !cJSON_IsNumber (sum) || n->valuedouble <= 0)
    return 0;
  return sum->valuedouble / n->valuedouble;
}

int cp_channel_publish_metrics (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  cp_instance *ci;
  const cJSON *tasks = NULL, *t, *c;
  struct timespec ts;
  if (telemetry_instance (ctx, in, &ci, fault) < 0
      || cp_opt_arr (in, "taskMetrics", &tasks, fault) < 0)
    return -1;
  clock_gettime (CLOCK_REALTIME, &ts);
  cJSON_ArrayForEach (t, tasks)
  {
    const char *arn = cp_jstr (t, "taskArn");
    cp_task *task = cp_task_find (ctx, ci->cluster, arn);
    if (task == NULL || strcmp (task->instance_id, ci->id) != 0)
      continue; /* not this instance's: ignored, as a stale report would be */
    cJSON_ArrayForEach (c, cJSON_GetObjectItem (t, "containerMetrics"))
    {
      chan_metric *m = metric_slot (ctx->chan, task->arn, cp_jstr (c, "containerName"));
      if (m == NULL)
        return cp_fail_oom (fault);
      m->cpu = stat_mean (cJSON_GetObjectItem (c, "cpuStatsSet"));
      m->memory = stat_mean (cJSON_GetObjectItem (c, "memoryStatsSet"));
      m->at = (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1e3;
      blog_debug ("metrics: %s %s: cpu %.1f%% memory %.1f MiB", task->arn, m->name, m->cpu,
                  m->memory);
    }
  }
  return (*out = cJSON_CreateObject ()) ? 0 : cp_fail_oom (fault);
}

int cp_channel_publish_health (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  cp_instance *ci;
  const cJSON *tasks = NULL, *t, *c;
  cJSON *ct;
  if (telemetry_instance (ctx, in, &ci, fault) < 0 || cp_opt_arr (in, "tasks", &tasks, fault) < 0)
    return -1;
  cJSON_ArrayForEach (t, tasks)
  {
    cp_task *task = cp_task_find (ctx, ci->cluster, cp_jstr (t, "taskArn"));
    if (task == NULL || strcmp (task->instance_id, ci->id) != 0)
      continue;
    cJSON_ArrayForEach (c, cJSON_GetObjectItem (t, "containers"))
    {
      const char *h = cp_jstr (c, "healthStatus");
      if (strcmp (h, "HEALTHY") != 0 && strcmp (h, "UNHEALTHY") != 0 && strcmp (h, "UNKNOWN") != 0)
        return cp_fail (fault, "InvalidParameterException", "Unknown healthStatus '%.32s'.", h);
      /* In memory only: health is as fresh as the last report, never worth an fsync. */
      cJSON_ArrayForEach (ct, cJSON_GetObjectItem (task->doc, "containers"))
      {
        if (strcmp (cp_jstr (ct, "name"), cp_jstr (c, "containerName")) == 0
            && !cp_jset_str (ct, "healthStatus", h))
          return cp_fail_oom (fault);
      }
    }
  }
  return (*out = cJSON_CreateObject ()) ? 0 : cp_fail_oom (fault);
}

static bool one_of (const char *s, const char *const *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp (s, v[i]) == 0)
      return true;
  return false;
}

/* A timestamp member: Unix seconds or RFC 3339 text; fallback when absent. */
static int stamp (const cJSON *o, const char *key, double fallback, double *out, cp_fault *fault)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, key);
  int64_t ns;
  *out = fallback;
  if (v == NULL || cJSON_IsNull (v))
    return 0;
  if (cJSON_IsNumber (v) && v->valuedouble >= 0 && v->valuedouble < 1e11)
    *out = v->valuedouble;
  else if (cJSON_IsString (v) && bclock_parse_rfc3339 (v->valuestring, &ns) == 0)
    *out = (double)ns / 1e9;
  else
    return cp_fail (fault, "SerializationException", "%s is not a timestamp.", key);
  return 0;
}

/* The InstanceHealthCheckResult of report r, given what was stored for its type (or NULL). */
static cJSON *health_result (const cJSON *r, const cJSON *old, double now, cp_fault *fault)
{
  static const char *const types[] = { "CONTAINER_RUNTIME", "ACCELERATED_COMPUTE", "DAEMON" };
  static const char *const states[] = { "OK", "IMPAIRED", "INSUFFICIENT_DATA", "INITIALIZING" };
  const char *type = NULL, *status = NULL, *reason = NULL;
  double updated, changed;
  if (!cJSON_IsObject (r))
    return cp_fail (fault, "SerializationException", "Each status is a structure."), NULL;
  if (cp_opt_str (r, "type", &type, fault) < 0 || cp_opt_str (r, "status", &status, fault) < 0
      || cp_opt_str (r, "statusReason", &reason, fault) < 0)
    return NULL;
  if (type == NULL || !one_of (type, types, ARRAY_SIZE (types)))
    return cp_fail (fault, "InvalidParameterException", "Unknown status type '%.32s'.",
                    type ? type : ""),
           NULL;
  if (status == NULL || !one_of (status, states, ARRAY_SIZE (states)))
    return cp_fail (fault, "InvalidParameterException", "Unknown status '%.32s'.",
                    status ? status : ""),
           NULL;
  /* Unchanged status: the change stays when it was; changed: now, unless the agent says. */
  const cJSON *was = cJSON_GetObjectItem (old, "lastStatusChange");
  bool same = old && strcmp (cp_jstr (old, "status"), status) == 0 && cJSON_IsNumber (was);
  if (stamp (r, "lastUpdated", now, &updated, fault) < 0
      || stamp (r, "lastStatusChange", same ? was->valuedouble : now, &changed, fault) < 0)
    return NULL;
  cJSON *o = cJSON_CreateObject ();
  if (o == NULL || !cJSON_AddStringToObject (o, "type", type)
      || !cJSON_AddStringToObject (o, "status", status)
      || (reason && !cJSON_AddStringToObject (o, "statusReason", reason))
      || !cJSON_AddNumberToObject (o, "lastUpdated", updated)
      || !cJSON_AddNumberToObject (o, "lastStatusChange", changed))
    {
      cJSON_Delete (o);
      return cp_fail_oom (fault), NULL;
    }
  return o;
}

/* IMPAIRED wins, then INITIALIZING, then INSUFFICIENT_DATA; OK only when every check is. */
static const char *overall (const cJSON *details)
{
  static const char *const order[] = { "IMPAIRED", "INITIALIZING", "INSUFFICIENT_DATA" };
  const cJSON *d;
  if (cJSON_GetArraySize (details) == 0)
    return "INSUFFICIENT_DATA";
  for (size_t i = 0; i < ARRAY_SIZE (order); i++)
    cJSON_ArrayForEach (d, details)
    {
      if (strcmp (cp_jstr (d, "status"), order[i]) == 0)
        return order[i];
    }
  return "OK";
}

/* Merges the reported statuses (by type) into the instance's healthStatus. Written to the store
 * only when a status changed: a report that only moves lastUpdated is not worth an fsync. */
int cp_channel_publish_instance_status (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  cp_instance *ci;
  const cJSON *statuses = NULL, *r;
  struct timespec ts;
  bool changed = false;
  if (telemetry_instance (ctx, in, &ci, fault) < 0
      || cp_opt_arr (in, "statuses", &statuses, fault) < 0)
    return -1;
  clock_gettime (CLOCK_REALTIME, &ts);
  double now = (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1e3;
  const cJSON *old = cJSON_GetObjectItem (ci->doc, "healthStatus");
  _cleanup_json_ cJSON *hs = old ? cJSON_Duplicate (old, true) : cJSON_CreateObject ();
  cJSON *details = cJSON_GetObjectItem (hs, "details");
  if (hs == NULL || (details == NULL && (details = cJSON_AddArrayToObject (hs, "details")) == NULL))
    return cp_fail_oom (fault);
  cJSON_ArrayForEach (r, statuses)
  {
    int idx = 0;
    cJSON *d;
    cJSON_ArrayForEach (d, details)
    {
      if (strcmp (cp_jstr (d, "type"), cp_jstr (r, "type")) == 0)
        break;
      idx++;
    }
    cJSON *res = health_result (r, d, now, fault);
    if (res == NULL)
      return -1;
    changed |= d == NULL || strcmp (cp_jstr (d, "status"), cp_jstr (res, "status")) != 0;
    if (!(d ? cJSON_ReplaceItemInArray (details, idx, res) : cJSON_AddItemToArray (details, res)))
      {
        cJSON_Delete (res);
        return cp_fail_oom (fault);
      }
  }
  if (!cp_jset_str (hs, "overallStatus", overall (details))
      || !cp_jset (ci->doc, "healthStatus", steal_ptr (&hs)))
    return cp_fail_oom (fault);
  if (changed && cp_instance_save (ctx, ci, fault) < 0)
    return -1;
  return (*out = cJSON_CreateObject ()) ? 0 : cp_fail_oom (fault);
}

bool cp_channel_container_metrics (const cp_ctx *ctx, const char *task_arn, const char *container,
                                   double *cpu_percent, double *memory_mib, double *at)
{
  for (size_t i = 0; i < ctx->chan->n_metrics; i++)
    {
      const chan_metric *m = &ctx->chan->metrics[i];
      if (strcmp (m->task_arn, task_arn) == 0 && strcmp (m->name, container) == 0)
        {
          *cpu_percent = m->cpu;
          *memory_mib = m->memory;
          *at = m->at;
          return true;
        }
    }
  return false;
}

/* Forgets the metrics of tasks that stopped or are gone, so they do not pile up. */
static void prune_metrics (cp_ctx *ctx)
{
  cp_channel *c = ctx->chan;
  size_t k = 0;
  for (size_t i = 0; i < c->n_metrics; i++)
    {
      chan_metric *m = &c->metrics[i];
      char cluster[256] = "";
      const char *slash = strchr (m->task_arn, '/'), *end = slash ? strchr (slash + 1, '/') : NULL;
      if (end)
        snprintf (cluster, sizeof cluster, "%.*s", (int)(end - slash - 1), slash + 1);
      cp_task *t = cp_task_find (ctx, cluster, m->task_arn);
      if (t == NULL || strcmp (cp_jstr (t->doc, "lastStatus"), "STOPPED") == 0)
        {
          free (m->task_arn), free (m->name);
          continue;
        }
      c->metrics[k++] = *m;
    }
  c->n_metrics = k;
}
