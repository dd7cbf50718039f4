"""GET /v1/schema and `gatehouse schema` on a SQLite resource: the tables and columns a caller may
read, from the resource's own catalog, and nothing else. Grants with a tables: list narrow both
the listing and the query path: tables and columns they do not cover are absent from the schema
and refused by queries (403 with the rule). A caller without a grant, or with a token for
another environment, gets 403; every call leaves one schema.read record; no path, secret or token
appears in any answer."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

POLICY = """\
version: 1
users:
  - name: alice
  - name: bob
  - name: dave
  - name: frank
  - name: gina
  - name: erin
groups:
  - name: analysts
    members: [alice]
  - name: engineers
    members: [bob]
  - name: platform
    members: [erin]
admins: [platform]
environments:
  - name: staging
  - name: production
resources:
  - name: crm
    kind: sqlite
    environments:
      staging:    { path: crm-staging.db }
      production: { path: crm-prod.db }
  - name: payroll
    kind: sqlite
    environments:
      staging: { path: payroll.db }
apps:
  - name: invoices
grants:
  - resource: crm
    environment: staging
    group: analysts
    access: use
    tables:
      - invoices
      - payments
      - labels
      - open_invoices
      - "report_*"
      - { name: customers, columns: [id, name] }
  - { resource: crm, environment: staging, group: engineers, access: edit }
  - { resource: crm, environment: production, user: alice, access: use }
  - { resource: crm, environment: production, user: dave, access: own }
  - { resource: crm, environment: staging, user: frank, access: edit, tables: [invoices, {name: customers, columns: [id]}] }
  - { resource: crm, environment: staging, user: gina, access: use, tables: [open_invoices] }
  - { resource: payroll, environment: staging, group: engineers, access: edit }
"""

SQL = lib.DEFAULT_SQL + """
CREATE TABLE payments (id INTEGER PRIMARY KEY, invoice_id INTEGER NOT NULL REFERENCES invoices(id),
                       note_id INTEGER REFERENCES notes(id), amount INTEGER NOT NULL);
CREATE TABLE labels (id INTEGER PRIMARY KEY AUTOINCREMENT, tier TEXT REFERENCES customers(tier));
CREATE VIEW open_invoices AS SELECT i.id, c.name, i.amount_cents FROM invoices i
  JOIN customers c ON c.id = i.customer_id WHERE i.status <> 'paid';
CREATE TABLE report_q1 (region TEXT, total INTEGER);
CREATE TABLE "Report Q2" (region TEXT, total INTEGER);
INSERT INTO payments VALUES (1, 1, 1, 125000);
INSERT INTO labels (tier) VALUES ('gold');
"""

PAYROLL_SQL = "CREATE TABLE salaries (id INTEGER PRIMARY KEY, person TEXT, amount INTEGER);"


def body(t):
    g = lib.Gatehouse(policy=None, sql=SQL)
    try:
        lib.make_db(g.path("payroll.db"), PAYROLL_SQL)
        out = g.apply(POLICY)
        t.check(out.returncode == 0, "the policy with tables: lists applies", out.stderr)
        g.start()
        alice, _ = g.token("alice", "staging", app="invoices")
        alice_prod, _ = g.token("alice", "production", app="invoices")
        bob, _ = g.token("bob", "staging")
        dave, _ = g.token("dave", "staging")
        frank, _ = g.token("frank", "staging")
        gina, _ = g.token("gina", "staging", app="invoices")
        outputs = []  # every answer, to look for leaks at the end
        calls = [0]

        def schema(tok, res="crm", env="staging", fmt=None, raw_query=None):
            q = raw_query if raw_query is not None else "resource=%s&environment=%s%s" % (
                res, env, "&format=" + fmt if fmt else "")
            calls[0] += 1
            st, doc, raw = g.request("GET", "/v1/schema?" + q, token=tok)
            outputs.append(raw.decode(errors="replace"))
            return st, doc, raw

        def tables(doc):
            return {x["name"]: x for x in doc["tables"]}

        # --- refusals
        st, doc, _ = schema(dave)
        t.check(st == 403 and doc["error"]["code"] == "denied" and doc["error"]["rule"] == "no-grant",
                "a user without a grant in the environment gets 403 no-grant", (st, doc))
        st, doc, _ = schema(alice_prod)
        t.check(st == 403 and doc["error"]["rule"] == "token-environment",
                "a token for another environment gets 403 token-environment", (st, doc))
        st, doc, _ = schema(alice, res="payroll")
        t.check(st == 403 and doc["error"]["rule"] == "no-grant" and "payroll" not in json.dumps(doc),
                "a resource the caller has no grant on: 403, without naming it back", (st, doc))
        st, doc, _ = schema(alice, res="nope")
        t.check(st == 404 and doc["error"]["code"] == "not_found" and "crm" not in json.dumps(doc)
                and "payroll" not in json.dumps(doc),
                "an unknown resource: 404 that names no other resource", (st, doc))
        st, doc, _ = schema(alice, env="qa")
        t.check(st == 404, "an environment the resource lacks: 404", (st, doc))
        st, doc, _ = schema(alice, raw_query="environment=staging")
        t.check(st == 400 and "resource" in doc["error"]["message"], "a missing parameter: 400", (st, doc))
        st, doc, _ = schema(alice, fmt="yaml")
        t.check(st == 400, "an unknown format: 400", (st, doc))
        st, doc, _ = schema(alice, raw_query="resource=crm%00&environment=staging")
        t.check(st == 400, "a NUL in a parameter: 400", (st, doc))
        st, doc, _ = g.request("GET", "/v1/schema?resource=crm&environment=staging")
        t.check(st == 401, "no token: 401", st)
        st, _, _ = g.request("POST", "/v1/schema?resource=crm&environment=staging", body="", token=alice)
        t.check(st == 405, "POST: 405", st)

        # --- what a grant with a tables list shows
        st, doc, raw = schema(alice)
        t.check(st == 200 and doc["resource"] == "crm" and doc["environment"] == "staging"
                and doc["truncated"] is False and doc["request_id"].startswith("req_"),
                "alice reads the schema of crm in staging", (st, doc))
        tb = tables(doc) if st == 200 else {}
        t.check(set(tb) == {"customers", "invoices", "payments", "labels", "open_invoices", "report_q1"},
                "only the tables her grant lists appear (notes, \"Report Q2\", sqlite_* absent)", sorted(tb))
        cust = tb.get("customers", {})
        t.check([c["name"] for c in cust.get("columns", [])] == ["id", "name"],
                "customers shows only the columns granted (tier absent)", cust)
        t.check(cust.get("columns", [{}])[0] == {"name": "id", "type": "INTEGER", "nullable": False,
                                                 "primary_key": True, "comment": None}
                and cust["columns"][1]["nullable"] is False and cust["columns"][1]["primary_key"] is False,
                "columns carry type, nullable, primary_key and comment (null: SQLite has none)", cust)
        t.check(cust.get("kind") == "table" and cust.get("comment") is None and tb["open_invoices"]["kind"] == "view",
                "tables and views are told apart", (cust.get("kind"), tb.get("open_invoices", {}).get("kind")))
        inv = tb.get("invoices", {})
        t.check(inv.get("foreign_keys") == [{"columns": ["customer_id"],
                                             "references": {"table": "customers", "columns": ["id"]}}],
                "a foreign key to a visible table and column is shown", inv.get("foreign_keys"))
        pay = tb.get("payments", {})
        t.check(pay.get("foreign_keys") == [{"columns": ["invoice_id"],
                                             "references": {"table": "invoices", "columns": ["id"]}}],
                "a foreign key to a hidden table (notes) is not shown", pay.get("foreign_keys"))
        t.check(tb.get("labels", {}).get("foreign_keys") == [],
                "a foreign key to a hidden column (customers.tier) is not shown", tb.get("labels"))
        t.check(all(n not in raw.decode() for n in ('"notes"', "Report Q2", "sqlite_", '"body"'))
                and '"tier"' not in json.dumps(cust),
                "no hidden name appears anywhere in the document", raw[:300])

        st, doc, _ = schema(bob)
        tb = tables(doc) if st == 200 else {}
        t.check(st == 200 and {"notes", "Report Q2", "customers"} <= set(tb)
                and [c["name"] for c in tb["customers"]["columns"]] == ["id", "name", "tier"]
                and not any(n.startswith("sqlite_") for n in tb),
                "a grant on the whole resource shows every table and column (never sqlite_*)", sorted(tb))
        t.check(len(tb.get("payments", {}).get("foreign_keys", [])) == 2,
                "with notes visible, both foreign keys of payments are shown", tb.get("payments"))

        st, doc, _ = schema(gina)
        t.check(st == 200 and doc["tables"] == [],
                "a view whose tables are not granted is not listed (SQLite checks what a view reads)", doc)

        # --- text for a model's context
        c = g.conn()
        c.request("GET", "/v1/schema?resource=crm&environment=staging&format=text",
                  headers={"Authorization": "Bearer " + alice})
        resp = c.getresponse()
        text = resp.read().decode()
        ctype = resp.getheader("Content-Type")
        c.close()
        calls[0] += 1
        outputs.append(text)
        lines = text.splitlines()
        t.check(resp.status == 200 and ctype.startswith("text/plain"), "format=text answers text/plain", ctype)
        t.check("table customers (id integer pk, name text not null)" in lines,
                "one compact line per table: columns, types, pk, not null", text)
        t.check("fk invoices(customer_id) -> customers(id)" in lines
                and "fk payments(invoice_id) -> invoices(id)" in lines and not any("notes" in l for l in lines),
                "foreign keys on their own lines, none to hidden tables", text)
        t.check("view open_invoices (id integer, name text, amount_cents integer)" in lines,
                "views are marked as such", text)
        t.check(lines[0].startswith("-- SQLite resource crm, environment staging") and len(lines) == 9,
                "a header line, six tables, two foreign keys", lines)
        st, _, raw = schema(bob, fmt="text")
        t.check(st == 200 and 'table "Report Q2" (region text, total integer)' in raw.decode(),
                "names that need quoting are quoted", raw.decode())

        # --- the query path agrees with the listing
        def q(tok, sql):
            st, doc, raw = g.query(tok, sql)
            outputs.append(raw.decode(errors="replace"))
            return st, doc

        st, doc = q(alice, "SELECT id, name FROM customers ORDER BY id")
        t.check(st == 200 and doc["row_count"] == 3, "granted columns of a column-limited table are readable", doc)
        st, doc = q(alice, "SELECT tier FROM customers")
        t.check(st == 403 and doc["error"]["rule"] == "column-not-granted" and "tier" in doc["error"]["message"],
                "a column absent from the schema is refused: column-not-granted", doc)
        st, doc = q(alice, "SELECT * FROM customers")
        t.check(st == 403 and doc["error"]["rule"] == "column-not-granted", "SELECT * of it is refused", doc)
        st, doc = q(alice, "SELECT name FROM customers WHERE tier = 'gold'")
        t.check(st == 403 and doc["error"]["rule"] == "column-not-granted",
                "a hidden column in WHERE is refused too", doc)
        st, doc = q(alice, "SELECT * FROM notes")
        t.check(st == 403 and doc["error"]["rule"] == "table-not-granted", "a table absent from the schema is "
                "refused: table-not-granted", doc)
        for sql in ("SELECT body FROM notes JOIN invoices ON invoices.id = notes.id",
                    "SELECT (SELECT body FROM notes LIMIT 1)",
                    "WITH n AS (SELECT body FROM notes) SELECT * FROM n",
                    "SELECT sql FROM sqlite_master", "PRAGMA table_info(notes)",
                    "SELECT * FROM pragma_table_info('notes')", "SELECT region FROM \"Report Q2\""):
            st, doc = q(alice, sql)
            t.check(st == 403 and doc["error"]["rule"] == "table-not-granted",
                    "hidden table refused however it is reached: " + sql, doc)
        st, doc = q(alice, "SELECT i.amount_cents, c.name FROM invoices i JOIN customers c ON c.id = i.customer_id")
        t.check(st == 200 and doc["row_count"] == 3, "a join of granted tables and columns runs", doc)
        st, doc = q(alice, "SELECT name FROM open_invoices")
        t.check(st == 200 and doc["row_count"] == 2, "a granted view runs", doc)
        st, doc = q(gina, "SELECT id, name, amount_cents FROM open_invoices ORDER BY id")
        t.check(st == 403 and doc["error"]["rule"] == "table-not-granted",
                "nor can it be queried: what a SQLite view reads is checked", doc)
        st, doc = q(alice, "WITH open_invoices AS (SELECT body FROM notes) SELECT * FROM open_invoices")
        t.check(st == 403 and doc["error"]["rule"] == "table-not-granted",
                "a WITH clause named like a granted view does not reach a hidden table", doc)
        st, doc = q(alice, "SELECT total FROM report_q1")
        t.check(st == 200, "a table matched by a glob runs", doc)
        st, doc = q(alice, "SELECT count(*) FROM customers")
        t.check(st == 200, "count(*) of a column-limited table runs", doc)

        # writes and DDL under a tables list
        st, doc = q(frank, "INSERT INTO invoices VALUES (9, 1, 100, 'draft')")
        t.check(st == 200 and doc.get("rows_affected") == 1, "an edit grant on a listed table writes it", doc)
        st, doc = q(frank, "UPDATE customers SET name = 'x' WHERE id = 1")
        t.check(st == 403 and doc["error"]["rule"] == "column-not-granted"
                and g.sqlite("crm-staging.db", "SELECT name FROM customers WHERE id = 1") == [("Nordlicht GmbH",)],
                "a column-limited table is not written, and nothing changed", doc)
        st, doc = q(frank, "DELETE FROM notes")
        t.check(st == 403 and doc["error"]["rule"] == "table-not-granted"
                and g.sqlite("crm-staging.db", "SELECT count(*) FROM notes") == [(1,)],
                "an unlisted table is not written", doc)
        st, doc = q(frank, "CREATE VIEW leak AS SELECT * FROM notes")
        t.check(st == 403 and doc["error"]["rule"] == "needs-whole-resource"
                and g.sqlite("crm-staging.db", "SELECT count(*) FROM sqlite_master WHERE name = 'leak'") == [(0,)],
                "DDL needs a grant on the whole resource", doc)

        # --- the CLI
        env = {"GATEHOUSE_URL": "http://127.0.0.1:%d" % g.port, "GATEHOUSE_TOKEN": alice}
        out = g.cli("schema", "--resource", "crm", "--env", "staging", env=env)
        calls[0] += 1
        outputs += [out.stdout, out.stderr]
        t.check(out.returncode == 0 and "table customers (id integer pk, name text not null)" in out.stdout
                and "notes" not in out.stdout, "gatehouse schema prints the text block", out)
        out = g.cli("schema", "--resource", "crm", "--env", "staging", "--format", "json", env=env)
        calls[0] += 1
        outputs += [out.stdout, out.stderr]
        ok = out.returncode == 0
        try:
            ok = ok and {x["name"] for x in json.loads(out.stdout)["tables"]} == {
                "customers", "invoices", "payments", "labels", "open_invoices", "report_q1"}
        except ValueError:
            ok = False
        t.check(ok, "gatehouse schema --format json prints the document", out)
        out = g.cli("schema", "--resource", "crm", "--env", "staging", env=dict(env, GATEHOUSE_TOKEN=dave))
        calls[0] += 1
        outputs += [out.stdout, out.stderr]
        t.check(out.returncode == 1 and "no-grant" in out.stderr and "403" in out.stderr,
                "refused: exit 1 with the rule", out)
        out = g.cli("schema", "--resource", "nope", "--env", "staging", env=env)
        calls[0] += 1
        outputs += [out.stdout, out.stderr]
        t.check(out.returncode == 2 and "404" in out.stderr, "unknown resource: exit 2", out)
        out = g.cli("schema", "--resource", "crm", env=env)
        t.check(out.returncode == 2, "missing --env: usage error", out)
        out = g.cli("schema", "--resource", "a&b=c", "--env", "staging", env=env)
        calls[0] += 1
        t.check(out.returncode == 2 and "404" in out.stderr, "names are encoded into the URL, not spliced", out)

        # --- the audit trail: one schema.read per call, with the decision
        recs = [r for r in g.audit_lines() if r["event"] == "schema.read"]
        t.check(len(recs) == calls[0], "one schema.read record per call (%d)" % calls[0], len(recs))
        allowed = [r for r in recs if r["user"] == "alice" and r["decision"] == "allow"]
        t.check(allowed and allowed[0]["resource"] == "crm" and allowed[0]["environment"] == "staging"
                and allowed[0]["rows"] == 6 and allowed[0]["rule"].startswith("grant:crm/staging/group:analysts/use")
                and allowed[0]["detail"] == {"format": "json", "tables": 6, "truncated": False},
                "an allowed read names resource, environment, the grant, and how many tables", allowed[:1])
        t.check(any(r["user"] == "dave" and r["decision"] == "deny" and r["rule"] == "no-grant" for r in recs)
                and any(r["user"] == "alice" and r["rule"] == "token-environment" for r in recs),
                "refusals are recorded with their rule", [r for r in recs if r["decision"] == "deny"][:3])
        t.check(g.verify().returncode == 0, "the audit chain verifies")

        # --- nothing about paths, secrets or tokens
        everything = "\n".join(outputs) + "\n" + g.server_log()
        leaks = [s for s in (g.tmp, "crm-staging.db", "payroll.db", "master.key", g.data, alice, bob, dave)
                 if s in "\n".join(outputs)]
        t.check(not leaks, "no path, data directory or token in any answer", leaks)
        t.check(alice not in everything and bob not in everything, "no token in the server's log either")
    finally:
        g.close()

    # --- bounded: more tables than one answer holds
    many = "".join("CREATE TABLE t%04d (id INTEGER PRIMARY KEY, v TEXT);" % i for i in range(1010))
    g = lib.Gatehouse(sql=many)
    try:
        g.start()
        bob, _ = g.token("bob", "staging")
        st, doc, _ = g.request("GET", "/v1/schema?resource=crm&environment=staging", token=bob)
        t.check(st == 200 and doc["truncated"] is True and len(doc["tables"]) == 1000,
                "past 1000 tables the answer is cut and says truncated", (st, len(doc.get("tables", [])) if doc else 0))
        st, _, raw = g.request("GET", "/v1/schema?resource=crm&environment=staging&format=text", token=bob)
        text = raw.decode()
        t.check(st == 200 and text.rstrip().endswith("-- truncated: only the first 1000 tables are shown"),
                "the text says so on its last line", text[-200:])
        rec = [r for r in g.audit_lines() if r["event"] == "schema.read"][-1]
        t.check(rec["detail"]["truncated"] is True and rec["rows"] == 1000, "and so does the record", rec)
    finally:
        g.close()


lib.run_suite("schema", body)
