"""PostgreSQL resources over the HTTP API: results and types, parameters, one statement per
request, session statements, syntax errors, limits, approvals exactly once, and the audit."""
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
import pgfix  # noqa: E402



def main(t):
    with pgfix.PgGatehouse() as f:
        f.start("--max-rows", "5", "--statement-timeout", "2s")
        bob, _ = f.gh.token("bob", "staging")
        q = f.gh.query

        st, doc, _ = q(bob, "SELECT id, name, tier FROM customers ORDER BY id")
        t.check(st == 200 and doc["columns"] == ["id", "name", "tier"] and doc["row_count"] == 3
                and doc["rows"][0] == [1, "Nordlicht GmbH", "gold"], "a read returns columns and typed rows", doc)

        st, doc, _ = q(bob, "SELECT name FROM customers WHERE id = $1 AND tier = $2", params=[3, "gold"])
        t.check(st == 200 and doc["rows"] == [["Brightwater"]], "$1/$2 parameters bind by position", doc)

        st, doc, _ = q(bob, "SELECT name FROM customers WHERE name = $1", params=["x' OR '1'='1"])
        t.check(st == 200 and doc["row_count"] == 0, "a parameter is a value, never SQL", doc)

        st, doc, _ = q(bob, "SELECT 1::int2 AS a, 2::int8 AS b, 1.5::float8 AS c, 12.50::numeric AS d, true AS e, "
                            "NULL::text AS f, '{\"k\": [1]}'::jsonb AS g, '\\x00ff'::bytea AS h, "
                            "'NaN'::float8 AS i, now()::date IS NOT NULL AS j")
        row = doc["rows"][0] if st == 200 else None
        t.check(row is not None and row[:6] == [1, 2, 1.5, 12.5, True, None] and row[6] == {"k": [1]}
                and row[7] == {"base64url": "AP8"} and row[8] == "NaN" and row[9] is True,
                "types map to JSON: integers, floats, numeric, booleans, NULL, json, bytea as base64url, NaN as text",
                doc)

        st, doc, _ = q(bob, "SELECT $1::bytea AS b", params=[{"base64url": "AP8", "type": 17}])
        t.check(st == 200 and doc["rows"] == [[{"base64url": "AP8"}]], "a {base64url, type} parameter binds bytes",
                doc)
        st, doc, _ = q(bob, "SELECT $1::int", params=[[1, 2]])
        t.check(st == 400 and doc["error"]["code"] == "bad_params", "an array parameter is refused with 400", doc)

        st, doc, _ = q(bob, "SELECT generate_series(1, 100) AS n")
        t.check(st == 200 and doc["row_count"] == 5 and doc["truncated"] is True,
                "--max-rows caps the rows and says truncated", doc)

        st, doc, _ = q(bob, "SELECT pg_sleep(5)")
        t.check(st == 504 and doc["error"]["code"] == "statement_timeout", "--statement-timeout cancels: 504", doc)

        st, doc, _ = q(bob, "SELECT 1; SELECT 2")
        t.check(st == 403 and doc["error"]["rule"] == "one-statement-per-request",
                "two statements in one request are refused", doc)
        for sql in ("BEGIN", "COMMIT", "SET LOCAL work_mem = '64MB'", "SHOW work_mem"):
            st, doc, _ = q(bob, sql)
            t.check(st == 403 and doc["error"]["rule"] == "session-statement",
                    "session statement refused over HTTP: " + sql, doc)

        st, doc, _ = q(bob, "SELEC name FROM customers")
        t.check(st == 403 and doc["error"]["rule"] == "forbidden-statement" and "syntax error" in doc["error"]["message"]
                and "position 1" in doc["error"]["message"], "a statement that does not parse: the parser's message "
                "and position", doc)

        st, doc, _ = q(bob, "SELECT nope FROM customers")
        t.check(st == 422 and doc["error"]["code"] == "statement_failed" and "nope" in doc["error"]["message"],
                "the database's own error comes back as 422", doc)

        st, doc, _ = q(bob, "INSERT INTO customers VALUES ($1, $2, $3) RETURNING id", params=[10, "Delta", "bronze"])
        t.check(st == 200 and doc.get("rows") == [[10]] and doc.get("rows_affected") == 1,
                "a write with RETURNING returns its rows and rows_affected", doc)
        t.check(f.direct("SELECT name FROM customers WHERE id = 10") == [("Delta",)], "and it committed")

        st, doc, _ = q(bob, "INSERT INTO customers VALUES (1, 'dup', 'x')")
        t.check(st == 422 and "duplicate key" in doc["error"]["message"], "a failing write: 422, nothing kept", doc)

        # a read runs READ ONLY even when it calls a function that writes
        f.pg.sql("CREATE FUNCTION public.sneaky() RETURNS int LANGUAGE sql AS "
                 "'DELETE FROM customers WHERE id = 10 RETURNING 1'", db="crm_staging")
        st, doc, _ = q(bob, "SELECT sneaky()")
        t.check(st == 422 and "read-only transaction" in doc["error"]["message"],
                "a 'read' that calls a writing function fails inside BEGIN READ ONLY", doc)
        t.check(f.direct("SELECT count(*) FROM customers WHERE id = 10") == [(1,)], "and the row is still there")

        # claims for RLS: the statement sees who is asking
        alice, _ = f.gh.token("alice", "staging", app="invoices")
        st, doc, _ = q(alice, "SELECT current_setting('gatehouse.user'), current_setting('gatehouse.groups'), "
                              "current_setting('gatehouse.app'), current_setting('gatehouse.environment')")
        t.check(st == 200 and doc["rows"] == [["alice", "analysts", "invoices", "staging"]],
                "gatehouse.user/groups/app/environment are set in the transaction", doc)
        st, doc, _ = q(alice, "SELECT body FROM notes")
        t.check(st == 200 and doc["rows"] == [["alice's note"]], "RLS: alice sees only her note", doc)

        # approvals: a production write waits, is approved once under concurrent approvals
        bobp, _ = f.gh.token("bob", "production")
        st, doc, _ = q(bobp, "UPDATE invoices SET amount_cents = amount_cents + $1 WHERE id = $2",
                       params=[100, 1], environment="production")
        t.check(st == 202 and doc["approval"]["status"] == "pending", "a production write waits for a reviewer", doc)
        apr = doc["approval"]["id"]
        t.check(f.direct("SELECT amount_cents FROM invoices WHERE id = 1", db="crm_prod") == [(125000,)],
                "nothing ran before approval")
        st, doc, _ = f.gh.request("POST", "/v1/approvals/%s/approve" % apr, token=bobp)
        t.check(st == 403, "the requester cannot approve their own write", doc)
        carol, _ = f.gh.token("carol", "production")
        dave, _ = f.gh.token("dave", "production")
        results = []

        def approve(tok):
            results.append(f.gh.request("POST", "/v1/approvals/%s/approve" % apr, token=tok)[0])
        threads = [threading.Thread(target=approve, args=(carol if i % 2 else dave,)) for i in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        t.check(results.count(200) == 1 and results.count(409) == 7, "eight concurrent approvals: one runs",
                results)
        t.check(f.direct("SELECT amount_cents FROM invoices WHERE id = 1", db="crm_prod") == [(125100,)],
                "the write ran exactly once")
        recs = [r for r in f.gh.audit_lines() if r["event"] == "approval.execute"]
        t.check(len(recs) == 1 and recs[0]["user"] == "bob", "approval.execute is recorded once, as the requester",
                recs)

        # every request is in the audit trail, and the chain holds
        lines = f.gh.audit_lines()
        t.check(any(r["event"] == "query" and r["statement"] == "SELECT sneaky()" and r["resource"] == "crm"
                    for r in lines), "reads are audited with the statement", len(lines))
        t.check(any(r.get("rule") == "session-statement" for r in lines), "refusals are audited with their rule")
        out = f.gh.verify()
        t.check(out.returncode == 0 and out.stdout.startswith("ok:"), "audit verify ok", out.stdout + out.stderr)

        # an unset secret: the resource is unavailable, and says so without details
        pol = pgfix.POLICY.replace("production: { secret: crm-prod-dsn }", "production: { secret: not-set }")
        f.gh.apply(pol)
        st, doc, _ = q(bobp, "SELECT 1", environment="production")
        t.check(st == 502 and doc["error"]["code"] == "resource_unavailable" and "not-set" not in json.dumps(doc),
                "a missing secret gives 502 resource_unavailable, naming nothing internal", doc)


if __name__ == "__main__":
    lib.run_suite("test_pg_http", main)
