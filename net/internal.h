/* Internals of net/ shared by its files and its tests and fuzz targets; not a public API. */
#ifndef BERTH_NET_INTERNAL_H
#define BERTH_NET_INTERNAL_H

#include "lib/error.h"

#include <stddef.h>
#include <stdint.h>

/* One allocation: an address (host byte order) and its owner. */
struct net_ipam_entry
{
  uint32_t ip;
  char *owner;
};

/* The content of an IPAM state file. */
struct net_ipam_state
{
  uint32_t net; /* network address, host byte order */
  unsigned prefixlen;
  uint32_t gateway;
  struct net_ipam_entry *v;
  size_t n;
};

/* Parses and fully validates a state file (untrusted: it may be torn or edited by hand). On
 * success st owns its entries (net_ipam_state_clear frees them). */
int net_ipam_parse (const char *text, size_t len, struct net_ipam_state *st, berr **err);
/* The file text for st (newly allocated, NUL-terminated). */
char *net_ipam_format (const struct net_ipam_state *st, size_t *len);
void net_ipam_state_clear (struct net_ipam_state *st);
/* Owners are 1-512 printable ASCII characters without spaces. */
int net_ipam_owner_valid (const char *owner);
/* Parses "a.b.c.d/len" into a network address (host order) that must be aligned to len. */
int net_ipam_parse_subnet (const char *s, uint32_t *net, unsigned *len, berr **err);

#endif
