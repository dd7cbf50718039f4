"""Approvals: writes in production wait for a reviewer who is not the requester (four eyes),
run exactly once (also under concurrent approvals), expire, are decided again under the
current policy, and leave approval.* records in the audit trail. Also the approvals CLI."""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import DEFAULT_POLICY, DEFAULT_SQL, Gatehouse, run_suite

COUNTER_SQL = DEFAULT_SQL + "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);\n" \
                            "INSERT INTO counter VALUES (1, 0);\n"

# The default policy with bob's production access gone (carol keeps hers as a user grant).
POLICY_NO_BOB = DEFAULT_POLICY.replace(
    "  - { resource: crm, environment: production, group: engineers, access: edit }\n",
    "  - { resource: crm, environment: production, user: carol, access: edit }\n")


def amount(g, invoice):
    return g.sqlite("crm-prod.db", "SELECT amount_cents FROM invoices WHERE id = ?", (invoice,))[0][0]


def approve(g, token, aid, verb="approve", conn=None):
    return g.request("POST", "/v1/approvals/%s/%s" % (aid, verb), body="", token=token, conn=conn)


def listed(g, token):
    st, doc, _ = g.request("GET", "/v1/approvals", token=token)
    return st, [a["id"] for a in (doc or {}).get("approvals", [])]


def body(r):
    g = Gatehouse(sql=COUNTER_SQL)
    try:
        g.start()
        bob, _ = g.token("bob", "production")
        carol, _ = g.token("carol", "production")
        dave, _ = g.token("dave", "production")
        alice, _ = g.token("alice", "production", app="invoices")
        carol_staging, _ = g.token("carol", "staging")

        # --- a write in production waits for a reviewer
        st, doc, _ = g.query(bob, "UPDATE invoices SET amount_cents = amount_cents + ? WHERE id = ?",
                             environment="production", params=[100, 2])
        appr = (doc or {}).get("approval") or {}
        aid = appr.get("id", "")
        r.check(st == 202 and aid.startswith("apr_") and appr.get("status") == "pending"
                and doc.get("rule") == "approval-required" and doc.get("request_id", "").startswith("req_"),
                "a write by bob in production is 202 with a pending approval id", doc)
        request_rid = (doc or {}).get("request_id")
        r.check(amount(g, 2) == 1900, "the pending write did not change the data", amount(g, 2))

        st, ids = listed(g, bob)
        r.check(st == 200 and aid in ids, "GET /v1/approvals lists it for the requester (bob)", ids)
        st, ids = listed(g, carol)
        r.check(st == 200 and aid in ids, "GET /v1/approvals lists it for reviewer carol", ids)
        st, ids = listed(g, dave)
        r.check(st == 200 and aid in ids, "GET /v1/approvals lists it for reviewer dave", ids)
        st, ids = listed(g, alice)
        r.check(st == 200 and aid not in ids, "GET /v1/approvals does not list it for alice (neither)", ids)
        st, ids = listed(g, carol_staging)
        r.check(st == 200 and aid not in ids, "GET /v1/approvals with a staging token does not list it", ids)

        st, doc, _ = g.request("GET", "/v1/approvals/" + aid, token=bob)
        a = (doc or {}).get("approval") or {}
        r.check(st == 200 and a.get("id") == aid and a.get("status") == "pending" and a.get("requester") == "bob"
                and a.get("environment") == "production" and a.get("resource") == "crm"
                and a.get("class") == "write" and "amount_cents + ?" in a.get("statement", "")
                and a.get("params") == [100, 2] and a.get("decided_by") is None,
                "GET /v1/approvals/{id} shows the pending write to its requester", doc)
        st, doc, _ = g.request("GET", "/v1/approvals/" + aid, token=alice)
        r.check(st == 404 and doc["error"]["code"] == "not_found", "GET /v1/approvals/{id} is 404 for alice", doc)
        st, doc, _ = g.request("GET", "/v1/approvals/apr_000000000000000000000000", token=carol)
        r.check(st == 404, "GET of an approval that does not exist is 404", doc)

        # --- who may decide
        st, doc, _ = approve(g, bob, aid)
        r.check(st == 403 and doc["error"]["code"] == "four_eyes", "bob approving his own write is 403 four_eyes", doc)
        st, doc, _ = approve(g, bob, aid, "reject")
        r.check(st == 403 and doc["error"]["code"] == "four_eyes", "bob rejecting his own write is 403 four_eyes", doc)
        st, doc, _ = approve(g, alice, aid)
        # someone who may neither see nor decide it learns nothing, not even that it exists
        r.check(st == 404 and (doc or {}).get("error", {}).get("code") == "not_found",
                "alice (production token, not a reviewer) approving is 404, like an unknown id", doc)
        st, doc, _ = approve(g, carol_staging, aid)
        r.check(st == 404, "a staging token cannot approve a production approval (404)", doc)
        r.check(amount(g, 2) == 1900, "refused decisions did not run the write", amount(g, 2))

        # --- carol (reviewer and engineer) approves: runs once
        st, doc, _ = approve(g, carol, aid)
        a = (doc or {}).get("approval") or {}
        r.check(st == 200 and a.get("id") == aid and a.get("status") == "executed" and doc.get("rows_affected") == 1,
                "carol approves: 200 with status executed and rows_affected 1", doc)
        approve_rid = (doc or {}).get("request_id")
        r.check(amount(g, 2) == 2000, "the approved write changed the data exactly once", amount(g, 2))
        st, doc, _ = approve(g, dave, aid)
        r.check(st == 409 and doc["error"]["code"] == "already_decided", "a second approve is 409", doc)
        st, doc, _ = approve(g, dave, aid, "reject")
        r.check(st == 409 and doc["error"]["code"] == "already_decided", "a reject after approval is 409", doc)
        st, doc, _ = approve(g, carol, aid)
        r.check(st == 409, "the same reviewer approving twice is 409", doc)
        r.check(amount(g, 2) == 2000, "repeated decisions did not run the write again", amount(g, 2))
        st, doc, _ = g.request("GET", "/v1/approvals/" + aid, token=dave)
        a = (doc or {}).get("approval") or {}
        r.check(st == 200 and a.get("status") == "executed" and a.get("decided_by") == "carol"
                and (a.get("result") or {}).get("rows_affected") == 1,
                "GET shows executed, decided_by carol, and the result", doc)

        # --- reject flow
        st, doc, _ = g.query(bob, "UPDATE invoices SET status = 'void' WHERE id = 3", environment="production")
        rid2 = ((doc or {}).get("approval") or {}).get("id", "")
        r.check(st == 202 and rid2.startswith("apr_") and rid2 != aid, "a second write goes pending", doc)
        st, doc, _ = approve(g, dave, rid2, "reject")
        r.check(st == 200 and doc["approval"]["status"] == "rejected" and doc["approval"]["id"] == rid2,
                "dave rejects: 200 with status rejected", doc)
        r.check(g.sqlite("crm-prod.db", "SELECT status FROM invoices WHERE id = 3") == [("overdue",)],
                "a rejected write did not change the data")
        st, doc, _ = approve(g, carol, rid2)
        r.check(st == 409 and doc["error"]["code"] == "already_decided", "approving after a rejection is 409", doc)
        st, doc, _ = approve(g, carol, rid2, "reject")
        r.check(st == 409, "rejecting twice is 409", doc)
        r.check(g.sqlite("crm-prod.db", "SELECT status FROM invoices WHERE id = 3") == [("overdue",)],
                "still unchanged after the late approve")
        st, doc, _ = g.request("GET", "/v1/approvals/" + rid2, token=bob)
        r.check(st == 200 and doc["approval"]["status"] == "rejected" and doc["approval"]["decided_by"] == "dave",
                "GET shows rejected, decided_by dave", doc)

        # --- DDL in production also waits
        st, doc, _ = g.query(bob, "CREATE TABLE audit_notes (id INTEGER PRIMARY KEY, body TEXT)",
                             environment="production")
        ddl_id = ((doc or {}).get("approval") or {}).get("id", "")
        r.check(st == 202 and ddl_id.startswith("apr_"), "DDL in production goes pending (202)", doc)
        r.check(g.sqlite("crm-prod.db", "SELECT count(*) FROM sqlite_master WHERE name = 'audit_notes'") == [(0,)],
                "the pending DDL did not run")
        st, doc, _ = g.request("GET", "/v1/approvals/" + ddl_id, token=carol)
        r.check(st == 200 and doc["approval"]["class"] == "ddl", "the pending DDL is class ddl", doc)

        # --- a write that fails when it runs is marked failed and never retried
        st, doc, _ = g.query(bob, "INSERT INTO customers (id, name, tier) VALUES (1, 'Duplicate', 'gold')",
                             environment="production")
        fail_id = ((doc or {}).get("approval") or {}).get("id", "")
        st, doc, _ = approve(g, carol, fail_id)
        r.check(st == 422 and (doc or {}).get("error", {}).get("code") == "statement_failed",
                "an approved write that fails (duplicate key) is 422 statement_failed", doc)
        st, doc, _ = g.request("GET", "/v1/approvals/" + fail_id, token=carol)
        r.check(st == 200 and doc["approval"]["status"] == "failed", "and its approval shows failed", doc)
        st, doc, _ = approve(g, dave, fail_id)
        r.check(st == 409, "a failed approval cannot be approved again", doc)
        r.check(g.sqlite("crm-prod.db", "SELECT name FROM customers WHERE id = 1") == [("Nordlicht GmbH",)],
                "the data is as it was")

        # --- exactly once under concurrent approvals
        pend = []
        for i in range(10):
            st, doc, _ = g.query(bob, "UPDATE counter SET n = n + 1 WHERE id = 1", environment="production")
            if st == 202:
                pend.append(doc["approval"]["id"])
        r.check(len(pend) == 10 and len(set(pend)) == 10, "10 pending increments created", pend)
        r.check(g.sqlite("crm-prod.db", "SELECT n FROM counter") == [(0,)], "no increment ran before approval")
        all_ok = True
        detail = []
        for p in pend:
            barrier = threading.Barrier(8)
            statuses = [None] * 8

            def fire(k, p=p, barrier=barrier, statuses=statuses):
                c = g.conn()
                try:
                    c.connect()
                    barrier.wait(timeout=30)
                    st, _, _ = approve(g, carol if k % 2 else dave, p, conn=c)
                    statuses[k] = st
                except Exception as e:  # counted as a failure below
                    statuses[k] = repr(e)
                finally:
                    c.close()

            threads = [threading.Thread(target=fire, args=(k,)) for k in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            if statuses.count(200) != 1 or statuses.count(409) != 7:
                all_ok = False
                detail.append((p, statuses))
        r.check(all_ok, "8 concurrent approvals of each: exactly one 200, seven 409", detail)
        n = g.sqlite("crm-prod.db", "SELECT n FROM counter")[0][0]
        r.check(n == 10, "the counter increased by exactly 10", n)

        # approve and reject racing: one decision wins, and the write runs only if it was an approval
        mixed = []
        for i in range(4):
            st, doc, _ = g.query(bob, "UPDATE counter SET n = n + 1 WHERE id = 1", environment="production")
            if st == 202:
                mixed.append(doc["approval"]["id"])
        mixed_ok, approvals_won, detail = len(mixed) == 4, 0, []
        for p in mixed:
            barrier = threading.Barrier(8)
            results = [None] * 8

            def decide(k, p=p, barrier=barrier, results=results):
                c = g.conn()
                try:
                    c.connect()
                    barrier.wait(timeout=30)
                    verb = "approve" if k % 2 else "reject"
                    st, doc, _ = approve(g, carol if k < 4 else dave, p, verb=verb, conn=c)
                    results[k] = (verb, st, ((doc or {}).get("approval") or {}).get("status"))
                except Exception as e:  # counted as a failure below
                    results[k] = ("error", repr(e), None)
                finally:
                    c.close()

            threads = [threading.Thread(target=decide, args=(k,)) for k in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            wins = [x for x in results if x and x[1] == 200]
            if len(wins) != 1 or sum(1 for x in results if x and x[1] == 409) != 7 or \
                    wins[0][2] != ("executed" if wins[0][0] == "approve" else "rejected"):
                mixed_ok = False
                detail.append((p, results))
            elif wins[0][0] == "approve":
                approvals_won += 1
        r.check(mixed_ok, "4 approves racing 4 rejects: exactly one decision wins each time", detail)
        n = g.sqlite("crm-prod.db", "SELECT n FROM counter")[0][0]
        r.check(n == 10 + approvals_won, "the counter moved only for the approvals that won (%d)" % approvals_won, n)

        executed = 0
        for p in pend:
            st, doc, _ = g.request("GET", "/v1/approvals/" + p, token=carol)
            executed += st == 200 and doc["approval"]["status"] == "executed"
        r.check(executed == 10, "all 10 approvals show executed", executed)

        # --- re-decision under the current policy
        st, doc, _ = g.query(bob, "UPDATE invoices SET amount_cents = 1 WHERE id = 1", environment="production")
        redo = ((doc or {}).get("approval") or {}).get("id", "")
        r.check(st == 202 and redo, "a pending write before the policy change", doc)
        out = g.apply(POLICY_NO_BOB)
        r.check(out.returncode == 0, "a policy without bob's production grant applies", out.stderr)
        st, doc, _ = approve(g, carol, redo)
        err = (doc or {}).get("error") or {}
        r.check(st == 403 and err.get("rule") == "no-grant",
                "approving after bob lost his grant is 403 with rule no-grant", doc)
        r.check(amount(g, 1) == 125000, "the write was not run under the new policy", amount(g, 1))
        st, doc, _ = g.request("GET", "/v1/approvals/" + redo, token=carol)
        r.check(st == 200 and doc["approval"]["status"] == "failed", "the approval is marked failed", doc)
        st, doc, _ = approve(g, dave, redo)
        r.check(st == 409, "and cannot be approved again", doc)
        r.check(amount(g, 1) == 125000, "still not run", amount(g, 1))
        out = g.apply(DEFAULT_POLICY)
        r.check(out.returncode == 0, "the default policy applies again", out.stderr)

        # --- the CLI
        url = "http://127.0.0.1:%d" % g.port

        def cli(token, *args):
            return g.cli("approvals", *args, env={"GATEHOUSE_URL": url, "GATEHOUSE_TOKEN": token})

        st, doc, _ = g.query(bob, "UPDATE customers SET tier = 'platinum' WHERE id = 2", environment="production")
        c1 = ((doc or {}).get("approval") or {}).get("id", "")
        st2, doc, _ = g.query(bob, "UPDATE customers SET tier = 'bronze' WHERE id = 3", environment="production")
        c2 = ((doc or {}).get("approval") or {}).get("id", "")
        r.check(st == 202 and st2 == 202 and c1 and c2, "two more pending writes for the CLI")
        out = cli(carol, "list")
        r.check(out.returncode == 0 and c1 in out.stdout and c2 in out.stdout and "pending" in out.stdout
                and "tier = 'platinum'" in out.stdout,
                "approvals list as a reviewer exits 0 and shows the pending writes", out.stdout + out.stderr)
        out = cli(alice, "list")
        r.check(out.returncode == 0 and c1 not in out.stdout, "approvals list as alice does not show them",
                out.stdout + out.stderr)
        out = cli(bob, "get", c1)
        r.check(out.returncode == 0 and c1 in out.stdout and "requester    bob" in out.stdout
                and "status       pending" in out.stdout, "approvals get prints the approval", out.stdout + out.stderr)
        out = cli(bob, "get", c1, "--json")
        ok = False
        try:
            ok = out.returncode == 0 and json.loads(out.stdout)["approval"]["id"] == c1
        except ValueError:
            pass
        r.check(ok, "approvals get --json prints the document", out.stdout)
        out = cli(bob, "approve", c1)
        r.check(out.returncode == 1 and "four_eyes" in out.stderr, "approvals approve of one's own write exits 1",
                out.stdout + out.stderr)
        out = cli(dave, "approve", c1)
        r.check(out.returncode == 0 and ("approval %s: executed" % c1) in out.stdout and "1 row affected" in out.stdout,
                "approvals approve as a reviewer exits 0 and says executed", out.stdout + out.stderr)
        r.check(g.sqlite("crm-prod.db", "SELECT tier FROM customers WHERE id = 2") == [("platinum",)],
                "the CLI approval ran the write")
        out = cli(carol, "approve", c1)
        r.check(out.returncode == 1 and "409" in out.stderr, "approvals approve of a decided write exits 1",
                out.stdout + out.stderr)
        out = cli(carol, "reject", c2)
        r.check(out.returncode == 0 and ("approval %s: rejected" % c2) in out.stdout,
                "approvals reject exits 0 and says rejected", out.stdout + out.stderr)
        r.check(g.sqlite("crm-prod.db", "SELECT tier FROM customers WHERE id = 3") == [("gold",)],
                "the CLI rejection did not run the write")
        out = cli(dave, "reject", c2)
        r.check(out.returncode == 1, "approvals reject of a decided write exits 1", out.stdout + out.stderr)
        out = cli(alice, "approve", c2)
        r.check(out.returncode != 0, "approvals approve as a non-reviewer fails", out.stdout + out.stderr)
        out = cli(carol, "approve", "NOT-AN-ID")
        r.check(out.returncode == 2, "approvals approve with a malformed id is a usage error (2)", out.stderr)
        out = cli(carol, "frobnicate")
        r.check(out.returncode == 2, "approvals with an unknown sub-verb is a usage error (2)", out.stderr)
        out = g.cli("approvals", "list", env={"GATEHOUSE_URL": url, "GATEHOUSE_TOKEN": ""})
        r.check(out.returncode == 2 and "GATEHOUSE_TOKEN" in out.stderr, "approvals without a token is a usage error")

        # --- expiry (restart with a short ttl)
        rc = g.stop()
        r.check(rc == 0, "server stops cleanly before the restart", rc)
        g.start("--approval-ttl", "2s")
        st, doc, _ = approve(g, carol, ddl_id)
        r.check(st == 200 and (doc or {}).get("approval", {}).get("status") == "executed",
                "a write left pending across a restart can be approved after it (the DDL runs)", doc)
        r.check(g.sqlite("crm-prod.db", "SELECT count(*) FROM sqlite_master WHERE name = 'audit_notes'") == [(1,)],
                "the approved DDL created the table")
        st, doc, _ = g.query(bob, "UPDATE invoices SET amount_cents = 7 WHERE id = 2", environment="production")
        exp_id = ((doc or {}).get("approval") or {}).get("id", "")
        r.check(st == 202 and exp_id, "a pending write under --approval-ttl 2s", doc)
        time.sleep(3.2)
        st, doc, _ = approve(g, carol, exp_id)
        r.check(st == 409 and (doc or {}).get("error", {}).get("code") == "expired", "approving after 3 s is 409 expired",
                doc)
        st, doc, _ = g.request("GET", "/v1/approvals/" + exp_id, token=bob)
        r.check(st == 200 and doc["approval"]["status"] == "expired", "GET shows status expired", doc)
        st, doc, _ = approve(g, dave, exp_id, "reject")
        r.check(st == 409, "rejecting an expired approval is 409", doc)
        r.check(amount(g, 2) == 2000, "the expired write never ran", amount(g, 2))

        rc = g.stop()
        r.check(rc == 0, "server stops cleanly", rc)

        # --- the audit trail
        lines = g.audit_lines()
        req = [l for l in lines if l["event"] == "approval.request" and (l.get("detail") or {}).get("approval") == aid]
        r.check(len(req) == 1 and req[0]["user"] == "bob" and req[0]["request_id"] == request_rid
                and req[0]["decision"] == "pending" and req[0]["status"] == "pending"
                and req[0]["environment"] == "production" and req[0]["class"] == "write",
                "approval.request record for the write (user bob, the 202's request_id)", req)
        apv = [l for l in lines if l["event"] == "approval.approve" and (l.get("detail") or {}).get("approval") == aid]
        good = [l for l in apv if l["status"] == "approved"]
        r.check(len(good) == 1 and good[0]["user"] == "carol" and good[0]["decision"] == "allow"
                and good[0]["request_id"] == approve_rid,
                "one approval.approve record by carol with status approved", apv)
        refused = [l for l in apv if l["status"] == "refused"]
        r.check(any(l["user"] == "bob" and l["rule"] == "four_eyes" for l in refused)
                and any(l["user"] == "dave" and l["rule"] == "already_decided" for l in refused),
                "refused approvals are recorded (four_eyes, already_decided)", refused)
        ex = [l for l in lines if l["event"] == "approval.execute" and (l.get("detail") or {}).get("approval") == aid]
        r.check(len(ex) == 1 and ex[0]["user"] == "bob" and ex[0]["detail"].get("approved_by") == "carol"
                and ex[0]["status"] == "ok" and ex[0]["rows"] == 1 and ex[0]["request_id"] == approve_rid,
                "one approval.execute record: user = requester bob, detail.approved_by = carol, rows 1", ex)
        rej = [l for l in lines if l["event"] == "approval.reject" and (l.get("detail") or {}).get("approval") == rid2
               and l["status"] == "rejected"]
        r.check(len(rej) == 1 and rej[0]["user"] == "dave", "one approval.reject record by dave", rej)
        execs = [l for l in lines if l["event"] == "approval.execute" and (l.get("detail") or {}).get("approval") in pend]
        r.check(len(execs) == 10 and len({l["detail"]["approval"] for l in execs}) == 10,
                "exactly one approval.execute record per raced approval", len(execs))
        redo_ex = [l for l in lines if l["event"] == "approval.execute" and (l.get("detail") or {}).get("approval") == redo]
        redo_den = [l for l in lines if l["event"] == "approval.approve" and (l.get("detail") or {}).get("approval") == redo
                    and l["status"] == "denied"]
        r.check(not redo_ex and len(redo_den) == 1 and redo_den[0]["rule"] == "no-grant",
                "the re-decided approval is recorded as denied (no-grant) and never executed", redo_den)
        exp_ex = [l for l in lines if l["event"] == "approval.execute" and (l.get("detail") or {}).get("approval") == exp_id]
        r.check(not exp_ex, "the expired approval has no execute record")
        out = g.verify()
        r.check(out.returncode == 0 and out.stdout.startswith("ok: "), "audit verify is ok", out.stdout + out.stderr)
    finally:
        g.close()


run_suite("test_approvals", body)
