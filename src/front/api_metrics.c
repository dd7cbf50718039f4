/* front: GET /metrics — the server's metrics in the Prometheus text format — and the metric
 * families the fronts update.
 *
 * Access. Two doors, one page. On the API port the route is for admins (a verified token of a
 * member of the policy's admins) and each read is audited like any other admin read. Prometheus
 * cannot use that door: our tokens live at most 24 hours and Prometheus reads a static bearer
 * credential, so `serve --metrics ADDR` opens a listener of its own that answers GET /metrics
 * (and /healthz) without a token, unaudited (a scrape every few seconds would bury the trail in
 * records about nothing). That is safe because the page holds no data and names no one: every
 * label value comes from a fixed set compiled in (front, decision, rule, backend kind, pool and
 * worker states), never from a request, a user, a resource or a statement; the values are
 * counts, durations and sizes. The listener is off by default and meant for loopback or a
 * scrape network; the API port never answers a tokenless /metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front/api_handlers.h"
#include "front/server_int.h"

/* ---------------------------------------------------------------- label sets */

static const char *const fronts[] = {"http", "pgwire", NULL};
static const char *const decisions[] = {"allow", "deny", "pending", "error", NULL};
/* What a verdict's rule may be: policy.c's rules in their order, then the fronts' own. */
static const char *const rules[] = {
	"unknown-user", "user-disabled", "unknown-resource", "unknown-environment", "unknown-app",
	"destructive-ddl", "forbidden-statement", "no-grant", "needs-app-or-edit", "ddl-needs-edit",
	"needs-own", "approval-required", "grant",
	"token-environment", "one-statement-per-request", "copy-not-supported", "session-statement",
	"approval-in-transaction", "client-transaction",
	"none", "other", NULL,
};
static const char *const kinds[] = {"sqlite", "postgres", NULL};

static const struct gh_metrics_label request_labels[] = {
	{"front", fronts}, {"decision", decisions}, {"rule", rules},
};
static const struct gh_metrics_label front_label[] = {{"front", fronts}};
static const struct gh_metrics_label kind_label[] = {{"kind", kinds}};

/* Bucket bounds in microseconds. A cached decision costs microseconds, a parse tens of them. */
static const uint64_t decision_us[] = {10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
				       100000, 250000, 500000, 1000000};
/* Statements run from a fraction of a millisecond to the statement timeout (30 s default). */
static const uint64_t backend_us[] = {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
				      500000, 1000000, 2500000, 5000000, 10000000, 30000000};
/* fdatasync: tens of microseconds on NVMe with a write cache, seconds on a struggling disk. */
static const uint64_t fsync_us[] = {50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
				    250000, 500000, 1000000, 2500000, 5000000};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- updates */

/* The label of a verdict's rule: "none" without one, "grant" for any granting rule (those
 * name users and groups), "other" for a name not in the set. */
static size_t rule_index(const char *rule)
{
	const struct gh_metrics_label *l = &request_labels[2];
	size_t other = gh_metrics_value_index(l, "other", 0);
	if (!rule || !*rule)
		return gh_metrics_value_index(l, "none", other);
	if (strncmp(rule, "grant:", 6) == 0)
		return gh_metrics_value_index(l, "grant", other);
	return gh_metrics_value_index(l, rule, other);
}

void gh_srv_count(struct server *srv, enum gh_srv_front front, const char *decision, const char *rule)
{
	const struct gh_metrics_label *d = &request_labels[1];
	size_t idx[3] = {(size_t)front, gh_metrics_value_index(d, decision, gh_metrics_value_index(d, "error", 0)),
			 rule_index(rule)};
	gh_metrics_add(srv->m_requests, idx, 1);
}

void gh_srv_time_decision(struct server *srv, enum gh_srv_front front, uint64_t us)
{
	size_t idx[1] = {(size_t)front};
	gh_metrics_observe_us(srv->m_decision, idx, us);
}

void gh_srv_time_backend(struct server *srv, bool postgres, uint64_t us)
{
	size_t idx[1] = {postgres ? 1u : 0u};
	gh_metrics_observe_us(srv->m_backend, idx, us);
}

void gh_srv_log_decision(enum gh_srv_front front, const char *request_id, const char *user, const char *resource,
			 const char *environment, const char *cls, const char *decision, const char *rule,
			 const char *sql, size_t sqllen, const char *params_json)
{
	if (!gh_log_enabled(GH_LOG_DEBUG))
		return;
	bool s = gh_log_sensitive();
	char *text = s && sql ? gh_strndup(sql, sqllen) : NULL;
	gh_log_kv(GH_LOG_DEBUG, "decision", "front", fronts[front], "request_id", request_id, "user", user,
		  "resource", resource, "environment", environment, "class", cls, "decision", decision, "rule", rule,
		  s ? "statement" : NULL, text, "params", params_json, NULL);
	free(text);
}

/* ---------------------------------------------------------------- scrape-time values */

/* scrape is the worker that renders: its store connection counts the pending approvals. */
static void collect_approvals(void *arg, void *scrape, struct gh_metrics_out *out)
{
	struct worker *w = scrape;
	int64_t n = 0;
	if (w && gh_store_approvals_pending(w->store, gh_now(), &n) == 0)
		gh_metrics_emit(out, NULL, (double)n);
}

static void collect_audit_records(void *arg, void *scrape, struct gh_metrics_out *out)
{
	uint64_t records = 0, syncs = 0;
	gh_audit_stats(arg, &records, &syncs);
	gh_metrics_emit(out, NULL, (double)records);
}

static void collect_audit_syncs(void *arg, void *scrape, struct gh_metrics_out *out)
{
	uint64_t records = 0, syncs = 0;
	gh_audit_stats(arg, &records, &syncs);
	gh_metrics_emit(out, NULL, (double)syncs);
}

static void collect_pool_connections(void *arg, void *scrape, struct gh_metrics_out *out)
{
	int open = 0, idle = 0, waiting = 0;
	gh_pg_pool_stats(arg, &open, &idle, &waiting);
	gh_metrics_emit(out, (const char *[]){"busy", NULL}, (double)(open - idle));
	gh_metrics_emit(out, (const char *[]){"idle", NULL}, (double)idle);
}

static void collect_pool_waiting(void *arg, void *scrape, struct gh_metrics_out *out)
{
	int open = 0, idle = 0, waiting = 0;
	gh_pg_pool_stats(arg, &open, &idle, &waiting);
	gh_metrics_emit(out, NULL, (double)waiting);
}

static void collect_pool_max(void *arg, void *scrape, struct gh_metrics_out *out)
{
	gh_metrics_emit(out, NULL, (double)gh_pg_pool_max(arg));
}

static void collect_pool_waits(void *arg, void *scrape, struct gh_metrics_out *out)
{
	uint64_t waits = 0, timeouts = 0;
	gh_pg_pool_waits(arg, &waits, &timeouts);
	gh_metrics_emit(out, NULL, (double)waits);
}

static void collect_pool_timeouts(void *arg, void *scrape, struct gh_metrics_out *out)
{
	uint64_t waits = 0, timeouts = 0;
	gh_pg_pool_waits(arg, &waits, &timeouts);
	gh_metrics_emit(out, NULL, (double)timeouts);
}

static void collect_workers(void *arg, void *scrape, struct gh_metrics_out *out)
{
	struct server *srv = arg;
	pthread_mutex_lock(&srv->wmu);
	int n = srv->nthreads, idle = srv->idle;
	pthread_mutex_unlock(&srv->wmu);
	/* the worker rendering this page is busy: it counts as such */
	gh_metrics_emit(out, (const char *[]){"busy", NULL}, (double)(n - idle));
	gh_metrics_emit(out, (const char *[]){"idle", NULL}, (double)idle);
}

static void collect_queued(void *arg, void *scrape, struct gh_metrics_out *out)
{
	struct server *srv = arg;
	pthread_mutex_lock(&srv->wmu);
	int q = srv->queued;
	pthread_mutex_unlock(&srv->wmu);
	gh_metrics_emit(out, NULL, (double)q);
}

/* ---------------------------------------------------------------- start-up */

int gh_srv_metrics_init(struct server *srv, struct gh_error *err)
{
	struct gh_metrics *m = srv->metrics = gh_metrics_new();
	if (!m)
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	srv->m_requests = gh_metrics_counter(
		m, "gatehouse_requests_total",
		"Data requests (HTTP: POST /v1/query; wire: statements) by front, decision and the rule that decided.",
		request_labels, NELEM(request_labels));
	srv->m_decision = gh_metrics_histogram(m, "gatehouse_decision_duration_seconds",
					       "Time to analyse and decide one statement.", front_label, 1,
					       decision_us, NELEM(decision_us));
	srv->m_backend = gh_metrics_histogram(m, "gatehouse_backend_duration_seconds",
					      "Time the resource's database took to run a statement and return its result.",
					      kind_label, 1, backend_us, NELEM(backend_us));
	srv->m_audit_sync = gh_metrics_histogram(m, "gatehouse_audit_fsync_duration_seconds",
						 "Time of each fdatasync of the audit log (one per group commit).", NULL, 0,
						 fsync_us, NELEM(fsync_us));
	struct {
		const char *name, *help;
		enum gh_metrics_type type;
		const char *const *labels;
		gh_metrics_collect_fn fn;
		void *arg;
	} cb[] = {
		{"gatehouse_audit_records_total", "Audit records made durable by this server.", GH_METRICS_COUNTER,
		 NULL, collect_audit_records, srv->audit},
		{"gatehouse_audit_fsyncs_total", "Group commits (fdatasync calls) of the audit log.", GH_METRICS_COUNTER,
		 NULL, collect_audit_syncs, srv->audit},
		{"gatehouse_approvals_pending", "Writes waiting for a reviewer (not decided, not expired).",
		 GH_METRICS_GAUGE, NULL, collect_approvals, srv},
		{"gatehouse_pg_pool_connections", "PostgreSQL backend connections open, over all pools, by state.",
		 GH_METRICS_GAUGE, (const char *[]){"state", NULL}, collect_pool_connections, srv->pg},
		{"gatehouse_pg_pool_max_connections", "PostgreSQL backend connections allowed per pool (--pg-pool).",
		 GH_METRICS_GAUGE, NULL, collect_pool_max, srv->pg},
		{"gatehouse_pg_pool_waiting", "Requests waiting now for a PostgreSQL backend connection.",
		 GH_METRICS_GAUGE, NULL, collect_pool_waiting, srv->pg},
		{"gatehouse_pg_pool_waits_total", "Requests that had to wait for a PostgreSQL backend connection.",
		 GH_METRICS_COUNTER, NULL, collect_pool_waits, srv->pg},
		{"gatehouse_pg_pool_wait_timeouts_total",
		 "Requests that gave up waiting for a PostgreSQL backend connection (503 / SQLSTATE 53300).",
		 GH_METRICS_COUNTER, NULL, collect_pool_timeouts, srv->pg},
		{"gatehouse_workers", "Worker threads by state.", GH_METRICS_GAUGE, (const char *[]){"state", NULL},
		 collect_workers, srv},
		{"gatehouse_worker_queue", "Jobs waiting for a worker thread.", GH_METRICS_GAUGE, NULL, collect_queued,
		 srv},
	};
	if (!srv->m_requests || !srv->m_decision || !srv->m_backend || !srv->m_audit_sync)
		return gh_error_set(err, GH_EINTERNAL, "metrics: a family could not be registered");
	for (size_t i = 0; i < NELEM(cb); i++)
		if (gh_metrics_callback(m, cb[i].name, cb[i].help, cb[i].type, cb[i].labels, cb[i].fn, cb[i].arg))
			return gh_error_set(err, GH_EINTERNAL, "metrics: %s could not be registered", cb[i].name);
	gh_audit_set_sync_metric(srv->audit, srv->m_audit_sync);
	return 0;
}

/* ---------------------------------------------------------------- the endpoint */

void gh_api_metrics_get(struct gh_api_req *req, struct gh_api_resp *resp)
{
	if (gh_metrics_render(req->srv->metrics, req->w, resp->body)) {
		gh_api_error(req, resp, 500, "internal", "the metrics page could not be rendered");
		return;
	}
	resp->content_type = GH_METRICS_CONTENT_TYPE;
	resp->status = 200;
}
