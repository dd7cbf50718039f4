"""Remote administration (issue 7 §2) against the real server: PUT /v1/config (dry run with the
grant difference, invalid documents with line and column and nothing applied, the expected
version and concurrent PUTs, the no-admin guard), PUT /v1/secrets/{name} (write-only, never
echoed, used by a real PostgreSQL pool after rotation), POST /v1/tokens and DELETE
/v1/tokens/{id} (effective at once), POST /v1/users/{name}/disable|enable (open tokens refused
at once, on HTTP and the wire front), the `gatehouse admin` verbs and their exit statuses,
403 for non-admins on every route and verb, and every change in the audit trail naming the
admin, with the chain verifying."""
import json
import os
import sqlite3
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from lib import Gatehouse, run_suite, DEFAULT_POLICY

SECRET_VALUE = "Remote-secret-9d61c0b4f2"   # a canary: must never come back out
SECRET_VALUE2 = "Remote-secret-2-77aa19e3c5"


class Seen:
    """Every byte a client or operator saw, to sweep for secrets and tokens at the end."""

    def __init__(self):
        self.items = []

    def add(self, where, data):
        if isinstance(data, str):
            data = data.encode()
        self.items.append((where, data or b""))

    def grep(self, needle):
        return [w for w, d in self.items if needle.encode() in d]


def body(t):
    g = Gatehouse()
    seen = Seen()
    try:
        g.start()
        url = "http://127.0.0.1:%d" % g.port
        admin, _ = g.token("erin", "staging")
        alice, _ = g.token("alice", "staging")
        bob, _ = g.token("bob", "staging")

        def req(method, path, body=None, token=admin, conn=None):
            st, doc, raw = g.request(method, path, body, token=token, conn=conn)
            seen.add("%s %s -> %s" % (method, path, st), raw)
            return st, doc or {}, raw

        def cli(*args, token=admin, input=None):
            out = g.cli("admin", *args, env={"GATEHOUSE_URL": url, "GATEHOUSE_TOKEN": token}, input=input)
            seen.add("admin %s stdout" % " ".join(args), out.stdout)
            seen.add("admin %s stderr" % " ".join(args), out.stderr)
            return out

        def version():
            st, doc, _ = req("GET", "/v1/config")
            return doc.get("version"), doc.get("policy")

        def secrets_in_store():
            db = sqlite3.connect(os.path.join(g.data, "gatehouse.db"))
            try:
                return {n: (v, s) for n, v, s in db.execute("SELECT name, version, sealed FROM secrets")}
            finally:
                db.close()

        v0, doc0 = version()
        t.check(v0 == 1 and 'admins: ["platform"]' in doc0, "the admin reads policy version 1", v0)
        # the stored paths are absolute, so the export is a valid body for PUT as it stands
        path_staging = os.path.join(g.tmp, "crm-staging.db")

        # ---------------------------------------------------------------- non-admins: 403 everywhere
        routes = [("GET", "/v1/config", None),
                  ("PUT", "/v1/config", {"policy": doc0}),
                  ("PUT", "/v1/config", {"policy": doc0, "dry_run": True}),
                  ("PUT", "/v1/secrets/stolen", {"value": SECRET_VALUE}),
                  ("POST", "/v1/tokens", {"user": "erin", "environment": "staging"}),
                  ("DELETE", "/v1/tokens/tok_00112233445566778899aabbccddeeff", None),
                  ("POST", "/v1/users/erin/disable", None),
                  ("POST", "/v1/users/mallory/enable", None)]
        for method, path, b in routes:
            for who, tok in (("alice", alice), ("bob", bob)):
                st, doc, raw = req(method, path, b, token=tok)
                t.check(st == 403 and doc.get("error", {}).get("code") == "forbidden",
                        "non-admin %s: %s %s is 403" % (who, method, path), (st, raw[:200]))
            st, doc, raw = req(method, path, b, token=None)
            t.check(st == 401, "no token: %s %s is 401" % (method, path), st)
        t.check(version()[0] == 1, "after the refused attempts the policy is still version 1")
        t.check("stolen" not in secrets_in_store(), "the refused secret was not stored")
        refused = [r for r in g.audit_lines() if r["rule"] == "not-admin"]
        t.check(len(refused) == 2 * len(routes) and {r["user"] for r in refused} == {"alice", "bob"},
                "each refused attempt is recorded with rule not-admin", len(refused))
        verbs = [("config", "get"), ("config", "put", g.path("p.yaml")), ("config", "put", "--dry-run", g.path("p.yaml")),
                 ("secret", "set", "stolen"), ("token", "issue", "--user", "erin", "--env", "staging"),
                 ("token", "revoke", "tok_00112233445566778899aabbccddeeff"), ("user", "disable", "erin"),
                 ("user", "enable", "mallory")]
        with open(g.path("p.yaml"), "w") as f:
            f.write(doc0)
        for args in verbs:
            out = cli(*args, token=alice, input="x\n")
            t.check(out.returncode == 1 and "403" in out.stderr and "forbidden" in out.stderr,
                    "non-admin: gatehouse admin %s exits 1 with 403" % " ".join(args[:2]), out.stderr)
        t.check(version()[0] == 1 and "stolen" not in secrets_in_store(), "and nothing changed")

        # ---------------------------------------------------------------- config get
        out = cli("config", "get")
        exported = g.cli("export", "--data", g.data).stdout
        t.check(out.returncode == 0 and out.stdout == exported and "policy version 1" in out.stderr,
                "admin config get prints the applied document (as `gatehouse export`)", out.stderr)

        # ---------------------------------------------------------------- dry run
        changed = (doc0.replace('  - name: "mallory"\n', '  - name: "frank"\n  - name: "mallory"\n', 1)
                   .replace('group: "analysts", access: use', 'group: "analysts", access: edit')
                   .replace('  - { resource: "crm", environment: "production", user: "dave", access: own }\n', "")
                   + '  - { resource: "crm", environment: "staging", user: "frank", access: use }\n')
        changed = changed.replace('members: ["alice", "mallory"]', 'members: ["alice", "mallory", "frank"]')
        st, doc, raw = req("PUT", "/v1/config", {"policy": changed, "dry_run": True})
        d = doc.get("diff", {})
        t.check(st == 200 and doc.get("dry_run") is True and doc.get("changed") is True and doc.get("version") == 1,
                "dry run: 200, would change, version still 1", raw[:300])
        t.check(d.get("grants") == {"added": ["crm/staging/user:frank/use"],
                                    "removed": ["crm/production/user:dave/own"],
                                    "changed": [{"grant": "crm/staging/group:analysts", "from": "use", "to": "edit"}]},
                "dry run: the grant difference (added, removed, changed)", d.get("grants"))
        t.check(d.get("users", {}).get("added") == ["frank"] and d["users"]["removed"] == [] and
                d.get("groups", {}).get("changed") == [{"group": "analysts", "members": {"added": ["frank"], "removed": []}}],
                "dry run: the user added and the group's new member", (d.get("users"), d.get("groups")))
        t.check(version() == (v0, doc0), "dry run: nothing applied (same version, same document)")
        st, doc, raw = req("POST", "/v1/query", {"resource": "crm", "environment": "production",
                                                 "sql": "SELECT 1"}, token=g.token("dave", "production")[0])
        t.check(st == 200, "dry run: dave's grant that would be removed still works", raw[:200])
        with open(g.path("changed.yaml"), "w") as f:
            f.write(changed)
        out = cli("config", "put", "--dry-run", g.path("changed.yaml"))
        t.check(out.returncode == 0 and "+ grant crm/staging/user:frank/use" in out.stdout and
                "- grant crm/production/user:dave/own" in out.stdout and
                "~ grant crm/staging/group:analysts: use -> edit" in out.stdout and "+ user frank" in out.stdout and
                "nothing was applied" in out.stdout, "admin config put --dry-run prints the difference", out.stdout)
        t.check(version()[0] == 1, "and applies nothing")

        # ---------------------------------------------------------------- invalid documents
        bad = doc0.replace('access: own }', 'access: owner }')
        bad_line = [i + 1 for i, l in enumerate(bad.splitlines()) if "owner" in l][0]
        st, doc, raw = req("PUT", "/v1/config", {"policy": bad})
        e = doc.get("error", {})
        t.check(st == 422 and e.get("code") == "invalid_policy" and e.get("line") == bad_line and e.get("column", 0) > 1
                and ("policy:%d:" % bad_line) in e.get("message", ""),
                "an invalid policy: 422 invalid_policy with its line and column", raw[:300])
        st, doc, raw = req("PUT", "/v1/config", {"policy": "version: 1\nusers: [\n"})
        t.check(st == 422 and doc.get("error", {}).get("line", 0) >= 2, "broken YAML: 422 with a line", raw[:300])
        rel = doc0.replace(path_staging, "crm-staging.db")
        st, doc, raw = req("PUT", "/v1/config", {"policy": rel})
        t.check(st == 422 and "must be absolute" in doc.get("error", {}).get("message", ""),
                "a relative resource path: 422 (paths are the server's)", raw[:300])
        with open(g.path("bad.yaml"), "w") as f:
            f.write(bad)
        out = cli("config", "put", g.path("bad.yaml"))
        t.check(out.returncode == 2 and ("%s:%d:" % (g.path("bad.yaml"), bad_line)) in out.stderr and
                "nothing was applied" in out.stderr, "admin config put of an invalid file: exit 2, FILE:LINE:COLUMN",
                out.stderr)
        for b, what in (('{"policy": ', "malformed JSON"), ('[1]', "not an object"),
                        ({"policy": doc0, "force": True}, "an unknown member"), ({"policy": 7}, "policy not a string"),
                        ({}, "no policy")):
            st, doc, raw = req("PUT", "/v1/config", b)
            t.check(st == 400, "PUT /v1/config with %s: 400" % what, (st, raw[:200]))
        t.check(version() == (v0, doc0), "after the invalid documents the old policy is unchanged")
        st, doc, raw = req("POST", "/v1/query", {"resource": "crm", "environment": "staging", "sql": "SELECT 1"},
                           token=bob)
        t.check(st == 200, "and it still serves", raw[:200])

        # ---------------------------------------------------------------- the no-admin guard
        for text, what in ((doc0.replace('admins: ["platform"]', "admins: []"), "no admins group"),
                           (doc0.replace('members: ["erin"]', "members: []"), "an empty admins group"),
                           (doc0.replace('  - name: "erin"\n', '  - name: "erin"\n    disabled: true\n'),
                            "the only admin disabled")):
            st, doc, raw = req("PUT", "/v1/config", {"policy": text})
            t.check(st == 422 and doc.get("error", {}).get("code") == "no_admin",
                    "a policy with %s: 422 no_admin" % what, raw[:300])
        st, doc, raw = req("POST", "/v1/users/erin/disable")
        t.check(st == 422 and doc.get("error", {}).get("code") == "no_admin",
                "disabling the last admin: 422 no_admin", raw[:300])
        t.check(version()[0] == 1, "nothing applied by the refused lock-outs")

        # ---------------------------------------------------------------- apply
        out = cli("config", "put", g.path("changed.yaml"), "--expect-version", "1")
        t.check(out.returncode == 0 and "applied" in out.stdout and "version 2" in out.stdout and
                "+ grant crm/staging/user:frank/use" in out.stdout, "admin config put applies version 2", out.stdout + out.stderr)
        v2, doc2 = version()
        t.check(v2 == 2 and 'name: "frank"' in doc2, "GET /v1/config shows version 2 with frank")
        st, doc, raw = req("POST", "/v1/query", {"resource": "crm", "environment": "production", "sql": "SELECT 1"},
                           token=g.token("dave", "production")[0])
        t.check(st == 403, "the removed grant no longer works (dave in production)", raw[:200])
        out = cli("config", "put", g.path("changed.yaml"))
        t.check(out.returncode == 0 and "nothing changed" in out.stdout and version()[0] == 2,
                "putting the same document again changes nothing", out.stdout)
        out = cli("config", "put", g.path("changed.yaml"), "--expect-version", "1")
        t.check(out.returncode == 1 and "409" in out.stderr and "version_conflict" in out.stderr,
                "a stale --expect-version: exit 1, 409 version_conflict", out.stderr)

        # concurrent PUTs from the same version: exactly one wins
        variants = [doc2.replace('  - name: "frank"\n', '  - name: "u%d"\n  - name: "frank"\n' % i) for i in range(4)]
        results = [None] * len(variants)

        def put(i):
            results[i] = g.request("PUT", "/v1/config", {"policy": variants[i], "expected_version": 2}, token=admin)

        threads = [threading.Thread(target=put, args=(i,)) for i in range(len(variants))]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        codes = sorted(r[0] for r in results)
        t.check(codes == [200, 409, 409, 409], "4 concurrent PUTs with expected_version 2: one 200, three 409", codes)
        v3, doc3 = version()
        winner = [i for i, r in enumerate(results) if r[0] == 200]
        t.check(v3 == 3 and winner and ('name: "u%d"' % winner[0]) in doc3 and sum(('name: "u%d"' % i) in doc3 for i in range(4)) == 1,
                "version 3 is the winner's document, and only it", v3)

        # ---------------------------------------------------------------- secrets
        st, doc, raw = req("PUT", "/v1/secrets/crm-dsn", {"value": SECRET_VALUE})
        t.check(st == 200 and doc.get("secret") == "crm-dsn" and doc.get("version") == 1 and
                SECRET_VALUE.encode() not in raw, "PUT /v1/secrets/crm-dsn: 200, version 1, value not echoed", raw)
        store = secrets_in_store()
        t.check("crm-dsn" in store and store["crm-dsn"][0] == 1 and SECRET_VALUE.encode() not in store["crm-dsn"][1],
                "the store holds it sealed (the value is not in the row)")
        out = cli("secret", "set", "crm-dsn", input=SECRET_VALUE2 + "\n")
        t.check(out.returncode == 0 and "version 2" in out.stdout, "admin secret set (value on stdin) rotates it",
                out.stdout + out.stderr)
        t.check(secrets_in_store()["crm-dsn"][0] == 2, "the store has version 2")
        for method in ("GET", "POST", "DELETE"):
            st, doc, raw = req(method, "/v1/secrets/crm-dsn")
            t.check(st in (404, 405) and SECRET_VALUE2.encode() not in raw, "%s /v1/secrets/crm-dsn: %d, nothing read" % (method, st))
        st, doc, raw = req("GET", "/v1/secrets")
        t.check(st == 404, "no listing of secrets", st)
        for b, want, what in (({"value": ""}, 400, "an empty value"), ({"value": "x" * 16385}, 413, "a value over 16 KiB"),
                              ({"value": 5}, 400, "a value not a string"),
                              ({"value": SECRET_VALUE, "also": 1}, 400, "another member"),
                              ('{"value": "' + SECRET_VALUE + '"', 400, "malformed JSON holding the value")):
            st, doc, raw = req("PUT", "/v1/secrets/crm-dsn", b)
            t.check(st == want and SECRET_VALUE.encode() not in raw, "secret with %s: %d, not echoed" % (what, want), raw[:200])
        st, doc, raw = req("PUT", "/v1/secrets/bad%20name", {"value": "v"})
        t.check(st == 400, "a bad secret name: 400", raw[:200])
        out = cli("secret", "set", "crm-dsn", SECRET_VALUE)
        t.check(out.returncode == 2, "admin secret set refuses a value in argv (usage, exit 2)", out.stderr)
        out = cli("secret", "set", "crm-dsn", input="")
        t.check(out.returncode == 2, "admin secret set with empty stdin: exit 2", out.stderr)
        t.check(secrets_in_store()["crm-dsn"][0] == 2, "the refused values changed nothing")

        # ---------------------------------------------------------------- tokens
        st, doc, raw = req("POST", "/v1/tokens", {"user": "frank", "environment": "staging", "ttl": "10m"})
        frank, frank_id = doc.get("token", ""), doc.get("id", "")
        t.check(st == 200 and frank.count(".") == 2 and frank_id.startswith("tok_") and doc.get("user") == "frank"
                and 590 <= doc.get("expires_at", 0) - __import__("time").time() <= 610,
                "POST /v1/tokens issues a 10-minute token for frank", raw[:300])
        conn = g.conn()
        st, doc, raw = g.query(frank, "SELECT count(*) FROM customers", conn=conn)
        t.check(st == 200 and doc["rows"] == [[3]], "the remotely issued token works for queries", raw[:200])
        st, doc, raw = req("DELETE", "/v1/tokens/" + frank_id)
        t.check(st == 200 and doc.get("revoked") is True and doc.get("already_revoked") is False,
                "DELETE /v1/tokens/{id}: revoked", raw[:200])
        st, doc, raw = g.query(frank, "SELECT count(*) FROM customers", conn=conn)
        t.check(st == 401 and b"revoked" in raw, "the revoked token is refused at once, on the same connection", raw[:200])
        conn.close()
        st, doc, raw = req("DELETE", "/v1/tokens/" + frank_id)
        t.check(st == 200 and doc.get("already_revoked") is True, "revoking again: 200 already_revoked", raw[:200])
        st, doc, raw = req("DELETE", "/v1/tokens/tok_00112233445566778899aabbccddeeff")
        t.check(st == 404, "an id never issued: 404", raw[:200])
        st, doc, raw = req("DELETE", "/v1/tokens/nonsense")
        t.check(st == 400, "a malformed id: 400", raw[:200])
        for b, want, what in (({"user": "nobody", "environment": "staging"}, 404, "an unknown user"),
                              ({"user": "mallory", "environment": "staging"}, 422, "a disabled user"),
                              ({"user": "alice", "environment": "qa"}, 404, "an unknown environment"),
                              ({"user": "alice", "environment": "staging", "app": "nope"}, 404, "an unknown app"),
                              ({"user": "alice", "environment": "staging", "ttl": "25h"}, 400, "a TTL over 24h"),
                              ({"user": "alice", "environment": "staging", "ttl": 0}, 400, "a TTL of 0"),
                              ({"user": "alice", "environment": "staging", "ttl": "soon"}, 400, "a TTL that is no duration"),
                              ({"user": "alice"}, 400, "no environment"),
                              ({"user": "alice", "environment": "staging", "sub": "erin"}, 400, "an unknown member")):
            st, doc, raw = req("POST", "/v1/tokens", b)
            t.check(st == want and b"token\"" not in raw, "token for %s: %d, none issued" % (what, want), raw[:200])
        out = cli("token", "issue", "--user", "alice", "--env", "staging", "--app", "invoices", "--ttl", "5m")
        alice2 = out.stdout.strip()
        t.check(out.returncode == 0 and alice2.count(".") == 2 and "token id tok_" in out.stderr and "via app invoices" in out.stderr,
                "admin token issue prints the token (stdout) and its id (stderr)", out.stderr)
        alice2_id = out.stderr.split("token id ", 1)[1].split()[0] if "token id " in out.stderr else ""
        st, doc, raw = g.query(alice2, "SELECT count(*) FROM invoices")
        t.check(st == 200, "it works for queries", raw[:200])
        out = cli("token", "revoke", alice2_id)
        t.check(out.returncode == 0 and ("revoked " + alice2_id) in out.stdout, "admin token revoke", out.stdout + out.stderr)
        st, doc, raw = g.query(alice2, "SELECT count(*) FROM invoices")
        t.check(st == 401, "and the token stops at once", raw[:200])
        out = cli("token", "revoke", alice2_id)
        t.check(out.returncode == 0 and "already revoked" in out.stdout, "revoking it again: exit 0, already revoked", out.stdout)
        out = cli("token", "revoke", "tok_00112233445566778899aabbccddeeff")
        t.check(out.returncode == 2 and "404" in out.stderr, "admin token revoke of an unknown id: exit 2", out.stderr)
        out = cli("token", "issue", "--user", "mallory", "--env", "staging")
        t.check(out.returncode == 1 and "disabled" in out.stderr and out.stdout == "",
                "admin token issue for a disabled user: exit 1, no token", out.stderr)
        out = cli("token", "issue", "--user", "alice", "--env", "staging", "--json")
        d = json.loads(out.stdout) if out.returncode == 0 else {}
        t.check(d.get("token", "").count(".") == 2 and d.get("user") == "alice", "admin token issue --json", out.stderr)
        alice3 = d.get("token", "")

        # ---------------------------------------------------------------- disable / enable
        carol, _ = g.token("carol", "staging")
        conn = g.conn()
        st, doc, raw = g.query(carol, "SELECT 1", conn=conn)
        t.check(st == 200, "carol's open token works", raw[:200])
        st, doc, raw = req("POST", "/v1/users/carol/disable")
        t.check(st == 200 and doc.get("disabled") is True and doc.get("changed") is True and doc.get("version") == 4,
                "POST /v1/users/carol/disable: a new policy version (4)", raw[:200])
        st, doc, raw = g.query(carol, "SELECT 1", conn=conn)
        t.check(st == 401 and b"disabled" in raw, "carol's open token is refused at once (same connection)", raw[:200])
        conn.close()
        t.check("disabled: true" in version()[1].split('name: "carol"', 1)[1].split("- name", 1)[0],
                "the exported policy shows carol disabled")
        st, doc, raw = req("POST", "/v1/users/carol/disable")
        t.check(st == 200 and doc.get("changed") is False and doc.get("version") == 4,
                "disabling again: 200, nothing changed", raw[:200])
        st, doc, raw = req("POST", "/v1/tokens", {"user": "carol", "environment": "staging"})
        t.check(st == 422, "no token is issued to a disabled user", raw[:200])
        out = cli("user", "enable", "carol")
        t.check(out.returncode == 0 and "enabled" in out.stdout and "version 5" in out.stdout,
                "admin user enable carol: version 5", out.stdout + out.stderr)
        st, doc, raw = g.query(carol, "SELECT 1")
        t.check(st == 200, "carol's token is accepted again", raw[:200])
        out = cli("user", "disable", "alice")
        t.check(out.returncode == 0 and "disabled" in out.stdout, "admin user disable alice", out.stdout + out.stderr)
        st, doc, raw = g.query(alice3, "SELECT 1")
        t.check(st == 401, "alice's token is refused at once", raw[:200])
        out = cli("user", "enable", "alice")
        t.check(out.returncode == 0, "admin user enable alice", out.stderr)
        st, doc, raw = req("POST", "/v1/users/nobody/disable")
        t.check(st == 404, "disabling an unknown user: 404", raw[:200])
        out = cli("user", "disable", "nobody")
        t.check(out.returncode == 2 and "404" in out.stderr, "admin user disable of an unknown user: exit 2", out.stderr)
        st, doc, raw = req("POST", "/v1/users/carol/suspend")
        t.check(st == 404, "an unknown user action: 404", raw[:200])
        st, doc, raw = req("GET", "/v1/users/carol/disable")
        t.check(st == 405, "GET on the disable route: 405", raw[:200])
        st, doc, raw = req("POST", "/v1/users/a/b/disable")
        t.check(st == 404, "a name with a slash does not match the route", raw[:200])

        # ---------------------------------------------------------------- usage and exit statuses
        for args, what in ((("config",), "config without get/put"), (("config", "put"), "config put without FILE"),
                           (("token", "issue", "--env", "staging"), "token issue without --user"),
                           (("token", "issue", "--user", "alice", "--env", "staging", "--ttl", "2d"), "a TTL over 24h"),
                           (("token", "revoke", "abc"), "a malformed token id"),
                           (("user", "freeze", "alice"), "an unknown user action"),
                           (("config", "get", "--dry-run"), "an option that does not apply"),
                           (("config", "put", g.path("nonexistent.yaml")), "a file that does not exist"),
                           (("frobnicate",), "an unknown subcommand")):
            out = cli(*args)
            t.check(out.returncode == 2, "admin with %s: exit 2" % what, (out.returncode, out.stderr))
        out = g.cli("admin", "config", "get", env={"GATEHOUSE_URL": url, "GATEHOUSE_TOKEN": ""})
        t.check(out.returncode == 2 and "GATEHOUSE_TOKEN" in out.stderr, "no GATEHOUSE_TOKEN: exit 2", out.stderr)
        out = g.cli("admin", "config", "get", env={"GATEHOUSE_URL": "http://127.0.0.1:1", "GATEHOUSE_TOKEN": admin})
        t.check(out.returncode == 1 and "cannot reach" in out.stderr, "server unreachable: exit 1", out.stderr)
        out = g.cli("admin", "--help")
        t.check(out.returncode == 0 and "gatehouse admin config put" in out.stdout, "admin --help", out.stdout)

        # ---------------------------------------------------------------- the audit trail
        recs = g.audit_lines()
        by_event = {}
        for r in recs:
            by_event.setdefault(r["event"], []).append(r)
        for ev in ("config.apply", "config.dry_run", "secret.set", "token.issue", "token.revoke", "user.disable",
                   "user.enable"):
            mine = [r for r in by_event.get(ev, []) if r["client"].startswith("127.0.0.1")]
            t.check(mine and all(r["user"] == "erin" and r["rule"] == "admin" for r in mine),
                    "every %s record made through the API names the admin (erin)" % ev, len(mine))
        applies = [r for r in by_event.get("config.apply", []) if r["status"] == "ok"]
        t.check(any(r["detail"].get("from_version") == 1 and r["detail"].get("to_version") == 2 and
                    r["detail"].get("grants_added") == 1 and r["detail"].get("grants_removed") == 1 and
                    r["detail"].get("grants_changed") == 1 and r["detail"].get("users_added") == 1 for r in applies),
                "config.apply records the versions and the counts of the difference", [r["detail"] for r in applies][:2])
        t.check(all("policy" not in r["detail"] and len(json.dumps(r["detail"])) < 1024 for r in applies),
                "and not the document itself")
        t.check(all(r["detail"] == {"secret": "crm-dsn"} for r in by_event.get("secret.set", [])),
                "secret.set records the name only", by_event.get("secret.set"))
        issued = [r for r in by_event.get("token.issue", []) if r["rule"] == "admin"]
        t.check(any(r["detail"].get("subject") == "frank" and r["detail"].get("token_id") == frank_id for r in issued),
                "token.issue names the admin (user) and the subject (detail)", [r["detail"] for r in issued][:3])
        revoked = [r for r in by_event.get("token.revoke", []) if r["rule"] == "admin"]
        t.check(any(r["detail"].get("token_id") == frank_id and r["detail"].get("subject") == "frank" for r in revoked),
                "token.revoke names the token and its subject", [r["detail"] for r in revoked][:2])
        dis = by_event.get("user.disable", [])
        t.check(any(r["detail"].get("subject") == "carol" and r["detail"].get("users_disabled") == 1 for r in dis),
                "user.disable names the user and the new version", [r["detail"] for r in dis][:2])
        out = g.verify()
        t.check(out.returncode == 0 and out.stdout.startswith("ok"), "the audit chain verifies", out.stdout)

        # ---------------------------------------------------------------- nothing leaked
        with open(os.path.join(g.data, "audit", "audit.log"), "rb") as f:
            seen.add("audit log", f.read())
        seen.add("server stderr", g.server_log())
        for secret, what in ((SECRET_VALUE, "the first secret value"), (SECRET_VALUE2, "the rotated secret value")):
            t.check(not seen.grep(secret), "%s is in no response, CLI output, audit record or server log line" % what,
                    seen.grep(secret))
        leaks = [w for w in seen.grep(frank) if not w.startswith("POST /v1/tokens -> 200")]
        t.check(frank and not leaks, "the issued token appears only in the answer that issued it", leaks)
    finally:
        g.close()


PG_PASSWORD = "Admin-rotated-pw-5e0c2b7d91"  # the backend password set remotely: a canary too


def pg_body(t):
    """A secret set remotely is what a running PostgreSQL pool uses next; remote disable and
    revoke end open wire-front sessions at once."""
    import pgfix
    import psycopg
    seen = Seen()
    with pgfix.PgGatehouse() as f:
        f.start()
        gh = f.gh
        admin, _ = gh.token("erin", "staging")
        bob, _ = gh.token("bob", "staging")

        def req(method, path, body=None, token=admin):
            st, doc, raw = gh.request(method, path, body, token=token)
            seen.add("%s %s -> %s" % (method, path, st), raw)
            return st, doc or {}, raw

        st, doc, raw = req("POST", "/v1/query", {"resource": "crm", "environment": "staging",
                                                 "sql": "SELECT count(*) FROM customers"}, token=bob)
        t.check(st == 200 and doc.get("rows") == [[3]], "pg: bob reads through the pool", raw[:200])
        old_pids = {row[0] for row in f.pg.backends("crm_staging")}
        f.pg.sql("ALTER ROLE app PASSWORD '%s'" % PG_PASSWORD)
        st, doc, raw = req("PUT", "/v1/secrets/crm-staging-dsn",
                           {"value": f.pg.dsn(user="app", password=PG_PASSWORD, dbname="crm_staging")})
        t.check(st == 200 and doc.get("version") == 2, "pg: the admin rotates the DSN secret remotely", raw[:200])
        pids, ok = [], True
        for _ in range(4):
            st, doc, raw = req("POST", "/v1/query", {"resource": "crm", "environment": "staging",
                                                     "sql": "SELECT pg_backend_pid()"}, token=bob)
            ok = ok and st == 200
            if st == 200:
                pids.append(doc["rows"][0][0])
        t.check(ok and pids and not (set(pids) & old_pids),
                "pg: the running pool picks up the rotation (new backend connections)", (sorted(old_pids), pids))
        f.pg.kill_backends("crm_staging")
        st, doc, raw = req("POST", "/v1/query", {"resource": "crm", "environment": "staging",
                                                 "sql": "SELECT count(*) FROM invoices"}, token=bob)
        t.check(st == 200, "pg: with every backend killed, new connections open with the new password", raw[:200])

        # wire front: open sessions end at once
        c = f.connect("bob", bob)
        t.check(c.execute("SELECT 1").fetchone() == (1,), "pg wire: bob's open session works")
        st, doc, raw = req("POST", "/v1/users/bob/disable")
        t.check(st == 200, "pg: the admin disables bob", raw[:200])
        try:
            c.execute("SELECT 1").fetchone()
            refused = False
        except psycopg.Error as e:
            refused = "disabled" in str(e)
        t.check(refused, "pg wire: bob's open session is refused at once")
        c.close()
        req("POST", "/v1/users/bob/enable")
        carol, carol_id = gh.token("carol", "staging")
        c = f.connect("carol", carol)
        t.check(c.execute("SELECT 1").fetchone() == (1,), "pg wire: carol's open session works")
        st, doc, raw = req("DELETE", "/v1/tokens/" + carol_id)
        t.check(st == 200, "pg: the admin revokes carol's token", raw[:200])
        try:
            c.execute("SELECT 1").fetchone()
            refused = False
        except psycopg.Error as e:
            refused = "revoked" in str(e)
        t.check(refused, "pg wire: carol's open session is refused at once")
        c.close()

        with open(os.path.join(gh.data, "audit", "audit.log"), "rb") as fh:
            seen.add("audit log", fh.read())
        seen.add("server stderr", gh.server_log())
        t.check(not seen.grep(PG_PASSWORD) and not seen.grep(pgfix.CANARY),
                "pg: neither password is in a response, the audit log or the server log",
                seen.grep(PG_PASSWORD) + seen.grep(pgfix.CANARY))
        out = gh.verify()
        t.check(out.returncode == 0, "pg: the audit chain verifies", out.stdout)


def both(t):
    body(t)
    pg_body(t)


run_suite("admin", both)
