/* berth-control's store: SQLite in WAL mode with synchronous=FULL, so a write acknowledged to a
 * client is on disk; the schema is versioned and migrated forward in order at open. */
#include "controlplane/internal.h"
#include "lib/cleanup.h"
#include "lib/strv.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cp_store
{
  sqlite3 *db;
  sqlite3_stmt *put_doc[3]; /* prepared once: RunTask writes many documents */
};

/* Migration N brings the schema from version N to N+1. Append only: never edit a shipped one. */
static const char *const migrations[] = {
  /* 1: access keys and clusters */
  "CREATE TABLE credentials ("
  "  access_key_id TEXT PRIMARY KEY,"
  "  secret TEXT NOT NULL,"
  "  role TEXT NOT NULL CHECK (role IN ('admin', 'agent')),"
  "  created_at INTEGER NOT NULL);"
  "CREATE TABLE clusters ("
  "  name TEXT PRIMARY KEY,"
  "  status TEXT NOT NULL,"
  "  tags TEXT NOT NULL DEFAULT '[]',"
  "  settings TEXT NOT NULL DEFAULT '[]',"
  "  created_at INTEGER NOT NULL);",
  /* 2: task definitions, one row per revision; body is the registered definition as JSON */
  "CREATE TABLE task_definitions ("
  "  family TEXT NOT NULL,"
  "  revision INTEGER NOT NULL,"
  "  status TEXT NOT NULL,"
  "  body TEXT NOT NULL,"
  "  tags TEXT NOT NULL DEFAULT '[]',"
  "  registered_at INTEGER NOT NULL,"
  "  deregistered_at INTEGER NOT NULL DEFAULT 0,"
  "  PRIMARY KEY (family, revision));",
  /* 3: container instances and tasks, each a JSON document (controlplane/model.c) */
  "CREATE TABLE container_instances ("
  "  id TEXT PRIMARY KEY,"
  "  cluster TEXT NOT NULL,"
  "  body TEXT NOT NULL);"
  "CREATE TABLE tasks ("
  "  id TEXT PRIMARY KEY,"
  "  cluster TEXT NOT NULL,"
  "  body TEXT NOT NULL);",
  /* 4: the agent channel's message log, per instance in seqNum order (controlplane/channel.c) */
  "CREATE TABLE channel_messages ("
  "  instance TEXT NOT NULL,"
  "  seq INTEGER NOT NULL,"
  "  body TEXT NOT NULL,"
  "  PRIMARY KEY (instance, seq)) WITHOUT ROWID;",
  /* 5: services, each a JSON document (controlplane/services.c) */
  "CREATE TABLE services ("
  "  id TEXT PRIMARY KEY,"
  "  cluster TEXT NOT NULL,"
  "  body TEXT NOT NULL);",
};

static int store_fail (cp_store *store, berr **err, const char *what)
{
  return berr_make (err, EIO, "%s: %s", what, sqlite3_errmsg (store->db));
}

static int store_exec (cp_store *store, const char *sql, berr **err)
{
  char *msg = NULL;
  if (sqlite3_exec (store->db, sql, NULL, NULL, &msg) != SQLITE_OK)
    {
      berr_make (err, EIO, "sqlite: %s", msg ? msg : "error");
      sqlite3_free (msg);
      return -1;
    }
  return 0;
}

int cp_store_schema_version (cp_store *store, int *version, berr **err)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (store->db, "SELECT version FROM schema_version", -1, &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "read schema version");
  *version = sqlite3_step (st) == SQLITE_ROW ? sqlite3_column_int (st, 0) : 0;
  sqlite3_finalize (st);
  return 0;
}

/* Each migration and its version bump commit together, so a crash mid-way re-runs it whole. */
static int store_migrate (cp_store *store, berr **err)
{
  int version;
  if (store_exec (store, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                  err)
          < 0
      || cp_store_schema_version (store, &version, err) < 0)
    return berr_wrap (err, "migrate store");
  if (version > (int)ARRAY_SIZE (migrations))
    return berr_make (err, EPROTO, "store schema version %d is newer than this berth-control (%zu)",
                      version, ARRAY_SIZE (migrations));
  for (int v = version; v < (int)ARRAY_SIZE (migrations); v++)
    {
      char bump[128];
      snprintf (bump, sizeof bump,
                "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d);", v + 1);
      if (store_exec (store, "BEGIN IMMEDIATE", err) < 0)
        return berr_wrap (err, "migrate store to version %d", v + 1);
      if (store_exec (store, migrations[v], err) < 0 || store_exec (store, bump, err) < 0
          || store_exec (store, "COMMIT", err) < 0)
        {
          store_exec (store, "ROLLBACK", NULL);
          return berr_wrap (err, "migrate store to version %d", v + 1);
        }
    }
  return 0;
}

int cp_store_open (const char *path, cp_store **out, berr **err)
{
  cp_store *store = calloc (1, sizeof *store);
  if (store == NULL)
    return berr_sys (err, "allocate store");
  int flags
      = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (sqlite3_open_v2 (path, &store->db, flags, NULL) != SQLITE_OK)
    {
      berr_make (err, EIO, "open store `%s`: %s", path,
                 store->db ? sqlite3_errmsg (store->db) : "out of memory");
      cp_store_free (store);
      return -1;
    }
  /* WAL keeps readers off the writer's back; synchronous=FULL fsyncs the WAL at every commit, so
   * what a client saw acknowledged survives a crash of the host, not only of the process. */
  if (store_exec (store,
                  "PRAGMA busy_timeout=5000; PRAGMA journal_mode=WAL;"
                  "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
                  err)
          < 0
      || store_migrate (store, err) < 0)
    {
      cp_store_free (store);
      return berr_wrap (err, "open store `%s`", path);
    }
  *out = store;
  return 0;
}

void cp_store_free (cp_store *store)
{
  if (store == NULL)
    return;
  for (size_t i = 0; i < ARRAY_SIZE (store->put_doc); i++)
    sqlite3_finalize (store->put_doc[i]);
  sqlite3_close_v2 (store->db);
  free (store);
}

static int read_credential (sqlite3_stmt *st, cp_credential *out)
{
  const char *id = (const char *)sqlite3_column_text (st, 0);
  const char *secret = (const char *)sqlite3_column_text (st, 1);
  const char *role = (const char *)sqlite3_column_text (st, 2);
  if (id == NULL || secret == NULL || role == NULL || strlen (id) >= sizeof out->access_key_id
      || strlen (secret) >= sizeof out->secret)
    return -1;
  strcpy (out->access_key_id, id);
  strcpy (out->secret, secret);
  out->role = strcmp (role, "agent") == 0 ? CP_ROLE_AGENT : CP_ROLE_ADMIN;
  return 0;
}

int cp_store_find_credential (cp_store *store, const char *access_key_id, cp_credential *out,
                              berr **err)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (store->db,
                          "SELECT access_key_id, secret, role FROM credentials"
                          " WHERE access_key_id = ?",
                          -1, &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "look up access key");
  sqlite3_bind_text (st, 1, access_key_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step (st);
  int found = rc == SQLITE_ROW && read_credential (st, out) == 0;
  sqlite3_finalize (st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return store_fail (store, err, "look up access key");
  return found;
}

static int find_role_credential (cp_store *store, const char *role, cp_credential *out, berr **err)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (store->db,
                          "SELECT access_key_id, secret, role FROM credentials WHERE role = ?"
                          " ORDER BY created_at LIMIT 1",
                          -1, &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "read credentials");
  sqlite3_bind_text (st, 1, role, -1, SQLITE_STATIC);
  int found = sqlite3_step (st) == SQLITE_ROW && read_credential (st, out) == 0;
  sqlite3_finalize (st);
  return found;
}

int cp_store_add_credential (cp_store *store, const cp_credential *c, berr **err)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (store->db,
                          "INSERT INTO credentials VALUES (?, ?, ?, strftime('%s', 'now'))", -1,
                          &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "store credentials");
  sqlite3_bind_text (st, 1, c->access_key_id, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, c->secret, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, c->role == CP_ROLE_AGENT ? "agent" : "admin", -1, SQLITE_STATIC);
  int rc = sqlite3_step (st);
  sqlite3_finalize (st);
  return rc == SQLITE_DONE ? 0 : store_fail (store, err, "store credentials");
}

int cp_store_ensure_credentials (cp_store *store, cp_credential creds[2], bool *created, berr **err)
{
  int a = find_role_credential (store, "admin", &creds[0], err);
  if (a < 0)
    return -1;
  int b = find_role_credential (store, "agent", &creds[1], err);
  if (b < 0)
    return -1;
  *created = false;
  if (a && b)
    return 0;
  cp_credential fresh[2];
  if (cp_generate_credentials (fresh, err) < 0 || store_exec (store, "BEGIN IMMEDIATE", err) < 0)
    return -1;
  for (int i = 0; i < 2; i++)
    if (!(i == 0 ? a : b))
      {
        if (cp_store_add_credential (store, &fresh[i], err) < 0)
          {
            store_exec (store, "ROLLBACK", NULL);
            return -1;
          }
        creds[i] = fresh[i];
      }
  if (store_exec (store, "COMMIT", err) < 0)
    return -1;
  *created = true;
  return 0;
}

void cp_cluster_clear (cp_cluster *c)
{
  free (c->name);
  free (c->status);
  free (c->tags_json);
  free (c->settings_json);
  memset (c, 0, sizeof *c);
}

static char *column_dup (sqlite3_stmt *st, int i)
{
  const char *s = (const char *)sqlite3_column_text (st, i);
  return strdup (s ? s : "");
}

int cp_store_get_cluster (cp_store *store, const char *name, cp_cluster *out, berr **err)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (store->db,
                          "SELECT name, status, tags, settings, created_at FROM clusters"
                          " WHERE name = ?",
                          -1, &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "read cluster");
  sqlite3_bind_text (st, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      out->name = column_dup (st, 0);
      out->status = column_dup (st, 1);
      out->tags_json = column_dup (st, 2);
      out->settings_json = column_dup (st, 3);
      out->created_at = sqlite3_column_int64 (st, 4);
    }
  sqlite3_finalize (st);
  if (rc == SQLITE_DONE)
    return 0;
  if (rc != SQLITE_ROW)
    return store_fail (store, err, "read cluster");
  if (!out->name || !out->status || !out->tags_json || !out->settings_json)
    {
      cp_cluster_clear (out);
      return berr_make (err, ENOMEM, "read cluster: out of memory");
    }
  return 1;
}

int cp_store_put_cluster (cp_store *store, const cp_cluster *c, berr **err)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (store->db, "INSERT OR REPLACE INTO clusters VALUES (?, ?, ?, ?, ?)", -1,
                          &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "write cluster");
  sqlite3_bind_text (st, 1, c->name, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, c->status, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, c->tags_json ? c->tags_json : "[]", -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 4, c->settings_json ? c->settings_json : "[]", -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 5, c->created_at);
  int rc = sqlite3_step (st);
  sqlite3_finalize (st);
  return rc == SQLITE_DONE ? 0 : store_fail (store, err, "write cluster");
}

int cp_store_list_clusters (cp_store *store, const char *after, int limit, char ***names,
                            bool *more, berr **err)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (store->db,
                          "SELECT name FROM clusters WHERE status = 'ACTIVE' AND name > ?"
                          " ORDER BY name LIMIT ?",
                          -1, &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "list clusters");
  sqlite3_bind_text (st, 1, after ? after : "", -1, SQLITE_STATIC);
  sqlite3_bind_int (st, 2, limit + 1); /* one more than asked says whether a next page exists */
  char **v = calloc ((size_t)limit + 2, sizeof *v);
  int n = 0, rc = SQLITE_DONE;
  while (v && (rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      if (n == limit)
        {
          *more = true;
          break;
        }
      if ((v[n] = column_dup (st, 0)) == NULL)
        break;
      n++;
    }
  sqlite3_finalize (st);
  if (v == NULL || (rc != SQLITE_ROW && rc != SQLITE_DONE) || (rc == SQLITE_ROW && n < limit))
    {
      strv_free (v);
      return v ? store_fail (store, err, "list clusters") : berr_sys (err, "list clusters");
    }
  if (rc == SQLITE_DONE)
    *more = false;
  *names = v;
  return 0;
}

void cp_taskdef_clear (cp_taskdef *td)
{
  free (td->family);
  free (td->status);
  free (td->body_json);
  free (td->tags_json);
  memset (td, 0, sizeof *td);
}

/* The next revision is computed inside the INSERT, so two registrations of a family can never
 * get the same number (the primary key would refuse the second anyway). */
int cp_store_add_taskdef (cp_store *store, cp_taskdef *td, berr **err)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (store->db,
                          "INSERT INTO task_definitions"
                          " (family, revision, status, body, tags, registered_at)"
                          " SELECT ?1, COALESCE (MAX (revision), 0) + 1, 'ACTIVE', ?2, ?3, ?4"
                          " FROM task_definitions WHERE family = ?1 RETURNING revision",
                          -1, &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "write task definition");
  sqlite3_bind_text (st, 1, td->family, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, td->body_json, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, td->tags_json ? td->tags_json : "[]", -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 4, td->registered_at);
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      td->revision = sqlite3_column_int64 (st, 0);
      rc = sqlite3_step (st);
    }
  sqlite3_finalize (st);
  return rc == SQLITE_DONE ? 0 : store_fail (store, err, "write task definition");
}

int cp_store_get_taskdef (cp_store *store, const char *family, int64_t revision, cp_taskdef *out,
                          berr **err)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (store->db,
                          "SELECT family, revision, status, body, tags, registered_at,"
                          " deregistered_at FROM task_definitions WHERE family = ?1 AND"
                          " (?2 = revision OR (?2 = 0 AND status = 'ACTIVE'))"
                          " ORDER BY revision DESC LIMIT 1",
                          -1, &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "read task definition");
  sqlite3_bind_text (st, 1, family, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, revision);
  int rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    {
      out->family = column_dup (st, 0);
      out->revision = sqlite3_column_int64 (st, 1);
      out->status = column_dup (st, 2);
      out->body_json = column_dup (st, 3);
      out->tags_json = column_dup (st, 4);
      out->registered_at = sqlite3_column_int64 (st, 5);
      out->deregistered_at = sqlite3_column_int64 (st, 6);
    }
  sqlite3_finalize (st);
  if (rc == SQLITE_DONE)
    return 0;
  if (rc != SQLITE_ROW)
    return store_fail (store, err, "read task definition");
  if (!out->family || !out->status || !out->body_json || !out->tags_json)
    {
      cp_taskdef_clear (out);
      return berr_make (err, ENOMEM, "read task definition: out of memory");
    }
  return 1;
}

int cp_store_deregister_taskdef (cp_store *store, const char *family, int64_t revision,
                                 int64_t when, berr **err)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (store->db,
                          "UPDATE task_definitions SET status = 'INACTIVE', deregistered_at = ?3"
                          " WHERE family = ?1 AND revision = ?2 AND status = 'ACTIVE'",
                          -1, &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "deregister task definition");
  sqlite3_bind_text (st, 1, family, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, revision);
  sqlite3_bind_int64 (st, 3, when);
  int rc = sqlite3_step (st);
  sqlite3_finalize (st);
  return rc == SQLITE_DONE ? 0 : store_fail (store, err, "deregister task definition");
}

/* Steps st (whose last parameter is the row limit, bound here to limit + 1 so that one extra
 * row says whether a next page exists) and collects column 0 into a NULL-terminated vector. */
static int collect_page (cp_store *store, sqlite3_stmt *st, int limit_param, int limit, char ***out,
                         bool *more, const char *what, berr **err)
{
  sqlite3_bind_int (st, limit_param, limit + 1);
  char **v = calloc ((size_t)limit + 2, sizeof *v);
  int n = 0, rc = SQLITE_DONE;
  *more = false;
  while (v && (rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      if (n == limit)
        {
          *more = true;
          rc = SQLITE_DONE;
          break;
        }
      if ((v[n] = column_dup (st, 0)) == NULL)
        break;
      n++;
    }
  sqlite3_finalize (st);
  if (v == NULL || rc != SQLITE_DONE)
    {
      strv_free (v);
      return v ? store_fail (store, err, what) : berr_sys (err, "%s", what);
    }
  *out = v;
  return 0;
}

int cp_store_list_taskdefs (cp_store *store, const cp_taskdef_query *q, int limit, char ***out,
                            bool *more, berr **err)
{
  sqlite3_stmt *st = NULL;
  /* Row values order (family, revision) pairs; the token is the last pair of the previous page. */
  const char *asc = "SELECT family || ':' || revision FROM task_definitions"
                    " WHERE substr (family, 1, length (?1)) = ?1 AND (?2 IS NULL OR status = ?2)"
                    " AND (?3 IS NULL OR (family, revision) > (?3, ?4))"
                    " ORDER BY family, revision LIMIT ?5";
  const char *desc = "SELECT family || ':' || revision FROM task_definitions"
                     " WHERE substr (family, 1, length (?1)) = ?1 AND (?2 IS NULL OR status = ?2)"
                     " AND (?3 IS NULL OR (family, revision) < (?3, ?4))"
                     " ORDER BY family DESC, revision DESC LIMIT ?5";
  if (sqlite3_prepare_v2 (store->db, q->desc ? desc : asc, -1, &st, NULL) != SQLITE_OK)
    return store_fail (store, err, "list task definitions");
  sqlite3_bind_text (st, 1, q->prefix ? q->prefix : "", -1, SQLITE_STATIC);
  if (q->status)
    sqlite3_bind_text (st, 2, q->status, -1, SQLITE_STATIC);
  if (q->after_family)
    sqlite3_bind_text (st, 3, q->after_family, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 4, q->after_revision);
  return collect_page (store, st, 5, limit, out, more, "list task definitions", err);
}

int cp_store_list_taskdef_families (cp_store *store, const cp_taskdef_query *q, int limit,
                                    char ***out, bool *more, berr **err)
{
  sqlite3_stmt *st = NULL;
  /* ACTIVE: families with an ACTIVE revision; INACTIVE: families with none; NULL: all. */
  if (sqlite3_prepare_v2 (store->db,
                          "SELECT family FROM task_definitions"
                          " WHERE substr (family, 1, length (?1)) = ?1 AND family > ?3"
                          " GROUP BY family HAVING ?2 IS NULL"
                          " OR (?2 = 'ACTIVE' AND SUM (status = 'ACTIVE') > 0)"
                          " OR (?2 = 'INACTIVE' AND SUM (status = 'ACTIVE') = 0)"
                          " ORDER BY family LIMIT ?4",
                          -1, &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "list task definition families");
  sqlite3_bind_text (st, 1, q->prefix ? q->prefix : "", -1, SQLITE_STATIC);
  if (q->status)
    sqlite3_bind_text (st, 2, q->status, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, q->after_family ? q->after_family : "", -1, SQLITE_STATIC);
  return collect_page (store, st, 4, limit, out, more, "list task definition families", err);
}

static const char *const doc_tables[] = { "container_instances", "tasks", "services" };

int cp_store_put_doc (cp_store *store, enum cp_doc_kind kind, const char *id, const char *cluster,
                      const char *body, berr **err)
{
  sqlite3_stmt **st = &store->put_doc[kind];
  if (*st == NULL)
    {
      char sql[128];
      snprintf (sql, sizeof sql, "INSERT OR REPLACE INTO %s (id, cluster, body) VALUES (?, ?, ?)",
                doc_tables[kind]);
      if (sqlite3_prepare_v2 (store->db, sql, -1, st, NULL) != SQLITE_OK)
        return store_fail (store, err, "write document");
    }
  sqlite3_bind_text (*st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_text (*st, 2, cluster, -1, SQLITE_STATIC);
  sqlite3_bind_text (*st, 3, body, -1, SQLITE_STATIC);
  int rc = sqlite3_step (*st);
  sqlite3_reset (*st);
  sqlite3_clear_bindings (*st);
  return rc == SQLITE_DONE ? 0 : store_fail (store, err, "write document");
}

int cp_store_load_docs (cp_store *store, enum cp_doc_kind kind, cp_doc_fn fn, void *cls, berr **err)
{
  sqlite3_stmt *st = NULL;
  char sql[128];
  int rc, r = 0;
  snprintf (sql, sizeof sql, "SELECT id, cluster, body FROM %s ORDER BY rowid", doc_tables[kind]);
  if (sqlite3_prepare_v2 (store->db, sql, -1, &st, NULL) != SQLITE_OK)
    return store_fail (store, err, "load documents");
  while (r == 0 && (rc = sqlite3_step (st)) == SQLITE_ROW)
    r = fn (cls, (const char *)sqlite3_column_text (st, 0),
            (const char *)sqlite3_column_text (st, 1), (const char *)sqlite3_column_text (st, 2),
            err);
  sqlite3_finalize (st);
  if (r < 0)
    return -1;
  return rc == SQLITE_DONE ? 0 : store_fail (store, err, "load documents");
}

int cp_store_delete_doc (cp_store *store, enum cp_doc_kind kind, const char *id, berr **err)
{
  sqlite3_stmt *st = NULL;
  char sql[128];
  snprintf (sql, sizeof sql, "DELETE FROM %s WHERE id = ?", doc_tables[kind]);
  if (sqlite3_prepare_v2 (store->db, sql, -1, &st, NULL) != SQLITE_OK)
    return store_fail (store, err, "delete document");
  sqlite3_bind_text (st, 1, id, -1, SQLITE_STATIC);
  int rc = sqlite3_step (st);
  sqlite3_finalize (st);
  return rc == SQLITE_DONE ? 0 : store_fail (store, err, "delete document");
}

int cp_store_begin (cp_store *store, berr **err)
{
  return store_exec (store, "BEGIN IMMEDIATE", err);
}

int cp_store_commit (cp_store *store, berr **err)
{
  return store_exec (store, "COMMIT", err);
}

void cp_store_rollback (cp_store *store)
{
  store_exec (store, "ROLLBACK", NULL);
}

int cp_store_set_taskdef_tags (cp_store *store, const char *family, int64_t revision,
                               const char *tags_json, berr **err)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (store->db,
                          "UPDATE task_definitions SET tags = ?3 WHERE family = ?1 AND"
                          " revision = ?2",
                          -1, &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "write task definition tags");
  sqlite3_bind_text (st, 1, family, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, revision);
  sqlite3_bind_text (st, 3, tags_json, -1, SQLITE_STATIC);
  int rc = sqlite3_step (st);
  sqlite3_finalize (st);
  return rc == SQLITE_DONE ? 0 : store_fail (store, err, "write task definition tags");
}

/* ---- the channel's message log ---- */

int cp_store_chan_append (cp_store *store, const char *instance, int64_t seq, const char *body,
                          berr **err)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (store->db, "INSERT INTO channel_messages VALUES (?, ?, ?)", -1, &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "append channel message");
  sqlite3_bind_text (st, 1, instance, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, seq);
  sqlite3_bind_text (st, 3, body, -1, SQLITE_STATIC);
  int rc = sqlite3_step (st);
  sqlite3_finalize (st);
  return rc == SQLITE_DONE ? 0 : store_fail (store, err, "append channel message");
}

int cp_store_chan_last (cp_store *store, const char *instance, int64_t *last, berr **err)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (store->db, "SELECT max (seq) FROM channel_messages WHERE instance = ?",
                          -1, &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "read channel sequence");
  sqlite3_bind_text (st, 1, instance, -1, SQLITE_STATIC);
  int rc = sqlite3_step (st);
  *last = rc == SQLITE_ROW ? sqlite3_column_int64 (st, 0) : 0;
  sqlite3_finalize (st);
  return rc == SQLITE_ROW ? 0 : store_fail (store, err, "read channel sequence");
}

int cp_store_chan_list (cp_store *store, const char *instance, int64_t after, int limit,
                        cp_chan_fn fn, void *cls, berr **err)
{
  sqlite3_stmt *st = NULL;
  int rc, r = 0;
  if (sqlite3_prepare_v2 (store->db,
                          "SELECT seq, body FROM channel_messages WHERE instance = ? AND seq > ?"
                          " ORDER BY seq LIMIT ?",
                          -1, &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "read channel messages");
  sqlite3_bind_text (st, 1, instance, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, after);
  sqlite3_bind_int (st, 3, limit);
  while (r == 0 && (rc = sqlite3_step (st)) == SQLITE_ROW)
    r = fn (cls, sqlite3_column_int64 (st, 0), (const char *)sqlite3_column_text (st, 1));
  sqlite3_finalize (st);
  if (r < 0)
    return berr_make (err, ENOMEM, "read channel messages: out of memory");
  return rc == SQLITE_DONE || r > 0 ? 0 : store_fail (store, err, "read channel messages");
}

/* The newest message stays (acked or not): it remembers where the numbering is. */
int cp_store_chan_prune (cp_store *store, const char *instance, int64_t upto, berr **err)
{
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2 (store->db,
                          "DELETE FROM channel_messages WHERE instance = ?1 AND seq <= ?2 AND seq <"
                          " (SELECT max (seq) FROM channel_messages WHERE instance = ?1)",
                          -1, &st, NULL)
      != SQLITE_OK)
    return store_fail (store, err, "prune channel messages");
  sqlite3_bind_text (st, 1, instance, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, upto);
  int rc = sqlite3_step (st);
  sqlite3_finalize (st);
  return rc == SQLITE_DONE ? 0 : store_fail (store, err, "prune channel messages");
}
