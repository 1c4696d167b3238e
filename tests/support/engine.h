/* Fixture for the task engine's integration tests: an image store with the busybox image of
 * tests/fixtures/mkimages.sh imported, berth-shim and berth-runtime, the agent store on disk, an
 * sd-event loop, and helpers to inject ACS tasks and wait for their statuses. */
#ifndef BERTH_TESTS_SUPPORT_ENGINE_H
#define BERTH_TESTS_SUPPORT_ENGINE_H

#include "agent/agent.h"
#include "lib/error.h"

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#define TS_ENG_IMAGE "test/busybox:v1"
#define TS_ENG_ARN_PREFIX "arn:aws:ecs:us-east-1:000000000000:task/default/"

struct net_bridge;
struct ts_netenv;

typedef struct ts_eng
{
  char *dir, *store_path, *shim, *runtime, *state, *volumes, *rtroot, *img_root;
  agent_config cfg; /* ECS_IMAGE_PULL_BEHAVIOR=once, 2 s stop timeout, cleanup after 1 h */
  agent_store *store;
  sd_event *ev;
  struct img_store *images;
  struct img_registry *reg;
  struct img_puller *puller;
  agent_engine *eng;
  agent_http *http; /* NULL unless the test makes one (freed by the teardown) */
  agent_credprov *creds;
  agent_endpoints *endpoints; /* passed to the engine; NULL unless the test makes one (freed by
                                 the teardown, after the engine) */
  int host_ns;                /* ts_eng_bridge's "host" namespace (closed by the teardown) */
  /* options read by ts_eng_open (set them between setup and open) */
  uint64_t host_mem_mib;     /* 0: 1 TiB */
  unsigned max_creates;      /* 0: the engine's default */
  struct net_bridge *bridge; /* networkMode bridge */
  int awsvpc_host_netns_fd;  /* awsvpc: the ENIs' namespace (0: the caller's) */
  const char *netns_run_dir; /* awsvpc: the netns pin directory */
} ts_eng;

/* Builds the test images once per suite (a temporary directory, newly allocated). */
char *ts_eng_images_build (void);
void ts_eng_images_remove (char *dir);

/* Defines the Check fixtures of a test case whose tests use f (a file-scope ts_eng) as set up:
 * eng_suite_setup and eng_suite_teardown (unchecked: the images, built once into
 * eng_images_dir), eng_setup and eng_teardown (checked: ts_eng_setup, ts_eng_teardown). */
#define TS_ENG_FIXTURES(f)                                                                         \
  static char *eng_images_dir;                                                                     \
  static void eng_suite_setup (void)                                                               \
  {                                                                                                \
    eng_images_dir = ts_eng_images_build ();                                                       \
  }                                                                                                \
  static void eng_suite_teardown (void)                                                            \
  {                                                                                                \
    ts_eng_images_remove (eng_images_dir);                                                         \
  }                                                                                                \
  static void eng_setup (void)                                                                     \
  {                                                                                                \
    ts_eng_setup (&(f), eng_images_dir);                                                           \
  }                                                                                                \
  static void eng_teardown (void)                                                                  \
  {                                                                                                \
    ts_eng_teardown (&(f));                                                                        \
  }

/* Enters a private mount namespace, makes the directories, imports the image from images_dir,
 * opens the puller and the loop. The engine is not open yet. */
void ts_eng_setup (ts_eng *f, const char *images_dir);
/* Opens the store (unless open) and the engine with f's options. */
void ts_eng_open (ts_eng *f);
/* Makes a "host" namespace in env's run_dir (the test's, begun) and a bridge working in it, as
 * f->host_ns and f->bridge (for networkMode bridge); the teardown closes both. */
void ts_eng_bridge (ts_eng *f, const struct ts_netenv *env);
/* Frees the engine, kills every container left (waiting for the shims), frees everything. */
void ts_eng_teardown (ts_eng *f);
/* Deletes (killing) every container under the runtime root rt_root, waits for their shims under
 * state/shims to write their last state and exit, and removes their root filesystems from the
 * image store at img_root (images: that store open, or NULL to open it here). For teardowns:
 * errors are ignored. */
void ts_eng_kill_containers (const char *rt_root, const char *state, struct img_store *images,
                             const char *img_root);

/* Fails the test with err's message when r < 0; frees err. */
void ts_eng_ok (int r, berr **err);
/* a then b, newly allocated. */
char *ts_eng_cat (const char *a, const char *b);

/* Stores an ACS task (containers: a JSON array text, possibly followed by more task members) and
 * tells the engine. */
void ts_eng_inject_full (ts_eng *f, const char *arn, const char *mode, const char *containers,
                         const char *memory);
/* The same with 512 MiB. */
void ts_eng_inject (ts_eng *f, const char *arn, const char *mode, const char *containers);
/* Sets the stored task's desired status to STOPPED and tells the engine. */
void ts_eng_desire_stopped (ts_eng *f, const char *arn);

bool ts_eng_status_is (ts_eng *f, const char *arn, const char *want);
/* Runs the loop until the task's known status is want; fails after timeout_ms. */
void ts_eng_run_until (ts_eng *f, const char *arn, const char *want, int timeout_ms);
void ts_eng_run_for (ts_eng *f, int ms);
/* A container's host pid (0 when not running). */
pid_t ts_eng_pid_of (ts_eng *f, const char *arn, const char *name);
/* Its exit code (-1: it never ran or still runs); fails the test when there is no such container.
 */
int ts_eng_code_of (ts_eng *f, const char *arn, const char *name);

/* Whether any process's command line has the word w (an exact argument). */
bool ts_eng_process_with_arg (const char *w);

/* The unsent outbox entries of arn, oldest first, parsed (a JSON array); marks them sent. */
cJSON *ts_eng_outbox (ts_eng *f, const char *arn);
/* A report's container called name; fails the test when absent. */
const cJSON *ts_eng_container_of (const cJSON *report, const char *name);
/* Its exitCode, -1 when none. */
int ts_eng_exit_code_of (const cJSON *report, const char *name);

#endif
