/* berth-runtime against real namespaces, cgroups and seccomp: bundles start from
 * `berth-runtime spec`, run the busybox rootfs, and the static berth-probe asks the kernel. */
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "tests/support/support.h"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *state_root;

struct bundle
{
  char *dir;
  cJSON *config;
};

static void setup (void)
{
  /* Detached containers and exec'd processes are re-parented to the nearest subreaper: make
   * that this test, so they are reaped whatever the host's init does. */
  prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  state_root = ts_mkdtemp ("rt-state");
}

static void teardown (void)
{
  ts_rmtree (state_root);
  free (state_root);
}

/* Runs berth-runtime with --root state_root; returns the exit code, output in *out. */
static int runtime (char **out, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static int runtime (char **out, const char *fmt, ...)
{
  _cleanup_free_ char *bin = ts_bin ("berth-runtime"), *args = NULL, *cmd = NULL;
  va_list ap;
  va_start (ap, fmt);
  ck_assert_int_ge (vasprintf (&args, fmt, ap), 0);
  va_end (ap);
  ck_assert_int_ge (asprintf (&cmd, "%s --root %s %s", bin, state_root, args), 0);
  int status = 0;
  char *o = NULL;
  ck_assert_int_eq (ts_sh (cmd, &o, &status), 0);
  if (out)
    *out = o;
  else
    free (o);
  return ts_exit_code (status);
}

/* Sets key to item whether or not it exists (cJSON's Replace only replaces). */
static void set_item (cJSON *obj, const char *key, cJSON *item)
{
  cJSON_DeleteItemFromObjectCaseSensitive (obj, key);
  cJSON_AddItemToObject (obj, key, item);
}

/* For commands that leave a container running: its stdio goes to a file, not our pipe. */
static int runtime_detached (char **out, const char *args)
{
  _cleanup_free_ char *log = NULL;
  ck_assert_int_ge (asprintf (&log, "%s/detached.log", state_root), 0);
  int rc = runtime (NULL, "%s >%s 2>&1", args, log);
  if (out)
    *out = ts_read_file (log);
  unlink (log);
  return rc;
}

static cJSON *path_item (cJSON *root, const char *a, const char *b)
{
  cJSON *x = cJSON_GetObjectItemCaseSensitive (root, a);
  return b ? cJSON_GetObjectItemCaseSensitive (x, b) : x;
}

/* A bundle from `berth-runtime spec` whose root is the shared busybox rootfs, with args set and
 * berth-probe bind-mounted at /probe. cgroupsPath is unique per bundle. */
static struct bundle bundle_new (const char *const *args)
{
  struct bundle b = { ts_mkdtemp ("bundle"), NULL };
  char *out = NULL;
  int rc = runtime (&out, "spec --bundle %s", b.dir);
  ck_assert_msg (rc == 0, "spec failed: %s", out);
  free (out);
  _cleanup_free_ char *path = NULL, *rootfs = ts_rootfs (), *probe = NULL, *cg = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/config.json", b.dir), 0);
  berr *err = NULL;
  ck_assert_msg (bjson_read_file (AT_FDCWD, path, 1 << 20, &b.config, &err) == 0, "%s",
                 err ? err->msg : "");
  cJSON *root = path_item (b.config, "root", NULL);
  set_item (root, "path", cJSON_CreateString (rootfs));
  int n = 0;
  while (args[n])
    n++;
  set_item (path_item (b.config, "process", NULL), "args", cJSON_CreateStringArray (args, n));
  ck_assert_int_ge (asprintf (&probe, "%s/tests/berth-probe", ts_build_dir ()), 0);
  char *abs = realpath (probe, NULL);
  ck_assert_ptr_nonnull (abs);
  cJSON *m = cJSON_CreateObject ();
  cJSON_AddStringToObject (m, "destination", "/probe");
  cJSON_AddStringToObject (m, "type", "bind");
  cJSON_AddStringToObject (m, "source", abs);
  const char *opts[] = { "rbind", "ro", "nosuid" };
  cJSON_AddItemToObject (m, "options", cJSON_CreateStringArray (opts, 3));
  cJSON_AddItemToArray (path_item (b.config, "mounts", NULL), m);
  free (abs);
  ck_assert_int_ge (asprintf (&cg, "berth-test-%s", strrchr (b.dir, '/') + 1), 0);
  set_item (path_item (b.config, "linux", NULL), "cgroupsPath", cJSON_CreateString (cg));
  return b;
}

static void bundle_save (struct bundle *b)
{
  _cleanup_free_ char *path = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/config.json", b->dir), 0);
  unlink (path);
  berr *err = NULL;
  ck_assert_msg (bjson_write_file (AT_FDCWD, path, b->config, 0644, &err) == 0, "%s",
                 err ? err->msg : "");
}

static void bundle_free (struct bundle *b)
{
  cJSON_Delete (b->config);
  ts_rmtree (b->dir);
  free (b->dir);
}

/* Runs args in a fresh container in the foreground; returns its exit code. */
static int run_args (const char *const *args, void (*edit) (cJSON *config), char **out)
{
  struct bundle b = bundle_new (args);
  if (edit)
    edit (b.config);
  bundle_save (&b);
  int rc = runtime (out, "run --bundle %s c%d", b.dir, (int)getpid ());
  bundle_free (&b);
  return rc;
}

START_TEST (test_init_is_pid_1_in_its_own_pid_namespace)
{
  char *out = NULL;
  const char *args[] = { "/bin/sh", "-c", "echo pid=$$", NULL };
  ck_assert_int_eq (run_args (args, NULL, &out), 0);
  ck_assert_msg (strstr (out, "pid=1\n"), "got: %s", out);
  free (out);
}
END_TEST

static void set_hostname (cJSON *c)
{
  set_item (c, "hostname", cJSON_CreateString ("berth-box"));
}

START_TEST (test_own_hostname_and_mount_table)
{
  char *out = NULL;
  const char *args[] = { "/bin/sh", "-c", "hostname; cat /proc/self/mountinfo", NULL };
  ck_assert_int_eq (run_args (args, set_hostname, &out), 0);
  ck_assert_msg (strncmp (out, "berth-box\n", 10) == 0, "got: %s", out);
  /* Only the container's own mount points: field 5 of every mountinfo line. */
  int lines = 0;
  for (char *line = strchr (out, '\n'); line && line[1]; line = strchr (line + 1, '\n'), lines++)
    {
      char point[256] = "";
      ck_assert_int_eq (sscanf (line + 1, "%*s %*s %*s %*s %255s", point), 1);
      ck_assert_msg (strcmp (point, "/") == 0 || strncmp (point, "/proc", 5) == 0
                         || strncmp (point, "/dev", 4) == 0 || strncmp (point, "/sys", 4) == 0
                         || strcmp (point, "/probe") == 0,
                     "unexpected mount point %s in: %s", point, out);
    }
  ck_assert_int_ge (lines, 8);
  free (out);
}
END_TEST

START_TEST (test_masked_paths_unreadable_and_proc_sys_readonly)
{
  char *out = NULL;
  const char *args[] = {
    "/bin/sh", "-c",
    "echo kcore=$(head -c 16 /proc/kcore | wc -c); echo keys=$(cat /proc/keys | wc -c);"
    "echo acpi=$(ls /proc/acpi 2>/dev/null | wc -l);"
    "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys=writable || echo sys=readonly",
    NULL
  };
  ck_assert_int_eq (run_args (args, NULL, &out), 0);
  ck_assert_msg (strstr (out, "kcore=0\n") && strstr (out, "keys=0\n") && strstr (out, "acpi=0\n")
                     && strstr (out, "sys=readonly\n"),
                 "got: %s", out);
  free (out);
}
END_TEST

START_TEST (test_seccomp_denies_mount_unshare_keyctl)
{
  char *out = NULL;
  const char *args[] = { "/probe", "syscalls", NULL };
  ck_assert_int_eq (run_args (args, NULL, &out), 0);
  ck_assert_msg (strstr (out, "unshare=EPERM\n") && strstr (out, "mount=EPERM\n")
                     && strstr (out, "keyctl=EPERM\n") && strstr (out, "clone3=ENOSYS\n")
                     && strstr (out, "unknown=ENOSYS\n") && strstr (out, "getpid=OK\n"),
                 "got: %s", out);
  free (out);
}
END_TEST

static void two_caps (cJSON *c)
{
  const char *caps[] = { "CAP_CHOWN", "CAP_NET_BIND_SERVICE" };
  cJSON *set = cJSON_GetObjectItemCaseSensitive (path_item (c, "process", NULL), "capabilities");
  const char *kinds[] = { "bounding", "effective", "permitted" };
  for (int i = 0; i < 3; i++)
    set_item (set, kinds[i], cJSON_CreateStringArray (caps, 2));
}

START_TEST (test_capabilities_exactly_as_configured)
{
  char *out = NULL;
  const char *args[] = { "/bin/grep", "^Cap", "/proc/self/status", NULL };
  ck_assert_int_eq (run_args (args, NULL, &out), 0);
  /* Docker's 14: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE
   * NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP. */
  ck_assert_msg (
      strstr (out, "CapEff:\t00000000a80425fb") && strstr (out, "CapBnd:\t00000000a80425fb")
          && strstr (out, "CapInh:\t0000000000000000") && strstr (out, "CapAmb:\t0000000000000000"),
      "default caps: %s", out);
  free (out);
  ck_assert_int_eq (run_args (args, two_caps, &out), 0);
  ck_assert_msg (strstr (out, "CapEff:\t0000000000000401")
                     && strstr (out, "CapBnd:\t0000000000000401"),
                 "configured caps: %s", out);
  free (out);
}
END_TEST

static void pids_10 (cJSON *c)
{
  cJSON *res = cJSON_CreateObject ();
  cJSON *pids = cJSON_AddObjectToObject (res, "pids");
  cJSON_AddNumberToObject (pids, "limit", 10);
  set_item (path_item (c, "linux", NULL), "resources", res);
}

START_TEST (test_pids_limit_enforced)
{
  char *out = NULL;
  const char *args[]
      = { "/bin/sh", "-c",
          "n=0; for i in $(seq 30); do sleep 3 & n=$((n+1)); done; echo started=$n", NULL };
  run_args (args, pids_10, &out);
  ck_assert_msg (strstr (out, "can't fork") || strstr (out, "Resource temporarily unavailable"),
                 "no fork failure: %s", out);
  free (out);
}
END_TEST

static void memory_32m (cJSON *c)
{
  cJSON *res = cJSON_CreateObject ();
  cJSON *mem = cJSON_AddObjectToObject (res, "memory");
  cJSON_AddNumberToObject (mem, "limit", 32 << 20);
  set_item (path_item (c, "linux", NULL), "resources", res);
}

START_TEST (test_memory_limit_enforced_by_oom_kill)
{
  char *out = NULL;
  const char *args[] = { "/probe", "alloc", "256", NULL };
  int rc = run_args (args, memory_32m, &out);
  ck_assert_msg (rc == 137, "expected SIGKILL (137), got %d: %s", rc, out);
  free (out);
}
END_TEST

START_TEST (test_exit_code_preserved)
{
  const char *args[] = { "/bin/sh", "-c", "exit 42", NULL };
  ck_assert_int_eq (run_args (args, NULL, NULL), 42);
}
END_TEST

START_TEST (test_missing_binary_is_a_clear_error)
{
  char *out = NULL;
  const char *args[] = { "/no/such/binary", NULL };
  ck_assert_int_ne (run_args (args, NULL, &out), 0);
  ck_assert_msg (strstr (out, "exec `/no/such/binary`: No such file or directory"), "got: %s", out);
  free (out);
}
END_TEST

static void args_as_string (cJSON *c)
{
  set_item (path_item (c, "process", NULL), "args", cJSON_CreateString ("sh"));
}

START_TEST (test_malformed_config_names_the_field)
{
  char *out = NULL;
  const char *args[] = { "/bin/true", NULL };
  ck_assert_int_eq (run_args (args, args_as_string, &out), 1);
  ck_assert_msg (strstr (out, "args"), "got: %s", out);
  free (out);
  /* Nothing was left behind for the failed container. */
  ck_assert_int_ne (runtime (&out, "state c%d", (int)getpid ()), 0);
  free (out);
}
END_TEST

static void readonly_root (cJSON *c)
{
  set_item (path_item (c, "root", NULL), "readonly", cJSON_CreateTrue ());
}

START_TEST (test_readonly_root)
{
  char *out = NULL;
  const char *args[]
      = { "/bin/sh", "-c", "touch /berth-x 2>/dev/null && echo rw || echo ro", NULL };
  ck_assert_int_eq (run_args (args, readonly_root, &out), 0);
  ck_assert_msg (strstr (out, "ro\n"), "got: %s", out);
  free (out);
}
END_TEST

START_TEST (test_no_descriptor_leaks_into_container)
{
  /* A descriptor without O_CLOEXEC in the caller must not reach the container. */
  int fd = open ("/etc/hostname", O_RDONLY);
  ck_assert_int_ge (fd, 0);
  int high = dup2 (fd, 77);
  ck_assert_int_eq (high, 77);
  char *out = NULL;
  const char *args[] = { "/probe", "fds", NULL };
  ck_assert_int_eq (run_args (args, NULL, &out), 0);
  ck_assert_msg (strstr (out, "fds: 0 1 2\n"), "got: %s", out);
  free (out);
  close (fd);
  close (high);
}
END_TEST

START_TEST (test_rootfs_symlink_cannot_redirect_a_mount)
{
  /* The image plants /evil -> <host dir>; a mount at /evil/x must land inside the rootfs. */
  _cleanup_free_ char *host_dir = ts_mkdtemp ("host-target"), *rootfs = ts_mkdtemp ("rootfs");
  _cleanup_free_ char *cmd = NULL, *src = ts_rootfs ();
  /* The link's target also exists inside the rootfs, where it must resolve. */
  ck_assert_int_ge (asprintf (&cmd, "cp -a %s/. %s/ && ln -s %s %s/evil && mkdir -p %s%s", src,
                              rootfs, host_dir, rootfs, rootfs, host_dir),
                    0);
  int st = 0;
  ck_assert_int_eq (ts_sh (cmd, NULL, &st), 0);
  ck_assert_int_eq (ts_exit_code (st), 0);
  const char *args[] = { "/bin/sh", "-c", "ls /evil/x", NULL };
  struct bundle b = bundle_new (args);
  set_item (path_item (b.config, "root", NULL), "path", cJSON_CreateString (rootfs));
  cJSON *m = cJSON_CreateObject ();
  cJSON_AddStringToObject (m, "destination", "/evil/x");
  cJSON_AddStringToObject (m, "type", "tmpfs");
  cJSON_AddStringToObject (m, "source", "tmpfs");
  cJSON_AddItemToArray (path_item (b.config, "mounts", NULL), m);
  bundle_save (&b);
  char *out = NULL;
  int rc = runtime (&out, "run --bundle %s sym%d", b.dir, (int)getpid ());
  ck_assert_msg (rc == 0, "run: %s", out);
  free (out);
  /* The host directory the symlink names is untouched. */
  _cleanup_free_ char *probe = NULL;
  ck_assert_int_ge (asprintf (&probe, "%s/x", host_dir), 0);
  ck_assert_int_ne (access (probe, F_OK), 0);
  bundle_free (&b);
  ts_rmtree (host_dir);
  ts_rmtree (rootfs);
}
END_TEST

static bool output_contains (const char *cmd_args, const char *needle)
{
  char *out = NULL;
  runtime (&out, "%s", cmd_args);
  bool r = out && strstr (out, needle);
  free (out);
  return r;
}

START_TEST (test_lifecycle_create_start_kill_delete)
{
  const char *args[] = { "/bin/sleep", "100", NULL };
  struct bundle b = bundle_new (args);
  bundle_save (&b);
  char *out = NULL;
  _cleanup_free_ char *create = NULL;
  ck_assert_int_ge (asprintf (&create, "create --bundle %s life", b.dir), 0);
  ck_assert_msg (runtime_detached (&out, create) == 0, "create: %s", out);
  free (out);
  ck_assert (output_contains ("state life", "\"status\":\t\"created\""));
  ck_assert_msg (runtime (&out, "start life") == 0, "start: %s", out);
  free (out);
  ck_assert (output_contains ("state life", "\"status\":\t\"running\""));
  ck_assert_int_ne (runtime (NULL, "delete life"), 0); /* running: needs --force */
  ck_assert_int_eq (runtime (NULL, "kill life KILL"), 0);
  for (int i = 0; i < 100 && !output_contains ("state life", "\"stopped\""); i++)
    usleep (20000);
  ck_assert (output_contains ("state life", "\"status\":\t\"stopped\""));
  ck_assert_int_eq (runtime (NULL, "delete life"), 0);
  ck_assert_int_ne (runtime (NULL, "state life"), 0);
  bundle_free (&b);
}
END_TEST

/* Alive and not a zombie. The test is a subreaper (setup), so the orphans of detached
 * commands are its children: reap them here, as an init would. */
static bool process_alive (pid_t pid)
{
  while (waitpid (-1, NULL, WNOHANG) > 0)
    ;
  char path[64];
  snprintf (path, sizeof path, "/proc/%d/stat", (int)pid);
  _cleanup_free_ char *st = ts_read_file (path);
  const char *p = st ? strrchr (st, ')') : NULL;
  return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

START_TEST (test_exec_into_running_container)
{
  const char *args[] = { "/bin/sleep", "100", NULL };
  struct bundle b = bundle_new (args);
  set_hostname (b.config);
  bundle_save (&b);
  char *out = NULL;
  _cleanup_free_ char *run = NULL;
  ck_assert_int_ge (asprintf (&run, "run --detach --bundle %s ex", b.dir), 0);
  ck_assert_msg (runtime_detached (&out, run) == 0, "run: %s", out);
  free (out);
  ck_assert_int_eq (runtime (&out, "exec ex /bin/sh -c 'hostname; cat /proc/1/comm; grep ^CapEff "
                                   "/proc/self/status; /probe syscalls'"),
                    0);
  ck_assert_msg (strstr (out, "berth-box\nsleep\n") && strstr (out, "CapEff:\t00000000a80425fb")
                     && strstr (out, "mount=EPERM"),
                 "exec saw: %s", out);
  free (out);
  ck_assert_int_eq (runtime (NULL, "exec ex /bin/sh -c 'exit 7'"), 7);
  ck_assert_int_ne (runtime (&out, "exec ex /nonexistent"), 0);
  ck_assert_msg (strstr (out, "No such file"), "got: %s", out);
  free (out);
  /* kill --all reaches processes exec'd into the container, not only its init. */
  _cleanup_free_ char *bgfile = NULL, *bgcmd = NULL;
  ck_assert_int_ge (asprintf (&bgfile, "%s/bg.pid", state_root), 0);
  ck_assert_int_ge (asprintf (&bgcmd, "exec --detach --pid-file %s ex /bin/sleep 100", bgfile), 0);
  ck_assert_int_eq (runtime_detached (NULL, bgcmd), 0);
  _cleanup_free_ char *bgtext = ts_read_file (bgfile);
  ck_assert_ptr_nonnull (bgtext);
  pid_t bg = atoi (bgtext);
  ck_assert_int_eq (kill (bg, 0), 0);
  ck_assert_int_eq (runtime (NULL, "kill --all ex KILL"), 0);
  for (int i = 0; i < 200 && process_alive (bg); i++)
    usleep (10000);
  ck_assert_msg (!process_alive (bg), "exec'd process %d survived kill --all", (int)bg);
  for (int i = 0; i < 200 && !output_contains ("state ex", "\"stopped\""); i++)
    {
      process_alive (bg); /* reaps the container's init once it is gone */
      usleep (10000);
    }
  ck_assert (output_contains ("state ex", "\"status\":\t\"stopped\""));
  ck_assert_int_eq (runtime (NULL, "delete ex"), 0);
  bundle_free (&b);
}
END_TEST

/* `runc spec` and `crun spec` ask for ambient capabilities with an empty inheritable set; the
 * kernel only raises ambient capabilities that are also inheritable. */
static void ambient_without_inheritable (cJSON *c)
{
  const char *amb[] = { "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE" };
  cJSON *set = cJSON_GetObjectItemCaseSensitive (path_item (c, "process", NULL), "capabilities");
  set_item (set, "ambient", cJSON_CreateStringArray (amb, 3));
  cJSON_DeleteItemFromObjectCaseSensitive (set, "inheritable");
}

static void ambient_with_inheritable (cJSON *c)
{
  ambient_without_inheritable (c);
  const char *inh[] = { "CAP_NET_BIND_SERVICE" };
  cJSON *set = cJSON_GetObjectItemCaseSensitive (path_item (c, "process", NULL), "capabilities");
  set_item (set, "inheritable", cJSON_CreateStringArray (inh, 1));
}

START_TEST (test_ambient_caps_outside_inheritable_are_skipped)
{
  char *out = NULL;
  const char *args[] = { "/bin/grep", "^CapAmb", "/proc/self/status", NULL };
  ck_assert_int_eq (run_args (args, ambient_without_inheritable, &out), 0);
  ck_assert_msg (strstr (out, "CapAmb:\t0000000000000000"), "got: %s", out);
  free (out);
  ck_assert_int_eq (run_args (args, ambient_with_inheritable, &out), 0);
  ck_assert_msg (strstr (out, "CapAmb:\t0000000000000400"), "got: %s", out);
  free (out);
}
END_TEST

static Suite *runtime_suite (void)
{
  Suite *s = suite_create ("runtime");
  TCase *tc = tcase_create ("containers");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_init_is_pid_1_in_its_own_pid_namespace);
  tcase_add_test (tc, test_own_hostname_and_mount_table);
  tcase_add_test (tc, test_masked_paths_unreadable_and_proc_sys_readonly);
  tcase_add_test (tc, test_seccomp_denies_mount_unshare_keyctl);
  tcase_add_test (tc, test_capabilities_exactly_as_configured);
  tcase_add_test (tc, test_pids_limit_enforced);
  tcase_add_test (tc, test_memory_limit_enforced_by_oom_kill);
  tcase_add_test (tc, test_exit_code_preserved);
  tcase_add_test (tc, test_missing_binary_is_a_clear_error);
  tcase_add_test (tc, test_malformed_config_names_the_field);
  tcase_add_test (tc, test_readonly_root);
  tcase_add_test (tc, test_no_descriptor_leaks_into_container);
  tcase_add_test (tc, test_rootfs_symlink_cannot_redirect_a_mount);
  tcase_add_test (tc, test_lifecycle_create_start_kill_delete);
  tcase_add_test (tc, test_exec_into_running_container);
  tcase_add_test (tc, test_ambient_caps_outside_inheritable_are_skipped);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  if (!ts_is_root ())
    {
      printf ("100%%: Checks: 0, Failures: 0, Errors: 0 (needs root)\n");
      return 0;
    }
  return ts_run_suite (runtime_suite ());
}
