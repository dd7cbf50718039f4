/* store: the control-plane store (SQLite, WAL): policy versions, signing keys, tokens,
 * approvals, the audit head. One struct gh_store per thread; SQLite serialises writers. */
#ifndef GH_STORE_H
#define GH_STORE_H

#include "core/core.h"

struct gh_store;

/* Creates a new store at path (must not exist) and runs all migrations. */
int gh_store_create(const char *path, struct gh_error *err);
/* Opens an existing store, applying pending migrations. durable=false lowers fsyncs for
 * connections whose writes may lag safely (the audit head). */
int gh_store_open(const char *path, bool durable, struct gh_store **out, struct gh_error *err);
void gh_store_close(struct gh_store *st);

/* A number that changes whenever another connection commits to the store. Cheap. */
int64_t gh_store_data_version(struct gh_store *st);

/* Cheap marks of what the server caches: the newest policy version and the number of
 * revocations. A reader reloads only what changed. */
int gh_store_change_marks(struct gh_store *st, int64_t *policy_version, int64_t *revocations, int64_t *secrets);

int gh_store_begin(struct gh_store *st);
int gh_store_commit(struct gh_store *st);
void gh_store_rollback(struct gh_store *st);

/* Signing keys: the public key and the sealed secret key. */
int gh_store_signing_key_put(struct gh_store *st, const char *kid, const uint8_t pub[32],
			     const uint8_t *sealed, size_t sealedlen);
/* Loads the newest signing key. sealed is malloc'd; the caller frees it. */
int gh_store_signing_key_get(struct gh_store *st, char kid[64], uint8_t pub[32], uint8_t **sealed,
			     size_t *sealedlen);

/* Policy: saves a new version (version = previous + 1) and returns it. Call inside a
 * transaction to combine with other writes. */
int gh_store_policy_save(struct gh_store *st, const char *doc, size_t len, int64_t *version);
/* Loads the newest version; *doc is malloc'd (NULL and version 0 when none was applied). */
int gh_store_policy_load(struct gh_store *st, char **doc, int64_t *version);

/* Tokens issued: for revocation by id and for listing. */
int gh_store_token_add(struct gh_store *st, const char *jti, const char *user, const char *env,
		       const char *app, int64_t iat, int64_t exp);
/* The subject of token jti (into user, n bytes) and whether it is revoked; GH_ENOTFOUND when
 * no such token was issued. */
int gh_store_token_get(struct gh_store *st, const char *jti, char *user, size_t n, bool *revoked);
/* GH_ENOTFOUND when no such token, GH_EEXIST when already revoked. */
int gh_store_token_revoke(struct gh_store *st, const char *jti, int64_t now);

/* Secrets: stored sealed (see vault); there is deliberately no way to list values. put
 * inserts or replaces and returns the new version (1, 2, ...). get: GH_ENOTFOUND if absent. */
int gh_store_secret_put(struct gh_store *st, const char *name, const uint8_t *sealed, size_t len,
			int64_t *version);
int gh_store_secret_get(struct gh_store *st, const char *name, uint8_t **sealed, size_t *len, int64_t *version);
/* Calls fn with each secret's name and sealed bytes (for checking that a master key opens them
 * all); stops when fn returns non-zero and returns that value. */
int gh_store_secret_each(struct gh_store *st, int (*fn)(const char *name, const uint8_t *sealed, size_t len, void *arg),
			 void *arg);
/* Calls fn for each revoked token that has not yet expired. */
int gh_store_revoked_each(struct gh_store *st, int64_t now, void (*fn)(const char *jti, void *arg), void *arg);

/* Counts tokens neither expired nor revoked at now, and those among them whose lifetime
 * (expiry - issue) exceeds max_lifetime seconds. */
int gh_store_tokens_active(struct gh_store *st, int64_t now, int64_t max_lifetime, int64_t *active,
			   int64_t *long_lived);
/* The meta table's free-form settings (key and value bounded by the caller). get:
 * GH_ENOTFOUND when absent; the value is cut to n-1 bytes. */
int gh_store_meta_set(struct gh_store *st, const char *key, const char *value);
int gh_store_meta_get(struct gh_store *st, const char *key, char *out, size_t n);

/* Audit head: the last seq and hash written, so truncation is detectable. */
int gh_store_audit_head_get(struct gh_store *st, int64_t *seq, char hash[65]);
int gh_store_audit_head_set(struct gh_store *st, int64_t seq, const char *hash);

/* The last backup made of this store (for a readiness check: "backups configured and recent"):
 * when (Unix ms), where (an absolute path) and the audit seq it holds. Kept in the meta table.
 * last: GH_ENOTFOUND when no backup was ever made; location is cut to locsize. */
int gh_store_backup_note(struct gh_store *st, int64_t time_ms, const char *location, int64_t seq);
int gh_store_backup_last(struct gh_store *st, int64_t *time_ms, char *location, size_t locsize, int64_t *seq);

/* PRAGMA quick_check: 0 when the file is sound, GH_EINVAL with SQLite's first complaint. */
int gh_store_check(struct gh_store *st, struct gh_error *err);

/* Online backup. A snapshot is a read-only connection to the store; pin starts a read
 * transaction, so what write copies is the store as it was at that moment, whatever other
 * connections commit meanwhile, and head_seq/head_hash are the audit head in that state.
 * write creates dest (must not exist, mode 0600) with SQLite's online backup API. */
struct gh_store_snapshot;
int gh_store_snapshot_open(const char *path, struct gh_store_snapshot **out, struct gh_error *err);
int gh_store_snapshot_pin(struct gh_store_snapshot *s, int64_t *head_seq, char head_hash[65], struct gh_error *err);
int gh_store_snapshot_write(struct gh_store_snapshot *s, const char *dest, struct gh_error *err);
void gh_store_snapshot_close(struct gh_store_snapshot *s);

/* The audit checkpoint signing key: one per store, its public key in the clear and its secret
 * key sealed (see audit). put keeps an existing key (the first writer wins); get returns
 * GH_ENOTFOUND when none was made. sealed may be NULL to read the public key only; otherwise
 * it is malloc'd and the caller frees it. */
int gh_store_checkpoint_key_put(struct gh_store *st, const uint8_t pub[32], const uint8_t *sealed, size_t sealedlen);
int gh_store_checkpoint_key_get(struct gh_store *st, uint8_t pub[32], uint8_t **sealed, size_t *sealedlen);

/* Audit delivery positions by name (a sink, or "#checkpoints"): the last seq handled, the byte
 * offset just after it in the log and its hash. get: GH_ENOTFOUND when never set. */
int gh_store_audit_position_get(struct gh_store *st, const char *name, int64_t *seq, int64_t *offset, char hash[65]);
int gh_store_audit_position_set(struct gh_store *st, const char *name, int64_t seq, int64_t offset, const char *hash);

/* Approvals. */
enum gh_approval_status {
	GH_APPROVAL_PENDING, GH_APPROVAL_EXECUTING, GH_APPROVAL_EXECUTED, GH_APPROVAL_FAILED,
	GH_APPROVAL_REJECTED, GH_APPROVAL_EXPIRED, GH_APPROVAL_INTERRUPTED,
};
const char *gh_approval_status_name(enum gh_approval_status s);

struct gh_approval {
	char id[64];
	enum gh_approval_status status;
	char *requester, *app, *resource, *environment, *statement, *params, *class_name, *request_id;
	char *decided_by, *result; /* result: JSON text of the outcome, NULL until decided */
	int64_t created_at, expires_at, decided_at;
};
void gh_approval_clear(struct gh_approval *a);

int gh_store_approval_insert(struct gh_store *st, const struct gh_approval *a);
/* GH_ENOTFOUND when absent. Expired pending approvals are reported as expired. */
int gh_store_approval_get(struct gh_store *st, const char *id, int64_t now, struct gh_approval *out);
/* Atomically moves a pending, unexpired approval to `to` (EXECUTING or REJECTED) recording who
 * decided. GH_ECONFLICT when it was not pending (already decided, or expired). */
int gh_store_approval_claim(struct gh_store *st, const char *id, enum gh_approval_status to,
			    const char *decider, int64_t now);
/* Records the final status and result of an executing approval. */
int gh_store_approval_finish(struct gh_store *st, const char *id, enum gh_approval_status status,
			     const char *result);
/* Calls fn for approvals, newest first, at most limit. */
int gh_store_approval_each(struct gh_store *st, int64_t now, int limit,
			   int (*fn)(const struct gh_approval *a, void *arg), void *arg);
/* Approvals pending now (not decided, not expired); an indexed range, cheap enough per scrape. */
int gh_store_approvals_pending(struct gh_store *st, int64_t now, int64_t *count);
/* After a crash: approvals left EXECUTING are marked INTERRUPTED (never run again). */
int gh_store_approvals_recover(struct gh_store *st, int *count);

#endif
