"""The endpoint framework (src/front/api.c) through GET /v1/config: admins read the applied
policy, everyone else is refused with the right status and the refusal is recorded, wrong
methods get 405, unknown paths 404, and every read is in the audit trail before its answer."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib import Gatehouse, run_suite


def body(t):
    g = Gatehouse()
    try:
        g.start()
        admin, _ = g.token("erin", "staging")
        user, _ = g.token("alice", "staging")
        st, doc, _ = g.request("GET", "/v1/config", token=admin)
        t.check(st == 200 and doc and 'admins: ["platform"]' in doc.get("policy", "") and doc.get("version", 0) >= 1,
                "an admin reads the applied policy with its version", (st, doc))
        exported = g.cli("export", "--data", g.data).stdout
        t.check(doc and doc.get("policy") == exported, "the same text as `gatehouse export`")
        t.check(doc and doc.get("request_id", "").startswith("req_"), "the answer names its request id")
        st, doc, _ = g.request("GET", "/v1/config", token=user)
        t.check(st == 403 and doc["error"]["code"] == "forbidden", "a non-admin gets 403", (st, doc))
        st, doc, _ = g.request("GET", "/v1/config")
        t.check(st == 401, "no token: 401", st)
        st, doc, _ = g.request("GET", "/v1/config", token="not.a.token")
        t.check(st == 401 and "not.a.token" not in str(doc), "a bad token: 401 without echoing it", (st, doc))
        st, doc, _ = g.request("DELETE", "/v1/config", token=admin)
        t.check(st == 405, "a method the endpoint does not have: 405", st)
        st, doc, _ = g.request("GET", "/v1/configuration", token=admin)
        t.check(st == 404, "an unknown path: 404", st)
        st, doc, _ = g.request("GET", "/v1/config/x", token=admin)
        t.check(st == 404, "no prefix match for an exact route", st)
        recs = g.audit_lines()
        reads = [r for r in recs if r["event"] == "config.export" and r["decision"] == "allow"]
        t.check(len(reads) == 1 and reads[0]["user"] == "erin" and reads[0]["decision"] == "allow",
                "the admin's read is recorded once, naming the admin", reads)
        refused = [r for r in recs if r["event"] == "admin.refused" or (r["event"] == "config.export" and r["decision"] == "deny")]
        t.check(any(r["user"] == "alice" and r["rule"] == "not-admin" for r in refused),
                "the refused attempt is recorded with rule not-admin", refused)
        t.check(g.verify().returncode == 0, "the audit chain verifies")
    finally:
        g.close()


run_suite("api_config", body)
