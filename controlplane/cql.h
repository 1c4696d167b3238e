/* The cluster query language of memberOf constraints (controlplane only): an expression is
 * parsed once into a tree, then evaluated against many container instances without re-parsing. */
#ifndef BERTH_CONTROLPLANE_CQL_H
#define BERTH_CONTROLPLANE_CQL_H

#include "controlplane/sched.h"

#include <stdbool.h>

/* ECS's limit on an expression's length. */
#define CP_CQL_MAX_LEN 2000

typedef struct cp_cql cp_cql;

/* Parses expr. Returns 0 and *out, or -1 with an InvalidParameterException fault whose message
 * names the position (1-based character) of the first error. */
int cp_cql_parse (const char *expr, cp_cql **out, cp_fault *fault);
void cp_cql_free (cp_cql *q);

/* Whether inst matches. placed_group, when not NULL, is the group of tasks this placement call
 * has already put on inst (they count for task:group as if they were running). */
bool cp_cql_eval (const cp_cql *q, const cp_sched_instance *inst, const char *placed_group);

/* Whether the expression looks at task:group (its result can change as tasks are placed). */
bool cp_cql_uses_task_group (const cp_cql *q);

#endif
