"""Configuration and the operator verbs: init (once, private modes), apply (line-numbered
errors, all or nothing, versions, live reload), export round trip, relative resource paths,
and the master key's protections (file mode, GATEHOUSE_MASTER_KEY)."""
import hashlib
import os
import re
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import DEFAULT_POLICY, Gatehouse, make_db, run_suite


def tree_hashes(d):
    out = {}
    for root, _, files in os.walk(d):
        for name in files:
            p = os.path.join(root, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, d)] = hashlib.sha256(f.read()).hexdigest()
    return out


def position(text, line_has, token):
    """1-based line and column of token on the first line that contains line_has."""
    for i, line in enumerate(text.split("\n")):
        if line_has in line:
            return i + 1, line.index(token) + 1
    raise AssertionError("no line contains %r" % line_has)


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def version_of(out):
    m = re.search(r"as policy version (\d+)", out.stdout)
    return int(m.group(1)) if m else None


def body(r):
    g = Gatehouse()
    try:
        # --- init: once, private
        r.check(mode(g.data) == 0o700, "the data directory is mode 0700", oct(mode(g.data)))
        key = os.path.join(g.data, "master.key")
        r.check(mode(key) == 0o600 and os.path.getsize(key) == 32, "master.key is mode 0600 (32 bytes)", oct(mode(key)))
        r.check(mode(os.path.join(g.data, "gatehouse.db")) & 0o077 == 0, "the store is not readable by others",
                oct(mode(os.path.join(g.data, "gatehouse.db"))))
        before = tree_hashes(g.data)
        out = g.cli("init", "--data", g.data)
        r.check(out.returncode == 1 and "already initialised" in out.stderr, "a second init fails", out.stderr)
        r.check(tree_hashes(g.data) == before, "the second init changed no file (hashes equal)")
        out = g.cli("init", "--data", g.data)
        r.check(out.returncode != 0 and tree_hashes(g.data) == before, "a third init neither")
        pre = g.path("pre-made")
        os.mkdir(pre, 0o755)
        os.chmod(pre, 0o755)
        out = g.cli("init", "--data", pre)
        r.check(out.returncode == 0 and mode(pre) == 0o700, "init of an existing 0755 directory makes it 0700",
                (out.stderr, oct(mode(pre))))
        out = g.cli("init")
        r.check(out.returncode == 2, "init without --data is a usage error (2)", out.stderr)

        g.start()
        alice, _ = g.token("alice", "staging", app="invoices")
        erin, _ = g.token("erin", "staging")
        st, doc, _ = g.query(alice, "SELECT name FROM customers WHERE id = 1")
        r.check(st == 200 and doc["rows"] == [["Nordlicht GmbH"]], "alice reads through the app", doc)
        st, doc, _ = g.query(erin, "SELECT name FROM customers WHERE id = 1")
        r.check(st == 403 and doc["error"].get("rule") == "no-grant", "erin has no grant yet (403 no-grant)", doc)

        # --- apply errors name FILE:LINE:COLUMN and exit 2; nothing changes
        export_before = g.cli("export", "--data", g.data).stdout
        r.check(export_before.startswith("version: 1\n"), "export prints the policy", export_before[:80])
        erin_grant = "grants:\n  - { resource: crm, environment: staging, user: erin, access: edit }\n"

        def broken(old, new):
            # each also grants erin, so that a partial apply would show
            return DEFAULT_POLICY.replace(old, new).replace("grants:\n", erin_grant)

        bad = [
            ("unknown key", broken("version: 1\n", "version: 1\ncolour: blue\n"), "colour", "colour"),
            ("undefined user in a group", broken("members: [alice, mallory]", "members: [alice, mallory, zed]"),
             "zed", "zed"),
            ("undefined group in a grant", broken("group: analysts, access: use }", "group: nosuch, access: use }"),
             "nosuch", "nosuch"),
            ("grant environment the resource lacks",
             broken("  - name: staging\n", "  - name: staging\n  - name: qa\n").replace(
                 "grants:\n", "grants:\n  - { resource: crm, environment: qa, user: erin, access: use }\n"),
             "environment: qa", "{"),
            ("bad access level", broken("user: dave, access: own }", "user: dave, access: write }"),
             "access: write", "write"),
            ("YAML syntax error", broken("  - name: carol\n", "  - name: carol: x\n"), "carol: x", ": x"),
        ]
        for what, text, line_has, token in bad:
            line, col = position(text, line_has, token)
            name = "bad-%s.yaml" % what.replace(" ", "-")
            out = g.apply(text, name=name)
            where = "%s:%d:%d:" % (g.path(name), line, col)
            r.check(out.returncode == 2 and where in out.stderr,
                    "apply with %s exits 2 and names %s" % (what, where.replace(g.tmp + "/", "")), out.stderr)
        missing = g.path("does-not-exist.yaml")
        out = g.cli("apply", "--data", g.data, missing)
        r.check(out.returncode == 2 and missing in out.stderr, "apply of a file that does not exist exits 2 and names it",
                out.stderr)
        out = g.cli("apply", "--data", g.data)
        r.check(out.returncode == 2, "apply without a file is a usage error", out.stderr)
        r.check(g.cli("export", "--data", g.data).stdout == export_before, "failed applies left the export unchanged")
        st, doc, _ = g.query(erin, "SELECT 1")
        r.check(st == 403, "the server still refuses erin (no part of a failed policy took effect)", doc)
        st, doc, _ = g.query(alice, "SELECT name FROM customers WHERE id = 2")
        r.check(st == 200 and doc["rows"] == [["Cafe Ole"]], "and still answers alice with the old grants", doc)

        # --- a good apply: next version, picked up by the running server
        out = g.apply(DEFAULT_POLICY)
        v1 = version_of(out)
        r.check(out.returncode == 0 and v1 == 2, "re-applying the policy is version 2 (failed applies took none)",
                out.stdout + out.stderr)
        granted = DEFAULT_POLICY + "  - { resource: crm, environment: staging, user: erin, access: edit }\n"
        out = g.apply(granted)
        r.check(out.returncode == 0 and version_of(out) == v1 + 1, "apply bumps the version", out.stdout)
        t0 = time.monotonic()
        st = None
        while time.monotonic() - t0 < 1.0:
            st, doc, _ = g.query(erin, "SELECT name FROM customers WHERE id = 3")
            if st == 200:
                break
            time.sleep(0.05)
        r.check(st == 200 and doc["rows"] == [["Brightwater"]],
                "the running server uses the new grant within a second (403 -> 200)", doc)
        r.check(("policy version %d loaded" % (v1 + 1)) in g.server_log(), "the server logs the version it loaded")

        # --- export round trip
        exp1 = g.cli("export", "--data", g.data)
        p = g.path("exported.yaml")
        with open(p, "w") as f:
            f.write(exp1.stdout)
        out = g.cli("apply", "--data", g.data, p)
        exp2 = g.cli("export", "--data", g.data)
        r.check(exp1.returncode == 0 and out.returncode == 0 and exp2.stdout == exp1.stdout,
                "export re-applied gives an identical export", out.stderr)
        r.check('environment: "staging", user: "erin", access: edit' in exp1.stdout, "the export holds the new grant",
                exp1.stdout)
        st, doc, _ = g.query(erin, "SELECT 1 AS one")
        r.check(st == 200, "the re-applied export keeps erin's grant", doc)

        odd = g.path('odd dir "q" #h: \u00fc\\x')
        os.mkdir(odd)
        make_db(os.path.join(odd, "s.db"), "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);"
                                           "INSERT INTO customers VALUES (1, 'Odd Path AG');")
        with open(g.path("odd.yaml"), "w") as f:
            f.write(DEFAULT_POLICY.replace("staging:    { path: crm-staging.db }",
                                           "staging:    { path: '%s' }" % os.path.join(odd, "s.db")))
        out = g.cli("apply", "--data", g.data, g.path("odd.yaml"))
        exp1 = g.cli("export", "--data", g.data).stdout
        with open(p, "w") as f:
            f.write(exp1)
        out2 = g.cli("apply", "--data", g.data, p)
        exp2 = g.cli("export", "--data", g.data).stdout
        r.check(out.returncode == 0 and out2.returncode == 0 and exp1 == exp2,
                "a path with spaces, quotes, '#', ':', a backslash and non-ASCII survives export and re-apply",
                out.stderr + out2.stderr)
        st, doc, _ = g.query(alice, "SELECT name FROM customers WHERE id = 1")
        r.check(st == 200 and doc["rows"] == [["Odd Path AG"]], "and the server opens that file", doc)

        # --- relative resource paths resolve against the policy file's folder
        sub = g.path("sub")
        os.mkdir(sub)
        make_db(os.path.join(sub, "rel-staging.db"), "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);"
                                                    "INSERT INTO customers VALUES (1, 'Relative Ltd');")
        rel = DEFAULT_POLICY.replace("staging:    { path: crm-staging.db }", "staging:    { path: rel-staging.db }") \
                            .replace("production: { path: crm-prod.db }", "production: { path: ../crm-prod.db }")
        out = g.apply(rel, name="sub/policy.yaml")
        exp = g.cli("export", "--data", g.data).stdout
        want = os.path.join(os.path.realpath(sub), "rel-staging.db")
        r.check(out.returncode == 0 and ('"%s"' % want) in exp, "a relative path is stored resolved against the file",
                exp)
        st, doc, _ = g.query(alice, "SELECT name FROM customers WHERE id = 1")
        r.check(st == 200 and doc["rows"] == [["Relative Ltd"]], "and the server reads that file", doc)
        out = g.apply(DEFAULT_POLICY)
        r.check(out.returncode == 0, "the default policy applies again")

        # --- serve refuses what it must not run on
        rc = g.stop()
        r.check(rc == 0, "server stops cleanly", rc)
        empty = g.path("empty")
        os.mkdir(empty, 0o700)
        out = g.cli("serve", "--data", empty, "--http", "127.0.0.1:0", timeout=30)
        r.check(out.returncode == 2 and "not an initialised data directory" in out.stderr,
                "serve refuses a non-initialised directory (exit 2)", out.stderr)
        out = g.cli("serve", "--data", g.path("nowhere"), "--http", "127.0.0.1:0", timeout=30)
        r.check(out.returncode == 2, "serve refuses a missing directory (exit 2)", out.stderr)
        out = g.cli("token", "issue", "--data", empty, "--user", "alice", "--env", "staging")
        r.check(out.returncode == 2, "token issue refuses a non-initialised directory (exit 2)", out.stderr)

        os.chmod(key, 0o644)
        try:
            out = g.cli("serve", "--data", g.data, "--http", "127.0.0.1:0", timeout=30)
        except subprocess.TimeoutExpired as e:
            out = e
        r.check(getattr(out, "returncode", None) not in (0, None) and "chmod" in (out.stderr or ""),
                "serve refuses a master.key with mode 0644 and names chmod", getattr(out, "stderr", out))
        out = g.cli("token", "issue", "--data", g.data, "--user", "alice", "--env", "staging")
        r.check(out.returncode != 0 and "chmod" in out.stderr and out.stdout == "",
                "token issue refuses a master.key with mode 0644 and names chmod", out.stderr)
        with open(key, "rb") as f:
            real_key = f.read().hex()
        out = g.cli("token", "issue", "--data", g.data, "--user", "alice", "--env", "staging",
                    env={"GATEHOUSE_MASTER_KEY": real_key})
        r.check(out.returncode == 0 and out.stdout.count(".") == 2,
                "GATEHOUSE_MASTER_KEY with the right key is used instead of the file", out.stderr)
        os.chmod(key, 0o600)

        wrong = "ab" * 32
        out = g.cli("token", "issue", "--data", g.data, "--user", "alice", "--env", "staging",
                    env={"GATEHOUSE_MASTER_KEY": wrong})
        r.check(out.returncode == 1 and "does not open" in out.stderr and out.stdout == "",
                "GATEHOUSE_MASTER_KEY with a wrong key: token issue fails (the signing key does not open)", out.stderr)
        out = g.cli("token", "issue", "--data", g.data, "--user", "alice", "--env", "staging",
                    env={"GATEHOUSE_MASTER_KEY": "not-hex"})
        r.check(out.returncode != 0 and "GATEHOUSE_MASTER_KEY" in out.stderr and "not-hex" not in out.stderr,
                "a malformed GATEHOUSE_MASTER_KEY is refused without echoing it", out.stderr)
        try:
            out = g.cli("serve", "--data", g.data, "--http", "127.0.0.1:0", env={"GATEHOUSE_MASTER_KEY": wrong},
                        timeout=30)
        except subprocess.TimeoutExpired as e:
            out = e
        r.check(getattr(out, "returncode", None) not in (0, None) and "does not open" in (out.stderr or ""),
                "serve refuses a wrong GATEHOUSE_MASTER_KEY", getattr(out, "stderr", out))

        g.start()
        tok, _ = g.token("alice", "staging", app="invoices")
        st, doc, _ = g.query(tok, "SELECT 1 AS one")
        r.check(st == 200, "with mode 0600 restored, tokens and serve work again", doc)
        rc = g.stop()
        r.check(rc == 0, "server stops cleanly", rc)
        out = g.verify()
        r.check(out.returncode == 0, "audit verify is ok", out.stdout + out.stderr)
    finally:
        g.close()


run_suite("test_config", body)
