/* The host's cgroup layout, found once: libcgroup's mount table gives each managed controller's
 * hierarchy and version, /proc/self/mounts the cgroup2 mount (which may carry no controller). */
#include "cgroups/internal.h"

#include "lib/cleanup.h"

#include <errno.h>
#include <libcgroup.h>
#include <mntent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libcgroup 2.0.2 exports this but its headers do not declare it (the enum came with the
 * declaration in later releases); the values match the library's. */
enum cg_version_t
{
  CGROUP_UNK = 0,
  CGROUP_V1,
  CGROUP_V2,
  CGROUP_DISK = 0xFF,
};
int cgroup_get_controller_version (const char *controller, enum cg_version_t *version);

const char *const cgi_ctrl_names[CGI_N_CTRL] = {
  [CGI_CPU] = "cpu",   [CGI_CPUACCT] = "cpuacct", [CGI_MEMORY] = "memory",
  [CGI_PIDS] = "pids", [CGI_DEVICES] = "devices",
};

/* The host's mounts do not change under a running agent, and cgroup_init must run once (it
 * fills libcgroup's own global mount table), so this is the component's one piece of global
 * state: written once under pthread_once, read-only afterwards. */
static struct
{
  pthread_once_t once;
  struct cgi_host host;
  int errnum;
  char msg[256];
} detected = { .once = PTHREAD_ONCE_INIT };

static char *find_v2_mount (void)
{
  _cleanup_fclose_ FILE *f = setmntent ("/proc/self/mounts", "re");
  if (f == NULL)
    return NULL;
  struct mntent *m;
  while ((m = getmntent (f)) != NULL)
    if (strcmp (m->mnt_type, "cgroup2") == 0)
      return strdup (m->mnt_dir);
  return NULL;
}

static void detect_controller (struct cgi_host *h, enum cgi_ctrl c)
{
  char *mp = NULL;
  enum cg_version_t version = CGROUP_UNK;
  /* Absent controllers are normal (cpuacct and devices on v2): leave them NULL. */
  if (cgroup_get_subsys_mount_point (cgi_ctrl_names[c], &mp) != 0 || mp == NULL)
    return;
  if (cgroup_get_controller_version (cgi_ctrl_names[c], &version) != 0)
    {
      free (mp);
      return;
    }
  h->mount[c] = mp;
  h->v2[c] = version == CGROUP_V2;
}

static enum cg_mode classify (const struct cgi_host *h)
{
  bool any_v1 = false, any = false;
  for (int c = 0; c < CGI_N_CTRL; c++)
    if (h->mount[c])
      {
        any = true;
        any_v1 |= !h->v2[c];
      }
  if (any && !any_v1)
    return CG_MODE_UNIFIED;
  return h->v2_mount ? CG_MODE_HYBRID : CG_MODE_LEGACY;
}

static void detect_once (void)
{
  int ret = cgroup_init ();
  if (ret != 0)
    {
      detected.errnum = ret == ECGOTHER ? cgroup_get_last_errno () : ENOENT;
      snprintf (detected.msg, sizeof detected.msg, "cgroup_init: %s", cgroup_strerror (ret));
      return;
    }
  struct cgi_host *h = &detected.host;
  h->v2_mount = find_v2_mount ();
  for (int c = 0; c < CGI_N_CTRL; c++)
    detect_controller (h, c);
  h->mode = classify (h);
  if (h->mount[CGI_MEMORY] == NULL && h->mount[CGI_CPU] == NULL && h->mount[CGI_PIDS] == NULL)
    {
      detected.errnum = ENOENT;
      snprintf (detected.msg, sizeof detected.msg,
                "no cgroup hierarchy carries cpu, memory or pids");
    }
}

int cgi_host_get (const struct cgi_host **out, berr **err)
{
  pthread_once (&detected.once, detect_once);
  if (detected.errnum != 0)
    return berr_make (err, detected.errnum, "%s", detected.msg);
  *out = &detected.host;
  return 0;
}

int cg_detect_mode (enum cg_mode *out, berr **err)
{
  const struct cgi_host *h;
  if (cgi_host_get (&h, err) < 0)
    return -1;
  *out = h->mode;
  return 0;
}

const char *cg_mode_name (enum cg_mode mode)
{
  switch (mode)
    {
    case CG_MODE_UNIFIED:
      return "unified";
    case CG_MODE_HYBRID:
      return "hybrid";
    case CG_MODE_LEGACY:
      return "legacy";
    }
  return "unknown";
}
