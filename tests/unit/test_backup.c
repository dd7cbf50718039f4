/* Unit tests for src/backup (and the store, audit and vault pieces it rests on): the manifest
 * round trip and its refusals, the store snapshot, backups taken while another writer appends
 * to the trail, restores, and restores refused for damage, a wrong key, or a busy target. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "backup/backup.h"
#include "identity/identity.h"
#include "store/store.h"
#include "vault/vault.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))
#define DIRLEN 256

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

struct fixture {
	char root[DIRLEN]; /* everything of one test lives under it */
	char data[PATH_MAX];
};

/* A data directory as `gatehouse init` makes it: store, master key, signing key, one secret,
 * and a trail with `records` records. */
static void make_datadir(const char *data, int records)
{
	char path[PATH_MAX];
	struct gh_error err;
	gh_error_clear(&err);
	assert_int_equal(mkdir(data, 0700), 0);
	snprintf(path, sizeof path, "%s/gatehouse.db", data);
	if (gh_store_create(path, &err) || gh_vault_master_create(data, &err))
		fail_msg("%s", err.message);
	struct gh_store *st = NULL;
	uint8_t key[GH_VAULT_KEY_BYTES];
	int64_t version = 0;
	if (gh_store_open(path, true, &st, &err) || gh_vault_master_load(data, key, &err) ||
	    gh_identity_keygen(st, key, &err))
		fail_msg("%s", err.message);
	assert_int_equal(gh_vault_secret_set(st, key, "dsn", (const uint8_t *)"postgresql://u:pw@h/db", 22, &version), 0);
	assert_int_equal(gh_store_policy_save(st, "version: 1\n", 11, &version), 0);
	gh_vault_wipe(key, sizeof key);
	gh_store_close(st);
	struct gh_audit *a = NULL;
	if (gh_audit_open(data, &a, &err))
		fail_msg("%s", err.message);
	for (int i = 0; i < records; i++) {
		struct gh_audit_record r = {.time_ms = 1700000000000LL + i, .event = "query", .user = "alice",
					    .status = "ok", .rows = i, .duration_ms = -1};
		if (gh_audit_append(a, &r, NULL, &err))
			fail_msg("%s", err.message);
	}
	gh_audit_close(a);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	snprintf(f->root, sizeof f->root, "/tmp/gh_test_backup_XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	snprintf(f->data, sizeof f->data, "%s/data", f->root);
	make_datadir(f->data, 5);
	unsetenv("GATEHOUSE_MASTER_KEY");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	rm_rf(f->root);
	free(f);
	unsetenv("GATEHOUSE_MASTER_KEY");
	return 0;
}

static void path_in(char *out, size_t n, const char *dir, const char *name)
{
	assert_int_equal(gh_path_join(out, n, dir, name), 0);
}

/* Runs a shell command made from fmt; returns its status. */
static int shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int shell(const char *fmt, ...)
{
	char cmd[4 * PATH_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof cmd);
	return system(cmd);
}

/* Copies tmpl into out with each '@' replaced: the first by first, the others by rest. */
static size_t subst(char *out, size_t cap, const char *tmpl, const char *first, const char *rest)
{
	size_t o = 0;
	bool used = false;
	for (const char *t = tmpl; *t; t++) {
		const char *r = *t == '@' ? (used ? rest : first) : NULL;
		size_t n = r ? strlen(r) : 1;
		assert_true(o + n < cap);
		memcpy(out + o, r ? r : t, n);
		o += n;
		used = used || r;
	}
	out[o] = '\0';
	return o;
}

/* Backs up data to out and commits; returns the manifest's seq. */
static int64_t backup_ok(const char *data, const char *out, bool with_key)
{
	struct gh_backup_job *j = NULL;
	struct gh_error err;
	gh_error_clear(&err);
	if (gh_backup_create(data, out, with_key, &j, &err) || gh_backup_commit(j, &err))
		fail_msg("backup: %s", err.message);
	int64_t seq = gh_backup_job_manifest(j)->audit_seq;
	gh_backup_job_free(j);
	return seq;
}

static int restore(const char *backup, const char *dest, const char *key_file, struct gh_error *err)
{
	struct gh_backup_job *j = NULL;
	gh_error_clear(err);
	int rc = gh_backup_restore(backup, dest, key_file, &j, err);
	if (!rc)
		rc = gh_backup_commit(j, err);
	gh_backup_job_free(j);
	return rc;
}

static void expect_verified(const char *dir, int64_t records)
{
	struct gh_audit_report rep;
	struct gh_error err;
	if (gh_audit_verify(dir, &rep, &err))
		fail_msg("%s", err.message);
	if (!rep.ok || rep.records != records)
		fail_msg("%s: ok=%d records %lld (want %lld): %s", dir, rep.ok, (long long)rep.records,
			 (long long)records, rep.reason);
}

static int count_entries(const char *dir)
{
	char cmd[PATH_MAX + 32];
	assert_true(snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir) < (int)sizeof cmd);
	FILE *p = popen(cmd, "r");
	int n = -1;
	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	return n;
}

/* ---- manifest ---- */

static void sample_manifest(struct gh_backup_manifest *m)
{
	memset(m, 0, sizeof *m);
	m->version = GH_BACKUP_VERSION;
	snprintf(m->created, sizeof m->created, "2024-05-01T10:00:00.000Z");
	snprintf(m->source, sizeof m->source, "/var/lib/gate \"house\"/caf\xc3\xa9");
	m->audit_seq = 1234;
	memset(m->audit_hash, 'a', 64);
	m->audit_checkpoint = 1234;
	for (int f = 0; f < GH_BACKUP_NFILES; f++) {
		m->files[f].present = true;
		m->files[f].size = f == GH_BACKUP_KEY ? 32 : 1000 + f;
		memset(m->files[f].sha256, '0' + f, 64);
	}
}

static void test_manifest_round_trip(void **state)
{
	(void)state;
	struct gh_backup_manifest m, back;
	struct gh_buf b;
	struct gh_error err;
	for (int i = 0; i < 4; i++) {
		bool with_key = i & 1, v1 = i & 2;
		sample_manifest(&m);
		if (!with_key)
			memset(&m.files[GH_BACKUP_KEY], 0, sizeof m.files[GH_BACKUP_KEY]);
		if (v1) { /* a backup made before checkpoints were in it */
			m.version = 1;
			m.audit_checkpoint = 0;
			memset(&m.files[GH_BACKUP_CKPTS], 0, sizeof m.files[GH_BACKUP_CKPTS]);
		}
		gh_buf_init(&b, GH_BACKUP_MANIFEST_MAX);
		assert_int_equal(gh_backup_manifest_format(&m, &b), 0);
		if (gh_backup_manifest_parse((const uint8_t *)b.data, b.len, &back, &err))
			fail_msg("%s\n%s", err.message, b.data);
		assert_memory_equal(&m, &back, sizeof m);
		assert_true(v1 == (strstr(b.data, "checkpoint") == NULL));
		gh_buf_free(&b);
	}
	CHECKED("format then parse gives back the same manifest, with and without master.key, versions 2 and 1");
}

static void test_manifest_refusals(void **state)
{
	(void)state;
	static const char H[] = "0000000000000000000000000000000000000000000000000000000000000000";
#define FILES_OK "\"files\":{\"gatehouse.db\":{\"size\":1,\"sha256\":\"@\"},\"audit/audit.log\":{\"size\":2,\"sha256\":\"@\"}}"
#define HEAD "{\"format\":\"gatehouse-backup\",\"version\":1,\"created\":\"t\",\"source\":\"/d\","
#define HEAD2 "{\"format\":\"gatehouse-backup\",\"version\":2,\"created\":\"t\",\"source\":\"/d\","
#define FILES_V2 "\"files\":{\"gatehouse.db\":{\"size\":1,\"sha256\":\"@\"},\"audit/audit.log\":{\"size\":2,\"sha256\":\"@\"},\"audit/checkpoints\":{\"size\":3,\"sha256\":\"@\"}}"
	static const struct {
		const char *what, *fmt, *needle;
	} cases[] = {
		{"valid (control)", HEAD "\"audit\":{\"seq\":1,\"hash\":\"@\"}," FILES_OK "}", NULL},
		{"not JSON", "{\"format\":", "not valid JSON"},
		{"an array", "[1,2]", "object"},
		{"trailing bytes", HEAD "\"audit\":{\"seq\":1,\"hash\":\"@\"}," FILES_OK "} x", "not valid JSON"},
		{"duplicate member", HEAD "\"version\":1,\"audit\":{\"seq\":1,\"hash\":\"@\"}," FILES_OK "}", "not valid JSON"},
		{"unknown member", HEAD "\"x\":1,\"audit\":{\"seq\":1,\"hash\":\"@\"}," FILES_OK "}", "unknown member"},
		{"unknown audit member", HEAD "\"audit\":{\"seq\":1,\"hash\":\"@\",\"checkpoint\":{}}," FILES_OK "}", "unknown member"},
		{"version 3", "{\"format\":\"gatehouse-backup\",\"version\":3}", "version 3"},
		{"version 0", "{\"format\":\"gatehouse-backup\",\"version\":0}", "version 0"},
		{"valid version 2 (control)", HEAD2 "\"audit\":{\"seq\":7,\"hash\":\"@\",\"checkpoint\":7}," FILES_V2 "}", NULL},
		{"v2 without audit.checkpoint", HEAD2 "\"audit\":{\"seq\":7,\"hash\":\"@\"}," FILES_V2 "}", "checkpoint"},
		{"v2 checkpoint before seq", HEAD2 "\"audit\":{\"seq\":7,\"hash\":\"@\",\"checkpoint\":6}," FILES_V2 "}", "audit.checkpoint must be audit.seq"},
		{"v2 checkpoint an object", HEAD2 "\"audit\":{\"seq\":7,\"hash\":\"@\",\"checkpoint\":{\"seq\":7}}," FILES_V2 "}", "checkpoint"},
		{"v2 at seq 0", HEAD2 "\"audit\":{\"seq\":0,\"hash\":\"@\",\"checkpoint\":0}," FILES_V2 "}", "at least 1"},
		{"v2 without the file", HEAD2 "\"audit\":{\"seq\":7,\"hash\":\"@\",\"checkpoint\":7}," FILES_OK "}", "audit/checkpoints"},
		{"v1 with the file", HEAD "\"audit\":{\"seq\":7,\"hash\":\"@\"}," FILES_V2 "}", "audit/checkpoints"},
		{"v1 with audit.checkpoint", HEAD "\"audit\":{\"seq\":7,\"hash\":\"@\",\"checkpoint\":7}," FILES_OK "}", "unknown member"},
		{"another format", "{\"format\":\"tar\",\"version\":1}", "format"},
		{"seq negative", HEAD "\"audit\":{\"seq\":-1,\"hash\":\"@\"}," FILES_OK "}", "seq"},
		{"seq a float", HEAD "\"audit\":{\"seq\":1.5,\"hash\":\"@\"}," FILES_OK "}", "seq"},
		{"uppercase hash", HEAD "\"audit\":{\"seq\":1,\"hash\":\"@\"}," FILES_OK "}", "hash"},
		{"path outside the backup", HEAD "\"audit\":{\"seq\":1,\"hash\":\"@\"},\"files\":{\"../../etc/passwd\":{\"size\":1,\"sha256\":\"@\"}}}", "not a file"},
		{"store missing", HEAD "\"audit\":{\"seq\":1,\"hash\":\"@\"},\"files\":{\"audit/audit.log\":{\"size\":1,\"sha256\":\"@\"}}}", "must list"},
		{"size too large", HEAD "\"audit\":{\"seq\":1,\"hash\":\"@\"},\"files\":{\"gatehouse.db\":{\"size\":99999999999999999,\"sha256\":\"@\"}}}", "size"},
		{"file entry member", HEAD "\"audit\":{\"seq\":1,\"hash\":\"@\"},\"files\":{\"gatehouse.db\":{\"size\":1,\"sha256\":\"@\",\"mode\":1}}}", "unknown member"},
		{"key of 31 bytes", HEAD "\"audit\":{\"seq\":1,\"hash\":\"@\"},\"files\":{\"gatehouse.db\":{\"size\":1,\"sha256\":\"@\"},\"audit/audit.log\":{\"size\":2,\"sha256\":\"@\"},\"master.key\":{\"size\":31,\"sha256\":\"@\"}}}", "32 bytes"},
		{"control character", "{\"format\":\"gatehouse-backup\",\"version\":1,\"created\":\"t\",\"source\":\"/d\\u001b[2J\"}", "control"},
		{"NUL in a string", "{\"format\":\"gatehouse-backup\",\"version\":1,\"created\":\"t\\u0000x\",\"source\":\"/d\"}", "not valid JSON"},
		{"empty created", "{\"format\":\"gatehouse-backup\",\"version\":1,\"created\":\"\",\"source\":\"/d\"}", "created"},
	};
	char buf[2048];
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const char *h = strstr(cases[i].what, "uppercase") ? "000000000000000000000000000000000000000000000000000000000000000A" : H;
		size_t n = subst(buf, sizeof buf, cases[i].fmt, h, H);
		struct gh_backup_manifest m;
		struct gh_error err;
		gh_error_clear(&err);
		int rc = gh_backup_manifest_parse((const uint8_t *)buf, n, &m, &err);
		printf("  %-28s -> %d %s\n", cases[i].what, rc, err.message);
		if (!cases[i].needle) {
			assert_int_equal(rc, 0);
			continue;
		}
		assert_int_equal(rc, GH_EINVAL);
		if (!strstr(err.message, cases[i].needle))
			fail_msg("%s: '%s' lacks '%s'", cases[i].what, err.message, cases[i].needle);
	}
	/* larger than the limit, whatever it holds */
	size_t big = GH_BACKUP_MANIFEST_MAX + 1;
	char *p = malloc(big);
	assert_non_null(p);
	memset(p, ' ', big);
	p[0] = '{';
	p[big - 1] = '}';
	struct gh_backup_manifest m;
	struct gh_error err;
	assert_int_equal(gh_backup_manifest_parse((const uint8_t *)p, big, &m, &err), GH_EINVAL);
	free(p);
	CHECKED("%zu malformed manifests refused with the reason; one over %d bytes too",
		sizeof cases / sizeof *cases - 2, GH_BACKUP_MANIFEST_MAX);
}

/* ---- store pieces ---- */

static void test_store_snapshot_pinned(void **state)
{
	struct fixture *f = *state;
	char db[PATH_MAX], copy[PATH_MAX];
	struct gh_error err;
	path_in(db, sizeof db, f->data, "gatehouse.db");
	path_in(copy, sizeof copy, f->root, "copy.db");
	struct gh_store_snapshot *snap = NULL;
	int64_t seq = 0, version = 0;
	char hash[65];
	assert_int_equal(gh_store_snapshot_open(db, &snap, &err), 0);
	assert_int_equal(gh_store_snapshot_pin(snap, &seq, hash, &err), 0);
	assert_int_equal(seq, 5);
	/* another connection commits after the pin: the copy must not hold it */
	struct gh_store *st = NULL;
	assert_int_equal(gh_store_open(db, true, &st, &err), 0);
	assert_int_equal(gh_store_policy_save(st, "version: 1\n# two\n", 17, &version), 0);
	assert_int_equal(version, 2);
	assert_int_equal(gh_store_audit_head_set(st, 99, hash), 0);
	gh_store_close(st);
	assert_int_equal(gh_store_snapshot_write(snap, copy, &err), 0);
	gh_store_snapshot_close(snap);
	struct stat sb;
	assert_int_equal(stat(copy, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	char *doc = NULL;
	assert_int_equal(gh_store_open(copy, true, &st, &err), 0);
	assert_int_equal(gh_store_policy_load(st, &doc, &version), 0);
	assert_int_equal(version, 1);
	free(doc);
	assert_int_equal(gh_store_audit_head_get(st, &seq, hash), 0);
	assert_int_equal(seq, 5);
	assert_int_equal(gh_store_check(st, &err), 0);
	gh_store_close(st);
	/* the destination must be new */
	assert_int_equal(gh_store_snapshot_open(db, &snap, &err), 0);
	assert_int_equal(gh_store_snapshot_pin(snap, &seq, hash, &err), 0);
	assert_int_not_equal(gh_store_snapshot_write(snap, copy, &err), 0);
	gh_store_snapshot_close(snap);
	CHECKED("the copy is the pinned state (policy 1, head 5), not commits made after the pin; mode 0600");
}

static void test_store_backup_note(void **state)
{
	struct fixture *f = *state;
	char db[PATH_MAX], loc[PATH_MAX];
	struct gh_error err;
	struct gh_store *st = NULL;
	int64_t t = 0, seq = 0;
	path_in(db, sizeof db, f->data, "gatehouse.db");
	assert_int_equal(gh_store_open(db, true, &st, &err), 0);
	assert_int_equal(gh_store_backup_last(st, &t, loc, sizeof loc, &seq), GH_ENOTFOUND);
	assert_int_equal(gh_store_backup_note(st, 1700000000123LL, "/backups/one", 7), 0);
	assert_int_equal(gh_store_backup_note(st, 1700000000456LL, "/backups/two", 9), 0);
	assert_int_equal(gh_store_backup_last(st, &t, loc, sizeof loc, &seq), 0);
	assert_true(t == 1700000000456LL && seq == 9);
	assert_string_equal(loc, "/backups/two");
	gh_store_close(st);
	CHECKED("no backup: not found; after two, the last one's time, location and seq");
}

static void test_vault_secrets_check(void **state)
{
	struct fixture *f = *state;
	char db[PATH_MAX];
	struct gh_error err;
	struct gh_store *st = NULL;
	uint8_t key[GH_VAULT_KEY_BYTES], other[GH_VAULT_KEY_BYTES];
	int64_t n = 0, v = 0;
	path_in(db, sizeof db, f->data, "gatehouse.db");
	assert_int_equal(gh_store_open(db, true, &st, &err), 0);
	assert_int_equal(gh_vault_master_load(f->data, key, &err), 0);
	assert_int_equal(gh_vault_secrets_check(st, key, &n, &err), 0);
	assert_int_equal(n, 1);
	randombytes_buf(other, sizeof other);
	assert_int_equal(gh_vault_secret_set(st, other, "zz-foreign", (const uint8_t *)"x", 1, &v), 0);
	assert_int_equal(gh_vault_secrets_check(st, key, &n, &err), GH_EDENIED);
	assert_non_null(strstr(err.message, "zz-foreign"));
	assert_null(strstr(err.message, "postgresql"));
	gh_vault_wipe(key, sizeof key);
	gh_store_close(st);
	CHECKED("every secret opens with the key; one sealed under another key is named: %s", err.message);
}

/* ---- backup and restore ---- */

static void test_backup_restore(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX], dest[PATH_MAX], p[PATH_MAX];
	struct gh_error err;
	path_in(out, sizeof out, f->root, "b1");
	path_in(dest, sizeof dest, f->root, "r1");
	assert_int_equal(backup_ok(f->data, out, true), 5);
	static const char *const files[] = {"manifest.json", "gatehouse.db", "audit/audit.log", "master.key"};
	struct stat sb;
	for (size_t i = 0; i < 4; i++) {
		path_in(p, sizeof p, out, files[i]);
		assert_int_equal(lstat(p, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
	}
	assert_int_equal(stat(out, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(count_entries(out), 4);
	assert_int_equal(count_entries(f->root), 2); /* data, b1: no staging left */
	expect_verified(out, 5);
	if (restore(out, dest, NULL, &err))
		fail_msg("restore: %s", err.message);
	expect_verified(dest, 5);
	assert_int_equal(count_entries(dest), 3); /* gatehouse.db, audit, master.key */
	/* the restored store works with the restored key */
	struct gh_store *st = NULL;
	uint8_t key[GH_VAULT_KEY_BYTES];
	char *val = NULL;
	int64_t v = 0;
	path_in(p, sizeof p, dest, "gatehouse.db");
	assert_int_equal(gh_store_open(p, true, &st, &err), 0);
	assert_int_equal(gh_vault_master_load(dest, key, &err), 0);
	assert_int_equal(gh_vault_secret_get(st, key, "dsn", &val, &v), 0);
	assert_string_equal(val, "postgresql://u:pw@h/db");
	gh_vault_secret_free(val);
	gh_vault_wipe(key, sizeof key);
	gh_store_close(st);
	/* both verbs refuse a non-empty destination */
	assert_int_equal(restore(out, dest, NULL, &err), GH_EEXIST);
	struct gh_backup_job *j = NULL;
	assert_int_equal(gh_backup_create(f->data, dest, true, &j, &err), GH_EEXIST);
	path_in(p, sizeof p, f->root, "a-file");
	int fd = open(p, O_WRONLY | O_CREAT, 0600);
	close(fd);
	assert_int_equal(gh_backup_create(f->data, p, true, &j, &err), GH_EEXIST);
	assert_int_equal(count_entries(f->root), 4);
	CHECKED("backup (0700/0600, 4 files), verify, restore, the secret opens; busy targets refused");
}

static void flip_byte(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	char c;
	assert_int_equal(pread(fd, &c, 1, at), 1);
	c ^= 0x20;
	assert_int_equal(pwrite(fd, &c, 1, at), 1);
	close(fd);
}

static void test_restore_refuses_damage(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX], dest[PATH_MAX], p[PATH_MAX];
	struct gh_error err;
	path_in(out, sizeof out, f->root, "b");
	path_in(dest, sizeof dest, f->root, "r");
	backup_ok(f->data, out, true);
	static const struct {
		const char *file;
		off_t at;
		const char *needle;
	} cases[] = {
		{"audit/audit.log", 50, "audit/audit.log does not match"},
		{"gatehouse.db", 4000, "gatehouse.db does not match"},
		{"master.key", 3, "master.key does not match"},
		{"manifest.json", 3, "manifest.json"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char t[PATH_MAX];
		path_in(t, sizeof t, f->root, "t");
		assert_int_equal(shell("rm -rf '%s' && cp -a '%s' '%s'", t, out, t), 0);
		path_in(p, sizeof p, t, cases[i].file);
		flip_byte(p, cases[i].at);
		int rc = restore(t, dest, NULL, &err);
		printf("  %-16s byte %-5lld -> %d %s\n", cases[i].file, (long long)cases[i].at, rc, err.message);
		assert_int_equal(rc, GH_EDENIED);
		assert_non_null(strstr(err.message, cases[i].needle));
		assert_int_equal(access(dest, F_OK), -1);
	}
	/* a file missing */
	char t[PATH_MAX];
	path_in(t, sizeof t, f->root, "t");
	path_in(p, sizeof p, t, "audit/audit.log");
	assert_int_equal(shell("rm -rf '%s' && cp -a '%s' '%s' && rm '%s'", t, out, t, p), 0);
	assert_int_equal(restore(t, dest, NULL, &err), GH_EDENIED);
	assert_non_null(strstr(err.message, "missing"));
	/* a symlink in place of a file */
	assert_int_equal(shell("rm -rf '%s' && cp -a '%s' '%s' && rm '%s' && ln -s '%s/audit/audit.log' '%s'", t, out, t, p,
			       f->data, p), 0);
	assert_int_not_equal(restore(t, dest, NULL, &err), 0);
	/* not a backup at all */
	assert_int_equal(restore(f->data, dest, NULL, &err), GH_ENOTFOUND);
	assert_int_equal(access(dest, F_OK), -1);
	assert_int_equal(count_entries(f->root), 3); /* data, b, t */
	CHECKED("one byte changed in any file, a missing file, a symlink, no manifest: refused, nothing written");
}

static void test_without_key(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX], dest[PATH_MAX], p[PATH_MAX], keyfile[PATH_MAX], hex[65];
	struct gh_error err;
	uint8_t key[GH_VAULT_KEY_BYTES];
	path_in(out, sizeof out, f->root, "b");
	path_in(dest, sizeof dest, f->root, "r");
	path_in(keyfile, sizeof keyfile, f->data, "master.key");
	backup_ok(f->data, out, false);
	path_in(p, sizeof p, out, "master.key");
	assert_int_equal(access(p, F_OK), -1);
	int rc = restore(out, dest, NULL, &err);
	assert_int_equal(rc, GH_EDENIED);
	assert_non_null(strstr(err.message, "--master-key"));
	/* a wrong key file */
	char wrong[PATH_MAX];
	path_in(wrong, sizeof wrong, f->root, "wrong.key");
	randombytes_buf(key, sizeof key);
	assert_int_equal(gh_vault_master_write(wrong, key, &err), 0);
	assert_int_equal(restore(out, dest, wrong, &err), GH_EDENIED);
	/* a key file others can read */
	chmod(wrong, 0644);
	assert_int_equal(restore(out, dest, wrong, &err), GH_EINVAL);
	/* from the environment: checked, not written */
	assert_int_equal(gh_vault_master_read(keyfile, key, &err), 0);
	gh_hex_encode(key, sizeof key, hex);
	setenv("GATEHOUSE_MASTER_KEY", hex, 1);
	if (restore(out, dest, NULL, &err))
		fail_msg("restore with GATEHOUSE_MASTER_KEY: %s", err.message);
	path_in(p, sizeof p, dest, "master.key");
	assert_int_equal(access(p, F_OK), -1);
	rm_rf(dest);
	/* an environment key that does not open the store is refused even with a good file */
	randombytes_buf(key, sizeof key);
	gh_hex_encode(key, sizeof key, hex);
	setenv("GATEHOUSE_MASTER_KEY", hex, 1);
	assert_int_equal(restore(out, dest, keyfile, &err), GH_EDENIED);
	assert_non_null(strstr(err.message, "GATEHOUSE_MASTER_KEY"));
	unsetenv("GATEHOUSE_MASTER_KEY");
	if (restore(out, dest, keyfile, &err))
		fail_msg("restore --master-key: %s", err.message);
	expect_verified(dest, 5);
	gh_vault_wipe(key, sizeof key);
	CHECKED("without the key: refused; wrong key or loose mode refused; env key used unwritten; file key written");
}

/* ---- signed checkpoints in backups ---- */

/* The data directory's checkpoint key, opened (and made on first need) with its master key. */
static void load_ckpt_key(const char *data, struct gh_audit_key *k)
{
	char db[PATH_MAX];
	struct gh_error err;
	struct gh_store *st = NULL;
	uint8_t master[GH_VAULT_KEY_BYTES];
	path_in(db, sizeof db, data, "gatehouse.db");
	if (gh_store_open(db, true, &st, &err) || gh_vault_master_load(data, master, &err) ||
	    gh_audit_key_load(st, master, true, k, &err))
		fail_msg("%s", err.message);
	gh_vault_wipe(master, sizeof master);
	gh_store_close(st);
}

/* Signs a checkpoint of the live log's last record into DIR/audit/checkpoints, as a server's
 * checkpointer would; returns its seq. */
static int64_t checkpoint_now(const char *data, const struct gh_audit_key *k)
{
	char p[PATH_MAX];
	struct gh_audit_cut cut;
	struct gh_audit_checkpoint c;
	struct gh_error err;
	if (gh_audit_cut(data, NULL, NULL, &cut, &err))
		fail_msg("%s", err.message);
	gh_audit_checkpoint_make(k, cut.seq, cut.hash, gh_now_ms(), &c);
	path_in(p, sizeof p, data, "audit/checkpoints");
	if (gh_audit_checkpoint_append(p, &c, &err))
		fail_msg("%s", err.message);
	return cut.seq;
}

static void read_manifest_of(const char *backup, struct gh_backup_manifest *m)
{
	char p[PATH_MAX], *text = NULL;
	size_t len = 0;
	struct gh_error err;
	path_in(p, sizeof p, backup, "manifest.json");
	if (gh_read_file(p, GH_BACKUP_MANIFEST_MAX, &text, &len, &err) ||
	    gh_backup_manifest_parse((const uint8_t *)text, len, m, &err))
		fail_msg("%s: %s", backup, err.message);
	free(text);
}

static void write_manifest_of(const char *backup, const struct gh_backup_manifest *m)
{
	char p[PATH_MAX];
	struct gh_buf b;
	gh_buf_init(&b, GH_BACKUP_MANIFEST_MAX);
	assert_int_equal(gh_backup_manifest_format(m, &b), 0);
	path_in(p, sizeof p, backup, "manifest.json");
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(b.data, 1, b.len, fp), b.len);
	fclose(fp);
	gh_buf_free(&b);
}

/* Sets the manifest's size and SHA-256 of file f to what the backup holds now (a forger's
 * step: the manifest is not signed). */
static void rehash(const char *backup, enum gh_backup_file f)
{
	char p[PATH_MAX], *text = NULL;
	size_t len = 0;
	uint8_t d[32];
	struct gh_error err;
	struct gh_backup_manifest m;
	read_manifest_of(backup, &m);
	path_in(p, sizeof p, backup, gh_backup_file_name(f));
	if (gh_read_file(p, 1 << 26, &text, &len, &err))
		fail_msg("%s", err.message);
	crypto_hash_sha256(d, (const uint8_t *)text, len);
	free(text);
	gh_hex_encode(d, 32, m.files[f].sha256);
	m.files[f].size = (int64_t)len;
	write_manifest_of(backup, &m);
}

/* Reads a checkpoints file's lines into lines[] (each without '\n'); returns how many. */
static int ckpt_lines(const char *path, char lines[][GH_CHECKPOINT_MAX_LINE + 1], int max)
{
	FILE *fp = fopen(path, "r");
	int n = 0;
	char buf[GH_CHECKPOINT_MAX_LINE + 2];
	if (!fp)
		return 0;
	while (n < max && fgets(buf, sizeof buf, fp)) {
		size_t len = strcspn(buf, "\n");
		if (len > GH_CHECKPOINT_MAX_LINE)
			len = GH_CHECKPOINT_MAX_LINE;
		memcpy(lines[n], buf, len);
		lines[n++][len] = '\0';
	}
	fclose(fp);
	return n;
}

static void write_lines(const char *path, char lines[][GH_CHECKPOINT_MAX_LINE + 1], int n)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < n; i++)
		fprintf(fp, "%s\n", lines[i]);
	fclose(fp);
}

/* Verifies a backup's trail with nothing but the public key, as an auditor would. */
static void expect_public_ok(const char *dir, const uint8_t pk[32], int64_t seq)
{
	char log[PATH_MAX], ck[PATH_MAX];
	struct gh_audit_report rep;
	struct gh_error err;
	path_in(log, sizeof log, dir, "audit/audit.log");
	path_in(ck, sizeof ck, dir, "audit/checkpoints");
	if (gh_audit_verify_public(log, ck, pk, &rep, &err))
		fail_msg("%s", err.message);
	if (!rep.ok || rep.records != seq || rep.last_checkpoint != seq)
		fail_msg("%s: ok=%d records %lld, last checkpoint %lld (want %lld): %s", dir, rep.ok,
			 (long long)rep.records, (long long)rep.last_checkpoint, (long long)seq, rep.reason);
}

struct appender {
	const char *data;
	const struct gh_audit_key *key; /* set: checkpoint as a server does, every 7 records */
	volatile bool stop;
	int64_t written, checkpoints, failures;
};

/* Another writer of the trail (its own lock, like another process), and with key a server's
 * checkpointer signing the log's last record into DIR/audit/checkpoints now and then. */
static void *append_loop(void *arg)
{
	struct appender *ap = arg;
	struct gh_audit *a = NULL;
	struct gh_error err;
	char ckpts[PATH_MAX];
	if (gh_path_join(ckpts, sizeof ckpts, ap->data, "audit/checkpoints") || gh_audit_open(ap->data, &a, &err))
		return NULL;
	while (!ap->stop) {
		struct gh_audit_record r = {.time_ms = gh_now_ms(), .event = "query", .user = "bob", .status = "ok",
					    .rows = -1, .duration_ms = -1};
		if (gh_audit_append(a, &r, NULL, &err) == 0)
			ap->written++;
		if (ap->key && ap->written % 7 == 0) {
			struct gh_audit_cut cut;
			struct gh_audit_checkpoint c;
			if (gh_audit_cut(ap->data, NULL, NULL, &cut, &err) == 0) {
				gh_audit_checkpoint_make(ap->key, cut.seq, cut.hash, gh_now_ms(), &c);
				if (gh_audit_checkpoint_append(ckpts, &c, &err) == 0)
					ap->checkpoints++;
				else
					ap->failures++;
			}
		}
	}
	gh_audit_close(a);
	return NULL;
}

static void test_backup_while_appending(void **state)
{
	struct fixture *f = *state;
	struct gh_audit_key key;
	load_ckpt_key(f->data, &key);
	struct appender ap = {.data = f->data, .key = &key};
	pthread_t th;
	char livek[PATH_MAX];
	int own = 0; /* backups whose last checkpoint the live file skipped (a later one was there) */
	path_in(livek, sizeof livek, f->data, "audit/checkpoints");
	assert_int_equal(pthread_create(&th, NULL, append_loop, &ap), 0);
	int64_t last = 0;
	char *live = NULL;
	size_t livelen = 0;
	for (int i = 0; i < 6; i++) {
		char out[PATH_MAX], dest[PATH_MAX], p[PATH_MAX];
		struct gh_error err;
		usleep(20000);
		snprintf(out, sizeof out, "%s/b%d", f->root, i);
		snprintf(dest, sizeof dest, "%s/r%d", f->root, i);
		int64_t seq = backup_ok(f->data, out, i % 2 == 0);
		assert_true(seq >= last);
		last = seq;
		expect_verified(out, seq);
		path_in(p, sizeof p, f->data, "master.key");
		if (restore(out, dest, i % 2 == 0 ? NULL : p, &err))
			fail_msg("restore: %s", err.message);
		expect_verified(dest, seq);
		/* the backup's log is a prefix of the live one */
		char *b = NULL;
		size_t blen = 0;
		path_in(p, sizeof p, out, "audit/audit.log");
		assert_int_equal(gh_read_file(p, 1 << 26, &b, &blen, &err), 0);
		free(live);
		path_in(p, sizeof p, f->data, "audit/audit.log");
		assert_int_equal(gh_read_file(p, 1 << 26, &live, &livelen, &err), 0);
		assert_true(livelen >= blen && memcmp(live, b, blen) == 0);
		free(b);
		/* its checkpoints: every live one up to seq, ending at exactly seq; verifiable with the
		 * public key alone, in the backup and in the restore */
		path_in(p, sizeof p, out, "audit/checkpoints");
		struct gh_audit_checkpoint lc;
		assert_int_equal(gh_audit_checkpoint_last(p, &lc, &err), 0);
		assert_int_equal(lc.seq, seq);
		expect_public_ok(out, key.pk, seq);
		expect_public_ok(dest, key.pk, seq);
		assert_int_equal(gh_read_file(p, 1 << 26, &b, &blen, &err), 0);
		char *lk = NULL;
		size_t lklen = 0;
		assert_int_equal(gh_read_file(livek, 1 << 26, &lk, &lklen, &err), 0);
		const char *lastnl = blen > 1 ? memrchr(b, '\n', blen - 1) : NULL;
		size_t head = lastnl ? (size_t)(lastnl - b) + 1 : 0; /* the lines before the last */
		assert_true(lklen >= head && memcmp(lk, b, head) == 0);
		if (lklen < blen || memcmp(lk, b, blen) != 0)
			own++; /* the live file has a later checkpoint right after the ones before */
		free(lk);
		free(b);
	}
	ap.stop = true;
	pthread_join(th, NULL);
	free(live);
	gh_audit_key_wipe(&key);
	assert_true(ap.written > 0 && ap.checkpoints > 0 && ap.failures == 0);
	expect_verified(f->data, 5 + ap.written);
	CHECKED("6 backups while another writer appended %lld records and signed %lld checkpoints: each verifies, "
		"is a prefix of the live trail, its checkpoints end at exactly its seq and verify with the public "
		"key, restores; last seq %lld; %d backups ended with a checkpoint the live file had skipped",
		(long long)ap.written, (long long)ap.checkpoints, (long long)last, own);
}

static void test_backup_refuses_broken_trail(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX], p[PATH_MAX];
	struct gh_error err;
	struct gh_backup_job *j = NULL;
	path_in(out, sizeof out, f->root, "b");
	path_in(p, sizeof p, f->data, "audit/audit.log");
	flip_byte(p, 30);
	int rc = gh_backup_create(f->data, out, true, &j, &err);
	printf("  -> %d %s\n", rc, err.message);
	assert_int_equal(rc, GH_EAUDIT);
	assert_non_null(strstr(err.message, "fails verification"));
	assert_int_equal(count_entries(f->root), 1);
	CHECKED("a live trail that does not verify gives no backup and no leftovers");
}


static void test_backup_checkpoints(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX], out2[PATH_MAX], dest[PATH_MAX], db[PATH_MAX], live[PATH_MAX], p[PATH_MAX];
	char a[8][GH_CHECKPOINT_MAX_LINE + 1], b[8][GH_CHECKPOINT_MAX_LINE + 1];
	struct gh_error err;
	struct gh_store *st = NULL;
	uint8_t pk[32], bpk[32];
	path_in(db, sizeof db, f->data, "gatehouse.db");
	path_in(live, sizeof live, f->data, "audit/checkpoints");
	path_in(out, sizeof out, f->root, "b1");
	path_in(out2, sizeof out2, f->root, "b2");
	path_in(dest, sizeof dest, f->root, "r1");
	/* a data directory from before checkpoints: no key yet, no checkpoints file */
	assert_int_equal(gh_store_open(db, true, &st, &err), 0);
	assert_int_equal(gh_audit_key_public(st, pk), GH_ENOTFOUND);
	gh_store_close(st);
	assert_int_equal(backup_ok(f->data, out, false), 5);
	assert_int_equal(gh_store_open(db, true, &st, &err), 0);
	assert_int_equal(gh_audit_key_public(st, pk), 0);
	gh_store_close(st);
	path_in(p, sizeof p, out, "gatehouse.db");
	assert_int_equal(gh_store_open(p, true, &st, &err), 0);
	assert_int_equal(gh_audit_key_public(st, bpk), 0);
	gh_store_close(st);
	assert_memory_equal(pk, bpk, 32);
	struct gh_backup_manifest m;
	read_manifest_of(out, &m);
	assert_true(m.version == 2 && m.audit_checkpoint == 5 && m.files[GH_BACKUP_CKPTS].present);
	struct gh_audit_checkpoint last;
	path_in(p, sizeof p, out, "audit/checkpoints");
	assert_int_equal(gh_audit_checkpoint_last(p, &last, &err), 0);
	assert_true(last.seq == 5 && strcmp(last.hash, m.audit_hash) == 0 && gh_audit_checkpoint_verify(&last, pk));
	expect_public_ok(out, pk, 5);
	/* the live file got the same checkpoint */
	assert_int_equal(ckpt_lines(live, a, 8), 1);
	assert_int_equal(ckpt_lines(p, b, 8), 1);
	assert_string_equal(a[0], b[0]);
	/* nothing appended since: the live checkpoint at 5 is taken as it is, none is added */
	assert_int_equal(backup_ok(f->data, out2, true), 5);
	path_in(p, sizeof p, out2, "audit/checkpoints");
	assert_int_equal(ckpt_lines(live, a, 8), 1);
	assert_int_equal(ckpt_lines(p, b, 8), 1);
	assert_string_equal(a[0], b[0]);
	/* restored: the checkpoints come along and still verify with the original's public key */
	if (restore(out2, dest, NULL, &err))
		fail_msg("restore: %s", err.message);
	expect_verified(dest, 5);
	expect_public_ok(dest, pk, 5);
	CHECKED("a backup makes the key if there is none (before the snapshot: the copy holds it), signs its cut "
		"(seq 5) into the live file and its own; a second backup reuses it; the restore verifies with the "
		"public key");
}

static void test_checkpoint_copy(void **state)
{
	struct fixture *f = *state;
	char src[PATH_MAX], dst[PATH_MAX];
	char a[8][GH_CHECKPOINT_MAX_LINE + 1], b[8][GH_CHECKPOINT_MAX_LINE + 1];
	struct gh_audit_key k;
	struct gh_audit_checkpoint c;
	struct gh_error err;
	static const char H[] = "1111111111111111111111111111111111111111111111111111111111111111";
	load_ckpt_key(f->data, &k);
	path_in(src, sizeof src, f->root, "ck");
	path_in(dst, sizeof dst, f->root, "ck.copy");
	for (int s = 2; s <= 7; s += s == 4 ? 3 : 2) { /* 2, 4, 7 */
		gh_audit_checkpoint_make(&k, s, H, gh_now_ms(), &c);
		assert_int_equal(gh_audit_checkpoint_append(src, &c, &err), 0);
	}
	assert_int_equal(ckpt_lines(src, a, 8), 3);
	static const struct {
		int64_t end;
		int lines;  /* in the copy */
		int theirs; /* of them, taken from the file */
	} cases[] = {{5, 3, 2}, {4, 2, 2}, {7, 3, 3}, {9, 4, 3}, {1, 1, 0}};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		gh_audit_checkpoint_make(&k, cases[i].end, H, gh_now_ms() + 1000, &c);
		unlink(dst);
		int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		assert_int_equal(gh_audit_checkpoint_copy(src, &c, fd, &err), 0);
		close(fd);
		int n = ckpt_lines(dst, b, 8);
		printf("  end %lld -> %d lines\n", (long long)cases[i].end, n);
		assert_int_equal(n, cases[i].lines);
		for (int l = 0; l < cases[i].theirs; l++)
			assert_string_equal(a[l], b[l]);
		struct gh_audit_checkpoint lc;
		assert_int_equal(gh_audit_checkpoint_last(dst, &lc, &err), 0);
		assert_int_equal(lc.seq, cases[i].end);
		if (cases[i].theirs < cases[i].lines) /* ours, with our time */
			assert_string_equal(lc.time, c.time);
	}
	/* no file: just the end */
	char none[PATH_MAX];
	path_in(none, sizeof none, f->root, "no-such-file");
	gh_audit_checkpoint_make(&k, 3, H, gh_now_ms(), &c);
	unlink(dst);
	int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_int_equal(gh_audit_checkpoint_copy(none, &c, fd, &err), 0);
	close(fd);
	assert_int_equal(ckpt_lines(dst, b, 8), 1);
	/* a line that is not a checkpoint, or checkpoints out of order, before the end: refused */
	snprintf(b[0], sizeof b[0], "%s", a[0]);
	snprintf(b[1], sizeof b[1], "{\"seq\":3}");
	snprintf(b[2], sizeof b[2], "%s", a[2]);
	for (int bad = 0; bad < 2; bad++) {
		if (bad)
			snprintf(b[1], sizeof b[1], "%s", a[0]); /* seq 2 twice */
		write_lines(src, b, 3);
		gh_audit_checkpoint_make(&k, 8, H, gh_now_ms(), &c);
		unlink(dst);
		fd = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0600);
		gh_error_clear(&err);
		assert_int_equal(gh_audit_checkpoint_copy(src, &c, fd, &err), GH_EINVAL);
		close(fd);
		printf("  -> %s\n", err.message);
		assert_non_null(strstr(err.message, "line 2"));
	}
	gh_audit_key_wipe(&k);
	CHECKED("the copy ends at exactly the end: the file's own checkpoint there, else the one given; later ones "
		"left out; a bad line or disorder before it refused, naming the line");
}

static void test_restore_refuses_bad_checkpoints(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX], dest[PATH_MAX], t[PATH_MAX], p[PATH_MAX];
	char lines[8][GH_CHECKPOINT_MAX_LINE + 1];
	struct gh_error err;
	struct gh_audit_key k;
	struct gh_audit_checkpoint c;
	load_ckpt_key(f->data, &k);
	path_in(out, sizeof out, f->root, "b");
	path_in(dest, sizeof dest, f->root, "r");
	path_in(t, sizeof t, f->root, "t");
	path_in(p, sizeof p, t, "audit/checkpoints");
	/* a checkpoint at 5 made "by a server", then records 6..8 and the backup's checkpoint at 8 */
	struct gh_audit *a = NULL;
	assert_int_equal(checkpoint_now(f->data, &k), 5);
	assert_int_equal(gh_audit_open(f->data, &a, &err), 0);
	for (int i = 0; i < 3; i++) {
		struct gh_audit_record r = {.time_ms = gh_now_ms(), .event = "query", .user = "carol", .status = "ok",
					    .rows = -1, .duration_ms = -1};
		assert_int_equal(gh_audit_append(a, &r, NULL, &err), 0);
	}
	gh_audit_close(a);
	assert_int_equal(backup_ok(f->data, out, true), 8);
	path_in(p, sizeof p, out, "audit/checkpoints");
	assert_int_equal(ckpt_lines(p, lines, 8), 2);
	path_in(p, sizeof p, t, "audit/checkpoints");

	/* another data directory's key, for forgeries */
	struct gh_audit_key other;
	memset(&other, 0, sizeof other);
	crypto_sign_keypair(other.pk, other.sk);
	gh_audit_key_id(other.pk, other.kid);
	struct gh_audit_checkpoint last;
	size_t used = 0;
	char withnl[GH_CHECKPOINT_MAX_LINE + 2];
	snprintf(withnl, sizeof withnl, "%s\n", lines[1]);
	assert_int_equal(gh_audit_checkpoint_parse((const uint8_t *)withnl, strlen(withnl), &used, &last), 0);
	assert_int_equal(last.seq, 8);

	enum { FLIP, BAD_SIG, DROP_LAST, OTHER_KEY, EMPTY, WRONG_HASH, AHEAD, MISSING, NO_KEY, NCASES };
	static const char *const names[NCASES] = {
		"a byte changed, not re-hashed", "a signature edited", "the last checkpoint removed",
		"the last signed by another key", "an empty file", "the last signed over another hash",
		"one beyond the log", "the file missing", "the store's key removed"};
	static const char *const needles[NCASES] = {
		"audit/checkpoints does not match its SHA-256", "checkpoints fails verification at line 1",
		"end at seq 5, not at its head (seq 8)", "fails verification at line 2",
		"end at seq 0, not at its head (seq 8)", "differs from the signed checkpoint",
		"a signed checkpoint covers seq 9", "missing", "no audit checkpoint key"};
	for (int i = 0; i < NCASES; i++) {
		char l2[8][GH_CHECKPOINT_MAX_LINE + 1];
		struct gh_buf b;
		memcpy(l2, lines, sizeof l2);
		int n = 2;
		assert_int_equal(shell("rm -rf '%s' && cp -a '%s' '%s'", t, out, t), 0);
		gh_buf_init(&b, 1024);
		switch (i) {
		case FLIP:
			flip_byte(p, 40);
			break;
		case BAD_SIG:
			l2[0][strlen(l2[0]) - 5] ^= 0x01;
			break;
		case DROP_LAST:
			n = 1;
			break;
		case OTHER_KEY:
		case WRONG_HASH:
		case AHEAD: {
			char h[65];
			memcpy(h, last.hash, 65);
			if (i == WRONG_HASH)
				memset(h, 'e', 64);
			gh_audit_checkpoint_make(i == OTHER_KEY ? &other : &k, i == AHEAD ? 9 : last.seq, h, gh_now_ms(), &c);
			assert_int_equal(gh_audit_checkpoint_format(&c, &b), 0);
			b.data[b.len - 1] = '\0';
			snprintf(l2[1], sizeof l2[1], "%s", b.data);
			break;
		}
		case EMPTY:
			n = 0;
			break;
		case MISSING:
			unlink(p);
			break;
		case NO_KEY: {
			char db[PATH_MAX];
			sqlite3 *s = NULL;
			path_in(db, sizeof db, t, "gatehouse.db");
			assert_int_equal(sqlite3_open(db, &s), SQLITE_OK);
			assert_int_equal(sqlite3_exec(s, "DELETE FROM audit_checkpoint_key", NULL, NULL, NULL), SQLITE_OK);
			sqlite3_close(s);
			rehash(t, GH_BACKUP_DB);
			break;
		}
		}
		gh_buf_free(&b);
		if (i != FLIP && i != MISSING && i != NO_KEY) {
			write_lines(p, l2, n);
			rehash(t, GH_BACKUP_CKPTS);
		}
		int rc = restore(t, dest, NULL, &err);
		printf("  %-34s -> %d %s\n", names[i], rc, err.message);
		assert_int_equal(rc, GH_EDENIED);
		if (!strstr(err.message, needles[i]))
			fail_msg("%s: '%s' lacks '%s'", names[i], err.message, needles[i]);
		assert_int_equal(access(dest, F_OK), -1);
	}
	gh_audit_key_wipe(&k);
	gh_audit_key_wipe(&other);
	assert_int_equal(count_entries(f->root), 3); /* data, b, t */
	CHECKED("%d tampered checkpoint files (or a store without the key) refused by restore, nothing written",
		NCASES);
}

static void test_restore_old_format(void **state)
{
	struct fixture *f = *state;
	char out[PATH_MAX], dest[PATH_MAX], p[PATH_MAX], text[GH_BACKUP_MANIFEST_MAX];
	struct gh_error err;
	struct gh_backup_manifest m;
	path_in(out, sizeof out, f->root, "b");
	path_in(dest, sizeof dest, f->root, "r");
	backup_ok(f->data, out, true);
	/* what a gatehouse before checkpoints in backups wrote: version 1, no audit/checkpoints */
	read_manifest_of(out, &m);
	m.version = 1;
	m.audit_checkpoint = 0;
	memset(&m.files[GH_BACKUP_CKPTS], 0, sizeof m.files[GH_BACKUP_CKPTS]);
	write_manifest_of(out, &m);
	path_in(p, sizeof p, out, "audit/checkpoints");
	assert_int_equal(unlink(p), 0);
	path_in(p, sizeof p, out, "manifest.json");
	FILE *fp = fopen(p, "r");
	size_t n = fread(text, 1, sizeof text - 1, fp);
	fclose(fp);
	text[n] = '\0';
	assert_non_null(strstr(text, "\"version\": 1"));
	assert_null(strstr(text, "checkpoint"));
	if (restore(out, dest, NULL, &err))
		fail_msg("restore of a version 1 backup: %s", err.message);
	expect_verified(dest, 5);
	path_in(p, sizeof p, dest, "audit/checkpoints");
	assert_int_equal(access(p, F_OK), -1);
	CHECKED("a version 1 backup (no checkpoints) still restores and verifies");
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_manifest_round_trip),
	cmocka_unit_test(test_manifest_refusals),
	cmocka_unit_test_setup_teardown(test_store_snapshot_pinned, setup, teardown),
	cmocka_unit_test_setup_teardown(test_store_backup_note, setup, teardown),
	cmocka_unit_test_setup_teardown(test_vault_secrets_check, setup, teardown),
	cmocka_unit_test_setup_teardown(test_backup_restore, setup, teardown),
	cmocka_unit_test_setup_teardown(test_restore_refuses_damage, setup, teardown),
	cmocka_unit_test_setup_teardown(test_without_key, setup, teardown),
	cmocka_unit_test_setup_teardown(test_backup_while_appending, setup, teardown),
	cmocka_unit_test_setup_teardown(test_backup_refuses_broken_trail, setup, teardown),
	cmocka_unit_test_setup_teardown(test_backup_checkpoints, setup, teardown),
	cmocka_unit_test_setup_teardown(test_checkpoint_copy, setup, teardown),
	cmocka_unit_test_setup_teardown(test_restore_refuses_bad_checkpoints, setup, teardown),
	cmocka_unit_test_setup_teardown(test_restore_old_format, setup, teardown),
};

GH_UNIT_MAIN("test_backup", tests)
