/* A cgroup across every hierarchy that carries a managed controller: create (through
 * libcgroup, enabling v2 controllers along the path), open, attach, destroy. */
#include "cgroups/internal.h"

#include "lib/cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libcgroup.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How long cg_destroy retries a busy rmdir: the kernel frees a group's last references a
 * moment after its last process exits. */
#define DESTROY_TIMEOUT_MS 2000

/* The v2 controllers a group gets enabled in its parents (cpuacct and devices are v1 only). */
static const enum cgi_ctrl v2_wanted[] = { CGI_CPU, CGI_MEMORY, CGI_PIDS };

/* Accepts "a/b/c" (leading or trailing '/' tolerated); refuses empty, "." and ".." parts so a
 * path cannot leave the hierarchy roots. Returns a newly allocated normalised copy. */
static int normalise_path (const char *in, char **out, berr **err)
{
  while (*in == '/')
    in++;
  _cleanup_free_ char *p = strdup (in);
  if (p == NULL)
    return berr_make (err, ENOMEM, "cgroup path");
  size_t n = strlen (p);
  while (n > 0 && p[n - 1] == '/')
    p[--n] = '\0';
  if (n == 0)
    return berr_make (err, EINVAL, "cgroup path `%s`: empty (the hierarchy root)", in);
  for (char *s = p; s;)
    {
      char *slash = strchr (s, '/');
      size_t len = slash ? (size_t)(slash - s) : strlen (s);
      if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return berr_make (err, EINVAL, "cgroup path `%s`: empty, `.` or `..` component", in);
      s = slash ? slash + 1 : NULL;
    }
  *out = steal_ptr (&p);
  return 0;
}

static void add_hier (cg_group *g, enum cgi_ctrl c)
{
  for (size_t i = 0; i < g->n_hier; i++)
    if (strcmp (g->hier[i].dir, g->dir[c]) == 0)
      return;
  g->hier[g->n_hier++] = (struct cgi_hier){ .ctrl = c, .dir = g->dir[c], .v2 = g->host->v2[c] };
}

static int group_new (const char *path, cg_group **out, berr **err)
{
  const struct cgi_host *h;
  if (cgi_host_get (&h, err) < 0)
    return -1;
  cg_group *g = calloc (1, sizeof *g);
  if (g == NULL)
    return berr_make (err, ENOMEM, "cgroup `%s`", path);
  g->v2_fd = -1;
  g->host = h;
  g->unified = h->mode == CG_MODE_UNIFIED;
  if (normalise_path (path, &g->path, err) < 0)
    {
      cg_free (g);
      return -1;
    }
  for (int c = 0; c < CGI_N_CTRL; c++)
    {
      if (h->mount[c] == NULL)
        continue;
      if (asprintf (&g->dir[c], "%s/%s", h->mount[c], g->path) < 0)
        {
          g->dir[c] = NULL;
          cg_free (g);
          return berr_make (err, ENOMEM, "cgroup `%s`", path);
        }
      add_hier (g, c);
      if (h->v2[c] && g->v2_dir == NULL)
        g->v2_dir = g->dir[c];
    }
  *out = g;
  return 0;
}

static bool dir_exists (const char *dir)
{
  struct stat st;
  return stat (dir, &st) == 0 && S_ISDIR (st.st_mode);
}

static bool has_token (const char *list, const char *name)
{
  size_t n = strlen (name);
  for (const char *p = list; (p = strstr (p, name)) != NULL; p += n)
    if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
      return true;
  return false;
}

/* Enables the wanted controllers that dir offers but has not enabled for its children. Writing
 * only what is missing leaves systemd's own cgroups untouched when delegation already did it.
 * EBUSY means dir holds processes (the no-internal-process rule): tolerated for the direct
 * parent of a group that sets no limits, e.g. "supervisor" inside a scope that still holds the
 * first shim; its children get controllers once the shim has moved out. */
static int v2_enable_in (const cg_group *g, const char *dir, bool tolerate_busy, berr **err)
{
  char avail[512], enabled[512], add[128] = "";
  if (cgi_read_small (-1, dir, "cgroup.controllers", avail, sizeof avail) < 0
      || cgi_read_small (-1, dir, "cgroup.subtree_control", enabled, sizeof enabled) < 0)
    return berr_sys (err, "read the controllers of `%s`", dir);
  for (size_t i = 0; i < ARRAY_SIZE (v2_wanted); i++)
    {
      const char *name = cgi_ctrl_names[v2_wanted[i]];
      if (g->host->v2[v2_wanted[i]] && has_token (avail, name) && !has_token (enabled, name))
        snprintf (add + strlen (add), sizeof add - strlen (add), "%s+%s", *add ? " " : "", name);
    }
  if (*add == '\0')
    return 0;
  _cleanup_free_ char *path = NULL;
  if (asprintf (&path, "%s/cgroup.subtree_control", dir) < 0)
    return berr_make (err, ENOMEM, "enable controllers in `%s`", dir);
  _cleanup_close_ int fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd >= 0 && write (fd, add, strlen (add)) == (ssize_t)strlen (add))
    return 0;
  if (errno == EBUSY && tolerate_busy)
    return 0;
  if (errno == EBUSY)
    return berr_sys (err,
                     "write `%s` to `%s` (the group holds processes; move them to a leaf "
                     "group first)",
                     add, path);
  return berr_sys (err, "write `%s` to `%s`", add, path);
}

/* Walks from the cgroup2 root down to the group's parent, creating missing directories and
 * enabling controllers in each. libcgroup 2.0.2 does this too but skips the root and fails the
 * whole create (then deletes the group) on a busy parent, so it is done here first. */
static int v2_prepare_parents (cg_group *g, bool need_controllers, berr **err)
{
  char dir[PATH_MAX];
  size_t len = (size_t)snprintf (dir, sizeof dir, "%s", g->host->v2_mount);
  const char *p = g->path;
  for (;;)
    {
      const char *slash = strchr (p, '/');
      bool is_parent = slash == NULL;
      if (v2_enable_in (g, dir, is_parent && !need_controllers, err) < 0)
        return -1;
      if (is_parent)
        return 0;
      len += (size_t)snprintf (dir + len, sizeof dir - len, "/%.*s", (int)(slash - p), p);
      if (len >= sizeof dir)
        return berr_make (err, ENAMETOOLONG, "cgroup path `%s`", g->path);
      if (mkdir (dir, 0755) < 0 && errno != EEXIST)
        return berr_sys (err, "mkdir `%s`", dir);
      p = slash + 1;
    }
}

/* The controller to name the v2 hierarchy to libcgroup: one its parent already enabled (libcgroup
 * re-enables it, a no-op), or none when the parent is busy and the directory is made here. */
static int v2_create_ctrl (const cg_group *g)
{
  _cleanup_free_ char *parent = strdup (g->v2_dir);
  if (parent == NULL)
    return -1;
  *strrchr (parent, '/') = '\0';
  char enabled[512];
  if (cgi_read_small (-1, parent, "cgroup.subtree_control", enabled, sizeof enabled) < 0)
    return -1;
  for (size_t i = 0; i < ARRAY_SIZE (v2_wanted); i++)
    if (g->dir[v2_wanted[i]] && g->host->v2[v2_wanted[i]]
        && has_token (enabled, cgi_ctrl_names[v2_wanted[i]]))
      return (int)v2_wanted[i];
  return -1;
}

/* Creates the group's missing directories: libcgroup for every hierarchy it can, mkdir for a v2
 * group without controllers (libcgroup 2.0.2 creates nothing for a group without any).
 * Existing directories are never handed to libcgroup: on a failure it deletes the group and
 * moves its processes to the parent. */
static int create_missing (cg_group *g, berr **err)
{
  struct cgroup *cg = cgroup_new_cgroup (g->path);
  if (cg == NULL)
    return berr_make (err, ENOMEM, "cgroup `%s`", g->path);
  size_t n = 0;
  bool v2_mkdir = false;
  for (size_t i = 0; i < g->n_hier; i++)
    {
      if (dir_exists (g->hier[i].dir))
        continue;
      int c = g->hier[i].v2 ? v2_create_ctrl (g) : (int)g->hier[i].ctrl;
      if (c < 0)
        v2_mkdir = true;
      else if (cgroup_add_controller (cg, cgi_ctrl_names[c]) != NULL)
        n++;
    }
  int ret = n > 0 ? cgroup_create_cgroup (cg, 1) : 0;
  int e = cgroup_get_last_errno ();
  cgroup_free (&cg);
  if (ret != 0)
    return berr_make (err, e ? e : EIO, "libcgroup: %s", cgroup_strerror (ret));
  if (v2_mkdir && mkdir (g->v2_dir, 0755) < 0 && errno != EEXIST)
    return berr_sys (err, "mkdir `%s`", g->v2_dir);
  return 0;
}

static int open_v2_fd (cg_group *g, berr **err)
{
  if (g->v2_dir == NULL || g->v2_fd >= 0)
    return 0;
  g->v2_fd = open (g->v2_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (g->v2_fd < 0)
    return berr_sys (err, "open `%s`", g->v2_dir);
  return 0;
}

static bool limits_need_controllers (const struct cg_limits *lim)
{
  return lim
         && (lim->cpu_units || lim->cpu_quota_us || lim->memory_max || lim->memory_low
             || lim->pids_max);
}

static bool exists_everywhere (const cg_group *g)
{
  for (size_t i = 0; i < g->n_hier; i++)
    if (!dir_exists (g->hier[i].dir))
      return false;
  return true;
}

static bool exists_anywhere (const cg_group *g)
{
  for (size_t i = 0; i < g->n_hier; i++)
    if (dir_exists (g->hier[i].dir))
      return true;
  return false;
}

int cg_create (const char *path, const struct cg_limits *lim, cg_group **out, berr **err)
{
  cg_group *g;
  if (group_new (path, &g, err) < 0)
    return -1;
  bool existed = exists_anywhere (g);
  int ret = 0;
  if (g->v2_dir && !dir_exists (g->v2_dir))
    ret = v2_prepare_parents (g, limits_need_controllers (lim), err);
  if (ret == 0)
    ret = create_missing (g, err);
  if (ret == 0)
    ret = open_v2_fd (g, err);
  if (ret == 0 && lim)
    ret = cg_set_limits (g, lim, err);
  if (ret < 0)
    {
      berr_wrap (err, "create cgroup `%s`", g->path);
      if (!existed)
        (void)cg_destroy (g, NULL);
      cg_free (g);
      return -1;
    }
  *out = g;
  return 0;
}

int cg_open (const char *path, cg_group **out, berr **err)
{
  cg_group *g;
  if (group_new (path, &g, err) < 0)
    return -1;
  if (!exists_everywhere (g))
    {
      berr_make (err, ENOENT, "open cgroup `%s`: not found in every hierarchy", g->path);
      cg_free (g);
      return -1;
    }
  if (open_v2_fd (g, err) < 0)
    {
      cg_free (g);
      return -1;
    }
  *out = g;
  return 0;
}

int cg_attach (cg_group *g, pid_t pid, berr **err)
{
  char value[32];
  snprintf (value, sizeof value, "%d", (int)pid);
  /* cgroup.procs, not libcgroup's cgroup_attach_task_pid: on v1 that writes `tasks`, which moves
   * one thread, not the whole process. */
  for (size_t i = 0; i < g->n_hier; i++)
    if (cgi_write (g, g->hier[i].ctrl, "cgroup.procs", value, err) < 0)
      return berr_wrap (err, "attach pid %d to cgroup `%s`", (int)pid, g->path);
  return 0;
}

int cg_clone_fd (const cg_group *g)
{
  /* On hybrid hosts clone3 would place the child in the v2 group only, leaving it in the
   * parent's v1 groups; only a pure v2 host gets the fd. */
  return g->unified ? g->v2_fd : -1;
}

const char *cg_dir (const cg_group *g, const char *controller)
{
  if (controller == NULL)
    return g->v2_dir;
  for (int c = 0; c < CGI_N_CTRL; c++)
    if (strcmp (controller, cgi_ctrl_names[c]) == 0)
      return g->dir[c];
  return NULL;
}

const char *cg_path (const cg_group *g)
{
  return g->path;
}

static void sleep_ms (long ms)
{
  struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
  nanosleep (&ts, NULL);
}

static long long now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deletes one group (relative path rel) in one hierarchy through libcgroup, only if empty
 * (libcgroup's default moves leftover processes to the parent, which must never happen to a
 * container). libcgroup's result is not trusted: with CGFLAG_DELETE_EMPTY_ONLY it returns 0
 * when rmdir failed with EBUSY, and on v2 50016 (ECGOTHER, ENOENT) when the directory is gone.
 * The directory's absence is the result. */
static int delete_one (const struct cgi_hier *h, const char *rel, const char *dir,
                       long long deadline, berr **err)
{
  for (;;)
    {
      struct cgroup *cg = cgroup_new_cgroup (rel);
      if (cg && cgroup_add_controller (cg, cgi_ctrl_names[h->ctrl]))
        (void)cgroup_delete_cgroup_ext (cg, CGFLAG_DELETE_EMPTY_ONLY);
      cgroup_free (&cg);
      if (!dir_exists (dir))
        return 0;
      if (now_ms () >= deadline)
        return berr_make (err, EBUSY, "remove `%s`: still holds processes or groups", dir);
      sleep_ms (10);
    }
}

/* Removes the group's subgroup sub ("" for the group itself) in one hierarchy, its own
 * subgroups first. */
static int delete_subtree (const cg_group *g, const struct cgi_hier *h, const char *sub,
                           long long deadline, berr **err)
{
  _cleanup_free_ char *dir = NULL, *rel = NULL;
  if (asprintf (&dir, "%s%s%s", h->dir, *sub ? "/" : "", sub) < 0
      || asprintf (&rel, "%s%s%s", g->path, *sub ? "/" : "", sub) < 0)
    return berr_make (err, ENOMEM, "remove cgroup `%s`", g->path);
  DIR *d = opendir (dir);
  if (d == NULL)
    return errno == ENOENT ? 0 : berr_sys (err, "open `%s`", dir);
  struct dirent *e;
  int ret = 0;
  while (ret == 0 && (e = readdir (d)) != NULL)
    {
      if (e->d_type != DT_DIR || strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      _cleanup_free_ char *child = NULL;
      if (asprintf (&child, "%s%s%s", sub, *sub ? "/" : "", e->d_name) < 0)
        ret = berr_make (err, ENOMEM, "remove cgroup `%s`", g->path);
      else
        ret = delete_subtree (g, h, child, deadline, err);
    }
  closedir (d);
  if (ret < 0)
    return ret;
  return delete_one (h, rel, dir, deadline, err);
}

int cg_destroy (cg_group *g, berr **err)
{
  long long deadline = now_ms () + DESTROY_TIMEOUT_MS;
  for (size_t i = 0; i < g->n_hier; i++)
    if (delete_subtree (g, &g->hier[i], "", deadline, err) < 0)
      return berr_wrap (err, "destroy cgroup `%s`", g->path);
  return 0;
}

void cg_free (cg_group *g)
{
  if (g == NULL)
    return;
  if (g->v2_fd >= 0)
    close (g->v2_fd);
  for (int c = 0; c < CGI_N_CTRL; c++)
    free (g->dir[c]);
  free (g->path);
  free (g);
}
