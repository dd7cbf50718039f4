"""`gatehouse readiness`: a data directory checked against the production-readiness list.
A careless set-up fails each check for the reason it should (and exits 1); fixing each one
turns it to pass, until the whole table passes (exit 0). Nothing is changed by the check."""
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import Gatehouse, run_suite, DEFAULT_POLICY

READY_POLICY = DEFAULT_POLICY + """\
scan:
  min_release_age: 7d
  fail_on: high
recovery:
  rto: 4h
  rpo: 24h
audit:
  checkpoint_every: 1000
  sinks:
    - { name: siem, kind: syslog, address: "udp:127.0.0.1:9" }
"""


def ready(g, *extra, env=None):
    out = g.cli("readiness", "--data", g.data, "--format", "json", *extra, env=env)
    doc = json.loads(out.stdout) if out.stdout.strip().startswith("{") else None
    res = {c["id"]: c for c in doc["checks"]} if doc else {}
    return out.returncode, res, out


def result(res, cid):
    return res.get(cid, {}).get("result")


def body(t):
    g = Gatehouse()
    try:
        # the default test policy: production has approvals, but no scan section, no recovery
        # objectives, no server has run and no backup exists
        rc, res, out = ready(g)
        t.check(rc == 1 and len(res) >= 12, "a fresh set-up is not ready: exit 1, every check listed", out.stdout[-400:])
        for cid in ("dependencies.scan_policy", "recovery.objectives", "recovery.backup", "input.limits",
                    "logging.sinks", "logging.checkpoints"):
            t.check(result(res, cid) == "fail" and res[cid]["fix"], "%s fails with a fix to apply" % cid, res.get(cid))
        t.check(result(res, "authorization.production_approvals") == "pass", "production writes wait for reviewers: pass",
                res.get("authorization.production_approvals"))
        t.check(result(res, "logging.audit_chain") == "pass", "the audit chain verifies: pass")
        t.check(result(res, "secrets.master_key") == "warn", "master.key beside the data: a warning, not a failure",
                res.get("secrets.master_key"))
        text = g.cli("readiness", "--data", g.data)
        t.check(text.returncode == 1 and "NOT READY" in text.stdout and "fix: " in text.stdout,
                "the text table says NOT READY and gives fixes", text.stdout[-300:])

        # careless authorization: no approvals on production, everyone may write it, a big group owns it
        careless = DEFAULT_POLICY.replace("    approval: writes\n    reviewers: [leads]\n", "") \
            .replace("  - name: platform\n    members: [erin]\n",
                     "  - name: platform\n    members: [erin]\n  - name: everyone\n"
                     "    members: [alice, bob, carol, dave, erin]\n") \
            .replace("grants:\n", "grants:\n  - { resource: crm, environment: production, group: everyone, access: edit }\n"
                     "  - { resource: crm, environment: staging, group: everyone, access: own }\n")
        t.check(g.apply(careless).returncode == 0, "a careless policy applies")
        rc, res, out = ready(g, "--max-own-group", "3")
        t.check(result(res, "authorization.production_approvals") == "fail"
                and "without approval" in res["authorization.production_approvals"]["reason"],
                "production without approvals fails", res.get("authorization.production_approvals"))
        t.check(result(res, "authorization.production_grants") == "fail"
                and "everyone" in res["authorization.production_grants"]["reason"],
                "write access to production for a group of everyone fails", res.get("authorization.production_grants"))
        t.check(result(res, "authorization.own_grants") == "fail" and "everyone (5 members)" in res["authorization.own_grants"]["reason"],
                "own granted to a group larger than --max-own-group fails", res.get("authorization.own_grants"))

        # a credential in the policy (an access key id inside a path) is found, and not printed whole
        key = "AKIA" + "QX7RT2WZ" + "HB4MNV5K"
        leaky = READY_POLICY.replace("crm-staging.db }", "crm-staging-%s.db }" % key)
        g.sqlite("crm-staging.db", "SELECT 1")
        os.rename(g.path("crm-staging.db"), g.path("crm-staging-%s.db" % key))
        t.check(g.apply(leaky).returncode == 0, "a policy with a key id in a path applies")
        rc, res, out = ready(g)
        t.check(result(res, "secrets.policy_plaintext") == "fail", "a credential in the applied policy fails",
                res.get("secrets.policy_plaintext"))
        t.check(key not in out.stdout + out.stderr, "the credential itself is not printed")
        os.rename(g.path("crm-staging-%s.db" % key), g.path("crm-staging.db"))

        # now a careful set-up, step by step
        t.check(g.apply(READY_POLICY).returncode == 0, "the careful policy applies")
        rc, res, out = ready(g)
        t.check(result(res, "logging.sinks") == "pass" and "siem (syslog)" in res["logging.sinks"]["reason"],
                "a configured sink passes", res.get("logging.sinks"))
        t.check(result(res, "logging.checkpoints") == "fail", "no signed checkpoint before a server ran: fail",
                res.get("logging.checkpoints"))
        g.start("--max-rows", "5000000")
        g.stop()
        rc, res, out = ready(g)
        t.check(result(res, "input.limits") == "fail" and "max rows 5000000" in res["input.limits"]["reason"],
                "a server that ran with --max-rows 5000000 fails the limits check", res.get("input.limits"))
        g.start()
        _, tid = g.token("alice", "staging", ttl="24h")
        g.stop()
        rc, res, out = ready(g)
        t.check(result(res, "input.limits") == "pass", "the server's default limits pass", res.get("input.limits"))
        t.check(result(res, "logging.checkpoints") == "pass", "after a server ran, a signed checkpoint covers the trail",
                res.get("logging.checkpoints"))
        t.check(result(res, "authentication.token_lifetime") == "fail" and "1 of 1" in res["authentication.token_lifetime"]["reason"],
                "a 24h token outstanding fails (limit 8h)", res.get("authentication.token_lifetime"))
        t.check(g.cli("token", "revoke", "--data", g.data, tid).returncode == 0, "the long-lived token is revoked")
        g.token("alice", "staging", ttl="15m")
        rc, res, out = ready(g)
        t.check(result(res, "authentication.token_lifetime") == "pass", "short tokens only: pass",
                res.get("authentication.token_lifetime"))

        bdir = g.path("backup1")
        t.check(g.cli("backup", "--data", g.data, bdir).returncode == 0, "a backup is taken")
        rc, res, out = ready(g)
        t.check(result(res, "recovery.backup") == "pass" and bdir in res["recovery.backup"]["reason"],
                "a fresh backup passes and is named", res.get("recovery.backup"))
        db = sqlite3.connect(os.path.join(g.data, "gatehouse.db"))
        db.execute("UPDATE meta SET value = ? WHERE key = 'backup.last_time_ms'", (str(int((time.time() - 3 * 86400) * 1000)),))
        db.commit()
        db.close()
        rc, res, out = ready(g)
        t.check(result(res, "recovery.backup") == "fail" and "the RPO" in res["recovery.backup"]["reason"],
                "a backup older than the RPO fails", res.get("recovery.backup"))
        bdir2 = g.path("backup2")
        g.cli("backup", "--data", g.data, bdir2)
        os.rename(bdir2, bdir2 + ".moved")
        rc, res, out = ready(g)
        t.check(result(res, "recovery.backup") == "fail" and "no longer there" in res["recovery.backup"]["reason"],
                "a backup that is gone fails", res.get("recovery.backup"))
        os.rename(bdir2 + ".moved", bdir2)

        os.chmod(g.data, 0o755)
        os.chmod(os.path.join(g.data, "master.key"), 0o644)
        rc, res, out = ready(g)
        t.check(result(res, "secrets.data_dir") == "fail" and result(res, "secrets.master_key") == "fail",
                "a data directory and master key open to others fail", (res.get("secrets.data_dir"), res.get("secrets.master_key")))
        os.chmod(g.data, 0o700)
        os.chmod(os.path.join(g.data, "master.key"), 0o600)

        with open(os.path.join(g.data, "master.key"), "rb") as f:
            mk = f.read().hex()
        before = open(os.path.join(g.data, "audit", "audit.log"), "rb").read()
        rc, res, out = ready(g, env=dict(os.environ, GATEHOUSE_MASTER_KEY=mk))
        bad = {k: v for k, v in res.items() if v["result"] != "pass"}
        t.check(rc == 0 and not bad, "with every fix in place all checks pass and readiness exits 0", bad or out.stderr)
        t.check(mk not in out.stdout + out.stderr, "the master key is never printed")
        after = open(os.path.join(g.data, "audit", "audit.log"), "rb").read()
        t.check(before == after, "the check changes nothing (the audit trail is untouched)")

        # a tampered audit trail fails the logging check
        lines = after.split(b"\n")
        lines[1] = lines[1].replace(b'"time":"2', b'"time":"3', 1)
        with open(os.path.join(g.data, "audit", "audit.log"), "wb") as f:
            f.write(b"\n".join(lines))
        rc, res, out = ready(g, env=dict(os.environ, GATEHOUSE_MASTER_KEY=mk))
        t.check(rc == 1 and result(res, "logging.audit_chain") == "fail", "a tampered audit trail fails",
                res.get("logging.audit_chain"))
        rc2 = g.cli("readiness", "--data", g.path("nope"))
        t.check(rc2.returncode == 2 and "not an initialised" in rc2.stderr, "a directory that is not one: exit 2", rc2.stderr)
    finally:
        g.close()


run_suite("readiness", body)
