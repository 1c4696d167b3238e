/* Users and groups resolved from a container's own /etc files (a fake root on disk). */
#include "lib/cleanup.h"
#include "runtime/internal.h"
#include "tests/support/support.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char passwd[] = "root:x:0:0:root:/root:/bin/sh\n"
                             "broken line without fields\n"
                             "bad:x:notanumber:1::/:/bin/sh\n"
                             "app:x:1000:1001:App:/home/app:/bin/sh\n"
                             "huge:x:4294967295:0::/:/bin/sh\n";
static const char group[] = "root:x:0:\nwheel:x:10:root,app\napp:x:1001:\nstaff:x:50:other,app\n";

static int make_root (char **dir)
{
  *dir = ts_mkdtemp ("userroot");
  char *cmd = NULL;
  if (asprintf (&cmd,
                "mkdir -p %s/etc && printf '%%s' '%s' > %s/etc/passwd && printf '%%s' '%s' > "
                "%s/etc/group",
                *dir, passwd, *dir, group, *dir)
      < 0)
    abort ();
  int st = 0;
  ts_sh (cmd, NULL, &st);
  free (cmd);
  return open (*dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

START_TEST (test_user_name_resolves_uid_gid_home_and_groups)
{
  _cleanup_free_ char *dir = NULL;
  _cleanup_close_ int root = make_root (&dir);
  uid_t uid = 99;
  gid_t gid = 99, *groups = NULL;
  size_t n = 0;
  char *home = NULL;
  berr *err = NULL;
  ck_assert_int_eq (rt_user_resolve (root, "app", &uid, &gid, &groups, &n, &home, &err), 0);
  ck_assert_int_eq (uid, 1000);
  ck_assert_int_eq (gid, 1001);
  ck_assert_str_eq (home, "/home/app");
  ck_assert_int_eq (n, 2);
  ck_assert_int_eq (groups[0], 10);
  ck_assert_int_eq (groups[1], 50);
  free (groups);
  free (home);
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_user_with_group_and_numeric_forms)
{
  _cleanup_free_ char *dir = NULL;
  _cleanup_close_ int root = make_root (&dir);
  uid_t uid;
  gid_t gid, *groups = NULL;
  size_t n;
  berr *err = NULL;
  ck_assert_int_eq (rt_user_resolve (root, "app:staff", &uid, &gid, &groups, &n, NULL, &err), 0);
  ck_assert_int_eq (gid, 50);
  free (groups);
  ck_assert_int_eq (rt_user_resolve (root, "4321:99", &uid, &gid, &groups, &n, NULL, &err), 0);
  ck_assert_int_eq (uid, 4321);
  ck_assert_int_eq (gid, 99);
  free (groups);
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_unknown_user_and_group_are_clear_errors)
{
  _cleanup_free_ char *dir = NULL;
  _cleanup_close_ int root = make_root (&dir);
  uid_t uid;
  gid_t gid, *groups = NULL;
  size_t n;
  berr *err = NULL;
  ck_assert_int_lt (rt_user_resolve (root, "nobody-here", &uid, &gid, &groups, &n, NULL, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "user `nobody-here` not found"));
  berr_free (&err);
  ck_assert_int_lt (rt_user_resolve (root, "app:nogroup", &uid, &gid, &groups, &n, NULL, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "group `nogroup` not found"));
  berr_free (&err);
  /* (uid_t)-1 and malformed ids are never accepted. */
  ck_assert_int_lt (rt_passwd_lookup (passwd, "huge", &uid, &gid, NULL), 0);
  ck_assert_int_lt (rt_passwd_lookup (passwd, "bad", &uid, &gid, NULL), 0);
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_passwd_symlink_cannot_escape_the_root)
{
  /* An image whose /etc/passwd links to the host's must read its own (missing) file. */
  char *dir = ts_mkdtemp ("userroot-link");
  char *cmd = NULL;
  ck_assert_int_ge (
      asprintf (&cmd, "mkdir -p %s/etc && ln -s /../../../../etc/passwd %s/etc/passwd", dir, dir),
      0);
  int st;
  ts_sh (cmd, NULL, &st);
  free (cmd);
  _cleanup_close_ int root = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  uid_t uid;
  gid_t gid, *groups = NULL;
  size_t n;
  berr *err = NULL;
  ck_assert_int_lt (rt_user_resolve (root, "root", &uid, &gid, &groups, &n, NULL, &err), 0);
  berr_free (&err);
  ts_rmtree (dir);
  free (dir);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("user");
  TCase *tc = tcase_create ("resolve");
  tcase_add_test (tc, test_user_name_resolves_uid_gid_home_and_groups);
  tcase_add_test (tc, test_user_with_group_and_numeric_forms);
  tcase_add_test (tc, test_unknown_user_and_group_are_clear_errors);
  tcase_add_test (tc, test_passwd_symlink_cannot_escape_the_root);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
