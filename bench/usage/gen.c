/* bench/usage: appends N generated records to a data directory's audit log, continuing its hash
 * chain exactly as src/audit/audit.c writes it (same members in the same order, rows as an
 * integer or null, duration_ms with three decimals, SHA-256 over the record without its "hash"
 * member followed by "}"), so `gatehouse audit verify` accepts the result.
 *
 *   gen DATA_DIR N [--days 30] [--seed 1] [--users 200] [--resources 20] [--expect FILE]
 *
 * Traffic: reads (3% failing), denials under five rules, writes (decision + outcome), writes
 * that wait for approval and are approved (approve + execute) or rejected 10 s to 2 h later,
 * and token issues the usage index ignores. Statements come from eleven templates filled with
 * varying literals. Times run evenly from DAYS ago to now. --expect writes what the usage index
 * must report over the generated records, as JSON: totals, denials by rule, approvals, queries
 * per user, and statements per normalised example.
 *
 * Build: cc -O2 -std=c11 -o gen bench/usage/gen.c $(pkg-config --cflags --libs libsodium) */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static uint64_t rng;

static uint64_t next(void)
{
	uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static int64_t range(int64_t lo, int64_t hi) /* [lo, hi] */
{
	return lo + (int64_t)(next() % (uint64_t)(hi - lo + 1));
}

static double unit(void)
{
	return (double)(next() >> 11) / 9007199254740992.0;
}

struct tpl {
	const char *text;   /* {} is filled with a literal */
	int nparams;
	const char *example; /* what the normaliser makes of it */
};

static const struct tpl reads[] = {
	{"SELECT name, tier FROM customers WHERE id = {}", 0, "SELECT name, tier FROM customers WHERE id = ?"},
	{"SELECT * FROM invoices WHERE customer_id = ? AND status = '{}'", 1,
	 "SELECT * FROM invoices WHERE customer_id = ? AND status = ?"},
	{"SELECT count(*) FROM invoices WHERE amount_cents > {} AND status IN ({})", 0,
	 "SELECT count(*) FROM invoices WHERE amount_cents > ? AND status IN (?)"},
	{"select id from orders where created_at >= '{}' order by id limit {}", 0,
	 "select id from orders where created_at >= ? order by id limit ?"},
	{"SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = ?", 1,
	 "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = ?"},
	{"SELECT sum(amount_cents) FROM invoices WHERE customer_id IN ({})", 0,
	 "SELECT sum(amount_cents) FROM invoices WHERE customer_id IN (?)"},
};
static const struct tpl writes[] = {
	{"UPDATE invoices SET status = '{}' WHERE id = ?", 1, "UPDATE invoices SET status = ? WHERE id = ?"},
	{"INSERT INTO notes(body) VALUES (?)", 1, "INSERT INTO notes(body) VALUES (?)"},
	{"DELETE FROM sessions WHERE expires_at < {}", 0, "DELETE FROM sessions WHERE expires_at < ?"},
};
static const struct tpl drop = {"DROP TABLE customers", 0, "DROP TABLE customers"};
static const struct tpl attach = {"ATTACH DATABASE '/tmp/x{}.db' AS x", 0, "ATTACH DATABASE ? AS x"};
#define NTPL 11
static const struct tpl *const all_tpl[NTPL] = {&reads[0], &reads[1], &reads[2], &reads[3], &reads[4], &reads[5],
						 &writes[0], &writes[1], &writes[2], &drop, &attach};
static int64_t tpl_count[NTPL];

static const char *const rules[] = {"no-grant", "destructive-ddl", "forbidden-statement", "needs-app-or-edit",
				    "token-environment"};
static const char *const envs[] = {"staging", "production", "dev"};
static const char *const words[] = {"paid", "sent", "overdue"};

static void count_tpl(const struct tpl *t)
{
	for (int i = 0; i < NTPL; i++)
		if (all_tpl[i] == t)
			tpl_count[i]++;
}

/* Fills t's {}: a word inside quotes, a list after "IN (", a number otherwise. */
static void fill(const struct tpl *t, char *out, size_t n)
{
	size_t o = 0;
	for (const char *p = t->text; *p && o + 64 < n; p++) {
		if (p[0] != '{' || p[1] != '}') {
			out[o++] = *p;
			continue;
		}
		p++;
		if (o && out[o - 1] == '\'') {
			if (unit() < 0.25)
				o += (size_t)snprintf(out + o, n - o, "2026-01-0%d", (int)range(1, 9));
			else
				o += (size_t)snprintf(out + o, n - o, "%s", words[range(0, 2)]);
		} else if (o >= 4 && memcmp(out + o - 4, "IN (", 4) == 0) {
			int k = (int)range(1, 6);
			for (int i = 0; i < k; i++)
				o += (size_t)snprintf(out + o, n - o, "%s%d", i ? ", " : "", (int)range(1, 999));
		} else {
			o += (size_t)snprintf(out + o, n - o, "%d", (int)range(-5, 100000));
		}
	}
	out[o] = '\0';
}

/* ---- the log ---- */

static FILE *logf;
static int64_t seq;
static char prev[65];
static char *rec;
static size_t reccap = 1 << 16;

static void rfc3339(int64_t ms, char out[32])
{
	static int64_t cached = -1;
	static char sec[24];
	int64_t s = ms / 1000;
	if (s != cached) {
		time_t tt = (time_t)s;
		struct tm tm;
		gmtime_r(&tt, &tm);
		strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm);
		cached = s;
	}
	snprintf(out, 32, "%s.%03dZ", sec, (int)(ms % 1000));
}

static void q(char *buf, size_t *o, const char *s)
{
	/* every generated string is plain: no quote, backslash or control character */
	*o += (size_t)(s ? snprintf(buf + *o, reccap - *o, "\"%s\"", s) : snprintf(buf + *o, reccap - *o, "null"));
}

struct r {
	int64_t t;
	const char *rid, *event, *user, *groups, *app, *env, *res, *stmt, *params, *cls, *tables, *decision, *rule,
		*status;
	int64_t rows;   /* -1: null */
	double dur;     /* < 0: null */
	const char *client, *detail;
};

static void put(const struct r *r)
{
	char ts[32];
	size_t o = 0;
	rfc3339(r->t, ts);
	o += (size_t)snprintf(rec, reccap, "{\"seq\":%" PRId64 ",\"time\":\"%s\",\"request_id\":", ++seq, ts);
	q(rec, &o, r->rid);
	o += (size_t)snprintf(rec + o, reccap - o, ",\"event\":");
	q(rec, &o, r->event);
	o += (size_t)snprintf(rec + o, reccap - o, ",\"user\":");
	q(rec, &o, r->user);
	o += (size_t)snprintf(rec + o, reccap - o, ",\"groups\":[%s],\"app\":", r->groups);
	q(rec, &o, r->app);
	o += (size_t)snprintf(rec + o, reccap - o, ",\"environment\":");
	q(rec, &o, r->env);
	o += (size_t)snprintf(rec + o, reccap - o, ",\"resource\":");
	q(rec, &o, r->res);
	o += (size_t)snprintf(rec + o, reccap - o, ",\"statement\":");
	q(rec, &o, r->stmt);
	o += (size_t)snprintf(rec + o, reccap - o, ",\"params\":%s,\"class\":", r->params ? r->params : "null");
	q(rec, &o, r->cls);
	o += (size_t)snprintf(rec + o, reccap - o, ",\"tables\":%s,\"decision\":", r->tables ? r->tables : "null");
	q(rec, &o, r->decision);
	o += (size_t)snprintf(rec + o, reccap - o, ",\"rule\":");
	q(rec, &o, r->rule);
	o += (size_t)snprintf(rec + o, reccap - o, ",\"status\":");
	q(rec, &o, r->status);
	if (r->rows >= 0)
		o += (size_t)snprintf(rec + o, reccap - o, ",\"rows\":%" PRId64, r->rows);
	else
		o += (size_t)snprintf(rec + o, reccap - o, ",\"rows\":null");
	if (r->dur >= 0)
		o += (size_t)snprintf(rec + o, reccap - o, ",\"duration_ms\":%.3f", r->dur);
	else
		o += (size_t)snprintf(rec + o, reccap - o, ",\"duration_ms\":null");
	o += (size_t)snprintf(rec + o, reccap - o, ",\"client\":");
	q(rec, &o, r->client);
	if (r->detail)
		o += (size_t)snprintf(rec + o, reccap - o, ",\"detail\":%s", r->detail);
	o += (size_t)snprintf(rec + o, reccap - o, ",\"prev\":\"%s\"", prev);
	uint8_t d[32];
	crypto_hash_sha256_state hs;
	crypto_hash_sha256_init(&hs);
	crypto_hash_sha256_update(&hs, (const uint8_t *)rec, o);
	crypto_hash_sha256_update(&hs, (const uint8_t *)"}", 1);
	crypto_hash_sha256_final(&hs, d);
	for (int i = 0; i < 32; i++)
		snprintf(prev + 2 * i, 3, "%02x", d[i]);
	fprintf(logf, "%.*s,\"hash\":\"%s\"}\n", (int)o, rec, prev);
}

/* Continues the chain of the log's last record (or starts one). */
static int open_log(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/audit/audit.log", dir);
	memset(prev, '0', 64);
	prev[64] = '\0';
	FILE *f = fopen(path, "r");
	if (f) {
		char *line = NULL, *last = NULL;
		size_t cap = 0;
		ssize_t n;
		while ((n = getline(&line, &cap, f)) > 0) {
			free(last);
			last = strdup(line);
		}
		free(line);
		fclose(f);
		if (last) {
			char *h = strstr(last, ",\"hash\":\"");
			if (sscanf(last, "{\"seq\":%" SCNd64 ",", &seq) != 1 || !h || strlen(h) < 9 + 64) {
				fprintf(stderr, "gen: %s: the last record is not an audit record\n", path);
				free(last);
				return 1;
			}
			memcpy(prev, h + 9, 64);
			free(last);
		}
	}
	logf = fopen(path, "a");
	if (!logf) {
		fprintf(stderr, "gen: %s: %s\n", path, strerror(errno));
		return 1;
	}
	setvbuf(logf, NULL, _IOFBF, 1 << 20);
	return 0;
}

/* ---- pending approval decisions, a min-heap by time ---- */

struct decision {
	int64_t t, req_t;
	bool approve;
	int user, app, env, res;
	char aid[40], stmt[200], params[32];
};
static struct decision *heap;
static size_t nheap, capheap;

static void heap_push(const struct decision *d)
{
	if (nheap == capheap) {
		capheap = capheap ? capheap * 2 : 1024;
		heap = realloc(heap, capheap * sizeof *heap);
		if (!heap)
			abort();
	}
	size_t i = nheap++;
	heap[i] = *d;
	while (i && heap[(i - 1) / 2].t > heap[i].t) {
		struct decision x = heap[i];
		heap[i] = heap[(i - 1) / 2];
		heap[(i - 1) / 2] = x;
		i = (i - 1) / 2;
	}
}

static struct decision heap_pop(void)
{
	struct decision top = heap[0];
	heap[0] = heap[--nheap];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < nheap && heap[l].t < heap[m].t)
			m = l;
		if (r < nheap && heap[r].t < heap[m].t)
			m = r;
		if (m == i)
			break;
		struct decision x = heap[i];
		heap[i] = heap[m];
		heap[m] = x;
		i = m;
	}
	return top;
}

/* ---- expectations ---- */

static struct {
	int64_t queries, rows, affected, errors, denied, requested, approved, rejected, tta_ms, tta_n;
	int64_t denials[5];
	int64_t *user_queries;
} exp_;

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: gen DATA_DIR N [--days 30] [--seed 1] [--users 200] [--resources 20] "
				"[--expect FILE]\n");
		return 2;
	}
	const char *dir = argv[1], *expect = NULL;
	int64_t n = strtoll(argv[2], NULL, 10);
	double days = 30;
	int nusers = 200, nres = 20;
	rng = 1;
	for (int i = 3; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--days") == 0)
			days = strtod(argv[i + 1], NULL);
		else if (strcmp(argv[i], "--seed") == 0)
			rng = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--users") == 0)
			nusers = (int)strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--resources") == 0)
			nres = (int)strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--expect") == 0)
			expect = argv[i + 1];
		else {
			fprintf(stderr, "gen: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (n < 1 || nusers < 2 || nusers > 100000 || nres < 1 || nres > 100 || days <= 0 || sodium_init() < 0)
		return 2;
	if (open_log(dir))
		return 1;
	rec = malloc(reccap);
	exp_.user_queries = calloc((size_t)nusers, sizeof *exp_.user_queries);
	if (!rec || !exp_.user_queries)
		return 1;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	int64_t now = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	int64_t t0 = now - (int64_t)(days * 86400 * 1000);
	double step = (double)(now - t0) / (double)n;
	static char users[100000][8];
	static char res_names[100][8], app_names[10][8];
	for (int i = 0; i < nusers; i++)
		snprintf(users[i], sizeof users[i], "u%03d", i);
	for (int i = 0; i < nres; i++)
		snprintf(res_names[i], sizeof res_names[i], "r%02d", i);
	for (int i = 0; i < 10; i++)
		snprintf(app_names[i], sizeof app_names[i], "app%d", i);
	int64_t written = 0, rid = 0, k = 0;
	char rids[40], stmt[256], params[64], detail[200], client[40], rule[200];
	while (written < n) {
		int64_t t = t0 + (int64_t)((double)written * step);
		while (nheap && heap[0].t <= t && written < n) {
			struct decision d = heap_pop();
			const char *u = users[d.user], *reviewer = users[(d.user + 1) % nusers];
			const char *app = d.app < 10 ? app_names[d.app] : NULL;
			snprintf(rids, sizeof rids, "req_%016" PRIx64, (uint64_t)++rid);
			snprintf(rule, sizeof rule, "approved-by:%s", reviewer);
			snprintf(detail, sizeof detail, "{\"approval\":\"%s\",\"requester\":\"%s\"}", d.aid, u);
			if (d.approve) {
				put(&(struct r){d.t, rids, "approval.approve", reviewer, "\"leads\"", NULL, envs[d.env],
						res_names[d.res], d.stmt, d.params, "write", "[\"invoices\"]", "allow", rule,
						"approved", -1, 1.0, "10.0.0.2:5000", detail});
				written++;
				exp_.approved++;
				exp_.tta_ms += d.t - d.req_t;
				exp_.tta_n++;
				if (written < n) {
					int64_t rows = range(0, 3);
					snprintf(detail, sizeof detail, "{\"approval\":\"%s\",\"approved_by\":\"%s\"}", d.aid,
						 reviewer);
					put(&(struct r){d.t, rids, "approval.execute", u, "\"engineers\"", app, envs[d.env],
							res_names[d.res], d.stmt, d.params, "write", "[\"invoices\"]", "allow",
							rule, "ok", rows, 2.5, "10.0.0.2:5000", detail});
					written++;
					exp_.affected += rows;
				}
			} else {
				put(&(struct r){d.t, rids, "approval.reject", reviewer, "\"leads\"", NULL, envs[d.env],
						res_names[d.res], d.stmt, d.params, "write", NULL, "deny",
						"rejected-by-reviewer", "rejected", -1, 0.8, "10.0.0.2:5000", detail});
				written++;
				exp_.rejected++;
			}
		}
		if (written >= n)
			break;
		/* a few users do most of the work */
		int ui = (int)((double)nusers * unit() * unit() * unit());
		if (ui >= nusers)
			ui = nusers - 1;
		int ri = unit() < 0.7 ? ui % nres : (int)range(0, nres - 1);
		int ei = unit() < 0.6 ? 0 : (int)range(0, 2);
		int ai = unit() < 0.8 ? ui % 11 : (int)range(0, 10); /* mostly their own app; 10: none */
		const char *u = users[ui], *res = res_names[ri], *env = envs[ei], *app = ai < 10 ? app_names[ai] : NULL;
		snprintf(rids, sizeof rids, "req_%016" PRIx64, (uint64_t)++rid);
		snprintf(client, sizeof client, "10.0.%d.%d:%d", (int)range(0, 255), (int)range(0, 255),
			 (int)range(40000, 59999));
		double x = unit();
		k++;
		if (x < 0.78) {
			const struct tpl *tp = &reads[k % 6];
			fill(tp, stmt, sizeof stmt);
			snprintf(params, sizeof params, tp->nparams ? "[%d]" : "[]", (int)range(1, 99999));
			bool failed = unit() < 0.03;
			int64_t rows = failed ? -1 : range(0, 200);
			snprintf(rule, sizeof rule, "grant:%s/%s/group:analysts/use", res, env);
			put(&(struct r){t, rids, "query", u, "\"analysts\"", app, env, res, stmt, params, "read",
					"[\"customers\"]", "allow", rule, failed ? "error" : "ok", rows, unit() * 5, client,
					NULL});
			written++;
			exp_.queries++;
			exp_.user_queries[ui]++;
			count_tpl(tp);
			if (failed)
				exp_.errors++;
			else
				exp_.rows += rows;
		} else if (x < 0.86) {
			int r = (int)(k % 5);
			const struct tpl *tp = r == 1 ? &drop : r == 2 ? &attach : &reads[k % 6];
			fill(tp, stmt, sizeof stmt);
			put(&(struct r){t, rids, "query", u, "\"analysts\"", app, env, res, stmt, "[]", "read", "[]", "deny",
					rules[r], "denied", -1, 0.2, client, NULL});
			written++;
			exp_.queries++;
			exp_.user_queries[ui]++;
			exp_.denied++;
			exp_.denials[r]++;
			count_tpl(tp);
		} else if (x < 0.955) {
			const struct tpl *tp = &writes[k % 3];
			fill(tp, stmt, sizeof stmt);
			snprintf(params, sizeof params, tp->nparams ? "[\"v%d\"]" : "[]", (int)range(1, 999));
			snprintf(rule, sizeof rule, "grant:%s/%s/group:engineers/edit", res, env);
			put(&(struct r){t, rids, "query", u, "\"engineers\"", app, env, res, stmt, params, "write",
					"[\"invoices\"]", "allow", rule, "started", -1, 0.4, client, NULL});
			written++;
			exp_.queries++;
			exp_.user_queries[ui]++;
			count_tpl(tp);
			if (written < n) {
				int64_t rows = range(0, 5);
				put(&(struct r){t, rids, "query.outcome", u, "\"engineers\"", app, env, res, stmt, params,
						"write", "[\"invoices\"]", "allow", rule, "ok", rows, 3.0, client, NULL});
				written++;
				exp_.affected += rows;
			}
		} else if (x < 0.985) {
			struct decision d = {0};
			fill(&writes[0], d.stmt, sizeof d.stmt);
			snprintf(d.params, sizeof d.params, "[%d]", (int)range(1, 9999));
			snprintf(d.aid, sizeof d.aid, "apr_%024" PRIx64, (uint64_t)rid);
			snprintf(detail, sizeof detail, "{\"approval\":\"%s\"}", d.aid);
			put(&(struct r){t, rids, "approval.request", u, "\"engineers\"", app, env, res, d.stmt, d.params,
					"write", "[\"invoices\"]", "pending", "approval-required", "pending", -1, 0.3, client,
					detail});
			written++;
			exp_.queries++;
			exp_.user_queries[ui]++;
			exp_.requested++;
			count_tpl(&writes[0]);
			d.t = t + range(10000, 2 * 3600000);
			d.req_t = t;
			d.approve = unit() < 0.67;
			d.user = ui;
			d.app = ai;
			d.env = ei;
			d.res = ri;
			if (d.t < now)
				heap_push(&d);
		} else {
			snprintf(detail, sizeof detail, "{\"token_id\":\"tok_%032" PRIx64 "\",\"expires_at\":%" PRId64 "}",
				 (uint64_t)rid, t / 1000 + 900);
			put(&(struct r){t, rids, "token.issue", u, "", app, env, NULL, NULL, NULL, NULL, NULL, "allow",
					"local-operator", "ok", -1, -1, "local:uid=0", detail});
			written++;
		}
	}
	if (fclose(logf) != 0) {
		fprintf(stderr, "gen: writing the log failed: %s\n", strerror(errno));
		return 1;
	}
	if (expect) {
		FILE *f = fopen(expect, "w");
		if (!f)
			return 1;
		fprintf(f, "{\"queries\":%" PRId64 ",\"rows\":%" PRId64 ",\"rows_affected\":%" PRId64 ",\"errors\":%" PRId64
			   ",\"denied\":%" PRId64 ",\"requested\":%" PRId64 ",\"approved\":%" PRId64 ",\"rejected\":%" PRId64
			   ",\"tta_ms\":%" PRId64 ",\"tta_n\":%" PRId64 ",\"denials\":{",
			exp_.queries, exp_.rows, exp_.affected, exp_.errors, exp_.denied, exp_.requested, exp_.approved,
			exp_.rejected, exp_.tta_ms, exp_.tta_n);
		for (int i = 0; i < 5; i++)
			fprintf(f, "%s\"%s\":%" PRId64, i ? "," : "", rules[i], exp_.denials[i]);
		fprintf(f, "},\"user_queries\":{");
		bool first = true;
		for (int i = 0; i < nusers; i++)
			if (exp_.user_queries[i]) {
				fprintf(f, "%s\"%s\":%" PRId64, first ? "" : ",", users[i], exp_.user_queries[i]);
				first = false;
			}
		fprintf(f, "},\"examples\":{");
		for (int i = 0; i < NTPL; i++)
			fprintf(f, "%s\"%s\":%" PRId64, i ? "," : "", all_tpl[i]->example, tpl_count[i]);
		fprintf(f, "}}\n");
		fclose(f);
	}
	fprintf(stderr, "gen: %" PRId64 " records appended (last seq %" PRId64 ")\n", n, seq);
	return 0;
}
