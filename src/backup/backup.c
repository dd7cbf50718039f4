/* backup: staging, copying, verifying and committing backups and restores. */
#include "backup/backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "identity/identity.h"
#include "store/store.h"
#include "vault/vault.h"

struct gh_backup_job {
	char staging[PATH_MAX]; /* filled first, renamed to dest by commit */
	char dest[PATH_MAX];    /* absolute */
	char parent[PATH_MAX];  /* dest's parent, synced after the rename */
	bool committed;
	struct gh_backup_manifest m;
};

/* Files a staging directory (or a committed result) may hold; removed in this order. */
static const char *const our_files[] = {
	"manifest.json", "master.key", "gatehouse.db", "gatehouse.db-wal", "gatehouse.db-shm",
	"gatehouse.db-journal", "audit/audit.log", "audit/checkpoints",
};

/* Removes what we put in dir, then dir itself. Anything else found there stays (and so does
 * dir): we never delete what we did not make. */
static void remove_ours(const char *dir)
{
	char p[PATH_MAX];
	for (size_t i = 0; i < sizeof our_files / sizeof *our_files; i++)
		if (!gh_path_join(p, sizeof p, dir, our_files[i]))
			unlink(p);
	if (!gh_path_join(p, sizeof p, dir, "audit"))
		rmdir(p);
	rmdir(dir);
}

/* Gives err a new code and a prefix ("" for none) before its message. */
static int recode(struct gh_error *err, int code, const char *prefix)
{
	char msg[sizeof err->message];
	memcpy(msg, err->message, sizeof msg);
	msg[sizeof msg - 1] = '\0';
	return gh_error_set(err, code, "%s%s", prefix, msg);
}

static int sync_path(const char *path, struct gh_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return gh_error_set(err, GH_EIO, "%s: %s", path, strerror(errno));
	int rc = fsync(fd) < 0 ? gh_error_set(err, GH_EIO, "%s: fsync: %s", path, strerror(errno)) : 0;
	close(fd);
	return rc;
}

/* 0 when dir does not exist or is an empty directory; GH_EEXIST otherwise. */
static int check_empty(const char *dir, struct gh_error *err)
{
	struct stat st;
	if (lstat(dir, &st) < 0)
		return errno == ENOENT ? 0 : gh_error_set(err, GH_EIO, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return gh_error_set(err, GH_EEXIST, "%s exists and is not a directory", dir);
	/* rmdir would tell, but must not succeed: count entries instead */
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return gh_error_set(err, GH_EIO, "%s: %s", dir, strerror(errno));
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return gh_error_set(err, GH_EIO, "%s: %s", dir, strerror(errno));
	}
	int rc = 0;
	struct dirent *e;
	while (!rc && (e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
			rc = gh_error_set(err, GH_EEXIST, "%s exists and is not empty", dir);
	closedir(d);
	return rc;
}

/* Sets up j's destination and staging directory (".NAME.partial-XXXXXX" beside dest). */
static int stage(struct gh_backup_job *j, const char *dest, struct gh_error *err)
{
	char a[PATH_MAX], b[PATH_MAX], real[PATH_MAX];
	if (snprintf(a, sizeof a, "%s", dest) >= (int)sizeof a || snprintf(b, sizeof b, "%s", dest) >= (int)sizeof b)
		return gh_error_set(err, GH_ETOOBIG, "path too long");
	const char *base = basename(a), *dir = dirname(b);
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(base, "/") == 0)
		return gh_error_set(err, GH_EINVAL, "%s: expected the path of a directory to create", dest);
	if (!realpath(dir, real))
		return gh_error_set(err, errno == ENOENT || errno == ENOTDIR ? GH_ENOTFOUND : GH_EIO, "%s: %s", dir,
				    strerror(errno));
	int rc = check_empty(dest, err);
	if (rc)
		return rc;
	if (snprintf(j->parent, sizeof j->parent, "%s", real) >= (int)sizeof j->parent ||
	    snprintf(j->dest, sizeof j->dest, "%s/%s", strcmp(real, "/") ? real : "", base) >= (int)sizeof j->dest ||
	    snprintf(j->staging, sizeof j->staging, "%s/.%s.partial-XXXXXX", strcmp(real, "/") ? real : "", base) >=
		    (int)sizeof j->staging)
		return gh_error_set(err, GH_ETOOBIG, "path too long");
	if (!mkdtemp(j->staging)) {
		rc = gh_error_set(err, GH_EIO, "cannot create a staging directory in %s: %s", real, strerror(errno));
		j->staging[0] = '\0';
		return rc;
	}
	char audit[PATH_MAX];
	if (gh_path_join(audit, sizeof audit, j->staging, "audit"))
		return gh_error_set(err, GH_ETOOBIG, "path too long");
	if (mkdir(audit, 0700) < 0)
		return gh_error_set(err, GH_EIO, "%s: %s", audit, strerror(errno));
	return 0;
}

static int staged(const struct gh_backup_job *j, enum gh_backup_file f, char *out, size_t n, struct gh_error *err)
{
	return gh_path_join(out, n, j->staging, gh_backup_file_name(f)) ? gh_error_set(err, GH_ETOOBIG, "path too long")
									  : 0;
}

/* Copies the regular file src (not a symlink) to the new file dst (mode 0600), reading at most
 * max + 1 bytes, and reports the size and SHA-256 of what was written. */
static int copy_file(const char *src, const char *dst, int64_t max, int64_t *size, char hex[65], struct gh_error *err)
{
	int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return gh_error_set(err, errno == ENOENT ? GH_ENOTFOUND : GH_EIO, "%s: %s", src, strerror(errno));
	struct stat st;
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(in);
		return gh_error_set(err, GH_EDENIED, "%s: not a regular file", src);
	}
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		close(in);
		return gh_error_set(err, GH_EIO, "%s: %s", dst, strerror(errno));
	}
	enum { CHUNK = 1 << 16 };
	char *buf = malloc(CHUNK);
	crypto_hash_sha256_state hs;
	crypto_hash_sha256_init(&hs);
	int64_t total = 0;
	int rc = buf ? 0 : gh_error_set(err, GH_ENOMEM, "out of memory");
	while (!rc && total <= max) {
		size_t want = max - total + 1 < CHUNK ? (size_t)(max - total + 1) : CHUNK;
		ssize_t r = read(in, buf, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = gh_error_set(err, GH_EIO, "%s: %s", src, strerror(errno));
		if (r <= 0)
			break;
		crypto_hash_sha256_update(&hs, (const uint8_t *)buf, (size_t)r);
		for (ssize_t w = 0; !rc && w < r;) {
			ssize_t k = write(out, buf + w, (size_t)(r - w));
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				rc = gh_error_set(err, GH_EIO, "%s: %s", dst, k < 0 ? strerror(errno) : "short write");
			else
				w += k;
		}
		total += r;
	}
	if (!rc && fsync(out) < 0)
		rc = gh_error_set(err, GH_EIO, "%s: fsync: %s", dst, strerror(errno));
	if (close(out) < 0 && !rc)
		rc = gh_error_set(err, GH_EIO, "%s: %s", dst, strerror(errno));
	close(in);
	free(buf);
	uint8_t digest[32];
	crypto_hash_sha256_final(&hs, digest);
	gh_hex_encode(digest, 32, hex);
	*size = total;
	return rc;
}

/* Size and SHA-256 of a file we wrote. */
static int hash_file(const char *path, int64_t *size, char hex[65], struct gh_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return gh_error_set(err, GH_EIO, "%s: %s", path, strerror(errno));
	enum { CHUNK = 1 << 16 };
	char *buf = malloc(CHUNK);
	crypto_hash_sha256_state hs;
	crypto_hash_sha256_init(&hs);
	int64_t total = 0;
	int rc = buf ? 0 : gh_error_set(err, GH_ENOMEM, "out of memory");
	for (ssize_t r; !rc && (r = read(fd, buf, CHUNK)) != 0;) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = gh_error_set(err, GH_EIO, "%s: %s", path, strerror(errno));
		else {
			crypto_hash_sha256_update(&hs, (const uint8_t *)buf, (size_t)r);
			total += r;
		}
	}
	close(fd);
	free(buf);
	uint8_t digest[32];
	crypto_hash_sha256_final(&hs, digest);
	gh_hex_encode(digest, 32, hex);
	*size = total;
	return rc;
}

/* Checks that key opens the store's token signing key, its audit checkpoint key (when it has
 * one) and every secret. */
static int check_key(struct gh_store *st, const uint8_t key[GH_VAULT_KEY_BYTES], struct gh_error *err)
{
	struct gh_signer signer;
	int rc = gh_identity_signer_load(st, key, &signer, err);
	gh_identity_signer_wipe(&signer);
	if (rc)
		return gh_error_set(err, GH_EDENIED, "the master key does not open the store's token signing key");
	uint8_t pk[32];
	if (gh_audit_key_public(st, pk) == 0) {
		struct gh_audit_key ck;
		rc = gh_audit_key_load(st, key, false, &ck, err);
		gh_audit_key_wipe(&ck);
		if (rc)
			return gh_error_set(err, GH_EDENIED, "the master key does not open the store's audit checkpoint "
					    "key");
	}
	int64_t n = 0;
	rc = gh_vault_secrets_check(st, key, &n, err);
	return rc ? recode(err, GH_EDENIED, "") : 0;
}

/* Verifies the staged trail against the staged store's head: it must be intact and end at seq.
 * The staged checkpoints, if any, must be signed with the staged store's checkpoint key and
 * match the chain; with ckpt they must also end at exactly seq. */
static int verify_staged(const struct gh_backup_job *j, int64_t seq, bool ckpt, int fail_code, const char *what,
			 struct gh_error *err)
{
	struct gh_audit_report rep;
	int rc = gh_audit_verify(j->staging, &rep, err);
	if (rc)
		return rc;
	if (!rep.ok && rep.bad_checkpoint_line > 0)
		return gh_error_set(err, fail_code, "%s: audit/checkpoints fails verification at line %lld: %s", what,
				    (long long)rep.bad_checkpoint_line, rep.reason);
	if (!rep.ok && rep.bad_seq >= 0)
		return gh_error_set(err, fail_code, "%s fails verification at line %lld (seq %lld): %s", what,
				    (long long)rep.bad_line, (long long)rep.bad_seq, rep.reason);
	if (!rep.ok)
		return gh_error_set(err, fail_code, "%s fails verification at line %lld: %s", what,
				    (long long)rep.bad_line, rep.reason);
	if (rep.records != seq)
		return gh_error_set(err, fail_code, "%s holds %lld records, not the %lld its head names", what,
				    (long long)rep.records, (long long)seq);
	if (ckpt && rep.last_checkpoint != seq)
		return gh_error_set(err, fail_code, "%s: its signed checkpoints end at seq %lld, not at its head (seq "
				    "%lld)", what, (long long)rep.last_checkpoint, (long long)seq);
	return 0;
}

/* Syncs the staged files and directories. */
static int sync_staged(const struct gh_backup_job *j, struct gh_error *err)
{
	char p[PATH_MAX];
	int rc = 0;
	for (int f = 0; !rc && f < GH_BACKUP_NFILES; f++) {
		if ((rc = staged(j, (enum gh_backup_file)f, p, sizeof p, err)))
			break;
		if (access(p, F_OK) == 0)
			rc = sync_path(p, err);
	}
	if (!rc && (rc = gh_path_join(p, sizeof p, j->staging, "audit")))
		rc = gh_error_set(err, rc, "path too long");
	rc = rc ? rc : sync_path(p, err);
	return rc ? rc : sync_path(j->staging, err);
}

/* SQLite removes a WAL file when its last connection closes; one left over would be data
 * outside the file we hash. */
static int no_sidecars(const struct gh_backup_job *j, struct gh_error *err)
{
	static const char *const side[] = {"gatehouse.db-wal", "gatehouse.db-journal"};
	char p[PATH_MAX];
	for (size_t i = 0; i < sizeof side / sizeof *side; i++) {
		if (gh_path_join(p, sizeof p, j->staging, side[i]))
			return gh_error_set(err, GH_ETOOBIG, "path too long");
		if (access(p, F_OK) == 0)
			return gh_error_set(err, GH_EIO, "%s was left behind by SQLite", p);
	}
	if (!gh_path_join(p, sizeof p, j->staging, "gatehouse.db-shm"))
		unlink(p);
	return 0;
}

/* ---- create ---- */

struct pin {
	struct gh_store_snapshot *snap;
	int64_t seq;
	char hash[65];
	struct gh_error *err;
};

/* Called under the audit log's lock: fixes the store snapshot. */
static int pin_snapshot(void *arg, const struct gh_audit_cut *cut)
{
	struct pin *p = arg;
	(void)cut;
	return gh_store_snapshot_pin(p->snap, &p->seq, p->hash, p->err);
}

/* Writes the backup's audit/checkpoints: the live checkpoints up to the cut, ending with one
 * at exactly the cut. The checkpoint of the cut is appended to the live file first, so that the
 * backup's file is a prefix of the live one; the live file skips it when a server checkpointed
 * a later record meanwhile, and then the backup's file alone carries it. */
static int write_checkpoints(const struct gh_backup_job *j, const char *datadir, const struct gh_audit_key *ck,
			     const struct gh_audit_cut *cut, struct gh_error *err)
{
	char live[PATH_MAX], p[PATH_MAX];
	struct gh_audit_checkpoint c;
	int rc;
	if (gh_path_join(live, sizeof live, datadir, "audit/checkpoints"))
		return gh_error_set(err, GH_ETOOBIG, "path too long");
	if ((rc = staged(j, GH_BACKUP_CKPTS, p, sizeof p, err)))
		return rc;
	gh_audit_checkpoint_make(ck, cut->seq, cut->hash, gh_now_ms(), &c);
	if ((rc = gh_audit_checkpoint_append(live, &c, err)))
		return recode(err, rc == GH_EINVAL ? GH_EAUDIT : rc, "");
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return gh_error_set(err, GH_EIO, "%s: %s", p, strerror(errno));
	rc = gh_audit_checkpoint_copy(live, &c, fd, err);
	if (rc == GH_EINVAL)
		rc = recode(err, GH_EAUDIT, "");
	if (!rc && fsync(fd) < 0)
		rc = gh_error_set(err, GH_EIO, "%s: fsync: %s", p, strerror(errno));
	close(fd);
	return rc;
}

static int create(struct gh_backup_job *j, const char *datadir, bool with_key, uint8_t key[GH_VAULT_KEY_BYTES],
		  struct gh_audit_key *ck, struct gh_error *err)
{
	char db[PATH_MAX], p[PATH_MAX];
	struct gh_store_snapshot *snap = NULL;
	struct gh_store *st = NULL;
	struct gh_audit_cut cut;
	int rc;
	if (gh_path_join(db, sizeof db, datadir, "gatehouse.db"))
		return gh_error_set(err, GH_ETOOBIG, "path too long");
	if (!realpath(datadir, j->m.source))
		return gh_error_set(err, GH_EIO, "%s: %s", datadir, strerror(errno));
	/* informational, and a manifest holds no control characters */
	for (char *c = j->m.source; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	/* The master key opens the checkpoint key, whether or not the backup keeps a copy of it. */
	if ((rc = gh_vault_master_load(datadir, key, err)))
		return recode(err, rc, "the master key is needed to sign the backup's audit checkpoint: ");
	/* The checkpoint key, made on first need as the server makes it, and before the snapshot
	 * is pinned: the store copy holds it, and the backup's checkpoints verify with it. */
	if ((rc = gh_store_open(db, true, &st, err)))
		return rc;
	rc = gh_audit_key_load(st, key, true, ck, err);
	gh_store_close(st);
	st = NULL;
	if (rc)
		return rc;
	/* Opened before the lock is taken: under it only the snapshot is fixed. */
	if ((rc = gh_store_snapshot_open(db, &snap, err)))
		return rc;
	struct pin pin = {.snap = snap, .err = err};
	rc = gh_audit_cut(datadir, pin_snapshot, &pin, &cut, err);
	if (!rc && pin.seq > cut.seq)
		rc = gh_error_set(err, GH_EAUDIT, "the audit log ends at seq %lld but the store's head is seq %lld: "
				  "the log was truncated (see gatehouse audit verify)", (long long)cut.seq,
				  (long long)pin.seq);
	if (!rc && cut.seq < 1) /* init writes a record: a trail without one is not a data directory's */
		rc = gh_error_set(err, GH_EAUDIT, "the audit log is empty: there is no record to sign a checkpoint of");
	if (!rc)
		rc = staged(j, GH_BACKUP_DB, p, sizeof p, err);
	if (!rc)
		rc = gh_store_snapshot_write(snap, p, err);
	gh_store_snapshot_close(snap);
	if (rc)
		return rc;

	if ((rc = staged(j, GH_BACKUP_LOG, p, sizeof p, err)))
		return rc;
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return gh_error_set(err, GH_EIO, "%s: %s", p, strerror(errno));
	rc = gh_audit_copy(datadir, &cut, fd, err);
	if (!rc && fsync(fd) < 0)
		rc = gh_error_set(err, GH_EIO, "%s: fsync: %s", p, strerror(errno));
	close(fd);
	if (rc)
		return rc;
	if ((rc = write_checkpoints(j, datadir, ck, &cut, err)))
		return rc;

	/* The copy holds records 1..L and the store copy's head H <= L: the chain must be intact
	 * and pass through H's hash, and the checkpoints must match it and end at L. Then the
	 * copy's head moves to L, which is durable and in it. */
	if ((rc = verify_staged(j, cut.seq, true, GH_EAUDIT, "the audit trail", err)))
		return rc;
	if ((rc = staged(j, GH_BACKUP_DB, p, sizeof p, err)) || (rc = gh_store_open(p, true, &st, err)))
		return rc;
	if (cut.seq > pin.seq && gh_store_audit_head_set(st, cut.seq, cut.hash))
		rc = gh_error_set(err, GH_EIO, "cannot set the audit head of the store copy");
	if (!rc && with_key)
		rc = check_key(st, key, err);
	gh_store_close(st);
	if (rc)
		return rc;
	if (with_key) {
		if ((rc = staged(j, GH_BACKUP_KEY, p, sizeof p, err)) || (rc = gh_vault_master_write(p, key, err)))
			return rc;
	}
	if ((rc = no_sidecars(j, err)))
		return rc;

	j->m.version = GH_BACKUP_VERSION;
	gh_time_rfc3339(gh_now_ms(), j->m.created, sizeof j->m.created);
	j->m.audit_seq = cut.seq;
	memcpy(j->m.audit_hash, cut.hash, 65);
	j->m.audit_checkpoint = cut.seq;
	for (int f = 0; f < GH_BACKUP_NFILES; f++) {
		if (f == GH_BACKUP_KEY && !with_key)
			continue;
		if ((rc = staged(j, (enum gh_backup_file)f, p, sizeof p, err)) ||
		    (rc = hash_file(p, &j->m.files[f].size, j->m.files[f].sha256, err)))
			return rc;
		j->m.files[f].present = true;
	}
	struct gh_buf doc;
	gh_buf_init(&doc, GH_BACKUP_MANIFEST_MAX);
	if (gh_backup_manifest_format(&j->m, &doc) || gh_path_join(p, sizeof p, j->staging, "manifest.json")) {
		gh_buf_free(&doc);
		return gh_error_set(err, GH_ETOOBIG, "manifest too large");
	}
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		rc = gh_error_set(err, GH_EIO, "%s: %s", p, strerror(errno));
	else {
		if (write(fd, doc.data, doc.len) != (ssize_t)doc.len || fsync(fd) < 0)
			rc = gh_error_set(err, GH_EIO, "%s: %s", p, strerror(errno));
		close(fd);
	}
	gh_buf_free(&doc);
	return rc ? rc : sync_staged(j, err);
}

int gh_backup_create(const char *datadir, const char *out, bool with_key, struct gh_backup_job **job,
		     struct gh_error *err)
{
	struct gh_backup_job *j = calloc(1, sizeof *j);
	if (!j)
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	uint8_t key[GH_VAULT_KEY_BYTES];
	struct gh_audit_key ck;
	memset(&ck, 0, sizeof ck);
	int rc = stage(j, out, err);
	if (!rc)
		rc = create(j, datadir, with_key, key, &ck, err);
	sodium_memzero(key, sizeof key);
	gh_audit_key_wipe(&ck);
	if (rc) {
		gh_backup_job_free(j);
		return rc;
	}
	*job = j;
	return 0;
}

/* ---- restore ---- */

static int read_manifest(const char *backup, struct gh_backup_manifest *m, struct gh_error *err)
{
	char p[PATH_MAX];
	if (gh_path_join(p, sizeof p, backup, "manifest.json"))
		return gh_error_set(err, GH_ETOOBIG, "path too long");
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? gh_error_set(err, GH_ENOTFOUND, "%s is not a gatehouse backup: it has no "
						      "manifest.json", backup)
				       : gh_error_set(err, GH_EDENIED, "%s: %s", p, strerror(errno));
	uint8_t *buf = malloc(GH_BACKUP_MANIFEST_MAX + 1);
	size_t len = 0;
	int rc = buf ? 0 : gh_error_set(err, GH_ENOMEM, "out of memory");
	struct stat st;
	if (!rc && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)))
		rc = gh_error_set(err, GH_EDENIED, "%s: not a regular file", p);
	while (!rc && len <= GH_BACKUP_MANIFEST_MAX) {
		ssize_t r = read(fd, buf + len, GH_BACKUP_MANIFEST_MAX + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = gh_error_set(err, GH_EIO, "%s: %s", p, strerror(errno));
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (!rc)
		rc = gh_backup_manifest_parse(buf, len, m, err);
	free(buf);
	return rc == GH_EINVAL ? GH_EDENIED : rc; /* a manifest that does not parse is damaged */
}

static int restore(struct gh_backup_job *j, const char *backup, const char *key_file,
		   uint8_t key[GH_VAULT_KEY_BYTES], struct gh_error *err)
{
	char src[PATH_MAX], dst[PATH_MAX];
	int rc = read_manifest(backup, &j->m, err);
	if (rc)
		return rc;
	for (int f = 0; f < GH_BACKUP_NFILES; f++) {
		const char *name = gh_backup_file_name((enum gh_backup_file)f);
		int64_t size = 0;
		char hex[65];
		if (!j->m.files[f].present)
			continue;
		if (gh_path_join(src, sizeof src, backup, name))
			return gh_error_set(err, GH_ETOOBIG, "path too long");
		if ((rc = staged(j, (enum gh_backup_file)f, dst, sizeof dst, err)))
			return rc;
		rc = copy_file(src, dst, j->m.files[f].size, &size, hex, err);
		if (rc == GH_ENOTFOUND)
			return gh_error_set(err, GH_EDENIED, "%s is listed in manifest.json but missing from the backup",
					    name);
		if (rc)
			return rc;
		/* the hash of the bytes as copied: what is checked is what is restored */
		if (size != j->m.files[f].size || strcmp(hex, j->m.files[f].sha256) != 0)
			return gh_error_set(err, GH_EDENIED, "%s does not match its %s in manifest.json: the backup is "
					    "damaged or was tampered with", name,
					    size != j->m.files[f].size ? "size" : "SHA-256");
	}

	/* The master key: given (and written), else the backup's. A server started with
	 * GATEHOUSE_MASTER_KEY uses that instead of the file, so when it is set it must open the
	 * store too; without a file it is the only key (and is not written to disk). */
	const char *env = getenv("GATEHOUSE_MASTER_KEY");
	bool have_file_key = key_file || j->m.files[GH_BACKUP_KEY].present, use_env = env && *env;
	if ((rc = staged(j, GH_BACKUP_KEY, dst, sizeof dst, err)))
		return rc;
	if (key_file) {
		if (gh_vault_master_read(key_file, key, err))
			return recode(err, GH_EINVAL, "--master-key: ");
		unlink(dst);
		if ((rc = gh_vault_master_write(dst, key, err)))
			return rc;
	} else if (have_file_key) {
		if (gh_vault_master_read(dst, key, err))
			return recode(err, GH_EDENIED, "master.key in the backup: ");
	} else if (!use_env) {
		return gh_error_set(err, GH_EDENIED, "the backup was made without the master key: give it with "
				    "--master-key FILE (or GATEHOUSE_MASTER_KEY)");
	}
	struct gh_store *st = NULL;
	int64_t seq = 0;
	char hash[65];
	uint8_t pk[32];
	if ((rc = staged(j, GH_BACKUP_DB, dst, sizeof dst, err)))
		return rc;
	if (gh_store_open(dst, true, &st, err))
		return recode(err, GH_EDENIED, "gatehouse.db in the backup cannot be opened: ");
	if ((rc = gh_store_check(st, err)))
		rc = recode(err, GH_EDENIED, "");
	else if (gh_store_audit_head_get(st, &seq, hash))
		rc = gh_error_set(err, GH_EDENIED, "gatehouse.db in the backup has no audit head");
	else if (seq != j->m.audit_seq || strcmp(hash, j->m.audit_hash) != 0)
		rc = gh_error_set(err, GH_EDENIED, "the store's audit head (seq %lld) is not the one in manifest.json "
				  "(seq %lld): the backup is damaged or was tampered with", (long long)seq,
				  (long long)j->m.audit_seq);
	else if (j->m.files[GH_BACKUP_CKPTS].present && gh_audit_key_public(st, pk))
		rc = gh_error_set(err, GH_EDENIED, "gatehouse.db in the backup holds no audit checkpoint key to verify "
				  "audit/checkpoints with: the backup is damaged or was tampered with");
	else if (have_file_key)
		rc = check_key(st, key, err);
	if (!rc && use_env) {
		uint8_t ek[GH_VAULT_KEY_BYTES];
		if (gh_vault_master_load(j->staging, ek, err))
			rc = recode(err, GH_EINVAL, "");
		else if (check_key(st, ek, err))
			rc = recode(err, GH_EDENIED, "GATEHOUSE_MASTER_KEY (which a server started with it would use): ");
		sodium_memzero(ek, sizeof ek);
	}
	gh_store_close(st);
	if (rc)
		return rc;
	if ((rc = verify_staged(j, j->m.audit_seq, j->m.files[GH_BACKUP_CKPTS].present, GH_EDENIED,
				"the backup's audit trail", err)))
		return rc == GH_EDENIED ? rc : recode(err, GH_EDENIED, "");
	if ((rc = no_sidecars(j, err)))
		return rc;
	return sync_staged(j, err);
}

int gh_backup_restore(const char *backup, const char *newdir, const char *key_file, struct gh_backup_job **job,
		      struct gh_error *err)
{
	struct stat st;
	if (stat(backup, &st) < 0 || !S_ISDIR(st.st_mode))
		return gh_error_set(err, GH_ENOTFOUND, "%s is not a directory", backup);
	struct gh_backup_job *j = calloc(1, sizeof *j);
	if (!j)
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	uint8_t key[GH_VAULT_KEY_BYTES];
	sodium_memzero(key, sizeof key);
	int rc = stage(j, newdir, err);
	if (!rc)
		rc = restore(j, backup, key_file, key, err);
	sodium_memzero(key, sizeof key);
	if (rc) {
		gh_backup_job_free(j);
		return rc;
	}
	*job = j;
	return 0;
}

/* ---- the job ---- */

const struct gh_backup_manifest *gh_backup_job_manifest(const struct gh_backup_job *j)
{
	return &j->m;
}

const char *gh_backup_job_staging(const struct gh_backup_job *j)
{
	return j->staging;
}

const char *gh_backup_job_dest(const struct gh_backup_job *j)
{
	return j->dest;
}

int64_t gh_backup_job_bytes(const struct gh_backup_job *j)
{
	int64_t n = 0;
	for (int f = 0; f < GH_BACKUP_NFILES; f++)
		if (j->m.files[f].present)
			n += j->m.files[f].size;
	return n;
}

int gh_backup_commit(struct gh_backup_job *j, struct gh_error *err)
{
	if (!j->staging[0] || j->committed)
		return gh_error_set(err, GH_EINTERNAL, "nothing staged");
	if (no_sidecars(j, err) || sync_path(j->staging, err))
		return GH_EIO;
	/* rename replaces an empty directory and fails on anything else: no check-then-act race */
	if (rename(j->staging, j->dest) < 0) {
		int e = errno;
		if (e == ENOTEMPTY || e == EEXIST || e == ENOTDIR || e == EISDIR)
			return gh_error_set(err, GH_EEXIST, "%s exists and is not an empty directory", j->dest);
		return gh_error_set(err, GH_EIO, "%s: %s", j->dest, strerror(e));
	}
	j->committed = true;
	return sync_path(j->parent, err);
}

void gh_backup_uncommit(struct gh_backup_job *j)
{
	if (j && j->committed) {
		remove_ours(j->dest);
		j->committed = false;
		j->staging[0] = '\0';
	}
}

void gh_backup_job_free(struct gh_backup_job *j)
{
	if (!j)
		return;
	if (!j->committed && j->staging[0])
		remove_ours(j->staging);
	sodium_memzero(j, sizeof *j);
	free(j);
}
