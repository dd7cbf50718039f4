/* usage: what usage.c, ingest.c and report.c share (private to the module). */
#ifndef GH_USAGE_INT_H
#define GH_USAGE_INT_H

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>

#include "config/config.h"
#include "sql/sql.h"
#include "store/store.h"
#include "usage/usage.h"

/* Records taken per transaction: a catch-up interrupted (or racing another process) keeps
 * what it finished, and readers never wait long for the index's write lock. */
#define USAGE_PASS_RECORDS 65536
/* The background thread's passes: small, each followed by a pause nine times as long, so
 * that it takes at most a tenth of a core from the requests (a report catches up in full). */
#define USAGE_BACKGROUND_PASS 2048
#define USAGE_BACKGROUND_DUTY 10
/* Bytes read from the log at a time (a longer line grows the buffer up to GH_AUDIT_MAX_LINE). */
#define USAGE_READ_BLOCK (1024 * 1024)
/* Distinct fingerprints kept: past this, statements of a new shape are counted under one
 * fingerprint per resource, USAGE_OTHER_FP (generated SQL could otherwise grow the index
 * without bound). */
#define USAGE_MAX_FINGERPRINTS 100000
#define USAGE_OTHER_FP "0000000000000000"
/* Example statement text kept per fingerprint, bytes (cut at a character boundary). */
#define USAGE_EXAMPLE_MAX 1000
/* Statement texts remembered with their fingerprint between records; emptied when full. */
#define USAGE_TEXT_CACHE_MAX 20000
#define USAGE_TEXT_CACHE_BYTES (64 * 1024 * 1024)
/* A pending approval never decided is forgotten after this long (longer than --approval-ttl's
 * maximum of 30 days). */
#define USAGE_PENDING_KEEP_MS (31LL * 86400 * 1000)

struct gh_usage {
	pthread_mutex_t mu;            /* the connection, caches and catch-up */
	sqlite3 *db;
	char datadir[PATH_MAX];
	char log_path[PATH_MAX];
	char store_path[PATH_MAX];

	/* resource kinds from the applied policy, for the fingerprint dialect */
	struct gh_store *store;
	int64_t policy_version;
	struct gh_policy *policy;

	/* caches of ids in the index, valid for one generation of it (a rebuild starts a new one) */
	int64_t generation;
	struct gh_map *dims;           /* "app\x1fuser\x1fresource\x1fenv" -> id */
	struct gh_map *texts;          /* dialect resource \x1f statement -> fingerprint id */
	struct gh_map *fps;            /* fingerprint \x1f resource -> fingerprint id */
	struct gh_map *rules;          /* denial rule -> id */
	size_t text_bytes;

	/* background catch-up */
	pthread_t thread;
	pthread_cond_t cv;
	bool started, stop;
	int interval_ms;
	int64_t seen_size;             /* log size at the last background catch-up */
};

/* SQLite error as a gh_error. */
int usage_sq_err(struct gh_usage *u, struct gh_error *err, const char *what);
/* Runs SQL text (no results). */
int usage_exec(struct gh_usage *u, const char *sql, struct gh_error *err);
/* The dialect of a resource under the applied policy (SQLite when unknown). Reloads the policy
 * when its version moved. Call with mu held. */
enum gh_sql_dialect usage_dialect(struct gh_usage *u, const char *resource);
void usage_policy_refresh(struct gh_usage *u);
/* Forgets the ids cached in memory. */
void usage_forget(struct gh_usage *u);
/* Empties every table of the index (a rebuild). */
int usage_reset(struct gh_usage *u, struct gh_error *err);
/* The members of an audit record the index reads (NULL when absent or null). Strings point
 * into the line, decoded in place and NUL-terminated. */
struct usage_rec {
	char *time, *event, *user, *app, *environment, *resource, *statement, *decision, *rule, *status;
	char *approval, *requester; /* from detail */
	int64_t rows;
	bool has_rows;
};
/* Parses one record line (a JSON object, without its newline) in place. False when it is not
 * a JSON object or is malformed where it was read. Never reads past len. */
bool usage_record_parse(char *line, size_t len, struct usage_rec *r);

/* ---- blob.c: the packed sums of one bucket ---- */

enum usage_kind { USAGE_COUNTS = 1, USAGE_DENIALS = 2, USAGE_STMTS = 3 };
/* Values of a counts entry: queries, rows, affected, errors, denied, requested, approved,
 * rejected, tta_ms, tta_n (in that order). Denials and statements have one: n. */
#define USAGE_NVALS 10
/* A value (and an id) in a blob is at most this (2^53); sums in a merge stop there rather than
 * overflow. */
#define USAGE_MAX_VALUE (1LL << 53)

struct usage_entry {
	int64_t dim;
	int64_t key;           /* denials: rule id; statements: fingerprint id; counts: 0 */
	int64_t v[USAGE_NVALS];
};

struct usage_blob_iter {
	const uint8_t *p;
	size_t len, pos, n;
	enum usage_kind kind;
	int64_t dim, key;
};

/* Orders entries by (dim, key). */
int usage_entry_cmp(const void *a, const void *b);
/* Appends e[0..n-1] (sorted by usage_entry_cmp, keys unique, values >= 0) as a blob of kind. */
int usage_blob_encode(const struct usage_entry *e, size_t n, enum usage_kind kind, struct gh_buf *out);
/* Starts reading a blob (len 0: an empty one). GH_EINVAL when it is not of kind. */
int usage_blob_start(struct usage_blob_iter *it, const void *blob, size_t len, enum usage_kind kind);
/* The next entry: 1, 0 at the end, GH_EINVAL when malformed (never reads past len). */
int usage_blob_next(struct usage_blob_iter *it, struct usage_entry *e);
/* Writes the blob old (may be empty) with add[0..nadd-1] (sorted) summed into it. */
int usage_blob_merge(const void *old, size_t oldlen, const struct usage_entry *add, size_t nadd, enum usage_kind kind,
		     struct gh_buf *out);

/* Parses the record time "YYYY-MM-DDTHH:MM:SS[.fff]Z" into Unix ms; false when malformed. */
bool usage_parse_rfc3339(const char *s, size_t n, int64_t *ms);

/* Catches up at most passes (-1: all) transactions of at most limit records each; *more is
 * set when records remain. */
int usage_catch_up_some(struct gh_usage *u, int64_t limit, int passes, bool *more, struct gh_usage_stats *stats,
			struct gh_error *err);

#endif
