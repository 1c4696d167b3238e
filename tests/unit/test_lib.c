/* lib/: error wrapping, typed JSON access, durable atomic writes, root-confined lookups, time. */
#include "lib/cleanup.h"
#include "lib/clock.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/strv.h"
#include "tests/support/support.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fails_with_enoent (berr **err)
{
  errno = ENOENT;
  return berr_sys (err, "open `%s`", "/x");
}

START_TEST (test_error_wrap_keeps_cause_and_errno)
{
  berr *err = NULL;
  ck_assert_int_lt (fails_with_enoent (&err), 0);
  ck_assert_int_lt (berr_wrap (&err, "load config"), 0);
  ck_assert_str_eq (err->msg, "load config: open `/x`: No such file or directory");
  ck_assert_int_eq (berr_errno (err), ENOENT);
  berr_free (&err);
  ck_assert_ptr_null (err);
  /* A NULL error pointer is allowed: the caller does not want the detail. */
  ck_assert_int_lt (berr_make (NULL, EINVAL, "ignored"), 0);
}
END_TEST

START_TEST (test_json_getters_name_the_bad_key)
{
  cJSON *j = NULL;
  berr *err = NULL;
  const char *text = "{\"name\":\"web\",\"cpu\":256,\"essential\":true,\"big\":1e300,\"frac\":1.5,"
                     "\"args\":[\"a\",\"b\"],\"mixed\":[\"a\",1]}";
  ck_assert_int_eq (bjson_parse (text, strlen (text), &j, &err), 0);
  const char *s = NULL;
  int64_t n = 0;
  bool b = false;
  char **v = NULL;
  ck_assert_int_eq (bjson_get_str (j, "name", true, &s, &err), 0);
  ck_assert_str_eq (s, "web");
  ck_assert_int_eq (bjson_get_int (j, "cpu", true, 0, 10240, &n, &err), 0);
  ck_assert_int_eq (n, 256);
  ck_assert_int_eq (bjson_get_bool (j, "essential", true, &b, &err), 0);
  ck_assert (b);
  ck_assert_int_eq (bjson_get_strv (j, "args", true, &v, &err), 0);
  ck_assert_str_eq (v[1], "b");
  strv_free (v);
  v = NULL;
  ck_assert_int_lt (bjson_get_str (j, "cpu", true, &s, &err), 0);
  ck_assert_str_eq (err->msg, "`cpu` must be a string");
  berr_free (&err);
  ck_assert_int_lt (bjson_get_int (j, "big", true, 0, INT64_MAX, &n, &err), 0);
  berr_free (&err);
  ck_assert_int_lt (bjson_get_int (j, "frac", true, 0, 10, &n, &err), 0);
  berr_free (&err);
  ck_assert_int_lt (bjson_get_int (j, "cpu", true, 0, 100, &n, &err), 0);
  ck_assert_int_eq (berr_errno (err), ERANGE);
  berr_free (&err);
  ck_assert_int_lt (bjson_get_strv (j, "mixed", true, &v, &err), 0);
  ck_assert_ptr_null (v);
  berr_free (&err);
  ck_assert_int_lt (bjson_get_str (j, "missing", true, &s, &err), 0);
  ck_assert_str_eq (err->msg, "`missing` is required");
  berr_free (&err);
  ck_assert_int_eq (bjson_get_str (j, "missing", false, &s, &err), 0);
  cJSON_Delete (j);
}
END_TEST

START_TEST (test_json_parse_rejects_garbage_and_trailing_data)
{
  cJSON *j = NULL;
  berr *err = NULL;
  ck_assert_int_lt (bjson_parse ("{\"a\":", 5, &j, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "malformed JSON"));
  berr_free (&err);
  ck_assert_int_lt (bjson_parse ("{} {}", 5, &j, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "trailing data"));
  berr_free (&err);
  ck_assert_int_eq (bjson_parse ("{}\n", 3, &j, &err), 0);
  cJSON_Delete (j);
}
END_TEST

START_TEST (test_atomic_write_replaces_whole_file_and_leaves_no_temp)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("atomic");
  _cleanup_close_ int dfd = open (dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  berr *err = NULL;
  ck_assert_int_eq (bfs_write_atomic (dfd, "state.json", "first version", 13, 0600, &err), 0);
  ck_assert_int_eq (bfs_write_atomic (dfd, "state.json", "v2", 2, 0640, &err), 0);
  char *text = NULL;
  size_t len = 0;
  ck_assert_int_eq (bfs_read_all (dfd, "state.json", 1024, &text, &len, &err), 0);
  ck_assert_str_eq (text, "v2");
  free (text);
  struct stat st;
  ck_assert_int_eq (fstatat (dfd, "state.json", &st, 0), 0);
  ck_assert_int_eq (st.st_mode & 0777, 0640);
  char *out = NULL;
  char cmd[512];
  snprintf (cmd, sizeof cmd, "ls -A %s", dir);
  ts_sh (cmd, &out, NULL);
  ck_assert_str_eq (out, "state.json\n");
  free (out);
  /* Reads are bounded. */
  ck_assert_int_lt (bfs_read_all (dfd, "state.json", 1, &text, &len, &err), 0);
  ck_assert_int_eq (berr_errno (err), EFBIG);
  berr_free (&err);
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_open_in_root_cannot_escape)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("inroot");
  char cmd[1024];
  snprintf (
      cmd, sizeof cmd,
      "mkdir -p %s/etc && echo inside > %s/etc/hostname && ln -s /etc/hostname %s/abs &&"
      "ln -s ../../../../../../etc/hostname %s/rel && ln -s /proc/self/root/etc/hostname %s/magic",
      dir, dir, dir, dir, dir);
  int st = 0;
  ts_sh (cmd, NULL, &st);
  ck_assert_int_eq (ts_exit_code (st), 0);
  _cleanup_close_ int root = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  const char *paths[] = { "abs", "rel", "../../../../etc/hostname", "/etc/hostname" };
  for (size_t i = 0; i < ARRAY_SIZE (paths); i++)
    {
      berr *err = NULL;
      _cleanup_close_ int fd = bfs_open_in_root (root, paths[i], O_RDONLY, 0, &err);
      ck_assert_msg (fd >= 0, "%s: %s", paths[i], err ? err->msg : "");
      char buf[32] = "";
      ck_assert_int_gt (read (fd, buf, sizeof buf - 1), 0);
      ck_assert_msg (strcmp (buf, "inside\n") == 0, "%s escaped: %s", paths[i], buf);
    }
  berr *err = NULL;
  ck_assert_int_lt (bfs_open_in_root (root, "magic", O_RDONLY, 0, &err), 0);
  berr_free (&err);
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_mkdirs_in_root_follows_links_only_inside)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("mkdirs");
  _cleanup_free_ char *outside = ts_mkdtemp ("outside");
  char cmd[1024];
  snprintf (cmd, sizeof cmd, "mkdir -p %s%s && ln -s %s %s/link", dir, outside, outside, dir);
  int st = 0;
  ts_sh (cmd, NULL, &st);
  _cleanup_close_ int root = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  berr *err = NULL;
  ck_assert_int_eq (bfs_mkdirs_in_root (root, "/link/a/b", 0755, NULL, &err), 0);
  char probe[1024];
  snprintf (probe, sizeof probe, "%s%s/a/b", dir, outside);
  ck_assert_int_eq (access (probe, F_OK), 0); /* created inside the root */
  snprintf (probe, sizeof probe, "%s/a", outside);
  ck_assert_int_ne (access (probe, F_OK), 0); /* not on the host */
  ts_rmtree (dir);
  ts_rmtree (outside);
}
END_TEST

START_TEST (test_rfc3339_round_trip)
{
  char buf[BCLOCK_RFC3339_LEN];
  int64_t ns = 1795357800123456789LL;
  bclock_rfc3339 (ns, buf);
  ck_assert_str_eq (buf, "2026-11-22T14:30:00.123456789Z");
  int64_t back = 0;
  ck_assert_int_eq (bclock_parse_rfc3339 (buf, &back), 0);
  ck_assert_int_eq (back, ns);
  ck_assert_int_eq (bclock_parse_rfc3339 ("2026-11-22T15:30:00+01:00", &back), 0);
  ck_assert_int_eq (back, 1795357800000000000LL);
  ck_assert_int_lt (bclock_parse_rfc3339 ("2026-11-22 15:30:00", &back), 0);
  ck_assert_int_lt (bclock_parse_rfc3339 ("2026-11-22T15:30:00Zjunk", &back), 0);
}
END_TEST

START_TEST (test_strv_env_set_replaces)
{
  _cleanup_strv_ char **env = NULL;
  ck_assert_int_eq (strv_env_set (&env, "PATH", "/bin"), 0);
  ck_assert_int_eq (strv_env_set (&env, "HOME", "/root"), 0);
  ck_assert_int_eq (strv_env_set (&env, "PATH", "/usr/bin"), 0);
  ck_assert_int_eq (strv_len (env), 2);
  ck_assert_str_eq (strv_env_get (env, "PATH"), "/usr/bin");
  ck_assert_ptr_null (strv_env_get (env, "PAT"));
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("lib");
  TCase *tc = tcase_create ("helpers");
  tcase_add_test (tc, test_error_wrap_keeps_cause_and_errno);
  tcase_add_test (tc, test_json_getters_name_the_bad_key);
  tcase_add_test (tc, test_json_parse_rejects_garbage_and_trailing_data);
  tcase_add_test (tc, test_atomic_write_replaces_whole_file_and_leaves_no_temp);
  tcase_add_test (tc, test_open_in_root_cannot_escape);
  tcase_add_test (tc, test_mkdirs_in_root_follows_links_only_inside);
  tcase_add_test (tc, test_rfc3339_round_trip);
  tcase_add_test (tc, test_strv_env_set_replaces);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
