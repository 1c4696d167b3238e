/* Berth's one error convention: a fallible function takes `berr **err` last, fills it on
 * failure and returns a negative value; callers wrap it with context and the top logs it once. */
#ifndef BERTH_LIB_ERROR_H
#define BERTH_LIB_ERROR_H

typedef struct berr
{
  int errnum; /* errno of the root cause, 0 when there is none */
  char *msg;  /* "outer context: inner context: cause[: strerror]" */
} berr;

/* Sets *err (replacing any earlier error) and returns -1. errnum classifies the error (EINVAL,
 * ENOENT...) for callers that branch on it; the message is exactly what fmt says. */
int berr_make (berr **err, int errnum, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* A failed system call: errno is the cause and its text is appended:
 * `return berr_sys (err, "open `%s`", path);` -> "open `/x`: No such file or directory". */
int berr_sys (berr **err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* berr_sys with an explicit errno, for APIs that return -errno (sd-bus, libcgroup). */
int berr_sysn (berr **err, int errnum, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* Prefixes context to an existing error ("context: old message") and returns -1. */
int berr_wrap (berr **err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* The errno of the root cause, or 0. */
int berr_errno (const berr *err);

void berr_free (berr **err);
void berr_freep (berr **err);

#define _cleanup_berr_ __attribute__ ((cleanup (berr_freep)))

#endif
