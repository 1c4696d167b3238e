/* Error values: built by the callee, wrapped on the way up, logged once at the top. */
#include "lib/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *vformat (const char *fmt, va_list ap)
{
  char *s = NULL;
  if (vasprintf (&s, fmt, ap) < 0)
    return NULL;
  return s;
}

static int set_error (berr **err, int errnum, char *msg)
{
  if (err == NULL)
    {
      free (msg);
      return -1;
    }
  berr_free (err);
  berr *e = calloc (1, sizeof *e);
  if (e == NULL)
    {
      free (msg);
      return -1;
    }
  e->errnum = errnum;
  e->msg = msg ? msg : strdup ("out of memory while reporting an error");
  *err = e;
  return -1;
}

static int make_v (berr **err, int errnum, bool with_strerror, const char *fmt, va_list ap)
{
  char *ctx = vformat (fmt, ap);
  char *msg = NULL;
  if (ctx && errnum != 0 && with_strerror)
    {
      if (asprintf (&msg, "%s: %s", ctx, strerror (errnum)) < 0)
        msg = NULL;
      free (ctx);
    }
  else
    msg = ctx;
  return set_error (err, errnum, msg);
}

int berr_make (berr **err, int errnum, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int ret = make_v (err, errnum, false, fmt, ap);
  va_end (ap);
  return ret;
}

int berr_sys (berr **err, const char *fmt, ...)
{
  int saved = errno;
  va_list ap;
  va_start (ap, fmt);
  int ret = make_v (err, saved, true, fmt, ap);
  va_end (ap);
  errno = saved;
  return ret;
}

int berr_sysn (berr **err, int errnum, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int ret = make_v (err, errnum, true, fmt, ap);
  va_end (ap);
  return ret;
}

int berr_wrap (berr **err, const char *fmt, ...)
{
  if (err == NULL || *err == NULL)
    return -1;
  va_list ap;
  va_start (ap, fmt);
  char *ctx = vformat (fmt, ap);
  va_end (ap);
  char *msg = NULL;
  if (ctx == NULL || asprintf (&msg, "%s: %s", ctx, (*err)->msg) < 0)
    {
      free (ctx);
      return -1; /* keep the inner message rather than lose it */
    }
  free (ctx);
  free ((*err)->msg);
  (*err)->msg = msg;
  return -1;
}

int berr_errno (const berr *err)
{
  return err ? err->errnum : 0;
}

void berr_free (berr **err)
{
  if (err == NULL || *err == NULL)
    return;
  free ((*err)->msg);
  free (*err);
  *err = NULL;
}

void berr_freep (berr **err)
{
  berr_free (err);
}
