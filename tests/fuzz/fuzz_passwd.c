/* Fuzzes the parsers of a container's /etc/passwd and /etc/group (image content: untrusted). */
#include "runtime/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = malloc (size + 1);
  if (text == NULL)
    return 0;
  memcpy (text, data, size);
  text[size] = '\0';
  uid_t uid;
  gid_t gid, *gids = NULL;
  size_t n = 0;
  char *home = NULL;
  rt_passwd_lookup (text, "app", &uid, &gid, &home);
  free (home);
  rt_passwd_lookup (text, "1000", &uid, &gid, NULL);
  rt_group_lookup (text, "users", &gid);
  if (rt_group_members (text, "app", &gids, &n) == 0)
    free (gids);
  free (text);
  return 0;
}
