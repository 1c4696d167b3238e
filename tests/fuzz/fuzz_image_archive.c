/* Fuzzes the parsers of untrusted image archive metadata and of the store's own records: the
 * first byte picks docker-archive manifest.json, OCI index.json, oci-layout or image.json. An
 * accepted docker manifest names only relative members without `..`. */
#include "images/images.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void check_member (const char *name)
{
  if (name == NULL || name[0] == '/' || strcmp (name, "..") == 0 || strncmp (name, "../", 3) == 0
      || strstr (name, "/../") != NULL)
    __builtin_trap ();
  size_t n = strlen (name);
  if (n >= 3 && strcmp (name + n - 3, "/..") == 0)
    __builtin_trap ();
}

static void docker (const char *s, size_t n, berr **err)
{
  struct img_archive_image *v = NULL;
  size_t count = 0;
  if (img_docker_archive_parse (s, n, &v, &count, err) < 0)
    return;
  for (size_t i = 0; i < count; i++)
    {
      check_member (v[i].config);
      if (v[i].layers[0] == NULL || v[i].repo_tags == NULL)
        __builtin_trap ();
      for (size_t k = 0; v[i].layers[k]; k++)
        check_member (v[i].layers[k]);
    }
  img_archive_images_free (v, count);
}

static void index_json (const char *s, size_t n, berr **err)
{
  struct img_layout_entry *v = NULL;
  size_t count = 0;
  if (img_oci_index_parse (s, n, &v, &count, err) < 0)
    return;
  for (size_t i = 0; i < count; i++)
    if (!img_digest_valid (v[i].desc.digest))
      __builtin_trap ();
  img_layout_entries_free (v, count);
}

static void record (const char *s, size_t n, berr **err)
{
  struct img_store_image *im = NULL;
  if (img_store_record_parse (s, n, &im, err) < 0)
    return;
  if (!img_digest_valid (im->digest) || im->layers[0] == NULL)
    __builtin_trap ();
  for (size_t i = 0; im->layers[i]; i++)
    if (!img_digest_valid (im->layers[i]))
      __builtin_trap ();
  img_store_image_free (im);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  berr *err = NULL;
  const char *s = (const char *)data + 1;
  size_t n = size - 1;
  switch (data[0] % 4)
    {
    case 0:
      docker (s, n, &err);
      break;
    case 1:
      index_json (s, n, &err);
      break;
    case 2:
      img_oci_layout_check (s, n, &err);
      break;
    default:
      record (s, n, &err);
      break;
    }
  berr_free (&err);
  return 0;
}
