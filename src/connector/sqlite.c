/* connector: SQLite resources. */
#include "connector/connector.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sconn {
	sqlite3 *db;
	struct gh_map *stmts;     /* sql text -> sqlite3_stmt* */
	sqlite3_stmt *schema;     /* PRAGMA schema_version, prepared once */
	int64_t schema_seen;      /* the version this connection's parsed schema is known to match */
	uint64_t schema_read_us;  /* when schema_seen was read (monotonic) */
	enum gh_sql_class guard_max;  /* read by the guard authorizer, installed once */
	bool guarded;
	uint64_t deadline_us;
};

struct gh_connector {
	struct gh_map *conns; /* "a:" (analysis), "r:" (reads) or "w:" (writes, DDL) + path -> sconn* */
};

static void stmt_free(void *p)
{
	sqlite3_finalize(p);
}

static void sconn_free(void *p)
{
	struct sconn *s = p;
	if (!s)
		return;
	gh_map_free(s->stmts);
	sqlite3_finalize(s->schema);
	sqlite3_close_v2(s->db);
	free(s);
}

struct gh_connector *gh_connector_new(void)
{
	struct gh_connector *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->conns = gh_map_new(sconn_free);
	if (!c->conns) {
		free(c);
		return NULL;
	}
	return c;
}

void gh_connector_free(struct gh_connector *c)
{
	if (!c)
		return;
	gh_map_free(c->conns);
	free(c);
}

static int progress(void *arg)
{
	struct sconn *s = arg;
	return s->deadline_us && gh_mono_us() > s->deadline_us;
}

/* kind: 'a' analysis, 'r' reads, 'w' writes and DDL; 'a' and 'r' are read-only. */
static struct sconn *sconn_get(struct gh_connector *c, const char *path, char kind, struct gh_error *err)
{
	bool readonly = kind != 'w';
	char key[4200];
	int kn = snprintf(key, sizeof key, "%c:%s", kind, path);
	if (kn < 0 || (size_t)kn >= sizeof key) {
		gh_error_set(err, GH_ETOOBIG, "resource path too long");
		return NULL;
	}
	struct sconn *s = gh_map_get(c->conns, key, (size_t)kn);
	if (s)
		return s;
	s = calloc(1, sizeof *s);
	if (!s || !(s->stmts = gh_map_new(stmt_free))) {
		free(s);
		gh_error_set(err, GH_ENOMEM, "out of memory");
		return NULL;
	}
	int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
		/* The path is configuration, not a secret, but callers get a generic message. */
		gh_error_set(err, GH_EIO, "the resource's database cannot be opened: %s", sqlite3_errmsg(s->db));
		sconn_free(s);
		return NULL;
	}
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 1, NULL);
	sqlite3_limit(s->db, SQLITE_LIMIT_ATTACHED, 0);
	sqlite3_limit(s->db, SQLITE_LIMIT_SQL_LENGTH, 10 * 1024 * 1024);
	sqlite3_busy_timeout(s->db, 5000);
	sqlite3_progress_handler(s->db, 1000, progress, s);
	if (readonly)
		sqlite3_exec(s->db, "PRAGMA query_only=1", NULL, NULL, NULL);
	if (gh_map_put(c->conns, key, (size_t)kn, s)) {
		sconn_free(s);
		gh_error_set(err, GH_ENOMEM, "out of memory");
		return NULL;
	}
	return s;
}

int gh_connector_sqlite(struct gh_connector *c, const char *path, sqlite3 **db, struct gh_error *err)
{
	struct sconn *s = sconn_get(c, path, 'a', err);
	if (!s)
		return err ? err->code : GH_EIO;
	*db = s->db;
	return 0;
}

int gh_connector_schema_version(struct gh_connector *c, const char *path, uint64_t max_age_us, int64_t *version,
				struct gh_error *err)
{
	struct sconn *s = sconn_get(c, path, 'a', err);
	if (!s)
		return err ? err->code : GH_EIO;
	uint64_t now = gh_mono_us();
	if (s->schema_read_us && now - s->schema_read_us < max_age_us) {
		*version = s->schema_seen;
		return 0;
	}
	if (!s->schema && sqlite3_prepare_v3(s->db, "PRAGMA schema_version", -1, SQLITE_PREPARE_PERSISTENT,
					     &s->schema, NULL) != SQLITE_OK)
		return gh_error_set(err, GH_EIO, "schema version: %s", sqlite3_errmsg(s->db));
	int rc = sqlite3_step(s->schema);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int64(s->schema, 0);
	sqlite3_reset(s->schema);
	if (rc != SQLITE_ROW)
		return gh_error_set(err, GH_EIO, "schema version: %s", sqlite3_errmsg(s->db));
	if (*version != s->schema_seen) {
		/* The PRAGMA reads the header only; a statement that reads the schema table checks
		 * the cookie in its transaction and makes SQLite reload the parsed schema, so the
		 * next analysis on this connection sees the new one. */
		sqlite3_exec(s->db, "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL, NULL);
		s->schema_seen = *version;
	}
	s->schema_read_us = now;
	return 0;
}

static int bind_params(sqlite3_stmt *st, json_t *params, struct gh_exec_result *res)
{
	size_t n = params ? json_array_size(params) : 0;
	int want = sqlite3_bind_parameter_count(st);
	if ((int)n != want) {
		snprintf(res->error, sizeof res->error, "statement takes %d parameters, %zu given", want, n);
		return GH_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(params, i);
		int idx = (int)i + 1, rc;
		switch (json_typeof(v)) {
		case JSON_NULL: rc = sqlite3_bind_null(st, idx); break;
		case JSON_TRUE: rc = sqlite3_bind_int(st, idx, 1); break;
		case JSON_FALSE: rc = sqlite3_bind_int(st, idx, 0); break;
		case JSON_INTEGER: rc = sqlite3_bind_int64(st, idx, json_integer_value(v)); break;
		case JSON_REAL: rc = sqlite3_bind_double(st, idx, json_real_value(v)); break;
		case JSON_STRING:
			rc = sqlite3_bind_text(st, idx, json_string_value(v), (int)json_string_length(v), SQLITE_STATIC);
			break;
		default:
			snprintf(res->error, sizeof res->error, "parameter %zu: only null, booleans, numbers and strings "
				 "can be bound", i + 1);
			return GH_EINVAL;
		}
		if (rc != SQLITE_OK) {
			snprintf(res->error, sizeof res->error, "parameter %zu: cannot bind", i + 1);
			return GH_EINVAL;
		}
	}
	return 0;
}

/* True when p[0..n) is valid UTF-8 (so it can go into JSON as text). */
static bool utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		size_t k;
		uint32_t cp;
		if (c < 0x80) { i++; continue; }
		else if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; }
		else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; }
		else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; }
		else return false;
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n || (p[i + j] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + j] & 0x3F);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += k + 1;
	}
	return true;
}

static int put_value(struct gh_buf *b, sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		return gh_buf_printf(b, "%lld", (long long)sqlite3_column_int64(st, i));
	case SQLITE_FLOAT: {
		double d = sqlite3_column_double(st, i);
		return isfinite(d) ? gh_buf_printf(b, "%.17g", d) : gh_buf_puts(b, "null");
	}
	case SQLITE_TEXT: {
		const unsigned char *t = sqlite3_column_text(st, i);
		size_t n = (size_t)sqlite3_column_bytes(st, i);
		if (utf8_valid(t, n))
			return gh_buf_json_string(b, (const char *)t, n);
		/* not UTF-8: deliver the bytes, not a corrupted string */
	}
	/* fall through */
	case SQLITE_BLOB: {
		const uint8_t *p = sqlite3_column_blob(st, i);
		size_t n = (size_t)sqlite3_column_bytes(st, i);
		size_t cap = (n + 2) / 3 * 4 + 1;
		char *enc = malloc(cap);
		if (!enc)
			return GH_ENOMEM;
		if (n)
			gh_b64url_encode(p, n, enc, cap);
		else
			enc[0] = '\0';
		int rc = gh_buf_printf(b, "{\"base64url\":\"%s\"}", enc);
		free(enc);
		return rc;
	}
	default:
		return gh_buf_puts(b, "null");
	}
}

int gh_connector_exec(struct gh_connector *c, const char *path, enum gh_sql_class cls, const char *sql,
		      size_t len, json_t *params, const struct gh_exec_limits *lim, struct gh_exec_result *res)
{
	struct gh_error err;
	bool readonly = cls == GH_SQL_READ;
	res->rows = 0;
	res->truncated = false;
	res->status = 0;
	res->error[0] = '\0';
	if (cls != GH_SQL_READ && cls != GH_SQL_WRITE && cls != GH_SQL_DDL) {
		snprintf(res->error, sizeof res->error, "statement class %s never runs", gh_sql_class_name(cls));
		return res->status = GH_EINVAL;
	}
	struct sconn *s = sconn_get(c, path, readonly ? 'r' : 'w', &err);
	if (!s) {
		snprintf(res->error, sizeof res->error, "%s", err.message);
		return res->status = GH_EIO;
	}
	/* The guard stays installed: changing an authorizer expires every prepared statement. It
	 * runs when a statement is prepared (or re-prepared after a schema change); a connection
	 * serves one class of statement text ("r:" reads, "w:" writes and DDL), and the same text
	 * always analyses to the same class under the same schema. */
	s->guard_max = cls;
	if (!s->guarded) {
		gh_sql_sqlite_guard(s->db, &s->guard_max);
		s->guarded = true;
	}

	sqlite3_stmt *st = gh_map_get(s->stmts, sql, len);
	if (!st) {
		if (sqlite3_prepare_v3(s->db, sql, (int)len, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK || !st) {
			snprintf(res->error, sizeof res->error, "%s", sqlite3_errmsg(s->db));
			sqlite3_finalize(st);
			return res->status = GH_EIO;
		}
		if (gh_map_count(s->stmts) >= GH_STMT_CACHE_MAX)
			gh_map_clear(s->stmts);
		if (gh_map_put(s->stmts, sql, len, st)) {
			sqlite3_finalize(st);
			return res->status = GH_ENOMEM;
		}
	}
	int rc = bind_params(st, params, res);
	if (rc) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return res->status = rc;
	}

	struct gh_buf *b = &res->json;
	int ncol = sqlite3_column_count(st);
	int brc = 0;
	if (ncol > 0) {
		brc = gh_buf_puts(b, "\"columns\":[");
		for (int i = 0; i < ncol && !brc; i++) {
			const char *name = sqlite3_column_name(st, i);
			if (i)
				brc = gh_buf_puts(b, ",");
			brc = brc ? brc : gh_buf_json_string(b, name ? name : "", name ? strlen(name) : 0);
		}
		brc = brc ? brc : gh_buf_puts(b, "],\"rows\":[");
	}
	s->deadline_us = lim->timeout_ms > 0 ? gh_mono_us() + (uint64_t)lim->timeout_ms * 1000u : 0;
	size_t limit_bytes = lim->max_bytes > 0 ? (size_t)lim->max_bytes : (size_t)-1;
	int step;
	int64_t nrows = 0;
	while (!brc && (step = sqlite3_step(st)) == SQLITE_ROW) {
		if (nrows >= lim->max_rows || b->len > limit_bytes) {
			res->truncated = true;
			break;
		}
		size_t mark = b->len;
		brc = gh_buf_puts(b, nrows ? ",[" : "[");
		for (int i = 0; i < ncol && !brc; i++) {
			if (i)
				brc = gh_buf_puts(b, ",");
			brc = brc ? brc : put_value(b, st, i);
		}
		brc = brc ? brc : gh_buf_puts(b, "]");
		if (brc == GH_ETOOBIG) {
			b->len = mark; /* drop the partial row */
			b->data[mark] = '\0';
			res->truncated = true;
			brc = 0;
			break;
		}
		nrows++;
	}
	if (!brc && !res->truncated && step != SQLITE_DONE && step != SQLITE_ROW) {
		int code = sqlite3_errcode(s->db);
		if (code == SQLITE_INTERRUPT) {
			snprintf(res->error, sizeof res->error, "statement exceeded the %lld ms time limit",
				 (long long)lim->timeout_ms);
			rc = GH_ETIMEOUT;
		} else {
			snprintf(res->error, sizeof res->error, "%s", sqlite3_errmsg(s->db));
			rc = GH_EIO;
		}
	}
	s->deadline_us = 0;
	int64_t changes = sqlite3_changes64(s->db);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (brc)
		return res->status = brc;
	if (rc)
		return res->status = rc;
	if (ncol > 0)
		brc = gh_buf_printf(b, "],\"row_count\":%lld,\"truncated\":%s", (long long)nrows,
				    res->truncated ? "true" : "false");
	if (!brc && !readonly)
		brc = gh_buf_printf(b, "%s\"rows_affected\":%lld", ncol > 0 ? "," : "", (long long)changes);
	res->rows = readonly || ncol > 0 ? nrows : changes;
	if (!readonly && ncol == 0)
		res->rows = changes;
	return res->status = brc;
}
