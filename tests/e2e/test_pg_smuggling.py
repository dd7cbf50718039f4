"""PostgreSQL smuggling: statements that try to get something destructive, forbidden or
identity-changing past the PostgreSQL classifier (libpg_query), each sent by bob (edit on
crm/staging: ad hoc, no approval) over BOTH the HTTP API and psql through the wire front. Every
refused statement is followed by a look at the database as the superuser: row counts and content
of customers, invoices and notes, every relation, column, constraint, function, schema, role,
database, role setting, large object, postgresql.auto.conf and the notes sequence unchanged, and
no file appeared where COPY/lo_export would have written one. Then look-alikes that must stay
allowed and return the right rows, hidden writes in production (pending, not run), a function
that writes called from a read, session state that must not leak through the pool, COPY over
HTTP, and an owner's DO block hiding a DROP."""
import hashlib
import http.client
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import run_suite
import pgfix

DESTRUCTIVE = "destructive-ddl"
FORBIDDEN = "forbidden-statement"
NEEDS_OWN = "needs-own"

MARK = "/tmp/gh-pgsmug-%d" % os.getpid()  # prefix of files a smuggled COPY/lo_export would create
MARKERS = [MARK + s for s in ("-copy-out", "-program", "-lo-out", "-program2")]

# Objects owned by `app` (so a DROP that got through would succeed), created before the server starts.
EXTRA_AS_APP = """
CREATE VIEW gold_customers AS SELECT id, name FROM customers WHERE tier = 'gold';
CREATE INDEX idx_customers_tier ON customers (tier);
CREATE SCHEMA reports;
CREATE TABLE reports.summary (n int);
INSERT INTO reports.summary VALUES (1);
CREATE FUNCTION harmless() RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE PROCEDURE wipe() LANGUAGE sql AS $$ DELETE FROM invoices $$;
"""
# Functions that write, created by the superuser (brief: "a function that writes called from a read").
EXTRA_AS_SUPERUSER = """
CREATE ROLE app_reader NOLOGIN;
CREATE FUNCTION sneaky() RETURNS int LANGUAGE plpgsql AS $$ BEGIN DELETE FROM notes; RETURN 1; END $$;
CREATE FUNCTION sneaky_definer() RETURNS int LANGUAGE plpgsql SECURITY DEFINER
  AS $$ BEGIN DELETE FROM notes; DELETE FROM invoices; RETURN 1; END $$;
"""


def snapshot(f):
    """Everything a smuggled statement could change, read as the superuser (RLS bypassed)."""
    s = {}
    c = f.pg.connect_admin(db="crm_staging")
    try:
        for t in ("customers", "invoices", "notes"):
            row = c.execute("SELECT count(*), md5(coalesce(string_agg(x::text, ',' ORDER BY x.id), '')) "
                            "FROM %s x" % t).fetchone()
            s["rows:" + t] = row
        q = {
            "relations": "SELECT n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity "
                         "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "WHERE n.nspname IN ('public', 'reports') ORDER BY 1, 2",
            "columns": "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema IN ('public', 'reports') ORDER BY 1, 2, 3",
            "constraints": "SELECT conrelid::regclass::text, conname FROM pg_constraint "
                           "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
            "policies": "SELECT tablename, policyname, qual FROM pg_policies ORDER BY 1, 2",
            "functions": "SELECT proname, prokind, md5(prosrc) FROM pg_proc "
                         "WHERE pronamespace = 'public'::regnamespace ORDER BY 1",
            "schemas": "SELECT nspname, nspowner::regrole::text FROM pg_namespace "
                       "WHERE nspname NOT LIKE 'pg\\_temp\\_%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%' ORDER BY 1",
            "largeobjects": "SELECT count(*) FROM pg_largeobject_metadata",
            "sequence": "SELECT last_value, is_called FROM notes_id_seq",
            "extensions": "SELECT extname FROM pg_extension ORDER BY 1",
            "privileges": "SELECT relname, relacl::text FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                          "ORDER BY 1",
        }
        for k, sql in q.items():
            s[k] = c.execute(sql).fetchall()
    finally:
        c.close()
    c = f.pg.connect_admin(db="postgres")
    try:
        s["roles"] = c.execute("SELECT rolname, rolsuper, rolcanlogin, rolcreaterole, rolcreatedb, rolpassword "
                               "FROM pg_authid ORDER BY 1").fetchall()
        s["databases"] = c.execute("SELECT datname, datdba::regrole::text, datallowconn FROM pg_database "
                                   "ORDER BY 1").fetchall()
        s["role_settings"] = c.execute("SELECT setdatabase, setrole, setconfig::text FROM pg_db_role_setting "
                                       "ORDER BY 1, 2").fetchall()
        s["auto_conf"] = hashlib.sha256(c.execute("SELECT pg_read_file('postgresql.auto.conf')")
                                        .fetchone()[0].encode()).hexdigest()
    finally:
        c.close()
    c = f.pg.connect_admin(db="crm_prod")
    try:
        s["prod_rows"] = [c.execute("SELECT count(*) FROM %s" % t).fetchone()[0]
                          for t in ("customers", "invoices", "notes")]
    finally:
        c.close()
    s["marker_files"] = [p for p in MARKERS if os.path.exists(p)]
    return s


def diff(a, b):
    return "; ".join("%s: %r -> %r" % (k, a[k], b.get(k)) for k in a if a[k] != b.get(k))


def cases():
    """(label, sql, expectation). Expectations:
    ("deny", {rules}): HTTP 403 with one of the rules; wire SQLSTATE 42501 naming it; nothing ran.
    ("parse",): HTTP 403 forbidden-statement with the parser's message; wire SQLSTATE 42601.
    ("allow", http_rows or None, psql_stdout or callable): HTTP 200 with those rows; psql prints that.
    """
    C = []

    def deny(label, sql, rules):
        C.append((label, sql, ("deny", {rules} if isinstance(rules, str) else set(rules))))

    # DROP of every object kind
    deny("DROP TABLE", "DROP TABLE customers", DESTRUCTIVE)
    deny("drop table (lower case)", "drop table notes", DESTRUCTIVE)
    deny("DrOp TaBlE (mixed case)", "DrOp TaBlE InVoIcEs", DESTRUCTIVE)
    deny("DROP TABLE IF EXISTS", "DROP TABLE IF EXISTS customers", DESTRUCTIVE)
    deny("DROP TABLE public.customers", "DROP TABLE public.customers", DESTRUCTIVE)
    deny('DROP TABLE "public"."customers"', 'DROP TABLE "public"."customers"', DESTRUCTIVE)
    deny("DROP TABLE db.schema.table", "DROP TABLE crm_staging.public.customers", DESTRUCTIVE)
    deny("DROP TABLE ... CASCADE (several)", "DROP TABLE customers, invoices CASCADE", DESTRUCTIVE)
    deny("DROP TABLE with unicode-escaped name", 'DROP TABLE U&"\\0063ustomers"', DESTRUCTIVE)
    deny("DROP VIEW", "DROP VIEW gold_customers", DESTRUCTIVE)
    deny("DROP SCHEMA public CASCADE", "DROP SCHEMA public CASCADE", DESTRUCTIVE)
    deny("DROP SCHEMA reports CASCADE", "DROP SCHEMA reports CASCADE", DESTRUCTIVE)
    deny("DROP INDEX", "DROP INDEX idx_customers_tier", DESTRUCTIVE)
    deny("DROP INDEX CONCURRENTLY", "DROP INDEX CONCURRENTLY idx_customers_tier", DESTRUCTIVE)
    deny("DROP FUNCTION", "DROP FUNCTION harmless()", DESTRUCTIVE)
    deny("DROP PROCEDURE", "DROP PROCEDURE wipe()", DESTRUCTIVE)
    deny("DROP ROLE", "DROP ROLE app_reader", DESTRUCTIVE)
    deny("DROP USER app", "DROP USER app", DESTRUCTIVE)
    deny("DROP DATABASE", "DROP DATABASE crm_prod", DESTRUCTIVE)
    deny("DROP DATABASE IF EXISTS ... WITH (FORCE)", "DROP DATABASE IF EXISTS crm_prod WITH (FORCE)", DESTRUCTIVE)
    deny("DROP SEQUENCE", "DROP SEQUENCE notes_id_seq CASCADE", DESTRUCTIVE)
    deny("DROP POLICY (removes RLS)", "DROP POLICY notes_owner ON notes", DESTRUCTIVE)
    deny("DROP OWNED BY", "DROP OWNED BY app", DESTRUCTIVE)
    deny("DROP EXTENSION", "DROP EXTENSION plpgsql CASCADE", DESTRUCTIVE)
    # TRUNCATE
    deny("TRUNCATE", "TRUNCATE customers", DESTRUCTIVE)
    deny("TRUNCATE TABLE ... CASCADE", "TRUNCATE TABLE invoices CASCADE", DESTRUCTIVE)
    deny("TRUNCATE ONLY", "TRUNCATE ONLY notes", DESTRUCTIVE)
    deny("TRUNCATE qualified, two tables", "TRUNCATE public.invoices, public.notes", DESTRUCTIVE)
    deny("TRUNCATE quoted RESTART IDENTITY", 'TRUNCATE "notes" RESTART IDENTITY CASCADE', DESTRUCTIVE)
    deny("tRuNcAtE (mixed case)", "tRuNcAtE tAbLe NoTeS", DESTRUCTIVE)
    # ALTER SYSTEM / ROLE / DATABASE / TABLE DROP COLUMN
    deny("ALTER SYSTEM SET", "ALTER SYSTEM SET fsync = on", DESTRUCTIVE)
    deny("ALTER SYSTEM RESET ALL", "ALTER SYSTEM RESET ALL", DESTRUCTIVE)
    deny("ALTER ROLE ... PASSWORD", "ALTER ROLE app PASSWORD 'owned'", DESTRUCTIVE)
    deny("ALTER ROLE ... SUPERUSER", "ALTER ROLE app SUPERUSER", DESTRUCTIVE)
    deny("ALTER USER ... SET", "ALTER USER app SET search_path = evil", DESTRUCTIVE)
    deny("ALTER ROLE ... RENAME", "ALTER ROLE app_reader RENAME TO app_reader2", DESTRUCTIVE)
    deny("ALTER DATABASE ... SET", "ALTER DATABASE crm_staging SET default_transaction_read_only = on", DESTRUCTIVE)
    deny("ALTER DATABASE ... RENAME", "ALTER DATABASE crm_prod RENAME TO crm_gone", DESTRUCTIVE)
    deny("ALTER DATABASE ... OWNER", "ALTER DATABASE crm_staging OWNER TO postgres", DESTRUCTIVE)
    deny("ALTER TABLE DROP COLUMN", "ALTER TABLE customers DROP COLUMN tier", DESTRUCTIVE)
    deny("ALTER TABLE DROP (no COLUMN keyword)", "ALTER TABLE notes DROP body", DESTRUCTIVE)
    deny("ALTER TABLE IF EXISTS ... DROP COLUMN IF EXISTS", 
         "ALTER TABLE IF EXISTS public.invoices DROP COLUMN IF EXISTS status CASCADE", DESTRUCTIVE)
    deny("ALTER TABLE ... ADD, then DROP COLUMN", "ALTER TABLE customers ADD COLUMN x int, DROP COLUMN name",
         DESTRUCTIVE)
    # several statements in one text: refused whole, the first part not run
    deny("SELECT 1; DROP TABLE", "SELECT 1; DROP TABLE customers", {DESTRUCTIVE, FORBIDDEN})
    deny("SELECT 1;DROP TABLE; (no spaces)", "SELECT 1;DROP TABLE customers;", {DESTRUCTIVE, FORBIDDEN})
    deny("UPDATE; DROP (the UPDATE must not run)",
         "UPDATE customers SET tier = 'smuggled' WHERE id = 1; DROP TABLE invoices", {DESTRUCTIVE, FORBIDDEN})
    deny("INSERT; TRUNCATE (the INSERT must not run)",
         "INSERT INTO notes (body) VALUES ('smuggled'); TRUNCATE customers", {DESTRUCTIVE, FORBIDDEN})
    deny("string holding ';' then DROP", "SELECT ';'; DROP TABLE customers", {DESTRUCTIVE, FORBIDDEN})
    deny("dollar-quoted string then DROP", "SELECT $q$ ; $q$; DROP TABLE customers", {DESTRUCTIVE, FORBIDDEN})
    # comments, case, quoting, qualification
    deny("block comment before DROP", "/* cleanup */ DROP TABLE customers", DESTRUCTIVE)
    deny("empty comments as separators", "DROP/**/TABLE/**/customers", DESTRUCTIVE)
    deny("nested block comment", "/* a /* b */ c */ DROP TABLE customers", DESTRUCTIVE)
    deny("line comment before DROP", "-- harmless\nDROP TABLE customers", DESTRUCTIVE)
    deny("line comment inside DROP", "DROP -- x\nTABLE customers -- bye", DESTRUCTIVE)
    deny("tabs and newlines", "\n\t DROP\tTABLE\ncustomers \n", DESTRUCTIVE)
    # COPY with programs and server files
    deny("COPY TO PROGRAM", "COPY customers TO PROGRAM 'touch %s-program'" % MARK, FORBIDDEN)
    deny("COPY (query) TO PROGRAM", "copy (select * from customers) to program 'cat > %s-program2'" % MARK,
         FORBIDDEN)
    deny("COPY FROM PROGRAM", "COPY customers FROM PROGRAM 'echo 9,x,y'", FORBIDDEN)
    deny("COPY TO server file", "COPY customers TO '%s-copy-out'" % MARK, FORBIDDEN)
    deny("COPY FROM server file", "COPY notes (body) FROM '/etc/passwd'", FORBIDDEN)
    # code: DO, CALL, CREATE FUNCTION/PROCEDURE (bob has edit, not own)
    # (DO and CALL: refused for lack of `own`, or as forbidden when the code cannot be analysed)
    deny("DO block hiding DROP", "DO $$ BEGIN EXECUTE 'DROP TABLE customers'; END $$", {NEEDS_OWN, FORBIDDEN})
    deny("DO block with a static DROP", "DO $$ BEGIN DROP TABLE customers; END $$",
         {NEEDS_OWN, FORBIDDEN, DESTRUCTIVE})
    deny("DO LANGUAGE plpgsql hiding DELETE", "DO LANGUAGE plpgsql 'BEGIN DELETE FROM invoices; END'",
         {NEEDS_OWN, FORBIDDEN})
    deny("CALL a procedure that deletes", "CALL wipe()", {NEEDS_OWN, FORBIDDEN})
    deny("CREATE FUNCTION", "CREATE FUNCTION evil() RETURNS void LANGUAGE sql AS $$ DELETE FROM invoices $$",
         NEEDS_OWN)
    deny("CREATE OR REPLACE FUNCTION (existing)",
         "CREATE OR REPLACE FUNCTION harmless() RETURNS int LANGUAGE sql AS 'SELECT 2'", NEEDS_OWN)
    deny("CREATE PROCEDURE", "CREATE PROCEDURE evil2() LANGUAGE sql AS $$ DELETE FROM invoices $$", NEEDS_OWN)
    deny("LOAD a library", "LOAD 'plpgsql'", FORBIDDEN)
    deny("LOAD a path", "LOAD '/tmp/evil.so'", FORBIDDEN)
    # identity and session
    deny("SET ROLE", "SET ROLE postgres", FORBIDDEN)
    deny("SET ROLE (another role)", "SET ROLE app_reader", FORBIDDEN)
    deny("SET SESSION AUTHORIZATION", "SET SESSION AUTHORIZATION postgres", FORBIDDEN)
    deny("RESET ROLE", "RESET ROLE", FORBIDDEN)
    deny("RESET SESSION AUTHORIZATION", "RESET SESSION AUTHORIZATION", FORBIDDEN)
    deny('SET "gatehouse"."user" (quoted)', 'SET "gatehouse"."user" = \'alice\'', FORBIDDEN)
    deny('SET LOCAL "gatehouse"."user"', 'SET LOCAL "gatehouse"."user" TO \'alice\'', FORBIDDEN)
    deny('RESET "gatehouse"."user"', 'RESET "gatehouse"."user"', FORBIDDEN)
    deny("set_config('gatehouse.user')", "SELECT set_config('gatehouse.user','alice',false)", FORBIDDEN)
    deny("pg_catalog.set_config('gatehouse.user', local)",
         "SELECT pg_catalog.set_config('gatehouse.user', 'alice', true)", FORBIDDEN)
    deny("set_config with the name in another case, then read notes",
         "SELECT set_config('Gatehouse.User', 'alice', true) AS s, (SELECT string_agg(body, ',') FROM notes) AS b",
         FORBIDDEN)
    deny("set_config with a computed name, then read notes",
         "SELECT set_config('gatehouse' || '.user', 'alice', true) AS s, "
         "(SELECT string_agg(body, ',') FROM notes) AS b", FORBIDDEN)
    deny("set_config with the name from a column",
         "SELECT set_config(x, 'alice', true) FROM (VALUES ('gatehouse.user')) v(x)", FORBIDDEN)
    deny("set_config('role')", "SELECT set_config('role', 'postgres', false)", FORBIDDEN)
    # asynchronous notification
    deny("LISTEN", "LISTEN ch", FORBIDDEN)
    deny("NOTIFY", "NOTIFY ch, 'x'", FORBIDDEN)
    deny("pg_notify()", "SELECT pg_notify('ch', 'x')", FORBIDDEN)
    # functions that reach files, other servers, other sessions, server state, or run SQL text
    deny("lo_import", "SELECT lo_import('/etc/passwd')", FORBIDDEN)
    deny("lo_export", "SELECT lo_export(1, '%s-lo-out')" % MARK, FORBIDDEN)
    deny("pg_read_file", "SELECT pg_read_file('/etc/passwd')", FORBIDDEN)
    deny("pg_catalog.pg_read_file", "SELECT pg_catalog.pg_read_file('postgresql.conf')", FORBIDDEN)
    deny("PG_READ_FILE upper case", "SELECT PG_READ_FILE('postgresql.conf')", FORBIDDEN)
    deny('"pg_catalog"."pg_read_binary_file" quoted', 'SELECT "pg_catalog"."pg_read_binary_file"(\'PG_VERSION\')',
         FORBIDDEN)
    deny("pg_ls_dir", "SELECT pg_ls_dir('.')", FORBIDDEN)
    deny('"pg_catalog"."pg_ls_dir" quoted', 'SELECT * FROM "pg_catalog"."pg_ls_dir"(\'.\')', FORBIDDEN)
    deny("pg_stat_file", "SELECT pg_stat_file('postgresql.conf')", FORBIDDEN)
    deny("dblink", "SELECT * FROM dblink('dbname=crm_prod', 'DELETE FROM notes') AS t(a text)", FORBIDDEN)
    deny("pg_terminate_backend", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity", FORBIDDEN)
    deny("pg_catalog.pg_terminate_backend upper case", "SELECT PG_CATALOG.PG_TERMINATE_BACKEND(1)", FORBIDDEN)
    deny("pg_cancel_backend", "SELECT pg_cancel_backend(pid) FROM pg_stat_activity", FORBIDDEN)
    deny("pg_reload_conf", "SELECT pg_reload_conf()", FORBIDDEN)
    deny("query_to_xml running a DELETE", "SELECT query_to_xml('DELETE FROM notes RETURNING 1', true, true, '')",
         FORBIDDEN)
    deny("function in a WHERE clause", "SELECT id FROM customers WHERE pg_read_file('/etc/passwd') IS NOT NULL",
         FORBIDDEN)
    deny("function inside a CTE", "WITH x AS (SELECT pg_ls_dir('/') AS f) SELECT count(*) FROM x", FORBIDDEN)
    # SQL-level prepared statements
    deny("PREPARE", "PREPARE p AS DELETE FROM notes", FORBIDDEN)
    deny("EXECUTE", "EXECUTE p", FORBIDDEN)
    deny("DEALLOCATE", "DEALLOCATE ALL", FORBIDDEN)
    # statements that do not parse
    C.append(("does not parse: SELEC 1", "SELEC 1", ("parse",)))
    C.append(("does not parse: DROP TABLE (no name)", "DROP TABLE", ("parse",)))
    C.append(("does not parse: unterminated string", "SELECT 'abc", ("parse",)))
    C.append(("SET gatehouse.user = 'alice' (USER is reserved: does not parse)",
              "SET gatehouse.user = 'alice'", ("parse",)))

    # look-alikes that must stay allowed and work
    def allow(label, sql, rows, out):
        C.append((label, sql, ("allow", rows, out)))

    allow('a column aliased "drop"', 'SELECT 1 AS "drop"', [[1]], "1")
    allow('a table aliased "drop"', 'SELECT "drop".name FROM customers AS "drop" WHERE "drop".id = 1',
          [["Nordlicht GmbH"]], "Nordlicht GmbH")
    allow("a column aliased truncate", "SELECT count(*) AS truncate FROM customers", [[3]], "3")
    allow("string literal 'DROP TABLE customers'", "SELECT 'DROP TABLE customers' AS s",
          [["DROP TABLE customers"]], "DROP TABLE customers")
    allow("string literal with ';' and DROP", "SELECT 'x; DROP TABLE customers' AS s",
          [["x; DROP TABLE customers"]], "x; DROP TABLE customers")
    allow("dollar-quoted DROP", "SELECT $$DROP TABLE customers$$ AS s", [["DROP TABLE customers"]],
          "DROP TABLE customers")
    allow("DROP inside a block comment", "/* DROP TABLE customers */ SELECT count(*) FROM invoices", [[3]], "3")
    allow("DROP inside a trailing line comment", "SELECT count(*) FROM invoices -- DROP TABLE invoices", [[3]], "3")
    allow("current_setting('gatehouse.user') is bob", "SELECT current_setting('gatehouse.user')", [["bob"]], "bob")
    allow("pg_catalog.current_setting('gatehouse.user') is bob",
          "SELECT pg_catalog.current_setting('gatehouse.user')", [["bob"]], "bob")
    allow("set_config('application_name', local)", "SELECT set_config('application_name','x',true)", [["x"]], "x")
    allow("a CTE that only reads", "WITH t AS (SELECT id FROM customers WHERE tier = 'gold') SELECT count(*) FROM t",
          [[2]], "2")
    allow("EXPLAIN SELECT", "EXPLAIN SELECT * FROM customers", None, lambda s: "Seq Scan on customers" in s)
    allow("bob reads notes: only his own row (RLS)", "SELECT owner, body FROM notes", [["bob", "bob's note"]],
          "bob|bob's note")
    return C


def http_outcome(f, token, sql, env="staging"):
    st, doc, raw = f.gh.query(token, sql, environment=env)
    return st, doc or {}, raw


def check_case(r, f, bob, label, sql, exp, before):
    kind = exp[0]
    # ---- HTTP
    st, doc, raw = http_outcome(f, bob, sql)
    err = doc.get("error") or {}
    if kind == "deny":
        r.check(st == 403 and err.get("rule") in exp[1] and "rows" not in doc,
                "http: %s refused (%s)" % (label, "/".join(sorted(exp[1]))), raw[:400])
    elif kind == "parse":
        r.check(st == 403 and err.get("rule") == FORBIDDEN and "syntax error" in err.get("message", ""),
                "http: %s refused with the parser's message" % label, raw[:400])
    else:
        ok = st == 200 and (exp[1] is None or doc.get("rows") == exp[1])
        if exp[1] is None and callable(exp[2]):
            ok = ok and exp[2]("\n".join(str(x) for row in doc.get("rows", []) for x in row))
        r.check(ok, "http: %s allowed and right" % label, raw[:400])
    if kind != "allow":
        after = snapshot(f)
        r.check(after == before, "http: after %s everything is still there" % label, diff(before, after))
    # ---- wire (psql)
    p = f.psql("bob", bob, sql, extra=("-v", "VERBOSITY=verbose"))
    if kind == "deny":
        named = [x for x in exp[1] if "(rule %s)" % x in p.stderr]
        r.check(p.returncode != 0 and "ERROR:  42501:" in p.stderr and named and p.stdout.strip() == "",
                "wire: %s refused with 42501 (%s)" % (label, "/".join(sorted(exp[1]))),
                "rc=%d out=%r err=%r" % (p.returncode, p.stdout[:200], p.stderr[:400]))
    elif kind == "parse":
        r.check(p.returncode != 0 and "ERROR:  42601:" in p.stderr and "syntax error" in p.stderr,
                "wire: %s refused with 42601" % label,
                "rc=%d out=%r err=%r" % (p.returncode, p.stdout[:200], p.stderr[:400]))
    else:
        out = p.stdout.strip()
        ok = p.returncode == 0 and (exp[2](out) if callable(exp[2]) else out == exp[2])
        r.check(ok, "wire: %s allowed and right" % label,
                "rc=%d out=%r err=%r" % (p.returncode, p.stdout[:300], p.stderr[:400]))
    if kind != "allow":
        after = snapshot(f)
        r.check(after == before, "wire: after %s everything is still there" % label, diff(before, after))


def body(r):
    for p in MARKERS:
        if os.path.exists(p):
            os.unlink(p)
    t0 = time.time()
    with pgfix.PgGatehouse() as f:
        f.pg.sql(EXTRA_AS_APP, db="crm_staging", user="app")
        f.pg.sql(EXTRA_AS_SUPERUSER, db="crm_staging")
        f.start()
        bob, _ = f.gh.token("bob", "staging")
        bobp, _ = f.gh.token("bob", "production")
        alice, _ = f.gh.token("alice", "staging", app="invoices")
        before = snapshot(f)
        r.check(before["rows:customers"][0] == 3 and before["rows:notes"][0] == 2 and before["functions"],
                "fixture: 3 customers, 2 notes, extra objects in place", before)

        C = cases()
        nstat = len({sql for _, sql, _ in C})
        r.check(nstat >= 80, "%d distinct statements, each over HTTP and over the wire" % nstat, nstat)
        for label, sql, exp in C:
            check_case(r, f, bob, label, sql, exp, before)

        # every refusal is in the audit trail, from both fronts
        lines = f.gh.audit_lines()
        for kind, what in (("deny", "refused statement"), ("parse", "statement that does not parse")):
            missing = []
            for label, sql, exp in C:
                if exp[0] != kind:
                    continue
                recs = [l for l in lines if l.get("statement") == sql and l.get("user") == "bob"
                        and l.get("decision") == "deny"]
                wire = [l for l in recs if str(l.get("client", "")).startswith("pg:")]
                if len(recs) - len(wire) < 1 or len(wire) < 1:
                    missing.append((label, "http records: %d" % (len(recs) - len(wire)), "wire records: %d" % len(wire)))
            r.check(not missing, "every %s has a deny record from HTTP and one from the wire" % what, missing[:10])

        # ---- a data-modifying CTE is a write, not a read
        sql = "WITH d AS (DELETE FROM customers WHERE id = -1 RETURNING *) SELECT count(*) FROM d"
        st, doc, raw = http_outcome(f, bob, sql)
        r.check(st == 200 and doc.get("rows") == [[0]], "http: a DELETE hidden in a CTE runs for bob in staging (a write he may do)", raw[:300])
        recs = [l for l in f.gh.audit_lines() if l.get("statement") == sql and l.get("event") == "query"]
        r.check(recs and all(l.get("class") == "write" for l in recs),
                "the audit trail classifies the CTE hiding a DELETE as a write", [l.get("class") for l in recs])

        # ---- hidden writes in production wait for a reviewer and do not run
        prod_before = f.direct("SELECT (SELECT count(*) FROM notes), (SELECT count(*) FROM invoices), "
                               "(SELECT md5(string_agg(i::text, ',' ORDER BY id)) FROM invoices i), "
                               "to_regclass('stolen') IS NULL", db="crm_prod")
        hidden = [
            ("DELETE hidden in a CTE", "WITH d AS (DELETE FROM notes RETURNING *) SELECT count(*) FROM d"),
            ("UPDATE hidden in a CTE", "WITH u AS (UPDATE invoices SET status = 'void' RETURNING id) SELECT * FROM u"),
            ("EXPLAIN ANALYZE DELETE", "EXPLAIN ANALYZE DELETE FROM invoices"),
            ("SELECT ... INTO (creates a table)", "SELECT * INTO stolen FROM customers"),
            ("SELECT ... FOR UPDATE (locks rows)", "SELECT * FROM invoices FOR UPDATE"),
        ]
        for label, sql in hidden:
            st, doc, raw = http_outcome(f, bobp, sql, env="production")
            aid = ((doc.get("approval") or {}).get("id") or "")
            r.check(st == 202 and aid.startswith("apr_"), "http production: %s is pending, not run as a read" % label,
                    raw[:300])
            p = f.psql("bob", bobp, sql, env="production", extra=("-v", "VERBOSITY=verbose"))
            r.check(p.returncode != 0 and "ERROR:  5GA01:" in p.stderr and "approval apr_" in p.stderr,
                    "wire production: %s is pending (5GA01)" % label, p.stderr[:300])
        prod_after = f.direct("SELECT (SELECT count(*) FROM notes), (SELECT count(*) FROM invoices), "
                              "(SELECT md5(string_agg(i::text, ',' ORDER BY id)) FROM invoices i), "
                              "to_regclass('stolen') IS NULL", db="crm_prod")
        r.check(prod_before == prod_after, "production data unchanged by the pending hidden writes",
                (prod_before, prod_after))

        # ---- a function that writes, called from a read, cannot write
        for fn in ("sneaky()", "public.sneaky()", "sneaky_definer()"):
            for sql in ("SELECT %s" % fn, "SELECT id FROM customers WHERE %s > 0" % fn):
                st, doc, raw = http_outcome(f, bob, sql)
                r.check(st >= 400 and isinstance(doc.get("error"), dict),
                        "http: %s fails (a read cannot write)" % sql, raw[:300])
                p = f.psql("bob", bob, sql, extra=("-v", "VERBOSITY=verbose"))
                r.check(p.returncode != 0 and "ERROR:" in p.stderr, "wire: %s fails" % sql, p.stdout + p.stderr)
        sql = "SELECT set_config('transaction_read_only', 'off', true), sneaky()"
        st, doc, raw = http_outcome(f, bob, sql)
        r.check(st >= 400, "http: switching the read's transaction to read-write first does not help", raw[:300])
        after = snapshot(f)
        r.check(after["rows:notes"] == before["rows:notes"] and after["rows:invoices"] == before["rows:invoices"],
                "notes and invoices keep their rows after the writing functions", diff(before, after))

        # ---- session state must not leak from bob's request to alice's through the pool
        fake = ("CREATE TEMP TABLE invoices AS SELECT 1 AS id, 1 AS customer_id, 99::bigint AS amount_cents, "
                "'SMUGGLED'::text AS status")
        st, doc, raw = http_outcome(f, bob, fake)
        seen = []
        for _ in range(6):
            st2, doc2, raw2 = http_outcome(f, alice, "SELECT status FROM invoices ORDER BY id")
            seen.append(doc2.get("rows"))
        r.check(all(s == [["paid"], ["sent"], ["overdue"]] for s in seen),
                "http: bob's CREATE TEMP TABLE invoices (answered %d) does not shadow the table for alice's "
                "later reads" % st, seen)
        p = f.psql("bob", bob, "SELECT * INTO TEMP TABLE customers FROM (VALUES (1, 'SMUGGLED', 'x')) v(id, name, tier)")
        seen = []
        for _ in range(4):
            st2, doc2, raw2 = http_outcome(f, alice, "SELECT name FROM customers WHERE id = 1")
            seen.append(doc2.get("rows"))
            q = f.psql("alice", alice, "SELECT name FROM customers WHERE id = 1")
            seen.append(q.stdout.strip())
        r.check(all(s in ([["Nordlicht GmbH"]], "Nordlicht GmbH") for s in seen),
                "wire: bob's SELECT INTO TEMP customers (rc %d) does not shadow the table for alice" % p.returncode,
                seen)

        # session-level advisory locks outlive the request on a pooled backend; transaction-level ones do not
        st, doc, raw = http_outcome(f, bob, "SELECT pg_advisory_xact_lock(4243)")
        r.check(st == 200, "http: pg_advisory_xact_lock (released at the end of the transaction) is allowed", raw[:200])
        st, doc, raw = http_outcome(f, bob, "SELECT pg_advisory_lock(4242)")
        p = f.psql("bob", bob, "SELECT pg_advisory_lock(4244)")
        time.sleep(0.3)
        held = f.direct("SELECT objid::int, pid FROM pg_locks WHERE locktype = 'advisory' ORDER BY 1")
        r.check(not held, "no advisory lock stays held on a pooled backend after the request ends "
                "(pg_advisory_lock over HTTP answered %d, over the wire rc %d)" % (st, p.returncode), held)

        r.check(f.gh.verify().returncode == 0, "gatehouse audit verify: ok", f.gh.verify().stdout + f.gh.verify().stderr)

        # ---- COPY with STDIN/STDOUT over HTTP must be answered (refused or run), not hang
        answers = {}

        def copy(sql):
            c = http.client.HTTPConnection("127.0.0.1", f.gh.port, timeout=10)
            t = time.time()
            try:
                st, doc, raw = f.gh.query(bob, sql, conn=c)
                answers[sql] = (st, raw[:200], round(time.time() - t, 1))
            except Exception as e:  # a timeout is the failure being checked
                answers[sql] = (None, repr(e), round(time.time() - t, 1))
            finally:
                c.close()
        copies = ["COPY customers TO STDOUT", "COPY notes (body) FROM STDIN"]
        threads = [threading.Thread(target=copy, args=(s,)) for s in copies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in copies:
            r.check(answers[s][0] is not None, "http: %s is answered within 10 s" % s, answers[s])
        after = snapshot(f)
        r.check(after["rows:notes"] == before["rows:notes"] and after["rows:customers"] == before["rows:customers"],
                "data intact after COPY over HTTP", diff(before, after))

        # ---- destructive statements never run, whoever asks: the owner's DO block hiding a DROP
        dave, _ = f.gh.token("dave", "production")
        carol, _ = f.gh.token("carol", "production")
        for label, sql, table in (
                ("dynamic SQL", "DO $$ BEGIN EXECUTE 'DROP TABLE ' || 'notes'; END $$", "notes"),
                ("static SQL", "DO $$ BEGIN DROP TABLE invoices; END $$", "invoices")):
            st, doc, raw = http_outcome(f, dave, sql, env="production")
            if st == 202:
                aid = doc["approval"]["id"]
                st2, doc2, raw2 = f.gh.request("POST", "/v1/approvals/%s/approve" % aid, body="", token=carol)
                what = "pending, then approved by carol: %d %s" % (st2, raw2[:200])
            else:
                what = "answered %d %s" % (st, raw[:200])
            exists = f.direct("SELECT to_regclass(%s) IS NOT NULL", ["public." + table], db="crm_prod")[0][0]
            r.check(exists, "an owner's DO block with a DROP TABLE in %s never drops the table (%s)" % (label, what))

        r.check(time.time() - t0 < 90, "suite ran in %.0f s" % (time.time() - t0))
    for p in MARKERS:
        if os.path.exists(p):
            os.unlink(p)


if __name__ == "__main__":
    run_suite("test_pg_smuggling.py", body)
