/* The systemd journal as a log sink, linked only into programs that call blog_enable_journal. */
#include "lib/log.h"

#include <systemd/sd-journal.h>

static void journal_write (int priority, const char *ident, const char *msg)
{
  sd_journal_send ("MESSAGE=%s", msg, "PRIORITY=%d", priority, "SYSLOG_IDENTIFIER=%s", ident, NULL);
}

void blog_enable_journal (void)
{
  blog_set_journal_writer (journal_write);
}
