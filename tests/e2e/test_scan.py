"""`gatehouse scan` end to end through the CLI: the whole expected set of findings on a tree
(injection fixtures, planted secrets, resource references), formats (text, JSON, SARIF 2.1.0),
exit codes, suppressions, baselines, .gitignore, binary and oversized files, the policy's scan
section, and dependencies against a local registry the test starts. Secrets are built at run
time from pieces: this file holds none."""
import http.server
import json
import os
import random
import re
import shutil
import string
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

ROOT = lib.ROOT
FIX = os.path.join(ROOT, "tests", "scan")
rnd = random.Random(11)
AN = string.ascii_letters + string.digits


def r(alpha, n):
    return "".join(rnd.choice(alpha) for _ in range(n))


def scan(*args, cwd=None, env=None):
    e = dict(os.environ)
    e["XDG_CACHE_HOME"] = env_cache
    if env:
        e.update(env)
    return subprocess.run([lib.BIN, "scan"] + list(args), capture_output=True, text=True, cwd=cwd, env=e,
                          timeout=300)


def findings(out):
    doc = json.loads(out.stdout)
    return doc, {(f["path"], f["line"], f["rule"]) for f in doc["findings"]}


def markers(base, sub):
    """(path relative to base, line, rule) for every '# expect: RULE' / '// expect: RULE'."""
    want = set()
    for d, _, files in os.walk(os.path.join(base, sub)):
        for name in files:
            p = os.path.join(d, name)
            with open(p, errors="replace") as f:
                for i, line in enumerate(f, 1):
                    for m in re.finditer(r"expect: ([a-z0-9-]+)", line):
                        want.add((os.path.relpath(p, base), i, m.group(1)))
    return want


# secrets planted in generated files: (kind, line text, rule id)
def secret_lines():
    return [
        ("const gh = '%s';" % ("gh" + "p_" + r(AN, 36)), "github-pat-classic"),
        ("SLACK = '%s'" % ("xo" + "xb-" + r("0123456789", 12) + "-" + r("0123456789", 13) + "-" + r(AN, 24)),
         "slack-bot-token"),
        ("stripe = '%s'" % ("sk" + "_live_" + r(AN, 24)), "stripe-live-secret-key"),
        ("const sg = '%s';" % ("S" + "G." + r(AN, 22) + "." + r(AN, 43)), "sendgrid-api-key"),
        ("//registry.npmjs.org/:_authToken=%s" % ("np" + "m_" + r(AN, 36)), "npm-access-token"),
        ("aws_access_key_id = '%s'" % ("AK" + "IA" + r(string.ascii_uppercase + "234567", 16)), "aws-access-key-id"),
        ("DATABASE_URL = 'postgres://app:%s@db.internal:5432/app'" % r(AN, 20), "postgres-uri-password"),
        ("const maps = '%s';" % ("AI" + "za" + r(AN + "-_", 35)), "google-api-key"),
    ]


class Registry(http.server.BaseHTTPRequestHandler):
    docs = {}
    hits = []

    def do_GET(self):
        name = self.path.lstrip("/").replace("%2f", "/").replace("%2F", "/")
        Registry.hits.append(name)
        doc = Registry.docs.get(name)
        if doc is None:
            self.send_response(404)
            self.end_headers()
            return
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def main(t):
    global env_cache
    tmp = tempfile.mkdtemp(prefix="gh-scan-")
    env_cache = os.path.join(tmp, "cache")
    try:
        tree = os.path.join(tmp, "app")
        shutil.copytree(os.path.join(FIX, "inject"), os.path.join(tree, "inject"))
        want = markers(tree, "inject")
        planted = {}
        os.makedirs(os.path.join(tree, "config"))
        for i, (line, rule) in enumerate(secret_lines()):
            rel = "config/settings%d.js" % i
            body = ["// settings", "const retries = 3;", line, "module.exports = { retries };"]
            with open(os.path.join(tree, rel), "w") as f:
                f.write("\n".join(body) + "\n")
            want.add((rel, 3, rule))
            planted[rel] = line
        # ignored, binary and oversized files hold secrets that must not be reported
        with open(os.path.join(tree, ".gitignore"), "w") as f:
            f.write("# local files\nlocal/\n*.bak\n!keep.bak\n")
        os.makedirs(os.path.join(tree, "local"))
        with open(os.path.join(tree, "local", "creds.js"), "w") as f:
            f.write(secret_lines()[0][0] + "\n")
        with open(os.path.join(tree, "old.bak"), "w") as f:
            f.write(secret_lines()[2][0] + "\n")
        kept = secret_lines()[2]
        with open(os.path.join(tree, "keep.bak"), "w") as f:
            f.write(kept[0] + "\n")
        want.add(("keep.bak", 1, kept[1]))
        with open(os.path.join(tree, "blob.bin"), "wb") as f:
            f.write(b"\x00\x01" + secret_lines()[0][0].encode() + b"\n")
        with open(os.path.join(tree, "huge.js"), "w") as f:
            f.write(secret_lines()[0][0] + "\n" + "// padding\n" * 120000)

        out = scan(tree, "--format", "json", "--no-deps")
        t.check(out.returncode == 1, "findings at or above high: exit 1", out.stderr)
        doc, got = findings(out)
        missing, extra = want - got, got - want
        t.check(not missing and not extra, "the whole expected set: %d findings, none missing, none extra" % len(want),
                {"missing": sorted(missing)[:20], "extra": sorted(extra)[:20]})
        t.check(doc["summary"]["skipped"] >= 2 and doc["summary"]["ignored"] >= 2,
                "binary and oversized files skipped, .gitignore'd ones left out", doc["summary"])
        t.check(all(f.get("fix") for f in doc["findings"] if f["rule"].endswith("injection")),
                "every injection finding carries the safe rewrite")
        # secrets never appear in full, in any format
        outs = [out.stdout, scan(tree, "--no-deps", "--color", "always").stdout,
                scan(tree, "--no-deps", "--format", "sarif").stdout]
        leaked = [line for line in planted.values() for o in outs
                  if re.search(r"['=]([^'\s]{12,})", line) and re.search(r"['=]([^'\s]{12,})", line).group(1) in o]
        t.check(not leaked, "no planted secret appears in full in text, JSON or SARIF", leaked[:3])
        sec = [f for f in doc["findings"] if f["path"].startswith("config/")]
        t.check(sec and all(f["snippet"].endswith("\u2026") and len(f["snippet"]) <= 8 for f in sec),
                "secret snippets are redacted to their first characters", [f["snippet"] for f in sec][:3])

        # text output: grouped by file, plain when not a terminal
        txt = scan(tree, "--no-deps")
        t.check(txt.returncode == 1 and "config/settings0.js\n" in txt.stdout and "\033[" not in txt.stdout,
                "text output groups by file, no colour off a terminal", txt.stdout[:300])

        # SARIF 2.1.0 as code scanning reads it
        sarif = json.loads(outs[2])
        run = sarif["runs"][0]
        ids = {x["id"] for x in run["tool"]["driver"]["rules"]}
        res = run["results"]
        t.check(sarif["version"] == "2.1.0" and len(res) == len(want) and all(x["ruleId"] in ids for x in res),
                "SARIF: version 2.1.0, one result per finding, every ruleId among the rules", len(res))
        t.check(all(x["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1
                    and x["partialFingerprints"]["primaryLocationLineHash"] for x in res)
                and all(x.get("help", {}).get("text") for x in run["tool"]["driver"]["rules"]),
                "SARIF: regions, partialFingerprints and rule help text")

        # fail-on threshold and usage errors
        sevs = {f["severity"] for f in doc["findings"]}
        crit = scan(tree, "--no-deps", "--fail-on", "critical", "--format", "json")
        t.check(crit.returncode == (1 if "critical" in sevs else 0), "--fail-on critical: exit by the highest severity")
        t.check(scan(tree, "--format", "xml").returncode == 2, "an unknown format: exit 2")
        t.check(scan(os.path.join(tmp, "nope")).returncode == 2, "a missing path: exit 2 with a message")
        clean = os.path.join(tmp, "clean")
        os.makedirs(clean)
        with open(os.path.join(clean, "ok.js"), "w") as f:
            f.write("const q = 'SELECT 1';\nclient.query(q);\n")
        t.check(scan(clean, "--no-deps").returncode == 0, "a clean tree: exit 0")

        # an unreadable file is reported by name, the rest is scanned, and the scan does not pass
        if os.geteuid() == 0 and shutil.which("setpriv"):
            un = os.path.join(tmp, "unreadable")
            os.makedirs(un)
            with open(os.path.join(un, "secret.js"), "w") as f:
                f.write(secret_lines()[0][0] + "\n")
            with open(os.path.join(un, "locked.js"), "w") as f:
                f.write("const a = 1;\n")
            os.chmod(os.path.join(un, "locked.js"), 0)
            for d in (tmp, un):
                os.chmod(d, 0o755)
            os.chmod(os.path.join(un, "secret.js"), 0o644)
            u = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", lib.BIN, "scan",
                                un, "--no-deps", "--format", "json"], capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, HOME="/tmp"))
            du = json.loads(u.stdout) if u.stdout.startswith("{") else {"errors": [], "findings": []}
            t.check(u.returncode == 2 and any("locked.js" in e for e in du["errors"])
                    and any(f["path"] == "secret.js" for f in du["findings"]),
                    "an unreadable file: named in errors, the rest scanned, exit 2", (u.returncode, du.get("errors")))
            os.chmod(tmp, 0o700)

        # inline suppression needs a reason
        p0 = os.path.join(tree, "config", "settings0.js")
        lines = open(p0).read().split("\n")
        lines.insert(2, "// gatehouse:ignore github-pat-classic")
        open(p0, "w").write("\n".join(lines))
        _, got2 = findings(scan(tree, "--format", "json", "--no-deps"))
        t.check(("config/settings0.js", 4, "github-pat-classic") in got2, "a suppression without a reason does not count")
        lines[2] = "// gatehouse:ignore github-pat-classic test fixture, rotated"
        open(p0, "w").write("\n".join(lines))
        doc3, got3 = findings(scan(tree, "--format", "json", "--no-deps"))
        t.check(not any(x[0] == "config/settings0.js" for x in got3) and doc3["summary"]["suppressed"] == 1,
                "gatehouse:ignore RULE reason on the line above suppresses it", doc3["summary"])

        # baseline: only new findings count
        base = os.path.join(tmp, "baseline.json")
        with open(base, "w") as f:
            f.write(scan(tree, "--format", "json", "--no-deps").stdout)
        # lines move: the fingerprint holds
        with open(os.path.join(tree, "config", "settings1.js")) as f:
            body = f.read()
        with open(os.path.join(tree, "config", "settings1.js"), "w") as f:
            f.write("// moved down\n\n" + body)
        b1 = scan(tree, "--format", "json", "--no-deps", "--baseline", base)
        d1, g1 = findings(b1)
        t.check(b1.returncode == 0 and not g1 and d1["summary"]["baselined"] == len(got3),
                "with the baseline nothing is new, even after lines moved", d1["summary"])
        newline, newrule = secret_lines()[3]
        with open(os.path.join(tree, "config", "new.js"), "w") as f:
            f.write(newline + "\n")
        b2 = scan(tree, "--format", "json", "--no-deps", "--baseline", base)
        t.check(b2.returncode == 1 and findings(b2)[1] == {("config/new.js", 1, newrule)},
                "a new secret is the only finding against the baseline", b2.stdout[:400])
        with open(os.path.join(tmp, "bad-baseline.json"), "w") as f:
            f.write("not json")
        t.check(scan(tree, "--baseline", os.path.join(tmp, "bad-baseline.json")).returncode == 2,
                "a baseline that is not a JSON report: exit 2")

        # resource references against a policy, as a user
        refs = os.path.join(tmp, "refs")
        shutil.copytree(os.path.join(FIX, "refs"), refs)
        pol = os.path.join(refs, "policy.yaml")
        want_refs = markers(tmp, "refs")
        want_refs = {(p[len("refs/"):], l, rr) for p, l, rr in want_refs}
        o = scan(refs, "--format", "json", "--no-deps", "--policy", pol, "--as", "bob")
        _, got_refs = findings(o)
        got_refs = {x for x in got_refs if x[2].startswith("resource-")}
        t.check(got_refs == want_refs, "resource references: the expected set for bob",
                {"missing": sorted(want_refs - got_refs), "extra": sorted(got_refs - want_refs)})
        t.check(scan(refs, "--as", "bob").returncode == 2, "--as without a policy: exit 2")
        t.check(scan(refs, "--policy", pol, "--as", "zed").returncode == 2, "--as an unknown user: exit 2")

        # the policy's scan section sets defaults; flags override
        pol2 = os.path.join(tmp, "scan-policy.yaml")
        with open(pol2, "w") as f:
            f.write("version: 1\nusers: [{name: bob}]\nscan:\n  fail_on: critical\n  max_file_size: 1K\n")
        big = os.path.join(tmp, "big")
        os.makedirs(big)
        with open(os.path.join(big, "a.js"), "w") as f:
            f.write("// x\n" * 400 + "const q = `SELECT ${x}`; db.query(q);\n")
        with open(os.path.join(big, "b.js"), "w") as f:
            f.write("const id = req.query.id;\ndb.query(`SELECT * FROM t WHERE id = ${id}`);\n")
        d4, g4 = findings(scan(big, "--format", "json", "--no-deps", "--policy", pol2))
        t.check(d4["summary"]["skipped"] == 1 and all(x[0] == "b.js" for x in g4),
                "scan.max_file_size from the policy skips the larger file", d4["summary"])
        t.check(scan(big, "--no-deps", "--policy", pol2).returncode == 0, "scan.fail_on: critical lets high pass")
        t.check(scan(big, "--no-deps", "--policy", pol2, "--fail-on", "high").returncode == 1,
                "--fail-on overrides the policy")

        # dependencies against a local registry
        now = time.time()
        Registry.docs = {
            "leftpad-old": {"time": {"1.0.0": iso(now - 400 * 86400)}, "versions": {"1.0.0": {"license": "MIT"}}},
            "fresh-pkg": {"time": {"2.0.0": iso(now - 2 * 86400)}, "versions": {"2.0.0": {"license": "MIT"}}},
            "gpl-pkg": {"time": {"1.0.0": iso(now - 400 * 86400)}, "versions": {"1.0.0": {"license": "GPL-3.0"}}},
            "event-stream": {"time": {"3.3.6": iso(now - 900 * 86400)}, "versions": {"3.3.6": {"license": "MIT"}}},
        }
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Registry)
        th = threading.Thread(target=srv.serve_forever, daemon=True)
        th.start()
        try:
            dep = os.path.join(tmp, "dep")
            os.makedirs(dep)
            lock = {"name": "app", "lockfileVersion": 3, "requires": True, "packages": {
                "": {"name": "app"},
                "node_modules/leftpad-old": {"version": "1.0.0"},
                "node_modules/fresh-pkg": {"version": "2.0.0"},
                "node_modules/gpl-pkg": {"version": "1.0.0"},
                "node_modules/event-stream": {"version": "3.3.6"},
                "node_modules/ghost-pkg": {"version": "0.1.0"}}}
            with open(os.path.join(dep, "package-lock.json"), "w") as f:
                json.dump(lock, f, indent=2)
            pol3 = os.path.join(tmp, "dep-policy.yaml")
            with open(pol3, "w") as f:
                f.write("version: 1\nusers: [{name: bob}]\nscan:\n  min_release_age: 7d\n"
                        "  licenses: [MIT, ISC]\n  deny_packages: [event-stream]\n"
                        "  registry: http://127.0.0.1:%d\n" % srv.server_address[1])
            o5 = scan(dep, "--format", "json", "--policy", pol3)
            d5 = json.loads(o5.stdout)
            byrule = {}
            for f in d5["findings"]:
                byrule.setdefault(f["rule"], []).append(f["message"])
            t.check(any("fresh-pkg" in m for m in byrule.get("dep-too-new", [])),
                    "a version published 2 days ago is too new", byrule)
            t.check(any("gpl-pkg" in m for m in byrule.get("dep-license", [])), "a licence outside the allow-list")
            t.check(any("event-stream" in m for m in byrule.get("dep-denied", [])), "a denied package")
            t.check(any("ghost-pkg" in m for m in byrule.get("dep-unverified", [])),
                    "a package the registry does not know fails closed")
            t.check(not any("leftpad-old" in m for ms in byrule.values() for m in ms), "an old, allowed package passes")
            # pinned Python requirements against a PyPI-shaped JSON API on the same server
            def pypi(t_up, lic="MIT", yanked=False):
                return {"info": {"license": lic, "yanked": yanked, "classifiers": []},
                        "urls": [{"upload_time_iso_8601": iso(t_up), "yanked": yanked}]}
            Registry.docs.update({
                "pypi/flask/2.0.0/json": pypi(now - 600 * 86400),
                "pypi/brand-new/0.1.0/json": pypi(now - 86400),
                "pypi/pulled/1.0.0/json": pypi(now - 600 * 86400, yanked=True)})
            py = os.path.join(tmp, "py")
            os.makedirs(py)
            with open(os.path.join(py, "requirements.txt"), "w") as f:
                f.write("flask==2.0.0\nbrand-new==0.1.0\npulled==1.0.0\nnowhere==1.0\nloose>=1.0\n")
            with open(pol3, "a") as f:
                f.write("  pypi_registry: http://127.0.0.1:%d/pypi\n" % srv.server_address[1])
            d6 = json.loads(scan(py, "--format", "json", "--policy", pol3).stdout)
            got6 = {(f["line"], f["rule"]) for f in d6["findings"]}
            t.check(got6 == {(2, "dep-too-new"), (3, "dep-yanked"), (4, "dep-unverified"), (5, "dep-unpinned")},
                    "requirements.txt against PyPI metadata: too new, yanked, unknown, unpinned; the old one passes",
                    sorted(got6))
            hits = len(Registry.hits)
            scan(dep, "--format", "json", "--policy", pol3)
            again = [h for h in Registry.hits[hits:] if h != "ghost-pkg"]
            t.check(not again, "a second scan takes what the registry answered from the on-disk cache", again)
        finally:
            srv.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


env_cache = None

if __name__ == "__main__":
    lib.run_suite("test_scan", main)
