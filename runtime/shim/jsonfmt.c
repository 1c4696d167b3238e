/* The two JSON shapes the shim writes (log records, state.json) are formatted by hand: a JSON
 * library would cost more than the rest of the shim. Escaping follows RFC 8259 section 7.
 * Bytes >= 0x80 pass through untouched, so valid UTF-8 stays readable and invalid UTF-8 is
 * carried as the raw bytes the container wrote; only what JSON forbids is escaped. */
#include "runtime/shim/shim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t json_escape_byte (unsigned char c, char *out)
{
  static const char hex[] = "0123456789abcdef";
  char short_form = 0;
  switch (c)
    {
    case '"':
      short_form = '"';
      break;
    case '\\':
      short_form = '\\';
      break;
    case '\b':
      short_form = 'b';
      break;
    case '\f':
      short_form = 'f';
      break;
    case '\n':
      short_form = 'n';
      break;
    case '\r':
      short_form = 'r';
      break;
    case '\t':
      short_form = 't';
      break;
    default:
      break;
    }
  if (short_form)
    {
      out[0] = '\\';
      out[1] = short_form;
      return 2;
    }
  if (c >= 0x20)
    {
      out[0] = (char)c;
      return 1;
    }
  memcpy (out, "\\u00", 4);
  out[4] = hex[c >> 4];
  out[5] = hex[c & 0xf];
  return 6;
}

size_t json_escape_fit (const char *s, size_t n, size_t room, size_t *esc_len)
{
  size_t used = 0, i = 0;
  for (; i < n; i++)
    {
      size_t e = json_escaped_size ((unsigned char)s[i]);
      if (used + e > room)
        break;
      used += e;
    }
  *esc_len = used;
  return i;
}

static bool sbuf_reserve (struct sbuf *b, size_t extra)
{
  if (b->oom)
    return false;
  if (b->len + extra + 1 <= b->cap)
    return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1)
    cap *= 2;
  char *p = realloc (b->p, cap);
  if (p == NULL)
    {
      b->oom = true;
      return false;
    }
  b->p = p;
  b->cap = cap;
  return true;
}

void sbuf_add (struct sbuf *b, const char *s, size_t n)
{
  if (!sbuf_reserve (b, n))
    return;
  memcpy (b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void sbuf_addf (struct sbuf *b, const char *fmt, ...)
{
  char small[128];
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (small, sizeof small, fmt, ap);
  va_end (ap);
  if (n < 0)
    {
      b->oom = true;
      return;
    }
  if ((size_t)n < sizeof small)
    {
      sbuf_add (b, small, (size_t)n);
      return;
    }
  if (!sbuf_reserve (b, (size_t)n))
    return;
  va_start (ap, fmt);
  vsnprintf (b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end (ap);
  b->len += (size_t)n;
}

void sbuf_add_json_str (struct sbuf *b, const char *s)
{
  if (s == NULL)
    {
      sbuf_add (b, "null", 4);
      return;
    }
  size_t n = strlen (s), esc = 0;
  for (size_t i = 0; i < n; i++)
    esc += json_escaped_size ((unsigned char)s[i]);
  if (!sbuf_reserve (b, esc + 2))
    return;
  char *o = b->p + b->len;
  *o++ = '"';
  for (size_t i = 0; i < n; i++)
    o += json_escape_byte ((unsigned char)s[i], o);
  *o++ = '"';
  b->len = (size_t)(o - b->p);
  b->p[b->len] = '\0';
}

void sbuf_free (struct sbuf *b)
{
  free (b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}
