/* Fuzzes the image reference parser: any bytes parse or fail cleanly, and an accepted
 * reference's canonical form parses back to itself (the form the store keys images by). */
#include "images/images.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void check_round_trip (const char *s, const struct img_ref_defaults *d)
{
  struct img_ref r;
  berr *err = NULL;
  if (img_ref_parse (s, d, &r, &err) < 0)
    {
      berr_free (&err);
      return;
    }
  if (!img_digest_valid (r.digest) && r.digest)
    __builtin_trap ();
  if (r.tag == NULL && r.digest == NULL)
    __builtin_trap ();
  char *canon = img_ref_format (&r);
  struct img_ref again;
  if (canon == NULL || img_ref_parse (canon, d, &again, &err) < 0)
    __builtin_trap ();
  char *canon2 = img_ref_format (&again);
  if (canon2 == NULL || strcmp (canon, canon2) != 0)
    __builtin_trap ();
  free (canon);
  free (canon2);
  img_ref_clear (&again);
  img_ref_clear (&r);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *s = strndup ((const char *)data, size);
  if (s == NULL)
    return 0;
  static const struct img_ref_defaults mirror
      = { .registry = "mirror.local:5000", .namespace = "library" };
  check_round_trip (s, NULL);
  check_round_trip (s, &mirror);
  free (s);
  return 0;
}
