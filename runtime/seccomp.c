/* Seccomp for containers: Berth's default allowlist profile (an OCI linux.seccomp object) and its
 * compilation to BPF with libseccomp, an ENOSYS prologue and an on-disk cache (docs/seccomp.md). */
#include "runtime/runtime.h"

#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- The default profile ------------------------------------------------------------------ */

/* What every container may call: the system calls glibc, musl, busybox and ordinary programs
 * make, spelled as on x86_64 and aarch64, plus the 32-bit (x86, arm) and x32 spellings of the
 * same calls. A name an architecture lacks is ignored there. Grouped by purpose so a reviewer
 * can judge each line; everything absent is refused with EPERM. */
/* clang-format off */
static const char *const allow_io[] = {
  "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
  "pwritev2", "lseek", "_llseek", "sendfile", "sendfile64", "copy_file_range", "splice", "tee",
  "vmsplice", "fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "arm_sync_file_range",
  "fallocate", "truncate", "truncate64", "ftruncate", "ftruncate64", "readahead", "fadvise64",
  "fadvise64_64", "arm_fadvise64_64", "flock", "cachestat", NULL,
};

static const char *const allow_fds[] = {
  "open", "openat", "openat2", "creat", "close", "close_range", "dup", "dup2", "dup3", "fcntl",
  "fcntl64", "ioctl", "pipe", "pipe2", "memfd_create", NULL,
};

static const char *const allow_paths[] = {
  "stat", "lstat", "fstat", "stat64", "lstat64", "fstat64", "newfstatat", "fstatat64", "statx",
  "statfs", "fstatfs", "statfs64", "fstatfs64", "access", "faccessat", "faccessat2", "readlink",
  "readlinkat", "getdents", "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir",
  "unlink", "unlinkat", "rename", "renameat", "renameat2", "link", "linkat", "symlink", "symlinkat",
  "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat", "chown32",
  "fchown32", "lchown32", "umask", "utime", "utimes", "utimensat", "utimensat_time64", "futimesat",
  "mknod", "mknodat", "name_to_handle_at", "getxattr", "lgetxattr", "fgetxattr", "setxattr",
  "lsetxattr", "fsetxattr", "listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr",
  "fremovexattr", NULL,
};

static const char *const allow_events[] = {
  "select", "_newselect", "pselect6", "pselect6_time64", "poll", "ppoll", "ppoll_time64",
  "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
  "eventfd", "eventfd2", "signalfd", "signalfd4", "timerfd_create", "timerfd_settime",
  "timerfd_settime64", "timerfd_gettime", "timerfd_gettime64", "inotify_init", "inotify_init1",
  "inotify_add_watch", "inotify_rm_watch", "io_setup", "io_destroy", "io_submit", "io_cancel",
  "io_getevents", "io_pgetevents", "io_pgetevents_time64", NULL,
};

static const char *const allow_memory[] = {
  "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "pkey_mprotect", "pkey_alloc",
  "pkey_free", "madvise", "mincore", "msync", "mlock", "mlock2", "munlock", "mlockall",
  "munlockall", "remap_file_pages", "membarrier", "get_mempolicy", "set_mempolicy", "mbind",
  "set_mempolicy_home_node", "memfd_secret", NULL,
};

static const char *const allow_processes[] = {
  "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "waitpid", "kill",
  "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open", "pidfd_send_signal",
  "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid", "getpriority",
  "setpriority", "nice", "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam",
  "sched_setparam", "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
  "sched_get_priority_min", "sched_rr_get_interval", "sched_rr_get_interval_time64",
  "sched_getattr", "sched_setattr", "ioprio_get", "ioprio_set", "prctl", "arch_prctl",
  "set_tid_address", "set_robust_list", "get_robust_list", "futex", "futex_time64", "futex_waitv",
  "rseq", "restart_syscall", "getrlimit", "ugetrlimit", "setrlimit", "prlimit64", "getrusage",
  "times", "capget", "capset", "set_thread_area", "get_thread_area", "set_tls", "cacheflush",
  "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", NULL,
};

static const char *const allow_identity[] = {
  "getuid", "geteuid", "getgid", "getegid", "getuid32", "geteuid32", "getgid32", "getegid32",
  "setuid", "setgid", "setuid32", "setgid32", "setreuid", "setregid", "setreuid32", "setregid32",
  "setresuid", "setresgid", "setresuid32", "setresgid32", "getresuid", "getresgid", "getresuid32",
  "getresgid32", "getgroups", "setgroups", "getgroups32", "setgroups32", "setfsuid", "setfsgid",
  "setfsuid32", "setfsgid32", NULL,
};

static const char *const allow_time_signals[] = {
  "time", "gettimeofday", "clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64",
  "clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "getitimer", "setitimer", "alarm",
  "pause", "timer_create", "timer_settime", "timer_settime64", "timer_gettime", "timer_gettime64",
  "timer_getoverrun", "timer_delete", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
  "rt_sigpending", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "sigaltstack",
  "sigaction", "sigprocmask", "sigreturn", "sigpending", "sigsuspend", "signal", NULL,
};

static const char *const allow_net_ipc[] = {
  "socket", "socketpair", "socketcall", "bind", "connect", "listen", "accept", "accept4",
  "getsockname", "getpeername", "sendto", "recvfrom", "send", "recv", "sendmsg", "recvmsg",
  "sendmmsg", "recvmmsg", "recvmmsg_time64", "shutdown", "setsockopt", "getsockopt", "ipc",
  "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop", "semtimedop_time64",
  "semctl", "shmget", "shmat", "shmdt", "shmctl", "mq_open", "mq_unlink", "mq_timedsend",
  "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64", "mq_notify", "mq_getsetattr",
  "uname", "sysinfo", "getrandom", "getcpu", NULL,
};
/* clang-format on */

static const char *const *const allow_always[]
    = { allow_io,        allow_fds,      allow_paths,        allow_events, allow_memory,
        allow_processes, allow_identity, allow_time_signals, allow_net_ipc };

/* Calls the kernel lets only a capability holder make; the profile allows them only when the
 * container gets that capability, so a missing capability fails early and the kernel's own
 * check is not the only line. Never allowed at all: kexec_load/kexec_file_load (replace the
 * host kernel), keyctl/add_key/request_key (keyrings are not namespaced), io_uring_* (a large
 * attack surface that bypasses this filter's view of I/O), modify_ldt, vm86, uselib, the
 * obsolete _sysctl/ustat/sysfs/nfsservctl. */
/* clang-format off */
static const struct
{
  int cap;
  const char *const *names;
} allow_with_cap[] = {
  { CAP_SYS_ADMIN, (const char *const[]){
      "mount", "umount", "umount2", "pivot_root", "unshare", "setns", "clone3", "sethostname",
      "setdomainname", "swapon", "swapoff", "quotactl", "quotactl_fd", "lookup_dcookie",
      "fanotify_init", "fanotify_mark", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount",
      "fspick", "mount_setattr", "bpf", "perf_event_open", NULL } },
  { CAP_BPF, (const char *const[]){ "bpf", NULL } },
  { CAP_PERFMON, (const char *const[]){ "perf_event_open", NULL } },
  { CAP_SYS_BOOT, (const char *const[]){ "reboot", NULL } },
  { CAP_SYS_MODULE, (const char *const[]){ "init_module", "finit_module", "delete_module", NULL } },
  { CAP_DAC_READ_SEARCH, (const char *const[]){ "open_by_handle_at", NULL } },
  { CAP_SYS_PTRACE, (const char *const[]){
      "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
      "userfaultfd", NULL } },
  { CAP_SYS_TIME, (const char *const[]){
      "settimeofday", "stime", "clock_settime", "clock_settime64", "adjtimex", "clock_adjtime",
      "clock_adjtime64", NULL } },
  { CAP_SYS_TTY_CONFIG, (const char *const[]){ "vhangup", NULL } },
  { CAP_SYS_NICE, (const char *const[]){ "move_pages", "migrate_pages", NULL } },
  { CAP_SYS_RAWIO, (const char *const[]){ "iopl", "ioperm", NULL } },
  { CAP_SYS_PACCT, (const char *const[]){ "acct", NULL } },
  { CAP_SYSLOG, (const char *const[]){ "syslog", NULL } },
  { CAP_SYS_CHROOT, (const char *const[]){ "chroot", NULL } },
};
/* clang-format on */

/* clone's flags (argument 0 on these architectures) must carry no CLONE_NEW* bit:
 * NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET. CLONE_NEWTIME (0x80) is left out on
 * purpose: in clone's flags those low bits are the exit signal. */
#define CLONE_NEW_MASK 0x7E020000ULL

static const char *const default_arches[] = {
#if defined(__x86_64__)
  "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
#elif defined(__aarch64__)
  "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM",
#endif
  NULL
};

static bool json_has_string (const cJSON *arr, const char *s)
{
  const cJSON *it;
  cJSON_ArrayForEach (it, arr)
  {
    if (cJSON_IsString (it) && strcmp (it->valuestring, s) == 0)
      return true;
  }
  return false;
}

/* Appends names not yet present; false on allocation failure. */
static bool add_names (cJSON *arr, const char *const *names)
{
  for (; *names; names++)
    if (!json_has_string (arr, *names) && !cJSON_AddItemToArray (arr, cJSON_CreateString (*names)))
      return false;
  return true;
}

/* Adds {"names": [name], "action": action} (with errnoRet when errno_ret >= 0) and returns
 * the rule so the caller can add "args". */
static cJSON *add_rule (cJSON *syscalls, const char *name, const char *action, int errno_ret)
{
  cJSON *r = cJSON_CreateObject ();
  if (r == NULL || !cJSON_AddItemToArray (syscalls, r))
    {
      cJSON_Delete (r);
      return NULL;
    }
  cJSON *names = cJSON_AddArrayToObject (r, "names");
  if (names == NULL || !cJSON_AddItemToArray (names, cJSON_CreateString (name))
      || cJSON_AddStringToObject (r, "action", action) == NULL)
    return NULL;
  if (errno_ret >= 0 && cJSON_AddNumberToObject (r, "errnoRet", errno_ret) == NULL)
    return NULL;
  return r;
}

static bool add_arg (cJSON *rule, int index, uint64_t value, uint64_t value_two, const char *op)
{
  cJSON *args = cJSON_GetObjectItemCaseSensitive (rule, "args");
  if (args == NULL && (args = cJSON_AddArrayToObject (rule, "args")) == NULL)
    return false;
  cJSON *a = cJSON_CreateObject ();
  if (a == NULL || !cJSON_AddItemToArray (args, a))
    {
      cJSON_Delete (a);
      return false;
    }
  return cJSON_AddNumberToObject (a, "index", index) && cJSON_AddNumberToObject (a, "value", value)
         && cJSON_AddNumberToObject (a, "valueTwo", value_two)
         && cJSON_AddStringToObject (a, "op", op);
}

/* Rules that depend on arguments or capabilities: clone without namespace flags, clone3
 * answered with ENOSYS (the C libraries then fall back to clone, whose flags this filter can
 * see, unlike clone3's, which sit in memory), and personality limited to the harmless
 * personas plus the query. */
static bool add_special_rules (cJSON *syscalls, uint64_t caps)
{
  bool admin = caps & (UINT64_C (1) << CAP_SYS_ADMIN);
  cJSON *clone = add_rule (syscalls, "clone", "SCMP_ACT_ALLOW", -1);
  if (clone == NULL || (!admin && !add_arg (clone, 0, CLONE_NEW_MASK, 0, "SCMP_CMP_MASKED_EQ")))
    return false;
  if (!admin && add_rule (syscalls, "clone3", "SCMP_ACT_ERRNO", ENOSYS) == NULL)
    return false;
  static const uint64_t personas[]
      = { PER_LINUX, PER_LINUX32, UNAME26, UNAME26 | PER_LINUX32, 0xffffffffULL };
  for (size_t i = 0; i < ARRAY_SIZE (personas); i++)
    {
      cJSON *p = add_rule (syscalls, "personality", "SCMP_ACT_ALLOW", -1);
      if (p == NULL || !add_arg (p, 0, personas[i], 0, "SCMP_CMP_EQ"))
        return false;
    }
  return true;
}

cJSON *rt_seccomp_default_profile (uint64_t caps)
{
  _cleanup_json_ cJSON *p = cJSON_CreateObject ();
  if (p == NULL || cJSON_AddStringToObject (p, "defaultAction", "SCMP_ACT_ERRNO") == NULL
      || cJSON_AddNumberToObject (p, "defaultErrnoRet", EPERM) == NULL)
    return NULL;
  cJSON *arches = cJSON_AddArrayToObject (p, "architectures");
  cJSON *syscalls = cJSON_AddArrayToObject (p, "syscalls");
  if (arches == NULL || syscalls == NULL || !add_names (arches, default_arches))
    return NULL;

  cJSON *allow = add_rule (syscalls, "read", "SCMP_ACT_ALLOW", -1);
  cJSON *names = allow ? cJSON_GetObjectItemCaseSensitive (allow, "names") : NULL;
  if (names == NULL)
    return NULL;
  for (size_t i = 0; i < ARRAY_SIZE (allow_always); i++)
    if (!add_names (names, allow_always[i]))
      return NULL;
  for (size_t i = 0; i < ARRAY_SIZE (allow_with_cap); i++)
    if ((caps & (UINT64_C (1) << allow_with_cap[i].cap))
        && !add_names (names, allow_with_cap[i].names))
      return NULL;
  if (!add_special_rules (syscalls, caps))
    return NULL;
  return steal_ptr (&p);
}

/* ---- Compiling an OCI profile with libseccomp -------------------------------------------- */

#define MAX_ARCHES 16
#define MAX_RULE_ADDS 20000 /* bounds the work a hostile profile can cause */
#define MAX_ARGS 16

struct arch_known
{
  uint32_t token;
  int64_t max_nr; /* highest syscall number the profile names on this arch; -1: none */
};

struct compile_state
{
  scmp_filter_ctx ctx;
  uint32_t default_action;
  struct arch_known arches[MAX_ARCHES];
  size_t n_arches;
  size_t n_adds;
};

static const struct
{
  const char *name;
  uint32_t action;
  bool takes_errno;
} actions[] = {
  { "SCMP_ACT_KILL", SCMP_ACT_KILL_THREAD, false },
  { "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, false },
  { "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, false },
  { "SCMP_ACT_TRAP", SCMP_ACT_TRAP, false },
  { "SCMP_ACT_ERRNO", SCMP_ACT_ERRNO (0), true },
  { "SCMP_ACT_TRACE", SCMP_ACT_TRACE (0), true },
  { "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, false },
  { "SCMP_ACT_LOG", SCMP_ACT_LOG, false },
};

static const struct
{
  const char *name;
  enum scmp_compare op;
} compare_ops[] = {
  { "SCMP_CMP_NE", SCMP_CMP_NE },
  { "SCMP_CMP_LT", SCMP_CMP_LT },
  { "SCMP_CMP_LE", SCMP_CMP_LE },
  { "SCMP_CMP_EQ", SCMP_CMP_EQ },
  { "SCMP_CMP_GE", SCMP_CMP_GE },
  { "SCMP_CMP_GT", SCMP_CMP_GT },
  { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
};

/* An action and its errno (OCI: EPERM when errnoRet is absent). */
static int parse_action (const cJSON *obj, const char *action_key, const char *errno_key,
                         uint32_t *out, berr **err)
{
  const char *name = NULL;
  int64_t ret = EPERM;
  if (bjson_get_str (obj, action_key, true, &name, err) < 0
      || bjson_get_int (obj, errno_key, false, 0, 4095, &ret, err) < 0)
    return -1;
  for (size_t i = 0; i < ARRAY_SIZE (actions); i++)
    if (strcmp (actions[i].name, name) == 0)
      {
        *out = actions[i].takes_errno ? actions[i].action | (uint32_t)ret : actions[i].action;
        return 0;
      }
  if (strcmp (name, "SCMP_ACT_NOTIFY") == 0)
    return berr_make (err, ENOTSUP, "`%s`: SCMP_ACT_NOTIFY is not supported", action_key);
  return berr_make (err, EINVAL, "`%s`: unknown action `%s`", action_key, name);
}

static int parse_arch (const char *name, uint32_t *token, berr **err)
{
  char lower[32];
  size_t n = 0;
  if (strncmp (name, "SCMP_ARCH_", 10) == 0)
    for (const char *p = name + 10; *p && n + 1 < sizeof lower; p++)
      lower[n++] = (char)tolower ((unsigned char)*p);
  lower[n] = '\0';
  uint32_t t = n > 0 && n + 10 == strlen (name) ? seccomp_arch_resolve_name (lower) : 0;
  if (t == 0)
    return berr_make (err, EINVAL, "unknown architecture `%s`", name);
  *token = t;
  return 0;
}

static int add_arch (struct compile_state *st, uint32_t token, berr **err)
{
  for (size_t i = 0; i < st->n_arches; i++)
    if (st->arches[i].token == token)
      return 0;
  if (st->n_arches == MAX_ARCHES)
    return berr_make (err, EINVAL, "too many architectures");
  if (token != seccomp_arch_native ())
    {
      int rc = seccomp_arch_add (st->ctx, token);
      if (rc < 0 && rc != -EEXIST)
        return berr_make (err, -rc, "add architecture %#x", token);
    }
  st->arches[st->n_arches++] = (struct arch_known){ .token = token, .max_nr = -1 };
  return 0;
}

static int add_arches (struct compile_state *st, const cJSON *profile, berr **err)
{
  if (add_arch (st, seccomp_arch_native (), err) < 0)
    return -1;
  const cJSON *arr = NULL, *it;
  if (bjson_get_arr (profile, "architectures", false, &arr, err) < 0)
    return -1;
  size_t i = 0;
  cJSON_ArrayForEach (it, arr)
  {
    uint32_t token = 0;
    if (!cJSON_IsString (it))
      return berr_make (err, EINVAL, "`architectures[%zu]` must be a string", i);
    if (parse_arch (it->valuestring, &token, err) < 0 || add_arch (st, token, err) < 0)
      return berr_wrap (err, "architectures[%zu]", i);
    i++;
  }
  return 0;
}

static int parse_arg (const cJSON *a, struct scmp_arg_cmp *out, berr **err)
{
  int64_t index = 0, value = 0, value_two = 0;
  const char *op = NULL;
  if (!cJSON_IsObject (a))
    return berr_make (err, EINVAL, "must be an object");
  if (bjson_get_int (a, "index", true, 0, 5, &index, err) < 0
      || bjson_get_int (a, "value", true, 0, INT64_MAX, &value, err) < 0
      || bjson_get_int (a, "valueTwo", false, 0, INT64_MAX, &value_two, err) < 0
      || bjson_get_str (a, "op", true, &op, err) < 0)
    return -1;
  for (size_t i = 0; i < ARRAY_SIZE (compare_ops); i++)
    if (strcmp (compare_ops[i].name, op) == 0)
      {
        *out = (struct scmp_arg_cmp){ .arg = (unsigned int)index,
                                      .op = compare_ops[i].op,
                                      .datum_a = (scmp_datum_t)value,
                                      .datum_b = (scmp_datum_t)value_two };
        return 0;
      }
  return berr_make (err, EINVAL, "`op`: unknown comparison `%s`", op);
}

/* Parses "args". OCI semantics: conditions on distinct arguments must all hold (one rule);
 * several conditions on the same argument are alternatives (one rule each). */
static int parse_args (const cJSON *rule, struct scmp_arg_cmp *cmps, size_t *n, bool *alternatives,
                       berr **err)
{
  const cJSON *arr = NULL, *it;
  unsigned seen = 0;
  *n = 0;
  *alternatives = false;
  if (bjson_get_arr (rule, "args", false, &arr, err) < 0)
    return -1;
  cJSON_ArrayForEach (it, arr)
  {
    if (*n == MAX_ARGS)
      return berr_make (err, EINVAL, "`args`: more than %d conditions", MAX_ARGS);
    if (parse_arg (it, &cmps[*n], err) < 0)
      return berr_wrap (err, "args[%zu]", *n);
    if (seen & (1u << cmps[*n].arg))
      *alternatives = true;
    seen |= 1u << cmps[*n].arg;
    (*n)++;
  }
  return 0;
}

static void note_known (struct compile_state *st, const char *name)
{
  for (size_t i = 0; i < st->n_arches; i++)
    {
      int nr = seccomp_syscall_resolve_name_arch (st->arches[i].token, name);
      if (nr >= 0 && nr > st->arches[i].max_nr)
        st->arches[i].max_nr = nr;
    }
}

static int add_one (struct compile_state *st, uint32_t action, int nr, const char *name,
                    const struct scmp_arg_cmp *cmps, size_t n, berr **err)
{
  if (++st->n_adds > MAX_RULE_ADDS)
    return berr_make (err, E2BIG, "more than %d rules", MAX_RULE_ADDS);
  int rc = seccomp_rule_add_array (st->ctx, action, nr, (unsigned)n, cmps);
  if (rc < 0)
    return berr_make (err, -rc, "`%s`: libseccomp refused the rule", name);
  return 0;
}

static int add_syscall_rule (struct compile_state *st, const cJSON *rule, berr **err)
{
  const cJSON *names = NULL, *it;
  uint32_t action;
  struct scmp_arg_cmp cmps[MAX_ARGS];
  size_t n_cmps;
  bool alternatives;
  if (!cJSON_IsObject (rule))
    return berr_make (err, EINVAL, "must be an object");
  if (bjson_get_arr (rule, "names", true, &names, err) < 0
      || parse_action (rule, "action", "errnoRet", &action, err) < 0
      || parse_args (rule, cmps, &n_cmps, &alternatives, err) < 0)
    return -1;
  cJSON_ArrayForEach (it, names)
  {
    if (!cJSON_IsString (it))
      return berr_make (err, EINVAL, "`names` must be an array of strings");
    note_known (st, it->valuestring);
    /* Names libseccomp does not know are skipped, as other runtimes do, so one profile can
     * list the calls of several kernels and architectures. A rule whose action is the
     * default is a no-op that libseccomp refuses, so it is skipped too. */
    int nr = seccomp_syscall_resolve_name (it->valuestring);
    if (nr == __NR_SCMP_ERROR || action == st->default_action)
      continue;
    for (size_t i = 0; alternatives && i < n_cmps; i++)
      if (add_one (st, action, nr, it->valuestring, &cmps[i], 1, err) < 0)
        return -1;
    if (!alternatives && add_one (st, action, nr, it->valuestring, cmps, n_cmps, err) < 0)
      return -1;
  }
  return 0;
}

static int add_syscall_rules (struct compile_state *st, const cJSON *profile, berr **err)
{
  const cJSON *arr = NULL, *it;
  if (bjson_get_arr (profile, "syscalls", false, &arr, err) < 0)
    return -1;
  size_t i = 0;
  cJSON_ArrayForEach (it, arr)
  {
    if (add_syscall_rule (st, it, err) < 0)
      return berr_wrap (err, "syscalls[%zu]", i);
    i++;
  }
  return 0;
}

static int export_bpf (scmp_filter_ctx ctx, struct sock_filter **prog, size_t *len, berr **err)
{
  _cleanup_close_ int fd = memfd_create ("berth-seccomp", MFD_CLOEXEC);
  if (fd < 0)
    return berr_sys (err, "memfd_create");
  int rc = seccomp_export_bpf (ctx, fd);
  if (rc < 0)
    return berr_make (err, -rc, "seccomp_export_bpf");
  off_t size = lseek (fd, 0, SEEK_END);
  if (size <= 0 || size % (off_t)sizeof (struct sock_filter) != 0)
    return berr_make (err, EINVAL, "seccomp_export_bpf wrote %lld bytes", (long long)size);
  _cleanup_free_ struct sock_filter *buf = malloc ((size_t)size);
  if (buf == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  for (off_t done = 0; done < size;)
    {
      ssize_t r = pread (fd, (char *)buf + done, (size_t)(size - done), done);
      if (r <= 0)
        return r < 0 ? berr_sys (err, "read the exported filter")
                     : berr_make (err, EIO, "short read of the exported filter");
      done += r;
    }
  *len = (size_t)size / sizeof (struct sock_filter);
  *prog = steal_ptr (&buf);
  return 0;
}

/* ---- The ENOSYS prologue ----------------------------------------------------------------- */

/* Syscall numbers of one architecture that the prologue judges: within [lo, hi], a number
 * above max is newer than anything the profile names, so the program gets ENOSYS ("this
 * kernel lacks it", which C libraries answer with a fallback) instead of the default EPERM
 * (which they report as a failure). x86_64 and x32 share one audit arch and split the range
 * at the x32 bit; arm's private calls (0x0f0000 up) are left to the filter. */
struct nr_range
{
  uint32_t audit_arch;
  uint32_t lo, hi;
  int64_t max;
};

#define PROLOGUE_MAX 64
#define T_OUT (-1)    /* jump target: the first instruction after the prologue */
#define T_ENOSYS (-2) /* jump target: the "return ENOSYS" instruction */

struct prologue
{
  struct sock_filter insn[PROLOGUE_MAX];
  int jt[PROLOGUE_MAX], jf[PROLOGUE_MAX]; /* absolute targets until resolved */
  size_t n;
};

static void emit (struct prologue *p, uint16_t code, uint32_t k, int jt, int jf)
{
  if (p->n < PROLOGUE_MAX)
    {
      p->insn[p->n] = (struct sock_filter){ .code = code, .k = k };
      p->jt[p->n] = jt;
      p->jf[p->n] = jf;
    }
  p->n++;
}

static struct nr_range range_of (const struct arch_known *a)
{
  struct nr_range r = { .audit_arch = a->token, .lo = 0, .hi = UINT32_MAX, .max = a->max_nr };
  if (a->token == SCMP_ARCH_X86_64)
    r.hi = 0x3fffffff;
  else if (a->token == SCMP_ARCH_X32)
    r = (struct nr_range){ AUDIT_ARCH_X86_64, 0x40000000, UINT32_MAX, a->max_nr };
  else if (a->token == SCMP_ARCH_ARM)
    r.hi = 0x0effff;
  return r;
}

/* Emits, for one audit arch, the checks of its ranges (sorted by lo). */
static void emit_arch_block (struct prologue *p, const struct nr_range *r, size_t n)
{
  size_t jeq = p->n;
  emit (p, BPF_JMP | BPF_JEQ | BPF_K, r[0].audit_arch, (int)p->n + 1, 0 /* patched below */);
  emit (p, BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr), 0, 0);
  bool falls_through = false;
  for (size_t i = 0; i < n; i++)
    {
      bool last = i + 1 == n;
      if (r[i].max < 0)
        {
          /* Nothing known here: numbers in this range are the filter's to judge. */
          if (!last)
            emit (p, BPF_JMP | BPF_JGT | BPF_K, r[i].hi, (int)p->n + 1, T_OUT);
          falls_through = last;
          continue;
        }
      emit (p, BPF_JMP | BPF_JGT | BPF_K, (uint32_t)r[i].max, (int)p->n + 1, T_OUT);
      emit (p, BPF_JMP | BPF_JGT | BPF_K, r[i].hi, last ? T_OUT : (int)p->n + 1, T_ENOSYS);
    }
  if (falls_through)
    emit (p, BPF_JMP | BPF_JA, 0, T_OUT, 0);
  p->jf[jeq] = (int)p->n;
}

static int build_prologue (const struct compile_state *st, struct prologue *p, berr **err)
{
  struct nr_range ranges[MAX_ARCHES];
  bool done[MAX_ARCHES] = { false };
  for (size_t i = 0; i < st->n_arches; i++)
    ranges[i] = range_of (&st->arches[i]);

  p->n = 0;
  emit (p, BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, arch), 0, 0);
  for (size_t i = 0; i < st->n_arches; i++)
    {
      if (done[i])
        continue;
      struct nr_range group[MAX_ARCHES];
      size_t n = 0;
      for (size_t j = i; j < st->n_arches; j++)
        if (!done[j] && ranges[j].audit_arch == ranges[i].audit_arch)
          {
            size_t at = n++;
            for (; at > 0 && group[at - 1].lo > ranges[j].lo; at--)
              group[at] = group[at - 1];
            group[at] = ranges[j];
            done[j] = true;
          }
      emit_arch_block (p, group, n);
    }
  emit (p, BPF_JMP | BPF_JA, 0, T_OUT, 0); /* an architecture not listed: on to the filter */
  size_t enosys = p->n;
  emit (p, BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA), 0, 0);
  if (p->n > PROLOGUE_MAX)
    return berr_make (err, E2BIG, "ENOSYS prologue too long");

  /* Resolve symbolic targets into the relative offsets BPF uses. The libseccomp program that
   * follows only ever jumps forward within itself, so prepending keeps it valid. */
  for (size_t i = 0; i < p->n; i++)
    {
      if (BPF_CLASS (p->insn[i].code) != BPF_JMP)
        continue;
      int t[2] = { p->jt[i], p->jf[i] };
      for (int k = 0; k < 2; k++)
        t[k] = (t[k] == T_OUT ? (int)p->n : t[k] == T_ENOSYS ? (int)enosys : t[k]) - (int)i - 1;
      if (BPF_OP (p->insn[i].code) == BPF_JA)
        {
          p->insn[i].k = (uint32_t)t[0];
          continue;
        }
      if (t[0] < 0 || t[1] < 0 || t[0] > 255 || t[1] > 255)
        return berr_make (err, E2BIG, "ENOSYS prologue jump out of range");
      p->insn[i].jt = (uint8_t)t[0];
      p->insn[i].jf = (uint8_t)t[1];
    }
  return 0;
}

/* Builds the libseccomp filter, exports it and prepends the ENOSYS prologue. */
static int compile_profile (const cJSON *profile, struct sock_filter **prog, size_t *len,
                            berr **err)
{
  struct compile_state st = { 0 };
  if (!cJSON_IsObject (profile))
    return berr_make (err, EINVAL, "seccomp profile must be an object");
  if (parse_action (profile, "defaultAction", "defaultErrnoRet", &st.default_action, err) < 0)
    return -1;
  st.ctx = seccomp_init (st.default_action);
  if (st.ctx == NULL)
    return berr_make (err, ENOMEM, "seccomp_init");
  /* A binary tree over syscall numbers keeps a long allowlist cheap on every call; a call
   * from an architecture the profile does not list kills the process outright. */
  seccomp_attr_set (st.ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  seccomp_attr_set (st.ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);

  _cleanup_free_ struct sock_filter *bpf = NULL;
  size_t n_bpf = 0;
  int ret = add_arches (&st, profile, err);
  if (ret == 0)
    ret = add_syscall_rules (&st, profile, err);
  if (ret == 0)
    ret = export_bpf (st.ctx, &bpf, &n_bpf, err);
  seccomp_release (st.ctx);
  if (ret < 0)
    return -1;

  /* Under a default of allow (a denylist), a call newer than the profile is allowed, as its
   * author asked; the prologue only serves profiles that refuse by default. */
  struct prologue pro = { .n = 0 };
  bool known = false;
  for (size_t i = 0; i < st.n_arches; i++)
    known |= st.arches[i].max_nr >= 0;
  if (known && st.default_action != SCMP_ACT_ALLOW && st.default_action != SCMP_ACT_LOG
      && build_prologue (&st, &pro, err) < 0)
    return -1;
  if (pro.n + n_bpf > BPF_MAXINSNS)
    return berr_make (err, E2BIG, "the filter has %zu instructions, more than the kernel's %d",
                      pro.n + n_bpf, BPF_MAXINSNS);
  struct sock_filter *out = malloc ((pro.n + n_bpf) * sizeof *out);
  if (out == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  memcpy (out, pro.insn, pro.n * sizeof *out);
  memcpy (out + pro.n, bpf, n_bpf * sizeof *out);
  *prog = out;
  *len = pro.n + n_bpf;
  return 0;
}

/* ---- The cache --------------------------------------------------------------------------- */

/* File <cache_dir>/<fnv64 of the key text>.bpf: a header, the key text itself (compared on
 * load, so a hash collision is a miss, not a wrong filter), then the instructions. The key text
 * is the compact profile plus everything else that shapes the output. */
#define CACHE_MAGIC "BSECBPF1"
#define CACHE_FORMAT 1
#define CACHE_MAX_FILE (8u << 20)

struct cache_header
{
  char magic[8];
  uint32_t text_len;
  uint32_t n_insns;
  uint64_t checksum; /* FNV-1a 64 over the text and the instructions */
};

static uint64_t fnv1a (uint64_t h, const void *buf, size_t len)
{
  const unsigned char *p = buf;
  for (size_t i = 0; i < len; i++)
    h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}
#define FNV_OFFSET 0xcbf29ce484222325ULL

static char *cache_key_text (const cJSON *profile)
{
  _cleanup_free_ char *json = cJSON_PrintUnformatted (profile);
  const struct scmp_version *v = seccomp_version ();
  char *text = NULL;
  if (json == NULL
      || asprintf (&text, "berth-seccomp/%d libseccomp/%u.%u.%u native/%#x\n%s", CACHE_FORMAT,
                   v->major, v->minor, v->micro, seccomp_arch_native (), json)
             < 0)
    return NULL;
  return text;
}

/* Returns 1 and the program on a valid hit, 0 on a miss; a damaged file counts as a miss. */
static int cache_load (int dirfd, const char *name, const char *text, struct sock_filter **prog,
                       size_t *len)
{
  _cleanup_berr_ berr *e = NULL;
  _cleanup_free_ char *buf = NULL;
  size_t size = 0, text_len = strlen (text);
  if (bfs_read_all (dirfd, name, CACHE_MAX_FILE, &buf, &size, &e) < 0)
    {
      if (berr_errno (e) != ENOENT)
        blog_warn ("seccomp cache: %s", e->msg);
      return 0;
    }
  struct cache_header h;
  if (size < sizeof h)
    goto corrupt;
  memcpy (&h, buf, sizeof h);
  if (memcmp (h.magic, CACHE_MAGIC, 8) != 0 || h.text_len != text_len || h.n_insns == 0
      || h.n_insns > BPF_MAXINSNS
      || size != sizeof h + text_len + (size_t)h.n_insns * sizeof (struct sock_filter)
      || memcmp (buf + sizeof h, text, text_len) != 0
      || h.checksum != fnv1a (FNV_OFFSET, buf + sizeof h, size - sizeof h))
    goto corrupt;
  struct sock_filter *p = malloc (h.n_insns * sizeof *p);
  if (p == NULL)
    return 0;
  memcpy (p, buf + sizeof h + text_len, h.n_insns * sizeof *p);
  *prog = p;
  *len = h.n_insns;
  return 1;

corrupt:
  blog_warn ("seccomp cache: `%s` is damaged or stale; recompiling", name);
  return 0;
}

static void cache_store (int dirfd, const char *name, const char *text,
                         const struct sock_filter *prog, size_t len)
{
  size_t text_len = strlen (text),
         size = sizeof (struct cache_header) + text_len + len * sizeof *prog;
  _cleanup_free_ char *buf = malloc (size);
  if (buf == NULL)
    return;
  struct cache_header h = { .text_len = (uint32_t)text_len, .n_insns = (uint32_t)len };
  memcpy (h.magic, CACHE_MAGIC, 8);
  memcpy (buf + sizeof h, text, text_len);
  memcpy (buf + sizeof h + text_len, prog, len * sizeof *prog);
  h.checksum = fnv1a (FNV_OFFSET, buf + sizeof h, size - sizeof h);
  memcpy (buf, &h, sizeof h);
  _cleanup_berr_ berr *e = NULL;
  if (bfs_write_atomic (dirfd, name, buf, size, 0600, &e) < 0)
    blog_warn ("seccomp cache: %s", e->msg);
}

/* A cached filter is trusted only from a directory nobody else could have written to. */
static int open_cache_dir (const char *cache_dir)
{
  _cleanup_berr_ berr *e = NULL;
  if (bfs_mkdirs (cache_dir, 0700, &e) < 0)
    {
      blog_warn ("seccomp cache: %s", e->msg);
      return -1;
    }
  _cleanup_close_ int fd = open (cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat (fd, &st) < 0)
    {
      blog_warn ("seccomp cache: open `%s`: %s", cache_dir, strerror (errno));
      return -1;
    }
  if (st.st_uid != geteuid () || (st.st_mode & (S_IWGRP | S_IWOTH)))
    {
      blog_warn ("seccomp cache: `%s` is writable by others; not using it", cache_dir);
      return -1;
    }
  return steal_fd (&fd);
}

int rt_seccomp_compile (const cJSON *profile, const char *cache_dir, void **prog, size_t *len,
                        berr **err)
{
  struct sock_filter *out = NULL;
  size_t n = 0;
  if (cache_dir == NULL)
    {
      if (compile_profile (profile, &out, &n, err) < 0)
        return berr_wrap (err, "seccomp");
      *prog = out;
      *len = n;
      return 0;
    }

  _cleanup_free_ char *text = cache_key_text (profile);
  if (text == NULL)
    return berr_make (err, ENOMEM, "seccomp: out of memory");
  char name[32];
  snprintf (name, sizeof name, "%016" PRIx64 ".bpf", fnv1a (FNV_OFFSET, text, strlen (text)));
  _cleanup_close_ int dirfd = open_cache_dir (cache_dir);
  if (dirfd < 0 || cache_load (dirfd, name, text, &out, &n) == 0)
    {
      if (compile_profile (profile, &out, &n, err) < 0)
        return berr_wrap (err, "seccomp");
      if (dirfd >= 0)
        cache_store (dirfd, name, text, out, n);
    }
  *prog = out;
  *len = n;
  return 0;
}
