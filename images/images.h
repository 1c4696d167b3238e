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
  struct img_descriptor config;  /* image manifests */
  struct img_descriptor *layers; /* image manifests */
  size_t n_layers;
  struct img_descriptor *manifests; /* indexes */
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
  char **exposed_ports;                /* "80/tcp" */
  struct img_healthcheck *healthcheck; /* NULL when the image has none */
  char **diff_ids;                     /* rootfs.diff_ids, one per layer */
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

/* ---- Registry client (images/registry.c) --------------------------------------------------- */

/* Client options; zero values take the defaults. */
struct img_registry_opts
{
  const char *ca_file;         /* extra CA bundle on top of the system store, may be NULL */
  const char *const *insecure; /* NULL-terminated hosts ("host[:port]") allowed over plain http */
  const char *docker_config;   /* docker-style config.json with "auths", may be NULL */
  long connect_timeout_s;      /* default 30 */
  long low_speed_time_s;       /* abort after this long below low_speed_limit B/s: default 60 */
  long low_speed_limit;        /* default 1 */
  int retries;                 /* extra attempts on 5xx and connection errors: default 3, <0 none */
  long backoff_ms;             /* first retry delay, doubled each time: default 250 */
};

struct img_registry;

int img_registry_new (const struct img_registry_opts *opts, struct img_registry **out, berr **err);
void img_registry_free (struct img_registry *r);
/* Explicit credentials for one registry (e.g. ECS repositoryCredentials); they win over the
 * docker config file. */
int img_registry_set_credentials (struct img_registry *r, const char *registry,
                                  const char *username, const char *password, berr **err);

struct img_fetched_manifest
{
  char *body;
  size_t len;
  char *content_type; /* as the registry sent it, may be NULL */
  char *digest;       /* sha256 of body (verified against the requested digest if any) */
  struct img_manifest *manifest;
};

/* Fetches the manifest named by reference (a tag or a digest) of ref's repository. */
int img_registry_get_manifest (struct img_registry *r, const struct img_ref *ref,
                               const char *reference, struct img_fetched_manifest *out, berr **err);
/* Fetches ref's manifest (by digest if it has one, else by tag) and resolves an index to the
 * image manifest for linux/<this architecture>. */
int img_registry_resolve (struct img_registry *r, const struct img_ref *ref,
                          struct img_fetched_manifest *out, berr **err);
void img_fetched_manifest_clear (struct img_fetched_manifest *m);
/* The architecture of this build in OCI terms ("amd64", "arm64"...). */
const char *img_host_arch (void);

/* Streams blob digest of ref's repository into fd, verifying its sha256; *size gets its
 * length (may be NULL). Retried with backoff while nothing was written to a non-seekable fd. */
int img_registry_get_blob (struct img_registry *r, const struct img_ref *ref, const char *digest,
                           int fd, uint64_t *size, berr **err);

/* A WWW-Authenticate challenge (exposed for the fuzz target). */
struct img_auth_challenge
{
  char *scheme; /* "Bearer", "Basic"... */
  char *realm, *service, *scope;
};

int img_auth_challenge_parse (const char *header, struct img_auth_challenge *out, berr **err);
void img_auth_challenge_clear (struct img_auth_challenge *c);
/* Looks up registry in a docker config.json's "auths" ("auth" base64 user:password, or
 * "username"/"password"). Returns 1 and fills user/password when found, 0 when not. */
int img_docker_config_lookup (const char *json, size_t len, const char *registry, char **user,
                              char **password, berr **err);

/* ---- Where pulls land (implemented by the store, used by images/pull.c) --------------------- */

/* The contract between the puller and the layer store. A layer is keyed by its compressed blob
 * digest. The puller asks whether a layer is present, stages it into a fresh directory (taking
 * a per-layer lock so that concurrent pulls of the same layer, in this process or another,
 * download it once), unpacks into that directory and commits it; commit makes it visible
 * atomically and durably (fsync, rename). A crash between stage and commit leaves nothing
 * visible. When every layer is present, image_commit records the image under its reference and
 * manifest digest. Functions return negative with *err on failure. The puller calls them from
 * several threads at once (one per layer being fetched). */
struct img_sink
{
  void *cls;
  /* 1 and *manifest_digest (newly allocated) when ref (as img_ref_format prints it) is stored,
   * 0 when not. */
  int (*image_lookup) (void *cls, const char *ref, char **manifest_digest, berr **err);
  /* 1 when the layer is present, 0 when not. */
  int (*layer_has) (void *cls, const char *blob_digest, berr **err);
  /* Takes the layer's lock (waiting for another puller holding it). Returns 1 when the layer
   * is present after all (*lock released, nothing to do), or 0 with *dir a new empty staging
   * directory (newly allocated path) and *lock to pass to commit or abort. */
  int (*layer_stage) (void *cls, const char *blob_digest, char **dir, void **lock, berr **err);
  /* Makes the staged directory the layer blob_digest; res describes what was unpacked.
   * Releases lock in every case. */
  int (*layer_commit) (void *cls, void *lock, const char *blob_digest, const char *dir,
                       const struct img_unpack_result *res, berr **err);
  /* Removes the staging directory and releases lock. */
  void (*layer_abort) (void *cls, void *lock, const char *dir);
  /* Records ref -> manifest_digest with the manifest and config documents (all layers must be
   * present); durable on return. */
  int (*image_commit) (void *cls, const char *ref, const char *manifest_digest,
                       const char *manifest, size_t manifest_len, const char *config,
                       size_t config_len, berr **err);
};

/* ---- Pulling (images/pull.c) --------------------------------------------------------------- */

/* ECS_IMAGE_PULL_BEHAVIOR (docs/images.md has the exact rules). */
enum img_pull_behavior
{
  IMG_PULL_DEFAULT = 0,   /* pull; if the pull fails, use the stored image when there is one */
  IMG_PULL_ALWAYS,        /* pull; a failed pull fails */
  IMG_PULL_ONCE,          /* use the stored image; pull only when there is none */
  IMG_PULL_PREFER_CACHED, /* the same rule here (every stored image came from Berth) */
};

/* "default", "always", "once", "prefer-cached"; anything else is an error naming the value. */
int img_pull_behavior_parse (const char *s, enum img_pull_behavior *out, berr **err);

/* Puller options; zero values take the defaults. */
struct img_puller_opts
{
  const struct img_ref_defaults *defaults; /* reference defaults, may be NULL */
  int max_parallel;                        /* layers fetched at once: default 3 */
  int layer_attempts;                      /* tries per layer (interrupted streams): default 3 */
};

/* A puller shares one registry client and one sink between concurrent pulls, and makes
 * concurrent pulls of the same reference in this process wait for one download. Thread-safe:
 * img_pull may run from several threads at once. */
struct img_puller;

int img_puller_new (struct img_registry *r, const struct img_sink *sink,
                    const struct img_puller_opts *opts, struct img_puller **out, berr **err);
/* No pull may be running. */
void img_puller_free (struct img_puller *p);

/* What one pull did. */
struct img_pull_opts
{
  enum img_pull_behavior behavior;
  /* ECS repositoryCredentials for the reference's registry, may be NULL: they are given to the
   * registry client (img_registry_set_credentials) before the pull. */
  const char *username, *password;
};

struct img_pull_result
{
  char *ref;             /* canonical reference (img_ref_format), the sink's key */
  char *manifest_digest; /* image manifest (for an index: the entry of this platform) */
  char *config_digest;   /* NULL when the stored image was used */
  char *config;          /* config JSON (verified), NULL when the stored image was used */
  size_t config_len;
  bool cached; /* the stored image was used, nothing was pulled */
  bool shared; /* another pull of the same reference in this process did the work */
  unsigned layers_fetched, layers_present;
  char *pull_error; /* IMG_PULL_DEFAULT fell back to the stored image: why, else NULL */
};

/* Pulls ref_string (parsed with the puller's defaults) into the sink according to opts
 * (NULL: default behaviour): resolves the manifest (an index to linux/<this arch>), fetches and
 * verifies the config, fetches the missing layers in parallel, each streamed from the registry
 * straight into img_layer_unpack in a staging directory and verified, commits each layer and
 * then the image. */
int img_pull (struct img_puller *p, const char *ref_string, const struct img_pull_opts *opts,
              struct img_pull_result *out, berr **err);
void img_pull_result_clear (struct img_pull_result *r);

/* ---- The image store (images/store.c) ------------------------------------------------------ */

/* A content-addressed store rooted at a directory (e.g. /var/lib/berth/images): layers stored
 * once by compressed blob digest and shared between images, images by reference and manifest
 * digest, root filesystems per container. Safe to use from several threads (each call opens
 * what it locks) and several processes at once. Layout and locking: docs/images.md. */
struct img_store;

/* Opens (creating if needed) the store at root and removes work a crashed process left in its
 * staging directory. */
int img_store_open (const char *root, struct img_store **out, berr **err);
void img_store_close (struct img_store *s);
/* Fills *out with the store's implementation of the puller's sink; out->cls is s. */
void img_store_sink (struct img_store *s, struct img_sink *out);

struct img_store_image
{
  char *digest;         /* manifest digest */
  char *config_digest;  /* the config blob's digest (the image ID) */
  char **refs;          /* references naming it (img_ref_format form), NULL-terminated */
  char **layers;        /* layer blob digests, bottom layer first, NULL-terminated */
  uint64_t size;        /* disk bytes of its layers (shared layers count in every image) */
  int64_t created_ns;   /* realtime when it was stored (pulled or imported) */
  int64_t last_used_ns; /* realtime of the last root filesystem made from it, else created */
  unsigned containers;  /* root filesystems that use it now */
};

/* name is a manifest digest (sha256:...) or a reference as users write it. Returns 1 and *out
 * (free with img_store_image_free) when stored, 0 when not. */
int img_store_lookup (struct img_store *s, const char *name, struct img_store_image **out,
                      berr **err);
/* Every stored image, newest first; *out is a newly allocated array of *n images. */
int img_store_list (struct img_store *s, struct img_store_image ***out, size_t *n, berr **err);
void img_store_image_free (struct img_store_image *im);
void img_store_images_free (struct img_store_image **v, size_t n);
/* Removes a reference (and the image when no reference is left) or, given a digest, the image
 * with all its references; then its layers that no other image uses. Fails with EBUSY when the
 * image would go while a container uses it, ENOENT when there is no such image. */
int img_store_remove (struct img_store *s, const char *name, berr **err);
/* The parsed image config (Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts, StopSignal,
 * Healthcheck) of a stored image, for the agent to merge with the task definition. */
int img_store_config (struct img_store *s, const char *name, struct img_config **out, berr **err);

/* Parses an image record (images/<hex>/image.json) into *out; refs, last_used_ns and
 * containers are left empty (they live elsewhere). Exposed for the fuzz target. */
int img_store_record_parse (const char *json, size_t len, struct img_store_image **out, berr **err);

/* ---- Root filesystems (images/rootfs.c) ---------------------------------------------------- */

struct img_rootfs_opts
{
  bool read_only; /* lower layers only, mounted read-only: no upper directory at all */
  bool sync;      /* fsync the in-use record before mounting (one journal commit: 0.4-8 ms on
                   * a busy disk); without it the record is ordered before the container's
                   * directories, which is enough for cleanup (docs/images.md) */
};

/* Mounts an overlay of image name's layers for container id (letters, digits, `_.-`, at most
 * 128) at a new directory whose path is returned in *path (newly allocated), with the
 * container's upper and work directories beside it. Records on disk, before mounting, that
 * the container uses the image, so no cleanup removes the image until img_rootfs_remove, even
 * across restarts. EEXIST when id already has a root filesystem. */
int img_rootfs_create (struct img_store *s, const char *name, const char *id,
                       const struct img_rootfs_opts *opts, char **path, berr **err);
/* Unmounts and removes container id's root filesystem (upper directory included) and its use of
 * the image. A missing one is not an error. */
int img_rootfs_remove (struct img_store *s, const char *id, berr **err);

/* ---- Import from tarballs (images/import.c) ------------------------------------------------ */

struct img_import_result
{
  char **digests; /* manifest digests of the imported images, NULL-terminated */
  char **refs;    /* references recorded, NULL-terminated */
};

/* Imports every image of a `docker save` archive (manifest.json, layer tars, uncompressed or
 * gzip/zstd) or an OCI image layout tarball (oci-layout, index.json, blobs/sha256/...) read from
 * fd, verifying every digest, through the same stage/commit path as pulls. Images are recorded
 * under the names the archive gives (RepoTags; org.opencontainers.image.ref.name: a full
 * reference as is, a bare tag such as `v1` on the repository of ref, else of the entry's
 * io.containerd.image.name, else not at all) and, when ref is not NULL, the first image also
 * under ref. */
int img_store_import (struct img_store *s, int fd, const char *ref, struct img_import_result *res,
                      berr **err);
void img_import_result_clear (struct img_import_result *res);

/* One image of a docker-archive manifest.json. */
struct img_archive_image
{
  char *config;     /* member name of the config */
  char **repo_tags; /* NULL-terminated, may be empty */
  char **layers;    /* member names of the layer tars, bottom first */
};

/* Parses a docker-archive manifest.json (untrusted): *out is a newly allocated array of *n. */
int img_docker_archive_parse (const char *json, size_t len, struct img_archive_image **out,
                              size_t *n, berr **err);
void img_archive_images_free (struct img_archive_image *v, size_t n);

/* One manifest of an OCI layout's index.json: its descriptor and ref.name annotation. */
struct img_layout_entry
{
  struct img_descriptor desc;
  char *ref_name;   /* org.opencontainers.image.ref.name, may be NULL */
  char *image_name; /* io.containerd.image.name (containerd and docker exports), may be NULL */
};

/* Parses an OCI layout's oci-layout file (imageLayoutVersion must be 1.x). */
int img_oci_layout_check (const char *json, size_t len, berr **err);
/* Parses an OCI layout's index.json (untrusted) into *n entries. */
int img_oci_index_parse (const char *json, size_t len, struct img_layout_entry **out, size_t *n,
                         berr **err);
void img_layout_entries_free (struct img_layout_entry *v, size_t n);

/* ---- Cleanup (images/gc.c) ----------------------------------------------------------------- */

/* Disk usage of the filesystem holding path (bytes). */
typedef int (*img_disk_usage_fn) (void *cls, const char *path, uint64_t *used, uint64_t *total,
                                  berr **err);

/* One cleanup cycle's parameters; the agent fills them from its config and calls img_store_gc
 * every ECS_IMAGE_CLEANUP_INTERVAL. Zero fields take the defaults. */
struct img_gc_params
{
  unsigned high_pct;            /* start deleting at this disk usage: default 85 */
  unsigned low_pct;             /* ... and stop at this one: default 80 */
  int64_t min_age_s;            /* ECS_IMAGE_MINIMUM_CLEANUP_AGE: default 3600; <0 for 0 */
  unsigned max_delete;          /* ECS_NUM_IMAGES_DELETE_PER_CYCLE for the age pass: default 5 */
  bool disk_only;               /* skip the age pass (only the watermarks) */
  int64_t grace_s;              /* images and unreferenced layers stored less than this ago stay,
                                 * whatever the disk (a pull's container is about to use them):
                                 * default 600; <0 for 0 */
  int64_t now_ns;               /* realtime "now": default the clock (tests set it) */
  img_disk_usage_fn disk_usage; /* default statvfs of the store root */
  void *disk_usage_cls;
};

struct img_gc_result
{
  unsigned images_removed, layers_removed;
  uint64_t used_before, used_after, total; /* bytes, from disk_usage */
};

/* statvfs-based usage (the default disk_usage). */
int img_disk_usage_statvfs (void *cls, const char *path, uint64_t *used, uint64_t *total,
                            berr **err);
/* One cleanup cycle, least-recently-used first, never an image a container uses: the age pass
 * removes up to max_delete images stored and last used more than min_age_s ago; then, while
 * disk usage is at or above high_pct, images are removed until it is below low_pct. Layers no
 * image references are removed. */
int img_store_gc (struct img_store *s, const struct img_gc_params *p, struct img_gc_result *res,
                  berr **err);

#endif
