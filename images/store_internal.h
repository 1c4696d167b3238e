/* Internals shared by the image store's files (store.c, rootfs.c, import.c, gc.c): the store's
 * on-disk layout and its locks. Not part of the component's API (that is images/images.h). */
#ifndef BERTH_IMAGES_STORE_INTERNAL_H
#define BERTH_IMAGES_STORE_INTERNAL_H

#include "images/images.h"

/* Directories under the store root (docs/images.md, "Store layout"). */
#define ST_LAYERS "layers"         /* <hex>/{layer.json,root/}: committed layers */
#define ST_IMAGES "images"         /* <hex>/{image.json,manifest.json,config.json,used} */
#define ST_REFS "refs"             /* <sha256 of ref>.json: {"ref","digest"} */
#define ST_LOCKS "locks"           /* <hex>.lock: per-layer flock files */
#define ST_STAGING "staging"       /* work in progress; removed at open when abandoned */
#define ST_CONTAINERS "containers" /* <id>/{image-<hex>,upper,work,merged}: root filesystems */
#define ST_STORE_LOCK "store.lock" /* shared by writers, exclusive for remove and GC */

struct img_store
{
  char *root;
  int root_fd; /* directory fds, all O_CLOEXEC */
  int layers_fd, images_fd, refs_fd, locks_fd, staging_fd, containers_fd;
};

/* "sha256:<hex>" -> "<hex>" (the digest must be valid; checked by the callers). */
static inline const char *st_hex (const char *digest)
{
  return digest + 7;
}

/* sha256 of buf as "sha256:<hex>". */
int st_sha256 (const void *buf, size_t len, char out[72], berr **err);

/* Opens and flocks store.lock (LOCK_SH or LOCK_EX); returns the fd to close to unlock. */
int st_store_lock (struct img_store *s, int how, berr **err);
/* Opens and flocks locks/<hex>.lock; with nonblock, returns -1 with errno EWOULDBLOCK in the
 * error when another holder has it. */
int st_layer_lock (struct img_store *s, const char *digest, bool nonblock, berr **err);

/* Work that is not a layer stage (image records, imports) is done under a shared lock on
 * locks/staging.lock, so open can tell abandoned work (no holder) from work in progress. */
int st_staging_lock (struct img_store *s, int how, berr **err);

/* A new directory staging/<prefix>-XXXXXX (absolute path, newly allocated). */
int st_stage_dir (struct img_store *s, const char *prefix, char **path, berr **err);

/* The canonical form of a reference (img_ref_format of its parse), newly allocated. */
int st_canonical_ref (const char *name, char **out, berr **err);

/* Resolves a name (a sha256 manifest digest or a reference) to the image's manifest digest.
 * Returns 1 and *digest (newly allocated) when the image exists, 0 when not. */
int st_resolve (struct img_store *s, const char *name, char **digest, berr **err);

/* Verifies and records an image (the sink's image_commit and the importer's way in); ref may be
 * NULL (recorded by digest only). */
int st_image_commit (struct img_store *s, const char *ref, const char *digest, const char *manifest,
                     size_t manifest_len, const char *config, size_t config_len, berr **err);

/* Counts containers whose root filesystem uses image digest (rootfs.c). */
int st_containers_using (struct img_store *s, const char *digest, unsigned *n, berr **err);

#endif
