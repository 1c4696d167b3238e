/* The container log in Docker's json-file format, one record per line, rotated by size, and the
 * dispatch to the other drivers (journald: journal.c; none: output read and discarded).
 * Writing must never hold up the container: records that cannot be written are dropped whole
 * (the file is cut back to where their batch began) and counted. */
#include "runtime/shim/shim.h"

#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const stream_names[] = { "stdout", "stderr" };
#define STREAM_NAME_LEN 6

#define REC_HEAD "{\"log\":\""
#define REC_STREAM "\",\"stream\":\""
#define REC_TIME "\",\"time\":\""
#define REC_TAIL "\"}\n"

/* Bytes a record adds around the escaped text. */
static size_t record_overhead (size_t ts_len)
{
  return strlen (REC_HEAD) + strlen (REC_STREAM) + STREAM_NAME_LEN + strlen (REC_TIME) + ts_len
         + strlen (REC_TAIL);
}

static int open_log (const char *path, bool truncate)
{
  int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW;
  return open (path, flags | (truncate ? O_TRUNC : 0), 0640);
}

int shim_log_open (struct shim_log *lg, const struct shim_opts *o, berr **err)
{
  const char *path = o->log_file;
  lg->driver = (enum shim_log_driver)o->log_driver;
  lg->jn.fd = -1;
  lg->path = path;
  lg->max_size = o->log_max_size;
  lg->max_files = o->log_max_files;
  lg->dropped = 0;
  lg->used = 0;
  lg->fd = -1;
  if (lg->driver == SHIM_LOG_NONE)
    return 0;
  if (lg->driver == SHIM_LOG_JOURNALD)
    return shim_journal_open (lg, o, err);
  lg->fd = open_log (path, false);
  if (lg->fd < 0)
    return berr_sys (err, "open the container log `%s`", path);
  struct stat st;
  lg->size = fstat (lg->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
  lg->batch_start = lg->size; /* a failed first batch must not cut what was already there */
  lg->batch_records = 0;
  lg->write_failed = false;
  return 0;
}

/* FILE.(N-2) -> FILE.(N-1), ..., FILE -> FILE.1 (the oldest is overwritten). Readers following
 * FILE by name then see the new file; one holding the old fd reads on. */
static void shift_files (struct shim_log *lg)
{
  for (unsigned i = lg->max_files - 1; i >= 1; i--)
    {
      char *from = NULL, *to = NULL;
      int ok
          = (i == 1 ? asprintf (&from, "%s", lg->path) : asprintf (&from, "%s.%u", lg->path, i - 1))
            >= 0;
      ok = ok && asprintf (&to, "%s.%u", lg->path, i) >= 0;
      if (ok && rename (from, to) < 0 && errno != ENOENT)
        blog_warn ("rotate the container log: rename `%s` to `%s`: %s", from, to, strerror (errno));
      free (from);
      free (to);
    }
}

/* Starts a new, empty FILE (with one file, FILE is just emptied). After a failed attempt the
 * next record only retries the open: the old files are not shifted again. */
static int rotate (struct shim_log *lg)
{
  if (lg->fd >= 0)
    {
      close (lg->fd);
      lg->fd = -1;
      shift_files (lg);
    }
  lg->fd = open_log (lg->path, true);
  if (lg->fd < 0)
    {
      lg->write_errno = errno;
      return -1;
    }
  lg->size = 0;
  lg->batch_start = 0;
  return 0;
}

/* Writes the buffer out. After a failure the rest of the batch is discarded unwritten. */
static void out_write (struct shim_log *lg)
{
  const char *p = lg->buf;
  size_t n = lg->used;
  lg->used = 0;
  while (n > 0 && !lg->write_failed)
    {
      ssize_t w = write (lg->fd, p, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        {
          lg->write_failed = true;
          lg->write_errno = w < 0 ? errno : EIO;
          break;
        }
      p += w;
      n -= (size_t)w;
    }
}

static void out_add (struct shim_log *lg, const char *s, size_t n)
{
  while (n > 0)
    {
      if (lg->used == sizeof lg->buf)
        out_write (lg);
      size_t k = sizeof lg->buf - lg->used;
      k = k < n ? k : n;
      memcpy (lg->buf + lg->used, s, k);
      lg->used += k;
      s += k;
      n -= k;
    }
}

/* Copies runs of bytes that need no escaping in one go: most output is plain text. */
static void out_add_escaped (struct shim_log *lg, const char *s, size_t n)
{
  size_t i = 0;
  while (i < n)
    {
      size_t run = i;
      while (run < n && json_escaped_size ((unsigned char)s[run]) == 1)
        run++;
      out_add (lg, s + i, run - i);
      if (run == n)
        break;
      if (sizeof lg->buf - lg->used < 6)
        out_write (lg);
      lg->used += json_escape_byte ((unsigned char)s[run], lg->buf + lg->used);
      i = run + 1;
    }
}

void shim_log_count_drops (struct shim_log *lg, uint64_t n)
{
  uint64_t before = lg->dropped;
  lg->dropped += n;
  if (before == 0 || before / 1000 != lg->dropped / 1000)
    blog_warn ("container log `%s`: %s; %llu line(s) dropped so far",
               lg->driver == SHIM_LOG_JOURNALD ? lg->jn.socket : lg->path,
               strerror (lg->write_errno), (unsigned long long)lg->dropped);
}

/* Ends the batch: records are written together, and a failed batch is cut back out of the
 * file and counted, so the file only ever holds whole lines. */
void shim_log_flush (struct shim_log *lg)
{
  if (lg->driver != SHIM_LOG_JSON_FILE)
    return; /* journald sends each record at once; none has nothing */
  if (lg->used > 0)
    out_write (lg);
  if (lg->write_failed)
    {
      shim_log_count_drops (lg, lg->batch_records);
      struct stat st;
      if (ftruncate (lg->fd, (off_t)lg->batch_start) == 0)
        lg->size = lg->batch_start;
      else
        lg->size = fstat (lg->fd, &st) == 0 ? (uint64_t)st.st_size : lg->batch_start;
    }
  lg->write_failed = false;
  lg->batch_start = lg->size;
  lg->batch_records = 0;
}

static void write_record (struct shim_log *lg, enum shim_stream_kind kind, const char *data,
                          size_t n, size_t esc_len, const char *ts, size_t ts_len)
{
  uint64_t len = record_overhead (ts_len) + esc_len;
  if (lg->fd < 0 || (lg->size > 0 && lg->size + len > lg->max_size))
    {
      shim_log_flush (lg);
      if (rotate (lg) < 0)
        {
          shim_log_count_drops (lg, 1);
          return;
        }
    }
  else if (lg->used + len > sizeof lg->buf)
    shim_log_flush (lg); /* a record starts a batch rather than straddle two */
  lg->batch_records++;
  lg->size += len;
  out_add (lg, REC_HEAD, strlen (REC_HEAD));
  out_add_escaped (lg, data, n);
  out_add (lg, REC_STREAM, strlen (REC_STREAM));
  out_add (lg, stream_names[kind], STREAM_NAME_LEN);
  out_add (lg, REC_TIME, strlen (REC_TIME));
  out_add (lg, ts, ts_len);
  out_add (lg, REC_TAIL, strlen (REC_TAIL));
}

void shim_log_write (struct shim_log *lg, enum shim_stream_kind kind, const char *data, size_t n,
                     const char ts[BCLOCK_RFC3339_LEN])
{
  if (lg->driver == SHIM_LOG_NONE)
    return;
  if (lg->driver == SHIM_LOG_JOURNALD)
    {
      shim_journal_write (lg, kind, data, n);
      return;
    }
  /* Split further when escaping would make one record larger than a whole file may be, so
   * every file stays within max size (shim_parse_args keeps max size well above a record's
   * overhead). */
  size_t ts_len = strlen (ts);
  size_t room = (size_t)(lg->max_size - record_overhead (ts_len));
  while (n > 0)
    {
      size_t esc_len = 0;
      size_t take = json_escape_fit (data, n, room, &esc_len);
      write_record (lg, kind, data, take, esc_len, ts, ts_len);
      data += take;
      n -= take;
    }
}

void shim_log_close (struct shim_log *lg)
{
  if (lg->driver == SHIM_LOG_JOURNALD)
    shim_journal_close (lg);
  if (lg->fd >= 0)
    shim_log_flush (lg);
  if (lg->fd >= 0)
    close (lg->fd);
  lg->fd = -1;
}
