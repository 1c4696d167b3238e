/* The Task definitions API: RegisterTaskDefinition (with ECS's validation), Deregister, Describe,
 * ListTaskDefinitions and ListTaskDefinitionFamilies. Definitions are stored as the request's JSON
 * and returned in the ECS TaskDefinition shape. */
#include "controlplane/internal.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/strv.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CONTAINERS 10 /* ECS's limit per task definition */
#define MAX_VOLUMES 100   /* bounds the name checks; far above what a task uses */
#define MAX_NAME 255

static void taskdef_clearp (cp_taskdef *td)
{
  cp_taskdef_clear (td);
}
#define _cleanup_taskdef_ __attribute__ ((cleanup (taskdef_clearp)))

/* ---- member types, after the botocore model ---- */

enum member_type
{
  T_STR,
  T_INT, /* Integer / BoxedInteger: a whole number in 32 bits */
  T_BOOL,
  T_OBJ,     /* a structure or map */
  T_STRLIST, /* a list of strings */
  T_OBJLIST, /* a list of structures */
};

typedef struct member
{
  const char *key;
  enum member_type type;
} member;

static const member taskdef_members[] = {
  { "family", T_STR },
  { "taskRoleArn", T_STR },
  { "executionRoleArn", T_STR },
  { "networkMode", T_STR },
  { "containerDefinitions", T_OBJLIST },
  { "volumes", T_OBJLIST },
  { "placementConstraints", T_OBJLIST },
  { "requiresCompatibilities", T_STRLIST },
  { "cpu", T_STR },
  { "memory", T_STR },
  { "tags", T_OBJLIST },
  { "pidMode", T_STR },
  { "ipcMode", T_STR },
  { "proxyConfiguration", T_OBJ },
  { "inferenceAccelerators", T_OBJLIST },
  { "ephemeralStorage", T_OBJ },
  { "runtimePlatform", T_OBJ },
};

static const member container_members[] = {
  { "name", T_STR },
  { "image", T_STR },
  { "repositoryCredentials", T_OBJ },
  { "cpu", T_INT },
  { "memory", T_INT },
  { "memoryReservation", T_INT },
  { "links", T_STRLIST },
  { "portMappings", T_OBJLIST },
  { "essential", T_BOOL },
  { "entryPoint", T_STRLIST },
  { "command", T_STRLIST },
  { "environment", T_OBJLIST },
  { "environmentFiles", T_OBJLIST },
  { "mountPoints", T_OBJLIST },
  { "volumesFrom", T_OBJLIST },
  { "linuxParameters", T_OBJ },
  { "secrets", T_OBJLIST },
  { "dependsOn", T_OBJLIST },
  { "startTimeout", T_INT },
  { "stopTimeout", T_INT },
  { "hostname", T_STR },
  { "user", T_STR },
  { "workingDirectory", T_STR },
  { "disableNetworking", T_BOOL },
  { "privileged", T_BOOL },
  { "readonlyRootFilesystem", T_BOOL },
  { "dnsServers", T_STRLIST },
  { "dnsSearchDomains", T_STRLIST },
  { "extraHosts", T_OBJLIST },
  { "dockerSecurityOptions", T_STRLIST },
  { "interactive", T_BOOL },
  { "pseudoTerminal", T_BOOL },
  { "dockerLabels", T_OBJ },
  { "ulimits", T_OBJLIST },
  { "logConfiguration", T_OBJ },
  { "healthCheck", T_OBJ },
  { "systemControls", T_OBJLIST },
  { "resourceRequirements", T_OBJLIST },
  { "firelensConfiguration", T_OBJ },
  { "restartPolicy", T_OBJ },
};

static const member port_members[] = {
  { "containerPort", T_INT }, { "hostPort", T_INT },           { "protocol", T_STR },
  { "name", T_STR },          { "containerPortRange", T_STR }, { "appProtocol", T_STR },
};

static const member restart_members[] = {
  { "enabled", T_BOOL },
  { "restartAttemptPeriod", T_INT },
};

static const member depends_members[] = { { "containerName", T_STR }, { "condition", T_STR } };

static const member mount_members[] = {
  { "sourceVolume", T_STR },
  { "containerPath", T_STR },
  { "readOnly", T_BOOL },
};

static const member volume_members[] = {
  { "name", T_STR },
  { "host", T_OBJ },
  { "dockerVolumeConfiguration", T_OBJ },
  { "efsVolumeConfiguration", T_OBJ },
  { "fsxWindowsFileServerVolumeConfiguration", T_OBJ },
  { "configuredAtLaunch", T_BOOL },
};

static const member docker_volume_members[] = {
  { "scope", T_STR },      { "autoprovision", T_BOOL }, { "driver", T_STR },
  { "driverOpts", T_OBJ }, { "labels", T_OBJ },
};

static bool is_int32 (const cJSON *v)
{
  return cJSON_IsNumber (v) && v->valuedouble >= INT32_MIN && v->valuedouble <= INT32_MAX
         && floor (v->valuedouble) == v->valuedouble;
}

static bool has_type (const cJSON *v, enum member_type type)
{
  const cJSON *e;
  switch (type)
    {
    case T_STR:
      return cJSON_IsString (v);
    case T_INT:
      return is_int32 (v);
    case T_BOOL:
      return cJSON_IsBool (v);
    case T_OBJ:
      return cJSON_IsObject (v);
    case T_STRLIST:
    case T_OBJLIST:
      if (!cJSON_IsArray (v))
        return false;
      cJSON_ArrayForEach (e, v)
      {
        if (type == T_STRLIST ? !cJSON_IsString (e) : !cJSON_IsObject (e))
          return false;
      }
      return true;
    }
  return false;
}

/* A member of the wrong JSON type is a SerializationException, as the service reports it; an
 * absent or null member is fine here (required ones are checked where they are used). */
static int check_members (const cJSON *obj, const member *table, size_t n, const char *where,
                          cp_fault *fault)
{
  for (size_t i = 0; i < n; i++)
    {
      const cJSON *v = cJSON_GetObjectItemCaseSensitive (obj, table[i].key);
      if (v != NULL && !cJSON_IsNull (v) && !has_type (v, table[i].type))
        return cp_fail (fault, "SerializationException", "'%s%s' has the wrong type.", where,
                        table[i].key);
    }
  return 0;
}

#define CHECK_MEMBERS(obj, table, where, fault)                                                    \
  check_members ((obj), (table), ARRAY_SIZE (table), (where), (fault))

static const char *str_of (const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (obj, key);
  return cJSON_IsString (v) ? v->valuestring : NULL;
}

/* An integer member (already type-checked) or def when absent. */
static int64_t int_of (const cJSON *obj, const char *key, int64_t def)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (obj, key);
  return cJSON_IsNumber (v) ? (int64_t)v->valuedouble : def;
}

static bool valid_name (const char *s)
{
  size_t n = s ? strlen (s) : 0;
  return n >= 1 && n <= MAX_NAME
         && strspn (s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

/* ---- task-level cpu and memory: strings in the API ---- */

/* A decimal number ("2", "0.25") followed by optional spaces and a unit (case-insensitive, may
 * be empty). Returns the number times scale when the unit matches, with the product integral;
 * -1 otherwise. */
static int64_t parse_quantity (const char *s, const char *unit, int64_t scale)
{
  size_t digits = strspn (s, "0123456789");
  const char *p = s + digits;
  if (digits == 0 || digits > 9)
    return -1;
  if (*p == '.')
    {
      size_t frac = strspn (p + 1, "0123456789");
      if (frac == 0 || frac > 6)
        return -1;
      p += 1 + frac;
    }
  double v = strtod (s, NULL) * (double)scale;
  while (*p == ' ')
    p++;
  if (strcasecmp (p, unit) != 0 || floor (v) != v)
    return -1;
  return (int64_t)v;
}

/* "256" (CPU units) or "0.25 vCPU"; ECS accepts 128 units (0.125 vCPU) up to 192 vCPU. */
int64_t cp_taskdef_cpu_units (const char *s)
{
  int64_t v = parse_quantity (s, "", 1);
  if (v < 0)
    v = parse_quantity (s, "vcpu", 1024);
  return v >= 128 && v <= 192 * 1024 ? v : -1;
}

/* "512" (MiB) or "1 GB" (GiB, as ECS reads it). */
int64_t cp_taskdef_memory_mib (const char *s)
{
  int64_t v = parse_quantity (s, "", 1);
  if (v < 0)
    v = parse_quantity (s, "gb", 1024);
  return v >= 6 && v <= 16 * 1024 * 1024 ? v : -1;
}

/* ---- validation ---- */

typedef struct td_check
{
  const char *mode; /* networkMode, default bridge */
  int64_t task_cpu; /* -1 when the task does not set it */
  int64_t task_mem; /* -1 when the task does not set it */
  const cJSON *volumes;
  int64_t cpu_sum;
  int essentials;
} td_check;

static int check_ports (const td_check *c, const char *name, const cJSON *ports, cp_fault *fault)
{
  const cJSON *p;
  cJSON_ArrayForEach (p, ports)
  {
    if (CHECK_MEMBERS (p, port_members, "portMappings.", fault) < 0)
      return -1;
    if (strcmp (c->mode, "none") == 0)
      return cp_fail (fault, "ClientException",
                      "Port mappings are not allowed for container '%s' when networkMode=none.",
                      name);
    int64_t cport = int_of (p, "containerPort", -1), hport = int_of (p, "hostPort", -1);
    const char *proto = str_of (p, "protocol");
    if (cport < 1 || cport > 65535)
      return cp_fail (fault, "ClientException",
                      "Invalid 'containerPort' setting for container '%s'.", name);
    if (hport < -1 || hport > 65535)
      return cp_fail (fault, "ClientException", "Invalid 'hostPort' setting for container '%s'.",
                      name);
    if (hport != -1 && hport != cport
        && (strcmp (c->mode, "awsvpc") == 0 || strcmp (c->mode, "host") == 0))
      return cp_fail (fault, "ClientException",
                      "When networkMode=%s, the host ports and container ports in port mappings "
                      "must match.",
                      c->mode);
    if (proto && strcmp (proto, "tcp") != 0 && strcmp (proto, "udp") != 0)
      return cp_fail (fault, "InvalidParameterException",
                      "Invalid 'protocol' setting for container '%s': tcp or udp.", name);
    if (proto == NULL && !cJSON_AddStringToObject ((cJSON *)p, "protocol", "tcp"))
      return cp_fail_oom (fault);
  }
  return 0;
}

static bool volume_exists (const cJSON *volumes, const char *name)
{
  const cJSON *v;
  cJSON_ArrayForEach (v, volumes)
  {
    const char *n = str_of (v, "name");
    if (n && strcmp (n, name) == 0)
      return true;
  }
  return false;
}

static int check_mounts (const td_check *c, const char *name, const cJSON *mounts, cp_fault *fault)
{
  const cJSON *m;
  cJSON_ArrayForEach (m, mounts)
  {
    if (CHECK_MEMBERS (m, mount_members, "mountPoints.", fault) < 0)
      return -1;
    const char *src = str_of (m, "sourceVolume"), *path = str_of (m, "containerPath");
    if (src == NULL || !volume_exists (c->volumes, src))
      return cp_fail (fault, "ClientException",
                      "Invalid 'sourceVolume' setting for container '%s': volume '%.255s' is not "
                      "defined in the task definition's volumes.",
                      name, src ? src : "");
    if (path == NULL || path[0] == '\0')
      return cp_fail (fault, "ClientException",
                      "Invalid 'containerPath' setting for container '%s'.", name);
  }
  return 0;
}

/* restartPolicy as ECS bounds it: restartAttemptPeriod 60..1800 s, up to 50 ignoredExitCodes
 * (whole numbers). */
static int check_restart_policy (const char *name, const cJSON *rp, cp_fault *fault)
{
  if (rp == NULL || cJSON_IsNull (rp))
    return 0;
  if (CHECK_MEMBERS (rp, restart_members, "containerDefinitions.restartPolicy.", fault) < 0)
    return -1;
  int64_t period = int_of (rp, "restartAttemptPeriod", 300);
  if (period < 60 || period > 1800)
    return cp_fail (fault, "ClientException",
                    "Invalid 'restartAttemptPeriod' setting for container '%s': from 60 to 1800 "
                    "seconds.",
                    name);
  const cJSON *codes = cJSON_GetObjectItemCaseSensitive (rp, "ignoredExitCodes"), *code;
  if (codes == NULL || cJSON_IsNull (codes))
    return 0;
  if (!cJSON_IsArray (codes))
    return cp_fail (fault, "SerializationException",
                    "'containerDefinitions.restartPolicy.ignoredExitCodes' has the wrong type.");
  if (cJSON_GetArraySize (codes) > 50)
    return cp_fail (fault, "ClientException",
                    "Invalid 'ignoredExitCodes' setting for container '%s': at most 50 codes.",
                    name);
  cJSON_ArrayForEach (code, codes)
  {
    if (!is_int32 (code))
      return cp_fail (fault, "SerializationException",
                      "'containerDefinitions.restartPolicy.ignoredExitCodes' has the wrong type.");
  }
  return 0;
}

/* Memory: a hard limit (memory), a soft one (memoryReservation) or the task's. */
static int check_memory (const td_check *c, cJSON *ct, const char *name, cp_fault *fault)
{
  int64_t mem = int_of (ct, "memory", -1), res = int_of (ct, "memoryReservation", -1);
  if (mem == -1 && res == -1 && c->task_mem == -1)
    return cp_fail (fault, "ClientException",
                    "Invalid setting for container '%s'. At least one of 'memory' or "
                    "'memoryReservation' must be specified.",
                    name);
  if ((mem != -1 && mem < 6) || (res != -1 && res < 6))
    return cp_fail (fault, "ClientException",
                    "Invalid 'memory' setting for container '%s': at least 6 MiB.", name);
  if (mem != -1 && res != -1 && res > mem)
    return cp_fail (fault, "ClientException",
                    "Invalid setting for container '%s': 'memoryReservation' (%" PRId64
                    ") must not exceed 'memory' (%" PRId64 ").",
                    name, res, mem);
  if (c->task_mem != -1 && (mem > c->task_mem || res > c->task_mem))
    return cp_fail (fault, "ClientException",
                    "Invalid setting for container '%s': its memory (%" PRId64
                    " MiB) is greater than the task memory (%" PRId64 " MiB).",
                    name, mem > res ? mem : res, c->task_mem);
  return 0;
}

/* One container definition; fills ECS's defaults (cpu 0, essential true). */
static int check_container (td_check *c, cJSON *ct, cp_fault *fault)
{
  if (CHECK_MEMBERS (ct, container_members, "containerDefinitions.", fault) < 0)
    return -1;
  const char *name = str_of (ct, "name"), *image = str_of (ct, "image");
  if (name == NULL || name[0] == '\0')
    return cp_fail (fault, "ClientException", "Container.name should not be null or empty.");
  if (!valid_name (name))
    return cp_fail (fault, "ClientException",
                    "Container name '%.255s' is invalid: up to 255 letters (uppercase and "
                    "lowercase), numbers, hyphens and underscores are allowed.",
                    name);
  if (image == NULL || image[0] == '\0')
    return cp_fail (fault, "ClientException", "Container.image should not be null or empty.");
  int64_t cpu = int_of (ct, "cpu", 0);
  if (cpu < 0)
    return cp_fail (fault, "ClientException", "Invalid 'cpu' setting for container '%s'.", name);
  c->cpu_sum += cpu;
  if (check_memory (c, ct, name, fault) < 0
      || check_ports (c, name, cJSON_GetObjectItemCaseSensitive (ct, "portMappings"), fault) < 0
      || check_mounts (c, name, cJSON_GetObjectItemCaseSensitive (ct, "mountPoints"), fault) < 0
      || check_restart_policy (name, cJSON_GetObjectItemCaseSensitive (ct, "restartPolicy"), fault)
             < 0)
    return -1;
  const cJSON *essential = cJSON_GetObjectItemCaseSensitive (ct, "essential");
  if (!cJSON_IsBool (essential))
    {
      cJSON_DeleteItemFromObjectCaseSensitive (ct, "essential");
      if (!cJSON_AddTrueToObject (ct, "essential"))
        return cp_fail_oom (fault);
      essential = cJSON_GetObjectItemCaseSensitive (ct, "essential");
    }
  c->essentials += cJSON_IsTrue (essential);
  if (!cJSON_IsNumber (cJSON_GetObjectItemCaseSensitive (ct, "cpu")))
    {
      cJSON_DeleteItemFromObjectCaseSensitive (ct, "cpu");
      if (!cJSON_AddNumberToObject (ct, "cpu", 0))
        return cp_fail_oom (fault);
    }
  return 0;
}

static int container_index (const cJSON *containers, const char *name)
{
  const cJSON *ct;
  int i = 0;
  cJSON_ArrayForEach (ct, containers)
  {
    if (strcmp (str_of (ct, "name"), name) == 0)
      return i;
    i++;
  }
  return -1;
}

typedef struct dep_graph
{
  int n;
  bool edge[MAX_CONTAINERS][MAX_CONTAINERS]; /* edge[a][b]: a depends on b */
  const char *names[MAX_CONTAINERS];
} dep_graph;

/* Depth-first search from v; on a back edge writes the cycle ("a -> b -> a") to fault. */
static int find_cycle (const dep_graph *g, int v, int state[], int path[], int depth,
                       cp_fault *fault)
{
  state[v] = 1; /* on the current path */
  path[depth] = v;
  for (int w = 0; w < g->n; w++)
    {
      if (!g->edge[v][w])
        continue;
      if (state[w] == 1)
        {
          char cycle[400] = "";
          int start = depth;
          while (path[start] != w)
            start--;
          for (int i = start; i <= depth; i++)
            snprintf (cycle + strlen (cycle), sizeof cycle - strlen (cycle), "%.30s -> ",
                      g->names[path[i]]);
          snprintf (cycle + strlen (cycle), sizeof cycle - strlen (cycle), "%.30s", g->names[w]);
          return cp_fail (fault, "ClientException",
                          "Container dependencies (dependsOn) form a cycle: %s.", cycle);
        }
      if (state[w] == 0 && find_cycle (g, w, state, path, depth + 1, fault) < 0)
        return -1;
    }
  state[v] = 2; /* done */
  return 0;
}

/* dependsOn: known containers, known conditions, COMPLETE/SUCCESS not on an essential container
 * (it would stop the task when it exits), and no cycle. */
static int check_depends (const cJSON *containers, cp_fault *fault)
{
  dep_graph g = { 0 };
  const cJSON *ct, *d;
  cJSON_ArrayForEach (ct, containers)
  {
    g.names[g.n] = str_of (ct, "name");
    cJSON_ArrayForEach (d, cJSON_GetObjectItemCaseSensitive (ct, "dependsOn"))
    {
      if (CHECK_MEMBERS (d, depends_members, "dependsOn.", fault) < 0)
        return -1;
      const char *target = str_of (d, "containerName"), *cond = str_of (d, "condition");
      int t = target ? container_index (containers, target) : -1;
      if (t < 0)
        return cp_fail (fault, "ClientException",
                        "Container '%s' depends on container '%.255s', which is not in the task "
                        "definition.",
                        g.names[g.n], target ? target : "");
      if (cond == NULL
          || (strcmp (cond, "START") != 0 && strcmp (cond, "COMPLETE") != 0
              && strcmp (cond, "SUCCESS") != 0 && strcmp (cond, "HEALTHY") != 0))
        return cp_fail (fault, "ClientException",
                        "Invalid dependsOn condition for container '%s': START, COMPLETE, "
                        "SUCCESS or HEALTHY.",
                        g.names[g.n]);
      if ((strcmp (cond, "COMPLETE") == 0 || strcmp (cond, "SUCCESS") == 0)
          && cJSON_IsTrue (
              cJSON_GetObjectItemCaseSensitive (cJSON_GetArrayItem (containers, t), "essential")))
        return cp_fail (fault, "ClientException",
                        "Container '%s' cannot depend on essential container '%s' with condition "
                        "%s.",
                        g.names[g.n], target, cond);
      g.edge[g.n][t] = true;
    }
    g.n++;
  }
  int state[MAX_CONTAINERS] = { 0 }, path[MAX_CONTAINERS + 1];
  for (int v = 0; v < g.n; v++)
    if (state[v] == 0 && find_cycle (&g, v, state, path, 0, fault) < 0)
      return -1;
  return 0;
}

/* dockerVolumeConfiguration: its members' types, scope task or shared, autoprovision only for a
 * shared volume, and not beside host. */
static int check_docker_volume (const cJSON *v, cp_fault *fault)
{
  const cJSON *dv = cJSON_GetObjectItemCaseSensitive (v, "dockerVolumeConfiguration");
  if (dv == NULL || cJSON_IsNull (dv))
    return 0;
  if (CHECK_MEMBERS (dv, docker_volume_members, "volumes.dockerVolumeConfiguration.", fault) < 0)
    return -1;
  const cJSON *host = cJSON_GetObjectItemCaseSensitive (v, "host");
  if (host && !cJSON_IsNull (host))
    return cp_fail (fault, "ClientException",
                    "Volume '%s' can have host or dockerVolumeConfiguration, not both.",
                    str_of (v, "name"));
  const char *scope = str_of (dv, "scope");
  if (scope && strcmp (scope, "task") != 0 && strcmp (scope, "shared") != 0)
    return cp_fail (fault, "ClientException",
                    "Volume '%s': dockerVolumeConfiguration.scope must be task or shared.",
                    str_of (v, "name"));
  if (cJSON_IsTrue (cJSON_GetObjectItemCaseSensitive (dv, "autoprovision"))
      && (scope == NULL || strcmp (scope, "shared") != 0))
    return cp_fail (fault, "ClientException",
                    "Volume '%s': autoprovision can be true only when the scope is shared.",
                    str_of (v, "name"));
  return 0;
}

static int check_volumes (const cJSON *volumes, cp_fault *fault)
{
  const cJSON *v, *w;
  if (cJSON_GetArraySize (volumes) > MAX_VOLUMES)
    return cp_fail (fault, "ClientException", "A task definition can have at most %d volumes.",
                    MAX_VOLUMES);
  cJSON_ArrayForEach (v, volumes)
  {
    if (CHECK_MEMBERS (v, volume_members, "volumes.", fault) < 0)
      return -1;
    const char *name = str_of (v, "name");
    if (!valid_name (name))
      return cp_fail (fault, "ClientException",
                      "Volume names can have up to 255 letters (uppercase and lowercase), "
                      "numbers, hyphens and underscores.");
    for (w = v->next; w; w = w->next)
      if (str_of (w, "name") && strcmp (str_of (w, "name"), name) == 0)
        return cp_fail (fault, "ClientException", "Duplicate volume name '%s'.", name);
    if (check_docker_volume (v, fault) < 0)
      return -1;
  }
  return 0;
}

/* ECS returns task cpu and memory in units and MiB whatever form they were given in. */
static int set_quantity (cJSON *in, const char *key, int64_t v, cp_fault *fault)
{
  char text[32];
  if (v < 0)
    return 0;
  snprintf (text, sizeof text, "%" PRId64, v);
  cJSON *s = cJSON_CreateString (text);
  if (s && cJSON_ReplaceItemInObjectCaseSensitive (in, key, s))
    return 0;
  cJSON_Delete (s);
  return cp_fail_oom (fault);
}

/* Task-level networkMode, cpu and memory (normalised to "units" and "MiB"). */
static int check_task_level (cJSON *in, td_check *c, cp_fault *fault)
{
  const char *cpu = str_of (in, "cpu"), *mem = str_of (in, "memory");
  c->mode = str_of (in, "networkMode") ? str_of (in, "networkMode") : "bridge";
  if (strcmp (c->mode, "bridge") != 0 && strcmp (c->mode, "host") != 0
      && strcmp (c->mode, "awsvpc") != 0 && strcmp (c->mode, "none") != 0)
    return cp_fail (fault, "InvalidParameterException",
                    "Invalid networkMode '%.64s': bridge, host, awsvpc or none.", c->mode);
  c->task_cpu = c->task_mem = -1;
  if (cpu && (c->task_cpu = cp_taskdef_cpu_units (cpu)) < 0)
    return cp_fail (fault, "ClientException",
                    "Invalid 'cpu' setting for task: CPU units (\"256\") or vCPUs (\"0.25 vCPU\"), "
                    "from 128 units to 192 vCPU.");
  if (mem && (c->task_mem = cp_taskdef_memory_mib (mem)) < 0)
    return cp_fail (fault, "ClientException",
                    "Invalid 'memory' setting for task: MiB (\"512\") or GB (\"1 GB\").");
  return set_quantity (in, "cpu", c->task_cpu, fault) < 0
             ? -1
             : set_quantity (in, "memory", c->task_mem, fault);
}

int cp_taskdef_validate (cJSON *in, cp_fault *fault)
{
  td_check c = { 0 };
  cJSON *containers, *ct;
  if (CHECK_MEMBERS (in, taskdef_members, "", fault) < 0)
    return -1;
  if (str_of (in, "family") == NULL)
    return cp_fail (fault, "InvalidParameterException", "family is required.");
  if (!valid_name (str_of (in, "family")))
    return cp_fail (fault, "ClientException",
                    "Family can have up to 255 characters: letters (uppercase and lowercase), "
                    "numbers, hyphens and underscores.");
  containers = cJSON_GetObjectItemCaseSensitive (in, "containerDefinitions");
  if (cJSON_GetArraySize (containers) == 0)
    return cp_fail (fault, "ClientException", "Container list cannot be empty.");
  if (cJSON_GetArraySize (containers) > MAX_CONTAINERS)
    return cp_fail (fault, "ClientException", "A task definition can have at most %d containers.",
                    MAX_CONTAINERS);
  c.volumes = cJSON_GetObjectItemCaseSensitive (in, "volumes");
  if (check_task_level (in, &c, fault) < 0 || check_volumes (c.volumes, fault) < 0)
    return -1;
  cJSON_ArrayForEach (ct, containers)
  {
    if (check_container (&c, ct, fault) < 0)
      return -1;
    for (const cJSON *prev = containers->child; prev != ct; prev = prev->next)
      if (strcmp (str_of (prev, "name"), str_of (ct, "name")) == 0)
        return cp_fail (fault, "ClientException",
                        "Container names must be unique: '%s' is used twice.", str_of (ct, "name"));
  }
  if (c.task_cpu != -1 && c.cpu_sum > c.task_cpu)
    return cp_fail (fault, "ClientException",
                    "The sum of the containers' cpu (%" PRId64
                    ") is greater than the task cpu (%" PRId64 ").",
                    c.cpu_sum, c.task_cpu);
  if (c.essentials == 0)
    return cp_fail (fault, "ClientException",
                    "Task definition must have at least one essential container.");
  return check_depends (containers, fault);
}

/* ---- the ECS shapes ---- */

char *cp_taskdef_arn (const cp_ctx *ctx, const char *family, int64_t revision)
{
  char *arn = NULL;
  if (asprintf (&arn, "arn:aws:ecs:%s:%s:task-definition/%s:%" PRId64, ctx->region, ctx->account_id,
                family, revision)
      < 0)
    return NULL;
  return arn;
}

/* Parses stored JSON text; text that does not parse (never written by us) reads as fallback. */
static cJSON *parse_stored (const char *text, bool array)
{
  cJSON *v = cJSON_Parse (text ? text : "");
  if (v == NULL || (array ? !cJSON_IsArray (v) : !cJSON_IsObject (v)))
    {
      cJSON_Delete (v);
      v = array ? cJSON_CreateArray () : cJSON_CreateObject ();
    }
  return v;
}

/* The TaskDefinition shape: the registered body plus what the service adds. */
static cJSON *taskdef_json (const cp_ctx *ctx, const cp_taskdef *td)
{
  _cleanup_free_ char *arn = cp_taskdef_arn (ctx, td->family, td->revision);
  _cleanup_json_ cJSON *j = parse_stored (td->body_json, false);
  const char *compat[] = { "EC2", "EXTERNAL" };
  cJSON *c = cJSON_CreateStringArray (compat, 2);
  if (c == NULL || !cJSON_AddItemToObject (j, "compatibilities", c))
    {
      cJSON_Delete (c);
      return NULL;
    }
  if (arn == NULL || j == NULL || !cJSON_AddStringToObject (j, "taskDefinitionArn", arn)
      || !cJSON_AddNumberToObject (j, "revision", (double)td->revision)
      || !cJSON_AddStringToObject (j, "status", td->status)
      || !cJSON_AddNumberToObject (j, "registeredAt", (double)td->registered_at)
      || (td->deregistered_at
          && !cJSON_AddNumberToObject (j, "deregisteredAt", (double)td->deregistered_at)))
    return NULL;
  return steal_ptr (&j);
}

/* {"taskDefinition": ..., "tags": [...] (when with_tags)} */
static int respond_taskdef (cp_ctx *ctx, const cp_taskdef *td, bool with_tags, cJSON **out,
                            cp_fault *fault)
{
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  cJSON *tj = taskdef_json (ctx, td);
  if (res == NULL || tj == NULL || !cJSON_AddItemToObject (res, "taskDefinition", tj))
    {
      cJSON_Delete (tj);
      return cp_fail_oom (fault);
    }
  if (with_tags && !cJSON_AddItemToObject (res, "tags", parse_stored (td->tags_json, true)))
    return cp_fail_oom (fault);
  *out = steal_ptr (&res);
  return 0;
}
int cp_register_task_definition (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  _cleanup_json_ cJSON *body = cJSON_Duplicate (in, true);
  _cleanup_free_ char *tags = NULL, *text = NULL;
  _cleanup_free_ char *family = NULL;
  berr *err = NULL;
  if (body == NULL)
    return cp_fail_oom (fault);
  if (cp_taskdef_validate (body, fault) < 0
      || cp_tags_parse (cJSON_GetObjectItemCaseSensitive (body, "tags"), &tags, fault) < 0)
    return -1;
  /* Tags are the resource's, not the definition's: kept beside the body, returned apart. */
  cJSON_DeleteItemFromObjectCaseSensitive (body, "tags");
  if ((text = cJSON_PrintUnformatted (body)) == NULL
      || (family = strdup (str_of (body, "family"))) == NULL)
    return cp_fail_oom (fault);
  cp_taskdef td = { .family = family,
                    .status = (char *)"ACTIVE",
                    .body_json = text,
                    .tags_json = tags,
                    .registered_at = time (NULL) };
  if (cp_store_add_taskdef (ctx->store, &td, &err) < 0)
    return cp_fail_server (fault, &err);
  return respond_taskdef (ctx, &td, true, out, fault);
}

/* A reference is family, family:revision or this control plane's ARN of one. Returns true with
 * family and *revision (0 when not given) filled, false when it cannot name one of ours. */
static bool parse_ref (const cp_ctx *ctx, const char *ref, char family[MAX_NAME + 1],
                       int64_t *revision)
{
  char prefix[160];
  snprintf (prefix, sizeof prefix, "arn:aws:ecs:%s:%s:task-definition/", ctx->region,
            ctx->account_id);
  bool arn = strncmp (ref, prefix, strlen (prefix)) == 0;
  if (arn)
    ref += strlen (prefix);
  else if (strncmp (ref, "arn:", 4) == 0)
    return false;
  const char *colon = strrchr (ref, ':');
  size_t flen = colon ? (size_t)(colon - ref) : strlen (ref);
  *revision = 0;
  if (colon)
    {
      size_t digits = strspn (colon + 1, "0123456789");
      if (digits == 0 || digits > 9 || colon[1 + digits] != '\0'
          || (*revision = strtoll (colon + 1, NULL, 10)) < 1)
        return false;
    }
  if (flen == 0 || flen > MAX_NAME || (arn && !colon))
    return false;
  memcpy (family, ref, flen);
  family[flen] = '\0';
  return valid_name (family);
}

int cp_taskdef_resolve (cp_ctx *ctx, const char *ref, cp_taskdef *out, cp_fault *fault)
{
  char family[MAX_NAME + 1];
  int64_t revision;
  berr *err = NULL;
  int found = parse_ref (ctx, ref, family, &revision)
                  ? cp_store_get_taskdef (ctx->store, family, revision, out, &err)
                  : 0;
  return found < 0 ? cp_fail_server (fault, &err) : found;
}

/* The required taskDefinition member. */
static int ref_member (const cJSON *in, const char **ref, cp_fault *fault)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (in, "taskDefinition");
  if (v != NULL && !cJSON_IsNull (v) && !cJSON_IsString (v))
    return cp_fail (fault, "SerializationException", "'taskDefinition' must be a string.");
  if (!cJSON_IsString (v))
    return cp_fail (fault, "InvalidParameterException", "taskDefinition is required.");
  *ref = v->valuestring;
  return 0;
}

/* include: only TAGS exists. */
static int parse_include (const cJSON *in, bool *tags, cp_fault *fault)
{
  const cJSON *include = cJSON_GetObjectItemCaseSensitive (in, "include"), *i;
  if (include != NULL && !cJSON_IsNull (include) && !has_type (include, T_STRLIST))
    return cp_fail (fault, "SerializationException", "'include' must be a list of strings.");
  cJSON_ArrayForEach (i, include)
  {
    if (strcmp (i->valuestring, "TAGS") != 0)
      return cp_fail (fault, "InvalidParameterException", "Unknown include value '%.64s'.",
                      i->valuestring);
    *tags = true;
  }
  return 0;
}

/* Family alone means its latest ACTIVE revision; a given revision is found whatever its status. */
int cp_describe_task_definition (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  const char *ref = NULL;
  char family[MAX_NAME + 1];
  int64_t revision;
  bool tags = false;
  _cleanup_taskdef_ cp_taskdef td = { 0 };
  berr *err = NULL;
  if (ref_member (in, &ref, fault) < 0 || parse_include (in, &tags, fault) < 0)
    return -1;
  int found = parse_ref (ctx, ref, family, &revision)
                  ? cp_store_get_taskdef (ctx->store, family, revision, &td, &err)
                  : 0;
  if (found < 0)
    return cp_fail_server (fault, &err);
  if (found == 0)
    return cp_fail (fault, "ClientException", "Unable to describe task definition.");
  return respond_taskdef (ctx, &td, tags, out, fault);
}

/* Needs a revision; an already INACTIVE one is returned as it is. */
int cp_deregister_task_definition (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  const char *ref = NULL;
  char family[MAX_NAME + 1];
  int64_t revision;
  _cleanup_taskdef_ cp_taskdef td = { 0 };
  berr *err = NULL;
  if (ref_member (in, &ref, fault) < 0)
    return -1;
  if (!parse_ref (ctx, ref, family, &revision))
    return cp_fail (fault, "ClientException", "The specified task definition does not exist.");
  if (revision == 0)
    return cp_fail (fault, "ClientException",
                    "Invalid revision number: give family:revision or the full ARN.");
  if (cp_store_deregister_taskdef (ctx->store, family, revision, time (NULL), &err) < 0)
    return cp_fail_server (fault, &err);
  int found = cp_store_get_taskdef (ctx->store, family, revision, &td, &err);
  if (found < 0)
    return cp_fail_server (fault, &err);
  if (found == 0)
    return cp_fail (fault, "ClientException", "The specified task definition does not exist.");
  return respond_taskdef (ctx, &td, false, out, fault);
}

/* ---- listing ---- */

typedef struct list_args
{
  cp_taskdef_query q;
  int limit;
  char after[MAX_NAME + 16]; /* the decoded token */
} list_args;

/* maxResults 1-100 (default 100), familyPrefix, nextToken: the last item of the previous page in
 * hex, opaque to clients and checked here. */
static int parse_list_args (const cJSON *in, list_args *a, cp_fault *fault)
{
  const cJSON *max = cJSON_GetObjectItemCaseSensitive (in, "maxResults");
  const cJSON *prefix = cJSON_GetObjectItemCaseSensitive (in, "familyPrefix");
  const cJSON *token = cJSON_GetObjectItemCaseSensitive (in, "nextToken");
  a->limit = 100;
  if ((max && !cJSON_IsNull (max) && !is_int32 (max))
      || (prefix && !cJSON_IsNull (prefix) && !cJSON_IsString (prefix))
      || (token && !cJSON_IsNull (token) && !cJSON_IsString (token)))
    return cp_fail (fault, "SerializationException",
                    "maxResults must be an integer, familyPrefix and nextToken strings.");
  if (is_int32 (max) && (max->valuedouble < 1 || max->valuedouble > 100))
    return cp_fail (fault, "InvalidParameterException", "maxResults must be between 1 and 100.");
  if (is_int32 (max))
    a->limit = (int)max->valuedouble;
  a->q.prefix = cJSON_IsString (prefix) ? prefix->valuestring : NULL;
  if (!cJSON_IsString (token))
    return 0;
  if (cp_token_decode (token->valuestring, a->after, sizeof a->after, fault) < 0)
    return -1;
  a->q.after_family = a->after;
  return 0;
}

static bool one_of (const char *s, const char *const *values, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp (s, values[i]) == 0)
      return true;
  return false;
}

static int opt_enum (const cJSON *in, const char *key, const char *const *values, size_t n,
                     const char **out, cp_fault *fault)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (in, key);
  if (v == NULL || cJSON_IsNull (v))
    return 0;
  if (!cJSON_IsString (v))
    return cp_fail (fault, "SerializationException", "'%s' must be a string.", key);
  if (!one_of (v->valuestring, values, n))
    return cp_fail (fault, "InvalidParameterException", "Invalid %s '%.64s'.", key, v->valuestring);
  *out = v->valuestring;
  return 0;
}

/* ASC: by family, then revision (newest last); DESC reverses both. status defaults to ACTIVE. */
int cp_list_task_definitions (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  static const char *const statuses[] = { "ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS" };
  static const char *const sorts[] = { "ASC", "DESC" };
  list_args a = { 0 };
  const char *sort = "ASC";
  _cleanup_strv_ char **items = NULL;
  bool more;
  berr *err = NULL;
  a.q.status = "ACTIVE";
  if (parse_list_args (in, &a, fault) < 0
      || opt_enum (in, "status", statuses, ARRAY_SIZE (statuses), &a.q.status, fault) < 0
      || opt_enum (in, "sort", sorts, ARRAY_SIZE (sorts), &sort, fault) < 0)
    return -1;
  a.q.desc = strcmp (sort, "DESC") == 0;
  if (a.q.after_family)
    {
      char *colon = strrchr (a.after, ':');
      if (colon == NULL || strspn (colon + 1, "0123456789") != strlen (colon + 1)
          || strlen (colon + 1) < 1 || strlen (colon + 1) > 9)
        return cp_fail (fault, "InvalidParameterException", "Invalid nextToken.");
      *colon = '\0';
      a.q.after_revision = strtoll (colon + 1, NULL, 10);
    }
  if (cp_store_list_taskdefs (ctx->store, &a.q, a.limit, &items, &more, &err) < 0)
    return cp_fail_server (fault, &err);
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  cJSON *arns = cJSON_AddArrayToObject (res, "taskDefinitionArns");
  if (arns == NULL)
    return cp_fail_oom (fault);
  for (size_t i = 0; items[i]; i++)
    {
      char *colon = strrchr (items[i], ':');
      *colon = '\0';
      _cleanup_free_ char *arn = cp_taskdef_arn (ctx, items[i], strtoll (colon + 1, NULL, 10));
      *colon = ':';
      if (arn == NULL || !cJSON_AddItemToArray (arns, cJSON_CreateString (arn)))
        return cp_fail_oom (fault);
      if (more && items[i + 1] == NULL && cp_token_add (res, items[i], fault) < 0)
        return -1;
    }
  *out = steal_ptr (&res);
  return 0;
}

/* status ACTIVE: families with an ACTIVE revision; INACTIVE: families with none; ALL (the
 * default): every family. */
int cp_list_task_definition_families (cp_ctx *ctx, const cJSON *in, cJSON **out, cp_fault *fault)
{
  static const char *const statuses[] = { "ACTIVE", "INACTIVE", "ALL" };
  list_args a = { 0 };
  const char *status = "ALL";
  _cleanup_strv_ char **items = NULL;
  bool more;
  berr *err = NULL;
  if (parse_list_args (in, &a, fault) < 0
      || opt_enum (in, "status", statuses, ARRAY_SIZE (statuses), &status, fault) < 0)
    return -1;
  a.q.status = strcmp (status, "ALL") == 0 ? NULL : status;
  if (cp_store_list_taskdef_families (ctx->store, &a.q, a.limit, &items, &more, &err) < 0)
    return cp_fail_server (fault, &err);
  _cleanup_json_ cJSON *res = cJSON_CreateObject ();
  cJSON *families = cJSON_AddArrayToObject (res, "families");
  if (families == NULL)
    return cp_fail_oom (fault);
  for (size_t i = 0; items[i]; i++)
    {
      if (!cJSON_AddItemToArray (families, cJSON_CreateString (items[i])))
        return cp_fail_oom (fault);
      if (more && items[i + 1] == NULL && cp_token_add (res, items[i], fault) < 0)
        return -1;
    }
  *out = steal_ptr (&res);
  return 0;
}
