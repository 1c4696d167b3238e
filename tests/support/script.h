/* A scripted HTTP(S) server on loopback for protocol-flow tests of clients whose real server
 * side does not exist yet: answers POSTs in a fixed order and records what was sent. */
#ifndef BERTH_TESTS_SUPPORT_SCRIPT_H
#define BERTH_TESTS_SUPPORT_SCRIPT_H

#include <pthread.h>
#include <stddef.h>

#define TS_SCRIPT_MAX_CALLS 16

typedef struct ts_answer
{
  unsigned status;
  const char *body;
} ts_answer;

typedef struct ts_script
{
  struct MHD_Daemon *d;
  int port;
  pthread_mutex_t lock;
  const ts_answer *answers; /* in order; the last one repeats */
  size_t n_answers;
  size_t calls;
  char *targets[TS_SCRIPT_MAX_CALLS]; /* X-Amz-Target of each call */
  char *bodies[TS_SCRIPT_MAX_CALLS];
} ts_script;

/* Starts the server on 127.0.0.1 (a free port in s->port); with cert_pem and key_pem (PEM
 * text), over TLS. */
void ts_script_start (ts_script *s, const ts_answer *answers, size_t n, const char *cert_pem,
                      const char *key_pem);
void ts_script_stop (ts_script *s);

#endif
