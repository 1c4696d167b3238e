/* Shared helpers for Berth's Check tests: where the build is, running programs, temp dirs. */
#ifndef BERTH_TESTS_SUPPORT_H
#define BERTH_TESTS_SUPPORT_H

#include <check.h>
#include <stdbool.h>
#include <sys/types.h>

/* Runs a suite with Check's defaults (a fork per test) and returns main's exit code. */
int ts_run_suite (Suite *s);
/* $BERTH_BUILD (set by tests/run.sh), else "build". */
const char *ts_build_dir (void);
/* Newly allocated "$BERTH_BUILD/bin/<name>". */
char *ts_bin (const char *name);
/* Newly allocated path of the busybox rootfs built by `make rootfs`. */
char *ts_rootfs (void);
/* A fresh directory under /tmp (newly allocated path); removed by ts_rmtree. */
char *ts_mkdtemp (const char *prefix);
void ts_rmtree (const char *path);
/* Runs argv, collecting stdout and stderr together into *out (newly allocated, may be NULL)
 * and the wait status; returns 0 if it could be run. */
int ts_run (char *const argv[], char **out, int *status);
/* Like ts_run with a shell command line. */
int ts_sh (const char *cmd, char **out, int *status);
/* Runs a shell command line and fails the test (with the output) unless it exits 0. */
void ts_sh_ok (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
/* A TCP port on 127.0.0.1 that was free a moment ago. */
int ts_free_port (void);
/* Exit code of a wait status, or 128+signal. */
int ts_exit_code (int status);
bool ts_is_root (void);
/* Polls cond (a function returning true when done) every 10 ms for up to timeout_ms. */
bool ts_wait_for (bool (*cond) (void *), void *arg, int timeout_ms);
/* Reads a whole small file (newly allocated), NULL on error. */
char *ts_read_file (const char *path);
/* Moves the calling process (a test case's forked child) into a new network namespace with lo
 * up: whatever the test then starts (berth-control, berth-agent with its bridge and nft table,
 * containers) can reach only itself, and the host's network is never touched. */
void ts_private_net (void);

#endif
