/* pull: the Berth side of the image pull figure (bench/pull.sh): pulls one image with img_pull
 * into a fresh directory sink (tests/support/dirsink.c) and prints what it did.
 *
 *   pull [--durable] [--parallel N] REF DIR
 *
 * --durable commits each layer with syncfs + fsync as the store does; without it a commit is a
 * rename, like the peer's (skopeo + umoci) writes. */
#include "images/images.h"
#include "tests/support/dirsink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main (int argc, char **argv)
{
  bool durable = false;
  int parallel = 0, i = 1;
  for (; i < argc && strncmp (argv[i], "--", 2) == 0; i++)
    if (strcmp (argv[i], "--durable") == 0)
      durable = true;
    else if (strcmp (argv[i], "--parallel") == 0 && i + 1 < argc)
      parallel = atoi (argv[++i]);
  if (argc - i != 2)
    {
      fprintf (stderr, "usage: pull [--durable] [--parallel N] REF DIR\n");
      return 2;
    }
  struct ts_dirsink sink;
  struct img_registry *reg = NULL;
  struct img_puller *p = NULL;
  struct img_pull_result res;
  struct img_puller_opts po = { .max_parallel = parallel };
  struct img_pull_opts o = { .behavior = IMG_PULL_ALWAYS };
  berr *err = NULL;
  if (ts_dirsink_init (&sink, argv[i + 1], &err) < 0)
    {
      fprintf (stderr, "pull: %s\n", err->msg);
      return 1;
    }
  sink.volatile_commit = !durable;
  if (img_registry_new (NULL, &reg, &err) < 0 || img_puller_new (reg, &sink.sink, &po, &p, &err) < 0
      || img_pull (p, argv[i], &o, &res, &err) < 0)
    {
      fprintf (stderr, "pull: %s\n", err->msg);
      return 1;
    }
  printf ("%s %s layers=%u\n", res.ref, res.manifest_digest, res.layers_fetched);
  img_pull_result_clear (&res);
  img_puller_free (p);
  img_registry_free (reg);
  ts_dirsink_clear (&sink);
  return 0;
}
