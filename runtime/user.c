/* User and group names resolved in the container's own /etc/passwd and /etc/group (never the
 * host's NSS). The files are untrusted: parsing is bounded and fuzzed (tests/fuzz). */
#include "runtime/internal.h"

#include "lib/cleanup.h"
#include "lib/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define DB_MAX (4 << 20)

static int parse_id (const char *s, size_t len, uint32_t *out)
{
  if (len == 0 || len > 10)
    return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++)
    {
      if (s[i] < '0' || s[i] > '9')
        return -1;
      v = v * 10 + (uint64_t)(s[i] - '0');
    }
  if (v > 0xfffffffeULL) /* (uid_t)-1 means "no change" to the kernel */
    return -1;
  *out = (uint32_t)v;
  return 0;
}

/* Splits one line into at most max ':'-separated fields (pointers into line, lengths). */
static size_t split_fields (const char *line, size_t len, const char **f, size_t *flen, size_t max)
{
  size_t n = 0;
  const char *start = line;
  for (size_t i = 0; i <= len && n < max; i++)
    if (i == len || line[i] == ':')
      {
        f[n] = start;
        flen[n] = (size_t)(line + i - start);
        n++;
        start = line + i + 1;
      }
  return n;
}

static bool field_is (const char *f, size_t flen, const char *name)
{
  return strlen (name) == flen && memcmp (f, name, flen) == 0;
}

/* Calls fn for each line; stops when fn returns non-zero and returns that. */
static int each_line (const char *text, int (*fn) (const char *, size_t, void *), void *arg)
{
  for (const char *p = text; p && *p;)
    {
      const char *nl = strchr (p, '\n');
      size_t len = nl ? (size_t)(nl - p) : strlen (p);
      int r = fn (p, len, arg);
      if (r)
        return r;
      p = nl ? nl + 1 : NULL;
    }
  return 0;
}

struct pw_query
{
  const char *name;
  uid_t *uid;
  gid_t *gid;
  char **home;
};

static int pw_line (const char *line, size_t len, void *arg)
{
  struct pw_query *q = arg;
  const char *f[7];
  size_t fl[7];
  size_t nf = split_fields (line, len, f, fl, 7);
  if (nf < 4)
    return 0;
  uint32_t uid, gid, want;
  if (parse_id (f[2], fl[2], &uid) < 0 || parse_id (f[3], fl[3], &gid) < 0)
    return 0;
  bool numeric = parse_id (q->name, strlen (q->name), &want) == 0;
  if (numeric ? uid != want : !field_is (f[0], fl[0], q->name))
    return 0;
  *q->uid = uid;
  *q->gid = gid;
  if (q->home && nf >= 6)
    *q->home = strndup (f[5], fl[5]);
  return 1;
}

int rt_passwd_lookup (const char *passwd, const char *name, uid_t *uid, gid_t *gid, char **home)
{
  struct pw_query q = { name, uid, gid, home };
  return each_line (passwd, pw_line, &q) == 1 ? 0 : -1;
}

struct gr_query
{
  const char *name;
  gid_t *gid;
};

static int gr_line (const char *line, size_t len, void *arg)
{
  struct gr_query *q = arg;
  const char *f[4];
  size_t fl[4];
  uint32_t gid;
  if (split_fields (line, len, f, fl, 4) < 3 || parse_id (f[2], fl[2], &gid) < 0)
    return 0;
  if (!field_is (f[0], fl[0], q->name))
    return 0;
  *q->gid = gid;
  return 1;
}

int rt_group_lookup (const char *group, const char *name, gid_t *gid)
{
  struct gr_query q = { name, gid };
  return each_line (group, gr_line, &q) == 1 ? 0 : -1;
}

struct member_query
{
  const char *user;
  gid_t *gids;
  size_t n, cap;
};

static int member_line (const char *line, size_t len, void *arg)
{
  struct member_query *q = arg;
  const char *f[4];
  size_t fl[4];
  uint32_t gid;
  if (split_fields (line, len, f, fl, 4) < 4 || parse_id (f[2], fl[2], &gid) < 0)
    return 0;
  for (const char *m = f[3], *end = f[3] + fl[3]; m < end;)
    {
      const char *comma = memchr (m, ',', (size_t)(end - m));
      size_t mlen = comma ? (size_t)(comma - m) : (size_t)(end - m);
      if (field_is (m, mlen, q->user) && q->n < q->cap)
        {
          q->gids[q->n++] = gid;
          break;
        }
      m += mlen + 1;
    }
  return q->n >= q->cap ? 1 : 0;
}

int rt_group_members (const char *group, const char *user, gid_t **gids, size_t *n)
{
  struct member_query q = { user, calloc (64, sizeof (gid_t)), 0, 64 };
  if (q.gids == NULL)
    return -1;
  each_line (group, member_line, &q);
  *gids = q.gids;
  *n = q.n;
  return 0;
}

/* Reads an optional database file; a missing one reads as empty. */
static int read_db (int rootfd, const char *path, char **out, berr **err)
{
  _cleanup_close_ int fd = bfs_open_in_root (rootfd, path, O_RDONLY, 0, NULL);
  if (fd < 0)
    {
      *out = strdup ("");
      return *out ? 0 : berr_make (err, ENOMEM, "out of memory");
    }
  return bfs_read_fd (fd, path, DB_MAX, out, NULL, err);
}

int rt_user_resolve (int rootfd, const char *user, uid_t *uid, gid_t *gid, gid_t **groups,
                     size_t *n_groups, char **home, berr **err)
{
  _cleanup_free_ char *spec = strdup (user);
  _cleanup_free_ char *passwd = NULL, *group = NULL;
  if (spec == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  char *colon = strchr (spec, ':');
  if (colon)
    *colon++ = '\0';
  if (read_db (rootfd, "/etc/passwd", &passwd, err) < 0
      || read_db (rootfd, "/etc/group", &group, err) < 0)
    return -1;
  uint32_t id;
  if (rt_passwd_lookup (passwd, spec, uid, gid, home) < 0)
    {
      if (parse_id (spec, strlen (spec), &id) < 0)
        return berr_make (err, ENOENT, "user `%s` not found in the container's /etc/passwd", spec);
      *uid = id; /* numeric users need not exist, as with every engine */
      *gid = 0;
    }
  if (colon && *colon)
    {
      if (rt_group_lookup (group, colon, gid) < 0)
        {
          if (parse_id (colon, strlen (colon), &id) < 0)
            return berr_make (err, ENOENT, "group `%s` not found in the container's /etc/group",
                              colon);
          *gid = id;
        }
    }
  *n_groups = 0;
  if (rt_group_members (group, spec, groups, n_groups) < 0)
    return berr_make (err, ENOMEM, "out of memory");
  return 0;
}
