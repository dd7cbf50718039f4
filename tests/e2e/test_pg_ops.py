"""PostgreSQL resources in operation: row-level security keyed on the Gatehouse identity (HTTP and
wire), the backend password (a canary) never leaving the store whatever happens (reads, writes,
denials, errors, a resource that cannot be reached), password rotation with the pool drained, pool
exhaustion answered 503 pool_exhausted after the bounded wait, a backend killed mid-query, and a
stale pooled connection retried for a read."""
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import run_suite
import pg
import pgfix
import psycopg

NEW_PW = "Rotated-pw-4b19d0e7aa"  # the rotated backend password: just as secret as the canary


class Collector:
    """Every byte a client or operator sees in this suite, to sweep for the secrets."""

    def __init__(self):
        self.items = []

    def add(self, where, data):
        if isinstance(data, str):
            data = data.encode()
        self.items.append((where, data or b""))
        return data

    def grep(self, needle):
        n = needle.encode()
        return [w for w, d in self.items if n in d]


def body(r):
    t0 = time.time()
    seen = Collector()
    with pgfix.PgGatehouse() as f:
        f.start()
        gh = f.gh

        def q(token, sql, params=None, env="staging"):
            st, doc, raw = gh.query(token, sql, params=params, environment=env)
            seen.add("http %s: %s" % (st, sql[:60]), raw)
            return st, doc or {}, raw

        def psql(user, token, sql, env="staging"):
            p = f.psql(user, token, sql, env=env)
            seen.add("psql stdout: " + sql[:60], p.stdout)
            seen.add("psql stderr: " + sql[:60], p.stderr)
            return p

        bob, _ = gh.token("bob", "staging")
        alice, _ = gh.token("alice", "staging", app="invoices")
        alice_noapp, _ = gh.token("alice", "staging")
        bobp, _ = gh.token("bob", "production")
        carol, _ = gh.token("carol", "production")

        # ------------------------------------------------------------ RLS
        st, doc, raw = q(alice, "SELECT owner, body FROM notes ORDER BY id")
        r.check(st == 200 and doc.get("rows") == [["alice", "alice's note"]],
                "RLS http: alice (use via app invoices) sees only her note", raw[:300])
        st, doc, raw = q(bob, "SELECT owner, body FROM notes ORDER BY id")
        r.check(st == 200 and doc.get("rows") == [["bob", "bob's note"]], "RLS http: bob sees only his note", raw[:300])
        st, doc, raw = q(alice_noapp, "SELECT owner, body FROM notes")
        r.check(st == 403 and (doc.get("error") or {}).get("rule") == "needs-app-or-edit",
                "alice without an app is refused (needs-app-or-edit)", raw[:300])
        p = psql("alice", alice, "SELECT owner || ':' || body FROM notes ORDER BY id")
        r.check(p.returncode == 0 and p.stdout.strip() == "alice:alice's note", "RLS wire: alice sees only her note",
                p.stdout + p.stderr)
        p = psql("bob", bob, "SELECT owner || ':' || body FROM notes ORDER BY id")
        r.check(p.returncode == 0 and p.stdout.strip() == "bob:bob's note", "RLS wire: bob sees only his note",
                p.stdout + p.stderr)
        p = psql("bob", bob, "SELECT count(*) FROM notes WHERE owner = 'alice'")
        r.check(p.returncode == 0 and p.stdout.strip() == "0", "RLS wire: bob asking for alice's rows gets none",
                p.stdout + p.stderr)
        st, doc, raw = q(alice, "INSERT INTO notes (body) VALUES ($1)", params=["alice via http"])
        r.check(st == 200 and doc.get("rows_affected") == 1, "alice inserts a note over HTTP", raw[:300])
        p = psql("bob", bob, "INSERT INTO notes (body) VALUES ('bob via wire')")
        r.check(p.returncode == 0, "bob inserts a note over the wire", p.stderr)
        rows = f.direct("SELECT owner, body FROM notes WHERE body IN ('alice via http', 'bob via wire') ORDER BY body")
        r.check(rows == [("alice", "alice via http"), ("bob", "bob via wire")],
                "each insert lands with owner = the inserting user", rows)
        st, doc, raw = q(bob, "INSERT INTO notes (owner, body) VALUES ('alice', 'forged by bob')")
        p = psql("bob", bob, "INSERT INTO notes (owner, body) VALUES ('alice', 'forged by bob (wire)')")
        forged = f.direct("SELECT count(*) FROM notes WHERE body LIKE 'forged%%'")[0][0]
        r.check(st >= 400 and p.returncode != 0 and forged == 0,
                "bob cannot insert a note owned by alice (HTTP %d, psql rc %d, rows %d)" % (st, p.returncode, forged),
                (raw[:300], p.stderr[:300]))
        st, doc, raw = q(bob, "UPDATE notes SET body = 'hijacked' WHERE owner = 'alice'")
        r.check(st == 200 and doc.get("rows_affected") == 0
                and f.direct("SELECT count(*) FROM notes WHERE body = 'hijacked'")[0][0] == 0,
                "bob's UPDATE of alice's notes touches nothing", raw[:300])
        c = f.connect("alice", alice)
        rows = c.execute("SELECT body FROM notes ORDER BY id").fetchall()
        c.close()
        r.check(rows == [("alice's note",), ("alice via http",)], "RLS psycopg: alice sees her two notes", rows)

        # ------------------------------------------------------------ a mix for the canary sweep
        for sql, params in [("SELECT * FROM customers ORDER BY id", None),
                            ("SELECT name FROM customers WHERE tier = $1", ["gold"]),
                            ("UPDATE invoices SET status = $1 WHERE id = $2", ["swept", 2]),
                            ("DROP TABLE customers", None),
                            ("SELECT pg_read_file('/etc/passwd')", None),
                            ("SELEC 1", None),
                            ("SELECT 1/0", None),
                            ("SELECT nosuchcolumn FROM customers", None),
                            ("SELECT current_setting('gatehouse.user'), current_user, session_user", None),
                            ("SELECT setting FROM pg_settings WHERE name = 'port'", None),
                            ("SELECT usename, application_name, client_addr::text FROM pg_stat_activity", None),
                            ("SELECT rolname, rolpassword FROM pg_authid", None),
                            ("SELECT * FROM pg_user", None)]:
            q(bob, sql, params)
            psql("bob", bob, sql.replace("$1", "'gold'").replace("$2", "2") if params else sql)
        st, doc, raw = q(bobp, "UPDATE invoices SET status = 'prod-swept' WHERE id = 3", env="production")
        aid = ((doc.get("approval") or {}).get("id")) or ""
        st, doc, raw = gh.request("POST", "/v1/approvals/%s/approve" % aid, body="", token=carol)
        seen.add("http approve", raw)
        r.check(st == 200, "a production write approved by carol (for the sweep)", raw[:300])
        for path in ("/v1/approvals", "/v1/approvals/" + aid, "/v1/audit?since=0&limit=1000"):
            st, doc, raw = gh.request("GET", path, token=carol)
            seen.add("http GET " + path, raw)

        # ------------------------------------------------------------ rotation
        old_pids = {row[0] for row in f.pg.backends("crm_staging")}
        f.pg.sql("ALTER ROLE app PASSWORD '%s'" % NEW_PW)
        st, doc, raw = q(bob, "SELECT count(*) FROM customers")
        r.check(st == 200 and doc.get("rows") == [[3]], "after ALTER ROLE app PASSWORD, pooled connections still work",
                raw[:300])
        out = f.set_secret("crm-staging-dsn", f.pg.dsn(user="app", password=NEW_PW, dbname="crm_staging"))
        seen.add("secret set stdout", out.stdout)
        seen.add("secret set stderr", out.stderr)
        pids, ok = [], True
        for _ in range(6):
            st, doc, raw = q(bob, "SELECT pg_backend_pid()")
            ok = ok and st == 200
            if st == 200:
                pids.append(doc["rows"][0][0])
        r.check(ok and pids and not (set(pids) & old_pids),
                "after the secret is set to the new DSN, queries run on new backend connections (old ones drained)",
                {"old": sorted(old_pids), "after": pids})
        p = psql("bob", bob, "SELECT count(*) FROM invoices")
        r.check(p.returncode == 0 and p.stdout.strip() == "3", "the wire front works after the rotation",
                p.stdout + p.stderr)
        n = f.pg.kill_backends("crm_staging")
        results = [q(bob, "SELECT count(*) FROM customers")[0] for _ in range(4)]
        p = psql("bob", bob, "SELECT count(*) FROM invoices")
        r.check(all(s == 200 for s in results) and p.returncode == 0,
                "after killing the %d backends, reads (HTTP and wire) still succeed with the new password" % n,
                (results, p.stderr))
        try:
            psycopg.connect(f.pg.dsn(user="app", password=pgfix.CANARY, dbname="crm_staging"), connect_timeout=5).close()
            old_works = True
        except psycopg.OperationalError:
            old_works = False
        r.check(not old_works, "sanity: the old password no longer opens a connection")

        # ------------------------------------------------------------ a resource that cannot be reached
        # (a DSN whose password is the canary, for a role that does not exist)
        out = f.set_secret("crm-staging-dsn", f.pg.dsn(user="nosuchrole", password=pgfix.CANARY, dbname="crm_staging"))
        seen.add("secret set (bad) stdout", out.stdout)
        seen.add("secret set (bad) stderr", out.stderr)
        f.pg.kill_backends("crm_staging")
        st, doc, raw = q(bob, "SELECT count(*) FROM customers")
        r.check(st == 502 and isinstance(doc.get("error"), dict),
                "a DSN that cannot connect: HTTP 502 with a JSON error (%s)" % (doc.get("error") or {}).get("code"),
                raw[:400])
        st, doc, raw = q(bob, "UPDATE invoices SET status = 'x' WHERE id = 1")
        r.check(st == 502, "  ... a write as well", raw[:300])
        p = psql("bob", bob, "SELECT count(*) FROM customers")
        r.check(p.returncode != 0, "  ... and over the wire the statement fails", p.stdout + p.stderr)
        try:
            c = psycopg.connect(f.dsn("bob", bob), autocommit=True, connect_timeout=5)
            try:
                c.execute("SELECT 1")
                werr = ""
            except psycopg.Error as e:
                werr = str(e)
            c.close()
        except psycopg.Error as e:
            werr = str(e)
        seen.add("psycopg error with a bad DSN", werr)
        out = f.set_secret("crm-staging-dsn", f.pg.dsn(user="app", password=NEW_PW, dbname="crm_staging"))
        seen.add("secret set (restore) stdout", out.stdout + out.stderr)
        st, doc, raw = q(bob, "SELECT count(*) FROM customers")
        r.check(st == 200, "with the right DSN back, queries work again", raw[:300])

        # ------------------------------------------------------------ the sweep
        out = gh.cli("export", "--data", gh.data)
        seen.add("gatehouse export", out.stdout + out.stderr)
        r.check(out.returncode == 0 and "crm-staging-dsn" in out.stdout, "gatehouse export runs", out.stderr)
        out = gh.cli("audit", "verify", "--data", gh.data)
        seen.add("gatehouse audit verify", out.stdout + out.stderr)
        r.check(out.returncode == 0, "gatehouse audit verify: ok", out.stdout + out.stderr)
        # stop the server, keeping every byte of its stdout
        gh.proc.send_signal(signal.SIGTERM)
        stdout_rest = gh.proc.stdout.read()
        rc = gh.proc.wait(timeout=30)
        gh.proc.stdout.close()
        gh.stderr_file.close()
        gh.proc = None
        r.check(rc == 0, "the server stops cleanly on SIGTERM", rc)
        seen.add("server stdout", stdout_rest)
        seen.add("server stderr", gh.server_log())
        with open(os.path.join(gh.data, "audit", "audit.log"), "rb") as fh:
            seen.add("audit log", fh.read())
        store = []
        for root, dirs, files in os.walk(gh.tmp):
            for name in files:
                path = os.path.join(root, name)
                with open(path, "rb") as fh:
                    data = fh.read()
                if name.startswith("gatehouse.db"):
                    store.append((path, data))
                else:
                    seen.add("file " + os.path.relpath(path, gh.tmp), data)
        r.check(len(seen.items) > 60 and any("audit.log" in w for w, _ in seen.items),
                "swept %d outputs and files (%d bytes)" % (len(seen.items), sum(len(d) for _, d in seen.items)))
        for secret, name in ((pgfix.CANARY, "the canary password"), (NEW_PW, "the rotated password")):
            hits = seen.grep(secret)
            r.check(not hits, "%s appears in no log, response, psql output, export, audit record or data file" % name,
                    hits)
            hits = [p for p, d in store if secret.encode() in d]
            r.check(store and not hits, "%s is not in plaintext in gatehouse.db* (%d files)" % (name, len(store)), hits)
        # the DSN itself (host/port/user) may be operator knowledge, but not the password field
        hits = [w for w, d in seen.items if b"password=" in d]
        r.check(not hits, "no output carries a password= field", hits)

    # ---------------------------------------------------------------- pool exhaustion, dying backends
    with pgfix.PgGatehouse(pool=2) as f:
        f.start()
        bob, _ = f.gh.token("bob", "staging")
        c1 = f.connect("bob", bob, autocommit=False)
        c2 = f.connect("bob", bob, autocommit=False)
        c1.execute("SELECT count(*) FROM customers").fetchall()
        c2.execute("SELECT count(*) FROM invoices").fetchall()
        t = time.time()
        st, doc, raw = f.gh.query(bob, "SELECT count(*) FROM notes")
        waited = time.time() - t
        r.check(st == 503 and (doc or {}).get("error", {}).get("code") == "pool_exhausted" and 3 <= waited <= 15,
                "pool of 2 held by two client transactions: a third query gets 503 pool_exhausted after %.1f s"
                % waited, raw[:300])
        c1.commit()
        c2.commit()
        st, doc, raw = f.gh.query(bob, "SELECT count(*) FROM notes")
        r.check(st == 200 and doc["rows"] == [[1]], "after both commit, the third query succeeds", raw[:300])
        c1.close()
        c2.close()

        # a backend killed in the middle of a query
        res = {}

        def sleeper():
            t = time.time()
            res["r"] = f.gh.query(bob, "SELECT pg_sleep(5)")
            res["took"] = time.time() - t

        th = threading.Thread(target=sleeper)
        th.start()
        deadline = time.time() + 5
        while time.time() < deadline and not any("pg_sleep" in (b[4] or "") and b[3] == "active"
                                                 for b in f.pg.backends("crm_staging")):
            time.sleep(0.05)
        n = f.pg.kill_backends("crm_staging")
        th.join(20)
        gone_by = time.time() + 5
        while time.time() < gone_by and f.pg.backends("crm_staging"):
            time.sleep(0.05)  # the killed backends have exited: whatever the pool holds is stale
        st, doc, raw = res.get("r", (None, None, b""))
        r.check(st is not None and 400 <= st < 600 and isinstance((doc or {}).get("error"), dict)
                and res.get("took", 99) < 4.5,
                "backend killed mid-query (%d killed): the client gets %s with a JSON error in %.1f s"
                % (n, st, res.get("took", -1)), raw[:300])
        st, doc, raw = f.gh.query(bob, "SELECT count(*) FROM customers")
        r.check(st == 200 and doc["rows"] == [[3]], "the next query succeeds (the pool recovered)", raw[:300])
        p = f.psql("bob", bob, "SELECT count(*) FROM customers")
        r.check(p.returncode == 0 and p.stdout.strip() == "3", "  ... over the wire too", p.stdout + p.stderr)

        # stale pooled connections (killed while idle) are retried transparently for a read
        for _ in range(3):
            f.gh.query(bob, "SELECT 1")
        idle = len(f.pg.backends("crm_staging"))
        n = f.pg.kill_backends("crm_staging")
        gone_by = time.time() + 5
        while time.time() < gone_by and f.pg.backends("crm_staging"):
            time.sleep(0.05)
        results = []
        for _ in range(4):
            st, doc, raw = f.gh.query(bob, "SELECT count(*) FROM invoices")
            results.append((st, (doc or {}).get("rows") or raw[:200]))
        r.check(n >= 1 and all(s == (200, [[3]]) for s in results),
                "after %d idle pooled backends were killed (of %d), every read succeeds (retried)" % (n, idle), results)
        results = []
        for _ in range(2):
            st, doc, raw = f.gh.query(bob, "UPDATE invoices SET status = status WHERE id = 1")
            results.append((st, raw[:200]))
        r.check(all(s == 200 for s, _ in results), "writes work again too", results)
        r.check(f.gh.verify().returncode == 0, "gatehouse audit verify: ok")
    r.check(time.time() - t0 < 90, "suite ran in %.0f s" % (time.time() - t0))


if __name__ == "__main__":
    run_suite("test_pg_ops.py", body)
