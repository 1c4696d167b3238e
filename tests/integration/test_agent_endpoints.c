/* Integration tests of berth-agent's local endpoints with real parts: bridge-mode busybox
 * containers run by the task engine (berth-shim, berth-runtime) in a "host" namespace of the
 * test's own; each container's 169.254.170.2 socket is reached from inside its namespace (by the
 * container itself with wget, and by the test with a socket made in that namespace), the
 * introspection endpoint on loopback and its unix socket. */
#include "agent/agent.h"
#include "images/images.h"
#include "lib/cleanup.h"
#include "lib/clock.h"
#include "lib/json.h"
#include "lib/strv.h"
#include "net/net.h"
#include "runtime/runtime.h"
#include "tests/support/cp.h"
#include "tests/support/netenv.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define IMAGE "test/busybox:v1"
#define ARN_PREFIX "arn:aws:ecs:us-east-1:000000000000:task/default/"
#define ENDPOINT_ADDR "169.254.170.2"

static char *images_dir; /* the mkimages.sh output, built once */

/* Everything this suite makes is inside namespaces of its own, so the check is on its pins
 * only: the real host's berth table and links change under other suites (and a real agent)
 * running at the same time, which made a snapshot of them fail this suite for nothing. */
static struct ts_netenv env = {
  .prefix = "berth-ep",
  .snapshot = "true",
};

typedef struct fx
{
  char *dir, *store_path, *shim, *runtime, *state, *rtroot, *img_root;
  agent_config cfg;
  agent_store *store;
  sd_event *ev;
  struct img_store *images;
  struct img_registry *reg;
  struct img_puller *puller;
  agent_engine *eng;
  agent_http *http;
  agent_credprov *creds;
  uint64_t host_mem_mib;
  agent_endpoints *ep;
  char *intro_path;
  int intro_port;
  int host_a; /* awsvpc: the namespace the ENI is in */
} fx;

static fx f;

static void ok (int r, berr **err)
{
  ck_assert_msg (r >= 0, "%s", *err ? (*err)->msg : "(no error)");
  berr_free (err);
}

static void suite_setup (void)
{
  images_dir = ts_mkdtemp ("agent-ep-img");
  ts_sh_ok ("%s/tests/fixtures/mkimages.sh %s/out >/dev/null 2>&1",
            getenv ("BERTH_SRC") ? getenv ("BERTH_SRC") : ".", images_dir);
}

static void suite_teardown (void)
{
  ts_rmtree (images_dir);
  free (images_dir);
}

static char *cat (const char *a, const char *b)
{
  char *p = NULL;
  ck_assert_int_ge (asprintf (&p, "%s%s", a, b), 0);
  return p;
}

static void setup (void)
{
  berr *err = NULL;
  ck_assert_int_eq (unshare (CLONE_NEWNS), 0);
  ck_assert_int_eq (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
  memset (&f, 0, sizeof f);
  f.dir = ts_mkdtemp ("agent-ep");
  f.store_path = cat (f.dir, "/agent.db");
  f.state = cat (f.dir, "/state");
  f.rtroot = cat (f.dir, "/rt");
  f.img_root = cat (f.dir, "/images");
  f.shim = ts_bin ("berth-shim");
  f.runtime = ts_bin ("berth-runtime");
  const char *conf = "ECS_IMAGE_PULL_BEHAVIOR=once\nECS_CONTAINER_STOP_TIMEOUT=2s\n";
  ok (agent_config_parse (conf, strlen (conf), NULL, &f.cfg, &err), &err);
  f.cfg.task_cleanup_wait_us = 3600ULL * 1000000;
  ok (img_store_open (f.img_root, &f.images, &err), &err);
  _cleanup_free_ char *tar = cat (images_dir, "/out/docker.tar");
  int fd = open (tar, O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge (fd, 0);
  struct img_import_result ir;
  ok (img_store_import (f.images, fd, NULL, &ir, &err), &err);
  img_import_result_clear (&ir);
  close (fd);
  struct img_registry_opts ro = { .retries = -1, .connect_timeout_s = 2 };
  struct img_sink sink;
  img_store_sink (f.images, &sink);
  ok (img_registry_new (&ro, &f.reg, &err), &err);
  ok (img_puller_new (f.reg, &sink, NULL, &f.puller, &err), &err);
  ck_assert_int_eq (sd_event_new (&f.ev), 0);
}

static void engine_open_with (net_bridge *br)
{
  berr *err = NULL;
  agent_engine_opts o = { .ev = f.ev,
                          .store = f.store,
                          .cfg = &f.cfg,
                          .http = f.http,
                          .cluster = "c",
                          .images = f.images,
                          .puller = f.puller,
                          .shim_path = f.shim,
                          .runtime_path = f.runtime,
                          .state_dir = f.state,
                          .runtime_root = f.rtroot,
                          .bridge = br,
                          .max_pulls = 2,
                          .host_mem_mib = f.host_mem_mib ? f.host_mem_mib : 1 << 20,
                          .seed = 1,
                          .awsvpc_host_netns_fd = f.host_a,
                          .netns_run_dir = env.run_dir,
                          .endpoints = f.ep };
  if (f.store == NULL)
    ok (agent_store_open (f.store_path, &f.store, &err), &err);
  o.store = f.store;
  ok (agent_engine_new (&o, &f.eng, &err), &err);
}

/* Kills whatever containers a test left, so no shim outlives it. */
static void kill_containers (void)
{
  DIR *d = opendir (f.rtroot);
  struct dirent *de;
  berr *err = NULL;
  while (d && (de = readdir (d)))
    if (de->d_name[0] != '.' && strcmp (de->d_name, "seccomp-cache") != 0)
      {
        rt_container_delete (f.rtroot, de->d_name, true, &err);
        berr_free (&err);
      }
  if (d)
    closedir (d);
  /* the shims write their final state, then exit: wait for them before removing their dirs */
  _cleanup_free_ char *shims = cat (f.state, "/shims");
  d = opendir (shims);
  while (d && (de = readdir (d)))
    if (de->d_name[0] != '.')
      {
        char path[4096];
        snprintf (path, sizeof path, "%s/%s/shim.pid", shims, de->d_name);
        _cleanup_free_ char *pid = ts_read_file (path);
        pid_t p = pid ? atoi (pid) : 0;
        int pfd = p > 0 ? (int)syscall (SYS_pidfd_open, p, 0) : -1;
        struct pollfd pf = { .fd = pfd, .events = POLLIN };
        if (pfd >= 0)
          {
            poll (&pf, 1, 3000);
            close (pfd);
          }
      }
  if (d)
    closedir (d);
  _cleanup_free_ char *rootfses = cat (f.img_root, "/containers");
  d = opendir (rootfses);
  while (d && (de = readdir (d)))
    if (de->d_name[0] != '.')
      {
        img_rootfs_remove (f.images, de->d_name, &err);
        berr_free (&err);
      }
  if (d)
    closedir (d);
}

static void teardown (void)
{
  agent_engine_free (f.eng);
  agent_endpoints_free (f.ep);
  free (f.intro_path);
  agent_http_free (f.http);
  agent_credprov_free (f.creds);
  kill_containers ();
  agent_store_close (f.store);
  img_puller_free (f.puller);
  img_registry_free (f.reg);
  img_store_close (f.images);
  sd_event_unref (f.ev);
  agent_config_free (&f.cfg);
  ts_rmtree (f.dir);
  free (f.dir), free (f.store_path), free (f.state), free (f.rtroot), free (f.img_root);
  free (f.shim), free (f.runtime);
}

/* Stores an ACS task (containers: a JSON array text) and tells the engine. */
static void inject_full (const char *arn, const char *mode, const char *containers,
                         const char *extra)
{
  berr *err = NULL;
  _cleanup_free_ char *body = NULL;
  ck_assert_int_ge (asprintf (&body,
                              "{\"arn\":\"%s\",\"family\":\"t\",\"version\":\"1\","
                              "\"desiredStatus\":\"RUNNING\",\"networkMode\":\"%s\","
                              "\"memory\":\"512\"%s,\"containers\":%s}",
                              arn, mode, extra, containers),
                    0);
  agent_task_rec r
      = { .arn = (char *)arn, .desired_status = "RUNNING", .known_status = "NONE", .body = body };
  ok (agent_store_put_task (f.store, &r, &err), &err);
  ok (agent_engine_task_updated (f.eng, arn, &err), &err);
}

static void desire_stopped (const char *arn)
{
  berr *err = NULL;
  agent_task_rec r = { 0 };
  ok (agent_store_get_task (f.store, arn, &r, &err), &err);
  free (r.desired_status);
  r.desired_status = strdup ("STOPPED");
  ok (agent_store_put_task (f.store, &r, &err), &err);
  agent_task_rec_clear (&r);
  ok (agent_engine_task_updated (f.eng, arn, &err), &err);
}

static bool status_is (const char *arn, const char *want)
{
  return strcmp (agent_engine_task_known (f.eng, arn, NULL), want) == 0;
}

/* Runs the loop until the task's known status is want (or timeout_ms). */
static void run_until (const char *arn, const char *want, int timeout_ms)
{
  int64_t end = (int64_t)timeout_ms * 1000;
  for (int64_t t = 0; t < end && !status_is (arn, want); t += 20000)
    ck_assert_int_ge (sd_event_run (f.ev, 20000), 0);
  const char *reason = NULL;
  const char *got = agent_engine_task_known (f.eng, arn, &reason);
  ck_assert_msg (strcmp (got, want) == 0, "task %s is %s, not %s (reason %s)", arn, got, want,
                 reason ? reason : "none");
}

/* The unsent outbox entries of arn, oldest first, parsed (a JSON array). */
static cJSON *outbox_all (const char *arn)
{
  berr *err = NULL;
  cJSON *all = cJSON_CreateArray ();
  /* outbox_next gives the oldest; mark each as sent to read the next, then count them all. */
  agent_outbox_entry e = { 0 };
  while (agent_store_outbox_next (f.store, arn, &e, &err) == 0)
    {
      cJSON *one = cJSON_Parse (e.body);
      ck_assert_msg (one != NULL, "outbox entry: %s", e.body);
      cJSON_AddItemToArray (all, one);
      ok (agent_store_outbox_mark_sent (f.store, e.id, &err), &err);
      agent_outbox_entry_clear (&e);
    }
  berr_free (&err);
  return all;
}

/* ---- bridge mode, in a "host" namespace of the test's own ---- */

static int host_ns = -1;
static net_bridge *bridge;

static void br_suite_begin (void)
{
  suite_setup ();
  ts_netenv_suite_begin (&env);
}

static void br_suite_end (void)
{
  ts_netenv_suite_end (&env);
  suite_teardown ();
}

static void endpoints_open (void);

static void br_setup (void)
{
  berr *err = NULL;
  setup ();
  ts_netenv_test_begin (&env);
  host_ns = ts_netenv_ns (&env, "host");
  _cleanup_free_ char *ipam = cat (env.tmp, "/ipam");
  struct net_bridge_config bc
      = { .ipam_path = ipam, .run_dir = env.run_dir, .host_netns_fd = host_ns };
  ok (net_bridge_open (&bc, &bridge, &err), &err);
  endpoints_open ();
  engine_open_with (bridge);
}

static void br_teardown (void)
{
  teardown ();
  net_bridge_close (bridge);
  close (host_ns);
  ts_netenv_test_end (&env);
}

/* The endpoints, as the daemon makes them, before the engine. */
static void endpoints_open (void)
{
  berr *err = NULL;
  f.intro_path = cat (f.dir, "/introspection.sock");
  f.intro_port = ts_free_port ();
  agent_endpoints_opts eo = { .ev = f.ev,
                              .introspection_port = (uint16_t)f.intro_port,
                              .introspection_socket = f.intro_path };
  ok (agent_endpoints_new (&eo, &f.ep, &err), &err);
  ok (agent_endpoints_set_identity (f.ep, "c", "arn:aws:ecs:us-east-1:0:container-instance/c/i1",
                                    &err),
      &err);
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
  snprintf (a.sun_path, sizeof a.sun_path, "%s", f.intro_path);
  ck_assert_int_eq (connect (s, (struct sockaddr *)&a, sizeof a), 0);
  return exchange (s, path, status);
}

static char *intro_get_tcp (const char *path, int *status)
{
  int s = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = { .sin_family = AF_INET,
                           .sin_port = htons ((uint16_t)f.intro_port),
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
  ok (agent_endpoints_credentials (f.ep, m, &err), &err);
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
  inject_full (a, "bridge", "[" PROBER "," SLEEPER ("side") "]",
               ",\"taskRoleArn\":\"arn:aws:iam::0:role/r\",\"roleCredentials\":{"
               "\"credentialsId\":\"cred-a\",\"roleArn\":\"arn:aws:iam::0:role/r\","
               "\"accessKeyId\":\"AKIDA\",\"secretAccessKey\":\"secret-a\","
               "\"sessionToken\":\"token-a\",\"expiration\":\"2030-01-01T00:00:00Z\"}");
  give_credentials (b, "cred-b", "AKIDB");
  inject_full (b, "bridge", "[" PROBER "]", ",\"taskRoleArn\":\"arn:aws:iam::0:role/r\"");
  run_until (a, "RUNNING", 20000);
  run_until (b, "RUNNING", 20000);
  ck_assert_int_eq (agent_endpoints_sockets (f.ep), 3);

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
  inject_full (a, "bridge", "[" SLEEPER ("web") "]", "");
  inject_full (b, "bridge", "[" SLEEPER ("web") "]", "");
  run_until (a, "RUNNING", 20000);
  run_until (b, "RUNNING", 20000);
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
  ck_assert_int_eq (agent_endpoints_throttled (f.ep), (uint64_t)n429);
  free (task_get ("rlb.0", "/v4/rlb-web", &st));
  ck_assert_int_eq (st, 200);
}
END_TEST

START_TEST (test_introspection_lists_tasks_on_loopback_and_the_unix_socket)
{
  const char *a = ARN_PREFIX "ina";
  inject_full (a, "bridge", "[" SLEEPER ("web") "," SLEEPER ("db") "]", "");
  run_until (a, "RUNNING", 20000);
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
  engine_open_with (bridge);
  inject_full (a, "bridge",
               "[" SLEEPER ("web") ",{\"name\":\"short\",\"image\":\"" IMAGE "\","
                                   "\"essential\":false,\"command\":[\"sh\",\"-c\",\"exit 3\"]}]",
               "");
  run_until (a, "RUNNING", 20000);
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
  ck_assert_int_eq (agent_endpoints_sockets (f.ep), 2);
  /* stop and clean up: the sockets go with the task */
  desire_stopped (a);
  run_until (a, "STOPPED", 20000);
  cJSON_Delete (outbox_all (a));
  for (int i = 0; i < 500 && strcmp (agent_engine_task_known (f.eng, a, NULL), "NONE") != 0; i++)
    sd_event_run (f.ev, 10000);
  ck_assert_str_eq (agent_engine_task_known (f.eng, a, NULL), "NONE");
  ck_assert_int_eq (agent_endpoints_sockets (f.ep), 0);
}
END_TEST

START_TEST (test_an_agent_restart_reopens_the_endpoints_of_running_containers)
{
  const char *a = ARN_PREFIX "rst";
  inject_full (a, "bridge", "[" SLEEPER ("web") "]", "");
  run_until (a, "RUNNING", 20000);
  int st;
  free (task_get ("rst.0", "/v4/rst-web", &st));
  ck_assert_int_eq (st, 200);
  /* a new engine over the same store and state, as after a restart */
  agent_engine_free (f.eng);
  ck_assert_int_eq (agent_endpoints_sockets (f.ep), 0);
  engine_open_with (bridge);
  ck_assert_int_eq (agent_endpoints_sockets (f.ep), 1);
  _cleanup_json_ cJSON *c = parse_ok (task_get ("rst.0", "/v4/rst-web", &st));
  ck_assert_int_eq (st, 200);
  ck_assert_str_eq (ts_json_str (c, "KnownStatus"), "RUNNING");
}
END_TEST

/* ---- awsvpc: one namespace and one endpoint socket per task ---- */

#define MUST(call)                                                                                 \
  do                                                                                               \
    {                                                                                              \
      berr *err_ = NULL;                                                                           \
      berr **err = &err_;                                                                          \
      if ((call) < 0)                                                                              \
        ck_abort_msg ("%s: %s", #call, err_->msg);                                                 \
    }                                                                                              \
  while (0)

static int must_index (net_nl *nl, const char *name)
{
  berr *err = NULL;
  int i = net_link_index (nl, name, &err);
  ck_assert_msg (i > 0, "%s: %s", name, err ? err->msg : "?");
  return i;
}

/* Plugs a veth from vpcbr into ns as name, with addr/24 and up when addr is not NULL. */
static void plug (int vpc, int ns, const char *name, const char *vpc_end, const char *addr)
{
  net_nl *n = ts_nl_open (vpc), *h = ts_nl_open (ns);
  MUST (net_link_add_veth (n, vpc_end, name, ns, err));
  MUST (net_link_set_master (n, must_index (n, vpc_end), must_index (n, "vpcbr"), err));
  MUST (net_link_set_up (n, must_index (n, vpc_end), true, err));
  if (addr != NULL)
    {
      struct in_addr a;
      inet_pton (AF_INET, addr, &a);
      MUST (net_addr_add (h, must_index (h, name), a, 24, err));
      MUST (net_link_set_up (h, must_index (h, name), true, err));
    }
  net_nl_close (n);
  net_nl_close (h);
}

static int vpc_ns = -1;

/* A VPC of namespaces: vpcbr 10.0.1.1/24 and host A (10.0.1.10) with an ENI eth1 (down). */
static void aw_setup (void)
{
  setup ();
  ts_netenv_test_begin (&env);
  vpc_ns = ts_netenv_ns (&env, "vpc");
  f.host_a = ts_netenv_ns (&env, "hostA");
  net_nl *n = ts_nl_open (vpc_ns);
  struct in_addr gw;
  inet_pton (AF_INET, "10.0.1.1", &gw);
  MUST (net_link_add_bridge (n, "vpcbr", err));
  MUST (net_addr_add (n, must_index (n, "vpcbr"), gw, 24, err));
  MUST (net_link_set_up (n, must_index (n, "vpcbr"), true, err));
  net_nl_close (n);
  plug (vpc_ns, f.host_a, "nic0", "pa", "10.0.1.10");
  plug (vpc_ns, f.host_a, "eth1", "pe1", NULL);
  f.cfg.enable_task_eni = true;
  endpoints_open ();
  engine_open_with (NULL);
}

static void aw_teardown (void)
{
  teardown ();
  close (vpc_ns);
  close (f.host_a);
  ts_netenv_test_end (&env);
}

static char *eni_mac (void)
{
  uint8_t m[6];
  char *s = NULL;
  net_nl *h = ts_nl_open (f.host_a);
  MUST (net_link_get_mac (h, must_index (h, "eth1"), m, err));
  net_nl_close (h);
  ck_assert_int_ge (
      asprintf (&s, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]), 0);
  return s;
}

START_TEST (test_awsvpc_task_has_one_endpoint_for_all_its_containers)
{
  const char *a = ARN_PREFIX "awe";
  _cleanup_free_ char *mac = eni_mac ();
  _cleanup_free_ char *extra = NULL;
  ck_assert_int_ge (
      asprintf (
          &extra,
          ",\"taskRoleArn\":\"arn:aws:iam::0:role/"
          "r\",\"elasticNetworkInterfaces\":[{\"attachmentArn\":\"arn:x\",\"ec2Id\":\"eni-1\","
          "\"macAddress\":\"%s\",\"ipv4Addresses\":[{\"privateAddress\":\"10.0.1.50\","
          "\"primary\":true}],\"subnetGatewayIpv4Address\":\"10.0.1.1/24\"}]",
          mac),
      0);
  give_credentials (a, "cred-aw", "AKIDAW");
  inject_full (a, "awsvpc", "[" PROBER "," SLEEPER ("side") "]", extra);
  run_until (a, "RUNNING", 20000);
  ck_assert_int_eq (agent_endpoints_sockets (f.ep), 1);
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
  int s = net_socket_in_netns (f.host_a, AF_INET, SOCK_STREAM, &err);
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
  tcase_add_unchecked_fixture (br, br_suite_begin, br_suite_end);
  tcase_add_checked_fixture (br, br_setup, br_teardown);
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
  tcase_add_unchecked_fixture (aw, br_suite_begin, br_suite_end);
  tcase_add_checked_fixture (aw, aw_setup, aw_teardown);
  tcase_add_test (aw, test_awsvpc_task_has_one_endpoint_for_all_its_containers);
  suite_add_tcase (s, aw);
  return ts_run_suite (s);
}
