"""Usage analytics (GET /v1/usage, `gatehouse usage`): real traffic through a real server by
several users, apps and environments — reads, denials under different rules, writes, approvals
approved and rejected — then exact counts per group from the API, the client verb and the local
verb; who sees what; fingerprints that group statements differing only in literals; no
parameter or literal value in any answer; incremental ingestion (more traffic, numbers grow by
exactly that); bad input; and a 100,000-record generated log answered in under a second."""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import DEFAULT_SQL, ROOT, Gatehouse, run_suite

POLICY = """\
version: 1
users:
  - name: alice
  - name: bob
  - name: carol
  - name: dave
  - name: erin
  - name: frank
groups:
  - name: analysts
    members: [alice, frank]
  - name: engineers
    members: [bob, carol]
  - name: leads
    members: [carol, dave]
  - name: platform
    members: [erin]
admins: [platform]
environments:
  - name: staging
  - name: production
    approval: writes
    reviewers: [leads]
resources:
  - name: crm
    kind: sqlite
    environments:
      staging:    { path: crm-staging.db }
      production: { path: crm-prod.db }
apps:
  - name: invoices
  - name: reports
grants:
  - { resource: crm, environment: staging, group: analysts, access: use }
  - { resource: crm, environment: staging, group: engineers, access: edit }
  - { resource: crm, environment: production, group: engineers, access: edit }
  - { resource: crm, environment: production, user: dave, access: own }
"""

SECRETS = ["zebra-secret-param", "Cafe Ole", "bob note 4711", "'paid'", "'void'"]


def key(g):
    return (g["app"], g["user"], g["resource"], g["environment"])


def groups_of(doc):
    return {key(g): g for g in (doc or {}).get("groups", [])}


def usage(g, token, query=""):
    return g.request("GET", "/v1/usage" + query, token=token)


def check_group(t, doc, k, what, **want):
    grp = groups_of(doc).get(k)
    if grp is None:
        return t.check(False, what, "no group %r in %r" % (k, list(groups_of(doc))))
    got = {}
    for f, v in want.items():
        if f in ("requested", "approved", "rejected"):
            got[f] = grp["approvals"][f]
        else:
            got[f] = grp[f]
    return t.check(got == want, what, (got, want))


def traffic(t, g):
    """Drives the first round of traffic; returns the tokens."""
    tok = {}
    tok["alice_inv"], _ = g.token("alice", "staging", app="invoices")
    tok["alice_rep"], _ = g.token("alice", "staging", app="reports")
    tok["alice"], _ = g.token("alice", "staging")
    tok["bob"], _ = g.token("bob", "staging")
    tok["bob_prod"], _ = g.token("bob", "production")
    tok["carol_prod"], _ = g.token("carol", "production")
    tok["dave_prod"], _ = g.token("dave", "production")
    tok["frank_prod"], _ = g.token("frank", "production")
    tok["erin"], _ = g.token("erin", "staging")
    tok["frank"], _ = g.token("frank", "staging")
    tok["carol"], _ = g.token("carol", "staging")
    a = tok["alice_inv"]
    sts = []
    for p in (1, 2, "zebra-secret-param"):
        sts.append(g.query(a, "SELECT name FROM customers WHERE id = ?", params=[p])[0])
    sts.append(g.query(a, "SELECT name FROM customers WHERE id = 3")[0])
    sts.append(g.query(a, "SELECT name, tier FROM customers WHERE name = 'Cafe Ole'")[0])
    t.check(sts == [200] * 5, "alice (invoices) ran five reads", sts)
    st1 = g.query(a, "DROP TABLE notes")
    st2 = g.query(a, "SELECT * FROM no_such_table")
    st3 = g.query(a, "SELECT name FROM customers", environment="production")
    t.check([st1[0], st2[0], st3[0]] == [403, 403, 403], "three of alice's statements were denied",
            [st1[1], st2[1], st3[1]])
    t.check(g.query(tok["alice_rep"], "SELECT count(*) FROM invoices")[0] == 200, "alice (reports) read once")
    st = g.query(tok["alice"], "SELECT name FROM customers")
    t.check(st[0] == 403 and st[1]["error"].get("rule") == "needs-app-or-edit",
            "alice without an app is denied (needs-app-or-edit)", st[1])
    st = g.query(tok["bob"], "INSERT INTO notes(body) VALUES (?)", params=["bob note 4711"])
    t.check(st[0] == 200 and st[1].get("rows_affected") == 1, "bob inserted a note", st[1])
    t.check(g.query(tok["bob"], "SELECT count(*) FROM notes")[0] == 200, "bob read the notes")
    st, d1, _ = g.query(tok["bob_prod"], "UPDATE invoices SET status = 'paid' WHERE id = ?", environment="production",
                        params=[3])
    st2, d2, _ = g.query(tok["bob_prod"], "UPDATE invoices SET status = 'void' WHERE id = 2", environment="production")
    t.check(st == 202 and st2 == 202, "bob's two production writes wait for a reviewer", (d1, d2))
    a1, a2 = d1["approval"]["id"], d2["approval"]["id"]
    time.sleep(1.2)  # a measurable time to approve
    st, _, _ = g.request("POST", "/v1/approvals/%s/approve" % a1, body="", token=tok["bob_prod"])
    t.check(st == 403, "bob cannot approve his own write (not counted as a decision)", st)
    st, doc, _ = g.request("POST", "/v1/approvals/%s/approve" % a1, body="", token=tok["carol_prod"])
    t.check(st == 200 and doc.get("rows_affected") == 1, "carol approved the first; it ran", doc)
    st, doc, _ = g.request("POST", "/v1/approvals/%s/reject" % a2, body="", token=tok["carol_prod"])
    t.check(st == 200, "carol rejected the second", doc)
    st = g.query(tok["frank_prod"], "SELECT 1", environment="production")
    t.check(st[0] == 403 and st[1]["error"].get("rule") == "no-grant", "frank has no grant in production", st[1])
    t.check(g.query(tok["dave_prod"], "SELECT count(*) FROM customers", environment="production")[0] == 200,
            "dave (owner) read in production")
    return tok


def expect_round_one(t, doc, label):
    check_group(t, doc, ("invoices", "alice", "crm", "staging"), label + ": alice/invoices/staging",
                queries=7, rows=4, rows_affected=0, errors=0, denied=2,
                denials={"destructive-ddl": 1, "forbidden-statement": 1})
    check_group(t, doc, ("invoices", "alice", "crm", "production"), label + ": alice's wrong-environment token",
                queries=1, rows=0, denied=1, denials={"token-environment": 1})
    check_group(t, doc, ("reports", "alice", "crm", "staging"), label + ": alice/reports", queries=1, rows=1,
                denied=0)
    check_group(t, doc, (None, "alice", "crm", "staging"), label + ": alice without an app", queries=1,
                denied=1, denials={"needs-app-or-edit": 1})
    check_group(t, doc, (None, "bob", "crm", "staging"), label + ": bob/staging", queries=2, rows=1,
                rows_affected=1, denied=0)
    check_group(t, doc, (None, "bob", "crm", "production"), label + ": bob/production approvals", queries=2,
                rows=0, rows_affected=1, requested=2, approved=1, rejected=1)
    check_group(t, doc, (None, "frank", "crm", "production"), label + ": frank's denial", queries=1,
                denials={"no-grant": 1})
    check_group(t, doc, (None, "dave", "crm", "production"), label + ": dave's read", queries=1, rows=1)
    tot = doc.get("totals", {})
    t.check(tot.get("queries") == 16 and tot.get("rows") == 7 and tot.get("rows_affected") == 2
            and tot.get("denied") == 5 and len(doc.get("groups", [])) == 8,
            label + ": totals over the eight groups", tot)
    t.check(tot.get("denials") == {"destructive-ddl": 1, "forbidden-statement": 1, "token-environment": 1,
                                   "needs-app-or-edit": 1, "no-grant": 1}, label + ": denials by rule", tot)


def no_values(t, text, label):
    leaked = [s for s in SECRETS if s in text]
    t.check(not leaked, label + ": no parameter or literal value appears", leaked)


def part_traffic(t):
    g = Gatehouse(policy=POLICY)
    try:
        g.start()
        tok = traffic(t, g)
        env = {"GATEHOUSE_URL": "http://127.0.0.1:%d" % g.port}

        # --- the admin's view, through the API
        st, doc, raw = usage(g, tok["erin"], "?since=1d&top=20")
        t.check(st == 200 and doc["scope"] == {"all": True}, "an admin's report covers everything", doc and doc.get("scope"))
        expect_round_one(t, doc, "API")
        bob = groups_of(doc).get((None, "bob", "crm", "production"), {})
        tta = bob.get("approvals", {}).get("avg_time_to_approve_s")
        t.check(isinstance(tta, float) and 1.0 <= tta < 30, "time to approve is measured (>= 1.2 s sleep)", tta)
        top = {s["example"]: s for s in doc["top_statements"]}
        sel = top.get("SELECT name FROM customers WHERE id = ?")
        t.check(sel is not None and sel["count"] == 4 and sel["resource"] == "crm" and len(sel["fingerprint"]) == 16,
                "the parameterised and the literal SELECT share one fingerprint (4 statements)", doc["top_statements"])
        upd = top.get("UPDATE invoices SET status = ? WHERE id = ?")
        t.check(upd is not None and upd["count"] == 2, "the two UPDATEs differing in literals share one", upd)
        t.check("SELECT name, tier FROM customers WHERE name = ?" in top, "a literal string becomes ?", list(top))
        t.check(doc["top_statements"][0]["example"] == "SELECT name FROM customers WHERE id = ?",
                "the most frequent statement comes first", doc["top_statements"][0])
        no_values(t, raw.decode(), "API")
        t.check(doc["since"].endswith(":00:00.000Z") and doc["bucket_s"] == 3600, "the window is whole hours",
                (doc["since"], doc["until"]))

        # --- the same through the client verb and the local verb
        out = g.cli("usage", "--since", "1d", "--top", "20", "--format", "json", env=dict(env, GATEHOUSE_TOKEN=tok["erin"]))
        cdoc = json.loads(out.stdout) if out.returncode == 0 else None
        t.check(cdoc is not None and groups_of(cdoc) == groups_of(doc) and cdoc["totals"] == doc["totals"],
                "`gatehouse usage` (client) prints the same report", out.stderr)
        no_values(t, out.stdout, "client verb")
        out = g.cli("usage", "--data", g.data, "--since", "1d", "--format", "json")
        ldoc = json.loads(out.stdout) if out.returncode == 0 else None
        t.check(ldoc is not None and groups_of(ldoc) == groups_of(doc) and ldoc["totals"] == doc["totals"],
                "`gatehouse usage --data` (local, while the server runs) gives the same numbers", out.stderr)
        out = g.cli("usage", "--since", "1d", env=dict(env, GATEHOUSE_TOKEN=tok["erin"]))
        lines = out.stdout.splitlines()
        t.check(out.returncode == 0 and any(l.startswith("app ") and "queries" in l for l in lines)
                and any(l.startswith("invoices  alice") for l in lines) and "top statements" in out.stdout
                and any(l.startswith("total") for l in lines),
                "the text format has the table, a total row and the top statements", out.stdout)
        no_values(t, out.stdout, "text format")

        # --- who sees what
        st, doc, _ = usage(g, tok["alice"], "?since=1d")
        t.check(st == 200 and doc["scope"] == {"all": False, "user": "alice", "owned_resources": []}
                and {k[1] for k in groups_of(doc)} == {"alice"} and len(doc["groups"]) == 4
                and doc["totals"]["queries"] == 10,
                "alice sees her own four groups and nothing else", doc)
        top = {s["example"] for s in doc["top_statements"]}
        t.check("UPDATE invoices SET status = ? WHERE id = ?" not in top and "INSERT INTO notes(body) VALUES (?)" not in top,
                "alice's top statements hold only her own", top)
        st, doc, _ = usage(g, tok["alice"], "?since=1d&user=bob")
        t.check(st == 200 and doc["groups"] == [] and doc["totals"]["queries"] == 0 and doc["top_statements"] == [],
                "asking for bob's usage gives alice nothing (filters never widen the scope)", doc)
        st, doc, _ = usage(g, tok["frank"], "?since=1d")
        t.check(st == 200 and list(groups_of(doc)) == [(None, "frank", "crm", "production")],
                "frank sees only his own denial", doc and list(groups_of(doc)))
        st, doc, _ = usage(g, tok["carol"], "?since=1d")
        t.check(st == 200 and doc["groups"] == [], "carol (a reviewer with no statements of her own) sees nothing", doc)
        st, doc, _ = usage(g, tok["dave_prod"], "?since=1d")
        t.check(st == 200 and doc["scope"]["owned_resources"] == ["crm"] and len(doc["groups"]) == 8,
                "dave owns crm: he sees every group of crm", doc and doc.get("scope"))
        st, doc, _ = usage(g, tok["erin"], "?since=1d&user=alice&environment=staging")
        t.check(st == 200 and len(doc["groups"]) == 3 and doc["totals"]["queries"] == 9,
                "filters narrow an admin's report (alice in staging: three groups)", doc and doc["totals"])
        st, doc, _ = usage(g, tok["erin"], "?since=1d&app=reports")
        t.check(st == 200 and list(groups_of(doc)) == [("reports", "alice", "crm", "staging")], "app filter", doc)
        st, doc, _ = usage(g, tok["erin"], "?since=1d&limit=2")
        t.check(st == 200 and len(doc["groups"]) == 2 and doc["groups_total"] == 8 and doc["truncated"] is True
                and doc["totals"]["queries"] == 16 and doc["groups"][0]["queries"] == 7,
                "limit lists the busiest groups; totals still cover all", doc and doc["groups_total"])
        out = g.cli("usage", "--since", "1d", "--format", "json", env=dict(env, GATEHOUSE_TOKEN=tok["alice"]))
        t.check(out.returncode == 0 and {k[1] for k in groups_of(json.loads(out.stdout))} == {"alice"},
                "the client verb as alice shows alice only", out.stdout[:300])

        # --- every read of usage is itself an audited access
        recs = g.audit_lines()
        reads = [r for r in recs if r["event"] == "usage.read"]
        t.check(len(reads) >= 12 and all(r["decision"] == "allow" and r["status"] == "ok" for r in reads)
                and {r["user"] for r in reads} >= {"erin", "alice", "frank", "carol", "dave"},
                "each report is recorded as usage.read with its reader", len(reads))
        last = reads[-1]
        t.check(last["detail"]["indexed_seq"] == last["seq"] - 1,
                "the index was caught up to the record just before the report", last.get("detail"))

        # --- incremental: two more reads, numbers grow by exactly that
        st, before, _ = usage(g, tok["erin"], "?since=1d")
        for p in (1, 2):
            g.query(tok["alice_inv"], "SELECT name FROM customers WHERE id = ?", params=[p])
        st, after, _ = usage(g, tok["erin"], "?since=1d")
        k = ("invoices", "alice", "crm", "staging")
        t.check(groups_of(after)[k]["queries"] == groups_of(before)[k]["queries"] + 2
                and groups_of(after)[k]["rows"] == groups_of(before)[k]["rows"] + 2
                and after["totals"]["queries"] == before["totals"]["queries"] + 2,
                "two more reads add exactly two statements and two rows", (groups_of(before)[k], groups_of(after)[k]))
        top = {s["example"]: s["count"] for s in after["top_statements"]}
        t.check(top.get("SELECT name FROM customers WHERE id = ?") == 6, "and two to their fingerprint", top)
        t.check(g.cli("usage", "--data", g.data, "--format", "json").returncode == 0,
                "the local verb catches up the same index in between")
        st, again, _ = usage(g, tok["erin"], "?since=1d")
        t.check(again["totals"] == after["totals"], "reports read by the local verb are not counted twice",
                (again["totals"], after["totals"]))

        # --- bad input
        for q, why in (("?since=7x", "a malformed duration"), ("?since=-1d", "a negative duration"),
                       ("?since=2026-13-01T00:00:00Z", "an impossible date"), ("?top=101", "top over 100"),
                       ("?limit=0", "limit 0"), ("?user=a%20b", "a user name with a space"),
                       ("?resource=" + "r" * 200, "a resource name too long"),
                       ("?since=1h&until=2h", "since after until"), ("?since=%00", "a NUL byte")):
            st, doc, _ = usage(g, tok["erin"], q)
            t.check(st == 400 and doc["error"]["code"] == "bad_request", "400 for " + why, (st, doc))
        st, _, _ = g.request("GET", "/v1/usage")
        t.check(st == 401, "no token: 401", st)
        st, _, _ = g.request("POST", "/v1/usage", body="{}", token=tok["erin"])
        t.check(st == 405, "POST: 405", st)
        out = g.cli("usage", "--since", "7x", "--data", g.data)
        t.check(out.returncode == 2 and "--since" in out.stderr, "the CLI refuses a bad --since (exit 2)", out.stderr)
        out = g.cli("usage", "--data", g.path("nowhere"))
        t.check(out.returncode == 2, "the CLI refuses a directory that is not a data directory", out.stderr)
        out = g.cli("usage", "--since", "1d", env=dict(env, GATEHOUSE_TOKEN="not.a.token"))
        t.check(out.returncode == 1 and "not.a.token" not in out.stderr, "a bad token: exit 1, not echoed", out.stderr)
        st = os.stat(os.path.join(g.data, "audit", "usage.db"))
        t.check(st.st_mode & 0o777 == 0o600, "the index file is private (0600)", oct(st.st_mode))
        t.check(g.stop() == 0, "the server stops cleanly (background indexer included)")
        t.check(g.verify().returncode == 0, "the audit chain verifies")
    finally:
        g.close()


def build_gen(tmp):
    exe = os.path.join(tmp, "gen")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libsodium"], capture_output=True, text=True).stdout.split()
    subprocess.run(["cc", "-O2", "-std=c11", "-o", exe, os.path.join(ROOT, "bench", "usage", "gen.c")] + flags,
                   check=True)
    return exe


def part_generated(t):
    policy = POLICY.replace("  - name: frank\n", "  - name: frank\n  - name: u001\n")
    g = Gatehouse(policy=policy)
    try:
        exe = build_gen(g.tmp)
        expect = os.path.join(g.tmp, "expect.json")
        t0 = time.monotonic()
        out = subprocess.run([exe, g.data, "100000", "--days", "10", "--resources", "5", "--expect", expect],
                             capture_output=True, text=True)
        gen_s = time.monotonic() - t0
        t.check(out.returncode == 0, "generated 100,000 records (%.1f s)" % gen_s, out.stderr)
        t.check(g.verify().returncode == 0, "the generated log verifies (hash chain as audit.c makes it)")
        e = json.load(open(expect))
        t0 = time.monotonic()
        out = g.cli("usage", "--data", g.data, "--since", "11d", "--top", "100", "--limit", "100000", "--format", "json",
                    timeout=600)
        build_s = time.monotonic() - t0
        doc = json.loads(out.stdout) if out.returncode == 0 else {}
        tot = doc.get("totals", {})
        t.check(all(tot.get(k) == e[k] for k in ("queries", "rows", "rows_affected", "errors", "denied"))
                and tot.get("denials") == e["denials"],
                "the index built from nothing (%.1f s) matches the generator's sums" % build_s, (tot, e))
        a = tot.get("approvals", {})
        t.check((a.get("requested"), a.get("approved"), a.get("rejected")) == (e["requested"], e["approved"], e["rejected"])
                and abs(a.get("avg_time_to_approve_s", 0) - e["tta_ms"] / e["tta_n"] / 1000) < 0.001,
                "approvals and the mean time to approve match", (a, e["requested"], e["approved"], e["rejected"]))
        ex = {}
        for s in doc.get("top_statements", []):
            ex[s["example"]] = ex.get(s["example"], 0) + s["count"]
        t.check(ex == e["examples"], "eleven templates with varying literals: one fingerprint each per resource",
                (ex, e["examples"]))
        uq = {}
        for grp in doc.get("groups", []):
            uq[grp["user"]] = uq.get(grp["user"], 0) + grp["queries"]
        t.check(uq == e["user_queries"], "statements per user match", len(uq))
        g.start()
        admin, _ = g.token("erin", "staging")
        times = []
        for _ in range(3):
            t0 = time.monotonic()
            st, doc7, raw = usage(g, admin, "?since=7d")
            times.append(time.monotonic() - t0)
        t.check(st == 200 and doc7["totals"]["queries"] > 0 and doc7["groups_total"] > 1000,
                "GET /v1/usage?since=7d over the generated log", (st, doc7 and doc7.get("totals")))
        t.check(min(times) < 1.0, "it answers in under a second (%s s)" % ", ".join("%.3f" % x for x in times), times)
        u1, _ = g.token("u001", "staging")
        t0 = time.monotonic()
        st, own, _ = usage(g, u1, "?since=11d")
        own_s = time.monotonic() - t0
        t.check(st == 200 and own["totals"]["queries"] == e["user_queries"].get("u001", 0) and own_s < 1.0,
                "u001 sees exactly their own statements (%.3f s)" % own_s, own and own["totals"])
        t.check(g.stop() == 0, "the server stops cleanly")
    finally:
        g.close()


def body(t):
    part_traffic(t)
    part_generated(t)


run_suite("test_usage", body)
