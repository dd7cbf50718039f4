/* sql: SQLite statement analysis through sqlite3_set_authorizer. No string matching on SQL:
 * every fact comes from SQLite's parser and code generator. */
#include "sql/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PRAGMAs that only describe a table or index; anything else (settings, writes, file paths,
 * integrity checks that run for minutes) is forbidden. */
static const char *const pragma_allow[] = {
	"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list",
};

/* Functions refused wherever they appear. load_extension is also disabled on the connection;
 * fts3_tokenizer can reach function pointers and is off under DEFENSIVE. */
static const char *const function_deny[] = {"load_extension", "fts3_tokenizer"};

struct recorder {
	struct gh_sql_analysis *a;
	bool destructive, forbidden, ddl, write, drop_column, oom, too_many;
	char reason[256];
};

const char *gh_sql_class_name(enum gh_sql_class c)
{
	switch (c) {
	case GH_SQL_READ: return "read";
	case GH_SQL_WRITE: return "write";
	case GH_SQL_DDL: return "ddl";
	case GH_SQL_DESTRUCTIVE: return "destructive";
	case GH_SQL_SESSION: return "session";
	default: return "forbidden";
	}
}

static bool in_list(const char *z, const char *const *list, size_t n)
{
	for (size_t i = 0; z && i < n; i++)
		if (sqlite3_stricmp(z, list[i]) == 0)
			return true;
	return false;
}

static bool is_schema_table(const char *t)
{
	return t && sqlite3_strnicmp(t, "sqlite_", 7) == 0;
}

/* Sets flag and keeps the first reason, preferring a destructive one. */
static void note(struct recorder *r, bool *flag, const char *what, const char *name)
{
	if (!r->reason[0] || (flag == &r->destructive && !r->destructive))
		snprintf(r->reason, sizeof r->reason, "%s%s%s", what, name ? " " : "", name ? name : "");
	*flag = true;
}

int gh_sql_table_add_column(struct gh_sql_table *t, const char *column, bool nocase)
{
	for (size_t i = 0; i < t->ncolumns; i++)
		if ((nocase ? sqlite3_stricmp(t->columns[i], column) : strcmp(t->columns[i], column)) == 0)
			return 0;
	if (t->ncolumns >= GH_SQL_MAX_NAMES) {
		t->all_columns = true; /* more than can be kept: as if it read them all */
		return 0;
	}
	if (t->ncolumns % 8 == 0) {
		char **c = realloc(t->columns, (t->ncolumns + 8) * sizeof *c);
		if (!c)
			return GH_ENOMEM;
		t->columns = c;
	}
	if (!(t->columns[t->ncolumns] = gh_strdup(column)))
		return GH_ENOMEM;
	t->ncolumns++;
	return 0;
}

/* Records a table the statement touches; direct unless reached through a view or trigger.
 * Returns the entry, or NULL (out of memory, or more tables than are kept). */
static struct gh_sql_table *add_table(struct recorder *r, const char *name, bool written, bool direct)
{
	struct gh_sql_analysis *a = r->a;
	if (!name)
		return NULL;
	for (size_t i = 0; i < a->ntables; i++)
		if (sqlite3_stricmp(a->tables[i].name, name) == 0) {
			if (written) a->tables[i].written = true; else a->tables[i].read = true;
			if (direct)
				a->tables[i].direct = true;
			return &a->tables[i];
		}
	if (a->ntables >= GH_SQL_MAX_NAMES) {
		r->too_many = true;
		return NULL;
	}
	if (a->ntables % 8 == 0) {
		struct gh_sql_table *t = realloc(a->tables, (a->ntables + 8) * sizeof *t);
		if (!t) {
			r->oom = true;
			return NULL;
		}
		a->tables = t;
	}
	char *n = gh_strdup(name);
	if (!n) {
		r->oom = true;
		return NULL;
	}
	a->tables[a->ntables] = (struct gh_sql_table){.name = n, .read = !written, .written = written, .direct = direct};
	return &a->tables[a->ntables++];
}

static void add_function(struct recorder *r, const char *name)
{
	struct gh_sql_analysis *a = r->a;
	if (!name || sqlite3_strnicmp(name, "sqlite_", 7) == 0)
		return; /* SQLite's internal helpers for ALTER TABLE */
	for (size_t i = 0; i < a->nfunctions; i++)
		if (sqlite3_stricmp(a->functions[i], name) == 0)
			return;
	if (a->nfunctions >= GH_SQL_MAX_NAMES)
		return;
	if (a->nfunctions % 8 == 0) {
		char **f = realloc(a->functions, (a->nfunctions + 8) * sizeof *f);
		if (!f) {
			r->oom = true;
			return;
		}
		a->functions = f;
	}
	if (!(a->functions[a->nfunctions] = gh_strdup(name)))
		r->oom = true;
	else
		a->nfunctions++;
}

/* Classifies one authorizer action: what class of statement it implies and, for destructive
 * and forbidden ones, why. Shared by analysis (which records) and the guard (which enforces). */
static enum gh_sql_class action_class(int action, const char *a1, const char *a2, const char *db,
				      const char **why)
{
	*why = NULL;
	switch (action) {
	case SQLITE_DROP_INDEX: case SQLITE_DROP_TABLE: case SQLITE_DROP_TRIGGER: case SQLITE_DROP_VIEW:
	case SQLITE_DROP_VTABLE: case SQLITE_DROP_TEMP_INDEX: case SQLITE_DROP_TEMP_TABLE:
	case SQLITE_DROP_TEMP_TRIGGER: case SQLITE_DROP_TEMP_VIEW:
		*why = "DROP of";
		return GH_SQL_DESTRUCTIVE;
	case SQLITE_CREATE_TEMP_INDEX: case SQLITE_CREATE_TEMP_TABLE: case SQLITE_CREATE_TEMP_TRIGGER:
	case SQLITE_CREATE_TEMP_VIEW:
		*why = "temporary objects outlive the request on a shared connection:";
		return GH_SQL_FORBIDDEN;
	case SQLITE_CREATE_INDEX: case SQLITE_CREATE_TABLE: case SQLITE_CREATE_TRIGGER: case SQLITE_CREATE_VIEW:
	case SQLITE_CREATE_VTABLE:
		/* "temp.x" names reach here, not the TEMP codes: a temp object would outlive the
		 * request on a pooled connection and act inside other users' statements */
		if (db && sqlite3_stricmp(db, "main") != 0) {
			*why = "objects outside the main database are not allowed:";
			return GH_SQL_FORBIDDEN;
		}
		return GH_SQL_DDL;
	case SQLITE_REINDEX: case SQLITE_ANALYZE: case SQLITE_ALTER_TABLE:
		return GH_SQL_DDL;
	case SQLITE_ATTACH: case SQLITE_DETACH:
		*why = "ATTACH/DETACH reaches other database files";
		return GH_SQL_FORBIDDEN;
	case SQLITE_TRANSACTION: case SQLITE_SAVEPOINT:
		*why = "transaction control is not allowed per request:";
		return GH_SQL_FORBIDDEN;
	case SQLITE_PRAGMA:
		if (in_list(a1, pragma_allow, sizeof pragma_allow / sizeof *pragma_allow))
			return GH_SQL_READ;
		*why = "PRAGMA not on the read-only allow-list:";
		return GH_SQL_FORBIDDEN;
	case SQLITE_FUNCTION:
		if (a2 && sqlite3_stricmp(a2, "sqlite_drop_column") == 0) {
			*why = "ALTER TABLE DROP COLUMN";
			return GH_SQL_DESTRUCTIVE;
		}
		if (in_list(a2, function_deny, sizeof function_deny / sizeof *function_deny)) {
			*why = "function not allowed:";
			return GH_SQL_FORBIDDEN;
		}
		return GH_SQL_READ;
	case SQLITE_INSERT: case SQLITE_UPDATE: case SQLITE_DELETE:
		if (db && sqlite3_stricmp(db, "main") != 0 && is_schema_table(a1)) {
			/* A new row in sqlite_temp_master is a new temp object (CREATE TRIGGER temp.x ON
			 * main.t is made that way); ALTER TABLE only updates references there. */
			if (action != SQLITE_INSERT)
				return GH_SQL_DDL;
			*why = "temporary objects outlive the request on a shared connection:";
			return GH_SQL_FORBIDDEN;
		}
		if (db && sqlite3_stricmp(db, "main") != 0) {
			*why = "writes outside the main database are not allowed:";
			return GH_SQL_FORBIDDEN;
		}
		/* DDL maintains the schema table itself. A write to it without DDL is caught by the
		 * read-only check: the statement is not read-only yet asked for nothing nameable. */
		return is_schema_table(a1) ? GH_SQL_DDL : GH_SQL_WRITE;
	case SQLITE_READ:
		if (a1 && sqlite3_strnicmp(a1, "pragma_", 7) == 0 &&
		    !in_list(a1 + 7, pragma_allow, sizeof pragma_allow / sizeof *pragma_allow)) {
			*why = "pragma function not on the read-only allow-list:";
			return GH_SQL_FORBIDDEN;
		}
		return GH_SQL_READ;
	case SQLITE_SELECT: case SQLITE_RECURSIVE:
		return GH_SQL_READ;
	default:
		*why = "statement performs an action the analyser does not know";
		return GH_SQL_FORBIDDEN;
	}
}

/* Records each action SQLite's code generator asks permission for. Answers OK to what may be
 * decided later, and DENY to anything destructive or forbidden: SQLite applies many PRAGMAs
 * (query_only, writable_schema, hard_heap_limit, ...) while it prepares, so merely analysing
 * a refused statement must not let it be compiled. The recorded reason survives the failed
 * prepare. */
static int record(void *arg, int action, const char *a1, const char *a2, const char *db, const char *trigger)
{
	struct recorder *r = arg;
	const char *why;
	enum gh_sql_class c = action_class(action, a1, a2, db, &why);
	const char *name = action == SQLITE_FUNCTION ? a2 : action == SQLITE_INSERT || action == SQLITE_UPDATE ||
			   action == SQLITE_DELETE ? db : a1;
	(void)trigger;
	switch (c) {
	case GH_SQL_DESTRUCTIVE:
		note(r, &r->destructive, why, action == SQLITE_FUNCTION ? NULL : name);
		break;
	case GH_SQL_FORBIDDEN:
		note(r, &r->forbidden, why, name);
		break;
	case GH_SQL_DDL:
		if (!is_schema_table(a1) || action == SQLITE_ALTER_TABLE || action == SQLITE_CREATE_TABLE)
			r->ddl = true;
		break;
	case GH_SQL_WRITE:
		r->write = true;
		break;
	default:
		break;
	}
	/* A write made by a trigger is the trigger's definer's business (a WITH clause cannot
	 * write in SQLite, so the name is a real trigger's). A read never is: SQLite names a CTE
	 * in the same place as a view, and a CTE may take a view's name, so reads through views
	 * count as the statement's own. */
	bool direct = trigger == NULL || action == SQLITE_READ || action == SQLITE_PRAGMA;
	if (action == SQLITE_INSERT || action == SQLITE_UPDATE || action == SQLITE_DELETE) {
		add_table(r, a1, true, direct);
	} else if (action == SQLITE_ALTER_TABLE) {
		add_table(r, a2, true, direct);
	} else if (action == SQLITE_READ) {
		struct gh_sql_table *t = add_table(r, a1, false, direct);
		/* the columns read; "" is a table read without a column (count(*)) */
		if (t && a2 && *a2 && gh_sql_table_add_column(t, a2, true))
			r->oom = true;
	} else if (action == SQLITE_PRAGMA && c == GH_SQL_READ && a2) {
		/* table_info and friends describe every column of the table named */
		struct gh_sql_table *t = add_table(r, a2, false, direct);
		if (t)
			t->all_columns = true;
	} else if (action == SQLITE_FUNCTION) {
		add_function(r, a2);
	}
	return c == GH_SQL_DESTRUCTIVE || c == GH_SQL_FORBIDDEN ? SQLITE_DENY : SQLITE_OK;
}

/* Refuses everything: used where text is prepared only to learn whether it holds a statement. */
static int deny_all(void *arg, int action, const char *a1, const char *a2, const char *db, const char *trigger)
{
	(void)arg; (void)action; (void)a1; (void)a2; (void)db; (void)trigger;
	return SQLITE_DENY;
}

/* Enforcing authorizer for execution connections: refuses any action above the class the
 * statement was decided as, so a statement whose meaning changed after analysis (schema
 * change and re-prepare) still cannot do more than was allowed. */
static int guard(void *arg, int action, const char *a1, const char *a2, const char *db, const char *trigger)
{
	const enum gh_sql_class *max = arg;
	const char *why;
	enum gh_sql_class c = action_class(action, a1, a2, db, &why);
	(void)trigger;
	if (c == GH_SQL_DESTRUCTIVE || c == GH_SQL_FORBIDDEN)
		return SQLITE_DENY;
	/* SQLite's own bookkeeping of the main schema table: it follows a DDL action that is
	 * checked on its own, or (on first use of a table-valued function such as json_each or
	 * pragma_table_info) writes nothing at all. DEFENSIVE refuses real writes to it, and read
	 * connections are opened read-only. */
	if ((action == SQLITE_INSERT || action == SQLITE_UPDATE || action == SQLITE_DELETE) && is_schema_table(a1))
		return SQLITE_OK;
	return c <= *max ? SQLITE_OK : SQLITE_DENY;
}

void gh_sql_sqlite_guard(sqlite3 *db, const enum gh_sql_class *max)
{
	sqlite3_set_authorizer(db, max ? guard : NULL, (void *)(uintptr_t)max);
}

void gh_sql_analysis_ref(struct gh_sql_analysis *a)
{
	__atomic_add_fetch(&a->refs, 1, __ATOMIC_RELAXED);
}

void gh_sql_analysis_unref(struct gh_sql_analysis *a)
{
	if (!a || __atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (size_t i = 0; i < a->ntables; i++) {
		free(a->tables[i].name);
		for (size_t j = 0; j < a->tables[i].ncolumns; j++)
			free(a->tables[i].columns[j]);
		free(a->tables[i].columns);
	}
	free(a->tables);
	for (size_t i = 0; i < a->nfunctions; i++)
		free(a->functions[i]);
	free(a->functions);
	free(a->stmts);
	free(a);
}

static void forbid(struct gh_sql_analysis *a, const char *why, const char *detail)
{
	a->cls = GH_SQL_FORBIDDEN;
	snprintf(a->reason, sizeof a->reason, "%s%s%s", why, detail ? ": " : "", detail ? detail : "");
}

/* True when the remaining text holds another statement. Uses SQLite's parser: comments and
 * whitespace prepare to no statement. */
static bool has_more_statements(sqlite3 *db, const char *tail, const char *end)
{
	bool more = false;
	sqlite3_set_authorizer(db, deny_all, NULL); /* nothing in the tail may take effect */
	while (tail < end) {
		sqlite3_stmt *s = NULL;
		const char *next = NULL;
		int rc = sqlite3_prepare_v3(db, tail, (int)(end - tail), 0, &s, &next);
		if (rc != SQLITE_OK || s) {
			sqlite3_finalize(s);
			more = true; /* a statement, or text that is not one: either way not alone */
			break;
		}
		if (!next || next <= tail)
			break;
		tail = next;
	}
	sqlite3_set_authorizer(db, NULL, NULL);
	return more;
}

int gh_sql_analyze_sqlite(sqlite3 *db, const char *sql, size_t len, struct gh_sql_analysis **out)
{
	struct gh_sql_analysis *a = calloc(1, sizeof *a);
	if (!a)
		return GH_ENOMEM;
	a->refs = 1;
	struct recorder r = {.a = a};
	sqlite3_stmt *stmt = NULL;
	const char *tail = NULL;

	if (len > (size_t)0x7fffffff) {
		forbid(a, "statement too long", NULL);
		goto done;
	}
	if (memchr(sql, '\0', len)) {
		forbid(a, "statement contains a NUL byte", NULL);
		goto done;
	}
	sqlite3_set_authorizer(db, record, &r);
	int rc = sqlite3_prepare_v3(db, sql, (int)len, 0, &stmt, &tail);
	sqlite3_set_authorizer(db, NULL, NULL);
	if (rc != SQLITE_OK && r.destructive) {
		a->cls = GH_SQL_DESTRUCTIVE; /* refused by record() itself */
		snprintf(a->reason, sizeof a->reason, "%s", r.reason);
		goto done;
	}
	if (rc != SQLITE_OK && r.forbidden) {
		forbid(a, r.reason, NULL);
		goto done;
	}
	if (rc != SQLITE_OK) {
		forbid(a, "statement does not prepare", sqlite3_errmsg(db));
		goto done;
	}
	if (!stmt) {
		forbid(a, "empty statement", NULL);
		goto done;
	}
	if (has_more_statements(db, tail, sql + len)) {
		forbid(a, "more than one statement in one request", NULL);
		goto done;
	}
	a->nparams = sqlite3_bind_parameter_count(stmt);
	if (r.too_many) {
		/* the policy decides on the tables a statement touches: all of them must be known */
		forbid(a, "statement touches more than the tables the analyser keeps", NULL);
		goto done;
	}
	if (r.oom) {
		sqlite3_finalize(stmt);
		gh_sql_analysis_unref(a);
		return GH_ENOMEM;
	}
	if (r.destructive) {
		a->cls = GH_SQL_DESTRUCTIVE;
		snprintf(a->reason, sizeof a->reason, "%s", r.reason);
	} else if (r.forbidden) {
		forbid(a, r.reason, NULL);
	} else if (r.ddl) {
		a->cls = GH_SQL_DDL;
	} else if (r.write) {
		a->cls = GH_SQL_WRITE;
	} else if (!sqlite3_stmt_readonly(stmt)) {
		/* Changes the database but asked for no permission SQLite can name: VACUUM (and
		 * VACUUM INTO, which writes a file), writes to the schema table, and the like. */
		forbid(a, "statement changes the database in a way the analyser cannot classify", NULL);
	} else if (sqlite3_column_count(stmt) == 0) {
		/* Every read returns columns. A statement with none that asked for nothing is a
		 * no-op the analyser cannot name, e.g. DROP TRIGGER IF EXISTS of an absent trigger:
		 * refused rather than recorded as a harmless read. */
		forbid(a, "statement has no effect the analyser can name (such as DROP ... IF EXISTS of "
			  "an absent object)", NULL);
	} else {
		a->cls = GH_SQL_READ;
	}
done:
	sqlite3_finalize(stmt);
	*out = a;
	return 0;
}

int gh_sql_tables_json(const struct gh_sql_analysis *a, struct gh_buf *out)
{
	int rc = gh_buf_puts(out, "[");
	bool first = true;
	for (size_t i = 0; a && i < a->ntables && !rc; i++) {
		if (is_schema_table(a->tables[i].name))
			continue;
		if (!first)
			rc = gh_buf_puts(out, ",");
		first = false;
		if (!rc)
			rc = gh_buf_json_string(out, a->tables[i].name, strlen(a->tables[i].name));
	}
	return rc ? rc : gh_buf_puts(out, "]");
}
