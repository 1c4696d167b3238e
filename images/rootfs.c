/* Root filesystems for containers: an overlay of the image's layers with a per-container upper
 * directory, and the durable "container uses image" record that keeps cleanup away from it. */
#include "images/store_internal.h"

#include "lib/cleanup.h"
#include "lib/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID_MAX 128

static bool valid_id (const char *id)
{
  size_t n = id ? strlen (id) : 0;
  if (n == 0 || n > ID_MAX || strcmp (id, ".") == 0 || strcmp (id, "..") == 0)
    return false;
  for (const char *p = id; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
          || *p == '_' || *p == '.' || *p == '-'))
      return false;
  return true;
}

int st_containers_using (struct img_store *s, const char *digest, unsigned *n, berr **err)
{
  _cleanup_close_ int dfd = openat (s->containers_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dfd >= 0 ? fdopendir (dfd) : NULL;
  if (d == NULL)
    return berr_sys (err, "read `%s`", ST_CONTAINERS);
  dfd = -1;
  *n = 0;
  struct dirent *e;
  while ((e = readdir (d)) != NULL)
    {
      char path[NAME_MAX + 96];
      if (e->d_name[0] == '.' || strlen (e->d_name) > ID_MAX)
        continue;
      snprintf (path, sizeof path, "%s/image-%s", e->d_name, st_hex (digest));
      if (faccessat (dirfd (d), path, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        (*n)++;
    }
  closedir (d);
  return 0;
}

/* The overlay's lower directories, top layer first, as "<root>/layers/<hex>/root" strings. */
static char **lower_dirs (struct img_store *s, char **layers, const char *extra)
{
  size_t n = 0;
  while (layers[n])
    n++;
  char **v = calloc (n + 2, sizeof *v);
  for (size_t i = 0; v && i < n; i++)
    if (asprintf (&v[i], "%s/%s/%s/root", s->root, ST_LAYERS, st_hex (layers[n - 1 - i])) < 0)
      v[i] = NULL;
  if (v && extra)
    v[n] = strdup (extra);
  return v;
}

static void free_strv (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

/* The classic mount(2) option string, or NULL when it does not fit in a page (the kernel's
 * limit for mount data) or a path has a character that the option syntax would misread. */
static char *classic_options (char **lowers, const char *upper, const char *work)
{
  size_t cap = (size_t)getpagesize (), len = 0;
  char *o = malloc (cap);
  if (o == NULL)
    return NULL;
  len += (size_t)snprintf (o, cap, "lowerdir=");
  for (size_t i = 0; lowers[i] && len < cap; i++)
    {
      if (strpbrk (lowers[i], ",:\\"))
        len = cap;
      else
        len += (size_t)snprintf (o + len, cap - len, "%s%s", i ? ":" : "", lowers[i]);
    }
  if (upper && len < cap)
    {
      if (strpbrk (upper, ",:\\") || strpbrk (work, ",:\\"))
        len = cap;
      else
        len += (size_t)snprintf (o + len, cap - len, ",upperdir=%s,workdir=%s", upper, work);
    }
  if (len >= cap - 1)
    {
      free (o);
      return NULL;
    }
  return o;
}

/* The new mount API has no option-length limit: each lower directory is its own "lowerdir+"
 * (Linux 6.8+), and paths need no escaping. */
static int mount_new_api (char **lowers, const char *upper, const char *work, const char *target,
                          bool ro, berr **err)
{
  _cleanup_close_ int fs = fsopen ("overlay", FSOPEN_CLOEXEC);
  if (fs < 0)
    return berr_sys (err, "fsopen overlay");
  for (size_t i = 0; lowers[i]; i++)
    if (fsconfig (fs, FSCONFIG_SET_STRING, "lowerdir+", lowers[i], 0) < 0)
      return berr_sys (err, "overlay lowerdir+ `%s`", lowers[i]);
  if (upper
      && (fsconfig (fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0
          || fsconfig (fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0))
    return berr_sys (err, "overlay upperdir `%s`", upper);
  if (fsconfig (fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return berr_sys (err, "create overlay");
  _cleanup_close_ int mnt = fsmount (fs, FSMOUNT_CLOEXEC, ro ? MOUNT_ATTR_RDONLY : 0);
  if (mnt < 0)
    return berr_sys (err, "fsmount overlay");
  if (move_mount (mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return berr_sys (err, "move overlay to `%s`", target);
  return 0;
}

static int mount_overlay (struct img_store *s, char **layers, const char *dir, bool ro, berr **err)
{
  _cleanup_free_ char *upper = NULL, *work = NULL, *target = NULL, *empty = NULL;
  if (asprintf (&target, "%s/merged", dir) < 0
      || (!ro && (asprintf (&upper, "%s/upper", dir) < 0 || asprintf (&work, "%s/work", dir) < 0))
      || (ro && layers[1] == NULL && asprintf (&empty, "%s/empty", dir) < 0))
    return berr_make (err, ENOMEM, "out of memory");
  /* Without an upper directory overlayfs wants two lower ones: a one-layer image read-only gets
   * an empty directory under its layer. */
  char **lowers = lower_dirs (s, layers, empty);
  if (lowers == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  char *opts = classic_options (lowers, upper, work);
  int r;
  if (opts == NULL)
    r = mount_new_api (lowers, upper, work, target, ro, err);
  else if (mount ("overlay", target, "overlay", ro ? MS_RDONLY : 0, opts) < 0)
    r = berr_sys (err, "mount overlay on `%s`", target);
  else
    r = 0;
  free (opts);
  free_strv (lowers);
  return r;
}

/* The in-use record is a name, containers/<id>/image-<hex>: an empty file, so it is pure
 * metadata and cannot be torn or left empty by a crash (a record with content could be, on
 * delayed allocation). It is created before the container's upper directory and mount, and a
 * journaling filesystem commits metadata operations in order, so whenever a root filesystem
 * exists after a crash its record does too (docs/images.md). With sync, fsync of both
 * directories also makes it durable before this returns. */
static int write_use_record (struct img_store *s, const char *id, const char *digest, bool sync,
                             berr **err)
{
  _cleanup_close_ int dfd = openat (s->containers_fd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return berr_sys (err, "open `%s/%s`", ST_CONTAINERS, id);
  char name[96];
  snprintf (name, sizeof name, "image-%s", st_hex (digest));
  _cleanup_close_ int fd
      = openat (dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 || (sync && (fsync (dfd) < 0 || fsync (s->containers_fd) < 0)))
    return berr_sys (err, "record `%s/%s/%s`", ST_CONTAINERS, id, name);
  return 0;
}

static int read_record (struct img_store *s, const char *digest, struct img_store_image **im,
                        berr **err)
{
  char path[96];
  snprintf (path, sizeof path, "%s/image.json", st_hex (digest));
  _cleanup_free_ char *buf = NULL;
  size_t len = 0;
  if (bfs_read_all (s->images_fd, path, 1 << 20, &buf, &len, err) < 0)
    return -1;
  return img_store_record_parse (buf, len, im, err);
}

/* Under the shared store lock (so cleanup, which takes it exclusively, sees either no image or
 * the record): resolves the image and records that container id uses it. */
static int record_use (struct img_store *s, const char *name, const char *id, bool sync,
                       struct img_store_image **im, berr **err)
{
  _cleanup_close_ int lk = st_store_lock (s, LOCK_SH, err);
  if (lk < 0)
    return -1;
  _cleanup_free_ char *digest = NULL;
  int r = st_resolve (s, name, &digest, err);
  if (r == 0)
    return berr_make (err, ENOENT, "image `%s` is not stored", name);
  if (r < 0 || read_record (s, digest, im, err) < 0)
    return -1;
  if (mkdirat (s->containers_fd, id, 0700) < 0)
    return berr_sys (err, "create `%s/%s`", ST_CONTAINERS, id);
  if (write_use_record (s, id, digest, sync, err) < 0)
    {
      bfs_remove_tree (s->containers_fd, id, NULL);
      return -1;
    }
  return 0;
}

static void touch_used (struct img_store *s, const char *digest)
{
  char path[96];
  snprintf (path, sizeof path, "%s/used", st_hex (digest));
  if (utimensat (s->images_fd, path, NULL, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
    {
      int fd = openat (s->images_fd, path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (fd >= 0)
        close (fd);
    }
}

static int make_dirs (int dfd, bool ro, bool one_layer, berr **err)
{
  const char *rw[] = { "merged", "upper", "work" }, *rdo[] = { "merged", "empty" };
  const char **names = ro ? rdo : rw;
  size_t n = ro ? (one_layer ? 2 : 1) : 3;
  for (size_t i = 0; i < n; i++)
    if (mkdirat (dfd, names[i], 0755) < 0)
      return berr_sys (err, "create `%s`", names[i]);
  return 0;
}

int img_rootfs_create (struct img_store *s, const char *name, const char *id,
                       const struct img_rootfs_opts *opts, char **path, berr **err)
{
  if (!valid_id (id))
    return berr_make (err, EINVAL, "container id `%.140s` is not valid", id ? id : "(null)");
  bool ro = opts && opts->read_only;
  struct img_store_image *im = NULL;
  if (record_use (s, name, id, opts && opts->sync, &im, err) < 0)
    return berr_wrap (err, "root filesystem for `%s`", id);
  _cleanup_free_ char *dir = NULL;
  _cleanup_close_ int dfd = openat (s->containers_fd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r = 0;
  if (dfd < 0)
    r = berr_sys (err, "open `%s/%s`", ST_CONTAINERS, id);
  else if (asprintf (&dir, "%s/%s/%s", s->root, ST_CONTAINERS, id) < 0)
    r = berr_make (err, ENOMEM, "out of memory");
  if (r == 0 && make_dirs (dfd, ro, im->layers[1] == NULL, err) == 0
      && mount_overlay (s, im->layers, dir, ro, err) == 0)
    {
      touch_used (s, im->digest);
      r = asprintf (path, "%s/merged", dir) < 0 ? berr_make (err, ENOMEM, "out of memory") : 0;
      if (r < 0)
        umount2 (dir, MNT_DETACH);
    }
  else
    r = -1;
  if (r < 0)
    {
      bfs_remove_tree (s->containers_fd, id, NULL);
      berr_wrap (err, "root filesystem for `%s`", id);
    }
  img_store_image_free (im);
  return r;
}

int img_rootfs_remove (struct img_store *s, const char *id, berr **err)
{
  if (!valid_id (id))
    return berr_make (err, EINVAL, "container id `%.140s` is not valid", id ? id : "(null)");
  _cleanup_free_ char *merged = NULL;
  if (asprintf (&merged, "%s/%s/%s/merged", s->root, ST_CONTAINERS, id) < 0)
    return berr_make (err, ENOMEM, "out of memory");
  if (umount2 (merged, UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
    {
      if (errno != EBUSY || umount2 (merged, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
        return berr_sys (err, "unmount `%s`", merged);
    }
  /* The record goes last, so a crash half way leaves the image marked in use (safe) rather than
   * an upper directory whose image may be gone. */
  char path[ID_MAX + 16];
  const char *parts[] = { "merged", "upper", "work", "empty" };
  for (size_t i = 0; i < 4; i++)
    {
      snprintf (path, sizeof path, "%s/%s", id, parts[i]);
      if (bfs_remove_tree (s->containers_fd, path, err) < 0)
        return berr_wrap (err, "remove root filesystem of `%s`", id);
    }
  if (bfs_remove_tree (s->containers_fd, id, err) < 0)
    return berr_wrap (err, "remove root filesystem of `%s`", id);
  return 0;
}
