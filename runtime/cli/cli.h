/* berth-runtime: the OCI runtime command line over the runtime library; one file per command. */
#ifndef BERTH_RUNTIME_CLI_H
#define BERTH_RUNTIME_CLI_H

#include "lib/error.h"
#include "runtime/runtime.h"

struct cli_global
{
  const char *root;     /* state root */
  const char *log_path; /* --log: errors are also appended here */
  bool log_json;
};

typedef int (*cli_command_fn) (struct cli_global *g, int argc, char **argv, berr **err);

int cli_create (struct cli_global *g, int argc, char **argv, berr **err);
int cli_start (struct cli_global *g, int argc, char **argv, berr **err);
int cli_state (struct cli_global *g, int argc, char **argv, berr **err);
int cli_kill (struct cli_global *g, int argc, char **argv, berr **err);
int cli_delete (struct cli_global *g, int argc, char **argv, berr **err);
int cli_run (struct cli_global *g, int argc, char **argv, berr **err);
int cli_spec (struct cli_global *g, int argc, char **argv, berr **err);
int cli_exec (struct cli_global *g, int argc, char **argv, berr **err);

/* Reads <bundle>/config.json into a spec; *bundle_abs gets the absolute bundle path. */
int cli_load_bundle (const char *bundle, struct rt_spec **spec, char **bundle_abs, berr **err);
/* Keeps the container's config.json in its state directory (exec reads its process defaults). */
int cli_save_config (struct cli_global *g, const char *id, const char *bundle_abs, berr **err);
/* Creates (or, with start, runs) a container from a bundle; writes pid_file if given. */
int cli_launch (struct cli_global *g, const char *bundle, const char *id, const char *pid_file,
                enum rt_launch_mode mode, pid_t *pid, berr **err);
/* The options create and run share (run also takes --detach); argv[optind] is the id. */
struct cli_launch_args
{
  const char *bundle, *pid_file, *id;
  bool detach;
};
int cli_parse_launch_args (const char *cmd, int argc, char **argv, bool allow_detach,
                           struct cli_launch_args *a, berr **err);
int cli_write_pid_file (const char *path, pid_t pid, berr **err);

#endif
