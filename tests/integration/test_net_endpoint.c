/* The task endpoint address against the real kernel: a socket the agent holds inside a task's
 * network namespace answers 169.254.170.2 for that task only, and the host is left unchanged. */
#include "lib/cleanup.h"
#include "net/net.h"
#include "tests/support/netenv.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct ts_netenv env = {
  .prefix = "berth-eptest",
  /* Names and addresses only: lifetimes of the host's DHCP and IPv6 addresses count down. */
  .snapshot = "ip -o link show | cut -d: -f2; echo ---; ip -o -4 addr show | awk '{print $2, $4}';"
              " echo ---; ip -4 route show table all",
};

TS_NETENV_FIXTURES (env)

/* Connects from inside nsfd to addr:port; returns the connected fd or -errno. */
static int connect_from (int nsfd, const char *addr, uint16_t port)
{
  berr *err = NULL;
  int fd = net_socket_in_netns (nsfd, AF_INET, SOCK_STREAM, &err);
  if (fd < 0)
    ck_abort_msg ("socket: %s", err->msg);
  struct timeval tv = { .tv_sec = 2 };
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in sa
      = { .sin_family = AF_INET, .sin_port = htons (port), .sin_addr = ts_ip4 (addr) };
  if (connect (fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    {
      int e = errno;
      close (fd);
      return -e;
    }
  return fd;
}

START_TEST (test_a_task_reaches_the_socket_held_in_its_own_namespace)
{
  int task = ts_netenv_ns (&env, "task");
  _cleanup_close_ int lfd = ts_endpoint_listen (task);
  _cleanup_close_ int c = connect_from (task, NET_TASK_ENDPOINT_ADDR, 80);
  ck_assert_int_ge (c, 0);
  ck_assert (ts_pending (lfd, 2000));
  _cleanup_close_ int s = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
  ck_assert_int_ge (s, 0);
  ck_assert_int_eq (write (c, "GET", 3), 3);
  char buf[8] = { 0 };
  ck_assert_int_eq (read (s, buf, sizeof buf), 3);
  ck_assert_str_eq (buf, "GET");
  ck_assert_int_eq (fcntl (lfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  close (task);
}
END_TEST

/* Two tasks linked like containers on one bridge: each reaches only its own endpoint, and
 * neither can open the other's endpoint socket through the link. */
START_TEST (test_neighbouring_tasks_cannot_reach_each_others_endpoint)
{
  int a = ts_netenv_ns (&env, "a"), b = ts_netenv_ns (&env, "b");
  net_nl *na = ts_nl_open (a), *nb = ts_nl_open (b);
  berr *err = NULL;
  ck_assert_int_eq (net_link_add_veth (na, "ep-a", "ep-b", b, &err), 0);
  int ia = net_link_index (na, "ep-a", &err), ib = net_link_index (nb, "ep-b", &err);
  ck_assert (ia > 0 && ib > 0);
  ck_assert_int_eq (net_addr_add (na, ia, ts_ip4 ("10.99.0.1"), 24, &err), 0);
  ck_assert_int_eq (net_addr_add (nb, ib, ts_ip4 ("10.99.0.2"), 24, &err), 0);
  ck_assert_int_eq (net_link_set_up (na, ia, true, &err), 0);
  ck_assert_int_eq (net_link_set_up (nb, ib, true, &err), 0);
  _cleanup_close_ int la = ts_endpoint_listen (a);
  _cleanup_close_ int lb = ts_endpoint_listen (b);

  _cleanup_close_ int c = connect_from (a, NET_TASK_ENDPOINT_ADDR, 80);
  ck_assert_int_ge (c, 0);
  ck_assert (ts_pending (la, 2000));
  ck_assert (!ts_pending (lb, 100));
  /* b's socket is bound to the endpoint address on b's lo, not to b's link address. */
  ck_assert_int_eq (connect_from (a, "10.99.0.2", 80), -ECONNREFUSED);
  ck_assert (!ts_pending (lb, 100));
  net_nl_close (na);
  net_nl_close (nb);
  close (a);
  close (b);
}
END_TEST

START_TEST (test_listening_again_after_close_works_and_errors_are_clear)
{
  int task = ts_netenv_ns (&env, "task");
  int fd = ts_endpoint_listen (task);
  berr *err = NULL;
  ck_assert_int_lt (net_task_endpoint_listen (task, ts_ip4 (NET_TASK_ENDPOINT_ADDR), 80, &err), 0);
  ck_assert_int_eq (berr_errno (err), EADDRINUSE);
  ck_assert_msg (strstr (err->msg, "169.254.170.2:80") != NULL, "%s", err->msg);
  berr_free (&err);
  close (fd);
  fd = ts_endpoint_listen (task); /* the address is already on lo: fine */
  close (fd);
  ck_assert_int_lt (net_task_endpoint_listen (-1, ts_ip4 (NET_TASK_ENDPOINT_ADDR), 80, &err), 0);
  ck_assert_int_eq (berr_errno (err), EINVAL);
  berr_free (&err);
  close (task);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("net_endpoint");
  TCase *tc = tcase_create ("endpoint");
  tcase_add_unchecked_fixture (tc, netenv_suite_begin, netenv_suite_end);
  tcase_add_checked_fixture (tc, netenv_setup, netenv_teardown);
  tcase_add_test (tc, test_a_task_reaches_the_socket_held_in_its_own_namespace);
  tcase_add_test (tc, test_neighbouring_tasks_cannot_reach_each_others_endpoint);
  tcase_add_test (tc, test_listening_again_after_close_works_and_errors_are_clear);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
