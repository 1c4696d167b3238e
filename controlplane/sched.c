/* The task placement engine (sched.h): filters instances on resources, ports, ENIs and
 * constraints, then narrows the candidates with each strategy in turn, as ECS does. */
#include "controlplane/sched.h"
#include "controlplane/cql.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_STRATEGIES 5
#define MAX_CONSTRAINTS 10

enum strat_kind
{
  STRAT_BINPACK_CPU,
  STRAT_BINPACK_MEMORY,
  STRAT_SPREAD_INSTANCE,
  STRAT_SPREAD_ATTRIBUTE,
  STRAT_RANDOM,
};

typedef struct strat
{
  enum strat_kind kind;
  const char *attr;     /* STRAT_SPREAD_ATTRIBUTE: the attribute's name */
  int *bucket;          /* per instance: index of its attribute value */
  int64_t *bucket_load; /* per value: tasks of the group on instances with that value */
} strat;

typedef struct plan
{
  strat strats[MAX_STRATEGIES];
  int n_strats;
  cp_cql *cql[MAX_CONSTRAINTS];
  int n_cql;
  bool distinct;
  bool cql_uses_group;
  bool needs_group_load; /* spread or distinctInstance: count the group's tasks */
} plan;

/* Why an instance cannot take a copy, in the order checked: a later stage means the instance
 * came closer, and the failure reported is the one of the instance that came closest. */
enum stage
{
  STAGE_OK = 0,
  STAGE_AGENT,
  STAGE_CPU,
  STAGE_MEMORY,
  STAGE_PORTS,
  STAGE_PORTS_UDP,
  STAGE_ENI,
  STAGE_CONSTRAINT,
};

static const char *const stage_reason[] = {
  [STAGE_AGENT] = "AGENT",
  [STAGE_CPU] = "RESOURCE:CPU",
  [STAGE_MEMORY] = "RESOURCE:MEMORY",
  [STAGE_PORTS] = "RESOURCE:PORTS",
  [STAGE_PORTS_UDP] = "RESOURCE:PORTS_UDP",
  [STAGE_ENI] = "RESOURCE:ENI",
  [STAGE_CONSTRAINT] = "MissingAttribute",
};

/* Per-call state: what this call has placed so far, and per-instance facts computed once. */
enum
{
  F_TCP_CONFLICT = 1,
  F_UDP_CONFLICT = 2,
  F_CQL_KNOWN = 4,
  F_CQL_OK = 8,
  F_REFUSED = 16, /* refused by a constraint for the copy being placed */
};

typedef struct sched_state
{
  const cp_sched_instance *inst;
  size_t n;
  const cp_sched_task *task;
  plan *plan;
  int *placed;         /* copies placed on each instance by this call */
  int64_t *group_load; /* tasks of the task's group already on each instance */
  uint8_t *flags;
  int *cand; /* instances with room for the copy, not yet refused by a constraint */
  int *tie;  /* the best of cand under the strategies */
  uint64_t rng;
} sched_state;

/* Placement looks up attributes of every instance on every call: walk the members directly and
 * compare first characters before calling strcmp (several times faster than
 * cJSON_GetObjectItemCaseSensitive here). */
static const cJSON *member (const cJSON *obj, const char *key)
{
  for (const cJSON *m = obj->child; m; m = m->next)
    if (m->string && m->string[0] == key[0] && strcmp (m->string, key) == 0)
      return m;
  return NULL;
}

static const char *attribute_match (const cJSON *a, const char *name)
{
  const cJSON *n = member (a, "name");
  if (n == NULL || !cJSON_IsString (n) || n->valuestring[0] != name[0]
      || strcmp (n->valuestring, name) != 0)
    return NULL;
  const cJSON *v = member (a, "value");
  return v && cJSON_IsString (v) ? v->valuestring : "";
}

const char *cp_sched_attribute_hint (const cp_sched_instance *inst, const char *name, int *hint)
{
  const cJSON *a;
  const char *v;
  int k = 0;
  /* Agents register their attributes in the same order: try where the last instance had it. */
  if (hint && *hint >= 0 && inst->attributes)
    {
      for (a = inst->attributes->child; a && k < *hint; a = a->next)
        k++;
      if (a && (v = attribute_match (a, name)) != NULL)
        return v;
    }
  k = 0;
  cJSON_ArrayForEach (a, inst->attributes)
  {
    if ((v = attribute_match (a, name)) != NULL)
      {
        if (hint)
          *hint = k;
        return v;
      }
    k++;
  }
  return NULL;
}

const char *cp_sched_attribute (const cp_sched_instance *inst, const char *name)
{
  return cp_sched_attribute_hint (inst, name, NULL);
}

static void plan_free (plan *p)
{
  for (int i = 0; i < p->n_strats; i++)
    {
      free (p->strats[i].bucket);
      free (p->strats[i].bucket_load);
    }
  for (int i = 0; i < p->n_cql; i++)
    cp_cql_free (p->cql[i]);
  memset (p, 0, sizeof *p);
}

static const char *member_string (const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (obj, key);
  return cJSON_IsString (v) ? v->valuestring : NULL;
}

#define bad(fault, ...) cp_fail (fault, "InvalidParameterException", __VA_ARGS__)

static int parse_strategy (const cJSON *item, strat *s, cp_fault *fault)
{
  const char *type = member_string (item, "type"), *field = member_string (item, "field");
  if (!cJSON_IsObject (item) || type == NULL)
    return bad (fault, "A placement strategy must have a type.");
  if (strcmp (type, "random") == 0)
    s->kind = STRAT_RANDOM;
  else if (strcmp (type, "binpack") == 0)
    {
      if (field && strcasecmp (field, "cpu") == 0)
        s->kind = STRAT_BINPACK_CPU;
      else if (field && strcasecmp (field, "memory") == 0)
        s->kind = STRAT_BINPACK_MEMORY;
      else
        return bad (fault, "Invalid field for binpack placement strategy: '%s' (cpu or memory).",
                    field ? field : "");
    }
  else if (strcmp (type, "spread") == 0)
    {
      if (field && (strcmp (field, "instanceId") == 0 || strcmp (field, "host") == 0))
        s->kind = STRAT_SPREAD_INSTANCE;
      else if (field && strncmp (field, "attribute:", 10) == 0 && field[10] != '\0')
        s->kind = STRAT_SPREAD_ATTRIBUTE, s->attr = field + 10;
      else
        return bad (fault,
                    "Invalid field for spread placement strategy: '%s' (instanceId, host or "
                    "attribute:NAME).",
                    field ? field : "");
    }
  else
    return bad (fault, "Invalid placement strategy type: '%s' (random, spread or binpack).", type);
  return 0;
}

static int parse_constraint (const cJSON *item, plan *p, cp_fault *fault)
{
  const char *type = member_string (item, "type"), *expr = member_string (item, "expression");
  if (!cJSON_IsObject (item) || type == NULL)
    return bad (fault, "A placement constraint must have a type.");
  if (strcmp (type, "distinctInstance") == 0)
    {
      if (expr && *expr)
        return bad (fault, "A distinctInstance placement constraint takes no expression.");
      p->distinct = true;
      return 0;
    }
  if (strcmp (type, "memberOf") != 0)
    return bad (fault, "Invalid placement constraint type: '%s' (distinctInstance or memberOf).",
                type);
  if (expr == NULL || *expr == '\0')
    return bad (fault, "A memberOf placement constraint requires an expression.");
  if (cp_cql_parse (expr, &p->cql[p->n_cql], fault) < 0)
    return -1;
  p->cql_uses_group |= cp_cql_uses_task_group (p->cql[p->n_cql]);
  p->n_cql++;
  return 0;
}

/* Parses and checks strategy and constraints (each expression once) into p. */
static int plan_build (const cJSON *strategy, const cJSON *constraints, plan *p, cp_fault *fault)
{
  const cJSON *item;
  memset (p, 0, sizeof *p);
  if (strategy && !cJSON_IsNull (strategy) && !cJSON_IsArray (strategy))
    return bad (fault, "placementStrategy must be a list.");
  if (constraints && !cJSON_IsNull (constraints) && !cJSON_IsArray (constraints))
    return bad (fault, "placementConstraints must be a list.");
  if (cJSON_GetArraySize (strategy) > MAX_STRATEGIES)
    return bad (fault, "At most 5 placement strategies can be given.");
  if (cJSON_GetArraySize (constraints) > MAX_CONSTRAINTS)
    return bad (fault, "At most 10 placement constraints can be given.");
  cJSON_ArrayForEach (item, strategy)
  {
    if (parse_strategy (item, &p->strats[p->n_strats], fault) < 0)
      return -1;
    p->n_strats++;
  }
  cJSON_ArrayForEach (item, constraints)
  {
    if (parse_constraint (item, p, fault) < 0)
      {
        plan_free (p);
        return -1;
      }
  }
  for (int s = 0; s < p->n_strats; s++)
    if (p->strats[s].kind == STRAT_SPREAD_INSTANCE || p->strats[s].kind == STRAT_SPREAD_ATTRIBUTE)
      p->needs_group_load = true;
  p->needs_group_load |= p->distinct;
  /* RunTask without a strategy places randomly. */
  if (p->n_strats == 0)
    p->strats[p->n_strats++].kind = STRAT_RANDOM;
  return 0;
}

int cp_sched_validate (const cJSON *strategy, const cJSON *constraints, cp_fault *fault)
{
  plan p;
  if (plan_build (strategy, constraints, &p, fault) < 0)
    return -1;
  plan_free (&p);
  return 0;
}

/* splitmix64: small, fast and good enough to pick among candidates. */
static uint64_t next_random (uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static bool ports_conflict (const uint16_t *want, size_t n_want, const uint16_t *used,
                            size_t n_used)
{
  for (size_t i = 0; i < n_want; i++)
    for (size_t j = 0; j < n_used; j++)
      if (want[i] == used[j])
        return true;
  return false;
}

static uint64_t hash_str (const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* Gives each instance the index of its value of s->attr (instances without it share one
 * bucket) and sums the group's tasks per value. */
static int spread_buckets (sched_state *st, strat *s, cp_fault *fault)
{
  size_t cap = 16;
  while (cap < 2 * st->n + 2)
    cap *= 2;
  const char **keys = calloc (cap, sizeof *keys);
  int *ids = calloc (cap, sizeof *ids);
  s->bucket = calloc (st->n + 1, sizeof *s->bucket);
  s->bucket_load = calloc (st->n + 1, sizeof *s->bucket_load);
  if (keys == NULL || ids == NULL || s->bucket == NULL || s->bucket_load == NULL)
    {
      free (keys), free (ids);
      return cp_fail_oom (fault);
    }
  int n_buckets = 1, hint = -1; /* bucket 0: no such attribute */
  for (size_t i = 0; i < st->n; i++)
    {
      const char *v = cp_sched_attribute_hint (&st->inst[i], s->attr, &hint);
      int b = 0;
      if (v)
        {
          size_t slot = hash_str (v) & (cap - 1);
          while (keys[slot] && strcmp (keys[slot], v) != 0)
            slot = (slot + 1) & (cap - 1);
          if (keys[slot] == NULL)
            keys[slot] = v, ids[slot] = n_buckets++;
          b = ids[slot];
        }
      s->bucket[i] = b;
      s->bucket_load[b] += st->group_load[i];
    }
  free (keys);
  free (ids);
  return 0;
}

/* The per-call facts: group loads, port conflicts, spread buckets. */
static int state_init (sched_state *st, cp_fault *fault)
{
  const cp_sched_task *t = st->task;
  st->placed = calloc (st->n + 1, sizeof *st->placed);
  st->group_load = calloc (st->n + 1, sizeof *st->group_load);
  st->flags = calloc (st->n + 1, sizeof *st->flags);
  st->cand = calloc (st->n + 1, sizeof *st->cand);
  st->tie = calloc (st->n + 1, sizeof *st->tie);
  if (!st->placed || !st->group_load || !st->flags || !st->cand || !st->tie)
    return cp_fail_oom (fault);
  for (size_t i = 0; i < st->n; i++)
    {
      const cp_sched_instance *in = &st->inst[i];
      /* Counting means a look at every task in the cluster: only when a strategy or constraint
       * needs it. */
      for (size_t j = 0; st->plan->needs_group_load && t->group && j < in->n_tasks; j++)
        {
          const char *g = in->task_groups[j];
          if (g == t->group || (!t->groups_interned && g && strcmp (g, t->group) == 0))
            st->group_load[i]++;
        }
      if (ports_conflict (t->ports_tcp, t->n_ports_tcp, in->ports_tcp, in->n_ports_tcp))
        st->flags[i] |= F_TCP_CONFLICT;
      if (ports_conflict (t->ports_udp, t->n_ports_udp, in->ports_udp, in->n_ports_udp))
        st->flags[i] |= F_UDP_CONFLICT;
    }
  for (int s = 0; s < st->plan->n_strats; s++)
    if (st->plan->strats[s].kind == STRAT_SPREAD_ATTRIBUTE
        && spread_buckets (st, &st->plan->strats[s], fault) < 0)
      return -1;
  return 0;
}

static void state_free (sched_state *st)
{
  free (st->placed);
  free (st->group_load);
  free (st->flags);
  free (st->cand);
  free (st->tie);
}

static bool constraints_hold (sched_state *st, size_t i)
{
  plan *p = st->plan;
  if (p->distinct && st->group_load[i] + st->placed[i] > 0)
    return false;
  if (p->n_cql == 0)
    return true;
  if (!(st->flags[i] & F_CQL_KNOWN))
    {
      const char *placed_group = st->placed[i] > 0 ? st->task->group : NULL;
      bool ok = true;
      for (int c = 0; ok && c < p->n_cql; c++)
        ok = cp_cql_eval (p->cql[c], &st->inst[i], placed_group);
      st->flags[i] |= F_CQL_KNOWN | (ok ? F_CQL_OK : 0);
    }
  return st->flags[i] & F_CQL_OK;
}

/* How far instance i gets on resources for one more copy (STAGE_OK: it has room); constraints
 * are checked later, lazily (see place_one). */
static enum stage check_resources (sched_state *st, size_t i)
{
  const cp_sched_instance *in = &st->inst[i];
  const cp_sched_task *t = st->task;
  int64_t k = st->placed[i];
  if (!in->placeable)
    return STAGE_AGENT;
  if (t->cpu > 0 && in->cpu - k * t->cpu < t->cpu)
    return STAGE_CPU;
  if (t->memory > 0 && in->memory - k * t->memory < t->memory)
    return STAGE_MEMORY;
  if ((st->flags[i] & F_TCP_CONFLICT) || (k > 0 && t->n_ports_tcp > 0))
    return STAGE_PORTS;
  if ((st->flags[i] & F_UDP_CONFLICT) || (k > 0 && t->n_ports_udp > 0))
    return STAGE_PORTS_UDP;
  if (t->eni && in->eni - k < 1)
    return STAGE_ENI;
  return STAGE_OK;
}

static int64_t score (const sched_state *st, const strat *s, size_t i)
{
  const cp_sched_instance *in = &st->inst[i];
  switch (s->kind)
    {
    case STRAT_BINPACK_CPU:
      return in->cpu - st->placed[i] * st->task->cpu;
    case STRAT_BINPACK_MEMORY:
      return in->memory - st->placed[i] * st->task->memory;
    case STRAT_SPREAD_INSTANCE:
      return st->group_load[i] + st->placed[i];
    case STRAT_SPREAD_ATTRIBUTE:
      return s->bucket_load[s->bucket[i]];
    default:
      return 0;
    }
}

/* Keeps the ties with the lowest score under s; returns how many remain. */
static size_t narrow (sched_state *st, const strat *s, size_t n_tie)
{
  int64_t best = INT64_MAX;
  size_t kept = 0;
  for (size_t c = 0; c < n_tie; c++)
    {
      int64_t v = score (st, s, (size_t)st->tie[c]);
      if (v < best)
        best = v, kept = 0;
      if (v == best)
        st->tie[kept++] = st->tie[c];
    }
  return kept;
}

/* The best n_cand candidates under the strategy chain, into st->tie; returns how many. */
static size_t best_ties (sched_state *st, size_t n_cand)
{
  size_t n_tie = n_cand;
  memcpy (st->tie, st->cand, n_cand * sizeof *st->tie);
  for (int s = 0; s < st->plan->n_strats && n_tie > 1; s++)
    {
      if (st->plan->strats[s].kind == STRAT_RANDOM)
        break;
      n_tie = narrow (st, &st->plan->strats[s], n_tie);
    }
  return n_tie;
}

/* Picks uniformly among the ties that satisfy the constraints, evaluating them only as drawn
 * (rejection sampling). Returns the instance, or -1 when none does; *refused_min is lowered to
 * the lowest index refused. */
static int draw (sched_state *st, size_t n_tie, size_t *refused_min)
{
  while (n_tie > 0)
    {
      size_t pick = n_tie > 1 ? next_random (&st->rng) % n_tie : 0;
      int i = st->tie[pick];
      if (constraints_hold (st, (size_t)i))
        return i;
      if ((size_t)i < *refused_min)
        *refused_min = (size_t)i;
      st->flags[i] |= F_REFUSED;
      st->tie[pick] = st->tie[--n_tie];
    }
  return -1;
}

/* Chooses the instance for one copy, or returns -1 and the failure. ECS filters on resources,
 * then on constraints, then applies the strategies; here the constraints (the costly part:
 * cluster query language on every instance) are checked only on the instances the strategies
 * rank best. The result is the same: the best-ranked instances that pass are exactly the best
 * of those that pass. When all the best fail, they leave the candidates and the ranking runs
 * again. */
static int place_one (sched_state *st, cp_sched_failure *failure)
{
  size_t n_cand = 0, closest = 0, refused_min = SIZE_MAX;
  enum stage furthest = STAGE_OK;
  for (size_t i = 0; i < st->n; i++)
    {
      enum stage s = check_resources (st, i);
      st->flags[i] &= (uint8_t)~F_REFUSED;
      if (s == STAGE_OK)
        st->cand[n_cand++] = (int)i;
      else if (s > furthest)
        furthest = s, closest = i;
    }
  while (n_cand > 0)
    {
      int i = draw (st, best_ties (st, n_cand), &refused_min);
      if (i >= 0)
        return i;
      size_t kept = 0;
      for (size_t c = 0; c < n_cand; c++)
        if (!(st->flags[st->cand[c]] & F_REFUSED))
          st->cand[kept++] = st->cand[c];
      n_cand = kept;
    }
  if (refused_min != SIZE_MAX)
    furthest = STAGE_CONSTRAINT, closest = refused_min;
  failure->arn = st->n > 0 ? st->inst[closest].arn : NULL;
  failure->reason = stage_reason[st->n > 0 ? furthest : STAGE_AGENT];
  return -1;
}

static void record (sched_state *st, int i)
{
  st->placed[i]++;
  for (int s = 0; s < st->plan->n_strats; s++)
    if (st->plan->strats[s].kind == STRAT_SPREAD_ATTRIBUTE)
      st->plan->strats[s].bucket_load[st->plan->strats[s].bucket[i]]++;
  if (st->plan->cql_uses_group)
    st->flags[i] &= (uint8_t) ~(F_CQL_KNOWN | F_CQL_OK);
}

int cp_sched_place (const cp_sched_instance *instances, size_t n, const cp_sched_task *task,
                    int count, int *choices, cp_sched_failure *failures, cp_fault *fault)
{
  plan p;
  sched_state st = { .inst = instances, .n = n, .task = task, .plan = &p, .rng = task->seed };
  int placed = 0;
  if (plan_build (task->strategy, task->constraints, &p, fault) < 0)
    return -1;
  if (state_init (&st, fault) < 0)
    {
      state_free (&st);
      plan_free (&p);
      return -1;
    }
  for (int k = 0; k < count; k++)
    {
      choices[k] = place_one (&st, &failures[k]);
      if (choices[k] < 0)
        {
          /* Nothing changed since: every later copy fails the same way. */
          for (int j = k + 1; j < count; j++)
            choices[j] = -1, failures[j] = failures[k];
          break;
        }
      record (&st, choices[k]);
      placed++;
    }
  state_free (&st);
  plan_free (&p);
  return placed;
}
