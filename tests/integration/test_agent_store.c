/* Integration tests of berth-agent's SQLite store on a real file: what a process committed
 * survives its kill -9, an open transaction does not, the outbox keeps per-task order. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "tests/support/support.h"

#include "lib/strv.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ARN1 "arn:aws:ecs:us-east-1:000000000000:task/default/one"
#define ARN2 "arn:aws:ecs:us-east-1:000000000000:task/default/two"
#define INSTANCE "arn:aws:ecs:us-east-1:000000000000:container-instance/default/i-1"

static char *store_path (const char *dir)
{
  char *p = NULL;
  ck_assert_int_ge (asprintf (&p, "%s/agent.db", dir), 0);
  return p;
}

static void ok (int r, berr **err)
{
  ck_assert_msg (r == 0, "%s", *err ? (*err)->msg : "");
}

/* The child: commits a full picture of the agent's state, then opens a transaction it never
 * commits, tells the parent, and waits for its SIGKILL. */
static void child_writes_then_waits (const char *path, int ready_fd)
{
  agent_store *s;
  berr *err = NULL;
  agent_task_rec t = { .arn = ARN1,
                       .desired_status = "RUNNING",
                       .known_status = "PENDING",
                       .body = "{\"family\":\"web\"}" };
  agent_container_rec c = { .task_arn = ARN1,
                            .name = "app",
                            .runtime_id = "rt-1",
                            .known_status = "RUNNING",
                            .exit_code = -1,
                            .body = "{}" };
  int64_t id;
  if (agent_store_open (path, &s, &err) < 0
      || agent_store_set_identity (s, "default", INSTANCE, &err) < 0
      || agent_store_put_task (s, &t, &err) < 0 || agent_store_put_container (s, &c, &err) < 0
      || agent_store_put_attachment (s, "arn:att/1", ARN1, "ATTACHED", "{}", &err) < 0
      || agent_store_outbox_push (s, ARN1, "task", "{\"status\":\"PENDING\"}", &id, &err) < 0
      || agent_store_outbox_mark_sent (s, id, &err) < 0
      || agent_store_outbox_push (s, ARN1, "task", "{\"status\":\"RUNNING\"}", NULL, &err) < 0
      || agent_store_set_acked_seq (s, 41, &err) < 0 || agent_store_begin (s, &err) < 0)
    _exit (1);
  t.arn = ARN2;
  if (agent_store_put_task (s, &t, &err) < 0 || agent_store_set_acked_seq (s, 42, &err) < 0)
    _exit (1);
  if (write (ready_fd, "x", 1) != 1)
    _exit (1);
  pause ();
  _exit (2);
}

START_TEST (test_committed_state_survives_kill_9_and_open_transaction_does_not)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-store"), *path = store_path (dir);
  int p[2];
  ck_assert_int_eq (pipe2 (p, O_CLOEXEC), 0);
  pid_t pid = fork ();
  ck_assert_int_ge (pid, 0);
  if (pid == 0)
    child_writes_then_waits (path, p[1]);
  close (p[1]);
  char c;
  ck_assert_int_eq (read (p[0], &c, 1), 1);
  close (p[0]);
  ck_assert_int_eq (kill (pid, SIGKILL), 0);
  int status;
  ck_assert_int_eq (waitpid (pid, &status, 0), pid);
  ck_assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);

  agent_store *s;
  _cleanup_berr_ berr *err = NULL;
  ok (agent_store_open (path, &s, &err), &err);
  agent_identity id;
  ok (agent_store_get_identity (s, &id, &err), &err);
  ck_assert_str_eq (id.cluster, "default");
  ck_assert_str_eq (id.container_instance_arn, INSTANCE);
  agent_identity_clear (&id);
  agent_task_rec t;
  ok (agent_store_get_task (s, ARN1, &t, &err), &err);
  ck_assert_str_eq (t.desired_status, "RUNNING");
  ck_assert_str_eq (t.body, "{\"family\":\"web\"}");
  agent_task_rec_clear (&t);
  ck_assert_int_lt (agent_store_get_task (s, ARN2, &t, &err), 0);
  ck_assert_int_eq (berr_errno (err), ENOENT);
  berr_free (&err);
  agent_container_rec *cs;
  size_t n;
  ok (agent_store_list_containers (s, ARN1, &cs, &n, &err), &err);
  ck_assert_uint_eq (n, 1);
  ck_assert_str_eq (cs[0].runtime_id, "rt-1");
  ck_assert_int_eq (cs[0].exit_code, -1);
  agent_container_rec_clear (&cs[0]);
  free (cs);
  _cleanup_free_ char *att = NULL;
  ok (agent_store_get_attachment_status (s, "arn:att/1", &att, &err), &err);
  ck_assert_str_eq (att, "ATTACHED");
  agent_outbox_entry e;
  ok (agent_store_outbox_next (s, ARN1, &e, &err), &err);
  ck_assert_str_eq (e.body, "{\"status\":\"RUNNING\"}");
  agent_outbox_entry_clear (&e);
  int64_t seq;
  ok (agent_store_get_acked_seq (s, &seq, &err), &err);
  ck_assert_int_eq (seq, 41);
  agent_store_close (s);
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_outbox_is_ordered_per_task_and_sent_entries_never_return)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-store"), *path = store_path (dir);
  agent_store *s;
  _cleanup_berr_ berr *err = NULL;
  int64_t a1, b1, a2;
  ok (agent_store_open (path, &s, &err), &err);
  ok (agent_store_outbox_push (s, ARN2, "task", "b1", &b1, &err), &err);
  ok (agent_store_outbox_push (s, ARN1, "task", "a1", &a1, &err), &err);
  ok (agent_store_outbox_push (s, ARN1, "attachment", "a2", &a2, &err), &err);
  ck_assert (b1 < a1 && a1 < a2);
  char **tasks;
  ok (agent_store_outbox_tasks (s, &tasks, &err), &err);
  ck_assert_str_eq (tasks[0], ARN2);
  ck_assert_str_eq (tasks[1], ARN1);
  ck_assert_ptr_null (tasks[2]);
  strv_free (tasks);
  agent_outbox_entry e;
  ok (agent_store_outbox_next (s, ARN1, &e, &err), &err);
  ck_assert_int_eq (e.id, a1);
  ck_assert_str_eq (e.kind, "task");
  agent_outbox_entry_clear (&e);
  ok (agent_store_outbox_mark_sent (s, a1, &err), &err);
  agent_store_close (s);

  ok (agent_store_open (path, &s, &err), &err);
  ok (agent_store_outbox_next (s, ARN1, &e, &err), &err);
  ck_assert_int_eq (e.id, a2);
  ck_assert_str_eq (e.body, "a2");
  agent_outbox_entry_clear (&e);
  ok (agent_store_outbox_mark_sent (s, a2, &err), &err);
  ck_assert_int_lt (agent_store_outbox_next (s, ARN1, &e, &err), 0);
  ck_assert_int_eq (berr_errno (err), ENOENT);
  berr_free (&err);
  ck_assert_int_lt (agent_store_outbox_mark_sent (s, 9999, &err), 0);
  berr_free (&err);
  agent_store_close (s);
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_tasks_update_in_place_and_delete_their_containers)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-store"), *path = store_path (dir);
  agent_store *s;
  _cleanup_berr_ berr *err = NULL;
  ok (agent_store_open (path, &s, &err), &err);
  agent_task_rec t
      = { .arn = ARN2, .desired_status = "RUNNING", .known_status = "NONE", .body = "{}" };
  ok (agent_store_put_task (s, &t, &err), &err);
  t.arn = ARN1;
  ok (agent_store_put_task (s, &t, &err), &err);
  t.desired_status = "STOPPED";
  ok (agent_store_put_task (s, &t, &err), &err);
  agent_container_rec c = {
    .task_arn = ARN1, .name = "app", .known_status = "STOPPED", .exit_code = 137, .body = "{}"
  };
  ok (agent_store_put_container (s, &c, &err), &err);
  agent_task_rec *all;
  size_t n;
  ok (agent_store_list_tasks (s, &all, &n, &err), &err);
  ck_assert_uint_eq (n, 2);
  ck_assert_str_eq (all[0].arn, ARN1);
  ck_assert_str_eq (all[0].desired_status, "STOPPED");
  for (size_t i = 0; i < n; i++)
    agent_task_rec_clear (&all[i]);
  free (all);
  agent_container_rec *cs;
  ok (agent_store_list_containers (s, ARN1, &cs, &n, &err), &err);
  ck_assert_uint_eq (n, 1);
  ck_assert_int_eq (cs[0].exit_code, 137);
  ck_assert_ptr_null (cs[0].runtime_id);
  agent_container_rec_clear (&cs[0]);
  free (cs);
  ok (agent_store_delete_task (s, ARN1, &err), &err);
  ok (agent_store_list_containers (s, ARN1, &cs, &n, &err), &err);
  ck_assert_uint_eq (n, 0);
  free (cs);
  agent_store_close (s);
  ts_rmtree (dir);
}
END_TEST

START_TEST (test_store_refuses_a_schema_newer_than_the_binary)
{
  _cleanup_free_ char *dir = ts_mkdtemp ("agent-store"), *path = store_path (dir);
  agent_store *s;
  _cleanup_berr_ berr *err = NULL;
  int v;
  ok (agent_store_open (path, &s, &err), &err);
  ok (agent_store_schema_version (s, &v, &err), &err);
  ck_assert_int_eq (v, 1);
  agent_store_close (s);
  ts_sh_ok ("sqlite3 %s 'UPDATE schema_version SET version = 99'", path);
  ck_assert_int_lt (agent_store_open (path, &s, &err), 0);
  ck_assert_ptr_nonnull (strstr (err->msg, "newer than this berth-agent"));
  ts_rmtree (dir);
}
END_TEST

int main (void)
{
  Suite *s = suite_create ("agent-store");
  TCase *tc = tcase_create ("core");
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_committed_state_survives_kill_9_and_open_transaction_does_not);
  tcase_add_test (tc, test_outbox_is_ordered_per_task_and_sent_entries_never_return);
  tcase_add_test (tc, test_tasks_update_in_place_and_delete_their_containers);
  tcase_add_test (tc, test_store_refuses_a_schema_newer_than_the_binary);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
