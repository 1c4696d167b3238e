/* Fuzzes the manifest/index parser and platform selection: the first byte picks the registry's
 * Content-Type, the rest is the body. Never a crash or leak; what is accepted is well formed. */
#include "images/images.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const char *const content_types[] = {
  NULL,
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8",
  "application/json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
  "",
};

static void check_descriptor (const struct img_descriptor *d)
{
  if (d->media_type == NULL || !img_digest_valid (d->digest) || d->size < 0)
    __builtin_trap ();
}

static void exercise (const struct img_manifest *m)
{
  if (m->kind == IMG_MANIFEST_IMAGE)
    {
      check_descriptor (&m->config);
      for (size_t i = 0; i < m->n_layers; i++)
        check_descriptor (&m->layers[i]);
      return;
    }
  for (size_t i = 0; i < m->n_manifests; i++)
    check_descriptor (&m->manifests[i]);
  static const char *const platforms[][3] = {
    { "linux", "amd64", NULL },  { "linux", "arm64", "v8" },   { "linux", "arm", NULL },
    { "linux", "x86_64", NULL }, { "windows", "amd64", NULL },
  };
  for (size_t i = 0; i < sizeof platforms / sizeof platforms[0]; i++)
    {
      const struct img_descriptor *d = NULL;
      berr *err = NULL;
      if (img_index_select (m, platforms[i][0], platforms[i][1], platforms[i][2], &d, &err) == 0)
        check_descriptor (d);
      berr_free (&err);
    }
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size == 0)
    return 0;
  const char *ct = content_types[data[0] % (sizeof content_types / sizeof content_types[0])];
  struct img_manifest *m = NULL;
  berr *err = NULL;
  if (img_manifest_parse (ct, (const char *)data + 1, size - 1, &m, &err) == 0)
    {
      exercise (m);
      img_manifest_free (m);
    }
  berr_free (&err);
  return 0;
}
