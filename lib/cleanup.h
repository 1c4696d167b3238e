/* Scope-bound cleanup for locals: ownership stays visible and failure paths stay short. */
#ifndef BERTH_LIB_CLEANUP_H
#define BERTH_LIB_CLEANUP_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void cleanup_freep (void *p)
{
  free (*(void **)p);
}

static inline void cleanup_closep (int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close (*fd);
      errno = saved;
    }
}

static inline void cleanup_fclosep (FILE **f)
{
  if (*f)
    fclose (*f);
}

#define _cleanup_free_ __attribute__ ((cleanup (cleanup_freep)))
#define _cleanup_close_ __attribute__ ((cleanup (cleanup_closep)))
#define _cleanup_fclose_ __attribute__ ((cleanup (cleanup_fclosep)))

/* Hands ownership out of a cleanup-managed local: `return steal_fd (&fd);` */
static inline int steal_fd (int *fd)
{
  int r = *fd;
  *fd = -1;
  return r;
}

static inline void *steal_ptr (void *pp)
{
  void **p = pp;
  void *r = *p;
  *p = NULL;
  return r;
}

#define ARRAY_SIZE(a) (sizeof (a) / sizeof ((a)[0]))

#endif
