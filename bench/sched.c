/* Times berth-control's placement engine alone: 1,000 synthetic container instances, one
 * RunTask-sized call (count 1) at a time, per strategy or constraint; prints placements/s.
 * Usage: sched [PLACEMENTS [SCENARIO-SUBSTRING]]   (bench/README.md, figure 8) */
#include "controlplane/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_INST 1000
#define MAX_GROUPS 256
#define OTHER_TASKS 10 /* tasks of other groups already on each instance */

static const char *const zones[] = { "us-east-1a", "us-east-1b", "us-east-1c" };
static const char *const types[] = { "m5.large", "m5.xlarge", "c5.large", "t3.medium" };

typedef struct cluster
{
  cp_sched_instance in[N_INST];
  cJSON *attrs[N_INST];
  const char **groups[N_INST];
  char arn[N_INST][96];
  uint16_t ports[N_INST][4];
  char other[N_INST][OTHER_TASKS][24];
  char group_copy[16]; /* the placed tasks' group when not interned: an equal string elsewhere */
  bool interned;
} cluster;

typedef struct bench_opts
{
  int n;            /* calls per scenario */
  const char *only; /* run only scenarios whose name contains this */
  bool interned;    /* group names interned (sched.h: groups_interned), as berth-control does */
} bench_opts;

/* Attributes like an ECS agent's (ecs.* plus two custom), ports 22 and one more in use, ten
 * tasks of other groups. */
static void cluster_init (cluster *c)
{
  for (int i = 0; i < N_INST; i++)
    {
      char json[1024];
      snprintf (json, sizeof json,
                "[{\"name\":\"ecs.availability-zone\",\"value\":\"%s\"},"
                "{\"name\":\"ecs.instance-type\",\"value\":\"%s\"},"
                "{\"name\":\"ecs.os-type\",\"value\":\"linux\"},"
                "{\"name\":\"ecs.cpu-architecture\",\"value\":\"x86_64\"},"
                "{\"name\":\"com.amazonaws.ecs.capability.docker-remote-api.1.44\"},"
                "{\"name\":\"ecs.capability.execution-role-awslogs\"},"
                "{\"name\":\"stack\",\"value\":\"%s\"},{\"name\":\"rack\",\"value\":\"%d\"}]",
                zones[i % 3], types[i % 4], i % 5 ? "prod" : "test", i % 40);
      c->attrs[i] = cJSON_Parse (json);
      c->groups[i] = calloc (MAX_GROUPS, sizeof *c->groups[i]);
      if (c->attrs[i] == NULL || c->groups[i] == NULL)
        abort ();
      snprintf (c->arn[i], sizeof c->arn[i],
                "arn:aws:ecs:us-east-1:000000000000:container-instance/bench/%032x", i);
      c->ports[i][0] = 22, c->ports[i][1] = (uint16_t)(8000 + i % 7);
      for (int j = 0; j < OTHER_TASKS; j++)
        {
          snprintf (c->other[i][j], sizeof c->other[i][j], "family:svc-%d", (i + j) % 50);
          c->groups[i][j] = c->other[i][j];
        }
      c->in[i] = (cp_sched_instance){ .arn = c->arn[i],
                                      .placeable = i % 50 != 0, /* 2% draining */
                                      .cpu = 4096 * 4,
                                      .memory = 16384 * 4,
                                      .eni = 8,
                                      .ports_tcp = c->ports[i],
                                      .n_ports_tcp = 2,
                                      .attributes = c->attrs[i],
                                      .task_groups = c->groups[i],
                                      .n_tasks = OTHER_TASKS };
    }
}

static void cluster_free (cluster *c)
{
  for (int i = 0; i < N_INST; i++)
    {
      cJSON_Delete (c->attrs[i]);
      free (c->groups[i]);
    }
}

/* Applies a placement to the model, as RunTask applies it to the store. */
static void apply (cluster *c, int i, const cp_sched_task *t)
{
  cp_sched_instance *in = &c->in[i];
  in->cpu -= t->cpu, in->memory -= t->memory;
  if (in->n_tasks < MAX_GROUPS)
    c->groups[i][in->n_tasks++] = c->interned ? t->group : c->group_copy;
}

static double now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Other groups' task names: interned ones are the same pointer for the same name. */
static void intern_others (cluster *c)
{
  for (int i = 0; i < N_INST; i++)
    for (int j = 0; j < OTHER_TASKS; j++)
      c->groups[i][j] = c->other[(i + j) % 50][0];
}

static void run (const bench_opts *o, const char *name, const char *strategy,
                 const char *constraints, int n)
{
  static cluster c;
  if (o->only && strstr (name, o->only) == NULL)
    return;
  cluster_init (&c);
  snprintf (c.group_copy, sizeof c.group_copy, "family:web");
  c.interned = o->interned;
  if (o->interned)
    intern_others (&c);
  cJSON *s = strategy ? cJSON_Parse (strategy) : NULL;
  cJSON *k = constraints ? cJSON_Parse (constraints) : NULL;
  cp_sched_task t = { .cpu = 256,
                      .memory = 512,
                      .group = "family:web",
                      .strategy = s,
                      .constraints = k,
                      .groups_interned = o->interned };
  int placed = 0, choice;
  cp_sched_failure failure;
  cp_fault fault = { 0 };
  double start = now_s ();
  for (int i = 0; i < n; i++)
    {
      t.seed = (uint64_t)i;
      int r = cp_sched_place (c.in, N_INST, &t, 1, &choice, &failure, &fault);
      if (r < 0)
        {
          fprintf (stderr, "%s: %s\n", name, fault.message);
          exit (1);
        }
      if (r == 1)
        apply (&c, choice, &t), placed++;
    }
  double secs = now_s () - start;
  printf ("   %-34s %8d %10.0f %10.1f\n", name, placed, n / secs, secs / n * 1e6);
  cJSON_Delete (s);
  cJSON_Delete (k);
  cluster_free (&c);
}

int main (int argc, char **argv)
{
  bench_opts o = { .n = argc > 1 ? atoi (argv[1]) : 5000,
                   .only = argc > 2 ? argv[2] : NULL,
                   .interned = true };
  int n = o.n > 0 ? o.n : 5000;
  printf ("   %-34s %8s %10s %10s\n", "scenario (1,000 instances)", "placed", "per s", "us each");
  run (&o, "binpack memory", "[{\"type\":\"binpack\",\"field\":\"memory\"}]", NULL, n);
  run (&o, "spread instanceId", "[{\"type\":\"spread\",\"field\":\"instanceId\"}]", NULL, n);
  run (&o, "spread zone, then instanceId",
       "[{\"type\":\"spread\",\"field\":\"attribute:ecs.availability-zone\"},"
       "{\"type\":\"spread\",\"field\":\"instanceId\"}]",
       NULL, n);
  run (&o, "random (RunTask default)", NULL, NULL, n);
  run (&o, "memberOf + binpack cpu", "[{\"type\":\"binpack\",\"field\":\"cpu\"}]",
       "[{\"type\":\"memberOf\",\"expression\":\"attribute:ecs.instance-type =~ m5.* and "
       "attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and not(attribute:stack == "
       "test)\"}]",
       n);
  run (&o, "distinctInstance + spread zone",
       "[{\"type\":\"spread\",\"field\":\"attribute:ecs.availability-zone\"}]",
       "[{\"type\":\"distinctInstance\"}]", n < 900 ? n : 900);
  /* What a caller that does not intern group names pays: a strcmp per task per call. */
  o.interned = false;
  run (&o, "spread instanceId, not interned", "[{\"type\":\"spread\",\"field\":\"instanceId\"}]",
       NULL, n);
  return 0;
}
