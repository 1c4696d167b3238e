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
  struct cli_launch_args a;
  if (cli_parse_launch_args ("run", argc, argv, true, &a, err) < 0)
    return -1;
  const char *id = a.id;
  bool detach = a.detach;
  /* Block before the clone so no signal is lost; the container resets its own mask. */
  sigset_t set, old;
  sigemptyset (&set);
  sigaddset (&set, SIGCHLD);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    sigaddset (&set, forwarded[i]);
  if (!detach)
    sigprocmask (SIG_BLOCK, &set, &old);
  pid_t pid = 0;
  if (cli_launch (g, a.bundle, id, a.pid_file, RT_LAUNCH_RUN, &pid, err) < 0)
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
