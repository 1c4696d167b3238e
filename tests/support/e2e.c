/* End-to-end fixture (see e2e.h): a private network and mount namespace per test, berth-control
 * driven by the real aws CLI, a real berth-agent process, and a teardown that leaves nothing. */
#include "tests/support/e2e.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/strv.h"
#include "tests/support/engine.h"
#include "tests/support/support.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *img_dir; /* per suite: docker.tar and sample-httpd.tar */

static char *cat (const char *a, const char *b)
{
  char *p = NULL;
  ck_assert_int_ge (asprintf (&p, "%s%s", a, b), 0);
  return p;
}

static char *cat3 (const char *a, const char *b, const char *c)
{
  char *p = NULL;
  ck_assert_int_ge (asprintf (&p, "%s%s%s", a, b, c), 0);
  return p;
}

void ts_e2e_suite_setup (void)
{
  const char *src = getenv ("BERTH_SRC") ? getenv ("BERTH_SRC") : ".";
  img_dir = ts_mkdtemp ("e2e-img");
  ts_sh_ok ("%s/tests/fixtures/mkimages.sh %s/bb >/dev/null 2>&1", src, img_dir);
  ts_sh_ok ("%s/tests/fixtures/mksample.sh %s/web >/dev/null 2>&1", src, img_dir);
}

/* Kills every process whose command line names path (the agent, berth-control, shims, execs of
 * a test that did not get to its teardown). */
static void kill_processes_naming (const char *path)
{
  DIR *d = opendir ("/proc");
  for (struct dirent *de; d && (de = readdir (d));)
    {
      if (de->d_name[0] < '0' || de->d_name[0] > '9')
        continue;
      char file[300], buf[8192];
      snprintf (file, sizeof file, "/proc/%s/cmdline", de->d_name);
      int fd = open (file, O_RDONLY | O_CLOEXEC);
      ssize_t len = fd >= 0 ? read (fd, buf, sizeof buf - 1) : -1;
      if (fd >= 0)
        close (fd);
      bool named = false;
      for (ssize_t i = 0; i < len; i += (ssize_t)strlen (buf + i) + 1)
        named |= strstr (buf + i, path) != NULL;
      if (named && len > 0)
        kill (atoi (de->d_name), SIGKILL);
    }
  if (d)
    closedir (d);
}

static void kill_containers (const ts_e2e *e);

/* A test killed by Check's timeout skips its teardown: whatever it left is removed here. */
static void sweep_leftovers (void)
{
  _cleanup_free_ char *list = cat (img_dir, "/tests");
  _cleanup_free_ char *text = ts_read_file (list);
  for (char *line = text ? strtok (text, "\n") : NULL; line; line = strtok (NULL, "\n"))
    {
      char *cp_dir = strchr (line, ' ');
      if (cp_dir == NULL)
        continue;
      *cp_dir++ = '\0';
      if (access (line, F_OK) != 0)
        continue;
      fprintf (stderr, "e2e: sweeping %s and %s\n", line, cp_dir);
      kill_processes_naming (line);
      kill_processes_naming (cp_dir);
      ts_e2e left = { .dir = line };
      left.state = cat (line, "/state");
      left.images = cat (line, "/images");
      kill_containers (&left);
      kill_processes_naming (line);
      ts_rmtree (line);
      ts_rmtree (cp_dir);
      free (left.state), free (left.images);
    }
}

void ts_e2e_suite_teardown (void)
{
  if (!getenv ("BERTH_E2E_KEEP"))
    sweep_leftovers ();
  ts_rmtree (img_dir);
  free (img_dir);
  img_dir = NULL;
}

/* The test's own network namespace: nothing it does reaches the host's. */
static void enter_namespaces (void)
{
  ck_assert_int_eq (unshare (CLONE_NEWNET | CLONE_NEWNS), 0);
  ck_assert_int_eq (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
  ts_sh_ok ("ip link set lo up && ip link add e2e-host type veth peer name e2e-peer && "
            "ip addr add " TS_E2E_HOST_ADDR
            "/24 dev e2e-host && ip link set e2e-peer up && ip link set e2e-host up && "
            "ip link add " TS_E2E_ENI_PARENT " type veth peer name e2e-eni-peer && "
            "ip link set e2e-eni-peer up && ip link set " TS_E2E_ENI_PARENT " up");
}

static void write_config (ts_e2e *e, const char *extra)
{
  FILE *f = fopen (e->config, "we");
  ck_assert_ptr_nonnull (f);
  fprintf (f,
           "ECS_CLUSTER=%s\nECS_BACKEND_HOST=http://127.0.0.1:%d\nECS_DATADIR=%s/data\n"
           "BERTH_STATE_DIR=%s\nBERTH_IMAGE_DIR=%s\nECS_IMAGE_PULL_BEHAVIOR=prefer-cached\n"
           "ECS_CONTAINER_STOP_TIMEOUT=2s\nECS_LOGLEVEL=debug\nBERTH_BRIDGE_NAME=e2e-br%d\n"
           "BERTH_TELEMETRY_INTERVAL=5s\n%s",
           e->cluster, e->cp.port, e->dir, e->state, e->images, (int)getpid () % 100000,
           extra ? extra : "");
  ck_assert_int_eq (fclose (f), 0);
}

static void import (const ts_e2e *e, const char *tar)
{
  _cleanup_free_ char *bin = ts_bin ("berth-agent");
  ts_sh_ok ("%s --config %s --import %s/%s", bin, e->config, img_dir, tar);
}

void ts_e2e_setup (ts_e2e *e, const char *extra_config)
{
  ts_e2e_setup_subnets (e, extra_config, NULL);
}

void ts_e2e_setup_subnets (ts_e2e *e, const char *extra_config, const char *subnets)
{
  memset (e, 0, sizeof *e);
  e->agent = -1;
  enter_namespaces ();
  ts_cp_setup (&e->cp);
  if (subnets)
    {
      /* berth-control reads the file at start: start it again with it */
      free (ts_cp_write (&e->cp, "subnets.json", subnets));
      ts_cp_signal (&e->cp, SIGTERM);
      ts_cp_start (&e->cp);
    }
  e->dir = ts_mkdtemp ("e2e");
  e->config = cat (e->dir, "/ecs.config");
  e->log = cat (e->dir, "/agent.log");
  e->state = cat (e->dir, "/state");
  e->images = cat (e->dir, "/images");
  snprintf (e->cluster, sizeof e->cluster, "e2e-%d", (int)getpid ());
  _cleanup_free_ char *list = cat (img_dir, "/tests");
  FILE *f = fopen (list, "ae");
  ck_assert_ptr_nonnull (f);
  fprintf (f, "%s %s\n", e->dir, e->cp.dir);
  fclose (f);
  write_config (e, extra_config);
  import (e, "bb/docker.tar");
  import (e, "web/sample-httpd.tar");
  ts_e2e_agent_start (e);
  ts_e2e_wait_connected (e);
}

void ts_e2e_agent_start (ts_e2e *e)
{
  _cleanup_free_ char *bin = ts_bin ("berth-agent");
  _cleanup_free_ char *creds = cat3 ("AWS_SHARED_CREDENTIALS_FILE=", e->cp.dir, "/credentials");
  e->agent = fork ();
  ck_assert_int_ge (e->agent, 0);
  if (e->agent == 0)
    {
      int fd = open (e->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      dup2 (fd, 1);
      dup2 (fd, 2);
      char *env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                      "HOME=/nonexistent",
                      creds,
                      "AWS_PROFILE=agent",
                      "AWS_CONFIG_FILE=/dev/null",
                      "ASAN_OPTIONS=detect_leaks=1",
                      NULL };
      char *argv[] = { bin, "--config", e->config, NULL };
      close_range (3, ~0U, 0);
      execve (bin, argv, env);
      _exit (127);
    }
  e->agent_starts++;
}

int ts_e2e_agent_signal (ts_e2e *e, int sig)
{
  int status = 0;
  if (e->agent <= 0)
    return 0;
  kill (e->agent, sig);
  ck_assert_int_eq (waitpid (e->agent, &status, 0), e->agent);
  e->agent = -1;
  return status;
}

static char *agent_log_tail (const ts_e2e *e)
{
  char *out = NULL;
  _cleanup_free_ char *cmd = cat ("tail -n 30 ", e->log);
  int st;
  ts_sh (cmd, &out, &st);
  return out;
}

static bool instance_connected (ts_e2e *e)
{
  _cleanup_json_ cJSON *l
      = ts_cp_aws_ok (&e->cp, "list-container-instances --cluster %s", e->cluster);
  const cJSON *arns = cJSON_GetObjectItem (l, "containerInstanceArns");
  if (cJSON_GetArraySize (arns) != 1)
    return false;
  _cleanup_json_ cJSON *d
      = ts_cp_aws_ok (&e->cp, "describe-container-instances --cluster %s --container-instances %s",
                      e->cluster, cJSON_GetArrayItem (arns, 0)->valuestring);
  const cJSON *ci = cJSON_GetArrayItem (cJSON_GetObjectItem (d, "containerInstances"), 0);
  return cJSON_IsTrue (cJSON_GetObjectItem (ci, "agentConnected"));
}

void ts_e2e_wait_connected (ts_e2e *e)
{
  for (int i = 0; i < 240; i++)
    {
      /* the cluster exists once the agent made it */
      _cleanup_free_ char *out = NULL;
      if (ts_cp_aws (&e->cp, &out, "describe-clusters --clusters %s", e->cluster) == 0
          && strstr (out, "\"ACTIVE\"") && instance_connected (e))
        return;
      ck_assert_msg (e->agent < 0 || waitpid (e->agent, NULL, WNOHANG) == 0, "agent exited");
      usleep (250000);
    }
  _cleanup_free_ char *tail = agent_log_tail (e);
  ck_abort_msg ("the agent did not connect: %s", tail);
}

char *ts_e2e_instance_arn (ts_e2e *e)
{
  _cleanup_json_ cJSON *l
      = ts_cp_aws_ok (&e->cp, "list-container-instances --cluster %s", e->cluster);
  const cJSON *arns = cJSON_GetObjectItem (l, "containerInstanceArns");
  ck_assert_int_eq (cJSON_GetArraySize (arns), 1);
  return strdup (cJSON_GetArrayItem (arns, 0)->valuestring);
}

void ts_e2e_cp_stop (ts_e2e *e, int sig)
{
  ts_cp_signal (&e->cp, sig);
}

void ts_e2e_cp_start (ts_e2e *e)
{
  ts_cp_start (&e->cp);
}

char *ts_e2e_register (ts_e2e *e, const char *family, const char *args, const char *containers)
{
  _cleanup_free_ char *name = cat (family, ".json");
  _cleanup_free_ char *path = ts_cp_write (&e->cp, name, containers);
  _cleanup_json_ cJSON *r = ts_cp_aws_ok (
      &e->cp, "register-task-definition --family %s %s --container-definitions file://%s", family,
      args, path);
  const cJSON *td = cJSON_GetObjectItem (r, "taskDefinition");
  return strdup (ts_json_str (td, "taskDefinitionArn"));
}

void ts_e2e_run_n (ts_e2e *e, const char *taskdef, int n, char **arns)
{
  _cleanup_json_ cJSON *r = ts_cp_aws_ok (
      &e->cp, "run-task --cluster %s --task-definition %s --count %d", e->cluster, taskdef, n);
  const cJSON *tasks = cJSON_GetObjectItem (r, "tasks");
  _cleanup_free_ char *text = cJSON_PrintUnformatted (r);
  ck_assert_msg (cJSON_GetArraySize (tasks) == n, "run-task: %s", text);
  for (int i = 0; i < n; i++)
    arns[i] = strdup (ts_json_str (cJSON_GetArrayItem (tasks, i), "taskArn"));
}

char *ts_e2e_run (ts_e2e *e, const char *taskdef)
{
  char *arn;
  ts_e2e_run_n (e, taskdef, 1, &arn);
  return arn;
}

void ts_e2e_stop_task (ts_e2e *e, const char *task, const char *reason)
{
  _cleanup_json_ cJSON *r = ts_cp_aws_ok (&e->cp, "stop-task --cluster %s --task %s --reason '%s'",
                                          e->cluster, task, reason);
}

cJSON *ts_e2e_describe (ts_e2e *e, const char *task)
{
  _cleanup_json_ cJSON *r
      = ts_cp_aws_ok (&e->cp, "describe-tasks --cluster %s --tasks %s", e->cluster, task);
  cJSON *t = cJSON_DetachItemFromArray (cJSON_GetObjectItem (r, "tasks"), 0);
  ck_assert_ptr_nonnull (t);
  return t;
}

cJSON *ts_e2e_describe_many (ts_e2e *e, char *const *arns, int n)
{
  size_t len = 1;
  for (int i = 0; i < n; i++)
    len += strlen (arns[i]) + 1;
  _cleanup_free_ char *list = calloc (1, len);
  ck_assert_ptr_nonnull (list);
  for (int i = 0; i < n; i++)
    strcat (strcat (list, " "), arns[i]);
  cJSON *r = ts_cp_aws_ok (&e->cp, "describe-tasks --cluster %s --tasks%s", e->cluster, list);
  cJSON *tasks = cJSON_DetachItemFromObject (r, "tasks");
  cJSON_Delete (r);
  ck_assert_int_eq (cJSON_GetArraySize (tasks), n);
  return tasks;
}

const cJSON *ts_e2e_task_in (const cJSON *tasks, const char *arn)
{
  const cJSON *t;
  cJSON_ArrayForEach (t, tasks)
  {
    if (strcmp (ts_json_str (t, "taskArn"), arn) == 0)
      return t;
  }
  return NULL;
}

cJSON *ts_e2e_wait (ts_e2e *e, const char *task, bool (*cond) (const cJSON *task, void *arg),
                    void *arg, int timeout_s)
{
  for (int i = 0; i < timeout_s * 3; i++)
    {
      cJSON *t = ts_e2e_describe (e, task);
      if (cond (t, arg))
        return t;
      if (i + 1 == timeout_s * 3)
        {
          _cleanup_free_ char *text = cJSON_Print (t), *tail = agent_log_tail (e);
          ck_abort_msg ("task %s never got there: %s\nagent log: %s", task, text, tail);
        }
      cJSON_Delete (t);
      usleep (150000);
    }
  return NULL;
}

static bool has_status (const cJSON *t, void *arg)
{
  return strcmp (ts_json_str (t, "lastStatus"), arg) == 0;
}

cJSON *ts_e2e_wait_status (ts_e2e *e, const char *task, const char *status, int timeout_s)
{
  return ts_e2e_wait (e, task, has_status, (void *)status, timeout_s);
}

void ts_e2e_cli_wait_running (ts_e2e *e, const char *task)
{
  _cleanup_free_ char *out = NULL;
  int rc = ts_cp_aws (&e->cp, &out, "wait tasks-running --cluster %s --tasks %s", e->cluster, task);
  ck_assert_msg (rc == 0, "wait tasks-running: %d: %s", rc, out ? out : "");
}

const cJSON *ts_e2e_container (const cJSON *task, const char *name)
{
  const cJSON *c;
  cJSON_ArrayForEach (c, cJSON_GetObjectItem (task, "containers"))
  {
    if (strcmp (ts_json_str (c, "name"), name) == 0)
      return c;
  }
  return NULL;
}

int ts_e2e_int (const cJSON *obj, const char *key, int def)
{
  const cJSON *v = cJSON_GetObjectItem (obj, key);
  return cJSON_IsNumber (v) ? v->valueint : def;
}

char **ts_e2e_accepted_changes (const ts_e2e *e)
{
  static const char mark[] = "task state change accepted: ";
  _cleanup_free_ char *path = cat (e->cp.dir, "/log");
  _cleanup_free_ char *text = ts_read_file (path);
  char **v = NULL;
  ck_assert_ptr_nonnull (text);
  for (char *line = strtok (text, "\n"); line; line = strtok (NULL, "\n"))
    {
      char *m = strstr (line, mark);
      if (m)
        ck_assert_int_eq (strv_append (&v, m + strlen (mark)), 0);
    }
  if (v == NULL)
    v = calloc (1, sizeof *v);
  return v;
}

/* Entries of dir other than those named in skip (a NULL-terminated list). */
static int count_entries (const char *dir, const char *const *skip)
{
  int n = 0;
  DIR *d = opendir (dir);
  for (struct dirent *de; d && (de = readdir (d));)
    {
      bool skipped = de->d_name[0] == '.';
      for (size_t i = 0; skip && skip[i]; i++)
        skipped |= strcmp (de->d_name, skip[i]) == 0;
      n += !skipped;
    }
  if (d)
    closedir (d);
  return n;
}

/* Processes whose command line names the test's state dir after --state-dir: its shims. */
static int count_shims (const ts_e2e *e)
{
  int n = 0;
  DIR *d = opendir ("/proc");
  for (struct dirent *de; d && (de = readdir (d));)
    {
      if (de->d_name[0] < '0' || de->d_name[0] > '9')
        continue;
      char path[300], buf[8192];
      snprintf (path, sizeof path, "/proc/%s/cmdline", de->d_name);
      int fd = open (path, O_RDONLY | O_CLOEXEC);
      ssize_t len = fd >= 0 ? read (fd, buf, sizeof buf - 1) : -1;
      if (fd >= 0)
        close (fd);
      if (len <= 0)
        continue;
      buf[len] = '\0';
      for (char *a = buf; a < buf + len; a += strlen (a) + 1)
        if (strcmp (a, "--state-dir") == 0 && a + strlen (a) + 1 < buf + len
            && strncmp (a + strlen (a) + 1, e->state, strlen (e->state)) == 0)
          {
            n++;
            break;
          }
    }
  if (d)
    closedir (d);
  return n;
}

static int count_output (const char *cmd)
{
  _cleanup_free_ char *out = NULL;
  int st;
  ck_assert_int_eq (ts_sh (cmd, &out, &st), 0);
  return out ? atoi (out) : 0;
}

void ts_e2e_count_resources (const ts_e2e *e, ts_e2e_resources *r)
{
  static const char *const rt_skip[] = { "seccomp-cache", NULL };
  _cleanup_free_ char *rt = cat (e->state, "/runtime"), *shims = cat (e->state, "/shims");
  _cleanup_free_ char *rootfs = cat (e->images, "/containers");
  _cleanup_free_ char *pins = cat (e->state, "/netns");
  _cleanup_free_ char *ipam = cat3 ("grep -c '^alloc ' ", e->state, "/bridge-ipam 2>/dev/null");
  memset (r, 0, sizeof *r);
  r->containers = count_entries (rt, rt_skip);
  r->shim_dirs = count_entries (shims, NULL);
  r->shims = count_shims (e);
  r->rootfs = count_entries (rootfs, NULL);
  r->pins = count_entries (pins, NULL);
  r->ipam = count_output (ipam);
  r->dnat = count_output ("nft list table ip berth 2>/dev/null | grep -c 'dnat to'");
}

/* Removes whatever containers the test left, as the engine tests do. */
static void kill_containers (const ts_e2e *e)
{
  _cleanup_free_ char *rt = cat (e->state, "/runtime");
  ts_eng_kill_containers (rt, e->state, NULL, e->images);
}

void ts_e2e_teardown (ts_e2e *e)
{
  ts_e2e_agent_signal (e, SIGKILL);
  if (e->dir)
    kill_containers (e);
  if (getenv ("BERTH_E2E_KEEP"))
    fprintf (stderr, "e2e: kept %s and %s\n", e->dir, e->cp.dir);
  else
    {
      ts_cp_teardown (&e->cp);
      /* the netns pins and rootfs mounts die with the test's mount namespace; unmount what is
       * left under the dir so the tree can go */
      _cleanup_free_ char *cmd = cat3 (
          "grep -o ' ", e->dir, "[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l");
      int st;
      _cleanup_free_ char *out = NULL;
      ts_sh (cmd, &out, &st);
      ts_rmtree (e->dir);
    }
  free (e->dir), free (e->config), free (e->log), free (e->state), free (e->images);
  e->dir = NULL;
}
