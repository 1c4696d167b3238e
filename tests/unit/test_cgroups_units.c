/* Pure parts of the cgroups component: cpu unit conversions, device rule formatting, the v2
 * device eBPF program (run here by a small interpreter), keyed-file parsing. */
#include "cgroups/cgroups.h"
#include "cgroups/internal.h"

#include "tests/support/support.h"

#include <check.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST (test_cpu_units_to_shares_floors_at_two_and_leaves_zero_unset)
{
  ck_assert_uint_eq (cg_cpu_units_to_shares (0), 0);
  ck_assert_uint_eq (cg_cpu_units_to_shares (-10), 0);
  ck_assert_uint_eq (cg_cpu_units_to_shares (1), 2);
  ck_assert_uint_eq (cg_cpu_units_to_shares (2), 2);
  ck_assert_uint_eq (cg_cpu_units_to_shares (128), 128);
  ck_assert_uint_eq (cg_cpu_units_to_shares (1024), 1024);
  ck_assert_uint_eq (cg_cpu_units_to_shares (262144), 262144);
  ck_assert_uint_eq (cg_cpu_units_to_shares (1000000), 262144);
}
END_TEST

START_TEST (test_cpu_units_to_weight_maps_shares_range_onto_1_to_10000)
{
  ck_assert_uint_eq (cg_cpu_units_to_weight (0), 0);
  ck_assert_uint_eq (cg_cpu_units_to_weight (1), 1);
  ck_assert_uint_eq (cg_cpu_units_to_weight (2), 1);
  /* 1 + ((1024 - 2) * 9999) / 262142 = 1 + 38 */
  ck_assert_uint_eq (cg_cpu_units_to_weight (1024), 39);
  ck_assert_uint_eq (cg_cpu_units_to_weight (2048), 79);
  ck_assert_uint_eq (cg_cpu_units_to_weight (262144), 10000);
  ck_assert_uint_eq (cg_cpu_units_to_weight (INT64_MAX), 10000);
  uint64_t prev = 0;
  for (int64_t u = 1; u <= 300000; u += 97)
    {
      uint64_t w = cg_cpu_units_to_weight (u);
      ck_assert_uint_ge (w, prev);
      ck_assert_uint_ge (w, 1);
      ck_assert_uint_le (w, 10000);
      prev = w;
    }
}
END_TEST

static struct cg_device_rule rule (bool allow, char type, int64_t major, int64_t minor,
                                   const char *access)
{
  struct cg_device_rule r = { .allow = allow, .type = type, .major = major, .minor = minor };
  snprintf (r.access, sizeof r.access, "%s", access);
  return r;
}

START_TEST (test_device_rule_format_uses_v1_syntax_with_wildcards)
{
  char buf[64];
  struct cg_device_rule r = rule (true, 'c', 1, 3, "rwm");
  ck_assert_int_eq (cgi_device_rule_format (&r, buf, sizeof buf), 0);
  ck_assert_str_eq (buf, "c 1:3 rwm");
  r = rule (true, 'b', -1, -1, "r");
  ck_assert_int_eq (cgi_device_rule_format (&r, buf, sizeof buf), 0);
  ck_assert_str_eq (buf, "b *:* r");
  r = rule (true, 'c', 136, -1, "rw");
  ck_assert_int_eq (cgi_device_rule_format (&r, buf, sizeof buf), 0);
  ck_assert_str_eq (buf, "c 136:* rw");
  r = rule (false, 'a', -1, -1, "rwm");
  ck_assert_int_eq (cgi_device_rule_format (&r, buf, sizeof buf), 0);
  ck_assert_str_eq (buf, "a");
}
END_TEST

START_TEST (test_device_rule_validation_refuses_bad_type_and_access)
{
  struct cg_device_rule r = rule (true, 'c', 1, 3, "rwm");
  ck_assert (cgi_device_rule_valid (&r));
  r = rule (true, 'x', 1, 3, "rw");
  ck_assert (!cgi_device_rule_valid (&r));
  r = rule (true, 'c', 1, 3, "");
  ck_assert (!cgi_device_rule_valid (&r));
  r = rule (true, 'c', 1, 3, "rx");
  ck_assert (!cgi_device_rule_valid (&r));
  ck_assert_int_lt (cgi_devices_build_prog (&r, 1, NULL, 0), 0);
}
END_TEST

/* Runs the subset of eBPF the device program uses, as the kernel would for one access. */
static int run_prog (const struct bpf_insn *p, int n, uint32_t type, uint32_t access,
                     uint32_t major, uint32_t minor)
{
  struct bpf_cgroup_dev_ctx ctx
      = { .access_type = (access << 16) | type, .major = major, .minor = minor };
  uint64_t r[11] = { 0 };
  for (int pc = 0; pc < n; pc++)
    {
      const struct bpf_insn *i = &p[pc];
      uint64_t *d = &r[i->dst_reg];
      uint64_t k = (uint64_t)(int64_t)i->imm;
      uint32_t d32 = (uint32_t)*d;
      switch (i->code)
        {
        case BPF_LDX | BPF_MEM | BPF_W:
          ck_assert_int_eq (i->src_reg, 1);
          memcpy (&r[i->dst_reg], (const char *)&ctx + i->off, 4);
          r[i->dst_reg] &= 0xffffffffu;
          break;
        case BPF_ALU64 | BPF_MOV | BPF_X:
          *d = r[i->src_reg];
          break;
        case BPF_ALU64 | BPF_MOV | BPF_K:
          *d = k;
          break;
        case BPF_ALU64 | BPF_AND | BPF_K:
          *d &= k;
          break;
        case BPF_ALU64 | BPF_RSH | BPF_K:
          *d >>= i->imm;
          break;
        case BPF_JMP32 | BPF_JNE | BPF_K:
          pc += d32 != (uint32_t)i->imm ? i->off : 0;
          break;
        case BPF_JMP | BPF_JNE | BPF_K:
          pc += *d != k ? i->off : 0;
          break;
        case BPF_JMP | BPF_JEQ | BPF_K:
          pc += *d == k ? i->off : 0;
          break;
        case BPF_JMP | BPF_EXIT:
          return (int)r[0];
        default:
          ck_abort_msg ("unexpected instruction 0x%x at %d", i->code, pc);
        }
      ck_assert_int_lt (pc + 1, n + 1);
    }
  ck_abort_msg ("program ran off its end");
  return -1;
}

#define CHR BPF_DEVCG_DEV_CHAR
#define BLK BPF_DEVCG_DEV_BLOCK
#define R BPF_DEVCG_ACC_READ
#define W BPF_DEVCG_ACC_WRITE
#define M BPF_DEVCG_ACC_MKNOD

START_TEST (test_device_program_denies_by_default_and_allows_listed_devices)
{
  struct bpf_insn insns[512];
  struct cg_device_rule rules[] = {
    rule (true, 'c', 1, 3, "rwm"),   /* /dev/null */
    rule (true, 'c', 1, 5, "r"),     /* /dev/zero, read only */
    rule (true, 'c', 136, -1, "rw"), /* every pts */
  };
  int n = cgi_devices_build_prog (rules, 3, insns, 512);
  ck_assert_int_gt (n, 0);
  ck_assert_int_eq (run_prog (insns, n, CHR, R | W, 1, 3), 1);
  ck_assert_int_eq (run_prog (insns, n, CHR, M, 1, 3), 1);
  ck_assert_int_eq (run_prog (insns, n, CHR, R, 1, 5), 1);
  ck_assert_int_eq (run_prog (insns, n, CHR, W, 1, 5), 0);
  ck_assert_int_eq (run_prog (insns, n, CHR, R | W, 1, 5), 0);
  ck_assert_int_eq (run_prog (insns, n, CHR, R | W, 136, 7), 1);
  ck_assert_int_eq (run_prog (insns, n, CHR, M, 136, 7), 0);
  ck_assert_int_eq (run_prog (insns, n, BLK, R, 1, 3), 0);
  ck_assert_int_eq (run_prog (insns, n, CHR, R, 8, 0), 0);
  n = cgi_devices_build_prog (NULL, 0, insns, 512);
  ck_assert_int_eq (run_prog (insns, n, CHR, R, 1, 3), 0);
}
END_TEST

START_TEST (test_device_program_lets_the_last_matching_rule_win)
{
  struct bpf_insn insns[512];
  struct cg_device_rule rules[] = {
    rule (true, 'a', -1, -1, "rwm"),
    rule (false, 'b', -1, -1, "w"),
    rule (false, 'c', 10, 200, "rwm"),
  };
  int n = cgi_devices_build_prog (rules, 3, insns, 512);
  ck_assert_int_gt (n, 0);
  ck_assert_int_eq (run_prog (insns, n, CHR, R | W | M, 1, 3), 1);
  ck_assert_int_eq (run_prog (insns, n, BLK, R, 8, 0), 1);
  ck_assert_int_eq (run_prog (insns, n, BLK, W, 8, 0), 0);
  ck_assert_int_eq (run_prog (insns, n, BLK, R | W, 8, 0), 0);
  ck_assert_int_eq (run_prog (insns, n, CHR, R, 10, 200), 0);
  ck_assert_int_eq (run_prog (insns, n, CHR, R, 10, 201), 1);
  /* Allow after deny re-opens the device. */
  struct cg_device_rule again[] = { rule (false, 'a', -1, -1, "rwm"), rule (true, 'c', 5, 0, "w") };
  n = cgi_devices_build_prog (again, 2, insns, 512);
  ck_assert_int_eq (run_prog (insns, n, CHR, W, 5, 0), 1);
  ck_assert_int_eq (run_prog (insns, n, CHR, R, 5, 0), 0);
}
END_TEST

START_TEST (test_device_program_too_large_for_buffer_is_refused)
{
  struct bpf_insn insns[8];
  struct cg_device_rule r = rule (true, 'c', 1, 3, "rwm");
  ck_assert_int_lt (cgi_devices_build_prog (&r, 1, insns, 8), 0);
}
END_TEST

START_TEST (test_keyed_value_matches_whole_key_at_line_start)
{
  const char *stat = "cache 10\ninactive_file 4096\ntotal_inactive_file 8192\nfoo_bar 1\n";
  uint64_t v = 0;
  ck_assert_int_eq (cgi_keyed_u64 (stat, "inactive_file", &v), 0);
  ck_assert_uint_eq (v, 4096);
  ck_assert_int_eq (cgi_keyed_u64 (stat, "total_inactive_file", &v), 0);
  ck_assert_uint_eq (v, 8192);
  ck_assert_int_lt (cgi_keyed_u64 (stat, "foo", &v), 0);
  ck_assert_int_lt (cgi_keyed_u64 (stat, "missing", &v), 0);
  ck_assert_int_eq (cgi_keyed_u64 ("usage_usec 77", "usage_usec", &v), 0);
  ck_assert_uint_eq (v, 77);
  ck_assert_int_lt (cgi_keyed_u64 ("oom_kill x\n", "oom_kill", &v), 0);
}
END_TEST

START_TEST (test_mode_names)
{
  ck_assert_str_eq (cg_mode_name (CG_MODE_UNIFIED), "unified");
  ck_assert_str_eq (cg_mode_name (CG_MODE_HYBRID), "hybrid");
  ck_assert_str_eq (cg_mode_name (CG_MODE_LEGACY), "legacy");
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("cgroups_units");
  TCase *tc = tcase_create ("pure");
  tcase_add_test (tc, test_cpu_units_to_shares_floors_at_two_and_leaves_zero_unset);
  tcase_add_test (tc, test_cpu_units_to_weight_maps_shares_range_onto_1_to_10000);
  tcase_add_test (tc, test_device_rule_format_uses_v1_syntax_with_wildcards);
  tcase_add_test (tc, test_device_rule_validation_refuses_bad_type_and_access);
  tcase_add_test (tc, test_device_program_denies_by_default_and_allows_listed_devices);
  tcase_add_test (tc, test_device_program_lets_the_last_matching_rule_win);
  tcase_add_test (tc, test_device_program_too_large_for_buffer_is_refused);
  tcase_add_test (tc, test_keyed_value_matches_whole_key_at_line_start);
  tcase_add_test (tc, test_mode_names);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
