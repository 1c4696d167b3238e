/* 169.254.170.2 (task metadata and credentials) on the host: the address on lo and the firewall
 * that lets task-facing links reach only that address's port 80; and the instance metadata
 * block for a task's namespace. Why lo and why these rules: docs/networking.md. */
#include "net/internal.h"
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>

/* Task-facing links are the host ends of awsvpc metadata links, all named "bmd<hash>" (see
 * net/awsvpc.c): a wildcard match covers every task without a rule per task. A drop in any base
 * chain is final, so an accept elsewhere in the ruleset cannot reopen what these drop. */
static const char meta_cmds[]
    = "add chain ip berth meta_in { type filter hook input priority filter; policy accept; }\n"
      "add chain ip berth meta_fwd { type filter hook forward priority filter; policy accept; }\n"
      "flush chain ip berth meta_in\n"
      "flush chain ip berth meta_fwd\n"
      "add rule ip berth meta_in iifname \"bmd*\" ip daddr " NET_METADATA_ADDR
      " tcp dport 80 accept comment \"berth:meta\"\n"
      "add rule ip berth meta_in iifname \"bmd*\" drop comment \"berth:meta\"\n"
      "add rule ip berth meta_fwd iifname \"bmd*\" drop comment \"berth:meta\"\n"
      "add rule ip berth meta_fwd oifname \"bmd*\" drop comment \"berth:meta\"\n";

static int lo_address (int host_netns_fd, bool add, berr **err)
{
  net_nl *nl = NULL;
  struct in_addr a;
  inet_pton (AF_INET, NET_METADATA_ADDR, &a);
  int lo, r = net_nl_open (host_netns_fd, &nl, err);
  if (r == 0 && (lo = net_link_index (nl, "lo", err)) < 0)
    r = -1;
  else if (r == 0)
    {
      r = add ? net_addr_add (nl, lo, a, 32, err) : net_addr_del (nl, lo, a, 32, err);
      int e = r < 0 ? berr_errno (*err) : 0;
      if (r < 0 && ((add && e == EEXIST) || (!add && (e == EADDRNOTAVAIL || e == ENOENT))))
        {
          berr_free (err);
          r = 0;
        }
    }
  net_nl_close (nl);
  return r;
}

int net_metadata_host_setup (int host_netns_fd, berr **err)
{
  net_nft *nft = NULL;
  int r = lo_address (host_netns_fd, true, err);
  if (r == 0)
    r = net_nft_open (host_netns_fd, &nft, err);
  if (r == 0)
    r = net_nft_ensure (nft, err);
  if (r == 0)
    r = net_nft_run (nft, meta_cmds, "metadata firewall", err);
  net_nft_close (nft);
  return r < 0 ? berr_wrap (err, "set up " NET_METADATA_ADDR " on the host") : 0;
}

int net_metadata_host_remove (int host_netns_fd, berr **err)
{
  net_nft *nft = NULL;
  int r = net_nft_open (host_netns_fd, &nft, err);
  for (int i = 0; r == 0 && i < 2; i++)
    {
      r = net_nft_run (nft,
                       i ? "delete chain ip berth meta_fwd\n" : "delete chain ip berth meta_in\n",
                       "remove metadata firewall", err);
      if (r < 0 && berr_errno (*err) == ENOENT)
        {
          berr_free (err);
          r = 0;
        }
    }
  net_nft_close (nft);
  if (r == 0)
    r = lo_address (host_netns_fd, false, err);
  return r < 0 ? berr_wrap (err, "remove " NET_METADATA_ADDR " from the host") : 0;
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
