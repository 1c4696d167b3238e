/* run: create and start in one step. In the foreground the runtime stays the container's parent,
 * forwards signals, removes the container when it exits and exits with its status. */
#include "runtime/cli/cli.h"

#include "lib/log.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

static int wait_forwarding (pid_t pid, const sigset_t *set, int *status)
{
  for (;;)
    {
      pid_t r = waitpid (pid, status, WNOHANG);
      if (r == pid)
        return 0;
      if (r < 0 && errno != EINTR)
        return -1;
      siginfo_t si;
      int sig = sigwaitinfo (set, &si);
      if (sig > 0 && sig != SIGCHLD)
        kill (pid, sig);
    }
}

int cli_run (struct cli_global *g, int argc, char **argv, berr **err)
{
  static const struct option opts[] = {
    { "bundle", required_argument, NULL, 'b' },
    { "pid-file", required_argument, NULL, 'p' },
    { "detach", no_argument, NULL, 'd' },
    { "console-socket", required_argument, NULL, 'c' },
    { NULL, 0, NULL, 0 },
  };
  const char *bundle = ".", *pid_file = NULL;
  bool detach = false;
  int c;
  optind = 0;
  while ((c = getopt_long (argc, argv, "+b:d", opts, NULL)) != -1)
    switch (c)
      {
      case 'b':
        bundle = optarg;
        break;
      case 'p':
        pid_file = optarg;
        break;
      case 'd':
        detach = true;
        break;
      case 'c':
        return berr_make (err, ENOTSUP, "run: terminals (--console-socket) are not supported");
      default:
        return berr_make (err, EINVAL, "run: bad option");
      }
  if (optind != argc - 1)
    return berr_make (err, EINVAL, "run: expected exactly one container id");
  const char *id = argv[optind];
  /* Block before the clone so no signal is lost; the container resets its own mask. */
  sigset_t set, old;
  sigemptyset (&set);
  sigaddset (&set, SIGCHLD);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    sigaddset (&set, forwarded[i]);
  if (!detach)
    sigprocmask (SIG_BLOCK, &set, &old);
  pid_t pid = 0;
  if (cli_launch (g, bundle, id, pid_file, RT_LAUNCH_RUN, &pid, err) < 0)
    return -1;
  if (detach)
    return 0;
  int status = 0;
  if (wait_forwarding (pid, &set, &status) < 0)
    return berr_sys (err, "wait for container `%s`", id);
  berr *e = NULL;
  if (rt_container_delete (g->root, id, true, &e) < 0)
    blog_berr (&e);
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return WEXITSTATUS (status);
}
