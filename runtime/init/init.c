/* berth-init: the tiny PID 1 of containers with initProcessEnabled (docs/agent.md). Runs the
 * command as its child, forwards the signals it gets to it, reaps every orphan the namespace
 * hands it, and exits with the command's status. Static (musl), libc only: it runs from a
 * read-only bind mount inside any image. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Signals that report a fault of this very process: left alone (default action). */
static int synchronous (int sig)
{
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGTRAP
         || sig == SIGSYS || sig == SIGKILL || sig == SIGSTOP;
}

/* The kernel drops a signal sent to a namespace's PID 1 while its disposition is the default,
 * blocked or not: every forwarded signal gets a handler (which never runs, they stay blocked and
 * are taken with sigwaitinfo). */
static void on_signal (int sig)
{
  (void)sig;
}

static void take_signals (sigset_t *all, sigset_t *old)
{
  struct sigaction sa;
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset (all);
  for (int sig = 1; sig < NSIG; sig++)
    if (!synchronous (sig) && sig != SIGTTIN && sig != SIGTTOU && sigaction (sig, &sa, NULL) == 0)
      sigaddset (all, sig);
  /* a PID 1 without a terminal must not stop on background terminal I/O */
  signal (SIGTTIN, SIG_IGN);
  signal (SIGTTOU, SIG_IGN);
  sigprocmask (SIG_BLOCK, all, old);
}

/* The child: the original mask and dispositions back (exec resets the handled ones), exec. */
static pid_t spawn (char **argv, const sigset_t *old)
{
  pid_t pid = fork ();
  if (pid != 0)
    return pid;
  signal (SIGTTIN, SIG_DFL);
  signal (SIGTTOU, SIG_DFL);
  sigprocmask (SIG_SETMASK, old, NULL);
  execvp (argv[0], argv);
  fprintf (stderr, "berth-init: exec %s: %s\n", argv[0], strerror (errno));
  _exit (errno == ENOENT ? 127 : 126);
}

/* Reaps every exited child; returns 1 with *status set once the command itself exited. */
static int reap (pid_t child, int *status)
{
  int st, done = 0;
  pid_t p;
  while ((p = waitpid (-1, &st, WNOHANG)) > 0)
    if (p == child)
      {
        *status = WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st);
        done = 1;
      }
  return done;
}

int main (int argc, char **argv)
{
  sigset_t all, old;
  int status = 0;
  int first = argc > 1 && strcmp (argv[1], "--") == 0 ? 2 : 1;
  if (first >= argc)
    {
      fprintf (stderr, "usage: berth-init [--] COMMAND [ARG]...\n");
      return 2;
    }
  take_signals (&all, &old);
  pid_t child = spawn (argv + first, &old);
  if (child < 0)
    {
      fprintf (stderr, "berth-init: fork: %s\n", strerror (errno));
      return 126;
    }
  for (;;)
    {
      siginfo_t si;
      int sig = sigwaitinfo (&all, &si);
      if (sig < 0)
        continue;
      if (sig != SIGCHLD)
        kill (child, sig);
      else if (reap (child, &status))
        return status; /* the kernel kills what is left in the namespace */
    }
}
