/* Request pieces every ECS action shares: resource tags and the opaque pagination token. */
#include "controlplane/internal.h"

#include "lib/cleanup.h"
#include "lib/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TAGS 50

int cp_fail_oom (cp_fault *fault)
{
  return cp_fail (fault, "ServerException", "Server error: out of memory.");
}

/* Tags as for every ECS resource: at most 50, keys 1-128, values at most 256, no aws: prefix. */
int cp_tags_parse (const cJSON *tags, char **out, cp_fault *fault)
{
  const cJSON *t;
  _cleanup_json_ cJSON *norm = cJSON_CreateArray ();
  if (norm == NULL)
    return cp_fail_oom (fault);
  if (tags && !cJSON_IsNull (tags) && !cJSON_IsArray (tags))
    return cp_fail (fault, "SerializationException", "'tags' must be a list.");
  if (cJSON_GetArraySize (tags) > MAX_TAGS)
    return cp_fail (fault, "InvalidParameterException", "A resource can have at most %d tags.",
                    MAX_TAGS);
  cJSON_ArrayForEach (t, tags)
  {
    const cJSON *k = cJSON_GetObjectItemCaseSensitive (t, "key");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive (t, "value");
    if (!cJSON_IsObject (t) || (k && !cJSON_IsString (k))
        || (v && !cJSON_IsNull (v) && !cJSON_IsString (v)))
      return cp_fail (fault, "SerializationException",
                      "Each tag must be an object with string 'key' and 'value'.");
    const char *key = cJSON_IsString (k) ? k->valuestring : NULL;
    const char *value = cJSON_IsString (v) ? v->valuestring : "";
    if (key == NULL || strlen (key) < 1 || strlen (key) > 128 || strlen (value) > 256)
      return cp_fail (fault, "InvalidParameterException",
                      "Tag keys must have 1 to 128 characters and values at most 256.");
    if (strncasecmp (key, "aws:", 4) == 0)
      return cp_fail (fault, "InvalidParameterException",
                      "Tag keys starting with 'aws:' are reserved.");
    cJSON *o = cJSON_CreateObject ();
    if (o == NULL || !cJSON_AddItemToArray (norm, o) || !cJSON_AddStringToObject (o, "key", key)
        || !cJSON_AddStringToObject (o, "value", value))
      return cp_fail_oom (fault);
  }
  return (*out = cJSON_PrintUnformatted (norm)) ? 0 : cp_fail_oom (fault);
}

/* nextToken is the last key of the previous page in hex: opaque to clients, checkable here. */
int cp_token_add (cJSON *res, const char *last, cp_fault *fault)
{
  size_t n = strlen (last);
  _cleanup_free_ char *token = malloc (2 * n + 1);
  if (token == NULL)
    return cp_fail_oom (fault);
  for (size_t i = 0; i < n; i++)
    snprintf (token + 2 * i, 3, "%02x", (unsigned char)last[i]);
  token[2 * n] = '\0';
  return cJSON_AddStringToObject (res, "nextToken", token) ? 0 : cp_fail_oom (fault);
}

int cp_token_decode (const char *token, char *out, size_t size, cp_fault *fault)
{
  static const char hex[] = "0123456789abcdef";
  size_t n = strlen (token);
  if (n == 0 || n % 2 != 0 || n / 2 >= size)
    return cp_fail (fault, "InvalidParameterException", "Invalid nextToken.");
  for (size_t i = 0; i < n; i += 2)
    {
      const char *hi = strchr (hex, token[i]), *lo = strchr (hex, token[i + 1]);
      if (hi == NULL || lo == NULL || *hi == '\0' || *lo == '\0')
        return cp_fail (fault, "InvalidParameterException", "Invalid nextToken.");
      out[i / 2] = (char)((hi - hex) * 16 + (lo - hex));
    }
  out[n / 2] = '\0';
  if (strlen (out) != n / 2) /* an embedded NUL */
    return cp_fail (fault, "InvalidParameterException", "Invalid nextToken.");
  return 0;
}
