/* A minimal HTTP/1.1 GET server on the agent's sd-event loop for the local endpoints: one request
 * per connection, strict head limits, a deadline per connection, a cap on connections. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "lib/hex.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_HEADERS 64

typedef struct conn conn;

struct agent_httpd_listener
{
  agent_httpd *h;
  int fd;
  void *tag;
  sd_event_source *src;
  conn *conns;
  agent_httpd_listener *prev, *next;
};

struct conn
{
  agent_httpd_listener *l;
  int fd;
  sd_event_source *io, *timer;
  char *buf; /* the head while reading, then the answer */
  size_t len, off;
  bool writing;
  conn *prev, *next;
};

struct agent_httpd
{
  agent_httpd_opts o;
  agent_httpd_listener *listeners;
  unsigned n_conns;
  uint64_t answered, refused;
};

/* ---- the request parser ---- */

static bool is_tchar (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
         || (c && strchr ("!#$%&'*+-.^_`|~", c));
}

/* One header line [p, end): "name: value" with a token name and visible or blank value. */
static bool header_ok (const char *p, const char *end)
{
  const char *q = p;
  while (q < end && is_tchar (*q))
    q++;
  if (q == p || q == end || *q != ':')
    return false;
  for (q++; q < end; q++)
    if ((unsigned char)*q < 0x20 && *q != '\t')
      return false;
  return true;
}

/* "GET <target> HTTP/1.x" into out; the status on failure, 0 when good. */
static int request_line (const char *p, const char *end, agent_http_request *out)
{
  const char *sp = memchr (p, ' ', (size_t)(end - p));
  if (sp == NULL || sp == p)
    return 400;
  for (const char *q = p; q < sp; q++)
    if (!is_tchar (*q))
      return 400;
  bool get = sp - p == 3 && memcmp (p, "GET", 3) == 0;
  const char *t = sp + 1, *te = memchr (t, ' ', (size_t)(end - t));
  if (te == NULL || te == t)
    return 400;
  if (end - te - 1 != 8 || memcmp (te + 1, "HTTP/1.", 7) != 0)
    return 400;
  if (te[8] != '0' && te[8] != '1')
    return 505;
  if (*t != '/')
    return 400;
  for (const char *q = t; q < te; q++)
    if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
      return 400;
  if (te - t > AGENT_HTTPD_MAX_TARGET)
    return 414;
  if (!get)
    return 405;
  const char *qm = memchr (t, '?', (size_t)(te - t));
  const char *pe = qm ? qm : te;
  memcpy (out->path, t, (size_t)(pe - t));
  out->path[pe - t] = '\0';
  size_t ql = qm ? (size_t)(te - qm - 1) : 0;
  if (qm)
    memcpy (out->query, qm + 1, ql);
  out->query[ql] = '\0';
  return 0;
}

int agent_http_request_parse (const char *buf, size_t len, agent_http_request *out)
{
  const char *end = NULL;
  for (size_t i = 0; i + 3 < len && i + 4 <= AGENT_HTTPD_MAX_HEAD; i++)
    if (memcmp (buf + i, "\r\n\r\n", 4) == 0)
      {
        end = buf + i + 2; /* just past the last header line's CRLF */
        break;
      }
  if (end == NULL)
    return len >= AGENT_HTTPD_MAX_HEAD ? 431 : 0;
  const char *p = buf, *eol = memchr (p, '\r', (size_t)(end - p));
  if (eol[1] != '\n')
    return 400;
  int r = request_line (p, eol, out);
  if (r)
    return r;
  unsigned n = 0;
  for (p = eol + 2; p < end; p = eol + 2)
    {
      eol = memchr (p, '\r', (size_t)(end - p));
      if (eol == NULL || eol[1] != '\n' || memchr (p, '\n', (size_t)(eol - p)))
        return 400;
      if (++n > MAX_HEADERS)
        return 431;
      if (!header_ok (p, eol)) /* also refuses obsolete line folding */
        return 400;
    }
  return 1;
}

bool agent_http_query_get (const char *query, const char *key, char *out, size_t size)
{
  size_t kl = strlen (key);
  for (const char *p = query; p && *p; p = strchr (p, '&') ? strchr (p, '&') + 1 : NULL)
    {
      if (strncmp (p, key, kl) != 0 || p[kl] != '=')
        continue;
      size_t n = 0;
      for (const char *v = p + kl + 1; *v && *v != '&'; v++)
        {
          int c = (unsigned char)*v;
          if (c == '%')
            {
              int hi = hex_value (v[1]), lo = hi < 0 ? -1 : hex_value (v[2]);
              if (hi < 0 || lo < 0)
                return false;
              c = hi * 16 + lo;
              v += 2;
            }
          else if (c == '+')
            c = ' ';
          if (c == 0 || n + 1 >= size)
            return false;
          out[n++] = (char)c;
        }
      out[n] = '\0';
      return true;
    }
  return false;
}

/* ---- connections ---- */

static void conn_free (conn *c)
{
  agent_httpd_listener *l = c->l;
  sd_event_source_disable_unref (c->io);
  sd_event_source_disable_unref (c->timer);
  close (c->fd);
  free (c->buf);
  if (c->prev)
    c->prev->next = c->next;
  else
    l->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  l->h->n_conns--;
  free (c);
}

static const char *reason (int status)
{
  switch (status)
    {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 414:
      return "URI Too Long";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return status < 500 ? "Error" : "Internal Server Error";
    }
}

/* Replaces the head in c->buf with the whole answer and starts writing it. */
static void conn_answer (conn *c, int status, char *body)
{
  char *out = NULL;
  const char *b = body ? body : "";
  int n = asprintf (&out,
                    "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                    "Connection: close\r\n\r\n%s",
                    status, reason (status), strlen (b), b);
  free (body);
  if (n < 0)
    {
      conn_free (c);
      return;
    }
  free (c->buf);
  c->buf = out;
  c->len = (size_t)n;
  c->off = 0;
  c->writing = true;
  c->l->h->answered++;
  sd_event_source_set_io_events (c->io, EPOLLOUT);
}

static void conn_handle (conn *c, int r, const agent_http_request *req)
{
  agent_httpd *h = c->l->h;
  int status = r;
  char *body = NULL;
  if (r == 1)
    {
      status = 500;
      h->o.handler (c->l->tag, req, &status, &body, h->o.userdata);
    }
  else
    {
      const char *msg = r == 405 ? "only GET is served" : "bad request";
      if (asprintf (&body, "{\"code\":\"%d\",\"message\":\"%s\"}", r, msg) < 0)
        body = NULL;
    }
  conn_answer (c, status, body);
}

static int conn_write (conn *c)
{
  while (c->off < c->len)
    {
      ssize_t w = send (c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
      if (w <= 0)
        break;
      c->off += (size_t)w;
    }
  conn_free (c);
  return 0;
}

static int on_conn (sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  conn *c = userdata;
  (void)s, (void)revents;
  if (c->writing)
    return conn_write (c);
  ssize_t r = recv (fd, c->buf + c->len, AGENT_HTTPD_MAX_HEAD - c->len, MSG_DONTWAIT);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return 0;
  if (r <= 0) /* the client went away before a whole head */
    {
      conn_free (c);
      return 0;
    }
  c->len += (size_t)r;
  _cleanup_free_ agent_http_request *req = malloc (sizeof *req);
  int p = req ? agent_http_request_parse (c->buf, c->len, req) : 500;
  if (p != 0)
    conn_handle (c, p, req);
  return 0;
}

static int on_conn_timeout (sd_event_source *s, uint64_t usec, void *userdata)
{
  (void)s, (void)usec;
  conn_free (userdata); /* a slow client gets nothing more */
  return 0;
}

static void conn_new (agent_httpd_listener *l, int fd)
{
  agent_httpd *h = l->h;
  conn *c = calloc (1, sizeof *c);
  if (c == NULL || (c->buf = malloc (AGENT_HTTPD_MAX_HEAD)) == NULL)
    {
      free (c);
      close (fd);
      return;
    }
  c->l = l;
  c->fd = fd;
  c->next = l->conns;
  if (l->conns)
    l->conns->prev = c;
  l->conns = c;
  h->n_conns++;
  if (sd_event_add_io (h->o.ev, &c->io, fd, EPOLLIN, on_conn, c) < 0
      || sd_event_add_time_relative (h->o.ev, &c->timer, CLOCK_MONOTONIC, h->o.timeout_us, 0,
                                     on_conn_timeout, c)
             < 0)
    conn_free (c);
}

static int on_accept (sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  agent_httpd_listener *l = userdata;
  (void)s, (void)revents;
  for (;;)
    {
      int cfd = accept4 (fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (cfd < 0)
        return 0; /* EAGAIN, or a connection that died in the queue */
      if (l->h->n_conns >= l->h->o.max_conns)
        {
          l->h->refused++;
          close (cfd);
          continue;
        }
      conn_new (l, cfd);
    }
}

/* ---- the server ---- */

int agent_httpd_new (const agent_httpd_opts *o, agent_httpd **out, berr **err)
{
  agent_httpd *h = calloc (1, sizeof *h);
  if (h == NULL)
    return berr_make (err, ENOMEM, "httpd");
  h->o = *o;
  if (h->o.max_conns == 0)
    h->o.max_conns = 64;
  if (h->o.timeout_us == 0)
    h->o.timeout_us = 5000000;
  *out = h;
  return 0;
}

void agent_httpd_free (agent_httpd *h)
{
  if (h == NULL)
    return;
  while (h->listeners)
    agent_httpd_listener_free (h->listeners);
  free (h);
}

int agent_httpd_listen (agent_httpd *h, int fd, void *tag, agent_httpd_listener **out, berr **err)
{
  _cleanup_close_ int owned = fd;
  int fl = fcntl (fd, F_GETFL);
  if (fl < 0 || fcntl (fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return berr_sys (err, "listening socket");
  agent_httpd_listener *l = calloc (1, sizeof *l);
  if (l == NULL)
    return berr_make (err, ENOMEM, "listener");
  int r = sd_event_add_io (h->o.ev, &l->src, fd, EPOLLIN, on_accept, l);
  if (r < 0)
    {
      free (l);
      return berr_sysn (err, -r, "listening socket on the loop");
    }
  l->h = h;
  l->fd = steal_fd (&owned);
  l->tag = tag;
  l->next = h->listeners;
  if (h->listeners)
    h->listeners->prev = l;
  h->listeners = l;
  *out = l;
  return 0;
}

void agent_httpd_listener_free (agent_httpd_listener *l)
{
  if (l == NULL)
    return;
  while (l->conns)
    conn_free (l->conns);
  sd_event_source_disable_unref (l->src);
  close (l->fd);
  if (l->prev)
    l->prev->next = l->next;
  else
    l->h->listeners = l->next;
  if (l->next)
    l->next->prev = l->prev;
  free (l);
}

unsigned agent_httpd_open_conns (const agent_httpd *h)
{
  return h->n_conns;
}

uint64_t agent_httpd_answered (const agent_httpd *h)
{
  return h->answered;
}

uint64_t agent_httpd_refused (const agent_httpd *h)
{
  return h->refused;
}
