/* berth-agent: the per-host daemon, run in the foreground (a unit file runs the same command).
 * Reads the configuration, opens the store, and runs one sd-event loop until SIGTERM/SIGINT. */
#include "agent/agent.h"
#include "images/images.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/log.h"
#include "net/net.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

extern char **environ;

typedef struct options
{
  const char *config;
  bool config_given;
  bool check_config;
  const char *import; /* --import FILE */
  const char *import_ref;
  const char *set_state; /* --drain: DRAINING, --activate: ACTIVE */
} options;

static void usage (FILE *f)
{
  fprintf (f, "usage: berth-agent [--config FILE] [--check-config] [--version]\n"
              "       berth-agent [--config FILE] --import FILE [--tag REF]\n"
              "  --config FILE    configuration (default " AGENT_DEFAULT_CONFIG ")\n"
              "  --check-config   validate, print the effective configuration, exit 0 or 5\n"
              "  --import FILE    import a docker-archive or OCI-layout tarball (\"-\": stdin)\n"
              "                   into the image store, then exit (the daemon may be running)\n"
              "  --tag REF        with --import: also record the first image as REF\n"
              "  --drain          set this host's container instance DRAINING (no new tasks;\n"
              "                   services move theirs elsewhere), then exit\n"
              "  --activate       set it ACTIVE again, then exit\n"
              "exit status: 0 stopped cleanly, 1 failure worth a restart, 5 terminal "
              "(configuration)\n");
}

/* Returns -1 to run, else the exit status. */
static int parse_args (int argc, char **argv, options *o)
{
  static const struct option opts[] = {
    { "config", required_argument, NULL, 'c' },
    { "check-config", no_argument, NULL, 'k' },
    { "import", required_argument, NULL, 'i' },
    { "tag", required_argument, NULL, 't' },
    { "drain", no_argument, NULL, 'D' },
    { "activate", no_argument, NULL, 'A' },
    { "version", no_argument, NULL, 'V' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  int c;
  while ((c = getopt_long (argc, argv, "c:h", opts, NULL)) != -1)
    switch (c)
      {
      case 'c':
        o->config = optarg;
        o->config_given = true;
        break;
      case 'k':
        o->check_config = true;
        break;
      case 'i':
        o->import = optarg;
        break;
      case 't':
        o->import_ref = optarg;
        break;
      case 'D':
        o->set_state = "DRAINING";
        break;
      case 'A':
        o->set_state = "ACTIVE";
        break;
      case 'V':
        printf ("berth-agent %s\n", AGENT_VERSION);
        return AGENT_EXIT_OK;
      case 'h':
        usage (stdout);
        return AGENT_EXIT_OK;
      default:
        usage (stderr);
        return AGENT_EXIT_TERMINAL;
      }
  if (optind != argc || (o->import_ref && !o->import))
    {
      usage (stderr);
      return AGENT_EXIT_TERMINAL;
    }
  return -1;
}

/* The key id's first four characters only (its prefix says admin or agent); never the secret. */
static void print_credentials (void)
{
  agent_credprov *p = NULL;
  const agent_creds *c;
  _cleanup_berr_ berr *err = NULL;
  if (agent_credprov_new (environ, &p, &err) < 0 || agent_credprov_get (p, &c, &err) < 0)
    printf ("# credentials: unavailable: %s\n", err->msg);
  else
    printf ("# credentials: %s, access key %.4s..., secret (redacted)%s\n", c->source,
            c->access_key_id, c->session_token ? ", session token (redacted)" : "");
  agent_credprov_free (p);
}

static int on_stop_signal (sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
  blog_info ("received %s, exiting (containers keep running)", strsignal ((int)si->ssi_signo));
  return sd_event_exit (sd_event_source_get_event (s), AGENT_EXIT_OK);
}

/* The identity in the store must match the configuration: re-registering into another cluster
 * would orphan this host's tasks, so it is terminal (as for the ECS agent). */
static int check_identity (agent_store *store, const agent_config *cfg, berr **err)
{
  agent_identity id;
  if (agent_store_get_identity (store, &id, err) < 0)
    return -1;
  int r = 0;
  if (id.cluster && strcmp (id.cluster, cfg->cluster) != 0)
    r = berr_make (err, EINVAL,
                   "this host is registered in cluster `%s` (%s) but ECS_CLUSTER is `%s`; "
                   "deregister it or clear %s",
                   id.cluster, id.container_instance_arn, cfg->cluster, cfg->data_dir);
  agent_identity_clear (&id);
  return r;
}

typedef struct daemon_ctx
{
  agent_config cfg;
  agent_host_facts facts;
  agent_store *store;
  agent_credprov *creds;
  sd_event *ev;
  agent_http *http;
  agent_registrar *registrar;
  agent_channel *channel;
  agent_telemetry *telemetry;
  /* the task engine and what it runs on */
  struct img_store *images;
  struct img_registry *registry;
  struct img_puller *puller;
  net_bridge *bridge;
  agent_engine *engine;
  agent_endpoints *endpoints; /* introspection, task metadata and credentials */
  char *shim_path, *runtime_path, *runtime_root, *introspection_sock;
  char *netns_dir;  /* the engine keeps the pointer */
  char *volume_dir; /* shared docker volumes: ECS_DATADIR/volumes */
  sd_event_source *gc_timer;
  uint64_t started_us;   /* CLOCK_MONOTONIC */
  bool watchdog_starved; /* BERTH_OFFLINE_WATCHDOG reached */
} daemon_ctx;

static void daemon_ctx_free (daemon_ctx *d)
{
  agent_telemetry_free (d->telemetry);
  agent_channel_free (d->channel);
  sd_event_source_unref (d->gc_timer);
  /* the engine first: it joins its pull workers, which use the puller and the store */
  agent_engine_free (d->engine);
  agent_endpoints_free (d->endpoints);
  free (d->introspection_sock);
  img_puller_free (d->puller);
  img_registry_free (d->registry);
  img_store_close (d->images);
  net_bridge_close (d->bridge);
  free (d->shim_path);
  free (d->runtime_path);
  free (d->runtime_root);
  free (d->netns_dir);
  free (d->volume_dir);
  agent_registrar_free (d->registrar);
  agent_http_free (d->http);
  sd_event_unref (d->ev);
  agent_credprov_free (d->creds);
  agent_store_close (d->store);
  agent_config_free (&d->cfg);
}

/* Everything that must hold before the loop runs; failures here are configuration (5). */
static int daemon_setup (daemon_ctx *d, berr **err)
{
  _cleanup_free_ char *db = NULL;
  agent_host_facts *facts = &d->facts;
  _cleanup_json_ cJSON *reg = NULL;
  if (agent_host_facts_read ("/proc", facts, err) < 0
      || agent_register_request (&d->cfg, facts, NULL, "check", &reg, err) < 0)
    return -1;
  if (bfs_mkdirs (d->cfg.data_dir, 0700, err) < 0
      || asprintf (&db, "%s/agent.db", d->cfg.data_dir) < 0
      || agent_store_open (db, &d->store, err) < 0 || check_identity (d->store, &d->cfg, err) < 0)
    return berr_wrap (err, "ECS_DATADIR");
  if (agent_credprov_new (environ, &d->creds, err) < 0)
    return berr_wrap (err, "credentials");
  blog_info ("host: %llu CPUs, %llu MiB, %s; cluster %s; control plane %s",
             (unsigned long long)facts->cpus, (unsigned long long)facts->mem_total_mib, facts->arch,
             d->cfg.cluster, d->cfg.backend_host);
  return 0;
}

/* Marks every descriptor above stderr close-on-exec: libcurl 7.88 creates the multi handle's
 * wakeup socketpair without SOCK_CLOEXEC, and a service manager may hand us descriptors we do
 * not use. The agent will exec shims, which must inherit none of them. */
static void cloexec_sweep (void)
{
  DIR *d = opendir ("/proc/self/fd");
  if (d == NULL)
    return;
  for (struct dirent *e; (e = readdir (d));)
    {
      int fd = atoi (e->d_name);
      if (fd <= 2 || fd == dirfd (d))
        continue;
      int flags = fcntl (fd, F_GETFD);
      if (flags >= 0 && !(flags & FD_CLOEXEC))
        fcntl (fd, F_SETFD, flags | FD_CLOEXEC);
    }
  closedir (d);
}

/* BERTH_OFFLINE_WATCHDOG: while the control plane has not answered for longer than configured,
 * the systemd watchdog is no longer fed, so the unit's state (and a restart, if the operator
 * wants one) says what is true: this host is cut off. Feeding resumes with the next answer. */
static int on_offline_check (sd_event_source *s, uint64_t usec, void *userdata)
{
  daemon_ctx *d = userdata;
  uint64_t now, last = agent_http_last_answer_us (d->http);
  sd_event_now (d->ev, CLOCK_MONOTONIC, &now);
  if (last < d->started_us)
    last = d->started_us;
  if (last > now) /* an answer arrived after this iteration's clock reading */
    last = now;
  bool offline = now - last > d->cfg.offline_watchdog_us;
  if (offline != d->watchdog_starved)
    {
      d->watchdog_starved = offline;
      /* The status goes out while the watchdog is off, so no ping sits between a status and the
       * state it announces (re-enabling pings at once). */
      if (offline)
        {
          sd_event_set_watchdog (d->ev, false);
          blog_warn ("no answer from the control plane for %.0f s: no longer feeding the watchdog",
                     (double)(now - last) / 1e6);
          sd_notify (0, "STATUS=control plane unreachable");
        }
      else
        {
          blog_info ("the control plane answers again: feeding the watchdog");
          sd_notify (0, "STATUS=control plane reachable");
          sd_event_set_watchdog (d->ev, true);
        }
    }
  uint64_t period = d->cfg.offline_watchdog_us / 4;
  sd_event_source_set_time_relative (s, period < 100000    ? 100000
                                        : period > 5000000 ? 5000000
                                                           : period);
  return sd_event_source_set_enabled (s, SD_EVENT_ONESHOT);
}

static int start_offline_watchdog (daemon_ctx *d, berr **err)
{
  if (d->cfg.offline_watchdog_us == 0)
    return 0;
  int r = sd_event_now (d->ev, CLOCK_MONOTONIC, &d->started_us);
  if (r < 0
      || (r = sd_event_add_time_relative (d->ev, NULL, CLOCK_MONOTONIC, 100000, 0, on_offline_check,
                                          d))
             < 0)
    return berr_sysn (err, -r, "offline watchdog timer");
  return 0;
}

/* berth-shim and berth-runtime are installed beside berth-agent (the package's /usr/bin, the
 * build's bin/): the engine runs exactly the programs of this release. */
static int find_helpers (daemon_ctx *d, berr **err)
{
  _cleanup_free_ char *exe = realpath ("/proc/self/exe", NULL);
  if (exe == NULL)
    return berr_sys (err, "resolve /proc/self/exe");
  const char *dir = dirname (exe);
  if (asprintf (&d->shim_path, "%s/berth-shim", dir) < 0
      || asprintf (&d->runtime_path, "%s/berth-runtime", dir) < 0)
    return berr_sys (err, "asprintf");
  if (access (d->shim_path, X_OK) < 0 || access (d->runtime_path, X_OK) < 0)
    return berr_sys (err, "berth-shim and berth-runtime must be installed beside berth-agent (%s)",
                     dir);
  return 0;
}

static int open_images (daemon_ctx *d, berr **err)
{
  struct img_registry_opts ro = { 0 };
  struct img_sink sink;
  if (bfs_mkdirs (d->cfg.image_dir, 0700, err) < 0
      || img_store_open (d->cfg.image_dir, &d->images, err) < 0)
    return berr_wrap (err, "BERTH_IMAGE_DIR");
  img_store_sink (d->images, &sink);
  if (img_registry_new (&ro, &d->registry, err) < 0
      || img_puller_new (d->registry, &sink, NULL, &d->puller, err) < 0)
    return -1;
  return 0;
}

/* Bridge mode needs the bridge, Berth's nft table and forwarding; a host where that cannot be
 * set up still runs host, none and awsvpc tasks (bridge tasks stop with the reason). */
static void open_bridge (daemon_ctx *d, const char *netns_dir)
{
  _cleanup_free_ char *ipam = NULL;
  _cleanup_berr_ berr *err = NULL;
  if (asprintf (&ipam, "%s/bridge-ipam", d->cfg.state_dir) < 0)
    return;
  struct net_bridge_config bc = { .name = d->cfg.bridge_name,
                                  .subnet = d->cfg.bridge_subnet,
                                  .ipam_path = ipam,
                                  .run_dir = netns_dir,
                                  .host_netns_fd = -1,
                                  .dynamic = { d->cfg.dynamic_port_min, d->cfg.dynamic_port_max } };
  if (net_bridge_open (&bc, &d->bridge, &err) < 0)
    {
      berr_wrap (&err, "bridge network mode unavailable");
      blog_berr (&err);
    }
}

/* The engine starts before registration: it re-adopts the containers of the store's tasks and
 * resumes their work whether or not the control plane answers. */
static int start_engine (daemon_ctx *d, berr **err)
{
  if (bfs_mkdirs (d->cfg.state_dir, 0700, err) < 0
      || asprintf (&d->runtime_root, "%s/runtime", d->cfg.state_dir) < 0
      || asprintf (&d->netns_dir, "%s/netns", d->cfg.state_dir) < 0)
    return berr_wrap (err, "BERTH_STATE_DIR");
  if (asprintf (&d->volume_dir, "%s/volumes", d->cfg.data_dir) < 0)
    return berr_sys (err, "asprintf");
  if (find_helpers (d, err) < 0 || open_images (d, err) < 0)
    return -1;
  open_bridge (d, d->netns_dir);
  /* Introspection on loopback and a unix socket only; tasks reach theirs inside their own
   * namespaces (docs/agent.md, "Local endpoints"). */
  if (asprintf (&d->introspection_sock, "%s/introspection.sock", d->cfg.state_dir) < 0)
    return berr_sys (err, "asprintf");
  agent_endpoints_opts po = { .ev = d->ev,
                              .introspection_port = (uint16_t)d->cfg.introspection_port,
                              .introspection_socket = d->introspection_sock };
  if (agent_endpoints_new (&po, &d->endpoints, err) < 0)
    return berr_wrap (err, "local endpoints (BERTH_INTROSPECTION_PORT)");
  uint64_t seed = 0;
  if (getrandom (&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
    seed = (uint64_t)getpid ();
  agent_engine_opts eo = { .ev = d->ev,
                           .store = d->store,
                           .cfg = &d->cfg,
                           .http = d->http,
                           .cluster = d->cfg.cluster,
                           .images = d->images,
                           .puller = d->puller,
                           .shim_path = d->shim_path,
                           .runtime_path = d->runtime_path,
                           .state_dir = d->cfg.state_dir,
                           .volume_dir = d->volume_dir,
                           .runtime_root = d->runtime_root,
                           .bridge = d->bridge,
                           .host_mem_mib = d->facts.mem_total_mib > d->cfg.reserved_memory_mib
                                               ? d->facts.mem_total_mib - d->cfg.reserved_memory_mib
                                               : 1,
                           .host_cpu_units = d->facts.cpus * 1024,
                           .seed = seed,
                           .endpoints = d->endpoints,
                           .netns_run_dir = d->netns_dir };
  return agent_engine_new (&eo, &d->engine, err);
}

/* ECS_IMAGE_CLEANUP_INTERVAL: one cleanup cycle of the image store (never an image a container
 * uses). Runs on the loop: a cycle is bounded by ECS_NUM_IMAGES_DELETE_PER_CYCLE and the
 * watermarks. */
static int on_image_gc (sd_event_source *s, uint64_t usec, void *userdata)
{
  daemon_ctx *d = userdata;
  _cleanup_berr_ berr *err = NULL;
  struct img_gc_params p = { .min_age_s = (int64_t)(d->cfg.image_minimum_cleanup_age_us / 1000000),
                             .max_delete = (unsigned)d->cfg.num_images_delete_per_cycle };
  struct img_gc_result res;
  if (p.min_age_s == 0)
    p.min_age_s = -1;
  if (img_store_gc (d->images, &p, &res, &err) < 0)
    {
      berr_wrap (&err, "image cleanup");
      blog_berr (&err);
    }
  else if (res.images_removed || res.layers_removed)
    blog_info ("image cleanup: %u images and %u layers removed", res.images_removed,
               res.layers_removed);
  sd_event_source_set_time_relative (s, d->cfg.image_cleanup_interval_us);
  return sd_event_source_set_enabled (s, SD_EVENT_ONESHOT);
}

/* A payload's tasks are in the store: the engine (re)reads each. */
static void on_payload (const cJSON *message, bool repeat, void *userdata)
{
  daemon_ctx *d = userdata;
  const cJSON *t;
  cJSON_ArrayForEach (t, cJSON_GetObjectItemCaseSensitive (message, "tasks"))
  {
    const cJSON *arn = cJSON_GetObjectItemCaseSensitive (t, "arn");
    _cleanup_berr_ berr *err = NULL;
    if (cJSON_IsString (arn) && agent_engine_task_updated (d->engine, arn->valuestring, &err) < 0)
      {
        berr_wrap (&err, "task %s", arn->valuestring);
        blog_berr (&err);
      }
  }
  (void)repeat;
}

/* IAMRoleCredentialsMessage: kept for the tasks' credentials endpoint (never logged). */
static void on_credentials (const cJSON *message, void *userdata)
{
  daemon_ctx *d = userdata;
  agent_endpoints_credentials_handler (message, d->endpoints);
}

/* The manifest stopped tasks in the store: the engine acts on each it lists STOPPED. */
static void on_manifest (const cJSON *message, void *userdata)
{
  daemon_ctx *d = userdata;
  const cJSON *t;
  cJSON_ArrayForEach (t, cJSON_GetObjectItemCaseSensitive (message, "tasks"))
  {
    const cJSON *arn = cJSON_GetObjectItemCaseSensitive (t, "taskArn");
    const cJSON *desired = cJSON_GetObjectItemCaseSensitive (t, "desiredStatus");
    _cleanup_berr_ berr *err = NULL;
    if (cJSON_IsString (arn) && cJSON_IsString (desired)
        && strcmp (desired->valuestring, "STOPPED") == 0
        && agent_engine_task_updated (d->engine, arn->valuestring, &err) < 0
        && berr_errno (err) != ENOENT) /* not this host's (any more) */
      blog_berr (&err);
  }
}

static int gather_containers (void *userdata, agent_container_cgroup **out, size_t *n)
{
  daemon_ctx *d = userdata;
  return agent_engine_running_containers (d->engine, out, n);
}

static void gather_done (void *userdata, agent_container_cgroup *list, size_t n)
{
  free (list);
}

static int gather_health (void *userdata, cJSON **tasks)
{
  daemon_ctx *d = userdata;
  _cleanup_berr_ berr *err = NULL;
  if (agent_engine_health_tasks (d->engine, tasks, &err) < 0)
    {
      blog_berr (&err);
      return -1;
    }
  return 0;
}

static void start_telemetry (daemon_ctx *d, const char *instance_arn)
{
  _cleanup_berr_ berr *err = NULL;
  agent_telemetry_opts to
      = { .ev = d->ev,
          .http = d->http,
          .interval_us = d->cfg.disable_metrics ? 0 : d->cfg.telemetry_interval_us,
          .gather = gather_containers,
          .gather_done = gather_done,
          .gather_health = gather_health,
          .userdata = d };
  if (agent_telemetry_start (&to, d->cfg.cluster, instance_arn, &d->telemetry, &err) < 0)
    {
      berr_wrap (&err, "telemetry disabled");
      blog_berr (&err);
    }
}

/* Registration runs beside everything else: tasks already in the store keep running while the
 * control plane is away. Only a terminal answer ends the daemon. */
static void on_channel_end (int exit_status, void *userdata)
{
  daemon_ctx *d = userdata;
  sd_event_exit (d->ev, exit_status);
}

/* Registered: the channel discovers its endpoint and polls from now on. */
static void on_registered (const agent_registration *reg, void *userdata)
{
  daemon_ctx *d = userdata;
  _cleanup_berr_ berr *err = NULL;
  uint64_t seed = 0;
  if (reg->exit_status != 0)
    {
      sd_event_exit (d->ev, reg->exit_status);
      return;
    }
  sd_notifyf (0, "STATUS=registered as %s", reg->instance_arn);
  if (getrandom (&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
    seed = (uint64_t)getpid ();
  agent_channel_opts co
      = { .ev = d->ev,
          .http = d->http,
          .store = d->store,
          .cfg = &d->cfg,
          .creds = d->creds,
          .seed = seed,
          .handlers
          = { .payload = on_payload, .manifest = on_manifest, .credentials = on_credentials },
          .end = on_channel_end,
          .userdata = d };
  if (d->channel == NULL
      && agent_channel_start (&co, d->cfg.cluster, reg->instance_arn, &d->channel, &err) < 0)
    {
      blog_berr (&err);
      sd_event_exit (d->ev, AGENT_EXIT_RESTART);
      return;
    }
  if (d->telemetry == NULL)
    start_telemetry (d, reg->instance_arn);
  if (agent_endpoints_set_identity (d->endpoints, d->cfg.cluster, reg->instance_arn, &err) < 0)
    blog_berr (&err);
}

static int start_registration (daemon_ctx *d, berr **err)
{
  uint64_t seed = 0;
  if (getrandom (&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
    seed = (uint64_t)getpid ();
  agent_registrar_opts ro = { .ev = d->ev,
                              .http = d->http,
                              .store = d->store,
                              .cfg = &d->cfg,
                              .facts = &d->facts,
                              .seed = seed };
  return agent_registrar_start (&ro, on_registered, d, &d->registrar, err);
}

static int daemon_loop (daemon_ctx *d, berr **err)
{
  sigset_t stop;
  sigemptyset (&stop);
  sigaddset (&stop, SIGTERM);
  sigaddset (&stop, SIGINT);
  sigprocmask (SIG_BLOCK, &stop, NULL);
  signal (SIGPIPE, SIG_IGN);
  int r = sd_event_default (&d->ev);
  if (r < 0)
    return berr_sysn (err, -r, "sd_event_default");
  agent_http_opts ho = { .endpoint = d->cfg.backend_host,
                         .region = d->cfg.region,
                         .ca_file = d->cfg.ca_file,
                         .allow_insecure = d->cfg.allow_insecure,
                         .creds = d->creds };
  if ((r = sd_event_add_signal (d->ev, NULL, SIGTERM, on_stop_signal, NULL)) < 0
      || (r = sd_event_add_signal (d->ev, NULL, SIGINT, on_stop_signal, NULL)) < 0
      || (r = sd_event_set_watchdog (d->ev, true)) < 0)
    return berr_sysn (err, -r, "set up the event loop");
  if (agent_http_new (d->ev, &ho, &d->http, err) < 0)
    return -1;
  cloexec_sweep ();
  sd_notify (0, "READY=1\nSTATUS=registering");
  blog_info ("berth-agent %s ready", AGENT_VERSION);
  if (start_offline_watchdog (d, err) < 0 || start_engine (d, err) < 0
      || start_registration (d, err) < 0)
    return -1;
  if ((r = sd_event_add_time_relative (d->ev, &d->gc_timer, CLOCK_MONOTONIC,
                                       d->cfg.image_cleanup_interval_us, 0, on_image_gc, d))
      < 0)
    return berr_sysn (err, -r, "image cleanup timer");
  r = sd_event_loop (d->ev);
  sd_notify (0, "STOPPING=1");
  if (r < 0)
    return berr_sysn (err, -r, "event loop");
  return r;
}

/* --drain / --activate: UpdateContainerInstancesState for this host's own instance (the store's
 * identity), with the agent's credentials, which berth-control lets touch only that instance. */
typedef struct state_call
{
  sd_event *ev;
  int status;
} state_call;

static void on_state_done (const agent_http_result *res, void *userdata)
{
  state_call *c = userdata;
  const cJSON *fail = cJSON_GetArrayItem (cJSON_GetObjectItem (res->body, "failures"), 0);
  if (res->curl_code != 0)
    blog_error ("UpdateContainerInstancesState: %s", res->transport_error);
  else if (res->status != 200)
    blog_error ("UpdateContainerInstancesState: %s: %s",
                res->error_type ? res->error_type : "error",
                res->error_message ? res->error_message : "");
  else if (fail)
    blog_error ("UpdateContainerInstancesState: %s",
                cJSON_IsString (cJSON_GetObjectItem (fail, "reason"))
                    ? cJSON_GetObjectItem (fail, "reason")->valuestring
                    : "failed");
  else
    c->status = AGENT_EXIT_OK;
  sd_event_exit (c->ev, 0);
}

static int set_instance_state (agent_config *cfg, const char *state)
{
  _cleanup_free_ char *db = NULL;
  agent_store *store = NULL;
  agent_credprov *creds = NULL;
  agent_http *http = NULL;
  agent_identity id = { 0 };
  state_call call = { .status = AGENT_EXIT_RESTART };
  berr *err = NULL;
  _cleanup_json_ cJSON *body = cJSON_CreateObject ();
  if (asprintf (&db, "%s/agent.db", cfg->data_dir) < 0 || body == NULL)
    return AGENT_EXIT_RESTART;
  if (agent_store_open (db, &store, &err) < 0 || agent_store_get_identity (store, &id, &err) < 0)
    berr_wrap (&err, "ECS_DATADIR");
  else if (id.container_instance_arn == NULL)
    berr_make (&err, ENOENT, "this host has not registered yet (no instance in %s)", db);
  else if (agent_credprov_new (environ, &creds, &err) >= 0 && sd_event_new (&call.ev) >= 0)
    {
      agent_http_opts ho = { .endpoint = cfg->backend_host,
                             .region = cfg->region,
                             .ca_file = cfg->ca_file,
                             .allow_insecure = cfg->allow_insecure,
                             .creds = creds };
      cJSON *list = cJSON_AddArrayToObject (body, "containerInstances");
      if (list && cJSON_AddStringToObject (body, "cluster", id.cluster)
          && cJSON_AddStringToObject (body, "status", state)
          && cJSON_AddItemToArray (list, cJSON_CreateString (id.container_instance_arn))
          && agent_http_new (call.ev, &ho, &http, &err) >= 0
          && agent_http_call (http, AGENT_ECS_TARGET_PREFIX "UpdateContainerInstancesState", body,
                              20000, on_state_done, &call, &err)
                 >= 0)
        sd_event_loop (call.ev);
    }
  if (err)
    blog_berr (&err);
  else if (call.status == AGENT_EXIT_OK)
    printf ("%s %s\n", id.container_instance_arn, state);
  agent_http_free (http);
  sd_event_unref (call.ev);
  agent_credprov_free (creds);
  agent_identity_clear (&id);
  agent_store_close (store);
  return call.status;
}

/* --import: the store's own locks make this safe beside a running daemon. */
static int import_image (const agent_config *cfg, const char *file, const char *ref)
{
  struct img_store *st = NULL;
  struct img_import_result res = { 0 };
  berr *err = NULL;
  _cleanup_close_ int fd
      = strcmp (file, "-") == 0 ? fcntl (0, F_DUPFD_CLOEXEC, 3) : open (file, O_RDONLY | O_CLOEXEC);
  int r = -1;
  if (fd < 0)
    berr_sys (&err, "open `%s`", file);
  else if (bfs_mkdirs (cfg->image_dir, 0700, &err) >= 0
           && img_store_open (cfg->image_dir, &st, &err) >= 0
           && img_store_import (st, fd, ref, &res, &err) >= 0)
    r = 0;
  if (r < 0)
    {
      berr_wrap (&err, "import `%s`", file);
      blog_berr (&err);
    }
  for (size_t i = 0; r == 0 && res.refs && res.refs[i]; i++)
    printf ("%s\n", res.refs[i]);
  img_import_result_clear (&res);
  img_store_close (st);
  return r < 0 ? AGENT_EXIT_RESTART : AGENT_EXIT_OK;
}

int main (int argc, char **argv)
{
  options o = { .config = AGENT_DEFAULT_CONFIG };
  int r = parse_args (argc, argv, &o);
  if (r >= 0)
    return r;
  blog_enable_journal ();
  blog_setup ("berth-agent", BLOG_INFO, BLOG_SINK_AUTO);

  daemon_ctx d = { 0 };
  berr *err = NULL;
  /* A missing default file means "all defaults"; a file named on the command line must exist. */
  if (agent_config_load (o.config, !o.config_given, environ, &d.cfg, &err) < 0)
    {
      blog_berr (&err);
      return AGENT_EXIT_TERMINAL;
    }
  blog_setup ("berth-agent", d.cfg.log_level, BLOG_SINK_AUTO);
  if (o.set_state)
    {
      r = set_instance_state (&d.cfg, o.set_state);
      agent_config_free (&d.cfg);
      return r;
    }
  if (o.import)
    {
      r = import_image (&d.cfg, o.import, o.import_ref);
      agent_config_free (&d.cfg);
      return r;
    }
  if (o.check_config)
    {
      agent_config_print (&d.cfg, stdout);
      print_credentials ();
      agent_config_free (&d.cfg);
      return AGENT_EXIT_OK;
    }
  if (daemon_setup (&d, &err) < 0)
    {
      blog_berr (&err);
      daemon_ctx_free (&d);
      return AGENT_EXIT_TERMINAL;
    }
  r = daemon_loop (&d, &err);
  if (r < 0)
    {
      blog_berr (&err);
      r = AGENT_EXIT_RESTART;
    }
  daemon_ctx_free (&d);
  return r;
}
