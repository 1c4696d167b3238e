/* Task role credentials (berth-control --task-roles FILE): the operator's map from role ARNs to
 * access keys, in the AWS shared-credentials format, one section per role ARN. berth-control is
 * no STS: it hands the agent what the file says, with an expiration that makes it refresh. */
#include "controlplane/model.h"
#include "lib/cleanup.h"
#include "lib/fs.h"
#include "lib/json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROLES 4096

struct cp_roles
{
  cp_role_cred *v;
  size_t n;
};

static void cred_clear (cp_role_cred *c)
{
  free (c->arn);
  if (c->secret_access_key)
    explicit_bzero (c->secret_access_key, strlen (c->secret_access_key));
  if (c->session_token)
    explicit_bzero (c->session_token, strlen (c->session_token));
  free (c->access_key_id);
  free (c->secret_access_key);
  free (c->session_token);
}

void cp_roles_free (cp_roles *r)
{
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->n; i++)
    cred_clear (&r->v[i]);
  free (r->v);
  free (r);
}

static char *trim (char *s)
{
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen (s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
    s[--n] = '\0';
  return s;
}

/* One "key = value" line of the current section. Values are never quoted in messages. */
static int set_key (cp_role_cred *c, char *line, const char *path, int lineno, berr **err)
{
  char *eq = strchr (line, '=');
  if (eq == NULL)
    return berr_make (err, EINVAL, "task roles file `%s` line %d: want key = value", path, lineno);
  *eq = '\0';
  char *key = trim (line), *value = trim (eq + 1), **slot;
  if (strcmp (key, "aws_access_key_id") == 0)
    slot = &c->access_key_id;
  else if (strcmp (key, "aws_secret_access_key") == 0)
    slot = &c->secret_access_key;
  else if (strcmp (key, "aws_session_token") == 0)
    slot = &c->session_token;
  else
    return 0; /* other keys of the format (region, ...) mean nothing here */
  free (*slot);
  if ((*slot = strdup (value)) == NULL)
    return berr_sys (err, "allocate");
  return 0;
}

static int check_section (const cp_role_cred *c, const char *path, berr **err)
{
  if (c->access_key_id == NULL || c->access_key_id[0] == '\0' || c->secret_access_key == NULL
      || c->secret_access_key[0] == '\0')
    return berr_make (err, EINVAL,
                      "task roles file `%s`: [%s] needs aws_access_key_id and "
                      "aws_secret_access_key",
                      path, c->arn);
  return 0;
}

/* A section header "[arn:aws:iam::123456789012:role/name]". */
static int new_section (cp_roles *r, char *line, const char *path, int lineno, berr **err)
{
  char *end = strchr (line, ']');
  if (end == NULL || trim (end + 1)[0] != '\0')
    return berr_make (err, EINVAL, "task roles file `%s` line %d: unclosed section", path, lineno);
  *end = '\0';
  const char *arn = trim (line + 1);
  if (strncmp (arn, "arn:", 4) != 0 || strstr (arn, ":role/") == NULL || strlen (arn) > 2048)
    return berr_make (err, EINVAL, "task roles file `%s` line %d: `%s` is not a role ARN", path,
                      lineno, arn);
  for (size_t i = 0; i < r->n; i++)
    if (strcmp (r->v[i].arn, arn) == 0)
      return berr_make (err, EINVAL, "task roles file `%s`: [%s] twice", path, arn);
  if (r->n && check_section (&r->v[r->n - 1], path, err) < 0)
    return -1;
  if (r->n == MAX_ROLES)
    return berr_make (err, E2BIG, "task roles file `%s`: more than %d roles", path, MAX_ROLES);
  cp_role_cred *grown = realloc (r->v, (r->n + 1) * sizeof *grown);
  if (grown == NULL)
    return berr_sys (err, "allocate");
  r->v = grown;
  memset (&r->v[r->n], 0, sizeof *r->v);
  if ((r->v[r->n].arn = strdup (arn)) == NULL)
    return berr_sys (err, "allocate");
  r->n++;
  return 0;
}

static int parse (cp_roles *r, char *text, const char *path, berr **err)
{
  int lineno = 0;
  for (char *save = NULL, *line = strtok_r (text, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save))
    {
      char *l = trim (line);
      lineno++;
      if (l[0] == '\0' || l[0] == '#' || l[0] == ';')
        continue;
      if (l[0] == '[')
        {
          if (new_section (r, l, path, lineno, err) < 0)
            return -1;
          continue;
        }
      if (r->n == 0)
        return berr_make (err, EINVAL, "task roles file `%s` line %d: a key outside any section",
                          path, lineno);
      if (set_key (&r->v[r->n - 1], l, path, lineno, err) < 0)
        return -1;
    }
  return r->n ? check_section (&r->v[r->n - 1], path, err) : 0;
}

int cp_ctx_load_task_roles (cp_ctx *ctx, const char *path, berr **err)
{
  struct stat st;
  _cleanup_free_ char *text = NULL;
  size_t len;
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0 || fstat (fd, &st) < 0)
    return berr_sys (err, "task roles file `%s`", path);
  /* It holds secrets: refused when others could read them, like the TLS key. */
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    return berr_make (err, EPERM,
                      "task roles file `%s` is accessible by group or others (mode %04o): make "
                      "it 0600 or 0400",
                      path, (unsigned)(st.st_mode & 07777));
  if (bfs_read_fd (fd, path, 1 << 20, &text, &len, err) < 0)
    return -1;
  if (memchr (text, '\0', len))
    return berr_make (err, EINVAL, "task roles file `%s`: not text", path);
  cp_roles *r = calloc (1, sizeof *r);
  if (r == NULL)
    return berr_sys (err, "allocate");
  int ret = parse (r, text, path, err);
  explicit_bzero (text, len);
  if (ret < 0)
    {
      cp_roles_free (r);
      return -1;
    }
  cp_roles_free (ctx->roles);
  ctx->roles = r;
  return 0;
}

const cp_role_cred *cp_roles_find (const cp_ctx *ctx, const char *arn)
{
  if (ctx->roles == NULL)
    return NULL;
  for (size_t i = 0; i < ctx->roles->n; i++)
    if (strcmp (ctx->roles->v[i].arn, arn) == 0)
      return &ctx->roles->v[i];
  return NULL;
}

/* The role a task runs with: the override's if given, else the task definition's; NULL when
 * neither names one. */
static const char *role_of (const cJSON *td, const cJSON *overrides, const char *key)
{
  const char *s = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (overrides, key));
  if (s == NULL || s[0] == '\0')
    s = cJSON_GetStringValue (cJSON_GetObjectItemCaseSensitive (td, key));
  return s && s[0] ? s : NULL;
}

int cp_roles_for_task (cp_ctx *ctx, const cJSON *td, const cJSON *overrides, cJSON **out,
                       cp_fault *fault)
{
  static const char *const keys[] = { "taskRoleArn", "executionRoleArn" };
  static const char *const types[] = { "TaskApplication", "TaskExecution" };
  *out = NULL;
  if (ctx->roles == NULL)
    return 0;
  _cleanup_json_ cJSON *list = cJSON_CreateArray ();
  if (list == NULL)
    return cp_fail_oom (fault);
  for (size_t i = 0; i < ARRAY_SIZE (keys); i++)
    {
      const char *arn = role_of (td, overrides, keys[i]);
      char id[CP_ID_LEN + 1];
      if (arn == NULL)
        continue;
      /* The message ECS gives when it cannot assume the role. */
      if (cp_roles_find (ctx, arn) == NULL)
        return cp_fail (fault, "ClientException",
                        "ECS was unable to assume the role '%.300s' that was provided for this "
                        "task. Please verify that the role is named in berth-control's task "
                        "roles file.",
                        arn);
      cJSON *e = cJSON_CreateObject ();
      if (e == NULL || !cJSON_AddItemToArray (list, e) || cp_random_id (id) < 0
          || !cJSON_AddStringToObject (e, "roleType", types[i])
          || !cJSON_AddStringToObject (e, "roleArn", arn)
          || !cJSON_AddStringToObject (e, "credentialsId", id)
          || !cJSON_AddNumberToObject (e, "expiration",
                                       (double)(time (NULL) + ctx->role_duration_s)))
        return cp_fail_oom (fault);
    }
  if (cJSON_GetArraySize (list) > 0)
    *out = steal_ptr (&list);
  return 0;
}
