/* img_pull against Debian's docker-registry on 127.0.0.1 (plain, basic auth, bearer tokens),
 * with images built by umoci and pushed by skopeo, into a directory sink (root). */
#include "images/images.h"
#include "tests/support/dirsink.h"
#include "tests/support/imgreg.h"
#include "tests/support/support.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Builds with umoci, in $1/uoci: tag wh (3 layers: busybox and files; whiteouts of etc/a and
 * an opaque data/dir plus data/dir/new; opt/three) and tag big (4 layers of random data,
 * 1 MiB data/randN in layer N, sources kept in $1/bN). */
static const char UMOCI_SH[]
    = "set -e; B=$1; cd $B\n"
      "umoci init --layout uoci\n"
      "umoci new --image uoci:wh\n"
      "mkdir -p l1/bin l1/etc l1/data/dir l2/etc l2/data/dir l3/opt\n"
      "cp /bin/busybox l1/bin/busybox\n"
      "echo a > l1/etc/a; echo b > l1/etc/b; echo old > l1/data/dir/old; echo keep > "
      "l1/data/keep\n"
      "touch l2/etc/.wh.a l2/data/dir/.wh..wh..opq; echo new > l2/data/dir/new\n"
      "echo three > l3/opt/three\n"
      "for i in 1 2 3; do tar --numeric-owner -C l$i -cf l$i.tar .; "
      "umoci raw add-layer --image uoci:wh l$i.tar; done\n"
      "umoci config --image uoci:wh --config.cmd /bin/sh\n"
      "umoci new --image uoci:big\n"
      "for i in 1 2 3 4; do mkdir -p b$i/data; head -c 1024K /dev/urandom > "
      "b$i/data/rand$i\n"
      "  tar --numeric-owner -C b$i -cf b$i.tar .; umoci raw add-layer --image uoci:big b$i.tar;"
      " done\n";

/* An OCI layout $1/hand written by hand: tag bad (a gzip layer whose config names another
 * diff_id) and tag zst (a zstd layer). */
static const char HAND_SH[]
    = "set -e; cd $1; mkdir -p hand/blobs/sha256\n"
      "put() { d=$(sha256sum \"$1\" | cut -d' ' -f1); cp \"$1\" hand/blobs/sha256/$d; echo $d; }\n"
      "mk() { # tag, compressor, layer media type, content the config's diff_id hashes\n"
      "  mkdir -p l-$1; echo $1 > l-$1/$1; tar --numeric-owner -C l-$1 -cf $1.tar .\n"
      "  $2 < $1.tar > $1.blob; L=$(put $1.blob); LS=$(stat -c %s $1.blob)\n"
      "  D=$(sha256sum $4 | cut -d' ' -f1)\n"
      "  printf "
      "'{\"architecture\":\"%s\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":["
      "\"sha256:%s\"]}}' $(dpkg --print-architecture) $D > $1.cfg\n"
      "  C=$(put $1.cfg); CS=$(stat -c %s $1.cfg)\n"
      "  printf "
      "'{\"schemaVersion\":2,\"mediaType\":\"application/"
      "vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/"
      "vnd.oci.image.config.v1+json\",\"digest\":\"sha256:%s\",\"size\":%s},\"layers\":[{"
      "\"mediaType\":\"%s\",\"digest\":\"sha256:%s\",\"size\":%s}]}' $C $CS $3 $L $LS > $1.man\n"
      "  printf "
      "'{\"mediaType\":\"application/"
      "vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:%s\",\"size\":%s,\"annotations\":{"
      "\"org.opencontainers.image.ref.name\":\"%s\"}}' $(put $1.man) $(stat -c %s $1.man) $1; }\n"
      "echo other > other\n"
      "B=$(mk bad \"gzip -n\" application/vnd.oci.image.layer.v1.tar+gzip other)\n"
      "Z=$(mk zst \"zstd -q\" application/vnd.oci.image.layer.v1.tar+zstd zst.tar)\n"
      "printf '{\"schemaVersion\":2,\"manifests\":[%s,%s]}' \"$B\" \"$Z\" > hand/index.json\n"
      "echo '{\"imageLayoutVersion\":\"1.0.0\"}' > hand/oci-layout\n";

static char *base_dir;
static int plain_port, basic_port, bearer_port, issuer_port;
static pid_t plain_pid, basic_pid, bearer_pid, issuer_pid;

static void push (const char *layout, int port, const char *creds, const char *tag,
                  const char *repo, bool all)
{
  char l[4096];
  snprintf (l, sizeof l, "%s/%s", base_dir, layout);
  ts_reg_push (l, port, creds, tag, repo, all);
}

static void suite_setup (void)
{
  base_dir = ts_mkdtemp ("berth-pull");
  ts_reg_script (base_dir, "layout.sh", TS_REG_BUSYBOX_LAYOUT_SH);
  ts_reg_script (base_dir, "umoci.sh", UMOCI_SH);
  ts_reg_script (base_dir, "token.sh", TS_REG_TOKEN_SH);
  ts_reg_script (base_dir, "hand.sh", HAND_SH);
  ts_sh_ok ("htpasswd -Bbc %s/htpasswd alice s3cret", base_dir);
  plain_port = ts_free_port ();
  plain_pid = ts_reg_start (base_dir, "plain", plain_port, "none", 0);
  basic_port = ts_free_port ();
  basic_pid = ts_reg_start (base_dir, "basic", basic_port, "basic", 0);
  issuer_pid = ts_reg_start_issuer (base_dir, &issuer_port);
  bearer_port = ts_free_port ();
  bearer_pid = ts_reg_start (base_dir, "bearer", bearer_port, "bearer", issuer_port);
  push ("uoci", plain_port, NULL, "wh", "test/wh", false);
  push ("uoci", plain_port, NULL, "big", "test/big", false);
  ts_sh_ok ("skopeo --insecure-policy copy -q --src-tls-verify=false --dest-tls-verify=false "
            "docker://127.0.0.1:%d/test/big:big docker://127.0.0.1:%d/test/big:big2",
            plain_port, plain_port);
  push ("oci", plain_port, NULL, "multi", "test/busybox", true);
  push ("oci", plain_port, NULL, "small", "test/corrupt", false);
  push ("hand", plain_port, NULL, "bad", "test/baddiff", false);
  push ("hand", plain_port, NULL, "zst", "test/zst", false);
  push ("uoci", basic_port, "alice:s3cret", "wh", "test/busybox", false);
  push ("uoci", bearer_port, "alice:s3cret", "wh", "test/busybox", false);
}

static void suite_teardown (void)
{
  pid_t pids[] = { plain_pid, basic_pid, bearer_pid, issuer_pid };
  for (size_t i = 0; i < 4; i++)
    ts_reg_stop (pids[i]);
  if (base_dir)
    ts_rmtree (base_dir);
}

/* ---- helpers ------------------------------------------------------------------------------ */

struct env
{
  char *dir;
  struct ts_dirsink sink;
  struct img_registry *reg;
  struct img_puller *puller;
};

static void env_open_with (struct env *e, const struct img_registry_opts *ro, int max_parallel)
{
  berr *err = NULL;
  e->dir = ts_mkdtemp ("berth-pull-sink");
  ck_assert_msg (ts_dirsink_init (&e->sink, e->dir, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_msg (img_registry_new (ro, &e->reg, &err) == 0, "%s", err ? err->msg : "");
  struct img_puller_opts po = { .max_parallel = max_parallel };
  ck_assert_msg (img_puller_new (e->reg, &e->sink.sink, &po, &e->puller, &err) == 0, "%s",
                 err ? err->msg : "");
}

static void env_open (struct env *e, int max_parallel)
{
  struct img_registry_opts ro = { .retries = -1 };
  env_open_with (e, &ro, max_parallel);
}

static void env_close (struct env *e)
{
  img_puller_free (e->puller);
  img_registry_free (e->reg);
  ts_rmtree (e->dir);
  free (e->dir);
  ts_dirsink_clear (&e->sink);
}

static char *ref_at (int port, const char *repo_tag)
{
  char *s = NULL;
  ck_assert_int_ge (asprintf (&s, "127.0.0.1:%d/%s", port, repo_tag), 0);
  return s;
}

static void pull_ok (struct env *e, const char *ref, enum img_pull_behavior b,
                     struct img_pull_result *res)
{
  struct img_pull_opts o = { .behavior = b };
  berr *err = NULL;
  ck_assert_msg (img_pull (e->puller, ref, &o, res, &err) == 0, "%s", err ? err->msg : "");
}

static char *sink_file (struct env *e, const char *ref, const char *suffix)
{
  char name[1024], p[4096];
  snprintf (name, sizeof name, "%s%s", ref, suffix);
  for (char *c = name; *c; c++)
    if (*c == '/')
      *c = '%';
  snprintf (p, sizeof p, "%s/images/%s", e->dir, name);
  return ts_read_file (p);
}

/* The stored manifest of ref (as the pull recorded it), parsed. */
static struct img_manifest *stored_manifest (struct env *e, const char *ref)
{
  char *body = sink_file (e, ref, ".manifest");
  ck_assert_ptr_nonnull (body);
  struct img_manifest *m = NULL;
  berr *err = NULL;
  ck_assert_msg (img_manifest_parse (NULL, body, strlen (body), &m, &err) == 0, "%s",
                 err ? err->msg : "");
  free (body);
  return m;
}

static char *layer_path (struct env *e, const char *digest, const char *rel)
{
  char *p = NULL;
  ck_assert_int_ge (asprintf (&p, "%s/layers/%s/%s", e->dir, digest, rel), 0);
  return p;
}

static bool layer_file_is (struct env *e, const char *digest, const char *rel, const char *text)
{
  char *p = layer_path (e, digest, rel), *s = ts_read_file (p);
  bool ok = s && strcmp (s, text) == 0;
  free (p);
  free (s);
  return ok;
}

/* img_pull of ref fails with errno want_errno (0: any), its message holding each of the words
 * (a NULL-terminated list). */
static void pull_fails (struct env *e, const char *ref, const struct img_pull_opts *o,
                        int want_errno, ...) __attribute__ ((sentinel));
static void pull_fails (struct env *e, const char *ref, const struct img_pull_opts *o,
                        int want_errno, ...)
{
  struct img_pull_result res;
  berr *err = NULL;
  ck_assert_int_eq (img_pull (e->puller, ref, o, &res, &err), -1);
  va_list ap;
  va_start (ap, want_errno);
  for (const char *w; (w = va_arg (ap, const char *)) != NULL;)
    ck_assert_msg (strstr (err->msg, w), "no `%s` in: %s", w, err->msg);
  va_end (ap);
  if (want_errno != 0)
    ck_assert_int_eq (berr_errno (err), want_errno);
  berr_free (&err);
}

/* Nothing committed or left staged in the sink. */
static void assert_sink_empty (struct env *e)
{
  ck_assert_int_eq (ts_dirsink_count (&e->sink, "layers"), 0);
  ck_assert_int_eq (ts_dirsink_count (&e->sink, "staging"), 0);
  ck_assert_int_eq (ts_dirsink_count (&e->sink, "images"), 0);
}

/* A relay to the plain registry at rate bytes/s (0: unlimited), logging into log (4096 bytes:
 * base_dir/relay-what.<pid>.log); *port is where it listens. */
static pid_t relay_start (const char *what, int rate, char *log, int *port)
{
  snprintf (log, 4096, "%s/relay-%s.%d.log", base_dir, what, getpid ());
  *port = 0;
  return ts_relay_start (plain_port, rate, log, port);
}

static char *read_line (const char *name)
{
  char p[4096];
  snprintf (p, sizeof p, "%s/%s", base_dir, name);
  char *s = ts_read_file (p);
  ck_assert_ptr_nonnull (s);
  s[strcspn (s, "\n")] = 0;
  return s;
}

/* ---- tests -------------------------------------------------------------------------------- */

START_TEST (test_pull_of_three_layer_image_unpacks_each_layer_with_whiteouts)
{
  struct env e;
  env_open (&e, 0);
  char *ref = ref_at (plain_port, "test/wh:wh");
  struct img_pull_result res;
  pull_ok (&e, ref, IMG_PULL_ALWAYS, &res);
  ck_assert (!res.cached && !res.shared);
  ck_assert_uint_eq (res.layers_fetched, 3);
  ck_assert_ptr_nonnull (res.config);
  ck_assert_msg (strstr (res.config, "\"/bin/sh\""), "%s", res.config);
  char *stored = sink_file (&e, ref, "");
  ck_assert_str_eq (stored, res.manifest_digest);
  struct img_manifest *m = stored_manifest (&e, ref);
  ck_assert_uint_eq (m->n_layers, 3);
  const char *l1 = m->layers[0].digest, *l2 = m->layers[1].digest, *l3 = m->layers[2].digest;
  ck_assert (layer_file_is (&e, l1, "etc/a", "a\n") && layer_file_is (&e, l1, "etc/b", "b\n"));
  ck_assert (layer_file_is (&e, l1, "data/dir/old", "old\n"));
  char *bb = layer_path (&e, l1, "bin/busybox");
  ts_sh_ok ("%s true", bb);
  /* Layer 2: etc/a whited out (char device 0/0), data/dir opaque with only new in it. */
  char *wa = layer_path (&e, l2, "etc/a"), *dd = layer_path (&e, l2, "data/dir");
  struct stat st;
  ck_assert_int_eq (lstat (wa, &st), 0);
  ck_assert (S_ISCHR (st.st_mode) && st.st_rdev == makedev (0, 0));
  char x[8] = { 0 };
  ck_assert_int_eq (getxattr (dd, "trusted.overlay.opaque", x, sizeof x), 1);
  ck_assert_int_eq (x[0], 'y');
  ck_assert (layer_file_is (&e, l2, "data/dir/new", "new\n"));
  ck_assert (layer_file_is (&e, l3, "opt/three", "three\n"));
  ck_assert_int_eq (ts_dirsink_count (&e.sink, "layers"), 3);
  ck_assert_int_eq (ts_dirsink_count (&e.sink, "staging"), 0);
  img_pull_result_clear (&res);
  /* Pulled again (default behaviour): the manifest is checked, no layer is fetched. */
  pull_ok (&e, ref, IMG_PULL_DEFAULT, &res);
  ck_assert (!res.cached);
  ck_assert_uint_eq (res.layers_fetched, 0);
  ck_assert_uint_eq (res.layers_present, 3);
  ck_assert_int_eq (e.sink.commits, 3);
  img_pull_result_clear (&res);
  img_manifest_free (m);
  free (wa);
  free (dd);
  free (bb);
  free (stored);
  free (ref);
  env_close (&e);
}
END_TEST

START_TEST (test_pull_of_manifest_list_picks_this_arch)
{
  struct env e;
  env_open (&e, 0);
  char *ref = ref_at (plain_port, "test/busybox:multi");
  struct img_pull_result res;
  pull_ok (&e, ref, IMG_PULL_DEFAULT, &res);
  char *want = read_line ("host.digest");
  ck_assert_str_eq (res.manifest_digest + 7, want);
  ck_assert_msg (strstr (res.config, img_host_arch ()), "%s", res.config);
  img_pull_result_clear (&res);
  free (want);
  free (ref);
  env_close (&e);
}
END_TEST

START_TEST (test_pull_uses_repository_credentials_for_basic_auth)
{
  struct env e;
  env_open (&e, 0);
  char *ref = ref_at (basic_port, "test/busybox:wh");
  pull_fails (&e, ref, NULL, EACCES, "HTTP 401", NULL);
  struct img_pull_result res;
  berr *err = NULL;
  struct img_pull_opts o = { .username = "alice", .password = "s3cret" };
  ck_assert_msg (img_pull (e.puller, ref, &o, &res, &err) == 0, "%s", err ? err->msg : "");
  ck_assert_uint_eq (res.layers_fetched, 3);
  img_pull_result_clear (&res);
  free (ref);
  env_close (&e);
}
END_TEST

START_TEST (test_pull_with_bearer_token_from_docker_config_credentials)
{
  char cfg[4096];
  snprintf (cfg, sizeof cfg, "%s/docker-config.%d.json", base_dir, getpid ());
  ts_sh_ok ("printf '{\"auths\":{\"127.0.0.1:%d\":{\"auth\":\"%%s\"}}}' "
            "$(printf alice:s3cret | base64) > %s",
            bearer_port, cfg);
  struct img_registry_opts ro = { .retries = -1, .docker_config = cfg };
  struct env e;
  env_open_with (&e, &ro, 0);
  char *ref = ref_at (bearer_port, "test/busybox:wh");
  int before = ts_reg_issuer_requests (base_dir);
  struct img_pull_result res;
  pull_ok (&e, ref, IMG_PULL_DEFAULT, &res);
  ck_assert_uint_eq (res.layers_fetched, 3);
  /* One token for the whole pull; parallel layer fetches reuse it. */
  ck_assert_int_eq (ts_reg_issuer_requests (base_dir), before + 1);
  img_pull_result_clear (&res);
  free (ref);
  env_close (&e);
}
END_TEST

START_TEST (test_pull_of_corrupted_blob_fails_and_commits_nothing)
{
  struct env e;
  env_open (&e, 0);
  char *ref = ref_at (plain_port, "test/corrupt:small");
  struct img_fetched_manifest m;
  struct img_ref r;
  berr *err = NULL;
  ck_assert_int_eq (img_ref_parse (ref, NULL, &r, &err), 0);
  ck_assert_msg (img_registry_resolve (e.reg, &r, &m, &err) == 0, "%s", err ? err->msg : "");
  const char *d = m.manifest->layers[0].digest;
  ts_sh_ok ("f=%s/store-plain/docker/registry/v2/blobs/sha256/%.2s/%s/data; "
            "head -c $(stat -c %%s $f) /dev/urandom > $f.new && mv $f.new $f",
            base_dir, d + 7, d + 7);
  pull_fails (&e, ref, NULL, EBADMSG, d, ref, NULL);
  assert_sink_empty (&e);
  ck_assert_int_eq (e.sink.aborts, 1);
  img_fetched_manifest_clear (&m);
  img_ref_clear (&r);
  free (ref);
  env_close (&e);
}
END_TEST

START_TEST (test_layer_whose_content_differs_from_the_config_diff_id_is_rejected)
{
  struct env e;
  env_open (&e, 0);
  char *ref = ref_at (plain_port, "test/baddiff:bad");
  pull_fails (&e, ref, NULL, EBADMSG,
              "uncompressed content is sha256:", "the config's diff_id sha256:", NULL);
  assert_sink_empty (&e);
  free (ref);
  env_close (&e);
}
END_TEST

START_TEST (test_pull_of_zstd_layer)
{
  struct env e;
  env_open (&e, 0);
  char *ref = ref_at (plain_port, "test/zst:zst");
  struct img_pull_result res;
  pull_ok (&e, ref, IMG_PULL_DEFAULT, &res);
  struct img_manifest *m = stored_manifest (&e, ref);
  ck_assert (layer_file_is (&e, m->layers[0].digest, "zst", "zst\n"));
  img_manifest_free (m);
  img_pull_result_clear (&res);
  free (ref);
  env_close (&e);
}
END_TEST

START_TEST (test_pull_of_missing_image_is_a_clear_error)
{
  struct env e;
  env_open (&e, 0);
  char *ref = ref_at (plain_port, "test/wh:nope");
  pull_fails (&e, ref, NULL, ENOENT, "pull 127.0.0.1:", "test/wh:nope", "manifest unknown", NULL);
  berr *err = NULL;
  ck_assert_int_eq (img_pull_behavior_parse ("sometimes", &(enum img_pull_behavior){ 0 }, &err),
                    -1);
  ck_assert_msg (strstr (err->msg, "ECS_IMAGE_PULL_BEHAVIOR") && strstr (err->msg, "sometimes"),
                 "%s", err->msg);
  berr_free (&err);
  free (ref);
  env_close (&e);
}
END_TEST

static int relay_lines (const char *log)
{
  char *s = ts_read_file (log);
  int n = 0;
  for (char *c = s; c && *c; c++)
    n += *c == '\n';
  free (s);
  return n;
}

START_TEST (test_pull_behaviours_when_the_registry_is_down)
{
  char log[4096];
  int port;
  pid_t relay = relay_start ("behaviour", 0, log, &port);
  struct env e;
  env_open (&e, 0);
  char *ref = ref_at (port, "test/wh:wh");
  struct img_pull_result res;
  struct img_pull_opts o = { .behavior = IMG_PULL_ONCE };
  /* once and prefer-cached pull when nothing is stored... */
  pull_ok (&e, ref, IMG_PULL_PREFER_CACHED, &res);
  ck_assert (!res.cached);
  img_pull_result_clear (&res);
  /* ...and use the stored image without a request when it is. */
  int lines = relay_lines (log);
  pull_ok (&e, ref, IMG_PULL_ONCE, &res);
  ck_assert (res.cached && res.config == NULL);
  img_pull_result_clear (&res);
  pull_ok (&e, ref, IMG_PULL_PREFER_CACHED, &res);
  ck_assert (res.cached && res.config == NULL);
  ck_assert_int_eq (relay_lines (log), lines);
  img_pull_result_clear (&res);
  ts_reg_stop (relay);
  pull_ok (&e, ref, IMG_PULL_ONCE, &res);
  ck_assert (res.cached);
  char *stored = sink_file (&e, ref, "");
  ck_assert_str_eq (res.manifest_digest, stored);
  img_pull_result_clear (&res);
  pull_ok (&e, ref, IMG_PULL_PREFER_CACHED, &res);
  ck_assert (res.cached);
  img_pull_result_clear (&res);
  /* default: the pull fails, the stored image is used and the failure kept. */
  pull_ok (&e, ref, IMG_PULL_DEFAULT, &res);
  ck_assert (res.cached);
  ck_assert_str_eq (res.manifest_digest, stored);
  ck_assert_ptr_nonnull (res.pull_error);
  img_pull_result_clear (&res);
  /* always: the failure is the answer. */
  o.behavior = IMG_PULL_ALWAYS;
  pull_fails (&e, ref, &o, 0, ref, NULL);
  /* Nothing stored and the registry down: every behaviour fails. */
  struct env fresh;
  env_open (&fresh, 0);
  for (int b = IMG_PULL_DEFAULT; b <= IMG_PULL_PREFER_CACHED; b++)
    {
      o.behavior = (enum img_pull_behavior)b;
      pull_fails (&fresh, ref, &o, 0, NULL);
    }
  env_close (&fresh);
  free (stored);
  free (ref);
  env_close (&e);
}
END_TEST

START_TEST (test_layers_are_fetched_in_parallel_up_to_the_limit)
{
  char log[4096];
  int port;
  /* 1 MiB layers at 2 MiB/s per connection: each fetch takes about half a second. */
  pid_t relay = relay_start ("parallel", 2 << 20, log, &port);
  struct env e;
  env_open (&e, 2);
  char *ref = ref_at (port, "test/big:big");
  struct img_pull_result res;
  pull_ok (&e, ref, IMG_PULL_DEFAULT, &res);
  ts_reg_stop (relay);
  ck_assert_uint_eq (res.layers_fetched, 4);
  int total = 0, max_open = 0;
  ts_relay_count (log, "/blobs/sha256:", &total, &max_open);
  ck_assert_int_eq (total, 5); /* config + 4 layers */
  ck_assert_int_eq (max_open, 2);
  ck_assert_int_le (e.sink.max_staged, 2);
  img_pull_result_clear (&res);
  free (ref);
  env_close (&e);
}
END_TEST

/* Every committed layer of the big image holds its whole file. */
static int complete_big_layers (struct env *e)
{
  int n = 0;
  for (int i = 1; i <= 4; i++)
    {
      char *out = NULL;
      int status = 0;
      char cmd[8192];
      snprintf (cmd, sizeof cmd,
                "for d in %s/layers/*; do [ -e $d/data/rand%d ] || continue; "
                "cmp $d/data/rand%d %s/b%d/data/rand%d && echo complete; done",
                e->dir, i, i, base_dir, i, i);
      ck_assert_int_eq (ts_sh (cmd, &out, &status), 0);
      ck_assert_msg (status == 0, "%s", out ? out : "");
      n += out && strstr (out, "complete") != NULL;
      free (out);
    }
  return n;
}

START_TEST (test_layer_cut_mid_stream_is_fetched_again_into_a_fresh_staging_dir)
{
  char log[4096];
  int port;
  snprintf (log, sizeof log, "%s/relay-cut.%d.log", base_dir, getpid ());
  ts_sh_ok ("touch %s.cut", log);
  pid_t relay = relay_start ("cut", 0, log, &port);
  struct env e;
  env_open (&e, 1);
  char *ref = ref_at (port, "test/big:big");
  struct img_pull_result res;
  pull_ok (&e, ref, IMG_PULL_DEFAULT, &res);
  ts_reg_stop (relay);
  ck_assert_uint_eq (res.layers_fetched, 4);
  ck_assert_int_eq (e.sink.aborts, 1);
  ck_assert_int_eq (e.sink.commits, 4);
  ck_assert_int_eq (ts_dirsink_count (&e.sink, "staging"), 0);
  ck_assert_int_eq (complete_big_layers (&e), 4);
  int total = 0, max_open = 0;
  ts_relay_count (log, "/blobs/sha256:", &total, &max_open);
  ck_assert_int_eq (total, 6); /* config, 4 layers, and the cut one again */
  img_pull_result_clear (&res);
  free (ref);
  env_close (&e);
}
END_TEST

struct pull_thread
{
  struct img_puller *p;
  const char *ref;
  struct img_pull_result res;
  int ret;
  berr *err;
};

static void *pull_main (void *arg)
{
  struct pull_thread *t = arg;
  t->ret = img_pull (t->p, t->ref, NULL, &t->res, &t->err);
  return NULL;
}

/* Pulls refs a and b from two threads at once through a throttled relay; returns its log. */
static char *pull_two (struct env *e, const char *tag_a, const char *tag_b, struct pull_thread t[2])
{
  char *log = malloc (4096);
  int port;
  ck_assert_ptr_nonnull (log);
  pid_t relay = relay_start ("shared", 4 << 20, log, &port);
  char *ra = ref_at (port, tag_a), *rb = ref_at (port, tag_b);
  pthread_t th[2];
  t[0] = (struct pull_thread){ .p = e->puller, .ref = ra };
  t[1] = (struct pull_thread){ .p = e->puller, .ref = rb };
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq (pthread_create (&th[i], NULL, pull_main, &t[i]), 0);
  for (int i = 0; i < 2; i++)
    {
      pthread_join (th[i], NULL);
      ck_assert_msg (t[i].ret == 0, "%s", t[i].err ? t[i].err->msg : "");
    }
  ts_reg_stop (relay);
  free (ra);
  free (rb);
  return log;
}

static void assert_each_layer_fetched_once (struct env *e, const char *log, const char *ref)
{
  struct img_manifest *m = stored_manifest (e, ref);
  for (size_t i = 0; i < m->n_layers; i++)
    {
      int total = 0, max_open = 0;
      ts_relay_count (log, m->layers[i].digest, &total, &max_open);
      ck_assert_msg (total == 1, "layer %s fetched %d times", m->layers[i].digest, total);
    }
  img_manifest_free (m);
}

START_TEST (test_concurrent_pulls_of_one_image_share_one_download)
{
  struct env e;
  env_open (&e, 2);
  struct pull_thread t[2];
  char *log = pull_two (&e, "test/big:big", "test/big:big", t);
  ck_assert_str_eq (t[0].res.manifest_digest, t[1].res.manifest_digest);
  ck_assert (t[0].res.shared != t[1].res.shared); /* one pulled, the other waited for it */
  int total = 0, max_open = 0;
  ts_relay_count (log, "/blobs/sha256:", &total, &max_open);
  ck_assert_int_eq (total, 5); /* config and 4 layers, once each */
  ts_relay_count (log, "/manifests/big ", &total, &max_open);
  ck_assert_int_eq (total, 1);
  assert_each_layer_fetched_once (&e, log, t[0].res.ref);
  for (int i = 0; i < 2; i++)
    img_pull_result_clear (&t[i].res);
  free (log);
  env_close (&e);
}
END_TEST

START_TEST (test_concurrent_pulls_of_two_tags_share_layers_through_the_sink_lock)
{
  struct env e;
  env_open (&e, 2);
  struct pull_thread t[2];
  char *log = pull_two (&e, "test/big:big", "test/big:big2", t);
  ck_assert (!t[0].res.shared && !t[1].res.shared);
  ck_assert_str_eq (t[0].res.manifest_digest, t[1].res.manifest_digest);
  ck_assert_uint_eq (t[0].res.layers_fetched + t[1].res.layers_fetched, 4);
  assert_each_layer_fetched_once (&e, log, t[0].res.ref);
  ck_assert_int_eq (e.sink.commits, 4);
  for (int i = 0; i < 2; i++)
    img_pull_result_clear (&t[i].res);
  free (log);
  env_close (&e);
}
END_TEST

static bool partly_pulled (void *arg)
{
  struct env *e = arg;
  return ts_dirsink_count (&e->sink, "layers") >= 1 && ts_dirsink_count (&e->sink, "staging") >= 1;
}

START_TEST (test_pull_killed_mid_download_leaves_nothing_partial_and_pulls_again)
{
  char log[4096];
  int port;
  pid_t relay = relay_start ("crash", 1 << 20, log, &port); /* ~1 s per layer */
  struct env e;
  env_open (&e, 2);
  char *ref = ref_at (port, "test/big:big");
  pid_t child = fork ();
  ck_assert_int_ge (child, 0);
  if (child == 0)
    {
      struct img_pull_result res;
      berr *err = NULL;
      _exit (img_pull (e.puller, ref, NULL, &res, &err) == 0 ? 0 : 1);
    }
  ck_assert_msg (ts_wait_for (partly_pulled, &e, 20000), "the child never got halfway");
  usleep (100000);
  kill (child, SIGKILL);
  int status = 0;
  ck_assert_int_eq (waitpid (child, &status, 0), child);
  ck_assert_msg (WIFSIGNALED (status), "the pull finished before it was killed");
  ts_reg_stop (relay);
  /* What is visible is whole: committed layers complete, the image not recorded. */
  int committed = ts_dirsink_count (&e.sink, "layers");
  ck_assert_int_ge (committed, 1);
  ck_assert_int_lt (committed, 4);
  ck_assert_int_eq (complete_big_layers (&e), committed);
  ck_assert_int_eq (ts_dirsink_count (&e.sink, "images"), 0);
  ck_assert_int_ge (ts_dirsink_count (&e.sink, "staging"), 1); /* the store sweeps these */
  /* Pulled again (straight from the registry): only the missing layers are fetched. */
  char *direct = ref_at (plain_port, "test/big:big");
  struct img_pull_result res;
  pull_ok (&e, direct, IMG_PULL_DEFAULT, &res);
  ck_assert_uint_eq (res.layers_present, (unsigned)committed);
  ck_assert_uint_eq (res.layers_fetched, 4 - (unsigned)committed);
  ck_assert_int_eq (complete_big_layers (&e), 4);
  ck_assert_int_eq (ts_dirsink_count (&e.sink, "layers"), 4);
  img_pull_result_clear (&res);
  free (direct);
  free (ref);
  env_close (&e);
}
END_TEST

START_TEST (test_plain_http_only_for_registries_on_the_insecure_list)
{
  /* A private network namespace where lo also carries a non-loopback address: the registry
   * is not "loopback" to the client, and nothing can leave the machine. */
  ck_assert_int_eq (unshare (CLONE_NEWNET), 0);
  ts_sh_ok ("ip link set lo up && ip addr add 10.251.7.1/32 dev lo");
  int port = 18080;
  char name[64], first[4096];
  snprintf (name, sizeof name, "rec.%d", getpid ());
  pid_t rec = fork ();
  ck_assert_int_ge (rec, 0);
  if (rec == 0)
    {
      char portstr[16], out[4096];
      snprintf (portstr, sizeof portstr, "%d", port);
      snprintf (out, sizeof out, "%s/%s", base_dir, name);
      signal (SIGTERM, SIG_DFL);
      prctl (PR_SET_PDEATHSIG, SIGKILL); /* gone with the test, even a failing one */
      int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
      dup2 (null, 1);
      dup2 (null, 2);
      execlp ("python3", "python3", "-c",
              "import socket,sys\n"
              "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
              "s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8); n=0\n"
              "open(sys.argv[3] + '.ready', 'w')\n"
              "while True:\n"
              "  c,_=s.accept(); c.settimeout(3)\n"
              "  try: d=c.recv(4096)\n"
              "  except Exception: d=b''\n"
              "  open('%s.%d' % (sys.argv[3], n), 'wb').write(d); n+=1\n"
              "  c.sendall(b'HTTP/1.1 404 Not Found\\r\\nContent-Length: 0\\r\\n"
              "Connection: close\\r\\n\\r\\n'); c.close()\n",
              "10.251.7.1", portstr, out, (char *)NULL);
      _exit (127);
    }
  ts_sh_ok ("for i in $(seq 100); do [ -e %s/%s.ready ] && exit 0; sleep 0.05; done; exit 1",
            base_dir, name);
  char ref[256];
  snprintf (ref, sizeof ref, "10.251.7.1:%d/test/x:v1", port);
  /* Not listed: https only. The recorder sees a TLS ClientHello, never an HTTP request. */
  struct env e;
  env_open (&e, 0);
  struct img_pull_opts o = { .username = "alice", .password = "s3cret" };
  pull_fails (&e, ref, &o, 0, NULL);
  snprintf (first, sizeof first, "%s/%s.0", base_dir, name);
  char *got = ts_read_file (first);
  ck_assert_msg (got && (unsigned char)got[0] == 0x16 && !strstr (got, "GET "),
                 "plain text sent to an unlisted registry: %.40s", got ? got : "");
  free (got);
  env_close (&e);
  /* Listed: plain http. */
  char listed[64];
  snprintf (listed, sizeof listed, "10.251.7.1:%d", port);
  const char *insecure[] = { listed, NULL };
  struct img_registry_opts ro = { .retries = -1, .insecure = insecure };
  env_open_with (&e, &ro, 0);
  pull_fails (&e, ref, NULL, 0, "HTTP 404", NULL);
  snprintf (first, sizeof first, "%s/%s.1", base_dir, name);
  got = ts_read_file (first);
  ck_assert_msg (got && strncmp (got, "GET /v2/test/x/manifests/v1 HTTP/1.1", 35) == 0, "%s",
                 got ? got : "(nothing)");
  free (got);
  env_close (&e);
  kill (rec, SIGTERM);
  waitpid (rec, NULL, 0);
}
END_TEST

START_TEST (test_pull_over_tls_is_verified_against_the_configured_ca_file)
{
  /* A registry on a non-loopback address (so https is required) in a private namespace. */
  ck_assert_int_eq (unshare (CLONE_NEWNET), 0);
  ts_sh_ok ("ip link set lo up && ip addr add 10.251.7.2/32 dev lo");
  char name[64], layout[4096], ca[4096], ref[256];
  snprintf (name, sizeof name, "tls.%d", getpid ());
  pid_t reg = ts_reg_start_tls (base_dir, name, "10.251.7.2", 5443);
  snprintf (layout, sizeof layout, "%s/uoci", base_dir);
  ts_sh_ok ("skopeo --insecure-policy copy -q --dest-tls-verify=false oci:%s:wh "
            "docker://10.251.7.2:5443/test/wh:wh",
            layout);
  snprintf (ca, sizeof ca, "%s/%s.crt", base_dir, name);
  snprintf (ref, sizeof ref, "10.251.7.2:5443/test/wh:wh");
  /* The system store alone does not know the certificate. */
  struct env e;
  env_open (&e, 0);
  pull_fails (&e, ref, NULL, 0, "https://10.251.7.2:5443/", "certificate", NULL);
  env_close (&e);
  struct img_registry_opts ro = { .retries = -1, .ca_file = ca };
  env_open_with (&e, &ro, 0);
  struct img_pull_result res;
  pull_ok (&e, ref, IMG_PULL_DEFAULT, &res);
  ck_assert_uint_eq (res.layers_fetched, 3);
  img_pull_result_clear (&res);
  env_close (&e);
  ts_reg_stop (reg);
}
END_TEST

int main (void)
{
  if (!ts_is_root ())
    {
      printf ("test_images_pull: needs root (layer unpack keeps ownership)\n");
      return 0;
    }
  Suite *s = suite_create ("images_pull");
  TCase *tc = tcase_create ("pull");
  tcase_set_timeout (tc, 120);
  tcase_add_unchecked_fixture (tc, suite_setup, suite_teardown);
  tcase_add_test (tc, test_pull_of_three_layer_image_unpacks_each_layer_with_whiteouts);
  tcase_add_test (tc, test_pull_of_manifest_list_picks_this_arch);
  tcase_add_test (tc, test_pull_uses_repository_credentials_for_basic_auth);
  tcase_add_test (tc, test_pull_with_bearer_token_from_docker_config_credentials);
  tcase_add_test (tc, test_pull_of_missing_image_is_a_clear_error);
  tcase_add_test (tc, test_pull_of_zstd_layer);
  tcase_add_test (tc, test_layer_whose_content_differs_from_the_config_diff_id_is_rejected);
  tcase_add_test (tc, test_pull_behaviours_when_the_registry_is_down);
  tcase_add_test (tc, test_layers_are_fetched_in_parallel_up_to_the_limit);
  tcase_add_test (tc, test_layer_cut_mid_stream_is_fetched_again_into_a_fresh_staging_dir);
  tcase_add_test (tc, test_concurrent_pulls_of_one_image_share_one_download);
  tcase_add_test (tc, test_concurrent_pulls_of_two_tags_share_layers_through_the_sink_lock);
  tcase_add_test (tc, test_pull_killed_mid_download_leaves_nothing_partial_and_pulls_again);
  tcase_add_test (tc, test_plain_http_only_for_registries_on_the_insecure_list);
  tcase_add_test (tc, test_pull_over_tls_is_verified_against_the_configured_ca_file);
  tcase_add_test (tc, test_pull_of_corrupted_blob_fails_and_commits_nothing);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
