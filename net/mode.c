/* Task network modes: the one place a task's networkMode is parsed; setup and teardown of host
 * (the host's namespace, nothing to do) and none (a pinned namespace of the task's own with only
 * lo). Setup is idempotent; teardown undoes exactly what setup made. bridge and awsvpc have their
 * own entry points (net/bridge.c, net/awsvpc.c), which take more than a task key. */
#include "net/net.h"

#include "lib/cleanup.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static const char *const mode_names[] = {
  [NET_MODE_HOST] = "host",
  [NET_MODE_NONE] = "none",
  [NET_MODE_BRIDGE] = "bridge",
  [NET_MODE_AWSVPC] = "awsvpc",
};

int net_mode_parse (const char *s, enum net_mode *out, berr **err)
{
  if (s == NULL || *s == '\0')
    {
      *out = NET_MODE_BRIDGE; /* a task definition without networkMode, on Linux */
      return 0;
    }
  for (size_t i = 0; i < sizeof mode_names / sizeof *mode_names; i++)
    if (strcmp (s, mode_names[i]) == 0)
      {
        *out = (enum net_mode)i;
        return 0;
      }
  return berr_make (err, EINVAL,
                    "unsupported network mode `%.64s` (Berth knows host, none, bridge, awsvpc)", s);
}

const char *net_mode_name (enum net_mode mode)
{
  if ((size_t)mode < sizeof mode_names / sizeof *mode_names)
    return mode_names[mode];
  return "unknown";
}

/* bridge and awsvpc through the generic entry: a caller's mistake, said plainly. */
static int other_entry (enum net_mode mode, berr **err)
{
  if (mode == NET_MODE_BRIDGE || mode == NET_MODE_AWSVPC)
    return berr_make (err, EINVAL,
                      "network mode `%s` is set up by net_%s_setup and torn down by "
                      "net_%s_teardown",
                      net_mode_name (mode), net_mode_name (mode), net_mode_name (mode));
  return berr_make (err, EINVAL, "unknown network mode %d", (int)mode);
}

/* none: the task's pinned namespace, created unless it is already there (a repeated setup or
 * one interrupted by an agent restart after the namespace was made). */
static int setup_none (const char *run_dir, const char *task_key, char **netns_path, berr **err)
{
  berr *oerr = NULL;
  int fd = net_netns_open (run_dir, task_key, &oerr);
  if (fd >= 0)
    close (fd);
  else if (berr_errno (oerr) != ENOENT)
    {
      berr_free (err);
      *err = oerr;
      return -1;
    }
  else if (net_netns_create (run_dir, task_key, err) < 0)
    {
      berr_free (&oerr);
      return -1;
    }
  berr_free (&oerr);
  *netns_path = net_netns_path (run_dir, task_key);
  if (*netns_path == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  return 0;
}

int net_task_setup (const char *run_dir, enum net_mode mode, const char *task_key,
                    char **netns_path, berr **err)
{
  *netns_path = NULL;
  switch (mode)
    {
    case NET_MODE_HOST:
      return 0;
    case NET_MODE_NONE:
      if (setup_none (run_dir, task_key, netns_path, err) < 0)
        return berr_wrap (err, "set up network `none` for `%s`", task_key);
      return 0;
    default:
      return other_entry (mode, err);
    }
}

int net_task_teardown (const char *run_dir, enum net_mode mode, const char *task_key, berr **err)
{
  switch (mode)
    {
    case NET_MODE_HOST:
      return 0;
    case NET_MODE_NONE:
      if (net_netns_delete (run_dir, task_key, err) < 0)
        return berr_wrap (err, "tear down network `none` for `%s`", task_key);
      return 0;
    default:
      return other_entry (mode, err);
    }
}
