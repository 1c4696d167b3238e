/* Container specs: Berth's hardened defaults, the OCI config.json parser (each field where it
 * belongs, clear errors for bad input) and the default config.json round trip. */
#include "cgroups/cgroups.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/strv.h"
#include "runtime/runtime.h"

#include "tests/support/support.h"

#include <check.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

static cJSON *parse_json (const char *text)
{
  cJSON *j = NULL;
  berr *err = NULL;
  if (bjson_parse (text, strlen (text), &j, &err) < 0)
    ck_abort_msg ("test JSON does not parse: %s", err->msg);
  return j;
}

static const struct rt_mount *find_mount (const struct rt_spec *s, const char *dest)
{
  for (size_t i = 0; i < s->n_mounts; i++)
    if (strcmp (s->mounts[i].destination, dest) == 0)
      return &s->mounts[i];
  ck_abort_msg ("no mount at %s", dest);
  return NULL;
}

static void assert_strv (char *const *v, const char *const *want)
{
  size_t n = 0;
  for (; want[n]; n++)
    {
      ck_assert_ptr_nonnull (v[n]);
      ck_assert_str_eq (v[n], want[n]);
    }
  ck_assert_ptr_null (v[n]);
}

static const char *const want_masked[] = { "/proc/acpi",
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
static const char *const want_readonly[]
    = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL };

static void assert_mount (const struct rt_spec *s, const char *dest, const char *type,
                          unsigned long flags, const char *data)
{
  const struct rt_mount *m = find_mount (s, dest);
  ck_assert_str_eq (m->type, type);
  ck_assert_uint_eq (m->flags, flags);
  if (data)
    ck_assert_str_eq (m->data, data);
  else
    ck_assert_ptr_null (m->data);
}

START_TEST (test_default_spec_has_berth_hardening)
{
  struct rt_spec *s = NULL;
  berr *err = NULL;
  char *args[] = { "/bin/echo", "hi", NULL };
  ck_assert_int_eq (rt_spec_new_default ("/srv/rootfs", args, &s, &err), 0);
  ck_assert_str_eq (s->rootfs, "/srv/rootfs");
  ck_assert_str_eq (s->process.args[0], "/bin/echo");
  ck_assert_str_eq (s->process.args[1], "hi");
  ck_assert_ptr_null (s->process.args[2]);
  const char *const want_env[]
      = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL };
  assert_strv (s->process.env, want_env);
  ck_assert_str_eq (s->process.cwd, "/");
  ck_assert_int_eq (s->process.uid, 0);
  ck_assert_int_eq (s->process.gid, 0);
  ck_assert (s->process.no_new_privs);
  ck_assert (!s->process.terminal);

  /* Namespaces: cgroup only on pure v2. */
  enum cg_mode mode;
  ck_assert_int_eq (cg_detect_mode (&mode, &err), 0);
  for (int t = 0; t < RT_NS__COUNT; t++)
    {
      bool want = t != RT_NS_USER && (t != RT_NS_CGROUP || mode == CG_MODE_UNIFIED);
      ck_assert_msg (s->ns[t].enabled == want, "namespace %d enabled=%d", t, s->ns[t].enabled);
      ck_assert_ptr_null (s->ns[t].path);
    }

  uint64_t docker = rt_caps_docker_default ();
  ck_assert_uint_eq (s->process.caps.bounding, docker);
  ck_assert_uint_eq (s->process.caps.effective, docker);
  ck_assert_uint_eq (s->process.caps.permitted, docker);
  ck_assert_uint_eq (s->process.caps.inheritable, 0);
  ck_assert_uint_eq (s->process.caps.ambient, 0);

  assert_strv (s->masked_paths, want_masked);
  assert_strv (s->readonly_paths, want_readonly);

  ck_assert_uint_eq (s->n_mounts, 7);
  assert_mount (s, "/proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
  assert_mount (s, "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  assert_mount (s, "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620,gid=5");
  assert_mount (s, "/dev/shm", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, "mode=1777,size=65536k");
  assert_mount (s, "/dev/mqueue", "mqueue", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
  assert_mount (s, "/sys", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY, NULL);
  assert_mount (s, "/sys/fs/cgroup", "cgroup",
                MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME | MS_RDONLY, NULL);
  ck_assert_str_eq (s->mounts[0].destination, "/proc"); /* order: /proc before /dev before /sys */
  ck_assert_str_eq (s->mounts[6].destination, "/sys/fs/cgroup");

  ck_assert_ptr_nonnull (s->seccomp);
  ck_assert_str_eq (cJSON_GetObjectItem (s->seccomp, "defaultAction")->valuestring,
                    "SCMP_ACT_ERRNO");
  _cleanup_json_ cJSON *profile = rt_seccomp_default_profile (docker);
  ck_assert (cJSON_Compare (s->seccomp, profile, true));

  ck_assert_int_eq (s->cgroup.pids_max, 2048);
  ck_assert_uint_eq (s->process.n_rlimits, 1);
  ck_assert_int_eq (s->process.rlimits[0].resource, RLIMIT_NOFILE);
  ck_assert_uint_eq (s->process.rlimits[0].soft, 1024);
  ck_assert_uint_eq (s->process.rlimits[0].hard, 1024);
  rt_spec_free (s);
}
END_TEST

START_TEST (test_default_spec_makes_a_relative_rootfs_absolute)
{
  struct rt_spec *s = NULL;
  berr *err = NULL;
  ck_assert_int_eq (rt_spec_new_default ("bundle/rootfs", NULL, &s, &err), 0);
  _cleanup_free_ char *cwd = getcwd (NULL, 0);
  _cleanup_free_ char *want = NULL;
  ck_assert_int_ge (asprintf (&want, "%s/bundle/rootfs", cwd), 0);
  ck_assert_str_eq (s->rootfs, want);
  ck_assert_str_eq (s->process.args[0], "sh"); /* NULL args keep the default */
  rt_spec_free (s);
}
END_TEST

static const char good_config[]
    = "{"
      "\"ociVersion\": \"1.0.2\", \"hostname\": \"web-1\", \"unknownField\": {\"x\": 1},"
      "\"root\": {\"path\": \"rootfs\", \"readonly\": true},"
      "\"process\": {\"terminal\": false, \"args\": [\"/app\", \"--port\", \"80\"],"
      "  \"env\": [\"A=1\", \"B=two=2\"], \"cwd\": \"/srv\","
      "  \"user\": {\"uid\": 1000, \"gid\": 1001, \"additionalGids\": [5, 27], \"username\": "
      "\"app\"},"
      "  \"capabilities\": {\"bounding\": [\"CAP_NET_ADMIN\", \"kill\"], \"effective\": "
      "[\"CAP_KILL\"],"
      "    \"permitted\": [\"CAP_KILL\"], \"inheritable\": [\"CAP_CHOWN\"], \"ambient\": "
      "[\"CAP_KILL\"]},"
      "  \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 100, \"hard\": 200},"
      "    {\"type\": \"RLIMIT_CORE\", \"soft\": 0, \"hard\": 18446744073709551615}],"
      "  \"noNewPrivileges\": true, \"oomScoreAdj\": -500},"
      "\"mounts\": ["
      "  {\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"data\","
      "   \"options\": [\"rbind\", \"ro\", \"nosuid\", \"rprivate\", \"noatime\", \"atime\"]},"
      "  {\"destination\": \"/tmp\", \"type\": \"tmpfs\","
      "   \"options\": [\"nodev\", \"mode=1777\", \"size=1m\", \"rw\", \"rshared\"]},"
      "  {\"destination\": \"/etc/hosts\", \"source\": \"/var/lib/hosts\", \"options\": "
      "[\"bind\"]}],"
      "\"linux\": {"
      "  \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"network\", \"path\": \"/run/netns/x\"},"
      "    {\"type\": \"mount\"}, {\"type\": \"user\"}],"
      "  \"maskedPaths\": [\"/proc/kcore\"], \"readonlyPaths\": [\"/proc/sys\"],"
      "  \"devices\": [{\"path\": \"/dev/fuse\", \"type\": \"c\", \"major\": 10, \"minor\": 229,"
      "    \"fileMode\": 438, \"uid\": 0, \"gid\": 0}],"
      "  \"sysctl\": {\"net.ipv4.ip_forward\": \"1\"},"
      "  \"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\"},"
      "  \"cgroupsPath\": \"/berth/task-1/web\","
      "  \"resources\": {\"memory\": {\"limit\": 536870912, \"reservation\": 268435456},"
      "    \"cpu\": {\"shares\": 512, \"quota\": 50000, \"period\": 100000},"
      "    \"pids\": {\"limit\": 100}, \"devices\": [{\"allow\": false, \"access\": \"rwm\"}]}}"
      "}";

START_TEST (test_oci_config_fields_land_in_the_spec)
{
  _cleanup_json_ cJSON *cfg = parse_json (good_config);
  struct rt_spec *s = NULL;
  berr *err = NULL;
  int r = rt_spec_from_oci (cfg, "/bundles/b1", &s, &err);
  ck_assert_msg (r == 0, "%s", err ? err->msg : "");
  ck_assert_str_eq (s->rootfs, "/bundles/b1/rootfs");
  ck_assert (s->readonly_root);
  ck_assert_str_eq (s->hostname, "web-1");

  const struct rt_process *p = &s->process;
  const char *const args[] = { "/app", "--port", "80", NULL };
  const char *const env[] = { "A=1", "B=two=2", NULL };
  assert_strv (p->args, args);
  assert_strv (p->env, env);
  ck_assert_str_eq (p->cwd, "/srv");
  ck_assert_int_eq (p->uid, 1000);
  ck_assert_int_eq (p->gid, 1001);
  ck_assert_uint_eq (p->n_groups, 2);
  ck_assert_int_eq (p->groups[0], 5);
  ck_assert_int_eq (p->groups[1], 27);
  ck_assert_str_eq (p->user, "app");
  ck_assert_uint_eq (p->caps.bounding, (1ULL << CAP_NET_ADMIN) | (1ULL << CAP_KILL));
  ck_assert_uint_eq (p->caps.effective, 1ULL << CAP_KILL);
  ck_assert_uint_eq (p->caps.permitted, 1ULL << CAP_KILL);
  ck_assert_uint_eq (p->caps.inheritable, 1ULL << CAP_CHOWN);
  ck_assert_uint_eq (p->caps.ambient, 1ULL << CAP_KILL);
  ck_assert_uint_eq (p->n_rlimits, 2);
  ck_assert_int_eq (p->rlimits[0].resource, RLIMIT_NOFILE);
  ck_assert_uint_eq (p->rlimits[0].soft, 100);
  ck_assert_uint_eq (p->rlimits[0].hard, 200);
  ck_assert_int_eq (p->rlimits[1].resource, RLIMIT_CORE);
  ck_assert (p->rlimits[1].hard == RLIM_INFINITY);
  ck_assert (p->no_new_privs);
  ck_assert (p->oom_score_adj_set);
  ck_assert_int_eq (p->oom_score_adj, -500);

  ck_assert_uint_eq (s->n_mounts, 3);
  const struct rt_mount *m = &s->mounts[0];
  ck_assert_str_eq (m->destination, "/data");
  ck_assert_str_eq (m->type, "bind");
  ck_assert_str_eq (m->source, "/bundles/b1/data");
  ck_assert_uint_eq (m->flags, MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID);
  ck_assert_uint_eq (m->propagation, MS_PRIVATE | MS_REC);
  ck_assert_ptr_null (m->data);
  m = &s->mounts[1];
  ck_assert_str_eq (m->type, "tmpfs");
  ck_assert_str_eq (m->source, "tmpfs");
  ck_assert_uint_eq (m->flags, MS_NODEV);
  ck_assert_uint_eq (m->propagation, MS_SHARED | MS_REC);
  ck_assert_str_eq (m->data, "mode=1777,size=1m");
  m = &s->mounts[2];
  ck_assert_str_eq (m->type, "bind");
  ck_assert_str_eq (m->source, "/var/lib/hosts");
  ck_assert_uint_eq (m->flags, MS_BIND);

  ck_assert (s->ns[RT_NS_PID].enabled && s->ns[RT_NS_PID].path == NULL);
  ck_assert (s->ns[RT_NS_NET].enabled);
  ck_assert_str_eq (s->ns[RT_NS_NET].path, "/run/netns/x");
  ck_assert (s->ns[RT_NS_MOUNT].enabled && s->ns[RT_NS_USER].enabled);
  ck_assert (!s->ns[RT_NS_IPC].enabled && !s->ns[RT_NS_UTS].enabled
             && !s->ns[RT_NS_CGROUP].enabled);
  ck_assert_str_eq (s->masked_paths[0], "/proc/kcore");
  ck_assert_str_eq (s->readonly_paths[0], "/proc/sys");
  ck_assert_uint_eq (s->n_devices, 1);
  ck_assert_str_eq (s->devices[0].path, "/dev/fuse");
  ck_assert_int_eq (s->devices[0].type, 'c');
  ck_assert_int_eq (s->devices[0].major, 10);
  ck_assert_int_eq (s->devices[0].minor, 229);
  ck_assert_int_eq (s->devices[0].mode, 0666);
  ck_assert_uint_eq (s->n_sysctls, 1);
  ck_assert_str_eq (s->sysctls[0].key, "net.ipv4.ip_forward");
  ck_assert_str_eq (s->sysctls[0].value, "1");
  ck_assert_str_eq (cJSON_GetObjectItem (s->seccomp, "defaultAction")->valuestring,
                    "SCMP_ACT_ALLOW");
  ck_assert_str_eq (s->cgroup.path, "berth/task-1/web");
  ck_assert_int_eq (s->cgroup.memory_max, 536870912);
  ck_assert_int_eq (s->cgroup.memory_low, 268435456);
  ck_assert_int_eq (s->cgroup.cpu_units, 512);
  ck_assert_int_eq (s->cgroup.cpu_quota_us, 50000);
  ck_assert_int_eq (s->cgroup.cpu_period_us, 100000);
  ck_assert_int_eq (s->cgroup.pids_max, 100);
  rt_spec_free (s);
}
END_TEST

START_TEST (test_minimal_config_gets_empty_defaults)
{
  _cleanup_json_ cJSON *cfg
      = parse_json ("{\"root\": {\"path\": \"/r\"}, \"process\": {\"args\": [\"x\"]},"
                    " \"linux\": {\"resources\": {\"pids\": {\"limit\": -1}}}}");
  struct rt_spec *s = NULL;
  berr *err = NULL;
  ck_assert_int_eq (rt_spec_from_oci (cfg, "/b", &s, &err), 0);
  ck_assert_str_eq (s->rootfs, "/r");
  ck_assert_str_eq (s->process.cwd, "/");
  ck_assert_ptr_nonnull (s->process.env);
  ck_assert_ptr_null (s->process.env[0]);
  ck_assert_uint_eq (s->process.caps.bounding, 0);
  ck_assert (!s->process.no_new_privs && !s->process.oom_score_adj_set);
  for (int t = 0; t < RT_NS__COUNT; t++)
    ck_assert (!s->ns[t].enabled);
  ck_assert_ptr_null (s->seccomp);
  ck_assert_int_eq (s->cgroup.pids_max, -1); /* OCI: negative is unlimited */
  rt_spec_free (s);
}
END_TEST

/* Each bad config and a fragment its error message must contain. */
static const struct
{
  const char *json;
  const char *want;
} bad_configs[] = {
  { "[]", "must hold an object" },
  { "{\"process\": {\"args\": [\"sh\"]}}", "`root` is required" },
  { "{\"root\": {\"path\": 5}, \"process\": {\"args\": [\"sh\"]}}",
    "root: `path` must be a string" },
  { "{\"root\": {\"path\": \"r\"}}", "`process` is required" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": \"sh\"}}",
    "process: `args` must be an array" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\", 1]}}",
    "process: `args` must be an array of strings" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": []}}",
    "process: `args` must not be empty" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"], \"env\": [\"NOVALUE\"]}}",
    "process: `env[0]` must look like KEY=VALUE" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"], \"cwd\": \"srv\"}}",
    "process: `cwd` must be an absolute path" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"], \"terminal\": true}}",
    "process: `terminal`: true is not supported yet" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"], \"terminal\": \"no\"}}",
    "process: `terminal` must be a boolean" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"], \"oomScoreAdj\": 5000}}",
    "process: `oomScoreAdj` is 5000, outside [-1000, 1000]" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"], \"user\": {\"uid\": -1}}}",
    "process.user: `uid` is -1" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"], \"user\": "
    "{\"additionalGids\": [\"x\"]}}}",
    "process.user: `additionalGids[]` must be a number" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"],"
    " \"capabilities\": {\"bounding\": [\"CAP_CHOWN\", \"CAP_FOO\"]}}}",
    "process.capabilities.bounding[1]: unknown capability `CAP_FOO`" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"],"
    " \"capabilities\": {\"ambient\": \"CAP_CHOWN\"}}}",
    "process.capabilities: `ambient` must be an array" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"],"
    " \"rlimits\": [{\"type\": \"RLIMIT_BOGUS\", \"soft\": 1, \"hard\": 1}]}}",
    "process.rlimits[0]: unknown type `RLIMIT_BOGUS`" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"],"
    " \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 10, \"hard\": 1}]}}",
    "process.rlimits[0]: `soft` is above `hard`" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"], \"rlimits\": ["
    "{\"type\": \"RLIMIT_NOFILE\", \"soft\": 1, \"hard\": 1},"
    "{\"type\": \"RLIMIT_NOFILE\", \"soft\": 1, \"hard\": 1}]}}",
    "process.rlimits[1]: `RLIMIT_NOFILE` appears twice" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"],"
    " \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 1}]}}",
    "process.rlimits[0]: `hard` is required" },
  { "{\"root\": {\"path\": \"r\"}, \"hostname\": 7, \"process\": {\"args\": [\"sh\"]}}",
    "`hostname` must be a string" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]},"
    " \"mounts\": [{\"destination\": \"data\", \"type\": \"tmpfs\"}]}",
    "mounts[0]: `destination` must be an absolute path, not `data`" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]},"
    " \"mounts\": [{\"destination\": \"/d\", \"options\": [\"bind\"]}]}",
    "mounts[0]: `source` is required for a bind mount" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]}, \"mounts\": "
    "[{\"destination\": \"/d\"}]}",
    "mounts[0]: `type` is required" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]},"
    " \"mounts\": [{\"destination\": \"/d\", \"type\": \"tmpfs\", \"options\": [1]}]}",
    "mounts[0]: `options` must be an array of strings" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]}, \"mounts\": {}}",
    "`mounts` must be an array" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]},"
    " \"linux\": {\"resources\": {\"memory\": {\"limit\": -5}}}}",
    "linux.resources.memory: `limit` is -5" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]},"
    " \"linux\": {\"resources\": {\"cpu\": {\"quota\": 10}}}}",
    "linux.resources.cpu: quota and period must be at least 1000 us" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]},"
    " \"linux\": {\"resources\": {\"cpu\": {\"shares\": \"many\"}}}}",
    "linux.resources.cpu: `shares` must be a number" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]},"
    " \"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"pid\"}]}}",
    "linux.namespaces[1]: namespace `pid` appears twice" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]},"
    " \"linux\": {\"namespaces\": [{\"type\": \"bogus\"}]}}",
    "linux.namespaces[0]: unknown namespace type `bogus`" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]},"
    " \"linux\": {\"namespaces\": [{\"type\": \"net\", \"path\": \"rel\"}]}}",
    "linux.namespaces[0]: `path` must be an absolute path" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]}, \"linux\": {\"maskedPaths\": "
    "[\"proc\"]}}",
    "linux.maskedPaths[0]: must be an absolute path" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]},"
    " \"linux\": {\"devices\": [{\"path\": \"/dev/x\", \"type\": \"p\", \"major\": 1, \"minor\": "
    "1}]}}",
    "linux.devices[0]: `type` must be" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]}, \"linux\": {\"sysctl\": "
    "{\"..\": \"1\"}}}",
    "linux.sysctl: invalid key `..`" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]},"
    " \"linux\": {\"sysctl\": {\"net.core.x\": 1}}}",
    "linux.sysctl: `net.core.x` must be a string" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]}, \"linux\": {\"seccomp\": "
    "[]}}",
    "linux: `seccomp` must be an object" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]},"
    " \"linux\": {\"cgroupsPath\": \"/berth/../../escape\"}}",
    "linux.cgroupsPath: `..` is not allowed" },
  { "{\"root\": {\"path\": \"r\"}, \"process\": {\"args\": [\"sh\"]},"
    " \"linux\": {\"uidMappings\": [{\"containerID\": 0, \"hostID\": 1000, \"size\": 1}]}}",
    "linux.uidMappings: user namespace id mappings are not supported" },
};

START_TEST (test_only_a_final_allow_all_device_rule_lifts_the_device_restriction)
{
  static const struct
  {
    const char *devices;
    bool all;
  } cases[] = {
    { "[{\"allow\": false, \"access\": \"rwm\"}, {\"allow\": true, \"access\": \"rwm\"}]", true },
    { "[{\"allow\": true, \"type\": \"a\"}]", true },
    { "[{\"allow\": false, \"access\": \"rwm\"}]", false },
    { "[{\"allow\": true, \"access\": \"rwm\"}, {\"allow\": false}]", false },
    { "[{\"allow\": true, \"type\": \"c\", \"access\": \"rwm\"}]", false },
    { "[{\"allow\": true, \"major\": 1, \"access\": \"rwm\"}]", false },
    { "[{\"allow\": true, \"access\": \"r\"}]", false },
    { "[]", false },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      _cleanup_free_ char *text = NULL;
      ck_assert_int_ge (asprintf (&text,
                                  "{\"root\": {\"path\": \"/r\"}, \"process\": {\"args\": [\"x\"]},"
                                  " \"linux\": {\"resources\": {\"devices\": %s}}}",
                                  cases[i].devices),
                        0);
      _cleanup_json_ cJSON *cfg = parse_json (text);
      struct rt_spec *s = NULL;
      berr *err = NULL;
      ck_assert_msg (rt_spec_from_oci (cfg, "/b", &s, &err) == 0, "%s", err ? err->msg : "");
      ck_assert_msg (s->cgroup.devices_allow_all == cases[i].all, "%s", cases[i].devices);
      rt_spec_free (s);
    }
  /* the default config denies everything: not lifted */
  _cleanup_json_ cJSON *def = rt_oci_default_config ();
  cJSON_ReplaceItemInObject (cJSON_GetObjectItem (def, "root"), "path", cJSON_CreateString ("/r"));
  struct rt_spec *s = NULL;
  berr *err = NULL;
  ck_assert_int_eq (rt_spec_from_oci (def, "/b", &s, &err), 0);
  ck_assert (!s->cgroup.devices_allow_all);
  rt_spec_free (s);
}
END_TEST

START_TEST (test_a_device_allow_rule_narrows_the_access_of_its_node)
{
  _cleanup_json_ cJSON *cfg = parse_json (
      "{\"root\": {\"path\": \"/r\"}, \"process\": {\"args\": [\"x\"]},"
      " \"linux\": {\"devices\": [{\"path\": \"/dev/a\", \"type\": \"c\", \"major\": 10, "
      "\"minor\": 229},"
      " {\"path\": \"/dev/b\", \"type\": \"c\", \"major\": 10, \"minor\": 230}],"
      " \"resources\": {\"devices\": [{\"allow\": false, \"access\": \"rwm\"},"
      " {\"allow\": true, \"type\": \"c\", \"major\": 10, \"minor\": 229, \"access\": \"r\"},"
      " {\"allow\": true, \"type\": \"b\", \"major\": 10, \"minor\": 230, \"access\": \"w\"}]}}}");
  struct rt_spec *s = NULL;
  berr *err = NULL;
  ck_assert_msg (rt_spec_from_oci (cfg, "/b", &s, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq (s->n_devices, 2);
  ck_assert_str_eq (s->devices[0].access, "r");
  ck_assert_str_eq (s->devices[1].access, ""); /* the rule is for a block device: not this one */
  ck_assert (!s->cgroup.devices_allow_all);
  rt_spec_free (s);
  _cleanup_json_ cJSON *bad = parse_json (
      "{\"root\": {\"path\": \"/r\"}, \"process\": {\"args\": [\"x\"]},"
      " \"linux\": {\"resources\": {\"devices\": [{\"allow\": true, \"access\": \"rx\"}]}}}");
  ck_assert_int_lt (rt_spec_from_oci (bad, "/b", &s, &err), 0);
  ck_assert_msg (strstr (err->msg, "bad access"), "%s", err->msg);
  berr_free (&err);
}
END_TEST

START_TEST (test_bad_config_is_rejected_with_a_message_naming_the_field)
{
  _cleanup_json_ cJSON *cfg = parse_json (bad_configs[_i].json);
  struct rt_spec *s = NULL;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_int_eq (rt_spec_from_oci (cfg, "/b", &s, &err), -1);
  ck_assert_ptr_null (s);
  ck_assert_ptr_nonnull (err);
  ck_assert_msg (strstr (err->msg, bad_configs[_i].want) != NULL,
                 "case %d: got \"%s\", want \"%s\"", _i, err->msg, bad_configs[_i].want);
}
END_TEST

/* The hardening two specs share: everything but the rootfs and the command. */
static void assert_same_hardening (const struct rt_spec *a, const struct rt_spec *b)
{
  ck_assert (a->readonly_root == b->readonly_root);
  ck_assert_str_eq (a->hostname, b->hostname);
  for (int t = 0; t < RT_NS__COUNT; t++)
    ck_assert (a->ns[t].enabled == b->ns[t].enabled);
  ck_assert (memcmp (&a->process.caps, &b->process.caps, sizeof a->process.caps) == 0);
  ck_assert (a->process.no_new_privs == b->process.no_new_privs);
  ck_assert_int_eq (a->process.uid, b->process.uid);
  ck_assert_int_eq (a->process.gid, b->process.gid);
  ck_assert_str_eq (a->process.cwd, b->process.cwd);
  assert_strv (a->process.env, (const char *const *)b->process.env);
  ck_assert_uint_eq (a->process.n_rlimits, b->process.n_rlimits);
  ck_assert (memcmp (a->process.rlimits, b->process.rlimits,
                     a->process.n_rlimits * sizeof *a->process.rlimits)
             == 0);
  assert_strv (a->masked_paths, (const char *const *)b->masked_paths);
  assert_strv (a->readonly_paths, (const char *const *)b->readonly_paths);
  ck_assert_uint_eq (a->n_mounts, b->n_mounts);
  for (size_t i = 0; i < a->n_mounts; i++)
    {
      ck_assert_str_eq (a->mounts[i].destination, b->mounts[i].destination);
      ck_assert_str_eq (a->mounts[i].type, b->mounts[i].type);
      ck_assert_str_eq (a->mounts[i].source, b->mounts[i].source);
      ck_assert_uint_eq (a->mounts[i].flags, b->mounts[i].flags);
      ck_assert ((a->mounts[i].data == NULL) == (b->mounts[i].data == NULL));
      if (a->mounts[i].data)
        ck_assert_str_eq (a->mounts[i].data, b->mounts[i].data);
    }
  ck_assert (cJSON_Compare (a->seccomp, b->seccomp, true));
  ck_assert (memcmp (&a->cgroup, &b->cgroup, sizeof a->cgroup) == 0);
}

START_TEST (test_default_config_round_trips_to_the_default_hardening)
{
  _cleanup_json_ cJSON *cfg = rt_oci_default_config ();
  ck_assert_ptr_nonnull (cfg);
  ck_assert_str_eq (cJSON_GetObjectItem (cfg, "ociVersion")->valuestring, "1.0.2");
  cJSON *root = cJSON_GetObjectItem (cfg, "root");
  ck_assert_str_eq (cJSON_GetObjectItem (root, "path")->valuestring, "rootfs");
  cJSON *args = cJSON_GetObjectItem (cJSON_GetObjectItem (cfg, "process"), "args");
  ck_assert_int_eq (cJSON_GetArraySize (args), 1);
  ck_assert_str_eq (cJSON_GetArrayItem (args, 0)->valuestring, "sh");

  /* Through text, as `berth-runtime spec` writes it and `run` reads it back. */
  _cleanup_free_ char *text = cJSON_Print (cfg);
  _cleanup_json_ cJSON *reread = parse_json (text);
  struct rt_spec *from_file = NULL, *defaults = NULL;
  berr *err = NULL;
  ck_assert_int_eq (rt_spec_from_oci (reread, "/bundles/x", &from_file, &err), 0);
  char *sh[] = { "sh", NULL };
  ck_assert_int_eq (rt_spec_new_default ("/bundles/x/rootfs", sh, &defaults, &err), 0);
  ck_assert_str_eq (from_file->rootfs, defaults->rootfs);
  ck_assert_str_eq (from_file->process.args[0], "sh");
  assert_same_hardening (from_file, defaults);
  rt_spec_free (from_file);
  rt_spec_free (defaults);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("spec");
  TCase *tc = tcase_create ("spec");
  tcase_add_test (tc, test_default_spec_has_berth_hardening);
  tcase_add_test (tc, test_default_spec_makes_a_relative_rootfs_absolute);
  tcase_add_test (tc, test_oci_config_fields_land_in_the_spec);
  tcase_add_test (tc, test_minimal_config_gets_empty_defaults);
  tcase_add_test (tc, test_only_a_final_allow_all_device_rule_lifts_the_device_restriction);
  tcase_add_test (tc, test_a_device_allow_rule_narrows_the_access_of_its_node);
  tcase_add_loop_test (tc, test_bad_config_is_rejected_with_a_message_naming_the_field, 0,
                       (int)(sizeof bad_configs / sizeof bad_configs[0]));
  tcase_add_test (tc, test_default_config_round_trips_to_the_default_hardening);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
