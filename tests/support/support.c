/* Test helpers shared by the unit and integration suites. */
#include "tests/support/support.h"

#include "lib/fs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int ts_run_suite (Suite *s)
{
  SRunner *sr = srunner_create (s);
  srunner_run_all (sr, CK_NORMAL);
  int failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed ? 1 : 0;
}

const char *ts_build_dir (void)
{
  const char *b = getenv ("BERTH_BUILD");
  return b && *b ? b : "build";
}

char *ts_bin (const char *name)
{
  char *p = NULL;
  if (asprintf (&p, "%s/bin/%s", ts_build_dir (), name) < 0)
    abort ();
  return p;
}

char *ts_rootfs (void)
{
  char *p = NULL;
  if (asprintf (&p, "%s/rootfs/busybox", ts_build_dir ()) < 0)
    abort ();
  return p;
}

char *ts_mkdtemp (const char *prefix)
{
  char *p = NULL;
  if (asprintf (&p, "/tmp/berth-test-%s-XXXXXX", prefix) < 0 || mkdtemp (p) == NULL)
    abort ();
  return p;
}

void ts_rmtree (const char *path)
{
  berr *err = NULL;
  if (path && bfs_remove_tree (AT_FDCWD, path, &err) < 0)
    {
      fprintf (stderr, "cleanup: %s\n", err->msg);
      berr_free (&err);
    }
}

int ts_run (char *const argv[], char **out, int *status)
{
  int fds[2];
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return -1;
  pid_t pid = fork ();
  if (pid < 0)
    return -1;
  if (pid == 0)
    {
      dup2 (fds[1], 1);
      dup2 (fds[1], 2);
      execvp (argv[0], argv);
      dprintf (2, "exec %s: %s\n", argv[0], strerror (errno));
      _exit (127);
    }
  close (fds[1]);
  size_t cap = 4096, len = 0;
  char *buf = malloc (cap);
  for (;;)
    {
      if (len + 1 >= cap)
        buf = realloc (buf, cap *= 2);
      ssize_t n = read (fds[0], buf + len, cap - len - 1);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      len += (size_t)n;
    }
  buf[len] = '\0';
  close (fds[0]);
  int st = 0;
  while (waitpid (pid, &st, 0) < 0 && errno == EINTR)
    ;
  if (status)
    *status = st;
  if (out)
    *out = buf;
  else
    free (buf);
  return 0;
}

int ts_sh (const char *cmd, char **out, int *status)
{
  char *argv[] = { "/bin/sh", "-c", (char *)cmd, NULL };
  return ts_run (argv, out, status);
}

void ts_sh_ok (const char *fmt, ...)
{
  va_list ap;
  char *cmd = NULL, *out = NULL;
  int status = 0;
  va_start (ap, fmt);
  ck_assert_int_ge (vasprintf (&cmd, fmt, ap), 0);
  va_end (ap);
  ck_assert_int_eq (ts_sh (cmd, &out, &status), 0);
  ck_assert_msg (ts_exit_code (status) == 0, "`%s` failed: %s", cmd, out ? out : "");
  free (out);
  free (cmd);
}

int ts_free_port (void)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (bind (fd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq (getsockname (fd, (struct sockaddr *)&a, &len), 0);
  close (fd);
  return ntohs (a.sin_port);
}

int ts_exit_code (int status)
{
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return -1;
}

bool ts_is_root (void)
{
  return geteuid () == 0;
}

bool ts_wait_for (bool (*cond) (void *), void *arg, int timeout_ms)
{
  for (int waited = 0; waited <= timeout_ms; waited += 10)
    {
      if (cond (arg))
        return true;
      struct timespec ts = { 0, 10 * 1000 * 1000 };
      nanosleep (&ts, NULL);
    }
  return cond (arg);
}

char *ts_read_file (const char *path)
{
  char *buf = NULL;
  berr *err = NULL;
  if (bfs_read_all (AT_FDCWD, path, 16 << 20, &buf, NULL, &err) < 0)
    {
      berr_free (&err);
      return NULL;
    }
  return buf;
}

void ts_private_net (void)
{
  ck_assert_int_eq (unshare (CLONE_NEWNET), 0);
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ck_assert_int_ge (fd, 0);
  struct ifreq ifr = { 0 };
  snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  ck_assert_int_eq (ioctl (fd, SIOCGIFFLAGS, &ifr), 0);
  ifr.ifr_flags |= IFF_UP;
  ck_assert_int_eq (ioctl (fd, SIOCSIFFLAGS, &ifr), 0);
  close (fd);
}
