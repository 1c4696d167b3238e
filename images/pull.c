/* Image pulls: pull behaviour, manifest and config, layers fetched in parallel and streamed from
 * the registry straight into unpacking, one download for concurrent pulls of the same image. */
#include "images/images.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/log.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONFIG_BYTES (8u << 20)
#define DEFAULT_PARALLEL 3
#define MAX_PARALLEL 64
#define DEFAULT_LAYER_ATTEMPTS 3
#define LAYER_BACKOFF_MS 250
#define PIPE_BYTES (1 << 20)

/* One pull of a reference running in this process; later pulls of it wait for its outcome. */
struct inflight
{
  char *ref;
  bool done;
  int ret;
  struct img_pull_result res; /* the leader's result, when ret == 0 */
  unsigned waiters;
  struct inflight *next;
};

struct img_puller
{
  struct img_registry *reg;
  struct img_sink sink;
  char *def_registry, *def_namespace;
  int max_parallel, layer_attempts;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct inflight *inflight;
};

int img_pull_behavior_parse (const char *s, enum img_pull_behavior *out, berr **err)
{
  static const char *const names[] = { [IMG_PULL_DEFAULT] = "default",
                                       [IMG_PULL_ALWAYS] = "always",
                                       [IMG_PULL_ONCE] = "once",
                                       [IMG_PULL_PREFER_CACHED] = "prefer-cached" };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (s && strcmp (s, names[i]) == 0)
      {
        *out = (enum img_pull_behavior)i;
        return 0;
      }
  return berr_make (err, EINVAL,
                    "ECS_IMAGE_PULL_BEHAVIOR: `%s` is not one of default, always, once, "
                    "prefer-cached",
                    s ? s : "");
}

int img_puller_new (struct img_registry *r, const struct img_sink *sink,
                    const struct img_puller_opts *opts, struct img_puller **out, berr **err)
{
  struct img_puller *p = calloc (1, sizeof *p);
  if (p == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  p->reg = r;
  p->sink = *sink;
  p->max_parallel = opts && opts->max_parallel > 0 ? opts->max_parallel : DEFAULT_PARALLEL;
  if (p->max_parallel > MAX_PARALLEL)
    p->max_parallel = MAX_PARALLEL;
  p->layer_attempts
      = opts && opts->layer_attempts > 0 ? opts->layer_attempts : DEFAULT_LAYER_ATTEMPTS;
  const struct img_ref_defaults *d = opts ? opts->defaults : NULL;
  if (d && d->registry)
    p->def_registry = strdup (d->registry);
  if (d && d->namespace)
    p->def_namespace = strdup (d->namespace);
  pthread_mutex_init (&p->lock, NULL);
  pthread_cond_init (&p->cond, NULL);
  if ((d && d->registry && !p->def_registry) || (d && d->namespace && !p->def_namespace))
    {
      img_puller_free (p);
      return berr_make (err, ENOMEM, "out of memory");
    }
  *out = p;
  return 0;
}

void img_puller_free (struct img_puller *p)
{
  if (p == NULL)
    return;
  pthread_mutex_destroy (&p->lock);
  pthread_cond_destroy (&p->cond);
  free (p->def_registry);
  free (p->def_namespace);
  free (p);
}

void img_pull_result_clear (struct img_pull_result *r)
{
  free (r->ref);
  free (r->manifest_digest);
  free (r->config_digest);
  free (r->config);
  free (r->pull_error);
  memset (r, 0, sizeof *r);
}

static char *dup_or_null (const char *s, bool *oom)
{
  char *d = s ? strdup (s) : NULL;
  *oom |= s && !d;
  return d;
}

static int result_copy (const struct img_pull_result *from, struct img_pull_result *to, berr **err)
{
  bool oom = false;
  *to = *from;
  to->ref = dup_or_null (from->ref, &oom);
  to->manifest_digest = dup_or_null (from->manifest_digest, &oom);
  to->config_digest = dup_or_null (from->config_digest, &oom);
  to->pull_error = dup_or_null (from->pull_error, &oom);
  to->config = NULL;
  if (from->config && (to->config = malloc (from->config_len + 1)) != NULL)
    {
      memcpy (to->config, from->config, from->config_len);
      to->config[from->config_len] = 0;
    }
  oom |= from->config && !to->config;
  if (!oom)
    return 0;
  img_pull_result_clear (to);
  return berr_make (err, ENOMEM, "out of memory");
}

static void sleep_ms (long ms)
{
  struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
  while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
    ;
}

/* ---- one layer: registry -> pipe -> decompress -> pipe -> unpack -------------------------- */

static void block_sigpipe (void)
{
  /* When the next stage stops early it closes the read end: the write must fail with EPIPE,
   * not kill the process. A SIGPIPE left pending on this thread goes away with it. */
  sigset_t set;
  sigemptyset (&set);
  sigaddset (&set, SIGPIPE);
  pthread_sigmask (SIG_BLOCK, &set, NULL);
}

/* One stage of a layer's pipeline, run on its own thread. */
struct stage
{
  struct img_registry *reg;
  const struct img_ref *ref;
  const char *digest;
  int in, out; /* in: read end (decompression only); out: write end; both closed by the stage */
  uint64_t size;
  int ret;
  berr *err;
};

static void *download_main (void *arg)
{
  struct stage *d = arg;
  block_sigpipe ();
  d->ret = img_registry_get_blob (d->reg, d->ref, d->digest, d->out, &d->size, &d->err);
  close (d->out);
  return NULL;
}

static int write_all (int fd, const char *p, size_t n, berr **err)
{
  while (n > 0)
    {
      ssize_t w = write (fd, p, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return berr_sys (err, "decompressed layer: write");
      p += w;
      n -= (size_t)w;
    }
  return 0;
}

/* Copies the decompressed stream of a to fd. libarchive's raw format with only the gzip and
 * zstd filters: an uncompressed tar passes through as is. */
static int inflate_copy (struct archive *a, int fd, uint64_t *bytes, berr **err)
{
  struct archive_entry *e;
  int r = archive_read_next_header (a, &e);
  if (r == ARCHIVE_EOF)
    return 0;
  for (; r >= ARCHIVE_WARN;)
    {
      const void *buf;
      size_t len;
      la_int64_t off;
      r = archive_read_data_block (a, &buf, &len, &off);
      if (r == ARCHIVE_EOF)
        return 0;
      if (r >= ARCHIVE_WARN && write_all (fd, buf, len, err) < 0)
        return -1;
      *bytes += r >= ARCHIVE_WARN ? len : 0;
    }
  return berr_make (err, EINVAL, "layer is not a valid gzip or zstd stream: %s",
                    archive_error_string (a) ? archive_error_string (a) : "read error");
}

/* The decompression stage. After the end of the compressed stream the rest of its input is
 * read, so the download completes and its digest covers every byte. It is read after a failure
 * too (bad compressed data, or the unpacker stopped reading): then the download still finishes
 * and verifies the blob, so a corrupted blob is always reported as a digest mismatch, whatever
 * the decompressor tripped over first and however far the download had got. */
static void *inflate_main (void *arg)
{
  struct stage *x = arg;
  block_sigpipe ();
  struct archive *a = archive_read_new ();
  if (a == NULL || archive_read_support_filter_gzip (a) != ARCHIVE_OK
      || archive_read_support_filter_zstd (a) != ARCHIVE_OK
      || archive_read_support_format_raw (a) != ARCHIVE_OK
      || archive_read_open_fd (a, x->in, 1 << 16) != ARCHIVE_OK)
    x->ret = berr_make (&x->err, EINVAL, "layer: %s",
                        a && archive_error_string (a) ? archive_error_string (a)
                                                      : "cannot read the stream");
  else
    x->ret = inflate_copy (a, x->out, &x->size, &x->err);
  close (x->out);
  char buf[65536];
  while (read (x->in, buf, sizeof buf) > 0)
    ;
  archive_read_free (a);
  close (x->in);
  return NULL;
}

/* The error that explains a failed pipeline: the earliest stage that failed for a reason of
 * its own (not EPIPE, which only says that a later stage stopped reading). */
static int pipeline_error (struct stage *d, struct stage *x, int ur, berr **unpack_err, berr **err)
{
  berr **order[]
      = { d->ret < 0 ? &d->err : NULL, x->ret < 0 ? &x->err : NULL, ur < 0 ? unpack_err : NULL };
  berr **pick = NULL;
  for (size_t i = 0; i < 3 && pick == NULL; i++)
    if (order[i] && (berr_errno (*order[i]) != EPIPE || i == 2))
      pick = order[i];
  for (size_t i = 0; i < 3 && pick == NULL; i++)
    pick = order[i];
  if (pick == NULL)
    return 0;
  *err = *pick;
  *pick = NULL;
  return -1;
}

static int start_stage (pthread_t *t, void *(*fn) (void *), struct stage *s, berr **err)
{
  int r = pthread_create (t, NULL, fn, s);
  return r == 0 ? 0 : berr_sysn (err, r, "starting a layer thread");
}

static int open_pipes (int a[2], int b[2], berr **err)
{
  if (pipe2 (a, O_CLOEXEC) < 0)
    return berr_sys (err, "pipe");
  if (pipe2 (b, O_CLOEXEC) < 0)
    {
      close (a[0]);
      close (a[1]);
      return berr_sys (err, "pipe");
    }
  (void)fcntl (a[1], F_SETPIPE_SZ, PIPE_BYTES); /* fewer wakeups; the default size works too */
  (void)fcntl (b[1], F_SETPIPE_SZ, PIPE_BYTES);
  return 0;
}

/* The blob's size against the manifest and the unpacked stream's digest against the config's
 * diff_id; then res describes the blob as the registry has it (the sink's key). */
static int check_layer (const struct img_descriptor *desc, const char *diff_id, uint64_t size,
                        struct img_unpack_result *res, berr **err)
{
  if (desc->size >= 0 && size != (uint64_t)desc->size)
    return berr_make (err, EBADMSG, "layer %s: %" PRIu64 " bytes, the manifest says %" PRId64,
                      desc->digest, size, desc->size);
  if (strcmp (res->blob_digest, diff_id) != 0)
    return berr_make (err, EBADMSG, "layer %s: uncompressed content is %s, the config's diff_id %s",
                      desc->digest, res->blob_digest, diff_id);
  snprintf (res->blob_digest, sizeof res->blob_digest, "%s", desc->digest);
  res->blob_size = size;
  return 0;
}

/* Streams the blob of desc into dir through three threads: download (verifies the blob's
 * digest), decompression, and this one unpacking (its digest is the diff_id). */
static int stream_layer (struct img_puller *p, const struct img_ref *ref,
                         const struct img_descriptor *desc, const char *diff_id, const char *dir,
                         struct img_unpack_result *res, berr **err)
{
  int a[2], b[2];
  if (open_pipes (a, b, err) < 0)
    return -1;
  struct stage d = { .reg = p->reg, .ref = ref, .digest = desc->digest, .in = -1, .out = a[1] };
  struct stage x = { .in = a[0], .out = b[1] };
  pthread_t td, tx;
  if (start_stage (&td, download_main, &d, err) < 0)
    {
      close (a[0]), close (a[1]), close (b[0]), close (b[1]);
      return -1;
    }
  if (start_stage (&tx, inflate_main, &x, err) < 0)
    {
      close (a[0]), close (b[0]), close (b[1]); /* the download fails with EPIPE */
      pthread_join (td, NULL);
      berr_free (&d.err);
      return -1;
    }
  berr *unpack_err = NULL;
  int ur = img_layer_unpack (b[0], dir, res, &unpack_err);
  close (b[0]);
  pthread_join (tx, NULL);
  pthread_join (td, NULL);
  int ret = pipeline_error (&d, &x, ur, &unpack_err, err);
  berr_free (&d.err);
  berr_free (&x.err);
  berr_free (&unpack_err);
  if (ret < 0)
    return berr_wrap (err, "layer %s", desc->digest);
  return check_layer (desc, diff_id, d.size, res, err);
}

/* Stages, streams and commits one layer, taking the sink's per-layer lock so a layer another
 * puller is fetching is waited for, not fetched twice. An interrupted stream (EIO) is tried
 * again from a fresh staging directory. *fetched is set when this call downloaded it. */
static int fetch_layer (struct img_puller *p, const struct img_ref *ref,
                        const struct img_descriptor *desc, const char *diff_id, bool *fetched,
                        berr **err)
{
  const struct img_sink *s = &p->sink;
  *fetched = false;
  for (int attempt = 1;; attempt++)
    {
      _cleanup_free_ char *dir = NULL;
      void *lock = NULL;
      int r = s->layer_stage (s->cls, desc->digest, &dir, &lock, err);
      if (r != 0)
        return r < 0 ? berr_wrap (err, "layer %s: staging", desc->digest) : 0;
      struct img_unpack_result res = { 0 };
      if (stream_layer (p, ref, desc, diff_id, dir, &res, err) == 0)
        {
          if (s->layer_commit (s->cls, lock, desc->digest, dir, &res, err) < 0)
            return berr_wrap (err, "layer %s: commit", desc->digest);
          *fetched = true;
          return 0;
        }
      s->layer_abort (s->cls, lock, dir);
      if (berr_errno (*err) != EIO || attempt >= p->layer_attempts)
        return -1;
      blog_msg (BLOG_WARN, "%s (attempt %d of %d, retrying the layer)", (*err)->msg, attempt,
                p->layer_attempts);
      berr_free (err);
      sleep_ms ((long)LAYER_BACKOFF_MS << (attempt - 1));
    }
}

/* ---- all layers, a bounded number at a time ---------------------------------------------------
 */

struct layer_jobs
{
  struct img_puller *p;
  const struct img_ref *ref;
  const struct img_descriptor *layers;
  char **diff_ids;
  size_t n, next;
  pthread_mutex_t lock;
  bool failed;
  berr *err;
  unsigned fetched, present;
};

/* Takes layers off the list until none is left or one failed. */
static void *layer_worker (void *arg)
{
  struct layer_jobs *j = arg;
  for (;;)
    {
      pthread_mutex_lock (&j->lock);
      size_t i = j->next++;
      bool stop = j->failed || i >= j->n;
      pthread_mutex_unlock (&j->lock);
      if (stop)
        return NULL;
      berr *e = NULL;
      bool fetched = false;
      int r = j->p->sink.layer_has (j->p->sink.cls, j->layers[i].digest, &e);
      if (r == 0)
        r = fetch_layer (j->p, j->ref, &j->layers[i], j->diff_ids[i], &fetched, &e);
      pthread_mutex_lock (&j->lock);
      if (r < 0 && !j->failed)
        {
          j->failed = true;
          j->err = e;
          e = NULL;
        }
      j->fetched += r >= 0 && fetched;
      j->present += r >= 0 && !fetched;
      pthread_mutex_unlock (&j->lock);
      berr_free (&e);
    }
}

static int fetch_layers (struct img_puller *p, const struct img_ref *ref,
                         const struct img_manifest *m, char **diff_ids, struct img_pull_result *out,
                         berr **err)
{
  struct layer_jobs j
      = { .p = p, .ref = ref, .layers = m->layers, .diff_ids = diff_ids, .n = m->n_layers };
  size_t n_threads = m->n_layers < (size_t)p->max_parallel ? m->n_layers : (size_t)p->max_parallel;
  pthread_t threads[MAX_PARALLEL];
  size_t started = 0;
  pthread_mutex_init (&j.lock, NULL);
  /* This thread is one of the workers. */
  for (; started + 1 < n_threads; started++)
    if (pthread_create (&threads[started], NULL, layer_worker, &j) != 0)
      break;
  layer_worker (&j);
  for (size_t i = 0; i < started; i++)
    pthread_join (threads[i], NULL);
  pthread_mutex_destroy (&j.lock);
  out->layers_fetched = j.fetched;
  out->layers_present = j.present;
  if (!j.failed)
    return 0;
  *err = j.err;
  return -1;
}

/* ---- manifest, config, image ------------------------------------------------------------------
 */

/* Fetches the config blob (verified by the registry client) into memory and checks that it
 * parses and has one diff_id per layer; *cfg gets the parsed config. */
static int fetch_config (struct img_puller *p, const struct img_ref *ref,
                         const struct img_manifest *m, struct img_pull_result *out,
                         struct img_config **cfg, berr **err)
{
  const struct img_descriptor *d = &m->config;
  if (d->size < 0 || d->size > (int64_t)MAX_CONFIG_BYTES)
    return berr_make (err, EFBIG, "config %s: %" PRId64 " bytes is too large", d->digest, d->size);
  _cleanup_close_ int fd = memfd_create ("berth-config", MFD_CLOEXEC);
  if (fd < 0)
    return berr_sys (err, "memfd_create");
  uint64_t size = 0;
  if (img_registry_get_blob (p->reg, ref, d->digest, fd, &size, err) < 0)
    return -1;
  if (size != (uint64_t)d->size)
    return berr_make (err, EBADMSG, "config %s: %" PRIu64 " bytes, the manifest says %" PRId64,
                      d->digest, size, d->size);
  if (lseek (fd, 0, SEEK_SET) < 0)
    return berr_sys (err, "config: lseek");
  if (bfs_read_fd (fd, "config", MAX_CONFIG_BYTES, &out->config, &out->config_len, err) < 0)
    return -1;
  if (img_config_parse (out->config, out->config_len, cfg, err) < 0)
    return berr_wrap (err, "config %s", d->digest);
  size_t n = 0;
  while ((*cfg)->diff_ids && (*cfg)->diff_ids[n])
    n++;
  if (n != m->n_layers)
    return berr_make (err, EBADMSG, "config %s: %zu diff_ids for %zu layers", d->digest, n,
                      m->n_layers);
  out->config_digest = strdup (d->digest);
  return out->config_digest ? 0 : berr_make (err, ENOMEM, "out of memory");
}

/* The network part of a pull: everything lands in the sink, the image record last. */
static int fetch_image (struct img_puller *p, const struct img_ref *ref,
                        struct img_pull_result *out, berr **err)
{
  struct img_fetched_manifest m;
  if (img_registry_resolve (p->reg, ref, &m, err) < 0)
    return -1;
  struct img_config *cfg = NULL;
  int ret = fetch_config (p, ref, m.manifest, out, &cfg, err);
  if (ret == 0)
    ret = fetch_layers (p, ref, m.manifest, cfg->diff_ids, out, err);
  img_config_free (cfg);
  if (ret == 0
      && p->sink.image_commit (p->sink.cls, out->ref, m.digest, m.body, m.len, out->config,
                               out->config_len, err)
             < 0)
    ret = berr_wrap (err, "recording the image");
  if (ret == 0)
    out->manifest_digest = steal_ptr (&m.digest);
  img_fetched_manifest_clear (&m);
  return ret;
}

static void drop_pulled (struct img_pull_result *out)
{
  free (out->config);
  free (out->config_digest);
  out->config = out->config_digest = NULL;
  out->config_len = 0;
  out->layers_fetched = out->layers_present = 0;
}

/* ECS_IMAGE_PULL_BEHAVIOR around fetch_image. out->ref is set. */
static int pull_with_behavior (struct img_puller *p, const struct img_ref *ref,
                               const struct img_pull_opts *o, struct img_pull_result *out,
                               berr **err)
{
  char *stored = NULL;
  int cached = p->sink.image_lookup (p->sink.cls, out->ref, &stored, err);
  if (cached < 0)
    return berr_wrap (err, "image %s: looking up the store", out->ref);
  bool use_cache_first = o->behavior == IMG_PULL_ONCE || o->behavior == IMG_PULL_PREFER_CACHED;
  if (cached && use_cache_first)
    {
      out->manifest_digest = stored;
      out->cached = true;
      return 0;
    }
  if (fetch_image (p, ref, out, err) == 0)
    {
      free (stored);
      return 0;
    }
  if (cached && o->behavior == IMG_PULL_DEFAULT)
    {
      blog_msg (BLOG_WARN, "pull of %s failed, using the stored image %s: %s", out->ref, stored,
                (*err)->msg);
      drop_pulled (out);
      out->pull_error = steal_ptr (&(*err)->msg);
      berr_free (err);
      out->manifest_digest = stored;
      out->cached = true;
      return 0;
    }
  free (stored);
  return berr_wrap (err, "pull %s", out->ref);
}

/* ---- one download per reference in this process -----------------------------------------------
 */

/* Finds the pull of key in progress, or registers this one. Returns the entry to wait on
 * (waiters counted) or NULL with *mine the new entry this call must complete. */
static struct inflight *inflight_join (struct img_puller *p, const char *key,
                                       struct inflight **mine)
{
  *mine = NULL;
  for (struct inflight *e = p->inflight; e; e = e->next)
    if (strcmp (e->ref, key) == 0)
      {
        e->waiters++;
        return e;
      }
  struct inflight *e = calloc (1, sizeof *e);
  if (e && (e->ref = strdup (key)) == NULL)
    {
      free (e);
      e = NULL;
    }
  if (e)
    {
      e->next = p->inflight;
      p->inflight = e;
    }
  *mine = e; /* NULL on OOM: the pull runs without sharing */
  return NULL;
}

static void inflight_finish (struct img_puller *p, struct inflight *e, int ret,
                             const struct img_pull_result *res)
{
  berr *ignored = NULL;
  pthread_mutex_lock (&p->lock);
  for (struct inflight **pp = &p->inflight; *pp; pp = &(*pp)->next)
    if (*pp == e)
      {
        *pp = e->next;
        break;
      }
  e->done = true;
  e->ret = ret == 0 ? result_copy (res, &e->res, &ignored) : -1;
  berr_free (&ignored);
  bool free_now = e->waiters == 0;
  pthread_cond_broadcast (&p->cond);
  pthread_mutex_unlock (&p->lock);
  if (free_now)
    {
      img_pull_result_clear (&e->res);
      free (e->ref);
      free (e);
    }
}

/* Waits for e; returns 1 with *out filled when its result serves this pull, 0 when this pull
 * must run itself (the other failed, or only used the stored image where we want a pull). */
static int inflight_wait (struct img_puller *p, struct inflight *e, const struct img_pull_opts *o,
                          struct img_pull_result *out, berr **err)
{
  while (!e->done)
    pthread_cond_wait (&p->cond, &p->lock);
  bool want_pull = o->behavior == IMG_PULL_DEFAULT || o->behavior == IMG_PULL_ALWAYS;
  int ret = 0;
  struct img_pull_result copy;
  if (e->ret == 0 && !(e->res.cached && want_pull))
    ret = result_copy (&e->res, &copy, err) < 0 ? -1 : 1;
  if (ret == 1)
    {
      img_pull_result_clear (out);
      *out = copy;
    }
  if (--e->waiters == 0)
    {
      img_pull_result_clear (&e->res);
      free (e->ref);
      free (e);
    }
  if (ret == 1)
    out->shared = true;
  return ret;
}

int img_pull (struct img_puller *p, const char *ref_string, const struct img_pull_opts *opts,
              struct img_pull_result *out, berr **err)
{
  static const struct img_pull_opts defaults = { 0 };
  const struct img_pull_opts *o = opts ? opts : &defaults;
  struct img_ref_defaults d = { p->def_registry, p->def_namespace };
  struct img_ref ref;
  memset (out, 0, sizeof *out);
  if (img_ref_parse (ref_string, &d, &ref, err) < 0)
    return berr_wrap (err, "pull");
  int ret = 0;
  if ((out->ref = img_ref_format (&ref)) == NULL)
    ret = berr_make (err, ENOMEM, "out of memory");
  if (ret == 0 && o->username && o->password)
    ret = img_registry_set_credentials (p->reg, ref.registry, o->username, o->password, err);
  for (; ret == 0;)
    {
      struct inflight *mine = NULL;
      pthread_mutex_lock (&p->lock);
      struct inflight *other = inflight_join (p, out->ref, &mine);
      int shared = other ? inflight_wait (p, other, o, out, err) : 0;
      pthread_mutex_unlock (&p->lock);
      if (shared != 0)
        {
          ret = shared < 0 ? -1 : 0;
          break;
        }
      if (other) /* it did not serve us: take our turn as the one that pulls */
        continue;
      ret = pull_with_behavior (p, &ref, o, out, err);
      if (mine)
        inflight_finish (p, mine, ret, out);
      break;
    }
  img_ref_clear (&ref);
  if (ret < 0)
    img_pull_result_clear (out);
  return ret;
}
