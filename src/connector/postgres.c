/* connector: PostgreSQL resources through libpq. Worker threads run requests with blocking
 * libpq calls on pooled connections; every request is its own transaction, reads READ ONLY,
 * with the statement timeout and the caller's claims set local to it. */
#include "connector/connector.h"

#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DSN_MAX 16384
#define POOL_KEY_MAX (3 * GH_NAME_MAX + 4)

struct gh_pg_conn {
	struct pool *pool;
	PGconn *pg;
	uint64_t epoch;
	bool reused;
	bool broken;             /* the backend is gone: close it on release */
	struct gh_pg_conn *next; /* idle list */
};

struct pool {
	struct pool *next;
	char key[POOL_KEY_MAX];
	char secret[GH_NAME_MAX + 1];
	struct gh_pg_pools *owner;
	struct gh_pg_conn *idle;
	int open, nidle, waiting;
};

struct gh_pg_pools {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pool *pools;
	int max;
	int64_t wait_ms;
	uint64_t waits, timeouts;  /* acquires that had to wait; of those, the ones that gave up */
	gh_pg_dsn_fn dsn;
	void *arg;
};

struct gh_pg_pools *gh_pg_pools_new(int max_per_pool, int64_t wait_ms, gh_pg_dsn_fn dsn, void *arg)
{
	struct gh_pg_pools *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	p->max = max_per_pool > 0 ? max_per_pool : 1;
	p->wait_ms = wait_ms;
	p->dsn = dsn;
	p->arg = arg;
	return p;
}

void gh_pg_pools_free(struct gh_pg_pools *p)
{
	if (!p)
		return;
	for (struct pool *q = p->pools, *nq; q; q = nq) {
		nq = q->next;
		for (struct gh_pg_conn *c = q->idle, *nc; c; c = nc) {
			nc = c->next;
			PQfinish(c->pg);
			free(c);
		}
		free(q);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static struct pool *pool_find(struct gh_pg_pools *p, const char *key, const char *secret)
{
	for (struct pool *q = p->pools; q; q = q->next)
		if (strcmp(q->key, key) == 0)
			return q;
	struct pool *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	snprintf(q->key, sizeof q->key, "%s", key);
	snprintf(q->secret, sizeof q->secret, "%s", secret);
	q->owner = p;
	q->next = p->pools;
	p->pools = q;
	return q;
}

/* libpq's connection error, with any line that might quote the connection string removed:
 * libpq reports option names and host names, not passwords, but a malformed string can be
 * echoed in "invalid ..." messages, so those are replaced wholesale. */
static void connect_error(PGconn *pg, struct gh_error *err)
{
	const char *m = pg ? PQerrorMessage(pg) : "out of memory";
	if (!m || strstr(m, "invalid") || strstr(m, "missing \"=\"") || strstr(m, "URI"))
		m = "the connection string in the resource's secret is not valid";
	char clean[300];
	snprintf(clean, sizeof clean, "%s", m);
	for (char *q = clean; *q; q++)
		if (*q == '\n' || *q == '\r')
			*q = ' ';
	gh_error_set(err, GH_EIO, "cannot connect to the resource's database: %s", clean);
}

/* Backends' notices (RAISE NOTICE, "relation already exists, skipping"...) may quote data:
 * libpq's default prints them on stderr. They go to the log only when sensitive logging is on
 * (--log-level debug --log-sensitive), as JSON like every other line. */
static void on_notice(void *arg, const char *message)
{
	(void)arg;
	if (!gh_log_sensitive())
		return;
	char clean[1024];
	snprintf(clean, sizeof clean, "%s", message ? message : "");
	size_t n = strlen(clean);
	while (n && (clean[n - 1] == '\n' || clean[n - 1] == '\r'))
		clean[--n] = '\0';
	gh_log_kv(GH_LOG_DEBUG, "backend notice", "notice", clean, NULL);
}

static PGconn *open_conn(struct gh_pg_pools *p, const char *secret, struct gh_error *err)
{
	if (gh_pq_load(err))
		return NULL;
	char *dsn = sodium_malloc(DSN_MAX);
	if (!dsn) {
		gh_error_set(err, GH_ENOMEM, "out of memory");
		return NULL;
	}
	int rc = p->dsn(p->arg, secret, dsn, DSN_MAX);
	if (rc) {
		sodium_free(dsn);
		gh_error_set(err, rc == GH_ENOTFOUND ? GH_ENOTFOUND : GH_EIO,
			     rc == GH_ENOTFOUND ? "the resource's secret '%s' is not set (gatehouse secret set)"
						: "the resource's secret '%s' cannot be read", secret);
		return NULL;
	}
	/* The secret's string comes first; what follows overrides it. */
	const char *const keys[] = {"dbname", "connect_timeout", "application_name", "client_encoding", NULL};
	const char *const vals[] = {dsn, "5", "gatehouse", "UTF8", NULL};
	PGconn *pg = PQconnectdbParams(keys, vals, 1);
	sodium_free(dsn); /* zeroed */
	if (!pg || PQstatus(pg) != CONNECTION_OK) {
		connect_error(pg, err);
		PQfinish(pg);
		return NULL;
	}
	PQsetNoticeProcessor(pg, on_notice, NULL);
	return pg;
}

int gh_pg_acquire(struct gh_pg_pools *p, const char *resource, const char *environment, const char *secret,
		  uint64_t epoch, struct gh_pg_conn **out, struct gh_error *err)
{
	char key[POOL_KEY_MAX];
	snprintf(key, sizeof key, "%s\x1f%s\x1f%s", resource, environment, secret);
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += p->wait_ms / 1000;
	deadline.tv_nsec += (p->wait_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->mu);
	struct pool *q = pool_find(p, key, secret);
	if (!q) {
		pthread_mutex_unlock(&p->mu);
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	}
	struct gh_pg_conn *stale = NULL;
	bool waited = false;
	for (;;) {
		while (q->idle) {
			struct gh_pg_conn *c = q->idle;
			q->idle = c->next;
			q->nidle--;
			if (c->epoch == epoch && PQstatus(c->pg) == CONNECTION_OK) {
				pthread_mutex_unlock(&p->mu);
				c->next = NULL;
				c->reused = true;
				/* close drained connections outside the lock */
				while (stale) {
					struct gh_pg_conn *n = stale->next;
					PQfinish(stale->pg);
					free(stale);
					stale = n;
				}
				*out = c;
				return 0;
			}
			q->open--; /* rotated secret or dead: drain */
			c->next = stale;
			stale = c;
		}
		if (q->open < p->max)
			break;
		if (!waited)
			p->waits++;
		waited = true;
		q->waiting++;
		int w = pthread_cond_timedwait(&p->cv, &p->mu, &deadline);
		q->waiting--;
		if (w != 0 && !q->idle && q->open >= p->max) {
			p->timeouts++;
			pthread_mutex_unlock(&p->mu);
			while (stale) {
				struct gh_pg_conn *n = stale->next;
				PQfinish(stale->pg);
				free(stale);
				stale = n;
			}
			return gh_error_set(err, GH_ETIMEOUT,
					    "all %d connections to the resource are busy; waited %lld ms", p->max,
					    (long long)p->wait_ms);
		}
	}
	q->open++;
	pthread_mutex_unlock(&p->mu);
	while (stale) {
		struct gh_pg_conn *n = stale->next;
		PQfinish(stale->pg);
		free(stale);
		stale = n;
	}
	struct gh_pg_conn *c = calloc(1, sizeof *c);
	PGconn *pg = c ? open_conn(p, secret, err) : NULL;
	if (!c && err)
		gh_error_set(err, GH_ENOMEM, "out of memory");
	if (!pg) {
		free(c);
		pthread_mutex_lock(&p->mu);
		q->open--;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		return err ? err->code : GH_EIO;
	}
	c->pool = q;
	c->pg = pg;
	c->epoch = epoch;
	*out = c;
	return 0;
}

void gh_pg_release(struct gh_pg_conn *c)
{
	if (!c)
		return;
	struct pool *q = c->pool;
	struct gh_pg_pools *p = q->owner;
	bool keep = !c->broken && PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) == PQTRANS_IDLE;
	pthread_mutex_lock(&p->mu);
	if (keep) {
		c->next = q->idle;
		q->idle = c;
		q->nidle++;
	} else {
		q->open--;
	}
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (!keep) {
		PQfinish(c->pg);
		free(c);
	}
}

PGconn *gh_pg_conn_pg(struct gh_pg_conn *c)
{
	return c->pg;
}

bool gh_pg_conn_reused(const struct gh_pg_conn *c)
{
	return c->reused;
}

void gh_pg_conn_discard(struct gh_pg_conn *c)
{
	c->broken = true;
}

bool gh_pg_lost(PGconn *pg, const PGresult *r)
{
	if (PQstatus(pg) != CONNECTION_OK)
		return true;
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	/* connection exceptions, and the backend being terminated (admin_shutdown,
	 * crash_shutdown, cannot_connect_now): the session is over even if the socket is not
	 * closed yet */
	return st && (strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 || strcmp(st, "57P02") == 0 ||
		      strcmp(st, "57P03") == 0);
}

void gh_pg_pool_stats(struct gh_pg_pools *p, int *open, int *idle, int *waiting)
{
	int o = 0, i = 0, w = 0;
	pthread_mutex_lock(&p->mu);
	for (struct pool *q = p->pools; q; q = q->next) {
		o += q->open;
		i += q->nidle;
		w += q->waiting;
	}
	pthread_mutex_unlock(&p->mu);
	*open = o;
	*idle = i;
	*waiting = w;
}

void gh_pg_pool_waits(struct gh_pg_pools *p, uint64_t *waits, uint64_t *timeouts)
{
	pthread_mutex_lock(&p->mu);
	*waits = p->waits;
	*timeouts = p->timeouts;
	pthread_mutex_unlock(&p->mu);
}

int gh_pg_pool_max(const struct gh_pg_pools *p)
{
	return p->max;
}

/* ---------------------------------------------------------------- running statements */

/* Copies a result's error into res; a broken connection is flagged for the pool. */
static int result_error(PGconn *pg, const PGresult *r, struct gh_exec_result *res)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	snprintf(res->sqlstate, sizeof res->sqlstate, "%s", state ? state : "");
	if (!msg)
		msg = PQerrorMessage(pg);
	snprintf(res->error, sizeof res->error, "%s", msg && *msg ? msg : "the statement failed");
	size_t n = strlen(res->error);
	while (n && (res->error[n - 1] == '\n' || res->error[n - 1] == ' '))
		res->error[--n] = '\0';
	if (gh_pg_lost(pg, r)) {
		res->conn_lost = true;
		snprintf(res->error, sizeof res->error, "the connection to the resource's database was lost");
		return res->status = GH_EIO;
	}
	if (strcmp(res->sqlstate, "57014") == 0) /* query_canceled: the statement timeout */
		return res->status = GH_ETIMEOUT;
	if (strncmp(res->sqlstate, "22", 2) == 0 || strcmp(res->sqlstate, "42P02") == 0 ||
	    strcmp(res->sqlstate, "08P01") == 0)
		return res->status = GH_EINVAL; /* data exceptions, undefined parameter: the caller's input */
	return res->status = GH_EIO;
}

/* Runs a utility command with no result rows. */
static int simple(PGconn *pg, const char *sql, struct gh_exec_result *res)
{
	PGresult *r = PQexec(pg, sql);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = result_error(pg, r, res);
	PQclear(r);
	return rc;
}

/* The claims and the statement timeout, set local to a transaction: $1 timeout (ms), $2..$5
 * user, groups, app, environment (claims_values fills them). */
#define SET_CLAIMS                                                                                       \
	" set_config('statement_timeout', $1, true),"                                                   \
	" set_config('gatehouse.user', $2, true), set_config('gatehouse.groups', $3, true),"             \
	" set_config('gatehouse.app', $4, true), set_config('gatehouse.environment', $5, true)"

static void claims_values(int64_t timeout_ms, const struct gh_pg_claims *claims, char tmo[32], const char *vals[5])
{
	snprintf(tmo, 32, "%lld", (long long)(timeout_ms > 0 ? timeout_ms : 0));
	vals[0] = tmo;
	vals[1] = claims->user ? claims->user : "";
	vals[2] = claims->groups ? claims->groups : "";
	vals[3] = claims->app ? claims->app : "";
	vals[4] = claims->environment ? claims->environment : "";
}

int gh_pg_begin(PGconn *pg, bool read_only, int64_t timeout_ms, const struct gh_pg_claims *claims,
		struct gh_exec_result *res)
{
	if (simple(pg, read_only ? "BEGIN READ ONLY" : "BEGIN", res))
		return res->status;
	char tmo[32];
	const char *vals[5];
	claims_values(timeout_ms, claims, tmo, vals);
	PGresult *r = PQexecParams(pg,
				   "SELECT set_config('idle_in_transaction_session_timeout', '60000', true)," SET_CLAIMS,
				   5, NULL, vals, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = result_error(pg, r, res);
	PQclear(r);
	if (rc) {
		PQclear(PQexec(pg, "ROLLBACK"));
		return rc;
	}
	return 0;
}

int gh_pg_pipeline_start(PGconn *pg, const struct gh_pg_stmt *st, bool read_only, int64_t timeout_ms,
			 const struct gh_pg_claims *claims, struct gh_exec_result *res)
{
	char tmo[32];
	const char *cv[5];
	claims_values(timeout_ms, claims, tmo, cv);
	if (!PQenterPipelineMode(pg))
		return result_error(pg, NULL, res);
	bool ok = PQsendQueryParams(pg, read_only ? "BEGIN READ ONLY" : "BEGIN", 0, NULL, NULL, NULL, NULL, 0) &&
		  PQsendQueryParams(pg, "SELECT" SET_CLAIMS, 5, NULL, cv, NULL, NULL, 0) &&
		  PQsendQueryParams(pg, st->sql, st->n, st->types, st->vals, st->lens, st->fmts, st->result_format) &&
		  (!read_only || PQsendQueryParams(pg, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0)) && PQpipelineSync(pg);
	if (!ok) {
		result_error(pg, NULL, res);
		gh_pg_pipeline_finish(pg);
		return res->status;
	}
	/* the results of BEGIN and set_config, each followed by NULL */
	for (int q = 0; q < 2; q++) {
		PGresult *r;
		while ((r = PQgetResult(pg))) {
			ExecStatusType t = PQresultStatus(r);
			if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK && !res->status)
				result_error(pg, r, res);
			PQclear(r);
		}
	}
	if (res->status) {
		gh_pg_pipeline_finish(pg);
		return res->status;
	}
	PQsetSingleRowMode(pg);
	return 0;
}

void gh_pg_end_copy(PGconn *pg, int status)
{
	if (status == PGRES_COPY_IN || status == PGRES_COPY_BOTH) {
		PQputCopyEnd(pg, "COPY is not supported through Gatehouse");
		return;
	}
	PGcancel *cn = PQgetCancel(pg);
	char eb[64];
	if (cn) {
		PQcancel(cn, eb, sizeof eb);
		PQfreeCancel(cn);
	}
	char *buf = NULL;
	while (PQgetCopyData(pg, &buf, 0) > 0) {
		PQfreemem(buf);
		buf = NULL;
	}
}

void gh_pg_pipeline_finish(PGconn *pg)
{
	/* whatever remains (ROLLBACK's result, NULL separators) up to the sync point */
	for (int guard = 0; guard < 16 && PQpipelineStatus(pg) != PQ_PIPELINE_OFF; guard++) {
		PGresult *r = PQgetResult(pg);
		if (!r)
			continue;
		ExecStatusType t = PQresultStatus(r);
		PQclear(r);
		if (t == PGRES_PIPELINE_SYNC)
			break;
		if (PQstatus(pg) != CONNECTION_OK)
			break;
	}
	PQexitPipelineMode(pg);
	if (PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) == PQTRANS_INERROR)
		PQclear(PQexec(pg, "ROLLBACK")); /* an aborted statement left its transaction open */
}

/* JSON params as libpq values for $1..$n: null, booleans, numbers and strings as text;
 * {"base64url": "...", "type": OID} as binary bytes of that type (OID 0 or absent: the server
 * infers it), which is how the wire front keeps a binary parameter for a later approval.
 * vals[i] point into params, into tmp[i] (40 bytes) or into bin[i] (malloc'd; caller frees). */
static int params_pg(json_t *params, const char **vals, char (*tmp)[40], uint8_t **bin, int *lens, int *fmts,
		     Oid *types, size_t n, struct gh_exec_result *res)
{
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(params, i);
		lens[i] = 0;
		fmts[i] = 0;
		types[i] = 0;
		switch (json_typeof(v)) {
		case JSON_NULL: vals[i] = NULL; break;
		case JSON_TRUE: vals[i] = "true"; break;
		case JSON_FALSE: vals[i] = "false"; break;
		case JSON_INTEGER:
			snprintf(tmp[i], sizeof tmp[i], "%lld", (long long)json_integer_value(v));
			vals[i] = tmp[i];
			break;
		case JSON_REAL:
			snprintf(tmp[i], sizeof tmp[i], "%.17g", json_real_value(v));
			vals[i] = tmp[i];
			break;
		case JSON_STRING:
			if (memchr(json_string_value(v), '\0', json_string_length(v))) {
				snprintf(res->error, sizeof res->error, "parameter %zu: text with a NUL byte", i + 1);
				return GH_EINVAL;
			}
			vals[i] = json_string_value(v);
			break;
		case JSON_OBJECT: {
			json_t *b = json_object_get(v, "base64url"), *t = json_object_get(v, "type");
			size_t extra = json_object_size(v) - (t ? 1 : 0);
			if (!json_is_string(b) || extra != 1 || (t && (!json_is_integer(t) || json_integer_value(t) < 0 ||
							       json_integer_value(t) > 0xFFFFFFFFLL))) {
				snprintf(res->error, sizeof res->error,
					 "parameter %zu: an object parameter is {\"base64url\": \"...\", \"type\": OID}", i + 1);
				return GH_EINVAL;
			}
			size_t blen = json_string_length(b), cap = blen / 4 * 3 + 3, got = 0;
			bin[i] = malloc(cap ? cap : 1);
			if (!bin[i])
				return GH_ENOMEM;
			if (gh_b64url_decode(json_string_value(b), blen, bin[i], cap, &got) || got > INT32_MAX) {
				snprintf(res->error, sizeof res->error, "parameter %zu: base64url is not valid", i + 1);
				return GH_EINVAL;
			}
			vals[i] = (const char *)bin[i];
			lens[i] = (int)got;
			fmts[i] = 1;
			types[i] = t ? (Oid)json_integer_value(t) : 0;
			break;
		}
		default:
			snprintf(res->error, sizeof res->error,
				 "parameter %zu: only null, booleans, numbers, strings and {\"base64url\"} can be bound", i + 1);
			return GH_EINVAL;
		}
	}
	return 0;
}

/* One text-format value as JSON, by the column's type. */
static int put_pg_value(struct gh_buf *b, const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return gh_buf_puts(b, "null");
	const char *v = PQgetvalue(r, row, col);
	size_t n = (size_t)PQgetlength(r, row, col);
	switch (PQftype(r, col)) {
	case 16: /* bool */
		return gh_buf_puts(b, v[0] == 't' ? "true" : "false");
	case 20: case 21: case 23: case 26: /* int8, int2, int4, oid */
		return gh_buf_append(b, v, n);
	case 700: case 701: case 1700: /* float4, float8, numeric: NaN and infinities as text */
		if (n && (v[n - 1] == 'N' || v[n - 1] == 'y'))
			return gh_buf_json_string(b, v, n);
		return gh_buf_append(b, v, n);
	case 114: case 3802: /* json, jsonb: already JSON */
		return gh_buf_append(b, v, n);
	case 17: { /* bytea, text format "\x..." */
		if (n < 2 || v[0] != '\\' || v[1] != 'x' || (n - 2) % 2)
			return gh_buf_json_string(b, v, n);
		size_t m = (n - 2) / 2;
		uint8_t *raw = malloc(m ? m : 1);
		char *enc = malloc((m + 2) / 3 * 4 + 1);
		int rc = raw && enc ? 0 : GH_ENOMEM;
		for (size_t i = 0; !rc && i < m; i++) {
			int hi = gh_hex_digit(v[2 + 2 * i]), lo = gh_hex_digit(v[3 + 2 * i]);
			if (hi < 0 || lo < 0)
				rc = GH_EINVAL;
			else
				raw[i] = (uint8_t)(hi << 4 | lo);
		}
		if (!rc) {
			if (m)
				gh_b64url_encode(raw, m, enc, (m + 2) / 3 * 4 + 1);
			else
				enc[0] = '\0';
			rc = gh_buf_printf(b, "{\"base64url\":\"%s\"}", enc);
		} else if (rc == GH_EINVAL) {
			rc = gh_buf_json_string(b, v, n);
		}
		free(raw);
		free(enc);
		return rc;
	}
	default:
		return gh_buf_json_string(b, v, n);
	}
}


int gh_pg_exec(struct gh_pg_conn *c, enum gh_sql_class cls, const char *sql, size_t len, json_t *params,
	       const struct gh_exec_limits *lim, const struct gh_pg_claims *claims, struct gh_exec_result *res)
{
	PGconn *pg = c->pg;
	bool read = cls == GH_SQL_READ;
	res->rows = 0;
	res->truncated = false;
	res->status = 0;
	res->error[0] = res->sqlstate[0] = '\0';
	res->conn_lost = false;
	if (cls != GH_SQL_READ && cls != GH_SQL_WRITE && cls != GH_SQL_DDL) {
		snprintf(res->error, sizeof res->error, "statement class %s never runs", gh_sql_class_name(cls));
		return res->status = GH_EINVAL;
	}
	size_t n = params ? json_array_size(params) : 0;
	if (n > 65535) {
		snprintf(res->error, sizeof res->error, "at most 65535 parameters");
		return res->status = GH_EINVAL;
	}
	size_t k = n ? n : 1;
	char *text = malloc(len + 1);
	const char **vals = calloc(k, sizeof *vals);
	char (*tmp)[40] = calloc(k, sizeof *tmp);
	uint8_t **bin = calloc(k, sizeof *bin);
	int *lens = calloc(k, sizeof *lens), *fmts = calloc(k, sizeof *fmts);
	Oid *types = calloc(k, sizeof *types);
	int rc = 0;
	if (!text || !vals || !tmp || !bin || !lens || !fmts || !types) {
		res->status = GH_ENOMEM;
		goto out;
	}
	memcpy(text, sql, len);
	text[len] = '\0';
	if ((rc = params_pg(params, vals, tmp, bin, lens, fmts, types, n, res))) {
		res->status = rc;
		goto out;
	}
	struct gh_pg_stmt pst = {text, (int)n, types, vals, lens, fmts, 0};
	if ((rc = gh_pg_pipeline_start(pg, &pst, read, lim->timeout_ms, claims, res)))
		goto out;
	struct gh_buf *b = &res->json;
	size_t limit_bytes = lim->max_bytes > 0 ? (size_t)lim->max_bytes : (size_t)-1;
	bool header = false, cancelled = false;
	int64_t nrows = 0, affected = -1;
	PGresult *r;
	while ((r = PQgetResult(pg))) {
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_SINGLE_TUPLE || (st == PGRES_TUPLES_OK && !header)) {
			int ncol = PQnfields(r);
			if (!header) {
				rc = gh_buf_puts(b, "\"columns\":[");
				for (int i = 0; i < ncol && !rc; i++) {
					const char *name = PQfname(r, i);
					rc = (i ? gh_buf_puts(b, ",") : 0) ? GH_ENOMEM : gh_buf_json_string(b, name, strlen(name));
				}
				rc = rc ? rc : gh_buf_puts(b, "],\"rows\":[");
				header = true;
			}
			if (st == PGRES_SINGLE_TUPLE && !rc && !cancelled) {
				if (nrows >= lim->max_rows || b->len > limit_bytes) {
					res->truncated = cancelled = true;
					PGcancel *cn = PQgetCancel(pg);
					char eb[128];
					if (cn) {
						PQcancel(cn, eb, sizeof eb);
						PQfreeCancel(cn);
					}
				} else {
					size_t mark = b->len;
					int brc = gh_buf_puts(b, nrows ? ",[" : "[");
					for (int i = 0; i < ncol && !brc; i++)
						brc = (i ? gh_buf_puts(b, ",") : 0) ? GH_ENOMEM : put_pg_value(b, r, 0, i);
					brc = brc ? brc : gh_buf_puts(b, "]");
					if (brc == GH_ETOOBIG) {
						b->len = mark;
						b->data[mark] = '\0';
						res->truncated = cancelled = true;
						PGcancel *cn = PQgetCancel(pg);
						char eb[128];
						if (cn) {
							PQcancel(cn, eb, sizeof eb);
							PQfreeCancel(cn);
						}
					} else if (brc) {
						rc = brc;
					} else {
						nrows++;
					}
				}
			}
		} else if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
			const char *t = PQcmdTuples(r);
			if (t && *t)
				affected = strtoll(t, NULL, 10);
		} else if (st == PGRES_COPY_OUT || st == PGRES_COPY_IN || st == PGRES_COPY_BOTH) {
			/* never reached through the fronts (they refuse COPY); if it is, end it */
			gh_pg_end_copy(pg, st);
			snprintf(res->error, sizeof res->error, "COPY is not supported through Gatehouse");
			if (!rc)
				rc = res->status = GH_EIO;
		} else if (!(cancelled && strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "", "57014") == 0)) {
			if (!rc)
				rc = result_error(pg, r, res);
		}
		PQclear(r);
	}
	gh_pg_pipeline_finish(pg); /* a read's ROLLBACK ran in the pipeline */
	if (rc)
		goto rollback;
	/* A truncated write was cancelled mid-way: nothing of it may stay. */
	if (!read && cancelled) {
		PQclear(PQexec(pg, "ROLLBACK"));
	} else if (!read && (rc = simple(pg, "COMMIT", res))) {
		goto out;
	}
	if (header)
		rc = gh_buf_printf(b, "],\"row_count\":%lld,\"truncated\":%s", (long long)nrows,
				   res->truncated ? "true" : "false");
	if (!rc && !read)
		rc = gh_buf_printf(b, "%s\"rows_affected\":%lld", header ? "," : "", (long long)(affected < 0 ? 0 : affected));
	res->rows = read || header ? nrows : (affected < 0 ? 0 : affected);
	if (!read && !header)
		res->rows = affected < 0 ? 0 : affected;
	res->status = rc;
	goto out;
rollback:
	if (PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) != PQTRANS_IDLE)
		PQclear(PQexec(pg, "ROLLBACK"));
	if (!res->status)
		res->status = rc;
out:
	if (res->conn_lost)
		c->broken = true;
	for (size_t i = 0; bin && i < n; i++)
		free(bin[i]);
	free(bin);
	free(lens);
	free(fmts);
	free(types);
	free(text);
	free(vals);
	free(tmp);
	return res->status;
}
