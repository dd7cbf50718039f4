/* Unit tests for src/scan/inject.c: injection sinks and resource references over the fixture
 * trees tests/scan/inject/{js,ts,tsx,py} and tests/scan/refs. Each fixture line that must be
 * reported ends with a comment `expect: RULE[, RULE]`; the test compares the complete set of
 * (line, rule) found against those markers: nothing extra, nothing missing. Run from the
 * repository root. */
#include "unit.h"

#include <dirent.h>
#include <string.h>

#include "config/config.h"
#include "scan/scan.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))

#define MAX_FILE (1 << 20)
#define MAX_MARKS 512

struct mark {
	int line;
	char rule[48];
	bool seen;
};

static char *read_all(const char *path, size_t *len)
{
	char *buf = NULL;
	struct gh_error err = {0};
	if (gh_read_file(path, MAX_FILE, &buf, len, &err) != 0) {
		fprintf(stderr, "read %s: %s\n", path, err.message);
		return NULL;
	}
	return buf;
}

/* Collects the `expect:` markers of buf. */
static size_t parse_marks(const char *buf, size_t len, struct mark *m, size_t max)
{
	size_t n = 0;
	int line = 1;
	const char *p = buf, *end = buf + len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		const char *e = NULL;
		for (const char *q = p; q + 7 <= eol; q++)
			if (memcmp(q, "expect:", 7) == 0)
				e = q + 7;
		while (e && e < eol && n < max) {
			while (e < eol && (*e == ' ' || *e == ','))
				e++;
			const char *s = e;
			while (e < eol && ((*e >= 'a' && *e <= 'z') || *e == '-'))
				e++;
			if (e == s)
				break;
			size_t k = (size_t)(e - s) < sizeof m[n].rule ? (size_t)(e - s) : sizeof m[n].rule - 1;
			memcpy(m[n].rule, s, k);
			m[n].rule[k] = 0;
			m[n].line = line;
			m[n].seen = false;
			n++;
		}
		p = eol + 1;
		line++;
	}
	return n;
}

/* Compares findings with marks; prints every difference. Returns the number of differences. */
static int compare(const char *path, const struct gh_findings *fs, struct mark *m, size_t nm)
{
	int bad = 0;
	for (size_t i = 0; i < fs->n; i++) {
		const struct gh_finding *f = &fs->v[i];
		bool ok = false;
		for (size_t j = 0; j < nm; j++)
			if (!m[j].seen && m[j].line == f->line && strcmp(m[j].rule, f->rule) == 0) {
				m[j].seen = true;
				ok = true;
				break;
			}
		if (!ok) {
			fprintf(stderr, "  %s:%d:%d: unexpected %s: %s [%s]\n", path, f->line, f->col, f->rule,
				f->message ? f->message : "", f->snippet ? f->snippet : "");
			bad++;
		}
		if (!f->fix || !f->fix[0] || !f->message || !f->message[0] || !f->snippet) {
			fprintf(stderr, "  %s:%d: %s without a message, snippet or fix\n", path, f->line, f->rule);
			bad++;
		}
		if (!f->path || strcmp(f->path, path) != 0 || f->col < 1 || f->end_line < f->line) {
			fprintf(stderr, "  %s:%d: %s with a bad path or span\n", path, f->line, f->rule);
			bad++;
		}
	}
	for (size_t j = 0; j < nm; j++)
		if (!m[j].seen) {
			fprintf(stderr, "  %s:%d: missing %s\n", path, m[j].line, m[j].rule);
			bad++;
		}
	return bad;
}

/* Scans every file of dir (sorted names do not matter: each is compared on its own). */
static int scan_dir(const char *dir, const struct gh_refs_ctx *refs, bool text, size_t *nfiles, size_t *nmarks)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int bad = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, "policy.yaml") == 0)
			continue;
		char path[512];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		size_t len;
		char *buf = read_all(path, &len);
		assert_non_null(buf);
		struct mark m[MAX_MARKS];
		size_t nm = parse_marks(buf, len, m, MAX_MARKS);
		struct gh_findings fs;
		gh_findings_init(&fs);
		enum gh_lang lang = gh_lang_of(path);
		if (lang != GH_LANG_NONE)
			assert_int_equal(gh_inject_scan(lang, path, (const uint8_t *)buf, len, refs, &fs), 0);
		if (text)
			assert_int_equal(gh_refs_scan_text(path, (const uint8_t *)buf, len, refs, &fs), 0);
		int b = compare(path, &fs, m, nm);
		CHECKED("%s: %zu findings, %zu expected%s", path, fs.n, nm, b ? " — MISMATCH" : "");
		bad += b;
		*nfiles += 1;
		*nmarks += nm;
		gh_findings_free(&fs);
		free(buf);
	}
	closedir(d);
	return bad;
}

static void test_inject_fixtures(void **state)
{
	(void)state;
	static const char *const dirs[] = {"tests/scan/inject/js", "tests/scan/inject/ts", "tests/scan/inject/tsx",
					   "tests/scan/inject/py"};
	int bad = 0;
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		size_t nf = 0, nm = 0;
		bad += scan_dir(dirs[i], NULL, false, &nf, &nm);
		assert_true(nf >= 2);
		CHECKED("%s: %zu files, %zu expected findings", dirs[i], nf, nm);
	}
	assert_int_equal(bad, 0);
}

static struct gh_policy *load_policy(void)
{
	size_t len;
	char *text = read_all("tests/scan/refs/policy.yaml", &len);
	assert_non_null(text);
	struct gh_policy *p = NULL;
	struct gh_error err = {0};
	int rc = gh_config_parse(text, len, "tests/scan/refs/policy.yaml", NULL, &p, &err);
	if (rc)
		fprintf(stderr, "policy: %s\n", err.message);
	assert_int_equal(rc, 0);
	free(text);
	return p;
}

static void test_refs_fixtures(void **state)
{
	(void)state;
	struct gh_policy *p = load_policy();
	struct gh_refs_ctx refs = {.policy = p, .user = "bob"};
	size_t nf = 0, nm = 0;
	int bad = scan_dir("tests/scan/refs", &refs, true, &nf, &nm);
	CHECKED("tests/scan/refs: %zu files, %zu expected findings, user bob", nf, nm);
	assert_int_equal(bad, 0);
	assert_true(nm >= 10);

	/* without a policy nothing is checked */
	const char *s = "dbname=ghost.staging";
	struct gh_findings fs;
	gh_findings_init(&fs);
	assert_int_equal(gh_refs_scan_text("x.env", (const uint8_t *)s, strlen(s), NULL, &fs), 0);
	struct gh_refs_ctx none = {0};
	assert_int_equal(gh_refs_scan_text("x.env", (const uint8_t *)s, strlen(s), &none, &fs), 0);
	assert_int_equal(fs.n, 0);
	/* with a policy and no user: only existence is checked */
	struct gh_refs_ctx nouser = {.policy = p};
	const char *t = "dbname=crm.production\ndbname=ghost.staging";
	assert_int_equal(gh_refs_scan_text("x.env", (const uint8_t *)t, strlen(t), &nouser, &fs), 0);
	assert_int_equal(fs.n, 1);
	assert_string_equal(fs.v[0].rule, "resource-unknown");
	assert_int_equal(fs.v[0].line, 2);
	assert_int_equal(fs.v[0].col, 8);
	CHECKED("no policy: nothing checked; no user: only unknown names reported");
	gh_findings_free(&fs);
	gh_config_unref(p);
}

/* Scans one snippet and returns its findings (caller frees). */
static void scan_str(enum gh_lang lang, const char *src, struct gh_findings *fs)
{
	gh_findings_init(fs);
	assert_int_equal(gh_inject_scan(lang, "t", (const uint8_t *)src, strlen(src), NULL, fs), 0);
}

static void test_tracking(void **state)
{
	(void)state;
	struct gh_findings fs;
	scan_str(GH_LANG_JS,
		 "function f(db, id) {\n"
		 "  const q = 'SELECT * FROM t WHERE id = ' + id;\n"
		 "  return db.query(q);\n"
		 "}\n",
		 &fs);
	assert_int_equal(fs.n, 1);
	assert_int_equal(fs.v[0].line, 3);
	assert_non_null(strstr(fs.v[0].message, "assigned on line 2"));
	assert_non_null(strstr(fs.v[0].message, "+ concatenation"));
	assert_non_null(strstr(fs.v[0].fix, "$1"));
	CHECKED("JS: `const q = ... + id; db.query(q)` reported at the use, naming line 2 and the pg rewrite");
	gh_findings_free(&fs);

	scan_str(GH_LANG_PY,
		 "import sqlite3\n"
		 "def f(cur, x):\n"
		 "    q = f\"SELECT * FROM t WHERE x = {x}\"\n"
		 "    cur.execute(q)\n",
		 &fs);
	assert_int_equal(fs.n, 1);
	assert_int_equal(fs.v[0].line, 4);
	assert_non_null(strstr(fs.v[0].message, "f-string"));
	assert_non_null(strstr(fs.v[0].message, "assigned on line 3"));
	assert_non_null(strstr(fs.v[0].fix, "?"));
	CHECKED("Python: `q = f\"...{x}\"; cur.execute(q)` reported with the sqlite3 ? rewrite");
	gh_findings_free(&fs);

	/* a chain of assignments and a self-referencing one terminate */
	scan_str(GH_LANG_JS,
		 "function f(db, a) { let q = q + a; q = q + q; q = q + q; q = q + q; db.query(q); }\n"
		 "function g(db) { let a = b; let b = a; db.query(a + b); }\n",
		 &fs);
	assert_int_equal(fs.n, 0);
	gh_findings_free(&fs);
	CHECKED("self-referencing and cyclic assignments terminate (no SQL text: nothing reported)");

	/* a deep chain is bounded, not followed without limit */
	char src[16384];
	size_t n = 0;
	n += (size_t)snprintf(src + n, sizeof src - n, "function f(db, x) {\n let v0 = 'SELECT * FROM t WHERE a = ' + x;\n");
	for (int i = 1; i < 200; i++)
		n += (size_t)snprintf(src + n, sizeof src - n, " let v%d = v%d;\n", i, i - 1);
	n += (size_t)snprintf(src + n, sizeof src - n, " db.query(v199);\n db.query(v3);\n}\n");
	assert_true(n < sizeof src);
	scan_str(GH_LANG_JS, src, &fs);
	assert_int_equal(fs.n, 1); /* v3 is near enough; v199 is past the depth bound */
	CHECKED("assignment chains are followed to a bounded depth");
	gh_findings_free(&fs);

	/* a long concatenation (40 pieces) is still recognised */
	n = (size_t)snprintf(src, sizeof src, "db.query('SELECT * FROM t WHERE a = ' + x");
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(src + n, sizeof src - n, " + ' AND b%d = ' + y%d", i, i);
	n += (size_t)snprintf(src + n, sizeof src - n, ");\n");
	assert_true(n < sizeof src);
	scan_str(GH_LANG_JS, src, &fs);
	assert_int_equal(fs.n, 1);
	CHECKED("a concatenation of 81 pieces is reported");
	gh_findings_free(&fs);

	/* past the depth bound the verdict is unknown, never a guess: 100 constant += are not reported */
	n = (size_t)snprintf(src, sizeof src, "function f(db) { let q = 'SELECT * FROM t WHERE 1 = 1';\n");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(src + n, sizeof src - n, " q += ' AND c%d = 1';\n", i);
	n += (size_t)snprintf(src + n, sizeof src - n, " db.query(q);\n}\n");
	assert_true(n < sizeof src);
	scan_str(GH_LANG_JS, src, &fs);
	assert_int_equal(fs.n, 0);
	CHECKED("100 constant += past the depth bound: not reported");
	gh_findings_free(&fs);
}

static void test_parse_errors(void **state)
{
	(void)state;
	struct gh_findings fs;
	scan_str(GH_LANG_JS, "function ((( { db.query('SELECT 1 FROM t WHERE x = ' + x) ]]] }}}", &fs);
	assert_true(fs.n <= 1);
	gh_findings_free(&fs);
	scan_str(GH_LANG_PY, "def f(:\n  cur.execute(f'DELETE FROM t WHERE id = {i}')\n", &fs);
	gh_findings_free(&fs);
	static const uint8_t junk[] = {0xff, 0x00, 0xfe, '`', '$', '{', 0x80, '"', '\\', 0xc3, 0x28, '\n', 0};
	for (enum gh_lang l = GH_LANG_JS; l <= GH_LANG_PY; l++) {
		gh_findings_init(&fs);
		assert_int_equal(gh_inject_scan(l, "junk", junk, sizeof junk, NULL, &fs), 0);
		assert_int_equal(gh_inject_scan(l, "empty", junk, 0, NULL, &fs), 0);
		gh_findings_free(&fs);
	}
	/* deep nesting: tree-sitter copes; our walk is iterative */
	size_t deep = 20000;
	char *d = malloc(deep * 2 + 64);
	assert_non_null(d);
	size_t k = 0;
	k += (size_t)snprintf(d, 64, "db.query(");
	for (size_t i = 0; i < deep; i++)
		d[k++] = '(';
	d[k++] = 'x';
	for (size_t i = 0; i < deep; i++)
		d[k++] = ')';
	d[k++] = ')';
	d[k] = 0;
	for (enum gh_lang l = GH_LANG_JS; l <= GH_LANG_PY; l++) {
		gh_findings_init(&fs);
		assert_int_equal(gh_inject_scan(l, "deep", (const uint8_t *)d, k, NULL, &fs), 0);
		gh_findings_free(&fs);
	}
	free(d);
	assert_int_equal(gh_inject_scan(GH_LANG_NONE, "x", junk, 1, NULL, &fs), GH_EINVAL);
	CHECKED("parse errors, binary junk, empty input and 20000-deep nesting do not abort any language");
}

/* Many functions with their own tracked query, and huge literals: every sink is still
 * followed (the assignment index is per scope and name) and nothing is quadratic. */
static void test_scale(void **state)
{
	(void)state;
	struct gh_buf b;
	gh_buf_init(&b, 8u << 20);
	for (int i = 0; i < 3000; i++)
		assert_int_equal(gh_buf_printf(&b, "function f%d(db, id) { const q = 'SELECT * FROM t WHERE id = ' + id; "
					      "let a = q; db.query(a); db.query('SELECT 1'); }\n", i), 0);
	assert_int_equal(gh_buf_puts(&b, "const big = ["), 0);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(gh_buf_puts(&b, "'x', "), 0);
	assert_int_equal(gh_buf_puts(&b, "];\nconst obj = {"), 0);
	for (int i = 0; i < 50000; i++)
		assert_int_equal(gh_buf_printf(&b, "k%d: 'v', ", i), 0);
	assert_int_equal(gh_buf_puts(&b, "};\ndb.query('SELECT ' + big.join(','));\n"), 0);
	struct gh_findings fs;
	gh_findings_init(&fs);
	assert_int_equal(gh_inject_scan(GH_LANG_JS, "big.js", (const uint8_t *)b.data, b.len, NULL, &fs), 0);
	assert_int_equal(fs.n, 3000); /* the last query joins constants only */
	CHECKED("%zu bytes, 3000 functions with tracked queries, a 100000-element array and a 50000-key object: "
		"%zu findings", b.len, fs.n);
	gh_findings_free(&fs);
	gh_buf_free(&b);
}

static void test_lang_and_rules(void **state)
{
	(void)state;
	assert_int_equal(gh_lang_of("a/b.js"), GH_LANG_JS);
	assert_int_equal(gh_lang_of("a.mjs"), GH_LANG_JS);
	assert_int_equal(gh_lang_of("a.cjs"), GH_LANG_JS);
	assert_int_equal(gh_lang_of("a.jsx"), GH_LANG_JS);
	assert_int_equal(gh_lang_of("a.ts"), GH_LANG_TS);
	assert_int_equal(gh_lang_of("a.mts"), GH_LANG_TS);
	assert_int_equal(gh_lang_of("a.cts"), GH_LANG_TS);
	assert_int_equal(gh_lang_of("a.tsx"), GH_LANG_TSX);
	assert_int_equal(gh_lang_of("x/y.py"), GH_LANG_PY);
	assert_int_equal(gh_lang_of("a.json"), GH_LANG_NONE);
	assert_int_equal(gh_lang_of("dir.js/README"), GH_LANG_NONE);
	assert_int_equal(gh_lang_of("Makefile"), GH_LANG_NONE);
	assert_int_equal(gh_lang_of(NULL), GH_LANG_NONE);
	const struct gh_rule_info *r;
	size_t n = gh_inject_rules(&r);
	assert_true(n >= 7);
	static const char *const want[] = {"sql-injection", "graphql-injection", "soql-injection", "nosql-injection",
					   "gatehouse-sql-injection", "resource-unknown", "resource-no-edit"};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		bool found = false;
		for (size_t j = 0; j < n; j++)
			if (!strcmp(r[j].id, want[i])) {
				found = true;
				assert_true(r[j].name && r[j].help && strlen(r[j].help) > 40);
				if (strstr(want[i], "injection"))
					assert_int_equal(r[j].severity, GH_SEV_HIGH);
			}
		assert_true(found);
	}
	CHECKED("gh_lang_of by extension; %zu rules with help, injection rules high", n);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_lang_and_rules),
	cmocka_unit_test(test_inject_fixtures),
	cmocka_unit_test(test_refs_fixtures),
	cmocka_unit_test(test_tracking),
	cmocka_unit_test(test_parse_errors),
	cmocka_unit_test(test_scale),
};

GH_UNIT_MAIN("scan_inject", tests)
