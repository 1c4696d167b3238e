/* Fuzzes the IPAM state file parser (on disk after a crash or a hand edit: untrusted). A file it
 * accepts must format back to exactly the same bytes, so nothing it accepts is lost on save. */
#include "net/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct net_ipam_state st;
  berr *err = NULL;
  if (net_ipam_parse ((const char *)data, size, &st, &err) < 0)
    {
      berr_free (&err);
      return 0;
    }
  size_t len = 0;
  char *text = net_ipam_format (&st, &len);
  /* The parser leaves entries sorted by address, so formatting what it parsed from our own
   * output must give the same bytes again. */
  struct net_ipam_state again;
  if (text == NULL || net_ipam_parse (text, len, &again, &err) < 0)
    abort ();
  size_t len2 = 0;
  char *text2 = net_ipam_format (&again, &len2);
  if (text2 == NULL || len2 != len || memcmp (text, text2, len) != 0 || again.n != st.n)
    abort ();
  free (text2);
  free (text);
  net_ipam_state_clear (&again);
  net_ipam_state_clear (&st);
  return 0;
}
