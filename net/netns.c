/* Named network namespaces: created in a short-lived thread, pinned by a bind mount of their nsfs
 * file under a run directory, so they outlive their processes and the agent (for reconcile). */
#include "net/net.h"

#include "lib/cleanup.h"
#include "lib/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

static const char *dir_or_default (const char *run_dir)
{
  return run_dir != NULL ? run_dir : NET_DEFAULT_NETNS_DIR;
}

bool net_netns_name_valid (const char *name)
{
  size_t n = name ? strlen (name) : 0;
  if (n == 0 || n > 64 || name[0] == '.')
    return false;
  return strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

char *net_netns_path (const char *run_dir, const char *name)
{
  char *p;
  if (asprintf (&p, "%s/%s", dir_or_default (run_dir), name) < 0)
    return NULL;
  return p;
}

static bool is_nsfs (const char *path)
{
  struct statfs st;
  return statfs (path, &st) == 0 && st.f_type == NSFS_MAGIC;
}

struct create_job
{
  const char *path;
  berr *err;
};

/* Runs in its own thread: only this thread enters the new namespace, and it ends there. */
static void *create_thread (void *arg)
{
  struct create_job *job = arg;
  if (unshare (CLONE_NEWNET) < 0)
    {
      berr_sys (&job->err, "unshare network namespace");
      return NULL;
    }
  if (mount ("/proc/thread-self/ns/net", job->path, NULL, MS_BIND, NULL) < 0)
    {
      berr_sys (&job->err, "pin network namespace at `%s`", job->path);
      return NULL;
    }
  net_nl *nl = NULL;
  int lo = -1;
  if (net_nl_open (-1, &nl, &job->err) < 0 || (lo = net_link_index (nl, "lo", &job->err)) < 0
      || net_link_set_up (nl, lo, true, &job->err) < 0)
    berr_wrap (&job->err, "bring lo up");
  net_nl_close (nl);
  return NULL;
}

/* Creates the pin file; a leftover one that pins nothing (a crash between creating it and
 * mounting on it) is taken over. */
static int create_pin_file (const char *path, berr **err)
{
  for (int attempt = 0; attempt < 2; attempt++)
    {
      int fd = open (path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
      if (fd >= 0)
        {
          close (fd);
          return 0;
        }
      if (errno != EEXIST)
        return berr_sys (err, "create `%s`", path);
      if (is_nsfs (path))
        return berr_make (err, EEXIST, "network namespace `%s` already exists", path);
      if (unlink (path) < 0 && errno != ENOENT)
        return berr_sys (err, "remove stale `%s`", path);
    }
  return berr_make (err, EEXIST, "create `%s`: keeps reappearing", path);
}

int net_netns_create (const char *run_dir, const char *name, berr **err)
{
  if (!net_netns_name_valid (name))
    return berr_make (err, EINVAL, "invalid network namespace name `%s`", name ? name : "");
  const char *dir = dir_or_default (run_dir);
  _cleanup_free_ char *path = net_netns_path (dir, name);
  if (path == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  if (bfs_mkdirs (dir, 0755, err) < 0 || create_pin_file (path, err) < 0)
    return berr_wrap (err, "create network namespace `%s`", name);
  struct create_job job = { path, NULL };
  pthread_t t;
  int r = pthread_create (&t, NULL, create_thread, &job);
  if (r != 0)
    berr_sysn (&job.err, r, "start a thread");
  else
    pthread_join (t, NULL);
  if (job.err == NULL)
    return 0;
  umount2 (path, MNT_DETACH);
  unlink (path);
  berr_free (err);
  *err = job.err;
  return berr_wrap (err, "create network namespace `%s`", name);
}

int net_netns_open (const char *run_dir, const char *name, berr **err)
{
  if (!net_netns_name_valid (name))
    return berr_make (err, EINVAL, "invalid network namespace name `%s`", name ? name : "");
  _cleanup_free_ char *path = net_netns_path (run_dir, name);
  if (path == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return berr_sys (err, "open network namespace `%s`", path);
  struct statfs st;
  if (fstatfs (fd, &st) < 0)
    return berr_sys (err, "statfs `%s`", path);
  if (st.f_type != NSFS_MAGIC)
    return berr_make (err, ENOENT, "open network namespace `%s`: not pinned", path);
  return steal_fd (&fd);
}

int net_netns_delete (const char *run_dir, const char *name, berr **err)
{
  if (!net_netns_name_valid (name))
    return berr_make (err, EINVAL, "invalid network namespace name `%s`", name ? name : "");
  _cleanup_free_ char *path = net_netns_path (run_dir, name);
  if (path == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  /* EINVAL: the file is there but nothing is mounted on it (a half-made or stale pin). The
   * unlink matters as much as the unmount: mount namespaces copied from ours while the pin
   * existed (every container's) hold copies of it, and the kernel drops those copies only when
   * the file they are mounted on is removed. */
  if (umount2 (path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
    return berr_sys (err, "unpin network namespace `%s`", path);
  if (unlink (path) < 0 && errno != ENOENT)
    return berr_sys (err, "remove `%s`", path);
  return 0;
}

static void strv_free_n (char **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (v[i]);
  free (v);
}

int net_netns_list (const char *run_dir, char ***names, berr **err)
{
  const char *dir = dir_or_default (run_dir);
  size_t n = 0;
  char **v = calloc (1, sizeof *v);
  if (v == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  DIR *d = opendir (dir);
  if (d == NULL && errno == ENOENT)
    {
      *names = v;
      return 0;
    }
  if (d == NULL)
    {
      free (v);
      return berr_sys (err, "list network namespaces in `%s`", dir);
    }
  struct dirent *de;
  while ((de = readdir (d)) != NULL)
    {
      if (!net_netns_name_valid (de->d_name))
        continue;
      _cleanup_free_ char *path = net_netns_path (dir, de->d_name);
      if (path == NULL || !is_nsfs (path))
        continue;
      char **nv = realloc (v, (n + 2) * sizeof *nv);
      if (nv == NULL || (nv[n] = strdup (de->d_name)) == NULL)
        {
          closedir (d);
          strv_free_n (nv ? nv : v, n);
          return berr_make (err, ENOMEM, "out of memory");
        }
      v = nv;
      v[++n] = NULL;
    }
  closedir (d);
  *names = v;
  return 0;
}
