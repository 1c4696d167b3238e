/* Fuzzes layer unpacking (registry blobs: untrusted): any bytes are unpacked into a fresh
 * directory, and nothing may ever appear beside it. Runs as root, like the agent. */
#include "images/images.h"
#include "lib/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* A private parent per process: dest/ is unpacked into, outside/marker must stay alone. */
static char parent[64];

static void remove_parent (void)
{
  berr *err = NULL;
  bfs_remove_tree (AT_FDCWD, parent, &err);
  berr_free (&err);
}

static void setup_once (void)
{
  if (parent[0])
    return;
  snprintf (parent, sizeof parent, "/tmp/fuzz-unpack-XXXXXX");
  if (mkdtemp (parent) == NULL)
    abort ();
  atexit (remove_parent);
  char p[128];
  snprintf (p, sizeof p, "%s/outside", parent);
  if (mkdir (p, 0755) < 0)
    abort ();
  snprintf (p, sizeof p, "%s/outside/marker", parent);
  int fd = open (p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    abort ();
  close (fd);
}

/* Aborts (a crash for libFuzzer) when dir holds anything but the names listed. */
static void assert_only (const char *dir, const char *a, const char *b)
{
  DIR *d = opendir (dir);
  if (d == NULL)
    abort ();
  struct dirent *de;
  while ((de = readdir (d)) != NULL)
    {
      const char *n = de->d_name;
      if (strcmp (n, ".") && strcmp (n, "..") && strcmp (n, a) && (b == NULL || strcmp (n, b)))
        {
          fprintf (stderr, "unpack wrote `%s/%s` outside its directory\n", dir, n);
          abort ();
        }
    }
  closedir (d);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  setup_once ();
  char dest[128], outside[128];
  snprintf (dest, sizeof dest, "%s/dest", parent);
  snprintf (outside, sizeof outside, "%s/outside", parent);
  if (mkdir (dest, 0755) < 0)
    abort ();
  int fd = memfd_create ("layer", MFD_CLOEXEC);
  if (fd < 0 || write (fd, data, size) != (ssize_t)size || lseek (fd, 0, SEEK_SET) != 0)
    abort ();
  struct img_unpack_result res;
  berr *err = NULL;
  if (img_layer_unpack (fd, dest, &res, &err) == 0 && res.blob_size != size)
    abort ();
  berr_free (&err);
  close (fd);
  assert_only (parent, "dest", "outside");
  assert_only (outside, "marker", NULL);
  int pfd = open (parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (pfd < 0 || bfs_remove_tree (pfd, "dest", &err) < 0)
    abort ();
  close (pfd);
  return 0;
}
