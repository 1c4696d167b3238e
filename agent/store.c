/* berth-agent's store: SQLite in WAL mode with synchronous=FULL, so whatever the agent acks or
 * marks sent is on disk first; versioned migrations applied in order at open. The only SQL in
 * the agent lives here. */
#include "agent/agent.h"
#include "lib/cleanup.h"
#include "lib/strv.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct agent_store
{
  sqlite3 *db;
};

/* Migration N brings the schema from version N to N+1. Append only: never edit a shipped one. */
static const char *const migrations[] = {
  /* 1: identity, tasks, containers, attachments, outbox, channel position */
  "CREATE TABLE identity ("
  "  id INTEGER PRIMARY KEY CHECK (id = 1),"
  "  cluster TEXT NOT NULL,"
  "  container_instance_arn TEXT NOT NULL);"
  "CREATE TABLE tasks ("
  "  arn TEXT PRIMARY KEY,"
  "  desired_status TEXT NOT NULL,"
  "  known_status TEXT NOT NULL,"
  "  body TEXT NOT NULL,"
  "  updated_at INTEGER NOT NULL);"
  "CREATE TABLE containers ("
  "  task_arn TEXT NOT NULL REFERENCES tasks (arn) ON DELETE CASCADE,"
  "  name TEXT NOT NULL,"
  "  runtime_id TEXT,"
  "  known_status TEXT NOT NULL,"
  "  exit_code INTEGER,"
  "  body TEXT NOT NULL,"
  "  PRIMARY KEY (task_arn, name));"
  "CREATE TABLE attachments ("
  "  arn TEXT PRIMARY KEY,"
  "  task_arn TEXT NOT NULL,"
  "  status TEXT NOT NULL,"
  "  body TEXT NOT NULL);"
  "CREATE TABLE outbox ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  task_arn TEXT NOT NULL,"
  "  kind TEXT NOT NULL CHECK (kind IN ('task', 'attachment')),"
  "  body TEXT NOT NULL,"
  "  sent INTEGER NOT NULL DEFAULT 0,"
  "  created_at INTEGER NOT NULL);"
  "CREATE INDEX outbox_unsent ON outbox (task_arn, id) WHERE sent = 0;"
  "CREATE TABLE channel ("
  "  id INTEGER PRIMARY KEY CHECK (id = 1),"
  "  acked_seq INTEGER NOT NULL);"
  "INSERT INTO channel VALUES (1, 0);",
};

static int store_fail (agent_store *s, berr **err, const char *what)
{
  return berr_make (err, EIO, "store: %s: %s", what, sqlite3_errmsg (s->db));
}

static int store_exec (agent_store *s, const char *sql, berr **err)
{
  char *msg = NULL;
  if (sqlite3_exec (s->db, sql, NULL, NULL, &msg) != SQLITE_OK)
    {
      berr_make (err, EIO, "store: %s", msg ? msg : "error");
      sqlite3_free (msg);
      return -1;
    }
  return 0;
}

static void finalizep (sqlite3_stmt **st)
{
  sqlite3_finalize (*st);
}
#define _cleanup_stmt_ __attribute__ ((cleanup (finalizep)))

/* Prepares sql and binds the text arguments (NULL binds SQL NULL) in order. */
static int prepare (agent_store *s, sqlite3_stmt **st, const char *sql, berr **err)
{
  if (sqlite3_prepare_v2 (s->db, sql, -1, st, NULL) != SQLITE_OK)
    return store_fail (s, err, "prepare");
  return 0;
}

static void bind_text (sqlite3_stmt *st, int i, const char *v)
{
  if (v)
    sqlite3_bind_text (st, i, v, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null (st, i);
}

/* Runs a statement that returns no rows. */
static int step_done (agent_store *s, sqlite3_stmt *st, const char *what, berr **err)
{
  if (sqlite3_step (st) != SQLITE_DONE)
    return store_fail (s, err, what);
  return 0;
}

static char *col_dup (sqlite3_stmt *st, int i)
{
  const char *v = (const char *)sqlite3_column_text (st, i);
  return v ? strdup (v) : NULL;
}

int agent_store_schema_version (agent_store *s, int *out, berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  if (prepare (s, &st, "SELECT version FROM schema_version", err) < 0)
    return -1;
  *out = sqlite3_step (st) == SQLITE_ROW ? sqlite3_column_int (st, 0) : 0;
  return 0;
}

/* Each migration and its version bump commit together, so a crash mid-way re-runs it whole. */
static int store_migrate (agent_store *s, berr **err)
{
  int version;
  if (store_exec (s, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", err)
          < 0
      || agent_store_schema_version (s, &version, err) < 0)
    return -1;
  if (version > (int)ARRAY_SIZE (migrations))
    return berr_make (err, EPROTO, "store schema version %d is newer than this berth-agent (%zu)",
                      version, ARRAY_SIZE (migrations));
  for (int v = version; v < (int)ARRAY_SIZE (migrations); v++)
    {
      char bump[128];
      snprintf (bump, sizeof bump,
                "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d);", v + 1);
      if (store_exec (s, "BEGIN IMMEDIATE", err) < 0)
        return -1;
      if (store_exec (s, migrations[v], err) < 0 || store_exec (s, bump, err) < 0
          || store_exec (s, "COMMIT", err) < 0)
        {
          store_exec (s, "ROLLBACK", NULL);
          return berr_wrap (err, "migrate to version %d", v + 1);
        }
    }
  return 0;
}

int agent_store_open (const char *path, agent_store **out, berr **err)
{
  agent_store *s = calloc (1, sizeof *s);
  if (s == NULL)
    return berr_sys (err, "allocate store");
  /* Created 0600 up front: the store holds task bodies with environment values. */
  int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    {
      free (s);
      return berr_sys (err, "open store `%s`", path);
    }
  close (fd);
  int flags
      = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (sqlite3_open_v2 (path, &s->db, flags, NULL) != SQLITE_OK)
    {
      berr_make (err, EIO, "open store `%s`: %s", path,
                 s->db ? sqlite3_errmsg (s->db) : "out of memory");
      agent_store_close (s);
      return -1;
    }
  /* WAL with synchronous=FULL fsyncs the WAL at every commit: an acked seqNum or a sent mark
   * survives a host crash, not only a crash of the agent. A 256 KiB page cache instead of
   * SQLite's 2 MiB: the store is about 2 KiB per task and every page of it is in the kernel's
   * page cache anyway, so a larger cache only adds to the agent's resident set (bench/README.md,
   * figure 12). */
  if (store_exec (s,
                  "PRAGMA busy_timeout=5000; PRAGMA journal_mode=WAL;"
                  "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-256;",
                  err)
          < 0
      || store_migrate (s, err) < 0)
    {
      agent_store_close (s);
      return berr_wrap (err, "open store `%s`", path);
    }
  *out = s;
  return 0;
}

void agent_store_close (agent_store *s)
{
  if (s == NULL)
    return;
  sqlite3_close_v2 (s->db);
  free (s);
}

int agent_store_begin (agent_store *s, berr **err)
{
  return store_exec (s, "BEGIN IMMEDIATE", err);
}

int agent_store_commit (agent_store *s, berr **err)
{
  return store_exec (s, "COMMIT", err);
}

void agent_store_rollback (agent_store *s)
{
  store_exec (s, "ROLLBACK", NULL);
}

/* ---- identity ---- */

int agent_store_get_identity (agent_store *s, agent_identity *out, berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  memset (out, 0, sizeof *out);
  if (prepare (s, &st, "SELECT cluster, container_instance_arn FROM identity", err) < 0)
    return -1;
  int r = sqlite3_step (st);
  if (r == SQLITE_ROW)
    {
      out->cluster = col_dup (st, 0);
      out->container_instance_arn = col_dup (st, 1);
      if (out->cluster == NULL || out->container_instance_arn == NULL)
        return agent_identity_clear (out), berr_sys (err, "allocate");
    }
  else if (r != SQLITE_DONE)
    return store_fail (s, err, "read identity");
  return 0;
}

int agent_store_set_identity (agent_store *s, const char *cluster, const char *instance_arn,
                              berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  if (prepare (s, &st, "INSERT OR REPLACE INTO identity VALUES (1, ?, ?)", err) < 0)
    return -1;
  bind_text (st, 1, cluster);
  bind_text (st, 2, instance_arn);
  return step_done (s, st, "save identity", err);
}

void agent_identity_clear (agent_identity *id)
{
  free (id->cluster);
  free (id->container_instance_arn);
  memset (id, 0, sizeof *id);
}

/* ---- tasks and containers ---- */

int agent_store_put_task (agent_store *s, const agent_task_rec *t, berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  if (prepare (s, &st,
               "INSERT INTO tasks VALUES (?, ?, ?, ?, ?) ON CONFLICT (arn) DO UPDATE SET"
               " desired_status = excluded.desired_status, known_status = excluded.known_status,"
               " body = excluded.body, updated_at = excluded.updated_at",
               err)
      < 0)
    return -1;
  bind_text (st, 1, t->arn);
  bind_text (st, 2, t->desired_status);
  bind_text (st, 3, t->known_status);
  bind_text (st, 4, t->body);
  sqlite3_bind_int64 (st, 5, (sqlite3_int64)time (NULL));
  return step_done (s, st, "save task", err);
}

static int read_task (sqlite3_stmt *st, agent_task_rec *out, berr **err)
{
  out->arn = col_dup (st, 0);
  out->desired_status = col_dup (st, 1);
  out->known_status = col_dup (st, 2);
  out->body = col_dup (st, 3);
  if (!out->arn || !out->desired_status || !out->known_status || !out->body)
    return agent_task_rec_clear (out), berr_sys (err, "allocate");
  return 0;
}

#define TASK_COLS "SELECT arn, desired_status, known_status, body FROM tasks"

int agent_store_get_task (agent_store *s, const char *arn, agent_task_rec *out, berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  memset (out, 0, sizeof *out);
  if (prepare (s, &st, TASK_COLS " WHERE arn = ?", err) < 0)
    return -1;
  bind_text (st, 1, arn);
  int r = sqlite3_step (st);
  if (r == SQLITE_DONE)
    return berr_make (err, ENOENT, "no task `%s` in the store", arn);
  if (r != SQLITE_ROW)
    return store_fail (s, err, "read task");
  return read_task (st, out, err);
}

int agent_store_list_tasks (agent_store *s, agent_task_rec **out, size_t *n, berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  agent_task_rec *v = NULL;
  size_t count = 0;
  if (prepare (s, &st, TASK_COLS " ORDER BY arn", err) < 0)
    return -1;
  int r;
  while ((r = sqlite3_step (st)) == SQLITE_ROW)
    {
      agent_task_rec *nv = reallocarray (v, count + 1, sizeof *v);
      if (nv == NULL)
        break;
      v = nv;
      memset (&v[count], 0, sizeof *v);
      if (read_task (st, &v[count], err) < 0)
        break;
      count++;
    }
  if (r != SQLITE_DONE)
    {
      for (size_t i = 0; i < count; i++)
        agent_task_rec_clear (&v[i]);
      free (v);
      return r == SQLITE_ROW ? berr_make (err, ENOMEM, "list tasks: out of memory")
                             : store_fail (s, err, "list tasks");
    }
  *out = v;
  *n = count;
  return 0;
}

int agent_store_delete_task (agent_store *s, const char *arn, berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  if (prepare (s, &st, "DELETE FROM tasks WHERE arn = ?", err) < 0)
    return -1;
  bind_text (st, 1, arn);
  return step_done (s, st, "delete task", err);
}

void agent_task_rec_clear (agent_task_rec *t)
{
  free (t->arn);
  free (t->desired_status);
  free (t->known_status);
  free (t->body);
  memset (t, 0, sizeof *t);
}

int agent_store_put_container (agent_store *s, const agent_container_rec *c, berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  if (prepare (s, &st, "INSERT OR REPLACE INTO containers VALUES (?, ?, ?, ?, ?, ?)", err) < 0)
    return -1;
  bind_text (st, 1, c->task_arn);
  bind_text (st, 2, c->name);
  bind_text (st, 3, c->runtime_id);
  bind_text (st, 4, c->known_status);
  if (c->exit_code >= 0)
    sqlite3_bind_int64 (st, 5, c->exit_code);
  else
    sqlite3_bind_null (st, 5);
  bind_text (st, 6, c->body);
  return step_done (s, st, "save container", err);
}

static int read_container (sqlite3_stmt *st, agent_container_rec *c, berr **err)
{
  c->task_arn = col_dup (st, 0);
  c->name = col_dup (st, 1);
  c->runtime_id = col_dup (st, 2);
  c->known_status = col_dup (st, 3);
  c->exit_code = sqlite3_column_type (st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64 (st, 4);
  c->body = col_dup (st, 5);
  if (!c->task_arn || !c->name || !c->known_status || !c->body)
    return agent_container_rec_clear (c), berr_sys (err, "allocate");
  return 0;
}

int agent_store_list_containers (agent_store *s, const char *task_arn, agent_container_rec **out,
                                 size_t *n, berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  agent_container_rec *v = NULL;
  size_t count = 0;
  int r;
  if (prepare (s, &st,
               "SELECT task_arn, name, runtime_id, known_status, exit_code, body FROM containers"
               " WHERE task_arn = ? ORDER BY name",
               err)
      < 0)
    return -1;
  bind_text (st, 1, task_arn);
  while ((r = sqlite3_step (st)) == SQLITE_ROW)
    {
      agent_container_rec *nv = reallocarray (v, count + 1, sizeof *v);
      if (nv == NULL)
        break;
      v = nv;
      memset (&v[count], 0, sizeof *v);
      if (read_container (st, &v[count], err) < 0)
        break;
      count++;
    }
  if (r != SQLITE_DONE)
    {
      for (size_t i = 0; i < count; i++)
        agent_container_rec_clear (&v[i]);
      free (v);
      return r == SQLITE_ROW ? berr_make (err, ENOMEM, "list containers: out of memory")
                             : store_fail (s, err, "list containers");
    }
  *out = v;
  *n = count;
  return 0;
}

void agent_container_rec_clear (agent_container_rec *c)
{
  free (c->task_arn);
  free (c->name);
  free (c->runtime_id);
  free (c->known_status);
  free (c->body);
  memset (c, 0, sizeof *c);
}

/* ---- attachments ---- */

int agent_store_put_attachment (agent_store *s, const char *arn, const char *task_arn,
                                const char *status, const char *body, berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  if (prepare (s, &st, "INSERT OR REPLACE INTO attachments VALUES (?, ?, ?, ?)", err) < 0)
    return -1;
  bind_text (st, 1, arn);
  bind_text (st, 2, task_arn);
  bind_text (st, 3, status);
  bind_text (st, 4, body);
  return step_done (s, st, "save attachment", err);
}

int agent_store_get_attachment_status (agent_store *s, const char *arn, char **status, berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  if (prepare (s, &st, "SELECT status FROM attachments WHERE arn = ?", err) < 0)
    return -1;
  bind_text (st, 1, arn);
  int r = sqlite3_step (st);
  if (r == SQLITE_DONE)
    return berr_make (err, ENOENT, "no attachment `%s` in the store", arn);
  if (r != SQLITE_ROW)
    return store_fail (s, err, "read attachment");
  if ((*status = col_dup (st, 0)) == NULL)
    return berr_sys (err, "allocate");
  return 0;
}

/* ---- outbox ---- */

int agent_store_outbox_push (agent_store *s, const char *task_arn, const char *kind,
                             const char *body, int64_t *id, berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  if (prepare (s, &st, "INSERT INTO outbox (task_arn, kind, body, created_at) VALUES (?, ?, ?, ?)",
               err)
      < 0)
    return -1;
  bind_text (st, 1, task_arn);
  bind_text (st, 2, kind);
  bind_text (st, 3, body);
  sqlite3_bind_int64 (st, 4, (sqlite3_int64)time (NULL));
  if (step_done (s, st, "queue state change", err) < 0)
    return -1;
  if (id)
    *id = sqlite3_last_insert_rowid (s->db);
  return 0;
}

int agent_store_outbox_next (agent_store *s, const char *task_arn, agent_outbox_entry *out,
                             berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  memset (out, 0, sizeof *out);
  if (prepare (s, &st,
               "SELECT id, task_arn, kind, body FROM outbox WHERE task_arn = ? AND sent = 0"
               " ORDER BY id LIMIT 1",
               err)
      < 0)
    return -1;
  bind_text (st, 1, task_arn);
  int r = sqlite3_step (st);
  if (r == SQLITE_DONE)
    return berr_make (err, ENOENT, "no unsent state change for `%s`", task_arn);
  if (r != SQLITE_ROW)
    return store_fail (s, err, "read outbox");
  out->id = sqlite3_column_int64 (st, 0);
  out->task_arn = col_dup (st, 1);
  out->kind = col_dup (st, 2);
  out->body = col_dup (st, 3);
  if (!out->task_arn || !out->kind || !out->body)
    return agent_outbox_entry_clear (out), berr_sys (err, "allocate");
  return 0;
}

int agent_store_outbox_tasks (agent_store *s, char ***out, berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  _cleanup_strv_ char **v = calloc (1, sizeof (char *));
  if (v == NULL)
    return berr_sys (err, "allocate");
  if (prepare (s, &st,
               "SELECT task_arn FROM outbox WHERE sent = 0 GROUP BY task_arn ORDER BY MIN(id)", err)
      < 0)
    return -1;
  int r;
  while ((r = sqlite3_step (st)) == SQLITE_ROW)
    if (strv_append (&v, (const char *)sqlite3_column_text (st, 0)) < 0)
      return berr_sys (err, "allocate");
  if (r != SQLITE_DONE)
    return store_fail (s, err, "list outbox");
  *out = steal_ptr (&v);
  return 0;
}

int agent_store_outbox_mark_sent (agent_store *s, int64_t id, berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  if (prepare (s, &st, "UPDATE outbox SET sent = 1 WHERE id = ?", err) < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, id);
  if (step_done (s, st, "mark state change sent", err) < 0)
    return -1;
  if (sqlite3_changes (s->db) != 1)
    return berr_make (err, ENOENT, "no outbox entry %lld", (long long)id);
  return 0;
}

void agent_outbox_entry_clear (agent_outbox_entry *e)
{
  free (e->task_arn);
  free (e->kind);
  free (e->body);
  memset (e, 0, sizeof *e);
}

/* ---- channel ---- */

int agent_store_get_acked_seq (agent_store *s, int64_t *out, berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  if (prepare (s, &st, "SELECT acked_seq FROM channel WHERE id = 1", err) < 0)
    return -1;
  if (sqlite3_step (st) != SQLITE_ROW)
    return store_fail (s, err, "read acked seqNum");
  *out = sqlite3_column_int64 (st, 0);
  return 0;
}

int agent_store_set_acked_seq (agent_store *s, int64_t seq, berr **err)
{
  _cleanup_stmt_ sqlite3_stmt *st = NULL;
  if (prepare (s, &st, "UPDATE channel SET acked_seq = ? WHERE id = 1", err) < 0)
    return -1;
  sqlite3_bind_int64 (st, 1, seq);
  return step_done (s, st, "save acked seqNum", err);
}
