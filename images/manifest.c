/* Registry documents: OCI and Docker schema 2 image manifests, OCI indexes and Docker manifest
 * lists (with platform selection), and image configs. All of it is untrusted network input. */
#include "images/images.h"

#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/strv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

/* Registries may refuse manifests over 4 MiB (distribution spec); so do we, before parsing. */
#define MANIFEST_MAX_BYTES (4u << 20)
/* More layers than overlayfs can stack in one mount is not an image we can run. */
#define MAX_LAYERS 256
#define MAX_INDEX_ENTRIES 4096
#define JSON_INT_MAX 9007199254740992LL /* 2^53, the most a JSON number holds exactly */

static void manifest_freep (struct img_manifest **m)
{
  img_manifest_free (*m);
}

static void config_freep (struct img_config **c)
{
  img_config_free (*c);
}

static int oom (berr **err)
{
  return berr_make (err, ENOMEM, "out of memory");
}

/* Copies an optional string field into *out (left NULL when absent). */
static int dup_str (const cJSON *obj, const char *key, bool required, char **out, berr **err)
{
  const char *v = NULL;
  if (bjson_get_str (obj, key, required, &v, err) < 0)
    return -1;
  if (v && (*out = strdup (v)) == NULL)
    return oom (err);
  return 0;
}

static bool is_image_manifest_type (const char *mt)
{
  return mt && (strcmp (mt, MT_OCI_MANIFEST) == 0 || strcmp (mt, MT_DOCKER_MANIFEST) == 0);
}

static bool is_index_type (const char *mt)
{
  return mt && (strcmp (mt, MT_OCI_INDEX) == 0 || strcmp (mt, MT_DOCKER_LIST) == 0);
}

/* Layer media types: 1 = a layer we unpack, -1 = foreign/non-distributable, 0 = unknown. */
static int layer_type_class (const char *mt)
{
  static const char *const ok[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
  };
  for (size_t i = 0; i < ARRAY_SIZE (ok); i++)
    if (strcmp (mt, ok[i]) == 0)
      return 1;
  if (strncmp (mt, "application/vnd.oci.image.layer.nondistributable.", 49) == 0
      || strncmp (mt, "application/vnd.docker.image.rootfs.foreign.", 44) == 0)
    return -1;
  return 0;
}

static void descriptor_clear (struct img_descriptor *d)
{
  free (d->media_type);
  free (d->digest);
  free (d->os);
  free (d->architecture);
  free (d->variant);
  memset (d, 0, sizeof *d);
}

static int parse_platform (const cJSON *j, struct img_descriptor *d, berr **err)
{
  const cJSON *p = NULL;
  if (bjson_get_obj (j, "platform", false, &p, err) < 0)
    return -1;
  if (p == NULL)
    return 0;
  if (dup_str (p, "os", true, &d->os, err) < 0
      || dup_str (p, "architecture", true, &d->architecture, err) < 0
      || dup_str (p, "variant", false, &d->variant, err) < 0)
    return berr_wrap (err, "`platform`");
  return 0;
}

/* A content descriptor: mediaType, a sha256 digest and a size, all required. */
static int parse_descriptor (const cJSON *j, bool with_platform, struct img_descriptor *d,
                             berr **err)
{
  if (!cJSON_IsObject (j))
    return berr_make (err, EINVAL, "must be an object");
  const char *digest = NULL;
  if (dup_str (j, "mediaType", true, &d->media_type, err) < 0
      || bjson_get_str (j, "digest", true, &digest, err) < 0
      || bjson_get_int (j, "size", true, 0, JSON_INT_MAX, &d->size, err) < 0)
    return -1;
  if (!img_digest_valid (digest))
    return berr_make (err, EINVAL, "`digest` `%.80s` is not `sha256:` and 64 lowercase hex digits",
                      digest);
  if ((d->digest = strdup (digest)) == NULL)
    return oom (err);
  return with_platform ? parse_platform (j, d, err) : 0;
}

static int parse_descriptor_array (const cJSON *obj, const char *key, size_t max,
                                   bool with_platform, struct img_descriptor **out, size_t *n,
                                   berr **err)
{
  const cJSON *arr = NULL;
  if (bjson_get_arr (obj, key, true, &arr, err) < 0)
    return -1;
  size_t count = (size_t)cJSON_GetArraySize (arr);
  if (count > max)
    return berr_make (err, EINVAL, "`%s` has %zu entries, more than the %zu supported", key, count,
                      max);
  *out = calloc (count ? count : 1, sizeof **out);
  if (*out == NULL)
    return oom (err);
  const cJSON *it;
  cJSON_ArrayForEach (it, arr)
  {
    /* Count as we go so a failure frees exactly what was filled. */
    struct img_descriptor *d = &(*out)[(*n)++];
    if (parse_descriptor (it, with_platform, d, err) < 0)
      return berr_wrap (err, "`%s[%zu]`", key, *n - 1);
  }
  return 0;
}

static int parse_image_manifest (const cJSON *j, struct img_manifest *m, berr **err)
{
  const cJSON *config = NULL;
  if (bjson_get_obj (j, "config", true, &config, err) < 0)
    return -1;
  if (parse_descriptor (config, false, &m->config, err) < 0)
    return berr_wrap (err, "`config`");
  const char *cmt = m->config.media_type;
  if (strcmp (cmt, MT_OCI_CONFIG) != 0 && strcmp (cmt, MT_DOCKER_CONFIG) != 0)
    return berr_make (err, EINVAL,
                      "`config` has media type `%.120s`, not an image config: this is not a "
                      "container image",
                      cmt);
  if (parse_descriptor_array (j, "layers", MAX_LAYERS, false, &m->layers, &m->n_layers, err) < 0)
    return -1;
  for (size_t i = 0; i < m->n_layers; i++)
    {
      int cls = layer_type_class (m->layers[i].media_type);
      if (cls < 0)
        return berr_make (err, ENOTSUP,
                          "`layers[%zu]` is a foreign (non-distributable) layer `%.120s`: such "
                          "layers are fetched from elsewhere and are not supported",
                          i, m->layers[i].media_type);
      if (cls == 0)
        return berr_make (err, ENOTSUP,
                          "`layers[%zu]` has unsupported media type `%.120s` (supported: tar, "
                          "tar+gzip, tar+zstd)",
                          i, m->layers[i].media_type);
    }
  return 0;
}

/* The media type that decides how to read the body: a specific Content-Type wins; a generic
 * one (or none) defers to the body's mediaType; a body with neither is an OCI 1.0 document,
 * whose mediaType was optional, told apart by having "manifests". */
static const char *choose_media_type (const char *content_type, const char *body_mt, const cJSON *j,
                                      char *buf, size_t bufsize)
{
  if (content_type)
    {
      size_t n = strcspn (content_type, "; \t");
      if (n >= bufsize)
        n = bufsize - 1;
      memcpy (buf, content_type, n);
      buf[n] = '\0';
      for (char *p = buf; *p; p++)
        *p = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
      if (*buf && strcmp (buf, "application/json") != 0
          && strcmp (buf, "application/octet-stream") != 0 && strcmp (buf, "text/plain") != 0)
        return buf;
    }
  if (body_mt)
    return body_mt;
  return cJSON_GetObjectItemCaseSensitive (j, "manifests") ? MT_OCI_INDEX : MT_OCI_MANIFEST;
}

static int check_media_type (const char *mt, berr **err)
{
  if (is_image_manifest_type (mt) || is_index_type (mt))
    return 0;
  if (strncmp (mt, "application/vnd.docker.distribution.manifest.v1", 47) == 0)
    return berr_make (err, ENOTSUP, "Docker schema 1 manifests are not supported");
  return berr_make (err, ENOTSUP, "unsupported manifest media type `%.120s`", mt);
}

static int manifest_from_json (const char *content_type, const cJSON *j, struct img_manifest *m,
                               berr **err)
{
  if (!cJSON_IsObject (j))
    return berr_make (err, EINVAL, "must be a JSON object");
  int64_t version = 0;
  const char *body_mt = NULL;
  if (bjson_get_int (j, "schemaVersion", true, INT64_MIN, INT64_MAX, &version, err) < 0
      || bjson_get_str (j, "mediaType", false, &body_mt, err) < 0)
    return -1;
  if (version != 2)
    return berr_make (err, ENOTSUP, "`schemaVersion` is %lld, only 2 is supported",
                      (long long)version);
  char buf[256];
  const char *mt = choose_media_type (content_type, body_mt, j, buf, sizeof buf);
  if (check_media_type (mt, err) < 0)
    return -1;
  if ((m->media_type = strdup (mt)) == NULL)
    return oom (err);
  if (is_index_type (mt))
    {
      m->kind = IMG_MANIFEST_INDEX;
      return parse_descriptor_array (j, "manifests", MAX_INDEX_ENTRIES, true, &m->manifests,
                                     &m->n_manifests, err);
    }
  m->kind = IMG_MANIFEST_IMAGE;
  return parse_image_manifest (j, m, err);
}

int img_manifest_parse (const char *content_type, const char *body, size_t len,
                        struct img_manifest **out, berr **err)
{
  if (len > MANIFEST_MAX_BYTES)
    return berr_make (err, EFBIG, "manifest: %zu bytes, more than the 4 MiB limit", len);
  _cleanup_json_ cJSON *j = NULL;
  if (bjson_parse (body, len, &j, err) < 0)
    return berr_wrap (err, "manifest");
  __attribute__ ((cleanup (manifest_freep))) struct img_manifest *m = calloc (1, sizeof *m);
  if (m == NULL)
    return oom (err);
  if (manifest_from_json (content_type, j, m, err) < 0)
    return berr_wrap (err, "manifest");
  *out = steal_ptr (&m);
  return 0;
}

void img_manifest_free (struct img_manifest *m)
{
  if (m == NULL)
    return;
  free (m->media_type);
  descriptor_clear (&m->config);
  for (size_t i = 0; i < m->n_layers; i++)
    descriptor_clear (&m->layers[i]);
  free (m->layers);
  for (size_t i = 0; i < m->n_manifests; i++)
    descriptor_clear (&m->manifests[i]);
  free (m->manifests);
  free (m);
}

/* ---- Platform selection ---------------------------------------------------------------- */

/* OCI names architectures as Go does; accept the kernel's names for the same thing. */
static const char *normalize_arch (const char *a)
{
  if (a == NULL)
    return "";
  if (strcmp (a, "x86_64") == 0 || strcmp (a, "x86-64") == 0)
    return "amd64";
  if (strcmp (a, "aarch64") == 0)
    return "arm64";
  return a;
}

/* An absent variant equals the architecture's baseline one (arm64 means arm64/v8). */
static const char *normalize_variant (const char *arch, const char *v)
{
  if (v && *v)
    return v;
  return strcmp (arch, "arm64") == 0 ? "v8" : "";
}

/* An image manifest with a platform. Attestations and signatures sit in indexes as
 * "unknown/unknown": they are not images to run. */
static bool is_platform_entry (const struct img_descriptor *d)
{
  return is_image_manifest_type (d->media_type) && d->os && d->architecture
         && strcmp (d->os, "unknown") != 0;
}

static bool platform_matches (const struct img_descriptor *d, const char *os, const char *arch,
                              const char *variant)
{
  if (!is_platform_entry (d))
    return false;
  if (strcmp (d->os, os) != 0 || strcmp (normalize_arch (d->architecture), arch) != 0)
    return false;
  return variant == NULL
         || strcmp (normalize_variant (arch, d->variant), normalize_variant (arch, variant)) == 0;
}

/* "linux/amd64, linux/arm64/v8" (at most 24 entries), newly allocated. */
static char *list_platforms (const struct img_manifest *index)
{
  char *s = NULL;
  size_t n = 0, shown = 0;
  FILE *f = open_memstream (&s, &n);
  if (f == NULL)
    return NULL;
  for (size_t i = 0; i < index->n_manifests; i++)
    {
      const struct img_descriptor *d = &index->manifests[i];
      if (!is_platform_entry (d))
        continue;
      if (shown++ == 24)
        {
          fputs (", ...", f);
          break;
        }
      fprintf (f, "%s%.40s/%.40s%s%.40s", shown > 1 ? ", " : "", d->os, d->architecture,
               d->variant ? "/" : "", d->variant ? d->variant : "");
    }
  if (shown == 0)
    fputs ("none", f);
  fclose (f);
  return s;
}

int img_index_select (const struct img_manifest *index, const char *os, const char *arch,
                      const char *variant, const struct img_descriptor **out, berr **err)
{
  if (index->kind != IMG_MANIFEST_INDEX)
    return berr_make (err, EINVAL, "not an index or manifest list");
  if (os == NULL || arch == NULL)
    return berr_make (err, EINVAL, "no platform given to select from the index");
  const char *want_arch = normalize_arch (arch);
  const struct img_descriptor *first = NULL;
  for (size_t i = 0; i < index->n_manifests; i++)
    {
      const struct img_descriptor *d = &index->manifests[i];
      if (!platform_matches (d, os, want_arch, variant))
        continue;
      /* Without a wanted variant, the baseline one is the safest pick; else the first. */
      if (variant != NULL
          || strcmp (normalize_variant (want_arch, d->variant), normalize_variant (want_arch, NULL))
                 == 0)
        {
          *out = d;
          return 0;
        }
      if (first == NULL)
        first = d;
    }
  if (first)
    {
      *out = first;
      return 0;
    }
  _cleanup_free_ char *have = list_platforms (index);
  return berr_make (err, ENOENT, "no image for %s/%s%s%s in the index (it has %s)", os, arch,
                    variant ? "/" : "", variant ? variant : "", have ? have : "?");
}

/* ---- Image configs --------------------------------------------------------------------- */

static int check_env (char *const *env, berr **err)
{
  for (size_t i = 0; env && env[i]; i++)
    if (env[i][0] == '=' || strchr (env[i], '=') == NULL)
      return berr_make (err, EINVAL, "`Env[%zu]` `%.80s` is not KEY=VALUE", i, env[i]);
  return 0;
}

/* "80/tcp", "53/udp", "132/sctp" or a bare port (TCP); returns the normalised form. */
static char *normalize_port (const char *key)
{
  size_t digits = strspn (key, "0123456789");
  if (digits == 0 || digits > 5)
    return NULL;
  long port = strtol (key, NULL, 10);
  if (port < 1 || port > 65535)
    return NULL;
  const char *proto = "tcp";
  if (key[digits] == '/')
    {
      proto = key + digits + 1;
      if (strcasecmp (proto, "tcp") != 0 && strcasecmp (proto, "udp") != 0
          && strcasecmp (proto, "sctp") != 0)
        return NULL;
    }
  else if (key[digits] != '\0')
    return NULL;
  char *s = NULL;
  if (asprintf (&s, "%ld/%s", port, proto) < 0)
    return NULL;
  for (char *p = s; *p; p++)
    *p = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
  return s;
}

static int parse_exposed_ports (const cJSON *cfg, char ***out, berr **err)
{
  const cJSON *ports = NULL;
  if (bjson_get_obj (cfg, "ExposedPorts", false, &ports, err) < 0)
    return -1;
  if (ports == NULL)
    return 0;
  _cleanup_strv_ char **v = calloc (1, sizeof *v);
  if (v == NULL)
    return oom (err);
  const cJSON *it;
  cJSON_ArrayForEach (it, ports)
  {
    if (!cJSON_IsObject (it) && !cJSON_IsNull (it))
      return berr_make (err, EINVAL, "`ExposedPorts` values must be objects");
    _cleanup_free_ char *p = normalize_port (it->string);
    if (p == NULL)
      return berr_make (err, EINVAL, "`ExposedPorts` key `%.40s` is not PORT[/tcp|udp|sctp]",
                        it->string);
    if (strv_append (&v, p) < 0)
      return oom (err);
  }
  *out = steal_ptr (&v);
  return 0;
}

static int parse_healthcheck (const cJSON *cfg, struct img_healthcheck **out, berr **err)
{
  const cJSON *hc = NULL;
  if (bjson_get_obj (cfg, "Healthcheck", false, &hc, err) < 0)
    return -1;
  if (hc == NULL)
    return 0;
  struct img_healthcheck h = { 0 };
  _cleanup_strv_ char **test = NULL;
  if (bjson_get_strv (hc, "Test", false, &test, err) < 0
      || bjson_get_int (hc, "Interval", false, 0, JSON_INT_MAX, &h.interval_ns, err) < 0
      || bjson_get_int (hc, "Timeout", false, 0, JSON_INT_MAX, &h.timeout_ns, err) < 0
      || bjson_get_int (hc, "StartPeriod", false, 0, JSON_INT_MAX, &h.start_period_ns, err) < 0
      || bjson_get_int (hc, "Retries", false, 0, INT32_MAX, &h.retries, err) < 0)
    return berr_wrap (err, "`Healthcheck`");
  /* An empty test inherits from a parent image, which a final image does not have: none. */
  if (test == NULL || test[0] == NULL)
    return 0;
  size_t n = strv_len (test);
  bool ok = (strcmp (test[0], "NONE") == 0 && n == 1) || (strcmp (test[0], "CMD") == 0 && n >= 2)
            || (strcmp (test[0], "CMD-SHELL") == 0 && n == 2);
  if (!ok)
    return berr_make (err, EINVAL,
                      "`Healthcheck`: `Test` must be [\"NONE\"], [\"CMD\", args...] or "
                      "[\"CMD-SHELL\", command]");
  if ((*out = malloc (sizeof **out)) == NULL)
    return oom (err);
  h.test = steal_ptr (&test);
  **out = h;
  return 0;
}

static int parse_container_config (const cJSON *j, struct img_config *c, berr **err)
{
  const cJSON *cfg = NULL;
  if (bjson_get_obj (j, "config", false, &cfg, err) < 0)
    return -1;
  if (cfg == NULL)
    return 0;
  if (bjson_get_strv (cfg, "Entrypoint", false, &c->entrypoint, err) < 0
      || bjson_get_strv (cfg, "Cmd", false, &c->cmd, err) < 0
      || bjson_get_strv (cfg, "Env", false, &c->env, err) < 0 || check_env (c->env, err) < 0
      || dup_str (cfg, "WorkingDir", false, &c->working_dir, err) < 0
      || dup_str (cfg, "User", false, &c->user, err) < 0
      || dup_str (cfg, "StopSignal", false, &c->stop_signal, err) < 0
      || parse_exposed_ports (cfg, &c->exposed_ports, err) < 0
      || parse_healthcheck (cfg, &c->healthcheck, err) < 0)
    return berr_wrap (err, "`config`");
  return 0;
}

static int parse_rootfs (const cJSON *j, struct img_config *c, berr **err)
{
  const cJSON *rootfs = NULL;
  const char *type = NULL;
  if (bjson_get_obj (j, "rootfs", true, &rootfs, err) < 0)
    return -1;
  if (bjson_get_str (rootfs, "type", false, &type, err) < 0
      || bjson_get_strv (rootfs, "diff_ids", true, &c->diff_ids, err) < 0)
    return berr_wrap (err, "`rootfs`");
  if (type && strcmp (type, "layers") != 0)
    return berr_make (err, EINVAL, "`rootfs`: `type` is `%.40s`, not `layers`", type);
  for (size_t i = 0; c->diff_ids[i]; i++)
    if (!img_digest_valid (c->diff_ids[i]))
      return berr_make (err, EINVAL, "`rootfs`: `diff_ids[%zu]` `%.80s` is not a sha256 digest", i,
                        c->diff_ids[i]);
  return 0;
}

int img_config_parse (const char *body, size_t len, struct img_config **out, berr **err)
{
  _cleanup_json_ cJSON *j = NULL;
  if (bjson_parse (body, len, &j, err) < 0)
    return berr_wrap (err, "image config");
  if (!cJSON_IsObject (j))
    return berr_make (err, EINVAL, "image config: must be a JSON object");
  __attribute__ ((cleanup (config_freep))) struct img_config *c = calloc (1, sizeof *c);
  if (c == NULL)
    return oom (err);
  if (dup_str (j, "os", false, &c->os, err) < 0
      || dup_str (j, "architecture", false, &c->architecture, err) < 0
      || parse_container_config (j, c, err) < 0 || parse_rootfs (j, c, err) < 0)
    return berr_wrap (err, "image config");
  *out = steal_ptr (&c);
  return 0;
}

void img_config_free (struct img_config *c)
{
  if (c == NULL)
    return;
  free (c->os);
  free (c->architecture);
  strv_free (c->entrypoint);
  strv_free (c->cmd);
  strv_free (c->env);
  free (c->working_dir);
  free (c->user);
  free (c->stop_signal);
  strv_free (c->exposed_ports);
  if (c->healthcheck)
    strv_free (c->healthcheck->test);
  free (c->healthcheck);
  strv_free (c->diff_ids);
  free (c);
}
