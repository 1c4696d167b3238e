/* net/ against the real kernel (root): veth, bridge and macvlan links between network namespaces
 * the tests create, addresses, routes, pinned namespaces and the none mode. Data flows only
 * between those namespaces; every test checks the host's links, netns and mounts are unchanged. */
#include "net/net.h"
#include "tests/support/netenv.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Scratch directories and the host-leak check (tests/support/netenv.h). run_dir and tmp alias
 * the current test's. */
static struct ts_netenv env = {
  .prefix = "berth-nettest",
  .snapshot = "ip -o link show | cut -d: -f2",
};
static char *tmp, *run_dir;

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
}

static void teardown (void)
{
  ts_netenv_test_end (&env);
}

/* ---- helpers ---- */

/* The interface flags or MTU of name, asked through a socket inside nsfd. */
static int if_query (int nsfd, const char *name, unsigned long req)
{
  berr *e = NULL;
  int s = net_socket_in_netns (nsfd, AF_INET, SOCK_DGRAM, &e);
  if (s < 0)
    ck_abort_msg ("socket: %s", e->msg);
  struct ifreq ifr = { 0 };
  snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
  ck_assert_int_eq (ioctl (s, req, &ifr), 0);
  close (s);
  return req == SIOCGIFMTU ? ifr.ifr_mtu : ifr.ifr_flags;
}

/* Sends one UDP datagram from src (in ns_from, by a forked child that enters it) to dst (in
 * ns_to, received here through a socket made inside it). True if it arrived from src. */
static bool udp_delivers (int ns_from, const char *src, int ns_to, const char *dst, int wait_ms)
{
  berr *e = NULL;
  int rs = net_socket_in_netns (ns_to, AF_INET, SOCK_DGRAM, &e);
  if (rs < 0)
    ck_abort_msg ("socket: %s", e->msg);
  struct sockaddr_in to
      = { .sin_family = AF_INET, .sin_port = htons (9555), .sin_addr = ts_ip4 (dst) };
  ck_assert_int_eq (bind (rs, (struct sockaddr *)&to, sizeof to), 0);
  struct timeval tv = { wait_ms / 1000, (wait_ms % 1000) * 1000 };
  setsockopt (rs, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  pid_t pid = fork ();
  ck_assert_int_ge (pid, 0);
  if (pid == 0)
    {
      struct sockaddr_in from = { .sin_family = AF_INET, .sin_addr = ts_ip4 (src) };
      int s;
      if (setns (ns_from, CLONE_NEWNET) < 0 || (s = socket (AF_INET, SOCK_DGRAM, 0)) < 0
          || bind (s, (struct sockaddr *)&from, sizeof from) < 0
          || sendto (s, "berth", 5, 0, (struct sockaddr *)&to, sizeof to) != 5)
        _exit (1);
      _exit (0);
    }
  int status;
  ck_assert_int_eq (waitpid (pid, &status, 0), pid);
  ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0, "sender failed in its netns");
  char buf[16];
  struct sockaddr_in peer;
  socklen_t plen = sizeof peer;
  ssize_t n = recvfrom (rs, buf, sizeof buf, 0, (struct sockaddr *)&peer, &plen);
  close (rs);
  if (n < 0)
    return false;
  char got[INET_ADDRSTRLEN];
  inet_ntop (AF_INET, &peer.sin_addr, got, sizeof got);
  return n == 5 && memcmp (buf, "berth", 5) == 0 && strcmp (got, src) == 0;
}

/* A veth pair "va" (in a, 10.200.0.1) and "vb" (in b, 10.200.0.2), both up. */
static void veth_between (int a, int b)
{
  net_nl *na = ts_nl_open (a), *nb = ts_nl_open (b);
  TS_MUST (net_link_add_veth (na, "va", "vb", b, err));
  ts_addr_up (na, "va", "10.200.0.1", 24);
  ts_addr_up (nb, "vb", "10.200.0.2", 24);
  net_nl_close (na);
  net_nl_close (nb);
}

/* ---- tests ---- */

START_TEST (test_veth_pair_between_two_namespaces_carries_udp)
{
  int a = ts_netenv_ns (&env, "a"), b = ts_netenv_ns (&env, "b");
  veth_between (a, b);
  ck_assert (udp_delivers (a, "10.200.0.1", b, "10.200.0.2", 2000));
  ck_assert (udp_delivers (b, "10.200.0.2", a, "10.200.0.1", 2000));

  net_nl *na = ts_nl_open (a);
  int va = ts_must_index (na, "va");
  berr *e = NULL;
  ck_assert_int_lt (net_addr_add (na, va, ts_ip4 ("10.200.0.1"), 24, &e), 0);
  ck_assert_int_eq (berr_errno (e), EEXIST);
  berr_free (&e);
  TS_MUST (net_addr_del (na, va, ts_ip4 ("10.200.0.1"), 24, err));
  ck_assert_int_lt (net_addr_del (na, va, ts_ip4 ("10.200.0.1"), 24, &e), 0);
  ck_assert_int_eq (berr_errno (e), EADDRNOTAVAIL);
  berr_free (&e);
  TS_MUST (net_link_set_mtu (na, va, 1280, err));
  ck_assert_int_eq (if_query (a, "va", SIOCGIFMTU), 1280);
  TS_MUST (net_link_set_up (na, va, false, err));
  ck_assert_int_eq (if_query (a, "va", SIOCGIFFLAGS) & IFF_UP, 0);
  /* Deleting one end removes the pair: the peer in b is gone too. */
  TS_MUST (net_link_delete (na, va, err));
  net_nl *nb = ts_nl_open (b);
  ck_assert_int_lt (net_link_index (nb, "vb", &e), 0);
  ck_assert_int_eq (berr_errno (e), ENODEV);
  berr_free (&e);
  net_nl_close (na);
  net_nl_close (nb);
  close (a);
  close (b);
}
END_TEST

START_TEST (test_bridge_with_two_veths_forwards_between_namespaces)
{
  int h = ts_netenv_ns (&env, "vpc"), a = ts_netenv_ns (&env, "a"), b = ts_netenv_ns (&env, "b");
  net_nl *nh = ts_nl_open (h), *na = ts_nl_open (a), *nb = ts_nl_open (b);
  TS_MUST (net_link_add_bridge (nh, "br-test", err));
  int br = ts_must_index (nh, "br-test");
  TS_MUST (net_link_set_up (nh, br, true, err));
  TS_MUST (net_link_add_veth (nh, "h-a", "eth0", a, err));
  TS_MUST (net_link_add_veth (nh, "h-b", "eth0", b, err));
  int ha = ts_must_index (nh, "h-a"), hb = ts_must_index (nh, "h-b");
  TS_MUST (net_link_set_master (nh, ha, br, err));
  TS_MUST (net_link_set_master (nh, hb, br, err));
  TS_MUST (net_link_set_up (nh, ha, true, err));
  TS_MUST (net_link_set_up (nh, hb, true, err));
  ts_addr_up (na, "eth0", "10.201.0.2", 24);
  ts_addr_up (nb, "eth0", "10.201.0.3", 24);
  ck_assert (udp_delivers (a, "10.201.0.2", b, "10.201.0.3", 2000));
  ck_assert (udp_delivers (b, "10.201.0.3", a, "10.201.0.2", 2000));
  /* Released from the bridge, h-b no longer hears a: the bridge did the forwarding. */
  TS_MUST (net_link_set_master (nh, hb, 0, err));
  ck_assert (!udp_delivers (a, "10.201.0.2", b, "10.201.0.3", 300));
  net_nl_close (nh);
  net_nl_close (na);
  net_nl_close (nb);
  close (h);
  close (a);
  close (b);
}
END_TEST

START_TEST (test_macvlan_with_chosen_mac_is_found_by_mac_moved_and_renamed_eth0)
{
  int host = ts_netenv_ns (&env, "host"), task = ts_netenv_ns (&env, "task");
  net_nl *nh = ts_nl_open (host), *nt = ts_nl_open (task);
  uint8_t mac[6], got[6];
  TS_MUST (net_parse_mac ("02:42:AC:1f:00:99", mac, err));
  /* The parent NIC: one end of a veth pair (this kernel has no dummy links). */
  TS_MUST (net_link_add_veth (nh, "parent0", "parent0-peer", -1, err));
  int parent = ts_must_index (nh, "parent0");
  TS_MUST (net_link_set_up (nh, parent, true, err));
  TS_MUST (net_link_add_macvlan (nh, "mv0", parent, mac, err));
  char name[IFNAMSIZ];
  int mv = -1;
  TS_MUST (mv = net_link_find_by_mac (nh, mac, name, err));
  ck_assert_int_eq (mv, ts_must_index (nh, "mv0"));
  ck_assert_str_eq (name, "mv0");
  TS_MUST (net_link_get_mac (nh, mv, got, err));
  ck_assert_mem_eq (got, mac, 6);

  TS_MUST (net_link_move (nh, mv, task, "eth0", err));
  berr *e = NULL;
  ck_assert_int_lt (net_link_find_by_mac (nh, mac, name, &e), 0);
  ck_assert_int_eq (berr_errno (e), ENODEV);
  berr_free (&e);
  int eth0 = -1;
  TS_MUST (eth0 = net_link_find_by_mac (nt, mac, name, err));
  ck_assert_str_eq (name, "eth0");
  TS_MUST (net_link_rename (nt, eth0, "eth9", err));
  ck_assert_int_eq (ts_must_index (nt, "eth9"), eth0);
  TS_MUST (net_link_rename (nt, eth0, "eth0", err));
  ts_addr_up (nt, "eth0", "10.203.0.5", 24);
  char **names = NULL;
  TS_MUST (net_link_list (nt, &names, err));
  ck_assert_str_eq (names[0], "lo");
  ck_assert_str_eq (names[1], "eth0");
  ck_assert_ptr_null (names[2]);
  for (char **n = names; *n; n++)
    free (*n);
  free (names);
  /* On stop the macvlan is removed. */
  TS_MUST (net_link_delete (nt, eth0, err));
  ck_assert_int_lt (net_link_find_by_mac (nt, mac, NULL, &e), 0);
  berr_free (&e);
  net_nl_close (nh);
  net_nl_close (nt);
  close (host);
  close (task);
}
END_TEST

START_TEST (test_find_by_mac_means_the_port_not_the_bridge_that_copies_its_mac)
{
  int ns = ts_netenv_ns (&env, "host");
  net_nl *nl = ts_nl_open (ns);
  /* The bridge first, so a dump lists it before the port whose MAC it takes. */
  TS_MUST (net_link_add_bridge (nl, "br0", err));
  TS_MUST (net_link_add_veth (nl, "eni0", "eni0-peer", -1, err));
  int br = ts_must_index (nl, "br0"), eni = ts_must_index (nl, "eni0");
  TS_MUST (net_link_set_master (nl, eni, br, err));
  uint8_t mac[6], brmac[6];
  TS_MUST (net_link_get_mac (nl, eni, mac, err));
  TS_MUST (net_link_get_mac (nl, br, brmac, err));
  ck_assert_mem_eq (mac, brmac, 6);
  char name[IFNAMSIZ];
  int found = -1;
  TS_MUST (found = net_link_find_by_mac (nl, mac, name, err));
  ck_assert_int_eq (found, eni);
  ck_assert_str_eq (name, "eni0");
  net_nl_close (nl);
  close (ns);
}
END_TEST

/* A UDP connect does the route lookup a real client would; errno 0 means it would send. */
static int connect_errno (int nsfd, const char *dst, int type)
{
  berr *e = NULL;
  int s = net_socket_in_netns (nsfd, AF_INET, type | SOCK_NONBLOCK, &e);
  if (s < 0)
    ck_abort_msg ("socket: %s", e->msg);
  struct sockaddr_in to
      = { .sin_family = AF_INET, .sin_port = htons (80), .sin_addr = ts_ip4 (dst) };
  int r = connect (s, (struct sockaddr *)&to, sizeof to);
  int code = r < 0 ? errno : 0;
  close (s);
  return code == EINPROGRESS ? 0 : code;
}

START_TEST (test_blackhole_route_makes_instance_metadata_unreachable)
{
  int task = ts_netenv_ns (&env, "task"), gw = ts_netenv_ns (&env, "gw");
  veth_between (task, gw);
  net_nl *nl = ts_nl_open (task);
  struct in_addr imds = ts_ip4 ("169.254.169.254");
  ck_assert_int_eq (connect_errno (task, "169.254.169.254", SOCK_DGRAM), ENETUNREACH);
  TS_MUST (net_route_add_default (nl, ts_ip4 ("10.200.0.2"), ts_must_index (nl, "va"), err));
  ck_assert_int_eq (connect_errno (task, "169.254.169.254", SOCK_DGRAM), 0);

  TS_MUST (net_route_add_blackhole (nl, imds, 32, err));
  ck_assert_int_eq (connect_errno (task, "169.254.169.254", SOCK_DGRAM), EINVAL);
  ck_assert_int_eq (connect_errno (task, "169.254.169.254", SOCK_STREAM), EINVAL);
  /* Only that address: the rest still routes via the gateway. */
  ck_assert_int_eq (connect_errno (task, "169.254.169.253", SOCK_DGRAM), 0);
  berr *e = NULL;
  ck_assert_int_lt (net_route_add_blackhole (nl, imds, 32, &e), 0);
  ck_assert_int_eq (berr_errno (e), EEXIST);
  berr_free (&e);

  TS_MUST (net_route_del_blackhole (nl, imds, 32, err));
  ck_assert_int_eq (connect_errno (task, "169.254.169.254", SOCK_DGRAM), 0);
  TS_MUST (net_route_del_default (nl, ts_ip4 ("10.200.0.2"), 0, err));
  ck_assert_int_eq (connect_errno (task, "169.254.169.254", SOCK_DGRAM), ENETUNREACH);
  net_nl_close (nl);
  close (task);
  close (gw);
}
END_TEST

START_TEST (test_pinned_netns_survives_its_creator_and_delete_removes_it)
{
  int pfd[2];
  ck_assert_int_eq (pipe (pfd), 0);
  pid_t pid = fork ();
  ck_assert_int_ge (pid, 0);
  if (pid == 0)
    {
      /* The creator reports the namespace's inode and exits. */
      berr *e = NULL;
      struct stat st;
      int fd;
      if (net_netns_create (run_dir, "pinned", &e) < 0
          || (fd = net_netns_open (run_dir, "pinned", &e)) < 0 || fstat (fd, &st) < 0)
        _exit (1);
      if (write (pfd[1], &st.st_ino, sizeof st.st_ino) != sizeof st.st_ino)
        _exit (1);
      _exit (0);
    }
  close (pfd[1]);
  ino_t ino = 0;
  ck_assert_int_eq (read (pfd[0], &ino, sizeof ino), sizeof ino);
  close (pfd[0]);
  int status;
  ck_assert_int_eq (waitpid (pid, &status, 0), pid);
  ck_assert_int_eq (status, 0);

  berr *e = NULL;
  char **names = NULL;
  TS_MUST (net_netns_list (run_dir, &names, err));
  ck_assert_str_eq (names[0], "pinned");
  ck_assert_ptr_null (names[1]);
  free (names[0]);
  free (names);
  int fd = -1;
  TS_MUST (fd = net_netns_open (run_dir, "pinned", err));
  struct stat st;
  ck_assert_int_eq (fstat (fd, &st), 0);
  ck_assert_uint_eq (st.st_ino, ino);
  ck_assert_int_ne (if_query (fd, "lo", SIOCGIFFLAGS) & IFF_UP, 0);
  close (fd);

  ck_assert_int_lt (net_netns_create (run_dir, "pinned", &e), 0);
  ck_assert_int_eq (berr_errno (e), EEXIST);
  berr_free (&e);
  ck_assert_int_lt (net_netns_create (run_dir, "../escape", &e), 0);
  ck_assert_int_eq (berr_errno (e), EINVAL);
  berr_free (&e);

  TS_MUST (net_netns_delete (run_dir, "pinned", err));
  ck_assert_int_lt (net_netns_open (run_dir, "pinned", &e), 0);
  ck_assert_int_eq (berr_errno (e), ENOENT);
  berr_free (&e);
  TS_MUST (net_netns_delete (run_dir, "pinned", err));
  TS_MUST (net_netns_list (run_dir, &names, err));
  ck_assert_ptr_null (names[0]);
  free (names);
}
END_TEST

static bool mountinfo_has (const char *path)
{
  char *mi = ts_read_file ("/proc/self/mountinfo");
  ck_assert_ptr_nonnull (mi);
  char needle[4200];
  snprintf (needle, sizeof needle, " %s ", path);
  bool has = strstr (mi, needle) != NULL;
  free (mi);
  return has;
}

START_TEST (test_delete_unpins_copies_in_mount_namespaces_made_while_pinned)
{
  TS_MUST (net_netns_create (run_dir, "copied", err));
  char *path = net_netns_path (run_dir, "copied");
  int go[2], ready[2];
  ck_assert_int_eq (pipe (go), 0);
  ck_assert_int_eq (pipe (ready), 0);
  pid_t pid = fork ();
  ck_assert_int_ge (pid, 0);
  if (pid == 0)
    {
      /* Like a container being created: a new mount namespace copied from the host's. */
      char c = 0;
      if (unshare (CLONE_NEWNS) < 0 || !mountinfo_has (path) || write (ready[1], &c, 1) != 1
          || read (go[0], &c, 1) != 1)
        _exit (2);
      _exit (mountinfo_has (path) ? 1 : 0);
    }
  char c = 0;
  ck_assert_int_eq (read (ready[0], &c, 1), 1);
  TS_MUST (net_netns_delete (run_dir, "copied", err));
  ck_assert_int_eq (write (go[1], &c, 1), 1);
  int status;
  ck_assert_int_eq (waitpid (pid, &status, 0), pid);
  ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 0,
                 "the copy of the pin outlived delete (child status %d)", status);
  free (path);
}
END_TEST

START_TEST (test_stale_pin_files_are_not_listed_and_are_taken_over)
{
  TS_MUST (net_netns_create (run_dir, "live", err));
  /* A pin file with nothing mounted on it, as a crash in the middle of create leaves. */
  char *stale = net_netns_path (run_dir, "stale");
  int fd = open (stale, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
  ck_assert_int_ge (fd, 0);
  close (fd);
  char **names = NULL;
  TS_MUST (net_netns_list (run_dir, &names, err));
  ck_assert_str_eq (names[0], "live");
  ck_assert_ptr_null (names[1]);
  free (names[0]);
  free (names);
  berr *e = NULL;
  ck_assert_int_lt (net_netns_open (run_dir, "stale", &e), 0);
  ck_assert_int_eq (berr_errno (e), ENOENT);
  ck_assert_ptr_nonnull (strstr (e->msg, "not pinned"));
  berr_free (&e);
  TS_MUST (net_netns_create (run_dir, "stale", err));
  TS_MUST (fd = net_netns_open (run_dir, "stale", err));
  close (fd);
  TS_MUST (net_netns_delete (run_dir, "stale", err));
  TS_MUST (net_netns_delete (run_dir, "live", err));
  free (stale);
}
END_TEST

START_TEST (test_none_mode_yields_only_lo_and_setup_teardown_are_idempotent)
{
  char *path = NULL, *again = NULL;
  TS_MUST (net_task_setup (run_dir, NET_MODE_NONE, "task-1234", &path, err));
  ck_assert_ptr_nonnull (path);
  TS_MUST (net_task_setup (run_dir, NET_MODE_NONE, "task-1234", &again, err));
  ck_assert_str_eq (path, again);

  int fd = open (path, O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge (fd, 0);
  net_nl *nl = ts_nl_open (fd);
  char **names = NULL;
  TS_MUST (net_link_list (nl, &names, err));
  ck_assert_str_eq (names[0], "lo");
  ck_assert_ptr_null (names[1]);
  free (names[0]);
  free (names);
  ck_assert_int_ne (if_query (fd, "lo", SIOCGIFFLAGS) & IFF_UP, 0);
  net_nl_close (nl);
  close (fd);

  TS_MUST (net_task_teardown (run_dir, NET_MODE_NONE, "task-1234", err));
  ck_assert_int_lt (access (path, F_OK), 0);
  TS_MUST (net_task_teardown (run_dir, NET_MODE_NONE, "task-1234", err));
  free (path);
  free (again);
}
END_TEST

START_TEST (test_mode_parse_knows_all_four_modes_and_names_an_unknown_one)
{
  char *path = (char *)"unset";
  TS_MUST (net_task_setup (run_dir, NET_MODE_HOST, "task-1", &path, err));
  ck_assert_ptr_null (path);
  TS_MUST (net_task_teardown (run_dir, NET_MODE_HOST, "task-1", err));
  enum net_mode m;
  TS_MUST (net_mode_parse ("none", &m, err));
  ck_assert_int_eq (m, NET_MODE_NONE);
  TS_MUST (net_mode_parse ("host", &m, err));
  ck_assert_int_eq (m, NET_MODE_HOST);
  TS_MUST (net_mode_parse ("bridge", &m, err));
  ck_assert_int_eq (m, NET_MODE_BRIDGE);
  TS_MUST (net_mode_parse ("awsvpc", &m, err));
  ck_assert_int_eq (m, NET_MODE_AWSVPC);
  ck_assert_str_eq (net_mode_name (NET_MODE_AWSVPC), "awsvpc");
  /* No networkMode in the task definition: ECS's Linux default. */
  TS_MUST (net_mode_parse ("", &m, err));
  ck_assert_int_eq (m, NET_MODE_BRIDGE);
  TS_MUST (net_mode_parse (NULL, &m, err));
  ck_assert_int_eq (m, NET_MODE_BRIDGE);
  berr *e = NULL;
  static const char *const bad[] = { "overlay", "Bridge", "awsvpc ", "nat" };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    {
      ck_assert_int_lt (net_mode_parse (bad[i], &m, &e), 0);
      ck_assert_int_eq (berr_errno (e), EINVAL);
      char want[32];
      snprintf (want, sizeof want, "`%s`", bad[i]);
      ck_assert_msg (strstr (e->msg, want) != NULL, "%s", e->msg);
      berr_free (&e);
    }
  /* bridge and awsvpc have their own entry points, and say so. */
  ck_assert_int_lt (net_task_setup (run_dir, NET_MODE_BRIDGE, "task-1", &path, &e), 0);
  ck_assert_int_eq (berr_errno (e), EINVAL);
  ck_assert_ptr_nonnull (strstr (e->msg, "net_bridge_setup"));
  berr_free (&e);
  ck_assert_int_lt (net_task_teardown (run_dir, NET_MODE_AWSVPC, "task-1", &e), 0);
  ck_assert_ptr_nonnull (strstr (e->msg, "net_awsvpc_teardown"));
  berr_free (&e);
  ck_assert_int_lt (net_task_setup (run_dir, NET_MODE_NONE, "a/b", &path, &e), 0);
  ck_assert_int_eq (berr_errno (e), EINVAL);
  berr_free (&e);
}
END_TEST

START_TEST (test_netlink_errors_say_what_failed_and_why)
{
  int ns = ts_netenv_ns (&env, "errs");
  net_nl *nl = ts_nl_open (ns);
  berr *e = NULL;
  ck_assert_int_lt (net_link_index (nl, "nope0", &e), 0);
  ck_assert_int_eq (berr_errno (e), ENODEV);
  ck_assert_ptr_nonnull (strstr (e->msg, "`nope0`"));
  berr_free (&e);
  TS_MUST (net_link_add_bridge (nl, "d0", err));
  ck_assert_int_lt (net_link_add_bridge (nl, "d0", &e), 0);
  ck_assert_int_eq (berr_errno (e), EEXIST);
  berr_free (&e);
  ck_assert_int_lt (net_link_delete (nl, 999999, &e), 0);
  ck_assert_int_eq (berr_errno (e), ENODEV);
  berr_free (&e);
  ck_assert_int_lt (net_link_add_bridge (nl, "much-too-long-name", &e), 0);
  ck_assert_int_eq (berr_errno (e), EINVAL);
  berr_free (&e);
  uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
  ck_assert_int_lt (net_link_add_macvlan (nl, "mv0", 999999, mac, &e), 0);
  ck_assert_int_eq (berr_errno (e), ENODEV);
  berr_free (&e);
  /* The kernel's extended ack says more than errno alone (the text is this kernel's). */
  ck_assert_int_lt (net_addr_add (nl, 999999, ts_ip4 ("10.0.0.1"), 24, &e), 0);
  ck_assert_msg (strstr (e->msg, "add address 10.0.0.1/24 on link 999999: ipv4: Device not found")
                     != NULL,
                 "%s", e->msg);
  berr_free (&e);
  ck_assert_int_lt (net_parse_mac ("02:00:00:00:00", mac, &e), 0);
  berr_free (&e);
  ck_assert_int_lt (net_parse_mac ("02:00:00:00:00:0g", mac, &e), 0);
  berr_free (&e);
  net_nl_close (nl);
  close (ns);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("net");
  TCase *tc = tcase_create ("net");
  tcase_set_timeout (tc, 30);
  tcase_add_unchecked_fixture (tc, make_base, sweep_base);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_veth_pair_between_two_namespaces_carries_udp);
  tcase_add_test (tc, test_bridge_with_two_veths_forwards_between_namespaces);
  tcase_add_test (tc, test_macvlan_with_chosen_mac_is_found_by_mac_moved_and_renamed_eth0);
  tcase_add_test (tc, test_find_by_mac_means_the_port_not_the_bridge_that_copies_its_mac);
  tcase_add_test (tc, test_blackhole_route_makes_instance_metadata_unreachable);
  tcase_add_test (tc, test_pinned_netns_survives_its_creator_and_delete_removes_it);
  tcase_add_test (tc, test_delete_unpins_copies_in_mount_namespaces_made_while_pinned);
  tcase_add_test (tc, test_stale_pin_files_are_not_listed_and_are_taken_over);
  tcase_add_test (tc, test_none_mode_yields_only_lo_and_setup_teardown_are_idempotent);
  tcase_add_test (tc, test_mode_parse_knows_all_four_modes_and_names_an_unknown_one);
  tcase_add_test (tc, test_netlink_errors_say_what_failed_and_why);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
