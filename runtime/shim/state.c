/* DIR/state.json: what the agent reads to learn a container's fate, replaced atomically at every
 * change so a reader never sees a torn file, even across a crash. */
#include "runtime/shim/shim.h"

#include "lib/fs.h"

#include <errno.h>
#include <signal.h>

const char *shim_signal_name (int signo)
{
  static const struct
  {
    int signo;
    const char *name;
  } names[] = {
    { SIGHUP, "HUP" },   { SIGINT, "INT" },       { SIGQUIT, "QUIT" }, { SIGILL, "ILL" },
    { SIGTRAP, "TRAP" }, { SIGABRT, "ABRT" },     { SIGBUS, "BUS" },   { SIGFPE, "FPE" },
    { SIGKILL, "KILL" }, { SIGUSR1, "USR1" },     { SIGSEGV, "SEGV" }, { SIGUSR2, "USR2" },
    { SIGPIPE, "PIPE" }, { SIGALRM, "ALRM" },     { SIGTERM, "TERM" }, { SIGSTKFLT, "STKFLT" },
    { SIGCHLD, "CHLD" }, { SIGCONT, "CONT" },     { SIGSTOP, "STOP" }, { SIGTSTP, "TSTP" },
    { SIGTTIN, "TTIN" }, { SIGTTOU, "TTOU" },     { SIGURG, "URG" },   { SIGXCPU, "XCPU" },
    { SIGXFSZ, "XFSZ" }, { SIGVTALRM, "VTALRM" }, { SIGPROF, "PROF" }, { SIGWINCH, "WINCH" },
    { SIGIO, "IO" },     { SIGPWR, "PWR" },       { SIGSYS, "SYS" },
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].signo == signo)
      return names[i].name;
  return NULL;
}

static void add_time (struct sbuf *b, const char *key, int64_t ns)
{
  sbuf_addf (b, ",\"%s\":", key);
  if (ns == 0)
    {
      sbuf_add (b, "null", 4);
      return;
    }
  char ts[BCLOCK_RFC3339_LEN];
  bclock_rfc3339 (ns, ts);
  sbuf_add_json_str (b, ts);
}

static void add_exit (struct sbuf *b, const struct shim_state *st)
{
  if (st->finished_ns == 0)
    {
      sbuf_addf (b, ",\"exitCode\":null,\"signal\":null");
      return;
    }
  sbuf_addf (b, ",\"exitCode\":%d,\"signal\":", st->exit_code);
  const char *name = shim_signal_name (st->signo);
  if (st->signo == 0)
    sbuf_add (b, "null", 4);
  else if (name)
    sbuf_add_json_str (b, name);
  else
    sbuf_addf (b, "%d", st->signo);
}

int shim_state_write (int dirfd, const struct shim_state *st, berr **err)
{
  static const char *const status_names[] = { "running", "stopped", "failed" };
  struct sbuf b = { 0 };
  sbuf_add (&b, "{\"id\":", 6);
  sbuf_add_json_str (&b, st->id);
  sbuf_addf (&b, ",\"status\":\"%s\",\"pid\":%d,\"shimPid\":%d", status_names[st->status],
             (int)st->pid, (int)st->shim_pid);
  add_time (&b, "startedAt", st->started_ns);
  add_time (&b, "finishedAt", st->finished_ns);
  add_exit (&b, st);
  sbuf_addf (&b, ",\"oomKilled\":%s,\"logDroppedLines\":%llu,\"error\":",
             st->oom_killed ? "true" : "false", (unsigned long long)st->dropped);
  sbuf_add_json_str (&b, st->error);
  sbuf_add (&b, "}\n", 2);
  if (b.oom)
    {
      sbuf_free (&b);
      return berr_make (err, ENOMEM, "format state.json");
    }
  int ret = bfs_write_atomic (dirfd, "state.json", b.p, b.len, 0644, err);
  sbuf_free (&b);
  return ret;
}
