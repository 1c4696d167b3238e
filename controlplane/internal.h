/* Declarations shared by the controlplane sources only: the store, SigV4 verification, API faults
 * and handlers. Nothing outside controlplane/ includes this (the fuzz target aside). */
#ifndef BERTH_CONTROLPLANE_INTERNAL_H
#define BERTH_CONTROLPLANE_INTERNAL_H

#include "controlplane/controlplane.h"

#include <cJSON.h>
#include <stdint.h>
#include <time.h>

/* ---- store (store.c): SQLite, WAL, versioned migrations ---- */
typedef struct cp_store cp_store;

int cp_store_open (const char *path, cp_store **out, berr **err);
void cp_store_free (cp_store *store);
int cp_store_schema_version (cp_store *store, int *version, berr **err);

typedef struct cp_credential
{
  char access_key_id[32];
  char secret[64];
  enum cp_role role;
} cp_credential;

/* Creates the admin and agent keys if the store has none; fills creds[0] (admin) and creds[1]
 * (agent) and sets *created when they were generated now. */
int cp_store_ensure_credentials (cp_store *store, cp_credential creds[2], bool *created,
                                 berr **err);
/* Adds one key (for tests and, later, key rotation). */
int cp_store_add_credential (cp_store *store, const cp_credential *c, berr **err);
/* 1 and *out filled when the key exists, 0 when it does not, negative on error. */
int cp_store_find_credential (cp_store *store, const char *access_key_id, cp_credential *out,
                              berr **err);

typedef struct cp_cluster
{
  char *name;
  char *status;        /* ACTIVE or INACTIVE */
  char *tags_json;     /* JSON array of {key, value} */
  char *settings_json; /* JSON array of {name, value} */
  int64_t created_at;  /* Unix seconds */
} cp_cluster;

void cp_cluster_clear (cp_cluster *c);
/* 1 found, 0 missing, negative on error. */
int cp_store_get_cluster (cp_store *store, const char *name, cp_cluster *out, berr **err);
/* Inserts or replaces by name; durable (fsynced) when it returns. */
int cp_store_put_cluster (cp_store *store, const cp_cluster *c, berr **err);
/* Names of ACTIVE clusters after `after` (NULL: from the start) in name order, at most limit;
 * *names is a newly allocated NULL-terminated vector. *more says whether others follow. */
int cp_store_list_clusters (cp_store *store, const char *after, int limit, char ***names,
                            bool *more, berr **err);

typedef struct cp_taskdef
{
  char *family;
  int64_t revision;        /* from 1 per family */
  char *status;            /* ACTIVE or INACTIVE */
  char *body_json;         /* the registered definition (request minus tags), JSON object */
  char *tags_json;         /* JSON array of {key, value} */
  int64_t registered_at;   /* Unix seconds */
  int64_t deregistered_at; /* 0 while ACTIVE */
} cp_taskdef;

void cp_taskdef_clear (cp_taskdef *td);
/* Stores td as the family's next revision (ACTIVE) and sets td->revision; durable on return. */
int cp_store_add_taskdef (cp_store *store, cp_taskdef *td, berr **err);
/* revision 0 means the latest ACTIVE revision. 1 found, 0 missing, negative on error. */
int cp_store_get_taskdef (cp_store *store, const char *family, int64_t revision, cp_taskdef *out,
                          berr **err);
/* Marks an ACTIVE revision INACTIVE at time when (nothing happens to an INACTIVE one). */
int cp_store_deregister_taskdef (cp_store *store, const char *family, int64_t revision,
                                 int64_t when, berr **err);

/* A page of task definitions or families. */
typedef struct cp_taskdef_query
{
  const char *prefix;       /* family prefix ("" or NULL: all) */
  const char *status;       /* ACTIVE, INACTIVE or NULL for both */
  bool desc;                /* task definitions only: newest family/revision first */
  const char *after_family; /* continue after this family (and after_revision); NULL: start */
  int64_t after_revision;
} cp_taskdef_query;

/* "family:revision" strings in (family, revision) order, at most limit; *more when others
 * follow. */
int cp_store_list_taskdefs (cp_store *store, const cp_taskdef_query *q, int limit, char ***out,
                            bool *more, berr **err);
/* Family names in order; status ACTIVE keeps families with an ACTIVE revision, INACTIVE those
 * with none. */
int cp_store_list_taskdef_families (cp_store *store, const cp_taskdef_query *q, int limit,
                                    char ***out, bool *more, berr **err);

/* Container instances and tasks are JSON documents keyed by id (model.c keeps them in memory and
 * writes each change through). */
enum cp_doc_kind
{
  CP_DOC_INSTANCE = 0,
  CP_DOC_TASK,
  CP_DOC_SERVICE, /* id: "<cluster>/<name>" */
};
/* Inserts or replaces one document; durable on return unless inside cp_store_begin. */
int cp_store_put_doc (cp_store *store, enum cp_doc_kind kind, const char *id, const char *cluster,
                      const char *body, berr **err);
typedef int (*cp_doc_fn) (void *cls, const char *id, const char *cluster, const char *body,
                          berr **err);
/* Calls fn for every document of kind, in insertion order. */
int cp_store_load_docs (cp_store *store, enum cp_doc_kind kind, cp_doc_fn fn, void *cls,
                        berr **err);
/* Removes one document (nothing when absent). */
int cp_store_delete_doc (cp_store *store, enum cp_doc_kind kind, const char *id, berr **err);
/* One transaction around several writes (RunTask's copies commit together). */
int cp_store_begin (cp_store *store, berr **err);
int cp_store_commit (cp_store *store, berr **err);
void cp_store_rollback (cp_store *store);
/* Replaces the tags of one task definition revision. */
int cp_store_set_taskdef_tags (cp_store *store, const char *family, int64_t revision,
                               const char *tags_json, berr **err);

/* The agent channel's per-instance message log (migration 4): seq numbers are given by the
 * caller (channel.c keeps the last one of each instance). */
int cp_store_chan_append (cp_store *store, const char *instance, int64_t seq, const char *body,
                          berr **err);
/* The highest seq of instance (0 when none). */
int cp_store_chan_last (cp_store *store, const char *instance, int64_t *last, berr **err);
/* fn for each message with seq > after, in order, at most limit; fn returns 0 to go on, 1 to
 * stop, -1 out of memory. */
typedef int (*cp_chan_fn) (void *cls, int64_t seq, const char *body);
int cp_store_chan_list (cp_store *store, const char *instance, int64_t after, int limit,
                        cp_chan_fn fn, void *cls, berr **err);
/* Drops messages up to and including upto, except the newest of the instance. */
int cp_store_chan_prune (cp_store *store, const char *instance, int64_t upto, berr **err);

/* ---- SigV4 (sigv4.c) ---- */
/* The parts of an HTTP request that a signature covers; header() returns the value of a header
 * (several of the same name joined by commas), newly allocated, or NULL when absent. */
typedef struct cp_http_request
{
  const char *method;
  const char *path;            /* decoded path, e.g. "/" */
  const char *canonical_query; /* already canonical ("" when none) */
  const void *body;
  size_t body_len;
  char *(*header) (void *cls, const char *name);
  void *cls;
} cp_http_request;

/* Why a request was refused: the ECS/AWS error type and a message for the client. */
typedef struct cp_fault
{
  int status;
  const char *type;
  char message[512];
} cp_fault;

int cp_fail (cp_fault *fault, const char *type, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* A store or internal failure: logs err once and answers 500 ServerException. */
int cp_fail_server (cp_fault *fault, berr **err);
/* ServerException for a failed allocation. */
int cp_fail_oom (cp_fault *fault);

/* Shared request pieces (request.c): tags validated into normalised JSON text (newly
 * allocated; tags may be NULL), and the opaque hex pagination token. */
int cp_tags_parse (const cJSON *tags, char **out, cp_fault *fault);
int cp_token_add (cJSON *res, const char *last, cp_fault *fault);
int cp_token_decode (const char *token, char *out, size_t size, cp_fault *fault);

/* Verifies an AWS4-HMAC-SHA256 Authorization header against the store's keys, for the service
 * "ecs" in region, at time now. Returns 0 and the key's role, or -1 with fault filled. */
int cp_sigv4_verify (cp_store *store, const cp_http_request *req, const char *region, time_t now,
                     enum cp_role *role, cp_fault *fault);
/* The same, also giving the access key id that signed (for binding agents to instances). */
int cp_sigv4_authenticate (cp_store *store, const cp_http_request *req, const char *region,
                           time_t now, enum cp_role *role, char access_key_id[32], cp_fault *fault);
/* RFC 3986 encoding of s (keeping '/' when keep_slash) appended to a newly allocated string. */
char *cp_uri_encode (const char *s, bool keep_slash);

/* ---- API (dispatch.c, clusters.c) ---- */
typedef struct cp_model cp_model;

struct cp_ctx
{
  cp_store *store;
  char *region;
  char *account_id;
  cp_model *model; /* instances, tasks, subnets in memory (model.h) */
  char *base_url;  /* what DiscoverPollEndpoint returns; NULL until the server knows its port */
  /* The call in progress reached us as this URL ("https://10.0.2.100:8420/", from its signed
   * Host header and the listener's scheme); "" when unknown. DiscoverPollEndpoint answers with it,
   * so an agent polls the address it already reaches (a NAT, a forwarded port, a DNS name). */
  char request_url[300];
  /* The caller of the call in progress (set by cp_dispatch_as for the handler). */
  enum cp_role caller_role;
  char caller_key[32];
  int64_t last_expiry;     /* when cp_tasks_expire last ran (Unix seconds) */
  struct cp_channel *chan; /* the agent channel's state (channel.c) */
  struct cp_roles *roles;  /* --task-roles (roles.c); NULL: no role credentials are issued */
  int64_t role_duration_s; /* how long issued role credentials are valid */
};

typedef int (*cp_handler) (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault);

int cp_create_cluster (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault);
int cp_delete_cluster (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault);
int cp_describe_clusters (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault);
int cp_list_clusters (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault);

/* Task definitions (taskdefs.c). */
int cp_register_task_definition (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault);
int cp_deregister_task_definition (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault);
int cp_describe_task_definition (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault);
int cp_list_task_definitions (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault);
int cp_list_task_definition_families (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault);
/* Container instances (instances.c), attributes (attributes.c), tasks (tasks.c), the agent's
 * actions (agentapi.c) and tags (tags.c). */
#define CP_HANDLER(name) int name (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
CP_HANDLER (cp_register_container_instance);
CP_HANDLER (cp_deregister_container_instance);
CP_HANDLER (cp_describe_container_instances);
CP_HANDLER (cp_list_container_instances);
CP_HANDLER (cp_update_container_instances_state);
CP_HANDLER (cp_put_attributes);
CP_HANDLER (cp_list_attributes);
CP_HANDLER (cp_delete_attributes);
CP_HANDLER (cp_run_task);
CP_HANDLER (cp_start_task);
CP_HANDLER (cp_stop_task);
CP_HANDLER (cp_describe_tasks);
CP_HANDLER (cp_list_tasks);
CP_HANDLER (cp_discover_poll_endpoint);
CP_HANDLER (cp_submit_task_state_change);
CP_HANDLER (cp_submit_container_state_change);
CP_HANDLER (cp_submit_attachment_state_changes);
CP_HANDLER (cp_tag_resource);
CP_HANDLER (cp_untag_resource);
CP_HANDLER (cp_list_tags_for_resource);
/* Services (services.c). */
CP_HANDLER (cp_create_service);
CP_HANDLER (cp_update_service);
CP_HANDLER (cp_delete_service);
CP_HANDLER (cp_describe_services);
CP_HANDLER (cp_list_services);
/* BerthControlV1.DescribeServiceMetrics (metrics.c): per-service CPU/memory from telemetry. */
CP_HANDLER (cp_describe_service_metrics);
#undef CP_HANDLER
/* The service controller: brings every service's tasks towards its deployments (starts,
 * stops, rollouts, circuit breaker). Run after each state-changing call and by any timer. */
void cp_services_reconcile (cp_ctx *ctx);
/* Forgets tasks STOPPED more than retention seconds before now (memory and store); returns how
 * many. */
int cp_tasks_expire (cp_ctx *ctx, int64_t now, int64_t retention);
#define CP_STOPPED_RETENTION 3600 /* ECS shows stopped tasks for about an hour */

/* Checks a RegisterTaskDefinition request (types, names, resources, ports vs network mode,
 * dependsOn, volumes) and fills ECS's defaults into it (essential, cpu, port protocol). */
int cp_taskdef_validate (cJSON *in, cp_fault *fault);
/* Task cpu ("256", "0.25 vCPU") in CPU units and memory ("512", "1 GB") in MiB; -1 if invalid. */
int64_t cp_taskdef_cpu_units (const char *s);
int64_t cp_taskdef_memory_mib (const char *s);

/* Shared request readers (request.c): a member of the wrong JSON type is a
 * SerializationException naming it; absent or null leaves *out unchanged. */
int cp_opt_str (const cJSON *in, const char *key, const char **out, cp_fault *fault);
int cp_opt_arr (const cJSON *in, const char *key, const cJSON **out, cp_fault *fault);
int cp_opt_obj (const cJSON *in, const char *key, const cJSON **out, cp_fault *fault);
int cp_opt_bool (const cJSON *in, const char *key, bool *out, cp_fault *fault);
/* An integer in [min, max] (InvalidParameterException outside). */
int cp_opt_int (const cJSON *in, const char *key, int64_t min, int64_t max, int64_t *out,
                cp_fault *fault);
/* A list of strings (each checked), at most max entries. */
int cp_opt_strlist (const cJSON *in, const char *key, int max, const cJSON **out, cp_fault *fault);
/* maxResults (1..100, default 100) and nextToken decoded into after (size bytes). */
int cp_page_args (const cJSON *in, int64_t *limit, char *after, size_t size, cp_fault *fault);
/* A cluster reference (name or our ARN, default "default") that must be ACTIVE:
 * ClusterNotFoundException otherwise. name gets the name. */
int cp_cluster_require (cp_ctx *ctx, const cJSON *in, char name[256], cp_fault *fault);
char *cp_cluster_arn (const cp_ctx *ctx, const char *name);
/* Resolves family, family:revision or ARN; 1 found (out filled), 0 not, -1 fault. */
int cp_taskdef_resolve (cp_ctx *ctx, const char *ref, cp_taskdef *out, cp_fault *fault);
char *cp_taskdef_arn (const cp_ctx *ctx, const char *family, int64_t revision);
/* The agent role may touch only the instance its key registered: AccessDeniedException. */
int cp_caller_may (const cp_ctx *ctx, const char *bound_key, cp_fault *fault);

/* ---- the agent channel (channel.c, docs/protocol.md) ---- */
typedef struct cp_channel cp_channel;
/* Gives a held poll its answer: status and body (taken over; NULL means out of memory). */
typedef void (*cp_wake_fn) (void *cls, void *waiter, int status, char *body);
int cp_channel_new (cp_ctx *ctx, berr **err);
void cp_channel_free (cp_channel *c);
/* At start, once subnets and roles are loaded: tasks their agents may not have heard of (a crash
 * between a task's commit and its message) are sent again. */
void cp_channel_resend_unsettled (cp_ctx *ctx);
/* Timeouts in milliseconds (0 keeps the default: 60 s connected, 10 min lost) and how held polls
 * are answered; without wake every poll is answered at once. */
void cp_channel_configure (cp_ctx *ctx, unsigned connect_ms, unsigned lost_ms, cp_wake_fn wake,
                           void *cls);
/* A Poll from the HTTP server: the HTTP status and *response, or 0 when the poll is held (wake
 * answers it later with waiter). */
int cp_channel_poll (cp_ctx *ctx, enum cp_role role, const char *key, const char *body, size_t len,
                     void *waiter, char **response);
/* waiter's connection is gone. */
void cp_channel_forget (cp_ctx *ctx, void *waiter);
/* Held polls past their wait, manifests, agentConnected and lost tasks: call at least every
 * second. */
void cp_channel_tick (cp_ctx *ctx);
/* Answers every held poll with a CloseMessage (shutdown). */
void cp_channel_close_all (cp_ctx *ctx, const char *reason);
/* The latest metrics an agent published for a container: CPU in percent of a core, memory in
 * MiB, when they came (Unix seconds); false when none. */
bool cp_channel_container_metrics (const cp_ctx *ctx, const char *task_arn, const char *container,
                                   double *cpu_percent, double *memory_mib, double *at);
int cp_channel_poll_handler (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault);
int cp_channel_publish_metrics (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault);
int cp_channel_publish_health (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault);
int cp_channel_publish_instance_status (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault);

/* Serialises {"__type": type, "message": message} (newly allocated). */
char *cp_error_body (const char *type, const char *message);

/* ---- task role credentials (roles.c, docs/controlplane.md) ---- */
typedef struct cp_roles cp_roles;
typedef struct cp_role_cred
{
  char *arn, *access_key_id, *secret_access_key, *session_token; /* token may be NULL */
} cp_role_cred;
void cp_roles_free (cp_roles *r);
/* The operator's credentials for role arn, or NULL. */
const cp_role_cred *cp_roles_find (const cp_ctx *ctx, const char *arn);
/* The credentials a new task gets, from the task definition td and RunTask's overrides:
 * *out a list [{roleType, roleArn, credentialsId (fresh), expiration (Unix seconds)}], or NULL
 * when no role is named or no roles file is configured. A role the file does not name is a
 * ClientException. */
int cp_roles_for_task (cp_ctx *ctx, const cJSON *td, const cJSON *overrides, cJSON **out,
                       cp_fault *fault);
/* Role credentials are refreshed when less than this part of their lifetime is left. */
#define CP_ROLE_REFRESH_DIVISOR 6

/* ---- credentials file (credentials.c) ---- */
/* Fills creds with fresh random keys (admin, agent). */
int cp_generate_credentials (cp_credential creds[2], berr **err);
/* Writes dirfd/credentials, mode 0600, AWS shared-credentials format, atomically. */
int cp_write_credentials_file (int dirfd, const cp_credential creds[2], berr **err);

#endif
