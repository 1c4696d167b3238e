/* Leveled logging to stderr or the systemd journal; one line per event, no secrets. */
#ifndef BERTH_LIB_LOG_H
#define BERTH_LIB_LOG_H

#include "lib/error.h"

enum blog_level
{
  BLOG_ERROR = 0,
  BLOG_WARN,
  BLOG_INFO,
  BLOG_DEBUG,
};

enum blog_sink
{
  BLOG_SINK_AUTO = 0, /* the journal when enabled and stderr is connected to it, else stderr */
  BLOG_SINK_STDERR,
  BLOG_SINK_JOURNAL,
};

void blog_setup (const char *ident, enum blog_level level, enum blog_sink sink);

/* Journal support is opt-in (lib/log_journal.c): a daemon calls this before blog_setup, so that
 * short-lived tools such as berth-runtime do not load libsystemd and its five dependencies. */
void blog_enable_journal (void);

/* Internal to lib/: the journal writer, installed by blog_enable_journal. */
typedef void (*blog_journal_fn) (int priority, const char *ident, const char *msg);
void blog_set_journal_writer (blog_journal_fn fn);
enum blog_level blog_get_level (void);

/* Accepts error, warn, info, debug (case-insensitive) and the ECS_LOGLEVEL spellings crit/warning.
 */
int blog_parse_level (const char *s, enum blog_level *out);

void blog_msg (enum blog_level level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* Logs an error value once, at the top, and frees it. */
void blog_berr (berr **err);

#define blog_error(...) blog_msg (BLOG_ERROR, __VA_ARGS__)
#define blog_warn(...) blog_msg (BLOG_WARN, __VA_ARGS__)
#define blog_info(...) blog_msg (BLOG_INFO, __VA_ARGS__)
#define blog_debug(...)                                                                            \
  do                                                                                               \
    {                                                                                              \
      if (blog_get_level () >= BLOG_DEBUG)                                                         \
        blog_msg (BLOG_DEBUG, __VA_ARGS__);                                                        \
    }                                                                                              \
  while (0)

#endif
