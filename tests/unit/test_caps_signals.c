/* Capability and signal names as users and OCI configs spell them, and Docker's default
 * capability set. */
#include "lib/error.h"
#include "runtime/runtime.h"

#include "tests/support/support.h"

#include <check.h>
#include <linux/capability.h>
#include <signal.h>
#include <string.h>

START_TEST (test_capability_names_in_any_spelling)
{
  static const char *const spellings[]
      = { "CAP_NET_ADMIN", "NET_ADMIN", "net_admin", "cap_net_admin", "Cap_Net_Admin" };
  for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++)
    {
      int cap = -1;
      berr *err = NULL;
      ck_assert_int_eq (rt_cap_from_name (spellings[i], &cap, &err), 0);
      ck_assert_int_eq (cap, CAP_NET_ADMIN);
    }
  int cap = -1;
  berr *err = NULL;
  ck_assert_int_eq (rt_cap_from_name ("CAP_CHOWN", &cap, &err), 0);
  ck_assert_int_eq (cap, CAP_CHOWN);
  ck_assert_int_eq (rt_cap_from_name ("CAP_CHECKPOINT_RESTORE", &cap, &err), 0);
  ck_assert_int_eq (cap, CAP_CHECKPOINT_RESTORE);
}
END_TEST

START_TEST (test_unknown_or_malformed_capability_names_are_rejected)
{
  /* libcap alone would accept a list prefix ("cap_chown,cap_kill") and numbers. */
  static const char *const bad[]
      = { "CAP_FOO",
          "",
          "CAP_",
          "cap_chown,cap_kill",
          "5",
          "CAP_5",
          "CAP_CHOWN ",
          "all",
          "CAP_SYS_ADMIN\n",
          "CAP_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      int cap = -7;
      _cleanup_berr_ berr *err = NULL;
      ck_assert_msg (rt_cap_from_name (bad[i], &cap, &err) < 0, "accepted `%s`", bad[i]);
      ck_assert_int_eq (cap, -7);
      ck_assert (strstr (err->msg, "unknown capability") != NULL);
    }
}
END_TEST

START_TEST (test_docker_default_is_exactly_the_14_capabilities)
{
  static const int want[] = { CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
                              CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,           CAP_SETUID,
                              CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
                              CAP_KILL,    CAP_AUDIT_WRITE };
  uint64_t expect = 0;
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    expect |= 1ULL << want[i];
  ck_assert_uint_eq (rt_caps_docker_default (), expect);
  ck_assert_int_eq (__builtin_popcountll (rt_caps_docker_default ()), 14);
  ck_assert (!(rt_caps_docker_default () & (1ULL << CAP_SYS_ADMIN)));
}
END_TEST

START_TEST (test_signal_names_numbers_and_realtime_offsets)
{
  static const struct
  {
    const char *name;
    int want;
  } cases[] = {
    { "TERM", SIGTERM },
    { "SIGTERM", SIGTERM },
    { "term", SIGTERM },
    { "sigkill", SIGKILL },
    { "HUP", SIGHUP },
    { "USR1", SIGUSR1 },
    { "SIGCHLD", SIGCHLD },
    { "IOT", SIGABRT },
    { "CLD", SIGCHLD },
    { "15", 15 },
    { "9", 9 },
    { "1", 1 },
    { "64", 64 },
    { "WINCH", SIGWINCH },
    { "SIGSYS", SIGSYS },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      int sig = -1;
      berr *err = NULL;
      ck_assert_msg (rt_signal_from_name (cases[i].name, &sig, &err) == 0, "rejected %s",
                     cases[i].name);
      ck_assert_msg (sig == cases[i].want, "%s -> %d", cases[i].name, sig);
    }
  int sig = 0;
  berr *err = NULL;
  ck_assert_int_eq (rt_signal_from_name ("RTMIN", &sig, &err), 0);
  ck_assert_int_eq (sig, SIGRTMIN);
  ck_assert_int_eq (rt_signal_from_name ("RTMIN+3", &sig, &err), 0);
  ck_assert_int_eq (sig, SIGRTMIN + 3);
  ck_assert_int_eq (rt_signal_from_name ("SIGRTMAX-1", &sig, &err), 0);
  ck_assert_int_eq (sig, SIGRTMAX - 1);
  ck_assert_int_eq (rt_signal_from_name ("rtmax", &sig, &err), 0);
  ck_assert_int_eq (sig, SIGRTMAX);
}
END_TEST

START_TEST (test_unknown_and_out_of_range_signals_are_rejected)
{
  static const char *const bad[]
      = { "",         "FOO",     "SIG",        "0",
          "65",       "-1",      "15x",        "15\n",
          "RTMIN+",   "RTMIN-1", "RTMAX+1",    "RTMIN+100",
          "RTMAX-99", " TERM",   "SIGSIGTERM", "99999999999999999999999" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      int sig = -7;
      _cleanup_berr_ berr *err = NULL;
      ck_assert_msg (rt_signal_from_name (bad[i], &sig, &err) < 0, "accepted `%s`", bad[i]);
      ck_assert_int_eq (sig, -7);
      ck_assert_ptr_nonnull (err);
    }
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("caps_signals");
  TCase *tc = tcase_create ("names");
  tcase_add_test (tc, test_capability_names_in_any_spelling);
  tcase_add_test (tc, test_unknown_or_malformed_capability_names_are_rejected);
  tcase_add_test (tc, test_docker_default_is_exactly_the_14_capabilities);
  tcase_add_test (tc, test_signal_names_numbers_and_realtime_offsets);
  tcase_add_test (tc, test_unknown_and_out_of_range_signals_are_rejected);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
