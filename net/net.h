/* Task networking: netlink plumbing (links, addresses, routes), named network namespaces, an
 * IPv4 allocator with durable state, and the task network modes. The whole public API of net/. */
#ifndef BERTH_NET_NET_H
#define BERTH_NET_NET_H

#include "lib/error.h"

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- netlink (net/netlink.c) ----------------------------------------------------------------
 * A route netlink socket bound to one network namespace: every call through it acts in that
 * namespace. Adds fail with EEXIST when the object exists, lookups and deletes with ENODEV or
 * ENOENT when it does not (berr_errno tells); the message carries the kernel's extended ack. */
typedef struct net_nl net_nl;

/* Opens a socket in the namespace netns_fd refers to, or in the caller's when netns_fd < 0. */
int net_nl_open (int netns_fd, net_nl **out, berr **err);
void net_nl_close (net_nl *nl);

/* A socket (socket(2) domain and type, O_CLOEXEC) created inside the namespace netns_fd: it stays
 * bound to that namespace, so a daemon can serve or probe inside a task's network. */
int net_socket_in_netns (int netns_fd, int domain, int type, berr **err);

/* ifindex of name (> 0), or -1 with ENODEV. */
int net_link_index (net_nl *nl, const char *name, berr **err);
/* ifindex of the link whose hardware address is mac, its name into name (may be NULL); -1 with
 * ENODEV when no link has it. Bridges are skipped: one takes the MAC of a port. */
int net_link_find_by_mac (net_nl *nl, const uint8_t mac[6], char name[IFNAMSIZ], berr **err);
/* The hardware address of a link. */
int net_link_get_mac (net_nl *nl, int ifindex, uint8_t mac[6], berr **err);
/* 1 when the link has carrier now and the kernel's link watcher has processed it (IFF_LOWER_UP,
 * set asynchronously after the change; only then does the link pass packets), else 0. */
int net_link_oper_up (net_nl *nl, int ifindex, berr **err);
/* 1 when ifindex is a bridge port in the forwarding state, else 0. */
int net_link_port_forwarding (net_nl *nl, int ifindex, berr **err);
/* Names of every link, newly allocated NULL-terminated (free each, then the array). */
int net_link_list (net_nl *nl, char ***names, berr **err);

/* A veth pair: name here, peer in peer_netns_fd (< 0: the same namespace). */
int net_link_add_veth (net_nl *nl, const char *name, const char *peer, int peer_netns_fd,
                       berr **err);
int net_link_add_bridge (net_nl *nl, const char *name, berr **err);
/* A macvlan in bridge mode on parent_ifindex with hardware address mac. */
int net_link_add_macvlan (net_nl *nl, const char *name, int parent_ifindex, const uint8_t mac[6],
                          berr **err);
int net_link_delete (net_nl *nl, int ifindex, berr **err);
int net_link_set_up (net_nl *nl, int ifindex, bool up, berr **err);
/* The kernel only renames a link that is down. */
int net_link_rename (net_nl *nl, int ifindex, const char *name, berr **err);
int net_link_set_mtu (net_nl *nl, int ifindex, unsigned mtu, berr **err);
/* Sets the hardware address (a bridge given one keeps it as ports come and go). */
int net_link_set_mac (net_nl *nl, int ifindex, const uint8_t mac[6], berr **err);
/* Enslaves ifindex to the bridge master_ifindex; 0 releases it. */
int net_link_set_master (net_nl *nl, int ifindex, int master_ifindex, berr **err);
/* Hairpin mode of a bridge port: the bridge may send a frame back out of the port it came in by
 * (a container reaching itself through a host address, with the bridge netfilter hooks on). */
int net_link_set_hairpin (net_nl *nl, int ifindex, bool on, berr **err);
/* Moves ifindex into netns_fd and, when new_name is not NULL, renames it there in the same
 * step (so "eth0" never has to exist in the source namespace). */
int net_link_move (net_nl *nl, int ifindex, int netns_fd, const char *new_name, berr **err);

int net_addr_add (net_nl *nl, int ifindex, struct in_addr addr, unsigned prefixlen, berr **err);
int net_addr_del (net_nl *nl, int ifindex, struct in_addr addr, unsigned prefixlen, berr **err);
/* Default route in the main table via gw (out of ifindex when > 0). */
int net_route_add_default (net_nl *nl, struct in_addr gw, int ifindex, berr **err);
int net_route_del_default (net_nl *nl, struct in_addr gw, int ifindex, berr **err);
/* A blackhole route for dst/prefixlen: the kernel refuses to send there (EINVAL to callers). */
int net_route_add_blackhole (net_nl *nl, struct in_addr dst, unsigned prefixlen, berr **err);
int net_route_del_blackhole (net_nl *nl, struct in_addr dst, unsigned prefixlen, berr **err);

/* Parses "a:b:c:d:e:f" (hex, either case). */
int net_parse_mac (const char *s, uint8_t mac[6], berr **err);

/* ---- named network namespaces (net/netns.c) -------------------------------------------------
 * A namespace is pinned by a bind mount of its nsfs file at <run_dir>/<name>, so it outlives
 * every process in it and the agent itself (docs/networking.md). run_dir NULL means
 * NET_DEFAULT_NETNS_DIR. Names: 1-64 characters of [A-Za-z0-9_.-], not starting with '.'. */
#define NET_DEFAULT_NETNS_DIR "/run/berth/netns"

bool net_netns_name_valid (const char *name);
/* Creates and pins a new namespace with lo up; EEXIST if name is already pinned. */
int net_netns_create (const char *run_dir, const char *name, berr **err);
/* An O_CLOEXEC fd of the pinned namespace (usable with setns and net_nl_open); ENOENT if none. */
int net_netns_open (const char *run_dir, const char *name, berr **err);
/* Newly allocated "<run_dir>/<name>" (for an OCI spec's network namespace path). */
char *net_netns_path (const char *run_dir, const char *name);
/* Unpins and removes; a missing name is not an error. The namespace dies with its last user. */
int net_netns_delete (const char *run_dir, const char *name, berr **err);
/* Names pinned now (newly allocated NULL-terminated array), for reconcile after a restart. */
int net_netns_list (const char *run_dir, char ***names, berr **err);

/* ---- IPv4 address management (net/ipam.c) ---------------------------------------------------
 * Addresses of one subnet handed to owners (e.g. "<task arn>/<container>"), persisted durably in
 * a state file on every change (format in docs/networking.md). */
typedef struct net_ipam net_ipam;

/* Loads or starts state_path for subnet "a.b.c.d/len" (8 <= len <= 30). gateway NULL reserves
 * the first host address. A state file for another subnet, or a corrupt one, is an error. */
int net_ipam_open (const char *state_path, const char *subnet, const char *gateway, net_ipam **out,
                   berr **err);
void net_ipam_free (net_ipam *ipam);
/* The owner's address: the one it already holds, else a free one (persisted before returning).
 * ENOSPC when the subnet is full. */
int net_ipam_allocate (net_ipam *ipam, const char *owner, struct in_addr *out, berr **err);
/* Returns 1 if owner held an address (now free), 0 if it held none. */
int net_ipam_release (net_ipam *ipam, const char *owner, berr **err);
/* 1 and *out if owner holds an address, else 0. */
int net_ipam_lookup (const net_ipam *ipam, const char *owner, struct in_addr *out);
size_t net_ipam_count (const net_ipam *ipam);
struct in_addr net_ipam_gateway (const net_ipam *ipam);
unsigned net_ipam_prefixlen (const net_ipam *ipam);
/* The owner of allocation i (0 <= i < net_ipam_count), valid until the next change: for
 * reconcile, which releases the allocations of owners that are gone. */
const char *net_ipam_owner_at (const net_ipam *ipam, size_t i);

/* ---- task network modes (net/mode.c) --------------------------------------------------------*/
enum net_mode
{
  NET_MODE_HOST,   /* the host's namespace, nothing to set up */
  NET_MODE_NONE,   /* a namespace of the task's own with only lo */
  NET_MODE_BRIDGE, /* a namespace per container on Berth's bridge (net_bridge_setup) */
  NET_MODE_AWSVPC, /* a namespace per task holding its ENI (net_awsvpc_setup) */
};

/* A task's networkMode: "host", "none", "bridge" or "awsvpc"; NULL or "" is "bridge" (ECS's
 * default on Linux). Anything else is EINVAL naming the value. */
int net_mode_parse (const char *s, enum net_mode *out, berr **err);
/* The networkMode text of mode ("host", ...). */
const char *net_mode_name (enum net_mode mode);

/* Sets up a host or none task's network; task_key names its namespace (net_netns_name_valid,
 * e.g. the task id from the ARN). *netns_path gets the namespace path for the containers' spec
 * (newly allocated) or NULL for "use the host's". Calling it again for a set-up task is a no-op.
 * bridge and awsvpc need their own inputs (net_bridge_setup, net_awsvpc_setup): EINVAL here. */
int net_task_setup (const char *run_dir, enum net_mode mode, const char *task_key,
                    char **netns_path, berr **err);
/* Undoes exactly what net_task_setup made; a task with nothing set up is not an error. */
int net_task_teardown (const char *run_dir, enum net_mode mode, const char *task_key, berr **err);

/* ---- Berth's nftables table (net/nft.c, net/nft_parse.c) -------------------------------------
 * One table, "ip berth", holds every rule Berth makes (layout in docs/networking.md); nothing else
 * in the ruleset is touched. A context acts in one network namespace, whatever namespace its
 * caller's thread is in later (rules, and the trial binds that find ports in use). Every rule
 * carries a comment naming what it is for, which is how rules are found again (to make adds
 * idempotent, to remove exactly, to reconcile). */
typedef struct net_nft net_nft;

#define NET_NFT_TABLE "berth"
/* Owners (the task id) follow net_netns_name_valid: 1-64 of [A-Za-z0-9_.-]. */
#define NET_NFT_OWNER_MAX 64

/* Opens a context acting in the namespace netns_fd refers to, or the caller's when < 0. */
int net_nft_open (int netns_fd, net_nft **out, berr **err);
void net_nft_close (net_nft *nft);
/* Creates the table and its chains if missing and (re)writes the hooks' jumps: idempotent. */
int net_nft_ensure (net_nft *nft, berr **err);
/* Deletes the whole table; a missing table is not an error. */
int net_nft_delete_table (net_nft *nft, berr **err);

/* A published port: host_port on any local address, protocol IPPROTO_TCP or IPPROTO_UDP,
 * forwarded to addr:port. */
struct net_nft_port
{
  char owner[NET_NFT_OWNER_MAX + 1];
  int proto;
  uint16_t host_port;
  struct in_addr addr;
  uint16_t port;
};

/* Inclusive host port range for dynamic ports (ECS_DYNAMIC_HOST_PORT_RANGE). */
struct net_port_range
{
  uint16_t lo, hi;
};

/* Publishes m. host_port 0 takes a free port of dyn (required then) and writes it into m; the
 * owner's existing mapping to the same proto, addr and port is returned again (a retry). A static
 * port is EADDRINUSE, naming the holder, when another mapping (any owner) holds it or a socket is
 * bound to it in this namespace; ENOSPC when dyn has no free port. Idempotent. */
int net_nft_port_add (net_nft *nft, struct net_nft_port *m, const struct net_port_range *dyn,
                      berr **err);
/* Removes every mapping of owner; returns how many were removed (0 is fine). */
int net_nft_ports_remove (net_nft *nft, const char *owner, berr **err);

/* Masquerades subnet ("a.b.c.d/len") leaving through any interface but bridge, and traffic from
 * subnet to subnet that a published port DNATed (hairpin: the reply must come back through the
 * host), and lets the bridge's traffic through the forward hook. Idempotent; remove undoes
 * exactly that. */
int net_nft_masquerade_add (net_nft *nft, const char *subnet, const char *bridge, berr **err);
int net_nft_masquerade_remove (net_nft *nft, const char *subnet, const char *bridge, berr **err);

/* Drops packets from subnet to dst (e.g. 169.254.169.254) before routing. Idempotent. */
int net_nft_block_add (net_nft *nft, const char *subnet, struct in_addr dst, berr **err);
int net_nft_block_remove (net_nft *nft, const char *subnet, struct in_addr dst, berr **err);

/* What Berth's table holds now, for reconcile after a restart. */
struct net_nft_masq
{
  char subnet[19];
  char bridge[IFNAMSIZ];
};
struct net_nft_block
{
  char subnet[19];
  struct in_addr dst;
};
struct net_nft_listing
{
  bool exists; /* false: no table at all */
  struct net_nft_port *ports;
  size_t n_ports;
  struct net_nft_masq *masqs;
  size_t n_masqs;
  struct net_nft_block *blocks;
  size_t n_blocks;
};
int net_nft_list (net_nft *nft, struct net_nft_listing *out, berr **err);
void net_nft_listing_clear (struct net_nft_listing *l);

/* The kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range of the caller's netns). */
int net_kernel_port_range (struct net_port_range *out, berr **err);
/* "lo-hi", 1 <= lo <= hi <= 65535 (the ECS_DYNAMIC_HOST_PORT_RANGE syntax). */
int net_port_range_parse (const char *s, struct net_port_range *out, berr **err);
/* The default dynamic range, outside the kernel's so a published port never collides with an
 * ephemeral one: the ports above it when there are at least 1000 (61000-65535 for Linux's default
 * 32768-60999), else the larger of the gaps above and below it (ports >= 1024). EINVAL if none. */
int net_port_range_default (const struct net_port_range *kernel, struct net_port_range *out,
                            berr **err);

/* ---- link-local addresses a task sees (net/endpoint.c) -------------------------------------
 * The agent serves task metadata and credentials at 169.254.170.2 from a socket it holds inside
 * each task's network namespace: addr/32 goes on that namespace's lo and a non-blocking TCP
 * socket is bound there. Nothing changes on the host; a task can reach only its own socket, and
 * the accepting socket identifies the task. Returns the listening fd (O_CLOEXEC). Works for every
 * mode with a namespace of the task's own (none, bridge, awsvpc); docs/networking.md. */
#define NET_TASK_ENDPOINT_ADDR "169.254.170.2"
int net_task_endpoint_listen (int netns_fd, struct in_addr addr, uint16_t port, berr **err);

/* Instance metadata (169.254.169.254): net_block_imds puts a blackhole route for it in the
 * namespace netns_fd (connect fails at once with EINVAL). Idempotent. */
#define NET_IMDS_ADDR "169.254.169.254"
int net_block_imds (int netns_fd, berr **err);

/* ---- awsvpc: the task's own ENI (net/eni.c, net/awsvpc.c) -----------------------------------
 * One pinned namespace per task, shared by its containers, holding the ENI as eth0
 * (docs/networking.md, "awsvpc"). 169.254.170.2 is net_task_endpoint_listen's, as for any mode. */

/* A directly connected route (scope link) for dst/prefixlen out of ifindex (delete: ifindex 0
 * matches any link). */
int net_route_add_link (net_nl *nl, struct in_addr dst, unsigned prefixlen, int ifindex,
                        berr **err);
int net_route_del_link (net_nl *nl, struct in_addr dst, unsigned prefixlen, int ifindex,
                        berr **err);

/* Like net_link_add_macvlan, but the link is made directly inside netns_fd (named name there):
 * no move between namespaces, which costs an RCU grace period under the RTNL lock. */
int net_link_add_macvlan_in (net_nl *nl, const char *name, int parent_ifindex, const uint8_t mac[6],
                             int netns_fd, berr **err);
/* The link's IFF_* flags (IFF_RUNNING once the kernel has the carrier up and the link usable). */
int net_link_flags (net_nl *nl, int ifindex, unsigned *flags, berr **err);

#define NET_ENI_MAX_ADDRS 16
#define NET_ENI_MAX_DNS 8
#define NET_ENI_MAX_SEARCH 6
#define NET_DNS_NAME_MAX 253

/* An ENI as ACS describes it (ElasticNetworkInterface). */
struct net_eni
{
  uint8_t mac[6];
  struct in_addr addrs[NET_ENI_MAX_ADDRS]; /* the primary first */
  size_t n_addrs;                          /* >= 1 */
  struct in_addr gateway;                  /* from subnetGatewayIpv4Address "a.b.c.d/len" */
  unsigned prefixlen;                      /* the subnet's, given to every address */
  struct in_addr dns[NET_ENI_MAX_DNS];     /* domainNameServers */
  size_t n_dns;
  char search[NET_ENI_MAX_SEARCH][NET_DNS_NAME_MAX + 1]; /* domainName */
  size_t n_search;
  char hostname[NET_DNS_NAME_MAX + 1]; /* privateDnsName, "" when absent */
};

/* Parses and validates an ElasticNetworkInterface object (macAddress, ipv4Addresses
 * [{privateAddress, primary}], subnetGatewayIpv4Address, domainNameServers, domainName,
 * privateDnsName; other keys ignored). Every address must lie in the gateway's subnet; names
 * are DNS names (letters, digits, '-', '.'). EINVAL naming the bad key. */
int net_eni_from_json (const char *json, size_t len, struct net_eni *out, berr **err);
/* The task's resolv.conf and hostname file text (newly allocated). */
char *net_eni_resolv_conf (const struct net_eni *eni);
char *net_eni_hostname_file (const struct net_eni *eni);

struct net_awsvpc_config
{
  int host_netns_fd;     /* the host's namespace; -1: the caller's */
  const char *run_dir;   /* netns pins (NULL: NET_DEFAULT_NETNS_DIR) */
  const char *state_dir; /* what setup made, per task (volatile: under /run) */
  const char *parent;    /* on-prem: macvlan parent when no link has the MAC; NULL: none */
  bool block_imds;       /* ECS_AWSVPC_BLOCK_IMDS: blackhole 169.254.169.254 */
};

/* Sets up task_key's namespace (net_netns_name_valid) with eni: the host's link with its MAC is
 * moved in, else a macvlan on cfg->parent is made with it; eth0 with the addresses and the
 * default route; the IMDS blackhole; resolv.conf and hostname written atomically into task_dir.
 * *netns_path gets the pin (newly allocated). Idempotent: a finished setup is a no-op, an
 * interrupted one is undone and redone. */
int net_awsvpc_setup (const struct net_awsvpc_config *cfg, const char *task_key,
                      const struct net_eni *eni, const char *task_dir, char **netns_path,
                      berr **err);
/* Undoes exactly what setup made: a moved ENI goes back to the host under its name (down, no
 * addresses), the namespace is unpinned (a macvlan dies with it), the record is removed.
 * Nothing set up is not an error; an interrupted teardown can be repeated. */
int net_awsvpc_teardown (const struct net_awsvpc_config *cfg, const char *task_key, berr **err);
/* After a restart: tears down every task recorded in cfg->state_dir that is not in live_keys
 * (NULL-terminated). Records of the previous format (version 1) are torn down the same way. */
int net_awsvpc_reconcile (const struct net_awsvpc_config *cfg, const char *const *live_keys,
                          berr **err);

/* ---- bridge mode (net/bridge.c) --------------------------------------------------------------
 * ECS bridge mode: each container (an "endpoint", named by a key) gets a network namespace of its
 * own, pinned as <run_dir>/<key>, with one veth: the host end on Berth's bridge, the other end
 * eth0 in the container's namespace with an address from the bridge's IPAM (owner: the key) and
 * a default route via the bridge; its published ports are rules of Berth's nft table (owner: the
 * key). Keys follow net_netns_name_valid (e.g. "<task id>.<container index>"). A handle is used
 * by one thread at a time. Defaults, port allocation, host access and reconcile in
 * docs/networking.md. */
typedef struct net_bridge net_bridge;

#define NET_BRIDGE_DEFAULT_NAME "berth0"
#define NET_BRIDGE_DEFAULT_SUBNET "172.30.232.0/22"
/* On /run like the namespace pins: the allocations describe kernel objects a reboot wipes, so
 * their record must go with them, and must survive an agent restart (docs/networking.md). */
#define NET_BRIDGE_DEFAULT_IPAM "/run/berth/bridge-ipam"

struct net_bridge_config
{
  const char *name;      /* the bridge link; NULL: NET_BRIDGE_DEFAULT_NAME */
  const char *subnet;    /* "a.b.c.d/len"; NULL: NET_BRIDGE_DEFAULT_SUBNET; gateway = first host */
  const char *ipam_path; /* the IPAM state file; NULL: NET_BRIDGE_DEFAULT_IPAM */
  const char *run_dir;   /* where endpoints' namespaces are pinned; NULL: NET_DEFAULT_NETNS_DIR */
  int host_netns_fd;     /* the namespace the bridge lives in; < 0: the caller's */
  struct net_port_range dynamic; /* hostPort 0 range; {0, 0}: net_port_range_default of the
                                    caller's namespace's ephemeral range */
};

/* hostPort 0 asks for a dynamic port. proto is IPPROTO_TCP or IPPROTO_UDP. */
struct net_port_mapping
{
  int proto;
  uint16_t container_port;
  uint16_t host_port;
};

/* One of the task's networkBindings. */
struct net_port_binding
{
  int proto;
  uint16_t container_port;
  uint16_t host_port;
  char bind_ip[INET_ADDRSTRLEN]; /* "0.0.0.0": every address of the host */
};

struct net_bridge_endpoint
{
  char *netns_path; /* for the containers' OCI spec */
  struct in_addr addr;
  struct net_port_binding *bindings; /* in the order of the mappings */
  size_t n_bindings;
};
void net_bridge_endpoint_clear (struct net_bridge_endpoint *ep);

/* Makes (idempotently) the bridge with the gateway address, turns on ip_forward in the host
 * namespace, ensures Berth's nft table and the subnet's masquerade, and opens the IPAM. */
int net_bridge_open (const struct net_bridge_config *cfg, net_bridge **out, berr **err);
/* Frees the handle only: the bridge and every endpoint stay. */
void net_bridge_close (net_bridge *br);
/* Deletes the bridge link and the subnet's masquerade (endpoints should be torn down first). */
int net_bridge_remove (net_bridge *br, berr **err);
/* The gateway (the bridge's address) and the dynamic port range in use. */
struct in_addr net_bridge_gateway (const net_bridge *br);
struct net_port_range net_bridge_dynamic_range (const net_bridge *br);

/* Sets up endpoint key with ports published; *out gets the namespace path, the address and the
 * bindings (dynamic ports chosen). Idempotent: a set-up endpoint gets the same result again. A
 * static host port held by another endpoint or bound by a host socket is EADDRINUSE naming the
 * port; on any failure everything this endpoint had is removed again. */
int net_bridge_setup (net_bridge *br, const char *key, const struct net_port_mapping *ports,
                      size_t n_ports, struct net_bridge_endpoint *out, berr **err);
/* Removes exactly what setup made for key: its published ports and its namespace pin now, its
 * address last (so an interrupted teardown leaves the IPAM record for reconcile). The veth pair
 * goes with the namespace, which the kernel frees once the containers' processes are gone too:
 * the host end disappears shortly after return, not before (docs/networking.md). A key with
 * nothing set up is fine. */
int net_bridge_teardown (net_bridge *br, const char *key, berr **err);
/* After an agent restart: tears down every endpoint found (IPAM allocations, published ports,
 * Berth veths) whose key is not in live[0..n_live), leaving live ones intact. Returns how many
 * endpoints were removed. */
int net_bridge_reconcile (net_bridge *br, const char *const *live, size_t n_live, berr **err);
/* The host end's name for key: "bv" and 13 base32 digits of a 64-bit hash of the key. */
void net_bridge_veth_name (const char *key, char name[IFNAMSIZ]);

#endif
