/* front: the PostgreSQL wire front. An app connects with an ordinary driver to
 * host=... port=... dbname=RESOURCE.ENV user=USER password=TOKEN; every statement it sends is
 * analysed with the PostgreSQL parser, decided by the policy, audited, and only then run on a
 * pooled backend connection whose credentials the app never sees.
 *
 * Threads: the loop owns the client sockets, the startup/authentication exchange and the
 * framing of messages. Messages up to a Sync, Flush or Query form one job, which a worker runs
 * (blocking libpq calls), building the whole answer; the answer is written by the loop only
 * after every audit record of the job is durable. While a job runs, the connection reads
 * nothing more (backpressure). */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "front/pgwire_proto.h"
#include "front/server_int.h"
#include "front/tls_dl.h"
#include "policy/policy.h"
#include "store/store.h"

#define PGW_MAX_JOB_MSGS 10000          /* messages before a Sync/Flush */
#define PGW_MAX_STATEMENTS 1000         /* named prepared statements per client */
#define PGW_MAX_PORTALS 100
#define PGW_PARAMS_CAP GH_PGW_MAX_PARAMS
/* SQLSTATE of a write that waits for a reviewer (class 5: implementation-defined). */
#define SQLSTATE_PENDING "5GA01"

struct gh_pgwire {
	struct server *srv;
	struct evconnlistener *listener;
	SSL_CTX *tls;
	struct pgc *conns;
	int nconns;
	uint32_t next_pid;
};

struct pstmt {
	char *sql;
	size_t len;
	uint32_t *types;
	size_t ntypes;
	struct gh_sql_analysis *a; /* set on first use */
	uint64_t analysis_us;      /* time analysis took, until the first Execute counts it */
};

struct portal {
	struct pstmt *st;       /* owned by the portal (a copy: Close of the statement must not dangle) */
	char **vals;
	int *lens, *fmts;
	size_t n;
	int result_format;      /* 0 text, 1 binary (one format for all columns) */
	bool describe;          /* a Describe of this portal waits for its Execute */
	bool ran;               /* executed; rows below are what is left to send */
	struct gh_buf rows;     /* encoded DataRow messages not yet sent (suspended portal) */
	size_t *offs;           /* row boundaries in rows */
	size_t nrows, next;
	char tag[64];
};

enum pgc_state { PGC_STARTUP, PGC_AUTH, PGC_READY };

/* One client connection. Loop-owned, except what the running job touches (stmts, portals,
 * pinned, txn, skip): the loop never touches those while busy. */
struct pgc {
	struct pgc *prev, *next;
	struct gh_pgwire *pw;
	struct bufferevent *bev;
	char peer[64];
	bool loopback, tls;
	enum pgc_state state;
	bool busy, closing, closed;
	uint32_t pid, key;

	char user[GH_NAME_MAX + 1], resource[GH_NAME_MAX + 1], env[GH_NAME_MAX + 1];
	struct gh_claims claims;

	struct gh_map *stmts;    /* name -> struct pstmt* */
	struct gh_map *portals;  /* name -> struct portal* */
	struct gh_pg_conn *pinned; /* the backend connection of an open client transaction */
	char txn;                /* 'I', 'T' or 'E' */
	bool skip;               /* an extended-protocol error: discard until Sync */

	pthread_mutex_t cancel_mu;
	PGcancel *cancel;        /* of the backend statement now running, if any */

	struct pjob *job;
	struct gh_buf in;        /* framed messages of the next job */
	size_t nin;
};

struct pjob {
	struct gh_job job;
	struct pgc *pc;
	struct gh_policy *policy;
	struct gh_buf in, out;
	bool terminate;          /* close after writing out */
	/* audit */
	int pending;             /* records not yet durable + 1 while the worker runs */
	bool audit_failed;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct gh_buf groups;
	const struct gh_policy_resource *res;
	const struct gh_policy_resenv *resenv;
	struct worker *w;
};

static void pgc_process(struct pgc *pc);

/* ---------------------------------------------------------------- helpers */

static void pgc_free(struct pgc *pc);

static void stmt_free(void *p)
{
	struct pstmt *s = p;
	if (!s)
		return;
	free(s->sql);
	free(s->types);
	gh_sql_analysis_unref(s->a);
	free(s);
}

static void portal_free(void *p)
{
	struct portal *po = p;
	if (!po)
		return;
	stmt_free(po->st);
	for (size_t i = 0; i < po->n; i++)
		free(po->vals[i]);
	free(po->vals);
	free(po->lens);
	free(po->fmts);
	gh_buf_free(&po->rows);
	free(po->offs);
	free(po);
}

static int err_msg(struct gh_buf *b, const char *severity, const char *state, const char *msg, const char *detail,
		   const char *hint)
{
	struct gh_pgw_notice n = {severity, state, msg, detail, hint, 0};
	return gh_pgw_build_error(b, &n);
}

/* Writes a FATAL error and closes once written (startup and authentication). */
static void pgc_fatal(struct pgc *pc, const char *state, const char *msg)
{
	struct gh_buf b;
	gh_buf_init(&b, 4096);
	err_msg(&b, "FATAL", state, msg, NULL, NULL);
	bufferevent_write(pc->bev, b.data, b.len);
	gh_buf_free(&b);
	pc->closing = true;
	bufferevent_disable(pc->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(pc->bev)) == 0)
		pgc_free(pc);
}

/* ---------------------------------------------------------------- audit */

struct pentry {
	struct gh_audit_entry e;
	struct pjob *j;
	bool sync;
	bool done;
	int status;
};

static void job_release(struct pjob *j);

static void on_audited(struct gh_audit_entry *e, int status)
{
	struct pentry *pe = (struct pentry *)e;
	struct pjob *j = pe->j;
	pthread_mutex_lock(&j->mu);
	if (status)
		j->audit_failed = true;
	if (pe->sync) {
		pe->done = true;
		pe->status = status;
		pthread_cond_broadcast(&j->cv);
		pthread_mutex_unlock(&j->mu);
		return; /* the waiting worker frees it */
	}
	pthread_mutex_unlock(&j->mu);
	gh_buf_free(&pe->e.body);
	free(pe);
	job_release(j);
}

/* Submits a record. wait: block until durable and return its status (a write's decision is
 * recorded before it runs); otherwise the job's answer waits for it. */
static int audit(struct pjob *j, const struct gh_audit_record *r, bool wait)
{
	struct pentry *pe = calloc(1, sizeof *pe);
	if (!pe)
		return GH_ENOMEM;
	gh_buf_init(&pe->e.body, GH_AUDIT_MAX_RECORD);
	if (gh_audit_format(r, &pe->e.body)) {
		gh_buf_free(&pe->e.body);
		free(pe);
		pthread_mutex_lock(&j->mu);
		j->audit_failed = true;
		pthread_mutex_unlock(&j->mu);
		return GH_EAUDIT;
	}
	pe->j = j;
	pe->sync = wait;
	pe->e.done = on_audited;
	pe->e.arg = pe;
	if (!wait) {
		pthread_mutex_lock(&j->mu);
		j->pending++;
		pthread_mutex_unlock(&j->mu);
		gh_audit_submit(j->pc->pw->srv->audit, &pe->e);
		return 0;
	}
	gh_audit_submit(j->pc->pw->srv->audit, &pe->e);
	pthread_mutex_lock(&j->mu);
	while (!pe->done)
		pthread_cond_wait(&j->cv, &j->mu);
	pthread_mutex_unlock(&j->mu);
	int st = pe->status;
	gh_buf_free(&pe->e.body);
	free(pe);
	return st ? GH_EAUDIT : 0;
}

/* ---------------------------------------------------------------- statements */

struct stmt_run {
	const char *sql;
	size_t len;
	const struct gh_sql_analysis *a;  /* the whole text's analysis */
	size_t n;                         /* params */
	const char *const *vals;
	const int *lens, *fmts;
	const uint32_t *types;
	int result_format;
	bool describe;                    /* send RowDescription / NoData before rows */
	struct portal *portal;            /* extended protocol: where rows beyond max_rows wait */
	int32_t max_rows;
	uint64_t analysis_us;             /* for the decision-time metric */
};

static void set_cancel(struct pgc *pc, PGconn *pg)
{
	pthread_mutex_lock(&pc->cancel_mu);
	if (pc->cancel)
		PQfreeCancel(pc->cancel);
	pc->cancel = pg ? PQgetCancel(pg) : NULL;
	pthread_mutex_unlock(&pc->cancel_mu);
}

/* The params as a JSON array for the audit record and approvals: text values as strings,
 * binary ones as {"base64url":...}, NULL as null. */
static char *params_json(const struct stmt_run *s)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < s->n; i++) {
		json_t *v;
		if (s->lens[i] < 0) {
			v = json_null();
		} else if (s->fmts[i] == 1) {
			size_t cap = ((size_t)s->lens[i] + 2) / 3 * 4 + 1;
			char *enc = malloc(cap);
			if (enc) {
				if (s->lens[i])
					gh_b64url_encode((const uint8_t *)s->vals[i], (size_t)s->lens[i], enc, cap);
				else
					enc[0] = '\0';
			}
			/* with its type, so an approval can bind it again exactly */
			v = enc ? json_pack("{s:s,s:I}", "base64url", enc, "type",
					    (json_int_t)(s->types && s->types[i] ? s->types[i] : 0)) : NULL;
			free(enc);
		} else {
			v = json_stringn(s->vals[i], (size_t)s->lens[i]);
			if (!v) /* not UTF-8: kept as bytes */
				v = json_pack("{s:s}", "invalid_utf8_bytes", "omitted");
		}
		json_array_append_new(arr, v ? v : json_null());
	}
	char *out = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
	json_decref(arr);
	return out;
}

static void record(struct pjob *j, struct gh_audit_record *r, const char *event, const char *sql, size_t len,
		   const char *params, const struct gh_sql_analysis *a, const struct gh_verdict *v, const char *status,
		   char **stmt_copy, struct gh_buf *tables)
{
	struct pgc *pc = j->pc;
	memset(r, 0, sizeof *r);
	static __thread char rid[40];
	gh_srv_request_id(pc->pw->srv, rid, sizeof rid);
	r->time_ms = gh_now_ms();
	r->request_id = rid;
	r->event = event;
	r->user = pc->claims.sub;
	r->groups = j->groups.data;
	r->app = pc->claims.app[0] ? pc->claims.app : NULL;
	r->environment = pc->env;
	r->resource = pc->resource;
	*stmt_copy = gh_strndup(sql, len);
	r->statement = *stmt_copy;
	r->params_json = params;
	r->class_name = a ? gh_sql_class_name(a->cls) : NULL;
	gh_buf_reset(tables);
	if (a)
		gh_sql_tables_json(a, tables);
	r->tables_json = tables->data;
	r->decision = v ? gh_decision_name(v->decision) : NULL;
	r->rule = v ? v->rule : NULL;
	r->status = status;
	r->rows = -1;
	r->duration_ms = -1;
	r->client = pc->peer;
}

/* Sends a PGresult's columns as a RowDescription (format from the result). */
static int row_description(struct gh_buf *b, const PGresult *res)
{
	int n = PQnfields(res);
	if (n == 0)
		return gh_pgw_build_no_data(b);
	struct gh_pgw_field *f = calloc((size_t)n, sizeof *f);
	if (!f)
		return GH_ENOMEM;
	for (int i = 0; i < n; i++) {
		f[i].name = PQfname(res, i);
		f[i].table_oid = PQftable(res, i) == InvalidOid ? 0 : PQftable(res, i);
		f[i].column = (int16_t)PQftablecol(res, i);
		f[i].type_oid = PQftype(res, i);
		f[i].type_size = (int16_t)PQfsize(res, i);
		f[i].type_mod = PQfmod(res, i);
		f[i].format = (int16_t)PQfformat(res, i);
	}
	int rc = gh_pgw_build_row_description(b, f, (size_t)n);
	free(f);
	return rc;
}

static int data_row(struct gh_buf *b, const PGresult *res, int row)
{
	int n = PQnfields(res);
	struct gh_pgw_value v[64], *vals = n <= 64 ? v : calloc((size_t)n, sizeof *vals);
	if (!vals)
		return GH_ENOMEM;
	for (int i = 0; i < n; i++) {
		vals[i].p = PQgetisnull(res, row, i) ? NULL : PQgetvalue(res, row, i);
		vals[i].len = PQgetisnull(res, row, i) ? -1 : PQgetlength(res, row, i);
	}
	int rc = gh_pgw_build_data_row(b, vals, (size_t)n);
	if (vals != v)
		free(vals);
	return rc;
}

/* Copies the backend's error into an ErrorResponse (its SQLSTATE, message, detail, hint and
 * position: these are the database's words about the client's own statement). */
static void backend_error(struct gh_buf *b, PGconn *pg, const PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *pos = r ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;
	if (PQstatus(pg) != CONNECTION_OK) {
		err_msg(b, "ERROR", "08006", "the connection to the resource's database was lost", NULL, NULL);
		return;
	}
	struct gh_pgw_notice n = {"ERROR", state && strlen(state) == 5 ? state : "XX000",
				  msg ? msg : "the statement failed",
				  r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL,
				  r ? PQresultErrorField(r, PG_DIAG_MESSAGE_HINT) : NULL, pos ? (int)strtol(pos, NULL, 10) : 0};
	gh_pgw_build_error(b, &n);
}

/* Takes a backend connection for one statement (or the pinned one). */
static int backend(struct pjob *j, struct gh_pg_conn **out)
{
	struct pgc *pc = j->pc;
	if (pc->pinned) {
		*out = pc->pinned;
		return 0;
	}
	struct server *srv = pc->pw->srv;
	struct gh_error err;
	uint64_t epoch = __atomic_load_n(&srv->secrets_epoch, __ATOMIC_ACQUIRE);
	int rc = gh_pg_acquire(srv->pg, j->res->name, j->resenv->env, j->resenv->secret, epoch, out, &err);
	if (rc) {
		gh_log_kv(GH_LOG_ERROR, "resource unavailable", "resource", j->res->name, "environment", j->resenv->env,
			  "error", err.message, NULL);
		err_msg(&j->out, "ERROR", rc == GH_ETIMEOUT ? "53300" : "08001",
			rc == GH_ETIMEOUT ? "every connection to the resource is busy; try again"
					  : "the resource's database cannot be reached",
			NULL, NULL);
	}
	return rc;
}

/* Runs s on the backend and appends its answer (RowDescription if asked, DataRows,
 * CommandComplete or ErrorResponse) to j->out. rows gets the row count or -1 on failure. */
static int run_backend_once(struct pjob *j, const struct stmt_run *s, enum gh_sql_class cls, int64_t *rows,
			    bool *retry)
{
	struct pgc *pc = j->pc;
	struct server *srv = pc->pw->srv;
	struct gh_pg_conn *conn = NULL;
	size_t start_mark = j->out.len;
	bool lost = false;
	*rows = -1;
	*retry = false;
	if (backend(j, &conn))
		return GH_EIO;
	uint64_t t0 = gh_mono_us();
	PGconn *pg = gh_pg_conn_pg(conn);
	struct gh_exec_result er;
	memset(&er, 0, sizeof er);
	bool own_txn = !pc->pinned;
	bool read = cls == GH_SQL_READ || cls == GH_SQL_SESSION;
	char *text = gh_strndup(s->sql, s->len);
	int rc = 0;
	set_cancel(pc, pg);
	if (!text) {
		err_msg(&j->out, "ERROR", "53200", "out of memory", NULL, NULL);
		rc = GH_ENOMEM;
	} else if (own_txn) {
		/* BEGIN, claims, the statement (and a read's ROLLBACK) in one round trip */
		struct gh_pg_claims cl = {pc->claims.sub, j->groups.data ? j->groups.data : "", pc->claims.app,
					  pc->env};
		struct gh_pg_stmt pst = {text, (int)s->n, s->types, s->vals, s->lens, s->fmts, s->result_format};
		if (gh_pg_pipeline_start(pg, &pst, read, srv->o.statement_ms, &cl, &er)) {
			err_msg(&j->out, "ERROR", er.sqlstate[0] ? er.sqlstate : "08006", er.error, NULL, NULL);
			rc = GH_EIO;
			lost = er.conn_lost;
		}
	} else if (!PQsendQueryParams(pg, text, (int)s->n, s->types, s->vals, s->lens, s->fmts, s->result_format) ||
		   !PQsetSingleRowMode(pg)) {
		backend_error(&j->out, pg, NULL);
		rc = GH_EIO;
	}
	free(text);
	int64_t n = 0;
	char tag[64] = "";
	bool header = false, too_big = false, failed = rc != 0;
	size_t out_mark = j->out.len;
	PGresult *r;
	while (!rc && (r = PQgetResult(pg))) {
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
			if (s->describe && !header)
				row_description(&j->out, r);
			header = true;
			if (st == PGRES_SINGLE_TUPLE && !too_big && !failed) {
				if (n >= srv->o.max_rows || j->out.len - out_mark > GH_DEFAULT_MAX_RESULT_BYTES) {
					too_big = true;
					char eb[64];
					pthread_mutex_lock(&pc->cancel_mu);
					if (pc->cancel)
						PQcancel(pc->cancel, eb, sizeof eb);
					pthread_mutex_unlock(&pc->cancel_mu);
				} else if (s->portal && s->max_rows > 0) {
					/* keep every row encoded; Execute sends max_rows at a time */
					struct portal *po = s->portal;
					size_t *o = realloc(po->offs, (po->nrows + 2) * sizeof *o);
					if (o) {
						po->offs = o;
						po->offs[po->nrows] = po->rows.len;
						data_row(&po->rows, r, 0);
						po->nrows++;
						po->offs[po->nrows] = po->rows.len;
					}
					n++;
				} else {
					data_row(&j->out, r, 0);
					n++;
				}
			} else if (st != PGRES_SINGLE_TUPLE) {
				snprintf(tag, sizeof tag, "%s", PQcmdStatus(r));
				if (s->portal)
					snprintf(s->portal->tag, sizeof s->portal->tag, "%s", tag);
				if (st == PGRES_COMMAND_OK && *PQcmdTuples(r))
					n = strtoll(PQcmdTuples(r), NULL, 10);
			}
		} else if (st == PGRES_EMPTY_QUERY) {
			gh_pgw_build_empty_query(&j->out);
		} else if (st == PGRES_COPY_OUT || st == PGRES_COPY_IN || st == PGRES_COPY_BOTH) {
			gh_pg_end_copy(pg, st); /* the front refuses COPY before it gets here */
			if (!failed) {
				j->out.len = out_mark;
				err_msg(&j->out, "ERROR", "0A000", "COPY is not supported through Gatehouse", NULL, NULL);
				failed = true;
			}
		} else if (!failed) {
			if (too_big && strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "", "57014") == 0) {
				/* our own cancel */
			} else {
				j->out.len = out_mark; /* no partial rows before an error */
				backend_error(&j->out, pg, r);
				lost = gh_pg_lost(pg, r);
				failed = true;
			}
		}
		PQclear(r);
	}
	set_cancel(pc, NULL);
	if (own_txn && rc == 0)
		gh_pg_pipeline_finish(pg);
	if (too_big && !failed) {
		j->out.len = out_mark;
		char m[200];
		snprintf(m, sizeof m, "the result is larger than Gatehouse releases (%lld rows or %d MiB); add a LIMIT",
			 (long long)srv->o.max_rows, GH_DEFAULT_MAX_RESULT_BYTES >> 20);
		err_msg(&j->out, "ERROR", "54000", m, NULL, NULL);
		failed = true;
	}
	if (!failed && !s->portal && tag[0])
		gh_pgw_build_command_complete(&j->out, tag);
	if (own_txn) {
		if (!failed && !read) {
			PGresult *c = PQexec(pg, "COMMIT");
			if (PQresultStatus(c) != PGRES_COMMAND_OK) {
				j->out.len = out_mark;
				backend_error(&j->out, pg, c);
				lost = gh_pg_lost(pg, c);
				failed = true;
			}
			PQclear(c);
		} else if (PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) != PQTRANS_IDLE) {
			PQclear(PQexec(pg, "ROLLBACK"));
		}
		/* a pooled connection found dead while it sat idle: a read is tried once more on a
		 * fresh one (nothing of it ran) */
		*retry = lost && read && gh_pg_conn_reused(conn) && n == 0 && !(s->portal && s->portal->nrows);
		if (lost)
			gh_pg_conn_discard(conn);
		gh_pg_release(conn);
		if (*retry)
			j->out.len = start_mark;
	} else if (failed) {
		pc->txn = 'E';
		if (lost) { /* the client transaction died with its backend */
			gh_pg_conn_discard(conn);
			gh_pg_release(conn);
			pc->pinned = NULL;
		}
	}
	gh_srv_time_backend(srv, true, gh_mono_us() - t0);
	if (failed)
		return GH_EIO;
	*rows = n;
	return 0;
}

static int run_backend(struct pjob *j, const struct stmt_run *s, enum gh_sql_class cls, int64_t *rows)
{
	bool retry = false;
	int rc = run_backend_once(j, s, cls, rows, &retry);
	if (retry) {
		gh_log_kv(GH_LOG_WARN, "a pooled connection was lost; retrying the read once", "resource", j->res->name,
			  "environment", j->resenv->env, NULL);
		rc = run_backend_once(j, s, cls, rows, &retry);
	}
	return rc;
}

/* Sends up to max rows of a run portal; PortalSuspended or its CommandComplete. */
static void portal_send(struct pjob *j, struct portal *po, int32_t max)
{
	size_t left = po->nrows - po->next;
	size_t k = max > 0 && (size_t)max < left ? (size_t)max : left;
	if (k)
		gh_buf_append(&j->out, po->rows.data + po->offs[po->next], po->offs[po->next + k] - po->offs[po->next]);
	po->next += k;
	if (po->next < po->nrows)
		gh_pgw_build_portal_suspended(&j->out);
	else
		gh_pgw_build_command_complete(&j->out, po->tag);
}

/* Decides one statement and runs it; appends the answer to j->out. Returns 0 when it ran
 * (or was a harmless no-op), non-zero when refused or failed (the caller enters the
 * extended protocol's skip-to-Sync state). */
static int decide_and_run(struct pjob *j, const struct stmt_run *s, const struct gh_sql_stmt *st)
{
	struct pgc *pc = j->pc;
	struct server *srv = pc->pw->srv;
	const struct gh_sql_analysis *a = s->a;
	enum gh_sql_class cls = st ? st->cls : a->cls;
	uint64_t t0 = gh_mono_us();
	char *params = params_json(s);
	struct gh_buf tables;
	gh_buf_init(&tables, 1 << 20);
	struct gh_audit_record r;
	char *stmt_copy = NULL;
	int result = GH_EDENIED;
	/* for the metrics: how this statement was decided ("error": refused before any decision) */
	const char *m_decision = "error";
	char m_rule[sizeof ((struct gh_verdict *)0)->rule] = "";

	if (pc->txn == 'E' && !(st && (st->session == GH_SESSION_ROLLBACK || st->session == GH_SESSION_COMMIT))) {
		err_msg(&j->out, "ERROR", "25P02",
			"current transaction is aborted, commands ignored until end of transaction block", NULL, NULL);
		goto out;
	}
	/* Transaction control and session statements. */
	if (cls == GH_SQL_SESSION && st) {
		switch (st->session) {
		case GH_SESSION_BEGIN: {
			m_decision = "allow";
			snprintf(m_rule, sizeof m_rule, "client-transaction");
			if (pc->pinned) {
				struct gh_pgw_notice n = {"WARNING", "25001", "there is already a transaction in progress",
							  NULL, NULL, 0};
				gh_pgw_build_notice(&j->out, &n);
				gh_pgw_build_command_complete(&j->out, "BEGIN");
				result = 0;
				goto out;
			}
			struct gh_pg_conn *conn = NULL;
			if (backend(j, &conn)) {
				m_decision = "error";
				goto out;
			}
			/* A client transaction is read-only unless the policy would let this caller
			 * write here: a misclassified statement inside it still cannot write. */
			struct gh_request_facts f = {pc->claims.sub, pc->claims.app, pc->resource, pc->env,
						     GH_SQL_WRITE, NULL, false, NULL};
			struct gh_verdict v;
			gh_policy_decide(j->policy, &f, &v);
			bool ro = st->begin_read_only || v.decision != GH_ALLOW;
			struct gh_pg_claims cl = {pc->claims.sub, j->groups.data ? j->groups.data : "",
						  pc->claims.app, pc->env};
			struct gh_exec_result er;
			memset(&er, 0, sizeof er);
			if (gh_pg_begin(gh_pg_conn_pg(conn), ro, srv->o.statement_ms, &cl, &er)) {
				err_msg(&j->out, "ERROR", er.sqlstate[0] ? er.sqlstate : "08006", er.error, NULL, NULL);
				gh_pg_release(conn);
				m_decision = "error";
				goto out;
			}
			pc->pinned = conn;
			pc->txn = 'T';
			gh_pgw_build_command_complete(&j->out, "BEGIN");
			result = 0;
			goto out;
		}
		case GH_SESSION_COMMIT:
		case GH_SESSION_ROLLBACK: {
			bool commit = st->session == GH_SESSION_COMMIT && pc->txn == 'T';
			m_decision = "allow";
			snprintf(m_rule, sizeof m_rule, "client-transaction");
			if (!pc->pinned) {
				struct gh_pgw_notice n = {"WARNING", "25P01", "there is no transaction in progress", NULL,
							  NULL, 0};
				gh_pgw_build_notice(&j->out, &n);
				gh_pgw_build_command_complete(&j->out, commit ? "COMMIT" : "ROLLBACK");
				pc->txn = 'I'; /* also ends a transaction whose backend was lost */
				result = 0;
				goto out;
			}
			PGconn *pg = gh_pg_conn_pg(pc->pinned);
			PGresult *res = PQexec(pg, commit ? "COMMIT" : "ROLLBACK");
			bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
			if (ok)
				gh_pgw_build_command_complete(&j->out, commit ? "COMMIT" : "ROLLBACK");
			else
				backend_error(&j->out, pg, res);
			PQclear(res);
			gh_pg_release(pc->pinned);
			pc->pinned = NULL;
			pc->txn = 'I';
			if (commit) { /* a commit is where the transaction's writes take effect: audit it */
				struct gh_verdict v = {GH_ALLOW, "client-transaction", "", GH_ACCESS_NONE};
				record(j, &r, "query", s->sql, s->len, params, a, &v, ok ? "ok" : "error", &stmt_copy,
				       &tables);
				audit(j, &r, false);
			}
			result = ok ? 0 : GH_EIO;
			goto out;
		}
		case GH_SESSION_SAVEPOINT:
			if (!pc->pinned) {
				err_msg(&j->out, "ERROR", "25P01", "savepoints exist only inside transaction blocks", NULL,
					NULL);
				goto out;
			}
			break; /* runs on the pinned connection below */
		case GH_SESSION_SET:
		case GH_SESSION_RESET:
			if (!pc->pinned || !st->set_local) {
				m_decision = "deny";
				snprintf(m_rule, sizeof m_rule, "session-statement");
				err_msg(&j->out, "ERROR", "0A000",
					"session settings are not kept behind Gatehouse (connections are pooled)",
					NULL, "use SET LOCAL inside a transaction block");
				goto out;
			}
			break;
		default:
			break; /* SHOW runs as a read */
		}
	}
	/* Everything else: the policy decides. */
	/* A refused statement anywhere in the text refuses all of it. */
	enum gh_sql_class fc = a->cls == GH_SQL_DESTRUCTIVE || a->cls == GH_SQL_FORBIDDEN ? a->cls
			       : cls == GH_SQL_SESSION				  ? GH_SQL_READ
										  : cls;
	struct gh_request_facts f = {pc->claims.sub, pc->claims.app, pc->resource, pc->env, fc, a->reason,
				     a->own_only, a};
	struct gh_verdict v;
	uint64_t t_dec = gh_mono_us();
	gh_policy_decide(j->policy, &f, &v);
	if (v.decision != GH_DENY && a->copy) {
		v.decision = GH_DENY;
		snprintf(v.rule, sizeof v.rule, "copy-not-supported");
		snprintf(v.message, sizeof v.message, "COPY is not supported through Gatehouse; use SELECT or INSERT");
	}
	if (v.decision == GH_PENDING && pc->pinned) {
		v.decision = GH_DENY;
		snprintf(v.rule, sizeof v.rule, "approval-in-transaction");
		snprintf(v.message, sizeof v.message,
			 "writes in '%s' wait for a reviewer, one statement at a time: send this one outside a "
			 "transaction block", pc->env);
	}
	gh_srv_time_decision(srv, GH_SRV_PGWIRE, s->analysis_us + (gh_mono_us() - t_dec));
	m_decision = gh_decision_name(v.decision);
	snprintf(m_rule, sizeof m_rule, "%s", v.rule);
	gh_srv_log_decision(GH_SRV_PGWIRE, NULL, pc->claims.sub, pc->resource, pc->env, gh_sql_class_name(f.cls),
			    m_decision, v.rule, s->sql, s->len, params);
	if (v.decision == GH_DENY) {
		char m[700];
		snprintf(m, sizeof m, "permission denied by Gatehouse: %s (rule %s)", v.message, v.rule);
		err_msg(&j->out, "ERROR", "42501", m, NULL, NULL);
		record(j, &r, "query", s->sql, s->len, params, a, &v, "denied", &stmt_copy, &tables);
		audit(j, &r, false);
		if (pc->pinned)
			pc->txn = 'E';
		goto out;
	}
	if (v.decision == GH_PENDING) {
		struct gh_approval ap;
		memset(&ap, 0, sizeof ap);
		gh_random_id("apr", 12, ap.id, sizeof ap.id);
		char detail[120];
		snprintf(detail, sizeof detail, "{\"approval\":\"%s\"}", ap.id);
		record(j, &r, "approval.request", s->sql, s->len, params, a, &v, "pending", &stmt_copy, &tables);
		r.detail_json = detail;
		if (audit(j, &r, true)) {
			err_msg(&j->out, "ERROR", "58030", "the audit trail could not be written, so nothing was run",
				NULL, NULL);
			goto out;
		}
		ap.status = GH_APPROVAL_PENDING;
		ap.requester = pc->claims.sub;
		ap.app = pc->claims.app[0] ? pc->claims.app : NULL;
		ap.resource = pc->resource;
		ap.environment = pc->env;
		ap.statement = stmt_copy;
		ap.params = params ? params : "[]";
		ap.class_name = (char *)(uintptr_t)gh_sql_class_name(f.cls);
		ap.request_id = (char *)(uintptr_t)r.request_id;
		ap.created_at = gh_now();
		ap.expires_at = ap.created_at + srv->o.approval_ttl;
		if (gh_store_approval_insert(j->w->store, &ap)) {
			err_msg(&j->out, "ERROR", "58030", "the approval could not be stored; nothing will run", NULL, NULL);
			goto out;
		}
		char m[300], hint[200];
		snprintf(m, sizeof m, "approval %s pending: writes in '%s' wait for a reviewer who is not the requester",
			 ap.id, pc->env);
		snprintf(hint, sizeof hint, "a reviewer runs: gatehouse approvals approve %s", ap.id);
		err_msg(&j->out, "ERROR", SQLSTATE_PENDING, m, NULL, hint);
		goto out;
	}
	/* Allowed. A write's decision is durable before it runs. */
	bool is_read = f.cls == GH_SQL_READ;
	if (!is_read) {
		record(j, &r, "query", s->sql, s->len, params, a, &v, "started", &stmt_copy, &tables);
		int arc = audit(j, &r, true);
		free(stmt_copy);
		stmt_copy = NULL;
		if (arc) {
			err_msg(&j->out, "ERROR", "58030", "the audit trail could not be written, so nothing was run", NULL,
				NULL);
			goto out;
		}
	}
	int64_t rows = -1;
	int rc = run_backend(j, s, st ? st->cls : a->cls, &rows);
	record(j, &r, is_read ? "query" : "query.outcome", s->sql, s->len, params, a, &v, rc ? "error" : "ok",
	       &stmt_copy, &tables);
	r.rows = rows;
	r.duration_ms = (double)(gh_mono_us() - t0) / 1000.0;
	audit(j, &r, false);
	result = rc;
out:
	gh_srv_count(srv, GH_SRV_PGWIRE, m_decision, m_rule);
	free(stmt_copy);
	free(params);
	gh_buf_free(&tables);
	return result;
}

/* ---------------------------------------------------------------- messages (worker) */

static struct gh_sql_analysis *analyse(struct pjob *j, const char *sql, size_t len)
{
	struct gh_sql_analysis *a = NULL;
	if (gh_srv_analyse_pg(j->w, j->policy ? j->policy->version : -1, sql, len, &a))
		return NULL;
	return a;
}

/* A statement that does not parse is answered like PostgreSQL does: 42601 at its position,
 * and recorded as the refusal it is. */
static bool syntax_error(struct pjob *j, const struct gh_sql_analysis *a, const char *sql, size_t len)
{
	if (a->cls != GH_SQL_FORBIDDEN || strncmp(a->reason, "syntax error", 12) != 0)
		return false;
	const char *at = strstr(a->reason, " at position ");
	struct gh_pgw_notice n = {"ERROR", "42601", a->reason, NULL, NULL, at ? (int)strtol(at + 13, NULL, 10) : 0};
	gh_pgw_build_error(&j->out, &n);
	struct gh_verdict v;
	memset(&v, 0, sizeof v);
	v.decision = GH_DENY;
	snprintf(v.rule, sizeof v.rule, "forbidden-statement");
	gh_srv_count(j->pc->pw->srv, GH_SRV_PGWIRE, "deny", v.rule);
	struct gh_audit_record r;
	struct gh_buf tables;
	gh_buf_init(&tables, 1024);
	char *copy = NULL;
	record(j, &r, "query", sql, len, "[]", a, &v, "denied", &copy, &tables);
	audit(j, &r, false);
	free(copy);
	gh_buf_free(&tables);
	return true;
}

static void simple_query(struct pjob *j, const struct gh_str *q)
{
	struct pgc *pc = j->pc;
	struct gh_sql_analysis *a = NULL;
	uint64_t t0 = gh_mono_us();
	if (q->len == 0 || !(a = analyse(j, q->p, q->len))) {
		if (q->len == 0)
			gh_pgw_build_empty_query(&j->out);
		else
			err_msg(&j->out, "ERROR", "53200", "out of memory", NULL, NULL);
		goto done;
	}
	if (a->nstmts == 0 && strncmp(a->reason, "empty", 5) == 0) {
		gh_pgw_build_empty_query(&j->out);
		goto done;
	}
	if (syntax_error(j, a, q->p, q->len))
		goto done;
	uint64_t analysis_us = gh_mono_us() - t0;
	if (a->nstmts <= 1) {
		struct stmt_run s = {.sql = q->p, .len = q->len, .a = a, .describe = true, .analysis_us = analysis_us};
		decide_and_run(j, &s, a->nstmts ? &a->stmts[0] : NULL);
	} else {
		/* Several statements: a refused part refuses the whole text before any part runs. */
		if (a->cls == GH_SQL_DESTRUCTIVE || a->cls == GH_SQL_FORBIDDEN) {
			struct stmt_run s = {.sql = q->p, .len = q->len, .a = a, .describe = true,
					     .analysis_us = analysis_us};
			decide_and_run(j, &s, NULL);
		} else {
			for (size_t i = 0; i < a->nstmts; i++) {
				struct stmt_run s = {.sql = q->p + a->stmts[i].offset, .len = a->stmts[i].len, .a = a,
						     .describe = true};
				uint64_t t1 = gh_mono_us();
				struct gh_sql_analysis *one = analyse(j, s.sql, s.len);
				s.analysis_us = gh_mono_us() - t1;
				if (!one) {
					err_msg(&j->out, "ERROR", "53200", "out of memory", NULL, NULL);
					break;
				}
				s.a = one;
				int rc = decide_and_run(j, &s, one->nstmts ? &one->stmts[0] : NULL);
				gh_sql_analysis_unref(one);
				if (rc)
					break;
			}
		}
	}
done:
	gh_sql_analysis_unref(a);
	gh_pgw_build_ready_for_query(&j->out, pc->txn);
}

static void ext_error(struct pjob *j, const char *state, const char *msg)
{
	err_msg(&j->out, "ERROR", state, msg, NULL, NULL);
	j->pc->skip = true;
}

static void msg_parse_decoded(struct pjob *j, const struct gh_pgw_parse *pp);

static void msg_parse(struct pjob *j, const struct gh_pgw_msg *m)
{
	/* each type OID takes 4 bytes of the message: that bounds the array */
	size_t cap = m->len / 4 + 1 < PGW_PARAMS_CAP ? m->len / 4 + 1 : PGW_PARAMS_CAP;
	uint32_t *types = malloc(cap * sizeof *types);
	struct gh_pgw_parse p;
	char why[200];
	if (!types)
		return ext_error(j, "53200", "out of memory");
	int drc = gh_pgw_decode_parse(m, &p, types, cap, why, sizeof why);
	if (drc) {
		free(types);
		return ext_error(j, "08P01", why);
	}
	msg_parse_decoded(j, &p);
	free(types);
}

static void msg_parse_decoded(struct pjob *j, const struct gh_pgw_parse *pp)
{
	struct pgc *pc = j->pc;
	const struct gh_pgw_parse p = *pp;
	if (p.query.len > (size_t)pc->pw->srv->o.max_statement)
		return ext_error(j, "54000", "statement text too long");
	if (p.name.len && gh_map_get(pc->stmts, p.name.p, p.name.len))
		return ext_error(j, "42P05", "prepared statement already exists");
	if (gh_map_count(pc->stmts) >= PGW_MAX_STATEMENTS)
		return ext_error(j, "54000", "too many prepared statements on this connection");
	struct pstmt *st = calloc(1, sizeof *st);
	if (!st || !(st->sql = gh_strndup(p.query.p, p.query.len)) ||
	    (p.ntypes && !(st->types = malloc(p.ntypes * sizeof *st->types)))) {
		stmt_free(st);
		return ext_error(j, "53200", "out of memory");
	}
	st->len = p.query.len;
	st->ntypes = p.ntypes;
	if (p.ntypes)
		memcpy(st->types, p.types, p.ntypes * sizeof *st->types);
	uint64_t t0 = gh_mono_us();
	st->a = analyse(j, st->sql, st->len);
	st->analysis_us = gh_mono_us() - t0;
	if (!st->a) {
		stmt_free(st);
		return ext_error(j, "53200", "out of memory");
	}
	if (syntax_error(j, st->a, st->sql, st->len)) {
		stmt_free(st);
		pc->skip = true;
		return;
	}
	if (st->a->nstmts > 1) {
		stmt_free(st);
		return ext_error(j, "42601", "cannot insert multiple commands into a prepared statement");
	}
	if (p.name.len == 0)
		gh_map_del(pc->stmts, "", 0);
	if (gh_map_put(pc->stmts, p.name.p, p.name.len, st)) {
		stmt_free(st);
		return ext_error(j, "53200", "out of memory");
	}
	gh_pgw_build_parse_complete(&j->out);
}

static struct pstmt *stmt_copy(const struct pstmt *s)
{
	struct pstmt *c = calloc(1, sizeof *c);
	if (!c || !(c->sql = gh_strndup(s->sql, s->len)) || (s->ntypes && !(c->types = malloc(s->ntypes * 4)))) {
		stmt_free(c);
		return NULL;
	}
	c->len = s->len;
	c->ntypes = s->ntypes;
	if (s->ntypes)
		memcpy(c->types, s->types, s->ntypes * 4);
	c->a = s->a;
	gh_sql_analysis_ref(c->a);
	return c;
}

static void msg_bind_decoded(struct pjob *j, const struct gh_pgw_bind *bp);

static void msg_bind(struct pjob *j, const struct gh_pgw_msg *m)
{
	/* each parameter takes at least 4 bytes of the message: that bounds the array */
	size_t cap = m->len / 4 + 1 < PGW_PARAMS_CAP ? m->len / 4 + 1 : PGW_PARAMS_CAP;
	struct gh_pgw_value *vals = malloc(cap * sizeof *vals);
	struct gh_pgw_bind b;
	char why[200];
	if (!vals)
		return ext_error(j, "53200", "out of memory");
	if (gh_pgw_decode_bind(m, &b, vals, cap, why, sizeof why)) {
		free(vals);
		return ext_error(j, "08P01", why);
	}
	msg_bind_decoded(j, &b);
	free(vals);
}

static void msg_bind_decoded(struct pjob *j, const struct gh_pgw_bind *bp)
{
	struct pgc *pc = j->pc;
	const struct gh_pgw_bind b = *bp;
	struct pstmt *st = gh_map_get(pc->stmts, b.statement.p, b.statement.len);
	if (!st)
		return ext_error(j, "26000", "prepared statement does not exist");
	if (b.nparams != (size_t)(st->a->nparams > (int)st->ntypes ? st->a->nparams : (int)st->ntypes)) {
		char msg[120];
		snprintf(msg, sizeof msg, "bind message supplies %zu parameters, but prepared statement requires %d",
			 b.nparams, st->a->nparams > (int)st->ntypes ? st->a->nparams : (int)st->ntypes);
		return ext_error(j, "08P01", msg);
	}
	/* one result format for every column: libpq asks for one */
	int rf = 0;
	for (size_t i = 0; i < b.result_formats.n; i++) {
		int f = gh_pgw_format(&b.result_formats, i);
		if (i == 0)
			rf = f;
		else if (f != rf)
			return ext_error(j, "0A000", "mixed text and binary result columns are not supported");
	}
	if (!b.portal.len)
		gh_map_del(pc->portals, "", 0);
	else if (gh_map_get(pc->portals, b.portal.p, b.portal.len))
		return ext_error(j, "42P03", "portal already exists");
	if (gh_map_count(pc->portals) >= PGW_MAX_PORTALS)
		return ext_error(j, "54000", "too many portals on this connection");
	struct portal *po = calloc(1, sizeof *po);
	if (!po)
		return ext_error(j, "53200", "out of memory");
	gh_buf_init(&po->rows, GH_DEFAULT_MAX_RESULT_BYTES);
	po->st = stmt_copy(st);
	po->n = b.nparams;
	po->vals = calloc(b.nparams + 1, sizeof *po->vals);
	po->lens = calloc(b.nparams + 1, sizeof *po->lens);
	po->fmts = calloc(b.nparams + 1, sizeof *po->fmts);
	bool oom = !po->st || !po->vals || !po->lens || !po->fmts;
	for (size_t i = 0; !oom && i < b.nparams; i++) {
		po->lens[i] = b.params[i].len;
		po->fmts[i] = gh_pgw_format(&b.param_formats, i);
		if (b.params[i].len >= 0) {
			po->vals[i] = malloc((size_t)b.params[i].len + 1);
			if (!po->vals[i]) {
				oom = true;
				break;
			}
			memcpy(po->vals[i], b.params[i].p, (size_t)b.params[i].len);
			po->vals[i][b.params[i].len] = '\0';
		}
	}
	po->result_format = rf;
	if (po->st) { /* the analysis is counted once, at the first Execute of the statement */
		po->st->analysis_us = st->analysis_us;
		st->analysis_us = 0;
	}
	if (oom || gh_map_put(pc->portals, b.portal.p, b.portal.len, po)) {
		portal_free(po);
		return ext_error(j, "53200", "out of memory");
	}
	gh_pgw_build_bind_complete(&j->out);
}

/* Describe of a statement (or of a portal not executed in this job): the backend describes
 * it (PQprepare of the unnamed statement, then PQdescribePrepared), once the policy allows it. */
static void describe_backend(struct pjob *j, const struct pstmt *st, bool params, int result_format)
{
	struct pgc *pc = j->pc;
	struct gh_request_facts f = {pc->claims.sub, pc->claims.app, pc->resource, pc->env,
				     st->a->cls == GH_SQL_SESSION ? GH_SQL_READ : st->a->cls, st->a->reason,
				     st->a->own_only, st->a};
	struct gh_verdict v;
	gh_policy_decide(j->policy, &f, &v);
	if (v.decision == GH_DENY) {
		/* refused here, the statement never reaches an Execute: this is its decision */
		gh_srv_count(pc->pw->srv, GH_SRV_PGWIRE, "deny", v.rule);
		char m[700];
		snprintf(m, sizeof m, "permission denied by Gatehouse: %s (rule %s)", v.message, v.rule);
		return ext_error(j, "42501", m);
	}
	if (st->a->cls == GH_SQL_SESSION) { /* nothing to describe on the backend */
		if (params)
			gh_pgw_build_parameter_description(&j->out, NULL, 0);
		gh_pgw_build_no_data(&j->out);
		return;
	}
	struct gh_pg_conn *conn = NULL;
	if (backend(j, &conn)) {
		pc->skip = true;
		return;
	}
	PGconn *pg = gh_pg_conn_pg(conn);
	PGresult *r = PQprepare(pg, "", st->sql, (int)st->ntypes, st->types);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		backend_error(&j->out, pg, r);
		pc->skip = true;
	} else {
		PQclear(r);
		r = PQdescribePrepared(pg, "");
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			backend_error(&j->out, pg, r);
			pc->skip = true;
		} else {
			if (params) {
				int n = PQnparams(r);
				uint32_t *oids = calloc((size_t)n + 1, sizeof *oids);
				for (int i = 0; oids && i < n; i++)
					oids[i] = PQparamtype(r, i);
				gh_pgw_build_parameter_description(&j->out, oids, (size_t)n);
				free(oids);
			}
			int nf = PQnfields(r);
			if (nf == 0) {
				gh_pgw_build_no_data(&j->out);
			} else {
				struct gh_pgw_field *fl = calloc((size_t)nf, sizeof *fl);
				for (int i = 0; fl && i < nf; i++) {
					fl[i].name = PQfname(r, i);
					fl[i].table_oid = PQftable(r, i);
					fl[i].column = (int16_t)PQftablecol(r, i);
					fl[i].type_oid = PQftype(r, i);
					fl[i].type_size = (int16_t)PQfsize(r, i);
					fl[i].type_mod = PQfmod(r, i);
					fl[i].format = (int16_t)result_format;
				}
				if (fl)
					gh_pgw_build_row_description(&j->out, fl, (size_t)nf);
				free(fl);
			}
		}
	}
	PQclear(r);
	if (!pc->pinned)
		gh_pg_release(conn);
}

static void msg_describe(struct pjob *j, const struct gh_pgw_msg *m, const struct gh_pgw_msg *next)
{
	struct pgc *pc = j->pc;
	struct gh_pgw_target t;
	char why[200];
	if (gh_pgw_decode_describe(m, &t, why, sizeof why))
		return ext_error(j, "08P01", why);
	if (t.kind == GH_PGW_OBJ_STATEMENT) {
		struct pstmt *st = gh_map_get(pc->stmts, t.name.p, t.name.len);
		if (!st)
			return ext_error(j, "26000", "prepared statement does not exist");
		return describe_backend(j, st, true, 0);
	}
	struct portal *po = gh_map_get(pc->portals, t.name.p, t.name.len);
	if (!po)
		return ext_error(j, "34000", "portal does not exist");
	/* Followed by the Execute of the same portal: the execution's result describes it. */
	struct gh_pgw_execute e;
	if (next && next->type == GH_PGW_EXECUTE && !po->ran && gh_pgw_decode_execute(next, &e, why, sizeof why) == 0 &&
	    e.portal.len == t.name.len && memcmp(e.portal.p, t.name.p, t.name.len) == 0) {
		po->describe = true;
		return;
	}
	describe_backend(j, po->st, false, po->result_format);
}

static void msg_execute(struct pjob *j, const struct gh_pgw_msg *m)
{
	struct pgc *pc = j->pc;
	struct gh_pgw_execute e;
	char why[200];
	if (gh_pgw_decode_execute(m, &e, why, sizeof why))
		return ext_error(j, "08P01", why);
	struct portal *po = gh_map_get(pc->portals, e.portal.p, e.portal.len);
	if (!po)
		return ext_error(j, "34000", "portal does not exist");
	if (po->ran) {
		portal_send(j, po, e.max_rows);
		return;
	}
	if (po->st->a->nstmts == 0) {
		gh_pgw_build_empty_query(&j->out);
		return;
	}
	struct stmt_run s = {.sql = po->st->sql, .len = po->st->len, .a = po->st->a, .n = po->n,
			     .vals = (const char *const *)po->vals, .lens = po->lens, .fmts = po->fmts,
			     .types = po->st->types, .result_format = po->result_format, .describe = po->describe,
			     .portal = po, .max_rows = e.max_rows > 0 ? e.max_rows : 0,
			     .analysis_us = po->st->analysis_us};
	po->st->analysis_us = 0;
	/* types: only as many as Parse gave; libpq wants n entries or NULL */
	uint32_t *types = NULL;
	if (po->st->ntypes && po->st->ntypes < po->n) {
		types = calloc(po->n, sizeof *types);
		if (types)
			memcpy(types, po->st->types, po->st->ntypes * sizeof *types);
		s.types = types;
	}
	if (e.max_rows > 0 && po->st->a->stmts[0].cls != GH_SQL_SESSION) {
		if (decide_and_run(j, &s, &po->st->a->stmts[0])) {
			pc->skip = true;
		} else {
			po->ran = true;
			portal_send(j, po, e.max_rows);
		}
	} else {
		s.portal = NULL;
		if (decide_and_run(j, &s, &po->st->a->stmts[0]))
			pc->skip = true;
		po->ran = true;
	}
	free(types);
}

static void msg_close(struct pjob *j, const struct gh_pgw_msg *m)
{
	struct pgc *pc = j->pc;
	struct gh_pgw_target t;
	char why[200];
	if (gh_pgw_decode_close(m, &t, why, sizeof why))
		return ext_error(j, "08P01", why);
	gh_map_del(t.kind == GH_PGW_OBJ_STATEMENT ? pc->stmts : pc->portals, t.name.p, t.name.len);
	gh_pgw_build_close_complete(&j->out);
}

static void job_run(struct gh_job *jb, struct worker *w)
{
	struct pjob *j = (struct pjob *)jb;
	struct pgc *pc = j->pc;
	j->w = w;
	const uint8_t *p = (const uint8_t *)j->in.data;
	size_t left = j->in.len;
	while (left) {
		struct gh_pgw_msg m, next;
		size_t used = 0, used2 = 0;
		char why[200];
		if (gh_pgw_parse_message(p, left, 0, &used, &m, why, sizeof why))
			break; /* framed on the loop already */
		bool has_next = used < left && gh_pgw_parse_message(p + used, left - used, 0, &used2, &next, why,
								    sizeof why) == 0;
		if (pc->skip && m.type != GH_PGW_SYNC) {
			p += used;
			left -= used;
			continue;
		}
		switch (m.type) {
		case GH_PGW_QUERY: {
			struct gh_str q;
			if (gh_pgw_decode_query(&m, &q, why, sizeof why)) {
				err_msg(&j->out, "ERROR", "08P01", why, NULL, NULL);
				gh_pgw_build_ready_for_query(&j->out, pc->txn);
			} else {
				simple_query(j, &q);
			}
			break;
		}
		case GH_PGW_PARSE: msg_parse(j, &m); break;
		case GH_PGW_BIND: msg_bind(j, &m); break;
		case GH_PGW_DESCRIBE: msg_describe(j, &m, has_next ? &next : NULL); break;
		case GH_PGW_EXECUTE: msg_execute(j, &m); break;
		case GH_PGW_CLOSE: msg_close(j, &m); break;
		case GH_PGW_SYNC:
			pc->skip = false;
			gh_pgw_build_ready_for_query(&j->out, pc->txn);
			break;
		case GH_PGW_FLUSH:
			break;
		default:
			ext_error(j, "0A000", "COPY and function calls are not supported through Gatehouse");
			break;
		}
		p += used;
		left -= used;
	}
	job_release(j);
}

/* ---------------------------------------------------------------- jobs (loop side) */

static void job_done(struct gh_job *jb);

static void job_free(struct pjob *j)
{
	gh_buf_free(&j->in);
	gh_buf_free(&j->out);
	gh_buf_free(&j->groups);
	if (j->policy)
		gh_config_unref(j->policy);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j);
}

/* Drops one hold on the job; the last one sends it to the loop. */
static void job_release(struct pjob *j)
{
	pthread_mutex_lock(&j->mu);
	bool last = --j->pending == 0;
	pthread_mutex_unlock(&j->mu);
	if (last) {
		j->job.done = job_done;
		gh_srv_to_loop(j->pc->pw->srv, &j->job);
	}
}

static void job_done(struct gh_job *jb)
{
	struct pjob *j = (struct pjob *)jb;
	struct pgc *pc = j->pc;
	pc->busy = false;
	pc->job = NULL;
	pc->pw->srv->inflight--;
	if (pc->closed) {
		job_free(j);
		pgc_free(pc);
		return;
	}
	if (j->audit_failed) {
		/* Fail closed: nothing of this job is released. */
		job_free(j);
		pgc_fatal(pc, "58030", "the audit trail could not be written, so no result was released");
		return;
	}
	bufferevent_write(pc->bev, j->out.data ? j->out.data : "", j->out.len);
	job_free(j);
	if (pc->pw->srv->stopping && pc->txn == 'I') {
		pgc_fatal(pc, "57P01", "terminating connection: the server is shutting down");
		return;
	}
	bufferevent_enable(pc->bev, EV_READ);
	pgc_process(pc);
}

static void dispatch(struct pgc *pc)
{
	struct server *srv = pc->pw->srv;
	struct pjob *j = calloc(1, sizeof *j);
	if (!j) {
		pgc_fatal(pc, "53200", "out of memory");
		return;
	}
	j->pc = pc;
	j->in = pc->in;
	gh_buf_init(&pc->in, (size_t)srv->o.pg_max_packet * 4 + GH_PGW_MAX_PACKET);
	pc->nin = 0;
	gh_buf_init(&j->out, (size_t)GH_DEFAULT_MAX_RESULT_BYTES * 2);
	gh_buf_init(&j->groups, 64 * 1024);
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	j->pending = 1;
	gh_srv_refresh(srv);
	j->policy = srv->policy;
	if (j->policy)
		gh_config_ref(j->policy);
	/* The token and the user's standing are checked again for every job: a revoked token or a
	 * disabled user stops working at once, also on open connections. */
	char why[200];
	const struct gh_policy_user *u = j->policy ? gh_config_user(j->policy, pc->claims.sub) : NULL;
	bool revoked = gh_map_get(srv->revoked, pc->claims.jti, strlen(pc->claims.jti)) != NULL;
	bool expired = gh_now() > pc->claims.exp + GH_TOKEN_SKEW;
	j->res = j->policy ? gh_config_resource(j->policy, pc->resource) : NULL;
	j->resenv = gh_config_resenv(j->res, pc->env);
	if (!u || u->disabled || revoked || expired || !j->resenv || j->res->kind != GH_RESOURCE_POSTGRES) {
		snprintf(why, sizeof why, "%s",
			 revoked ? "the token has been revoked"
			 : expired ? "the token has expired"
			 : !u || u->disabled ? "the user is disabled or no longer exists"
					     : "the resource or environment is no longer available");
		job_free(j);
		pgc_fatal(pc, "28000", why);
		return;
	}
	gh_config_user_groups(j->policy, pc->claims.sub, &j->groups);
	pc->busy = true;
	pc->job = j;
	srv->inflight++;
	bufferevent_disable(pc->bev, EV_READ);
	j->job.run = job_run;
	gh_srv_to_worker(srv, &j->job);
}

/* ---------------------------------------------------------------- startup (loop) */

static bool split_dbname(const char *db, char *res, size_t rn, char *env, size_t en)
{
	const char *dot = strrchr(db, '.');
	if (!dot || dot == db || !dot[1])
		return false;
	size_t k = (size_t)(dot - db);
	if (k >= rn || strlen(dot + 1) >= en)
		return false;
	memcpy(res, db, k);
	res[k] = '\0';
	snprintf(env, en, "%s", dot + 1);
	return gh_config_valid_name(res, false) && gh_config_valid_name(env, false);
}

static void send_ready(struct pgc *pc)
{
	struct gh_buf b;
	gh_buf_init(&b, 4096);
	gh_pgw_build_auth_ok(&b);
	const char *params[][2] = {
		{"server_version", "15.0 (Gatehouse)"}, {"server_encoding", "UTF8"}, {"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"}, {"IntervalStyle", "postgres"}, {"integer_datetimes", "on"},
		{"standard_conforming_strings", "on"}, {"TimeZone", "UTC"}, {"is_superuser", "off"},
		{"session_authorization", pc->user}, {"application_name", ""},
	};
	for (size_t i = 0; i < sizeof params / sizeof *params; i++)
		gh_pgw_build_parameter_status(&b, params[i][0], params[i][1]);
	gh_pgw_build_backend_key_data(&b, pc->pid, pc->key);
	gh_pgw_build_ready_for_query(&b, 'I');
	bufferevent_write(pc->bev, b.data, b.len);
	gh_buf_free(&b);
}

static void handle_cancel(struct gh_pgwire *pw, uint32_t pid, uint32_t key)
{
	for (struct pgc *c = pw->conns; c; c = c->next) {
		if (c->pid != pid)
			continue;
		uint32_t a = c->key, b = key;
		if (sodium_memcmp(&a, &b, sizeof a) != 0)
			return;
		pthread_mutex_lock(&c->cancel_mu);
		if (c->cancel) {
			char eb[128];
			PQcancel(c->cancel, eb, sizeof eb);
		}
		pthread_mutex_unlock(&c->cancel_mu);
		return;
	}
}

static bool start_tls(struct pgc *pc)
{
	SSL *ssl = SSL_new(pc->pw->tls);
	if (!ssl)
		return false;
	struct bufferevent *tb = bufferevent_openssl_filter_new(pc->pw->srv->base, pc->bev, ssl,
								BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (!tb) {
		SSL_free(ssl);
		return false;
	}
	bufferevent_set_timeouts(pc->bev, NULL, NULL); /* the filter carries the start-up timeout now */
	struct timeval t = {30, 0};
	bufferevent_set_timeouts(tb, &t, NULL);
	pc->bev = tb;
	pc->tls = true;
	return true;
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void process_startup(struct pgc *pc, const uint8_t *buf, size_t avail)
{
	struct gh_pgwire *pw = pc->pw;
	struct evbuffer *in = bufferevent_get_input(pc->bev);
	struct gh_pgw_startup su;
	size_t used = 0;
	char why[200];
	int rc = gh_pgw_parse_startup(buf, avail, 0, &used, &su, why, sizeof why);
	if (rc == GH_EAGAIN)
		return;
	if (rc) {
		evbuffer_drain(in, avail);
		return pgc_fatal(pc, "08P01", why);
	}
	if (su.kind == GH_PGW_SSL_REQUEST || su.kind == GH_PGW_GSSENC_REQUEST) {
		evbuffer_drain(in, used);
		bool accept = su.kind == GH_PGW_SSL_REQUEST && pw->tls && !pc->tls;
		char answer = accept ? 'S' : 'N';
		if (accept && evbuffer_get_length(in) != 0) /* bytes after SSLRequest: refuse (no buffering attack) */
			return pgc_fatal(pc, "08P01", "unexpected data after SSLRequest");
		if (accept) {
			/* 'S' goes out in the clear, then the handshake. */
			if (write(bufferevent_getfd(pc->bev), &answer, 1) != 1 || !start_tls(pc)) {
				pgc_free(pc);
				return;
			}
			bufferevent_setcb(pc->bev, on_read, on_write, on_event, pc);
			bufferevent_enable(pc->bev, EV_READ | EV_WRITE);
			return;
		}
		bufferevent_write(pc->bev, &answer, 1);
		return pgc_process(pc);
	}
	if (su.kind == GH_PGW_CANCEL_REQUEST) {
		handle_cancel(pw, su.cancel_pid, su.cancel_key);
		evbuffer_drain(in, used);
		pc->closing = true;
		pgc_free(pc);
		return;
	}
	if (!pc->loopback && !pc->tls)
		return pgc_fatal(pc, "28000",
				 "Gatehouse takes tokens over TLS only from non-loopback addresses (start the server "
				 "with --pg-tls-cert and --pg-tls-key, and connect with sslmode=require)");
	if (su.user.len > GH_NAME_MAX || !gh_config_valid_name(su.user.p, true))
		return pgc_fatal(pc, "28000", "user: not a valid Gatehouse user name");
	snprintf(pc->user, sizeof pc->user, "%s", su.user.p);
	if (!su.database.p || !split_dbname(su.database.p, pc->resource, sizeof pc->resource, pc->env, sizeof pc->env))
		return pgc_fatal(pc, "3D000", "dbname must be RESOURCE.ENVIRONMENT (for example crm.staging)");
	for (size_t i = 0; i < su.npairs; i++)
		if (strcmp(su.pairs[i].name.p, "replication") == 0 && strcmp(su.pairs[i].value.p, "false") != 0 &&
		    strcmp(su.pairs[i].value.p, "0") != 0)
			return pgc_fatal(pc, "42501", "replication connections are not allowed through Gatehouse");
	evbuffer_drain(in, used);
	pc->state = PGC_AUTH;
	struct gh_buf b;
	gh_buf_init(&b, 64);
	gh_pgw_build_auth_cleartext(&b);
	bufferevent_write(pc->bev, b.data, b.len);
	gh_buf_free(&b);
	pgc_process(pc);
}

static void process_auth(struct pgc *pc, const uint8_t *buf, size_t avail)
{
	struct server *srv = pc->pw->srv;
	struct evbuffer *in = bufferevent_get_input(pc->bev);
	struct gh_pgw_msg m;
	size_t used = 0;
	char why[200];
	int rc = gh_pgw_parse_message(buf, avail, (size_t)srv->o.pg_max_packet, &used, &m, why, sizeof why);
	if (rc == GH_EAGAIN)
		return;
	struct gh_str pw;
	if (rc || m.type != GH_PGW_PASSWORD || gh_pgw_decode_password(&m, &pw, why, sizeof why)) {
		evbuffer_drain(in, avail);
		return pgc_fatal(pc, "08P01", rc ? why : "expected a password message (the password is a Gatehouse token)");
	}
	gh_srv_refresh(srv);
	bool ok = srv->policy && gh_srv_verify_token(srv, pw.p, pw.len, &pc->claims, why, sizeof why);
	sodium_memzero((void *)(uintptr_t)pw.p, pw.len); /* the token is a bearer credential */
	evbuffer_drain(in, used);
	if (!ok)
		return pgc_fatal(pc, "28P01", srv->policy ? why : "no policy has been applied");
	if (strcmp(pc->claims.sub, pc->user) != 0)
		return pgc_fatal(pc, "28P01", "the token belongs to another user than the one connecting");
	if (strcmp(pc->claims.env, pc->env) != 0)
		return pgc_fatal(pc, "28P01", "the token is for another environment than dbname names");
	const struct gh_policy_resource *r = gh_config_resource(srv->policy, pc->resource);
	if (!gh_config_resenv(r, pc->env))
		return pgc_fatal(pc, "3D000", "no such resource and environment");
	if (r->kind != GH_RESOURCE_POSTGRES)
		return pgc_fatal(pc, "3D000", "this resource is not a PostgreSQL database; use the HTTP API");
	pc->state = PGC_READY;
	pc->txn = 'I';
	bufferevent_set_timeouts(pc->bev, NULL, NULL); /* an app's pooled connection may idle for long */
	send_ready(pc);
	pgc_process(pc);
}

/* Frames what has arrived; a Sync, Flush or Query closes a job. */
static void pgc_process(struct pgc *pc)
{
	struct server *srv = pc->pw->srv;
	if (pc->busy || pc->closing || pc->closed)
		return;
	struct evbuffer *in = bufferevent_get_input(pc->bev);
	for (;;) {
		size_t avail = evbuffer_get_length(in);
		if (avail == 0)
			return;
		const uint8_t *buf = evbuffer_pullup(in, -1);
		if (pc->state == PGC_STARTUP)
			return process_startup(pc, buf, avail);
		if (pc->state == PGC_AUTH)
			return process_auth(pc, buf, avail);
		struct gh_pgw_msg m;
		size_t used = 0;
		char why[200];
		int rc = gh_pgw_parse_message(buf, avail, (size_t)srv->o.pg_max_packet, &used, &m, why, sizeof why);
		if (rc == GH_EAGAIN)
			return;
		if (rc) {
			evbuffer_drain(in, avail);
			return pgc_fatal(pc, rc == GH_ETOOBIG ? "54000" : "08P01", why);
		}
		if (m.type == GH_PGW_TERMINATE) {
			evbuffer_drain(in, avail);
			pc->closing = true;
			return pgc_free(pc);
		}
		if (++pc->nin > PGW_MAX_JOB_MSGS || gh_buf_append(&pc->in, (const char *)buf, used)) {
			evbuffer_drain(in, avail);
			return pgc_fatal(pc, "54000", "too many messages without a Sync");
		}
		evbuffer_drain(in, used);
		if (m.type == GH_PGW_SYNC || m.type == GH_PGW_FLUSH || m.type == GH_PGW_QUERY)
			return dispatch(pc);
	}
}

/* ---------------------------------------------------------------- connections (loop) */

static void pgc_free(struct pgc *pc)
{
	if (pc->busy) { /* the job still uses it: free when it returns */
		pc->closed = true;
		if (pc->bev) {
			bufferevent_free(pc->bev);
			pc->bev = NULL;
		}
		return;
	}
	struct gh_pgwire *pw = pc->pw;
	if (pc->prev)
		pc->prev->next = pc->next;
	else
		pw->conns = pc->next;
	if (pc->next)
		pc->next->prev = pc->prev;
	pw->nconns--;
	if (pc->bev)
		bufferevent_free(pc->bev);
	if (pc->pinned) {
		/* a client gone mid-transaction: roll back on the backend, then drop the connection */
		PQclear(PQexec(gh_pg_conn_pg(pc->pinned), "ROLLBACK"));
		gh_pg_release(pc->pinned);
	}
	gh_map_free(pc->portals);
	gh_map_free(pc->stmts);
	gh_buf_free(&pc->in);
	if (pc->cancel)
		PQfreeCancel(pc->cancel);
	pthread_mutex_destroy(&pc->cancel_mu);
	free(pc);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	pgc_process(arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct pgc *pc = arg;
	if (pc->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		pgc_free(pc);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct pgc *pc = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		pgc_free(pc);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct gh_pgwire *pw = arg;
	struct server *srv = pw->srv;
	if (srv->stopping || pw->nconns >= 10000) {
		evutil_closesocket(fd);
		return;
	}
	struct pgc *pc = calloc(1, sizeof *pc);
	if (!pc) {
		evutil_closesocket(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	pc->pw = pw;
	pc->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	pc->stmts = gh_map_new(stmt_free);
	pc->portals = gh_map_new(portal_free);
	pthread_mutex_init(&pc->cancel_mu, NULL);
	gh_buf_init(&pc->in, (size_t)srv->o.pg_max_packet * 4 + GH_PGW_MAX_PACKET);
	if (!pc->bev || !pc->stmts || !pc->portals) {
		if (pc->bev)
			bufferevent_free(pc->bev);
		else
			evutil_closesocket(fd);
		gh_map_free(pc->stmts);
		gh_map_free(pc->portals);
		free(pc);
		return;
	}
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		port = ntohs(in->sin_port);
		pc->loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		port = ntohs(in6->sin6_port);
		pc->loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	(void)salen;
	snprintf(pc->peer, sizeof pc->peer, "pg:%s:%d", host, port);
	pc->pid = ++pw->next_pid;
	randombytes_buf(&pc->key, sizeof pc->key);
	pc->txn = 'I';
	pc->next = pw->conns;
	if (pw->conns)
		pw->conns->prev = pc;
	pw->conns = pc;
	pw->nconns++;
	/* a client that stops mid-startup is dropped */
	struct timeval t = {30, 0};
	bufferevent_set_timeouts(pc->bev, &t, NULL);
	bufferevent_setwatermark(pc->bev, EV_READ, 0, (size_t)srv->o.pg_max_packet + 65536);
	bufferevent_setcb(pc->bev, on_read, on_write, on_event, pc);
	bufferevent_enable(pc->bev, EV_READ | EV_WRITE);
}

/* ---------------------------------------------------------------- lifecycle */


int gh_pgwire_start(struct server *srv, struct gh_error *err)
{
	struct gh_pgwire *pw = calloc(1, sizeof *pw);
	if (!pw)
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	pw->srv = srv;
	pw->next_pid = (uint32_t)getpid() << 8;
	srv->pgwire = pw;
	if (srv->o.pg_tls_cert || srv->o.pg_tls_key) {
		if (!srv->o.pg_tls_cert || !srv->o.pg_tls_key)
			return gh_error_set(err, GH_EINVAL, "--pg-tls-cert and --pg-tls-key go together");
		if (gh_tls_load(err))
			return err->code;
		pw->tls = SSL_CTX_new(TLS_server_method());
		if (!pw->tls)
			return gh_error_set(err, GH_EINTERNAL, "TLS: cannot create a context");
		SSL_CTX_set_min_proto_version(pw->tls, TLS1_2_VERSION);
		if (SSL_CTX_use_certificate_chain_file(pw->tls, srv->o.pg_tls_cert) != 1)
			return gh_error_set(err, GH_EINVAL, "--pg-tls-cert: cannot load '%s'", srv->o.pg_tls_cert);
		if (SSL_CTX_use_PrivateKey_file(pw->tls, srv->o.pg_tls_key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(pw->tls) != 1)
			return gh_error_set(err, GH_EINVAL, "--pg-tls-key: cannot load '%s' or it does not match the "
					    "certificate", srv->o.pg_tls_key);
	}
	struct sockaddr_storage ss;
	socklen_t sl;
	if (gh_srv_parse_addr(srv->o.pg_addr, &ss, &sl))
		return gh_error_set(err, GH_EINVAL, "--pg: expected HOST:PORT (e.g. 127.0.0.1:6432), got '%s'",
				    srv->o.pg_addr);
	pw->listener = evconnlistener_new_bind(srv->base, on_accept, pw,
					       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 1024,
					       (struct sockaddr *)&ss, (int)sl);
	if (!pw->listener)
		return gh_error_set(err, GH_EIO, "cannot listen on %s: %s", srv->o.pg_addr, strerror(errno));
	struct sockaddr_storage bound;
	socklen_t blen = sizeof bound;
	getsockname(evconnlistener_get_fd(pw->listener), (struct sockaddr *)&bound, &blen);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (bound.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&bound)->sin_addr, host, sizeof host);
		port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&bound)->sin6_addr, host, sizeof host);
		port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
	}
	printf("listening on postgresql://%s:%d\n", host, port);
	fflush(stdout);
	return 0;
}

void gh_pgwire_stop(struct server *srv)
{
	struct gh_pgwire *pw = srv->pgwire;
	if (!pw)
		return;
	if (pw->listener) {
		evconnlistener_free(pw->listener);
		pw->listener = NULL;
	}
	for (struct pgc *pc = pw->conns, *n; pc; pc = n) {
		n = pc->next;
		if (!pc->busy && pc->txn == 'I' && !pc->closing)
			pgc_fatal(pc, "57P01", "terminating connection: the server is shutting down");
	}
}

int gh_pgwire_busy(struct server *srv)
{
	return srv->pgwire ? srv->pgwire->nconns : 0;
}

void gh_pgwire_free(struct server *srv)
{
	struct gh_pgwire *pw = srv->pgwire;
	if (!pw)
		return;
	if (pw->listener)
		evconnlistener_free(pw->listener);
	while (pw->conns) {
		pw->conns->busy = false; /* workers have stopped */
		pgc_free(pw->conns);
	}
	if (pw->tls)
		SSL_CTX_free(pw->tls);
	free(pw);
	srv->pgwire = NULL;
}
