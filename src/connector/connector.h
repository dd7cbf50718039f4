/* connector: runs statements against resources. This issue: SQLite, embedded. A connector
 * caches connections and prepared statements; each thread owns one connector. */
#ifndef GH_CONNECTOR_H
#define GH_CONNECTOR_H

#include <jansson.h>
#include <sqlite3.h>

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

#endif
