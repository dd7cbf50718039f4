#!/usr/bin/env python3
"""Generates a corpus of realistic-looking source (JavaScript, TypeScript, Python, YAML, JSON,
.env) of about MB megabytes under DIR, with secrets planted at known places. Writes
DIR/../planted.json: [{"path","line","kind"}]. Deterministic for a given SEED. Secrets are
built from random characters at run time: nothing secret-looking is stored in this file."""
import json
import os
import random
import string
import sys

out_dir, mb, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 7
rnd = random.Random(seed)
A = string.ascii_letters
AN = string.ascii_letters + string.digits
UP = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
B64 = AN + "+/"


def r(alpha, n):
    return "".join(rnd.choice(alpha) for _ in range(n))


# kind -> a line of code holding a fresh secret of that kind (formats as providers document them)
def planted(kind):
    if kind == "github-pat":
        return 'const token = "%s";' % ("gh" + "p_" + r(AN, 36))
    if kind == "github-fine-grained":
        return 'const token = "%s";' % ("github" + "_pat_" + r(AN, 22) + "_" + r(AN, 59))
    if kind == "slack-bot":
        return 'SLACK_TOKEN = "%s"' % ("xo" + "xb-" + r("0123456789", 12) + "-" + r("0123456789", 13) + "-" + r(AN, 24))
    if kind == "slack-webhook":
        return 'const hook = "https://hooks.slack.com/services/T%s/B%s/%s";' % (r(UP, 10), r(UP, 10), r(AN, 24))
    if kind == "stripe-live":
        return 'stripe_key = "%s"' % ("sk" + "_live_" + r(AN, 24))
    if kind == "sendgrid":
        return 'const sg = "%s";' % ("S" + "G." + r(AN + "-_", 22) + "." + r(AN + "-_", 43))
    if kind == "npm":
        return '//registry.npmjs.org/:_authToken=%s' % ("np" + "m_" + r(AN, 36))
    if kind == "openai":
        return 'OPENAI_API_KEY = "%s"' % ("s" + "k-proj-" + r(AN + "-_", 74) + "T3Blbk" + "FJ" + r(AN + "-_", 74))
    if kind == "anthropic":
        return 'const anthropic = "%s";' % ("sk-" + "ant-api03-" + r(AN + "-_", 93) + "AA")
    if kind == "gcp-api-key":
        return 'const maps = "%s";' % ("AI" + "za" + r(AN + "-_", 35))
    if kind == "aws":
        return 'aws_access_key_id = "%s"' % ("AK" + "IA" + r(UP, 16))
    if kind == "postgres-uri":
        return 'DATABASE_URL = "postgres://app:%s@db.internal:5432/app"' % r(AN, 20)
    raise ValueError(kind)


KINDS = ["github-pat", "github-fine-grained", "slack-bot", "slack-webhook", "stripe-live", "sendgrid", "npm",
         "openai", "anthropic", "gcp-api-key", "aws", "postgres-uri"]

WORDS = ("account invoice customer order payment user session report export import cache queue worker "
         "schedule notify billing ledger balance tenant project config handler service client store "
         "record item batch status amount total price discount region market").split()


def ident():
    return rnd.choice(WORDS) + rnd.choice(WORDS).capitalize() + (str(rnd.randint(1, 99)) if rnd.random() < .3 else "")


def js_block():
    n, f, g = ident(), ident(), ident()
    return [
        "export async function %s(%s, options = {}) {" % (f, n),
        "  const %s = await db.query('SELECT id, %s FROM %s WHERE id = $1', [%s.id]);" % (g, rnd.choice(WORDS), rnd.choice(WORDS) + "s", n),
        "  if (!%s.rows.length) {" % g,
        "    throw new Error('%s not found: ' + %s.id);" % (rnd.choice(WORDS), n),
        "  }",
        "  // %s %s %s" % (rnd.choice(WORDS), rnd.choice(WORDS), rnd.choice(WORDS)),
        "  return %s.rows.map((r) => ({ ...r, %s: r.%s * %d }));" % (g, rnd.choice(WORDS), rnd.choice(WORDS), rnd.randint(2, 9)),
        "}",
        "",
    ]


def py_block():
    n, f = ident().lower(), ident().lower()
    return [
        "def %s(%s, limit=%d):" % (f, n, rnd.randint(10, 500)),
        '    """Return the %s of %s."""' % (rnd.choice(WORDS), rnd.choice(WORDS)),
        "    rows = cursor.execute(\"SELECT * FROM %s WHERE id = %%s\", (%s,)).fetchall()" % (rnd.choice(WORDS), n),
        "    total = sum(r[%d] for r in rows)" % rnd.randint(0, 5),
        "    return {\"%s\": total, \"count\": len(rows)}" % rnd.choice(WORDS),
        "",
    ]


def yaml_block():
    return ["%s:" % rnd.choice(WORDS), "  %s: %d" % (rnd.choice(WORDS), rnd.randint(1, 10000)),
            "  %s: \"%s\"" % (rnd.choice(WORDS), " ".join(rnd.choice(WORDS) for _ in range(4)))]


# a pool of generated blocks, sampled per file (generating every block afresh is slow)
POOL = {f: ["\n".join(f()) for _ in range(3000)] for f in (js_block, py_block, yaml_block)}
FILES = [(".js", js_block), (".ts", js_block), (".py", py_block), (".yaml", yaml_block)]
target = mb * 1024 * 1024
written = 0
plants = []
os.makedirs(out_dir, exist_ok=True)
fileno = 0
# about one planted secret per 2 MB, at least 60, every kind at least 5 times
nplants = max(60, mb // 2, 5 * len(KINDS))
plant_kinds = [KINDS[i % len(KINDS)] for i in range(nplants)]
rnd.shuffle(plant_kinds)
nfiles_est = max(1, target // 60000)
plant_at = sorted(rnd.sample(range(nfiles_est), min(nplants, nfiles_est)))
pi = 0
while written < target:
    ext, block = FILES[fileno % len(FILES)]
    sub = os.path.join(out_dir, "pkg%03d" % (fileno // 200))
    os.makedirs(sub, exist_ok=True)
    path = os.path.join(sub, "%s%d%s" % (ident(), fileno, ext))
    chunks, size = [], 0
    while size < 60000:
        c = rnd.choice(POOL[block])
        chunks.append(c)
        size += len(c) + 1
    lines = "\n".join(chunks).split("\n")
    if pi < len(plant_at) and plant_at[pi] == fileno:
        kind = plant_kinds[pi]
        at = rnd.randint(3, len(lines) - 3)
        lines.insert(at, planted(kind))
        plants.append({"path": os.path.relpath(path, out_dir), "line": at + 1, "kind": kind})
        pi += 1
    data = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(data)
    written += len(data)
    fileno += 1
with open(os.path.join(os.path.dirname(os.path.abspath(out_dir)), "planted.json"), "w") as f:
    json.dump(plants, f)
print("corpus: %d files, %.1f MB, %d planted secrets" % (fileno, written / 1048576, len(plants)))
