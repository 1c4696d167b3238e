/* Integration test of awsvpc tasks in the task engine: real containers (busybox image imported,
 * berth-shim, berth-runtime) in a VPC made of namespaces (a "vpc" bridge, hosts A and B, an
 * "EC2-attached ENI" veth into host A, as tests/integration/test_awsvpc.c). The engine works on
 * host A through its namespace fd; the real host's network is never touched. */
#include "agent/agent.h"
#include "images/images.h"
#include "lib/cleanup.h"
#include "lib/clock.h"
#include "lib/json.h"
#include "net/net.h"
#include "runtime/runtime.h"
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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define IMAGE "test/busybox:v1"
#define ARN_PREFIX "arn:aws:ecs:us-east-1:000000000000:task/default/"

static char *images_dir; /* the mkimages.sh output, built once */

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
  int host_a;
} fx;

static fx f;

static struct ts_netenv env = { .prefix = "berth-engawsvpc", .snapshot = "true" };

static void ok (int r, berr **err)
{
  ck_assert_msg (r >= 0, "%s", *err ? (*err)->msg : "(no error)");
  berr_free (err);
}

static void suite_setup (void)
{
  ts_netenv_suite_begin (&env);
  images_dir = ts_mkdtemp ("agent-engine-img");
  ts_sh_ok ("%s/tests/fixtures/mkimages.sh %s/out >/dev/null 2>&1",
            getenv ("BERTH_SRC") ? getenv ("BERTH_SRC") : ".", images_dir);
}

static void suite_teardown (void)
{
  ts_netenv_suite_end (&env);
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
  f.dir = ts_mkdtemp ("agent-engine");
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
  ts_netenv_test_begin (&env);
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
                          .netns_run_dir = env.run_dir };
  if (f.store == NULL)
    ok (agent_store_open (f.store_path, &f.store, &err), &err);
  o.store = f.store;
  ok (agent_engine_new (&o, &f.eng, &err), &err);
}

static void engine_open (void)
{
  engine_open_with (NULL);
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
  ts_netenv_test_end (&env);
}

/* Stores an ACS task (containers: a JSON array text) and tells the engine. */
static void inject_full (const char *arn, const char *mode, const char *containers,
                         const char *memory)
{
  berr *err = NULL;
  _cleanup_free_ char *body = NULL;
  ck_assert_int_ge (asprintf (&body,
                              "{\"arn\":\"%s\",\"family\":\"t\",\"version\":\"1\","
                              "\"desiredStatus\":\"RUNNING\",\"networkMode\":\"%s\","
                              "\"memory\":\"%s\",\"containers\":%s}",
                              arn, mode, memory, containers),
                    0);
  agent_task_rec r
      = { .arn = (char *)arn, .desired_status = "RUNNING", .known_status = "NONE", .body = body };
  ok (agent_store_put_task (f.store, &r, &err), &err);
  ok (agent_engine_task_updated (f.eng, arn, &err), &err);
}

static void inject (const char *arn, const char *mode, const char *containers)
{
  inject_full (arn, mode, containers, "512");
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

static void run_for (int ms)
{
  for (int t = 0; t < ms; t += 20)
    sd_event_run (f.ev, 20000);
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

/* The unsent outbox entries of arn, oldest first, parsed (a JSON array). */
static cJSON *outbox (const char *arn)
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

/* A namespace of the topology, without IPv6. */
static int topo_ns (const char *name)
{
  int fd = ts_netenv_ns (&env, name);
  ts_sh_ok ("nsenter --net=%s/%s sysctl -qw net.ipv6.conf.all.disable_ipv6=1"
            " net.ipv6.conf.default.disable_ipv6=1",
            env.run_dir, name);
  return fd;
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

/* The VPC: vpcbr 10.0.1.1/24, host A (10.0.1.10, ENI eth1 down), host B (10.0.1.20). */
static void vpc_build (int *vpc, int *b)
{
  *vpc = topo_ns ("vpc");
  f.host_a = topo_ns ("hostA");
  *b = topo_ns ("hostB");
  net_nl *n = ts_nl_open (*vpc);
  struct in_addr gw;
  inet_pton (AF_INET, "10.0.1.1", &gw);
  MUST (net_link_add_bridge (n, "vpcbr", err));
  MUST (net_addr_add (n, must_index (n, "vpcbr"), gw, 24, err));
  MUST (net_link_set_up (n, must_index (n, "vpcbr"), true, err));
  net_nl_close (n);
  plug (*vpc, f.host_a, "nic0", "pa", "10.0.1.10");
  plug (*vpc, *b, "nic0", "pb", "10.0.1.20");
  plug (*vpc, f.host_a, "eth1", "pe1", NULL);
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

static bool eth1_on_host_a (void)
{
  net_nl *h = ts_nl_open (f.host_a);
  berr *err = NULL;
  bool there = net_link_index (h, "eth1", &err) > 0;
  berr_free (&err);
  net_nl_close (h);
  return there;
}

/* GET http://10.0.1.50:8080/path from host B (curl there); NULL when nothing answered. */
static char *get_from_b (const char *path)
{
  char *out = NULL;
  for (int i = 0; i < 100 && out == NULL; i++)
    {
      run_for (100);
      char ns[4096], url[256];
      int status = -1;
      snprintf (ns, sizeof ns, "--net=%s/hostB", env.run_dir);
      snprintf (url, sizeof url, "http://10.0.1.50:8080/%s", path);
      char *const argv[] = { "nsenter", ns, "curl", "-sf", "--max-time", "1", url, NULL };
      if (ts_run (argv, &out, &status) < 0 || status != 0 || (out && out[0] == '\0'))
        {
          free (out);
          out = NULL;
        }
    }
  return out;
}

START_TEST (test_awsvpc_task_answers_on_its_eni_address_and_gives_the_eni_back)
{
  const char *arn = ARN_PREFIX "aw1";
  int vpc, b;
  vpc_build (&vpc, &b);
  f.cfg.enable_task_eni = true;
  f.cfg.awsvpc_block_imds = true;
  f.cfg.task_cleanup_wait_us = 100000;
  engine_open ();
  _cleanup_free_ char *mac = eni_mac ();
  _cleanup_free_ char *containers = NULL, *body = NULL;
  ck_assert_int_ge (
      asprintf (&containers,
                "[{\"name\":\"web\",\"image\":\"" IMAGE "\",\"essential\":true,\"memory\":32,"
                "\"command\":[\"sh\",\"-c\",\"mkdir -p /tmp/w; echo from-eni > /tmp/w/i;"
                " cp /etc/resolv.conf /tmp/w/r; exec busybox httpd -f -p 8080 -h /tmp/w\"]}],"
                "\"elasticNetworkInterfaces\":[{\"attachmentArn\":\"arn:x\",\"ec2Id\":\"eni-1\","
                "\"macAddress\":\"%s\",\"ipv4Addresses\":[{\"privateAddress\":\"10.0.1.50\","
                "\"primary\":true}],\"subnetGatewayIpv4Address\":\"10.0.1.1/24\","
                "\"domainNameServers\":[\"10.0.0.2\"],\"domainName\":[\"ec2.internal\"]}]",
                mac),
      0);
  inject (arn, "awsvpc", containers);
  run_until (arn, "RUNNING", 15000);
  ck_assert (!eth1_on_host_a ()); /* the ENI is in the task's namespace */
  _cleanup_free_ char *got = get_from_b ("i");
  ck_assert_ptr_nonnull (got);
  ck_assert_str_eq (got, "from-eni\n");
  _cleanup_free_ char *resolv = get_from_b ("r");
  ck_assert_ptr_nonnull (resolv);
  ck_assert_msg (strstr (resolv, "nameserver 10.0.0.2") && strstr (resolv, "ec2.internal"), "%s",
                 resolv);
  desire_stopped (arn);
  run_until (arn, "STOPPED", 15000);
  /* the STOPPED report accepted (here: taken from the outbox), cleanup gives the ENI back */
  cJSON_Delete (outbox (arn));
  for (int i = 0; i < 150 && !eth1_on_host_a (); i++)
    run_for (100);
  ck_assert (eth1_on_host_a ());
  close (vpc), close (b), close (f.host_a);
}
END_TEST

int main (void)
{
  if (!ts_is_root ())
    {
      printf ("test_agent_engine_awsvpc: needs root (containers, namespaces)\n");
      return 0;
    }
  Suite *s = suite_create ("agent_engine_awsvpc");
  TCase *tc = tcase_create ("awsvpc");
  tcase_set_timeout (tc, 120);
  tcase_add_unchecked_fixture (tc, suite_setup, suite_teardown);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_awsvpc_task_answers_on_its_eni_address_and_gives_the_eni_back);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
