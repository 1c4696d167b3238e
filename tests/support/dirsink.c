/* A directory-backed img_sink for the pull tests (tests/support/dirsink.h): stage in a fresh
 * directory under a flock, commit by syncfs + rename, image records written atomically. */
#include "tests/support/dirsink.h"
#include "lib/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *path_of (struct ts_dirsink *s, const char *sub, const char *name)
{
  char *p = NULL;
  if (asprintf (&p, "%s/%s/%s", s->root, sub, name) < 0)
    abort ();
  return p;
}

static char *image_name (const char *ref)
{
  char *n = strdup (ref);
  for (char *c = n; c && *c; c++)
    if (*c == '/')
      *c = '%';
  return n;
}

static int image_lookup (void *cls, const char *ref, char **digest, berr **err)
{
  char *n = image_name (ref), *p = path_of (cls, "images", n);
  size_t len = 0;
  int ret = bfs_read_all (AT_FDCWD, p, 4096, digest, &len, err);
  free (n);
  free (p);
  if (ret < 0 && berr_errno (*err) == ENOENT)
    {
      berr_free (err);
      return 0;
    }
  return ret < 0 ? -1 : 1;
}

static int layer_has (void *cls, const char *digest, berr **err)
{
  char *p = path_of (cls, "layers", digest);
  int ret = access (p, F_OK) == 0 ? 1 : errno == ENOENT ? 0 : berr_sys (err, "access %s", p);
  free (p);
  return ret;
}

static void staged_add (struct ts_dirsink *s, int d)
{
  pthread_mutex_lock (&s->lock);
  s->staged += d;
  if (s->staged > s->max_staged)
    s->max_staged = s->staged;
  pthread_mutex_unlock (&s->lock);
}

static int layer_stage (void *cls, const char *digest, char **dir, void **lock, berr **err)
{
  struct ts_dirsink *s = cls;
  char *lp = path_of (s, "locks", digest);
  int fd = open (lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  free (lp);
  if (fd < 0)
    return berr_sys (err, "open lock");
  while (flock (fd, LOCK_EX) < 0)
    if (errno != EINTR)
      {
        close (fd);
        return berr_sys (err, "flock");
      }
  berr *e = NULL;
  if (layer_has (s, digest, &e) != 0)
    {
      close (fd);
      if (e == NULL)
        return 1;
      *err = e;
      return -1;
    }
  char *tmpl = NULL;
  if (asprintf (&tmpl, "%s/staging/%s.XXXXXX", s->root, digest) < 0 || mkdtemp (tmpl) == NULL)
    {
      close (fd);
      free (tmpl);
      return berr_sys (err, "mkdtemp");
    }
  staged_add (s, 1);
  if (s->stage_delay_ms > 0)
    {
      struct timespec ts = { s->stage_delay_ms / 1000, (s->stage_delay_ms % 1000) * 1000000L };
      nanosleep (&ts, NULL);
    }
  *dir = tmpl;
  *lock = (void *)(intptr_t)(fd + 1);
  return 0;
}

static void unlock (void *lock)
{
  close ((int)(intptr_t)lock - 1);
}

static int layer_commit (void *cls, void *lock, const char *digest, const char *dir,
                         const struct img_unpack_result *res, berr **err)
{
  struct ts_dirsink *s = cls;
  char *dst = path_of (s, "layers", digest), *layers = path_of (s, "layers", ".");
  int ret = 0, dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  /* Durable before visible: the unpacked files, then the rename, then the directory. */
  if (dfd < 0 || (!s->volatile_commit && syncfs (dfd) < 0))
    ret = berr_sys (err, "syncfs %s", dir);
  if (dfd >= 0)
    close (dfd);
  if (ret == 0 && rename (dir, dst) < 0)
    ret = berr_sys (err, "rename %s", dir);
  int lfd = open (layers, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (ret == 0 && (lfd < 0 || (!s->volatile_commit && fsync (lfd) < 0)))
    ret = berr_sys (err, "fsync layers");
  if (lfd >= 0)
    close (lfd);
  free (dst);
  free (layers);
  pthread_mutex_lock (&s->lock);
  s->commits += ret == 0;
  pthread_mutex_unlock (&s->lock);
  staged_add (s, -1);
  unlock (lock);
  return ret;
}

static void layer_abort (void *cls, void *lock, const char *dir)
{
  struct ts_dirsink *s = cls;
  berr *ignored = NULL;
  bfs_remove_tree (AT_FDCWD, dir, &ignored);
  berr_free (&ignored);
  pthread_mutex_lock (&s->lock);
  s->aborts++;
  pthread_mutex_unlock (&s->lock);
  staged_add (s, -1);
  unlock (lock);
}

static int image_commit (void *cls, const char *ref, const char *manifest_digest,
                         const char *manifest, size_t manifest_len, const char *config,
                         size_t config_len, berr **err)
{
  struct ts_dirsink *s = cls;
  char *n = image_name (ref), *m = NULL, *c = NULL, *dir = path_of (s, "images", ".");
  int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret = -1;
  if (asprintf (&m, "%s.manifest", n) < 0 || asprintf (&c, "%s.config", n) < 0)
    abort ();
  if (dfd < 0)
    berr_sys (err, "open %s", dir);
  else if (bfs_write_atomic (dfd, m, manifest, manifest_len, 0644, err) == 0
           && bfs_write_atomic (dfd, c, config, config_len, 0644, err) == 0
           && bfs_write_atomic (dfd, n, manifest_digest, strlen (manifest_digest), 0644, err) == 0)
    ret = 0;
  if (dfd >= 0)
    close (dfd);
  free (n);
  free (m);
  free (c);
  free (dir);
  return ret;
}

int ts_dirsink_init (struct ts_dirsink *s, const char *root, berr **err)
{
  memset (s, 0, sizeof *s);
  s->root = strdup (root);
  pthread_mutex_init (&s->lock, NULL);
  static const char *const subs[] = { "layers", "staging", "locks", "images" };
  for (size_t i = 0; i < 4; i++)
    {
      char *p = path_of (s, subs[i], "");
      int r = bfs_mkdirs (p, 0755, err);
      free (p);
      if (r < 0)
        return -1;
    }
  s->sink = (struct img_sink){ .cls = s,
                               .image_lookup = image_lookup,
                               .layer_has = layer_has,
                               .layer_stage = layer_stage,
                               .layer_commit = layer_commit,
                               .layer_abort = layer_abort,
                               .image_commit = image_commit };
  return 0;
}

void ts_dirsink_clear (struct ts_dirsink *s)
{
  free (s->root);
  pthread_mutex_destroy (&s->lock);
  memset (s, 0, sizeof *s);
}

int ts_dirsink_count (const struct ts_dirsink *s, const char *sub)
{
  char p[4096];
  snprintf (p, sizeof p, "%s/%s", s->root, sub);
  DIR *d = opendir (p);
  int n = 0;
  for (struct dirent *e; d && (e = readdir (d));)
    n += e->d_name[0] != '.';
  if (d)
    closedir (d);
  return n;
}
