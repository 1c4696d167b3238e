/* Registry client (Docker Registry HTTP API v2 / OCI distribution) over libcurl: manifests and
 * blobs with sha256 verification, anonymous, basic and bearer-token auth, retries. */
#include "images/images.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_MANIFEST_BYTES (4u << 20)
#define MAX_ERROR_BODY (64u << 10)
#define MAX_TOKEN_BODY (1u << 20)
#define DEFAULT_TOKEN_TTL_S 60

static const char ACCEPT_MANIFESTS[] = "Accept: application/vnd.oci.image.manifest.v1+json, "
                                       "application/vnd.oci.image.index.v1+json, "
                                       "application/vnd.docker.distribution.manifest.v2+json, "
                                       "application/vnd.docker.distribution.manifest.list.v2+json";

struct cred
{
  char *registry, *user, *password;
};

struct token
{
  char *registry, *scope, *value;
  struct timespec expires; /* CLOCK_MONOTONIC */
};

struct img_registry
{
  struct img_registry_opts o;
  char *ca_file;
  char **insecure;
  char *docker_config; /* contents, or NULL */
  size_t docker_config_len;
  struct cred *creds;
  size_t n_creds;
  struct token *tokens;
  size_t n_tokens;
  /* Guards creds and tokens: a pull fetches layers from several threads at once. */
  pthread_mutex_t lock;
};

/* ---- small helpers --------------------------------------------------------------------- */

static void free_strv (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

static void cred_clear (struct cred *c)
{
  free (c->registry);
  free (c->user);
  if (c->password)
    explicit_bzero (c->password, strlen (c->password));
  free (c->password);
}

const char *img_host_arch (void)
{
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__arm__)
  return "arm";
#elif defined(__i386__)
  return "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "unknown";
#endif
}

static void now_mono (struct timespec *ts)
{
  clock_gettime (CLOCK_MONOTONIC, ts);
}

static int sha256_hex (EVP_MD_CTX *md, char out[72], berr **err)
{
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex (md, d, &n) != 1 || n != 32)
    return berr_make (err, EIO, "sha256 failed");
  memcpy (out, "sha256:", 7);
  for (unsigned i = 0; i < 32; i++)
    snprintf (out + 7 + 2 * i, 3, "%02x", d[i]);
  return 0;
}

static int sha256_buf (const void *buf, size_t len, char out[72], berr **err)
{
  EVP_MD_CTX *md = EVP_MD_CTX_new ();
  int r = -1;
  if (md == NULL || EVP_DigestInit_ex (md, EVP_sha256 (), NULL) != 1
      || EVP_DigestUpdate (md, buf, len) != 1)
    r = berr_make (err, EIO, "sha256 failed");
  else
    r = sha256_hex (md, out, err);
  EVP_MD_CTX_free (md);
  return r;
}

/* The host part of "host[:port]" or "[v6]:port", newly allocated. */
static char *registry_host (const char *registry)
{
  if (registry[0] == '[')
    {
      const char *end = strchr (registry, ']');
      return end ? strndup (registry + 1, (size_t)(end - registry - 1)) : strdup (registry);
    }
  const char *colon = strchr (registry, ':');
  return colon ? strndup (registry, (size_t)(colon - registry)) : strdup (registry);
}

/* Docker allows plain http to loopback registries without configuration; so do we. */
static bool host_is_loopback (const char *host)
{
  struct in_addr a4;
  struct in6_addr a6;
  if (strcmp (host, "localhost") == 0)
    return true;
  if (inet_pton (AF_INET, host, &a4) == 1)
    return (ntohl (a4.s_addr) >> 24) == 127;
  if (inet_pton (AF_INET6, host, &a6) == 1)
    return IN6_IS_ADDR_LOOPBACK (&a6);
  return false;
}

static bool registry_plain_http (const struct img_registry *r, const char *registry)
{
  _cleanup_free_ char *host = registry_host (registry);
  if (host && host_is_loopback (host))
    return true;
  for (size_t i = 0; r->insecure && r->insecure[i]; i++)
    if (strcmp (r->insecure[i], registry) == 0 || (host && strcmp (r->insecure[i], host) == 0))
      return true;
  return false;
}

/* ---- client lifetime --------------------------------------------------------------------- */

static int load_docker_config (struct img_registry *r, const char *path, berr **err)
{
  if (bfs_read_all (AT_FDCWD, path, 1u << 20, &r->docker_config, &r->docker_config_len, err) == 0)
    return 0;
  if (berr_errno (*err) == ENOENT)
    {
      berr_free (err);
      return 0;
    }
  return berr_wrap (err, "docker config");
}

int img_registry_new (const struct img_registry_opts *opts, struct img_registry **out, berr **err)
{
  static const struct img_registry_opts none = { 0 };
  /* Reference-counted by libcurl; must run before any other thread uses curl. */
  if (curl_global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return berr_make (err, EIO, "curl_global_init failed");
  struct img_registry *r = calloc (1, sizeof *r);
  if (r == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  r->o = opts ? *opts : none;
  pthread_mutex_init (&r->lock, NULL);
  if (r->o.connect_timeout_s <= 0)
    r->o.connect_timeout_s = 30;
  if (r->o.low_speed_time_s <= 0)
    r->o.low_speed_time_s = 60;
  if (r->o.low_speed_limit <= 0)
    r->o.low_speed_limit = 1;
  if (r->o.retries == 0)
    r->o.retries = 3;
  else if (r->o.retries < 0) /* negative: no retries */
    r->o.retries = 0;
  if (r->o.backoff_ms <= 0)
    r->o.backoff_ms = 250;
  r->ca_file = r->o.ca_file ? strdup (r->o.ca_file) : NULL;
  size_t n = 0;
  while (r->o.insecure && r->o.insecure[n])
    n++;
  r->insecure = calloc (n + 1, sizeof *r->insecure);
  for (size_t i = 0; r->insecure && i < n; i++)
    r->insecure[i] = strdup (r->o.insecure[i]);
  r->o.ca_file = NULL;
  r->o.insecure = NULL;
  r->o.docker_config = NULL;
  if (r->insecure == NULL
      || (opts && opts->docker_config && load_docker_config (r, opts->docker_config, err) < 0))
    {
      if (r->insecure == NULL)
        berr_make (err, ENOMEM, "out of memory");
      img_registry_free (r);
      return -1;
    }
  *out = r;
  return 0;
}

void img_registry_free (struct img_registry *r)
{
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->n_creds; i++)
    cred_clear (&r->creds[i]);
  for (size_t i = 0; i < r->n_tokens; i++)
    {
      free (r->tokens[i].registry);
      free (r->tokens[i].scope);
      free (r->tokens[i].value);
    }
  free (r->creds);
  free (r->tokens);
  free (r->ca_file);
  free_strv (r->insecure);
  free (r->docker_config);
  pthread_mutex_destroy (&r->lock);
  free (r);
}

/* Replaces the registry's entry when there is one, so a pull per task with the task's
 * repositoryCredentials does not grow the list. */
static int set_credentials_locked (struct img_registry *r, const char *registry,
                                   const char *username, const char *password, berr **err)
{
  struct cred n = { strdup (registry), strdup (username), strdup (password) };
  if (!n.registry || !n.user || !n.password)
    {
      cred_clear (&n);
      return berr_make (err, ENOMEM, "out of memory");
    }
  for (size_t i = 0; i < r->n_creds; i++)
    if (strcmp (r->creds[i].registry, registry) == 0)
      {
        cred_clear (&r->creds[i]);
        r->creds[i] = n;
        return 0;
      }
  struct cred *c = reallocarray (r->creds, r->n_creds + 1, sizeof *c);
  if (c == NULL)
    {
      cred_clear (&n);
      return berr_make (err, ENOMEM, "out of memory");
    }
  r->creds = c;
  r->creds[r->n_creds++] = n;
  return 0;
}

int img_registry_set_credentials (struct img_registry *r, const char *registry,
                                  const char *username, const char *password, berr **err)
{
  pthread_mutex_lock (&r->lock);
  int ret = set_credentials_locked (r, registry, username, password, err);
  pthread_mutex_unlock (&r->lock);
  return ret;
}

/* Explicit credentials first, then the docker config. Returns 1 when found. */
static int find_creds (struct img_registry *r, const char *registry, char **user, char **pass,
                       berr **err)
{
  pthread_mutex_lock (&r->lock);
  for (size_t i = r->n_creds; i-- > 0;)
    if (strcmp (r->creds[i].registry, registry) == 0)
      {
        *user = strdup (r->creds[i].user);
        *pass = strdup (r->creds[i].password);
        pthread_mutex_unlock (&r->lock);
        return (*user && *pass) ? 1 : berr_make (err, ENOMEM, "out of memory");
      }
  pthread_mutex_unlock (&r->lock);
  if (r->docker_config == NULL)
    return 0;
  return img_docker_config_lookup (r->docker_config, r->docker_config_len, registry, user, pass,
                                   err);
}

/* ---- docker config.json ---------------------------------------------------------------------- */

/* Whether an "auths" key names registry: "host[:port]", with an optional scheme and path
 * ("https://index.docker.io/v1/"); Docker Hub goes by several names. */
static bool auth_key_matches (const char *key, const char *registry)
{
  const char *k = key;
  if (strncmp (k, "https://", 8) == 0)
    k += 8;
  else if (strncmp (k, "http://", 7) == 0)
    k += 7;
  size_t n = strcspn (k, "/");
  if (strlen (registry) == n && strncmp (k, registry, n) == 0)
    return true;
  static const char *const hub[] = { "registry-1.docker.io", "index.docker.io", "docker.io" };
  bool key_hub = false, reg_hub = false;
  for (size_t i = 0; i < 3; i++)
    {
      key_hub |= strlen (hub[i]) == n && strncmp (k, hub[i], n) == 0;
      reg_hub |= strcmp (registry, hub[i]) == 0;
    }
  return key_hub && reg_hub;
}

static int decode_auth (const char *b64, char **user, char **pass, berr **err)
{
  size_t len = strlen (b64);
  if (len == 0 || len % 4 != 0 || len > 8192)
    return berr_make (err, EINVAL, "docker config: \"auth\" is not base64");
  _cleanup_free_ unsigned char *out = malloc (len / 4 * 3 + 1);
  if (out == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  int n = EVP_DecodeBlock (out, (const unsigned char *)b64, (int)len);
  if (n < 0)
    return berr_make (err, EINVAL, "docker config: \"auth\" is not base64");
  if (len >= 2 && b64[len - 1] == '=')
    n -= b64[len - 2] == '=' ? 2 : 1;
  out[n] = 0;
  char *colon = memchr (out, ':', (size_t)n);
  if (colon == NULL || memchr (out, 0, (size_t)n) != NULL)
    {
      explicit_bzero (out, (size_t)n);
      return berr_make (err, EINVAL, "docker config: \"auth\" is not user:password");
    }
  *user = strndup ((char *)out, (size_t)(colon - (char *)out));
  *pass = strdup (colon + 1);
  explicit_bzero (out, (size_t)n);
  return (*user && *pass) ? 1 : berr_make (err, ENOMEM, "out of memory");
}

static int entry_creds (const cJSON *e, char **user, char **pass, berr **err)
{
  const char *auth = NULL, *u = NULL, *p = NULL;
  if (bjson_get_str (e, "auth", false, &auth, err) < 0
      || bjson_get_str (e, "username", false, &u, err) < 0
      || bjson_get_str (e, "password", false, &p, err) < 0)
    return berr_wrap (err, "docker config");
  if (auth && *auth)
    return decode_auth (auth, user, pass, err);
  if (u == NULL || p == NULL)
    return 0;
  *user = strdup (u);
  *pass = strdup (p);
  return (*user && *pass) ? 1 : berr_make (err, ENOMEM, "out of memory");
}

int img_docker_config_lookup (const char *json, size_t len, const char *registry, char **user,
                              char **password, berr **err)
{
  __attribute__ ((cleanup (bjson_deletep))) cJSON *root = NULL;
  const cJSON *auths = NULL;
  *user = *password = NULL;
  if (bjson_parse (json, len, &root, err) < 0)
    return berr_wrap (err, "docker config");
  if (!cJSON_IsObject (root))
    return berr_make (err, EINVAL, "docker config: not a JSON object");
  if (bjson_get_obj (root, "auths", false, &auths, err) < 0)
    return berr_wrap (err, "docker config");
  const cJSON *e = NULL;
  cJSON_ArrayForEach (e, auths)
  {
    if (e->string == NULL || !auth_key_matches (e->string, registry))
      continue;
    if (!cJSON_IsObject (e))
      return berr_make (err, EINVAL, "docker config: auths entry for `%s` is not an object",
                        registry);
    int r = entry_creds (e, user, password, err);
    if (r != 0)
      return r;
  }
  return 0;
}

/* ---- WWW-Authenticate ------------------------------------------------------------------------ */

static const char *skip_ws (const char *p)
{
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

/* One auth-param value: a token or a quoted-string with backslash escapes. */
static char *parse_value (const char **pp)
{
  const char *p = *pp;
  size_t cap = strlen (p) + 1, n = 0;
  char *v = malloc (cap);
  if (v == NULL)
    return NULL;
  if (*p == '"')
    {
      for (p++; *p && *p != '"'; p++)
        {
          if (*p == '\\' && p[1])
            p++;
          v[n++] = *p;
        }
      if (*p != '"')
        {
          free (v);
          return NULL;
        }
      p++;
    }
  else
    while (*p && *p != ',' && *p != ' ' && *p != '\t')
      v[n++] = *p++;
  v[n] = 0;
  *pp = p;
  return v;
}

static int set_param (struct img_auth_challenge *c, const char *name, size_t n, char *value)
{
  char **slot = NULL;
  if (n == 5 && strncasecmp (name, "realm", 5) == 0)
    slot = &c->realm;
  else if (n == 7 && strncasecmp (name, "service", 7) == 0)
    slot = &c->service;
  else if (n == 5 && strncasecmp (name, "scope", 5) == 0)
    slot = &c->scope;
  if (slot == NULL || *slot != NULL)
    {
      free (value);
      return 0;
    }
  *slot = value;
  return 0;
}

int img_auth_challenge_parse (const char *header, struct img_auth_challenge *out, berr **err)
{
  memset (out, 0, sizeof *out);
  const char *p = skip_ws (header);
  size_t n = strcspn (p, " \t,=");
  if (n == 0 || p[n] == '=')
    return berr_make (err, EINVAL, "WWW-Authenticate: no auth scheme");
  out->scheme = strndup (p, n);
  if (out->scheme == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  p = skip_ws (p + n);
  while (*p)
    {
      const char *name = p;
      size_t nl = strcspn (p, " \t,=");
      p = skip_ws (p + nl);
      if (nl == 0 || *p != '=')
        break; /* a second challenge or junk: the first one is what we use */
      p = skip_ws (p + 1);
      char *v = parse_value (&p);
      if (v == NULL)
        {
          img_auth_challenge_clear (out);
          return berr_make (err, EINVAL, "WWW-Authenticate: unterminated quoted value");
        }
      set_param (out, name, nl, v);
      p = skip_ws (p);
      if (*p == ',')
        p = skip_ws (p + 1);
    }
  return 0;
}

void img_auth_challenge_clear (struct img_auth_challenge *c)
{
  free (c->scheme);
  free (c->realm);
  free (c->service);
  free (c->scope);
  memset (c, 0, sizeof *c);
}

/* ---- one HTTP exchange --------------------------------------------------------------------- */

/* What a request needs and what its response left. The HTTP part is kept to http_perform so a
 * curl multi handle driven by the agent's loop can replace it later. */
struct xfer
{
  const char *url;
  const char *accept;      /* a full "Accept: ..." header or NULL */
  const char *bearer;      /* token or NULL */
  const char *user, *pass; /* basic credentials or NULL */
  bool plain_http;
  /* body sink: buffered (max) or streamed into fd with a sha256 */
  int fd;
  size_t max;
  EVP_MD_CTX *md;
  /* results */
  long status;
  char *body;
  size_t len;
  uint64_t written;
  int write_errno;
  bool too_big;
  char *content_type, *docker_digest, *www_auth;
  char curl_err[CURL_ERROR_SIZE];
};

static void xfer_reset (struct xfer *x)
{
  free (x->body);
  free (x->content_type);
  free (x->docker_digest);
  free (x->www_auth);
  x->body = x->content_type = x->docker_digest = x->www_auth = NULL;
  x->len = 0;
  x->status = 0;
  x->too_big = false;
  x->write_errno = 0;
  x->curl_err[0] = 0;
}

static bool status_ok (long s)
{
  return s >= 200 && s < 300;
}

static int append_body (struct xfer *x, const char *data, size_t n, size_t max)
{
  if (x->len + n > max)
    {
      x->too_big = true;
      return -1;
    }
  char *b = realloc (x->body, x->len + n + 1);
  if (b == NULL)
    return -1;
  memcpy (b + x->len, data, n);
  x->len += n;
  b[x->len] = 0;
  x->body = b;
  return 0;
}

static int write_all (int fd, const char *p, size_t n)
{
  while (n > 0)
    {
      ssize_t w = write (fd, p, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return -errno;
      p += w;
      n -= (size_t)w;
    }
  return 0;
}

static size_t on_body (char *data, size_t size, size_t nmemb, void *arg)
{
  struct xfer *x = arg;
  size_t n = size * nmemb;
  if (!status_ok (x->status))
    {
      /* An error body only explains the error: keep its start, never fail on it. */
      size_t keep = x->len < MAX_ERROR_BODY ? MAX_ERROR_BODY - x->len : 0;
      if (keep > 0)
        append_body (x, data, n < keep ? n : keep, MAX_ERROR_BODY);
      return n;
    }
  if (x->fd < 0)
    return append_body (x, data, n, x->max) < 0 ? 0 : n;
  if (EVP_DigestUpdate (x->md, data, n) != 1)
    return 0;
  int r = write_all (x->fd, data, n);
  if (r < 0)
    {
      x->write_errno = -r;
      return 0;
    }
  x->written += n;
  return n;
}

static char *header_value (const char *line, size_t n, const char *name)
{
  size_t nl = strlen (name);
  if (n <= nl || strncasecmp (line, name, nl) != 0 || line[nl] != ':')
    return NULL;
  const char *v = line + nl + 1, *end = line + n;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  return strndup (v, (size_t)(end - v));
}

static void keep_header (char **slot, char *v)
{
  if (v == NULL)
    return;
  free (*slot);
  *slot = v;
}

/* Records the headers of the final response (a redirect's headers are dropped on the next
 * status line), and its status so on_body knows where the body goes. */
static size_t on_header (char *line, size_t size, size_t nmemb, void *arg)
{
  struct xfer *x = arg;
  size_t n = size * nmemb;
  if (n >= 5 && strncmp (line, "HTTP/", 5) == 0)
    {
      free (x->content_type);
      free (x->docker_digest);
      free (x->www_auth);
      free (x->body); /* a redirect's body */
      x->content_type = x->docker_digest = x->www_auth = x->body = NULL;
      x->len = 0;
      const char *sp = memchr (line, ' ', n);
      x->status = sp ? strtol (sp + 1, NULL, 10) : 0;
      return n;
    }
  keep_header (&x->content_type, header_value (line, n, "Content-Type"));
  keep_header (&x->docker_digest, header_value (line, n, "Docker-Content-Digest"));
  if (x->www_auth == NULL)
    x->www_auth = header_value (line, n, "WWW-Authenticate");
  return n;
}

static void setup_tls_and_timeouts (CURL *c, const struct img_registry *r, struct xfer *x)
{
  curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT, r->o.connect_timeout_s);
  /* Inactivity, not total time: a big layer on a slow link is fine while bytes move. */
  curl_easy_setopt (c, CURLOPT_LOW_SPEED_LIMIT, r->o.low_speed_limit);
  curl_easy_setopt (c, CURLOPT_LOW_SPEED_TIME, r->o.low_speed_time_s);
  curl_easy_setopt (c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt (c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (r->ca_file)
    curl_easy_setopt (c, CURLOPT_CAINFO, r->ca_file);
  /* Blob redirects (to object storage) are followed; a custom Authorization header is not
   * sent to another host (curl >= 7.58 without CURLOPT_UNRESTRICTED_AUTH). */
  curl_easy_setopt (c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt (c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, x->plain_http ? "http,https" : "https");
  curl_easy_setopt (c, CURLOPT_REDIR_PROTOCOLS_STR, x->plain_http ? "http,https" : "https");
  curl_easy_setopt (c, CURLOPT_ERRORBUFFER, x->curl_err);
  curl_easy_setopt (c, CURLOPT_USERAGENT, "berth");
}

/* Performs one request. Returns 0 with x->status set, or -1 on a transport error (with
 * *transient telling whether a retry may help). */
static int http_perform (const struct img_registry *r, struct xfer *x, bool *transient, berr **err)
{
  CURL *c = curl_easy_init ();
  struct curl_slist *h = NULL;
  _cleanup_free_ char *auth = NULL;
  *transient = false;
  if (c == NULL)
    return berr_make (err, ENOMEM, "curl_easy_init failed");
  setup_tls_and_timeouts (c, r, x);
  curl_easy_setopt (c, CURLOPT_URL, x->url);
  if (x->accept)
    h = curl_slist_append (h, x->accept);
  if (x->bearer && asprintf (&auth, "Authorization: Bearer %s", x->bearer) >= 0)
    h = curl_slist_append (h, auth);
  else if (x->user && x->pass)
    {
      curl_easy_setopt (c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
      curl_easy_setopt (c, CURLOPT_USERNAME, x->user);
      curl_easy_setopt (c, CURLOPT_PASSWORD, x->pass);
    }
  curl_easy_setopt (c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt (c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt (c, CURLOPT_HEADERDATA, x);
  curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt (c, CURLOPT_WRITEDATA, x);
  CURLcode rc = curl_easy_perform (c);
  curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &x->status);
  curl_slist_free_all (h);
  curl_easy_cleanup (c);
  if (auth)
    explicit_bzero (auth, strlen (auth));
  if (rc == CURLE_OK)
    return 0;
  if (x->write_errno)
    return berr_sysn (err, x->write_errno, "GET %s: writing the body", x->url);
  if (x->too_big)
    return berr_make (err, EFBIG, "GET %s: response larger than %zu bytes", x->url, x->max);
  *transient = rc != CURLE_WRITE_ERROR && rc != CURLE_SSL_CACERT_BADFILE
               && rc != CURLE_PEER_FAILED_VERIFICATION && rc != CURLE_UNSUPPORTED_PROTOCOL;
  return berr_make (err, EIO, "GET %s: %s", x->url,
                    x->curl_err[0] ? x->curl_err : curl_easy_strerror (rc));
}

/* ---- errors from the registry --------------------------------------------------------------- */

/* "manifest unknown (MANIFEST_UNKNOWN)" from the v2 error body, or the HTTP status. */
static int registry_error (struct xfer *x, const char *what, berr **err)
{
  __attribute__ ((cleanup (bjson_deletep))) cJSON *j = NULL;
  berr *ignored = NULL;
  const char *code = NULL, *msg = NULL;
  if (x->body && bjson_parse (x->body, x->len, &j, &ignored) == 0)
    {
      const cJSON *errs = cJSON_GetObjectItemCaseSensitive (j, "errors");
      const cJSON *e0 = cJSON_IsArray (errs) ? cJSON_GetArrayItem (errs, 0) : NULL;
      const cJSON *c = e0 ? cJSON_GetObjectItemCaseSensitive (e0, "code") : NULL;
      const cJSON *m = e0 ? cJSON_GetObjectItemCaseSensitive (e0, "message") : NULL;
      code = cJSON_IsString (c) ? c->valuestring : NULL;
      msg = cJSON_IsString (m) ? m->valuestring : NULL;
    }
  berr_free (&ignored);
  int errnum = x->status == 404 ? ENOENT : x->status == 401 || x->status == 403 ? EACCES : EIO;
  if (msg || code)
    return berr_make (err, errnum, "%s: HTTP %ld: %s%s%s%s", what, x->status, msg ? msg : "",
                      code ? " (" : "", code ? code : "", code ? ")" : "");
  return berr_make (err, errnum, "%s: HTTP %ld", what, x->status);
}

/* ---- tokens ---------------------------------------------------------------------------------- */

/* A copy of the cached, unexpired token (newly allocated), or NULL. A copy, because another
 * thread may replace the cached one while this request is out. */
static char *token_find (struct img_registry *r, const char *registry, const char *scope)
{
  struct timespec now;
  char *value = NULL;
  now_mono (&now);
  pthread_mutex_lock (&r->lock);
  for (size_t i = 0; i < r->n_tokens; i++)
    if (strcmp (r->tokens[i].registry, registry) == 0 && strcmp (r->tokens[i].scope, scope) == 0)
      {
        if (r->tokens[i].expires.tv_sec > now.tv_sec && r->tokens[i].value)
          value = strdup (r->tokens[i].value);
        break;
      }
  pthread_mutex_unlock (&r->lock);
  return value;
}

static int token_store_locked (struct img_registry *r, const char *registry, const char *scope,
                               const char *value, int64_t ttl, berr **err)
{
  struct token *t = NULL;
  for (size_t i = 0; i < r->n_tokens && t == NULL; i++)
    if (strcmp (r->tokens[i].registry, registry) == 0 && strcmp (r->tokens[i].scope, scope) == 0)
      t = &r->tokens[i];
  if (t == NULL)
    {
      t = reallocarray (r->tokens, r->n_tokens + 1, sizeof *t);
      if (t == NULL)
        return berr_make (err, ENOMEM, "out of memory");
      r->tokens = t;
      t = &r->tokens[r->n_tokens++];
      t->registry = strdup (registry);
      t->scope = strdup (scope);
      t->value = NULL;
    }
  free (t->value);
  t->value = strdup (value);
  now_mono (&t->expires);
  /* Renew a little early so a token does not expire between the check and the request. */
  t->expires.tv_sec += ttl > 10 ? ttl - 5 : ttl;
  if (!t->registry || !t->scope || !t->value)
    return berr_make (err, ENOMEM, "out of memory");
  return 0;
}

static int token_store (struct img_registry *r, const char *registry, const char *scope,
                        const char *value, int64_t ttl, berr **err)
{
  pthread_mutex_lock (&r->lock);
  int ret = token_store_locked (r, registry, scope, value, ttl, err);
  pthread_mutex_unlock (&r->lock);
  return ret;
}

static char *token_url (CURL *esc, const struct img_auth_challenge *ch, const char *scope)
{
  char *svc = ch->service ? curl_easy_escape (esc, ch->service, 0) : NULL;
  char *sc = curl_easy_escape (esc, scope, 0);
  char *url = NULL;
  const char *sep = strchr (ch->realm, '?') ? "&" : "?";
  if (sc
      && asprintf (&url, "%s%s%s%s%sscope=%s", ch->realm, sep, svc ? "service=" : "",
                   svc ? svc : "", svc ? "&" : "", sc)
             < 0)
    url = NULL;
  curl_free (svc);
  curl_free (sc);
  return url;
}

static int token_parse (struct xfer *x, const char **value, int64_t *ttl, cJSON **j, berr **err)
{
  *ttl = DEFAULT_TOKEN_TTL_S;
  if (bjson_parse (x->body ? x->body : "", x->len, j, err) < 0)
    return berr_wrap (err, "token response");
  if (bjson_get_str (*j, "token", false, value, err) < 0
      || (*value == NULL && bjson_get_str (*j, "access_token", false, value, err) < 0)
      || bjson_get_int (*j, "expires_in", false, 1, 86400 * 365, ttl, err) < 0)
    return berr_wrap (err, "token response");
  if (*value == NULL || **value == 0)
    return berr_make (err, EINVAL, "token response: no token");
  return 0;
}

/* Fetches a bearer token for scope from the challenge's realm (with basic credentials when we
 * have them) and caches it. */
static int token_fetch (struct img_registry *r, const char *registry,
                        const struct img_auth_challenge *ch, const char *scope, const char *user,
                        const char *pass, berr **err)
{
  if (ch->realm == NULL || strncmp (ch->realm, "http", 4) != 0)
    return berr_make (err, EINVAL, "registry `%s`: bearer challenge without a usable realm",
                      registry);
  CURL *esc = curl_easy_init ();
  _cleanup_free_ char *url = esc ? token_url (esc, ch, scope) : NULL;
  curl_easy_cleanup (esc);
  if (url == NULL)
    return berr_make (err, ENOMEM, "out of memory");
  _cleanup_free_ char *realm_host = NULL;
  CURLU *u = curl_url ();
  char *host = NULL;
  if (u && curl_url_set (u, CURLUPART_URL, ch->realm, 0) == CURLUE_OK
      && curl_url_get (u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
    realm_host = strdup (host);
  curl_free (host);
  curl_url_cleanup (u);
  struct xfer x = { .url = url, .user = user, .pass = pass, .fd = -1, .max = MAX_TOKEN_BODY };
  x.plain_http
      = realm_host && (host_is_loopback (realm_host) || registry_plain_http (r, realm_host));
  bool transient;
  int ret = http_perform (r, &x, &transient, err);
  if (ret == 0 && !status_ok (x.status))
    ret = registry_error (&x, "token request", err);
  __attribute__ ((cleanup (bjson_deletep))) cJSON *j = NULL;
  const char *value = NULL;
  int64_t ttl = 0;
  if (ret == 0 && token_parse (&x, &value, &ttl, &j, err) == 0)
    ret = token_store (r, registry, scope, value, ttl, err);
  else if (ret == 0)
    ret = -1;
  if (x.body)
    explicit_bzero (x.body, x.len);
  xfer_reset (&x);
  return ret < 0 ? berr_wrap (err, "registry `%s`: bearer token", registry) : 0;
}

/* ---- authenticated requests with retries ----------------------------------------------------- */

struct auth_state
{
  char *user, *pass;
  char scope[512];
  bool use_basic;
  int rounds;
};

static void auth_state_clear (struct auth_state *a)
{
  if (a->pass)
    explicit_bzero (a->pass, strlen (a->pass));
  free (a->user);
  free (a->pass);
}

/* Before a retry: drop the last response and start the body sink over. A streamed body can be
 * restarted only on a regular file (truncated back) or when nothing was written yet. */
static int xfer_rewind (struct xfer *x, off_t start, berr **err)
{
  xfer_reset (x);
  if (x->fd < 0)
    return 0;
  if (x->written > 0)
    {
      if (start < 0)
        return berr_make (err, EIO, "GET %s: interrupted after %" PRIu64 " bytes", x->url,
                          x->written);
      if (lseek (x->fd, start, SEEK_SET) < 0 || ftruncate (x->fd, start) < 0)
        return berr_sys (err, "GET %s: rewinding the output", x->url);
    }
  x->written = 0;
  if (EVP_DigestInit_ex (x->md, EVP_sha256 (), NULL) != 1)
    return berr_make (err, EIO, "sha256 init failed");
  return 0;
}

/* A 401: answers the challenge (a fresh bearer token, or basic credentials) and returns 1 to
 * retry, 0 when there is nothing more to try. */
static int answer_challenge (struct img_registry *r, const char *registry, struct xfer *x,
                             struct auth_state *a, berr **err)
{
  struct img_auth_challenge ch;
  if (a->rounds >= 2 || x->www_auth == NULL)
    return 0;
  a->rounds++;
  berr *ignored = NULL;
  if (img_auth_challenge_parse (x->www_auth, &ch, &ignored) < 0)
    {
      berr_free (&ignored);
      return 0;
    }
  int ret = 0;
  if (strcasecmp (ch.scheme, "Bearer") == 0)
    ret = token_fetch (r, registry, &ch, a->scope, a->user, a->pass, err) < 0 ? -1 : 1;
  else if (strcasecmp (ch.scheme, "Basic") == 0 && a->user && !a->use_basic)
    ret = a->use_basic = true;
  img_auth_challenge_clear (&ch);
  return ret;
}

static void backoff (const struct img_registry *r, int attempt)
{
  long ms = r->o.backoff_ms << (attempt < 10 ? attempt : 10);
  struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
  while (nanosleep (&ts, &ts) < 0 && errno == EINTR)
    ;
}

static int request_loop (struct img_registry *r, const struct img_ref *ref, struct xfer *x,
                         struct auth_state *a, berr **err)
{
  struct stat st;
  off_t start = -1;
  if (x->fd >= 0 && fstat (x->fd, &st) == 0 && S_ISREG (st.st_mode))
    start = lseek (x->fd, 0, SEEK_CUR);
  for (int attempt = 0;;)
    {
      _cleanup_free_ char *bearer = token_find (r, ref->registry, a->scope);
      x->bearer = bearer;
      x->user = a->use_basic ? a->user : NULL;
      x->pass = a->use_basic ? a->pass : NULL;
      bool transient = false;
      int ret = http_perform (r, x, &transient, err);
      x->bearer = NULL;
      if (bearer)
        explicit_bzero (bearer, strlen (bearer));
      if (ret < 0 && !(transient && attempt < r->o.retries))
        return -1;
      if (ret == 0 && x->status == 401)
        {
          int more = answer_challenge (r, ref->registry, x, a, err);
          if (more < 0)
            return -1;
          if (more == 0)
            return 0;
        }
      else if (ret < 0 || (x->status >= 500 && attempt < r->o.retries))
        {
          if (ret < 0)
            {
              blog_msg (BLOG_WARN, "%s (retrying)", (*err)->msg);
              berr_free (err);
            }
          backoff (r, attempt++);
        }
      else
        return 0;
      if (xfer_rewind (x, start, err) < 0)
        return -1;
    }
}

/* GETs path under ref's repository; a non-2xx final status is turned into an error. */
static int registry_get (struct img_registry *r, const struct img_ref *ref, const char *path,
                         struct xfer *x, const char *what, berr **err)
{
  _cleanup_free_ char *url = NULL;
  struct auth_state a = { 0 };
  x->plain_http = registry_plain_http (r, ref->registry);
  if (asprintf (&url, "%s://%s/v2/%s/%s", x->plain_http ? "http" : "https", ref->registry,
                ref->repository, path)
      < 0)
    return berr_make (err, ENOMEM, "out of memory");
  x->url = url;
  snprintf (a.scope, sizeof a.scope, "repository:%s:pull", ref->repository);
  int ret = find_creds (r, ref->registry, &a.user, &a.pass, err);
  if (ret >= 0)
    ret = request_loop (r, ref, x, &a, err);
  if (ret == 0 && !status_ok (x->status))
    ret = registry_error (x, what, err);
  auth_state_clear (&a);
  x->url = NULL;
  return ret < 0 ? berr_wrap (err, "registry `%s`", ref->registry) : 0;
}

/* ---- manifests ------------------------------------------------------------------------------- */

void img_fetched_manifest_clear (struct img_fetched_manifest *m)
{
  free (m->body);
  free (m->content_type);
  free (m->digest);
  img_manifest_free (m->manifest);
  memset (m, 0, sizeof *m);
}

static int check_manifest (const char *reference, struct xfer *x, struct img_fetched_manifest *out,
                           berr **err)
{
  char digest[72];
  if (sha256_buf (x->body ? x->body : "", x->len, digest, err) < 0)
    return -1;
  if (strchr (reference, ':') && strcmp (reference, digest) != 0)
    return berr_make (err, EBADMSG, "manifest %s: digest mismatch: got %s", reference, digest);
  /* By tag, the registry's own digest must agree with the bytes too. */
  if (x->docker_digest && strncmp (x->docker_digest, "sha256:", 7) == 0
      && strcmp (x->docker_digest, digest) != 0)
    return berr_make (err, EBADMSG, "manifest %s: digest mismatch: registry says %s, got %s",
                      reference, x->docker_digest, digest);
  _cleanup_free_ char *ct
      = x->content_type ? strndup (x->content_type, strcspn (x->content_type, "; \t")) : NULL;
  if (img_manifest_parse (ct, x->body ? x->body : "", x->len, &out->manifest, err) < 0)
    return berr_wrap (err, "manifest %s", reference);
  out->body = steal_ptr (&x->body);
  out->len = x->len;
  out->content_type = steal_ptr (&x->content_type);
  out->digest = strdup (digest);
  return out->digest ? 0 : berr_make (err, ENOMEM, "out of memory");
}

int img_registry_get_manifest (struct img_registry *r, const struct img_ref *ref,
                               const char *reference, struct img_fetched_manifest *out, berr **err)
{
  memset (out, 0, sizeof *out);
  if (strchr (reference, ':') && !img_digest_valid (reference))
    return berr_make (err, EINVAL, "manifest `%s`: unsupported digest", reference);
  if (reference[0] == 0 || strchr (reference, '/') || strchr (reference, '?'))
    return berr_make (err, EINVAL, "manifest `%s`: not a tag or digest", reference);
  _cleanup_free_ char *path = NULL, *what = NULL;
  if (asprintf (&path, "manifests/%s", reference) < 0
      || asprintf (&what, "manifest %s:%s", ref->repository, reference) < 0)
    return berr_make (err, ENOMEM, "out of memory");
  struct xfer x = { .accept = ACCEPT_MANIFESTS, .fd = -1, .max = MAX_MANIFEST_BYTES };
  int ret = registry_get (r, ref, path, &x, what, err);
  if (ret == 0 && check_manifest (reference, &x, out, err) < 0)
    {
      img_fetched_manifest_clear (out);
      ret = berr_wrap (err, "registry `%s`", ref->registry);
    }
  xfer_reset (&x);
  return ret;
}

int img_registry_resolve (struct img_registry *r, const struct img_ref *ref,
                          struct img_fetched_manifest *out, berr **err)
{
  const char *reference = ref->digest ? ref->digest : ref->tag ? ref->tag : "latest";
  if (img_registry_get_manifest (r, ref, reference, out, err) < 0)
    return -1;
  if (out->manifest->kind == IMG_MANIFEST_IMAGE)
    return 0;
  const struct img_descriptor *d = NULL;
  struct img_fetched_manifest index = *out;
  memset (out, 0, sizeof *out);
  int ret = img_index_select (index.manifest, "linux", img_host_arch (), NULL, &d, err);
  if (ret == 0)
    ret = img_registry_get_manifest (r, ref, d->digest, out, err);
  if (ret == 0 && (out->manifest->kind != IMG_MANIFEST_IMAGE || (int64_t)out->len != d->size))
    {
      ret = berr_make (err, EBADMSG,
                       "registry `%s`: index entry %s is not an image manifest of "
                       "%" PRId64 " bytes",
                       ref->registry, d->digest, d->size);
      img_fetched_manifest_clear (out);
    }
  img_fetched_manifest_clear (&index);
  return ret;
}

/* ---- blobs ----------------------------------------------------------------------------------- */

int img_registry_get_blob (struct img_registry *r, const struct img_ref *ref, const char *digest,
                           int fd, uint64_t *size, berr **err)
{
  if (!img_digest_valid (digest))
    return berr_make (err, EINVAL, "blob `%s`: unsupported digest", digest);
  _cleanup_free_ char *path = NULL, *what = NULL;
  if (asprintf (&path, "blobs/%s", digest) < 0
      || asprintf (&what, "blob %s@%s", ref->repository, digest) < 0)
    return berr_make (err, ENOMEM, "out of memory");
  struct xfer x = { .fd = fd, .md = EVP_MD_CTX_new () };
  if (x.md == NULL || EVP_DigestInit_ex (x.md, EVP_sha256 (), NULL) != 1)
    {
      EVP_MD_CTX_free (x.md);
      return berr_make (err, ENOMEM, "sha256 init failed");
    }
  char got[72];
  int ret = registry_get (r, ref, path, &x, what, err);
  if (ret == 0)
    ret = sha256_hex (x.md, got, err);
  if (ret == 0 && strcmp (got, digest) != 0)
    ret = berr_make (err, EBADMSG, "registry `%s`: %s: digest mismatch: expected %s, got %s",
                     ref->registry, what, digest, got);
  if (ret == 0 && size)
    *size = x.written;
  EVP_MD_CTX_free (x.md);
  xfer_reset (&x);
  return ret;
}
