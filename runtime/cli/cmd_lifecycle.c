/* create, start, state, kill, delete: the OCI lifecycle commands. */
#include "runtime/cli/cli.h"

#include "lib/clock.h"
#include "lib/json.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int need_id (int argc, char **argv, const char *cmd, berr **err)
{
  if (optind != argc - 1)
    return berr_make (err, EINVAL, "%s: expected exactly one container id", cmd);
  return 0;
}

int cli_create (struct cli_global *g, int argc, char **argv, berr **err)
{
  struct cli_launch_args a;
  if (cli_parse_launch_args ("create", argc, argv, false, &a, err) < 0)
    return -1;
  pid_t pid = 0;
  return cli_launch (g, a.bundle, a.id, a.pid_file, RT_LAUNCH_CREATE, &pid, err);
}

int cli_start (struct cli_global *g, int argc, char **argv, berr **err)
{
  optind = 1;
  if (need_id (argc, argv, "start", err) < 0)
    return -1;
  return rt_container_start (g->root, argv[optind], err);
}

int cli_state (struct cli_global *g, int argc, char **argv, berr **err)
{
  optind = 1;
  if (need_id (argc, argv, "state", err) < 0)
    return -1;
  struct rt_state *st = NULL;
  if (rt_state_load (g->root, argv[optind], &st, err) < 0)
    return -1;
  char created[BCLOCK_RFC3339_LEN];
  bclock_rfc3339 (st->created_ns, created);
  cJSON *j = cJSON_CreateObject ();
  cJSON_AddStringToObject (j, "ociVersion", "1.0.2");
  cJSON_AddStringToObject (j, "id", st->id);
  cJSON_AddStringToObject (j, "status", st->status);
  cJSON_AddNumberToObject (j, "pid", strcmp (st->status, "stopped") == 0 ? 0 : st->pid);
  cJSON_AddStringToObject (j, "bundle", st->bundle);
  cJSON_AddStringToObject (j, "created", created);
  char *s = cJSON_Print (j);
  if (s)
    printf ("%s\n", s);
  free (s);
  cJSON_Delete (j);
  rt_state_free (st);
  return 0;
}

int cli_kill (struct cli_global *g, int argc, char **argv, berr **err)
{
  static const struct option opts[] = { { "all", no_argument, NULL, 'a' }, { NULL, 0, NULL, 0 } };
  bool all = false;
  int c;
  optind = 0;
  while ((c = getopt_long (argc, argv, "+a", opts, NULL)) != -1)
    {
      if (c != 'a')
        return berr_make (err, EINVAL, "kill: bad option");
      all = true;
    }
  if (optind != argc - 1 && optind != argc - 2)
    return berr_make (err, EINVAL, "kill: usage: kill ID [SIGNAL]");
  int sig = SIGTERM;
  if (optind == argc - 2 && rt_signal_from_name (argv[optind + 1], &sig, err) < 0)
    return -1;
  if (all)
    return rt_container_kill_all (g->root, argv[optind], sig, err);
  return rt_container_kill (g->root, argv[optind], sig, err);
}

int cli_delete (struct cli_global *g, int argc, char **argv, berr **err)
{
  static const struct option opts[] = { { "force", no_argument, NULL, 'f' }, { NULL, 0, NULL, 0 } };
  bool force = false;
  int c;
  optind = 0;
  while ((c = getopt_long (argc, argv, "+f", opts, NULL)) != -1)
    {
      if (c != 'f')
        return berr_make (err, EINVAL, "delete: bad option");
      force = true;
    }
  if (need_id (argc, argv, "delete", err) < 0)
    return -1;
  return rt_container_delete (g->root, argv[optind], force, err);
}
