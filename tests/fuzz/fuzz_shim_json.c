/* Differential fuzzing of the shim's hand-written JSON escaping: whatever bytes a container
 * writes, the record must parse with cJSON and give back exactly those bytes. */
#include "runtime/shim/shim.h"

#include <cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  /* The escaper takes C strings: cut at the first NUL, as the log path never sees one inside
   * a string it escapes whole (NUL bytes are escaped byte by byte there). */
  char *s = strndup ((const char *)data, size);
  if (s == NULL)
    return 0;
  struct sbuf b = { 0 };
  sbuf_add (&b, "{\"log\":", 7);
  sbuf_add_json_str (&b, s);
  sbuf_add (&b, "}", 1);
  sbuf_add (&b, "", 1);
  if (b.oom)
    {
      sbuf_free (&b);
      free (s);
      return 0;
    }
  cJSON *j = cJSON_Parse (b.p);
  if (j == NULL)
    abort ();
  const cJSON *log = cJSON_GetObjectItemCaseSensitive (j, "log");
  if (!cJSON_IsString (log) || strcmp (log->valuestring, s) != 0)
    abort ();
  cJSON_Delete (j);
  sbuf_free (&b);
  free (s);
  return 0;
}
