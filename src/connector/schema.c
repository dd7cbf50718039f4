/* connector: schema listings from a resource's own catalog (SQLite pragmas, PostgreSQL
 * pg_catalog), reduced to what the caller may see. */
#include "connector/connector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the listing ---- */

static void column_free(struct gh_schema_column *c)
{
	free(c->name);
	free(c->type);
	free(c->comment);
}

static void fk_free(struct gh_schema_fk *f)
{
	for (size_t i = 0; i < f->ncolumns; i++) {
		free(f->columns[i]);
		free(f->ref_columns[i]);
	}
	free(f->columns);
	free(f->ref_columns);
	free(f->ref_table);
}

static void table_free(struct gh_schema_table *t)
{
	free(t->name);
	free(t->comment);
	for (size_t i = 0; i < t->ncolumns; i++)
		column_free(&t->columns[i]);
	free(t->columns);
	for (size_t i = 0; i < t->nfks; i++)
		fk_free(&t->fks[i]);
	free(t->fks);
}

void gh_schema_free(struct gh_schema *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ntables; i++)
		table_free(&s->tables[i]);
	free(s->tables);
	memset(s, 0, sizeof *s);
}

void gh_schema_remove(struct gh_schema *s, size_t i)
{
	if (i >= s->ntables)
		return;
	char *name = s->tables[i].name;
	s->tables[i].name = NULL;
	table_free(&s->tables[i]);
	memmove(&s->tables[i], &s->tables[i + 1], (s->ntables - i - 1) * sizeof *s->tables);
	s->ntables--;
	for (size_t t = 0; t < s->ntables; t++) {
		struct gh_schema_table *tb = &s->tables[t];
		size_t k = 0;
		for (size_t j = 0; j < tb->nfks; j++) {
			if (strcmp(tb->fks[j].ref_table, name) == 0)
				fk_free(&tb->fks[j]);
			else
				tb->fks[k++] = tb->fks[j];
		}
		tb->nfks = k;
	}
	free(name);
}

/* Grows an array of elem-sized items by 16 when n reaches a multiple of 16. */
static int grow(void **p, size_t n, size_t elem)
{
	if (n % 16)
		return 0;
	void *q = realloc(*p, (n + 16) * elem);
	if (!q)
		return GH_ENOMEM;
	*p = q;
	return 0;
}

/* A copy of a comment cut to GH_SCHEMA_MAX_COMMENT bytes at a UTF-8 boundary; NULL for NULL
 * or empty. *oom is set when the copy fails. */
static char *comment_dup(const char *z, bool *oom)
{
	if (!z || !*z)
		return NULL;
	size_t n = strlen(z);
	if (n > GH_SCHEMA_MAX_COMMENT) {
		n = GH_SCHEMA_MAX_COMMENT;
		while (n && ((unsigned char)z[n] & 0xC0) == 0x80)
			n--;
	}
	char *c = gh_strndup(z, n);
	if (!c)
		*oom = true;
	return c;
}

/* Appends a table named name; NULL on out of memory. */
static struct gh_schema_table *add_table(struct gh_schema *s, const char *name, const char *kind)
{
	if (grow((void **)&s->tables, s->ntables, sizeof *s->tables))
		return NULL;
	struct gh_schema_table *t = &s->tables[s->ntables];
	memset(t, 0, sizeof *t);
	if (!(t->name = gh_strdup(name)))
		return NULL;
	t->kind = kind;
	s->ntables++;
	return t;
}

static int add_column(struct gh_schema_table *t, const char *name, const char *type, const char *comment,
		      bool nullable, bool pk)
{
	if (grow((void **)&t->columns, t->ncolumns, sizeof *t->columns))
		return GH_ENOMEM;
	struct gh_schema_column *c = &t->columns[t->ncolumns];
	bool oom = false;
	*c = (struct gh_schema_column){.name = gh_strdup(name), .type = type && *type ? gh_strdup(type) : NULL,
				       .comment = comment_dup(comment, &oom), .nullable = nullable, .primary_key = pk};
	t->ncolumns++; /* counted now so that gh_schema_free frees what was copied */
	if (!c->name || (type && *type && !c->type) || oom)
		return GH_ENOMEM;
	return 0;
}

/* Starts a foreign key of t to ref_table; NULL on out of memory. */
static struct gh_schema_fk *add_fk(struct gh_schema_table *t, const char *ref_table)
{
	if (grow((void **)&t->fks, t->nfks, sizeof *t->fks))
		return NULL;
	struct gh_schema_fk *f = &t->fks[t->nfks];
	memset(f, 0, sizeof *f);
	t->nfks++;
	return (f->ref_table = gh_strdup(ref_table)) ? f : NULL;
}

/* Adds a column pair to f; ref NULL: filled in later (SQLite: the referenced primary key). */
static int fk_pair(struct gh_schema_fk *f, const char *col, const char *ref)
{
	if (grow((void **)&f->columns, f->ncolumns, sizeof *f->columns) ||
	    grow((void **)&f->ref_columns, f->ncolumns, sizeof *f->ref_columns))
		return GH_ENOMEM;
	f->columns[f->ncolumns] = gh_strdup(col);
	f->ref_columns[f->ncolumns] = ref ? gh_strdup(ref) : NULL;
	f->ncolumns++;
	return !f->columns[f->ncolumns - 1] || (ref && !f->ref_columns[f->ncolumns - 1]) ? GH_ENOMEM : 0;
}

static const struct gh_schema_table *find_table(const struct gh_schema *s, const char *name, bool nocase)
{
	for (size_t i = 0; i < s->ntables; i++)
		if ((nocase ? sqlite3_stricmp(s->tables[i].name, name) : strcmp(s->tables[i].name, name)) == 0)
			return &s->tables[i];
	return NULL;
}

static bool has_column(const struct gh_schema_table *t, const char *name, bool nocase)
{
	for (size_t i = 0; i < t->ncolumns; i++)
		if ((nocase ? sqlite3_stricmp(t->columns[i].name, name) : strcmp(t->columns[i].name, name)) == 0)
			return true;
	return false;
}

/* Whether foreign key f of t may be shown: its columns, the referenced table and the columns
 * referenced are all in the listing. A SQLite key that names no referenced columns refers to
 * the primary key, resolved here from the listed table (a hidden key column hides the key). */
static int fk_keep(const struct gh_schema *s, const struct gh_schema_table *t, struct gh_schema_fk *f, bool nocase,
		   bool *keep)
{
	*keep = false;
	const struct gh_schema_table *rt = find_table(s, f->ref_table, nocase);
	if (!rt || !f->ncolumns)
		return 0;
	if (!f->ref_columns[0]) {
		size_t npk = 0;
		for (size_t i = 0; i < rt->ncolumns; i++)
			npk += rt->columns[i].primary_key;
		if (npk != f->ncolumns)
			return 0;
		size_t k = 0;
		for (size_t i = 0; i < rt->ncolumns && k < f->ncolumns; i++)
			if (rt->columns[i].primary_key) {
				free(f->ref_columns[k]);
				if (!(f->ref_columns[k++] = gh_strdup(rt->columns[i].name)))
					return GH_ENOMEM;
			}
		/* the table name as the referenced table declares it */
		char *n = gh_strdup(rt->name);
		if (!n)
			return GH_ENOMEM;
		free(f->ref_table);
		f->ref_table = n;
	}
	for (size_t i = 0; i < f->ncolumns; i++)
		if (!f->ref_columns[i] || !has_column(t, f->columns[i], nocase) ||
		    !has_column(rt, f->ref_columns[i], nocase))
			return 0;
	*keep = true;
	return 0;
}

/* Drops the foreign keys that fk_keep refuses. */
static int filter_fks(struct gh_schema *s, bool nocase)
{
	for (size_t i = 0; i < s->ntables; i++) {
		struct gh_schema_table *t = &s->tables[i];
		size_t k = 0;
		for (size_t j = 0; j < t->nfks; j++) {
			bool keep;
			if (fk_keep(s, t, &t->fks[j], nocase, &keep))
				return GH_ENOMEM;
			if (keep)
				t->fks[k++] = t->fks[j];
			else
				fk_free(&t->fks[j]);
		}
		t->nfks = k;
	}
	return 0;
}

/* ---- SQLite ---- */

static const char *sqlite_kind(const char *type)
{
	if (strcmp(type, "view") == 0)
		return "view";
	if (strcmp(type, "virtual") == 0)
		return "virtual table";
	return "table";
}

/* The columns and foreign keys of table t (name) that visible allows. */
static int sqlite_table(sqlite3 *db, struct gh_schema *s, struct gh_schema_table *t, gh_schema_visible_fn visible,
			void *arg, struct gh_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;
	/* a single INTEGER PRIMARY KEY is the rowid, never NULL whatever was declared */
	if (sqlite3_prepare_v2(db,
			       "SELECT name, type, \"notnull\", pk, hidden,"
			       " (SELECT count(*) FROM pragma_table_xinfo(?1, 'main') WHERE pk > 0)"
			       " FROM pragma_table_xinfo(?1, 'main') ORDER BY cid",
			       -1, &st, NULL) != SQLITE_OK)
		return gh_error_set(err, GH_EIO, "schema: %s", sqlite3_errmsg(db));
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *type = (const char *)sqlite3_column_text(st, 1);
		bool notnull = sqlite3_column_int(st, 2) != 0, pk = sqlite3_column_int(st, 3) > 0;
		if (!name || sqlite3_column_int(st, 4) == 1) /* a virtual table's hidden column */
			continue;
		if (!visible(arg, t->name, name))
			continue;
		if (t->ncolumns >= GH_SCHEMA_MAX_COLUMNS) {
			s->truncated = true;
			break;
		}
		bool rowid = pk && sqlite3_column_int(st, 5) == 1 && type && sqlite3_stricmp(type, "INTEGER") == 0;
		if (add_column(t, name, type, NULL, !notnull && !rowid, pk))
			rc = gh_error_set(err, GH_ENOMEM, "out of memory");
	}
	sqlite3_finalize(st);
	if (rc || strcmp(t->kind, "table") != 0)
		return rc;
	if (sqlite3_prepare_v2(db, "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1, 'main')"
				   " ORDER BY id, seq", -1, &st, NULL) != SQLITE_OK)
		return gh_error_set(err, GH_EIO, "schema: %s", sqlite3_errmsg(db));
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	struct gh_schema_fk *f = NULL;
	int64_t id = -1;
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const char *ref = (const char *)sqlite3_column_text(st, 1);
		const char *from = (const char *)sqlite3_column_text(st, 2);
		const char *to = (const char *)sqlite3_column_text(st, 3);
		if (!ref || !from)
			continue;
		if (!f || sqlite3_column_int64(st, 0) != id) {
			id = sqlite3_column_int64(st, 0);
			if (!(f = add_fk(t, ref))) {
				rc = gh_error_set(err, GH_ENOMEM, "out of memory");
				break;
			}
		}
		if (fk_pair(f, from, to))
			rc = gh_error_set(err, GH_ENOMEM, "out of memory");
	}
	sqlite3_finalize(st);
	return rc;
}

int gh_connector_sqlite_schema(struct gh_connector *c, const char *path, gh_schema_visible_fn visible, void *arg,
			       struct gh_schema *out, struct gh_error *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	memset(out, 0, sizeof *out);
	int rc = gh_connector_sqlite(c, path, &db, err);
	if (rc)
		return rc;
	/* pragma table_list (SQLite 3.37) tells shadow tables (FTS internals) from tables */
	if (sqlite3_prepare_v2(db, "SELECT name, type FROM pragma_table_list WHERE schema = 'main'"
				   " AND type IN ('table', 'view', 'virtual') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
				   " ORDER BY name", -1, &st, NULL) != SQLITE_OK)
		return gh_error_set(err, GH_EIO, "schema: %s", sqlite3_errmsg(db));
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *type = (const char *)sqlite3_column_text(st, 1);
		if (!name || !type || !visible(arg, name, NULL))
			continue;
		if (out->ntables >= GH_SCHEMA_MAX_TABLES) {
			out->truncated = true;
			break;
		}
		struct gh_schema_table *t = add_table(out, name, sqlite_kind(type));
		if (!t) {
			rc = gh_error_set(err, GH_ENOMEM, "out of memory");
			break;
		}
		struct gh_error terr;
		if (sqlite_table(db, out, t, visible, arg, &terr)) {
			if (terr.code == GH_ENOMEM) {
				rc = gh_error_set(err, GH_ENOMEM, "out of memory");
				break;
			}
			/* a table SQLite cannot describe (a virtual table of a module not loaded, a
			 * broken view) is left out rather than failing the listing */
			table_free(t);
			out->ntables--;
		}
	}
	if (!rc && step != SQLITE_ROW && step != SQLITE_DONE)
		rc = gh_error_set(err, GH_EIO, "schema: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	if (!rc && filter_fks(out, true))
		rc = gh_error_set(err, GH_ENOMEM, "out of memory");
	if (rc)
		gh_schema_free(out);
	return rc;
}

/* ---- PostgreSQL ---- */

/* Relations listed: tables, partitioned tables, views, materialized views, foreign tables of
 * the schemas in $1 (a text[] literal), not partitions, that the role may SELECT at least in
 * part. Functions are schema-qualified: the role's search_path does not choose them. */
#define PG_RELS_FROM                                                                                    \
	" FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
#define PG_RELS_WHERE                                                                                   \
	" WHERE n.nspname = ANY ($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"                  \
	" AND NOT c.relispartition AND (pg_catalog.has_table_privilege(c.oid, 'SELECT')"                   \
	" OR pg_catalog.has_any_column_privilege(c.oid, 'SELECT'))"

static const char pg_tables_sql[] =
	"SELECT c.oid::text, n.nspname, c.relname, c.relkind::text, pg_catalog.obj_description(c.oid, 'pg_class')"
	PG_RELS_FROM PG_RELS_WHERE " ORDER BY n.nspname = 'public' DESC, n.nspname, c.relname LIMIT $2";

static const char pg_columns_sql[] =
	"SELECT c.oid::text, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,"
	" pg_catalog.col_description(c.oid, a.attnum),"
	" EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p'"
	"         AND a.attnum = ANY (k.conkey))"
	PG_RELS_FROM
	" JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
	PG_RELS_WHERE " AND pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT')"
	" ORDER BY c.oid, a.attnum LIMIT $2";

/* One row per column pair of each foreign key, in key order. */
static const char pg_fks_sql[] =
	"SELECT c.oid::text, k.oid::text, rn.nspname, rc.relname, a.attname, ra.attname"
	PG_RELS_FROM
	" JOIN pg_catalog.pg_constraint k ON k.conrelid = c.oid AND k.contype = 'f'"
	" JOIN pg_catalog.pg_class rc ON rc.oid = k.confrelid"
	" JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace"
	" CROSS JOIN LATERAL pg_catalog.generate_subscripts(k.conkey, 1) AS u(i)"
	" JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.conkey[u.i]"
	" JOIN pg_catalog.pg_attribute ra ON ra.attrelid = rc.oid AND ra.attnum = k.confkey[u.i]"
	PG_RELS_WHERE " ORDER BY c.oid, k.conname, k.oid, u.i LIMIT $2";

#undef PG_RELS_FROM
#undef PG_RELS_WHERE

static const char *pg_kind(const char *relkind)
{
	switch (relkind[0]) {
	case 'v': return "view";
	case 'm': return "materialized view";
	case 'f': return "foreign table";
	default: return "table";
	}
}

/* The name the listing and the policy use: "t" in public, "schema.t" elsewhere. */
static int pg_name(const char *schema, const char *rel, char *out, size_t n)
{
	int r = strcmp(schema, "public") == 0 ? snprintf(out, n, "%s", rel) : snprintf(out, n, "%s.%s", schema, rel);
	return r < 0 || (size_t)r >= n ? GH_ETOOBIG : 0;
}

/* Runs one catalog query with the schemas and the row limit; the result, or NULL with res
 * filled. */
static PGresult *pg_catalog_query(PGconn *pg, const char *sql, const char *schemas, struct gh_exec_result *res)
{
	char limit[24];
	snprintf(limit, sizeof limit, "%d", GH_SCHEMA_MAX_CATALOG_ROWS);
	const char *vals[2] = {schemas, limit};
	PGresult *r = PQexecParams(pg, sql, 2, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		return r;
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	snprintf(res->sqlstate, sizeof res->sqlstate, "%s", state ? state : "");
	snprintf(res->error, sizeof res->error, "%s", msg ? msg : "the catalog could not be read");
	res->conn_lost = gh_pg_lost(pg, r);
	res->status = state && strcmp(state, "57014") == 0 ? GH_ETIMEOUT : GH_EIO;
	PQclear(r);
	return NULL;
}

/* The index in s of the listed relation with oid, or -1; oids maps oid text -> index + 1. */
static long pg_index(struct gh_map *oids, const char *oid)
{
	void *v = gh_map_get(oids, oid, strlen(oid));
	return v ? (long)(uintptr_t)v - 1 : -1;
}

/* Fills s from the three catalog results. */
static int pg_fill(struct gh_schema *s, PGresult *tabs, PGresult *cols, PGresult *fks, gh_schema_visible_fn visible,
		   void *arg)
{
	struct gh_map *oids = gh_map_new(NULL);
	if (!oids)
		return GH_ENOMEM;
	int rc = 0;
	char name[2 * 256];
	if (PQntuples(tabs) >= GH_SCHEMA_MAX_CATALOG_ROWS || PQntuples(cols) >= GH_SCHEMA_MAX_CATALOG_ROWS ||
	    PQntuples(fks) >= GH_SCHEMA_MAX_CATALOG_ROWS)
		s->truncated = true;
	for (int i = 0; i < PQntuples(tabs) && !rc; i++) {
		if (pg_name(PQgetvalue(tabs, i, 1), PQgetvalue(tabs, i, 2), name, sizeof name) || !visible(arg, name, NULL))
			continue;
		if (s->ntables >= GH_SCHEMA_MAX_TABLES) {
			s->truncated = true;
			break;
		}
		struct gh_schema_table *t = add_table(s, name, pg_kind(PQgetvalue(tabs, i, 3)));
		bool oom = false;
		if (!t || (!PQgetisnull(tabs, i, 4) && !(t->comment = comment_dup(PQgetvalue(tabs, i, 4), &oom)) && oom)) {
			rc = GH_ENOMEM;
			break;
		}
		const char *oid = PQgetvalue(tabs, i, 0);
		if (gh_map_put(oids, oid, strlen(oid), (void *)(uintptr_t)s->ntables))
			rc = GH_ENOMEM;
	}
	for (int i = 0; i < PQntuples(cols) && !rc; i++) {
		long k = pg_index(oids, PQgetvalue(cols, i, 0));
		if (k < 0)
			continue;
		struct gh_schema_table *t = &s->tables[k];
		const char *col = PQgetvalue(cols, i, 1);
		if (!visible(arg, t->name, col))
			continue;
		if (t->ncolumns >= GH_SCHEMA_MAX_COLUMNS) {
			s->truncated = true;
			continue;
		}
		rc = add_column(t, col, PQgetvalue(cols, i, 2), PQgetisnull(cols, i, 4) ? NULL : PQgetvalue(cols, i, 4),
				strcmp(PQgetvalue(cols, i, 3), "t") == 0, strcmp(PQgetvalue(cols, i, 5), "t") == 0);
	}
	struct gh_schema_fk *f = NULL;
	const char *fk_oid = NULL;
	for (int i = 0; i < PQntuples(fks) && !rc; i++) {
		long k = pg_index(oids, PQgetvalue(fks, i, 0));
		if (k < 0)
			continue;
		struct gh_schema_table *t = &s->tables[k];
		if (!f || strcmp(fk_oid, PQgetvalue(fks, i, 1)) != 0) {
			fk_oid = PQgetvalue(fks, i, 1);
			if (pg_name(PQgetvalue(fks, i, 2), PQgetvalue(fks, i, 3), name, sizeof name)) {
				f = NULL;
				continue;
			}
			if (!(f = add_fk(t, name))) {
				rc = GH_ENOMEM;
				break;
			}
		}
		rc = fk_pair(f, PQgetvalue(fks, i, 4), PQgetvalue(fks, i, 5));
	}
	gh_map_free(oids);
	return rc ? rc : filter_fks(s, false);
}

int gh_pg_schema(struct gh_pg_conn *c, char *const *schemas, size_t nschemas, int64_t timeout_ms,
		 const struct gh_pg_claims *claims, gh_schema_visible_fn visible, void *arg, struct gh_schema *out,
		 struct gh_exec_result *res)
{
	PGconn *pg = gh_pg_conn_pg(c);
	PGresult *tabs = NULL, *cols = NULL, *fks = NULL;
	memset(out, 0, sizeof *out);
	/* the schemas as a text[] literal; their names are policy names ([A-Za-z0-9_-]) */
	struct gh_buf lit;
	gh_buf_init(&lit, 64 * 1024);
	int rc = gh_buf_puts(&lit, "{");
	for (size_t i = 0; i < (nschemas ? nschemas : 1) && !rc; i++)
		rc = gh_buf_printf(&lit, "%s\"%s\"", i ? "," : "", nschemas ? schemas[i] : "public");
	if (rc || gh_buf_puts(&lit, "}")) {
		gh_buf_free(&lit);
		res->status = GH_ENOMEM;
		snprintf(res->error, sizeof res->error, "out of memory");
		return res->status;
	}
	if ((rc = gh_pg_begin(pg, true, timeout_ms, claims, res)))
		goto done;
	if (!(tabs = pg_catalog_query(pg, pg_tables_sql, lit.data, res)) ||
	    !(cols = pg_catalog_query(pg, pg_columns_sql, lit.data, res)) ||
	    !(fks = pg_catalog_query(pg, pg_fks_sql, lit.data, res))) {
		rc = res->status;
	} else if ((rc = pg_fill(out, tabs, cols, fks, visible, arg))) {
		res->status = rc;
		snprintf(res->error, sizeof res->error, "out of memory");
	}
	PQclear(PQexec(pg, "ROLLBACK"));
done:
	if (res->conn_lost)
		gh_pg_conn_discard(c);
	PQclear(tabs);
	PQclear(cols);
	PQclear(fks);
	gh_buf_free(&lit);
	if (rc)
		gh_schema_free(out);
	return rc;
}
