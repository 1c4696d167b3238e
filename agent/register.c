/* The RegisterContainerInstance document: the host's capacity (CPU, MEMORY, PORTS, PORTS_UDP,
 * ENI), its attributes and capabilities, built from the configuration and the host's facts. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/utsname.h>
#include <unistd.h>

static int read_meminfo (const char *proc_root, uint64_t *mib, berr **err)
{
  _cleanup_free_ char *path = NULL, *buf = NULL;
  if (asprintf (&path, "%s/meminfo", proc_root) < 0)
    return berr_sys (err, "allocate");
  if (bfs_read_all (AT_FDCWD, path, 1 << 20, &buf, NULL, err) < 0)
    return -1;
  const char *line = strstr (buf, "MemTotal:");
  unsigned long long kib;
  if (line == NULL || sscanf (line, "MemTotal: %llu kB", &kib) != 1)
    return berr_make (err, EINVAL, "`%s` has no MemTotal line", path);
  *mib = kib / 1024;
  return 0;
}

/* ECS's spelling of the architecture (the Go runtime's GOARCH names for the two it runs on). */
static void ecs_arch (const char *machine, char *out, size_t size)
{
  if (strcmp (machine, "aarch64") == 0 || strcmp (machine, "arm64") == 0)
    snprintf (out, size, "arm64");
  else
    snprintf (out, size, "%.15s", machine);
}

/* ecs.os-family: the distribution's ID and VERSION_ID from os-release, as "debian_12". */
static void os_family (char *out, size_t size)
{
  _cleanup_free_ char *buf = NULL;
  char id[32] = "linux", ver[32] = "";
  snprintf (out, size, "LINUX");
  if (bfs_read_all (AT_FDCWD, "/etc/os-release", 64 * 1024, &buf, NULL, NULL) < 0)
    return;
  for (char *line = strtok (buf, "\n"); line; line = strtok (NULL, "\n"))
    {
      char *dst = strncmp (line, "ID=", 3) == 0            ? id
                  : strncmp (line, "VERSION_ID=", 11) == 0 ? ver
                                                           : NULL;
      if (dst == NULL)
        continue;
      const char *v = strchr (line, '=') + 1;
      size_t n = 0;
      for (; *v && n < 31; v++)
        if (*v != '"' && *v != '\'')
          dst[n++] = *v;
      dst[n] = '\0';
    }
  snprintf (out, size, "%s%s%s", id, *ver ? "_" : "", ver);
}

int agent_host_facts_read (const char *proc_root, agent_host_facts *out, berr **err)
{
  struct utsname u;
  memset (out, 0, sizeof *out);
  long cpus = sysconf (_SC_NPROCESSORS_ONLN);
  if (cpus < 1)
    return berr_sys (err, "count online CPUs");
  out->cpus = (uint64_t)cpus;
  if (read_meminfo (proc_root, &out->mem_total_mib, err) < 0)
    return berr_wrap (err, "read host memory");
  if (uname (&u) < 0)
    return berr_sys (err, "uname");
  ecs_arch (u.machine, out->arch, sizeof out->arch);
  os_family (out->os_family, sizeof out->os_family);
  return 0;
}

size_t agent_capabilities (const agent_config *cfg, const char **out, size_t max)
{
  static const char *const drivers[][2] = {
    { "json-file", "com.amazonaws.ecs.capability.logging-driver.json-file" },
    { "journald", "com.amazonaws.ecs.capability.logging-driver.journald" },
    { "none", "com.amazonaws.ecs.capability.logging-driver.none" },
  };
  const char *caps[16];
  size_t n = 0;
  caps[n++] = "ecs.capability.container-health-check";
  caps[n++] = "ecs.capability.container-ordering";
  caps[n++] = "ecs.capability.task-cpu-mem-limit";
  caps[n++] = "ecs.capability.docker-plugin.local"; /* dockerVolumeConfiguration, driver local */
  if (!cfg->disable_privileged)
    caps[n++] = "com.amazonaws.ecs.capability.privileged-container";
  if (cfg->enable_task_eni)
    caps[n++] = "ecs.capability.task-eni";
  if (cfg->enable_task_iam_role)
    caps[n++] = "com.amazonaws.ecs.capability.task-iam-role";
  if (cfg->external)
    caps[n++] = "ecs.capability.external";
  for (char *const *d = cfg->logging_drivers; d && *d; d++)
    for (size_t i = 0; i < ARRAY_SIZE (drivers); i++)
      if (strcmp (*d, drivers[i][0]) == 0)
        caps[n++] = drivers[i][1];
  size_t i = 0;
  for (; i < n && i < max; i++)
    out[i] = caps[i];
  return n;
}

/* {"name": ..., "type": "INTEGER", "integerValue": v} and the STRINGSET form. */
static cJSON *resource_int (const char *name, uint64_t v)
{
  cJSON *r = cJSON_CreateObject ();
  cJSON_AddStringToObject (r, "name", name);
  cJSON_AddStringToObject (r, "type", "INTEGER");
  cJSON_AddNumberToObject (r, "integerValue", (double)v);
  return r;
}

static cJSON *resource_ports (const char *name, const uint16_t *ports, size_t n)
{
  cJSON *r = cJSON_CreateObject ();
  cJSON_AddStringToObject (r, "name", name);
  cJSON_AddStringToObject (r, "type", "STRINGSET");
  cJSON *set = cJSON_AddArrayToObject (r, "stringSetValue");
  for (size_t i = 0; i < n; i++)
    {
      char s[8];
      snprintf (s, sizeof s, "%u", ports[i]);
      cJSON_AddItemToArray (set, cJSON_CreateString (s));
    }
  return r;
}

static void add_attr (cJSON *attrs, const char *name, const char *value)
{
  cJSON *a = cJSON_CreateObject ();
  cJSON_AddStringToObject (a, "name", name);
  if (value)
    cJSON_AddStringToObject (a, "value", value);
  cJSON_AddItemToArray (attrs, a);
}

static void add_attributes (cJSON *req, const agent_config *cfg, const agent_host_facts *facts)
{
  const char *caps[16];
  cJSON *attrs = cJSON_AddArrayToObject (req, "attributes");
  add_attr (attrs, "ecs.os-type", "linux");
  add_attr (attrs, "ecs.os-family", facts->os_family);
  add_attr (attrs, "ecs.cpu-architecture", facts->arch);
  size_t n = agent_capabilities (cfg, caps, ARRAY_SIZE (caps));
  for (size_t i = 0; i < n && i < ARRAY_SIZE (caps); i++)
    add_attr (attrs, caps[i], NULL);
  for (size_t i = 0; i < cfg->n_instance_attributes; i++)
    add_attr (attrs, cfg->instance_attributes[i].name, cfg->instance_attributes[i].value);
}

static int make_uuid (char out[37], berr **err)
{
  uint8_t b[16];
  if (getrandom (b, sizeof b, 0) != (ssize_t)sizeof b)
    return berr_sys (err, "getrandom");
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
  snprintf (out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
            b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
            b[15]);
  return 0;
}

int agent_register_request (const agent_config *cfg, const agent_host_facts *facts,
                            const char *instance_arn, const char *client_token, cJSON **out,
                            berr **err)
{
  char token[37];
  if (cfg->reserved_memory_mib > facts->mem_total_mib)
    return berr_make (
        err, EINVAL, "ECS_RESERVED_MEMORY (%llu MiB) exceeds the host's memory (%llu MiB)",
        (unsigned long long)cfg->reserved_memory_mib, (unsigned long long)facts->mem_total_mib);
  if (client_token == NULL && make_uuid (token, err) < 0)
    return -1;
  _cleanup_json_ cJSON *req = cJSON_CreateObject ();
  cJSON_AddStringToObject (req, "cluster", cfg->cluster);
  if (instance_arn)
    cJSON_AddStringToObject (req, "containerInstanceArn", instance_arn);
  cJSON_AddStringToObject (req, "clientToken", client_token ? client_token : token);
  cJSON *res = cJSON_AddArrayToObject (req, "totalResources");
  cJSON_AddItemToArray (res, resource_int ("CPU", facts->cpus * 1024));
  cJSON_AddItemToArray (res,
                        resource_int ("MEMORY", facts->mem_total_mib - cfg->reserved_memory_mib));
  cJSON_AddItemToArray (res, resource_ports ("PORTS", cfg->reserved_ports, cfg->n_reserved_ports));
  cJSON_AddItemToArray (
      res, resource_ports ("PORTS_UDP", cfg->reserved_ports_udp, cfg->n_reserved_ports_udp));
  cJSON_AddItemToArray (res, resource_int ("ENI", cfg->enable_task_eni ? cfg->eni_limit : 0));
  add_attributes (req, cfg, facts);
  cJSON *vi = cJSON_AddObjectToObject (req, "versionInfo");
  cJSON_AddStringToObject (vi, "agentVersion", AGENT_VERSION);
  cJSON_AddStringToObject (vi, "agentHash", "berth");
  cJSON_AddStringToObject (vi, "dockerVersion", "berth-runtime " AGENT_VERSION);
  if (cJSON_GetArraySize (res) != 5)
    return berr_make (err, ENOMEM, "build RegisterContainerInstance: out of memory");
  *out = steal_ptr (&req);
  return 0;
}
