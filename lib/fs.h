/* Safe file helpers: durable atomic replace, bounded reads, lookups confined to a root. */
#ifndef BERTH_LIB_FS_H
#define BERTH_LIB_FS_H

#include "lib/error.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Replaces dirfd/name with buf atomically and durably: write a temporary file in the same
 * directory, fsync it, rename it over name, fsync the directory. A crash leaves either the old
 * or the new content, never a torn file. name may contain directories that already exist. */
int bfs_write_atomic (int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
                      berr **err);

/* Atomic like bfs_write_atomic but without fsync: for state that lives on volatile storage
 * (/run) and dies with the boot anyway, where readers need all-or-nothing, not durability. */
int bfs_write_atomic_volatile (int dirfd, const char *name, const void *buf, size_t len,
                               mode_t mode, berr **err);

/* Reads a whole file (at most max bytes, else EFBIG) into a newly allocated NUL-terminated
 * buffer the caller frees. len may be NULL. */
int bfs_read_all (int dirfd, const char *path, size_t max, char **out, size_t *len, berr **err);

/* Like bfs_read_all on an open descriptor; name is only for messages. */
int bfs_read_fd (int fd, const char *name, size_t max, char **out, size_t *len, berr **err);

/* Writes a short string to an existing file (cgroup, proc and sysfs knobs). */
int bfs_write_file (int dirfd, const char *path, const char *s, berr **err);

/* Opens path with every component resolved inside rootfd, as if rootfd were `/`: `..` and
 * absolute symlinks cannot leave it, magic links are refused. Returns a new O_CLOEXEC fd. */
int bfs_open_in_root (int rootfd, const char *path, int flags, mode_t mode, berr **err);

/* mkdir -p confined to rootfd; returns an O_PATH fd to the final directory (or 0 if out_fd is
 * NULL). Existing symlinks are followed only inside the root. */
int bfs_mkdirs_in_root (int rootfd, const char *path, mode_t mode, int *out_fd, berr **err);

/* mkdir -p on the host. */
int bfs_mkdirs (const char *path, mode_t mode, berr **err);

/* rm -rf dirfd/path without following symlinks and without crossing into other mounts.
 * A missing path is not an error. */
int bfs_remove_tree (int dirfd, const char *path, berr **err);

/* Parses a non-negative decimal integer that fills the whole string (trailing newline allowed). */
int bfs_parse_u64 (const char *s, uint64_t *out);

#endif
