"""Basic flows through the real server: health, JWKS, an allowed read, a denial, errors,
a clean stop, and the CLI's client verbs."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib import Gatehouse, run_suite


def body(r):
    g = Gatehouse()
    try:
        g.start()
        st, doc, _ = g.request("GET", "/healthz")
        r.check(st == 200 and doc["status"] == "ok", "GET /healthz answers 200 ok")
        st, doc, _ = g.request("GET", "/.well-known/jwks.json")
        key = doc["keys"][0] if doc else {}
        r.check(st == 200 and key.get("kty") == "OKP" and key.get("crv") == "Ed25519" and len(key.get("x", "")) == 43,
                "JWKS publishes one Ed25519 public key", doc)

        alice, _ = g.token("alice", "staging", app="invoices")
        st, doc, _ = g.query(alice, "SELECT id, name FROM customers WHERE tier = ? ORDER BY id", params=["gold"])
        r.check(st == 200 and doc["columns"] == ["id", "name"] and doc["rows"] == [[1, "Nordlicht GmbH"], [3, "Brightwater"]]
                and doc["row_count"] == 2 and doc["truncated"] is False and doc["request_id"].startswith("req_"),
                "governed read returns columns, rows, row_count, truncated, request_id", doc)

        st, doc, _ = g.query(alice, "SELECT 1", environment="production")
        r.check(st == 403 and doc["error"]["code"] == "wrong_environment", "token for staging refused in production", doc)

        st, doc, _ = g.query(alice, "SELECT * FROM customers", resource="nope")
        r.check(st == 404 and doc["error"]["code"] == "not_found", "unknown resource is 404", doc)
        st, doc, _ = g.query(alice, "SELECT * FROM customers", environment="qa")
        r.check(st == 404, "unknown environment is 404", doc)

        st, doc, _ = g.request("POST", "/v1/query", body={"resource": "crm"})
        r.check(st == 401 and doc["error"]["code"] == "unauthenticated", "no token is 401", doc)
        st, doc, _ = g.request("POST", "/v1/query", body="{not json", token=alice)
        r.check(st == 400 and doc["error"]["code"] == "bad_request" and "request_id" in doc["error"],
                "malformed JSON body is 400 with an error document", doc)
        st, doc, _ = g.request("POST", "/v1/query", body={"resource": "crm", "environment": "staging", "sql": "SELECT 1",
                                                         "extra": 1}, token=alice)
        r.check(st == 400 and "unknown member" in doc["error"]["message"], "unknown body member is 400", doc)
        st, doc, _ = g.request("GET", "/v1/nothing-here", token=alice)
        r.check(st == 404, "unknown endpoint is 404", doc)
        st, doc, _ = g.request("DELETE", "/v1/query", token=alice)
        r.check(st == 405, "wrong method is 405", doc)

        st, doc, _ = g.query(alice, "SELECT * FROM customers WHERE id = ?", params=[1, 2])
        r.check(st == 400 and doc["error"]["code"] == "bad_params", "wrong parameter count is 400", doc)
        st, doc, _ = g.query(alice, "SELECT * FROM customers WHERE id = ?", params=[{"x": 1}])
        r.check(st == 400 and doc["error"]["code"] == "bad_params", "object parameter is refused", doc)

        # keep-alive: several requests on one connection
        c = g.conn()
        ok = True
        for i in range(20):
            st, doc, _ = g.query(alice, "SELECT ? AS n", params=[i], conn=c)
            ok = ok and st == 200 and doc["rows"] == [[i]]
        c.close()
        r.check(ok, "20 requests on one keep-alive connection")

        # the CLI client verbs
        env = {"GATEHOUSE_URL": "http://127.0.0.1:%d" % g.port, "GATEHOUSE_TOKEN": alice}
        out = g.cli("query", "--resource", "crm", "--env", "staging", "SELECT id, name FROM customers WHERE id = ?", "2",
                    env=env)
        r.check(out.returncode == 0 and "Cafe Ole" in out.stdout and "(1 row)" in out.stdout,
                "gatehouse query prints an aligned table", out.stdout + out.stderr)
        out = g.cli("query", "--resource", "crm", "--env", "staging", "--json", "SELECT 7 AS seven", env=env)
        r.check(out.returncode == 0 and json.loads(out.stdout)["rows"] == [[7]], "gatehouse query --json", out.stdout)
        out = g.cli("query", "--resource", "crm", "--env", "staging", "DROP TABLE customers", env=env)
        r.check(out.returncode == 1 and "destructive-ddl" in out.stderr, "gatehouse query exits 1 when denied", out.stderr)
        out = g.cli("query", "--resource", "crm", "--env", "staging", env=env)
        r.check(out.returncode == 2, "gatehouse query exits 2 on usage error", out.stderr)
        out = g.cli("query", "--resource", "crm", "--env", "staging", "SELECT 1",
                    env={"GATEHOUSE_URL": env["GATEHOUSE_URL"], "GATEHOUSE_TOKEN": ""})
        r.check(out.returncode == 2 and "GATEHOUSE_TOKEN" in out.stderr, "gatehouse query without a token is a usage error")
        out = g.cli("--help")
        r.check(out.returncode == 0 and "gatehouse init" in out.stdout and "gatehouse query" in out.stdout, "gatehouse --help")
        out = g.cli("serve", "--help")
        r.check(out.returncode == 0 and "--http" in out.stdout, "gatehouse serve --help")

        rc = g.stop()
        r.check(rc == 0, "SIGTERM stops the server cleanly (exit 0)", rc)
        out = g.verify()
        r.check(out.returncode == 0 and out.stdout.startswith("ok: "), "audit verify after the run", out.stdout)
    finally:
        g.close()


run_suite("test_basic", body)
