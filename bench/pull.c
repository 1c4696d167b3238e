/* pull: the Berth side of the image pull figure (bench/pull.sh): pulls one image with img_pull
 * into a fresh image store (images/store.c, as the agent does) or a directory sink, and prints
 * what it did.
 *
 *   pull [--dirsink] [--parallel N] REF DIR
 *
 * By default DIR is an image store: every layer is committed durably (syncfs, rename, fsync)
 * and the image recorded. --dirsink pulls into tests/support/dirsink.c with commit = rename
 * and no sync, the same durability as the peer's (skopeo + umoci) writes. */
#include "images/images.h"
#include "tests/support/dirsink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail (berr *err)
{
  fprintf (stderr, "pull: %s\n", err ? err->msg : "failed");
  return 1;
}

int main (int argc, char **argv)
{
  bool dirsink = false;
  int parallel = 0, i = 1;
  for (; i < argc && strncmp (argv[i], "--", 2) == 0; i++)
    if (strcmp (argv[i], "--dirsink") == 0)
      dirsink = true;
    else if (strcmp (argv[i], "--parallel") == 0 && i + 1 < argc)
      parallel = atoi (argv[++i]);
  if (argc - i != 2)
    {
      fprintf (stderr, "usage: pull [--dirsink] [--parallel N] REF DIR\n");
      return 2;
    }
  struct ts_dirsink ds;
  struct img_store *st = NULL;
  struct img_sink sink;
  struct img_registry *reg = NULL;
  struct img_puller *p = NULL;
  struct img_pull_result res;
  struct img_puller_opts po = { .max_parallel = parallel };
  struct img_pull_opts o = { .behavior = IMG_PULL_ALWAYS };
  berr *err = NULL;
  if (dirsink)
    {
      if (ts_dirsink_init (&ds, argv[i + 1], &err) < 0)
        return fail (err);
      ds.volatile_commit = true;
      sink = ds.sink;
    }
  else
    {
      if (img_store_open (argv[i + 1], &st, &err) < 0)
        return fail (err);
      img_store_sink (st, &sink);
    }
  if (img_registry_new (NULL, &reg, &err) < 0 || img_puller_new (reg, &sink, &po, &p, &err) < 0
      || img_pull (p, argv[i], &o, &res, &err) < 0)
    return fail (err);
  printf ("%s %s layers=%u\n", res.ref, res.manifest_digest, res.layers_fetched);
  img_pull_result_clear (&res);
  img_puller_free (p);
  img_registry_free (reg);
  if (dirsink)
    ts_dirsink_clear (&ds);
  else
    img_store_close (st);
  return 0;
}
