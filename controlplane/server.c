/* berth-control's HTTP front: libmicrohttpd driven by one thread of ours around its epoll
 * descriptor (one event loop, no thread per connection, and a tick for the agent channel's
 * timers), AWS JSON 1.1 framing, SigV4 and the body limit before dispatch. */
#include "controlplane/internal.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define TARGET_PREFIX "AmazonEC2ContainerServiceV20141113."
#define CHANNEL_PREFIX "BerthChannelV1."
#define CONTROL_PREFIX "BerthControlV1."
#define TICK_MS 250
/* Every agent holds one connection: room for thousands (the descriptor limit is raised too). */
#define CONNECTION_LIMIT 16000

struct cp_server
{
  struct MHD_Daemon *daemon;
  cp_ctx *ctx;
  uint16_t port;
  char *tls_cert; /* PEM text, kept for the daemon's lifetime; NULL without TLS */
  char *tls_key;
  size_t tls_key_len;
  pthread_t thread;
  bool running;
  int stop_fd;          /* eventfd: the loop thread ends when it is written */
  struct cp_conn *held; /* suspended polls, to notice their clients leaving */
};

/* Per-request state: the body as it arrives; for a held Poll, its answer when it comes. */
typedef struct cp_conn
{
  char *body;
  size_t len;
  struct MHD_Connection *conn;
  bool held;   /* suspended, waiting for the channel */
  char *reply; /* the held poll's answer, set by on_wake */
  int reply_status;
  bool answered;               /* reply is ready */
  bool gone;                   /* the client closed while held: close without answering */
  struct cp_conn *prev, *next; /* in cp_server.held while held */
} cp_conn;

static void held_unlink (cp_server *srv, cp_conn *c)
{
  if (c->prev)
    c->prev->next = c->next;
  else if (srv->held == c)
    srv->held = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

int cp_parse_listen (const char *listen, char *host, size_t host_len, uint16_t *port,
                     bool *loopback, berr **err)
{
  const char *colon, *h = listen;
  size_t hlen;
  uint64_t p;
  if (listen[0] == '[')
    {
      const char *close = strchr (listen, ']');
      if (close == NULL || close[1] != ':')
        return berr_make (err, EINVAL, "listen address `%s`: expected [IPV6]:PORT", listen);
      h = listen + 1, hlen = (size_t)(close - h), colon = close + 1;
    }
  else if ((colon = strrchr (listen, ':')) == NULL)
    return berr_make (err, EINVAL, "listen address `%s`: expected HOST:PORT", listen);
  else
    hlen = (size_t)(colon - listen);
  if (hlen == 0 || hlen >= host_len || bfs_parse_u64 (colon + 1, &p) < 0 || p > 65535
      || colon[1] == '\0')
    return berr_make (err, EINVAL, "listen address `%s`: bad host or port", listen);
  memcpy (host, h, hlen);
  host[hlen] = '\0';
  if (strcmp (host, "localhost") == 0)
    snprintf (host, host_len, "127.0.0.1");
  struct in_addr a4;
  struct in6_addr a6;
  if (inet_pton (AF_INET, host, &a4) == 1)
    *loopback = (ntohl (a4.s_addr) >> 24) == 127;
  else if (inet_pton (AF_INET6, host, &a6) == 1)
    *loopback = IN6_IS_ADDR_LOOPBACK (&a6);
  else
    return berr_make (err, EINVAL, "listen address `%s`: host must be a numeric address", listen);
  *port = (uint16_t)p;
  return 0;
}

typedef struct header_query
{
  const char *name;
  char *value; /* several headers of one name are joined with commas, as SigV4 says */
} header_query;

static enum MHD_Result collect_header (void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
  header_query *q = cls;
  if (strcasecmp (key, q->name) != 0)
    return MHD_YES;
  char *joined = NULL;
  if (asprintf (&joined, "%s%s%s", q->value ? q->value : "", q->value ? "," : "",
                value ? value : "")
      < 0)
    return MHD_NO;
  free (q->value);
  q->value = joined;
  return MHD_YES;
}

static char *request_header (void *cls, const char *name)
{
  header_query q = { .name = name, .value = NULL };
  MHD_get_connection_values (cls, MHD_HEADER_KIND, collect_header, &q);
  return q.value;
}

typedef struct query_args
{
  char **pairs;
  size_t n;
  bool failed;
} query_args;

static enum MHD_Result collect_arg (void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
  query_args *q = cls;
  _cleanup_free_ char *k = cp_uri_encode (key, false);
  _cleanup_free_ char *v = cp_uri_encode (value ? value : "", false);
  char **grown = realloc (q->pairs, (q->n + 1) * sizeof *grown);
  if (grown == NULL || k == NULL || v == NULL)
    {
      q->failed = true;
      if (grown)
        q->pairs = grown;
      return MHD_NO;
    }
  q->pairs = grown;
  if (asprintf (&q->pairs[q->n], "%s=%s", k, v) < 0)
    {
      q->failed = true;
      return MHD_NO;
    }
  q->n++;
  return MHD_YES;
}

static int compare_str (const void *a, const void *b)
{
  return strcmp (*(char *const *)a, *(char *const *)b);
}

/* The canonical query string: encoded pairs sorted and joined with '&' (newly allocated). */
static char *canonical_query (struct MHD_Connection *conn)
{
  query_args q = { 0 };
  size_t total = 1;
  MHD_get_connection_values (conn, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
  char *out = NULL;
  if (!q.failed)
    {
      if (q.n > 0)
        qsort (q.pairs, q.n, sizeof *q.pairs, compare_str);
      for (size_t i = 0; i < q.n; i++)
        total += strlen (q.pairs[i]) + 1;
      if ((out = calloc (1, total)) != NULL)
        for (size_t i = 0; i < q.n; i++)
          {
            if (i > 0)
              strcat (out, "&");
            strcat (out, q.pairs[i]);
          }
    }
  for (size_t i = 0; i < q.n; i++)
    free (q.pairs[i]);
  free (q.pairs);
  return out;
}

static void request_id (char out[37])
{
  unsigned char b[16] = { 0 };
  if (getrandom (b, sizeof b, GRND_NONBLOCK) < 0)
    memset (b, 0, sizeof b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  snprintf (out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
            b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
            b[15]);
}

/* Queues body (taken over; NULL means out of memory) as an AWS JSON 1.1 response. */
static enum MHD_Result respond (struct MHD_Connection *conn, int status, char *body)
{
  char id[37];
  if (body == NULL)
    {
      status = 500;
      body = strdup ("{\"__type\":\"ServerException\",\"message\":\"out of memory\"}");
      if (body == NULL)
        return MHD_NO;
    }
  struct MHD_Response *r
      = MHD_create_response_from_buffer (strlen (body), body, MHD_RESPMEM_MUST_FREE);
  if (r == NULL)
    {
      free (body);
      return MHD_NO;
    }
  request_id (id);
  MHD_add_response_header (r, "Content-Type", "application/x-amz-json-1.1");
  MHD_add_response_header (r, "x-amzn-RequestId", id);
  enum MHD_Result ret = MHD_queue_response (conn, (unsigned)status, r);
  MHD_destroy_response (r);
  return ret;
}

static enum MHD_Result respond_fault (struct MHD_Connection *conn, const cp_fault *fault)
{
  return respond (conn, fault->status, cp_error_body (fault->type, fault->message));
}

/* The URL the caller used: the scheme of this listener and the Host header, which SigV4 signs
 * (so it is what the caller meant). Only host-name, address and port characters are taken. */
static void set_request_url (cp_server *srv, struct MHD_Connection *conn)
{
  const char *host = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Host");
  srv->ctx->request_url[0] = '\0';
  if (host == NULL || host[0] == '\0' || strlen (host) > 255
      || strspn (host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")
             != strlen (host))
    return;
  snprintf (srv->ctx->request_url, sizeof srv->ctx->request_url, "%s://%s/",
            srv->tls_key ? "https" : "http", host);
}

/* A whole request has arrived: authenticate, check the framing, dispatch. */
static enum MHD_Result serve (cp_server *srv, struct MHD_Connection *conn, const char *url,
                              cp_conn *c)
{
  cp_fault fault = { 0 };
  enum cp_role role;
  char key[32];
  _cleanup_free_ char *query = canonical_query (conn);
  cp_http_request req = { .method = "POST",
                          .path = url,
                          .canonical_query = query ? query : "",
                          .body = c->body,
                          .body_len = c->len,
                          .header = request_header,
                          .cls = conn };
  if (cp_sigv4_authenticate (srv->ctx->store, &req, srv->ctx->region, time (NULL), &role, key,
                             &fault)
      < 0)
    {
      blog_info ("refused request: %s: %s", fault.type, fault.message);
      return respond_fault (conn, &fault);
    }
  const char *target = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "X-Amz-Target");
  bool channel = target
                 && (strncmp (target, CHANNEL_PREFIX, strlen (CHANNEL_PREFIX)) == 0
                     || strncmp (target, CONTROL_PREFIX, strlen (CONTROL_PREFIX)) == 0);
  if (target == NULL || (!channel && strncmp (target, TARGET_PREFIX, strlen (TARGET_PREFIX)) != 0))
    {
      cp_fail (&fault, "UnknownOperationException", "Missing or unknown X-Amz-Target.");
      return respond_fault (conn, &fault);
    }
  const char *ctype = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Content-Type");
  if (ctype && strncmp (ctype, "application/x-amz-json-1.", 25) != 0)
    {
      cp_fail (&fault, "SerializationException",
               "Content-Type must be application/x-amz-json-1.1.");
      return respond_fault (conn, &fault);
    }
  char *response = NULL;
  set_request_url (srv, conn);
  /* Channel calls (and Berth's own) keep their prefix in the dispatcher's table. */
  const char *action = channel ? target : target + strlen (TARGET_PREFIX);
  int status;
  if (strcmp (action, CHANNEL_PREFIX "Poll") == 0)
    {
      c->conn = conn;
      status = cp_channel_poll (srv->ctx, role, key, c->body ? c->body : "", c->len, c, &response);
      if (status == 0)
        {
          c->held = true;
          c->next = srv->held;
          if (srv->held)
            srv->held->prev = c;
          srv->held = c;
          MHD_suspend_connection (conn);
          return MHD_YES;
        }
    }
  else
    status
        = cp_dispatch_as (srv->ctx, role, key, action, c->body ? c->body : "", c->len, &response);
  blog_debug ("%s -> %d", action, status);
  return respond (conn, status < 0 ? 500 : status, response);
}

/* The channel's answer to a held poll (on the loop thread): resumed, on_request sends it. */
static void on_wake (void *cls, void *waiter, int status, char *body)
{
  cp_conn *c = waiter;
  held_unlink (cls, c);
  c->held = false;
  c->answered = true;
  c->reply = body;
  c->reply_status = status;
  MHD_resume_connection (c->conn);
}

static enum MHD_Result on_request (void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
  cp_server *srv = cls;
  cp_conn *c = *con_cls;
  cp_fault fault = { 0 };
  if (c == NULL)
    {
      const char *length = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Content-Length");
      uint64_t n = 0;
      if (strcmp (method, "POST") != 0)
        {
          cp_fail (&fault, "UnknownOperationException", "Only POST is supported.");
          fault.status = 405;
          return respond_fault (conn, &fault);
        }
      if (length && (bfs_parse_u64 (length, &n) < 0 || n > CP_MAX_BODY))
        {
          cp_fail (&fault, "SerializationException", "Request body exceeds %d bytes.", CP_MAX_BODY);
          fault.status = 413;
          return respond_fault (conn, &fault);
        }
      if ((c = calloc (1, sizeof *c)) == NULL)
        return MHD_NO;
      *con_cls = c;
      return MHD_YES;
    }
  if (*upload_data_size > 0)
    {
      /* A chunked body has no Content-Length to check up front: cut it off here. */
      if (*upload_data_size > CP_MAX_BODY - c->len)
        return MHD_NO;
      char *grown = realloc (c->body, c->len + *upload_data_size + 1);
      if (grown == NULL)
        return MHD_NO;
      memcpy (grown + c->len, upload_data, *upload_data_size);
      c->body = grown;
      c->len += *upload_data_size;
      c->body[c->len] = '\0';
      *upload_data_size = 0;
      return MHD_YES;
    }
  if (c->answered)
    {
      c->answered = false;
      return respond (conn, c->reply_status, steal_ptr (&c->reply));
    }
  if (c->gone)
    return MHD_NO;
  if (c->held)
    return MHD_YES;
  return serve (srv, conn, url, c);
}

static void on_completed (void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode code)
{
  cp_server *srv = cls;
  cp_conn *c = *con_cls;
  if (c)
    {
      if (c->held)
        {
          cp_channel_forget (srv->ctx, c);
          held_unlink (srv, c);
        }
      free (c->reply);
      free (c->body);
      free (c);
      *con_cls = NULL;
    }
}

static void on_mhd_log (void *cls, const char *fmt, va_list ap)
{
  char msg[512];
  vsnprintf (msg, sizeof msg, fmt, ap);
  msg[strcspn (msg, "\n")] = '\0';
  blog_warn ("http: %s", msg);
}

/* Opens the store, makes the credentials on first start and (re)writes the credentials file
 * when it is missing. */
static int open_state (const cp_config *config, cp_ctx **ctx, berr **err)
{
  _cleanup_free_ char *db = NULL;
  _cleanup_close_ int dirfd = -1;
  cp_credential creds[2];
  bool created;
  struct stat st;
  if (bfs_mkdirs (config->data_dir, 0700, err) < 0)
    return berr_wrap (err, "data directory");
  if ((dirfd = open (config->data_dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC)) < 0)
    return berr_sys (err, "open data directory `%s`", config->data_dir);
  if (asprintf (&db, "%s/berth-control.db", config->data_dir) < 0)
    return berr_sys (err, "allocate");
  /* The store holds the secrets: create it 0600 (SQLite gives its -wal and -shm files the same
   * mode) whatever the umask. */
  _cleanup_close_ int dbfd
      = openat (dirfd, "berth-control.db", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (dbfd < 0)
    return berr_sys (err, "create `%s`", db);
  if (cp_ctx_open (db, config->region, config->account_id, ctx, err) < 0)
    return -1;
  if (config->task_role_duration_s)
    (*ctx)->role_duration_s = config->task_role_duration_s;
  if ((config->subnets_file && cp_ctx_load_subnets (*ctx, config->subnets_file, err) < 0)
      || (config->task_roles_file
          && cp_ctx_load_task_roles (*ctx, config->task_roles_file, err) < 0))
    {
      cp_ctx_free (*ctx);
      *ctx = NULL;
      return -1;
    }
  cp_channel_resend_unsettled (*ctx); /* with the subnets and roles the messages need */
  int r = cp_store_ensure_credentials ((*ctx)->store, creds, &created, err);
  if (r == 0 && (created || fstatat (dirfd, "credentials", &st, 0) < 0))
    {
      r = cp_write_credentials_file (dirfd, creds, err);
      if (r == 0)
        blog_info ("wrote access keys for profiles admin and agent to %s/credentials",
                   config->data_dir);
    }
  explicit_bzero (creds, sizeof creds);
  if (r < 0)
    {
      cp_ctx_free (*ctx);
      *ctx = NULL;
      return berr_wrap (err, "credentials");
    }
  return 0;
}

static int start_daemon (cp_server *srv, const char *host, uint16_t port, berr **err)
{
  struct sockaddr_storage ss = { 0 };
  unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (strchr (host, ':'))
    {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      a->sin6_family = AF_INET6;
      a->sin6_port = htons (port);
      inet_pton (AF_INET6, host, &a->sin6_addr);
      flags |= MHD_USE_IPv6;
    }
  else
    {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      a->sin_family = AF_INET;
      a->sin_port = htons (port);
      inet_pton (AF_INET, host, &a->sin_addr);
    }
  /* Without TLS the key and certificate options are ignored by libmicrohttpd: passing NULLs
   * keeps one call for both cases. */
  if (srv->tls_key)
    flags |= MHD_USE_TLS;
  srv->daemon = MHD_start_daemon (
      flags, port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_CONNECTION_LIMIT,
      (unsigned)CONNECTION_LIMIT, srv->tls_key ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END,
      srv->tls_key, MHD_OPTION_HTTPS_MEM_CERT, srv->tls_cert, MHD_OPTION_END);
  if (srv->daemon == NULL)
    return berr_make (err, EADDRINUSE, "cannot listen on %s port %u (in use or not permitted)",
                      host, port);
  const union MHD_DaemonInfo *info = MHD_get_daemon_info (srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
  srv->port = info ? info->port : port;
  /* Agents reach this same server for now (DiscoverPollEndpoint). */
  if (asprintf (&srv->ctx->base_url, strchr (host, ':') ? "%s://[%s]:%u/" : "%s://%s:%u/",
                srv->tls_key ? "https" : "http", host, (unsigned)srv->port)
      < 0)
    return berr_sys (err, "allocate");
  return 0;
}

/* Never prompts for a passphrase: an encrypted key is refused instead. */
static int no_passphrase (char *buf, int size, int rwflag, void *u)
{
  return -1;
}

/* Checks the PEM certificate and key with OpenSSL before libmicrohttpd (GnuTLS) sees them, so
 * that a wrong file gets a message that names it rather than a failed start. */
static int check_tls_pem (const cp_config *config, const char *cert, const char *key, berr **err)
{
  BIO *cb = BIO_new_mem_buf (cert, -1), *kb = BIO_new_mem_buf (key, -1);
  X509 *x = cb ? PEM_read_bio_X509 (cb, NULL, no_passphrase, NULL) : NULL;
  EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey (kb, NULL, no_passphrase, NULL) : NULL;
  int r = 0;
  if (x == NULL)
    r = berr_make (err, EINVAL, "TLS certificate `%s`: no PEM certificate in it", config->tls_cert);
  else if (k == NULL)
    r = berr_make (err, EINVAL,
                   "TLS key `%s`: no unencrypted PEM private key in it (encrypted keys are not "
                   "supported)",
                   config->tls_key);
  else if (X509_check_private_key (x, k) != 1)
    r = berr_make (err, EINVAL, "TLS key `%s` does not match the certificate `%s`", config->tls_key,
                   config->tls_cert);
  ERR_clear_error ();
  X509_free (x);
  EVP_PKEY_free (k);
  BIO_free (cb);
  BIO_free (kb);
  return r;
}

/* Reads the certificate and the key (refusing a key that group or others may read). */
static int load_tls (cp_server *srv, const cp_config *config, berr **err)
{
  struct stat st;
  size_t len;
  if (!config->tls_cert != !config->tls_key)
    return berr_make (err, EINVAL, "TLS needs both a certificate and a key");
  if (!MHD_is_feature_supported (MHD_FEATURE_TLS))
    return berr_make (err, ENOTSUP, "this libmicrohttpd was built without TLS support");
  _cleanup_close_ int fd = open (config->tls_key, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0 || fstat (fd, &st) < 0)
    return berr_sys (err, "TLS key `%s`", config->tls_key);
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    return berr_make (err, EPERM,
                      "TLS key `%s` is accessible by group or others (mode %04o): make it 0600 "
                      "or 0400",
                      config->tls_key, (unsigned)(st.st_mode & 07777));
  if (bfs_read_fd (fd, config->tls_key, 1 << 20, &srv->tls_key, &srv->tls_key_len, err) < 0
      || bfs_read_all (AT_FDCWD, config->tls_cert, 1 << 20, &srv->tls_cert, &len, err) < 0)
    return berr_wrap (err, "TLS");
  return check_tls_pem (config, srv->tls_cert, srv->tls_key, err);
}

/* libmicrohttpd does not watch a suspended connection: a client that closed its end while its
 * poll is held is found here (hang-up on the socket), forgotten and closed. */
static void reap_held (cp_server *srv)
{
  size_t n = 0, i = 0;
  for (cp_conn *c = srv->held; c; c = c->next)
    n++;
  if (n == 0)
    return;
  _cleanup_free_ struct pollfd *p = calloc (n, sizeof *p);
  _cleanup_free_ cp_conn **conns = calloc (n, sizeof *conns);
  if (p == NULL || conns == NULL)
    return;
  for (cp_conn *c = srv->held; c; c = c->next, i++)
    {
      const union MHD_ConnectionInfo *info
          = MHD_get_connection_info (c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
      p[i] = (struct pollfd){ .fd = info ? info->connect_fd : -1, .events = POLLRDHUP };
      conns[i] = c;
    }
  if (poll (p, n, 0) <= 0)
    return;
  for (i = 0; i < n; i++)
    if (p[i].revents & (POLLRDHUP | POLLHUP | POLLERR))
      {
        cp_conn *c = conns[i];
        cp_channel_forget (srv->ctx, c);
        held_unlink (srv, c);
        c->held = false;
        c->gone = true;
        MHD_resume_connection (c->conn);
      }
}

/* The event loop: libmicrohttpd's epoll descriptor, the stop eventfd and a tick at least every
 * TICK_MS for the channel's timers (held polls' waits, liveness). libmicrohttpd has no timers of
 * its own; driving it from our loop keeps one thread for everything. */
static void *serve_loop (void *arg)
{
  cp_server *srv = arg;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info (srv->daemon, MHD_DAEMON_INFO_EPOLL_FD);
  struct pollfd p[2] = { { info ? info->epoll_fd : -1, POLLIN, 0 }, { srv->stop_fd, POLLIN, 0 } };
  struct timespec last = { 0 }, now;
  for (;;)
    {
      MHD_UNSIGNED_LONG_LONG to;
      int ms = TICK_MS;
      if (MHD_get_timeout (srv->daemon, &to) == MHD_YES && to < (MHD_UNSIGNED_LONG_LONG)ms)
        ms = (int)to;
      if (poll (p, 2, ms) < 0 && errno != EINTR)
        break;
      if (p[1].revents)
        break;
      MHD_run (srv->daemon);
      clock_gettime (CLOCK_MONOTONIC, &now);
      if ((now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000 >= TICK_MS)
        {
          last = now;
          reap_held (srv);
          cp_channel_tick (srv->ctx);
          MHD_run (srv->daemon); /* send what the tick answered */
        }
    }
  cp_channel_close_all (srv->ctx, "berth-control is shutting down");
  MHD_run (srv->daemon);
  return NULL;
}

/* Each held poll is a descriptor: take the hard limit as the soft one. */
static void raise_fd_limit (void)
{
  struct rlimit rl;
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      setrlimit (RLIMIT_NOFILE, &rl);
    }
}

static int start_loop (cp_server *srv, const cp_config *config, berr **err)
{
  cp_channel_configure (srv->ctx, config->agent_timeout_ms, config->agent_lost_timeout_ms, on_wake,
                        srv);
  if ((srv->stop_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
    return berr_sys (err, "eventfd");
  int r = pthread_create (&srv->thread, NULL, serve_loop, srv);
  if (r != 0)
    return berr_sysn (err, r, "start the server thread");
  srv->running = true;
  return 0;
}

int cp_server_start (const cp_config *config, cp_server **out, berr **err)
{
  char host[64];
  uint16_t port;
  bool loopback, tls = config->tls_cert || config->tls_key;
  if (cp_parse_listen (config->listen, host, sizeof host, &port, &loopback, err) < 0)
    return -1;
  if (!tls && !loopback && !config->allow_insecure_listen)
    return berr_make (err, EPERM,
                      "refusing to serve plaintext HTTP on non-loopback address %s: configure TLS "
                      "(--tls-cert and --tls-key) or pass --allow-insecure-listen",
                      config->listen);
  cp_server *srv = calloc (1, sizeof *srv);
  if (srv == NULL)
    return berr_sys (err, "allocate server");
  srv->stop_fd = -1;
  raise_fd_limit ();
  if ((tls && load_tls (srv, config, err) < 0) || open_state (config, &srv->ctx, err) < 0
      || start_daemon (srv, host, port, err) < 0 || start_loop (srv, config, err) < 0)
    {
      cp_server_stop (srv);
      return -1;
    }
  *out = srv;
  return 0;
}

uint16_t cp_server_port (const cp_server *server)
{
  return server->port;
}

void cp_server_stop (cp_server *server)
{
  if (server == NULL)
    return;
  if (server->running)
    {
      uint64_t one = 1;
      if (write (server->stop_fd, &one, sizeof one) < 0)
        blog_warn ("stop the server thread: %m");
      pthread_join (server->thread, NULL);
    }
  if (server->stop_fd >= 0)
    close (server->stop_fd);
  if (server->daemon)
    MHD_stop_daemon (server->daemon);
  cp_ctx_free (server->ctx);
  if (server->tls_key)
    explicit_bzero (server->tls_key, server->tls_key_len);
  free (server->tls_key);
  free (server->tls_cert);
  free (server);
}
