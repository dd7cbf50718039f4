/* store: SQLite control-plane store with versioned migrations. */
#include "store/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct gh_store {
	sqlite3 *db;
	sqlite3_stmt *data_version;
	sqlite3_stmt *marks; /* change marks, prepared on first use and kept */
};

/* Migrations: append only; each runs once, in order, inside a transaction. */
static const char *const migrations[] = {
	/* 1: initial schema */
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE policy(version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL, document TEXT NOT NULL);"
	"CREATE TABLE signing_keys(kid TEXT PRIMARY KEY, public_key BLOB NOT NULL, sealed_secret BLOB NOT NULL,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE tokens(jti TEXT PRIMARY KEY, user TEXT NOT NULL, env TEXT NOT NULL, app TEXT,"
	"  issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER);"
	"CREATE INDEX tokens_revoked ON tokens(revoked_at) WHERE revoked_at IS NOT NULL;"
	"CREATE TABLE approvals(id TEXT PRIMARY KEY, status TEXT NOT NULL, requester TEXT NOT NULL, app TEXT,"
	"  resource TEXT NOT NULL, environment TEXT NOT NULL, statement TEXT NOT NULL, params TEXT NOT NULL,"
	"  class TEXT NOT NULL, request_id TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
	"  decided_by TEXT, decided_at INTEGER, result TEXT);"
	"CREATE INDEX approvals_created ON approvals(created_at);"
	"CREATE TABLE audit_head(id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);"
	"INSERT INTO audit_head VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');",
	/* 2: the vault's secrets, sealed with the master key (name bound as associated data) */
	"CREATE TABLE secrets(name TEXT PRIMARY KEY, sealed BLOB NOT NULL, version INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL);",
	/* 3: the audit checkpoint signing key (one, sealed like the token key) and the delivery
	 * position of each audit sink (and of the checkpointer, "#checkpoints") */
	"CREATE TABLE audit_checkpoint_key(id INTEGER PRIMARY KEY CHECK (id = 1), public_key BLOB NOT NULL,"
	"  sealed_secret BLOB NOT NULL, created_at INTEGER NOT NULL);"
	"CREATE TABLE audit_positions(name TEXT PRIMARY KEY, seq INTEGER NOT NULL, byte_offset INTEGER NOT NULL,"
	"  hash TEXT NOT NULL, updated_at INTEGER NOT NULL);",
};

static int sq_err(struct gh_error *err, sqlite3 *db, const char *what)
{
	return gh_error_set(err, GH_EIO, "store: %s: %s", what, db ? sqlite3_errmsg(db) : "cannot open");
}

static int migrate(sqlite3 *db, struct gh_error *err)
{
	if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY,"
			     " applied_at INTEGER NOT NULL)", NULL, NULL, NULL) != SQLITE_OK)
		return sq_err(err, db, "migrations table");
	for (size_t i = 0; i < sizeof migrations / sizeof migrations[0]; i++) {
		sqlite3_stmt *s = NULL;
		int have = 0;
		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
			return sq_err(err, db, "begin");
		if (sqlite3_prepare_v2(db, "SELECT 1 FROM schema_migrations WHERE version = ?", -1, &s, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(s, 1, (int64_t)i + 1);
			have = sqlite3_step(s) == SQLITE_ROW;
		}
		sqlite3_finalize(s);
		if (!have) {
			char ins[128];
			snprintf(ins, sizeof ins, "INSERT INTO schema_migrations VALUES (%d, %lld)", (int)i + 1,
				 (long long)gh_now());
			if (sqlite3_exec(db, migrations[i], NULL, NULL, NULL) != SQLITE_OK ||
			    sqlite3_exec(db, ins, NULL, NULL, NULL) != SQLITE_OK) {
				int rc = sq_err(err, db, "migration");
				sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
				return rc;
			}
		}
		if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return sq_err(err, db, "commit");
		}
	}
	return 0;
}

static int store_connect(const char *path, int flags, bool durable, sqlite3 **out, struct gh_error *err)
{
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		int rc = sq_err(err, db, path);
		sqlite3_close(db);
		return rc;
	}
	sqlite3_busy_timeout(db, 10000);
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	/* A store may come from a backup (hostile input until verified): functions with side
	 * effects never run from its schema (views, triggers). Ours has neither. */
	sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", NULL, NULL,
			 NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL) != SQLITE_OK) {
		int rc = sq_err(err, db, path);
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return 0;
}

int gh_store_create(const char *path, struct gh_error *err)
{
	if (access(path, F_OK) == 0)
		return gh_error_set(err, GH_EEXIST, "store: %s already exists", path);
	sqlite3 *db = NULL;
	mode_t old = umask(077);
	int rc = store_connect(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, true, &db, err);
	umask(old);
	if (rc)
		return rc;
	rc = migrate(db, err);
	sqlite3_close(db);
	return rc;
}

int gh_store_open(const char *path, bool durable, struct gh_store **out, struct gh_error *err)
{
	struct gh_store *st = calloc(1, sizeof *st);
	if (!st)
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	int rc = store_connect(path, SQLITE_OPEN_READWRITE, durable, &st->db, err);
	if (rc)
		goto fail;
	if ((rc = migrate(st->db, err)))
		goto fail;
	if (sqlite3_prepare_v3(st->db, "PRAGMA data_version", -1, SQLITE_PREPARE_PERSISTENT, &st->data_version,
			       NULL) != SQLITE_OK) {
		rc = sq_err(err, st->db, "prepare");
		goto fail;
	}
	*out = st;
	return 0;
fail:
	gh_store_close(st);
	return rc;
}

void gh_store_close(struct gh_store *st)
{
	if (!st)
		return;
	sqlite3_finalize(st->data_version);
	sqlite3_finalize(st->marks);
	sqlite3_close(st->db);
	free(st);
}

int64_t gh_store_data_version(struct gh_store *st)
{
	int64_t v = -1;
	if (sqlite3_step(st->data_version) == SQLITE_ROW)
		v = sqlite3_column_int64(st->data_version, 0);
	sqlite3_reset(st->data_version);
	return v;
}

int gh_store_begin(struct gh_store *st)
{
	return sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : GH_EIO;
}

int gh_store_commit(struct gh_store *st)
{
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	gh_store_rollback(st);
	return GH_EIO;
}

void gh_store_rollback(struct gh_store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Prepares sql, binding text arguments in order (NULL binds SQL NULL). */
static sqlite3_stmt *prep(struct gh_store *st, const char *sql)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
		return NULL;
	return s;
}

int gh_store_change_marks(struct gh_store *st, int64_t *policy_version, int64_t *revocations, int64_t *secrets)
{
	/* Runs after every commit by another connection (the audit head moves on each batch), so
	 * the statement is prepared once. */
	if (!st->marks && sqlite3_prepare_v3(st->db, "SELECT (SELECT coalesce(max(version), 0) FROM policy),"
					     " (SELECT count(*) FROM tokens WHERE revoked_at IS NOT NULL),"
					     " (SELECT coalesce(sum(version), 0) FROM secrets)", -1,
					     SQLITE_PREPARE_PERSISTENT, &st->marks, NULL) != SQLITE_OK)
		return GH_EIO;
	int rc = GH_EIO;
	if (sqlite3_step(st->marks) == SQLITE_ROW) {
		*policy_version = sqlite3_column_int64(st->marks, 0);
		*revocations = sqlite3_column_int64(st->marks, 1);
		*secrets = sqlite3_column_int64(st->marks, 2);
		rc = 0;
	}
	sqlite3_reset(st->marks);
	return rc;
}

static void bind_text(sqlite3_stmt *s, int i, const char *z)
{
	if (z)
		sqlite3_bind_text(s, i, z, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

static char *col_dup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? gh_strdup((const char *)t) : NULL;
}

/* Steps a write statement to completion and finalizes it. */
static int run_done(sqlite3_stmt *s)
{
	if (!s)
		return GH_EIO;
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : GH_EIO;
}

int gh_store_signing_key_put(struct gh_store *st, const char *kid, const uint8_t pub[32],
			     const uint8_t *sealed, size_t sealedlen)
{
	sqlite3_stmt *s = prep(st, "INSERT INTO signing_keys VALUES (?, ?, ?, ?)");
	if (!s)
		return GH_EIO;
	bind_text(s, 1, kid);
	sqlite3_bind_blob(s, 2, pub, 32, SQLITE_TRANSIENT);
	sqlite3_bind_blob(s, 3, sealed, (int)sealedlen, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 4, gh_now());
	return run_done(s);
}

int gh_store_signing_key_get(struct gh_store *st, char kid[64], uint8_t pub[32], uint8_t **sealed,
			     size_t *sealedlen)
{
	sqlite3_stmt *s = prep(st, "SELECT kid, public_key, sealed_secret FROM signing_keys"
				   " ORDER BY created_at DESC, rowid DESC LIMIT 1");
	if (!s)
		return GH_EIO;
	int rc = GH_ENOTFOUND;
	if (sqlite3_step(s) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(s, 0);
		int plen = sqlite3_column_bytes(s, 1), slen = sqlite3_column_bytes(s, 2);
		if (!k || strlen(k) >= 64 || plen != 32 || slen <= 0) {
			rc = GH_EINVAL;
		} else {
			snprintf(kid, 64, "%s", k);
			memcpy(pub, sqlite3_column_blob(s, 1), 32);
			*sealed = malloc((size_t)slen);
			if (*sealed) {
				memcpy(*sealed, sqlite3_column_blob(s, 2), (size_t)slen);
				*sealedlen = (size_t)slen;
				rc = 0;
			} else
				rc = GH_ENOMEM;
		}
	}
	sqlite3_finalize(s);
	return rc;
}

int gh_store_secret_put(struct gh_store *st, const char *name, const uint8_t *sealed, size_t len,
			int64_t *version)
{
	sqlite3_stmt *s = prep(st, "INSERT INTO secrets VALUES (?1, ?2, 1, ?3) ON CONFLICT(name) DO UPDATE"
				   " SET sealed = excluded.sealed, version = version + 1, updated_at = excluded.updated_at"
				   " RETURNING version");
	if (!s)
		return GH_EIO;
	bind_text(s, 1, name);
	sqlite3_bind_blob(s, 2, sealed, (int)len, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, gh_now());
	int rc = GH_EIO;
	if (sqlite3_step(s) == SQLITE_ROW) {
		*version = sqlite3_column_int64(s, 0);
		rc = sqlite3_step(s) == SQLITE_DONE ? 0 : GH_EIO;
	}
	sqlite3_finalize(s);
	return rc;
}

int gh_store_secret_get(struct gh_store *st, const char *name, uint8_t **sealed, size_t *len, int64_t *version)
{
	sqlite3_stmt *s = prep(st, "SELECT sealed, version FROM secrets WHERE name = ?");
	if (!s)
		return GH_EIO;
	bind_text(s, 1, name);
	int rc = GH_ENOTFOUND;
	if (sqlite3_step(s) == SQLITE_ROW) {
		int n = sqlite3_column_bytes(s, 0);
		*sealed = n > 0 ? malloc((size_t)n) : NULL;
		if (!*sealed) {
			rc = n > 0 ? GH_ENOMEM : GH_EINVAL;
		} else {
			memcpy(*sealed, sqlite3_column_blob(s, 0), (size_t)n);
			*len = (size_t)n;
			*version = sqlite3_column_int64(s, 1);
			rc = 0;
		}
	}
	sqlite3_finalize(s);
	return rc;
}

int gh_store_policy_save(struct gh_store *st, const char *doc, size_t len, int64_t *version)
{
	sqlite3_stmt *s = prep(st, "INSERT INTO policy(version, applied_at, document) "
				   "SELECT coalesce(max(version), 0) + 1, ?, ? FROM policy RETURNING version");
	if (!s)
		return GH_EIO;
	sqlite3_bind_int64(s, 1, gh_now());
	sqlite3_bind_text(s, 2, doc, (int)len, SQLITE_TRANSIENT);
	int rc = GH_EIO;
	if (sqlite3_step(s) == SQLITE_ROW) {
		*version = sqlite3_column_int64(s, 0);
		rc = sqlite3_step(s) == SQLITE_DONE ? 0 : GH_EIO;
	}
	sqlite3_finalize(s);
	return rc;
}

int gh_store_policy_load(struct gh_store *st, char **doc, int64_t *version)
{
	sqlite3_stmt *s = prep(st, "SELECT version, document FROM policy ORDER BY version DESC LIMIT 1");
	if (!s)
		return GH_EIO;
	*doc = NULL;
	*version = 0;
	int rc = 0, step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		*version = sqlite3_column_int64(s, 0);
		*doc = col_dup(s, 1);
		if (!*doc)
			rc = GH_ENOMEM;
	} else if (step != SQLITE_DONE)
		rc = GH_EIO;
	sqlite3_finalize(s);
	return rc;
}

int gh_store_token_add(struct gh_store *st, const char *jti, const char *user, const char *env,
		       const char *app, int64_t iat, int64_t exp)
{
	sqlite3_stmt *s = prep(st, "INSERT INTO tokens(jti, user, env, app, issued_at, expires_at) VALUES (?,?,?,?,?,?)");
	if (!s)
		return GH_EIO;
	bind_text(s, 1, jti);
	bind_text(s, 2, user);
	bind_text(s, 3, env);
	bind_text(s, 4, app);
	sqlite3_bind_int64(s, 5, iat);
	sqlite3_bind_int64(s, 6, exp);
	return run_done(s);
}

int gh_store_token_revoke(struct gh_store *st, const char *jti, int64_t now)
{
	sqlite3_stmt *s = prep(st, "SELECT revoked_at FROM tokens WHERE jti = ?");
	if (!s)
		return GH_EIO;
	bind_text(s, 1, jti);
	int step = sqlite3_step(s);
	bool revoked = step == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
	sqlite3_finalize(s);
	if (step == SQLITE_DONE)
		return GH_ENOTFOUND;
	if (step != SQLITE_ROW)
		return GH_EIO;
	if (revoked)
		return GH_EEXIST;
	s = prep(st, "UPDATE tokens SET revoked_at = ? WHERE jti = ? AND revoked_at IS NULL");
	if (!s)
		return GH_EIO;
	sqlite3_bind_int64(s, 1, now);
	bind_text(s, 2, jti);
	return run_done(s);
}

int gh_store_secret_each(struct gh_store *st, int (*fn)(const char *name, const uint8_t *sealed, size_t len, void *arg),
			 void *arg)
{
	sqlite3_stmt *s = prep(st, "SELECT name, sealed FROM secrets ORDER BY name");
	if (!s)
		return GH_EIO;
	int step, rc = 0;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s, 0);
		const uint8_t *sealed = sqlite3_column_blob(s, 1);
		int n = sqlite3_column_bytes(s, 1);
		if ((rc = fn(name ? name : "", sealed, sealed ? (size_t)n : 0, arg)))
			break;
	}
	sqlite3_finalize(s);
	return rc ? rc : step == SQLITE_ROW || step == SQLITE_DONE ? 0 : GH_EIO;
}

int gh_store_token_get(struct gh_store *st, const char *jti, char *user, size_t n, bool *revoked)
{
	sqlite3_stmt *s = prep(st, "SELECT user, revoked_at FROM tokens WHERE jti = ?");
	if (!s)
		return GH_EIO;
	bind_text(s, 1, jti);
	int step = sqlite3_step(s), rc = step == SQLITE_DONE ? GH_ENOTFOUND : GH_EIO;
	if (step == SQLITE_ROW) {
		const char *u = (const char *)sqlite3_column_text(s, 0);
		snprintf(user, n, "%s", u ? u : "");
		*revoked = sqlite3_column_type(s, 1) != SQLITE_NULL;
		rc = 0;
	}
	sqlite3_finalize(s);
	return rc;
}

int gh_store_revoked_each(struct gh_store *st, int64_t now, void (*fn)(const char *, void *), void *arg)
{
	sqlite3_stmt *s = prep(st, "SELECT jti FROM tokens WHERE revoked_at IS NOT NULL AND expires_at + 60 > ?");
	if (!s)
		return GH_EIO;
	sqlite3_bind_int64(s, 1, now);
	int step;
	while ((step = sqlite3_step(s)) == SQLITE_ROW)
		fn((const char *)sqlite3_column_text(s, 0), arg);
	sqlite3_finalize(s);
	return step == SQLITE_DONE ? 0 : GH_EIO;
}

int gh_store_tokens_active(struct gh_store *st, int64_t now, int64_t max_lifetime, int64_t *active,
			   int64_t *long_lived)
{
	sqlite3_stmt *s = prep(st, "SELECT count(*), coalesce(sum(expires_at - issued_at > ?2), 0) FROM tokens"
				   " WHERE revoked_at IS NULL AND expires_at > ?1");
	if (!s)
		return GH_EIO;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, max_lifetime);
	int rc = GH_EIO;
	if (sqlite3_step(s) == SQLITE_ROW) {
		*active = sqlite3_column_int64(s, 0);
		*long_lived = sqlite3_column_int64(s, 1);
		rc = 0;
	}
	sqlite3_finalize(s);
	return rc;
}

int gh_store_meta_set(struct gh_store *st, const char *key, const char *value)
{
	sqlite3_stmt *s = prep(st, "INSERT INTO meta(key, value) VALUES (?1, ?2)"
				   " ON CONFLICT(key) DO UPDATE SET value = excluded.value");
	if (!s)
		return GH_EIO;
	bind_text(s, 1, key);
	bind_text(s, 2, value);
	return run_done(s);
}

int gh_store_meta_get(struct gh_store *st, const char *key, char *out, size_t n)
{
	sqlite3_stmt *s = prep(st, "SELECT value FROM meta WHERE key = ?1");
	if (!s)
		return GH_EIO;
	bind_text(s, 1, key);
	int step = sqlite3_step(s), rc = GH_EIO;
	if (step == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(s, 0);
		snprintf(out, n, "%s", v ? v : "");
		rc = 0;
	} else if (step == SQLITE_DONE) {
		rc = GH_ENOTFOUND;
	}
	sqlite3_finalize(s);
	return rc;
}

int gh_store_audit_head_get(struct gh_store *st, int64_t *seq, char hash[65])
{
	sqlite3_stmt *s = prep(st, "SELECT seq, hash FROM audit_head WHERE id = 1");
	if (!s)
		return GH_EIO;
	int rc = GH_EIO;
	if (sqlite3_step(s) == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(s, 1);
		if (h && strlen(h) == 64) {
			*seq = sqlite3_column_int64(s, 0);
			memcpy(hash, h, 65);
			rc = 0;
		}
	}
	sqlite3_finalize(s);
	return rc;
}

int gh_store_audit_head_set(struct gh_store *st, int64_t seq, const char *hash)
{
	/* Only forward: a slower writer never moves the head back. */
	sqlite3_stmt *s = prep(st, "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq < ?");
	if (!s)
		return GH_EIO;
	sqlite3_bind_int64(s, 1, seq);
	bind_text(s, 2, hash);
	sqlite3_bind_int64(s, 3, seq);
	return run_done(s);
}

/* ---- backups ---- */

int gh_store_backup_note(struct gh_store *st, int64_t time_ms, const char *location, int64_t seq)
{
	/* one statement: the three keys change together or not at all */
	sqlite3_stmt *s = prep(st, "INSERT INTO meta(key, value) VALUES ('backup.last_time_ms', ?1),"
				   " ('backup.last_location', ?2), ('backup.last_seq', ?3)"
				   " ON CONFLICT(key) DO UPDATE SET value = excluded.value");
	if (!s)
		return GH_EIO;
	char t[32], q[32];
	snprintf(t, sizeof t, "%lld", (long long)time_ms);
	snprintf(q, sizeof q, "%lld", (long long)seq);
	bind_text(s, 1, t);
	bind_text(s, 2, location);
	bind_text(s, 3, q);
	return run_done(s);
}

int gh_store_backup_last(struct gh_store *st, int64_t *time_ms, char *location, size_t locsize, int64_t *seq)
{
	sqlite3_stmt *s = prep(st, "SELECT (SELECT value FROM meta WHERE key = 'backup.last_time_ms'),"
				   " (SELECT value FROM meta WHERE key = 'backup.last_location'),"
				   " (SELECT value FROM meta WHERE key = 'backup.last_seq')");
	if (!s)
		return GH_EIO;
	int rc = GH_EIO;
	if (sqlite3_step(s) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0), *l = (const char *)sqlite3_column_text(s, 1);
		const char *q = (const char *)sqlite3_column_text(s, 2);
		int64_t tv = 0, qv = 0;
		if (!t || !l || !q)
			rc = GH_ENOTFOUND;
		else if (gh_parse_int(t, 0, INT64_MAX, &tv) || gh_parse_int(q, 0, INT64_MAX, &qv))
			rc = GH_EINVAL;
		else {
			*time_ms = tv;
			*seq = qv;
			snprintf(location, locsize, "%s", l);
			rc = 0;
		}
	}
	sqlite3_finalize(s);
	return rc;
}

int gh_store_check(struct gh_store *st, struct gh_error *err)
{
	sqlite3_stmt *s = prep(st, "PRAGMA quick_check(1)");
	if (!s)
		return sq_err(err, st->db, "quick_check");
	int rc = 0, step = sqlite3_step(s);
	const char *msg = step == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
	if (step != SQLITE_ROW)
		rc = sq_err(err, st->db, "quick_check");
	else if (!msg || strcmp(msg, "ok") != 0)
		rc = gh_error_set(err, GH_EINVAL, "store: the database file is damaged: %.200s", msg ? msg : "?");
	sqlite3_finalize(s);
	return rc;
}

struct gh_store_snapshot {
	sqlite3 *db;
	bool pinned;
};

int gh_store_snapshot_open(const char *path, struct gh_store_snapshot **out, struct gh_error *err)
{
	struct gh_store_snapshot *s = calloc(1, sizeof *s);
	if (!s)
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		int rc = sq_err(err, s->db, path);
		gh_store_snapshot_close(s);
		return rc;
	}
	sqlite3_busy_timeout(s->db, 10000);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	*out = s;
	return 0;
}

int gh_store_snapshot_pin(struct gh_store_snapshot *s, int64_t *head_seq, char head_hash[65], struct gh_error *err)
{
	sqlite3_stmt *q = NULL;
	int rc = GH_EIO;
	if (s->pinned)
		return gh_error_set(err, GH_EINTERNAL, "store: snapshot already pinned");
	if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return sq_err(err, s->db, "begin");
	s->pinned = true;
	/* the first read fixes the snapshot this transaction sees until it ends */
	if (sqlite3_prepare_v2(s->db, "SELECT seq, hash FROM audit_head WHERE id = 1", -1, &q, NULL) != SQLITE_OK) {
		rc = sq_err(err, s->db, "audit head");
		goto done;
	}
	if (sqlite3_step(q) == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(q, 1);
		if (h && strlen(h) == 64) {
			*head_seq = sqlite3_column_int64(q, 0);
			memcpy(head_hash, h, 65);
			rc = 0;
		}
	}
	if (rc)
		gh_error_set(err, rc, "store: cannot read the audit head");
done:
	sqlite3_finalize(q);
	return rc;
}

int gh_store_snapshot_write(struct gh_store_snapshot *s, const char *dest, struct gh_error *err)
{
	if (!s->pinned)
		return gh_error_set(err, GH_EINTERNAL, "store: snapshot not pinned");
	/* created here so that its mode is 0600 whatever the umask */
	int fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return gh_error_set(err, GH_EIO, "%s: %s", dest, strerror(errno));
	close(fd);
	sqlite3 *db = NULL;
	int rc = 0;
	if (sqlite3_open_v2(dest, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = sq_err(err, db, dest);
		goto done;
	}
	sqlite3_backup *b = sqlite3_backup_init(db, "main", s->db, "main");
	if (!b) {
		rc = sq_err(err, db, "backup");
		goto done;
	}
	/* All pages in one step, inside the pinned read transaction: one consistent state. */
	int step = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	if (step != SQLITE_DONE || sqlite3_errcode(db) != SQLITE_OK)
		rc = gh_error_set(err, GH_EIO, "store: backup to %s failed: %s", dest,
				  step != SQLITE_DONE ? sqlite3_errstr(step) : sqlite3_errmsg(db));
done:
	if (sqlite3_close(db) != SQLITE_OK && !rc)
		rc = gh_error_set(err, GH_EIO, "store: cannot close %s", dest);
	return rc;
}

void gh_store_snapshot_close(struct gh_store_snapshot *s)
{
	if (!s)
		return;
	if (s->pinned)
		sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(s->db);
	free(s);
}

/* ---- audit checkpoint key and delivery positions ---- */

int gh_store_checkpoint_key_put(struct gh_store *st, const uint8_t pub[32], const uint8_t *sealed, size_t sealedlen)
{
	/* the first key wins: a second writer racing at first need keeps the stored one */
	sqlite3_stmt *s = prep(st, "INSERT OR IGNORE INTO audit_checkpoint_key VALUES (1, ?, ?, ?)");
	if (!s)
		return GH_EIO;
	sqlite3_bind_blob(s, 1, pub, 32, SQLITE_TRANSIENT);
	sqlite3_bind_blob(s, 2, sealed, (int)sealedlen, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, gh_now());
	return run_done(s);
}

int gh_store_checkpoint_key_get(struct gh_store *st, uint8_t pub[32], uint8_t **sealed, size_t *sealedlen)
{
	sqlite3_stmt *s = prep(st, "SELECT public_key, sealed_secret FROM audit_checkpoint_key WHERE id = 1");
	if (!s)
		return GH_EIO;
	int rc = GH_ENOTFOUND, step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		int plen = sqlite3_column_bytes(s, 0), slen = sqlite3_column_bytes(s, 1);
		if (plen != 32 || slen <= 0) {
			rc = GH_EINVAL;
		} else {
			memcpy(pub, sqlite3_column_blob(s, 0), 32);
			rc = 0;
			if (sealed) {
				*sealed = malloc((size_t)slen);
				if (*sealed) {
					memcpy(*sealed, sqlite3_column_blob(s, 1), (size_t)slen);
					*sealedlen = (size_t)slen;
				} else
					rc = GH_ENOMEM;
			}
		}
	} else if (step != SQLITE_DONE)
		rc = GH_EIO;
	sqlite3_finalize(s);
	return rc;
}

int gh_store_audit_position_get(struct gh_store *st, const char *name, int64_t *seq, int64_t *offset, char hash[65])
{
	sqlite3_stmt *s = prep(st, "SELECT seq, byte_offset, hash FROM audit_positions WHERE name = ?");
	if (!s)
		return GH_EIO;
	bind_text(s, 1, name);
	int rc = GH_ENOTFOUND, step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(s, 2);
		*seq = sqlite3_column_int64(s, 0);
		*offset = sqlite3_column_int64(s, 1);
		if (h && strlen(h) == 64 && *seq >= 0 && *offset >= 0) {
			memcpy(hash, h, 65);
			rc = 0;
		} else
			rc = GH_EINVAL;
	} else if (step != SQLITE_DONE)
		rc = GH_EIO;
	sqlite3_finalize(s);
	return rc;
}

int gh_store_audit_position_set(struct gh_store *st, const char *name, int64_t seq, int64_t offset, const char *hash)
{
	sqlite3_stmt *s = prep(st, "INSERT INTO audit_positions VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(name) DO UPDATE"
				   " SET seq = excluded.seq, byte_offset = excluded.byte_offset, hash = excluded.hash,"
				   " updated_at = excluded.updated_at");
	if (!s)
		return GH_EIO;
	bind_text(s, 1, name);
	sqlite3_bind_int64(s, 2, seq);
	sqlite3_bind_int64(s, 3, offset);
	bind_text(s, 4, hash);
	sqlite3_bind_int64(s, 5, gh_now());
	return run_done(s);
}

/* ---- approvals ---- */

static const char *const status_names[] = {"pending", "executing", "executed", "failed",
					   "rejected", "expired", "interrupted"};

const char *gh_approval_status_name(enum gh_approval_status s)
{
	return (unsigned)s < sizeof status_names / sizeof *status_names ? status_names[s] : "unknown";
}

static enum gh_approval_status status_parse(const char *z)
{
	for (unsigned i = 0; z && i < sizeof status_names / sizeof *status_names; i++)
		if (strcmp(z, status_names[i]) == 0)
			return (enum gh_approval_status)i;
	return GH_APPROVAL_FAILED;
}

void gh_approval_clear(struct gh_approval *a)
{
	free(a->requester); free(a->app); free(a->resource); free(a->environment);
	free(a->statement); free(a->params); free(a->class_name); free(a->request_id);
	free(a->decided_by); free(a->result);
	memset(a, 0, sizeof *a);
}

int gh_store_approval_insert(struct gh_store *st, const struct gh_approval *a)
{
	sqlite3_stmt *s = prep(st, "INSERT INTO approvals(id, status, requester, app, resource, environment,"
				   " statement, params, class, request_id, created_at, expires_at)"
				   " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
	if (!s)
		return GH_EIO;
	bind_text(s, 1, a->id);
	bind_text(s, 2, gh_approval_status_name(a->status));
	bind_text(s, 3, a->requester);
	bind_text(s, 4, a->app);
	bind_text(s, 5, a->resource);
	bind_text(s, 6, a->environment);
	bind_text(s, 7, a->statement);
	bind_text(s, 8, a->params);
	bind_text(s, 9, a->class_name);
	bind_text(s, 10, a->request_id);
	sqlite3_bind_int64(s, 11, a->created_at);
	sqlite3_bind_int64(s, 12, a->expires_at);
	return run_done(s);
}

#define APPROVAL_COLS "id, status, requester, app, resource, environment, statement, params, class," \
		      " request_id, created_at, expires_at, decided_by, decided_at, result"

static int approval_row(sqlite3_stmt *s, int64_t now, struct gh_approval *a)
{
	memset(a, 0, sizeof *a);
	snprintf(a->id, sizeof a->id, "%s", (const char *)sqlite3_column_text(s, 0));
	a->status = status_parse((const char *)sqlite3_column_text(s, 1));
	a->requester = col_dup(s, 2);
	a->app = col_dup(s, 3);
	a->resource = col_dup(s, 4);
	a->environment = col_dup(s, 5);
	a->statement = col_dup(s, 6);
	a->params = col_dup(s, 7);
	a->class_name = col_dup(s, 8);
	a->request_id = col_dup(s, 9);
	a->created_at = sqlite3_column_int64(s, 10);
	a->expires_at = sqlite3_column_int64(s, 11);
	a->decided_by = col_dup(s, 12);
	a->decided_at = sqlite3_column_int64(s, 13);
	a->result = col_dup(s, 14);
	if (a->status == GH_APPROVAL_PENDING && a->expires_at <= now)
		a->status = GH_APPROVAL_EXPIRED;
	if (!a->requester || !a->resource || !a->environment || !a->statement || !a->params) {
		gh_approval_clear(a);
		return GH_ENOMEM;
	}
	return 0;
}

int gh_store_approval_get(struct gh_store *st, const char *id, int64_t now, struct gh_approval *out)
{
	sqlite3_stmt *s = prep(st, "SELECT " APPROVAL_COLS " FROM approvals WHERE id = ?");
	if (!s)
		return GH_EIO;
	bind_text(s, 1, id);
	int rc, step = sqlite3_step(s);
	if (step == SQLITE_ROW)
		rc = approval_row(s, now, out);
	else
		rc = step == SQLITE_DONE ? GH_ENOTFOUND : GH_EIO;
	sqlite3_finalize(s);
	return rc;
}

int gh_store_approval_claim(struct gh_store *st, const char *id, enum gh_approval_status to,
			    const char *decider, int64_t now)
{
	sqlite3_stmt *s = prep(st, "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?"
				   " WHERE id = ? AND status = 'pending' AND expires_at > ?");
	if (!s)
		return GH_EIO;
	bind_text(s, 1, gh_approval_status_name(to));
	bind_text(s, 2, decider);
	sqlite3_bind_int64(s, 3, now);
	bind_text(s, 4, id);
	sqlite3_bind_int64(s, 5, now);
	int rc = run_done(s);
	if (rc)
		return rc;
	return sqlite3_changes(st->db) == 1 ? 0 : GH_ECONFLICT;
}

int gh_store_approval_finish(struct gh_store *st, const char *id, enum gh_approval_status status,
			     const char *result)
{
	sqlite3_stmt *s = prep(st, "UPDATE approvals SET status = ?, result = ? WHERE id = ? AND status = 'executing'");
	if (!s)
		return GH_EIO;
	bind_text(s, 1, gh_approval_status_name(status));
	bind_text(s, 2, result);
	bind_text(s, 3, id);
	return run_done(s);
}

int gh_store_approval_each(struct gh_store *st, int64_t now, int limit,
			   int (*fn)(const struct gh_approval *a, void *arg), void *arg)
{
	sqlite3_stmt *s = prep(st, "SELECT " APPROVAL_COLS " FROM approvals ORDER BY created_at DESC, rowid DESC LIMIT ?");
	if (!s)
		return GH_EIO;
	sqlite3_bind_int(s, 1, limit);
	int step, rc = 0;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		struct gh_approval a;
		if ((rc = approval_row(s, now, &a)))
			break;
		int stop = fn(&a, arg);
		gh_approval_clear(&a);
		if (stop)
			break;
	}
	sqlite3_finalize(s);
	return rc ? rc : (step == SQLITE_ROW || step == SQLITE_DONE) ? 0 : GH_EIO;
}

int gh_store_approvals_recover(struct gh_store *st, int *count)
{
	sqlite3_stmt *s = prep(st, "UPDATE approvals SET status = 'interrupted',"
				   " result = '{\"error\":\"the server stopped while this write was executing; "
				   "it is not run again\"}' WHERE status = 'executing'");
	int rc = run_done(s);
	if (!rc && count)
		*count = sqlite3_changes(st->db);
	return rc;
}

int gh_store_approvals_pending(struct gh_store *st, int64_t now, int64_t *count)
{
	/* A pending approval was created within the longest TTL a server can be given: the range
	 * on approvals_created keeps this from reading every approval ever made. */
	sqlite3_stmt *s = prep(st, "SELECT count(*) FROM approvals WHERE created_at >= ? AND status = 'pending'"
				   " AND expires_at > ?");
	if (!s)
		return GH_EIO;
	sqlite3_bind_int64(s, 1, now - GH_MAX_APPROVAL_TTL);
	sqlite3_bind_int64(s, 2, now);
	int rc = GH_EIO;
	if (sqlite3_step(s) == SQLITE_ROW) {
		*count = sqlite3_column_int64(s, 0);
		rc = 0;
	}
	sqlite3_finalize(s);
	return rc;
}
