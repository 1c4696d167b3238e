/* File helpers shared by every component; no symlink is followed out of a root. */
#include "lib/fs.h"

#include "lib/cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static int write_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -1;
      p += n;
      len -= (size_t)n;
    }
  return 0;
}

/* Splits "a/b/name" into an fd for the directory "a/b" (relative to dirfd) and "name". */
static int open_parent (int dirfd, const char *path, char **base, berr **err)
{
  const char *slash = strrchr (path, '/');
  if (slash == NULL)
    {
      *base = strdup (path);
      return *base ? fcntl (dirfd, F_DUPFD_CLOEXEC, 3) : berr_make (err, ENOMEM, "out of memory");
    }
  _cleanup_free_ char *dir = strndup (path, (size_t)(slash - path));
  if (dir == NULL || (*base = strdup (slash + 1)) == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  int fd = openat (dirfd, dir[0] ? dir : "/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      free (*base);
      *base = NULL;
      return berr_sys (err, "open directory `%s`", dir[0] ? dir : "/");
    }
  return fd;
}

static int write_atomic (int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
                         bool durable, berr **err)
{
  _cleanup_free_ char *base = NULL;
  _cleanup_close_ int dfd = open_parent (dirfd, name, &base, err);
  if (dfd < 0)
    return -1;

  char tmp[NAME_MAX + 1];
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 16; attempt++)
    {
      snprintf (tmp, sizeof tmp, ".%.200s.%d.%u.tmp", base, (int)getpid (),
                (unsigned)(random () ^ (unsigned)attempt));
      fd = openat (dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
      if (fd < 0 && errno != EEXIST)
        return berr_sys (err, "create `%s`", tmp);
    }
  if (fd < 0)
    return berr_sys (err, "create a temporary file for `%s`", name);

  if (fchmod (fd, mode) < 0 || write_all (fd, buf, len) < 0 || (durable && fsync (fd) < 0))
    {
      berr_sys (err, "write `%s`", name);
      close (fd);
      unlinkat (dfd, tmp, 0);
      return -1;
    }
  if (close (fd) < 0)
    {
      unlinkat (dfd, tmp, 0);
      return berr_sys (err, "close `%s`", name);
    }
  if (renameat (dfd, tmp, dfd, base) < 0)
    {
      berr_sys (err, "rename into `%s`", name);
      unlinkat (dfd, tmp, 0);
      return -1;
    }
  if (durable && fsync (dfd) < 0)
    return berr_sys (err, "fsync the directory of `%s`", name);
  return 0;
}

int bfs_write_atomic (int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
                      berr **err)
{
  return write_atomic (dirfd, name, buf, len, mode, true, err);
}

int bfs_write_atomic_volatile (int dirfd, const char *name, const void *buf, size_t len,
                               mode_t mode, berr **err)
{
  return write_atomic (dirfd, name, buf, len, mode, false, err);
}

int bfs_read_all (int dirfd, const char *path, size_t max, char **out, size_t *len, berr **err)
{
  _cleanup_close_ int fd = openat (dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return berr_sys (err, "open `%s`", path);
  return bfs_read_fd (fd, path, max, out, len, err);
}

int bfs_read_fd (int fd, const char *path, size_t max, char **out, size_t *len, berr **err)
{
  size_t cap = 4096, used = 0;
  _cleanup_free_ char *buf = malloc (cap);
  if (buf == NULL)
    return berr_make (err, ENOMEM, "read `%s`", path);
  for (;;)
    {
      if (used + 1 >= cap)
        {
          if (cap > max)
            return berr_make (err, EFBIG, "read `%s`: larger than %zu bytes", path, max);
          char *nb = realloc (buf, cap * 2);
          if (nb == NULL)
            return berr_make (err, ENOMEM, "read `%s`", path);
          buf = nb;
          cap *= 2;
        }
      ssize_t n = read (fd, buf + used, cap - used - 1);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return berr_sys (err, "read `%s`", path);
      if (n == 0)
        break;
      used += (size_t)n;
      if (used > max)
        return berr_make (err, EFBIG, "read `%s`: larger than %zu bytes", path, max);
    }
  buf[used] = '\0';
  if (len)
    *len = used;
  *out = steal_ptr (&buf);
  return 0;
}

int bfs_write_file (int dirfd, const char *path, const char *s, berr **err)
{
  _cleanup_close_ int fd = openat (dirfd, path, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_TRUNC);
  if (fd < 0)
    return berr_sys (err, "open `%s`", path);
  if (write_all (fd, s, strlen (s)) < 0)
    return berr_sys (err, "write `%s` to `%s`", s, path);
  return 0;
}

int bfs_open_in_root (int rootfd, const char *path, int flags, mode_t mode, berr **err)
{
  struct open_how how = {
    .flags = (uint64_t)(flags | O_CLOEXEC),
    .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  for (;;)
    {
      long fd = syscall (SYS_openat2, rootfd, path, &how, sizeof how);
      if (fd >= 0)
        return (int)fd;
      if (errno != EAGAIN && errno != EINTR) /* EAGAIN: a rename raced the lookup; retry */
        return berr_sys (err, "open `%s` inside the root", path);
    }
}

int bfs_mkdirs_in_root (int rootfd, const char *path, mode_t mode, int *out_fd, berr **err)
{
  _cleanup_free_ char *copy = strdup (path);
  if (copy == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  _cleanup_close_ int cur = fcntl (rootfd, F_DUPFD_CLOEXEC, 3);
  if (cur < 0)
    return berr_sys (err, "dup");
  char *save = NULL;
  for (char *part = strtok_r (copy, "/", &save); part; part = strtok_r (NULL, "/", &save))
    {
      if (strcmp (part, ".") == 0)
        continue;
      if (strcmp (part, "..") != 0 && mkdirat (cur, part, mode) < 0 && errno != EEXIST)
        return berr_sys (err, "mkdir `%s` in `%s`", part, path);
      /* Resolve what is there now (maybe a symlink planted by the image) inside the root.
       * The lookup is relative to cur, but RESOLVE_IN_ROOT treats cur as `/`, so instead
       * resolve the prefix from the real root each time. */
      size_t prefix = (size_t)(part - copy) + strlen (part);
      _cleanup_free_ char *sub = strndup (path, prefix);
      if (sub == NULL)
        return berr_make (err, ENOMEM, "out of memory");
      int next = bfs_open_in_root (rootfd, sub, O_PATH | O_DIRECTORY, 0, err);
      if (next < 0)
        return -1;
      close (cur);
      cur = next;
    }
  if (out_fd)
    *out_fd = steal_fd (&cur);
  return 0;
}

int bfs_mkdirs (const char *path, mode_t mode, berr **err)
{
  _cleanup_free_ char *copy = strdup (path);
  if (copy == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  for (char *p = copy + 1; *p; p++)
    {
      if (*p != '/')
        continue;
      *p = '\0';
      if (mkdir (copy, mode) < 0 && errno != EEXIST)
        return berr_sys (err, "mkdir `%s`", copy);
      *p = '/';
    }
  if (mkdir (copy, mode) < 0 && errno != EEXIST)
    return berr_sys (err, "mkdir `%s`", copy);
  return 0;
}

static int remove_children (int dfd, dev_t dev, const char *path, berr **err)
{
  DIR *d = fdopendir (dfd);
  if (d == NULL)
    {
      close (dfd);
      return berr_sys (err, "read directory `%s`", path);
    }
  int ret = 0;
  struct dirent *de;
  while (ret == 0 && (de = readdir (d)) != NULL)
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      struct stat st;
      if (fstatat (dirfd (d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          if (errno == ENOENT)
            continue;
          ret = berr_sys (err, "stat `%s/%s`", path, de->d_name);
          break;
        }
      if (S_ISDIR (st.st_mode))
        {
          if (st.st_dev != dev)
            {
              ret = berr_make (err, EBUSY, "`%s/%s` is a mount point", path, de->d_name);
              break;
            }
          int sub = openat (dirfd (d), de->d_name, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
          if (sub < 0)
            {
              ret = berr_sys (err, "open `%s/%s`", path, de->d_name);
              break;
            }
          ret = remove_children (sub, dev, de->d_name, err);
          if (ret == 0 && unlinkat (dirfd (d), de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
            ret = berr_sys (err, "rmdir `%s/%s`", path, de->d_name);
        }
      else if (unlinkat (dirfd (d), de->d_name, 0) < 0 && errno != ENOENT)
        ret = berr_sys (err, "unlink `%s/%s`", path, de->d_name);
    }
  closedir (d);
  return ret;
}

int bfs_remove_tree (int dirfd, const char *path, berr **err)
{
  struct stat st;
  if (fstatat (dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : berr_sys (err, "stat `%s`", path);
  if (!S_ISDIR (st.st_mode))
    return unlinkat (dirfd, path, 0) < 0 && errno != ENOENT ? berr_sys (err, "unlink `%s`", path)
                                                            : 0;
  int fd = openat (dirfd, path, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return berr_sys (err, "open `%s`", path);
  if (remove_children (fd, st.st_dev, path, err) < 0)
    return -1;
  if (unlinkat (dirfd, path, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return berr_sys (err, "rmdir `%s`", path);
  return 0;
}

int bfs_parse_u64 (const char *s, uint64_t *out)
{
  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull (s, &end, 10);
  if (errno != 0 || end == s || (*end != '\0' && !(*end == '\n' && end[1] == '\0')))
    return -1;
  *out = v;
  return 0;
}
