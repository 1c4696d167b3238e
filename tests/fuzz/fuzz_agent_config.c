/* Fuzzes berth-agent's configuration parser: the ecs.config file syntax and every key's value
 * parser (durations, JSON ports and attributes, ranges), then prints what it accepted. */
#include "agent/agent.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static FILE *null;
  if (null == NULL)
    {
      blog_setup ("fuzz", BLOG_ERROR, BLOG_SINK_STDERR);
      null = fopen ("/dev/null", "we");
    }
  agent_config cfg;
  berr *err = NULL;
  if (agent_config_parse ((const char *)data, size, NULL, &cfg, &err) < 0)
    {
      if (err == NULL || err->msg == NULL || cfg.cluster != NULL)
        __builtin_trap (); /* a refusal says why and leaves nothing behind */
      berr_free (&err);
      return 0;
    }
  if (cfg.cluster == NULL || cfg.backend_host == NULL || cfg.data_dir == NULL
      || cfg.dynamic_port_min > cfg.dynamic_port_max || cfg.dynamic_port_min == 0
      || cfg.logging_drivers == NULL)
    __builtin_trap ();
  agent_config_print (&cfg, null);
  uint64_t us;
  /* The duration parser alone, on the same bytes as a string. */
  char *s = strndup ((const char *)data, size);
  if (s && agent_parse_duration (s, &us, &err) < 0)
    berr_free (&err);
  free (s);
  agent_config_free (&cfg);
  return 0;
}
