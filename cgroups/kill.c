/* Signalling every process of a group and its subgroups: cgroup.kill on v2 for SIGKILL (one
 * atomic write, no race with fork), else a walk over cgroup.procs, repeated for SIGKILL until
 * the group is empty. */
#include "cgroups/internal.h"

#include "lib/cleanup.h"
#include "lib/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long SIGKILL may take to empty the group (a process in uninterruptible sleep dies late). */
#define KILL_TIMEOUT_MS 5000
#define PROCS_MAX (4u << 20)

static void sleep_10ms (void)
{
  struct timespec ts = { .tv_sec = 0, .tv_nsec = 10 * 1000000L };
  nanosleep (&ts, NULL);
}

static int signal_procs (int dfd, const char *dir, int sig, size_t *found, berr **err)
{
  _cleanup_free_ char *procs = NULL;
  _cleanup_berr_ berr *read_err = NULL;
  if (bfs_read_all (dfd, "cgroup.procs", PROCS_MAX, &procs, NULL, &read_err) < 0)
    {
      int e = berr_errno (read_err);
      if (e == ENOENT || e == ENODEV)
        return 0; /* the subgroup went away meanwhile */
      return berr_make (err, e, "list processes of `%s`: %s", dir, read_err->msg);
    }
  for (char *line = procs, *next; line && *line; line = next)
    {
      next = strchr (line, '\n');
      if (next)
        *next++ = '\0';
      uint64_t pid;
      if (bfs_parse_u64 (line, &pid) < 0 || pid == 0)
        continue;
      /* A pid read from cgroup.procs can exit before the signal; v1 has no better primitive. */
      if (kill ((pid_t)pid, sig) < 0 && errno != ESRCH)
        return berr_sys (err, "kill %llu in `%s`", (unsigned long long)pid, dir);
      (*found)++;
    }
  return 0;
}

/* Signals the processes of the group open as dfd and of every subgroup below it. */
static int signal_tree (int dfd, const char *dir, int sig, size_t *found, berr **err)
{
  if (signal_procs (dfd, dir, sig, found, err) < 0)
    return -1;
  int dup_fd = fcntl (dfd, F_DUPFD_CLOEXEC, 0);
  DIR *d = dup_fd >= 0 ? fdopendir (dup_fd) : NULL;
  if (d == NULL)
    {
      if (dup_fd >= 0)
        close (dup_fd);
      return berr_sys (err, "list subgroups of `%s`", dir);
    }
  struct dirent *e;
  int ret = 0;
  while (ret == 0 && (e = readdir (d)) != NULL)
    {
      if (e->d_type != DT_DIR || strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      _cleanup_close_ int child = openat (dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (child >= 0)
        ret = signal_tree (child, e->d_name, sig, found, err);
    }
  closedir (d);
  return ret;
}

/* The hierarchy whose cgroup.procs to read: the v2 group, else a v1 one (pids first, as the
 * one every container has on hosts that limit pids). */
static const char *procs_dir (const cg_group *g)
{
  static const enum cgi_ctrl order[] = { CGI_PIDS, CGI_MEMORY, CGI_CPU, CGI_CPUACCT, CGI_DEVICES };
  if (g->unified)
    return g->v2_dir;
  for (size_t i = 0; i < ARRAY_SIZE (order); i++)
    if (g->dir[order[i]])
      return g->dir[order[i]];
  return g->v2_dir;
}

static bool v2_populated (const cg_group *g)
{
  char buf[128];
  uint64_t populated = 1;
  if (cgi_read_small (g->v2_fd, NULL, "cgroup.events", buf, sizeof buf) < 0)
    return errno != ENOENT;
  return cgi_keyed_u64 (buf, "populated", &populated) < 0 || populated != 0;
}

/* v2 SIGKILL: cgroup.kill (Linux 5.14+) kills the whole subtree at once, forks included. */
static int v2_kill (cg_group *g, bool *done, berr **err)
{
  *done = false;
  _cleanup_berr_ berr *write_err = NULL;
  if (bfs_write_file (g->v2_fd, "cgroup.kill", "1", &write_err) < 0)
    {
      if (berr_errno (write_err) == ENOENT)
        return 0; /* an older kernel: fall back to the walk */
      return berr_make (err, berr_errno (write_err), "%s", write_err->msg);
    }
  *done = true;
  for (int waited = 0; v2_populated (g); waited += 10)
    {
      if (waited >= KILL_TIMEOUT_MS)
        return berr_make (err, ETIMEDOUT, "processes left in `%s` after cgroup.kill", g->v2_dir);
      sleep_10ms ();
    }
  return 0;
}

int cg_kill_all (cg_group *g, int sig, berr **err)
{
  if (sig == SIGKILL && g->unified && g->v2_fd >= 0)
    {
      bool done;
      if (v2_kill (g, &done, err) < 0)
        return berr_wrap (err, "kill cgroup `%s`", g->path);
      if (done)
        return 0;
    }
  const char *dir = procs_dir (g);
  _cleanup_close_ int dfd = dir ? open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  if (dfd < 0)
    return berr_sys (err, "kill cgroup `%s`: open `%s`", g->path, dir ? dir : "(none)");
  for (int waited = 0;; waited += 10)
    {
      size_t found = 0;
      if (signal_tree (dfd, dir, sig, &found, err) < 0)
        return berr_wrap (err, "kill cgroup `%s`", g->path);
      /* Other signals are delivered once; SIGKILL repeats until nothing is left, which also
       * catches children forked between reading cgroup.procs and the kill. */
      if (sig != SIGKILL || found == 0)
        return 0;
      if (waited >= KILL_TIMEOUT_MS)
        return berr_make (err, ETIMEDOUT, "kill cgroup `%s`: %zu processes left", g->path, found);
      sleep_10ms ();
    }
}
