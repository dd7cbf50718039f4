"""The access matrix: every access level (none, use, edit, own, and a grant that exists only in
dev) x environment (dev without approval, prod with approval of writes) x caller (registered
app, ad hoc, an app that is no longer registered) x statement class (read, write, ddl,
destructive), each against an outcome derived from the policy rules; writes that were
allowed really changed the data and the others did not. Then who may read GET /v1/audit."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib import Gatehouse, run_suite

SQL = """\
CREATE TABLE entries (id INTEGER PRIMARY KEY, who TEXT NOT NULL, note TEXT NOT NULL);
INSERT INTO entries (who, note) VALUES ('seed', 'first');
"""

# One user per level on ledger in both environments; devon holds edit in dev only, to prove
# that a dev grant never implies anything in prod. hr is a second resource, for audit scoping.
POLICY = """\
version: 1
users:
  - name: nora
  - name: uma
  - name: eddie
  - name: olga
  - name: devon
  - name: rita
  - name: ada
groups:
  - name: readers
    members: [uma]
  - name: reviewers
    members: [rita]
  - name: admins
    members: [ada]
admins: [admins]
environments:
  - name: dev
    approval: none
  - name: prod
    approval: writes
    reviewers: [reviewers]
resources:
  - name: ledger
    kind: sqlite
    environments:
      dev:  { path: ledger-dev.db }
      prod: { path: ledger-prod.db }
  - name: hr
    kind: sqlite
    environments:
      dev:  { path: hr-dev.db }
apps:
  - name: billing
%(extra_apps)s
grants:
  - { resource: ledger, environment: dev,  group: readers, access: use }
  - { resource: ledger, environment: prod, group: readers, access: use }
  - { resource: ledger, environment: dev,  user: eddie, access: edit }
  - { resource: ledger, environment: prod, user: eddie, access: edit }
  - { resource: ledger, environment: dev,  user: olga, access: own }
  - { resource: ledger, environment: prod, user: olga, access: own }
  - { resource: ledger, environment: dev,  user: devon, access: edit }
  - { resource: hr,     environment: dev,  user: eddie, access: edit }
"""

USERS = {"nora": {"dev": "none", "prod": "none"},
         "uma": {"dev": "use", "prod": "use"},
         "eddie": {"dev": "edit", "prod": "edit"},
         "olga": {"dev": "own", "prod": "own"},
         "devon": {"dev": "edit", "prod": "none"}}
LEVEL = {"none": 0, "use": 1, "edit": 2, "own": 3}
ENVS = ("dev", "prod")
CALLERS = ("app", "adhoc", "unregistered")
CLASSES = ("read", "write", "ddl", "destructive")
DBS = {"dev": "ledger-dev.db", "prod": "ledger-prod.db"}


def expect(level, env, caller, cls):
    """(status, rule) from the rules, in the order they are applied."""
    lv = LEVEL[level]
    if caller == "unregistered":
        return 403, "unknown-app"
    if cls == "destructive":
        return 403, "destructive-ddl"
    if lv == 0:
        return 403, "no-grant"
    if caller == "adhoc" and lv < LEVEL["edit"]:
        return 403, "needs-app-or-edit"
    if cls == "ddl" and lv < LEVEL["edit"]:
        return 403, "ddl-needs-edit"
    if cls in ("write", "ddl") and env == "prod":
        return 202, "approval-required"
    return 200, None


def statement(user, env, caller, cls):
    tag = "%s-%s-%s" % (user, env, caller)
    if cls == "read":
        return "SELECT count(*) AS n FROM entries", None
    if cls == "write":
        return "INSERT INTO entries (who, note) VALUES (?, ?)", [user, tag]
    if cls == "ddl":
        return "CREATE TABLE t_%s_%s_%s (x INTEGER)" % (user, env, caller), None
    return "DROP TABLE entries", None


def audit_all(g, token):
    """Pages through GET /v1/audit; returns (status, records, last error doc)."""
    since, out = 0, []
    for _ in range(100):
        st, doc, raw = g.request("GET", "/v1/audit?since=%d&limit=1000" % since, token=token)
        if st != 200:
            return st, out, doc
        out.extend(doc["records"])
        if not doc["records"] or doc["next_since"] <= since:
            break
        since = doc["next_since"]
    return 200, out, None


def body(r):
    g = Gatehouse(policy=None, sql=SQL, dbs=("ledger-dev.db", "ledger-prod.db", "hr-dev.db"))
    try:
        # The unregistered-app case: the CLI issues tokens only for registered apps, so register
        # "ghost", issue, then apply the policy without it.
        out = g.apply(POLICY % {"extra_apps": "  - name: ghost"})
        r.check(out.returncode == 0, "policy with app ghost applies", out.stderr)
        tokens = {}
        for user in USERS:
            for env in ENVS:
                tokens[(user, env, "app")] = g.token(user, env, app="billing")[0]
                tokens[(user, env, "adhoc")] = g.token(user, env)[0]
                tokens[(user, env, "unregistered")] = g.token(user, env, app="ghost")[0]
        out = g.apply(POLICY % {"extra_apps": ""})
        r.check(out.returncode == 0, "policy without app ghost applies", out.stderr)
        out = g.cli("token", "issue", "--data", g.data, "--user", "uma", "--env", "dev", "--app", "ghost")
        r.check(out.returncode == 2 and "ghost" in out.stderr, "the CLI no longer issues tokens for ghost", out.stderr)
        g.start()

        counts = {}
        for user, levels in USERS.items():
            for env in ENVS:
                for caller in CALLERS:
                    for cls in CLASSES:
                        level = levels[env]
                        want_st, want_rule = expect(level, env, caller, cls)
                        sql, params = statement(user, env, caller, cls)
                        st, doc, raw = g.query(tokens[(user, env, caller)], sql, resource="ledger", environment=env,
                                               params=params)
                        what = "%s (%s) %s via %s: %s -> %d%s" % (user, level, env, caller, cls, want_st,
                                                                   " " + want_rule if want_rule else "")
                        if want_st == 403:
                            ok = st == 403 and doc["error"]["code"] == "denied" and doc["error"]["rule"] == want_rule
                        elif want_st == 202:
                            ok = (st == 202 and doc["approval"]["status"] == "pending" and
                                  doc["approval"]["id"].startswith("apr") and doc["rule"] == want_rule)
                        else:
                            ok = st == 200 and doc["request_id"].startswith("req_")
                            if ok and cls == "read":
                                ok = doc["columns"] == ["n"] and len(doc["rows"]) == 1
                            if ok and cls in ("write", "ddl"):
                                ok = "rows_affected" in doc
                        r.check(ok, what, raw[:300])
                        counts[want_st] = counts.get(want_st, 0) + 1

                        # the data: changed exactly when the answer was 200
                        db = DBS[env]
                        if cls == "write":
                            n = g.sqlite(db, "SELECT count(*) FROM entries WHERE who = ? AND note = ?", params)[0][0]
                            r.check(n == (1 if want_st == 200 else 0),
                                    "%s: row %s" % (what, "written" if want_st == 200 else "not written"), n)
                        elif cls == "ddl":
                            name = "t_%s_%s_%s" % (user, env, caller)
                            n = g.sqlite(db, "SELECT count(*) FROM sqlite_master WHERE name = ?", (name,))[0][0]
                            r.check(n == (1 if want_st == 200 else 0),
                                    "%s: table %s" % (what, "created" if want_st == 200 else "not created"), n)
                        elif cls == "destructive":
                            n = g.sqlite(db, "SELECT count(*) FROM sqlite_master WHERE name = 'entries'")[0][0]
                            r.check(n == 1, "%s: entries still exists" % what)
        r.check(counts.get(200, 0) > 0 and counts.get(202, 0) > 0 and counts.get(403, 0) > 0,
                "the matrix covers 200, 202 and 403 outcomes", counts)

        # prod is never implied by dev: devon's dev grant gives nothing in prod, even for a read
        # through the app, and nothing devon sent reached the prod file
        n = g.sqlite("ledger-prod.db", "SELECT count(*) FROM entries WHERE who = 'devon'")[0][0]
        r.check(n == 0, "no row from devon in prod", n)
        n = g.sqlite("ledger-prod.db", "SELECT count(*) FROM sqlite_master WHERE name LIKE 't_devon_%'")[0][0]
        r.check(n == 0, "no table from devon in prod", n)
        # every prod write waited: nothing but the seed row is in prod
        rows = g.sqlite("ledger-prod.db", "SELECT who, note FROM entries")
        r.check(rows == [("seed", "first")], "prod holds only the seed row (every write is pending)", rows)
        rows = g.sqlite("ledger-prod.db", "SELECT name FROM sqlite_master WHERE type = 'table'")
        r.check(rows == [("entries",)], "prod holds no new table (every ddl is pending)", rows)
        rows = g.sqlite("ledger-dev.db", "SELECT who, note FROM entries WHERE who != 'seed' ORDER BY who, note")
        want = sorted((u, "%s-dev-%s" % (u, c)) for u in USERS for c in CALLERS
                      if expect(USERS[u]["dev"], "dev", c, "write")[0] == 200)
        r.check(rows == want and len(want) == 7, "dev holds exactly the writes that were allowed", rows)
        # pending requests are listed for the reviewer, not yet executed
        rita, _ = g.token("rita", "prod")
        st, doc, raw = g.request("GET", "/v1/approvals", token=rita)
        pend = [a for a in (doc or {}).get("approvals", []) if a.get("status") == "pending"]
        r.check(st == 200 and len(pend) == counts_pending(USERS), "every 202 left one pending approval for the reviewer",
                raw[:500])

        # ---- GET /v1/audit
        eddie_hr, _ = g.token("eddie", "dev")
        st, doc, raw = g.query(eddie_hr, "SELECT count(*) AS n FROM entries", resource="hr", environment="dev")
        r.check(st == 200, "eddie reads hr (a record of another resource)", raw[:200])
        ada, _ = g.token("ada", "dev")
        olga, _ = g.token("olga", "prod")
        lines = g.audit_lines()
        st, recs, err = audit_all(g, ada)
        # each page read is itself recorded (audit.read), after the records it returned
        extra = recs[len(lines):]
        r.check(st == 200 and [x["seq"] for x in recs[:len(lines)]] == [x["seq"] for x in lines]
                and all(x["event"] == "audit.read" and x["user"] == "ada" for x in extra),
                "admin sees every audit record (%d), then the records of her own reads" % len(lines),
                (st, len(recs), err))
        r.check(any(x.get("resource") == "hr" for x in recs) and any(x.get("resource") == "ledger" for x in recs) and
                any(x.get("event") == "policy.apply" for x in recs), "admin's records span resources and operator events")
        st, recs, err = audit_all(g, olga)
        want = [x["seq"] for x in lines if x.get("resource") == "ledger"]
        r.check(st == 200 and [x["seq"] for x in recs] == want,
                "owner sees exactly the records of the owned resource (%d)" % len(want), (st, len(recs), err))
        r.check(st == 200 and all(x.get("resource") == "ledger" for x in recs), "owner sees no other resource's records")
        st, doc, raw = g.request("GET", "/v1/audit?limit=2", token=olga)
        r.check(st == 200 and len(doc["records"]) == 2 and doc["next_since"] >= doc["records"][-1]["seq"],
                "audit paging: limit=2 returns two records and a next_since", raw[:300])
        for user, env in (("uma", "dev"), ("eddie", "prod"), ("devon", "dev"), ("nora", "dev"), ("rita", "prod")):
            tok = tokens.get((user, env, "adhoc")) or g.token(user, env)[0]
            st, doc, raw = g.request("GET", "/v1/audit", token=tok)
            r.check(st == 403 and doc["error"]["code"] == "forbidden",
                    "%s (%s) may not read the audit trail" % (user, USERS.get(user, {}).get(env, "reviewer")), raw[:200])
        tok = tokens[("uma", "dev", "app")]
        st, doc, raw = g.request("GET", "/v1/audit", token=tok)
        r.check(st == 403, "use through an app may not read the audit trail either", raw[:200])

        rc = g.stop()
        r.check(rc == 0, "server stops cleanly", rc)
        out = g.verify()
        r.check(out.returncode == 0 and out.stdout.startswith("ok: "), "audit verify is ok", out.stdout)
        # every matrix decision was audited with its rule
        lines = g.audit_lines()
        denies = [x for x in lines if x.get("event") == "query" and x.get("decision") == "deny"]
        pend_recs = [x for x in lines if x.get("event") == "approval.request"]
        r.check(len(denies) == counts.get(403, 0), "one deny record per 403 (%d)" % counts.get(403, 0), len(denies))
        r.check(len(pend_recs) == counts.get(202, 0) and all(x["rule"] == "approval-required" for x in pend_recs),
                "one approval.request record per 202 (%d)" % counts.get(202, 0), len(pend_recs))
        r.check(sum(1 for x in denies if x["rule"] == "unknown-app" and x["app"] == "ghost") ==
                len(USERS) * len(ENVS) * len(CLASSES), "unknown-app denials name the app ghost")
    finally:
        g.close()


def counts_pending(users):
    n = 0
    for user, levels in users.items():
        for env in ENVS:
            for caller in CALLERS:
                for cls in CLASSES:
                    if expect(levels[env], env, caller, cls)[0] == 202:
                        n += 1
    return n


run_suite("test_access_matrix", body)
