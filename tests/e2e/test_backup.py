"""Backup and restore: `gatehouse backup` taken three times while the server serves reads,
writes, approvals and `token issue` calls from several threads; each backup restored into a
fresh directory and checked: the audit chain verifies, the policy (every grant) is the one
applied at backup time, the backup's trail is a byte-identical prefix of the live one ending at
the manifest's seq, the manifest's hashes are right, tokens issued before the backup work on a
server started on the restored directory, modes are 0700/0600. A backup with one byte changed
(trail, store, manifest), or re-hashed after an edit, is refused with nothing written; so are a
non-empty destination for either verb and a restore without the master key of a backup made
without it. No secret (master key, a vault secret) appears in any output.

Signed checkpoints (the server signs one every 7 records meanwhile): each backup's
audit/checkpoints holds the live checkpoints up to its cut and ends with one at exactly the
manifest's seq; `audit verify --public-key` (the original's key) passes on the backup itself and
on each restored directory; a backup with an edited, forged, cut or re-signed checkpoints file is
refused by restore; a version 1 backup (before checkpoints) still restores."""
import base64
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import Gatehouse, run_suite, DEFAULT_POLICY

SECRET = "postgresql://app:Backup-canary-7f3a9c2e@db.internal/crm"
EVERY = 7  # the server's checkpoint interval: live checkpoints race with the backups'
POLICY1 = DEFAULT_POLICY + "audit:\n  checkpoint_every: %d\n" % EVERY

# Policy 2 adds a user and grants, so each backup has a different policy to come back with.
POLICY2 = POLICY1.replace("  - name: erin\n", "  - name: erin\n  - name: frank\n").replace(
    "grants:\n", "grants:\n  - { resource: crm, environment: staging, user: frank, access: edit }\n"
                 "  - { resource: crm, environment: production, user: erin, access: use }\n")


class Existing(Gatehouse):
    """A server on a data directory made elsewhere (a restore)."""

    def __init__(self, data):
        self.tmp = tempfile.mkdtemp(prefix="gh-e2e-restored-")
        self.data = data
        self.proc = None
        self.port = None
        self.stderr_path = os.path.join(self.tmp, "server.err")


class Seen:
    """Every byte an operator sees from backup and restore, to sweep for secrets."""

    def __init__(self):
        self.parts = []

    def add(self, what, out):
        self.parts.append((what + " stdout", out.stdout))
        self.parts.append((what + " stderr", out.stderr))
        return out


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def check_modes(r, d, what):
    bad = []
    for root, dirs, files in os.walk(d):
        for n in dirs:
            if mode(os.path.join(root, n)) != 0o700:
                bad.append((os.path.join(root, n), oct(mode(os.path.join(root, n)))))
        for n in files:
            if mode(os.path.join(root, n)) != 0o600:
                bad.append((os.path.join(root, n), oct(mode(os.path.join(root, n)))))
    if mode(d) != 0o700:
        bad.append((d, oct(mode(d))))
    r.check(not bad, "%s: directories 0700, files 0600" % what, bad)


def leftovers(parent):
    return [n for n in os.listdir(parent) if ".partial-" in n]


class Load:
    """Threads driving the server while backups are taken: reads (alice through the app),
    writes (bob in staging), writes that wait for approval (bob in production), and
    `gatehouse token issue` calls. Counts what completed, and keeps each issued token with the
    time its issue finished."""

    def __init__(self, g, alice, bob, bob_prod):
        self.g = g
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.done = 0
        self.errors = []
        self.tokens = []  # (finished at, token)
        self.threads = [threading.Thread(target=self.reader, args=(alice,)),
                        threading.Thread(target=self.reader, args=(alice,)),
                        threading.Thread(target=self.writer, args=(bob, "staging", 200)),
                        threading.Thread(target=self.writer, args=(bob_prod, "production", 202)),
                        threading.Thread(target=self.issuer)]

    def count(self, ok, what):
        with self.lock:
            self.done += 1
            if not ok and len(self.errors) < 20:
                self.errors.append(what)

    def reader(self, tok):
        c = self.g.conn()
        while not self.stop.is_set():
            st, doc, _ = self.g.query(tok, "SELECT count(*) FROM customers", conn=c)
            self.count(st == 200, ("read", st, doc))
        c.close()

    def writer(self, tok, env, want):
        c = self.g.conn()
        i = 0
        while not self.stop.is_set():
            i += 1
            st, doc, _ = self.g.query(tok, "INSERT INTO notes(body) VALUES (?)", environment=env,
                                      params=["load %s %d" % (env, i)], conn=c)
            self.count(st == want, ("write", env, st, doc))
            if env == "production":
                time.sleep(0.05)  # approvals pile up in the store; fewer are enough
        c.close()

    def issuer(self):
        while not self.stop.is_set():
            try:
                tok, _ = self.g.token("alice", "staging", app="invoices")
                with self.lock:
                    self.tokens.append((time.monotonic(), tok))
                self.count(True, None)
            except Exception as e:  # counted, reported by the test
                self.count(False, ("token issue", str(e)))

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(120)


def manifest_ok(r, b, man, what):
    files = man.get("files", {})
    ok = True
    for name, info in files.items():
        data = read(os.path.join(b, name))
        ok = ok and len(data) == info["size"] and hashlib.sha256(data).hexdigest() == info["sha256"]
    r.check(ok and set(files) >= {"gatehouse.db", "audit/audit.log", "audit/checkpoints"}
            and man.get("format") == "gatehouse-backup" and man.get("version") == 2
            and man["audit"].get("checkpoint") == man["audit"]["seq"],
            "%s: manifest (version 2) lists the files with their true sizes and SHA-256, and the checkpoint at "
            "its seq" % what, man)


def body(r):
    g = Gatehouse(policy=POLICY1)
    seen = Seen()
    servers = []
    uid = os.getuid()
    try:
        out = g.cli("secret", "set", "--data", g.data, "crm-dsn", input=SECRET + "\n")
        r.check(out.returncode == 0, "a vault secret is set (to look for it later)", out.stderr)
        master = read(os.path.join(g.data, "master.key"))
        pub = g.path("audit.pem")
        out = g.cli("audit", "public-key", "--data", g.data)
        r.check(out.returncode == 0 and "BEGIN PUBLIC KEY" in out.stdout, "the original's checkpoint public key",
                out.stderr)
        with open(pub, "w") as f:
            f.write(out.stdout)
        policies = [g.cli("export", "--data", g.data).stdout]
        g.start()
        alice, _ = g.token("alice", "staging", app="invoices")
        bob, _ = g.token("bob", "staging")
        bob_prod, _ = g.token("bob", "production")

        load = Load(g, alice, bob, bob_prod)
        load.start()
        time.sleep(1.0)
        backups = []  # (dir, expected export, token cut-off, completed during the backup)
        for i, opts in enumerate([[], [], ["--without-master-key"]]):
            if i == 1:
                out = g.apply(POLICY2, name="policy2.yaml")
                r.check(out.returncode == 0, "policy 2 applied while the load runs", out.stderr)
                policies.append(g.cli("export", "--data", g.data).stdout)
            b = os.path.join(g.tmp, "backup%d" % (i + 1))
            before_done, t0 = load.done, time.monotonic()
            out = seen.add("backup %d" % (i + 1), g.cli("backup", "--data", g.data, b, *opts))
            during = load.done - before_done
            r.check(out.returncode == 0 and "written to " + b in out.stdout,
                    "backup %d taken under load (%d requests and token issues completed while it ran)"
                    % (i + 1, during), out.stdout + out.stderr)
            backups.append((b, policies[-1], t0, during))
            time.sleep(0.7)
        load.finish()
        r.check(load.done > 100 and not load.errors,
                "the load ran without an error (%d requests and token issues)" % load.done, load.errors)
        r.check(sum(d for _, _, _, d in backups) > 0, "requests completed while backups ran: the server is not "
                "stopped by a backup", [d for _, _, _, d in backups])
        r.check(len(load.tokens) > 3, "tokens were issued during the load", len(load.tokens))

        live_log = read(os.path.join(g.data, "audit", "audit.log"))
        live_recs = [json.loads(l) for l in live_log.splitlines()]

        # --- each backup, as written
        own_ck = []  # backups whose last checkpoint the live file skipped (a later one got there first)
        for n, (b, policy, t0, _) in enumerate(backups, 1):
            what = "backup %d" % n
            man = json.loads(read(os.path.join(b, "manifest.json")))
            manifest_ok(r, b, man, what)
            check_modes(r, b, what)
            blog = read(os.path.join(b, "audit", "audit.log"))
            last = json.loads(blog.splitlines()[-1])
            r.check(live_log.startswith(blog) and len(blog) < len(live_log),
                    "%s: its trail is a byte-identical prefix of the live trail" % what)
            r.check(last["seq"] == man["audit"]["seq"] and last["hash"] == man["audit"]["hash"]
                    and len(blog.splitlines()) == last["seq"],
                    "%s: the trail ends at the manifest's seq %d and hash" % (what, man["audit"]["seq"]),
                    (last["seq"], man["audit"]))
            db = sqlite3.connect("file:%s?mode=ro" % os.path.join(b, "gatehouse.db"), uri=True)
            head = db.execute("SELECT seq, hash FROM audit_head").fetchone()
            db.close()
            r.check(head == (man["audit"]["seq"], man["audit"]["hash"]),
                    "%s: the store copy's audit head is the manifest's" % what, head)
            rec = [x for x in live_recs if x["event"] == "backup.create" and x["detail"]["location"] == b]
            r.check(len(rec) == 1 and rec[0]["detail"]["seq"] == man["audit"]["seq"]
                    and rec[0]["client"] == "local:uid=%d" % uid and rec[0]["seq"] > man["audit"]["seq"],
                    "%s: recorded in the live trail as backup.create (who, where, seq)" % what, rec)
            has_key = os.path.exists(os.path.join(b, "master.key"))
            r.check(has_key == (n != 3) and (not has_key or read(os.path.join(b, "master.key")) == master),
                    "%s: master.key %s" % (what, "is the live key" if n != 3 else "is left out (--without-master-key)"))
            bck = read(os.path.join(b, "audit", "checkpoints")).splitlines()
            cks = [json.loads(x) for x in bck]
            seq = man["audit"]["seq"]
            live_ck = read(os.path.join(g.data, "audit", "checkpoints")).splitlines()
            r.check(cks and cks[-1]["seq"] == seq and cks[-1]["hash"] == man["audit"]["hash"]
                    and all(c["seq"] <= seq for c in cks) and [c["seq"] for c in cks] == sorted({c["seq"] for c in cks}),
                    "%s: its checkpoints (%d) end at exactly the manifest's seq %d" % (what, len(cks), seq),
                    [c["seq"] for c in cks[-3:]])
            r.check(bck[:-1] == [x for x in live_ck if json.loads(x)["seq"] < seq],
                    "%s: the checkpoints before it are the live ones up to its seq, byte for byte" % what)
            r.check(all(c["hash"] == live_recs[c["seq"] - 1]["hash"] for c in cks),
                    "%s: each checkpoint names its record's hash" % what)
            v = g.cli("audit", "verify", "--public-key", pub, "--log", os.path.join(b, "audit", "audit.log"),
                      "--checkpoints", os.path.join(b, "audit", "checkpoints"))
            r.check(v.returncode == 0 and v.stdout.strip() == "ok: %d records; %d signed checkpoints, the last at seq %d"
                    % (seq, len(cks), seq),
                    "%s: audit verify --public-key passes on the backup itself" % what, v.stdout + v.stderr)
            own_ck.append(bck[-1] not in live_ck)

        live_cks = [json.loads(x)["seq"] for x in read(os.path.join(g.data, "audit", "checkpoints")).splitlines()]
        r.check(len(live_cks) > 10 and live_cks == sorted(set(live_cks)),
                "the live checkpoints (%d) stay in order; %d of 3 backups ended with a checkpoint the live file had "
                "skipped" % (len(live_cks), sum(own_ck)), live_cks[-5:])

        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(g.data, "gatehouse.db"), uri=True)
        meta = dict(db.execute("SELECT key, value FROM meta WHERE key LIKE 'backup.%'").fetchall())
        db.close()
        man3 = json.loads(read(os.path.join(backups[2][0], "manifest.json")))
        r.check(meta.get("backup.last_location") == backups[2][0]
                and meta.get("backup.last_seq") == str(man3["audit"]["seq"])
                and abs(int(meta.get("backup.last_time_ms", "0")) / 1000 - time.time()) < 120,
                "the store remembers the last backup: time, location, seq", meta)

        # --- restore each into a fresh directory
        keyfile = os.path.join(g.tmp, "offline.key")
        with open(keyfile, "wb") as f:
            f.write(master)
        os.chmod(keyfile, 0o600)
        for n, (b, policy, t0, _) in enumerate(backups, 1):
            what = "restore of backup %d" % n
            man = json.loads(read(os.path.join(b, "manifest.json")))
            dest = os.path.join(g.tmp, "restored%d" % n)
            args = ["restore", "--data", dest, b]
            if n == 3:
                out = seen.add("restore 3 without key", g.cli(*args))
                r.check(out.returncode == 1 and "--master-key" in out.stderr and not os.path.exists(dest),
                        "a backup made --without-master-key is refused without --master-key, saying so",
                        out.stderr)
                args += ["--master-key", keyfile]
            out = seen.add("restore %d" % n, g.cli(*args))
            r.check(out.returncode == 0 and "into " + dest in out.stdout, "%s succeeds" % what, out.stderr)
            check_modes(r, dest, what)
            r.check(read(os.path.join(dest, "master.key")) == master, "%s: master.key is the live key" % what)
            v = g.cli("audit", "verify", "--data", dest)
            r.check(v.returncode == 0 and v.stdout.strip() == "ok: %d records" % (man["audit"]["seq"] + 1),
                    "%s: audit verify passes (the backup's records and one data.restore)" % what, v.stdout)
            rlog = read(os.path.join(dest, "audit", "audit.log"))
            blog = read(os.path.join(b, "audit", "audit.log"))
            rlast = json.loads(rlog.splitlines()[-1])
            r.check(rlog.startswith(blog) and rlast["event"] == "data.restore" and rlast["detail"]["seq"] ==
                    man["audit"]["seq"] and rlast["detail"]["backup"] == b,
                    "%s: the restored trail is the backup's plus a data.restore record naming it" % what, rlast)
            v = g.cli("audit", "verify", "--public-key", pub, "--data", dest)
            r.check(v.returncode == 0 and v.stdout.startswith("ok: %d records; " % (man["audit"]["seq"] + 1))
                    and ("the last at seq %d " % man["audit"]["seq"]) in v.stdout,
                    "%s: audit verify --public-key (the original's key) passes, the last checkpoint at the "
                    "backup's seq" % what, v.stdout + v.stderr)
            exp = g.cli("export", "--data", dest)
            r.check(exp.returncode == 0 and exp.stdout == policy,
                    "%s: export is the policy applied at backup time (policy %d), every grant"
                    % (what, 1 if n == 1 else 2), exp.stdout)

            s = Existing(dest)
            servers.append(s)
            s.start()
            before = [tok for t, tok in load.tokens if t < t0][-10:]
            before.append(alice)
            codes = [s.query(tok, "SELECT count(*) FROM customers")[0] for tok in before]
            r.check(codes and all(c == 200 for c in codes),
                    "%s: a server on it accepts %d tokens issued before the backup" % (what, len(codes)), codes)
            if n == 2:
                frank, _ = s.token("frank", "staging")
                st, doc, _ = s.query(frank, "SELECT count(*) FROM notes")
                r.check(st == 200, "%s: policy 2's grant for frank works on the restored server" % what, doc)
            s.stop()

        # --- refusals: tampered backups, non-empty destinations
        b1 = backups[0][0]
        man1 = json.loads(read(os.path.join(b1, "manifest.json")))

        def tampered(what, change, expect):
            t = os.path.join(g.tmp, "tampered")
            dest = os.path.join(g.tmp, "restore-tampered")
            shutil.rmtree(t, ignore_errors=True)
            shutil.copytree(b1, t)
            change(t)
            out = seen.add("restore " + what, g.cli("restore", "--data", dest, t))
            r.check(out.returncode == 1 and re.search(expect, out.stderr) and not os.path.exists(dest)
                    and not leftovers(g.tmp),
                    "a backup with %s is refused (exit 1, nothing written): %s" % (what, out.stderr.strip()),
                    (out.returncode, out.stderr))

        def flip(rel, offset):
            def change(t):
                p = os.path.join(t, rel)
                data = bytearray(read(p))
                data[offset % len(data)] ^= 0x01
                with open(p, "wb") as f:
                    f.write(data)
            return change

        def rehash(t, rel):
            m = json.loads(read(os.path.join(t, "manifest.json")))
            data = read(os.path.join(t, rel))
            m["files"][rel] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            with open(os.path.join(t, "manifest.json"), "w") as f:
                json.dump(m, f)

        def edit_manifest(fn):
            def change(t):
                m = json.loads(read(os.path.join(t, "manifest.json")))
                fn(m)
                with open(os.path.join(t, "manifest.json"), "w") as f:
                    json.dump(m, f)
            return change

        loglen = man1["files"]["audit/audit.log"]["size"]
        tampered("one byte changed in audit.log", flip("audit/audit.log", loglen // 2), "audit/audit.log.*SHA-256")
        tampered("one byte changed in gatehouse.db", flip("gatehouse.db", 5000), "gatehouse.db.*SHA-256")
        def manifest_hash_byte(t):
            p = os.path.join(t, "manifest.json")
            text = read(p)
            h = man1["files"]["gatehouse.db"]["sha256"].encode()
            i = text.index(h) + 63
            with open(p, "wb") as f:
                f.write(text[:i] + (b"0" if text[i:i + 1] != b"0" else b"1") + text[i + 1:])
        tampered("one byte changed in manifest.json (a hash)", manifest_hash_byte, "gatehouse.db.*SHA-256")
        tampered("one byte changed in manifest.json (the audit seq)",
                 edit_manifest(lambda m: m["audit"].__setitem__("seq", m["audit"]["seq"] - 1)),
                 "audit.checkpoint must be audit.seq")
        tampered("the audit seq and checkpoint in manifest.json both moved back",
                 edit_manifest(lambda m: m["audit"].update(seq=m["audit"]["seq"] - 1,
                                                           checkpoint=m["audit"]["seq"] - 1)), "audit head")
        tampered("a manifest.json that is not JSON", flip("manifest.json", 0), "manifest.json")
        tampered("an unknown member in manifest.json", edit_manifest(lambda m: m.__setitem__("extra", 1)),
                 "unknown member")

        def edit_record(t):
            p = os.path.join(t, "audit", "audit.log")
            lines = read(p).splitlines(keepends=True)
            lines[1] = lines[1].replace(b'"local:uid=', b'"local:uid=9')
            with open(p, "wb") as f:
                f.writelines(lines)
            rehash(t, "audit/audit.log")
        tampered("an edited audit record, re-hashed in the manifest", edit_record, r"fails verification at line 2")

        def drop_last(t):
            p = os.path.join(t, "audit", "audit.log")
            lines = read(p).splitlines(keepends=True)
            with open(p, "wb") as f:
                f.writelines(lines[:-1])
            rehash(t, "audit/audit.log")
        tampered("its last audit record removed, re-hashed", drop_last, "fails verification|records")

        def other_store(t):
            other = Gatehouse()
            try:
                shutil.copy(os.path.join(other.data, "gatehouse.db"), os.path.join(t, "gatehouse.db"))
            finally:
                other.close()
            rehash(t, "gatehouse.db")
        tampered("another installation's store, re-hashed", other_store, "audit head|master key")

        def wrong_key(t):
            with open(os.path.join(t, "master.key"), "wb") as f:
                f.write(os.urandom(32))
            rehash(t, "master.key")
        tampered("a different master key, re-hashed", wrong_key, "master key does not open")

        # --- the checkpoints file tampered with
        tampered("one byte changed in audit/checkpoints", flip("audit/checkpoints", 30), "audit/checkpoints.*SHA-256")
        b1_cks = read(os.path.join(b1, "audit", "checkpoints")).splitlines(keepends=True)

        def edit_checkpoints(fn):
            def change(t):
                p = os.path.join(t, "audit", "checkpoints")
                with open(p, "wb") as f:
                    f.writelines(fn(list(b1_cks)))
                rehash(t, "audit/checkpoints")
            return change

        def resign_time(lines):  # the time changed: the signature no longer covers it
            c = json.loads(lines[-1])
            c["time"] = "2030-01-01T00:00:00.000Z"
            return lines[:-1] + [json.dumps(c, separators=(",", ":")).encode() + b"\n"]
        tampered("an edited checkpoint, re-hashed", edit_checkpoints(resign_time),
                 "audit/checkpoints fails verification at line %d.*signature" % len(b1_cks))
        tampered("its last checkpoint removed, re-hashed", edit_checkpoints(lambda l: l[:-1]),
                 "checkpoints end at seq .*not at its head")
        tampered("an empty checkpoints file, re-hashed", edit_checkpoints(lambda l: []),
                 "checkpoints end at seq 0")
        other = Gatehouse(policy=None)
        try:  # another data directory's server signs this backup's last record when it stops
            shutil.copy(os.path.join(b1, "audit", "audit.log"), os.path.join(other.data, "audit", "audit.log"))
            other.start()
            other.stop()
            forged = read(os.path.join(other.data, "audit", "checkpoints")).splitlines(keepends=True)
        finally:
            other.close()
        r.check(forged and json.loads(forged[-1])["seq"] == man1["audit"]["seq"],
                "another data directory signed a checkpoint of backup 1's last record", forged[-1:])
        tampered("its last checkpoint signed by another key, re-hashed", edit_checkpoints(lambda l: l[:-1] + forged[-1:]),
                 "audit/checkpoints fails verification at line %d.*signature" % len(b1_cks))

        def version1(t):  # what a gatehouse before checkpoints in backups wrote
            m = json.loads(read(os.path.join(t, "manifest.json")))
            m["version"] = 1
            del m["audit"]["checkpoint"]
            del m["files"]["audit/checkpoints"]
            os.unlink(os.path.join(t, "audit", "checkpoints"))
            with open(os.path.join(t, "manifest.json"), "w") as f:
                json.dump(m, f)
        old = os.path.join(g.tmp, "old-format")
        shutil.copytree(b1, old)
        version1(old)
        dest = os.path.join(g.tmp, "restored-old")
        out = seen.add("restore version 1", g.cli("restore", "--data", dest, old))
        v = g.cli("audit", "verify", "--data", dest)
        r.check(out.returncode == 0 and "no signed audit checkpoints" in out.stderr and v.returncode == 0
                and not os.path.exists(os.path.join(dest, "audit", "checkpoints")),
                "a version 1 backup (no checkpoints file) still restores, saying it has no checkpoints; audit verify "
                "passes", out.stderr + v.stdout)
        tampered("version 2 without its checkpoints file in the manifest",
                 edit_manifest(lambda m: m["files"].pop("audit/checkpoints")), "audit/checkpoints")

        out = seen.add("restore wrong --master-key", g.cli("restore", "--data", os.path.join(g.tmp, "rk"),
                                                             backups[2][0], "--master-key",
                                                             os.path.join(backups[0][0], "gatehouse.db")))
        r.check(out.returncode == 2 and "--master-key" in out.stderr and not os.path.exists(os.path.join(g.tmp, "rk")),
                "a --master-key file that is not a key is refused", out.stderr)

        busy = os.path.join(g.tmp, "busy")
        os.mkdir(busy, 0o700)
        with open(os.path.join(busy, "keep.txt"), "w") as f:
            f.write("do not touch")
        out = seen.add("restore into non-empty", g.cli("restore", "--data", busy, b1))
        r.check(out.returncode == 2 and "not empty" in out.stderr and os.listdir(busy) == ["keep.txt"]
                and not leftovers(g.tmp), "restore into a non-empty directory is refused, it is left alone",
                out.stderr)
        out = seen.add("backup into non-empty", g.cli("backup", "--data", g.data, busy))
        r.check(out.returncode == 2 and "not empty" in out.stderr and os.listdir(busy) == ["keep.txt"]
                and not leftovers(g.tmp), "backup into a non-empty OUT is refused, it is left alone", out.stderr)
        out = seen.add("backup into existing", g.cli("backup", "--data", g.data, b1))
        r.check(out.returncode == 2 and json.loads(read(os.path.join(b1, "manifest.json"))) == man1,
                "backup over an earlier backup is refused; the earlier one is unchanged", out.stderr)
        empty = os.path.join(g.tmp, "empty-out")
        os.mkdir(empty, 0o755)
        out = seen.add("backup into empty", g.cli("backup", "--data", g.data, empty))
        r.check(out.returncode == 0 and os.path.exists(os.path.join(empty, "manifest.json")) and mode(empty) == 0o700,
                "backup into an existing empty directory works and makes it 0700", out.stderr)
        v = g.verify()
        r.check(v.returncode == 0, "the live trail still verifies after all of it", v.stdout)

        # --- no secret in anything an operator saw
        key_forms = [master.hex(), master.hex().upper(), base64.b64encode(master).decode(),
                     base64.urlsafe_b64encode(master).decode().rstrip("=")]
        leaks = [w for w, text in seen.parts
                 if SECRET in text or "Backup-canary" in text or any(k in text for k in key_forms)
                 or master.decode("latin-1") in text]
        r.check(not leaks and len(seen.parts) > 20,
                "no output of backup or restore (%d streams) holds the master key or the vault secret"
                % len(seen.parts), leaks)
        texts = [read(os.path.join(b, "manifest.json")) for b, _, _, _ in backups]
        r.check(not any(SECRET.encode() in t or master in t for t in texts),
                "manifests hold neither the key nor the secret")
        r.check(SECRET.encode() not in live_log and SECRET.encode() not in read(os.path.join(b1, "gatehouse.db")),
                "the secret is sealed in the backup's store, not in clear")
    finally:
        for s in servers:
            s.close()
        g.close()


run_suite("test_backup.py", body)
