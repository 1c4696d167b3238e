/* berth-control end to end: a real server on a loopback port with a temporary data directory,
 * driven by the real aws CLI (and curl's SigV4 signer where the CLI cannot send a bad body). */
#include "lib/cleanup.h"
#include "tests/support/cp.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <cJSON.h>
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

/* The running server of the current test (each test runs in its own process). */
static ts_cp srv = { .pid = -1 };

static void server_start (void)
{
  ts_cp_start (&srv);
}

static int server_signal (int sig)
{
  return ts_cp_signal (&srv, sig);
}

static void setup (void)
{
  ts_cp_setup (&srv);
}

static void teardown (void)
{
  ts_cp_teardown (&srv);
}

#define aws(out, ...) ts_cp_aws (&srv, out, __VA_ARGS__)

/* Runs aws, requires success and returns the parsed JSON output. */
static cJSON *aws_ok (const char *args)
{
  _cleanup_free_ char *out = NULL;
  int rc = aws (&out, "%s", args);
  ck_assert_msg (rc == 0, "aws ecs %s: exit %d: %s", args, rc, out ? out : "");
  cJSON *j = cJSON_Parse (out);
  ck_assert_msg (j != NULL, "aws ecs %s: not JSON: %s", args, out);
  return j;
}

/* Runs aws, requires failure with the ECS error code in the CLI's message. */
static void aws_fails_with (const char *code, const char *args)
{
  _cleanup_free_ char *out = NULL, *want = NULL;
  int rc = aws (&out, "%s", args);
  ck_assert_int_ge (asprintf (&want, "(%s)", code), 0);
  ck_assert_msg (rc != 0 && out && strstr (out, want), "aws ecs %s: exit %d, want %s: %s", args, rc,
                 code, out ? out : "");
}

static const char *jstr (const cJSON *j, const char *path0, const char *path1)
{
  const cJSON *v = cJSON_GetObjectItem (j, path0);
  if (path1)
    v = cJSON_GetObjectItem (v, path1);
  return cJSON_IsString (v) ? v->valuestring : "";
}

/* A key of a profile in the credentials file (newly allocated). */
static char *credential (const char *profile, const char *key)
{
  _cleanup_free_ char *path = NULL, *text = NULL;
  char section[64], *line, *save = NULL, *found = NULL;
  bool in = false;
  ck_assert_int_ge (asprintf (&path, "%s/credentials", srv.dir), 0);
  ck_assert_ptr_nonnull (text = ts_read_file (path));
  snprintf (section, sizeof section, "[%s]", profile);
  for (line = strtok_r (text, "\n", &save); line && !found; line = strtok_r (NULL, "\n", &save))
    {
      if (line[0] == '[')
        in = strcmp (line, section) == 0;
      else if (in && strncmp (line, key, strlen (key)) == 0 && strstr (line, " = "))
        found = strdup (strstr (line, " = ") + 3);
    }
  ck_assert_ptr_nonnull (found);
  return found;
}

/* POSTs body (a file's content) with the admin key through curl's SigV4 signer, or unsigned;
 * returns "<http status> <response body>" (newly allocated). */
static char *curl_post (bool sign, const char *action, const char *body_file)
{
  _cleanup_free_ char *id = credential ("admin", "aws_access_key_id");
  _cleanup_free_ char *secret = credential ("admin", "aws_secret_access_key");
  _cleanup_free_ char *cmd = NULL, *auth = NULL;
  char *out = NULL;
  int status;
  ck_assert_int_ge (
      asprintf (&auth, "--aws-sigv4 aws:amz:us-east-1:ecs --user '%s:%s'", id, secret), 0);
  ck_assert_int_ge (asprintf (&cmd,
                              "curl -sS --max-time 20 %s -H 'Content-Type: "
                              "application/x-amz-json-1.1' -H 'X-Amz-Target: "
                              "AmazonEC2ContainerServiceV20141113.%s' --data-binary @%s "
                              "-w ' %%{http_code}' http://127.0.0.1:%d/",
                              sign ? auth : "", action, body_file, srv.port),
                    0);
  ck_assert_int_eq (ts_sh (cmd, &out, &status), 0);
  ck_assert_int_eq (ts_exit_code (status), 0);
  return out;
}

static char *write_body (const char *name, const char *content, size_t len)
{
  char *path = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/%s", srv.dir, name), 0);
  FILE *f = fopen (path, "we");
  ck_assert_ptr_nonnull (f);
  ck_assert_int_eq (fwrite (content, 1, len, f), len);
  fclose (f);
  return path;
}

START_TEST (test_first_start_writes_0600_credentials_with_admin_and_agent_profiles)
{
  _cleanup_free_ char *path = NULL, *admin = credential ("admin", "aws_access_key_id"),
                      *agent = credential ("agent", "aws_access_key_id"),
                      *secret = credential ("admin", "aws_secret_access_key");
  struct stat st;
  ck_assert_int_ge (asprintf (&path, "%s/credentials", srv.dir), 0);
  ck_assert_int_eq (stat (path, &st), 0);
  ck_assert_int_eq (st.st_mode & 07777, 0600);
  ck_assert_int_eq (strlen (admin), 20);
  ck_assert_int_eq (strlen (secret), 40);
  ck_assert_str_ne (admin, agent);
  /* A restart keeps the keys. */
  server_signal (SIGTERM);
  server_start ();
  _cleanup_free_ char *again = credential ("admin", "aws_access_key_id");
  ck_assert_str_eq (admin, again);
}
END_TEST

START_TEST (test_aws_cli_creates_describes_and_deletes_clusters)
{
  cJSON *j = aws_ok ("create-cluster --cluster-name web --tags key=team,value=blue");
  ck_assert_str_eq (jstr (j, "cluster", "clusterArn"),
                    "arn:aws:ecs:us-east-1:000000000000:cluster/web");
  ck_assert_str_eq (jstr (j, "cluster", "status"), "ACTIVE");
  cJSON_Delete (j);

  j = aws_ok ("describe-clusters --clusters web arn:aws:ecs:us-east-1:000000000000:cluster/web "
              "ghost --include TAGS");
  cJSON *clusters = cJSON_GetObjectItem (j, "clusters");
  ck_assert_int_eq (cJSON_GetArraySize (clusters), 2);
  cJSON *tag
      = cJSON_GetArrayItem (cJSON_GetObjectItem (cJSON_GetArrayItem (clusters, 1), "tags"), 0);
  ck_assert_str_eq (jstr (tag, "key", NULL), "team");
  ck_assert_str_eq (jstr (tag, "value", NULL), "blue");
  cJSON *failure = cJSON_GetArrayItem (cJSON_GetObjectItem (j, "failures"), 0);
  ck_assert_str_eq (jstr (failure, "arn", NULL),
                    "arn:aws:ecs:us-east-1:000000000000:cluster/ghost");
  ck_assert_str_eq (jstr (failure, "reason", NULL), "MISSING");
  cJSON_Delete (j);

  j = aws_ok ("list-clusters");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (j, "clusterArns")), 1);
  cJSON_Delete (j);
  j = aws_ok ("delete-cluster --cluster web");
  ck_assert_str_eq (jstr (j, "cluster", "status"), "INACTIVE");
  cJSON_Delete (j);
  j = aws_ok ("list-clusters");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (j, "clusterArns")), 0);
  cJSON_Delete (j);
  aws_fails_with ("ClusterNotFoundException", "delete-cluster --cluster web");
  aws_fails_with ("ClusterNotFoundException", "delete-cluster --cluster never-was");
  aws_fails_with ("InvalidParameterException", "create-cluster --cluster-name 'no spaces'");
  aws_fails_with ("InvalidParameterException", "describe-clusters --include BOGUS");
}
END_TEST

START_TEST (test_aws_cli_paginates_list_clusters)
{
  for (int i = 0; i < 5; i++)
    {
      char args[64];
      snprintf (args, sizeof args, "create-cluster --cluster-name p%d", i);
      cJSON_Delete (aws_ok (args));
    }
  /* One page of two, with a token the server made. */
  cJSON *j = aws_ok ("list-clusters --no-paginate --max-results 2");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (j, "clusterArns")), 2);
  ck_assert_str_ne (jstr (j, "nextToken", NULL), "");
  cJSON_Delete (j);
  /* The CLI's paginator follows the tokens through pages of two and sees each cluster once. */
  j = aws_ok ("list-clusters --page-size 2");
  cJSON *arns = cJSON_GetObjectItem (j, "clusterArns");
  ck_assert_int_eq (cJSON_GetArraySize (arns), 5);
  ck_assert_str_eq (cJSON_GetArrayItem (arns, 4)->valuestring,
                    "arn:aws:ecs:us-east-1:000000000000:cluster/p4");
  cJSON_Delete (j);
  _cleanup_free_ char *path = NULL, *log = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/log", srv.dir), 0);
  log = ts_read_file (path);
  int pages = 0;
  for (char *p = log; (p = strstr (p, "ListClusters -> 200")); p++)
    pages++;
  ck_assert_int_eq (pages, 1 + 3);
  aws_fails_with ("InvalidParameterException", "list-clusters --no-paginate --next-token garbage");
}
END_TEST

/* The agent may create its cluster (as ECS's instance role may) and nothing else of the kind. */
START_TEST (test_agent_profile_cannot_call_cluster_actions)
{
  setenv ("AWS_PROFILE", "agent", 1);
  cJSON_Delete (aws_ok ("create-cluster --cluster-name mine"));
  aws_fails_with ("AccessDeniedException", "list-clusters");
  aws_fails_with ("AccessDeniedException", "delete-cluster --cluster mine");
  setenv ("AWS_PROFILE", "admin", 1);
  cJSON *j = aws_ok ("list-clusters");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (j, "clusterArns")), 1);
  cJSON_Delete (j);
}
END_TEST

START_TEST (test_wrong_secret_or_unknown_key_is_refused)
{
  _cleanup_free_ char *id = credential ("admin", "aws_access_key_id"), *text = NULL;
  ck_assert_int_ge (asprintf (&text,
                              "[forged]\naws_access_key_id = %s\n"
                              "aws_secret_access_key = 0000000000000000000000000000000000000000\n"
                              "[stranger]\naws_access_key_id = BKIA0000000000000000\n"
                              "aws_secret_access_key = 0000000000000000000000000000000000000000\n",
                              id),
                    0);
  _cleanup_free_ char *path = write_body ("forged-credentials", text, strlen (text));
  setenv ("AWS_SHARED_CREDENTIALS_FILE", path, 1);
  setenv ("AWS_PROFILE", "forged", 1);
  aws_fails_with ("InvalidSignatureException", "create-cluster --cluster-name forged");
  setenv ("AWS_PROFILE", "stranger", 1);
  aws_fails_with ("UnrecognizedClientException", "list-clusters");
}
END_TEST

START_TEST (test_unsigned_malformed_oversized_and_unknown_requests_are_refused)
{
  _cleanup_free_ char *ok = write_body ("ok.json", "{}", 2);
  _cleanup_free_ char *bad = write_body ("bad.json", "{\"clusterName\": [", 17);
  char *out = curl_post (false, "ListClusters", ok);
  ck_assert_msg (strstr (out, "MissingAuthenticationTokenException") && strstr (out, " 403"), "%s",
                 out);
  free (out);
  out = curl_post (true, "CreateCluster", bad);
  ck_assert_msg (strstr (out, "\"SerializationException\"") && strstr (out, " 400"), "%s", out);
  free (out);
  out = curl_post (true, "LaunchRockets", ok);
  ck_assert_msg (strstr (out, "\"UnknownOperationException\"") && strstr (out, " 400"), "%s", out);
  free (out);
  size_t big_len = 2 * 1024 * 1024;
  _cleanup_free_ char *big_body = malloc (big_len);
  memset (big_body, ' ', big_len);
  _cleanup_free_ char *big = write_body ("big.json", big_body, big_len);
  out = curl_post (true, "ListClusters", big);
  ck_assert_msg (strstr (out, " 413"), "%s", out);
  free (out);
  /* Still serving after all of that. */
  out = curl_post (true, "ListClusters", ok);
  ck_assert_msg (strstr (out, "{\"clusterArns\":[]} 200"), "%s", out);
  free (out);
}
END_TEST

START_TEST (test_cluster_survives_kill_9_right_after_create_returned)
{
  cJSON_Delete (aws_ok ("create-cluster --cluster-name durable"));
  int status = server_signal (SIGKILL);
  ck_assert (WIFSIGNALED (status));
  server_start ();
  cJSON *j = aws_ok ("describe-clusters --clusters durable");
  ck_assert_int_eq (cJSON_GetArraySize (cJSON_GetObjectItem (j, "failures")), 0);
  ck_assert_str_eq (
      jstr (cJSON_GetArrayItem (cJSON_GetObjectItem (j, "clusters"), 0), "status", NULL), "ACTIVE");
  cJSON_Delete (j);
}
END_TEST

/* Under ASan a leak in any request path makes the exit status non-zero, so this also proves
 * the served requests freed what they allocated. */
START_TEST (test_sigterm_stops_the_server_cleanly_after_serving)
{
  cJSON_Delete (aws_ok ("create-cluster --cluster-name before-stop --tags key=k,value=v"));
  cJSON_Delete (
      aws_ok ("describe-clusters --clusters before-stop missing --include TAGS SETTINGS"));
  cJSON_Delete (aws_ok ("list-clusters --max-results 1"));
  aws_fails_with ("InvalidParameterException", "create-cluster --cluster-name 'x y'");
  int status = server_signal (SIGTERM);
  ck_assert (WIFEXITED (status));
  ck_assert_int_eq (WEXITSTATUS (status), 0);
}
END_TEST

START_TEST (test_plaintext_on_a_non_loopback_address_is_refused)
{
  _cleanup_free_ char *bin = ts_bin ("berth-control"), *out = NULL, *dir = ts_mkdtemp ("cp-lo");
  char *argv[] = { bin, "--data-dir", dir, "--listen", "0.0.0.0:1", NULL };
  int status;
  ck_assert_int_eq (ts_run (argv, &out, &status), 0);
  ck_assert_int_eq (ts_exit_code (status), 1);
  ck_assert_msg (strstr (out, "--allow-insecure-listen"), "%s", out);
  ts_rmtree (dir);
}
END_TEST

static Suite *controlplane_suite (void)
{
  Suite *s = suite_create ("controlplane-integration");
  TCase *tc = tcase_create ("aws-cli");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 180);
  tcase_add_test (tc, test_first_start_writes_0600_credentials_with_admin_and_agent_profiles);
  tcase_add_test (tc, test_aws_cli_creates_describes_and_deletes_clusters);
  tcase_add_test (tc, test_aws_cli_paginates_list_clusters);
  tcase_add_test (tc, test_agent_profile_cannot_call_cluster_actions);
  tcase_add_test (tc, test_wrong_secret_or_unknown_key_is_refused);
  tcase_add_test (tc, test_unsigned_malformed_oversized_and_unknown_requests_are_refused);
  tcase_add_test (tc, test_cluster_survives_kill_9_right_after_create_returned);
  tcase_add_test (tc, test_sigterm_stops_the_server_cleanly_after_serving);
  tcase_add_test (tc, test_plaintext_on_a_non_loopback_address_is_refused);
  suite_add_tcase (s, tc);
  return s;
}

int main (void)
{
  return ts_run_suite (controlplane_suite ());
}
