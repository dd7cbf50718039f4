"""`gatehouse run` end to end: a real gateway, real Node and Python programs inside the sandbox,
reaching data only through the gateway with their scoped token, an allowed origin through the
proxy, everything else refused and audited, the token useless for another environment, and
the timeout and memory limits. (The isolation battery itself is tests/unit/test_sandbox.c.)"""
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

NODE = shutil.which("node") or "/usr/bin/node"
PY = "/usr/bin/python3"


class Origin(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from the allowed origin"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def main(t):
    g = lib.Gatehouse()
    try:
        g.start()
        appdir = os.path.join(g.tmp, "app")
        os.makedirs(appdir)
        os.chmod(g.tmp, 0o755)  # as root the sandbox runs as nobody: the app must be readable
        os.chmod(appdir, 0o755)
        # Node: a governed read through the gateway with the token it was given
        with open(os.path.join(appdir, "read.js"), "w") as f:
            f.write("""
fetch(process.env.GATEHOUSE_URL + '/v1/query', {method: 'POST',
  headers: {Authorization: 'Bearer ' + process.env.GATEHOUSE_TOKEN, 'Content-Type': 'application/json'},
  body: JSON.stringify({resource: 'crm', environment: 'staging', sql: 'SELECT name FROM customers WHERE id = ?', params: [1]})})
  .then(async r => { console.log(r.status, await r.text()); })
  .catch(e => { console.log('ERR', e.message); process.exit(3); });
""")
        # Python: the same token for production, then egress attempts through the proxy
        with open(os.path.join(appdir, "egress.py"), "w") as f:
            f.write("""
import json, os, sys, urllib.request
tok, url = os.environ['GATEHOUSE_TOKEN'], os.environ['GATEHOUSE_URL']
req = urllib.request.Request(url + '/v1/query', method='POST', headers={'Authorization': 'Bearer ' + tok,
    'Content-Type': 'application/json'}, data=json.dumps({'resource': 'crm', 'environment': 'production',
    'sql': 'SELECT 1'}).encode())
try:
    urllib.request.urlopen(req, timeout=10); print('prod: allowed')
except urllib.error.HTTPError as e:
    print('prod:', e.code)
for target in sys.argv[1:]:
    try:
        r = urllib.request.urlopen(target, timeout=10); print(target, r.status, r.read().decode())
    except urllib.error.HTTPError as e:
        print(target, e.code)
    except Exception as e:
        print(target, 'ERR', type(e).__name__)
print('env:', sorted(k for k in os.environ if k not in ('PATH', 'HOME', 'LANG')))
""")
        os.chmod(os.path.join(appdir, "read.js"), 0o644)
        os.chmod(os.path.join(appdir, "egress.py"), 0o644)
        # origins on this machine's own non-loopback address (the sandbox's 127.0.0.1 is its own,
        # and goes direct: NO_PROXY), named by IP so the proxy may reach them
        import socket
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
            host_ip = u.getsockname()[0]
        except OSError:
            host_ip = "127.0.0.1"
        u.close()
        srv = http.server.ThreadingHTTPServer((host_ip, 0), Origin)
        other = http.server.ThreadingHTTPServer((host_ip, 0), Origin)
        for s in (srv, other):
            threading.Thread(target=s.serve_forever, daemon=True).start()
        allowed = "http://%s:%d" % (host_ip, srv.server_address[1])
        denied = "http://%s:%d" % (host_ip, other.server_address[1])

        def run(*cmd, extra=(), timeout=120, env=None):
            args = [lib.BIN, "run", "--data", g.data, "--app", "invoices", "--env", "staging", "--user", "alice",
                    "--dir", appdir, "--gateway", "127.0.0.1:%d" % g.port] + list(extra) + ["--"] + list(cmd)
            e = dict(os.environ)
            e.update(env or {})
            return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=e)

        r = run(NODE, "/app/read.js")
        t.check(r.returncode == 0 and r.stdout.startswith("200") and "Nordlicht" in r.stdout,
                "Node inside reads governed data through the gateway with its scoped token",
                (r.returncode, r.stdout[-300:], r.stderr[-300:]))

        r = run(PY, "/app/egress.py", allowed + "/x", denied + "/y", "http://example.invalid/z",
                extra=["--allow-origin", allowed, "--env-pass", "LANG_HINT"], env={"LANG_HINT": "kept",
                                                                                  "AWS_SECRET": "leak"})
        out = r.stdout
        t.check("prod: 403" in out, "the token is refused for another environment", out)
        t.check((allowed + "/x 200 hello from the allowed origin") in out, "an allowed origin is reachable", out)
        t.check((denied + "/y 403") in out, "a host port that is not allowed is refused by the proxy", out)
        t.check("http://example.invalid/z 403" in out, "a name that is not allowed is refused", out)
        t.check("AWS_SECRET" not in out and "'LANG_HINT'" in out and "'GATEHOUSE_TOKEN'" in out,
                "the environment holds the token, the proxy and --env-pass names, nothing else", out)
        recs = [x for x in g.audit_lines() if x["event"] == "sandbox.egress"]
        dests = {(x["detail"]["destination"], x["decision"]) for x in recs}
        t.check(any(d.startswith(allowed) and dec == "allow" for d, dec in dests)
                and any(denied in d and dec == "deny" for d, dec in dests)
                and any(x["detail"]["gateway"] for x in recs),
                "egress is audited: the gateway, the allowed origin, the refusals", sorted(dests))
        t.check(all(x["user"] == "alice" and x["app"] == "invoices" for x in recs), "egress records name user and app")

        r = run("/bin/sh", "-c", "sleep 30", extra=["--timeout", "1s"])
        t.check(r.returncode == 124 and "timeout" in r.stderr, "wall-clock timeout: 124 with a reason", r.stderr)
        r = run(PY, "-c", "b = bytearray(400 * 1024 * 1024)", extra=["--memory", "64M"])
        t.check(r.returncode == 137 or (r.returncode == 1 and "MemoryError" in r.stderr),
                "allocating past --memory is stopped (137, or MemoryError under RLIMIT_AS)", (r.returncode, r.stderr[-200:]))
        r = run(PY, "-c", "open('/app/x', 'w')")
        t.check(r.returncode != 0 and "Read-only" in r.stderr, "the app directory is read-only", r.stderr[-200:])
        r = subprocess.run([lib.BIN, "run", "--data", g.data, "--app", "nope", "--env", "staging", "--user", "alice",
                            "--", "/bin/true"], capture_output=True, text=True)
        t.check(r.returncode == 2 and "not registered" in r.stderr, "an unknown app: refused before anything runs",
                r.stderr)
        out = g.verify()
        t.check(out.returncode == 0, "audit verify ok", out.stdout + out.stderr)
        srv.shutdown()
        other.shutdown()
    finally:
        g.close()


if __name__ == "__main__":
    lib.run_suite("test_run", main)
