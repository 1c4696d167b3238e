/* berth-runtime entry point: global options, then one command (OCI runtime CLI conventions). */
#include "runtime/cli/cli.h"

#include "lib/clock.h"
#include "lib/log.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_ROOT "/run/berth/runtime"

static const struct
{
  const char *name;
  cli_command_fn fn;
  const char *usage;
} commands[] = {
  { "create", cli_create, "create [--bundle DIR] [--pid-file FILE] ID" },
  { "start", cli_start, "start ID" },
  { "state", cli_state, "state ID" },
  { "kill", cli_kill, "kill [--all] ID [SIGNAL]" },
  { "delete", cli_delete, "delete [--force] ID" },
  { "run", cli_run, "run [--bundle DIR] [--pid-file FILE] [--detach] ID" },
  { "spec", cli_spec, "spec [--bundle DIR]" },
  { "exec", cli_exec,
    "exec [--process FILE] [--cwd DIR] [--env K=V]... [--user UID[:GID]] [--detach] "
    "[--pid-file FILE] ID [COMMAND [ARG]...]" },
};

static void usage (FILE *f)
{
  fprintf (f, "usage: berth-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug] "
              "COMMAND ...\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf (f, "  %s\n", commands[i].usage);
}

/* The error is printed once, and also appended to --log so a supervisor (berth-shim) can read
 * why a launch failed. */
static void report (const struct cli_global *g, berr **err)
{
  fprintf (stderr, "berth-runtime: %s\n", (*err)->msg);
  if (g->log_path)
    {
      int fd = open (g->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
      if (fd >= 0)
        {
          char ts[BCLOCK_RFC3339_LEN];
          bclock_rfc3339 (bclock_real_ns (), ts);
          if (g->log_json)
            {
              cJSON *j = cJSON_CreateObject ();
              cJSON_AddStringToObject (j, "level", "error");
              cJSON_AddStringToObject (j, "msg", (*err)->msg);
              cJSON_AddStringToObject (j, "time", ts);
              char *s = cJSON_PrintUnformatted (j);
              if (s)
                dprintf (fd, "%s\n", s);
              free (s);
              cJSON_Delete (j);
            }
          else
            dprintf (fd, "%s\n", (*err)->msg);
          close (fd);
        }
    }
  berr_free (err);
}

int main (int argc, char **argv)
{
  struct cli_global g = { .root = DEFAULT_ROOT };
  enum blog_level level = BLOG_WARN;
  static const struct option opts[] = {
    { "root", required_argument, NULL, 'r' },
    { "log", required_argument, NULL, 'l' },
    { "log-format", required_argument, NULL, 'f' },
    { "debug", no_argument, NULL, 'd' },
    { "systemd-cgroup", no_argument, NULL, 's' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  int c;
  while ((c = getopt_long (argc, argv, "+h", opts, NULL)) != -1)
    switch (c)
      {
      case 'r':
        g.root = optarg;
        break;
      case 'l':
        g.log_path = optarg;
        break;
      case 'f':
        g.log_json = strcmp (optarg, "json") == 0;
        break;
      case 'd':
        level = BLOG_DEBUG;
        break;
      case 's':
        break; /* accepted for compatibility; cgroup placement is cgroupsPath's */
      case 'h':
        usage (stdout);
        return 0;
      default:
        usage (stderr);
        return 2;
      }
  blog_setup ("berth-runtime", level, BLOG_SINK_STDERR);
  if (optind >= argc)
    {
      usage (stderr);
      return 2;
    }
  const char *cmd = argv[optind];
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp (cmd, commands[i].name) == 0)
      {
        for (int a = optind + 1; a < argc && strcmp (argv[a], "--") != 0; a++)
          if (strcmp (argv[a], "--help") == 0 || strcmp (argv[a], "-h") == 0)
            {
              printf ("usage: berth-runtime %s\n", commands[i].usage);
              return 0;
            }
        berr *err = NULL;
        int r = commands[i].fn (&g, argc - optind, argv + optind, &err);
        if (r < 0 && err)
          report (&g, &err);
        return r < 0 ? 1 : r;
      }
  fprintf (stderr, "berth-runtime: unknown command `%s`\n", cmd);
  usage (stderr);
  return 2;
}
