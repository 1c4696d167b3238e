/* An awsvpc task's ENI as ACS sends it (ElasticNetworkInterface JSON): strict parsing and
 * validation, and the resolv.conf and hostname files made from it. */
#include "net/net.h"

#include "lib/json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A DNS name: labels of letters, digits and '-' (also '_', seen in search domains), separated
 * by single dots, at most NET_DNS_NAME_MAX characters. Anything else could inject lines into
 * resolv.conf, so it is refused. */
static bool dns_name_valid (const char *s)
{
  size_t n = strlen (s), label = 0;
  if (n == 0 || n > NET_DNS_NAME_MAX || s[0] == '.' || s[0] == '-')
    return false;
  for (size_t i = 0; i < n; i++)
    {
      char c = s[i];
      if (c == '.')
        {
          if (label == 0)
            return false;
          label = 0;
          continue;
        }
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
            || c == '_')
          || ++label > 63)
        return false;
    }
  return true;
}

static int parse_ip (const char *s, const char *key, struct in_addr *out, berr **err)
{
  if (inet_pton (AF_INET, s, out) != 1)
    return berr_make (err, EINVAL, "ENI: `%s`: invalid IPv4 address `%.40s`", key, s);
  return 0;
}

/* "a.b.c.d/len" with 1 <= len <= 30. */
static int parse_gateway (const char *s, struct net_eni *eni, berr **err)
{
  char ip[INET_ADDRSTRLEN];
  const char *slash = strchr (s, '/');
  size_t n = slash ? (size_t)(slash - s) : 0;
  char *end = NULL;
  long len = slash ? strtol (slash + 1, &end, 10) : -1;
  if (slash == NULL || n >= sizeof ip || slash[1] < '0' || slash[1] > '9' || *end != '\0' || len < 1
      || len > 30 || (slash[1] == '0' && slash[2] != '\0'))
    return berr_make (err, EINVAL,
                      "ENI: `subnetGatewayIpv4Address`: expected a.b.c.d/len, got "
                      "`%.40s`",
                      s);
  memcpy (ip, s, n);
  ip[n] = '\0';
  eni->prefixlen = (unsigned)len;
  return parse_ip (ip, "subnetGatewayIpv4Address", &eni->gateway, err);
}

static bool same_subnet (struct in_addr a, struct in_addr b, unsigned len)
{
  uint32_t mask = htonl (~0u << (32 - len));
  return (a.s_addr & mask) == (b.s_addr & mask);
}

/* ipv4Addresses: [{privateAddress, primary}], the primary moved first; at most one primary. */
static int parse_addrs (const cJSON *obj, struct net_eni *eni, berr **err)
{
  const cJSON *arr = NULL, *it;
  if (bjson_get_arr (obj, "ipv4Addresses", true, &arr, err) < 0)
    return berr_wrap (err, "ENI");
  int primaries = 0;
  cJSON_ArrayForEach (it, arr)
  {
    const char *s;
    bool primary = false;
    if (!cJSON_IsObject (it))
      return berr_make (err, EINVAL, "ENI: `ipv4Addresses`: expected objects");
    if (eni->n_addrs == NET_ENI_MAX_ADDRS)
      return berr_make (err, EINVAL, "ENI: `ipv4Addresses`: more than %d", NET_ENI_MAX_ADDRS);
    if (bjson_get_str (it, "privateAddress", true, &s, err) < 0
        || bjson_get_bool (it, "primary", false, &primary, err) < 0)
      return berr_wrap (err, "ENI: `ipv4Addresses`");
    struct in_addr a;
    if (parse_ip (s, "privateAddress", &a, err) < 0)
      return -1;
    for (size_t i = 0; i < eni->n_addrs; i++)
      if (eni->addrs[i].s_addr == a.s_addr)
        return berr_make (err, EINVAL, "ENI: address %s appears twice", s);
    if (primary && primaries++)
      return berr_make (err, EINVAL, "ENI: more than one primary address");
    eni->addrs[eni->n_addrs++] = a;
    if (primary)
      {
        memmove (&eni->addrs[1], &eni->addrs[0], (eni->n_addrs - 1) * sizeof a);
        eni->addrs[0] = a;
      }
  }
  if (eni->n_addrs == 0)
    return berr_make (err, EINVAL, "ENI: `ipv4Addresses` is empty");
  return 0;
}

static int parse_names (const cJSON *obj, struct net_eni *eni, berr **err)
{
  const cJSON *arr = NULL, *it; /* optional keys: NULL when absent */
  if (bjson_get_arr (obj, "domainNameServers", false, &arr, err) < 0)
    return berr_wrap (err, "ENI");
  cJSON_ArrayForEach (it, arr)
  {
    if (!cJSON_IsString (it) || eni->n_dns == NET_ENI_MAX_DNS)
      return berr_make (err, EINVAL, "ENI: `domainNameServers`: at most %d address strings",
                        NET_ENI_MAX_DNS);
    if (parse_ip (it->valuestring, "domainNameServers", &eni->dns[eni->n_dns++], err) < 0)
      return -1;
  }
  arr = NULL;
  if (bjson_get_arr (obj, "domainName", false, &arr, err) < 0)
    return berr_wrap (err, "ENI");
  cJSON_ArrayForEach (it, arr)
  {
    if (!cJSON_IsString (it) || eni->n_search == NET_ENI_MAX_SEARCH)
      return berr_make (err, EINVAL, "ENI: `domainName`: at most %d name strings",
                        NET_ENI_MAX_SEARCH);
    if (!dns_name_valid (it->valuestring))
      return berr_make (err, EINVAL, "ENI: `domainName`: invalid name `%.60s`", it->valuestring);
    snprintf (eni->search[eni->n_search++], NET_DNS_NAME_MAX + 1, "%s", it->valuestring);
  }
  const char *host = NULL;
  if (bjson_get_str (obj, "privateDnsName", false, &host, err) < 0)
    return berr_wrap (err, "ENI");
  if (host != NULL && *host != '\0' && !dns_name_valid (host))
    return berr_make (err, EINVAL, "ENI: `privateDnsName`: invalid name `%.60s`", host);
  snprintf (eni->hostname, sizeof eni->hostname, "%s", host ? host : "");
  return 0;
}

/* Every address a host of the gateway's subnet, other than the gateway. */
static int check_subnet (const struct net_eni *eni, berr **err)
{
  for (size_t i = 0; i < eni->n_addrs; i++)
    if (!same_subnet (eni->addrs[i], eni->gateway, eni->prefixlen)
        || eni->addrs[i].s_addr == eni->gateway.s_addr)
      {
        char ip[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];
        inet_ntop (AF_INET, &eni->addrs[i], ip, sizeof ip);
        inet_ntop (AF_INET, &eni->gateway, gw, sizeof gw);
        return berr_make (err, EINVAL, "ENI: address %s is not a host of the subnet of %s/%u", ip,
                          gw, eni->prefixlen);
      }
  return 0;
}

int net_eni_from_json (const char *json, size_t len, struct net_eni *out, berr **err)
{
  cJSON *obj = NULL;
  memset (out, 0, sizeof *out);
  if (bjson_parse (json, len, &obj, err) < 0)
    return berr_wrap (err, "ENI");
  const char *mac, *gw;
  int r = -1;
  if (!cJSON_IsObject (obj))
    berr_make (err, EINVAL, "ENI: expected an object");
  else if (bjson_get_str (obj, "macAddress", true, &mac, err) < 0
           || bjson_get_str (obj, "subnetGatewayIpv4Address", true, &gw, err) < 0)
    berr_wrap (err, "ENI");
  else if (net_parse_mac (mac, out->mac, err) < 0)
    berr_wrap (err, "ENI: `macAddress`");
  else if (parse_gateway (gw, out, err) == 0 && parse_addrs (obj, out, err) == 0
           && parse_names (obj, out, err) == 0)
    r = check_subnet (out, err);
  cJSON_Delete (obj);
  return r;
}

char *net_eni_resolv_conf (const struct net_eni *eni)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&buf, &len);
  if (f == NULL)
    return NULL;
  fputs ("# written by Berth from the task's ENI\n", f);
  for (size_t i = 0; i < eni->n_dns; i++)
    {
      char ip[INET_ADDRSTRLEN];
      inet_ntop (AF_INET, &eni->dns[i], ip, sizeof ip);
      fprintf (f, "nameserver %s\n", ip);
    }
  if (eni->n_search > 0)
    {
      fputs ("search", f);
      for (size_t i = 0; i < eni->n_search; i++)
        fprintf (f, " %s", eni->search[i]);
      fputc ('\n', f);
    }
  if (fclose (f) != 0)
    {
      free (buf);
      return NULL;
    }
  return buf;
}

char *net_eni_hostname_file (const struct net_eni *eni)
{
  char *s = NULL;
  if (asprintf (&s, "%s\n", eni->hostname[0] ? eni->hostname : "localhost") < 0)
    return NULL;
  return s;
}
