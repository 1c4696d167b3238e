/* Published ports in Berth's nftables table: static and dynamic host ports, with a conflict
 * (another mapping or a bound socket) reported as EADDRINUSE naming the holder. */
#include "net/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *proto_name (int proto)
{
  return proto == IPPROTO_TCP ? "tcp" : "udp";
}

/* 1 when a socket of proto is bound to port on some address of this namespace, 0 if not: a
 * trial bind to the wildcard address. TCP uses SO_REUSEADDR so only bound or listening sockets
 * count, not connections lingering in TIME_WAIT. */
static int port_bound (net_nft *nft, int proto, uint16_t port, berr **err)
{
  int s = net_socket_in_netns (net_nft_netns (nft), AF_INET,
                               proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM, err);
  if (s < 0)
    return -1;
  int one = 1;
  if (proto == IPPROTO_TCP)
    setsockopt (s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons (port) };
  int r = bind (s, (struct sockaddr *)&a, sizeof a);
  int saved = errno;
  close (s);
  if (r == 0)
    return 0;
  if (saved == EADDRINUSE)
    return 1;
  errno = saved;
  return berr_sys (err, "trial bind of %s port %u", proto_name (proto), port);
}

static const struct net_nft_port *holder (const struct net_nft_listing *l, int proto,
                                          uint16_t host_port)
{
  for (size_t i = 0; i < l->n_ports; i++)
    if (l->ports[i].proto == proto && l->ports[i].host_port == host_port)
      return &l->ports[i];
  return NULL;
}

static bool same_target (const struct net_nft_port *a, const struct net_nft_port *b)
{
  return strcmp (a->owner, b->owner) == 0 && a->proto == b->proto
         && a->addr.s_addr == b->addr.s_addr && a->port == b->port;
}

/* The static port m->host_port: 1 when the same mapping exists already, 0 when free. */
static int check_static (net_nft *nft, const struct net_nft_listing *l,
                         const struct net_nft_port *m, berr **err)
{
  const struct net_nft_port *h = holder (l, m->proto, m->host_port);
  if (h != NULL && same_target (h, m))
    return 1;
  if (h != NULL)
    return berr_make (err, EADDRINUSE, "host port %s/%u for %s is already published for %s",
                      proto_name (m->proto), m->host_port, m->owner, h->owner);
  int b = port_bound (nft, m->proto, m->host_port, err);
  if (b < 0)
    return -1;
  if (b > 0)
    return berr_make (err, EADDRINUSE,
                      "host port %s/%u for %s is in use: a socket on the host is bound to it",
                      proto_name (m->proto), m->host_port, m->owner);
  return 0;
}

/* A dynamic port for m: 1 with the owner's existing one (a retry), 0 with a free one of dyn. */
static int pick_dynamic (net_nft *nft, const struct net_nft_listing *l, struct net_nft_port *m,
                         const struct net_port_range *dyn, berr **err)
{
  for (size_t i = 0; i < l->n_ports; i++)
    if (same_target (&l->ports[i], m))
      {
        m->host_port = l->ports[i].host_port;
        return 1;
      }
  if (dyn == NULL || dyn->lo == 0 || dyn->lo > dyn->hi)
    return berr_make (err, EINVAL, "a dynamic host port for %s needs a port range", m->owner);
  for (unsigned p = dyn->lo; p <= dyn->hi; p++)
    {
      if (holder (l, m->proto, (uint16_t)p) != NULL)
        continue;
      int b = port_bound (nft, m->proto, (uint16_t)p, err);
      if (b < 0)
        return -1;
      if (b == 0)
        {
          m->host_port = (uint16_t)p;
          return 0;
        }
    }
  return berr_make (err, ENOSPC, "no free %s host port in %u-%u for %s", proto_name (m->proto),
                    dyn->lo, dyn->hi, m->owner);
}

static int validate (const struct net_nft_port *m, berr **err)
{
  if (!net_netns_name_valid (m->owner))
    return berr_make (err, EINVAL, "port mapping: invalid owner `%.70s`", m->owner);
  if (m->proto != IPPROTO_TCP && m->proto != IPPROTO_UDP)
    return berr_make (err, EINVAL, "port mapping for %s: protocol %d is neither tcp nor udp",
                      m->owner, m->proto);
  if (m->port == 0 || m->addr.s_addr == 0)
    return berr_make (err, EINVAL, "port mapping for %s: no container address or port", m->owner);
  return 0;
}

/* The nft command for m (validated, host port chosen). */
static void format_rule (const struct net_nft_port *m, char *cmd, size_t size)
{
  char c[NET_NFT_COMMENT_MAX + 1], a[INET_ADDRSTRLEN];
  union net_nft_item it = { .port = *m };
  net_nft_comment_format (NET_NFT_KIND_PORT, &it, c);
  inet_ntop (AF_INET, &m->addr, a, sizeof a);
  snprintf (cmd, size, "add rule ip berth publish %s dport %u dnat to %s:%u comment \"%s\"\n",
            proto_name (m->proto), m->host_port, a, m->port, c);
}

int net_nft_port_add (net_nft *nft, struct net_nft_port *m, const struct net_port_range *dyn,
                      berr **err)
{
  struct net_nft_listing l;
  char cmd[512];
  if (validate (m, err) < 0)
    return -1;
  if (net_nft_list (nft, &l, err) < 0)
    return berr_wrap (err, "publish port for %s", m->owner);
  int r = m->host_port ? check_static (nft, &l, m, err) : pick_dynamic (nft, &l, m, dyn, err);
  bool exists = l.exists;
  net_nft_listing_clear (&l);
  if (r != 0)
    return r < 0 ? -1 : 0;
  if (!exists && net_nft_ensure (nft, err) < 0)
    return -1;
  format_rule (m, cmd, sizeof cmd);
  return net_nft_run (nft, cmd, "publish port", err);
}
