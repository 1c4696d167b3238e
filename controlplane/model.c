/* The in-memory model of container instances and tasks (model.h): loading from the store,
 * lookups by id and ARN, resource accounting as tasks are placed and stop, write-through. */
#include "controlplane/model.h"
#include "lib/cleanup.h"
#include "lib/json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

const char *cp_jstr (const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (obj, key);
  return cJSON_IsString (v) ? v->valuestring : "";
}

bool cp_jset (cJSON *obj, const char *key, cJSON *item)
{
  if (item == NULL)
    return false;
  cJSON_DeleteItemFromObjectCaseSensitive (obj, key);
  if (!cJSON_AddItemToObject (obj, key, item))
    {
      cJSON_Delete (item);
      return false;
    }
  return true;
}

bool cp_jset_str (cJSON *obj, const char *key, const char *value)
{
  return cp_jset (obj, key, cJSON_CreateString (value));
}

bool cp_jset_num (cJSON *obj, const char *key, double value)
{
  return cp_jset (obj, key, cJSON_CreateNumber (value));
}

int cp_random_id (char out[CP_ID_LEN + 1])
{
  uint8_t raw[CP_ID_LEN / 2];
  if (getrandom (raw, sizeof raw, 0) != (ssize_t)sizeof raw)
    return -1;
  for (size_t i = 0; i < sizeof raw; i++)
    snprintf (out + 2 * i, 3, "%02x", raw[i]);
  return 0;
}

bool cp_arn_parse (const cp_ctx *ctx, const char *arn, char type[32], char rest[512])
{
  char prefix[160];
  int n = snprintf (prefix, sizeof prefix, "arn:aws:ecs:%s:%s:", ctx->region, ctx->account_id);
  if (strncmp (arn, prefix, (size_t)n) != 0)
    return false;
  arn += n;
  size_t tlen = strcspn (arn, "/");
  if (tlen == 0 || tlen >= 32 || arn[tlen] != '/' || arn[tlen + 1] == '\0'
      || strlen (arn + tlen + 1) >= 512)
    return false;
  memcpy (type, arn, tlen);
  type[tlen] = '\0';
  strcpy (rest, arn + tlen + 1);
  return true;
}

static bool valid_id (const char *s)
{
  return strlen (s) == CP_ID_LEN && strspn (s, "0123456789abcdef") == CP_ID_LEN;
}

/* The id a reference names within cluster: an id, or an ARN of type with rest <cluster>/<id>
 * or <id>. NULL when it cannot name one. */
static const char *ref_id (const cp_ctx *ctx, const char *cluster, const char *ref,
                           const char *want_type, char rest[512])
{
  char type[32];
  if (strncmp (ref, "arn:", 4) != 0)
    return valid_id (ref) ? ref : NULL;
  if (!cp_arn_parse (ctx, ref, type, rest) || strcmp (type, want_type) != 0)
    return NULL;
  char *slash = strchr (rest, '/');
  if (slash)
    {
      *slash = '\0';
      if (strcmp (rest, cluster) != 0)
        return NULL;
      return valid_id (slash + 1) ? slash + 1 : NULL;
    }
  return valid_id (rest) ? rest : NULL;
}

/* FNV-1a: ids are random hex from us, but the store may hold anything. */
static size_t id_hash (const char *id)
{
  uint64_t h = 14695981039346656037ULL;
  for (; *id; id++)
    h = (h ^ (unsigned char)*id) * 1099511628211ULL;
  return (size_t)h;
}

static void index_insert (cp_id_index *x, const char *id, size_t pos)
{
  size_t i = id_hash (id) & (x->cap - 1);
  while (x->slot[i] != 0)
    i = (i + 1) & (x->cap - 1);
  x->slot[i] = pos + 1;
  x->used++;
}

/* A fresh index of arr[0..n), at most half full; on allocation failure none (lookups scan). */
static void index_rebuild (cp_id_index *x, const char *(*id_at) (void *, size_t), void *arr,
                           size_t n)
{
  size_t cap = 256;
  while (2 * (n + 1) > cap)
    cap *= 2;
  free (x->slot);
  x->used = 0;
  if ((x->slot = calloc (cap, sizeof *x->slot)) == NULL)
    {
      x->cap = 0;
      return;
    }
  x->cap = cap;
  for (size_t i = 0; i < n; i++)
    index_insert (x, id_at (arr, i), i);
}

/* Records that arr[pos] (already stored, n entries in all) has its id. Stale entries count as
 * used, so churn without lookups cannot fill the table: past half full it is rebuilt. */
static void index_put (cp_id_index *x, size_t pos, const char *(*id_at) (void *, size_t), void *arr,
                       size_t n)
{
  if (2 * (x->used + 1) > x->cap)
    index_rebuild (x, id_at, arr, n);
  else
    index_insert (x, id_at (arr, pos), pos);
}

/* The position of id in arr[0..n), or -1; hints checked, a stale index rebuilt. */
static ssize_t index_find (cp_id_index *x, const char *id, const char *(*id_at) (void *, size_t),
                           void *arr, size_t n)
{
  if (x->cap)
    for (size_t i = id_hash (id) & (x->cap - 1); x->slot[i]; i = (i + 1) & (x->cap - 1))
      {
        size_t pos = x->slot[i] - 1;
        if (pos < n && strcmp (id_at (arr, pos), id) == 0)
          return (ssize_t)pos;
      }
  for (size_t pos = 0; pos < n; pos++)
    if (strcmp (id_at (arr, pos), id) == 0)
      {
        index_rebuild (x, id_at, arr, n);
        return (ssize_t)pos;
      }
  return -1;
}

static const char *inst_id_at (void *arr, size_t i)
{
  return ((cp_instance **)arr)[i]->id;
}

static const char *task_id_at (void *arr, size_t i)
{
  return ((cp_task **)arr)[i]->id;
}

cp_instance *cp_instance_by_id (cp_model *m, const char *id)
{
  ssize_t pos = index_find (&m->inst_index, id, inst_id_at, m->inst, m->n_inst);
  return pos < 0 ? NULL : m->inst[pos];
}

ssize_t cp_task_pos (cp_model *m, const char *id)
{
  return index_find (&m->task_index, id, task_id_at, m->task, m->n_task);
}

cp_task *cp_task_by_id (cp_model *m, const char *id)
{
  ssize_t pos = cp_task_pos (m, id);
  return pos < 0 ? NULL : m->task[pos];
}

void cp_instance_sync (cp_instance *ci)
{
  const char *status = cp_jstr (ci->doc, "status");
  ci->registered = strcmp (status, "INACTIVE") != 0;
  ci->placeable = strcmp (status, "ACTIVE") == 0;
  ci->attributes = cJSON_GetObjectItemCaseSensitive (ci->doc, "attributes");
  ci->ec2_instance_id = cp_jstr (ci->doc, "ec2InstanceId");
  const cJSON *reg = cJSON_GetObjectItemCaseSensitive (ci->doc, "registeredAt");
  const cJSON *ver = cJSON_GetObjectItemCaseSensitive (
      cJSON_GetObjectItemCaseSensitive (ci->doc, "versionInfo"), "agentVersion");
  ci->registered_at = cJSON_IsNumber (reg) ? (int64_t)reg->valuedouble : 0;
  ci->agent_version = cJSON_IsString (ver) ? ver->valuestring : NULL;
  ci->agent_connected = cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (ci->doc, "agentConnected"));
}

cp_sched_instance cp_instance_sched_view (const cp_instance *ci)
{
  return (cp_sched_instance){ .arn = ci->arn,
                              .ec2_instance_id = ci->ec2_instance_id,
                              .placeable = ci->placeable,
                              .cpu = ci->cpu,
                              .memory = ci->memory,
                              .eni = ci->eni,
                              .ports_tcp = ci->tcp.v,
                              .n_ports_tcp = ci->tcp.n,
                              .ports_udp = ci->udp.v,
                              .n_ports_udp = ci->udp.n,
                              .attributes = ci->attributes,
                              .task_groups = ci->groups,
                              .n_tasks = ci->n_groups,
                              .registered_at = ci->registered_at,
                              .agent_version = ci->agent_version,
                              .agent_disconnected = !ci->agent_connected };
}

static cp_instance *task_instance (cp_model *m, cp_task *t)
{
  if (t->inst == NULL)
    t->inst = cp_instance_by_id (m, t->instance_id);
  return t->inst;
}

cp_instance *cp_instance_find (cp_ctx *ctx, const char *cluster, const char *ref)
{
  char rest[512];
  const char *id = ref_id (ctx, cluster, ref, "container-instance", rest);
  cp_instance *ci = id ? cp_instance_by_id (ctx->model, id) : NULL;
  return ci && strcmp (ci->cluster, cluster) == 0 ? ci : NULL;
}

cp_task *cp_task_find (cp_ctx *ctx, const char *cluster, const char *ref)
{
  char rest[512];
  const char *id = ref_id (ctx, cluster, ref, "task", rest);
  cp_task *t = id ? cp_task_by_id (ctx->model, id) : NULL;
  return t && strcmp (t->cluster, cluster) == 0 ? t : NULL;
}

static int grow (void **v, size_t *cap, size_t n, size_t size)
{
  if (n < *cap)
    return 0;
  size_t c = *cap ? *cap * 2 : 16;
  void *g = realloc (*v, c * size);
  if (g == NULL)
    return -1;
  *v = g;
  *cap = c;
  return 0;
}

int cp_u16v_push (cp_u16v *v, uint16_t x)
{
  if (grow ((void **)&v->v, &v->cap, v->n, sizeof *v->v) < 0)
    return -1;
  v->v[v->n++] = x;
  return 0;
}

void cp_u16v_remove (cp_u16v *v, uint16_t x)
{
  for (size_t i = 0; i < v->n; i++)
    if (v->v[i] == x)
      {
        v->v[i] = v->v[--v->n];
        return;
      }
}

int cp_model_add_instance (cp_model *m, cp_instance *ci)
{
  if (grow ((void **)&m->inst, &m->cap_inst, m->n_inst, sizeof *m->inst) < 0)
    return -1;
  m->inst[m->n_inst++] = ci;
  index_put (&m->inst_index, m->n_inst - 1, inst_id_at, m->inst, m->n_inst);
  return 0;
}

int cp_model_add_task (cp_model *m, cp_task *t)
{
  if (grow ((void **)&m->task, &m->cap_task, m->n_task, sizeof *m->task) < 0)
    return -1;
  m->task[m->n_task++] = t;
  index_put (&m->task_index, m->n_task - 1, task_id_at, m->task, m->n_task);
  return 0;
}

void cp_instance_free (cp_instance *ci)
{
  if (ci == NULL)
    return;
  free (ci->arn);
  free (ci->cluster);
  cJSON_Delete (ci->doc);
  free (ci->tcp.v);
  free (ci->udp.v);
  free (ci->groups);
  free (ci);
}

void cp_task_free (cp_task *t)
{
  if (t == NULL)
    return;
  free (t->arn);
  free (t->cluster);
  cJSON_Delete (t->doc);
  free (t->hold.tcp.v);
  free (t->hold.udp.v);
  free (t->hold.group);
  free (t->hold.subnet_id);
  free (t);
}

void cp_model_free (cp_model *m)
{
  if (m == NULL)
    return;
  for (size_t i = 0; i < m->n_inst; i++)
    cp_instance_free (m->inst[i]);
  for (size_t i = 0; i < m->n_task; i++)
    cp_task_free (m->task[i]);
  for (size_t i = 0; i < m->n_subnets; i++)
    {
      free (m->subnets[i].id);
      free (m->subnets[i].cidr);
      free (m->subnets[i].gateway);
      cJSON_Delete (m->subnets[i].dns);
      free (m->subnets[i].used);
    }
  free (m->subnets);
  cJSON_Delete (m->services);
  free (m->inst_index.slot);
  free (m->task_index.slot);
  free (m->inst);
  free (m->task);
  free (m);
}

int64_t cp_resource_int (const cJSON *resources, const char *name)
{
  const cJSON *r;
  cJSON_ArrayForEach (r, resources)
  {
    if (strcmp (cp_jstr (r, "name"), name) != 0)
      continue;
    const char *keys[] = { "integerValue", "longValue", "doubleValue" };
    for (size_t k = 0; k < ARRAY_SIZE (keys); k++)
      {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive (r, keys[k]);
        if (cJSON_IsNumber (v))
          return (int64_t)v->valuedouble;
      }
  }
  return 0;
}

int cp_resource_ports (const cJSON *resources, const char *name, cp_u16v *v)
{
  const cJSON *r, *p;
  cJSON_ArrayForEach (r, resources)
  {
    if (strcmp (cp_jstr (r, "name"), name) != 0)
      continue;
    cJSON_ArrayForEach (p, cJSON_GetObjectItemCaseSensitive (r, "stringSetValue"))
    {
      long port = cJSON_IsString (p) ? strtol (p->valuestring, NULL, 10) : 0;
      if (port > 0 && port < 65536 && cp_u16v_push (v, (uint16_t)port) < 0)
        return -1;
    }
  }
  return 0;
}

cp_cluster_counts cp_model_cluster_counts (const cp_model *m, const char *cluster)
{
  cp_cluster_counts n = { 0 };
  for (size_t i = 0; m && i < m->n_inst; i++)
    n.instances += strcmp (m->inst[i]->cluster, cluster) == 0
                   && strcmp (cp_jstr (m->inst[i]->doc, "status"), "INACTIVE") != 0;
  for (size_t i = 0; m && i < m->n_task; i++)
    {
      const char *s = cp_jstr (m->task[i]->doc, "lastStatus");
      if (strcmp (m->task[i]->cluster, cluster) != 0 || strcmp (s, "STOPPED") == 0)
        continue;
      if (strcmp (s, "RUNNING") == 0)
        n.running++;
      else if (strcmp (s, "PENDING") == 0)
        n.pending++;
      else
        n.stopping++;
    }
  const cJSON *svc, *services = m ? m->services : NULL;
  cJSON_ArrayForEach (svc, services)
  {
    n.services += strcmp (cp_jstr (svc, "_cluster"), cluster) == 0
                  && strcmp (cp_jstr (svc, "status"), "INACTIVE") != 0;
  }
  return n;
}

/* ---- resource accounting ---- */

cp_subnet *cp_subnet_find (cp_model *m, const char *id)
{
  for (size_t i = 0; i < m->n_subnets; i++)
    if (strcmp (m->subnets[i].id, id) == 0)
      return &m->subnets[i];
  return NULL;
}

void cp_subnet_mark (cp_subnet *s, uint32_t ip, bool used)
{
  if (ip < s->net || ip - s->net >= s->size)
    return;
  uint32_t off = ip - s->net;
  if (used)
    s->used[off / 8] |= (uint8_t)(1u << (off % 8));
  else
    s->used[off / 8] &= (uint8_t) ~(1u << (off % 8));
}

int cp_subnet_alloc (cp_subnet *s, uint32_t *ip)
{
  struct in_addr gw = { 0 };
  inet_pton (AF_INET, s->gateway, &gw);
  for (uint32_t off = 1; off + 1 < s->size; off++)
    if (!(s->used[off / 8] & (1u << (off % 8))) && s->net + off != ntohl (gw.s_addr))
      {
        *ip = s->net + off;
        cp_subnet_mark (s, *ip, true);
        return 0;
      }
  return -1;
}

static bool is_running (const cp_task *t)
{
  return strcmp (cp_jstr (t->doc, "lastStatus"), "RUNNING") == 0;
}

int cp_task_take (cp_model *m, cp_task *t)
{
  cp_instance *ci = task_instance (m, t);
  if (t->holding || ci == NULL)
    return 0;
  if (grow ((void **)&ci->groups, &ci->cap_groups, ci->n_groups, sizeof *ci->groups) < 0)
    return -1;
  for (size_t i = 0; i < t->hold.tcp.n; i++)
    if (cp_u16v_push (&ci->tcp, t->hold.tcp.v[i]) < 0)
      return -1;
  for (size_t i = 0; i < t->hold.udp.n; i++)
    if (cp_u16v_push (&ci->udp, t->hold.udp.v[i]) < 0)
      return -1;
  ci->groups[ci->n_groups++] = t->hold.group;
  ci->cpu -= t->hold.cpu;
  ci->memory -= t->hold.memory;
  ci->eni -= t->hold.eni;
  if (is_running (t))
    ci->running++;
  else
    ci->pending++;
  cp_subnet *s = t->hold.subnet_id ? cp_subnet_find (m, t->hold.subnet_id) : NULL;
  if (s)
    cp_subnet_mark (s, t->hold.ip, true);
  t->holding = true;
  return 0;
}

void cp_task_release (cp_model *m, cp_task *t)
{
  cp_instance *ci = task_instance (m, t);
  cp_subnet *s = t->hold.subnet_id ? cp_subnet_find (m, t->hold.subnet_id) : NULL;
  if (!t->holding)
    return;
  t->holding = false;
  if (s)
    cp_subnet_mark (s, t->hold.ip, false);
  if (ci == NULL)
    return;
  for (size_t i = 0; i < t->hold.tcp.n; i++)
    cp_u16v_remove (&ci->tcp, t->hold.tcp.v[i]);
  for (size_t i = 0; i < t->hold.udp.n; i++)
    cp_u16v_remove (&ci->udp, t->hold.udp.v[i]);
  for (size_t i = 0; i < ci->n_groups; i++)
    if (ci->groups[i] == t->hold.group)
      {
        ci->groups[i] = ci->groups[--ci->n_groups];
        break;
      }
  ci->cpu += t->hold.cpu;
  ci->memory += t->hold.memory;
  ci->eni += t->hold.eni;
  /* The status the task had while holding decides which count it was in. */
  if (is_running (t))
    ci->running--;
  else
    ci->pending--;
}

void cp_task_count_status (cp_model *m, cp_task *t, const char *old_status)
{
  cp_instance *ci = task_instance (m, t);
  bool was = strcmp (old_status, "RUNNING") == 0, now = is_running (t);
  if (ci == NULL || !t->holding || was == now)
    return;
  ci->running += now ? 1 : -1;
  ci->pending += now ? -1 : 1;
}

/* ---- documents ---- */

static cJSON *ports_json (const cp_u16v *v)
{
  cJSON *a = cJSON_CreateArray ();
  for (size_t i = 0; a && i < v->n; i++)
    if (!cJSON_AddItemToArray (a, cJSON_CreateNumber (v->v[i])))
      {
        cJSON_Delete (a);
        return NULL;
      }
  return a;
}

int cp_instance_save (cp_ctx *ctx, const cp_instance *ci, cp_fault *fault)
{
  _cleanup_json_ cJSON *row = cJSON_CreateObject ();
  _cleanup_free_ char *text = NULL;
  berr *err = NULL;
  if (row == NULL || !cJSON_AddItemReferenceToObject (row, "ci", ci->doc)
      || !cJSON_AddStringToObject (row, "key", ci->key)
      || (text = cJSON_PrintUnformatted (row)) == NULL)
    return cp_fail_oom (fault);
  if (cp_store_put_doc (ctx->store, CP_DOC_INSTANCE, ci->id, ci->cluster, text, &err) < 0)
    return cp_fail_server (fault, &err);
  return 0;
}

int cp_task_save (cp_ctx *ctx, const cp_task *t, cp_fault *fault)
{
  _cleanup_json_ cJSON *row = cJSON_CreateObject ();
  _cleanup_free_ char *text = NULL;
  berr *err = NULL;
  cJSON *hold = cJSON_AddObjectToObject (row, "hold");
  struct in_addr a = { .s_addr = htonl (t->hold.ip) };
  char ip[INET_ADDRSTRLEN];
  inet_ntop (AF_INET, &a, ip, sizeof ip);
  if (row == NULL || hold == NULL || !cJSON_AddItemReferenceToObject (row, "task", t->doc)
      || !cJSON_AddStringToObject (row, "instance", t->instance_id)
      || !cJSON_AddBoolToObject (row, "holding", t->holding)
      || !cJSON_AddNumberToObject (hold, "cpu", (double)t->hold.cpu)
      || !cJSON_AddNumberToObject (hold, "memory", (double)t->hold.memory)
      || !cJSON_AddBoolToObject (hold, "eni", t->hold.eni)
      || !cp_jset (hold, "tcp", ports_json (&t->hold.tcp))
      || !cp_jset (hold, "udp", ports_json (&t->hold.udp))
      || !cJSON_AddStringToObject (hold, "group", t->hold.group ? t->hold.group : "")
      || (t->hold.subnet_id
          && (!cJSON_AddStringToObject (hold, "subnet", t->hold.subnet_id)
              || !cJSON_AddStringToObject (hold, "ip", ip)))
      || (text = cJSON_PrintUnformatted (row)) == NULL)
    return cp_fail_oom (fault);
  if (cp_store_put_doc (ctx->store, CP_DOC_TASK, t->id, t->cluster, text, &err) < 0)
    return cp_fail_server (fault, &err);
  return 0;
}

static int load_instance (void *cls, const char *id, const char *cluster, const char *body,
                          berr **err)
{
  cp_ctx *ctx = cls;
  _cleanup_json_ cJSON *row = cJSON_Parse (body ? body : "");
  cp_instance *ci = calloc (1, sizeof *ci);
  cJSON *doc = cJSON_DetachItemFromObjectCaseSensitive (row, "ci");
  if (ci == NULL || !cJSON_IsObject (doc) || id == NULL || !valid_id (id) || cluster == NULL)
    {
      cJSON_Delete (doc);
      free (ci);
      return berr_make (err, EIO, "container instance `%s`: unreadable row", id ? id : "");
    }
  ci->doc = doc;
  strcpy (ci->id, id);
  snprintf (ci->key, sizeof ci->key, "%s", cp_jstr (row, "key"));
  const cJSON *reg = cJSON_GetObjectItemCaseSensitive (doc, "registeredResources");
  ci->cpu = cp_resource_int (reg, "CPU");
  ci->memory = cp_resource_int (reg, "MEMORY");
  ci->eni = cp_resource_int (reg, "ENI");
  if ((ci->arn = strdup (cp_jstr (doc, "containerInstanceArn"))) == NULL
      || (ci->cluster = strdup (cluster)) == NULL || cp_resource_ports (reg, "PORTS", &ci->tcp) < 0
      || cp_resource_ports (reg, "PORTS_UDP", &ci->udp) < 0
      || cp_model_add_instance (ctx->model, ci) < 0)
    {
      cp_instance_free (ci);
      return berr_sys (err, "load container instance");
    }
  cp_instance_sync (ci);
  return 0;
}

static int load_ports (const cJSON *a, cp_u16v *v)
{
  const cJSON *p;
  cJSON_ArrayForEach (p, a)
  {
    if (cJSON_IsNumber (p) && p->valuedouble >= 0 && p->valuedouble < 65536
        && cp_u16v_push (v, (uint16_t)p->valuedouble) < 0)
      return -1;
  }
  return 0;
}

static int load_hold (const cJSON *h, cp_hold *hold)
{
  const cJSON *cpu = cJSON_GetObjectItemCaseSensitive (h, "cpu");
  const cJSON *mem = cJSON_GetObjectItemCaseSensitive (h, "memory");
  hold->cpu = cJSON_IsNumber (cpu) ? (int64_t)cpu->valuedouble : 0;
  hold->memory = cJSON_IsNumber (mem) ? (int64_t)mem->valuedouble : 0;
  hold->eni = cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (h, "eni"));
  if (load_ports (cJSON_GetObjectItemCaseSensitive (h, "tcp"), &hold->tcp) < 0
      || load_ports (cJSON_GetObjectItemCaseSensitive (h, "udp"), &hold->udp) < 0
      || (hold->group = strdup (cp_jstr (h, "group"))) == NULL)
    return -1;
  if (*cp_jstr (h, "subnet"))
    {
      struct in_addr a = { 0 };
      inet_pton (AF_INET, cp_jstr (h, "ip"), &a);
      hold->ip = ntohl (a.s_addr);
      if ((hold->subnet_id = strdup (cp_jstr (h, "subnet"))) == NULL)
        return -1;
    }
  return 0;
}

static int load_task (void *cls, const char *id, const char *cluster, const char *body, berr **err)
{
  cp_ctx *ctx = cls;
  _cleanup_json_ cJSON *row = cJSON_Parse (body ? body : "");
  cp_task *t = calloc (1, sizeof *t);
  cJSON *doc = cJSON_DetachItemFromObjectCaseSensitive (row, "task");
  if (t == NULL || !cJSON_IsObject (doc) || id == NULL || !valid_id (id) || cluster == NULL
      || !valid_id (cp_jstr (row, "instance")))
    {
      cJSON_Delete (doc);
      free (t);
      return berr_make (err, EIO, "task `%s`: unreadable row", id ? id : "");
    }
  t->doc = doc;
  strcpy (t->id, id);
  strcpy (t->instance_id, cp_jstr (row, "instance"));
  bool holding = cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (row, "holding"));
  if ((t->arn = strdup (cp_jstr (doc, "taskArn"))) == NULL
      || (t->cluster = strdup (cluster)) == NULL
      || load_hold (cJSON_GetObjectItemCaseSensitive (row, "hold"), &t->hold) < 0
      || cp_model_add_task (ctx->model, t) < 0)
    {
      cp_task_free (t);
      return berr_sys (err, "load task");
    }
  return holding && cp_task_take (ctx->model, t) < 0 ? berr_sys (err, "load task") : 0;
}

int cp_model_load (cp_ctx *ctx, berr **err)
{
  if ((ctx->model = calloc (1, sizeof *ctx->model)) == NULL)
    return berr_sys (err, "allocate model");
  if (cp_store_load_docs (ctx->store, CP_DOC_INSTANCE, load_instance, ctx, err) < 0
      || cp_store_load_docs (ctx->store, CP_DOC_TASK, load_task, ctx, err) < 0
      || cp_services_load (ctx, err) < 0)
    return berr_wrap (err, "load container instances, tasks and services");
  return 0;
}

int cp_model_reload (cp_ctx *ctx, berr **err)
{
  cp_model *old = ctx->model;
  ctx->model = NULL;
  if (cp_model_load (ctx, err) < 0)
    {
      cp_model_free (ctx->model);
      ctx->model = old;
      return -1;
    }
  /* The subnets come from the command line, not the store: keep them, recount addresses. */
  cp_model *m = ctx->model;
  m->subnets = steal_ptr (&old->subnets);
  m->n_subnets = old->n_subnets;
  old->n_subnets = 0;
  for (size_t i = 0; i < m->n_subnets; i++)
    memset (m->subnets[i].used, 0, m->subnets[i].size / 8 + 1);
  for (size_t i = 0; i < m->n_task; i++)
    {
      cp_task *t = m->task[i];
      cp_subnet *s = t->holding && t->hold.subnet_id ? cp_subnet_find (m, t->hold.subnet_id) : NULL;
      if (s)
        cp_subnet_mark (s, t->hold.ip, true);
    }
  cp_model_free (old);
  return 0;
}

/* ---- response shapes ---- */

static cJSON *resource (const char *name, const char *type, int64_t value, const cp_u16v *ports)
{
  cJSON *r = cJSON_CreateObject ();
  if (r == NULL || !cJSON_AddStringToObject (r, "name", name)
      || !cJSON_AddStringToObject (r, "type", type)
      || !cJSON_AddNumberToObject (r, "doubleValue", 0)
      || !cJSON_AddNumberToObject (r, "longValue", 0)
      || !cJSON_AddNumberToObject (r, "integerValue", ports ? 0 : (double)value))
    goto fail;
  if (ports)
    {
      cJSON *set = cJSON_AddArrayToObject (r, "stringSetValue");
      for (size_t i = 0; set && i < ports->n; i++)
        {
          char p[8];
          snprintf (p, sizeof p, "%u", ports->v[i]);
          if (!cJSON_AddItemToArray (set, cJSON_CreateString (p)))
            goto fail;
        }
      if (set == NULL)
        goto fail;
    }
  return r;
fail:
  cJSON_Delete (r);
  return NULL;
}

cJSON *cp_instance_json (const cp_instance *ci)
{
  _cleanup_json_ cJSON *j = cJSON_Duplicate (ci->doc, true);
  cJSON *rem = cJSON_CreateArray ();
  if (j == NULL || !cp_jset (j, "remainingResources", rem))
    return NULL;
  if (!cJSON_AddItemToArray (rem, resource ("CPU", "INTEGER", ci->cpu, NULL))
      || !cJSON_AddItemToArray (rem, resource ("MEMORY", "INTEGER", ci->memory, NULL))
      || !cJSON_AddItemToArray (rem, resource ("PORTS", "STRINGSET", 0, &ci->tcp))
      || !cJSON_AddItemToArray (rem, resource ("PORTS_UDP", "STRINGSET", 0, &ci->udp))
      || !cJSON_AddItemToArray (rem, resource ("ENI", "INTEGER", ci->eni, NULL))
      || !cp_jset_num (j, "runningTasksCount", ci->running)
      || !cp_jset_num (j, "pendingTasksCount", ci->pending))
    return NULL;
  return steal_ptr (&j);
}

cJSON *cp_task_json (const cp_task *t, bool tags)
{
  cJSON *j = cJSON_Duplicate (t->doc, true);
  cJSON_DeleteItemFromObjectCaseSensitive (j, "_credentials"); /* channel.c's, not ECS's */
  if (j && !tags)
    cJSON_DeleteItemFromObjectCaseSensitive (j, "tags");
  return j;
}
