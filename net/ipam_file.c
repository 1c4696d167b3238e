/* The IPAM state file: a line-based text format with a count and checksum trailer, parsed as
 * untrusted input (a disk after a crash, a hand edit) and validated completely. */
#include "net/internal.h"

#include "lib/cleanup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC_LINE "berth-ipam 1"
#define OWNER_MAX 512

/* FNV-1a 64: enough to notice a torn or edited file; this is not a defence against an attacker
 * who can write the agent's state directory. */
static uint64_t fnv1a (const char *p, size_t n)
{
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
  return h;
}

int net_ipam_owner_valid (const char *owner)
{
  size_t n = 0;
  for (; owner[n] != '\0'; n++)
    if (owner[n] <= ' ' || owner[n] > '~' || n >= OWNER_MAX)
      return 0;
  return n > 0;
}

static int parse_ip (const char *s, uint32_t *out)
{
  struct in_addr a;
  if (inet_pton (AF_INET, s, &a) != 1)
    return -1;
  *out = ntohl (a.s_addr);
  return 0;
}

static uint32_t prefix_mask (unsigned len)
{
  return len == 0 ? 0 : ~0u << (32 - len);
}

int net_ipam_parse_subnet (const char *s, uint32_t *net, unsigned *len, berr **err)
{
  char ip[INET_ADDRSTRLEN];
  const char *slash = strchr (s, '/');
  size_t n = slash ? (size_t)(slash - s) : 0;
  unsigned l = 0;
  int used = 0;
  if (slash == NULL || n >= sizeof ip || sscanf (slash + 1, "%2u%n", &l, &used) != 1
      || slash[1 + used] != '\0' || slash[1] < '0' || slash[1] > '9')
    return berr_make (err, EINVAL, "invalid subnet `%s`: want a.b.c.d/len", s);
  memcpy (ip, s, n);
  ip[n] = '\0';
  uint32_t a;
  if (parse_ip (ip, &a) < 0)
    return berr_make (err, EINVAL, "invalid subnet `%s`: bad address", s);
  if (l < 8 || l > 30)
    return berr_make (err, EINVAL, "invalid subnet `%s`: prefix length must be 8 to 30", s);
  if ((a & ~prefix_mask (l)) != 0)
    return berr_make (err, EINVAL, "invalid subnet `%s`: host bits set", s);
  *net = a;
  *len = l;
  return 0;
}

/* An address a host may hold: inside the subnet, neither the network nor the broadcast one. */
static int host_in_subnet (uint32_t ip, uint32_t net, unsigned len)
{
  uint32_t m = prefix_mask (len);
  return (ip & m) == net && ip != net && ip != (net | ~m);
}

static int cmp_ip (const void *a, const void *b)
{
  uint32_t x = ((const struct net_ipam_entry *)a)->ip, y = ((const struct net_ipam_entry *)b)->ip;
  return x < y ? -1 : x > y;
}

static int cmp_owner (const void *a, const void *b)
{
  return strcmp (*(char *const *)a, *(char *const *)b);
}

/* Duplicates by address or by owner, found by sorting (files may hold tens of thousands). */
static int check_duplicates (struct net_ipam_state *st, berr **err)
{
  if (st->n < 2)
    return 0;
  qsort (st->v, st->n, sizeof *st->v, cmp_ip);
  for (size_t i = 1; i < st->n; i++)
    if (st->v[i].ip == st->v[i - 1].ip)
      return berr_make (err, EINVAL, "address allocated twice");
  _cleanup_free_ char **owners = malloc (st->n * sizeof *owners);
  if (owners == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  for (size_t i = 0; i < st->n; i++)
    owners[i] = st->v[i].owner;
  qsort (owners, st->n, sizeof *owners, cmp_owner);
  for (size_t i = 1; i < st->n; i++)
    if (strcmp (owners[i], owners[i - 1]) == 0)
      return berr_make (err, EINVAL, "owner `%s` holds two addresses", owners[i]);
  return 0;
}

static int add_entry (struct net_ipam_state *st, uint32_t ip, const char *owner, berr **err)
{
  struct net_ipam_entry *nv = realloc (st->v, (st->n + 1) * sizeof *nv);
  if (nv == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  st->v = nv;
  if ((nv[st->n].owner = strdup (owner)) == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  nv[st->n++].ip = ip;
  return 0;
}

/* One line "key value [value]" (line is NUL-terminated, without its newline). */
static int parse_line (struct net_ipam_state *st, int lineno, char *line, berr **err)
{
  char *sp = strchr (line, ' ');
  if (sp == NULL)
    return berr_make (err, EINVAL, "line %d: expected `key value`", lineno);
  *sp = '\0';
  const char *key = line, *val = sp + 1;
  if (lineno == 2 && strcmp (key, "subnet") == 0)
    return net_ipam_parse_subnet (val, &st->net, &st->prefixlen, err);
  if (lineno == 3 && strcmp (key, "gateway") == 0)
    {
      if (parse_ip (val, &st->gateway) < 0 || !host_in_subnet (st->gateway, st->net, st->prefixlen))
        return berr_make (err, EINVAL, "line %d: bad gateway `%s`", lineno, val);
      return 0;
    }
  if (lineno > 3 && strcmp (key, "alloc") == 0)
    {
      char ip[INET_ADDRSTRLEN];
      const char *owner = strchr (val, ' ');
      uint32_t a;
      if (owner == NULL || (size_t)(owner - val) >= sizeof ip)
        return berr_make (err, EINVAL, "line %d: expected `alloc address owner`", lineno);
      memcpy (ip, val, (size_t)(owner - val));
      ip[owner - val] = '\0';
      owner++;
      if (parse_ip (ip, &a) < 0 || !host_in_subnet (a, st->net, st->prefixlen) || a == st->gateway)
        return berr_make (err, EINVAL, "line %d: bad address `%s`", lineno, ip);
      if (!net_ipam_owner_valid (owner))
        return berr_make (err, EINVAL, "line %d: bad owner", lineno);
      return add_entry (st, a, owner, err);
    }
  return berr_make (err, EINVAL, "line %d: unexpected `%s`", lineno, key);
}

/* The trailer "end <count> <checksum>" closes the file; nothing may follow it. */
static int parse_trailer (const struct net_ipam_state *st, const char *text, const char *end_line,
                          size_t rest, berr **err)
{
  char buf[64];
  if (rest >= sizeof buf)
    return berr_make (err, EINVAL, "bad trailer");
  memcpy (buf, end_line, rest);
  buf[rest] = '\0';
  size_t count;
  uint64_t sum;
  char canonical[64];
  if (sscanf (buf, "end %zu %16" SCNx64, &count, &sum) != 2)
    return berr_make (err, EINVAL, "bad trailer");
  /* Only the exact form we write, so that nothing can hide after the checksum. */
  snprintf (canonical, sizeof canonical, "end %zu %016" PRIx64 "\n", count, sum);
  if (strcmp (buf, canonical) != 0)
    return berr_make (err, EINVAL, "bad trailer");
  if (count != st->n)
    return berr_make (err, EINVAL, "trailer counts %zu allocations, file has %zu", count, st->n);
  if (sum != fnv1a (text, (size_t)(end_line - text)))
    return berr_make (err, EINVAL, "checksum mismatch");
  return 0;
}

static int parse_body (const char *text, size_t len, struct net_ipam_state *st, berr **err)
{
  if (memchr (text, '\0', len) != NULL)
    return berr_make (err, EINVAL, "NUL byte in file");
  const char *p = text, *end = text + len;
  for (int lineno = 1;; lineno++)
    {
      const char *nl = memchr (p, '\n', (size_t)(end - p));
      if (nl == NULL)
        return berr_make (err, EINVAL, "truncated at line %d", lineno);
      if (lineno > 3 && (size_t)(end - p) >= 4 && memcmp (p, "end ", 4) == 0)
        return parse_trailer (st, text, p, (size_t)(end - p), err);
      _cleanup_free_ char *line = strndup (p, (size_t)(nl - p));
      if (line == NULL)
        return berr_make (err, ENOMEM, "out of memory");
      if (lineno == 1 ? strcmp (line, MAGIC_LINE) != 0 : parse_line (st, lineno, line, err) < 0)
        return lineno == 1 ? berr_make (err, EINVAL, "not a Berth IPAM file") : -1;
      p = nl + 1;
    }
}

int net_ipam_parse (const char *text, size_t len, struct net_ipam_state *st, berr **err)
{
  memset (st, 0, sizeof *st);
  if (parse_body (text, len, st, err) < 0 || check_duplicates (st, err) < 0)
    {
      net_ipam_state_clear (st);
      return -1;
    }
  return 0;
}

void net_ipam_state_clear (struct net_ipam_state *st)
{
  for (size_t i = 0; i < st->n; i++)
    free (st->v[i].owner);
  free (st->v);
  st->v = NULL;
  st->n = 0;
}

static void put_ip (FILE *f, uint32_t ip)
{
  fprintf (f, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

char *net_ipam_format (const struct net_ipam_state *st, size_t *len)
{
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream (&buf, &n);
  if (f == NULL)
    return NULL;
  fputs (MAGIC_LINE "\nsubnet ", f);
  put_ip (f, st->net);
  fprintf (f, "/%u\ngateway ", st->prefixlen);
  put_ip (f, st->gateway);
  fputc ('\n', f);
  for (size_t i = 0; i < st->n; i++)
    {
      fputs ("alloc ", f);
      put_ip (f, st->v[i].ip);
      fprintf (f, " %s\n", st->v[i].owner);
    }
  fflush (f);
  fprintf (f, "end %zu %016" PRIx64 "\n", st->n, fnv1a (buf, n));
  if (fclose (f) != 0)
    {
      free (buf);
      return NULL;
    }
  *len = n;
  return buf;
}
