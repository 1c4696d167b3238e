/* Fuzzes the reader of Berth's nftables table (libnftables JSON listing and the rule comments it
 * decodes for reconcile). A comment it accepts must format back to exactly the same text. */
#include "net/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct net_nft_rule *rules;
  size_t n;
  berr *err = NULL;
  if (net_nft_parse_listing ((const char *)data, size, &rules, &n, &err) < 0)
    {
      berr_free (&err);
      return 0;
    }
  for (size_t i = 0; i < n; i++)
    {
      enum net_nft_kind kind;
      union net_nft_item it;
      char back[NET_NFT_COMMENT_MAX + 1];
      if (rules[i].handle == 0 || strlen (rules[i].chain) >= sizeof rules[i].chain)
        abort ();
      if (net_nft_comment_parse (rules[i].comment, &kind, &it, &err) < 0)
        {
          berr_free (&err);
          continue;
        }
      net_nft_comment_format (kind, &it, back);
      if (strcmp (back, rules[i].comment) != 0)
        abort ();
    }
  net_nft_rules_free (rules, n);
  return 0;
}
