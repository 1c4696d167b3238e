/* Import of images from `docker save` archives and OCI image layout tarballs, for air-gapped
 * hosts: every digest verified, layers through the same stage/commit path as pulls. */
#include "images/store_internal.h"

#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/strv.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_MEMBERS 100000
#define MAX_IMAGES 1024
#define DOC_MAX (4 << 20)
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define REF_NAME "org.opencontainers.image.ref.name"
#define IMAGE_NAME "io.containerd.image.name"

static int oom (berr **err)
{
  return berr_make (err, ENOMEM, "out of memory");
}

/* ---- Parsers of untrusted archive metadata --------------------------------------------------- */

/* Member names as archives write them ("./x", "x"); NULL when hostile or malformed. */
static char *clean_member (const char *name)
{
  while (name[0] == '.' && name[1] == '/')
    name += 2;
  if (name[0] == '\0' || name[0] == '/' || strlen (name) >= PATH_MAX)
    return NULL;
  for (const char *p = name; *p;)
    {
      size_t n = strcspn (p, "/");
      if ((n == 2 && p[0] == '.' && p[1] == '.') || n == 0)
        return NULL;
      p += n + (p[n] == '/');
    }
  return strdup (name);
}

void img_archive_images_free (struct img_archive_image *v, size_t n)
{
  for (size_t i = 0; v && i < n; i++)
    {
      free (v[i].config);
      strv_free (v[i].repo_tags);
      strv_free (v[i].layers);
    }
  free (v);
}

static int archive_image_from_json (const cJSON *j, struct img_archive_image *im, berr **err)
{
  const char *config = NULL;
  if (!cJSON_IsObject (j))
    return berr_make (err, EINVAL, "not an object");
  if (bjson_get_str (j, "Config", true, &config, err) < 0
      || bjson_get_strv (j, "Layers", true, &im->layers, err) < 0
      || bjson_get_strv (j, "RepoTags", false, &im->repo_tags, err) < 0)
    return -1;
  if (im->repo_tags == NULL && (im->repo_tags = calloc (1, sizeof (char *))) == NULL)
    return oom (err);
  if (im->layers[0] == NULL)
    return berr_make (err, EINVAL, "`Layers` is empty");
  if ((im->config = clean_member (config)) == NULL)
    return berr_make (err, EINVAL, "`Config` `%.120s` is not a member name", config);
  for (size_t i = 0; im->layers[i]; i++)
    {
      char *c = clean_member (im->layers[i]);
      if (c == NULL)
        return berr_make (err, EINVAL, "`Layers[%zu]` `%.120s` is not a member name", i,
                          im->layers[i]);
      free (im->layers[i]);
      im->layers[i] = c;
    }
  return 0;
}

int img_docker_archive_parse (const char *json, size_t len, struct img_archive_image **out,
                              size_t *n, berr **err)
{
  _cleanup_json_ cJSON *j = NULL;
  if (bjson_parse (json, len, &j, err) < 0)
    return berr_wrap (err, "manifest.json");
  size_t count = cJSON_IsArray (j) ? (size_t)cJSON_GetArraySize (j) : 0;
  if (!cJSON_IsArray (j) || count == 0 || count > MAX_IMAGES)
    return berr_make (err, EINVAL, "manifest.json: not an array of 1 to %d images", MAX_IMAGES);
  struct img_archive_image *v = calloc (count, sizeof *v);
  if (v == NULL)
    return oom (err);
  size_t i = 0;
  const cJSON *e;
  cJSON_ArrayForEach (e, j)
  {
    if (archive_image_from_json (e, &v[i], err) < 0)
      {
        img_archive_images_free (v, count);
        return berr_wrap (err, "manifest.json: image %zu", i);
      }
    i++;
  }
  *out = v;
  *n = count;
  return 0;
}

int img_oci_layout_check (const char *json, size_t len, berr **err)
{
  _cleanup_json_ cJSON *j = NULL;
  const char *v = NULL;
  if (bjson_parse (json, len, &j, err) < 0 || !cJSON_IsObject (j)
      || bjson_get_str (j, "imageLayoutVersion", true, &v, err) < 0)
    return *err ? berr_wrap (err, "oci-layout")
                : berr_make (err, EINVAL, "oci-layout: not an object");
  if (strncmp (v, "1.", 2) != 0)
    return berr_make (err, ENOTSUP, "oci-layout: version `%.40s` is not supported", v);
  return 0;
}

void img_layout_entries_free (struct img_layout_entry *v, size_t n)
{
  for (size_t i = 0; v && i < n; i++)
    {
      struct img_descriptor *d = &v[i].desc;
      free (d->media_type);
      free (d->digest);
      free (d->os);
      free (d->architecture);
      free (d->variant);
      free (v[i].ref_name);
      free (v[i].image_name);
    }
  free (v);
}

/* The ref.name and io.containerd.image.name annotations of manifests[i], NULL when absent; an
 * error when not strings. */
static int names_of (const cJSON *j, size_t i, struct img_layout_entry *e, berr **err)
{
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive (j, "manifests");
  const cJSON *ann = NULL;
  const char *name = NULL, *image = NULL;
  if (bjson_get_obj (cJSON_GetArrayItem (arr, (int)i), "annotations", false, &ann, err) < 0
      || (ann && bjson_get_str (ann, REF_NAME, false, &name, err) < 0)
      || (ann && bjson_get_str (ann, IMAGE_NAME, false, &image, err) < 0))
    return berr_wrap (err, "`manifests[%zu]`", i);
  if ((name && (e->ref_name = strdup (name)) == NULL)
      || (image && (e->image_name = strdup (image)) == NULL))
    return oom (err);
  return 0;
}

int img_oci_index_parse (const char *json, size_t len, struct img_layout_entry **out, size_t *n,
                         berr **err)
{
  struct img_manifest *m = NULL;
  _cleanup_json_ cJSON *j = NULL;
  if (img_manifest_parse (MT_OCI_INDEX, json, len, &m, err) < 0
      || bjson_parse (json, len, &j, err) < 0)
    {
      img_manifest_free (m);
      return berr_wrap (err, "index.json");
    }
  struct img_layout_entry *v = calloc (m->n_manifests + 1, sizeof *v);
  int r = v ? 0 : oom (err);
  size_t i = 0;
  for (; r == 0 && i < m->n_manifests; i++)
    {
      v[i].desc = m->manifests[i];
      memset (&m->manifests[i], 0, sizeof m->manifests[i]);
      r = names_of (j, i, &v[i], err);
    }
  img_manifest_free (m);
  if (r < 0)
    {
      img_layout_entries_free (v, i);
      return berr_wrap (err, "index.json");
    }
  *out = v;
  *n = i;
  return 0;
}

/* ---- Reading the tarball --------------------------------------------------------------------- */

/* Regular members are copied to files e<N> of a staging directory; links are resolved by name. */
struct member
{
  char *name;
  char *link; /* for symlinks and hard links: the member they name, else NULL */
  size_t file;
};

struct import
{
  struct img_store *s;
  struct img_sink sink;
  int dir_fd; /* staging/import-XXXXXX */
  struct member *m;
  size_t n;
  struct img_import_result *res;
};

static int copy_member (struct archive *a, int dir_fd, size_t idx, berr **err)
{
  char fname[32];
  snprintf (fname, sizeof fname, "e%zu", idx);
  _cleanup_close_ int fd
      = openat (dir_fd, fname, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return berr_sys (err, "create `%s`", fname);
  char buf[65536];
  for (;;)
    {
      la_ssize_t got = archive_read_data (a, buf, sizeof buf);
      if (got < 0)
        return berr_make (err, EINVAL, "read archive: %s", archive_error_string (a));
      if (got == 0)
        return 0;
      for (la_ssize_t off = 0; off < got;)
        {
          ssize_t w = write (fd, buf + off, (size_t)(got - off));
          if (w < 0 && errno != EINTR)
            return berr_sys (err, "write `%s`", fname);
          off += w > 0 ? w : 0;
        }
    }
}

/* A symlink's target relative to the member's directory, as a member name. */
static char *link_member (const char *name, const char *target, bool symlink)
{
  if (!symlink)
    return clean_member (target);
  const char *slash = strrchr (name, '/');
  _cleanup_free_ char *joined = NULL;
  if (asprintf (&joined, "%.*s%s", slash ? (int)(slash - name + 1) : 0, name, target) < 0)
    return NULL;
  /* Resolve "dir/../x" lexically; anything climbing out of the archive is refused. */
  _cleanup_strv_ char **parts = NULL;
  for (char *save = NULL, *p = strtok_r (joined, "/", &save); p; p = strtok_r (NULL, "/", &save))
    {
      if (strcmp (p, ".") == 0)
        continue;
      if (strcmp (p, "..") == 0)
        {
          size_t k = strv_len (parts);
          if (k == 0)
            return NULL;
          free (parts[k - 1]);
          parts[k - 1] = NULL;
        }
      else if (strv_append (&parts, p) < 0)
        return NULL;
    }
  size_t len = 1;
  for (size_t i = 0; parts && parts[i]; i++)
    len += strlen (parts[i]) + 1;
  char *out = calloc (1, len);
  for (size_t i = 0; out && parts && parts[i]; i++)
    {
      if (i)
        strcat (out, "/");
      strcat (out, parts[i]);
    }
  return out;
}

static int add_member (struct import *im, struct archive *a, struct archive_entry *e, berr **err)
{
  mode_t type = archive_entry_filetype (e);
  const char *hl = archive_entry_hardlink (e);
  bool sym = type == AE_IFLNK;
  if (type != AE_IFREG && !sym && hl == NULL)
    return 0;
  if (im->n >= MAX_MEMBERS)
    return berr_make (err, EFBIG, "more than %d members", MAX_MEMBERS);
  struct member *nm = realloc (im->m, (im->n + 1) * sizeof *nm);
  if (nm == NULL)
    return oom (err);
  im->m = nm;
  struct member *m = &im->m[im->n];
  *m = (struct member){ clean_member (archive_entry_pathname (e)), NULL, im->n };
  if (m->name == NULL)
    return berr_make (err, EINVAL, "member `%.200s` has a hostile name",
                      archive_entry_pathname (e));
  im->n++;
  if (hl || sym)
    {
      m->link = link_member (m->name, hl ? hl : archive_entry_symlink (e), sym);
      return m->link ? 0 : berr_make (err, EINVAL, "member `%.200s` links outside", m->name);
    }
  return copy_member (a, im->dir_fd, m->file, err);
}

static int read_members (struct import *im, int fd, berr **err)
{
  struct archive *a = archive_read_new ();
  if (a == NULL)
    return oom (err);
  int r = 0;
  if (archive_read_support_format_tar (a) != ARCHIVE_OK
      || archive_read_support_filter_gzip (a) != ARCHIVE_OK
      || archive_read_support_filter_zstd (a) != ARCHIVE_OK
      || archive_read_open_fd (a, fd, 65536) != ARCHIVE_OK)
    r = berr_make (err, EINVAL, "not a tar archive: %s", archive_error_string (a));
  struct archive_entry *e;
  while (r == 0)
    {
      int h = archive_read_next_header (a, &e);
      if (h == ARCHIVE_EOF)
        break;
      if (h != ARCHIVE_OK && h != ARCHIVE_WARN)
        r = berr_make (err, EINVAL, "read archive: %s", archive_error_string (a));
      else
        r = add_member (im, a, e, err);
    }
  archive_read_free (a);
  return r;
}

/* Opens member name (following links within the archive, a few levels deep). */
static int open_member (struct import *im, const char *name, berr **err)
{
  for (int depth = 0; depth < 8; depth++)
    {
      const struct member *m = NULL;
      for (size_t i = im->n; i-- > 0;) /* the last one of a name wins, as tar extraction does */
        if (strcmp (im->m[i].name, name) == 0)
          {
            m = &im->m[i];
            break;
          }
      if (m == NULL)
        return berr_make (err, ENOENT, "archive has no member `%.200s`", name);
      if (m->link == NULL)
        {
          char fname[32];
          snprintf (fname, sizeof fname, "e%zu", m->file);
          int fd = openat (im->dir_fd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
          return fd >= 0 ? fd : berr_sys (err, "open member `%.200s`", name);
        }
      name = m->link;
    }
  return berr_make (err, ELOOP, "member `%.200s`: too many links", name);
}

static int read_member (struct import *im, const char *name, char **buf, size_t *len, berr **err)
{
  _cleanup_close_ int fd = open_member (im, name, err);
  if (fd < 0 || bfs_read_fd (fd, name, DOC_MAX, buf, len, err) < 0)
    return -1;
  return 0;
}

static int sha256_fd (int fd, char out[72], uint64_t *size, berr **err)
{
  EVP_MD_CTX *md = EVP_MD_CTX_new ();
  if (md == NULL || EVP_DigestInit_ex (md, EVP_sha256 (), NULL) != 1)
    {
      EVP_MD_CTX_free (md);
      return berr_make (err, EIO, "sha256 failed");
    }
  char buf[65536];
  ssize_t n;
  *size = 0;
  while ((n = read (fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0)
      {
        EVP_DigestUpdate (md, buf, (size_t)n);
        *size += (uint64_t)n;
      }
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dl = 0;
  int ok = n == 0 && EVP_DigestFinal_ex (md, d, &dl) == 1 && dl == 32;
  EVP_MD_CTX_free (md);
  if (!ok)
    return berr_sys (err, "read layer");
  memcpy (out, "sha256:", 7);
  for (unsigned i = 0; i < 32; i++)
    snprintf (out + 7 + 2 * i, 3, "%02x", d[i]);
  return 0;
}

/* The diff_id of a layer member: sha256 of its tar stream after gzip or zstd is undone (a plain
 * tar is hashed as is); *filter says which compression it had (ARCHIVE_FILTER_*). */
static int diff_digest_fd (int fd, char out[72], int *filter, berr **err)
{
  struct archive *a = archive_read_new ();
  EVP_MD_CTX *md = EVP_MD_CTX_new ();
  struct archive_entry *e = NULL;
  int r = -1;
  if (a == NULL || md == NULL || EVP_DigestInit_ex (md, EVP_sha256 (), NULL) != 1
      || archive_read_support_filter_gzip (a) != ARCHIVE_OK
      || archive_read_support_filter_zstd (a) != ARCHIVE_OK
      || archive_read_support_format_raw (a) != ARCHIVE_OK
      || archive_read_open_fd (a, fd, 1 << 16) != ARCHIVE_OK
      || archive_read_next_header (a, &e) != ARCHIVE_OK)
    goto out;
  char buf[65536];
  la_ssize_t n;
  while ((n = archive_read_data (a, buf, sizeof buf)) > 0)
    EVP_DigestUpdate (md, buf, (size_t)n);
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dl = 0;
  if (n < 0 || EVP_DigestFinal_ex (md, d, &dl) != 1 || dl != 32)
    goto out;
  memcpy (out, "sha256:", 7);
  for (unsigned i = 0; i < 32; i++)
    snprintf (out + 7 + 2 * i, 3, "%02x", d[i]);
  *filter = archive_filter_code (a, 0);
  r = 0;
out:
  if (r < 0)
    berr_make (err, EINVAL, "layer: %s",
               a && archive_error_string (a) ? archive_error_string (a) : "cannot read it");
  EVP_MD_CTX_free (md);
  archive_read_free (a);
  return r;
}

/* ---- Layers and images ----------------------------------------------------------------------- */

/* Stages, unpacks and commits the layer in member name, whose blob digest must be digest. */
static int import_layer (struct import *im, const char *name, const char *digest, berr **err)
{
  _cleanup_free_ char *dir = NULL;
  void *lock = NULL;
  int r = im->sink.layer_stage (im->sink.cls, digest, &dir, &lock, err);
  if (r != 0)
    return r < 0 ? -1 : 0;
  _cleanup_close_ int fd = open_member (im, name, err);
  struct img_unpack_result res = { 0 };
  if (fd < 0 || img_layer_unpack (fd, dir, &res, err) < 0)
    {
      im->sink.layer_abort (im->sink.cls, lock, dir);
      return berr_wrap (err, "layer `%.200s`", name);
    }
  return im->sink.layer_commit (im->sink.cls, lock, digest, dir, &res, err);
}

static int record (struct import *im, const char *ref, const char *digest, const char *manifest,
                   size_t mlen, const char *config, size_t clen, berr **err)
{
  if (st_image_commit (im->s, ref, digest, manifest, mlen, config, clen, err) < 0)
    return -1;
  if (ref && strv_append (&im->res->refs, ref) < 0)
    return oom (err);
  for (size_t i = 0; im->res->digests[i]; i++)
    if (strcmp (im->res->digests[i], digest) == 0)
      return 0;
  return strv_append (&im->res->digests, digest) < 0 ? oom (err) : 0;
}

/* A Docker schema 2 manifest for a docker-archive image (the archive has none). */
static char *docker_manifest (const char *config_digest, size_t config_len, char **digests,
                              uint64_t *sizes, const char **types)
{
  _cleanup_json_ cJSON *j = cJSON_CreateObject ();
  cJSON *layers = cJSON_AddArrayToObject (j, "layers"), *c = cJSON_AddObjectToObject (j, "config");
  if (j == NULL || layers == NULL || c == NULL || !cJSON_AddNumberToObject (j, "schemaVersion", 2)
      || !cJSON_AddStringToObject (j, "mediaType",
                                   "application/vnd.docker.distribution.manifest.v2+json")
      || !cJSON_AddStringToObject (c, "mediaType", "application/vnd.docker.container.image.v1+json")
      || !cJSON_AddNumberToObject (c, "size", (double)config_len)
      || !cJSON_AddStringToObject (c, "digest", config_digest))
    return NULL;
  for (size_t i = 0; digests[i]; i++)
    {
      cJSON *l = cJSON_CreateObject ();
      if (!cJSON_AddItemToArray (layers, l) || !cJSON_AddStringToObject (l, "mediaType", types[i])
          || !cJSON_AddNumberToObject (l, "size", (double)sizes[i])
          || !cJSON_AddStringToObject (l, "digest", digests[i]))
        return NULL;
    }
  return cJSON_PrintUnformatted (j);
}

/* The Docker schema 2 media type of a layer with this compression. */
static const char *docker_layer_type (int filter)
{
  switch (filter)
    {
    case ARCHIVE_FILTER_GZIP:
      return "application/vnd.docker.image.rootfs.diff.tar.gzip";
    case ARCHIVE_FILTER_ZSTD:
      return "application/vnd.docker.image.rootfs.diff.tar.zstd";
    default:
      return "application/vnd.docker.image.rootfs.diff.tar";
    }
}

/* Checks one docker-archive layer against its diff_id and imports it. `docker save` writes
 * uncompressed tars (blob digest = diff_id); other writers may gzip or zstd them, so the
 * diff_id is always computed over the decompressed stream, and the layer is stored under the
 * digest of the member's bytes as they are (what the manifest names). */
static int docker_layer (struct import *im, const char *name, const char *diff_id, char d[72],
                         uint64_t *size, const char **type, berr **err)
{
  char diff[72];
  int filter = ARCHIVE_FILTER_NONE;
  _cleanup_close_ int fd = open_member (im, name, err);
  if (fd < 0 || diff_digest_fd (fd, diff, &filter, err) < 0 || lseek (fd, 0, SEEK_SET) < 0
      || sha256_fd (fd, d, size, err) < 0)
    return berr_wrap (err, "layer `%.200s`", name);
  if (strcmp (diff, diff_id) != 0)
    return berr_make (err, EBADMSG,
                      "layer `%.200s`: uncompressed digest %s, but the config says %s", name, diff,
                      diff_id);
  *type = docker_layer_type (filter);
  return import_layer (im, name, d, err);
}

static int docker_layers (struct import *im, const struct img_archive_image *a,
                          const struct img_config *cfg, char ***digests, uint64_t **sizes,
                          const char ***types, berr **err)
{
  size_t n = strv_len (a->layers);
  if (strv_len (cfg->diff_ids) != n)
    return berr_make (err, EINVAL, "%zu layers but %zu diff_ids in the config", n,
                      strv_len (cfg->diff_ids));
  if ((*sizes = calloc (n, sizeof **sizes)) == NULL || (*types = calloc (n, sizeof **types)) == NULL
      || (*digests = calloc (1, sizeof (char *))) == NULL)
    return oom (err);
  for (size_t i = 0; i < n; i++)
    {
      char d[72];
      if (docker_layer (im, a->layers[i], cfg->diff_ids[i], d, &(*sizes)[i], &(*types)[i], err) < 0)
        return -1;
      if (strv_append (digests, d) < 0)
        return oom (err);
    }
  return 0;
}

static int docker_image (struct import *im, const struct img_archive_image *a, const char *ref,
                         berr **err)
{
  _cleanup_free_ char *config = NULL, *manifest = NULL;
  _cleanup_free_ uint64_t *sizes = NULL;
  _cleanup_free_ const char **types = NULL;
  _cleanup_strv_ char **digests = NULL;
  size_t clen = 0;
  char cdigest[72], mdigest[72];
  struct img_config *cfg = NULL;
  if (read_member (im, a->config, &config, &clen, err) < 0
      || st_sha256 (config, clen, cdigest, err) < 0
      || img_config_parse (config, clen, &cfg, err) < 0)
    return -1;
  int r = docker_layers (im, a, cfg, &digests, &sizes, &types, err);
  img_config_free (cfg);
  if (r < 0)
    return -1;
  if ((manifest = docker_manifest (cdigest, clen, digests, sizes, types)) == NULL)
    return oom (err);
  if (st_sha256 (manifest, strlen (manifest), mdigest, err) < 0)
    return -1;
  if (record (im, ref, mdigest, manifest, strlen (manifest), config, clen, err) < 0)
    return -1;
  for (size_t i = 0; a->repo_tags[i]; i++)
    {
      _cleanup_free_ char *canon = NULL;
      struct img_ref pr = { 0 };
      if (img_ref_parse (a->repo_tags[i], NULL, &pr, err) < 0)
        return berr_wrap (err, "RepoTags[%zu]", i);
      canon = img_ref_format (&pr);
      img_ref_clear (&pr);
      if (canon == NULL
          || record (im, canon, mdigest, manifest, strlen (manifest), config, clen, err) < 0)
        return canon ? -1 : oom (err);
    }
  return 0;
}

static int import_docker (struct import *im, const char *ref, berr **err)
{
  _cleanup_free_ char *json = NULL;
  size_t len = 0, n = 0;
  struct img_archive_image *v = NULL;
  if (read_member (im, "manifest.json", &json, &len, err) < 0
      || img_docker_archive_parse (json, len, &v, &n, err) < 0)
    return -1;
  int r = 0;
  for (size_t i = 0; r == 0 && i < n; i++)
    if ((r = docker_image (im, &v[i], i == 0 ? ref : NULL, err)) < 0)
      berr_wrap (err, "image %zu (`%.200s`)", i, v[i].config);
  img_archive_images_free (v, n);
  return r;
}

/* Reads blobs/sha256/<hex> and checks its digest and size. */
static int read_blob (struct import *im, const struct img_descriptor *d, char **buf, size_t *len,
                      berr **err)
{
  char name[96], got[72];
  snprintf (name, sizeof name, "blobs/sha256/%s", st_hex (d->digest));
  if (read_member (im, name, buf, len, err) < 0 || st_sha256 (*buf, *len, got, err) < 0)
    return -1;
  if (strcmp (got, d->digest) != 0 || (int64_t)*len != d->size)
    return berr_make (err, EBADMSG, "blob %s: digest %s and size %zu, expected size %lld",
                      d->digest, got, *len, (long long)d->size);
  return 0;
}

/* Imports one layer of an OCI layout unless it is present: its blob digest and size must be
 * the manifest's, its uncompressed digest the config's diff_id (as pulls check). */
static int oci_layer (struct import *im, const struct img_descriptor *d, const char *diff_id,
                      berr **err)
{
  char name[96], blob[72], diff[72];
  snprintf (name, sizeof name, "blobs/sha256/%s", st_hex (d->digest));
  int r = im->sink.layer_has (im->sink.cls, d->digest, err);
  if (r != 0)
    return r < 0 ? -1 : 0;
  uint64_t size = 0;
  int filter = 0;
  _cleanup_close_ int fd = open_member (im, name, err);
  if (fd < 0 || sha256_fd (fd, blob, &size, err) < 0)
    return berr_wrap (err, "layer %s", d->digest);
  if (strcmp (blob, d->digest) != 0 || (d->size >= 0 && size != (uint64_t)d->size))
    return berr_make (err, EBADMSG, "layer %s: digest mismatch: got %s (%llu bytes)", d->digest,
                      blob, (unsigned long long)size);
  if (lseek (fd, 0, SEEK_SET) < 0 || diff_digest_fd (fd, diff, &filter, err) < 0)
    return berr_wrap (err, "layer %s", d->digest);
  if (strcmp (diff, diff_id) != 0)
    return berr_make (err, EBADMSG, "layer %s: uncompressed content is %s, the config's diff_id %s",
                      d->digest, diff, diff_id);
  return import_layer (im, name, d->digest, err);
}

static int oci_image (struct import *im, const struct img_descriptor *desc, const char *ref,
                      berr **err)
{
  _cleanup_free_ char *body = NULL, *config = NULL;
  size_t len = 0, clen = 0;
  struct img_manifest *m = NULL;
  if (read_blob (im, desc, &body, &len, err) < 0
      || img_manifest_parse (NULL, body, len, &m, err) < 0)
    return -1;
  int r = 0;
  if (m->kind == IMG_MANIFEST_INDEX)
    {
      const struct img_descriptor *sel = NULL;
      r = img_index_select (m, "linux", img_host_arch (), NULL, &sel, err);
      if (r == 0)
        r = oci_image (im, sel, ref, err);
      img_manifest_free (m);
      return r;
    }
  struct img_config *cfg = NULL;
  r = read_blob (im, &m->config, &config, &clen, err);
  if (r == 0)
    r = img_config_parse (config, clen, &cfg, err);
  if (r == 0 && strv_len (cfg->diff_ids) != m->n_layers)
    r = berr_make (err, EINVAL, "%zu layers but %zu diff_ids in the config", m->n_layers,
                   strv_len (cfg->diff_ids));
  for (size_t i = 0; r == 0 && i < m->n_layers; i++)
    r = oci_layer (im, &m->layers[i], cfg->diff_ids[i], err);
  img_config_free (cfg);
  img_manifest_free (m);
  if (r < 0)
    return -1;
  return record (im, ref, desc->digest, body, len, config, clen, err);
}

/* A bare tag as OCI layouts write ref.name (`v1`): the tag grammar, no repository part. */
static bool bare_tag (const char *name)
{
  size_t n = strlen (name);
  if (n == 0 || n > 128 || name[0] == '.' || name[0] == '-')
    return false;
  return strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* The reference an index entry is recorded under (canonical, newly allocated), or NULL: ref.name
 * when it is a whole reference (`registry/repo:tag`, `repo:tag`); a bare tag on the repository
 * of ref (the name the caller gave) or else of io.containerd.image.name; nothing when a bare
 * tag has no repository to go with (the image is still recorded by digest). */
static int entry_ref (const struct img_layout_entry *e, const char *ref, char **out, berr **err)
{
  *out = NULL;
  if (e->ref_name == NULL)
    return 0;
  if (!bare_tag (e->ref_name))
    return st_canonical_ref (e->ref_name, out, err);
  const char *base = ref ? ref : e->image_name;
  if (base == NULL)
    return 0;
  struct img_ref r = { 0 };
  if (img_ref_parse (base, NULL, &r, err) < 0)
    return berr_wrap (err, "io.containerd.image.name");
  free (r.tag);
  free (r.digest);
  r.digest = NULL;
  r.tag = strdup (e->ref_name);
  *out = r.tag ? img_ref_format (&r) : NULL;
  img_ref_clear (&r);
  return *out ? 0 : oom (err);
}

static int import_oci (struct import *im, const char *ref, berr **err)
{
  _cleanup_free_ char *layout = NULL, *json = NULL;
  size_t len = 0, n = 0;
  struct img_layout_entry *v = NULL;
  if (read_member (im, "oci-layout", &layout, &len, err) < 0
      || img_oci_layout_check (layout, len, err) < 0
      || read_member (im, "index.json", &json, &len, err) < 0
      || img_oci_index_parse (json, len, &v, &n, err) < 0)
    return -1;
  int r = n == 0 ? berr_make (err, EINVAL, "index.json lists no image") : 0;
  for (size_t i = 0; r == 0 && i < n; i++)
    {
      _cleanup_free_ char *canon = NULL;
      if (entry_ref (&v[i], ref, &canon, err) < 0)
        r = -1;
      else if ((r = oci_image (im, &v[i].desc, canon, err)) == 0 && i == 0 && ref
               && (canon == NULL || strcmp (canon, ref) != 0))
        r = oci_image (im, &v[i].desc, ref, err);
      if (r < 0)
        berr_wrap (err, "image %s", v[i].desc.digest);
    }
  img_layout_entries_free (v, n);
  return r;
}

void img_import_result_clear (struct img_import_result *res)
{
  strv_free (res->digests);
  strv_free (res->refs);
  res->digests = res->refs = NULL;
}

static bool has_member (const struct import *im, const char *name)
{
  for (size_t i = 0; i < im->n; i++)
    if (strcmp (im->m[i].name, name) == 0)
      return true;
  return false;
}

static int import_run (struct import *im, int fd, const char *ref, berr **err)
{
  _cleanup_free_ char *dir = NULL;
  if (st_stage_dir (im->s, "import", &dir, err) < 0)
    return -1;
  im->dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r = im->dir_fd < 0 ? berr_sys (err, "open `%s`", dir) : read_members (im, fd, err);
  if (r == 0 && has_member (im, "manifest.json"))
    r = import_docker (im, ref, err);
  else if (r == 0 && has_member (im, "index.json"))
    r = import_oci (im, ref, err);
  else if (r == 0)
    r = berr_make (err, EINVAL,
                   "neither a docker-archive (manifest.json) nor an OCI layout "
                   "(index.json)");
  bfs_remove_tree (AT_FDCWD, dir, NULL);
  return r;
}

int img_store_import (struct img_store *s, int fd, const char *ref, struct img_import_result *res,
                      berr **err)
{
  struct import im = { .s = s, .dir_fd = -1, .res = res };
  *res = (struct img_import_result){ calloc (1, sizeof (char *)), calloc (1, sizeof (char *)) };
  if (res->digests == NULL || res->refs == NULL)
    {
      img_import_result_clear (res);
      return oom (err);
    }
  img_store_sink (s, &im.sink);
  _cleanup_free_ char *canon = NULL;
  int r = ref ? st_canonical_ref (ref, &canon, err) : 0;
  /* The shared staging lock marks import-XXXXXX as in progress for img_store_open. */
  _cleanup_close_ int slk = r < 0 ? -1 : st_staging_lock (s, LOCK_SH, err);
  if (r == 0 && slk >= 0)
    r = import_run (&im, fd, canon, err);
  else
    r = -1;
  if (im.dir_fd >= 0)
    close (im.dir_fd);
  for (size_t i = 0; i < im.n; i++)
    {
      free (im.m[i].name);
      free (im.m[i].link);
    }
  free (im.m);
  if (r < 0)
    {
      img_import_result_clear (res);
      return berr_wrap (err, "import");
    }
  return 0;
}
