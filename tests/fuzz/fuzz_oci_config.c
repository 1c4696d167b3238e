/* Fuzzes the OCI config.json parser: bytes -> JSON -> rt_spec_from_oci -> free. It must never
 * crash or leak, whatever the input. */
#include "lib/json.h"
#include "runtime/runtime.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  cJSON *config = NULL;
  berr *err = NULL;
  if (bjson_parse ((const char *)data, size, &config, &err) < 0)
    {
      berr_free (&err);
      return 0;
    }
  struct rt_spec *spec = NULL;
  if (rt_spec_from_oci (config, "/bundle", &spec, &err) == 0)
    rt_spec_free (spec);
  berr_free (&err);
  cJSON_Delete (config);
  return 0;
}
