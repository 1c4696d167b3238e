/* Access keys for berth-control: generated from the kernel's CSPRNG on first start and handed
 * to users as an AWS shared-credentials file, so `aws --profile admin` works as is. */
#include "controlplane/internal.h"
#include "lib/fs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static int fill_random (unsigned char *buf, size_t len, berr **err)
{
  size_t done = 0;
  while (done < len)
    {
      ssize_t n = getrandom (buf + done, len - done, 0);
      if (n < 0 && errno != EINTR)
        return berr_sys (err, "getrandom");
      if (n > 0)
        done += (size_t)n;
    }
  return 0;
}

/* Maps random bytes onto alphabet; alphabets of 32 and 64 symbols divide 256, so no bias. */
static int random_string (char *out, size_t len, const char *alphabet, berr **err)
{
  unsigned char raw[64];
  size_t n = strlen (alphabet);
  if (len > sizeof raw || fill_random (raw, len, err) < 0)
    return -1;
  for (size_t i = 0; i < len; i++)
    out[i] = alphabet[raw[i] % n];
  out[len] = '\0';
  return 0;
}

/* Key ids look like AWS's (20 characters, upper case and digits) so that tools which check the
 * shape accept them; the secrets are 40 characters of base64's alphabet, 240 bits. */
int cp_generate_credentials (cp_credential creds[2], berr **err)
{
  static const char id_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  static const char secret_alphabet[]
      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  memset (creds, 0, 2 * sizeof *creds);
  for (int i = 0; i < 2; i++)
    {
      memcpy (creds[i].access_key_id, i == 0 ? "BKIA" : "BKAG", 4);
      if (random_string (creds[i].access_key_id + 4, 16, id_alphabet, err) < 0
          || random_string (creds[i].secret, 40, secret_alphabet, err) < 0)
        return berr_wrap (err, "generate credentials");
      creds[i].role = i == 0 ? CP_ROLE_ADMIN : CP_ROLE_AGENT;
    }
  return 0;
}

int cp_write_credentials_file (int dirfd, const cp_credential creds[2], berr **err)
{
  char buf[512];
  int n
      = snprintf (buf, sizeof buf,
                  "# berth-control access keys (generated on first start)\n"
                  "[admin]\naws_access_key_id = %s\naws_secret_access_key = %s\n\n"
                  "[agent]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
                  creds[0].access_key_id, creds[0].secret, creds[1].access_key_id, creds[1].secret);
  int r = bfs_write_atomic (dirfd, "credentials", buf, (size_t)n, 0600, err);
  explicit_bzero (buf, sizeof buf);
  return r < 0 ? berr_wrap (err, "write credentials file") : 0;
}
