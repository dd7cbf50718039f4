/* backup: online, consistent copies of a data directory, and their verified restore.
 *
 * A backup is a directory (mode 0700, files 0600) holding
 *   gatehouse.db      the store, copied with SQLite's online backup API from a pinned snapshot
 *   audit/audit.log   the audit trail cut at the record that is the store copy's audit head
 *   audit/checkpoints the data directory's signed audit checkpoints up to that record, the
 *                     last one at exactly it (made by the backup when none was there)
 *   master.key        the master key (left out on request: then a restore must be given it)
 *   manifest.json     what the backup holds: format version, time, source, the audit head
 *                     (seq, hash) and each file's size and SHA-256
 * Both verbs build their result in a staging directory next to the destination and rename it
 * into place only when everything is written, synced and verified (commit), so a failure
 * leaves nothing behind. */
#ifndef GH_BACKUP_H
#define GH_BACKUP_H

#include <limits.h>

#include "core/core.h"

#define GH_BACKUP_FORMAT "gatehouse-backup"
#define GH_BACKUP_VERSION 2     /* written; version 1 (no audit/checkpoints) is still read */
#define GH_BACKUP_VERSION_MIN 1

/* The files of a backup, by their path relative to it (gh_backup_file_name). */
enum gh_backup_file { GH_BACKUP_DB, GH_BACKUP_LOG, GH_BACKUP_CKPTS, GH_BACKUP_KEY, GH_BACKUP_NFILES };
const char *gh_backup_file_name(enum gh_backup_file f);

/* manifest.json. Version 2 added audit/checkpoints and "audit": {"checkpoint": N}, the seq of
 * the last signed checkpoint, always the audit seq (a reader refuses members it does not know,
 * hence the new version). */
struct gh_backup_manifest {
	int version;
	char created[40];       /* RFC 3339 UTC */
	char source[PATH_MAX];  /* absolute path of the data directory that was backed up */
	int64_t audit_seq;      /* the last record in audit/audit.log, and the store's audit head */
	char audit_hash[65];
	int64_t audit_checkpoint; /* version 2: the seq of the last checkpoint (== audit_seq); else 0 */
	struct {
		bool present;
		int64_t size;
		char sha256[65];
	} files[GH_BACKUP_NFILES];
};

/* Writes m as manifest.json text into out. */
int gh_backup_manifest_format(const struct gh_backup_manifest *m, struct gh_buf *out);
/* Parses manifest.json (hostile input): at most GH_BACKUP_MANIFEST_MAX bytes of one JSON
 * object with exactly the members above (no duplicates, no others), lowercase hex hashes,
 * sizes within GH_BACKUP_MAX_FILE_BYTES, gatehouse.db and audit/audit.log present, master.key
 * 32 bytes if present; version 1 without audit/checkpoints and audit.checkpoint, version 2
 * with both, the checkpoint at the audit seq (>= 1). GH_EINVAL with the reason otherwise.
 * Never reads past len. */
int gh_backup_manifest_parse(const uint8_t *buf, size_t len, struct gh_backup_manifest *out, struct gh_error *err);

/* A backup or restore staged and verified, waiting for commit. */
struct gh_backup_job;

/* Stages a backup of datadir for out, while a server may be running on it: out must not
 * exist or be an empty directory (GH_EEXIST otherwise). Under the audit log's lock a read
 * snapshot of the store is pinned and the log's last complete record noted (seq L); the store
 * copy is written from the snapshot, the log copied up to record L, the copy's chain verified
 * against the snapshot's audit head (which is at or before L), and the copy's head set to L:
 * the backup is the state a crash at that instant would have left. A checkpoint of L is signed
 * with the store's checkpoint key (opened with the master key from DIR/master.key or
 * GATEHOUSE_MASTER_KEY, which is therefore always needed; the key is made first if the store
 * has none, before the snapshot) and appended to DIR/audit/checkpoints; the backup's
 * checkpoints are the live ones up to L and end with one at L, and are verified with the
 * copy. with_key includes the master key after checking that it opens the store's sealed
 * material. GH_EAUDIT when the live trail or its checkpoints do not verify. */
int gh_backup_create(const char *datadir, const char *out, bool with_key, struct gh_backup_job **job,
		     struct gh_error *err);

/* Stages a restore of the backup directory into newdir (absent or an empty directory:
 * GH_EEXIST otherwise). Checks, in order: the manifest parses; each file's size and SHA-256
 * (computed on the bytes as copied); the store's integrity; its audit head is the manifest's;
 * the master key opens the token signing key, the checkpoint key and every secret; the audit
 * chain verifies against the head and ends there; the checkpoints (version 2) are each signed
 * with the store's checkpoint key, match the chain, and the last is at the head (a version 1
 * backup has none and is restored without). The key is key_file (written to newdir), else the
 * backup's; GATEHOUSE_MASTER_KEY, when set, must open the store too (a server would use it)
 * and is the key when there is no file (then none is written). GH_ENOTFOUND when backup is
 * not a directory or has no manifest.json, or newdir's parent does not exist; GH_EINVAL for an
 * unusable key_file; GH_EDENIED with the reason when a check fails (damaged or tampered). */
int gh_backup_restore(const char *backup, const char *newdir, const char *key_file, struct gh_backup_job **job,
		      struct gh_error *err);

const struct gh_backup_manifest *gh_backup_job_manifest(const struct gh_backup_job *j);
/* The staging directory (a complete data directory or backup before commit). */
const char *gh_backup_job_staging(const struct gh_backup_job *j);
/* The absolute path the result is renamed to. */
const char *gh_backup_job_dest(const struct gh_backup_job *j);
/* Total bytes of the files staged. */
int64_t gh_backup_job_bytes(const struct gh_backup_job *j);

/* Renames the staging directory to the destination (atomically; an empty directory there is
 * replaced) and syncs its parent. GH_EEXIST when the destination became non-empty. */
int gh_backup_commit(struct gh_backup_job *j, struct gh_error *err);
/* Removes what was committed (for a caller whose next step failed). */
void gh_backup_uncommit(struct gh_backup_job *j);
/* Frees the job, removing the staging directory unless it was committed. */
void gh_backup_job_free(struct gh_backup_job *j);

#endif
