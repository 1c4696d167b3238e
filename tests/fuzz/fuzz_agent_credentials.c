/* Fuzzes berth-agent's AWS shared-credentials parser: any profile it accepts has both keys,
 * printable and without spaces, and a refusal never echoes a key. */
#include "agent/agent.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static bool printable (const char *s)
{
  for (; s && *s; s++)
    if (*s <= ' ' || *s > '~')
      return false;
  return true;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const char *const profiles[] = { "default", "agent", "" };
  for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
    {
      agent_creds c;
      berr *err = NULL;
      if (agent_creds_parse ((const char *)data, size, profiles[i], &c, &err) < 0)
        {
          if (err == NULL || c.access_key_id || c.secret_access_key || c.session_token)
            __builtin_trap ();
          berr_free (&err);
          continue;
        }
      if (c.access_key_id == NULL || c.secret_access_key == NULL || !*c.access_key_id
          || !printable (c.access_key_id) || !printable (c.secret_access_key)
          || !printable (c.session_token))
        __builtin_trap ();
      agent_creds_clear (&c);
    }
  return 0;
}
