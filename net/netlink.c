/* Route netlink through libmnl: one request/ack helper with the kernel's extended ack, one dump
 * helper, and the link, address and route operations the task network modes are built from. */
#include "net/internal.h"
#include "net/net.h"

#include "lib/cleanup.h"
#include "lib/hex.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if_arp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Large enough for a page of dump replies (the kernel sizes them to the reader's buffer). */
#define NL_RECV_SIZE 32768

struct net_nl
{
  struct mnl_socket *sock;
  unsigned portid;
  unsigned seq;
};

/* A socket belongs to the namespace it was created in. To create one in another namespace we
 * setns in a short-lived thread rather than in the caller: the namespace of a thread dies with
 * it, so a failure half-way can never leave the caller's thread in the wrong namespace, and it
 * costs no fork. */
struct in_ns_job
{
  int netns_fd, domain, type;
  int fd, errnum;
  const char *failed;
};

static void *in_ns_thread (void *arg)
{
  struct in_ns_job *job = arg;
  if (setns (job->netns_fd, CLONE_NEWNET) < 0)
    {
      job->errnum = errno;
      job->failed = "setns";
      return NULL;
    }
  job->fd = socket (job->domain, job->type | SOCK_CLOEXEC, 0);
  if (job->fd < 0)
    {
      job->errnum = errno;
      job->failed = "socket";
    }
  return NULL;
}

int net_socket_in_netns (int netns_fd, int domain, int type, berr **err)
{
  struct in_ns_job job = { netns_fd, domain, type, -1, 0, NULL };
  if (netns_fd < 0)
    {
      int fd = socket (domain, type | SOCK_CLOEXEC, 0);
      return fd < 0 ? berr_sys (err, "socket") : fd;
    }
  pthread_t t;
  int r = pthread_create (&t, NULL, in_ns_thread, &job);
  if (r != 0)
    return berr_sysn (err, r, "start a thread to enter a network namespace");
  pthread_join (t, NULL);
  if (job.fd < 0)
    return berr_sysn (err, job.errnum, "%s in network namespace", job.failed);
  return job.fd;
}

int net_nl_open (int netns_fd, net_nl **out, berr **err)
{
  _cleanup_close_ int fd = net_socket_in_netns (netns_fd, AF_NETLINK, SOCK_RAW, err);
  if (fd < 0)
    return berr_wrap (err, "open rtnetlink");
  /* NETLINK_ROUTE is protocol 0 of AF_NETLINK, so the plain socket() above is an rtnetlink
   * socket. Extended acks give the kernel's reason ("Link not found", "Invalid prefix...");
   * capped acks do not echo our request back. Both are best effort on old kernels. */
  int one = 1;
  setsockopt (fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt (fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  struct mnl_socket *sock = mnl_socket_fdopen (fd);
  if (sock == NULL)
    return berr_sys (err, "open rtnetlink");
  steal_fd (&fd);
  if (mnl_socket_bind (sock, 0, MNL_SOCKET_AUTOPID) < 0)
    {
      int e = errno;
      mnl_socket_close (sock);
      return berr_sysn (err, e, "bind rtnetlink");
    }
  net_nl *nl = calloc (1, sizeof *nl);
  if (nl == NULL)
    {
      mnl_socket_close (sock);
      return berr_make (err, ENOMEM, "open rtnetlink: out of memory");
    }
  nl->sock = sock;
  nl->portid = mnl_socket_get_portid (sock);
  nl->seq = (unsigned)time (NULL);
  *out = nl;
  return 0;
}

void net_nl_close (net_nl *nl)
{
  if (nl == NULL)
    return;
  mnl_socket_close (nl->sock);
  free (nl);
}

/* The kernel's message from an NLMSG_ERROR carrying extended-ack attributes, or NULL. */
static const char *ext_ack_msg (const struct nlmsghdr *nlh)
{
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
    return NULL;
  const struct nlmsgerr *e = mnl_nlmsg_get_payload (nlh);
  size_t off = sizeof *e;
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
    off += mnl_nlmsg_get_payload_len (&e->msg);
  if (mnl_nlmsg_get_payload_len (nlh) < off)
    return NULL;
  const struct nlattr *attr;
  const char *msg = NULL;
  mnl_attr_for_each_payload ((const void *)((const char *)e + off),
                             mnl_nlmsg_get_payload_len (nlh) - off)
  {
    if (mnl_attr_get_type (attr) == NLMSGERR_ATTR_MSG
        && mnl_attr_validate (attr, MNL_TYPE_NUL_STRING) == 0)
      msg = mnl_attr_get_str (attr);
  }
  return msg;
}

static int nl_error (berr **err, const struct nlmsghdr *nlh, const char *what)
{
  const struct nlmsgerr *e = mnl_nlmsg_get_payload (nlh);
  const char *msg = ext_ack_msg (nlh);
  if (msg != NULL && *msg != '\0')
    return berr_sysn (err, -e->error, "%s: %s", what, msg);
  return berr_sysn (err, -e->error, "%s", what);
}

/* Sends one request and reads replies until its ack (or NLMSG_DONE for a dump), handing other
 * messages to cb. Replies to other sequence numbers (stale ones) are skipped. */
static int nl_talk (net_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data, const char *what,
                    berr **err)
{
  nlh->nlmsg_seq = ++nl->seq;
  nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  if (mnl_socket_sendto (nl->sock, nlh, nlh->nlmsg_len) < 0)
    return berr_sys (err, "%s: send", what);
  _cleanup_free_ char *buf = malloc (NL_RECV_SIZE);
  if (buf == NULL)
    return berr_make (err, ENOMEM, "%s: out of memory", what);
  for (;;)
    {
      ssize_t n = mnl_socket_recvfrom (nl->sock, buf, NL_RECV_SIZE);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return berr_sys (err, "%s: receive", what);
      int len = (int)n;
      for (const struct nlmsghdr *m = (void *)buf; mnl_nlmsg_ok (m, len);
           m = mnl_nlmsg_next (m, &len))
        {
          if (m->nlmsg_seq != nl->seq || m->nlmsg_pid != nl->portid)
            continue;
          if (m->nlmsg_type == NLMSG_DONE)
            {
              /* A dump that failed part-way says so in NLMSG_DONE's payload. */
              int32_t status = 0;
              if (mnl_nlmsg_get_payload_len (m) >= sizeof status)
                memcpy (&status, mnl_nlmsg_get_payload (m), sizeof status);
              return status < 0 ? berr_sysn (err, -status, "%s", what) : 0;
            }
          if (m->nlmsg_type == NLMSG_ERROR)
            {
              const struct nlmsgerr *e = mnl_nlmsg_get_payload (m);
              return e->error == 0 ? 0 : nl_error (err, m, what);
            }
          if (cb != NULL && cb (m, data) < 0)
            return berr_make (err, EPROTO, "%s: unexpected reply", what);
        }
    }
}

/* A request buffer with its header and first struct, zeroed. */
struct nl_req
{
  char buf[1024];
  struct nlmsghdr *nlh;
};

static void *req_start (struct nl_req *r, uint16_t type, uint16_t flags, size_t hdrlen)
{
  memset (r->buf, 0, sizeof r->buf);
  r->nlh = mnl_nlmsg_put_header (r->buf);
  r->nlh->nlmsg_type = type;
  r->nlh->nlmsg_flags = flags;
  return mnl_nlmsg_put_extra_header (r->nlh, hdrlen);
}

static struct ifinfomsg *link_req (struct nl_req *r, uint16_t type, uint16_t flags, int ifindex)
{
  struct ifinfomsg *ifi = req_start (r, type, flags, sizeof *ifi);
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  return ifi;
}

static int check_name (const char *name, berr **err)
{
  if (name == NULL || *name == '\0' || strlen (name) >= IFNAMSIZ || strchr (name, '/') != NULL)
    return berr_make (err, EINVAL, "invalid link name `%s`", name ? name : "");
  return 0;
}

/* ---- lookups ---- */

struct link_walk
{
  const uint8_t *mac; /* find by MAC when set */
  int want_index;     /* or report the MAC of this index */
  int found;          /* ifindex found */
  char name[IFNAMSIZ];
  uint8_t mac_out[6];
  char **names; /* or collect every name */
  size_t n_names;
  bool oom;
};

/* The attributes of one RTM_NEWLINK that the walks look at. */
struct link_attrs
{
  const char *name, *kind;
  const uint8_t *addr;
};

static void parse_link_attrs (const struct nlmsghdr *nlh, struct link_attrs *a)
{
  const struct nlattr *attr, *inner;
  mnl_attr_for_each (attr, nlh, sizeof (struct ifinfomsg))
  {
    int type = mnl_attr_get_type (attr);
    if (type == IFLA_IFNAME && mnl_attr_validate (attr, MNL_TYPE_NUL_STRING) == 0)
      a->name = mnl_attr_get_str (attr);
    else if (type == IFLA_ADDRESS && mnl_attr_get_payload_len (attr) == 6)
      a->addr = mnl_attr_get_payload (attr);
    else if (type == IFLA_LINKINFO && mnl_attr_validate (attr, MNL_TYPE_NESTED) == 0)
      mnl_attr_for_each_nested (inner, attr)
      {
        if (mnl_attr_get_type (inner) == IFLA_INFO_KIND
            && mnl_attr_validate (inner, MNL_TYPE_NUL_STRING) == 0)
          a->kind = mnl_attr_get_str (inner);
      }
  }
}

static void collect_name (struct link_walk *w, const char *name)
{
  char **nv = realloc (w->names, (w->n_names + 2) * sizeof *nv);
  if (nv == NULL)
    {
      w->oom = true;
      return;
    }
  w->names = nv;
  if ((nv[w->n_names] = strdup (name)) == NULL)
    {
      w->oom = true;
      return;
    }
  nv[++w->n_names] = NULL;
}

static int link_walk_cb (const struct nlmsghdr *nlh, void *data)
{
  struct link_walk *w = data;
  if (nlh->nlmsg_type != RTM_NEWLINK)
    return MNL_CB_OK;
  const struct ifinfomsg *ifi = mnl_nlmsg_get_payload (nlh);
  struct link_attrs a = { NULL, NULL, NULL };
  parse_link_attrs (nlh, &a);
  if (a.name == NULL)
    return MNL_CB_OK;
  if (w->names != NULL)
    {
      collect_name (w, a.name);
      return MNL_CB_OK;
    }
  /* A bridge takes the MAC of one of its ports: by MAC we always mean the port (an ENI). */
  bool hit = w->mac ? a.addr != NULL && memcmp (a.addr, w->mac, 6) == 0
                          && (a.kind == NULL || strcmp (a.kind, "bridge") != 0)
                    : ifi->ifi_index == w->want_index;
  if (hit && w->found == 0)
    {
      w->found = ifi->ifi_index;
      snprintf (w->name, sizeof w->name, "%s", a.name);
      if (a.addr != NULL)
        memcpy (w->mac_out, a.addr, 6);
    }
  return MNL_CB_OK;
}

static int link_dump (net_nl *nl, struct link_walk *w, berr **err)
{
  struct nl_req r;
  link_req (&r, RTM_GETLINK, NLM_F_DUMP, 0);
  return nl_talk (nl, r.nlh, link_walk_cb, w, "list links", err);
}

static int index_cb (const struct nlmsghdr *nlh, void *data)
{
  if (nlh->nlmsg_type == RTM_NEWLINK)
    *(int *)data = ((const struct ifinfomsg *)mnl_nlmsg_get_payload (nlh))->ifi_index;
  return MNL_CB_OK;
}

int net_link_index (net_nl *nl, const char *name, berr **err)
{
  if (check_name (name, err) < 0)
    return -1;
  struct nl_req r;
  link_req (&r, RTM_GETLINK, 0, 0);
  mnl_attr_put_strz (r.nlh, IFLA_IFNAME, name);
  /* A GETLINK by name answers with the link, then the ack (or an error, ENODEV). */
  int found = 0;
  char what[64];
  snprintf (what, sizeof what, "find link `%s`", name);
  if (nl_talk (nl, r.nlh, index_cb, &found, what, err) < 0)
    return -1;
  if (found <= 0)
    return berr_make (err, ENODEV, "%s: no such link", what);
  return found;
}

/* IFF_LOWER_UP of <linux/if.h>, which cannot be included next to <net/if.h>. */
#define LINK_LOWER_UP 0x10000u
/* BR_STATE_FORWARDING of <linux/if_bridge.h> (which pulls in <linux/if.h> too). */
#define LINK_BR_STATE_FORWARDING 3

/* 1 when the link has carrier now (IFLA_CARRIER) and the link watcher has seen it (IFF_LOWER_UP,
 * which it sets when it processes the change); stays 0 on a link without either. */
static int carrier_cb (const struct nlmsghdr *nlh, void *data)
{
  if (nlh->nlmsg_type != RTM_NEWLINK)
    return MNL_CB_OK;
  const struct ifinfomsg *ifi = mnl_nlmsg_get_payload (nlh);
  const struct nlattr *attr;
  bool carrier = false;
  mnl_attr_for_each (attr, nlh, sizeof *ifi)
  {
    if (mnl_attr_get_type (attr) == IFLA_CARRIER && mnl_attr_validate (attr, MNL_TYPE_U8) == 0)
      carrier = mnl_attr_get_u8 (attr) != 0;
  }
  *(int *)data = carrier && (ifi->ifi_flags & LINK_LOWER_UP);
  return MNL_CB_OK;
}

int net_link_oper_up (net_nl *nl, int ifindex, berr **err)
{
  struct nl_req r;
  link_req (&r, RTM_GETLINK, 0, ifindex);
  int up = 0;
  char what[64];
  snprintf (what, sizeof what, "get the state of link %d", ifindex);
  if (nl_talk (nl, r.nlh, carrier_cb, &up, what, err) < 0)
    return -1;
  return up;
}

/* The spanning tree state of one bridge port, from the AF_BRIDGE link dump (IFLA_PROTINFO). */
struct port_walk
{
  int ifindex;
  int state; /* -1: not seen */
};

static int port_state_cb (const struct nlmsghdr *nlh, void *data)
{
  struct port_walk *w = data;
  const struct ifinfomsg *ifi = mnl_nlmsg_get_payload (nlh);
  if (nlh->nlmsg_type != RTM_NEWLINK || ifi->ifi_index != w->ifindex)
    return MNL_CB_OK;
  const struct nlattr *attr, *inner;
  mnl_attr_for_each (attr, nlh, sizeof *ifi)
  {
    if ((mnl_attr_get_type (attr) & NLA_TYPE_MASK) != IFLA_PROTINFO
        || mnl_attr_validate (attr, MNL_TYPE_NESTED) < 0)
      continue;
    mnl_attr_for_each_nested (inner, attr)
    {
      if (mnl_attr_get_type (inner) == IFLA_BRPORT_STATE
          && mnl_attr_validate (inner, MNL_TYPE_U8) == 0)
        w->state = mnl_attr_get_u8 (inner);
    }
  }
  return MNL_CB_OK;
}

int net_link_port_forwarding (net_nl *nl, int ifindex, berr **err)
{
  struct nl_req r;
  struct ifinfomsg *ifi = link_req (&r, RTM_GETLINK, NLM_F_DUMP, 0);
  ifi->ifi_family = AF_BRIDGE;
  struct port_walk w = { ifindex, -1 };
  char what[64];
  snprintf (what, sizeof what, "get the bridge port state of link %d", ifindex);
  if (nl_talk (nl, r.nlh, port_state_cb, &w, what, err) < 0)
    return -1;
  return w.state == LINK_BR_STATE_FORWARDING;
}

int net_link_find_by_mac (net_nl *nl, const uint8_t mac[6], char name[IFNAMSIZ], berr **err)
{
  struct link_walk w = { .mac = mac };
  if (link_dump (nl, &w, err) < 0)
    return -1;
  if (w.found == 0)
    return berr_make (err, ENODEV, "no link with address %02x:%02x:%02x:%02x:%02x:%02x", mac[0],
                      mac[1], mac[2], mac[3], mac[4], mac[5]);
  if (name != NULL)
    memcpy (name, w.name, IFNAMSIZ);
  return w.found;
}

int net_link_get_mac (net_nl *nl, int ifindex, uint8_t mac[6], berr **err)
{
  struct link_walk w = { .want_index = ifindex };
  if (link_dump (nl, &w, err) < 0)
    return -1;
  if (w.found == 0)
    return berr_make (err, ENODEV, "no link with index %d", ifindex);
  memcpy (mac, w.mac_out, 6);
  return 0;
}

static int flags_cb (const struct nlmsghdr *nlh, void *data)
{
  if (nlh->nlmsg_type == RTM_NEWLINK)
    *(unsigned *)data = ((const struct ifinfomsg *)mnl_nlmsg_get_payload (nlh))->ifi_flags;
  return MNL_CB_OK;
}

int net_link_flags (net_nl *nl, int ifindex, unsigned *flags, berr **err)
{
  struct nl_req r;
  link_req (&r, RTM_GETLINK, 0, ifindex);
  char what[64];
  snprintf (what, sizeof what, "get flags of link %d", ifindex);
  *flags = 0;
  return nl_talk (nl, r.nlh, flags_cb, flags, what, err);
}

int net_link_list (net_nl *nl, char ***names, berr **err)
{
  struct link_walk w = { .names = calloc (1, sizeof (char *)) };
  if (w.names == NULL)
    return berr_make (err, ENOMEM, "list links: out of memory");
  int r = link_dump (nl, &w, err);
  if (r == 0 && w.oom)
    r = berr_make (err, ENOMEM, "list links: out of memory");
  if (r < 0)
    {
      for (size_t i = 0; i < w.n_names; i++)
        free (w.names[i]);
      free (w.names);
      return r;
    }
  *names = w.names;
  return 0;
}

/* ---- creating and changing links ---- */

/* Adds a link named name of kind; fill (may be NULL) adds the kind's IFLA_INFO_DATA. */
static int link_add (net_nl *nl, const char *name, const char *kind,
                     void (*fill) (struct nlmsghdr *, const void *), const void *arg,
                     void (*top) (struct nlmsghdr *, const void *), berr **err)
{
  if (check_name (name, err) < 0)
    return -1;
  struct nl_req r;
  link_req (&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
  mnl_attr_put_strz (r.nlh, IFLA_IFNAME, name);
  if (top != NULL)
    top (r.nlh, arg);
  struct nlattr *info = mnl_attr_nest_start (r.nlh, IFLA_LINKINFO);
  mnl_attr_put_strz (r.nlh, IFLA_INFO_KIND, kind);
  if (fill != NULL)
    {
      struct nlattr *data = mnl_attr_nest_start (r.nlh, IFLA_INFO_DATA);
      fill (r.nlh, arg);
      mnl_attr_nest_end (r.nlh, data);
    }
  mnl_attr_nest_end (r.nlh, info);
  char what[96];
  snprintf (what, sizeof what, "create %s link `%s`", kind, name);
  return nl_talk (nl, r.nlh, NULL, NULL, what, err);
}

struct veth_arg
{
  const char *peer;
  int peer_netns_fd;
};

static void veth_fill (struct nlmsghdr *nlh, const void *p)
{
  const struct veth_arg *a = p;
  struct nlattr *peer = mnl_attr_nest_start (nlh, VETH_INFO_PEER);
  struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header (nlh, sizeof *ifi);
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz (nlh, IFLA_IFNAME, a->peer);
  if (a->peer_netns_fd >= 0)
    mnl_attr_put_u32 (nlh, IFLA_NET_NS_FD, (uint32_t)a->peer_netns_fd);
  mnl_attr_nest_end (nlh, peer);
}

int net_link_add_veth (net_nl *nl, const char *name, const char *peer, int peer_netns_fd,
                       berr **err)
{
  if (check_name (peer, err) < 0)
    return -1;
  struct veth_arg a = { peer, peer_netns_fd };
  return link_add (nl, name, "veth", veth_fill, &a, NULL, err);
}

int net_link_add_bridge (net_nl *nl, const char *name, berr **err)
{
  return link_add (nl, name, "bridge", NULL, NULL, NULL, err);
}

struct macvlan_arg
{
  int parent;
  const uint8_t *mac;
  int netns_fd;
};

static void macvlan_top (struct nlmsghdr *nlh, const void *p)
{
  const struct macvlan_arg *a = p;
  mnl_attr_put_u32 (nlh, IFLA_LINK, (uint32_t)a->parent);
  mnl_attr_put (nlh, IFLA_ADDRESS, 6, a->mac);
  if (a->netns_fd >= 0)
    mnl_attr_put_u32 (nlh, IFLA_NET_NS_FD, (uint32_t)a->netns_fd);
}

static void macvlan_fill (struct nlmsghdr *nlh, const void *p)
{
  mnl_attr_put_u32 (nlh, IFLA_MACVLAN_MODE, MACVLAN_MODE_BRIDGE);
}

int net_link_add_macvlan (net_nl *nl, const char *name, int parent_ifindex, const uint8_t mac[6],
                          berr **err)
{
  struct macvlan_arg a = { parent_ifindex, mac, -1 };
  return link_add (nl, name, "macvlan", macvlan_fill, &a, macvlan_top, err);
}

int net_link_add_macvlan_in (net_nl *nl, const char *name, int parent_ifindex, const uint8_t mac[6],
                             int netns_fd, berr **err)
{
  struct macvlan_arg a = { parent_ifindex, mac, netns_fd };
  return link_add (nl, name, "macvlan", macvlan_fill, &a, macvlan_top, err);
}

int net_link_delete (net_nl *nl, int ifindex, berr **err)
{
  struct nl_req r;
  link_req (&r, RTM_DELLINK, 0, ifindex);
  char what[64];
  snprintf (what, sizeof what, "delete link %d", ifindex);
  return nl_talk (nl, r.nlh, NULL, NULL, what, err);
}

int net_link_set_up (net_nl *nl, int ifindex, bool up, berr **err)
{
  struct nl_req r;
  struct ifinfomsg *ifi = link_req (&r, RTM_NEWLINK, 0, ifindex);
  ifi->ifi_change = IFF_UP;
  ifi->ifi_flags = up ? IFF_UP : 0;
  char what[64];
  snprintf (what, sizeof what, "set link %d %s", ifindex, up ? "up" : "down");
  return nl_talk (nl, r.nlh, NULL, NULL, what, err);
}

int net_link_rename (net_nl *nl, int ifindex, const char *name, berr **err)
{
  if (check_name (name, err) < 0)
    return -1;
  struct nl_req r;
  link_req (&r, RTM_NEWLINK, 0, ifindex);
  mnl_attr_put_strz (r.nlh, IFLA_IFNAME, name);
  char what[64];
  snprintf (what, sizeof what, "rename link %d to `%s`", ifindex, name);
  return nl_talk (nl, r.nlh, NULL, NULL, what, err);
}

int net_link_set_mtu (net_nl *nl, int ifindex, unsigned mtu, berr **err)
{
  struct nl_req r;
  link_req (&r, RTM_NEWLINK, 0, ifindex);
  mnl_attr_put_u32 (r.nlh, IFLA_MTU, mtu);
  char what[64];
  snprintf (what, sizeof what, "set mtu %u on link %d", mtu, ifindex);
  return nl_talk (nl, r.nlh, NULL, NULL, what, err);
}

int net_link_set_mac (net_nl *nl, int ifindex, const uint8_t mac[6], berr **err)
{
  struct nl_req r;
  link_req (&r, RTM_NEWLINK, 0, ifindex);
  mnl_attr_put (r.nlh, IFLA_ADDRESS, 6, mac);
  char what[64];
  snprintf (what, sizeof what, "set the hardware address of link %d", ifindex);
  return nl_talk (nl, r.nlh, NULL, NULL, what, err);
}

int net_link_set_master (net_nl *nl, int ifindex, int master_ifindex, berr **err)
{
  struct nl_req r;
  link_req (&r, RTM_NEWLINK, 0, ifindex);
  mnl_attr_put_u32 (r.nlh, IFLA_MASTER, (uint32_t)master_ifindex);
  char what[64];
  snprintf (what, sizeof what, "attach link %d to %d", ifindex, master_ifindex);
  return nl_talk (nl, r.nlh, NULL, NULL, what, err);
}

int net_link_set_hairpin (net_nl *nl, int ifindex, bool on, berr **err)
{
  struct nl_req r;
  struct ifinfomsg *ifi = link_req (&r, RTM_SETLINK, 0, ifindex);
  ifi->ifi_family = AF_BRIDGE; /* handled by the port's bridge */
  /* Flagged nested: without the flag the bridge reads IFLA_PROTINFO as a bare port state. */
  struct nlattr *info = mnl_attr_nest_start (r.nlh, IFLA_PROTINFO | NLA_F_NESTED);
  mnl_attr_put_u8 (r.nlh, IFLA_BRPORT_MODE, on ? BRIDGE_MODE_HAIRPIN : 0);
  mnl_attr_nest_end (r.nlh, info);
  char what[64];
  snprintf (what, sizeof what, "turn hairpin mode %s on bridge port %d", on ? "on" : "off",
            ifindex);
  return nl_talk (nl, r.nlh, NULL, NULL, what, err);
}

int net_link_move (net_nl *nl, int ifindex, int netns_fd, const char *new_name, berr **err)
{
  if (new_name != NULL && check_name (new_name, err) < 0)
    return -1;
  struct nl_req r;
  link_req (&r, RTM_NEWLINK, 0, ifindex);
  mnl_attr_put_u32 (r.nlh, IFLA_NET_NS_FD, (uint32_t)netns_fd);
  if (new_name != NULL)
    mnl_attr_put_strz (r.nlh, IFLA_IFNAME, new_name);
  char what[64];
  snprintf (what, sizeof what, "move link %d to another namespace", ifindex);
  return nl_talk (nl, r.nlh, NULL, NULL, what, err);
}

/* ---- addresses and routes ---- */

static int addr_change (net_nl *nl, uint16_t type, int ifindex, struct in_addr addr,
                        unsigned prefixlen, berr **err)
{
  char ip[INET_ADDRSTRLEN], what[96];
  inet_ntop (AF_INET, &addr, ip, sizeof ip);
  snprintf (what, sizeof what, "%s address %s/%u on link %d",
            type == RTM_NEWADDR ? "add" : "delete", ip, prefixlen, ifindex);
  if (prefixlen > 32)
    return berr_make (err, EINVAL, "%s: bad prefix length", what);
  struct nl_req r;
  struct ifaddrmsg *ifa
      = req_start (&r, type, type == RTM_NEWADDR ? NLM_F_CREATE | NLM_F_EXCL : 0, sizeof *ifa);
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = (uint8_t)prefixlen;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = (unsigned)ifindex;
  mnl_attr_put (r.nlh, IFA_LOCAL, sizeof addr, &addr);
  mnl_attr_put (r.nlh, IFA_ADDRESS, sizeof addr, &addr);
  if (type == RTM_NEWADDR && prefixlen < 31)
    {
      uint32_t mask = prefixlen ? htonl (~0u << (32 - prefixlen)) : 0;
      struct in_addr brd = { addr.s_addr | ~mask };
      mnl_attr_put (r.nlh, IFA_BROADCAST, sizeof brd, &brd);
    }
  return nl_talk (nl, r.nlh, NULL, NULL, what, err);
}

int net_addr_add (net_nl *nl, int ifindex, struct in_addr addr, unsigned prefixlen, berr **err)
{
  return addr_change (nl, RTM_NEWADDR, ifindex, addr, prefixlen, err);
}

int net_addr_del (net_nl *nl, int ifindex, struct in_addr addr, unsigned prefixlen, berr **err)
{
  return addr_change (nl, RTM_DELADDR, ifindex, addr, prefixlen, err);
}

/* One IPv4 route in the main table: unicast via gw (dst 0/0) or a blackhole for dst. */
static int route_change (net_nl *nl, uint16_t type, unsigned char rtype, struct in_addr dst,
                         unsigned dst_len, const struct in_addr *gw, int ifindex, const char *what,
                         berr **err)
{
  if (dst_len > 32)
    return berr_make (err, EINVAL, "%s: bad prefix length", what);
  struct nl_req r;
  struct rtmsg *rtm
      = req_start (&r, type, type == RTM_NEWROUTE ? NLM_F_CREATE | NLM_F_EXCL : 0, sizeof *rtm);
  rtm->rtm_family = AF_INET;
  rtm->rtm_dst_len = (unsigned char)dst_len;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_STATIC;
  rtm->rtm_scope = type == RTM_NEWROUTE ? RT_SCOPE_UNIVERSE : RT_SCOPE_NOWHERE;
  rtm->rtm_type = rtype;
  if (dst_len > 0)
    mnl_attr_put (r.nlh, RTA_DST, sizeof dst, &dst);
  if (gw != NULL)
    mnl_attr_put (r.nlh, RTA_GATEWAY, sizeof *gw, gw);
  if (ifindex > 0)
    mnl_attr_put_u32 (r.nlh, RTA_OIF, (uint32_t)ifindex);
  return nl_talk (nl, r.nlh, NULL, NULL, what, err);
}

static int default_route (net_nl *nl, uint16_t type, struct in_addr gw, int ifindex, berr **err)
{
  char ip[INET_ADDRSTRLEN], what[80];
  inet_ntop (AF_INET, &gw, ip, sizeof ip);
  snprintf (what, sizeof what, "%s default route via %s", type == RTM_NEWROUTE ? "add" : "delete",
            ip);
  struct in_addr any = { 0 };
  return route_change (nl, type, RTN_UNICAST, any, 0, &gw, ifindex, what, err);
}

int net_route_add_default (net_nl *nl, struct in_addr gw, int ifindex, berr **err)
{
  return default_route (nl, RTM_NEWROUTE, gw, ifindex, err);
}

int net_route_del_default (net_nl *nl, struct in_addr gw, int ifindex, berr **err)
{
  return default_route (nl, RTM_DELROUTE, gw, ifindex, err);
}

static int blackhole_route (net_nl *nl, uint16_t type, struct in_addr dst, unsigned len, berr **err)
{
  char ip[INET_ADDRSTRLEN], what[80];
  inet_ntop (AF_INET, &dst, ip, sizeof ip);
  snprintf (what, sizeof what, "%s blackhole route %s/%u", type == RTM_NEWROUTE ? "add" : "delete",
            ip, len);
  return route_change (nl, type, RTN_BLACKHOLE, dst, len, NULL, 0, what, err);
}

int net_route_add_blackhole (net_nl *nl, struct in_addr dst, unsigned prefixlen, berr **err)
{
  return blackhole_route (nl, RTM_NEWROUTE, dst, prefixlen, err);
}

int net_route_del_blackhole (net_nl *nl, struct in_addr dst, unsigned prefixlen, berr **err)
{
  return blackhole_route (nl, RTM_DELROUTE, dst, prefixlen, err);
}

/* A directly connected route (scope link, no gateway) for dst/len out of ifindex: how a /32 on an
 * unnumbered point-to-point link is reached. */
static int link_route (net_nl *nl, uint16_t type, struct in_addr dst, unsigned len, int ifindex,
                       berr **err)
{
  char ip[INET_ADDRSTRLEN], what[96];
  inet_ntop (AF_INET, &dst, ip, sizeof ip);
  snprintf (what, sizeof what, "%s route %s/%u dev %d", type == RTM_NEWROUTE ? "add" : "delete", ip,
            len, ifindex);
  if (len > 32)
    return berr_make (err, EINVAL, "%s: bad prefix length", what);
  struct nl_req r;
  struct rtmsg *rtm
      = req_start (&r, type, type == RTM_NEWROUTE ? NLM_F_CREATE | NLM_F_EXCL : 0, sizeof *rtm);
  rtm->rtm_family = AF_INET;
  rtm->rtm_dst_len = (unsigned char)len;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_STATIC;
  rtm->rtm_scope = type == RTM_NEWROUTE ? RT_SCOPE_LINK : RT_SCOPE_NOWHERE;
  rtm->rtm_type = RTN_UNICAST;
  mnl_attr_put (r.nlh, RTA_DST, sizeof dst, &dst);
  if (ifindex > 0)
    mnl_attr_put_u32 (r.nlh, RTA_OIF, (uint32_t)ifindex);
  return nl_talk (nl, r.nlh, NULL, NULL, what, err);
}

int net_route_add_link (net_nl *nl, struct in_addr dst, unsigned prefixlen, int ifindex, berr **err)
{
  return link_route (nl, RTM_NEWROUTE, dst, prefixlen, ifindex, err);
}

int net_route_del_link (net_nl *nl, struct in_addr dst, unsigned prefixlen, int ifindex, berr **err)
{
  return link_route (nl, RTM_DELROUTE, dst, prefixlen, ifindex, err);
}

int net_parse_mac (const char *s, uint8_t mac[6], berr **err)
{
  if (s == NULL || strlen (s) != 17)
    return berr_make (err, EINVAL, "invalid MAC address `%s`", s ? s : "");
  for (int i = 0; i < 6; i++)
    {
      int hi = hex_value (s[3 * i]), lo = hex_value (s[3 * i + 1]);
      if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
        return berr_make (err, EINVAL, "invalid MAC address `%s`", s);
      mac[i] = (uint8_t)(hi << 4 | lo);
    }
  return 0;
}
