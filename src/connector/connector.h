/* connector: runs statements against resources. SQLite (embedded): a connector caches
 * connections and prepared statements; each thread owns one connector. PostgreSQL: pools of
 * libpq connections shared by the worker threads, one pool per (resource, environment). */
#ifndef GH_CONNECTOR_H
#define GH_CONNECTOR_H

#include <jansson.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "connector/pq_dl.h"
#include "core/core.h"
#include "sql/sql.h"

struct gh_connector;

struct gh_exec_limits {
	int64_t max_rows;
	int64_t max_bytes;
	int64_t timeout_ms;
};

struct gh_exec_result {
	struct gh_buf json;   /* JSON members (no braces): columns/rows/row_count/truncated and, for
			       * writes, rows_affected */
	int64_t rows;         /* rows returned, or rows affected for writes */
	bool truncated;
	int status;           /* 0, GH_ETIMEOUT, GH_EINVAL (parameters), GH_EIO (the engine refused) */
	char error[512];      /* the engine's message when status != 0 */
	char sqlstate[6];     /* PostgreSQL: the error's SQLSTATE, "" otherwise */
	bool conn_lost;       /* PostgreSQL: the backend connection broke (the pool drops it) */
};

struct gh_connector *gh_connector_new(void);
void gh_connector_free(struct gh_connector *c);

/* Returns the cached analysis connection to the SQLite file at path: read-only, query_only,
 * and never used to run statements, so the analyser's authorizers and the exec guard never
 * meet on one connection. Every connection is DEFENSIVE, without extension loading, untrusted
 * schema, and no ATTACH. The connection stays owned by c. */
int gh_connector_sqlite(struct gh_connector *c, const char *path, sqlite3 **db, struct gh_error *err);

/* Reads PRAGMA schema_version of the resource through the analysis connection: an analysis
 * made under another version is stale. A version read less than max_age_us ago is returned
 * without reading again (0: always read). */
int gh_connector_schema_version(struct gh_connector *c, const char *path, uint64_t max_age_us, int64_t *version,
				struct gh_error *err);

/* Runs one analysed statement: reads on a read-only connection, everything else on a
 * read-write one, under a guard that refuses any action above cls. params is a JSON array
 * bound positionally (never spliced). Fills res (initialise res->json with gh_buf_init). */
int gh_connector_exec(struct gh_connector *c, const char *path, enum gh_sql_class cls, const char *sql,
		      size_t len, json_t *params, const struct gh_exec_limits *lim, struct gh_exec_result *res);

/* ---- PostgreSQL ---- */

/* Fills out (capacity cap, NUL-terminated) with the libpq connection string held by the named
 * secret. Returns 0, GH_ENOTFOUND, or another error. The connector wipes out after use. */
typedef int (*gh_pg_dsn_fn)(void *arg, const char *secret, char *out, size_t cap);

struct gh_pg_pools;
struct gh_pg_conn;

/* Pools: at most max_per_pool connections per key; an acquire waits up to wait_ms for one to
 * come back, then fails with GH_ETIMEOUT. Thread-safe. */
struct gh_pg_pools *gh_pg_pools_new(int max_per_pool, int64_t wait_ms, gh_pg_dsn_fn dsn, void *arg);
void gh_pg_pools_free(struct gh_pg_pools *p);

/* Takes a connection for (resource, environment) whose credential is the named secret.
 * epoch is the caller's secrets generation: idle connections opened under another epoch are
 * closed (rotation drains them) and new ones read the secret again. err never holds the
 * connection string: a failed connect reports libpq's message with the DSN kept out. */
int gh_pg_acquire(struct gh_pg_pools *p, const char *resource, const char *environment, const char *secret,
		  uint64_t epoch, struct gh_pg_conn **out, struct gh_error *err);
/* Returns c to its pool; a broken connection, or one with a transaction still open, is closed. */
void gh_pg_release(struct gh_pg_conn *c);
PGconn *gh_pg_conn_pg(struct gh_pg_conn *c);
/* True when c had served an earlier request (a failure on it may be a stale idle connection). */
bool gh_pg_conn_reused(const struct gh_pg_conn *c);
/* Marks c's backend as gone: gh_pg_release closes it instead of keeping it. */
void gh_pg_conn_discard(struct gh_pg_conn *c);
/* True when r (or the connection's state) says the backend session is over: a connection
 * exception, or the backend terminated. */
bool gh_pg_lost(PGconn *pg, const PGresult *r);
/* Ends a COPY the backend started (status PGRES_COPY_*): refuses COPY IN, cancels and drains
 * COPY OUT. */
void gh_pg_end_copy(PGconn *pg, int status);
/* Pool counters for tests and metrics: connections open and idle, and requests waiting now,
 * summed over the pools. */
void gh_pg_pool_stats(struct gh_pg_pools *p, int *open, int *idle, int *waiting);
/* Since start: acquires that had to wait for a connection, and those that gave up (timeout). */
void gh_pg_pool_waits(struct gh_pg_pools *p, uint64_t *waits, uint64_t *timeouts);
/* Connections allowed per pool (--pg-pool). */
int gh_pg_pool_max(const struct gh_pg_pools *p);

/* Who is asking, set for row-level security inside every transaction with
 * set_config(name, value, true): gatehouse.user, .groups (comma-separated), .app, .environment. */
struct gh_pg_claims {
	const char *user, *groups, *app, *environment;
};

/* Opens a client transaction on c: BEGIN (READ ONLY when read_only), the statement timeout,
 * an idle-in-transaction timeout of 60 s (a client that leaves a transaction open cannot hold
 * a pooled connection forever: the backend ends it), and the claims, all local to the
 * transaction. On failure res holds the error. */
int gh_pg_begin(PGconn *c, bool read_only, int64_t timeout_ms, const struct gh_pg_claims *claims,
		struct gh_exec_result *res);

/* One statement's text and parameters as libpq takes them. */
struct gh_pg_stmt {
	const char *sql;            /* NUL-terminated */
	int n;
	const Oid *types;           /* NULL or n entries (0: let the server infer) */
	const char *const *vals;
	const int *lens, *fmts;     /* NULL: all text */
	int result_format;          /* 0 text, 1 binary */
};

/* In one round trip: BEGIN (READ ONLY for reads), the statement timeout and the claims, the
 * statement, and for reads ROLLBACK. Returns 0 with the statement's results next in line
 * (single-row mode): read them with PQgetResult until NULL, then call
 * gh_pg_pipeline_finish. A write is still open after finish: COMMIT or ROLLBACK it. On
 * failure res holds the error and the pipeline is already finished. */
int gh_pg_pipeline_start(PGconn *pg, const struct gh_pg_stmt *st, bool read_only, int64_t timeout_ms,
			 const struct gh_pg_claims *claims, struct gh_exec_result *res);
/* Drains the pipeline to its sync point and leaves pipeline mode; rolls back a transaction
 * that a failed statement left aborted. */
void gh_pg_pipeline_finish(PGconn *pg);

/* Runs one analysed statement in its own transaction (reads READ ONLY) with the claims set,
 * params bound as $1..$n (JSON null, booleans, numbers, strings; never spliced), at most
 * max_rows rows / max_bytes of JSON kept (the rest is cancelled). Commits a write only when it
 * succeeded; anything else rolls back. Fills res like gh_connector_exec. */
int gh_pg_exec(struct gh_pg_conn *c, enum gh_sql_class cls, const char *sql, size_t len, json_t *params,
	       const struct gh_exec_limits *lim, const struct gh_pg_claims *claims, struct gh_exec_result *res);

/* ---- schema listings (schema.c) ----
 * What GET /v1/schema shows: the tables and views of a resource, from its own catalog, with
 * only what the caller may see kept. */

struct gh_schema_column {
	char *name;
	char *type;          /* SQLite: the declared type (NULL: none); PostgreSQL: format_type() */
	char *comment;       /* NULL: none (SQLite has no comments) */
	bool nullable, primary_key;
};
struct gh_schema_fk {
	char **columns, **ref_columns; /* ncolumns each, in key order */
	size_t ncolumns;
	char *ref_table;
};
struct gh_schema_table {
	char *name;          /* SQLite: as declared; PostgreSQL: "t" in public, "schema.t" elsewhere */
	const char *kind;    /* "table", "view", "virtual table", "materialized view", "foreign table" */
	char *comment;
	struct gh_schema_column *columns;
	size_t ncolumns;
	struct gh_schema_fk *fks;
	size_t nfks;
};
struct gh_schema {
	struct gh_schema_table *tables;
	size_t ntables;
	bool truncated;      /* more was visible than GH_SCHEMA_MAX_TABLES / _COLUMNS keep */
};

/* What the caller may see: column NULL asks about a table. */
typedef bool (*gh_schema_visible_fn)(void *arg, const char *table, const char *column);

void gh_schema_free(struct gh_schema *s);
/* Removes table i from s (and the foreign keys that reference it). */
void gh_schema_remove(struct gh_schema *s, size_t i);

/* Lists the SQLite resource at path through c's read-only analysis connection: tables, views
 * and virtual tables (not sqlite_* nor shadow tables), by name; columns from
 * pragma table_xinfo, foreign keys from pragma foreign_key_list. Keeps only what visible
 * allows, and a foreign key only when its columns, its table and the columns it references are
 * all kept. Comments are NULL. Fills out (free with gh_schema_free); err on failure. */
int gh_connector_sqlite_schema(struct gh_connector *c, const char *path, gh_schema_visible_fn visible, void *arg,
			       struct gh_schema *out, struct gh_error *err);

/* Lists a PostgreSQL resource on c, in a READ ONLY transaction with the statement timeout and
 * claims set as for a query, from pg_catalog: tables, partitioned tables, views, materialized
 * views and foreign tables (not partitions) of the given schemas (NULL: public) that the
 * database role may SELECT (or some column of), columns it may SELECT, with format_type(),
 * NOT NULL, primary keys and foreign keys (pg_constraint), comments (obj_description,
 * col_description). Filtered by visible like the SQLite listing. On failure res holds the
 * error (and a lost connection is flagged). */
int gh_pg_schema(struct gh_pg_conn *c, char *const *schemas, size_t nschemas, int64_t timeout_ms,
		 const struct gh_pg_claims *claims, gh_schema_visible_fn visible, void *arg, struct gh_schema *out,
		 struct gh_exec_result *res);

#endif
