/* Fuzzes the cluster query language: any text as a memberOf expression, parsed and (when
 * valid) evaluated against two fixed container instances, with and without placed tasks. */
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
    }
  else if (fault.message[0] == '\0')
    abort (); /* every refusal says why */
  free (expr);
  return 0;
}
