"""Signed checkpoints: the server signs a checkpoint every audit.checkpoint_every records and when
it stops; `gatehouse audit verify --public-key FILE --log PATH` checks a copy of the log in
another directory with nothing but the public key, and fails on an edited record, a log
rewritten with a recomputed chain, a checkpoint signed by another key, and a log cut before the
last checkpoint."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import Gatehouse, DEFAULT_POLICY, run_suite

EVERY = 5


def audit_dir(data):
    return os.path.join(data, "audit")


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def rechain(lines):
    """Recomputes prev and hash of every record (what a forger without the key can do)."""
    out, prev = [], "0" * 64
    for l in lines:
        cut = l.rindex(b',"prev":"')
        head = l[:cut] + b',"prev":"' + prev.encode() + b'"'
        prev = hashlib.sha256(head + b"}").hexdigest()
        out.append(head + b',"hash":"' + prev.encode() + b'"}')
    return out


def body(r):
    g = Gatehouse(policy=DEFAULT_POLICY + "audit:\n  checkpoint_every: %d\n" % EVERY)
    other = None
    try:
        pub = g.path("audit.pem")
        out = g.cli("audit", "public-key", "--data", g.data)
        r.check(out.returncode == 0 and out.stdout.startswith("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"),
                "audit public-key prints an Ed25519 public key as PEM", out.stdout + out.stderr)
        write(pub, out.stdout.encode())
        if shutil.which("openssl"):
            o = subprocess.run(["openssl", "pkey", "-pubin", "-in", pub, "-noout", "-text"], capture_output=True,
                               text=True)
            r.check(o.returncode == 0 and "ED25519" in o.stdout.upper(), "openssl reads it as an ED25519 key",
                    o.stdout + o.stderr)
        out2 = g.cli("audit", "public-key", "--data", g.data)
        r.check(out2.stdout == out.stdout, "the key stays the same")

        g.start()
        tok, _ = g.token("alice", "staging", app="invoices")
        for i in range(13):  # 16 records in all: the last is not a multiple of EVERY
            st, _, _ = g.query(tok, "SELECT ? AS n", params=[i])
            assert st == 200
        n_running = len(read(os.path.join(audit_dir(g.data), "audit.log")).splitlines())
        ck_path = os.path.join(audit_dir(g.data), "checkpoints")
        end = time.time() + 10
        want = [s for s in range(EVERY, n_running + 1, EVERY)]
        seen = []
        while time.time() < end:
            if os.path.exists(ck_path):
                seen = [json.loads(l)["seq"] for l in read(ck_path).splitlines()]
                if seen[:len(want)] == want:
                    break
            time.sleep(0.05)
        r.check(seen[:len(want)] == want, "while serving, a checkpoint is signed every %d records: %s" % (EVERY, want),
                seen)
        rc = g.stop()
        r.check(rc == 0, "server stops", rc)
        log = read(os.path.join(audit_dir(g.data), "audit.log")).splitlines()
        cks = [json.loads(l) for l in read(ck_path).splitlines()]
        r.check(cks[-1]["seq"] == len(log) and len(log) % EVERY != 0, "at shutdown a checkpoint covers the last record (seq %d)" % len(log),
                cks[-1])
        r.check(all(c["hash"] == json.loads(log[c["seq"] - 1])["hash"] for c in cks) and
                all(set(c) == {"seq", "hash", "time", "key", "sig"} for c in cks),
                "each checkpoint is {seq, hash, time, key, sig} with the hash of its record")
        out = g.verify()
        r.check(out.returncode == 0 and out.stdout.strip() == "ok: %d records" % len(log),
                "audit verify --data still prints 'ok: N records' (and checks the checkpoints)", out.stdout)

        # --- an auditor's copy, elsewhere, without the data directory
        copy = os.path.join(g.tmp, "auditor")
        os.mkdir(copy)
        shutil.copy(os.path.join(audit_dir(g.data), "audit.log"), copy)
        shutil.copy(ck_path, copy)
        shutil.copy(pub, copy)
        away = g.data + ".away"
        os.rename(g.data, away)  # no master.key, no store: only the copy
        try:
            clog = os.path.join(copy, "audit.log")
            out = g.cli("audit", "verify", "--public-key", os.path.join(copy, "audit.pem"), "--log", clog)
            r.check(out.returncode == 0 and out.stdout.strip() == "ok: %d records; %d signed checkpoints, the last at "
                    "seq %d" % (len(log), len(cks), len(log)),
                    "verify --public-key --log passes on a copy in another directory, naming the last checkpoint",
                    out.stdout + out.stderr)

            def verify_copy(lines=None, ckpts=None, key=None):
                d = os.path.join(g.tmp, "case")
                shutil.rmtree(d, ignore_errors=True)
                os.mkdir(d)
                write(os.path.join(d, "audit.log"), b"".join(x + b"\n" for x in (lines if lines is not None else log)))
                write(os.path.join(d, "checkpoints"),
                      ckpts if ckpts is not None else read(os.path.join(copy, "checkpoints")))
                return g.cli("audit", "verify", "--public-key", key or os.path.join(copy, "audit.pem"), "--log",
                             os.path.join(d, "audit.log"))

            # an edited record
            k = 7
            edited = list(log)
            edited[k - 1] = edited[k - 1].replace(b'"params":[', b'"params":[0,', 1)
            out = verify_copy(edited)
            r.check(out.returncode == 1 and re.search(r"FAILED at line %d \(seq %d\): hash does not match" % (k, k),
                                                      out.stdout),
                    "an edited record fails at its line", out.stdout)
            # the same edit with the chain recomputed: only the signatures catch it
            out = verify_copy(rechain(edited))
            nxt = ((k + EVERY - 1) // EVERY) * EVERY
            r.check(out.returncode == 1 and "FAILED at line %d (seq %d)" % (nxt, nxt) in out.stdout and
                    "rewritten" in out.stdout,
                    "the log rewritten with a recomputed chain fails at the next checkpoint (seq %d)" % nxt,
                    out.stdout)
            # cut before the last checkpoint
            out = verify_copy(log[:-3])
            r.check(out.returncode == 1 and "log ends at seq %d but a signed checkpoint covers seq %d" % (len(log) - 3, (len(log) - 3) // EVERY * EVERY + EVERY)
                    in out.stdout,
                    "a log cut before the last checkpoint fails", out.stdout)
            out = verify_copy(log[:EVERY + 1])
            r.check(out.returncode == 1 and "removed from the end" in out.stdout,
                    "a log cut to just after the first checkpoint fails too", out.stdout)
            # no checkpoints
            out = verify_copy(ckpts=b"")
            r.check(out.returncode == 1 and "no signed checkpoint" in out.stdout, "no checkpoints: fails", out.stdout)
            # an edited checkpoint
            ck_lines = read(os.path.join(copy, "checkpoints")).splitlines()
            bad = list(ck_lines)
            bad[0] = bad[0].replace(b'"seq":%d' % EVERY, b'"seq":%d' % (EVERY + 1))
            out = verify_copy(ckpts=b"".join(x + b"\n" for x in bad))
            r.check(out.returncode == 1 and "FAILED at checkpoints line 1" in out.stdout,
                    "an edited checkpoint fails, naming its line", out.stdout)
        finally:
            os.rename(away, g.data)

        # --- checkpoints signed by another key: another data directory signs this very log
        other = Gatehouse(policy=None)
        shutil.copy(os.path.join(copy, "audit.log"), os.path.join(audit_dir(other.data), "audit.log"))
        other.start()
        other.stop()
        forged = read(os.path.join(audit_dir(other.data), "checkpoints")).splitlines()
        fl = json.loads(forged[-1])
        r.check(fl["seq"] == len(log) and fl["hash"] == cks[-1]["hash"],
                "another data directory signed a checkpoint of this log's last record", fl)
        out = verify_copy(ckpts=b"".join(x + b"\n" for x in ck_lines[:-1] + [forged[-1]]))
        r.check(out.returncode == 1 and "FAILED at checkpoints line %d" % len(ck_lines) in out.stdout and
                "signature" in out.stdout, "a checkpoint signed by another key fails", out.stdout)
        fl["key"] = cks[-1]["key"]  # and claiming our key id
        out = verify_copy(ckpts=b"".join(x + b"\n" for x in ck_lines[:-1]) +
                          json.dumps(fl, separators=(",", ":")).encode() + b"\n")
        r.check(out.returncode == 1 and "signature does not verify" in out.stdout,
                "a checkpoint signed by another key under our key id fails", out.stdout)
        opub = g.path("other.pem")
        write(opub, other.cli("audit", "public-key", "--data", other.data).stdout.encode())
        out = verify_copy(key=opub)
        r.check(out.returncode == 1 and "FAILED at checkpoints line 1" in out.stdout,
                "our checkpoints do not verify with another data directory's key", out.stdout)

        # --- usage and input errors
        out = g.cli("audit", "verify", "--public-key", opub)
        r.check(out.returncode == 2, "--public-key without --log or --data is a usage error", out.stderr)
        write(g.path("junk.pem"), b"not a key\n")
        out = g.cli("audit", "verify", "--public-key", g.path("junk.pem"), "--data", g.data)
        r.check(out.returncode == 2 and "not an Ed25519 public key" in out.stderr, "a bad key file is an input error",
                out.stderr)
        out = g.cli("audit", "verify", "--public-key", pub, "--data", g.data)
        r.check(out.returncode == 0 and out.stdout.startswith("ok: "), "--public-key with --data reads the same files",
                out.stdout)

        # --- checkpoints continue across restarts
        g.start()
        for i in range(EVERY):
            g.query(tok, "SELECT 1")
        g.stop()
        cks2 = [json.loads(l) for l in read(ck_path).splitlines()]
        seqs = [c["seq"] for c in cks2]
        n2 = len(read(os.path.join(audit_dir(g.data), "audit.log")).splitlines())
        r.check(seqs == sorted(set(seqs)) and seqs[-1] == n2 and
                all(s in seqs for s in range(EVERY, n2 + 1, EVERY)),
                "after a restart checkpoints go on at every multiple and at the end", seqs)
        out = g.cli("audit", "verify", "--public-key", pub, "--data", g.data)
        r.check(out.returncode == 0, "and the whole log still verifies with the public key", out.stdout)
    finally:
        g.close()
        if other:
            other.close()


if __name__ == "__main__":
    run_suite("test_audit_checkpoints", body)
