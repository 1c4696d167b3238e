/* Bridge network mode: Berth's bridge with egress NAT, and per container a pinned namespace, a
 * veth on the bridge (eth0 inside), an address from the IPAM and published ports (nft DNAT). */
#include "net/internal.h"
#include "net/net.h"

#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

struct net_bridge
{
  char name[IFNAMSIZ];
  char subnet[19];
  char *run_dir; /* NULL: the default */
  int host_fd;   /* owned dup, -1: the opener's namespace */
  net_nl *nl;    /* in the host namespace */
  net_nft *nft;  /* in the host namespace */
  net_ipam *ipam;
  int ifindex; /* the bridge's */
  struct in_addr gateway;
  unsigned prefixlen;
  struct net_port_range dynamic;
};

/* ---- small helpers ---- */

/* Runs an errno-returning call; EEXIST (an add already done) counts as success. */
static int ok_if_exists (int r, berr **err)
{
  if (r < 0 && berr_errno (*err) == EEXIST)
    {
      berr_free (err);
      return 0;
    }
  return r;
}

/* ENODEV / ENOENT (nothing to remove) count as success. */
static int ok_if_gone (int r, berr **err)
{
  if (r < 0 && (berr_errno (*err) == ENODEV || berr_errno (*err) == ENOENT))
    {
      berr_free (err);
      return 0;
    }
  return r;
}

void net_bridge_veth_name (const char *key, char name[IFNAMSIZ])
{
  static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char *p = key; *p; p++)
    h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
  name[0] = 'b';
  name[1] = 'v';
  for (int i = 0; i < 13; i++)
    name[2 + i] = b32[(h >> (5 * i)) & 31];
  name[15] = '\0';
}

/* Whether name has the form net_bridge_veth_name gives. */
static bool is_berth_veth (const char *name)
{
  return strlen (name) == 15 && strncmp (name, "bv", 2) == 0
         && strspn (name + 2, "abcdefghijklmnopqrstuvwxyz234567") == 13;
}

/* Sysctls under /proc/sys/net belong to the network namespace of whoever opens them: the write
 * is made by a short-lived thread that entered the host namespace. */
struct sysctl_job
{
  int netns_fd, errnum;
  const char *path, *value;
};

static void *sysctl_thread (void *arg)
{
  struct sysctl_job *job = arg;
  if (job->netns_fd >= 0 && setns (job->netns_fd, CLONE_NEWNET) < 0)
    {
      job->errnum = errno;
      return NULL;
    }
  size_t n = strlen (job->value);
  int fd = open (job->path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write (fd, job->value, n) != (ssize_t)n)
    job->errnum = errno;
  if (fd >= 0)
    close (fd);
  return NULL;
}

static int write_sysctl (int netns_fd, const char *path, const char *value, berr **err)
{
  struct sysctl_job job = { netns_fd, 0, path, value };
  pthread_t t;
  int r = pthread_create (&t, NULL, sysctl_thread, &job);
  if (r != 0)
    return berr_sysn (err, r, "start a thread to write %s", path);
  pthread_join (t, NULL);
  if (job.errnum != 0)
    return berr_sysn (err, job.errnum, "write %s", path);
  return 0;
}

/* ---- the bridge ---- */

/* Without an address of its own a bridge takes the lowest of its ports' and changes it as
 * containers come and go (00:00:00:00:00:00 once the last one left), so every container's ARP
 * entry for the gateway goes stale. A random locally administered unicast address, set once,
 * stays put. */
static int set_own_mac (net_bridge *br, berr **err)
{
  uint8_t mac[6];
  if (getrandom (mac, sizeof mac, 0) != sizeof mac)
    return berr_sys (err, "getrandom");
  mac[0] = (uint8_t)((mac[0] & 0xfe) | 0x02);
  return net_link_set_mac (br->nl, br->ifindex, mac, err);
}

/* Berth's bridge is IPv4 only. Left on, IPv6 gives the bridge a link-local address once the
 * first container joins, which then stays (and the host would solicit routers on it). A kernel
 * without IPv6 has nothing to turn off. */
static int ipv4_only (net_bridge *br, berr **err)
{
  char path[96];
  snprintf (path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", br->name);
  return ok_if_gone (write_sysctl (br->host_fd, path, "1", err), err);
}

/* The bridge link with the gateway address, up; each step is skipped when done already. */
static int ensure_link (net_bridge *br, berr **err)
{
  berr *e = NULL;
  br->ifindex = net_link_index (br->nl, br->name, &e);
  if (br->ifindex < 0)
    {
      if (berr_errno (e) != ENODEV)
        {
          berr_free (err);
          *err = e;
          return -1;
        }
      berr_free (&e);
      if (ok_if_exists (net_link_add_bridge (br->nl, br->name, err), err) < 0
          || (br->ifindex = net_link_index (br->nl, br->name, err)) < 0 || set_own_mac (br, err) < 0
          || ipv4_only (br, err) < 0)
        return -1;
    }
  if (ok_if_exists (net_addr_add (br->nl, br->ifindex, br->gateway, br->prefixlen, err), err) < 0
      || net_link_set_up (br->nl, br->ifindex, true, err) < 0)
    return -1;
  return 0;
}

static int resolve_range (net_bridge *br, const struct net_bridge_config *cfg, berr **err)
{
  struct net_port_range kernel;
  if (cfg->dynamic.lo != 0)
    {
      if (cfg->dynamic.lo > cfg->dynamic.hi)
        return berr_make (err, EINVAL, "dynamic host port range %u-%u is empty", cfg->dynamic.lo,
                          cfg->dynamic.hi);
      br->dynamic = cfg->dynamic;
      return 0;
    }
  if (net_kernel_port_range (&kernel, err) < 0)
    return -1;
  return net_port_range_default (&kernel, &br->dynamic, err);
}

static int bridge_init (net_bridge *br, const struct net_bridge_config *cfg, berr **err)
{
  const char *name = cfg->name ? cfg->name : NET_BRIDGE_DEFAULT_NAME;
  if (!net_nft_bridge_valid (name) || strlen (name) >= IFNAMSIZ || is_berth_veth (name))
    return berr_make (err, EINVAL, "invalid bridge name `%.40s`", name);
  snprintf (br->name, sizeof br->name, "%s", name);
  if (net_nft_subnet_canon (cfg->subnet ? cfg->subnet : NET_BRIDGE_DEFAULT_SUBNET, br->subnet, err)
          < 0
      || resolve_range (br, cfg, err) < 0)
    return -1;
  if (cfg->run_dir && (br->run_dir = strdup (cfg->run_dir)) == NULL)
    return berr_sys (err, "strdup");
  if (cfg->host_netns_fd >= 0 && (br->host_fd = fcntl (cfg->host_netns_fd, F_DUPFD_CLOEXEC, 3)) < 0)
    return berr_sys (err, "dup netns fd");
  const char *ipam = cfg->ipam_path ? cfg->ipam_path : NET_BRIDGE_DEFAULT_IPAM;
  if ((!cfg->ipam_path && bfs_mkdirs ("/run/berth", 0755, err) < 0)
      || net_ipam_open (ipam, br->subnet, NULL, &br->ipam, err) < 0)
    return -1;
  br->gateway = net_ipam_gateway (br->ipam);
  br->prefixlen = net_ipam_prefixlen (br->ipam);
  if (net_nl_open (br->host_fd, &br->nl, err) < 0 || net_nft_open (br->host_fd, &br->nft, err) < 0
      || ensure_link (br, err) < 0
      || write_sysctl (br->host_fd, "/proc/sys/net/ipv4/ip_forward", "1", err) < 0
      || net_nft_ensure (br->nft, err) < 0
      || net_nft_masquerade_add (br->nft, br->subnet, br->name, err) < 0)
    return -1;
  return 0;
}

int net_bridge_open (const struct net_bridge_config *cfg, net_bridge **out, berr **err)
{
  net_bridge *br = calloc (1, sizeof *br);
  if (br == NULL)
    return berr_sys (err, "calloc");
  br->host_fd = -1;
  if (bridge_init (br, cfg, err) < 0)
    {
      net_bridge_close (br);
      return berr_wrap (err, "open bridge `%s`", cfg->name ? cfg->name : NET_BRIDGE_DEFAULT_NAME);
    }
  *out = br;
  return 0;
}

void net_bridge_close (net_bridge *br)
{
  if (br == NULL)
    return;
  net_nl_close (br->nl);
  net_nft_close (br->nft);
  net_ipam_free (br->ipam);
  if (br->host_fd >= 0)
    close (br->host_fd);
  free (br->run_dir);
  free (br);
}

int net_bridge_remove (net_bridge *br, berr **err)
{
  if (net_nft_masquerade_remove (br->nft, br->subnet, br->name, err) < 0
      || ok_if_gone (net_link_delete (br->nl, br->ifindex, err), err) < 0)
    return berr_wrap (err, "remove bridge `%s`", br->name);
  return 0;
}

struct in_addr net_bridge_gateway (const net_bridge *br)
{
  return br->gateway;
}

struct net_port_range net_bridge_dynamic_range (const net_bridge *br)
{
  return br->dynamic;
}

/* ---- endpoints ---- */

void net_bridge_endpoint_clear (struct net_bridge_endpoint *ep)
{
  free (ep->netns_path);
  free (ep->bindings);
  memset (ep, 0, sizeof *ep);
}

static int endpoint_teardown (net_bridge *br, const char *key, bool sync, berr **err);

/* The endpoint's pinned namespace, created unless it is there already; returns an fd of it. */
static int ensure_netns (net_bridge *br, const char *key, berr **err)
{
  berr *e = NULL;
  int fd = net_netns_open (br->run_dir, key, &e);
  if (fd >= 0 || berr_errno (e) != ENOENT)
    {
      if (fd < 0)
        {
          berr_free (err);
          *err = e;
        }
      return fd;
    }
  berr_free (&e);
  if (net_netns_create (br->run_dir, key, err) < 0)
    return -1;
  return net_netns_open (br->run_dir, key, err);
}

/* The veth pair: host end on the bridge and up, eth0 already in the container's namespace (made
 * there directly). A host end whose peer is not the container's eth0 (an interrupted setup) is
 * made again. */
static int ensure_veth (net_bridge *br, const char *key, net_nl *cnl, int ctr_fd, berr **err)
{
  char host[IFNAMSIZ];
  net_bridge_veth_name (key, host);
  berr *e = NULL;
  int hi = net_link_index (br->nl, host, &e);
  berr_free (&e);
  if (hi > 0 && net_link_index (cnl, "eth0", &e) < 0)
    {
      berr_free (&e);
      if (ok_if_gone (net_link_delete (br->nl, hi, err), err) < 0)
        return -1;
      hi = -1;
    }
  if (hi < 0
      && (net_link_add_veth (br->nl, host, "eth0", ctr_fd, err) < 0
          || (hi = net_link_index (br->nl, host, err)) < 0))
    return -1;
  if (net_link_set_master (br->nl, hi, br->ifindex, err) < 0
      || net_link_set_hairpin (br->nl, hi, true, err) < 0
      || net_link_set_up (br->nl, hi, true, err) < 0)
    return -1;
  return hi;
}

/* A link carries packets only once the kernel's link watcher processed its carrier: it activates
 * the queueing discipline (until then packets are dropped) and, for a bridge port, makes the
 * bridge forward for it. The watcher runs in a worker after eth0 came up, so without waiting a
 * container's first connection could stall for a TCP retransmit. The bridge itself loses carrier
 * with its last port and regains it with the next one through the same watcher; its flag is only
 * updated when the watcher processes the change, so a stale "up" is told apart by asking for the
 * carrier as well (net_link_oper_up). Waits up to 2 s, then logs and goes on. */
static int wait_carrier (net_nl *nl, int ifindex, bool port, const char *key, berr **err)
{
  for (int i = 0; i < 4000; i++)
    {
      int up = port ? net_link_port_forwarding (nl, ifindex, err)
                    : net_link_oper_up (nl, ifindex, err);
      if (up != 0)
        return up < 0 ? -1 : 0;
      usleep (500);
    }
  blog_warn ("bridge endpoint %s: link %d has no carrier after 2 s", key, ifindex);
  return 0;
}

/* Both veth ends carry packets, the bridge forwards for the port, and the bridge itself has
 * carrier (it loses it with its last port). */
static int wait_ready (net_bridge *br, net_nl *cnl, int hi, int ci, const char *key, berr **err)
{
  if (wait_carrier (br->nl, hi, false, key, err) < 0 || wait_carrier (cnl, ci, false, key, err) < 0
      || wait_carrier (br->nl, hi, true, key, err) < 0
      || wait_carrier (br->nl, br->ifindex, false, key, err) < 0)
    return -1;
  return 0;
}

/* Inside the container: eth0 with addr, up, and the default route via the bridge. */
static int configure_eth0 (net_bridge *br, net_nl *cnl, struct in_addr addr, berr **err)
{
  int ci = net_link_index (cnl, "eth0", err);
  if (ci < 0 || ok_if_exists (net_addr_add (cnl, ci, addr, br->prefixlen, err), err) < 0
      || net_link_set_up (cnl, ci, true, err) < 0
      || ok_if_exists (net_route_add_default (cnl, br->gateway, ci, err), err) < 0)
    return -1;
  return ci;
}

static int publish (net_bridge *br, const char *key, const struct net_port_mapping *ports, size_t n,
                    struct net_bridge_endpoint *out, berr **err)
{
  if (n > 0 && (out->bindings = calloc (n, sizeof *out->bindings)) == NULL)
    return berr_sys (err, "calloc");
  for (size_t i = 0; i < n; i++)
    {
      struct net_nft_port m = { .proto = ports[i].proto,
                                .host_port = ports[i].host_port,
                                .addr = out->addr,
                                .port = ports[i].container_port };
      snprintf (m.owner, sizeof m.owner, "%s", key);
      if (net_nft_port_add (br->nft, &m, &br->dynamic, err) < 0)
        return -1;
      struct net_port_binding *b = &out->bindings[out->n_bindings++];
      *b = (struct net_port_binding){ m.proto, m.port, m.host_port, "0.0.0.0" };
    }
  return 0;
}

static int endpoint_setup (net_bridge *br, const char *key, const struct net_port_mapping *ports,
                           size_t n, struct net_bridge_endpoint *out, berr **err)
{
  /* The IPAM record comes first: it is durable, so whatever follows and is interrupted by a
   * crash is found again by reconcile through it. */
  if (net_ipam_allocate (br->ipam, key, &out->addr, err) < 0)
    return -1;
  _cleanup_close_ int ctr_fd = ensure_netns (br, key, err);
  if (ctr_fd < 0)
    return -1;
  net_nl *cnl = NULL;
  if (net_nl_open (ctr_fd, &cnl, err) < 0)
    return -1;
  int hi = ensure_veth (br, key, cnl, ctr_fd, err);
  int ci = hi < 0 ? -1 : configure_eth0 (br, cnl, out->addr, err);
  /* Ports are published while the link watcher runs in its own worker. */
  int r = ci < 0 || publish (br, key, ports, n, out, err) < 0
                  || wait_ready (br, cnl, hi, ci, key, err) < 0
              ? -1
              : 0;
  net_nl_close (cnl);
  if (r < 0)
    return -1;
  if ((out->netns_path = net_netns_path (br->run_dir, key)) == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  return 0;
}

int net_bridge_setup (net_bridge *br, const char *key, const struct net_port_mapping *ports,
                      size_t n_ports, struct net_bridge_endpoint *out, berr **err)
{
  memset (out, 0, sizeof *out);
  if (!net_netns_name_valid (key))
    return berr_make (err, EINVAL, "bridge endpoint: invalid key `%.70s`", key ? key : "");
  if (endpoint_setup (br, key, ports, n_ports, out, err) == 0)
    return 0;
  /* A failed setup (a port conflict, most likely) is a task failure that leaves nothing. */
  berr *terr = NULL;
  if (endpoint_teardown (br, key, true, &terr) < 0)
    blog_berr (&terr);
  net_bridge_endpoint_clear (out);
  return berr_wrap (err, "set up bridge network for `%s`", key);
}

static int remove_host_veth (net_bridge *br, const char *key, berr **err)
{
  char host[IFNAMSIZ];
  net_bridge_veth_name (key, host);
  int hi = ok_if_gone (net_link_index (br->nl, host, err), err);
  if (hi > 0)
    hi = ok_if_gone (net_link_delete (br->nl, hi, err), err);
  return hi < 0 ? -1 : 0;
}

static bool pinned (net_bridge *br, const char *key)
{
  berr *e = NULL;
  int fd = net_netns_open (br->run_dir, key, &e);
  berr_free (&e);
  if (fd >= 0)
    close (fd);
  return fd >= 0;
}

/* The veth pair dies with the endpoint's namespace: once the pin is gone and the containers'
 * processes have exited, the kernel unregisters eth0 and with it the host end, in its namespace
 * cleanup worker, which shares one set of RCU waits among every namespace dying meanwhile. An
 * explicit delete pays those waits inline (30 ms here, more than all the rest of a task). So the
 * host end is deleted here only when sync asks for a teardown finished on return (rollback of a
 * failed setup, reconcile), or when no pin is left to take it away. */
static int endpoint_teardown (net_bridge *br, const char *key, bool sync, berr **err)
{
  if (!net_netns_name_valid (key))
    return berr_make (err, EINVAL, "bridge endpoint: invalid key `%.70s`", key ? key : "");
  if (net_nft_ports_remove (br->nft, key, err) < 0
      || ((sync || !pinned (br, key)) && remove_host_veth (br, key, err) < 0)
      || net_netns_delete (br->run_dir, key, err) < 0 || net_ipam_release (br->ipam, key, err) < 0)
    return berr_wrap (err, "tear down bridge network for `%s`", key);
  return 0;
}

int net_bridge_teardown (net_bridge *br, const char *key, berr **err)
{
  return endpoint_teardown (br, key, false, err);
}

/* ---- reconcile ---- */

static bool in_set (const char *const *v, size_t n, const char *s)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp (v[i], s) == 0)
      return true;
  return false;
}

/* Adds s to the set *v (of *n) unless it is there; strings are borrowed. */
static int set_add (const char ***v, size_t *n, const char *s, berr **err)
{
  if (in_set (*v, *n, s))
    return 0;
  const char **nv = realloc (*v, (*n + 1) * sizeof *nv);
  if (nv == NULL)
    return berr_sys (err, "realloc");
  nv[(*n)++] = s;
  *v = nv;
  return 0;
}

/* Every endpoint key with a durable trace (an address or a published port) and not live. */
static int dead_keys (net_bridge *br, const struct net_nft_listing *l, const char *const *live,
                      size_t n_live, char ***out, size_t *n_out, berr **err)
{
  const char **v = NULL;
  size_t n = 0;
  for (size_t i = 0; i < net_ipam_count (br->ipam); i++)
    {
      const char *o = net_ipam_owner_at (br->ipam, i);
      if (!in_set (live, n_live, o) && net_netns_name_valid (o) && set_add (&v, &n, o, err) < 0)
        goto fail;
    }
  for (size_t i = 0; i < l->n_ports; i++)
    if (!in_set (live, n_live, l->ports[i].owner) && set_add (&v, &n, l->ports[i].owner, err) < 0)
      goto fail;
  /* Copies: teardown changes the IPAM's owner list the strings point into. */
  *out = calloc (n + 1, sizeof **out);
  for (size_t i = 0; *out != NULL && i < n; i++)
    if (((*out)[i] = strdup (v[i])) == NULL)
      {
        for (size_t j = 0; j < i; j++)
          free ((*out)[j]);
        free (*out);
        *out = NULL;
      }
  free (v);
  if (*out == NULL)
    return berr_make (err, ENOMEM, "reconcile: out of memory");
  *n_out = n;
  return 0;
fail:
  free (v);
  return -1;
}

/* Deletes Berth veths (by their name's form) that belong to no live key: leftovers of setups
 * interrupted before the IPAM record of an endpoint torn down since, or made by hand. */
static bool owned_by_live (const char *name, const char *const *live, size_t n_live)
{
  char want[IFNAMSIZ];
  for (size_t i = 0; i < n_live; i++)
    {
      net_bridge_veth_name (live[i], want);
      if (strcmp (want, name) == 0)
        return true;
    }
  return false;
}

static int sweep_veths (net_bridge *br, const char *const *live, size_t n_live, berr **err)
{
  char **names = NULL;
  int r = 0;
  if (net_link_list (br->nl, &names, err) < 0)
    return -1;
  for (char **p = names; r == 0 && *p; p++)
    {
      if (!is_berth_veth (*p) || owned_by_live (*p, live, n_live))
        continue;
      /* Gone meanwhile (its peer's namespace died) is fine. */
      int idx = ok_if_gone (net_link_index (br->nl, *p, err), err);
      if (idx > 0)
        idx = ok_if_gone (net_link_delete (br->nl, idx, err), err);
      r = idx < 0 ? -1 : 0;
    }
  for (char **p = names; *p; p++)
    free (*p);
  free (names);
  return r;
}

int net_bridge_reconcile (net_bridge *br, const char *const *live, size_t n_live, berr **err)
{
  struct net_nft_listing l;
  char **dead = NULL;
  size_t n = 0;
  if (net_nft_list (br->nft, &l, err) < 0)
    return berr_wrap (err, "reconcile bridge `%s`", br->name);
  int r = dead_keys (br, &l, live, n_live, &dead, &n, err);
  net_nft_listing_clear (&l);
  for (size_t i = 0; r == 0 && i < n; i++)
    r = endpoint_teardown (br, dead[i], true, err);
  for (size_t i = 0; dead != NULL && i < n; i++)
    free (dead[i]);
  free (dead);
  if (r == 0)
    r = sweep_veths (br, live, n_live, err);
  if (r < 0)
    return berr_wrap (err, "reconcile bridge `%s`", br->name);
  return (int)n;
}
