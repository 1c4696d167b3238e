/* Task network modes: host (the host's namespace, nothing to do) and none (a pinned namespace of
 * the task's own with only lo). Setup is idempotent; teardown undoes exactly what setup made. */
#include "net/net.h"

#include "lib/cleanup.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int net_mode_parse (const char *s, enum net_mode *out, berr **err)
{
  if (s != NULL && strcmp (s, "host") == 0)
    *out = NET_MODE_HOST;
  else if (s != NULL && strcmp (s, "none") == 0)
    *out = NET_MODE_NONE;
  else
    return berr_make (err, EINVAL, "unsupported network mode `%s`", s ? s : "");
  return 0;
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
    }
  return berr_make (err, EINVAL, "unknown network mode %d", (int)mode);
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
    }
  return berr_make (err, EINVAL, "unknown network mode %d", (int)mode);
}
