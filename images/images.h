/* images: image references, registry manifests and configs, layer unpacking and the store
 * (prefix img_). This header is the component's whole public API. */
#ifndef BERTH_IMAGES_H
#define BERTH_IMAGES_H

#include "lib/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- References (images/ref.c) ------------------------------------------------------------ */

struct img_ref_defaults
{
  const char *registry;  /* default "registry-1.docker.io" */
  const char *namespace; /* default "library" (applied to one-component names on it) */
};

struct img_ref
{
  char *registry;   /* host[:port] */
  char *repository; /* path, e.g. "library/busybox" */
  char *tag;        /* NULL when only a digest is given; "latest" by default */
  char *digest;     /* "sha256:<64 hex>" or NULL */
};

/* Parses references as users write them: `busybox`, `busybox:1.36`,
 * `registry:5000/team/app@sha256:...`, `public.registry/library/nginx:latest`. d may be NULL. */
int img_ref_parse (const char *s, const struct img_ref_defaults *d, struct img_ref *out,
                   berr **err);
/* The canonical form (registry/repository[:tag][@digest]), newly allocated. */
char *img_ref_format (const struct img_ref *r);
void img_ref_clear (struct img_ref *r);

/* Checks "sha256:<64 lowercase hex>". */
bool img_digest_valid (const char *digest);

/* ---- Manifests, indexes, configs (images/manifest.c) -------------------------------------- */

struct img_descriptor
{
  char *media_type;
  char *digest;
  int64_t size;
  char *os, *architecture, *variant; /* platform, index entries only */
};

enum img_manifest_kind
{
  IMG_MANIFEST_IMAGE = 0, /* OCI image manifest or Docker schema 2 manifest */
  IMG_MANIFEST_INDEX,     /* OCI index or Docker manifest list */
};

struct img_manifest
{
  enum img_manifest_kind kind;
  char *media_type;
  struct img_descriptor config;      /* image manifests */
  struct img_descriptor *layers;     /* image manifests */
  size_t n_layers;
  struct img_descriptor *manifests;  /* indexes */
  size_t n_manifests;
};

/* Parses a manifest or index (untrusted: every field checked). content_type is the registry's
 * Content-Type (may be NULL: then mediaType in the body decides). */
int img_manifest_parse (const char *content_type, const char *body, size_t len,
                        struct img_manifest **out, berr **err);
/* Picks the entry for os/architecture[/variant] from an index. */
int img_index_select (const struct img_manifest *index, const char *os, const char *arch,
                      const char *variant, const struct img_descriptor **out, berr **err);
void img_manifest_free (struct img_manifest *m);

struct img_healthcheck
{
  char **test; /* ["CMD", ...] or ["CMD-SHELL", "..."] or ["NONE"] */
  int64_t interval_ns, timeout_ns, start_period_ns;
  int64_t retries;
};

struct img_config
{
  char *os, *architecture;
  char **entrypoint, **cmd, **env; /* NULL-terminated, may be NULL */
  char *working_dir, *user, *stop_signal;
  char **exposed_ports; /* "80/tcp" */
  struct img_healthcheck *healthcheck; /* NULL when the image has none */
  char **diff_ids;      /* rootfs.diff_ids, one per layer */
};

int img_config_parse (const char *body, size_t len, struct img_config **out, berr **err);
void img_config_free (struct img_config *c);

/* ---- Layer unpacking (images/unpack.c) ----------------------------------------------------- */

struct img_unpack_result
{
  char blob_digest[72]; /* sha256 of the bytes read (the compressed blob) */
  uint64_t blob_size;
  uint64_t files;
};

/* Unpacks a layer (tar, gzip or zstd) read from fd into dest_dir, which must be empty:
 * whiteouts become overlayfs whiteouts, ownership, modes, xattrs and hard links are kept, and
 * anything hostile (`..` or absolute paths, links escaping the layer, device nodes, oversized
 * headers) fails the whole layer with a clear error. Nothing is ever written outside dest_dir.
 * On failure dest_dir is left for the caller to remove (it is a staging directory). */
int img_layer_unpack (int fd, const char *dest_dir, struct img_unpack_result *res, berr **err);

#endif
