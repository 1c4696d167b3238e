/* The scripted HTTP(S) server of script.h, on libmicrohttpd's own thread. */
#include "tests/support/script.h"
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

typedef struct upload
{
  char *data;
  size_t len;
} upload;

static void script_record (ts_script *s, const char *target, const upload *u, size_t *answer)
{
  pthread_mutex_lock (&s->lock);
  *answer = s->calls < s->n_answers ? s->calls : s->n_answers - 1;
  if (s->calls < TS_SCRIPT_MAX_CALLS)
    {
      s->targets[s->calls] = strdup (target ? target : "");
      s->bodies[s->calls] = strdup (u->data ? u->data : "");
    }
  s->calls++;
  pthread_mutex_unlock (&s->lock);
}

static enum MHD_Result on_request (void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *data,
                                   size_t *size, void **state)
{
  ts_script *s = cls;
  upload *u = *state;
  size_t i;
  if (u == NULL)
    {
      *state = calloc (1, sizeof *u);
      return *state ? MHD_YES : MHD_NO;
    }
  if (*size)
    {
      char *d = realloc (u->data, u->len + *size + 1);
      if (d == NULL)
        return MHD_NO;
      memcpy (d + u->len, data, *size);
      u->data = d;
      u->len += *size;
      d[u->len] = '\0';
      *size = 0;
      return MHD_YES;
    }
  script_record (s, MHD_lookup_connection_value (c, MHD_HEADER_KIND, "X-Amz-Target"), u, &i);
  struct MHD_Response *r = MHD_create_response_from_buffer (
      strlen (s->answers[i].body), (void *)s->answers[i].body, MHD_RESPMEM_PERSISTENT);
  MHD_add_response_header (r, "Content-Type", "application/x-amz-json-1.1");
  enum MHD_Result ret = MHD_queue_response (c, s->answers[i].status, r);
  MHD_destroy_response (r);
  return ret;
}

static void on_completed (void *cls, struct MHD_Connection *c, void **state,
                          enum MHD_RequestTerminationCode code)
{
  upload *u = *state;
  if (u)
    free (u->data);
  free (u);
  *state = NULL;
}

void ts_script_start (ts_script *s, const ts_answer *answers, size_t n, const char *cert_pem,
                      const char *key_pem)
{
  memset (s, 0, sizeof *s);
  pthread_mutex_init (&s->lock, NULL);
  s->answers = answers;
  s->n_answers = n;
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | (cert_pem ? MHD_USE_TLS : 0);
  if (cert_pem)
    s->d = MHD_start_daemon (flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                             (struct sockaddr *)&a, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                             MHD_OPTION_HTTPS_MEM_CERT, cert_pem, MHD_OPTION_HTTPS_MEM_KEY, key_pem,
                             MHD_OPTION_END);
  else
    s->d = MHD_start_daemon (flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                             (struct sockaddr *)&a, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                             MHD_OPTION_END);
  ck_assert_ptr_nonnull (s->d);
  s->port = MHD_get_daemon_info (s->d, MHD_DAEMON_INFO_BIND_PORT)->port;
}

void ts_script_stop (ts_script *s)
{
  MHD_stop_daemon (s->d);
  for (size_t i = 0; i < TS_SCRIPT_MAX_CALLS; i++)
    {
      free (s->targets[i]);
      free (s->bodies[i]);
    }
  pthread_mutex_destroy (&s->lock);
}
