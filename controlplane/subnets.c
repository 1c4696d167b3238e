/* The awsvpc subnets berth-control hands addresses from, read from the --subnets JSON file:
 * [{"subnetId": "subnet-a", "cidr": "10.0.1.0/24", "gateway": "10.0.1.1", "dns": ["10.0.1.2"]}]. */
#include "controlplane/model.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PREFIX_BITS 16 /* at most a /16: 65536 addresses, an 8 KiB bitmap */

static int parse_cidr (const char *cidr, uint32_t *net, uint32_t *size, berr **err)
{
  char addr[INET_ADDRSTRLEN];
  unsigned bits;
  struct in_addr a;
  int used = 0;
  if (sscanf (cidr, "%15[0-9.]/%u%n", addr, &bits, &used) != 2 || cidr[used] != '\0'
      || inet_pton (AF_INET, addr, &a) != 1 || bits < MAX_PREFIX_BITS || bits > 30)
    return berr_make (err, EINVAL, "subnet cidr `%s`: want A.B.C.D/N with N from %d to 30", cidr,
                      MAX_PREFIX_BITS);
  *size = 1u << (32 - bits);
  *net = ntohl (a.s_addr);
  if (*net & (*size - 1))
    return berr_make (err, EINVAL, "subnet cidr `%s`: host bits set", cidr);
  return 0;
}

static int parse_subnet (const cJSON *j, cp_subnet *s, berr **err)
{
  const char *id = NULL, *cidr = NULL, *gw = NULL;
  struct in_addr g;
  const cJSON *dns = cJSON_GetObjectItemCaseSensitive (j, "dns");
  if (!cJSON_IsObject (j))
    return berr_make (err, EINVAL, "each subnet must be an object");
  if (bjson_get_str (j, "subnetId", true, &id, err) < 0
      || bjson_get_str (j, "cidr", true, &cidr, err) < 0
      || bjson_get_str (j, "gateway", true, &gw, err) < 0)
    return -1;
  if (strncmp (id, "subnet-", 7) != 0 || strlen (id) > 64)
    return berr_make (err, EINVAL, "subnet id `%s`: want subnet-...", id);
  if (parse_cidr (cidr, &s->net, &s->size, err) < 0)
    return -1;
  if (inet_pton (AF_INET, gw, &g) != 1 || ntohl (g.s_addr) - s->net >= s->size)
    return berr_make (err, EINVAL, "subnet `%s`: gateway `%s` is not in %s", id, gw, cidr);
  if (dns && !cJSON_IsArray (dns))
    return berr_make (err, EINVAL, "subnet `%s`: dns must be a list of addresses", id);
  if ((s->id = strdup (id)) == NULL || (s->cidr = strdup (cidr)) == NULL
      || (s->gateway = strdup (gw)) == NULL
      || (s->dns = dns ? cJSON_Duplicate (dns, true) : cJSON_CreateArray ()) == NULL
      || (s->used = calloc (s->size / 8 + 1, 1)) == NULL)
    return berr_sys (err, "allocate subnet");
  return 0;
}

int cp_ctx_load_subnets (cp_ctx *ctx, const char *path, berr **err)
{
  _cleanup_json_ cJSON *j = NULL;
  const cJSON *e;
  cp_model *m = ctx->model;
  if (bjson_read_file (AT_FDCWD, path, 1024 * 1024, &j, err) < 0)
    return berr_wrap (err, "subnets file `%s`", path);
  if (!cJSON_IsArray (j))
    return berr_make (err, EINVAL, "subnets file `%s`: want a JSON list", path);
  int n = cJSON_GetArraySize (j);
  if ((m->subnets = calloc ((size_t)n + 1, sizeof *m->subnets)) == NULL)
    return berr_sys (err, "allocate subnets");
  cJSON_ArrayForEach (e, j)
  {
    cp_subnet *s = &m->subnets[m->n_subnets++];
    if (parse_subnet (e, s, err) < 0)
      return berr_wrap (err, "subnets file `%s`", path);
    for (size_t i = 0; i + 1 < m->n_subnets; i++)
      if (strcmp (m->subnets[i].id, s->id) == 0)
        return berr_make (err, EINVAL, "subnets file `%s`: `%s` twice", path, s->id);
  }
  /* Addresses of tasks that still hold them (loaded before the subnets were known). */
  for (size_t i = 0; i < m->n_task; i++)
    {
      cp_task *t = m->task[i];
      cp_subnet *s = t->holding && t->hold.subnet_id ? cp_subnet_find (m, t->hold.subnet_id) : NULL;
      if (s)
        cp_subnet_mark (s, t->hold.ip, true);
    }
  return 0;
}
