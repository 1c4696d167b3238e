/* The berth-control benchmarks' client side (bench/cpclient.h): server start, credentials,
 * signed calls. */
#include "cpclient.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

size_t cpc_on_data (char *data, size_t size, size_t nmemb, void *cls)
{
  cpc_buf *b = cls;
  char *g = realloc (b->p, b->n + size * nmemb + 1);
  if (g == NULL)
    return 0;
  memcpy (g + b->n, data, size * nmemb);
  b->p = g;
  b->n += size * nmemb;
  b->p[b->n] = '\0';
  return size * nmemb;
}

int64_t cpc_now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

cJSON *cpc_call (cpc_api *a, const char *action, const char *body, int64_t *ns)
{
  char target[128];
  cpc_buf b = { 0 };
  long code = 0;
  struct curl_slist *h = NULL;
  snprintf (target, sizeof target, "X-Amz-Target: AmazonEC2ContainerServiceV20141113.%s", action);
  h = curl_slist_append (h, "Content-Type: application/x-amz-json-1.1");
  h = curl_slist_append (h, target);
  curl_easy_setopt (a->curl, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt (a->curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt (a->curl, CURLOPT_WRITEDATA, &b);
  int64_t t0 = cpc_now_ns ();
  CURLcode rc = curl_easy_perform (a->curl);
  if (ns)
    *ns = cpc_now_ns () - t0;
  curl_slist_free_all (h);
  curl_easy_getinfo (a->curl, CURLINFO_RESPONSE_CODE, &code);
  cJSON *j = rc == CURLE_OK && code == 200 ? cJSON_Parse (b.p ? b.p : "") : NULL;
  if (j == NULL)
    fprintf (stderr, "%s: %s: %s %ld %s\n", a->prog, action, curl_easy_strerror (rc), code,
             b.p ? b.p : "");
  free (b.p);
  return j;
}

int cpc_api_init (cpc_api *a, const char *prog, int port, const char *key, const char *secret)
{
  a->prog = prog;
  snprintf (a->url, sizeof a->url, "http://127.0.0.1:%d/", port);
  snprintf (a->userpwd, sizeof a->userpwd, "%s:%s", key, secret);
  if ((a->curl = curl_easy_init ()) == NULL)
    return -1;
  curl_easy_setopt (a->curl, CURLOPT_URL, a->url);
  curl_easy_setopt (a->curl, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:ecs");
  curl_easy_setopt (a->curl, CURLOPT_USERPWD, a->userpwd);
  curl_easy_setopt (a->curl, CURLOPT_WRITEFUNCTION, cpc_on_data);
  curl_easy_setopt (a->curl, CURLOPT_TIMEOUT, 30L);
  return 0;
}

int cpc_free_port (void)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof sa;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind (fd, (struct sockaddr *)&sa, sizeof sa) < 0
      || getsockname (fd, (struct sockaddr *)&sa, &len) < 0)
    {
      if (fd >= 0)
        close (fd);
      return -1;
    }
  close (fd);
  return ntohs (sa.sin_port);
}

int cpc_read_key (const char *path, const char *profile, char key[64], char secret[96])
{
  char line[256], want[64];
  bool in = false;
  FILE *f = fopen (path, "re");
  if (f == NULL)
    return -1;
  snprintf (want, sizeof want, "[%s]", profile);
  key[0] = secret[0] = '\0';
  while (fgets (line, sizeof line, f))
    {
      line[strcspn (line, "\n")] = '\0';
      if (line[0] == '[')
        in = strcmp (line, want) == 0;
      else if (in)
        {
          sscanf (line, "aws_access_key_id = %63s", key);
          sscanf (line, "aws_secret_access_key = %95s", secret);
        }
    }
  fclose (f);
  return key[0] && secret[0] ? 0 : -1;
}

pid_t cpc_start_server (const char *bin, const char *dir, int port, const char *const *extra)
{
  char listen[64];
  const char *argv[24] = { bin, "--data-dir", dir, "--listen", listen, "--log-level", "error" };
  size_t n = 7;
  for (size_t i = 0; extra && extra[i] && n + 1 < sizeof argv / sizeof *argv; i++)
    argv[n++] = extra[i];
  snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
  pid_t pid = fork ();
  if (pid == 0)
    {
      execv (bin, (char *const *)argv);
      _exit (127);
    }
  return pid;
}
