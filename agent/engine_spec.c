/* The OCI config.json of one container: the runtime's defaults, the image config and the task
 * definition merged the way ECS merges them (the task definition wins). */
#include "agent/engine_internal.h"
#include "images/images.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "net/net.h"
#include "runtime/runtime.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int eng_build_config (eng_container *c, const struct img_config *ic, const char *bundle,
                      cJSON **out, berr **err);

static const char *jstr (const cJSON *o, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, key);
  return cJSON_IsString (v) && v->valuestring[0] ? v->valuestring : NULL;
}

static void add_strv (cJSON *arr, char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    cJSON_AddItemToArray (arr, cJSON_CreateString (v[i]));
}

static void add_json_strs (cJSON *arr, const cJSON *list)
{
  const cJSON *it;
  cJSON_ArrayForEach (it, list) if (cJSON_IsString (it))
      cJSON_AddItemToArray (arr, cJSON_CreateString (it->valuestring));
}

/* entryPoint/command override the image's Entrypoint/Cmd; a new entry point drops the Cmd. */
static cJSON *make_args (const cJSON *def, const struct img_config *ic)
{
  cJSON *args = cJSON_CreateArray ();
  const cJSON *ep = cJSON_GetObjectItem (def, "entryPoint");
  const cJSON *cmd = cJSON_GetObjectItem (def, "command");
  bool has_ep = cJSON_GetArraySize (ep) > 0, has_cmd = cJSON_GetArraySize (cmd) > 0;
  if (has_ep)
    add_json_strs (args, ep);
  else
    add_strv (args, ic->entrypoint);
  if (has_cmd)
    add_json_strs (args, cmd);
  else if (!has_ep)
    add_strv (args, ic->cmd);
  return args;
}

static cJSON *make_env (eng_container *c, const struct img_config *ic)
{
  cJSON *env = cJSON_CreateArray ();
  const cJSON *it;
  char buf[1024];
  if (ic->env)
    add_strv (env, ic->env);
  else
    cJSON_AddItemToArray (env, cJSON_CreateString ("PATH=/usr/local/sbin:/usr/local/bin:/usr/"
                                                   "sbin:/usr/bin:/sbin:/bin"));
  cJSON_ArrayForEach (it, cJSON_GetObjectItem (c->def, "environment"))
  {
    const char *n = jstr (it, "name"),
               *v = cJSON_GetStringValue (cJSON_GetObjectItem (it, "value"));
    if (n == NULL)
      continue;
    snprintf (buf, sizeof buf, "%s=%s", n, v ? v : "");
    cJSON_AddItemToArray (env, cJSON_CreateString (buf));
  }
  snprintf (buf, sizeof buf, "ECS_CONTAINER_METADATA_URI_V4=http://169.254.170.2/v4/%s", c->id);
  cJSON_AddItemToArray (env, cJSON_CreateString (buf));
  snprintf (buf, sizeof buf, "ECS_CONTAINER_METADATA_URI=http://169.254.170.2/v3/%s", c->id);
  cJSON_AddItemToArray (env, cJSON_CreateString (buf));
  /* the payload's credentials id; without one (credentials only by IAMRoleCredentialsMessage)
   * the task id, which the credentials endpoint maps to the task's current credentials */
  const char *cred_id
      = jstr (cJSON_GetObjectItem (c->task->body, "roleCredentials"), "credentialsId");
  if (cred_id || jstr (c->task->body, "taskRoleArn"))
    {
      snprintf (buf, sizeof buf, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/%s",
                cred_id ? cred_id : c->task->id);
      cJSON_AddItemToArray (env, cJSON_CreateString (buf));
    }
  return env;
}

static double num (const cJSON *o, const char *key)
{
  const cJSON *v = cJSON_GetObjectItem (o, key);
  if (cJSON_IsString (v))
    return strtod (v->valuestring, NULL);
  return cJSON_IsNumber (v) ? v->valuedouble : 0;
}

static void set_resources (eng_container *c, cJSON *lin)
{
  cJSON *res = cJSON_GetObjectItem (lin, "resources");
  double mem = num (c->def, "memory"), shares = num (c->def, "cpu");
  if (mem <= 0)
    mem = num (c->def, "memoryReservation") > 0 ? 0 : num (c->task->body, "memory");
  if (mem > 0)
    cJSON_AddNumberToObject (cJSON_AddObjectToObject (res, "memory"), "limit", mem * 1048576.0);
  if (shares > 0)
    cJSON_AddNumberToObject (cJSON_AddObjectToObject (res, "cpu"), "shares",
                             shares < 2 ? 2 : shares);
  char path[1024];
  eng_cg_container_path (c, path, sizeof path); /* <task root>/task/<name> */
  cJSON_AddStringToObject (lin, "cgroupsPath", path);
}

static void set_ulimits (const cJSON *def, cJSON *proc)
{
  cJSON *rl = cJSON_GetObjectItem (proc, "rlimits");
  const cJSON *u;
  cJSON_ArrayForEach (u, cJSON_GetObjectItem (def, "ulimits"))
  {
    const char *name = jstr (u, "name");
    char type[64] = "RLIMIT_";
    if (name == NULL || strlen (name) > 40)
      continue;
    for (size_t i = 0; name[i]; i++)
      type[7 + i] = (char)toupper ((unsigned char)name[i]);
    for (int i = cJSON_GetArraySize (rl) - 1; i >= 0; i--)
      if (strcmp (jstr (cJSON_GetArrayItem (rl, i), "type") ?: "", type) == 0)
        cJSON_DeleteItemFromArray (rl, i);
    cJSON *o = cJSON_CreateObject ();
    cJSON_AddStringToObject (o, "type", type);
    cJSON_AddNumberToObject (o, "soft", num (u, "softLimit"));
    cJSON_AddNumberToObject (o, "hard", num (u, "hardLimit"));
    cJSON_AddItemToArray (rl, o);
  }
}

/* linuxParameters.capabilities add/drop on every capability set ("ALL" drops them all). */
static void set_caps (const cJSON *def, cJSON *proc)
{
  const cJSON *lp
      = cJSON_GetObjectItem (cJSON_GetObjectItem (def, "linuxParameters"), "capabilities");
  static const char *const sets[] = { "bounding", "effective", "permitted" };
  cJSON *caps = cJSON_GetObjectItem (proc, "capabilities");
  const cJSON *it;
  for (size_t s = 0; lp && s < 3; s++)
    {
      cJSON *set = cJSON_GetObjectItem (caps, sets[s]);
      cJSON_ArrayForEach (
          it, cJSON_GetObjectItem (lp, "drop")) for (int i = cJSON_GetArraySize (set) - 1;
                                                     cJSON_IsString (it) && i >= 0; i--)
      {
        const char *have = cJSON_GetArrayItem (set, i)->valuestring;
        if (strcasecmp (it->valuestring, "ALL") == 0 || strcasecmp (have, it->valuestring) == 0
            || strcasecmp (have + 4, it->valuestring) == 0)
          cJSON_DeleteItemFromArray (set, i);
      }
      cJSON_ArrayForEach (it, cJSON_GetObjectItem (lp, "add")) if (cJSON_IsString (it))
      {
        char name[64];
        snprintf (name, sizeof name, "%s%s", strncasecmp (it->valuestring, "CAP_", 4) ? "CAP_" : "",
                  it->valuestring);
        for (char *p = name; *p; p++)
          *p = (char)toupper ((unsigned char)*p);
        cJSON_AddItemToArray (set, cJSON_CreateString (name));
      }
    }
}

static void add_mount (cJSON *mounts, const char *dst, const char *type, const char *src,
                       const char *const *opts)
{
  cJSON *m = cJSON_CreateObject ();
  cJSON_AddStringToObject (m, "destination", dst);
  cJSON_AddStringToObject (m, "type", type);
  cJSON_AddStringToObject (m, "source", src);
  cJSON *o = cJSON_AddArrayToObject (m, "options");
  for (size_t i = 0; opts[i]; i++)
    cJSON_AddItemToArray (o, cJSON_CreateString (opts[i]));
  cJSON_AddItemToArray (mounts, m);
}

/* A volume name as ECS allows it (and so safe as one path component). */
static bool volume_name_ok (const char *name)
{
  size_t n = 0;
  for (; name[n]; n++)
    if (!isalnum ((unsigned char)name[n]) && name[n] != '-' && name[n] != '_')
      return false;
  return n > 0 && n <= 255;
}

static const cJSON *volume_def (const eng_task *t, const char *name)
{
  const cJSON *v;
  cJSON_ArrayForEach (v, cJSON_GetObjectItem (t->body, "volumes"))
  {
    if (strcmp (jstr (v, "name") ?: "", name) == 0)
      return v;
  }
  return NULL;
}

static bool shared_scope (const cJSON *dv)
{
  const char *scope = jstr (dv, "scope");
  return scope && strcmp (scope, "shared") == 0;
}

const char *eng_volumes_refusal (const eng_task *t, char *buf, size_t size)
{
  const cJSON *v;
  cJSON_ArrayForEach (v, cJSON_GetObjectItem (t->body, "volumes"))
  {
    const char *name = jstr (v, "name") ?: "";
    const cJSON *dv = cJSON_GetObjectItem (v, "dockerVolumeConfiguration");
    const char *driver = jstr (dv, "driver");
    if (!volume_name_ok (name))
      snprintf (buf, size, "volume name `%.64s` is not valid", name);
    else if (!cJSON_IsObject (dv))
      continue;
    else if (driver && strcmp (driver, "local") != 0)
      snprintf (buf, size, "volume %s: driver `%.64s` is not supported (only local)", name, driver);
    else if (cJSON_GetArraySize (cJSON_GetObjectItem (dv, "driverOpts")) > 0)
      snprintf (buf, size, "volume %s: driverOpts are not supported", name);
    else if (shared_scope (dv) && t->e->o.volume_dir == NULL)
      snprintf (buf, size, "volume %s: shared volumes are not configured on this agent", name);
    else if (shared_scope (dv) && !cJSON_IsTrue (cJSON_GetObjectItem (dv, "autoprovision")))
      {
        char path[4096];
        snprintf (path, sizeof path, "%s/%s", t->e->o.volume_dir, name);
        if (access (path, F_OK) == 0)
          continue;
        snprintf (buf, size,
                  "volume %s: the shared volume does not exist and autoprovision is "
                  "false",
                  name);
      }
    else
      continue;
    return buf;
  }
  return NULL;
}

/* The host directory of a task volume: its host.sourcePath; for a shared
 * dockerVolumeConfiguration, $volume_dir/<name> (kept when the task goes); else a task-scoped
 * directory under $state/volumes/<task id>/ (made on first use, shared by the task's
 * containers, removed with the task). eng_volumes_refusal has vetted the names and drivers. */
static int volume_path (eng_container *c, const char *name, char **out, berr **err)
{
  const cJSON *v = volume_def (c->task, name);
  const char *host = jstr (cJSON_GetObjectItem (v, "host"), "sourcePath");
  if (host)
    return (*out = strdup (host)) ? 0 : berr_make (err, ENOMEM, "volume");
  if (!volume_name_ok (name))
    return berr_make (err, EINVAL, "volume name `%.64s` is not valid", name);
  int r;
  if (shared_scope (cJSON_GetObjectItem (v, "dockerVolumeConfiguration"))
      && c->task->e->o.volume_dir)
    r = asprintf (out, "%s/%s", c->task->e->o.volume_dir, name);
  else
    r = asprintf (out, "%s/volumes/%s/%s", c->task->e->o.state_dir, c->task->id, name);
  if (r < 0)
    return berr_make (err, ENOMEM, "volume");
  return bfs_mkdirs (*out, 0755, err);
}

/* def's mountPoints, then (depth-first, as docker's --volumes-from copies every mount of the
 * source, its own volumesFrom included) the mounts of each volumesFrom source; ro forces
 * read-only (a volumesFrom with readOnly), else each mount point's readOnly holds. */
static int add_mount_points (eng_container *c, const cJSON *def, bool ro, int depth, cJSON *mounts,
                             berr **err)
{
  const cJSON *mp, *vf;
  if (depth > 8)
    return berr_make (err, ELOOP, "volumesFrom: a cycle or too deep a chain");
  cJSON_ArrayForEach (mp, cJSON_GetObjectItem (def, "mountPoints"))
  {
    const char *src = jstr (mp, "sourceVolume"), *dst = jstr (mp, "containerPath");
    _cleanup_free_ char *host = NULL;
    if (src == NULL || dst == NULL)
      return berr_make (err, EINVAL, "mountPoints: sourceVolume and containerPath are required");
    if (volume_path (c, src, &host, err) < 0)
      return -1;
    bool r = ro || cJSON_IsTrue (cJSON_GetObjectItem (mp, "readOnly"));
    const char *opts[] = { "rbind", r ? "ro" : "rw", NULL };
    add_mount (mounts, dst, "bind", host, opts);
  }
  cJSON_ArrayForEach (vf, cJSON_GetObjectItem (def, "volumesFrom"))
  {
    const char *name = jstr (vf, "sourceContainer");
    eng_container *from = name ? eng_find_container (c->task->e, c->task->arn, name) : NULL;
    if (from == NULL || from == c)
      return berr_make (err, EINVAL, "volumesFrom: no container `%s` in the task",
                        name ? name : "");
    if (add_mount_points (c, from->def, ro || cJSON_IsTrue (cJSON_GetObjectItem (vf, "readOnly")),
                          depth + 1, mounts, err)
        < 0)
      return -1;
  }
  return 0;
}

/* mountPoints (host and task-scoped volumes) and volumesFrom; tmpfs; /dev/shm's size. */
static int set_mounts (eng_container *c, cJSON *mounts, berr **err)
{
  const cJSON *t;
  if (add_mount_points (c, c->def, false, 0, mounts, err) < 0)
    return -1;
  const cJSON *lp = cJSON_GetObjectItem (c->def, "linuxParameters");
  cJSON_ArrayForEach (t, cJSON_GetObjectItem (lp, "tmpfs"))
  {
    char size[48];
    snprintf (size, sizeof size, "size=%.0fm", num (t, "size"));
    const char *opts[] = { "nosuid", "nodev", size, NULL };
    if (jstr (t, "containerPath"))
      add_mount (mounts, jstr (t, "containerPath"), "tmpfs", "tmpfs", opts);
  }
  double shm = num (lp, "sharedMemorySize");
  for (int i = 0; shm > 0 && i < cJSON_GetArraySize (mounts); i++)
    {
      cJSON *m = cJSON_GetArrayItem (mounts, i);
      char size[48];
      snprintf (size, sizeof size, "size=%.0fm", shm);
      if (strcmp (jstr (m, "destination") ?: "", "/dev/shm") == 0)
        cJSON_AddItemToArray (cJSON_GetObjectItem (m, "options"), cJSON_CreateString (size));
    }
  return 0;
}

/* Bridge mode: join the endpoint's namespace by path. */
static void join_network (cJSON *lin, const char *path)
{
  cJSON *ns = cJSON_GetObjectItem (lin, "namespaces"), *it;
  cJSON_ArrayForEach (it, ns)
  {
    if (strcmp (jstr (it, "type") ?: "", "network") == 0)
      cJSON_AddStringToObject (it, "path", path);
  }
}

/* Writes name (hosts, resolv.conf) into the bundle and binds it over /etc/<name>. */
static int etc_file (cJSON *mounts, const char *bundle, const char *name, const char *text,
                     berr **err)
{
  _cleanup_close_ int dfd = open (bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char src[4096], dst[64];
  if (dfd < 0)
    return berr_sys (err, "open `%s`", bundle);
  if (bfs_write_atomic_volatile (dfd, name, text, strlen (text), 0644, err) < 0)
    return -1;
  snprintf (src, sizeof src, "%s/%s", bundle, name);
  snprintf (dst, sizeof dst, "/etc/%s", name);
  const char *opts[] = { "bind", "rw", NULL };
  add_mount (mounts, dst, "bind", src, opts);
  return 0;
}

/* extraHosts into /etc/hosts, dnsServers and dnsSearchDomains into /etc/resolv.conf (only when
 * the task definition names them: otherwise the image's files stay). */
static int set_dns (eng_container *c, cJSON *mounts, const char *bundle, berr **err)
{
  const cJSON *eh = cJSON_GetObjectItem (c->def, "extraHosts"), *it;
  const cJSON *ds = cJSON_GetObjectItem (c->def, "dnsServers");
  const cJSON *dd = cJSON_GetObjectItem (c->def, "dnsSearchDomains");
  char *buf = NULL;
  size_t len = 0;
  int r = 0;
  if (cJSON_GetArraySize (eh) > 0)
    {
      FILE *f = open_memstream (&buf, &len);
      if (f == NULL)
        return berr_sys (err, "hosts");
      fprintf (f, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
      cJSON_ArrayForEach (it, eh) if (jstr (it, "ipAddress") && jstr (it, "hostname"))
          fprintf (f, "%s\t%s\n", jstr (it, "ipAddress"), jstr (it, "hostname"));
      fclose (f);
      r = etc_file (mounts, bundle, "hosts", buf, err);
      free (buf), buf = NULL;
    }
  if (r == 0 && (cJSON_GetArraySize (ds) > 0 || cJSON_GetArraySize (dd) > 0))
    {
      FILE *f = open_memstream (&buf, &len);
      if (f == NULL)
        return berr_sys (err, "resolv.conf");
      cJSON_ArrayForEach (it, ds) if (cJSON_IsString (it))
          fprintf (f, "nameserver %s\n", it->valuestring);
      if (cJSON_GetArraySize (dd) > 0)
        {
          fprintf (f, "search");
          cJSON_ArrayForEach (it, dd) if (cJSON_IsString (it)) fprintf (f, " %s", it->valuestring);
          fprintf (f, "\n");
        }
      fclose (f);
      r = etc_file (mounts, bundle, "resolv.conf", buf, err);
      free (buf);
    }
  return r;
}

/* The definition's hostname; else, in awsvpc, the ENI's privateDnsName (as /etc/hostname says,
 * and as ECS names such tasks); else the task id. */
static void set_hostname (eng_container *c, const cJSON *def, cJSON *cfg)
{
  struct net_eni eni;
  _cleanup_berr_ berr *err = NULL;
  const char *name = jstr (def, "hostname");
  if (name == NULL && eng_is_awsvpc (c->task) && eng_task_eni (c->task, &eni, &err) == 0
      && eni.hostname[0])
    name = eni.hostname;
  cJSON_DeleteItemFromObjectCaseSensitive (cfg, "hostname"); /* the runtime default's */
  cJSON_AddStringToObject (cfg, "hostname", name ? name : c->task->id);
}

/* awsvpc: the task's resolv.conf and hostname (from the ENI) over the container's; a
 * definition's dnsServers are bound later, over these. */
static int awsvpc_files (eng_container *c, cJSON *mounts, berr **err)
{
  static const char *const names[] = { "resolv.conf", "hostname" };
  const char *opts[] = { "bind", "ro", NULL };
  if (!eng_is_awsvpc (c->task))
    return 0;
  _cleanup_free_ char *dir = eng_task_dir (c->task);
  if (dir == NULL)
    return berr_make (err, ENOMEM, "awsvpc");
  for (size_t i = 0; i < 2; i++)
    {
      char src[4096], dst[64];
      snprintf (src, sizeof src, "%s/%s", dir, names[i]);
      snprintf (dst, sizeof dst, "/etc/%s", names[i]);
      add_mount (mounts, dst, "bind", src, opts);
    }
  return 0;
}

static void host_network (cJSON *lin)
{
  cJSON *ns = cJSON_GetObjectItem (lin, "namespaces");
  for (int i = cJSON_GetArraySize (ns) - 1; i >= 0; i--)
    {
      const char *type = jstr (cJSON_GetArrayItem (ns, i), "type") ?: "";
      if (strcmp (type, "network") == 0 || strcmp (type, "uts") == 0)
        cJSON_DeleteItemFromArray (ns, i);
    }
}

/* Every capability the agent may give (its bounding set: a container cannot get more than its
 * parent, and asking for more fails the start), "CAP_CHOWN" style. */
static cJSON *all_caps (void)
{
  cJSON *arr = cJSON_CreateArray ();
  for (cap_value_t i = 0; arr && i < cap_max_bits (); i++)
    {
      if (cap_get_bound (i) != 1)
        continue;
      char *name = cap_to_name (i);
      for (char *p = name; p && *p; p++)
        *p = (char)toupper ((unsigned char)*p);
      if (name)
        cJSON_AddItemToArray (arr, cJSON_CreateString (name));
      cap_free (name);
    }
  return arr;
}

static bool listed (const char *const *v, const char *s)
{
  for (; *v; v++)
    if (strcmp (*v, s) == 0)
      return true;
  return false;
}

/* A host device node as a linux.devices entry at path. */
static cJSON *device_json (const char *path, const struct stat *st)
{
  cJSON *o = cJSON_CreateObject ();
  cJSON_AddStringToObject (o, "path", path);
  cJSON_AddStringToObject (o, "type", S_ISBLK (st->st_mode) ? "b" : "c");
  cJSON_AddNumberToObject (o, "major", major (st->st_rdev));
  cJSON_AddNumberToObject (o, "minor", minor (st->st_rdev));
  cJSON_AddNumberToObject (o, "fileMode", st->st_mode & 07777);
  cJSON_AddNumberToObject (o, "uid", st->st_uid);
  cJSON_AddNumberToObject (o, "gid", st->st_gid);
  return o;
}

/* The host's device nodes directly in /dev (those the runtime makes itself aside), as
 * linux.devices: a privileged container sees them as docker --privileged does. */
static int host_devices (cJSON *lin, berr **err)
{
  static const char *const own[]
      = { "null", "zero", "full", "random", "urandom", "tty", "console", "ptmx", NULL };
  cJSON *arr = cJSON_AddArrayToObject (lin, "devices");
  DIR *d = opendir ("/dev");
  struct dirent *de;
  if (d == NULL)
    return berr_sys (err, "privileged: open /dev");
  while ((de = readdir (d)))
    {
      struct stat st;
      char path[300];
      if (fstatat (dirfd (d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0
          || !(S_ISCHR (st.st_mode) || S_ISBLK (st.st_mode)) || listed (own, de->d_name))
        continue;
      snprintf (path, sizeof path, "/dev/%s", de->d_name);
      cJSON_AddItemToArray (arr, device_json (path, &st));
    }
  closedir (d);
  return 0;
}

/* linuxParameters.devices: each hostPath's node made at containerPath (default the same path)
 * and allowed with its permissions (read, write, mknod; default all three), as an allow rule
 * for exactly that node in resources.devices, which berth-runtime honours (docs/runtime.md). */
static int set_devices (const cJSON *def, cJSON *lin, berr **err)
{
  const cJSON *lp = cJSON_GetObjectItem (def, "linuxParameters"), *d, *p;
  cJSON *nodes = cJSON_GetObjectItem (lin, "devices");
  cJSON *rules = cJSON_GetObjectItem (cJSON_GetObjectItem (lin, "resources"), "devices");
  cJSON_ArrayForEach (d, cJSON_GetObjectItem (lp, "devices"))
  {
    const char *host = jstr (d, "hostPath"), *path = jstr (d, "containerPath") ?: host;
    struct stat st;
    char access[4] = "";
    if (host == NULL || path[0] != '/')
      return berr_make (err, EINVAL, "linuxParameters.devices: hostPath is required");
    if (stat (host, &st) < 0)
      return berr_sys (err, "linuxParameters.devices: `%s`", host);
    if (!S_ISCHR (st.st_mode) && !S_ISBLK (st.st_mode))
      return berr_make (err, EINVAL, "linuxParameters.devices: `%s` is not a device", host);
    cJSON_ArrayForEach (p, cJSON_GetObjectItem (d, "permissions"))
    {
      const char *v = cJSON_GetStringValue (p) ?: "";
      char a = strcmp (v, "read") == 0    ? 'r'
               : strcmp (v, "write") == 0 ? 'w'
               : strcmp (v, "mknod") == 0 ? 'm'
                                          : 0;
      if (a == 0)
        return berr_make (err, EINVAL, "linuxParameters.devices: bad permission `%s`", v);
      if (strchr (access, a) == NULL && strlen (access) < 3)
        access[strlen (access)] = a;
    }
    if (nodes == NULL)
      nodes = cJSON_AddArrayToObject (lin, "devices");
    cJSON_AddItemToArray (nodes, device_json (path, &st));
    cJSON *rule = device_json (path, &st);
    cJSON_DeleteItemFromObject (rule, "path");
    cJSON_DeleteItemFromObject (rule, "fileMode");
    cJSON_DeleteItemFromObject (rule, "uid");
    cJSON_DeleteItemFromObject (rule, "gid");
    cJSON_AddTrueToObject (rule, "allow");
    cJSON_AddStringToObject (rule, "access", access[0] ? access : "rwm");
    cJSON_AddItemToArray (rules, rule);
  }
  return 0;
}

/* privileged: every capability, no seccomp filter, no masked or read-only paths, /sys and its
 * cgroups writable, every device allowed and the host's nodes in /dev. The cgroup limits
 * (memory, cpu, pids) still apply. */
static int set_privileged (cJSON *cfg, berr **err)
{
  static const char *const sets[] = { "bounding", "effective", "permitted" };
  cJSON *proc = cJSON_GetObjectItem (cfg, "process"), *lin = cJSON_GetObjectItem (cfg, "linux");
  cJSON *caps = cJSON_GetObjectItem (proc, "capabilities"), *m;
  for (size_t i = 0; i < 3; i++)
    cJSON_ReplaceItemInObject (caps, sets[i], all_caps ());
  cJSON_ReplaceItemInObject (proc, "noNewPrivileges", cJSON_CreateFalse ());
  cJSON_DeleteItemFromObject (lin, "seccomp");
  cJSON_ReplaceItemInObject (lin, "maskedPaths", cJSON_CreateArray ());
  cJSON_ReplaceItemInObject (lin, "readonlyPaths", cJSON_CreateArray ());
  cJSON *all = cJSON_CreateObject ();
  cJSON_AddTrueToObject (all, "allow");
  cJSON_AddStringToObject (all, "access", "rwm");
  cJSON_AddItemToArray (cJSON_GetObjectItem (cJSON_GetObjectItem (lin, "resources"), "devices"),
                        all);
  cJSON_ArrayForEach (m, cJSON_GetObjectItem (cfg, "mounts"))
  {
    const char *dst = jstr (m, "destination") ?: "";
    cJSON *opts = cJSON_GetObjectItem (m, "options");
    for (int i = cJSON_GetArraySize (opts) - 1; strncmp (dst, "/sys", 4) == 0 && i >= 0; i--)
      if (strcmp (cJSON_GetArrayItem (opts, i)->valuestring, "ro") == 0)
        cJSON_DeleteItemFromArray (opts, i);
  }
  return host_devices (lin, err);
}

/* initProcessEnabled: berth-init (static, libc only) bound read-only at /dev/init, on the
 * container's own /dev tmpfs so the image is not touched, and run as PID 1 before the command. */
static int set_init (eng_container *c, cJSON *cfg, berr **err)
{
  const agent_engine_opts *o = &c->task->e->o;
  _cleanup_free_ char *path = NULL;
  const char *slash = strrchr (o->shim_path, '/');
  if (o->init_path)
    path = strdup (o->init_path);
  else if (asprintf (&path, "%.*s%sberth-init", slash ? (int)(slash - o->shim_path) : 0,
                     o->shim_path, slash ? "/" : "")
           < 0)
    path = NULL;
  if (path == NULL)
    return berr_make (err, ENOMEM, "initProcessEnabled");
  if (access (path, X_OK) < 0)
    return berr_sys (err, "initProcessEnabled: `%s`", path);
  const char *opts[] = { "bind", "ro", "nosuid", "nodev", NULL };
  add_mount (cJSON_GetObjectItem (cfg, "mounts"), "/dev/init", "bind", path, opts);
  cJSON *args = cJSON_GetObjectItem (cJSON_GetObjectItem (cfg, "process"), "args");
  cJSON_InsertItemInArray (args, 0, cJSON_CreateString ("--"));
  cJSON_InsertItemInArray (args, 0, cJSON_CreateString ("/dev/init"));
  return 0;
}

int eng_build_config (eng_container *c, const struct img_config *ic, const char *bundle,
                      cJSON **out, berr **err)
{
  const cJSON *def = c->def;
  _cleanup_json_ cJSON *cfg = rt_oci_default_config ();
  if (cfg == NULL)
    return berr_make (err, ENOMEM, "config.json");
  bool privileged = cJSON_IsTrue (cJSON_GetObjectItem (def, "privileged"));
  if (privileged && c->task->e->o.cfg->disable_privileged)
    return berr_make (err, EPERM, "privileged containers are disabled (ECS_DISABLE_PRIVILEGED)");
  cJSON *proc = cJSON_GetObjectItem (cfg, "process"), *lin = cJSON_GetObjectItem (cfg, "linux");
  cJSON *root = cJSON_CreateObject ();
  cJSON_ReplaceItemInObject (cfg, "root", root);
  cJSON_AddStringToObject (root, "path", c->rootfs);
  cJSON_AddBoolToObject (root, "readonly",
                         cJSON_IsTrue (cJSON_GetObjectItem (def, "readonlyRootFilesystem")));
  cJSON *args = make_args (def, ic);
  if (cJSON_GetArraySize (args) == 0)
    {
      cJSON_Delete (args);
      return berr_make (err, EINVAL, "no command: neither the image nor the task names one");
    }
  cJSON_ReplaceItemInObject (proc, "args", args);
  cJSON_ReplaceItemInObject (proc, "env", make_env (c, ic));
  const char *cwd = jstr (def, "workingDirectory") ?: ic->working_dir;
  cJSON_ReplaceItemInObject (proc, "cwd", cJSON_CreateString (cwd && cwd[0] ? cwd : "/"));
  const char *user = jstr (def, "user") ?: (ic->user && ic->user[0] ? ic->user : NULL);
  if (user)
    cJSON_AddStringToObject (cJSON_GetObjectItem (proc, "user"), "username", user);
  set_ulimits (def, proc);
  if (privileged && set_privileged (cfg, err) < 0)
    return -1;
  if (!privileged && set_devices (def, lin, err) < 0) /* privileged has them all */
    return -1;
  set_caps (def, proc);
  set_resources (c, lin);
  const cJSON *lp = cJSON_GetObjectItem (def, "linuxParameters");
  if (cJSON_IsTrue (cJSON_GetObjectItem (lp, "initProcessEnabled")) && set_init (c, cfg, err) < 0)
    return -1;
  if (set_mounts (c, cJSON_GetObjectItem (cfg, "mounts"), err) < 0
      || awsvpc_files (c, cJSON_GetObjectItem (cfg, "mounts"), err) < 0
      || set_dns (c, cJSON_GetObjectItem (cfg, "mounts"), bundle, err) < 0)
    return -1;
  const char *mode = jstr (c->task->body, "networkMode");
  if (mode && strcmp (mode, "host") == 0)
    host_network (lin);
  else if (c->netns)
    join_network (lin, c->netns);
  if (!mode || strcmp (mode, "host") != 0)
    set_hostname (c, def, cfg);
  *out = steal_ptr (&cfg);
  return 0;
}
