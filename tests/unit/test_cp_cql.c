/* Unit tests of the cluster query language (controlplane/cql.c): each subject and operator,
 * numeric versus string order, precedence, and syntax errors that name their position. */
#include "controlplane/cql.h"
#include "tests/support/support.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *const groups[] = { "family:web", "service:db" };

/* An instance with these attributes (a JSON array of {name, value}). */
static cp_sched_instance instance (cJSON **attrs, const char *json)
{
  *attrs = cJSON_Parse (json);
  ck_assert_ptr_nonnull (*attrs);
  cp_sched_instance in = { .arn = "arn:aws:ecs:us-east-1:000000000000:container-instance/c/1",
                           .ec2_instance_id = "i-0123456789abcdef0",
                           .placeable = true,
                           .attributes = *attrs,
                           .task_groups = groups,
                           .n_tasks = 2,
                           .registered_at = 1529360908, /* 2018-06-18T22:28:28Z */
                           .agent_version = "1.10.0" };
  return in;
}

#define STD_ATTRS                                                                                  \
  "[{\"name\":\"ecs.instance-type\",\"value\":\"t2.micro\"},"                                      \
  "{\"name\":\"ecs.availability-zone\",\"value\":\"us-east-1a\"},"                                 \
  "{\"name\":\"cores\",\"value\":\"16\"},{\"name\":\"flag\"},"                                     \
  "{\"name\":\"stack\",\"value\":\"prod\"}]"

/* Parses expr (which must be valid) and evaluates it on in. */
static bool eval_on (const cp_sched_instance *in, const char *placed, const char *expr)
{
  cp_cql *q = NULL;
  cp_fault fault = { 0 };
  ck_assert_msg (cp_cql_parse (expr, &q, &fault) == 0, "%s: %s", expr, fault.message);
  bool r = cp_cql_eval (q, in, placed);
  cp_cql_free (q);
  return r;
}

#define EXPECT(in, expr, want) ck_assert_msg (eval_on (in, NULL, expr) == (want), "%s", expr)

START_TEST (test_cql_attribute_comparisons_order_numbers_numerically)
{
  cJSON *attrs;
  cp_sched_instance in = instance (&attrs, STD_ATTRS);
  EXPECT (&in, "attribute:ecs.instance-type == t2.micro", true);
  EXPECT (&in, "attribute:ecs.instance-type == t2.small", false);
  EXPECT (&in, "attribute:ecs.instance-type != t2.small", true);
  /* "16" > "4" is false as strings and true as numbers: numbers win. */
  EXPECT (&in, "attribute:cores > 4", true);
  EXPECT (&in, "attribute:cores >= 16", true);
  EXPECT (&in, "attribute:cores < 16.5", true);
  EXPECT (&in, "attribute:cores <= 15", false);
  EXPECT (&in, "attribute:cores == 16.0", true);
  /* One side not a number: string order. */
  EXPECT (&in, "attribute:stack > pre", true);
  EXPECT (&in, "attribute:stack < 'prod2'", true);
  EXPECT (&in, "attribute:stack == \"prod\"", true);
  cJSON_Delete (attrs);
}
END_TEST

START_TEST (test_cql_exists_and_missing_attributes)
{
  cJSON *attrs;
  cp_sched_instance in = instance (&attrs, STD_ATTRS);
  EXPECT (&in, "attribute:flag exists", true); /* an attribute without a value exists */
  EXPECT (&in, "attribute:flag !exists", false);
  EXPECT (&in, "attribute:gpu exists", false);
  EXPECT (&in, "attribute:gpu !exists", true);
  /* A missing attribute satisfies no comparison, and every negated one. */
  EXPECT (&in, "attribute:gpu == x", false);
  EXPECT (&in, "attribute:gpu > 1", false);
  EXPECT (&in, "attribute:gpu != x", true);
  EXPECT (&in, "attribute:gpu not_in [x]", true);
  cJSON_Delete (attrs);
}
END_TEST

START_TEST (test_cql_regex_matches_the_whole_value)
{
  cJSON *attrs;
  cp_sched_instance in = instance (&attrs, STD_ATTRS);
  EXPECT (&in, "attribute:ecs.instance-type =~ t2.*", true);
  EXPECT (&in, "attribute:ecs.instance-type =~ g2.*", false);
  EXPECT (&in, "attribute:ecs.instance-type =~ micro", false); /* anchored */
  EXPECT (&in, "attribute:ecs.instance-type !~ g2.*", true);
  EXPECT (&in, "attribute:ecs.instance-type =~ '(t2|t3)\\.(micro|small)'", true);
  EXPECT (&in, "ec2InstanceId =~ i-0[0-9a-f]+", true);
  /* Quantifier characters inside brackets and a quantified group without one inside are fine. */
  EXPECT (&in, "attribute:ecs.instance-type =~ '[*+a-z0-9]+\\.(mi)+cro'", true);
  EXPECT (&in, "attribute:ecs.instance-type =~ 't[[:digit:]]{1,2}.micro'", true);
  EXPECT (&in,
          "attribute:ecs.instance-type =~ t[0-9,]{1,2}\\.(micro|nano) and attribute:flag exists",
          true);
  EXPECT (&in, "(attribute:ecs.instance-type =~ [)(]*t2.*)", true);
  cJSON_Delete (attrs);
}
END_TEST

START_TEST (test_cql_in_and_not_in_lists)
{
  cJSON *attrs;
  cp_sched_instance in = instance (&attrs, STD_ATTRS);
  EXPECT (&in, "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", true);
  EXPECT (&in, "attribute:ecs.availability-zone in [us-east-1b,us-east-1c]", false);
  EXPECT (&in, "attribute:ecs.availability-zone not_in [us-east-1b]", true);
  EXPECT (&in, "attribute:ecs.availability-zone !in [us-east-1a]", false);
  EXPECT (&in, "attribute:cores in [8, 16.0]", true);
  cJSON_Delete (attrs);
}
END_TEST

START_TEST (test_cql_and_binds_tighter_than_or_and_not_binds_tightest)
{
  cJSON *attrs;
  cp_sched_instance in = instance (&attrs, STD_ATTRS);
  /* true or (false and false) = true; (true or false) and false would be false. */
  EXPECT (&in, "attribute:stack == prod or attribute:stack == x and attribute:cores == 1", true);
  EXPECT (&in, "(attribute:stack == prod or attribute:stack == x) and attribute:cores == 1", false);
  /* (not true) or true = true; not (true or true) would be false. */
  EXPECT (&in, "not attribute:stack == prod or attribute:cores == 16", true);
  EXPECT (&in, "not (attribute:stack == prod or attribute:cores == 16)", false);
  EXPECT (&in, "!(attribute:stack == prod) || attribute:cores == 16 && attribute:flag exists",
          true);
  EXPECT (&in, "NOT(attribute:gpu exists) AND attribute:cores > 8", true);
  EXPECT (&in, "not not attribute:flag exists", true);
  EXPECT (&in, " ( ( attribute:flag exists ) ) ", true);
  cJSON_Delete (attrs);
}
END_TEST

START_TEST (test_cql_instance_subjects_task_group_and_agent)
{
  cJSON *attrs;
  cp_sched_instance in = instance (&attrs, "[]");
  EXPECT (&in, "ec2InstanceId == i-0123456789abcdef0", true);
  EXPECT (&in, "ec2InstanceId in [i-1, i-2]", false);
  EXPECT (&in, "task:group == service:db", true);
  EXPECT (&in, "task:group == service:other", false);
  EXPECT (&in, "task:group != service:db", false); /* no task of that group: false, one is */
  EXPECT (&in, "task:group != service:other", true);
  EXPECT (&in, "task:group =~ family:.*", true);
  EXPECT (&in, "task:group exists", true);
  EXPECT (&in, "agentConnected == true", true);
  EXPECT (&in, "agentVersion > 1.9.3", true); /* 1.10.0: part by part, not as text */
  EXPECT (&in, "agentVersion < 1.10.1", true);
  EXPECT (&in, "registeredAt > 2018-06-18", true);
  EXPECT (&in, "registeredAt == 2018-06-18T22:28:28Z", true);
  EXPECT (&in, "registeredAt == 2018-06-19T00:28:28+02:00", true);
  EXPECT (&in, "registeredAt < 2018-06-18T22:28:28", false);
  EXPECT (&in, "runningTasksCount == 2", true);
  EXPECT (&in, "runningTasksCount < 2", false);
  in.agent_disconnected = true;
  in.ec2_instance_id = NULL;
  in.n_tasks = 0;
  EXPECT (&in, "agentConnected == false", true);
  EXPECT (&in, "ec2InstanceId == i-0123456789abcdef0", false);
  EXPECT (&in, "task:group exists", false);
  /* Tasks this call placed count as the instance's. */
  ck_assert (eval_on (&in, "service:db", "task:group == service:db"));
  ck_assert (!eval_on (&in, NULL, "task:group == service:db"));
  cJSON_Delete (attrs);
}
END_TEST

/* Requires expr to be refused with a message containing want. */
static void expect_error (const char *expr, const char *want)
{
  cp_cql *q = NULL;
  cp_fault fault = { 0 };
  ck_assert_msg (cp_cql_parse (expr, &q, &fault) < 0, "accepted: %s", expr);
  ck_assert_str_eq (fault.type, "InvalidParameterException");
  ck_assert_int_eq (fault.status, 400);
  ck_assert_msg (strstr (fault.message, want), "%s: got \"%s\", want \"%s\"", expr, fault.message,
                 want);
}

START_TEST (test_cql_syntax_errors_name_the_position)
{
  expect_error ("", "position 1: empty expression");
  expect_error ("   ", "position 4: empty expression");
  expect_error ("foo == b", "position 1: unknown subject");
  expect_error ("== b", "position 1: expected a subject");
  expect_error ("attribute:a ==", "position 15: expected a value");
  expect_error ("attribute:a ~~ b", "position 13: expected an operator");
  expect_error ("attribute:a == b and", "position 21: expected a subject");
  expect_error ("attribute:a == b c", "position 18: unexpected text");
  expect_error ("(attribute:a exists", "position 20: expected ')'");
  expect_error ("attribute:a exists)", "position 19: unexpected text");
  expect_error ("attribute:a in x", "position 16: expected '['");
  expect_error ("attribute:a in [x, y", "position 21: expected ',' or ']'");
  expect_error ("attribute:a in [x,]", "position 19: expected a value");
  expect_error ("attribute:a == 'open", "position 16: unterminated");
  expect_error ("attribute:a =~ '(x'", "position 16: invalid regular expression");
  expect_error ("attribute:a =~ ((a{99}){99}){99}", "position 16: regular expression too costly");
  expect_error ("attribute:a =~ (a)\\1", "too costly");
  expect_error ("attribute:a =~ a++++++++++", "too costly");
  expect_error ("attribute:a =~ i*+", "too costly");
  expect_error ("attribute:a =~ ((i*)+)+", "too costly");
  expect_error ("attribute:a =~ (a|b*){2}", "too costly");
  expect_error ("attribute:a =~ a{2000}", "too costly");
  expect_error ("registeredAt > yesterday", "position 16: registeredAt takes a date");
  expect_error ("agentConnected > 1", "position 16: operator not valid");
  expect_error ("task:group >= a", "position 12: operator not valid");
  expect_error ("ec2InstanceId exists", "position 15: operator not valid");
  char deep[300] = { 0 };
  memset (deep, '(', 100);
  strcat (deep, "attribute:a exists");
  expect_error (deep, "nested too deeply");
  char *longer = malloc (CP_CQL_MAX_LEN + 2);
  memset (longer, 'a', CP_CQL_MAX_LEN + 1);
  longer[CP_CQL_MAX_LEN + 1] = '\0';
  expect_error (longer, "longer than 2000");
  free (longer);
}
END_TEST

static Suite *cql_suite (void)
{
  Suite *s = suite_create ("cp_cql");
  TCase *tc = tcase_create ("core");
  tcase_add_test (tc, test_cql_attribute_comparisons_order_numbers_numerically);
  tcase_add_test (tc, test_cql_exists_and_missing_attributes);
  tcase_add_test (tc, test_cql_regex_matches_the_whole_value);
  tcase_add_test (tc, test_cql_in_and_not_in_lists);
  tcase_add_test (tc, test_cql_and_binds_tighter_than_or_and_not_binds_tightest);
  tcase_add_test (tc, test_cql_instance_subjects_task_group_and_agent);
  tcase_add_test (tc, test_cql_syntax_errors_name_the_position);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (cql_suite ());
}
