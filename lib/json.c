/* JSON helpers: parse strictly, read typed fields with errors that name the field. */
#include "lib/json.h"

#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/strv.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int bjson_parse (const char *buf, size_t len, cJSON **out, berr **err)
{
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts (buf, len, &end, false);
  if (j == NULL)
    {
      const char *at = cJSON_GetErrorPtr ();
      size_t off = (at && at >= buf && at <= buf + len) ? (size_t)(at - buf) : 0;
      return berr_make (err, EINVAL, "malformed JSON near byte %zu", off);
    }
  for (; end && end < buf + len && *end; end++)
    if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r')
      {
        cJSON_Delete (j);
        return berr_make (err, EINVAL, "trailing data after JSON at byte %zu", (size_t)(end - buf));
      }
  *out = j;
  return 0;
}

int bjson_read_file (int dirfd, const char *path, size_t max, cJSON **out, berr **err)
{
  _cleanup_free_ char *buf = NULL;
  size_t len = 0;
  if (bfs_read_all (dirfd, path, max, &buf, &len, err) < 0)
    return -1;
  if (bjson_parse (buf, len, out, err) < 0)
    return berr_wrap (err, "parse `%s`", path);
  return 0;
}

int bjson_write_file (int dirfd, const char *path, const cJSON *json, mode_t mode, berr **err)
{
  _cleanup_free_ char *text = cJSON_PrintUnformatted (json);
  if (text == NULL)
    return berr_make (err, ENOMEM, "serialise `%s`", path);
  return bfs_write_atomic (dirfd, path, text, strlen (text), mode, err);
}

/* Looks a key up; NULL when missing or null. */
static const cJSON *lookup (const cJSON *obj, const char *key)
{
  const cJSON *it = cJSON_IsObject (obj) ? cJSON_GetObjectItemCaseSensitive (obj, key) : NULL;
  return (it == NULL || cJSON_IsNull (it)) ? NULL : it;
}

static int missing (const char *key, bool required, berr **err)
{
  return required ? berr_make (err, EINVAL, "`%s` is required", key) : 1;
}

int bjson_get_str (const cJSON *obj, const char *key, bool required, const char **out, berr **err)
{
  const cJSON *it = lookup (obj, key);
  if (it == NULL)
    return missing (key, required, err) < 0 ? -1 : 0;
  if (!cJSON_IsString (it))
    return berr_make (err, EINVAL, "`%s` must be a string", key);
  *out = it->valuestring;
  return 0;
}

int bjson_to_int (const cJSON *item, const char *what, int64_t min, int64_t max, int64_t *out,
                  berr **err)
{
  if (!cJSON_IsNumber (item))
    return berr_make (err, EINVAL, "`%s` must be a number", what);
  double d = item->valuedouble;
  /* Doubles hold integers exactly up to 2^53; beyond that a value cannot be trusted. */
  if (!isfinite (d) || d != floor (d) || fabs (d) > 9007199254740992.0)
    return berr_make (err, EINVAL, "`%s` must be an integer within +/-2^53", what);
  int64_t v = (int64_t)d;
  if (v < min || v > max)
    return berr_make (err, ERANGE, "`%s` is %lld, outside [%lld, %lld]", what, (long long)v,
                      (long long)min, (long long)max);
  *out = v;
  return 0;
}

int bjson_get_int (const cJSON *obj, const char *key, bool required, int64_t min, int64_t max,
                   int64_t *out, berr **err)
{
  const cJSON *it = lookup (obj, key);
  if (it == NULL)
    return missing (key, required, err) < 0 ? -1 : 0;
  return bjson_to_int (it, key, min, max, out, err);
}

int bjson_get_bool (const cJSON *obj, const char *key, bool required, bool *out, berr **err)
{
  const cJSON *it = lookup (obj, key);
  if (it == NULL)
    return missing (key, required, err) < 0 ? -1 : 0;
  if (!cJSON_IsBool (it))
    return berr_make (err, EINVAL, "`%s` must be a boolean", key);
  *out = cJSON_IsTrue (it);
  return 0;
}

int bjson_get_obj (const cJSON *obj, const char *key, bool required, const cJSON **out, berr **err)
{
  const cJSON *it = lookup (obj, key);
  if (it == NULL)
    return missing (key, required, err) < 0 ? -1 : 0;
  if (!cJSON_IsObject (it))
    return berr_make (err, EINVAL, "`%s` must be an object", key);
  *out = it;
  return 0;
}

int bjson_get_arr (const cJSON *obj, const char *key, bool required, const cJSON **out, berr **err)
{
  const cJSON *it = lookup (obj, key);
  if (it == NULL)
    return missing (key, required, err) < 0 ? -1 : 0;
  if (!cJSON_IsArray (it))
    return berr_make (err, EINVAL, "`%s` must be an array", key);
  *out = it;
  return 0;
}

int bjson_get_strv (const cJSON *obj, const char *key, bool required, char ***out, berr **err)
{
  const cJSON *arr = NULL;
  if (bjson_get_arr (obj, key, required, &arr, err) < 0)
    return -1;
  if (arr == NULL)
    return 0;
  _cleanup_strv_ char **v = calloc (1, sizeof *v);
  if (v == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  const cJSON *it;
  cJSON_ArrayForEach (it, arr)
  {
    if (!cJSON_IsString (it))
      return berr_make (err, EINVAL, "`%s` must be an array of strings", key);
    if (strv_append (&v, it->valuestring) < 0)
      return berr_make (err, ENOMEM, "out of memory");
  }
  strv_free (*out);
  *out = steal_ptr (&v);
  return 0;
}
