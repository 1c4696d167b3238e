/* End-to-end fixture: the aws CLI -> berth-control -> a real berth-agent process -> containers,
 * all inside the test's own network and mount namespaces (never the host's network). */
#ifndef BERTH_TESTS_SUPPORT_E2E_H
#define BERTH_TESTS_SUPPORT_E2E_H

#include "tests/support/cp.h"

#include <cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* The images every test has: busybox (sh cat echo ls touch test, and every applet through
 * `busybox NAME`) and the main job's web sample (httpd on 8080). */
#define TS_E2E_IMAGE "test/busybox:v1"
#define TS_E2E_WEB_IMAGE "berth/sample-httpd:latest"
/* An address on a dummy link of the test's namespace: the host's own address, where bridge
 * mode's published ports answer. */
#define TS_E2E_HOST_ADDR "10.213.0.1"
/* A link of the test's namespace for BERTH_ENI_PARENT (awsvpc ENIs are macvlans on it). */
#define TS_E2E_ENI_PARENT "e2e-eni"

typedef struct ts_e2e
{
  ts_cp cp;
  char *dir;    /* temp dir: config, agent log, data, state, images */
  char *config; /* the agent's ecs.config */
  char *log;    /* the agent's stdout and stderr, appended */
  char *state;  /* BERTH_STATE_DIR */
  char *images; /* BERTH_IMAGE_DIR */
  char cluster[64];
  pid_t agent; /* -1 when not running */
  int agent_starts;
} ts_e2e;

/* Builds the images once per suite (tests/fixtures/mkimages.sh and mksample.sh). */
void ts_e2e_suite_setup (void);
void ts_e2e_suite_teardown (void);

/* Enters a new network namespace (lo and the dummy host link up) and mount namespace, starts
 * berth-control, writes the agent's configuration (extra_config: more KEY=VALUE lines, may be
 * NULL), imports the images, starts berth-agent and waits until it is connected. */
void ts_e2e_setup (ts_e2e *e, const char *extra_config);
/* The same with berth-control's --subnets file (JSON text) for awsvpc tasks. */
void ts_e2e_setup_subnets (ts_e2e *e, const char *extra_config, const char *subnets);
/* Kills the agent and berth-control, removes every container (no shim, cgroup or mount outlives
 * the test) and the temp dir. */
void ts_e2e_teardown (ts_e2e *e);

/* Starts berth-agent (not waiting for anything). */
void ts_e2e_agent_start (ts_e2e *e);
/* Sends sig to the agent and reaps it; returns the wait status. */
int ts_e2e_agent_signal (ts_e2e *e, int sig);
/* Waits until berth-control says the instance's agent is connected (the instance registered). */
void ts_e2e_wait_connected (ts_e2e *e);
/* The cluster's only container instance ARN (newly allocated). */
char *ts_e2e_instance_arn (ts_e2e *e);
/* berth-control: SIGKILL (or SIGTERM) and start again on the same data directory and port. */
void ts_e2e_cp_stop (ts_e2e *e, int sig);
void ts_e2e_cp_start (ts_e2e *e);

/* register-task-definition: family, more CLI arguments (e.g. "--network-mode bridge", may be
 * ""), the container definitions JSON; returns the task definition ARN (newly allocated). */
char *ts_e2e_register (ts_e2e *e, const char *family, const char *args, const char *containers);
/* run-task of one task; returns its ARN (newly allocated). */
char *ts_e2e_run (ts_e2e *e, const char *taskdef);
/* run-task --count n; the ARNs into arns[0..n-1] (newly allocated). */
void ts_e2e_run_n (ts_e2e *e, const char *taskdef, int n, char **arns);
void ts_e2e_stop_task (ts_e2e *e, const char *task, const char *reason);
/* describe-tasks of one task: the task object (caller frees). */
cJSON *ts_e2e_describe (ts_e2e *e, const char *task);
/* describe-tasks of n tasks (at most 100) in one call: the tasks array (caller frees). */
cJSON *ts_e2e_describe_many (ts_e2e *e, char *const *arns, int n);
/* The task of arn in such an array, or NULL. */
const cJSON *ts_e2e_task_in (const cJSON *tasks, const char *arn);
/* Polls describe-tasks until cond (task, arg) holds, up to timeout_s; returns the task (caller
 * frees), failing the test with the last description otherwise. */
cJSON *ts_e2e_wait (ts_e2e *e, const char *task, bool (*cond) (const cJSON *task, void *arg),
                    void *arg, int timeout_s);
/* Waits for lastStatus == status. */
cJSON *ts_e2e_wait_status (ts_e2e *e, const char *task, const char *status, int timeout_s);
/* `aws ecs wait tasks-running` (the CLI's own waiter). */
void ts_e2e_cli_wait_running (ts_e2e *e, const char *task);
/* The container called name in a described task, or NULL. */
const cJSON *ts_e2e_container (const cJSON *task, const char *name);
/* A number member (or def when absent). */
int ts_e2e_int (const cJSON *obj, const char *key, int def);

/* Every task state change berth-control accepted, in order, as logged at debug level
 * ("TASKARN STATUS name=STATUS[/exit] ..."); a NULL-terminated list (strv_free). */
char **ts_e2e_accepted_changes (const ts_e2e *e);

/* What the agent holds on the host: containers in the runtime root, shim state dirs, live shim
 * processes of this test, root filesystems, netns pins, bridge address allocations and nft
 * port mappings. */
typedef struct ts_e2e_resources
{
  int containers, shim_dirs, shims, rootfs, pins, ipam, dnat;
} ts_e2e_resources;
void ts_e2e_count_resources (const ts_e2e *e, ts_e2e_resources *r);

/* Adds test fn to tc unless BERTH_E2E_ONLY=substring names others (for debugging). */
#define TS_E2E_ADD(tc, fn)                                                                         \
  do                                                                                               \
    if (!getenv ("BERTH_E2E_ONLY") || strstr (#fn, getenv ("BERTH_E2E_ONLY")))                     \
      tcase_add_test (tc, fn);                                                                     \
  while (0)

#endif
