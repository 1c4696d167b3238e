/* A stand-in for the placement engine (sched.h) until controlplane/sched.c lands: accepts any
 * well-typed strategy and constraints and places first-fit on CPU, memory, ENI and ports. */
#include "controlplane/sched.h"

#include <stdlib.h>
#include <string.h>

static bool well_typed (const cJSON *list, const char *key)
{
  const cJSON *e;
  if (list == NULL || cJSON_IsNull (list))
    return true;
  if (!cJSON_IsArray (list))
    return false;
  cJSON_ArrayForEach (e, list)
  {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive (e, "type");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (e, key);
    if (!cJSON_IsObject (e) || !cJSON_IsString (t)
        || (v && !cJSON_IsNull (v) && !cJSON_IsString (v)))
      return false;
  }
  return true;
}

int cp_sched_validate (const cJSON *strategy, const cJSON *constraints, cp_fault *fault)
{
  if (!well_typed (strategy, "field"))
    return cp_fail (fault, "InvalidParameterException",
                    "placementStrategy must be a list of {type, field}.");
  if (!well_typed (constraints, "expression"))
    return cp_fail (fault, "InvalidParameterException",
                    "placementConstraints must be a list of {type, expression}.");
  return 0;
}

static bool port_taken (const uint16_t *ports, size_t n, uint16_t p)
{
  for (size_t i = 0; i < n; i++)
    if (ports[i] == p)
      return true;
  return false;
}

/* Placements made earlier in this call on instance i. */
static int placed_on (const int *choices, int upto, size_t i)
{
  int k = 0;
  for (int c = 0; c < upto; c++)
    k += choices[c] == (int)i;
  return k;
}

/* The first reason instance i cannot take one more copy, or NULL when it can. */
static const char *misfit (const cp_sched_instance *in, const cp_sched_task *t, int already)
{
  if (!in->placeable)
    return "AGENT";
  if (in->cpu - already * t->cpu < t->cpu)
    return "RESOURCE:CPU";
  if (in->memory - already * t->memory < t->memory)
    return "RESOURCE:MEMORY";
  if (t->eni && in->eni - already < 1)
    return "RESOURCE:ENI";
  /* A static host port fits one copy per instance. */
  for (size_t p = 0; p < t->n_ports_tcp; p++)
    if (already || port_taken (in->ports_tcp, in->n_ports_tcp, t->ports_tcp[p]))
      return "RESOURCE:PORTS";
  for (size_t p = 0; p < t->n_ports_udp; p++)
    if (already || port_taken (in->ports_udp, in->n_ports_udp, t->ports_udp[p]))
      return "RESOURCE:PORTS_UDP";
  return NULL;
}

int cp_sched_place (const cp_sched_instance *instances, size_t n, const cp_sched_task *task,
                    int count, int *choices, cp_sched_failure *failures, cp_fault *fault)
{
  int placed = 0;
  if (cp_sched_validate (task->strategy, task->constraints, fault) < 0)
    return -1;
  for (int c = 0; c < count; c++)
    {
      choices[c] = -1;
      failures[c] = (cp_sched_failure){ NULL, "AGENT" };
      for (size_t i = 0; i < n; i++)
        {
          const char *why = misfit (&instances[i], task, placed_on (choices, c, i));
          if (why == NULL)
            {
              choices[c] = (int)i;
              placed++;
              break;
            }
          /* Report the reason of the first instance that could have run it. */
          if (failures[c].arn == NULL && strcmp (why, "AGENT") != 0)
            failures[c] = (cp_sched_failure){ instances[i].arn, why };
        }
    }
  return placed;
}
