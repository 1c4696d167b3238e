/* The link-local addresses a task sees. 169.254.170.2 (task metadata and credentials): a
 * listening socket the agent holds inside each task's own network namespace, so a task reaches
 * the agent without any route, link or NAT rule on the host, and the socket that accepted a
 * connection says which task is asking. 169.254.169.254 (instance metadata): a blackhole. */
#include "lib/cleanup.h"
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

/* Puts addr/32 on the namespace's loopback (bringing lo up): local delivery, no route needed.
 * An address already there is fine (setup is idempotent). */
static int add_local_address (int netns_fd, struct in_addr addr, berr **err)
{
  net_nl *nl = NULL;
  if (net_nl_open (netns_fd, &nl, err) < 0)
    return -1;
  int lo = net_link_index (nl, "lo", err);
  int r = lo < 0 ? -1 : net_link_set_up (nl, lo, true, err);
  if (r == 0 && net_addr_add (nl, lo, addr, 32, err) < 0)
    {
      if (berr_errno (*err) != EEXIST)
        r = -1;
      else
        berr_free (err);
    }
  net_nl_close (nl);
  return r;
}

int net_task_endpoint_listen (int netns_fd, struct in_addr addr, uint16_t port, berr **err)
{
  if (netns_fd < 0)
    return berr_make (err, EINVAL, "task endpoint: the task has no network namespace of its own");
  char text[INET_ADDRSTRLEN];
  inet_ntop (AF_INET, &addr, text, sizeof text);
  if (add_local_address (netns_fd, addr, err) < 0)
    return berr_wrap (err, "task endpoint: add %s to lo", text);
  _cleanup_close_ int fd
      = net_socket_in_netns (netns_fd, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, err);
  if (fd < 0)
    return berr_wrap (err, "task endpoint");
  int one = 1;
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port), .sin_addr = addr };
  if (setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    return berr_sys (err, "task endpoint: SO_REUSEADDR");
  if (bind (fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    return berr_sys (err, "task endpoint: bind %s:%u in the task's namespace", text, port);
  if (listen (fd, 64) < 0)
    return berr_sys (err, "task endpoint: listen");
  return steal_fd (&fd);
}

int net_block_imds (int netns_fd, berr **err)
{
  net_nl *nl = NULL;
  struct in_addr a;
  inet_pton (AF_INET, NET_IMDS_ADDR, &a);
  int r = net_nl_open (netns_fd, &nl, err);
  if (r == 0 && net_route_add_blackhole (nl, a, 32, err) < 0)
    {
      r = -1;
      if (berr_errno (*err) == EEXIST)
        {
          berr_free (err);
          r = 0;
        }
    }
  net_nl_close (nl);
  return r < 0 ? berr_wrap (err, "block " NET_IMDS_ADDR) : 0;
}
