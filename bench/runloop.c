/* runloop: runs a command COUNT times in sequence for bench/run.sh and prints the wall time of
 * the whole loop and the peak RSS of each run. Its own cost per run is one posix_spawn and one
 * wait4, the same for every runtime measured.
 *
 *   runloop COUNT CMD [ARG...] [--then CMD2 [ARG...]]
 *   -> "runs=COUNT total_ns=NS cpu_ns=NS rss_kb=R1,R2,..."
 *
 * CMD2, when given, runs after each CMD (e.g. a `delete` for a runtime whose `run` keeps the
 * container); it is timed but its RSS is not reported. The RSS of a run is ru_maxrss from
 * wait4: the largest resident set of the child and every descendant it reaped, which is what
 * GNU time's %M reports. cpu_ns is the user+system time of the same process trees (both
 * commands): less disturbed by other load than wall time, but it misses kernel work done
 * elsewhere, such as namespace teardown in kernel workers. The children's stdout goes to
 * /dev/null; stderr is inherited. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static uint64_t now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t tv_ns (struct timeval tv)
{
  return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
}

/* Spawns argv with stdout on /dev/null and waits; stores its peak RSS (KiB) and adds its CPU
 * time to *cpu_ns. Returns 0 if it exited 0. */
static int run_once (char **argv, const posix_spawn_file_actions_t *fa, long *rss_kb,
                     uint64_t *cpu_ns)
{
  pid_t pid;
  int rc = posix_spawnp (&pid, argv[0], fa, NULL, argv, environ);
  if (rc != 0)
    {
      fprintf (stderr, "runloop: cannot run `%s`: %s\n", argv[0], strerror (rc));
      return -1;
    }
  int status;
  struct rusage ru;
  while (wait4 (pid, &status, 0, &ru) < 0)
    if (errno != EINTR)
      {
        fprintf (stderr, "runloop: wait4: %s\n", strerror (errno));
        return -1;
      }
  *rss_kb = ru.ru_maxrss;
  *cpu_ns += tv_ns (ru.ru_utime) + tv_ns (ru.ru_stime);
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return 0;
  if (WIFEXITED (status))
    fprintf (stderr, "runloop: `%s` exited with status %d\n", argv[0], WEXITSTATUS (status));
  else
    fprintf (stderr, "runloop: `%s` killed by signal %d\n", argv[0], WTERMSIG (status));
  return -1;
}

/* Cuts argv at "--then": *then gets the second command, or NULL. Returns -1 on misuse. */
static int split_then (int argc, char **argv, char ***then)
{
  *then = NULL;
  for (int i = 0; i < argc; i++)
    if (strcmp (argv[i], "--then") == 0)
      {
        argv[i] = NULL; /* terminates the first command */
        *then = argv + i + 1;
        return **then ? 0 : -1;
      }
  return 0;
}

int main (int argc, char **argv)
{
  char *end, **then;
  long count = argc >= 3 ? strtol (argv[1], &end, 10) : 0;
  if (argc < 3 || *end != '\0' || count < 1 || count > 1000000
      || split_then (argc - 2, argv + 2, &then) < 0)
    {
      fprintf (stderr, "usage: runloop COUNT CMD [ARG...] [--then CMD2 [ARG...]]\n");
      return 2;
    }

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  long *rss = calloc ((size_t)count, sizeof *rss);
  if (rss == NULL)
    return 1;

  uint64_t cpu = 0, start = now_ns ();
  for (long i = 0; i < count; i++)
    {
      long ignored;
      if (run_once (argv + 2, &fa, &rss[i], &cpu) < 0
          || (then && run_once (then, &fa, &ignored, &cpu) < 0))
        {
          fprintf (stderr, "runloop: run %ld of %ld failed\n", i + 1, count);
          return 1;
        }
    }
  uint64_t total = now_ns () - start;

  printf ("runs=%ld total_ns=%llu cpu_ns=%llu rss_kb=", count, (unsigned long long)total,
          (unsigned long long)cpu);
  for (long i = 0; i < count; i++)
    printf ("%s%ld", i ? "," : "", rss[i]);
  printf ("\n");
  free (rss);
  posix_spawn_file_actions_destroy (&fa);
  return 0;
}
