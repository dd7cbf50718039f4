/* sql: statement analysis by the resource's own parser. For SQLite: prepare the statement
 * with an authorizer that records every action, then classify from what was recorded. */
#ifndef GH_SQL_H
#define GH_SQL_H

#include <sqlite3.h>

#include "core/core.h"

enum gh_sql_class {
	GH_SQL_READ,
	GH_SQL_WRITE,
	GH_SQL_DDL,
	GH_SQL_DESTRUCTIVE,
	GH_SQL_FORBIDDEN,
};

struct gh_sql_table {
	char *name;
	bool read, written;
};

/* Immutable once made; shared by reference count between the cache and requests. */
struct gh_sql_analysis {
	enum gh_sql_class cls;
	char reason[256];          /* why it is destructive or forbidden; "" otherwise */
	struct gh_sql_table *tables;
	size_t ntables;
	char **functions;
	size_t nfunctions;
	int nparams;               /* bound parameters the statement takes */
	int64_t schema_version;    /* the resource's schema version it was made under (caller sets) */
	int refs;
};

const char *gh_sql_class_name(enum gh_sql_class c);

/* Analyses one statement of text sql[0..len) on db (a connection to the resource; nothing is
 * executed). Always produces an analysis when memory allows: text that fails to prepare, is
 * empty or holds more than one statement is classified forbidden with the reason. db's
 * authorizer is replaced for the call and removed after. */
int gh_sql_analyze_sqlite(sqlite3 *db, const char *sql, size_t len, struct gh_sql_analysis **out);

/* Installs an enforcing authorizer on an execution connection: actions above *max (which
 * must outlive the connection's use) are refused by SQLite itself. NULL removes it. */
void gh_sql_sqlite_guard(sqlite3 *db, const enum gh_sql_class *max);

void gh_sql_analysis_ref(struct gh_sql_analysis *a);
void gh_sql_analysis_unref(struct gh_sql_analysis *a);

/* Writes the table names (comma-separated, JSON array when json is true) into out. */
int gh_sql_tables_json(const struct gh_sql_analysis *a, struct gh_buf *out);

#endif
