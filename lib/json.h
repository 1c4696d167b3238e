/* Typed access to JSON over cJSON: every getter names the key it rejects and why. */
#ifndef BERTH_LIB_JSON_H
#define BERTH_LIB_JSON_H

#include "lib/error.h"

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Parses exactly one JSON value (trailing bytes other than whitespace are an error). */
int bjson_parse (const char *buf, size_t len, cJSON **out, berr **err);

/* Reads and parses a file of at most max bytes. */
int bjson_read_file (int dirfd, const char *path, size_t max, cJSON **out, berr **err);

/* Serialises compactly and replaces dirfd/path atomically (see bfs_write_atomic). */
int bjson_write_file (int dirfd, const char *path, const cJSON *json, mode_t mode, berr **err);

/* Getters. A missing key (or JSON null) is an error only when required; then *out is left
 * untouched so callers can preset defaults. A present key of the wrong type is always an error. */
int bjson_get_str (const cJSON *obj, const char *key, bool required, const char **out, berr **err);
int bjson_get_int (const cJSON *obj, const char *key, bool required, int64_t min, int64_t max,
                   int64_t *out, berr **err);
int bjson_get_bool (const cJSON *obj, const char *key, bool required, bool *out, berr **err);
int bjson_get_obj (const cJSON *obj, const char *key, bool required, const cJSON **out, berr **err);
int bjson_get_arr (const cJSON *obj, const char *key, bool required, const cJSON **out, berr **err);
/* An array of strings as a newly allocated NULL-terminated vector (free with strv_free). */
int bjson_get_strv (const cJSON *obj, const char *key, bool required, char ***out, berr **err);

/* Checks an integral JSON number within [min, max]; what names the value in the error. */
int bjson_to_int (const cJSON *item, const char *what, int64_t min, int64_t max, int64_t *out,
                  berr **err);

static inline void bjson_deletep (cJSON **j)
{
  if (*j)
    cJSON_Delete (*j);
}
#define _cleanup_json_ __attribute__ ((cleanup (bjson_deletep)))

#endif
