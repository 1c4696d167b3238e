/* Fuzzes the registry client's parsers of untrusted text: the WWW-Authenticate challenge a
 * registry sends and the docker-style config.json credentials file. */
#include "images/images.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void fuzz_challenge (const char *s)
{
  struct img_auth_challenge c;
  berr *err = NULL;
  if (img_auth_challenge_parse (s, &c, &err) < 0)
    {
      if (c.scheme || c.realm || c.service || c.scope)
        __builtin_trap (); /* a failed parse leaves nothing behind */
      berr_free (&err);
      return;
    }
  if (c.scheme == NULL || c.scheme[0] == 0)
    __builtin_trap ();
  img_auth_challenge_clear (&c);
}

static void fuzz_config (const char *s, size_t len)
{
  static const char *const registries[]
      = { "registry-1.docker.io", "127.0.0.1:5000", "r.example", "" };
  for (size_t i = 0; i < sizeof registries / sizeof *registries; i++)
    {
      char *u = NULL, *p = NULL;
      berr *err = NULL;
      int r = img_docker_config_lookup (s, len, registries[i], &u, &p, &err);
      if (r == 1 && (u == NULL || p == NULL))
        __builtin_trap ();
      if (r < 0 && err == NULL)
        __builtin_trap ();
      berr_free (&err);
      free (u);
      free (p);
    }
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *s = strndup ((const char *)data, size);
  if (s == NULL)
    return 0;
  fuzz_challenge (s);
  fuzz_config (s, strlen (s));
  free (s);
  return 0;
}
