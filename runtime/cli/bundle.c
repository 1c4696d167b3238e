/* Shared by the commands that start containers: bundle loading, launch, pid files. */
#include "runtime/cli/cli.h"

#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/json.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_MAX (4 << 20)

int cli_load_bundle (const char *bundle, struct rt_spec **spec, char **bundle_abs, berr **err)
{
  char abs[PATH_MAX];
  if (realpath (bundle ? bundle : ".", abs) == NULL)
    return berr_sys (err, "bundle `%s`", bundle ? bundle : ".");
  _cleanup_close_ int dfd = open (abs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (dfd < 0)
    return berr_sys (err, "open bundle `%s`", abs);
  _cleanup_json_ cJSON *config = NULL;
  if (bjson_read_file (dfd, "config.json", CONFIG_MAX, &config, err) < 0)
    return berr_wrap (err, "bundle `%s`", abs);
  if (rt_spec_from_oci (config, abs, spec, err) < 0)
    return berr_wrap (err, "%s/config.json", abs);
  if ((*bundle_abs = strdup (abs)) == NULL)
    {
      rt_spec_free (*spec);
      return berr_make (err, ENOMEM, "out of memory");
    }
  return 0;
}

int cli_save_config (struct cli_global *g, const char *id, const char *bundle_abs, berr **err)
{
  _cleanup_free_ char *src = NULL, *dst = NULL, *text = NULL;
  size_t len = 0;
  if (asprintf (&src, "%s/config.json", bundle_abs) < 0
      || asprintf (&dst, "%s/%s/config.json", g->root, id) < 0)
    return berr_make (err, ENOMEM, "out of memory");
  if (bfs_read_all (AT_FDCWD, src, CONFIG_MAX, &text, &len, err) < 0)
    return -1;
  return bfs_write_atomic_volatile (AT_FDCWD, dst, text, len, 0600, err);
}

int cli_write_pid_file (const char *path, pid_t pid, berr **err)
{
  char buf[32];
  int n = snprintf (buf, sizeof buf, "%d", (int)pid);
  return bfs_write_atomic_volatile (AT_FDCWD, path, buf, (size_t)n, 0644, err);
}

int cli_launch (struct cli_global *g, const char *bundle, const char *id, const char *pid_file,
                enum rt_launch_mode mode, pid_t *pid, berr **err)
{
  struct rt_spec *spec = NULL;
  _cleanup_free_ char *abs = NULL;
  if (cli_load_bundle (bundle, &spec, &abs, err) < 0)
    return -1;
  struct rt_launch_opts opts
      = { .state_root = g->root, .id = id, .bundle = abs, .mode = mode, .stdio = { -1, -1, -1 } };
  int r = rt_container_launch (spec, &opts, pid, err);
  rt_spec_free (spec);
  if (r < 0)
    return -1;
  if (cli_save_config (g, id, abs, err) < 0
      || (pid_file && cli_write_pid_file (pid_file, *pid, err) < 0))
    {
      berr *e = NULL;
      rt_container_delete (g->root, id, true, &e);
      berr_free (&e);
      return -1;
    }
  return 0;
}

int cli_parse_launch_args (const char *cmd, int argc, char **argv, bool allow_detach,
                           struct cli_launch_args *a, berr **err)
{
  static const struct option opts[] = {
    { "bundle", required_argument, NULL, 'b' }, { "pid-file", required_argument, NULL, 'p' },
    { "detach", no_argument, NULL, 'd' },       { "console-socket", required_argument, NULL, 'c' },
    { "no-pivot", no_argument, NULL, 'n' },     { NULL, 0, NULL, 0 },
  };
  *a = (struct cli_launch_args){ .bundle = "." };
  int c;
  optind = 0;
  while ((c = getopt_long (argc, argv, "+b:d", opts, NULL)) != -1)
    switch (c)
      {
      case 'b':
        a->bundle = optarg;
        break;
      case 'p':
        a->pid_file = optarg;
        break;
      case 'd':
        if (!allow_detach)
          return berr_make (err, EINVAL, "%s: bad option", cmd);
        a->detach = true;
        break;
      case 'c':
        return berr_make (err, ENOTSUP, "%s: terminals (--console-socket) are not supported", cmd);
      case 'n':
        return berr_make (err, ENOTSUP, "%s: --no-pivot is not supported", cmd);
      default:
        return berr_make (err, EINVAL, "%s: bad option", cmd);
      }
  if (optind != argc - 1)
    return berr_make (err, EINVAL, "%s: expected exactly one container id", cmd);
  a->id = argv[optind];
  return 0;
}
