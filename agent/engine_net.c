/* Networking of the task engine: bridge mode endpoints (a namespace per container with its
 * published ports, hostPort 0 chosen by net/), their networkBindings; awsvpc (one namespace per
 * task holding its ENI); teardown and reconcile. host and none need nothing here (the OCI spec
 * shares or makes the namespace). */
#include "agent/engine_internal.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* The endpoint key: "<task id>.<container index>" (net_netns_name_valid). */
void eng_net_key (const eng_container *c, char *key, size_t size)
{
  snprintf (key, size, "%s.%zu", c->task->id, (size_t)(c - c->task->c));
}

static bool is_bridge (const eng_task *t)
{
  const cJSON *m = cJSON_GetObjectItem (t->body, "networkMode");
  return !cJSON_IsString (m) || m->valuestring[0] == '\0' || strcmp (m->valuestring, "bridge") == 0;
}

bool eng_is_awsvpc (const eng_task *t)
{
  const cJSON *m = cJSON_GetObjectItem (t->body, "networkMode");
  return cJSON_IsString (m) && strcmp (m->valuestring, "awsvpc") == 0;
}

/* The awsvpc configuration from the options and ECS_AWSVPC_BLOCK_IMDS / BERTH_ENI_PARENT. */
static void awsvpc_cfg (agent_engine *e, struct net_awsvpc_config *cfg, char *state, size_t size)
{
  snprintf (state, size, "%s/awsvpc", e->o.state_dir);
  *cfg = (struct net_awsvpc_config){
    .host_netns_fd = e->o.awsvpc_host_netns_fd > 0 ? e->o.awsvpc_host_netns_fd : -1,
    .run_dir = e->o.netns_run_dir,
    .state_dir = state,
    .parent = e->o.cfg->eni_parent && e->o.cfg->eni_parent[0] ? e->o.cfg->eni_parent : NULL,
    .block_imds = e->o.cfg->awsvpc_block_imds,
  };
}

/* The task's directory of resolv.conf and hostname (bound into each container). */
char *eng_task_dir (const eng_task *t)
{
  char *p = NULL;
  return asprintf (&p, "%s/tasks/%s", t->e->o.state_dir, t->id) < 0 ? NULL : p;
}

/* The task's ENI (elasticNetworkInterfaces[0]), parsed and validated. */
int eng_task_eni (const eng_task *t, struct net_eni *eni, berr **err)
{
  const cJSON *list = cJSON_GetObjectItem (t->body, "elasticNetworkInterfaces");
  _cleanup_free_ char *text = cJSON_PrintUnformatted (cJSON_GetArrayItem (list, 0));
  if (text == NULL)
    return berr_make (err, EINVAL, "awsvpc: the task has no elasticNetworkInterfaces");
  return net_eni_from_json (text, strlen (text), eni, err);
}

/* awsvpc: the task's namespace, set up by the first container (idempotent for the others). */
static int awsvpc_setup (eng_container *c, berr **err)
{
  agent_engine *e = c->task->e;
  struct net_awsvpc_config cfg;
  struct net_eni eni;
  char state[4096];
  char *path = NULL;
  _cleanup_free_ char *dir = eng_task_dir (c->task);
  awsvpc_cfg (e, &cfg, state, sizeof state);
  if (dir == NULL)
    return berr_make (err, ENOMEM, "awsvpc");
  if (eng_task_eni (c->task, &eni, err) < 0 || bfs_mkdirs (dir, 0755, err) < 0
      || net_awsvpc_setup (&cfg, c->task->id, &eni, dir, &path, err) < 0)
    return berr_wrap (err, "awsvpc");
  free (c->netns);
  c->netns = path;
  return 0;
}

static int mappings (const eng_container *c, struct net_port_mapping **out, size_t *n, berr **err)
{
  const cJSON *pm = cJSON_GetObjectItem (c->def, "portMappings"), *it;
  *n = 0;
  *out = calloc ((size_t)cJSON_GetArraySize (pm) + 1, sizeof **out);
  if (*out == NULL)
    return berr_make (err, ENOMEM, "port mappings");
  cJSON_ArrayForEach (it, pm)
  {
    const cJSON *cp = cJSON_GetObjectItem (it, "containerPort");
    const cJSON *hp = cJSON_GetObjectItem (it, "hostPort");
    const char *proto = cJSON_GetStringValue (cJSON_GetObjectItem (it, "protocol"));
    if (!cJSON_IsNumber (cp) || cp->valuedouble < 1 || cp->valuedouble > 65535
        || (hp && (!cJSON_IsNumber (hp) || hp->valuedouble < 0 || hp->valuedouble > 65535)))
      return berr_make (err, EINVAL, "portMappings: a bad port");
    (*out)[*n] = (struct net_port_mapping){
      .proto = proto && strcmp (proto, "udp") == 0 ? IPPROTO_UDP : IPPROTO_TCP,
      .container_port = (uint16_t)cp->valuedouble,
      .host_port = hp ? (uint16_t)hp->valuedouble : 0,
    };
    (*n)++;
  }
  return 0;
}

static cJSON *bindings_json (const struct net_bridge_endpoint *ep)
{
  cJSON *arr = cJSON_CreateArray ();
  for (size_t i = 0; arr && i < ep->n_bindings; i++)
    {
      const struct net_port_binding *b = &ep->bindings[i];
      cJSON *o = cJSON_CreateObject ();
      cJSON_AddStringToObject (o, "bindIP", b->bind_ip);
      cJSON_AddNumberToObject (o, "containerPort", b->container_port);
      cJSON_AddNumberToObject (o, "hostPort", b->host_port);
      cJSON_AddStringToObject (o, "protocol", b->proto == IPPROTO_UDP ? "udp" : "tcp");
      cJSON_AddItemToArray (arr, o);
    }
  return arr;
}

/* Bridge mode: the container's endpoint, before its spec is written. Idempotent. */
int eng_net_setup (eng_container *c, berr **err)
{
  agent_engine *e = c->task->e;
  _cleanup_free_ struct net_port_mapping *pm = NULL;
  struct net_bridge_endpoint ep = { 0 };
  size_t n = 0;
  char key[160];
  if (eng_is_awsvpc (c->task))
    {
      if (awsvpc_setup (c, err) < 0)
        return -1;
      eng_endpoint_open (c);
      return 0;
    }
  if (!is_bridge (c->task))
    return 0;
  if (e->o.bridge == NULL)
    return berr_make (err, ENOTSUP, "bridge mode is not configured on this agent");
  eng_net_key (c, key, sizeof key);
  if (mappings (c, &pm, &n, err) < 0 || net_bridge_setup (e->o.bridge, key, pm, n, &ep, err) < 0)
    return -1;
  free (c->netns);
  c->netns = strdup (ep.netns_path);
  cJSON_Delete (c->bindings);
  c->bindings = bindings_json (&ep);
  net_bridge_endpoint_clear (&ep);
  if (c->netns == NULL || c->bindings == NULL)
    return berr_make (err, ENOMEM, "endpoint");
  eng_endpoint_open (c);
  return 0;
}

void eng_net_teardown (eng_container *c)
{
  _cleanup_berr_ berr *err = NULL;
  char key[160];
  eng_endpoint_close (c);
  if (eng_is_awsvpc (c->task))
    {
      /* the task's namespace: the first container's removal undoes it, the others find nothing */
      struct net_awsvpc_config cfg;
      char state[4096];
      _cleanup_free_ char *dir = eng_task_dir (c->task);
      awsvpc_cfg (c->task->e, &cfg, state, sizeof state);
      if (net_awsvpc_teardown (&cfg, c->task->id, &err) < 0)
        blog_berr (&err);
      if (dir && bfs_remove_tree (AT_FDCWD, dir, &err) < 0)
        blog_berr (&err);
      return;
    }
  if (!is_bridge (c->task) || c->task->e->o.bridge == NULL)
    return;
  eng_net_key (c, key, sizeof key);
  if (net_bridge_teardown (c->task->e->o.bridge, key, &err) < 0)
    blog_berr (&err);
}

/* awsvpc namespaces of tasks the store no longer has go. */
static int awsvpc_reconcile (agent_engine *e, berr **err)
{
  struct net_awsvpc_config cfg;
  char state[4096];
  size_t n = 0;
  if (!e->o.cfg->enable_task_eni)
    return 0;
  for (eng_task *t = e->tasks; t; t = t->next)
    n++;
  _cleanup_free_ const char **keys = calloc (n + 1, sizeof *keys);
  if (keys == NULL)
    return berr_make (err, ENOMEM, "reconcile");
  n = 0;
  for (eng_task *t = e->tasks; t; t = t->next)
    if (eng_is_awsvpc (t))
      keys[n++] = t->id;
  awsvpc_cfg (e, &cfg, state, sizeof state);
  return net_awsvpc_reconcile (&cfg, keys, err);
}

/* After a restart: endpoints and awsvpc namespaces whose task the store no longer has go. */
int eng_net_reconcile (agent_engine *e, berr **err)
{
  size_t n = 0, cap = 16;
  if (awsvpc_reconcile (e, err) < 0)
    return -1;
  if (e->o.bridge == NULL)
    return 0;
  char **keys = calloc (cap, sizeof *keys);
  for (eng_task *t = e->tasks; keys && t; t = t->next)
    for (size_t i = 0; i < t->n && keys; i++)
      {
        if (n + 1 >= cap)
          {
            char **k = realloc (keys, (cap *= 2) * sizeof *keys);
            if (k == NULL)
              break;
            keys = k;
          }
        keys[n] = malloc (160);
        if (keys[n])
          eng_net_key (&t->c[i], keys[n++], 160);
      }
  if (keys == NULL)
    return berr_make (err, ENOMEM, "reconcile");
  int r = net_bridge_reconcile (e->o.bridge, (const char *const *)keys, n, err);
  for (size_t i = 0; i < n; i++)
    free (keys[i]);
  free (keys);
  return r < 0 ? -1 : 0;
}
