/* berth-shim internals: the per-container monitor's context and the pieces main.c ties together.
 * Only libc and lib/{error,fs,clock,strv,log} may be used here: the shim is a static musl binary.
 */
#ifndef BERTH_SHIM_H
#define BERTH_SHIM_H

#include "lib/clock.h"
#include "lib/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A log record carries at most this many bytes of one line (json-file's split size). */
#define SHIM_LINE_MAX (16 * 1024)

struct shim_opts
{
  const char *id;
  char *state_dir; /* absolute */
  const char *runtime;
  const char *runtime_root; /* NULL: the runtime's default */
  const char *bundle;
  char *log_file; /* absolute */
  uint64_t log_max_size;
  unsigned log_max_files;
  int log_driver;       /* enum shim_log_driver */
  const char *log_tag;  /* journald: CONTAINER_TAG and SYSLOG_IDENTIFIER (default: id) */
  const char *log_name; /* journald: CONTAINER_NAME (default: id) */
};

/* Parses the command line into o (newly allocated paths, freed by shim_opts_free). Returns 0,
 * 1 when --help was printed, or -1 with err set. */
int shim_parse_args (int argc, char **argv, struct shim_opts *o, berr **err);
void shim_opts_free (struct shim_opts *o);

/* monitor.c: everything after the fork. Runs the container and monitors it until it exits;
 * writes "ok PID" or "error MESSAGE" to report_fd once the start is decided. Returns the
 * process exit code. */
int shim_monitor_run (const struct shim_opts *o, int report_fd);

/* jsonfmt.c: hand-formatted JSON (the shim carries no JSON library). */
struct sbuf
{
  char *p;
  size_t len, cap;
  bool oom; /* an allocation failed: the content is incomplete */
};

void sbuf_add (struct sbuf *b, const char *s, size_t n);
void sbuf_addf (struct sbuf *b, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Appends s as a quoted, escaped JSON string, or `null` when s is NULL. */
void sbuf_add_json_str (struct sbuf *b, const char *s);
void sbuf_free (struct sbuf *b);

/* Bytes that byte c takes inside a JSON string: 1, 2 (\n, \", ...) or 6 (\u00XX). */
static inline __attribute__ ((always_inline)) size_t json_escaped_size (unsigned char c)
{
  if (c >= 0x20)
    return c == '"' || c == '\\' ? 2 : 1;
  return c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t' ? 2 : 6;
}
/* Writes the escaped form of c to out (room for 6 bytes); returns the bytes written. */
size_t json_escape_byte (unsigned char c, char *out);
/* How many leading bytes of s (at most n) escape into at most room bytes; *esc_len gets their
 * escaped size. */
size_t json_escape_fit (const char *s, size_t n, size_t room, size_t *esc_len);

/* logfile.c: the container log in json-file format with size-based rotation. */
enum shim_stream_kind
{
  SHIM_STDOUT = 0,
  SHIM_STDERR = 1,
};

enum shim_log_driver
{
  SHIM_LOG_JSON_FILE = 0,
  SHIM_LOG_JOURNALD,
  SHIM_LOG_NONE,
};

/* journal.c: the journald driver's half of struct shim_log. */
struct shim_journal
{
  int fd;       /* unconnected AF_UNIX datagram socket, non-blocking */
  char *socket; /* the journal's native socket path */
  char *head;   /* the fixed fields (tag, name, id) in native form */
  size_t head_len;
  char *msg; /* one datagram being built */
  bool warned_absent;
};

struct shim_log
{
  enum shim_log_driver driver;
  struct shim_journal jn;
  const char *path;
  int fd; /* -1 after a failed rotation: reopened on the next record */
  uint64_t size, max_size;
  unsigned max_files;
  uint64_t dropped; /* records lost to write errors */
  /* The batch: records escaped into buf since the last flush, written together. */
  uint64_t batch_start; /* file size before the batch */
  uint64_t batch_records;
  bool write_failed;
  int write_errno;
  size_t used;
  char buf[4096];
};

/* Opens the log of o's driver: json-file at o->log_file, the journal's socket, or nothing. */
int shim_log_open (struct shim_log *lg, const struct shim_opts *o, berr **err);
/* Adds data (one line, or a piece of one) as one or more records stamped ts to the batch.
 * Never blocks on anything but the file itself. */
void shim_log_write (struct shim_log *lg, enum shim_stream_kind kind, const char *data, size_t n,
                     const char ts[BCLOCK_RFC3339_LEN]);
/* Writes the batch; if that fails its records are dropped (cut from the file) and counted. */
void shim_log_flush (struct shim_log *lg);
void shim_log_close (struct shim_log *lg);
/* Counts n lost records (warns on the first and every thousandth). */
void shim_log_count_drops (struct shim_log *lg, uint64_t n);

/* journal.c: each record is one datagram in journald's native protocol, sent without waiting;
 * a record the socket does not take now is dropped and counted. */
int shim_journal_open (struct shim_log *lg, const struct shim_opts *o, berr **err);
void shim_journal_write (struct shim_log *lg, enum shim_stream_kind kind, const char *data,
                         size_t n);
void shim_journal_close (struct shim_log *lg);

/* stream.c: one of the container's output pipes, cut into lines. */
struct shim_stream
{
  int fd; /* read end, O_NONBLOCK; -1 once closed */
  enum shim_stream_kind kind;
  char *buf; /* SHIM_LINE_MAX bytes: the pending partial line */
  size_t len;
};

int shim_stream_init (struct shim_stream *st, int fd, enum shim_stream_kind kind, berr **err);
/* Reads what is available now (up to a bounded amount) and logs the complete lines. Returns 1
 * while the pipe stays open, 0 at end of file (partial line flushed, fd closed). */
int shim_stream_pump (struct shim_stream *st, struct shim_log *lg);
/* Reads everything available without blocking, then flushes the partial line and closes. */
void shim_stream_drain (struct shim_stream *st, struct shim_log *lg);
void shim_stream_free (struct shim_stream *st);

/* state.c: DIR/state.json. */
enum shim_status
{
  SHIM_RUNNING,
  SHIM_STOPPED,
  SHIM_FAILED,
};

struct shim_state
{
  const char *id;
  enum shim_status status;
  pid_t pid; /* 0 until started */
  pid_t shim_pid;
  int64_t started_ns;  /* 0: not started */
  int64_t finished_ns; /* 0: not finished */
  int exit_code;       /* valid when finished_ns != 0 */
  int signo;           /* killed by this signal, else 0 */
  bool oom_killed;
  uint64_t dropped;
  const char *error; /* NULL unless failed */
};

/* Replaces dirfd/state.json atomically. */
int shim_state_write (int dirfd, const struct shim_state *st, berr **err);
/* "KILL" for SIGKILL, NULL for a number without a name. */
const char *shim_signal_name (int signo);

/* oom.c: OOM kills counted by the container's memory cgroup (v1 or v2). */
struct shim_oom
{
  int fd;      /* memory.events (v2) or memory.oom_control (v1), kept open; -1 if unknown */
  int version; /* 1 or 2, 0 when no memory cgroup was found */
  uint64_t baseline;
};

/* Finds pid's memory cgroup and opens its OOM kill counter. The baseline is 0 for a cgroup of
 * the container's own, else (shared with the shim) the current count. Failures only disable
 * detection (logged). */
void shim_oom_setup (struct shim_oom *o, pid_t pid);
/* True if the cgroup's oom_kill count is above the baseline. */
bool shim_oom_count_grew (struct shim_oom *o);
void shim_oom_close (struct shim_oom *o);

#endif
