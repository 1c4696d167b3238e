/* berth-control: the ECS-compatible control plane, run in the foreground (a unit file runs the
 * same command). All the work is in controlplane/; this parses the command line and waits. */
#include "controlplane/controlplane.h"
#include "lib/log.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage (FILE *f)
{
  fprintf (f, "usage: berth-control [--data-dir DIR] [--listen HOST:PORT] [--region R]\n"
              "                     [--account-id N] [--tls-cert FILE --tls-key FILE]\n"
              "                     [--allow-insecure-listen] [--log-level L]\n"
              "                     [--subnets FILE] [--agent-timeout MS]\n"
              "                     [--agent-lost-timeout MS] [--task-roles FILE]\n"
              "                     [--task-role-duration SECONDS]\n"
              "       berth-control --version | --help\n"
              "defaults: --data-dir " CP_DEFAULT_DATA_DIR " --listen " CP_DEFAULT_LISTEN
              " --region " CP_DEFAULT_REGION " --account-id " CP_DEFAULT_ACCOUNT_ID "\n");
}

static bool valid_account_id (const char *s)
{
  return strlen (s) == 12 && strspn (s, "0123456789") == 12;
}

static bool valid_region (const char *s)
{
  size_t n = strlen (s);
  return n > 0 && n < 64 && strspn (s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* Returns 0 to run, 1 to exit successfully (--help), 2 on a usage error. */
static int parse_args (int argc, char **argv, cp_config *cfg, enum blog_level *level)
{
  enum
  {
    OPT_INSECURE = 256,
    OPT_LOG_LEVEL,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_SUBNETS,
    OPT_AGENT_TIMEOUT,
    OPT_AGENT_LOST,
    OPT_TASK_ROLES,
    OPT_ROLE_DURATION,
  };
  static const struct option opts[] = {
    { "data-dir", required_argument, NULL, 'd' },
    { "listen", required_argument, NULL, 'l' },
    { "region", required_argument, NULL, 'r' },
    { "account-id", required_argument, NULL, 'a' },
    { "allow-insecure-listen", no_argument, NULL, OPT_INSECURE },
    { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
    { "tls-cert", required_argument, NULL, OPT_TLS_CERT },
    { "tls-key", required_argument, NULL, OPT_TLS_KEY },
    { "subnets", required_argument, NULL, OPT_SUBNETS },
    { "agent-timeout", required_argument, NULL, OPT_AGENT_TIMEOUT },
    { "agent-lost-timeout", required_argument, NULL, OPT_AGENT_LOST },
    { "task-roles", required_argument, NULL, OPT_TASK_ROLES },
    { "task-role-duration", required_argument, NULL, OPT_ROLE_DURATION },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
  };
  int c;
  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1)
    switch (c)
      {
      case 'd':
        cfg->data_dir = optarg;
        break;
      case 'l':
        cfg->listen = optarg;
        break;
      case 'r':
        cfg->region = optarg;
        break;
      case 'a':
        cfg->account_id = optarg;
        break;
      case OPT_SUBNETS:
        cfg->subnets_file = optarg;
        break;
      case OPT_AGENT_TIMEOUT:
      case OPT_AGENT_LOST:
        {
          /* Milliseconds: tests use short ones; the defaults are 60 s and 10 min. */
          char *end;
          unsigned long v = strtoul (optarg, &end, 10);
          if (*end != '\0' || v == 0 || v > 86400000UL)
            return 2;
          *(c == OPT_AGENT_TIMEOUT ? &cfg->agent_timeout_ms : &cfg->agent_lost_timeout_ms)
              = (unsigned)v;
          break;
        }
      case OPT_TASK_ROLES:
        cfg->task_roles_file = optarg;
        break;
      case OPT_ROLE_DURATION:
        {
          /* Seconds: ECS's role credentials last about 6 hours; tests use a few seconds. */
          char *end;
          unsigned long v = strtoul (optarg, &end, 10);
          if (*end != '\0' || v < 6 || v > 7 * 86400UL)
            return 2;
          cfg->task_role_duration_s = (unsigned)v;
          break;
        }
      case OPT_INSECURE:
        cfg->allow_insecure_listen = true;
        break;
      case OPT_TLS_CERT:
        cfg->tls_cert = optarg;
        break;
      case OPT_TLS_KEY:
        cfg->tls_key = optarg;
        break;
      case OPT_LOG_LEVEL:
        if (blog_parse_level (optarg, level) < 0)
          return 2;
        break;
      case 'V':
        printf ("berth-control %s\n", BERTH_VERSION);
        return 1;
      case 'h':
        usage (stdout);
        return 1;
      default:
        return 2;
      }
  if (optind != argc || !valid_account_id (cfg->account_id) || !valid_region (cfg->region))
    return 2;
  return 0;
}

int main (int argc, char **argv)
{
  cp_config cfg = { .data_dir = CP_DEFAULT_DATA_DIR,
                    .listen = CP_DEFAULT_LISTEN,
                    .region = CP_DEFAULT_REGION,
                    .account_id = CP_DEFAULT_ACCOUNT_ID };
  enum blog_level level = BLOG_INFO;
  int r = parse_args (argc, argv, &cfg, &level);
  if (r != 0)
    {
      if (r == 2)
        usage (stderr);
      return r == 1 ? 0 : 2;
    }
  blog_enable_journal ();
  blog_setup ("berth-control", level, BLOG_SINK_AUTO);

  /* Block the stop signals before the server's thread starts, so it inherits the mask and
   * only this thread receives them, in sigwait. */
  sigset_t stop;
  sigemptyset (&stop);
  sigaddset (&stop, SIGTERM);
  sigaddset (&stop, SIGINT);
  pthread_sigmask (SIG_BLOCK, &stop, NULL);
  signal (SIGPIPE, SIG_IGN);

  berr *err = NULL;
  cp_server *srv = NULL;
  if (cp_server_start (&cfg, &srv, &err) < 0)
    {
      blog_berr (&err);
      return 1;
    }
  blog_info ("listening on %s (port %u, %s), region %s, account %s, data in %s", cfg.listen,
             cp_server_port (srv), cfg.tls_cert ? "https" : "http", cfg.region, cfg.account_id,
             cfg.data_dir);
  int sig = 0;
  sigwait (&stop, &sig);
  blog_info ("received %s, stopping", strsignal (sig));
  cp_server_stop (srv);
  return 0;
}
