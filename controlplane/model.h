/* berth-control's in-memory model of container instances, tasks and awsvpc subnets: loaded
 * from the store at start, changed write-through, so placement never reads SQLite. */
#ifndef BERTH_CONTROLPLANE_MODEL_H
#define BERTH_CONTROLPLANE_MODEL_H

#include "controlplane/internal.h"
#include "controlplane/sched.h"

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CP_ID_LEN 32 /* task and instance ids: 32 lowercase hex digits, as ECS's */

typedef struct cp_u16v
{
  uint16_t *v;
  size_t n, cap;
} cp_u16v;

typedef struct cp_instance
{
  char id[CP_ID_LEN + 1];
  char *arn;
  char *cluster;
  char key[32];             /* the access key that registered it (caller binding) */
  cJSON *doc;               /* the stored ContainerInstance fields (status, attributes...) */
  int64_t cpu, memory, eni; /* remaining */
  cp_u16v tcp, udp;         /* host ports reserved at registration or held by tasks */
  const char **groups;      /* group of each task holding resources here (owned by tasks) */
  size_t n_groups, cap_groups;
  int running, pending; /* tasks by lastStatus, among those holding resources */
  /* Read from doc by cp_instance_sync after each change, so placement reads no JSON. */
  bool registered, placeable; /* not INACTIVE; ACTIVE */
  const cJSON *attributes;
  const char *ec2_instance_id;
  int64_t registered_at;     /* registeredAt (0: unknown) */
  const char *agent_version; /* versionInfo.agentVersion, NULL when absent */
  bool agent_connected;
} cp_instance;

/* What a placed task takes from its instance until it STOPS. */
typedef struct cp_hold
{
  int64_t cpu, memory;
  bool eni;
  cp_u16v tcp, udp;
  char *group;
  char *subnet_id; /* awsvpc: the subnet its address is from, else NULL */
  uint32_t ip;     /* host order */
} cp_hold;

typedef struct cp_task
{
  char id[CP_ID_LEN + 1];
  char *arn;
  char *cluster;
  char instance_id[CP_ID_LEN + 1];
  cJSON *doc;        /* the ECS Task shape, tags included */
  cp_instance *inst; /* instance_id resolved once (instances stay in the model) */
  cp_hold hold;
  bool holding;
} cp_task;

typedef struct cp_subnet
{
  char *id;
  char *cidr;
  char *gateway;
  cJSON *dns;
  uint32_t net, size; /* first address and number of addresses, host order */
  uint8_t *used;      /* bitmap of allocated offsets */
} cp_subnet;

/* A hash index of positions in one of the model's arrays, by id: slot = 1 + position, 0 free.
 * Entries are hints checked against the array on every lookup, so code that removes or moves
 * entries of the array (expiry, a RunTask rolled back) need not know about it: a lookup that
 * finds it stale scans the array and rebuilds it. */
typedef struct cp_id_index
{
  size_t *slot;
  size_t cap, used; /* used: slots taken, stale ones included */
} cp_id_index;

struct cp_model
{
  cp_instance **inst;
  size_t n_inst, cap_inst;
  cp_task **task;
  size_t n_task, cap_task;
  cp_id_index inst_index, task_index;
  cp_subnet *subnets;
  size_t n_subnets;
  cJSON *services; /* array of service documents (services.c), never NULL once loaded */
};

/* A service document of cluster by name or ARN, or NULL (services.c). */
cJSON *cp_service_find (cp_ctx *ctx, const char *cluster, const char *ref);
/* Loads the services into m->services (services.c). */
int cp_services_load (cp_ctx *ctx, berr **err);
/* Loads every instance and task; tasks still holding resources take them from their instance. */
int cp_model_load (cp_ctx *ctx, berr **err);
void cp_model_free (cp_model *m);
/* Replaces the model with what the store holds (after a failed write left memory ahead of it);
 * keeps the subnets. On failure the old model stays. */
int cp_model_reload (cp_ctx *ctx, berr **err);

/* What a cluster holds: registered (not INACTIVE) instances, tasks by lastStatus among those
 * not STOPPED (stopping: any other status), services not INACTIVE. */
typedef struct cp_cluster_counts
{
  int instances, running, pending, stopping, services;
} cp_cluster_counts;
cp_cluster_counts cp_model_cluster_counts (const cp_model *m, const char *cluster);

/* 32 random hex digits. */
int cp_random_id (char out[CP_ID_LEN + 1]);
/* Splits one of our ARNs, arn:aws:ecs:<region>:<account>:<type>/<rest>; false when arn is not
 * one (another region or account, another service, malformed). */
bool cp_arn_parse (const cp_ctx *ctx, const char *arn, char type[32], char rest[512]);
/* An instance or task of cluster by id or ARN (long form <cluster>/<id> or short <id>). */
cp_instance *cp_instance_find (cp_ctx *ctx, const char *cluster, const char *ref);
cp_task *cp_task_find (cp_ctx *ctx, const char *cluster, const char *ref);
cp_instance *cp_instance_by_id (cp_model *m, const char *id);
cp_task *cp_task_by_id (cp_model *m, const char *id);
/* The position of task id in m->task (creation order), or -1. */
ssize_t cp_task_pos (cp_model *m, const char *id);
/* Refreshes the fields read from ci->doc (status, attributes): call after changing the doc. */
void cp_instance_sync (cp_instance *ci);

int cp_model_add_instance (cp_model *m, cp_instance *ci);
int cp_model_add_task (cp_model *m, cp_task *t);
void cp_instance_free (cp_instance *ci);
void cp_task_free (cp_task *t);

/* Writes one document through to the store (ServerException on failure). */
int cp_instance_save (cp_ctx *ctx, const cp_instance *ci, cp_fault *fault);
int cp_task_save (cp_ctx *ctx, const cp_task *t, cp_fault *fault);

/* Takes the task's hold from its instance / gives it back (and its awsvpc address). */
int cp_task_take (cp_model *m, cp_task *t);
void cp_task_release (cp_model *m, cp_task *t);
/* Moves a holding task between the pending and running counts of its instance. */
void cp_task_count_status (cp_model *m, cp_task *t, const char *old_status);

/* The ContainerInstance shape (remainingResources and counts added). */
cJSON *cp_instance_json (const cp_instance *ci);
/* The Task shape, tags only when asked. */
cJSON *cp_task_json (const cp_task *t, bool tags);

/* Resource values in a Resources list: an INTEGER (or LONG/DOUBLE) by name, 0 when absent. */
int64_t cp_resource_int (const cJSON *resources, const char *name);
/* Appends the ports of a STRINGSET resource to v. */
int cp_resource_ports (const cJSON *resources, const char *name, cp_u16v *v);

int cp_u16v_push (cp_u16v *v, uint16_t x);
/* Removes one occurrence of x (if any). */
void cp_u16v_remove (cp_u16v *v, uint16_t x);

/* awsvpc addresses. */
cp_subnet *cp_subnet_find (cp_model *m, const char *id);
/* Lowest free address (not the network, gateway or broadcast): 0 and *ip, -1 when full. */
int cp_subnet_alloc (cp_subnet *s, uint32_t *ip);
void cp_subnet_mark (cp_subnet *s, uint32_t ip, bool used);

/* Shared by the API files. */
/* Attribute lists [{name, value?, targetType?, targetId?}]; targets: targetId required. */
int cp_attributes_check (const cJSON *attrs, bool targets, cp_fault *fault);
/* Sets (value NULL: without a value) or replaces the instance's attribute name. */
int cp_instance_set_attribute (cp_instance *ci, const char *name, const char *value);
/* Appends {arn, reason} to a failures list (no arn when NULL). */
int cp_add_failure (cJSON *failures, const char *arn, const char *reason, cp_fault *fault);
/* Marks a task STOPPED now and gives back what it holds (its agent will never report it). */
int cp_task_stop_now (cp_ctx *ctx, cp_task *t, const char *reason, cp_fault *fault);

/* Queues a PayloadMessage with t for its instance's agent and wakes its poll (channel.c); a
 * failure is logged (the periodic manifest covers it). */
void cp_channel_task_changed (cp_ctx *ctx, const cp_task *t);
/* The scheduler's and the cluster query language's view of an instance (no JSON read). */
cp_sched_instance cp_instance_sched_view (const cp_instance *ci);
/* Answers the instance's held poll with a CloseMessage (deregistration). */
void cp_channel_instance_closed (cp_ctx *ctx, const cp_instance *ci, const char *reason);
/* An agent that registers again with its stored ARN has restarted and lost the role credentials
 * it kept in memory: those of its running tasks are sent again, unchanged. */
void cp_channel_resend_credentials (cp_ctx *ctx, const cp_instance *ci);

/* Sets a task's lastStatus (RUNNING: startedAt; STOPPED: stoppedAt, resources back). */
int cp_task_set_status (cp_ctx *ctx, cp_task *t, const char *status, cp_fault *fault);
/* The required cluster and task members of a request. */
int cp_require_task (cp_ctx *ctx, const cJSON *in, char cluster[256], cp_task **t, cp_fault *fault);

/* A string member of obj, or "" when absent. */
const char *cp_jstr (const cJSON *obj, const char *key);
/* Sets obj.key to a string / number / fresh item (replacing any). */
bool cp_jset_str (cJSON *obj, const char *key, const char *value);
bool cp_jset_num (cJSON *obj, const char *key, double value);
bool cp_jset (cJSON *obj, const char *key, cJSON *item);

#endif
