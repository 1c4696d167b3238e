/* Container health checks for the task engine (ECS healthCheck): the command runs inside the
 * container through `berth-runtime exec`, forked from the loop and watched by pidfd, killed at
 * its timeout; UNKNOWN -> HEALTHY / UNHEALTHY with Docker's counting, which ECS uses. */
#include "agent/engine_internal.h"
#include "lib/clock.h"
#include "lib/strv.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const health_names[] = {
  [HS_NONE] = "UNKNOWN",
  [HS_UNKNOWN] = "UNKNOWN",
  [HS_HEALTHY] = "HEALTHY",
  [HS_UNHEALTHY] = "UNHEALTHY",
};

const char *eng_health_name (enum eng_health h)
{
  return health_names[h];
}

static const cJSON *check_of (const eng_container *c)
{
  const cJSON *hc = cJSON_GetObjectItemCaseSensitive (c->def, "healthCheck");
  return cJSON_IsObject (hc) ? hc : NULL;
}

/* A duration member in seconds (ECS gives integers; fractions are kept for tests). */
static uint64_t secs_us (const cJSON *hc, const char *key, double dflt)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (hc, key);
  double s = cJSON_IsNumber (v) && v->valuedouble > 0 ? v->valuedouble : dflt;
  return (uint64_t)(s * 1e6);
}

static uint64_t mono_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The check's argv inside the container: ["CMD", args...] or ["CMD-SHELL", "line"]. */
static char **check_argv (const cJSON *hc)
{
  const cJSON *cmd = cJSON_GetObjectItemCaseSensitive (hc, "command");
  const char *kind = cJSON_GetStringValue (cJSON_GetArrayItem (cmd, 0));
  char **argv = NULL;
  if (kind == NULL || cJSON_GetArraySize (cmd) < 2)
    return NULL;
  if (strcmp (kind, "CMD-SHELL") == 0)
    {
      const char *line = cJSON_GetStringValue (cJSON_GetArrayItem (cmd, 1));
      if (line == NULL || strv_append (&argv, "/bin/sh") < 0 || strv_append (&argv, "-c") < 0
          || strv_append (&argv, line) < 0)
        return strv_free (argv), NULL;
      return argv;
    }
  if (strcmp (kind, "CMD") != 0)
    return NULL;
  for (int i = 1; i < cJSON_GetArraySize (cmd); i++)
    {
      const char *a = cJSON_GetStringValue (cJSON_GetArrayItem (cmd, i));
      if (a == NULL || strv_append (&argv, a) < 0)
        return strv_free (argv), NULL;
    }
  return argv;
}

static void set_health (eng_container *c, enum eng_health h)
{
  if (c->health == h)
    return;
  blog_info ("container %s: %s -> %s", c->id, health_names[c->health], health_names[h]);
  c->health = h;
  c->health_since_ns = bclock_real_ns ();
  eng_step (c->task); /* dependents wait for HEALTHY, or can never start */
}

/* Docker's counting: a pass is HEALTHY at once; failures in the start period do not count;
 * `retries` failures in a row are UNHEALTHY. */
static void record (eng_container *c, bool pass)
{
  const cJSON *hc = check_of (c);
  const cJSON *r = cJSON_GetObjectItemCaseSensitive (hc, "retries");
  unsigned retries = cJSON_IsNumber (r) && r->valueint > 0 ? (unsigned)r->valueint : 3;
  if (pass)
    {
      c->health_fails = 0;
      set_health (c, HS_HEALTHY);
      return;
    }
  if (mono_us () - (uint64_t)c->started_mono_us < secs_us (hc, "startPeriod", 0))
    return;
  if (++c->health_fails >= retries)
    set_health (c, HS_UNHEALTHY);
}

static int on_tick (sd_event_source *s, uint64_t usec, void *userdata);

static void arm (eng_container *c)
{
  uint64_t interval = secs_us (check_of (c), "interval", 30);
  c->health_timer = sd_event_source_disable_unref (c->health_timer);
  if (sd_event_add_time_relative (c->task->e->o.ev, &c->health_timer, CLOCK_MONOTONIC, interval, 0,
                                  on_tick, c)
      < 0)
    blog_warn ("container %s: cannot arm the health check timer", c->id);
}

/* Kills the check's process group (berth-runtime and the process it cloned into the container:
 * the latter stays in the group unless it makes its own session). */
static void kill_check (eng_container *c)
{
  if (c->health_pid > 0)
    kill (-c->health_pid, SIGKILL);
}

static int on_check_timeout (sd_event_source *s, uint64_t usec, void *userdata)
{
  eng_container *c = userdata;
  (void)s, (void)usec;
  blog_info ("container %s: health check timed out", c->id);
  kill_check (c); /* the exit handler records the failure */
  return 0;
}

static int on_check_exit (sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  eng_container *c = userdata;
  siginfo_t si = { 0 };
  (void)s, (void)revents;
  if (waitid (P_PIDFD, (id_t)fd, &si, WEXITED) < 0)
    si.si_code = 0;
  c->health_watch = sd_event_source_disable_unref (c->health_watch);
  c->health_kill = sd_event_source_disable_unref (c->health_kill);
  c->health_pid = 0;
  arm (c); /* the next check starts an interval after this one ended */
  record (c, si.si_code == CLD_EXITED && si.si_status == 0);
  return 0;
}

static pid_t spawn (eng_container *c, char **argv)
{
  agent_engine *e = c->task->e;
  size_t n = strv_len (argv);
  const char **full = calloc (n + 6, sizeof *full);
  if (full == NULL)
    return -1;
  full[0] = e->o.runtime_path, full[1] = "--root", full[2] = e->o.runtime_root;
  full[3] = "exec", full[4] = c->id;
  for (size_t i = 0; i < n; i++)
    full[5 + i] = argv[i];
  pid_t pid = fork ();
  if (pid == 0)
    {
      setpgid (0, 0);
      int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
      if (null >= 0)
        dup2 (null, 0), dup2 (null, 1), dup2 (null, 2);
      execv (full[0], (char *const *)full);
      _exit (127);
    }
  if (pid > 0)
    setpgid (pid, pid); /* also here: the timeout may come before the child ran */
  free (full);
  return pid;
}

static int on_tick (sd_event_source *s, uint64_t usec, void *userdata)
{
  eng_container *c = userdata;
  const cJSON *hc = check_of (c);
  char **argv = check_argv (hc);
  (void)s, (void)usec;
  c->health_timer = sd_event_source_disable_unref (c->health_timer);
  pid_t pid = argv ? spawn (c, argv) : -1;
  strv_free (argv);
  int fd = pid > 0 ? (int)syscall (SYS_pidfd_open, pid, 0) : -1;
  if (fd < 0
      || sd_event_add_io (c->task->e->o.ev, &c->health_watch, fd, EPOLLIN, on_check_exit, c) < 0)
    {
      blog_warn ("container %s: cannot run the health check", c->id);
      if (fd >= 0)
        close (fd);
      if (pid > 0)
        kill (-pid, SIGKILL), waitpid (pid, NULL, 0);
      arm (c);
      record (c, false);
      return 0;
    }
  sd_event_source_set_io_fd_own (c->health_watch, true);
  c->health_pid = pid;
  sd_event_add_time_relative (c->task->e->o.ev, &c->health_kill, CLOCK_MONOTONIC,
                              secs_us (hc, "timeout", 5), 0, on_check_timeout, c);
  return 0;
}

void eng_health_start (eng_container *c)
{
  const cJSON *hc = check_of (c);
  char **argv = hc ? check_argv (hc) : NULL;
  if (argv == NULL)
    return;
  strv_free (argv);
  c->health = HS_UNKNOWN;
  c->health_fails = 0;
  c->health_since_ns = bclock_real_ns ();
  c->started_mono_us = (int64_t)mono_us ();
  arm (c);
}

/* The container stopped (or the engine is freed): no more checks; a running one is killed. */
void eng_health_stop (eng_container *c)
{
  c->health_timer = sd_event_source_disable_unref (c->health_timer);
  c->health_kill = sd_event_source_disable_unref (c->health_kill);
  c->health_watch = sd_event_source_disable_unref (c->health_watch);
  if (c->health_pid > 0)
    {
      kill_check (c);
      waitpid (c->health_pid, NULL, 0);
      c->health_pid = 0;
    }
}
