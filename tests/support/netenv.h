/* Fixtures for tests that pin network namespaces: a scratch directory per suite (swept even
 * after a failing test exited without its teardown) and per-test checks that the host is left
 * exactly as it was. */
#ifndef BERTH_TESTS_SUPPORT_NETENV_H
#define BERTH_TESTS_SUPPORT_NETENV_H

#include <stdbool.h>

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

/* Creates and pins a namespace in the test's run_dir and opens it; aborts the test on error. */
int ts_netenv_ns (const struct ts_netenv *e, const char *name);
/* A netlink socket inside the namespace nsfd; aborts the test on error. */
struct net_nl *ts_nl_open (int nsfd);
/* The agent's task endpoint socket in nsfd (169.254.170.2:80, net_task_endpoint_listen); aborts
 * the test on error. */
int ts_endpoint_listen (int nsfd);
/* Whether a connection waits on the listening socket lsock within ms milliseconds. */
bool ts_pending (int lsock, int ms);

#endif
