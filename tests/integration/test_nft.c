/* net/nft.c against the real kernel (root): Berth's nftables table built inside a "host" network
 * namespace the test creates, with a container and a client behind it; the real host's ruleset
 * is snapshotted before and after every test and must not change. */
#include "net/net.h"
#include "tests/support/netenv.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

/* Scratch directories and the host-leak check (tests/support/netenv.h). run_dir and tmp alias
 * the current test's. */
static struct ts_netenv env = {
  .prefix = "berth-nfttest",
  .snapshot = "nft list table ip berth 2>/dev/null; echo ---; ip -o link show | cut -d: -f2",
};
static char *tmp, *run_dir;
static int orig_ns = -1;

static void make_base (void)
{
  ts_netenv_suite_begin (&env);
}

static void sweep_base (void)
{
  ts_netenv_suite_end (&env);
}

static void setup (void)
{
  ts_netenv_test_begin (&env);
  tmp = env.tmp;
  run_dir = env.run_dir;
  orig_ns = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge (orig_ns, 0);
}

static void teardown (void)
{
  /* A test may have entered a test namespace: come back before checking the host. */
  ck_assert_int_eq (setns (orig_ns, CLONE_NEWNET), 0);
  close (orig_ns);
  ts_netenv_test_end (&env);
}

/* ---- helpers ---- */

/* host: bridge bbr0 172.30.0.1/24 and vl 10.99.0.1/24 (+ 169.254.0.1/16); ctr: eth0 172.30.0.2
 * on the bridge, default route via the bridge; client: eth0 10.99.0.2/24 and 169.254.169.254/16
 * (standing in for the instance metadata service). The test process enters host. */
struct topo
{
  int host, ctr, client;
};

static void topo_build (struct topo *t)
{
  t->host = ts_netenv_ns (&env, "host");
  t->ctr = ts_netenv_ns (&env, "ctr");
  t->client = ts_netenv_ns (&env, "client");
  net_nl *h = ts_nl_open (t->host), *c = ts_nl_open (t->ctr), *l = ts_nl_open (t->client);
  TS_MUST (net_link_add_bridge (h, "bbr0", err));
  ts_addr_up (h, "bbr0", "172.30.0.1", 24);
  TS_MUST (net_link_add_veth (h, "vc", "eth0", t->ctr, err));
  TS_MUST (net_link_set_master (h, ts_must_index (h, "vc"), ts_must_index (h, "bbr0"), err));
  TS_MUST (net_link_set_up (h, ts_must_index (h, "vc"), true, err));
  ts_addr_up (c, "eth0", "172.30.0.2", 24);
  TS_MUST (net_route_add_default (c, ts_ip4 ("172.30.0.1"), 0, err));
  TS_MUST (net_link_add_veth (h, "vl", "eth0", t->client, err));
  ts_addr_up (h, "vl", "10.99.0.1", 24);
  TS_MUST (net_addr_add (h, ts_must_index (h, "vl"), ts_ip4 ("169.254.0.1"), 16, err));
  ts_addr_up (l, "eth0", "10.99.0.2", 24);
  TS_MUST (net_addr_add (l, ts_must_index (l, "eth0"), ts_ip4 ("169.254.169.254"), 16, err));
  net_nl_close (h);
  net_nl_close (c);
  net_nl_close (l);
  ck_assert_int_eq (setns (t->host, CLONE_NEWNET), 0);
  int fd = open ("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (write (fd, "1", 1), 1);
  close (fd);
}

static void topo_close (struct topo *t)
{
  close (t->host);
  close (t->ctr);
  close (t->client);
}

/* Enters a fresh namespace "host" (for tests that need no topology). */
static void enter_host_only (void)
{
  int fd = ts_netenv_ns (&env, "host");
  ck_assert_int_eq (setns (fd, CLONE_NEWNET), 0);
  close (fd);
}

/* `nft list table ip berth` as seen inside the namespace pinned as "host". */
static char *table_text_in_pin (void)
{
  char *out = NULL, *cmd = NULL;
  int status;
  ck_assert_int_ge (asprintf (&cmd, "nsenter --net=%s/host nft list table ip berth 2>&1", run_dir),
                    0);
  ck_assert_int_eq (ts_sh (cmd, &out, &status), 0);
  free (cmd);
  return out;
}

/* How many open descriptors lack FD_CLOEXEC. */
static int fds_without_cloexec (void)
{
  int n = 0;
  for (int fd = 3; fd < 1024; fd++)
    {
      int flags = fcntl (fd, F_GETFD);
      n += flags >= 0 && !(flags & FD_CLOEXEC);
    }
  return n;
}

/* A context acting in nsfd (-1: the namespace the test process is in). */
static net_nft *must_nft (int nsfd)
{
  net_nft *nft = NULL;
  TS_MUST (net_nft_open (nsfd, &nft, err));
  return nft;
}

static int sock_in (int nsfd, int type, uint16_t bind_port)
{
  berr *e = NULL;
  int s = nsfd >= 0 ? net_socket_in_netns (nsfd, AF_INET, type, &e)
                    : socket (AF_INET, type | SOCK_CLOEXEC, 0);
  if (s < 0)
    ck_abort_msg ("socket: %s", e ? e->msg : strerror (errno));
  struct timeval tv = { 1, 0 };
  setsockopt (s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt (s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons (bind_port) };
  if (bind_port)
    ck_assert_int_eq (bind (s, (struct sockaddr *)&a, sizeof a), 0);
  return s;
}

/* A TCP connection from ns_from (-1: the test's own, i.e. host) to dst:dport, accepted by the
 * listener lsock; true if it arrived and carried a byte. */
static bool tcp_delivers (int ns_from, int lsock, const char *dst, uint16_t dport)
{
  int c = sock_in (ns_from, SOCK_STREAM, 0);
  struct sockaddr_in to
      = { .sin_family = AF_INET, .sin_port = htons (dport), .sin_addr = ts_ip4 (dst) };
  bool ok = connect (c, (struct sockaddr *)&to, sizeof to) == 0 && write (c, "b", 1) == 1;
  if (ok)
    {
      int a = accept4 (lsock, NULL, NULL, SOCK_CLOEXEC);
      char ch = 0;
      ok = a >= 0 && read (a, &ch, 1) == 1 && ch == 'b';
      if (a >= 0)
        close (a);
    }
  close (c);
  return ok;
}

/* A UDP datagram from ns_from to dst:dport received on rsock; the source seen into src. */
static bool udp_delivers (int ns_from, int rsock, const char *dst, uint16_t dport, char *src)
{
  int s = sock_in (ns_from, SOCK_DGRAM, 0);
  struct sockaddr_in to
      = { .sin_family = AF_INET, .sin_port = htons (dport), .sin_addr = ts_ip4 (dst) };
  ssize_t n = sendto (s, "berth", 5, 0, (struct sockaddr *)&to, sizeof to);
  close (s);
  if (n != 5)
    return false;
  char buf[8];
  struct sockaddr_in peer;
  socklen_t plen = sizeof peer;
  n = recvfrom (rsock, buf, sizeof buf, 0, (struct sockaddr *)&peer, &plen);
  if (n != 5)
    return false;
  if (src)
    inet_ntop (AF_INET, &peer.sin_addr, src, INET_ADDRSTRLEN);
  return true;
}

static char *table_text (void)
{
  char *out = NULL;
  int status;
  ck_assert_int_eq (ts_sh ("nft list table ip berth 2>&1", &out, &status), 0);
  return out;
}

static struct net_nft_port port (const char *owner, int proto, uint16_t hp, const char *addr,
                                 uint16_t p)
{
  struct net_nft_port m = { .proto = proto, .host_port = hp, .addr = ts_ip4 (addr), .port = p };
  snprintf (m.owner, sizeof m.owner, "%s", owner);
  return m;
}

/* ---- tests ---- */

START_TEST (test_ensure_twice_is_idempotent_and_delete_removes_the_table)
{
  /* The test process stays in the real host's namespace: the context acts in "host" through
   * its fd alone, and the host snapshot in teardown proves nothing reached the real ruleset. */
  int host = ts_netenv_ns (&env, "host");
  int leaky = fds_without_cloexec ();
  net_nft *nft = must_nft (host);
  /* libnftables' own netlink socket is made close-on-exec too. */
  ck_assert_int_eq (fds_without_cloexec (), leaky);
  TS_MUST (net_nft_ensure (nft, err));
  char *once = table_text_in_pin ();
  TS_MUST (net_nft_ensure (nft, err));
  char *twice = table_text_in_pin ();
  ck_assert_str_eq (once, twice);
  const char *want[] = { "chain publish",
                         "hook prerouting priority dstnat",
                         "hook output priority -100",
                         "hook postrouting priority srcnat",
                         "hook forward priority filter",
                         "hook prerouting priority mangle",
                         "fib daddr type local jump publish" };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    ck_assert_msg (strstr (once, want[i]) != NULL, "missing `%s` in\n%s", want[i], once);
  struct net_nft_listing l;
  TS_MUST (net_nft_list (nft, &l, err));
  ck_assert (l.exists);
  ck_assert_uint_eq (l.n_ports + l.n_masqs + l.n_blocks, 0);
  TS_MUST (net_nft_delete_table (nft, err));
  TS_MUST (net_nft_delete_table (nft, err));
  TS_MUST (net_nft_list (nft, &l, err));
  ck_assert (!l.exists);
  char *rs = NULL, *cmd = NULL;
  int status;
  ck_assert_int_ge (asprintf (&cmd, "nsenter --net=%s/host nft list ruleset", run_dir), 0);
  ck_assert_int_eq (ts_sh (cmd, &rs, &status), 0);
  ck_assert_str_eq (rs ? rs : "", "");
  free (rs);
  free (cmd);
  close (host);
  free (once);
  free (twice);
  net_nft_close (nft);
}
END_TEST

START_TEST (test_port_mapping_delivers_tcp_and_udp_to_the_container_through_dnat)
{
  struct topo t;
  topo_build (&t);
  net_nft *nft = must_nft (-1);
  TS_MUST (net_nft_ensure (nft, err));
  TS_MUST (net_nft_masquerade_add (nft, "172.30.0.0/24", "bbr0", err));
  int ltcp = sock_in (t.ctr, SOCK_STREAM, 80), ludp = sock_in (t.ctr, SOCK_DGRAM, 80);
  ck_assert_int_eq (listen (ltcp, 8), 0);
  /* Before publishing nothing answers on the host's port. */
  ck_assert (!tcp_delivers (t.client, ltcp, "10.99.0.1", 8080));
  struct net_nft_port mt = port ("task1", IPPROTO_TCP, 8080, "172.30.0.2", 80);
  struct net_nft_port mu = port ("task1", IPPROTO_UDP, 8080, "172.30.0.2", 80);
  TS_MUST (net_nft_port_add (nft, &mt, NULL, err));
  TS_MUST (net_nft_port_add (nft, &mu, NULL, err));
  ck_assert (tcp_delivers (t.client, ltcp, "10.99.0.1", 8080));
  char src[INET_ADDRSTRLEN] = "";
  ck_assert (udp_delivers (t.client, ludp, "10.99.0.1", 8080, src));
  ck_assert_str_eq (src, "10.99.0.2");
  /* From the host itself (output hook), to one of its own addresses. */
  ck_assert (tcp_delivers (-1, ltcp, "10.99.0.1", 8080));
  ck_assert (tcp_delivers (-1, ltcp, "172.30.0.1", 8080));
  berr *e = NULL;
  ck_assert_int_eq (net_nft_ports_remove (nft, "task1", &e), 2);
  ck_assert (!tcp_delivers (t.client, ltcp, "10.99.0.1", 8080));
  ck_assert (!udp_delivers (t.client, ludp, "10.99.0.1", 8080, NULL));
  close (ltcp);
  close (ludp);
  net_nft_close (nft);
  topo_close (&t);
}
END_TEST

START_TEST (test_remove_by_owner_is_exact_and_teardown_restores_the_empty_table)
{
  enter_host_only ();
  net_nft *nft = must_nft (-1);
  TS_MUST (net_nft_ensure (nft, err));
  char *empty = table_text ();
  struct net_nft_port a1 = port ("a", IPPROTO_TCP, 8080, "172.30.0.2", 80);
  struct net_nft_port a2 = port ("a", IPPROTO_UDP, 5353, "172.30.0.2", 53);
  struct net_nft_port b1 = port ("b", IPPROTO_TCP, 8081, "172.30.0.3", 80);
  TS_MUST (net_nft_port_add (nft, &a1, NULL, err));
  TS_MUST (net_nft_port_add (nft, &a2, NULL, err));
  TS_MUST (net_nft_port_add (nft, &b1, NULL, err));
  TS_MUST (net_nft_port_add (nft, &b1, NULL, err)); /* again: no second rule */
  TS_MUST (net_nft_masquerade_add (nft, "172.30.0.0/24", "bbr0", err));
  TS_MUST (net_nft_masquerade_add (nft, "172.30.0.0/24", "bbr0", err));
  TS_MUST (net_nft_block_add (nft, "172.30.0.0/24", ts_ip4 ("169.254.169.254"), err));
  TS_MUST (net_nft_block_add (nft, "172.30.0.0/24", ts_ip4 ("169.254.169.254"), err));
  struct net_nft_listing l;
  TS_MUST (net_nft_list (nft, &l, err));
  ck_assert_uint_eq (l.n_ports, 3);
  ck_assert_uint_eq (l.n_masqs, 1);
  ck_assert_str_eq (l.masqs[0].bridge, "bbr0");
  ck_assert_uint_eq (l.n_blocks, 1);
  ck_assert_str_eq (l.blocks[0].subnet, "172.30.0.0/24");
  net_nft_listing_clear (&l);
  TS_MUST (net_nft_ports_remove (nft, "a", err));
  TS_MUST (net_nft_list (nft, &l, err));
  ck_assert_uint_eq (l.n_ports, 1);
  ck_assert_str_eq (l.ports[0].owner, "b");
  ck_assert_uint_eq (l.ports[0].host_port, 8081);
  ck_assert_uint_eq (l.ports[0].port, 80);
  ck_assert_uint_eq (l.ports[0].addr.s_addr, ts_ip4 ("172.30.0.3").s_addr);
  net_nft_listing_clear (&l);
  berr *e = NULL;
  ck_assert_int_eq (net_nft_ports_remove (nft, "a", &e), 0);
  ck_assert_int_eq (net_nft_ports_remove (nft, "b", &e), 1);
  TS_MUST (net_nft_masquerade_remove (nft, "172.30.0.0/24", "bbr0", err));
  TS_MUST (net_nft_masquerade_remove (nft, "172.30.0.0/24", "bbr0", err));
  TS_MUST (net_nft_block_remove (nft, "172.30.0.0/24", ts_ip4 ("169.254.169.254"), err));
  char *after = table_text ();
  ck_assert_str_eq (empty, after);
  /* Bad input is refused before anything reaches nft. */
  ck_assert_int_lt (net_nft_masquerade_add (nft, "172.30.0.1/24", "bbr0", &e), 0);
  berr_free (&e);
  ck_assert_int_lt (net_nft_masquerade_add (nft, "172.30.0.0/24", "b\"r", &e), 0);
  berr_free (&e);
  struct net_nft_port bad = port ("x y", IPPROTO_TCP, 1, "172.30.0.2", 80);
  ck_assert_int_lt (net_nft_port_add (nft, &bad, NULL, &e), 0);
  ck_assert_int_eq (berr_errno (e), EINVAL);
  berr_free (&e);
  free (empty);
  free (after);
  TS_MUST (net_nft_delete_table (nft, err));
  net_nft_close (nft);
}
END_TEST

START_TEST (test_dynamic_ports_come_from_the_range_skip_bound_ones_and_never_collide)
{
  /* Through the namespace's fd, not by entering it: the trial binds must happen there too. */
  int host = ts_netenv_ns (&env, "host");
  net_nft *nft = must_nft (host);
  struct net_port_range r = { 40000, 40004 };
  int taken = sock_in (host, SOCK_STREAM, 40001);
  ck_assert_int_eq (listen (taken, 1), 0);
  uint16_t got[4];
  for (int i = 0; i < 4; i++)
    {
      char owner[16];
      snprintf (owner, sizeof owner, "t%d", i);
      struct net_nft_port m = port (owner, IPPROTO_TCP, 0, "172.30.0.2", 80);
      TS_MUST (net_nft_port_add (nft, &m, &r, err));
      ck_assert_uint_ge (m.host_port, r.lo);
      ck_assert_uint_le (m.host_port, r.hi);
      ck_assert_uint_ne (m.host_port, 40001);
      for (int j = 0; j < i; j++)
        ck_assert_uint_ne (got[j], m.host_port);
      got[i] = m.host_port;
      /* A retry by the same owner gets the same port back, not a new one. */
      struct net_nft_port again = port (owner, IPPROTO_TCP, 0, "172.30.0.2", 80);
      TS_MUST (net_nft_port_add (nft, &again, &r, err));
      ck_assert_uint_eq (again.host_port, m.host_port);
    }
  berr *e = NULL;
  struct net_nft_port full = port ("t9", IPPROTO_TCP, 0, "172.30.0.2", 80);
  ck_assert_int_lt (net_nft_port_add (nft, &full, &r, &e), 0);
  ck_assert_int_eq (berr_errno (e), ENOSPC);
  ck_assert_msg (strstr (e->msg, "no free tcp host port in 40000-40004") != NULL, "%s", e->msg);
  berr_free (&e);
  /* UDP ports are a separate space. */
  struct net_nft_port u = port ("t9", IPPROTO_UDP, 0, "172.30.0.2", 53);
  TS_MUST (net_nft_port_add (nft, &u, &r, err));
  ck_assert_uint_eq (u.host_port, 40000);
  close (taken);
  TS_MUST (net_nft_delete_table (nft, err));
  net_nft_close (nft);
  close (host);
}
END_TEST

START_TEST (test_static_port_already_taken_fails_clearly)
{
  enter_host_only ();
  net_nft *nft = must_nft (-1);
  struct net_nft_port a = port ("taskA", IPPROTO_TCP, 8080, "172.30.0.2", 80);
  TS_MUST (net_nft_port_add (nft, &a, NULL, err));
  TS_MUST (net_nft_port_add (nft, &a, NULL, err));
  berr *e = NULL;
  struct net_nft_port b = port ("taskB", IPPROTO_TCP, 8080, "172.30.0.3", 80);
  ck_assert_int_lt (net_nft_port_add (nft, &b, NULL, &e), 0);
  ck_assert_int_eq (berr_errno (e), EADDRINUSE);
  ck_assert_str_eq (e->msg, "host port tcp/8080 for taskB is already published for taskA");
  berr_free (&e);
  int s = sock_in (-1, SOCK_DGRAM, 9090);
  struct net_nft_port c = port ("taskB", IPPROTO_UDP, 9090, "172.30.0.3", 53);
  ck_assert_int_lt (net_nft_port_add (nft, &c, NULL, &e), 0);
  ck_assert_int_eq (berr_errno (e), EADDRINUSE);
  ck_assert_str_eq (e->msg,
                    "host port udp/9090 for taskB is in use: a socket on the host is bound to it");
  berr_free (&e);
  close (s);
  TS_MUST (net_nft_port_add (nft, &c, NULL, err));
  struct net_nft_listing l;
  TS_MUST (net_nft_list (nft, &l, err));
  ck_assert_uint_eq (l.n_ports, 2);
  net_nft_listing_clear (&l);
  TS_MUST (net_nft_delete_table (nft, err));
  net_nft_close (nft);
}
END_TEST

START_TEST (
    test_blocked_destination_is_unreachable_from_the_bridge_subnet_and_egress_is_masqueraded)
{
  struct topo t;
  topo_build (&t);
  net_nft *nft = must_nft (-1);
  TS_MUST (net_nft_masquerade_add (nft, "172.30.0.0/24", "bbr0", err));
  int imds = sock_in (t.client, SOCK_DGRAM, 9555);
  char src[INET_ADDRSTRLEN] = "";
  /* Reachable before the block, so the test can fail; egress leaves as the host's address. */
  ck_assert (udp_delivers (t.ctr, imds, "169.254.169.254", 9555, src));
  ck_assert_str_eq (src, "169.254.0.1");
  ck_assert (udp_delivers (t.ctr, imds, "10.99.0.2", 9555, src));
  ck_assert_str_eq (src, "10.99.0.1");
  TS_MUST (net_nft_block_add (nft, "172.30.0.0/24", ts_ip4 ("169.254.169.254"), err));
  ck_assert (!udp_delivers (t.ctr, imds, "169.254.169.254", 9555, NULL));
  int l = sock_in (t.client, SOCK_STREAM, 80);
  ck_assert_int_eq (listen (l, 1), 0);
  ck_assert (!tcp_delivers (t.ctr, l, "169.254.169.254", 80));
  /* Everything else still flows. */
  ck_assert (udp_delivers (t.ctr, imds, "10.99.0.2", 9555, src));
  ck_assert (tcp_delivers (t.ctr, l, "10.99.0.2", 80));
  TS_MUST (net_nft_block_remove (nft, "172.30.0.0/24", ts_ip4 ("169.254.169.254"), err));
  ck_assert (udp_delivers (t.ctr, imds, "169.254.169.254", 9555, NULL));
  close (l);
  close (imds);
  net_nft_close (nft);
  topo_close (&t);
}
END_TEST

START_TEST (test_port_ranges_default_outside_the_kernels_ephemeral_range)
{
  struct net_port_range k, d, p;
  TS_MUST (net_kernel_port_range (&k, err));
  TS_MUST (net_port_range_default (&k, &d, err));
  ck_assert (d.hi < k.lo || d.lo > k.hi);
  ck_assert_uint_ge (d.lo, 1024);
  struct net_port_range linux_default = { 32768, 60999 };
  TS_MUST (net_port_range_default (&linux_default, &d, err));
  ck_assert_uint_eq (d.lo, 61000);
  ck_assert_uint_eq (d.hi, 65535);
  struct net_port_range high = { 20000, 65535 };
  TS_MUST (net_port_range_default (&high, &d, err));
  ck_assert_uint_eq (d.lo, 1024);
  ck_assert_uint_eq (d.hi, 19999);
  berr *e = NULL;
  struct net_port_range all = { 1024, 65535 };
  ck_assert_int_lt (net_port_range_default (&all, &d, &e), 0);
  berr_free (&e);
  TS_MUST (net_port_range_parse ("49153-65535", &p, err));
  ck_assert_uint_eq (p.lo, 49153);
  ck_assert_uint_eq (p.hi, 65535);
  const char *bad[] = { "", "1", "2-1", "0-5", "1-65536", "1-2-3", "a-b", "01-5", " 1-5" };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    {
      ck_assert_msg (net_port_range_parse (bad[i], &p, &e) < 0, "accepted `%s`", bad[i]);
      berr_free (&e);
    }
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("nft");
  TCase *tc = tcase_create ("nft");
  tcase_set_timeout (tc, 60);
  tcase_add_unchecked_fixture (tc, make_base, sweep_base);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_ensure_twice_is_idempotent_and_delete_removes_the_table);
  tcase_add_test (tc, test_port_mapping_delivers_tcp_and_udp_to_the_container_through_dnat);
  tcase_add_test (tc, test_remove_by_owner_is_exact_and_teardown_restores_the_empty_table);
  tcase_add_test (tc, test_dynamic_ports_come_from_the_range_skip_bound_ones_and_never_collide);
  tcase_add_test (tc, test_static_port_already_taken_fails_clearly);
  tcase_add_test (
      tc, test_blocked_destination_is_unreachable_from_the_bridge_subnet_and_egress_is_masqueraded);
  tcase_add_test (tc, test_port_ranges_default_outside_the_kernels_ephemeral_range);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
