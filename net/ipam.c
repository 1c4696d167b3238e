/* IPv4 address management for one subnet: allocations keyed by owner, written durably to a state
 * file before any address is handed out, so a crash can neither lose nor double-assign one. */
#include "net/internal.h"
#include "net/net.h"

#include "lib/cleanup.h"
#include "lib/fs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define STATE_MAX (64u << 20)

struct net_ipam
{
  char *path;
  struct net_ipam_state st;
  uint8_t *used; /* one bit per address of the subnet, reserved ones included */
  uint32_t size; /* addresses in the subnet */
  uint32_t next; /* where the search for a free address starts (offset in the subnet) */
};

static bool bit_get (const net_ipam *ipam, uint32_t off)
{
  return ipam->used[off / 8] & (1u << (off % 8));
}

static void bit_set (net_ipam *ipam, uint32_t off, bool on)
{
  if (on)
    ipam->used[off / 8] |= (uint8_t)(1u << (off % 8));
  else
    ipam->used[off / 8] &= (uint8_t) ~(1u << (off % 8));
}

static int persist (net_ipam *ipam, berr **err)
{
  size_t len;
  _cleanup_free_ char *text = net_ipam_format (&ipam->st, &len);
  if (text == NULL)
    return berr_make (err, ENOMEM, "format IPAM state: out of memory");
  if (bfs_write_atomic (AT_FDCWD, ipam->path, text, len, 0600, err) < 0)
    return berr_wrap (err, "save IPAM state");
  return 0;
}

/* Loads the state file, or starts an empty state when there is none yet. */
static int load (net_ipam *ipam, uint32_t net, unsigned len, uint32_t gw, berr **err)
{
  _cleanup_free_ char *text = NULL;
  size_t n = 0;
  berr *rerr = NULL;
  if (bfs_read_all (AT_FDCWD, ipam->path, STATE_MAX, &text, &n, &rerr) < 0)
    {
      if (berr_errno (rerr) != ENOENT)
        {
          berr_free (err);
          *err = rerr;
          return berr_wrap (err, "load IPAM state");
        }
      berr_free (&rerr);
      ipam->st = (struct net_ipam_state){ .net = net, .prefixlen = len, .gateway = gw };
      return 0;
    }
  if (net_ipam_parse (text, n, &ipam->st, err) < 0)
    return berr_wrap (err, "IPAM state `%s` is corrupt", ipam->path);
  if (ipam->st.net != net || ipam->st.prefixlen != len || ipam->st.gateway != gw)
    return berr_make (err, EINVAL,
                      "IPAM state `%s` is for another subnet or gateway than configured",
                      ipam->path);
  return 0;
}

static int resolve_gateway (const char *gateway, uint32_t net, unsigned len, uint32_t *gw,
                            berr **err)
{
  if (gateway == NULL)
    {
      *gw = net + 1;
      return 0;
    }
  struct in_addr a;
  uint32_t mask = ~0u << (32 - len);
  if (inet_pton (AF_INET, gateway, &a) != 1)
    return berr_make (err, EINVAL, "invalid gateway `%s`", gateway);
  *gw = ntohl (a.s_addr);
  if ((*gw & mask) != net || *gw == net || *gw == (net | ~mask))
    return berr_make (err, EINVAL, "gateway `%s` is not a host address of the subnet", gateway);
  return 0;
}

int net_ipam_open (const char *state_path, const char *subnet, const char *gateway, net_ipam **out,
                   berr **err)
{
  uint32_t net = 0, gw = 0;
  unsigned len = 0;
  if (net_ipam_parse_subnet (subnet, &net, &len, err) < 0
      || resolve_gateway (gateway, net, len, &gw, err) < 0)
    return -1;
  net_ipam *ipam = calloc (1, sizeof *ipam);
  if (ipam == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  ipam->size = 1u << (32 - len);
  ipam->path = strdup (state_path);
  ipam->used = calloc (ipam->size / 8 + 1, 1);
  if (ipam->path == NULL || ipam->used == NULL)
    {
      net_ipam_free (ipam);
      return berr_make (err, ENOMEM, "out of memory");
    }
  if (load (ipam, net, len, gw, err) < 0)
    {
      net_ipam_free (ipam);
      return -1;
    }
  bit_set (ipam, 0, true);
  bit_set (ipam, ipam->size - 1, true);
  bit_set (ipam, gw - net, true);
  for (size_t i = 0; i < ipam->st.n; i++)
    {
      uint32_t off = ipam->st.v[i].ip - net;
      bit_set (ipam, off, true);
      if (off + 1 > ipam->next)
        ipam->next = off + 1;
    }
  *out = ipam;
  return 0;
}

void net_ipam_free (net_ipam *ipam)
{
  if (ipam == NULL)
    return;
  net_ipam_state_clear (&ipam->st);
  free (ipam->used);
  free (ipam->path);
  free (ipam);
}

static ssize_t find_owner (const net_ipam *ipam, const char *owner)
{
  for (size_t i = 0; i < ipam->st.n; i++)
    if (strcmp (ipam->st.v[i].owner, owner) == 0)
      return (ssize_t)i;
  return -1;
}

int net_ipam_lookup (const net_ipam *ipam, const char *owner, struct in_addr *out)
{
  ssize_t i = find_owner (ipam, owner);
  if (i < 0)
    return 0;
  out->s_addr = htonl (ipam->st.v[i].ip);
  return 1;
}

/* The next free offset from the cursor on, wrapping once: addresses just released are the last
 * to be reused, so a neighbour's stale ARP entry for one has time to expire. */
static bool find_free (const net_ipam *ipam, uint32_t *off)
{
  for (uint32_t k = 0; k < ipam->size; k++)
    {
      uint32_t o = (ipam->next + k) % ipam->size;
      if (!bit_get (ipam, o))
        {
          *off = o;
          return true;
        }
    }
  return false;
}

int net_ipam_allocate (net_ipam *ipam, const char *owner, struct in_addr *out, berr **err)
{
  if (owner == NULL || !net_ipam_owner_valid (owner))
    return berr_make (err, EINVAL, "invalid IPAM owner `%s`", owner ? owner : "");
  if (net_ipam_lookup (ipam, owner, out))
    return 0;
  uint32_t off;
  if (!find_free (ipam, &off))
    {
      char net[INET_ADDRSTRLEN];
      struct in_addr a = { htonl (ipam->st.net) };
      inet_ntop (AF_INET, &a, net, sizeof net);
      return berr_make (err, ENOSPC, "no free address left in %s/%u for `%s`", net,
                        ipam->st.prefixlen, owner);
    }
  struct net_ipam_entry *nv = realloc (ipam->st.v, (ipam->st.n + 1) * sizeof *nv);
  if (nv == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  ipam->st.v = nv;
  if ((nv[ipam->st.n].owner = strdup (owner)) == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  nv[ipam->st.n++].ip = ipam->st.net + off;
  if (persist (ipam, err) < 0)
    {
      free (nv[--ipam->st.n].owner);
      return berr_wrap (err, "allocate an address for `%s`", owner);
    }
  bit_set (ipam, off, true);
  ipam->next = off + 1;
  out->s_addr = htonl (ipam->st.net + off);
  return 0;
}

int net_ipam_release (net_ipam *ipam, const char *owner, berr **err)
{
  ssize_t i = owner ? find_owner (ipam, owner) : -1;
  if (i < 0)
    return 0;
  struct net_ipam_entry gone = ipam->st.v[i];
  ipam->st.v[i] = ipam->st.v[--ipam->st.n];
  if (persist (ipam, err) < 0)
    {
      /* Put it back as it was: memory must keep matching the file. */
      ipam->st.v[ipam->st.n++] = ipam->st.v[i];
      ipam->st.v[i] = gone;
      return berr_wrap (err, "release the address of `%s`", owner);
    }
  bit_set (ipam, gone.ip - ipam->st.net, false);
  free (gone.owner);
  return 1;
}

size_t net_ipam_count (const net_ipam *ipam)
{
  return ipam->st.n;
}

struct in_addr net_ipam_gateway (const net_ipam *ipam)
{
  return (struct in_addr){ htonl (ipam->st.gateway) };
}

unsigned net_ipam_prefixlen (const net_ipam *ipam)
{
  return ipam->st.prefixlen;
}

const char *net_ipam_owner_at (const net_ipam *ipam, size_t i)
{
  return i < ipam->st.n ? ipam->st.v[i].owner : NULL;
}
