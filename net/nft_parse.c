/* Reading Berth's nftables table back: the JSON listing parser, the rule comments that say what
 * each rule is for, and host port ranges. No kernel access here, so it can be fuzzed. */
#include "lib/json.h"
#include "net/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void net_nft_rules_free (struct net_nft_rule *rules, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (rules[i].comment);
  free (rules);
}

/* One {"rule": {...}} object: kept when it is in table ip berth and has a comment. */
static int parse_rule (const cJSON *r, struct net_nft_rule *out, bool *keep, berr **err)
{
  const char *family, *table, *chain, *comment = NULL;
  int64_t handle;
  *keep = false;
  if (!cJSON_IsObject (r))
    return berr_make (err, EINVAL, "rule is not an object");
  if (bjson_get_str (r, "family", true, &family, err) < 0
      || bjson_get_str (r, "table", true, &table, err) < 0
      || bjson_get_str (r, "chain", true, &chain, err) < 0
      || bjson_get_int (r, "handle", true, 1, INT64_MAX, &handle, err) < 0
      || bjson_get_str (r, "comment", false, &comment, err) < 0)
    return -1;
  if (strcmp (family, "ip") != 0 || strcmp (table, NET_NFT_TABLE) != 0 || comment == NULL)
    return 0;
  if (strlen (chain) >= sizeof out->chain)
    return berr_make (err, EINVAL, "chain name `%.40s` too long", chain);
  snprintf (out->chain, sizeof out->chain, "%s", chain);
  out->handle = (uint64_t)handle;
  if ((out->comment = strdup (comment)) == NULL)
    return berr_sys (err, "strdup");
  *keep = true;
  return 0;
}

int net_nft_parse_listing (const char *json, size_t len, struct net_nft_rule **rules, size_t *n,
                           berr **err)
{
  __attribute__ ((cleanup (bjson_deletep))) cJSON *root = NULL;
  const cJSON *items;
  *rules = NULL;
  *n = 0;
  if (bjson_parse (json, len, &root, err) < 0)
    return berr_wrap (err, "nft listing");
  if (!cJSON_IsObject (root))
    return berr_make (err, EINVAL, "nft listing is not an object");
  if (bjson_get_arr (root, "nftables", true, &items, err) < 0)
    return berr_wrap (err, "nft listing");
  size_t cap = (size_t)cJSON_GetArraySize (items);
  struct net_nft_rule *v = calloc (cap ? cap : 1, sizeof *v);
  if (v == NULL)
    return berr_sys (err, "calloc");
  size_t k = 0;
  const cJSON *it;
  cJSON_ArrayForEach (it, items)
  {
    const cJSON *r = cJSON_GetObjectItemCaseSensitive (it, "rule");
    bool keep;
    if (r == NULL)
      continue;
    if (parse_rule (r, &v[k], &keep, err) < 0)
      {
        net_nft_rules_free (v, k);
        return berr_wrap (err, "nft listing, rule %zu", k + 1);
      }
    k += keep;
  }
  *rules = v;
  *n = k;
  return 0;
}

bool net_nft_bridge_valid (const char *name)
{
  size_t len = strlen (name);
  if (len == 0 || len >= IFNAMSIZ)
    return false;
  return strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == len;
}

int net_nft_subnet_canon (const char *s, char out[19], berr **err)
{
  uint32_t net;
  unsigned len;
  if (net_ipam_parse_subnet (s, &net, &len, err) < 0)
    return -1;
  struct in_addr a = { htonl (net) };
  char ip[INET_ADDRSTRLEN];
  inet_ntop (AF_INET, &a, ip, sizeof ip);
  snprintf (out, 19, "%s/%u", ip, len);
  if (strcmp (out, s) != 0)
    return berr_make (err, EINVAL, "subnet `%.40s` is not written canonically", s);
  return 0;
}

/* A decimal port 1-65535 written without leading zeros, ending at *end. */
static bool parse_port (const char *s, const char *end, uint16_t *out)
{
  unsigned long v = 0;
  if (s == end || end - s > 5 || *s == '0')
    return false;
  for (const char *p = s; p < end; p++)
    {
      if (*p < '0' || *p > '9')
        return false;
      v = v * 10 + (unsigned long)(*p - '0');
    }
  if (v > 65535)
    return false;
  *out = (uint16_t)v;
  return true;
}

/* The canonical dotted quad in [s, end). */
static bool parse_addr (const char *s, const char *end, struct in_addr *out)
{
  char buf[INET_ADDRSTRLEN], back[INET_ADDRSTRLEN];
  if (end - s <= 0 || (size_t)(end - s) >= sizeof buf)
    return false;
  memcpy (buf, s, (size_t)(end - s));
  buf[end - s] = '\0';
  return inet_pton (AF_INET, buf, out) == 1 && inet_ntop (AF_INET, out, back, sizeof back) != NULL
         && strcmp (buf, back) == 0;
}

/* "<owner>:<tcp|udp>:<host port>:<addr>:<port>" */
static bool parse_port_comment (const char *s, struct net_nft_port *p)
{
  const char *f[5], *c = s;
  for (int i = 0; i < 5; i++)
    {
      f[i] = c;
      c = i < 4 ? strchr (c, ':') : c + strlen (c);
      if (c == NULL)
        return false;
      c += i < 4;
    }
  size_t olen = (size_t)(f[1] - 1 - f[0]);
  if (olen == 0 || olen > NET_NFT_OWNER_MAX)
    return false;
  memcpy (p->owner, f[0], olen);
  p->owner[olen] = '\0';
  if (!net_netns_name_valid (p->owner))
    return false;
  if (strncmp (f[1], "tcp:", 4) == 0 && f[2] - f[1] == 4)
    p->proto = IPPROTO_TCP;
  else if (strncmp (f[1], "udp:", 4) == 0 && f[2] - f[1] == 4)
    p->proto = IPPROTO_UDP;
  else
    return false;
  return parse_port (f[2], f[3] - 1, &p->host_port) && parse_addr (f[3], f[4] - 1, &p->addr)
         && parse_port (f[4], f[4] + strlen (f[4]), &p->port);
}

/* "<subnet>:<rest>" with the subnet canonical; *rest points after the colon. */
static bool parse_subnet_prefix (const char *s, char subnet[19], const char **rest)
{
  const char *colon = strchr (s, ':');
  berr *e = NULL;
  char buf[32];
  if (colon == NULL || (size_t)(colon - s) >= sizeof buf)
    return false;
  memcpy (buf, s, (size_t)(colon - s));
  buf[colon - s] = '\0';
  if (net_nft_subnet_canon (buf, subnet, &e) < 0)
    {
      berr_free (&e);
      return false;
    }
  *rest = colon + 1;
  return true;
}

int net_nft_comment_parse (const char *s, enum net_nft_kind *kind, union net_nft_item *item,
                           berr **err)
{
  const char *rest;
  bool ok = false;
  memset (item, 0, sizeof *item);
  if (strlen (s) > NET_NFT_COMMENT_MAX)
    ok = false;
  else if (strncmp (s, "berth:port:", 11) == 0)
    {
      *kind = NET_NFT_KIND_PORT;
      ok = parse_port_comment (s + 11, &item->port);
    }
  else if (strncmp (s, "berth:masq:", 11) == 0)
    {
      *kind = NET_NFT_KIND_MASQ;
      ok = parse_subnet_prefix (s + 11, item->masq.subnet, &rest) && net_nft_bridge_valid (rest);
      if (ok)
        snprintf (item->masq.bridge, sizeof item->masq.bridge, "%s", rest);
    }
  else if (strncmp (s, "berth:block:", 12) == 0)
    {
      *kind = NET_NFT_KIND_BLOCK;
      ok = parse_subnet_prefix (s + 12, item->block.subnet, &rest)
           && parse_addr (rest, rest + strlen (rest), &item->block.dst);
    }
  if (!ok)
    return berr_make (err, EINVAL, "not a Berth rule comment: `%.140s`", s);
  return 0;
}

void net_nft_comment_format (enum net_nft_kind kind, const union net_nft_item *item, char *buf)
{
  char a[INET_ADDRSTRLEN];
  size_t n = NET_NFT_COMMENT_MAX + 1;
  switch (kind)
    {
    case NET_NFT_KIND_PORT:
      inet_ntop (AF_INET, &item->port.addr, a, sizeof a);
      snprintf (buf, n, "berth:port:%s:%s:%u:%s:%u", item->port.owner,
                item->port.proto == IPPROTO_TCP ? "tcp" : "udp", item->port.host_port, a,
                item->port.port);
      break;
    case NET_NFT_KIND_MASQ:
      snprintf (buf, n, "berth:masq:%s:%s", item->masq.subnet, item->masq.bridge);
      break;
    case NET_NFT_KIND_BLOCK:
      inet_ntop (AF_INET, &item->block.dst, a, sizeof a);
      snprintf (buf, n, "berth:block:%s:%s", item->block.subnet, a);
      break;
    }
}

int net_port_range_parse (const char *s, struct net_port_range *out, berr **err)
{
  const char *dash = strchr (s, '-');
  if (dash == NULL || !parse_port (s, dash, &out->lo)
      || !parse_port (dash + 1, dash + 1 + strlen (dash + 1), &out->hi) || out->lo > out->hi)
    return berr_make (err, EINVAL, "port range `%.40s` is not \"low-high\" within 1-65535", s);
  return 0;
}

int net_kernel_port_range (struct net_port_range *out, berr **err)
{
  const char *path = "/proc/sys/net/ipv4/ip_local_port_range";
  FILE *f = fopen (path, "re");
  unsigned lo, hi;
  if (f == NULL)
    return berr_sys (err, "open `%s`", path);
  int n = fscanf (f, "%u %u", &lo, &hi);
  fclose (f);
  if (n != 2 || lo == 0 || lo > hi || hi > 65535)
    return berr_make (err, EINVAL, "`%s` does not hold a port range", path);
  out->lo = (uint16_t)lo;
  out->hi = (uint16_t)hi;
  return 0;
}

#define NET_PORT_RANGE_MIN_ABOVE 1000u

int net_port_range_default (const struct net_port_range *kernel, struct net_port_range *out,
                            berr **err)
{
  unsigned above = 65535u - kernel->hi;
  unsigned below = kernel->lo > 1024 ? kernel->lo - 1024u : 0;
  if (above == 0 && below == 0)
    return berr_make (err, EINVAL,
                      "the kernel's ephemeral range %u-%u leaves no ports for dynamic mappings; "
                      "set ECS_DYNAMIC_HOST_PORT_RANGE",
                      kernel->lo, kernel->hi);
  /* Prefer ports above the range: below it lie the ports of well-known services (3306, 5432,
   * 8080...) a host service may bind later, after a task got one. */
  if (above >= NET_PORT_RANGE_MIN_ABOVE || above >= below)
    *out = (struct net_port_range){ (uint16_t)(kernel->hi + 1), 65535 };
  else
    *out = (struct net_port_range){ 1024, (uint16_t)(kernel->lo - 1) };
  return 0;
}
