/* Test helpers for berth-control: a real server on a free loopback port with a temporary data
 * directory, and the real aws CLI (Debian's /usr/bin/aws) pointed at it. */
#ifndef BERTH_TESTS_SUPPORT_CP_H
#define BERTH_TESTS_SUPPORT_CP_H

#include <cJSON.h>
#include <sys/types.h>

typedef struct ts_cp
{
  char *dir; /* data directory: credentials, store, log */
  int port;
  pid_t pid; /* -1 when not running */
} ts_cp;

/* More berth-control arguments for every later start (NULL-terminated, at most 4; the strings
 * must stay valid), e.g. short agent timeouts. */
void ts_cp_set_extra_args (const char *const *args);

/* Makes a data directory, picks a port, points the CLI's environment at the server (admin
 * profile, no other credentials, no retries) and starts berth-control. */
void ts_cp_setup (ts_cp *cp);
/* Kills the server if it runs and removes the data directory. */
void ts_cp_teardown (ts_cp *cp);
/* Starts berth-control on cp->dir and cp->port, its log appended to cp->dir/log; with
 * --subnets cp->dir/subnets.json when that file exists. */
void ts_cp_start (ts_cp *cp);
/* Sends sig and reaps the server; returns the wait status. */
int ts_cp_signal (ts_cp *cp, int sig);

/* Runs `aws ecs <args>` against the server; returns the exit code, *out its stdout+stderr. */
int ts_cp_aws (const ts_cp *cp, char **out, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* Requires success and returns the parsed JSON output. */
cJSON *ts_cp_aws_ok (const ts_cp *cp, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Requires failure with "(code)" in the CLI's message and returns that message (newly
 * allocated) for further checks. */
char *ts_cp_aws_fails_with (const ts_cp *cp, const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* One API call signed (SigV4, libcurl) with profile's key from cp->dir/credentials; target is
 * the whole X-Amz-Target ("AmazonEC2ContainerServiceV20141113.RunTask", "BerthChannelV1.Poll").
 * Returns the HTTP status (0 when no answer came), *out the body (newly allocated, may be NULL).
 * Safe from several threads at once (no Check assertions inside). */
long ts_cp_call (const ts_cp *cp, const char *profile, const char *target, const char *json,
                 char **out);
/* The value of key in the profile's section of cp->dir/credentials (newly allocated) or NULL. */
char *ts_cp_credential (const ts_cp *cp, const char *profile, const char *key);
/* Writes content to cp->dir/name; returns the path (newly allocated). */
char *ts_cp_write (const ts_cp *cp, const char *name, const char *content);
/* The string at obj.key (or "" when absent or not a string). */
const char *ts_json_str (const cJSON *obj, const char *key);

#endif
