/* A container's logConfiguration turned into berth-shim's log options: json-file (max-size,
 * max-file), journald (tag) or none. Anything else refuses the container (docs/agent.md). */
#include "agent/engine_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Berth's drivers; ECS_AVAILABLE_LOGGING_DRIVERS may enable fewer of them. */
static const char *const drivers[] = { "json-file", "journald", "none" };

static bool enabled (const agent_engine *e, const char *driver)
{
  for (char *const *d = e->o.cfg->logging_drivers; d && *d; d++)
    if (strcmp (*d, driver) == 0)
      return true;
  return false;
}

static int check_driver (const agent_engine *e, const char *driver, berr **err)
{
  bool known = false;
  for (size_t i = 0; i < sizeof drivers / sizeof *drivers; i++)
    known = known || strcmp (drivers[i], driver) == 0;
  if (!known)
    return berr_make (err, EINVAL,
                      "logging driver `%s` is not supported (Berth has json-file, journald and "
                      "none)",
                      driver);
  if (!enabled (e, driver))
    return berr_make (err, EINVAL,
                      "logging driver `%s` is not in this instance's ECS_AVAILABLE_LOGGING_DRIVERS",
                      driver);
  return 0;
}

static int json_file_option (eng_log_opts *lo, const char *key, const char *v, berr **err)
{
  uint64_t n = 0;
  if (strcmp (key, "max-size") == 0)
    {
      if (agent_parse_size (v, &n, NULL) < 0 || n < 4096)
        return berr_make (err, EINVAL,
                          "logConfiguration option max-size: `%s` is not a size of at least 4k "
                          "(like 10k, 10m, 1g)",
                          v);
      snprintf (lo->size, sizeof lo->size, "%llu", (unsigned long long)n);
      return 0;
    }
  if (strcmp (key, "max-file") == 0)
    {
      if (strspn (v, "0123456789") != strlen (v) || strlen (v) > 3
          || (n = strtoull (v, NULL, 10)) < 1 || n > 100)
        return berr_make (
            err, EINVAL, "logConfiguration option max-file: `%s` is not a number from 1 to 100", v);
      snprintf (lo->files, sizeof lo->files, "%llu", (unsigned long long)n);
      return 0;
    }
  return berr_make (err, EINVAL, "logConfiguration option `%s` is not supported by json-file", key);
}

static int journald_option (eng_log_opts *lo, const char *key, const char *v, berr **err)
{
  if (strcmp (key, "tag") != 0)
    return berr_make (err, EINVAL, "logConfiguration option `%s` is not supported by journald",
                      key);
  size_t n = strlen (v);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
      n = 0;
  if (n == 0 || n > 255)
    return berr_make (err, EINVAL,
                      "logConfiguration option tag: must be 1 to 255 printable characters");
  lo->tag = v;
  return 0;
}

/* Each option of the driver's: values are strings, as in the ECS API. */
static int read_options (eng_log_opts *lo, const char *driver, const cJSON *opts, berr **err)
{
  if (opts && !cJSON_IsNull (opts) && !cJSON_IsObject (opts))
    return berr_make (err, EINVAL, "logConfiguration.options is not an object");
  const cJSON *it, *obj = cJSON_IsObject (opts) ? opts : NULL;
  cJSON_ArrayForEach (it, obj)
  {
    if (!cJSON_IsString (it))
      return berr_make (err, EINVAL, "logConfiguration option `%s` is not a string", it->string);
    int r = strcmp (driver, "json-file") == 0
                ? json_file_option (lo, it->string, it->valuestring, err)
            : strcmp (driver, "journald") == 0
                ? journald_option (lo, it->string, it->valuestring, err)
                : berr_make (err, EINVAL, "logConfiguration option `%s`: none takes no options",
                             it->string);
    if (r < 0)
      return -1;
  }
  return 0;
}

int eng_log_opts_of (const eng_container *c, eng_log_opts *lo, berr **err)
{
  const agent_engine *e = c->task->e;
  memset (lo, 0, sizeof *lo);
  snprintf (lo->size, sizeof lo->size, "%llu", (unsigned long long)e->o.cfg->log_max_size);
  snprintf (lo->files, sizeof lo->files, "%llu", (unsigned long long)e->o.cfg->log_max_files);
  lo->tag = c->name;
  const char *driver = "json-file"; /* no logConfiguration: the agent-wide json-file log */
  const cJSON *lc = cJSON_GetObjectItem (c->def, "logConfiguration");
  if (lc && !cJSON_IsNull (lc))
    {
      const cJSON *d = cJSON_GetObjectItem (lc, "logDriver");
      if (!cJSON_IsObject (lc) || !cJSON_IsString (d))
        return berr_make (err, EINVAL, "logConfiguration has no logDriver string");
      driver = d->valuestring;
      if (check_driver (e, driver, err) < 0
          || read_options (lo, driver, cJSON_GetObjectItem (lc, "options"), err) < 0)
        return -1;
    }
  size_t n = 0;
  lo->argv[n++] = "--log-driver";
  lo->argv[n++] = strcmp (driver, "json-file") == 0  ? "json-file"
                  : strcmp (driver, "journald") == 0 ? "journald"
                                                     : "none";
  if (strcmp (driver, "json-file") == 0)
    {
      const char *more[] = { "--log-max-size", lo->size, "--log-max-files", lo->files };
      memcpy (lo->argv + n, more, sizeof more);
    }
  else if (strcmp (driver, "journald") == 0)
    {
      const char *more[] = { "--log-tag", lo->tag, "--log-name", c->name };
      memcpy (lo->argv + n, more, sizeof more);
    }
  return 0;
}
