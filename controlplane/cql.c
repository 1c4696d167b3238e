/* The cluster query language (memberOf expressions): a recursive-descent parser into a flat
 * array of nodes, and an evaluator over one container instance (see cql.h, docs). */
#include "controlplane/cql.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Deep enough for any sensible expression, shallow enough for the stack of the evaluator. */
#define CQL_MAX_DEPTH 64

enum cql_subject
{
  SUBJ_ATTRIBUTE,
  SUBJ_EC2_INSTANCE_ID,
  SUBJ_AGENT_CONNECTED,
  SUBJ_AGENT_VERSION,
  SUBJ_REGISTERED_AT,
  SUBJ_RUNNING_TASKS,
  SUBJ_TASK_GROUP,
};

enum cql_op
{
  OP_EQ,
  OP_NE,
  OP_GT,
  OP_GE,
  OP_LT,
  OP_LE,
  OP_EXISTS,
  OP_NOT_EXISTS,
  OP_MATCH,
  OP_NOT_MATCH,
  OP_IN,
  OP_NOT_IN,
};

enum cql_kind
{
  NODE_AND,
  NODE_OR,
  NODE_NOT,
  NODE_CMP,
};

typedef struct cql_value
{
  char *s;
  double num;
  bool is_num;
} cql_value;

/* Regular expressions are the slow part of an evaluation, and the values they see repeat from
 * instance to instance (instance types, zones): results are remembered per value for the life
 * of the parsed expression, which is one placement call. */
#define MEMO_SLOTS 32
#define MEMO_KEY 48

typedef struct cql_memo
{
  uint64_t hash;
  bool used, result;
  char key[MEMO_KEY];
} cql_memo;

typedef struct cql_node
{
  enum cql_kind kind;
  int left, right; /* children (AND, OR; NOT uses left) */
  enum cql_subject subject;
  char *attr; /* SUBJ_ATTRIBUTE: the name after "attribute:" */
  enum cql_op op;
  cql_value *values;
  size_t n_values;
  regex_t re;
  bool has_re;
  cql_memo *memo; /* MEMO_SLOTS entries, with the regex */
  int *hint;      /* SUBJ_ATTRIBUTE: where the last instance had it */
  bool any_num;   /* some value is a number: only then is the instance's value parsed */
} cql_node;

struct cp_cql
{
  cql_node *nodes;
  size_t n, cap;
  int root;
  bool uses_task_group;
};

typedef struct cql_parser
{
  const char *src;
  size_t pos;
  int depth;
  cp_cql *q;
  cp_fault *fault;
} cql_parser;

static int cql_error (cql_parser *p, const char *what)
{
  return cp_fail (p->fault, "InvalidParameterException",
                  "Invalid placement constraint expression at position %zu: %s.", p->pos + 1, what);
}

static void skip_ws (cql_parser *p)
{
  while (isspace ((unsigned char)p->src[p->pos]))
    p->pos++;
}

static bool is_name_char (char c)
{
  return isalnum ((unsigned char)c) || (c != '\0' && strchr ("-_.@/\\:", c) != NULL);
}

/* Consumes keyword kw (case-insensitive) when it stands alone at the cursor. */
static bool accept_word (cql_parser *p, const char *kw)
{
  size_t n = strlen (kw);
  if (strncasecmp (p->src + p->pos, kw, n) != 0 || is_name_char (p->src[p->pos + n]))
    return false;
  p->pos += n;
  return true;
}

static bool accept_sym (cql_parser *p, const char *sym)
{
  size_t n = strlen (sym);
  if (strncmp (p->src + p->pos, sym, n) != 0)
    return false;
  p->pos += n;
  return true;
}

static int new_node (cql_parser *p, enum cql_kind kind)
{
  cp_cql *q = p->q;
  if (q->n == q->cap)
    {
      size_t cap = q->cap ? q->cap * 2 : 8;
      cql_node *grown = realloc (q->nodes, cap * sizeof *grown);
      if (grown == NULL)
        return cp_fail_oom (p->fault);
      q->nodes = grown, q->cap = cap;
    }
  memset (&q->nodes[q->n], 0, sizeof q->nodes[q->n]);
  q->nodes[q->n].kind = kind;
  q->nodes[q->n].left = q->nodes[q->n].right = -1;
  return (int)q->n++;
}

static bool parse_number (const char *s, double *out)
{
  char *end;
  if (*s == '\0' || isspace ((unsigned char)*s))
    return false;
  double d = strtod (s, &end);
  if (*end != '\0' || !isfinite (d))
    return false;
  *out = d;
  return true;
}

/* The dates registeredAt accepts: 2018-06-18T22:28:28+00:00, ...Z, without zone, or a day. */
static bool parse_date (const char *s, double *out)
{
  struct tm tm = { 0 };
  const char *end = strptime (s, "%Y-%m-%d", &tm);
  long offset = 0;
  if (end == NULL)
    return false;
  if (*end == 'T' && (end = strptime (end + 1, "%H:%M:%S", &tm)) == NULL)
    return false;
  if (*end == 'Z')
    end++;
  else if ((*end == '+' || *end == '-') && isdigit ((unsigned char)end[1]))
    {
      int hh, mm, used = 0;
      if (sscanf (end + 1, "%2d:%2d%n", &hh, &mm, &used) != 2 || used != 5)
        return false;
      offset = (hh * 3600L + mm * 60L) * (*end == '-' ? -1 : 1);
      end += 6;
    }
  if (*end != '\0')
    return false;
  *out = (double)(timegm (&tm) - offset);
  return true;
}

static const char *skip_bracket (const char *c);

/* The length of an unquoted regular expression: up to whitespace, or a comma or a ')' outside
 * of what the pattern opened itself, so brackets, bounds ({1,3}) and groups need no quotes. */
static size_t regex_span (const char *s)
{
  size_t n = 0;
  int depth = 0;
  bool in_brace = false;
  for (; s[n] && !isspace ((unsigned char)s[n]); n++)
    {
      if (s[n] == '\\' && s[n + 1] && !isspace ((unsigned char)s[n + 1]))
        n++;
      else if (s[n] == '[')
        {
          const char *end = skip_bracket (s + n);
          if (end == NULL)
            return n + strcspn (s + n, " \t\r\n\f\v");
          n = (size_t)(end - s);
        }
      else if (s[n] == '{')
        in_brace = true;
      else if (s[n] == '}')
        in_brace = false;
      else if (s[n] == '(')
        depth++;
      else if ((s[n] == ')' && depth-- == 0) || (s[n] == ',' && !in_brace))
        break;
    }
  return n;
}

/* One value: quoted ('...' or "...", no escapes) or a run of characters up to whitespace, a
 * comma, a bracket or a parenthesis (a regular expression: see regex_span). *out is newly
 * allocated. */
static int parse_value (cql_parser *p, char **out, bool regex)
{
  size_t n;
  skip_ws (p);
  const char *s = p->src + p->pos;
  if (*s == '\'' || *s == '"')
    {
      const char *close = strchr (s + 1, *s);
      if (close == NULL)
        return cql_error (p, "unterminated quoted value");
      n = (size_t)(close - s - 1);
      *out = strndup (s + 1, n);
      p->pos += n + 2;
    }
  else
    {
      n = regex ? regex_span (s) : strcspn (s, " \t\r\n\f\v,[]()'\"");
      if (n == 0)
        return cql_error (p, "expected a value");
      *out = strndup (s, n);
      p->pos += n;
    }
  return *out ? 0 : cp_fail_oom (p->fault);
}

static int add_value (cql_parser *p, cql_node *node)
{
  char *s = NULL;
  size_t at = p->pos;
  if (parse_value (p, &s, node->op == OP_MATCH || node->op == OP_NOT_MATCH) < 0)
    return -1;
  cql_value *grown = realloc (node->values, (node->n_values + 1) * sizeof *grown);
  if (grown == NULL)
    {
      free (s);
      return cp_fail_oom (p->fault);
    }
  node->values = grown;
  cql_value *v = &node->values[node->n_values++];
  v->s = s;
  if (node->subject == SUBJ_REGISTERED_AT)
    {
      if (!parse_date (s, &v->num))
        {
          p->pos = at;
          return cql_error (p, "registeredAt takes a date such as 2018-06-18T22:28:28Z");
        }
      v->is_num = true;
    }
  else
    v->is_num = parse_number (s, &v->num);
  node->any_num |= v->is_num;
  return 0;
}

static int parse_list (cql_parser *p, cql_node *node)
{
  skip_ws (p);
  if (!accept_sym (p, "["))
    return cql_error (p, "expected '[' to open the list");
  do
    {
      if (add_value (p, node) < 0)
        return -1;
      skip_ws (p);
    }
  while (accept_sym (p, ","));
  if (!accept_sym (p, "]"))
    return cql_error (p, "expected ',' or ']' in the list");
  return 0;
}

static const struct
{
  const char *name;
  enum cql_subject subject;
} subjects[] = {
  { "ec2InstanceId", SUBJ_EC2_INSTANCE_ID },   { "agentConnected", SUBJ_AGENT_CONNECTED },
  { "agentVersion", SUBJ_AGENT_VERSION },      { "registeredAt", SUBJ_REGISTERED_AT },
  { "runningTasksCount", SUBJ_RUNNING_TASKS }, { "task:group", SUBJ_TASK_GROUP },
};

static int parse_subject (cql_parser *p, cql_node *node)
{
  const char *s = p->src + p->pos;
  size_t n = 0;
  while (is_name_char (s[n]))
    n++;
  if (n == 0)
    return cql_error (p, "expected a subject (attribute:NAME, ec2InstanceId, task:group, ...)");
  if (n > 10 && strncmp (s, "attribute:", 10) == 0)
    {
      node->subject = SUBJ_ATTRIBUTE;
      node->attr = strndup (s + 10, n - 10);
      node->hint = malloc (sizeof *node->hint);
      if (node->attr == NULL || node->hint == NULL)
        return cp_fail_oom (p->fault);
      *node->hint = -1;
      p->pos += n;
      return 0;
    }
  for (size_t i = 0; i < sizeof subjects / sizeof *subjects; i++)
    if (strlen (subjects[i].name) == n && strncmp (s, subjects[i].name, n) == 0)
      {
        node->subject = subjects[i].subject;
        p->pos += n;
        if (node->subject == SUBJ_TASK_GROUP)
          p->q->uses_task_group = true;
        return 0;
      }
  return cql_error (p, "unknown subject");
}

/* Operators, longest first so that ">=" is not read as ">". */
static const struct
{
  const char *text;
  bool word;
  enum cql_op op;
} operators[] = {
  { "!exists", true, OP_NOT_EXISTS },
  { "exists", true, OP_EXISTS },
  { "not_in", true, OP_NOT_IN },
  { "!in", true, OP_NOT_IN },
  { "in", true, OP_IN },
  { "==", false, OP_EQ },
  { "!=", false, OP_NE },
  { ">=", false, OP_GE },
  { "<=", false, OP_LE },
  { ">", false, OP_GT },
  { "<", false, OP_LT },
  { "=~", false, OP_MATCH },
  { "!~", false, OP_NOT_MATCH },
};

/* Which operators each subject takes, as ECS documents them (attributes take all). */
static bool op_allowed (enum cql_subject subject, enum cql_op op)
{
  bool ordered = op == OP_GT || op == OP_GE || op == OP_LT || op == OP_LE;
  switch (subject)
    {
    case SUBJ_ATTRIBUTE:
      return true;
    case SUBJ_AGENT_VERSION:
    case SUBJ_REGISTERED_AT:
    case SUBJ_RUNNING_TASKS:
      return ordered || op == OP_EQ || op == OP_NE;
    case SUBJ_TASK_GROUP:
      return !ordered;
    default:
      return !ordered && op != OP_EXISTS && op != OP_NOT_EXISTS;
    }
}

static bool is_quantifier (const char *c)
{
  return *c == '*' || *c == '+' || *c == '?' || (*c == '{' && isdigit ((unsigned char)c[1]));
}

/* Skips a bracket expression starting at c ('['); returns its closing ']' or NULL. */
static const char *skip_bracket (const char *c)
{
  c++;
  if (*c == '^')
    c++;
  if (*c == ']')
    c++;
  for (; *c && *c != ']'; c++)
    if (c[0] == '[' && (c[1] == ':' || c[1] == '.' || c[1] == '='))
      {
        const char *end = strstr (c + 2, (char[]){ c[1], ']', '\0' });
        if (end == NULL)
          return NULL;
        c = end + 1;
      }
  return *c ? c : NULL;
}

/* Reads the quantifier at c, multiplying *product by the copies glibc makes of its operand
 * (n for {m,n}, 2 for +); returns its last character. */
static const char *read_quantifier (const char *c, unsigned long *product)
{
  unsigned long n = 1;
  if (*c == '+')
    n = 2;
  else if (*c == '{')
    {
      char *end;
      unsigned long m = strtoul (c + 1, &end, 10);
      n = m;
      if (*end == ',' && isdigit ((unsigned char)end[1]))
        n = strtoul (end + 1, &end, 10);
      n = n > m ? n : m;
      c = *end == '}' ? end : end - 1;
    }
  *product = n > 1000 ? 1001 : *product * (n ? n : 1);
  return c;
}

/* glibc's matcher is a backtracking one where it matters: nested quantifiers ((a*)+, a*+) take
 * exponential time, back-references too, and regcomp copies an operand once per repetition
 * count (x{3} is xxx, x+ is xx*), so ((a{99}){99}){99} takes minutes and gigabytes. Refuses
 * them: no quantifier on a quantified operand or on a group holding one, no back-reference,
 * and the product of all the copies at most 1000. */
static bool regex_too_costly (const char *pat)
{
  bool quantified[CQL_MAX_DEPTH + 1] = { false };
  unsigned long product = 1;
  int depth = 0;
  for (const char *c = pat; *c; c++)
    {
      if (c[0] == '\\')
        {
          if (c[1] >= '1' && c[1] <= '9')
            return true;
          c += c[1] != '\0';
        }
      else if (c[0] == '[')
        {
          if ((c = skip_bracket (c)) == NULL)
            return false; /* regcomp refuses it */
        }
      else if (c[0] == '(')
        {
          if (++depth > CQL_MAX_DEPTH)
            return true;
          quantified[depth] = false;
        }
      else if (c[0] == ')' && depth > 0)
        {
          bool inner = quantified[depth--];
          if (inner && is_quantifier (c + 1))
            return true;
          quantified[depth] |= inner;
        }
      else if (is_quantifier (c))
        {
          c = read_quantifier (c, &product);
          quantified[depth] = true;
          if (product > 1000 || is_quantifier (c + 1))
            return true;
        }
    }
  return false;
}

static int compile_regex (cql_parser *p, cql_node *node, size_t at)
{
  if (regex_too_costly (node->values[0].s))
    {
      p->pos = at;
      return cql_error (p, "regular expression too costly (back-references, or repetition "
                           "counts multiplying past 1000)");
    }
  char *anchored = NULL;
  /* ECS matches the whole value: anchor the pattern. */
  if (asprintf (&anchored, "^(%s)$", node->values[0].s) < 0)
    return cp_fail_oom (p->fault);
  int r = regcomp (&node->re, anchored, REG_EXTENDED | REG_NOSUB);
  free (anchored);
  if (r != 0)
    {
      p->pos = at;
      return cql_error (p, "invalid regular expression");
    }
  node->has_re = true;
  if ((node->memo = calloc (MEMO_SLOTS, sizeof *node->memo)) == NULL)
    return cp_fail_oom (p->fault);
  return 0;
}

static int parse_comparison (cql_parser *p)
{
  int id = new_node (p, NODE_CMP);
  if (id < 0 || parse_subject (p, &p->q->nodes[id]) < 0)
    return -1;
  skip_ws (p);
  size_t op_at = p->pos;
  size_t i = 0;
  for (; i < sizeof operators / sizeof *operators; i++)
    if (operators[i].word ? accept_word (p, operators[i].text) : accept_sym (p, operators[i].text))
      break;
  if (i == sizeof operators / sizeof *operators)
    return cql_error (p, "expected an operator (==, !=, >, >=, <, <=, =~, !~, exists, !exists, "
                         "in, not_in)");
  cql_node *node = &p->q->nodes[id];
  node->op = operators[i].op;
  if (!op_allowed (node->subject, node->op))
    {
      p->pos = op_at;
      return cql_error (p, "operator not valid for this subject");
    }
  if (node->op == OP_EXISTS || node->op == OP_NOT_EXISTS)
    return id;
  skip_ws (p);
  size_t value_at = p->pos;
  int r = node->op == OP_IN || node->op == OP_NOT_IN ? parse_list (p, node) : add_value (p, node);
  if (r < 0)
    return -1;
  if ((node->op == OP_MATCH || node->op == OP_NOT_MATCH) && compile_regex (p, node, value_at) < 0)
    return -1;
  return id;
}

static int parse_or (cql_parser *p);

/* primary := '(' or ')' | comparison; unary := ('not' | '!') unary | primary */
static int parse_unary (cql_parser *p)
{
  int id;
  skip_ws (p);
  if (++p->depth > CQL_MAX_DEPTH)
    return cql_error (p, "expression nested too deeply");
  if (accept_word (p, "not")
      || (p->src[p->pos] == '!' && p->src[p->pos + 1] != '=' && p->src[p->pos + 1] != '~'
          && accept_sym (p, "!")))
    {
      int child = parse_unary (p);
      if (child < 0 || (id = new_node (p, NODE_NOT)) < 0)
        return -1;
      p->q->nodes[id].left = child;
    }
  else if (accept_sym (p, "("))
    {
      if ((id = parse_or (p)) < 0)
        return -1;
      skip_ws (p);
      if (!accept_sym (p, ")"))
        return cql_error (p, "expected ')'");
    }
  else if ((id = parse_comparison (p)) < 0)
    return -1;
  p->depth--;
  return id;
}

static int parse_binary (cql_parser *p, enum cql_kind kind)
{
  int left = kind == NODE_OR ? parse_binary (p, NODE_AND) : parse_unary (p);
  for (;;)
    {
      if (left < 0)
        return -1;
      skip_ws (p);
      bool more = kind == NODE_OR ? accept_word (p, "or") || accept_sym (p, "||")
                                  : accept_word (p, "and") || accept_sym (p, "&&");
      if (!more)
        return left;
      int right = kind == NODE_OR ? parse_binary (p, NODE_AND) : parse_unary (p);
      int id = right < 0 ? -1 : new_node (p, kind);
      if (id < 0)
        return -1;
      p->q->nodes[id].left = left;
      p->q->nodes[id].right = right;
      left = id;
    }
}

/* or := and ('or' and)*; and := unary ('and' unary)*: "and" binds tighter than "or". */
static int parse_or (cql_parser *p)
{
  return parse_binary (p, NODE_OR);
}

int cp_cql_parse (const char *expr, cp_cql **out, cp_fault *fault)
{
  cql_parser p = { .src = expr, .fault = fault };
  if (strlen (expr) > CP_CQL_MAX_LEN)
    return cp_fail (fault, "InvalidParameterException",
                    "Placement constraint expression is longer than %d characters.",
                    CP_CQL_MAX_LEN);
  if ((p.q = calloc (1, sizeof *p.q)) == NULL)
    return cp_fail_oom (fault);
  skip_ws (&p);
  if (expr[p.pos] == '\0')
    {
      cql_error (&p, "empty expression");
      cp_cql_free (p.q);
      return -1;
    }
  p.q->root = parse_or (&p);
  skip_ws (&p);
  if (p.q->root >= 0 && expr[p.pos] != '\0')
    p.q->root = cql_error (&p, "unexpected text after the expression");
  if (p.q->root < 0)
    {
      cp_cql_free (p.q);
      return -1;
    }
  *out = p.q;
  return 0;
}

void cp_cql_free (cp_cql *q)
{
  if (q == NULL)
    return;
  for (size_t i = 0; i < q->n; i++)
    {
      cql_node *node = &q->nodes[i];
      for (size_t j = 0; j < node->n_values; j++)
        free (node->values[j].s);
      free (node->values);
      free (node->attr);
      if (node->has_re)
        regfree (&node->re);
      free (node->memo);
      free (node->hint);
    }
  free (q->nodes);
  free (q);
}

bool cp_cql_uses_task_group (const cp_cql *q)
{
  return q->uses_task_group;
}

/* Dotted versions compare part by part, numerically ("1.10.0" > "1.9.3"). */
static int version_cmp (const char *a, const char *b)
{
  while (*a || *b)
    {
      char *ea, *eb;
      unsigned long long x = strtoull (a, &ea, 10), y = strtoull (b, &eb, 10);
      if (ea == a || eb == b)
        return strcmp (a, b);
      if (x != y)
        return x < y ? -1 : 1;
      a = *ea == '.' ? ea + 1 : ea;
      b = *eb == '.' ? eb + 1 : eb;
      if ((*ea != '.' && *ea) || (*eb != '.' && *eb))
        return strcmp (a, b);
    }
  return 0;
}

/* Numbers compare as numbers when both sides are numbers, otherwise as strings. */
static int value_cmp (const cql_node *node, const char *s, double num, bool is_num,
                      const cql_value *v)
{
  if (node->subject == SUBJ_AGENT_VERSION)
    return version_cmp (s, v->s);
  if (is_num && v->is_num)
    return num < v->num ? -1 : num > v->num;
  return strcmp (s, v->s);
}

static uint64_t hash_str (const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static bool regex_match (const cql_node *node, const char *s)
{
  size_t len = strlen (s);
  if (len >= MEMO_KEY)
    return regexec (&node->re, s, 0, NULL, 0) == 0;
  uint64_t h = hash_str (s);
  cql_memo *m = &node->memo[h % MEMO_SLOTS];
  if (m->used && m->hash == h && strcmp (m->key, s) == 0)
    return m->result;
  m->used = true, m->hash = h;
  memcpy (m->key, s, len + 1);
  m->result = regexec (&node->re, s, 0, NULL, 0) == 0;
  return m->result;
}

/* The positive operators on one present value; negations are handled by the caller. */
static bool test_value (const cql_node *node, enum cql_op op, const char *s, double num,
                        bool is_num)
{
  int c;
  switch (op)
    {
    case OP_MATCH:
      return regex_match (node, s);
    case OP_IN:
      for (size_t i = 0; i < node->n_values; i++)
        if (value_cmp (node, s, num, is_num, &node->values[i]) == 0)
          return true;
      return false;
    default:
      break;
    }
  c = value_cmp (node, s, num, is_num, &node->values[0]);
  switch (op)
    {
    case OP_EQ:
      return c == 0;
    case OP_GT:
      return c > 0;
    case OP_GE:
      return c >= 0;
    case OP_LT:
      return c < 0;
    case OP_LE:
      return c <= 0;
    default:
      return false;
    }
}

static enum cql_op positive (enum cql_op op)
{
  switch (op)
    {
    case OP_NE:
      return OP_EQ;
    case OP_NOT_MATCH:
      return OP_MATCH;
    case OP_NOT_IN:
      return OP_IN;
    case OP_NOT_EXISTS:
      return OP_EXISTS;
    default:
      return op;
    }
}

/* task:group: true when some task's group satisfies the positive operator. */
static bool any_group (const cql_node *node, enum cql_op op, const cp_sched_instance *inst,
                       const char *placed_group)
{
  if (op == OP_EXISTS)
    return inst->n_tasks > 0 || placed_group != NULL;
  if (placed_group && test_value (node, op, placed_group, 0, false))
    return true;
  for (size_t i = 0; i < inst->n_tasks; i++)
    if (inst->task_groups[i] && test_value (node, op, inst->task_groups[i], 0, false))
      return true;
  return false;
}

static bool eval_cmp (const cql_node *node, const cp_sched_instance *inst, const char *placed_group)
{
  enum cql_op op = positive (node->op);
  bool negate = op != node->op, present = true, is_num = false, r;
  const char *s = NULL;
  char buf[32];
  double num = 0;
  switch (node->subject)
    {
    case SUBJ_TASK_GROUP:
      return any_group (node, op, inst, placed_group) != negate;
    case SUBJ_ATTRIBUTE:
      present = (s = cp_sched_attribute_hint (inst, node->attr, node->hint)) != NULL;
      break;
    case SUBJ_EC2_INSTANCE_ID:
      present = (s = inst->ec2_instance_id) != NULL;
      break;
    case SUBJ_AGENT_CONNECTED:
      s = inst->agent_disconnected ? "false" : "true";
      break;
    case SUBJ_AGENT_VERSION:
      present = (s = inst->agent_version) != NULL;
      break;
    case SUBJ_REGISTERED_AT:
    case SUBJ_RUNNING_TASKS:
      num = (double)(node->subject == SUBJ_REGISTERED_AT ? inst->registered_at
                                                         : (int64_t)inst->n_tasks);
      present = node->subject == SUBJ_RUNNING_TASKS || inst->registered_at != 0;
      snprintf (buf, sizeof buf, "%.0f", num);
      s = buf, is_num = true;
      break;
    }
  if (op == OP_EXISTS)
    r = present;
  else if (!present)
    r = false;
  else
    {
      if (!is_num && node->any_num)
        is_num = parse_number (s, &num);
      r = test_value (node, op, s, num, is_num);
    }
  return r != negate;
}

static bool eval_node (const cp_cql *q, int id, const cp_sched_instance *inst,
                       const char *placed_group)
{
  const cql_node *node = &q->nodes[id];
  switch (node->kind)
    {
    case NODE_AND:
      return eval_node (q, node->left, inst, placed_group)
             && eval_node (q, node->right, inst, placed_group);
    case NODE_OR:
      return eval_node (q, node->left, inst, placed_group)
             || eval_node (q, node->right, inst, placed_group);
    case NODE_NOT:
      return !eval_node (q, node->left, inst, placed_group);
    default:
      return eval_cmp (node, inst, placed_group);
    }
}

bool cp_cql_eval (const cp_cql *q, const cp_sched_instance *inst, const char *placed_group)
{
  return eval_node (q, q->root, inst, placed_group);
}
