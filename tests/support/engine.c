/* Fixture for the task engine's integration tests (tests/support/engine.h): real image store,
 * shims, runtime and agent store in a temporary directory, torn down without leaving a process. */
#include "tests/support/engine.h"
#include "images/images.h"
#include "lib/cleanup.h"
#include "net/net.h"
#include "runtime/runtime.h"
#include "tests/support/netenv.h"
#include "tests/support/support.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

void ts_eng_ok (int r, berr **err)
{
  ck_assert_msg (r >= 0, "%s", *err ? (*err)->msg : "(no error)");
  berr_free (err);
}

char *ts_eng_cat (const char *a, const char *b)
{
  char *p = NULL;
  ck_assert_int_ge (asprintf (&p, "%s%s", a, b), 0);
  return p;
}

char *ts_eng_images_build (void)
{
  char *dir = ts_mkdtemp ("agent-engine-img");
  ts_sh_ok ("%s/tests/fixtures/mkimages.sh %s/out >/dev/null 2>&1",
            getenv ("BERTH_SRC") ? getenv ("BERTH_SRC") : ".", dir);
  return dir;
}

void ts_eng_images_remove (char *dir)
{
  ts_rmtree (dir);
  free (dir);
}

static void import_image (ts_eng *f, const char *images_dir)
{
  berr *err = NULL;
  _cleanup_free_ char *tar = ts_eng_cat (images_dir, "/out/docker.tar");
  int fd = open (tar, O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge (fd, 0);
  struct img_import_result ir;
  ts_eng_ok (img_store_import (f->images, fd, NULL, &ir, &err), &err);
  img_import_result_clear (&ir);
  close (fd);
}

void ts_eng_setup (ts_eng *f, const char *images_dir)
{
  berr *err = NULL;
  ck_assert_int_eq (unshare (CLONE_NEWNS), 0);
  ck_assert_int_eq (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
  memset (f, 0, sizeof *f);
  f->host_ns = -1;
  f->dir = ts_mkdtemp ("agent-engine");
  f->store_path = ts_eng_cat (f->dir, "/agent.db");
  f->state = ts_eng_cat (f->dir, "/state");
  f->volumes = ts_eng_cat (f->dir, "/volumes");
  f->rtroot = ts_eng_cat (f->dir, "/rt");
  f->img_root = ts_eng_cat (f->dir, "/images");
  f->shim = ts_bin ("berth-shim");
  f->runtime = ts_bin ("berth-runtime");
  const char *conf = "ECS_IMAGE_PULL_BEHAVIOR=once\nECS_CONTAINER_STOP_TIMEOUT=2s\n";
  ts_eng_ok (agent_config_parse (conf, strlen (conf), NULL, &f->cfg, &err), &err);
  f->cfg.task_cleanup_wait_us = 3600ULL * 1000000;
  ts_eng_ok (img_store_open (f->img_root, &f->images, &err), &err);
  import_image (f, images_dir);
  struct img_registry_opts ro = { .retries = -1, .connect_timeout_s = 2 };
  struct img_sink sink;
  img_store_sink (f->images, &sink);
  ts_eng_ok (img_registry_new (&ro, &f->reg, &err), &err);
  ts_eng_ok (img_puller_new (f->reg, &sink, NULL, &f->puller, &err), &err);
  ck_assert_int_eq (sd_event_new (&f->ev), 0);
}

void ts_eng_open (ts_eng *f)
{
  berr *err = NULL;
  if (f->store == NULL)
    ts_eng_ok (agent_store_open (f->store_path, &f->store, &err), &err);
  agent_engine_opts o = { .ev = f->ev,
                          .store = f->store,
                          .cfg = &f->cfg,
                          .http = f->http,
                          .cluster = "c",
                          .images = f->images,
                          .puller = f->puller,
                          .shim_path = f->shim,
                          .runtime_path = f->runtime,
                          .state_dir = f->state,
                          .volume_dir = f->volumes,
                          .runtime_root = f->rtroot,
                          .bridge = f->bridge,
                          .max_pulls = 2,
                          .host_mem_mib = f->host_mem_mib ? f->host_mem_mib : 1 << 20,
                          .max_creates = f->max_creates,
                          .seed = 1,
                          .awsvpc_host_netns_fd = f->awsvpc_host_netns_fd,
                          .netns_run_dir = f->netns_run_dir,
                          .endpoints = f->endpoints };
  ts_eng_ok (agent_engine_new (&o, &f->eng, &err), &err);
}

void ts_eng_bridge (ts_eng *f, const struct ts_netenv *env)
{
  berr *err = NULL;
  f->host_ns = ts_netenv_ns (env, "host");
  _cleanup_free_ char *ipam = ts_eng_cat (env->tmp, "/ipam");
  struct net_bridge_config bc
      = { .ipam_path = ipam, .run_dir = env->run_dir, .host_netns_fd = f->host_ns };
  ts_eng_ok (net_bridge_open (&bc, &f->bridge, &err), &err);
}

/* Waits (up to 3 s each) for the shims recorded under state/shims to exit, so their final
 * writes are done before the directories go; one that does not is killed. */
static void wait_shims (const char *state)
{
  _cleanup_free_ char *shims = ts_eng_cat (state, "/shims");
  DIR *d = opendir (shims);
  for (struct dirent *de; d && (de = readdir (d));)
    if (de->d_name[0] != '.')
      {
        char path[4096];
        snprintf (path, sizeof path, "%s/%s/shim.pid", shims, de->d_name);
        _cleanup_free_ char *pid = ts_read_file (path);
        pid_t p = pid ? atoi (pid) : 0;
        int pfd = p > 0 ? (int)syscall (SYS_pidfd_open, p, 0) : -1;
        struct pollfd pf = { .fd = pfd, .events = POLLIN };
        if (pfd >= 0)
          {
            if (poll (&pf, 1, 3000) != 1)
              kill (p, SIGKILL);
            close (pfd);
          }
      }
  if (d)
    closedir (d);
}

void ts_eng_kill_containers (const char *rt_root, const char *state, struct img_store *images,
                             const char *img_root)
{
  berr *err = NULL;
  DIR *d = opendir (rt_root);
  for (struct dirent *de; d && (de = readdir (d));)
    if (de->d_name[0] != '.' && strcmp (de->d_name, "seccomp-cache") != 0)
      {
        rt_container_delete (rt_root, de->d_name, true, &err);
        berr_free (&err);
      }
  if (d)
    closedir (d);
  wait_shims (state);
  struct img_store *own = NULL;
  if (images == NULL && img_store_open (img_root, &own, &err) < 0)
    {
      berr_free (&err);
      return;
    }
  _cleanup_free_ char *rootfses = ts_eng_cat (img_root, "/containers");
  d = opendir (rootfses);
  for (struct dirent *de; d && (de = readdir (d));)
    if (de->d_name[0] != '.')
      {
        img_rootfs_remove (images ? images : own, de->d_name, &err);
        berr_free (&err);
      }
  if (d)
    closedir (d);
  img_store_close (own);
}

void ts_eng_teardown (ts_eng *f)
{
  agent_engine_free (f->eng);
  agent_endpoints_free (f->endpoints);
  agent_http_free (f->http);
  agent_credprov_free (f->creds);
  ts_eng_kill_containers (f->rtroot, f->state, f->images, f->img_root);
  agent_store_close (f->store);
  img_puller_free (f->puller);
  img_registry_free (f->reg);
  img_store_close (f->images);
  sd_event_unref (f->ev);
  agent_config_free (&f->cfg);
  net_bridge_close (f->bridge);
  if (f->host_ns >= 0)
    close (f->host_ns);
  ts_rmtree (f->dir);
  free (f->dir), free (f->store_path), free (f->state), free (f->volumes), free (f->rtroot),
      free (f->img_root);
  free (f->shim), free (f->runtime);
  memset (f, 0, sizeof *f);
}

void ts_eng_inject_full (ts_eng *f, const char *arn, const char *mode, const char *containers,
                         const char *memory)
{
  berr *err = NULL;
  _cleanup_free_ char *body = NULL;
  ck_assert_int_ge (asprintf (&body,
                              "{\"arn\":\"%s\",\"family\":\"t\",\"version\":\"1\","
                              "\"desiredStatus\":\"RUNNING\",\"networkMode\":\"%s\","
                              "\"memory\":\"%s\",\"containers\":%s}",
                              arn, mode, memory, containers),
                    0);
  agent_task_rec r
      = { .arn = (char *)arn, .desired_status = "RUNNING", .known_status = "NONE", .body = body };
  ts_eng_ok (agent_store_put_task (f->store, &r, &err), &err);
  ts_eng_ok (agent_engine_task_updated (f->eng, arn, &err), &err);
}

void ts_eng_inject (ts_eng *f, const char *arn, const char *mode, const char *containers)
{
  ts_eng_inject_full (f, arn, mode, containers, "512");
}

void ts_eng_desire_stopped (ts_eng *f, const char *arn)
{
  berr *err = NULL;
  agent_task_rec r = { 0 };
  ts_eng_ok (agent_store_get_task (f->store, arn, &r, &err), &err);
  free (r.desired_status);
  r.desired_status = strdup ("STOPPED");
  ts_eng_ok (agent_store_put_task (f->store, &r, &err), &err);
  agent_task_rec_clear (&r);
  ts_eng_ok (agent_engine_task_updated (f->eng, arn, &err), &err);
}

bool ts_eng_status_is (ts_eng *f, const char *arn, const char *want)
{
  return strcmp (agent_engine_task_known (f->eng, arn, NULL), want) == 0;
}

void ts_eng_run_until (ts_eng *f, const char *arn, const char *want, int timeout_ms)
{
  int64_t end = (int64_t)timeout_ms * 1000;
  for (int64_t t = 0; t < end && !ts_eng_status_is (f, arn, want); t += 20000)
    ck_assert_int_ge (sd_event_run (f->ev, 20000), 0);
  const char *reason = NULL;
  const char *got = agent_engine_task_known (f->eng, arn, &reason);
  ck_assert_msg (strcmp (got, want) == 0, "task %s is %s, not %s (reason %s)", arn, got, want,
                 reason ? reason : "none");
}

void ts_eng_run_for (ts_eng *f, int ms)
{
  for (int t = 0; t < ms; t += 20)
    sd_event_run (f->ev, 20000);
}

pid_t ts_eng_pid_of (ts_eng *f, const char *arn, const char *name)
{
  pid_t pid = 0;
  int code;
  ck_assert_int_eq (agent_engine_container_info (f->eng, arn, name, &pid, &code), 0);
  return pid;
}

int ts_eng_code_of (ts_eng *f, const char *arn, const char *name)
{
  pid_t pid = 0;
  int code = -1;
  ck_assert_int_eq (agent_engine_container_info (f->eng, arn, name, &pid, &code), 0);
  return code;
}

cJSON *ts_eng_outbox (ts_eng *f, const char *arn)
{
  berr *err = NULL;
  cJSON *all = cJSON_CreateArray ();
  /* outbox_next gives the oldest; mark each as sent to read the next. */
  agent_outbox_entry e = { 0 };
  while (agent_store_outbox_next (f->store, arn, &e, &err) == 0)
    {
      cJSON *one = cJSON_Parse (e.body);
      ck_assert_msg (one != NULL, "outbox entry: %s", e.body);
      cJSON_AddItemToArray (all, one);
      ts_eng_ok (agent_store_outbox_mark_sent (f->store, e.id, &err), &err);
      agent_outbox_entry_clear (&e);
    }
  berr_free (&err);
  return all;
}

const cJSON *ts_eng_container_of (const cJSON *report, const char *name)
{
  const cJSON *c;
  cJSON_ArrayForEach (c, cJSON_GetObjectItem (report, "containers"))
  {
    const cJSON *n = cJSON_GetObjectItem (c, "containerName");
    if (cJSON_IsString (n) && strcmp (n->valuestring, name) == 0)
      return c;
  }
  _cleanup_free_ char *text = cJSON_PrintUnformatted (report);
  ck_abort_msg ("no container %s in the report %s", name, text);
  return NULL;
}

int ts_eng_exit_code_of (const cJSON *report, const char *name)
{
  const cJSON *v = cJSON_GetObjectItem (ts_eng_container_of (report, name), "exitCode");
  return cJSON_IsNumber (v) ? v->valueint : -1;
}

bool ts_eng_process_with_arg (const char *w)
{
  DIR *d = opendir ("/proc");
  struct dirent *de;
  bool found = false;
  while (d && !found && (de = readdir (d)))
    {
      char path[300], buf[4096];
      if (de->d_name[0] < '1' || de->d_name[0] > '9')
        continue;
      snprintf (path, sizeof path, "/proc/%s/cmdline", de->d_name);
      int fd = open (path, O_RDONLY | O_CLOEXEC);
      ssize_t n = fd >= 0 ? read (fd, buf, sizeof buf - 1) : -1;
      if (fd >= 0)
        close (fd);
      if (n > 0)
        buf[n] = '\0';
      for (ssize_t i = 0; i < n; i += (ssize_t)strlen (buf + i) + 1)
        if (strcmp (buf + i, w) == 0)
          found = true;
    }
  if (d)
    closedir (d);
  return found;
}
