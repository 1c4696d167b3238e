/* OOM-kill detection from the container's memory cgroup: the oom_kill counter of memory.events
 * (cgroup v2) or memory.oom_control (cgroup v1), checked when the container exits. On hybrid
 * hosts the memory controller is on v1, so a v1 memory line wins. */
#include "runtime/shim/shim.h"

#include "lib/fs.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Does the comma-separated list have this item? */
static bool list_has (const char *list, const char *item)
{
  size_t n = strlen (item);
  for (const char *p = list; p && *p;)
    {
      const char *end = strchr (p, ',');
      size_t len = end ? (size_t)(end - p) : strlen (p);
      if (len == n && strncmp (p, item, n) == 0)
        return true;
      p = end ? end + 1 : NULL;
    }
  return false;
}

/* The cgroup path of pid for cgroup version (1: the memory controller, 2: the unified line). */
static char *cgroup_path_of (pid_t pid, int version)
{
  char proc[64];
  snprintf (proc, sizeof proc, "/proc/%d/cgroup", (int)pid);
  FILE *f = fopen (proc, "re");
  if (f == NULL)
    return NULL;
  char *line = NULL, *found = NULL;
  size_t cap = 0;
  while (found == NULL && getline (&line, &cap, f) > 0)
    {
      line[strcspn (line, "\n")] = '\0';
      char *ctrl = strchr (line, ':');
      char *path = ctrl ? strchr (ctrl + 1, ':') : NULL;
      if (path == NULL)
        continue;
      *path++ = '\0';
      *ctrl++ = '\0';
      bool match
          = version == 2 ? strcmp (line, "0") == 0 && *ctrl == '\0' : list_has (ctrl, "memory");
      if (match)
        found = strdup (path);
    }
  free (line);
  fclose (f);
  return found;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal (char *s)
{
  char *o = s;
  for (char *p = s; *p; p++)
    if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0'
        && p[3] <= '7')
      {
        *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
        p += 3;
      }
    else
      *o++ = *p;
  *o = '\0';
}

/* Splits a mountinfo line into mount root, mount point, fstype and super options. */
static bool parse_mountinfo (char *line, char **root, char **mnt, char **fstype, char **opts)
{
  char *save = NULL, *field[5] = { 0 };
  char *tok = strtok_r (line, " \n", &save);
  for (int i = 0; tok && i < 5; i++, tok = strtok_r (NULL, " \n", &save))
    field[i] = tok;
  while (tok && strcmp (tok, "-") != 0)
    tok = strtok_r (NULL, " \n", &save);
  if (field[4] == NULL || tok == NULL)
    return false;
  *root = field[3];
  *mnt = field[4];
  *fstype = strtok_r (NULL, " \n", &save);
  strtok_r (NULL, " \n", &save); /* source */
  *opts = strtok_r (NULL, " \n", &save);
  return *fstype && *opts;
}

/* Joins the mount point with cgroup path made relative to the mount's root. */
static char *join_mount (const char *root, const char *mnt, const char *cg)
{
  size_t rl = strcmp (root, "/") == 0 ? 0 : strlen (root);
  if (rl && (strncmp (cg, root, rl) != 0 || (cg[rl] != '/' && cg[rl] != '\0')))
    return NULL;
  char *out = NULL;
  if (asprintf (&out, "%s%s", mnt, cg + rl) < 0)
    return NULL;
  return out;
}

/* The directory of cgroup path cg in the hierarchy of the given version. */
static char *cgroup_dir (const char *cg, int version)
{
  FILE *f = fopen ("/proc/self/mountinfo", "re");
  if (f == NULL)
    return NULL;
  char *line = NULL, *dir = NULL;
  size_t cap = 0;
  while (dir == NULL && getline (&line, &cap, f) > 0)
    {
      char *root, *mnt, *fstype, *opts;
      if (!parse_mountinfo (line, &root, &mnt, &fstype, &opts))
        continue;
      bool match = version == 2 ? strcmp (fstype, "cgroup2") == 0
                                : strcmp (fstype, "cgroup") == 0 && list_has (opts, "memory");
      if (!match)
        continue;
      unescape_octal (root);
      unescape_octal (mnt);
      dir = join_mount (root, mnt, cg);
    }
  free (line);
  fclose (f);
  return dir;
}

static int read_oom_kill (int fd, uint64_t *count)
{
  char buf[512];
  ssize_t n = pread (fd, buf, sizeof buf - 1, 0);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  char *save = NULL;
  for (char *line = strtok_r (buf, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    if (strncmp (line, "oom_kill ", 9) == 0)
      return bfs_parse_u64 (line + 9, count);
  return -1;
}

/* Opens the counter file of the given version for pid (-1 if there is none); *cg gets the
 * cgroup path (newly allocated). */
static int open_counter (pid_t pid, int version, char **cg)
{
  *cg = cgroup_path_of (pid, version);
  char *dir = *cg ? cgroup_dir (*cg, version) : NULL;
  int fd = -1;
  if (dir)
    {
      char *file = NULL;
      if (asprintf (&file, "%s/%s", dir, version == 2 ? "memory.events" : "memory.oom_control")
          >= 0)
        fd = open (file, O_RDONLY | O_CLOEXEC);
      free (file);
    }
  free (dir);
  return fd;
}

void shim_oom_setup (struct shim_oom *o, pid_t pid)
{
  char *cg = NULL;
  o->baseline = 0;
  /* The cgroup directory may be removed by the time the container exits (delete raced us), so
   * keep the file open: reads then fail instead of finding a stranger's counter. */
  for (o->version = 1; o->version <= 2; o->version++)
    {
      free (cg);
      if ((o->fd = open_counter (pid, o->version, &cg)) >= 0)
        break;
    }
  if (o->fd < 0)
    {
      o->version = 0;
      free (cg);
      blog_warn ("no memory cgroup found for pid %d: OOM kills will not be detected", (int)pid);
      return;
    }
  /* A cgroup of its own was made for the container, so every kill it counts is the
   * container's, even one that came before we looked (a fast allocator can be killed before
   * the runtime has even exited). Only a cgroup shared with the shim needs a baseline. */
  char *own = cgroup_path_of (getpid (), o->version);
  bool shared = own && strcmp (own, cg) == 0;
  if (shared && read_oom_kill (o->fd, &o->baseline) < 0)
    {
      blog_warn ("cannot read the oom_kill counter of pid %d (cgroup v%d)", (int)pid, o->version);
      close (o->fd);
      o->fd = -1;
    }
  free (own);
  free (cg);
}

bool shim_oom_count_grew (struct shim_oom *o)
{
  uint64_t now = 0;
  if (o->fd < 0 || read_oom_kill (o->fd, &now) < 0)
    return false;
  return now > o->baseline;
}

void shim_oom_close (struct shim_oom *o)
{
  if (o->fd >= 0)
    close (o->fd);
  o->fd = -1;
}
