/* A directory-backed img_sink for the pull tests, standing in for the layer store: layers are
 * directories named by digest, a per-layer flock, image records as files. */
#ifndef BERTH_TESTS_SUPPORT_DIRSINK_H
#define BERTH_TESTS_SUPPORT_DIRSINK_H

#include "images/images.h"

#include <pthread.h>
#include <stdbool.h>

/* Under root: layers/<digest>/ (committed), staging/<digest>.XXXXXX/, locks/<digest>,
 * images/<ref with '/' as '%'> (the manifest digest) plus .manifest and .config beside it. */
struct ts_dirsink
{
  char *root;
  struct img_sink sink;
  long stage_delay_ms;  /* sleep after staging a layer, to make layer fetches overlap */
  bool volatile_commit; /* commit by rename alone, without syncfs/fsync (benchmarks) */
  pthread_mutex_t lock;
  int staged, max_staged; /* layers between stage and commit/abort: now and at most */
  int commits, aborts;
};

/* Creates root's directories (root itself may exist). Also used by bench/pull.c, so it does
 * not depend on Check. */
int ts_dirsink_init (struct ts_dirsink *s, const char *root, berr **err);
void ts_dirsink_clear (struct ts_dirsink *s);
/* Entries in root/<sub> (layers, staging, images). */
int ts_dirsink_count (const struct ts_dirsink *s, const char *sub);

#endif
