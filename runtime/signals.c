/* Signal names as users and OCI tools write them ("TERM", "SIGTERM", "term", "15",
 * "RTMIN+3") to numbers, with the names themselves coming from the C library. */
#include "runtime/runtime.h"

#include "lib/fs.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* Older spellings that the C library's table does not return. */
static const struct
{
  const char *name;
  int sig;
} aliases[] = {
  { "IOT", SIGABRT },
  { "CLD", SIGCHLD },
  { "POLL", SIGIO },
};

/* "RTMIN", "RTMIN+n", "RTMAX", "RTMAX-n": offsets from the C library's real-time range. */
static int realtime_from_name (const char *s, int *sig)
{
  bool from_min = strncasecmp (s, "RTMIN", 5) == 0;
  if (!from_min && strncasecmp (s, "RTMAX", 5) != 0)
    return -1;
  const char *rest = s + 5;
  uint64_t off = 0;
  if (*rest != '\0')
    {
      if (*rest != (from_min ? '+' : '-') || bfs_parse_u64 (rest + 1, &off) < 0
          || strchr (rest + 1, '\n') != NULL)
        return -1;
    }
  if (off > (uint64_t)(SIGRTMAX - SIGRTMIN))
    return -1;
  *sig = from_min ? SIGRTMIN + (int)off : SIGRTMAX - (int)off;
  return 0;
}

static int signal_by_name (const char *s, int *sig)
{
  for (int n = 1; n < SIGRTMIN; n++)
    {
      const char *abbrev = sigabbrev_np (n);
      if (abbrev != NULL && strcasecmp (abbrev, s) == 0)
        {
          *sig = n;
          return 0;
        }
    }
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
    if (strcasecmp (aliases[i].name, s) == 0)
      {
        *sig = aliases[i].sig;
        return 0;
      }
  return realtime_from_name (s, sig);
}

int rt_signal_from_name (const char *name, int *sig, berr **err)
{
  if (name[0] >= '0' && name[0] <= '9')
    {
      uint64_t n;
      if (bfs_parse_u64 (name, &n) < 0 || strchr (name, '\n') != NULL)
        return berr_make (err, EINVAL, "invalid signal `%s`", name);
      if (n < 1 || n > (uint64_t)SIGRTMAX)
        return berr_make (err, EINVAL, "signal %s is outside [1, %d]", name, SIGRTMAX);
      *sig = (int)n;
      return 0;
    }
  const char *bare = strncasecmp (name, "SIG", 3) == 0 ? name + 3 : name;
  if (signal_by_name (bare, sig) < 0)
    return berr_make (err, EINVAL, "unknown signal `%s`", name);
  return 0;
}
