/* Fuzzes berth-agent's reading of a Poll answer (bytes from the control plane): JSON parsing and
 * agent_poll_parse's checks of messages, types, seqNums and payload tasks. */
#include "agent/agent.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  agent_poll_msg msgs[32];
  size_t n = 0;
  berr *err = NULL;
  cJSON *body = cJSON_ParseWithLength ((const char *)data, size);
  if (agent_poll_parse (body, msgs, 32, &n, &err) < 0)
    {
      if (err == NULL || err->msg == NULL || n > 32)
        abort ();
      berr_free (&err);
    }
  else
    for (size_t i = 0; i < n; i++)
      {
        /* What the channel relies on after a successful parse. */
        if (msgs[i].type == NULL || !cJSON_IsObject (msgs[i].message))
          abort ();
        if (strcmp (msgs[i].type, "PayloadMessage") == 0 && msgs[i].seq < 1)
          abort ();
      }
  cJSON_Delete (body);
  return 0;
}
