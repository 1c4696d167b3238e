/* berth-agent's HTTP client: libcurl's multi interface driven by the daemon's sd-event loop
 * (curl tells us which sockets and which timeout to watch), AWS JSON 1.1 calls signed SigV4 by
 * curl with the agent's current credentials. */
#include "agent/agent.h"
#include "lib/cleanup.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#define RESPONSE_MAX (8 * 1024 * 1024)

typedef struct request
{
  struct request *next;
  agent_http *h;
  CURL *easy;
  struct curl_slist *headers;
  char *data; /* response body */
  size_t len;
  bool too_large;
  agent_http_done_fn done;
  void *userdata;
  char errbuf[CURL_ERROR_SIZE];
} request;

struct agent_http
{
  sd_event *ev;
  CURLM *multi;
  sd_event_source *timer;
  char *endpoint;
  char *sigv4; /* "aws:amz:<region>:ecs" */
  char *ca_file;
  agent_credprov *creds;
  request *requests;
  size_t in_flight;
  uint64_t last_answer_us;
};

/* ---- URL policy ---- */

/* The host part of an http(s) URL into buf (brackets of an IPv6 literal removed). */
static bool url_host (const char *url, char *buf, size_t size)
{
  const char *p = strstr (url, "://");
  if (p == NULL)
    return false;
  p += 3;
  size_t n;
  if (*p == '[')
    {
      p++;
      n = strcspn (p, "]");
    }
  else
    n = strcspn (p, ":/?#");
  if (n == 0 || n >= size)
    return false;
  memcpy (buf, p, n);
  buf[n] = '\0';
  return true;
}

bool agent_url_is_loopback (const char *url)
{
  char host[256];
  struct in_addr a4;
  struct in6_addr a6;
  if (!url_host (url, host, sizeof host))
    return false;
  if (strcasecmp (host, "localhost") == 0)
    return true;
  if (inet_pton (AF_INET, host, &a4) == 1)
    return (ntohl (a4.s_addr) >> 24) == 127;
  return inet_pton (AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK (&a6);
}

/* ---- event loop glue ---- */

static void request_free (request *r)
{
  if (r == NULL)
    return;
  if (r->easy)
    {
      curl_multi_remove_handle (r->h->multi, r->easy);
      curl_easy_cleanup (r->easy);
    }
  curl_slist_free_all (r->headers);
  free (r->data);
  free (r);
}

static void request_unlink (agent_http *h, request *r)
{
  for (request **p = &h->requests; *p; p = &(*p)->next)
    if (*p == r)
      {
        *p = r->next;
        h->in_flight--;
        return;
      }
}

/* Fills res from a finished transfer: status, body, and the ECS error's type and message. */
static void result_fill (request *r, CURLcode code, agent_http_result *res)
{
  memset (res, 0, sizeof *res);
  res->curl_code = (int)code;
  if (code != CURLE_OK)
    res->transport_error = r->errbuf[0] ? r->errbuf : curl_easy_strerror (code);
  else if (r->too_large)
    {
      res->curl_code = CURLE_WRITE_ERROR;
      res->transport_error = "response larger than 8 MiB";
    }
  curl_easy_getinfo (r->easy, CURLINFO_RESPONSE_CODE, &res->status);
  if (r->data && r->len)
    res->body = cJSON_ParseWithLength (r->data, r->len);
  if (res->status >= 400 && res->body)
    {
      const cJSON *t = cJSON_GetObjectItemCaseSensitive (res->body, "__type");
      const cJSON *m = cJSON_GetObjectItemCaseSensitive (res->body, "message");
      if (!cJSON_IsString (m))
        m = cJSON_GetObjectItemCaseSensitive (res->body, "Message");
      if (cJSON_IsString (t))
        {
          /* "com.amazonaws.ecs#ClusterNotFoundException" -> "ClusterNotFoundException" */
          const char *hash = strrchr (t->valuestring, '#');
          res->error_type = hash ? hash + 1 : t->valuestring;
        }
      if (cJSON_IsString (m))
        res->error_message = m->valuestring;
    }
}

static void check_done (agent_http *h)
{
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read (h->multi, &left)))
    {
      if (msg->msg != CURLMSG_DONE)
        continue;
      request *r = NULL;
      curl_easy_getinfo (msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
      agent_http_result res;
      result_fill (r, msg->data.result, &res);
      if (res.status != 0)
        {
          struct timespec ts;
          clock_gettime (CLOCK_MONOTONIC, &ts);
          h->last_answer_us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
        }
      request_unlink (h, r);
      r->done (&res, r->userdata);
      cJSON_Delete (res.body);
      request_free (r);
    }
}

static int on_io (sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  agent_http *h = userdata;
  int running, action = 0;
  if (revents & EPOLLIN)
    action |= CURL_CSELECT_IN;
  if (revents & EPOLLOUT)
    action |= CURL_CSELECT_OUT;
  if (revents & (EPOLLERR | EPOLLHUP))
    action |= CURL_CSELECT_ERR;
  curl_multi_socket_action (h->multi, fd, action, &running);
  check_done (h);
  return 0;
}

static int on_timer (sd_event_source *s, uint64_t usec, void *userdata)
{
  agent_http *h = userdata;
  int running;
  curl_multi_socket_action (h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done (h);
  return 0;
}

/* curl's CURLMOPT_SOCKETFUNCTION: watch (or stop watching) one socket. */
static int on_socket (CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
  agent_http *h = userp;
  sd_event_source *src = socketp;
  if (what == CURL_POLL_REMOVE)
    {
      if (src)
        sd_event_source_disable_unref (src);
      curl_multi_assign (h->multi, fd, NULL);
      return 0;
    }
  uint32_t events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
  if (src)
    {
      if (sd_event_source_set_io_events (src, events) < 0
          || sd_event_source_set_enabled (src, SD_EVENT_ON) < 0)
        return -1;
      return 0;
    }
  if (sd_event_add_io (h->ev, &src, fd, events, on_io, h) < 0)
    return -1;
  sd_event_source_set_description (src, "agent-http-socket");
  curl_multi_assign (h->multi, fd, src);
  return 0;
}

/* curl's CURLMOPT_TIMERFUNCTION: one timer for the whole multi handle. */
static int on_timeout_change (CURLM *multi, long timeout_ms, void *userp)
{
  agent_http *h = userp;
  if (timeout_ms < 0)
    return h->timer ? sd_event_source_set_enabled (h->timer, SD_EVENT_OFF) < 0 ? -1 : 0 : 0;
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  uint64_t at
      = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000 + (uint64_t)timeout_ms * 1000;
  /* Accuracy 1 us: sd-event's default (0) lets a timer fire up to 250 ms late to coalesce
   * wake-ups, and curl asks for 0 ms to start a request: every report would wait for it. */
  if (h->timer == NULL)
    {
      if (sd_event_add_time (h->ev, &h->timer, CLOCK_MONOTONIC, at, 1, on_timer, h) < 0)
        return -1;
      sd_event_source_set_description (h->timer, "agent-http-timer");
      return 0;
    }
  if (sd_event_source_set_time (h->timer, at) < 0
      || sd_event_source_set_enabled (h->timer, SD_EVENT_ONESHOT) < 0)
    return -1;
  return 0;
}

/* ---- the client ---- */

int agent_http_new (sd_event *ev, const agent_http_opts *opts, agent_http **out, berr **err)
{
  const char *ep = opts->endpoint;
  bool https = strncmp (ep, "https://", 8) == 0;
  if (!https && strncmp (ep, "http://", 7) != 0)
    return berr_make (err, EINVAL, "endpoint `%s` is not an http:// or https:// URL", ep);
  if (!https && !opts->allow_insecure && !agent_url_is_loopback (ep))
    return berr_make (err, EPERM, "endpoint `%s`: plain http is allowed only to loopback", ep);
  if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return berr_make (err, EIO, "curl_global_init failed");
  agent_http *h = calloc (1, sizeof *h);
  if (h == NULL)
    return berr_sys (err, "allocate");
  h->ev = sd_event_ref (ev);
  h->creds = opts->creds;
  h->multi = curl_multi_init ();
  h->endpoint = strdup (ep);
  h->ca_file = opts->ca_file && *opts->ca_file ? strdup (opts->ca_file) : NULL;
  if (asprintf (&h->sigv4, "aws:amz:%s:ecs", opts->region) < 0)
    h->sigv4 = NULL;
  if (h->multi == NULL || h->endpoint == NULL || h->sigv4 == NULL
      || (opts->ca_file && *opts->ca_file && h->ca_file == NULL))
    {
      agent_http_free (h);
      return berr_make (err, ENOMEM, "allocate HTTP client");
    }
  curl_multi_setopt (h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt (h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt (h->multi, CURLMOPT_TIMERFUNCTION, on_timeout_change);
  curl_multi_setopt (h->multi, CURLMOPT_TIMERDATA, h);
  *out = h;
  return 0;
}

void agent_http_free (agent_http *h)
{
  if (h == NULL)
    return;
  while (h->requests)
    {
      request *r = h->requests;
      h->requests = r->next;
      request_free (r);
    }
  if (h->multi)
    curl_multi_cleanup (h->multi);
  sd_event_source_disable_unref (h->timer);
  sd_event_unref (h->ev);
  free (h->endpoint);
  free (h->sigv4);
  free (h->ca_file);
  free (h);
}

size_t agent_http_in_flight (const agent_http *h)
{
  return h->in_flight;
}

uint64_t agent_http_last_answer_us (const agent_http *h)
{
  return h->last_answer_us;
}

void agent_http_cancel (agent_http *h, void *userdata)
{
  for (request **p = &h->requests; *p;)
    {
      request *r = *p;
      if (r->userdata != userdata)
        {
          p = &r->next;
          continue;
        }
      *p = r->next;
      h->in_flight--;
      request_free (r);
    }
}

static size_t on_write (char *ptr, size_t size, size_t nmemb, void *userdata)
{
  request *r = userdata;
  size_t n = size * nmemb;
  if (r->len + n > RESPONSE_MAX)
    {
      r->too_large = true;
      return 0;
    }
  char *d = realloc (r->data, r->len + n + 1);
  if (d == NULL)
    return 0;
  memcpy (d + r->len, ptr, n);
  r->data = d;
  r->len += n;
  d[r->len] = '\0';
  return n;
}

/* curl 7.88 opens its sockets without SOCK_CLOEXEC; the agent will fork and exec shims, which
 * must not inherit a connection to the control plane. */
static curl_socket_t on_open_socket (void *userdata, curlsocktype purpose,
                                     struct curl_sockaddr *address)
{
  return socket (address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

static int request_headers (request *r, const char *target, const agent_creds *c, berr **err)
{
  _cleanup_free_ char *t = NULL, *tok = NULL;
  if (asprintf (&t, "X-Amz-Target: %s", target) < 0
      || (c->session_token && asprintf (&tok, "X-Amz-Security-Token: %s", c->session_token) < 0))
    return berr_sys (err, "allocate");
  /* No "Expect:" override: curl 7.88 would sign the removed header and the signature would no
   * longer match the request; bodies here stay under the size where curl sends Expect. */
  const char *lines[] = { "Content-Type: application/x-amz-json-1.1", t, tok };
  for (size_t i = 0; i < ARRAY_SIZE (lines) && lines[i]; i++)
    {
      struct curl_slist *l = curl_slist_append (r->headers, lines[i]);
      if (l == NULL)
        return berr_make (err, ENOMEM, "allocate headers");
      r->headers = l;
    }
  if (tok)
    explicit_bzero (tok, strlen (tok));
  return 0;
}

static int request_setup (agent_http *h, request *r, const char *json, long timeout_ms,
                          const agent_creds *c, berr **err)
{
  CURL *e = r->easy;
  bool https = strncmp (h->endpoint, "https://", 8) == 0;
  curl_easy_setopt (e, CURLOPT_URL, h->endpoint);
  curl_easy_setopt (e, CURLOPT_PROTOCOLS_STR, https ? "https" : "http");
  curl_easy_setopt (e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (e, CURLOPT_COPYPOSTFIELDS, json);
  curl_easy_setopt (e, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt (e, CURLOPT_USERAGENT, "berth-agent/" AGENT_VERSION);
  curl_easy_setopt (e, CURLOPT_AWS_SIGV4, h->sigv4);
  curl_easy_setopt (e, CURLOPT_USERNAME, c->access_key_id);
  curl_easy_setopt (e, CURLOPT_PASSWORD, c->secret_access_key);
  curl_easy_setopt (e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt (e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
  curl_easy_setopt (e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt (e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (h->ca_file)
    curl_easy_setopt (e, CURLOPT_CAINFO, h->ca_file);
  curl_easy_setopt (e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt (e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt (e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt (e, CURLOPT_PRIVATE, r);
  curl_easy_setopt (e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
  if (curl_multi_add_handle (h->multi, e) != CURLM_OK)
    return berr_make (err, EIO, "curl_multi_add_handle failed");
  return 0;
}

int agent_http_call (agent_http *h, const char *target, const cJSON *body, long timeout_ms,
                     agent_http_done_fn done, void *userdata, berr **err)
{
  const agent_creds *c;
  if (agent_credprov_get (h->creds, &c, err) < 0)
    return berr_wrap (err, "%s", target);
  _cleanup_free_ char *json = body ? cJSON_PrintUnformatted (body) : strdup ("{}");
  request *r = calloc (1, sizeof *r);
  if (json == NULL || r == NULL)
    {
      free (r);
      return berr_make (err, ENOMEM, "%s: allocate request", target);
    }
  r->h = h;
  r->done = done;
  r->userdata = userdata;
  r->easy = curl_easy_init ();
  if (r->easy == NULL || request_headers (r, target, c, err) < 0
      || request_setup (h, r, json, timeout_ms, c, err) < 0)
    {
      if (r->easy)
        curl_easy_cleanup (steal_ptr (&r->easy));
      request_free (r);
      return berr_make (err, EIO, "%s: cannot set up the request", target);
    }
  r->next = h->requests;
  h->requests = r;
  h->in_flight++;
  return 0;
}

const char *agent_http_why (const agent_http_result *res)
{
  return res->transport_error ? res->transport_error
         : res->error_type    ? res->error_type
                              : "server error";
}

bool agent_http_retryable (const agent_http_result *res)
{
  static const char *const retry_types[]
      = { "ThrottlingException", "ServerException", "ServiceUnavailableException",
          "RequestLimitExceeded", "TooManyRequestsException" };
  if (res->curl_code != 0 || res->status == 0 || res->status >= 500 || res->status == 429)
    return true;
  for (size_t i = 0; res->error_type && i < ARRAY_SIZE (retry_types); i++)
    if (strcmp (res->error_type, retry_types[i]) == 0)
      return true;
  return false;
}
