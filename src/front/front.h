/* front: the HTTP API server. Fronts parse the wire format and hold no policy of their own. */
#ifndef GH_FRONT_H
#define GH_FRONT_H

#include "core/core.h"

struct gh_server_opts {
	const char *datadir;
	const char *http_addr;   /* "127.0.0.1:8080"; port 0 picks a free port */
	int workers;             /* threads that run statements and store I/O */
	int64_t max_body;
	int64_t max_statement;
	int64_t max_rows;
	int64_t statement_ms;
	int64_t approval_ttl;    /* seconds */
	int pg_pool;             /* PostgreSQL connections per (resource, environment) */
	int64_t pg_wait_ms;      /* how long a request waits for a pooled connection */
	const char *pg_addr;     /* PostgreSQL wire front "127.0.0.1:6432", or NULL for none */
	const char *pg_tls_cert, *pg_tls_key; /* PEM files: TLS for the wire front (SSLRequest) */
	int64_t pg_max_packet;   /* largest wire-protocol message accepted */
	const char *metrics_addr; /* a listener serving only GET /metrics (and /healthz) without a
				   * token, or NULL for none */
};

void gh_server_opts_default(struct gh_server_opts *o);

/* Runs the server until SIGTERM or SIGINT. Prints "listening on http://ADDR:PORT" to stdout
 * when ready (then "listening on postgresql://ADDR:PORT" with pg_addr, then "listening on
 * metrics http://ADDR:PORT" with metrics_addr). Returns 0 after a clean stop. */
int gh_server_run(const struct gh_server_opts *o, struct gh_error *err);

#endif
