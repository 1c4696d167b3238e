/* Fuzzes the awsvpc task record parser (a file in the state dir: torn, hand-edited or left by an
 * earlier version). A record it accepts must be exactly what Berth would write for it. */
#include "net/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size > 4096)
    return 0;
  char *text = malloc (size + 1);
  if (text == NULL)
    return 0;
  memcpy (text, data, size);
  text[size] = '\0';
  struct net_awsvpc_record r;
  int version = net_awsvpc_record_parse (text, size, &r);
  if (version != 0 && version != 1 && version != 2)
    abort ();
  if (version != 0 && (memchr (r.name, '\0', sizeof r.name) == NULL || strlen (text) != size))
    abort ();
  if (version == 2)
    {
      /* What Berth would write for the record read is the text itself, and reads back the same. */
      char again[256];
      struct net_awsvpc_record r2;
      int n = net_awsvpc_record_format (&r, 2, NULL, again, sizeof again);
      if (n < 0 || (size_t)n != size || memcmp (again, text, size) != 0
          || net_awsvpc_record_parse (again, (size_t)n, &r2) != 2 || memcmp (r2.mac, r.mac, 6) != 0
          || r2.kind != r.kind || r2.complete != r.complete || strcmp (r2.name, r.name) != 0)
        abort ();
    }
  free (text);
  return 0;
}
