/* berth-probe: a static program the integration tests bind-mount into containers to ask the
 * kernel what the container may do (syscalls, descriptors, memory). Prints one line per fact. */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *errname (int e)
{
  switch (e)
    {
    case 0:
      return "OK";
    case EPERM:
      return "EPERM";
    case ENOSYS:
      return "ENOSYS";
    case EACCES:
      return "EACCES";
    case EINVAL:
      return "EINVAL";
    case ENOENT:
      return "ENOENT";
    default:
      return "OTHER";
    }
}

static void report (const char *what, long r)
{
  printf ("%s=%s\n", what, errname (r < 0 ? errno : 0));
}

/* Each call is made so that it would succeed (or fail differently) without the filter. */
static int probe_syscalls (void)
{
  report ("unshare", unshare (CLONE_NEWNS));
  report ("mount", mount ("tmpfs", "/tmp", "tmpfs", 0, NULL));
  report ("keyctl", syscall (SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0));
  report ("clone3", syscall (SYS_clone3, NULL, 0));
  report ("unknown", syscall (1000));
  report ("getpid", syscall (SYS_getpid));
  return 0;
}

/* Lists the descriptors open in this process, without the one used to list them. */
static int probe_fds (void)
{
  DIR *d = opendir ("/proc/self/fd");
  if (d == NULL)
    return perror ("opendir"), 1;
  struct dirent *de;
  printf ("fds:");
  while ((de = readdir (d)) != NULL)
    if (de->d_name[0] != '.' && atoi (de->d_name) != dirfd (d))
      printf (" %s", de->d_name);
  printf ("\n");
  closedir (d);
  return 0;
}

/* Touches MiB megabytes, one page at a time. */
static int probe_alloc (long mib)
{
  for (long i = 0; i < mib; i++)
    {
      char *p = malloc (1 << 20);
      if (p == NULL)
        return printf ("alloc failed at %ld MiB\n", i), 1;
      for (int j = 0; j < (1 << 20); j += 4096)
        p[j] = 1;
    }
  printf ("allocated %ld MiB\n", mib);
  return 0;
}

int main (int argc, char **argv)
{
  if (argc >= 2 && strcmp (argv[1], "syscalls") == 0)
    return probe_syscalls ();
  if (argc >= 2 && strcmp (argv[1], "fds") == 0)
    return probe_fds ();
  if (argc >= 3 && strcmp (argv[1], "alloc") == 0)
    return probe_alloc (atol (argv[2]));
  fprintf (stderr, "usage: berth-probe syscalls|fds|alloc MIB\n");
  return 2;
}
