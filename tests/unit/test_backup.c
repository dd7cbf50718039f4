/* Unit tests for src/backup (and the store, audit and vault pieces it rests on): the manifest
 * round trip and its refusals, the store snapshot, backups taken while another writer appends
 * to the trail, restores, and restores refused for damage, a wrong key, or a busy target. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
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
	for (int with_key = 0; with_key < 2; with_key++) {
		sample_manifest(&m);
		if (!with_key)
			memset(&m.files[GH_BACKUP_KEY], 0, sizeof m.files[GH_BACKUP_KEY]);
		gh_buf_init(&b, GH_BACKUP_MANIFEST_MAX);
		assert_int_equal(gh_backup_manifest_format(&m, &b), 0);
		if (gh_backup_manifest_parse((const uint8_t *)b.data, b.len, &back, &err))
			fail_msg("%s\n%s", err.message, b.data);
		assert_memory_equal(&m, &back, sizeof m);
		gh_buf_free(&b);
	}
	CHECKED("format then parse gives back the same manifest, with and without master.key");
}

static void test_manifest_refusals(void **state)
{
	(void)state;
	static const char H[] = "0000000000000000000000000000000000000000000000000000000000000000";
#define FILES_OK "\"files\":{\"gatehouse.db\":{\"size\":1,\"sha256\":\"@\"},\"audit/audit.log\":{\"size\":2,\"sha256\":\"@\"}}"
#define HEAD "{\"format\":\"gatehouse-backup\",\"version\":1,\"created\":\"t\",\"source\":\"/d\","
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
		{"version 2", "{\"format\":\"gatehouse-backup\",\"version\":2}", "version 2"},
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
		sizeof cases / sizeof *cases - 1, GH_BACKUP_MANIFEST_MAX);
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

struct appender {
	const char *data;
	volatile bool stop;
	int64_t written;
};

/* Another writer of the trail (its own lock, like another process). */
static void *append_loop(void *arg)
{
	struct appender *ap = arg;
	struct gh_audit *a = NULL;
	struct gh_error err;
	if (gh_audit_open(ap->data, &a, &err))
		return NULL;
	while (!ap->stop) {
		struct gh_audit_record r = {.time_ms = gh_now_ms(), .event = "query", .user = "bob", .status = "ok",
					    .rows = -1, .duration_ms = -1};
		if (gh_audit_append(a, &r, NULL, &err) == 0)
			ap->written++;
	}
	gh_audit_close(a);
	return NULL;
}

static void test_backup_while_appending(void **state)
{
	struct fixture *f = *state;
	struct appender ap = {.data = f->data};
	pthread_t th;
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
	}
	ap.stop = true;
	pthread_join(th, NULL);
	free(live);
	assert_true(ap.written > 0);
	expect_verified(f->data, 5 + ap.written);
	CHECKED("6 backups while another writer appended %lld records: each verifies, is a prefix of the live "
		"trail, restores; last seq %lld", (long long)ap.written, (long long)last);
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
};

GH_UNIT_MAIN("test_backup", tests)
