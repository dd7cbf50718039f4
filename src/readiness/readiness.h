/* readiness: checks a data directory against a production-readiness list (secrets,
 * authentication, authorization, input validation, logging, dependency security, recovery).
 * Every check reads what is there — files, the store, the applied policy, the audit trail —
 * and says why it passed or failed and how to fix it. Nothing is changed. */
#ifndef GH_READINESS_H
#define GH_READINESS_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

enum gh_ready_status { GH_READY_PASS, GH_READY_WARN, GH_READY_FAIL };

struct gh_ready_check {
	const char *id;    /* "secrets.master_key", ... (static) */
	const char *area;  /* "secrets", "authentication", ... (static) */
	enum gh_ready_status status;
	char reason[400];
	char fix[400];     /* "" when it passed */
};

struct gh_ready_opts {
	int64_t now;                 /* Unix seconds */
	int64_t max_token_lifetime;  /* seconds: longer tokens outstanding fail (default 8h) */
	size_t max_own_group;        /* members: an `own` grant to a larger group fails (default 5) */
};

#define GH_READY_MAX_CHECKS 32

/* Runs every check on datadir into out[0..*n). Returns 0 when it could run them (a failed
 * check is a result, not an error), or an error when datadir cannot be read at all. */
int gh_readiness_run(const char *datadir, const struct gh_ready_opts *o, struct gh_ready_check *out, size_t *n,
		     struct gh_error *err);

const char *gh_ready_status_name(enum gh_ready_status s);

#endif
