/* spec: writes a default, hardened config.json into the bundle directory. */
#include "runtime/cli/cli.h"

#include "lib/cleanup.h"
#include "lib/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_spec (struct cli_global *g, int argc, char **argv, berr **err)
{
  static const struct option opts[] = { { "bundle", required_argument, NULL, 'b' },
                                        { "rootless", no_argument, NULL, 'r' },
                                        { NULL, 0, NULL, 0 } };
  const char *bundle = ".";
  int c;
  optind = 0;
  while ((c = getopt_long (argc, argv, "+b:", opts, NULL)) != -1)
    switch (c)
      {
      case 'b':
        bundle = optarg;
        break;
      case 'r':
        return berr_make (err, ENOTSUP, "spec: rootless containers are not supported");
      default:
        return berr_make (err, EINVAL, "spec: bad option");
      }
  _cleanup_close_ int dfd = open (bundle, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (dfd < 0)
    return berr_sys (err, "open bundle `%s`", bundle);
  if (faccessat (dfd, "config.json", F_OK, 0) == 0)
    return berr_make (err, EEXIST, "%s/config.json exists: remove it first", bundle);
  cJSON *config = rt_oci_default_config ();
  if (config == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  _cleanup_free_ char *text = cJSON_Print (config);
  cJSON_Delete (config);
  if (text == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  return bfs_write_atomic (dfd, "config.json", text, strlen (text), 0644, err);
}
