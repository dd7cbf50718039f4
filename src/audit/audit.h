/* audit: the append-only, hash-chained audit trail (DIR/audit/audit.log, JSON lines).
 * Each record: {"seq":N, ...fields..., "prev":"<hash of record N-1>", "hash":"<sha256>"} where
 * hash is SHA-256 over the record's bytes without its ,"hash":"…" member. The store keeps the
 * head (last seq and hash) so that truncation is found too. Several processes may append
 * (the server and operator verbs): appends are serialised with flock. */
#ifndef GH_AUDIT_H
#define GH_AUDIT_H

#include "core/core.h"

struct gh_audit;

/* One record to append. body holds the record's fields as JSON members without braces
 * (see gh_audit_format). done is called once, on the writer thread for gh_audit_submit,
 * with 0 when the record is durable (fsync'd) or GH_EAUDIT when it is not. */
struct gh_audit_entry {
	struct gh_audit_entry *next;
	struct gh_buf body;
	void (*done)(struct gh_audit_entry *e, int status);
	void *arg;
	int64_t seq; /* set when written */
};

/* The fields of a record, in the order they are written. NULL strings are written as null;
 * *_json members are raw JSON (arrays/objects) written as they are. */
struct gh_audit_record {
	int64_t time_ms;
	const char *request_id, *event, *user, *groups, *app, *environment, *resource, *statement;
	const char *params_json, *class_name, *tables_json, *decision, *rule, *status;
	int64_t rows;          /* -1: not applicable */
	double duration_ms;    /* < 0: not applicable */
	const char *client;
	const char *detail_json; /* optional extra object, e.g. {"approval":"apr_…"} */
};

/* Appends the record's members (no braces) to out. */
int gh_audit_format(const struct gh_audit_record *r, struct gh_buf *out);

/* Opens DIR/audit/audit.log for appending (creating it) and syncs with the store's head.
 * Refuses a log that ends before the store's head (truncated). A torn last line (crash during
 * a write that was never acknowledged) is cut off. */
int gh_audit_open(const char *datadir, struct gh_audit **out, struct gh_error *err);
/* Starts the group-commit writer thread used by gh_audit_submit. */
int gh_audit_start(struct gh_audit *a);
/* Queues e; e->done reports durability. Never blocks on I/O. */
void gh_audit_submit(struct gh_audit *a, struct gh_audit_entry *e);
/* Appends one record synchronously (operator verbs). */
int gh_audit_append(struct gh_audit *a, const struct gh_audit_record *r, int64_t *seq, struct gh_error *err);
/* Appends r[0..n-1] (n <= GH_AUDIT_MAX_BATCH) in one write and one fdatasync: all or none.
 * *seq (optional) gets the last record's seq. */
int gh_audit_append_n(struct gh_audit *a, const struct gh_audit_record *r, size_t n, int64_t *seq,
		      struct gh_error *err);
/* Drains the queue, stops the writer and closes the log. */
void gh_audit_close(struct gh_audit *a);
/* Records written and fsyncs done since open (for metrics and benchmarks). Any thread. */
void gh_audit_stats(struct gh_audit *a, uint64_t *records, uint64_t *syncs);
/* Each fdatasync's duration is observed in h, an unlabelled histogram of the metrics registry
 * (metrics/metrics.h). Call before gh_audit_start. */
struct gh_metrics_family;
void gh_audit_set_sync_metric(struct gh_audit *a, struct gh_metrics_family *h);

/* A consistent cut of the trail (for backups): the log's bytes [0, bytes) hold records 1..seq,
 * the last one with hash `hash`. */
struct gh_audit_cut {
	int64_t seq;
	char hash[65];
	int64_t bytes;
};
/* Takes the log's lock, so that no process appends meanwhile, finds its last complete record,
 * and calls fn(arg, cut) (may be NULL) before releasing the lock: what fn reads of the store
 * then has an audit head at or before cut->seq, because the head never leads the log. Returns
 * fn's result, or GH_EAUDIT when the log cannot be read. Hold the lock briefly: appends wait. */
int gh_audit_cut(const char *datadir, int (*fn)(void *arg, const struct gh_audit_cut *cut), void *arg,
		 struct gh_audit_cut *out, struct gh_error *err);
/* Writes the log's bytes [0, cut->bytes) to fd (the caller syncs and checks them). */
int gh_audit_copy(const char *datadir, const struct gh_audit_cut *cut, int fd, struct gh_error *err);

struct gh_audit_report {
	bool ok;
	int64_t records;
	int64_t bad_line, bad_seq; /* first bad record: line (1-based) and seq (-1 unknown) */
	char reason[256];
};
/* Checks the whole chain and the store's head. Returns 0 when it could check (see rep->ok). */
int gh_audit_verify(const char *datadir, struct gh_audit_report *rep, struct gh_error *err);

/* Reads records with seq > since, at most limit, passing each line to fn (which returns
 * non-zero to stop). Used by GET /v1/audit; filtering is the caller's. */
int gh_audit_read(const char *datadir, int64_t since, int64_t limit,
		  int (*fn)(const char *line, size_t len, void *arg), void *arg, struct gh_error *err);

#endif
