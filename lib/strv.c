/* String vector helpers. */
#include "lib/strv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t strv_len (char *const *v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

char **strv_dup (char *const *v)
{
  size_t n = strv_len (v);
  char **r = calloc (n + 1, sizeof *r);
  if (r == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if ((r[i] = strdup (v[i])) == NULL)
      {
        strv_free (r);
        return NULL;
      }
  return r;
}

int strv_append (char ***v, const char *s)
{
  size_t n = strv_len (*v);
  char *copy = strdup (s);
  char **r = copy ? realloc (*v, (n + 2) * sizeof *r) : NULL;
  if (r == NULL)
    {
      free (copy);
      return -1;
    }
  r[n] = copy;
  r[n + 1] = NULL;
  *v = r;
  return 0;
}

static char **env_find (char *const *v, const char *key)
{
  size_t klen = strlen (key);
  for (size_t i = 0; v && v[i]; i++)
    if (strncmp (v[i], key, klen) == 0 && v[i][klen] == '=')
      return (char **)&v[i];
  return NULL;
}

const char *strv_env_get (char *const *v, const char *key)
{
  char **e = env_find (v, key);
  return e ? *e + strlen (key) + 1 : NULL;
}

int strv_env_set (char ***v, const char *key, const char *value)
{
  char *kv = NULL;
  if (asprintf (&kv, "%s=%s", key, value) < 0)
    return -1;
  char **e = env_find (*v, key);
  if (e)
    {
      free (*e);
      *e = kv;
      return 0;
    }
  int r = strv_append (v, kv);
  free (kv);
  return r;
}

void strv_free (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

void strv_freep (char ***v)
{
  strv_free (*v);
  *v = NULL;
}
