/* usage: usage analytics computed from the audit trail. An index kept beside the trail
 * (DIR/audit/usage.db, SQLite) holds, per hour and per (app, user, resource, environment), the
 * statements submitted, rows returned and written, errors, denials by rule, approvals requested,
 * approved and rejected with the time they waited, and statement counts per fingerprint (with
 * one normalised example text: never a parameter or literal value).
 *
 * The index follows the log incrementally: it remembers the last record it took (seq, hash and
 * byte offsets) and reads on from there. If the log's record at that place no longer matches
 * (the log was replaced or restored), the index is rebuilt from the start. It is derived data:
 * deleting usage.db loses nothing. Several processes may catch it up at once (SQLite's locks
 * serialise them); within a process one struct gh_usage is shared under its own mutex.
 *
 * What the records count (see README "Usage analytics"):
 *   queries        `query` and `approval.request` records: each statement submitted, once
 *   rows           rows returned by reads (`query` records that carry rows)
 *   rows_affected  rows written (`query.outcome`, `approval.execute`)
 *   errors         statements that failed or timed out when run
 *   denials        `query` records with decision deny, by rule
 *   approvals      requested (`approval.request`), approved / rejected (`approval.approve` with
 *                  status approved, `approval.reject` with status rejected), counted for the
 *                  requester's app, user, resource and environment in the hour of the decision;
 *                  time to approve = decision time - request time. */
#ifndef GH_USAGE_H
#define GH_USAGE_H

#include "core/core.h"

struct gh_usage;

/* Width of a bucket: answers cover whole hours. */
#define GH_USAGE_BUCKET_MS 3600000LL
/* How often the server's background thread looks for new records. */
#define GH_USAGE_INTERVAL_MS 5000

/* Opens (creating, mode 0600) DIR/audit/usage.db. A file of another schema version, or one
 * SQLite cannot read, is replaced by an empty index. */
int gh_usage_open(const char *datadir, struct gh_usage **out, struct gh_error *err);
/* Stops the background thread (if started) and closes the index. NULL is ignored. */
void gh_usage_close(struct gh_usage *u);

struct gh_usage_stats {
	int64_t records;   /* records read by this call */
	int64_t seq;       /* the last record in the index */
	bool rebuilt;      /* the log no longer matched: the index was emptied and rebuilt */
	double ms;         /* time taken */
};

/* Brings the index up to the end of the log (as it is when the call starts). Records are
 * taken in transactions of a bounded number of records, so an interrupted catch-up keeps what
 * it finished. Fails (GH_EIO, message naming the seq) on a log whose chain is broken after the
 * indexed part: its numbers would not be trustworthy (`gatehouse audit verify` says more). */
int gh_usage_catch_up(struct gh_usage *u, struct gh_usage_stats *st, struct gh_error *err);

/* Starts a low-priority thread that catches the index up every interval_ms when the log has
 * grown (and at once). */
int gh_usage_start(struct gh_usage *u, int interval_ms);

/* A report's window, filters and the caller's visibility. */
struct gh_usage_query {
	int64_t since_ms, until_ms;          /* [since, until); widened to whole buckets */
	const char *app, *user, *resource, *environment; /* NULL: any */
	int top;                             /* top statements to list, 0..GH_USAGE_MAX_TOP */
	int limit;                           /* groups listed, most queries first (0: the default) */
	bool all;                            /* sees everything (admins, the local operator) */
	const char *self;                    /* otherwise: own usage ... */
	const char *const *owned;            /* ... and all usage of these resources */
	size_t nowned;
};

#define GH_USAGE_MAX_TOP 100
/* Groups listed by default and at most: the answer stays bounded; totals cover every group. */
#define GH_USAGE_DEFAULT_GROUPS 1000
#define GH_USAGE_MAX_GROUPS 100000

/* Appends the report's members (no surrounding braces) to out:
 * "since","until","bucket_s","groups":[{"app","user","resource","environment","queries","rows",
 * "rows_affected","errors","denied","denials":{RULE:N},"approvals":{"requested","approved",
 * "rejected","avg_time_to_approve_s"}}],"totals":{...},"top_statements":[{"fingerprint",
 * "example","count","resource"}],"groups_total":N,"truncated":BOOL. Groups with nothing in the
 * window are left out; they are ordered by queries, most first, and at most q->limit are listed
 * (totals cover all of them). *ngroups (optional) gets the number listed. */
int gh_usage_report(struct gh_usage *u, const struct gh_usage_query *q, struct gh_buf *out, int64_t *ngroups,
		    struct gh_error *err);

/* Parses a report time: a duration before now ("7d", "24h", "30m", "90s", plain seconds) or an
 * RFC 3339 UTC time ("2026-01-31T12:00:00Z", optional fraction). 0 or GH_EINVAL. */
int gh_usage_parse_time(const char *s, int64_t now_ms, int64_t *out_ms);

#endif
