"""Harness for end-to-end tests: starts the real gatehouse binary on a free port with a
temporary data directory and talks to it the way users do (HTTP, the CLI). Standard library
only. Every check prints one line; done() prints the suite's counts and reports them to
tests/run through $GH_TEST_RESULTS."""
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import shutil
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("GH_BIN") or os.path.join(ROOT, "build", "gatehouse")

# The test policy: two environments (production needs approval), users in several groups,
# one SQLite resource, one app. {dir} is replaced by the test's temporary directory.
DEFAULT_POLICY = """\
version: 1
users:
  - name: alice
  - name: bob
  - name: carol
  - name: dave
  - name: erin
  - name: mallory
    disabled: true
groups:
  - name: analysts
    members: [alice, mallory]
  - name: engineers
    members: [bob, carol]
  - name: leads
    members: [carol, dave]
  - name: platform
    members: [erin]
admins: [platform]
environments:
  - name: staging
  - name: production
    approval: writes
    reviewers: [leads]
resources:
  - name: crm
    kind: sqlite
    environments:
      staging:    { path: crm-staging.db }
      production: { path: crm-prod.db }
apps:
  - name: invoices
grants:
  - { resource: crm, environment: staging, group: analysts, access: use }
  - { resource: crm, environment: staging, group: engineers, access: edit }
  - { resource: crm, environment: production, group: engineers, access: edit }
  - { resource: crm, environment: production, user: alice, access: use }
  - { resource: crm, environment: production, user: dave, access: own }
"""

DEFAULT_SQL = """\
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, tier TEXT NOT NULL);
CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
                       amount_cents INTEGER NOT NULL, status TEXT NOT NULL);
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO customers VALUES (1, 'Nordlicht GmbH', 'gold'), (2, 'Cafe Ole', 'silver'), (3, 'Brightwater', 'gold');
INSERT INTO invoices VALUES (1, 1, 125000, 'paid'), (2, 2, 1900, 'sent'), (3, 3, 47250, 'overdue');
INSERT INTO notes VALUES (1, 'call back on monday');
"""


class Results:
    """Counts checks; prints each; reports totals at the end."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            print("ok   - %s" % what)
        else:
            self.failed += 1
            print("FAIL - %s%s" % (what, (": " + str(detail)[:2000]) if detail != "" else ""))
        sys.stdout.flush()
        return bool(cond)

    def done(self):
        print("%s: %d passed, %d failed" % (self.name, self.passed, self.failed))
        path = os.environ.get("GH_TEST_RESULTS")
        if path:
            with open(path, "a") as f:
                f.write("%d %d e2e/%s\n" % (self.passed, self.failed, self.name))
        sys.exit(1 if self.failed else 0)


def run_suite(name, body):
    """Runs body(results); an exception counts as a failure rather than losing the suite."""
    r = Results(name)
    try:
        body(r)
    except Exception as e:  # report, do not hide
        import traceback
        traceback.print_exc()
        r.check(False, "suite raised %s" % type(e).__name__, e)
    r.done()


def make_db(path, sql):
    db = sqlite3.connect(path)
    db.executescript(sql)
    db.commit()
    db.close()


class Gatehouse:
    """One data directory and, once start() is called, one server."""

    def __init__(self, policy=DEFAULT_POLICY, sql=DEFAULT_SQL, dbs=("crm-staging.db", "crm-prod.db")):
        self.tmp = tempfile.mkdtemp(prefix="gh-e2e-")
        self.data = os.path.join(self.tmp, "data")
        self.proc = None
        self.port = None
        self.stderr_path = os.path.join(self.tmp, "server.err")
        for name in dbs:
            make_db(os.path.join(self.tmp, name), sql)
        out = self.cli("init", "--data", self.data)
        assert out.returncode == 0, out.stderr
        if policy is not None:
            self.apply(policy)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def apply(self, policy_text, name="policy.yaml"):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(policy_text)
        return self.cli("apply", "--data", self.data, p)

    def cli(self, *args, env=None, input=None, timeout=60):
        e = dict(os.environ)
        if env:
            e.update(env)
        return subprocess.run([BIN] + list(args), capture_output=True, text=True, env=e, input=input,
                              timeout=timeout)

    def start(self, *extra, preexec_fn=None, env=None):
        e = dict(os.environ)
        if env:
            e.update(env)
        self.stderr_file = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([BIN, "serve", "--data", self.data, "--http", "127.0.0.1:0"] + list(extra),
                                     stdout=subprocess.PIPE, stderr=self.stderr_file, env=e,
                                     preexec_fn=preexec_fn)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on http://"):
            raise RuntimeError("server did not start: %r; stderr: %s" % (line, self.server_log()))
        self.port = int(line.strip().rsplit(":", 1)[1])
        return self

    def server_log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        """SIGTERM; returns the exit status (0 for a clean stop)."""
        if not self.proc:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc.stdout.close()
        self.stderr_file.close()
        self.proc = None
        return rc

    def close(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()
            self.stderr_file.close()
            self.proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def token(self, user, env, app=None, ttl=None):
        """Issues a token; returns (token, id)."""
        args = ["token", "issue", "--data", self.data, "--user", user, "--env", env, "--json"]
        if app:
            args += ["--app", app]
        if ttl:
            args += ["--ttl", ttl]
        out = self.cli(*args)
        if out.returncode != 0:
            raise RuntimeError("token issue failed: " + out.stderr)
        d = json.loads(out.stdout)
        return d["token"], d["id"]

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def request(self, method, path, body=None, token=None, headers=None, conn=None):
        """Returns (status, parsed JSON or None, raw bytes)."""
        c = conn or self.conn()
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=h)
        resp = c.getresponse()
        raw = resp.read()
        if conn is None:
            c.close()
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
        return resp.status, doc, raw

    def query(self, token, sql, resource="crm", environment="staging", params=None, conn=None):
        body = {"resource": resource, "environment": environment, "sql": sql}
        if params is not None:
            body["params"] = params
        return self.request("POST", "/v1/query", body, token=token, conn=conn)

    def sqlite(self, db, sql, params=()):
        """Reads the resource directly (not through Gatehouse) to confirm what happened."""
        c = sqlite3.connect(os.path.join(self.tmp, db))
        try:
            return c.execute(sql, params).fetchall()
        finally:
            c.close()

    def audit_lines(self):
        with open(os.path.join(self.data, "audit", "audit.log")) as f:
            return [json.loads(l) for l in f if l.strip()]

    def verify(self):
        return self.cli("audit", "verify", "--data", self.data)
