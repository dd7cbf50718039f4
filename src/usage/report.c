/* usage: reports from the index. One read transaction reads the window's buckets once and sums
 * their packed entries per group in arrays indexed by the groups' ids (the index hands them out
 * densely), keeping only what the caller may see, and writes JSON. */
#include "usage/usage_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sums {
	int64_t queries, rows, affected, errors, denied, requested, approved, rejected, tta_ms, tta_n;
};

struct group {
	char *app, *user, *resource, *env;
	bool visible;
	struct sums s;
	size_t den_first, den_n; /* its denials in the denial array */
};

struct denial {
	int64_t dim;
	char *rule;
	int64_t n;
};

struct top {
	int64_t fp, n;
};

struct report {
	struct gh_usage *u;
	const struct gh_usage_query *q;
	struct group *g;
	int64_t ng;                 /* ids 0..ng-1 */
	struct denial *den;         /* by group, then rule name */
	size_t nden;
	struct top tops[GH_USAGE_MAX_TOP];
	int ntop;
};

static bool visible(const struct gh_usage_query *q, const char *app, const char *user, const char *res,
		    const char *env)
{
	if ((q->app && strcmp(q->app, app) != 0) || (q->user && strcmp(q->user, user) != 0) ||
	    (q->resource && strcmp(q->resource, res) != 0) || (q->environment && strcmp(q->environment, env) != 0))
		return false;
	if (q->all)
		return true;
	if (q->self && strcmp(q->self, user) == 0)
		return true;
	for (size_t i = 0; i < q->nowned; i++)
		if (strcmp(q->owned[i], res) == 0)
			return true;
	return false;
}

static int64_t max_id(struct gh_usage *u, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_prepare_v2(u->db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	const char *t = (const char *)sqlite3_column_text(st, i);
	return gh_strdup(t ? t : "");
}

static int load_groups(struct report *r, struct gh_error *err)
{
	int64_t max = max_id(r->u, "SELECT max(id) FROM dims");
	if (max < 0)
		return usage_sq_err(r->u, err, "read groups");
	r->ng = max + 1;
	r->g = calloc((size_t)r->ng, sizeof *r->g);
	if (!r->g)
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(r->u->db, "SELECT id, app, user, resource, environment FROM dims", -1, &st, NULL) !=
	    SQLITE_OK)
		return usage_sq_err(r->u, err, "read groups");
	int rc = 0, s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		if (id < 0 || id >= r->ng)
			continue;
		struct group *g = &r->g[id];
		g->app = col_dup(st, 1);
		g->user = col_dup(st, 2);
		g->resource = col_dup(st, 3);
		g->env = col_dup(st, 4);
		if (!g->app || !g->user || !g->resource || !g->env) {
			rc = gh_error_set(err, GH_ENOMEM, "out of memory");
			break;
		}
		g->visible = visible(r->q, g->app, g->user, g->resource, g->env);
	}
	if (!rc && s != SQLITE_DONE)
		rc = usage_sq_err(r->u, err, "read groups");
	sqlite3_finalize(st);
	return rc;
}

static bool in_range(const struct report *r, int64_t dim)
{
	return dim >= 0 && dim < r->ng && r->g[dim].visible;
}

/* a + b for values >= 0, at most INT64_MAX (a damaged index must not overflow a sum) */
static int64_t sat_add(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* Denial sums while the buckets are read: (dim, rule id) -> n. */
struct den_sum {
	int64_t dim, rule, n;
};

static int den_collect(const char *key, size_t keylen, void *value, void *arg)
{
	struct {
		struct den_sum *a;
		size_t n;
	} *f = arg;
	f->a[f->n++] = *(struct den_sum *)value;
	return 0;
}

static int den_cmp(const void *x, const void *y, void *arg)
{
	const struct den_sum *a = x, *b = y;
	char **names = arg;
	if (a->dim != b->dim)
		return a->dim < b->dim ? -1 : 1;
	return strcmp(names[a->rule], names[b->rule]);
}

/* Reads every bucket of the window once: counts into the groups, denials into r->den, and
 * statements into acc[fp] (when acc is given). */
static int scan_buckets(struct report *r, int64_t b0, int64_t b1, int64_t *acc, int64_t maxfp, struct gh_error *err)
{
	int64_t maxrule = max_id(r->u, "SELECT max(id) FROM rules");
	if (maxrule < 0)
		return usage_sq_err(r->u, err, "read rules");
	char **names = calloc((size_t)maxrule + 1, sizeof *names);
	struct gh_map *den = gh_map_new(free);
	sqlite3_stmt *st = NULL;
	int rc = 0, s;
	if (!names || !den) {
		rc = gh_error_set(err, GH_ENOMEM, "out of memory");
		goto out;
	}
	if (sqlite3_prepare_v2(r->u->db, "SELECT id, name FROM rules", -1, &st, NULL) != SQLITE_OK) {
		rc = usage_sq_err(r->u, err, "read rules");
		goto out;
	}
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		if (id >= 0 && id <= maxrule && !names[id] && !(names[id] = col_dup(st, 1))) {
			rc = gh_error_set(err, GH_ENOMEM, "out of memory");
			goto out;
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(r->u->db, "SELECT bucket, counts, denials, stmts FROM buckets WHERE bucket BETWEEN ?1 AND ?2",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = usage_sq_err(r->u, err, "read buckets");
		goto out;
	}
	sqlite3_bind_int64(st, 1, b0);
	sqlite3_bind_int64(st, 2, b1);
	static const enum usage_kind kinds[3] = {USAGE_COUNTS, USAGE_DENIALS, USAGE_STMTS};
	while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
		for (int i = 0; i < 3 && !rc; i++) {
			if (i == 2 && !acc)
				break;
			struct usage_blob_iter it;
			struct usage_entry e;
			int got;
			if (usage_blob_start(&it, sqlite3_column_blob(st, i + 1), (size_t)sqlite3_column_bytes(st, i + 1),
					     kinds[i])) {
				rc = GH_EINVAL;
				break;
			}
			while ((got = usage_blob_next(&it, &e)) == 1) {
				if (!in_range(r, e.dim))
					continue;
				if (i == 0) {
					struct sums *x = &r->g[e.dim].s;
					int64_t *f[] = {&x->queries, &x->rows, &x->affected, &x->errors, &x->denied,
							&x->requested, &x->approved, &x->rejected, &x->tta_ms, &x->tta_n};
					for (int k = 0; k < USAGE_NVALS; k++)
						*f[k] = sat_add(*f[k], e.v[k]);
				} else if (i == 1) {
					if (e.key > maxrule || !names[e.key]) {
						got = GH_EINVAL;
						break;
					}
					int64_t key[2] = {e.dim, e.key};
					struct den_sum *d = gh_map_get(den, (const char *)key, sizeof key);
					if (!d) {
						d = calloc(1, sizeof *d);
						if (!d || gh_map_put(den, (const char *)key, sizeof key, d)) {
							free(d);
							got = GH_ENOMEM;
							break;
						}
						d->dim = e.dim;
						d->rule = e.key;
					}
					d->n = sat_add(d->n, e.v[0]);
				} else if (e.key <= maxfp) {
					acc[e.key] = sat_add(acc[e.key], e.v[0]);
				}
			}
			if (got < 0)
				rc = got;
		}
	}
	if (rc == GH_EINVAL)
		rc = gh_error_set(err, GH_EINVAL, "usage index: a bucket is damaged (the next catch-up rebuilds it)");
	else if (rc)
		rc = gh_error_set(err, GH_ENOMEM, "out of memory");
	else if (s != SQLITE_DONE)
		rc = usage_sq_err(r->u, err, "read buckets");
	if (rc)
		goto out;
	/* denials, in group order then rule name, with each group's slice */
	size_t nd = gh_map_count(den);
	struct den_sum *all = malloc((nd + 1) * sizeof *all);
	r->den = calloc(nd + 1, sizeof *r->den);
	if (!all || !r->den) {
		free(all);
		rc = gh_error_set(err, GH_ENOMEM, "out of memory");
		goto out;
	}
	struct {
		struct den_sum *a;
		size_t n;
	} fill = {all, 0};
	gh_map_each(den, den_collect, &fill);
	qsort_r(all, fill.n, sizeof *all, den_cmp, names);
	for (size_t i = 0; i < fill.n && !rc; i++) {
		struct denial *d = &r->den[r->nden];
		d->dim = all[i].dim;
		d->n = all[i].n;
		if (!(d->rule = gh_strdup(names[all[i].rule]))) {
			rc = gh_error_set(err, GH_ENOMEM, "out of memory");
			break;
		}
		struct group *g = &r->g[d->dim];
		if (!g->den_n)
			g->den_first = r->nden;
		g->den_n++;
		r->nden++;
	}
	free(all);
out:
	sqlite3_finalize(st);
	gh_map_free(den);
	if (names)
		for (int64_t i = 0; i <= maxrule; i++)
			free(names[i]);
	free(names);
	return rc;
}

/* The q->top fingerprints with the most statements in the window among visible groups, from
 * acc (indexed by fingerprint id). */
static void top_statements(struct report *r, const int64_t *acc, int64_t max)
{
	int want = r->q->top > GH_USAGE_MAX_TOP ? GH_USAGE_MAX_TOP : r->q->top;
	for (int64_t fp = 0; want > 0 && fp <= max; fp++) {
		if (!acc[fp])
			continue;
		/* insertion into the sorted list: most first, then the older fingerprint */
		int at = r->ntop;
		while (at > 0 && r->tops[at - 1].n < acc[fp])
			at--;
		if (at >= want)
			continue;
		int last = r->ntop < want ? r->ntop : want - 1;
		memmove(&r->tops[at + 1], &r->tops[at], (size_t)(last - at) * sizeof *r->tops);
		r->tops[at] = (struct top){fp, acc[fp]};
		if (r->ntop < want)
			r->ntop++;
	}
}

static void put_name(struct gh_buf *b, const char *key, const char *v)
{
	gh_buf_printf(b, "\"%s\":", key);
	if (*v)
		gh_buf_json_string(b, v, strlen(v));
	else
		gh_buf_puts(b, "null");
}

static void put_sums(struct gh_buf *b, const struct sums *s)
{
	gh_buf_printf(b, "\"queries\":%lld,\"rows\":%lld,\"rows_affected\":%lld,\"errors\":%lld,\"denied\":%lld",
		      (long long)s->queries, (long long)s->rows, (long long)s->affected, (long long)s->errors,
		      (long long)s->denied);
}

static void put_approvals(struct gh_buf *b, const struct sums *s)
{
	gh_buf_printf(b, "\"approvals\":{\"requested\":%lld,\"approved\":%lld,\"rejected\":%lld,"
		      "\"avg_time_to_approve_s\":",
		      (long long)s->requested, (long long)s->approved, (long long)s->rejected);
	if (s->tta_n)
		gh_buf_printf(b, "%.3f}", (double)s->tta_ms / (double)s->tta_n / 1000.0);
	else
		gh_buf_puts(b, "null}");
}

static int by_queries(const void *a, const void *b, void *arg)
{
	const struct report *r = arg;
	const struct group *x = &r->g[*(const int64_t *)a], *y = &r->g[*(const int64_t *)b];
	if (x->s.queries != y->s.queries)
		return x->s.queries > y->s.queries ? -1 : 1;
	int c = strcmp(x->user, y->user);
	c = c ? c : strcmp(x->app, y->app);
	c = c ? c : strcmp(x->resource, y->resource);
	return c ? c : strcmp(x->env, y->env);
}

static int by_rule(const void *a, const void *b)
{
	return strcmp(((const struct denial *)a)->rule, ((const struct denial *)b)->rule);
}

static bool active(const struct sums *s)
{
	return s->queries || s->rows || s->affected || s->errors || s->denied || s->requested || s->approved ||
	       s->rejected;
}

/* Writes the document's members from the sums (inside the read transaction: the top
 * fingerprints' texts are read here). */
static int write_report(struct report *r, int64_t b0, int64_t b1, struct gh_buf *out, int64_t *ngroups,
			struct gh_error *err)
{
	char t0[40], t1[40];
	gh_time_rfc3339(b0 * GH_USAGE_BUCKET_MS, t0, sizeof t0);
	gh_time_rfc3339((b1 + 1) * GH_USAGE_BUCKET_MS, t1, sizeof t1);
	gh_buf_printf(out, "\"since\":\"%s\",\"until\":\"%s\",\"bucket_s\":%lld,\"groups\":[", t0, t1,
		      (long long)(GH_USAGE_BUCKET_MS / 1000));
	int64_t *order = malloc((size_t)(r->ng ? r->ng : 1) * sizeof *order);
	struct denial *tot = malloc((r->nden ? r->nden : 1) * sizeof *tot);
	if (!order || !tot) {
		free(order);
		free(tot);
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	}
	int64_t n = 0;
	struct sums all = {0};
	for (int64_t i = 0; i < r->ng; i++)
		if (r->g[i].visible && active(&r->g[i].s))
			order[n++] = i;
	qsort_r(order, (size_t)n, sizeof *order, by_queries, r);
	int64_t limit = r->q->limit > 0 ? r->q->limit : GH_USAGE_DEFAULT_GROUPS;
	if (limit > GH_USAGE_MAX_GROUPS)
		limit = GH_USAGE_MAX_GROUPS;
	int64_t shown = n < limit ? n : limit;
	for (int64_t k = 0; k < n; k++) {
		const struct group *g = &r->g[order[k]];
		int64_t *a[] = {&all.queries, &all.rows, &all.affected, &all.errors, &all.denied, &all.requested,
				&all.approved, &all.rejected, &all.tta_ms, &all.tta_n};
		const int64_t *b[] = {&g->s.queries, &g->s.rows, &g->s.affected, &g->s.errors, &g->s.denied,
				      &g->s.requested, &g->s.approved, &g->s.rejected, &g->s.tta_ms, &g->s.tta_n};
		for (int i = 0; i < 10; i++)
			*a[i] = sat_add(*a[i], *b[i]);
		if (k >= shown)
			continue;
		gh_buf_puts(out, k ? ",{" : "{");
		put_name(out, "app", g->app);
		gh_buf_puts(out, ",");
		put_name(out, "user", g->user);
		gh_buf_puts(out, ",");
		put_name(out, "resource", g->resource);
		gh_buf_puts(out, ",");
		put_name(out, "environment", g->env);
		gh_buf_puts(out, ",");
		put_sums(out, &g->s);
		gh_buf_puts(out, ",\"denials\":{");
		for (size_t d = 0; d < g->den_n; d++) {
			const struct denial *x = &r->den[g->den_first + d];
			if (d)
				gh_buf_puts(out, ",");
			gh_buf_json_string(out, x->rule, strlen(x->rule));
			gh_buf_printf(out, ":%lld", (long long)x->n);
		}
		gh_buf_puts(out, "},");
		put_approvals(out, &g->s);
		gh_buf_puts(out, "}");
	}
	/* totals: over every visible group, listed or not */
	gh_buf_puts(out, "],\"totals\":{");
	put_sums(out, &all);
	gh_buf_puts(out, ",\"denials\":{");
	memcpy(tot, r->den, r->nden * sizeof *tot);
	qsort(tot, r->nden, sizeof *tot, by_rule);
	size_t w = 0;
	for (size_t i = 0; i < r->nden; i++) {
		if (w && strcmp(tot[w - 1].rule, tot[i].rule) == 0)
			tot[w - 1].n = sat_add(tot[w - 1].n, tot[i].n);
		else
			tot[w++] = tot[i];
	}
	for (size_t i = 0; i < w; i++) {
		if (i)
			gh_buf_puts(out, ",");
		gh_buf_json_string(out, tot[i].rule, strlen(tot[i].rule));
		gh_buf_printf(out, ":%lld", (long long)tot[i].n);
	}
	gh_buf_puts(out, "},");
	put_approvals(out, &all);
	gh_buf_puts(out, "},\"top_statements\":[");
	free(order);
	free(tot);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(r->u->db, "SELECT fingerprint, resource, example FROM fingerprints WHERE id = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return usage_sq_err(r->u, err, "read statements");
	for (int i = 0, listed = 0; i < r->ntop; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, r->tops[i].fp);
		if (sqlite3_step(st) != SQLITE_ROW)
			continue;
		const char *fp = (const char *)sqlite3_column_text(st, 0);
		const char *res = (const char *)sqlite3_column_text(st, 1);
		const char *ex = (const char *)sqlite3_column_text(st, 2);
		gh_buf_puts(out, listed++ ? ",{\"fingerprint\":" : "{\"fingerprint\":");
		gh_buf_json_string(out, fp ? fp : "", fp ? strlen(fp) : 0);
		gh_buf_puts(out, ",\"example\":");
		gh_buf_json_string(out, ex ? ex : "", ex ? strlen(ex) : 0);
		gh_buf_printf(out, ",\"count\":%lld,", (long long)r->tops[i].n);
		put_name(out, "resource", res ? res : "");
		gh_buf_puts(out, "}");
	}
	sqlite3_finalize(st);
	if (gh_buf_printf(out, "],\"groups_total\":%lld,\"truncated\":%s", (long long)n, n > shown ? "true" : "false"))
		return gh_error_set(err, GH_ETOOBIG, "the report is too large");
	if (ngroups)
		*ngroups = shown;
	return 0;
}

int gh_usage_report(struct gh_usage *u, const struct gh_usage_query *q, struct gh_buf *out, int64_t *ngroups,
		    struct gh_error *err)
{
	if (q->since_ms >= q->until_ms)
		return gh_error_set(err, GH_EINVAL, "since must be before until");
	int64_t H = GH_USAGE_BUCKET_MS;
	int64_t b0 = q->since_ms >= 0 ? q->since_ms / H : (q->since_ms - H + 1) / H;
	int64_t e = q->until_ms - 1;
	int64_t b1 = e >= 0 ? e / H : (e - H + 1) / H;
	struct report r = {.u = u, .q = q};
	pthread_mutex_lock(&u->mu);
	int rc = usage_exec(u, "BEGIN", err);
	int64_t *acc = NULL, maxfp = -1;
	if (!rc) {
		rc = load_groups(&r, err);
		if (!rc && q->top > 0) {
			maxfp = max_id(u, "SELECT max(id) FROM fingerprints");
			if (maxfp < 0)
				rc = usage_sq_err(u, err, "read statements");
			else if (!(acc = calloc((size_t)maxfp + 1, sizeof *acc)))
				rc = gh_error_set(err, GH_ENOMEM, "out of memory");
		}
		rc = rc ? rc : scan_buckets(&r, b0, b1, acc, maxfp, err);
		if (!rc && acc)
			top_statements(&r, acc, maxfp);
		rc = rc ? rc : write_report(&r, b0, b1, out, ngroups, err);
		usage_exec(u, rc ? "ROLLBACK" : "COMMIT", NULL);
	}
	free(acc);
	pthread_mutex_unlock(&u->mu);
	for (int64_t i = 0; i < r.ng; i++) {
		free(r.g[i].app);
		free(r.g[i].user);
		free(r.g[i].resource);
		free(r.g[i].env);
	}
	free(r.g);
	for (size_t i = 0; i < r.nden; i++)
		free(r.den[i].rule);
	free(r.den);
	return rc;
}
