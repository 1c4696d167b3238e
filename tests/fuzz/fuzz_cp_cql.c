/* Fuzzes the cluster query language: any text as a memberOf expression, parsed and (when
 * valid) evaluated against two fixed container instances, with and without placed tasks, then
 * given to the placement engine as a memberOf constraint for three copies. */
#include "controlplane/cql.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const char *const groups[] = { "family:web", "service:db" };

static const cJSON *fuzz_attributes (void)
{
  static cJSON *attrs;
  if (attrs == NULL)
    attrs = cJSON_Parse ("[{\"name\":\"ecs.instance-type\",\"value\":\"t2.micro\"},"
                         "{\"name\":\"ecs.availability-zone\",\"value\":\"us-east-1a\"},"
                         "{\"name\":\"cores\",\"value\":\"16\"},{\"name\":\"flag\"}]");
  return attrs;
}

static void place (const char *expr, const cp_sched_instance *a, const cp_sched_instance *b)
{
  cp_sched_instance in[2] = { *a, *b };
  cJSON *constraints = cJSON_CreateArray (), *c = cJSON_CreateObject ();
  cJSON *strategy = cJSON_Parse ("[{\"type\":\"spread\",\"field\":\"attribute:cores\"},"
                                 "{\"type\":\"binpack\",\"field\":\"cpu\"}]");
  cJSON_AddStringToObject (c, "type", "memberOf");
  cJSON_AddStringToObject (c, "expression", expr);
  cJSON_AddItemToArray (constraints, c);
  in[0].cpu = in[1].cpu = in[0].memory = in[1].memory = 1024;
  in[1].placeable = true;
  cp_sched_task t = { .cpu = 256,
                      .memory = 256,
                      .group = "family:web",
                      .strategy = strategy,
                      .constraints = constraints,
                      .seed = 1 };
  int choices[3];
  cp_sched_failure failures[3];
  cp_fault fault = { 0 };
  int r = cp_sched_place (in, 2, &t, 3, choices, failures, &fault);
  for (int i = 0; r >= 0 && i < 3; i++)
    if (choices[i] < -1 || choices[i] > 1 || (choices[i] < 0 && failures[i].reason == NULL))
      abort ();
  cJSON_Delete (constraints);
  cJSON_Delete (strategy);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  cp_cql *q = NULL;
  cp_fault fault = { 0 };
  char *expr = malloc (size + 1);
  if (expr == NULL)
    return 0;
  memcpy (expr, data, size);
  expr[size] = '\0';
  cp_sched_instance a = { .arn = "a",
                          .ec2_instance_id = "i-1",
                          .placeable = true,
                          .attributes = fuzz_attributes (),
                          .task_groups = groups,
                          .n_tasks = 2,
                          .registered_at = 1529360908,
                          .agent_version = "1.2.3" };
  cp_sched_instance b = { .arn = "b", .attributes = NULL, .agent_disconnected = true };
  if (cp_cql_parse (expr, &q, &fault) == 0)
    {
      (void)cp_cql_eval (q, &a, NULL);
      (void)cp_cql_eval (q, &a, "family:web");
      (void)cp_cql_eval (q, &b, NULL);
      (void)cp_cql_eval (q, &b, "x");
      (void)cp_cql_uses_task_group (q);
      cp_cql_free (q);
      place (expr, &a, &b);
    }
  else if (fault.message[0] == '\0')
    abort (); /* every refusal says why */
  free (expr);
  return 0;
}
