/* Request pieces every ECS action shares: resource tags and the opaque pagination token. */
#include "controlplane/internal.h"

#include "lib/cleanup.h"
#include "lib/json.h"

#include <inttypes.h>
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

static const cJSON *member (const cJSON *in, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (in, key);
  return v == NULL || cJSON_IsNull (v) ? NULL : v;
}

int cp_opt_str (const cJSON *in, const char *key, const char **out, cp_fault *fault)
{
  const cJSON *v = member (in, key);
  if (v == NULL)
    return 0;
  if (!cJSON_IsString (v))
    return cp_fail (fault, "SerializationException", "'%s' must be a string.", key);
  *out = v->valuestring;
  return 0;
}

int cp_opt_arr (const cJSON *in, const char *key, const cJSON **out, cp_fault *fault)
{
  const cJSON *v = member (in, key);
  if (v == NULL)
    return 0;
  if (!cJSON_IsArray (v))
    return cp_fail (fault, "SerializationException", "'%s' must be a list.", key);
  *out = v;
  return 0;
}

int cp_opt_obj (const cJSON *in, const char *key, const cJSON **out, cp_fault *fault)
{
  const cJSON *v = member (in, key);
  if (v == NULL)
    return 0;
  if (!cJSON_IsObject (v))
    return cp_fail (fault, "SerializationException", "'%s' must be a structure.", key);
  *out = v;
  return 0;
}

int cp_opt_bool (const cJSON *in, const char *key, bool *out, cp_fault *fault)
{
  const cJSON *v = member (in, key);
  if (v == NULL)
    return 0;
  if (!cJSON_IsBool (v))
    return cp_fail (fault, "SerializationException", "'%s' must be a boolean.", key);
  *out = cJSON_IsTrue (v);
  return 0;
}

int cp_opt_int (const cJSON *in, const char *key, int64_t min, int64_t max, int64_t *out,
                cp_fault *fault)
{
  const cJSON *v = member (in, key);
  if (v == NULL)
    return 0;
  if (!cJSON_IsNumber (v) || v->valuedouble != (double)(int64_t)v->valuedouble)
    return cp_fail (fault, "SerializationException", "'%s' must be an integer.", key);
  /* Range first: converting an out-of-range double to an integer is undefined. */
  if (!(v->valuedouble >= (double)min && v->valuedouble <= (double)max))
    return cp_fail (fault, "InvalidParameterException",
                    "%s must be between %" PRId64 " and %" PRId64 ".", key, min, max);
  *out = (int64_t)v->valuedouble;
  return 0;
}

int cp_opt_strlist (const cJSON *in, const char *key, int max, const cJSON **out, cp_fault *fault)
{
  const cJSON *list = NULL, *s;
  if (cp_opt_arr (in, key, &list, fault) < 0)
    return -1;
  cJSON_ArrayForEach (s, list)
  {
    if (!cJSON_IsString (s))
      return cp_fail (fault, "SerializationException", "'%s' must be a list of strings.", key);
  }
  if (cJSON_GetArraySize (list) > max)
    return cp_fail (fault, "InvalidParameterException", "%s can have at most %d entries.", key,
                    max);
  *out = list;
  return 0;
}

int cp_page_args (const cJSON *in, int64_t *limit, char *after, size_t size, cp_fault *fault)
{
  const char *token = NULL;
  *limit = 100;
  after[0] = '\0';
  if (cp_opt_int (in, "maxResults", 1, 100, limit, fault) < 0
      || cp_opt_str (in, "nextToken", &token, fault) < 0)
    return -1;
  return token ? cp_token_decode (token, after, size, fault) : 0;
}

int cp_caller_may (const cp_ctx *ctx, const char *bound_key, cp_fault *fault)
{
  if (ctx->caller_role != CP_ROLE_AGENT || strcmp (ctx->caller_key, bound_key) == 0)
    return 0;
  return cp_fail (fault, "AccessDeniedException",
                  "This agent's credentials are not bound to that container instance.");
}
