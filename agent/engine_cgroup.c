/* The task cgroup layout of docs/cgroups.md for the engine: a task root (a systemd scope, else
 * berth/task-<id>) with supervisor/ for the shims and task/ (task-level limits) for the containers,
 * the shim invoker placed there before it execs, and the teardown at cleanup. */
#include "agent/engine_internal.h"
#include "cgroups/cgroups.h"
#include "lib/cleanup.h"
#include "lib/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SLICE "berth.slice"
#define CPU_PERIOD_US 100000
/* A scope of the same name that systemd has not collected yet refuses a new start: retry. */
#define SCOPE_RETRIES 20
#define SCOPE_RETRY_MS 100

static double num (const cJSON *o, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, key);
  if (cJSON_IsString (v))
    return strtod (v->valuestring, NULL);
  return cJSON_IsNumber (v) ? v->valuedouble : 0;
}

/* The task definition's task-level cpu (units, 1024 a core) as a quota and memory (MiB) as the
 * hard limit of task/. */
static void task_limits (const eng_task *t, struct cg_limits *lim)
{
  double cpu = num (t->body, "cpu"), mem = num (t->body, "memory");
  memset (lim, 0, sizeof *lim);
  if (cpu > 0)
    {
      int64_t quota = (int64_t)(cpu * CPU_PERIOD_US / 1024);
      lim->cpu_period_us = CPU_PERIOD_US;
      lim->cpu_quota_us = quota < 1000 ? 1000 : quota; /* the kernel's minimum quota is 1 ms */
    }
  if (mem > 0)
    lim->memory_max = (int64_t)(mem * 1048576.0);
}

static void scope_unit (const eng_task *t, char *buf, size_t size)
{
  snprintf (buf, size, "berth-task-%s.scope", t->id);
}

/* Where the task root is when nothing was recorded: what the layout would have made. */
static void default_root (const eng_task *t, char *buf, size_t size)
{
  if (cg_systemd_running ())
    snprintf (buf, size, SLICE "/berth-task-%s.scope", t->id);
  else
    snprintf (buf, size, "berth/task-%s", t->id);
}

static const char *root_of (const eng_task *t, char *buf, size_t size)
{
  if (t->cg_root)
    return t->cg_root;
  default_root (t, buf, size);
  return buf;
}

size_t eng_cg_container_path (const eng_container *c, char *buf, size_t size)
{
  char def[512];
  int n = snprintf (buf, size, "%s/task/%s", root_of (c->task, def, sizeof def), c->name);
  return n < 0 ? 0 : (size_t)n;
}

static int sub_create (const char *root, const char *sub, const struct cg_limits *lim,
                       cg_group **out, berr **err)
{
  _cleanup_free_ char *p = NULL;
  if (asprintf (&p, "%s/%s", root, sub) < 0)
    return berr_make (err, ENOMEM, "cgroup");
  return cg_create (p, lim, out, err);
}

/* Opens the supervisor's cgroup.procs in each hierarchy, for the child to write "0" into: a
 * write(2) is async-signal-safe, so it is all the forked child of a threaded agent does. */
static int open_procs (cg_group *sup, eng_cg_launch *l, berr **err)
{
  static const char *const ctrls[] = { NULL, "cpu", "cpuacct", "memory", "pids", "devices" };
  const char *seen[ARRAY_SIZE (ctrls)];
  size_t n_seen = 0;
  for (size_t i = 0; i < ARRAY_SIZE (ctrls); i++)
    {
      const char *dir = cg_dir (sup, ctrls[i]);
      bool dup = dir == NULL;
      for (size_t k = 0; !dup && k < n_seen; k++)
        dup = strcmp (seen[k], dir) == 0;
      if (dup)
        continue;
      seen[n_seen++] = dir;
      _cleanup_free_ char *p = NULL;
      if (asprintf (&p, "%s/cgroup.procs", dir) < 0)
        return berr_make (err, ENOMEM, "cgroup.procs");
      int fd = open (p, O_WRONLY | O_CLOEXEC);
      if (fd < 0)
        return berr_sys (err, "open `%s`", p);
      l->procs[l->n_procs++] = fd;
    }
  return 0;
}

/* Whether the supervisor group exists and holds a process: a systemd scope stops (and its
 * cgroup goes) once nothing is left in it, so an empty one must not be joined. */
static bool supervisor_alive (const char *root, cg_group **out)
{
  _cleanup_free_ char *p = NULL, *procs = NULL, *text = NULL;
  _cleanup_berr_ berr *err = NULL;
  size_t len = 0;
  if (asprintf (&p, "%s/supervisor", root) < 0 || cg_open (p, out, &err) < 0)
    return false;
  const char *dir = cg_dir (*out, NULL) ? cg_dir (*out, NULL) : cg_dir (*out, "memory");
  if (dir && asprintf (&procs, "%s/cgroup.procs", dir) >= 0
      && bfs_read_all (AT_FDCWD, procs, 1 << 20, &text, &len, &err) == 0 && len > 0)
    return true;
  cg_free (*out);
  *out = NULL;
  return false;
}

int eng_cg_prepare (eng_task *t, eng_cg_launch *l, berr **err)
{
  char def[512];
  cg_group *sup = NULL, *task = NULL;
  struct cg_limits lim;
  memset (l, 0, sizeof *l);
  l->go[0] = l->go[1] = -1;
  if (pipe2 (l->go, O_CLOEXEC) < 0)
    return berr_sys (err, "pipe");
  if (cg_systemd_running ())
    {
      if (t->cg_root == NULL || !supervisor_alive (t->cg_root, &sup))
        {
          l->need_scope = true; /* made around the child's pid by eng_cg_place */
          return 0;
        }
    }
  else
    {
      const char *root = root_of (t, def, sizeof def);
      task_limits (t, &lim);
      if (sub_create (root, "supervisor", NULL, &sup, err) < 0
          || sub_create (root, "task", &lim, &task, err) < 0)
        {
          cg_free (sup);
          return berr_wrap (err, "task cgroup `%s`", root);
        }
      cg_free (task);
      if (t->cg_root == NULL && (t->cg_root = strdup (root)) == NULL)
        {
          cg_free (sup);
          return berr_make (err, ENOMEM, "task cgroup");
        }
    }
  int r = open_procs (sup, l, err);
  cg_free (sup);
  return r;
}

void eng_cg_child (eng_cg_launch *l)
{
  char b;
  ssize_t n;
  close (l->go[1]);
  do
    n = read (l->go[0], &b, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1)
    _exit (126); /* the agent gave up on this launch (or died) */
  for (size_t i = 0; i < l->n_procs; i++)
    if (write (l->procs[i], "0", 1) != 1)
      _exit (126);
}

static void sleep_ms (long ms)
{
  struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
  nanosleep (&ts, NULL);
}

/* A scope that emptied out (every shim exited, e.g. between dependsOn steps) is stopped and its
 * leftover groups removed before a new one of the same name is started. */
static void drop_dead_scope (eng_task *t, const char *unit)
{
  _cleanup_berr_ berr *err = NULL;
  cg_group *g = NULL;
  if (cg_systemd_stop_unit (unit, &err) < 0)
    blog_berr (&err);
  if (t->cg_root && cg_open (t->cg_root, &g, &err) == 0 && cg_destroy (g, &err) < 0)
    blog_berr (&err);
  berr_free (&err);
  cg_free (g);
}

/* systemd hosts: the scope around the (waiting) child, then supervisor/ with the child in it,
 * then task/ with the limits, possible only now that the scope itself holds no process. */
static int make_scope (eng_task *t, pid_t pid, berr **err)
{
  char unit[512];
  _cleanup_free_ char *path = NULL;
  cg_group *sup = NULL, *task = NULL;
  struct cg_limits lim;
  scope_unit (t, unit, sizeof unit);
  if (t->cg_root)
    drop_dead_scope (t, unit);
  for (int i = 0;; i++)
    {
      if (cg_systemd_create_scope (unit, SLICE, pid, &path, err) == 0)
        break;
      if (berr_errno (*err) != EEXIST || i == SCOPE_RETRIES)
        return -1;
      berr_free (err);
      sleep_ms (SCOPE_RETRY_MS);
    }
  task_limits (t, &lim);
  int r = sub_create (path, "supervisor", NULL, &sup, err);
  if (r == 0)
    r = cg_attach (sup, pid, err);
  if (r == 0)
    r = sub_create (path, "task", &lim, &task, err);
  cg_free (sup);
  cg_free (task);
  if (r < 0)
    return berr_wrap (err, "task cgroup `%s`", path);
  free (t->cg_root);
  t->cg_root = steal_ptr (&path);
  return 0;
}

int eng_cg_place (eng_container *c, pid_t pid, eng_cg_launch *l, berr **err)
{
  close (l->go[0]);
  l->go[0] = -1;
  if (!l->need_scope)
    return 0;
  if (make_scope (c->task, pid, err) < 0)
    return -1;
  return eng_save_container (c, err); /* the root is durable before the shim runs */
}

int eng_cg_release (eng_cg_launch *l, berr **err)
{
  if (write (l->go[1], "g", 1) != 1)
    return berr_sys (err, "release the shim invoker");
  return 0;
}

void eng_cg_launch_clear (eng_cg_launch *l)
{
  for (size_t i = 0; i < 2; i++)
    if (l->go[i] >= 0)
      close (l->go[i]);
  for (size_t i = 0; i < l->n_procs; i++)
    close (l->procs[i]);
  l->n_procs = 0;
  l->go[0] = l->go[1] = -1;
}

/* Kills what is left in root/sub and removes it. */
static void drop_sub (const char *root, const char *sub)
{
  _cleanup_free_ char *p = NULL;
  _cleanup_berr_ berr *err = NULL;
  cg_group *g = NULL;
  if (asprintf (&p, "%s/%s", root, sub) < 0 || cg_open (p, &g, &err) < 0)
    return;
  if (cg_kill_all (g, SIGKILL, &err) < 0 || cg_destroy (g, &err) < 0)
    blog_berr (&err);
  cg_free (g);
}

void eng_cg_teardown (eng_task *t)
{
  char def[512], unit[512];
  _cleanup_berr_ berr *err = NULL;
  cg_group *g = NULL;
  const char *root = root_of (t, def, sizeof def);
  drop_sub (root, "task");
  drop_sub (root, "supervisor");
  size_t n = strlen (root);
  if (n > 6 && strcmp (root + n - 6, ".scope") == 0 && cg_systemd_running ())
    {
      scope_unit (t, unit, sizeof unit);
      if (cg_systemd_stop_unit (unit, &err) < 0)
        blog_berr (&err);
    }
  berr_free (&err);
  /* without systemd the root is Berth's; with it, whatever systemd did not trim */
  if (cg_open (root, &g, &err) == 0 && cg_destroy (g, &err) < 0)
    blog_berr (&err);
  cg_free (g);
}
