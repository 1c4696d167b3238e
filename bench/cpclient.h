/* What the berth-control benchmarks (bench/placement.c, bench/agents.c, bench/node.c) share: a scratch
 * berth-control on a free loopback port, its credentials, and SigV4-signed calls via libcurl. */
#ifndef BERTH_BENCH_CPCLIENT_H
#define BERTH_BENCH_CPCLIENT_H

#include <cJSON.h>
#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A response body being received. */
typedef struct cpc_buf
{
  char *p;
  size_t n;
} cpc_buf;

/* One keep-alive connection signing with one key. */
typedef struct cpc_api
{
  CURL *curl;
  char url[64];
  char userpwd[192];
  const char *prog; /* names the program in error messages */
} cpc_api;

/* CURLOPT_WRITEFUNCTION appending to the cpc_buf in CURLOPT_WRITEDATA. */
size_t cpc_on_data (char *data, size_t size, size_t nmemb, void *cls);
int64_t cpc_now_ns (void);
int cpc_free_port (void);
/* Key and secret of [profile] in the credentials file berth-control wrote; 0 or -1. */
int cpc_read_key (const char *path, const char *profile, char key[64], char secret[96]);
/* Starts bin on dir and 127.0.0.1:port, logging errors only, with extra arguments (NULL or
 * NULL-terminated); returns its pid. */
pid_t cpc_start_server (const char *bin, const char *dir, int port, const char *const *extra);
int cpc_api_init (cpc_api *a, const char *prog, int port, const char *key, const char *secret);
/* One signed ECS call; the parsed response (NULL on HTTP or transport failure, said on
 * stderr) and its latency in *ns (ns may be NULL). */
cJSON *cpc_call (cpc_api *a, const char *action, const char *body, int64_t *ns);

#endif
