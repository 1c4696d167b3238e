/* berth-agent's local endpoints: introspection (loopback TCP and a unix socket), and task
 * metadata v4 and credentials on each task's own 169.254.170.2 socket, where the socket that
 * accepted a connection is the caller's identity. docs/agent.md "Local endpoints". */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "lib/clock.h"
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Credentials for a task, as an IAMRoleCredentialsMessage brought them. */
typedef struct ep_cred
{
  char *id;
  bool application; /* roleType TaskApplication (served); else TaskExecution (the agent's) */
  cJSON *creds;     /* roleCredentials */
  struct ep_cred *next;
} ep_cred;

/* Per task: its rate limit and its credentials. */
typedef struct ep_task
{
  char *arn;
  agent_token_bucket bucket;
  ep_cred *creds;
  uint64_t born_us;
  struct ep_task *next;
} ep_task;

/* One 169.254.170.2 socket: a task's (awsvpc) or a container's (bridge). */
typedef struct ep_sock
{
  char *key, *task_arn, *container_id;
  agent_httpd_listener *l;
  struct ep_sock *next;
} ep_sock;

struct agent_endpoints
{
  agent_endpoints_opts o;
  agent_httpd *httpd;
  agent_engine *eng;
  char *cluster, *instance_arn;
  char *unix_path;
  int introspection_tag; /* its address tags the introspection listeners */
  ep_sock *socks;
  ep_task *tasks;
  uint64_t throttled;
};

static uint64_t now_us (void)
{
  return (uint64_t)bclock_mono_ns () / 1000;
}

void agent_token_bucket_init (agent_token_bucket *b, double rate, double burst, uint64_t now)
{
  *b = (agent_token_bucket){ .tokens = burst, .rate = rate, .burst = burst, .last_us = now };
}

bool agent_token_bucket_take (agent_token_bucket *b, uint64_t now)
{
  if (now > b->last_us)
    {
      b->tokens += (double)(now - b->last_us) * b->rate / 1e6;
      if (b->tokens > b->burst)
        b->tokens = b->burst;
      b->last_us = now;
    }
  if (b->tokens < 1)
    return false;
  b->tokens -= 1;
  return true;
}

/* ---- per-task state ---- */

static void cred_free (ep_cred *c)
{
  free (c->id);
  cJSON_Delete (c->creds); /* holds secrets: never logged, freed as soon as the task goes */
  free (c);
}

static void task_free (ep_task *t)
{
  while (t->creds)
    {
      ep_cred *c = t->creds;
      t->creds = c->next;
      cred_free (c);
    }
  free (t->arn);
  free (t);
}

static ep_task *task_get (agent_endpoints *ep, const char *arn, bool create)
{
  for (ep_task *t = ep->tasks; t; t = t->next)
    if (strcmp (t->arn, arn) == 0)
      return t;
  if (!create)
    return NULL;
  ep_task *t = calloc (1, sizeof *t);
  if (t == NULL || (t->arn = strdup (arn)) == NULL)
    {
      free (t);
      return NULL;
    }
  t->born_us = now_us ();
  agent_token_bucket_init (&t->bucket, ep->o.rate, ep->o.burst, t->born_us);
  t->next = ep->tasks;
  ep->tasks = t;
  return t;
}

static void task_drop (agent_endpoints *ep, const char *arn)
{
  for (ep_task **pp = &ep->tasks; *pp; pp = &(*pp)->next)
    if (strcmp ((*pp)->arn, arn) == 0)
      {
        ep_task *t = *pp;
        *pp = t->next;
        task_free (t);
        return;
      }
}

static bool task_has_socket (const agent_endpoints *ep, const char *arn)
{
  for (const ep_sock *s = ep->socks; s; s = s->next)
    if (strcmp (s->task_arn, arn) == 0)
      return true;
  return false;
}

/* Credentials of tasks that never got a socket (host mode) and that the engine no longer has go
 * after ten minutes, so they do not pile up. */
static void tasks_prune (agent_endpoints *ep)
{
  uint64_t now = now_us ();
  for (ep_task **pp = &ep->tasks; *pp;)
    {
      ep_task *t = *pp;
      if (ep->eng && now - t->born_us > 600ULL * 1000000 && !task_has_socket (ep, t->arn)
          && strcmp (agent_engine_task_known (ep->eng, t->arn, NULL), "NONE") == 0)
        {
          *pp = t->next;
          task_free (t);
        }
      else
        pp = &t->next;
    }
}

/* ---- credentials ---- */

static const char *jstr (const cJSON *o, const char *key)
{
  return cJSON_GetStringValue (cJSON_GetObjectItem (o, key));
}

int agent_endpoints_credentials (agent_endpoints *ep, const cJSON *message, berr **err)
{
  const char *arn = jstr (message, "taskArn"), *type = jstr (message, "roleType");
  const cJSON *rc = cJSON_GetObjectItem (message, "roleCredentials");
  const char *id = jstr (rc, "credentialsId");
  if (arn == NULL || id == NULL || id[0] == '\0' || jstr (rc, "accessKeyId") == NULL
      || jstr (rc, "secretAccessKey") == NULL)
    return berr_make (err, EPROTO,
                      "IAMRoleCredentialsMessage: needs taskArn and roleCredentials with "
                      "credentialsId, accessKeyId and secretAccessKey");
  tasks_prune (ep);
  ep_task *t = task_get (ep, arn, true);
  cJSON *copy = cJSON_Duplicate (rc, true);
  if (t == NULL || copy == NULL)
    {
      cJSON_Delete (copy);
      return berr_make (err, ENOMEM, "credentials");
    }
  bool application = type == NULL || strcmp (type, "TaskExecution") != 0;
  for (ep_cred *c = t->creds; c; c = c->next)
    if (strcmp (c->id, id) == 0)
      {
        cJSON_Delete (c->creds); /* a refresh */
        c->creds = copy;
        c->application = application;
        return 0;
      }
  ep_cred *c = calloc (1, sizeof *c);
  if (c == NULL || (c->id = strdup (id)) == NULL)
    {
      free (c);
      cJSON_Delete (copy);
      return berr_make (err, ENOMEM, "credentials");
    }
  c->creds = copy;
  c->application = application;
  c->next = t->creds;
  t->creds = c;
  blog_info ("credentials %s (%s) for task %s", id,
             application ? "TaskApplication" : "TaskExecution", arn);
  return 0;
}

void agent_endpoints_credentials_handler (const cJSON *message, void *userdata)
{
  _cleanup_berr_ berr *err = NULL;
  if (agent_endpoints_credentials (userdata, message, &err) < 0)
    blog_berr (&err);
}

/* The task's credentials named id: from a message, else from the payload's roleCredentials;
 * the task id stands for the task's current TaskApplication credentials. */
static const cJSON *creds_find (agent_endpoints *ep, const char *task_arn, const char *id)
{
  ep_task *t = task_get (ep, task_arn, false);
  const char *slash = strrchr (task_arn, '/');
  bool task_id = slash && strcmp (slash + 1, id) == 0;
  for (ep_cred *c = t ? t->creds : NULL; c; c = c->next)
    if (c->application && (task_id || strcmp (c->id, id) == 0))
      return c->creds;
  const cJSON *rc = ep->eng ? agent_engine_task_role_credentials (ep->eng, task_arn) : NULL;
  if (rc
      && (task_id || (jstr (rc, "credentialsId") && strcmp (jstr (rc, "credentialsId"), id) == 0)))
    return rc;
  return NULL;
}

/* ---- the router ---- */

static char *error_body (const char *code, const char *message)
{
  cJSON *o = cJSON_CreateObject ();
  cJSON_AddStringToObject (o, "code", code);
  cJSON_AddStringToObject (o, "message", message);
  char *s = cJSON_PrintUnformatted (o);
  cJSON_Delete (o);
  return s;
}

static void answer_json (cJSON *o, int *status, char **body)
{
  *body = o ? cJSON_PrintUnformatted (o) : NULL;
  *status = *body ? 200 : 500;
  cJSON_Delete (o);
}

static void not_found (int *status, char **body)
{
  *status = 404;
  *body = error_body ("NotFound", "no such resource");
}

static void credentials (agent_endpoints *ep, const char *task_arn, const char *id, int *status,
                         char **body)
{
  const cJSON *rc = id[0] && !strchr (id, '/') ? creds_find (ep, task_arn, id) : NULL;
  if (rc == NULL)
    {
      /* unknown and another task's ids get the same answer: nothing tells them apart */
      *status = 400;
      *body = error_body ("InvalidIdInRequest", "CredentialsV2Request: Credentials not found");
      return;
    }
  cJSON *o = cJSON_CreateObject ();
  cJSON_AddStringToObject (o, "RoleArn", jstr (rc, "roleArn") ? jstr (rc, "roleArn") : "");
  cJSON_AddStringToObject (o, "AccessKeyId", jstr (rc, "accessKeyId"));
  cJSON_AddStringToObject (o, "SecretAccessKey", jstr (rc, "secretAccessKey"));
  cJSON_AddStringToObject (o, "Token", jstr (rc, "sessionToken") ? jstr (rc, "sessionToken") : "");
  cJSON_AddStringToObject (o, "Expiration", jstr (rc, "expiration") ? jstr (rc, "expiration") : "");
  answer_json (o, status, body);
}

/* /v4/<id>[/task][/stats] (and v3, the same documents) for the caller's task only. */
static void metadata (agent_endpoints *ep, const char *task_arn, const char *rest, int *status,
                      char **body)
{
  char id[256];
  const char *slash = strchr (rest, '/');
  size_t n = slash ? (size_t)(slash - rest) : strlen (rest);
  const char *sub = slash ? slash : "";
  if (n == 0 || n >= sizeof id || ep->eng == NULL)
    return not_found (status, body);
  memcpy (id, rest, n);
  id[n] = '\0';
  cJSON *o = NULL;
  if (strcmp (sub, "") == 0 || strcmp (sub, "/task") == 0)
    o = agent_engine_v4 (ep->eng, task_arn, id, sub[0] != '\0', ep->cluster);
  else if (strcmp (sub, "/stats") == 0 || strcmp (sub, "/task/stats") == 0)
    o = agent_engine_v4_stats (ep->eng, task_arn, id, strcmp (sub, "/task/stats") == 0);
  if (o == NULL) /* another task's container id looks like one that does not exist */
    return not_found (status, body);
  answer_json (o, status, body);
}

static void introspection (agent_endpoints *ep, const agent_http_request *req, int *status,
                           char **body)
{
  if (strcmp (req->path, "/v1/metadata") == 0)
    {
      cJSON *o = cJSON_CreateObject ();
      cJSON_AddStringToObject (o, "Cluster", ep->cluster ? ep->cluster : "");
      if (ep->instance_arn)
        cJSON_AddStringToObject (o, "ContainerInstanceArn", ep->instance_arn);
      cJSON_AddStringToObject (o, "Version", "Berth Agent " AGENT_VERSION);
      return answer_json (o, status, body);
    }
  if (strcmp (req->path, "/v1/tasks") != 0)
    return not_found (status, body);
  char arn[1024], id[256];
  bool by_arn = agent_http_query_get (req->query, "taskarn", arn, sizeof arn);
  bool by_id = agent_http_query_get (req->query, "dockerid", id, sizeof id);
  cJSON *o
      = ep->eng ? agent_engine_v1_tasks (ep->eng, by_arn ? arn : NULL, by_id ? id : NULL) : NULL;
  if (o == NULL && !by_arn && !by_id)
    o = cJSON_CreateObject (), cJSON_AddArrayToObject (o, "Tasks");
  if (o == NULL)
    return not_found (status, body);
  answer_json (o, status, body);
}

void agent_endpoints_route (agent_endpoints *ep, const char *task_arn, const char *container_id,
                            const agent_http_request *req, int *status, char **body)
{
  (void)container_id; /* a container may read its task's other containers, as in ECS */
  if (task_arn == NULL)
    return introspection (ep, req, status, body);
  ep_task *t = task_get (ep, task_arn, true);
  if (t && !agent_token_bucket_take (&t->bucket, now_us ()))
    {
      ep->throttled++;
      *status = 429;
      *body = error_body ("TooManyRequests", "rate exceeded");
      return;
    }
  if (strncmp (req->path, "/v2/credentials/", 16) == 0)
    return credentials (ep, task_arn, req->path + 16, status, body);
  if (strncmp (req->path, "/v4/", 4) == 0 || strncmp (req->path, "/v3/", 4) == 0)
    return metadata (ep, task_arn, req->path + 4, status, body);
  not_found (status, body);
}

static void on_request (void *tag, const agent_http_request *req, int *status, char **body,
                        void *userdata)
{
  agent_endpoints *ep = userdata;
  if (tag == &ep->introspection_tag)
    return agent_endpoints_route (ep, NULL, NULL, req, status, body);
  const ep_sock *s = tag;
  agent_endpoints_route (ep, s->task_arn, s->container_id, req, status, body);
}

/* ---- sockets ---- */

static int listen_loopback (uint16_t port, berr **err)
{
  _cleanup_close_ int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct sockaddr_in a = { .sin_family = AF_INET,
                           .sin_port = htons (port),
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  int one = 1;
  if (fd < 0 || setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0
      || bind (fd, (struct sockaddr *)&a, sizeof a) < 0 || listen (fd, 64) < 0)
    return berr_sys (err, "introspection on 127.0.0.1:%u", port);
  return steal_fd (&fd);
}

/* Bound under a temporary name, made 0600, then renamed into place: the socket is never
 * reachable with a wider mode, and a stale one is replaced. */
static int listen_unix (const char *path, berr **err)
{
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  char tmp[sizeof a.sun_path];
  if (snprintf (tmp, sizeof tmp, "%s.%d", path, (int)getpid ()) >= (int)sizeof tmp)
    return berr_make (err, ENAMETOOLONG, "introspection socket `%s`: path too long", path);
  memcpy (a.sun_path, tmp, sizeof tmp);
  _cleanup_close_ int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  unlink (tmp);
  if (fd < 0 || bind (fd, (struct sockaddr *)&a, sizeof a) < 0)
    return berr_sys (err, "introspection socket `%s`", path);
  if (chmod (tmp, 0600) < 0 || listen (fd, 64) < 0 || rename (tmp, path) < 0)
    {
      int r = berr_sys (err, "introspection socket `%s`", path);
      unlink (tmp);
      return r;
    }
  return steal_fd (&fd);
}

static int open_introspection (agent_endpoints *ep, berr **err)
{
  agent_httpd_listener *l;
  if (ep->o.introspection_port)
    {
      int fd = listen_loopback (ep->o.introspection_port, err);
      if (fd < 0 || agent_httpd_listen (ep->httpd, fd, &ep->introspection_tag, &l, err) < 0)
        return -1;
    }
  if (ep->o.introspection_socket)
    {
      int fd = listen_unix (ep->o.introspection_socket, err);
      if (fd < 0 || agent_httpd_listen (ep->httpd, fd, &ep->introspection_tag, &l, err) < 0)
        return -1;
      if ((ep->unix_path = strdup (ep->o.introspection_socket)) == NULL)
        return berr_make (err, ENOMEM, "endpoints");
    }
  return 0;
}

int agent_endpoints_new (const agent_endpoints_opts *o, agent_endpoints **out, berr **err)
{
  agent_endpoints *ep = calloc (1, sizeof *ep);
  if (ep == NULL)
    return berr_make (err, ENOMEM, "endpoints");
  ep->o = *o; /* introspection_socket: used here only, then kept as unix_path */
  if (ep->o.rate <= 0)
    ep->o.rate = AGENT_TASK_RATE;
  if (ep->o.burst < 1)
    ep->o.burst = AGENT_TASK_BURST;
  agent_httpd_opts ho = { .ev = o->ev,
                          .max_conns = o->max_conns,
                          .timeout_us = o->timeout_us,
                          .handler = on_request,
                          .userdata = ep };
  if (agent_httpd_new (&ho, &ep->httpd, err) < 0 || open_introspection (ep, err) < 0)
    {
      agent_endpoints_free (ep);
      return berr_wrap (err, "local endpoints");
    }
  ep->o.introspection_socket = NULL;
  *out = ep;
  return 0;
}

static void sock_free (ep_sock *s)
{
  agent_httpd_listener_free (s->l);
  free (s->key), free (s->task_arn), free (s->container_id);
  free (s);
}

void agent_endpoints_free (agent_endpoints *ep)
{
  if (ep == NULL)
    return;
  while (ep->socks)
    {
      ep_sock *s = ep->socks;
      ep->socks = s->next;
      sock_free (s);
    }
  while (ep->tasks)
    {
      ep_task *t = ep->tasks;
      ep->tasks = t->next;
      task_free (t);
    }
  agent_httpd_free (ep->httpd);
  if (ep->unix_path)
    unlink (ep->unix_path);
  free (ep->unix_path), free (ep->cluster), free (ep->instance_arn);
  free (ep);
}

int agent_endpoints_set_identity (agent_endpoints *ep, const char *cluster,
                                  const char *instance_arn, berr **err)
{
  char *c = cluster ? strdup (cluster) : NULL, *a = instance_arn ? strdup (instance_arn) : NULL;
  if ((cluster && c == NULL) || (instance_arn && a == NULL))
    {
      free (c), free (a);
      return berr_make (err, ENOMEM, "endpoints");
    }
  free (ep->cluster), free (ep->instance_arn);
  ep->cluster = c;
  ep->instance_arn = a;
  return 0;
}

void agent_endpoints_attach (agent_endpoints *ep, agent_engine *e)
{
  ep->eng = e;
  if (e) /* detached: the sockets go with the engine (its next start opens them again) */
    return;
  while (ep->socks)
    {
      ep_sock *s = ep->socks;
      ep->socks = s->next;
      sock_free (s);
    }
}

int agent_endpoints_open (agent_endpoints *ep, const char *key, const char *netns_path,
                          const char *task_arn, const char *container_id, berr **err)
{
  for (ep_sock *s = ep->socks; s; s = s->next)
    if (strcmp (s->key, key) == 0)
      return 0;
  _cleanup_close_ int ns = open (netns_path, O_RDONLY | O_CLOEXEC);
  if (ns < 0)
    return berr_sys (err, "task endpoint %s: namespace `%s`", key, netns_path);
  struct in_addr addr;
  inet_pton (AF_INET, NET_TASK_ENDPOINT_ADDR, &addr);
  int fd = net_task_endpoint_listen (ns, addr, 80, err);
  if (fd < 0)
    return berr_wrap (err, "task endpoint %s", key);
  ep_sock *s = calloc (1, sizeof *s);
  if (s == NULL || (s->key = strdup (key)) == NULL || (s->task_arn = strdup (task_arn)) == NULL
      || (container_id && (s->container_id = strdup (container_id)) == NULL))
    {
      close (fd);
      if (s)
        free (s->key), free (s->task_arn), free (s);
      return berr_make (err, ENOMEM, "task endpoint %s", key);
    }
  if (agent_httpd_listen (ep->httpd, fd, s, &s->l, err) < 0)
    {
      free (s->key), free (s->task_arn), free (s->container_id), free (s);
      return berr_wrap (err, "task endpoint %s", key);
    }
  s->next = ep->socks;
  ep->socks = s;
  return 0;
}

void agent_endpoints_close (agent_endpoints *ep, const char *key)
{
  for (ep_sock **pp = &ep->socks; *pp; pp = &(*pp)->next)
    if (strcmp ((*pp)->key, key) == 0)
      {
        ep_sock *s = *pp;
        *pp = s->next;
        if (!task_has_socket (ep, s->task_arn))
          task_drop (ep, s->task_arn);
        sock_free (s);
        return;
      }
}

size_t agent_endpoints_sockets (const agent_endpoints *ep)
{
  size_t n = 0;
  for (const ep_sock *s = ep->socks; s; s = s->next)
    n++;
  return n;
}

uint64_t agent_endpoints_throttled (const agent_endpoints *ep)
{
  return ep->throttled;
}
