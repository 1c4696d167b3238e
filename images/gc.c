/* Removing images and layers: explicit removal and the cleanup cycle (least recently used first,
 * by age and by disk-usage watermarks), never an image a container uses. */
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define NS 1000000000LL

static int oom (berr **err)
{
  return berr_make (err, ENOMEM, "out of memory");
}

/* Reads a directory's entry names (skipping dot files) into a NULL-terminated vector. */
static int dir_names (int dirfd, const char *what, char ***out, berr **err)
{
  _cleanup_close_ int dfd = openat (dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = dfd >= 0 ? fdopendir (dfd) : NULL;
  if (d == NULL)
    return berr_sys (err, "read `%s`", what);
  dfd = -1;
  struct dirent *e;
  int r = 0;
  *out = NULL;
  if ((*out = calloc (1, sizeof (char *))) == NULL)
    r = oom (err);
  while (r == 0 && (e = readdir (d)) != NULL)
    if (e->d_name[0] != '.' && strv_append (out, e->d_name) < 0)
      r = oom (err);
  closedir (d);
  return r;
}

static int cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *)a, *(char *const *)b);
}

/* The layer digests every stored image references, sorted for bsearch. */
static int referenced_layers (struct img_store *s, char ***out, size_t *n, berr **err)
{
  _cleanup_strv_ char **names = NULL;
  if (dir_names (s->images_fd, ST_IMAGES, &names, err) < 0)
    return -1;
  *out = calloc (1, sizeof (char *));
  if (*out == NULL)
    return oom (err);
  for (size_t i = 0; names[i]; i++)
    {
      char path[300];
      snprintf (path, sizeof path, "%s/image.json", names[i]);
      _cleanup_free_ char *buf = NULL;
      size_t len = 0;
      struct img_store_image *im = NULL;
      _cleanup_berr_ berr *rerr = NULL;
      if (bfs_read_all (s->images_fd, path, 1 << 20, &buf, &len, &rerr) < 0)
        continue; /* a directory without a record names no layer */
      if (img_store_record_parse (buf, len, &im, err) < 0)
        return berr_wrap (err, "image `%s`", names[i]);
      for (size_t k = 0; im->layers[k]; k++)
        if (strv_append (out, im->layers[k]) < 0)
          {
            img_store_image_free (im);
            return oom (err);
          }
      img_store_image_free (im);
    }
  *n = strv_len (*out);
  qsort (*out, *n, sizeof (char *), cmp_str);
  return 0;
}

static bool in_sorted (char **v, size_t n, const char *s)
{
  return bsearch (&s, v, n, sizeof (char *), cmp_str) != NULL;
}

/* Moves a layer to staging (one rename: it vanishes at once) and removes it there, under the
 * layer's lock. Returns 1 when removed, 0 when a puller holds the lock (left alone). */
static int delete_layer (struct img_store *s, const char *digest, berr **err)
{
  _cleanup_berr_ berr *lerr = NULL;
  _cleanup_close_ int lk = st_layer_lock (s, digest, true, &lerr);
  if (lk < 0)
    {
      if (berr_errno (lerr) == EWOULDBLOCK)
        return 0;
      *err = steal_ptr (&lerr);
      return -1;
    }
  _cleanup_free_ char *tmp = NULL;
  if (st_stage_dir (s, st_hex (digest), &tmp, err) < 0)
    return -1;
  if (renameat (s->layers_fd, st_hex (digest), AT_FDCWD, tmp) < 0)
    {
      int saved = errno;
      rmdir (tmp);
      if (saved == ENOENT)
        return 0;
      errno = saved;
      return berr_sys (err, "move layer %s out", digest);
    }
  if (bfs_remove_tree (AT_FDCWD, tmp, err) < 0)
    return -1;
  return 1;
}

static int64_t layer_committed_ns (struct img_store *s, const char *hex)
{
  char path[300];
  snprintf (path, sizeof path, "%s/layer.json", hex);
  _cleanup_json_ cJSON *j = NULL;
  _cleanup_berr_ berr *err = NULL;
  int64_t t = 0;
  const char *when = NULL;
  if (bjson_read_file (s->layers_fd, path, 1 << 20, &j, &err) == 0
      && bjson_get_str (j, "committed", true, &when, &err) == 0
      && bclock_parse_rfc3339 (when, &t) == 0)
    return t;
  struct stat st;
  if (fstatat (s->layers_fd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0)
    return (int64_t)st.st_mtim.tv_sec * NS + st.st_mtim.tv_nsec;
  return 0;
}

/* Removes unreferenced layers committed before cutoff_ns (INT64_MAX: any age); only is the
 * candidate list (NULL: every layer). */
static int prune_layers (struct img_store *s, char **only, int64_t cutoff_ns, unsigned *n,
                         berr **err)
{
  _cleanup_strv_ char **all = NULL, **refs = NULL;
  size_t n_refs = 0;
  if (referenced_layers (s, &refs, &n_refs, err) < 0)
    return -1;
  if (only == NULL && dir_names (s->layers_fd, ST_LAYERS, &all, err) < 0)
    return -1;
  char **cands = only ? only : all;
  for (size_t i = 0; cands[i]; i++)
    {
      char digest[80];
      snprintf (digest, sizeof digest, "%s%.71s", only ? "" : "sha256:", cands[i]);
      if (!img_digest_valid (digest) || in_sorted (refs, n_refs, digest))
        continue;
      if (cutoff_ns != INT64_MAX && layer_committed_ns (s, st_hex (digest)) > cutoff_ns)
        continue;
      int r = delete_layer (s, digest, err);
      if (r < 0)
        return berr_wrap (err, "remove layer %s", digest);
      if (n)
        *n += (unsigned)r;
    }
  return 0;
}

static int remove_refs_to (struct img_store *s, const char *digest, berr **err)
{
  _cleanup_strv_ char **names = NULL;
  if (dir_names (s->refs_fd, ST_REFS, &names, err) < 0)
    return -1;
  for (size_t i = 0; names[i]; i++)
    {
      _cleanup_json_ cJSON *j = NULL;
      _cleanup_berr_ berr *rerr = NULL;
      const char *d = NULL;
      if (bjson_read_file (s->refs_fd, names[i], 1 << 20, &j, &rerr) < 0
          || bjson_get_str (j, "digest", true, &d, &rerr) < 0)
        continue;
      if (strcmp (d, digest) == 0 && unlinkat (s->refs_fd, names[i], 0) < 0 && errno != ENOENT)
        return berr_sys (err, "remove reference `%s`", names[i]);
    }
  return 0;
}

/* images/<hex> leaves in one rename into staging/ and is removed there (or, after a crash, by
 * the next open). */
static int remove_record (struct img_store *s, const char *digest, berr **err)
{
  char prefix[32];
  snprintf (prefix, sizeof prefix, "img-del-%.16s", st_hex (digest));
  _cleanup_free_ char *tmp = NULL;
  _cleanup_close_ int slk = st_staging_lock (s, LOCK_SH, err);
  if (slk < 0 || st_stage_dir (s, prefix, &tmp, err) < 0)
    return -1;
  if (renameat (s->images_fd, st_hex (digest), AT_FDCWD, tmp) < 0)
    {
      berr_sys (err, "move image %s out", digest);
      rmdir (tmp);
      return -1;
    }
  bfs_remove_tree (AT_FDCWD, tmp, NULL);
  return 0;
}

/* Removes an image and its layers no other image uses; *layers_removed counts them. */
static int remove_image (struct img_store *s, const char *digest, unsigned *layers_removed,
                         berr **err)
{
  struct img_store_image *im = NULL;
  char path[96];
  snprintf (path, sizeof path, "%s/image.json", st_hex (digest));
  _cleanup_free_ char *buf = NULL;
  size_t len = 0;
  if (bfs_read_all (s->images_fd, path, 1 << 20, &buf, &len, err) < 0
      || img_store_record_parse (buf, len, &im, err) < 0)
    return berr_wrap (err, "remove image %s", digest);
  int r = remove_refs_to (s, digest, err);
  if (r == 0)
    r = remove_record (s, digest, err);
  if (r == 0)
    r = prune_layers (s, im->layers, INT64_MAX, layers_removed, err);
  img_store_image_free (im);
  return r < 0 ? berr_wrap (err, "remove image %s", digest) : 0;
}

static int refs_count (struct img_store *s, const char *digest, unsigned *n, berr **err)
{
  struct img_store_image *im = NULL;
  int r = img_store_lookup (s, digest, &im, err);
  if (r <= 0)
    return r;
  *n = (unsigned)strv_len (im->refs);
  img_store_image_free (im);
  return 1;
}

/* With the store lock held exclusively. */
static int remove_locked (struct img_store *s, const char *name, berr **err)
{
  _cleanup_free_ char *digest = NULL;
  int r = st_resolve (s, name, &digest, err);
  if (r < 0)
    return -1;
  if (r == 0)
    return berr_make (err, ENOENT, "image `%s` is not stored", name);
  unsigned refs = 0, users = 0;
  bool by_ref = strncmp (name, "sha256:", 7) != 0;
  if (by_ref && refs_count (s, digest, &refs, err) < 0)
    return -1;
  if (by_ref && refs > 1)
    {
      /* Other names keep the image: only this reference goes. */
      struct img_ref ref = { 0 };
      if (img_ref_parse (name, NULL, &ref, err) < 0)
        return -1;
      _cleanup_free_ char *canon = img_ref_format (&ref);
      img_ref_clear (&ref);
      char d[72], file[80];
      if (canon == NULL || st_sha256 (canon, strlen (canon), d, err) < 0)
        return canon ? -1 : oom (err);
      snprintf (file, sizeof file, "%s.json", st_hex (d));
      if (unlinkat (s->refs_fd, file, 0) < 0)
        return berr_sys (err, "remove reference `%s`", canon);
      return 0;
    }
  if (st_containers_using (s, digest, &users, err) < 0)
    return -1;
  if (users > 0)
    return berr_make (err, EBUSY, "image %s is used by %u container%s", digest, users,
                      users == 1 ? "" : "s");
  return remove_image (s, digest, NULL, err);
}

int img_store_remove (struct img_store *s, const char *name, berr **err)
{
  _cleanup_close_ int lk = st_store_lock (s, LOCK_EX, err);
  if (lk < 0 || remove_locked (s, name, err) < 0)
    return berr_wrap (err, "remove image `%.200s`", name);
  return 0;
}

/* ---- The cleanup cycle ----------------------------------------------------------------------- */

int img_disk_usage_statvfs (void *cls, const char *path, uint64_t *used, uint64_t *total,
                            berr **err)
{
  struct statvfs v;
  if (statvfs (path, &v) < 0)
    return berr_sys (err, "statvfs `%s`", path);
  *total = (uint64_t)v.f_blocks * v.f_frsize;
  *used = (uint64_t)(v.f_blocks - v.f_bfree) * v.f_frsize;
  return 0;
}

struct gc
{
  struct img_store *s;
  struct img_gc_params p; /* defaults applied */
  struct img_gc_result *res;
  struct img_store_image **v; /* least recently used first */
  size_t n;
  bool *gone;
};

static void gc_defaults (const struct img_gc_params *in, struct img_gc_params *p)
{
  *p = in ? *in : (struct img_gc_params){ 0 };
  if (p->high_pct == 0)
    p->high_pct = 85;
  if (p->low_pct == 0)
    p->low_pct = 80;
  if (p->min_age_s == 0)
    p->min_age_s = 3600;
  else if (p->min_age_s < 0)
    p->min_age_s = 0;
  if (p->max_delete == 0)
    p->max_delete = 5;
  if (p->grace_s == 0)
    p->grace_s = 600;
  else if (p->grace_s < 0)
    p->grace_s = 0;
  if (p->now_ns == 0)
    p->now_ns = bclock_real_ns ();
  if (p->disk_usage == NULL)
    p->disk_usage = img_disk_usage_statvfs;
}

static int by_lru (const void *a, const void *b)
{
  const struct img_store_image *x = *(struct img_store_image *const *)a;
  const struct img_store_image *y = *(struct img_store_image *const *)b;
  return (x->last_used_ns > y->last_used_ns) - (x->last_used_ns < y->last_used_ns);
}

static int gc_usage (struct gc *g, uint64_t *used, berr **err)
{
  if (g->p.disk_usage (g->p.disk_usage_cls, g->s->root, used, &g->res->total, err) < 0)
    return berr_wrap (err, "disk usage");
  return 0;
}

static int gc_remove (struct gc *g, size_t i, berr **err)
{
  if (remove_image (g->s, g->v[i]->digest, &g->res->layers_removed, err) < 0)
    return -1;
  blog_info ("image cleanup: removed %s (%s, last used %llds ago)", g->v[i]->digest,
             g->v[i]->refs[0] ? g->v[i]->refs[0] : "no reference",
             (long long)((g->p.now_ns - g->v[i]->last_used_ns) / NS));
  g->gone[i] = true;
  g->res->images_removed++;
  return 0;
}

static int gc_age_pass (struct gc *g, berr **err)
{
  int64_t cutoff = g->p.now_ns - g->p.min_age_s * NS;
  unsigned done = 0;
  for (size_t i = 0; i < g->n && done < g->p.max_delete; i++)
    {
      const struct img_store_image *im = g->v[i];
      if (im->containers > 0 || im->created_ns > cutoff || im->last_used_ns > cutoff)
        continue;
      if (gc_remove (g, i, err) < 0)
        return -1;
      done++;
    }
  return 0;
}

static bool above (uint64_t used, uint64_t total, unsigned pct)
{
  return total > 0 && (unsigned __int128)used * 100 >= (unsigned __int128)total * pct;
}

static int gc_disk_pass (struct gc *g, berr **err)
{
  uint64_t used = 0;
  if (gc_usage (g, &used, err) < 0)
    return -1;
  if (!above (used, g->res->total, g->p.high_pct))
    return 0;
  int64_t young = g->p.now_ns - g->p.grace_s * NS;
  for (size_t i = 0; i < g->n && above (used, g->res->total, g->p.low_pct); i++)
    {
      if (g->gone[i] || g->v[i]->containers > 0 || g->v[i]->created_ns > young)
        continue;
      if (gc_remove (g, i, err) < 0 || gc_usage (g, &used, err) < 0)
        return -1;
    }
  return 0;
}

static int gc_run (struct gc *g, berr **err)
{
  if (img_store_list (g->s, &g->v, &g->n, err) < 0)
    return -1;
  if (g->n > 1)
    qsort (g->v, g->n, sizeof *g->v, by_lru);
  if ((g->gone = calloc (g->n + 1, sizeof *g->gone)) == NULL)
    return oom (err);
  if (gc_usage (g, &g->res->used_before, err) < 0)
    return -1;
  if (!g->p.disk_only && gc_age_pass (g, err) < 0)
    return -1;
  if (gc_disk_pass (g, err) < 0)
    return -1;
  if (prune_layers (g->s, NULL, g->p.now_ns - g->p.grace_s * NS, &g->res->layers_removed, err) < 0)
    return -1;
  return gc_usage (g, &g->res->used_after, err);
}

int img_store_gc (struct img_store *s, const struct img_gc_params *p, struct img_gc_result *res,
                  berr **err)
{
  struct img_gc_result local = { 0 };
  struct gc g = { .s = s, .res = res ? res : &local };
  *g.res = (struct img_gc_result){ 0 };
  gc_defaults (p, &g.p);
  _cleanup_close_ int lk = st_store_lock (s, LOCK_EX, err);
  int r = lk < 0 ? -1 : gc_run (&g, err);
  img_store_images_free (g.v, g.n);
  free (g.gone);
  return r < 0 ? berr_wrap (err, "image cleanup") : 0;
}
