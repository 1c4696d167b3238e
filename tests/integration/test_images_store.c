/* The image store with real parts (root): tarball import of images built with umoci and skopeo
 * from busybox-static, overlay root filesystems that berth-runtime runs containers from,
 * the new mount API for many layers, in-use records across a restart, cleanup on a real tmpfs. */
#include "images/images.h"
#include "lib/cleanup.h"
#include "tests/support/support.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Built once by the parent before the forked tests: $fixtures/{oci,oci.tar,docker.tar}. */
static char *fixtures;
static char *root;
static struct img_store *st;

static void ok (int r, berr **err)
{
  ck_assert_msg (r >= 0, "%s", *err ? (*err)->msg : "(no error)");
  berr_free (err);
}

static void setup (void)
{
  berr *err = NULL;
  /* Each test (a forked child) mounts in its own private mount namespace: whatever a failed
   * test leaves mounted goes away with it, and nothing is seen outside. */
  ck_assert_int_eq (unshare (CLONE_NEWNS), 0);
  ck_assert_int_eq (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
  root = ts_mkdtemp ("imgstore");
  ok (img_store_open (root, &st, &err), &err);
}

static void teardown (void)
{
  img_store_close (st);
  ts_rmtree (root);
  free (root);
}

static void import_file (const char *name, const char *ref, struct img_import_result *res)
{
  char path[512];
  snprintf (path, sizeof path, "%s/%s", fixtures, name);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge (fd, 0);
  berr *err = NULL;
  ok (img_store_import (st, fd, ref, res, &err), &err);
  close (fd);
}

/* Whether <root>/<dir>/<name> exists. */
/* Fails unless the file holds exactly want. */
static void file_is (const char *path, const char *want)
{
  char *got = ts_read_file (path);
  ck_assert_msg (got && strcmp (got, want) == 0, "`%s` holds `%s`", path, got ? got : "(none)");
  free (got);
}

static bool path_exists (const char *dir, const char *name)
{
  char path[1024];
  snprintf (path, sizeof path, "%s/%s/%s", root, dir, name);
  return access (path, F_OK) == 0;
}

START_TEST (test_import_oci_layout_tarball_records_image_and_config)
{
  struct img_import_result res;
  import_file ("oci.tar", "example.com/team/busybox:v1", &res);
  ck_assert_ptr_nonnull (res.digests[0]);
  ck_assert_ptr_null (res.digests[1]);
  ck_assert_str_eq (res.refs[0], "example.com/team/busybox:v1");
  berr *err = NULL;
  struct img_store_image *im = NULL;
  ck_assert_int_eq (img_store_lookup (st, "example.com/team/busybox:v1", &im, &err), 1);
  ck_assert_str_eq (im->digest, res.digests[0]);
  ck_assert_ptr_nonnull (im->layers[1]); /* two layers */
  ck_assert_ptr_null (im->layers[2]);
  img_store_image_free (im);
  struct img_config *c = NULL;
  ok (img_store_config (st, res.digests[0], &c, &err), &err);
  ck_assert_str_eq (c->cmd[0], "/bin/sh");
  ck_assert_str_eq (c->working_dir, "/tmp");
  ck_assert_str_eq (c->exposed_ports[0], "8080/tcp");
  bool foo = false;
  for (size_t i = 0; c->env && c->env[i]; i++)
    foo |= strcmp (c->env[i], "FOO=bar") == 0;
  ck_assert (foo);
  img_config_free (c);
  img_import_result_clear (&res);
  /* Importing again finds everything present. */
  import_file ("oci.tar", NULL, &res);
  img_import_result_clear (&res);
  char *out = NULL, cmd[600];
  snprintf (cmd, sizeof cmd, "ls -A %s/staging | wc -l", root);
  ts_sh (cmd, &out, NULL);
  ck_assert_int_eq (atoi (out), 0);
  free (out);
}
END_TEST

START_TEST (test_import_docker_archive_records_repo_tags)
{
  struct img_import_result res;
  import_file ("docker.tar", NULL, &res);
  ck_assert_str_eq (res.refs[0], "registry-1.docker.io/test/busybox:v1");
  berr *err = NULL;
  struct img_store_image *im = NULL;
  ck_assert_int_eq (img_store_lookup (st, "test/busybox:v1", &im, &err), 1);
  ck_assert_ptr_nonnull (im->layers[1]);
  img_store_image_free (im);
  struct img_config *c = NULL;
  ok (img_store_config (st, "test/busybox:v1", &c, &err), &err);
  ck_assert_str_eq (c->cmd[0], "/bin/sh");
  img_config_free (c);
  img_import_result_clear (&res);
}
END_TEST

START_TEST (test_import_docker_archive_with_gzipped_layers_checks_uncompressed_digests)
{
  struct img_import_result res;
  import_file ("docker-gz.tar", NULL, &res);
  ck_assert_str_eq (res.refs[0], "registry-1.docker.io/test/busybox:v1");
  berr *err = NULL;
  struct img_store_image *im = NULL;
  ck_assert_int_eq (img_store_lookup (st, "test/busybox:v1", &im, &err), 1);
  /* Stored under the digests of the gzipped members, described as gzip layers. */
  char *m = NULL, path[600];
  snprintf (path, sizeof path, "%s/images/%s/manifest.json", root, im->digest + 7);
  m = ts_read_file (path);
  ck_assert_ptr_nonnull (strstr (m, "application/vnd.docker.image.rootfs.diff.tar.gzip"));
  free (m);
  struct img_config *c = NULL;
  ok (img_store_config (st, "test/busybox:v1", &c, &err), &err);
  for (size_t i = 0; im->layers[i]; i++)
    ck_assert_str_ne (im->layers[i], c->diff_ids[i]);
  img_config_free (c);
  char marker[300];
  snprintf (marker, sizeof marker, "layers/%s/root/etc", im->layers[0] + 7);
  ck_assert (path_exists (marker, "marker"));
  img_store_image_free (im);
  img_import_result_clear (&res);
  /* The plain archive's layers are other blobs (uncompressed), imported beside them. */
  import_file ("docker.tar", NULL, &res);
  img_import_result_clear (&res);
}
END_TEST

START_TEST (test_import_oci_bare_tag_takes_the_repository_given_or_annotated)
{
  struct img_import_result res;
  berr *err = NULL;
  struct img_store_image *im = NULL;
  /* No name to go with `v1`: recorded by digest only. */
  import_file ("oci.tar", NULL, &res);
  ck_assert_ptr_null (res.refs[0]);
  ck_assert_int_eq (img_store_lookup (st, res.digests[0], &im, &err), 1);
  ck_assert_ptr_null (im->refs[0]);
  img_store_image_free (im);
  img_import_result_clear (&res);
  /* The caller's name gives the repository: both tags recorded. */
  import_file ("oci.tar", "example.com/other/x:latest", &res);
  ck_assert_str_eq (res.refs[0], "example.com/other/x:v1");
  ck_assert_str_eq (res.refs[1], "example.com/other/x:latest");
  img_import_result_clear (&res);
  /* Without one, containerd's image name annotation does. */
  import_file ("oci-named.tar", NULL, &res);
  ck_assert_str_eq (res.refs[0], "example.com/team/app:v1");
  ck_assert_ptr_null (res.refs[1]);
  ck_assert_int_eq (img_store_lookup (st, "example.com/team/app:v1", &im, &err), 1);
  img_store_image_free (im);
  img_import_result_clear (&res);
}
END_TEST

START_TEST (test_import_oci_layer_whose_content_differs_from_the_diff_id_is_rejected)
{
  char *work = ts_mkdtemp ("diffoci");
  /* The config names another diff_id for layer 0; config, manifest and index re-hashed. */
  ts_sh_ok ("set -e; cp -a %s/oci %s/oci; cd %s/oci/blobs/sha256;"
            "m=$(jq -r '.manifests[0].digest' ../../index.json | cut -d: -f2);"
            "c=$(jq -r '.config.digest' $m | cut -d: -f2);"
            "jq -c '.rootfs.diff_ids[0] = \"sha256:%064d\"' $c > nc;"
            "nc=$(sha256sum nc | cut -d' ' -f1); mv nc $nc;"
            "jq -c --arg d sha256:$nc --argjson s $(stat -c %%s $nc) '.config.digest = $d | "
            ".config.size = $s' $m > nm; nm=$(sha256sum nm | cut -d' ' -f1); mv nm $nm;"
            "jq --arg d sha256:$nm --argjson s $(stat -c %%s $nm) '.manifests[0].digest = $d | "
            ".manifests[0].size = $s' ../../index.json > ni; mv ni ../../index.json;"
            "tar -C %s/oci -cf %s/bad.tar .",
            fixtures, work, work, 7, work, work);
  char path[512];
  snprintf (path, sizeof path, "%s/bad.tar", work);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge (fd, 0);
  struct img_import_result res;
  berr *err = NULL;
  ck_assert_int_lt (img_store_import (st, fd, "x/y:z", &res, &err), 0);
  close (fd);
  ck_assert_int_eq (berr_errno (err), EBADMSG);
  ck_assert_msg (strstr (err->msg, "diff_id") != NULL, "%s", err->msg);
  berr_free (&err);
  struct img_store_image *im = NULL;
  ck_assert_int_eq (img_store_lookup (st, "x/y:z", &im, &err), 0);
  ts_rmtree (work);
  free (work);
}
END_TEST

START_TEST (test_import_rejects_a_corrupted_blob_and_records_nothing)
{
  char *work = ts_mkdtemp ("badoci");
  /* Flip one byte of the image's first layer (busybox) without changing its size. */
  ts_sh_ok ("set -e; cp -a %s/oci %s/oci; cd %s/oci/blobs/sha256;"
            "m=$(jq -r '.manifests[0].digest' ../../index.json | cut -d: -f2);"
            "b=$(jq -r '.layers[0].digest' $m | cut -d: -f2);"
            "printf 'X' | dd of=$b bs=1 seek=100 conv=notrunc status=none;"
            "tar -C %s/oci -cf %s/bad.tar .",
            fixtures, work, work, work, work);
  char path[512];
  snprintf (path, sizeof path, "%s/bad.tar", work);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge (fd, 0);
  berr *err = NULL;
  struct img_import_result res;
  ck_assert_int_lt (img_store_import (st, fd, "bad:1", &res, &err), 0);
  close (fd);
  ck_assert_msg (strstr (err->msg, "sha256") != NULL, "%s", err->msg);
  berr_free (&err);
  struct img_store_image **v = NULL;
  size_t n = 9;
  ok (img_store_list (st, &v, &n, &err), &err);
  ck_assert_uint_eq (n, 0);
  img_store_images_free (v, n);
  char *out = NULL;
  int status = 0;
  char cmd[600];
  snprintf (cmd, sizeof cmd, "ls -A %s/staging | wc -l", root);
  ts_sh (cmd, &out, &status);
  ck_assert_int_eq (atoi (out), 0);
  free (out);
  ts_rmtree (work);
  free (work);
}
END_TEST

/* Runs args (a shell command) in a container whose root is rootfs, with berth-runtime; returns
 * its exit code and output. */
static int run_container (const char *rootfs, const char *script, bool readonly, char **out)
{
  char *b = ts_mkdtemp ("bundle"), *rt = ts_bin ("berth-runtime"), *state = ts_mkdtemp ("rtroot");
  int status = 0;
  char *cmd = NULL;
  ck_assert_int_ge (asprintf (&cmd,
                              "set -e; %s spec --bundle %s; jq --arg r %s --arg s '%s' --arg cg "
                              "berth-imgtest-%d '.root.path = $r | .root.readonly = %s | "
                              ".process.args = [\"/bin/sh\", \"-c\", $s] | .process.terminal = "
                              "false | .linux.cgroupsPath = $cg' %s/config.json > %s/c.json; mv "
                              "%s/c.json %s/config.json",
                              rt, b, rootfs, script, (int)getpid (), readonly ? "true" : "false", b,
                              b, b, b),
                    0);
  ts_sh_ok ("%s", cmd);
  free (cmd);
  ck_assert_int_ge (asprintf (&cmd, "%s --root %s run --bundle %s imgtest-%d </dev/null", rt, state,
                              b, (int)getpid ()),
                    0);
  ck_assert_int_eq (ts_sh (cmd, out, &status), 0);
  free (cmd);
  ck_assert_int_ge (
      asprintf (&cmd, "%s --root %s delete --force imgtest-%d", rt, state, (int)getpid ()), 0);
  ts_sh (cmd, NULL, NULL);
  free (cmd);
  ts_rmtree (b);
  ts_rmtree (state);
  free (b);
  free (state);
  free (rt);
  return ts_exit_code (status);
}

START_TEST (test_container_runs_from_overlay_rootfs_and_writes_go_to_upper)
{
  struct img_import_result res;
  import_file ("oci.tar", "example.com/team/busybox:v1", &res);
  berr *err = NULL;
  char id[64], *path = NULL;
  snprintf (id, sizeof id, "ctr-%d", (int)getpid ());
  ok (img_rootfs_create (st, "example.com/team/busybox:v1", id, NULL, &path, &err), &err);
  char *out = NULL;
  int code = run_container (path,
                            "cat /etc/marker /etc/marker2; test -e /etc/gone || echo gone-hidden;"
                            " echo hi > /tmp/written",
                            false, &out);
  ck_assert_msg (code == 0, "container failed (%d): %s", code, out);
  ck_assert_msg (strstr (out, "base\ntop\ngone-hidden") != NULL, "output: %s", out);
  free (out);
  /* The write landed in the container's upper directory, not in a shared layer. */
  char upper[600];
  snprintf (upper, sizeof upper, "containers/%s/upper/tmp", id);
  ck_assert (path_exists (upper, "written"));
  struct img_store_image *im = NULL;
  ck_assert_int_eq (img_store_lookup (st, res.digests[0], &im, &err), 1);
  ck_assert_uint_eq (im->containers, 1);
  for (size_t i = 0; im->layers[i]; i++)
    {
      char rel[200];
      snprintf (rel, sizeof rel, "layers/%s/root/tmp", im->layers[i] + 7);
      ck_assert (!path_exists (rel, "written"));
    }
  img_store_image_free (im);
  /* In use: removal refused until the root filesystem goes. */
  ck_assert_int_lt (img_store_remove (st, res.digests[0], &err), 0);
  ck_assert_int_eq (berr_errno (err), EBUSY);
  berr_free (&err);
  ok (img_rootfs_remove (st, id, &err), &err);
  ck_assert_int_eq (access (path, F_OK), -1);
  ok (img_store_remove (st, res.digests[0], &err), &err);
  free (path);
  img_import_result_clear (&res);
}
END_TEST

START_TEST (test_read_only_rootfs_refuses_writes)
{
  struct img_import_result res;
  import_file ("docker.tar", NULL, &res);
  berr *err = NULL;
  char id[64], *path = NULL, file[600];
  snprintf (id, sizeof id, "ro-%d", (int)getpid ());
  struct img_rootfs_opts o = { .read_only = true };
  ok (img_rootfs_create (st, "test/busybox:v1", id, &o, &path, &err), &err);
  snprintf (file, sizeof file, "%s/etc/marker", path);
  file_is (file, "base\n");
  snprintf (file, sizeof file, "%s/new", path);
  ck_assert_int_eq (open (file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644), -1);
  ck_assert_int_eq (errno, EROFS);
  char cdir[128];
  snprintf (cdir, sizeof cdir, "containers/%s", id);
  ck_assert (!path_exists (cdir, "upper")); /* read-only: no upper directory at all */
  char *out = NULL;
  int code = run_container (path, "cat /etc/marker2; echo x > /etc/new", false, &out);
  ck_assert_msg (code != 0 && strstr (out, "top") && strstr (out, "Read-only"), "%d: %s", code,
                 out);
  free (out);
  ok (img_rootfs_remove (st, id, &err), &err);
  free (path);
  img_import_result_clear (&res);
}
END_TEST

/* Commits a layer whose tree is the given files through the sink. */
static void put_layer (struct img_sink *k, const char *digest, const char *script)
{
  berr *err = NULL;
  char *dir = NULL;
  void *lock = NULL;
  ok (k->layer_stage (k->cls, digest, &dir, &lock, &err), &err);
  ts_sh_ok ("cd %s && %s", dir, script);
  struct img_unpack_result r = { 0 };
  strcpy (r.blob_digest, digest);
  ok (k->layer_commit (k->cls, lock, digest, dir, &r, &err), &err);
  free (dir);
}

static void fake_digest (int i, char out[72])
{
  snprintf (out, 72, "sha256:%064x", i + 1);
}

/* An image over layers 0..n-1 (each already committed); returns the manifest digest. */
static void put_image (struct img_sink *k, const char *ref, int first, int n, char out[72])
{
  char *work = ts_mkdtemp ("docs");
  char *cmd = NULL, *o = NULL;
  int status = 0;
  ck_assert_int_ge (
      asprintf (&cmd,
                "set -e; cd %s; ids=; ls=; for i in $(seq %d %d); do d=$(printf 'sha256:%%064x' "
                "$((i+1))); ids=\"$ids${ids:+,}\\\"$d\\\"\"; ls=\"$ls${ls:+,}{\\\"mediaType\\\":"
                "\\\"application/"
                "vnd.oci.image.layer.v1.tar\\\",\\\"digest\\\":\\\"$d\\\",\\\"size\\\":1}\";"
                " done; printf '{\"architecture\":\"amd64\",\"os\":\"linux\",\"author\":\"%s\","
                "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%%s]}}' \"$ids\" > c; "
                "printf '{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest."
                "v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
                "\"digest\":\"sha256:%%s\",\"size\":%%s},\"layers\":[%%s]}' $(sha256sum c | cut "
                "-d' ' -f1) $(stat -c %%s c) \"$ls\" > m; sha256sum m | cut -d' ' -f1",
                work, first, first + n - 1, ref),
      0);
  ck_assert_int_eq (ts_sh (cmd, &o, &status), 0);
  ck_assert_msg (status == 0, "%s", o);
  snprintf (out, 72, "sha256:%.64s", o);
  char path[600];
  snprintf (path, sizeof path, "%s/m", work);
  char *m = ts_read_file (path);
  snprintf (path, sizeof path, "%s/c", work);
  char *c = ts_read_file (path);
  berr *err = NULL;
  ok (k->image_commit (k->cls, ref, out, m, strlen (m), c, strlen (c), &err), &err);
  free (m);
  free (c);
  free (o);
  free (cmd);
  ts_rmtree (work);
  free (work);
}

START_TEST (test_rootfs_of_many_layers_mounts_with_the_new_mount_api)
{
  /* 70 layers of ~100-byte paths: ~7 KiB of lowerdir, more than a page of mount options. */
  struct img_sink k;
  img_store_sink (st, &k);
  enum
  {
    N = 70
  };
  for (int i = 0; i < N; i++)
    {
      char d[72], script[128];
      fake_digest (i, d);
      snprintf (script, sizeof script, "echo %d > f && touch l%d", i, i);
      put_layer (&k, d, script);
    }
  char dg[72];
  put_image (&k, "many:1", 0, N, dg);
  berr *err = NULL;
  char *path = NULL, file[600];
  ok (img_rootfs_create (st, "many:1", "many", NULL, &path, &err), &err);
  snprintf (file, sizeof file, "%s/f", path);
  file_is (file, "69\n"); /* the top layer wins */
  snprintf (file, sizeof file, "%s/l0", path);
  ck_assert_int_eq (access (file, F_OK), 0); /* the bottom one is there too */
  snprintf (file, sizeof file, "%s/new", path);
  int fd = open (file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ck_assert_int_ge (fd, 0);
  close (fd);
  ck_assert (path_exists ("containers/many/upper", "new"));
  ok (img_rootfs_remove (st, "many", &err), &err);
  free (path);
}
END_TEST

static int full_disk (void *cls, const char *path, uint64_t *used, uint64_t *total, berr **err)
{
  *used = 99;
  *total = 100;
  return 0;
}

START_TEST (test_image_in_use_is_kept_by_cleanup_across_a_restart)
{
  struct img_import_result res;
  import_file ("oci.tar", "example.com/team/busybox:v1", &res);
  berr *err = NULL;
  char *path = NULL;
  struct img_rootfs_opts o = { .sync = true };
  ok (img_rootfs_create (st, "example.com/team/busybox:v1", "keep", &o, &path, &err), &err);
  /* A restart: the store is reopened; only the on-disk record says the image is in use. */
  img_store_close (st);
  ok (img_store_open (root, &st, &err), &err);
  struct img_gc_params p = { .min_age_s = -1, .grace_s = -1, .disk_usage = full_disk };
  struct img_gc_result r;
  ok (img_store_gc (st, &p, &r, &err), &err);
  ck_assert_uint_eq (r.images_removed, 0);
  ck_assert_uint_eq (r.layers_removed, 0);
  struct img_store_image *im = NULL;
  ck_assert_int_eq (img_store_lookup (st, res.digests[0], &im, &err), 1);
  img_store_image_free (im);
  ok (img_rootfs_remove (st, "keep", &err), &err);
  ok (img_store_gc (st, &p, &r, &err), &err);
  ck_assert_uint_eq (r.images_removed, 1);
  ck_assert_uint_eq (r.layers_removed, 2);
  ck_assert_int_eq (img_store_lookup (st, res.digests[0], &im, &err), 0);
  free (path);
  img_import_result_clear (&res);
}
END_TEST

START_TEST (test_cleanup_by_watermark_on_a_real_small_tmpfs)
{
  /* A 16 MiB tmpfs holding the store: six images of 2.5 MB layers fill it past 85%. */
  char *mnt = ts_mkdtemp ("gctmpfs");
  ck_assert_int_eq (mount ("tmpfs", mnt, "tmpfs", 0, "size=16m,mode=0700"), 0);
  char sroot[600];
  snprintf (sroot, sizeof sroot, "%s/store", mnt);
  struct img_store *s = NULL;
  berr *err = NULL;
  ok (img_store_open (sroot, &s, &err), &err);
  struct img_sink k;
  img_store_sink (s, &k);
  char dg[6][72];
  for (int i = 0; i < 6; i++)
    {
      char d[72], ref[32];
      fake_digest (100 + i, d);
      put_layer (&k, d, "head -c 2500000 /dev/urandom > blob && mkdir bin");
      snprintf (ref, sizeof ref, "fill%d:1", i);
      put_image (&k, ref, 100 + i, 1, dg[i]);
      usleep (20 * 1000); /* distinct last-used times: fill0 is the least recently used */
    }
  char *path = NULL;
  ok (img_rootfs_create (s, "fill0:1", "tmpfs-ctr", NULL, &path, &err), &err);
  struct img_gc_params p = { .disk_only = true, .grace_s = -1 };
  struct img_gc_result r;
  ok (img_store_gc (s, &p, &r, &err), &err);
  ck_assert_msg (r.used_before * 100 >= r.total * 85, "before: %llu of %llu",
                 (unsigned long long)r.used_before, (unsigned long long)r.total);
  ck_assert_msg (r.used_after * 100 < r.total * 80, "after: %llu of %llu",
                 (unsigned long long)r.used_after, (unsigned long long)r.total);
  ck_assert_uint_ge (r.images_removed, 1);
  ck_assert_uint_eq (r.layers_removed, r.images_removed);
  struct img_store_image *im = NULL;
  ck_assert_int_eq (img_store_lookup (s, "fill0:1", &im, &err), 1); /* in use: kept */
  img_store_image_free (im);
  ck_assert_int_eq (img_store_lookup (s, "fill1:1", &im, &err), 0); /* next LRU: gone */
  ck_assert_int_eq (img_store_lookup (s, "fill5:1", &im, &err), 1); /* most recent: kept */
  img_store_image_free (im);
  ok (img_rootfs_remove (s, "tmpfs-ctr", &err), &err);
  img_store_close (s);
  ck_assert_int_eq (umount2 (mnt, MNT_DETACH), 0);
  ts_rmtree (mnt);
  free (mnt);
  free (path);
}
END_TEST

static void build_fixtures (void)
{
  fixtures = ts_mkdtemp ("imgfix");
  const char *src = getenv ("BERTH_SRC");
  char *cmd = NULL, *out = NULL;
  int status = 0;
  if (asprintf (&cmd, "%s/tests/fixtures/mkimages.sh %s 2>&1", src ? src : ".", fixtures) < 0
      || ts_sh (cmd, &out, &status) != 0 || ts_exit_code (status) != 0)
    {
      fprintf (stderr, "mkimages.sh failed: %s\n", out ? out : "");
      exit (1);
    }
  free (cmd);
  free (out);
}

int main (void)
{
  if (!ts_is_root ())
    {
      fprintf (stderr, "test_images_store: needs root (mounts); skipped\n");
      return 0;
    }
  build_fixtures ();
  Suite *s = suite_create ("images_store_integration");
  TCase *tc = tcase_create ("store");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_import_oci_layout_tarball_records_image_and_config);
  tcase_add_test (tc, test_import_docker_archive_records_repo_tags);
  tcase_add_test (tc, test_import_docker_archive_with_gzipped_layers_checks_uncompressed_digests);
  tcase_add_test (tc, test_import_oci_bare_tag_takes_the_repository_given_or_annotated);
  tcase_add_test (tc, test_import_oci_layer_whose_content_differs_from_the_diff_id_is_rejected);
  tcase_add_test (tc, test_import_rejects_a_corrupted_blob_and_records_nothing);
  tcase_add_test (tc, test_container_runs_from_overlay_rootfs_and_writes_go_to_upper);
  tcase_add_test (tc, test_read_only_rootfs_refuses_writes);
  tcase_add_test (tc, test_rootfs_of_many_layers_mounts_with_the_new_mount_api);
  tcase_add_test (tc, test_image_in_use_is_kept_by_cleanup_across_a_restart);
  tcase_add_test (tc, test_cleanup_by_watermark_on_a_real_small_tmpfs);
  suite_add_tcase (s, tc);
  int rc = ts_run_suite (s);
  ts_rmtree (fixtures);
  free (fixtures);
  return rc;
}
