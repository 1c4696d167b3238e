/* Fuzzes the seccomp profile compiler: bytes -> JSON -> rt_seccomp_compile (no cache). It must
 * never crash or leak, and what it returns must fit the kernel's limit. */
#include "lib/json.h"
#include "runtime/runtime.h"

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  cJSON *profile = NULL;
  berr *err = NULL;
  if (bjson_parse ((const char *)data, size, &profile, &err) < 0)
    {
      berr_free (&err);
      return 0;
    }
  void *prog = NULL;
  size_t len = 0;
  if (rt_seccomp_compile (profile, NULL, &prog, &len, &err) == 0
      && (len == 0 || len > BPF_MAXINSNS))
    abort ();
  free (prog);
  berr_free (&err);
  cJSON_Delete (profile);
  return 0;
}
