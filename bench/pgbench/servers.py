"""bench/pgbench/servers.py: the peers for bench/pgbench/run. Starts a temporary PostgreSQL
(durable: fsync on) and PgBouncer (transaction pooling) with tests/e2e/pg.py, creates the roles
and the database, writes what the run needs to ENV_FILE as shell assignments, then waits. On
SIGTERM or SIGINT (or when its parent dies) it stops both and removes their directories.

    servers.py ENV_FILE [--max-connections 100] [--pool-size 8] [--shared-buffers 256MB]

ENV_FILE gets (mode 0600): PG_PORT PGB_PORT PG_SUPERUSER PG_SUPERPASS BENCH_USER BENCH_PW
GH_ROLE GH_ROLE_PW PG_PID PGB_PID. It is written (atomically) only when everything is up.
"""
import argparse
import os
import secrets
import shlex
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "e2e"))
from pg import Postgres, PgBouncer  # noqa: E402

BENCH_USER = "bencher"     # owns the pgbench tables; direct and PgBouncer runs log in as it
GH_ROLE = "gatehouse"      # the role in the DSN Gatehouse holds in its vault
DB = "bench"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("env_file")
    ap.add_argument("--max-connections", type=int, default=100)
    ap.add_argument("--pool-size", type=int, default=8)
    ap.add_argument("--shared-buffers", default="256MB")
    a = ap.parse_args()

    def on_signal(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    bench_pw = secrets.token_hex(12)
    gh_pw = secrets.token_hex(12)
    with Postgres(max_connections=a.max_connections, fsync=True,
                  settings={"shared_buffers": a.shared_buffers}) as pg:
        pg.create_role(BENCH_USER, bench_pw)
        pg.create_role(GH_ROLE, gh_pw)
        pg.create_db(DB, owner=BENCH_USER)
        with PgBouncer(pg, {BENCH_USER: bench_pw, GH_ROLE: gh_pw}, pool_size=a.pool_size,
                       max_client_conn=400) as pb:
            values = {
                "PG_PORT": pg.port, "PGB_PORT": pb.port, "PG_SUPERUSER": pg.superuser,
                "PG_SUPERPASS": pg.superuser_password, "BENCH_USER": BENCH_USER, "BENCH_PW": bench_pw,
                "BENCH_DB": DB, "GH_ROLE": GH_ROLE, "GH_ROLE_PW": gh_pw, "PG_PID": pg.pid, "PGB_PID": pb.pid,
            }
            tmp = a.env_file + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                for k, v in values.items():
                    f.write("%s=%s\n" % (k, shlex.quote(str(v))))
            os.rename(tmp, a.env_file)
            print("servers: postgres on 127.0.0.1:%d (pid %d), pgbouncer on 127.0.0.1:%d (pid %d)"
                  % (pg.port, pg.pid, pb.port, pb.pid), file=sys.stderr, flush=True)
            try:
                while True:
                    signal.pause()
            finally:
                print("servers: stopping", file=sys.stderr, flush=True)


if __name__ == "__main__":
    # the parent (bench/pgbench/run) dying without a signal to us must not leave servers behind
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    main()
