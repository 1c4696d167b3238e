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
#include "tests/support/engine.h"
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

#define IMAGE TS_ENG_IMAGE
#define ARN_PREFIX TS_ENG_ARN_PREFIX

static ts_eng f;
TS_ENG_FIXTURES (f)

static struct ts_netenv env = { .prefix = "berth-engawsvpc", .snapshot = "true" };

static void suite_setup (void)
{
  ts_netenv_suite_begin (&env);
  eng_suite_setup ();
}

static void suite_teardown (void)
{
  ts_netenv_suite_end (&env);
  eng_suite_teardown ();
}

static void setup (void)
{
  eng_setup ();
  ts_netenv_test_begin (&env);
  f.netns_run_dir = env.run_dir;
}

static void teardown (void)
{
  eng_teardown ();
  ts_netenv_test_end (&env);
}

static bool eth1_on_host_a (void)
{
  net_nl *h = ts_nl_open (f.awsvpc_host_netns_fd);
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
      ts_eng_run_for (&f, 100);
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
  ts_vpc_build (&env, &vpc, &f.awsvpc_host_netns_fd, &b);
  f.cfg.enable_task_eni = true;
  f.cfg.awsvpc_block_imds = true;
  f.cfg.task_cleanup_wait_us = 100000;
  ts_eng_open (&f);
  _cleanup_free_ char *mac = ts_link_mac (f.awsvpc_host_netns_fd, "eth1");
  _cleanup_free_ char *containers = NULL, *body = NULL;
  ck_assert_int_ge (
      asprintf (&containers,
                "[{\"name\":\"web\",\"image\":\"" IMAGE "\",\"essential\":true,\"memory\":32,"
                "\"command\":[\"sh\",\"-c\",\"mkdir -p /tmp/w; echo from-eni > /tmp/w/i;"
                " cp /etc/resolv.conf /tmp/w/r; busybox hostname > /tmp/w/h;"
                " exec busybox httpd -f -p 8080 -h /tmp/w\"]}],"
                "\"elasticNetworkInterfaces\":[{\"attachmentArn\":\"arn:x\",\"ec2Id\":\"eni-1\","
                "\"macAddress\":\"%s\",\"ipv4Addresses\":[{\"privateAddress\":\"10.0.1.50\","
                "\"primary\":true}],\"subnetGatewayIpv4Address\":\"10.0.1.1/24\","
                "\"domainNameServers\":[\"10.0.0.2\"],\"domainName\":[\"ec2.internal\"],"
                "\"privateDnsName\":\"ip-10-0-1-50.ec2.internal\"}]",
                mac),
      0);
  ts_eng_inject (&f, arn, "awsvpc", containers);
  ts_eng_run_until (&f, arn, "RUNNING", 15000);
  ck_assert (!eth1_on_host_a ()); /* the ENI is in the task's namespace */
  _cleanup_free_ char *got = get_from_b ("i");
  ck_assert_ptr_nonnull (got);
  ck_assert_str_eq (got, "from-eni\n");
  _cleanup_free_ char *resolv = get_from_b ("r");
  ck_assert_ptr_nonnull (resolv);
  ck_assert_msg (strstr (resolv, "nameserver 10.0.0.2") && strstr (resolv, "ec2.internal"), "%s",
                 resolv);
  /* the uts name is the ENI's privateDnsName, as /etc/hostname */
  _cleanup_free_ char *host = get_from_b ("h");
  ck_assert_ptr_nonnull (host);
  ck_assert_str_eq (host, "ip-10-0-1-50.ec2.internal\n");
  ts_eng_desire_stopped (&f, arn);
  ts_eng_run_until (&f, arn, "STOPPED", 15000);
  /* the STOPPED report accepted (here: taken from the outbox), cleanup gives the ENI back */
  cJSON_Delete (ts_eng_outbox (&f, arn));
  for (int i = 0; i < 150 && !eth1_on_host_a (); i++)
    ts_eng_run_for (&f, 100);
  ck_assert (eth1_on_host_a ());
  close (vpc), close (b), close (f.awsvpc_host_netns_fd);
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
