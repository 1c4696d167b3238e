/* berth-control over TLS: a certificate made here with the openssl CLI, the real aws CLI
 * verifying it with --ca-bundle / AWS_CA_BUNDLE, plaintext refused on the TLS port, bad key
 * files refused at startup, and the listen-address policy with and without TLS. */
#include "controlplane/controlplane.h"
#include "lib/cleanup.h"
#include "tests/support/cp.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static ts_cp cp;
static char cert[512], key[512];

/* A self-signed P-256 certificate for 127.0.0.1 and localhost, and its key (0600). */
static void make_cert (const char *dir, const char *name)
{
  ts_sh_ok ("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
            "-keyout %s/%s.key -out %s/%s.pem -days 2 -subj /CN=localhost "
            "-addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null && chmod 600 %s/%s.key",
            dir, name, dir, name, dir, name);
}

static bool port_accepts (void *arg)
{
  struct sockaddr_in a = { .sin_family = AF_INET,
                           .sin_port = htons ((uint16_t)cp.port),
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool ok = connect (fd, (struct sockaddr *)&a, sizeof a) == 0;
  close (fd);
  return ok;
}

/* Runs berth-control with the TLS options; returns its pid (stdout+stderr to dir/log). */
static pid_t spawn (const char *tls_cert, const char *tls_key)
{
  _cleanup_free_ char *bin = ts_bin ("berth-control");
  char listen[64], log[512];
  snprintf (listen, sizeof listen, "127.0.0.1:%d", cp.port);
  snprintf (log, sizeof log, "%s/log", cp.dir);
  pid_t pid = fork ();
  ck_assert_int_ge (pid, 0);
  if (pid == 0)
    {
      int fd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      dup2 (fd, 1);
      dup2 (fd, 2);
      const char *argv[12]
          = { bin, "--data-dir", cp.dir, "--listen", listen, "--log-level", "debug" };
      int n = 7;
      if (tls_cert)
        argv[n++] = "--tls-cert", argv[n++] = tls_cert;
      if (tls_key)
        argv[n++] = "--tls-key", argv[n++] = tls_key;
      execv (bin, (char *const *)argv);
      _exit (127);
    }
  return pid;
}

static void setup (void)
{
  char creds[600];
  cp.dir = ts_mkdtemp ("cp-tls");
  cp.port = ts_free_port ();
  cp.pid = -1;
  make_cert (cp.dir, "server");
  snprintf (cert, sizeof cert, "%s/server.pem", cp.dir);
  snprintf (key, sizeof key, "%s/server.key", cp.dir);
  unsetenv ("AWS_ACCESS_KEY_ID");
  unsetenv ("AWS_SECRET_ACCESS_KEY");
  unsetenv ("AWS_SESSION_TOKEN");
  unsetenv ("AWS_CA_BUNDLE");
  setenv ("AWS_EC2_METADATA_DISABLED", "true", 1);
  setenv ("AWS_PAGER", "", 1);
  setenv ("AWS_CONFIG_FILE", "/dev/null", 1);
  setenv ("AWS_MAX_ATTEMPTS", "1", 1);
  setenv ("AWS_PROFILE", "admin", 1);
  snprintf (creds, sizeof creds, "%s/credentials", cp.dir);
  setenv ("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
}

static void teardown (void)
{
  ts_cp_teardown (&cp);
}

static void start_tls (void)
{
  cp.pid = spawn (cert, key);
  ck_assert_msg (ts_wait_for (port_accepts, NULL, 10000), "berth-control did not listen");
}

/* `aws ecs --endpoint-url https://127.0.0.1:PORT <extra> <args>`; returns the exit code. */
static int aws_https (const char *extra, const char *args, char **out)
{
  _cleanup_free_ char *cmd = NULL;
  int status;
  ck_assert_int_ge (asprintf (&cmd,
                              "/usr/bin/aws ecs --endpoint-url https://127.0.0.1:%d --region "
                              "us-east-1 --output json --cli-read-timeout 20 %s %s",
                              cp.port, extra, args),
                    0);
  ck_assert_int_eq (ts_sh (cmd, out, &status), 0);
  return ts_exit_code (status);
}

START_TEST (test_tls_aws_cli_verifies_the_certificate_and_lists_clusters)
{
  _cleanup_free_ char *ca = NULL, *out1 = NULL, *out2 = NULL, *out3 = NULL;
  start_tls ();
  ck_assert_int_ge (asprintf (&ca, "--ca-bundle %s", cert), 0);
  ck_assert_msg (aws_https (ca, "create-cluster --cluster-name secure", &out1) == 0, "%s", out1);
  ck_assert_msg (aws_https (ca, "list-clusters", &out2) == 0, "%s", out2);
  ck_assert_ptr_nonnull (strstr (out2, "cluster/secure"));
  /* The same through AWS_CA_BUNDLE. */
  setenv ("AWS_CA_BUNDLE", cert, 1);
  free (out2);
  ck_assert_msg (aws_https ("", "list-clusters", &out2) == 0, "%s", out2);
  ck_assert_ptr_nonnull (strstr (out2, "cluster/secure"));
  unsetenv ("AWS_CA_BUNDLE");
  /* Without the CA the CLI refuses the self-signed certificate. */
  ck_assert_int_ne (aws_https ("", "list-clusters", &out3), 0);
  ck_assert_msg (strstr (out3, "SSL") || strstr (out3, "certificate"), "%s", out3);
  ck_assert_int_eq (ts_cp_signal (&cp, SIGTERM), 0);
}
END_TEST

START_TEST (test_tls_port_does_not_answer_plaintext_http)
{
  _cleanup_free_ char *out = NULL, *ca = NULL, *out2 = NULL;
  int status;
  start_tls ();
  char cmd[256];
  snprintf (cmd, sizeof cmd,
            "curl -sS -m 10 -o /dev/null -w '%%{http_code}' -X POST -d '{}' "
            "http://127.0.0.1:%d/",
            cp.port);
  ck_assert_int_eq (ts_sh (cmd, &out, &status), 0);
  ck_assert_msg (ts_exit_code (status) != 0, "plaintext got an answer: %s", out);
  ck_assert_ptr_nonnull (strstr (out, "000")); /* no HTTP status at all */
  /* The server is unharmed. */
  ck_assert_int_ge (asprintf (&ca, "--ca-bundle %s", cert), 0);
  ck_assert_msg (aws_https (ca, "list-clusters", &out2) == 0, "%s", out2);
}
END_TEST

/* Runs berth-control with cert and key, which must fail at once with want in its log. */
static void expect_startup_error (const char *tls_cert, const char *tls_key, const char *want)
{
  int status;
  char log[600];
  snprintf (log, sizeof log, "%s/log", cp.dir);
  unlink (log);
  pid_t pid = spawn (tls_cert, tls_key);
  ck_assert_int_eq (waitpid (pid, &status, 0), pid);
  ck_assert_msg (WIFEXITED (status) && WEXITSTATUS (status) == 1, "status %d", status);
  _cleanup_free_ char *text = ts_read_file (log);
  ck_assert_msg (text && strstr (text, want), "want \"%s\" in: %s", want, text ? text : "");
}

START_TEST (test_tls_bad_key_files_are_clear_startup_errors)
{
  char other[600], garbage[600], missing[600];
  ck_assert_int_eq (chmod (key, 0640), 0);
  expect_startup_error (cert, key, "is accessible by group or others (mode 0640)");
  ck_assert_int_eq (chmod (key, 0604), 0);
  expect_startup_error (cert, key, "is accessible by group or others (mode 0604)");
  ck_assert_int_eq (chmod (key, 0400), 0);
  make_cert (cp.dir, "other");
  snprintf (other, sizeof other, "%s/other.key", cp.dir);
  expect_startup_error (cert, other, "does not match the certificate");
  snprintf (garbage, sizeof garbage, "%s/garbage", cp.dir);
  ts_sh_ok ("echo not a pem > %s && chmod 600 %s", garbage, garbage);
  expect_startup_error (garbage, key, "no PEM certificate");
  expect_startup_error (cert, garbage, "no unencrypted PEM private key");
  ts_sh_ok ("openssl pkey -in %s -aes256 -passout pass:secret -out %s/enc.key && chmod 600 "
            "%s/enc.key",
            key, cp.dir, cp.dir);
  snprintf (other, sizeof other, "%s/enc.key", cp.dir);
  expect_startup_error (cert, other, "encrypted keys are not supported");
  snprintf (missing, sizeof missing, "%s/missing.key", cp.dir);
  expect_startup_error (cert, missing, "No such file");
  expect_startup_error (cert, NULL, "needs both a certificate and a key");
  /* The key is fine again: it starts. */
  start_tls ();
}
END_TEST

/* In a private network namespace (nothing can reach it): a non-loopback listen address is
 * refused in plaintext and accepted with TLS. Returns the child's exit status. */
static int listen_any_in_private_netns (bool tls)
{
  pid_t pid = fork ();
  ck_assert_int_ge (pid, 0);
  if (pid == 0)
    {
      berr *err = NULL;
      cp_server *srv = NULL;
      char data[600];
      snprintf (data, sizeof data, "%s/netns-%d", cp.dir, tls);
      cp_config cfg = { .data_dir = data,
                        .listen = "0.0.0.0:8420",
                        .region = "us-east-1",
                        .account_id = "000000000000",
                        .tls_cert = tls ? cert : NULL,
                        .tls_key = tls ? key : NULL };
      if (unshare (CLONE_NEWNET) < 0)
        _exit (10);
      if (cp_server_start (&cfg, &srv, &err) < 0)
        {
          bool policy = strstr (err->msg, "refusing to serve plaintext") != NULL;
          berr_free (&err);
          _exit (policy ? 2 : 3);
        }
      cp_server_stop (srv);
      _exit (0);
    }
  int status;
  ck_assert_int_eq (waitpid (pid, &status, 0), pid);
  ck_assert (WIFEXITED (status));
  return WEXITSTATUS (status);
}

START_TEST (test_tls_allows_any_listen_address_plaintext_only_loopback)
{
  ck_assert_int_eq (listen_any_in_private_netns (false), 2);
  ck_assert_int_eq (listen_any_in_private_netns (true), 0);
}
END_TEST

static Suite *tls_suite (void)
{
  Suite *s = suite_create ("cp_tls");
  TCase *tc = tcase_create ("tls");
  tcase_set_timeout (tc, 120);
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_tls_aws_cli_verifies_the_certificate_and_lists_clusters);
  tcase_add_test (tc, test_tls_port_does_not_answer_plaintext_http);
  tcase_add_test (tc, test_tls_bad_key_files_are_clear_startup_errors);
  tcase_add_test (tc, test_tls_allows_any_listen_address_plaintext_only_loopback);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (tls_suite ());
}
