/* net/bridge.c against the real kernel (root): Berth's bridge built inside a "host" namespace the
 * test creates (the test process never leaves the real host's namespace), with a "client"
 * namespace standing in for another host on the network. Containers are real namespaces with
 * real servers; the real host is snapshotted before and after every test and must not change. */
#include "net/net.h"
#include "tests/support/netenv.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct ts_netenv env = {
  .prefix = "berth-brtest",
  .snapshot = "nft list table ip berth 2>/dev/null; echo ---; ip -o link show | cut -d: -f2",
};

TS_NETENV_FIXTURES (env)

/* host: the namespace Berth's code acts in, link vl 10.99.0.1/24 to client (eth0 10.99.0.2/24,
 * default route via the host). */
struct world
{
  int host, client;
  char *ipam_path;
  net_bridge *br;
};

static struct net_bridge_config config (struct world *w)
{
  return (struct net_bridge_config){ .ipam_path = w->ipam_path,
                                     .run_dir = env.run_dir,
                                     .host_netns_fd = w->host };
}

static void world_build (struct world *w)
{
  w->host = ts_netenv_ns (&env, "host");
  w->client = ts_netenv_ns (&env, "client");
  net_nl *h = ts_nl_open (w->host), *c = ts_nl_open (w->client);
  TS_MUST (net_link_add_veth (h, "vl", "eth0", w->client, err));
  TS_MUST (net_addr_add (h, ts_must_index (h, "vl"), ts_ip4 ("10.99.0.1"), 24, err));
  TS_MUST (net_link_set_up (h, ts_must_index (h, "vl"), true, err));
  TS_MUST (net_addr_add (c, ts_must_index (c, "eth0"), ts_ip4 ("10.99.0.2"), 24, err));
  TS_MUST (net_link_set_up (c, ts_must_index (c, "eth0"), true, err));
  TS_MUST (net_route_add_default (c, ts_ip4 ("10.99.0.1"), 0, err));
  /* Settle the test's own link before any snapshot: carrier as the link watcher sees it, and no
   * IPv6 link-local address going through duplicate detection. */
  ts_sh_ok ("nsenter --net=%s/host sysctl -qw net.ipv6.conf.vl.disable_ipv6=1", env.run_dir);
  for (int i = 0; i < 400
                  && (net_link_oper_up (h, ts_must_index (h, "vl"), NULL) != 1
                      || net_link_oper_up (c, ts_must_index (c, "eth0"), NULL) != 1);
       i++)
    usleep (5000);
  net_nl_close (h);
  net_nl_close (c);
  ck_assert_int_ge (asprintf (&w->ipam_path, "%s/ipam", env.tmp), 0);
  struct net_bridge_config cfg = config (w);
  TS_MUST (net_bridge_open (&cfg, &w->br, err));
}

static void world_free (struct world *w)
{
  net_bridge_close (w->br);
  close (w->host);
  close (w->client);
  free (w->ipam_path);
}

/* An fd of endpoint key's namespace. */
static int ctr_ns (const char *key)
{
  berr *e = NULL;
  int fd = net_netns_open (env.run_dir, key, &e);
  if (fd < 0)
    ck_abort_msg ("open netns %s: %s", key, e->msg);
  return fd;
}

/* A socket in nsfd with 1 s timeouts, bound to addr:port when port != 0. */
static int sock_at (int nsfd, int type, const char *addr, uint16_t port)
{
  berr *e = NULL;
  int s = net_socket_in_netns (nsfd, AF_INET, type, &e);
  if (s < 0)
    ck_abort_msg ("socket: %s", e->msg);
  struct timeval tv = { 1, 0 };
  setsockopt (s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt (s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons (port) };
  if (addr)
    a.sin_addr = ts_ip4 (addr);
  if (port)
    ck_assert_msg (bind (s, (struct sockaddr *)&a, sizeof a) == 0, "bind %u: %s", port,
                   strerror (errno));
  if (port && type == SOCK_STREAM)
    ck_assert_int_eq (listen (s, 8), 0);
  return s;
}

/* A TCP connection from ns_from to dst:dport, accepted on lsock and carrying a byte; the source
 * address the server saw into src (may be NULL). */
static bool tcp_delivers (int ns_from, int lsock, const char *dst, uint16_t dport, char *src)
{
  int c = sock_at (ns_from, SOCK_STREAM, NULL, 0);
  struct sockaddr_in to
      = { .sin_family = AF_INET, .sin_port = htons (dport), .sin_addr = ts_ip4 (dst) };
  bool ok = connect (c, (struct sockaddr *)&to, sizeof to) == 0 && write (c, "b", 1) == 1;
  if (ok)
    {
      struct sockaddr_in peer;
      socklen_t plen = sizeof peer;
      int a = accept4 (lsock, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
      char ch = 0;
      ok = a >= 0 && read (a, &ch, 1) == 1 && ch == 'b';
      if (ok && src)
        inet_ntop (AF_INET, &peer.sin_addr, src, INET_ADDRSTRLEN);
      if (a >= 0)
        close (a);
    }
  close (c);
  return ok;
}

static bool udp_delivers (int ns_from, int rsock, const char *dst, uint16_t dport)
{
  int s = sock_at (ns_from, SOCK_DGRAM, NULL, 0);
  struct sockaddr_in to
      = { .sin_family = AF_INET, .sin_port = htons (dport), .sin_addr = ts_ip4 (dst) };
  ssize_t n = sendto (s, "berth", 5, 0, (struct sockaddr *)&to, sizeof to);
  close (s);
  char buf[8];
  return n == 5 && recv (rsock, buf, sizeof buf, 0) == 5 && memcmp (buf, "berth", 5) == 0;
}

/* Everything of the test's host namespace a leak would change: links, addresses, routes, the
 * nft ruleset, pinned namespaces and the IPAM's allocations. Carrier is left out: a bridge has
 * carrier until its first port joins and none once its last port left (the kernel's doing, not a
 * leftover), and its routes say "linkdown" accordingly. */
static char *host_snapshot (const struct world *w)
{
  char *out = NULL, *cmd = NULL;
  int status;
  ck_assert_int_ge (
      asprintf (&cmd,
                "nsenter --net=%s/host sh -c 'ip -o link show | sed -E "
                "\"s/NO-CARRIER,//; s/,LOWER_UP//; s/ state [A-Z]+//\"; ip -o addr show; "
                "ip route show | sed \"s/ linkdown//\"; nft list ruleset'; "
                "ls %s; cat %s 2>/dev/null | grep ^alloc || true",
                env.run_dir, env.run_dir, w->ipam_path),
      0);
  ck_assert_int_eq (ts_sh (cmd, &out, &status), 0);
  ck_assert_int_eq (ts_exit_code (status), 0);
  free (cmd);
  return out;
}

/* Fails with the diff of two snapshots when they differ. */
static void assert_same (const char *before, const char *after)
{
  if (strcmp (before, after) == 0)
    return;
  char *a = NULL, *b = NULL, *cmd = NULL, *out = NULL;
  int status;
  ck_assert_int_ge (asprintf (&a, "%s/snap.before", env.tmp), 0);
  ck_assert_int_ge (asprintf (&b, "%s/snap.after", env.tmp), 0);
  FILE *f = fopen (a, "we");
  fputs (before, f);
  fclose (f);
  f = fopen (b, "we");
  fputs (after, f);
  fclose (f);
  ck_assert_int_ge (asprintf (&cmd, "diff %s %s", a, b), 0);
  ts_sh (cmd, &out, &status);
  ck_abort_msg ("host namespace changed:\n%.3000s", out ? out : "");
}

/* Polls the host snapshot until it equals before (the veth pair of a torn-down endpoint goes with
 * its namespace, in the kernel's cleanup worker), for up to 5 s; then fails with the diff. */
static void assert_becomes_same (const struct world *w, const char *before)
{
  char *after = NULL;
  for (int i = 0; i < 100; i++)
    {
      free (after);
      after = host_snapshot (w);
      if (strcmp (before, after) == 0)
        break;
      usleep (50 * 1000);
    }
  assert_same (before, after);
  free (after);
}

static struct net_port_mapping tcp (uint16_t cport, uint16_t hport)
{
  return (struct net_port_mapping){ IPPROTO_TCP, cport, hport };
}

static struct net_port_mapping udp (uint16_t cport, uint16_t hport)
{
  return (struct net_port_mapping){ IPPROTO_UDP, cport, hport };
}

/* ---- tests ---- */

START_TEST (test_static_and_dynamic_ports_reach_the_container_from_another_host_and_the_host)
{
  struct world w;
  world_build (&w);
  uint16_t sport = (uint16_t)ts_free_port ();
  struct net_port_mapping ports[] = { tcp (80, sport), tcp (8080, 0), udp (53, sport) };
  struct net_bridge_endpoint ep;
  TS_MUST (net_bridge_setup (w.br, "t1.web", ports, 3, &ep, err));
  ck_assert_uint_eq (ep.n_bindings, 3);
  ck_assert_uint_eq (ep.bindings[0].host_port, sport);
  struct net_port_range dyn = net_bridge_dynamic_range (w.br);
  uint16_t dport = ep.bindings[1].host_port;
  ck_assert_msg (dport >= dyn.lo && dport <= dyn.hi, "dynamic port %u outside %u-%u", dport, dyn.lo,
                 dyn.hi);
  ck_assert_int_eq (ep.bindings[1].container_port, 8080);
  ck_assert_int_eq (ep.bindings[2].proto, IPPROTO_UDP);
  ck_assert_str_eq (ep.bindings[0].bind_ip, "0.0.0.0");
  /* Default subnet: the endpoint's address is in it, the gateway is its first address. */
  char a[INET_ADDRSTRLEN];
  inet_ntop (AF_INET, &ep.addr, a, sizeof a);
  ck_assert_msg (strncmp (a, "172.30.23", 9) == 0, "address %s", a);

  int ns = ctr_ns ("t1.web");
  int l80 = sock_at (ns, SOCK_STREAM, NULL, 80), l8080 = sock_at (ns, SOCK_STREAM, NULL, 8080);
  int u53 = sock_at (ns, SOCK_DGRAM, NULL, 53);
  char src[INET_ADDRSTRLEN] = "";
  /* From another host: the client keeps its own address (no SNAT on the way in). */
  ck_assert (tcp_delivers (w.client, l80, "10.99.0.1", sport, src));
  ck_assert_str_eq (src, "10.99.0.2");
  ck_assert (tcp_delivers (w.client, l8080, "10.99.0.1", dport, NULL));
  ck_assert (udp_delivers (w.client, u53, "10.99.0.1", sport));
  /* From the host itself, to its own addresses (output hook). */
  ck_assert (tcp_delivers (w.host, l80, "10.99.0.1", sport, NULL));
  ck_assert (tcp_delivers (w.host, l8080, "10.99.0.1", dport, NULL));
  ck_assert (udp_delivers (w.host, u53, "10.99.0.1", sport));
  inet_ntop (AF_INET, (struct in_addr[]){ net_bridge_gateway (w.br) }, a, sizeof a);
  ck_assert (tcp_delivers (w.host, l80, a, sport, NULL));
  /* Not through 127.0.0.1: that would need route_localnet (docs/networking.md). */
  ck_assert (!tcp_delivers (w.host, l80, "127.0.0.1", sport, NULL));

  /* The same setup again is a no-op with the same answer. */
  struct net_bridge_endpoint again;
  TS_MUST (net_bridge_setup (w.br, "t1.web", ports, 3, &again, err));
  ck_assert_uint_eq (again.addr.s_addr, ep.addr.s_addr);
  ck_assert_uint_eq (again.bindings[1].host_port, dport);
  ck_assert (tcp_delivers (w.client, l8080, "10.99.0.1", dport, NULL));

  TS_MUST (net_bridge_teardown (w.br, "t1.web", err));
  ck_assert (!tcp_delivers (w.client, l80, "10.99.0.1", sport, NULL));
  TS_MUST (net_bridge_teardown (w.br, "t1.web", err));
  close (l80);
  close (l8080);
  close (u53);
  close (ns);
  net_bridge_endpoint_clear (&ep);
  net_bridge_endpoint_clear (&again);
  world_free (&w);
}
END_TEST

START_TEST (test_egress_is_masqueraded_to_the_host_address)
{
  struct world w;
  world_build (&w);
  struct net_bridge_endpoint ep;
  TS_MUST (net_bridge_setup (w.br, "t2.app", NULL, 0, &ep, err));
  uint16_t port = (uint16_t)ts_free_port ();
  int srv = sock_at (w.client, SOCK_STREAM, "10.99.0.2", port);
  int ns = ctr_ns ("t2.app");
  char src[INET_ADDRSTRLEN] = "";
  ck_assert (tcp_delivers (ns, srv, "10.99.0.2", port, src));
  ck_assert_str_eq (src, "10.99.0.1");
  close (srv);
  close (ns);
  TS_MUST (net_bridge_teardown (w.br, "t2.app", err));
  net_bridge_endpoint_clear (&ep);
  world_free (&w);
}
END_TEST

START_TEST (test_static_port_conflict_fails_naming_the_port_and_leaves_nothing)
{
  struct world w;
  world_build (&w);
  uint16_t p1 = (uint16_t)ts_free_port (), p2 = (uint16_t)ts_free_port ();
  struct net_port_mapping a[] = { tcp (80, p1) };
  struct net_bridge_endpoint ep, bad;
  TS_MUST (net_bridge_setup (w.br, "ta.one", a, 1, &ep, err));
  char *before = host_snapshot (&w);
  /* Held by another task: the second port of b is the one in conflict. */
  struct net_port_mapping b[] = { tcp (81, 0), tcp (80, p1) };
  berr *e = NULL;
  ck_assert_int_lt (net_bridge_setup (w.br, "tb.two", b, 2, &bad, &e), 0);
  ck_assert_int_eq (berr_errno (e), EADDRINUSE);
  char want[64];
  snprintf (want, sizeof want, "tcp/%u", p1);
  ck_assert_msg (strstr (e->msg, want) && strstr (e->msg, "ta.one"), "message: %s", e->msg);
  berr_free (&e);
  ck_assert_ptr_null (bad.bindings);
  char *after = host_snapshot (&w);
  assert_same (before, after);
  free (after);
  /* Bound by a process on the host. */
  int held = sock_at (w.host, SOCK_DGRAM, NULL, p2);
  struct net_port_mapping c[] = { udp (53, p2) };
  ck_assert_int_lt (net_bridge_setup (w.br, "tc.three", c, 1, &bad, &e), 0);
  ck_assert_int_eq (berr_errno (e), EADDRINUSE);
  snprintf (want, sizeof want, "udp/%u", p2);
  ck_assert_msg (strstr (e->msg, want) && strstr (e->msg, "bound"), "message: %s", e->msg);
  berr_free (&e);
  after = host_snapshot (&w);
  assert_same (before, after);
  close (held);
  TS_MUST (net_bridge_teardown (w.br, "ta.one", err));
  free (before);
  free (after);
  net_bridge_endpoint_clear (&ep);
  world_free (&w);
}
END_TEST

START_TEST (test_teardown_leaves_the_host_namespace_exactly_as_before)
{
  struct world w;
  world_build (&w);
  char *before = host_snapshot (&w);
  struct net_port_mapping p[] = { tcp (80, (uint16_t)ts_free_port ()), udp (53, 0), tcp (443, 0) };
  struct net_bridge_endpoint e1, e2;
  TS_MUST (net_bridge_setup (w.br, "t4.a", p, 3, &e1, err));
  TS_MUST (net_bridge_setup (w.br, "t4.b", p + 1, 2, &e2, err));
  char *during = host_snapshot (&w);
  ck_assert_str_ne (before, during);
  TS_MUST (net_bridge_teardown (w.br, "t4.a", err));
  TS_MUST (net_bridge_teardown (w.br, "t4.b", err));
  assert_becomes_same (&w, before);
  /* Set up again right after (a retry while the old pair may still be dying), torn down again. */
  net_bridge_endpoint_clear (&e2);
  TS_MUST (net_bridge_setup (w.br, "t4.a", p, 3, &e2, err));
  TS_MUST (net_bridge_teardown (w.br, "t4.a", err));
  assert_becomes_same (&w, before);
  /* Removing the bridge too leaves only the table's empty chains. */
  TS_MUST (net_bridge_remove (w.br, err));
  char *after = host_snapshot (&w);
  ck_assert_msg (strstr (after, "berth0") == NULL && strstr (after, "masquerade") == NULL, "%s",
                 after);
  free (before);
  free (during);
  free (after);
  net_bridge_endpoint_clear (&e1);
  net_bridge_endpoint_clear (&e2);
  world_free (&w);
}
END_TEST

START_TEST (test_a_pair_kept_alive_by_a_straggler_is_swept_by_reconcile)
{
  struct world w;
  world_build (&w);
  char *before = host_snapshot (&w);
  struct net_bridge_endpoint ep;
  TS_MUST (net_bridge_setup (w.br, "t7.a", NULL, 0, &ep, err));
  /* A process that outlived its container still holds the namespace. */
  int held = ctr_ns ("t7.a");
  TS_MUST (net_bridge_teardown (w.br, "t7.a", err));
  char veth[IFNAMSIZ];
  net_bridge_veth_name ("t7.a", veth);
  net_nl *h = ts_nl_open (w.host);
  usleep (200 * 1000);
  ck_assert_int_gt (ts_must_index (h, veth), 0);
  berr *e = NULL;
  ck_assert_int_eq (net_bridge_reconcile (w.br, NULL, 0, &e), 0);
  ck_assert_int_lt (net_link_index (h, veth, &e), 0);
  berr_free (&e);
  close (held);
  net_nl_close (h);
  assert_becomes_same (&w, before);
  free (before);
  net_bridge_endpoint_clear (&ep);
  world_free (&w);
}
END_TEST

START_TEST (test_reconcile_after_restart_removes_gone_endpoints_and_keeps_live_ones)
{
  struct world w;
  world_build (&w);
  char *before = host_snapshot (&w);
  const char *keys[] = { "t5.a", "t5.b", "t5.c" };
  struct net_bridge_endpoint ep[3];
  for (int i = 0; i < 3; i++)
    {
      struct net_port_mapping p[] = { tcp (80, 0), udp (53, 0) };
      TS_MUST (net_bridge_setup (w.br, keys[i], p, 2, &ep[i], err));
    }
  /* The agent restarts: in-memory state is gone, only the kernel and the IPAM file remain. */
  net_bridge_close (w.br);
  struct net_bridge_config cfg = config (&w);
  TS_MUST (net_bridge_open (&cfg, &w.br, err));
  berr *e = NULL;
  ck_assert_int_eq (net_bridge_reconcile (w.br, keys, 2, &e), 1);
  ck_assert_int_eq (net_bridge_reconcile (w.br, keys, 2, &e), 0);
  char veth[IFNAMSIZ];
  net_bridge_veth_name ("t5.c", veth);
  net_nl *h = ts_nl_open (w.host);
  ck_assert_int_lt (net_link_index (h, veth, &e), 0);
  berr_free (&e);
  ck_assert_int_lt (net_netns_open (env.run_dir, "t5.c", &e), 0);
  berr_free (&e);
  char *ipam = ts_read_file (w.ipam_path);
  ck_assert_ptr_null (strstr (ipam, "t5.c"));
  free (ipam);
  /* The live two still work, on the ports they were given. */
  for (int i = 0; i < 2; i++)
    {
      int ns = ctr_ns (keys[i]);
      int l = sock_at (ns, SOCK_STREAM, NULL, 80), u = sock_at (ns, SOCK_DGRAM, NULL, 53);
      ck_assert (tcp_delivers (w.client, l, "10.99.0.1", ep[i].bindings[0].host_port, NULL));
      ck_assert (udp_delivers (w.client, u, "10.99.0.1", ep[i].bindings[1].host_port));
      close (l);
      close (u);
      close (ns);
    }
  int none = sock_at (w.host, SOCK_STREAM, NULL, 0);
  ck_assert (!tcp_delivers (w.client, none, "10.99.0.1", ep[2].bindings[0].host_port, NULL));
  close (none);
  /* A veth left by hand with Berth's name form and no live owner is swept too. */
  net_bridge_veth_name ("t5.gone", veth);
  TS_MUST (net_link_add_veth (h, veth, "bvpeer", -1, err));
  ck_assert_int_eq (net_bridge_reconcile (w.br, keys, 2, &e), 0);
  ck_assert_int_lt (net_link_index (h, veth, &e), 0);
  berr_free (&e);
  ck_assert_int_eq (net_bridge_reconcile (w.br, NULL, 0, &e), 2);
  char *after = host_snapshot (&w);
  assert_same (before, after);
  free (before);
  free (after);
  net_nl_close (h);
  for (int i = 0; i < 3; i++)
    net_bridge_endpoint_clear (&ep[i]);
  world_free (&w);
}
END_TEST

START_TEST (test_each_container_reaches_the_endpoint_socket_in_its_own_namespace)
{
  struct world w;
  world_build (&w);
  struct net_bridge_endpoint e1, e2;
  TS_MUST (net_bridge_setup (w.br, "t6.a", NULL, 0, &e1, err));
  TS_MUST (net_bridge_setup (w.br, "t6.b", NULL, 0, &e2, err));
  int n1 = ctr_ns ("t6.a"), n2 = ctr_ns ("t6.b");
  char *before = host_snapshot (&w);
  int l1 = ts_endpoint_listen (n1), l2 = ts_endpoint_listen (n2);
  /* Each container's request is accepted by its own socket: the socket names the task. */
  ck_assert (tcp_delivers (n1, l1, NET_TASK_ENDPOINT_ADDR, 80, NULL));
  ck_assert (!ts_pending (l2, 100));
  ck_assert (tcp_delivers (n2, l2, NET_TASK_ENDPOINT_ADDR, 80, NULL));
  ck_assert (!ts_pending (l1, 100));
  /* A neighbour on the bridge cannot open another container's endpoint by its address. */
  char a1[INET_ADDRSTRLEN];
  inet_ntop (AF_INET, &e1.addr, a1, sizeof a1);
  int none = sock_at (n2, SOCK_STREAM, NULL, 0);
  ck_assert (!tcp_delivers (n2, none, a1, 80, NULL));
  ck_assert (!ts_pending (l1, 100));
  close (none);
  /* Nothing on the host for it: no address, route or rule. */
  char *after = host_snapshot (&w);
  assert_same (before, after);
  close (l1);
  close (l2);
  close (n1);
  close (n2);
  TS_MUST (net_bridge_teardown (w.br, "t6.a", err));
  TS_MUST (net_bridge_teardown (w.br, "t6.b", err));
  free (before);
  free (after);
  net_bridge_endpoint_clear (&e1);
  net_bridge_endpoint_clear (&e2);
  world_free (&w);
}
END_TEST

START_TEST (test_container_reaches_another_containers_published_port_through_the_host)
{
  struct world w;
  world_build (&w);
  uint16_t port = (uint16_t)ts_free_port ();
  struct net_port_mapping p[] = { tcp (80, port), udp (53, port) };
  struct net_bridge_endpoint ea, eb;
  TS_MUST (net_bridge_setup (w.br, "t8.a", p, 2, &ea, err));
  TS_MUST (net_bridge_setup (w.br, "t8.b", NULL, 0, &eb, err));
  int na = ctr_ns ("t8.a"), nb = ctr_ns ("t8.b");
  int l = sock_at (na, SOCK_STREAM, NULL, 80), u = sock_at (na, SOCK_DGRAM, NULL, 53);
  char gw[INET_ADDRSTRLEN], a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], src[INET_ADDRSTRLEN] = "";
  inet_ntop (AF_INET, (struct in_addr[]){ net_bridge_gateway (w.br) }, gw, sizeof gw);
  inet_ntop (AF_INET, &ea.addr, a, sizeof a);
  inet_ntop (AF_INET, &eb.addr, b, sizeof b);
  /* With and without the bridge netfilter hooks (br_netfilter, on where Docker runs): with them
   * a frame from one container to another passes the IP hooks while being bridged. */
  for (int hooks = 1; hooks >= 0; hooks--)
    {
      ts_sh_ok ("nsenter --net=%s/host sysctl -qw net.bridge.bridge-nf-call-iptables=%d",
                env.run_dir, hooks);
      /* b to a's published port at the host's address: the reply must come back through the
       * host, so the request arrives from the bridge's address. */
      ck_assert (tcp_delivers (nb, l, "10.99.0.1", port, src));
      ck_assert_str_eq (src, gw);
      ck_assert (tcp_delivers (nb, l, gw, port, NULL));
      ck_assert (udp_delivers (nb, u, "10.99.0.1", port));
      /* a to its own published port: out of its bridge port and back in by the same one. */
      ck_assert_msg (tcp_delivers (na, l, "10.99.0.1", port, src), "hooks %d", hooks);
      ck_assert_str_eq (src, gw);
      /* Directly on the bridge nothing is translated: a sees b's own address. */
      ck_assert (tcp_delivers (nb, l, a, 80, src));
      ck_assert_str_eq (src, b);
      /* From another host the client's address is kept, as before. */
      ck_assert (tcp_delivers (w.client, l, "10.99.0.1", port, src));
      ck_assert_str_eq (src, "10.99.0.2");
    }
  close (l);
  close (u);
  close (na);
  close (nb);
  TS_MUST (net_bridge_teardown (w.br, "t8.a", err));
  TS_MUST (net_bridge_teardown (w.br, "t8.b", err));
  net_bridge_endpoint_clear (&ea);
  net_bridge_endpoint_clear (&eb);
  world_free (&w);
}
END_TEST

START_TEST (test_bad_keys_and_configuration_are_refused)
{
  struct world w;
  world_build (&w);
  berr *e = NULL;
  struct net_bridge_endpoint ep;
  ck_assert_int_lt (net_bridge_setup (w.br, "a/b", NULL, 0, &ep, &e), 0);
  ck_assert_int_eq (berr_errno (e), EINVAL);
  berr_free (&e);
  net_bridge *br = NULL;
  struct net_bridge_config cfg = config (&w);
  cfg.subnet = "172.30.0.1/24";
  ck_assert_int_lt (net_bridge_open (&cfg, &br, &e), 0);
  berr_free (&e);
  cfg = config (&w);
  cfg.name = "bvaaaaaaaaaaaaa";
  ck_assert_int_lt (net_bridge_open (&cfg, &br, &e), 0);
  berr_free (&e);
  cfg = config (&w);
  cfg.dynamic = (struct net_port_range){ 9000, 8000 };
  ck_assert_int_lt (net_bridge_open (&cfg, &br, &e), 0);
  berr_free (&e);
  /* Opening again (another agent start) is idempotent. */
  cfg = config (&w);
  TS_MUST (net_bridge_open (&cfg, &br, err));
  net_bridge_close (br);
  world_free (&w);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("bridge");
  TCase *tc = tcase_create ("bridge");
  tcase_set_timeout (tc, 60);
  tcase_add_unchecked_fixture (tc, netenv_suite_begin, netenv_suite_end);
  tcase_add_checked_fixture (tc, netenv_setup, netenv_teardown);
  tcase_add_test (tc,
                  test_static_and_dynamic_ports_reach_the_container_from_another_host_and_the_host);
  tcase_add_test (tc, test_egress_is_masqueraded_to_the_host_address);
  tcase_add_test (tc, test_static_port_conflict_fails_naming_the_port_and_leaves_nothing);
  tcase_add_test (tc, test_teardown_leaves_the_host_namespace_exactly_as_before);
  tcase_add_test (tc, test_a_pair_kept_alive_by_a_straggler_is_swept_by_reconcile);
  tcase_add_test (tc, test_reconcile_after_restart_removes_gone_endpoints_and_keeps_live_ones);
  tcase_add_test (tc, test_each_container_reaches_the_endpoint_socket_in_its_own_namespace);
  tcase_add_test (tc, test_container_reaches_another_containers_published_port_through_the_host);
  tcase_add_test (tc, test_bad_keys_and_configuration_are_refused);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
