/* Capability names to numbers (through libcap) and Docker's default set of 14, which Berth
 * grants by default in the bounding, effective and permitted sets. */
#include "runtime/runtime.h"

#include <ctype.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <strings.h>
#include <sys/capability.h>

int rt_cap_from_name (const char *name, int *cap, berr **err)
{
  const char *bare = name;
  if (strncasecmp (bare, "CAP_", 4) == 0)
    bare = name + 4;

  /* libcap parses a prefix of a list ("cap_chown,cap_kill") and accepts numbers, so only plain
   * names reach it: letters and underscores, of a sane length. */
  char lower[64] = "cap_";
  size_t n = 4;
  for (const char *p = bare; *p; p++, n++)
    {
      if (n + 1 >= sizeof lower || !(isalpha ((unsigned char)*p) || *p == '_'))
        return berr_make (err, EINVAL, "unknown capability `%s`", name);
      lower[n] = (char)tolower ((unsigned char)*p);
    }
  lower[n] = '\0';

  cap_value_t v;
  if (n == 4 || cap_from_name (lower, &v) < 0 || v < 0 || v > 63)
    return berr_make (err, EINVAL, "unknown capability `%s`", name);
  *cap = v;
  return 0;
}

uint64_t rt_caps_docker_default (void)
{
  static const int caps[] = {
    CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
    CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,           CAP_SETUID,
    CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
    CAP_KILL,    CAP_AUDIT_WRITE,
  };
  uint64_t set = 0;
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++)
    set |= UINT64_C (1) << caps[i];
  return set;
}
