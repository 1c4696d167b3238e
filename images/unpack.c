/* Layer unpacking: a registry blob (tar, gzip or zstd) streamed through libarchive into a
 * staging directory, every write confined to it, whiteouts turned into overlayfs whiteouts. */
#include "images/images.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/log.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Generous limits against layers built to exhaust the disk or inode tables; a build may
 * override them with -D. */
#ifndef IMG_UNPACK_MAX_ENTRIES
#define IMG_UNPACK_MAX_ENTRIES 1000000ULL
#endif
#ifndef IMG_UNPACK_MAX_BYTES
#define IMG_UNPACK_MAX_BYTES (256ULL << 30)
#endif

#define WH_PREFIX ".wh."
#define WH_META_PREFIX ".wh..wh." /* aufs bookkeeping (.wh..wh.plnk...): skipped */
#define WH_OPAQUE ".wh..wh..opq"
#define READ_CHUNK (128 * 1024)

struct dir_time
{
  char *path;
  struct timespec times[2];
};

struct unpacker
{
  struct archive *ar;
  int src_fd;
  int root_fd; /* dest_dir, O_RDONLY: every lookup is resolved inside it */
  int read_errno;
  EVP_MD_CTX *md;
  uint64_t blob_size, entries, bytes;
  struct dir_time *dirs; /* directory mtimes, applied once nothing more is created inside */
  size_t n_dirs, cap_dirs;
  unsigned char buf[READ_CHUNK];
};

static void unpacker_free (struct unpacker *u)
{
  if (u == NULL)
    return;
  if (u->ar)
    archive_read_free (u->ar);
  if (u->root_fd >= 0)
    close (u->root_fd);
  EVP_MD_CTX_free (u->md);
  for (size_t i = 0; i < u->n_dirs; i++)
    free (u->dirs[i].path);
  free (u->dirs);
  free (u);
}

static void unpacker_freep (struct unpacker **u)
{
  unpacker_free (*u);
}

/* Reads the blob for libarchive, hashing every byte on the way, so the digest is that of the
 * bytes the registry sent, whatever the compression. */
static la_ssize_t blob_read (struct archive *a, void *data, const void **out)
{
  struct unpacker *u = data;
  ssize_t n;
  do
    n = read (u->src_fd, u->buf, sizeof u->buf);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    {
      u->read_errno = errno;
      archive_set_error (a, errno, "read layer blob: %s", strerror (errno));
      return -1;
    }
  if (n > 0 && EVP_DigestUpdate (u->md, u->buf, (size_t)n) != 1)
    {
      archive_set_error (a, EIO, "sha256 update failed");
      return -1;
    }
  u->blob_size += (uint64_t)n;
  *out = u->buf;
  return n;
}

/* Hashes what libarchive left unread after the end of the archive (tar padding, trailers). */
static int drain_blob (struct unpacker *u, berr **err)
{
  const void *unused;
  la_ssize_t n;
  while ((n = blob_read (u->ar, u, &unused)) > 0)
    ;
  if (n < 0)
    return u->read_errno ? berr_sysn (err, u->read_errno, "read layer blob")
                         : berr_make (err, EIO, "sha256 of the layer blob failed");
  return 0;
}

static int archive_fail (struct unpacker *u, const char *path, berr **err)
{
  const char *why = archive_error_string (u->ar);
  int errnum = u->read_errno ? u->read_errno : EINVAL;
  if (why == NULL)
    why = "unreadable archive";
  if (path)
    return berr_make (err, errnum, "layer entry `%s`: %s", path, why);
  return berr_make (err, errnum, "layer is not a valid tar stream: %s", why);
}

/* The entry name as a relative path with no empty, `.` or `..` components ("" is the layer
 * root). `..` and absolute names are refused, not rewritten: no tool that builds images writes
 * them, so a layer that has them was made to attack the host. Newly allocated. */
static int clean_path (const char *name, char **out, berr **err)
{
  if (name == NULL)
    return berr_make (err, EINVAL, "layer has an entry without a usable name");
  size_t len = strlen (name);
  if (len >= PATH_MAX)
    return berr_make (err, ENAMETOOLONG, "layer entry `%.100s...`: path longer than PATH_MAX",
                      name);
  if (name[0] == '/')
    return berr_make (err, EINVAL, "layer entry `%s`: absolute path", name);
  char *clean = malloc (len + 1);
  if (clean == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  size_t o = 0;
  for (const char *p = name; *p;)
    {
      size_t n = strcspn (p, "/");
      if (n == 2 && p[0] == '.' && p[1] == '.')
        {
          free (clean);
          return berr_make (err, EINVAL, "layer entry `%s`: path contains `..`", name);
        }
      if (n > NAME_MAX)
        {
          free (clean);
          return berr_make (err, ENAMETOOLONG, "layer entry `%s`: name too long", name);
        }
      if (n > 0 && !(n == 1 && p[0] == '.'))
        {
          if (o > 0)
            clean[o++] = '/';
          memcpy (clean + o, p, n);
          o += n;
        }
      p += n + (p[n] == '/');
    }
  clean[o] = '\0';
  *out = clean;
  return 0;
}

/* Splits a clean path into a newly allocated parent ("" for the root) and its last name. */
static int split_path (const char *path, char **parent, const char **name, berr **err)
{
  const char *slash = strrchr (path, '/');
  *parent = slash ? strndup (path, (size_t)(slash - path)) : strdup ("");
  *name = slash ? slash + 1 : path;
  if (*parent == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  return 0;
}

/* The parent directory of an entry, created like Docker does when the layer omits it, opened
 * (O_PATH) with every component resolved inside the root: a symlink planted by an earlier entry
 * can point anywhere, but RESOLVE_IN_ROOT reads it as the container would, inside dest_dir. */
static int open_parent (struct unpacker *u, const char *parent, const char *path, berr **err)
{
  int fd = -1;
  if (bfs_mkdirs_in_root (u->root_fd, parent, 0755, &fd, err) < 0)
    return berr_wrap (err, "layer entry `%s`: parent directory", path);
  return fd;
}

/* Removes whatever the layer put at name before, so the new entry replaces it (Docker's rule),
 * except a directory replaced by a directory, which is merged. Sets *kept then. */
static int clear_name (int pfd, const char *name, bool merge_dir, bool *kept, const char *path,
                       berr **err)
{
  struct stat st;
  if (kept)
    *kept = false;
  if (fstatat (pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : berr_sys (err, "layer entry `%s`: stat", path);
  if (merge_dir && S_ISDIR (st.st_mode))
    {
      *kept = true;
      return 0;
    }
  if (bfs_remove_tree (pfd, name, err) < 0)
    return berr_wrap (err, "layer entry `%s`: replace", path);
  return 0;
}

static int entry_owner (struct archive_entry *e, uid_t *uid, gid_t *gid, const char *path,
                        berr **err)
{
  la_int64_t u = archive_entry_uid (e), g = archive_entry_gid (e);
  /* (uid_t) -1 means "leave unchanged" to chown: not a real owner either. */
  if (u < 0 || g < 0 || u >= (la_int64_t)UINT32_MAX || g >= (la_int64_t)UINT32_MAX)
    return berr_make (err, EINVAL, "layer entry `%s`: invalid owner %lld:%lld", path, (long long)u,
                      (long long)g);
  *uid = (uid_t)u;
  *gid = (gid_t)g;
  return 0;
}

static void entry_times (struct archive_entry *e, struct timespec ts[2])
{
  ts[1].tv_sec = archive_entry_mtime (e);
  ts[1].tv_nsec = archive_entry_mtime_nsec (e);
  ts[0] = ts[1];
  if (archive_entry_atime_is_set (e))
    {
      ts[0].tv_sec = archive_entry_atime (e);
      ts[0].tv_nsec = archive_entry_atime_nsec (e);
    }
  if (ts[0].tv_nsec < 0 || ts[0].tv_nsec > 999999999)
    ts[0].tv_nsec = 0;
  if (ts[1].tv_nsec < 0 || ts[1].tv_nsec > 999999999)
    ts[1].tv_nsec = 0;
}

/* user.* and security.capability (file capabilities) are what images rely on. trusted.* is
 * refused because trusted.overlay.* would let a layer forge overlayfs metadata (redirects,
 * metacopy); security.selinux and ACLs belong to the host's policy, not the image's. */
static bool xattr_allowed (const char *name)
{
  return strncmp (name, "user.", 5) == 0 || strcmp (name, "security.capability") == 0;
}

/* Owner, then mode (chown clears set-id bits), then xattrs (chown drops
 * security.capability): the order matters. */
static int apply_meta_fd (int fd, struct archive_entry *e, const char *path, berr **err)
{
  uid_t uid;
  gid_t gid;
  if (entry_owner (e, &uid, &gid, path, err) < 0)
    return -1;
  if (fchown (fd, uid, gid) < 0)
    return berr_sys (err, "layer entry `%s`: chown", path);
  if (fchmod (fd, archive_entry_perm (e) & 07777) < 0)
    return berr_sys (err, "layer entry `%s`: chmod", path);
  const char *name;
  const void *value;
  size_t size;
  archive_entry_xattr_reset (e);
  while (archive_entry_xattr_next (e, &name, &value, &size) == ARCHIVE_OK)
    {
      if (name == NULL || !xattr_allowed (name))
        continue;
      if (fsetxattr (fd, name, value, size, 0) < 0)
        return berr_sys (err, "layer entry `%s`: set xattr `%s`", path, name);
    }
  return 0;
}

static int write_at (int fd, const char *buf, size_t len, off_t off)
{
  while (len > 0)
    {
      ssize_t n = pwrite (fd, buf, len, off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return -1;
      buf += n;
      len -= (size_t)n;
      off += n;
    }
  return 0;
}

/* Copies the entry's data blocks (sparse files come as blocks at offsets), then sets the
 * size so a trailing hole is kept. */
static int copy_data (struct unpacker *u, int fd, struct archive_entry *e, const char *path,
                      berr **err)
{
  la_int64_t size = archive_entry_size (e);
  if (size < 0 || (uint64_t)size > IMG_UNPACK_MAX_BYTES)
    return berr_make (err, EFBIG, "layer entry `%s`: size %lld over the limit", path,
                      (long long)size);
  for (;;)
    {
      const void *buf;
      size_t len;
      la_int64_t off;
      int r = archive_read_data_block (u->ar, &buf, &len, &off);
      if (r == ARCHIVE_EOF)
        break;
      if (r < ARCHIVE_WARN)
        return archive_fail (u, path, err);
      if (off < 0 || (uint64_t)off + len > (uint64_t)size || len > IMG_UNPACK_MAX_BYTES - u->bytes)
        return berr_make (err, EFBIG, "layer entry `%s`: data beyond its size or the limit", path);
      u->bytes += len;
      if (write_at (fd, buf, len, (off_t)off) < 0)
        return berr_sys (err, "layer entry `%s`: write", path);
    }
  if (ftruncate (fd, (off_t)size) < 0)
    return berr_sys (err, "layer entry `%s`: truncate", path);
  return 0;
}

static int unpack_file (struct unpacker *u, int pfd, const char *name, struct archive_entry *e,
                        const char *path, berr **err)
{
  if (clear_name (pfd, name, false, NULL, path, err) < 0)
    return -1;
  _cleanup_close_ int fd
      = openat (pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return berr_sys (err, "layer entry `%s`: create", path);
  if (copy_data (u, fd, e, path, err) < 0 || apply_meta_fd (fd, e, path, err) < 0)
    return -1;
  struct timespec ts[2];
  entry_times (e, ts);
  if (futimens (fd, ts) < 0)
    return berr_sys (err, "layer entry `%s`: set times", path);
  return 0;
}

static int remember_dir_time (struct unpacker *u, const char *path, struct archive_entry *e,
                              berr **err)
{
  if (u->n_dirs == u->cap_dirs)
    {
      size_t cap = u->cap_dirs ? u->cap_dirs * 2 : 64;
      struct dir_time *d = reallocarray (u->dirs, cap, sizeof *d);
      if (d == NULL)
        return berr_make (err, ENOMEM, "out of memory");
      u->dirs = d;
      u->cap_dirs = cap;
    }
  struct dir_time *d = &u->dirs[u->n_dirs];
  d->path = strdup (*path ? path : ".");
  if (d->path == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  entry_times (e, d->times);
  u->n_dirs++;
  return 0;
}

static int unpack_dir (struct unpacker *u, int pfd, const char *name, struct archive_entry *e,
                       const char *path, berr **err)
{
  bool kept;
  if (clear_name (pfd, name, true, &kept, path, err) < 0)
    return -1;
  if (!kept && mkdirat (pfd, name, 0700) < 0)
    return berr_sys (err, "layer entry `%s`: mkdir", path);
  _cleanup_close_ int fd = openat (pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return berr_sys (err, "layer entry `%s`: open directory", path);
  if (apply_meta_fd (fd, e, path, err) < 0)
    return -1;
  return remember_dir_time (u, path, e, err);
}

/* The link text is stored as is: a symlink may point anywhere, it is only never followed
 * outside the root while unpacking. Symlinks take no xattrs we keep (user.* is not allowed on
 * them by the kernel). */
static int unpack_symlink (int pfd, const char *name, struct archive_entry *e, const char *path,
                           berr **err)
{
  const char *target = archive_entry_symlink (e);
  uid_t uid;
  gid_t gid;
  if (target == NULL || *target == '\0')
    return berr_make (err, EINVAL, "layer entry `%s`: symlink without a target", path);
  if (entry_owner (e, &uid, &gid, path, err) < 0
      || clear_name (pfd, name, false, NULL, path, err) < 0)
    return -1;
  if (symlinkat (target, pfd, name) < 0)
    return berr_sys (err, "layer entry `%s`: symlink", path);
  if (fchownat (pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
    return berr_sys (err, "layer entry `%s`: chown", path);
  struct timespec ts[2];
  entry_times (e, ts);
  if (utimensat (pfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return berr_sys (err, "layer entry `%s`: set times", path);
  return 0;
}

/* A hard link must name an earlier, non-directory entry of this layer; its target is looked
 * up inside the root too, so it can never reach a host file such as /etc/passwd. */
static int unpack_hardlink (struct unpacker *u, int pfd, const char *name, struct archive_entry *e,
                            const char *path, berr **err)
{
  const char *raw = archive_entry_hardlink (e);
  _cleanup_free_ char *target = NULL, *tparent = NULL;
  const char *tname;
  if (clean_path (raw, &target, err) < 0)
    return berr_wrap (err, "layer entry `%s`: hard link target", path);
  if (*target == '\0' || strcmp (target, path) == 0)
    return berr_make (err, EINVAL, "layer entry `%s`: invalid hard link target `%s`", path, raw);
  if (split_path (target, &tparent, &tname, err) < 0)
    return -1;
  berr *ignored = NULL;
  _cleanup_close_ int tpfd
      = bfs_open_in_root (u->root_fd, *tparent ? tparent : ".", O_PATH | O_DIRECTORY, 0, &ignored);
  berr_free (&ignored);
  struct stat st;
  if (tpfd < 0 || fstatat (tpfd, tname, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return berr_make (err, ENOENT,
                      "layer entry `%s`: hard link target `%s` does not exist in the layer", path,
                      raw);
  if (S_ISDIR (st.st_mode))
    return berr_make (err, EPERM, "layer entry `%s`: hard link to directory `%s`", path, raw);
  if (clear_name (pfd, name, false, NULL, path, err) < 0)
    return -1;
  if (linkat (tpfd, tname, pfd, name, 0) < 0)
    return berr_sys (err, "layer entry `%s`: hard link to `%s`", path, raw);
  return 0;
}

/* `.wh.<name>` hides <name> of the layers below: overlayfs spells that as a 0/0 character
 * device (mknod needs CAP_MKNOD, i.e. root or, for 0/0 only, a user namespace). */
static int unpack_whiteout (int pfd, const char *name, const char *path, berr **err)
{
  if (*name == '\0' || strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    return berr_make (err, EINVAL, "layer entry `%s`: invalid whiteout", path);
  if (clear_name (pfd, name, false, NULL, path, err) < 0)
    return -1;
  if (mknodat (pfd, name, S_IFCHR | 0, makedev (0, 0)) < 0)
    return berr_sys (err, "layer entry `%s`: create overlay whiteout", path);
  return 0;
}

/* `.wh..wh..opq` makes its directory opaque: nothing of the layers below shows through. */
static int unpack_opaque (int pfd, const char *path, berr **err)
{
  _cleanup_close_ int fd = openat (pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return berr_sys (err, "layer entry `%s`: open directory", path);
  if (fsetxattr (fd, "trusted.overlay.opaque", "y", 1, 0) < 0)
    return berr_sys (err, "layer entry `%s`: mark directory opaque", path);
  return 0;
}

/* The layer root itself ("./"): only a directory makes sense, and it takes its metadata. */
static int unpack_root (struct unpacker *u, struct archive_entry *e, const char *raw, berr **err)
{
  if (archive_entry_filetype (e) != AE_IFDIR || archive_entry_hardlink (e))
    return berr_make (err, EINVAL, "layer entry `%s`: the layer root must be a directory", raw);
  if (apply_meta_fd (u->root_fd, e, raw, err) < 0)
    return -1;
  return remember_dir_time (u, "", e, err);
}

static int unpack_typed (struct unpacker *u, int pfd, const char *name, struct archive_entry *e,
                         const char *path, berr **err)
{
  if (archive_entry_hardlink (e))
    return unpack_hardlink (u, pfd, name, e, path, err);
  switch (archive_entry_filetype (e))
    {
    case AE_IFREG:
      return unpack_file (u, pfd, name, e, path, err);
    case AE_IFDIR:
      return unpack_dir (u, pfd, name, e, path, err);
    case AE_IFLNK:
      return unpack_symlink (pfd, name, e, path, err);
    case AE_IFCHR:
    case AE_IFBLK:
      return berr_make (err, EPERM, "layer contains a device node `%s`", path);
    case AE_IFIFO:
      return berr_make (err, EPERM, "layer contains a fifo `%s`", path);
    case AE_IFSOCK:
      return berr_make (err, EPERM, "layer contains a socket `%s`", path);
    default:
      return berr_make (err, EINVAL, "layer entry `%s`: unknown file type", path);
    }
}

static const char *entry_name (struct archive_entry *e)
{
  const char *name = archive_entry_pathname (e);
  return name ? name : archive_entry_pathname_utf8 (e);
}

static int unpack_entry (struct unpacker *u, struct archive_entry *e, berr **err)
{
  const char *raw = entry_name (e);
  _cleanup_free_ char *path = NULL, *parent = NULL;
  const char *name;
  if (++u->entries > IMG_UNPACK_MAX_ENTRIES)
    return berr_make (err, EFBIG, "layer has more than %llu entries",
                      (unsigned long long)IMG_UNPACK_MAX_ENTRIES);
  if (clean_path (raw, &path, err) < 0)
    return -1;
  if (*path == '\0')
    return unpack_root (u, e, raw, err);
  if (split_path (path, &parent, &name, err) < 0)
    return -1;
  /* aufs's own files (.wh..wh.plnk/..., .wh..wh.aufs) mean nothing to overlayfs. */
  if ((strncmp (name, WH_META_PREFIX, strlen (WH_META_PREFIX)) == 0
       || strncmp (path, WH_META_PREFIX, strlen (WH_META_PREFIX)) == 0)
      && strcmp (name, WH_OPAQUE) != 0)
    return 0;
  _cleanup_close_ int pfd = open_parent (u, parent, path, err);
  if (pfd < 0)
    return -1;
  if (strcmp (name, WH_OPAQUE) == 0)
    return unpack_opaque (pfd, path, err);
  if (strncmp (name, WH_PREFIX, strlen (WH_PREFIX)) == 0)
    return unpack_whiteout (pfd, name + strlen (WH_PREFIX), path, err);
  return unpack_typed (u, pfd, name, e, path, err);
}

/* Directory mtimes last, since creating entries inside changed them. A directory that a later
 * entry replaced is skipped. */
static void apply_dir_times (struct unpacker *u)
{
  for (size_t i = 0; i < u->n_dirs; i++)
    {
      berr *ignored = NULL;
      int fd = bfs_open_in_root (u->root_fd, u->dirs[i].path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
                                 0, &ignored);
      berr_free (&ignored);
      if (fd < 0)
        continue;
      if (futimens (fd, u->dirs[i].times) < 0)
        blog_debug ("set times of layer directory `%s`: %m", u->dirs[i].path);
      close (fd);
    }
}

static int unpacker_open (struct unpacker *u, int fd, const char *dest_dir, berr **err)
{
  u->src_fd = fd;
  u->root_fd = open (dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (u->root_fd < 0)
    return berr_sys (err, "open `%s`", dest_dir);
  u->md = EVP_MD_CTX_new ();
  if (u->md == NULL || EVP_DigestInit_ex (u->md, EVP_sha256 (), NULL) != 1)
    return berr_make (err, ENOMEM, "sha256 init failed");
  u->ar = archive_read_new ();
  if (u->ar == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  /* tar only (ustar, pax, GNU): no other format's parser is exposed to registry input. The
   * "none" filter is always on, so uncompressed layers are read too. */
  if (archive_read_support_format_tar (u->ar) != ARCHIVE_OK
      || archive_read_support_filter_gzip (u->ar) != ARCHIVE_OK
      || archive_read_support_filter_zstd (u->ar) != ARCHIVE_OK)
    return berr_make (err, ENOTSUP, "libarchive: %s", archive_error_string (u->ar));
  if (archive_read_open (u->ar, u, NULL, blob_read, NULL) != ARCHIVE_OK)
    return archive_fail (u, NULL, err);
  return 0;
}

static int unpack_all (struct unpacker *u, berr **err)
{
  for (;;)
    {
      struct archive_entry *e;
      int r = archive_read_next_header (u->ar, &e);
      if (r == ARCHIVE_EOF)
        break;
      if (r < ARCHIVE_WARN)
        return archive_fail (u, NULL, err);
      if (unpack_entry (u, e, err) < 0)
        return -1;
    }
  apply_dir_times (u);
  return drain_blob (u, err);
}

int img_layer_unpack (int fd, const char *dest_dir, struct img_unpack_result *res, berr **err)
{
  __attribute__ ((cleanup (unpacker_freep))) struct unpacker *u = calloc (1, sizeof *u);
  if (u == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  u->root_fd = -1;
  if (unpacker_open (u, fd, dest_dir, err) < 0 || unpack_all (u, err) < 0)
    return berr_wrap (err, "unpack layer into `%s`", dest_dir);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_DigestFinal_ex (u->md, md, &md_len) != 1 || md_len != 32)
    return berr_make (err, EIO, "unpack layer into `%s`: sha256 failed", dest_dir);
  char *p = res->blob_digest + sprintf (res->blob_digest, "sha256:");
  for (unsigned int i = 0; i < md_len; i++)
    p += sprintf (p, "%02x", md[i]);
  res->blob_size = u->blob_size;
  res->files = u->entries;
  return 0;
}
