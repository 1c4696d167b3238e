/* The default seccomp profile and its compilation: the ENOSYS prologue, the on-disk cache, clear
 * errors, and the real filter loaded with seccomp(2) in a child process. */
#include "lib/cleanup.h"
#include "lib/json.h"
#include "runtime/runtime.h"
#include "tests/support/support.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static cJSON *parse_json (const char *text)
{
  cJSON *j = NULL;
  berr *err = NULL;
  if (bjson_parse (text, strlen (text), &j, &err) < 0)
    ck_abort_msg ("test JSON does not parse: %s", err->msg);
  return j;
}

static cJSON *default_profile (void)
{
  cJSON *p = rt_seccomp_default_profile (rt_caps_docker_default ());
  ck_assert_ptr_nonnull (p);
  return p;
}

static void compile (const cJSON *profile, const char *cache, struct sock_filter **prog,
                     size_t *len)
{
  berr *err = NULL;
  void *p = NULL;
  int r = rt_seccomp_compile (profile, cache, &p, len, &err);
  ck_assert_msg (r == 0, "compile: %s", err ? err->msg : "");
  *prog = p;
}

/* Every name any rule of the profile mentions. */
static bool profile_names (const cJSON *profile, const char *name)
{
  const cJSON *rule, *n;
  cJSON_ArrayForEach (rule, cJSON_GetObjectItem (profile, "syscalls"))
  {
    cJSON_ArrayForEach (n, cJSON_GetObjectItem (rule, "names"))
    {
      if (strcmp (n->valuestring, name) == 0)
        return true;
    }
  }
  return false;
}

static bool allowed_unconditionally (const cJSON *profile, const char *name)
{
  const cJSON *rule, *n;
  cJSON_ArrayForEach (rule, cJSON_GetObjectItem (profile, "syscalls"))
  {
    if (strcmp (cJSON_GetObjectItem (rule, "action")->valuestring, "SCMP_ACT_ALLOW") != 0
        || cJSON_GetObjectItem (rule, "args") != NULL)
      continue;
    cJSON_ArrayForEach (n, cJSON_GetObjectItem (rule, "names"))
    {
      if (strcmp (n->valuestring, name) == 0)
        return true;
    }
  }
  return false;
}

/* The highest native syscall number the profile names: what the prologue compares against. */
static int native_max (const cJSON *profile)
{
  int max = -1;
  const cJSON *rule, *n;
  cJSON_ArrayForEach (rule, cJSON_GetObjectItem (profile, "syscalls"))
  {
    cJSON_ArrayForEach (n, cJSON_GetObjectItem (rule, "names"))
    {
      int nr = seccomp_syscall_resolve_name (n->valuestring);
      if (nr > max)
        max = nr;
    }
  }
  return max;
}

START_TEST (test_default_profile_names_only_syscalls_libseccomp_knows)
{
  /* A typo would silently drop a call from the allowlist. The name list is shared by every
   * architecture Berth builds for, so each name must exist on at least one of them. */
  static const uint32_t arches[]
      = { SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32, SCMP_ARCH_AARCH64, SCMP_ARCH_ARM };
  _cleanup_json_ cJSON *p = rt_seccomp_default_profile (~0ULL);
  const cJSON *rule, *n;
  size_t count = 0;
  cJSON_ArrayForEach (rule, cJSON_GetObjectItem (p, "syscalls"))
  {
    cJSON_ArrayForEach (n, cJSON_GetObjectItem (rule, "names"))
    {
      bool known = false;
      for (size_t i = 0; i < sizeof arches / sizeof arches[0]; i++)
        known |= seccomp_syscall_resolve_name_arch (arches[i], n->valuestring) >= 0;
      ck_assert_msg (known, "`%s` is no syscall on any architecture Berth supports",
                     n->valuestring);
      count++;
    }
  }
  ck_assert_uint_gt (count, 300);
}
END_TEST

START_TEST (test_default_profile_gates_privileged_calls_on_capabilities)
{
  _cleanup_json_ cJSON *plain = default_profile ();
  ck_assert_str_eq (cJSON_GetObjectItem (plain, "defaultAction")->valuestring, "SCMP_ACT_ERRNO");
  ck_assert_int_eq (cJSON_GetObjectItem (plain, "defaultErrnoRet")->valueint, EPERM);
  static const char *const denied[] = { "mount",           "umount2",
                                        "pivot_root",      "unshare",
                                        "setns",           "bpf",
                                        "keyctl",          "add_key",
                                        "request_key",     "ptrace",
                                        "kexec_load",      "kexec_file_load",
                                        "reboot",          "swapon",
                                        "swapoff",         "userfaultfd",
                                        "init_module",     "finit_module",
                                        "delete_module",   "open_by_handle_at",
                                        "perf_event_open", "io_uring_setup",
                                        "clone3",          "settimeofday" };
  for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++)
    ck_assert_msg (!allowed_unconditionally (plain, denied[i]), "%s allowed", denied[i]);
  static const char *const needed[]
      = { "read",   "write",      "openat",       "execve",     "fork",   "wait4",
          "mmap",   "futex",      "rt_sigaction", "exit_group", "getpid", "socket",
          "chroot", "newfstatat", "statx",        "getdents64" };
  for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
    ck_assert_msg (allowed_unconditionally (plain, needed[i]), "%s not allowed", needed[i]);
  ck_assert (profile_names (plain, "clone") && !allowed_unconditionally (plain, "clone"));

  /* With the capabilities, what they cover; keyrings and kexec never. */
  _cleanup_json_ cJSON *admin = rt_seccomp_default_profile (
      rt_caps_docker_default () | (1ULL << CAP_SYS_ADMIN) | (1ULL << CAP_SYS_PTRACE));
  static const char *const with_caps[]
      = { "mount", "umount2", "unshare", "setns", "clone", "clone3", "ptrace", "pivot_root" };
  for (size_t i = 0; i < sizeof with_caps / sizeof with_caps[0]; i++)
    ck_assert_msg (allowed_unconditionally (admin, with_caps[i]), "%s not allowed", with_caps[i]);
  _cleanup_json_ cJSON *all = rt_seccomp_default_profile (~0ULL);
  static const char *const never[]
      = { "keyctl",          "add_key",        "request_key", "kexec_load",
          "kexec_file_load", "io_uring_setup", "modify_ldt" };
  for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
    ck_assert_msg (!profile_names (all, never[i]), "%s named", never[i]);
}
END_TEST

START_TEST (test_compiled_filter_starts_with_the_enosys_prologue)
{
  _cleanup_json_ cJSON *p = default_profile ();
  _cleanup_free_ struct sock_filter *prog = NULL;
  size_t len = 0;
  compile (p, NULL, &prog, &len);
  ck_assert_uint_gt (len, 100);
  ck_assert_uint_le (len, BPF_MAXINSNS);
  /* ld arch; jeq native; ld nr; jgt <highest number the profile names> */
  ck_assert_uint_eq (prog[0].code, BPF_LD | BPF_W | BPF_ABS);
  ck_assert_uint_eq (prog[0].k, offsetof (struct seccomp_data, arch));
  ck_assert_uint_eq (prog[1].code, BPF_JMP | BPF_JEQ | BPF_K);
  ck_assert_uint_eq (prog[1].k, seccomp_arch_native ());
  ck_assert_uint_eq (prog[2].code, BPF_LD | BPF_W | BPF_ABS);
  ck_assert_uint_eq (prog[2].k, offsetof (struct seccomp_data, nr));
  ck_assert_uint_eq (prog[3].code, BPF_JMP | BPF_JGT | BPF_K);
  ck_assert_uint_eq (prog[3].k, (uint32_t)native_max (p));
  bool ret_enosys = false;
  for (size_t i = 0; i < 32; i++)
    ret_enosys |= prog[i].code == (BPF_RET | BPF_K) && prog[i].k == (SECCOMP_RET_ERRNO | ENOSYS);
  ck_assert (ret_enosys);
}
END_TEST

/* The one cache file in dir (newly allocated path), or NULL if there is none. */
static char *cache_file (const char *dir)
{
  DIR *d = opendir (dir);
  ck_assert_ptr_nonnull (d);
  struct dirent *e;
  char *found = NULL;
  int n = 0;
  while ((e = readdir (d)) != NULL)
    if (e->d_name[0] != '.')
      {
        n++;
        free (found);
        ck_assert_int_ge (asprintf (&found, "%s/%s", dir, e->d_name), 0);
      }
  closedir (d);
  ck_assert_int_le (n, 1);
  return found;
}

START_TEST (test_second_compile_is_served_from_the_cache)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("seccomp-cache");
  _cleanup_free_ char *cache = NULL;
  ck_assert_int_ge (asprintf (&cache, "%s/cache", dir), 0);
  _cleanup_json_ cJSON *p = default_profile ();
  _cleanup_free_ struct sock_filter *first = NULL, *second = NULL, *uncached = NULL;
  size_t n1, n2, n3;
  compile (p, cache, &first, &n1);
  _cleanup_free_ char *file = cache_file (cache);
  ck_assert_ptr_nonnull (file);
  struct stat st1, st2;
  ck_assert_int_eq (stat (file, &st1), 0);
  ck_assert_uint_eq (st1.st_mode & 0777, 0600);
  ck_assert_uint_gt ((size_t)st1.st_size, n1 * sizeof *first); /* also holds the key text */

  compile (p, cache, &second, &n2);
  ck_assert_uint_eq (n1, n2);
  ck_assert_mem_eq (first, second, n1 * sizeof *first);
  ck_assert_int_eq (stat (file, &st2), 0);
  ck_assert_uint_eq (st1.st_ino, st2.st_ino); /* a hit reads, it does not rewrite */

  compile (p, NULL, &uncached, &n3);
  ck_assert_uint_eq (n1, n3);
  ck_assert_mem_eq (first, uncached, n1 * sizeof *first);

  /* A different profile is a different entry. */
  _cleanup_json_ cJSON *admin
      = rt_seccomp_default_profile (rt_caps_docker_default () | (1ULL << CAP_SYS_ADMIN));
  _cleanup_free_ struct sock_filter *other = NULL;
  size_t n4;
  compile (admin, cache, &other, &n4);
  _cleanup_free_ char *cmd = NULL;
  char *out = NULL;
  int status;
  ck_assert_int_ge (asprintf (&cmd, "ls %s | wc -l", cache), 0);
  ts_sh (cmd, &out, &status);
  ck_assert_int_eq (atoi (out), 2);
  free (out);
  ts_rmtree (dir);
}
END_TEST

/* Damage done to a good cache file: each must be noticed, recompiled and rewritten. */
enum damage
{
  FLIP_LAST_INSTRUCTION_BYTE,
  FLIP_KEY_TEXT_BYTE,
  TRUNCATE,
  EMPTY,
  GARBAGE,
  DAMAGE_COUNT,
};

static void damage_file (const char *path, enum damage how)
{
  _cleanup_close_ int fd = open (path, O_RDWR | O_CLOEXEC);
  ck_assert_int_ge (fd, 0);
  struct stat st;
  ck_assert_int_eq (fstat (fd, &st), 0);
  unsigned char c;
  off_t at = how == FLIP_LAST_INSTRUCTION_BYTE ? st.st_size - 1 : 40;
  switch (how)
    {
    case FLIP_LAST_INSTRUCTION_BYTE:
    case FLIP_KEY_TEXT_BYTE:
      ck_assert_int_eq (pread (fd, &c, 1, at), 1);
      c ^= 0x01;
      ck_assert_int_eq (pwrite (fd, &c, 1, at), 1);
      break;
    case TRUNCATE:
      ck_assert_int_eq (ftruncate (fd, st.st_size - 8), 0);
      break;
    case EMPTY:
      ck_assert_int_eq (ftruncate (fd, 0), 0);
      break;
    default:
      ck_assert_int_eq (ftruncate (fd, 0), 0);
      ck_assert_int_eq (pwrite (fd, "BSECBPF1 not really a cache file", 32, 0), 32);
      break;
    }
}

START_TEST (test_damaged_cache_file_is_detected_and_rewritten)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("seccomp-cache");
  _cleanup_json_ cJSON *p = default_profile ();
  _cleanup_free_ struct sock_filter *good = NULL, *again = NULL;
  size_t n1, n2;
  compile (p, dir, &good, &n1);
  _cleanup_free_ char *file = cache_file (dir);
  _cleanup_free_ char *pristine = ts_read_file (file);
  struct stat st;
  ck_assert_int_eq (stat (file, &st), 0);
  size_t size = (size_t)st.st_size;

  damage_file (file, (enum damage)_i);
  compile (p, dir, &again, &n2);
  ck_assert_uint_eq (n1, n2);
  ck_assert_mem_eq (good, again, n1 * sizeof *good);
  ck_assert_int_eq (stat (file, &st), 0);
  ck_assert_uint_eq ((size_t)st.st_size, size);
  _cleanup_free_ char *rewritten = ts_read_file (file);
  ck_assert_mem_eq (pristine, rewritten, size);
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_cache_in_a_directory_others_can_write_is_not_used)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("seccomp-cache");
  ck_assert_int_eq (chmod (dir, 0777), 0);
  _cleanup_json_ cJSON *p = default_profile ();
  _cleanup_free_ struct sock_filter *prog = NULL;
  size_t n;
  compile (p, dir, &prog, &n);
  ck_assert_uint_gt (n, 0);
  char *file = cache_file (dir);
  ck_assert_ptr_null (file);
  ts_rmtree (dir);
}
END_TEST

static const struct
{
  const char *json;
  const char *want;
} bad_profiles[] = {
  { "[]", "seccomp profile must be an object" },
  { "{}", "`defaultAction` is required" },
  { "{\"defaultAction\": \"SCMP_ACT_NOPE\"}", "`defaultAction`: unknown action `SCMP_ACT_NOPE`" },
  { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 5000}",
    "`defaultErrnoRet` is 5000" },
  { "{\"defaultAction\": \"SCMP_ACT_NOTIFY\"}", "SCMP_ACT_NOTIFY is not supported" },
  { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"architectures\": [\"SCMP_ARCH_VAX\"]}",
    "architectures[0]: unknown architecture `SCMP_ARCH_VAX`" },
  { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"architectures\": \"SCMP_ARCH_X86\"}",
    "`architectures` must be an array" },
  { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"action\": \"SCMP_ACT_ALLOW\"}]}",
    "syscalls[0]: `names` is required" },
  { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [1], \"action\": "
    "\"SCMP_ACT_ALLOW\"}]}",
    "syscalls[0]: `names` must be an array of strings" },
  { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"]}]}",
    "syscalls[0]: `action` is required" },
  { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"],"
    " \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 7, \"value\": 1, \"op\": "
    "\"SCMP_CMP_EQ\"}]}]}",
    "syscalls[0]: args[0]: `index` is 7" },
  { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"],"
    " \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 0, \"value\": 1, \"op\": "
    "\"SCMP_CMP_ISH\"}]}]}",
    "syscalls[0]: args[0]: `op`: unknown comparison `SCMP_CMP_ISH`" },
  { "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"],"
    " \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 0, \"op\": \"SCMP_CMP_EQ\"}]}]}",
    "syscalls[0]: args[0]: `value` is required" },
};

START_TEST (test_bad_profile_is_rejected_with_a_message_naming_the_field)
{
  _cleanup_json_ cJSON *p = parse_json (bad_profiles[_i].json);
  void *prog = NULL;
  size_t len = 0;
  _cleanup_berr_ berr *err = NULL;
  ck_assert_int_eq (rt_seccomp_compile (p, NULL, &prog, &len, &err), -1);
  ck_assert_ptr_null (prog);
  ck_assert_msg (strstr (err->msg, bad_profiles[_i].want) != NULL, "case %d: got \"%s\"", _i,
                 err->msg);
}
END_TEST

/* ---- The filter in force ------------------------------------------------------------- */

/* Loads prog the way the launcher does: no_new_privs, then seccomp(2). */
static int load_filter (const struct sock_filter *prog, size_t len)
{
  struct sock_fprog fp = { .len = (unsigned short)len, .filter = (struct sock_filter *)prog };
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return -1;
  return (int)syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp);
}

/* What a call returned inside the filtered child: 0 on success, else errno. */
static int outcome (long r)
{
  return r < 0 ? errno : 0;
}

struct filtered_results
{
  int loaded, unshare, mount, keyctl, clone3, above_max, far_above, setns, ptrace;
  int getpid_ok, gettid_ok, write_ok, thread_ok, spawn_status, fork_status, personality_query,
      personality_odd;
};

static void *thread_main (void *arg)
{
  return arg;
}

/* Runs the checks in a child (the filter cannot be removed once loaded) and exits with
 * _exit so no sanitizer teardown runs under the filter. */
static void run_filtered_checks (const struct sock_filter *prog, size_t len, int max,
                                 struct filtered_results *res)
{
  int fds[2];
  ck_assert_int_eq (pipe2 (fds, O_CLOEXEC), 0);
  pid_t expected_pid = fork ();
  ck_assert_int_ge (expected_pid, 0);
  if (expected_pid == 0)
    {
      struct filtered_results r = { .loaded = load_filter (prog, len) == 0 ? 0 : errno };
      r.unshare = outcome (unshare (CLONE_NEWNS));
      r.mount = outcome (mount ("none", "/", "tmpfs", 0, NULL));
      r.keyctl = outcome (syscall (SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -1, 0, 0, 0));
      r.clone3 = outcome (syscall (SYS_clone3, NULL, 0));
      r.above_max = outcome (syscall (max + 1, 0, 0, 0, 0, 0));
      r.far_above = outcome (syscall (999, 0, 0, 0, 0, 0));
      r.setns = outcome (setns (0, CLONE_NEWNET));
      r.ptrace = outcome (syscall (SYS_ptrace, 0x4206 /* PTRACE_SEIZE */, getppid (), 0, 0));
      r.getpid_ok = getpid () > 0;
      r.gettid_ok = syscall (SYS_gettid) > 0;
      r.personality_query = outcome (personality (0xffffffff));
      r.personality_odd = outcome (personality (READ_IMPLIES_EXEC));
      pthread_t th;
      r.thread_ok
          = pthread_create (&th, NULL, thread_main, NULL) == 0 && pthread_join (th, NULL) == 0;
      pid_t sp = -1;
      char *argv[] = { "true", NULL };
      r.spawn_status = posix_spawn (&sp, "/bin/true", NULL, NULL, argv, environ) == 0
                               && waitpid (sp, &r.spawn_status, 0) == sp
                           ? r.spawn_status
                           : -1;
      pid_t c = fork ();
      if (c == 0)
        _exit (7);
      int st = -1;
      r.fork_status = c > 0 && waitpid (c, &st, 0) == c ? st : -1;
      r.write_ok = write (fds[1], "w", 1) == 1;
      _exit (write (fds[1], &r, sizeof r) == (ssize_t)sizeof r ? 0 : 1);
    }
  close (fds[1]);
  char marker;
  ck_assert_int_eq (read (fds[0], &marker, 1), 1);
  ck_assert_int_eq (read (fds[0], res, sizeof *res), (ssize_t)sizeof *res);
  close (fds[0]);
  int st;
  ck_assert_int_eq (waitpid (expected_pid, &st, 0), expected_pid);
  ck_assert_msg (WIFEXITED (st) && WEXITSTATUS (st) == 0, "filtered child status %#x", st);
}

START_TEST (test_default_filter_denies_privileged_calls_and_keeps_ordinary_ones)
{
  _cleanup_json_ cJSON *p = default_profile ();
  _cleanup_free_ struct sock_filter *prog = NULL;
  size_t len;
  compile (p, NULL, &prog, &len);
  struct filtered_results r;
  run_filtered_checks (prog, len, native_max (p), &r);
  ck_assert_int_eq (r.loaded, 0);
  ck_assert_int_eq (r.unshare, EPERM);
  ck_assert_int_eq (r.mount, EPERM);
  ck_assert_int_eq (r.keyctl, EPERM);
  ck_assert_int_eq (r.setns, EPERM);
  ck_assert_int_eq (r.ptrace, EPERM);
  ck_assert_int_eq (r.clone3, ENOSYS);
  ck_assert_int_eq (r.above_max, ENOSYS);
  ck_assert_int_eq (r.far_above, ENOSYS);
  ck_assert (r.getpid_ok && r.gettid_ok);
  ck_assert (r.write_ok);
  ck_assert (WIFEXITED (r.fork_status) && WEXITSTATUS (r.fork_status) == 7);
  ck_assert (r.thread_ok); /* glibc's pthread_create tries clone3 first */
  ck_assert (WIFEXITED (r.spawn_status) && WEXITSTATUS (r.spawn_status) == 0);
  ck_assert_int_eq (r.personality_query, 0);
  ck_assert_int_eq (r.personality_odd, EPERM);
}
END_TEST

START_TEST (test_default_filter_runs_glibc_and_busybox_programs)
{
  /* Real programs, dynamic glibc ones and static busybox, under the filter: a shell pipeline,
   * ls, sort, date, id, a subshell (fork via clone after clone3's ENOSYS). */
  _cleanup_json_ cJSON *p = default_profile ();
  _cleanup_free_ struct sock_filter *prog = NULL;
  size_t len;
  compile (p, NULL, &prog, &len);
  int fds[2];
  ck_assert_int_eq (pipe2 (fds, O_CLOEXEC), 0);
  pid_t pid = fork ();
  ck_assert_int_ge (pid, 0);
  if (pid == 0)
    {
      dup2 (fds[1], 1);
      dup2 (fds[1], 2);
      if (load_filter (prog, len) < 0)
        _exit (100);
      execl ("/bin/sh", "sh", "-c",
             "set -e; ls / >/dev/null; sort </etc/passwd | head -n1 >/dev/null; date >/dev/null;"
             " id -u >/dev/null; (echo sub) | cat; /bin/busybox sh -c 'echo bb | busybox wc -l';"
             " grep -q '^Seccomp:.*2' /proc/self/status; echo done",
             (char *)NULL);
      _exit (101);
    }
  close (fds[1]);
  char buf[4096];
  size_t n = 0;
  ssize_t r;
  while (n < sizeof buf - 1 && (r = read (fds[0], buf + n, sizeof buf - 1 - n)) > 0)
    n += (size_t)r;
  buf[n] = '\0';
  close (fds[0]);
  int st;
  ck_assert_int_eq (waitpid (pid, &st, 0), pid);
  ck_assert_msg (WIFEXITED (st) && WEXITSTATUS (st) == 0, "status %#x, output:\n%s", st, buf);
  ck_assert_str_eq (buf, "sub\n1\ndone\n");
}
END_TEST

START_TEST (test_args_on_one_index_are_alternatives)
{
  /* The default profile with personality allowed by one rule holding two conditions on
   * argument 0: either value passes, others do not. */
  _cleanup_json_ cJSON *p = default_profile ();
  cJSON *syscalls = cJSON_GetObjectItem (p, "syscalls");
  for (int i = cJSON_GetArraySize (syscalls) - 1; i >= 0; i--)
    {
      cJSON *names = cJSON_GetObjectItem (cJSON_GetArrayItem (syscalls, i), "names");
      if (strcmp (cJSON_GetArrayItem (names, 0)->valuestring, "personality") == 0)
        cJSON_DeleteItemFromArray (syscalls, i);
    }
  ck_assert (!profile_names (p, "personality"));
  cJSON_AddItemToArray (
      syscalls,
      parse_json ("{\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": ["
                  "{\"index\": 0, \"value\": 0, \"op\": \"SCMP_CMP_EQ\"},"
                  "{\"index\": 0, \"value\": 4294967295, \"op\": \"SCMP_CMP_EQ\"}]}"));
  _cleanup_free_ struct sock_filter *prog = NULL;
  size_t len;
  compile (p, NULL, &prog, &len);
  struct filtered_results r;
  run_filtered_checks (prog, len, native_max (p), &r);
  ck_assert_int_eq (r.personality_query, 0);
  ck_assert_int_eq (r.personality_odd, EPERM);
}
END_TEST

START_TEST (test_allow_by_default_profile_leaves_newer_calls_allowed)
{
  /* A denylist naming only mount: gettid's number is above mount's, yet it must stay allowed
   * (no ENOSYS prologue under a default of allow). */
  _cleanup_json_ cJSON *p
      = parse_json ("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": ["
                    "{\"names\": [\"mount\"], \"action\": \"SCMP_ACT_ERRNO\"}]}");
  ck_assert_int_gt (SYS_gettid, SYS_mount);
  _cleanup_free_ struct sock_filter *prog = NULL;
  size_t len;
  compile (p, NULL, &prog, &len);
  struct filtered_results r;
  run_filtered_checks (prog, len, native_max (p), &r);
  ck_assert_int_eq (r.mount, EPERM);
  ck_assert (r.gettid_ok);
  ck_assert_int_ne (r.above_max, ENOSYS); /* max + 1 is an ordinary call here, and allowed */
  ck_assert_int_eq (r.far_above, ENOSYS); /* the kernel's own answer */
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("seccomp");
  TCase *profile = tcase_create ("profile");
  tcase_add_test (profile, test_default_profile_names_only_syscalls_libseccomp_knows);
  tcase_add_test (profile, test_default_profile_gates_privileged_calls_on_capabilities);
  tcase_add_test (profile, test_compiled_filter_starts_with_the_enosys_prologue);
  tcase_add_loop_test (profile, test_bad_profile_is_rejected_with_a_message_naming_the_field, 0,
                       (int)(sizeof bad_profiles / sizeof bad_profiles[0]));
  suite_add_tcase (s, profile);
  TCase *cache = tcase_create ("cache");
  tcase_add_test (cache, test_second_compile_is_served_from_the_cache);
  tcase_add_loop_test (cache, test_damaged_cache_file_is_detected_and_rewritten, 0, DAMAGE_COUNT);
  tcase_add_test (cache, test_cache_in_a_directory_others_can_write_is_not_used);
  suite_add_tcase (s, cache);
  TCase *enforce = tcase_create ("enforce");
  tcase_set_timeout (enforce, 30);
  tcase_add_test (enforce, test_default_filter_denies_privileged_calls_and_keeps_ordinary_ones);
  tcase_add_test (enforce, test_default_filter_runs_glibc_and_busybox_programs);
  tcase_add_test (enforce, test_args_on_one_index_are_alternatives);
  tcase_add_test (enforce, test_allow_by_default_profile_leaves_newer_calls_allowed);
  suite_add_tcase (s, enforce);
  return ts_run_suite (s);
}
