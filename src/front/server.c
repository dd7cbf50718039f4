/* front: the HTTP API server.
 *
 * Threads: one libevent loop thread parses HTTP, authenticates, analyses and decides (all
 * in memory, no blocking I/O but SQLite prepares on cached read-only connections); a pool of
 * workers runs statements and touches the store; the audit writer makes records durable with
 * group commit. A request (struct ctx) moves between them as a small state machine: each
 * audit record's completion hands the request on to a worker or back to the loop, so no
 * thread waits on an fsync and one fsync serves every request that arrived meanwhile. */
#include "front/front.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "approvals/approvals.h"
#include "audit/audit.h"
#include "config/config.h"
#include "connector/connector.h"
#include "front/api.h"
#include "front/api_handlers.h"
#include "front/http_parse.h"
#include "front/query_body.h"
#include "identity/identity.h"
#include "policy/policy.h"
#include "sql/sql.h"
#include "store/store.h"
#include "vault/vault.h"
#include "front/server_int.h"

struct ctx;

struct conn {
	struct conn *prev, *next;
	struct server *srv;
	struct bufferevent *bev;
	char peer[64];
	bool busy;     /* a request is in flight; further input waits */
	bool closed;   /* the socket is gone; free when the request returns */
	bool lingering;/* last response queued: discard input, half-close once written, then free */
	bool metrics_only; /* accepted on the --metrics listener: GET /metrics and /healthz only */
	size_t need;   /* bytes of input needed before parsing again (0: any) */
};

enum route {
	R_NONE, R_HEALTH, R_JWKS, R_QUERY, R_APPROVALS, R_APPROVAL, R_APPROVE, R_REJECT, R_AUDIT,
};


/* How long a resource's schema version, once read, is trusted before a cached analysis is
 * used again. A change made through this server is seen at once (schema_epoch); one made by
 * another process within this window may leave a cached analysis' table list stale, never its
 * class: the exec guard refuses any action above the class that was decided, and refusals
 * are not cached. */
#define GH_SCHEMA_RECHECK_US 1000

struct ctx {
	struct gh_job job;            /* first: a ctx is a job */
	struct server *srv;
	struct conn *conn;
	char request_id[40];
	uint64_t start_us;
	int64_t start_ms;
	enum route route;
	char *raw;
	struct gh_http_request req;
	bool keep_alive;

	struct gh_policy *policy;     /* the snapshot this request started with */
	struct gh_claims claims;
	struct gh_buf groups;
	struct gh_buf tables;

	/* query */
	char *resource, *environment, *sql, *params_json;
	size_t sqllen;
	struct gh_query_body qb;
	json_t *params;
	const struct gh_policy_resource *res_def; /* in c->policy */
	const struct gh_policy_resenv *resenv;    /* in c->policy */
	struct gh_sql_analysis *analysis;
	struct gh_verdict verdict;
	struct gh_exec_result exec;
	int backend_status;           /* PostgreSQL: 502/503 when no backend connection could be had */
	char backend_message[200];
	char approval_id[64];
	struct gh_approval approval;
	int64_t since, limit;

	/* state machine */
	void (*work)(struct ctx *, struct worker *);
	void (*after_audit)(struct ctx *, struct worker *);
	struct gh_audit_entry audit;
	int audit_status;

	/* an endpoint of api_*.c */
	const struct gh_api_route *api;
	const char *content_type;     /* NULL: application/json */

	/* response */
	int status;
	struct gh_buf out;
};

/* ---------------------------------------------------------------- responses */

static const char *status_text(int s)
{
	switch (s) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Status";
	}
}

/* Sets ctx's response to an error document. message must not hold secrets. */
static void set_error(struct ctx *c, int status, const char *code, const char *message, const char *rule)
{
	c->status = status;
	c->content_type = NULL; /* an error is a JSON document, whatever the endpoint answers */
	gh_buf_reset(&c->out);
	gh_buf_printf(&c->out, "{\"error\":{\"code\":\"%s\",\"message\":", code);
	gh_buf_json_string(&c->out, message, strlen(message));
	if (rule) {
		gh_buf_puts(&c->out, ",\"rule\":");
		gh_buf_json_string(&c->out, rule, strlen(rule));
	}
	gh_buf_printf(&c->out, ",\"request_id\":\"%s\"}}", c->request_id);
}

/* Sets a success response: members (without braces) plus request_id. */
static void set_ok(struct ctx *c, int status, const char *members, size_t len)
{
	c->status = status;
	gh_buf_reset(&c->out);
	gh_buf_puts(&c->out, "{");
	gh_buf_append(&c->out, members, len);
	gh_buf_printf(&c->out, "%s\"request_id\":\"%s\"}", len ? "," : "", c->request_id);
}

static void write_response(struct bufferevent *bev, int status, const char *body, size_t len, bool keep_alive,
			   const char *content_type, const char *extra_headers)
{
	struct evbuffer *o = bufferevent_get_output(bev);
	evbuffer_add_printf(o,
			    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			    "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s%s\r\n",
			    status, status_text(status), content_type ? content_type : "application/json", len,
			    keep_alive ? "" : "Connection: close\r\n", extra_headers ? extra_headers : "");
	evbuffer_add(o, body, len);
}

/* ---------------------------------------------------------------- ctx lifecycle */

static void conn_free(struct conn *cn)
{
	struct server *srv = cn->srv;
	if (cn->bev)
		bufferevent_free(cn->bev);
	if (cn->prev)
		cn->prev->next = cn->next;
	else
		srv->conns = cn->next;
	if (cn->next)
		cn->next->prev = cn->prev;
	srv->nconns--;
	free(cn);
}

static void ctx_free(struct ctx *c)
{
	if (c->policy)
		gh_config_unref(c->policy);
	gh_sql_analysis_unref(c->analysis);
	gh_query_body_free(&c->qb);
	free(c->params_json);
	free(c->resource);
	free(c->environment);
	free(c->raw);
	gh_buf_free(&c->groups);
	gh_buf_free(&c->tables);
	gh_buf_free(&c->exec.json);
	gh_buf_free(&c->audit.body);
	gh_buf_free(&c->out);
	gh_approval_clear(&c->approval);
	free(c);
}

static void conn_process(struct conn *cn);

/* On the loop: sends ctx's response and resumes the connection. */
static void finish(struct ctx *c)
{
	struct server *srv = c->srv;
	struct conn *cn = c->conn;
	srv->inflight--;
	/* counted before the answer leaves: a client that reads its answer, then the metrics, sees
	 * its request in them */
	if (c->route == R_QUERY)
		gh_srv_count(srv, GH_SRV_HTTP, c->verdict.rule[0] ? gh_decision_name(c->verdict.decision) : "error",
			     c->verdict.rule);
	if (cn->closed) {
		conn_free(cn);
	} else {
		write_response(cn->bev, c->status, c->out.data ? c->out.data : "", c->out.len, c->keep_alive,
			       c->content_type, NULL);
		cn->busy = false;
		if (!c->keep_alive) {
			/* Lingering close: a client still sending (say an oversized body) would get a
			 * reset instead of our answer if we closed with its bytes unread. Discard input,
			 * half-close once the response is written, free at its EOF or a short timeout. */
			cn->lingering = true;
			struct timeval t = {2, 0};
			bufferevent_set_timeouts(cn->bev, &t, &t);
			evbuffer_drain(bufferevent_get_input(cn->bev), evbuffer_get_length(bufferevent_get_input(cn->bev)));
		} else {
			conn_process(cn);
		}
	}
	ctx_free(c);
}

void gh_srv_to_loop(struct server *srv, struct gh_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&srv->cmu);
	if (srv->ctail)
		srv->ctail->next = j;
	else
		srv->chead = j;
	srv->ctail = j;
	pthread_mutex_unlock(&srv->cmu);
	event_active(srv->wake, EV_READ, 0);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	pthread_mutex_lock(&srv->cmu);
	struct gh_job *j = srv->chead;
	srv->chead = srv->ctail = NULL;
	pthread_mutex_unlock(&srv->cmu);
	while (j) {
		struct gh_job *next = j->next;
		j->done(j);
		j = next;
	}
}

static int worker_start(struct server *srv);

void gh_srv_to_worker(struct server *srv, struct gh_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&srv->wmu);
	if (srv->wtail)
		srv->wtail->next = j;
	else
		srv->whead = j;
	srv->wtail = j;
	srv->queued++;
	if (srv->queued > srv->idle && worker_start(srv) == 0)
		gh_log(GH_LOG_INFO, "all workers busy: started worker %d", srv->nthreads);
	pthread_cond_signal(&srv->wcv);
	pthread_mutex_unlock(&srv->wmu);
}

static void ctx_run(struct gh_job *j, struct worker *w)
{
	struct ctx *c = (struct ctx *)j;
	c->work(c, w);
}

static void ctx_done(struct gh_job *j)
{
	finish((struct ctx *)j);
}

/* From any thread: hands ctx back to the loop to respond. */
static void to_loop(struct ctx *c)
{
	c->job.done = ctx_done;
	gh_srv_to_loop(c->srv, &c->job);
}

static void to_worker(struct ctx *c, void (*fn)(struct ctx *, struct worker *))
{
	c->work = fn;
	c->job.run = ctx_run;
	c->job.done = ctx_done;
	gh_srv_to_worker(c->srv, &c->job);
}

static void *worker_main(void *arg);
static void free_analysis(void *p);

/* Starts one more worker (call with wmu held). Workers block in libpq while a statement runs,
 * possibly on a lock held by a client transaction whose next statement is still queued: the
 * pool grows when every worker is busy, so a queued job never waits for a blocked one. */
static int worker_start(struct server *srv)
{
	if (srv->nthreads >= srv->max_threads)
		return GH_ETOOBIG;
	struct worker *w = calloc(1, sizeof *w);
	struct gh_error err;
	if (w) {
		w->srv = srv;
		w->cache_policy = -1;
	}
	if (!w || !(w->conn = gh_connector_new()) || !(w->analysis_cache = gh_map_new(free_analysis)) ||
	    gh_store_open(srv->dbpath, true, &w->store, &err) ||
	    pthread_create(&srv->threads[srv->nthreads], NULL, worker_main, w)) {
		if (w) {
			gh_map_free(w->analysis_cache);
			gh_connector_free(w->conn);
			gh_store_close(w->store);
			free(w);
		}
		return GH_EINTERNAL;
	}
	srv->nthreads++;
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct server *srv = w->srv;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&srv->wmu);
	for (;;) {
		srv->idle++;
		while (!srv->whead && !srv->wstop)
			pthread_cond_wait(&srv->wcv, &srv->wmu);
		srv->idle--;
		if (!srv->whead)
			break;
		struct gh_job *j = srv->whead;
		srv->queued--;
		srv->whead = j->next;
		if (!srv->whead)
			srv->wtail = NULL;
		pthread_mutex_unlock(&srv->wmu);
		j->next = NULL;
		j->run(j, w);
		pthread_mutex_lock(&srv->wmu);
	}
	pthread_mutex_unlock(&srv->wmu);
	gh_map_free(w->analysis_cache);
	gh_connector_free(w->conn);
	gh_store_close(w->store);
	free(w);
	return NULL;
}

/* Audit completion (runs on the audit thread): a failed record turns the response into 503,
 * whatever was prepared; a durable one lets the request go on. Never blocks. */
static void on_audited(struct gh_audit_entry *e, int status)
{
	struct ctx *c = e->arg;
	c->audit_status = status;
	if (status) {
		set_error(c, 503, "audit_unavailable",
			  "the audit trail could not be written, so nothing was released or run", NULL);
		to_loop(c);
	} else if (c->after_audit) {
		void (*next)(struct ctx *, struct worker *) = c->after_audit;
		c->after_audit = NULL;
		to_worker(c, next);
	} else {
		to_loop(c);
	}
}

/* Fields common to every record of this request. */
static void record_base(struct ctx *c, struct gh_audit_record *r, const char *event)
{
	memset(r, 0, sizeof *r);
	r->time_ms = gh_now_ms();
	r->request_id = c->request_id;
	r->event = event;
	r->user = c->claims.sub[0] ? c->claims.sub : NULL;
	r->groups = c->groups.data;
	r->app = c->claims.app;
	r->environment = c->environment;
	r->resource = c->resource;
	r->client = c->conn->peer;
	r->rows = -1;
	r->duration_ms = -1;
}

/* Formats r and submits it; next (may be NULL) runs on a worker once it is durable, else the
 * prepared response is sent. */
static void audit_then(struct ctx *c, const struct gh_audit_record *r, void (*next)(struct ctx *, struct worker *))
{
	gh_buf_reset(&c->audit.body);
	c->after_audit = next;
	c->audit.done = on_audited;
	c->audit.arg = c;
	if (gh_audit_format(r, &c->audit.body)) {
		set_error(c, 503, "audit_unavailable", "the audit record could not be formed", NULL);
		c->after_audit = NULL;
		to_loop(c);
		return;
	}
	gh_audit_submit(c->srv->audit, &c->audit);
}

/* ---------------------------------------------------------------- policy snapshot */

static void revoked_add(const char *jti, void *arg)
{
	gh_map_put(arg, jti, strlen(jti), (void *)1);
}

/* Reloads the policy and revocations when another connection changed them. Called per
 * request: PRAGMA data_version costs no I/O; the marks query runs only after a commit by
 * someone else (the audit head moves on every batch, so that is often), and the policy text
 * and revocation list are read only when their marks moved. */
void gh_srv_refresh(struct server *srv)
{
	int64_t v = gh_store_data_version(srv->store);
	if (v == srv->data_version)
		return;
	srv->data_version = v;
	int64_t pv = 0, nrev = 0, sec = 0;
	if (gh_store_change_marks(srv->store, &pv, &nrev, &sec)) {
		gh_log(GH_LOG_ERROR, "store: cannot read change marks; keeping policy version %lld",
		       (long long)srv->policy_version);
		srv->data_version = -1; /* try again on the next request */
		return;
	}
	if (pv != srv->policy_version) {
		char *doc = NULL;
		int64_t version = 0;
		if (gh_store_policy_load(srv->store, &doc, &version) == 0 && doc) {
			struct gh_policy *p = NULL;
			struct gh_error err;
			if (gh_config_parse(doc, strlen(doc), "stored policy", NULL, &p, &err) == 0) {
				p->version = version;
				if (srv->policy)
					gh_config_unref(srv->policy);
				srv->policy = p;
				srv->policy_version = version;
				char msg[64], num[24];
				snprintf(msg, sizeof msg, "policy version %lld loaded", (long long)version);
				snprintf(num, sizeof num, "%lld", (long long)version);
				gh_log_kv(GH_LOG_INFO, msg, "policy_version", num, NULL);
			} else {
				gh_log(GH_LOG_ERROR, "stored policy version %lld does not load: %s", (long long)version,
				       err.message);
			}
		}
		free(doc);
	}
	if (sec != srv->secrets_mark) {
		srv->secrets_mark = sec;
		__atomic_add_fetch(&srv->secrets_epoch, 1, __ATOMIC_RELEASE);
	}
	if (nrev != srv->revocations || srv->revocations < 0) {
		gh_map_clear(srv->revoked);
		if (gh_store_revoked_each(srv->store, gh_now(), revoked_add, srv->revoked) == 0)
			srv->revocations = nrev;
		else
			srv->data_version = -1;
	}
}

/* ---------------------------------------------------------------- authentication */

/* Verifies the bearer token (cached after the first signature check), revocation, and the
 * user's standing in the current policy. Sets the 401 response and returns false on failure. */
void gh_srv_request_id(struct server *srv, char *out, size_t n)
{
	uint64_t k = __atomic_add_fetch(&srv->rid_counter, 1, __ATOMIC_RELAXED);
	snprintf(out, n, "req_%08x%012llx", srv->rid_prefix, (unsigned long long)k);
}

bool gh_srv_verify_token(struct server *srv, const char *tok, size_t toklen, struct gh_claims *out, char *why,
			 size_t whylen)
{
	int64_t now = gh_now();
	struct gh_claims *cached = toklen <= GH_TOKEN_MAX_BYTES ? gh_map_get(srv->token_cache, tok, toklen) : NULL;
	if (cached && now > cached->exp + GH_TOKEN_SKEW) {
		gh_map_del(srv->token_cache, tok, toklen);
		cached = NULL;
	}
	if (cached) {
		*out = *cached;
	} else {
		struct gh_error err;
		if (gh_token_verify(tok, toklen, srv->signer.kid, srv->signer.pk, now, out, &err)) {
			snprintf(why, whylen, "%s", err.message);
			return false;
		}
		struct gh_claims *copy = malloc(sizeof *copy);
		if (copy) {
			*copy = *out;
			if (gh_map_count(srv->token_cache) >= GH_TOKEN_CACHE_MAX)
				gh_map_clear(srv->token_cache);
			if (gh_map_put(srv->token_cache, tok, toklen, copy))
				free(copy);
		}
	}
	if (gh_map_get(srv->revoked, out->jti, strlen(out->jti))) {
		snprintf(why, whylen, "token has been revoked");
		return false;
	}
	const struct gh_policy_user *u = srv->policy ? gh_config_user(srv->policy, out->sub) : NULL;
	if (!u || u->disabled) {
		snprintf(why, whylen, "%s", u ? "user is disabled" : "user no longer exists");
		return false;
	}
	return true;
}

/* Verifies the bearer token, revocation, and the user's standing in the current policy.
 * Sets the 401 response and returns false on failure. */
static bool authenticate(struct ctx *c)
{
	struct gh_str a = c->req.authorization;
	if (!a.p || a.len < 8 || strncasecmp(a.p, "Bearer ", 7) != 0) {
		set_error(c, 401, "unauthenticated", "send Authorization: Bearer <token>", NULL);
		return false;
	}
	char why[200];
	if (!gh_srv_verify_token(c->srv, a.p + 7, a.len - 7, &c->claims, why, sizeof why)) {
		set_error(c, 401, "invalid_token", why, NULL);
		return false;
	}
	gh_config_user_groups(c->policy, c->claims.sub, &c->groups);
	return true;
}

/* ---------------------------------------------------------------- query */

static void record_query(struct ctx *c, struct gh_audit_record *r, const char *event, const char *status)
{
	record_base(c, r, event);
	r->statement = c->sql;
	r->params_json = c->params_json;
	r->class_name = c->analysis ? gh_sql_class_name(c->analysis->cls) : NULL;
	gh_buf_reset(&c->tables);
	if (c->analysis)
		gh_sql_tables_json(c->analysis, &c->tables);
	r->tables_json = c->tables.data; /* lives in c until audit_then has formatted it */
	r->decision = gh_decision_name(c->verdict.decision);
	r->rule = c->verdict.rule;
	r->status = status;
	r->duration_ms = (double)(gh_mono_us() - c->start_us) / 1000.0;
}

/* Turns an execution result into the response. */
static const char *exec_response(struct ctx *c)
{
	if (c->backend_status) {
		set_error(c, c->backend_status, c->backend_status == 503 ? "pool_exhausted" : "resource_unavailable",
			  c->backend_message, NULL);
		return "error";
	}
	switch (c->exec.status) {
	case 0:
		set_ok(c, 200, c->exec.json.data ? c->exec.json.data : "", c->exec.json.len);
		return "ok";
	case GH_ETIMEOUT:
		set_error(c, 504, "statement_timeout", c->exec.error, NULL);
		return "timeout";
	case GH_EINVAL:
		set_error(c, 400, "bad_params", c->exec.error, NULL);
		return "error";
	default:
		set_error(c, 422, "statement_failed", c->exec.error[0] ? c->exec.error : "the statement failed", NULL);
		return "error";
	}
}

/* Runs the decided statement into c->exec on the resource (SQLite or PostgreSQL), as user
 * and app (c->groups holds user's groups). A PostgreSQL read that fails because a pooled
 * connection had died while idle is retried once on a fresh connection. */
static void run_statement(struct ctx *c, struct worker *w, const char *sql, size_t len, json_t *params,
			  const char *user, const char *app)
{
	struct server *srv = c->srv;
	struct gh_exec_limits lim = {srv->o.max_rows, GH_DEFAULT_MAX_RESULT_BYTES, srv->o.statement_ms};
	enum gh_sql_class cls = c->analysis->cls;
	if (c->res_def->kind == GH_RESOURCE_SQLITE) {
		uint64_t t0 = gh_mono_us();
		gh_connector_exec(w->conn, c->resenv->path, cls, sql, len, params, &lim, &c->exec);
		gh_srv_time_backend(srv, false, gh_mono_us() - t0);
		if (cls != GH_SQL_READ)
			__atomic_add_fetch(&srv->schema_epoch, 1, __ATOMIC_RELEASE);
		return;
	}
	struct gh_pg_claims claims = {user, c->groups.data ? c->groups.data : "", app, c->resenv->env};
	for (int attempt = 0; attempt < 2; attempt++) {
		struct gh_pg_conn *pc = NULL;
		struct gh_error err;
		uint64_t epoch = __atomic_load_n(&srv->secrets_epoch, __ATOMIC_ACQUIRE);
		if (gh_pg_acquire(srv->pg, c->res_def->name, c->resenv->env, c->resenv->secret, epoch, &pc, &err)) {
			c->backend_status = err.code == GH_ETIMEOUT ? 503 : 502;
			snprintf(c->backend_message, sizeof c->backend_message, "%s",
				 err.code == GH_ETIMEOUT ? "every connection to the resource is busy; try again"
							 : "the resource's database cannot be reached");
			gh_log_kv(GH_LOG_ERROR, "resource unavailable", "resource", c->res_def->name, "environment",
				  c->resenv->env, "error", err.message, NULL);
			c->exec.status = GH_EIO;
			snprintf(c->exec.error, sizeof c->exec.error, "%s", c->backend_message);
			return;
		}
		bool reused = gh_pg_conn_reused(pc);
		gh_buf_reset(&c->exec.json);
		uint64_t t0 = gh_mono_us();
		gh_pg_exec(pc, cls, sql, len, params, &lim, &claims, &c->exec);
		gh_srv_time_backend(srv, true, gh_mono_us() - t0);
		gh_pg_release(pc);
		if (!(c->exec.conn_lost && reused && cls == GH_SQL_READ))
			return;
		gh_log_kv(GH_LOG_WARN, "a pooled connection was lost; retrying the read once", "resource",
			  c->res_def->name, "environment", c->resenv->env, NULL);
	}
}

static void w_exec(struct ctx *c, struct worker *w)
{
	run_statement(c, w, c->sql, c->sqllen, c->params, c->claims.sub, c->claims.app);
	const char *st = exec_response(c);
	struct gh_audit_record r;
	bool is_read = c->analysis->cls == GH_SQL_READ;
	record_query(c, &r, is_read ? "query" : "query.outcome", st);
	r.rows = c->exec.status == 0 ? c->exec.rows : -1;
	char detail[700];
	if (c->exec.status) {
		struct gh_buf d;
		gh_buf_init(&d, sizeof detail);
		gh_buf_puts(&d, "{\"error\":");
		gh_buf_json_string(&d, c->exec.error, strlen(c->exec.error));
		gh_buf_puts(&d, "}");
		snprintf(detail, sizeof detail, "%s", d.data ? d.data : "{}");
		gh_buf_free(&d);
		r.detail_json = detail;
	}
	audit_then(c, &r, NULL);
}

static void w_insert_approval(struct ctx *c, struct worker *w)
{
	struct gh_approval a;
	memset(&a, 0, sizeof a);
	snprintf(a.id, sizeof a.id, "%s", c->approval_id);
	a.status = GH_APPROVAL_PENDING;
	a.requester = c->claims.sub;
	a.app = c->claims.app[0] ? c->claims.app : NULL;
	a.resource = c->resource;
	a.environment = c->environment;
	a.statement = c->sql;
	a.params = c->params_json;
	a.class_name = (char *)(uintptr_t)gh_sql_class_name(c->analysis->cls);
	a.request_id = c->request_id;
	a.created_at = gh_now();
	a.expires_at = a.created_at + c->srv->o.approval_ttl;
	if (gh_store_approval_insert(w->store, &a))
		set_error(c, 500, "store_unavailable", "the approval could not be stored; nothing will run", NULL);
	to_loop(c);
}

/* The resource cannot be opened: the caller learns that, the server log says why (a path is
 * configuration, not for callers). */
static int resource_unavailable(struct ctx *c, const struct gh_error *err)
{
	set_error(c, 502, "resource_unavailable", "the resource's database cannot be opened", NULL);
	gh_log_kv(GH_LOG_ERROR, "resource unavailable", "resource", c->resource, "environment", c->environment,
		  "error", err->message, NULL);
	return GH_EIO;
}

/* Analysis through this worker's cache, on the worker's analysis connection to the resource.
 * The cache is emptied when the policy version changes (a resource may point elsewhere). */
static int analyse(struct ctx *c, struct worker *w)
{
	struct server *srv = c->srv;
	int64_t pv = c->policy ? c->policy->version : -1;
	if (w->cache_policy != pv) {
		gh_map_clear(w->analysis_cache);
		w->cache_policy = pv;
	}
	struct gh_buf key;
	gh_buf_init(&key, (size_t)srv->o.max_statement + 2 * GH_NAME_MAX + 8);
	if (gh_buf_printf(&key, "%s\x1f%s\x1f", c->resource, c->environment) ||
	    gh_buf_append(&key, c->sql, c->sqllen)) {
		gh_buf_free(&key);
		return GH_ENOMEM;
	}
	/* The cached analysis holds while the resource's schema is the one it was made under. */
	int64_t schema = 0;
	struct gh_error err;
	bool pg = c->res_def->kind == GH_RESOURCE_POSTGRES;
	uint64_t epoch = __atomic_load_n(&srv->schema_epoch, __ATOMIC_ACQUIRE);
	uint64_t max_age = epoch == w->schema_epoch ? GH_SCHEMA_RECHECK_US : 0;
	w->schema_epoch = epoch;
	/* A PostgreSQL analysis depends on the text alone (the parser needs no catalog). */
	if (!pg && gh_connector_schema_version(w->conn, c->resenv->path, max_age, &schema, &err)) {
		gh_buf_free(&key);
		return resource_unavailable(c, &err);
	}
	struct gh_sql_analysis *a = gh_map_get(w->analysis_cache, key.data, key.len);
	if (a && a->schema_version == schema) {
		gh_buf_free(&key);
		gh_sql_analysis_ref(a);
		c->analysis = a;
		return 0;
	}
	sqlite3 *db = NULL;
	if (!pg && gh_connector_sqlite(w->conn, c->resenv->path, &db, &err)) {
		gh_buf_free(&key);
		return resource_unavailable(c, &err);
	}
	if (pg ? gh_sql_analyze_pg(c->sql, c->sqllen, &a) : gh_sql_analyze_sqlite(db, c->sql, c->sqllen, &a)) {
		gh_buf_free(&key);
		return GH_ENOMEM;
	}
	a->schema_version = schema;
	c->analysis = a; /* the caller's reference */
	/* Only statements that may run are cached: a refusal such as "no such table" must not
	 * outlive the schema change that would lift it. */
	if (a->cls == GH_SQL_READ || a->cls == GH_SQL_WRITE || a->cls == GH_SQL_DDL) {
		if (gh_map_count(w->analysis_cache) >= GH_SQL_CACHE_MAX)
			gh_map_clear(w->analysis_cache);
		gh_sql_analysis_ref(a);
		if (gh_map_put(w->analysis_cache, key.data, key.len, a))
			gh_sql_analysis_unref(a); /* not cached; still usable */
	}
	gh_buf_free(&key);
	return 0;
}

static void w_query(struct ctx *c, struct worker *w);

int gh_srv_analyse_pg(struct worker *w, int64_t policy_version, const char *sql, size_t len,
		      struct gh_sql_analysis **out)
{
	if (w->cache_policy != policy_version) {
		gh_map_clear(w->analysis_cache);
		w->cache_policy = policy_version;
	}
	struct gh_buf key;
	gh_buf_init(&key, len + 8);
	if (gh_buf_puts(&key, "\x1fpg\x1f") || gh_buf_append(&key, sql, len)) {
		gh_buf_free(&key);
		return GH_ENOMEM;
	}
	struct gh_sql_analysis *a = gh_map_get(w->analysis_cache, key.data, key.len);
	if (a) {
		gh_buf_free(&key);
		gh_sql_analysis_ref(a);
		*out = a;
		return 0;
	}
	if (gh_sql_analyze_pg(sql, len, &a)) {
		gh_buf_free(&key);
		return GH_ENOMEM;
	}
	if (a->cls != GH_SQL_FORBIDDEN && a->cls != GH_SQL_DESTRUCTIVE) {
		if (gh_map_count(w->analysis_cache) >= GH_SQL_CACHE_MAX)
			gh_map_clear(w->analysis_cache);
		gh_sql_analysis_ref(a);
		if (gh_map_put(w->analysis_cache, key.data, key.len, a))
			gh_sql_analysis_unref(a);
	}
	gh_buf_free(&key);
	*out = a;
	return 0;
}

static void handle_query(struct ctx *c)
{
	struct server *srv = c->srv;
	int status = 0;
	const char *code = NULL;
	char msg[600];
	if (gh_query_body_parse(c->req.body.p, c->req.body.len, srv->o.max_statement, &c->qb, &status, &code, msg,
				sizeof msg)) {
		set_error(c, status, code, msg, NULL);
		return to_loop(c);
	}
	const char *res = c->qb.resource, *env = c->qb.environment;
	c->sql = (char *)(uintptr_t)c->qb.sql; /* owned by c->qb */
	c->sqllen = c->qb.sqllen;
	c->params = c->qb.params;
	c->resource = gh_strdup(res);
	c->environment = gh_strdup(env);
	c->params_json = json_dumps(c->params, JSON_COMPACT);
	if (!c->resource || !c->environment || !c->params_json) {
		set_error(c, 500, "internal", "out of memory", NULL);
		return to_loop(c);
	}
	const struct gh_policy_resource *r = gh_config_resource(c->policy, res);
	const struct gh_policy_resenv *re = gh_config_resenv(r, env);
	if (!r || !re) {
		snprintf(msg, sizeof msg, r ? "resource '%s' has no environment '%s'" : "no resource named '%s'%.0s", res, env);
		set_error(c, 404, "not_found", msg, NULL);
		return to_loop(c);
	}
	if (strcmp(c->claims.env, env) != 0) {
		snprintf(msg, sizeof msg, "this token is for environment '%s', not '%s'", c->claims.env, env);
		set_error(c, 403, "wrong_environment", msg, "token-environment");
		c->verdict.decision = GH_DENY;
		snprintf(c->verdict.rule, sizeof c->verdict.rule, "token-environment");
		gh_srv_log_decision(GH_SRV_HTTP, c->request_id, c->claims.sub, res, env, NULL, "deny", c->verdict.rule,
				    c->sql, c->sqllen, c->params_json);
		struct gh_audit_record rec;
		record_query(c, &rec, "query", "denied");
		return audit_then(c, &rec, NULL);
	}
	c->res_def = r;
	c->resenv = re;
	to_worker(c, w_query);
}

/* On a worker: analysis (cached), decision, then the read, the audit of a refusal, or the
 * durable record that a write waits for. */
static void w_query(struct ctx *c, struct worker *w)
{
	const char *res = c->resource, *env = c->environment;
	uint64_t t0 = gh_mono_us();
	if (analyse(c, w)) {
		if (!c->status)
			set_error(c, 500, "internal", "statement analysis failed", NULL);
		return to_loop(c);
	}
	struct gh_request_facts f = {c->claims.sub, c->claims.app, res, env, c->analysis->cls, c->analysis->reason,
				     c->analysis->own_only, c->analysis};
	gh_policy_decide(c->policy, &f, &c->verdict);
	/* Over HTTP each request is one statement in its own transaction. */
	if (c->verdict.decision != GH_DENY && c->analysis->nstmts > 1) {
		c->verdict.decision = GH_DENY;
		snprintf(c->verdict.rule, sizeof c->verdict.rule, "one-statement-per-request");
		snprintf(c->verdict.message, sizeof c->verdict.message,
			 "the HTTP API runs one statement per request (this text holds %zu)", c->analysis->nstmts);
	} else if (c->verdict.decision != GH_DENY && c->analysis->copy) {
		c->verdict.decision = GH_DENY;
		snprintf(c->verdict.rule, sizeof c->verdict.rule, "copy-not-supported");
		snprintf(c->verdict.message, sizeof c->verdict.message,
			 "COPY is not supported through Gatehouse; use SELECT or INSERT");
	} else if (c->verdict.decision != GH_DENY && c->analysis->cls == GH_SQL_SESSION) {
		c->verdict.decision = GH_DENY;
		snprintf(c->verdict.rule, sizeof c->verdict.rule, "session-statement");
		snprintf(c->verdict.message, sizeof c->verdict.message,
			 "transaction control and session settings have no effect over HTTP: each request is its "
			 "own transaction");
	}
	gh_srv_time_decision(c->srv, GH_SRV_HTTP, gh_mono_us() - t0);
	gh_srv_log_decision(GH_SRV_HTTP, c->request_id, c->claims.sub, res, env, gh_sql_class_name(c->analysis->cls),
			    gh_decision_name(c->verdict.decision), c->verdict.rule, c->sql, c->sqllen, c->params_json);
	struct gh_audit_record rec;
	switch (c->verdict.decision) {
	case GH_DENY:
		set_error(c, 403, "denied", c->verdict.message, c->verdict.rule);
		record_query(c, &rec, "query", "denied");
		return audit_then(c, &rec, NULL);
	case GH_PENDING: {
		gh_random_id("apr", 12, c->approval_id, sizeof c->approval_id);
		char members[300], detail[120];
		int n = snprintf(members, sizeof members,
				 "\"approval\":{\"id\":\"%s\",\"status\":\"pending\"},\"rule\":\"%s\"", c->approval_id,
				 c->verdict.rule);
		set_ok(c, 202, members, (size_t)n);
		snprintf(detail, sizeof detail, "{\"approval\":\"%s\"}", c->approval_id);
		record_query(c, &rec, "approval.request", "pending");
		rec.detail_json = detail;
		return audit_then(c, &rec, w_insert_approval);
	}
	default:
		if (c->analysis->cls == GH_SQL_READ)
			return w_exec(c, w);
		/* A write's decision is durable before it executes. */
		record_query(c, &rec, "query", "started");
		return audit_then(c, &rec, w_exec);
	}
}

/* ---------------------------------------------------------------- approvals */

static int list_one(const struct gh_approval *a, void *arg)
{
	struct ctx *c = arg;
	if (strcmp(a->environment, c->claims.env) != 0 || !gh_approvals_visible(c->policy, a, c->claims.sub))
		return 0;
	if (c->limit-- <= 0)
		return 1;
	if (c->since++)
		gh_buf_puts(&c->exec.json, ",");
	gh_approvals_json(a, &c->exec.json);
	return 0;
}

/* Reads of approvals and of the audit trail return statements, parameters and records: they
 * are accesses too, recorded before the response is released. */
static void record_read(struct ctx *c, const char *event, int64_t rows)
{
	struct gh_audit_record r;
	record_base(c, &r, event);
	r.environment = c->claims.env;
	r.decision = c->status < 400 ? "allow" : "deny";
	r.status = c->status < 400 ? "ok" : "refused";
	r.rows = rows;
	r.duration_ms = (double)(gh_mono_us() - c->start_us) / 1000.0;
	char detail[120];
	if (c->approval_id[0]) {
		snprintf(detail, sizeof detail, "{\"approval\":\"%s\"}", c->approval_id);
		r.detail_json = detail;
	}
	audit_then(c, &r, NULL);
}

static void w_list_approvals(struct ctx *c, struct worker *w)
{
	gh_buf_puts(&c->exec.json, "\"approvals\":[");
	c->since = 0;
	c->limit = 1000;
	if (gh_store_approval_each(w->store, gh_now(), 10000, list_one, c)) {
		set_error(c, 500, "store_unavailable", "approvals could not be read", NULL);
		return to_loop(c);
	}
	gh_buf_puts(&c->exec.json, "]");
	set_ok(c, 200, c->exec.json.data, c->exec.json.len);
	record_read(c, "approval.list", c->since);
}

/* Loads the approval named in the path if the caller may see it (else 404, which does not
 * reveal whether it exists). */
static bool load_visible(struct ctx *c, struct worker *w)
{
	int rc = gh_store_approval_get(w->store, c->approval_id, gh_now(), &c->approval);
	if (rc == GH_ENOTFOUND || (rc == 0 && (!gh_approvals_visible(c->policy, &c->approval, c->claims.sub) ||
					       strcmp(c->approval.environment, c->claims.env) != 0))) {
		set_error(c, 404, "not_found", "no such approval visible to you in this environment", NULL);
		return false;
	}
	if (rc) {
		set_error(c, 500, "store_unavailable", "approvals could not be read", NULL);
		return false;
	}
	return true;
}

static void w_get_approval(struct ctx *c, struct worker *w)
{
	if (!load_visible(c, w))
		return to_loop(c);
	gh_buf_puts(&c->exec.json, "\"approval\":");
	gh_approvals_json(&c->approval, &c->exec.json);
	set_ok(c, 200, c->exec.json.data, c->exec.json.len);
	record_read(c, "approval.get", 1);
}

static void record_approval(struct ctx *c, struct gh_audit_record *r, const char *event, const char *status,
			    char *detail, size_t dlen)
{
	record_base(c, r, event);
	r->environment = c->approval.environment;
	r->resource = c->approval.resource;
	r->statement = c->approval.statement;
	r->params_json = c->approval.params;
	r->class_name = c->approval.class_name;
	gh_buf_reset(&c->tables);
	if (c->analysis)
		gh_sql_tables_json(c->analysis, &c->tables);
	r->tables_json = c->tables.data; /* null until the statement is analysed again */
	r->decision = gh_decision_name(c->verdict.decision);
	r->rule = c->verdict.rule;
	r->status = status;
	r->duration_ms = (double)(gh_mono_us() - c->start_us) / 1000.0;
	snprintf(detail, dlen, "{\"approval\":\"%s\",\"requester\":\"%s\"}", c->approval.id, c->approval.requester);
	r->detail_json = detail;
}

static void w_approval_execute(struct ctx *c, struct worker *w)
{
	json_error_t je;
	json_t *params = json_loads(c->approval.params, 0, &je);
	/* the statement runs with the requester's identity */
	gh_buf_reset(&c->groups);
	gh_config_user_groups(c->policy, c->approval.requester, &c->groups);
	run_statement(c, w, c->approval.statement, strlen(c->approval.statement), params, c->approval.requester,
		      c->approval.app);
	json_decref(params);
	const char *st = exec_response(c);
	/* Keep the outcome with the approval, then answer with the approval and the result. */
	struct gh_buf result;
	gh_buf_init(&result, (size_t)GH_DEFAULT_MAX_RESULT_BYTES + 1024);
	gh_buf_puts(&result, c->out.data ? c->out.data : "{}");
	gh_store_approval_finish(w->store, c->approval.id, c->exec.status ? GH_APPROVAL_FAILED : GH_APPROVAL_EXECUTED,
				 result.data);
	gh_buf_free(&result);
	if (c->exec.status == 0) {
		struct gh_buf m;
		gh_buf_init(&m, (size_t)GH_DEFAULT_MAX_RESULT_BYTES + 1024);
		gh_buf_printf(&m, "\"approval\":{\"id\":\"%s\",\"status\":\"executed\"}%s", c->approval.id,
			      c->exec.json.len ? "," : "");
		gh_buf_append(&m, c->exec.json.data ? c->exec.json.data : "", c->exec.json.len);
		set_ok(c, 200, m.data, m.len);
		gh_buf_free(&m);
	}
	struct gh_audit_record r;
	char detail[300];
	/* the statement runs with the requester's identity */
	record_approval(c, &r, "approval.execute", st, detail, sizeof detail);
	r.user = c->approval.requester;
	r.app = c->approval.app;
	r.rows = c->exec.status == 0 ? c->exec.rows : -1;
	r.groups = c->groups.data;
	snprintf(detail, sizeof detail, "{\"approval\":\"%s\",\"approved_by\":\"%s\"}", c->approval.id, c->claims.sub);
	audit_then(c, &r, NULL);
}

static void w_decide_approval(struct ctx *c, struct worker *w, bool approve)
{
	struct gh_audit_record r;
	char detail[300];
	if (!load_visible(c, w))
		return to_loop(c);
	const char *code = NULL;
	char msg[256];
	const char *event = approve ? "approval.approve" : "approval.reject";
	int st = gh_approvals_check_decider(c->policy, &c->approval, c->claims.sub, &code, msg, sizeof msg);
	if (!st && gh_store_approval_claim(w->store, c->approval.id, approve ? GH_APPROVAL_EXECUTING : GH_APPROVAL_REJECTED,
					   c->claims.sub, gh_now()) != 0) {
		st = 409;
		code = "already_decided";
		snprintf(msg, sizeof msg, "approval %s was decided by someone else first", c->approval.id);
	}
	if (st) {
		set_error(c, st, code, msg, code);
		c->verdict.decision = GH_DENY;
		snprintf(c->verdict.rule, sizeof c->verdict.rule, "%s", code);
		record_approval(c, &r, event, "refused", detail, sizeof detail);
		return audit_then(c, &r, NULL);
	}
	if (!approve) {
		c->verdict.decision = GH_DENY;
		snprintf(c->verdict.rule, sizeof c->verdict.rule, "rejected-by-reviewer");
		char m[200];
		int n = snprintf(m, sizeof m, "\"approval\":{\"id\":\"%s\",\"status\":\"rejected\"}", c->approval.id);
		set_ok(c, 200, m, (size_t)n);
		record_approval(c, &r, event, "rejected", detail, sizeof detail);
		return audit_then(c, &r, NULL);
	}
	/* Approved: decide again under the current policy with a fresh analysis, as the requester. */
	const struct gh_policy_resource *res = gh_config_resource(c->policy, c->approval.resource);
	const struct gh_policy_resenv *re = gh_config_resenv(res, c->approval.environment);
	sqlite3 *db = NULL;
	struct gh_error err;
	const char *stmt = c->approval.statement;
	if (!re || (res->kind == GH_RESOURCE_POSTGRES ? gh_sql_analyze_pg(stmt, strlen(stmt), &c->analysis)
		    : gh_connector_sqlite(w->conn, re->path, &db, &err) ||
			      gh_sql_analyze_sqlite(db, stmt, strlen(stmt), &c->analysis))) {
		gh_store_approval_finish(w->store, c->approval.id, GH_APPROVAL_FAILED,
					 "{\"error\":\"the resource is no longer available\"}");
		set_error(c, 409, "resource_unavailable", "the resource or environment is no longer available", NULL);
		c->verdict.decision = GH_DENY;
		snprintf(c->verdict.rule, sizeof c->verdict.rule, "unknown-resource");
		record_approval(c, &r, event, "failed", detail, sizeof detail);
		return audit_then(c, &r, NULL);
	}
	c->res_def = res;
	c->resenv = re;
	struct gh_request_facts f = {c->approval.requester, c->approval.app, c->approval.resource,
				     c->approval.environment, c->analysis->cls, c->analysis->reason, c->analysis->own_only,
				     c->analysis};
	gh_policy_decide(c->policy, &f, &c->verdict);
	if (c->verdict.decision == GH_DENY) {
		char result[600];
		snprintf(result, sizeof result, "{\"error\":\"denied under the current policy\",\"rule\":\"%s\"}",
			 c->verdict.rule);
		gh_store_approval_finish(w->store, c->approval.id, GH_APPROVAL_FAILED, result);
		set_error(c, 403, "denied", c->verdict.message, c->verdict.rule);
		record_approval(c, &r, event, "denied", detail, sizeof detail);
		return audit_then(c, &r, NULL);
	}
	c->verdict.decision = GH_ALLOW;
	snprintf(c->verdict.rule, sizeof c->verdict.rule, "approved-by:%s", c->claims.sub);
	record_approval(c, &r, event, "approved", detail, sizeof detail);
	audit_then(c, &r, w_approval_execute);
}

static void w_approve(struct ctx *c, struct worker *w)
{
	w_decide_approval(c, w, true);
}

static void w_reject(struct ctx *c, struct worker *w)
{
	w_decide_approval(c, w, false);
}

/* ---------------------------------------------------------------- audit read */

static int audit_one(const char *line, size_t len, void *arg)
{
	struct ctx *c = arg;
	bool admin = gh_config_is_admin(c->policy, c->claims.sub);
	json_error_t je;
	json_t *v = json_loadb(line, len, 0, &je);
	json_t *seq = json_object_get(v, "seq"), *res = json_object_get(v, "resource");
	bool show = admin || (json_is_string(res) && gh_policy_owns(c->policy, c->claims.sub, json_string_value(res)));
	if (json_is_integer(seq))
		c->since = json_integer_value(seq);
	json_decref(v);
	if (!show)
		return 0;
	if (c->exec.rows++)
		gh_buf_puts(&c->exec.json, ",");
	if (gh_buf_append(&c->exec.json, line, len))
		return 1;
	return --c->limit <= 0;
}

static void w_audit(struct ctx *c, struct worker *w)
{
	struct gh_error err;
	gh_buf_puts(&c->exec.json, "\"records\":[");
	c->exec.rows = 0;
	if (gh_audit_read(c->srv->o.datadir, c->since, INT64_MAX, audit_one, c, &err)) {
		set_error(c, 500, "audit_unavailable", "the audit trail could not be read", NULL);
		return to_loop(c);
	}
	gh_buf_printf(&c->exec.json, "],\"next_since\":%lld", (long long)c->since);
	set_ok(c, 200, c->exec.json.data, c->exec.json.len);
	record_read(c, "audit.read", c->exec.rows);
}

static bool query_int(struct ctx *c, const char *name, int64_t def, int64_t min, int64_t max, int64_t *out)
{
	struct gh_str v;
	*out = def;
	if (!gh_http_query_param(&c->req, name, &v))
		return true;
	char buf[24];
	if (v.len == 0 || v.len >= sizeof buf) {
		set_error(c, 400, "bad_request", "query parameter is not a number in range", NULL);
		return false;
	}
	memcpy(buf, v.p, v.len);
	buf[v.len] = '\0';
	if (gh_parse_int(buf, min, max, out)) {
		set_error(c, 400, "bad_request", "query parameter is not a number in range", NULL);
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------- endpoints of api_*.c */

static void w_api(struct ctx *c, struct worker *w)
{
	const struct gh_api_route *rt = c->api;
	char method[16];
	snprintf(method, sizeof method, "%.*s", (int)c->req.method.len, c->req.method.p);
	struct gh_str seg = gh_api_segment(rt, c->req.path.p, c->req.path.len);
	char *rest = strndup(seg.p, seg.len);
	char *body = malloc(c->req.body.len + 1);
	if (!rest || !body) {
		free(rest);
		free(body);
		set_error(c, 500, "internal", "out of memory", NULL);
		return to_loop(c);
	}
	if (c->req.body.len)
		memcpy(body, c->req.body.p, c->req.body.len);
	body[c->req.body.len] = '\0';
	static const struct gh_claims none;
	struct gh_api_req rq = {
		.srv = c->srv, .w = w, .policy = c->policy,
		.policy_version = c->policy ? c->policy->version : 0,
		.claims = rt->access == GH_API_OPEN ? &none : &c->claims,
		.groups_json = c->groups.data ? c->groups.data : "[]",
		.admin = rt->access != GH_API_OPEN && c->policy && gh_config_is_admin(c->policy, c->claims.sub),
		.http = &c->req, .method = method, .rest = rest, .body = body, .bodylen = c->req.body.len,
		.request_id = c->request_id, .client = c->conn->peer,
	};
	struct gh_api_resp rs = {.status = 500, .body = &c->out, .rows = -1};
	gh_buf_reset(&c->out);
	rt->fn(&rq, &rs);
	free(rest);
	sodium_memzero(body, c->req.body.len); /* a body may carry a secret being set */
	free(body);
	if (c->req.body.len) /* and so does the request as it was read */
		sodium_memzero(c->raw + (c->req.body.p - c->raw), c->req.body.len);
	c->status = rs.status;
	c->content_type = rs.content_type;
	if (rt->kind == GH_API_CHANGE && rs.status < 300 && !rq.audited) {
		gh_log(GH_LOG_ERROR, "%s %s: a change handler answered without recording", rt->method, rt->path);
		set_error(c, 500, "internal", "the change was not recorded", NULL);
		c->content_type = NULL;
		return to_loop(c);
	}
	if (rt->kind == GH_API_READ && rt->event) {
		struct gh_audit_record r;
		record_base(c, &r, rt->event);
		r.environment = rs.environment ? rs.environment : (c->claims.env[0] ? c->claims.env : NULL);
		r.resource = rs.resource;
		r.rows = rs.rows;
		r.decision = rs.status < 400 ? "allow" : "deny";
		r.status = rs.status < 400 ? "ok" : "refused";
		r.duration_ms = (double)(gh_mono_us() - c->start_us) / 1000.0;
		r.detail_json = rs.detail[0] ? rs.detail : NULL;
		r.rule = rs.rule[0] ? rs.rule : NULL;
		return audit_then(c, &r, NULL);
	}
	to_loop(c);
}

/* Checks the route's access on the loop thread, then runs it on a worker. */
static void dispatch_api(struct ctx *c, const struct gh_api_route *rt)
{
	c->api = rt;
	if (rt->access != GH_API_OPEN) {
		if (!c->policy) {
			set_error(c, 503, "no_policy", "no policy has been applied yet (gatehouse apply)", NULL);
			return to_loop(c);
		}
		if (!authenticate(c))
			return to_loop(c);
		if (rt->access == GH_API_ADMIN && !gh_config_is_admin(c->policy, c->claims.sub)) {
			set_error(c, 403, "forbidden", "only the policy's admins may use this endpoint", NULL);
			/* a refused administrative attempt is worth a record */
			struct gh_audit_record r;
			record_base(c, &r, rt->kind == GH_API_CHANGE ? "admin.refused" : rt->event ? rt->event : "admin.refused");
			r.environment = c->claims.env;
			r.decision = "deny";
			r.rule = "not-admin";
			r.status = "refused";
			return audit_then(c, &r, NULL);
		}
	}
	to_worker(c, w_api);
}

/* ---------------------------------------------------------------- routing */

/* Matches /v1/approvals/{id}[/suffix]; copies the id. */
static bool match_approval(struct ctx *c, const char *suffix)
{
	struct gh_str p = c->req.path;
	const char *pre = "/v1/approvals/";
	size_t pl = strlen(pre), sl = strlen(suffix);
	if (p.len <= pl + sl || memcmp(p.p, pre, pl) != 0)
		return false;
	size_t idlen = p.len - pl - sl;
	if (sl && memcmp(p.p + p.len - sl, suffix, sl) != 0)
		return false;
	if (idlen == 0 || idlen >= sizeof c->approval_id)
		return false;
	for (size_t i = 0; i < idlen; i++) {
		char ch = p.p[pl + i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
			return false;
	}
	memcpy(c->approval_id, p.p + pl, idlen);
	c->approval_id[idlen] = '\0';
	return true;
}

static void dispatch(struct ctx *c)
{
	struct server *srv = c->srv;
	struct gh_str m = c->req.method, p = c->req.path;
	bool get = gh_str_eq(m, "GET"), post = gh_str_eq(m, "POST");
	enum route want_get = R_NONE, want_post = R_NONE;

	if (c->conn->metrics_only) {
		/* the tokenless listener: the metrics page (no data, fixed labels; see api_metrics.c)
		 * and liveness, nothing else; a scrape is not audited */
		static const struct gh_api_route open_metrics = {"GET", "/metrics", GH_API_OPEN, GH_API_READ, NULL,
								 gh_api_metrics_get};
		bool metrics = gh_str_eq(p, "/metrics"), health = gh_str_eq(p, "/healthz");
		if ((metrics || health) && !get)
			set_error(c, 405, "method_not_allowed", "method not allowed on this endpoint", NULL);
		else if (metrics)
			return dispatch_api(c, &open_metrics);
		else if (health)
			set_ok(c, 200, "\"status\":\"ok\"", strlen("\"status\":\"ok\""));
		else
			set_error(c, 404, "not_found", "this listener serves only GET /metrics and GET /healthz", NULL);
		return to_loop(c);
	}

	if (gh_str_eq(p, "/healthz")) want_get = R_HEALTH;
	else if (gh_str_eq(p, "/.well-known/jwks.json")) want_get = R_JWKS;
	else if (gh_str_eq(p, "/v1/query")) want_post = R_QUERY;
	else if (gh_str_eq(p, "/v1/approvals")) want_get = R_APPROVALS;
	else if (gh_str_eq(p, "/v1/audit")) want_get = R_AUDIT;
	else if (match_approval(c, "/approve")) want_post = R_APPROVE;
	else if (match_approval(c, "/reject")) want_post = R_REJECT;
	else if (match_approval(c, "")) want_get = R_APPROVAL;

	if (want_get == R_NONE && want_post == R_NONE) {
		bool wrong_method = false;
		const struct gh_api_route *rt = gh_api_find(m.p, m.len, p.p, p.len, &wrong_method);
		if (rt)
			return dispatch_api(c, rt);
		if (wrong_method)
			set_error(c, 405, "method_not_allowed", "method not allowed on this endpoint", NULL);
		else
			set_error(c, 404, "not_found", "no such endpoint", NULL);
		return to_loop(c);
	}
	if ((get && want_get == R_NONE) || (post && want_post == R_NONE) || (!get && !post)) {
		set_error(c, 405, "method_not_allowed", "method not allowed on this endpoint", NULL);
		return to_loop(c);
	}
	c->route = get ? want_get : want_post;
	if (c->route == R_HEALTH) {
		static const char ok[] = "\"status\":\"ok\"";
		set_ok(c, 200, ok, sizeof ok - 1);
		return to_loop(c);
	}
	if (c->route == R_JWKS) {
		c->status = 200;
		gh_identity_jwks(&srv->signer, &c->out);
		return to_loop(c);
	}
	if (!c->policy) {
		set_error(c, 503, "no_policy", "no policy has been applied yet (gatehouse apply)", NULL);
		return to_loop(c);
	}
	if (!authenticate(c))
		return to_loop(c);
	switch (c->route) {
	case R_QUERY:
		return handle_query(c);
	case R_APPROVALS:
		return to_worker(c, w_list_approvals);
	case R_APPROVAL:
		return to_worker(c, w_get_approval);
	case R_APPROVE:
		return to_worker(c, w_approve);
	case R_REJECT:
		return to_worker(c, w_reject);
	case R_AUDIT: {
		bool admin = gh_config_is_admin(c->policy, c->claims.sub);
		bool owner = false;
		for (size_t i = 0; !admin && i < c->policy->nresources; i++)
			owner = owner || gh_policy_owns(c->policy, c->claims.sub, c->policy->resources[i].name);
		if (!admin && !owner) {
			set_error(c, 403, "forbidden", "only admins and resource owners may read the audit trail", NULL);
			return to_loop(c);
		}
		if (!query_int(c, "since", 0, 0, INT64_MAX, &c->since) || !query_int(c, "limit", 100, 1, 1000, &c->limit))
			return to_loop(c);
		return to_worker(c, w_audit);
	}
	default:
		set_error(c, 404, "not_found", "no such endpoint", NULL);
		return to_loop(c);
	}
}

/* ---------------------------------------------------------------- connections */

static struct ctx *ctx_new(struct conn *cn)
{
	struct server *srv = cn->srv;
	struct ctx *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->srv = srv;
	c->conn = cn;
	c->start_us = gh_mono_us();
	c->start_ms = gh_now_ms();
	gh_srv_request_id(srv, c->request_id, sizeof c->request_id);
	gh_buf_init(&c->out, (size_t)GH_DEFAULT_MAX_RESULT_BYTES + 64 * 1024);
	gh_buf_init(&c->groups, 64 * 1024);
	gh_buf_init(&c->tables, 1 << 20);
	gh_buf_init(&c->exec.json, (size_t)GH_DEFAULT_MAX_RESULT_BYTES);
	gh_buf_init(&c->audit.body, GH_AUDIT_MAX_RECORD);
	return c;
}

/* Parses and dispatches the next request on cn if one is complete. */
static void conn_process(struct conn *cn)
{
	struct server *srv = cn->srv;
	if (cn->busy || cn->closed || cn->lingering)
		return;
	/* a client that does not read its responses gets no more work done for it */
	if (evbuffer_get_length(bufferevent_get_output(cn->bev)) > GH_HTTP_MAX_PENDING_OUTPUT)
		return;
	struct evbuffer *in = bufferevent_get_input(cn->bev);
	size_t avail = evbuffer_get_length(in);
	if (avail == 0 || avail < cn->need)
		return;
	const uint8_t *buf = evbuffer_pullup(in, -1);
	struct gh_http_request req;
	size_t used = 0;
	int status = 0;
	const char *why = NULL;
	int rc = gh_http_parse(buf, avail, (size_t)srv->o.max_body, &used, &req, &status, &why);
	if (rc == GH_EAGAIN) {
		cn->need = req.header_bytes ? req.header_bytes + req.content_length : avail + 1;
		return;
	}
	cn->need = 0;
	struct ctx *c = ctx_new(cn);
	if (!c) {
		bufferevent_free(cn->bev);
		cn->bev = NULL;
		conn_free(cn);
		return;
	}
	cn->busy = true;
	srv->inflight++;
	if (rc) {
		/* Refused before any policy: answer and close (the stream's framing is unknown). */
		set_error(c, status, status == 413 ? "too_large" : "bad_request", why, NULL);
		c->keep_alive = false;
		evbuffer_drain(in, avail);
		return to_loop(c);
	}
	c->raw = malloc(used + 1);
	if (!c->raw) {
		set_error(c, 500, "internal", "out of memory", NULL);
		c->keep_alive = false;
		return to_loop(c);
	}
	memcpy(c->raw, buf, used);
	c->raw[used] = '\0';
	size_t used2 = 0;
	gh_http_parse((const uint8_t *)c->raw, used, (size_t)srv->o.max_body, &used2, &c->req, &status, &why);
	evbuffer_drain(in, used);
	c->keep_alive = c->req.keep_alive && !srv->stopping;
	gh_srv_refresh(srv);
	if (srv->policy) {
		gh_config_ref(srv->policy);
		c->policy = srv->policy;
	}
	dispatch(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *cn = arg;
	if (cn->lingering) {
		struct evbuffer *in = bufferevent_get_input(bev);
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	conn_process(cn);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct conn *cn = arg;
	if (cn->lingering) {
		if (!cn->busy && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			shutdown(bufferevent_getfd(bev), SHUT_WR);
		return;
	}
	conn_process(cn); /* output drained: pipelined requests may go on */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *cn = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		if (cn->busy) {
			/* the request finishes (and is audited); its response has nowhere to go */
			bufferevent_free(cn->bev);
			cn->bev = NULL;
			cn->closed = true;
		} else {
			conn_free(cn);
		}
	}
}

static void accept_conn(struct server *srv, evutil_socket_t fd, struct sockaddr *sa, bool metrics_only)
{
	if (srv->nconns >= GH_HTTP_MAX_CONNECTIONS || srv->stopping) {
		evutil_closesocket(fd);
		return;
	}
	struct conn *cn = calloc(1, sizeof *cn);
	if (!cn) {
		evutil_closesocket(fd);
		return;
	}
	cn->srv = srv;
	cn->metrics_only = metrics_only;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		port = ntohs(in6->sin6_port);
	}
	snprintf(cn->peer, sizeof cn->peer, "%s:%d", host, port);
	cn->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!cn->bev) {
		evutil_closesocket(fd);
		free(cn);
		return;
	}
	srv->nconns++;
	cn->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = cn;
	srv->conns = cn;
	struct timeval idle = {GH_HTTP_IDLE_SECONDS, 0};
	bufferevent_set_timeouts(cn->bev, &idle, &idle);
	/* bound what a client can make us buffer: the largest request plus slack */
	bufferevent_setwatermark(cn->bev, EV_READ, 0, (size_t)srv->o.max_body + GH_HTTP_MAX_HEADER_BYTES +
				 GH_HTTP_MAX_REQUEST_LINE + 4096);
	bufferevent_setcb(cn->bev, on_read, on_write, on_event, cn);
	bufferevent_enable(cn->bev, EV_READ | EV_WRITE);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	accept_conn(arg, fd, sa, false);
}

static void on_accept_metrics(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
			      void *arg)
{
	accept_conn(arg, fd, sa, true);
}

/* ---------------------------------------------------------------- start and stop */

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	if (srv->inflight == 0 || gh_mono_us() > srv->stop_deadline)
		event_base_loopexit(srv->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;
	if (srv->stopping)
		return;
	srv->stopping = true;
	gh_log(GH_LOG_INFO, "signal %d: stopping after %d request(s) in flight", (int)sig, srv->inflight);
	evconnlistener_disable(srv->listener);
	if (srv->metrics_listener)
		evconnlistener_disable(srv->metrics_listener);
	gh_pgwire_stop(srv);
	srv->stop_deadline = gh_mono_us() + 10u * 1000000u;
	struct timeval tick = {0, 20000};
	srv->drain = event_new(srv->base, -1, EV_PERSIST, on_drain, srv);
	event_add(srv->drain, &tick);
}

int gh_srv_parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	int64_t port;
	if (!colon || (size_t)(colon - addr) >= sizeof host || gh_parse_int(colon + 1, 0, 65535, &port))
		return GH_EINVAL;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len = sizeof *in;
		return 0;
	}
	size_t hl = strlen(host);
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1) {
			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons((uint16_t)port);
			*len = sizeof *in6;
			return 0;
		}
	}
	return GH_EINVAL;
}

void gh_server_opts_default(struct gh_server_opts *o)
{
	memset(o, 0, sizeof *o);
	o->http_addr = "127.0.0.1:8080";
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	o->workers = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (int)ncpu; /* one per core */
	o->max_body = GH_DEFAULT_MAX_BODY;
	o->max_statement = GH_DEFAULT_MAX_STATEMENT;
	o->max_rows = GH_DEFAULT_MAX_ROWS;
	o->statement_ms = GH_DEFAULT_STATEMENT_MS;
	o->approval_ttl = GH_DEFAULT_APPROVAL_TTL;
	o->pg_pool = 8;
	o->pg_wait_ms = 5000;
	o->pg_max_packet = 1024 * 1024;
}

static void free_claims(void *p)
{
	free(p);
}

static void free_analysis(void *p)
{
	gh_sql_analysis_unref(p);
}

/* The pools' way to a credential: read and opened on demand, never cached in the clear. */
static int pg_dsn(void *arg, const char *secret, char *out, size_t cap)
{
	struct server *srv = arg;
	char *v = NULL;
	int64_t version = 0;
	pthread_mutex_lock(&srv->vault_mu);
	sodium_mprotect_readonly(srv->master);
	int rc = gh_vault_secret_get(srv->vault_store, srv->master, secret, &v, &version);
	sodium_mprotect_noaccess(srv->master);
	pthread_mutex_unlock(&srv->vault_mu);
	if (rc)
		return rc;
	size_t n = strlen(v);
	if (n >= cap) {
		gh_vault_secret_free(v);
		return GH_ETOOBIG;
	}
	memcpy(out, v, n + 1);
	gh_vault_secret_free(v);
	return 0;
}

/* Prints "listening on SCHEME://ADDR:PORT" for l's bound address. */
static void print_listener(struct evconnlistener *l, const char *scheme)
{
	struct sockaddr_storage bound;
	socklen_t blen = sizeof bound;
	getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound, &blen);
	char host[INET6_ADDRSTRLEN] = "?";
	if (bound.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&bound;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		printf("listening on %s://%s:%d\n", scheme, host, ntohs(in->sin_port));
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&bound;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		printf("listening on %s://[%s]:%d\n", scheme, host, ntohs(in6->sin6_port));
	}
}

/* libevent's warnings and errors, as log lines. */
static void on_libevent_log(int severity, const char *msg)
{
	enum gh_log_level l = severity >= EVENT_LOG_ERR ? GH_LOG_ERROR : severity == EVENT_LOG_WARN ? GH_LOG_WARN
			      : severity == EVENT_LOG_MSG				       ? GH_LOG_INFO
											       : GH_LOG_DEBUG;
	gh_log_kv(l, "libevent", "detail", msg, NULL);
}

int gh_server_run(const struct gh_server_opts *o, struct gh_error *err)
{
	struct server *srv = calloc(1, sizeof *srv);
	uint8_t master[GH_VAULT_KEY_BYTES];
	char dbpath[PATH_MAX];
	int rc = 0;
	if (!srv)
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	srv->o = *o;
	pthread_mutex_init(&srv->wmu, NULL);
	pthread_cond_init(&srv->wcv, NULL);
	pthread_mutex_init(&srv->cmu, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN); /* a file-size limit makes writes fail (and the audit fail closed) */
	/* No core files: the process holds the master key, opened secrets and libpq's copies of
	 * backend credentials. */
	struct rlimit nocore = {0, 0};
	setrlimit(RLIMIT_CORE, &nocore);
	randombytes_buf(&srv->rid_prefix, sizeof srv->rid_prefix);

	if (gh_path_join(dbpath, sizeof dbpath, o->datadir, "gatehouse.db")) {
		rc = gh_error_set(err, GH_ETOOBIG, "path too long");
		goto out;
	}
	if ((rc = gh_store_open(dbpath, true, &srv->store, err)))
		goto out;
	{
		/* the limits this server enforces, for `gatehouse readiness` */
		char lim[320];
		snprintf(lim, sizeof lim,
			 "{\"max_body\":%lld,\"max_statement\":%lld,\"max_rows\":%lld,\"statement_ms\":%lld,"
			 "\"approval_ttl\":%lld,\"pg_max_packet\":%lld,\"started_ms\":%lld}",
			 (long long)o->max_body, (long long)o->max_statement, (long long)o->max_rows,
			 (long long)o->statement_ms, (long long)o->approval_ttl, (long long)o->pg_max_packet,
			 (long long)gh_now_ms());
		if (gh_store_meta_set(srv->store, "server.limits", lim))
			gh_log(GH_LOG_WARN, "could not record the server's limits in the store");
	}
	if ((rc = gh_vault_master_load(o->datadir, master, err)))
		goto out;
	rc = gh_identity_signer_load(srv->store, master, &srv->signer, err);
	/* Kept for the vault, in guarded memory that is inaccessible except while a secret is
	 * being opened. */
	srv->master = sodium_malloc(GH_VAULT_KEY_BYTES);
	if (srv->master) {
		memcpy(srv->master, master, GH_VAULT_KEY_BYTES);
		sodium_mprotect_noaccess(srv->master);
	}
	gh_vault_wipe(master, sizeof master);
	if (rc)
		goto out;
	if (!srv->master) {
		rc = gh_error_set(err, GH_ENOMEM, "out of memory");
		goto out;
	}
	pthread_mutex_init(&srv->vault_mu, NULL);
	if ((rc = gh_store_open(dbpath, true, &srv->vault_store, err)))
		goto out;
	srv->pg = gh_pg_pools_new(o->pg_pool, o->pg_wait_ms, pg_dsn, srv);
	if (!srv->pg) {
		rc = gh_error_set(err, GH_ENOMEM, "out of memory");
		goto out;
	}
	{
		int n = 0;
		gh_store_approvals_recover(srv->store, &n);
		if (n)
			gh_log(GH_LOG_WARN, "%d approved write(s) were executing when the server stopped; marked "
			       "interrupted and not run again", n);
	}
	srv->revoked = gh_map_new(NULL);
	srv->token_cache = gh_map_new(free_claims);
	if (!srv->revoked || !srv->token_cache) {
		rc = gh_error_set(err, GH_ENOMEM, "out of memory");
		goto out;
	}
	srv->data_version = -1;
	srv->revocations = -1;
	gh_srv_refresh(srv);
	if (!srv->policy)
		gh_log(GH_LOG_WARN, "no policy applied yet: every data request is refused until 'gatehouse apply'");
	if ((rc = gh_audit_open(o->datadir, &srv->audit, err)))
		goto out;
	if ((rc = gh_srv_metrics_init(srv, err)))
		goto out;
	/* Audit sinks and signed checkpoints (audit/sink.c): prepared here with the policy's audit
	 * section as it is now (a change applies at the next start), started once listening. */
	pthread_mutex_lock(&srv->vault_mu);
	sodium_mprotect_readonly(srv->master);
	rc = gh_audit_sinks_open(o->datadir, srv->policy ? &srv->policy->audit : NULL, srv->master, pg_dsn, srv,
				 &srv->sinks, err);
	sodium_mprotect_noaccess(srv->master);
	pthread_mutex_unlock(&srv->vault_mu);
	if (rc)
		goto out;
	gh_audit_on_durable(srv->audit, gh_audit_sinks_wake, srv->sinks);
	if ((rc = gh_audit_sinks_metrics(srv->sinks, srv->metrics))) {
		gh_error_set(err, rc, "metrics: the audit sinks' families could not be registered");
		goto out;
	}
	if ((rc = gh_audit_start(srv->audit))) {
		gh_error_set(err, rc, "cannot start the audit writer");
		goto out;
	}
	{
		/* usage analytics are not on the data path: without the index the server still serves */
		struct gh_error uerr;
		if (gh_usage_open(o->datadir, &srv->usage, &uerr))
			gh_log(GH_LOG_WARN, "usage index unavailable (GET /v1/usage answers 503): %s", uerr.message);
		else if (gh_usage_start(srv->usage, GH_USAGE_INTERVAL_MS))
			gh_log(GH_LOG_WARN, "usage index: no background thread; requests catch it up");
	}

	evthread_use_pthreads();
	event_set_log_callback(on_libevent_log); /* libevent's own warnings: JSON lines too */
	srv->base = event_base_new();
	if (!srv->base) {
		rc = gh_error_set(err, GH_EINTERNAL, "cannot create the event loop");
		goto out;
	}
	struct sockaddr_storage ss;
	socklen_t sslen;
	if (gh_srv_parse_addr(o->http_addr, &ss, &sslen)) {
		rc = gh_error_set(err, GH_EINVAL, "--http: expected HOST:PORT (e.g. 127.0.0.1:8080), got '%s'", o->http_addr);
		goto out;
	}
	srv->listener = evconnlistener_new_bind(srv->base, on_accept, srv,
						LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 1024,
						(struct sockaddr *)&ss, (int)sslen);
	if (!srv->listener) {
		rc = gh_error_set(err, GH_EIO, "cannot listen on %s: %s", o->http_addr, strerror(errno));
		goto out;
	}
	if (o->metrics_addr) {
		if (gh_srv_parse_addr(o->metrics_addr, &ss, &sslen)) {
			rc = gh_error_set(err, GH_EINVAL, "--metrics: expected HOST:PORT (e.g. 127.0.0.1:9090), got '%s'",
					  o->metrics_addr);
			goto out;
		}
		srv->metrics_listener = evconnlistener_new_bind(srv->base, on_accept_metrics, srv,
								LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
									LEV_OPT_CLOSE_ON_EXEC,
								64, (struct sockaddr *)&ss, (int)sslen);
		if (!srv->metrics_listener) {
			rc = gh_error_set(err, GH_EIO, "cannot listen on %s: %s", o->metrics_addr, strerror(errno));
			goto out;
		}
	}
	srv->wake = event_new(srv->base, -1, EV_PERSIST | EV_READ, on_wake, srv);
	srv->sigint = evsignal_new(srv->base, SIGINT, on_signal, srv);
	srv->sigterm = evsignal_new(srv->base, SIGTERM, on_signal, srv);
	event_add(srv->sigint, NULL);
	event_add(srv->sigterm, NULL);

	srv->max_threads = GH_MAX_WORKERS;
	srv->threads = calloc((size_t)srv->max_threads, sizeof *srv->threads);
	if (!srv->threads || gh_path_join(srv->dbpath, sizeof srv->dbpath, o->datadir, "gatehouse.db")) {
		rc = gh_error_set(err, GH_ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < (o->workers > 0 ? o->workers : 1); i++) {
		pthread_mutex_lock(&srv->wmu);
		int wrc = worker_start(srv);
		pthread_mutex_unlock(&srv->wmu);
		if (wrc) {
			rc = gh_error_set(err, GH_EINTERNAL, "cannot start worker threads");
			goto out;
		}
	}

	print_listener(srv->listener, "http");
	fflush(stdout);
	if (o->pg_addr && (rc = gh_pgwire_start(srv, err)))
		goto out;
	if (srv->metrics_listener) {
		print_listener(srv->metrics_listener, "metrics http");
		fflush(stdout);
	}
	if ((rc = gh_audit_sinks_start(srv->sinks, err)))
		goto out;
	{
		char nw[16], pv[24];
		snprintf(nw, sizeof nw, "%d", srv->nthreads);
		snprintf(pv, sizeof pv, "%lld", (long long)srv->policy_version);
		gh_log_kv(GH_LOG_INFO, "serving", "data", o->datadir, "workers", nw, "policy_version", pv, NULL);
	}
	event_base_dispatch(srv->base);
	gh_log(GH_LOG_INFO, "stopped");

out:
	if (srv->threads) {
		pthread_mutex_lock(&srv->wmu);
		srv->wstop = true;
		pthread_cond_broadcast(&srv->wcv);
		pthread_mutex_unlock(&srv->wmu);
		for (int i = 0; i < srv->nthreads; i++)
			pthread_join(srv->threads[i], NULL);
		free(srv->threads);
	}
	gh_usage_close(srv->usage);
	gh_audit_close(srv->audit); /* drains queued records */
	gh_audit_sinks_close(srv->sinks); /* the shutdown checkpoint; what the sinks can still deliver */
	if (srv->wake)
		on_wake(-1, 0, srv); /* responses that completed while draining */
	while (srv->conns)
		conn_free(srv->conns);
	gh_pgwire_free(srv);
	if (srv->listener)
		evconnlistener_free(srv->listener);
	if (srv->metrics_listener)
		evconnlistener_free(srv->metrics_listener);
	if (srv->wake) event_free(srv->wake);
	if (srv->sigint) event_free(srv->sigint);
	if (srv->sigterm) event_free(srv->sigterm);
	if (srv->drain) event_free(srv->drain);
	if (srv->base)
		event_base_free(srv->base);
	gh_map_free(srv->revoked);
	gh_map_free(srv->token_cache);
	if (srv->policy)
		gh_config_unref(srv->policy);
	gh_identity_signer_wipe(&srv->signer);
	gh_pg_pools_free(srv->pg);
	gh_metrics_free(srv->metrics); /* after the audit writer and the workers, its last users */
	gh_store_close(srv->vault_store);
	if (srv->master)
		sodium_free(srv->master);
	gh_store_close(srv->store);
	pthread_mutex_destroy(&srv->wmu);
	pthread_cond_destroy(&srv->wcv);
	pthread_mutex_destroy(&srv->cmu);
	free(srv);
	return rc;
}
