/* The content-addressed image store: layers by blob digest, images by manifest digest and
 * reference, staged then made visible with fsync and rename, per-layer flocks (docs/images.md). */
#include "images/store_internal.h"

#include "lib/cleanup.h"
#include "lib/clock.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/strv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECORD_MAX (1 << 20)   /* image.json, layer.json, ref files */
#define DOCUMENT_MAX (4 << 20) /* manifests and configs, as the registry client caps them */

static int oom (berr **err)
{
  return berr_make (err, ENOMEM, "out of memory");
}

int st_sha256 (const void *buf, size_t len, char out[72], berr **err)
{
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest (buf, len, d, &n, EVP_sha256 (), NULL) != 1 || n != 32)
    return berr_make (err, EIO, "sha256 failed");
  memcpy (out, "sha256:", 7);
  for (unsigned i = 0; i < 32; i++)
    snprintf (out + 7 + 2 * i, 3, "%02x", d[i]);
  return 0;
}

static int flock_retry (int fd, int how)
{
  int r;
  do
    r = flock (fd, how);
  while (r < 0 && errno == EINTR);
  return r;
}

static int lock_file (int dirfd, const char *name, int how, berr **err)
{
  _cleanup_close_ int fd = openat (dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return berr_sys (err, "open lock `%s`", name);
  if (flock_retry (fd, how) < 0)
    return berr_sys (err, "lock `%s`", name);
  return steal_fd (&fd);
}

int st_store_lock (struct img_store *s, int how, berr **err)
{
  return lock_file (s->root_fd, ST_STORE_LOCK, how, err);
}

int st_layer_lock (struct img_store *s, const char *digest, bool nonblock, berr **err)
{
  char name[80];
  snprintf (name, sizeof name, "%s.lock", st_hex (digest));
  return lock_file (s->locks_fd, name, LOCK_EX | (nonblock ? LOCK_NB : 0), err);
}

int st_staging_lock (struct img_store *s, int how, berr **err)
{
  return lock_file (s->locks_fd, "staging.lock", how, err);
}

static int open_subdir (int dirfd, const char *name, berr **err)
{
  if (mkdirat (dirfd, name, 0700) < 0 && errno != EEXIST)
    return berr_sys (err, "create `%s`", name);
  int fd = openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return berr_sys (err, "open `%s`", name);
  return fd;
}

/* A layer stage is "<hex>-XXXXXX" (also used to delete a layer): it is abandoned when nobody
 * holds that layer's lock. */
static bool is_layer_stage (const char *name, char digest[72])
{
  const char *dash = strchr (name, '-');
  if (dash == NULL || dash - name != 64)
    return false;
  snprintf (digest, 72, "sha256:%.64s", name);
  return img_digest_valid (digest);
}

static void remove_stage_entry (struct img_store *s, const char *name)
{
  _cleanup_berr_ berr *err = NULL;
  if (bfs_remove_tree (s->staging_fd, name, &err) < 0)
    blog_berr (&err);
}

/* Removes what crashed processes left in staging/, leaving work other processes still hold. */
static int clean_staging (struct img_store *s, berr **err)
{
  _cleanup_close_ int dfd = openat (s->staging_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dfd >= 0 ? fdopendir (dfd) : NULL;
  if (d == NULL)
    return berr_sys (err, "read `%s`", ST_STAGING);
  dfd = -1;
  int others = -2; /* the staging lock, taken on first need; -1 when someone holds it */
  struct dirent *e;
  while ((e = readdir (d)) != NULL)
    {
      char digest[72];
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      if (is_layer_stage (e->d_name, digest))
        {
          _cleanup_berr_ berr *lerr = NULL;
          _cleanup_close_ int lk = st_layer_lock (s, digest, true, &lerr);
          if (lk >= 0)
            remove_stage_entry (s, e->d_name);
          continue;
        }
      if (others == -2)
        {
          _cleanup_berr_ berr *lerr = NULL;
          others = st_staging_lock (s, LOCK_EX | LOCK_NB, &lerr);
        }
      if (others >= 0)
        remove_stage_entry (s, e->d_name);
    }
  closedir (d);
  if (others >= 0)
    close (others);
  return 0;
}

int img_store_open (const char *root, struct img_store **out, berr **err)
{
  struct img_store *s = calloc (1, sizeof *s);
  if (s == NULL || (s->root = strdup (root)) == NULL)
    {
      free (s);
      return oom (err);
    }
  s->root_fd = s->layers_fd = s->images_fd = s->refs_fd = s->locks_fd = s->staging_fd
      = s->containers_fd = -1;
  if (bfs_mkdirs (root, 0700, err) < 0)
    goto fail;
  s->root_fd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->root_fd < 0)
    {
      berr_sys (err, "open `%s`", root);
      goto fail;
    }
  if ((s->layers_fd = open_subdir (s->root_fd, ST_LAYERS, err)) < 0
      || (s->images_fd = open_subdir (s->root_fd, ST_IMAGES, err)) < 0
      || (s->refs_fd = open_subdir (s->root_fd, ST_REFS, err)) < 0
      || (s->locks_fd = open_subdir (s->root_fd, ST_LOCKS, err)) < 0
      || (s->staging_fd = open_subdir (s->root_fd, ST_STAGING, err)) < 0
      || (s->containers_fd = open_subdir (s->root_fd, ST_CONTAINERS, err)) < 0
      || clean_staging (s, err) < 0)
    goto fail;
  *out = s;
  return 0;
fail:
  img_store_close (s);
  return berr_wrap (err, "image store `%s`", root);
}

void img_store_close (struct img_store *s)
{
  if (s == NULL)
    return;
  int fds[] = { s->root_fd,  s->layers_fd,  s->images_fd,    s->refs_fd,
                s->locks_fd, s->staging_fd, s->containers_fd };
  for (size_t i = 0; i < ARRAY_SIZE (fds); i++)
    if (fds[i] >= 0)
      close (fds[i]);
  free (s->root);
  free (s);
}

/* ---- Layers ---------------------------------------------------------------------------------- */

struct layer_lock
{
  int fd;
  char *stage; /* staging/<hex>-XXXXXX, relative to the store root */
};

static void layer_lock_release (struct layer_lock *lk)
{
  if (lk == NULL)
    return;
  if (lk->fd >= 0)
    close (lk->fd);
  free (lk->stage);
  free (lk);
}

static int check_digest (const char *digest, berr **err)
{
  if (digest == NULL || !img_digest_valid (digest))
    return berr_make (err, EINVAL, "`%.80s` is not a sha256 digest", digest ? digest : "(null)");
  return 0;
}

static int layer_present (struct img_store *s, const char *digest)
{
  char path[96];
  snprintf (path, sizeof path, "%s/layer.json", st_hex (digest));
  return faccessat (s->layers_fd, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static int sink_layer_has (void *cls, const char *digest, berr **err)
{
  if (check_digest (digest, err) < 0)
    return -1;
  return layer_present (cls, digest);
}

int st_stage_dir (struct img_store *s, const char *prefix, char **path, berr **err)
{
  _cleanup_free_ char *p = NULL;
  if (asprintf (&p, "%s/%s/%s-XXXXXX", s->root, ST_STAGING, prefix) < 0)
    return berr_make (err, ENOMEM, "out of memory");
  if (mkdtemp (p) == NULL)
    return berr_sys (err, "create a directory in `%s/%s`", s->root, ST_STAGING);
  *path = steal_ptr (&p);
  return 0;
}

/* staging/<hex>-XXXXXX (*stage) with an empty root/ in it (*dir), both newly allocated. */
static int make_stage (struct img_store *s, const char *digest, char **stage, char **dir,
                       berr **err)
{
  _cleanup_free_ char *full = NULL, *root = NULL;
  if (st_stage_dir (s, st_hex (digest), &full, err) < 0)
    return -1;
  if (asprintf (&root, "%s/root", full) < 0 || mkdir (root, 0755) < 0)
    {
      berr_sys (err, "create `%s/root`", full);
      bfs_remove_tree (AT_FDCWD, full, NULL);
      return -1;
    }
  *stage = steal_ptr (&full);
  *dir = steal_ptr (&root);
  return 0;
}

static int sink_layer_stage (void *cls, const char *digest, char **dir, void **lock, berr **err)
{
  struct img_store *s = cls;
  if (check_digest (digest, err) < 0)
    return -1;
  struct layer_lock *lk = calloc (1, sizeof *lk);
  if (lk == NULL)
    return oom (err);
  lk->fd = st_layer_lock (s, digest, false, err);
  if (lk->fd < 0)
    {
      layer_lock_release (lk);
      return berr_wrap (err, "layer %s", digest);
    }
  if (layer_present (s, digest))
    {
      layer_lock_release (lk);
      return 1;
    }
  if (make_stage (s, digest, &lk->stage, dir, err) < 0)
    {
      layer_lock_release (lk);
      return berr_wrap (err, "layer %s", digest);
    }
  *lock = lk;
  return 0;
}

/* Disk bytes (allocated blocks) of a tree, without following symlinks or leaving the mount. */
static int tree_bytes (int dir, uint64_t *total, int depth)
{
  _cleanup_close_ int fd = openat (dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  if (d == NULL)
    return -1;
  fd = -1;
  struct dirent *e;
  int r = 0;
  while (r == 0 && (e = readdir (d)) != NULL)
    {
      struct stat st;
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      if (fstatat (dirfd (d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        continue;
      *total += (uint64_t)st.st_blocks * 512;
      if (S_ISDIR (st.st_mode) && depth < 256)
        {
          _cleanup_close_ int sub
              = openat (dirfd (d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub >= 0)
            r = tree_bytes (sub, total, depth + 1);
        }
    }
  closedir (d);
  return r;
}

static int write_layer_record (int stage_fd, const char *digest,
                               const struct img_unpack_result *res, uint64_t bytes, berr **err)
{
  _cleanup_free_ char *json = NULL;
  char now[BCLOCK_RFC3339_LEN];
  bclock_rfc3339 (bclock_real_ns (), now);
  if (asprintf (&json,
                "{\"digest\":\"%s\",\"blob_size\":%llu,\"files\":%llu,\"disk_bytes\":%llu,"
                "\"committed\":\"%s\"}",
                digest, (unsigned long long)res->blob_size, (unsigned long long)res->files,
                (unsigned long long)bytes, now)
      < 0)
    return oom (err);
  return bfs_write_atomic (stage_fd, "layer.json", json, strlen (json), 0644, err);
}

static int commit_staged_layer (struct img_store *s, struct layer_lock *lk, const char *digest,
                                const struct img_unpack_result *res, berr **err)
{
  if (res == NULL || strcmp (res->blob_digest, digest) != 0)
    return berr_make (err, EBADMSG, "digest mismatch: expected %s, got %s", digest,
                      res ? res->blob_digest : "nothing");
  _cleanup_close_ int stage_fd
      = openat (s->root_fd, lk->stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (stage_fd < 0)
    return berr_sys (err, "open `%s`", lk->stage);
  uint64_t bytes = 0;
  _cleanup_close_ int tree = openat (stage_fd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tree < 0 || tree_bytes (tree, &bytes, 0) < 0)
    return berr_sys (err, "measure `%s`", lk->stage);
  /* Everything the puller wrote must be on disk before the rename makes it visible: one
   * syncfs flushes the whole tree (cheaper than an fsync per file, same guarantee). */
  if (syncfs (stage_fd) < 0)
    return berr_sys (err, "sync `%s`", lk->stage);
  if (write_layer_record (stage_fd, digest, res, bytes, err) < 0)
    return -1;
  if (renameat (s->root_fd, lk->stage, s->layers_fd, st_hex (digest)) < 0)
    return berr_sys (err, "rename `%s` into `%s`", lk->stage, ST_LAYERS);
  if (fsync (s->layers_fd) < 0)
    return berr_sys (err, "sync `%s`", ST_LAYERS);
  return 0;
}

static int sink_layer_commit (void *cls, void *lock, const char *digest, const char *dir,
                              const struct img_unpack_result *res, berr **err)
{
  struct img_store *s = cls;
  struct layer_lock *lk = lock;
  int r = commit_staged_layer (s, lk, digest, res, err);
  if (r < 0)
    {
      bfs_remove_tree (s->root_fd, lk->stage, NULL);
      berr_wrap (err, "commit layer %s", digest);
    }
  layer_lock_release (lk);
  return r;
}

static void sink_layer_abort (void *cls, void *lock, const char *dir)
{
  struct img_store *s = cls;
  struct layer_lock *lk = lock;
  if (lk == NULL)
    return;
  _cleanup_berr_ berr *err = NULL;
  if (lk->stage && bfs_remove_tree (s->root_fd, lk->stage, &err) < 0)
    blog_berr (&err);
  layer_lock_release (lk);
}

/* ---- References ------------------------------------------------------------------------------ */

int st_canonical_ref (const char *name, char **out, berr **err)
{
  struct img_ref r = { 0 };
  if (img_ref_parse (name, NULL, &r, err) < 0)
    return -1;
  *out = img_ref_format (&r);
  img_ref_clear (&r);
  return *out ? 0 : oom (err);
}

static int ref_file_name (const char *ref, char name[80], berr **err)
{
  char d[72];
  if (st_sha256 (ref, strlen (ref), d, err) < 0)
    return -1;
  snprintf (name, 80, "%s.json", st_hex (d));
  return 0;
}

/* Reads refs/<name>: 1 with *ref and *digest (either may be NULL), 0 when missing. */
static int read_ref_file (struct img_store *s, const char *name, char **ref, char **digest,
                          berr **err)
{
  _cleanup_json_ cJSON *j = NULL;
  _cleanup_berr_ berr *rerr = NULL;
  if (bjson_read_file (s->refs_fd, name, RECORD_MAX, &j, &rerr) < 0)
    {
      if (berr_errno (rerr) == ENOENT)
        return 0;
      *err = steal_ptr (&rerr);
      return berr_wrap (err, "reference record `%s`", name);
    }
  const char *r = NULL, *d = NULL;
  if (bjson_get_str (j, "ref", true, &r, err) < 0 || bjson_get_str (j, "digest", true, &d, err) < 0
      || check_digest (d, err) < 0)
    return berr_wrap (err, "reference record `%s`", name);
  if ((ref && (*ref = strdup (r)) == NULL) || (digest && (*digest = strdup (d)) == NULL))
    return oom (err);
  return 1;
}

static bool image_present (struct img_store *s, const char *digest)
{
  char path[96];
  snprintf (path, sizeof path, "%s/image.json", st_hex (digest));
  return faccessat (s->images_fd, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int st_resolve (struct img_store *s, const char *name, char **digest, berr **err)
{
  if (strncmp (name, "sha256:", 7) == 0)
    {
      if (check_digest (name, err) < 0)
        return -1;
      if (!image_present (s, name))
        return 0;
      return (*digest = strdup (name)) ? 1 : oom (err);
    }
  _cleanup_free_ char *ref = NULL;
  char file[80];
  if (st_canonical_ref (name, &ref, err) < 0 || ref_file_name (ref, file, err) < 0)
    return -1;
  _cleanup_free_ char *d = NULL;
  int r = read_ref_file (s, file, NULL, &d, err);
  if (r <= 0)
    return r;
  if (!image_present (s, d))
    return 0;
  *digest = steal_ptr (&d);
  return 1;
}

static int sink_image_lookup (void *cls, const char *ref, char **manifest_digest, berr **err)
{
  return st_resolve (cls, ref, manifest_digest, err);
}

static int write_ref (struct img_store *s, const char *ref, const char *digest, berr **err)
{
  char file[80];
  if (ref_file_name (ref, file, err) < 0)
    return -1;
  _cleanup_json_ cJSON *j = cJSON_CreateObject ();
  if (j == NULL || !cJSON_AddStringToObject (j, "ref", ref)
      || !cJSON_AddStringToObject (j, "digest", digest))
    return oom (err);
  return bjson_write_file (s->refs_fd, file, j, 0644, err);
}

/* ---- Image records --------------------------------------------------------------------------- */

void img_store_image_free (struct img_store_image *im)
{
  if (im == NULL)
    return;
  free (im->digest);
  free (im->config_digest);
  strv_free (im->refs);
  strv_free (im->layers);
  free (im);
}

void img_store_images_free (struct img_store_image **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    img_store_image_free (v[i]);
  free (v);
}

static int record_from_json (const cJSON *j, struct img_store_image *im, berr **err)
{
  const char *d = NULL, *c = NULL, *when = NULL;
  int64_t size = 0, created = 0;
  if (bjson_get_str (j, "digest", true, &d, err) < 0 || check_digest (d, err) < 0
      || bjson_get_str (j, "config_digest", true, &c, err) < 0 || check_digest (c, err) < 0
      || bjson_get_int (j, "size", true, 0, INT64_MAX, &size, err) < 0
      || bjson_get_str (j, "created", true, &when, err) < 0
      || bjson_get_strv (j, "layers", true, &im->layers, err) < 0)
    return -1;
  if (bclock_parse_rfc3339 (when, &created) < 0)
    return berr_make (err, EINVAL, "`created` `%.60s` is not an RFC 3339 time", when);
  if (im->layers[0] == NULL)
    return berr_make (err, EINVAL, "`layers` is empty");
  for (size_t i = 0; im->layers[i]; i++)
    if (check_digest (im->layers[i], err) < 0)
      return berr_wrap (err, "`layers[%zu]`", i);
  if ((im->digest = strdup (d)) == NULL || (im->config_digest = strdup (c)) == NULL
      || (im->refs = calloc (1, sizeof (char *))) == NULL)
    return oom (err);
  im->size = (uint64_t)size;
  im->created_ns = im->last_used_ns = created;
  return 0;
}

int img_store_record_parse (const char *json, size_t len, struct img_store_image **out, berr **err)
{
  _cleanup_json_ cJSON *j = NULL;
  if (bjson_parse (json, len, &j, err) < 0)
    return berr_wrap (err, "image record");
  if (!cJSON_IsObject (j))
    return berr_make (err, EINVAL, "image record: not a JSON object");
  struct img_store_image *im = calloc (1, sizeof *im);
  if (im == NULL)
    return oom (err);
  if (record_from_json (j, im, err) < 0)
    {
      img_store_image_free (im);
      return berr_wrap (err, "image record");
    }
  *out = im;
  return 0;
}

/* Every reference naming digest, from refs/. */
static int refs_of (struct img_store *s, const char *digest, char ***out, berr **err)
{
  _cleanup_close_ int dfd = openat (s->refs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dfd >= 0 ? fdopendir (dfd) : NULL;
  if (d == NULL)
    return berr_sys (err, "read `%s`", ST_REFS);
  dfd = -1;
  struct dirent *e;
  int r = 0;
  while (r == 0 && (e = readdir (d)) != NULL)
    {
      if (e->d_name[0] == '.' || strlen (e->d_name) != 69)
        continue;
      _cleanup_free_ char *ref = NULL, *dg = NULL;
      _cleanup_berr_ berr *rerr = NULL;
      if (read_ref_file (s, e->d_name, &ref, &dg, &rerr) <= 0)
        continue; /* gone meanwhile, or unreadable: it names nothing */
      if (strcmp (dg, digest) == 0 && strv_append (out, ref) < 0)
        r = oom (err);
    }
  closedir (d);
  return r;
}

static int load_image (struct img_store *s, const char *digest, struct img_store_image **out,
                       berr **err)
{
  char path[96];
  snprintf (path, sizeof path, "%s/image.json", st_hex (digest));
  _cleanup_free_ char *buf = NULL;
  size_t len = 0;
  if (bfs_read_all (s->images_fd, path, RECORD_MAX, &buf, &len, err) < 0)
    return -1;
  struct img_store_image *im = NULL;
  if (img_store_record_parse (buf, len, &im, err) < 0)
    return -1;
  struct stat st;
  snprintf (path, sizeof path, "%s/used", st_hex (digest));
  if (fstatat (s->images_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
    {
      int64_t used = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
      if (used > im->last_used_ns)
        im->last_used_ns = used;
    }
  if (refs_of (s, digest, &im->refs, err) < 0
      || st_containers_using (s, digest, &im->containers, err) < 0)
    {
      img_store_image_free (im);
      return -1;
    }
  *out = im;
  return 0;
}

int img_store_lookup (struct img_store *s, const char *name, struct img_store_image **out,
                      berr **err)
{
  _cleanup_free_ char *digest = NULL;
  int r = st_resolve (s, name, &digest, err);
  if (r <= 0)
    return r;
  if (load_image (s, digest, out, err) < 0)
    return berr_wrap (err, "image %s", digest);
  return 1;
}

static int by_newest (const void *a, const void *b)
{
  const struct img_store_image *x = *(struct img_store_image *const *)a;
  const struct img_store_image *y = *(struct img_store_image *const *)b;
  return (x->created_ns < y->created_ns) - (x->created_ns > y->created_ns);
}

int img_store_list (struct img_store *s, struct img_store_image ***out, size_t *n, berr **err)
{
  _cleanup_close_ int dfd = openat (s->images_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dfd >= 0 ? fdopendir (dfd) : NULL;
  if (d == NULL)
    return berr_sys (err, "read `%s`", ST_IMAGES);
  dfd = -1;
  struct img_store_image **v = NULL;
  size_t count = 0;
  struct dirent *e;
  int r = 0;
  while (r == 0 && (e = readdir (d)) != NULL)
    {
      char digest[80];
      snprintf (digest, sizeof digest, "sha256:%.70s", e->d_name);
      if (!img_digest_valid (digest) || !image_present (s, digest))
        continue;
      struct img_store_image *im = NULL, **nv = realloc (v, (count + 1) * sizeof *v);
      if (nv == NULL)
        r = oom (err);
      else if ((v = nv, r = load_image (s, digest, &im, err)) == 0)
        v[count++] = im;
    }
  closedir (d);
  if (r < 0)
    {
      img_store_images_free (v, count);
      return berr_wrap (err, "list images");
    }
  if (count > 1)
    qsort (v, count, sizeof *v, by_newest);
  *out = v;
  *n = count;
  return 0;
}

int img_store_config (struct img_store *s, const char *name, struct img_config **out, berr **err)
{
  _cleanup_free_ char *digest = NULL;
  int r = st_resolve (s, name, &digest, err);
  if (r < 0)
    return -1;
  if (r == 0)
    return berr_make (err, ENOENT, "image `%s` is not stored", name);
  char path[96];
  snprintf (path, sizeof path, "%s/config.json", st_hex (digest));
  _cleanup_free_ char *buf = NULL;
  size_t len = 0;
  if (bfs_read_all (s->images_fd, path, DOCUMENT_MAX, &buf, &len, err) < 0
      || img_config_parse (buf, len, out, err) < 0)
    return berr_wrap (err, "image %s", digest);
  return 0;
}

/* ---- Committing images ----------------------------------------------------------------------- */

struct image_docs
{
  const char *digest, *manifest, *config;
  size_t manifest_len, config_len;
  struct img_manifest *m;
};

/* Everything the record will claim is checked: both digests, the documents parse, every layer
 * is present. Returns the disk bytes of the layers in *size. */
static int verify_image (struct img_store *s, struct image_docs *d, uint64_t *size, berr **err)
{
  char got[72];
  if (check_digest (d->digest, err) < 0 || st_sha256 (d->manifest, d->manifest_len, got, err) < 0)
    return -1;
  if (strcmp (got, d->digest) != 0)
    return berr_make (err, EBADMSG, "manifest digest mismatch: expected %s, got %s", d->digest,
                      got);
  if (img_manifest_parse (NULL, d->manifest, d->manifest_len, &d->m, err) < 0)
    return -1;
  if (d->m->kind != IMG_MANIFEST_IMAGE)
    return berr_make (err, EINVAL, "not an image manifest");
  if (st_sha256 (d->config, d->config_len, got, err) < 0)
    return -1;
  if (strcmp (got, d->m->config.digest) != 0)
    return berr_make (err, EBADMSG, "config digest mismatch: expected %s, got %s",
                      d->m->config.digest, got);
  struct img_config *c = NULL;
  if (img_config_parse (d->config, d->config_len, &c, err) < 0)
    return -1;
  img_config_free (c);
  *size = 0;
  for (size_t i = 0; i < d->m->n_layers; i++)
    {
      const char *ld = d->m->layers[i].digest;
      char path[96];
      snprintf (path, sizeof path, "%s/layer.json", st_hex (ld));
      _cleanup_json_ cJSON *j = NULL;
      int64_t bytes = 0;
      if (bjson_read_file (s->layers_fd, path, RECORD_MAX, &j, err) < 0
          || bjson_get_int (j, "disk_bytes", true, 0, INT64_MAX, &bytes, err) < 0)
        return berr_wrap (err, "layer %s", ld);
      *size += (uint64_t)bytes;
    }
  return 0;
}

static int image_record_json (const struct image_docs *d, uint64_t size, char **out, berr **err)
{
  _cleanup_json_ cJSON *j = cJSON_CreateObject ();
  cJSON *layers = cJSON_AddArrayToObject (j, "layers");
  char now[BCLOCK_RFC3339_LEN];
  bclock_rfc3339 (bclock_real_ns (), now);
  if (j == NULL || layers == NULL || !cJSON_AddStringToObject (j, "digest", d->digest)
      || !cJSON_AddStringToObject (j, "config_digest", d->m->config.digest)
      || !cJSON_AddNumberToObject (j, "size", (double)size)
      || !cJSON_AddStringToObject (j, "created", now))
    return oom (err);
  for (size_t i = 0; i < d->m->n_layers; i++)
    if (!cJSON_AddItemToArray (layers, cJSON_CreateString (d->m->layers[i].digest)))
      return oom (err);
  return (*out = cJSON_PrintUnformatted (j)) ? 0 : oom (err);
}

/* Writes images/<hex>/ through a staging directory: a crash leaves no half record. */
static int write_image_dir (struct img_store *s, const struct image_docs *d, const char *record,
                            berr **err)
{
  _cleanup_close_ int slk = st_staging_lock (s, LOCK_SH, err);
  if (slk < 0)
    return -1;
  char prefix[32];
  snprintf (prefix, sizeof prefix, "img-%.16s", st_hex (d->digest));
  _cleanup_free_ char *full = NULL;
  if (st_stage_dir (s, prefix, &full, err) < 0)
    return -1;
  _cleanup_close_ int fd = open (full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r = fd < 0 ? berr_sys (err, "open `%s`", full) : 0;
  if (r == 0
      && (bfs_write_atomic (fd, "manifest.json", d->manifest, d->manifest_len, 0644, err) < 0
          || bfs_write_atomic (fd, "config.json", d->config, d->config_len, 0644, err) < 0
          || bfs_write_atomic (fd, "image.json", record, strlen (record), 0644, err) < 0))
    r = -1;
  if (r == 0 && renameat (AT_FDCWD, full, s->images_fd, st_hex (d->digest)) < 0)
    r = errno == EEXIST || errno == ENOTEMPTY ? 0 : berr_sys (err, "rename into `%s`", ST_IMAGES);
  if (r == 0 && fsync (s->images_fd) < 0)
    r = berr_sys (err, "sync `%s`", ST_IMAGES);
  bfs_remove_tree (AT_FDCWD, full, NULL); /* gone after a rename; left when it already existed */
  return r;
}

static int commit_image (struct img_store *s, const char *ref, struct image_docs *d, berr **err)
{
  uint64_t size = 0;
  _cleanup_free_ char *canon = NULL, *record = NULL;
  if (ref && st_canonical_ref (ref, &canon, err) < 0)
    return -1;
  _cleanup_close_ int lk = st_store_lock (s, LOCK_SH, err);
  if (lk < 0 || verify_image (s, d, &size, err) < 0)
    return -1;
  if (!image_present (s, d->digest)
      && (image_record_json (d, size, &record, err) < 0 || write_image_dir (s, d, record, err) < 0))
    return -1;
  return canon ? write_ref (s, canon, d->digest, err) : 0;
}

int st_image_commit (struct img_store *s, const char *ref, const char *digest, const char *manifest,
                     size_t manifest_len, const char *config, size_t config_len, berr **err)
{
  struct image_docs d = { digest, manifest, config, manifest_len, config_len, NULL };
  int r = commit_image (s, ref, &d, err);
  img_manifest_free (d.m);
  if (r < 0)
    return berr_wrap (err, "store image %s", digest ? digest : "(null)");
  return 0;
}

static int sink_image_commit (void *cls, const char *ref, const char *digest, const char *manifest,
                              size_t manifest_len, const char *config, size_t config_len,
                              berr **err)
{
  return st_image_commit (cls, ref, digest, manifest, manifest_len, config, config_len, err);
}

void img_store_sink (struct img_store *s, struct img_sink *out)
{
  *out = (struct img_sink){
    .cls = s,
    .image_lookup = sink_image_lookup,
    .layer_has = sink_layer_has,
    .layer_stage = sink_layer_stage,
    .layer_commit = sink_layer_commit,
    .layer_abort = sink_layer_abort,
    .image_commit = sink_image_commit,
  };
}
