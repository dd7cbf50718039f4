"""Real PostgreSQL (and PgBouncer) for end-to-end tests and benchmarks. A library, not a test.

Standard library plus psycopg only. Each Postgres is a fresh cluster in its own temporary
directory: initdb, then the postmaster started by this process (not pg_ctl) on a free TCP port
of 127.0.0.1, with its unix socket in the same temporary directory. Authentication: trust on
the unix socket (the harness's admin channel, reachable only through a directory owned by the
server's user), scram-sha-256 on TCP 127.0.0.1 for everyone, the superuser included. Nothing
listens anywhere else.

PostgreSQL (and PgBouncer) refuse to run as root: when this process is root they run as
`nobody:nogroup` through setpriv, with their directories chowned to it; otherwise as the
current user. Every server is started in its own session (process group) and with a parent
death signal, so stop() can clean up by process group and a killed harness does not leave a
server behind. stop() runs from the context manager, at interpreter exit, and on SIGTERM.

    from pg import Postgres, PgBouncer
    with Postgres() as pg:                      # started
        pg.create_role("app", "secret")
        pg.create_db("appdb", owner="app")
        conn = psycopg.connect(pg.dsn("app", "secret", "appdb"))       # TCP, SCRAM
        pg.sql("SELECT count(*) FROM t", db="appdb")                   # superuser, unix socket
        with PgBouncer(pg, users={"app": "secret"}, pool_size=4) as pb:
            psycopg.connect(pb.dsn("app", "secret", "appdb"))
"""
import atexit
import os
import pwd
import grp
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

import psycopg
from psycopg import sql as pgsql

PG_BIN = os.environ.get("GH_PG_BIN", "/usr/lib/postgresql/15/bin")
PGBOUNCER = os.environ.get("GH_PGBOUNCER", shutil.which("pgbouncer") or "/usr/sbin/pgbouncer")
SUPERUSER = "postgres"

# Settings for a test cluster: durability off (a crash loses the cluster anyway, it is temporary).
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def pg_tool(name):
    """Absolute path of a PostgreSQL program (initdb, pg_ctl, postgres, pgbench, psql...)."""
    p = os.path.join(PG_BIN, name)
    return p if os.path.exists(p) else (shutil.which(name) or p)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry on a bind race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _proc_table():
    """{pid: (ppid, pgid, starttime)} of every live (non-zombie) process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if len(fields) > 19 and fields[0] != "Z":
            out[int(d)] = (int(fields[1]), int(fields[2]), fields[19])
    return out


def _family(root):
    """{(pid, starttime)} of root's descendants and of its process group. PostgreSQL's children
    call setsid(), so the process group alone does not find them; the start time guards against a
    reused pid when they are killed later."""
    table = _proc_table()
    found = {p for p, (_, pgid, _) in table.items() if pgid == root and p != root}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for p, (ppid, _, _) in table.items():
            if ppid == parent and p not in found:
                found.add(p)
                frontier.append(p)
    return {(p, table[p][2]) for p in found}


def _still_alive(family):
    table = _proc_table()
    return {(p, st) for p, st in family if p in table and table[p][2] == st}


def _kv_quote(v):
    v = str(v)
    if v and all(c.isalnum() or c in "._-/:@" for c in v):
        return v
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def make_dsn(host, port, user=None, password=None, dbname=None, uri=False, **extra):
    """A libpq connection string: key=value (default) or a postgresql:// URI. None values are
    left out. Extra keywords (sslmode, connect_timeout, application_name...) are appended."""
    if uri:
        auth = ""
        if user is not None:
            auth = urllib.parse.quote(str(user), safe="")
            if password is not None:
                auth += ":" + urllib.parse.quote(str(password), safe="")
            auth += "@"
        q = urllib.parse.urlencode({k: v for k, v in extra.items() if v is not None})
        return "postgresql://%s%s:%d/%s%s" % (auth, host, port,
                                              urllib.parse.quote(str(dbname or ""), safe=""),
                                              ("?" + q) if q else "")
    parts = [("host", host), ("port", port), ("dbname", dbname), ("user", user), ("password", password)]
    parts += sorted(extra.items())
    return " ".join("%s=%s" % (k, _kv_quote(v)) for k, v in parts if v is not None)


# ---------------------------------------------------------------- running as someone else

def _run_as():
    """(uid, gid, prefix) for server processes: nobody when we are root, else ourselves."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid(), []
    user = os.environ.get("GH_PG_USER", "nobody")
    pw = pwd.getpwnam(user)
    try:
        gid = grp.getgrnam("nogroup").gr_gid if user == "nobody" else pw.pw_gid
    except KeyError:
        gid = pw.pw_gid
    return pw.pw_uid, gid, ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % gid, "--clear-groups"]


def _traversable_by_others(path):
    """True when every directory from / down to path may be entered by any user."""
    path = os.path.abspath(path)
    while True:
        try:
            if not os.stat(path).st_mode & 0o001:
                return False
        except OSError:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _mkdtemp(prefix, uid, gid):
    """A fresh temporary directory the server's user owns (falls back to /tmp when $TMPDIR
    cannot be entered by that user)."""
    base = tempfile.gettempdir()
    if uid != os.getuid() and not _traversable_by_others(base):
        base = "/tmp"
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    os.chmod(d, 0o700)
    if uid != os.getuid():
        os.chown(d, uid, gid)
    return d


def _server_env():
    """The environment for server processes: ours without libpq's PG* variables and locale noise."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("PG") and not k.startswith("LC_")}
    e["LANG"] = "C.UTF-8" if os.path.exists("/usr/lib/locale/C.utf8") else "C"
    return e


# Everything started and not yet stopped, for the exit and SIGTERM handlers.
_LIVE = []
_HANDLERS = False


def _stop_all():
    for s in list(reversed(_LIVE)):
        try:
            s.stop()
        except Exception:  # exit path: stop the rest regardless
            pass


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds: context managers and atexit stop the servers


def _install_handlers():
    global _HANDLERS
    if _HANDLERS:
        return
    _HANDLERS = True
    atexit.register(_stop_all)
    try:
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: atexit and the parent death signal still hold
        pass


class _Process:
    """One server process started in its own session, stopped by PID and process group."""

    def __init__(self, argv, log_path, cwd, stop_signal, name):
        self.name = name
        self.log_path = log_path
        self.stop_signal = stop_signal
        self.log_file = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, cwd=cwd, env=_server_env(),
                                     start_new_session=True)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=20):
        """stop_signal, then SIGKILL after timeout seconds; then kills whatever is left of the
        process's children and process group. Returns the exit status of the main process."""
        family = _family(self.pid)
        rc = self.proc.poll()
        if rc is None:
            try:
                self.proc.send_signal(self.stop_signal)
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
        family |= _family(self.pid)  # children started during shutdown
        deadline = time.time() + 2
        left = _still_alive(family)
        while left and time.time() < deadline:  # backends notice the postmaster's exit by themselves
            time.sleep(0.02)
            left = _still_alive(family)
        for pid, _ in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.log_file.close()
        return rc


# ---------------------------------------------------------------- PostgreSQL

class Postgres:
    """A temporary PostgreSQL cluster. Use as a context manager (starts on enter, stops on exit)
    or call start()/stop(). Attributes once started: port, host ("127.0.0.1"), socket_dir,
    data_dir, superuser, superuser_password, pid."""

    def __init__(self, max_connections=100, fsync=False, settings=None, superuser_password=None,
                 log_connections=False):
        self.max_connections = max_connections
        self.fsync = fsync
        self.settings = dict(settings or {})
        self.log_connections = log_connections
        self.superuser = SUPERUSER
        self.superuser_password = superuser_password or secrets.token_hex(16)
        self.host = "127.0.0.1"
        self.port = None
        self.uid, self.gid, self.prefix = _run_as()
        self.tmp = None
        self.data_dir = None
        self.socket_dir = None
        self.log_path = None
        self._proc = None
        self._initialised = False
        self._final_log = ""

    # -- lifecycle

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def pid(self):
        return self._proc.pid if self._proc else None

    def initdb(self):
        """Creates the cluster in a fresh temporary directory (start() calls it when needed)."""
        _install_handlers()
        self.tmp = _mkdtemp("gh-pg-", self.uid, self.gid)
        if self not in _LIVE:
            _LIVE.append(self)  # the directory is removed at exit even if start() never ran
        self.data_dir = os.path.join(self.tmp, "data")
        self.socket_dir = os.path.join(self.tmp, "sock")
        self.log_path = os.path.join(self.tmp, "postgres.log")
        os.mkdir(self.socket_dir, 0o700)
        pwfile = os.path.join(self.tmp, "pwfile")
        with open(pwfile, "w") as f:
            f.write(self.superuser_password + "\n")
        for p in (self.socket_dir, pwfile):
            if self.uid != os.getuid():
                os.chown(p, self.uid, self.gid)
        argv = self.prefix + [pg_tool("initdb"), "-D", self.data_dir, "-U", self.superuser,
                              "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256",
                              "-E", "UTF8", "--no-locale", "--no-instructions"]
        if not self.fsync:
            argv.append("--no-sync")
        out = subprocess.run(argv, capture_output=True, text=True, cwd=self.tmp, env=_server_env(), timeout=120)
        os.unlink(pwfile)
        if out.returncode != 0:
            raise RuntimeError("initdb failed (%d): %s%s" % (out.returncode, out.stdout, out.stderr))
        # Only what the harness needs: trust on the private unix socket, SCRAM on 127.0.0.1.
        with open(os.path.join(self.data_dir, "pg_hba.conf"), "w") as f:
            f.write("# written by tests/e2e/pg.py\n"
                    "local all all trust\n"
                    "host  all all 127.0.0.1/32 scram-sha-256\n")
        self._initialised = True

    def _conf(self):
        conf = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": self.socket_dir,
            "max_connections": str(self.max_connections),
            "password_encryption": "scram-sha-256",
            "logging_collector": "off",
            "log_destination": "stderr",
            "log_line_prefix": "%m [%p] %q%u@%d ",
            "log_connections": "on" if self.log_connections else "off",
            "log_disconnections": "on" if self.log_connections else "off",
            "dynamic_shared_memory_type": "posix",
        }
        if not self.fsync:
            conf.update(FAST_SETTINGS)
            conf.update({"wal_level": "minimal", "max_wal_senders": "0"})
        else:
            conf["fsync"] = "on"
        conf.update({k: str(v) for k, v in self.settings.items()})
        return conf

    def start(self, timeout=30):
        """initdb (first time), then starts the postmaster and waits until it accepts
        connections. Retries on another port if the chosen one was taken meanwhile."""
        if self._proc and self._proc.alive():
            return self
        if not self._initialised:
            self.initdb()
        if self not in _LIVE:
            _LIVE.append(self)
        last = ""
        for attempt in range(5):
            if self.port is None or attempt > 0:
                self.port = free_port()
            argv = [pg_tool("postgres"), "-D", self.data_dir]
            for k, v in self._conf().items():
                argv += ["-c", "%s=%s" % (k, v)]
            argv = self.prefix + ["--pdeathsig", "SIGQUIT"] + argv if self.prefix else \
                ["setpriv", "--pdeathsig", "SIGQUIT"] + argv
            start_len = self._log_size()
            self._proc = _Process(argv, self.log_path, self.tmp, signal.SIGINT, "postgres")
            if self._wait_ready(timeout):
                return self
            log = self.log()[start_len:]
            self._proc.stop()
            self._proc = None
            last = log
            if "could not bind" not in log and "Address already in use" not in log:
                break
        raise RuntimeError("postgres did not start:\n" + last[-4000:])

    def _log_size(self):
        try:
            return len(self.log())
        except OSError:
            return 0

    def _wait_ready(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self._proc.alive():
                return False
            try:
                with self.connect_admin(connect_timeout=2) as c:
                    c.execute("SELECT 1")
                return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        return False

    def stop(self, remove=True):
        """Fast shutdown (SIGINT), immediate (SIGQUIT/SIGKILL) after a deadline, then kills any
        process left in the server's process group. With remove, deletes the temporary directory.
        Safe to call twice."""
        if self._proc:
            self._proc.stop()
            self._proc = None
        if remove and self.tmp:
            self._final_log = self.log()
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
            self._initialised = False
        if remove and self in _LIVE:
            _LIVE.remove(self)

    def pids(self):
        """The postmaster's pid and its children's (empty when stopped)."""
        if not self._proc:
            return []
        return [self._proc.pid] + sorted(p for p, _ in _family(self._proc.pid))

    def restart(self):
        """Stops (keeping the cluster) and starts again on the same port when possible."""
        if self._proc:
            self._proc.stop()
            self._proc = None
        return self.start()

    # -- connecting

    def dsn(self, user=None, password=None, dbname="postgres", uri=False, **extra):
        """A libpq connection string for TCP on 127.0.0.1 (key=value, or a URI with uri=True).
        Defaults to the superuser with its password."""
        if user is None:
            user, password = self.superuser, self.superuser_password if password is None else password
        return make_dsn(self.host, self.port, user, password, dbname, uri=uri, **extra)

    def socket_dsn(self, user=None, dbname="postgres"):
        """key=value string for the unix socket (trust: no password)."""
        return make_dsn(self.socket_dir, self.port, user or self.superuser, None, dbname)

    def connect(self, user=None, password=None, dbname="postgres", autocommit=True, **kw):
        """A psycopg connection over TCP with a password (SCRAM). The caller closes it."""
        return psycopg.connect(self.dsn(user, password, dbname), autocommit=autocommit, **kw)

    def connect_admin(self, db="postgres", user=None, **kw):
        """A psycopg connection as the superuser (or user) over the unix socket, autocommit."""
        return psycopg.connect(self.socket_dsn(user, db), autocommit=True, **kw)

    def client_env(self, user=None, password=None, dbname="postgres"):
        """os.environ plus PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE for psql and pgbench."""
        if user is None:
            user, password = self.superuser, self.superuser_password
        e = dict(os.environ)
        e.update({"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": user, "PGDATABASE": dbname})
        if password is not None:
            e["PGPASSWORD"] = password
        else:
            e.pop("PGPASSWORD", None)
        return e

    # -- administration

    def sql(self, statement, params=None, db="postgres", user=None):
        """Runs one statement as the superuser (or user) over the unix socket, autocommit.
        Returns the rows (a list of tuples) when it returns rows, else None. Raises psycopg
        errors as they are."""
        with self.connect_admin(db=db, user=user) as c:
            cur = c.execute(statement, params)
            return cur.fetchall() if cur.description is not None else None

    def create_role(self, name, password=None, login=True, superuser=False):
        """CREATE ROLE with a SCRAM-hashed password (hashed by the server)."""
        q = pgsql.SQL("CREATE ROLE {} {} {}").format(
            pgsql.Identifier(name), pgsql.SQL("LOGIN" if login else "NOLOGIN"),
            pgsql.SQL("SUPERUSER" if superuser else "NOSUPERUSER"))
        if password is not None:
            q = q + pgsql.SQL(" PASSWORD {}").format(pgsql.Literal(password))
        self.sql(q)

    def create_db(self, name, owner=None):
        """CREATE DATABASE name [OWNER owner]."""
        q = pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name))
        if owner:
            q = q + pgsql.SQL(" OWNER {}").format(pgsql.Identifier(owner))
        self.sql(q)

    def kill_backends(self, dbname, user=None):
        """pg_terminate_backend on every other backend connected to dbname (and, if given,
        logged in as user). Returns how many were signalled."""
        q = ("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
        params = [dbname]
        if user is not None:
            q += " AND usename = %s"
            params.append(user)
        return self.sql(q, params)[0][0]

    def backends(self, dbname=None):
        """[(pid, usename, datname, state, query)] of client backends other than this query's."""
        q = ("SELECT pid, usename, datname, state, query FROM pg_stat_activity "
             "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
        if dbname is not None:
            return self.sql(q + " AND datname = %s", [dbname])
        return self.sql(q)

    def scram_secret(self, role):
        """The stored SCRAM verifier of a role (for a PgBouncer auth_file)."""
        rows = self.sql("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [role])
        return rows[0][0] if rows else None

    def log(self):
        """The postmaster's log so far (stderr of the server and its backends); after stop(),
        the log as it was when the directory was removed."""
        if not self.tmp:
            return self._final_log
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""


# ---------------------------------------------------------------- PgBouncer

class PgBouncer:
    """PgBouncer in front of a Postgres: transaction pooling, TCP on 127.0.0.1 only (unix socket
    off), auth through an auth_file. users maps role -> password; with auth="plain" the file holds
    the passwords, with auth="scram" it holds the SCRAM verifiers read from pg_authid (PgBouncer
    then needs the client to log in with SCRAM to reach the server). Clients use the same names
    and passwords as on the server; every database is forwarded."""

    def __init__(self, pg, users, pool_size=8, pool_mode="transaction", max_client_conn=200,
                 auth="plain", settings=None):
        self.pg = pg
        self.users = dict(users)
        self.pool_size = pool_size
        self.pool_mode = pool_mode
        self.max_client_conn = max_client_conn
        self.auth = auth
        self.settings = dict(settings or {})
        self.host = "127.0.0.1"
        self.port = None
        self.uid, self.gid, self.prefix = _run_as()
        self.tmp = None
        self.log_path = None
        self._proc = None
        self._final_log = ""

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def pid(self):
        return self._proc.pid if self._proc else None

    def _auth_lines(self):
        def q(s):
            return '"%s"' % str(s).replace('"', '""')
        lines = []
        for user, password in self.users.items():
            secret = password if self.auth == "plain" else self.pg.scram_secret(user)
            if secret is None:
                raise RuntimeError("no SCRAM secret stored for role %r" % user)
            lines.append("%s %s\n" % (q(user), q(secret)))
        return "".join(lines)

    def _write_config(self):
        ini = os.path.join(self.tmp, "pgbouncer.ini")
        auth_file = os.path.join(self.tmp, "userlist.txt")
        with open(auth_file, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(self._auth_lines())
        conf = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "auth_type": "scram-sha-256",
            "auth_file": auth_file,
            "pool_mode": self.pool_mode,
            "default_pool_size": str(self.pool_size),
            "min_pool_size": "0",
            "reserve_pool_size": "0",
            "max_client_conn": str(self.max_client_conn),
            "max_db_connections": "0",
            "pidfile": os.path.join(self.tmp, "pgbouncer.pid"),
            "logfile": "",
            "log_connections": "0",
            "log_disconnections": "0",
            "ignore_startup_parameters": "extra_float_digits",
            "server_tls_sslmode": "disable",
            "client_tls_sslmode": "disable",
        }
        conf.update({k: str(v) for k, v in self.settings.items()})
        with open(ini, "w") as f:
            f.write("[databases]\n* = host=%s port=%d\n\n[pgbouncer]\n" % (self.pg.host, self.pg.port))
            for k, v in conf.items():
                f.write("%s = %s\n" % (k, v))
        if self.uid != os.getuid():
            for p in (ini, auth_file):
                os.chown(p, self.uid, self.gid)
        return ini

    def start(self, timeout=15):
        """Writes the config and auth_file, starts pgbouncer (foreground, own session), waits until
        its port accepts connections."""
        if self._proc and self._proc.alive():
            return self
        _install_handlers()
        if self.tmp is None:
            self.tmp = _mkdtemp("gh-pgbouncer-", self.uid, self.gid)
            self.log_path = os.path.join(self.tmp, "pgbouncer.log")
        if self not in _LIVE:
            _LIVE.append(self)
        last = ""
        for attempt in range(5):
            self.port = free_port()
            ini = self._write_config()
            argv = self.prefix + ["--pdeathsig", "SIGTERM", PGBOUNCER, ini] if self.prefix else \
                ["setpriv", "--pdeathsig", "SIGTERM", PGBOUNCER, ini]
            self._proc = _Process(argv, self.log_path, self.tmp, signal.SIGTERM, "pgbouncer")
            deadline = time.time() + timeout
            while time.time() < deadline and self._proc.alive():
                if _port_open(self.port):
                    return self
                time.sleep(0.05)
            self._proc.stop()
            self._proc = None
            last = self.log()
            if "Address already in use" not in last:
                break
        raise RuntimeError("pgbouncer did not start:\n" + last[-4000:])

    def stop(self, remove=True):
        """SIGTERM (immediate shutdown), SIGKILL after a deadline, then the process group."""
        if self._proc:
            self._proc.stop(timeout=10)
            self._proc = None
        if remove and self.tmp:
            self._final_log = self.log()
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        if remove and self in _LIVE:
            _LIVE.remove(self)

    def pids(self):
        """PgBouncer's pid (empty when stopped)."""
        return [self._proc.pid] if self._proc else []

    def dsn(self, user, password, dbname, uri=False, **extra):
        """A libpq connection string for PgBouncer's TCP port."""
        return make_dsn(self.host, self.port, user, password, dbname, uri=uri, **extra)

    def connect(self, user, password, dbname, autocommit=True, **kw):
        """A psycopg connection through PgBouncer. prepare_threshold=None by default: transaction
        pooling in PgBouncer 1.18 cannot keep named prepared statements."""
        kw.setdefault("prepare_threshold", None)
        return psycopg.connect(self.dsn(user, password, dbname), autocommit=autocommit, **kw)

    def client_env(self, user, password, dbname):
        e = dict(os.environ)
        e.update({"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": user, "PGDATABASE": dbname,
                  "PGPASSWORD": password})
        return e

    def log(self):
        """PgBouncer's log so far (after stop(), as it was at the end)."""
        if not self.tmp:
            return self._final_log
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""
