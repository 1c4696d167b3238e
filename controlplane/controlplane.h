/* berth-control's public API: an ECS-compatible control plane (AWS JSON 1.1 + SigV4 over
 * libmicrohttpd, state in SQLite). The daemon in controlplane/daemon/ is a thin front on this. */
#ifndef BERTH_CONTROLPLANE_H
#define BERTH_CONTROLPLANE_H

#include "lib/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_DEFAULT_DATA_DIR "/var/lib/berth-control"
#define CP_DEFAULT_LISTEN "127.0.0.1:8420"
#define CP_DEFAULT_REGION "us-east-1"
#define CP_DEFAULT_ACCOUNT_ID "000000000000"
/* Largest request body accepted (RegisterTaskDefinition is the biggest ECS request). */
#define CP_MAX_BODY (1024 * 1024)

/* Who signed a request: the role of the access key found in the store. */
enum cp_role
{
  CP_ROLE_ADMIN = 0, /* the whole API */
  CP_ROLE_AGENT,     /* only what a container instance's agent needs */
};

typedef struct cp_config
{
  const char *data_dir;           /* database and credentials file; created 0700 if missing */
  const char *listen;             /* HOST:PORT or [V6]:PORT, numeric or "localhost" */
  const char *region;             /* in ARNs and the SigV4 credential scope */
  const char *account_id;         /* 12 digits, in ARNs */
  bool allow_insecure_listen;     /* plaintext HTTP on a non-loopback address */
  const char *tls_cert;           /* PEM certificate (chain) file: serve HTTPS; NULL: plain HTTP */
  const char *tls_key;            /* PEM private key file, not readable by group or others */
  const char *subnets_file;       /* JSON list of awsvpc subnets (docs/controlplane.md), or NULL */
  unsigned agent_timeout_ms;      /* agentConnected false after this silence; 0: 60 s */
  unsigned agent_lost_timeout_ms; /* tasks of a silent agent marked lost; 0: 10 min */
  const char *task_roles_file;    /* role ARN -> credentials (docs/controlplane.md), or NULL */
  unsigned task_role_duration_s;  /* lifetime of issued role credentials; 0: 6 hours */
} cp_config;

/* The API's state: the store plus what ARNs are made of. Single-threaded: one event loop uses
 * it. */
typedef struct cp_ctx cp_ctx;

/* Opens (creating and migrating) the store at db_path (":memory:" for tests and fuzzing). */
int cp_ctx_open (const char *db_path, const char *region, const char *account_id, cp_ctx **out,
                 berr **err);
void cp_ctx_free (cp_ctx *ctx);
/* Reads the awsvpc subnets from a JSON file: [{"subnetId", "cidr", "gateway", "dns": [...]}]. */
int cp_ctx_load_subnets (cp_ctx *ctx, const char *path, berr **err);

/* Reads the task roles file (AWS shared-credentials format, one [role ARN] section each). */
int cp_ctx_load_task_roles (cp_ctx *ctx, const char *path, berr **err);
#define CP_DEFAULT_ROLE_DURATION_S (6 * 3600)

/* Runs one already-authenticated API call: action is the part of X-Amz-Target after the dot,
 * body the JSON request. Returns the HTTP status and sets *response to a newly allocated JSON
 * document (the result or an ECS error object `{"__type": ..., "message": ...}`). Never fails
 * on any input; returns -1 only when memory runs out. */
int cp_dispatch (cp_ctx *ctx, enum cp_role role, const char *action, const char *body, size_t len,
                 char **response);
/* The same for the key access_key_id: an agent key may touch only the container instances it
 * registered and their tasks (cp_dispatch calls as the key ""). */
int cp_dispatch_as (cp_ctx *ctx, enum cp_role role, const char *access_key_id, const char *action,
                    const char *body, size_t len, char **response);

/* The HTTP server. cp_server_start opens the store in data_dir, creates the credentials on first
 * start, binds the listen address and serves from libmicrohttpd's single event-loop thread. */
typedef struct cp_server cp_server;
int cp_server_start (const cp_config *config, cp_server **out, berr **err);
/* The port actually bound (useful with port 0). */
uint16_t cp_server_port (const cp_server *server);
/* Stops serving (in-flight requests finish) and frees everything. */
void cp_server_stop (cp_server *server);

/* Parses HOST:PORT / [V6]:PORT and says whether the address is loopback. */
int cp_parse_listen (const char *listen, char *host, size_t host_len, uint16_t *port,
                     bool *loopback, berr **err);

#endif
