"""Smuggling: attempts to get a destructive or forbidden statement past the SQLite classifier,
each sent by the strongest caller there is (bob: edit on crm/staging, ad hoc, no approval),
each followed by a look at the database file itself: every table, its row count and content,
the schema and user_version unchanged, and no file appeared next to it (ATTACH, VACUUM INTO).
Then look-alikes that must stay allowed and run, the audit trail, and two things the
classifier's cache and the shared connections must not let through."""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib import Gatehouse, run_suite, DEFAULT_SQL

DB = "crm-staging.db"

# Extra objects, so that DROP INDEX/VIEW/TRIGGER have real targets, and a canary table that a
# planted trigger would touch.
EXTRA_SQL = """\
CREATE INDEX idx_customers_tier ON customers(tier);
CREATE VIEW gold_customers AS SELECT id, name FROM customers WHERE tier = 'gold';
CREATE TRIGGER notes_touch AFTER UPDATE ON notes BEGIN SELECT 1; END;
CREATE TABLE canary (id INTEGER PRIMARY KEY, hits INTEGER NOT NULL);
INSERT INTO canary VALUES (1, 0);
"""

DESTRUCTIVE = "destructive-ddl"
FORBIDDEN = "forbidden-statement"


def snapshot(g):
    """What must not change: schema rows, every table's row count and content digest,
    user_version, and the files in the test directory."""
    schema = g.sqlite(DB, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
    tables = {}
    for typ, name, _, _ in schema:
        if typ != "table":
            continue
        rows = g.sqlite(DB, 'SELECT * FROM "%s" ORDER BY rowid' % name.replace('"', '""'))
        tables[name] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return {
        "schema": schema,
        "tables": tables,
        "user_version": g.sqlite(DB, "PRAGMA user_version")[0][0],
        "files": sorted(os.listdir(g.tmp)),
    }


def diff(a, b):
    out = []
    for k in a:
        if a[k] != b[k]:
            out.append("%s: %r -> %r" % (k, a[k], b[k]))
    return "; ".join(out)


def attacks(tmp):
    """(label, sql, expected status, expected rule or set of acceptable rules or None)."""
    at = lambda name: os.path.join(tmp, name).replace("'", "''")
    big = 100 * 1024
    A = []

    def deny(label, sql, rule):
        A.append((label, sql, 403, rule))

    # DROP of every object kind, every case mix
    deny("DROP TABLE", "DROP TABLE customers", DESTRUCTIVE)
    deny("drop table (lower case)", "drop table customers", DESTRUCTIVE)
    deny("DrOp TaBlE (mixed case)", "DrOp TaBlE cUsToMeRs", DESTRUCTIVE)
    deny("dRoP tAbLe invoices", "dRoP tAbLe invoices", DESTRUCTIVE)
    deny("DROP INDEX", "DROP INDEX idx_customers_tier", DESTRUCTIVE)
    deny("drop index (upper-case name)", "drop index IDX_CUSTOMERS_TIER", DESTRUCTIVE)
    deny("DROP VIEW", "DROP VIEW gold_customers", DESTRUCTIVE)
    deny("Drop View (mixed case)", "Drop View Gold_Customers", DESTRUCTIVE)
    deny("DROP TRIGGER", "DROP TRIGGER notes_touch", DESTRUCTIVE)
    deny("drop trigger (upper-case name)", "drop trigger NOTES_TOUCH", DESTRUCTIVE)
    # comments before, inside and after keywords
    deny("block comment before DROP", "/* cleanup */ DROP TABLE customers", DESTRUCTIVE)
    deny("block comments between every keyword", "DROP /* a */ TABLE /* b */ customers /* c */", DESTRUCTIVE)
    deny("empty block comments as separators", "DROP/**/TABLE/**/customers", DESTRUCTIVE)
    deny("line comment before DROP", "-- harmless\nDROP TABLE customers", DESTRUCTIVE)
    deny("line comment inside DROP", "DROP -- x\nTABLE customers -- trailing", DESTRUCTIVE)
    deny("line comment after DROP", "DROP TABLE customers -- bye", DESTRUCTIVE)
    deny("trailing semicolon and comment", "DROP TABLE customers; -- bye", DESTRUCTIVE)
    deny("tabs and newlines as separators", "\n\t DROP\tTABLE\ncustomers \n", DESTRUCTIVE)
    # quoted and qualified names
    deny('double-quoted name', 'DROP TABLE "customers"', DESTRUCTIVE)
    deny("bracket-quoted name", "DROP TABLE [customers]", DESTRUCTIVE)
    deny("backtick-quoted name", "DROP TABLE `customers`", DESTRUCTIVE)
    deny("schema-qualified main.customers", "DROP TABLE main.customers", DESTRUCTIVE)
    deny('quoted schema and table', 'DROP TABLE "main"."customers"', DESTRUCTIVE)
    deny("schema-qualified index", "DROP INDEX main.idx_customers_tier", DESTRUCTIVE)
    # IF EXISTS on existing objects
    deny("DROP TABLE IF EXISTS", "DROP TABLE IF EXISTS customers", DESTRUCTIVE)
    deny("DROP INDEX IF EXISTS", "DROP INDEX IF EXISTS idx_customers_tier", DESTRUCTIVE)
    deny("DROP VIEW IF EXISTS", "DROP VIEW IF EXISTS gold_customers", DESTRUCTIVE)
    deny("DROP TRIGGER IF EXISTS", "DROP TRIGGER IF EXISTS notes_touch", DESTRUCTIVE)
    # IF EXISTS on objects that do not exist: SQLite asks no DROP permission for them, so the
    # analyser may call them forbidden rather than destructive; either way they are refused.
    either = {DESTRUCTIVE, FORBIDDEN}
    deny("DROP TABLE IF EXISTS (absent table)", "DROP TABLE IF EXISTS no_such_table", either)
    deny("DROP VIEW IF EXISTS (absent view)", "DROP VIEW IF EXISTS no_such_view", either)
    deny("DROP INDEX IF EXISTS (absent index)", "DROP INDEX IF EXISTS no_such_index", either)
    deny("DROP TRIGGER IF EXISTS (absent trigger)", "DROP TRIGGER IF EXISTS no_such_trigger", either)
    # EXPLAIN
    deny("EXPLAIN DROP", "EXPLAIN DROP TABLE customers", DESTRUCTIVE)
    deny("EXPLAIN QUERY PLAN DROP", "EXPLAIN QUERY PLAN DROP TABLE customers", DESTRUCTIVE)
    # ALTER TABLE ... DROP COLUMN
    deny("ALTER TABLE DROP COLUMN", "ALTER TABLE customers DROP COLUMN tier", DESTRUCTIVE)
    deny("ALTER TABLE DROP (no COLUMN keyword)", "ALTER TABLE notes DROP body", DESTRUCTIVE)
    deny("alter table quoted drop column", 'alter table "notes" drop column "body"', DESTRUCTIVE)
    deny("ALTER TABLE main.x DROP COLUMN", "ALTER TABLE main.invoices DROP COLUMN status", DESTRUCTIVE)
    # several statements in one request
    deny("SELECT 1; DROP TABLE", "SELECT 1; DROP TABLE customers", FORBIDDEN)
    deny("statements on separate lines", "SELECT 1;\nDROP TABLE customers", FORBIDDEN)
    deny("line comment between statements", "SELECT 1;\n-- nothing to see\nDROP TABLE customers", FORBIDDEN)
    deny("block comment between statements", "SELECT 1; /* c */ DROP TABLE customers", FORBIDDEN)
    deny("string holding ';' then DROP", "SELECT ';'; DROP TABLE customers", FORBIDDEN)
    deny("string 'a;b' then DROP", "SELECT 'a;b' AS s; DROP TABLE customers", FORBIDDEN)
    deny("empty statement between", "SELECT 1;;DROP TABLE customers", FORBIDDEN)
    # the first statement is refused while it is being prepared, so the graver rule names it
    deny("DROP first, SELECT second", "DROP TABLE customers; SELECT 1", DESTRUCTIVE)
    deny("INSERT then DROP", "INSERT INTO notes(body) VALUES ('x'); DROP TABLE customers", FORBIDDEN)
    deny("UNION then DROP VIEW", "SELECT 1 UNION SELECT 2; DROP VIEW gold_customers", FORBIDDEN)
    # a trigger whose body tries DROP (SQLite's grammar has no DROP inside a trigger)
    deny("CREATE TRIGGER with DROP in its body",
         "CREATE TRIGGER evil AFTER INSERT ON notes BEGIN DROP TABLE customers; END", FORBIDDEN)
    # temporary objects, however they are named
    deny("CREATE TEMP TABLE", "CREATE TEMP TABLE t(x)", FORBIDDEN)
    deny("CREATE TEMPORARY TABLE AS SELECT", "CREATE TEMPORARY TABLE t AS SELECT * FROM customers", FORBIDDEN)
    deny("CREATE TEMP VIEW", "CREATE TEMP VIEW v AS SELECT 1", FORBIDDEN)
    deny("CREATE TEMP TRIGGER", "CREATE TEMP TRIGGER tt AFTER INSERT ON notes BEGIN SELECT 1; END", FORBIDDEN)
    deny("CREATE TABLE temp.t (temp schema by qualification)", "CREATE TABLE temp.t(x)", FORBIDDEN)
    deny("CREATE VIEW temp.v (temp schema by qualification)", "CREATE VIEW temp.v AS SELECT 1", FORBIDDEN)
    deny("INSERT INTO temp.x", "INSERT INTO temp.x VALUES (1)", FORBIDDEN)
    deny("INSERT INTO temp.sqlite_master",
         "INSERT INTO temp.sqlite_master VALUES ('table','evil','evil',0,'CREATE TABLE evil(x)')", FORBIDDEN)
    deny("DELETE FROM temp.sqlite_master", "DELETE FROM temp.sqlite_master", FORBIDDEN)
    # other database files
    deny("ATTACH DATABASE a file in the test dir", "ATTACH DATABASE '%s' AS a" % at("attached.db"), FORBIDDEN)
    deny("attach (lower case)", "attach '%s' as \"a\"" % at("attached2.db"), FORBIDDEN)
    deny("ATTACH a URI with mode=rwc", "ATTACH 'file:%s?mode=rwc' AS a" % at("attached3.db"), FORBIDDEN)
    deny("ATTACH :memory:", "ATTACH ':memory:' AS m", FORBIDDEN)
    deny("DETACH DATABASE", "DETACH DATABASE a", FORBIDDEN)
    deny("DETACH", "DETACH a", FORBIDDEN)
    # VACUUM
    deny("VACUUM", "VACUUM", FORBIDDEN)
    deny("vacuum main", "vacuum main", FORBIDDEN)
    deny("VACUUM INTO a file", "VACUUM INTO '%s'" % at("copy.db"), FORBIDDEN)
    deny("VACUUM main INTO a file", "VACUUM main INTO '%s'" % at("copy2.db"), FORBIDDEN)
    # PRAGMAs that set things or reveal files
    deny("PRAGMA writable_schema=1", "PRAGMA writable_schema=1", FORBIDDEN)
    deny("PRAGMA writable_schema = ON", "PRAGMA writable_schema = ON", FORBIDDEN)
    deny("PRAGMA main.writable_schema=1", "PRAGMA main.writable_schema=1", FORBIDDEN)
    deny("PRAGMA journal_mode=OFF", "PRAGMA journal_mode=OFF", FORBIDDEN)
    deny("PRAGMA user_version=7", "PRAGMA user_version=7", FORBIDDEN)
    deny("PRAGMA main.user_version = 7", "PRAGMA main.user_version = 7", FORBIDDEN)
    deny("PRAGMA database_list", "PRAGMA database_list", FORBIDDEN)
    deny("PRAGMA foreign_keys=OFF", "PRAGMA foreign_keys=OFF", FORBIDDEN)
    deny("PRAGMA query_only=0", "PRAGMA query_only=0", FORBIDDEN)
    deny("pragma_database_list()", "SELECT * FROM pragma_database_list()", FORBIDDEN)
    deny("PRAGMA_DATABASE_LIST (upper case)", "SELECT * FROM PRAGMA_DATABASE_LIST", FORBIDDEN)
    deny("count(*) FROM pragma_database_list", "SELECT count(*) FROM pragma_database_list", FORBIDDEN)
    deny("pragma_journal_mode('OFF')", "SELECT * FROM pragma_journal_mode('OFF')", FORBIDDEN)
    deny("pragma_user_version", "SELECT 1 FROM pragma_user_version", FORBIDDEN)
    # functions
    deny("load_extension('x')", "SELECT load_extension('x')", FORBIDDEN)
    deny("LOAD_EXTENSION (upper case, two args)", "SELECT LOAD_EXTENSION('/tmp/evil.so', 'init')", FORBIDDEN)
    deny("load_extension in WHERE", "SELECT * FROM customers WHERE load_extension('x') IS NULL", FORBIDDEN)
    deny("load_extension in RETURNING", "INSERT INTO notes(body) VALUES ('x') RETURNING load_extension('x')",
         FORBIDDEN)
    deny("load_extension in CREATE TABLE AS", "CREATE TABLE evil AS SELECT load_extension('x') AS z", FORBIDDEN)
    deny("fts3_tokenizer", "SELECT fts3_tokenizer('simple')", FORBIDDEN)
    deny("internal sqlite_drop_column()", "SELECT sqlite_drop_column(1, 'x', 1)", {DESTRUCTIVE, FORBIDDEN})
    # transaction control
    for s in ("BEGIN;", "BEGIN TRANSACTION", "BEGIN IMMEDIATE", "COMMIT", "END", "ROLLBACK", "SAVEPOINT sp",
              "RELEASE sp", "RELEASE SAVEPOINT sp", "ROLLBACK TO sp"):
        deny("transaction control: %s" % s, s, FORBIDDEN)
    # the schema table
    deny("DELETE FROM sqlite_master", "DELETE FROM sqlite_master", FORBIDDEN)
    deny("DELETE FROM sqlite_schema WHERE", "DELETE FROM sqlite_schema WHERE name = 'customers'", FORBIDDEN)
    deny("UPDATE sqlite_master",
         "UPDATE sqlite_master SET sql = 'CREATE TABLE customers(x)' WHERE name = 'customers'", FORBIDDEN)
    deny("UPDATE main.sqlite_master", "UPDATE main.sqlite_master SET name = 'x'", FORBIDDEN)
    deny("INSERT INTO sqlite_master",
         "INSERT INTO sqlite_master VALUES ('table','evil','evil',0,'CREATE TABLE evil(x)')", FORBIDDEN)
    # unicode look-alikes and invisible characters
    deny("zero-width space inside DROP", "DR\u200bOP TABLE customers", FORBIDDEN)
    deny("zero-width joiner inside DROP", "D\u200dROP TABLE customers", FORBIDDEN)
    deny("fullwidth DROP", "\uff24\uff32\uff2f\uff30 TABLE customers", FORBIDDEN)
    deny("Cyrillic O in DROP", "DR\u041eP TABLE customers", FORBIDDEN)
    deny("Cyrillic o in the table name", "DROP TABLE cust\u043emers", FORBIDDEN)
    deny("no-break space between keywords", "DROP\u00a0TABLE customers", FORBIDDEN)
    deny("zero-width space after the name", "DROP TABLE customers\u200b", FORBIDDEN)
    deny("byte-order mark before DROP", "\ufeffDROP TABLE customers", {DESTRUCTIVE, FORBIDDEN})
    # NUL bytes: refused before analysis
    A.append(("NUL after DROP", "DROP TABLE customers\u0000", 400, None))
    A.append(("NUL before a second statement", "SELECT 1\u0000; DROP TABLE customers", 400, None))
    A.append(("NUL inside DROP", "DR\u0000OP TABLE customers", 400, None))
    # size
    A.append(("DROP padded past 100 KiB", "DROP TABLE customers -- " + "x" * big, 413, None))
    A.append(("second statement past 100 KiB", "SELECT 1;" + " " * big + "DROP TABLE customers", 413, None))
    pad = big - len("/*  */ DROP TABLE customers") - 8
    deny("DROP just under 100 KiB", "/* " + "x" * pad + " */ DROP TABLE customers", DESTRUCTIVE)
    return A


def rule_ok(got, want):
    if isinstance(want, set):
        return got in want
    return got == want


def body(r):
    g = Gatehouse(sql=DEFAULT_SQL + EXTRA_SQL)
    refused = []  # (label, request_id, rule)
    try:
        g.start()
        bob, _ = g.token("bob", "staging")
        alice, _ = g.token("alice", "staging", app="invoices")
        before = snapshot(g)
        r.check(set(before["tables"]) == {"customers", "invoices", "notes", "canary"} and
                before["tables"]["customers"][0] == 3, "fixture has the expected tables", before["tables"])

        A = attacks(g.tmp)
        r.check(len(A) >= 60, "at least 60 smuggling attempts (%d)" % len(A))
        for label, sql, want_status, want_rule in A:
            st, doc, raw = g.query(bob, sql)
            err = (doc or {}).get("error", {})
            if want_status == 403:
                ok = st == 403 and err.get("code") == "denied" and rule_ok(err.get("rule"), want_rule)
                r.check(ok, "refused (403 %s): %s" % (want_rule if isinstance(want_rule, str) else
                                                      "/".join(sorted(want_rule)), label), raw[:300])
                if st == 403 and err.get("rule"):
                    refused.append((label, err.get("request_id"), err.get("rule")))
            elif want_status == 413:
                r.check(st == 413 and err.get("code") == "statement_too_large", "refused (413): %s" % label, raw[:300])
            else:
                r.check(st == 400 and err.get("code") == "bad_request", "refused (400): %s" % label, raw[:300])
            now = snapshot(g)
            r.check(now == before, "data, schema and files intact after: %s" % label, diff(before, now))

        # ---- look-alikes: must stay allowed and run
        def allowed(label, sql, check=None, token=bob, params=None):
            st, doc, raw = g.query(token, sql, params=params)
            ok = st == 200 and doc is not None and (check is None or check(doc))
            r.check(ok, "look-alike runs (200): %s" % label, raw[:300])
            return doc

        allowed('column alias named "drop"', 'SELECT 1 AS "drop"',
                lambda d: d["columns"] == ["drop"] and d["rows"] == [[1]])
        allowed('select from a subquery column "drop"', 'SELECT "drop" FROM (SELECT 2 AS "drop")',
                lambda d: d["rows"] == [[2]])
        allowed("aliases named attach and pragma", 'SELECT id AS "attach", name AS "pragma" FROM customers ORDER BY id',
                lambda d: d["columns"] == ["attach", "pragma"] and len(d["rows"]) == 3)
        allowed("string literal holding 'DROP TABLE customers; --'", "SELECT 'DROP TABLE customers; --' AS s",
                lambda d: d["rows"] == [["DROP TABLE customers; --"]])
        allowed("block comment holding DROP TABLE", "SELECT 1 /* DROP TABLE customers */ AS one",
                lambda d: d["rows"] == [[1]])
        allowed("line comment holding '; DROP TABLE'", "SELECT 1 AS one -- ; DROP TABLE customers",
                lambda d: d["rows"] == [[1]])
        allowed("unterminated comment swallowing '; DROP'", "SELECT 1 AS one /* ; DROP TABLE customers",
                lambda d: d["rows"] == [[1]])
        allowed("string holding ';'", "SELECT 'a;b' AS s", lambda d: d["rows"] == [["a;b"]])
        allowed("bound parameter holding an injection", "SELECT ? AS s",
                lambda d: d["rows"] == [["'; DROP TABLE customers; --"]], params=["'; DROP TABLE customers; --"])
        allowed("LIKE '%drop%'", "SELECT count(*) AS n FROM customers WHERE name LIKE '%drop%'",
                lambda d: d["rows"] == [[0]])
        allowed("CTE named drop_list", "WITH drop_list AS (SELECT id FROM customers) SELECT count(*) AS n FROM drop_list",
                lambda d: d["rows"] == [[3]])
        allowed("'VACUUM' in a string", "SELECT 'VACUUM' AS v", lambda d: d["rows"] == [["VACUUM"]])
        allowed("PRAGMA table_info(customers)", "PRAGMA table_info(customers)",
                lambda d: [row[1] for row in d["rows"]] == ["id", "name", "tier"])
        allowed("PRAGMA index_list(customers)", "PRAGMA index_list(customers)",
                lambda d: any(row[1] == "idx_customers_tier" for row in d["rows"]))
        allowed("SELECT * FROM pragma_table_info('customers')", "SELECT * FROM pragma_table_info('customers')",
                lambda d: [row[1] for row in d["rows"]] == ["id", "name", "tier"])
        allowed("json_each over a string mentioning drop", "SELECT value FROM json_each('[\"drop\",\"table\"]')",
                lambda d: d["rows"] == [["drop"], ["table"]])
        allowed("EXPLAIN QUERY PLAN of a read", "EXPLAIN QUERY PLAN SELECT * FROM customers")
        allowed("reading sqlite_master", "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
                lambda d: ["canary"] in d["rows"] and ["customers"] in d["rows"])
        allowed("REINDEX customers (ddl, allowed for edit in staging)", "REINDEX customers")
        now = snapshot(g)
        r.check(now == before, "look-alike reads and REINDEX changed nothing", diff(before, now))

        # The analysis cache must not outlive a schema change: a statement refused because its
        # table did not exist yet must run once the table exists.
        probe = "SELECT count(*) AS n FROM drop_log"
        st, doc, raw = g.query(bob, probe)
        r.check(st == 403 and doc["error"]["rule"] == FORBIDDEN, "reading drop_log before it exists is refused", raw)
        allowed("CREATE TABLE drop_log (ddl by edit in staging)",
                "CREATE TABLE drop_log (id INTEGER PRIMARY KEY, what TEXT NOT NULL)")
        r.check(g.sqlite(DB, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'drop_log'") == [(1,)],
                "drop_log exists in the file")
        allowed("INSERT 'DROP TABLE x' into drop_log", "INSERT INTO drop_log (what) VALUES (?)",
                lambda d: d.get("rows_affected") == 1, params=["DROP TABLE x"])
        allowed("SELECT the value back", "SELECT what FROM drop_log ORDER BY id",
                lambda d: d["rows"] == [["DROP TABLE x"]])
        allowed("UPDATE drop_log to another look-alike", "UPDATE drop_log SET what = 'ATTACH DATABASE x' WHERE id = 1",
                lambda d: d.get("rows_affected") == 1)
        r.check(g.sqlite(DB, "SELECT what FROM drop_log") == [("ATTACH DATABASE x",)],
                "drop_log holds the written value in the file")
        allowed("the same text once its table exists (analysis cache vs schema change)", probe,
                lambda d: d["rows"] == [[1]])
        allowed("CREATE INDEX drop_idx", "CREATE INDEX drop_idx ON drop_log(what)")
        r.check(g.sqlite(DB, "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = 'drop_idx'") ==
                [("drop_log",)], "drop_idx exists in the file")
        before = snapshot(g)  # new baseline: drop_log and drop_idx are meant to be there

        # A DROP TRIGGER IF EXISTS analysed while the trigger was absent must not be remembered
        # as harmless once the trigger exists.
        st, doc, raw = g.query(bob, "DROP TRIGGER IF EXISTS gh_later")
        r.check(st == 403, "DROP TRIGGER IF EXISTS of an absent trigger is refused", raw)
        allowed("CREATE TRIGGER gh_later", "CREATE TRIGGER gh_later AFTER INSERT ON drop_log BEGIN SELECT 1; END")
        st, doc, raw = g.query(bob, "DROP TRIGGER IF EXISTS gh_later")
        err = (doc or {}).get("error", {})
        r.check(st == 403 and err.get("rule") == DESTRUCTIVE,
                "DROP TRIGGER IF EXISTS of a trigger that now exists is refused as destructive-ddl", raw)
        if st == 403 and err.get("rule"):
            refused.append(("DROP TRIGGER IF EXISTS gh_later (now existing)", err.get("request_id"), err.get("rule")))
        r.check(g.sqlite(DB, "SELECT count(*) FROM sqlite_master WHERE name = 'gh_later'") == [(1,)],
                "trigger gh_later still exists")
        before = snapshot(g)

        # Temporary objects made by one request must not live on in the shared connections and
        # act inside other users' requests: bob tries to plant a temp trigger (several times, so
        # that every worker connection would get one) and alice then writes through her app.
        spy = ("CREATE TRIGGER temp.gh_spy AFTER INSERT ON main.notes "
               "BEGIN UPDATE canary SET hits = hits + 1; END")
        planted = []
        for _ in range(6):
            st, doc, raw = g.query(bob, spy)
            planted.append(st)
            if st == 403 and doc["error"].get("rule"):
                refused.append(("temp trigger", doc["error"].get("request_id"), doc["error"].get("rule")))
        r.check(all(s == 403 for s in planted), "CREATE TRIGGER temp.* is refused (forbidden-statement)", planted)
        for i in range(4):
            st, doc, raw = g.query(alice, "INSERT INTO notes (body) VALUES (?)", params=["note %d" % i])
            r.check(st == 200 and doc.get("rows_affected") == 1, "alice's app write %d runs" % i, raw)
        r.check(g.sqlite(DB, "SELECT hits FROM canary") == [(0,)],
                "no write other than alice's own ran inside alice's requests", g.sqlite(DB, "SELECT hits FROM canary"))
        r.check(g.sqlite(DB, "SELECT count(*) FROM notes") == [(5,)], "alice's four notes were written")

        rc = g.stop()
        r.check(rc == 0, "server stops cleanly", rc)
        out = g.verify()
        r.check(out.returncode == 0 and out.stdout.startswith("ok: "), "audit verify is ok", out.stdout + out.stderr)

        lines = g.audit_lines()
        by_rid = {}
        for rec in lines:
            by_rid.setdefault(rec.get("request_id"), []).append(rec)
        for label, rid, rule in refused:
            recs = by_rid.get(rid, [])
            ok = any(x.get("decision") == "deny" and x.get("rule") == rule and x.get("event") == "query" and
                     x.get("user") == "bob" and x.get("status") == "denied" for x in recs)
            r.check(ok, "audited as deny/%s: %s" % (rule, label), json.dumps(recs)[:500])
    finally:
        g.close()


run_suite("test_smuggling", body)
