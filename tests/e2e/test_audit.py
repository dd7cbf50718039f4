"""Audit trail: every request leaves a durable record before its response, records chain by
hash, verify finds every kind of tampering and names the first bad line, the server fails
closed when the log cannot be written, GET /v1/audit is for admins and owners, and no record
or log line holds a token."""
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib import Gatehouse, run_suite


def log_path(g, data=None):
    return os.path.join(data or g.data, "audit", "audit.log")


def raw_lines(path):
    with open(path, "rb") as f:
        return f.read().splitlines(keepends=True)


def by_request(g, rid):
    return [l for l in g.audit_lines() if l.get("request_id") == rid]


def local_query(g, token, sql, environment="staging", params=None):
    """A query on its own connection; returns (status, doc, client address as the server sees it)."""
    c = g.conn()
    try:
        c.connect()
        host, port = c.sock.getsockname()[:2]
        st, doc, _ = g.query(token, sql, environment=environment, params=params, conn=c)
    finally:
        c.close()
    return st, doc, "%s:%d" % (host, port)


def verify_dir(g, data):
    out = g.cli("audit", "verify", "--data", data)
    m = re.search(r"FAILED at line (\d+)(?: \(seq (-?\d+)\))?", out.stdout)
    line = int(m.group(1)) if m else None
    seq = int(m.group(2)) if m and m.group(2) else None
    return out, line, seq


def body(r):
    g = Gatehouse()
    tokens = []
    try:
        g.start()
        alice, _ = g.token("alice", "staging", app="invoices")
        alice_noapp, _ = g.token("alice", "staging")
        bob, _ = g.token("bob", "staging")
        bob_prod, _ = g.token("bob", "production")
        erin, _ = g.token("erin", "staging")
        dave, _ = g.token("dave", "production")
        tokens += [alice, alice_noapp, bob, bob_prod, erin, dave]

        # --- one governed read, field by field
        sql = "SELECT id, name FROM customers WHERE tier = ? ORDER BY id"
        st, doc, client = local_query(g, alice, sql, params=["gold"])
        r.check(st == 200 and doc["row_count"] == 2, "a governed read answers 200", doc)
        rid = (doc or {}).get("request_id")
        recs = by_request(g, rid)
        rec = recs[0] if recs else {}
        r.check(len(recs) == 1 and rec.get("event") == "query",
                "the read has exactly one 'query' record, present when the response arrives", recs)
        r.check(rec.get("decision") == "allow" and rec.get("status") == "ok" and rec.get("rows") == 2
                and rec.get("class") == "read" and rec.get("tables") == ["customers"],
                "record: decision allow, status ok, rows 2, class read, tables [customers]", rec)
        r.check(rec.get("statement") == sql and rec.get("params") == ["gold"],
                "record: statement and params as sent", rec)
        r.check(rec.get("user") == "alice" and rec.get("groups") == ["analysts"] and rec.get("app") == "invoices"
                and rec.get("environment") == "staging" and rec.get("resource") == "crm",
                "record: user, groups, app, environment, resource", rec)
        r.check(rec.get("client") == client and rec.get("request_id") == rid and rec.get("rule", "").startswith("grant:"),
                "record: client address, request_id equal to the response's, rule names the grant", rec)

        # --- counts: N reads, N denials, N pending each leave exactly one record before the response
        before = len(g.audit_lines())
        missing = []
        rids = {"read": [], "deny": [], "pending": []}
        for i in range(5):
            st, doc, _ = g.query(alice, "SELECT ? AS n", params=[i])
            rid_i = (doc or {}).get("request_id")
            rids["read"].append(rid_i)
            if st != 200 or len(by_request(g, rid_i)) != 1:
                missing.append(("read", i, st))
        denials = [(alice_noapp, "SELECT * FROM customers", "needs-app-or-edit"),
                   (bob, "DROP TABLE customers", "destructive-ddl"),
                   (erin, "SELECT 1", "no-grant")]
        for tok, q, rule in denials:
            st, doc, _ = g.query(tok, q)
            err = (doc or {}).get("error") or {}
            rids["deny"].append(err.get("request_id"))
            recs = by_request(g, err.get("request_id"))
            if st != 403 or len(recs) != 1 or recs[0]["decision"] != "deny" or recs[0]["status"] != "denied" or \
                    recs[0]["rule"] != rule or recs[0]["rule"] != err.get("rule"):
                missing.append(("deny", q, st, recs))
        for i in range(3):
            st, doc, _ = g.query(bob_prod, "UPDATE notes SET body = ? WHERE id = 1", environment="production",
                                 params=["p%d" % i])
            rids["pending"].append((doc or {}).get("request_id"))
            recs = by_request(g, (doc or {}).get("request_id"))
            if st != 202 or len(recs) != 1 or recs[0]["event"] != "approval.request":
                missing.append(("pending", i, st, recs))
        r.check(not missing, "each read, denial and pending write has its record when the response arrives", missing)
        after = g.audit_lines()
        r.check(len(after) - before == 5 + 3 + 3, "11 requests added exactly 11 records", len(after) - before)
        r.check(all(sum(1 for l in after if l["request_id"] == x and l["event"] == "query" and l["decision"] == "allow"
                        and l["status"] == "ok") == 1 for x in rids["read"]),
                "exactly one allow/ok 'query' record per read")
        r.check(all(sum(1 for l in after if l["request_id"] == x and l["decision"] == "deny") == 1 for x in rids["deny"]),
                "exactly one deny record per denial")
        r.check(all(sum(1 for l in after if l["request_id"] == x and l["decision"] == "pending") == 1
                    for x in rids["pending"]), "exactly one pending record per pending write")

        # --- a write in staging: decision first (started), then the outcome
        st, doc, _ = g.query(bob, "UPDATE customers SET tier = 'silver' WHERE id IN (1, 3)")
        r.check(st == 200 and doc.get("rows_affected") == 2, "a write in staging runs", doc)
        recs = by_request(g, (doc or {}).get("request_id"))
        ev = [(l["event"], l["status"]) for l in recs]
        r.check(ev == [("query", "started"), ("query.outcome", "ok")],
                "the write has a 'query' started record, then a 'query.outcome' record", ev)
        r.check(len(recs) == 2 and recs[0]["rows"] is None and recs[1]["rows"] == 2 and recs[1]["class"] == "write"
                and recs[1]["tables"] == ["customers"] and recs[0]["decision"] == "allow",
                "the outcome record carries rows 2", recs)

        # --- operator verbs leave records
        tok, tid = g.token("carol", "staging")
        tokens.append(tok)
        lines = g.audit_lines()
        iss = [l for l in lines if l["event"] == "token.issue" and (l.get("detail") or {}).get("token_id") == tid]
        r.check(len(iss) == 1 and iss[0]["user"] == "carol" and iss[0]["environment"] == "staging",
                "token issue leaves a token.issue record with the token id", iss)
        st, doc, _ = g.query(tok, "SELECT 1")
        r.check(st == 200, "the new token works", doc)
        out = g.cli("token", "revoke", "--data", g.data, tid)
        r.check(out.returncode == 0, "token revoke", out.stderr)
        rev = [l for l in g.audit_lines() if l["event"] == "token.revoke" and (l.get("detail") or {}).get("token_id") == tid]
        r.check(len(rev) == 1, "token revoke leaves a token.revoke record", rev)
        st, doc, _ = g.query(tok, "SELECT 1")
        r.check(st == 401, "the revoked token is refused", doc)
        applies = [l for l in g.audit_lines() if l["event"] == "policy.apply"]
        out = g.apply(open(g.path("policy.yaml")).read())
        new = [l for l in g.audit_lines() if l["event"] == "policy.apply"]
        r.check(out.returncode == 0 and len(new) == len(applies) + 1
                and new[-1]["detail"]["version"] == applies[-1]["detail"]["version"] + 1
                and len(new[-1]["detail"]["sha256"]) == 64,
                "policy apply leaves a policy.apply record with the next version", new[-1:])

        # --- GET /v1/audit
        st, doc, _ = g.request("GET", "/v1/audit?limit=1000", token=erin)
        recs = (doc or {}).get("records") or []
        file_lines = g.audit_lines()
        # the read itself is recorded after the records it returns (event audit.read)
        r.check(st == 200 and [x["seq"] for x in recs] == [l["seq"] for l in file_lines[:len(recs)]] and
                len(recs) == len(file_lines) - 1 and recs[0]["event"] == "data.init"
                and file_lines[-1]["event"] == "audit.read" and file_lines[-1]["user"] == "erin"
                and file_lines[-1]["rows"] == len(recs),
                "erin (admin) reads every record, and her read is recorded", (st, len(recs), len(file_lines)))
        st, doc, _ = g.request("GET", "/v1/audit?limit=1000", token=dave)
        recs = (doc or {}).get("records") or []
        crm = [l["seq"] for l in g.audit_lines() if l.get("resource") == "crm"]
        r.check(st == 200 and recs and all(x.get("resource") == "crm" for x in recs)
                and [x["seq"] for x in recs] == crm[:len(recs)] and len(recs) == len(crm),
                "dave (own on crm/production) reads only crm records", (st, len(recs), len(crm)))
        st, doc, _ = g.request("GET", "/v1/audit", token=bob)
        r.check(st == 403 and doc["error"]["code"] == "forbidden", "bob (edit, not owner or admin) gets 403", doc)
        st, doc, _ = g.request("GET", "/v1/audit", token=alice)
        r.check(st == 403, "alice gets 403", doc)
        st, doc, _ = g.request("GET", "/v1/audit")
        r.check(st == 401, "no token gets 401", doc)

        st, doc, _ = g.request("GET", "/v1/audit?limit=3", token=erin)
        r.check(st == 200 and [x["seq"] for x in doc["records"]] == [1, 2, 3] and doc["next_since"] == 3,
                "?limit=3 returns seq 1..3 and next_since 3", doc and {k: v for k, v in doc.items() if k != "records"})
        st, doc, _ = g.request("GET", "/v1/audit?since=3&limit=3", token=erin)
        r.check(st == 200 and [x["seq"] for x in doc["records"]] == [4, 5, 6] and doc["next_since"] == 6,
                "?since=3&limit=3 returns seq 4..6 and next_since 6",
                doc and ([x["seq"] for x in doc.get("records", [])], doc.get("next_since")))
        seen, since, pages = [], 0, 0
        while pages < 200:
            st, doc, _ = g.request("GET", "/v1/audit?since=%d&limit=7" % since, token=erin)
            if st != 200 or not doc.get("records"):
                break
            seen += [x["seq"] for x in doc["records"]]
            r_next = doc["next_since"]
            if r_next <= since:
                break
            since = r_next
            pages += 1
        # every page is itself recorded, so the log grows while it is paged: the pages still
        # visit each record once, in order, up to where the last page ended
        r.check(len(seen) > 0 and seen == list(range(1, len(seen) + 1)),
                "paging with next_since visits every record once, in order", seen[:40])
        last_seq = g.audit_lines()[-1]["seq"]
        st, doc, _ = g.request("GET", "/v1/audit?limit=1000", token=dave)
        r.check(st == 200 and doc["next_since"] == last_seq,
                "next_since advances past records dave may not see", (doc or {}).get("next_since"))
        st, doc, _ = g.request("GET", "/v1/audit?limit=0", token=erin)
        r.check(st == 400, "?limit=0 is 400", doc)
        st, doc, _ = g.request("GET", "/v1/audit?since=abc", token=erin)
        r.check(st == 400, "?since=abc is 400", doc)

        rc = g.stop()
        r.check(rc == 0, "server stops cleanly", rc)

        # --- the chain
        raws = raw_lines(log_path(g))
        recs = [json.loads(x) for x in raws]
        chain_ok, prev = True, "0" * 64
        for i, (raw, rec) in enumerate(zip(raws, recs)):
            text = raw.rstrip(b"\n")
            cut = text.rindex(b',"hash":"')
            digest = hashlib.sha256(text[:cut] + b"}").hexdigest()
            if rec["seq"] != i + 1 or rec["prev"] != prev or rec["hash"] != digest:
                chain_ok = False
                break
            prev = rec["hash"]
        r.check(chain_ok and len(recs) > 20, "seq is consecutive from 1, prev is the previous hash, hash is SHA-256",
                len(recs))
        out = g.verify()
        r.check(out.returncode == 0 and out.stdout.strip() == "ok: %d records" % len(recs),
                "gatehouse audit verify prints 'ok: N records' and exits 0", out.stdout + out.stderr)

        # --- tampering, each on a fresh copy of the data directory
        n = len(raws)
        k = n // 2

        def tampered(name, change):
            d = os.path.join(g.tmp, "copy-" + name)
            shutil.copytree(g.data, d)
            lines = raw_lines(log_path(g, d))
            with open(log_path(g, d), "wb") as f:
                f.write(b"".join(change(lines)))
            return verify_dir(g, d)

        def edit(lines, at=k, middle=True):
            """Changes one letter or digit near the middle of line `at`, or the first character of its
            request_id after 'req_' (JSON stays valid either way)."""
            text = bytearray(lines[at - 1])
            pos = len(text) // 2 if middle else bytes(text).index(b'"request_id":"req_') + 18
            while not chr(text[pos]).isalnum():
                pos += 1
            ch = chr(text[pos])
            text[pos] = ord("0" if ch == "9" else "a" if ch == "z" else "A" if ch == "Z" else chr(ord(ch) + 1))
            return lines[:at - 1] + [bytes(text)] + lines[at:]

        def rehash(lines, start):
            """A forger without the store: recomputes prev and hash from line `start` to the end."""
            out = list(lines[:start - 1])
            prev = json.loads(out[-1])["hash"] if out else "0" * 64
            for line in lines[start - 1:]:
                text = line.rstrip(b"\n")
                content = text[:text.rindex(b',"hash":"')]
                content = re.sub(rb'"prev":"[0-9a-f]{64}"$', ('"prev":"%s"' % prev).encode(), content)
                prev = hashlib.sha256(content + b"}").hexdigest()
                out.append(content + b',"hash":"' + prev.encode() + b'"}\n')
            return out

        cases = [  # name, change, what was done, line and seq verify must name
            ("edit", edit, "a byte edited in line %d" % k, k, k),
            ("delete", lambda l: l[:k - 1] + l[k:], "line %d deleted" % k, k, k + 1),
            ("insert", lambda l: l[:k] + [l[k - 1]] + l[k:], "a copy of line %d inserted as line %d" % (k, k + 1),
             k + 1, k),
            ("swap", lambda l: l[:k - 1] + [l[k], l[k - 1]] + l[k + 1:], "lines %d and %d swapped" % (k, k + 1),
             k, k + 1),
            ("remove-last", lambda l: l[:-1], "the last line (%d) removed" % n, n, n),
        ]
        for name, change, what, want_line, want_seq in cases:
            out, line, seq = tampered(name, change)
            r.check(out.returncode == 1 and line == want_line and seq == want_seq,
                    "verify after %s: exit 1, names line %d (seq %d)" % (what, want_line, want_seq),
                    out.stdout + out.stderr)
        out, line, seq = tampered("forge-last", lambda l: rehash(edit(l, n, False), n))
        r.check(out.returncode == 1 and line == n and seq == n,
                "verify after editing the last line and recomputing its hash: names line %d (the store's head)" % n,
                out.stdout + out.stderr)
        out, line, seq = tampered("rewrite", lambda l: rehash(edit(l, k, False), k))
        r.check(out.returncode == 1 and line == n and seq == n,
                "verify after editing line %d and rewriting the chain to the end: caught at the head (line %d)" % (k, n),
                out.stdout + out.stderr)
        out, line, seq = tampered("cut", lambda l: l[:-1] + [l[-1][:len(l[-1]) // 2]])
        r.check(out.returncode == 1 and line == n and seq in (None, n),
                "verify after cutting the last line in half: exit 1, names line %d" % n, out.stdout + out.stderr)
        out = g.verify()
        r.check(out.returncode == 0, "the original log still verifies", out.stdout)

        def serve_on(d):
            try:
                return g.cli("serve", "--data", d, "--http", "127.0.0.1:0", timeout=30)
            except subprocess.TimeoutExpired as e:
                return e

        out = serve_on(os.path.join(g.tmp, "copy-remove-last"))
        r.check(getattr(out, "returncode", None) not in (0, None) and "truncated" in (out.stderr or ""),
                "serve refuses a log whose last record was removed", getattr(out, "stderr", out))
        cut_log = log_path(g, os.path.join(g.tmp, "copy-cut"))
        with open(cut_log, "rb") as f:
            cut_bytes = f.read()
        out = serve_on(os.path.join(g.tmp, "copy-cut"))
        with open(cut_log, "rb") as f:
            after_bytes = f.read()
        r.check(getattr(out, "returncode", None) not in (0, None) and "truncated" in (out.stderr or ""),
                "serve refuses a log whose last acknowledged record was cut in half", getattr(out, "stderr", out))
        r.check(after_bytes == cut_bytes,
                "and leaves that log as it found it (the half record is evidence, not a torn unacknowledged write)",
                (len(cut_bytes), len(after_bytes)))

        # --- no token in any record or server log line
        text = open(log_path(g), encoding="utf-8").read()
        log = g.server_log()
        r.check(all(t not in text for t in tokens) and all(t.rsplit(".", 1)[-1] not in text for t in tokens),
                "no audit record contains a token (or its signature)")
        r.check(all(t not in log for t in tokens), "no server log line contains a token")
    finally:
        g.close()

    # --- fail closed: the log cannot grow past a file-size limit
    g = Gatehouse()
    try:
        g.start()
        bob, _ = g.token("bob", "staging")
        bob_prod, _ = g.token("bob", "production")
        c = g.conn()
        for i in range(6):  # grow the log past every other file the server writes
            g.query(bob, "SELECT %d -- %s" % (i, "x" * 20000), conn=c)
        c.close()
        g.stop()
        size = os.path.getsize(log_path(g))
        limit = size + 4096
        g.start(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
        statuses = []
        c = g.conn()
        for i in range(40):
            st, doc, _ = g.query(bob, "SELECT %d AS n" % i, conn=c)
            statuses.append((st, (doc or {}).get("error", {}).get("code")))
            if st != 200:
                break
        c.close()
        r.check(statuses[0][0] == 200 and statuses[-1] == (503, "audit_unavailable"),
                "reads succeed until the log is full, then 503 audit_unavailable", statuses)
        after = []
        for i in range(3):
            st, doc, _ = g.query(bob, "SELECT 100 + %d AS n" % i)
            after.append((st, (doc or {}).get("error", {}).get("code"), "rows" in (doc or {})))
        r.check(after == [(503, "audit_unavailable", False)] * 3, "every later read is 503 and releases no rows", after)
        st, doc, _ = g.query(bob, "UPDATE notes SET body = 'lost' WHERE id = 1")
        r.check(st == 503 and doc["error"]["code"] == "audit_unavailable", "a write is 503 audit_unavailable", doc)
        r.check(g.sqlite("crm-staging.db", "SELECT body FROM notes WHERE id = 1") == [("call back on monday",)],
                "the refused write did not change the data (checked in the SQLite file)")
        st, doc, _ = g.query(bob_prod, "UPDATE notes SET body = 'lost' WHERE id = 1", environment="production")
        r.check(st == 503, "a write that needs approval is 503 too", doc)
        st, doc, _ = g.request("GET", "/v1/approvals", token=bob_prod)
        r.check(st == 503 and doc["error"]["code"] == "audit_unavailable",
                "reading approvals is an access too: 503 while nothing can be recorded", doc)
        stored = g.sqlite(os.path.join(g.data, "gatehouse.db"), "SELECT count(*) FROM approvals")
        r.check(stored == [(0,)], "and no approval was stored for it (checked in the store)", stored)
        size_now = os.path.getsize(log_path(g))
        with open(log_path(g), "rb") as f:
            data = f.read()
        r.check(size_now <= limit and data.endswith(b"\n"), "the log stays within the limit and ends with a newline",
                (size_now, limit))
        g.stop()
        out = g.verify()
        n_lines = len(data.splitlines())
        r.check(out.returncode == 0 and out.stdout.strip() == "ok: %d records" % n_lines,
                "after stopping, audit verify (without the limit) is ok: no partial record",
                out.stdout + out.stderr)
        g.start()
        st, doc, _ = g.query(bob, "SELECT 1 AS n")
        r.check(st == 200, "without the limit the server answers again", doc)
        g.stop()
        out = g.verify()
        r.check(out.returncode == 0, "and the chain goes on", out.stdout)
    finally:
        g.close()


run_suite("test_audit", body)
