/* Transient scopes over sd-bus, so on systemd hosts the tasks' cgroups are delegated to Berth
 * and live outside berth-agent.service (docs/cgroups.md). */
#include "cgroups/internal.h"

#include "lib/cleanup.h"
#include "lib/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <time.h>

/* A TCG guest can take seconds to start a unit; a stuck systemd must not hang the agent. */
#define JOB_TIMEOUT_USEC (30ULL * 1000000ULL)

#define _cleanup_bus_ __attribute__ ((cleanup (sd_bus_flush_close_unrefp)))
#define _cleanup_msg_ __attribute__ ((cleanup (sd_bus_message_unrefp)))
#define _cleanup_slot_ __attribute__ ((cleanup (sd_bus_slot_unrefp)))
#define _cleanup_bus_error_ __attribute__ ((cleanup (sd_bus_error_free)))

bool cg_systemd_running (void)
{
  return sd_booted () > 0; /* /run/systemd/system exists */
}

struct job_wait
{
  char *job;    /* object path of the job we wait for */
  char *result; /* "done", "failed", "canceled", ... once removed */
  bool no_such_unit;
};

/* JobRemoved(u id, o job, s unit, s result). systemd sends job signals to the client that
 * queued the job even without Subscribe(). Signals arriving during sd_bus_call are queued and
 * only dispatched by sd_bus_process, after job is known. */
static int on_job_removed (sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
  struct job_wait *w = userdata;
  uint32_t id;
  const char *path, *unit, *result;
  if (sd_bus_message_read (m, "uoss", &id, &path, &unit, &result) < 0)
    return 0;
  if (w->job && w->result == NULL && strcmp (path, w->job) == 0)
    w->result = strdup (result);
  return 0;
}

static uint64_t now_usec (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

static int wait_job (sd_bus *bus, struct job_wait *w, const char *unit, berr **err)
{
  uint64_t deadline = now_usec () + JOB_TIMEOUT_USEC;
  while (w->result == NULL)
    {
      int r = sd_bus_process (bus, NULL);
      if (r > 0)
        continue;
      if (r == 0 && now_usec () < deadline)
        r = sd_bus_wait (bus, deadline - now_usec ());
      else if (r == 0)
        return berr_make (err, ETIMEDOUT, "systemd job %s for `%s` did not finish", w->job, unit);
      if (r < 0)
        return berr_sysn (err, -r, "wait for systemd job %s for `%s`", w->job, unit);
    }
  if (strcmp (w->result, "done") != 0)
    return berr_make (err, EIO, "systemd job for `%s` ended with `%s`", unit, w->result);
  return 0;
}

/* Opens the system bus and subscribes to JobRemoved before any job is queued. */
static int open_bus (sd_bus **bus, sd_bus_slot **slot, struct job_wait *w, berr **err)
{
  int r = sd_bus_open_system (bus);
  if (r < 0)
    return berr_sysn (err, -r, "connect to the system bus");
  r = sd_bus_match_signal (*bus, slot, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                           "org.freedesktop.systemd1.Manager", "JobRemoved", on_job_removed, w);
  if (r < 0)
    return berr_sysn (err, -r, "subscribe to systemd's JobRemoved");
  return 0;
}

/* Sends m, takes the job path from the reply and waits for the job. */
static int run_job (sd_bus *bus, sd_bus_message *m, struct job_wait *w, const char *what,
                    const char *unit, berr **err)
{
  _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
  _cleanup_msg_ sd_bus_message *reply = NULL;
  int r = sd_bus_call (bus, m, JOB_TIMEOUT_USEC, &error, &reply);
  if (r < 0)
    {
      w->no_such_unit = sd_bus_error_has_name (&error, "org.freedesktop.systemd1.NoSuchUnit");
      return berr_sysn (err, -r, "%s `%s`: %s", what, unit, error.message ? error.message : "");
    }
  const char *job;
  if ((r = sd_bus_message_read (reply, "o", &job)) < 0)
    return berr_sysn (err, -r, "%s `%s`: read the job", what, unit);
  if ((w->job = strdup (job)) == NULL)
    return berr_make (err, ENOMEM, "%s `%s`", what, unit);
  return wait_job (bus, w, unit, err);
}

static int append_scope_properties (sd_bus_message *m, const char *unit, const char *slice,
                                    pid_t pid)
{
  char desc[256];
  snprintf (desc, sizeof desc, "Berth task %s", unit);
  int r = sd_bus_message_append (m, "ss", unit, "fail");
  if (r >= 0)
    r = sd_bus_message_open_container (m, 'a', "(sv)");
  if (r >= 0)
    r = sd_bus_message_append (m, "(sv)(sv)(sv)(sv)(sv)", "Slice", "s", slice, "Delegate", "b", 1,
                               "PIDs", "au", 1, (uint32_t)pid, "Description", "s", desc,
                               "CollectMode", "s", "inactive-or-failed");
  if (r >= 0)
    r = sd_bus_message_close_container (m);
  if (r >= 0)
    r = sd_bus_message_append (m, "a(sa(sv))", 0); /* no auxiliary units */
  return r;
}

/* The cgroup path of pid relative to the hierarchy roots: the name=systemd line on v1 and
 * hybrid hosts (systemd's own tracking hierarchy), else the v2 "0::" line. */
static int pid_cgroup_path (pid_t pid, char **out, berr **err)
{
  char file[64];
  _cleanup_free_ char *text = NULL;
  snprintf (file, sizeof file, "/proc/%d/cgroup", (int)pid);
  if (bfs_read_all (AT_FDCWD, file, 1 << 16, &text, NULL, err) < 0)
    return -1;
  const char *v2 = NULL, *named = NULL;
  for (char *line = text, *next; line && *line; line = next)
    {
      next = strchr (line, '\n');
      if (next)
        *next++ = '\0';
      if (strncmp (line, "0::", 3) == 0)
        v2 = line + 3;
      else if (strstr (line, ":name=systemd:"))
        named = strstr (line, ":name=systemd:") + strlen (":name=systemd:");
    }
  const char *p = named ? named : v2;
  if (p == NULL)
    return berr_make (err, ENOENT, "`%s` names no systemd or cgroup2 group", file);
  while (*p == '/')
    p++;
  if ((*out = strdup (p)) == NULL)
    return berr_make (err, ENOMEM, "%s", file);
  return 0;
}

int cg_systemd_create_scope (const char *unit, const char *slice, pid_t pid, char **cgroup_path,
                             berr **err)
{
  _cleanup_bus_ sd_bus *bus = NULL;
  _cleanup_slot_ sd_bus_slot *slot = NULL;
  _cleanup_msg_ sd_bus_message *m = NULL;
  struct job_wait w = { 0 };
  int ret = open_bus (&bus, &slot, &w, err);
  if (ret == 0)
    {
      int r = sd_bus_message_new_method_call (
          bus, &m, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
          "org.freedesktop.systemd1.Manager", "StartTransientUnit");
      if (r >= 0)
        r = append_scope_properties (m, unit, slice, pid);
      ret = r < 0 ? berr_sysn (err, -r, "build StartTransientUnit for `%s`", unit) : 0;
    }
  if (ret == 0)
    ret = run_job (bus, m, &w, "start transient scope", unit, err);
  if (ret == 0)
    ret = pid_cgroup_path (pid, cgroup_path, err);
  free (w.job);
  free (w.result);
  return ret < 0 ? berr_wrap (err, "systemd scope `%s`", unit) : 0;
}

int cg_systemd_stop_unit (const char *unit, berr **err)
{
  _cleanup_bus_ sd_bus *bus = NULL;
  _cleanup_slot_ sd_bus_slot *slot = NULL;
  _cleanup_msg_ sd_bus_message *m = NULL;
  struct job_wait w = { 0 };
  int ret = open_bus (&bus, &slot, &w, err);
  if (ret == 0)
    {
      int r = sd_bus_message_new_method_call (bus, &m, "org.freedesktop.systemd1",
                                              "/org/freedesktop/systemd1",
                                              "org.freedesktop.systemd1.Manager", "StopUnit");
      if (r >= 0)
        r = sd_bus_message_append (m, "ss", unit, "replace");
      ret = r < 0 ? berr_sysn (err, -r, "build StopUnit for `%s`", unit) : 0;
    }
  if (ret == 0)
    ret = run_job (bus, m, &w, "stop unit", unit, err);
  free (w.job);
  free (w.result);
  /* A unit that is already gone is stopped. */
  if (ret < 0 && w.no_such_unit)
    {
      berr_free (err);
      return 0;
    }
  return ret;
}
