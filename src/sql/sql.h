/* sql: statement analysis by the resource's own parser. For SQLite: prepare the statement
 * with an authorizer that records every action, then classify from what was recorded. For
 * PostgreSQL: parse with libpg_query (the PostgreSQL parser itself) and walk the tree. */
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
	GH_SQL_SESSION,  /* PostgreSQL: transaction control, SET/SHOW/RESET of ordinary settings */
};

/* PostgreSQL session statements, so a front can act on them (GH_SQL_SESSION only). */
enum gh_sql_session {
	GH_SESSION_NONE,
	GH_SESSION_BEGIN,      /* BEGIN / START TRANSACTION */
	GH_SESSION_COMMIT,     /* COMMIT / END (also COMMIT AND CHAIN) */
	GH_SESSION_ROLLBACK,   /* ROLLBACK / ABORT */
	GH_SESSION_SAVEPOINT,  /* SAVEPOINT, RELEASE, ROLLBACK TO */
	GH_SESSION_SET,        /* SET [LOCAL] name ... (never role, session authorization, gatehouse.*) */
	GH_SESSION_SHOW,       /* SHOW name */
	GH_SESSION_RESET,      /* RESET name (never ALL, role, session authorization, gatehouse.*) */
};

/* One statement of a PostgreSQL text (several when the text holds several). */
struct gh_sql_stmt {
	enum gh_sql_class cls;
	enum gh_sql_session session;
	bool set_local;            /* GH_SESSION_SET: SET LOCAL */
	bool begin_read_only;      /* GH_SESSION_BEGIN: BEGIN ... READ ONLY */
	size_t offset, len;        /* the statement's span in the analysed text */
};

/* A relation a statement touches. columns are the names it reads of it (SQLite: exactly, from
 * the authorizer, including what views read; PostgreSQL: every column name that may belong to
 * it, since the parser knows no catalog), at most GH_SQL_MAX_NAMES; all_columns when it reads
 * columns it does not name (SELECT *, a whole-row reference, NATURAL JOIN, column aliases,
 * PRAGMA table_info, or more names than kept). direct is false when only a trigger writes it
 * (SQLite), which the policy leaves to whoever defined the trigger. */
struct gh_sql_table {
	char *name;
	bool read, written;
	bool direct;
	bool all_columns;
	char **columns;
	size_t ncolumns;
};

/* Immutable once made; shared by reference count between the cache and requests. */
struct gh_sql_analysis {
	enum gh_sql_class cls;
	char reason[256];          /* why it is destructive or forbidden; "" otherwise */
	struct gh_sql_table *tables;
	size_t ntables;
	char **functions;
	size_t nfunctions;
	int nparams;               /* bound parameters the statement takes ($n: the highest n) */
	bool own_only;             /* PostgreSQL DO, CALL, CREATE/ALTER FUNCTION/PROCEDURE, GRANT,
				    * REVOKE: cls is GH_SQL_DDL, and only an `own` grant may run it */
	bool copy;                 /* PostgreSQL COPY: the fronts do not carry COPY data */
	bool sets_search_path;     /* PostgreSQL: SET/RESET search_path or set_config of it, which
				    * changes what unqualified names mean */
	char fingerprint[17];      /* PostgreSQL: libpg_query's fingerprint, 16 hex digits; "" else */
	struct gh_sql_stmt *stmts; /* PostgreSQL: each statement of the text, in order */
	size_t nstmts;
	int64_t schema_version;    /* the resource's schema version it was made under (caller sets) */
	int refs;
};

const char *gh_sql_class_name(enum gh_sql_class c);

/* Analyses one statement of text sql[0..len) on db (a connection to the resource; nothing is
 * executed). Always produces an analysis when memory allows: text that fails to prepare, is
 * empty or holds more than one statement is classified forbidden with the reason. db's
 * authorizer is replaced for the call and removed after. */
int gh_sql_analyze_sqlite(sqlite3 *db, const char *sql, size_t len, struct gh_sql_analysis **out);

/* Analyses PostgreSQL text sql[0..len) (need not be NUL-terminated) with libpg_query. The
 * whole text's class is the most severe of its statements' (destructive > forbidden > ddl >
 * write > session > read); if any statement is destructive or forbidden, the text is, with
 * that statement's reason. Text that does not parse is forbidden with the parser's message and
 * 1-based character position in reason. Empty text (comments only) is forbidden. tables lists
 * the relations read and written (schema-qualified names as written, lower-cased unless
 * quoted), functions the functions called (as written, qualified when written qualified).
 * Never executes anything and needs no server. Returns GH_ENOMEM only. */
int gh_sql_analyze_pg(const char *sql, size_t len, struct gh_sql_analysis **out);

/* Installs an enforcing authorizer on an execution connection: actions above *max (which
 * must outlive the connection's use) are refused by SQLite itself. NULL removes it. */
void gh_sql_sqlite_guard(sqlite3 *db, const enum gh_sql_class *max);

void gh_sql_analysis_ref(struct gh_sql_analysis *a);
void gh_sql_analysis_unref(struct gh_sql_analysis *a);

/* Adds column (case-insensitively unique when nocase) to t's columns; past GH_SQL_MAX_NAMES
 * it sets all_columns instead. GH_ENOMEM or 0. */
int gh_sql_table_add_column(struct gh_sql_table *t, const char *column, bool nocase);

/* Writes the table names (comma-separated, JSON array when json is true) into out. */
int gh_sql_tables_json(const struct gh_sql_analysis *a, struct gh_buf *out);

/* ---- fingerprints (fingerprint.c): statements that differ only in literal values ---- */

enum gh_sql_dialect { GH_SQL_DIALECT_SQLITE, GH_SQL_DIALECT_PG };

/* Normalises statement text with a small tokenizer of its own (no parser, never fails on
 * malformed text): every literal (string, number, blob, PostgreSQL E'' and dollar-quoted
 * string) and every parameter (?, ?N, :name, @name, $name, $N) becomes ?, a sign where an
 * operand is expected is part of the number after it, comments are dropped, whitespace is rewritten to one
 * canonical spacing, the elements of an IN (...) list of literals collapse to one, and repeated
 * identical VALUES rows to one. out gets the result with words as written; fold (optional) the
 * same text with unquoted words lower-cased (what a fingerprint hashes). Quoted identifiers are
 * kept as written, except that in SQLite text a double-quoted one becomes ? (SQLite takes it for
 * a string when no column has that name, so it may hold a value). Never reads past len. Returns 0, or GH_ETOOBIG/GH_ENOMEM when a buffer's
 * ceiling is reached (2 * len + 16 bytes always suffice). */
int gh_sql_normalize(const char *sql, size_t len, enum gh_sql_dialect d, struct gh_buf *out, struct gh_buf *fold);

/* A statement's fingerprint (16 hex digits) and its normalised text (gh_sql_normalize's out),
 * which holds no literal or parameter value. PostgreSQL text that parses gets libpg_query's
 * fingerprint; anything else the hash (BLAKE2b, 8 bytes) of the folded normalised text.
 * example may be NULL. Returns 0, GH_ENOMEM, or GH_ETOOBIG when example's ceiling is hit. */
int gh_sql_fingerprint(const char *sql, size_t len, enum gh_sql_dialect d, char fp[17], struct gh_buf *example);

/* libpg_query's fingerprint of text (16 hex digits): 0, GH_EINVAL when it does not parse,
 * GH_ENOMEM. Deep texts are fingerprinted on a helper thread with a large stack. */
int gh_sql_fingerprint_pg(const char *sql, size_t len, char out[17]);

#endif
