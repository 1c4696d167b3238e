/* awsvpc and 169.254.170.2 against the real kernel (root), in a VPC made of namespaces: a "vpc"
 * namespace with bridge vpcbr (10.0.1.1/24, the subnet router), hosts A and B with a veth to it
 * standing in for their primary NIC (10.0.1.10 and .20), and "EC2-attached ENIs" as extra veths
 * from vpcbr into host A. Berth acts on host A through its namespace fd; nothing leaves these
 * namespaces, and host A is compared before and after by snapshots. The task endpoint socket
 * (net_task_endpoint_listen) serves 169.254.170.2 inside each task's namespace. */
#include "net/net.h"
#include "tests/support/netenv.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct ts_netenv env = {
  .prefix = "berth-awsvpctest",
  /* iproute2's stderr is noise from other suites' link churn. */
  .snapshot = "nft list table ip berth 2>/dev/null; echo ---;"
              " ip -o link show 2>/dev/null | cut -d: -f2",
};

TS_NETENV_FIXTURES (env)

/* ---- the VPC ---- */

struct vpc
{
  int vpc, a, b; /* namespace fds */
  char state[4096], taskdir[4096];
  struct net_awsvpc_config cfg;
};

static void vpc_build (struct vpc *v)
{
  memset (v, 0, sizeof *v);
  ts_vpc_build (&env, &v->vpc, &v->a, &v->b);
  ts_vpc_plug (v->vpc, v->a, "eth2", "pe2", NULL); /* a second EC2-attached ENI */
  snprintf (v->state, sizeof v->state, "%s/state", env.tmp);
  snprintf (v->taskdir, sizeof v->taskdir, "%s/task", env.tmp);
  ck_assert_int_eq (mkdir (v->taskdir, 0755), 0);
  v->cfg = (struct net_awsvpc_config){ .host_netns_fd = v->a,
                                       .run_dir = env.run_dir,
                                       .state_dir = v->state,
                                       .parent = "nic0",
                                       .block_imds = true };
}

static void vpc_close (struct vpc *v)
{
  close (v->vpc);
  close (v->a);
  close (v->b);
}

/* An ENI with the MAC of host A's link (or mac when link is NULL) and address ip. */
static struct net_eni eni_for (struct vpc *v, const char *link, const char *mac, const char *ip)
{
  char json[1024];
  char *m = link != NULL ? ts_link_mac (v->a, link) : NULL;
  snprintf (
      json, sizeof json,
      "{\"attachmentArn\":\"arn:aws:ecs:us-east-1:1:attachment/x\",\"ec2Id\":\"eni-1\","
      "\"macAddress\":\"%s\",\"ipv4Addresses\":[{\"privateAddress\":\"%s\",\"primary\":true}],"
      "\"subnetGatewayIpv4Address\":\"10.0.1.1/24\",\"domainNameServers\":[\"10.0.0.2\","
      "\"10.0.0.3\"],\"domainName\":[\"ec2.internal\",\"corp.example\"],"
      "\"privateDnsName\":\"ip-10-0-1-50.ec2.internal\"}",
      m != NULL ? m : mac, ip);
  free (m);
  struct net_eni eni;
  TS_MUST (net_eni_from_json (json, strlen (json), &eni, err));
  return eni;
}

static int task_ns (const char *key)
{
  berr *e = NULL;
  int fd = net_netns_open (env.run_dir, key, &e);
  if (fd < 0)
    ck_abort_msg ("open netns %s: %s", key, e->msg);
  return fd;
}

static char *setup_task (struct vpc *v, const char *key, const struct net_eni *eni)
{
  char *path = NULL;
  TS_MUST (net_awsvpc_setup (&v->cfg, key, eni, v->taskdir, &path, err));
  return path;
}

/* What a leak on host A would change: links (without qdisc, which the kernel attaches on first
 * up), addresses, routes of every table, the ruleset, and the pinned namespaces. */
static char *host_a_snapshot (void)
{
  char *cmd = NULL, *out = NULL;
  int status;
  ck_assert_int_ge (
      asprintf (&cmd,
                "nsenter --net=%s/hostA sh -c '(ip -o link show | sed \"s/ qdisc [a-z_]*//\";"
                " ip -o addr show; ip route show table all; ip -6 route show table all)"
                " 2>/dev/null; nft list ruleset'; ls %s",
                env.run_dir, env.run_dir),
      0);
  ck_assert_int_eq (ts_sh (cmd, &out, &status), 0);
  ck_assert_int_eq (ts_exit_code (status), 0);
  free (cmd);
  return out;
}

static void assert_same (const char *before, const char *after)
{
  if (strcmp (before, after) != 0)
    {
      /* Check's message size is limited: the whole snapshots go to stderr. */
      fprintf (stderr, "--- host A before\n%s--- host A after\n%s", before, after);
      ck_abort_msg ("host A changed (snapshots on stderr)");
    }
}

/* Host A's snapshot once it equals want, or after 5 s. A task's links die with its namespace in
 * the kernel's asynchronous namespace cleanup, a moment after teardown returns. */
static char *settled_snapshot (const char *want)
{
  char *now = host_a_snapshot ();
  for (int i = 0; i < 100 && strcmp (now, want) != 0; i++)
    {
      usleep (50000);
      free (now);
      now = host_a_snapshot ();
    }
  return now;
}

/* ---- sockets ---- */

static int sock_in (int ns, int type)
{
  berr *e = NULL;
  int s = net_socket_in_netns (ns, AF_INET, type, &e);
  if (s < 0)
    ck_abort_msg ("socket: %s", e->msg);
  int one = 1;
  setsockopt (s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  return s;
}

static int listener (int ns, const char *addr, uint16_t port)
{
  int s = sock_in (ns, SOCK_STREAM);
  struct sockaddr_in a
      = { .sin_family = AF_INET, .sin_port = htons (port), .sin_addr = ts_ip4 (addr) };
  ck_assert_msg (bind (s, (struct sockaddr *)&a, sizeof a) == 0, "bind %s:%u: %s", addr, port,
                 strerror (errno));
  ck_assert_int_eq (listen (s, 8), 0);
  return s;
}

/* A connection from ns to dst:port within timeout_ms: the socket, or -errno. */
static int connect_from (int ns, const char *dst, uint16_t port, int timeout_ms)
{
  int s = sock_in (ns, SOCK_STREAM);
  fcntl (s, F_SETFL, O_NONBLOCK);
  struct sockaddr_in to
      = { .sin_family = AF_INET, .sin_port = htons (port), .sin_addr = ts_ip4 (dst) };
  int r = connect (s, (struct sockaddr *)&to, sizeof to), e = errno;
  if (r < 0 && e == EINPROGRESS)
    {
      struct pollfd p = { s, POLLOUT, 0 };
      socklen_t len = sizeof e;
      if (poll (&p, 1, timeout_ms) != 1)
        e = ETIMEDOUT;
      else
        getsockopt (s, SOL_SOCKET, SO_ERROR, &e, &len);
      r = e ? -1 : 0;
    }
  if (r < 0)
    {
      close (s);
      return -e;
    }
  fcntl (s, F_SETFL, 0);
  struct timeval tv = { 2, 0 };
  setsockopt (s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return s;
}

/* One HTTP exchange: the client in ns asks dst:port, the server lsock answers with its
 * local address; returns what the client read (newly allocated) or NULL. */
static char *http_get (int ns, int lsock, const char *dst, uint16_t port, char *server_saw)
{
  int c = connect_from (ns, dst, port, 3000);
  if (c < 0)
    {
      fprintf (stderr, "connect to %s:%u: %s\n", dst, port, strerror (-c));
      return NULL;
    }
  const char req[] = "GET /v2/credentials/abc HTTP/1.0\r\n\r\n";
  ck_assert_int_eq (write (c, req, sizeof req - 1), (ssize_t)sizeof req - 1);
  int a = accept4 (lsock, NULL, NULL, SOCK_CLOEXEC);
  ck_assert_int_ge (a, 0);
  char buf[256] = "", resp[256], local[INET_ADDRSTRLEN], peer[INET_ADDRSTRLEN];
  struct sockaddr_in la, pa;
  socklen_t ll = sizeof la, pl = sizeof pa;
  getsockname (a, (struct sockaddr *)&la, &ll);
  getpeername (a, (struct sockaddr *)&pa, &pl);
  inet_ntop (AF_INET, &la.sin_addr, local, sizeof local);
  inet_ntop (AF_INET, &pa.sin_addr, peer, sizeof peer);
  if (server_saw)
    strcpy (server_saw, peer);
  ck_assert_int_gt (read (a, buf, sizeof buf - 1), 0);
  ck_assert_ptr_nonnull (strstr (buf, "GET /v2/credentials/abc"));
  int n = snprintf (resp, sizeof resp, "HTTP/1.0 200 OK\r\n\r\nfrom %s", local);
  ck_assert_int_eq (write (a, resp, (size_t)n), n);
  close (a);
  memset (buf, 0, sizeof buf);
  ssize_t got = 0, k;
  while ((k = read (c, buf + got, sizeof buf - 1 - (size_t)got)) > 0)
    got += k;
  close (c);
  char *body = strstr (buf, "\r\n\r\n");
  return body ? strdup (body + 4) : NULL;
}

/* Host B asks dst:port and a server on bind:port in task key's namespace answers (with want
 * when it is not NULL). */
static void assert_b_reaches (struct vpc *v, const char *key, const char *bind, const char *dst,
                              uint16_t port, const char *want)
{
  int t = task_ns (key), l = listener (t, bind, port);
  char *body = http_get (v->b, l, dst, port, NULL);
  ck_assert_ptr_nonnull (body);
  if (want != NULL)
    ck_assert_str_eq (body, want);
  free (body);
  close (l);
  close (t);
}

/* Host A, once settled, is as before (freed). */
static void assert_host_a_back (char *before)
{
  char *after = settled_snapshot (before);
  assert_same (before, after);
  free (before);
  free (after);
}

static int cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *)a, *(char *const *)b);
}

/* The namespace's link names, sorted, space-separated. */
static char *link_names_alloc (int ns)
{
  net_nl *nl = ts_nl_open (ns);
  char **names = NULL, *out = NULL;
  size_t len = 0;
  TS_MUST (net_link_list (nl, &names, err));
  size_t count = 0;
  while (names[count])
    count++;
  qsort (names, count, sizeof *names, cmp_str);
  FILE *f = open_memstream (&out, &len);
  for (char **n = names; *n; n++)
    {
      fprintf (f, "%s%s", n == names ? "" : " ", *n);
      free (*n);
    }
  fclose (f);
  free (names);
  net_nl_close (nl);
  return out;
}

/* The sorted link names of ns, in a buffer reused by the next call. */
static const char *link_names (int ns)
{
  static char buf[256];
  char *s = link_names_alloc (ns);
  snprintf (buf, sizeof buf, "%s", s);
  free (s);
  return buf;
}

/* ---- tests ---- */

START_TEST (test_task_on_host_a_answers_host_b_from_its_moved_eni)
{
  struct vpc v;
  vpc_build (&v);
  char *before = host_a_snapshot ();
  struct net_eni eni = eni_for (&v, "eth1", NULL, "10.0.1.50");
  char *path = setup_task (&v, "t1", &eni);
  ck_assert_int_eq (strncmp (path, env.run_dir, strlen (env.run_dir)), 0);
  int t = task_ns ("t1");
  ck_assert_str_eq (link_names (t), "eth0 lo");
  int l = listener (t, "0.0.0.0", 8080);
  char seen[INET_ADDRSTRLEN];
  char *body = http_get (v.b, l, "10.0.1.50", 8080, seen);
  ck_assert_ptr_nonnull (body);
  ck_assert_str_eq (body, "from 10.0.1.50");
  ck_assert_str_eq (seen, "10.0.1.20");
  free (body);
  /* The ENI is gone from host A while the task has it. */
  net_nl *h = ts_nl_open (v.a);
  berr *e = NULL;
  ck_assert_int_lt (net_link_index (h, "eth1", &e), 0);
  berr_free (&e);
  /* A second setup of a finished task changes nothing. */
  char *again = setup_task (&v, "t1", &eni);
  ck_assert_str_eq (again, path);
  body = http_get (v.b, l, "10.0.1.50", 8080, NULL);
  ck_assert_ptr_nonnull (body);
  free (body);
  close (l);
  close (t);
  TS_MUST (net_awsvpc_teardown (&v.cfg, "t1", err));
  TS_MUST (net_awsvpc_teardown (&v.cfg, "t1", err));
  assert_host_a_back (before);
  ck_assert_int_gt (net_link_index (h, "eth1", &e), 0);
  net_nl_close (h);
  free (path);
  free (again);
  vpc_close (&v);
}
END_TEST

START_TEST (test_onprem_macvlan_on_host_nic_answers_host_b_and_is_deleted)
{
  struct vpc v;
  vpc_build (&v);
  char *before = host_a_snapshot ();
  struct net_eni eni = eni_for (&v, NULL, "02:b0:00:00:00:51", "10.0.1.51");
  char *path = setup_task (&v, "onprem", &eni);
  int t = task_ns ("onprem");
  net_nl *tn = ts_nl_open (t);
  uint8_t mac[6];
  TS_MUST (net_link_get_mac (tn, ts_must_index (tn, "eth0"), mac, err));
  ck_assert_int_eq (mac[5], 0x51);
  net_nl_close (tn);
  close (t);
  assert_b_reaches (&v, "onprem", "10.0.1.51", "10.0.1.51", 9000, "from 10.0.1.51");
  TS_MUST (net_awsvpc_teardown (&v.cfg, "onprem", err));
  /* The same MAC again at once (a task restarted with its address), while the kernel may still
   * be destroying the first namespace and its macvlan. */
  free (path);
  path = setup_task (&v, "onprem2", &eni);
  assert_b_reaches (&v, "onprem2", "10.0.1.51", "10.0.1.51", 9000, NULL);
  TS_MUST (net_awsvpc_teardown (&v.cfg, "onprem2", err));
  assert_host_a_back (before);
  free (path);
  vpc_close (&v);
}
END_TEST

START_TEST (test_no_link_with_the_mac_and_no_parent_fails_cleanly)
{
  struct vpc v;
  vpc_build (&v);
  char *before = host_a_snapshot ();
  v.cfg.parent = NULL;
  struct net_eni eni = eni_for (&v, NULL, "02:b0:00:00:00:52", "10.0.1.52");
  char *path = NULL;
  berr *e = NULL;
  ck_assert_int_lt (net_awsvpc_setup (&v.cfg, "nolink", &eni, v.taskdir, &path, &e), 0);
  ck_assert_int_eq (berr_errno (e), ENODEV);
  berr_free (&e);
  ck_assert_ptr_null (path);
  assert_host_a_back (before);
  vpc_close (&v);
}
END_TEST

START_TEST (test_endpoint_answers_each_awsvpc_task_from_its_own_socket)
{
  struct vpc v;
  vpc_build (&v);
  char *before = host_a_snapshot ();
  struct net_eni e1 = eni_for (&v, "eth1", NULL, "10.0.1.50");
  struct net_eni e2 = eni_for (&v, "eth2", NULL, "10.0.1.60");
  free (setup_task (&v, "t1", &e1));
  free (setup_task (&v, "t2", &e2));
  int t1 = task_ns ("t1"), t2 = task_ns ("t2");
  char *with_tasks = host_a_snapshot ();
  int l1 = ts_endpoint_listen (t1), l2 = ts_endpoint_listen (t2);
  /* Each task's request lands on its own socket: which socket accepted says which task asks. */
  char *b1 = http_get (t1, l1, NET_TASK_ENDPOINT_ADDR, 80, NULL);
  ck_assert_ptr_nonnull (b1);
  ck_assert_str_eq (b1, "from " NET_TASK_ENDPOINT_ADDR);
  ck_assert (!ts_pending (l2, 100));
  char *b2 = http_get (t2, l2, NET_TASK_ENDPOINT_ADDR, 80, NULL);
  ck_assert_ptr_nonnull (b2);
  ck_assert (!ts_pending (l1, 100));
  /* Only port 80 is served; another port is refused inside the task. */
  ck_assert_int_eq (connect_from (t1, NET_TASK_ENDPOINT_ADDR, 8080, 300), -ECONNREFUSED);
  /* Host A did not change for it: no address, route, link or rule. */
  char *with_endpoints = host_a_snapshot ();
  assert_same (with_tasks, with_endpoints);
  free (b1);
  free (b2);
  close (l1);
  close (l2);
  close (t1);
  close (t2);
  TS_MUST (net_awsvpc_teardown (&v.cfg, "t1", err));
  TS_MUST (net_awsvpc_teardown (&v.cfg, "t2", err));
  assert_host_a_back (before);
  free (with_tasks);
  free (with_endpoints);
  vpc_close (&v);
}
END_TEST

static int64_t now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST (test_task_reaches_nothing_else_on_host_a_and_no_impostor)
{
  struct vpc v;
  vpc_build (&v);
  /* An impostor of 169.254.170.2 in the VPC, where the task's default route leads. */
  net_nl *n = ts_nl_open (v.vpc);
  TS_MUST (net_addr_add (n, ts_must_index (n, "lo"), ts_ip4 (NET_TASK_ENDPOINT_ADDR), 32, err));
  net_nl_close (n);
  int fake = listener (v.vpc, NET_TASK_ENDPOINT_ADDR, 80);
  struct net_eni e1 = eni_for (&v, "eth1", NULL, "10.0.1.50");
  struct net_eni e2 = eni_for (&v, "eth2", NULL, "10.0.1.60");
  free (setup_task (&v, "t1", &e1));
  free (setup_task (&v, "t2", &e2));
  int t1 = task_ns ("t1"), t2 = task_ns ("t2");
  /* Without the endpoint the task's request leaves by its ENI (the impostor answers): what the
   * endpoint's address on the task's lo prevents below. */
  char *b = http_get (t1, fake, NET_TASK_ENDPOINT_ADDR, 80, NULL);
  ck_assert_ptr_nonnull (b);
  free (b);
  int l1 = ts_endpoint_listen (t1), l2 = ts_endpoint_listen (t2);
  ck_assert_str_eq (link_names (t1), "eth0 lo");
  ck_assert_str_eq (link_names (t2), "eth0 lo");
  int c = connect_from (t1, NET_TASK_ENDPOINT_ADDR, 80, 1000);
  ck_assert_int_ge (c, 0);
  ck_assert (ts_pending (l1, 1000));
  ck_assert (!ts_pending (fake, 100));
  close (c);
  /* The agent away (socket closed): refused inside the task, never sent to the impostor. */
  close (l1);
  ck_assert_int_eq (connect_from (t1, NET_TASK_ENDPOINT_ADDR, 80, 1000), -ECONNREFUSED);
  ck_assert (!ts_pending (fake, 100));
  l1 = ts_endpoint_listen (t1);
  /* 169.254.169.254 is a blackhole: connect fails at once. */
  int64_t t0 = now_ms ();
  ck_assert_int_eq (connect_from (t1, NET_IMDS_ADDR, 80, 2000), -EINVAL);
  ck_assert_int_lt (now_ms () - t0, 200);
  /* Host A's loopback services: 127.0.0.1 in the task is the task's own lo. */
  int lo_srv = listener (v.a, "127.0.0.1", 7001);
  ck_assert_int_eq (connect_from (t1, "127.0.0.1", 7001, 300), -ECONNREFUSED);
  ck_assert (!ts_pending (lo_srv, 100));
  /* The other task's endpoint: bound to its lo only, so its ENI address refuses port 80. */
  ck_assert_int_eq (connect_from (t1, "10.0.1.60", 80, 1000), -ECONNREFUSED);
  ck_assert (!ts_pending (l2, 100));
  /* Host A's primary address is reachable only the VPC way, like any neighbour's. */
  int prim = listener (v.a, "0.0.0.0", 7002);
  b = http_get (t1, prim, "10.0.1.10", 7002, NULL);
  ck_assert_ptr_nonnull (b);
  free (b);
  close (prim);
  close (lo_srv);
  close (l1);
  close (l2);
  close (fake);
  close (t1);
  close (t2);
  TS_MUST (net_awsvpc_teardown (&v.cfg, "t1", err));
  TS_MUST (net_awsvpc_teardown (&v.cfg, "t2", err));
  vpc_close (&v);
}
END_TEST

START_TEST (test_resolv_conf_and_hostname_written_from_the_eni)
{
  struct vpc v;
  vpc_build (&v);
  struct net_eni eni = eni_for (&v, "eth1", NULL, "10.0.1.50");
  free (setup_task (&v, "t1", &eni));
  char p[4200];
  snprintf (p, sizeof p, "%s/resolv.conf", v.taskdir);
  char *rc = ts_read_file (p);
  ck_assert_str_eq (rc, "# written by Berth from the task's ENI\nnameserver 10.0.0.2\n"
                        "nameserver 10.0.0.3\nsearch ec2.internal corp.example\n");
  snprintf (p, sizeof p, "%s/hostname", v.taskdir);
  char *hn = ts_read_file (p);
  ck_assert_str_eq (hn, "ip-10-0-1-50.ec2.internal\n");
  free (rc);
  free (hn);
  TS_MUST (net_awsvpc_teardown (&v.cfg, "t1", err));
  vpc_close (&v);
}
END_TEST

START_TEST (test_failed_setup_leaves_nothing_and_a_retry_completes)
{
  struct vpc v;
  vpc_build (&v);
  char *before = host_a_snapshot ();
  struct net_eni eni = eni_for (&v, "eth1", NULL, "10.0.1.50");
  char *path = NULL, missing[4200];
  berr *e = NULL;
  /* It fails at the very end (the task directory is missing): everything made is undone. */
  snprintf (missing, sizeof missing, "%s/nope", v.taskdir);
  ck_assert_int_lt (net_awsvpc_setup (&v.cfg, "t1", &eni, missing, &path, &e), 0);
  ck_assert_ptr_nonnull (strstr (e->msg, "nope"));
  berr_free (&e);
  char *after_fail = settled_snapshot (before);
  assert_same (before, after_fail);
  /* An interrupted setup (a record left incomplete, as by a crash): the next call redoes it. */
  path = setup_task (&v, "t1", &eni);
  char rec[4200];
  snprintf (rec, sizeof rec, "%s/t1.awsvpc", v.state);
  ts_sh_ok ("sed -i 's/complete 1/complete 0/' %s", rec);
  free (path);
  path = setup_task (&v, "t1", &eni);
  assert_b_reaches (&v, "t1", "0.0.0.0", "10.0.1.50", 8080, NULL);
  TS_MUST (net_awsvpc_teardown (&v.cfg, "t1", err));
  assert_host_a_back (before);
  free (after_fail);
  free (path);
  vpc_close (&v);
}
END_TEST

START_TEST (test_reconcile_after_restart_removes_dead_tasks_and_keeps_live_ones)
{
  struct vpc v;
  vpc_build (&v);
  char *before = host_a_snapshot ();
  struct net_eni e1 = eni_for (&v, "eth1", NULL, "10.0.1.50");
  struct net_eni e2 = eni_for (&v, "eth2", NULL, "10.0.1.60");
  struct net_eni e3 = eni_for (&v, NULL, "02:b0:00:00:00:53", "10.0.1.53");
  free (setup_task (&v, "live", &e1));
  free (setup_task (&v, "gone", &e2));
  free (setup_task (&v, "gonemv", &e3));
  /* "Restart": nothing in memory; only the records, pins and links remain. */
  net_nl *h = ts_nl_open (v.a);
  const char *live[] = { "live", NULL };
  TS_MUST (net_awsvpc_reconcile (&v.cfg, live, err));
  berr *e = NULL;
  ck_assert_int_gt (net_link_index (h, "eth2", &e), 0); /* gone's ENI is back under its name */
  ck_assert_int_lt (net_link_index (h, "eth1", &e), 0); /* live's is still in its task */
  berr_free (&e);
  net_nl_close (h);
  int t = task_ns ("live");
  int md = ts_endpoint_listen (t);
  char *b = http_get (t, md, NET_TASK_ENDPOINT_ADDR, 80, NULL);
  ck_assert_ptr_nonnull (b);
  free (b);
  int l = listener (t, "0.0.0.0", 8080);
  b = http_get (v.b, l, "10.0.1.50", 8080, NULL);
  ck_assert_ptr_nonnull (b);
  free (b);
  close (l);
  close (md);
  close (t);
  TS_MUST (net_awsvpc_reconcile (&v.cfg, NULL, err));
  assert_host_a_back (before);
  vpc_close (&v);
}
END_TEST

/* Replaces key's record with text whose "%s" becomes the MAC of host A's link (or of the task's
 * eth0 when the link is in the task). */
static void write_record (struct vpc *v, const char *key, const char *fmt, const char *link)
{
  uint8_t b[6];
  net_nl *h = ts_nl_open (v->a);
  berr *e = NULL;
  int idx = net_link_index (h, link, &e);
  if (idx < 0)
    {
      /* The ENI is in the task: its MAC there. */
      berr_free (&e);
      net_nl_close (h);
      int t = task_ns (key);
      h = ts_nl_open (t);
      close (t);
      idx = ts_must_index (h, "eth0");
    }
  TS_MUST (net_link_get_mac (h, idx, b, err));
  net_nl_close (h);
  char mac[18], path[4200];
  snprintf (mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
  snprintf (path, sizeof path, "%s/%s.awsvpc", v->state, key);
  FILE *f = fopen (path, "we");
  ck_assert_ptr_nonnull (f);
  const char *at = strstr (fmt, "%s");
  ck_assert_ptr_nonnull (at);
  fprintf (f, "%.*s%s%s", (int)(at - fmt), fmt, mac, at + 2);
  fclose (f);
}

START_TEST (test_records_of_the_previous_format_are_torn_down_and_corrupt_ones_refused)
{
  struct vpc v;
  vpc_build (&v);
  char *before = host_a_snapshot ();
  struct net_eni e1 = eni_for (&v, "eth1", NULL, "10.0.1.50");
  struct net_eni e2 = eni_for (&v, "eth2", NULL, "10.0.1.60");
  char *path = setup_task (&v, "old", &e1);
  free (setup_task (&v, "bad", &e2));
  /* As version 1 left them: a meta line, and its metadata address file. */
  write_record (&v, "old",
                "berth-awsvpc 1\nmac %s\nkind moved eth1\nmeta 169.254.172.2\n"
                "complete 1\n",
                "eth1");
  char ipam[4200];
  snprintf (ipam, sizeof ipam, "%s/metadata-ipam", v.state);
  ts_sh_ok ("echo 'berth-ipam 1' > %s", ipam);
  /* A finished task of the old format is left as it is by setup (reconcile tears it down). */
  char *again = setup_task (&v, "old", &e1);
  ck_assert_str_eq (again, path);
  /* Not the format: each refused naming the record, and nothing is touched. */
  static const char *const corrupt[] = {
    "berth-awsvpc 3\nmac %s\nkind moved eth2\ncomplete 1\n",
    "berth-awsvpc 2\nmac %s\nkind moved eth2\ncomplete 2\n",
    "berth-awsvpc 2\nmac %s\nkind macvlan eth2\ncomplete 1\n",
    "berth-awsvpc 2\nmac %s\nkind moved eth2\nmeta 169.254.172.3\ncomplete 1\n",
    "berth-awsvpc 2\nmac %s\nkind moved eth2\ncomplete 1\nextra\n",
    "berth-awsvpc 1\nmac %s\nkind moved eth2\nmeta 169.254.172.300\ncomplete 1\n",
  };
  for (size_t i = 0; i < sizeof corrupt / sizeof *corrupt; i++)
    {
      write_record (&v, "bad", corrupt[i], "eth2");
      berr *e = NULL;
      ck_assert_int_lt (net_awsvpc_teardown (&v.cfg, "bad", &e), 0);
      ck_assert_int_eq (berr_errno (e), EINVAL);
      ck_assert_msg (strstr (e->msg, "corrupt awsvpc record") && strstr (e->msg, "bad.awsvpc"),
                     "%s", e->msg);
      berr_free (&e);
    }
  int t = task_ns ("bad");
  ck_assert_str_eq (link_names (t), "eth0 lo");
  close (t);
  /* Repaired by hand (the exact current format), it goes like any other. */
  write_record (&v, "bad", "berth-awsvpc 2\nmac %s\nkind moved eth2\ncomplete 1\n", "eth2");
  const char *live[] = { "bad", NULL };
  TS_MUST (net_awsvpc_reconcile (&v.cfg, live, err));
  ck_assert_int_lt (access (ipam, F_OK), 0); /* version 1's address file is gone */
  net_nl *h = ts_nl_open (v.a);
  ck_assert_int_gt (ts_must_index (h, "eth1"), 0); /* old's ENI is back */
  net_nl_close (h);
  TS_MUST (net_awsvpc_teardown (&v.cfg, "bad", err));
  assert_host_a_back (before);
  free (path);
  free (again);
  vpc_close (&v);
}
END_TEST

static Suite *suite (void)
{
  Suite *s = suite_create ("awsvpc");
  TCase *tc = tcase_create ("vpc");
  tcase_add_unchecked_fixture (tc, netenv_suite_begin, netenv_suite_end);
  tcase_add_checked_fixture (tc, netenv_setup, netenv_teardown);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_task_on_host_a_answers_host_b_from_its_moved_eni);
  tcase_add_test (tc, test_onprem_macvlan_on_host_nic_answers_host_b_and_is_deleted);
  tcase_add_test (tc, test_no_link_with_the_mac_and_no_parent_fails_cleanly);
  tcase_add_test (tc, test_endpoint_answers_each_awsvpc_task_from_its_own_socket);
  tcase_add_test (tc, test_task_reaches_nothing_else_on_host_a_and_no_impostor);
  tcase_add_test (tc, test_resolv_conf_and_hostname_written_from_the_eni);
  tcase_add_test (tc, test_failed_setup_leaves_nothing_and_a_retry_completes);
  tcase_add_test (tc, test_reconcile_after_restart_removes_dead_tasks_and_keeps_live_ones);
  tcase_add_test (tc, test_records_of_the_previous_format_are_torn_down_and_corrupt_ones_refused);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (suite ());
}
