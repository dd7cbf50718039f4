"""PostgreSQL wire front with real clients: psql, pgbench (simple, extended, prepared, read-write),
psycopg 3 (parameters, transactions, rollback, denials, pending approvals, approval in a client
transaction), Node's pg driver; refusals at connect (bad, foreign, other-environment, revoked
tokens, disabled user, dbname without a dot) with their SQLSTATEs read off the protocol; cancel
requests; the audit trail of wire statements; TLS with a self-signed certificate."""
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import run_suite
import pg
import pgfix
import psycopg
import psycopg.errors

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")

NODE_SCRIPT = r"""
const { Client } = require('pg');
const cfg = JSON.parse(process.argv[2]);
async function step(client, sql, params) {
  try {
    const r = await client.query(sql, params);
    return { ok: true, rows: r.rows, rowCount: r.rowCount, command: r.command };
  } catch (e) {
    return { ok: false, code: e.code, message: e.message };
  }
}
(async () => {
  const out = {};
  const c = new Client({ host: '127.0.0.1', port: cfg.port, user: 'bob', password: cfg.staging,
                         database: 'crm.staging' });
  await c.connect();
  out.read = await step(c, 'SELECT name FROM customers WHERE id = $1', [1]);
  out.write = await step(c, 'UPDATE customers SET tier = $1 WHERE id = $2', ['node', 3]);
  out.deny = await step(c, 'DROP TABLE customers', []);
  out.after = await step(c, 'SELECT 1 AS one', []);
  await c.end();
  const p = new Client({ host: '127.0.0.1', port: cfg.port, user: 'bob', password: cfg.production,
                         database: 'crm.production' });
  await p.connect();
  out.pending = await step(p, 'UPDATE invoices SET status = $1 WHERE id = $2', ['node-pending', 2]);
  await p.end();
  const bad = new Client({ host: '127.0.0.1', port: cfg.port, user: 'bob', password: 'not-a-token',
                           database: 'crm.staging' });
  try { await bad.connect(); out.badconnect = { ok: true }; await bad.end(); }
  catch (e) { out.badconnect = { ok: false, code: e.code, message: e.message }; }
  console.log(JSON.stringify(out));
})().catch(e => { console.log(JSON.stringify({ fatal: String(e) })); process.exit(1); });
"""


def startup_sqlstate(port, user, password, dbname, timeout=10):
    """Speaks the startup phase of protocol 3.0 by hand: returns ("ok", None) when the server says
    ReadyForQuery, or ("error", {field: value}) with the ErrorResponse fields (C = SQLSTATE)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        params = b"user\0" + user.encode() + b"\0database\0" + dbname.encode() + b"\0\0"
        s.sendall(struct.pack("!II", 8 + len(params), 196608) + params)
        buf = b""

        def read_msg():
            nonlocal buf
            while len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
                chunk = s.recv(65536)
                if not chunk:
                    raise EOFError("connection closed; have %r" % buf[:100])
                buf += chunk
            n = struct.unpack("!I", buf[1:5])[0]
            t, body, buf = buf[:1], buf[5:1 + n], buf[1 + n:]
            return t, body

        while True:
            t, body = read_msg()
            if t == b"R":
                code = struct.unpack("!I", body[:4])[0]
                if code == 3:  # cleartext password
                    pw = password.encode() + b"\0"
                    s.sendall(b"p" + struct.pack("!I", 4 + len(pw)) + pw)
                elif code != 0:
                    return "error", {"C": "auth-method-%d" % code}
            elif t == b"E":
                fields = {}
                for part in body.split(b"\0"):
                    if part:
                        fields[chr(part[0])] = part[1:].decode(errors="replace")
                return "error", fields
            elif t == b"Z":
                return "ok", None
    finally:
        s.close()


def run(argv, env=None, timeout=60, cwd=None):
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def wire_env(f, user, token, env="staging"):
    e = dict(os.environ)
    e.update({"PGHOST": "127.0.0.1", "PGPORT": str(f.pgport), "PGUSER": user, "PGPASSWORD": token,
              "PGDATABASE": "crm." + env, "PGSSLMODE": "disable"})
    return e


def pgbench_ok(r, what, out):
    text = out.stdout + out.stderr
    tps = [l for l in text.splitlines() if l.startswith("tps = ")]
    done = [l for l in text.splitlines() if l.startswith("number of transactions actually processed")]
    n = 0
    if done:
        try:
            n = int(done[0].split(":")[1].split("/")[0].strip())
        except ValueError:
            n = 0
    r.check(out.returncode == 0 and n > 0 and "number of failed transactions: 0" in text,
            "pgbench %s: %s, %s" % (what, done[0] if done else "no transactions", tps[0] if tps else "no tps"),
            text[-2000:])


def body(r):
    t0 = time.time()
    with pgfix.PgGatehouse() as f:
        f.start()
        bob, bob_id = f.gh.token("bob", "staging")
        bobp, _ = f.gh.token("bob", "production")
        carol, _ = f.gh.token("carol", "production")
        alice, _ = f.gh.token("alice", "staging", app="invoices")

        # ---------------------------------------------------------------- psql
        p = f.psql("bob", bob, "SELECT count(*) FROM customers")
        r.check(p.returncode == 0 and p.stdout.strip() == "3", "psql: a read", p.stdout + p.stderr)
        p = f.psql("bob", bob, "UPDATE customers SET tier = 'platinum' WHERE id = 2", extra=())
        tier = f.direct("SELECT tier FROM customers WHERE id = 2")[0][0]
        r.check(p.returncode == 0 and tier == "platinum", "psql: a parameterless write (customer 2 now %s)" % tier,
                p.stdout + p.stderr)
        p = subprocess.run([pg.pg_tool("psql"), "-X", "-v", "ON_ERROR_STOP=1", "-d", f.dsn("bob", bob), "-c",
                            "UPDATE customers SET tier = 'gold' WHERE id = 2"], capture_output=True, text=True)
        r.check(p.returncode == 0 and "UPDATE 1" in p.stdout, "psql: the write's command tag is UPDATE 1",
                p.stdout + p.stderr)
        p = f.psql("bob", bob, "DROP TABLE customers")
        r.check(p.returncode == 1 and "permission denied by Gatehouse" in p.stderr and "(rule destructive-ddl)" in p.stderr
                and f.direct("SELECT count(*) FROM customers")[0][0] == 3,
                "psql: a denial exits 1 with the rule in the message", "rc=%d %s" % (p.returncode, p.stderr))

        # ---------------------------------------------------------------- pgbench
        out = run([pg.pg_tool("pgbench"), "-i", "-s", "1", "-q"], env=f.pg.client_env("app", pgfix.CANARY, "crm_staging"))
        r.check(out.returncode == 0, "pgbench -i -s 1 directly as app on crm_staging", out.stderr[-1500:])
        wenv = wire_env(f, "bob", bob)
        for mode in ("simple", "extended", "prepared"):
            out = run([pg.pg_tool("pgbench"), "-n", "-S", "-T", "3", "-c", "4", "-j", "2", "-M", mode], env=wenv)
            pgbench_ok(r, "-S -T 3 -c 4 -M %s through Gatehouse" % mode, out)
        hist = f.direct("SELECT count(*) FROM pgbench_history")[0][0]
        out = run([pg.pg_tool("pgbench"), "-n", "-T", "3", "-c", "4", "-j", "2"], env=wenv)
        pgbench_ok(r, "read-write (default script) -T 3 -c 4 through Gatehouse", out)
        hist2 = f.direct("SELECT count(*) FROM pgbench_history")[0][0]
        r.check(hist2 > hist, "the read-write run really wrote (pgbench_history %d -> %d rows)" % (hist, hist2))

        # ---------------------------------------------------------------- psycopg
        c = f.connect("bob", bob)
        rows = c.execute("SELECT name FROM customers WHERE id = %s", [2]).fetchall()
        r.check(rows == [("Cafe Ole",)], "psycopg: a parameterised read", rows)
        rows = c.execute("SELECT name FROM customers WHERE tier = %s AND id > %s ORDER BY id", ["gold", 0]).fetchall()
        r.check(rows == [("Nordlicht GmbH",), ("Cafe Ole",), ("Brightwater",)],
                "psycopg: a read with two parameters", rows)
        cur = c.execute("UPDATE invoices SET status = %s WHERE id = %s", ["psy-auto", 2])
        r.check(cur.rowcount == 1 and f.direct("SELECT status FROM invoices WHERE id = 2")[0][0] == "psy-auto",
                "psycopg: a parameterised write in autocommit", cur.rowcount)
        with c.transaction():
            c.execute("UPDATE invoices SET status = %s WHERE id = %s", ["psy-tx", 3])
            c.execute("INSERT INTO notes (body) VALUES (%s)", ["psy tx note"])
            inside = c.execute("SELECT status FROM invoices WHERE id = 3").fetchone()[0]
            outside = f.direct("SELECT status FROM invoices WHERE id = 3")[0][0]
        after = f.direct("SELECT status FROM invoices WHERE id = 3")[0][0]
        r.check(inside == "psy-tx" and outside == "overdue" and after == "psy-tx",
                "psycopg: writes inside conn.transaction() are seen inside, invisible outside, committed at the end",
                (inside, outside, after))
        notes_before = f.direct("SELECT count(*) FROM notes")[0][0]
        with c.transaction():
            c.execute("UPDATE invoices SET status = %s WHERE id = %s", ["rolled-back", 1])
            c.execute("INSERT INTO notes (body) VALUES (%s)", ["never"])
            raise psycopg.Rollback()
        r.check(f.direct("SELECT status FROM invoices WHERE id = 1")[0][0] == "paid"
                and f.direct("SELECT count(*) FROM notes")[0][0] == notes_before
                and not f.direct("SELECT 1 FROM notes WHERE body = 'never'"),
                "psycopg: a rolled-back transaction leaves no trace")
        try:
            c.execute("TRUNCATE notes")
            err = None
        except psycopg.Error as e:
            err = e
        r.check(isinstance(err, psycopg.errors.InsufficientPrivilege) and "(rule destructive-ddl)" in str(err),
                "psycopg: a denial raises InsufficientPrivilege (42501)", repr(err))
        rows = c.execute("SELECT 1").fetchall()
        r.check(rows == [(1,)], "psycopg: the connection is usable after a denial", rows)
        c.close()

        # production write as bob: pending approval, approved by carol over HTTP, runs exactly once
        pc = f.connect("bob", bobp, env="production")
        amount0 = f.direct("SELECT amount_cents FROM invoices WHERE id = 1", db="crm_prod")[0][0]
        try:
            pc.execute("UPDATE invoices SET amount_cents = amount_cents + %s WHERE id = %s", [100, 1])
            err = None
        except psycopg.Error as e:
            err = e
        msg = str(err) if err else ""
        aid = ""
        if err is not None and msg.startswith("approval apr_"):
            aid = msg.split()[1]
        r.check(err is not None and err.sqlstate == "5GA01" and aid.startswith("apr_"),
                "psycopg: a production write as bob raises 5GA01 with an approval id (%s)" % aid, repr(err))
        r.check(f.direct("SELECT amount_cents FROM invoices WHERE id = 1", db="crm_prod")[0][0] == amount0,
                "the pending write has not run")
        st, doc, raw = f.gh.request("POST", "/v1/approvals/%s/approve" % aid, body="", token=carol)
        r.check(st == 200 and (doc or {}).get("rows_affected") == 1, "carol approves it over HTTP: 1 row", raw[:300])
        st2, doc2, raw2 = f.gh.request("POST", "/v1/approvals/%s/approve" % aid, body="", token=carol)
        amount1 = f.direct("SELECT amount_cents FROM invoices WHERE id = 1", db="crm_prod")[0][0]
        r.check(st2 == 409 and amount1 == amount0 + 100,
                "the approved write changed the row exactly once (%d -> %d), a second approval is 409" % (amount0, amount1),
                raw2[:300])
        # a write inside a production client transaction cannot wait for approval: refused
        try:
            with pc.transaction():
                pc.execute("SELECT count(*) FROM invoices").fetchall()
                pc.execute("UPDATE invoices SET amount_cents = 0 WHERE id = %s", [2])
            err = None
        except psycopg.Error as e:
            err = e
        r.check(err is not None and "(rule approval-in-transaction)" in str(err)
                and f.direct("SELECT amount_cents FROM invoices WHERE id = 2", db="crm_prod")[0][0] == 1900,
                "psycopg: a write in a production client transaction is refused (approval-in-transaction)",
                "%r sqlstate=%s" % (err, getattr(err, "sqlstate", None)))
        r.check(isinstance(err, psycopg.errors.InsufficientPrivilege),
                "  ... with SQLSTATE 42501", getattr(err, "sqlstate", None))
        rows = pc.execute("SELECT count(*) FROM invoices").fetchall()
        r.check(rows == [(3,)], "the production connection is usable afterwards", rows)
        pc.close()

        # ---------------------------------------------------------------- Node pg
        with tempfile.NamedTemporaryFile("w", suffix=".js", dir=NODE_DIR, delete=False) as js:
            js.write(NODE_SCRIPT)
        try:
            out = run(["node", os.path.basename(js.name), json.dumps({"port": f.pgport, "staging": bob,
                                                                     "production": bobp})], cwd=NODE_DIR)
        finally:
            os.unlink(js.name)
        try:
            res = json.loads(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            res = {"fatal": out.stdout + out.stderr}
        r.check(not res.get("fatal"), "node: the script ran", res.get("fatal", "")[:1500])
        r.check((res.get("read") or {}).get("rows") == [{"name": "Nordlicht GmbH"}], "node pg: a read with $1",
                res.get("read"))
        r.check((res.get("write") or {}).get("rowCount") == 1
                and f.direct("SELECT tier FROM customers WHERE id = 3")[0][0] == "node",
                "node pg: a parameterised write", res.get("write"))
        r.check((res.get("deny") or {}).get("code") == "42501" and "destructive-ddl" in (res.get("deny") or {}).get("message", ""),
                "node pg: a denial has code 42501", res.get("deny"))
        r.check((res.get("after") or {}).get("rows") == [{"one": 1}], "node pg: the connection works after it",
                res.get("after"))
        pend = res.get("pending") or {}
        r.check(pend.get("code") == "5GA01" and "apr_" in pend.get("message", ""),
                "node pg: a production write is pending with code 5GA01", pend)
        r.check((res.get("badconnect") or {}).get("code") in ("28P01", "28000"),
                "node pg: a bad token is refused at connect with 28P01/28000", res.get("badconnect"))

        # ---------------------------------------------------------------- refusals at connect
        st, info = startup_sqlstate(f.pgport, "bob", bob, "crm.staging")
        r.check(st == "ok", "raw startup with bob's token reaches ReadyForQuery", info)
        cases = [
            ("a wrong token", "bob", "not-a-token", "crm.staging"),
            ("a token with a flipped signature", "bob", bob[:-4] + ("AAAA" if not bob.endswith("AAAA") else "BBBB"),
             "crm.staging"),
            ("alice's token used as bob", "bob", alice, "crm.staging"),
            ("a production token for crm.staging", "bob", bobp, "crm.staging"),
            ("a staging token for crm.production", "bob", bob, "crm.production"),
            ("an empty password", "bob", "", "crm.staging"),
        ]
        for what, user, token, db in cases:
            st, info = startup_sqlstate(f.pgport, user, token, db)
            r.check(st == "error" and (info or {}).get("C") in ("28P01", "28000"),
                    "connect refused: %s (%s)" % (what, (info or {}).get("C")), info)
            try:
                psycopg.connect(f.dsn(user, token).replace("dbname=crm.staging", "dbname=" + db),
                                connect_timeout=5).close()
                perr = None
            except psycopg.OperationalError as e:
                perr = str(e)
            r.check(perr is not None and (not token or token not in perr),
                    "  ... psycopg is refused too, and the message does not echo the token", perr)
        st, info = startup_sqlstate(f.pgport, "bob", bob, "crm")
        r.check(st == "error" and info.get("C") == "3D000", "connect refused: dbname without a dot (3D000)", info)
        st, info = startup_sqlstate(f.pgport, "bob", bob, "nosuch.staging")
        r.check(st == "error" and info.get("C") in ("3D000", "28P01", "28000"),
                "connect refused: an unknown resource (%s)" % (info or {}).get("C"), info)

        # revoked token: refused at connect, and on a connection opened before the revocation
        tok, tid = f.gh.token("bob", "staging")
        early = f.connect("bob", tok)
        early.execute("SELECT 1")
        out = f.gh.cli("token", "revoke", "--data", f.gh.data, tid)
        r.check(out.returncode == 0, "gatehouse token revoke", out.stderr)
        st, info = startup_sqlstate(f.pgport, "bob", tok, "crm.staging")
        r.check(st == "error" and (info or {}).get("C") in ("28P01", "28000"),
                "connect refused: a revoked token (%s)" % (info or {}).get("C"), info)
        try:
            early.execute("SELECT count(*) FROM customers").fetchall()
            err = None
        except psycopg.Error as e:
            err = e
        r.check(err is not None, "a connection opened with a since-revoked token runs nothing more", repr(err))
        early.close()

        # disabled user: alice disabled by a policy change
        early = f.connect("alice", alice)
        rows = early.execute("SELECT count(*) FROM invoices").fetchall()
        r.check(rows == [(3,)], "alice (app invoices) reads over the wire before being disabled", rows)
        out = f.gh.apply(pgfix.POLICY.replace("  - name: alice\n", "  - name: alice\n    disabled: true\n"))
        r.check(out.returncode == 0, "policy applied with alice disabled", out.stderr)
        st, info = startup_sqlstate(f.pgport, "alice", alice, "crm.staging")
        r.check(st == "error" and (info or {}).get("C") in ("28P01", "28000"),
                "connect refused: a disabled user (%s)" % (info or {}).get("C"), info)
        try:
            early.execute("SELECT count(*) FROM invoices").fetchall()
            err = None
        except psycopg.Error as e:
            err = e
        r.check(err is not None, "a connection of a since-disabled user runs nothing more", repr(err))
        early.close()
        out = f.gh.apply(pgfix.POLICY)
        r.check(out.returncode == 0, "policy restored", out.stderr)

        # ---------------------------------------------------------------- cancel
        c = f.connect("bob", bob)
        result = {}

        def sleeper():
            t = time.time()
            try:
                c.execute("SELECT pg_sleep(10)")
                result["err"] = None
            except psycopg.Error as e:
                result["err"] = e
            result["took"] = time.time() - t

        th = threading.Thread(target=sleeper)
        th.start()
        time.sleep(1.0)
        c.cancel()
        th.join(15)
        e = result.get("err")
        r.check(e is not None and e.sqlstate == "57014" and result.get("took", 99) < 5,
                "cancel during SELECT pg_sleep(10) ends it with 57014 in %.1f s" % result.get("took", -1),
                "%r sqlstate=%s" % (e, getattr(e, "sqlstate", None)))
        try:
            rows = c.execute("SELECT 2").fetchall()
        except psycopg.Error as ex:
            rows = repr(ex)
        r.check(rows == [(2,)], "the connection works after the cancel", rows)
        c.close()
        busy = [b for b in f.pg.backends("crm_staging") if "pg_sleep" in (b[4] or "") and b[3] == "active"]
        r.check(not busy, "no backend is still running the cancelled pg_sleep", busy)

        # ---------------------------------------------------------------- audit
        marker = "SELECT 'audit-marker-%d' AS m" % os.getpid()
        c = f.connect("bob", bob)
        c.execute(marker).fetchall()
        try:
            c.execute("DROP TABLE invoices")
        except psycopg.Error:
            pass
        c.close()
        lines = f.gh.audit_lines()

        def recs(stmt, **kw):
            return [l for l in lines if l.get("statement") == stmt and all(l.get(k) == v for k, v in kw.items())]
        checks = [
            ("psql read", "SELECT count(*) FROM customers", "allow"),
            ("psql write", "UPDATE customers SET tier = 'platinum' WHERE id = 2", "allow"),
            ("psql denial", "DROP TABLE customers", "deny"),
            ("psycopg parameterised read", "SELECT name FROM customers WHERE id = $1", "allow"),
            ("psycopg write in a transaction", "UPDATE invoices SET status = $1 WHERE id = $2", "allow"),
            ("psycopg denial", "TRUNCATE notes", "deny"),
            ("node read", "SELECT name FROM customers WHERE id = $1", "allow"),
            ("psycopg marker read", marker, "allow"),
            ("psycopg denial (marker)", "DROP TABLE invoices", "deny"),
        ]
        for what, stmt, decision in checks:
            rs = recs(stmt, user="bob", decision=decision)
            wire = [l for l in rs if str(l.get("client", "")).startswith("pg:")]
            r.check(wire, "audit: %s is recorded (statement, user bob, decision %s, client pg:…)" % (what, decision),
                    [(l.get("statement"), l.get("decision"), l.get("client")) for l in lines
                     if l.get("user") == "bob"][-8:])
        pend = [l for l in lines if l.get("user") == "bob" and l.get("environment") == "production"
                and l.get("rule") == "approval-required" and str(l.get("client", "")).startswith("pg:")]
        r.check(pend, "audit: the pending production write from the wire is recorded")
        out = f.gh.verify()
        r.check(out.returncode == 0 and out.stdout.startswith("ok"), "gatehouse audit verify: %s" % out.stdout.strip(),
                out.stdout + out.stderr)

        # ---------------------------------------------------------------- TLS
        tmp = tempfile.mkdtemp(prefix="gh-pgtls-")
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        out = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                   "-days", "1", "-subj", "/CN=127.0.0.1"])
        r.check(out.returncode == 0 and os.path.exists(cert), "openssl: a self-signed certificate", out.stderr[-500:])
        f.gh.stop()
        f.start("--pg-tls-cert", cert, "--pg-tls-key", key)
        try:
            with psycopg.connect(f.dsn("bob", bob, sslmode="require"), autocommit=True) as c:
                ssl_on = c.info.pgconn.ssl_in_use
                rows = c.execute("SELECT count(*) FROM customers").fetchall()
            terr = None
        except psycopg.Error as e:
            ssl_on, rows, terr = None, None, e
        r.check(ssl_on is True and rows == [(3,)], "TLS: sslmode=require connects, ssl_in_use, and reads", repr(terr))
        try:
            with psycopg.connect(f.dsn("bob", bob, sslmode="verify-ca", sslrootcert=cert), autocommit=True) as c:
                ok = c.info.pgconn.ssl_in_use and c.execute("SELECT 1").fetchall() == [(1,)]
        except psycopg.Error as e:
            ok = repr(e)
        r.check(ok is True, "TLS: verify-ca against the self-signed certificate", ok)
        try:
            with psycopg.connect(f.dsn("bob", bob, sslmode="disable"), autocommit=True) as c:
                plain = (c.info.pgconn.ssl_in_use, c.execute("SELECT count(*) FROM invoices").fetchall())
        except psycopg.Error as e:
            plain = repr(e)
        r.check(plain == (False, [(3,)]), "TLS configured: a plaintext connection from loopback still works", plain)
        p = subprocess.run([pg.pg_tool("psql"), "-X", "-A", "-t", "-d", f.dsn("bob", bob, sslmode="require"),
                            "-c", "SELECT current_setting('gatehouse.user')"], capture_output=True, text=True)
        r.check(p.returncode == 0 and p.stdout.strip() == "bob", "TLS: psql with sslmode=require", p.stdout + p.stderr)
        for fn in (cert, key):
            os.unlink(fn)
        os.rmdir(tmp)
        r.check(time.time() - t0 < 90, "suite ran in %.0f s" % (time.time() - t0))


if __name__ == "__main__":
    run_suite("test_pg_wire.py", body)
