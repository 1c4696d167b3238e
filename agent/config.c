/* berth-agent's configuration: /etc/ecs/ecs.config (systemd EnvironmentFile syntax) overridden
 * by the environment, every key parsed by one table into agent_config and validated. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/strv.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_MAX_BYTES (1024 * 1024)
#define SEC 1000000ULL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

enum kind
{
  K_STR,      /* any string */
  K_CLUSTER,  /* cluster name or ARN */
  K_URL,      /* http(s) URL */
  K_REGION,   /* AWS region */
  K_ABSPATH,  /* absolute path; "" allowed when min == 1 */
  K_CAFILE,   /* "" or a readable absolute path */
  K_BOOL,     /* Go's strconv.ParseBool spellings */
  K_DURATION, /* Go duration within [min, max] microseconds */
  K_UINT,     /* decimal within [min, max] */
  K_SIZE,     /* bytes with k/m/g suffix, within [min, max] */
  K_PORTS,    /* JSON array of ports */
  K_ATTRS,    /* JSON object of string -> string */
  K_PORT_RANGE,
  K_LOGLEVEL,
  K_PULL,
  K_DRIVERS, /* JSON array of logging drivers Berth implements */
  K_IFNAME,  /* "" or a valid interface name */
  K_CIDR,    /* IPv4 a.b.c.d/len */
};

typedef struct key_def
{
  const char *name;
  enum kind kind;
  size_t off, off2; /* field offsets in agent_config (off2: count / range max) */
  const char *def;
  uint64_t min, max;
} key_def;

#define F(f) offsetof (agent_config, f)
static const key_def keys[] = {
  { "ECS_CLUSTER", K_CLUSTER, F (cluster), 0, "default", 0, 0 },
  { "ECS_BACKEND_HOST", K_URL, F (backend_host), 0, "http://127.0.0.1:8420", 0, 0 },
  { "AWS_DEFAULT_REGION", K_REGION, F (region), 0, "us-east-1", 0, 0 },
  { "ECS_RESERVED_MEMORY", K_UINT, F (reserved_memory_mib), 0, "0", 0, 1ULL << 40 },
  { "ECS_RESERVED_PORTS", K_PORTS, F (reserved_ports), F (n_reserved_ports),
    "[22, 2375, 2376, 51678, 51679]", 0, 0 },
  { "ECS_RESERVED_PORTS_UDP", K_PORTS, F (reserved_ports_udp), F (n_reserved_ports_udp), "[]", 0,
    0 },
  { "ECS_DATADIR", K_ABSPATH, F (data_dir), 0, "/var/lib/ecs/data", 0, 0 },
  { "ECS_LOGLEVEL", K_LOGLEVEL, F (log_level), 0, "info", 0, 0 },
  { "ECS_ENABLE_TASK_ENI", K_BOOL, F (enable_task_eni), 0, "false", 0, 0 },
  { "ECS_AWSVPC_BLOCK_IMDS", K_BOOL, F (awsvpc_block_imds), 0, "false", 0, 0 },
  { "ECS_CONTAINER_STOP_TIMEOUT", K_DURATION, F (container_stop_timeout_us), 0, "30s", SEC,
    24 * HOUR },
  { "ECS_CONTAINER_START_TIMEOUT", K_DURATION, F (container_start_timeout_us), 0, "3m", 45 * SEC,
    24 * HOUR },
  { "ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION", K_DURATION, F (task_cleanup_wait_us), 0, "3h", MIN,
    365 * 24 * HOUR },
  { "ECS_INSTANCE_ATTRIBUTES", K_ATTRS, F (instance_attributes), F (n_instance_attributes), "{}", 0,
    0 },
  { "ECS_ENABLE_TASK_IAM_ROLE", K_BOOL, F (enable_task_iam_role), 0, "false", 0, 0 },
  { "ECS_DISABLE_PRIVILEGED", K_BOOL, F (disable_privileged), 0, "false", 0, 0 },
  { "ECS_AVAILABLE_LOGGING_DRIVERS", K_DRIVERS, F (logging_drivers), 0, "[\"json-file\",\"none\"]",
    0, 0 },
  { "ECS_IMAGE_CLEANUP_INTERVAL", K_DURATION, F (image_cleanup_interval_us), 0, "30m", 10 * MIN,
    365 * 24 * HOUR },
  { "ECS_IMAGE_MINIMUM_CLEANUP_AGE", K_DURATION, F (image_minimum_cleanup_age_us), 0, "1h", 0,
    365 * 24 * HOUR },
  { "ECS_NUM_IMAGES_DELETE_PER_CYCLE", K_UINT, F (num_images_delete_per_cycle), 0, "5", 1, 1000 },
  { "ECS_DYNAMIC_HOST_PORT_RANGE", K_PORT_RANGE, F (dynamic_port_min), F (dynamic_port_max), "", 0,
    0 },
  { "ECS_IMAGE_PULL_BEHAVIOR", K_PULL, F (image_pull_behavior), 0, "default", 0, 0 },
  { "ECS_DISABLE_METRICS", K_BOOL, F (disable_metrics), 0, "false", 0, 0 },
  { "ECS_EXTERNAL", K_BOOL, F (external), 0, "false", 0, 0 },
  { "ECS_TASK_PIDS_LIMIT", K_UINT, F (task_pids_limit), 0, "0", 0, 4194304 },
  { "BERTH_CA_FILE", K_CAFILE, F (ca_file), 0, "", 0, 0 },
  { "BERTH_ALLOW_INSECURE_BACKEND", K_BOOL, F (allow_insecure), 0, "false", 0, 0 },
  { "BERTH_ENI_LIMIT", K_UINT, F (eni_limit), 0, "8", 0, 1024 },
  { "BERTH_ENI_PARENT", K_IFNAME, F (eni_parent), 0, "", 0, 0 },
  { "BERTH_BRIDGE_NAME", K_IFNAME, F (bridge_name), 0, "berth0", 1, 0 },
  { "BERTH_BRIDGE_SUBNET", K_CIDR, F (bridge_subnet), 0, "172.30.0.0/16", 0, 0 },
  { "BERTH_LOG_MAX_SIZE", K_SIZE, F (log_max_size), 0, "10m", 4096, 1ULL << 40 },
  { "BERTH_LOG_MAX_FILES", K_UINT, F (log_max_files), 0, "5", 1, 100 },
  { "BERTH_STATE_DIR", K_ABSPATH, F (state_dir), 0, "/run/berth", 0, 0 },
  { "BERTH_IMAGE_DIR", K_ABSPATH, F (image_dir), 0, "/var/lib/berth/images", 0, 0 },
  { "BERTH_TELEMETRY_INTERVAL", K_DURATION, F (telemetry_interval_us), 0, "20s", SEC, HOUR },
  { "BERTH_OFFLINE_WATCHDOG", K_DURATION, F (offline_watchdog_us), 0, "0", 0, 365 * 24 * HOUR },
  { "BERTH_INTROSPECTION_PORT", K_UINT, F (introspection_port), 0, "51678", 0, 65535 },
};
#undef F

size_t agent_config_key_count (void)
{
  return ARRAY_SIZE (keys);
}

const char *agent_config_key_name (size_t i)
{
  return i < ARRAY_SIZE (keys) ? keys[i].name : NULL;
}

static const key_def *find_key (const char *name)
{
  for (size_t i = 0; i < ARRAY_SIZE (keys); i++)
    if (strcmp (keys[i].name, name) == 0)
      return &keys[i];
  return NULL;
}

/* ---- value parsers ---- */

static int parse_bool (const char *s, bool *out)
{
  static const char *const yes[] = { "1", "t", "T", "true", "TRUE", "True" };
  static const char *const no[] = { "0", "f", "F", "false", "FALSE", "False" };
  for (size_t i = 0; i < ARRAY_SIZE (yes); i++)
    {
      if (strcmp (s, yes[i]) == 0)
        return *out = true, 0;
      if (strcmp (s, no[i]) == 0)
        return *out = false, 0;
    }
  return -1;
}

static int parse_uint (const char *s, uint64_t *out)
{
  if (*s == '\0' || strspn (s, "0123456789") != strlen (s) || strlen (s) > 19)
    return -1;
  *out = strtoull (s, NULL, 10);
  return 0;
}

/* Units of Go's time.ParseDuration, in nanoseconds. */
static uint64_t duration_unit (const char *u, size_t n)
{
  static const struct
  {
    const char *name;
    uint64_t ns;
  } units[] = {
    { "ns", 1 },       { "us", 1000 },         { "\xc2\xb5s", 1000 },   { "\xce\xbcs", 1000 },
    { "ms", 1000000 }, { "s", 1000000000ULL }, { "m", 60000000000ULL }, { "h", 3600000000000ULL }
  };
  for (size_t i = 0; i < ARRAY_SIZE (units); i++)
    if (strlen (units[i].name) == n && memcmp (units[i].name, u, n) == 0)
      return units[i].ns;
  return 0;
}

/* One "<digits>[.<digits>]<unit>" group of a duration, added to *total_ns. */
static int duration_group (const char **p, uint64_t *total_ns)
{
  const char *s = *p;
  uint64_t whole = 0, frac = 0, scale = 1;
  bool digits = false;
  for (; isdigit ((unsigned char)*s); s++, digits = true)
    {
      if (whole > (UINT64_MAX - 9) / 10)
        return -1;
      whole = whole * 10 + (uint64_t)(*s - '0');
    }
  if (*s == '.')
    for (s++; isdigit ((unsigned char)*s); s++, digits = true)
      if (scale < 1000000000000000000ULL)
        {
          frac = frac * 10 + (uint64_t)(*s - '0');
          scale *= 10;
        }
  if (!digits)
    return -1;
  size_t n = strcspn (s, "0123456789.");
  uint64_t unit = duration_unit (s, n);
  if (unit == 0 || (whole != 0 && unit > UINT64_MAX / whole))
    return -1;
  /* frac / scale of a unit, computed without overflow: scale <= 1e18 and unit <= 3.6e12. */
  uint64_t part = (uint64_t)((long double)frac * (long double)unit / (long double)scale);
  if (whole * unit > UINT64_MAX - part || *total_ns > UINT64_MAX - whole * unit - part)
    return -1;
  *total_ns += whole * unit + part;
  *p = s + n;
  return 0;
}

int agent_parse_duration (const char *s, uint64_t *out_us, berr **err)
{
  const char *p = s;
  uint64_t ns = 0;
  if (*p == '+')
    p++;
  if (strcmp (p, "0") == 0)
    return *out_us = 0, 0;
  if (*p == '\0')
    return berr_make (err, EINVAL, "empty duration");
  while (*p)
    if (duration_group (&p, &ns) < 0)
      return berr_make (err, EINVAL,
                        "`%s` is not a duration (like 30s, 1h30m, 500ms) or out of range", s);
  *out_us = ns / 1000;
  return 0;
}

int agent_parse_size (const char *s, uint64_t *out, berr **err)
{
  size_t n = strspn (s, "0123456789");
  uint64_t v, mult = 1;
  _cleanup_free_ char *digits = strndup (s, n);
  if (digits == NULL || parse_uint (digits, &v) < 0)
    return berr_make (err, EINVAL, "`%s` is not a size (like 10m, 512k, 1048576)", s);
  const char *suffix = s + n;
  if (strcasecmp (suffix, "k") == 0 || strcasecmp (suffix, "kb") == 0)
    mult = 1ULL << 10;
  else if (strcasecmp (suffix, "m") == 0 || strcasecmp (suffix, "mb") == 0)
    mult = 1ULL << 20;
  else if (strcasecmp (suffix, "g") == 0 || strcasecmp (suffix, "gb") == 0)
    mult = 1ULL << 30;
  else if (*suffix != '\0')
    return berr_make (err, EINVAL, "`%s` has an unknown size suffix (k, m, g)", s);
  if (v > UINT64_MAX / mult)
    return berr_make (err, EINVAL, "`%s` is too large", s);
  *out = v * mult;
  return 0;
}

static bool valid_name_chars (const char *s, size_t n, const char *extra)
{
  for (size_t i = 0; i < n; i++)
    if (!isalnum ((unsigned char)s[i]) && strchr (extra, s[i]) == NULL)
      return false;
  return n > 0;
}

static int check_cluster (const char *v, berr **err)
{
  const char *name = v;
  if (strncmp (v, "arn:", 4) == 0)
    {
      const char *slash = strstr (v, ":cluster/");
      if (slash == NULL)
        return berr_make (err, EINVAL, "`%s` is not a cluster ARN", v);
      name = slash + strlen (":cluster/");
    }
  if (*name && (strlen (name) > 255 || !valid_name_chars (name, strlen (name), "-_")))
    return berr_make (err, EINVAL,
                      "`%s`: a cluster name is 1-255 letters, digits, hyphens, underscores", v);
  return 0;
}

static int check_url (const char *v, berr **err)
{
  const char *host;
  if (strncmp (v, "https://", 8) == 0)
    host = v + 8;
  else if (strncmp (v, "http://", 7) == 0)
    host = v + 7;
  else
    return berr_make (err, EINVAL, "`%s` is not an http:// or https:// URL", v);
  size_t n = strcspn (host, "/?#");
  if (n == 0 || strcspn (host, " \t\r\n") != strlen (host) || memchr (host, '@', n))
    return berr_make (err, EINVAL, "`%s` has no host, or user info or spaces", v);
  return 0;
}

static int parse_ports (const char *v, uint16_t **out, size_t *n, berr **err)
{
  _cleanup_json_ cJSON *j = NULL;
  if (bjson_parse (v, strlen (v), &j, err) < 0 || !cJSON_IsArray (j))
    return berr_make (err, EINVAL, "`%s` is not a JSON array of ports", v);
  int count = cJSON_GetArraySize (j);
  if (count > 65536)
    return berr_make (err, EINVAL, "too many ports");
  _cleanup_free_ uint16_t *ports = calloc ((size_t)count + 1, sizeof *ports);
  if (ports == NULL)
    return berr_sys (err, "allocate ports");
  int i = 0;
  const cJSON *p;
  cJSON_ArrayForEach (p, j)
  {
    int64_t port;
    if (bjson_to_int (p, "port", 1, 65535, &port, err) < 0)
      return -1;
    ports[i++] = (uint16_t)port;
  }
  free (*out);
  *out = steal_ptr (&ports);
  *n = (size_t)count;
  return 0;
}

static void attrs_free (agent_attr *a, size_t n)
{
  for (size_t i = 0; a && i < n; i++)
    {
      free (a[i].name);
      free (a[i].value);
    }
  free (a);
}

/* ECS attribute names: letters, digits, hyphens, underscores, periods, at signs, slashes,
 * colons (at most 128); values the same plus spaces (at most 128). */
static int parse_attrs (const char *v, agent_attr **out, size_t *n, berr **err)
{
  _cleanup_json_ cJSON *j = NULL;
  if (bjson_parse (v, strlen (v), &j, err) < 0 || !cJSON_IsObject (j))
    return berr_make (err, EINVAL, "not a JSON object of attribute names to values");
  size_t count = (size_t)cJSON_GetArraySize (j), i = 0;
  if (count > 10)
    return berr_make (err, EINVAL, "at most 10 custom attributes (%zu given)", count);
  agent_attr *a = calloc (count + 1, sizeof *a);
  if (a == NULL)
    return berr_sys (err, "allocate attributes");
  const cJSON *it;
  cJSON_ArrayForEach (it, j)
  {
    const char *name = it->string;
    if (!valid_name_chars (name, strlen (name), "-_./@:") || strlen (name) > 128
        || !cJSON_IsString (it) || strlen (it->valuestring) > 128
        || (*it->valuestring
            && !valid_name_chars (it->valuestring, strlen (it->valuestring), "-_./@: ")))
      {
        attrs_free (a, i);
        return berr_make (err, EINVAL,
                          "attribute `%s`: names and string values are 1-128 letters, digits "
                          "and -_./@:",
                          name);
      }
    a[i].name = strdup (name);
    a[i++].value = strdup (it->valuestring);
  }
  attrs_free (*out, *n);
  *out = a;
  *n = count;
  return 0;
}

static int parse_drivers (const char *v, char ***out, berr **err)
{
  static const char *const supported[] = { "json-file", "journald", "none" };
  _cleanup_json_ cJSON *j = NULL;
  _cleanup_strv_ char **drivers = calloc (1, sizeof (char *));
  if (bjson_parse (v, strlen (v), &j, err) < 0 || !cJSON_IsArray (j) || drivers == NULL)
    return berr_make (err, EINVAL, "`%s` is not a JSON array of logging drivers", v);
  const cJSON *it;
  cJSON_ArrayForEach (it, j)
  {
    bool ok = false;
    for (size_t i = 0; cJSON_IsString (it) && i < ARRAY_SIZE (supported); i++)
      ok |= strcmp (it->valuestring, supported[i]) == 0;
    if (!ok)
      return berr_make (err, EINVAL,
                        "%s: Berth supports the logging drivers json-file, journald, "
                        "none",
                        cJSON_IsString (it) ? it->valuestring : "not a string");
    if (strv_append (&drivers, it->valuestring) < 0)
      return berr_sys (err, "allocate");
  }
  strv_free (*out);
  *out = steal_ptr (&drivers);
  return 0;
}

/* The ECS default: the kernel's ephemeral range, else 49153-65535. */
static void default_port_range (uint16_t *lo, uint16_t *hi)
{
  _cleanup_free_ char *buf = NULL;
  unsigned a, b;
  *lo = 49153;
  *hi = 65535;
  if (bfs_read_all (AT_FDCWD, "/proc/sys/net/ipv4/ip_local_port_range", 64, &buf, NULL, NULL) == 0
      && sscanf (buf, "%u %u", &a, &b) == 2 && a >= 1 && a <= b && b <= 65535)
    {
      *lo = (uint16_t)a;
      *hi = (uint16_t)b;
    }
}

static int parse_port_range (const char *v, uint16_t *lo, uint16_t *hi, berr **err)
{
  unsigned a, b;
  int end = 0;
  if (*v == '\0')
    return default_port_range (lo, hi), 0;
  if (sscanf (v, "%5u-%5u%n", &a, &b, &end) != 2 || v[end] != '\0' || !isdigit ((unsigned char)*v)
      || a < 1 || b > 65535 || a > b)
    return berr_make (err, EINVAL, "`%s` is not a port range `first-last` within 1-65535", v);
  *lo = (uint16_t)a;
  *hi = (uint16_t)b;
  return 0;
}

static int check_cidr (const char *v, berr **err)
{
  char addr[INET_ADDRSTRLEN + 1];
  struct in_addr in;
  const char *slash = strchr (v, '/');
  uint64_t len;
  if (slash == NULL || (size_t)(slash - v) >= sizeof addr || parse_uint (slash + 1, &len) < 0
      || len < 8 || len > 30)
    return berr_make (err, EINVAL, "`%s` is not an IPv4 subnet a.b.c.d/len (len 8-30)", v);
  memcpy (addr, v, (size_t)(slash - v));
  addr[slash - v] = '\0';
  if (inet_pton (AF_INET, addr, &in) != 1)
    return berr_make (err, EINVAL, "`%s` is not an IPv4 subnet a.b.c.d/len", v);
  return 0;
}

static int set_string (agent_config *cfg, const key_def *k, const char *v, berr **err)
{
  char **field = (char **)((char *)cfg + k->off);
  char *copy = strdup (v);
  if (copy == NULL)
    return berr_sys (err, "allocate");
  free (*field);
  *field = copy;
  return 0;
}

static int check_string_kind (const key_def *k, const char *v, berr **err)
{
  switch (k->kind)
    {
    case K_CLUSTER:
      return check_cluster (v, err);
    case K_URL:
      return check_url (v, err);
    case K_REGION:
      if (!valid_name_chars (v, strlen (v), "-") || strlen (v) > 63)
        return berr_make (err, EINVAL, "`%s` is not a region name like us-east-1", v);
      return 0;
    case K_ABSPATH:
      if (v[0] != '/' || strlen (v) >= 4096)
        return berr_make (err, EINVAL, "`%s` is not an absolute path", v);
      return 0;
    case K_CAFILE:
      if (*v && v[0] != '/')
        return berr_make (err, EINVAL, "`%s` is not an absolute path", v);
      if (*v && access (v, R_OK) < 0)
        return berr_sys (err, "`%s`", v);
      return 0;
    case K_IFNAME:
      if ((k->min && !*v) || strlen (v) >= IFNAMSIZ
          || (*v && !valid_name_chars (v, strlen (v), "-_.")))
        return berr_make (err, EINVAL, "`%s` is not an interface name (1-15 of A-Za-z0-9-_.)", v);
      return 0;
    case K_CIDR:
      return check_cidr (v, err);
    default:
      return 0;
    }
}

static int check_range (const key_def *k, uint64_t v, const char *raw, berr **err)
{
  if (v < k->min || v > k->max)
    return berr_make (err, ERANGE, "`%s` is out of range (%llu-%llu%s)", raw,
                      (unsigned long long)(k->kind == K_DURATION ? k->min / SEC : k->min),
                      (unsigned long long)(k->kind == K_DURATION ? k->max / SEC : k->max),
                      k->kind == K_DURATION ? " seconds" : "");
  return 0;
}

static int apply_number (agent_config *cfg, const key_def *k, const char *v, berr **err)
{
  uint64_t n;
  void *field = (char *)cfg + k->off;
  if (k->kind == K_DURATION && agent_parse_duration (v, &n, err) < 0)
    return -1;
  if (k->kind == K_SIZE && agent_parse_size (v, &n, err) < 0)
    return -1;
  if (k->kind == K_UINT && parse_uint (v, &n) < 0)
    return berr_make (err, EINVAL, "`%s` is not a non-negative integer", v);
  if (check_range (k, n, v, err) < 0)
    return -1;
  *(uint64_t *)field = n;
  return 0;
}

/* Parses one key's value into cfg. */
static int apply_key (agent_config *cfg, const key_def *k, const char *v, berr **err)
{
  void *field = (char *)cfg + k->off;
  void *field2 = (char *)cfg + k->off2;
  switch (k->kind)
    {
    case K_BOOL:
      if (parse_bool (v, field) < 0)
        return berr_make (err, EINVAL, "`%s` is not a boolean (true or false)", v);
      return 0;
    case K_DURATION:
    case K_UINT:
    case K_SIZE:
      return apply_number (cfg, k, v, err);
    case K_PORTS:
      return parse_ports (v, field, field2, err);
    case K_ATTRS:
      return parse_attrs (v, field, field2, err);
    case K_DRIVERS:
      return parse_drivers (v, field, err);
    case K_PORT_RANGE:
      return parse_port_range (v, field, field2, err);
    case K_LOGLEVEL:
      if (blog_parse_level (v, field) < 0)
        return berr_make (err, EINVAL, "`%s` is not one of crit, error, warn, info, debug", v);
      return 0;
    case K_PULL:
      {
        static const char *const names[] = { "default", "always", "once", "prefer-cached" };
        for (size_t i = 0; i < ARRAY_SIZE (names); i++)
          if (strcmp (v, names[i]) == 0)
            return *(enum agent_pull_behavior *)field = (enum agent_pull_behavior)i, 0;
        return berr_make (err, EINVAL, "`%s` is not one of default, always, once, prefer-cached",
                          v);
      }
    default:
      if (check_string_kind (k, v, err) < 0)
        return -1;
      return set_string (cfg, k, v, err);
    }
}

/* ---- the file ---- */

typedef struct entry
{
  char *key, *value;
  int line;
} entry;

typedef struct entries
{
  entry *v;
  size_t n;
} entries;

static void entries_free (entries *e)
{
  for (size_t i = 0; i < e->n; i++)
    {
      free (e->v[i].key);
      free (e->v[i].value);
    }
  free (e->v);
}

/* A quoted value: "..." with backslash escapes, or '...' taken literally; only whitespace may
 * follow the closing quote. */
static int unquote (const char *s, size_t n, char **out, int line, berr **err)
{
  char q = s[0];
  char *buf = malloc (n + 1), *o = buf;
  size_t i = 1;
  if (buf == NULL)
    return berr_sys (err, "allocate");
  for (; i < n && s[i] != q; i++)
    {
      if (q == '"' && s[i] == '\\' && i + 1 < n)
        i++;
      *o++ = s[i];
    }
  *o = '\0';
  if (i >= n)
    {
      free (buf);
      return berr_make (err, EINVAL, "line %d: unterminated %c quote", line, q);
    }
  for (i++; i < n; i++)
    if (!isspace ((unsigned char)s[i]))
      {
        free (buf);
        return berr_make (err, EINVAL, "line %d: text after the closing quote", line);
      }
  *out = buf;
  return 0;
}

static int parse_line (const char *s, size_t n, int line, entries *out, berr **err)
{
  while (n && isspace ((unsigned char)*s))
    s++, n--;
  while (n && isspace ((unsigned char)s[n - 1]))
    n--;
  if (n == 0 || *s == '#' || *s == ';')
    return 0;
  const char *eq = memchr (s, '=', n);
  if (eq == NULL)
    return berr_make (err, EINVAL, "line %d: expected KEY=VALUE", line);
  size_t klen = (size_t)(eq - s);
  while (klen && isspace ((unsigned char)s[klen - 1]))
    klen--;
  if (klen == 0 || isdigit ((unsigned char)*s) || !valid_name_chars (s, klen, "_"))
    return berr_make (err, EINVAL, "line %d: `%.*s` is not a variable name", line, (int)klen, s);
  const char *v = eq + 1;
  size_t vlen = n - (size_t)(v - s);
  while (vlen && isspace ((unsigned char)*v))
    v++, vlen--;
  entry e = { .key = strndup (s, klen), .line = line };
  if (vlen && (*v == '"' || *v == '\''))
    {
      if (unquote (v, vlen, &e.value, line, err) < 0)
        return free (e.key), -1;
    }
  else
    e.value = strndup (v, vlen);
  entry *nv = reallocarray (out->v, out->n + 1, sizeof *nv);
  if (e.key == NULL || e.value == NULL || nv == NULL)
    {
      free (e.key);
      free (e.value);
      if (nv)
        out->v = nv;
      return berr_sys (err, "allocate");
    }
  out->v = nv;
  out->v[out->n++] = e;
  return 0;
}

static int parse_file (const char *buf, size_t len, entries *out, berr **err)
{
  if (memchr (buf, '\0', len))
    return berr_make (err, EINVAL, "the file contains a NUL byte");
  int line = 1;
  for (const char *p = buf, *end = buf + len; p < end; line++)
    {
      const char *nl = memchr (p, '\n', (size_t)(end - p));
      size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
      if (parse_line (p, n, line, out, err) < 0)
        return -1;
      p += n + 1;
    }
  return 0;
}

/* Last assignment wins, as in a shell. */
static const entry *file_value (const entries *e, const char *key)
{
  for (size_t i = e->n; i-- > 0;)
    if (strcmp (e->v[i].key, key) == 0)
      return &e->v[i];
  return NULL;
}

static int check_unknown (const entries *e, berr **err)
{
  for (size_t i = 0; i < e->n; i++)
    {
      const char *k = e->v[i].key;
      if (find_key (k))
        continue;
      if (strncmp (k, "BERTH_", 6) == 0)
        return berr_make (err, EINVAL, "line %d: unknown key %s", e->v[i].line, k);
      if (strncmp (k, "ECS_", 4) == 0)
        blog_warn ("config line %d: %s is not used by berth-agent; ignored", e->v[i].line, k);
    }
  return 0;
}

static int cross_checks (const agent_config *cfg, berr **err)
{
  if (strncmp (cfg->backend_host, "http://", 7) == 0 && !cfg->allow_insecure
      && !agent_url_is_loopback (cfg->backend_host))
    return berr_make (err, EINVAL,
                      "ECS_BACKEND_HOST: plain http to `%s` is allowed only to loopback "
                      "(set BERTH_ALLOW_INSECURE_BACKEND=true to allow it)",
                      cfg->backend_host);
  return 0;
}

static int config_build (const entries *e, char *const *envp, agent_config *out, berr **err)
{
  memset (out, 0, sizeof *out);
  out->sources = calloc (ARRAY_SIZE (keys), sizeof *out->sources);
  if (out->sources == NULL)
    return berr_sys (err, "allocate");
  if (check_unknown (e, err) < 0)
    return -1;
  for (size_t i = 0; i < ARRAY_SIZE (keys); i++)
    {
      const key_def *k = &keys[i];
      const char *v = k->def, *src = "default";
      const entry *fe = file_value (e, k->name);
      const char *env = envp ? strv_env_get (envp, k->name) : NULL;
      if (fe)
        v = fe->value, src = "file";
      if (env)
        v = env, src = "environment";
      /* An empty ECS_CLUSTER means "default", as for the ECS agent. */
      if (k->kind == K_CLUSTER && *v == '\0')
        v = k->def;
      out->sources[i] = src;
      if (apply_key (out, k, v, err) < 0)
        return berr_wrap (err, "%s (from the %s)", k->name, src);
    }
  return cross_checks (out, err);
}

int agent_config_parse (const char *buf, size_t len, char *const *envp, agent_config *out,
                        berr **err)
{
  entries e = { 0 };
  int r = parse_file (buf, len, &e, err);
  if (r == 0)
    r = config_build (&e, envp, out, err);
  else
    memset (out, 0, sizeof *out);
  entries_free (&e);
  if (r < 0)
    agent_config_free (out);
  return r;
}

int agent_config_load (const char *path, bool missing_ok, char *const *envp, agent_config *out,
                       berr **err)
{
  _cleanup_free_ char *buf = NULL;
  size_t len = 0;
  if (path && bfs_read_all (AT_FDCWD, path, CONFIG_MAX_BYTES, &buf, &len, err) < 0)
    {
      if (!(missing_ok && berr_errno (*err) == ENOENT))
        return berr_wrap (err, "read configuration");
      berr_free (err);
    }
  if (agent_config_parse (buf ? buf : "", len, envp, out, err) < 0)
    return path ? berr_wrap (err, "configuration `%s`", path) : -1;
  return 0;
}

void agent_config_free (agent_config *cfg)
{
  for (size_t i = 0; i < ARRAY_SIZE (keys); i++)
    {
      void *field = (char *)cfg + keys[i].off;
      switch (keys[i].kind)
        {
        case K_PORTS:
          free (*(uint16_t **)field);
          break;
        case K_ATTRS:
          attrs_free (*(agent_attr **)field, *(size_t *)((char *)cfg + keys[i].off2));
          break;
        case K_DRIVERS:
          strv_free (*(char ***)field);
          break;
        case K_BOOL:
        case K_DURATION:
        case K_UINT:
        case K_SIZE:
        case K_PORT_RANGE:
        case K_LOGLEVEL:
        case K_PULL:
          break;
        default:
          free (*(char **)field);
        }
    }
  free (cfg->sources);
  memset (cfg, 0, sizeof *cfg);
}

static void print_ports (FILE *f, const uint16_t *p, size_t n)
{
  fputc ('[', f);
  for (size_t i = 0; i < n; i++)
    fprintf (f, "%s%u", i ? "," : "", p[i]);
  fputc (']', f);
}

/* In Go's syntax, largest units first: 5400000000 us prints as 1h30m. */
static void print_duration (FILE *f, uint64_t us)
{
  static const struct
  {
    const char *unit;
    uint64_t us;
  } units[] = { { "h", HOUR }, { "m", MIN }, { "s", SEC }, { "ms", 1000 }, { "us", 1 } };
  if (us == 0)
    fputs ("0s", f);
  for (size_t i = 0; i < ARRAY_SIZE (units); i++)
    if (us >= units[i].us)
      {
        fprintf (f, "%llu%s", (unsigned long long)(us / units[i].us), units[i].unit);
        us %= units[i].us;
      }
}

static void print_value (const agent_config *cfg, const key_def *k, FILE *f)
{
  const void *field = (const char *)cfg + k->off;
  const void *field2 = (const char *)cfg + k->off2;
  static const char *const levels[] = { "error", "warn", "info", "debug" };
  static const char *const pulls[] = { "default", "always", "once", "prefer-cached" };
  switch (k->kind)
    {
    case K_BOOL:
      fputs (*(const bool *)field ? "true" : "false", f);
      break;
    case K_DURATION:
      print_duration (f, *(const uint64_t *)field);
      break;
    case K_UINT:
    case K_SIZE:
      fprintf (f, "%llu", (unsigned long long)*(const uint64_t *)field);
      break;
    case K_PORTS:
      print_ports (f, *(uint16_t *const *)field, *(const size_t *)field2);
      break;
    case K_ATTRS:
      {
        const agent_attr *a = *(agent_attr *const *)field;
        fputc ('{', f);
        for (size_t i = 0; i < *(const size_t *)field2; i++)
          fprintf (f, "%s\"%s\":\"%s\"", i ? "," : "", a[i].name, a[i].value);
        fputc ('}', f);
        break;
      }
    case K_DRIVERS:
      fputc ('[', f);
      for (char *const *d = *(char **const *)field; d && *d; d++)
        fprintf (f, "%s\"%s\"", d == *(char **const *)field ? "" : ",", *d);
      fputc (']', f);
      break;
    case K_PORT_RANGE:
      fprintf (f, "%u-%u", *(const uint16_t *)field, *(const uint16_t *)field2);
      break;
    case K_LOGLEVEL:
      fputs (levels[*(const enum blog_level *)field], f);
      break;
    case K_PULL:
      fputs (pulls[*(const enum agent_pull_behavior *)field], f);
      break;
    default:
      fputs (*(char *const *)field ? *(char *const *)field : "", f);
    }
}

/* No key holds a secret today (credentials never come from this file); a key that ever does
 * must print as "(redacted)" here. */
void agent_config_print (const agent_config *cfg, FILE *f)
{
  for (size_t i = 0; i < ARRAY_SIZE (keys); i++)
    {
      fprintf (f, "%s=", keys[i].name);
      print_value (cfg, &keys[i], f);
      fprintf (f, "\t# %s\n", cfg->sources ? cfg->sources[i] : "default");
    }
}
