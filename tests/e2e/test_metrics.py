"""Metrics and logs: GET /metrics in the Prometheus text format, read with a strict parser of the
0.0.4 exposition format written here (every line validated; the parser is itself tested on
broken pages first). Traffic of known shape (allowed reads, a write, denials by several rules, a
pending approval, malformed and unauthenticated requests) must move the counters by exactly that
much; histograms, audit counters, approvals pending and (with PostgreSQL) the wire front and pool
gauges too. Access: the tokenless --metrics listener answers only /metrics and /healthz and is not
audited; the API port's /metrics is for admins and audited. Labels never carry names of users,
resources or environments. Logs: every stderr line of the server is a JSON object with time,
level and msg; a unique parameter value, a secret's value and tokens never appear at info
level; --log-level error leaves only errors; debug shows decisions without statements and
parameters unless --log-sensitive is given too (which itself needs debug)."""
import json
import math
import os
import re
import secrets
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import lib
from lib import Gatehouse, run_suite


# ------------------------------------------------------------------ a strict 0.0.4 parser

class ParseError(Exception):
    pass


NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_float(s, where):
    if s in ("NaN", "+Inf", "-Inf", "Inf"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", s):
        raise ParseError("%s: not a float: %r" % (where, s))
    return float(s)


def unescape_help(s, where):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in "\\n":
                raise ParseError("%s: bad escape in HELP" % where)
            out.append("\\" if s[i + 1] == "\\" else "\n")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_labels(s, i, where):
    """Parses {name="value",...} starting at s[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if i < len(s) and s[i] == "}":
            return labels, i + 1
        m = LABEL.match(s, i)
        if not m:
            raise ParseError("%s: bad label name at %d" % (where, i))
        name = m.group(0)
        if name.startswith("__"):
            raise ParseError("%s: reserved label name %s" % (where, name))
        if name in labels:
            raise ParseError("%s: label %s twice" % (where, name))
        i = m.end()
        if s[i:i + 2] != '="':
            raise ParseError("%s: expected =\" after label %s" % (where, name))
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise ParseError("%s: unterminated label value" % where)
            c = s[i]
            if c == "\\":
                n = s[i + 1] if i + 1 < len(s) else ""
                if n not in ('\\', '"', "n"):
                    raise ParseError("%s: bad escape \\%s in label value" % (where, n))
                val.append("\n" if n == "n" else n)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ParseError("%s: raw newline in label value" % where)
            else:
                val.append(c)
                i += 1
        labels[name] = "".join(val)
        if i < len(s) and s[i] == ",":
            i += 1
            continue
        if i < len(s) and s[i] == "}":
            return labels, i + 1
        raise ParseError("%s: expected , or } after a label" % where)


def parse_page(raw):
    """Parses bytes of a text-format page. Returns {family: {"type","help","samples":[(name,labels,value)]}}.
    Stricter than Prometheus where our output must be: every sample typed, no blank lines."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ParseError("not UTF-8: %s" % e)
    if not text.endswith("\n"):
        raise ParseError("the page does not end with a newline")
    fams = {}
    order = []          # families in the order they appear
    closed = set()      # families whose group has ended
    current = None
    seen_series = set()

    def family_of(sample):
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample[:-len(suffix)] if sample.endswith(suffix) else None
            if base and base in fams and fams[base]["type"] in ("histogram", "summary"):
                return base
        return sample

    def enter(fam, where):
        nonlocal current
        if fam != current:
            if fam in closed:
                raise ParseError("%s: lines of %s are not one group" % (where, fam))
            if current is not None:
                closed.add(current)
            current = fam

    for ln, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d" % ln
        if line == "":
            raise ParseError("%s: empty line" % where)
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                if len(parts) < 3 or not NAME.fullmatch(parts[2]):
                    raise ParseError("%s: bad metric name in %s" % (where, parts[1]))
                name = parts[2]
                f = fams.setdefault(name, {"type": None, "help": None, "samples": []})
                if name not in order:
                    order.append(name)
                enter(name, where)
                if parts[1] == "HELP":
                    if f["help"] is not None:
                        raise ParseError("%s: second HELP for %s" % (where, name))
                    f["help"] = unescape_help(parts[3] if len(parts) > 3 else "", where)
                else:
                    if f["type"] is not None:
                        raise ParseError("%s: second TYPE for %s" % (where, name))
                    if f["samples"]:
                        raise ParseError("%s: TYPE after samples of %s" % (where, name))
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise ParseError("%s: bad TYPE line" % where)
                    f["type"] = parts[3]
            continue  # other comments are allowed
        m = NAME.match(line)
        if not m:
            raise ParseError("%s: bad sample name" % where)
        sname = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i, where)
        rest = line[i:]
        if not rest.startswith(" "):
            raise ParseError("%s: expected a space before the value" % where)
        fields = rest[1:].split(" ")
        if len(fields) not in (1, 2) or fields[0] == "":
            raise ParseError("%s: expected value [timestamp]" % where)
        value = parse_float(fields[0], where)
        if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
            raise ParseError("%s: bad timestamp" % where)
        fam = family_of(sname)
        if fam not in fams or fams[fam]["type"] is None:
            raise ParseError("%s: sample %s before (or without) its TYPE" % (where, sname))
        enter(fam, where)
        typ = fams[fam]["type"]
        if typ in ("counter", "gauge", "untyped") and sname != fam:
            raise ParseError("%s: sample %s in family %s" % (where, sname, fam))
        if typ == "counter" and (math.isnan(value) or value < 0):
            raise ParseError("%s: counter %s is %r" % (where, sname, value))
        if typ == "histogram":
            if sname == fam + "_bucket":
                if "le" not in labels:
                    raise ParseError("%s: bucket without le" % where)
                parse_float(labels["le"], where + " (le)")
            elif "le" in labels:
                raise ParseError("%s: le on %s" % (where, sname))
        key = (sname, tuple(sorted(labels.items())))
        if key in seen_series:
            raise ParseError("%s: duplicate series %s%s" % (where, sname, labels))
        seen_series.add(key)
        fams[fam]["samples"].append((sname, labels, value))
    for name, f in fams.items():
        if f["type"] is None:
            raise ParseError("family %s has no TYPE" % name)
        if f["type"] == "histogram":
            check_histogram(name, f)
    return fams


def check_histogram(name, f):
    series = {}
    for sname, labels, value in f["samples"]:
        base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(base, {"buckets": [], "sum": None, "count": None})
        if sname == name + "_bucket":
            s["buckets"].append((parse_float(labels["le"], name), value))
        elif sname == name + "_sum":
            s["sum"] = value
        elif sname == name + "_count":
            s["count"] = value
        else:
            raise ParseError("%s: unexpected sample %s" % (name, sname))
    for base, s in series.items():
        b = s["buckets"]
        if not b or b[-1][0] != math.inf:
            raise ParseError("%s%s: no +Inf bucket (or not last)" % (name, dict(base)))
        for (le0, c0), (le1, c1) in zip(b, b[1:]):
            if not le1 > le0:
                raise ParseError("%s%s: le not increasing (%r, %r)" % (name, dict(base), le0, le1))
            if c1 < c0:
                raise ParseError("%s%s: bucket counts decrease" % (name, dict(base)))
        if s["count"] is None or s["sum"] is None:
            raise ParseError("%s%s: _count or _sum missing" % (name, dict(base)))
        if s["count"] != b[-1][1]:
            raise ParseError("%s%s: _count %r != +Inf bucket %r" % (name, dict(base), s["count"], b[-1][1]))


def value(fams, family, sample=None, **labels):
    """The value of one series (0 when a labelled series is absent: not touched yet)."""
    f = fams.get(family)
    if f is None:
        raise KeyError(family)
    sample = sample or family
    for sname, lab, v in f["samples"]:
        if sname == sample and lab == labels:
            return v
    return 0


BROKEN_PAGES = [
    ("no final newline", b"# TYPE a counter\na 1"),
    ("sample before TYPE", b"a 1\n# TYPE a counter\n"),
    ("sample without TYPE", b"a 1\n"),
    ("duplicate series", b"# TYPE a counter\na{x=\"1\"} 1\na{x=\"1\"} 2\n"),
    ("bad escape", b"# TYPE a gauge\na{x=\"\\t\"} 1\n"),
    ("unterminated label value", b"# TYPE a gauge\na{x=\"1} 1\n"),
    ("label twice", b"# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n"),
    ("bad label name", b"# TYPE a gauge\na{1x=\"1\"} 1\n"),
    ("reserved label", b"# TYPE a gauge\na{__x=\"1\"} 1\n"),
    ("bad value", b"# TYPE a gauge\na 1,5\n"),
    ("negative counter", b"# TYPE a counter\na -1\n"),
    ("NaN counter", b"# TYPE a counter\na NaN\n"),
    ("second TYPE", b"# TYPE a gauge\n# TYPE a gauge\na 1\n"),
    ("TYPE after samples", b"# TYPE a gauge\na 1\n# TYPE a counter\n"),
    ("unknown type", b"# TYPE a thing\na 1\n"),
    ("group split", b"# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"y\"} 2\n"),
    ("empty line", b"# TYPE a gauge\n\na 1\n"),
    ("not UTF-8", b"# TYPE a gauge\na{x=\"\xff\"} 1\n"),
    ("bucket without le", b"# TYPE h histogram\nh_bucket 1\nh_sum 0\nh_count 1\n"),
    ("no +Inf", b"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 0\nh_count 1\n"),
    ("decreasing buckets", b"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 1\n"),
    ("le not increasing", b"# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n"
                          b"h_sum 0\nh_count 1\n"),
    ("count != +Inf", b"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0\nh_count 3\n"),
    ("no _sum", b"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n"),
    ("stray sample in a counter", b"# TYPE a counter\na_total 1\n"),
]

GOOD_PAGE = (b"# HELP a A \\\\ help\\nline.\n# TYPE a gauge\na{x=\"q\\\"\\\\\\n\",y=\"\"} -Inf\na 2.5e-3 1700000000000\n"
             b"# a free comment\n# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.75\n"
             b"h_count 2\n")


def parser_self_test(r):
    bad = []
    for what, page in BROKEN_PAGES:
        try:
            parse_page(page)
            bad.append(what)
        except ParseError:
            pass
    r.check(not bad, "the strict parser refuses %d kinds of broken page" % len(BROKEN_PAGES), bad)
    try:
        f = parse_page(GOOD_PAGE)
        ok = (f["a"]["help"] == "A \\ help\nline." and value(f, "a", x='q"\\\n', y="") == -math.inf
              and value(f, "h", "h_count") == 2)
    except ParseError as e:
        ok = e
    r.check(ok is True, "and reads a valid page with escapes, -Inf, a timestamp and a histogram", ok)


# ------------------------------------------------------------------ helpers

def start_with_metrics(g, *extra):
    g.start("--metrics", "127.0.0.1:0", *extra)
    line = g.proc.stdout.readline().decode()
    if not line.startswith("listening on metrics http://"):
        raise RuntimeError("no metrics listener: %r; stderr: %s" % (line, g.server_log()))
    return int(line.strip().rsplit(":", 1)[1])


def scrape(port, path="/metrics", method="GET", token=None):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Authorization": "Bearer " + token} if token else {}
    c.request(method, path, headers=h)
    resp = c.getresponse()
    body = resp.read()
    ctype = resp.getheader("Content-Type")
    c.close()
    return resp.status, ctype, body


def log_lines(g):
    """Every line of the server's stderr, parsed; raises on one that is not a JSON object with
    time, level and msg."""
    out = []
    for i, line in enumerate(g.server_log().split("\n")):
        if line == "":
            continue
        d = json.loads(line)
        if not (isinstance(d, dict) and isinstance(d.get("msg"), str)
                and d.get("level") in ("debug", "info", "warn", "error")
                and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d.get("time", ""))):
            raise ValueError("line %d lacks time/level/msg: %r" % (i + 1, line))
        out.append(d)
    return out


def all_json(r, g, what):
    try:
        lines = log_lines(g)
        r.check(True, "%s: every stderr line (%d) is a JSON object with time, level and msg" % (what, len(lines)))
        return lines
    except ValueError as e:
        r.check(False, "%s: every stderr line is a JSON object with time, level and msg" % what, e)
        return []


REQ = "gatehouse_requests_total"


def http_count(f, decision, rule):
    return value(f, REQ, front="http", decision=decision, rule=rule)


# ------------------------------------------------------------------ HTTP and SQLite

def http_suite(r):
    g = Gatehouse()
    try:
        mport = start_with_metrics(g, "--workers", "2")
        bob, _ = g.token("bob", "staging")
        bob_prod, _ = g.token("bob", "production")
        carol, _ = g.token("carol", "production")
        alice_app, _ = g.token("alice", "staging", app="invoices")
        alice, _ = g.token("alice", "staging")
        erin, _ = g.token("erin", "staging")

        st, ctype, raw = scrape(mport)
        r.check(st == 200 and ctype == "text/plain; version=0.0.4; charset=utf-8",
                "the --metrics listener answers GET /metrics without a token, text/plain; version=0.0.4",
                (st, ctype))
        try:
            before = parse_page(raw)
            r.check(True, "the page parses strictly (%d families)" % len(before))
        except ParseError as e:
            r.check(False, "the page parses strictly", e)
            return
        audit_before = len(g.audit_lines())

        # ---- traffic of known shape
        for i in range(3):
            st, doc, _ = g.query(alice_app, "SELECT name FROM customers WHERE id = ?", params=[i + 1])
            assert st == 200, doc
        st, doc, _ = g.query(bob, "INSERT INTO notes (body) VALUES (?)", params=["metrics note"])
        assert st == 200, doc
        denials = [
            (bob, "DROP TABLE notes", "staging", "destructive-ddl"),
            (bob, "ATTACH DATABASE 'x.db' AS x", "staging", "forbidden-statement"),
            (alice, "SELECT 1", "staging", "needs-app-or-edit"),
            (erin, "SELECT 1", "staging", "no-grant"),
            (bob, "SELECT 1", "production", "token-environment"),
        ]
        for tok, sql, env, rule in denials:
            st, doc, _ = g.query(tok, sql, environment=env)
            assert st == 403 and doc["error"]["rule"] == rule, (rule, doc)
        st, doc, _ = g.query(bob_prod, "UPDATE invoices SET status = 'paid' WHERE id = ?", environment="production",
                             params=[2])
        assert st == 202, doc
        approval = doc["approval"]["id"]
        st, _, _ = g.request("POST", "/v1/query", body="{not json", token=bob)
        assert st == 400
        st, _, _ = g.request("POST", "/v1/query", body={"resource": "crm", "environment": "staging", "sql": "SELECT 1"})
        assert st == 401

        st, ctype, raw = scrape(mport)
        try:
            after = parse_page(raw)
        except ParseError as e:
            r.check(False, "the page after traffic parses strictly", e)
            return
        page = raw.decode()

        def delta(decision, rule):
            return http_count(after, decision, rule) - http_count(before, decision, rule)

        want = {("allow", "grant"): 4, ("deny", "destructive-ddl"): 1, ("deny", "forbidden-statement"): 1,
                ("deny", "needs-app-or-edit"): 1, ("deny", "no-grant"): 1, ("deny", "token-environment"): 1,
                ("pending", "approval-required"): 1, ("error", "none"): 2}
        got = {k: delta(*k) for k in want}
        r.check(got == want, "requests_total moved by exactly the traffic sent, by decision and rule", got)
        total = sum(v for (n, lab, v) in after[REQ]["samples"]) - sum(v for (n, lab, v) in before[REQ]["samples"])
        r.check(total == 12, "and by nothing else (12 requests in all)", total)
        r.check(all(lab["front"] == "http" for (_, lab, _) in after[REQ]["samples"]),
                "only the http front has counts", after[REQ]["samples"])

        dec = "gatehouse_decision_duration_seconds"
        d_count = value(after, dec, dec + "_count", front="http") - value(before, dec, dec + "_count", front="http")
        r.check(d_count == 9, "decision histogram: 9 statements analysed and decided (not the refusals before "
                "analysis)", d_count)
        be = "gatehouse_backend_duration_seconds"
        b_count = value(after, be, be + "_count", kind="sqlite") - value(before, be, be + "_count", kind="sqlite")
        b_sum = value(after, be, be + "_sum", kind="sqlite")
        r.check(b_count == 4 and 0 < b_sum < 10, "backend histogram (sqlite): 4 statements ran (3 reads, 1 write)",
                (b_count, b_sum))
        recs = value(after, "gatehouse_audit_records_total") - value(before, "gatehouse_audit_records_total")
        audit_now = len(g.audit_lines())
        r.check(recs == 11 and audit_now - audit_before == 11,
                "audit_records_total moved by 11, as many records as the log gained", (recs, audit_now - audit_before))
        fs = "gatehouse_audit_fsync_duration_seconds"
        r.check(value(after, fs, fs + "_count") == value(after, "gatehouse_audit_fsyncs_total") > 0
                and value(after, "gatehouse_audit_fsyncs_total") <= value(after, "gatehouse_audit_records_total"),
                "fsync histogram count == audit_fsyncs_total <= records (group commit)",
                (value(after, fs, fs + "_count"), value(after, "gatehouse_audit_fsyncs_total")))
        r.check(value(before, "gatehouse_approvals_pending") == 0 and value(after, "gatehouse_approvals_pending") == 1,
                "approvals_pending: 0, then 1 after the pending write",
                (value(before, "gatehouse_approvals_pending"), value(after, "gatehouse_approvals_pending")))
        busy = value(after, "gatehouse_workers", state="busy")
        idle = value(after, "gatehouse_workers", state="idle")
        r.check(busy >= 1 and busy + idle >= 2, "workers gauge: the rendering worker is busy, 2 or more in all",
                (busy, idle))
        r.check(value(after, "gatehouse_pg_pool_max_connections") == 8
                and value(after, "gatehouse_pg_pool_connections", state="idle") == 0,
                "pool gauges are there with no PostgreSQL resource (max 8, none open)")
        leaked = [w for w in ("alice", "bob", "erin", "crm", "staging", "production", "invoices", "customers",
                              "notes", "metrics note", "apr_", "req_") if w in page]
        r.check(not leaked, "no user, resource, environment, app, table, parameter or id appears on the page", leaked)
        families = sorted(after)
        r.check(set(families) >= {REQ, dec, be, fs, "gatehouse_audit_records_total", "gatehouse_approvals_pending",
                                  "gatehouse_pg_pool_connections", "gatehouse_pg_pool_waiting",
                                  "gatehouse_pg_pool_waits_total"}
                and all(after[n]["help"] for n in families), "every family is there with its HELP", families)

        # ---- approve: pending drops to 0; approvals are not data requests
        st, doc, raw2 = g.request("POST", "/v1/approvals/%s/approve" % approval, body="", token=carol)
        assert st == 200, raw2
        st, _, raw = scrape(mport)
        f3 = parse_page(raw)
        r.check(value(f3, "gatehouse_approvals_pending") == 0, "approvals_pending: 0 once approved")
        r.check(sum(v for (_, _, v) in f3[REQ]["samples"]) == sum(v for (_, _, v) in after[REQ]["samples"]),
                "an approval is not counted as a data request")
        r.check(value(f3, be, be + "_count", kind="sqlite") == value(after, be, be + "_count", kind="sqlite") + 1,
                "the approved write's run is timed on the backend")

        # ---- the tokenless listener serves nothing else and is not audited
        n0 = len(g.audit_lines())
        scrape(mport)
        scrape(mport)
        r.check(len(g.audit_lines()) == n0, "scrapes on the metrics listener add no audit record")
        st, _, body = scrape(mport, "/healthz")
        r.check(st == 200 and json.loads(body)["status"] == "ok", "the metrics listener answers /healthz")
        st, _, body = scrape(mport, "/v1/query", method="POST", token=bob)
        r.check(st == 404, "the metrics listener refuses /v1/query, even with a token (404)", body[:200])
        st, _, body = scrape(mport, "/v1/config", token=erin)
        r.check(st == 404, "and the admin endpoints (404)", body[:200])
        st, _, body = scrape(mport, "/metrics", method="POST")
        r.check(st == 405, "POST /metrics is 405", body[:200])

        # ---- the API port: admins only, audited
        st, _, body = scrape(g.port)
        r.check(st == 401, "the API port's /metrics needs a token (401)", body[:200])
        st, _, body = scrape(g.port, token=bob)
        r.check(st == 403, "and an admin (bob: 403)", body[:200])
        n1 = len(g.audit_lines())
        st, ctype, body = scrape(g.port, token=erin)
        ok = st == 200 and ctype.startswith("text/plain; version=0.0.4")
        try:
            parse_page(body)
        except ParseError as e:
            ok = e
        r.check(ok is True, "an admin reads the same page on the API port", ok)
        new = g.audit_lines()[n1:]
        r.check([x.get("event") for x in new] == ["metrics.read"] and new[0]["user"] == "erin",
                "the admin's read is audited (metrics.read)", new)
        refused = [x for x in g.audit_lines() if x.get("event") == "metrics.read" and x.get("rule") == "not-admin"]
        r.check(len(refused) == 1 and refused[0]["user"] == "bob", "bob's refused read is audited (not-admin)", refused)

        # ---- logs at info: JSON lines, no parameter, secret or token
        canary_param = "param-" + secrets.token_hex(8)
        canary_secret = "Secret-" + secrets.token_hex(12)
        out = g.cli("secret", "set", "--data", g.data, "metrics-canary", input=canary_secret + "\n")
        r.check(out.returncode == 0, "a secret is set while the server runs", out.stderr)
        st, doc, _ = g.query(alice_app, "SELECT name FROM customers WHERE name = ?", params=[canary_param])
        r.check(st == 200 and doc["rows"] == [], "a read with a unique parameter value", doc)
        st, doc, _ = g.query(bob, "SELECT * FROM nosuchtable WHERE x = ?", params=[canary_param])
        r.check(st >= 400, "and a refused one with the same value", st)
        rc = g.stop()
        r.check(rc == 0, "server stops cleanly", rc)
        lines = all_json(r, g, "info level")
        log = g.server_log()
        r.check(canary_param not in log and canary_secret not in log, "the parameter value and the secret are in no "
                "log line", [l for l in log.split("\n") if canary_param in l or canary_secret in l])
        toks = [bob, bob_prod, carol, alice_app, alice, erin]
        r.check(all(t not in log and t.rsplit(".", 1)[1] not in log for t in toks), "no token is in any log line")
        r.check(not [l for l in lines if l["level"] == "debug"], "no debug line at info level")
        r.check(any(l["msg"] == "serving" and l.get("workers") == "2" for l in lines),
                "start-up line carries fields (workers)", [l for l in lines if l["msg"] == "serving"])
    finally:
        g.close()


def log_level_suite(r):
    # --log-sensitive alone is refused
    g = Gatehouse()
    try:
        out = g.cli("serve", "--data", g.data, "--http", "127.0.0.1:0", "--log-sensitive", timeout=30)
        r.check(out.returncode == 2 and "--log-sensitive needs --log-level debug" in out.stderr,
                "--log-sensitive without --log-level debug is a usage error (2)", out.stderr)
        out = g.cli("serve", "--data", g.data, "--http", "127.0.0.1:0", "--metrics", "nonsense", timeout=30)
        r.check(out.returncode == 1 and "--metrics: expected HOST:PORT" in out.stderr,
                "--metrics with a bad address is refused", out.stderr)
        try:
            d = json.loads(out.stderr.strip().split("\n")[-1])
            ok = d["level"] == "error" and "--metrics" in d["error"]
        except (ValueError, KeyError) as e:
            ok = e
        r.check(ok is True, "and the refusal is a JSON log line", out.stderr)
    finally:
        g.close()

    for level, extra in (("error", ()), ("debug", ()), ("debug", ("--log-sensitive",))):
        g = Gatehouse()
        what = "--log-level %s%s" % (level, " --log-sensitive" if extra else "")
        try:
            g.start("--log-level", level, *extra)
            canary = "param-" + secrets.token_hex(8)
            canary_secret = "Secret-" + secrets.token_hex(12)
            g.cli("secret", "set", "--data", g.data, "metrics-canary", input=canary_secret + "\n")
            tok, _ = g.token("alice", "staging", app="invoices")
            bob, _ = g.token("bob", "staging")
            st, _, _ = g.query(tok, "SELECT name FROM customers WHERE name = ?", params=[canary])
            st2, _, _ = g.query(bob, "DROP TABLE notes")
            rc = g.stop()
            r.check(st == 200 and st2 == 403 and rc == 0, "%s: traffic and a clean stop" % what, (st, st2, rc))
            lines = all_json(r, g, what)
            log = g.server_log()
            r.check(canary_secret not in log and tok not in log and bob not in log,
                    "%s: no secret or token in the log" % what)
            if level == "error":
                r.check(all(l["level"] == "error" for l in lines), "%s: no info, warn or debug line" % what,
                        [l for l in lines if l["level"] != "error"][:3])
                continue
            dec = [l for l in lines if l["msg"] == "decision"]
            r.check(len(dec) == 2 and {l["rule"] for l in dec} == {"grant:crm/staging/group:analysts/use",
                                                                   "destructive-ddl"}
                    and all(l["level"] == "debug" and l["front"] == "http" and l["resource"] == "crm" for l in dec),
                    "%s: one debug line per decision, with its rule" % what, dec)
            if not extra:
                r.check(canary not in log and "SELECT name FROM customers" not in log and "DROP TABLE" not in log
                        and all("statement" not in l and "params" not in l for l in dec),
                        "%s: statements and parameters are not logged" % what, dec)
            else:
                sel = [l for l in dec if l["decision"] == "allow"]
                r.check(sel and sel[0].get("statement") == "SELECT name FROM customers WHERE name = ?"
                        and json.loads(sel[0].get("params")) == [canary],
                        "%s: the statement and its parameters are logged, as asked" % what, sel)
        finally:
            g.close()


# ------------------------------------------------------------------ PostgreSQL and the wire front

def pg_suite(r):
    try:
        import psycopg
        import pg
        import pgfix
    except ImportError as e:
        r.check(False, "psycopg and tests/e2e/pg.py are needed for the wire front part", e)
        return
    if not os.path.exists(pg.pg_tool("initdb")):
        r.check(False, "PostgreSQL 15 binaries are needed for the wire front part", pg.pg_tool("initdb"))
        return
    with pgfix.PgGatehouse(pool=3) as f:
        f.start("--metrics", "127.0.0.1:0")
        line = f.gh.proc.stdout.readline().decode()
        mport = int(line.strip().rsplit(":", 1)[1])
        bob, _ = f.gh.token("bob", "staging")
        bobp, _ = f.gh.token("bob", "production")
        st, _, raw = scrape(mport)
        before = parse_page(raw)

        c = f.connect("bob", bob)
        for i in (1, 2):
            c.execute("SELECT name FROM customers WHERE id = %s", [i]).fetchall()          # allow grant x2
        c.execute("CREATE TABLE IF NOT EXISTS customers (id int)")                           # allow grant (a NOTICE)
        errs = []
        for sql in ("DROP TABLE customers", "SELEC 1", "SET work_mem = '8MB'"):             # deny x3
            try:
                c.execute(sql)
            except psycopg.Error as e:
                errs.append(e.sqlstate)
        with c.transaction():                                                                # BEGIN, COMMIT
            c.execute("SELECT count(*) FROM invoices").fetchall()                            # allow grant
        c.close()
        p = f.connect("bob", bobp, env="production")
        try:
            p.execute("UPDATE invoices SET status = %s WHERE id = %s", ["wire-pending", 1])  # pending
        except psycopg.Error as e:
            errs.append(e.sqlstate)
        p.close()
        r.check(errs == ["42501", "42601", "0A000", "5GA01"], "wire traffic: three refusals and a pending write",
                errs)
        st, _, raw = scrape(mport)
        after = parse_page(raw)

        def d(decision, rule):
            return (value(after, REQ, front="pgwire", decision=decision, rule=rule)
                    - value(before, REQ, front="pgwire", decision=decision, rule=rule))

        want = {("allow", "grant"): 4, ("allow", "client-transaction"): 2, ("deny", "destructive-ddl"): 1,
                ("deny", "forbidden-statement"): 1, ("deny", "session-statement"): 1,
                ("pending", "approval-required"): 1}
        got = {k: d(*k) for k in want}
        total = sum(v for (_, lab, v) in after[REQ]["samples"] if lab["front"] == "pgwire")
        r.check(got == want and total == 10, "pgwire requests_total moved by exactly the wire traffic",
                (got, total))
        r.check(sum(v for (_, lab, v) in after[REQ]["samples"] if lab["front"] == "http") == 0,
                "and nothing was counted for http")
        be = "gatehouse_backend_duration_seconds"
        n = value(after, be, be + "_count", kind="postgres") - value(before, be, be + "_count", kind="postgres")
        r.check(n == 4, "backend histogram (postgres): the 4 statements that ran", n)
        dec = "gatehouse_decision_duration_seconds"
        n = value(after, dec, dec + "_count", front="pgwire")
        r.check(n == 6, "decision histogram (pgwire): the 6 statements the policy decided", n)
        r.check(value(after, "gatehouse_pg_pool_max_connections") == 3
                and value(after, "gatehouse_pg_pool_connections", state="idle") >= 1
                and value(after, "gatehouse_pg_pool_connections", state="busy") == 0
                and value(after, "gatehouse_pg_pool_waiting") == 0,
                "pool gauges: max 3 per pool, idle connections kept, none busy or waiting",
                [(n, l, v) for (n, l, v) in after["gatehouse_pg_pool_connections"]["samples"]])

        # pool waits: hold every connection of the staging pool in client transactions, then one more asks
        holders = []
        for _ in range(3):
            h = f.connect("bob", bob)
            h.execute("BEGIN")
            holders.append(h)
        import threading
        res = {}

        def waiter():
            try:
                w = f.connect("bob", bob)
                res["rows"] = w.execute("SELECT 1").fetchall()
                w.close()
            except psycopg.Error as e:
                res["err"] = e
        t = threading.Thread(target=waiter)
        t.start()
        seen_waiting = 0
        for _ in range(100):
            pw = parse_page(scrape(mport)[2])
            seen_waiting = value(pw, "gatehouse_pg_pool_waiting")
            if seen_waiting:
                break
            time.sleep(0.02)
        holders[0].execute("ROLLBACK")
        t.join(30)
        for h in holders:
            h.close()
        final = parse_page(scrape(mport)[2])
        r.check(seen_waiting == 1 and res.get("rows") == [(1,)]
                and value(final, "gatehouse_pg_pool_waits_total") - value(after, "gatehouse_pg_pool_waits_total") == 1
                and value(final, "gatehouse_pg_pool_wait_timeouts_total") == 0,
                "a request waiting for a pooled connection shows in pool_waiting and pool_waits_total",
                (seen_waiting, res, value(final, "gatehouse_pg_pool_waits_total")))
        page = scrape(mport)[2].decode()
        r.check(pgfix.CANARY not in page and "crm" not in page and "bob" not in page,
                "no DSN password, resource or user on the page")
        f.gh.stop()
        all_json(r, f.gh, "with PostgreSQL")
        log = f.gh.server_log()
        r.check(pgfix.CANARY not in log and "already exists" not in log,
                "the backend password and the backend's NOTICE (which may quote data) are not in the log",
                [l for l in log.split("\n") if "exists" in l or pgfix.CANARY in l])


def body(r):
    parser_self_test(r)
    http_suite(r)
    log_level_suite(r)
    pg_suite(r)


if __name__ == "__main__":
    run_suite("test_metrics.py", body)
