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
/* Bytes read from the log at a time (a longer line grows the buffer up to GH_AUDIT_MAX_LINE). */
#define USAGE_READ_BLOCK (1024 * 1024)
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

/* Parses the record time "YYYY-MM-DDTHH:MM:SS[.fff]Z" into Unix ms; false when malformed. */
bool usage_parse_rfc3339(const char *s, size_t n, int64_t *ms);

#endif
