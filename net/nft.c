/* Berth's own nftables table through libnftables: base chains, published ports (DNAT), egress
 * masquerade, blocked destinations, and the host port allocator. Layout in docs/networking.md. */
#include "net/internal.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct net_nft
{
  struct nft_ctx *ctx;
  int netns_fd; /* where ctx acts (owned), -1: where net_nft_open was called */
};

/* Chains of "ip berth". The hooks jump to publish only for packets to a local address, so a
 * published port never captures traffic passing through to other hosts. */
static const char ensure_cmds[]
    = "add table ip berth\n"
      "add chain ip berth publish\n"
      "add chain ip berth prerouting { type nat hook prerouting priority dstnat; policy accept; }\n"
      "add chain ip berth output { type nat hook output priority -100; policy accept; }\n"
      "add chain ip berth postrouting { type nat hook postrouting priority srcnat; "
      "policy accept; }\n"
      "add chain ip berth forward { type filter hook forward priority filter; policy accept; }\n"
      "add chain ip berth block { type filter hook prerouting priority mangle; policy accept; }\n"
      "flush chain ip berth prerouting\n"
      "flush chain ip berth output\n"
      "add rule ip berth prerouting fib daddr type local jump publish\n"
      "add rule ip berth output fib daddr type local jump publish\n";

/* The open descriptors (a bitmap of the first 1024 is enough to tell new low ones apart). */
struct fdset
{
  uint64_t bits[16];
};

static void fds_open (struct fdset *set)
{
  memset (set, 0, sizeof *set);
  DIR *d = opendir ("/proc/self/fd");
  struct dirent *de;
  while (d != NULL && (de = readdir (d)) != NULL)
    {
      int fd = atoi (de->d_name);
      /* The listing's own descriptor is free again afterwards: not counted as open. */
      if (fd > 0 && fd < 1024 && fd != dirfd (d))
        set->bits[fd / 64] |= 1ull << (fd % 64);
    }
  if (d != NULL)
    closedir (d);
}

/* libnftables opens its netlink socket in nft_ctx_new without SOCK_CLOEXEC; Berth's rule is that
 * no descriptor leaks into a child, so every descriptor that appeared meanwhile gets FD_CLOEXEC
 * (harmless for any other: all of Berth's are close-on-exec already). */
static struct nft_ctx *ctx_new_cloexec (void)
{
  struct fdset before, after;
  fds_open (&before);
  struct nft_ctx *ctx = nft_ctx_new (NFT_CTX_DEFAULT);
  fds_open (&after);
  for (int fd = 3; fd < 1024; fd++)
    if ((after.bits[fd / 64] & ~before.bits[fd / 64]) & (1ull << (fd % 64)))
      {
        int flags = fcntl (fd, F_GETFD);
        if (flags >= 0)
          fcntl (fd, F_SETFD, flags | FD_CLOEXEC);
      }
  return ctx;
}

/* The context's netlink socket belongs to the namespace it is created in, so it is created in a
 * short-lived thread that entered netns_fd (as net_nl_open does, for the same reasons). */
struct ctx_job
{
  int netns_fd, errnum;
  struct nft_ctx *ctx;
};

static void *ctx_thread (void *arg)
{
  struct ctx_job *job = arg;
  if (job->netns_fd >= 0 && setns (job->netns_fd, CLONE_NEWNET) < 0)
    job->errnum = errno;
  else if ((job->ctx = ctx_new_cloexec ()) == NULL)
    job->errnum = ENOMEM;
  return NULL;
}

int net_nft_open (int netns_fd, net_nft **out, berr **err)
{
  net_nft *nft = calloc (1, sizeof *nft);
  if (nft == NULL)
    return berr_sys (err, "calloc");
  nft->netns_fd = -1;
  struct ctx_job job = { netns_fd, 0, NULL };
  pthread_t t;
  int r = pthread_create (&t, NULL, ctx_thread, &job);
  if (r == 0)
    pthread_join (t, NULL);
  nft->ctx = job.ctx;
  if (r != 0 || nft->ctx == NULL)
    {
      free (nft);
      return berr_sysn (err, r ? r : job.errnum, "open nftables in network namespace");
    }
  if (netns_fd >= 0 && (nft->netns_fd = fcntl (netns_fd, F_DUPFD_CLOEXEC, 3)) < 0)
    {
      net_nft_close (nft);
      return berr_sys (err, "dup netns fd");
    }
  if (nft_ctx_buffer_output (nft->ctx) != 0 || nft_ctx_buffer_error (nft->ctx) != 0)
    {
      net_nft_close (nft);
      return berr_make (err, ENOMEM, "nft: cannot buffer output");
    }
  *out = nft;
  return 0;
}

int net_nft_netns (const net_nft *nft)
{
  return nft->netns_fd;
}

void net_nft_close (net_nft *nft)
{
  if (nft == NULL)
    return;
  nft_ctx_free (nft->ctx);
  if (nft->netns_fd >= 0)
    close (nft->netns_fd);
  free (nft);
}

/* Runs cmds as one transaction. On failure the library's first error line goes into the
 * message, and ENOENT / EEXIST are told apart for callers. *json gets the output (JSON listing)
 * when not NULL. */
static int run (net_nft *nft, const char *cmds, bool want_json, char **json, const char *what,
                berr **err)
{
  nft_ctx_output_set_flags (nft->ctx, want_json ? NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE : 0);
  int r = nft_run_cmd_from_buffer (nft->ctx, cmds);
  /* Getting a buffer rewinds it, so each command's text starts fresh. */
  const char *out = nft_ctx_get_output_buffer (nft->ctx);
  const char *msg = nft_ctx_get_error_buffer (nft->ctx);
  if (r != 0)
    {
      msg = msg ? msg : "";
      if (strncmp (msg, "Error: ", 7) == 0)
        msg += 7;
      int len = (int)strcspn (msg, "\n");
      int errnum = strstr (msg, "No such file or directory") ? ENOENT
                   : strstr (msg, "File exists")             ? EEXIST
                                                             : EIO;
      return berr_make (err, errnum, "%s: nft: %.*s", what, len, len ? msg : "failed");
    }
  if (json != NULL && (*json = strdup (out ? out : "")) == NULL)
    return berr_sys (err, "strdup");
  return 0;
}

int net_nft_run (net_nft *nft, const char *cmds, const char *what, berr **err)
{
  return run (nft, cmds, false, NULL, what, err);
}

int net_nft_ensure (net_nft *nft, berr **err)
{
  return run (nft, ensure_cmds, false, NULL, "ensure table ip berth", err);
}

int net_nft_delete_table (net_nft *nft, berr **err)
{
  if (run (nft, "delete table ip berth\n", false, NULL, "delete table ip berth", err) < 0)
    {
      if (berr_errno (*err) != ENOENT)
        return -1;
      berr_free (err);
    }
  return 0;
}

/* The commented rules of the table; *exists false (and no rules) when there is no table. */
static int list_rules (net_nft *nft, struct net_nft_rule **rules, size_t *n, bool *exists,
                       berr **err)
{
  char *json = NULL;
  *rules = NULL;
  *n = 0;
  *exists = true;
  if (run (nft, "list table ip berth\n", true, &json, "list table ip berth", err) < 0)
    {
      if (berr_errno (*err) != ENOENT)
        return -1;
      berr_free (err);
      *exists = false;
      return 0;
    }
  int r = net_nft_parse_listing (json, strlen (json), rules, n, err);
  free (json);
  return r;
}

static int grow (void **v, size_t n, size_t size, berr **err)
{
  void *nv = realloc (*v, (n + 1) * size);
  if (nv == NULL)
    return berr_sys (err, "realloc");
  *v = nv;
  return 0;
}

/* Files one decoded rule into the listing; rules Berth does not know are left out. */
static int add_to_listing (struct net_nft_listing *l, const struct net_nft_rule *r, berr **err)
{
  enum net_nft_kind kind;
  union net_nft_item it;
  berr *e = NULL;
  if (net_nft_comment_parse (r->comment, &kind, &it, &e) < 0)
    {
      berr_free (&e);
      return 0;
    }
  if (kind == NET_NFT_KIND_PORT && strcmp (r->chain, "publish") == 0)
    {
      if (grow ((void **)&l->ports, l->n_ports, sizeof *l->ports, err) < 0)
        return -1;
      l->ports[l->n_ports++] = it.port;
    }
  else if (kind == NET_NFT_KIND_MASQ && strcmp (r->chain, "postrouting") == 0)
    {
      /* Its two postrouting rules share the comment: one entry. */
      for (size_t i = 0; i < l->n_masqs; i++)
        if (strcmp (l->masqs[i].subnet, it.masq.subnet) == 0
            && strcmp (l->masqs[i].bridge, it.masq.bridge) == 0)
          return 0;
      if (grow ((void **)&l->masqs, l->n_masqs, sizeof *l->masqs, err) < 0)
        return -1;
      l->masqs[l->n_masqs++] = it.masq;
    }
  else if (kind == NET_NFT_KIND_BLOCK && strcmp (r->chain, "block") == 0)
    {
      if (grow ((void **)&l->blocks, l->n_blocks, sizeof *l->blocks, err) < 0)
        return -1;
      l->blocks[l->n_blocks++] = it.block;
    }
  return 0;
}

int net_nft_list (net_nft *nft, struct net_nft_listing *out, berr **err)
{
  struct net_nft_rule *rules;
  size_t n;
  memset (out, 0, sizeof *out);
  if (list_rules (nft, &rules, &n, &out->exists, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (add_to_listing (out, &rules[i], err) < 0)
      {
        net_nft_rules_free (rules, n);
        net_nft_listing_clear (out);
        return -1;
      }
  net_nft_rules_free (rules, n);
  return 0;
}

void net_nft_listing_clear (struct net_nft_listing *l)
{
  free (l->ports);
  free (l->masqs);
  free (l->blocks);
  memset (l, 0, sizeof *l);
}

/* Deletes, in one transaction, every rule whose comment match() accepts; returns the count. */
static int remove_where (net_nft *nft, bool (*match) (const char *comment, const void *arg),
                         const void *arg, const char *what, berr **err)
{
  struct net_nft_rule *rules;
  size_t n, k = 0;
  bool exists;
  if (list_rules (nft, &rules, &n, &exists, err) < 0)
    return berr_wrap (err, "%s", what);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  if (f == NULL)
    {
      net_nft_rules_free (rules, n);
      return berr_sys (err, "open_memstream");
    }
  for (size_t i = 0; i < n; i++)
    if (match (rules[i].comment, arg))
      {
        fprintf (f, "delete rule ip berth %s handle %llu\n", rules[i].chain,
                 (unsigned long long)rules[i].handle);
        k++;
      }
  fclose (f);
  net_nft_rules_free (rules, n);
  int r = k ? run (nft, buf, false, NULL, what, err) : 0;
  free (buf);
  return r < 0 ? -1 : (int)k;
}

static bool comment_is (const char *comment, const void *arg)
{
  return strcmp (comment, arg) == 0;
}

/* Adds cmds unless a rule with comment exists (cmds make all of a thing in one transaction, so
 * one rule present means all are). Creates the table first when it is missing. */
static int add_once (net_nft *nft, const char *comment, const char *cmds, const char *what,
                     berr **err)
{
  struct net_nft_rule *rules;
  size_t n;
  bool exists, found = false;
  if (list_rules (nft, &rules, &n, &exists, err) < 0)
    return berr_wrap (err, "%s", what);
  for (size_t i = 0; i < n && !found; i++)
    found = strcmp (rules[i].comment, comment) == 0;
  net_nft_rules_free (rules, n);
  if (found)
    return 0;
  if (!exists && net_nft_ensure (nft, err) < 0)
    return berr_wrap (err, "%s", what);
  return run (nft, cmds, false, NULL, what, err);
}

int net_nft_masquerade_add (net_nft *nft, const char *subnet, const char *bridge, berr **err)
{
  union net_nft_item it = { 0 };
  char c[NET_NFT_COMMENT_MAX + 1], cmds[1024];
  if (net_nft_subnet_canon (subnet, it.masq.subnet, err) < 0)
    return berr_wrap (err, "masquerade");
  if (!net_nft_bridge_valid (bridge))
    return berr_make (err, EINVAL, "masquerade: invalid bridge name `%.40s`", bridge);
  snprintf (it.masq.bridge, sizeof it.masq.bridge, "%s", bridge);
  net_nft_comment_format (NET_NFT_KIND_MASQ, &it, c);
  /* The second rule is for hairpin traffic: a container reaching a published port of the subnet
   * through a host address is DNATed back into the subnet, and the server's reply would go
   * straight over the bridge with the wrong source unless the request came from the host. */
  snprintf (
      cmds, sizeof cmds,
      "add rule ip berth postrouting ip saddr %s oifname != \"%s\" masquerade comment \"%s\"\n"
      "add rule ip berth postrouting ip saddr %s ip daddr %s ct status dnat masquerade"
      " comment \"%s\"\n"
      "add rule ip berth forward iifname \"%s\" accept comment \"%s\"\n"
      "add rule ip berth forward oifname \"%s\" accept comment \"%s\"\n",
      it.masq.subnet, bridge, c, it.masq.subnet, it.masq.subnet, c, bridge, c, bridge, c);
  return add_once (nft, c, cmds, "masquerade", err);
}

int net_nft_masquerade_remove (net_nft *nft, const char *subnet, const char *bridge, berr **err)
{
  union net_nft_item it = { 0 };
  char c[NET_NFT_COMMENT_MAX + 1];
  if (net_nft_subnet_canon (subnet, it.masq.subnet, err) < 0)
    return berr_wrap (err, "remove masquerade");
  if (!net_nft_bridge_valid (bridge))
    return berr_make (err, EINVAL, "remove masquerade: invalid bridge name `%.40s`", bridge);
  snprintf (it.masq.bridge, sizeof it.masq.bridge, "%s", bridge);
  net_nft_comment_format (NET_NFT_KIND_MASQ, &it, c);
  return remove_where (nft, comment_is, c, "remove masquerade", err) < 0 ? -1 : 0;
}

static int block_comment (const char *subnet, struct in_addr dst, char c[], berr **err)
{
  union net_nft_item it = { 0 };
  if (net_nft_subnet_canon (subnet, it.block.subnet, err) < 0)
    return berr_wrap (err, "block");
  it.block.dst = dst;
  net_nft_comment_format (NET_NFT_KIND_BLOCK, &it, c);
  return 0;
}

int net_nft_block_add (net_nft *nft, const char *subnet, struct in_addr dst, berr **err)
{
  char c[NET_NFT_COMMENT_MAX + 1], cmds[512], d[INET_ADDRSTRLEN];
  if (block_comment (subnet, dst, c, err) < 0)
    return -1;
  inet_ntop (AF_INET, &dst, d, sizeof d);
  snprintf (cmds, sizeof cmds,
            "add rule ip berth block ip saddr %s ip daddr %s drop comment \"%s\"\n", subnet, d, c);
  return add_once (nft, c, cmds, "block", err);
}

int net_nft_block_remove (net_nft *nft, const char *subnet, struct in_addr dst, berr **err)
{
  char c[NET_NFT_COMMENT_MAX + 1];
  if (block_comment (subnet, dst, c, err) < 0)
    return -1;
  return remove_where (nft, comment_is, c, "remove block", err) < 0 ? -1 : 0;
}

static bool comment_owner_is (const char *comment, const void *owner)
{
  enum net_nft_kind kind;
  union net_nft_item it;
  berr *e = NULL;
  if (net_nft_comment_parse (comment, &kind, &it, &e) < 0)
    {
      berr_free (&e);
      return false;
    }
  return kind == NET_NFT_KIND_PORT && strcmp (it.port.owner, owner) == 0;
}

int net_nft_ports_remove (net_nft *nft, const char *owner, berr **err)
{
  if (!net_netns_name_valid (owner))
    return berr_make (err, EINVAL, "remove ports: invalid owner `%.70s`", owner);
  return remove_where (nft, comment_owner_is, owner, "remove ports", err);
}
