/* The task engine's logConfiguration with real containers: json-file rotation options, the none
 * and journald drivers, and drivers or options the instance refuses. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "lib/json.h"
#include "lib/strv.h"
#include "tests/support/cp.h"
#include "tests/support/engine.h"
#include "tests/support/support.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define IMAGE TS_ENG_IMAGE
#define ARN_PREFIX TS_ENG_ARN_PREFIX

static char *images_dir;
static ts_eng f;

static void suite_setup (void)
{
  images_dir = ts_eng_images_build ();
}

static void suite_teardown (void)
{
  ts_eng_images_remove (images_dir);
}

static void setup (void)
{
  ts_eng_setup (&f, images_dir);
}

static void teardown (void)
{
  ts_eng_teardown (&f);
}

/* One container `app` running script with the given logConfiguration (JSON). */
static void inject_logged (const char *arn, const char *script, const char *log_config)
{
  _cleanup_free_ char *c = NULL;
  ck_assert_int_ge (asprintf (&c,
                              "[{\"name\":\"app\",\"image\":\"" IMAGE "\",\"essential\":true,"
                              "\"command\":[\"sh\",\"-c\",\"%s\"],\"logConfiguration\":%s}]",
                              script, log_config),
                    0);
  ts_eng_inject (&f, arn, "none", c);
}

/* state/shims/<task id>-app/<name>, where the task id is the ARN's last part. */
static char *shim_file (const char *task_id, const char *name)
{
  char *p = NULL;
  ck_assert_int_ge (asprintf (&p, "%s/shims/%s-app/%s", f.state, task_id, name), 0);
  return p;
}

static const char *container_reason (const char *arn)
{
  static char buf[1024];
  _cleanup_json_ cJSON *ob = ts_eng_outbox (&f, arn);
  ck_assert_int_ge (cJSON_GetArraySize (ob), 1);
  const cJSON *last = cJSON_GetArrayItem (ob, cJSON_GetArraySize (ob) - 1);
  const char *r = ts_json_str (ts_eng_container_of (last, "app"), "reason");
  snprintf (buf, sizeof buf, "%s", r ? r : "(none)");
  return buf;
}

START_TEST (test_json_file_max_size_and_max_file_rotate_the_container_log)
{
  const char *arn = ARN_PREFIX "jf1";
  ts_eng_open (&f);
  inject_logged (arn, "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -n 3000; echo last-line",
                 "{\"logDriver\":\"json-file\",\"options\":{\"max-size\":\"10k\","
                 "\"max-file\":\"3\"}}");
  ts_eng_run_until (&f, arn, "STOPPED", 20000);
  _cleanup_json_ cJSON *ob = ts_eng_outbox (&f, arn);
  ck_assert_int_eq (ts_eng_exit_code_of (cJSON_GetArrayItem (ob, 1), "app"), 0);
  const char *names[] = { "container.log", "container.log.1", "container.log.2" };
  for (size_t i = 0; i < 3; i++)
    {
      _cleanup_free_ char *p = shim_file ("jf1", names[i]);
      struct stat st;
      ck_assert_msg (stat (p, &st) == 0, "%s: %s", p, strerror (errno));
      ck_assert_msg (st.st_size > 0 && st.st_size <= 10240, "%s has %lld bytes", p,
                     (long long)st.st_size);
    }
  _cleanup_free_ char *p3 = shim_file ("jf1", "container.log.3");
  ck_assert_int_lt (access (p3, F_OK), 0);
  _cleanup_free_ char *p0 = shim_file ("jf1", "container.log");
  _cleanup_free_ char *text = ts_read_file (p0);
  ck_assert_ptr_nonnull (strstr (text, "\"log\":\"last-line\\n\""));
}
END_TEST

START_TEST (test_log_driver_none_runs_the_container_and_keeps_no_log)
{
  const char *arn = ARN_PREFIX "none1";
  ts_eng_open (&f);
  inject_logged (arn, "yes | head -c 3000000; exit 5", "{\"logDriver\":\"none\"}");
  ts_eng_run_until (&f, arn, "STOPPED", 20000);
  _cleanup_json_ cJSON *ob = ts_eng_outbox (&f, arn);
  ck_assert_int_eq (ts_eng_exit_code_of (cJSON_GetArrayItem (ob, 1), "app"), 5);
  _cleanup_free_ char *p = shim_file ("none1", "container.log");
  ck_assert_int_lt (access (p, F_OK), 0);
  _cleanup_free_ char *sp = shim_file ("none1", "state.json");
  ck_assert_int_eq (access (sp, F_OK), 0);
}
END_TEST

/* Each refused configuration stops its task with CannotStartContainerError naming the cause;
 * the engine then runs a good task. journald is not in the default
 * ECS_AVAILABLE_LOGGING_DRIVERS (json-file, none). */
START_TEST (test_refused_log_configurations_stop_the_task_with_the_reason)
{
  static const struct
  {
    const char *id, *config, *names;
  } cases[] = {
    { "bad1", "{\"logDriver\":\"awslogs\"}", "awslogs" },
    { "bad2", "{\"logDriver\":\"journald\"}", "ECS_AVAILABLE_LOGGING_DRIVERS" },
    { "bad3", "{\"logDriver\":\"json-file\",\"options\":{\"max-size\":\"10x\"}}", "max-size" },
    { "bad4", "{\"logDriver\":\"json-file\",\"options\":{\"max-file\":\"0\"}}", "max-file" },
    { "bad5", "{\"logDriver\":\"json-file\",\"options\":{\"labels\":\"a\"}}", "labels" },
    { "bad6", "{\"logDriver\":\"none\",\"options\":{\"tag\":\"x\"}}", "tag" },
  };
  ts_eng_open (&f);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    {
      _cleanup_free_ char *arn = ts_eng_cat (ARN_PREFIX, cases[i].id);
      inject_logged (arn, "exit 0", cases[i].config);
      ts_eng_run_until (&f, arn, "STOPPED", 10000);
      const char *reason = container_reason (arn);
      ck_assert_msg (strncmp (reason, "CannotStartContainerError: ", 27) == 0, "%s", reason);
      ck_assert_msg (strstr (reason, cases[i].names) != NULL, "%s: %s", cases[i].id, reason);
      _cleanup_free_ char *shimdir = shim_file (cases[i].id, "");
      ck_assert_int_lt (access (shimdir, F_OK), 0); /* refused before any shim */
    }
  const char *good = ARN_PREFIX "good1";
  inject_logged (good, "exit 0", "{\"logDriver\":\"json-file\"}");
  ts_eng_run_until (&f, good, "STOPPED", 10000);
  _cleanup_json_ cJSON *ob = ts_eng_outbox (&f, good);
  ck_assert_int_eq (ts_eng_exit_code_of (cJSON_GetArrayItem (ob, 1), "app"), 0);
}
END_TEST

START_TEST (test_journald_driver_sends_lines_with_the_tag_when_enabled)
{
  /* A socket of the test's stands in for the journal (BERTH_SHIM_JOURNAL_SOCKET, for tests). */
  _cleanup_free_ char *sock = ts_eng_cat (f.dir, "/journal.sock");
  int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ck_assert_int_ge (fd, 0);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  ck_assert_uint_lt (strlen (sock), sizeof sa.sun_path);
  strcpy (sa.sun_path, sock);
  ck_assert_int_eq (bind (fd, (struct sockaddr *)&sa, sizeof sa), 0);
  ck_assert_int_eq (setenv ("BERTH_SHIM_JOURNAL_SOCKET", sock, 1), 0);
  strv_free (f.cfg.logging_drivers);
  f.cfg.logging_drivers = NULL;
  ck_assert_int_eq (strv_append (&f.cfg.logging_drivers, "journald"), 0);
  const char *arn = ARN_PREFIX "jd1";
  ts_eng_open (&f);
  inject_logged (arn, "echo hello-journal",
                 "{\"logDriver\":\"journald\",\"options\":{\"tag\":\"web-tag\"}}");
  ts_eng_run_until (&f, arn, "STOPPED", 20000);
  char buf[65536];
  ssize_t n = recv (fd, buf, sizeof buf - 1, 0);
  ck_assert_int_gt (n, 0);
  buf[n] = '\0';
  ck_assert_msg (strstr (buf, "\nMESSAGE=hello-journal\n") != NULL, "%s", buf);
  ck_assert_msg (strstr (buf, "SYSLOG_IDENTIFIER=web-tag\n") != NULL, "%s", buf);
  ck_assert_msg (strstr (buf, "CONTAINER_NAME=app\n") != NULL, "%s", buf);
  ck_assert_msg (strstr (buf, "CONTAINER_ID=jd1-app\n") != NULL, "%s", buf);
  ck_assert_int_lt (recv (fd, buf, sizeof buf, 0), 0); /* one line, one datagram */
  close (fd);
}
END_TEST

int main (void)
{
  if (!ts_is_root ())
    {
      printf ("test_agent_engine_logs: needs root (containers, mounts)\n");
      return 0;
    }
  Suite *s = suite_create ("agent_engine_logs");
  TCase *tc = tcase_create ("logs");
  tcase_set_timeout (tc, 120);
  tcase_add_unchecked_fixture (tc, suite_setup, suite_teardown);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_json_file_max_size_and_max_file_rotate_the_container_log);
  tcase_add_test (tc, test_log_driver_none_runs_the_container_and_keeps_no_log);
  tcase_add_test (tc, test_refused_log_configurations_stop_the_task_with_the_reason);
  tcase_add_test (tc, test_journald_driver_sends_lines_with_the_tag_when_enabled);
  suite_add_tcase (s, tc);
  return s ? ts_run_suite (s) : 1;
}
