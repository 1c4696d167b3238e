/* The container's filesystem view: every mount target is resolved inside the rootfs with
 * openat2(RESOLVE_IN_ROOT) and mounted through its fd, so a symlink planted in the image cannot
 * redirect a mount to the host. */
#include "runtime/internal.h"

#include "lib/cleanup.h"
#include "lib/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define FD_PATH_LEN 32

static void fd_path (int fd, char out[FD_PATH_LEN])
{
  snprintf (out, FD_PATH_LEN, "/proc/self/fd/%d", fd);
}

/* Creates (if needed) and opens the mount target: a directory, or a file for file binds. */
static int open_target (int rootfd, const char *dest, bool is_dir, berr **err)
{
  if (is_dir)
    {
      int fd = -1;
      if (bfs_mkdirs_in_root (rootfd, dest, 0755, &fd, err) < 0)
        return -1;
      return fd;
    }
  const char *slash = strrchr (dest, '/');
  if (slash && slash != dest)
    {
      _cleanup_free_ char *parent = strndup (dest, (size_t)(slash - dest));
      if (parent == NULL || bfs_mkdirs_in_root (rootfd, parent, 0755, NULL, err) < 0)
        return -1;
    }
  /* Create the file if it is missing; an existing one (of any type) is checked by the mount. */
  int created = bfs_open_in_root (rootfd, dest, O_RDONLY | O_CREAT | O_NOFOLLOW, 0644, NULL);
  if (created >= 0)
    close (created);
  return bfs_open_in_root (rootfd, dest, O_PATH, 0, err);
}

static unsigned long attr_bits (unsigned long flags)
{
  unsigned long a = 0;
  if (flags & MS_RDONLY)
    a |= MOUNT_ATTR_RDONLY;
  if (flags & MS_NOSUID)
    a |= MOUNT_ATTR_NOSUID;
  if (flags & MS_NODEV)
    a |= MOUNT_ATTR_NODEV;
  if (flags & MS_NOEXEC)
    a |= MOUNT_ATTR_NOEXEC;
  return a;
}

/* Sets mount attributes on the mount now visible at dest (re-resolved: the fd opened before
 * mounting still points below the new mount). */
static int set_attrs (int rootfd, const char *dest, unsigned long flags, unsigned long propagation,
                      berr **err)
{
  unsigned long a = attr_bits (flags);
  if (a == 0 && propagation == 0)
    return 0;
  _cleanup_close_ int fd = bfs_open_in_root (rootfd, dest, O_PATH, 0, err);
  if (fd < 0)
    return -1;
  struct mount_attr attr = { .attr_set = a, .propagation = propagation & ~MS_REC };
  unsigned int at = AT_EMPTY_PATH | ((flags | propagation) & MS_REC ? AT_RECURSIVE : 0);
  if (mount_setattr (fd, "", at, &attr, sizeof attr) < 0)
    return berr_sys (err, "set attributes on `%s`", dest);
  return 0;
}

static int bind_mount (int rootfd, const struct rt_mount *m, berr **err)
{
  struct stat st;
  if (m->source == NULL || stat (m->source, &st) < 0)
    return berr_sys (err, "bind source `%s`", m->source ? m->source : "(none)");
  _cleanup_close_ int target = open_target (rootfd, m->destination, S_ISDIR (st.st_mode), err);
  if (target < 0)
    return -1;
  char tp[FD_PATH_LEN];
  fd_path (target, tp);
  if (mount (m->source, tp, NULL, MS_BIND | (m->flags & MS_REC), NULL) < 0)
    return berr_sys (err, "bind `%s` on `%s`", m->source, m->destination);
  return set_attrs (rootfd, m->destination, m->flags, m->propagation, err);
}

static int fs_mount (int rootfd, const struct rt_mount *m, bool cgroup2, berr **err)
{
  const char *type = m->type;
  const char *data = m->data;
  unsigned long flags = m->flags & ~(MS_BIND | MS_REC);
  if (strcmp (type, "cgroup") == 0 || strcmp (type, "cgroup2") == 0)
    {
      /* On v1/hybrid hosts the container sees an empty read-only tree (docs/runtime.md). */
      type = cgroup2 ? "cgroup2" : "tmpfs";
      data = cgroup2 ? NULL : "mode=755,size=0k";
      flags |= MS_RDONLY;
    }
  _cleanup_close_ int target = open_target (rootfd, m->destination, true, err);
  if (target < 0)
    return -1;
  char tp[FD_PATH_LEN];
  fd_path (target, tp);
  const char *source = m->source && *m->source ? m->source : type;
  if (mount (source, tp, type, flags, data) < 0)
    return berr_sys (err, "mount %s on `%s`", type, m->destination);
  if (m->propagation)
    return set_attrs (rootfd, m->destination, 0, m->propagation, err);
  return 0;
}

static const struct
{
  const char *name;
  unsigned int major, minor;
} default_nodes[] = {
  { "null", 1, 3 },   { "zero", 1, 5 },    { "full", 1, 7 },
  { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};

static const struct
{
  const char *target, *name;
} default_links[] = {
  { "/proc/self/fd", "fd" },       { "/proc/self/fd/0", "stdin" }, { "/proc/self/fd/1", "stdout" },
  { "/proc/self/fd/2", "stderr" }, { "pts/ptmx", "ptmx" },
};

static int make_node (int rootfd, const char *path, char type, int64_t major, int64_t minor,
                      mode_t mode, uid_t uid, gid_t gid, berr **err)
{
  const char *slash = strrchr (path, '/');
  _cleanup_free_ char *parent = strndup (path, slash ? (size_t)(slash - path) : 0);
  _cleanup_close_ int dfd = -1;
  if (parent == NULL || bfs_mkdirs_in_root (rootfd, *parent ? parent : "/", 0755, &dfd, err) < 0)
    return -1;
  const char *name = slash ? slash + 1 : path;
  mode_t kind = type == 'b' ? S_IFBLK : S_IFCHR;
  if (mknodat (dfd, name, kind | (mode & 07777), makedev (major, minor)) < 0 && errno != EEXIST)
    return berr_sys (err, "mknod `%s`", path);
  if (fchownat (dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
    return berr_sys (err, "chown `%s`", path);
  return 0;
}

static int populate_dev (int rootfd, const struct rt_spec *spec, berr **err)
{
  char path[64];
  for (size_t i = 0; i < ARRAY_SIZE (default_nodes); i++)
    {
      snprintf (path, sizeof path, "/dev/%s", default_nodes[i].name);
      if (make_node (rootfd, path, 'c', default_nodes[i].major, default_nodes[i].minor, 0666, 0, 0,
                     err)
          < 0)
        return -1;
    }
  _cleanup_close_ int dev = bfs_open_in_root (rootfd, "/dev", O_PATH | O_DIRECTORY, 0, err);
  if (dev < 0)
    return -1;
  for (size_t i = 0; i < ARRAY_SIZE (default_links); i++)
    if (symlinkat (default_links[i].target, dev, default_links[i].name) < 0 && errno != EEXIST)
      return berr_sys (err, "symlink /dev/%s", default_links[i].name);
  for (size_t i = 0; i < spec->n_devices; i++)
    {
      const struct rt_device *d = &spec->devices[i];
      if (make_node (rootfd, d->path, d->type, d->major, d->minor, d->mode, d->uid, d->gid, err)
          < 0)
        return -1;
    }
  return 0;
}

static bool dev_is_fresh_tmpfs (const struct rt_spec *spec)
{
  for (size_t i = 0; i < spec->n_mounts; i++)
    if (strcmp (spec->mounts[i].destination, "/dev") == 0)
      return strcmp (spec->mounts[i].type, "tmpfs") == 0;
  return false;
}

int rt_setup_rootfs (const struct rt_spec *spec, bool cgroup2, berr **err)
{
  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return berr_sys (err, "make / private");
  if (mount (spec->rootfs, spec->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    return berr_sys (err, "bind the rootfs `%s`", spec->rootfs);
  _cleanup_close_ int rootfd = open (spec->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return berr_sys (err, "open the rootfs `%s`", spec->rootfs);
  for (size_t i = 0; i < spec->n_mounts; i++)
    {
      const struct rt_mount *m = &spec->mounts[i];
      bool bind = strcmp (m->type, "bind") == 0 || (m->flags & MS_BIND);
      if ((bind ? bind_mount (rootfd, m, err) : fs_mount (rootfd, m, cgroup2, err)) < 0)
        return -1;
    }
  if (dev_is_fresh_tmpfs (spec) && populate_dev (rootfd, spec, err) < 0)
    return -1;
  const char *cwd = spec->process.cwd ? spec->process.cwd : "/";
  if (bfs_mkdirs_in_root (rootfd, cwd, 0755, NULL, err) < 0)
    return berr_wrap (err, "working directory");
  if (fchdir (rootfd) < 0)
    return berr_sys (err, "chdir into the rootfs");
  if (syscall (SYS_pivot_root, ".", ".") < 0)
    return berr_sys (err, "pivot_root");
  /* The old root is now stacked under "."; detach it so nothing of the host stays reachable. */
  if (umount2 (".", MNT_DETACH) < 0)
    return berr_sys (err, "detach the old root");
  if (chdir ("/") < 0)
    return berr_sys (err, "chdir /");
  return 0;
}

/* Only sysctls that are namespaced may be set (anything else would change the host). */
static bool sysctl_is_namespaced (const char *key, bool own_netns)
{
  static const char *const ipc[]
      = { "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
          "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced" };
  for (size_t i = 0; i < ARRAY_SIZE (ipc); i++)
    if (strcmp (key, ipc[i]) == 0)
      return true;
  if (strncmp (key, "fs.mqueue.", 10) == 0)
    return true;
  return own_netns && strncmp (key, "net.", 4) == 0;
}

int rt_apply_sysctls (const struct rt_spec *spec, berr **err)
{
  bool own_netns = spec->ns[RT_NS_NET].enabled;
  for (size_t i = 0; i < spec->n_sysctls; i++)
    {
      const char *key = spec->sysctls[i].key;
      if (strstr (key, "..") || strchr (key, '/') || !sysctl_is_namespaced (key, own_netns))
        return berr_make (err, EINVAL, "sysctl `%s` is not allowed in a container", key);
      char path[512];
      int n = snprintf (path, sizeof path, "/proc/sys/%s", key);
      if (n < 0 || (size_t)n >= sizeof path)
        return berr_make (err, EINVAL, "sysctl `%s`: name too long", key);
      for (char *p = path + 10; *p; p++)
        if (*p == '.')
          *p = '/';
      if (bfs_write_file (AT_FDCWD, path, spec->sysctls[i].value, err) < 0)
        return berr_wrap (err, "sysctl `%s`", key);
    }
  return 0;
}

static int mask_path (int rootfd, const char *path, berr **err)
{
  _cleanup_close_ int fd = bfs_open_in_root (rootfd, path, O_PATH | O_NOFOLLOW, 0, NULL);
  if (fd < 0)
    return 0; /* nothing there to hide */
  struct stat st;
  if (fstat (fd, &st) < 0)
    return berr_sys (err, "stat `%s`", path);
  char tp[FD_PATH_LEN];
  fd_path (fd, tp);
  int r = S_ISDIR (st.st_mode) ? mount ("tmpfs", tp, "tmpfs", MS_RDONLY, "size=0k,nr_inodes=1")
                               : mount ("/dev/null", tp, NULL, MS_BIND, NULL);
  if (r < 0)
    return berr_sys (err, "mask `%s`", path);
  return 0;
}

static int readonly_path (int rootfd, const char *path, berr **err)
{
  _cleanup_close_ int fd = bfs_open_in_root (rootfd, path, O_PATH | O_NOFOLLOW, 0, NULL);
  if (fd < 0)
    return 0;
  char tp[FD_PATH_LEN];
  fd_path (fd, tp);
  if (mount (tp, tp, NULL, MS_BIND | MS_REC, NULL) < 0)
    return berr_sys (err, "bind `%s` read-only", path);
  return set_attrs (rootfd, path, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_REC, 0, err);
}

int rt_finish_rootfs (const struct rt_spec *spec, berr **err)
{
  _cleanup_close_ int rootfd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return berr_sys (err, "open /");
  for (size_t i = 0; spec->masked_paths && spec->masked_paths[i]; i++)
    if (mask_path (rootfd, spec->masked_paths[i], err) < 0)
      return -1;
  for (size_t i = 0; spec->readonly_paths && spec->readonly_paths[i]; i++)
    if (readonly_path (rootfd, spec->readonly_paths[i], err) < 0)
      return -1;
  if (spec->readonly_root)
    {
      struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
      if (mount_setattr (rootfd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
        return berr_sys (err, "make the root read-only");
    }
  return 0;
}
