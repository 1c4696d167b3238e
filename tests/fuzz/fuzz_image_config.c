/* Fuzzes the image config parser: any bytes parse or fail cleanly, without a crash or leak,
 * and an accepted config has only valid layer digests and normalised ports. */
#include "images/images.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct img_config *c = NULL;
  berr *err = NULL;
  if (img_config_parse ((const char *)data, size, &c, &err) == 0)
    {
      for (size_t i = 0; c->diff_ids[i]; i++)
        if (!img_digest_valid (c->diff_ids[i]))
          __builtin_trap ();
      for (size_t i = 0; c->exposed_ports && c->exposed_ports[i]; i++)
        if (strchr (c->exposed_ports[i], '/') == NULL)
          __builtin_trap ();
      if (c->healthcheck && (c->healthcheck->test == NULL || c->healthcheck->test[0] == NULL))
        __builtin_trap ();
      img_config_free (c);
    }
  berr_free (&err);
  return 0;
}
