"""Audit sinks: gatehouse serve ships every audit record to an HTTP receiver (batched JSON, API key
header from the vault), to standard output (JSON lines) and to syslog (RFC 5424 over UDP). The
HTTP receiver here fails on purpose (500s, then dropped connections) and recovers: every record
must still arrive, in seq order with no gap, while the request path keeps answering; the API key
must reach the receiver and nothing else; a restart resumes from the stored positions."""
import http.server
import json
import os
import re
import socket
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import Gatehouse, DEFAULT_POLICY, run_suite
from test_metrics import parse_page, scrape

API_KEY = "dd-0b5e1c7a9f3e4d2b8a6c-SECRET-KEY"
RFC5424 = re.compile(rb"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\]) (.*)$", re.S)


class Receiver:
    """An HTTP logs intake on 127.0.0.1 that answers from a script: the first `fail` requests get
    500, the next `drop` are dropped without an answer, then 202; `down` drops everything."""

    def __init__(self, fail=0, drop=0):
        self.lock = threading.Lock()
        self.fail, self.drop, self.down = fail, drop, False
        self.posts = []       # (time, headers dict, raw body) of accepted requests
        self.refused = []     # (time, kind, headers) of requests failed on purpose
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                with recv.lock:
                    if recv.down or recv.drop_left():
                        recv.refused.append((time.time(), "drop", hdrs))
                        self.close_connection = True
                        return  # no answer at all: curl sees an empty reply
                    if recv.fail > 0:
                        recv.fail -= 1
                        recv.refused.append((time.time(), "500", hdrs))
                        self.send_response(500)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    recv.posts.append((time.time(), hdrs, body))
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def drop_left(self):
        if self.fail > 0:
            return False
        if self.drop > 0:
            self.drop -= 1
            return True
        return False

    def records(self, since=0.0):
        """Every record received in accepted posts after `since`, in arrival order."""
        out = []
        with self.lock:
            posts = [p for p in self.posts if p[0] >= since]
        for _, _, body in posts:
            out.extend(json.loads(body))
        return out

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class Syslog:
    """A UDP syslog receiver."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.msgs = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                d, _ = self.sock.recvfrom(70000)
                self.msgs.append(d)
            except socket.timeout:
                pass

    def close(self):
        self.stop = True
        self.t.join()
        self.sock.close()


class StdoutReader:
    """Collects the server's standard output after its 'listening' line."""

    def __init__(self, proc):
        self.lines = []
        self.t = threading.Thread(target=self.run, args=(proc.stdout,), daemon=True)
        self.t.start()

    def run(self, f):
        for line in iter(f.readline, b""):
            self.lines.append(line)


def policy(recv_port, syslog_port, extra_sink=""):
    return DEFAULT_POLICY + """\
audit:
  sinks:
    - name: siem
      kind: http
      url: http://127.0.0.1:%d/api/v2/logs
      header: DD-API-KEY
      api_key: { secret: dd_key }
      batch: 7
      retry_max: 1s
      timeout: 5s
    - { name: collector, kind: stdout }
    - { name: local, kind: syslog, facility: local0, address: "udp:127.0.0.1:%d" }
%s""" % (recv_port, syslog_port, extra_sink)


def log_lines(g):
    with open(os.path.join(g.data, "audit", "audit.log"), "rb") as f:
        return f.read().splitlines()


def wait_for(pred, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def seqs(records):
    return [r["seq"] for r in records]


def body(r):
    recv = Receiver(fail=3, drop=3)
    sl = Syslog()
    g = Gatehouse(policy=None)
    try:
        # --- configuration: the key lives in the vault; apply checks it is there
        pol = policy(recv.port, sl.port)
        out = g.apply(pol)
        r.check(out.returncode == 2 and re.search(r"policy\.yaml:\d+:\d+: audit\.sinks\[\]\.api_key\.secret: secret "
                                                  r"'dd_key' \(sink 'siem'\) is not in the vault", out.stderr),
                "apply refuses a sink whose API key secret is not in the vault, with file:line", out.stderr)
        r.check(g.cli("export", "--data", g.data).returncode != 0, "and nothing was applied")
        out = g.cli("secret", "set", "--data", g.data, "dd_key", input=API_KEY + "\n")
        r.check(out.returncode == 0, "secret set dd_key", out.stderr)
        bad = pol.replace("http://127.0.0.1:%d" % recv.port, "http://siem.example.com")
        out = g.apply(bad, name="bad.yaml")
        r.check(out.returncode == 2 and "bad.yaml:" in out.stderr and "use https://" in out.stderr,
                "apply refuses plain http to another host, with file:line", out.stderr)
        out = g.apply(pol)
        r.check(out.returncode == 0, "apply with three sinks", out.stderr)
        exported = g.cli("export", "--data", g.data).stdout
        r.check("dd_key" in exported and API_KEY not in exported, "export names the secret, never its value")

        # --- serve; the receiver fails the first 6 requests on purpose
        g.start()
        so = StdoutReader(g.proc)
        alice, _ = g.token("alice", "staging", app="invoices")
        bob, _ = g.token("bob", "staging")
        slow = []
        outage_answers = 0
        t0 = time.time()
        for i in range(30):
            q0 = time.time()
            st, doc, _ = g.query(alice if i % 3 else bob, "SELECT name FROM customers WHERE id = ?", params=[i % 3 + 1])
            dt = time.time() - q0
            if st != 200 or dt > 2.0:
                slow.append((i, st, dt))
            with recv.lock:
                if len(recv.posts) == 0:
                    outage_answers += 1
            time.sleep(0.05)
        st, doc, _ = g.query(bob, "DROP TABLE customers")
        r.check(st == 403, "a denial is recorded too", doc)
        r.check(not slow, "30 queries answered 200 within 2 s each while the receiver was failing", slow)
        r.check(outage_answers > 0, "queries were answered while no batch had been accepted yet (%d)" % outage_answers)

        n = len(log_lines(g))
        got = wait_for(lambda: set(seqs(recv.records())) >= set(range(1, n + 1)), 30)
        r.check(got, "the HTTP receiver got every record 1..%d after it recovered" % n,
                sorted(set(range(1, n + 1)) - set(seqs(recv.records())))[:20])
        kinds = [k for _, k, _ in recv.refused]
        r.check(kinds[:6] == ["500"] * 3 + ["drop"] * 3, "the receiver failed 3 requests with 500 and dropped 3", kinds)
        log = g.server_log()
        r.check("audit sink 'siem' (http): delivery failed" in log and "HTTP 500" in log,
                "the server logs the failing sink (by name, with the HTTP status)", log[-2000:])
        r.check(wait_for(lambda: "audit sink 'siem' (http): delivering again" in g.server_log(), 10),
                "and its recovery", g.server_log()[-1000:])

        # at least once, in order, no gaps, batches bounded
        rec = recv.records()
        first_seen = []
        for s in seqs(rec):
            if s not in first_seen:
                first_seen.append(s)
        r.check(first_seen == list(range(1, len(first_seen) + 1)),
                "records arrive in seq order with no gap (first arrival of each)", first_seen[:40])
        with recv.lock:
            posts = list(recv.posts)
        batches = [seqs(json.loads(b)) for _, _, b in posts]
        r.check(all(1 <= len(b) <= 7 and b == list(range(b[0], b[0] + len(b))) for b in batches),
                "each POST holds 1..7 consecutive records (batch: 7)", batches[:10])
        lines = log_lines(g)
        bodies = b"".join(b for _, _, b in posts)
        r.check(all(l in bodies for l in lines[:n]), "each record is in a POST body byte for byte as in the log (its hash can be checked)")
        by_seq = {x["seq"]: x for x in rec}
        r.check(all(by_seq[json.loads(l)["seq"]] == json.loads(l) for l in lines[:n]),
                "the received records equal the log's")
        hdr_ok = all(h.get("dd-api-key") == API_KEY and h.get("content-type") == "application/json"
                     for _, h, _ in posts) and all(h.get("dd-api-key") == API_KEY for _, _, h in recv.refused)
        r.check(hdr_ok, "every request carried DD-API-KEY from the vault and Content-Type application/json")

        # --- stdout: one JSON line per record, as in the log
        r.check(wait_for(lambda: len(so.lines) >= n, 10), "the stdout sink wrote %d lines" % n, len(so.lines))
        sl_lines = [x.rstrip(b"\n") for x in so.lines]
        r.check(all(json.loads(x) for x in sl_lines) and sl_lines[:n] == lines[:n],
                "stdout lines parse as JSON and are the log's lines, in order, once each",
                (len(sl_lines), sl_lines[:1]))

        # --- syslog: RFC 5424 over UDP, one datagram per record
        r.check(wait_for(lambda: len(sl.msgs) >= n, 10), "the syslog receiver got %d datagrams" % n, len(sl.msgs))
        parsed, bad_msgs = [], []
        for d in sl.msgs:
            m = RFC5424.match(d)
            if not m:
                bad_msgs.append(d[:120])
                continue
            pri, ts, host, app, procid, msgid, sd, msg = m.groups()
            rec1 = json.loads(msg)
            want_pri = 16 * 8 + (5 if rec1.get("decision") == "deny" else 6)
            if int(pri) != want_pri or ts.decode() != rec1["time"] or app != b"gatehouse" or \
                    msgid.decode() != rec1["event"] or sd != b"-" or not procid.isdigit() or not host:
                bad_msgs.append(d[:200])
            parsed.append(msg)
        r.check(not bad_msgs, "every datagram is RFC 5424: <PRI>1 TIMESTAMP HOST gatehouse PID EVENT - RECORD "
                "(local0, notice for denials)", bad_msgs[:3])
        r.check(parsed[:n] == lines[:n], "syslog messages carry the log's records in order")
        r.check(any(p.startswith(b"<133>1") for p in sl.msgs), "the denial went out as notice (PRI 133)")

        # --- the counters on GET /metrics (strict text-format parser of the metrics suite)
        erin, _ = g.token("erin", "staging")  # in an admins group
        for _ in range(100):  # the receiver keeps a batch just before it answers: allow the answer to land
            st, ctype, raw = scrape(g.port, token=erin)
            fams = parse_page(raw) if st == 200 else {}
            if any(l.get("sink") == "siem" and v >= n
                   for _, l, v in fams.get("gatehouse_audit_sink_delivered_total", {}).get("samples", [])):
                break
            time.sleep(0.05)

        def sample(fam, sink=None):
            for _, labels, value in fams.get(fam, {}).get("samples", []):
                if sink is None or labels.get("sink") == sink:
                    return value
            return None
        delivered = sample("gatehouse_audit_sink_delivered_total", "siem")
        r.check(st == 200 and delivered is not None and delivered >= n and
                sample("gatehouse_audit_sink_failures_total", "siem") >= 4 and
                sample("gatehouse_audit_sink_failing", "siem") == 0 and
                sample("gatehouse_audit_sink_delivered_total", "collector") >= n and
                sample("gatehouse_audit_sink_failures_total", "local") == 0,
                "GET /metrics: per-sink delivered and failure counters (siem: >= %d delivered, >= 4 failed attempts: "
                "three 500s and the dropped connections, which curl may retry once by itself)" % n,
                {f: fams[f]["samples"] for f in fams if "audit_sink" in f})
        r.check(fams.get("gatehouse_audit_sink_lag_records", {}).get("type") == "gauge" and
                all(labels.get("sink") in ("siem", "collector", "local") and value >= 0
                    for _, labels, value in fams["gatehouse_audit_sink_lag_records"]["samples"]) and
                sample("gatehouse_audit_checkpoint_failures_total") == 0,
                "lag is a gauge per sink; no checkpoint failures",
                fams.get("gatehouse_audit_sink_lag_records"))

        # --- remote apply (PUT /v1/config) checks a sink's secret too
        bad_remote = pol.replace("api_key: { secret: dd_key }", "api_key: { secret: nope }").replace(
            "path: crm-", "path: %s/crm-" % g.tmp)  # paths on the server are absolute
        st, doc, _ = g.request("PUT", "/v1/config", {"policy": bad_remote, "dry_run": True}, token=erin)
        err = (doc or {}).get("error") or {}
        r.check(st == 422 and err.get("code") == "invalid_policy" and "secret 'nope' (sink 'siem') is not in the vault"
                in err.get("message", "") and err.get("line", 0) > 0,
                "PUT /v1/config refuses a sink whose secret is not in the vault (422, with line and column)", doc)

        # --- the API key went to the receiver and nowhere else
        g2 = g.cli("audit", "verify", "--data", g.data)
        r.check(g2.returncode == 0 and g2.stdout.startswith("ok: "), "audit verify is ok", g2.stdout)
        stop0 = time.time()
        rc = g.stop()
        r.check(rc == 0 and time.time() - stop0 < 10, "the server stops cleanly and promptly", (rc, time.time() - stop0))
        leaks = []
        for name in ("server.err",):
            if API_KEY in open(g.path(name), errors="replace").read():
                leaks.append(name)
        for p in ("audit/audit.log", "audit/checkpoints"):
            if API_KEY.encode() in open(os.path.join(g.data, p), "rb").read():
                leaks.append(p)
        if any(API_KEY.encode() in x for x in so.lines) or any(API_KEY.encode() in m for m in sl.msgs):
            leaks.append("stdout or syslog")
        if any(API_KEY.encode() in b for _, _, b in posts):
            leaks.append("POST bodies")
        r.check(not leaks, "the API key is in no log line, audit record, checkpoint, sink output or body", leaks)

        # --- restart resumes from the stored positions
        stored = dict((name, seq) for name, seq in g.sqlite(os.path.join(g.data, "gatehouse.db"),
                                                             "SELECT name, seq FROM audit_positions"))
        last = len(log_lines(g))
        r.check(stored.get("siem") == last and stored.get("collector") == last and stored.get("local") == last,
                "the store keeps each sink's position at the last record (%d)" % last, stored)
        g.token("carol", "staging")   # two records while the server is down
        g.token("dave", "staging")
        t_restart = time.time()
        nsys = len(sl.msgs)
        g.start()
        so2 = StdoutReader(g.proc)
        n2 = len(log_lines(g))
        r.check(wait_for(lambda: set(seqs(recv.records(t_restart))) >= {last + 1, last + 2}, 20),
                "after a restart the backlog written meanwhile arrives", seqs(recv.records(t_restart)))
        r.check(min(seqs(recv.records(t_restart))) == last + 1,
                "and nothing already acknowledged is sent again", seqs(recv.records(t_restart))[:10])
        r.check(wait_for(lambda: len(so2.lines) >= n2 - last, 10) and
                [json.loads(x)["seq"] for x in so2.lines][:2] == [last + 1, last + 2],
                "stdout resumes at seq %d" % (last + 1), [x[:30] for x in so2.lines[:3]])
        r.check(wait_for(lambda: len(sl.msgs) >= nsys + 2, 10) and
                json.loads(RFC5424.match(sl.msgs[nsys]).group(8))["seq"] == last + 1,
                "syslog resumes at seq %d" % (last + 1))

        # --- a writer in another process dies mid-record: the followers must not choke on the torn
        # bytes they may already have read, once the next writer cuts them and writes over them
        with open(os.path.join(g.data, "audit", "audit.log"), "ab") as f:
            f.write(b'{"seq":%d,"time":"torn by a crash' % (len(log_lines(g)) + 1))
        time.sleep(1.5)  # the followers look at the file at least once a second
        t_torn = time.time()
        g.token("erin", "staging")  # its writer cuts the torn record and appends a real one
        torn_seq = json.loads(log_lines(g)[-1])["seq"]
        r.check(wait_for(lambda: torn_seq in seqs(recv.records(t_torn)), 10) and
                wait_for(lambda: any(b'"seq":%d,' % torn_seq in x for x in so2.lines), 5),
                "a record written over a torn one is delivered (http and stdout)", seqs(recv.records(t_torn)))
        r.check("stopped after" not in g.server_log(), "and no follower stopped", g.server_log()[-1500:])

        # --- a receiver down at shutdown: the stop is not held up, the backlog waits for the next start
        with recv.lock:
            recv.down = True
        carol, _ = g.token("carol", "staging")
        st, doc, _ = g.query(carol, "SELECT 1 AS n")
        r.check(st == 200, "a query while the receiver is down answers", doc)
        held = len(log_lines(g))
        time.sleep(0.5)
        stop0 = time.time()
        rc = g.stop()
        r.check(rc == 0 and time.time() - stop0 < 8, "the server stops within the sinks' stop deadline with the "
                "receiver down (%.1fs)" % (time.time() - stop0), rc)
        with recv.lock:
            recv.down = False
        t_back = time.time()
        g.start()
        StdoutReader(g.proc)
        r.check(wait_for(lambda: held in seqs(recv.records(t_back)), 20),
                "the records held back by the outage arrive after the next start", seqs(recv.records(t_back)))
        g.stop()

        # --- a stored position the log does not hold (a data directory restored or replaced):
        # the sink says so and follows the log again from seq 1 (twice rather than never)
        db = sqlite3.connect(os.path.join(g.data, "gatehouse.db"))
        db.execute("UPDATE audit_positions SET seq = 99999, byte_offset = 99999999, hash = ? WHERE name = 'collector'",
                   ("ab" * 32,))
        db.commit()
        db.close()
        g.start()
        so3 = StdoutReader(g.proc)
        n3 = len(log_lines(g))
        r.check(wait_for(lambda: len(so3.lines) >= n3, 10) and
                [json.loads(x)["seq"] for x in so3.lines][:n3] == list(range(1, n3 + 1)),
                "a position beyond the log: the stdout sink sends it all again from seq 1",
                [x[:20] for x in so3.lines[:3]])
        r.check("audit sink 'collector': the log does not hold the stored position (seq 99999)" in g.server_log(),
                "and logs why", g.server_log()[-1500:])
        g.stop()
        out = g.verify()
        r.check(out.returncode == 0 and out.stdout.startswith("ok: "), "audit verify is ok at the end", out.stdout)
    finally:
        g.close()
        recv.close()
        sl.close()


if __name__ == "__main__":
    run_suite("test_audit_sinks", body)
