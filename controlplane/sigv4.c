/* AWS Signature Version 4 verification for the ECS API: rebuild the canonical request from what
 * arrived, derive the signing key from the stored secret and compare in constant time. */
#include "controlplane/internal.h"
#include "lib/cleanup.h"
#include "lib/log.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_SERVICE "ecs"
/* AWS refuses signatures dated more than 15 minutes away from its clock; so do we. */
#define SIGV4_MAX_SKEW (15 * 60)

typedef struct sigv4_auth
{
  char access_key_id[64];
  char date[16]; /* YYYYMMDD */
  char region[64];
  char service[32];
  char terminator[32];
  char signed_headers[1024];
  char signature[80];
} sigv4_auth;

static void hex (const unsigned char *in, size_t len, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++)
    {
      out[2 * i] = digits[in[i] >> 4];
      out[2 * i + 1] = digits[in[i] & 15];
    }
  out[2 * len] = '\0';
}

static void sha256_hex (const void *data, size_t len, char out[65])
{
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest (data, len, md, &n, EVP_sha256 (), NULL);
  hex (md, 32, out);
}

static void hmac (const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
  unsigned char md[32];
  unsigned int n = 32;
  HMAC (EVP_sha256 (), key, (int)keylen, (const unsigned char *)msg, strlen (msg), md, &n);
  memcpy (out, md, 32); /* out may be the key */
}

char *cp_uri_encode (const char *s, bool keep_slash)
{
  size_t len = strlen (s);
  char *out = malloc (3 * len + 1), *p = out;
  if (out == NULL)
    return NULL;
  for (; *s; s++)
    {
      unsigned char c = (unsigned char)*s;
      if (isalnum (c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/'))
        *p++ = (char)c;
      else
        p += sprintf (p, "%%%02X", c);
    }
  *p = '\0';
  return out;
}

/* Copies the value of `name=` up to the next comma into out; false when absent or too long. */
static bool auth_field (const char *params, const char *name, char *out, size_t size)
{
  size_t nlen = strlen (name);
  for (const char *p = params; *p;)
    {
      while (*p == ' ' || *p == ',')
        p++;
      const char *end = strchr (p, ',');
      size_t len = end ? (size_t)(end - p) : strlen (p);
      if (len > nlen && strncmp (p, name, nlen) == 0 && p[nlen] == '=')
        {
          size_t vlen = len - nlen - 1;
          while (vlen > 0 && p[nlen + 1 + vlen - 1] == ' ')
            vlen--;
          if (vlen == 0 || vlen >= size)
            return false;
          memcpy (out, p + nlen + 1, vlen);
          out[vlen] = '\0';
          return true;
        }
      p += len;
    }
  return false;
}

static int parse_authorization (const char *value, sigv4_auth *a, cp_fault *fault)
{
  char credential[256];
  size_t alen = strlen (SIGV4_ALGORITHM);
  if (strncmp (value, SIGV4_ALGORITHM, alen) != 0 || value[alen] != ' ')
    return cp_fail (fault, "IncompleteSignatureException",
                    "Authorization header must use the " SIGV4_ALGORITHM " algorithm.");
  const char *params = value + alen;
  if (!auth_field (params, "Credential", credential, sizeof credential)
      || !auth_field (params, "SignedHeaders", a->signed_headers, sizeof a->signed_headers)
      || !auth_field (params, "Signature", a->signature, sizeof a->signature))
    return cp_fail (fault, "IncompleteSignatureException",
                    "Authorization header requires 'Credential', 'SignedHeaders' and "
                    "'Signature' parameters.");
  /* Credential=AKID/YYYYMMDD/region/service/aws4_request */
  char *parts[5], *save = NULL;
  int n = 0;
  for (char *t = strtok_r (credential, "/", &save); t && n < 5; t = strtok_r (NULL, "/", &save))
    parts[n++] = t;
  if (n != 5 || strtok_r (NULL, "/", &save) != NULL || strlen (parts[0]) >= sizeof a->access_key_id
      || strlen (parts[1]) != 8 || strlen (parts[2]) >= sizeof a->region
      || strlen (parts[3]) >= sizeof a->service || strlen (parts[4]) >= sizeof a->terminator)
    return cp_fail (fault, "IncompleteSignatureException",
                    "Credential must have the form <key>/<date>/<region>/<service>/aws4_request.");
  strcpy (a->access_key_id, parts[0]);
  strcpy (a->date, parts[1]);
  strcpy (a->region, parts[2]);
  strcpy (a->service, parts[3]);
  strcpy (a->terminator, parts[4]);
  return 0;
}

/* Trims the ends and folds runs of spaces, as the canonical form of a header value asks. */
static void append_trimmed (FILE *f, const char *v)
{
  while (*v == ' ' || *v == '\t')
    v++;
  bool space = false;
  for (; *v; v++)
    {
      if (*v == ' ' || *v == '\t')
        {
          space = true;
          continue;
        }
      if (space)
        fputc (' ', f);
      space = false;
      fputc (*v, f);
    }
}

/* The canonical request's headers block; fails when a signed header is missing or host is not
 * signed (a signature must bind the request to this endpoint). */
static int canonical_headers (const cp_http_request *req, const char *signed_headers, FILE *f,
                              cp_fault *fault)
{
  _cleanup_free_ char *list = strdup (signed_headers);
  bool host = false;
  char *save = NULL;
  if (list == NULL)
    return cp_fail (fault, "ServerException", "out of memory");
  for (char *h = strtok_r (list, ";", &save); h; h = strtok_r (NULL, ";", &save))
    {
      for (char *c = h; *c; c++)
        if (isupper ((unsigned char)*c))
          return cp_fail (fault, "IncompleteSignatureException",
                          "SignedHeaders must be lower case.");
      _cleanup_free_ char *value = req->header (req->cls, h);
      if (value == NULL)
        return cp_fail (fault, "IncompleteSignatureException",
                        "Signed header '%.64s' is missing from the request.", h);
      host |= strcmp (h, "host") == 0;
      fprintf (f, "%s:", h);
      append_trimmed (f, value);
      fputc ('\n', f);
    }
  if (!host)
    return cp_fail (fault, "IncompleteSignatureException", "The host header must be signed.");
  return 0;
}

/* Builds the string to sign; *out is newly allocated. */
static int string_to_sign (const cp_http_request *req, const sigv4_auth *a, const char *amz_date,
                           char **out, cp_fault *fault)
{
  _cleanup_free_ char *creq = NULL, *path = cp_uri_encode (req->path, true);
  size_t creq_len = 0;
  char payload[65], creq_hash[65];
  FILE *f = open_memstream (&creq, &creq_len);
  if (f == NULL || path == NULL)
    {
      if (f)
        fclose (f);
      return cp_fail (fault, "ServerException", "out of memory");
    }
  sha256_hex (req->body ? req->body : "", req->body_len, payload);
  fprintf (f, "%s\n%s\n%s\n", req->method, path, req->canonical_query);
  int r = canonical_headers (req, a->signed_headers, f, fault);
  fprintf (f, "\n%s\n%s", a->signed_headers, payload);
  if (fclose (f) != 0 || r < 0)
    return r < 0 ? r : cp_fail (fault, "ServerException", "out of memory");
  sha256_hex (creq, creq_len, creq_hash);
  if (asprintf (out, SIGV4_ALGORITHM "\n%s\n%s/%s/%s/%s\n%s", amz_date, a->date, a->region,
                a->service, a->terminator, creq_hash)
      < 0)
    return cp_fail (fault, "ServerException", "out of memory");
  return 0;
}

static void signature_hex (const char *secret, const sigv4_auth *a, const char *sts, char out[65])
{
  unsigned char k[32];
  char key[128];
  int n = snprintf (key, sizeof key, "AWS4%s", secret);
  hmac (key, (size_t)n, a->date, k);
  hmac (k, 32, a->region, k);
  hmac (k, 32, a->service, k);
  hmac (k, 32, "aws4_request", k);
  hmac (k, 32, sts, k);
  hex (k, 32, out);
  explicit_bzero (key, sizeof key);
}

/* X-Amz-Date must be well formed, on the scope's day and within the allowed skew of now. */
static int check_date (const char *amz_date, const sigv4_auth *a, time_t now, cp_fault *fault)
{
  struct tm tm = { 0 };
  const char *end = amz_date ? strptime (amz_date, "%Y%m%dT%H%M%SZ", &tm) : NULL;
  if (end == NULL || *end != '\0')
    return cp_fail (fault, "IncompleteSignatureException",
                    "Authorization header requires a valid 'X-Amz-Date' header.");
  if (strncmp (amz_date, a->date, 8) != 0)
    return cp_fail (fault, "InvalidSignatureException",
                    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                    "date from HTTP: '%s' != '%.8s'",
                    a->date, amz_date);
  time_t signed_at = timegm (&tm);
  if (signed_at < now - SIGV4_MAX_SKEW || signed_at > now + SIGV4_MAX_SKEW)
    return cp_fail (fault, "InvalidSignatureException",
                    "Signature expired: %s is now earlier or later than the server's time by "
                    "more than 15 min.",
                    amz_date);
  return 0;
}

int cp_sigv4_verify (cp_store *store, const cp_http_request *req, const char *region, time_t now,
                     enum cp_role *role, cp_fault *fault)
{
  char key[32];
  return cp_sigv4_authenticate (store, req, region, now, role, key, fault);
}

int cp_sigv4_authenticate (cp_store *store, const cp_http_request *req, const char *region,
                           time_t now, enum cp_role *role, char access_key_id[32], cp_fault *fault)
{
  _cleanup_free_ char *authorization = req->header (req->cls, "authorization");
  _cleanup_free_ char *amz_date = req->header (req->cls, "x-amz-date");
  _cleanup_free_ char *sts = NULL;
  sigv4_auth a;
  cp_credential cred;
  berr *err = NULL;
  char expected[65];

  if (authorization == NULL)
    return cp_fail (fault, "MissingAuthenticationTokenException", "Missing Authentication Token");
  if (parse_authorization (authorization, &a, fault) < 0)
    return -1;
  int found = cp_store_find_credential (store, a.access_key_id, &cred, &err);
  if (found < 0)
    return cp_fail_server (fault, &err);
  if (found == 0)
    return cp_fail (fault, "UnrecognizedClientException",
                    "The security token included in the request is invalid.");
  if (strcmp (a.service, SIGV4_SERVICE) != 0)
    return cp_fail (fault, "InvalidSignatureException",
                    "Credential should be scoped to correct service: '" SIGV4_SERVICE "'.");
  if (strcmp (a.region, region) != 0)
    return cp_fail (fault, "InvalidSignatureException",
                    "Credential should be scoped to a valid region, not '%.64s'.", a.region);
  if (strcmp (a.terminator, "aws4_request") != 0)
    return cp_fail (fault, "InvalidSignatureException",
                    "Credential should be scoped with a valid terminator: 'aws4_request'.");
  if (check_date (amz_date, &a, now, fault) < 0
      || string_to_sign (req, &a, amz_date, &sts, fault) < 0)
    return -1;
  signature_hex (cred.secret, &a, sts, expected);
  explicit_bzero (cred.secret, sizeof cred.secret);
  /* Constant time: a timing side channel must not reveal how many leading bytes matched. */
  if (strlen (a.signature) != 64 || CRYPTO_memcmp (a.signature, expected, 64) != 0)
    return cp_fail (fault, "InvalidSignatureException",
                    "The request signature we calculated does not match the signature you "
                    "provided. Check your AWS Secret Access Key and signing method.");
  *role = cred.role;
  snprintf (access_key_id, 32, "%s", cred.access_key_id);
  return 0;
}
