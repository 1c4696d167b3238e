/* Unit tests of berth-control's in-memory id indexes (controlplane/model.c): tasks and instances
 * found by id through a hash of positions that stays right while other code removes, reorders
 * and rolls back entries of the model's arrays behind its back. */
#include "controlplane/model.h"
#include "tests/support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cp_ctx *ctx;

static void setup (void)
{
  berr *err = NULL;
  ck_assert_int_eq (cp_ctx_open (":memory:", "us-east-1", "000000000000", &ctx, &err), 0);
}

static void teardown (void)
{
  cp_ctx_free (ctx);
}

static cp_task *add_task (int n)
{
  cp_task *t = calloc (1, sizeof *t);
  ck_assert_ptr_nonnull (t);
  snprintf (t->id, sizeof t->id, "%032x", n);
  ck_assert_int_eq (cp_model_add_task (ctx->model, t), 0);
  return t;
}

/* Removes tasks whose number is a multiple of k, keeping order, as expiry does. */
static void compact (int k)
{
  cp_model *m = ctx->model;
  size_t kept = 0;
  for (size_t i = 0; i < m->n_task; i++)
    {
      cp_task *t = m->task[i];
      if (strtoul (t->id, NULL, 16) % (unsigned long)k == 0)
        cp_task_free (t);
      else
        m->task[kept++] = t;
    }
  m->n_task = kept;
}

static void assert_found (int n, bool present)
{
  char id[CP_ID_LEN + 1];
  snprintf (id, sizeof id, "%032x", n);
  cp_task *t = cp_task_by_id (ctx->model, id);
  if (!present)
    {
      ck_assert_ptr_null (t);
      ck_assert_int_eq (cp_task_pos (ctx->model, id), -1);
      return;
    }
  ck_assert_msg (t != NULL, "task %d not found", n);
  ck_assert_str_eq (t->id, id);
  ssize_t pos = cp_task_pos (ctx->model, id);
  ck_assert_int_ge (pos, 0);
  ck_assert_ptr_eq (ctx->model->task[pos], t);
}

START_TEST (test_tasks_are_found_by_id_after_expiry_and_rollback_behind_the_index)
{
  for (int i = 1; i <= 3000; i++)
    add_task (i);
  for (int i = 1; i <= 3000; i += 7)
    assert_found (i, true);
  assert_found (5000, false);
  compact (3); /* positions shift under the index */
  for (int i = 1; i <= 3000; i++)
    assert_found (i, i % 3 != 0);
  /* A RunTask rolled back drops the newest entries by hand; the id is gone, others stay. */
  add_task (4001);
  add_task (4002);
  ctx->model->n_task -= 2;
  cp_task_free (ctx->model->task[ctx->model->n_task]);
  cp_task_free (ctx->model->task[ctx->model->n_task + 1]);
  assert_found (4001, false);
  assert_found (4002, false);
  add_task (4003); /* reuses the position of 4001 */
  assert_found (4001, false);
  assert_found (4003, true);
  assert_found (3000, false);
  assert_found (2999, true);
}
END_TEST

/* Adds and removals without any lookup (stale entries pile up) neither fill the table (which
 * would make inserts spin forever) nor lose anything. */
START_TEST (test_churn_without_lookups_keeps_the_index_usable)
{
  for (int round = 0; round < 200; round++)
    {
      for (int i = 0; i < 50; i++)
        add_task (round * 50 + i + 1);
      compact (2); /* even numbers go */
    }
  ck_assert_uint_le (ctx->model->task_index.used * 2, ctx->model->task_index.cap);
  for (int n = 1; n <= 200 * 50; n += 13)
    assert_found (n, n % 2 != 0);
}
END_TEST

START_TEST (test_instances_are_found_by_id)
{
  for (int i = 1; i <= 600; i++)
    {
      cp_instance *ci = calloc (1, sizeof *ci);
      ck_assert_ptr_nonnull (ci);
      snprintf (ci->id, sizeof ci->id, "%032x", i * 31);
      ck_assert_int_eq (cp_model_add_instance (ctx->model, ci), 0);
    }
  for (int i = 1; i <= 600; i++)
    {
      char id[CP_ID_LEN + 1];
      snprintf (id, sizeof id, "%032x", i * 31);
      cp_instance *ci = cp_instance_by_id (ctx->model, id);
      ck_assert_ptr_nonnull (ci);
      ck_assert_str_eq (ci->id, id);
    }
  ck_assert_ptr_null (cp_instance_by_id (ctx->model, "nope"));
}
END_TEST

static Suite *index_suite (void)
{
  Suite *s = suite_create ("cp-model-index");
  TCase *tc = tcase_create ("index");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_tasks_are_found_by_id_after_expiry_and_rollback_behind_the_index);
  tcase_add_test (tc, test_churn_without_lookups_keeps_the_index_usable);
  tcase_add_test (tc, test_instances_are_found_by_id);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (index_suite ());
}
