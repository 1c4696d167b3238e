/* The task engine's state machine: tasks from the store, desired vs known status per container,
 * essential containers, dependsOn conditions, stop order, and reloading after a restart. */
#include "agent/engine_internal.h"
#include "lib/cleanup.h"
#include "lib/clock.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {
  [ES_NONE] = "NONE",       [ES_MANIFEST_PULLED] = "MANIFEST_PULLED",
  [ES_PULLED] = "PULLED",   [ES_CREATED] = "CREATED",
  [ES_RUNNING] = "RUNNING", [ES_STOPPED] = "STOPPED",
};

const char *eng_status_name (enum eng_status s)
{
  return status_names[s];
}

static enum eng_status status_parse (const char *s)
{
  for (int i = ES_STOPPED; s && i > ES_NONE; i--)
    if (strcmp (s, status_names[i]) == 0)
      return (enum eng_status)i;
  return ES_NONE;
}

eng_task *eng_find (agent_engine *e, const char *arn)
{
  for (eng_task *t = e->tasks; t; t = t->next)
    if (strcmp (t->arn, arn) == 0)
      return t;
  return NULL;
}

eng_container *eng_find_container (agent_engine *e, const char *arn, const char *name)
{
  eng_task *t = eng_find (e, arn);
  for (size_t i = 0; t && i < t->n; i++)
    if (strcmp (t->c[i].name, name) == 0)
      return &t->c[i];
  return NULL;
}

static double jnum (const cJSON *o, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, key);
  if (cJSON_IsString (v))
    return strtod (v->valuestring, NULL);
  return cJSON_IsNumber (v) ? v->valuedouble : 0;
}

static const char *jstr (const cJSON *o, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, key);
  return cJSON_IsString (v) ? v->valuestring : NULL;
}

/* The persisted part of a container: its record's body. */
int eng_save_container (eng_container *c, berr **err)
{
  _cleanup_json_ cJSON *b = cJSON_CreateObject ();
  if (b == NULL || (c->digest && !cJSON_AddStringToObject (b, "digest", c->digest))
      || (c->rootfs && !cJSON_AddStringToObject (b, "rootfs", c->rootfs))
      || (c->reason && !cJSON_AddStringToObject (b, "reason", c->reason))
      || (c->stop_signal && !cJSON_AddStringToObject (b, "stopSignal", c->stop_signal))
      || (c->netns && !cJSON_AddStringToObject (b, "netns", c->netns))
      || (c->task->cg_root && !cJSON_AddStringToObject (b, "cgroupRoot", c->task->cg_root))
      || (c->bindings
          && !cJSON_AddItemToObject (b, "bindings", cJSON_Duplicate (c->bindings, true)))
      || !cJSON_AddNumberToObject (b, "pid", c->pid)
      || !cJSON_AddNumberToObject (b, "shimPid", c->shim_pid)
      || !cJSON_AddNumberToObject (b, "pullStartedAt", (double)c->pull_started_ns)
      || !cJSON_AddNumberToObject (b, "pullStoppedAt", (double)c->pull_stopped_ns)
      || !cJSON_AddNumberToObject (b, "startedAt", (double)c->run_started_ns)
      || !cJSON_AddNumberToObject (b, "restartCount", c->restarts))
    return berr_make (err, ENOMEM, "container record");
  _cleanup_free_ char *text = cJSON_PrintUnformatted (b);
  agent_container_rec r = { .task_arn = c->task->arn,
                            .name = c->name,
                            .runtime_id = c->id,
                            .known_status = (char *)status_names[c->known],
                            .exit_code = c->exit_code,
                            .body = text };
  if (text == NULL)
    return berr_make (err, ENOMEM, "container record");
  return agent_store_put_container (c->task->e->o.store, &r, err);
}

static void restore_container (eng_container *c, const agent_container_rec *r)
{
  _cleanup_json_ cJSON *b = r->body ? cJSON_Parse (r->body) : NULL;
  c->known = status_parse (r->known_status);
  c->exit_code = (int)r->exit_code;
  const char *s;
  if ((s = jstr (b, "digest")))
    c->digest = strdup (s);
  if ((s = jstr (b, "rootfs")))
    c->rootfs = strdup (s);
  if ((s = jstr (b, "reason")))
    c->reason = strdup (s);
  if ((s = jstr (b, "stopSignal")))
    c->stop_signal = strdup (s);
  if ((s = jstr (b, "netns")))
    c->netns = strdup (s);
  if ((s = jstr (b, "cgroupRoot")) && c->task->cg_root == NULL)
    c->task->cg_root = strdup (s); /* the task root, for re-adoption and teardown */
  if (cJSON_IsArray (cJSON_GetObjectItem (b, "bindings")))
    c->bindings = cJSON_Duplicate (cJSON_GetObjectItem (b, "bindings"), true);
  c->pid = (pid_t)cJSON_GetNumberValue (cJSON_GetObjectItem (b, "pid"));
  c->shim_pid = (pid_t)cJSON_GetNumberValue (cJSON_GetObjectItem (b, "shimPid"));
  c->pull_started_ns = (int64_t)cJSON_GetNumberValue (cJSON_GetObjectItem (b, "pullStartedAt"));
  c->pull_stopped_ns = (int64_t)cJSON_GetNumberValue (cJSON_GetObjectItem (b, "pullStoppedAt"));
  c->run_started_ns = (int64_t)cJSON_GetNumberValue (cJSON_GetObjectItem (b, "startedAt"));
  c->restarts = (unsigned)cJSON_GetNumberValue (cJSON_GetObjectItem (b, "restartCount"));
}

/* restartPolicy (ECS): a container that exited is restarted in place when the policy is
 * enabled, the task is not stopping, its exit code is not ignored, and its current run lasted
 * at least restartAttemptPeriod seconds (default 300; the control plane checks 60..1800): one
 * that cannot stay up that long is left stopped instead of restarted in a loop. */
bool eng_restart_wanted (const eng_container *c, int exit_code)
{
  const cJSON *rp = cJSON_GetObjectItem (c->def, "restartPolicy"), *it;
  const cJSON *period = cJSON_GetObjectItem (rp, "restartAttemptPeriod");
  if (!cJSON_IsTrue (cJSON_GetObjectItem (rp, "enabled")) || c->task->desired_stopped
      || c->stop_sent || exit_code < 0)
    return false;
  cJSON_ArrayForEach (it, cJSON_GetObjectItem (rp, "ignoredExitCodes"))
  {
    if (cJSON_IsNumber (it) && it->valueint == exit_code)
      return false;
  }
  double s = cJSON_IsNumber (period) && period->valuedouble >= 0 ? period->valuedouble : 300;
  return c->run_started_ns > 0 && bclock_real_ns () - c->run_started_ns >= (int64_t)(s * 1e9);
}

static void task_free (eng_task *t)
{
  for (size_t i = 0; i < t->n; i++)
    {
      eng_container *c = &t->c[i];
      sd_event_source_disable_unref (c->watch);
      sd_event_source_disable_unref (c->kill_timer);
      sd_event_source_disable_unref (c->start_timer);
      eng_health_stop (c);
      free (c->name), free (c->image), free (c->id), free (c->digest), free (c->rootfs);
      free (c->stop_signal), free (c->reason), free (c->netns);
      cJSON_Delete (c->bindings);
    }
  sd_event_source_disable_unref (t->cleanup);
  free (t->c), free (t->arn), free (t->id), free (t->reason), free (t->cg_root);
  cJSON_Delete (t->body);
  free (t);
}

/* What a task reserves: its task-level size, else the sum of its containers' (memory, else
 * memoryReservation). */
static void task_size (eng_task *t)
{
  t->mem_mib = jnum (t->body, "memory");
  t->cpu_units = jnum (t->body, "cpu");
  for (size_t i = 0; i < t->n; i++)
    {
      double m = jnum (t->c[i].def, "memory");
      if (jnum (t->body, "memory") <= 0)
        t->mem_mib += m > 0 ? m : jnum (t->c[i].def, "memoryReservation");
      if (jnum (t->body, "cpu") <= 0)
        t->cpu_units += jnum (t->c[i].def, "cpu");
    }
}

/* Builds the in-memory task from the control plane's task document. */
static int task_new (agent_engine *e, const agent_task_rec *r, eng_task **out, berr **err)
{
  eng_task *t = calloc (1, sizeof *t);
  const cJSON *list = NULL, *it;
  if (t == NULL)
    return berr_make (err, ENOMEM, "task");
  t->e = e;
  t->arn = strdup (r->arn);
  t->body = cJSON_Parse (r->body ? r->body : "");
  const char *slash = strrchr (r->arn, '/');
  t->id = strdup (slash ? slash + 1 : r->arn);
  if (t->body == NULL || bjson_get_arr (t->body, "containers", true, &list, err) < 0)
    {
      task_free (t);
      return berr_make (err, EINVAL, "task `%s`: a bad task document", r->arn);
    }
  t->n = (size_t)cJSON_GetArraySize (list);
  t->c = calloc (t->n ? t->n : 1, sizeof *t->c);
  size_t i = 0;
  cJSON_ArrayForEach (it, list)
  {
    eng_container *c = &t->c[i++];
    const cJSON *ess = cJSON_GetObjectItemCaseSensitive (it, "essential");
    c->task = t;
    c->def = it;
    c->exit_code = -1;
    c->essential = !cJSON_IsFalse (ess);
    c->name = strdup (jstr (it, "name") ? jstr (it, "name") : "");
    c->image = strdup (jstr (it, "image") ? jstr (it, "image") : "");
    if (asprintf (&c->id, "%s-%s", t->id, c->name) < 0)
      c->id = NULL;
  }
  t->desired_stopped = r->desired_status && strcmp (r->desired_status, "STOPPED") == 0;
  t->seq = e->next_seq++;
  task_size (t);
  t->known = t->reported = status_parse (r->known_status);
  *out = t;
  return 0;
}

/* Sets *why and returns -1: the dependency can never be met. */
static int never (char **why, const char *what, const char *name, int code)
{
  if (asprintf (why, "DependencyConditionNotSatisfied: %s%s%s %d", what, name ? " " : "",
                name ? name : "", code)
      < 0)
    *why = NULL;
  return -1;
}

/* 1 when c may start, 0 when it must wait, -1 (reason set) when it never can. */
static int deps_ok (eng_container *c, char **why)
{
  const cJSON *d;
  cJSON_ArrayForEach (d, cJSON_GetObjectItem (c->def, "dependsOn"))
  {
    const char *name = jstr (d, "containerName"), *cond = jstr (d, "condition");
    eng_container *dep = name ? eng_find_container (c->task->e, c->task->arn, name) : NULL;
    if (dep == NULL || cond == NULL)
      return never (why, "bad dependsOn entry", name, 0);
    if (strcmp (cond, "HEALTHY") == 0)
      {
        if (dep->known >= ES_RUNNING && dep->health == HS_NONE)
          return never (why, "HEALTHY: no healthCheck on container", name, 0);
        if (dep->health == HS_UNHEALTHY || dep->known == ES_STOPPED)
          return never (why, "HEALTHY: container", name,
                        dep->health == HS_UNHEALTHY ? 0 : dep->exit_code);
        if (dep->health != HS_HEALTHY)
          return 0;
      }
    if (strcmp (cond, "START") == 0 && dep->known < ES_RUNNING)
      return 0;
    if ((strcmp (cond, "COMPLETE") == 0 || strcmp (cond, "SUCCESS") == 0)
        && dep->known < ES_STOPPED)
      return 0;
    if (strcmp (cond, "SUCCESS") == 0 && dep->exit_code != 0)
      return never (why, "SUCCESS: container", name, dep->exit_code);
  }
  return 1;
}

/* Whether a container that is not stopped yet still depends on c (stop in reverse order). */
static bool needed_by_others (eng_container *c)
{
  eng_task *t = c->task;
  for (size_t i = 0; i < t->n; i++)
    {
      const cJSON *d;
      if (t->c[i].known == ES_STOPPED || &t->c[i] == c)
        continue;
      cJSON_ArrayForEach (d, cJSON_GetObjectItem (t->c[i].def, "dependsOn"))
      {
        const char *name = jstr (d, "containerName");
        if (name && strcmp (name, c->name) == 0)
          return true;
      }
    }
  return false;
}

static void task_stop (eng_task *t, const char *reason)
{
  if (t->desired_stopped)
    return;
  t->desired_stopped = true;
  if (reason && t->reason == NULL)
    t->reason = strdup (reason);
}

void eng_container_stopped (eng_container *c, int exit_code, const char *reason)
{
  _cleanup_berr_ berr *err = NULL;
  if (c->known == ES_STOPPED)
    return;
  c->known = ES_STOPPED;
  if (exit_code >= 0)
    c->exit_code = exit_code;
  if (reason && c->reason == NULL)
    c->reason = strdup (reason);
  c->watch = sd_event_source_disable_unref (c->watch);
  c->kill_timer = sd_event_source_disable_unref (c->kill_timer);
  c->start_timer = sd_event_source_disable_unref (c->start_timer);
  eng_health_stop (c);
  c->task->dirty = true;
  if (c->task->stopped_ns == 0)
    c->task->stopped_ns = bclock_real_ns ();
  if (c->essential)
    task_stop (c->task, reason ? reason : "Essential container in task exited");
  if (eng_save_container (c, &err) < 0)
    blog_berr (&err);
}

/* The host-resource queue: a task starts only when it fits beside the admitted ones, in arrival
 * order (a big task is not overtaken forever by small ones). */
static bool admit (eng_task *t)
{
  agent_engine *e = t->e;
  double mem = 0, cpu = 0;
  if (t->admitted)
    return true;
  for (eng_task *o = e->tasks; o; o = o->next)
    if (o->admitted && o->known != ES_STOPPED)
      mem += o->mem_mib, cpu += o->cpu_units;
    else if (!o->admitted && o != t && !o->desired_stopped && o->seq < t->seq)
      return false;
  if ((e->o.host_mem_mib && mem + t->mem_mib > (double)e->o.host_mem_mib)
      || (e->o.host_cpu_units && cpu + t->cpu_units > (double)e->o.host_cpu_units))
    return false;
  t->admitted = true;
  return true;
}

static void step_running (eng_task *t)
{
  _cleanup_berr_ berr *err = NULL;
  if (!admit (t))
    return;
  for (size_t i = 0; i < t->n && !t->desired_stopped; i++)
    {
      eng_container *c = &t->c[i];
      _cleanup_free_ char *why = NULL;
      if (c->known == ES_NONE && !c->pulling && eng_pull (c, &err) < 0)
        {
          _cleanup_free_ char *m = NULL;
          eng_container_stopped (
              c, -1, asprintf (&m, "CannotPullContainerError: %s", err->msg) < 0 ? NULL : m);
          berr_free (&err);
        }
      if (c->known != ES_PULLED || c->launching)
        continue;
      int ok = deps_ok (c, &why);
      if (ok < 0)
        {
          eng_container_stopped (c, -1, why);
          task_stop (t, why);
        }
      else if (ok > 0 && t->e->launching >= eng_max_creates (t->e))
        continue; /* the cap on starts at once: eng_kick steps this task again */
      else if (ok > 0 && eng_launch (c, &err) < 0)
        {
          _cleanup_free_ char *m = NULL;
          eng_container_stopped (
              c, -1, asprintf (&m, "CannotStartContainerError: %s", err->msg) < 0 ? NULL : m);
          task_stop (t, m);
          berr_free (&err);
        }
    }
}

unsigned eng_max_creates (const agent_engine *e)
{
  return e->o.max_creates ? e->o.max_creates : 4;
}

static int on_kick (sd_event_source *s, void *userdata)
{
  agent_engine *e = userdata;
  for (eng_task *t = e->tasks; t; t = t->next)
    if (t->known != ES_STOPPED && !t->desired_stopped)
      eng_step (t);
  return 0;
}

void eng_kick (agent_engine *e)
{
  if (e->kick == NULL && sd_event_add_defer (e->o.ev, &e->kick, on_kick, e) < 0)
    return;
  sd_event_source_set_enabled (e->kick, SD_EVENT_ONESHOT);
}

static void step_stopping (eng_task *t)
{
  for (size_t i = 0; i < t->n; i++)
    {
      eng_container *c = &t->c[i];
      if (c->known == ES_STOPPED || c->pulling || c->launching)
        continue;
      if (c->known < ES_CREATED)
        eng_container_stopped (c, -1, NULL);
      else if (!c->stop_sent && !needed_by_others (c))
        eng_stop_container (c);
    }
}

static int on_cleanup (sd_event_source *s, uint64_t usec, void *userdata);

static void arm_cleanup (eng_task *t)
{
  agent_engine *e = t->e;
  if (t->cleanup)
    return;
  if (sd_event_add_time_relative (e->o.ev, &t->cleanup, CLOCK_MONOTONIC,
                                  e->o.cfg->task_cleanup_wait_us, 0, on_cleanup, t)
      < 0)
    blog_warn ("task %s: cannot arm the cleanup timer", t->arn);
}

void eng_step (eng_task *t)
{
  _cleanup_berr_ berr *err = NULL;
  if (t->known == ES_STOPPED)
    return;
  if (!t->desired_stopped)
    step_running (t);
  if (t->desired_stopped)
    step_stopping (t);
  enum eng_status min = ES_STOPPED;
  for (size_t i = 0; i < t->n; i++)
    if (t->c[i].known < min)
      min = t->c[i].known;
  if (min > t->known)
    t->known = min;
  bool advanced = (t->known == ES_RUNNING || t->known == ES_STOPPED) && t->known > t->reported;
  if ((advanced || (t->dirty && t->reported == ES_RUNNING)) && eng_report (t, &err) < 0)
    blog_berr (&err);
  if (t->known == ES_STOPPED)
    {
      /* Its addresses and host ports go back now, as the control plane counts them free from
       * STOPPED on; the rootfs, bundle and logs stay until the cleanup. */
      for (size_t i = 0; i < t->n; i++)
        eng_net_teardown (&t->c[i]);
      eng_cg_teardown (t); /* every shim has exited: its groups (and scope) go now too */
      arm_cleanup (t);
      /* its memory and CPU are free: queued tasks may fit now (reached once per task) */
      for (eng_task *o = t->e->tasks; t->admitted && o; o = o->next)
        if (!o->admitted && o->known != ES_STOPPED)
          eng_step (o);
    }
}

static void task_unlink (agent_engine *e, eng_task *t)
{
  for (eng_task **p = &e->tasks; *p; p = &(*p)->next)
    if (*p == t)
      {
        *p = t->next;
        return;
      }
}

/* The task-scoped volumes ($state/volumes/<task id>/, engine_spec.c); host volumes stay. */
static void remove_task_volumes (eng_task *t)
{
  _cleanup_free_ char *dir = NULL;
  _cleanup_berr_ berr *err = NULL;
  if (asprintf (&dir, "%s/volumes/%s", t->e->o.state_dir, t->id) < 0)
    return;
  if (bfs_remove_tree (AT_FDCWD, dir, &err) < 0 && berr_errno (err) != ENOENT)
    blog_berr (&err);
}

/* ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION after STOPPED, once that report was accepted. */
static int on_cleanup (sd_event_source *s, uint64_t usec, void *userdata)
{
  eng_task *t = userdata;
  agent_engine *e = t->e;
  agent_outbox_entry ob = { 0 };
  _cleanup_berr_ berr *err = NULL;
  (void)usec;
  if (agent_store_outbox_next (e->o.store, t->arn, &ob, &err) == 0)
    {
      agent_outbox_entry_clear (&ob);
      return sd_event_source_set_time_relative (s, 1000000) < 0
                 ? 0
                 : sd_event_source_set_enabled (s, SD_EVENT_ONESHOT);
    }
  for (size_t i = 0; i < t->n; i++)
    eng_remove_container (&t->c[i]);
  eng_cg_teardown (t); /* again (a no-op unless a crash came first), before the store forgets */
  remove_task_volumes (t);
  if (agent_store_delete_task (e->o.store, t->arn, &err) < 0)
    blog_berr (&err);
  blog_info ("task %s cleaned up", t->arn);
  task_unlink (e, t);
  task_free (t);
  return 0;
}

static int load_task (agent_engine *e, const agent_task_rec *r, berr **err)
{
  eng_task *t = NULL;
  agent_container_rec *cr = NULL;
  size_t n = 0;
  if (task_new (e, r, &t, err) < 0)
    return -1;
  if (agent_store_list_containers (e->o.store, r->arn, &cr, &n, err) < 0)
    {
      task_free (t);
      return -1;
    }
  for (size_t i = 0; i < n; i++)
    {
      eng_container *c = eng_find_container (e, r->arn, cr[i].name);
      for (size_t j = 0; c == NULL && j < t->n; j++)
        if (strcmp (t->c[j].name, cr[i].name) == 0)
          c = &t->c[j];
      if (c)
        restore_container (c, &cr[i]);
      agent_container_rec_clear (&cr[i]);
    }
  free (cr);
  for (size_t i = 0; i < t->n; i++) /* started before the restart: keeps its place */
    t->admitted = t->admitted || t->c[i].known > ES_NONE;
  t->next = e->tasks;
  e->tasks = t;
  for (size_t i = 0; i < t->n; i++)
    if (t->c[i].known == ES_CREATED || t->c[i].known == ES_RUNNING)
      eng_adopt (&t->c[i]);
  if (t->known == ES_STOPPED)
    arm_cleanup (t); /* stopped before the restart: its cleanup is still due */
  eng_step (t);
  /* STOPPED before the restart: eng_step does nothing more for it, but its cleanup is due (the
   * wait counts again from now) */
  if (t->known == ES_STOPPED)
    {
      for (size_t i = 0; i < t->n; i++)
        eng_net_teardown (&t->c[i]);
      arm_cleanup (t);
    }
  return 0;
}

int agent_engine_new (const agent_engine_opts *o, agent_engine **out, berr **err)
{
  agent_engine *e = calloc (1, sizeof *e);
  agent_task_rec *recs = NULL;
  size_t n = 0;
  if (e == NULL)
    return berr_make (err, ENOMEM, "engine");
  e->o = *o;
  e->efd = -1;
  agent_backoff_init (&e->backoff, AGENT_BACKOFF_OUTBOX, o->seed);
  if (eng_pool_start (e, err) < 0 || agent_store_list_tasks (o->store, &recs, &n, err) < 0)
    {
      agent_engine_free (e);
      return -1;
    }
  for (size_t i = 0; i < n; i++)
    {
      _cleanup_berr_ berr *lerr = NULL;
      if (load_task (e, &recs[i], &lerr) < 0)
        blog_berr (&lerr);
      agent_task_rec_clear (&recs[i]);
    }
  free (recs);
  _cleanup_berr_ berr *nerr = NULL;
  if (eng_net_reconcile (e, &nerr) < 0)
    blog_berr (&nerr);
  eng_endpoints_attach (e);
  eng_send_kick (e);
  *out = e;
  return 0;
}

void agent_engine_free (agent_engine *e)
{
  if (e == NULL)
    return;
  eng_endpoints_detach (e);
  e->kick = sd_event_source_disable_unref (e->kick);
  eng_pool_stop (e);
  eng_report_free (e);
  while (e->tasks)
    {
      eng_task *t = e->tasks;
      e->tasks = t->next;
      task_free (t);
    }
  free (e);
}

/* Stops a task the agent cannot run before anything of it started. */
static void refuse (eng_task *t, const char *reason)
{
  task_stop (t, reason);
  for (size_t i = 0; i < t->n; i++)
    eng_container_stopped (&t->c[i], -1, reason);
}

static bool any_privileged (const eng_task *t)
{
  for (size_t i = 0; i < t->n; i++)
    if (cJSON_IsTrue (cJSON_GetObjectItem (t->c[i].def, "privileged")))
      return true;
  return false;
}

static void check_resources (eng_task *t)
{
  agent_engine *e = t->e;
  const char *mode = jstr (t->body, "networkMode");
  bool bridge = mode == NULL || mode[0] == '\0' || strcmp (mode, "bridge") == 0;
  struct net_eni eni;
  _cleanup_berr_ berr *err = NULL;
  char why[384], reason[512];
  if (eng_volumes_refusal (t, why, sizeof why))
    {
      snprintf (reason, sizeof reason, "ResourceInitializationError: %s", why);
      refuse (t, reason);
    }
  else if (bridge && e->o.bridge == NULL)
    refuse (t, "ResourceInitializationError: bridge mode is not configured on this agent");
  else if (eng_is_awsvpc (t) && !e->o.cfg->enable_task_eni)
    refuse (t, "ResourceInitializationError: awsvpc needs ECS_ENABLE_TASK_ENI on this agent");
  else if (eng_is_awsvpc (t) && eng_task_eni (t, &eni, &err) < 0)
    refuse (t, "ResourceInitializationError: the task's elasticNetworkInterfaces are not usable");
  else if (!bridge && !eng_is_awsvpc (t) && strcmp (mode, "host") != 0
           && strcmp (mode, "none") != 0)
    refuse (t, "ResourceInitializationError: this agent runs networkMode bridge, host, none and "
               "awsvpc");
  else if (t->n == 0)
    refuse (t, "ResourceInitializationError: the task has no containers");
  else if (e->o.host_mem_mib && t->mem_mib > (double)e->o.host_mem_mib)
    refuse (t, "ResourceInitializationError: the task's memory is more than the host has");
  else if (e->o.host_cpu_units && t->cpu_units > (double)e->o.host_cpu_units)
    refuse (t, "ResourceInitializationError: the task's cpu is more than the host has");
  else if (e->o.cfg->disable_privileged && any_privileged (t))
    refuse (t, "CannotStartContainerError: privileged containers are disabled on this agent "
               "(ECS_DISABLE_PRIVILEGED)");
}

int agent_engine_task_updated (agent_engine *e, const char *task_arn, berr **err)
{
  agent_task_rec r = { 0 };
  if (agent_store_get_task (e->o.store, task_arn, &r, err) < 0)
    return -1;
  eng_task *t = eng_find (e, task_arn);
  if (t == NULL)
    {
      if (task_new (e, &r, &t, err) < 0)
        {
          agent_task_rec_clear (&r);
          return -1;
        }
      t->next = e->tasks;
      e->tasks = t;
      if (!t->desired_stopped)
        check_resources (t);
    }
  else if (r.desired_status && strcmp (r.desired_status, "STOPPED") == 0)
    task_stop (t, "Task stopped by the control plane");
  agent_task_rec_clear (&r);
  eng_step (t);
  return 0;
}

const char *agent_engine_task_known (agent_engine *e, const char *task_arn, const char **reason)
{
  eng_task *t = eng_find (e, task_arn);
  if (reason)
    *reason = t ? t->reason : NULL;
  if (t == NULL)
    return "NONE";
  return t->known == ES_NONE ? "PENDING" : status_names[t->known];
}

int agent_engine_container_info (agent_engine *e, const char *task_arn, const char *name,
                                 pid_t *pid, int *exit_code)
{
  eng_container *c = eng_find_container (e, task_arn, name);
  if (c == NULL)
    return -ENOENT;
  *pid = c->known == ES_RUNNING ? c->pid : 0;
  *exit_code = c->exit_code;
  return 0;
}

int agent_engine_container_restarts (agent_engine *e, const char *task_arn, const char *name)
{
  eng_container *c = eng_find_container (e, task_arn, name);
  return c ? (int)c->restarts : -ENOENT;
}

const char *agent_engine_container_health (agent_engine *e, const char *task_arn, const char *name,
                                           int64_t *since_ns)
{
  eng_container *c = eng_find_container (e, task_arn, name);
  if (c == NULL || c->health == HS_NONE)
    return NULL;
  if (since_ns)
    *since_ns = c->health_since_ns;
  return eng_health_name (c->health);
}

/* One PublishHealth container entry. */
static cJSON *health_entry (const eng_container *c)
{
  cJSON *o = cJSON_CreateObject ();
  if (o && cJSON_AddStringToObject (o, "containerName", c->name)
      && cJSON_AddStringToObject (o, "healthStatus", eng_health_name (c->health))
      && cJSON_AddNumberToObject (o, "statusSince", (double)(c->health_since_ns / 1000000000)))
    return o;
  cJSON_Delete (o);
  return NULL;
}

int agent_engine_health_tasks (agent_engine *e, cJSON **out, berr **err)
{
  _cleanup_json_ cJSON *tasks = cJSON_CreateArray ();
  for (eng_task *t = e->tasks; tasks && t; t = t->next)
    {
      cJSON *list = NULL;
      for (size_t i = 0; i < t->n; i++)
        {
          const eng_container *c = &t->c[i];
          if (c->health == HS_NONE || c->known != ES_RUNNING)
            continue;
          if (list == NULL)
            {
              cJSON *entry = cJSON_CreateObject ();
              if (entry == NULL || !cJSON_AddItemToArray (tasks, entry)
                  || !cJSON_AddStringToObject (entry, "taskArn", t->arn)
                  || (list = cJSON_AddArrayToObject (entry, "containers")) == NULL)
                return berr_make (err, ENOMEM, "health");
            }
          cJSON *h = health_entry (c);
          if (h == NULL || !cJSON_AddItemToArray (list, h))
            return berr_make (err, ENOMEM, "health");
        }
    }
  if (tasks == NULL)
    return berr_make (err, ENOMEM, "health");
  *out = steal_ptr (&tasks);
  return 0;
}

unsigned agent_engine_starts_in_flight (const agent_engine *e)
{
  return e->launching;
}

unsigned agent_engine_reports_sent (const agent_engine *e)
{
  return e->sent;
}
