/* berth-agent's component API (prefix agent_): configuration, credentials, the SQLite store, the
 * HTTP client on the event loop, retry policy and the registration document. */
#ifndef BERTH_AGENT_AGENT_H
#define BERTH_AGENT_AGENT_H

#include "lib/error.h"
#include "lib/log.h"

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

/* BERTH_VERSION comes from the file VERSION (the Makefile passes it; the .debs use it too). */
#define AGENT_VERSION BERTH_VERSION
#define AGENT_DEFAULT_CONFIG "/etc/ecs/ecs.config"
/* Exit codes as the ECS agent uses them: the unit restarts on 1, never on 5. */
#define AGENT_EXIT_OK 0
#define AGENT_EXIT_RESTART 1
#define AGENT_EXIT_TERMINAL 5
#define AGENT_ECS_TARGET_PREFIX "AmazonEC2ContainerServiceV20141113."

/* ---- configuration (agent/config.c, docs/configuration.md) ---- */

enum agent_pull_behavior
{
  AGENT_PULL_DEFAULT = 0,
  AGENT_PULL_ALWAYS,
  AGENT_PULL_ONCE,
  AGENT_PULL_PREFER_CACHED,
};

typedef struct agent_attr
{
  char *name;
  char *value;
} agent_attr;

/* Every key, typed. Durations are microseconds (sd-event's unit); strings are owned. */
typedef struct agent_config
{
  char *cluster;      /* ECS_CLUSTER (name or ARN; "" means default) */
  char *backend_host; /* ECS_BACKEND_HOST: the control plane's URL */
  char *region;       /* AWS_DEFAULT_REGION */
  uint64_t reserved_memory_mib;
  uint16_t *reserved_ports; /* ECS_RESERVED_PORTS */
  size_t n_reserved_ports;
  uint16_t *reserved_ports_udp;
  size_t n_reserved_ports_udp;
  char *data_dir; /* ECS_DATADIR: the store */
  enum blog_level log_level;
  bool enable_task_eni;
  bool awsvpc_block_imds;
  uint64_t container_stop_timeout_us;
  uint64_t container_start_timeout_us;
  uint64_t task_cleanup_wait_us;
  agent_attr *instance_attributes;
  size_t n_instance_attributes;
  bool enable_task_iam_role;
  bool disable_privileged;
  char **logging_drivers; /* NULL-terminated */
  uint64_t image_cleanup_interval_us;
  uint64_t image_minimum_cleanup_age_us;
  uint64_t num_images_delete_per_cycle;
  uint16_t dynamic_port_min, dynamic_port_max;
  enum agent_pull_behavior image_pull_behavior;
  bool disable_metrics;
  bool external;
  uint64_t task_pids_limit; /* 0: no limit */
  /* Berth's own */
  char *ca_file;         /* BERTH_CA_FILE ("" = system CAs) */
  bool allow_insecure;   /* BERTH_ALLOW_INSECURE_BACKEND: plain http beyond loopback */
  uint64_t eni_limit;    /* BERTH_ENI_LIMIT */
  char *eni_parent;      /* BERTH_ENI_PARENT ("" = ENIs must already exist, found by MAC) */
  char *bridge_name;     /* BERTH_BRIDGE_NAME */
  char *bridge_subnet;   /* BERTH_BRIDGE_SUBNET, "a.b.c.d/len" */
  uint64_t log_max_size; /* BERTH_LOG_MAX_SIZE, bytes */
  uint64_t log_max_files;
  char *state_dir;                /* BERTH_STATE_DIR: volatile runtime state */
  char *image_dir;                /* BERTH_IMAGE_DIR: the image store */
  uint64_t telemetry_interval_us; /* BERTH_TELEMETRY_INTERVAL */
  uint64_t offline_watchdog_us;   /* BERTH_OFFLINE_WATCHDOG: 0 = never starve the watchdog */
  uint64_t introspection_port;    /* BERTH_INTROSPECTION_PORT: 127.0.0.1 only; 0 = none */
  /* Where each key's value came from, for --check-config: "default", "file", "environment". */
  const char **sources; /* indexed like agent_config_key_name */
} agent_config;

/* Loads path (NULL: none; missing_ok: a missing file is the same as an empty one), then the
 * environment envp ("K=V" strings, NULL-terminated) overrides, then validates every key.
 * Unknown ECS_ keys in the file are logged as warnings; unknown BERTH_ keys are errors.
 * Errors name the key (or file line) and the reason. */
int agent_config_load (const char *path, bool missing_ok, char *const *envp, agent_config *out,
                       berr **err);
/* Parses a whole file's content (for the fuzzer and tests); same rules as agent_config_load. */
int agent_config_parse (const char *buf, size_t len, char *const *envp, agent_config *out,
                        berr **err);
void agent_config_free (agent_config *cfg);
/* Writes the effective configuration, one KEY=value per line with its source. */
void agent_config_print (const agent_config *cfg, FILE *f);
size_t agent_config_key_count (void);
const char *agent_config_key_name (size_t i);

/* Go's time.ParseDuration syntax ("300ms", "1h30m", "2.5s"); no negative values. */
int agent_parse_duration (const char *s, uint64_t *out_us, berr **err);
/* "10m", "512k", "1G", plain bytes; binary multiples. */
int agent_parse_size (const char *s, uint64_t *out, berr **err);

/* ---- credentials (agent/credentials.c) ---- */

typedef struct agent_creds
{
  char *access_key_id;
  char *secret_access_key;
  char *session_token; /* NULL when none */
  const char *source;  /* "environment" or the file's path */
} agent_creds;

void agent_creds_clear (agent_creds *c);
/* Parses AWS shared-credentials content and returns profile's keys; ENOENT when the profile
 * is absent, EINVAL (naming the line) when malformed or incomplete. */
int agent_creds_parse (const char *buf, size_t len, const char *profile, agent_creds *out,
                       berr **err);

/* The standard chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY(/AWS_SESSION_TOKEN) from envp,
 * else the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile
 * AWS_PROFILE or "default"), re-read whenever the file's inode, size or mtime changes. */
typedef struct agent_credprov agent_credprov;
int agent_credprov_new (char *const *envp, agent_credprov **out, berr **err);
void agent_credprov_free (agent_credprov *p);
/* The current credentials (owned by the provider, valid until the next call). */
int agent_credprov_get (agent_credprov *p, const agent_creds **out, berr **err);

/* ---- store (agent/store.c) ---- */

typedef struct agent_store agent_store;

typedef struct agent_identity
{
  char *cluster; /* NULL when never registered */
  char *container_instance_arn;
} agent_identity;

typedef struct agent_task_rec
{
  char *arn;
  char *desired_status;
  char *known_status;
  char *body; /* the task as the control plane sent it, JSON */
} agent_task_rec;

typedef struct agent_container_rec
{
  char *task_arn;
  char *name;
  char *runtime_id; /* NULL until created */
  char *known_status;
  int64_t exit_code; /* -1 when none */
  char *body;
} agent_container_rec;

typedef struct agent_outbox_entry
{
  int64_t id; /* increasing in insertion order */
  char *task_arn;
  char *kind; /* "task" or "attachment" */
  char *body; /* the request body, JSON */
} agent_outbox_entry;

int agent_store_open (const char *path, agent_store **out, berr **err);
void agent_store_close (agent_store *s);
int agent_store_schema_version (agent_store *s, int *out, berr **err);
/* Groups writes into one durable commit (a payload's tasks with its seqNum). Not nested. */
int agent_store_begin (agent_store *s, berr **err);
int agent_store_commit (agent_store *s, berr **err);
void agent_store_rollback (agent_store *s);

int agent_store_get_identity (agent_store *s, agent_identity *out, berr **err);
int agent_store_set_identity (agent_store *s, const char *cluster, const char *instance_arn,
                              berr **err);
void agent_identity_clear (agent_identity *id);

int agent_store_put_task (agent_store *s, const agent_task_rec *t, berr **err);
/* ENOENT when absent. */
int agent_store_get_task (agent_store *s, const char *arn, agent_task_rec *out, berr **err);
/* All tasks in arn order as a newly allocated array. */
int agent_store_list_tasks (agent_store *s, agent_task_rec **out, size_t *n, berr **err);
int agent_store_delete_task (agent_store *s, const char *arn, berr **err);
void agent_task_rec_clear (agent_task_rec *t);

int agent_store_put_container (agent_store *s, const agent_container_rec *c, berr **err);
int agent_store_list_containers (agent_store *s, const char *task_arn, agent_container_rec **out,
                                 size_t *n, berr **err);
void agent_container_rec_clear (agent_container_rec *c);

/* Attachments (ENIs) by attachment ARN. */
int agent_store_put_attachment (agent_store *s, const char *arn, const char *task_arn,
                                const char *status, const char *body, berr **err);
int agent_store_get_attachment_status (agent_store *s, const char *arn, char **status, berr **err);

/* The outbox of state changes: appended in order, sent per task oldest first. */
int agent_store_outbox_push (agent_store *s, const char *task_arn, const char *kind,
                             const char *body, int64_t *id, berr **err);
/* The oldest unsent entry of task_arn; ENOENT when none. */
int agent_store_outbox_next (agent_store *s, const char *task_arn, agent_outbox_entry *out,
                             berr **err);
/* The distinct tasks with unsent entries, ordered by their oldest entry (strv). */
int agent_store_outbox_tasks (agent_store *s, char ***out, berr **err);
int agent_store_outbox_mark_sent (agent_store *s, int64_t id, berr **err);
void agent_outbox_entry_clear (agent_outbox_entry *e);

int agent_store_get_acked_seq (agent_store *s, int64_t *out, berr **err);
int agent_store_set_acked_seq (agent_store *s, int64_t seq, berr **err);

/* ---- retry policy (agent/backoff.c) ---- */

typedef struct agent_backoff
{
  uint64_t min_us, max_us;
  double multiplier, jitter; /* jitter 0.2: each delay is within +-20% of the nominal one */
  uint64_t current_us;       /* the next nominal delay */
  uint64_t rng;              /* xorshift state; seeded by agent_backoff_init */
} agent_backoff;

/* The policies of docs/agent.md: registration 3 s..192 s x2, reconnect 250 ms..2 min x1.5,
 * outbox 1 s..30 s x2; all with jitter 0.2. */
enum agent_backoff_kind
{
  AGENT_BACKOFF_REGISTER,
  AGENT_BACKOFF_RECONNECT,
  AGENT_BACKOFF_OUTBOX,
};
void agent_backoff_init (agent_backoff *b, enum agent_backoff_kind kind, uint64_t seed);
/* The delay before the next attempt; advances the nominal delay. */
uint64_t agent_backoff_next (agent_backoff *b);
void agent_backoff_reset (agent_backoff *b);

/* ---- HTTP client on sd-event (agent/http.c) ---- */

typedef struct agent_http agent_http;

typedef struct agent_http_opts
{
  const char *endpoint; /* http(s)://host[:port][/path] */
  const char *region;
  const char *ca_file; /* NULL or "": the system CAs */
  bool allow_insecure; /* plain http beyond loopback */
  agent_credprov *creds;
} agent_http_opts;

typedef struct agent_http_result
{
  long status;                 /* HTTP status; 0 when no response arrived */
  int curl_code;               /* CURLE_OK or the transport failure */
  const char *transport_error; /* curl's message when curl_code != 0 */
  cJSON *body;                 /* parsed JSON body, NULL when none or not JSON */
  const char *error_type;      /* "ClusterNotFoundException" (namespace stripped) or NULL */
  const char *error_message;
} agent_http_result;

/* Called once per request, on the loop; res and its body are freed after it returns. */
typedef void (*agent_http_done_fn) (const agent_http_result *res, void *userdata);

int agent_http_new (sd_event *ev, const agent_http_opts *opts, agent_http **out, berr **err);
/* Aborts requests in flight without calling their callbacks. Not from within a callback. */
void agent_http_free (agent_http *h);
/* POSTs body as AWS JSON 1.1 with X-Amz-Target: target, signed SigV4 for the region's "ecs"
 * with the provider's current credentials; timeout_ms bounds the whole exchange. */
int agent_http_call (agent_http *h, const char *target, const cJSON *body, long timeout_ms,
                     agent_http_done_fn done, void *userdata, berr **err);
size_t agent_http_in_flight (const agent_http *h);
/* CLOCK_MONOTONIC microseconds of the last answer from the server (any HTTP status: the control
 * plane was reachable), 0 before the first. */
uint64_t agent_http_last_answer_us (const agent_http *h);
/* Aborts the requests in flight whose userdata is userdata, without calling their callbacks
 * (for an owner that goes away before its answers arrive). */
void agent_http_cancel (agent_http *h, void *userdata);

/* Whether a failed call may be retried: transport errors, 5xx, throttling. Client errors
 * (other 4xx) are terminal. */
bool agent_http_retryable (const agent_http_result *res);
/* What went wrong, for a log line: curl's message, else the ECS error type, else "server error". */
const char *agent_http_why (const agent_http_result *res);
/* Whether host (of a URL) is loopback: 127.0.0.0/8, ::1, localhost. */
bool agent_url_is_loopback (const char *url);

/* ---- registration (agent/register.c) ---- */

typedef struct agent_host_facts
{
  uint64_t cpus;
  uint64_t mem_total_mib;
  char arch[16]; /* ECS spelling: x86_64, arm64 */
  char os_family[64];
} agent_host_facts;

/* Reads /proc/meminfo (under proc_root, normally "/proc"), the online CPU count and uname. */
int agent_host_facts_read (const char *proc_root, agent_host_facts *out, berr **err);
/* The RegisterContainerInstance request (newly allocated). instance_arn may be NULL (first
 * registration); client_token NULL generates a UUID. EINVAL when reserved memory exceeds the
 * host's. */
int agent_register_request (const agent_config *cfg, const agent_host_facts *facts,
                            const char *instance_arn, const char *client_token, cJSON **out,
                            berr **err);
/* The capability attributes Berth advertises for cfg (NULL-terminated, static strings). */
size_t agent_capabilities (const agent_config *cfg, const char **out, size_t max);

/* ---- the registration flow (agent/registrar.c) ---- */

typedef struct agent_registrar agent_registrar;

typedef struct agent_registration
{
  int exit_status;          /* 0 registered; else the exit status the daemon should end with */
  const char *instance_arn; /* when registered */
  const char *error;        /* when not */
} agent_registration;

typedef void (*agent_registered_fn) (const agent_registration *r, void *userdata);

typedef struct agent_registrar_opts
{
  sd_event *ev;
  agent_http *http;
  agent_store *store;
  const agent_config *cfg;
  const agent_host_facts *facts;
  uint64_t seed; /* for the backoff's jitter */
} agent_registrar_opts;

/* Registers (re-registering with the stored instance ARN) until it succeeds or fails for good:
 * ClusterNotFound creates the cluster once and retries at once; throttling, server and transport
 * errors retry with AGENT_BACKOFF_REGISTER; any other client error is terminal (exit 5). On
 * success the identity is stored before done is called. done is called once, from the loop;
 * it may free the registrar. The options' pointers must outlive the registrar. */
int agent_registrar_start (const agent_registrar_opts *o, agent_registered_fn done, void *userdata,
                           agent_registrar **out, berr **err);
void agent_registrar_free (agent_registrar *r);
/* RegisterContainerInstance calls sent so far. */
unsigned agent_registrar_attempts (const agent_registrar *r);

/* ---- the task engine (agent/engine*.c, docs/agent.md "Task engine") ---- */

struct img_store;
struct img_puller;
struct net_bridge;
typedef struct agent_engine agent_engine;
typedef struct agent_endpoints agent_endpoints;

typedef struct agent_engine_opts
{
  sd_event *ev;
  agent_store *store;
  const agent_config *cfg;
  agent_http *http;         /* NULL: state changes stay in the outbox */
  const char *cluster;      /* for SubmitTaskStateChange */
  struct img_store *images; /* rootfs and image configs */
  struct img_puller *puller;
  const char *shim_path;    /* berth-shim */
  const char *init_path;    /* berth-init (initProcessEnabled); NULL: beside berth-shim */
  const char *runtime_path; /* berth-runtime, given to each shim */
  const char *state_dir;    /* bundles and shim state dirs (volatile) */
  /* dockerVolumeConfiguration volumes of scope shared: one directory per name, kept across
   * tasks and restarts; NULL: tasks with shared volumes are refused */
  const char *volume_dir;
  const char *runtime_root;  /* the runtime's --root */
  struct net_bridge *bridge; /* networkMode bridge; NULL: bridge tasks are refused */
  unsigned max_pulls;        /* pulls at once (worker threads); 0: 2 */
  unsigned max_creates;      /* container starts (shim invocations) at once; 0: 4 */
  uint64_t host_mem_mib;     /* 0: not checked; tasks wait while the running ones use it all */
  uint64_t host_cpu_units;   /* CPUs x 1024; 0: not checked */
  uint64_t seed;             /* the outbox backoff's jitter */
  /* awsvpc (with ECS_ENABLE_TASK_ENI): the host namespace the ENIs are in (> 0: an fd; else the
   * caller's) and the netns pin directory (NULL: net/'s default) */
  int awsvpc_host_netns_fd;
  const char *netns_run_dir;
  /* The local endpoints (agent/endpoints.c): the engine opens each container's (bridge) or task's
   * (awsvpc) 169.254.170.2 socket in it when the namespace is set up (and again after a
   * restart) and closes it at teardown, and answers its queries. NULL: no endpoints. */
  agent_endpoints *endpoints;
} agent_engine_opts;

/* Creates the engine and reloads every task in the store: containers whose shims still run are
 * re-adopted (pidfd on the shim), containers that exited meanwhile are reported with their exit
 * codes, unfinished work is resumed. The options' pointers must outlive the engine. */
int agent_engine_new (const agent_engine_opts *o, agent_engine **out, berr **err);
/* Saves nothing more (every change is already in the store) and never stops containers; the
 * pull workers are joined (a pull in flight is finished first). */
void agent_engine_free (agent_engine *e);
/* The channel stored (or changed the desired status of) task_arn: (re)read it and act. */
int agent_engine_task_updated (agent_engine *e, const char *task_arn, berr **err);
/* The engine's view of a task (for tests and introspection): its known status ("NONE" when
 * unknown) and, when stopped, the stopped reason (NULL when none). Static strings / owned by the
 * engine until its next loop iteration. */
const char *agent_engine_task_known (agent_engine *e, const char *task_arn, const char **reason);
/* A container's host pid (0 when not running) and exit code (-1 when none). */
int agent_engine_container_info (agent_engine *e, const char *task_arn, const char *name,
                                 pid_t *pid, int *exit_code);
/* How many times a container was restarted in place (restartPolicy); -ENOENT when no such
 * container. */
int agent_engine_container_restarts (agent_engine *e, const char *task_arn, const char *name);
/* A container's health (healthCheck): "UNKNOWN", "HEALTHY" or "UNHEALTHY" and, when since_ns
 * is given, the realtime of the last change; NULL when it has no health check (or no such
 * container). For PublishHealth (docs/protocol.md), which SubmitTaskStateChange has no member
 * for. */
const char *agent_engine_container_health (agent_engine *e, const char *task_arn, const char *name,
                                           int64_t *since_ns);
/* PublishHealth's tasks (docs/protocol.md), newly allocated: [{taskArn, containers:
 * [{containerName, healthStatus, statusSince (epoch seconds)}]}] for every running container
 * with a healthCheck; an empty array when there is none. */
int agent_engine_health_tasks (agent_engine *e, cJSON **out, berr **err);
/* Container starts in flight now (at most max_creates). */
unsigned agent_engine_starts_in_flight (const agent_engine *e);
/* Outbox entries sent and accepted since the engine started. */
unsigned agent_engine_reports_sent (const agent_engine *e);
struct agent_container_cgroup;
/* The running containers and their cgroups, for telemetry: one allocation (free() it), strings
 * owned by the engine until its next loop iteration. */
int agent_engine_running_containers (agent_engine *e, struct agent_container_cgroup **out,
                                     size_t *n);

/* ---- engine queries for the local endpoints (agent/engine_query.c) ---- */

/* Introspection: {"Tasks": [...]} (taskarn and dockerid NULL), or the one task that is taskarn
 * or holds the container dockerid; NULL when there is none. */
cJSON *agent_engine_v1_tasks (agent_engine *e, const char *taskarn, const char *dockerid);
/* Task metadata v4 of container id, which must belong to task_arn (else NULL): the container,
 * or with task its whole task. cluster may be NULL. */
cJSON *agent_engine_v4 (agent_engine *e, const char *task_arn, const char *id, bool task,
                        const char *cluster);
/* Docker-shaped stats of container id of task_arn (from its cgroup), or with task an object of
 * every container of the task by id (a container without readable stats maps to null). NULL
 * when id is not a container of task_arn. */
cJSON *agent_engine_v4_stats (agent_engine *e, const char *task_arn, const char *id, bool task);
/* The task's roleCredentials as the payload gave them (NULL when none); owned by the engine. */
const cJSON *agent_engine_task_role_credentials (agent_engine *e, const char *task_arn);

/* ---- local HTTP server on sd-event (agent/httpd.c) ---- */

#define AGENT_HTTPD_MAX_HEAD 8192
#define AGENT_HTTPD_MAX_TARGET 2048

typedef struct agent_http_request
{
  char path[AGENT_HTTPD_MAX_TARGET + 1];  /* the target before '?', as sent */
  char query[AGENT_HTTPD_MAX_TARGET + 1]; /* after '?', "" when none */
} agent_http_request;

/* Parses a request head (GET only, HTTP/1.0 or 1.1, CRLF line ends, at most 64 headers, the
 * target at most AGENT_HTTPD_MAX_TARGET bytes of visible ASCII starting with '/'). Returns 1
 * when the head is complete and good, 0 when more bytes are needed (len is below
 * AGENT_HTTPD_MAX_HEAD), or the HTTP status to answer: 400, 405, 414, 431, 505. */
int agent_http_request_parse (const char *buf, size_t len, agent_http_request *out);
/* The value of key in a query string, percent-decoded into out; false when absent, too long or
 * badly encoded. */
bool agent_http_query_get (const char *query, const char *key, char *out, size_t size);

typedef struct agent_httpd agent_httpd;
typedef struct agent_httpd_listener agent_httpd_listener;

/* Answers one request: status and a JSON body (owned by the server afterwards; NULL: none). tag
 * is the listener's, which tells who is asking. */
typedef void (*agent_httpd_handler) (void *tag, const agent_http_request *req, int *status,
                                     char **body, void *userdata);

typedef struct agent_httpd_opts
{
  sd_event *ev;
  unsigned max_conns;  /* connections at once over every listener; 0: 64 */
  uint64_t timeout_us; /* a connection's whole life (read, answer); 0: 5 s */
  agent_httpd_handler handler;
  void *userdata;
} agent_httpd_opts;

int agent_httpd_new (const agent_httpd_opts *o, agent_httpd **out, berr **err);
/* Closes every listener and connection. */
void agent_httpd_free (agent_httpd *h);
/* Accepts on the listening socket fd (taken over: made non-blocking, closed by the listener). */
int agent_httpd_listen (agent_httpd *h, int fd, void *tag, agent_httpd_listener **out, berr **err);
/* Closes the socket and drops the connections it accepted. */
void agent_httpd_listener_free (agent_httpd_listener *l);
/* Connections open now; requests answered; connections refused over max_conns. */
unsigned agent_httpd_open_conns (const agent_httpd *h);
uint64_t agent_httpd_answered (const agent_httpd *h);
uint64_t agent_httpd_refused (const agent_httpd *h);

/* ---- local endpoints (agent/endpoints.c, docs/agent.md "Local endpoints") ---- */

/* A token bucket: rate tokens a second up to burst. */
typedef struct agent_token_bucket
{
  double tokens, rate, burst;
  uint64_t last_us;
} agent_token_bucket;
void agent_token_bucket_init (agent_token_bucket *b, double rate, double burst, uint64_t now_us);
/* Takes a token if there is one. */
bool agent_token_bucket_take (agent_token_bucket *b, uint64_t now_us);

#define AGENT_INTROSPECTION_PORT 51678
#define AGENT_TASK_RATE 40
#define AGENT_TASK_BURST 60

typedef struct agent_endpoints_opts
{
  sd_event *ev;
  /* Introspection: TCP on 127.0.0.1:port (0: none) and a unix socket at path (NULL: none;
   * mode 0600, replaced if it exists). */
  uint16_t introspection_port;
  const char *introspection_socket;
  double rate, burst; /* per task, metadata and credentials; 0: 40/s, burst 60 */
  unsigned max_conns; /* 0: 64 */
  uint64_t timeout_us;
} agent_endpoints_opts;

int agent_endpoints_new (const agent_endpoints_opts *o, agent_endpoints **out, berr **err);
void agent_endpoints_free (agent_endpoints *ep);
/* What /v1/metadata tells (known once registered); copied. */
int agent_endpoints_set_identity (agent_endpoints *ep, const char *cluster,
                                  const char *instance_arn, berr **err);
/* An IAMRoleCredentialsMessage (docs/protocol.md): kept in memory for the task's credentials
 * endpoint (TaskApplication) or the agent (TaskExecution). EPROTO when malformed. */
int agent_endpoints_credentials (agent_endpoints *ep, const cJSON *message, berr **err);
/* For agent_channel_handlers.credentials with userdata the endpoints (errors are logged). */
void agent_endpoints_credentials_handler (const cJSON *message, void *userdata);
/* Called by the engine: the engine to query (NULL: detached; every task socket is closed). */
void agent_endpoints_attach (agent_endpoints *ep, agent_engine *e);
/* Opens the 169.254.170.2:80 socket in the namespace at netns_path for task_arn (container id
 * NULL: the whole task, awsvpc). Idempotent by key. */
int agent_endpoints_open (agent_endpoints *ep, const char *key, const char *netns_path,
                          const char *task_arn, const char *container_id, berr **err);
/* Closes key's socket; the task's credentials and rate state go with its last socket. */
void agent_endpoints_close (agent_endpoints *ep, const char *key);
/* The task sockets open now, and the 429 answers given so far. */
size_t agent_endpoints_sockets (const agent_endpoints *ep);
uint64_t agent_endpoints_throttled (const agent_endpoints *ep);
/* Answers one request as the endpoint of (task_arn, container_id) would (task_arn NULL: the
 * introspection endpoint), without a socket (unit tests, the fuzzer). */
void agent_endpoints_route (agent_endpoints *ep, const char *task_arn, const char *container_id,
                            const agent_http_request *req, int *status, char **body);

/* ---- the agent channel (agent/channel.c, docs/protocol.md) ---- */

/* What the engine does with each message; any may be NULL. Called on the loop. */
typedef struct agent_channel_handlers
{
  /* A PayloadMessage: its tasks are already in the store (desired status only moved forward)
   * and its seqNum recorded, so the next poll acks it. repeat: it had been stored before. */
  void (*payload) (const cJSON *message, bool repeat, void *userdata);
  /* A TaskManifestMessage listed tasks STOPPED that the store had running: their desired
   * status is STOPPED in the store now (called only then). */
  void (*manifest) (const cJSON *message, void *userdata);
  void (*heartbeat) (const cJSON *message, void *userdata);
  void (*credentials) (const cJSON *message, void *userdata);
  void (*attach_eni) (const cJSON *message, void *userdata);
} agent_channel_handlers;

typedef struct agent_channel_opts
{
  sd_event *ev;
  agent_http *http; /* to the control plane, for DiscoverPollEndpoint */
  agent_store *store;
  const agent_config *cfg; /* region, CA file, insecure policy for the poll endpoint */
  agent_credprov *creds;
  unsigned wait_seconds; /* the Poll's waitSeconds; 0: 20 */
  uint64_t seed;         /* the reconnect backoff's jitter */
  agent_channel_handlers handlers;
  /* The channel ended for good: exit_status 5 when the instance was deregistered. */
  void (*end) (int exit_status, void *userdata);
  void *userdata;
} agent_channel_opts;

typedef struct agent_channel agent_channel;
/* DiscoverPollEndpoint, then polls until freed: failures reconnect with AGENT_BACKOFF_RECONNECT
 * (rediscovering the endpoint); a CloseMessage for a deregistered instance ends it (exit 5). */
int agent_channel_start (const agent_channel_opts *o, const char *cluster, const char *instance_arn,
                         agent_channel **out, berr **err);
void agent_channel_free (agent_channel *ch);
/* Poll requests sent so far. */
uint64_t agent_channel_polls (const agent_channel *ch);

/* ---- telemetry (agent/telemetry.c) ---- */

/* One running container and its cgroup (path relative to the hierarchies' roots, as cg_open
 * takes it). The strings belong to whoever gathered them. */
typedef struct agent_container_cgroup
{
  const char *task_arn, *family, *version, *container;
  const char *cgroup_path;
} agent_container_cgroup;

typedef struct agent_telemetry_opts
{
  sd_event *ev;
  agent_http *http;     /* to the telemetry endpoint (the control plane today) */
  uint64_t interval_us; /* BERTH_TELEMETRY_INTERVAL; 0 (or ECS_DISABLE_METRICS) disables */
  /* The engine's list of running containers: 0 with out and n filled, or -1 to skip this round. */
  int (*gather) (void *userdata, agent_container_cgroup **out, size_t *n);
  /* Called with the list after each round (to free it); may be NULL. */
  void (*gather_done) (void *userdata, agent_container_cgroup *list, size_t n);
  /* PublishHealth's tasks array (agent_engine_health_tasks), taken; NULL: no health is sent. */
  int (*gather_health) (void *userdata, cJSON **tasks);
  void *userdata;
} agent_telemetry_opts;

typedef struct agent_telemetry agent_telemetry;
/* Every interval: CPU (percent of one core over the interval) and memory (MiB, without inactive
 * file cache) of each gathered container, sent as PublishMetrics (at most 10 tasks a request).
 * A container's first reading only sets its baseline. Then, with gather_health, the health of
 * every container with a check as PublishHealth (at most 10 tasks a request). *out stays NULL
 * when disabled. */
int agent_telemetry_start (const agent_telemetry_opts *o, const char *cluster,
                           const char *instance_arn, agent_telemetry **out, berr **err);
void agent_telemetry_free (agent_telemetry *t);
/* One round now (tests; the timer calls it). */
void agent_telemetry_collect (agent_telemetry *t);
/* PublishMetrics requests the control plane accepted. */
uint64_t agent_telemetry_published (const agent_telemetry *t);
/* PublishHealth requests the control plane accepted. */
uint64_t agent_telemetry_health_published (const agent_telemetry *t);

/* One message of a Poll answer (pointers into the parsed body). */
typedef struct agent_poll_msg
{
  const char *type;
  const cJSON *message;
  int64_t seq; /* -1 when the message has none */
} agent_poll_msg;
/* Checks a Poll answer's shape (messages, types, seqNums, payload tasks with arn and
 * desiredStatus); EPROTO naming what is wrong. */
int agent_poll_parse (const cJSON *body, agent_poll_msg *msgs, size_t max, size_t *n, berr **err);

#endif
