/* Container state on disk (<root>/<id>/state.json, the OCI lifecycle) and the operations that
 * act on a recorded container: start, kill through a pidfd, delete. */
#include "runtime/internal.h"

#include "cgroups/cgroups.h"
#include "lib/cleanup.h"
#include "lib/clock.h"
#include "lib/fs.h"
#include "lib/json.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAX (64 << 10)

int rt_validate_id (const char *id, berr **err)
{
  if (id == NULL || *id == '\0' || strlen (id) > 128 || id[0] == '.')
    return berr_make (err, EINVAL, "invalid container id `%s`", id ? id : "");
  for (const char *p = id; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
          || *p == '-' || *p == '_' || *p == '.'))
      return berr_make (err, EINVAL, "invalid container id `%s`: use [A-Za-z0-9_.-]", id);
  return 0;
}

int rt_state_dir_open (const char *state_root, const char *id, bool create, berr **err)
{
  if (rt_validate_id (id, err) < 0)
    return -1;
  if (create && bfs_mkdirs (state_root, 0700, err) < 0)
    return -1;
  _cleanup_close_ int rootfd = open (state_root, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (rootfd < 0)
    return errno == ENOENT && !create ? berr_make (err, ENOENT, "container `%s` does not exist", id)
                                      : berr_sys (err, "open state root `%s`", state_root);
  if (create && mkdirat (rootfd, id, 0700) < 0)
    return errno == EEXIST ? berr_make (err, EEXIST, "container `%s` already exists", id)
                           : berr_sys (err, "create state directory for `%s`", id);
  int fd = openat (rootfd, id, O_DIRECTORY | O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return errno == ENOENT ? berr_make (err, ENOENT, "container `%s` does not exist", id)
                           : berr_sys (err, "open state directory of `%s`", id);
  return fd;
}

int rt_state_save (int dirfd, const struct rt_state *st, berr **err)
{
  _cleanup_json_ cJSON *j = cJSON_CreateObject ();
  char created[BCLOCK_RFC3339_LEN];
  bclock_rfc3339 (st->created_ns, created);
  if (j == NULL || !cJSON_AddStringToObject (j, "ociVersion", "1.0.2")
      || !cJSON_AddStringToObject (j, "id", st->id)
      || !cJSON_AddStringToObject (j, "status", st->status)
      || !cJSON_AddNumberToObject (j, "pid", st->pid)
      || !cJSON_AddStringToObject (j, "bundle", st->bundle ? st->bundle : "")
      || !cJSON_AddStringToObject (j, "created", created)
      || !cJSON_AddNumberToObject (j, "pidStartTime", (double)st->pid_start_time)
      || (st->cgroup_path && !cJSON_AddStringToObject (j, "cgroupPath", st->cgroup_path)))
    return berr_make (err, ENOMEM, "out of memory");
  /* The state root is runtime state (/run): atomic for readers, no fsync (as other runtimes). */
  _cleanup_free_ char *text = cJSON_PrintUnformatted (j);
  if (text == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  return bfs_write_atomic_volatile (dirfd, "state.json", text, strlen (text), 0600, err);
}

uint64_t rt_proc_start_time (pid_t pid)
{
  char path[64];
  snprintf (path, sizeof path, "/proc/%d/stat", (int)pid);
  _cleanup_free_ char *buf = NULL;
  if (bfs_read_all (AT_FDCWD, path, 8192, &buf, NULL, NULL) < 0)
    return 0;
  /* comm may contain spaces and parentheses: fields start after the last ')'. */
  char *p = strrchr (buf, ')');
  if (p == NULL)
    return 0;
  char state = 0;
  unsigned long long start = 0;
  /* state is field 3, starttime field 22: skip fields 4..21. */
  if (sscanf (p + 1,
              " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
              &state, &start)
      != 2)
    return 0;
  return state == 'Z' || state == 'X' ? 0 : start;
}

int rt_state_pidfd (const struct rt_state *st, berr **err)
{
  if (st->pid <= 0)
    return berr_make (err, ESRCH, "container `%s` has no process", st->id);
  _cleanup_close_ int fd = pidfd_open (st->pid, 0);
  if (fd < 0)
    return berr_make (err, ESRCH, "container `%s` is not running", st->id);
  /* The pidfd pins the process; if its start time matches, it is ours and not a reused pid. */
  if (rt_proc_start_time (st->pid) != st->pid_start_time)
    return berr_make (err, ESRCH, "container `%s` is not running", st->id);
  return steal_fd (&fd);
}

static int parse_state (const cJSON *j, struct rt_state *st, berr **err)
{
  const char *id = NULL, *status = NULL, *bundle = "", *created = NULL, *cg = NULL;
  int64_t pid = 0, start = 0;
  if (bjson_get_str (j, "id", true, &id, err) < 0
      || bjson_get_str (j, "status", true, &status, err) < 0
      || bjson_get_str (j, "bundle", false, &bundle, err) < 0
      || bjson_get_str (j, "created", false, &created, err) < 0
      || bjson_get_str (j, "cgroupPath", false, &cg, err) < 0
      || bjson_get_int (j, "pid", true, 0, INT32_MAX, &pid, err) < 0
      || bjson_get_int (j, "pidStartTime", false, 0, INT64_MAX, &start, err) < 0)
    return -1;
  st->id = strdup (id);
  st->status = strdup (status);
  st->bundle = strdup (bundle);
  st->cgroup_path = cg ? strdup (cg) : NULL;
  st->pid = (pid_t)pid;
  st->pid_start_time = (uint64_t)start;
  if (created)
    bclock_parse_rfc3339 (created, &st->created_ns);
  if (!st->id || !st->status || !st->bundle || (cg && !st->cgroup_path))
    return berr_make (err, ENOMEM, "out of memory");
  return 0;
}

static int set_status (struct rt_state *st, const char *status)
{
  char *s = strdup (status);
  if (s == NULL)
    return -1;
  free (st->status);
  st->status = s;
  return 0;
}

int rt_state_load (const char *state_root, const char *id, struct rt_state **out, berr **err)
{
  _cleanup_close_ int dfd = rt_state_dir_open (state_root, id, false, err);
  if (dfd < 0)
    return -1;
  _cleanup_json_ cJSON *j = NULL;
  if (bjson_read_file (dfd, "state.json", STATE_MAX, &j, err) < 0)
    return berr_wrap (err, "state of `%s`", id);
  struct rt_state *st = calloc (1, sizeof *st);
  if (st == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  if (parse_state (j, st, err) < 0)
    {
      rt_state_free (st);
      return berr_wrap (err, "state of `%s`", id);
    }
  bool alive = st->pid > 0 && rt_proc_start_time (st->pid) == st->pid_start_time;
  bool parked = faccessat (dfd, "exec.fifo", F_OK, 0) == 0;
  const char *now = !alive ? "stopped" : parked ? "created" : "running";
  if (set_status (st, now) < 0)
    {
      rt_state_free (st);
      return berr_make (err, ENOMEM, "out of memory");
    }
  *out = st;
  return 0;
}

void rt_state_free (struct rt_state *st)
{
  if (st == NULL)
    return;
  free (st->id);
  free (st->bundle);
  free (st->status);
  free (st->cgroup_path);
  free (st);
}

static void rt_state_freep (struct rt_state **st)
{
  rt_state_free (*st);
}
#define _cleanup_state_ __attribute__ ((cleanup (rt_state_freep)))

/* Opening the fifo for reading releases the container's init, which writes one byte and execs. */
int rt_container_start (const char *state_root, const char *id, berr **err)
{
  _cleanup_state_ struct rt_state *st = NULL;
  if (rt_state_load (state_root, id, &st, err) < 0)
    return -1;
  if (strcmp (st->status, "created") != 0)
    return berr_make (err, EINVAL, "container `%s` is %s, not created", id, st->status);
  _cleanup_close_ int dfd = rt_state_dir_open (state_root, id, false, err);
  if (dfd < 0)
    return -1;
  _cleanup_close_ int fifo = openat (dfd, "exec.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fifo < 0)
    return berr_sys (err, "open exec.fifo of `%s`", id);
  for (int waited = 0;; waited += 100)
    {
      struct pollfd p = { .fd = fifo, .events = POLLIN };
      int r = poll (&p, 1, 100);
      char c;
      if (r > 0 && read (fifo, &c, 1) == 1)
        break;
      if (rt_proc_start_time (st->pid) != st->pid_start_time || waited > 10000)
        return berr_make (err, EIO, "container `%s` did not start", id);
    }
  unlinkat (dfd, "exec.fifo", 0);
  set_status (st, "running");
  return rt_state_save (dfd, st, err);
}

int rt_container_kill (const char *state_root, const char *id, int sig, berr **err)
{
  _cleanup_state_ struct rt_state *st = NULL;
  if (rt_state_load (state_root, id, &st, err) < 0)
    return -1;
  _cleanup_close_ int pidfd = rt_state_pidfd (st, err);
  if (pidfd < 0)
    return -1;
  if (pidfd_send_signal (pidfd, sig, NULL, 0) < 0)
    return berr_sys (err, "signal container `%s`", id);
  return 0;
}

int rt_container_kill_all (const char *state_root, const char *id, int sig, berr **err)
{
  _cleanup_state_ struct rt_state *st = NULL;
  if (rt_state_load (state_root, id, &st, err) < 0)
    return -1;
  if (st->cgroup_path == NULL)
    return rt_container_kill (state_root, id, sig, err);
  cg_group *g = NULL;
  if (cg_open (st->cgroup_path, &g, err) < 0)
    return berr_wrap (err, "cgroup of `%s`", id);
  int r = cg_kill_all (g, sig, err);
  cg_free (g);
  return r;
}

static int kill_and_wait (const struct rt_state *st, berr **err)
{
  _cleanup_close_ int pidfd = rt_state_pidfd (st, NULL);
  if (pidfd < 0)
    return 0; /* already gone */
  if (pidfd_send_signal (pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
    return berr_sys (err, "kill container `%s`", st->id);
  struct pollfd p = { .fd = pidfd, .events = POLLIN };
  if (poll (&p, 1, 10000) <= 0)
    return berr_make (err, ETIMEDOUT, "container `%s` did not die after SIGKILL", st->id);
  return 0;
}

/* Processes exec'd into a container that shares the host pid namespace may linger: kill the
 * whole group before removing it. A group that is already gone is fine. */
static int remove_cgroup (const struct rt_state *st, berr **err)
{
  cg_group *g = NULL;
  if (cg_open (st->cgroup_path, &g, err) < 0)
    {
      if (berr_errno (*err) != ENOENT)
        return berr_wrap (err, "cgroup of `%s`", st->id);
      berr_free (err);
      return 0;
    }
  int r = (cg_kill_all (g, SIGKILL, err) < 0 || cg_destroy (g, err) < 0) ? -1 : 0;
  cg_free (g);
  return r < 0 ? berr_wrap (err, "remove cgroup of `%s`", st->id) : 0;
}

int rt_container_delete (const char *state_root, const char *id, bool force, berr **err)
{
  _cleanup_state_ struct rt_state *st = NULL;
  if (rt_state_load (state_root, id, &st, err) < 0)
    return -1;
  if (strcmp (st->status, "stopped") != 0 && !force)
    return berr_make (err, EBUSY, "container `%s` is %s: stop it first or use --force", id,
                      st->status);
  if (kill_and_wait (st, err) < 0)
    return -1;
  if (st->cgroup_path && remove_cgroup (st, err) < 0)
    return -1;
  _cleanup_free_ char *dir = NULL;
  if (asprintf (&dir, "%s/%s", state_root, id) < 0)
    return berr_make (err, ENOMEM, "out of memory");
  return bfs_remove_tree (AT_FDCWD, dir, err);
}
