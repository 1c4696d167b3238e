/* The task engine's private types, shared by agent/engine*.c (state machine, launch, reports). */
#ifndef BERTH_AGENT_ENGINE_INTERNAL_H
#define BERTH_AGENT_ENGINE_INTERNAL_H

#include "agent/agent.h"

#include <pthread.h>

/* Known statuses, ordered: a container only moves forward. */
enum eng_status
{
  ES_NONE = 0,
  ES_MANIFEST_PULLED,
  ES_PULLED,
  ES_CREATED,
  ES_RUNNING,
  ES_STOPPED,
};

typedef struct eng_task eng_task;

/* A container's health (healthCheck): HS_NONE when it has no check. */
enum eng_health
{
  HS_NONE = 0,
  HS_UNKNOWN,
  HS_HEALTHY,
  HS_UNHEALTHY,
};

typedef struct eng_container
{
  eng_task *task;
  char *name, *image, *id; /* id: the runtime id, "<task id>-<name>" */
  const cJSON *def;        /* in task->body */
  enum eng_status known;
  bool essential;
  bool pulling, launching, stop_sent;
  char *digest, *rootfs, *stop_signal;
  int64_t pull_started_ns, pull_stopped_ns;
  pid_t pid, shim_pid;
  int exit_code; /* -1: none */
  char *reason;
  char *netns;            /* bridge mode: the endpoint's namespace (net_bridge_setup) */
  cJSON *bindings;        /* networkBindings as reported */
  sd_event_source *watch; /* pidfd of the invoker (launching) or of the shim (running) */
  sd_event_source *kill_timer;
  sd_event_source *start_timer; /* ECS_CONTAINER_START_TIMEOUT while launching */
  pid_t invoker_pid;            /* while launching: the shim invoker, leader of its group */
  bool start_timed_out;
  /* health checks (engine_health.c) */
  enum eng_health health;
  int64_t health_since_ns; /* realtime of the last change */
  int64_t started_mono_us; /* when the checks began, for startPeriod */
  unsigned health_fails;   /* consecutive counted failures */
  pid_t health_pid;        /* the running check (berth-runtime exec), 0: none */
  sd_event_source *health_timer, *health_watch, *health_kill;
  /* restartPolicy */
  unsigned restarts;      /* restarts in place so far */
  int64_t run_started_ns; /* realtime when the current run began RUNNING */
} eng_container;

struct eng_task
{
  agent_engine *e;
  char *arn, *id;
  cJSON *body;
  bool desired_stopped;
  bool dirty;    /* a container changed since the last report */
  bool admitted; /* counted against the host's memory and CPU */
  uint64_t seq;  /* arrival order, for the resource queue */
  double mem_mib, cpu_units;
  enum eng_status known;    /* ES_NONE is PENDING */
  enum eng_status reported; /* the last task status put in the outbox */
  char *reason;
  int64_t stopped_ns;
  eng_container *c;
  size_t n;
  char *cg_root; /* the task root cgroup (engine_cgroup.c), NULL until the first launch */
  sd_event_source *cleanup;
  eng_task *next;
};

/* A pull job and its outcome, owned by the pool while queued or running. */
typedef struct eng_job
{
  char *task_arn, *name, *image, *id;
  enum agent_pull_behavior behavior;
  char *digest, *rootfs, *error, *stop_signal;
  struct eng_job *next;
} eng_job;

struct agent_engine
{
  agent_engine_opts o;
  eng_task *tasks;
  unsigned launching;    /* containers whose start is in flight (max_creates) */
  sd_event_source *kick; /* a deferred step of every task: a start slot came free */
  /* pull pool */
  pthread_t *threads;
  unsigned n_threads;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  eng_job *queue, *done;
  bool quit;
  int efd;
  sd_event_source *efd_src;
  /* reports */
  agent_backoff backoff;
  sd_event_source *send_timer;
  uint64_t next_seq;
  bool sending;
  int64_t sending_id;
  unsigned sent;
};

/* engine.c */
eng_task *eng_find (agent_engine *e, const char *arn);
eng_container *eng_find_container (agent_engine *e, const char *arn, const char *name);
void eng_step (eng_task *t);
unsigned eng_max_creates (const agent_engine *e);
void eng_kick (agent_engine *e); /* steps every live task soon (deferred, coalesced) */
void eng_container_stopped (eng_container *c, int exit_code, const char *reason);
int eng_save_container (eng_container *c, berr **err);
const char *eng_status_name (enum eng_status s);
bool eng_restart_wanted (const eng_container *c, int exit_code);

/* engine_spec.c: why the task's volumes cannot be provided (in buf), or NULL when they can:
 * names, dockerVolumeConfiguration drivers (local only) and options, shared volumes that must
 * already exist. */
const char *eng_volumes_refusal (const eng_task *t, char *buf, size_t size);

/* engine_launch.c */
int eng_pool_start (agent_engine *e, berr **err);
void eng_pool_stop (agent_engine *e);
int eng_pull (eng_container *c, berr **err);
int eng_launch (eng_container *c, berr **err);

/* engine_log.c: berth-shim's log options for c's logConfiguration. */
typedef struct eng_log_opts
{
  const char *argv[7]; /* shim options, NULL-terminated; point into lo, c->name or c->def */
  char size[32], files[32];
  const char *tag;
} eng_log_opts;

/* Fills lo, or fails naming the driver or option that Berth or this instance refuses. */
int eng_log_opts_of (const eng_container *c, eng_log_opts *lo, berr **err);
void eng_stop_container (eng_container *c);
int eng_adopt (eng_container *c);
void eng_remove_container (eng_container *c);

/* engine_cgroup.c: the task root, supervisor/ and task/ (docs/cgroups.md). A launch is
 * prepare (before fork), child (in the child: wait to be placed, join supervisor/), place and
 * release (parent), clear. */
#define ENG_CG_MAX_HIER 8
typedef struct eng_cg_launch
{
  int go[2];                  /* the child waits for a byte on go[0] before it execs */
  int procs[ENG_CG_MAX_HIER]; /* supervisor/'s cgroup.procs per hierarchy: the child writes "0" */
  size_t n_procs;
  bool need_scope; /* systemd host without a live scope: made around the child's pid */
} eng_cg_launch;
int eng_cg_prepare (eng_task *t, eng_cg_launch *l, berr **err);
void eng_cg_child (eng_cg_launch *l); /* async-signal-safe; _exit (126) on failure */
int eng_cg_place (eng_container *c, pid_t pid, eng_cg_launch *l, berr **err);
int eng_cg_release (eng_cg_launch *l, berr **err);
void eng_cg_launch_clear (eng_cg_launch *l);
/* "<task root>/task/<name>" into buf; returns the length it needs (as snprintf). */
size_t eng_cg_container_path (const eng_container *c, char *buf, size_t size);
void eng_cg_teardown (eng_task *t);

/* engine_net.c */
int eng_net_setup (eng_container *c, berr **err);
void eng_net_teardown (eng_container *c);
void eng_net_key (const eng_container *c, char *key, size_t size);
int eng_net_reconcile (agent_engine *e, berr **err);
bool eng_is_awsvpc (const eng_task *t);
char *eng_task_dir (const eng_task *t);
struct net_eni;
int eng_task_eni (const eng_task *t, struct net_eni *eni, berr **err);

/* engine_health.c */
void eng_health_start (eng_container *c);
void eng_health_stop (eng_container *c);
const char *eng_health_name (enum eng_health h);

/* engine_query.c: the local endpoints' sockets (agent/endpoints.c) */
void eng_endpoint_open (eng_container *c);
void eng_endpoint_close (eng_container *c);
void eng_endpoints_attach (agent_engine *e);
void eng_endpoints_detach (agent_engine *e);

/* engine_report.c */
int eng_report (eng_task *t, berr **err);
void eng_send_kick (agent_engine *e);
void eng_report_free (agent_engine *e);

#endif
