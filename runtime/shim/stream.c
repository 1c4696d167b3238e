/* The container's stdout and stderr pipes, cut into lines for the log. A line longer than
 * SHIM_LINE_MAX is logged in pieces as it comes, so one stream never needs more buffer. */
#include "runtime/shim/shim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads per wakeup before going back to epoll, so one busy stream cannot starve the other. */
#define PUMP_READS 16

int shim_stream_init (struct shim_stream *st, int fd, enum shim_stream_kind kind, berr **err)
{
  st->fd = fd;
  st->kind = kind;
  st->len = 0;
  /* malloc'd, not static: pages are touched only as far as lines actually reach. */
  st->buf = malloc (SHIM_LINE_MAX);
  if (st->buf == NULL)
    return berr_make (err, ENOMEM, "allocate a stream buffer");
  return 0;
}

/* Logs every complete line in the buffer, a full buffer as a piece, keeps the rest. */
static void emit_lines (struct shim_stream *st, struct shim_log *lg, const char *ts)
{
  size_t start = 0;
  for (;;)
    {
      char *nl = memchr (st->buf + start, '\n', st->len - start);
      if (nl == NULL)
        break;
      size_t end = (size_t)(nl - st->buf) + 1;
      shim_log_write (lg, st->kind, st->buf + start, end - start, ts);
      start = end;
    }
  if (start == 0 && st->len == SHIM_LINE_MAX)
    {
      shim_log_write (lg, st->kind, st->buf, st->len, ts);
      start = st->len;
    }
  if (start > 0)
    {
      memmove (st->buf, st->buf + start, st->len - start);
      st->len -= start;
    }
}

static void flush_and_close (struct shim_stream *st, struct shim_log *lg)
{
  if (st->len > 0)
    {
      char ts[BCLOCK_RFC3339_LEN];
      bclock_rfc3339 (bclock_real_ns (), ts);
      shim_log_write (lg, st->kind, st->buf, st->len, ts);
      shim_log_flush (lg);
      st->len = 0;
    }
  if (st->fd >= 0)
    close (st->fd);
  st->fd = -1;
}

/* One read into the buffer; 1 data, 0 end of file, -1 nothing available now. */
static int read_once (struct shim_stream *st, struct shim_log *lg)
{
  ssize_t n;
  do
    n = read (st->fd, st->buf + st->len, SHIM_LINE_MAX - st->len);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN)
    return -1;
  if (n <= 0)
    return 0; /* EOF, or an error that will not go away: treat alike */
  st->len += (size_t)n;
  char ts[BCLOCK_RFC3339_LEN];
  bclock_rfc3339 (bclock_real_ns (), ts);
  emit_lines (st, lg, ts);
  shim_log_flush (lg);
  return 1;
}

int shim_stream_pump (struct shim_stream *st, struct shim_log *lg)
{
  if (st->fd < 0)
    return 0;
  for (int i = 0; i < PUMP_READS; i++)
    {
      int r = read_once (st, lg);
      if (r < 0)
        return 1;
      if (r == 0)
        {
          flush_and_close (st, lg);
          return 0;
        }
    }
  return 1;
}

void shim_stream_drain (struct shim_stream *st, struct shim_log *lg)
{
  if (st->fd < 0)
    return;
  /* Bounded: a daemonised grandchild still writing must not keep the shim alive. */
  for (int i = 0; i < 4096; i++)
    if (read_once (st, lg) <= 0)
      break;
  flush_and_close (st, lg);
}

void shim_stream_free (struct shim_stream *st)
{
  if (st->fd >= 0)
    close (st->fd);
  st->fd = -1;
  free (st->buf);
  st->buf = NULL;
}
