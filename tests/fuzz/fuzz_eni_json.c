/* Fuzzes the ENI parser (the ElasticNetworkInterface of an ACS payload: network input). What it
 * accepts must be usable as is: at least one address in the gateway's subnet, and a resolv.conf
 * with only nameserver and search lines, so no input can inject resolver options. */
#include "net/net.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void check_resolv (const char *text)
{
  const char *line = strchr (text, '\n'); /* the comment line */
  if (line == NULL)
    abort ();
  for (line++; *line;)
    {
      const char *end = strchr (line, '\n');
      if (end == NULL
          || (strncmp (line, "nameserver ", 11) != 0 && strncmp (line, "search ", 7) != 0))
        abort ();
      line = end + 1;
    }
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct net_eni eni;
  berr *err = NULL;
  if (net_eni_from_json ((const char *)data, size, &eni, &err) < 0)
    {
      if (err == NULL || err->msg == NULL)
        abort ();
      berr_free (&err);
      return 0;
    }
  if (eni.n_addrs < 1 || eni.n_addrs > NET_ENI_MAX_ADDRS || eni.prefixlen < 1 || eni.prefixlen > 30)
    abort ();
  uint32_t mask = htonl (~0u << (32 - eni.prefixlen));
  for (size_t i = 0; i < eni.n_addrs; i++)
    if ((eni.addrs[i].s_addr & mask) != (eni.gateway.s_addr & mask))
      abort ();
  char *resolv = net_eni_resolv_conf (&eni), *host = net_eni_hostname_file (&eni);
  if (resolv == NULL || host == NULL || strchr (host, '\n') != host + strlen (host) - 1)
    abort ();
  check_resolv (resolv);
  free (resolv);
  free (host);
  return 0;
}
