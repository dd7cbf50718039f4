"""The real-PostgreSQL harness itself (tests/e2e/pg.py): a temporary cluster with SCRAM on TCP,
roles and databases, psycopg, psql and pgbench directly and through PgBouncer (transaction
pooling), a second cluster beside the first, killing backends, and a stop that leaves no
process and no directory behind."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import run_suite
import psycopg
from pg import Postgres, PgBouncer, pg_tool

APP, APP_PW, APP_DB = "app", "app pw 'quoted' \\ 1", "appdb"


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def owner_uid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    return None


def refused(dsn):
    """The error text when a connection is refused, or None when it was accepted."""
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
        return None
    except psycopg.OperationalError as e:
        return str(e)


def run(argv, env, timeout=60):
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def pgbench(r, where, env):
    """pgbench -S -T 2 against env's server; checks it ran transactions and none failed."""
    out = run([pg_tool("pgbench"), "-n", "-S", "-c", "2", "-j", "1", "-T", "2"], env)
    text = out.stdout + out.stderr
    tps = [l for l in text.splitlines() if l.startswith("tps = ")]
    r.check(out.returncode == 0 and tps and "number of failed transactions: 0" in text,
            "pgbench -S -T 2 %s: %s" % (where, tps[0] if tps else "no tps"), text[-1500:])


def body(r):
    t0 = time.time()
    leftovers = []
    with Postgres(max_connections=30) as pg:
        leftovers += pg.pids()
        r.check(pg.port and pg.pid and alive(pg.pid), "postgres started on 127.0.0.1:%s (pid %s)" % (pg.port, pg.pid))
        if os.geteuid() == 0:
            r.check(owner_uid(pg.pid) != 0, "running as root: postgres runs as an unprivileged user",
                    owner_uid(pg.pid))
        rows = pg.sql("SELECT current_setting('max_connections'), current_setting('fsync'), "
                      "current_setting('listen_addresses')")
        r.check(rows == [("30", "off", "127.0.0.1")], "settings: max_connections, fsync off for tests, 127.0.0.1 only", rows)

        pg.create_role(APP, APP_PW)
        pg.create_db(APP_DB, owner=APP)
        rows = pg.sql("SELECT rolpassword LIKE 'SCRAM-SHA-256$%%' FROM pg_authid WHERE rolname = %s", [APP])
        r.check(rows == [(True,)], "create_role stores a SCRAM verifier", rows)

        with psycopg.connect(pg.dsn(APP, APP_PW, APP_DB)) as c:
            rows = c.execute("SELECT current_user, current_database(), inet_server_addr()::text").fetchall()
            c.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            c.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
            c.commit()
        r.check(rows == [(APP, APP_DB, "127.0.0.1/32")], "psycopg over TCP with the password (key=value dsn)", rows)
        with psycopg.connect(pg.dsn(APP, APP_PW, APP_DB, uri=True)) as c:
            rows = c.execute("SELECT v FROM t ORDER BY id").fetchall()
        r.check(rows == [("one",), ("two",)], "the same through a postgresql:// URI dsn", rows)
        err = refused(pg.dsn(APP, "wrong", APP_DB))
        r.check(err and "password authentication failed" in err, "a wrong password is refused on TCP", err)
        err = refused(pg.dsn(APP, "", APP_DB))
        r.check(err is not None, "no password is refused on TCP", err)
        err = refused(pg.dsn(pg.superuser, "wrong"))
        r.check(err is not None, "the superuser needs its password on TCP too", err)

        out = run(["psql", "-X", "-A", "-t", "-c", "SELECT count(*) FROM t"], pg.client_env(APP, APP_PW, APP_DB))
        r.check(out.returncode == 0 and out.stdout.strip() == "2", "psql direct", out.stdout + out.stderr)

        out = run([pg_tool("pgbench"), "-i", "-s", "1", "-q"], pg.client_env(APP, APP_PW, APP_DB))
        r.check(out.returncode == 0, "pgbench -i -s 1 direct", out.stderr[-1500:])
        pgbench(r, "direct", pg.client_env(APP, APP_PW, APP_DB))

        with PgBouncer(pg, {APP: APP_PW}, pool_size=2) as pb:
            leftovers += pb.pids()
            r.check(pb.port and pb.port != pg.port and alive(pb.pid), "pgbouncer started on 127.0.0.1:%s" % pb.port)
            with pb.connect(APP, APP_PW, APP_DB) as c:
                rows = c.execute("SELECT current_user, current_database(), inet_server_port()").fetchall()
                v = c.execute("SELECT v FROM t WHERE id = 2").fetchall()
            r.check(rows == [(APP, APP_DB, pg.port)] and v == [("two",)],
                    "psycopg through pgbouncer reaches the server as the same role", rows)
            err = refused(pb.dsn(APP, "wrong", APP_DB))
            r.check(err is not None, "pgbouncer refuses a wrong password", err)
            out = run(["psql", "-X", "-A", "-t", "-c", "SELECT count(*) FROM t"], pb.client_env(APP, APP_PW, APP_DB))
            r.check(out.returncode == 0 and out.stdout.strip() == "2", "psql through pgbouncer", out.stdout + out.stderr)
            out = run([pg_tool("pgbench"), "-i", "-s", "1", "-q"], pb.client_env(APP, APP_PW, APP_DB))
            r.check(out.returncode == 0, "pgbench -i -s 1 through pgbouncer", out.stderr[-1500:])
            pgbench(r, "through pgbouncer", pb.client_env(APP, APP_PW, APP_DB))
            # transaction pooling: 6 clients, at most 2 server connections for this db/user
            conns = [pb.connect(APP, APP_PW, APP_DB) for _ in range(6)]
            for c in conns:
                c.execute("SELECT 1")
            n = pg.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND usename = %s", [APP_DB, APP])[0][0]
            for c in conns:
                c.close()
            r.check(1 <= n <= 2, "transaction pooling: 6 clients share at most pool_size=2 server connections", n)

        with PgBouncer(pg, {APP: APP_PW}, pool_size=2, auth="scram") as pb:
            leftovers += pb.pids()
            with pb.connect(APP, APP_PW, APP_DB) as c:
                rows = c.execute("SELECT count(*) FROM t").fetchall()
            r.check(rows == [(2,)], "pgbouncer with SCRAM verifiers in its auth_file", rows)

        with Postgres(max_connections=10) as pg2:
            leftovers += pg2.pids()
            with pg.connect(dbname="postgres") as c1, pg2.connect(dbname="postgres") as c2:
                p1 = c1.execute("SELECT inet_server_port(), pg_postmaster_start_time()").fetchone()
                p2 = c2.execute("SELECT inet_server_port(), pg_postmaster_start_time()").fetchone()
            r.check(p1[0] == pg.port and p2[0] == pg2.port and pg.port != pg2.port and pg.tmp != pg2.tmp,
                    "a second cluster runs beside the first (ports %d and %d)" % (pg.port, pg2.port), (p1, p2))
            r.check(pg2.sql("SELECT count(*) FROM pg_database WHERE datname = %s", [APP_DB]) == [(0,)],
                    "the clusters are independent")
            pid2, tmp2 = pg2.pid, pg2.tmp
        r.check(not alive(pid2) and not os.path.exists(tmp2), "the second cluster stopped and its directory is gone")

        c = pg.connect(APP, APP_PW, APP_DB)
        c.execute("SELECT 1")
        victim = c.info.backend_pid
        n = pg.kill_backends(APP_DB)
        try:
            c.execute("SELECT 1")
            err = None
        except psycopg.OperationalError as e:
            err = str(e)
        c.close()
        r.check(n >= 1 and err is not None, "kill_backends terminates the connections to a database (%d)" % n, err)
        deadline = time.time() + 5
        while alive(victim) and time.time() < deadline:
            time.sleep(0.05)
        r.check(not alive(victim), "the terminated backend process is gone")
        r.check("terminating connection due to administrator command" in pg.log()
                and "database system is ready to accept connections" in pg.log(),
                "the postmaster log is readable and shows the termination")

        pg.restart()
        r.check(pg.sql("SELECT count(*) FROM t", db=APP_DB) == [(2,)], "restart keeps the cluster")
        leftovers += pg.pids()
        tmp = pg.tmp
    time.sleep(0.1)
    left = sorted({p for p in leftovers if alive(p)})
    r.check(not left, "no postgres or pgbouncer process left after stop (%d checked)" % len(set(leftovers)), left)
    r.check(not os.path.exists(tmp), "temporary directories removed")

    # an exception inside the block still stops the server
    pid = None
    try:
        with Postgres() as pg3:
            pid = pg3.pid
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    r.check(pid and not alive(pid), "an exception inside the with block stops the server")
    r.check(time.time() - t0 < 30, "harness self-test took %.1f s" % (time.time() - t0))


run_suite("pg_harness", body)
