/* usage: catching the index up with the audit log. Each pass is one transaction: check that the
 * last record taken is still where it was (else rebuild), read on from its end offset, add up
 * at most USAGE_PASS_RECORDS records in memory, write the sums, move the mark, commit. */
#include "usage/usage_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ,"prev":"<64 hex>","hash":"<64 hex>"} — how every record ends */
#define TAIL_LEN (9 + 64 + 1 + 9 + 64 + 2)

struct counts {
	int64_t queries, rows, affected, errors, denied, requested, approved, rejected, tta_ms, tta_n;
};

/* One pass's sums, keyed by binary keys: (bucket, dim), (bucket, dim, rule), (bucket, dim, fp). */
struct pass {
	struct gh_map *counts, *denials, *stmts;
	int64_t seq, start, end, last_time;
	char hash[65];
	int64_t records;
	sqlite3_stmt *dim_get, *dim_put, *fp_get, *fp_put, *pend_put, *pend_get, *pend_del;
	struct gh_buf key; /* scratch for cache keys */
	int64_t nfps;      /* fingerprints in the index */
};

static int prep(struct gh_usage *u, const char *sql, sqlite3_stmt **st, struct gh_error *err)
{
	if (sqlite3_prepare_v2(u->db, sql, -1, st, NULL) != SQLITE_OK)
		return usage_sq_err(u, err, "prepare");
	return 0;
}

/* One integer from sql (0 when it has none). */
static int64_t max_rows(struct gh_usage *u, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = 0;
	if (sqlite3_prepare_v2(u->db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static bool is_hex64(const char *p)
{
	for (int i = 0; i < 64; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

/* The seq, prev and hash of a record line (without its newline), read from the fixed places
 * the writer puts them; false when the line does not have that shape. */
static bool line_chain(const char *line, size_t len, int64_t *seq, const char **prev, const char **hash)
{
	static const char head[] = "{\"seq\":";
	if (len < sizeof head - 1 + 2 + TAIL_LEN || memcmp(line, head, sizeof head - 1) != 0)
		return false;
	const char *t = line + len - TAIL_LEN;
	if (memcmp(t, ",\"prev\":\"", 9) != 0 || memcmp(t + 73, "\",\"hash\":\"", 10) != 0 ||
	    memcmp(line + len - 2, "\"}", 2) != 0 || !is_hex64(t + 9) || !is_hex64(t + 83))
		return false;
	int64_t v = 0;
	size_t i = sizeof head - 1;
	if (i >= len || line[i] < '1' || line[i] > '9')
		return false;
	for (; i < len && line[i] >= '0' && line[i] <= '9'; i++) {
		if (v > (INT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (line[i] - '0');
	}
	if (i >= len || line[i] != ',')
		return false;
	*seq = v;
	*prev = t + 9;
	*hash = t + 83;
	return true;
}

/* ---- sums in memory ---- */

static void *sum_slot(struct gh_map *m, const void *key, size_t keylen, size_t size)
{
	void *v = gh_map_get(m, key, keylen);
	if (v)
		return v;
	v = calloc(1, size);
	if (v && gh_map_put(m, key, keylen, v)) {
		free(v);
		v = NULL;
	}
	return v;
}

static struct counts *counts_of(struct pass *p, int64_t bucket, int64_t dim)
{
	int64_t key[2] = {bucket, dim};
	return sum_slot(p->counts, key, sizeof key, sizeof(struct counts));
}

static int add_denial(struct pass *p, int64_t bucket, int64_t dim, const char *rule)
{
	char key[16 + GH_NAME_MAX * 2 + 64];
	size_t rl = strlen(rule);
	if (rl > sizeof key - 16)
		rl = sizeof key - 16;
	memcpy(key, &bucket, 8);
	memcpy(key + 8, &dim, 8);
	memcpy(key + 16, rule, rl);
	int64_t *n = sum_slot(p->denials, key, 16 + rl, sizeof *n);
	if (!n)
		return GH_ENOMEM;
	(*n)++;
	return 0;
}

static int add_statement(struct pass *p, int64_t bucket, int64_t dim, int64_t fp)
{
	int64_t key[3] = {bucket, dim, fp};
	int64_t *n = sum_slot(p->stmts, key, sizeof key, sizeof *n);
	if (!n)
		return GH_ENOMEM;
	(*n)++;
	return 0;
}

/* ---- ids in the index ---- */

static const char *nz(const char *s)
{
	return s ? s : "";
}

/* The id of (app, user, resource, environment), made when new. -1 on failure. */
static int64_t dim_id(struct gh_usage *u, struct pass *p, const char *app, const char *user, const char *res,
		      const char *env)
{
	struct gh_buf *key = &p->key;
	gh_buf_reset(key);
	if (gh_buf_printf(key, "%s\x1f%s\x1f%s\x1f%s", app, user, res, env))
		return -1;
	void *v = gh_map_get(u->dims, key->data, key->len);
	if (v)
		return (int64_t)(intptr_t)v;
	int64_t id = -1;
	const char *f[4] = {app, user, res, env};
	sqlite3_stmt *st = p->dim_get;
	for (int k = 0; k < 2 && id < 0; k++, st = p->dim_put) {
		sqlite3_reset(st);
		for (int i = 0; i < 4; i++)
			sqlite3_bind_text(st, i + 1, f[i], -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		if (k == 0 && rc == SQLITE_ROW)
			id = sqlite3_column_int64(st, 0);
		else if (k == 1 && rc == SQLITE_DONE)
			id = sqlite3_last_insert_rowid(u->db);
		sqlite3_reset(st);
	}
	if (id >= 0 && gh_map_put(u->dims, key->data, key->len, (void *)(intptr_t)id))
		id = -1;
	return id;
}

/* Cuts s to at most max bytes at a UTF-8 character boundary. */
static size_t cut_utf8(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

/* The id of fingerprint fp on resource res, made (with example ex) when new. -1 on failure. */
static int64_t fp_row(struct gh_usage *u, struct pass *p, const char *fp, const char *res, const struct gh_buf *ex)
{
	char key[17 + GH_NAME_MAX * 8 + 2];
	int kl = snprintf(key, sizeof key, "%s\x1f%s", fp, res);
	bool cacheable = kl > 0 && (size_t)kl < sizeof key;
	void *v = cacheable ? gh_map_get(u->fps, key, (size_t)kl) : NULL;
	if (v)
		return (int64_t)(intptr_t)v;
	int64_t id = -1;
	sqlite3_stmt *st = p->fp_get;
	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, fp, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, res, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (id < 0 && p->nfps >= USAGE_MAX_FINGERPRINTS && strcmp(fp, USAGE_OTHER_FP) != 0) {
		/* bounded: past the limit, new shapes of statement are counted together */
		struct gh_buf other;
		gh_buf_init(&other, 128);
		gh_buf_printf(&other, "(other statements: more than %d distinct fingerprints)", USAGE_MAX_FINGERPRINTS);
		id = fp_row(u, p, USAGE_OTHER_FP, res, &other);
		gh_buf_free(&other);
		return id;
	}
	if (id < 0) {
		const char *e = ex->data ? ex->data : "";
		st = p->fp_put;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, fp, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, res, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, e, (int)cut_utf8(e, ex->len, USAGE_EXAMPLE_MAX), SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_DONE) {
			id = sqlite3_last_insert_rowid(u->db);
			p->nfps++;
		}
		sqlite3_reset(st);
	}
	if (id >= 0 && cacheable) {
		if (gh_map_count(u->fps) >= USAGE_TEXT_CACHE_MAX)
			gh_map_clear(u->fps);
		gh_map_put(u->fps, key, (size_t)kl, (void *)(intptr_t)id);
	}
	return id;
}

/* The fingerprint id of a statement on a resource, made when new. -1 on failure. */
static int64_t fp_id(struct gh_usage *u, struct pass *p, const char *res, const char *sql, size_t len)
{
	enum gh_sql_dialect d = usage_dialect(u, res);
	struct gh_buf *key = &p->key;
	gh_buf_reset(key);
	if (gh_buf_printf(key, "%c%s\x1f", d == GH_SQL_DIALECT_PG ? 'p' : 's', res) || gh_buf_append(key, sql, len))
		return -1;
	void *v = gh_map_get(u->texts, key->data, key->len);
	if (v)
		return (int64_t)(intptr_t)v;
	char fp[17];
	struct gh_buf ex;
	gh_buf_init(&ex, 2 * len + 16);
	int64_t id = gh_sql_fingerprint(sql, len, d, fp, &ex) == 0 ? fp_row(u, p, fp, res, &ex) : -1;
	gh_buf_free(&ex);
	if (id >= 0) {
		if (gh_map_count(u->texts) >= USAGE_TEXT_CACHE_MAX || u->text_bytes + key->len > USAGE_TEXT_CACHE_BYTES) {
			gh_map_clear(u->texts);
			u->text_bytes = 0;
		}
		if (gh_map_put(u->texts, key->data, key->len, (void *)(intptr_t)id) == 0)
			u->text_bytes += key->len;
	}
	return id;
}

/* ---- one record ---- */

static bool is(const char *a, const char *b)
{
	return a && strcmp(a, b) == 0;
}

static bool is_failure(const char *status)
{
	return is(status, "error") || is(status, "timeout");
}

/* A decision on an approval: counted for the request's group, in the decision's hour. */
static int take_decision(struct gh_usage *u, struct pass *p, const struct usage_rec *rec, int64_t t,
			 int64_t bucket, bool approved)
{
	const char *id = nz(rec->approval);
	int64_t dim = -1, req_time = -1;
	if (*id) {
		sqlite3_reset(p->pend_get);
		sqlite3_bind_text(p->pend_get, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(p->pend_get) == SQLITE_ROW) {
			req_time = sqlite3_column_int64(p->pend_get, 0);
			dim = sqlite3_column_int64(p->pend_get, 1);
		}
		sqlite3_reset(p->pend_get);
	}
	if (dim < 0) {
		/* the request is not in the index (older than it keeps): the requester, no app known */
		dim = dim_id(u, p, "", rec->requester ? rec->requester : nz(rec->user), nz(rec->resource),
			     nz(rec->environment));
		if (dim < 0)
			return GH_EIO;
	} else {
		sqlite3_reset(p->pend_del);
		sqlite3_bind_text(p->pend_del, 1, id, -1, SQLITE_STATIC);
		int rc = sqlite3_step(p->pend_del);
		sqlite3_reset(p->pend_del);
		if (rc != SQLITE_DONE)
			return GH_EIO;
	}
	struct counts *c = counts_of(p, bucket, dim);
	if (!c)
		return GH_ENOMEM;
	if (approved) {
		c->approved++;
		if (req_time >= 0 && t >= req_time) {
			c->tta_ms += t - req_time;
			c->tta_n++;
		}
	} else {
		c->rejected++;
	}
	return 0;
}

/* Adds one record to the pass. Records of events that are not about data are ignored. */
static int take(struct gh_usage *u, struct pass *p, const struct usage_rec *rec)
{
	const char *event = rec->event, *status = rec->status;
	bool query = is(event, "query"), request = is(event, "approval.request");
	bool outcome = is(event, "query.outcome"), execute = is(event, "approval.execute");
	bool approve = is(event, "approval.approve") && is(status, "approved");
	bool reject = is(event, "approval.reject") && is(status, "rejected");
	if (!query && !request && !outcome && !execute && !approve && !reject)
		return 0;
	int64_t t;
	if (!rec->time || !usage_parse_rfc3339(rec->time, strlen(rec->time), &t))
		return 0; /* not one of ours; the chain is intact, so the writer put it there */
	int64_t bucket = t >= 0 ? t / GH_USAGE_BUCKET_MS : (t - GH_USAGE_BUCKET_MS + 1) / GH_USAGE_BUCKET_MS;
	p->last_time = t;
	if (approve || reject)
		return take_decision(u, p, rec, t, bucket, approve);
	const char *res = nz(rec->resource);
	int64_t dim = dim_id(u, p, nz(rec->app), nz(rec->user), res, nz(rec->environment));
	if (dim < 0)
		return GH_EIO;
	struct counts *c = counts_of(p, bucket, dim);
	if (!c)
		return GH_ENOMEM;
	int64_t n = rec->has_rows && rec->rows > 0 ? rec->rows : 0;
	if (outcome || execute) {
		c->affected += n;
		c->errors += is_failure(status);
		return 0;
	}
	c->queries++;
	if (query) {
		c->rows += n;
		c->errors += is_failure(status);
		if (is(rec->decision, "deny")) {
			c->denied++;
			if (add_denial(p, bucket, dim, rec->rule && *rec->rule ? rec->rule : "unknown"))
				return GH_ENOMEM;
		}
	} else {
		c->requested++;
		if (rec->approval && *rec->approval) {
			sqlite3_reset(p->pend_put);
			sqlite3_bind_text(p->pend_put, 1, rec->approval, -1, SQLITE_STATIC);
			sqlite3_bind_int64(p->pend_put, 2, t);
			sqlite3_bind_int64(p->pend_put, 3, dim);
			int rc = sqlite3_step(p->pend_put);
			sqlite3_reset(p->pend_put);
			if (rc != SQLITE_DONE)
				return GH_EIO;
		}
	}
	if (rec->statement) {
		int64_t fp = fp_id(u, p, res, rec->statement, strlen(rec->statement));
		if (fp < 0 || add_statement(p, bucket, dim, fp))
			return GH_EIO;
	}
	return 0;
}

/* ---- writing a pass ---- */

struct bentry {
	int64_t bucket;
	struct usage_entry e;
};

struct collect {
	struct bentry *a;
	size_t n;
	int rc;
	struct gh_usage *u;
	struct pass *p;
};

static int bentry_cmp(const void *x, const void *y)
{
	const struct bentry *a = x, *b = y;
	if (a->bucket != b->bucket)
		return a->bucket < b->bucket ? -1 : 1;
	return usage_entry_cmp(&a->e, &b->e);
}

/* The id of a denial rule, made when new. -1 on failure. */
static int64_t rule_id(struct gh_usage *u, const char *rule, size_t len)
{
	void *v = gh_map_get(u->rules, rule, len);
	if (v)
		return (int64_t)(intptr_t)v;
	int64_t id = -1;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(u->db, "INSERT INTO rules (name) VALUES (?1) ON CONFLICT (name) DO UPDATE SET name = name"
				      " RETURNING id", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, rule, (int)len, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			id = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (id >= 0 && gh_map_put(u->rules, rule, len, (void *)(intptr_t)id))
		id = -1;
	return id;
}

static int collect_counts(const char *key, size_t keylen, void *value, void *arg)
{
	struct collect *c = arg;
	const struct counts *x = value;
	struct bentry *b = &c->a[c->n++];
	int64_t k[2];
	memcpy(k, key, sizeof k);
	memset(b, 0, sizeof *b);
	b->bucket = k[0];
	b->e.dim = k[1];
	int64_t v[USAGE_NVALS] = {x->queries, x->rows, x->affected, x->errors, x->denied,
				  x->requested, x->approved, x->rejected, x->tta_ms, x->tta_n};
	memcpy(b->e.v, v, sizeof v);
	return 0;
}

static int collect_denials(const char *key, size_t keylen, void *value, void *arg)
{
	struct collect *c = arg;
	int64_t k[2];
	memcpy(k, key, sizeof k);
	int64_t rule = rule_id(c->u, key + 16, keylen - 16);
	if (rule < 0) {
		c->rc = GH_EIO;
		return 1;
	}
	struct bentry *b = &c->a[c->n++];
	memset(b, 0, sizeof *b);
	b->bucket = k[0];
	b->e.dim = k[1];
	b->e.key = rule;
	b->e.v[0] = *(int64_t *)value;
	return 0;
}

static int collect_stmts(const char *key, size_t keylen, void *value, void *arg)
{
	struct collect *c = arg;
	int64_t k[3];
	memcpy(k, key, sizeof k);
	struct bentry *b = &c->a[c->n++];
	memset(b, 0, sizeof *b);
	b->bucket = k[0];
	b->e.dim = k[1];
	b->e.key = k[2];
	b->e.v[0] = *(int64_t *)value;
	return 0;
}

/* Sums the pass into the buckets it touched: each bucket's blobs are read, merged with the
 * pass's sorted entries and written back. */
static int write_buckets(struct gh_usage *u, struct pass *p, struct gh_error *err)
{
	struct gh_map *maps[3] = {p->counts, p->denials, p->stmts};
	int (*const fn[3])(const char *, size_t, void *, void *) = {collect_counts, collect_denials, collect_stmts};
	struct collect c[3];
	memset(c, 0, sizeof c);
	int rc = 0;
	for (int i = 0; i < 3 && !rc; i++) {
		c[i].u = u;
		c[i].p = p;
		c[i].a = malloc((gh_map_count(maps[i]) + 1) * sizeof *c[i].a);
		if (!c[i].a) {
			rc = gh_error_set(err, GH_ENOMEM, "out of memory");
			break;
		}
		gh_map_each(maps[i], fn[i], &c[i]);
		if (c[i].rc)
			rc = usage_sq_err(u, err, "write rules");
		else
			qsort(c[i].a, c[i].n, sizeof *c[i].a, bentry_cmp);
	}
	sqlite3_stmt *get = NULL, *put = NULL;
	if (!rc && (prep(u, "SELECT counts, denials, stmts FROM buckets WHERE bucket = ?", &get, err) ||
		    prep(u, "INSERT OR REPLACE INTO buckets (bucket, counts, denials, stmts) VALUES (?,?,?,?)", &put, err)))
		rc = GH_EIO;
	size_t at[3] = {0, 0, 0};
	struct usage_entry *add = NULL;
	struct gh_buf blob[3];
	for (int i = 0; i < 3; i++)
		gh_buf_init(&blob[i], (size_t)1 << 30);
	static const enum usage_kind kinds[3] = {USAGE_COUNTS, USAGE_DENIALS, USAGE_STMTS};
	while (!rc) {
		/* the next bucket any of the three holds */
		int64_t b = INT64_MAX;
		for (int i = 0; i < 3; i++)
			if (at[i] < c[i].n && c[i].a[at[i]].bucket < b)
				b = c[i].a[at[i]].bucket;
		if (b == INT64_MAX)
			break;
		sqlite3_reset(get);
		sqlite3_bind_int64(get, 1, b);
		bool found = sqlite3_step(get) == SQLITE_ROW;
		for (int i = 0; i < 3 && !rc; i++) {
			size_t from = at[i];
			while (at[i] < c[i].n && c[i].a[at[i]].bucket == b)
				at[i]++;
			size_t n = at[i] - from;
			struct usage_entry *e = realloc(add, (n + 1) * sizeof *e);
			if (!e) {
				rc = gh_error_set(err, GH_ENOMEM, "out of memory");
				break;
			}
			add = e;
			for (size_t k = 0; k < n; k++)
				add[k] = c[i].a[from + k].e;
			const void *old = found ? sqlite3_column_blob(get, i) : NULL;
			size_t oldlen = found ? (size_t)sqlite3_column_bytes(get, i) : 0;
			gh_buf_reset(&blob[i]);
			int mrc = usage_blob_merge(old, oldlen, add, n, kinds[i], &blob[i]);
			if (mrc == GH_EINVAL)
				rc = gh_error_set(err, GH_EINVAL, "usage index: bucket %lld is damaged", (long long)b);
			else if (mrc)
				rc = gh_error_set(err, GH_ENOMEM, "out of memory");
		}
		sqlite3_reset(get);
		if (rc)
			break;
		sqlite3_reset(put);
		sqlite3_bind_int64(put, 1, b);
		for (int i = 0; i < 3; i++)
			sqlite3_bind_blob(put, i + 2, blob[i].data, (int)blob[i].len, SQLITE_STATIC);
		if (sqlite3_step(put) != SQLITE_DONE)
			rc = usage_sq_err(u, err, "write");
		sqlite3_reset(put);
	}
	sqlite3_finalize(get);
	sqlite3_finalize(put);
	for (int i = 0; i < 3; i++) {
		free(c[i].a);
		gh_buf_free(&blob[i]);
	}
	free(add);
	return rc;
}

static int write_pass(struct gh_usage *u, struct pass *p, struct gh_error *err)
{
	int rc = write_buckets(u, p, err);
	if (rc)
		return rc;
	sqlite3_stmt *st = NULL;
	if (prep(u, "UPDATE meta SET seq = ?, hash = ?, start_off = ?, end_off = ?, last_time_ms = ?", &st, err))
		return GH_EIO;
	sqlite3_bind_int64(st, 1, p->seq);
	sqlite3_bind_text(st, 2, p->hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, p->start);
	sqlite3_bind_int64(st, 4, p->end);
	sqlite3_bind_int64(st, 5, p->last_time);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : usage_sq_err(u, err, "write");
	sqlite3_finalize(st);
	if (rc)
		return rc;
	if (prep(u, "DELETE FROM pending WHERE time_ms < ?", &st, err))
		return GH_EIO;
	sqlite3_bind_int64(st, 1, p->last_time - USAGE_PENDING_KEEP_MS);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : usage_sq_err(u, err, "write");
	sqlite3_finalize(st);
	return rc;
}

/* ---- a pass ---- */

/* True when the log still holds the record the index ends with, at the same place. */
static bool mark_holds(int fd, int64_t size, const struct pass *p)
{
	if (p->seq == 0)
		return p->end == 0;
	int64_t len = p->end - p->start;
	if (p->start < 0 || len < TAIL_LEN + 2 || len > GH_AUDIT_MAX_LINE + 1 || p->end > size)
		return false;
	char *buf = malloc((size_t)len);
	bool ok = false;
	int64_t seq;
	const char *prev, *hash;
	if (buf && pread(fd, buf, (size_t)len, p->start) == len && buf[len - 1] == '\n' &&
	    line_chain(buf, (size_t)len - 1, &seq, &prev, &hash))
		ok = seq == p->seq && memcmp(hash, p->hash, 64) == 0;
	free(buf);
	return ok;
}

static int read_meta(struct gh_usage *u, struct pass *p, int64_t *generation, struct gh_error *err)
{
	sqlite3_stmt *st = NULL;
	if (prep(u, "SELECT generation, seq, hash, start_off, end_off, last_time_ms FROM meta WHERE id = 1", &st, err))
		return GH_EIO;
	int rc = GH_EIO;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*generation = sqlite3_column_int64(st, 0);
		p->seq = sqlite3_column_int64(st, 1);
		snprintf(p->hash, sizeof p->hash, "%s", (const char *)sqlite3_column_text(st, 2));
		p->start = sqlite3_column_int64(st, 3);
		p->end = sqlite3_column_int64(st, 4);
		p->last_time = sqlite3_column_int64(st, 5);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc ? usage_sq_err(u, err, "read mark") : 0;
}

static void pass_free(struct pass *p)
{
	gh_buf_free(&p->key);
	gh_map_free(p->counts);
	gh_map_free(p->denials);
	gh_map_free(p->stmts);
	sqlite3_finalize(p->dim_get);
	sqlite3_finalize(p->dim_put);
	sqlite3_finalize(p->fp_get);
	sqlite3_finalize(p->fp_put);
	sqlite3_finalize(p->pend_put);
	sqlite3_finalize(p->pend_get);
	sqlite3_finalize(p->pend_del);
}

/* One transaction: up to USAGE_PASS_RECORDS records between the mark and size. *more is set
 * when records remain. */
struct readbuf {
	char *data;
	size_t len, cap;
};

static int one_pass(struct gh_usage *u, int fd, int64_t size, int64_t limit, struct gh_usage_stats *stats,
		    bool *more, struct readbuf *rb, struct gh_error *err)
{
	struct pass p;
	memset(&p, 0, sizeof p);
	gh_buf_init(&p.key, (size_t)GH_AUDIT_MAX_LINE);
	*more = false;
	int rc = 0;
	if (usage_exec(u, "BEGIN IMMEDIATE", err))
		return GH_EIO;
	int64_t generation = 0;
	if ((rc = read_meta(u, &p, &generation, err)))
		goto out;
	if (generation != u->generation) {
		/* another process rebuilt the index: ids cached here are void */
		usage_forget(u);
		u->generation = generation;
	}
	if (!mark_holds(fd, size, &p)) {
		if ((rc = usage_reset(u, err)) || (rc = read_meta(u, &p, &u->generation, err)))
			goto out;
		stats->rebuilt = true;
	}
	if (p.end >= size)
		goto out;
	p.nfps = max_rows(u, "SELECT count(*) FROM fingerprints");
	p.counts = gh_map_new(free);
	p.denials = gh_map_new(free);
	p.stmts = gh_map_new(free);
	if (!p.counts || !p.denials || !p.stmts) {
		rc = gh_error_set(err, GH_ENOMEM, "out of memory");
		goto out;
	}
	if (prep(u, "SELECT id FROM dims WHERE app = ? AND user = ? AND resource = ? AND environment = ?", &p.dim_get, err) ||
	    prep(u, "INSERT INTO dims (app, user, resource, environment) VALUES (?,?,?,?)", &p.dim_put, err) ||
	    prep(u, "SELECT id FROM fingerprints WHERE fingerprint = ? AND resource = ?", &p.fp_get, err) ||
	    prep(u, "INSERT INTO fingerprints (fingerprint, resource, example) VALUES (?,?,?)", &p.fp_put, err) ||
	    prep(u, "INSERT OR REPLACE INTO pending VALUES (?,?,?)", &p.pend_put, err) ||
	    prep(u, "SELECT time_ms, dim FROM pending WHERE id = ?", &p.pend_get, err) ||
	    prep(u, "DELETE FROM pending WHERE id = ?", &p.pend_del, err)) {
		rc = GH_EIO;
		goto out;
	}
	int64_t off = p.end; /* file offset of buf's first byte */
	rb->len = 0;
	while (off + (int64_t)rb->len < size && p.records < limit) {
		/* read a block after what the buffer holds */
		int64_t at = off + (int64_t)rb->len;
		size_t want = size - at < USAGE_READ_BLOCK ? (size_t)(size - at) : USAGE_READ_BLOCK;
		if (rb->cap - rb->len < want) {
			size_t cap = rb->len + want;
			char *n = cap <= (size_t)GH_AUDIT_MAX_LINE + USAGE_READ_BLOCK ? realloc(rb->data, cap) : NULL;
			if (!n) {
				rc = gh_error_set(err, GH_EIO, "usage index: an audit record after seq %lld is longer "
						  "than %d bytes", (long long)p.seq, GH_AUDIT_MAX_LINE);
				goto out;
			}
			rb->data = n;
			rb->cap = cap;
		}
		ssize_t got = pread(fd, rb->data + rb->len, want, at);
		if (got <= 0) {
			rc = gh_error_set(err, GH_EIO, "usage index: cannot read the audit log: %s",
					  got < 0 ? strerror(errno) : "it became shorter");
			goto out;
		}
		rb->len += (size_t)got;
		/* take every complete line */
		size_t pos = 0;
		while (p.records < limit) {
			char *nl = memchr(rb->data + pos, '\n', rb->len - pos);
			if (!nl)
				break;
			size_t len = (size_t)(nl - (rb->data + pos));
			const char *line = rb->data + pos;
			int64_t seq;
			const char *prev, *hash;
			char next_hash[65];
			if (!line_chain(line, len, &seq, &prev, &hash) || seq != p.seq + 1 ||
			    (p.seq > 0 && memcmp(prev, p.hash, 64) != 0)) {
				rc = gh_error_set(err, GH_EIO, "usage index: the audit chain is broken after seq %lld "
						  "(gatehouse audit verify names the record)", (long long)p.seq);
				goto out;
			}
			memcpy(next_hash, hash, 64);
			next_hash[64] = '\0';
			/* the chain is read; now the record may be decoded in place */
			struct usage_rec rec;
			int trc = usage_record_parse(rb->data + pos, len, &rec) ? take(u, &p, &rec) : 0;
			if (trc) {
				rc = trc == GH_ENOMEM ? gh_error_set(err, GH_ENOMEM, "out of memory")
						      : usage_sq_err(u, err, "write");
				goto out;
			}
			p.seq = seq;
			memcpy(p.hash, next_hash, 65);
			p.start = off + (int64_t)pos;
			p.end = p.start + (int64_t)len + 1;
			p.records++;
			pos += len + 1;
		}
		/* keep the unfinished line at the front */
		memmove(rb->data, rb->data + pos, rb->len - pos);
		rb->len -= pos;
		off += (int64_t)pos;
		if (rb->len > (size_t)GH_AUDIT_MAX_LINE) {
			rc = gh_error_set(err, GH_EIO, "usage index: an audit record after seq %lld is longer than %d bytes",
					  (long long)p.seq, GH_AUDIT_MAX_LINE);
			goto out;
		}
	}
	if (p.records && (rc = write_pass(u, &p, err)))
		goto out;
	stats->records += p.records;
	*more = p.end < size && p.records > 0 && p.records >= limit;
out:
	stats->seq = p.seq;
	pass_free(&p);
	if (rc) {
		usage_exec(u, "ROLLBACK", NULL);
		/* ids cached during the pass may name rows the rollback removed */
		usage_forget(u);
		return rc;
	}
	return usage_exec(u, "COMMIT", err);
}

int usage_catch_up_some(struct gh_usage *u, int64_t limit, int passes, bool *more, struct gh_usage_stats *stats,
			struct gh_error *err)
{
	uint64_t t0 = gh_mono_us();
	memset(stats, 0, sizeof *stats);
	int fd = open(u->log_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT)
		return gh_error_set(err, GH_EIO, "usage index: %s: %s", u->log_path, strerror(errno));
	int64_t size = 0;
	if (fd >= 0) {
		/* writers hold the lock over write + fdatasync (and the cut-back of a failed write), so
		 * the size seen under it covers durable records only */
		struct stat st;
		flock(fd, LOCK_SH);
		int src = fstat(fd, &st);
		flock(fd, LOCK_UN);
		if (src < 0) {
			close(fd);
			return gh_error_set(err, GH_EIO, "usage index: %s", strerror(errno));
		}
		size = st.st_size;
	}
	struct readbuf rb = {0};
	pthread_mutex_lock(&u->mu);
	usage_policy_refresh(u);
	int rc = 0;
	bool reset_once = false;
	*more = false;
	for (int n = 0;; n++) {
		if (n == passes)
			break; /* *more still says whether the last pass stopped short */
		rc = one_pass(u, fd, size, limit, stats, more, &rb, err);
		if (rc == GH_EINVAL && !reset_once) {
			/* a damaged bucket: the index is derived data, make it again */
			gh_log(GH_LOG_WARN, "%s; rebuilding the usage index", err->message);
			reset_once = true;
			rc = usage_exec(u, "BEGIN IMMEDIATE", err);
			rc = rc ? rc : usage_reset(u, err);
			usage_exec(u, rc ? "ROLLBACK" : "COMMIT", NULL);
			if (rc)
				break;
			stats->rebuilt = true;
			continue;
		}
		if (rc || !*more || u->stop)
			break;
	}
	pthread_mutex_unlock(&u->mu);
	free(rb.data);
	if (fd >= 0)
		close(fd);
	stats->ms = (double)(gh_mono_us() - t0) / 1000.0;
	return rc;
}

int gh_usage_catch_up(struct gh_usage *u, struct gh_usage_stats *stats, struct gh_error *err)
{
	bool more;
	return usage_catch_up_some(u, USAGE_PASS_RECORDS, -1, &more, stats, err);
}
