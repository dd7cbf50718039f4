"""GET /v1/schema and `gatehouse schema` on a PostgreSQL resource (a real PostgreSQL started here):
the catalog read under the caller's claims, only the schemas the resource exposes, only what the
database role may SELECT, and of that only what the caller's grants cover; comments from
COMMENT ON; foreign keys only to visible tables. Grants with a tables: list are enforced on the
query path of both fronts (HTTP and the wire protocol) as well. No connection detail, password or
secret name in any answer; one schema.read record per call."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
import pgfix  # noqa: E402

POLICY = pgfix.POLICY.replace(
    "  - name: crm\n    kind: postgres\n",
    "  - name: crm\n    kind: postgres\n    schemas: [public, hr]\n").replace(
    "  - name: erin\n", "  - name: erin\n  - name: frank\n").replace(
    "  - { resource: crm, environment: staging, group: analysts, access: use }\n",
    "  - resource: crm\n"
    "    environment: staging\n"
    "    group: analysts\n"
    "    access: use\n"
    "    tables: [invoices, payments, open_invoices, {name: customers, columns: [id, name]}]\n"
    "  - { resource: crm, environment: staging, user: frank, access: use, tables: [\"hr.*\"] }\n")

SETUP = """
COMMENT ON TABLE customers IS 'Who pays: one row per legal entity';
COMMENT ON COLUMN customers.name IS 'legal name, as on invoices';
COMMENT ON COLUMN customers.tier IS 'pricing tier (hidden from analysts)';
CREATE TABLE payments (id int PRIMARY KEY, invoice_id int NOT NULL REFERENCES invoices(id),
                       note_id int REFERENCES notes(id), amount bigint NOT NULL);
CREATE VIEW open_invoices AS SELECT i.id, c.name, i.amount_cents FROM invoices i
  JOIN customers c ON c.id = i.customer_id WHERE i.status <> 'paid';
INSERT INTO payments VALUES (1, 1, NULL, 125000);
"""

# as the superuser: objects the resource's role may not (fully) read, and a second schema
SETUP_ADMIN = """
CREATE TABLE vault_t (id int PRIMARY KEY, secret text);
CREATE TABLE partial (a int, b int, c text);
GRANT SELECT (a, c) ON partial TO app;
CREATE TABLE refs_vault (id int PRIMARY KEY, v int REFERENCES vault_t(id));
GRANT SELECT ON refs_vault TO app;
CREATE SCHEMA hr;
GRANT USAGE ON SCHEMA hr TO app;
CREATE TABLE hr.salaries (id int PRIMARY KEY, person text NOT NULL, amount int);
GRANT SELECT ON hr.salaries TO app;
CREATE SCHEMA ops;
GRANT USAGE ON SCHEMA ops TO app;
CREATE TABLE ops.jobs (id int);
GRANT SELECT ON ops.jobs TO app;
"""


def main(t):
    with pgfix.PgGatehouse(policy=POLICY) as f:
        c = f.pg.connect(user="app", password=pgfix.CANARY, dbname="crm_staging")
        with c:
            c.execute(SETUP)
        c.close()
        f.pg.sql(SETUP_ADMIN, db="crm_staging")
        f.start()
        gh = f.gh
        alice, _ = gh.token("alice", "staging", app="invoices")
        alice_prod, _ = gh.token("alice", "production", app="invoices")
        bob, _ = gh.token("bob", "staging")
        dave, _ = gh.token("dave", "staging")
        frank, _ = gh.token("frank", "staging", app="invoices")
        outputs = []
        calls = [0]

        def schema(tok, env="staging", fmt=None):
            calls[0] += 1
            q = "/v1/schema?resource=crm&environment=%s%s" % (env, "&format=" + fmt if fmt else "")
            st, doc, raw = gh.request("GET", q, token=tok)
            outputs.append(raw.decode(errors="replace"))
            return st, doc, raw

        def tables(doc):
            return {x["name"]: x for x in doc["tables"]}

        st, doc, _ = schema(dave)
        t.check(st == 403 and doc["error"]["rule"] == "no-grant", "a user without a grant gets 403 no-grant",
                (st, doc))
        st, doc, _ = schema(alice_prod)
        t.check(st == 403 and doc["error"]["rule"] == "token-environment",
                "a token for another environment gets 403", (st, doc))

        # --- a grant on the whole resource: everything the role may read in public and hr
        st, doc, raw = schema(bob)
        tb = tables(doc) if st == 200 else {}
        t.check(st == 200 and doc["kind"] == "postgres" and set(tb) == {
            "customers", "invoices", "notes", "payments", "open_invoices", "partial", "refs_vault", "hr.salaries"},
            "bob sees the role's tables of public and hr (not ops, not vault_t)", sorted(tb))
        t.check([x["name"] for x in tb.get("partial", {}).get("columns", [])] == ["a", "c"],
                "only the columns the role may SELECT (has_column_privilege)", tb.get("partial"))
        t.check(tb.get("refs_vault", {}).get("foreign_keys") == [],
                "a foreign key to a table the role cannot read is not shown", tb.get("refs_vault"))
        t.check(len(tb.get("payments", {}).get("foreign_keys", [])) == 2, "both keys of payments shown to bob",
                tb.get("payments"))
        sal = tb.get("hr.salaries", {})
        t.check(sal.get("columns", [{}])[0] == {"name": "id", "type": "integer", "nullable": False,
                                                "primary_key": True, "comment": None}
                and sal["columns"][1]["nullable"] is False and sal["columns"][2]["nullable"] is True,
                "tables of other schemas are named schema.table; types, nullability, primary keys", sal)
        t.check(tb.get("open_invoices", {}).get("kind") == "view", "a view is a view", tb.get("open_invoices"))
        cust = tb.get("customers", {})
        t.check(cust.get("comment") == "Who pays: one row per legal entity"
                and [x["comment"] for x in cust.get("columns", [])] ==
                [None, "legal name, as on invoices", "pricing tier (hidden from analysts)"],
                "table and column comments (obj_description, col_description)", cust)
        t.check(tb.get("invoices", {}).get("columns", [{}, {}, {}])[2].get("type") == "bigint",
                "types as format_type writes them", tb.get("invoices"))

        # --- a grant with a tables list
        st, doc, raw = schema(alice)
        tb = tables(doc) if st == 200 else {}
        t.check(st == 200 and set(tb) == {"customers", "invoices", "payments", "open_invoices"},
                "alice sees only the tables her grant lists", sorted(tb))
        t.check([x["name"] for x in tb.get("customers", {}).get("columns", [])] == ["id", "name"]
                and "pricing tier" not in raw.decode() and '"tier"' not in raw.decode(),
                "columns the grant does not list are absent, with their comments", tb.get("customers"))
        t.check(tb.get("payments", {}).get("foreign_keys") == [{"columns": ["invoice_id"],
                                                                "references": {"table": "invoices", "columns": ["id"]}}],
                "the foreign key to a hidden table (notes) is not shown", tb.get("payments"))
        t.check(tb.get("invoices", {}).get("foreign_keys") == [
            {"columns": ["customer_id"], "references": {"table": "customers", "columns": ["id"]}}],
            "the foreign key to a visible table and column is shown", tb.get("invoices"))
        st, doc, _ = schema(frank)
        t.check(st == 200 and [x["name"] for x in doc["tables"]] == ["hr.salaries"],
                "a schema-qualified glob (hr.*) covers that schema's tables only", doc)

        st, _, raw = schema(alice, fmt="text")
        text = raw.decode()
        lines = text.splitlines()
        t.check(st == 200 and "table customers (id integer pk, name text not null /* legal name, as on invoices */)"
                " -- Who pays: one row per legal entity" in lines,
                "text: one line per table with comments", text)
        t.check("fk invoices(customer_id) -> customers(id)" in lines and "fk payments(invoice_id) -> invoices(id)"
                in lines and "view open_invoices (id integer, name text, amount_cents bigint)" in lines
                and not any("notes" in l for l in lines), "text: foreign keys and views, nothing hidden", text)
        st, _, raw = schema(bob, fmt="text")
        t.check("table hr.salaries (id integer pk, person text not null, amount integer)" in raw.decode(),
                "text: other schemas qualified", raw.decode())

        # --- queries agree with the listing, over HTTP
        def q(tok, sql):
            st, doc, raw = gh.query(tok, sql)
            outputs.append(raw.decode(errors="replace"))
            return st, doc

        st, doc = q(alice, "SELECT c.id, c.name FROM customers c ORDER BY c.id")
        t.check(st == 200 and doc["row_count"] == 3, "granted columns read", doc)
        st, doc = q(alice, "SELECT i.amount_cents, c.name FROM invoices i JOIN customers c ON c.id = i.customer_id")
        t.check(st == 200 and doc["row_count"] == 3, "a join of granted tables, qualified columns", doc)
        for sql, rule in (("SELECT tier FROM customers", "column-not-granted"),
                          ("SELECT * FROM customers", "column-not-granted"),
                          ("SELECT c FROM customers c", "column-not-granted"),
                          ("SELECT row_to_json(c) FROM customers c", "column-not-granted"),
                          ("SELECT x FROM customers AS c(a, b, x)", "column-not-granted"),
                          ("SELECT name FROM customers NATURAL JOIN invoices", "column-not-granted"),
                          ("SELECT * FROM notes", "table-not-granted"),
                          ("WITH open_invoices AS (SELECT body FROM notes) SELECT * FROM open_invoices",
                           "table-not-granted"),
                          ("SELECT relname FROM pg_class", "table-not-granted"),
                          ("SELECT * FROM information_schema.columns", "table-not-granted"),
                          ("SELECT * FROM hr.salaries", "table-not-granted"),
                          ("SELECT 1 FROM invoices WHERE EXISTS (SELECT 1 FROM notes)", "table-not-granted")):
            st, doc = q(alice, sql)
            t.check(st == 403 and doc["error"]["rule"] == rule, "refused (%s): %s" % (rule, sql), doc)
        st, doc = q(alice, "SELECT id, name FROM open_invoices")
        t.check(st == 200 and doc["row_count"] == 2, "a granted view runs (PostgreSQL views run as their owner)", doc)
        st, doc = q(frank, "SELECT s.person FROM hr.salaries s")
        t.check(st == 200, "hr.* covers hr.salaries", doc)

        # --- and over the wire front
        p = f.psql("alice", alice, "SELECT tier FROM customers")
        t.check(p.returncode != 0 and "column-not-granted" in p.stderr,
                "wire: a hidden column is refused with the rule", p.stderr)
        p = f.psql("alice", alice, "SELECT count(*) FROM notes")
        t.check(p.returncode != 0 and "table-not-granted" in p.stderr, "wire: a hidden table is refused", p.stderr)
        p = f.psql("alice", alice, "SELECT count(*) FROM invoices")
        t.check(p.returncode == 0 and p.stdout.strip() == "3", "wire: a granted table is read", p.stdout + p.stderr)
        conn = f.connect("alice", alice)
        refused = None
        try:
            conn.autocommit = False
            cur = conn.cursor()
            cur.execute("SELECT 1")
            try:
                cur.execute("SET LOCAL search_path = hr")
            except Exception as e:  # psycopg.errors.InsufficientPrivilege
                refused = str(e)
        finally:
            conn.close()
        t.check(refused is not None and "search-path-scoped" in refused,
                "wire: under a tables list, search_path cannot be changed", refused)

        # --- the CLI
        env = {"GATEHOUSE_URL": "http://127.0.0.1:%d" % gh.port, "GATEHOUSE_TOKEN": alice}
        out = gh.cli("schema", "--resource", "crm", "--env", "staging", env=env)
        calls[0] += 1
        outputs += [out.stdout, out.stderr]
        t.check(out.returncode == 0 and "table customers (id integer pk, name text not null" in out.stdout,
                "gatehouse schema prints the text block", out)

        # --- audit and leaks
        recs = [r for r in gh.audit_lines() if r["event"] == "schema.read"]
        t.check(len(recs) == calls[0], "one schema.read record per call (%d)" % calls[0], len(recs))
        ok = [r for r in recs if r["user"] == "alice" and r["decision"] == "allow"]
        t.check(ok and ok[0]["resource"] == "crm" and ok[0]["rows"] == 4 and ok[0]["rule"].startswith("grant:"),
                "an allowed listing is recorded with the grant and the table count", ok[:1])
        t.check(gh.verify().returncode == 0, "the audit chain verifies")
        everything = "\n".join(outputs)
        leaks = [s for s in (pgfix.CANARY, "crm_staging", "crm-staging-dsn", "postgresql://", "host=",
                             str(f.pg.port), "secret", gh.tmp) if s in everything]
        t.check(not leaks, "no password, DSN, database name, secret name or path in any answer", leaks)
        t.check(pgfix.CANARY not in gh.server_log(), "no password in the server's log")


lib.run_suite("pg_schema", main)
