/* audit: the append-only, hash-chained audit trail (DIR/audit/audit.log, JSON lines).
 * Each record: {"seq":N, ...fields..., "prev":"<hash of record N-1>", "hash":"<sha256>"} where
 * hash is SHA-256 over the record's bytes without its ,"hash":"…" member. The store keeps the
 * head (last seq and hash) so that truncation is found too. Several processes may append
 * (the server and operator verbs): appends are serialised with flock. */
#ifndef GH_AUDIT_H
#define GH_AUDIT_H

#include "core/core.h"
#include "store/store.h"

struct gh_audit;
struct gh_policy_audit;

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
/* Calls fn(arg, seq) on the writer thread after each batch is durable, seq being the last one
 * written (the sinks' wake-up). fn must be quick and must not call back into the audit. Set it
 * before gh_audit_start; NULL removes it. */
void gh_audit_on_durable(struct gh_audit *a, void (*fn)(void *arg, int64_t seq), void *arg);

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
	int64_t checkpoints;        /* signed checkpoints found to match the chain */
	int64_t last_checkpoint;    /* the seq the last of them covers (0: none) */
	int64_t bad_checkpoint_line; /* line of audit/checkpoints at fault (0: the fault is in the log) */
};
/* Checks the whole chain and the store's head and, when the store holds a checkpoint key, the
 * signed checkpoints in DIR/audit/checkpoints. Returns 0 when it could check (see rep->ok). */
int gh_audit_verify(const char *datadir, struct gh_audit_report *rep, struct gh_error *err);
/* Checks a copy of the log without the data directory: the chain of log_path, and every
 * checkpoint of ckpt_path signed by pk and matching the chain. Fails (rep->ok false) on a bad
 * signature, a checkpoint that does not match the chain, a log that ends before the last
 * checkpoint, or no checkpoint at all. */
int gh_audit_verify_public(const char *log_path, const char *ckpt_path, const uint8_t pk[32],
			   struct gh_audit_report *rep, struct gh_error *err);

/* ---- signed checkpoints (checkpoint.c) ----
 * DIR/audit/checkpoints holds one JSON line per checkpoint:
 *   {"seq":N,"hash":"<hex of record N's hash>","time":"<RFC 3339>","key":"<key id>","sig":"<b64url>"}
 * sig is Ed25519 over the text "gatehouse-audit-checkpoint:v1:N:HASH:TIME". The key pair is
 * made once per data directory and its secret half kept sealed with the master key in the
 * store; the public half is exported as PEM (SubjectPublicKeyInfo, as openssl writes it). */
struct gh_audit_checkpoint {
	int64_t seq;
	char hash[65];
	char time[40];
	char kid[17];
	uint8_t sig[64];
};
struct gh_audit_key {
	uint8_t pk[32];
	uint8_t sk[64]; /* locked in memory; wiped by gh_audit_key_wipe */
	char kid[17];
};
/* Loads (and with create, makes on first need) the checkpoint key, opened with master. */
int gh_audit_key_load(struct gh_store *st, const uint8_t master[32], bool create, struct gh_audit_key *out,
		      struct gh_error *err);
void gh_audit_key_wipe(struct gh_audit_key *k);
/* The public key only (no master key needed); GH_ENOTFOUND when none was made. */
int gh_audit_key_public(struct gh_store *st, uint8_t pk[32]);
/* Key id: hex of the first 8 bytes of SHA-256(pk). */
void gh_audit_key_id(const uint8_t pk[32], char kid[17]);
/* PEM "-----BEGIN PUBLIC KEY-----" of pk; and its strict reader (GH_EINVAL on anything else). */
int gh_audit_pubkey_pem(const uint8_t pk[32], struct gh_buf *out);
int gh_audit_pubkey_parse(const uint8_t *buf, size_t len, uint8_t pk[32]);

/* Makes the signed checkpoint of record seq with hash, at time_ms. */
void gh_audit_checkpoint_make(const struct gh_audit_key *k, int64_t seq, const char *hash, int64_t time_ms,
			      struct gh_audit_checkpoint *out);
/* Appends the checkpoint's line (with '\n') to out. */
int gh_audit_checkpoint_format(const struct gh_audit_checkpoint *c, struct gh_buf *out);
/* Parses the first line of buf[0..len): *used is its length with the '\n'. GH_EAGAIN when no
 * newline was found yet (and the line could still be valid), GH_EINVAL when it is not exactly
 * a checkpoint line. Never reads past len; checks no signature. */
int gh_audit_checkpoint_parse(const uint8_t *buf, size_t len, size_t *used, struct gh_audit_checkpoint *out);
/* True when c names pk's key id and its signature verifies with pk. */
bool gh_audit_checkpoint_verify(const struct gh_audit_checkpoint *c, const uint8_t pk[32]);
/* Appends c to the checkpoints file at path (created 0600) under an exclusive lock, durably;
 * a checkpoint not beyond the file's last one is skipped (another writer got there first). */
int gh_audit_checkpoint_append(const char *path, const struct gh_audit_checkpoint *c, struct gh_error *err);
/* The file's last checkpoint; GH_ENOTFOUND when there is none. */
int gh_audit_checkpoint_last(const char *path, struct gh_audit_checkpoint *out, struct gh_error *err);
/* Writes to fd a checkpoints file that ends at exactly end->seq (for a backup cut there): the
 * lines of path (read under a shared lock; a missing file is an empty one) with seq below
 * end->seq, then path's own checkpoint of end->seq when it holds one, else end. Lines after
 * that (a later checkpoint made meanwhile) are left out. Signatures are not checked here (the
 * copy is verified against its log). GH_EINVAL with the line when path holds a line that is
 * not a checkpoint or checkpoints out of order, GH_EIO on a read or write error. */
int gh_audit_checkpoint_copy(const char *path, const struct gh_audit_checkpoint *end, int fd,
			     struct gh_error *err);

/* ---- sinks and the checkpointer (sink.c) ----
 * In the server, one thread per sink (and one for checkpoints) reads durable records from the
 * log after the position kept in the store under its name, delivers them, and advances the
 * position only once the sink acknowledged them: at least once, in seq order, never blocking
 * the writers. */
struct gh_audit_sinks;
/* Reads a vault secret by name into out (cap bytes, NUL-terminated); 0 or a GH_E* code. */
typedef int (*gh_audit_secret_fn)(void *arg, const char *name, char *out, size_t cap);
/* Prepares the sinks of cfg and the checkpointer (checkpoint key made on first need with
 * master). Opens nothing remote and starts no thread yet. */
int gh_audit_sinks_open(const char *datadir, const struct gh_policy_audit *cfg, const uint8_t master[32],
			gh_audit_secret_fn secret, void *secret_arg, struct gh_audit_sinks **out, struct gh_error *err);
/* Starts the threads. */
int gh_audit_sinks_start(struct gh_audit_sinks *s, struct gh_error *err);
/* At apply time: GH_ENOTFOUND when a sink's API key names a secret the vault does not hold, err
 * saying "FILENAME:LINE:COLUMN: ..." (line and column also in err) with the secret's and the
 * sink's names; GH_EIO when the store cannot say. 0 when every named secret is there. */
int gh_audit_sinks_check(const struct gh_policy_audit *cfg, struct gh_store *st, const char *filename,
			 struct gh_error *err);
/* Tells the threads that records up to seq are durable (a gh_audit_on_durable callback). */
void gh_audit_sinks_wake(void *sinks, int64_t seq);
/* Stops: the checkpointer signs the last durable record, each sink delivers what it can within
 * a few seconds; positions are kept for the next start. Call after gh_audit_close. */
void gh_audit_sinks_close(struct gh_audit_sinks *s);

/* Counters for metrics. name and kind point into s (valid until close). */
struct gh_audit_sink_stats {
	const char *name, *kind;
	uint64_t delivered;   /* records acknowledged by the sink since start */
	uint64_t failures;    /* failed delivery attempts since start */
	int64_t position;     /* last acknowledged seq */
	int64_t lag;          /* durable records not yet acknowledged */
	bool failing;         /* the last attempt failed */
};
/* Fills up to max entries, one per configured sink; returns how many. */
size_t gh_audit_sinks_stats(struct gh_audit_sinks *s, struct gh_audit_sink_stats *out, size_t max);
/* Checkpoints written since start, the last checkpointed seq, and failures to write one. */
void gh_audit_sinks_checkpoint_stats(struct gh_audit_sinks *s, uint64_t *written, int64_t *last_seq,
				     uint64_t *failures);
/* Registers the counters above in a metrics registry (metrics/metrics.h), read at scrape time:
 * gatehouse_audit_sink_{delivered_total,failures_total,lag_records,failing}{sink} and
 * gatehouse_audit_checkpoints_total, gatehouse_audit_checkpoint_last_seq,
 * gatehouse_audit_checkpoint_failures_total. s must outlive every scrape. */
struct gh_metrics;
int gh_audit_sinks_metrics(struct gh_audit_sinks *s, struct gh_metrics *m);

/* Reads records with seq > since, at most limit, passing each line to fn (which returns
 * non-zero to stop). Used by GET /v1/audit; filtering is the caller's. */
int gh_audit_read(const char *datadir, int64_t since, int64_t limit,
		  int (*fn)(const char *line, size_t len, void *arg), void *arg, struct gh_error *err);

#endif
