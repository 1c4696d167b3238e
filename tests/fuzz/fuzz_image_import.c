/* Fuzzes tarball import end to end on a scratch store: any bytes as a docker-archive or OCI
 * layout tarball import or fail cleanly, and a failed import leaves no staging work behind. */
#include "images/images.h"
#include "lib/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* One store for the whole run (libFuzzer calls the target in one process). */
static struct img_store *store;
static char root[] = "/tmp/berth-fuzz-import-XXXXXX";

static int staging_entries (void)
{
  char path[128];
  snprintf (path, sizeof path, "%s/staging", root);
  DIR *d = opendir (path);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir (d)) != NULL)
    n += e->d_name[0] != '.';
  if (d)
    closedir (d);
  return n;
}

static void remove_store (void)
{
  img_store_close (store);
  bfs_remove_tree (AT_FDCWD, root, NULL);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  berr *err = NULL;
  if (store == NULL)
    {
      if (mkdtemp (root) == NULL || img_store_open (root, &store, &err) < 0)
        abort ();
      atexit (remove_store);
    }
  int fd = memfd_create ("tarball", MFD_CLOEXEC);
  if (fd < 0 || write (fd, data, size) != (ssize_t)size || lseek (fd, 0, SEEK_SET) != 0)
    abort ();
  struct img_import_result res;
  if (img_store_import (store, fd, NULL, &res, &err) == 0)
    img_import_result_clear (&res);
  close (fd);
  berr_free (&err);
  if (staging_entries () != 0)
    __builtin_trap ();
  return 0;
}
