/* task-launch: what berth-agent does to start a task's container on a systemd host, for the VM
 * check of docs/cgroups.md. A transient scope (sd-bus) takes a paused child, the child moves to
 * the scope's supervisor group, task/ gets the task limits, then the child execs berth-shim,
 * which runs the container in task/<container>. Usage:
 *   task-launch TASK CONTAINER BUILD_DIR STATE_DIR */
#include "cgroups/cgroups.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/log.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_bundle (const char *bundle, const char *rootfs, const char *cgroup, berr **err)
{
  cJSON *c = rt_oci_default_config ();
  if (c == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  cJSON *root = cJSON_GetObjectItemCaseSensitive (c, "root");
  cJSON_ReplaceItemInObjectCaseSensitive (root, "path", cJSON_CreateString (rootfs));
  const char *args[] = { "/bin/sleep", "1000000" };
  cJSON_ReplaceItemInObjectCaseSensitive (cJSON_GetObjectItemCaseSensitive (c, "process"), "args",
                                          cJSON_CreateStringArray (args, 2));
  cJSON *linux_obj = cJSON_GetObjectItemCaseSensitive (c, "linux");
  cJSON_DeleteItemFromObjectCaseSensitive (linux_obj, "cgroupsPath");
  cJSON_AddStringToObject (linux_obj, "cgroupsPath", cgroup);
  cJSON_DeleteItemFromObjectCaseSensitive (linux_obj, "resources");
  cJSON *res = cJSON_AddObjectToObject (linux_obj, "resources");
  cJSON_AddNumberToObject (cJSON_AddObjectToObject (res, "memory"), "limit", 64 << 20);
  cJSON_AddNumberToObject (cJSON_AddObjectToObject (res, "cpu"), "shares", 256);
  cJSON_AddNumberToObject (cJSON_AddObjectToObject (res, "pids"), "limit", 100);
  int r = bjson_write_file (AT_FDCWD, bundle, c, 0644, err);
  cJSON_Delete (c);
  return r;
}

/* The task's root group: a delegated transient scope under systemd, a plain group otherwise. */
static int task_root (const char *task, pid_t first, char **path, berr **err)
{
  char unit[256];
  snprintf (unit, sizeof unit, "berth-task-%s.scope", task);
  if (!cg_systemd_running ())
    return asprintf (path, "berth/task-%s", task) < 0 ? berr_make (err, ENOMEM, "oom") : 0;
  _cleanup_free_ char *scope = NULL;
  if (cg_systemd_create_scope (unit, "berth.slice", first, &scope, err) < 0)
    return -1;
  *path = strdup (scope[0] == '/' ? scope + 1 : scope);
  return 0;
}

static int launch (char **argv, berr **err)
{
  const char *task = argv[1], *name = argv[2], *build = argv[3], *state = argv[4];
  _cleanup_free_ char *shim = NULL, *runtime = NULL, *rootfs = NULL, *bundle_dir = NULL,
                      *config = NULL, *shim_state = NULL, *runtime_root = NULL, *root = NULL,
                      *sup_path = NULL, *task_path = NULL, *ctr_path = NULL;
  if (asprintf (&shim, "%s/bin/berth-shim", build) < 0
      || asprintf (&runtime, "%s/bin/berth-runtime", build) < 0
      || asprintf (&rootfs, "%s/rootfs/busybox", build) < 0
      || asprintf (&bundle_dir, "%s/bundle", state) < 0
      || asprintf (&config, "%s/config.json", bundle_dir) < 0
      || asprintf (&shim_state, "%s/shim", state) < 0
      || asprintf (&runtime_root, "%s/runtime", state) < 0)
    return berr_make (err, ENOMEM, "out of memory");
  mkdir (state, 0700);
  mkdir (bundle_dir, 0700);
  mkdir (shim_state, 0700);
  int go[2];
  if (pipe2 (go, O_CLOEXEC) < 0)
    return berr_sys (err, "pipe");
  pid_t child = fork ();
  if (child < 0)
    return berr_sys (err, "fork");
  if (child == 0)
    {
      char c;
      close (go[1]);
      if (read (go[0], &c, 1) != 1)
        _exit (3);
      execl (shim, shim, "--id", name, "--state-dir", shim_state, "--runtime", runtime,
             "--runtime-root", runtime_root, "--bundle", bundle_dir, (char *)NULL);
      _exit (127);
    }
  close (go[0]);
  cg_group *sup = NULL, *tg = NULL;
  struct cg_limits task_limits
      = { .memory_max = 256 << 20, .cpu_quota_us = 50000, .cpu_period_us = 100000 };
  int ret = -1;
  if (task_root (task, child, &root, err) < 0 || asprintf (&sup_path, "%s/supervisor", root) < 0
      || asprintf (&task_path, "%s/task", root) < 0
      || asprintf (&ctr_path, "%s/task/%s", root, name) < 0)
    goto out;
  /* The first process leaves the scope's own group so the scope can delegate controllers. */
  if (cg_create (sup_path, NULL, &sup, err) < 0 || cg_attach (sup, child, err) < 0
      || cg_create (task_path, &task_limits, &tg, err) < 0
      || write_bundle (config, rootfs, ctr_path, err) < 0)
    goto out;
  if (write (go[1], "g", 1) != 1)
    {
      berr_sys (err, "release the shim");
      goto out;
    }
  int status = 0;
  waitpid (child, &status, 0);
  ret = WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 0
                                                        : berr_make (err, EIO, "berth-shim failed");
out:
  close (go[1]);
  if (ret < 0)
    {
      kill (child, SIGKILL);
      waitpid (child, NULL, 0);
    }
  if (sup)
    cg_free (sup);
  if (tg)
    cg_free (tg);
  return ret;
}

int main (int argc, char **argv)
{
  blog_setup ("task-launch", BLOG_INFO, BLOG_SINK_STDERR);
  if (argc != 5)
    {
      fprintf (stderr, "usage: task-launch TASK CONTAINER BUILD_DIR STATE_DIR\n");
      return 2;
    }
  berr *err = NULL;
  if (launch (argv, &err) < 0)
    {
      blog_berr (&err);
      return 1;
    }
  return 0;
}
