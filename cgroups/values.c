/* Reading and writing cgroup control files, straight to the files (libcgroup creates, attaches
 * and deletes the groups); reads, the stats hot path, use one small stack buffer each. */
#include "cgroups/internal.h"

#include "lib/cleanup.h"
#include "lib/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <libcgroup.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Limit values are written straight to the control files of the group libcgroup created:
 * cgroup_modify_cgroup re-reads the host's mount table on every call (27 reads of /proc/mounts
 * for one container here), which was a fifth of a container's start time (docs/cgroups.md). */
int cgi_write (cg_group *g, enum cgi_ctrl ctrl, const char *file, const char *value, berr **err)
{
  if (g->dir[ctrl] == NULL)
    return berr_make (err, ENOENT, "write `%s`: controller `%s` is not mounted", file,
                      cgi_ctrl_names[ctrl]);
  char path[PATH_MAX];
  if ((size_t)snprintf (path, sizeof path, "%s/%s", g->dir[ctrl], file) >= sizeof path)
    return berr_make (err, ENAMETOOLONG, "write `%s`: path too long", file);
  return bfs_write_file (AT_FDCWD, path, value, err);
}

ssize_t cgi_read_small (int dirfd, const char *dir, const char *file, char *buf, size_t size)
{
  char path[PATH_MAX];
  const char *p = file;
  if (dirfd < 0)
    {
      if ((size_t)snprintf (path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        {
          errno = ENAMETOOLONG;
          return -1;
        }
      p = path;
      dirfd = AT_FDCWD;
    }
  _cleanup_close_ int fd = openat (dirfd, p, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return -1;
  size_t len = 0;
  while (len + 1 < size)
    {
      ssize_t n = read (fd, buf + len, size - 1 - len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -1;
      if (n == 0)
        break;
      len += (size_t)n;
    }
  buf[len] = '\0';
  return (ssize_t)len;
}

int cgi_keyed_u64 (const char *text, const char *key, uint64_t *out)
{
  size_t klen = strlen (key);
  for (const char *line = text; line && *line;)
    {
      const char *next = strchr (line, '\n');
      if (strncmp (line, key, klen) == 0 && line[klen] == ' ')
        {
          char num[32];
          size_t n = (next ? (size_t)(next - line) : strlen (line)) - klen - 1;
          if (n == 0 || n >= sizeof num)
            return -1;
          memcpy (num, line + klen + 1, n);
          num[n] = '\0';
          return bfs_parse_u64 (num, out);
        }
      line = next ? next + 1 : NULL;
    }
  return -1;
}
