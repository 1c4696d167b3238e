/* exec: runs another process inside a running container. Its defaults (capabilities, rlimits,
 * no_new_privs, environment, user) come from the container's own config.json; the command
 * line or an OCI process.json overrides them. */
#include "runtime/cli/cli.h"

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/strv.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

struct exec_args
{
  const char *process_file, *cwd, *user, *pid_file;
  char **env; /* extra KEY=VALUE */
  bool detach;
};

static int parse_exec_args (int argc, char **argv, struct exec_args *a, berr **err)
{
  static const struct option opts[] = {
    { "process", required_argument, NULL, 'p' }, { "cwd", required_argument, NULL, 'w' },
    { "env", required_argument, NULL, 'e' },     { "user", required_argument, NULL, 'u' },
    { "detach", no_argument, NULL, 'd' },        { "pid-file", required_argument, NULL, 'P' },
    { "tty", no_argument, NULL, 't' },           { NULL, 0, NULL, 0 },
  };
  int c;
  optind = 0;
  while ((c = getopt_long (argc, argv, "+p:w:e:u:dt", opts, NULL)) != -1)
    switch (c)
      {
      case 'p':
        a->process_file = optarg;
        break;
      case 'w':
        a->cwd = optarg;
        break;
      case 'e':
        if (strchr (optarg, '=') == NULL || strv_append (&a->env, optarg) < 0)
          return berr_make (err, EINVAL, "exec: --env takes KEY=VALUE");
        break;
      case 'u':
        a->user = optarg;
        break;
      case 'd':
        a->detach = true;
        break;
      case 'P':
        a->pid_file = optarg;
        break;
      case 't':
        return berr_make (err, ENOTSUP, "exec: terminals are not supported");
      default:
        return berr_make (err, EINVAL, "exec: bad option");
      }
  if (optind >= argc)
    return berr_make (err, EINVAL, "exec: expected a container id");
  if (a->process_file == NULL && optind + 1 >= argc)
    return berr_make (err, EINVAL, "exec: expected a command or --process");
  return 0;
}

/* Replaces config.process with the exec's process description. */
static int override_process (cJSON *config, const struct exec_args *a, char **cmd, berr **err)
{
  cJSON *proc = NULL;
  if (a->process_file)
    {
      if (bjson_read_file (AT_FDCWD, a->process_file, 1 << 20, &proc, err) < 0)
        return -1;
      cJSON_ReplaceItemInObjectCaseSensitive (config, "process", proc);
      return 0;
    }
  proc = cJSON_GetObjectItemCaseSensitive (config, "process");
  if (!cJSON_IsObject (proc))
    return berr_make (err, EINVAL, "the container's config.json has no process");
  cJSON *args = cJSON_CreateStringArray ((const char *const *)cmd, (int)strv_len (cmd));
  cJSON_ReplaceItemInObjectCaseSensitive (proc, "args", args);
  if (a->cwd)
    cJSON_ReplaceItemInObjectCaseSensitive (proc, "cwd", cJSON_CreateString (a->cwd));
  if (a->user)
    {
      unsigned uid = 0, gid = 0;
      int n = sscanf (a->user, "%u:%u", &uid, &gid);
      if (n < 1)
        return berr_make (err, EINVAL, "exec: --user takes UID[:GID]");
      cJSON *u = cJSON_CreateObject ();
      cJSON_AddNumberToObject (u, "uid", uid);
      cJSON_AddNumberToObject (u, "gid", n == 2 ? gid : 0);
      cJSON_ReplaceItemInObjectCaseSensitive (proc, "user", u);
    }
  cJSON *env = cJSON_GetObjectItemCaseSensitive (proc, "env");
  if (!cJSON_IsArray (env))
    {
      env = cJSON_CreateArray ();
      cJSON_ReplaceItemInObjectCaseSensitive (proc, "env", env);
    }
  for (size_t i = 0; a->env && a->env[i]; i++)
    cJSON_AddItemToArray (env, cJSON_CreateString (a->env[i]));
  return 0;
}

int cli_exec (struct cli_global *g, int argc, char **argv, berr **err)
{
  struct exec_args a = { 0 };
  _cleanup_strv_ char **extra_env = NULL;
  int ret = parse_exec_args (argc, argv, &a, err);
  extra_env = a.env;
  if (ret < 0)
    return -1;
  const char *id = argv[optind];
  _cleanup_free_ char *state_dir = NULL;
  if (asprintf (&state_dir, "%s/%s", g->root, id) < 0)
    return berr_make (err, ENOMEM, "out of memory");
  _cleanup_json_ cJSON *config = NULL;
  _cleanup_free_ char *path = NULL;
  if (asprintf (&path, "%s/config.json", state_dir) < 0)
    return berr_make (err, ENOMEM, "out of memory");
  if (bjson_read_file (AT_FDCWD, path, 4 << 20, &config, err) < 0)
    return berr_wrap (err, "container `%s`", id);
  if (override_process (config, &a, argv + optind + 1, err) < 0)
    return -1;
  struct rt_spec *spec = NULL;
  if (rt_spec_from_oci (config, state_dir, &spec, err) < 0)
    return berr_wrap (err, "exec process");
  int status = 0;
  pid_t pid = 0;
  int stdio[3] = { -1, -1, -1 };
  ret = rt_container_exec (g->root, id, &spec->process, stdio, &pid, a.detach ? NULL : &status,
                           err);
  rt_spec_free (spec);
  if (ret < 0)
    return -1;
  if (a.pid_file && cli_write_pid_file (a.pid_file, pid, err) < 0)
    return -1;
  if (a.detach)
    return 0;
  return WIFSIGNALED (status) ? 128 + WTERMSIG (status) : WEXITSTATUS (status);
}
