/* img_layer_unpack on real layers built with tar, gzip and zstd: content, metadata, overlayfs
 * whiteouts, blob digests, and hostile layers rejected without touching the host (root). */
#include "images/images.h"
#include "tests/support/support.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Holds one directory per test; set up and removed by the parent process, which also runs
 * when a failed assertion has ended a test early. */
static char *base_dir;

/* The running test's directories: src (tree to archive), dest (unpack target), host (a marker
 * directory outside dest that hostile layers aim at). */
static struct
{
  char *dir, *src, *dest, *host;
  struct img_unpack_result res;
} fx;

static char *path_in (const char *dir, const char *name)
{
  char *p = NULL;
  ck_assert_int_ge (asprintf (&p, "%s/%s", dir, name), 0);
  return p;
}

static void setup (void)
{
  ck_assert_msg (ts_is_root (), "these tests need root (ownership, mknod, trusted xattrs)");
  char tmpl[4096];
  snprintf (tmpl, sizeof tmpl, "%s/t.XXXXXX", base_dir);
  ck_assert_ptr_nonnull (mkdtemp (tmpl));
  fx.dir = strdup (tmpl);
  fx.src = path_in (fx.dir, "src");
  fx.dest = path_in (fx.dir, "dest");
  fx.host = path_in (fx.dir, "host");
  ts_sh_ok ("mkdir %s %s %s && echo host > %s/marker", fx.src, fx.dest, fx.host, fx.host);
}

/* Unpacks fx.dir/<blob> into fx.dest; returns img_layer_unpack's result. */
static int unpack (const char *blob, berr **err)
{
  char *p = path_in (fx.dir, blob);
  int fd = open (p, O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge (fd, 0);
  memset (&fx.res, 0, sizeof fx.res);
  int r = img_layer_unpack (fd, fx.dest, &fx.res, err);
  close (fd);
  free (p);
  return r;
}

static void unpack_ok (const char *blob)
{
  berr *err = NULL;
  int r = unpack (blob, &err);
  ck_assert_msg (r == 0, "unpack `%s`: %s", blob, err ? err->msg : "?");
}

static void assert_host_untouched (void)
{
  DIR *d = opendir (fx.host);
  ck_assert_ptr_nonnull (d);
  struct dirent *de;
  int n = 0;
  while ((de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      {
        ck_assert_str_eq (de->d_name, "marker");
        n++;
      }
  closedir (d);
  ck_assert_int_eq (n, 1);
  char *m = path_in (fx.host, "marker");
  char *content = ts_read_file (m);
  ck_assert_str_eq (content, "host\n");
  free (content);
  free (m);
}

static void assert_rejected (const char *blob, const char *needle)
{
  berr *err = NULL;
  ck_assert_int_lt (unpack (blob, &err), 0);
  ck_assert_ptr_nonnull (err);
  ck_assert_msg (strstr (err->msg, needle) != NULL, "error `%s` does not say `%s`", err->msg,
                 needle);
  berr_free (&err);
  assert_host_untouched ();
}

static struct stat stat_in_dest (const char *name)
{
  char *p = path_in (fx.dest, name);
  struct stat st;
  ck_assert_msg (lstat (p, &st) == 0, "lstat `%s`: %m", p);
  free (p);
  return st;
}

static bool exists_in_dest (const char *name)
{
  char *p = path_in (fx.dest, name);
  struct stat st;
  bool r = lstat (p, &st) == 0;
  free (p);
  return r;
}

/* A file-capability xattr (VFS_CAP_REVISION_2, effective, CAP_NET_BIND_SERVICE permitted). */
static const unsigned char cap_net_bind[20] = { 0x01, 0, 0, 0x02, 0x00, 0x04 };

/* A busybox tree with every kind of entry and metadata the unpacker keeps. */
static void make_rich_tree (void)
{
  ts_sh_ok ("cd %s && mkdir -p bin etc/sub && cp /bin/busybox bin/busybox && ln -s busybox bin/sh"
            " && ln bin/busybox bin/ls && echo secret > etc/shadow && chmod 0640 etc/shadow"
            " && chown 1234:5678 etc/shadow && chmod 4755 bin/busybox && chmod 0710 etc/sub"
            " && chown -h 42:43 bin/sh && touch -d @1000000000 etc/shadow etc/sub",
            fx.src);
  char *f = path_in (fx.src, "etc/shadow");
  ck_assert_int_eq (setxattr (f, "user.berth.test", "value", 5, 0), 0);
  ck_assert_int_eq (setxattr (f, "trusted.overlay.redirect", "/x", 2, 0), 0);
  free (f);
  f = path_in (fx.src, "bin/busybox");
  ck_assert_int_eq (setxattr (f, "security.capability", cap_net_bind, sizeof cap_net_bind, 0), 0);
  free (f);
}

START_TEST (test_unpack_keeps_content_modes_owners_links_and_xattrs)
{
  make_rich_tree ();
  ts_sh_ok ("tar --xattrs --xattrs-include='*' -C %s -czf %s/layer.tgz .", fx.src, fx.dir);
  unpack_ok ("layer.tgz");
  ts_sh_ok ("cmp /bin/busybox %s/bin/busybox && cmp %s/etc/shadow %s/etc/shadow", fx.dest, fx.src,
            fx.dest);
  struct stat bb = stat_in_dest ("bin/busybox"), ls = stat_in_dest ("bin/ls");
  ck_assert_int_eq (bb.st_mode & 07777, 04755);
  ck_assert_msg (bb.st_ino == ls.st_ino && bb.st_nlink == 2, "bin/ls is not a hard link");
  struct stat sd = stat_in_dest ("etc/shadow");
  ck_assert_int_eq (sd.st_mode & 07777, 0640);
  ck_assert_int_eq (sd.st_uid, 1234);
  ck_assert_int_eq (sd.st_gid, 5678);
  ck_assert_int_eq (sd.st_mtime, 1000000000);
  struct stat sub = stat_in_dest ("etc/sub");
  ck_assert (S_ISDIR (sub.st_mode));
  ck_assert_int_eq (sub.st_mode & 07777, 0710);
  ck_assert_int_eq (sub.st_mtime, 1000000000);
  struct stat sl = stat_in_dest ("bin/sh");
  ck_assert (S_ISLNK (sl.st_mode));
  ck_assert_int_eq (sl.st_uid, 42);
  char link[64] = "";
  char *p = path_in (fx.dest, "bin/sh");
  ck_assert_int_eq (readlink (p, link, sizeof link - 1), 7);
  ck_assert_str_eq (link, "busybox");
  free (p);
  char val[64] = "";
  p = path_in (fx.dest, "etc/shadow");
  ck_assert_int_eq (getxattr (p, "user.berth.test", val, sizeof val), 5);
  ck_assert_int_eq (memcmp (val, "value", 5), 0);
  ck_assert_msg (getxattr (p, "trusted.overlay.redirect", val, sizeof val) < 0,
                 "a layer must not set trusted.overlay.* xattrs");
  free (p);
  p = path_in (fx.dest, "bin/busybox");
  ck_assert_int_eq (getxattr (p, "security.capability", val, sizeof val), 20);
  ck_assert_int_eq (memcmp (val, cap_net_bind, 20), 0);
  free (p);
  ck_assert_uint_ge (fx.res.files, 6);
}
END_TEST

/* Checks the digest and size against sha256sum and stat of the blob file. */
static void assert_blob_identity (const char *blob)
{
  char *cmd = NULL, *out = NULL;
  int status;
  ck_assert_int_ge (
      asprintf (&cmd, "cd %s && sha256sum %s | cut -c1-64 && stat -c %%s %s", fx.dir, blob, blob),
      0);
  ck_assert_int_eq (ts_sh (cmd, &out, &status), 0);
  char hex[65] = "";
  unsigned long long size = 0;
  ck_assert_int_eq (sscanf (out, "%64s %llu", hex, &size), 2);
  ck_assert_str_eq (fx.res.blob_digest + strlen ("sha256:"), hex);
  ck_assert_int_eq (strncmp (fx.res.blob_digest, "sha256:", 7), 0);
  ck_assert_uint_eq (fx.res.blob_size, size);
  free (cmd);
  free (out);
}

static void digest_case (const char *compress, const char *blob)
{
  ts_sh_ok ("cd %s && mkdir d && cp /bin/busybox d/ && echo x > d/x", fx.src);
  ts_sh_ok ("tar -C %s -cf - . | %s > %s/%s", fx.src, compress, fx.dir, blob);
  unpack_ok (blob);
  assert_blob_identity (blob);
  ts_sh_ok ("cmp /bin/busybox %s/d/busybox", fx.dest);
}

START_TEST (test_digest_and_size_of_plain_tar)
{
  digest_case ("cat", "layer.tar");
}
END_TEST

START_TEST (test_digest_and_size_of_gzip_layer)
{
  digest_case ("gzip -1", "layer.tar.gz");
}
END_TEST

START_TEST (test_digest_and_size_of_zstd_layer)
{
  digest_case ("zstd -q -3", "layer.tar.zst");
}
END_TEST

/* Pulls stream the blob through a pipe: short reads, no seeking, digest of what came through. */
START_TEST (test_unpack_streams_from_a_pipe)
{
  ts_sh_ok ("cd %s && cp /bin/busybox . && tar -cf - busybox | zstd -q > ../l.zst", fx.src);
  int p[2];
  ck_assert_int_eq (pipe2 (p, O_CLOEXEC), 0);
  pid_t pid = fork ();
  ck_assert_int_ge (pid, 0);
  if (pid == 0)
    {
      char *f = path_in (fx.dir, "l.zst");
      char buf[1000]; /* small writes: the reader sees many short reads */
      int fd = open (f, O_RDONLY | O_CLOEXEC);
      ssize_t n;
      while ((n = read (fd, buf, sizeof buf)) > 0)
        if (write (p[1], buf, (size_t)n) != n)
          _exit (1);
      _exit (0);
    }
  close (p[1]);
  berr *err = NULL;
  int r = img_layer_unpack (p[0], fx.dest, &fx.res, &err);
  ck_assert_msg (r == 0, "unpack from a pipe: %s", err ? err->msg : "?");
  close (p[0]);
  int status;
  ck_assert_int_eq (waitpid (pid, &status, 0), pid);
  ck_assert_int_eq (ts_exit_code (status), 0);
  assert_blob_identity ("l.zst");
  ts_sh_ok ("cmp /bin/busybox %s/busybox", fx.dest);
}
END_TEST

/* Bytes after the end of the archive still count: the digest is that of the whole blob. */
START_TEST (test_digest_covers_trailing_bytes_after_the_archive)
{
  ts_sh_ok ("cd %s && echo x > x && tar -cf ../l.tar x && head -c 100000 /dev/zero >> ../l.tar",
            fx.src);
  unpack_ok ("l.tar");
  assert_blob_identity ("l.tar");
}
END_TEST

START_TEST (test_whiteouts_become_overlayfs_whiteouts)
{
  ts_sh_ok ("cd %s && mkdir -p etc var/cache && touch etc/.wh.passwd var/cache/.wh..wh..opq"
            " && mkdir .wh..wh.plnk && touch .wh..wh.plnk/1.2",
            fx.src);
  ts_sh_ok ("tar -C %s -cf %s/layer.tar .", fx.src, fx.dir);
  unpack_ok ("layer.tar");
  struct stat wh = stat_in_dest ("etc/passwd");
  ck_assert (S_ISCHR (wh.st_mode));
  ck_assert_int_eq (major (wh.st_rdev), 0);
  ck_assert_int_eq (minor (wh.st_rdev), 0);
  ck_assert (!exists_in_dest ("etc/.wh.passwd"));
  ck_assert (!exists_in_dest ("var/cache/.wh..wh..opq"));
  ck_assert (!exists_in_dest (".wh..wh.plnk"));
  char val[8] = "";
  char *p = path_in (fx.dest, "var/cache");
  ck_assert_int_eq (getxattr (p, "trusted.overlay.opaque", val, sizeof val), 1);
  ck_assert_int_eq (val[0], 'y');
  free (p);

  /* And overlayfs reads them so: the lower layer's files are hidden. */
  ts_sh_ok (
      "cd %s && mkdir -p lower/etc lower/var/cache mnt work upper && echo root > lower/etc/passwd"
      " && echo old > lower/var/cache/old && echo keep > lower/etc/hostname",
      fx.dir);
  ck_assert_int_eq (unshare (CLONE_NEWNS), 0);
  ck_assert_int_eq (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
  char *opts = NULL, *mnt = path_in (fx.dir, "mnt");
  ck_assert_int_ge (asprintf (&opts, "lowerdir=%s:%s/lower", fx.dest, fx.dir), 0);
  ck_assert_msg (mount ("overlay", mnt, "overlay", MS_RDONLY, opts) == 0, "mount: %m");
  ts_sh_ok ("cd %s && test ! -e etc/passwd && test ! -e var/cache/old && test -d var/cache"
            " && test -f etc/hostname",
            mnt);
  umount2 (mnt, MNT_DETACH);
  free (opts);
  free (mnt);
}
END_TEST

/* Go's archive/tar (Docker, BuildKit) writes non-ASCII names as UTF-8 pax records: they must
 * come out byte for byte, whatever the process's locale. */
START_TEST (test_unpack_keeps_non_ascii_names_from_pax_headers)
{
  ts_sh_ok ("cd %s && echo x > 'caf\303\251' && tar --format=posix -cf ../l.tar 'caf\303\251'"
            " && tar -tvvf ../l.tar && strings ../l.tar | grep -q path=",
            fx.src);
  unpack_ok ("l.tar");
  ck_assert (S_ISREG (stat_in_dest ("caf\303\251").st_mode));
}
END_TEST

START_TEST (test_file_replaces_directory_and_directory_replaces_file)
{
  ts_sh_ok ("cd %s && mkdir -p d && echo y > d/y && echo f > f && mkdir e && echo z > e/z"
            " && echo g > g",
            fx.src);
  /* Entries in order: d/ d/y d(file), then g(file) g/ g/z. */
  ts_sh_ok (
      "tar -C %s -cf %s/layer.tar --no-recursion --transform 's,^f$,d,;s,^e,g,' d d/y f g e e/z",
      fx.src, fx.dir);
  unpack_ok ("layer.tar");
  ck_assert (S_ISREG (stat_in_dest ("d").st_mode));
  ck_assert (S_ISDIR (stat_in_dest ("g").st_mode));
  ck_assert (S_ISREG (stat_in_dest ("g/z").st_mode));
}
END_TEST

/* A relative symlink climbing with `..` is read inside the root: the entry lands in dest. */
START_TEST (test_symlink_with_dotdot_stays_inside_dest)
{
  ts_sh_ok ("cd %s && ln -s ../../../../../../../.. up && mkdir x && echo p > x/pwned", fx.src);
  ts_sh_ok ("tar -C %s -cf %s/layer.tar --no-recursion --transform 's,^x,up,S' up x/pwned", fx.src,
            fx.dir);
  unpack_ok ("layer.tar");
  ck_assert (S_ISREG (stat_in_dest ("pwned").st_mode));
  ck_assert (S_ISLNK (stat_in_dest ("up").st_mode));
  assert_host_untouched ();
}
END_TEST

START_TEST (test_rejects_dotdot_path)
{
  ts_sh_ok ("cd %s && echo p > f && tar -P -cf ../l.tar --transform 's,^f$,../host/pwned,' f",
            fx.src);
  assert_rejected ("l.tar", "layer entry `../host/pwned`: path contains `..`");
}
END_TEST

START_TEST (test_rejects_absolute_path)
{
  ts_sh_ok ("cd %s && echo p > f && tar -P -cf ../l.tar --transform 's,^f$,%s/pwned,' f", fx.src,
            fx.host);
  assert_rejected ("l.tar", "absolute path");
}
END_TEST

/* `link -> <host dir>` then `link/pwned`: the second entry must not go through to the host. */
START_TEST (test_rejects_write_through_absolute_symlink)
{
  ts_sh_ok ("cd %s && ln -s %s link && mkdir x && echo p > x/pwned", fx.src, fx.host);
  ts_sh_ok ("tar -C %s -cf %s/l.tar --no-recursion --transform 's,^x,link,S' link x/pwned", fx.src,
            fx.dir);
  assert_rejected ("l.tar", "layer entry `link/pwned`");
}
END_TEST

static void hardlink_case (const char *target, const char *needle)
{
  struct stat before, after;
  ck_assert_int_eq (stat ("/etc/passwd", &before), 0);
  ts_sh_ok ("cd %s && echo f > f && ln f g && tar -P -cf ../l.tar --transform 's,^f$,%s,R' f g",
            fx.src, target);
  assert_rejected ("l.tar", needle);
  ck_assert_int_eq (stat ("/etc/passwd", &after), 0);
  ck_assert_int_eq (after.st_nlink, before.st_nlink);
  ck_assert (!exists_in_dest ("g"));
}

START_TEST (test_rejects_hard_link_to_host_file)
{
  hardlink_case ("/etc/passwd", "hard link target: layer entry `/etc/passwd`: absolute path");
}
END_TEST

START_TEST (test_rejects_hard_link_climbing_out)
{
  hardlink_case ("../../../../etc/passwd", "contains `..`");
}
END_TEST

START_TEST (test_rejects_hard_link_to_missing_entry)
{
  hardlink_case ("etc/passwd", "hard link target `etc/passwd` does not exist in the layer");
}
END_TEST

START_TEST (test_rejects_device_node)
{
  ts_sh_ok ("cd %s && mknod null c 1 3 && tar -cf ../l.tar null", fx.src);
  assert_rejected ("l.tar", "layer contains a device node `null`");
  ck_assert (!exists_in_dest ("null"));
}
END_TEST

START_TEST (test_rejects_fifo)
{
  ts_sh_ok ("cd %s && mkfifo p && tar -cf ../l.tar p", fx.src);
  assert_rejected ("l.tar", "layer contains a fifo `p`");
}
END_TEST

START_TEST (test_rejects_truncated_gzip_stream)
{
  ts_sh_ok ("cd %s && cp /bin/busybox . && tar -czf ../full.tgz busybox"
            " && head -c $(( $(stat -c %%s ../full.tgz) / 2 )) ../full.tgz > ../l.tgz",
            fx.src);
  assert_rejected ("l.tgz", "busybox");
}
END_TEST

START_TEST (test_rejects_data_that_is_not_a_tar)
{
  ts_sh_ok ("head -c 5000 /bin/busybox > %s/l.bin", fx.dir);
  assert_rejected ("l.bin", "layer is not a valid tar stream");
}
END_TEST

START_TEST (test_rejects_path_longer_than_path_max)
{
  /* 20 components of 250 characters: each a valid name, the whole over PATH_MAX. */
  char comp[251], *longp = calloc (1, 20 * 251 + 8);
  memset (comp, 'a', 250);
  comp[250] = '\0';
  for (int i = 0; i < 20; i++)
    {
      strcat (longp, comp);
      strcat (longp, "/");
    }
  strcat (longp, "f");
  ts_sh_ok ("cd %s && echo p > f && tar -cf ../l.tar --transform 's,^f$,%s,' f", fx.src, longp);
  assert_rejected ("l.tar", "path longer than PATH_MAX");
  free (longp);
}
END_TEST

/* A header libarchive reports as broken: a checksum that does not match. */
START_TEST (test_rejects_corrupt_header)
{
  ts_sh_ok ("cd %s && echo p > f && tar -cf ../l.tar f && printf 'XXXXXXXX' | dd of=../l.tar bs=1"
            " seek=148 conv=notrunc status=none",
            fx.src);
  assert_rejected ("l.tar", "layer is not a valid tar stream");
}
END_TEST

static void suite_setup (void)
{
  base_dir = ts_mkdtemp ("unpack");
}

static void suite_teardown (void)
{
  ts_rmtree (base_dir);
  free (base_dir);
}

static Suite *unpack_suite (void)
{
  Suite *s = suite_create ("images_unpack");
  TCase *tc = tcase_create ("unpack");
  tcase_add_unchecked_fixture (tc, suite_setup, suite_teardown);
  tcase_add_checked_fixture (tc, setup, NULL);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_unpack_keeps_content_modes_owners_links_and_xattrs);
  tcase_add_test (tc, test_digest_and_size_of_plain_tar);
  tcase_add_test (tc, test_digest_and_size_of_gzip_layer);
  tcase_add_test (tc, test_digest_and_size_of_zstd_layer);
  tcase_add_test (tc, test_digest_covers_trailing_bytes_after_the_archive);
  tcase_add_test (tc, test_unpack_streams_from_a_pipe);
  tcase_add_test (tc, test_whiteouts_become_overlayfs_whiteouts);
  tcase_add_test (tc, test_unpack_keeps_non_ascii_names_from_pax_headers);
  tcase_add_test (tc, test_file_replaces_directory_and_directory_replaces_file);
  tcase_add_test (tc, test_symlink_with_dotdot_stays_inside_dest);
  tcase_add_test (tc, test_rejects_dotdot_path);
  tcase_add_test (tc, test_rejects_absolute_path);
  tcase_add_test (tc, test_rejects_write_through_absolute_symlink);
  tcase_add_test (tc, test_rejects_hard_link_to_host_file);
  tcase_add_test (tc, test_rejects_hard_link_climbing_out);
  tcase_add_test (tc, test_rejects_hard_link_to_missing_entry);
  tcase_add_test (tc, test_rejects_device_node);
  tcase_add_test (tc, test_rejects_fifo);
  tcase_add_test (tc, test_rejects_truncated_gzip_stream);
  tcase_add_test (tc, test_rejects_data_that_is_not_a_tar);
  tcase_add_test (tc, test_rejects_path_longer_than_path_max);
  tcase_add_test (tc, test_rejects_corrupt_header);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (unpack_suite ());
}
