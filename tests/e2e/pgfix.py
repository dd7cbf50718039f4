"""Fixture for end-to-end tests of PostgreSQL resources: a real PostgreSQL 15 (tests/e2e/pg.py)
with a resource database and a login role whose password is a canary, and a Gatehouse whose
policy names that database as a `kind: postgres` resource through a vault secret, serving HTTP
and the PostgreSQL wire front. Standard library + psycopg."""
import os
import subprocess

import lib
import pg

CANARY = "Canary-pw-7f3a91c2e8"  # the backend password: must never appear outside the store

POLICY = """\
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
    kind: postgres
    environments:
      staging:    { secret: crm-staging-dsn }
      production: { secret: crm-prod-dsn }
apps:
  - name: invoices
grants:
  - { resource: crm, environment: staging, group: analysts, access: use }
  - { resource: crm, environment: staging, group: engineers, access: edit }
  - { resource: crm, environment: production, group: engineers, access: edit }
  - { resource: crm, environment: production, user: alice, access: use }
  - { resource: crm, environment: production, user: dave, access: own }
"""

SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, tier text NOT NULL);
CREATE TABLE invoices (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id),
                       amount_cents bigint NOT NULL, status text NOT NULL);
CREATE TABLE notes (id serial PRIMARY KEY, owner text NOT NULL DEFAULT current_setting('gatehouse.user'),
                    body text);
INSERT INTO customers VALUES (1, 'Nordlicht GmbH', 'gold'), (2, 'Cafe Ole', 'silver'), (3, 'Brightwater', 'gold');
INSERT INTO invoices VALUES (1, 1, 125000, 'paid'), (2, 2, 1900, 'sent'), (3, 3, 47250, 'overdue');
INSERT INTO notes (owner, body) VALUES ('alice', 'alice''s note'), ('bob', 'bob''s note');
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE notes FORCE ROW LEVEL SECURITY;
CREATE POLICY notes_owner ON notes USING (owner = current_setting('gatehouse.user', true))
  WITH CHECK (owner = current_setting('gatehouse.user', true));
"""


class PgGatehouse:
    """A PostgreSQL cluster with databases crm_staging and crm_prod owned by role `app`
    (password CANARY), and a Gatehouse with POLICY, the two secrets set, serving HTTP and --pg.
    Use as a context manager; start() starts the server."""

    def __init__(self, policy=POLICY, pool=None, max_connections=100):
        self.pg = pg.Postgres(max_connections=max_connections)
        self.gh = None
        self.pool = pool
        self.policy = policy

    def __enter__(self):
        self.pg.__enter__()
        self.pg.create_role("app", password=CANARY)
        for db in ("crm_staging", "crm_prod"):
            self.pg.create_db(db, owner="app")
            # the schema is created as the owner, so RLS (FORCE) applies to it as well
            c = self.pg.connect(user="app", password=CANARY, dbname=db)
            with c:
                c.execute(SCHEMA)
            c.close()
        self.gh = lib.Gatehouse(policy=None, dbs=())
        for name, db in (("crm-staging-dsn", "crm_staging"), ("crm-prod-dsn", "crm_prod")):
            self.set_secret(name, self.pg.dsn(user="app", password=CANARY, dbname=db))
        out = self.gh.apply(self.policy)
        assert out.returncode == 0, out.stderr
        return self

    def set_secret(self, name, value):
        out = self.gh.cli("secret", "set", "--data", self.gh.data, name, input=value + "\n")
        assert out.returncode == 0, out.stderr
        return out

    def start(self, *extra):
        args = ["--pg", "127.0.0.1:0"] + (["--pg-pool", str(self.pool)] if self.pool else []) + list(extra)
        self.gh.start(*args)
        line = self.gh.proc.stdout.readline().decode()
        if not line.startswith("listening on postgresql://"):
            raise RuntimeError("no pg front: %r; stderr: %s" % (line, self.gh.server_log()))
        self.pgport = int(line.strip().rsplit(":", 1)[1])
        return self

    def __exit__(self, *exc):
        try:
            if self.gh:
                self.gh.close()
        finally:
            self.pg.__exit__(*exc)
        return False

    def dsn(self, user, token, env="staging", **extra):
        """A libpq key=value connection string to the wire front."""
        return pg.make_dsn("127.0.0.1", self.pgport, user=user, password=token, dbname="crm." + env, **extra)

    def connect(self, user, token, env="staging", **kw):
        import psycopg
        return psycopg.connect(self.dsn(user, token, env), autocommit=kw.pop("autocommit", True), **kw)

    def psql(self, user, token, sql, env="staging", extra=()):
        """Runs psql -X -A -t -c SQL; returns the CompletedProcess."""
        return subprocess.run([pg.pg_tool("psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               "-d", self.dsn(user, token, env), "-c", sql] + list(extra),
                              capture_output=True, text=True, timeout=60)

    def direct(self, sql, params=None, db="crm_staging"):
        """Reads the resource directly as the owner with RLS off (to confirm what happened)."""
        c = self.pg.connect_admin(db=db)
        try:
            with c.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else None
        finally:
            c.close()
