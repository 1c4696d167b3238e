/* Unit tests of the agent's local HTTP server (agent/httpd.c: request parser, limits, slow
 * clients, the connection cap) and of the endpoints' router and rate limit (agent/endpoints.c)
 * without an engine: real sockets on loopback, the real sd-event loop. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "tests/support/cp.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int parse (const char *s, agent_http_request *req)
{
  return agent_http_request_parse (s, strlen (s), req);
}

START_TEST (test_parser_accepts_a_get_and_splits_path_and_query)
{
  agent_http_request r;
  ck_assert_int_eq (parse ("GET /v1/tasks?taskarn=a%3Ab HTTP/1.1\r\nHost: x\r\n"
                           "User-Agent: curl/8\r\n\r\n",
                           &r),
                    1);
  ck_assert_str_eq (r.path, "/v1/tasks");
  ck_assert_str_eq (r.query, "taskarn=a%3Ab");
  char v[64];
  ck_assert (agent_http_query_get (r.query, "taskarn", v, sizeof v));
  ck_assert_str_eq (v, "a:b");
  ck_assert (!agent_http_query_get (r.query, "dockerid", v, sizeof v));
  ck_assert (!agent_http_query_get ("taskarn=%zz", "taskarn", v, sizeof v));
  ck_assert (!agent_http_query_get ("taskarn=%00", "taskarn", v, sizeof v));
  ck_assert (!agent_http_query_get ("taskarn=0123456789", "taskarn", v, 4));
  ck_assert_int_eq (parse ("GET / HTTP/1.0\r\n\r\n", &r), 1);
  ck_assert_str_eq (r.path, "/");
  ck_assert_str_eq (r.query, "");
}
END_TEST

START_TEST (test_parser_waits_for_the_whole_head_and_refuses_bad_ones)
{
  agent_http_request r;
  ck_assert_int_eq (parse ("GET / HTTP/1.1\r\nHost: x\r\n", &r), 0);
  ck_assert_int_eq (parse ("", &r), 0);
  ck_assert_int_eq (parse ("POST / HTTP/1.1\r\n\r\n", &r), 405);
  ck_assert_int_eq (parse ("GET / HTTP/2.0\r\n\r\n", &r), 400);
  ck_assert_int_eq (parse ("GET / HTTP/1.2\r\n\r\n", &r), 505);
  ck_assert_int_eq (parse ("GET x HTTP/1.1\r\n\r\n", &r), 400);
  ck_assert_int_eq (parse ("GET /a b HTTP/1.1\r\n\r\n", &r), 400);
  ck_assert_int_eq (parse ("GET / HTTP/1.1\r\n folded\r\n\r\n", &r), 400);
  ck_assert_int_eq (parse ("GET / HTTP/1.1\r\nno colon\r\n\r\n", &r), 400);
  ck_assert_int_eq (parse ("GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n", &r), 400);
  ck_assert_int_eq (parse ("G\x01T / HTTP/1.1\r\n\r\n", &r), 400);
  /* a target over the limit */
  char big[AGENT_HTTPD_MAX_TARGET + 64] = "GET /";
  memset (big + 5, 'a', AGENT_HTTPD_MAX_TARGET);
  strcpy (big + 5 + AGENT_HTTPD_MAX_TARGET, " HTTP/1.1\r\n\r\n");
  ck_assert_int_eq (parse (big, &r), 414);
  /* too many headers, and a head that never ends within 8 KiB */
  _cleanup_free_ char *many = calloc (1, 8192);
  strcpy (many, "GET / HTTP/1.1\r\n");
  for (int i = 0; i < 65; i++)
    strcat (many, "X: y\r\n");
  strcat (many, "\r\n");
  ck_assert_int_eq (parse (many, &r), 431);
  _cleanup_free_ char *endless = malloc (AGENT_HTTPD_MAX_HEAD);
  memset (endless, 'a', AGENT_HTTPD_MAX_HEAD);
  ck_assert_int_eq (agent_http_request_parse (endless, AGENT_HTTPD_MAX_HEAD, &r), 431);
}
END_TEST

START_TEST (test_token_bucket_allows_the_burst_then_the_rate)
{
  agent_token_bucket b;
  agent_token_bucket_init (&b, 40, 60, 1000);
  int ok = 0;
  for (int i = 0; i < 100; i++)
    ok += agent_token_bucket_take (&b, 1000);
  ck_assert_int_eq (ok, 60);
  ck_assert (!agent_token_bucket_take (&b, 1000 + 24999)); /* less than 1/40 s later */
  ck_assert (agent_token_bucket_take (&b, 1000 + 25000));
  ck_assert (!agent_token_bucket_take (&b, 1000 + 25000));
  ok = 0;
  for (int i = 0; i < 100; i++)
    ok += agent_token_bucket_take (&b, 1000 + 3600ULL * 1000000);
  ck_assert_int_eq (ok, 60); /* refilled, never above the burst */
}
END_TEST

/* ---- the server on real sockets ---- */

static sd_event *ev;
static agent_httpd *h;
static int handled;

static void handler (void *tag, const agent_http_request *req, int *status, char **body,
                     void *userdata)
{
  (void)userdata;
  handled++;
  *status = 200;
  ck_assert_int_ge (
      asprintf (body, "{\"tag\":\"%s\",\"path\":\"%s\"}", (const char *)tag, req->path), 0);
}

static uint16_t listen_on (const char *tag, agent_httpd_listener **l)
{
  berr *err = NULL;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  ck_assert_int_eq (bind (fd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq (listen (fd, 16), 0);
  ck_assert_int_eq (getsockname (fd, (struct sockaddr *)&a, &len), 0);
  ck_assert_int_eq (agent_httpd_listen (h, fd, (void *)tag, l, &err), 0);
  return ntohs (a.sin_port);
}

static void server (unsigned max_conns, uint64_t timeout_us)
{
  berr *err = NULL;
  ck_assert_int_eq (sd_event_new (&ev), 0);
  agent_httpd_opts o
      = { .ev = ev, .max_conns = max_conns, .timeout_us = timeout_us, .handler = handler };
  ck_assert_int_eq (agent_httpd_new (&o, &h, &err), 0);
}

static void server_end (void)
{
  agent_httpd_free (h);
  sd_event_unref (ev);
}

static int connect_to (uint16_t port)
{
  int s = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = { .sin_family = AF_INET,
                           .sin_port = htons (port),
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  ck_assert_int_eq (connect (s, (struct sockaddr *)&a, sizeof a), 0);
  return s;
}

/* Runs the loop until the server closes s; what it answered (newly allocated). */
static char *collect (int s)
{
  size_t n = 0, cap = 65536;
  char *buf = calloc (1, cap);
  for (int i = 0; i < 1000; i++)
    {
      sd_event_run (ev, 10000);
      ssize_t r = recv (s, buf + n, cap - 1 - n, MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno != EAGAIN))
        break;
      if (r > 0)
        n += (size_t)r;
    }
  close (s);
  return buf;
}

static char *get (uint16_t port, const char *raw)
{
  int s = connect_to (port);
  ck_assert_int_eq (write (s, raw, strlen (raw)), (ssize_t)strlen (raw));
  return collect (s);
}

START_TEST (test_server_answers_json_with_the_listeners_tag_and_closes)
{
  agent_httpd_listener *a, *b;
  server (0, 0);
  uint16_t pa = listen_on ("a", &a), pb = listen_on ("b", &b);
  _cleanup_free_ char *ra = get (pa, "GET /x?y=1 HTTP/1.1\r\nHost: h\r\n\r\n");
  _cleanup_free_ char *rb = get (pb, "GET /z HTTP/1.0\r\n\r\n");
  ck_assert_msg (strncmp (ra, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", ra);
  ck_assert_msg (strstr (ra, "Content-Type: application/json\r\n"), "%s", ra);
  ck_assert_msg (strstr (ra, "Content-Length: 23\r\n"), "%s", ra);
  ck_assert_msg (strstr (ra, "\r\n\r\n{\"tag\":\"a\",\"path\":\"/x\"}"), "%s", ra);
  ck_assert_msg (strstr (rb, "{\"tag\":\"b\",\"path\":\"/z\"}"), "%s", rb);
  /* bad requests are answered by the server, never handed on */
  _cleanup_free_ char *rp = get (pa, "POST / HTTP/1.1\r\n\r\n");
  ck_assert_msg (strncmp (rp, "HTTP/1.1 405 ", 13) == 0, "%s", rp);
  _cleanup_free_ char *big = calloc (1, AGENT_HTTPD_MAX_HEAD + 16);
  memset (big, 'a', AGENT_HTTPD_MAX_HEAD + 8);
  _cleanup_free_ char *rbig = get (pa, big);
  ck_assert_msg (strncmp (rbig, "HTTP/1.1 431 ", 13) == 0, "%.40s", rbig);
  ck_assert_int_eq (handled, 2);
  ck_assert_int_eq (agent_httpd_answered (h), 4);
  ck_assert_int_eq (agent_httpd_open_conns (h), 0);
  /* a freed listener's port refuses */
  agent_httpd_listener_free (b);
  int s = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in to = { .sin_family = AF_INET,
                            .sin_port = htons (pb),
                            .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  ck_assert_int_ne (connect (s, (struct sockaddr *)&to, sizeof to), 0);
  close (s);
  server_end ();
}
END_TEST

START_TEST (test_a_slow_client_is_dropped_and_the_cap_refuses_extra_connections)
{
  agent_httpd_listener *a;
  server (2, 200000);
  uint16_t port = listen_on ("a", &a);
  int s1 = connect_to (port), s2 = connect_to (port), s3 = connect_to (port);
  ck_assert_int_eq (write (s1, "GET / HT", 8), 8); /* and never more */
  for (int i = 0; i < 100 && agent_httpd_refused (h) == 0; i++)
    sd_event_run (ev, 10000);
  ck_assert_int_eq (agent_httpd_refused (h), 1); /* the third, over the cap of 2 */
  ck_assert_int_eq (agent_httpd_open_conns (h), 2);
  _cleanup_free_ char *r3 = collect (s3);
  ck_assert_str_eq (r3, ""); /* closed without an answer */
  _cleanup_free_ char *r1 = collect (s1);
  ck_assert_str_eq (r1, ""); /* dropped at its deadline, half a request in */
  _cleanup_free_ char *r2 = collect (s2);
  ck_assert_str_eq (r2, "");
  ck_assert_int_eq (agent_httpd_open_conns (h), 0);
  ck_assert_int_eq (handled, 0);
  /* the server still serves */
  _cleanup_free_ char *ok = get (port, "GET / HTTP/1.1\r\n\r\n");
  ck_assert_msg (strstr (ok, " 200 "), "%s", ok);
  server_end ();
}
END_TEST

/* ---- the endpoints without an engine ---- */

static char *route (agent_endpoints *ep, const char *task, const char *raw, int *status)
{
  agent_http_request req;
  char *body = NULL;
  ck_assert_int_eq (parse (raw, &req), 1);
  agent_endpoints_route (ep, task, NULL, &req, status, &body);
  return body;
}

START_TEST (test_endpoints_route_credentials_only_to_their_task_and_throttle_per_task)
{
  berr *err = NULL;
  agent_endpoints *ep;
  ck_assert_int_eq (sd_event_new (&ev), 0);
  agent_endpoints_opts o = { .ev = ev };
  ck_assert_int_eq (agent_endpoints_new (&o, &ep, &err), 0);
  const char *msg = "{\"type\":\"IAMRoleCredentialsMessage\",\"taskArn\":\"arn:t/A\","
                    "\"roleType\":\"TaskApplication\",\"roleCredentials\":{\"credentialsId\":"
                    "\"cid-a\",\"roleArn\":\"arn:role\",\"accessKeyId\":\"AKIA\","
                    "\"secretAccessKey\":\"s3cret\",\"sessionToken\":\"tok\","
                    "\"expiration\":\"2030-01-01T00:00:00Z\"}}";
  cJSON *m = cJSON_Parse (msg);
  ck_assert_int_eq (agent_endpoints_credentials (ep, m, &err), 0);
  cJSON_Delete (m);
  m = cJSON_Parse ("{\"taskArn\":\"arn:t/A\",\"roleCredentials\":{}}");
  ck_assert_int_lt (agent_endpoints_credentials (ep, m, &err), 0);
  berr_free (&err);
  cJSON_Delete (m);
  int st;
  _cleanup_free_ char *own
      = route (ep, "arn:t/A", "GET /v2/credentials/cid-a HTTP/1.1\r\n\r\n", &st);
  ck_assert_int_eq (st, 200);
  _cleanup_json_ cJSON *j = cJSON_Parse (own);
  ck_assert_str_eq (ts_json_str (j, "AccessKeyId"), "AKIA");
  ck_assert_str_eq (ts_json_str (j, "SecretAccessKey"), "s3cret");
  ck_assert_str_eq (ts_json_str (j, "Token"), "tok");
  ck_assert_str_eq (ts_json_str (j, "RoleArn"), "arn:role");
  /* the task id stands for the task's current credentials */
  _cleanup_free_ char *byid = route (ep, "arn:t/A", "GET /v2/credentials/A HTTP/1.1\r\n\r\n", &st);
  ck_assert_int_eq (st, 200);
  /* another task asking for A's id gets what an unknown id gets */
  _cleanup_free_ char *other
      = route (ep, "arn:t/B", "GET /v2/credentials/cid-a HTTP/1.1\r\n\r\n", &st);
  ck_assert_int_eq (st, 400);
  _cleanup_free_ char *unknown
      = route (ep, "arn:t/B", "GET /v2/credentials/nope HTTP/1.1\r\n\r\n", &st);
  ck_assert_int_eq (st, 400);
  ck_assert_str_eq (other, unknown);
  ck_assert (strstr (other, "AKIA") == NULL);
  /* metadata needs the engine: without one, nothing is found */
  _cleanup_free_ char *md = route (ep, "arn:t/A", "GET /v4/x HTTP/1.1\r\n\r\n", &st);
  ck_assert_int_eq (st, 404);
  /* introspection without an engine */
  ck_assert_int_eq (agent_endpoints_set_identity (ep, "c1", "arn:ci", &err), 0);
  _cleanup_free_ char *meta = route (ep, NULL, "GET /v1/metadata HTTP/1.1\r\n\r\n", &st);
  ck_assert_int_eq (st, 200);
  _cleanup_json_ cJSON *mj = cJSON_Parse (meta);
  ck_assert_str_eq (ts_json_str (mj, "Cluster"), "c1");
  ck_assert_str_eq (ts_json_str (mj, "ContainerInstanceArn"), "arn:ci");
  ck_assert (strncmp (ts_json_str (mj, "Version"), "Berth Agent ", 12) == 0);
  _cleanup_free_ char *tasks = route (ep, NULL, "GET /v1/tasks HTTP/1.1\r\n\r\n", &st);
  ck_assert_int_eq (st, 200);
  ck_assert_str_eq (tasks, "{\"Tasks\":[]}");
  _cleanup_free_ char *none = route (ep, NULL, "GET /v1/tasks?taskarn=x HTTP/1.1\r\n\r\n", &st);
  ck_assert_int_eq (st, 404);
  /* credentials are not served on introspection */
  _cleanup_free_ char *ic = route (ep, NULL, "GET /v2/credentials/cid-a HTTP/1.1\r\n\r\n", &st);
  ck_assert_int_eq (st, 404);
  /* the rate limit: A has used 3 of its 60, B 2; counting answers, not time */
  int ok = 0, throttled = 0;
  for (int i = 0; i < 120; i++)
    {
      free (route (ep, "arn:t/A", "GET /v4/x HTTP/1.1\r\n\r\n", &st));
      ok += st != 429;
      throttled += st == 429;
    }
  ck_assert_int_ge (throttled, 1);
  ck_assert_int_ge (ok, 57);
  ck_assert_int_eq (agent_endpoints_throttled (ep), (uint64_t)throttled);
  _cleanup_free_ char *b = route (ep, "arn:t/B", "GET /v4/x HTTP/1.1\r\n\r\n", &st);
  ck_assert_int_eq (st, 404); /* B is not throttled by A's requests */
  agent_endpoints_free (ep);
  sd_event_unref (ev);
}
END_TEST

START_TEST (test_introspection_listens_on_loopback_and_a_0600_unix_socket)
{
  berr *err = NULL;
  agent_endpoints *ep;
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-httpd");
  char path[512];
  snprintf (path, sizeof path, "%s/introspection.sock", dir);
  ck_assert_int_eq (sd_event_new (&ev), 0);
  int port = ts_free_port ();
  agent_endpoints_opts o
      = { .ev = ev, .introspection_port = (uint16_t)port, .introspection_socket = path };
  ck_assert_msg (agent_endpoints_new (&o, &ep, &err) == 0, "%s", err ? err->msg : "");
  struct stat st;
  ck_assert_int_eq (stat (path, &st), 0);
  ck_assert (S_ISSOCK (st.st_mode));
  ck_assert_int_eq (st.st_mode & 0777, 0600);
  /* TCP, loopback */
  int s = connect_to ((uint16_t)port);
  const char *req = "GET /v1/metadata HTTP/1.1\r\n\r\n";
  ck_assert_int_eq (write (s, req, strlen (req)), (ssize_t)strlen (req));
  size_t n = 0;
  char buf[2048] = "";
  for (int i = 0; i < 500; i++)
    {
      sd_event_run (ev, 10000);
      ssize_t r = recv (s, buf + n, sizeof buf - 1 - n, MSG_DONTWAIT);
      if (r == 0)
        break;
      if (r > 0)
        n += (size_t)r;
    }
  close (s);
  ck_assert_msg (strstr (buf, " 200 ") && strstr (buf, "\"Version\""), "%s", buf);
  /* the unix socket */
  int u = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un ua = { .sun_family = AF_UNIX };
  strcpy (ua.sun_path, path);
  ck_assert_int_eq (connect (u, (struct sockaddr *)&ua, sizeof ua), 0);
  ck_assert_int_eq (write (u, req, strlen (req)), (ssize_t)strlen (req));
  n = 0;
  memset (buf, 0, sizeof buf);
  for (int i = 0; i < 500; i++)
    {
      sd_event_run (ev, 10000);
      ssize_t r = recv (u, buf + n, sizeof buf - 1 - n, MSG_DONTWAIT);
      if (r == 0)
        break;
      if (r > 0)
        n += (size_t)r;
    }
  close (u);
  ck_assert_msg (strstr (buf, " 200 ") && strstr (buf, "\"Version\""), "%s", buf);
  /* bound on loopback only */
  _cleanup_free_ char *ss = NULL;
  char cmd[128];
  int status;
  snprintf (cmd, sizeof cmd, "ss -Hltn 'sport = :%d'", port);
  ck_assert_int_eq (ts_sh (cmd, &ss, &status), 0);
  char lo[32], any[32], any6[32];
  snprintf (lo, sizeof lo, "127.0.0.1:%d ", port);
  snprintf (any, sizeof any, "0.0.0.0:%d ", port);
  snprintf (any6, sizeof any6, "*:%d ", port);
  ck_assert_msg (strstr (ss, lo) && !strstr (ss, any) && !strstr (ss, any6), "%s", ss);
  agent_endpoints_free (ep);
  ck_assert_int_ne (access (path, F_OK), 0); /* removed */
  sd_event_unref (ev);
  ts_rmtree (dir);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("agent_httpd");
  TCase *tc = tcase_create ("httpd");
  tcase_add_test (tc, test_parser_accepts_a_get_and_splits_path_and_query);
  tcase_add_test (tc, test_parser_waits_for_the_whole_head_and_refuses_bad_ones);
  tcase_add_test (tc, test_token_bucket_allows_the_burst_then_the_rate);
  tcase_add_test (tc, test_server_answers_json_with_the_listeners_tag_and_closes);
  tcase_add_test (tc, test_a_slow_client_is_dropped_and_the_cap_refuses_extra_connections);
  tcase_add_test (tc, test_endpoints_route_credentials_only_to_their_task_and_throttle_per_task);
  tcase_add_test (tc, test_introspection_listens_on_loopback_and_a_0600_unix_socket);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
