/* berth-shim entry point: parse the command line, fork the monitor off and wait until it says
 * whether the container started, so the caller gets a synchronous answer (docs/shim.md). */
#include "runtime/shim/shim.h"

#include "lib/cleanup.h"
#include "lib/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_LOG_MAX_SIZE (10ULL * 1024 * 1024)
#define DEFAULT_LOG_MAX_FILES 5
/* Far above a record's ~70 bytes of framing, so every record carries text (long lines are
 * split to fit, see logfile.c). */
#define MIN_LOG_MAX_SIZE 4096

static const char usage[]
    = "usage: berth-shim --id ID --state-dir DIR --runtime PATH [--runtime-root ROOT]\n"
      "                  --bundle BUNDLE [--log-file FILE] [--log-max-size BYTES]\n"
      "                  [--log-max-files N] [--log-driver json-file|journald|none]\n"
      "                  [--log-tag TAG] [--log-name NAME]\n"
      "Starts container ID with `RUNTIME run --detach` and stays its parent: records its exit\n"
      "in DIR/state.json and its output in FILE (json-file, default DIR/container.log), in\n"
      "the journal (journald: TAG and NAME default to ID) or nowhere (none).\n"
      "Prints the container's pid and exits 0 once it runs; prints the error and exits 1\n"
      "otherwise.\n";

/* Newly allocated absolute form of path (relative to the current directory). */
static char *absolute (const char *path, berr **err)
{
  char *out = NULL;
  if (path[0] == '/')
    out = strdup (path);
  else
    {
      _cleanup_free_ char *cwd = getcwd (NULL, 0);
      if (cwd == NULL)
        {
          berr_sys (err, "getcwd");
          return NULL;
        }
      if (asprintf (&out, "%s/%s", cwd, path) < 0)
        out = NULL;
    }
  if (out == NULL)
    berr_make (err, ENOMEM, "out of memory");
  return out;
}

static int parse_number (const char *name, const char *s, uint64_t min, uint64_t *out, berr **err)
{
  if (bfs_parse_u64 (s, out) < 0 || *out < min)
    return berr_make (err, 0, "%s: `%s` is not a number >= %llu", name, s, (unsigned long long)min);
  return 0;
}

static int check_required (const struct shim_opts *o, const char *state_dir, berr **err)
{
  const char *missing = !o->id || !*o->id             ? "--id"
                        : !state_dir || !*state_dir   ? "--state-dir"
                        : !o->runtime || !*o->runtime ? "--runtime"
                        : !o->bundle || !*o->bundle   ? "--bundle"
                                                      : NULL;
  if (missing)
    return berr_make (err, 0, "%s is required\n%s", missing, usage);
  return 0;
}

static int parse_driver (const char *s, int *out, berr **err)
{
  if (strcmp (s, "json-file") == 0)
    *out = SHIM_LOG_JSON_FILE;
  else if (strcmp (s, "journald") == 0)
    *out = SHIM_LOG_JOURNALD;
  else if (strcmp (s, "none") == 0)
    *out = SHIM_LOG_NONE;
  else
    return berr_make (err, 0, "--log-driver: `%s` is not json-file, journald or none", s);
  return 0;
}

enum
{
  O_ID = 1,
  O_DIR,
  O_RUNTIME,
  O_ROOT,
  O_BUNDLE,
  O_LOG,
  O_SIZE,
  O_FILES,
  O_DRIVER,
  O_TAG,
  O_NAME,
  O_HELP
};

/* Paths are kept as given here and made absolute once all options are read. */
struct raw_paths
{
  const char *state_dir, *log_file;
};

static int set_option (struct shim_opts *o, struct raw_paths *raw, int c, const char *arg,
                       berr **err)
{
  uint64_t files = 0;
  switch (c)
    {
    case O_ID:
      o->id = arg;
      return 0;
    case O_DIR:
      raw->state_dir = arg;
      return 0;
    case O_RUNTIME:
      o->runtime = arg;
      return 0;
    case O_ROOT:
      o->runtime_root = arg;
      return 0;
    case O_BUNDLE:
      o->bundle = arg;
      return 0;
    case O_LOG:
      raw->log_file = arg;
      return 0;
    case O_SIZE:
      return parse_number ("--log-max-size", arg, MIN_LOG_MAX_SIZE, &o->log_max_size, err);
    case O_FILES:
      if (parse_number ("--log-max-files", arg, 1, &files, err) < 0)
        return -1;
      if (files > 1000)
        return berr_make (err, 0, "--log-max-files: at most 1000");
      o->log_max_files = (unsigned)files;
      return 0;
    case O_DRIVER:
      return parse_driver (arg, &o->log_driver, err);
    case O_TAG:
      o->log_tag = arg;
      return 0;
    case O_NAME:
      o->log_name = arg;
      return 0;
    default:
      return berr_make (err, 0, "unhandled option %d", c);
    }
}

int shim_parse_args (int argc, char **argv, struct shim_opts *o, berr **err)
{
  static const struct option longopts[] = {
    { "id", required_argument, NULL, O_ID },
    { "state-dir", required_argument, NULL, O_DIR },
    { "runtime", required_argument, NULL, O_RUNTIME },
    { "runtime-root", required_argument, NULL, O_ROOT },
    { "bundle", required_argument, NULL, O_BUNDLE },
    { "log-file", required_argument, NULL, O_LOG },
    { "log-max-size", required_argument, NULL, O_SIZE },
    { "log-max-files", required_argument, NULL, O_FILES },
    { "log-driver", required_argument, NULL, O_DRIVER },
    { "log-tag", required_argument, NULL, O_TAG },
    { "log-name", required_argument, NULL, O_NAME },
    { "help", no_argument, NULL, O_HELP },
    { NULL, 0, NULL, 0 },
  };
  memset (o, 0, sizeof *o);
  o->log_max_size = DEFAULT_LOG_MAX_SIZE;
  o->log_max_files = DEFAULT_LOG_MAX_FILES;
  struct raw_paths raw = { NULL, NULL };
  opterr = 0;
  int c;
  while ((c = getopt_long (argc, argv, "", longopts, NULL)) != -1)
    {
      if (c == O_HELP)
        {
          fputs (usage, stdout);
          return 1;
        }
      if (c == '?' || c == ':')
        return berr_make (err, 0, "unknown option or missing value: `%s`\n%s", argv[optind - 1],
                          usage);
      if (set_option (o, &raw, c, optarg, err) < 0)
        return -1;
    }
  if (optind < argc)
    return berr_make (err, 0, "unexpected argument `%s`\n%s", argv[optind], usage);
  if (check_required (o, raw.state_dir, err) < 0)
    return -1;
  if ((o->state_dir = absolute (raw.state_dir, err)) == NULL)
    return -1;
  if (raw.log_file)
    o->log_file = absolute (raw.log_file, err);
  else if (asprintf (&o->log_file, "%s/container.log", o->state_dir) < 0)
    {
      o->log_file = NULL;
      berr_make (err, ENOMEM, "out of memory");
    }
  return o->log_file ? 0 : -1;
}

void shim_opts_free (struct shim_opts *o)
{
  free (o->state_dir);
  free (o->log_file);
  o->state_dir = o->log_file = NULL;
}

/* The invoker: read the monitor's one message ("ok PID" or "error MSG") and pass it on. */
static int invoker_wait (pid_t shim, int fd)
{
  char msg[8192];
  size_t len = 0;
  while (len < sizeof msg - 1)
    {
      ssize_t n = read (fd, msg + len, sizeof msg - 1 - len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      len += (size_t)n;
    }
  msg[len] = '\0';
  if (strncmp (msg, "ok ", 3) == 0)
    {
      printf ("%s\n", msg + 3);
      return fflush (stdout) == 0 ? 0 : 1;
    }
  if (strncmp (msg, "error ", 6) == 0)
    {
      fprintf (stderr, "berth-shim: %s\n", msg + 6);
      return 1;
    }
  int status = 0;
  if (waitpid (shim, &status, WNOHANG) == shim && WIFSIGNALED (status))
    fprintf (stderr, "berth-shim: the monitor died of signal %d before reporting\n",
             WTERMSIG (status));
  else
    fprintf (stderr, "berth-shim: the monitor exited before reporting\n");
  return 1;
}

int main (int argc, char **argv)
{
  struct shim_opts opts;
  berr *err = NULL;
  int r = shim_parse_args (argc, argv, &opts, &err);
  if (r != 0)
    {
      if (r < 0)
        fprintf (stderr, "berth-shim: %s\n", err->msg);
      berr_free (&err);
      shim_opts_free (&opts);
      return r < 0 ? 1 : 0;
    }
  int report[2];
  if (pipe2 (report, O_CLOEXEC) < 0)
    {
      fprintf (stderr, "berth-shim: pipe: %s\n", strerror (errno));
      shim_opts_free (&opts);
      return 1;
    }
  fflush (NULL);
  pid_t pid = fork ();
  if (pid < 0)
    {
      fprintf (stderr, "berth-shim: fork: %s\n", strerror (errno));
      shim_opts_free (&opts);
      return 1;
    }
  if (pid == 0)
    {
      close (report[0]);
      /* The monitor points 0-2 elsewhere; keep the report pipe clear of them. */
      if (report[1] < 3)
        report[1] = fcntl (report[1], F_DUPFD_CLOEXEC, 3);
      r = shim_monitor_run (&opts, report[1]);
      shim_opts_free (&opts);
      return r;
    }
  close (report[1]);
  r = invoker_wait (pid, report[0]);
  close (report[0]);
  shim_opts_free (&opts);
  return r;
}
