/* Fuzzes the local endpoints' HTTP request parser (agent/httpd.c) and the query decoder: any
 * bytes give "need more", a good head, or one of the statuses it documents; a good head's path
 * and query are visible ASCII within the limits. */
#include "agent/agent.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void check_target (const char *s)
{
  size_t n = strlen (s);
  if (n > AGENT_HTTPD_MAX_TARGET)
    __builtin_trap ();
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
      __builtin_trap ();
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  agent_http_request *req = malloc (sizeof *req);
  if (req == NULL)
    return 0;
  int r = agent_http_request_parse ((const char *)data, size, req);
  switch (r)
    {
    case 0:
      if (size >= AGENT_HTTPD_MAX_HEAD)
        __builtin_trap (); /* a full buffer is never "need more" */
      break;
    case 1:
      if (req->path[0] != '/' || strchr (req->path, '?'))
        __builtin_trap ();
      check_target (req->path);
      check_target (req->query);
      {
        char v[64];
        if (agent_http_query_get (req->query, "taskarn", v, sizeof v) && strlen (v) >= sizeof v)
          __builtin_trap ();
        agent_http_query_get (req->query, "dockerid", v, sizeof v);
      }
      break;
    case 400:
    case 405:
    case 414:
    case 431:
    case 505:
      break;
    default:
      __builtin_trap ();
    }
  free (req);
  return 0;
}
