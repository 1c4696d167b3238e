/* Names net/bridge.c derives from endpoint keys (the host end of each veth) and the IPAM owner
 * listing reconcile walks: pure functions, no kernel needed. */
#include "net/net.h"
#include "tests/support/support.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_name (const void *a, const void *b)
{
  return strcmp (a, b);
}

START_TEST (test_veth_names_fit_ifnamsiz_are_stable_and_distinct)
{
  char a[IFNAMSIZ], b[IFNAMSIZ];
  net_bridge_veth_name ("0123abcd.0", a);
  net_bridge_veth_name ("0123abcd.0", b);
  ck_assert_str_eq (a, b);
  ck_assert_uint_eq (strlen (a), 15);
  ck_assert (strncmp (a, "bv", 2) == 0);
  ck_assert_uint_eq (strspn (a + 2, "abcdefghijklmnopqrstuvwxyz234567"), 13);
  /* Keys that differ in one character, many of them: no two share a name. */
  enum
  {
    N = 4000
  };
  char (*names)[IFNAMSIZ] = calloc (N, IFNAMSIZ);
  ck_assert_ptr_nonnull (names);
  for (int i = 0; i < N; i++)
    {
      char key[32];
      snprintf (key, sizeof key, "task%d.%d", i / 4, i % 4);
      net_bridge_veth_name (key, names[i]);
    }
  qsort (names, N, IFNAMSIZ, cmp_name);
  for (int i = 1; i < N; i++)
    if (strcmp (names[i - 1], names[i]) == 0)
      ck_abort_msg ("two keys share %s", names[i]);
  free (names);
}
END_TEST

START_TEST (test_ipam_owner_at_lists_every_owner_once)
{
  char *dir = ts_mkdtemp ("berth-brnames"), *path = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/ipam", dir), 0);
  net_ipam *ipam = NULL;
  berr *e = NULL;
  ck_assert_int_eq (net_ipam_open (path, "10.1.0.0/24", NULL, &ipam, &e), 0);
  struct in_addr a;
  ck_assert_int_eq (net_ipam_allocate (ipam, "t.a", &a, &e), 0);
  ck_assert_int_eq (net_ipam_allocate (ipam, "t.b", &a, &e), 0);
  ck_assert_int_eq (net_ipam_release (ipam, "t.a", &e), 1);
  ck_assert_int_eq (net_ipam_allocate (ipam, "t.c", &a, &e), 0);
  ck_assert_uint_eq (net_ipam_count (ipam), 2);
  bool b = false, c = false;
  for (size_t i = 0; i < net_ipam_count (ipam); i++)
    {
      b = b || strcmp (net_ipam_owner_at (ipam, i), "t.b") == 0;
      c = c || strcmp (net_ipam_owner_at (ipam, i), "t.c") == 0;
    }
  ck_assert (b && c);
  ck_assert_ptr_null (net_ipam_owner_at (ipam, 2));
  net_ipam_free (ipam);
  ts_rmtree (dir);
  free (dir);
  free (path);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("bridge_names");
  TCase *tc = tcase_create ("bridge_names");
  tcase_add_test (tc, test_veth_names_fit_ifnamsiz_are_stable_and_distinct);
  tcase_add_test (tc, test_ipam_owner_at_lists_every_owner_once);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
