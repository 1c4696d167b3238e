/* Integration tests of berth-agent's local endpoints with real parts: bridge-mode busybox
 * containers run by the task engine (berth-shim, berth-runtime) in a "host" namespace of the
 * test's own; each container's 169.254.170.2 socket is reached from inside its namespace (by the
 * container itself with wget, and by the test with a socket made in that namespace), the
 * introspection endpoint on loopback and its unix socket. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "lib/clock.h"
#include "lib/json.h"
#include "lib/strv.h"
#include "net/net.h"
#include "tests/support/cp.h"
#include "tests/support/engine.h"
#include "tests/support/netenv.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define IMAGE TS_ENG_IMAGE
#define ARN_PREFIX TS_ENG_ARN_PREFIX
#define ENDPOINT_ADDR "169.254.170.2"

/* Everything this suite makes is inside namespaces of its own, so the check is on its pins
 * only: the real host's berth table and links change under other suites (and a real agent)
 * running at the same time, which made a snapshot of them fail this suite for nothing. */
static struct ts_netenv env = {
  .prefix = "berth-ep",
  .snapshot = "true",
};

static ts_eng f;
TS_ENG_FIXTURES (f)
static char *intro_path;             /* the introspection endpoint's unix socket */
static int intro_port;               /* and its loopback port */
static int vpc_ns = -1, host_a = -1; /* awsvpc: the VPC's namespace and host A's */

static void setup (void)
{
  eng_setup ();
  ts_netenv_test_begin (&env);
  f.netns_run_dir = env.run_dir;
}

static void teardown (void)
{
  eng_teardown ();
  free (intro_path);
  intro_path = NULL;
  if (vpc_ns >= 0)
    close (vpc_ns), close (host_a);
  vpc_ns = host_a = -1;
  ts_netenv_test_end (&env);
}

static void suite_begin (void)
{
  eng_suite_setup ();
  ts_netenv_suite_begin (&env);
}

static void suite_end (void)
{
  ts_netenv_suite_end (&env);
  eng_suite_teardown ();
}

/* The endpoints, as the daemon makes them, before the engine. */
static void endpoints_open (void)
{
  berr *err = NULL;
  intro_path = ts_eng_cat (f.dir, "/introspection.sock");
  intro_port = ts_free_port ();
  agent_endpoints_opts eo = { .ev = f.ev,
                              .introspection_port = (uint16_t)intro_port,
                              .introspection_socket = intro_path };
  ts_eng_ok (agent_endpoints_new (&eo, &f.endpoints, &err), &err);
  ts_eng_ok (agent_endpoints_set_identity (f.endpoints, "c",
                                           "arn:aws:ecs:us-east-1:0:container-instance/c/i1", &err),
             &err);
}

/* ---- bridge mode, in a "host" namespace of the test's own ---- */

static void br_setup (void)
{
  setup ();
  ts_eng_bridge (&f, &env);
  endpoints_open ();
  ts_eng_open (&f);
}

/* Runs the loop (the agent answers on it) until the server closes s; status and body (newly
 * allocated) of the answer. */
static char *exchange (int s, const char *path, int *status)
{
  char req[1024];
  snprintf (req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
  ck_assert_int_eq (write (s, req, strlen (req)), (ssize_t)strlen (req));
  size_t n = 0, cap = 1 << 16;
  char *buf = calloc (1, cap);
  for (int i = 0; i < 1000; i++)
    {
      ssize_t r = recv (s, buf + n, cap - 1 - n, MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno != EAGAIN))
        break;
      if (r > 0)
        n += (size_t)r;
      else
        sd_event_run (f.ev, 10000);
    }
  close (s);
  *status = 0;
  sscanf (buf, "HTTP/1.1 %d", status);
  char *body = strstr (buf, "\r\n\r\n");
  char *out = strdup (body ? body + 4 : "");
  free (buf);
  return out;
}

/* A GET to 169.254.170.2:80 from inside the namespace of the bridge endpoint key. */
static char *task_get (const char *key, const char *path, int *status)
{
  berr *err = NULL;
  _cleanup_free_ char *pin = NULL;
  ck_assert_int_ge (asprintf (&pin, "%s/%s", env.run_dir, key), 0);
  _cleanup_close_ int ns = open (pin, O_RDONLY | O_CLOEXEC);
  ck_assert_msg (ns >= 0, "%s: %m", pin);
  int s = net_socket_in_netns (ns, AF_INET, SOCK_STREAM, &err);
  ck_assert_msg (s >= 0, "socket: %s", err ? err->msg : "");
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (80) };
  inet_pton (AF_INET, ENDPOINT_ADDR, &to.sin_addr);
  ck_assert_msg (connect (s, (struct sockaddr *)&to, sizeof to) == 0, "connect in %s: %m", key);
  return exchange (s, path, status);
}

static char *intro_get_unix (const char *path, int *status)
{
  int s = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  snprintf (a.sun_path, sizeof a.sun_path, "%s", intro_path);
  ck_assert_int_eq (connect (s, (struct sockaddr *)&a, sizeof a), 0);
  return exchange (s, path, status);
}

static char *intro_get_tcp (const char *path, int *status)
{
  int s = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = { .sin_family = AF_INET,
                           .sin_port = htons ((uint16_t)intro_port),
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  ck_assert_int_eq (connect (s, (struct sockaddr *)&a, sizeof a), 0);
  return exchange (s, path, status);
}

static cJSON *parse_ok (char *body)
{
  cJSON *j = cJSON_Parse (body);
  ck_assert_msg (j != NULL, "not JSON: %s", body);
  free (body);
  return j;
}

static void give_credentials (const char *arn, const char *id, const char *key)
{
  berr *err = NULL;
  _cleanup_free_ char *msg = NULL;
  ck_assert_int_ge (asprintf (&msg,
                              "{\"type\":\"IAMRoleCredentialsMessage\",\"taskArn\":\"%s\","
                              "\"roleType\":\"TaskApplication\",\"roleCredentials\":{"
                              "\"credentialsId\":\"%s\",\"roleArn\":\"arn:aws:iam::0:role/r\","
                              "\"accessKeyId\":\"%s\",\"secretAccessKey\":\"secret-%s\","
                              "\"sessionToken\":\"token-%s\",\"expiration\":"
                              "\"2030-01-01T00:00:00Z\"}}",
                              arn, id, key, key, key),
                    0);
  _cleanup_json_ cJSON *m = cJSON_Parse (msg);
  ts_eng_ok (agent_endpoints_credentials (f.endpoints, m, &err), &err);
}

/* Runs the loop until the container's log has `want` (the container's own requests are answered
 * by this loop). */
static char *log_until (const char *id, const char *want)
{
  _cleanup_free_ char *path = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/shims/%s/container.log", f.state, id), 0);
  char *log = NULL;
  for (int i = 0; i < 1000; i++)
    {
      free (log);
      log = ts_read_file (path);
      if (log && strstr (log, want))
        return log;
      sd_event_run (f.ev, 10000);
    }
  ck_abort_msg ("no %s in the log of %s: %s", want, id, log ? log : "(none)");
  return NULL;
}

#define SLEEPER(name)                                                                              \
  "{\"name\":\"" name "\",\"image\":\"" IMAGE "\",\"command\":[\"busybox\",\"sleep\",\"100\"]}"
/* Asks its own endpoints from inside, as an SDK would, from the environment it was given. */
#define PROBER                                                                                     \
  "{\"name\":\"web\",\"image\":\"" IMAGE "\",\"command\":[\"sh\",\"-c\","                          \
  "\"busybox wget -qO- http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI; echo; "        \
  "busybox wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task; echo; echo END; "                        \
  "exec busybox sleep 100\"]}"

START_TEST (test_tasks_see_their_own_metadata_and_credentials_and_nothing_of_another_task)
{
  const char *a = ARN_PREFIX "epa", *b = ARN_PREFIX "epb";
  /* A's credentials come with its payload, B's by IAMRoleCredentialsMessage (its containers
   * then ask by task id) */
  ts_eng_inject (
      &f, a, "bridge",
      "[" PROBER
      "," SLEEPER ("side") "]"
                           ",\"taskRoleArn\":\"arn:aws:iam::0:role/r\",\"roleCredentials\":{"
                           "\"credentialsId\":\"cred-a\",\"roleArn\":\"arn:aws:iam::0:role/r\","
                           "\"accessKeyId\":\"AKIDA\",\"secretAccessKey\":\"secret-a\","
                           "\"sessionToken\":\"token-a\",\"expiration\":\"2030-01-01T00:00:00Z\"}");
  give_credentials (b, "cred-b", "AKIDB");
  ts_eng_inject (&f, b, "bridge",
                 "[" PROBER "]"
                 ",\"taskRoleArn\":\"arn:aws:iam::0:role/r\"");
  ts_eng_run_until (&f, a, "RUNNING", 20000);
  ts_eng_run_until (&f, b, "RUNNING", 20000);
  ck_assert_int_eq (agent_endpoints_sockets (f.endpoints), 3);

  /* from inside, with the injected environment */
  _cleanup_free_ char *la = log_until ("epa-web", "END");
  ck_assert_msg (strstr (la, "AccessKeyId\\\":\\\"AKIDA") && strstr (la, "Token\\\":\\\"token-a"),
                 "%s", la);
  ck_assert_msg (strstr (la, "TaskARN\\\":\\\"" ARN_PREFIX "epa\\\""), "%s", la);
  ck_assert_msg (strstr (la, "AKIDB") == NULL, "%s", la);
  _cleanup_free_ char *lb = log_until ("epb-web", "END");
  ck_assert_msg (strstr (lb, "AccessKeyId\\\":\\\"AKIDB"), "%s", lb);
  ck_assert_msg (strstr (lb, "TaskARN\\\":\\\"" ARN_PREFIX "epb\\\""), "%s", lb);

  /* metadata v4 of A from A's web container namespace ("epa.0") */
  int st;
  _cleanup_json_ cJSON *c = parse_ok (task_get ("epa.0", "/v4/epa-web", &st));
  ck_assert_int_eq (st, 200);
  ck_assert_str_eq (ts_json_str (c, "DockerId"), "epa-web");
  ck_assert_str_eq (ts_json_str (c, "Name"), "web");
  ck_assert_str_eq (ts_json_str (c, "KnownStatus"), "RUNNING");
  ck_assert_ptr_null (cJSON_GetObjectItem (c, "RestartCount")); /* no restartPolicy */
  ck_assert_str_eq (ts_json_str (cJSON_GetObjectItem (c, "Labels"), "com.amazonaws.ecs.task-arn"),
                    a);
  _cleanup_json_ cJSON *t = parse_ok (task_get ("epa.1", "/v4/epa-side/task", &st));
  ck_assert_int_eq (st, 200);
  ck_assert_str_eq (ts_json_str (t, "TaskARN"), a);
  ck_assert_str_eq (ts_json_str (t, "Cluster"), "c");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (t, "Containers")), 2);
  _cleanup_json_ cJSON *s = parse_ok (task_get ("epa.0", "/v4/epa-web/stats", &st));
  ck_assert_int_eq (st, 200);
  ck_assert_str_eq (ts_json_str (s, "id"), "epa-web");
  const cJSON *mem = cJSON_GetObjectItem (cJSON_GetObjectItem (s, "memory_stats"), "usage");
  ck_assert_msg (cJSON_IsNumber (mem) && mem->valuedouble > 0, "memory_stats");
  const cJSON *pids = cJSON_GetObjectItem (cJSON_GetObjectItem (s, "pids_stats"), "current");
  ck_assert (cJSON_IsNumber (pids) && pids->valuedouble >= 1);
  _cleanup_json_ cJSON *ts = parse_ok (task_get ("epa.0", "/v4/epa-web/task/stats", &st));
  ck_assert_int_eq (st, 200);
  ck_assert (cJSON_IsObject (cJSON_GetObjectItem (ts, "epa-web")));
  ck_assert (cJSON_IsObject (cJSON_GetObjectItem (ts, "epa-side")));

  /* A probing B: B's container id and B's credentials id look like ids that do not exist */
  char *body = task_get ("epa.0", "/v4/epb-web", &st);
  ck_assert_int_eq (st, 404);
  _cleanup_free_ char *unknown_md = task_get ("epa.0", "/v4/nosuch", &st);
  ck_assert_str_eq (body, unknown_md);
  free (body);
  body = task_get ("epa.0", "/v4/epb-web/task/stats", &st);
  ck_assert_int_eq (st, 404);
  free (body);
  _cleanup_free_ char *other = task_get ("epa.0", "/v2/credentials/cred-b", &st);
  ck_assert_int_eq (st, 400);
  _cleanup_free_ char *other_by_task = task_get ("epa.0", "/v2/credentials/epb", &st);
  ck_assert_int_eq (st, 400); /* B's task id names nothing for A */
  ck_assert_str_eq (other_by_task, other);
  _cleanup_free_ char *unknown = task_get ("epa.0", "/v2/credentials/nosuch", &st);
  ck_assert_int_eq (st, 400);
  ck_assert_str_eq (other, unknown);
  ck_assert (strstr (other, "AKIDB") == NULL && strstr (other, "secret") == NULL);
  /* and the other way round */
  _cleanup_free_ char *ba = task_get ("epb.0", "/v2/credentials/cred-a", &st);
  ck_assert_int_eq (st, 400);
  ck_assert (strstr (ba, "AKIDA") == NULL);
}
END_TEST

START_TEST (test_over_the_rate_limit_a_task_gets_429_and_other_tasks_do_not)
{
  const char *a = ARN_PREFIX "rla", *b = ARN_PREFIX "rlb";
  ts_eng_inject (&f, a, "bridge", "[" SLEEPER ("web") "]");
  ts_eng_inject (&f, b, "bridge", "[" SLEEPER ("web") "]");
  ts_eng_run_until (&f, a, "RUNNING", 20000);
  ts_eng_run_until (&f, b, "RUNNING", 20000);
  int st, ok200 = 0, n429 = 0;
  for (int i = 0; i < 150; i++)
    {
      free (task_get ("rla.0", "/v4/rla-web", &st));
      ok200 += st == 200;
      n429 += st == 429;
    }
  /* burst 60 plus 40/s refill over however long this took: some were refused, none lost */
  ck_assert_int_ge (ok200, 60);
  ck_assert_int_ge (n429, 1);
  ck_assert_int_eq (ok200 + n429, 150);
  ck_assert_int_eq (agent_endpoints_throttled (f.endpoints), (uint64_t)n429);
  free (task_get ("rlb.0", "/v4/rlb-web", &st));
  ck_assert_int_eq (st, 200);
}
END_TEST

START_TEST (test_introspection_lists_tasks_on_loopback_and_the_unix_socket)
{
  const char *a = ARN_PREFIX "ina";
  ts_eng_inject (&f, a, "bridge", "[" SLEEPER ("web") "," SLEEPER ("db") "]");
  ts_eng_run_until (&f, a, "RUNNING", 20000);
  int st;
  _cleanup_json_ cJSON *m = parse_ok (intro_get_tcp ("/v1/metadata", &st));
  ck_assert_int_eq (st, 200);
  ck_assert_str_eq (ts_json_str (m, "Cluster"), "c");
  ck_assert_str_eq (ts_json_str (m, "ContainerInstanceArn"),
                    "arn:aws:ecs:us-east-1:0:container-instance/c/i1");
  _cleanup_json_ cJSON *all = parse_ok (intro_get_unix ("/v1/tasks", &st));
  ck_assert_int_eq (st, 200);
  const cJSON *t0 = cJSON_GetArrayItem (cJSON_GetObjectItem (all, "Tasks"), 0);
  ck_assert_str_eq (ts_json_str (t0, "Arn"), a);
  ck_assert_str_eq (ts_json_str (t0, "KnownStatus"), "RUNNING");
  ck_assert_str_eq (ts_json_str (t0, "DesiredStatus"), "RUNNING");
  ck_assert_str_eq (ts_json_str (t0, "Family"), "t");
  ck_assert_str_eq (ts_json_str (t0, "Version"), "1");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (t0, "Containers")), 2);
  _cleanup_json_ cJSON *byid = parse_ok (intro_get_unix ("/v1/tasks?dockerid=ina-db", &st));
  ck_assert_int_eq (st, 200);
  ck_assert_str_eq (ts_json_str (byid, "Arn"), a);
  _cleanup_free_ char *q = NULL;
  ck_assert_int_ge (asprintf (&q, "/v1/tasks?taskarn=%s", a), 0);
  _cleanup_json_ cJSON *byarn = parse_ok (intro_get_tcp (q, &st));
  ck_assert_int_eq (st, 200);
  ck_assert_str_eq (ts_json_str (byarn, "Arn"), a);
  free (intro_get_unix ("/v1/tasks?dockerid=nosuch", &st));
  ck_assert_int_eq (st, 404);
  free (intro_get_tcp ("/v1/tasks?taskarn=arn:nosuch", &st));
  ck_assert_int_eq (st, 404);
  /* no task endpoint on introspection, no introspection on a task's endpoint */
  free (intro_get_tcp ("/v4/ina-web", &st));
  ck_assert_int_eq (st, 404);
  free (task_get ("ina.0", "/v1/tasks", &st));
  ck_assert_int_eq (st, 404);
}
END_TEST

START_TEST (test_a_stopped_container_does_not_break_its_tasks_endpoints_and_teardown_closes_them)
{
  const char *a = ARN_PREFIX "brk";
  f.cfg.task_cleanup_wait_us = 200000;
  agent_engine_free (f.eng);
  ts_eng_open (&f);
  ts_eng_inject (
      &f, a, "bridge",
      "[" SLEEPER ("web") ",{\"name\":\"short\",\"image\":\"" IMAGE "\","
                          "\"essential\":false,\"command\":[\"sh\",\"-c\",\"exit 3\"]}]");
  ts_eng_run_until (&f, a, "RUNNING", 20000);
  pid_t pid = 1;
  int code = -1;
  for (int i = 0; i < 1000 && code < 0; i++)
    {
      sd_event_run (f.ev, 10000);
      agent_engine_container_info (f.eng, a, "short", &pid, &code);
    }
  ck_assert_int_eq (code, 3);
  int st;
  _cleanup_json_ cJSON *ts = parse_ok (task_get ("brk.0", "/v4/brk-web/task/stats", &st));
  ck_assert_int_eq (st, 200);
  ck_assert (cJSON_IsObject (cJSON_GetObjectItem (ts, "brk-web")));
  ck_assert (cJSON_IsNull (cJSON_GetObjectItem (ts, "brk-short")));
  /* the stopped one's own namespace still has its endpoint */
  _cleanup_json_ cJSON *sc = parse_ok (task_get ("brk.1", "/v4/brk-short", &st));
  ck_assert_int_eq (st, 200);
  ck_assert_str_eq (ts_json_str (sc, "KnownStatus"), "STOPPED");
  ck_assert_int_eq (cJSON_GetObjectItem (sc, "ExitCode")->valueint, 3);
  _cleanup_json_ cJSON *tk = parse_ok (task_get ("brk.1", "/v4/brk-short/task", &st));
  ck_assert_int_eq (st, 200);
  ck_assert_str_eq (ts_json_str (tk, "KnownStatus"), "RUNNING");
  ck_assert_int_eq (agent_endpoints_sockets (f.endpoints), 2);
  /* stop and clean up: the sockets go with the task */
  ts_eng_desire_stopped (&f, a);
  ts_eng_run_until (&f, a, "STOPPED", 20000);
  cJSON_Delete (ts_eng_outbox (&f, a));
  for (int i = 0; i < 500 && strcmp (agent_engine_task_known (f.eng, a, NULL), "NONE") != 0; i++)
    sd_event_run (f.ev, 10000);
  ck_assert_str_eq (agent_engine_task_known (f.eng, a, NULL), "NONE");
  ck_assert_int_eq (agent_endpoints_sockets (f.endpoints), 0);
}
END_TEST

START_TEST (test_an_agent_restart_reopens_the_endpoints_of_running_containers)
{
  const char *a = ARN_PREFIX "rst";
  ts_eng_inject (&f, a, "bridge", "[" SLEEPER ("web") "]");
  ts_eng_run_until (&f, a, "RUNNING", 20000);
  int st;
  free (task_get ("rst.0", "/v4/rst-web", &st));
  ck_assert_int_eq (st, 200);
  /* a new engine over the same store and state, as after a restart */
  agent_engine_free (f.eng);
  ck_assert_int_eq (agent_endpoints_sockets (f.endpoints), 0);
  ts_eng_open (&f);
  ck_assert_int_eq (agent_endpoints_sockets (f.endpoints), 1);
  _cleanup_json_ cJSON *c = parse_ok (task_get ("rst.0", "/v4/rst-web", &st));
  ck_assert_int_eq (st, 200);
  ck_assert_str_eq (ts_json_str (c, "KnownStatus"), "RUNNING");
}
END_TEST

/* ---- awsvpc: one namespace and one endpoint socket per task ---- */

/* A VPC of namespaces: vpcbr 10.0.1.1/24 and host A (10.0.1.10) with an ENI eth1 (down). */
static void aw_setup (void)
{
  setup ();
  ts_vpc_build (&env, &vpc_ns, &host_a, NULL);
  f.awsvpc_host_netns_fd = host_a;
  f.cfg.enable_task_eni = true;
  endpoints_open ();
  ts_eng_open (&f);
}

START_TEST (test_awsvpc_task_has_one_endpoint_for_all_its_containers)
{
  const char *a = ARN_PREFIX "awe";
  _cleanup_free_ char *mac = ts_link_mac (host_a, "eth1");
  _cleanup_free_ char *containers = NULL;
  ck_assert_int_ge (
      asprintf (
          &containers,
          "[" PROBER "," SLEEPER (
              "side") "]"
                      ",\"taskRoleArn\":\"arn:aws:iam::0:role/"
                      "r\",\"elasticNetworkInterfaces\":[{\"attachmentArn\":\"arn:x\",\"ec2Id\":"
                      "\"eni-1\","
                      "\"macAddress\":\"%s\",\"ipv4Addresses\":[{\"privateAddress\":\"10.0.1.50\","
                      "\"primary\":true}],\"subnetGatewayIpv4Address\":\"10.0.1.1/24\"}]",
          mac),
      0);
  give_credentials (a, "cred-aw", "AKIDAW");
  ts_eng_inject (&f, a, "awsvpc", containers);
  ts_eng_run_until (&f, a, "RUNNING", 20000);
  ck_assert_int_eq (agent_endpoints_sockets (f.endpoints), 1);
  _cleanup_free_ char *log = log_until ("awe-web", "END");
  ck_assert_msg (strstr (log, "AccessKeyId\\\":\\\"AKIDAW"), "%s", log);
  ck_assert_msg (strstr (log, "TaskARN\\\":\\\"" ARN_PREFIX "awe\\\""), "%s", log);
  /* from the task's namespace (pinned by its task id) */
  int st;
  _cleanup_json_ cJSON *c = parse_ok (task_get ("awe", "/v4/awe-side", &st));
  ck_assert_int_eq (st, 200);
  ck_assert_str_eq (ts_json_str (c, "Name"), "side");
  const cJSON *net = cJSON_GetArrayItem (cJSON_GetObjectItem (c, "Networks"), 0);
  ck_assert_str_eq (ts_json_str (net, "NetworkMode"), "awsvpc");
  ck_assert_str_eq (cJSON_GetArrayItem (cJSON_GetObjectItem (net, "IPv4Addresses"), 0)->valuestring,
                    "10.0.1.50");
  _cleanup_json_ cJSON *ts = parse_ok (task_get ("awe", "/v4/awe-web/task/stats", &st));
  ck_assert_int_eq (st, 200);
  ck_assert (cJSON_IsObject (cJSON_GetObjectItem (ts, "awe-web")));
  ck_assert (cJSON_IsObject (cJSON_GetObjectItem (ts, "awe-side")));
  free (task_get ("awe", "/v2/credentials/cred-other", &st));
  ck_assert_int_eq (st, 400);
  /* nothing answers 169.254.170.2 from the VPC side: the address is the task's own */
  berr *err = NULL;
  int s = net_socket_in_netns (host_a, AF_INET, SOCK_STREAM, &err);
  ck_assert_int_ge (s, 0);
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (80) };
  inet_pton (AF_INET, ENDPOINT_ADDR, &to.sin_addr);
  struct timeval tv = { 1, 0 };
  setsockopt (s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ck_assert_int_ne (connect (s, (struct sockaddr *)&to, sizeof to), 0);
  close (s);
}
END_TEST

int main (void)
{
  if (!ts_is_root ())
    {
      printf ("test_agent_endpoints: needs root (containers, namespaces)\n");
      return 0;
    }
  Suite *s = suite_create ("agent_endpoints");
  TCase *br = tcase_create ("bridge");
  tcase_set_timeout (br, 120);
  tcase_add_unchecked_fixture (br, suite_begin, suite_end);
  tcase_add_checked_fixture (br, br_setup, teardown);
  tcase_add_test (br,
                  test_tasks_see_their_own_metadata_and_credentials_and_nothing_of_another_task);
  tcase_add_test (br, test_over_the_rate_limit_a_task_gets_429_and_other_tasks_do_not);
  tcase_add_test (br, test_introspection_lists_tasks_on_loopback_and_the_unix_socket);
  tcase_add_test (
      br, test_a_stopped_container_does_not_break_its_tasks_endpoints_and_teardown_closes_them);
  tcase_add_test (br, test_an_agent_restart_reopens_the_endpoints_of_running_containers);
  suite_add_tcase (s, br);
  TCase *aw = tcase_create ("awsvpc");
  tcase_set_timeout (aw, 120);
  tcase_add_unchecked_fixture (aw, suite_begin, suite_end);
  tcase_add_checked_fixture (aw, aw_setup, teardown);
  tcase_add_test (aw, test_awsvpc_task_has_one_endpoint_for_all_its_containers);
  suite_add_tcase (s, aw);
  return ts_run_suite (s);
}
