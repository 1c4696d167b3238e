/* The agent's own AWS credentials: the standard chain (environment, then the shared
 * credentials file), the file re-read whenever it changes so rotated keys take effect. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/strv.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CREDS_MAX_BYTES (256 * 1024)

static void free_secret (char **s)
{
  if (*s)
    {
      explicit_bzero (*s, strlen (*s));
      free (*s);
      *s = NULL;
    }
}

void agent_creds_clear (agent_creds *c)
{
  free_secret (&c->access_key_id);
  free_secret (&c->secret_access_key);
  free_secret (&c->session_token);
  c->source = NULL;
}

static void trim (const char **s, size_t *n)
{
  while (*n && isspace ((unsigned char)**s))
    (*s)++, (*n)--;
  while (*n && isspace ((unsigned char)(*s)[*n - 1]))
    (*n)--;
}

static int set_field (char **field, const char *v, size_t n, berr **err)
{
  char *copy = strndup (v, n);
  if (copy == NULL)
    return berr_sys (err, "allocate");
  free_secret (field);
  *field = copy;
  return 0;
}

/* One "key = value" line inside the wanted profile. Unknown keys (region, output...) are
 * ignored: the file is shared with the aws CLI. */
static int creds_line (const char *s, size_t n, int line, agent_creds *out, berr **err)
{
  const char *eq = memchr (s, '=', n);
  if (eq == NULL)
    return berr_make (err, EINVAL, "credentials line %d: expected key = value", line);
  const char *k = s, *v = eq + 1;
  size_t kn = (size_t)(eq - s), vn = n - kn - 1;
  trim (&k, &kn);
  trim (&v, &vn);
  if (kn == 17 && strncasecmp (k, "aws_access_key_id", kn) == 0)
    return set_field (&out->access_key_id, v, vn, err);
  if (kn == 21 && strncasecmp (k, "aws_secret_access_key", kn) == 0)
    return set_field (&out->secret_access_key, v, vn, err);
  if (kn == 17 && strncasecmp (k, "aws_session_token", kn) == 0)
    return set_field (&out->session_token, v, vn, err);
  return 0;
}

/* Key ids and secrets go into an Authorization header: printable ASCII without spaces only. */
static bool printable_token (const char *s)
{
  for (; s && *s; s++)
    if (*s <= ' ' || *s > '~')
      return false;
  return true;
}

static int creds_validate (agent_creds *out, const char *profile, berr **err)
{
  if (out->access_key_id == NULL || out->secret_access_key == NULL || !*out->access_key_id
      || !*out->secret_access_key)
    return berr_make (err, EINVAL, "profile `%s` lacks aws_access_key_id or aws_secret_access_key",
                      profile);
  if (!printable_token (out->access_key_id) || !printable_token (out->secret_access_key)
      || !printable_token (out->session_token) || strchr (out->access_key_id, ':'))
    return berr_make (err, EINVAL, "profile `%s` has a key with spaces or control characters",
                      profile);
  if (out->session_token && !*out->session_token)
    free_secret (&out->session_token);
  return 0;
}

int agent_creds_parse (const char *buf, size_t len, const char *profile, agent_creds *out,
                       berr **err)
{
  bool in_profile = false, found = false;
  int line = 1;
  memset (out, 0, sizeof *out);
  for (const char *p = buf, *end = buf + len; p < end; line++)
    {
      const char *nl = memchr (p, '\n', (size_t)(end - p));
      const char *s = p;
      size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
      p += n + 1;
      trim (&s, &n);
      if (n == 0 || *s == '#' || *s == ';')
        continue;
      if (*s == '[')
        {
          const char *name = s + 1;
          size_t nn = n - 1;
          if (s[n - 1] != ']' || n < 2)
            {
              agent_creds_clear (out);
              return berr_make (err, EINVAL, "credentials line %d: unterminated section", line);
            }
          nn--;
          trim (&name, &nn);
          in_profile = nn == strlen (profile) && memcmp (name, profile, nn) == 0;
          found |= in_profile;
          continue;
        }
      if (in_profile && creds_line (s, n, line, out, err) < 0)
        return agent_creds_clear (out), -1;
    }
  if (!found)
    return berr_make (err, ENOENT, "no profile `%s`", profile);
  if (creds_validate (out, profile, err) < 0)
    return agent_creds_clear (out), -1;
  return 0;
}

struct agent_credprov
{
  agent_creds env; /* set when the environment carries keys */
  char *path;
  char *profile;
  agent_creds file;
  struct stat seen; /* of the file last parsed */
  bool have_file;
};

static int credprov_from_env (agent_credprov *p, char *const *envp, berr **err)
{
  const char *id = strv_env_get (envp, "AWS_ACCESS_KEY_ID");
  const char *secret = strv_env_get (envp, "AWS_SECRET_ACCESS_KEY");
  const char *token = strv_env_get (envp, "AWS_SESSION_TOKEN");
  if (id == NULL || secret == NULL || !*id || !*secret)
    return 0;
  if (set_field (&p->env.access_key_id, id, strlen (id), err) < 0
      || set_field (&p->env.secret_access_key, secret, strlen (secret), err) < 0
      || (token && *token && set_field (&p->env.session_token, token, strlen (token), err) < 0))
    return -1;
  if (creds_validate (&p->env, "environment", err) < 0)
    return berr_wrap (err, "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY");
  p->env.source = "environment";
  return 0;
}

int agent_credprov_new (char *const *envp, agent_credprov **out, berr **err)
{
  agent_credprov *p = calloc (1, sizeof *p);
  if (p == NULL)
    return berr_sys (err, "allocate");
  const char *path = strv_env_get (envp, "AWS_SHARED_CREDENTIALS_FILE");
  const char *profile = strv_env_get (envp, "AWS_PROFILE");
  const char *home = strv_env_get (envp, "HOME");
  struct passwd *pw = home && *home ? NULL : getpwuid (getuid ());
  if (pw)
    home = pw->pw_dir;
  if (path && *path)
    p->path = strdup (path);
  else if (asprintf (&p->path, "%s/.aws/credentials", home ? home : "/root") < 0)
    p->path = NULL;
  p->profile = strdup (profile && *profile ? profile : "default");
  if (p->path == NULL || p->profile == NULL)
    {
      agent_credprov_free (p);
      return berr_sys (err, "allocate");
    }
  if (credprov_from_env (p, envp, err) < 0)
    {
      agent_credprov_free (p);
      return -1;
    }
  *out = p;
  return 0;
}

void agent_credprov_free (agent_credprov *p)
{
  if (p == NULL)
    return;
  agent_creds_clear (&p->env);
  agent_creds_clear (&p->file);
  free (p->path);
  free (p->profile);
  free (p);
}

static bool same_file (const struct stat *a, const struct stat *b)
{
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size
         && a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Re-reads the file when its identity or content stamp changed (rename-over rotation changes
 * the inode; an in-place rewrite changes mtime and usually size). */
int agent_credprov_get (agent_credprov *p, const agent_creds **out, berr **err)
{
  if (p->env.access_key_id)
    return *out = &p->env, 0;
  _cleanup_close_ int fd = open (p->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  struct stat st;
  if (fd < 0 || fstat (fd, &st) < 0)
    return berr_sys (err, "credentials file `%s`", p->path);
  if (!p->have_file || !same_file (&st, &p->seen))
    {
      _cleanup_free_ char *buf = NULL;
      size_t len;
      agent_creds fresh;
      if (bfs_read_fd (fd, p->path, CREDS_MAX_BYTES, &buf, &len, err) < 0)
        return -1;
      int r = agent_creds_parse (buf, len, p->profile, &fresh, err);
      explicit_bzero (buf, len);
      if (r < 0)
        return berr_wrap (err, "credentials file `%s`", p->path);
      agent_creds_clear (&p->file);
      p->file = fresh;
      p->file.source = p->path;
      p->seen = st;
      p->have_file = true;
    }
  *out = &p->file;
  return 0;
}
