/* Fixtures for tests that pin network namespaces: a scratch directory per suite (swept even
 * after a failing test exited without its teardown), per-test checks that the host is left
 * exactly as it was, and the link and VPC helpers the network tests share. */
#ifndef BERTH_TESTS_SUPPORT_NETENV_H
#define BERTH_TESTS_SUPPORT_NETENV_H

#include <netinet/in.h>
#include <stdbool.h>

struct net_nl;

struct ts_netenv
{
  const char *prefix; /* scratch directory name prefix */
  /* Shell command printing what a leak would change on the host: only what the suite's code
   * could make there (links by name, Berth's table), never machine-wide lists that other suites
   * running at the same time change (`ip netns list`, every nsfs mount). The mounts under the
   * suite's scratch directory (its pins) are added to it. */
  const char *snapshot;
  char *base;          /* per suite */
  char *tmp, *run_dir; /* per test: scratch dir and the netns pin directory inside it */
  char *before;        /* the host snapshot taken when the test began */
};

void ts_netenv_suite_begin (struct ts_netenv *e);
/* Unpins whatever any test left and removes the scratch directory. */
void ts_netenv_suite_end (struct ts_netenv *e);
void ts_netenv_test_begin (struct ts_netenv *e);
/* Deletes the test's pinned namespaces and fails the test if the host snapshot changed. */
void ts_netenv_test_end (struct ts_netenv *e);

/* Defines the Check fixtures of a test case that needs only e's scratch directories and leak
 * check (e: the suite's file-scope struct ts_netenv): netenv_suite_begin and netenv_suite_end
 * (unchecked), netenv_setup and netenv_teardown (checked). */
#define TS_NETENV_FIXTURES(e)                                                                      \
  static void netenv_suite_begin (void)                                                            \
  {                                                                                                \
    ts_netenv_suite_begin (&(e));                                                                  \
  }                                                                                                \
  static void netenv_suite_end (void)                                                              \
  {                                                                                                \
    ts_netenv_suite_end (&(e));                                                                    \
  }                                                                                                \
  static void netenv_setup (void)                                                                  \
  {                                                                                                \
    ts_netenv_test_begin (&(e));                                                                   \
  }                                                                                                \
  static void netenv_teardown (void)                                                               \
  {                                                                                                \
    ts_netenv_test_end (&(e));                                                                     \
  }

/* Creates and pins a namespace in the test's run_dir and opens it; aborts the test on error. */
int ts_netenv_ns (const struct ts_netenv *e, const char *name);
/* A netlink socket inside the namespace nsfd; aborts the test on error. */
struct net_nl *ts_nl_open (int nsfd);
/* The agent's task endpoint socket in nsfd (169.254.170.2:80, net_task_endpoint_listen); aborts
 * the test on error. */
int ts_endpoint_listen (int nsfd);
/* Whether a connection waits on the listening socket lsock within ms milliseconds. */
bool ts_pending (int lsock, int ms);

/* Runs call, a net_* function given `err` (berr **) as its last argument; aborts the test with
 * the call's text and its error when it fails. */
#define TS_MUST(call)                                                                              \
  do                                                                                               \
    {                                                                                              \
      berr *err_ = NULL;                                                                           \
      berr **err = &err_;                                                                          \
      if ((call) < 0)                                                                              \
        ck_abort_msg ("%s: %s", #call, err_->msg);                                                 \
    }                                                                                              \
  while (0)

/* The IPv4 address s (dotted quad); aborts the test when it is not one. */
struct in_addr ts_ip4 (const char *s);
/* The index of link name; aborts the test when there is none. */
int ts_must_index (struct net_nl *nl, const char *name);
/* Gives link name addr/len and brings it up. */
void ts_addr_up (struct net_nl *nl, const char *name, const char *addr, unsigned len);
/* Waits until the kernel has link name's carrier up (veth carriers come up asynchronously). */
void ts_wait_running (struct net_nl *nl, const char *name);
/* Link name's MAC in the namespace nsfd, "aa:bb:cc:dd:ee:ff" (newly allocated). */
char *ts_link_mac (int nsfd, const char *name);
/* ts_netenv_ns without IPv6 (whose address autoconfiguration changes links on its own time). */
int ts_netenv_ns_no6 (const struct ts_netenv *e, const char *name);

/* ---- the VPC of the awsvpc tests, in namespaces of the test's own (IPv6 off) ---- */

/* "vpc" with bridge vpcbr 10.0.1.1/24 (the subnet router), "hostA" (nic0 10.0.1.10) and, when b
 * is not NULL, "hostB" (nic0 10.0.1.20) plugged into it, and host A's EC2-attached ENI eth1
 * (down, no address, as attached). The namespaces' fds go to vpc, a and b. */
void ts_vpc_build (const struct ts_netenv *e, int *vpc, int *a, int *b);
/* Plugs a veth from vpc's vpcbr (the end vpc_end) into ns as name; with addr/24, up and carrier
 * up when addr is not NULL. */
void ts_vpc_plug (int vpc, int ns, const char *name, const char *vpc_end, const char *addr);

#endif
