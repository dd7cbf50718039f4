/* metrics: a registry of counters and histograms with fixed label sets, updated lock-free from
 * any thread, and families computed at scrape time by callbacks; rendered in the Prometheus
 * text exposition format 0.0.4.
 *
 * Cardinality is bounded by construction: a counter or histogram declares each label with the
 * closed list of values it may take, and a series is addressed by one index per label, so a
 * label value can never come from a request. Callback families emit their own label values:
 * those must come from the configuration (sink names, say), never from callers' input.
 *
 * Threads: one thread registers (registration is not thread-safe against itself; a family
 * registered while another thread renders is published whole, so late registration by the
 * start-up thread is fine); updates and renders may run on any threads at once. A render sees
 * each counter as it was at some instant, and each histogram series consistent with itself
 * (its _count is its +Inf bucket). Families are never removed before gh_metrics_free. */
#ifndef GH_METRICS_H
#define GH_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

enum gh_metrics_type { GH_METRICS_COUNTER, GH_METRICS_GAUGE, GH_METRICS_HISTOGRAM };

/* A label and the closed set of values it may take (NULL-terminated). */
struct gh_metrics_label {
	const char *name;
	const char *const *values;
};

struct gh_metrics;
struct gh_metrics_family;
struct gh_metrics_out;

struct gh_metrics *gh_metrics_new(void);
void gh_metrics_free(struct gh_metrics *m);

/* Registers a counter family: one series per combination of label values (0 to
 * GH_METRICS_MAX_LABELS labels; each label's value list is kept by pointer and must outlive the
 * registry). Returns NULL for an invalid or duplicate name, an invalid label, too many series,
 * or no memory. */
struct gh_metrics_family *gh_metrics_counter(struct gh_metrics *m, const char *name, const char *help,
					     const struct gh_metrics_label *labels, size_t nlabels);

/* Registers a histogram family. bounds_us: the buckets' upper bounds in microseconds, strictly
 * increasing (at most GH_METRICS_MAX_BUCKETS; +Inf is implied); rendered in seconds, as
 * Prometheus expects of durations. No label may be named "le". NULL on error as above. */
struct gh_metrics_family *gh_metrics_histogram(struct gh_metrics *m, const char *name, const char *help,
					       const struct gh_metrics_label *labels, size_t nlabels,
					       const uint64_t *bounds_us, size_t nbounds);

/* The index of value in label's list, or fallback when it is not there. */
size_t gh_metrics_value_index(const struct gh_metrics_label *label, const char *value, size_t fallback);

/* Adds n to the counter series named by idx (one value index per label; NULL when the family
 * has no labels). An index out of range is ignored (a bug must not stop the server). */
void gh_metrics_add(struct gh_metrics_family *f, const size_t *idx, uint64_t n);
/* Records one observation of us microseconds in the histogram series named by idx. */
void gh_metrics_observe_us(struct gh_metrics_family *f, const size_t *idx, uint64_t us);
/* The counter's current value, or the histogram series' count (for tests). */
uint64_t gh_metrics_value(const struct gh_metrics_family *f, const size_t *idx);

/* A family whose samples are produced at scrape time: fn(arg, scrape, out) calls
 * gh_metrics_emit once per series. label_names is NULL-terminated (NULL: no labels; copied).
 * type is GH_METRICS_COUNTER or GH_METRICS_GAUGE. scrape is what gh_metrics_render was given
 * (the caller's per-scrape context, e.g. the worker that renders). Returns 0 or GH_EINVAL /
 * GH_EEXIST / GH_ENOMEM / GH_ETOOBIG.
 *
 * This is the hook for values owned by another module, added at start-up after the module is
 * up; for example, per-sink lag of the audit sinks:
 *     gh_metrics_callback(reg, "gatehouse_audit_sink_lag_records",
 *                         "Durable audit records not yet acknowledged by the sink.",
 *                         GH_METRICS_GAUGE, (const char *[]){"sink", NULL}, sink_lag, sinks);
 * where sink_lag emits one sample per configured sink: {"name"} and its lag. */
typedef void (*gh_metrics_collect_fn)(void *arg, void *scrape, struct gh_metrics_out *out);
int gh_metrics_callback(struct gh_metrics *m, const char *name, const char *help, enum gh_metrics_type type,
			const char *const *label_names, gh_metrics_collect_fn fn, void *arg);
/* Inside a collector: one sample. label_values holds one value per label name, in order, and
 * ends with NULL (NULL itself when the family has no labels); values are escaped as needed.
 * value may be NaN or an infinity. A wrong number of values is a bug: the sample is dropped.
 * A collector must not emit the same label values twice. */
void gh_metrics_emit(struct gh_metrics_out *out, const char *const *label_values, double value);

/* Renders every family, in registration order, into out (appended). Counter and histogram
 * series without labels are always shown; labelled ones once they have been touched (a family
 * with many label combinations would otherwise print hundreds of zeros). 0, or GH_ETOOBIG /
 * GH_ENOMEM with out holding a partial page the caller must not send. */
int gh_metrics_render(struct gh_metrics *m, void *scrape, struct gh_buf *out);

/* The content type of what gh_metrics_render produces. */
#define GH_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
