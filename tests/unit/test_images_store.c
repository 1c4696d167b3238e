/* The image store without mounts: stage/commit/abort, per-layer locks across processes and
 * threads, crash safety, references, removal, cleanup by age and by (injected) disk usage, and
 * the parsers of store records and archive metadata. Layers here are small file trees. */
#include "images/images.h"
#include "lib/cleanup.h"
#include "tests/support/support.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *root;
static struct img_store *st;
static struct img_sink sink;

/* Fails the test with the error's message unless r >= 0; takes a pointer so that the error is
 * read after the call that fills it. */
static void ok (int r, berr **err)
{
  ck_assert_msg (r >= 0, "%s", *err ? (*err)->msg : "(no error)");
  berr_free (err);
}

/* img_store_lookup that fails the test on an error: 1 found, 0 not. */
static int lookup (struct img_store *s, const char *name, struct img_store_image **im)
{
  berr *err = NULL;
  int r = img_store_lookup (s, name, im, &err);
  ok (r, &err);
  if (r == 0)
    *im = NULL;
  return r;
}

static void setup (void)
{
  berr *err = NULL;
  root = ts_mkdtemp ("store");
  ok (img_store_open (root, &st, &err), &err);
  img_store_sink (st, &sink);
}

static void teardown (void)
{
  img_store_close (st);
  ts_rmtree (root);
  free (root);
}

static void sha (const char *s, size_t len, char out[72])
{
  unsigned char d[32];
  unsigned n = 0;
  EVP_Digest (s, len, d, &n, EVP_sha256 (), NULL);
  strcpy (out, "sha256:");
  for (int i = 0; i < 32; i++)
    sprintf (out + 7 + 2 * i, "%02x", d[i]);
}

static void layer_digest (const char *name, char out[72])
{
  sha (name, strlen (name), out);
}

static void write_in (const char *dir, const char *name, const char *content)
{
  char path[512];
  snprintf (path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen (path, "w");
  ck_assert_ptr_nonnull (f);
  fputs (content, f);
  fclose (f);
}

/* A layer holding one file; returns 1 if it was already present. */
static int put_layer (const char *digest, const char *file, const char *content)
{
  berr *err = NULL;
  char *dir = NULL;
  void *lock = NULL;
  int r = sink.layer_stage (sink.cls, digest, &dir, &lock, &err);
  ok (r, &err);
  if (r == 1)
    return 1;
  write_in (dir, file, content);
  struct img_unpack_result res = { .blob_size = 1, .files = 1 };
  strcpy (res.blob_digest, digest);
  ok (sink.layer_commit (sink.cls, lock, digest, dir, &res, &err), &err);
  free (dir);
  return 0;
}

struct docs
{
  char manifest[4096], config[2048], digest[72];
};

static void make_docs (const char *tag, char *const *layers, struct docs *d)
{
  char ids[1024] = "", descs[2048] = "", cd[72];
  for (int i = 0; layers[i]; i++)
    {
      snprintf (ids + strlen (ids), sizeof ids - strlen (ids), "%s\"%s\"", i ? "," : "", layers[i]);
      snprintf (descs + strlen (descs), sizeof descs - strlen (descs),
                "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
                "\"digest\":\"%s\",\"size\":1}",
                i ? "," : "", layers[i]);
    }
  snprintf (d->config, sizeof d->config,
            "{\"architecture\":\"amd64\",\"os\":\"linux\",\"author\":\"%s\",\"config\":{\"Cmd\":"
            "[\"/bin/sh\"],\"Env\":[\"A=1\"],\"WorkingDir\":\"/w\"},\"rootfs\":{\"type\":"
            "\"layers\",\"diff_ids\":[%s]}}",
            tag, ids);
  sha (d->config, strlen (d->config), cd);
  snprintf (d->manifest, sizeof d->manifest,
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
            "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":"
            "\"%s\",\"size\":%zu},\"layers\":[%s]}",
            cd, strlen (d->config), descs);
  sha (d->manifest, strlen (d->manifest), d->digest);
}

/* An image named ref over the given layer digests (which must be present). */
static void put_image (const char *ref, char *const *layers, char digest[72])
{
  struct docs d;
  berr *err = NULL;
  make_docs (ref, layers, &d);
  ok (sink.image_commit (sink.cls, ref, d.digest, d.manifest, strlen (d.manifest), d.config,
                         strlen (d.config), &err),
      &err);
  strcpy (digest, d.digest);
}

static int count_entries (const char *sub)
{
  char path[512];
  snprintf (path, sizeof path, "%s/%s", root, sub);
  char *cmd = NULL, *out = NULL;
  int status = 0;
  ck_assert_int_ge (asprintf (&cmd, "ls -A %s | wc -l", path), 0);
  ck_assert_int_eq (ts_sh (cmd, &out, &status), 0);
  int n = atoi (out);
  free (cmd);
  free (out);
  return n;
}

/* Whether <root>/<dir>/<hex of digest><rest> exists. */
static bool exists_in (const char *dir, const char *digest, const char *rest)
{
  char path[1024];
  snprintf (path, sizeof path, "%s/%s/%s%s", root, dir, digest + 7, rest);
  return access (path, F_OK) == 0;
}

START_TEST (test_commit_makes_layer_visible_and_abort_leaves_nothing)
{
  char a[72], b[72];
  berr *err = NULL;
  layer_digest ("a", a);
  layer_digest ("b", b);
  ck_assert_int_eq (sink.layer_has (sink.cls, a, &err), 0);
  ck_assert_int_eq (put_layer (a, "hello", "world"), 0);
  ck_assert_int_eq (sink.layer_has (sink.cls, a, &err), 1);
  ck_assert (exists_in ("layers", a, "/root/hello"));
  /* Staging a present layer is a no-op that says so. */
  ck_assert_int_eq (put_layer (a, "hello", "again"), 1);

  char *dir = NULL;
  void *lock = NULL;
  ok (sink.layer_stage (sink.cls, b, &dir, &lock, &err), &err);
  write_in (dir, "partial", "x");
  sink.layer_abort (sink.cls, lock, dir);
  ck_assert_int_eq (access (dir, F_OK), -1);
  ck_assert_int_eq (sink.layer_has (sink.cls, b, &err), 0);
  ck_assert_int_eq (count_entries ("staging"), 0);
  free (dir);
}
END_TEST

START_TEST (test_commit_rejects_content_of_another_digest)
{
  char a[72], other[72];
  layer_digest ("a", a);
  layer_digest ("other", other);
  berr *err = NULL;
  char *dir = NULL;
  void *lock = NULL;
  ok (sink.layer_stage (sink.cls, a, &dir, &lock, &err), &err);
  struct img_unpack_result res = { 0 };
  strcpy (res.blob_digest, other);
  ck_assert_int_lt (sink.layer_commit (sink.cls, lock, a, dir, &res, &err), 0);
  ck_assert_int_eq (berr_errno (err), EBADMSG);
  ck_assert_ptr_nonnull (strstr (err->msg, "digest mismatch"));
  berr_free (&err);
  ck_assert_int_eq (sink.layer_has (sink.cls, a, &err), 0);
  ck_assert_int_eq (count_entries ("staging"), 0);
  free (dir);
}
END_TEST

START_TEST (test_image_commit_checks_digests_and_layers)
{
  char a[72], b[72];
  layer_digest ("a", a);
  layer_digest ("b", b);
  put_layer (a, "f", "1");
  char *layers[] = { a, b, NULL };
  struct docs d;
  make_docs ("x", layers, &d);
  berr *err = NULL;
  /* Layer b is missing. */
  ck_assert_int_lt (sink.image_commit (sink.cls, "x", d.digest, d.manifest, strlen (d.manifest),
                                       d.config, strlen (d.config), &err),
                    0);
  ck_assert_ptr_nonnull (strstr (err->msg, b));
  berr_free (&err);
  put_layer (b, "g", "2");
  /* A manifest that is not what its digest says. */
  char wrong[72];
  layer_digest ("not the manifest", wrong);
  ck_assert_int_lt (sink.image_commit (sink.cls, "x", wrong, d.manifest, strlen (d.manifest),
                                       d.config, strlen (d.config), &err),
                    0);
  ck_assert_int_eq (berr_errno (err), EBADMSG);
  berr_free (&err);
  /* A config that is not the one the manifest names. */
  ck_assert_int_lt (
      sink.image_commit (sink.cls, "x", d.digest, d.manifest, strlen (d.manifest), "{}", 2, &err),
      0);
  ck_assert_int_eq (berr_errno (err), EBADMSG);
  berr_free (&err);
  ck_assert_int_eq (count_entries ("images"), 0);
  ok (sink.image_commit (sink.cls, "x", d.digest, d.manifest, strlen (d.manifest), d.config,
                         strlen (d.config), &err),
      &err);
  ck_assert_int_eq (count_entries ("images"), 1);
}
END_TEST

START_TEST (test_lookup_by_reference_and_digest_and_config)
{
  char a[72], dg[72];
  layer_digest ("a", a);
  put_layer (a, "f", "1");
  char *layers[] = { a, NULL };
  put_image ("registry-1.docker.io/library/busybox:1.36", layers, dg);
  berr *err = NULL;
  struct img_store_image *im = NULL;
  /* The way users write it finds the canonical reference. */
  ck_assert_int_eq (lookup (st, "busybox:1.36", &im), 1);
  ck_assert_str_eq (im->digest, dg);
  ck_assert_str_eq (im->refs[0], "registry-1.docker.io/library/busybox:1.36");
  ck_assert_ptr_null (im->refs[1]);
  ck_assert_str_eq (im->layers[0], a);
  ck_assert_uint_eq (im->containers, 0);
  ck_assert (im->size > 0);
  img_store_image_free (im);
  ck_assert_int_eq (lookup (st, dg, &im), 1);
  img_store_image_free (im);
  ck_assert_int_eq (lookup (st, "busybox:1.37", &im), 0);
  char *md = NULL;
  ck_assert_int_eq (
      sink.image_lookup (sink.cls, "registry-1.docker.io/library/busybox:1.36", &md, &err), 1);
  ck_assert_str_eq (md, dg);
  free (md);

  struct img_config *c = NULL;
  ok (img_store_config (st, "busybox:1.36", &c, &err), &err);
  ck_assert_str_eq (c->cmd[0], "/bin/sh");
  ck_assert_str_eq (c->env[0], "A=1");
  ck_assert_str_eq (c->working_dir, "/w");
  img_config_free (c);
  ck_assert_int_lt (img_store_config (st, "nothere", &c, &err), 0);
  ck_assert_int_eq (berr_errno (err), ENOENT);
  berr_free (&err);
}
END_TEST

START_TEST (test_layers_are_stored_once_and_shared)
{
  char a[72], b[72], c[72], d1[72], d2[72];
  layer_digest ("a", a);
  layer_digest ("b", b);
  layer_digest ("c", c);
  ck_assert_int_eq (put_layer (a, "f", "1"), 0);
  ck_assert_int_eq (put_layer (b, "f", "2"), 0);
  char *l1[] = { a, b, NULL };
  put_image ("one:1", l1, d1);
  ck_assert_int_eq (put_layer (a, "f", "1"), 1);
  ck_assert_int_eq (put_layer (c, "f", "3"), 0);
  char *l2[] = { a, c, NULL };
  put_image ("two:1", l2, d2);
  ck_assert_int_eq (count_entries ("layers"), 3);
  struct img_store_image **v = NULL;
  size_t n = 0;
  berr *err = NULL;
  ok (img_store_list (st, &v, &n, &err), &err);
  ck_assert_uint_eq (n, 2);
  ck_assert_str_eq (v[0]->digest, d2); /* newest first */
  img_store_images_free (v, n);
}
END_TEST

/* Two pullers of one layer in two processes: one downloads, the other waits and finds it. */
static void racer (const char *digest, const char *log)
{
  berr *err = NULL;
  struct img_store *s = NULL;
  struct img_sink k;
  if (img_store_open (root, &s, &err) < 0)
    _exit (2);
  img_store_sink (s, &k);
  char *dir = NULL;
  void *lock = NULL;
  int r = k.layer_stage (k.cls, digest, &dir, &lock, &err);
  int fd = open (log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (r < 0 || fd < 0)
    _exit (3);
  if (write (fd, r == 0 ? "D" : "P", 1) != 1)
    _exit (4);
  if (r == 0)
    {
      usleep (300 * 1000); /* a slow download: the other must wait, not download too */
      write_in (dir, "f", "data");
      struct img_unpack_result res = { 0 };
      strcpy (res.blob_digest, digest);
      if (k.layer_commit (k.cls, lock, digest, dir, &res, &err) < 0)
        _exit (5);
    }
  _exit (0);
}

static char *read_log (const char *log)
{
  char *s = ts_read_file (log);
  ck_assert_ptr_nonnull (s);
  return s;
}

START_TEST (test_concurrent_stage_from_two_processes_downloads_once)
{
  char a[72], log[512];
  layer_digest ("shared", a);
  snprintf (log, sizeof log, "%s/log", root);
  pid_t p[2];
  for (int i = 0; i < 2; i++)
    if ((p[i] = fork ()) == 0)
      racer (a, log);
  for (int i = 0; i < 2; i++)
    {
      int status = 0;
      ck_assert_int_eq (waitpid (p[i], &status, 0), p[i]);
      ck_assert_int_eq (ts_exit_code (status), 0);
    }
  char *s = read_log (log);
  ck_assert_msg (strcmp (s, "DP") == 0, "log `%s`: expected one download then one present", s);
  free (s);
  berr *err = NULL;
  ck_assert_int_eq (sink.layer_has (sink.cls, a, &err), 1);
}
END_TEST

struct thread_arg
{
  const char *digest;
  int result;
};

static void *thread_racer (void *p)
{
  struct thread_arg *t = p;
  berr *err = NULL;
  char *dir = NULL;
  void *lock = NULL;
  t->result = sink.layer_stage (sink.cls, t->digest, &dir, &lock, &err);
  if (t->result == 0)
    {
      usleep (200 * 1000);
      write_in (dir, "f", "data");
      struct img_unpack_result res = { 0 };
      strcpy (res.blob_digest, t->digest);
      if (sink.layer_commit (sink.cls, lock, t->digest, dir, &res, &err) < 0)
        t->result = -1;
    }
  berr_free (&err);
  free (dir);
  return NULL;
}

START_TEST (test_concurrent_stage_from_two_threads_downloads_once)
{
  char a[72];
  layer_digest ("threads", a);
  struct thread_arg t[2] = { { a, -9 }, { a, -9 } };
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq (pthread_create (&th[i], NULL, thread_racer, &t[i]), 0);
  for (int i = 0; i < 2; i++)
    pthread_join (th[i], NULL);
  ck_assert_int_eq (t[0].result + t[1].result, 1); /* one 0 (downloaded), one 1 (present) */
  ck_assert_int_ge (t[0].result, 0);
  ck_assert_int_ge (t[1].result, 0);
}
END_TEST

START_TEST (test_puller_killed_mid_layer_leaves_nothing_and_open_cleans_up)
{
  char a[72];
  layer_digest ("killed", a);
  pid_t p = fork ();
  if (p == 0)
    {
      berr *err = NULL;
      char *dir = NULL;
      void *lock = NULL;
      if (sink.layer_stage (sink.cls, a, &dir, &lock, &err) != 0)
        _exit (2);
      char path[512];
      snprintf (path, sizeof path, "%s/big", dir);
      int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      char buf[4096] = { 1 };
      if (fd < 0 || write (fd, buf, sizeof buf) != (ssize_t)sizeof buf) /* half of 8 KiB */
        _exit (3);
      raise (SIGKILL);
      _exit (4);
    }
  int status = 0;
  ck_assert_int_eq (waitpid (p, &status, 0), p);
  ck_assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
  berr *err = NULL;
  ck_assert_int_eq (sink.layer_has (sink.cls, a, &err), 0);
  ck_assert_int_eq (count_entries ("staging"), 1); /* the dead puller's stage */
  ck_assert_int_eq (count_entries ("layers"), 0);
  img_store_close (st);
  ok (img_store_open (root, &st, &err), &err);
  img_store_sink (st, &sink);
  ck_assert_int_eq (count_entries ("staging"), 0);
  ck_assert_int_eq (sink.layer_has (sink.cls, a, &err), 0);
  /* The lock died with the puller: the layer can be pulled again at once. */
  ck_assert_int_eq (put_layer (a, "f", "ok"), 0);
  ck_assert_int_eq (sink.layer_has (sink.cls, a, &err), 1);
}
END_TEST

START_TEST (test_open_keeps_stages_that_live_pullers_hold)
{
  char a[72];
  layer_digest ("busy", a);
  berr *err = NULL;
  char *dir = NULL;
  void *lock = NULL;
  ok (sink.layer_stage (sink.cls, a, &dir, &lock, &err), &err);
  pid_t p = fork ();
  if (p == 0)
    {
      struct img_store *s = NULL;
      _exit (img_store_open (root, &s, &err) < 0 ? 2 : 0);
    }
  int status = 0;
  ck_assert_int_eq (waitpid (p, &status, 0), p);
  ck_assert_int_eq (ts_exit_code (status), 0);
  ck_assert_int_eq (access (dir, F_OK), 0);
  sink.layer_abort (sink.cls, lock, dir);
  free (dir);
}
END_TEST

/* Marks an image as used by a container the way rootfs.c records it (no mount needed here). */
static void fake_container (const char *id, const char *digest)
{
  char path[512], name[96];
  snprintf (path, sizeof path, "%s/containers/%s", root, id);
  ck_assert_int_eq (mkdir (path, 0700), 0);
  snprintf (name, sizeof name, "image-%s", digest + 7);
  write_in (path, name, "");
}

START_TEST (test_remove_keeps_shared_layers_and_refuses_images_in_use)
{
  char a[72], b[72], c[72], d1[72], d2[72];
  layer_digest ("a", a);
  layer_digest ("b", b);
  layer_digest ("c", c);
  put_layer (a, "f", "1");
  put_layer (b, "f", "2");
  put_layer (c, "f", "3");
  char *l1[] = { a, b, NULL }, *l2[] = { b, c, NULL };
  put_image ("one:1", l1, d1);
  put_image ("one:alias", l1, d1);
  put_image ("two:1", l2, d2);
  berr *err = NULL;
  struct img_store_image *im = NULL;
  /* One of two names: only the name goes. */
  ok (img_store_remove (st, "one:1", &err), &err);
  ck_assert_int_eq (lookup (st, "one:1", &im), 0);
  ck_assert_int_eq (lookup (st, "one:alias", &im), 1);
  img_store_image_free (im);
  ck_assert_int_eq (count_entries ("layers"), 3);
  /* The last name: the image and its unshared layer go, the shared layer stays. */
  ok (img_store_remove (st, "one:alias", &err), &err);
  ck_assert_int_eq (lookup (st, d1, &im), 0);
  ck_assert (!exists_in ("layers", a, ""));
  ck_assert (exists_in ("layers", b, ""));
  ck_assert (exists_in ("layers", c, ""));
  /* In use: refused. */
  fake_container ("c1", d2);
  ck_assert_int_lt (img_store_remove (st, d2, &err), 0);
  ck_assert_int_eq (berr_errno (err), EBUSY);
  berr_free (&err);
  ck_assert_int_lt (img_store_remove (st, "two:1", &err), 0);
  ck_assert_int_eq (berr_errno (err), EBUSY);
  berr_free (&err);
  ck_assert_int_eq (lookup (st, "two:1", &im), 1);
  ck_assert_uint_eq (im->containers, 1);
  img_store_image_free (im);
  ck_assert_int_lt (img_store_remove (st, "nothere:1", &err), 0);
  ck_assert_int_eq (berr_errno (err), ENOENT);
  berr_free (&err);
}
END_TEST

/* Injected disk usage: 10% per stored image, so the watermark logic is exact. */
static int usage_by_images (void *cls, const char *path, uint64_t *used, uint64_t *total,
                            berr **err)
{
  int *calls = cls;
  (*calls)++;
  *used = (uint64_t)count_entries ("images") * 10;
  *total = 100;
  return 0;
}

static void set_used (const char *digest, int64_t offset_s)
{
  char path[512];
  snprintf (path, sizeof path, "%s/images/%s/used", root, digest + 7);
  int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ck_assert_int_ge (fd, 0);
  struct timespec ts[2];
  clock_gettime (CLOCK_REALTIME, &ts[0]);
  ts[0].tv_sec += offset_s;
  ts[1] = ts[0];
  ck_assert_int_eq (futimens (fd, ts), 0);
  close (fd);
}

/* n images, image i with its own layer, last used i hours from now: image 0 is the least
 * recently used. */
static void put_images (int n, char digests[][72])
{
  for (int i = 0; i < n; i++)
    {
      char name[32], l[72];
      snprintf (name, sizeof name, "img%d:1", i);
      layer_digest (name, l);
      put_layer (l, "f", name);
      char *layers[] = { l, NULL };
      put_image (name, layers, digests[i]);
      set_used (digests[i], (int64_t)i * 3600);
    }
}

START_TEST (test_gc_watermarks_remove_least_recently_used_until_low)
{
  char d[9][72];
  put_images (9, d);             /* 90% */
  fake_container ("busy", d[0]); /* the least recently used, but in use */
  int calls = 0;
  struct img_gc_params p = {
    .disk_only = true, .grace_s = -1, .disk_usage = usage_by_images, .disk_usage_cls = &calls
  };
  struct img_gc_result res;
  berr *err = NULL;
  ok (img_store_gc (st, &p, &res, &err), &err);
  /* 90 >= 85: remove until < 80, i.e. two images (d1, d2), never d0. */
  ck_assert_uint_eq (res.images_removed, 2);
  ck_assert_uint_eq (res.used_before, 90);
  ck_assert_uint_eq (res.used_after, 70);
  ck_assert_uint_eq (res.layers_removed, 2);
  struct img_store_image *im = NULL;
  ck_assert_int_eq (lookup (st, d[0], &im), 1);
  img_store_image_free (im);
  ck_assert_int_eq (lookup (st, d[1], &im), 0);
  ck_assert_int_eq (lookup (st, d[2], &im), 0);
  ck_assert_int_eq (lookup (st, d[3], &im), 1);
  img_store_image_free (im);
  /* Below the high watermark nothing more goes. */
  ok (img_store_gc (st, &p, &res, &err), &err);
  ck_assert_uint_eq (res.images_removed, 0);
}
END_TEST

START_TEST (test_gc_age_pass_removes_old_unused_images_up_to_the_cycle_limit)
{
  char d[4][72];
  put_images (4, d); /* used 0, 1, 2, 3 hours from now */
  fake_container ("busy", d[0]);
  int calls = 0;
  struct timespec now;
  clock_gettime (CLOCK_REALTIME, &now);
  /* "Now" is 10 hours ahead: every image was pulled 10 h ago and last used 10, 9, 8 and 7 h
   * ago; a minimum age of 7.5 h leaves out d[3]. */
  struct img_gc_params p = { .min_age_s = 7 * 3600 + 1800,
                             .max_delete = 1,
                             .now_ns = ((int64_t)now.tv_sec + 10 * 3600) * 1000000000LL,
                             .disk_usage = usage_by_images,
                             .disk_usage_cls = &calls,
                             .high_pct = 100,
                             .low_pct = 100 };
  struct img_gc_result res;
  berr *err = NULL;
  ok (img_store_gc (st, &p, &res, &err), &err);
  ck_assert_uint_eq (res.images_removed, 1); /* the cycle limit */
  struct img_store_image *im = NULL;
  ck_assert_int_eq (lookup (st, d[1], &im), 0);
  p.max_delete = 5;
  ok (img_store_gc (st, &p, &res, &err), &err);
  ck_assert_uint_eq (res.images_removed, 1); /* d[2]; d[3] too recent, d[0] in use */
  ck_assert_int_eq (lookup (st, d[0], &im), 1);
  img_store_image_free (im);
  ck_assert_int_eq (lookup (st, d[3], &im), 1);
  img_store_image_free (im);
}
END_TEST

START_TEST (test_gc_removes_unreferenced_layers_only_after_the_grace_period)
{
  char a[72];
  layer_digest ("orphan", a);
  put_layer (a, "f", "1");
  int calls = 0;
  struct img_gc_params p = { .disk_usage = usage_by_images, .disk_usage_cls = &calls };
  struct img_gc_result res;
  berr *err = NULL;
  ok (img_store_gc (st, &p, &res, &err), &err);
  ck_assert_uint_eq (res.layers_removed, 0); /* a pull may be about to commit its image */
  p.grace_s = -1;
  ok (img_store_gc (st, &p, &res, &err), &err);
  ck_assert_uint_eq (res.layers_removed, 1);
  ck_assert_int_eq (sink.layer_has (sink.cls, a, &err), 0);
  ck_assert_int_eq (count_entries ("staging"), 0);
}
END_TEST

START_TEST (test_record_parser_rejects_malformed_records)
{
  berr *err = NULL;
  struct img_store_image *im = NULL;
  char a[72];
  layer_digest ("a", a);
  char good[512];
  snprintf (good, sizeof good,
            "{\"digest\":\"%s\",\"config_digest\":\"%s\",\"layers\":[\"%s\"],\"size\":5,"
            "\"created\":\"2026-11-22T10:00:00Z\"}",
            a, a, a);
  ok (img_store_record_parse (good, strlen (good), &im, &err), &err);
  ck_assert_uint_eq (im->size, 5);
  img_store_image_free (im);
  const char *bad[] = {
    "[]",
    "{\"digest\":\"sha256:00\",\"config_digest\":\"x\",\"layers\":[],\"size\":1,\"created\":1}",
    "{}",
  };
  for (size_t i = 0; i < 3; i++)
    {
      ck_assert_int_lt (img_store_record_parse (bad[i], strlen (bad[i]), &im, &err), 0);
      berr_free (&err);
    }
  snprintf (good, sizeof good,
            "{\"digest\":\"%s\",\"config_digest\":\"%s\",\"layers\":[\"../x\"],\"size\":5,"
            "\"created\":\"2026-11-22T10:00:00Z\"}",
            a, a);
  ck_assert_int_lt (img_store_record_parse (good, strlen (good), &im, &err), 0);
  berr_free (&err);
}
END_TEST

START_TEST (test_archive_parsers_reject_hostile_member_names)
{
  berr *err = NULL;
  struct img_archive_image *v = NULL;
  size_t n = 0;
  const char *good
      = "[{\"Config\":\"c.json\",\"RepoTags\":[\"a:1\"],\"Layers\":[\"./l/layer.tar\"]}]";
  ok (img_docker_archive_parse (good, strlen (good), &v, &n, &err), &err);
  ck_assert_uint_eq (n, 1);
  ck_assert_str_eq (v[0].layers[0], "l/layer.tar");
  ck_assert_str_eq (v[0].repo_tags[0], "a:1");
  img_archive_images_free (v, n);
  const char *bad[] = {
    "[{\"Config\":\"../c.json\",\"Layers\":[\"l\"]}]",
    "[{\"Config\":\"c\",\"Layers\":[\"/etc/passwd\"]}]",
    "[{\"Config\":\"c\",\"Layers\":[]}]",
    "[]",
    "{}",
  };
  for (size_t i = 0; i < ARRAY_SIZE (bad); i++)
    {
      ck_assert_int_lt (img_docker_archive_parse (bad[i], strlen (bad[i]), &v, &n, &err), 0);
      berr_free (&err);
    }
  char a[72], idx[1024];
  layer_digest ("m", a);
  snprintf (idx, sizeof idx,
            "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image."
            "manifest.v1+json\",\"digest\":\"%s\",\"size\":3,\"annotations\":{\"org."
            "opencontainers.image.ref.name\":\"v1\"}}]}",
            a);
  struct img_layout_entry *e = NULL;
  ok (img_oci_index_parse (idx, strlen (idx), &e, &n, &err), &err);
  ck_assert_uint_eq (n, 1);
  ck_assert_str_eq (e[0].ref_name, "v1");
  ck_assert_str_eq (e[0].desc.digest, a);
  img_layout_entries_free (e, n);
  ok (img_oci_layout_check ("{\"imageLayoutVersion\":\"1.0.0\"}", 31, &err), &err);
  ck_assert_int_lt (img_oci_layout_check ("{\"imageLayoutVersion\":\"2.0\"}", 28, &err), 0);
  berr_free (&err);
}
END_TEST

static Suite *suite (void)
{
  Suite *s = suite_create ("images_store");
  TCase *tc = tcase_create ("store");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 30);
  tcase_add_test (tc, test_commit_makes_layer_visible_and_abort_leaves_nothing);
  tcase_add_test (tc, test_commit_rejects_content_of_another_digest);
  tcase_add_test (tc, test_image_commit_checks_digests_and_layers);
  tcase_add_test (tc, test_lookup_by_reference_and_digest_and_config);
  tcase_add_test (tc, test_layers_are_stored_once_and_shared);
  tcase_add_test (tc, test_concurrent_stage_from_two_processes_downloads_once);
  tcase_add_test (tc, test_concurrent_stage_from_two_threads_downloads_once);
  tcase_add_test (tc, test_puller_killed_mid_layer_leaves_nothing_and_open_cleans_up);
  tcase_add_test (tc, test_open_keeps_stages_that_live_pullers_hold);
  tcase_add_test (tc, test_remove_keeps_shared_layers_and_refuses_images_in_use);
  tcase_add_test (tc, test_gc_watermarks_remove_least_recently_used_until_low);
  tcase_add_test (tc, test_gc_age_pass_removes_old_unused_images_up_to_the_cycle_limit);
  tcase_add_test (tc, test_gc_removes_unreferenced_layers_only_after_the_grace_period);
  tcase_add_test (tc, test_record_parser_rejects_malformed_records);
  tcase_add_test (tc, test_archive_parsers_reject_hostile_member_names);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (suite ());
}
