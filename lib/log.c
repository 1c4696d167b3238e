/* Logging sinks: stderr always, the journal when a program enabled it (lib/log_journal.c). */
#include "lib/log.h"

#include "lib/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static struct
{
  const char *ident;
  enum blog_level level;
  enum blog_sink sink;
  blog_journal_fn journal;
} log_cfg = { "berth", BLOG_INFO, BLOG_SINK_STDERR, NULL };

void blog_set_journal_writer (blog_journal_fn fn)
{
  log_cfg.journal = fn;
}

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* systemd sets JOURNAL_STREAM=dev:ino for a service whose stderr is the journal. */
static int stderr_is_journal (void)
{
  const char *js = getenv ("JOURNAL_STREAM");
  struct stat st;
  unsigned long long dev, ino;
  if (js == NULL || sscanf (js, "%llu:%llu", &dev, &ino) != 2 || fstat (STDERR_FILENO, &st) < 0)
    return 0;
  return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void blog_setup (const char *ident, enum blog_level level, enum blog_sink sink)
{
  log_cfg.ident = ident;
  log_cfg.level = level;
  if (sink == BLOG_SINK_AUTO)
    sink = stderr_is_journal () ? BLOG_SINK_JOURNAL : BLOG_SINK_STDERR;
  if (log_cfg.journal == NULL)
    sink = BLOG_SINK_STDERR;
  log_cfg.sink = sink;
}

enum blog_level blog_get_level (void)
{
  return log_cfg.level;
}

int blog_parse_level (const char *s, enum blog_level *out)
{
  static const struct
  {
    const char *name;
    enum blog_level level;
  } names[] = {
    { "crit", BLOG_ERROR },   { "error", BLOG_ERROR }, { "warn", BLOG_WARN },
    { "warning", BLOG_WARN }, { "info", BLOG_INFO },   { "debug", BLOG_DEBUG },
  };
  for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
    if (strcasecmp (s, names[i].name) == 0)
      {
        *out = names[i].level;
        return 0;
      }
  return -1;
}

void blog_msg (enum blog_level level, const char *fmt, ...)
{
  if (level > log_cfg.level)
    return;
  char msg[2048];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);

  if (log_cfg.sink == BLOG_SINK_JOURNAL && log_cfg.journal)
    {
      static const int prio[] = { 3, 4, 6, 7 }; /* syslog's err, warning, info, debug */
      log_cfg.journal (prio[level], log_cfg.ident, msg);
      return;
    }
  char ts[BCLOCK_RFC3339_LEN];
  bclock_rfc3339 (bclock_real_ns (), ts);
  /* One write per line so concurrent writers do not interleave within a line. */
  dprintf (STDERR_FILENO, "%s %s[%d] %s: %s\n", ts, log_cfg.ident, (int)getpid (),
           level_names[level], msg);
}

void blog_berr (berr **err)
{
  if (err && *err)
    blog_msg (BLOG_ERROR, "%s", (*err)->msg);
  berr_free (err);
}
