/* Registry documents: real-world-shaped OCI/Docker manifests, indexes and image configs parse
 * into the right fields, platform selection picks the right entry, and each kind of malformed
 * or unsupported document is rejected with an error naming what is wrong. */
#include "images/images.h"
#include "lib/cleanup.h"
#include "lib/strv.h"

#include "tests/support/support.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H(c) c c c c c c c c
#define DG(c) "sha256:" H (c) H (c) H (c) H (c) H (c) H (c) H (c) H (c)
#define D_CONFIG DG ("c")
#define D_L1 DG ("1")
#define D_L2 DG ("2")
#define D_L3 DG ("3")
#define D_AMD64 DG ("a")
#define D_ARM64 DG ("b")
#define D_ARMV7 DG ("d")
#define D_ARMV6 DG ("e")
#define D_ATTEST DG ("f")
#define D_WIN DG ("0")

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

static const char oci_manifest[]
    = "{\n"
      "  \"schemaVersion\": 2,\n"
      "  \"mediaType\": \"" MT_OCI_MANIFEST "\",\n"
      "  \"config\": {\n"
      "    \"mediaType\": \"application/vnd.oci.image.config.v1+json\",\n"
      "    \"digest\": \"" D_CONFIG "\",\n"
      "    \"size\": 1469\n"
      "  },\n"
      "  \"layers\": [\n"
      "    {\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\",\n"
      "     \"digest\": \"" D_L1 "\", \"size\": 2222639},\n"
      "    {\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+zstd\",\n"
      "     \"digest\": \"" D_L2 "\", \"size\": 32,\n"
      "     \"annotations\": {\"org.example\": \"ignored\"}},\n"
      "    {\"mediaType\": \"application/vnd.oci.image.layer.v1.tar\",\n"
      "     \"digest\": \"" D_L3 "\", \"size\": 0}\n"
      "  ],\n"
      "  \"annotations\": {\"org.opencontainers.image.created\": "
      "\"2026-01-01T00:00:00Z\"}\n"
      "}\n";

static const char docker_manifest[]
    = "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\","
      "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
      "\"size\":7023,\"digest\":\"" D_CONFIG "\"},"
      "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
      "\"size\":32654,\"digest\":\"" D_L1 "\"},"
      "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
      "\"size\":16724,\"digest\":\"" D_L2 "\"}]}";

/* Shaped like a buildx multi-platform push: an attestation manifest rides along. */
static const char oci_index[]
    = "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":["
      "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D_AMD64 "\",\"size\":1035,"
      "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
      "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D_ARM64 "\",\"size\":1035,"
      "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
      "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D_ARMV7 "\",\"size\":1035,"
      "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}},"
      "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D_ARMV6 "\",\"size\":1035,"
      "\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v6\"}},"
      "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D_ATTEST "\",\"size\":566,"
      "\"annotations\":{\"vnd.docker.reference.digest\":\"" D_AMD64 "\","
      "\"vnd.docker.reference.type\":\"attestation-manifest\"},"
      "\"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"}},"
      "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" D_WIN "\",\"size\":1035,"
      "\"platform\":{\"architecture\":\"amd64\",\"os\":\"windows\","
      "\"os.version\":\"10.0.20348.2227\"}}]}";

static const char docker_list[]
    = "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_LIST "\",\"manifests\":["
      "{\"mediaType\":\"" MT_DOCKER_MANIFEST "\",\"size\":527,\"digest\":\"" D_ARM64 "\","
      "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}},"
      "{\"mediaType\":\"" MT_DOCKER_MANIFEST "\",\"size\":527,\"digest\":\"" D_AMD64 "\","
      "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\",\"features\":[]}}]}";

static struct img_manifest *parse_ok (const char *ct, const char *body)
{
  struct img_manifest *m = NULL;
  berr *err = NULL;
  if (img_manifest_parse (ct, body, strlen (body), &m, &err) < 0)
    ck_abort_msg ("manifest rejected: %s", err->msg);
  return m;
}

static void assert_descriptor (const struct img_descriptor *d, const char *mt, const char *digest,
                               int64_t size)
{
  ck_assert_str_eq (d->media_type, mt);
  ck_assert_str_eq (d->digest, digest);
  ck_assert_int_eq (d->size, size);
}

START_TEST (test_oci_manifest_gives_config_and_layers_in_order)
{
  struct img_manifest *m = parse_ok (NULL, oci_manifest);
  ck_assert_int_eq (m->kind, IMG_MANIFEST_IMAGE);
  ck_assert_str_eq (m->media_type, MT_OCI_MANIFEST);
  assert_descriptor (&m->config, "application/vnd.oci.image.config.v1+json", D_CONFIG, 1469);
  ck_assert_uint_eq (m->n_layers, 3);
  assert_descriptor (&m->layers[0], "application/vnd.oci.image.layer.v1.tar+gzip", D_L1, 2222639);
  assert_descriptor (&m->layers[1], "application/vnd.oci.image.layer.v1.tar+zstd", D_L2, 32);
  assert_descriptor (&m->layers[2], "application/vnd.oci.image.layer.v1.tar", D_L3, 0);
  ck_assert_ptr_null (m->layers[0].os);
  ck_assert_uint_eq (m->n_manifests, 0);
  img_manifest_free (m);
}
END_TEST

START_TEST (test_docker_schema2_manifest_with_its_content_type)
{
  struct img_manifest *m = parse_ok (MT_DOCKER_MANIFEST "; charset=utf-8", docker_manifest);
  ck_assert_int_eq (m->kind, IMG_MANIFEST_IMAGE);
  ck_assert_str_eq (m->media_type, MT_DOCKER_MANIFEST);
  assert_descriptor (&m->config, "application/vnd.docker.container.image.v1+json", D_CONFIG, 7023);
  ck_assert_uint_eq (m->n_layers, 2);
  assert_descriptor (&m->layers[1], "application/vnd.docker.image.rootfs.diff.tar.gzip", D_L2,
                     16724);
  img_manifest_free (m);
}
END_TEST

START_TEST (test_content_type_wins_over_the_body_and_generic_types_defer_to_it)
{
  /* The registry says Docker schema 2; the body claims OCI: the header decides. */
  struct img_manifest *m = parse_ok (MT_DOCKER_MANIFEST, oci_manifest);
  ck_assert_str_eq (m->media_type, MT_DOCKER_MANIFEST);
  ck_assert_int_eq (m->kind, IMG_MANIFEST_IMAGE);
  img_manifest_free (m);
  m = parse_ok ("Application/JSON", oci_index);
  ck_assert_str_eq (m->media_type, MT_OCI_INDEX);
  ck_assert_int_eq (m->kind, IMG_MANIFEST_INDEX);
  img_manifest_free (m);
  /* A header naming an index makes an image manifest body fail as an index. */
  struct img_manifest *bad = NULL;
  berr *err = NULL;
  ck_assert_int_lt (
      img_manifest_parse (MT_OCI_INDEX, oci_manifest, strlen (oci_manifest), &bad, &err), 0);
  ck_assert_str_eq (err->msg, "manifest: `manifests` is required");
  ck_assert_ptr_null (bad);
  berr_free (&err);
}
END_TEST

START_TEST (test_oci_documents_without_media_type_are_told_apart_by_their_fields)
{
  static const char idx[] = "{\"schemaVersion\":2,\"manifests\":[]}";
  static const char man[] = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/"
                            "vnd.oci.image.config.v1+json\","
                            "\"digest\":\"" D_CONFIG "\",\"size\":2},\"layers\":[]}";
  struct img_manifest *m = parse_ok (NULL, idx);
  ck_assert_int_eq (m->kind, IMG_MANIFEST_INDEX);
  ck_assert_str_eq (m->media_type, MT_OCI_INDEX);
  ck_assert_uint_eq (m->n_manifests, 0);
  img_manifest_free (m);
  m = parse_ok ("", man);
  ck_assert_int_eq (m->kind, IMG_MANIFEST_IMAGE);
  ck_assert_str_eq (m->media_type, MT_OCI_MANIFEST);
  ck_assert_uint_eq (m->n_layers, 0);
  img_manifest_free (m);
}
END_TEST

START_TEST (test_index_entries_keep_their_platforms)
{
  struct img_manifest *m = parse_ok (MT_OCI_INDEX, oci_index);
  ck_assert_int_eq (m->kind, IMG_MANIFEST_INDEX);
  ck_assert_uint_eq (m->n_manifests, 6);
  assert_descriptor (&m->manifests[1], MT_OCI_MANIFEST, D_ARM64, 1035);
  ck_assert_str_eq (m->manifests[1].os, "linux");
  ck_assert_str_eq (m->manifests[1].architecture, "arm64");
  ck_assert_str_eq (m->manifests[1].variant, "v8");
  ck_assert_ptr_null (m->manifests[0].variant);
  ck_assert_str_eq (m->manifests[5].os, "windows");
  img_manifest_free (m);
  m = parse_ok (NULL, docker_list);
  ck_assert_str_eq (m->media_type, MT_DOCKER_LIST);
  ck_assert_uint_eq (m->n_manifests, 2);
  ck_assert_str_eq (m->manifests[1].architecture, "amd64");
  img_manifest_free (m);
}
END_TEST

static const char *select_digest (const struct img_manifest *m, const char *os, const char *arch,
                                  const char *variant)
{
  const struct img_descriptor *d = NULL;
  berr *err = NULL;
  if (img_index_select (m, os, arch, variant, &d, &err) < 0)
    ck_abort_msg ("no match for %s/%s/%s: %s", os, arch, variant ? variant : "", err->msg);
  return d->digest;
}

START_TEST (test_index_select_picks_os_architecture_and_variant)
{
  struct img_manifest *m = parse_ok (NULL, oci_index);
  ck_assert_str_eq (select_digest (m, "linux", "amd64", NULL), D_AMD64);
  ck_assert_str_eq (select_digest (m, "linux", "x86_64", NULL), D_AMD64);
  ck_assert_str_eq (select_digest (m, "windows", "amd64", NULL), D_WIN);
  ck_assert_str_eq (select_digest (m, "linux", "arm64", NULL), D_ARM64);
  ck_assert_str_eq (select_digest (m, "linux", "aarch64", "v8"), D_ARM64);
  ck_assert_str_eq (select_digest (m, "linux", "arm", "v6"), D_ARMV6);
  ck_assert_str_eq (select_digest (m, "linux", "arm", "v7"), D_ARMV7);
  ck_assert_str_eq (select_digest (m, "linux", "arm", NULL), D_ARMV7);
  img_manifest_free (m);
  /* A list whose arm64 entry names no variant still serves arm64/v8. */
  m = parse_ok (NULL, docker_list);
  ck_assert_str_eq (select_digest (m, "linux", "arm64", "v8"), D_ARM64);
  ck_assert_str_eq (select_digest (m, "linux", "amd64", NULL), D_AMD64);
  img_manifest_free (m);
}
END_TEST

START_TEST (test_index_select_without_a_match_lists_the_platforms_there_are)
{
  struct img_manifest *m = parse_ok (NULL, oci_index);
  const struct img_descriptor *d = NULL;
  berr *err = NULL;
  ck_assert_int_lt (img_index_select (m, "linux", "s390x", NULL, &d, &err), 0);
  ck_assert_str_eq (err->msg, "no image for linux/s390x in the index (it has linux/amd64, "
                              "linux/arm64/v8, linux/arm/v7, linux/arm/v6, windows/amd64)");
  berr_free (&err);
  ck_assert_int_lt (img_index_select (m, "linux", "arm64", "v9", &d, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "no image for linux/arm64/v9"));
  berr_free (&err);
  /* The attestation's unknown/unknown is not a platform one can ask for by accident. */
  ck_assert_int_lt (img_index_select (m, "unknown", "unknown", NULL, &d, &err), 0);
  berr_free (&err);
  ck_assert_ptr_null (d);
  img_manifest_free (m);

  m = parse_ok (NULL, "{\"schemaVersion\":2,\"manifests\":[]}");
  ck_assert_int_lt (img_index_select (m, "linux", "amd64", NULL, &d, &err), 0);
  ck_assert_str_eq (err->msg, "no image for linux/amd64 in the index (it has none)");
  berr_free (&err);
  img_manifest_free (m);

  m = parse_ok (NULL, oci_manifest);
  ck_assert_int_lt (img_index_select (m, "linux", "amd64", NULL, &d, &err), 0);
  ck_assert_str_eq (err->msg, "not an index or manifest list");
  berr_free (&err);
  img_manifest_free (m);
}
END_TEST

START_TEST (test_nested_index_entries_are_never_selected)
{
  static const char body[]
      = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_INDEX "\",\"digest\":\"" D_L1
        "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";
  struct img_manifest *m = parse_ok (NULL, body);
  const struct img_descriptor *d = NULL;
  berr *err = NULL;
  ck_assert_int_lt (img_index_select (m, "linux", "amd64", NULL, &d, &err), 0);
  berr_free (&err);
  img_manifest_free (m);
}
END_TEST

#define CFG                                                                                        \
  "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D_CONFIG  \
  "\",\"size\":1}"
#define LAYER(mt) "{\"mediaType\":\"" mt "\",\"digest\":\"" D_L1 "\",\"size\":1}"
#define MAN(layers) "{\"schemaVersion\":2," CFG ",\"layers\":[" layers "]}"

static const struct
{
  const char *content_type, *body, *error;
} bad_manifests[] = {
  { NULL, "{\"schemaVersion\":2,", "manifest: malformed JSON" },
  { NULL, "", "manifest: malformed JSON" },
  { NULL, "{\"schemaVersion\":2,\"manifests\":[]} x", "manifest: trailing data" },
  { NULL, "[]", "manifest: must be a JSON object" },
  { NULL, "{\"manifests\":[]}", "manifest: `schemaVersion` is required" },
  { NULL, "{\"schemaVersion\":\"2\",\"manifests\":[]}", "`schemaVersion` must be a number" },
  { NULL, "{\"schemaVersion\":1,\"manifests\":[]}", "`schemaVersion` is 1, only 2 is supported" },
  { NULL, "{\"schemaVersion\":2.5,\"manifests\":[]}", "`schemaVersion` must be an integer" },
  { "application/vnd.docker.distribution.manifest.v1+prettyjws", MAN (""),
    "Docker schema 1 manifests are not supported" },
  { "application/vnd.example.thing+json", MAN (""),
    "unsupported manifest media type `application/vnd.example.thing+json`" },
  { NULL, "{\"schemaVersion\":2,\"mediaType\":\"text/html\"}", "unsupported manifest media type" },
  { NULL, "{\"schemaVersion\":2,\"mediaType\":7}", "`mediaType` must be a string" },
  { MT_OCI_MANIFEST, "{\"schemaVersion\":2,\"layers\":[]}", "manifest: `config` is required" },
  { NULL, "{\"schemaVersion\":2,\"config\":[],\"layers\":[]}", "`config` must be an object" },
  { NULL, "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"size\":1},\"layers\":[]}",
    "manifest: `config`: `digest` is required" },
  { NULL,
    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:abc\",\"size\":1},"
    "\"layers\":[]}",
    "manifest: `config`: `digest` `sha256:abc` is not `sha256:` and 64 lowercase hex digits" },
  { NULL,
    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha512:abc\",\"size\":1},"
    "\"layers\":[]}",
    "`config`: `digest` `sha512:abc` is not" },
  { NULL,
    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D_CONFIG
    "\",\"size\":-1},\"layers\":[]}",
    "`config`: `size` is -1, outside [0," },
  { NULL,
    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D_CONFIG
    "\",\"size\":1e300},\"layers\":[]}",
    "`config`: `size` must be an integer" },
  { NULL, "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D_CONFIG "\",\"size\":1},\"layers\":[]}",
    "`config`: `mediaType` is required" },
  { NULL,
    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.cncf.helm.config.v1+json\","
    "\"digest\":\"" D_CONFIG "\",\"size\":1},\"layers\":[]}",
    "`config` has media type `application/vnd.cncf.helm.config.v1+json`, not an image config" },
  { NULL, "{\"schemaVersion\":2," CFG "}", "manifest: `layers` is required" },
  { NULL, "{\"schemaVersion\":2," CFG ",\"layers\":{}}", "manifest: `layers` must be an array" },
  { NULL, MAN ("1"), "manifest: `layers[0]`: must be an object" },
  { NULL,
    MAN (LAYER ("application/vnd.oci.image.layer.v1.tar") ",{\"mediaType\":\"x\",\"size\":1}"),
    "manifest: `layers[1]`: `digest` is required" },
  { NULL, MAN (LAYER ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")),
    "`layers[0]` is a foreign (non-distributable) layer "
    "`application/vnd.docker.image.rootfs.foreign.diff.tar.gzip`" },
  { NULL, MAN (LAYER ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")),
    "is a foreign (non-distributable) layer" },
  { NULL, MAN (LAYER ("application/vnd.oci.image.layer.v1.tar+bzip2")),
    "`layers[0]` has unsupported media type `application/vnd.oci.image.layer.v1.tar+bzip2`" },
  { NULL,
    MAN (LAYER ("application/vnd.oci.image.layer.v1.tar") ",{\"mediaType\":\"x\",\"digest\":\"" D_L2
                                                          "\",\"size\":true}"),
    "`layers[1]`: `size` must be a number" },
  { MT_OCI_INDEX, "{\"schemaVersion\":2}", "manifest: `manifests` is required" },
  { NULL,
    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D_L1
    "\",\"size\":1,\"platform\":\"linux/amd64\"}]}",
    "manifest: `manifests[0]`: `platform` must be an object" },
  { NULL,
    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D_L1
    "\",\"size\":1,\"platform\":{\"os\":\"linux\"}}]}",
    "manifest: `manifests[0]`: `platform`: `architecture` is required" },
  { NULL,
    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D_L1
    "\",\"size\":1,\"platform\":{\"os\":1,\"architecture\":\"amd64\"}}]}",
    "`platform`: `os` must be a string" },
  { NULL,
    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D_L1
    "\",\"size\":1,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":[]}}]}",
    "`platform`: `variant` must be a string" },
  { NULL,
    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"" D_L1
    "\",\"size\":1},{\"mediaType\":\"x\",\"digest\":\"" DG ("Z") "\",\"size\":1}]}",
    "manifest: `manifests[1]`: `digest`" },
};

START_TEST (test_malformed_manifest_is_rejected_with_a_message_naming_the_field)
{
  struct img_manifest *m = NULL;
  berr *err = NULL;
  const char *body = bad_manifests[_i].body;
  int rc = img_manifest_parse (bad_manifests[_i].content_type, body, strlen (body), &m, &err);
  ck_assert_msg (rc < 0, "accepted: %s", body);
  ck_assert_ptr_null (m);
  if (strstr (err->msg, bad_manifests[_i].error) == NULL)
    ck_abort_msg ("error `%s` does not say `%s`", err->msg, bad_manifests[_i].error);
  berr_free (&err);
}
END_TEST

/* A manifest with n layers, newly allocated. */
static char *manifest_with_layers (size_t n)
{
  char *s = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&s, &len);
  fputs ("{\"schemaVersion\":2," CFG ",\"layers\":[", f);
  for (size_t i = 0; i < n; i++)
    fprintf (f, "%s" LAYER ("application/vnd.oci.image.layer.v1.tar+gzip"), i ? "," : "");
  fputs ("]}", f);
  fclose (f);
  return s;
}

START_TEST (test_manifest_size_and_layer_count_are_bounded)
{
  struct img_manifest *m = NULL;
  berr *err = NULL;
  _cleanup_free_ char *ok = manifest_with_layers (256);
  ck_assert_int_eq (img_manifest_parse (NULL, ok, strlen (ok), &m, &err), 0);
  ck_assert_uint_eq (m->n_layers, 256);
  img_manifest_free (m);
  m = NULL;
  _cleanup_free_ char *many = manifest_with_layers (257);
  ck_assert_int_lt (img_manifest_parse (NULL, many, strlen (many), &m, &err), 0);
  ck_assert_str_eq (err->msg, "manifest: `layers` has 257 entries, more than the 256 supported");
  berr_free (&err);

  size_t big = (4u << 20) + 1;
  _cleanup_free_ char *huge = malloc (big);
  memset (huge, ' ', big);
  ck_assert_int_lt (img_manifest_parse (NULL, huge, big, &m, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "more than the 4 MiB limit"));
  ck_assert_ptr_null (m);
  berr_free (&err);
}
END_TEST

/* ---- Configs -------------------------------------------------------------------------- */

/* Shaped like what `docker build` writes for an nginx-style image. */
static const char docker_config[]
    = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2026-01-01T00:00:00Z\","
      "\"config\":{\"Hostname\":\"\",\"User\":\"101:101\","
      "\"ExposedPorts\":{\"80/tcp\":{},\"53/UDP\":{},\"8443\":{}},"
      "\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\","
      "\"NGINX_VERSION=1.25.3\",\"EMPTY=\"],"
      "\"Cmd\":[\"nginx\",\"-g\",\"daemon off;\"],"
      "\"Healthcheck\":{\"Test\":[\"CMD-SHELL\",\"curl -f http://localhost/ || exit 1\"],"
      "\"Interval\":30000000000,\"Timeout\":5000000000,\"StartPeriod\":10000000000,"
      "\"Retries\":3},"
      "\"Image\":\"sha256:" H ("9") H ("9") H ("9") H ("9") H ("9") H ("9") H ("9") H (
          "9") "\","
               "\"Volumes\":null,\"WorkingDir\":\"/srv\",\"Entrypoint\":[\"/"
               "docker-entrypoint.sh\"],"
               "\"OnBuild\":null,\"Labels\":{\"maintainer\":\"x\"},\"StopSignal\":\"SIGQUIT\"},"
               "\"history\":[{\"created\":\"2026-01-01T00:00:00Z\",\"created_by\":\"ADD file\"}],"
               "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D_L1 "\",\"" D_L2 "\"]}}";

static struct img_config *config_ok (const char *body)
{
  struct img_config *c = NULL;
  berr *err = NULL;
  if (img_config_parse (body, strlen (body), &c, &err) < 0)
    ck_abort_msg ("config rejected: %s", err->msg);
  return c;
}

static void assert_strv (char *const *v, const char *const *want)
{
  ck_assert_ptr_nonnull (v);
  size_t n = 0;
  for (; want[n]; n++)
    {
      ck_assert_ptr_nonnull (v[n]);
      ck_assert_str_eq (v[n], want[n]);
    }
  ck_assert_ptr_null (v[n]);
}

START_TEST (test_docker_config_fields_land_in_the_config)
{
  struct img_config *c = config_ok (docker_config);
  ck_assert_str_eq (c->os, "linux");
  ck_assert_str_eq (c->architecture, "amd64");
  assert_strv (c->entrypoint, (const char *[]){ "/docker-entrypoint.sh", NULL });
  assert_strv (c->cmd, (const char *[]){ "nginx", "-g", "daemon off;", NULL });
  assert_strv (
      c->env, (const char *[]){ "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                "NGINX_VERSION=1.25.3", "EMPTY=", NULL });
  ck_assert_str_eq (c->working_dir, "/srv");
  ck_assert_str_eq (c->user, "101:101");
  ck_assert_str_eq (c->stop_signal, "SIGQUIT");
  assert_strv (c->exposed_ports, (const char *[]){ "80/tcp", "53/udp", "8443/tcp", NULL });
  ck_assert_ptr_nonnull (c->healthcheck);
  assert_strv (c->healthcheck->test,
               (const char *[]){ "CMD-SHELL", "curl -f http://localhost/ || exit 1", NULL });
  ck_assert_int_eq (c->healthcheck->interval_ns, 30000000000LL);
  ck_assert_int_eq (c->healthcheck->timeout_ns, 5000000000LL);
  ck_assert_int_eq (c->healthcheck->start_period_ns, 10000000000LL);
  ck_assert_int_eq (c->healthcheck->retries, 3);
  assert_strv (c->diff_ids, (const char *[]){ D_L1, D_L2, NULL });
  img_config_free (c);
}
END_TEST

START_TEST (test_minimal_oci_config_leaves_everything_unset)
{
  struct img_config *c = config_ok (
      "{\"architecture\":\"arm64\",\"variant\":\"v8\",\"os\":\"linux\",\"config\":null,"
      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
  ck_assert_str_eq (c->architecture, "arm64");
  ck_assert_ptr_null (c->entrypoint);
  ck_assert_ptr_null (c->cmd);
  ck_assert_ptr_null (c->env);
  ck_assert_ptr_null (c->working_dir);
  ck_assert_ptr_null (c->user);
  ck_assert_ptr_null (c->stop_signal);
  ck_assert_ptr_null (c->exposed_ports);
  ck_assert_ptr_null (c->healthcheck);
  ck_assert_ptr_nonnull (c->diff_ids);
  ck_assert_ptr_null (c->diff_ids[0]);
  img_config_free (c);
  c = config_ok ("{\"rootfs\":{\"diff_ids\":[\"" D_L3 "\"]},\"config\":{\"Env\":null,"
                 "\"Healthcheck\":{\"Test\":[]},\"ExposedPorts\":{}}}");
  ck_assert_ptr_null (c->os);
  ck_assert_ptr_null (c->env);
  ck_assert_ptr_null (c->healthcheck);
  ck_assert_ptr_nonnull (c->exposed_ports);
  ck_assert_ptr_null (c->exposed_ports[0]);
  img_config_free (c);
}
END_TEST

START_TEST (test_healthcheck_none_and_cmd_forms)
{
  struct img_config *c = config_ok ("{\"rootfs\":{\"diff_ids\":[]},\"config\":{\"Healthcheck\":"
                                    "{\"Test\":[\"NONE\"]}}}");
  ck_assert_ptr_nonnull (c->healthcheck);
  assert_strv (c->healthcheck->test, (const char *[]){ "NONE", NULL });
  ck_assert_int_eq (c->healthcheck->interval_ns, 0);
  img_config_free (c);
  c = config_ok ("{\"rootfs\":{\"diff_ids\":[]},\"config\":{\"Healthcheck\":"
                 "{\"Test\":[\"CMD\",\"/bin/check\",\"--quick\"],\"Retries\":0}}}");
  assert_strv (c->healthcheck->test, (const char *[]){ "CMD", "/bin/check", "--quick", NULL });
  img_config_free (c);
}
END_TEST

#define RF "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}"
#define WITH_CONFIG(x) "{" RF ",\"config\":{" x "}}"

static const struct
{
  const char *body, *error;
} bad_configs[] = {
  { "{", "image config: malformed JSON" },
  { "[]", "image config: must be a JSON object" },
  { "{\"os\":\"linux\"}", "image config: `rootfs` is required" },
  { "{\"rootfs\":[]}", "image config: `rootfs` must be an object" },
  { "{\"rootfs\":{}}", "image config: `rootfs`: `diff_ids` is required" },
  { "{\"rootfs\":{\"diff_ids\":\"" D_L1 "\"}}", "`rootfs`: `diff_ids` must be an array" },
  { "{\"rootfs\":{\"diff_ids\":[1]}}", "`rootfs`: `diff_ids` must be an array of strings" },
  { "{\"rootfs\":{\"diff_ids\":[\"" D_L1 "\",\"sha256:xyz\"]}}",
    "image config: `rootfs`: `diff_ids[1]` `sha256:xyz` is not a sha256 digest" },
  { "{\"rootfs\":{\"type\":\"snapshot\",\"diff_ids\":[]}}",
    "`rootfs`: `type` is `snapshot`, not `layers`" },
  { "{" RF ",\"os\":1}", "image config: `os` must be a string" },
  { "{" RF ",\"architecture\":{}}", "`architecture` must be a string" },
  { "{" RF ",\"config\":\"x\"}", "image config: `config` must be an object" },
  { WITH_CONFIG ("\"Cmd\":\"nginx\""), "image config: `config`: `Cmd` must be an array" },
  { WITH_CONFIG ("\"Entrypoint\":[\"a\",1]"),
    "`config`: `Entrypoint` must be an array of strings" },
  { WITH_CONFIG ("\"Env\":{}"), "`config`: `Env` must be an array" },
  { WITH_CONFIG ("\"Env\":[\"A=1\",\"NOEQUALS\"]"),
    "`config`: `Env[1]` `NOEQUALS` is not KEY=VALUE" },
  { WITH_CONFIG ("\"Env\":[\"=1\"]"), "`Env[0]` `=1` is not KEY=VALUE" },
  { WITH_CONFIG ("\"WorkingDir\":5"), "`config`: `WorkingDir` must be a string" },
  { WITH_CONFIG ("\"User\":true"), "`config`: `User` must be a string" },
  { WITH_CONFIG ("\"StopSignal\":15"), "`config`: `StopSignal` must be a string" },
  { WITH_CONFIG ("\"ExposedPorts\":[\"80/tcp\"]"), "`config`: `ExposedPorts` must be an object" },
  { WITH_CONFIG ("\"ExposedPorts\":{\"http/tcp\":{}}"),
    "`config`: `ExposedPorts` key `http/tcp` is not PORT[/tcp|udp|sctp]" },
  { WITH_CONFIG ("\"ExposedPorts\":{\"70000/tcp\":{}}"), "key `70000/tcp` is not PORT" },
  { WITH_CONFIG ("\"ExposedPorts\":{\"0/tcp\":{}}"), "key `0/tcp` is not PORT" },
  { WITH_CONFIG ("\"ExposedPorts\":{\"80/icmp\":{}}"), "key `80/icmp` is not PORT" },
  { WITH_CONFIG ("\"ExposedPorts\":{\"80/tcp\":1}"), "`ExposedPorts` values must be objects" },
  { WITH_CONFIG ("\"Healthcheck\":[]"), "`config`: `Healthcheck` must be an object" },
  { WITH_CONFIG ("\"Healthcheck\":{\"Test\":\"curl\"}"),
    "`config`: `Healthcheck`: `Test` must be an array" },
  { WITH_CONFIG ("\"Healthcheck\":{\"Test\":[\"WHAT\",\"x\"]}"),
    "`config`: `Healthcheck`: `Test` must be [\"NONE\"], [\"CMD\", args...] or" },
  { WITH_CONFIG ("\"Healthcheck\":{\"Test\":[\"CMD-SHELL\"]}"), "`Test` must be" },
  { WITH_CONFIG ("\"Healthcheck\":{\"Test\":[\"CMD\"]}"), "`Test` must be" },
  { WITH_CONFIG ("\"Healthcheck\":{\"Test\":[\"NONE\",\"x\"]}"), "`Test` must be" },
  { WITH_CONFIG ("\"Healthcheck\":{\"Test\":[\"NONE\"],\"Interval\":-1}"),
    "`config`: `Healthcheck`: `Interval` is -1, outside [0," },
  { WITH_CONFIG ("\"Healthcheck\":{\"Test\":[\"NONE\"],\"Timeout\":\"5s\"}"),
    "`Healthcheck`: `Timeout` must be a number" },
  { WITH_CONFIG ("\"Healthcheck\":{\"Test\":[\"NONE\"],\"StartPeriod\":0.5}"),
    "`Healthcheck`: `StartPeriod` must be an integer" },
  { WITH_CONFIG ("\"Healthcheck\":{\"Test\":[\"NONE\"],\"Retries\":4294967296}"),
    "`Healthcheck`: `Retries` is 4294967296, outside [0, 2147483647]" },
};

START_TEST (test_malformed_config_is_rejected_with_a_message_naming_the_field)
{
  struct img_config *c = NULL;
  berr *err = NULL;
  const char *body = bad_configs[_i].body;
  int rc = img_config_parse (body, strlen (body), &c, &err);
  ck_assert_msg (rc < 0, "accepted: %s", body);
  ck_assert_ptr_null (c);
  if (strstr (err->msg, bad_configs[_i].error) == NULL)
    ck_abort_msg ("error `%s` does not say `%s`", err->msg, bad_configs[_i].error);
  berr_free (&err);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("images_manifest");
  TCase *tc = tcase_create ("manifest");
  tcase_add_test (tc, test_oci_manifest_gives_config_and_layers_in_order);
  tcase_add_test (tc, test_docker_schema2_manifest_with_its_content_type);
  tcase_add_test (tc, test_content_type_wins_over_the_body_and_generic_types_defer_to_it);
  tcase_add_test (tc, test_oci_documents_without_media_type_are_told_apart_by_their_fields);
  tcase_add_test (tc, test_index_entries_keep_their_platforms);
  tcase_add_test (tc, test_index_select_picks_os_architecture_and_variant);
  tcase_add_test (tc, test_index_select_without_a_match_lists_the_platforms_there_are);
  tcase_add_test (tc, test_nested_index_entries_are_never_selected);
  tcase_add_loop_test (tc, test_malformed_manifest_is_rejected_with_a_message_naming_the_field, 0,
                       (int)ARRAY_SIZE (bad_manifests));
  tcase_add_test (tc, test_manifest_size_and_layer_count_are_bounded);
  tcase_add_test (tc, test_docker_config_fields_land_in_the_config);
  tcase_add_test (tc, test_minimal_oci_config_leaves_everything_unset);
  tcase_add_test (tc, test_healthcheck_none_and_cmd_forms);
  tcase_add_loop_test (tc, test_malformed_config_is_rejected_with_a_message_naming_the_field, 0,
                       (int)ARRAY_SIZE (bad_configs));
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
