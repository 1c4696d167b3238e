/* The task placement engine's interface (controlplane only): pure functions over a snapshot of
 * container instances, so placement is fast, deterministic under a given seed and testable
 * without the store or the HTTP server. */
#ifndef BERTH_CONTROLPLANE_SCHED_H
#define BERTH_CONTROLPLANE_SCHED_H

#include "controlplane/internal.h"

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One container instance as the scheduler sees it. The engine never modifies it: what a call
 * places is tracked inside the call, and the caller applies the result to its own model. */
typedef struct cp_sched_instance
{
  const char *arn;
  const char *ec2_instance_id; /* may be NULL */
  bool placeable;              /* ACTIVE (not DRAINING) and registered */
  int64_t cpu, memory, eni;    /* remaining CPU units, MiB, ENI attachments */
  const uint16_t *ports_tcp;   /* host ports in use or reserved, any order */
  size_t n_ports_tcp;
  const uint16_t *ports_udp;
  size_t n_ports_udp;
  const cJSON *attributes;        /* ECS Attribute array [{name, value?}], incl. ecs.* ones */
  const char *const *task_groups; /* group of each task PENDING/RUNNING on it */
  size_t n_tasks;
  /* Only for the cluster query language's subjects of the same names (all optional): */
  int64_t registered_at;     /* registeredAt, Unix seconds (0: unknown) */
  const char *agent_version; /* agentVersion, e.g. "1.2.0" (NULL: unknown) */
  bool agent_disconnected;   /* agentConnected == false */
} cp_sched_instance;

/* What one copy of the task needs, and how to choose. */
typedef struct cp_sched_task
{
  int64_t cpu, memory;
  bool eni;                  /* awsvpc: consumes one ENI */
  const uint16_t *ports_tcp; /* static host ports (hostPort 0 needs none) */
  size_t n_ports_tcp;
  const uint16_t *ports_udp;
  size_t n_ports_udp;
  const char *group; /* the task's group ("family:NAME" by default) */
  /* Every instance's task_groups entries (and group) are interned: one pointer per distinct
   * group name, so groups compare by pointer. Counting a group's tasks (spread,
   * distinctInstance) then costs a pointer compare per task instead of a strcmp. */
  bool groups_interned;
  const cJSON *strategy;    /* placementStrategy array [{type, field}] or NULL */
  const cJSON *constraints; /* placementConstraints array [{type, expression}] or NULL */
  uint64_t seed;            /* for random and tie-breaking */
} cp_sched_task;

/* Why one copy could not be placed: ECS failure reasons such as "RESOURCE:MEMORY",
 * "RESOURCE:CPU", "RESOURCE:PORTS", "RESOURCE:PORTS_UDP", "RESOURCE:ENI", "MissingAttribute",
 * "AGENT" (no placeable instance); arn is the instance the reason is about, or NULL. */
typedef struct cp_sched_failure
{
  const char *arn;
  const char *reason;
} cp_sched_failure;

/* Validates strategy and constraints (types, fields, cluster query language expressions) the
 * way RunTask does: -1 with an InvalidParameterException fault when they are wrong. */
int cp_sched_validate (const cJSON *strategy, const cJSON *constraints, cp_fault *fault);

/* Places count copies of task on instances[0..n). choices[i] is the index of the instance for
 * copy i, or -1 with failures[i] filled. Returns the number placed, or -1 with fault filled
 * (invalid strategy or constraint). */
int cp_sched_place (const cp_sched_instance *instances, size_t n, const cp_sched_task *task,
                    int count, int *choices, cp_sched_failure *failures, cp_fault *fault);

/* The value of the instance's attribute name ("" for an attribute without a value), or NULL
 * when it has none. */
const char *cp_sched_attribute (const cp_sched_instance *inst, const char *name);
/* The same, first trying the position *hint (agents list attributes in the same order), and
 * setting *hint to where it was found: for looking one name up on many instances. */
const char *cp_sched_attribute_hint (const cp_sched_instance *inst, const char *name, int *hint);

#endif
