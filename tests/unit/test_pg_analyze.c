/* Unit tests for src/sql/pg_analyze.c: PostgreSQL statement analysis with libpg_query. Every
 * class and refusal, the disguises an attacker would try (comments, case, quoting, schema
 * qualification, writes hidden in CTEs, several statements in one text), look-alikes that must
 * stay allowed, and the facts the analysis reports (tables, functions, fingerprint, statement
 * spans, parameters, syntax error positions). */
#include "unit.h"

#include <pthread.h>
#include <string.h>

#include "sql/sql.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))
#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct gh_sql_analysis *analyze_n(const char *sql, size_t len)
{
	struct gh_sql_analysis *a = NULL;
	assert_int_equal(gh_sql_analyze_pg(sql, len, &a), 0);
	assert_non_null(a);
	assert_int_equal(a->refs, 1);
	return a;
}

static struct gh_sql_analysis *analyze(const char *sql)
{
	return analyze_n(sql, strlen(sql));
}

/* Asserts sql's class, and that a reason is given exactly for refusals and contains needle. */
static void expect(const char *sql, enum gh_sql_class want, const char *needle)
{
	struct gh_sql_analysis *a = analyze(sql);
	enum gh_sql_class cls = a->cls;
	char reason[sizeof a->reason];
	memcpy(reason, a->reason, sizeof reason);
	gh_sql_analysis_unref(a); /* before asserting: a failure must not leak */
	if (cls != want)
		fail_msg("'%s': class %s, want %s (reason: %s)", sql, gh_sql_class_name(cls), gh_sql_class_name(want),
			 reason);
	if (want == GH_SQL_DESTRUCTIVE || want == GH_SQL_FORBIDDEN) {
		if (!reason[0])
			fail_msg("'%s': %s without a reason", sql, gh_sql_class_name(want));
		if (needle && !strstr(reason, needle))
			fail_msg("'%s': reason '%s' does not say '%s'", sql, reason, needle);
	} else if (reason[0]) {
		fail_msg("'%s': %s with a reason '%s'", sql, gh_sql_class_name(want), reason);
	}
}

static void expect_all(const char *const *list, size_t n, enum gh_sql_class want)
{
	for (size_t i = 0; i < n; i++)
		expect(list[i], want, NULL);
}

/* Refusals with the words their reason must carry: {sql, needle}. */
struct refusal {
	const char *sql, *needle;
};

static void expect_refusals(const struct refusal *list, size_t n, enum gh_sql_class want)
{
	for (size_t i = 0; i < n; i++)
		expect(list[i].sql, want, list[i].needle);
}

static void expect_own(const char *sql, bool want_own)
{
	struct gh_sql_analysis *a = analyze(sql);
	enum gh_sql_class cls = a->cls;
	bool own = a->own_only;
	gh_sql_analysis_unref(a);
	if (cls != GH_SQL_DDL || own != want_own)
		fail_msg("'%s': %s own_only=%d, want ddl own_only=%d", sql, gh_sql_class_name(cls), own, want_own);
}

static const struct gh_sql_table *table(const struct gh_sql_analysis *a, const char *name)
{
	for (size_t i = 0; i < a->ntables; i++)
		if (strcmp(a->tables[i].name, name) == 0)
			return &a->tables[i];
	return NULL;
}

static bool has_function(const struct gh_sql_analysis *a, const char *name)
{
	for (size_t i = 0; i < a->nfunctions; i++)
		if (strcmp(a->functions[i], name) == 0)
			return true;
	return false;
}

static void test_class_names(void **state)
{
	(void)state;
	assert_string_equal(gh_sql_class_name(GH_SQL_SESSION), "session");
	assert_string_equal(gh_sql_class_name(GH_SQL_DESTRUCTIVE), "destructive");
	CHECKED("class names include session");
}

static void test_reads(void **state)
{
	(void)state;
	static const char *const reads[] = {
		"SELECT 1",
		"select * from t where id = $1",
		"SELECT a[1], (b).c, ARRAY[1,2], x::text, 'a' COLLATE \"C\", CASE WHEN a THEN 1 ELSE 2 END, "
		"COALESCE(a,b), GREATEST(1,2), NULLIF(a,b), a IS NULL, a IS TRUE, ROW(1,2), current_user, "
		"current_date, xmlelement(name foo), EXISTS (SELECT 1), a = ANY(ARRAY[1]), a BETWEEN 1 AND 2, "
		"a LIKE 'x%', count(*) FILTER (WHERE a) OVER (PARTITION BY b ORDER BY c ROWS 2 PRECEDING), "
		"string_agg(a, ',' ORDER BY a), GROUPING(a) FROM t GROUP BY ROLLUP (a, b) HAVING count(*) > 1 "
		"WINDOW w AS (ORDER BY a) ORDER BY 1 DESC NULLS LAST LIMIT 5 OFFSET 2",
		"SELECT * FROM t TABLESAMPLE SYSTEM (10), generate_series(1,3) WITH ORDINALITY AS g(i), "
		"LATERAL (SELECT 1) l, XMLTABLE('/r' PASSING x COLUMNS a int PATH 'a') xt, ROWS FROM (f(1), g(2))",
		"VALUES (1, 2), (3, 4)",
		"TABLE t",
		"SELECT DISTINCT ON (a) a FROM t",
		"SELECT xmlserialize(content x as text), extract(year from now()), substring('abc' from 2), "
		"trim(both 'x' from 'xax'), position('a' in 'ba'), overlay('abc' placing 'x' from 2), "
		"1 IS DISTINCT FROM 2, 'x' ~ 'y', f(a => 1)",
		"SELECT * FROM t WHERE (a, b) IN (SELECT 1, 2) AND a > ALL (SELECT 1)",
		"WITH w AS MATERIALIZED (SELECT 1 AS a) SELECT * FROM w",
		"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 9) SELECT * FROM r",
		"SELECT 1 UNION ALL SELECT 2 INTERSECT SELECT 3 EXCEPT SELECT 4",
		"SELECT json_build_object('a', 1) -> 'a', '{1}'::int[], B'101', 1.5e3, TRUE, NULL, interval '1 day'",
		"SELECT * FROM t GROUP BY GROUPING SETS ((a), (b), ()), CUBE (c)",
		"SELECT a FROM t ORDER BY a FETCH FIRST 3 ROWS WITH TIES",
		"SELECT * FROM a FULL JOIN b USING (x) LEFT JOIN c ON c.id = a.id",
		"EXPLAIN SELECT * FROM t",
		"EXPLAIN (COSTS off, FORMAT json) SELECT * FROM t",
		"EXPLAIN DELETE FROM t",                   /* not run without ANALYZE */
		"EXPLAIN INSERT INTO t VALUES (1)",
		"EXPLAIN ANALYZE SELECT * FROM t",
		"COPY t TO STDOUT",
		"COPY (SELECT * FROM t) TO STDOUT WITH (FORMAT csv)",
		"SELECT currval('s'), lastval()",
		"SELECT current_setting('gatehouse.user')", /* reading the setting is fine */
		"SELECT set_config('application_name', 'x', true)",
		"SELECT pg_catalog.set_config('search_path', 'public', false)",
		"SELECT 1 -- DROP TABLE t",
		"/* DELETE FROM t; */ SELECT 1",
		"SELECT 1;",
		"  \n SELECT 1;\n\n",
	};
	expect_all(reads, N(reads), GH_SQL_READ);
	CHECKED("%zu reads: expressions, joins, CTEs, set operations, VALUES, TABLE, EXPLAIN (and EXPLAIN "
		"of writes without ANALYZE), COPY TO STDOUT, currval, current_setting, harmless set_config",
		N(reads));
}

static void test_writes(void **state)
{
	(void)state;
	static const char *const writes[] = {
		"INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET b = excluded.b RETURNING *",
		"INSERT INTO t SELECT * FROM u",
		"UPDATE t SET a = u.a FROM u WHERE t.id = u.id",
		"DELETE FROM t USING u WHERE t.id = u.id",
		"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v "
		"WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)",
		"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
		"WITH x AS (SELECT 1), y AS (UPDATE t SET a = 1 RETURNING a) SELECT * FROM x, y",
		"SELECT * FROM (SELECT * FROM t FOR UPDATE) s",
		"SELECT * FROM t FOR UPDATE",
		"SELECT * FROM t FOR SHARE",
		"SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED",
		"SELECT * FROM t FOR KEY SHARE NOWAIT",
		"WITH l AS (SELECT * FROM t FOR UPDATE) SELECT * FROM l",
		"LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
		"COPY t FROM STDIN",
		"COPY t (a, b) FROM STDIN WITH (FORMAT csv)",
		"COPY (DELETE FROM t RETURNING *) TO STDOUT",
		"SELECT nextval('s')",
		"SELECT pg_catalog.setval('s', 1)",
		"SELECT \"NEXTVAL\"('s')",
		"EXPLAIN ANALYZE DELETE FROM t",
		"EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1",
		"EXPLAIN ANALYZE WITH d AS (DELETE FROM t) SELECT 1",
		"EXPLAIN ANALYZE SELECT nextval('s')",
		"EXPLAIN ANALYSE DELETE FROM t",
		"EXPLAIN (analyse) DELETE FROM t",
		"EXPLAIN (\"analyze\" false) DELETE FROM t", /* any ANALYZE option counts: the safe side */
	};
	expect_all(writes, N(writes), GH_SQL_WRITE);
	CHECKED("%zu writes: INSERT/UPDATE/DELETE/MERGE, writes in CTEs, row locks, LOCK, COPY FROM STDIN, "
		"nextval/setval, EXPLAIN ANALYZE of writes", N(writes));
}

static void test_ddl(void **state)
{
	(void)state;
	static const char *const ddl[] = {
		"CREATE TABLE n (a int PRIMARY KEY, b text DEFAULT 'x' CHECK (b <> ''), "
		"c int REFERENCES t(id) ON DELETE CASCADE, d int GENERATED ALWAYS AS IDENTITY)",
		"CREATE TABLE p (a int, b date) PARTITION BY RANGE (b)",
		"CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2020-01-01') TO ('2021-01-01')",
		"CREATE TABLE l (LIKE t INCLUDING ALL)",
		"CREATE INDEX CONCURRENTLY i ON t USING btree (lower(name)) INCLUDE (v) WHERE v > 0",
		"CREATE VIEW v AS SELECT * FROM t WITH CHECK OPTION",
		"CREATE OR REPLACE VIEW v AS SELECT 1",
		"CREATE MATERIALIZED VIEW mv AS SELECT count(*) FROM t WITH NO DATA",
		"CREATE SEQUENCE s START 10",
		"CREATE SCHEMA app CREATE TABLE x (a int) CREATE VIEW y AS SELECT 1",
		"CREATE TYPE mood AS ENUM ('a', 'b')",
		"CREATE TYPE pair AS (a int, b int)",
		"CREATE TYPE r AS RANGE (subtype = int4)",
		"CREATE DOMAIN pos AS int CHECK (VALUE > 0)",
		"CREATE TRIGGER tr AFTER INSERT ON t REFERENCING NEW TABLE AS nt FOR EACH STATEMENT EXECUTE FUNCTION f()",
		"CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING",
		"CREATE RULE r AS ON DELETE TO t DO INSTEAD DELETE FROM u",
		"COMMENT ON TABLE t IS 'DROP TABLE t'",
		"ALTER TABLE t RENAME TO t2",
		"ALTER TABLE t RENAME COLUMN a TO b",
		"ALTER TABLE t ADD COLUMN x int, ALTER COLUMN v SET DEFAULT 1, ADD CONSTRAINT c UNIQUE (x)",
		"ALTER TABLE t ALTER COLUMN a DROP DEFAULT", /* the default goes, the column stays */
		"ALTER TABLE t SET SCHEMA s",
		"ALTER TABLE t ATTACH PARTITION p1 FOR VALUES IN (1)",
		"ALTER TABLE t ALTER COLUMN v TYPE bigint USING v::bigint",
		"ALTER VIEW v RENAME TO v2",
		"ALTER INDEX i RENAME TO i2",
		"ALTER SEQUENCE s RESTART",
		"ALTER TYPE mood ADD VALUE 'c'",
		"ALTER SCHEMA s RENAME TO s2",
		"REFRESH MATERIALIZED VIEW CONCURRENTLY mv",
		"ANALYZE",
		"ANALYZE t",
		"CREATE TABLE x AS SELECT * FROM t",
		"SELECT * INTO x FROM t",
		"CREATE STATISTICS st ON a, b FROM t",
		"EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1",
	};
	expect_all(ddl, N(ddl), GH_SQL_DDL);
	for (size_t i = 0; i < N(ddl); i++)
		expect_own(ddl[i], false);
	CHECKED("%zu ddl: CREATE/ALTER TABLE/INDEX/VIEW/MATVIEW/SEQUENCE/SCHEMA/TYPE/DOMAIN/TRIGGER/RULE/"
		"COMMENT, RENAME, REFRESH, ANALYZE, CREATE TABLE AS, SELECT INTO; none own_only",
		N(ddl));
}

/* Code an owner may run is analysed too: destructive and forbidden statements stay refused
 * inside DO blocks and function bodies, and what cannot be seen (dynamic SQL, other languages)
 * is refused. */
static void test_code_bodies(void **state)
{
	(void)state;
	static const struct refusal destructive[] = {
		{"DO $$BEGIN DROP TABLE notes; END$$", "code runs a destructive statement"},
		{"DO $$BEGIN IF true THEN TRUNCATE t; END IF; END$$", "TRUNCATE"},
		{"CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'DROP TABLE t'", "DROP TABLE"},
		{"CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'SELECT 1; ALTER SYSTEM SET work_mem = 1'", "ALTER SYSTEM"},
		{"CREATE PROCEDURE p() LANGUAGE plpgsql AS $$BEGIN DROP SCHEMA s CASCADE; END$$", "DROP SCHEMA"},
	};
	static const struct refusal forbidden[] = {
		/* session-level advisory locks would stay held on a pooled connection */
		{"SELECT pg_advisory_lock(42)", "pg_advisory_lock"},
		{"SELECT pg_try_advisory_lock_shared(1, 2)", "pg_try_advisory_lock_shared"},
		{"DO $$BEGIN EXECUTE 'DROP TABLE ' || 'notes'; END$$", "dynamic SQL"},
		{"DO $$BEGIN EXECUTE format('TRUNCATE %I', 't'); END$$", "dynamic SQL"},
		{"DO $$DECLARE r record; BEGIN FOR r IN EXECUTE 'SELECT 1' LOOP END LOOP; END$$", "dynamic SQL"},
		{"CREATE FUNCTION f() RETURNS SETOF int LANGUAGE plpgsql AS $$BEGIN RETURN QUERY EXECUTE 'SELECT 1'; END$$",
		 "dynamic SQL"},
		{"DO $$BEGIN PERFORM lo_import('/etc/passwd'); END$$", "lo_import"},
		{"DO $$DECLARE s text; BEGIN s := pg_read_file('/etc/passwd'); END$$", "pg_read_file"},
		{"DO $$BEGIN IF pg_terminate_backend(1) THEN NULL; END IF; END$$", "pg_terminate_backend"},
		{"DO $$BEGIN SET ROLE postgres; END$$", "SET ROLE"},
		{"DO $$BEGIN COPY t TO PROGRAM 'sh'; END$$", "PROGRAM"},
		{"DO $$BEGIN DO $x$BEGIN EXECUTE 'DROP TABLE t'; END$x$; END$$", "dynamic SQL"},
		{"CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS 'return 1'", "language plpython3u"},
		{"CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'mylib', 'f'", "cannot be analysed"},
		{"DO LANGUAGE plperl 'system(\"id\")'", "language plperl"},
		{"DO $$BEGIN NOT VALID PLPGSQL; END$$", "does not parse"},
	};
	expect_refusals(destructive, N(destructive), GH_SQL_DESTRUCTIVE);
	expect_refusals(forbidden, N(forbidden), GH_SQL_FORBIDDEN);
	CHECKED("%zu code bodies refused: DROP/TRUNCATE/ALTER SYSTEM inside DO and functions, dynamic SQL, "
		"forbidden functions in expressions and assignments, other languages", N(destructive) + N(forbidden));
}

static void test_own_only(void **state)
{
	(void)state;
	static const char *const own[] = {
		"DO $$BEGIN PERFORM 1; END$$",
		"DO LANGUAGE plpgsql 'BEGIN NULL; END'",
		"CALL p(1)",
		"CALL s.p()",
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
		"CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END",
		"CREATE FUNCTION g(a int) RETURNS int RETURN a + 1",
		"DO $$BEGIN UPDATE t SET v = v + 1 WHERE id = 3; END$$",
		"DO $$DECLARE n int; BEGIN n := (SELECT count(*) FROM t); IF n > 2 THEN RAISE NOTICE 'big'; END IF; END$$",
		"DO $$BEGIN FOR i IN 1..3 LOOP INSERT INTO t VALUES (i); END LOOP; END$$",
		"CREATE FUNCTION h() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.v := 0; RETURN NEW; END$$",
		"CREATE FUNCTION k(a int) RETURNS SETOF t LANGUAGE sql AS 'SELECT * FROM t WHERE id = $1'",
		"ALTER FUNCTION f() SECURITY DEFINER",
		"ALTER PROCEDURE p() RENAME TO q",
		"ALTER ROUTINE f() SET search_path = public",
		"ALTER FUNCTION f() SET SCHEMA s",
		"GRANT SELECT ON t TO bob",
		/* row-level security decides who sees what: the owner's call */
		"CREATE POLICY p ON t FOR SELECT TO PUBLIC USING (owner = current_user)",
		"ALTER POLICY p ON t USING (true)",
		"ALTER TABLE t ENABLE ROW LEVEL SECURITY",
		"ALTER TABLE t DISABLE ROW LEVEL SECURITY",
		"ALTER TABLE t NO FORCE ROW LEVEL SECURITY",
		"GRANT ALL ON ALL TABLES IN SCHEMA public TO bob",
		"REVOKE ALL ON t FROM PUBLIC",
		"GRANT r TO bob",
		"ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob",
		"CREATE AGGREGATE a (int) (sfunc = int4pl, stype = int)",
		"CREATE OPERATOR === (leftarg = int, rightarg = int, function = int4eq)",
	};
	for (size_t i = 0; i < N(own); i++)
		expect_own(own[i], true);
	struct gh_sql_analysis *a = analyze("SELECT 1; CALL p()");
	assert_true(a->own_only);
	assert_int_equal(a->cls, GH_SQL_DDL);
	gh_sql_analysis_unref(a);
	CHECKED("%zu own_only ddl: DO, CALL, CREATE/ALTER FUNCTION/PROCEDURE/ROUTINE, GRANT, REVOKE, "
		"ALTER DEFAULT PRIVILEGES, CREATE AGGREGATE/OPERATOR; own_only survives in a multi-statement text",
		N(own));
}

struct session_case {
	const char *sql;
	enum gh_sql_session session;
	bool set_local, read_only;
};

static void test_session(void **state)
{
	(void)state;
	static const struct session_case cases[] = {
		{"BEGIN", GH_SESSION_BEGIN, false, false},
		{"begin transaction", GH_SESSION_BEGIN, false, false},
		{"START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY", GH_SESSION_BEGIN, false, true},
		{"BEGIN READ ONLY", GH_SESSION_BEGIN, false, true},
		{"BEGIN READ WRITE", GH_SESSION_BEGIN, false, false},
		{"COMMIT", GH_SESSION_COMMIT, false, false},
		{"END", GH_SESSION_COMMIT, false, false},
		{"COMMIT AND CHAIN", GH_SESSION_COMMIT, false, false},
		{"ROLLBACK", GH_SESSION_ROLLBACK, false, false},
		{"ABORT", GH_SESSION_ROLLBACK, false, false},
		{"SAVEPOINT s", GH_SESSION_SAVEPOINT, false, false},
		{"RELEASE SAVEPOINT s", GH_SESSION_SAVEPOINT, false, false},
		{"ROLLBACK TO SAVEPOINT s", GH_SESSION_SAVEPOINT, false, false},
		{"SET search_path TO a, b", GH_SESSION_SET, false, false},
		{"SET LOCAL work_mem = '64MB'", GH_SESSION_SET, true, false},
		{"SET SESSION work_mem = '64MB'", GH_SESSION_SET, false, false},
		{"SET TIME ZONE 'UTC'", GH_SESSION_SET, false, false},
		{"SET work_mem TO DEFAULT", GH_SESSION_SET, false, false},
		{"SET application_name = 'gatehouse'", GH_SESSION_SET, false, false},
		{"SHOW work_mem", GH_SESSION_SHOW, false, false},
		{"SHOW ALL", GH_SESSION_SHOW, false, false},
		{"RESET work_mem", GH_SESSION_RESET, false, false},
	};
	for (size_t i = 0; i < N(cases); i++) {
		struct gh_sql_analysis *a = analyze(cases[i].sql);
		enum gh_sql_class cls = a->cls;
		struct gh_sql_stmt st = a->nstmts == 1 ? a->stmts[0] : (struct gh_sql_stmt){.cls = GH_SQL_FORBIDDEN};
		bool reason = a->reason[0] != '\0';
		gh_sql_analysis_unref(a);
		if (cls != GH_SQL_SESSION || st.cls != GH_SQL_SESSION || reason || st.session != cases[i].session ||
		    st.set_local != cases[i].set_local || st.begin_read_only != cases[i].read_only)
			fail_msg("'%s': %s session %d local %d ro %d", cases[i].sql, gh_sql_class_name(cls), st.session,
				 st.set_local, st.begin_read_only);
	}
	expect("SELECT 1; SET search_path = x", GH_SQL_SESSION, NULL);
	expect("BEGIN; UPDATE t SET a = 1; COMMIT", GH_SQL_WRITE, NULL);
	CHECKED("%zu session statements with their kind, SET LOCAL and BEGIN READ ONLY; session outranks read, "
		"write outranks session", N(cases));
}

static void test_destructive(void **state)
{
	(void)state;
	static const struct refusal destructive[] = {
		{"DROP TABLE t", "DROP TABLE"},
		{"DROP TABLE IF EXISTS t CASCADE", "DROP TABLE"},
		{"drop table public.t", "DROP TABLE"},
		{"DROP INDEX i", "DROP INDEX"},
		{"DROP VIEW v", "DROP VIEW"},
		{"DROP MATERIALIZED VIEW mv", "DROP MATVIEW"},
		{"DROP SEQUENCE s", "DROP SEQUENCE"},
		{"DROP SCHEMA s CASCADE", "DROP SCHEMA"},
		{"DROP FUNCTION f()", "DROP FUNCTION"},
		{"DROP TYPE mood", "DROP TYPE"},
		{"DROP TRIGGER tr ON t", "DROP TRIGGER"},
		{"DROP POLICY p ON t", "DROP POLICY"},
		{"DROP EXTENSION e", "DROP EXTENSION"},
		{"DROP ROLE r", "DROP ROLE"},
		{"DROP USER u", "DROP ROLE/USER"},
		{"DROP GROUP g", "DROP ROLE/USER/GROUP"},
		{"DROP DATABASE d", "DROP DATABASE"},
		{"DROP TABLESPACE ts", "DROP TABLESPACE"},
		{"DROP OWNED BY r", "DROP OWNED"},
		{"DROP SUBSCRIPTION s", "DROP SUBSCRIPTION"},
		{"DROP USER MAPPING FOR u SERVER s", "DROP USER MAPPING"},
		{"TRUNCATE t", "TRUNCATE"},
		{"TRUNCATE TABLE a, b RESTART IDENTITY", "TRUNCATE"},
		{"ALTER SYSTEM SET work_mem = '1GB'", "ALTER SYSTEM"},
		{"ALTER SYSTEM RESET ALL", "ALTER SYSTEM"},
		{"ALTER ROLE r SUPERUSER", "ALTER ROLE"},
		{"ALTER USER u PASSWORD 'x'", "ALTER ROLE"},
		{"ALTER GROUP g ADD USER u", "ALTER ROLE"},
		{"ALTER ROLE r SET search_path = x", "ALTER ROLE"},
		{"ALTER ROLE r RENAME TO r2", "ALTER ROLE"},
		{"ALTER DATABASE d SET x = 1", "ALTER DATABASE"},
		{"ALTER DATABASE d RENAME TO d2", "ALTER DATABASE"},
		{"ALTER DATABASE d OWNER TO r", "ALTER DATABASE"},
		{"ALTER DATABASE d CONNECTION LIMIT 1", "ALTER DATABASE"},
		{"ALTER DATABASE d REFRESH COLLATION VERSION", "ALTER DATABASE"},
		{"REASSIGN OWNED BY a TO b", "REASSIGN OWNED"},
		{"ALTER TABLE t DROP COLUMN a", "DROP COLUMN"},
		{"ALTER TABLE t DROP a", "DROP COLUMN"},
		{"ALTER TABLE t DROP CONSTRAINT c", "DROP CONSTRAINT"},
		{"ALTER TABLE t ALTER COLUMN a DROP NOT NULL", "DROP NOT NULL"},
		{"ALTER TABLE t ALTER COLUMN a DROP IDENTITY", "DROP IDENTITY"},
		{"ALTER TABLE t ALTER COLUMN a DROP EXPRESSION", "DROP EXPRESSION"},
		{"ALTER TABLE t NO INHERIT p", "DROP INHERIT"},
		{"ALTER TABLE t NOT OF", "DROP OF"},
		{"ALTER TABLE t ADD COLUMN x int, DROP COLUMN y", "DROP COLUMN"},
		{"ALTER TYPE pair DROP ATTRIBUTE a", "DROP COLUMN"},
		{"ALTER DOMAIN d DROP CONSTRAINT c", "DROP CONSTRAINT"},
		{"ALTER DOMAIN d DROP NOT NULL", "DROP NOT NULL"},
		{"CREATE SCHEMA s CREATE TABLE x (a int); DROP SCHEMA s", "DROP SCHEMA"},
	};
	expect_refusals(destructive, N(destructive), GH_SQL_DESTRUCTIVE);
	CHECKED("%zu destructive: DROP of every kind, TRUNCATE, ALTER SYSTEM/ROLE/DATABASE, REASSIGN/DROP "
		"OWNED, ALTER TABLE/TYPE/DOMAIN sub-commands that drop", N(destructive));
}

static void test_forbidden(void **state)
{
	(void)state;
	static const struct refusal forbidden[] = {
		/* the limits and modes Gatehouse sets for a request are not the caller's to change */
		{"SET LOCAL statement_timeout = 0", "statement_timeout"},
		{"SET statement_timeout TO DEFAULT", "statement_timeout"},
		{"RESET lock_timeout", "lock_timeout"},
		{"SET LOCAL transaction_read_only = off", "transaction_read_only"},
		{"SELECT set_config('statement_timeout', '0', true)", "set_config"},
		{"SET session_replication_role = replica", "session_replication_role"},
		/* backend connections are pooled: temporary objects would outlive the request */
		{"CREATE TEMP TABLE tt (a int) ON COMMIT DROP", "temporary objects"},
		{"CREATE TEMPORARY VIEW tv AS SELECT 1", "temporary objects"},
		{"CREATE TEMP SEQUENCE ts", "temporary objects"},
		{"SELECT * INTO TEMP t2 FROM t", "temporary objects"},
		{"CREATE TABLE pg_temp.x (a int)", "temporary objects"},
		{"SELECT * FROM pg_temp.x", "temporary objects"},
		{"COPY t FROM PROGRAM 'id'", "PROGRAM"},
		{"COPY (SELECT 1) TO PROGRAM 'cat > /tmp/x'", "PROGRAM"},
		{"COPY t TO '/tmp/x'", "server file"},
		{"COPY t FROM '/etc/passwd'", "server file"},
		{"LOAD 'auto_explain'", "LOAD"},
		{"SET ROLE bob", "SET ROLE"},
		{"SET LOCAL ROLE bob", "SET ROLE"},
		{"SET role = 'bob'", "SET ROLE"},
		{"SET \"ROLE\" TO bob", "SET ROLE"},
		{"SET SESSION AUTHORIZATION bob", "SESSION AUTHORIZATION"},
		{"SET SESSION AUTHORIZATION DEFAULT", "SESSION AUTHORIZATION"},
		{"RESET ROLE", "RESET ROLE"},
		{"RESET SESSION AUTHORIZATION", "SESSION AUTHORIZATION"},
		{"RESET ALL", "RESET ALL"},
		{"DISCARD ALL", "DISCARD"},
		{"DISCARD PLANS", "DISCARD"},
		{"SET gatehouse.uid = 'x'", "gatehouse.uid"},
		{"SET LOCAL \"gatehouse.uid\" = 'x'", "gatehouse.uid"},
		{"SET \"GATEHOUSE.uid\" TO 'x'", "GATEHOUSE.uid"},
		{"SET GateHouse.Subject TO 'admin'", "gatehouse.subject"},
		{"SET gatehouse.uid TO DEFAULT", "gatehouse.uid"},
		{"RESET gatehouse.uid", "RESET of gatehouse.uid"},
		{"SELECT set_config('gatehouse.user', 'admin', false)", "set_config"},
		{"select PG_CATALOG.SET_CONFIG('GateHouse.user', 'admin', true)", "set_config"},
		{"SELECT set_config('role', 'postgres', false)", "set_config of role"},
		{"SELECT set_config('session_authorization', 'postgres', false)", "session_authorization"},
		{"SELECT set_config($1, 'x', false)", "not a string constant"},
		{"SELECT set_config('gate' || 'house.user', 'x', false)", "not a string constant"},
		{"SELECT set_config(setting_name => 'role', new_value => 'x', is_local => false)", "not a string constant"},
		{"SELECT * FROM t WHERE set_config('gatehouse.user', 'x', true) IS NOT NULL", "set_config"},
		{"LISTEN c", "LISTEN"},
		{"NOTIFY c, 'x'", "NOTIFY"},
		{"UNLISTEN *", "UNLISTEN"},
		{"SELECT pg_notify('c', 'x')", "pg_notify"},
		{"PREPARE p AS SELECT 1", "PREPARE"},
		{"EXECUTE p", "EXECUTE"},
		{"EXPLAIN EXECUTE p", "EXECUTE"},
		{"CREATE TABLE x AS EXECUTE p", "EXECUTE"},
		{"DEALLOCATE p", "DEALLOCATE"},
		{"DEALLOCATE ALL", "DEALLOCATE"},
		{"DECLARE c CURSOR FOR SELECT 1", "DECLARE CURSOR"},
		{"FETCH c", "FETCH"},
		{"MOVE NEXT FROM c", "MOVE"},
		{"CLOSE c", "CLOSE"},
		{"VACUUM", "VACUUM"},
		{"VACUUM FULL t", "VACUUM"},
		{"CLUSTER t", "CLUSTER"},
		{"REINDEX TABLE t", "REINDEX"},
		{"CHECKPOINT", "CHECKPOINT"},
		{"CREATE EXTENSION dblink", "CREATE EXTENSION"},
		{"ALTER EXTENSION x UPDATE", "ALTER EXTENSION"},
		{"CREATE ROLE r", "CREATE ROLE"},
		{"CREATE USER u", "CREATE ROLE/USER"},
		{"CREATE GROUP g", "CREATE ROLE/USER/GROUP"},
		{"CREATE DATABASE d", "CREATE DATABASE"},
		{"CREATE TABLESPACE ts LOCATION '/x'", "CREATE TABLESPACE"},
		{"CREATE SERVER s FOREIGN DATA WRAPPER f", "CREATE SERVER"},
		{"CREATE FOREIGN DATA WRAPPER f", "FOREIGN DATA WRAPPER"},
		{"CREATE USER MAPPING FOR u SERVER s", "USER MAPPING"},
		{"CREATE FOREIGN TABLE f (a int) SERVER s", "FOREIGN TABLE"},
		{"ALTER FOREIGN TABLE f ADD COLUMN b int", "FOREIGN TABLE"},
		{"IMPORT FOREIGN SCHEMA x FROM SERVER s INTO y", "IMPORT FOREIGN SCHEMA"},
		{"CREATE PUBLICATION p FOR ALL TABLES", "PUBLICATION"},
		{"ALTER PUBLICATION p ADD TABLE t", "PUBLICATION"},
		{"CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p", "SUBSCRIPTION"},
		{"ALTER SUBSCRIPTION s DISABLE", "SUBSCRIPTION"},
		{"CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()", "EVENT TRIGGER"},
		{"CREATE LANGUAGE plperlu", "not allowed"}, /* PostgreSQL turns it into CREATE EXTENSION */
		{"CREATE LANGUAGE plsample HANDLER plsample_call_handler", "CREATE LANGUAGE"},
		{"SECURITY LABEL ON TABLE t IS 'x'", "SECURITY LABEL"},
		{"ALTER TABLE t OWNER TO bob", "OWNER TO"},
		{"ALTER SCHEMA s OWNER TO bob", "OWNER TO"},
		{"ALTER FUNCTION f() OWNER TO bob", "OWNER TO"},
		{"CREATE CAST (int AS text) WITH FUNCTION f(int)", "CREATE CAST"},
		{"CREATE CONVERSION c FOR 'UTF8' TO 'LATIN1' FROM f", "CREATE CONVERSION"},
		{"CREATE OPERATOR CLASS c FOR TYPE int USING btree AS OPERATOR 1 <", "OPERATOR CLASS"},
		{"CREATE COLLATION c (locale = 'C')", "COLLATION"},
		{"CREATE TEXT SEARCH DICTIONARY d (template = simple)", "not allowed"},
		{"ALTER TABLESPACE ts SET (random_page_cost = 1)", "TABLESPACE"},
		{"ALTER SERVER s OPTIONS (host 'x')", "SERVER"},
		{"PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"},
		{"COMMIT PREPARED 'x'", "COMMIT PREPARED"},
		{"ROLLBACK PREPARED 'x'", "ROLLBACK PREPARED"},
		{"SET CONSTRAINTS ALL DEFERRED", "SET CONSTRAINTS"},
		{"ALTER FUNCTION f() SET gatehouse.uid = '1'", "gatehouse.uid"},
		{"CREATE FUNCTION h() RETURNS int SET ROLE = bob AS 'select 1' LANGUAGE sql", "ROLE"},
		{"CREATE RULE r AS ON INSERT TO t DO ALSO NOTIFY c", "NOTIFY"},
	};
	expect_refusals(forbidden, N(forbidden), GH_SQL_FORBIDDEN);
	CHECKED("%zu forbidden statements, each with a reason naming it", N(forbidden));
}

static void test_forbidden_functions(void **state)
{
	(void)state;
	static const struct refusal functions[] = {
		{"SELECT lo_import('/etc/passwd')", "lo_import"},
		{"SELECT LO_EXPORT(1, '/tmp/x')", "lo_export"},
		{"SELECT lo_unlink(1)", "lo_unlink"},
		{"SELECT lo_from_bytea(0, 'x')", "lo_from_bytea"},
		{"SELECT loread(lo_open(1, 262144), 10)", "not allowed"},
		{"SELECT lowrite(0, 'x')", "lowrite"},
		{"SELECT pg_catalog.pg_read_file('/etc/passwd')", "pg_read_file"},
		{"SELECT pg_read_binary_file('/etc/passwd')", "pg_read_binary_file"},
		{"SELECT * FROM pg_ls_dir('.')", "pg_ls_dir"},
		{"SELECT * FROM pg_ls_waldir()", "pg_ls_waldir"},
		{"SELECT pg_stat_file('postgresql.conf')", "pg_stat_file"},
		{"SELECT pg_file_write('x', 'y', false)", "pg_file_write"},
		{"SELECT pg_file_rename('x', 'y')", "pg_file_rename"},
		{"SELECT pg_file_unlink('x')", "pg_file_unlink"},
		{"SELECT * FROM dblink('host=x', 'DELETE FROM t') AS r(a int)", "dblink"},
		{"SELECT dblink_exec('x', 'DROP TABLE t')", "dblink_exec"},
		{"SELECT public.dblink_connect('x')", "dblink_connect"},
		{"SELECT \"pg_catalog\".\"pg_terminate_backend\"(1)", "pg_terminate_backend"},
		{"SELECT pg_cancel_backend(1)", "pg_cancel_backend"},
		{"SELECT pg_reload_conf()", "pg_reload_conf"},
		{"SELECT pg_promote()", "pg_promote"},
		{"SELECT pg_rotate_logfile()", "pg_rotate_logfile"},
		{"SELECT pg_switch_wal()", "pg_switch_wal"},
		{"SELECT pg_create_restore_point('x')", "pg_create_restore_point"},
		{"SELECT pg_logical_emit_message(true, 'x', 'y')", "pg_logical_emit_message"},
		{"SELECT query_to_xml('DELETE FROM t RETURNING 1', true, true, '')", "query_to_xml"},
		{"SELECT query_to_xml_and_xmlschema('SELECT 1', true, true, '')", "query_to_xml_and_xmlschema"},
		{"SELECT query_to_xmlschema('SELECT 1', true, true, '')", "query_to_xmlschema"},
		{"SELECT cursor_to_xml('c', 1, true, true, '')", "cursor_to_xml"},
		{"SELECT table_to_xml('secret', true, true, '')", "table_to_xml"},
		{"SELECT schema_to_xml('public', true, true, '')", "schema_to_xml"},
		{"SELECT database_to_xml(true, true, '')", "database_to_xml"},
		{"SELECT ts_stat('SELECT v FROM secret')", "ts_stat"},
		{"SELECT 1 FROM t WHERE a = (SELECT lo_import('/x'))", "lo_import"},
		{"WITH x AS (SELECT pg_read_file('/etc/passwd')) SELECT * FROM x", "pg_read_file"},
		{"EXPLAIN SELECT lo_import('/x')", "lo_import"},
		{"INSERT INTO t VALUES (pg_read_file('/etc/passwd'))", "pg_read_file"},
		{"CALL dblink_exec('x')", "dblink_exec"},
	};
	expect_refusals(functions, N(functions), GH_SQL_FORBIDDEN);
	CHECKED("%zu calls of refused functions, any schema or case, in any clause or subquery", N(functions));
}

/* What an attacker would try to slip a refused statement past the analyser. */
static void test_disguises(void **state)
{
	(void)state;
	static const struct refusal destructive[] = {
		{"/* harmless */ DROP TABLE t", "DROP TABLE"},
		{"-- a comment\nDROP TABLE t", "DROP TABLE"},
		{"DrOp TaBlE t", "DROP TABLE"},
		{"DROP TABLE \"Users\"", "DROP TABLE"},
		{"DROP/**/TABLE/**/t", "DROP TABLE"},
		{"SELECT 1; DROP TABLE t", "DROP TABLE"},
		{"SELECT 1; SELECT 2; TRUNCATE t; SELECT 3", "TRUNCATE"},
		{"DROP TABLE t; LISTEN c", "DROP TABLE"},       /* destructive outranks forbidden */
		{"LISTEN c; DROP TABLE t", "DROP TABLE"},       /* and gives the reason */
		{"SELECT ';'; DROP TABLE t", "DROP TABLE"},
		{"SELECT $$;$$; DROP TABLE t", "DROP TABLE"},
		{"CREATE SCHEMA s CREATE TABLE x (a int); ALTER TABLE x DROP COLUMN a", "DROP COLUMN"},
		{"BEGIN; DROP TABLE t; COMMIT", "DROP TABLE"},
		{"\tdrop\ntable\r\nt\n;", "DROP TABLE"},
	};
	expect_refusals(destructive, N(destructive), GH_SQL_DESTRUCTIVE);
	static const struct refusal forbidden[] = {
		{"SELECT 1; SET ROLE postgres", "SET ROLE"},
		{"SELECT 1; COPY t TO PROGRAM 'x'", "PROGRAM"},
		{"select \"pg_catalog\".\"lo_import\"('/etc/passwd')", "lo_import"},
		{"SELECT Pg_Catalog.Pg_Read_File('/etc/passwd')", "pg_read_file"},
		{"WITH d AS (SELECT pg_ls_dir('/')) SELECT * FROM d", "pg_ls_dir"},
		{"SELECT (SELECT dblink('x', 'y'))", "dblink"},
		{"SELECT * FROM t ORDER BY pg_notify('c', 'x')", "pg_notify"},
		{"SELECT 1 /* ; DROP TABLE t */; LISTEN c", "LISTEN"},
		{"SET \"gatehouse\".\"uid\" = 'x'", "gatehouse"},
	};
	expect_refusals(forbidden, N(forbidden), GH_SQL_FORBIDDEN);
	/* EXPLAIN ANALYZE DROP is not valid SQL: it must fail to parse, not pass */
	expect("EXPLAIN ANALYZE DROP TABLE t", GH_SQL_FORBIDDEN, "syntax error");
	expect("EXPLAIN ANALYZE TRUNCATE t", GH_SQL_FORBIDDEN, "syntax error");
	CHECKED("%zu disguises: comments, case, quoting, pg_catalog, CTEs, subqueries, multi-statement "
		"text with one refused part; EXPLAIN ANALYZE DROP does not parse",
		N(destructive) + N(forbidden) + 2);
}

/* Text that resembles a refused statement and must stay allowed. */
static void test_lookalikes(void **state)
{
	(void)state;
	static const char *const reads[] = {
		"SELECT \"drop\" FROM t",
		"SELECT \"drop\", \"truncate\", \"delete\" FROM \"truncate\"",
		"SELECT 'DROP TABLE x'",
		"SELECT * FROM t WHERE note = 'DROP TABLE x; TRUNCATE y'",
		"SELECT $$DROP TABLE t$$",
		"SELECT E'\\'; DROP TABLE t; --'",
		"SELECT current_setting('gatehouse.user')",
		"SELECT current_setting('role')",
		"SELECT set_config('application_name', 'x', true)",
		"SELECT lo_total FROM t",
		"SELECT t.lo_import, t.pg_read_file FROM t",
		"SELECT dblink FROM links",
		"SELECT * FROM lo_things",
		"SELECT * FROM pg_ls_dir_cache",
		"SELECT 1 AS \"DROP TABLE t\"",
		"SELECT * FROM drop_log",
		"SELECT * FROM \"DROP TABLE t\"",
		"SELECT a AS listen, b AS notify FROM t",
		"SELECT nextval_count FROM t",
	};
	expect_all(reads, N(reads), GH_SQL_READ);
	expect("UPDATE \"truncate\" SET \"drop\" = 1", GH_SQL_WRITE, NULL);
	expect("INSERT INTO t (note) VALUES ('ALTER SYSTEM SET x = 1')", GH_SQL_WRITE, NULL);
	expect("CREATE TABLE \"drop\" (\"truncate\" int)", GH_SQL_DDL, NULL);
	CHECKED("%zu look-alikes stay allowed: columns/tables named drop/truncate/lo_*, SQL in strings, "
		"current_setting, harmless set_config", N(reads) + 3);
}

static void test_tables(void **state)
{
	(void)state;
	struct gh_sql_analysis *a = analyze(
		"WITH recent AS (SELECT * FROM app.orders WHERE at > now() - interval '1 day'), "
		"gone AS (DELETE FROM carts USING sessions s WHERE s.id = carts.sid RETURNING carts.id) "
		"INSERT INTO archive SELECT r.* FROM recent r JOIN \"Customers\" c ON c.id = r.cid "
		"WHERE r.id NOT IN (SELECT id FROM gone) AND EXISTS (SELECT 1 FROM app.flags)");
	assert_int_equal(a->cls, GH_SQL_WRITE);
	const struct gh_sql_table *t;
	assert_non_null(t = table(a, "app.orders"));
	assert_true(t->read && !t->written);
	assert_non_null(t = table(a, "carts"));
	assert_true(t->written);
	assert_non_null(t = table(a, "sessions"));
	assert_true(t->read && !t->written);
	assert_non_null(t = table(a, "archive"));
	assert_true(t->written && !t->read);
	assert_non_null(t = table(a, "Customers"));
	assert_non_null(table(a, "app.flags"));
	assert_null(table(a, "recent")); /* CTE names are not tables */
	assert_null(table(a, "gone"));
	assert_null(table(a, "customers"));
	assert_int_equal(a->ntables, 6);
	gh_sql_analysis_unref(a);

	/* A CTE hides a table only inside its own WITH: outside it the same name is the table */
	a = analyze("SELECT * FROM (WITH secret AS (SELECT 1) SELECT * FROM secret) a, secret");
	assert_non_null(table(a, "secret"));
	assert_int_equal(a->ntables, 1);
	gh_sql_analysis_unref(a);
	/* a non-recursive CTE does not see itself: inside it the name is the table */
	a = analyze("WITH t AS (SELECT * FROM t) SELECT * FROM t");
	assert_non_null(table(a, "t"));
	gh_sql_analysis_unref(a);
	a = analyze("WITH RECURSIVE r AS (SELECT 1 UNION SELECT * FROM r) SELECT * FROM r, public.r");
	assert_null(table(a, "r"));
	assert_non_null(table(a, "public.r"));
	gh_sql_analysis_unref(a);
	/* the target of a write is always the table, even when a CTE has its name */
	a = analyze("WITH t AS (SELECT 1) DELETE FROM t");
	assert_non_null(t = table(a, "t"));
	assert_true(t->written);
	gh_sql_analysis_unref(a);

	a = analyze("UPDATE s.t SET a = 1; SELECT * FROM s.t; COPY u FROM STDIN; COPY v TO STDOUT");
	assert_non_null(t = table(a, "s.t"));
	assert_true(t->read && t->written);
	assert_non_null(t = table(a, "u"));
	assert_true(t->written);
	assert_non_null(t = table(a, "v"));
	assert_true(t->read && !t->written);
	gh_sql_analysis_unref(a);

	a = analyze("EXPLAIN DELETE FROM t"); /* nothing is deleted */
	assert_non_null(t = table(a, "t"));
	assert_true(t->read && !t->written);
	gh_sql_analysis_unref(a);

	a = analyze("CREATE TABLE n AS SELECT * FROM src; LOCK TABLE l; TRUNCATE x");
	assert_true(table(a, "n")->written);
	assert_true(table(a, "src")->read);
	assert_true(table(a, "l")->written);
	assert_true(table(a, "x")->written);
	gh_sql_analysis_unref(a);

	a = analyze("SELECT * FROM db.sch.tab");
	assert_non_null(table(a, "db.sch.tab"));
	gh_sql_analysis_unref(a);
	CHECKED("tables: read/written through CTEs, USING, subqueries, quoting, schemas; CTE scoping; "
		"write targets; COPY direction; EXPLAIN reads only");
}

static void test_too_many_names(void **state)
{
	(void)state;
	char sql[8192];
	size_t o = (size_t)snprintf(sql, sizeof sql, "SELECT 1 FROM t0");
	for (int i = 1; i <= GH_SQL_MAX_NAMES; i++)
		o += (size_t)snprintf(sql + o, sizeof sql - o, ", t%d", i);
	assert_true(o < sizeof sql);
	expect(sql, GH_SQL_FORBIDDEN, "more than");
	CHECKED("more than GH_SQL_MAX_NAMES tables is refused, never silently cut short");
}

static void test_functions(void **state)
{
	(void)state;
	struct gh_sql_analysis *a =
		analyze("SELECT lower(a), pg_catalog.upper(b), app.score(c), count(*), lower(d) FROM t");
	assert_true(has_function(a, "lower"));
	assert_true(has_function(a, "pg_catalog.upper"));
	assert_true(has_function(a, "app.score"));
	assert_true(has_function(a, "count"));
	assert_int_equal(a->nfunctions, 4);
	gh_sql_analysis_unref(a);
	a = analyze("CALL app.refresh(1)");
	assert_true(has_function(a, "app.refresh"));
	gh_sql_analysis_unref(a);
	a = analyze("SELECT lo_total FROM t");
	assert_int_equal(a->nfunctions, 0);
	gh_sql_analysis_unref(a);
	CHECKED("functions: as written, qualified when written qualified, deduplicated; CALL's function "
		"listed; columns are not functions");
}

static void test_fingerprint(void **state)
{
	(void)state;
	struct gh_sql_analysis *a = analyze("SELECT 1"), *b = analyze("select   1"), *c = analyze("SELECT 2"),
			       *d = analyze("SELECT * FROM t"), *e = analyze("SELECT * FROM u");
	assert_int_equal(strlen(a->fingerprint), 16);
	assert_int_equal(strspn(a->fingerprint, "0123456789abcdef"), 16);
	assert_string_equal(a->fingerprint, b->fingerprint);
	assert_string_equal(a->fingerprint, c->fingerprint); /* constants do not count */
	assert_string_not_equal(a->fingerprint, d->fingerprint);
	assert_string_not_equal(d->fingerprint, e->fingerprint);
	gh_sql_analysis_unref(a);
	gh_sql_analysis_unref(b);
	gh_sql_analysis_unref(c);
	gh_sql_analysis_unref(d);
	gh_sql_analysis_unref(e);
	CHECKED("fingerprint: 16 hex digits; same for SELECT 1 and select   1; differs between statements");
}

static void test_stmts(void **state)
{
	(void)state;
	const char *sql = "SELECT 1;  INSERT INTO t VALUES (';');\n-- note\nSET search_path = x ;";
	struct gh_sql_analysis *a = analyze(sql);
	assert_int_equal(a->nstmts, 3);
	assert_int_equal(a->cls, GH_SQL_WRITE);
	assert_int_equal(a->stmts[0].cls, GH_SQL_READ);
	assert_int_equal(a->stmts[1].cls, GH_SQL_WRITE);
	assert_int_equal(a->stmts[2].cls, GH_SQL_SESSION);
	assert_int_equal(a->stmts[2].session, GH_SESSION_SET);
	assert_int_equal(a->stmts[0].offset, 0);
	assert_int_equal(a->stmts[0].len, strlen("SELECT 1"));
	assert_int_equal(a->stmts[1].offset, 11);
	assert_memory_equal(sql + a->stmts[1].offset, "INSERT INTO t VALUES (';')", a->stmts[1].len);
	assert_int_equal(a->stmts[1].len, strlen("INSERT INTO t VALUES (';')"));
	/* a comment before a statement belongs to its span */
	assert_memory_equal(sql + a->stmts[2].offset, "-- note\nSET search_path = x", a->stmts[2].len);
	for (size_t i = 0; i < a->nstmts; i++)
		assert_true(a->stmts[i].offset + a->stmts[i].len <= strlen(sql));
	gh_sql_analysis_unref(a);

	a = analyze("SELECT 1; DROP TABLE t");
	assert_int_equal(a->nstmts, 2);
	assert_int_equal(a->stmts[0].cls, GH_SQL_READ);
	assert_int_equal(a->stmts[1].cls, GH_SQL_DESTRUCTIVE);
	assert_int_equal(a->stmts[1].offset, 10);
	assert_int_equal(a->stmts[1].len, strlen("DROP TABLE t"));
	gh_sql_analysis_unref(a);

	/* the input need not be NUL-terminated: only len bytes count */
	const char buf[] = "SELECT 1; DROP TABLE t";
	a = analyze_n(buf, strlen("SELECT 1;"));
	assert_int_equal(a->cls, GH_SQL_READ);
	assert_int_equal(a->nstmts, 1);
	gh_sql_analysis_unref(a);
	CHECKED("stmts: one per statement with its class and span (strings with ';', comments, trailing "
		"space); input read only up to len");
}

static void test_nparams(void **state)
{
	(void)state;
	struct gh_sql_analysis *a = analyze("SELECT $1::int, $3 FROM t WHERE a = $2");
	assert_int_equal(a->nparams, 3);
	gh_sql_analysis_unref(a);
	a = analyze("SELECT 1; UPDATE t SET a = $5 WHERE b IN (SELECT $7)");
	assert_int_equal(a->nparams, 7);
	gh_sql_analysis_unref(a);
	a = analyze("SELECT '$1', \"$2\" FROM t");
	assert_int_equal(a->nparams, 0);
	gh_sql_analysis_unref(a);
	CHECKED("nparams: the highest $n anywhere in the text; $n in strings and identifiers does not count");
}

static void test_syntax_errors(void **state)
{
	(void)state;
	struct gh_sql_analysis *a = analyze("SELEC 1");
	assert_int_equal(a->cls, GH_SQL_FORBIDDEN);
	assert_non_null(strstr(a->reason, "syntax error"));
	assert_non_null(strstr(a->reason, "SELEC"));
	assert_non_null(strstr(a->reason, "at position 1"));
	assert_int_equal(a->nstmts, 0);
	gh_sql_analysis_unref(a);
	a = analyze("SELECT * FROM t WHERE");
	assert_non_null(strstr(a->reason, "at position 22"));
	gh_sql_analysis_unref(a);
	a = analyze("SELECT 1; DROP TABLE t; SELEC 2");
	assert_int_equal(a->cls, GH_SQL_FORBIDDEN); /* nothing of a text that does not parse is run */
	assert_non_null(strstr(a->reason, "at position 25"));
	gh_sql_analysis_unref(a);
	expect("SELECT 'unterminated", GH_SQL_FORBIDDEN, "syntax error");
	expect("", GH_SQL_FORBIDDEN, "empty statement");
	expect("   \n\t ", GH_SQL_FORBIDDEN, "empty statement");
	expect("-- only a comment", GH_SQL_FORBIDDEN, "empty statement");
	expect("/* block */ ;;", GH_SQL_FORBIDDEN, "empty statement");
	a = analyze_n("SELECT 1\0; DROP TABLE t", 23);
	assert_int_equal(a->cls, GH_SQL_FORBIDDEN);
	assert_non_null(strstr(a->reason, "NUL"));
	gh_sql_analysis_unref(a);
	CHECKED("syntax errors: forbidden with the parser's message and 1-based position; empty and "
		"comment-only text forbidden; NUL bytes refused");
}

/* Hostile nesting must be refused, not blow the stack or run away with memory. */
static void test_deep_nesting(void **state)
{
	(void)state;
	static char sql[100 * 1024];
	size_t n = 0;
	/* parenthesised: the parser itself gives up */
	n = (size_t)snprintf(sql, sizeof sql, "SELECT ");
	for (int i = 0; i < 20000; i++)
		sql[n++] = '(';
	sql[n++] = '1';
	for (int i = 0; i < 20000; i++)
		sql[n++] = ')';
	sql[n] = '\0';
	expect(sql, GH_SQL_FORBIDDEN, NULL);
	/* a left-deep chain parses into a tree as deep as it is long */
	n = (size_t)snprintf(sql, sizeof sql, "SELECT 1");
	while (n + 3 < sizeof sql)
		n += (size_t)snprintf(sql + n, sizeof sql - n, "+1");
	expect(sql, GH_SQL_FORBIDDEN, "nests too deeply");
	/* nested subqueries */
	n = 0;
	for (int i = 0; i < 2000; i++)
		n += (size_t)snprintf(sql + n, sizeof sql - n, "SELECT (");
	n += (size_t)snprintf(sql + n, sizeof sql - n, "1");
	for (int i = 0; i < 2000; i++)
		sql[n++] = ')';
	sql[n] = '\0';
	expect(sql, GH_SQL_FORBIDDEN, NULL);
	/* ordinary depth is fine */
	n = (size_t)snprintf(sql, sizeof sql, "SELECT 1");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(sql + n, sizeof sql - n, "+1");
	expect(sql, GH_SQL_READ, NULL);
	CHECKED("deep nesting refused (parser limit, tree depth limit), ordinary depth allowed");
}

struct deep_job {
	const char *sql;
	enum gh_sql_class cls;
	int rc;
};

static void *deep_job_run(void *arg)
{
	struct deep_job *j = arg;
	struct gh_sql_analysis *a = NULL;
	j->rc = gh_sql_analyze_pg(j->sql, strlen(j->sql), &a);
	if (a)
		j->cls = a->cls;
	gh_sql_analysis_unref(a);
	return NULL;
}

/* libpg_query recurses per tree level: a deep text analysed on a thread with a small stack
 * must be refused, not crash the thread. */
static void test_deep_nesting_small_stack(void **state)
{
	(void)state;
	static char sql[100 * 1024];
	static const size_t sizes[] = {4 * 1024, 4 * 1024 + 2, sizeof sql};
	for (size_t k = 0; k < N(sizes); k++) {
		size_t n = (size_t)snprintf(sql, sizeof sql, "SELECT 1");
		while (n + 3 < sizes[k])
			n += (size_t)snprintf(sql + n, sizeof sql - n, "+1");
		struct deep_job j = {.sql = sql};
		pthread_attr_t attr;
		pthread_t t;
		assert_int_equal(pthread_attr_init(&attr), 0);
		assert_int_equal(pthread_attr_setstacksize(&attr, 2 * 1024 * 1024), 0);
		assert_int_equal(pthread_create(&t, &attr, deep_job_run, &j), 0);
		pthread_attr_destroy(&attr);
		pthread_join(t, NULL);
		assert_int_equal(j.rc, 0);
		assert_int_equal(j.cls, GH_SQL_FORBIDDEN);
	}
	CHECKED("deep texts (4 KiB and 100 KiB chains) on a thread with a 2 MiB stack: refused, no crash");
}

static void test_ref_counting(void **state)
{
	(void)state;
	struct gh_sql_analysis *a = analyze("SELECT * FROM t; UPDATE u SET a = lower(b)");
	gh_sql_analysis_ref(a);
	assert_int_equal(a->refs, 2);
	gh_sql_analysis_unref(a);
	assert_int_equal(a->refs, 1);
	gh_sql_analysis_unref(a);
	CHECKED("reference counting: ref/unref, freed at zero (LeakSanitizer checks the rest)");
}


/* The columns attributed to table in sql, sorted and comma-separated, or "*" when it is read
 * whole; "-" when the table is not touched. */
static void cols_of(const char *sql, const char *name, char *out, size_t n)
{
	struct gh_sql_analysis *a = analyze(sql);
	const struct gh_sql_table *t = table(a, name);
	out[0] = '\0';
	if (!t) {
		snprintf(out, n, "-");
	} else if (t->all_columns) {
		snprintf(out, n, "*");
	} else {
		/* sorted: attribution order is an implementation detail */
		const char *sorted[64];
		size_t k = t->ncolumns < 64 ? t->ncolumns : 64;
		for (size_t i = 0; i < k; i++) {
			size_t j = i;
			while (j && strcmp(sorted[j - 1], t->columns[i]) > 0) {
				sorted[j] = sorted[j - 1];
				j--;
			}
			sorted[j] = t->columns[i];
		}
		size_t o = 0;
		for (size_t i = 0; i < k && o < n; i++)
			o += (size_t)snprintf(out + o, n - o, "%s%s", i ? "," : "", sorted[i]);
	}
	gh_sql_analysis_unref(a);
}

static void test_columns(void **state)
{
	(void)state;
	static const struct { const char *sql, *table, *want; } cases[] = {
		{"SELECT c.name FROM customers c", "customers", "name"},
		{"SELECT name, o.total FROM customers c JOIN orders o ON o.cid = c.id", "customers", "id,name"},
		{"SELECT name, o.total FROM customers c JOIN orders o ON o.cid = c.id", "orders", "cid,name,total"},
		{"SELECT * FROM customers", "customers", "*"},
		{"TABLE customers", "customers", "*"},
		{"SELECT c.* FROM customers c JOIN orders o ON true", "customers", "*"},
		{"SELECT c.* FROM customers c JOIN orders o ON true", "orders", ""},
		{"SELECT row_to_json(c) FROM customers c", "customers", "c"},   /* whole row: not a column */
		{"SELECT (c).ssn FROM customers c", "customers", "c"},
		{"SELECT a FROM customers AS c(a, b)", "customers", "*"},       /* column aliases rename */
		{"SELECT j.x FROM (customers JOIN orders USING (id)) AS j(x, y)", "customers", "*"},
		{"SELECT id FROM customers NATURAL JOIN orders", "orders", "*"},
		{"SELECT j.name FROM (customers c JOIN orders o USING (id)) AS j", "orders", "id,name"},
		{"WITH w AS (SELECT id FROM customers) SELECT w.id, w.ssn FROM w", "customers", "id"},
		{"SELECT s.x FROM (SELECT name AS x FROM customers) s", "customers", "name"},
		{"SELECT f.x FROM customers, LATERAL generate_series(1, 2) AS f(x)", "customers", ""},
		{"SELECT address.city FROM customers", "customers", "address"},  /* a composite column */
		{"SELECT public.customers.name FROM public.customers", "public.customers", "name"},
		{"SELECT customers.name FROM public.customers", "public.customers", "name"},
		{"SELECT x.customers.name FROM public.customers", "public.customers", "customers,x"},
		{"SELECT c.addr.city FROM customers c", "customers", "addr,c"},
		{"SELECT 1 FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.cid = c.id)", "customers", "id"},
		{"SELECT 1 FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.cid = c.id)", "orders", "cid"},
		{"SELECT count(*) FROM customers", "customers", ""},
		{"SELECT \"Name\" FROM \"Customers\"", "Customers", "Name"},
		{"SELECT c.name FROM customers c ORDER BY c.tier", "customers", "name,tier"},
		{"DO $$ BEGIN PERFORM ssn FROM customers; END $$", "customers", "ssn"},
		{"EXPLAIN SELECT c.ssn FROM customers c", "customers", "ssn"},
		{"INSERT INTO orders (cid) SELECT c.id FROM customers c", "customers", "id"},
	};
	char got[512];
	for (size_t i = 0; i < N(cases); i++) {
		cols_of(cases[i].sql, cases[i].table, got, sizeof got);
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("'%s': %s read by '%s', want '%s'", cases[i].sql, cases[i].table, got, cases[i].want);
	}
	static const struct { const char *sql; bool sets; } sp[] = {
		{"SET LOCAL search_path = hr", true},
		{"SET search_path TO hr, public", true},
		{"SET SCHEMA 'hr'", true},
		{"RESET search_path", true},
		{"SELECT set_config('search_path', 'hr', true)", true},
		{"SELECT pg_catalog.set_config('Search_Path', 'hr', true)", true},
		{"SET LOCAL work_mem = '1MB'", false},
		{"SELECT current_setting('search_path')", false},
	};
	for (size_t i = 0; i < N(sp); i++) {
		struct gh_sql_analysis *a = analyze(sp[i].sql);
		bool sets = a->sets_search_path;
		gh_sql_analysis_unref(a);
		if (sets != sp[i].sets)
			fail_msg("'%s': sets_search_path %d, want %d", sp[i].sql, sets, sp[i].sets);
	}
	CHECKED("columns attributed to the relations a qualifier may denote, unqualified names to all, *, t.*, "
		"whole rows, NATURAL JOIN and column aliases read a table whole; CTE and subquery columns are not "
		"tables'; code's columns count; search_path changes flagged");
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_code_bodies),
	cmocka_unit_test(test_class_names),
	cmocka_unit_test(test_reads),
	cmocka_unit_test(test_writes),
	cmocka_unit_test(test_ddl),
	cmocka_unit_test(test_own_only),
	cmocka_unit_test(test_session),
	cmocka_unit_test(test_destructive),
	cmocka_unit_test(test_forbidden),
	cmocka_unit_test(test_forbidden_functions),
	cmocka_unit_test(test_disguises),
	cmocka_unit_test(test_lookalikes),
	cmocka_unit_test(test_tables),
	cmocka_unit_test(test_too_many_names),
	cmocka_unit_test(test_functions),
	cmocka_unit_test(test_fingerprint),
	cmocka_unit_test(test_stmts),
	cmocka_unit_test(test_nparams),
	cmocka_unit_test(test_columns),
	cmocka_unit_test(test_syntax_errors),
	cmocka_unit_test(test_deep_nesting),
	cmocka_unit_test(test_deep_nesting_small_stack),
	cmocka_unit_test(test_ref_counting),
};

GH_UNIT_MAIN("test_pg_analyze", tests)
