/* Image references as users write them (`busybox:1.36`, `registry:5000/team/app@sha256:...`),
 * parsed by the Docker distribution reference grammar and completed with the usual defaults. */
#include "images/images.h"

#include "lib/cleanup.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOCKER_HUB "registry-1.docker.io"
#define NAME_MAX_LEN 255 /* registry + '/' + repository, as the distribution spec limits it */
#define TAG_MAX_LEN 128

bool img_digest_valid (const char *digest)
{
  if (digest == NULL || strncmp (digest, "sha256:", 7) != 0)
    return false;
  const char *hex = digest + 7;
  size_t i = 0;
  for (; hex[i]; i++)
    if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
      return false;
  return i == 64;
}

static bool is_lower_alnum (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_word (char c)
{
  return isascii ((unsigned char)c) && (isalnum ((unsigned char)c) || c == '_');
}

/* path-component: alnum+ (separator alnum+)*, separator = '.', '_', '__' or a run of '-'.
 * Returns NULL when valid, else what is wrong. */
static const char *check_path_component (const char *s, size_t n)
{
  if (n == 0)
    return "has an empty path component";
  for (size_t i = 0; i < n; i++)
    if (s[i] >= 'A' && s[i] <= 'Z')
      return "repository name must be lowercase";
  size_t i = 0;
  while (i < n)
    {
      if (!is_lower_alnum (s[i]))
        return "repository name components must start and end with [a-z0-9] and use only "
               "[a-z0-9], '.', '_', '__' or '-' between them";
      while (i < n && is_lower_alnum (s[i]))
        i++;
      if (i == n)
        break;
      size_t sep = i;
      if (s[i] == '-')
        while (i < n && s[i] == '-')
          i++;
      else if (s[i] == '_' && i + 1 < n && s[i + 1] == '_')
        i += 2;
      else if (s[i] == '.' || s[i] == '_')
        i++;
      if (i == sep || i == n)
        return "repository name components must start and end with [a-z0-9] and use only "
               "[a-z0-9], '.', '_', '__' or '-' between them";
    }
  return NULL;
}

static const char *check_repository (const char *s)
{
  for (const char *p = s;;)
    {
      const char *slash = strchr (p, '/');
      size_t n = slash ? (size_t)(slash - p) : strlen (p);
      const char *why = check_path_component (p, n);
      if (why)
        return why;
      if (slash == NULL)
        return NULL;
      p = slash + 1;
    }
}

/* host[:port]: dot-separated components of [A-Za-z0-9-] not starting or ending with '-',
 * then an optional decimal port in 1-65535. */
static const char *check_registry (const char *s)
{
  const char *colon = strchr (s, ':');
  size_t host_len = colon ? (size_t)(colon - s) : strlen (s);
  if (host_len == 0)
    return "registry host is empty";
  for (size_t i = 0, start = 0; i <= host_len; i++)
    {
      if (i < host_len && s[i] != '.')
        {
          if (!isascii ((unsigned char)s[i]) || !(isalnum ((unsigned char)s[i]) || s[i] == '-'))
            return "registry host may contain only letters, digits, '-' and '.'";
          continue;
        }
      if (i == start || s[start] == '-' || s[i - 1] == '-')
        return "registry host has an empty label or a label starting or ending with '-'";
      start = i + 1;
    }
  if (colon == NULL)
    return NULL;
  const char *port = colon + 1;
  size_t digits = strspn (port, "0123456789");
  if (digits == 0 || port[digits] != '\0' || digits > 5 || atoi (port) < 1 || atoi (port) > 65535)
    return "registry port must be a number in 1-65535";
  return NULL;
}

static const char *check_tag (const char *t)
{
  size_t n = strlen (t);
  if (n == 0)
    return "tag is empty";
  if (n > TAG_MAX_LEN)
    return "tag is longer than 128 characters";
  if (!is_word (t[0]))
    return "tag must start with a letter, digit or '_'";
  for (size_t i = 1; i < n; i++)
    if (!is_word (t[i]) && t[i] != '.' && t[i] != '-')
      return "tag may contain only letters, digits, '_', '.' and '-'";
  return NULL;
}

static const char *check_digest (const char *d)
{
  const char *colon = strchr (d, ':');
  if (colon == NULL)
    return "digest must be `sha256:<64 hex digits>`";
  if ((size_t)(colon - d) != 6 || strncmp (d, "sha256", 6) != 0)
    return "digest algorithm is not supported (only sha256 is)";
  if (!img_digest_valid (d))
    return "digest must be `sha256:` and 64 lowercase hex digits";
  return NULL;
}

/* The first path component names a registry when it looks like a host (has '.' or ':', is
 * "localhost", or has capitals, which repository names never do) and is not the only one. */
static bool is_registry_component (const char *s, size_t n)
{
  if (n == 9 && strncmp (s, "localhost", 9) == 0)
    return true;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '.' || s[i] == ':' || (s[i] >= 'A' && s[i] <= 'Z'))
      return true;
  return false;
}

static int bad_ref (berr **err, const char *s, const char *why)
{
  return berr_make (err, EINVAL, "invalid reference `%s`: %s", s, why);
}

/* Splits "name[:tag][@digest]" in place: *tag and *digest point into buf or are NULL. */
static void split_tag_digest (char *buf, char **tag, char **digest)
{
  *tag = *digest = NULL;
  char *at = strchr (buf, '@');
  if (at)
    {
      *at = '\0';
      *digest = at + 1;
    }
  char *colon = strrchr (buf, ':');
  char *slash = strrchr (buf, '/');
  if (colon && (slash == NULL || colon > slash))
    {
      *colon = '\0';
      *tag = colon + 1;
    }
}

/* Docker Hub answers the API at registry-1.docker.io; users write docker.io. */
static const char *hub_alias (const char *reg)
{
  return strcmp (reg, "docker.io") == 0 || strcmp (reg, "index.docker.io") == 0 ? DOCKER_HUB : reg;
}

/* Fills registry and repository from the name part, applying the defaults. */
static int resolve_name (const char *s, const char *name, const struct img_ref_defaults *d,
                         struct img_ref *r, berr **err)
{
  const char *def_reg = hub_alias (d && d->registry && *d->registry ? d->registry : DOCKER_HUB);
  const char *def_ns = d && d->namespace ? d->namespace : "library";
  const char *slash = strchr (name, '/');
  const char *path = name;
  const char *reg = def_reg;
  _cleanup_free_ char *reg_copy = NULL;
  if (slash && is_registry_component (name, (size_t)(slash - name)))
    {
      reg_copy = strndup (name, (size_t)(slash - name));
      if (reg_copy == NULL)
        return berr_make (err, ENOMEM, "out of memory");
      const char *why = check_registry (reg_copy);
      if (why)
        return bad_ref (err, s, why);
      reg = hub_alias (reg_copy);
      path = slash + 1;
    }
  const char *why = check_repository (path);
  if (why)
    return bad_ref (err, s, why);
  /* Docker Hub keeps official images under library/ whatever the configured default is. */
  bool on_default = strcmp (reg, def_reg) == 0 || strcmp (reg, DOCKER_HUB) == 0;
  bool add_ns = on_default && strchr (path, '/') == NULL && *def_ns;
  r->registry = strdup (reg);
  if (add_ns)
    {
      if (asprintf (&r->repository, "%s/%s", def_ns, path) < 0)
        r->repository = NULL;
    }
  else
    r->repository = strdup (path);
  if (r->registry == NULL || r->repository == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  /* Docker checks the normalised name, so the canonical form always parses again. */
  if (strlen (r->registry) + 1 + strlen (r->repository) > NAME_MAX_LEN)
    return bad_ref (err, s, "name is longer than 255 characters");
  return 0;
}

int img_ref_parse (const char *s, const struct img_ref_defaults *d, struct img_ref *out, berr **err)
{
  memset (out, 0, sizeof *out);
  if (s == NULL || *s == '\0')
    return berr_make (err, EINVAL, "invalid reference ``: empty");
  if (strlen (s) > NAME_MAX_LEN + 1 + TAG_MAX_LEN + 1 + 71)
    return berr_make (err, EINVAL, "invalid reference `%.64s...`: longer than any valid one", s);
  _cleanup_free_ char *buf = strdup (s);
  if (buf == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  char *tag, *digest;
  split_tag_digest (buf, &tag, &digest);
  if (*buf == '\0')
    return bad_ref (err, s, "repository name is missing");
  const char *why = tag ? check_tag (tag) : NULL;
  if (why == NULL && digest)
    why = check_digest (digest);
  if (why)
    return bad_ref (err, s, why);
  struct img_ref r = { 0 };
  if (resolve_name (s, buf, d, &r, err) < 0)
    {
      img_ref_clear (&r);
      return -1;
    }
  /* The tag defaults to latest only when no digest pins the image. */
  if (tag || digest == NULL)
    r.tag = strdup (tag ? tag : "latest");
  if (digest)
    r.digest = strdup (digest);
  if ((r.tag == NULL && (tag || digest == NULL)) || (r.digest == NULL && digest))
    {
      img_ref_clear (&r);
      return berr_make (err, ENOMEM, "out of memory");
    }
  *out = r;
  return 0;
}

char *img_ref_format (const struct img_ref *r)
{
  char *s = NULL;
  if (asprintf (&s, "%s/%s%s%s%s%s", r->registry, r->repository, r->tag ? ":" : "",
                r->tag ? r->tag : "", r->digest ? "@" : "", r->digest ? r->digest : "")
      < 0)
    return NULL;
  return s;
}

void img_ref_clear (struct img_ref *r)
{
  free (r->registry);
  free (r->repository);
  free (r->tag);
  free (r->digest);
  memset (r, 0, sizeof *r);
}
