/* The images component end to end with real parts (root): img_pull from docker-registry on
 * 127.0.0.1 into the real store (img_store_sink), containers run by berth-runtime from the
 * store's overlay root filesystems, two processes and eight threads pulling into one store,
 * a pull SIGKILLed mid-download, pull behaviours with the registry gone, cleanup and re-pull. */
#include "images/images.h"
#include "lib/clock.h"
#include "lib/json.h"
#include "tests/support/imgreg.h"
#include "tests/support/support.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Builds with umoci, in $1/uoci: tags t1 (busybox; etc/one and 768 KiB of random bytes), t2 (t1
 * plus etc/two and random bytes), t3 (t2 plus etc/three and random bytes): t1's config has
 * Entrypoint ["/bin/sh", "-c"], Cmd and Env GREETING, and t2, t3 inherit it; big (4 layers of
 * 1 MiB random data/randN, sources kept in $1/bN); solo (one layer of its own, for the
 * corruption test). $1/uoci.tar is the layout as a tarball, for import. */
static const char IMAGES_SH[]
    = "set -e; B=$1; cd $B\n"
      "umoci init --layout uoci\n"
      "umoci new --image uoci:t1\n"
      "mkdir -p bb/bin bb/etc bb/tmp bb/proc bb/dev bb/sys a1/etc a2/etc a3/etc s1/etc\n"
      "cp /bin/busybox bb/bin/busybox\n"
      "for c in sh cat echo ls; do ln -s busybox bb/bin/$c; done\n"
      "for i in 1 2 3; do head -c 768K /dev/urandom > a$i/etc/r$i; done\n"
      "echo one > a1/etc/one; echo two > a2/etc/two; echo three > a3/etc/three\n"
      "head -c 256K /dev/urandom > s1/etc/solo\n"
      "for l in bb a1 a2 a3 s1; do tar --numeric-owner -C $l -cf $l.tar .; done\n"
      "umoci raw add-layer --image uoci:t1 bb.tar\n"
      "umoci raw add-layer --image uoci:t1 a1.tar\n"
      "umoci config --image uoci:t1 --config.entrypoint /bin/sh --config.entrypoint -c "
      "--config.cmd 'echo \"$GREETING\"; cat /etc/one' "
      "--config.env GREETING=hello-from-the-image-config\n"
      "umoci tag --image uoci:t1 t2\n"
      "umoci raw add-layer --image uoci:t2 a2.tar\n"
      "umoci tag --image uoci:t2 t3\n"
      "umoci raw add-layer --image uoci:t3 a3.tar\n"
      "umoci new --image uoci:solo\n"
      "umoci raw add-layer --image uoci:solo s1.tar\n"
      "umoci new --image uoci:big\n"
      "for i in 1 2 3 4; do mkdir -p b$i/data; head -c 1024K /dev/urandom > b$i/data/rand$i\n"
      "  tar --numeric-owner -C b$i -cf b$i.tar .; umoci raw add-layer --image uoci:big b$i.tar;"
      " done\n"
      "tar -C uoci -cf uoci.tar .\n";

static char *base_dir;
static int reg_port;
static pid_t reg_pid;

static void suite_setup (void)
{
  base_dir = ts_mkdtemp ("berth-e2e");
  ts_reg_script (base_dir, "images.sh", IMAGES_SH);
  reg_port = ts_free_port ();
  reg_pid = ts_reg_start (base_dir, "plain", reg_port, "none", 0);
  char layout[4096];
  snprintf (layout, sizeof layout, "%s/uoci", base_dir);
  const char *tags[] = { "t1", "t2", "t3", "big", "solo" };
  for (size_t i = 0; i < 5; i++)
    ts_reg_push (layout, reg_port, NULL, tags[i], "test/app", false);
}

static void suite_teardown (void)
{
  ts_reg_stop (reg_pid);
  if (base_dir)
    ts_rmtree (base_dir);
}

/* ---- per test: a store in a private mount namespace -------------------------------------- */

static char *root;
static struct img_store *st;
static struct img_sink sink;

static void ok (int r, berr **err)
{
  ck_assert_msg (r >= 0, "%s", *err ? (*err)->msg : "(no error)");
  berr_free (err);
}

static void setup (void)
{
  berr *err = NULL;
  ck_assert_int_eq (unshare (CLONE_NEWNS), 0);
  ck_assert_int_eq (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
  root = ts_mkdtemp ("berth-e2e-store");
  ok (img_store_open (root, &st, &err), &err);
  img_store_sink (st, &sink);
}

static void teardown (void)
{
  img_store_close (st);
  ts_rmtree (root);
  free (root);
}

/* A registry client and puller over the store's sink. */
struct puller
{
  struct img_registry *reg;
  struct img_puller *p;
};

static void puller_open (struct puller *p, const struct img_sink *s, int max_parallel)
{
  berr *err = NULL;
  struct img_registry_opts ro = { .retries = -1 };
  struct img_puller_opts po = { .max_parallel = max_parallel };
  ok (img_registry_new (&ro, &p->reg, &err), &err);
  ok (img_puller_new (p->reg, s, &po, &p->p, &err), &err);
}

static void puller_close (struct puller *p)
{
  img_puller_free (p->p);
  img_registry_free (p->reg);
}

static char *ref_at (int port, const char *tag)
{
  char *s = NULL;
  ck_assert_int_ge (asprintf (&s, "127.0.0.1:%d/test/app:%s", port, tag), 0);
  return s;
}

static void pull_ok (struct puller *p, const char *ref, enum img_pull_behavior b,
                     struct img_pull_result *res)
{
  struct img_pull_opts o = { .behavior = b };
  berr *err = NULL;
  ck_assert_msg (img_pull (p->p, ref, &o, res, &err) == 0, "%s", err ? err->msg : "");
}

/* Entries of <root>/<dir> (dot files excluded). */
static int count_entries (const char *dir)
{
  char cmd[4096], *out = NULL;
  snprintf (cmd, sizeof cmd, "ls %s/%s | wc -l", root, dir);
  ck_assert_int_eq (ts_sh (cmd, &out, NULL), 0);
  int n = atoi (out);
  free (out);
  return n;
}

static char *relay_log (const char *what)
{
  char *log = NULL;
  ck_assert_int_ge (asprintf (&log, "%s/relay-%s.%d.log", base_dir, what, (int)getpid ()), 0);
  return log;
}

/* Fails unless every layer of stored image name was requested exactly once in the relay log. */
static void assert_layers_fetched_once (const char *log, const char *name)
{
  struct img_store_image *im = NULL;
  berr *err = NULL;
  ck_assert_int_eq (img_store_lookup (st, name, &im, &err), 1);
  for (size_t i = 0; im->layers[i]; i++)
    {
      int total = 0, max_open = 0;
      ts_relay_count (log, im->layers[i], &total, &max_open);
      ck_assert_msg (total == 1, "layer %s fetched %d times", im->layers[i], total);
    }
  img_store_image_free (im);
}

/* Writes the strings of a then b (either may be NULL) as a JSON array to dir/name. */
static void write_json_array (const char *dir, const char *name, char **a, char **b)
{
  cJSON *j = cJSON_CreateArray ();
  char **parts[] = { a, b };
  for (size_t k = 0; k < 2; k++)
    for (size_t i = 0; parts[k] && parts[k][i]; i++)
      cJSON_AddItemToArray (j, cJSON_CreateString (parts[k][i]));
  char *text = cJSON_PrintUnformatted (j), path[4096];
  snprintf (path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen (path, "we");
  ck_assert_ptr_nonnull (f);
  fputs (text, f);
  fclose (f);
  free (text);
  cJSON_Delete (j);
}

/* Runs the image's Entrypoint + Cmd with its Env (from img_store_config) in a container on
 * rootfs with berth-runtime; returns the exit code and output. */
static int run_image (const char *rootfs, const struct img_config *c, char **out)
{
  char *b = ts_mkdtemp ("e2e-bundle"), *rt = ts_bin ("berth-runtime"), *state = ts_mkdtemp ("rt");
  write_json_array (b, "args.json", c->entrypoint, c->cmd);
  write_json_array (b, "env.json", c->env, NULL);
  char *cmd = NULL;
  int status = 0;
  ck_assert_int_ge (
      asprintf (&cmd,
                "set -e; %s spec --bundle %s; cd %s; jq --arg r %s --slurpfile a args.json "
                "--slurpfile e env.json --arg cg berth-e2e-%d '.root.path = $r | "
                ".root.readonly = false | .process.args = $a[0] | .process.env = $e[0] | "
                ".process.terminal = false | .linux.cgroupsPath = $cg' "
                "%s/config.json > %s/c.json; mv %s/c.json %s/config.json",
                rt, b, b, rootfs, (int)getpid (), b, b, b, b),
      0);
  ts_sh_ok ("%s", cmd);
  free (cmd);
  ck_assert_int_ge (asprintf (&cmd, "%s --root %s run --bundle %s e2e-%d </dev/null", rt, state, b,
                              (int)getpid ()),
                    0);
  ck_assert_int_eq (ts_sh (cmd, out, &status), 0);
  free (cmd);
  ck_assert_int_ge (
      asprintf (&cmd, "%s --root %s delete --force e2e-%d", rt, state, (int)getpid ()), 0);
  ts_sh (cmd, NULL, NULL);
  free (cmd);
  ts_rmtree (b);
  ts_rmtree (state);
  free (b);
  free (state);
  free (rt);
  return ts_exit_code (status);
}

/* ---- tests -------------------------------------------------------------------------------- */

START_TEST (
    test_pulled_image_runs_in_a_container_with_its_config_and_a_second_pull_fetches_no_layer)
{
  char *log = relay_log ("run");
  int port = 0;
  pid_t relay = ts_relay_start (reg_port, 0, log, &port);
  struct puller p;
  puller_open (&p, &sink, 0);
  char *ref = ref_at (port, "t2");
  struct img_pull_result res;
  pull_ok (&p, ref, IMG_PULL_DEFAULT, &res);
  ck_assert_uint_eq (res.layers_fetched, 3);
  ck_assert (!res.cached);
  berr *err = NULL;
  struct img_config *c = NULL;
  ok (img_store_config (st, ref, &c, &err), &err);
  ck_assert_str_eq (c->entrypoint[0], "/bin/sh");
  ck_assert_str_eq (c->entrypoint[1], "-c");
  ck_assert_ptr_nonnull (strstr (c->cmd[0], "$GREETING"));
  char id[64], *path = NULL, *out = NULL;
  snprintf (id, sizeof id, "e2e-%d", (int)getpid ());
  ok (img_rootfs_create (st, res.manifest_digest, id, NULL, &path, &err), &err);
  int code = run_image (path, c, &out);
  ck_assert_msg (code == 0, "container failed (%d): %s", code, out);
  ck_assert_msg (strstr (out, "hello-from-the-image-config\none\n") != NULL, "output: %s", out);
  free (out);
  img_config_free (c);
  ok (img_rootfs_remove (st, id, &err), &err);
  /* Again: the manifest and config are fetched (a moved tag would be noticed), no layer. */
  struct img_pull_result again;
  pull_ok (&p, ref, IMG_PULL_DEFAULT, &again);
  ck_assert_uint_eq (again.layers_fetched, 0);
  ck_assert_uint_eq (again.layers_present, 3);
  ck_assert_str_eq (again.manifest_digest, res.manifest_digest);
  ts_reg_stop (relay);
  assert_layers_fetched_once (log, ref);
  img_pull_result_clear (&again);
  img_pull_result_clear (&res);
  puller_close (&p);
  free (path);
  free (ref);
  free (log);
}
END_TEST

/* A child process that opens the store itself, waits for the go byte on fd and pulls ref. */
static pid_t spawn_puller (const char *ref, int go)
{
  pid_t pid = fork ();
  ck_assert_int_ge (pid, 0);
  if (pid > 0)
    return pid;
  struct img_store *s = NULL;
  struct img_sink k;
  struct puller p;
  struct img_pull_result res;
  berr *err = NULL;
  char c;
  if (img_store_open (root, &s, &err) < 0 || read (go, &c, 1) != 1)
    _exit (2);
  img_store_sink (s, &k);
  puller_open (&p, &k, 2);
  struct img_pull_opts o = { .behavior = IMG_PULL_ALWAYS };
  int r = img_pull (p.p, ref, &o, &res, &err);
  if (r < 0)
    fprintf (stderr, "child pull: %s\n", err->msg);
  _exit (r == 0 ? 0 : 1);
}

START_TEST (test_two_processes_pulling_one_image_into_one_store_fetch_each_blob_once)
{
  char *log = relay_log ("procs");
  int port = 0;
  pid_t relay = ts_relay_start (reg_port, 4 << 20, log, &port);
  char *ref = ref_at (port, "big");
  int go[2];
  ck_assert_int_eq (pipe2 (go, O_CLOEXEC), 0);
  pid_t a = spawn_puller (ref, go[0]), b = spawn_puller (ref, go[0]);
  ck_assert_int_eq (write (go[1], "xx", 2), 2);
  int sa = 0, sb = 0;
  ck_assert_int_eq (waitpid (a, &sa, 0), a);
  ck_assert_int_eq (waitpid (b, &sb, 0), b);
  ck_assert_msg (ts_exit_code (sa) == 0 && ts_exit_code (sb) == 0, "children: %d %d",
                 ts_exit_code (sa), ts_exit_code (sb));
  ts_reg_stop (relay);
  assert_layers_fetched_once (log, ref);
  ck_assert_int_eq (count_entries ("layers"), 4);
  ck_assert_int_eq (count_entries ("images"), 1);
  ck_assert_int_eq (count_entries ("staging"), 0);
  close (go[0]);
  close (go[1]);
  free (ref);
  free (log);
}
END_TEST

static bool partly_pulled (void *arg)
{
  (void)arg;
  return count_entries ("layers") >= 1 && count_entries ("staging") >= 1;
}

/* Committed layers of big whose file equals its source. */
static int complete_big_layers (void)
{
  char cmd[4096], *out = NULL;
  snprintf (cmd, sizeof cmd,
            "n=0; for d in %s/layers/*/root/data; do for f in $d/rand*; do "
            "i=${f##*rand}; cmp -s $f %s/b$i/data/rand$i && n=$((n+1)); done; done; echo $n",
            root, base_dir);
  ck_assert_int_eq (ts_sh (cmd, &out, NULL), 0);
  int n = atoi (out);
  free (out);
  return n;
}

START_TEST (test_pull_killed_mid_download_leaves_the_store_clean_and_pulls_only_what_is_missing)
{
  char *log = relay_log ("crash");
  int port = 0;
  pid_t relay = ts_relay_start (reg_port, 1 << 20, log, &port); /* ~1 s per layer */
  char *ref = ref_at (port, "big");
  int go[2];
  ck_assert_int_eq (pipe2 (go, O_CLOEXEC), 0);
  pid_t child = spawn_puller (ref, go[0]);
  ck_assert_int_eq (write (go[1], "x", 1), 1);
  ck_assert_msg (ts_wait_for (partly_pulled, NULL, 30000), "the child never got halfway");
  usleep (100000);
  kill (child, SIGKILL);
  int status = 0;
  ck_assert_int_eq (waitpid (child, &status, 0), child);
  ck_assert_msg (WIFSIGNALED (status), "the pull finished before it was killed");
  ts_reg_stop (relay);
  ck_assert_int_ge (count_entries ("staging"), 1);
  /* Reopened (the agent restarting): staging swept, only whole layers, no image. */
  img_store_close (st);
  berr *err = NULL;
  ok (img_store_open (root, &st, &err), &err);
  img_store_sink (st, &sink);
  ck_assert_int_eq (count_entries ("staging"), 0);
  int committed = count_entries ("layers");
  ck_assert_int_ge (committed, 1);
  ck_assert_int_lt (committed, 4);
  ck_assert_int_eq (complete_big_layers (), committed);
  struct img_store_image *im = NULL;
  ck_assert_int_eq (img_store_lookup (st, ref, &im, &err), 0);
  ck_assert_int_eq (count_entries ("images"), 0);
  /* Pulled again straight from the registry: only the missing layers. */
  char *direct = ref_at (reg_port, "big");
  struct puller p;
  puller_open (&p, &sink, 0);
  struct img_pull_result res;
  pull_ok (&p, direct, IMG_PULL_DEFAULT, &res);
  ck_assert_uint_eq (res.layers_present, (unsigned)committed);
  ck_assert_uint_eq (res.layers_fetched, 4 - (unsigned)committed);
  ck_assert_int_eq (complete_big_layers (), 4);
  ck_assert_int_eq (img_store_lookup (st, direct, &im, &err), 1);
  img_store_image_free (im);
  img_pull_result_clear (&res);
  puller_close (&p);
  close (go[0]);
  close (go[1]);
  free (direct);
  free (ref);
  free (log);
}
END_TEST

START_TEST (test_once_and_prefer_cached_use_pulled_and_imported_images_with_the_registry_stopped)
{
  char *log = relay_log ("down");
  int port = 0;
  pid_t relay = ts_relay_start (reg_port, 0, log, &port);
  struct puller p;
  puller_open (&p, &sink, 0);
  char *pulled = ref_at (port, "t1"), *imported = NULL;
  struct img_pull_result res;
  pull_ok (&p, pulled, IMG_PULL_DEFAULT, &res);
  img_pull_result_clear (&res);
  /* The layout's tags are bare (`t3`): with this name they land on its repository. */
  ck_assert_int_ge (asprintf (&imported, "127.0.0.1:%d/test/imported:t3", port), 0);
  char tar[4096];
  snprintf (tar, sizeof tar, "%s/uoci.tar", base_dir);
  int fd = open (tar, O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge (fd, 0);
  struct img_import_result ir;
  berr *err = NULL;
  ok (img_store_import (st, fd, imported, &ir, &err), &err);
  close (fd);
  img_import_result_clear (&ir);
  ts_reg_stop (relay);
  const char *refs[] = { pulled, imported };
  enum img_pull_behavior bs[] = { IMG_PULL_ONCE, IMG_PULL_PREFER_CACHED };
  for (size_t i = 0; i < 2; i++)
    for (size_t k = 0; k < 2; k++)
      {
        pull_ok (&p, refs[i], bs[k], &res);
        ck_assert (res.cached);
        struct img_store_image *im = NULL;
        ck_assert_int_eq (img_store_lookup (st, refs[i], &im, &err), 1);
        ck_assert_str_eq (im->digest, res.manifest_digest);
        img_store_image_free (im);
        img_pull_result_clear (&res);
      }
  /* `default` falls back to the stored image; `always` needs the registry. */
  pull_ok (&p, imported, IMG_PULL_DEFAULT, &res);
  ck_assert (res.cached && res.pull_error != NULL);
  img_pull_result_clear (&res);
  struct img_pull_opts o = { .behavior = IMG_PULL_ALWAYS };
  ck_assert_int_eq (img_pull (p.p, imported, &o, &res, &err), -1);
  berr_free (&err);
  /* The imported image still makes a root filesystem with its files. */
  char id[64], *path = NULL, file[4200];
  snprintf (id, sizeof id, "imp-%d", (int)getpid ());
  ok (img_rootfs_create (st, imported, id, NULL, &path, &err), &err);
  snprintf (file, sizeof file, "%s/etc/three", path);
  char *three = ts_read_file (file);
  ck_assert_str_eq (three, "three\n");
  free (three);
  ok (img_rootfs_remove (st, id, &err), &err);
  puller_close (&p);
  free (path);
  free (pulled);
  free (imported);
  free (log);
}
END_TEST

static int low_usage (void *cls, const char *path, uint64_t *used, uint64_t *total, berr **err)
{
  (void)cls, (void)path, (void)err;
  *used = 10;
  *total = 100;
  return 0;
}

START_TEST (test_cleanup_keeps_an_image_with_a_rootfs_and_a_removed_image_pulls_again_cleanly)
{
  struct puller p;
  puller_open (&p, &sink, 0);
  char *t1 = ref_at (reg_port, "t1"), *t2 = ref_at (reg_port, "t2");
  struct img_pull_result r1, r2;
  pull_ok (&p, t1, IMG_PULL_DEFAULT, &r1);
  pull_ok (&p, t2, IMG_PULL_DEFAULT, &r2);
  berr *err = NULL;
  char id[64], *path = NULL;
  snprintf (id, sizeof id, "gc-%d", (int)getpid ());
  ok (img_rootfs_create (st, t1, id, NULL, &path, &err), &err);
  /* Both old enough for the age pass; t1 is used by a root filesystem. */
  struct img_gc_params gp = { .min_age_s = -1,
                              .grace_s = -1,
                              .disk_usage = low_usage,
                              .now_ns = bclock_real_ns () + 3600LL * 1000000000LL };
  struct img_gc_result gr;
  ok (img_store_gc (st, &gp, &gr, &err), &err);
  ck_assert_uint_eq (gr.images_removed, 1);
  ck_assert_uint_eq (gr.layers_removed, 1); /* t2's own layer; the two shared ones stay */
  struct img_store_image *im = NULL;
  ck_assert_int_eq (img_store_lookup (st, t1, &im, &err), 1);
  img_store_image_free (im);
  ck_assert_int_eq (img_store_lookup (st, t2, &im, &err), 0);
  ck_assert_int_eq (count_entries ("layers"), 2);
  char file[4200];
  snprintf (file, sizeof file, "%s/etc/one", path);
  char *one = ts_read_file (file);
  ck_assert_str_eq (one, "one\n");
  free (one);
  /* Pulled again: only its missing layer, and a root filesystem from it works. */
  struct img_pull_result again;
  pull_ok (&p, t2, IMG_PULL_DEFAULT, &again);
  ck_assert_uint_eq (again.layers_fetched, 1);
  ck_assert_uint_eq (again.layers_present, 2);
  ck_assert_str_eq (again.manifest_digest, r2.manifest_digest);
  char *path2 = NULL;
  ok (img_rootfs_create (st, t2, "gc-again", NULL, &path2, &err), &err);
  snprintf (file, sizeof file, "%s/etc/two", path2);
  char *two = ts_read_file (file);
  ck_assert_str_eq (two, "two\n");
  free (two);
  ok (img_rootfs_remove (st, "gc-again", &err), &err);
  ok (img_rootfs_remove (st, id, &err), &err);
  ck_assert_int_eq (count_entries ("staging"), 0);
  img_pull_result_clear (&again);
  img_pull_result_clear (&r1);
  img_pull_result_clear (&r2);
  puller_close (&p);
  free (path);
  free (path2);
  free (t1);
  free (t2);
}
END_TEST

START_TEST (test_corrupted_blob_leaves_the_store_without_the_layer)
{
  struct puller p;
  puller_open (&p, &sink, 0);
  char *ref = ref_at (reg_port, "solo");
  struct img_ref r;
  struct img_fetched_manifest m;
  berr *err = NULL;
  ok (img_ref_parse (ref, NULL, &r, &err), &err);
  ok (img_registry_resolve (p.reg, &r, &m, &err), &err);
  const char *d = m.manifest->layers[0].digest;
  ts_sh_ok ("f=%s/store-plain/docker/registry/v2/blobs/sha256/%.2s/%s/data; "
            "head -c $(stat -c %%s $f) /dev/urandom > $f.new && mv $f.new $f",
            base_dir, d + 7, d + 7);
  struct img_pull_result res;
  ck_assert_int_eq (img_pull (p.p, ref, NULL, &res, &err), -1);
  ck_assert_int_eq (berr_errno (err), EBADMSG);
  ck_assert_msg (strstr (err->msg, d) != NULL, "%s", err->msg);
  berr_free (&err);
  ck_assert_int_eq (sink.layer_has (sink.cls, d, &err), 0);
  ck_assert_int_eq (count_entries ("layers"), 0);
  ck_assert_int_eq (count_entries ("staging"), 0);
  ck_assert_int_eq (count_entries ("images"), 0);
  struct img_store_image *im = NULL;
  ck_assert_int_eq (img_store_lookup (st, ref, &im, &err), 0);
  img_fetched_manifest_clear (&m);
  img_ref_clear (&r);
  puller_close (&p);
  free (ref);
}
END_TEST

/* ---- the sink under concurrent pulls ----------------------------------------------------- */

struct stress
{
  struct img_puller *p;
  char *ref;
  int ret;
  berr *err;
  struct img_pull_result res;
};

static void *stress_main (void *arg)
{
  struct stress *t = arg;
  struct img_pull_opts o = { .behavior = IMG_PULL_ALWAYS };
  t->ret = img_pull (t->p, t->ref, &o, &t->res, &t->err);
  return NULL;
}

START_TEST (test_eight_threads_pulling_three_tags_that_share_layers_into_one_store)
{
  char *log = relay_log ("stress");
  int port = 0;
  pid_t relay = ts_relay_start (reg_port, 8 << 20, log, &port);
  /* Threads 0-3 have a puller each (so only the sink's locks keep them apart), 4-7 share one
   * (its in-process sharing of one reference, and the sink's locks between references). */
  struct puller own[4], shared;
  for (int i = 0; i < 4; i++)
    puller_open (&own[i], &sink, 3);
  puller_open (&shared, &sink, 3);
  const char *tags[] = { "t1", "t2", "t3" };
  struct stress t[8];
  pthread_t th[8];
  for (int i = 0; i < 8; i++)
    {
      t[i] = (struct stress){ .p = i < 4 ? own[i].p : shared.p, .ref = ref_at (port, tags[i % 3]) };
      ck_assert_int_eq (pthread_create (&th[i], NULL, stress_main, &t[i]), 0);
    }
  unsigned fetched = 0;
  for (int i = 0; i < 8; i++)
    {
      pthread_join (th[i], NULL);
      ck_assert_msg (t[i].ret == 0, "thread %d: %s", i, t[i].err ? t[i].err->msg : "");
      fetched += t[i].res.shared ? 0 : t[i].res.layers_fetched;
    }
  ts_reg_stop (relay);
  ck_assert_uint_eq (fetched, 4); /* busybox and three data layers, each once */
  for (int i = 0; i < 3; i++)
    assert_layers_fetched_once (log, t[i].ref);
  ck_assert_int_eq (count_entries ("layers"), 4);
  ck_assert_int_eq (count_entries ("images"), 3);
  ck_assert_int_eq (count_entries ("staging"), 0);
  /* Every layer whole: each random file equals its source. */
  ts_sh_ok ("set -e; for i in 1 2 3; do n=0; for f in %s/layers/*/root/etc/r$i; do "
            "cmp $f %s/a$i/etc/r$i; n=$((n+1)); done; test $n = 1; done",
            root, base_dir);
  for (int i = 0; i < 8; i++)
    {
      img_pull_result_clear (&t[i].res);
      free (t[i].ref);
    }
  for (int i = 0; i < 4; i++)
    puller_close (&own[i]);
  puller_close (&shared);
  free (log);
}
END_TEST

int main (void)
{
  if (!ts_is_root ())
    {
      printf ("test_images_e2e: needs root (mounts, layer ownership)\n");
      return 0;
    }
  Suite *s = suite_create ("images_e2e");
  TCase *tc = tcase_create ("e2e");
  tcase_set_timeout (tc, 120);
  tcase_add_unchecked_fixture (tc, suite_setup, suite_teardown);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (
      tc, test_pulled_image_runs_in_a_container_with_its_config_and_a_second_pull_fetches_no_layer);
  tcase_add_test (tc, test_two_processes_pulling_one_image_into_one_store_fetch_each_blob_once);
  tcase_add_test (
      tc, test_pull_killed_mid_download_leaves_the_store_clean_and_pulls_only_what_is_missing);
  tcase_add_test (
      tc, test_once_and_prefer_cached_use_pulled_and_imported_images_with_the_registry_stopped);
  tcase_add_test (
      tc, test_cleanup_keeps_an_image_with_a_rootfs_and_a_removed_image_pulls_again_cleanly);
  tcase_add_test (tc, test_eight_threads_pulling_three_tags_that_share_layers_into_one_store);
  tcase_add_test (tc, test_corrupted_blob_leaves_the_store_without_the_layer);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
