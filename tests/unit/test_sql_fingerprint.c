/* Unit tests for src/sql/fingerprint.c: the normaliser that groups statements differing only in
 * literals (usage analytics), for SQLite and PostgreSQL text, and its bounds. */
#include "unit.h"

#include <string.h>

#include "sql/sql.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))

/* Normalises sql; returns a malloc'd copy of the result (asserting success). */
static char *norm(const char *sql, enum gh_sql_dialect d)
{
	struct gh_buf out, fold;
	size_t len = strlen(sql);
	gh_buf_init(&out, 2 * len + 16);
	gh_buf_init(&fold, 2 * len + 16);
	int rc = gh_sql_normalize(sql, len, d, &out, &fold);
	char *s = gh_strdup(out.data ? out.data : "");
	bool same_len = out.len == fold.len;
	gh_buf_free(&out);
	gh_buf_free(&fold);
	assert_int_equal(rc, 0);
	assert_true(same_len);
	return s;
}

static void expect_norm(const char *sql, enum gh_sql_dialect d, const char *want)
{
	char *got = norm(sql, d);
	/* normalising the result again changes nothing */
	char *again = norm(got, d);
	bool ok = strcmp(got, want) == 0, idem = strcmp(again, got) == 0;
	if (!ok || !idem) {
		char msg[1024];
		snprintf(msg, sizeof msg, "'%s'\n   got  '%s'\n   want '%s'\n   again '%s'", sql, got, want, again);
		free(got);
		free(again);
		fail_msg("%s", msg);
	}
	free(got);
	free(again);
}

static void fp(const char *sql, enum gh_sql_dialect d, char out[17])
{
	assert_int_equal(gh_sql_fingerprint(sql, strlen(sql), d, out, NULL), 0);
	assert_int_equal(strlen(out), 16);
}

static void expect_same(const char *a, const char *b, enum gh_sql_dialect d, bool same)
{
	char fa[17], fb[17];
	fp(a, d, fa);
	fp(b, d, fb);
	if ((strcmp(fa, fb) == 0) != same)
		fail_msg("'%s' (%s) and '%s' (%s) should %s", a, fa, b, fb, same ? "share a fingerprint" : "differ");
}

static void test_literals_sqlite(void **state)
{
	(void)state;
	const enum gh_sql_dialect S = GH_SQL_DIALECT_SQLITE;
	expect_norm("SELECT name FROM customers WHERE id = 42", S, "SELECT name FROM customers WHERE id = ?");
	expect_norm("SELECT * FROM t WHERE a = 'it''s' AND b = x'00ff' AND c = 1.5e-3 AND d = 0x1F AND e = .5", S,
		    "SELECT * FROM t WHERE a = ? AND b = ? AND c = ? AND d = ? AND e = ?");
	expect_norm("SELECT * FROM t WHERE a = ? AND b = ?12 AND c = :name AND d = @v AND e = $x", S,
		    "SELECT * FROM t WHERE a = ? AND b = ? AND c = ? AND d = ? AND e = ?");
	expect_norm("SELECT x - 1, -2, +3 FROM t WHERE y = - 4 AND z > -5.5", S,
		    "SELECT x - ?, ?, ? FROM t WHERE y = ? AND z > ?");
	expect_norm("SELECT 1_000, 1e10 FROM t LIMIT 10 OFFSET -1", S, "SELECT ?, ? FROM t LIMIT ? OFFSET ?");
	CHECKED("SQLite strings, blobs, numbers, signs and every parameter form become ?");
}

static void test_spacing_and_comments(void **state)
{
	(void)state;
	const enum gh_sql_dialect S = GH_SQL_DIALECT_SQLITE;
	expect_norm("  SELECT\n\tname ,id FROM  customers -- who\nWHERE id=1 /* the first */ ;", S,
		    "SELECT name, id FROM customers WHERE id = ?;");
	expect_norm("SELECT count( * ) FROM t", S, "SELECT count(*) FROM t");
	expect_norm("SELECT a.b FROM s . t AS a", S, "SELECT a.b FROM s.t AS a");
	expect_norm("INSERT INTO notes (body) VALUES (?)", S, "INSERT INTO notes(body) VALUES (?)");
	expect_norm("SELECT * FROM t WHERE x IN(SELECT y FROM u)", S, "SELECT * FROM t WHERE x IN (SELECT y FROM u)");
	expect_norm("SELECT 1 -- trailing comment without newline", S, "SELECT ?");
	expect_norm("SELECT /* unterminated", S, "SELECT");
	expect_norm("", S, "");
	CHECKED("whitespace, comments and the spacing around punctuation are canonical");
}

static void test_lists(void **state)
{
	(void)state;
	const enum gh_sql_dialect S = GH_SQL_DIALECT_SQLITE;
	expect_norm("SELECT * FROM t WHERE a IN (1, 2, 3) AND b NOT IN ('x','y')", S,
		    "SELECT * FROM t WHERE a IN (?) AND b NOT IN (?)");
	expect_norm("SELECT * FROM t WHERE a IN (?, ?, ?, ?)", S, "SELECT * FROM t WHERE a IN (?)");
	expect_norm("SELECT * FROM t WHERE a IN (b, 1, 2)", S, "SELECT * FROM t WHERE a IN (b, ?, ?)");
	expect_norm("SELECT * FROM t WHERE a IN (1, b + 2)", S, "SELECT * FROM t WHERE a IN (?, b + ?)");
	expect_norm("SELECT * FROM t WHERE a IN (1 + 2, 3)", S, "SELECT * FROM t WHERE a IN (? + ?, ?)");
	expect_norm("SELECT * FROM t WHERE a IN ()", S, "SELECT * FROM t WHERE a IN ()");
	expect_norm("SELECT * FROM t WHERE a IN (1,", S, "SELECT * FROM t WHERE a IN (?,");
	expect_norm("SELECT coalesce(1, 2, 3) FROM t", S, "SELECT coalesce(?, ?, ?) FROM t");
	expect_norm("INSERT INTO t(a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')", S, "INSERT INTO t(a, b) VALUES (?, ?)");
	expect_norm("INSERT INTO t VALUES (1, NULL), (2, 'y'), (3, NULL)", S,
		    "INSERT INTO t VALUES (?, NULL), (?, ?), (?, NULL)");
	expect_norm("INSERT INTO t VALUES (1), (2) ON CONFLICT (a) DO NOTHING", S,
		    "INSERT INTO t VALUES (?) ON CONFLICT (a) DO NOTHING");
	expect_same("SELECT * FROM t WHERE a IN (1)", "SELECT * FROM t WHERE a IN (1, 2, 3, 4, 5, 6, 7)", S, true);
	expect_same("INSERT INTO t VALUES (1, 2)", "INSERT INTO t VALUES (1, 2), (3, 4), (5, 6)", S, true);
	CHECKED("IN lists of literals and repeated VALUES rows collapse; anything else is kept");
}

static void test_fingerprints_sqlite(void **state)
{
	(void)state;
	const enum gh_sql_dialect S = GH_SQL_DIALECT_SQLITE;
	expect_same("SELECT name FROM customers WHERE id = 1", "select  NAME from customers\nwhere ID=99 -- x", S, true);
	expect_same("SELECT name FROM customers WHERE id = 1", "SELECT name FROM customers WHERE id = :id", S, true);
	expect_same("SELECT name FROM customers WHERE id = 1", "SELECT tier FROM customers WHERE id = 1", S, false);
	expect_same("SELECT name FROM customers WHERE id = 1", "SELECT name FROM invoices WHERE id = 1", S, false);
	expect_same("SELECT * FROM [T]", "SELECT * FROM [t]", S, false);
	expect_same("SELECT * FROM `T`", "SELECT * FROM `t`", S, false);
	/* SQLite takes "x" for a string when no column is named x: it may be a value */
	expect_norm("SELECT * FROM t WHERE name = \"alice\"", S, "SELECT * FROM t WHERE name = ?");
	expect_same("SELECT * FROM \"T\"", "SELECT * FROM \"t\"", GH_SQL_DIALECT_PG, false);
	expect_same("SELECT * FROM T", "SELECT * FROM t", S, true);
	expect_same("SELECT a - 1 FROM t", "SELECT a, -1 FROM t", S, false);
	CHECKED("statements differing only in literals, case or spacing share a fingerprint; others differ");
}

static void test_no_values_left(void **state)
{
	(void)state;
	static const char *const secrets[] = {
		"SELECT * FROM users WHERE email = 'alice@example.com' AND pin = 4711",
		"UPDATE accounts SET password = 'hunter2', balance = 1e6 WHERE id IN (7, 8, 9)",
		"INSERT INTO cards VALUES ('4111111111111111', x'deadbeef'), ('5500000000000004', x'cafe')",
		"SELECT 'unterminated hunter2",
	};
	static const char *const leaks[] = {"alice", "4711", "hunter2", "1e6", "4111", "5500", "deadbeef", "cafe", "7, 8"};
	for (size_t i = 0; i < sizeof secrets / sizeof *secrets; i++)
		for (int d = 0; d < 2; d++) {
			struct gh_buf ex;
			char f[17];
			gh_buf_init(&ex, 4096);
			assert_int_equal(gh_sql_fingerprint(secrets[i], strlen(secrets[i]), (enum gh_sql_dialect)d, f, &ex), 0);
			for (size_t k = 0; k < sizeof leaks / sizeof *leaks; k++)
				if (strstr(ex.data, leaks[k]))
					fail_msg("'%s' left '%s' in '%s'", secrets[i], leaks[k], ex.data);
			gh_buf_free(&ex);
		}
	CHECKED("no literal value survives in the example text (both dialects)");
}

static void test_postgres(void **state)
{
	(void)state;
	const enum gh_sql_dialect P = GH_SQL_DIALECT_PG;
	expect_norm("SELECT * FROM t WHERE id = $1 AND s = E'it\\'s' AND d = $$body ' $$ AND x::int = 5", P,
		    "SELECT * FROM t WHERE id = ? AND s = ? AND d = ? AND x::int = ?");
	expect_norm("SELECT $tag$ a $ b $tag$, 1 /* a /* nested */ b */ FROM t", P, "SELECT ?, ? FROM t");
	expect_norm("SELECT data ?| array['a'] FROM t", P, "SELECT data ?| array [ ? ] FROM t");
	expect_norm("SELECT B'101', N'x', U&'d\\0061t' FROM t", P, "SELECT ?, ?, ? FROM t");
	expect_norm("SELECT $abc FROM t", P, "SELECT $ abc FROM t");
	/* libpg_query's fingerprint for text that parses: literals and IN list lengths ignored */
	expect_same("SELECT name FROM customers WHERE id IN (1, 2, 3)", "SELECT name FROM customers WHERE id IN ($1)", P,
		    true);
	expect_same("SELECT name FROM customers WHERE id = 1", "select name from customers where id = 2", P, true);
	expect_same("SELECT name FROM customers WHERE id = 1", "SELECT tier FROM customers WHERE id = 1", P, false);
	char a[17], b[17];
	assert_int_equal(gh_sql_fingerprint_pg("SELECT 1", 8, a), 0);
	fp("SELECT 1", P, b);
	assert_string_equal(a, b);
	assert_int_equal(gh_sql_fingerprint_pg("SELEC 1", 7, a), GH_EINVAL);
	/* text that does not parse still gets a fingerprint, from the normaliser */
	expect_same("ATTACH DATABASE 'a.db' AS x", "ATTACH DATABASE 'b.db' AS x", P, true);
	assert_int_equal(gh_sql_fingerprint_pg("SELECT 1\0", 9, a), GH_EINVAL);
	CHECKED("PostgreSQL: $n, E'', dollar quotes, casts, nested comments; libpg_query's fingerprint when it parses");
}

static void test_bounds(void **state)
{
	(void)state;
	/* 2 * len + 16 is always enough: many one-character tokens */
	char many[4001];
	for (size_t i = 0; i < 4000; i += 2) {
		many[i] = 'a';
		many[i + 1] = ',';
	}
	many[4000] = '\0';
	struct gh_buf out;
	gh_buf_init(&out, 2 * 4000 + 16);
	assert_int_equal(gh_sql_normalize(many, 4000, GH_SQL_DIALECT_SQLITE, &out, NULL), 0);
	assert_true(out.len <= 2 * 4000 + 16);
	gh_buf_free(&out);
	/* a ceiling that is too small is reported, not overrun */
	gh_buf_init(&out, 8);
	assert_int_equal(gh_sql_normalize("SELECT name FROM customers", 26, GH_SQL_DIALECT_SQLITE, &out, NULL),
			 GH_ETOOBIG);
	gh_buf_free(&out);
	/* deep nesting is balanced past the tracked depth */
	char deep[2 * 200 + 16];
	size_t o = 0;
	for (int i = 0; i < 200; i++)
		deep[o++] = '(';
	deep[o++] = '1';
	for (int i = 0; i < 200; i++)
		deep[o++] = ')';
	deep[o] = '\0';
	char *n = norm(deep, GH_SQL_DIALECT_SQLITE);
	assert_int_equal(strlen(n), 401);
	free(n);
	/* unterminated quotes of every kind run to the end */
	static const char *const open_ends[] = {"SELECT 'abc", "SELECT \"abc", "SELECT [abc", "SELECT `abc",
						 "SELECT x'ab", "SELECT $$abc", "SELECT E'ab\\", "SELECT 1e", "?", "-",
						 "$", ":", "@", "x'", "U&", "N'"};
	for (size_t i = 0; i < sizeof open_ends / sizeof *open_ends; i++)
		for (int d = 0; d < 2; d++) {
			char f[17];
			assert_int_equal(gh_sql_fingerprint(open_ends[i], strlen(open_ends[i]), (enum gh_sql_dialect)d, f, NULL), 0);
		}
	CHECKED("output bounds hold; a small ceiling is GH_ETOOBIG; deep and unterminated text is handled");
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_literals_sqlite), cmocka_unit_test(test_spacing_and_comments),
	cmocka_unit_test(test_lists),		 cmocka_unit_test(test_fingerprints_sqlite),
	cmocka_unit_test(test_no_values_left),	 cmocka_unit_test(test_postgres),
	cmocka_unit_test(test_bounds),
};

GH_UNIT_MAIN("test_sql_fingerprint", tests)
