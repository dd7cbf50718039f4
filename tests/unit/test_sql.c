/* Unit tests for src/sql: statement classification through SQLite's authorizer, and the
 * enforcing guard installed on execution connections. */
#include "unit.h"

#include <string.h>

#include "sql/sql.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))

static const char *const schema =
	"CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v INT);"
	"CREATE TABLE u(id INTEGER PRIMARY KEY, t_id INT, note TEXT);"
	"CREATE TABLE log(msg TEXT);"
	"CREATE TABLE seq(id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT);"
	"CREATE INDEX t_name ON t(name);"
	"CREATE VIEW tv AS SELECT id, name FROM t;"
	"CREATE TRIGGER tv_ins INSTEAD OF INSERT ON tv BEGIN INSERT INTO t(id, name) VALUES (NEW.id, NEW.name); END;"
	"CREATE TRIGGER t_del AFTER DELETE ON t BEGIN INSERT INTO log VALUES ('deleted ' || OLD.id); END;"
	"INSERT INTO t VALUES (1, 'a', 10), (2, 'b', 20);"
	"INSERT INTO u VALUES (1, 1, 'x');";

static int setup(void **state)
{
	sqlite3 *db = NULL;
	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		return -1;
	char *msg = NULL;
	if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "schema: %s\n", msg);
		sqlite3_free(msg);
		sqlite3_close(db);
		return -1;
	}
	*state = db;
	return 0;
}

static int teardown(void **state)
{
	sqlite3_close(*state);
	return 0;
}

static struct gh_sql_analysis *analyze_n(sqlite3 *db, const char *sql, size_t len)
{
	struct gh_sql_analysis *a = NULL;
	assert_int_equal(gh_sql_analyze_sqlite(db, sql, len, &a), 0);
	assert_non_null(a);
	assert_int_equal(a->refs, 1);
	return a;
}

static struct gh_sql_analysis *analyze(sqlite3 *db, const char *sql)
{
	return analyze_n(db, sql, strlen(sql));
}

/* Asserts the class of sql; destructive and forbidden ones must say why, others must not. */
static void expect_class_n(sqlite3 *db, const char *sql, size_t len, enum gh_sql_class want)
{
	struct gh_sql_analysis *a = analyze_n(db, sql, len);
	enum gh_sql_class cls = a->cls;
	char reason[sizeof a->reason];
	memcpy(reason, a->reason, sizeof reason);
	gh_sql_analysis_unref(a); /* before asserting: a failure must not leak */
	if (cls != want)
		fail_msg("'%.*s': class %s, want %s (reason: %s)", (int)len, sql, gh_sql_class_name(cls),
			 gh_sql_class_name(want), reason);
	if (want == GH_SQL_DESTRUCTIVE || want == GH_SQL_FORBIDDEN) {
		if (!reason[0])
			fail_msg("'%.*s': %s without a reason", (int)len, sql, gh_sql_class_name(want));
	} else if (reason[0]) {
		fail_msg("'%.*s': %s with a reason '%s'", (int)len, sql, gh_sql_class_name(want), reason);
	}
}

static void expect_class(sqlite3 *db, const char *sql, enum gh_sql_class want)
{
	expect_class_n(db, sql, strlen(sql), want);
}

/* Table name -> entry, or NULL. */
static const struct gh_sql_table *table(const struct gh_sql_analysis *a, const char *name)
{
	for (size_t i = 0; i < a->ntables; i++)
		if (strcmp(a->tables[i].name, name) == 0)
			return &a->tables[i];
	return NULL;
}

static void expect_reason(sqlite3 *db, const char *sql, enum gh_sql_class want, const char *needle)
{
	struct gh_sql_analysis *a = analyze(db, sql);
	enum gh_sql_class cls = a->cls;
	char reason[sizeof a->reason];
	memcpy(reason, a->reason, sizeof reason);
	gh_sql_analysis_unref(a);
	if (cls != want || !strstr(reason, needle))
		fail_msg("'%s': %s '%s', want %s with '%s'", sql, gh_sql_class_name(cls), reason, gh_sql_class_name(want),
			 needle);
}

static void test_class_names(void **state)
{
	(void)state;
	assert_string_equal(gh_sql_class_name(GH_SQL_READ), "read");
	assert_string_equal(gh_sql_class_name(GH_SQL_WRITE), "write");
	assert_string_equal(gh_sql_class_name(GH_SQL_DDL), "ddl");
	assert_string_equal(gh_sql_class_name(GH_SQL_DESTRUCTIVE), "destructive");
	assert_string_equal(gh_sql_class_name(GH_SQL_FORBIDDEN), "forbidden");
	assert_string_equal(gh_sql_class_name((enum gh_sql_class)99), "forbidden");
	CHECKED("class names");
}

static void test_reads(void **state)
{
	sqlite3 *db = *state;
	static const char *const reads[] = {
		"SELECT 1",
		"SELECT * FROM t",
		"select name from t where id = 1",
		"SELECT t.name, u.note FROM t JOIN u ON u.t_id = t.id",
		"SELECT * FROM t LEFT JOIN u ON u.t_id = t.id WHERE t.v > 5 ORDER BY t.id LIMIT 10",
		"SELECT count(*), max(v) FROM t GROUP BY name HAVING count(*) > 0",
		"SELECT * FROM tv",
		"SELECT (SELECT count(*) FROM u) AS n FROM t",
		"WITH x AS (SELECT id FROM t) SELECT * FROM x",
		"WITH x AS (SELECT id FROM t), y AS (SELECT t_id FROM u) SELECT * FROM x JOIN y ON x.id = y.t_id",
		"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 10) SELECT n FROM c",
		"WITH RECURSIVE c(n) AS (SELECT id FROM t UNION SELECT n + 1 FROM c WHERE n < 5) SELECT * FROM c",
		"EXPLAIN SELECT * FROM t",
		"EXPLAIN QUERY PLAN SELECT * FROM t WHERE name = 'a'",
		"SELECT * FROM t UNION SELECT id, note, t_id FROM u",
		"VALUES (1, 2), (3, 4)",
		"SELECT json_object('a', 1), upper('x'), abs(-1)",
		"PRAGMA table_info(t)",
		"PRAGMA table_info('u')",
		"PRAGMA index_list(t)",
		"PRAGMA foreign_key_list(u)",
		"SELECT * FROM pragma_table_info('t')",
		"SELECT name FROM pragma_table_info('t') WHERE pk = 1",
		"SELECT name FROM sqlite_schema",
		"SELECT ?",
		"SELECT 1 -- a trailing comment",
		"SELECT 1; -- a trailing comment",
		"SELECT 1 /* block */",
		"SELECT 1; /* block */  ",
		"  \n SELECT 1;\n\n",
		"SELECT 1;;",
		"/* leading */ SELECT 1",
	};
	for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
		expect_class(db, reads[i], GH_SQL_READ);
	CHECKED("%zu reads: SELECT, joins, views, CTEs, recursive CTEs, EXPLAIN, allowed pragmas, comments",
		sizeof reads / sizeof reads[0]);
}

static void test_writes(void **state)
{
	sqlite3 *db = *state;
	static const char *const writes[] = {
		"INSERT INTO t(name, v) VALUES ('c', 3)",
		"INSERT INTO t DEFAULT VALUES",
		"INSERT OR IGNORE INTO t(id, name) VALUES (1, 'z')",
		"INSERT INTO log SELECT name FROM t",
		"UPDATE t SET name = 'b' WHERE id = 1",
		"UPDATE t SET v = v + 1",
		"DELETE FROM t WHERE id = 1",
		"DELETE FROM u", /* SQLite has no TRUNCATE; a DELETE without WHERE is a write */
		"REPLACE INTO t(id, name) VALUES (1, 'x')",
		"INSERT OR REPLACE INTO t(id, name) VALUES (1, 'x')",
		"INSERT INTO t(id, name) VALUES (1, 'x') ON CONFLICT(id) DO UPDATE SET name = excluded.name",
		"INSERT INTO t(id, name) VALUES (1, 'x') ON CONFLICT DO NOTHING",
		"INSERT INTO t(name) VALUES ('r') RETURNING id",
		"UPDATE t SET v = 0 WHERE id = 2 RETURNING *",
		"DELETE FROM u WHERE id = 1 RETURNING note",
		"INSERT INTO tv(id, name) VALUES (5, 'via view')",
		"WITH x AS (SELECT 7 AS id) INSERT INTO t(id, name) SELECT id, 'cte' FROM x",
		"INSERT INTO seq(x) VALUES ('autoincrement')",
		"UPDATE t SET name = :n WHERE id = :id",
		"EXPLAIN INSERT INTO t(name) VALUES ('e')",
	};
	for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
		expect_class(db, writes[i], GH_SQL_WRITE);
	CHECKED("%zu writes: INSERT/UPDATE/DELETE/REPLACE/UPSERT/RETURNING, INSTEAD OF trigger on a view",
		sizeof writes / sizeof writes[0]);
}

static void test_ddl(void **state)
{
	sqlite3 *db = *state;
	static const char *const ddl[] = {
		"CREATE TABLE n(a INTEGER PRIMARY KEY, b TEXT)",
		"CREATE TABLE IF NOT EXISTS n2(a)",
		"CREATE TABLE copy AS SELECT * FROM t",
		"CREATE INDEX u_t ON u(t_id)",
		"CREATE UNIQUE INDEX IF NOT EXISTS u_note ON u(note)",
		"CREATE VIEW v2 AS SELECT name FROM t",
		"CREATE TRIGGER u_ins AFTER INSERT ON u BEGIN UPDATE t SET v = v + 1; END",
		"ALTER TABLE t ADD COLUMN extra TEXT",
		"ALTER TABLE u RENAME TO u_renamed",
		"ALTER TABLE u RENAME COLUMN note TO memo",
		"REINDEX",
		"REINDEX t_name",
		"ANALYZE",
		"ANALYZE t",
	};
	for (size_t i = 0; i < sizeof ddl / sizeof ddl[0]; i++)
		expect_class(db, ddl[i], GH_SQL_DDL);
	CHECKED("%zu ddl: CREATE TABLE/INDEX/VIEW/TRIGGER, ALTER ADD/RENAME, REINDEX, ANALYZE",
		sizeof ddl / sizeof ddl[0]);
}

static void test_destructive(void **state)
{
	sqlite3 *db = *state;
	static const char *const destructive[] = {
		"DROP TABLE log",
		"DROP TABLE IF EXISTS log",
		"drop table main.u",
		"DROP INDEX t_name",
		"DROP INDEX IF EXISTS t_name",
		"DROP VIEW tv",
		"DROP VIEW IF EXISTS tv",
		"DROP TRIGGER t_del",
		"DROP TRIGGER IF EXISTS tv_ins",
		"EXPLAIN DROP TABLE t",
		"EXPLAIN QUERY PLAN DROP TABLE t",
		"ALTER TABLE t DROP COLUMN v",
		"ALTER TABLE u DROP note",
	};
	for (size_t i = 0; i < sizeof destructive / sizeof destructive[0]; i++)
		expect_class(db, destructive[i], GH_SQL_DESTRUCTIVE);
	expect_reason(db, "DROP TABLE log", GH_SQL_DESTRUCTIVE, "log");
	expect_reason(db, "ALTER TABLE t DROP COLUMN v", GH_SQL_DESTRUCTIVE, "DROP COLUMN");
	CHECKED("%zu destructive: every DROP kind, IF EXISTS, EXPLAIN DROP, ALTER TABLE DROP COLUMN",
		sizeof destructive / sizeof destructive[0]);
}

/* A DROP of an absent object prepares to a statement that asks the authorizer nothing; it must
 * still be refused (destructive or forbidden), never pass as read. */
static void test_drop_if_exists_missing(void **state)
{
	sqlite3 *db = *state;
	static const char *const drops[] = {"DROP TABLE IF EXISTS no_such_table", "DROP VIEW IF EXISTS no_such_view",
					    "DROP INDEX IF EXISTS no_such_index",
					    "DROP TRIGGER IF EXISTS no_such_trigger"};
	for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
		struct gh_sql_analysis *a = analyze(db, drops[i]);
		enum gh_sql_class cls = a->cls;
		bool has_reason = a->reason[0] != '\0';
		gh_sql_analysis_unref(a); /* before asserting: a failure must not leak */
		if (cls != GH_SQL_DESTRUCTIVE && cls != GH_SQL_FORBIDDEN)
			fail_msg("'%s' classified %s", drops[i], gh_sql_class_name(cls));
		assert_true(has_reason);
	}
	CHECKED("DROP ... IF EXISTS of an absent object is refused (destructive or forbidden)");
}

static void test_forbidden(void **state)
{
	sqlite3 *db = *state;
	static const struct { const char *sql, *why; } cases[] = {
		{"UPDATE sqlite_schema SET sql = 'x'", "does not prepare"}, /* first: see pragma side effects */
		{"CREATE TEMP TABLE tmp(a)", "temporary"},
		{"CREATE TEMPORARY TABLE tmp(a)", "temporary"},
		{"CREATE TEMP VIEW tmpv AS SELECT 1", "temporary"},
		{"CREATE TEMP TRIGGER tmpt AFTER INSERT ON t BEGIN SELECT 1; END", "temporary"},
		{"ATTACH DATABASE ':memory:' AS aux", "ATTACH"},
		{"ATTACH '/tmp/other.db' AS aux", "ATTACH"},
		{"DETACH DATABASE aux", "DETACH"},
		{"BEGIN", "transaction"},
		{"BEGIN IMMEDIATE", "transaction"},
		{"COMMIT", "transaction"},
		{"ROLLBACK", "transaction"},
		{"SAVEPOINT s1", "transaction"},
		{"RELEASE s1", "transaction"},
		{"VACUUM", "cannot classify"},
		{"VACUUM INTO '/tmp/gh_sql_test_copy.db'", "cannot classify"},
		/* names are case-insensitive; these come before any lower-case use on this connection */
		{"SELECT * FROM PRAGMA_Database_List", "pragma"},
		{"SELECT * FROM Pragma_Compile_Options()", "pragma"},
		{"PRAGMA WRITABLE_SCHEMA = 1", "PRAGMA"},
		{"PRAGMA writable_schema = 1", "PRAGMA"},
		{"PRAGMA writable_schema", "PRAGMA"},
		{"PRAGMA journal_mode = DELETE", "PRAGMA"},
		{"PRAGMA journal_mode", "PRAGMA"},
		{"PRAGMA user_version = 1", "PRAGMA"},
		{"PRAGMA database_list", "PRAGMA"},
		{"PRAGMA integrity_check", "PRAGMA"},
		{"PRAGMA foreign_keys = OFF", "PRAGMA"},
		{"SELECT * FROM pragma_database_list", "pragma"},
		{"SELECT * FROM pragma_database_list()", "pragma"},
		{"SELECT * FROM pragma_compile_options", "pragma"},
		{"SELECT load_extension('/tmp/evil.so')", "load_extension"},
		{"SELECT name FROM t WHERE load_extension('x') IS NULL", "load_extension"},
		{"SELECT 1; DROP TABLE t", "more than one"},
		{"SELECT 1; SELECT 2", "more than one"},
		{"INSERT INTO log VALUES ('a'); INSERT INTO log VALUES ('b')", "more than one"},
		{"SELECT 1; garbage here", "more than one"},
		{"SELECT * FROM no_such_table", "no such table"},
		{"", "empty"},
		{"   \n\t ", "empty"},
		{"-- only a comment", "empty"},
		{"/* only a comment */", "empty"},
		{";", "empty"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		expect_class(db, cases[i].sql, GH_SQL_FORBIDDEN);
		expect_reason(db, cases[i].sql, GH_SQL_FORBIDDEN, cases[i].why);
	}
	CHECKED("%zu forbidden: temp objects, ATTACH/DETACH, transactions, VACUUM, unlisted pragmas and "
		"pragma functions, load_extension, multiple statements, empty text", sizeof cases / sizeof cases[0]);
}

static void test_syntax_errors(void **state)
{
	sqlite3 *db = *state;
	static const char *const bad[] = {"SELEC 1", "SELECT FROM", "DROP TABL t", "SELECT 'unterminated",
					  "INSERT INTO t VALUES (", "SELECT * FROM t WHERE"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct gh_sql_analysis *a = analyze(db, bad[i]);
		assert_int_equal(a->cls, GH_SQL_FORBIDDEN);
		assert_non_null(strstr(a->reason, "does not prepare"));
		gh_sql_analysis_unref(a);
	}
	/* the engine's own message is in the reason */
	struct gh_sql_analysis *a = analyze(db, "SELEC 1");
	assert_non_null(strstr(a->reason, "near \"SELEC\": syntax error"));
	gh_sql_analysis_unref(a);
	a = analyze(db, "SELECT nope FROM t");
	assert_non_null(strstr(a->reason, "no such column: nope"));
	gh_sql_analysis_unref(a);
	CHECKED("syntax errors are forbidden with SQLite's message in the reason");
}

static void test_nul_byte(void **state)
{
	sqlite3 *db = *state;
	static const char s1[] = "SELECT 1\0; DROP TABLE t";
	expect_class_n(db, s1, sizeof s1 - 1, GH_SQL_FORBIDDEN);
	struct gh_sql_analysis *a = analyze_n(db, s1, sizeof s1 - 1);
	assert_non_null(strstr(a->reason, "NUL"));
	gh_sql_analysis_unref(a);
	static const char s2[] = "SELECT '\0'";
	expect_class_n(db, s2, sizeof s2 - 1, GH_SQL_FORBIDDEN);
	static const char s3[] = "\0";
	expect_class_n(db, s3, 1, GH_SQL_FORBIDDEN);
	/* a length that stops before text SQLite would otherwise read */
	expect_class_n(db, "SELECT 1; DROP TABLE t", 8, GH_SQL_READ);
	CHECKED("a NUL byte anywhere in the text is forbidden; the length is honoured");
}

static void test_tables_join(void **state)
{
	sqlite3 *db = *state;
	struct gh_sql_analysis *a = analyze(db, "SELECT t.name, u.note FROM t JOIN u ON u.t_id = t.id");
	assert_int_equal(a->cls, GH_SQL_READ);
	const struct gh_sql_table *tt = table(a, "t"), *tu = table(a, "u");
	assert_non_null(tt);
	assert_non_null(tu);
	assert_true(tt->read);
	assert_false(tt->written);
	assert_true(tu->read);
	assert_false(tu->written);
	assert_null(table(a, "log"));
	struct gh_buf b;
	gh_buf_init(&b, 1024);
	assert_int_equal(gh_sql_tables_json(a, &b), 0);
	assert_true(strcmp(b.data, "[\"t\",\"u\"]") == 0 || strcmp(b.data, "[\"u\",\"t\"]") == 0);
	gh_buf_free(&b);
	gh_sql_analysis_unref(a);
	CHECKED("join records t and u as read, not written; tables JSON lists both");
}

static void test_tables_insert_select(void **state)
{
	sqlite3 *db = *state;
	struct gh_sql_analysis *a = analyze(db, "INSERT INTO log SELECT name FROM t WHERE v > 1");
	assert_int_equal(a->cls, GH_SQL_WRITE);
	const struct gh_sql_table *tl = table(a, "log"), *tt = table(a, "t");
	assert_non_null(tl);
	assert_non_null(tt);
	assert_true(tl->written);
	assert_false(tl->read);
	assert_true(tt->read);
	assert_false(tt->written);
	gh_sql_analysis_unref(a);

	/* UPDATE reads and writes the same table; a trigger's target is recorded as written */
	a = analyze(db, "UPDATE t SET v = v + 1 WHERE id = 1");
	tt = table(a, "t");
	assert_non_null(tt);
	assert_true(tt->read);
	assert_true(tt->written);
	gh_sql_analysis_unref(a);
	a = analyze(db, "DELETE FROM t WHERE id = 2");
	assert_int_equal(a->cls, GH_SQL_WRITE);
	assert_true(table(a, "t") && table(a, "t")->written);
	assert_true(table(a, "log") && table(a, "log")->written);
	gh_sql_analysis_unref(a);
	/* INSERT into the view reaches the base table through the INSTEAD OF trigger */
	a = analyze(db, "INSERT INTO tv(id, name) VALUES (9, 'v')");
	assert_true(table(a, "t") && table(a, "t")->written);
	gh_sql_analysis_unref(a);
	CHECKED("insert-select records log written and t read; triggers' targets recorded as written");
}


static bool has_col(const struct gh_sql_table *t, const char *c)
{
	for (size_t i = 0; t && i < t->ncolumns; i++)
		if (strcmp(t->columns[i], c) == 0)
			return true;
	return false;
}

/* What grants with a tables list are checked against: the columns each table is read by,
 * whether only a trigger writes it, and PRAGMAs
 * that describe every column. */
static void test_columns(void **state)
{
	sqlite3 *db = *state;
	struct gh_sql_analysis *a = analyze(db, "SELECT t.name FROM t JOIN u ON u.t_id = t.id WHERE t.v > 1");
	const struct gh_sql_table *tt = table(a, "t"), *tu = table(a, "u");
	assert_true(tt && tt->direct && !tt->all_columns);
	assert_true(has_col(tt, "name") && has_col(tt, "v") && has_col(tt, "id") && !has_col(tt, "t_id"));
	assert_true(tu && has_col(tu, "t_id") && !has_col(tu, "note") && !has_col(tu, "name"));
	gh_sql_analysis_unref(a);
	a = analyze(db, "SELECT * FROM t");
	tt = table(a, "t");
	assert_true(tt && tt->ncolumns == 3 && has_col(tt, "v")); /* * is expanded by SQLite itself */
	gh_sql_analysis_unref(a);
	a = analyze(db, "SELECT count(*) FROM t");
	assert_true(table(a, "t") && table(a, "t")->ncolumns == 0 && table(a, "t")->direct);
	gh_sql_analysis_unref(a);
	/* what a view reads is read by the statement: SQLite names a CTE where it names a view */
	a = analyze(db, "SELECT name FROM tv");
	assert_true(table(a, "tv") && table(a, "tv")->direct && has_col(table(a, "tv"), "name"));
	assert_true(table(a, "t") && table(a, "t")->direct && has_col(table(a, "t"), "name"));
	gh_sql_analysis_unref(a);
	a = analyze(db, "WITH tv AS (SELECT v FROM t) SELECT * FROM tv");
	assert_true(table(a, "t") && table(a, "t")->direct && has_col(table(a, "t"), "v"));
	gh_sql_analysis_unref(a);
	a = analyze(db, "DELETE FROM t WHERE id = 2");
	assert_true(table(a, "t")->direct && table(a, "log") && !table(a, "log")->direct);
	gh_sql_analysis_unref(a);
	a = analyze(db, "PRAGMA table_info(u)");
	assert_int_equal(a->cls, GH_SQL_READ);
	assert_true(table(a, "u") && table(a, "u")->all_columns && table(a, "u")->direct);
	gh_sql_analysis_unref(a);
	a = analyze(db, "SELECT name FROM t WHERE id IN (SELECT t_id FROM u) AND rowid > 0");
	assert_true(has_col(table(a, "u"), "t_id") && has_col(table(a, "t"), "id"));
	gh_sql_analysis_unref(a);
	CHECKED("columns read per table (joins, *, count(*), rowid), reads through views and CTEs count, "
		"trigger writes marked indirect, PRAGMA table_info reads every column");
}

static void test_functions_and_refs(void **state)
{
	sqlite3 *db = *state;
	struct gh_sql_analysis *a = analyze(db, "SELECT upper(name), upper(name), length(name) FROM t");
	assert_int_equal(a->nfunctions, 2);
	bool up = false, len = false;
	for (size_t i = 0; i < a->nfunctions; i++) {
		up |= strcmp(a->functions[i], "upper") == 0;
		len |= strcmp(a->functions[i], "length") == 0;
	}
	assert_true(up && len);
	gh_sql_analysis_ref(a);
	assert_int_equal(a->refs, 2);
	gh_sql_analysis_unref(a);
	assert_int_equal(a->refs, 1);
	gh_sql_analysis_unref(a);
	gh_sql_analysis_unref(NULL);
	CHECKED("functions recorded once each; ref/unref");
}

static void test_nparams(void **state)
{
	sqlite3 *db = *state;
	static const struct { const char *sql; int n; } cases[] = {
		{"SELECT 1", 0},
		{"SELECT ?", 1},
		{"SELECT ?, ?", 2},
		{"SELECT ?2", 2},
		{"SELECT ?1, ?1", 1},
		{"SELECT ?, ?5", 5},
		{"SELECT :name", 1},
		{"SELECT :name, :name", 1},
		{"SELECT :a, @b, $c", 3},
		{"UPDATE t SET name = :n WHERE id = :id", 2},
		{"INSERT INTO t(id, name, v) VALUES (?, ?, ?)", 3},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct gh_sql_analysis *a = analyze(db, cases[i].sql);
		if (a->nparams != cases[i].n)
			fail_msg("'%s': nparams %d, want %d", cases[i].sql, a->nparams, cases[i].n);
		gh_sql_analysis_unref(a);
	}
	CHECKED("nparams for ?, ?N, :name, @name, $name");
}

/* Analysis never executes anything and leaves no authorizer behind. */
static void test_analysis_has_no_effect(void **state)
{
	sqlite3 *db = *state;
	const char *stmts[] = {"DROP TABLE t", "DELETE FROM t", "INSERT INTO t(name) VALUES ('zz')",
			       "CREATE TABLE made(a)", "PRAGMA user_version = 7"};
	for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++)
		gh_sql_analysis_unref(analyze(db, stmts[i]));
	sqlite3_stmt *s = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), 2);
	sqlite3_finalize(s);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'made'", -1, &s,
					    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), 0);
	sqlite3_finalize(s);
	/* no authorizer left installed: a DROP prepares on the connection */
	assert_int_equal(sqlite3_prepare_v2(db, "DROP TABLE log", -1, &s, NULL), SQLITE_OK);
	sqlite3_finalize(s);
	CHECKED("analysis executes nothing and removes its authorizer");
}

static int prep(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	sqlite3_finalize(s);
	return rc;
}

static int pragma_value(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int v = -999;
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* "Nothing is executed": analysing a refused PRAGMA must not apply it. SQLite applies flag
 * pragmas (and cache/heap settings) while it prepares, right after asking the authorizer,
 * so an authorizer that only records lets them take effect on the analysis connection,
 * and soft/hard_heap_limit on the whole process. */
static void test_analysis_pragma_side_effects(void **state)
{
	sqlite3 *db = *state;
	assert_int_equal(sqlite3_exec(db, "PRAGMA query_only = 1", NULL, NULL, NULL), SQLITE_OK);
	int qo = pragma_value(db, "PRAGMA query_only"), icc = pragma_value(db, "PRAGMA ignore_check_constraints");
	int fk = pragma_value(db, "PRAGMA foreign_keys"), rt = pragma_value(db, "PRAGMA recursive_triggers");
	int ws = pragma_value(db, "PRAGMA writable_schema"), cs = pragma_value(db, "PRAGMA cache_size");
	int rus = pragma_value(db, "PRAGMA reverse_unordered_selects");
	sqlite3_int64 soft = sqlite3_soft_heap_limit64(-1), hard = sqlite3_hard_heap_limit64(-1);
	assert_int_equal(qo, 1);
	assert_int_equal(icc, 0);

	static const char *const pragmas[] = {
		"PRAGMA query_only = 0",
		"PRAGMA ignore_check_constraints = 1",
		"PRAGMA foreign_keys = 1",
		"PRAGMA recursive_triggers = 1",
		"PRAGMA writable_schema = 1",
		"PRAGMA cache_size = -123456",
		"PRAGMA soft_heap_limit = 987654321",
		"PRAGMA hard_heap_limit = 1099511627776", /* 1 TiB: harmless to this process if applied */
		"SELECT 1; PRAGMA reverse_unordered_selects = 1", /* a second statement is only looked at */
	};
	for (size_t i = 0; i < sizeof pragmas / sizeof pragmas[0]; i++)
		expect_class(db, pragmas[i], GH_SQL_FORBIDDEN);

	sqlite3_int64 soft2 = sqlite3_soft_heap_limit64(-1), hard2 = sqlite3_hard_heap_limit64(-1);
	sqlite3_soft_heap_limit64(soft); /* put process-wide settings back before asserting */
	sqlite3_hard_heap_limit64(hard);
	int qo2 = pragma_value(db, "PRAGMA query_only"), icc2 = pragma_value(db, "PRAGMA ignore_check_constraints");
	int fk2 = pragma_value(db, "PRAGMA foreign_keys"), rt2 = pragma_value(db, "PRAGMA recursive_triggers");
	int ws2 = pragma_value(db, "PRAGMA writable_schema"), cs2 = pragma_value(db, "PRAGMA cache_size");
	int rus2 = pragma_value(db, "PRAGMA reverse_unordered_selects");
	printf("  pragma state before/after analysis: query_only %d/%d ignore_check_constraints %d/%d "
	       "foreign_keys %d/%d recursive_triggers %d/%d writable_schema %d/%d cache_size %d/%d "
	       "reverse_unordered_selects %d/%d soft_heap_limit %lld/%lld hard_heap_limit %lld/%lld\n",
	       qo, qo2, icc, icc2, fk, fk2, rt, rt2, ws, ws2, cs, cs2, rus, rus2, (long long)soft, (long long)soft2,
	       (long long)hard, (long long)hard2);
	assert_int_equal(qo2, qo);
	assert_int_equal(icc2, icc);
	assert_int_equal(fk2, fk);
	assert_int_equal(rt2, rt);
	assert_int_equal(ws2, ws);
	assert_int_equal(cs2, cs);
	assert_int_equal(rus2, rus);
	assert_true(soft2 == soft);
	assert_true(hard2 == hard);
	CHECKED("analysing refused PRAGMAs leaves connection flags and process heap limits unchanged");
}

/* The guard denies a PRAGMA before SQLite applies it. */
static void test_guard_pragma_not_applied(void **state)
{
	sqlite3 *db = *state;
	static const enum gh_sql_class max = GH_SQL_DDL;
	gh_sql_sqlite_guard(db, &max);
	assert_int_not_equal(prep(db, "PRAGMA ignore_check_constraints = 1"), SQLITE_OK);
	assert_int_not_equal(prep(db, "PRAGMA foreign_keys = 1"), SQLITE_OK);
	gh_sql_sqlite_guard(db, NULL);
	assert_int_equal(pragma_value(db, "PRAGMA ignore_check_constraints"), 0);
	assert_int_equal(pragma_value(db, "PRAGMA foreign_keys"), 0);
	CHECKED("guard refuses PRAGMAs before they take effect");
}


static void test_guard_read(void **state)
{
	sqlite3 *db = *state;
	static const enum gh_sql_class max = GH_SQL_READ;
	gh_sql_sqlite_guard(db, &max);
	assert_int_equal(prep(db, "SELECT * FROM t JOIN u ON u.t_id = t.id"), SQLITE_OK);
	assert_int_equal(prep(db, "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n<3) "
				  "SELECT * FROM c"), SQLITE_OK);
	assert_int_equal(prep(db, "PRAGMA table_info(t)"), SQLITE_OK);
	assert_int_equal(prep(db, "INSERT INTO t(name) VALUES ('x')"), SQLITE_AUTH);
	assert_int_equal(sqlite3_errcode(db), SQLITE_AUTH);
	assert_int_equal(prep(db, "UPDATE t SET v = 1"), SQLITE_AUTH);
	assert_int_equal(prep(db, "DELETE FROM t"), SQLITE_AUTH);
	assert_int_equal(prep(db, "INSERT INTO tv(id, name) VALUES (3, 'x')"), SQLITE_AUTH);
	assert_int_equal(prep(db, "CREATE TABLE g(a)"), SQLITE_AUTH);
	assert_int_equal(prep(db, "DROP TABLE t"), SQLITE_AUTH);
	assert_int_not_equal(prep(db, "PRAGMA user_version = 3"), SQLITE_OK);
	assert_int_not_equal(prep(db, "SELECT * FROM pragma_database_list"), SQLITE_OK);
	assert_int_not_equal(prep(db, "SELECT load_extension('x')"), SQLITE_OK);
	assert_int_not_equal(prep(db, "ATTACH ':memory:' AS aux"), SQLITE_OK);
	gh_sql_sqlite_guard(db, NULL);
	assert_int_equal(prep(db, "INSERT INTO t(name) VALUES ('x')"), SQLITE_OK);
	CHECKED("guard READ: SELECT prepares, INSERT/UPDATE/DELETE/DDL/DROP/pragmas fail with SQLITE_AUTH");
}

static void test_guard_write_and_ddl(void **state)
{
	sqlite3 *db = *state;
	enum gh_sql_class max = GH_SQL_WRITE;
	gh_sql_sqlite_guard(db, &max);
	assert_int_equal(prep(db, "SELECT * FROM t"), SQLITE_OK);
	assert_int_equal(prep(db, "INSERT INTO t(name) VALUES ('x')"), SQLITE_OK);
	assert_int_equal(prep(db, "INSERT INTO seq(x) VALUES ('x')"), SQLITE_OK); /* sqlite_sequence upkeep */
	assert_int_equal(prep(db, "DELETE FROM t WHERE id = 1"), SQLITE_OK);       /* trigger writes log */
	assert_int_equal(prep(db, "INSERT INTO tv(id, name) VALUES (3, 'x')"), SQLITE_OK);
	assert_int_equal(prep(db, "DROP TABLE t"), SQLITE_AUTH);
	assert_int_equal(prep(db, "DROP TABLE IF EXISTS t"), SQLITE_AUTH);
	assert_int_not_equal(prep(db, "ALTER TABLE t DROP COLUMN v"), SQLITE_OK);
	assert_int_equal(prep(db, "CREATE TABLE g(a)"), SQLITE_AUTH);
	assert_int_equal(prep(db, "CREATE INDEX gi ON t(v)"), SQLITE_AUTH);
	assert_int_not_equal(prep(db, "BEGIN"), SQLITE_OK);

	/* the guard reads *max at each prepare: raising it to DDL allows CREATE, never DROP */
	max = GH_SQL_DDL;
	assert_int_equal(prep(db, "CREATE TABLE g(a)"), SQLITE_OK);
	assert_int_equal(prep(db, "ALTER TABLE t ADD COLUMN w INT"), SQLITE_OK);
	assert_int_equal(prep(db, "DROP TABLE t"), SQLITE_AUTH);
	assert_int_equal(prep(db, "DROP INDEX t_name"), SQLITE_AUTH);
	assert_int_not_equal(prep(db, "CREATE TEMP TABLE tmp(a)"), SQLITE_OK);
	assert_int_not_equal(prep(db, "ALTER TABLE t DROP COLUMN v"), SQLITE_OK);
	gh_sql_sqlite_guard(db, NULL);
	assert_int_equal(prep(db, "DROP TABLE log"), SQLITE_OK);
	CHECKED("guard WRITE: writes prepare, DROP/DDL fail; guard DDL: CREATE prepares, DROP still fails");
}

/* A statement whose meaning changes after analysis is stopped by the guard at re-prepare. */
static void test_guard_reprepare(void **state)
{
	sqlite3 *db = *state;
	static const enum gh_sql_class max = GH_SQL_READ;
	struct gh_sql_analysis *a = analyze(db, "SELECT * FROM t");
	assert_int_equal(a->cls, GH_SQL_READ);
	gh_sql_analysis_unref(a);
	gh_sql_sqlite_guard(db, &max);
	sqlite3_stmt *s = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), 2);
	sqlite3_finalize(s);
	gh_sql_sqlite_guard(db, NULL);
	CHECKED("guarded SELECT runs and returns rows");
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_class_names),
	cmocka_unit_test_setup_teardown(test_reads, setup, teardown),
	cmocka_unit_test_setup_teardown(test_writes, setup, teardown),
	cmocka_unit_test_setup_teardown(test_ddl, setup, teardown),
	cmocka_unit_test_setup_teardown(test_destructive, setup, teardown),
	cmocka_unit_test_setup_teardown(test_drop_if_exists_missing, setup, teardown),
	cmocka_unit_test_setup_teardown(test_forbidden, setup, teardown),
	cmocka_unit_test_setup_teardown(test_syntax_errors, setup, teardown),
	cmocka_unit_test_setup_teardown(test_nul_byte, setup, teardown),
	cmocka_unit_test_setup_teardown(test_columns, setup, teardown),
	cmocka_unit_test_setup_teardown(test_tables_join, setup, teardown),
	cmocka_unit_test_setup_teardown(test_tables_insert_select, setup, teardown),
	cmocka_unit_test_setup_teardown(test_functions_and_refs, setup, teardown),
	cmocka_unit_test_setup_teardown(test_nparams, setup, teardown),
	cmocka_unit_test_setup_teardown(test_analysis_has_no_effect, setup, teardown),
	cmocka_unit_test_setup_teardown(test_guard_read, setup, teardown),
	cmocka_unit_test_setup_teardown(test_guard_write_and_ddl, setup, teardown),
	cmocka_unit_test_setup_teardown(test_guard_reprepare, setup, teardown),
	cmocka_unit_test_setup_teardown(test_analysis_pragma_side_effects, setup, teardown),
	cmocka_unit_test_setup_teardown(test_guard_pragma_not_applied, setup, teardown),
};

GH_UNIT_MAIN("test_sql", tests)
