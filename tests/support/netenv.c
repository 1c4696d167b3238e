/* Scratch directories and leak checks for the network tests. */
#include "tests/support/netenv.h"

#include "net/net.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <check.h>
#include <glob.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

/* The suite's command, then the mounts under this suite run's own scratch directory (its pins):
 * only what this run made, so other suites and other runs of this one pinning namespaces at the
 * same time cannot make it fail. */
static char *snapshot (const struct ts_netenv *e)
{
  char *out = NULL, *cmd = NULL;
  int status;
  ck_assert_int_ge (asprintf (&cmd,
                              "%s; echo ---; grep -F ' %s/' /proc/self/mountinfo"
                              " | cut -d' ' -f5 | sort",
                              e->snapshot, e->base),
                    0);
  ck_assert_int_eq (ts_sh (cmd, &out, &status), 0);
  ck_assert_int_eq (ts_exit_code (status), 0);
  free (cmd);
  return out;
}

void ts_netenv_suite_begin (struct ts_netenv *e)
{
  e->base = ts_mkdtemp (e->prefix);
}

void ts_netenv_suite_end (struct ts_netenv *e)
{
  glob_t g;
  char pat[4096];
  snprintf (pat, sizeof pat, "%s/*/netns/*", e->base);
  if (glob (pat, 0, NULL, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; i++)
      umount2 (g.gl_pathv[i], MNT_DETACH);
  globfree (&g);
  ts_rmtree (e->base);
  free (e->base);
  e->base = NULL;
}

void ts_netenv_test_begin (struct ts_netenv *e)
{
  ck_assert_msg (ts_is_root (), "the network tests need root");
  e->before = snapshot (e);
  ck_assert_int_ge (asprintf (&e->tmp, "%s/t-XXXXXX", e->base), 0);
  ck_assert_ptr_nonnull (mkdtemp (e->tmp));
  ck_assert_int_ge (asprintf (&e->run_dir, "%s/netns", e->tmp), 0);
}

void ts_netenv_test_end (struct ts_netenv *e)
{
  berr *err = NULL;
  char **names = NULL;
  if (net_netns_list (e->run_dir, &names, &err) == 0)
    {
      for (char **n = names; *n; n++)
        {
          net_netns_delete (e->run_dir, *n, &err);
          berr_free (&err);
          free (*n);
        }
      free (names);
    }
  berr_free (&err);
  ts_rmtree (e->tmp);
  char *after = snapshot (e);
  ck_assert_msg (strcmp (e->before, after) == 0, "host changed:\n--- before\n%s--- after\n%s",
                 e->before, after);
  free (after);
  free (e->before);
  free (e->run_dir);
  free (e->tmp);
}

int ts_netenv_ns (const struct ts_netenv *e, const char *name)
{
  berr *err = NULL;
  int fd;
  if (net_netns_create (e->run_dir, name, &err) < 0
      || (fd = net_netns_open (e->run_dir, name, &err)) < 0)
    ck_abort_msg ("netns %s: %s", name, err->msg);
  return fd;
}

net_nl *ts_nl_open (int nsfd)
{
  berr *err = NULL;
  net_nl *nl = NULL;
  if (net_nl_open (nsfd, &nl, &err) < 0)
    ck_abort_msg ("net_nl_open: %s", err->msg);
  return nl;
}

int ts_endpoint_listen (int nsfd)
{
  berr *err = NULL;
  struct in_addr a;
  inet_pton (AF_INET, NET_TASK_ENDPOINT_ADDR, &a);
  int fd = net_task_endpoint_listen (nsfd, a, 80, &err);
  if (fd < 0)
    ck_abort_msg ("task endpoint: %s", err->msg);
  return fd;
}

bool ts_pending (int lsock, int ms)
{
  struct pollfd p = { .fd = lsock, .events = POLLIN };
  return poll (&p, 1, ms) == 1;
}

struct in_addr ts_ip4 (const char *s)
{
  struct in_addr a;
  ck_assert_msg (inet_pton (AF_INET, s, &a) == 1, "not an address: %s", s);
  return a;
}

int ts_must_index (net_nl *nl, const char *name)
{
  berr *e = NULL;
  int i = net_link_index (nl, name, &e);
  if (i <= 0)
    ck_abort_msg ("index of %s: %s", name, e ? e->msg : "?");
  return i;
}

void ts_addr_up (net_nl *nl, const char *name, const char *addr, unsigned len)
{
  int i = ts_must_index (nl, name);
  TS_MUST (net_addr_add (nl, i, ts_ip4 (addr), len, err));
  TS_MUST (net_link_set_up (nl, i, true, err));
}

void ts_wait_running (net_nl *nl, const char *name)
{
  int idx = ts_must_index (nl, name);
  for (int i = 0; i < 2000; i++)
    {
      unsigned flags = 0;
      TS_MUST (net_link_flags (nl, idx, &flags, err));
      if (flags & IFF_RUNNING)
        return;
      usleep (1000);
    }
  ck_abort_msg ("link %s never came up", name);
}

char *ts_link_mac (int nsfd, const char *name)
{
  uint8_t m[6];
  char *s = NULL;
  net_nl *nl = ts_nl_open (nsfd);
  TS_MUST (net_link_get_mac (nl, ts_must_index (nl, name), m, err));
  net_nl_close (nl);
  ck_assert_int_ge (
      asprintf (&s, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]), 0);
  return s;
}

int ts_netenv_ns_no6 (const struct ts_netenv *e, const char *name)
{
  int fd = ts_netenv_ns (e, name);
  ts_sh_ok ("nsenter --net=%s/%s sysctl -qw net.ipv6.conf.all.disable_ipv6=1"
            " net.ipv6.conf.default.disable_ipv6=1",
            e->run_dir, name);
  return fd;
}

void ts_vpc_plug (int vpc, int ns, const char *name, const char *vpc_end, const char *addr)
{
  net_nl *n = ts_nl_open (vpc), *h = ts_nl_open (ns);
  TS_MUST (net_link_add_veth (n, vpc_end, name, ns, err));
  TS_MUST (net_link_set_master (n, ts_must_index (n, vpc_end), ts_must_index (n, "vpcbr"), err));
  TS_MUST (net_link_set_up (n, ts_must_index (n, vpc_end), true, err));
  if (addr != NULL)
    {
      ts_addr_up (h, name, addr, 24);
      ts_wait_running (h, name);
    }
  net_nl_close (n);
  net_nl_close (h);
}

void ts_vpc_build (const struct ts_netenv *e, int *vpc, int *a, int *b)
{
  *vpc = ts_netenv_ns_no6 (e, "vpc");
  *a = ts_netenv_ns_no6 (e, "hostA");
  if (b != NULL)
    *b = ts_netenv_ns_no6 (e, "hostB");
  net_nl *n = ts_nl_open (*vpc);
  TS_MUST (net_link_add_bridge (n, "vpcbr", err));
  ts_addr_up (n, "vpcbr", "10.0.1.1", 24);
  net_nl_close (n);
  ts_vpc_plug (*vpc, *a, "nic0", "pa", "10.0.1.10");
  if (b != NULL)
    ts_vpc_plug (*vpc, *b, "nic0", "pb", "10.0.1.20");
  ts_vpc_plug (*vpc, *a, "eth1", "pe1", NULL);
}
