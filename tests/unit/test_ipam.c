/* net/ IPAM against a temp directory: allocate, idempotence, release, persistence across a
 * reload, exhaustion, and refusal of corrupt or mismatched state files. */
#include "net/internal.h"
#include "net/net.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dir, *state;

static void setup (void)
{
  dir = ts_mkdtemp ("berth-ipam");
  ck_assert_int_ge (asprintf (&state, "%s/ipam.state", dir), 0);
}

static void teardown (void)
{
  ts_rmtree (dir);
  free (dir);
  free (state);
}

static net_ipam *must_open (const char *subnet, const char *gw)
{
  berr *err = NULL;
  net_ipam *ipam = NULL;
  if (net_ipam_open (state, subnet, gw, &ipam, &err) < 0)
    ck_abort_msg ("net_ipam_open: %s", err->msg);
  return ipam;
}

static const char *must_alloc (net_ipam *ipam, const char *owner)
{
  static char buf[INET_ADDRSTRLEN];
  berr *err = NULL;
  struct in_addr a;
  if (net_ipam_allocate (ipam, owner, &a, &err) < 0)
    ck_abort_msg ("allocate %s: %s", owner, err->msg);
  return inet_ntop (AF_INET, &a, buf, sizeof buf);
}

START_TEST (test_allocate_skips_gateway_and_is_idempotent_per_owner)
{
  net_ipam *ipam = must_open ("172.31.0.0/16", NULL);
  ck_assert_str_eq (must_alloc (ipam, "arn:task/1/web"), "172.31.0.2");
  ck_assert_str_eq (must_alloc (ipam, "arn:task/1/db"), "172.31.0.3");
  ck_assert_str_eq (must_alloc (ipam, "arn:task/1/web"), "172.31.0.2");
  ck_assert_uint_eq (net_ipam_count (ipam), 2);
  struct in_addr gw = net_ipam_gateway (ipam);
  ck_assert_str_eq (inet_ntoa (gw), "172.31.0.1");
  ck_assert_uint_eq (net_ipam_prefixlen (ipam), 16);
  net_ipam_free (ipam);
}
END_TEST

START_TEST (test_allocations_persist_across_reload_and_release)
{
  net_ipam *ipam = must_open ("10.9.0.0/24", "10.9.0.254");
  ck_assert_str_eq (must_alloc (ipam, "a"), "10.9.0.1");
  ck_assert_str_eq (must_alloc (ipam, "b"), "10.9.0.2");
  ck_assert_str_eq (must_alloc (ipam, "c"), "10.9.0.3");
  berr *err = NULL;
  ck_assert_int_eq (net_ipam_release (ipam, "b", &err), 1);
  ck_assert_int_eq (net_ipam_release (ipam, "b", &err), 0);
  net_ipam_free (ipam);

  /* A new process reading the file sees exactly a and c. */
  ipam = must_open ("10.9.0.0/24", "10.9.0.254");
  ck_assert_uint_eq (net_ipam_count (ipam), 2);
  struct in_addr a;
  ck_assert_int_eq (net_ipam_lookup (ipam, "c", &a), 1);
  ck_assert_str_eq (inet_ntoa (a), "10.9.0.3");
  ck_assert_int_eq (net_ipam_lookup (ipam, "b", &a), 0);
  /* Freed addresses are reused last: d gets .4, not b's old .2. */
  ck_assert_str_eq (must_alloc (ipam, "d"), "10.9.0.4");
  net_ipam_free (ipam);
}
END_TEST

START_TEST (test_exhaustion_is_enospc_and_release_frees_room)
{
  net_ipam *ipam = must_open ("192.168.7.0/29", NULL); /* .1 gateway, .2 - .6 free */
  char owner[16];
  for (int i = 0; i < 5; i++)
    {
      snprintf (owner, sizeof owner, "o%d", i);
      must_alloc (ipam, owner);
    }
  berr *err = NULL;
  struct in_addr a;
  ck_assert_int_lt (net_ipam_allocate (ipam, "late", &a, &err), 0);
  ck_assert_int_eq (berr_errno (err), ENOSPC);
  ck_assert_ptr_nonnull (strstr (err->msg, "192.168.7.0/29"));
  berr_free (&err);
  ck_assert_int_eq (net_ipam_release (ipam, "o2", &err), 1);
  ck_assert_str_eq (must_alloc (ipam, "late"), "192.168.7.4");
  net_ipam_free (ipam);
}
END_TEST

static void write_state (const char *text)
{
  FILE *f = fopen (state, "w");
  ck_assert_ptr_nonnull (f);
  fputs (text, f);
  fclose (f);
}

static void assert_open_fails (const char *subnet, const char *want)
{
  berr *err = NULL;
  net_ipam *ipam = NULL;
  ck_assert_int_lt (net_ipam_open (state, subnet, NULL, &ipam, &err), 0);
  ck_assert_msg (strstr (err->msg, want) != NULL, "want `%s` in `%s`", want, err->msg);
  berr_free (&err);
}

START_TEST (test_corrupt_state_file_is_refused)
{
  net_ipam *ipam = must_open ("10.1.0.0/24", NULL);
  must_alloc (ipam, "task-a/web");
  net_ipam_free (ipam);
  char *good = ts_read_file (state);
  ck_assert_ptr_nonnull (good);

  /* Truncated: the trailer is gone. */
  char *torn = strndup (good, strlen (good) - 10);
  write_state (torn);
  assert_open_fails ("10.1.0.0/24", "corrupt");
  free (torn);

  /* One flipped character in an allocation: the checksum catches it. */
  char *flip = strdup (good);
  *strstr (flip, "10.1.0.2") = '9';
  write_state (flip);
  assert_open_fails ("10.1.0.0/24", "corrupt");
  *strstr (flip, "90.1.0.2") = '1';
  *strstr (flip, "web") = 'W';
  write_state (flip);
  assert_open_fails ("10.1.0.0/24", "checksum");
  free (flip);

  write_state ("garbage\n");
  assert_open_fails ("10.1.0.0/24", "not a Berth IPAM file");

  /* Intact, but for another subnet than configured. */
  write_state (good);
  assert_open_fails ("10.2.0.0/24", "another subnet");
  free (good);
}
END_TEST

START_TEST (test_parser_rejects_duplicates_and_reserved_addresses)
{
  struct net_ipam_state st = { .net = 0x0a000000, .prefixlen = 24, .gateway = 0x0a000001 };
  struct net_ipam_entry e[2] = { { 0x0a000002, (char *)"x" }, { 0x0a000003, (char *)"x" } };
  st.v = e;
  st.n = 2;
  size_t len;
  char *text = net_ipam_format (&st, &len);
  struct net_ipam_state out;
  berr *err = NULL;
  ck_assert_int_lt (net_ipam_parse (text, len, &out, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "two addresses"));
  berr_free (&err);
  free (text);

  e[1].owner = (char *)"y";
  e[1].ip = 0x0a000001; /* the gateway */
  text = net_ipam_format (&st, &len);
  ck_assert_int_lt (net_ipam_parse (text, len, &out, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "bad address"));
  berr_free (&err);
  free (text);

  e[1].ip = 0x0a000004;
  text = net_ipam_format (&st, &len);
  ck_assert_int_eq (net_ipam_parse (text, len, &out, &err), 0);
  ck_assert_uint_eq (out.n, 2);
  net_ipam_state_clear (&out);
  free (text);
}
END_TEST

START_TEST (test_bad_configuration_and_owners_are_einval)
{
  berr *err = NULL;
  net_ipam *ipam = NULL;
  const char *bad[] = { "10.0.0.0", "10.0.0.1/24",  "10.0.0.0/31", "10.0.0.0/4",
                        "x/24",     "10.0.0.0/24x", "10.0.0.0/" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      ck_assert_msg (net_ipam_open (state, bad[i], NULL, &ipam, &err) < 0, "%s accepted", bad[i]);
      ck_assert_int_eq (berr_errno (err), EINVAL);
      berr_free (&err);
    }
  ck_assert_int_lt (net_ipam_open (state, "10.0.0.0/24", "10.0.1.1", &ipam, &err), 0);
  berr_free (&err);
  ipam = must_open ("10.0.0.0/24", NULL);
  struct in_addr a;
  ck_assert_int_lt (net_ipam_allocate (ipam, "has space", &a, &err), 0);
  ck_assert_int_eq (berr_errno (err), EINVAL);
  berr_free (&err);
  ck_assert_int_lt (net_ipam_allocate (ipam, "", &a, &err), 0);
  berr_free (&err);
  net_ipam_free (ipam);
}
END_TEST

START_TEST (test_failed_save_leaves_memory_matching_the_file)
{
  net_ipam *ipam = must_open ("10.3.0.0/24", NULL);
  must_alloc (ipam, "kept");
  /* Make the directory unwritable for the atomic replace (root ignores modes: remove it). */
  ts_rmtree (dir);
  berr *err = NULL;
  struct in_addr a;
  ck_assert_int_lt (net_ipam_allocate (ipam, "lost", &a, &err), 0);
  berr_free (&err);
  ck_assert_int_eq (net_ipam_lookup (ipam, "lost", &a), 0);
  ck_assert_int_lt (net_ipam_release (ipam, "kept", &err), 0);
  berr_free (&err);
  ck_assert_int_eq (net_ipam_lookup (ipam, "kept", &a), 1);
  ck_assert_uint_eq (net_ipam_count (ipam), 1);
  net_ipam_free (ipam);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("ipam");
  TCase *tc = tcase_create ("ipam");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_allocate_skips_gateway_and_is_idempotent_per_owner);
  tcase_add_test (tc, test_allocations_persist_across_reload_and_release);
  tcase_add_test (tc, test_exhaustion_is_enospc_and_release_frees_room);
  tcase_add_test (tc, test_corrupt_state_file_is_refused);
  tcase_add_test (tc, test_parser_rejects_duplicates_and_reserved_addresses);
  tcase_add_test (tc, test_bad_configuration_and_owners_are_einval);
  tcase_add_test (tc, test_failed_save_leaves_memory_matching_the_file);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
