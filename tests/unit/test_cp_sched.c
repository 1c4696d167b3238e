/* Unit tests of the placement engine (controlplane/sched.c) on simulated container instances:
 * each strategy and constraint, chains, exhaustion of every resource, draining, many copies. */
#include "controlplane/sched.h"
#include "tests/support/support.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INST 128

/* The simulated cluster: instance i has ARN ".../ci-i" and the attributes given to it. */
typedef struct fixture
{
  cp_sched_instance in[MAX_INST];
  char arn[MAX_INST][80];
  cJSON *attrs[MAX_INST];
  size_t n;
} fixture;

static void fx_free (fixture *fx)
{
  for (size_t i = 0; i < fx->n; i++)
    cJSON_Delete (fx->attrs[i]);
}

/* Adds a placeable instance with cpu units, memory MiB and 4 ENIs; returns it for edits. */
static cp_sched_instance *fx_add (fixture *fx, int64_t cpu, int64_t memory, const char *attrs)
{
  size_t i = fx->n++;
  ck_assert_uint_lt (i, MAX_INST);
  snprintf (fx->arn[i], sizeof fx->arn[i],
            "arn:aws:ecs:us-east-1:000000000000:container-instance/c/ci-%zu", i);
  fx->attrs[i] = cJSON_Parse (attrs ? attrs : "[]");
  ck_assert_ptr_nonnull (fx->attrs[i]);
  fx->in[i] = (cp_sched_instance){ .arn = fx->arn[i],
                                   .placeable = true,
                                   .cpu = cpu,
                                   .memory = memory,
                                   .eni = 4,
                                   .attributes = fx->attrs[i] };
  return &fx->in[i];
}

static cp_sched_task task_of (int64_t cpu, int64_t memory)
{
  cp_sched_task t = { .cpu = cpu, .memory = memory, .group = "family:web", .seed = 7 };
  return t;
}

/* Places count copies (count <= 64); returns how many were placed. */
static int place (fixture *fx, const cp_sched_task *t, int count, int *choices,
                  cp_sched_failure *failures)
{
  cp_fault fault = { 0 };
  int r = cp_sched_place (fx->in, fx->n, t, count, choices, failures, &fault);
  ck_assert_msg (r >= 0, "place: %s", fault.message);
  return r;
}

static cJSON *json (const char *s)
{
  cJSON *j = cJSON_Parse (s);
  ck_assert_ptr_nonnull (j);
  return j;
}

/* task_of with a placement strategy and constraints (JSON texts, NULL for none); task_clear
 * frees them. */
static cp_sched_task task_with (int64_t cpu, int64_t memory, const char *strategy,
                                const char *constraints)
{
  cp_sched_task t = task_of (cpu, memory);
  t.strategy = strategy ? json (strategy) : NULL;
  t.constraints = constraints ? json (constraints) : NULL;
  return t;
}

static void task_clear (cp_sched_task *t)
{
  cJSON_Delete ((cJSON *)t->strategy);
  cJSON_Delete ((cJSON *)t->constraints);
  t->strategy = t->constraints = NULL;
}

#define AZ(z) "[{\"name\":\"ecs.availability-zone\",\"value\":\"" z "\"}]"

START_TEST (test_binpack_picks_the_instance_with_least_remaining_that_fits)
{
  fixture fx = { 0 };
  int c[4];
  cp_sched_failure f[4];
  fx_add (&fx, 4096, 1000, NULL);
  fx_add (&fx, 4096, 300, NULL); /* least memory but too little */
  fx_add (&fx, 4096, 600, NULL);
  cp_sched_task t = task_with (0, 400, "[{\"type\":\"binpack\",\"field\":\"memory\"}]", NULL);
  ck_assert_int_eq (place (&fx, &t, 1, c, f), 1);
  ck_assert_int_eq (c[0], 2);
  task_clear (&t);
  fx.in[0].cpu = 600, fx.in[1].cpu = 100, fx.in[2].cpu = 2000;
  t = task_with (500, 0, "[{\"type\":\"binpack\",\"field\":\"cpu\"}]", NULL);
  ck_assert_int_eq (place (&fx, &t, 1, c, f), 1);
  ck_assert_int_eq (c[0], 0);
  task_clear (&t);
  fx_free (&fx);
}
END_TEST

START_TEST (test_binpack_fills_one_instance_before_the_next)
{
  fixture fx = { 0 };
  int c[5];
  cp_sched_failure f[5];
  fx_add (&fx, 4096, 1000, NULL);
  fx_add (&fx, 4096, 1000, NULL);
  cp_sched_task t = task_with (0, 300, "[{\"type\":\"binpack\",\"field\":\"memory\"}]", NULL);
  ck_assert_int_eq (place (&fx, &t, 5, c, f), 5);
  /* The first copy picks either (a tie), the next two follow it, then the other fills. */
  ck_assert_int_eq (c[1], c[0]);
  ck_assert_int_eq (c[2], c[0]);
  ck_assert_int_eq (c[3], 1 - c[0]);
  ck_assert_int_eq (c[4], 1 - c[0]);
  task_clear (&t);
  fx_free (&fx);
}
END_TEST

START_TEST (test_spread_instance_balances_the_tasks_of_the_group)
{
  fixture fx = { 0 };
  int c[3], per[3] = { 0 };
  cp_sched_failure f[3];
  static const char *const mine[] = { "family:web", "family:web" };
  static const char *const others[] = { "family:db", "family:db", "family:db", "family:db" };
  cp_sched_instance *a = fx_add (&fx, 4096, 4096, NULL);
  a->task_groups = mine, a->n_tasks = 2;
  cp_sched_instance *b = fx_add (&fx, 4096, 4096, NULL);
  b->task_groups = others, b->n_tasks = 4; /* another group's tasks do not count */
  fx_add (&fx, 4096, 4096, NULL);
  cp_sched_task t = task_with (0, 10, "[{\"type\":\"spread\",\"field\":\"instanceId\"}]", NULL);
  ck_assert_int_eq (place (&fx, &t, 3, c, f), 3);
  for (int i = 0; i < 3; i++)
    per[c[i]]++;
  /* Loads 2,0,0 -> 2,1,1 -> 2,2,1 or 2,1,2: the first instance gets none. */
  ck_assert_int_eq (per[0], 0);
  ck_assert_int_eq (per[1] + per[2], 3);
  ck_assert_int_ge (per[1], 1);
  ck_assert_int_ge (per[2], 1);
  task_clear (&t);
  fx_free (&fx);
}
END_TEST

START_TEST (test_interned_groups_are_counted_by_pointer)
{
  fixture fx = { 0 };
  int c[2];
  cp_sched_failure f[2];
  static const char web[] = "family:web", db[] = "family:db";
  static const char *const mine[] = { web, web, db };
  static const char *const others[] = { db };
  cp_sched_instance *a = fx_add (&fx, 4096, 4096, NULL);
  a->task_groups = mine, a->n_tasks = 3;
  cp_sched_instance *b = fx_add (&fx, 4096, 4096, NULL);
  b->task_groups = others, b->n_tasks = 1;
  cp_sched_task t = task_of (10, 10);
  t.group = web, t.groups_interned = true;
  t.strategy = json ("[{\"type\":\"spread\",\"field\":\"instanceId\"}]");
  ck_assert_int_eq (place (&fx, &t, 2, c, f), 2);
  ck_assert_int_eq (c[0], 1); /* a has two of web's tasks, b none */
  ck_assert_int_eq (c[1], 1);
  task_clear (&t);
  fx_free (&fx);
}
END_TEST

START_TEST (test_spread_attribute_balances_across_zones)
{
  fixture fx = { 0 };
  int c[9], zone[4] = { 0 };
  cp_sched_failure f[9];
  fx_add (&fx, 8192, 8192, AZ ("us-east-1a"));
  fx_add (&fx, 8192, 8192, AZ ("us-east-1a"));
  fx_add (&fx, 8192, 8192, AZ ("us-east-1b"));
  fx_add (&fx, 8192, 8192, AZ ("us-east-1c"));
  fx_add (&fx, 8192, 8192, NULL); /* no zone: a bucket of its own */
  static const int zone_of[] = { 0, 0, 1, 2, 3 };
  cp_sched_task t = task_with (
      10, 10, "[{\"type\":\"spread\",\"field\":\"attribute:ecs.availability-zone\"}]", NULL);
  ck_assert_int_eq (place (&fx, &t, 8, c, f), 8);
  for (int i = 0; i < 8; i++)
    zone[zone_of[c[i]]]++;
  for (int z = 0; z < 4; z++)
    ck_assert_int_eq (zone[z], 2);
  task_clear (&t);
  fx_free (&fx);
}
END_TEST

START_TEST (test_strategies_apply_in_order_as_tie_breakers)
{
  fixture fx = { 0 };
  int c[3];
  cp_sched_failure f[3];
  fx_add (&fx, 4096, 900, AZ ("a"));
  fx_add (&fx, 4096, 500, AZ ("a"));
  fx_add (&fx, 4096, 2000, AZ ("b"));
  fx_add (&fx, 4096, 3000, AZ ("b"));
  cp_sched_task t
      = task_with (0, 100,
                   "[{\"type\":\"spread\",\"field\":\"attribute:ecs.availability-zone\"},"
                   "{\"type\":\"binpack\",\"field\":\"memory\"}]",
                   NULL);
  ck_assert_int_eq (place (&fx, &t, 3, c, f), 3);
  /* Zones tie: least memory overall (zone a's 500); then zone b's least (2000); then a tie
   * again, and instance 1 still has the least. */
  ck_assert_int_eq (c[0], 1);
  ck_assert_int_eq (c[1], 2);
  ck_assert_int_eq (c[2], 1);
  task_clear (&t);
  /* The other order: binpack first leaves no tie for spread to break. */
  t.strategy = json ("[{\"type\":\"binpack\",\"field\":\"memory\"},"
                     "{\"type\":\"spread\",\"field\":\"attribute:ecs.availability-zone\"}]");
  ck_assert_int_eq (place (&fx, &t, 3, c, f), 3);
  ck_assert_int_eq (c[0], 1);
  ck_assert_int_eq (c[1], 1);
  ck_assert_int_eq (c[2], 1);
  task_clear (&t);
  fx_free (&fx);
}
END_TEST

START_TEST (test_random_is_deterministic_for_a_seed_and_varies_with_it)
{
  fixture fx = { 0 };
  int c1[10], c2[10], first[64];
  cp_sched_failure f[10];
  for (int i = 0; i < 100; i++)
    fx_add (&fx, 4096, 4096, NULL);
  cp_sched_task t = task_of (100, 100);
  t.seed = 42;
  /* No strategy: RunTask's default, random. */
  ck_assert_int_eq (place (&fx, &t, 10, c1, f), 10);
  ck_assert_int_eq (place (&fx, &t, 10, c2, f), 10);
  ck_assert_mem_eq (c1, c2, sizeof c1);
  t.strategy = json ("[{\"type\":\"random\"}]");
  ck_assert_int_eq (place (&fx, &t, 10, c2, f), 10);
  ck_assert_mem_eq (c1, c2, sizeof c1);
  int distinct = 0;
  for (uint64_t s = 0; s < 64; s++)
    {
      t.seed = s;
      place (&fx, &t, 1, &first[s], f);
      bool seen = false;
      for (uint64_t j = 0; j < s; j++)
        seen |= first[j] == first[s];
      distinct += !seen;
    }
  ck_assert_int_ge (distinct, 20);
  task_clear (&t);
  fx_free (&fx);
}
END_TEST

START_TEST (test_exhausted_cpu_and_memory_fail_with_ecs_reasons)
{
  fixture fx = { 0 };
  int c[3];
  cp_sched_failure f[3];
  fx_add (&fx, 1024, 512, NULL);
  fx_add (&fx, 1024, 512, NULL);
  cp_sched_task t = task_of (2048, 10);
  ck_assert_int_eq (place (&fx, &t, 1, c, f), 0);
  ck_assert_int_eq (c[0], -1);
  ck_assert_str_eq (f[0].reason, "RESOURCE:CPU");
  ck_assert_str_eq (f[0].arn, fx.arn[0]);
  t = task_of (10, 1024);
  ck_assert_int_eq (place (&fx, &t, 1, c, f), 0);
  ck_assert_str_eq (f[0].reason, "RESOURCE:MEMORY");
  /* Copies of one call account for each other: two fit, the third does not. */
  t = task_of (0, 500);
  ck_assert_int_eq (place (&fx, &t, 3, c, f), 2);
  ck_assert_int_ne (c[0], c[1]);
  ck_assert_int_eq (c[2], -1);
  ck_assert_str_eq (f[2].reason, "RESOURCE:MEMORY");
  fx_free (&fx);
}
END_TEST

START_TEST (test_tcp_and_udp_host_ports_conflict_separately)
{
  fixture fx = { 0 };
  int c[2];
  cp_sched_failure f[2];
  static const uint16_t tcp80[] = { 80 }, udp53[] = { 53 }, tcp_used[] = { 22, 80 };
  cp_sched_instance *a = fx_add (&fx, 4096, 4096, NULL);
  a->ports_tcp = tcp_used, a->n_ports_tcp = 2;
  cp_sched_instance *b = fx_add (&fx, 4096, 4096, NULL);
  b->ports_udp = udp53, b->n_ports_udp = 1;
  cp_sched_task t = task_of (10, 10);
  t.ports_tcp = tcp80, t.n_ports_tcp = 1;
  ck_assert_int_eq (place (&fx, &t, 2, c, f), 1);
  ck_assert_int_eq (c[0], 1);
  ck_assert_str_eq (f[1].reason, "RESOURCE:PORTS"); /* the copy on 1 took 80 there too */
  t = task_of (10, 10);
  t.ports_udp = udp53, t.n_ports_udp = 1;
  ck_assert_int_eq (place (&fx, &t, 2, c, f), 1);
  ck_assert_int_eq (c[0], 0); /* tcp 80 in use does not block udp 53 */
  ck_assert_str_eq (f[1].reason, "RESOURCE:PORTS_UDP");
  /* Dynamic host ports (none static) stack on one instance. */
  t = task_with (10, 10, "[{\"type\":\"binpack\",\"field\":\"memory\"}]", NULL);
  a->memory = 1000;
  ck_assert_int_eq (place (&fx, &t, 2, c, f), 2);
  ck_assert_int_eq (c[0], 0);
  ck_assert_int_eq (c[1], 0);
  task_clear (&t);
  fx_free (&fx);
}
END_TEST

START_TEST (test_awsvpc_tasks_consume_enis)
{
  fixture fx = { 0 };
  int c[4];
  cp_sched_failure f[4];
  fx_add (&fx, 4096, 4096, NULL)->eni = 2;
  fx_add (&fx, 4096, 4096, NULL)->eni = 0;
  cp_sched_task t = task_of (10, 10);
  t.eni = true;
  ck_assert_int_eq (place (&fx, &t, 3, c, f), 2);
  ck_assert_int_eq (c[0], 0);
  ck_assert_int_eq (c[1], 0);
  ck_assert_str_eq (f[2].reason, "RESOURCE:ENI");
  t.eni = false; /* bridge tasks need none */
  ck_assert_int_eq (place (&fx, &t, 4, c, f), 4);
  fx_free (&fx);
}
END_TEST

START_TEST (test_draining_instances_get_no_tasks)
{
  fixture fx = { 0 };
  int c[3];
  cp_sched_failure f[3];
  fx_add (&fx, 100000, 100000, NULL)->placeable = false;
  fx_add (&fx, 1024, 1024, NULL);
  cp_sched_task t = task_with (100, 100,
                               "[{\"type\":\"binpack\",\"field\":\"memory\"},"
                               "{\"type\":\"spread\",\"field\":\"instanceId\"}]",
                               NULL);
  ck_assert_int_eq (place (&fx, &t, 3, c, f), 3);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq (c[i], 1);
  fx.in[1].placeable = false;
  ck_assert_int_eq (place (&fx, &t, 1, c, f), 0);
  ck_assert_str_eq (f[0].reason, "AGENT");
  /* No instance at all: the same reason, no ARN. */
  ck_assert_int_eq (cp_sched_place (fx.in, 0, &t, 1, c, f, &(cp_fault){ 0 }), 0);
  ck_assert_str_eq (f[0].reason, "AGENT");
  ck_assert_ptr_null (f[0].arn);
  task_clear (&t);
  fx_free (&fx);
}
END_TEST

START_TEST (test_distinct_instance_counts_running_tasks_and_this_call)
{
  fixture fx = { 0 };
  int c[3];
  cp_sched_failure f[3];
  static const char *const mine[] = { "family:web" }, *const others[] = { "family:db" };
  cp_sched_instance *a = fx_add (&fx, 4096, 4096, NULL);
  a->task_groups = mine, a->n_tasks = 1;
  cp_sched_instance *b = fx_add (&fx, 4096, 4096, NULL);
  b->task_groups = others, b->n_tasks = 1;
  fx_add (&fx, 4096, 4096, NULL);
  cp_sched_task t = task_with (10, 10, NULL, "[{\"type\":\"distinctInstance\"}]");
  ck_assert_int_eq (place (&fx, &t, 3, c, f), 2);
  ck_assert_int_ne (c[0], 0);
  ck_assert_int_ne (c[1], 0);
  ck_assert_int_ne (c[0], c[1]);
  ck_assert_int_eq (c[2], -1);
  ck_assert_str_eq (f[2].reason, "MissingAttribute");
  task_clear (&t);
  fx_free (&fx);
}
END_TEST

START_TEST (test_member_of_keeps_only_matching_instances)
{
  fixture fx = { 0 };
  int c[6];
  cp_sched_failure f[6];
  fx_add (&fx, 4096, 4096, "[{\"name\":\"ecs.instance-type\",\"value\":\"t2.micro\"}]");
  fx_add (&fx, 4096, 4096, "[{\"name\":\"ecs.instance-type\",\"value\":\"t3.large\"}]");
  fx_add (&fx, 4096, 4096, "[{\"name\":\"ecs.instance-type\",\"value\":\"t3.small\"}]");
  cp_sched_task t
      = task_with (10, 10, NULL,
                   "[{\"type\":\"memberOf\",\"expression\":"
                   "\"attribute:ecs.instance-type =~ t3.* and not(attribute:ecs.instance-type"
                   " == t3.large)\"}]");
  ck_assert_int_eq (place (&fx, &t, 6, c, f), 6);
  for (int i = 0; i < 6; i++)
    ck_assert_int_eq (c[i], 2);
  task_clear (&t);
  t.constraints = json ("[{\"type\":\"memberOf\",\"expression\":\"attribute:gpu exists\"}]");
  ck_assert_int_eq (place (&fx, &t, 1, c, f), 0);
  ck_assert_str_eq (f[0].reason, "MissingAttribute");
  ck_assert_ptr_nonnull (f[0].arn);
  task_clear (&t);
  fx_free (&fx);
}
END_TEST

START_TEST (test_binpack_skips_the_best_instances_a_constraint_refuses)
{
  fixture fx = { 0 };
  int c[3];
  cp_sched_failure f[3];
  fx_add (&fx, 4096, 150, "[{\"name\":\"tier\",\"value\":\"spot\"}]");
  fx_add (&fx, 4096, 150, "[{\"name\":\"tier\",\"value\":\"spot\"}]");
  fx_add (&fx, 4096, 350, "[{\"name\":\"tier\",\"value\":\"ondemand\"}]");
  fx_add (&fx, 4096, 250, "[{\"name\":\"tier\",\"value\":\"ondemand\"}]");
  fx_add (&fx, 4096, 50, "[{\"name\":\"tier\",\"value\":\"ondemand\"}]"); /* too small */
  cp_sched_task t
      = task_with (0, 100, "[{\"type\":\"binpack\",\"field\":\"memory\"}]",
                   "[{\"type\":\"memberOf\",\"expression\":\"attribute:tier != spot\"}]");
  /* 250 (instance 3) twice, then 350 (instance 2): the spot ones rank best and are skipped. */
  ck_assert_int_eq (place (&fx, &t, 3, c, f), 3);
  ck_assert_int_eq (c[0], 3);
  ck_assert_int_eq (c[1], 3);
  ck_assert_int_eq (c[2], 2);
  task_clear (&t);
  fx_free (&fx);
}
END_TEST

START_TEST (test_member_of_task_group_sees_copies_placed_by_this_call)
{
  fixture fx = { 0 };
  int c[3];
  cp_sched_failure f[3];
  fx_add (&fx, 4096, 4096, NULL);
  fx_add (&fx, 4096, 4096, NULL);
  cp_sched_task t = task_with (
      10, 10, NULL, "[{\"type\":\"memberOf\",\"expression\":\"not(task:group == family:web)\"}]");
  ck_assert_int_eq (place (&fx, &t, 3, c, f), 2);
  ck_assert_int_ne (c[0], c[1]);
  ck_assert_str_eq (f[2].reason, "MissingAttribute");
  task_clear (&t);
  fx_free (&fx);
}
END_TEST

START_TEST (test_failure_names_the_instance_that_came_closest)
{
  fixture fx = { 0 };
  int c[1];
  cp_sched_failure f[1];
  fx_add (&fx, 4096, 4096, NULL)->placeable = false;
  fx_add (&fx, 10, 4096, NULL);
  fx_add (&fx, 4096, 4096, NULL);
  cp_sched_task t = task_with (100, 100, NULL,
                               "[{\"type\":\"memberOf\",\"expression\":\"attribute:gpu exists\"}]");
  ck_assert_int_eq (place (&fx, &t, 1, c, f), 0);
  ck_assert_str_eq (f[0].reason, "MissingAttribute");
  ck_assert_str_eq (f[0].arn, fx.arn[2]);
  fx.in[2].cpu = 50;
  ck_assert_int_eq (place (&fx, &t, 1, c, f), 0);
  ck_assert_str_eq (f[0].reason, "RESOURCE:CPU");
  ck_assert_str_eq (f[0].arn, fx.arn[1]); /* the first of the two */
  task_clear (&t);
  fx_free (&fx);
}
END_TEST

START_TEST (test_many_copies_fill_the_cluster_exactly)
{
  fixture fx = { 0 };
  int c[64], per[10] = { 0 };
  cp_sched_failure f[64];
  for (int i = 0; i < 10; i++)
    fx_add (&fx, 10240, 1000, NULL);
  cp_sched_task t = task_with (256, 250, "[{\"type\":\"spread\",\"field\":\"instanceId\"}]", NULL);
  ck_assert_int_eq (place (&fx, &t, 45, c, f), 40);
  for (int i = 0; i < 40; i++)
    per[c[i]]++;
  for (int i = 0; i < 10; i++)
    ck_assert_int_eq (per[i], 4);
  for (int i = 40; i < 45; i++)
    {
      ck_assert_int_eq (c[i], -1);
      ck_assert_str_eq (f[i].reason, "RESOURCE:MEMORY");
    }
  task_clear (&t);
  fx_free (&fx);
}
END_TEST

/* Requires strategy/constraints to be refused by validate and place, with want in the message. */
static void expect_invalid (const char *strategy, const char *constraints, const char *want)
{
  cJSON *s = strategy ? json (strategy) : NULL, *k = constraints ? json (constraints) : NULL;
  cp_fault fault = { 0 };
  ck_assert_int_eq (cp_sched_validate (s, k, &fault), -1);
  ck_assert_str_eq (fault.type, "InvalidParameterException");
  ck_assert_msg (strstr (fault.message, want), "got \"%s\", want \"%s\"", fault.message, want);
  fixture fx = { 0 };
  int c[1];
  cp_sched_failure f[1];
  fx_add (&fx, 1, 1, NULL);
  cp_sched_task t = task_of (0, 0);
  t.strategy = s, t.constraints = k;
  ck_assert_int_eq (cp_sched_place (fx.in, fx.n, &t, 1, c, f, &fault), -1);
  cJSON_Delete (s);
  cJSON_Delete (k);
  fx_free (&fx);
}

START_TEST (test_invalid_strategies_and_constraints_are_refused)
{
  cp_fault fault = { 0 };
  cJSON *ok_s = json ("[{\"type\":\"spread\",\"field\":\"host\"},{\"type\":\"binpack\",\"field\":"
                      "\"MEMORY\"},{\"type\":\"random\",\"field\":\"ignored\"}]");
  cJSON *ok_c = json ("[{\"type\":\"distinctInstance\"},{\"type\":\"memberOf\",\"expression\":"
                      "\"attribute:ecs.os-type == linux\"}]");
  ck_assert_int_eq (cp_sched_validate (ok_s, ok_c, &fault), 0);
  ck_assert_int_eq (cp_sched_validate (NULL, NULL, &fault), 0);
  cJSON_Delete (ok_s);
  cJSON_Delete (ok_c);
  expect_invalid ("[{\"type\":\"pack\"}]", NULL, "Invalid placement strategy type: 'pack'");
  expect_invalid ("[{\"field\":\"cpu\"}]", NULL, "must have a type");
  expect_invalid ("[{\"type\":\"binpack\",\"field\":\"disk\"}]", NULL, "binpack");
  expect_invalid ("[{\"type\":\"binpack\"}]", NULL, "binpack");
  expect_invalid ("[{\"type\":\"spread\"}]", NULL, "spread");
  expect_invalid ("[{\"type\":\"spread\",\"field\":\"attribute:\"}]", NULL, "spread");
  expect_invalid ("[{\"type\":\"random\"},{\"type\":\"random\"},{\"type\":\"random\"},"
                  "{\"type\":\"random\"},{\"type\":\"random\"},{\"type\":\"random\"}]",
                  NULL, "At most 5");
  expect_invalid ("{}", NULL, "must be a list");
  expect_invalid (NULL, "[{\"type\":\"distinctInstance\",\"expression\":\"x\"}]", "no expression");
  expect_invalid (NULL, "[{\"type\":\"memberOf\"}]", "requires an expression");
  expect_invalid (NULL, "[{\"type\":\"sameZone\"}]", "Invalid placement constraint type");
  expect_invalid (NULL, "[{\"type\":\"memberOf\",\"expression\":\"attribute:a ==\"}]",
                  "position 15");
}
END_TEST

static Suite *sched_suite (void)
{
  Suite *s = suite_create ("cp_sched");
  TCase *tc = tcase_create ("core");
  tcase_add_test (tc, test_binpack_picks_the_instance_with_least_remaining_that_fits);
  tcase_add_test (tc, test_binpack_fills_one_instance_before_the_next);
  tcase_add_test (tc, test_spread_instance_balances_the_tasks_of_the_group);
  tcase_add_test (tc, test_interned_groups_are_counted_by_pointer);
  tcase_add_test (tc, test_spread_attribute_balances_across_zones);
  tcase_add_test (tc, test_strategies_apply_in_order_as_tie_breakers);
  tcase_add_test (tc, test_random_is_deterministic_for_a_seed_and_varies_with_it);
  tcase_add_test (tc, test_exhausted_cpu_and_memory_fail_with_ecs_reasons);
  tcase_add_test (tc, test_tcp_and_udp_host_ports_conflict_separately);
  tcase_add_test (tc, test_awsvpc_tasks_consume_enis);
  tcase_add_test (tc, test_draining_instances_get_no_tasks);
  tcase_add_test (tc, test_distinct_instance_counts_running_tasks_and_this_call);
  tcase_add_test (tc, test_member_of_keeps_only_matching_instances);
  tcase_add_test (tc, test_binpack_skips_the_best_instances_a_constraint_refuses);
  tcase_add_test (tc, test_member_of_task_group_sees_copies_placed_by_this_call);
  tcase_add_test (tc, test_failure_names_the_instance_that_came_closest);
  tcase_add_test (tc, test_many_copies_fill_the_cluster_exactly);
  tcase_add_test (tc, test_invalid_strategies_and_constraints_are_refused);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (sched_suite ());
}
