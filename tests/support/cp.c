/* Test helpers for berth-control: start a real server on loopback and drive it with the real
 * aws CLI (see cp.h). */
#include "tests/support/cp.h"
#include "lib/cleanup.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static bool cp_port_accepts (void *arg)
{
  const ts_cp *cp = arg;
  struct sockaddr_in a = { .sin_family = AF_INET,
                           .sin_port = htons ((uint16_t)cp->port),
                           .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool ok = connect (fd, (struct sockaddr *)&a, sizeof a) == 0;
  close (fd);
  return ok;
}

static const char *const *extra_args;

void ts_cp_set_extra_args (const char *const *args)
{
  extra_args = args;
}

void ts_cp_start (ts_cp *cp)
{
  _cleanup_free_ char *bin = ts_bin ("berth-control");
  char listen[64], log[512], subnets[512];
  snprintf (listen, sizeof listen, "127.0.0.1:%d", cp->port);
  snprintf (log, sizeof log, "%s/log", cp->dir);
  snprintf (subnets, sizeof subnets, "%s/subnets.json", cp->dir);
  cp->pid = fork ();
  ck_assert_int_ge (cp->pid, 0);
  if (cp->pid == 0)
    {
      int fd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      dup2 (fd, 1);
      dup2 (fd, 2);
      const char *argv[16]
          = { bin, "--data-dir", cp->dir, "--listen", listen, "--log-level", "debug" };
      size_t n = 7;
      if (access (subnets, F_OK) == 0)
        argv[n++] = "--subnets", argv[n++] = subnets;
      for (size_t i = 0; extra_args && i < 4 && extra_args[i]; i++)
        argv[n++] = extra_args[i];
      execv (bin, (char *const *)argv);
      _exit (127);
    }
  ck_assert_msg (ts_wait_for (cp_port_accepts, cp, 10000), "berth-control did not listen");
}

int ts_cp_signal (ts_cp *cp, int sig)
{
  int status;
  kill (cp->pid, sig);
  ck_assert_int_eq (waitpid (cp->pid, &status, 0), cp->pid);
  cp->pid = -1;
  return status;
}

void ts_cp_setup (ts_cp *cp)
{
  char creds[512];
  cp->dir = ts_mkdtemp ("cp-test");
  cp->port = ts_free_port ();
  cp->pid = -1;
  /* The CLI must talk to nothing but this server, with only the profile the test picks. */
  unsetenv ("AWS_ACCESS_KEY_ID");
  unsetenv ("AWS_SECRET_ACCESS_KEY");
  unsetenv ("AWS_SESSION_TOKEN");
  setenv ("AWS_EC2_METADATA_DISABLED", "true", 1);
  setenv ("AWS_PAGER", "", 1);
  setenv ("AWS_CONFIG_FILE", "/dev/null", 1);
  setenv ("AWS_MAX_ATTEMPTS", "1", 1);
  setenv ("AWS_PROFILE", "admin", 1);
  snprintf (creds, sizeof creds, "%s/credentials", cp->dir);
  /* Before any test thread: curl's global state is not set up lazily in a thread-safe way. */
  curl_global_init (CURL_GLOBAL_DEFAULT);
  setenv ("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
  ts_cp_start (cp);
}

void ts_cp_teardown (ts_cp *cp)
{
  if (cp->pid > 0)
    ts_cp_signal (cp, SIGKILL);
  ts_rmtree (cp->dir);
  free (cp->dir);
  cp->dir = NULL;
}

/* *args gets the formatted arguments (newly allocated) for messages. */
static int cp_vaws (const ts_cp *cp, char **out, char **args, const char *fmt, va_list ap)
{
  _cleanup_free_ char *cmd = NULL;
  int status;
  /* Debian's aws CLI (v2), which the issue names, ahead of any other on PATH. */
  const char *bin = access ("/usr/bin/aws", X_OK) == 0 ? "/usr/bin/aws" : "aws";
  ck_assert_int_ge (vasprintf (args, fmt, ap), 0);
  ck_assert_int_ge (asprintf (&cmd,
                              "%s ecs --endpoint-url http://127.0.0.1:%d --region us-east-1 "
                              "--output json --cli-read-timeout 20 %s",
                              bin, cp->port, *args),
                    0);
  ck_assert_int_eq (ts_sh (cmd, out, &status), 0);
  return ts_exit_code (status);
}

int ts_cp_aws (const ts_cp *cp, char **out, const char *fmt, ...)
{
  _cleanup_free_ char *args = NULL;
  va_list ap;
  va_start (ap, fmt);
  int rc = cp_vaws (cp, out, &args, fmt, ap);
  va_end (ap);
  return rc;
}

cJSON *ts_cp_aws_ok (const ts_cp *cp, const char *fmt, ...)
{
  _cleanup_free_ char *out = NULL, *args = NULL;
  va_list ap;
  va_start (ap, fmt);
  int rc = cp_vaws (cp, &out, &args, fmt, ap);
  va_end (ap);
  ck_assert_msg (rc == 0, "aws ecs %s: exit %d: %s", args, rc, out ? out : "");
  cJSON *j = cJSON_Parse (out ? out : "");
  ck_assert_msg (j != NULL, "aws ecs %s: not JSON: %s", args, out ? out : "");
  return j;
}

char *ts_cp_aws_fails_with (const ts_cp *cp, const char *code, const char *fmt, ...)
{
  _cleanup_free_ char *want = NULL, *args = NULL;
  char *out = NULL;
  va_list ap;
  va_start (ap, fmt);
  int rc = cp_vaws (cp, &out, &args, fmt, ap);
  va_end (ap);
  ck_assert_int_ge (asprintf (&want, "(%s)", code), 0);
  ck_assert_msg (rc != 0 && out && strstr (out, want), "aws ecs %s: exit %d, want %s: %s", args, rc,
                 code, out ? out : "");
  return out;
}

char *ts_cp_write (const ts_cp *cp, const char *name, const char *content)
{
  char *path = NULL;
  ck_assert_int_ge (asprintf (&path, "%s/%s", cp->dir, name), 0);
  FILE *f = fopen (path, "we");
  ck_assert_ptr_nonnull (f);
  ck_assert_int_eq (fwrite (content, 1, strlen (content), f), strlen (content));
  ck_assert_int_eq (fclose (f), 0);
  return path;
}

const char *ts_json_str (const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItem (obj, key);
  return cJSON_IsString (v) ? v->valuestring : "";
}

char *ts_cp_credential (const ts_cp *cp, const char *profile, const char *key)
{
  char path[512], head[128], line[512];
  bool in = false;
  char *val = NULL;
  snprintf (path, sizeof path, "%s/credentials", cp->dir);
  snprintf (head, sizeof head, "[%s]", profile);
  FILE *f = fopen (path, "re");
  if (f == NULL)
    return NULL;
  while (val == NULL && fgets (line, sizeof line, f))
    {
      line[strcspn (line, "\r\n")] = '\0';
      if (line[0] == '[')
        in = strcmp (line, head) == 0;
      else if (in && strncmp (line, key, strlen (key)) == 0)
        {
          char *v = strchr (line, '=');
          if (v == NULL)
            continue;
          for (v++; *v == ' ';)
            v++;
          val = strdup (v);
        }
    }
  fclose (f);
  return val;
}

typedef struct ts_buf
{
  char *p;
  size_t n;
} ts_buf;

static size_t ts_on_data (char *data, size_t size, size_t nmemb, void *cls)
{
  ts_buf *b = cls;
  char *grown = realloc (b->p, b->n + size * nmemb + 1);
  if (grown == NULL)
    return 0;
  b->p = grown;
  memcpy (b->p + b->n, data, size * nmemb);
  b->n += size * nmemb;
  b->p[b->n] = '\0';
  return size * nmemb;
}

long ts_cp_call (const ts_cp *cp, const char *profile, const char *target, const char *json,
                 char **out)
{
  _cleanup_free_ char *id = ts_cp_credential (cp, profile, "aws_access_key_id");
  _cleanup_free_ char *secret = ts_cp_credential (cp, profile, "aws_secret_access_key");
  char url[64], userpwd[256], tgt[256];
  ts_buf b = { 0 };
  long status = 0;
  *out = NULL;
  CURL *c = curl_easy_init ();
  if (c == NULL || id == NULL || secret == NULL)
    {
      curl_easy_cleanup (c);
      return 0;
    }
  snprintf (url, sizeof url, "http://127.0.0.1:%d/", cp->port);
  snprintf (userpwd, sizeof userpwd, "%s:%s", id, secret);
  snprintf (tgt, sizeof tgt, "X-Amz-Target: %s", target);
  struct curl_slist *h = curl_slist_append (NULL, tgt);
  h = curl_slist_append (h, "Content-Type: application/x-amz-json-1.1");
  curl_easy_setopt (c, CURLOPT_URL, url);
  curl_easy_setopt (c, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:ecs");
  curl_easy_setopt (c, CURLOPT_USERPWD, userpwd);
  curl_easy_setopt (c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt (c, CURLOPT_POSTFIELDS, json);
  curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, ts_on_data);
  curl_easy_setopt (c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt (c, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
  if (curl_easy_perform (c) == CURLE_OK)
    curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all (h);
  curl_easy_cleanup (c);
  *out = b.p;
  return status;
}
