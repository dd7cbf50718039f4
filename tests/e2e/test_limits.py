"""Bounds on every input (invariant 8): body, statement, rows, time, header and request-line
sizes, framing (chunked, HTTP/1.0, pipelining), misbehaving and idle clients; and values that
JSON cannot carry as they are (invalid UTF-8, blobs, NaN/infinity)."""
import base64
import json
import os
import socket
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import DEFAULT_SQL, Gatehouse, run_suite

EXTRA_SQL = DEFAULT_SQL + "CREATE TABLE measures (id INTEGER PRIMARY KEY, v REAL);\n"

INFINITE = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def counting(n):
    return "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d) SELECT x FROM c" % n


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def strict_json(raw):
    def refuse(name):
        raise ValueError("non-JSON constant " + name)
    return json.loads(raw, parse_constant=refuse)


def query_bytes(token, sql):
    body = json.dumps({"resource": "crm", "environment": "staging", "sql": sql}).encode()
    return ("POST /v1/query HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % (token, len(body))).encode() + body


def connect(g, timeout=10):
    return socket.create_connection(("127.0.0.1", g.port), timeout=timeout)


def read_until_close(s):
    """Reads until the server closes; returns (bytes, how it ended: 'eof', 'timeout' or 'reset')."""
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return out, "eof"
            out += d
    except socket.timeout:
        return out, "timeout"
    except ConnectionResetError:
        return out, "reset"


def raw(g, data, timeout=10):
    s = connect(g, timeout)
    try:
        s.sendall(data)
        return read_until_close(s)
    finally:
        s.close()


def parse_responses(data):
    """Splits a byte stream into [(status, headers dict, body bytes)]."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


def read_responses(s, count):
    """Reads until count complete responses have arrived (or the server closes)."""
    data = b""
    while True:
        rs = parse_responses(data)
        if len(rs) >= count and all(len(b) == int(h.get("content-length", "0")) for _, h, b in rs[:count]):
            return rs
        d = s.recv(65536)
        if not d:
            return rs
        data += d


def status_of(data):
    rs = parse_responses(data)
    return rs[0][0] if rs else None


def error_code(data):
    rs = parse_responses(data)
    try:
        return strict_json(rs[0][2])["error"]["code"]
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def body(r):
    g = Gatehouse(sql=EXTRA_SQL)
    try:
        # values JSON cannot carry as they are, stored directly in the resource
        db = sqlite3.connect(g.path("crm-staging.db"))
        db.execute("INSERT INTO notes VALUES (2, CAST(? AS TEXT))", (b"\xff\xfebad\x80",))
        db.execute("INSERT INTO notes VALUES (3, ?)", (b"\x00\xff\x10blob",))
        db.execute("INSERT INTO notes VALUES (4, ?)", ("Café ✓ 🎉",))
        db.execute("INSERT INTO notes VALUES (5, ?)", (b"",))
        db.executemany("INSERT INTO measures VALUES (?, ?)",
                       [(1, 1.5), (2, float("inf")), (3, float("-inf")), (4, 0.1), (5, -2.5e-300)])
        db.commit()
        db.close()

        g.start()
        bob, _ = g.token("bob", "staging")

        # --- body and statement size (defaults)
        head = ("POST /v1/query HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n" % (bob, 1024 * 1024 + 1)).encode()
        data, _ = raw(g, head + b'{"resource":"crm","environment":"staging","sql":"' + b" " * 2000)
        r.check(status_of(data) == 413 and error_code(data) == "too_large",
                "a body over 1 MiB is 413 with an error document", data[:300])
        big = "SELECT 1 AS one /* %s */" % ("x" * (100 * 1024))
        st, doc, _ = g.query(bob, big)
        r.check(st == 413 and doc["error"]["code"] == "statement_too_large",
                "a statement over 100 KiB is 413 statement_too_large", doc)
        ok_sql = "SELECT 1 AS one /* %s */" % ("x" * (99 * 1024))
        st, doc, _ = g.query(bob, ok_sql)
        r.check(st == 200 and doc["rows"] == [[1]], "a statement just under 100 KiB runs", doc)

        # --- rows: default cap 10,000
        st, doc, _ = g.query(bob, counting(12000))
        r.check(st == 200 and doc["row_count"] == 10000 and len(doc["rows"]) == 10000 and doc["truncated"] is True
                and doc["rows"][-1] == [10000], "a 12,000-row result is cut at 10,000 rows with truncated true",
                doc and {k: v for k, v in doc.items() if k != "rows"})
        st, doc, _ = g.query(bob, counting(10000))
        r.check(st == 200 and doc["row_count"] == 10000 and doc["truncated"] is False,
                "exactly 10,000 rows is not truncated", doc and {k: v for k, v in doc.items() if k != "rows"})

        # --- HTTP framing and head sizes
        data, _ = raw(g, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"a" * (20 * 1024) +
                      b"\r\nConnection: close\r\n\r\n")
        r.check(status_of(data) == 431, "a complete header block of 20 KiB (over 16 KiB) is 431", data[:120])
        data, how = raw(g, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"a" * (25 * 1024))
        r.check(status_of(data) == 431 and error_code(data) == "bad_request" and how in ("eof", "reset"),
                "a header block of 25 KiB is 431 with an error document, and the connection closed",
                (data[:300], how))
        data, _ = raw(g, b"GET /" + b"a" * (9 * 1024) + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        r.check(status_of(data) == 414, "a request line over 8 KiB is 414", data[:120])
        data, _ = raw(g, b"POST /v1/query HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5\r\nhello\r\n0\r\n\r\n")
        r.check(status_of(data) == 411, "Transfer-Encoding: chunked is 411", data[:120])

        data, how = raw(g, b"GET /healthz HTTP/1.0\r\nHost: t\r\n\r\n")
        rs = parse_responses(data)
        r.check(len(rs) == 1 and rs[0][0] == 200 and rs[0][1].get("connection", "").lower() == "close" and how == "eof",
                "HTTP/1.0 without keep-alive: one response, Connection: close, then the server closes", (data, how))
        s = connect(g)
        first, second, how = [], b"", None
        try:
            s.sendall(b"GET /healthz HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n")
            first = read_responses(s, 1)
            time.sleep(0.1)
            s.sendall(b"GET /healthz HTTP/1.0\r\nHost: t\r\n\r\n")
            second, how = read_until_close(s)
        except OSError as e:  # the server closed after the first response
            how = repr(e)
        finally:
            s.close()
        r.check(len(first) == 1 and first[0][0] == 200 and status_of(second) == 200 and how == "eof",
                "HTTP/1.0 with Connection: keep-alive stays open for the next request", (first, second))

        s = connect(g)
        try:
            s.sendall(query_bytes(bob, "SELECT 1 AS n") + query_bytes(bob, "SELECT 2 AS n") +
                      b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            rs = read_responses(s, 3)
        finally:
            s.close()
        docs = []
        for _, _, b in rs:
            try:
                docs.append(strict_json(b))
            except ValueError:
                docs.append(None)
        r.check(len(rs) == 3 and [x[0] for x in rs] == [200, 200, 200] and docs[0]["rows"] == [[1]]
                and docs[1]["rows"] == [[2]] and docs[2].get("status") == "ok",
                "three pipelined requests in one send get three responses in order", rs)

        # --- misbehaving and idle clients
        a = connect(g)
        a.sendall(b"POST /v1/query HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"resource\":")
        b = connect(g)
        b.sendall(b"GET /heal")
        time.sleep(0.2)
        st, doc, _ = g.query(bob, "SELECT 3 AS n")
        r.check(st == 200 and doc["rows"] == [[3]], "half-sent requests on other connections do not block others", doc)
        a.close()
        b.close()
        c = connect(g)
        c.sendall(b"POST /v1/query HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + bob.encode()[:20])
        c.shutdown(socket.SHUT_RDWR)
        c.close()
        time.sleep(0.2)
        st, doc, _ = g.query(bob, "SELECT 4 AS n")
        r.check(st == 200 and doc["rows"] == [[4]] and g.proc.poll() is None,
                "clients that send half a request and disconnect do not disturb others", doc)

        idle = []
        try:
            for _ in range(200):
                idle.append(connect(g))
            time.sleep(0.3)
            st, doc, _ = g.query(bob, "SELECT 5 AS n")
            r.check(st == 200 and doc["rows"] == [[5]], "with 200 idle connections open a new request still works", doc)
            s = idle[100]
            s.sendall(query_bytes(bob, "SELECT 6 AS n"))
            rs = read_responses(s, 1)
            r.check(len(rs) == 1 and rs[0][0] == 200 and strict_json(rs[0][2])["rows"] == [[6]],
                    "and one of the idle connections can still be used", rs)
        finally:
            for s in idle:
                s.close()
        st, doc, _ = g.request("GET", "/healthz")
        r.check(st == 200, "the server answers after the idle connections close", doc)

        # --- values JSON cannot carry as they are
        st, doc, rawb = g.query(bob, "SELECT id, body FROM notes WHERE id >= 2 ORDER BY id")
        rows = dict((x[0], x[1]) for x in (doc or {}).get("rows", []))
        r.check(st == 200 and rows.get(2) == {"base64url": b64(b"\xff\xfebad\x80")},
                "invalid UTF-8 in a TEXT column comes back as {\"base64url\": ...}", rows.get(2))
        r.check(rows.get(3) == {"base64url": b64(b"\x00\xff\x10blob")}, "a blob comes back as {\"base64url\": ...}",
                rows.get(3))
        r.check(rows.get(4) == "Café ✓ 🎉", "valid UTF-8 text comes back as a string", rows.get(4))
        r.check(rows.get(5) == {"base64url": ""}, "an empty blob is {\"base64url\": \"\"}", rows.get(5))
        st, doc, rawb = g.query(bob, "SELECT CAST(X'C0AF' AS TEXT) AS overlong, CAST(X'EDA080' AS TEXT) AS surrogate, "
                                     "X'FF' AS b")
        r.check(st == 200 and doc["rows"] == [[{"base64url": b64(b"\xc0\xaf")}, {"base64url": b64(b"\xed\xa0\x80")},
                                               {"base64url": "_w"}]],
                "overlong and surrogate UTF-8 sequences are not passed as text", doc)
        st, doc, rawb = g.query(bob, "SELECT id, v FROM measures ORDER BY id")
        ok = False
        try:
            vals = [x[1] for x in strict_json(rawb)["rows"]]
            ok = st == 200 and vals == [1.5, None, None, 0.1, -2.5e-300]
        except ValueError as e:
            vals = e
        r.check(ok, "REAL values: infinities are null, finite values round-trip, strict JSON", (vals, rawb[:300]))
        st, doc, rawb = g.query(bob, "SELECT 1e999 AS a, -1e999 AS b, 0.0 / 0.0 AS c, 2.5 AS d")
        ok = False
        try:
            ok = st == 200 and strict_json(rawb)["rows"] == [[None, None, None, 2.5]]
        except ValueError:
            pass
        r.check(ok and b"nan" not in rawb.lower() and b"inf" not in rawb.lower(),
                "computed infinities and NaN are never produced", rawb[:300])

        rc = g.stop()
        r.check(rc == 0, "server stops cleanly", rc)

        # --- configured limits
        g.start("--max-body", "4K", "--max-statement", "1K", "--max-rows", "5", "--statement-timeout", "1s")
        pad = "SELECT 1 AS one -- "
        body5k = json.dumps({"resource": "crm", "environment": "staging", "sql": "SELECT 1",
                             "params": ["p" * 5000]}).encode()
        data, _ = raw(g, ("POST /v1/query HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
                          % (bob, len(body5k))).encode() + body5k)
        r.check(status_of(data) == 413 and error_code(data) == "too_large", "with --max-body 4K a 5 KB body is 413",
                data[:300])
        st, doc, _ = g.query(bob, "SELECT ? AS p", params=["p" * 3000])
        r.check(st == 200, "with --max-body 4K a 3 KB body is fine", doc)
        st, doc, _ = g.query(bob, pad + "x" * 1100)
        r.check(st == 413 and doc["error"]["code"] == "statement_too_large",
                "with --max-statement 1K a 1.1 KB statement is 413 statement_too_large", doc)
        st, doc, _ = g.query(bob, pad + "x" * 900)
        r.check(st == 200, "with --max-statement 1K a 0.9 KB statement runs", doc)
        st, doc, _ = g.query(bob, counting(20))
        r.check(st == 200 and doc["rows"] == [[1], [2], [3], [4], [5]] and doc["row_count"] == 5
                and doc["truncated"] is True, "--max-rows 5 on 20 rows: 5 rows and truncated true", doc)
        st, doc, _ = g.query(bob, counting(5))
        r.check(st == 200 and doc["row_count"] == 5 and doc["truncated"] is False,
                "--max-rows 5 on exactly 5 rows is not truncated", doc)

        slow = {}

        def run_slow():
            t0 = time.monotonic()
            slow["result"] = g.query(bob, INFINITE)
            slow["done"] = time.monotonic()
            slow["elapsed"] = slow["done"] - t0

        th = threading.Thread(target=run_slow)
        th.start()
        time.sleep(0.3)
        st, doc, _ = g.query(bob, "SELECT 7 AS n")
        fast_done = time.monotonic()
        th.join(30)
        r.check(st == 200 and doc["rows"] == [[7]] and "done" in slow and fast_done < slow["done"],
                "a fast query on another connection returns while the slow one runs", (st, doc, slow.get("elapsed")))
        sst, sdoc, _ = slow.get("result", (None, None, None))
        r.check(sst == 504 and sdoc["error"]["code"] == "statement_timeout" and slow["elapsed"] < 4.0,
                "--statement-timeout 1s stops a runaway recursive CTE with 504 statement_timeout in well under 5 s",
                (sst, sdoc, slow.get("elapsed")))
        st, doc, _ = g.query(bob, "SELECT 8 AS n")
        r.check(st == 200 and doc["rows"] == [[8]], "the server keeps answering after the timeout", doc)
        lines = [l for l in g.audit_lines() if l.get("statement") == INFINITE]
        r.check(len(lines) == 1 and lines[0]["status"] == "timeout", "the timed-out read is audited as timeout", lines)

        # a client that sends a slow query and goes away before the answer
        s = connect(g)
        s.sendall(query_bytes(bob, INFINITE))
        time.sleep(0.2)
        s.close()
        st, doc, _ = g.query(bob, "SELECT 9 AS n")
        r.check(st == 200 and doc["rows"] == [[9]], "a client gone mid-query does not block others", doc)
        time.sleep(1.5)
        st, doc, _ = g.query(bob, "SELECT 10 AS n")
        lines = [l for l in g.audit_lines() if l.get("statement") == INFINITE]
        r.check(st == 200 and g.proc.poll() is None and len(lines) == 2 and lines[1]["status"] == "timeout",
                "its query still finishes and is audited; the server lives on", (st, [l["status"] for l in lines]))

        rc = g.stop()
        r.check(rc == 0, "server stops cleanly", rc)
        out = g.verify()
        r.check(out.returncode == 0, "audit verify is ok", out.stdout + out.stderr)
    finally:
        g.close()


run_suite("test_limits", body)
