"""`gatehouse run` escape battery: real Node and Python programs inside the sandbox try every way
out that the issue lists, and each check fails if one gets through. The programs are
tests/e2e/escape/attack.py and attack.js (one JSON object of outcomes per attack); the Node side
reaches system calls through a native addon (escape/addon.c) the way a malicious npm package
would. Outcomes are checked inside (the exact errno or status) and outside (the host file that
was not written, the host process still alive, the host listener that saw no connection, the
audit records, no process of the run left, no secret in any output).

Runs as root (CI does): the sandbox then runs the child as host uid 65534, so the app directory
and everything the child must read are made readable by "other" (as in test_run.py)."""
import base64
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

NODE = shutil.which("node") or "/usr/bin/node"
PY = "/usr/bin/python3"
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "escape")
NONCE = "ghesc" + secrets.token_hex(6)  # in the command line of every process of every run

# The default test policy plus a second app (billing) and a resource only engineers may use.
POLICY = (lib.DEFAULT_POLICY
          .replace("apps:\n  - name: invoices\n", "apps:\n  - name: invoices\n  - name: billing\n")
          .replace("resources:\n", "resources:\n  - name: ledger\n    kind: sqlite\n    environments:\n"
                                   "      staging: { path: ledger-staging.db }\n")
          + "  - { resource: ledger, environment: staging, group: engineers, access: use }\n")


class Counter:
    """Host-side listeners that count what reaches them: TCP on every address (v4 and v6),
    UDP on every v4 address, and an abstract AF_UNIX socket."""

    def __init__(self):
        self.tcp = self.udp = self.unix = 0
        self.stop = False
        try:
            self.ts = socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)
        except OSError:
            self.ts = socket.create_server(("0.0.0.0", 0))
        self.port = self.ts.getsockname()[1]
        self.us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.us.bind(("0.0.0.0", 0))
        self.uport = self.us.getsockname()[1]
        self.abstract = NONCE + "-abstract"
        self.xs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.xs.bind("\0" + self.abstract)
        self.xs.listen(8)
        for s in (self.ts, self.us, self.xs):
            s.settimeout(0.2)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        while not self.stop:
            try:
                if s is self.us:
                    s.recvfrom(2048)
                    self.udp += 1
                    continue
                c, _ = s.accept()
                c.close()
                if s is self.ts:
                    self.tcp += 1
                else:
                    self.unix += 1
            except OSError:
                continue

    def close(self):
        self.stop = True
        for s in (self.ts, self.us, self.xs):
            s.close()


class Origin(http.server.BaseHTTPRequestHandler):
    """A local test origin; records the paths it served."""
    body = b"hello from the allowed origin"

    def do_GET(self):
        self.server.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_POST = do_GET

    def log_message(self, *a):
        pass


def origin_server(host):
    s = http.server.ThreadingHTTPServer((host, 0), Origin)
    s.seen = []
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s


def host_ip():
    """This machine's outgoing address (the sandbox's 127.0.0.1 is its own)."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the address
        return u.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        u.close()


def survivors(tag):
    """Processes whose command line holds tag, from `ps` (pid, uid and command)."""
    out = subprocess.run(["ps", "-eo", "pid=,uid=,args="], capture_output=True, text=True).stdout
    me = str(os.getpid())
    return [line.strip() for line in out.splitlines() if tag in line and line.split()[0] != me]


def outcomes(p):
    """The attack's JSON object (its last stdout line), or {}. GH_ESCAPE_SHOW=1 prints it."""
    for line in reversed(p.stdout.decode(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                r = json.loads(line)
            except ValueError:
                break
            if os.environ.get("GH_ESCAPE_SHOW"):
                print("  outcomes: " + json.dumps(r, sort_keys=True)[:6000])
            return r
    return {}


def show(p):
    return "exit %s; stdout %s; stderr %s" % (p.returncode, p.stdout[-1500:].decode(errors="replace"),
                                              p.stderr[-800:].decode(errors="replace"))


def where(res, want):
    """The attempts whose outcome is not what `want` says: attempt -> an outcome or a tuple of
    accepted ones; a string ending in * accepts any outcome that starts with the rest."""
    bad = {}
    for k, ok in want.items():
        got = res.get(k, "<missing>")
        if not isinstance(ok, tuple):
            ok = (ok,)
        if not any(got == o or (isinstance(o, str) and o.endswith("*") and isinstance(got, str)
                                and got.startswith(o[:-1])) for o in ok):
            bad[k] = got
    return bad


def build(t, appdir):
    """Copies the attack programs into the app directory and builds the native addon and the
    setuid helpers there. Returns whether everything the attacks need is in place."""
    for f in ("attack.py", "attack.js"):
        shutil.copy(os.path.join(HERE, f), os.path.join(appdir, f))
        os.chmod(os.path.join(appdir, f), 0o644)
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    inc = "/usr/include/node"
    r = subprocess.run([cc or "cc", "-shared", "-fPIC", "-O1", "-I" + inc, "-o", os.path.join(appdir, "sys.node"),
                        os.path.join(HERE, "addon.c")], capture_output=True, text=True)
    ok = t.check(r.returncode == 0, "the native addon (what a malicious npm package ships) builds against %s" % inc,
                 r.stderr[-500:])
    helper = os.path.join(appdir, "suid-helper")
    r = subprocess.run([cc or "cc", "-O1", "-o", helper, os.path.join(HERE, "helper.c")], capture_output=True,
                       text=True)
    if r.returncode == 0:
        os.chown(helper, 0, 0)
        os.chmod(helper, 0o4755)
        shutil.copy(helper, os.path.join(appdir, "caps-helper"))
        os.chmod(os.path.join(appdir, "caps-helper"), 0o755)
        setcap = shutil.which("setcap") or "/usr/sbin/setcap"
        c = subprocess.run([setcap, "cap_setuid,cap_sys_admin,cap_dac_override+ep", os.path.join(appdir, "caps-helper")],
                           capture_output=True, text=True) if os.path.exists(setcap) else None
        if c is None or c.returncode != 0:
            print("note: no file-capabilities copy (setcap: %s)" % (c.stderr.strip() if c else "absent"))
            os.unlink(os.path.join(appdir, "caps-helper"))
    shutil.copy("/usr/bin/id", os.path.join(appdir, "suid-id"))
    os.chown(os.path.join(appdir, "suid-id"), 0, 0)
    os.chmod(os.path.join(appdir, "suid-id"), 0o4755)
    st = os.stat(helper) if r.returncode == 0 else None
    ok &= t.check(st is not None and st.st_uid == 0 and st.st_mode & 0o4000,
                  "a setuid-root helper is in the app directory (owner root, mode 4755)", r.stderr[-500:])
    return ok


def main(t):
    if os.geteuid() != 0:  # the setuid-root helpers need root to be made, and CI runs as root
        t.check(False, "the escape battery runs as root (it installs setuid-root binaries in the app directory)")
        return
    g = lib.Gatehouse(policy=POLICY, dbs=("crm-staging.db", "crm-prod.db", "ledger-staging.db"))
    victim = None
    counter = None
    servers = []
    outputs = []  # every byte any run printed, for the secret checks at the end
    try:
        g.start()
        appdir = os.path.join(g.tmp, "app")
        os.makedirs(appdir)
        os.chmod(g.tmp, 0o755)  # as root the sandbox runs as nobody: the app must be readable
        os.chmod(appdir, 0o755)
        build(t, appdir)
        # links from the app directory to the gateway's secrets, by absolute and relative path
        key_path = os.path.join(g.data, "master.key")
        store_path = os.path.join(g.data, "gatehouse.db")
        os.symlink(key_path, os.path.join(appdir, "key-abs"))
        os.symlink("../data/master.key", os.path.join(appdir, "key-rel"))
        os.symlink(store_path, os.path.join(appdir, "store-abs"))
        with open(key_path, "rb") as f:
            master = f.read()
        with open(store_path, "rb") as f:
            store = f.read()
        other_token, _ = g.token("bob", "staging", app="billing")  # another app's token: never to be seen
        home = os.path.expanduser("~")
        hip = host_ip()
        counter = Counter()
        allowed_srv, denied_srv = origin_server(hip), origin_server(hip)
        servers = [allowed_srv, denied_srv]
        allowed = "http://%s:%d" % (hip, allowed_srv.server_address[1])
        denied = "http://%s:%d" % (hip, denied_srv.server_address[1])
        # a host process the sandbox must neither see nor kill
        vtag = "victim" + secrets.token_hex(6)
        victim = subprocess.Popen([PY, "-c", "import time; time.sleep(300)", vtag])
        # controls: the host sees what the sandbox must not reach (else "nothing arrived" proves nothing)
        c = socket.create_connection(("127.0.0.1", counter.port))
        c.close()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(b"control", ("127.0.0.1", counter.uport))
        u.close()
        x = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        x.connect("\0" + counter.abstract)
        x.close()
        deadline = time.monotonic() + 3
        while (counter.tcp, counter.udp, counter.unix) != (1, 1, 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        t.check((counter.tcp, counter.udp, counter.unix) == (1, 1, 1) and len(survivors(vtag)) == 1,
                "controls: from the host, the listeners count a connection each and ps shows the victim",
                ((counter.tcp, counter.udp, counter.unix), survivors(vtag)))
        counter.tcp = counter.udp = counter.unix = 0

        def run(cmd, tag, extra=(), env=None, timeout=60):
            """One `gatehouse run` of cmd (the run's nonce appended as its last argument)."""
            args = [lib.BIN, "run", "--data", g.data, "--app", "invoices", "--env", "staging", "--user", "alice",
                    "--dir", appdir, "--gateway", "127.0.0.1:%d" % g.port] + list(extra) + ["--"] + list(cmd) + \
                   ["%s-%s" % (NONCE, tag)]
            e = dict(os.environ)
            e.update(env or {})
            start = time.monotonic()
            p = subprocess.run(args, capture_output=True, timeout=timeout, env=e)
            p.secs = time.monotonic() - start
            outputs.append(p.stdout + p.stderr)
            return p

        def py(attack, *args, **kw):
            return run([PY, "/app/attack.py", attack] + [str(a) for a in args], "py-" + attack, **kw)

        def node(attack, *args, **kw):
            return run([NODE, "/app/attack.js", attack] + [str(a) for a in args], "node-" + attack, **kw)

        both = (("Python", py), ("Node", node))
        quick = ["--timeout", "20s"]  # the ordinary attacks end by themselves; this only bounds a hang

        # ---- the gateway's master.key and store; the operator's environment ----
        for lang, fn in both:
            p = fn("secrets", g.data, home, extra=quick, env={"GATEHOUSE_MASTER_KEY": master.hex()})
            r = outcomes(p)
            bad = where(r, {"master.key": "ENOENT", "gatehouse.db": "ENOENT", "gatehouse.db-wal": "ENOENT",
                            "audit/audit.log": "ENOENT", "datadir": "ENOENT", "link-abs": "ENOENT",
                            "link-rel": "ENOENT", "link-store": "ENOENT", "proc1-root": "EACCES",
                            "proc1-cwd": "EACCES", "proc1-fd": "EACCES", "proc1-fd6": "EACCES",
                            "environ-1": "EACCES", "home": "ENOENT"})
            t.check(p.returncode == 0 and r and not bad,
                    "%s: master.key, the store, its WAL, the audit log and the data dir by host path, through "
                    "symlinks in /app and through /proc/1/root: ENOENT/EACCES" % lang, bad or show(p))
            fds = r.get("fds", {})
            leaked = {k: v for k, v in fds.items() if not (v.startswith("OK:pipe:") or v.startswith("OK:anon_inode:")
                                                          or v in ("OK:/dev/null", "ENOENT")
                                                          or v.startswith("OK:/proc/"))}
            t.check(fds and not leaked, "%s: no inherited descriptor leads outside (only pipes, /dev/null, "
                    "anon inodes): %s" % (lang, sorted(set(v.split("[")[0] for v in fds.values()))), leaked or fds)
            t.check(r.get("found") == [], "%s: no master.key or gatehouse.db anywhere in the sandbox's tree" % lang,
                    r.get("found"))
            env_keys = set(r.get("environ", {}))
            t.check(r and "GATEHOUSE_MASTER_KEY" not in env_keys and master.hex() not in r.get("environ-self", "")
                    and env_keys <= {"GATEHOUSE_TOKEN", "GATEHOUSE_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                     "https_proxy", "NO_PROXY", "no_proxy", "PATH", "HOME", "LANG"},
                    "%s: GATEHOUSE_MASTER_KEY in the operator's environment does not reach the child "
                    "(environ holds only the token, the URLs and PATH/HOME/LANG)" % lang, sorted(env_keys))
        p = py("secrets", g.data, home, extra=quick + ["--env-pass", "GATEHOUSE_MASTER_KEY"],
               env={"GATEHOUSE_MASTER_KEY": master.hex()})
        outputs.pop()  # judged here alone, not again by the checks over every output at the end
        r = outcomes(p)
        t.check(master.hex() not in (p.stdout + p.stderr).decode(errors="replace"),
                "--env-pass GATEHOUSE_MASTER_KEY: the master key still does not reach the child (refused, or "
                "not passed)", "exit %d; the child's environ holds GATEHOUSE_MASTER_KEY: %s, equal to the master key: %s"
                % (p.returncode, "GATEHOUSE_MASTER_KEY" in r.get("environ", {}),
                   r.get("environ", {}).get("GATEHOUSE_MASTER_KEY") == master.hex()))

        # ---- /etc/shadow and the caller's home ----
        for lang, fn in both:
            p = fn("shadow", home, extra=quick)
            r = outcomes(p)
            want = {"/etc/shadow": "ENOENT", "/etc/gshadow": "ENOENT", "/etc/sudoers": "ENOENT",
                    "/root/.bash_history": "ENOENT", home + "/.bashrc": "ENOENT",
                    "ls /root": "ENOENT", "ls " + home: "ENOENT", "ls /home": "ENOENT", "ls /var": "ENOENT",
                    "ls /run": "ENOENT", "ls /work": "ENOENT", "ls /sys": "ENOENT"}
            if lang == "Python":
                want.update({"/var/lib/dpkg/status": "ENOENT", "ls /boot": "ENOENT", "ls /mnt": "ENOENT",
                             "getpwnam root": "KeyError*"})
            bad = where(r, want)
            t.check(p.returncode == 0 and r and not bad,
                    "%s: /etc/shadow, /etc/gshadow, sudoers, /root, /home and the caller's home (%s): ENOENT "
                    "(not in the sandbox at all)" % (lang, home), bad or show(p))
            t.check(r.get("passwd") == "OK:sandbox:x:1000:1000:sandbox:/tmp:/usr/sbin/nologin\n"
                    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                    "%s: /etc/passwd is the sandbox's own two lines, not the host's" % lang, r.get("passwd"))
        host_secret_lines = []
        for f in ("/etc/shadow", "/etc/gshadow"):
            try:
                with open(f, "rb") as fh:
                    host_secret_lines += [ln for ln in fh.read().splitlines() if len(ln) > 8]
            except OSError:
                pass

        # ---- writing outside /tmp ----
        for lang, fn in both:
            p = fn("write", g.data, extra=quick)
            r = outcomes(p)
            tag = "%s-%s-write" % (NONCE, "py" if lang == "Python" else "node")
            dirs = ["/", "/etc", "/usr", "/usr/lib", "/app", "/dev", "/proc", g.data, "/root"]
            if lang == "Python":
                dirs += ["/bin", "/var/tmp", "/dev/shm", "/run", "/home", "/sys/fs/cgroup"]
            want = {}
            for d in dirs:
                want["write " + d] = {"/": "EROFS", "/etc": "EROFS", "/usr": "EROFS", "/usr/lib": "EROFS",
                                      "/bin": "EROFS", "/app": "EROFS", "/dev": "EROFS",
                                      "/proc": "ENOENT"}.get(d, "ENOENT")
                if lang == "Python":
                    want["mkdir " + d] = {"/proc": "ENOENT"}.get(d, want["write " + d])
            # sysrq-trigger: absent from a /proc mounted in a user namespace, else root's only
            want.update({"write /tmp": "OK", "read back /tmp": "OK:escaped", "chmod /app": "EROFS",
                         "open-w /proc/sysrq-trigger": ("ENOENT", "EACCES"),
                         "open-w /proc/sys/kernel/core_pattern": "EACCES", "write /proc/self/uid_map": "EPERM"})
            if lang == "Python":
                # truncate checks write permission (the file is root's) before the read-only mount
                want.update({"symlink /app": "EROFS", "rename /app": "EROFS", "truncate /app": ("EACCES", "EROFS"),
                             "utime /usr/bin/env": "EROFS", "open-w /proc/sys/vm/drop_caches": "EACCES",
                             "open-w /proc/sys/kernel/hostname": "EACCES", "open-w /proc/1/oom_score_adj": "EACCES",
                             "write /proc/self/gid_map": "EPERM", "write /proc/self/setgroups": ("EPERM", "EACCES"),
                             "open-w /dev/null": "OK", "mkdir /tmp": "OK"})
            bad = where(r, want)
            t.check(p.returncode == 0 and r and not bad,
                    "%s: writes to /, /etc, /usr, /app, /dev, the data dir, /root...: EROFS/ENOENT; "
                    "/proc/sysrq-trigger and core_pattern not writable; a new uid_map: EPERM; /tmp: written and "
                    "read back" % lang,
                    bad or show(p))
            landed = [os.path.join(d, tag) for d in ["/", "/etc", "/usr", "/usr/lib", "/bin", appdir, "/dev", g.data,
                                                     "/root", "/tmp", "/var/tmp", "/dev/shm", "/run", "/home"]
                      if os.path.lexists(os.path.join(d, tag)) or os.path.lexists(os.path.join(d, tag + ".d"))]
            t.check(not landed, "%s: no sentinel file the attack wrote exists on the host (not even in the host's /tmp)"
                    % lang, landed)

        # ---- host processes: see them, kill them ----
        for lang, fn in both:
            p = fn("procs", victim.pid, g.proc.pid, extra=quick)
            r = outcomes(p)
            pids = r.get("pids", {})
            seen = [v for v in pids.values() if vtag in v or "gatehouse serve" in v or " serve --data" in v]
            t.check(p.returncode == 0 and pids and len(pids) <= 3 and not seen,
                    "%s: /proc shows only the sandbox's own processes (%d), not the host victim or the gateway"
                    % (lang, len(pids)), seen or pids or show(p))
            shown = [v for v in pids.values() if g.data in v or appdir in v or ("%d" % g.port) in v.split()]
            t.check(not shown, "%s: no process inside shows the caller's command line (data dir, app dir, gateway port)"
                    % lang, shown or pids)
            want = {"stat victim": "ENOENT", "kill victim": "ESRCH", "kill gateway": "ESRCH", "kill -1": "ESRCH",
                    "kill init": "OK", "alive after": True}
            if lang == "Python":
                want.update({"stat gateway": "ENOENT", "killpg victim": "ESRCH", "pidfd victim": "ESRCH",
                             "libc kill victim": "ESRCH"})
            else:
                want["sys kill victim"] = "ESRCH"
            bad = where(r, want)
            t.check(p.returncode == 0 and r and not bad,
                    "%s: kill/killpg/pidfd_open of a host pid: ESRCH; kill(-1): ESRCH; kill -9 of init ignored "
                    "and the attacker still runs" % lang, bad or show(p))
            t.check(victim.poll() is None and g.proc.poll() is None,
                    "%s: after the kill attempts the host victim (pid %d) and the gateway are alive"
                    % (lang, victim.pid), (victim.poll(), g.proc.poll()))

        # ---- raw sockets ----
        for lang, fn in both:
            p = fn("raw", extra=quick)
            r = outcomes(p)
            t.check(p.returncode == 0 and len(r) >= 8 and all(v == "EPERM" for v in r.values()),
                    "%s: raw IPv4/IPv6, packet, SOCK_PACKET and netlink sockets: all EPERM (%d kinds)"
                    % (lang, len(r)), r or show(p))

        # ---- host ports on 127.0.0.1 (and the host's own address, v6 loopback, abstract unix) ----
        for lang, fn in both:
            # localhost:PORT is even named an allowed origin: a name that resolves to a loopback address
            # (what DNS rebinding would give) must still be refused
            p = fn("hostport", counter.port, counter.uport, counter.abstract, hip, g.port,
                   extra=quick + ["--allow-origin", "http://localhost:%d" % counter.port,
                                  "--allow-origin", "https://localhost:%d" % counter.port])
            r = outcomes(p)
            want = {"tcp 127.0.0.1": "ECONNREFUSED", "tcp localhost": "ECONNREFUSED", "tcp host ip": "ENETUNREACH",
                    "tcp ::1": ("ECONNREFUSED", "ENETUNREACH", "EADDRNOTAVAIL", "EAFNOSUPPORT"),
                    "tcp gateway port": "ECONNREFUSED", "udp 127.0.0.1": "OK", "udp host ip": "ENETUNREACH",
                    "unix abstract": "ECONNREFUSED"}
            for k in r:
                if k.startswith("proxy"):
                    want[k] = "HTTP 403*"
            bad = where(r, want)
            t.check(p.returncode == 0 and r and not bad,
                    "%s: a host port: direct 127.0.0.1/localhost/::1 refused by the sandbox's own loopback, the "
                    "host's address unreachable, abstract unix refused, every proxy form (localhost even when "
                    "allowed by name, [::1], [::ffff:127.0.0.1], 2130706433, 0x7f.1, 127.1, 0, CONNECT) 403"
                    % lang, bad or show(p))
        time.sleep(0.3)
        t.check(counter.tcp == 0 and counter.udp == 0 and counter.unix == 0,
                "the host's listeners (TCP port %d on every address, UDP %d, abstract unix) received nothing"
                % (counter.port, counter.uport), (counter.tcp, counter.udp, counter.unix))
        recs = [x for x in g.audit_lines() if x["event"] == "sandbox.egress"]
        denied_dests = {x["detail"]["destination"] for x in recs if x["decision"] == "deny"}
        want_denied = ["127.0.0.1:%d" % counter.port, "localhost:%d" % counter.port, "%s:%d" % (hip, counter.port)]
        missing = [d for d in want_denied if not any(d in x for x in denied_dests)]
        t.check(not missing, "the refused host-port destinations are audited sandbox.egress decision deny",
                (missing, sorted(denied_dests)))

        # ---- non-allowed origins (by name and by address) and the allowed one ----
        for lang, fn in both:
            p = fn("origins", allowed, denied, extra=["--allow-origin", allowed] + quick)
            r = outcomes(p)
            if lang == "Python":
                want = {"resolve example.com": "gaierror*", "resolve gatehouse.invalid": "gaierror*",
                        "udp dns 8.8.8.8": "ENETUNREACH", "tcp 1.1.1.1:443": "ENETUNREACH",
                        "tcp denied direct": "ENETUNREACH", "tcp allowed direct": "ENETUNREACH",
                        "proxy GET denied": "HTTP 403*", "proxy CONNECT denied": "HTTP 403*",
                        "proxy GET example.com": "HTTP 403*", "proxy CONNECT example.com:443": "HTTP 403*",
                        "proxy GET allowed host, denied port": "HTTP 403*", "proxy ftp": "HTTP 403*",
                        "proxy userinfo": "HTTP 403*",
                        "proxy GET allowed, Host: denied": "HTTP 200 " + Origin.body.decode(),
                        "urllib allowed": "OK:" + Origin.body.decode(), "urllib denied": "HTTP 403"}
            else:
                want = {"lookup example.com": ("ENOTFOUND", "EAI_AGAIN"),
                        "resolve4 example.com": ("ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEOUT"),
                        "udp dns 8.8.8.8": "ENETUNREACH", "tcp 1.1.1.1:443": "ENETUNREACH",
                        "tcp denied direct": "ENETUNREACH", "fetch denied direct": "ENETUNREACH",
                        "proxy GET denied": "HTTP 403*", "proxy CONNECT denied": "HTTP 403*",
                        "proxy GET example.com": "HTTP 403*", "proxy CONNECT example.com:443": "HTTP 403*",
                        "proxy GET allowed": "HTTP 200 " + Origin.body.decode(),
                        "proxy GET allowed, Host: denied": "HTTP 200 " + Origin.body.decode()}
            bad = where(r, want)
            t.check(p.returncode == 0 and r and not bad,
                    "%s: a non-allowed origin: names do not resolve inside, direct routes unreachable, the proxy "
                    "answers 403 by name, by address, by CONNECT, on another port; the allowed origin answers 200"
                    % lang, bad or show(p))
        t.check(denied_srv.seen == [], "the non-allowed origin (a local server) received no request", denied_srv.seen)
        t.check(sorted(allowed_srv.seen) == ["/from-node", "/hello", "/hi", "/hi"],
                "the allowed origin (a local server) received exactly the four requests made through the proxy",
                allowed_srv.seen)
        recs = [x for x in g.audit_lines() if x["event"] == "sandbox.egress"]
        dec = {(x["detail"]["destination"], x["decision"]) for x in recs}
        dport = denied_srv.server_address[1]
        t.check(any("%s:%d" % (hip, dport) in d and v == "deny" for d, v in dec)
                and any("example.com" in d and v == "deny" for d, v in dec)
                and any(d.startswith(allowed) and v == "allow" for d, v in dec),
                "audit: sandbox.egress deny for the non-allowed origin and example.com, allow for the allowed one",
                sorted(dec))

        # ---- ptrace, mount, unshare and the rest of the filtered system calls ----
        for lang, fn in both:
            p = fn("syscalls", extra=quick)
            r = outcomes(p)
            want = {"ptrace TRACEME": "EPERM", "ptrace ATTACH init": "EPERM", "ptrace ATTACH sibling": "EPERM",
                    "ptrace SEIZE sibling": "EPERM", "process_vm_readv sibling": "EPERM",
                    "open /proc/1/mem": "EACCES", "mount tmpfs": "EPERM", "mount bind /app": "EPERM",
                    "mount remount / rw": "EPERM", "umount2 /app": "EPERM", "chroot /tmp": "EPERM",
                    "/app still read-only": "EROFS", "unshare NEWUSER": "EPERM", "unshare NEWNS": "EPERM",
                    "unshare NEWNET": "EPERM", "unshare NEWPID": "EPERM", "unshare NEWCGROUP": "EPERM",
                    "setns": "EPERM", "uid after": 1000}
            if lang == "Python":
                want.pop("setns")
                want.update({"open /proc/1/environ": "EACCES", "mount proc": "EPERM", "umount2 /proc": "EPERM",
                             "unshare NEWUTS": "EPERM", "unshare NEWIPC": "EPERM", "unshare NEWUSER|NEWNS": "EPERM",
                             "setns self net": "OK:EPERM", "open /proc/1/ns/mnt": "EACCES"})
            else:
                want.update({"pivot_root": "EPERM", "fsopen tmpfs": "EPERM", "open_tree /app": "EPERM",
                             "clone NEWUSER": "EPERM", "clone NEWNS": "EPERM", "clone NEWNET": "EPERM",
                             "clone NEWPID": "EPERM", "clone NEWCGROUP": "EPERM", "clone3": "ENOSYS",
                             "bpf": "EPERM", "keyctl": "EPERM", "perf_event_open": "EPERM", "init_module": "EPERM"})
            bad = where(r, want)
            t.check(p.returncode == 0 and r and not bad,
                    "%s: ptrace (TRACEME, ATTACH/SEIZE a sibling and init), process_vm_readv, mount/umount/"
                    "remount/chroot%s, unshare of every namespace%s: EPERM; /app still read-only"
                    % (lang, "" if lang == "Python" else "/pivot_root/fsopen/open_tree",
                       "" if lang == "Python" else ", clone with namespace flags, bpf/keyctl/perf/init_module"),
                    bad or show(p))
            u = r.get("/usr/bin/unshare -Ur", "")
            t.check(u.startswith("exit ") and not u.startswith("exit 0") and " 0 " not in u + " ",
                    "%s: the unshare binary (-Ur) fails and never reports uid 0" % lang, u)
            if lang == "Python":
                m = r.get("/usr/bin/mount", "")
                t.check(m.startswith("exit ") and not m.startswith("exit 0"), "Python: the mount binary fails", m)

        # ---- setuid binaries ----
        held = []

        def watch(tag, stop):
            """From outside: the real ids of the setuid helper while it is held running."""
            while not stop.is_set():
                for pid in filter(str.isdigit, os.listdir("/proc")):
                    try:
                        with open("/proc/%s/cmdline" % pid, "rb") as f:
                            argv = f.read().split(b"\0")
                        if not (argv[0].endswith(b"suid-helper") and tag.encode() in argv):
                            continue
                        with open("/proc/%s/status" % pid) as f:
                            held.append([ln.split()[1:] for ln in f if ln.startswith(("Uid:", "Gid:"))])
                    except OSError:
                        continue
                time.sleep(0.05)

        stop = threading.Event()
        w = threading.Thread(target=watch, args=("%s-py-setuid" % NONCE, stop), daemon=True)
        w.start()
        pr = py("setuid", extra=quick)
        stop.set()
        w.join()
        for lang, p in (("Python", pr), ("Node", node("setuid", extra=quick))):
            r = outcomes(p)
            # uid 0 has no mapping in the sandbox's user namespace: EINVAL where the kernel checks that first
            want = {"setuid 0": ("EPERM", "EINVAL"), "setgid 0": ("EPERM", "EINVAL"), "seteuid 0": ("EPERM", "EINVAL"),
                    "uid after": [1000, 1000, 1000, 1000]}
            if lang == "Python":
                want["setgroups 0"] = "EPERM"
            else:
                want["sys setresuid 0"] = ("EPERM", "EINVAL")
            bad = where(r, want)
            t.check(p.returncode == 0 and r and not bad,
                    "%s: setuid/setgid/seteuid(0): refused, still uid 1000" % lang, bad or show(p))
            helpers = {k: v for k, v in r.items() if k.startswith("/")}
            gained = {k: v for k, v in helpers.items()
                      if v not in ("absent",) and ("euid=0" in v or "setuid0=OK" in v or "out=0" in v
                                                   or "exit 0 out=0" in v
                                                   or ("CapEff:" in v and "CapEff:\t0000000000000000" not in v))}
            probed = [k for k in ("/app/suid-helper", "/app/suid-id") if helpers.get(k, "absent") != "absent"]
            sh = helpers.get("/app/suid-helper", "")
            t.check(r and not gained and len(probed) == 2 and "ruid=1000 euid=1000 suid=1000" in sh
                    and "setuid0=OK" not in sh and "CapEff:\t0000000000000000" in sh
                    and helpers.get("/app/suid-id", "").startswith("exit 0 out=1000")
                    and not helpers.get("/usr/bin/su", "exit 0").startswith("exit 0")
                    and not helpers.get("/usr/bin/passwd", "exit 0").startswith("exit 0"),
                    "%s: setuid-root binaries (su, passwd, a setuid copy of id and a setuid helper in /app%s) run "
                    "as uid 1000 with no capability; su and passwd fail"
                    % (lang, ", a file-capabilities copy" if "/app/caps-helper" in helpers
                       and helpers["/app/caps-helper"] != "absent" else ""), gained or helpers)
        ids = [x for s in held for x in s]
        t.check(held and all(v != "0" for row in ids for v in row),
                "from outside, the held setuid-root helper's real/effective/saved uid and gid are not 0 on the host "
                "(%s)" % (" ".join(sorted({v for row in ids for v in row})) if held else "never seen"), held)

        # ---- the token for another environment or another app ----
        for lang, fn in both:
            p = fn("token", "ledger", extra=quick)
            r = outcomes(p)
            c = r.get("claims", {})
            t.check(c.get("sub") == "alice" and c.get("env") == "staging" and c.get("app") == "invoices"
                    and c.get("iss") == "gatehouse" and 0 < c.get("exp", 0) - c.get("iat", 0) <= 20 + 60,
                    "%s: the token's claims name alice, app invoices, env staging, for the run's lifetime + 60 s"
                    % lang, c or show(p))
            want = {"own staging": "200 *", "production": "403 wrong_environment", "other resource": "403 *",
                    "forged app": "401 *", "forged env": "401 *", "alg none": "401 *", "read audit": "403 *"}
            if lang == "Python":
                want.update({"forged user": "401 *", "no app": "401 *",
                             "mint token": ("401 *", "403 *", "404 *", "405 *"),
                             "put config": ("401 *", "403 *", "404 *", "405 *")})
            bad = where(r, want)
            t.check(p.returncode == 0 and r and not bad and "Nordlicht" in r.get("own staging", ""),
                    "%s: the token reads its own staging data; production (where alice holds use) 403 "
                    "wrong_environment; the ledger resource 403; claims rewritten to app billing / env production / "
                    "another user, or alg none: 401; admin endpoints refused" % lang, bad or show(p))

        # ---- the run's token dies with the run ----
        p = subprocess.run([lib.BIN, "run", "--data", g.data, "--app", "invoices", "--env", "staging", "--user",
                            "alice", "--gateway", "127.0.0.1:%d" % g.port, "--", "/bin/sh", "-c",
                            'printf %s "$GATEHOUSE_TOKEN"'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        tok = p.stdout.decode(errors="replace").strip()
        st, doc, _ = g.query(tok, "SELECT 1") if tok else (None, None, None)
        t.check(p.returncode == 0 and tok.count(".") == 2 and st == 401,
                "after the run ends its token is refused (401): revoked, not left valid until expiry", (st, doc))

        # ---- limits: fork bomb, memory, CPU, wall clock ----
        lat = []
        host_ok = []
        tag = "%s-py-forkbomb" % NONCE
        args = [lib.BIN, "run", "--data", g.data, "--app", "invoices", "--env", "staging", "--user", "alice",
                "--dir", appdir, "--gateway", "127.0.0.1:%d" % g.port, "--timeout", "3s", "--",
                PY, "/app/attack.py", "forkbomb", tag]
        start = time.monotonic()
        bomb = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.8)
        mid = survivors(tag)
        while bomb.poll() is None:
            t0 = time.monotonic()
            try:
                st, _, _ = g.request("GET", "/healthz")
            except OSError:
                st = None
            lat.append((time.monotonic() - t0, st))
            host_ok.append(subprocess.run(["/bin/true"]).returncode == 0)
            time.sleep(0.1)
        so, se = bomb.communicate()
        secs = time.monotonic() - start
        outputs.append(so + se)
        left = survivors(tag)
        first = {}
        for line in so.decode(errors="replace").splitlines():
            if line.startswith("{"):
                first = json.loads(line)
                break
        t.check(bomb.returncode == 124 and b"timeout after 3 s" in se and secs < 8,
                "Python fork bomb: ended by the wall clock, 124 'timeout after 3 s' in %.1f s" % secs,
                (bomb.returncode, se[-300:]))
        t.check(first.get("error") == "EAGAIN" and 0 < first.get("forked", 0) < 128 and 0 < len(mid) <= 130,
                "Python fork bomb: fork fails with EAGAIN after %s processes; %d of the run's processes seen "
                "on the host at its height" % (first.get("forked"), len(mid)), (first, len(mid)))
        t.check(lat and all(st == 200 and d < 2.0 for d, st in lat) and host_ok and all(host_ok),
                "during the fork bomb the host stays responsive: %d gateway /healthz answers (slowest %.2f s), "
                "host fork+exec works" % (len(lat), max(d for d, _ in lat) if lat else -1), lat)
        t.check(left == [], "after the fork bomb no process of the run remains (ps)", left)

        for lang, fn in both:
            p = fn("mem", extra=["--memory", "64M", "--timeout", "20s"])
            tag = "%s-%s-mem" % (NONCE, "py" if lang == "Python" else "node")
            exits = [x for x in g.audit_lines() if x["event"] == "sandbox.exit"]
            how = exits[-1]["detail"].get("memory_limit") if exits else None
            t.check(p.returncode == 137 and b"out of memory (limit 64 MiB)" in p.stderr and how in ("cgroup v2", "cgroup v1")
                    or (how == "RLIMIT_AS" and p.returncode != 0),
                    "%s: allocating past --memory 64M: %d '%s' (limit by %s)"
                    % (lang, p.returncode, p.stderr.decode(errors="replace").strip().splitlines()[-1:] or "", how),
                    show(p))
            t.check(survivors(tag) == [] and g.request("GET", "/healthz")[0] == 200,
                    "%s: after the memory run nothing of it remains and the gateway answers" % lang, survivors(tag))

        for lang, fn, attack, status, reason in (("Python", py, "cpu", 152, b"cpu time exceeded (cpu limit 1 s)"),
                                                 ("Node", node, "cpu", 152, b"cpu time exceeded (cpu limit 1 s)"),
                                                 ("Python (ignoring SIGXCPU)", py, "cpu-ignore", 137,
                                                  b"SIGKILL (cpu limit 1 s)")):
            p = fn(attack, extra=["--cpu-time", "1s", "--timeout", "20s"])
            tag = "%s-%s-%s" % (NONCE, "node" if lang == "Node" else "py", attack)
            t.check(p.returncode == status and reason in p.stderr and p.secs < 8,
                    "%s: spinning past --cpu-time 1s: %d '%s' in %.1f s" % (lang, p.returncode, reason.decode(), p.secs),
                    show(p))
            t.check(survivors(tag) == [], "%s: after the CPU kill nothing of the run remains" % lang, survivors(tag))

        for lang, fn in both:
            p = fn("wall", extra=["--timeout", "1s"])
            tag = "%s-%s-wall" % (NONCE, "py" if lang == "Python" else "node")
            t.check(p.returncode == 124 and b"timeout after 1 s" in p.stderr and b"daemon" in p.stdout and p.secs < 5,
                    "%s: sleeping past --timeout 1s with a detached daemon that ignores SIGTERM/SIGHUP: 124 in %.1f s"
                    % (lang, p.secs), show(p))
            t.check(survivors(tag) == [], "%s: the daemon did not survive the run (ps)" % lang, survivors(tag))

        # ---- across every run ----
        blob = b"".join(outputs)
        text = blob.decode(errors="replace")
        key_forms = [master, master.hex().encode(), master.hex().upper().encode(), base64.b64encode(master),
                     base64.urlsafe_b64encode(master).rstrip(b"=")]
        chunks = [store[i:i + 64] for i in range(0, len(store) - 64, 64)]
        chunks = [c for c in chunks if len(set(c)) >= 16 and any(b < 9 or b > 126 for b in c)]
        store_hits = [i for i, c in enumerate(chunks) if c in blob or c.hex().encode() in blob]
        t.check(not any(k in blob for k in key_forms), "no run printed the master key (raw, hex or base64) "
                "in %d runs, %d bytes of output" % (len(outputs), len(blob)))
        t.check(chunks and not store_hits and b"SQLite format 3" not in blob and b"53514c69746520666f726d61742033" not in blob,
                "no run printed any of the store's %d binary 64-byte blocks (raw or hex) or its header" % len(chunks),
                store_hits[:5])
        t.check(other_token not in text and other_token.split(".")[2] not in text,
                "the other app's token (bob, billing) never appears in any run's output")
        t.check(not [ln for ln in host_secret_lines if ln in blob],
                "no line of the host's /etc/shadow or /etc/gshadow appears in any output (%d lines checked)"
                % len(host_secret_lines))
        recs = [x for x in g.audit_lines() if x["event"] == "sandbox.egress"]
        wrong = [x["detail"]["destination"] for x in recs if x["decision"] == "allow" and not x["detail"]["gateway"]
                 and not x["detail"]["destination"].startswith(allowed)]
        t.check(recs and not wrong, "every egress the proxy allowed (%d of %d records) was the gateway or the "
                "allowed origin" % (sum(1 for x in recs if x["decision"] == "allow"), len(recs)), wrong)
        left = survivors(NONCE)
        t.check(left == [], "no process of any run remains on the host (ps, %s)" % NONCE, left)
        t.check(victim.poll() is None and g.proc.poll() is None, "the host victim and the gateway are still alive")
        out = g.verify()
        t.check(out.returncode == 0, "audit verify ok", out.stdout + out.stderr)
    finally:
        if victim:
            victim.kill()
            victim.wait()
        if counter:
            counter.close()
        for s in servers:
            s.shutdown()
            s.server_close()
        g.close()


if __name__ == "__main__":
    lib.run_suite("test_run_escape", main)
