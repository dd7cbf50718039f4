/* front: what the HTTP server and the PostgreSQL wire front share inside the server process.
 * Not an API for other modules. Threads: one event loop (libevent) owns connections, policy
 * snapshot, token cache and revocations; workers run statements and store I/O; the audit
 * thread makes records durable. Work moves between them as struct gh_job. */
#ifndef GH_FRONT_SERVER_INT_H
#define GH_FRONT_SERVER_INT_H

#include <event2/event.h>
#include <event2/listener.h>
#include <limits.h>
#include <pthread.h>
#include <sys/socket.h>

#include "audit/audit.h"
#include "config/config.h"
#include "connector/connector.h"
#include "front/front.h"
#include "identity/identity.h"
#include "metrics/metrics.h"
#include "sql/sql.h"
#include "store/store.h"
#include "usage/usage.h"

struct worker;
struct gh_pgwire;

/* Workers: --workers start; more start (up to this many) while every one is busy. */
#define GH_MAX_WORKERS 256

/* A unit of work: run() on a worker thread, then done() on the loop thread. */
struct gh_job {
	struct gh_job *next;
	void (*run)(struct gh_job *j, struct worker *w);
	void (*done)(struct gh_job *j);
};

struct server {
	struct gh_server_opts o;
	struct event_base *base;
	struct evconnlistener *listener;
	struct event *wake, *sigint, *sigterm, *drain;

	/* loop-thread state */
	struct gh_store *store;
	int64_t data_version, policy_version, revocations, secrets_mark;
	uint64_t secrets_epoch;       /* bumped (atomically) when any secret changed: pools drain */

	/* PostgreSQL: pools shared by the workers; the vault is read (under vault_mu) only when a
	 * pool opens a connection. The master key stays in guarded, read-only memory. */
	struct gh_pg_pools *pg;
	uint8_t *master;
	struct gh_store *vault_store;
	pthread_mutex_t vault_mu;
	struct conn *conns;           /* every open connection, for shutdown */
	struct gh_policy *policy;
	struct gh_signer signer;
	struct gh_map *revoked;       /* jti -> (void*)1 */
	struct gh_map *token_cache;   /* token -> struct gh_claims* */
	int nconns;
	int inflight;
	uint64_t schema_epoch;        /* bumped (atomically) after each write or DDL this server runs */
	bool stopping;
	uint64_t stop_deadline;
	uint32_t rid_prefix;
	uint64_t rid_counter;

	struct gh_audit *audit;
	struct gh_audit_sinks *sinks; /* the audit trail's sinks and checkpointer */
	struct gh_usage *usage;       /* the usage index (NULL if it cannot be opened: /v1/usage is 503) */

	/* worker queue */
	pthread_mutex_t wmu;
	pthread_cond_t wcv;
	struct gh_job *whead, *wtail;
	bool wstop;
	pthread_t *threads;
	int nthreads, max_threads;
	int idle, queued;             /* workers waiting for work; jobs not yet taken */
	char dbpath[PATH_MAX];        /* the store, for workers started later */

	/* completion queue back to the loop */
	pthread_mutex_t cmu;
	struct gh_job *chead, *ctail;

	struct gh_pgwire *pgwire;     /* the PostgreSQL wire front, when --pg is given */

	/* metrics (api_metrics.c): the registry and the families the fronts update */
	struct gh_metrics *metrics;
	struct gh_metrics_family *m_requests, *m_decision, *m_backend, *m_audit_sync;
	struct evconnlistener *metrics_listener; /* --metrics: GET /metrics without a token */
};

/* Per-thread resources of a worker. */
struct worker {
	struct server *srv;
	struct gh_connector *conn;
	struct gh_store *store;
	struct gh_map *analysis_cache; /* resource \x1f env \x1f sql -> struct gh_sql_analysis* */
	int64_t cache_policy;          /* the policy version the cache was filled under */
	uint64_t schema_epoch;         /* srv->schema_epoch when this worker last read schema versions */
};

/* Queues j for a worker (any thread). */
void gh_srv_to_worker(struct server *srv, struct gh_job *j);
/* Hands j back to the loop, which calls j->done (any thread). */
void gh_srv_to_loop(struct server *srv, struct gh_job *j);
/* Loop thread: reloads policy and revocations if the store changed. */
void gh_srv_refresh(struct server *srv);
/* Loop thread: verifies a token (cached after the first signature check), its revocation and
 * its user's standing in srv->policy. Fills out; on failure writes why (no token text). */
bool gh_srv_verify_token(struct server *srv, const char *tok, size_t len, struct gh_claims *out, char *why,
			 size_t whylen);
/* Worker: the PostgreSQL analysis of text, through the worker's cache (refusals not cached).
 * policy_version empties the cache when it changes. Returns a reference (unref it). */
int gh_srv_analyse_pg(struct worker *w, int64_t policy_version, const char *sql, size_t len,
		      struct gh_sql_analysis **out);
/* Parses "HOST:PORT" (IPv4, or [IPv6]:PORT); port 0 asks for a free one. */
struct sockaddr_storage;
int gh_srv_parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len);
/* Makes a request id ("req_" + hex) unique in this process. */
void gh_srv_request_id(struct server *srv, char *out, size_t n);

/* Metrics (api_metrics.c). Labels come from fixed sets: front http|pgwire; decision
 * allow|deny|pending|error (error: no decision was reached: malformed, unauthenticated,
 * unknown resource, refused by the protocol state, failed before deciding); rule: the rules
 * the policy and the fronts name, "grant" for every granting rule, "none" without a decision,
 * "other" for anything else. */
enum gh_srv_front { GH_SRV_HTTP, GH_SRV_PGWIRE };
/* Creates the registry and its families, and points the audit writer at its fsync histogram
 * (call before gh_audit_start). */
int gh_srv_metrics_init(struct server *srv, struct gh_error *err);
/* One request (HTTP: one POST /v1/query; wire: one statement) and how it was decided:
 * decision is "allow", "deny", "pending" or "error"; rule as the verdict names it (mapped). */
void gh_srv_count(struct server *srv, enum gh_srv_front front, const char *decision, const char *rule);
/* Time spent analysing and deciding one statement; running it on the backend. */
void gh_srv_time_decision(struct server *srv, enum gh_srv_front front, uint64_t us);
void gh_srv_time_backend(struct server *srv, bool postgres, uint64_t us);
/* At debug level, one line per decided statement (request id, user, resource, environment,
 * class, decision, rule); its text and parameters only when gh_log_sensitive(). */
void gh_srv_log_decision(enum gh_srv_front front, const char *request_id, const char *user, const char *resource,
			 const char *environment, const char *cls, const char *decision, const char *rule,
			 const char *sql, size_t sqllen, const char *params_json);

/* The PostgreSQL wire front (pgwire.c). */
int gh_pgwire_start(struct server *srv, struct gh_error *err);
/* Stops accepting and closes idle connections; busy ones close when their job returns. */
void gh_pgwire_stop(struct server *srv);
void gh_pgwire_free(struct server *srv);
/* Open pgwire connections (the server waits for them to finish at shutdown). */
int gh_pgwire_busy(struct server *srv);

#endif
