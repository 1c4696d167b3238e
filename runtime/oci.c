/* OCI runtime-spec config.json to struct rt_spec (untrusted input: every field is type-checked
 * and errors name it; unknown fields are ignored), and the default config.json Berth writes. */
#include "runtime/runtime.h"

#include "cgroups/cgroups.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/strv.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

/* Error messages carry the dotted path of the object they are about: a parser that is handed
 * an object wraps its errors with that object's full path, and its callers do not wrap again,
 * so a message reads "process.rlimits[1]: unknown type `RLIMIT_FOO`". */

static const char *const ns_names[RT_NS__COUNT] = {
  [RT_NS_PID] = "pid",     [RT_NS_NET] = "network",   [RT_NS_IPC] = "ipc",  [RT_NS_UTS] = "uts",
  [RT_NS_MOUNT] = "mount", [RT_NS_CGROUP] = "cgroup", [RT_NS_USER] = "user"
};

static const struct
{
  const char *name;
  int resource;
} rlimit_names[] = {
  { "RLIMIT_AS", RLIMIT_AS },
  { "RLIMIT_CORE", RLIMIT_CORE },
  { "RLIMIT_CPU", RLIMIT_CPU },
  { "RLIMIT_DATA", RLIMIT_DATA },
  { "RLIMIT_FSIZE", RLIMIT_FSIZE },
  { "RLIMIT_LOCKS", RLIMIT_LOCKS },
  { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
  { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
  { "RLIMIT_NICE", RLIMIT_NICE },
  { "RLIMIT_NOFILE", RLIMIT_NOFILE },
  { "RLIMIT_NPROC", RLIMIT_NPROC },
  { "RLIMIT_RSS", RLIMIT_RSS },
  { "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
  { "RLIMIT_RTTIME", RLIMIT_RTTIME },
  { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
  { "RLIMIT_STACK", RLIMIT_STACK },
};

/* Mount options that are flags (mount(8) names); clear: the option removes the flag. */
static const struct
{
  const char *name;
  unsigned long flag;
  bool clear;
} mount_flags[] = {
  { "ro", MS_RDONLY, false },
  { "rw", MS_RDONLY, true },
  { "nosuid", MS_NOSUID, false },
  { "suid", MS_NOSUID, true },
  { "nodev", MS_NODEV, false },
  { "dev", MS_NODEV, true },
  { "noexec", MS_NOEXEC, false },
  { "exec", MS_NOEXEC, true },
  { "sync", MS_SYNCHRONOUS, false },
  { "async", MS_SYNCHRONOUS, true },
  { "dirsync", MS_DIRSYNC, false },
  { "remount", MS_REMOUNT, false },
  { "mand", MS_MANDLOCK, false },
  { "nomand", MS_MANDLOCK, true },
  { "noatime", MS_NOATIME, false },
  { "atime", MS_NOATIME, true },
  { "nodiratime", MS_NODIRATIME, false },
  { "diratime", MS_NODIRATIME, true },
  { "relatime", MS_RELATIME, false },
  { "norelatime", MS_RELATIME, true },
  { "strictatime", MS_STRICTATIME, false },
  { "nostrictatime", MS_STRICTATIME, true },
  { "lazytime", MS_LAZYTIME, false },
  { "nolazytime", MS_LAZYTIME, true },
  { "silent", MS_SILENT, false },
  { "loud", MS_SILENT, true },
  { "nosymfollow", MS_NOSYMFOLLOW, false },
  { "bind", MS_BIND, false },
  { "rbind", MS_BIND | MS_REC, false },
  { "defaults", 0, false },
};

static const struct
{
  const char *name;
  unsigned long propagation;
} mount_propagations[] = {
  { "private", MS_PRIVATE },       { "rprivate", MS_PRIVATE | MS_REC },
  { "slave", MS_SLAVE },           { "rslave", MS_SLAVE | MS_REC },
  { "shared", MS_SHARED },         { "rshared", MS_SHARED | MS_REC },
  { "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC },
};

static int oom (berr **err)
{
  return berr_make (err, ENOMEM, "out of memory");
}

static int dup_str (const char *s, char **out, berr **err)
{
  char *d = strdup (s);
  if (d == NULL)
    return oom (err);
  free (*out);
  *out = d;
  return 0;
}

static int check_absolute (const char *path, const char *what, berr **err)
{
  if (path[0] != '/')
    return berr_make (err, EINVAL, "`%s` must be an absolute path, not `%s`", what, path);
  return 0;
}

/* path if absolute, else dir/path; made absolute against the working directory when dir is
 * relative, since the launcher may run from elsewhere. */
static int resolve_path (const char *dir, const char *path, char **out, berr **err)
{
  if (path[0] == '/')
    return dup_str (path, out, err);
  _cleanup_free_ char *cwd = NULL;
  if (dir[0] != '/' && (cwd = getcwd (NULL, 0)) == NULL)
    return berr_sys (err, "getcwd");
  char *s = NULL;
  int r;
  if (cwd == NULL)
    r = asprintf (&s, "%s/%s", dir, path);
  else if (strcmp (dir, ".") == 0)
    r = asprintf (&s, "%s/%s", cwd, path);
  else
    r = asprintf (&s, "%s/%s/%s", cwd, dir, path);
  if (r < 0)
    return oom (err);
  free (*out);
  *out = s;
  return 0;
}

/* A 32-bit id (uid, gid); (uint32_t) -1 means "no change" to the kernel and is refused. */
static int get_id (const cJSON *obj, const char *key, uint32_t *out, berr **err)
{
  int64_t v = *out;
  if (bjson_get_int (obj, key, false, 0, UINT32_MAX - 1, &v, err) < 0)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

/* ---- process -------------------------------------------------------------------------- */

static int parse_user (const cJSON *proc, struct rt_process *p, berr **err)
{
  const cJSON *user = NULL, *gids = NULL, *it;
  const char *name = NULL;
  if (bjson_get_obj (proc, "user", false, &user, err) < 0)
    return berr_wrap (err, "process");
  if (user == NULL)
    return 0;
  if (get_id (user, "uid", &p->uid, err) < 0 || get_id (user, "gid", &p->gid, err) < 0
      || bjson_get_arr (user, "additionalGids", false, &gids, err) < 0
      || bjson_get_str (user, "username", false, &name, err) < 0
      || (name && dup_str (name, &p->user, err) < 0))
    return berr_wrap (err, "process.user");
  size_t n = (size_t)cJSON_GetArraySize (gids), i = 0;
  if (n > 0 && (p->groups = calloc (n, sizeof *p->groups)) == NULL)
    return oom (err);
  cJSON_ArrayForEach (it, gids)
  {
    int64_t g = 0;
    if (bjson_to_int (it, "additionalGids[]", 0, UINT32_MAX - 1, &g, err) < 0)
      return berr_wrap (err, "process.user");
    p->groups[i++] = (gid_t)g;
    p->n_groups = i;
  }
  return 0;
}

static int parse_caps (const cJSON *proc, struct rt_caps *caps, berr **err)
{
  static const struct
  {
    const char *key;
    size_t offset;
  } sets[] = {
    { "bounding", offsetof (struct rt_caps, bounding) },
    { "effective", offsetof (struct rt_caps, effective) },
    { "permitted", offsetof (struct rt_caps, permitted) },
    { "inheritable", offsetof (struct rt_caps, inheritable) },
    { "ambient", offsetof (struct rt_caps, ambient) },
  };
  const cJSON *obj = NULL;
  if (bjson_get_obj (proc, "capabilities", false, &obj, err) < 0)
    return berr_wrap (err, "process");
  for (size_t s = 0; obj && s < ARRAY_SIZE (sets); s++)
    {
      const cJSON *arr = NULL, *it;
      uint64_t *set = (uint64_t *)((char *)caps + sets[s].offset);
      if (bjson_get_arr (obj, sets[s].key, false, &arr, err) < 0)
        return berr_wrap (err, "process.capabilities");
      size_t i = 0;
      cJSON_ArrayForEach (it, arr)
      {
        int cap;
        if (!cJSON_IsString (it))
          return berr_make (err, EINVAL, "process.capabilities.%s[%zu]: must be a string",
                            sets[s].key, i);
        if (rt_cap_from_name (it->valuestring, &cap, err) < 0)
          return berr_wrap (err, "process.capabilities.%s[%zu]", sets[s].key, i);
        *set |= UINT64_C (1) << cap;
        i++;
      }
    }
  return 0;
}

/* An rlimit value: RLIM_INFINITY (2^64 - 1) is common in configs, and parses as the double
 * 2^64; other values must be exact integers. */
static int get_rlim (const cJSON *obj, const char *key, rlim_t *out, berr **err)
{
  const cJSON *it = cJSON_GetObjectItemCaseSensitive (obj, key);
  if (it == NULL || cJSON_IsNull (it))
    return berr_make (err, EINVAL, "`%s` is required", key);
  if (cJSON_IsNumber (it) && it->valuedouble == 18446744073709551616.0)
    {
      *out = RLIM_INFINITY;
      return 0;
    }
  int64_t v;
  if (bjson_to_int (it, key, 0, INT64_MAX, &v, err) < 0)
    return -1;
  *out = (rlim_t)v;
  return 0;
}

static int parse_rlimit (const cJSON *item, struct rt_rlimit *rl, uint32_t *seen, berr **err)
{
  const char *type = NULL;
  if (!cJSON_IsObject (item))
    return berr_make (err, EINVAL, "must be an object");
  if (bjson_get_str (item, "type", true, &type, err) < 0
      || get_rlim (item, "soft", &rl->soft, err) < 0 || get_rlim (item, "hard", &rl->hard, err) < 0)
    return -1;
  size_t i = 0;
  while (i < ARRAY_SIZE (rlimit_names) && strcmp (rlimit_names[i].name, type) != 0)
    i++;
  if (i == ARRAY_SIZE (rlimit_names))
    return berr_make (err, EINVAL, "unknown type `%s`", type);
  if (*seen & (1u << i))
    return berr_make (err, EINVAL, "`%s` appears twice", type);
  *seen |= 1u << i;
  if (rl->soft > rl->hard)
    return berr_make (err, EINVAL, "`soft` is above `hard`");
  rl->resource = rlimit_names[i].resource;
  return 0;
}

static int parse_rlimits (const cJSON *proc, struct rt_process *p, berr **err)
{
  const cJSON *arr = NULL, *it;
  uint32_t seen = 0;
  if (bjson_get_arr (proc, "rlimits", false, &arr, err) < 0)
    return berr_wrap (err, "process");
  size_t n = (size_t)cJSON_GetArraySize (arr);
  if (n > 0 && (p->rlimits = calloc (n, sizeof *p->rlimits)) == NULL)
    return oom (err);
  cJSON_ArrayForEach (it, arr)
  {
    if (parse_rlimit (it, &p->rlimits[p->n_rlimits], &seen, err) < 0)
      return berr_wrap (err, "process.rlimits[%zu]", p->n_rlimits);
    p->n_rlimits++;
  }
  return 0;
}

static int check_env (char *const *env, berr **err)
{
  for (size_t i = 0; env[i]; i++)
    if (env[i][0] == '=' || strchr (env[i], '=') == NULL)
      return berr_make (err, EINVAL, "`env[%zu]` must look like KEY=VALUE, not `%s`", i, env[i]);
  return 0;
}

static int parse_process_fields (const cJSON *proc, struct rt_process *p, berr **err)
{
  const char *cwd = "/";
  int64_t oom_adj = INT64_MIN;
  if (bjson_get_strv (proc, "args", true, &p->args, err) < 0)
    return -1;
  if (p->args[0] == NULL)
    return berr_make (err, EINVAL, "`args` must not be empty");
  if (bjson_get_strv (proc, "env", false, &p->env, err) < 0)
    return -1;
  if (p->env == NULL && (p->env = calloc (1, sizeof *p->env)) == NULL)
    return oom (err);
  if (check_env (p->env, err) < 0 || bjson_get_str (proc, "cwd", false, &cwd, err) < 0
      || check_absolute (cwd, "cwd", err) < 0 || dup_str (cwd, &p->cwd, err) < 0
      || bjson_get_bool (proc, "terminal", false, &p->terminal, err) < 0
      || bjson_get_bool (proc, "noNewPrivileges", false, &p->no_new_privs, err) < 0
      || bjson_get_int (proc, "oomScoreAdj", false, -1000, 1000, &oom_adj, err) < 0)
    return -1;
  /* No console support yet (runtime.h): refuse rather than run without the terminal asked for. */
  if (p->terminal)
    return berr_make (err, ENOTSUP, "`terminal`: true is not supported yet");
  if (oom_adj != INT64_MIN)
    {
      p->oom_score_adj = (int)oom_adj;
      p->oom_score_adj_set = true;
    }
  return 0;
}

static int parse_process (const cJSON *cfg, struct rt_process *p, berr **err)
{
  const cJSON *proc = NULL;
  if (bjson_get_obj (cfg, "process", true, &proc, err) < 0)
    return -1;
  if (parse_process_fields (proc, p, err) < 0)
    return berr_wrap (err, "process");
  if (parse_user (proc, p, err) < 0 || parse_caps (proc, &p->caps, err) < 0
      || parse_rlimits (proc, p, err) < 0)
    return -1;
  return 0;
}

/* ---- root, hostname, mounts ---------------------------------------------------------- */

static int parse_root (const cJSON *cfg, const char *bundle_dir, struct rt_spec *s, berr **err)
{
  const cJSON *root = NULL;
  const char *path = NULL;
  if (bjson_get_obj (cfg, "root", true, &root, err) < 0)
    return -1;
  if (bjson_get_str (root, "path", true, &path, err) < 0
      || bjson_get_bool (root, "readonly", false, &s->readonly_root, err) < 0)
    return berr_wrap (err, "root");
  if (path[0] == '\0')
    return berr_make (err, EINVAL, "root: `path` is empty");
  return resolve_path (bundle_dir, path, &s->rootfs, err);
}

static int parse_hostname (const cJSON *cfg, struct rt_spec *s, berr **err)
{
  const char *name = NULL;
  if (bjson_get_str (cfg, "hostname", false, &name, err) < 0)
    return -1;
  if (name == NULL)
    return 0;
  if (strlen (name) > HOST_NAME_MAX)
    return berr_make (err, EINVAL, "`hostname` is longer than %d bytes", HOST_NAME_MAX);
  return dup_str (name, &s->hostname, err);
}

static int append_data (char **data, const char *opt, berr **err)
{
  size_t len = *data ? strlen (*data) : 0, add = strlen (opt);
  char *d = realloc (*data, len + add + 2);
  if (d == NULL)
    return oom (err);
  if (len > 0)
    d[len++] = ',';
  memcpy (d + len, opt, add + 1);
  *data = d;
  return 0;
}

/* Flags and propagation go to their fields; every other option is filesystem data. */
static int parse_mount_option (const char *opt, struct rt_mount *m, berr **err)
{
  for (size_t i = 0; i < ARRAY_SIZE (mount_flags); i++)
    if (strcmp (mount_flags[i].name, opt) == 0)
      {
        if (mount_flags[i].clear)
          m->flags &= ~mount_flags[i].flag;
        else
          m->flags |= mount_flags[i].flag;
        return 0;
      }
  for (size_t i = 0; i < ARRAY_SIZE (mount_propagations); i++)
    if (strcmp (mount_propagations[i].name, opt) == 0)
      {
        m->propagation = mount_propagations[i].propagation;
        return 0;
      }
  return opt[0] ? append_data (&m->data, opt, err) : 0;
}

static int parse_mount (const cJSON *item, const char *bundle_dir, struct rt_mount *m, berr **err)
{
  const char *dest = NULL, *type = NULL, *source = NULL;
  const cJSON *opts = NULL, *it;
  if (!cJSON_IsObject (item))
    return berr_make (err, EINVAL, "must be an object");
  if (bjson_get_str (item, "destination", true, &dest, err) < 0
      || check_absolute (dest, "destination", err) < 0 || dup_str (dest, &m->destination, err) < 0
      || bjson_get_str (item, "type", false, &type, err) < 0
      || bjson_get_str (item, "source", false, &source, err) < 0
      || bjson_get_arr (item, "options", false, &opts, err) < 0)
    return -1;
  cJSON_ArrayForEach (it, opts)
  {
    if (!cJSON_IsString (it))
      return berr_make (err, EINVAL, "`options` must be an array of strings");
    if (parse_mount_option (it->valuestring, m, err) < 0)
      return -1;
  }
  if ((m->flags & MS_BIND) || (type && strcmp (type, "bind") == 0))
    {
      /* A bind mount's source is a host path; relative ones are relative to the bundle. */
      m->flags |= MS_BIND;
      if (source == NULL || source[0] == '\0')
        return berr_make (err, EINVAL, "`source` is required for a bind mount");
      return dup_str ("bind", &m->type, err) < 0
                 ? -1
                 : resolve_path (bundle_dir, source, &m->source, err);
    }
  if (type == NULL || type[0] == '\0' || strcmp (type, "none") == 0)
    return berr_make (err, EINVAL, "`type` is required (or a `bind` option)");
  if (dup_str (type, &m->type, err) < 0)
    return -1;
  return dup_str (source && source[0] ? source : type, &m->source, err);
}

static int parse_mounts (const cJSON *cfg, const char *bundle_dir, struct rt_spec *s, berr **err)
{
  const cJSON *arr = NULL, *it;
  if (bjson_get_arr (cfg, "mounts", false, &arr, err) < 0)
    return -1;
  size_t n = (size_t)cJSON_GetArraySize (arr), i = 0;
  if (n == 0)
    return 0;
  if ((s->mounts = calloc (n, sizeof *s->mounts)) == NULL)
    return oom (err);
  s->n_mounts = n;
  cJSON_ArrayForEach (it, arr)
  {
    if (parse_mount (it, bundle_dir, &s->mounts[i], err) < 0)
      return berr_wrap (err, "mounts[%zu]", i);
    i++;
  }
  return 0;
}

/* ---- linux ------------------------------------------------------------------------------ */

static int parse_namespace (const cJSON *item, struct rt_spec *s, berr **err)
{
  const char *type = NULL, *path = NULL;
  if (!cJSON_IsObject (item))
    return berr_make (err, EINVAL, "must be an object");
  if (bjson_get_str (item, "type", true, &type, err) < 0
      || bjson_get_str (item, "path", false, &path, err) < 0
      || (path && check_absolute (path, "path", err) < 0))
    return -1;
  int t = 0;
  while (t < RT_NS__COUNT && strcmp (ns_names[t], type) != 0)
    t++;
  if (t == RT_NS__COUNT)
    return berr_make (err, strcmp (type, "time") == 0 ? ENOTSUP : EINVAL, "%s namespace type `%s`",
                      strcmp (type, "time") == 0 ? "unsupported" : "unknown", type);
  if (s->ns[t].enabled)
    return berr_make (err, EINVAL, "namespace `%s` appears twice", type);
  s->ns[t].enabled = true;
  return path ? dup_str (path, &s->ns[t].path, err) : 0;
}

static int parse_namespaces (const cJSON *linux_obj, struct rt_spec *s, berr **err)
{
  const cJSON *arr = NULL, *it;
  if (bjson_get_arr (linux_obj, "namespaces", false, &arr, err) < 0)
    return berr_wrap (err, "linux");
  size_t i = 0;
  cJSON_ArrayForEach (it, arr)
  {
    if (parse_namespace (it, s, err) < 0)
      return berr_wrap (err, "linux.namespaces[%zu]", i);
    i++;
  }
  return 0;
}

static int parse_path_list (const cJSON *linux_obj, const char *key, char ***out, berr **err)
{
  if (bjson_get_strv (linux_obj, key, false, out, err) < 0)
    return berr_wrap (err, "linux");
  for (size_t i = 0; *out && (*out)[i]; i++)
    if ((*out)[i][0] != '/')
      return berr_make (err, EINVAL, "linux.%s[%zu]: must be an absolute path, not `%s`", key, i,
                        (*out)[i]);
  return 0;
}

static int parse_device (const cJSON *item, struct rt_device *d, berr **err)
{
  const char *path = NULL, *type = NULL;
  int64_t major = 0, minor = 0, mode = 0666;
  uint32_t uid = 0, gid = 0;
  if (!cJSON_IsObject (item))
    return berr_make (err, EINVAL, "must be an object");
  if (bjson_get_str (item, "path", true, &path, err) < 0 || check_absolute (path, "path", err) < 0
      || bjson_get_str (item, "type", true, &type, err) < 0
      || bjson_get_int (item, "major", true, 0, UINT32_MAX, &major, err) < 0
      || bjson_get_int (item, "minor", true, 0, UINT32_MAX, &minor, err) < 0
      || bjson_get_int (item, "fileMode", false, 0, 07777, &mode, err) < 0
      || get_id (item, "uid", &uid, err) < 0 || get_id (item, "gid", &gid, err) < 0)
    return -1;
  char t = strcmp (type, "b") == 0                                ? 'b'
           : (strcmp (type, "c") == 0 || strcmp (type, "u") == 0) ? 'c'
                                                                  : 0;
  if (t == 0)
    return berr_make (err, EINVAL, "`type` must be \"c\", \"u\" or \"b\", not `%s`", type);
  *d = (struct rt_device){
    .type = t, .major = major, .minor = minor, .mode = (mode_t)mode, .uid = uid, .gid = gid
  };
  return dup_str (path, &d->path, err);
}

static int parse_devices (const cJSON *linux_obj, struct rt_spec *s, berr **err)
{
  const cJSON *arr = NULL, *it;
  if (bjson_get_arr (linux_obj, "devices", false, &arr, err) < 0)
    return berr_wrap (err, "linux");
  size_t n = (size_t)cJSON_GetArraySize (arr);
  if (n > 0 && (s->devices = calloc (n, sizeof *s->devices)) == NULL)
    return oom (err);
  cJSON_ArrayForEach (it, arr)
  {
    if (parse_device (it, &s->devices[s->n_devices], err) < 0)
      return berr_wrap (err, "linux.devices[%zu]", s->n_devices);
    s->n_devices++;
  }
  return 0;
}

/* A sysctl key becomes a path under /proc/sys ('.' separates, '/' stands for a literal '.'),
 * so it must not be able to name anything else: no empty, "." or ".." component. */
static bool sysctl_key_ok (const char *key)
{
  size_t seg = 0;
  bool only_slashes = true;
  for (const char *p = key;; p++)
    {
      if (*p == '.' || *p == '\0')
        {
          if (seg == 0 || only_slashes)
            return false;
          if (*p == '\0')
            return true;
          seg = 0;
          only_slashes = true;
          continue;
        }
      if (!(isalnum ((unsigned char)*p) || strchr ("_-/:@", *p)))
        return false;
      only_slashes &= *p == '/';
      seg++;
    }
}

static int parse_sysctls (const cJSON *linux_obj, struct rt_spec *s, berr **err)
{
  const cJSON *obj = NULL, *it;
  if (bjson_get_obj (linux_obj, "sysctl", false, &obj, err) < 0)
    return berr_wrap (err, "linux");
  size_t n = (size_t)cJSON_GetArraySize (obj);
  if (n > 0 && (s->sysctls = calloc (n, sizeof *s->sysctls)) == NULL)
    return oom (err);
  cJSON_ArrayForEach (it, obj)
  {
    if (!sysctl_key_ok (it->string))
      return berr_make (err, EINVAL, "linux.sysctl: invalid key `%s`", it->string);
    if (!cJSON_IsString (it))
      return berr_make (err, EINVAL, "linux.sysctl: `%s` must be a string", it->string);
    struct rt_sysctl *sc = &s->sysctls[s->n_sysctls++];
    if (dup_str (it->string, &sc->key, err) < 0 || dup_str (it->valuestring, &sc->value, err) < 0)
      return -1;
  }
  return 0;
}

static int parse_cpu (const cJSON *res, struct rt_cgroup *cg, berr **err)
{
  const cJSON *cpu = NULL;
  int64_t shares = 0, quota = 0, period = 0;
  if (bjson_get_obj (res, "cpu", false, &cpu, err) < 0)
    return berr_wrap (err, "linux.resources");
  if (cpu == NULL)
    return 0;
  /* The kernel's ranges: shares 2..262144 (0: unset), quota >= 1000 us or -1 (no limit),
   * period 1000..1000000 us. Shares are on the same scale as ECS cpu units. */
  if (bjson_get_int (cpu, "shares", false, 0, 262144, &shares, err) < 0
      || bjson_get_int (cpu, "quota", false, -1, INT64_MAX, &quota, err) < 0
      || bjson_get_int (cpu, "period", false, 0, 1000000, &period, err) < 0)
    return berr_wrap (err, "linux.resources.cpu");
  if ((quota > 0 && quota < 1000) || (period > 0 && period < 1000))
    return berr_make (err, EINVAL,
                      "linux.resources.cpu: quota and period must be at least 1000 us");
  cg->cpu_units = shares;
  cg->cpu_quota_us = quota > 0 ? quota : 0;
  cg->cpu_period_us = period;
  return 0;
}

/* Whether the last rule of resources.devices allows every device with rwm: allow true, no
 * type (or "a"), no major or minor. */
static int devices_allow_all (const cJSON *devices, bool *out, berr **err)
{
  const cJSON *last = cJSON_GetArrayItem (devices, cJSON_GetArraySize (devices) - 1);
  bool allow = false;
  const char *type = NULL, *access = NULL;
  *out = false;
  if (last == NULL)
    return 0;
  if (bjson_get_bool (last, "allow", true, &allow, err) < 0
      || bjson_get_str (last, "type", false, &type, err) < 0
      || bjson_get_str (last, "access", false, &access, err) < 0)
    return berr_wrap (err, "devices[%d]", cJSON_GetArraySize (devices) - 1);
  *out = allow && (type == NULL || strcmp (type, "a") == 0)
         && cJSON_GetObjectItem (last, "major") == NULL
         && cJSON_GetObjectItem (last, "minor") == NULL
         && (access == NULL || strcmp (access, "rwm") == 0);
  return 0;
}

/* A node of linux.devices is allowed "rwm" unless resources.devices has an allow rule naming
 * exactly it (type, major, minor) with a narrower access: the last such rule's access holds. */
static int devices_access (const cJSON *linux_obj, struct rt_spec *s, berr **err)
{
  const cJSON *rules
      = cJSON_GetObjectItem (cJSON_GetObjectItem (linux_obj, "resources"), "devices"),
      *r;
  cJSON_ArrayForEach (r, rules)
  {
    const char *type = NULL, *access = NULL;
    bool allow = false;
    int64_t major = -1, minor = -1;
    if (bjson_get_bool (r, "allow", false, &allow, err) < 0
        || bjson_get_str (r, "type", false, &type, err) < 0
        || bjson_get_str (r, "access", false, &access, err) < 0
        || bjson_get_int (r, "major", false, -1, UINT32_MAX, &major, err) < 0
        || bjson_get_int (r, "minor", false, -1, UINT32_MAX, &minor, err) < 0)
      return berr_wrap (err, "linux.resources.devices");
    if (access && (strlen (access) > 3 || strspn (access, "rwm") != strlen (access)))
      return berr_make (err, EINVAL, "linux.resources.devices: bad access `%s`", access);
    for (size_t i = 0; allow && type && access && i < s->n_devices; i++)
      {
        struct rt_device *d = &s->devices[i];
        if (d->type == type[0] && type[1] == '\0' && d->major == major && d->minor == minor)
          snprintf (d->access, sizeof d->access, "%s", access);
      }
  }
  return 0;
}

static int parse_resources (const cJSON *linux_obj, struct rt_cgroup *cg, berr **err)
{
  const cJSON *res = NULL, *mem = NULL, *pids = NULL, *devices = NULL;
  if (bjson_get_obj (linux_obj, "resources", false, &res, err) < 0)
    return berr_wrap (err, "linux");
  if (res == NULL)
    return 0;
  /* resources.devices: device access is Berth's fixed default plus linux.devices, so only one
   * rule list means something here: one ending with an allow of everything (a privileged
   * container, as the engines write it), which lifts the device restriction. */
  if (bjson_get_obj (res, "memory", false, &mem, err) < 0
      || bjson_get_obj (res, "pids", false, &pids, err) < 0
      || bjson_get_arr (res, "devices", false, &devices, err) < 0
      || devices_allow_all (devices, &cg->devices_allow_all, err) < 0)
    return berr_wrap (err, "linux.resources");
  if (bjson_get_int (mem, "limit", false, 0, INT64_MAX, &cg->memory_max, err) < 0
      || bjson_get_int (mem, "reservation", false, 0, INT64_MAX, &cg->memory_low, err) < 0)
    return berr_wrap (err, "linux.resources.memory");
  int64_t limit = 0;
  if (bjson_get_int (pids, "limit", false, INT64_MIN, INT64_MAX, &limit, err) < 0)
    return berr_wrap (err, "linux.resources.pids");
  cg->pids_max = limit < 0 ? -1 : limit; /* OCI: negative is unlimited, 0 unset */
  return parse_cpu (res, cg, err);
}

/* linux.cgroupsPath is relative to the hierarchy roots; ".." could climb out of them. */
static int parse_cgroups_path (const cJSON *linux_obj, struct rt_cgroup *cg, berr **err)
{
  const char *path = NULL;
  if (bjson_get_str (linux_obj, "cgroupsPath", false, &path, err) < 0)
    return berr_wrap (err, "linux");
  if (path == NULL)
    return 0;
  while (*path == '/')
    path++;
  for (const char *p = path; *p; p = strchrnul (p, '/'), p += *p == '/')
    if (strncmp (p, "..", 2) == 0 && (p[2] == '/' || p[2] == '\0'))
      return berr_make (err, EINVAL, "linux.cgroupsPath: `..` is not allowed");
  return path[0] ? dup_str (path, &cg->path, err) : 0;
}

static int parse_linux (const cJSON *cfg, struct rt_spec *s, berr **err)
{
  const cJSON *lin = NULL, *seccomp = NULL, *map = NULL;
  if (bjson_get_obj (cfg, "linux", false, &lin, err) < 0)
    return -1;
  if (lin == NULL)
    return 0;
  if (parse_namespaces (lin, s, err) < 0
      || parse_path_list (lin, "maskedPaths", &s->masked_paths, err) < 0
      || parse_path_list (lin, "readonlyPaths", &s->readonly_paths, err) < 0
      || parse_devices (lin, s, err) < 0 || parse_sysctls (lin, s, err) < 0
      || devices_access (lin, s, err) < 0 || parse_resources (lin, &s->cgroup, err) < 0
      || parse_cgroups_path (lin, &s->cgroup, err) < 0)
    return -1;
  static const char *const mappings[] = { "uidMappings", "gidMappings" };
  for (size_t i = 0; i < ARRAY_SIZE (mappings); i++)
    {
      if (bjson_get_arr (lin, mappings[i], false, &map, err) < 0)
        return berr_wrap (err, "linux");
      if (cJSON_GetArraySize (map) > 0)
        return berr_make (err, ENOTSUP, "linux.%s: user namespace id mappings are not supported",
                          mappings[i]);
    }
  /* The profile is validated when it is compiled (rt_seccomp_compile), in the launcher. */
  if (bjson_get_obj (lin, "seccomp", false, &seccomp, err) < 0)
    return berr_wrap (err, "linux");
  if (seccomp && (s->seccomp = cJSON_Duplicate (seccomp, true)) == NULL)
    return oom (err);
  return 0;
}

int rt_spec_from_oci (const cJSON *config, const char *bundle_dir, struct rt_spec **out, berr **err)
{
  const char *version = NULL;
  if (!cJSON_IsObject (config))
    return berr_make (err, EINVAL, "config.json must hold an object");
  struct rt_spec *s = calloc (1, sizeof *s);
  if (s == NULL)
    return oom (err);
  if (bjson_get_str (config, "ociVersion", false, &version, err) < 0
      || parse_root (config, bundle_dir, s, err) < 0 || parse_hostname (config, s, err) < 0
      || parse_process (config, &s->process, err) < 0
      || parse_mounts (config, bundle_dir, s, err) < 0 || parse_linux (config, s, err) < 0)
    {
      rt_spec_free (s);
      return -1;
    }
  *out = s;
  return 0;
}

/* ---- The default config.json ------------------------------------------------------------ */

/* Berth's hardened defaults as data; rt_spec_new_default parses this same document, so the
 * CLI's `spec` and the library can never disagree. */
static const struct
{
  const char *destination, *type, *source;
  const char *const *options;
} default_mounts[] = {
  { "/proc", "proc", "proc", (const char *const[]){ "nosuid", "noexec", "nodev", NULL } },
  { "/dev", "tmpfs", "tmpfs",
    (const char *const[]){ "nosuid", "strictatime", "mode=755", "size=65536k", NULL } },
  { "/dev/pts", "devpts", "devpts",
    (const char *const[]){ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5",
                           NULL } },
  { "/dev/shm", "tmpfs", "shm",
    (const char *const[]){ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k", NULL } },
  { "/dev/mqueue", "mqueue", "mqueue", (const char *const[]){ "nosuid", "noexec", "nodev", NULL } },
  { "/sys", "sysfs", "sysfs", (const char *const[]){ "nosuid", "noexec", "nodev", "ro", NULL } },
  { "/sys/fs/cgroup", "cgroup", "cgroup",
    (const char *const[]){ "nosuid", "noexec", "nodev", "relatime", "ro", NULL } },
};

static const char *const default_masked_paths[] = { "/proc/acpi",
                                                    "/proc/asound",
                                                    "/proc/kcore",
                                                    "/proc/keys",
                                                    "/proc/latency_stats",
                                                    "/proc/timer_list",
                                                    "/proc/timer_stats",
                                                    "/proc/sched_debug",
                                                    "/proc/scsi",
                                                    "/sys/firmware",
                                                    "/sys/devices/virtual/powercap",
                                                    NULL };

static const char *const default_readonly_paths[]
    = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL };

static const char *const default_env[]
    = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL };

#define DEFAULT_PIDS_MAX 2048
#define DEFAULT_NOFILE 1024

static bool add_strv (cJSON *obj, const char *key, const char *const *v)
{
  cJSON *arr = cJSON_AddArrayToObject (obj, key);
  for (; arr && *v; v++)
    if (!cJSON_AddItemToArray (arr, cJSON_CreateString (*v)))
      return false;
  return arr != NULL;
}

static cJSON *array_add_object (cJSON *arr)
{
  cJSON *o = cJSON_CreateObject ();
  if (o != NULL && !cJSON_AddItemToArray (arr, o))
    {
      cJSON_Delete (o);
      return NULL;
    }
  return o;
}

/* The names of the capabilities in caps, "CAP_CHOWN" style. */
static cJSON *cap_names (uint64_t caps)
{
  cJSON *arr = cJSON_CreateArray ();
  for (int c = 0; arr && c < 64; c++)
    {
      if (!(caps & (UINT64_C (1) << c)))
        continue;
      char *name = cap_to_name (c);
      for (char *p = name; p && *p; p++)
        *p = (char)toupper ((unsigned char)*p);
      bool ok = name && cJSON_AddItemToArray (arr, cJSON_CreateString (name));
      cap_free (name);
      if (!ok)
        {
          cJSON_Delete (arr);
          return NULL;
        }
    }
  return arr;
}

static bool default_process (cJSON *cfg)
{
  cJSON *proc = cJSON_AddObjectToObject (cfg, "process");
  cJSON *user = proc ? cJSON_AddObjectToObject (proc, "user") : NULL;
  cJSON *caps = user ? cJSON_AddObjectToObject (proc, "capabilities") : NULL;
  cJSON *rlimits = caps ? cJSON_AddArrayToObject (proc, "rlimits") : NULL;
  cJSON *nofile = rlimits ? array_add_object (rlimits) : NULL;
  if (nofile == NULL)
    return false;
  static const char *const sets[] = { "bounding", "effective", "permitted" };
  for (size_t i = 0; i < ARRAY_SIZE (sets); i++)
    if (!cJSON_AddItemToObject (caps, sets[i], cap_names (rt_caps_docker_default ())))
      return false;
  static const char *const args[] = { "sh", NULL };
  return cJSON_AddFalseToObject (proc, "terminal") && cJSON_AddNumberToObject (user, "uid", 0)
         && cJSON_AddNumberToObject (user, "gid", 0) && add_strv (proc, "args", args)
         && add_strv (proc, "env", default_env) && cJSON_AddStringToObject (proc, "cwd", "/")
         && cJSON_AddStringToObject (nofile, "type", "RLIMIT_NOFILE")
         && cJSON_AddNumberToObject (nofile, "hard", DEFAULT_NOFILE)
         && cJSON_AddNumberToObject (nofile, "soft", DEFAULT_NOFILE)
         && cJSON_AddTrueToObject (proc, "noNewPrivileges");
}

static bool default_mounts_json (cJSON *cfg)
{
  cJSON *arr = cJSON_AddArrayToObject (cfg, "mounts");
  for (size_t i = 0; arr && i < ARRAY_SIZE (default_mounts); i++)
    {
      cJSON *m = array_add_object (arr);
      if (m == NULL || !cJSON_AddStringToObject (m, "destination", default_mounts[i].destination)
          || !cJSON_AddStringToObject (m, "type", default_mounts[i].type)
          || !cJSON_AddStringToObject (m, "source", default_mounts[i].source)
          || !add_strv (m, "options", default_mounts[i].options))
        return false;
    }
  return arr != NULL;
}

/* New pid, network, ipc, uts and mount namespaces; a cgroup namespace only on a pure cgroup v2
 * host, where the container's /sys/fs/cgroup is then its own subtree. */
static bool default_namespaces (cJSON *lin)
{
  enum cg_mode mode = CG_MODE_HYBRID;
  _cleanup_berr_ berr *e = NULL;
  if (cg_detect_mode (&mode, &e) < 0)
    mode = CG_MODE_HYBRID;
  cJSON *arr = cJSON_AddArrayToObject (lin, "namespaces");
  for (int t = 0; arr && t < RT_NS__COUNT; t++)
    {
      if (t == RT_NS_USER || (t == RT_NS_CGROUP && mode != CG_MODE_UNIFIED))
        continue;
      cJSON *ns = array_add_object (arr);
      if (ns == NULL || !cJSON_AddStringToObject (ns, "type", ns_names[t]))
        return false;
    }
  return arr != NULL;
}

static bool default_linux (cJSON *cfg)
{
  cJSON *lin = cJSON_AddObjectToObject (cfg, "linux");
  cJSON *res = lin ? cJSON_AddObjectToObject (lin, "resources") : NULL;
  cJSON *devices = res ? cJSON_AddArrayToObject (res, "devices") : NULL;
  cJSON *deny = devices ? array_add_object (devices) : NULL;
  cJSON *pids = deny ? cJSON_AddObjectToObject (res, "pids") : NULL;
  if (pids == NULL)
    return false;
  return cJSON_AddFalseToObject (deny, "allow") && cJSON_AddStringToObject (deny, "access", "rwm")
         && cJSON_AddNumberToObject (pids, "limit", DEFAULT_PIDS_MAX) && default_namespaces (lin)
         && add_strv (lin, "maskedPaths", default_masked_paths)
         && add_strv (lin, "readonlyPaths", default_readonly_paths)
         && cJSON_AddItemToObject (lin, "seccomp",
                                   rt_seccomp_default_profile (rt_caps_docker_default ()));
}

cJSON *rt_oci_default_config (void)
{
  _cleanup_json_ cJSON *cfg = cJSON_CreateObject ();
  if (cfg == NULL || !cJSON_AddStringToObject (cfg, "ociVersion", "1.0.2")
      || !default_process (cfg))
    return NULL;
  cJSON *root = cJSON_AddObjectToObject (cfg, "root");
  if (root == NULL || !cJSON_AddStringToObject (root, "path", "rootfs")
      || !cJSON_AddFalseToObject (root, "readonly")
      || !cJSON_AddStringToObject (cfg, "hostname", "berth") || !default_mounts_json (cfg)
      || !default_linux (cfg))
    return NULL;
  return steal_ptr (&cfg);
}
