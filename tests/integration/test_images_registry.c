/* The registry client against Debian's docker-registry on 127.0.0.1 (plain and htpasswd basic
 * auth), populated with skopeo from a busybox-static OCI layout the test writes (root). */
#include "images/images.h"
#include "tests/support/imgreg.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Set up once by the parent (unchecked fixture, tests/support/imgreg.h): a layout, three
 * registries (plain, htpasswd, bearer tokens from an issuer this test serves), pushed images. */
static char *base_dir;
static int plain_port, basic_port, bearer_port, issuer_port;
static pid_t plain_pid, basic_pid, bearer_pid, issuer_pid;

static void push (int port, const char *creds, const char *tag, const char *repo, bool all)
{
  char layout[4096];
  snprintf (layout, sizeof layout, "%s/oci", base_dir);
  ts_reg_push (layout, port, creds, tag, repo, all);
}

static void suite_setup (void)
{
  base_dir = ts_mkdtemp ("berth-registry");
  ts_reg_script (base_dir, "layout.sh", TS_REG_BUSYBOX_LAYOUT_SH);
  ts_reg_script (base_dir, "token.sh", TS_REG_TOKEN_SH);
  ts_sh_ok ("htpasswd -Bbc %s/htpasswd alice s3cret", base_dir);
  plain_port = ts_free_port ();
  plain_pid = ts_reg_start (base_dir, "plain", plain_port, "none", 0);
  basic_port = ts_free_port ();
  basic_pid = ts_reg_start (base_dir, "basic", basic_port, "basic", 0);
  issuer_pid = ts_reg_start_issuer (base_dir, &issuer_port);
  bearer_port = ts_free_port ();
  bearer_pid = ts_reg_start (base_dir, "bearer", bearer_port, "bearer", issuer_port);
  push (plain_port, NULL, "v1", "test/busybox", false);
  push (plain_port, NULL, "multi", "test/busybox", true);
  push (plain_port, NULL, "small", "test/corrupt", false);
  push (basic_port, "alice:s3cret", "v1", "test/busybox", false);
  push (bearer_port, "alice:s3cret", "v1", "test/busybox", false);
}

static void suite_teardown (void)
{
  pid_t pids[] = { plain_pid, basic_pid, bearer_pid, issuer_pid };
  for (size_t i = 0; i < 4; i++)
    ts_reg_stop (pids[i]);
  if (base_dir)
    ts_rmtree (base_dir);
}

static struct img_registry *client (const char *docker_config)
{
  struct img_registry_opts o = { .docker_config = docker_config, .retries = -1 };
  struct img_registry *r = NULL;
  berr *err = NULL;
  ck_assert_msg (img_registry_new (&o, &r, &err) == 0, "%s", err ? err->msg : "");
  return r;
}

static struct img_ref ref_at (int port, const char *repo_tag)
{
  char s[512];
  struct img_ref ref;
  berr *err = NULL;
  snprintf (s, sizeof s, "127.0.0.1:%d/%s", port, repo_tag);
  ck_assert_msg (img_ref_parse (s, NULL, &ref, &err) == 0, "%s", err ? err->msg : "");
  return ref;
}

static char *file_line (const char *name)
{
  char p[4096];
  snprintf (p, sizeof p, "%s/%s", base_dir, name);
  char *s = ts_read_file (p);
  ck_assert_ptr_nonnull (s);
  s[strcspn (s, "\n")] = 0;
  return s;
}

START_TEST (test_manifest_by_tag_and_by_digest_agree_and_are_verified)
{
  struct img_registry *r = client (NULL);
  struct img_ref ref = ref_at (plain_port, "test/busybox:v1");
  struct img_fetched_manifest m, m2;
  berr *err = NULL;
  ck_assert_msg (img_registry_get_manifest (r, &ref, "v1", &m, &err) == 0, "%s", err->msg);
  char *want = file_line ("host.digest");
  ck_assert_str_eq (m.digest + 7, want);
  ck_assert_int_eq (m.manifest->kind, IMG_MANIFEST_IMAGE);
  ck_assert_str_eq (m.content_type, "application/vnd.oci.image.manifest.v1+json");
  ck_assert_msg (img_registry_get_manifest (r, &ref, m.digest, &m2, &err) == 0, "%s", err->msg);
  ck_assert_uint_eq (m.len, m2.len);
  ck_assert_int_eq (memcmp (m.body, m2.body, m.len), 0);
  img_fetched_manifest_clear (&m);
  img_fetched_manifest_clear (&m2);
  free (want);
  img_ref_clear (&ref);
  img_registry_free (r);
}
END_TEST

START_TEST (test_manifest_list_resolves_to_this_arch)
{
  struct img_registry *r = client (NULL);
  struct img_ref ref = ref_at (plain_port, "test/busybox:multi");
  struct img_fetched_manifest m;
  berr *err = NULL;
  ck_assert_msg (img_registry_get_manifest (r, &ref, "multi", &m, &err) == 0, "%s", err->msg);
  ck_assert_int_eq (m.manifest->kind, IMG_MANIFEST_INDEX);
  ck_assert_uint_eq (m.manifest->n_manifests, 2);
  img_fetched_manifest_clear (&m);
  ck_assert_msg (img_registry_resolve (r, &ref, &m, &err) == 0, "%s", err->msg);
  ck_assert_int_eq (m.manifest->kind, IMG_MANIFEST_IMAGE);
  char *want = file_line ("host.digest");
  ck_assert_str_eq (m.digest + 7, want);
  free (want);
  img_fetched_manifest_clear (&m);
  img_ref_clear (&ref);
  img_registry_free (r);
}
END_TEST

/* Streams the blob through a pipe from a child process into img_layer_unpack. */
static void pull_layer_through_pipe (struct img_registry *r, const struct img_ref *ref,
                                     const struct img_descriptor *d, const char *dest)
{
  int p[2];
  ck_assert_int_eq (pipe2 (p, O_CLOEXEC), 0);
  pid_t pid = fork ();
  ck_assert_int_ge (pid, 0);
  if (pid == 0)
    {
      close (p[0]);
      berr *err = NULL;
      uint64_t size = 0;
      int ret = img_registry_get_blob (r, ref, d->digest, p[1], &size, &err);
      if (ret < 0)
        fprintf (stderr, "%s\n", err->msg);
      _exit (ret == 0 && (int64_t)size == d->size ? 0 : 1);
    }
  close (p[1]);
  struct img_unpack_result res;
  berr *err = NULL;
  ck_assert_msg (img_layer_unpack (p[0], dest, &res, &err) == 0, "%s", err->msg);
  close (p[0]);
  int status = 0;
  ck_assert_int_eq (waitpid (pid, &status, 0), pid);
  ck_assert_int_eq (ts_exit_code (status), 0);
  ck_assert_str_eq (res.blob_digest, d->digest);
}

START_TEST (test_blobs_stream_verified_and_unpack_busybox)
{
  struct img_registry *r = client (NULL);
  struct img_ref ref = ref_at (plain_port, "test/busybox:multi");
  struct img_fetched_manifest m;
  berr *err = NULL;
  ck_assert_msg (img_registry_resolve (r, &ref, &m, &err) == 0, "%s", err->msg);
  char cfg_path[4096];
  snprintf (cfg_path, sizeof cfg_path, "%s/config.%d", base_dir, getpid ());
  int fd = open (cfg_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  uint64_t size = 0;
  ck_assert_msg (img_registry_get_blob (r, &ref, m.manifest->config.digest, fd, &size, &err) == 0,
                 "%s", err->msg);
  close (fd);
  char *cfg = ts_read_file (cfg_path);
  struct img_config *c = NULL;
  ck_assert_msg (img_config_parse (cfg, size, &c, &err) == 0, "%s", err->msg);
  ck_assert_str_eq (c->architecture, img_host_arch ());
  char *dest = ts_mkdtemp ("berth-registry-unpack");
  pull_layer_through_pipe (r, &ref, &m.manifest->layers[0], dest);
  char bb[4096];
  snprintf (bb, sizeof bb, "%s/bin/busybox", dest);
  ts_sh_ok ("%s true", bb);
  ts_rmtree (dest);
  free (dest);
  free (cfg);
  img_config_free (c);
  img_fetched_manifest_clear (&m);
  img_ref_clear (&ref);
  img_registry_free (r);
}
END_TEST

START_TEST (test_corrupted_blob_is_rejected_with_both_digests)
{
  struct img_registry *r = client (NULL);
  struct img_ref ref = ref_at (plain_port, "test/corrupt:small");
  struct img_fetched_manifest m;
  berr *err = NULL;
  ck_assert_msg (img_registry_resolve (r, &ref, &m, &err) == 0, "%s", err->msg);
  const char *d = m.manifest->layers[0].digest;
  /* Same size, different bytes, straight into the registry's storage. */
  ts_sh_ok ("f=%s/store-plain/docker/registry/v2/blobs/sha256/%.2s/%s/data; "
            "head -c $(stat -c %%s $f) /dev/zero > $f.new && mv $f.new $f",
            base_dir, d + 7, d + 7);
  char path[4096];
  snprintf (path, sizeof path, "%s/corrupt.%d", base_dir, getpid ());
  int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ck_assert_int_eq (img_registry_get_blob (r, &ref, d, fd, NULL, &err), -1);
  close (fd);
  ck_assert_msg (strstr (err->msg, "digest mismatch") && strstr (err->msg, d)
                     && strstr (err->msg, "got sha256:"),
                 "%s", err->msg);
  berr_free (&err);
  img_fetched_manifest_clear (&m);
  img_ref_clear (&ref);
  img_registry_free (r);
}
END_TEST

START_TEST (test_missing_image_reports_manifest_unknown)
{
  struct img_registry *r = client (NULL);
  struct img_ref ref = ref_at (plain_port, "test/busybox:nope");
  struct img_fetched_manifest m;
  berr *err = NULL;
  ck_assert_int_eq (img_registry_resolve (r, &ref, &m, &err), -1);
  ck_assert_msg (strstr (err->msg, "HTTP 404") && strstr (err->msg, "manifest unknown"), "%s",
                 err->msg);
  ck_assert_int_eq (berr_errno (err), ENOENT);
  berr_free (&err);
  img_ref_clear (&ref);
  img_registry_free (r);
}
END_TEST

START_TEST (test_basic_auth_with_explicit_credentials)
{
  struct img_registry *r = client (NULL);
  struct img_ref ref = ref_at (basic_port, "test/busybox:v1");
  struct img_fetched_manifest m;
  berr *err = NULL;
  ck_assert_int_eq (img_registry_resolve (r, &ref, &m, &err), -1); /* anonymous: refused */
  ck_assert_msg (strstr (err->msg, "HTTP 401"), "%s", err->msg);
  berr_free (&err);
  ck_assert_int_eq (img_registry_set_credentials (r, ref.registry, "alice", "s3cret", &err), 0);
  ck_assert_msg (img_registry_resolve (r, &ref, &m, &err) == 0, "%s", err->msg);
  char *dest = ts_mkdtemp ("berth-registry-unpack");
  pull_layer_through_pipe (r, &ref, &m.manifest->layers[0], dest);
  ts_rmtree (dest);
  free (dest);
  img_fetched_manifest_clear (&m);
  img_ref_clear (&ref);
  img_registry_free (r);
}
END_TEST

START_TEST (test_basic_auth_from_docker_config_and_wrong_password_is_401)
{
  char path[4096];
  snprintf (path, sizeof path, "%s/docker-config.%d.json", base_dir, getpid ());
  ts_sh_ok ("printf '{\"auths\":{\"127.0.0.1:%d\":{\"auth\":\"%%s\"}}}' "
            "$(printf alice:s3cret | base64) > %s",
            basic_port, path);
  struct img_registry *r = client (path);
  struct img_ref ref = ref_at (basic_port, "test/busybox:v1");
  struct img_fetched_manifest m;
  berr *err = NULL;
  ck_assert_msg (img_registry_resolve (r, &ref, &m, &err) == 0, "%s", err->msg);
  img_fetched_manifest_clear (&m);
  img_registry_free (r);
  r = client (path);
  ck_assert_int_eq (img_registry_set_credentials (r, ref.registry, "alice", "wrong", &err), 0);
  ck_assert_int_eq (img_registry_resolve (r, &ref, &m, &err), -1);
  ck_assert_msg (strstr (err->msg, "HTTP 401") && strstr (err->msg, "UNAUTHORIZED")
                     && !strstr (err->msg, "wrong"),
                 "%s", err->msg);
  ck_assert_int_eq (berr_errno (err), EACCES);
  berr_free (&err);
  img_ref_clear (&ref);
  img_registry_free (r);
}
END_TEST

START_TEST (test_challenge_and_docker_config_parsers)
{
  struct img_auth_challenge c;
  berr *err = NULL;
  ck_assert_int_eq (img_auth_challenge_parse ("Bearer realm=\"https://auth.example/token\","
                                              "service=\"reg\",scope=\"repository:a/b:pull\"",
                                              &c, &err),
                    0);
  ck_assert_str_eq (c.scheme, "Bearer");
  ck_assert_str_eq (c.realm, "https://auth.example/token");
  ck_assert_str_eq (c.service, "reg");
  ck_assert_str_eq (c.scope, "repository:a/b:pull");
  img_auth_challenge_clear (&c);
  ck_assert_int_eq (img_auth_challenge_parse ("Basic realm=\"x", &c, &err), -1);
  berr_free (&err);
  const char *cfg = "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"Ym9iOnB3\"},"
                    "\"r.example:5000\":{\"username\":\"u\",\"password\":\"p:q\"}}}";
  char *u = NULL, *p = NULL;
  ck_assert_int_eq (
      img_docker_config_lookup (cfg, strlen (cfg), "registry-1.docker.io", &u, &p, &err), 1);
  ck_assert_str_eq (u, "bob");
  ck_assert_str_eq (p, "pw");
  free (u);
  free (p);
  ck_assert_int_eq (img_docker_config_lookup (cfg, strlen (cfg), "r.example:5000", &u, &p, &err),
                    1);
  ck_assert_str_eq (p, "p:q");
  free (u);
  free (p);
  ck_assert_int_eq (img_docker_config_lookup (cfg, strlen (cfg), "other", &u, &p, &err), 0);
}
END_TEST

static int issuer_requests (void)
{
  return ts_reg_issuer_requests (base_dir);
}

static char *issuer_last_request (void)
{
  char p[4096];
  snprintf (p, sizeof p, "%s/issuer.log", base_dir);
  char *log = ts_read_file (p);
  ck_assert_ptr_nonnull (log);
  size_t len = strlen (log);
  while (len > 0 && log[len - 1] == '\n')
    log[--len] = 0;
  char *nl = strrchr (log, '\n');
  char *last = strdup (nl ? nl + 1 : log);
  free (log);
  return last;
}

START_TEST (test_bearer_token_fetched_with_basic_creds_and_reused)
{
  struct img_registry *r = client (NULL);
  struct img_ref ref = ref_at (bearer_port, "test/busybox:v1");
  struct img_fetched_manifest m;
  berr *err = NULL;
  ck_assert_int_eq (img_registry_set_credentials (r, ref.registry, "alice", "s3cret", &err), 0);
  int before = issuer_requests ();
  ck_assert_msg (img_registry_resolve (r, &ref, &m, &err) == 0, "%s", err->msg);
  ck_assert_int_eq (issuer_requests (), before + 1);
  char *req = issuer_last_request ();
  ck_assert_msg (strstr (req, "GET /token?service=berth-test&scope=repository%3Atest%2Fbusybox"
                              "%3Apull ")
                     && strstr (req, "basic=1"),
                 "%s", req);
  free (req);
  /* The cached token serves the next requests of the same scope. */
  char *dest = ts_mkdtemp ("berth-registry-unpack");
  pull_layer_through_pipe (r, &ref, &m.manifest->layers[0], dest);
  struct img_fetched_manifest m2;
  ck_assert_msg (img_registry_get_manifest (r, &ref, m.digest, &m2, &err) == 0, "%s", err->msg);
  ck_assert_int_eq (issuer_requests (), before + 1);
  ts_rmtree (dest);
  free (dest);
  img_fetched_manifest_clear (&m2);
  img_fetched_manifest_clear (&m);
  img_ref_clear (&ref);
  img_registry_free (r);
}
END_TEST

START_TEST (test_bearer_token_rejected_by_registry_is_fetched_again_once)
{
  char p[4096];
  snprintf (p, sizeof p, "%s/token-once.json", base_dir);
  ts_sh_ok ("echo '{\"token\":\"bm90.YSBqd3Q.c2ln\",\"expires_in\":300}' > %s", p);
  struct img_registry *r = client (NULL);
  struct img_ref ref = ref_at (bearer_port, "test/busybox:v1");
  struct img_fetched_manifest m;
  berr *err = NULL;
  int before = issuer_requests ();
  ck_assert_msg (img_registry_resolve (r, &ref, &m, &err) == 0, "%s", err->msg);
  ck_assert_int_eq (issuer_requests (), before + 2);
  img_fetched_manifest_clear (&m);
  /* Always a bad token: one fresh try, then a clear 401. */
  ts_sh_ok ("cp %s/token.json %s/token.good && "
            "echo '{\"token\":\"bm90.YSBqd3Q.c2ln\"}' > %s/token.json",
            base_dir, base_dir, base_dir);
  img_registry_free (r);
  r = client (NULL);
  before = issuer_requests ();
  int ret = img_registry_resolve (r, &ref, &m, &err);
  ts_sh_ok ("mv %s/token.good %s/token.json", base_dir, base_dir);
  ck_assert_int_eq (ret, -1);
  ck_assert_msg (strstr (err->msg, "HTTP 401"), "%s", err->msg);
  ck_assert_int_eq (issuer_requests (), before + 2);
  berr_free (&err);
  img_ref_clear (&ref);
  img_registry_free (r);
}
END_TEST

/* A one-off HTTP server on 127.0.0.1 that answers its n-th connection with responses[n] (the
 * last one repeats); returns its port and pid. */
static int canned_server (const char *const *responses, size_t n, pid_t *pid)
{
  int s = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  ck_assert_int_ge (s, 0);
  ck_assert_int_eq (bind (s, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq (listen (s, 16), 0);
  ck_assert_int_eq (getsockname (s, (struct sockaddr *)&a, &len), 0);
  *pid = fork ();
  ck_assert_int_ge (*pid, 0);
  if (*pid == 0)
    {
      signal (SIGTERM, SIG_DFL);
      for (size_t i = 0;; i++)
        {
          int c = accept4 (s, NULL, NULL, SOCK_CLOEXEC);
          char req[4096];
          if (c < 0)
            continue;
          (void)!read (c, req, sizeof req);
          const char *r = responses[i < n ? i : n - 1];
          (void)!write (c, r, strlen (r));
          close (c);
        }
    }
  close (s);
  return ntohs (a.sin_port);
}

static void stop (pid_t pid)
{
  kill (pid, SIGTERM);
  waitpid (pid, NULL, 0);
}

#define HELLO_DIGEST "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

START_TEST (test_blob_retried_after_5xx_and_cut_stream_into_a_file)
{
  static const char *const resp[] = {
    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhel",
    "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n",
  };
  pid_t pid;
  int port = canned_server (resp, 3, &pid);
  struct img_registry_opts o = { .retries = 3, .backoff_ms = 10 };
  struct img_registry *r = NULL;
  berr *err = NULL;
  ck_assert_int_eq (img_registry_new (&o, &r, &err), 0);
  struct img_ref ref = ref_at (port, "test/x:v1");
  char path[4096];
  snprintf (path, sizeof path, "%s/retry.%d", base_dir, getpid ());
  int fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ck_assert_int_eq (write (fd, "keep", 4), 4); /* bytes before the blob stay */
  uint64_t size = 0;
  int ret = img_registry_get_blob (r, &ref, HELLO_DIGEST, fd, &size, &err);
  stop (pid);
  ck_assert_msg (ret == 0, "%s", err->msg);
  close (fd);
  ck_assert_uint_eq (size, 6);
  char *got = ts_read_file (path);
  ck_assert_str_eq (got, "keephello\n");
  free (got);
  img_ref_clear (&ref);
  img_registry_free (r);
}
END_TEST

START_TEST (test_blob_cut_after_bytes_into_a_pipe_fails_without_retry)
{
  static const char *const resp[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhel",
    "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n",
  };
  pid_t pid;
  int port = canned_server (resp, 2, &pid);
  struct img_registry_opts o = { .retries = 3, .backoff_ms = 10 };
  struct img_registry *r = NULL;
  berr *err = NULL;
  ck_assert_int_eq (img_registry_new (&o, &r, &err), 0);
  struct img_ref ref = ref_at (port, "test/x:v1");
  int p[2];
  ck_assert_int_eq (pipe2 (p, O_CLOEXEC), 0);
  int ret = img_registry_get_blob (r, &ref, HELLO_DIGEST, p[1], NULL, &err);
  stop (pid);
  ck_assert_int_eq (ret, -1);
  ck_assert_msg (strstr (err->msg, "interrupted after 3 bytes"), "%s", err->msg);
  berr_free (&err);
  close (p[0]);
  close (p[1]);
  img_ref_clear (&ref);
  img_registry_free (r);
}
END_TEST

int main (void)
{
  if (!ts_is_root ())
    {
      printf ("test_images_registry: needs root (layer unpack keeps ownership)\n");
      return 0;
    }
  Suite *s = suite_create ("images_registry");
  TCase *tc = tcase_create ("registry");
  tcase_set_timeout (tc, 120);
  tcase_add_unchecked_fixture (tc, suite_setup, suite_teardown);
  tcase_add_test (tc, test_challenge_and_docker_config_parsers);
  tcase_add_test (tc, test_manifest_by_tag_and_by_digest_agree_and_are_verified);
  tcase_add_test (tc, test_manifest_list_resolves_to_this_arch);
  tcase_add_test (tc, test_blobs_stream_verified_and_unpack_busybox);
  tcase_add_test (tc, test_missing_image_reports_manifest_unknown);
  tcase_add_test (tc, test_basic_auth_with_explicit_credentials);
  tcase_add_test (tc, test_basic_auth_from_docker_config_and_wrong_password_is_401);
  tcase_add_test (tc, test_bearer_token_fetched_with_basic_creds_and_reused);
  tcase_add_test (tc, test_bearer_token_rejected_by_registry_is_fetched_again_once);
  tcase_add_test (tc, test_blob_retried_after_5xx_and_cut_stream_into_a_file);
  tcase_add_test (tc, test_blob_cut_after_bytes_into_a_pipe_fails_without_retry);
  tcase_add_test (tc, test_corrupted_blob_is_rejected_with_both_digests);
  suite_add_tcase (s, tc);
  return ts_run_suite (s);
}
