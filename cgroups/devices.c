/* Device access rules: "deny everything, then these rules in order". v1 writes the devices
 * controller's files; v2 has no devices controller, so a small eBPF program built from the
 * rules (BPF_PROG_TYPE_CGROUP_DEVICE) is attached to the group's directory. */
#include "cgroups/internal.h"

#include "lib/cleanup.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Enough for a few hundred rules; a container has about a dozen. */
#define MAX_INSNS 4096

bool cgi_device_rule_valid (const struct cg_device_rule *r)
{
  if (r->type != 'a' && r->type != 'b' && r->type != 'c')
    return false;
  if (r->access[0] == '\0' || strnlen (r->access, sizeof r->access) == sizeof r->access)
    return false;
  return strspn (r->access, "rwm") == strlen (r->access);
}

int cgi_device_rule_format (const struct cg_device_rule *r, char *buf, size_t size)
{
  char major[24] = "*", minor[24] = "*";
  if (r->type == 'a')
    return snprintf (buf, size, "a") >= (int)size ? -1 : 0;
  if (r->major >= 0)
    snprintf (major, sizeof major, "%" PRId64, r->major);
  if (r->minor >= 0)
    snprintf (minor, sizeof minor, "%" PRId64, r->minor);
  return snprintf (buf, size, "%c %s:%s %s", r->type, major, minor, r->access) >= (int)size ? -1
                                                                                            : 0;
}

/* v1: deny all, then each rule to devices.allow or devices.deny. The kernel refuses a
 * behaviour change ("a") once the group has children, so set devices before creating them. */
static int apply_v1 (cg_group *g, const struct cg_device_rule *rules, size_t n, berr **err)
{
  if (cgi_write (g, CGI_DEVICES, "devices.deny", "a", err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    {
      char line[64];
      if (cgi_device_rule_format (&rules[i], line, sizeof line) < 0)
        return berr_make (err, EINVAL, "device rule %zu", i);
      if (cgi_write (g, CGI_DEVICES, rules[i].allow ? "devices.allow" : "devices.deny", line, err)
          < 0)
        return -1;
    }
  return 0;
}

static uint32_t access_bits (const char *access)
{
  uint32_t bits = 0;
  for (const char *p = access; *p; p++)
    bits |= *p == 'r' ? BPF_DEVCG_ACC_READ : *p == 'w' ? BPF_DEVCG_ACC_WRITE : BPF_DEVCG_ACC_MKNOD;
  return bits;
}

struct prog
{
  struct bpf_insn *insns;
  size_t n, max;
};

static void emit (struct prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
  if (p->n < p->max)
    p->insns[p->n]
        = (struct bpf_insn){ .code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm };
  p->n++;
}

/* One rule as a block that either returns its verdict or falls through to the next block.
 * Registers: r2 requested access bits, r3 device type, r4 major, r5 minor; r1 is scratch. */
static void emit_rule (struct prog *p, const struct cg_device_rule *r)
{
  size_t len = (r->type != 'a') + (r->major >= 0 && r->type != 'a')
               + (r->minor >= 0 && r->type != 'a') + 5;
  size_t start = p->n;
#define SKIP ((int16_t)(len - (p->n - start) - 1)) /* jump offset to the block's end */
  if (r->type != 'a')
    {
      emit (p, BPF_JMP32 | BPF_JNE | BPF_K, 3, 0, SKIP,
            r->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
      if (r->major >= 0)
        emit (p, BPF_JMP32 | BPF_JNE | BPF_K, 4, 0, SKIP, (int32_t)(uint32_t)r->major);
      if (r->minor >= 0)
        emit (p, BPF_JMP32 | BPF_JNE | BPF_K, 5, 0, SKIP, (int32_t)(uint32_t)r->minor);
    }
  uint32_t bits = access_bits (r->access);
  emit (p, BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 0, 0);
  if (r->allow)
    {
      /* An allow rule matches when it covers every requested access bit. */
      emit (p, BPF_ALU64 | BPF_AND | BPF_K, 1, 0, 0, (int32_t)(~bits & 7));
      emit (p, BPF_JMP | BPF_JNE | BPF_K, 1, 0, SKIP, 0);
    }
  else
    {
      /* A deny rule matches when it covers any requested access bit. */
      emit (p, BPF_ALU64 | BPF_AND | BPF_K, 1, 0, 0, (int32_t)bits);
      emit (p, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, SKIP, 0);
    }
  emit (p, BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, r->allow ? 1 : 0);
  emit (p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
#undef SKIP
}

int cgi_devices_build_prog (const struct cg_device_rule *rules, size_t n, void *insns, size_t max)
{
  struct prog p = { .insns = insns, .max = max };
  /* r2 = access_type; r3 = type (low 16 bits); r2 >>= 16 (access); r4 = major; r5 = minor */
  emit (&p, BPF_LDX | BPF_MEM | BPF_W, 2, 1, offsetof (struct bpf_cgroup_dev_ctx, access_type), 0);
  emit (&p, BPF_ALU64 | BPF_MOV | BPF_X, 3, 2, 0, 0);
  emit (&p, BPF_ALU64 | BPF_AND | BPF_K, 3, 0, 0, 0xffff);
  emit (&p, BPF_ALU64 | BPF_RSH | BPF_K, 2, 0, 0, 16);
  emit (&p, BPF_LDX | BPF_MEM | BPF_W, 4, 1, offsetof (struct bpf_cgroup_dev_ctx, major), 0);
  emit (&p, BPF_LDX | BPF_MEM | BPF_W, 5, 1, offsetof (struct bpf_cgroup_dev_ctx, minor), 0);
  /* The last matching rule wins, as when v1 applies the rules in order: test from the end. */
  for (size_t i = n; i-- > 0;)
    {
      if (!cgi_device_rule_valid (&rules[i]))
        return -1;
      emit_rule (&p, &rules[i]);
    }
  emit (&p, BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0); /* no rule matched: deny */
  emit (&p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  return p.n <= max ? (int)p.n : -1;
}

static long sys_bpf (int cmd, union bpf_attr *attr)
{
  return syscall (SYS_bpf, cmd, attr, sizeof *attr);
}

static int load_prog (const struct bpf_insn *insns, int n, berr **err)
{
  union bpf_attr attr = { 0 };
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = (uint32_t)n;
  attr.license = (uint64_t)(uintptr_t) "GPL";
  int fd = (int)sys_bpf (BPF_PROG_LOAD, &attr);
  if (fd >= 0)
    return fd;
  /* Load again with the verifier's log, only to explain the failure. */
  int e = errno;
  char vlog[4096] = "";
  attr.log_buf = (uint64_t)(uintptr_t)vlog;
  attr.log_size = sizeof vlog;
  attr.log_level = 1;
  if ((fd = (int)sys_bpf (BPF_PROG_LOAD, &attr)) >= 0)
    return fd;
  return berr_make (err, e, "load the device eBPF program (%d insns)%s%.300s", n,
                    *vlog ? ": verifier: " : "", vlog);
}

static uint32_t prog_id (int fd)
{
  struct bpf_prog_info info = { 0 };
  union bpf_attr attr = { 0 };
  attr.info.bpf_fd = (uint32_t)fd;
  attr.info.info_len = sizeof info;
  attr.info.info = (uint64_t)(uintptr_t)&info;
  return sys_bpf (BPF_OBJ_GET_INFO_BY_FD, &attr) == 0 ? info.id : 0;
}

/* Detaches the device programs attached to the group other than keep: a re-applied rule set
 * replaces the old one instead of intersecting with it (BPF_F_ALLOW_MULTI runs them all). */
static void detach_others (int cgfd, uint32_t keep)
{
  uint32_t ids[64];
  union bpf_attr attr = { 0 };
  attr.query.target_fd = (uint32_t)cgfd;
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
  attr.query.prog_cnt = ARRAY_SIZE (ids);
  if (sys_bpf (BPF_PROG_QUERY, &attr) < 0)
    return;
  for (uint32_t i = 0; i < attr.query.prog_cnt && i < ARRAY_SIZE (ids); i++)
    {
      if (ids[i] == keep)
        continue;
      union bpf_attr get = { 0 };
      get.prog_id = ids[i];
      _cleanup_close_ int fd = (int)sys_bpf (BPF_PROG_GET_FD_BY_ID, &get);
      if (fd < 0)
        continue;
      union bpf_attr det = { 0 };
      det.target_fd = (uint32_t)cgfd;
      det.attach_bpf_fd = (uint32_t)fd;
      det.attach_type = BPF_CGROUP_DEVICE;
      (void)sys_bpf (BPF_PROG_DETACH, &det);
    }
}

int cgi_devices_attach_bpf (int cgfd, const char *dir, const struct cg_device_rule *rules, size_t n,
                            berr **err)
{
  _cleanup_free_ struct bpf_insn *insns = calloc (MAX_INSNS, sizeof *insns);
  if (insns == NULL)
    return berr_make (err, ENOMEM, "device program");
  int count = cgi_devices_build_prog (rules, n, insns, MAX_INSNS);
  if (count < 0)
    return berr_make (err, EINVAL, "device rules: an invalid rule or too many rules");
  _cleanup_close_ int prog = load_prog (insns, count, err);
  if (prog < 0)
    return -1;
  union bpf_attr attr = { 0 };
  attr.target_fd = (uint32_t)cgfd;
  attr.attach_bpf_fd = (uint32_t)prog;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf (BPF_PROG_ATTACH, &attr) < 0)
    return berr_sys (err, "attach the device eBPF program to `%s`", dir);
  /* The attachment holds its own reference; our fd closes on return. */
  uint32_t id = prog_id (prog);
  if (id != 0)
    detach_others (cgfd, id);
  return 0;
}

int cgi_devices_apply (cg_group *g, const struct cg_device_rule *rules, size_t n, berr **err)
{
  for (size_t i = 0; i < n; i++)
    if (!cgi_device_rule_valid (&rules[i]))
      return berr_make (err, EINVAL,
                        "device rule %zu: type must be a, b or c and access a "
                        "non-empty subset of rwm",
                        i);
  if (g->dir[CGI_DEVICES] && !g->host->v2[CGI_DEVICES])
    return apply_v1 (g, rules, n, err);
  if (g->v2_fd >= 0)
    return cgi_devices_attach_bpf (g->v2_fd, g->v2_dir, rules, n, err);
  return berr_make (err, ENOTSUP, "no devices controller and no cgroup2 group for `%s`", g->path);
}
