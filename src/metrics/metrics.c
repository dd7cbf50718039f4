/* metrics: the registry and the Prometheus text renderer (exposition format 0.0.4). */
#include "metrics/metrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gh_metrics_family {
	char *name, *help;
	enum gh_metrics_type type;
	size_t nlabels;
	char *label_names[GH_METRICS_MAX_LABELS];
	/* counters and histograms: the closed value set of each label */
	const char *const *values[GH_METRICS_MAX_LABELS];
	size_t nvalues[GH_METRICS_MAX_LABELS];
	size_t nseries;
	_Atomic uint64_t *counts;   /* counter: one per series */
	uint64_t bounds_us[GH_METRICS_MAX_BUCKETS];
	size_t nbounds;
	_Atomic uint64_t *buckets;  /* histogram: (nbounds + 1) per series, not cumulative; the last
				     * one holds observations above every bound */
	_Atomic uint64_t *sums_us;  /* histogram: one per series */
	/* callback families */
	gh_metrics_collect_fn fn;
	void *arg;
};

struct gh_metrics {
	struct gh_metrics_family *fam[GH_METRICS_MAX_FAMILIES];
	_Atomic size_t n;  /* published with release after fam[n] is set: a render may run meanwhile */
};

struct gh_metrics_out {
	const struct gh_metrics_family *f;
	struct gh_buf *b;
	int rc;
};

struct gh_metrics *gh_metrics_new(void)
{
	return calloc(1, sizeof(struct gh_metrics));
}

static void family_free(struct gh_metrics_family *f)
{
	if (!f)
		return;
	free(f->name);
	free(f->help);
	for (size_t i = 0; i < GH_METRICS_MAX_LABELS; i++)
		free(f->label_names[i]);
	free(f->counts);
	free(f->buckets);
	free(f->sums_us);
	free(f);
}

void gh_metrics_free(struct gh_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		family_free(m->fam[i]);
	free(m);
}

/* ---------------------------------------------------------------- registration */

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names: [a-zA-Z_][a-zA-Z0-9_]*, and names
 * beginning with "__" are reserved for Prometheus itself. */
static bool valid_name(const char *z, bool label)
{
	if (!z || !*z || strlen(z) > 200)
		return false;
	if (label && z[0] == '_' && z[1] == '_')
		return false;
	for (const char *p = z; *p; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':') ||
			  (p != z && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

static bool ends_with(const char *z, const char *base, const char *suffix)
{
	size_t n = strlen(base), s = strlen(suffix);
	return strlen(z) == n + s && strncmp(z, base, n) == 0 && strcmp(z + n, suffix) == 0;
}

/* True when a family named name (a histogram when hist) would print a sample name that f
 * prints too. */
static bool collides(const struct gh_metrics_family *f, const char *name, bool hist)
{
	static const char *const sfx[] = {"_bucket", "_sum", "_count"};
	if (strcmp(f->name, name) == 0)
		return true;
	for (size_t i = 0; i < 3; i++)
		if ((f->type == GH_METRICS_HISTOGRAM && ends_with(name, f->name, sfx[i])) ||
		    (hist && ends_with(f->name, name, sfx[i])))
			return true;
	return false;
}

/* A new family with its name, help and label names checked and copied; NULL on any error. */
static struct gh_metrics_family *family_new(struct gh_metrics *m, const char *name, const char *help,
					    enum gh_metrics_type type, const char *const *label_names,
					    size_t nlabels)
{
	if (!m || m->n >= GH_METRICS_MAX_FAMILIES || !valid_name(name, false) || !help ||
	    nlabels > GH_METRICS_MAX_LABELS)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		if (collides(m->fam[i], name, type == GH_METRICS_HISTOGRAM))
			return NULL;
	for (size_t i = 0; i < nlabels; i++) {
		if (!valid_name(label_names[i], true) ||
		    (type == GH_METRICS_HISTOGRAM && strcmp(label_names[i], "le") == 0))
			return NULL;
		for (size_t j = 0; j < i; j++)
			if (strcmp(label_names[i], label_names[j]) == 0)
				return NULL;
	}
	struct gh_metrics_family *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->type = type;
	f->nlabels = nlabels;
	f->name = gh_strdup(name);
	f->help = gh_strdup(help);
	bool oom = !f->name || !f->help;
	for (size_t i = 0; i < nlabels && !oom; i++)
		oom = !(f->label_names[i] = gh_strdup(label_names[i]));
	if (oom) {
		family_free(f);
		return NULL;
	}
	return f;
}

/* Checks the labels' value sets and sizes the family's series; false when invalid. */
static bool family_values(struct gh_metrics_family *f, const struct gh_metrics_label *labels)
{
	size_t n = 1;
	for (size_t i = 0; i < f->nlabels; i++) {
		const char *const *v = labels[i].values;
		size_t k = 0;
		if (!v)
			return false;
		for (; v[k]; k++) {
			if (!*v[k])
				return false; /* an empty value would read as the label being absent */
			for (size_t j = 0; j < k; j++)
				if (strcmp(v[j], v[k]) == 0)
					return false;
		}
		if (k == 0 || k > GH_METRICS_MAX_SERIES / n)
			return false;
		n *= k;
		f->values[i] = v;
		f->nvalues[i] = k;
	}
	f->nseries = n;
	return true;
}

static struct gh_metrics_family *declare(struct gh_metrics *m, const char *name, const char *help,
					 enum gh_metrics_type type, const struct gh_metrics_label *labels,
					 size_t nlabels)
{
	const char *names[GH_METRICS_MAX_LABELS];
	if (nlabels > GH_METRICS_MAX_LABELS || (nlabels && !labels))
		return NULL;
	for (size_t i = 0; i < nlabels; i++)
		names[i] = labels[i].name;
	struct gh_metrics_family *f = family_new(m, name, help, type, names, nlabels);
	if (f && !family_values(f, labels)) {
		family_free(f);
		return NULL;
	}
	return f;
}

static struct gh_metrics_family *add(struct gh_metrics *m, struct gh_metrics_family *f)
{
	size_t n = atomic_load_explicit(&m->n, memory_order_relaxed);
	m->fam[n] = f;
	atomic_store_explicit(&m->n, n + 1, memory_order_release);
	return f;
}

struct gh_metrics_family *gh_metrics_counter(struct gh_metrics *m, const char *name, const char *help,
					     const struct gh_metrics_label *labels, size_t nlabels)
{
	struct gh_metrics_family *f = declare(m, name, help, GH_METRICS_COUNTER, labels, nlabels);
	if (!f)
		return NULL;
	if (!(f->counts = malloc(f->nseries * sizeof *f->counts))) {
		family_free(f);
		return NULL;
	}
	for (size_t i = 0; i < f->nseries; i++)
		atomic_init(&f->counts[i], 0);
	return add(m, f);
}

struct gh_metrics_family *gh_metrics_histogram(struct gh_metrics *m, const char *name, const char *help,
					       const struct gh_metrics_label *labels, size_t nlabels,
					       const uint64_t *bounds_us, size_t nbounds)
{
	if (!bounds_us || nbounds == 0 || nbounds > GH_METRICS_MAX_BUCKETS)
		return NULL;
	for (size_t i = 1; i < nbounds; i++)
		if (bounds_us[i] <= bounds_us[i - 1])
			return NULL;
	struct gh_metrics_family *f = declare(m, name, help, GH_METRICS_HISTOGRAM, labels, nlabels);
	if (!f)
		return NULL;
	memcpy(f->bounds_us, bounds_us, nbounds * sizeof *bounds_us);
	f->nbounds = nbounds;
	size_t nb = f->nseries * (nbounds + 1);
	f->buckets = malloc(nb * sizeof *f->buckets);
	f->sums_us = malloc(f->nseries * sizeof *f->sums_us);
	if (!f->buckets || !f->sums_us) {
		family_free(f);
		return NULL;
	}
	for (size_t i = 0; i < nb; i++)
		atomic_init(&f->buckets[i], 0);
	for (size_t i = 0; i < f->nseries; i++)
		atomic_init(&f->sums_us[i], 0);
	return add(m, f);
}

int gh_metrics_callback(struct gh_metrics *m, const char *name, const char *help, enum gh_metrics_type type,
			const char *const *label_names, gh_metrics_collect_fn fn, void *arg)
{
	size_t n = 0;
	while (label_names && label_names[n])
		if (++n > GH_METRICS_MAX_LABELS)
			return GH_ETOOBIG;
	if (!fn || (type != GH_METRICS_COUNTER && type != GH_METRICS_GAUGE))
		return GH_EINVAL;
	if (!m || m->n >= GH_METRICS_MAX_FAMILIES)
		return GH_ETOOBIG;
	for (size_t i = 0; i < m->n; i++)
		if (name && collides(m->fam[i], name, false))
			return GH_EEXIST;
	struct gh_metrics_family *f = family_new(m, name, help, type, label_names, n);
	if (!f)
		return GH_EINVAL;
	f->fn = fn;
	f->arg = arg;
	add(m, f);
	return 0;
}

size_t gh_metrics_value_index(const struct gh_metrics_label *label, const char *value, size_t fallback)
{
	for (size_t i = 0; value && label->values[i]; i++)
		if (strcmp(label->values[i], value) == 0)
			return i;
	return fallback;
}

/* ---------------------------------------------------------------- updates */

/* The series of idx, or SIZE_MAX when an index is out of range. */
static size_t series_of(const struct gh_metrics_family *f, const size_t *idx)
{
	size_t s = 0;
	for (size_t i = 0; i < f->nlabels; i++) {
		if (!idx || idx[i] >= f->nvalues[i])
			return SIZE_MAX; /* a caller's bug; metrics never stop the server */
		s = s * f->nvalues[i] + idx[i];
	}
	return s;
}

void gh_metrics_add(struct gh_metrics_family *f, const size_t *idx, uint64_t n)
{
	size_t s;
	if (!f || f->type != GH_METRICS_COUNTER || (s = series_of(f, idx)) == SIZE_MAX)
		return;
	atomic_fetch_add_explicit(&f->counts[s], n, memory_order_relaxed);
}

void gh_metrics_observe_us(struct gh_metrics_family *f, const size_t *idx, uint64_t us)
{
	size_t s;
	if (!f || f->type != GH_METRICS_HISTOGRAM || (s = series_of(f, idx)) == SIZE_MAX)
		return;
	size_t b = 0;
	while (b < f->nbounds && us > f->bounds_us[b])
		b++;
	atomic_fetch_add_explicit(&f->sums_us[s], us, memory_order_relaxed);
	atomic_fetch_add_explicit(&f->buckets[s * (f->nbounds + 1) + b], 1, memory_order_relaxed);
}

uint64_t gh_metrics_value(const struct gh_metrics_family *f, const size_t *idx)
{
	size_t s;
	if (!f || f->fn || (s = series_of(f, idx)) == SIZE_MAX)
		return 0;
	if (f->type == GH_METRICS_COUNTER)
		return atomic_load_explicit(&f->counts[s], memory_order_relaxed);
	uint64_t n = 0;
	for (size_t b = 0; b <= f->nbounds; b++)
		n += atomic_load_explicit(&f->buckets[s * (f->nbounds + 1) + b], memory_order_relaxed);
	return n;
}

/* ---------------------------------------------------------------- rendering */

/* HELP text: backslash and newline escaped. */
static int put_help(struct gh_buf *b, const char *z)
{
	int rc = 0;
	for (const char *p = z; *p && !rc; p++)
		rc = *p == '\\' ? gh_buf_puts(b, "\\\\") : *p == '\n' ? gh_buf_puts(b, "\\n") : gh_buf_append(b, p, 1);
	return rc;
}

/* A label value: backslash, double quote and newline escaped. */
static int put_label_value(struct gh_buf *b, const char *z)
{
	int rc = gh_buf_puts(b, "\"");
	for (const char *p = z; *p && !rc; p++)
		rc = *p == '\\' ? gh_buf_puts(b, "\\\\")
		     : *p == '"' ? gh_buf_puts(b, "\\\"")
		     : *p == '\n' ? gh_buf_puts(b, "\\n")
				  : gh_buf_append(b, p, 1);
	return rc ? rc : gh_buf_puts(b, "\"");
}

/* {a="x",b="y"[,le="..."]} or nothing when there are no labels and no le. */
static int put_labels(struct gh_buf *b, const struct gh_metrics_family *f, const char *const *values,
		      const char *le)
{
	if (!f->nlabels && !le)
		return 0;
	int rc = gh_buf_puts(b, "{");
	for (size_t i = 0; i < f->nlabels && !rc; i++) {
		rc = gh_buf_printf(b, "%s%s=", i ? "," : "", f->label_names[i]);
		rc = rc ? rc : put_label_value(b, values[i]);
	}
	if (!rc && le)
		rc = gh_buf_printf(b, "%sle=\"%s\"", f->nlabels ? "," : "", le);
	return rc ? rc : gh_buf_puts(b, "}");
}

/* Microseconds as exact decimal seconds: 2500000 -> "2.5", 25 -> "0.000025". */
static void fmt_seconds(uint64_t us, char *out, size_t n)
{
	uint64_t sec = us / 1000000u, frac = us % 1000000u;
	if (!frac) {
		snprintf(out, n, "%llu", (unsigned long long)sec);
		return;
	}
	int digits = 6;
	while (frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	snprintf(out, n, "%llu.%0*llu", (unsigned long long)sec, digits, (unsigned long long)frac);
}

/* A sample value as Prometheus parses it: integers plainly, NaN and infinities by name. */
static void fmt_value(double v, char *out, size_t n)
{
	if (isnan(v))
		snprintf(out, n, "NaN");
	else if (isinf(v))
		snprintf(out, n, "%s", v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		snprintf(out, n, "%lld", (long long)v);
	else
		snprintf(out, n, "%.17g", v);
}

static int put_sample(struct gh_buf *b, const struct gh_metrics_family *f, const char *suffix,
		      const char *const *values, const char *le, const char *value)
{
	int rc = gh_buf_printf(b, "%s%s", f->name, suffix);
	rc = rc ? rc : put_labels(b, f, values, le);
	return rc ? rc : gh_buf_printf(b, " %s\n", value);
}

/* The label values of series s (row-major, the last label varying fastest). */
static void series_values(const struct gh_metrics_family *f, size_t s, const char **values)
{
	for (size_t i = f->nlabels; i-- > 0;) {
		values[i] = f->values[i][s % f->nvalues[i]];
		s /= f->nvalues[i];
	}
}

static int render_counter(struct gh_buf *b, const struct gh_metrics_family *f)
{
	int rc = 0;
	for (size_t s = 0; s < f->nseries && !rc; s++) {
		uint64_t v = atomic_load_explicit(&f->counts[s], memory_order_relaxed);
		if (f->nlabels && v == 0)
			continue;
		const char *values[GH_METRICS_MAX_LABELS];
		char num[32];
		series_values(f, s, values);
		snprintf(num, sizeof num, "%llu", (unsigned long long)v);
		rc = put_sample(b, f, "", values, NULL, num);
	}
	return rc;
}

static int render_histogram(struct gh_buf *b, const struct gh_metrics_family *f)
{
	int rc = 0;
	size_t nb = f->nbounds + 1;
	for (size_t s = 0; s < f->nseries && !rc; s++) {
		/* One read per bucket; the count is their sum, so _count always equals +Inf. */
		uint64_t cum[GH_METRICS_MAX_BUCKETS + 1], total = 0;
		for (size_t i = 0; i < nb; i++) {
			total += atomic_load_explicit(&f->buckets[s * nb + i], memory_order_relaxed);
			cum[i] = total;
		}
		uint64_t sum = atomic_load_explicit(&f->sums_us[s], memory_order_relaxed);
		if (f->nlabels && total == 0)
			continue;
		const char *values[GH_METRICS_MAX_LABELS];
		char le[32], num[32];
		series_values(f, s, values);
		for (size_t i = 0; i < nb && !rc; i++) {
			if (i < f->nbounds)
				fmt_seconds(f->bounds_us[i], le, sizeof le);
			else
				snprintf(le, sizeof le, "+Inf");
			snprintf(num, sizeof num, "%llu", (unsigned long long)cum[i]);
			rc = put_sample(b, f, "_bucket", values, le, num);
		}
		fmt_seconds(sum, num, sizeof num);
		rc = rc ? rc : put_sample(b, f, "_sum", values, NULL, num);
		snprintf(num, sizeof num, "%llu", (unsigned long long)total);
		rc = rc ? rc : put_sample(b, f, "_count", values, NULL, num);
	}
	return rc;
}

void gh_metrics_emit(struct gh_metrics_out *out, const char *const *label_values, double value)
{
	const struct gh_metrics_family *f = out->f;
	size_t n = 0;
	while (label_values && label_values[n])
		n++;
	if (out->rc || n != f->nlabels)
		return;
	char num[40];
	fmt_value(value, num, sizeof num);
	out->rc = put_sample(out->b, f, "", label_values, NULL, num);
}

int gh_metrics_render(struct gh_metrics *m, void *scrape, struct gh_buf *b)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	struct gh_buf page;
	gh_buf_init(&page, GH_METRICS_MAX_PAGE);
	int rc = 0;
	size_t n = atomic_load_explicit(&m->n, memory_order_acquire);
	for (size_t i = 0; i < n && !rc; i++) {
		const struct gh_metrics_family *f = m->fam[i];
		rc = gh_buf_printf(&page, "# HELP %s ", f->name);
		rc = rc ? rc : put_help(&page, f->help);
		rc = rc ? rc : gh_buf_printf(&page, "\n# TYPE %s %s\n", f->name, types[f->type]);
		if (rc)
			break;
		if (f->fn) {
			struct gh_metrics_out out = {f, &page, 0};
			f->fn(f->arg, scrape, &out);
			rc = out.rc;
		} else if (f->type == GH_METRICS_COUNTER) {
			rc = render_counter(&page, f);
		} else {
			rc = render_histogram(&page, f);
		}
	}
	if (!rc)
		rc = gh_buf_append(b, page.data ? page.data : "", page.len);
	gh_buf_free(&page);
	return rc;
}
