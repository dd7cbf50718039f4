/* Unit tests for src/audit's signed checkpoints (key, line format, file, verification of a copy
 * of the log with the public key alone) and the sinks' record formats (RFC 5424 syslog
 * messages, HTTP batch bodies, the record layout readers follow). */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"

#include "audit/audit.h"
#include "audit/audit_int.h"
#include "store/store.h"
#include "vault/vault.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))
#define DIRLEN 256
#define NREC 12

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

/* A key pair from a fixed seed byte. */
static void seed_key(struct gh_audit_key *k, uint8_t b)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	memset(seed, b, sizeof seed);
	crypto_sign_seed_keypair(k->pk, k->sk, seed);
	gh_audit_key_id(k->pk, k->kid);
}

static const char HASH_A[] = "5375675490b060a1bace9f4004895bd51b8380556aa6a0d088900fe19ca93550";

static void format_line(const struct gh_audit_checkpoint *c, char *out, size_t cap)
{
	struct gh_buf b;
	gh_buf_init(&b, 4096);
	assert_int_equal(gh_audit_checkpoint_format(c, &b), 0);
	assert_true(b.len < cap);
	memcpy(out, b.data, b.len + 1);
	gh_buf_free(&b);
}

static void test_checkpoint_sign_verify(void **state)
{
	(void)state;
	struct gh_audit_key k, other;
	seed_key(&k, 1);
	seed_key(&other, 2);
	struct gh_audit_checkpoint c, back;
	gh_audit_checkpoint_make(&k, 1000, HASH_A, 1700000000123LL, &c);
	assert_int_equal(c.seq, 1000);
	assert_string_equal(c.time, "2023-11-14T22:13:20.123Z");
	assert_string_equal(c.kid, k.kid);
	assert_true(gh_audit_checkpoint_verify(&c, k.pk));
	assert_false(gh_audit_checkpoint_verify(&c, other.pk));

	char line[1024];
	format_line(&c, line, sizeof line);
	assert_true(strncmp(line, "{\"seq\":1000,\"hash\":\"5375", 24) == 0);
	assert_true(line[strlen(line) - 1] == '\n');
	size_t used = 0;
	assert_int_equal(gh_audit_checkpoint_parse((const uint8_t *)line, strlen(line), &used, &back), 0);
	assert_int_equal(used, strlen(line));
	assert_true(back.seq == c.seq && strcmp(back.hash, c.hash) == 0 && strcmp(back.time, c.time) == 0 &&
		    strcmp(back.kid, c.kid) == 0 && memcmp(back.sig, c.sig, 64) == 0);
	assert_true(gh_audit_checkpoint_verify(&back, k.pk));
	/* the message is documented: anyone can check it with a stock Ed25519 library */
	char msg[256];
	snprintf(msg, sizeof msg, "gatehouse-audit-checkpoint:v1:1000:%s:%s", HASH_A, c.time);
	assert_int_equal(crypto_sign_verify_detached(c.sig, (const uint8_t *)msg, strlen(msg), k.pk), 0);

	/* every signed field matters */
	struct gh_audit_checkpoint t = c;
	t.seq = 1001;
	assert_false(gh_audit_checkpoint_verify(&t, k.pk));
	t = c;
	t.hash[0] = '6';
	assert_false(gh_audit_checkpoint_verify(&t, k.pk));
	t = c;
	t.time[22] = '4';
	assert_false(gh_audit_checkpoint_verify(&t, k.pk));
	t = c;
	t.sig[10] ^= 1;
	assert_false(gh_audit_checkpoint_verify(&t, k.pk));
	/* a checkpoint forged with another key, claiming ours */
	gh_audit_checkpoint_make(&other, 1000, HASH_A, 1700000000123LL, &t);
	memcpy(t.kid, k.kid, sizeof t.kid);
	assert_false(gh_audit_checkpoint_verify(&t, k.pk));
	CHECKED("a checkpoint verifies with its key only; seq, hash, time, signature and key each break it");
}

static void test_checkpoint_parse_rejects(void **state)
{
	(void)state;
	struct gh_audit_key k;
	seed_key(&k, 1);
	struct gh_audit_checkpoint c, out;
	gh_audit_checkpoint_make(&k, 7, HASH_A, 1700000000000LL, &c);
	char good[1024], sig[90];
	format_line(&c, good, sizeof good);
	gh_b64url_encode(c.sig, 64, sig, sizeof sig);
	size_t used;
	/* need more: no newline yet */
	assert_int_equal(gh_audit_checkpoint_parse((const uint8_t *)good, strlen(good) - 1, &used, &out), GH_EAGAIN);
	char big[GH_CHECKPOINT_MAX_LINE + 10];
	memset(big, 'x', sizeof big);
	assert_int_equal(gh_audit_checkpoint_parse((const uint8_t *)big, sizeof big, &used, &out), GH_EINVAL);
	char bad[16][600];
	int n = 0;
#define BAD(...) snprintf(bad[n++], sizeof bad[0], __VA_ARGS__)
	BAD("{\"seq\":0,\"hash\":\"%s\",\"time\":\"%s\",\"key\":\"%s\",\"sig\":\"%s\"}\n", HASH_A, c.time, c.kid, sig);
	BAD("{\"seq\":\"7\",\"hash\":\"%s\",\"time\":\"%s\",\"key\":\"%s\",\"sig\":\"%s\"}\n", HASH_A, c.time, c.kid, sig);
	BAD("{\"seq\":7,\"hash\":\"%.63s\",\"time\":\"%s\",\"key\":\"%s\",\"sig\":\"%s\"}\n", HASH_A, c.time, c.kid, sig);
	BAD("{\"seq\":7,\"hash\":\"%s\",\"time\":\"%s\",\"key\":\"%s\",\"sig\":\"%s\"}\n",
	    "5375675490B060A1BACE9F4004895BD51B8380556AA6A0D088900FE19CA93550", c.time, c.kid, sig);
	BAD("{\"seq\":7,\"hash\":\"%s\",\"time\":\"yesterday\",\"key\":\"%s\",\"sig\":\"%s\"}\n", HASH_A, c.kid, sig);
	BAD("{\"seq\":7,\"hash\":\"%s\",\"time\":\"%s\",\"key\":\"%.15s\",\"sig\":\"%s\"}\n", HASH_A, c.time, c.kid, sig);
	BAD("{\"seq\":7,\"hash\":\"%s\",\"time\":\"%s\",\"key\":\"%s\",\"sig\":\"%.85s\"}\n", HASH_A, c.time, c.kid, sig);
	BAD("{\"seq\":7,\"hash\":\"%s\",\"time\":\"%s\",\"key\":\"%s\",\"sig\":\"%.84s==\"}\n", HASH_A, c.time, c.kid, sig);
	BAD("{\"seq\":7,\"hash\":\"%s\",\"time\":\"%s\",\"key\":\"%s\"}\n", HASH_A, c.time, c.kid);
	BAD("{\"seq\":7,\"hash\":\"%s\",\"time\":\"%s\",\"key\":\"%s\",\"sig\":\"%s\",\"x\":1}\n", HASH_A, c.time, c.kid, sig);
	BAD("{\"seq\":7,\"seq\":7,\"hash\":\"%s\",\"time\":\"%s\",\"key\":\"%s\",\"sig\":\"%s\"}\n", HASH_A, c.time, c.kid, sig);
	BAD("[7,\"%s\"]\n", HASH_A);
	BAD("\n");
	BAD("{\"seq\":7,\"hash\":\"%s\",\"time\":\"%s\",\"key\":\"%s\",\"sig\":\"%s\"} x\n", HASH_A, c.time, c.kid, sig);
#undef BAD
	for (int i = 0; i < n; i++) {
		int rc = gh_audit_checkpoint_parse((const uint8_t *)bad[i], strlen(bad[i]), &used, &out);
		if (rc != GH_EINVAL)
			fail_msg("accepted (%d): %s", rc, bad[i]);
	}
	/* two lines in one buffer: the first is parsed, used says where the second starts */
	char two[2048];
	snprintf(two, sizeof two, "%s%s", good, good);
	assert_int_equal(gh_audit_checkpoint_parse((const uint8_t *)two, strlen(two), &used, &out), 0);
	assert_int_equal(used, strlen(good));
	CHECKED("checkpoint lines: need-more vs malformed, %d malformed lines refused, one line at a time", n);
}

static void test_pubkey_pem(void **state)
{
	(void)state;
	struct gh_audit_key k;
	seed_key(&k, 3);
	struct gh_buf b;
	gh_buf_init(&b, 4096);
	assert_int_equal(gh_audit_pubkey_pem(k.pk, &b), 0);
	assert_true(strncmp(b.data, "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA", 42) == 0);
	uint8_t pk[32];
	assert_int_equal(gh_audit_pubkey_parse((const uint8_t *)b.data, b.len, pk), 0);
	assert_memory_equal(pk, k.pk, 32);
	/* line breaks inside the body and CRLF are fine */
	char body[64], crlf[256];
	const char *p = strchr(b.data, '\n') + 1;
	snprintf(body, sizeof body, "%.*s", (int)(strchr(p, '\n') - p), p);
	snprintf(crlf, sizeof crlf, "\r\n-----BEGIN PUBLIC KEY-----\r\n%.30s\r\n%s\r\n-----END PUBLIC KEY-----\r\n\r\n", body,
		 body + 30);
	assert_int_equal(gh_audit_pubkey_parse((const uint8_t *)crlf, strlen(crlf), pk), 0);
	assert_memory_equal(pk, k.pk, 32);
	const char *bad[] = {
		"", "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
		/* X25519 (1.3.101.110), not Ed25519 */
		"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEA3TV/l0LFDHohdMUxdoj4dxYz8ifpOcSagGzoULhm10I=\n-----END PUBLIC KEY-----\n",
		"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA3TV/l0LFDHohdMUxdoj4dxYz8ifpOcSagGzoULhm1\n-----END PUBLIC KEY-----\n",
		"-----BEGIN PRIVATE KEY-----\nMCowBQYDK2VwAyEA3TV/l0LFDHohdMUxdoj4dxYz8ifpOcSagGzoULhm10I=\n-----END PRIVATE KEY-----\n",
		"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA3TV/l0LFDHohdMUxdoj4dxYz8ifpOcSagGzoULhm10I=\n",
		"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA3TV/l0LFDHohdMUxdoj4dxYz8ifpOcSagGzoULhm10I=\n-----END PUBLIC KEY-----\nextra\n",
		"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA3TV/l0LFDHohdMUxdoj4dxYz8ifpOcSagGzoULhm10I=AAAA\n-----END PUBLIC KEY-----\n",
		"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA3TV/l0LFDHohdMUxdoj4dxYz8ifpOcSagGzoULhm10I*\n-----END PUBLIC KEY-----\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (gh_audit_pubkey_parse((const uint8_t *)bad[i], strlen(bad[i]), pk) != GH_EINVAL)
			fail_msg("accepted: %s", bad[i]);
	gh_buf_free(&b);
	CHECKED("public key PEM (SubjectPublicKeyInfo, Ed25519): round trip, CRLF and wrapped bodies, %zu refusals",
		sizeof bad / sizeof *bad);
}

/* A record line with the writer's layout and a correct hash. */
static void make_record(char *out, size_t cap, int64_t seq, const char *fields, const char *prev)
{
	char head[8192];
	snprintf(head, sizeof head, "{\"seq\":%lld,%s,\"prev\":\"%s\"", (long long)seq, fields, prev);
	uint8_t d[32];
	char hex[65];
	crypto_hash_sha256_state hs;
	crypto_hash_sha256_init(&hs);
	crypto_hash_sha256_update(&hs, (const uint8_t *)head, strlen(head));
	crypto_hash_sha256_update(&hs, (const uint8_t *)"}", 1);
	crypto_hash_sha256_final(&hs, d);
	gh_hex_encode(d, 32, hex);
	snprintf(out, cap, "%s,\"hash\":\"%s\"}", head, hex);
}

static void test_syslog_format(void **state)
{
	(void)state;
	char line[8192];
	make_record(line, sizeof line, 7,
		    "\"time\":\"2024-05-01T10:00:00.123Z\",\"event\":\"query\",\"user\":\"al ice\",\"decision\":\"deny\"",
		    GH_AUDIT_ZERO_HASH);
	struct gh_buf b;
	gh_buf_init(&b, 1 << 20);
	assert_int_equal(audit_syslog_format(line, strlen(line), 16, "gw-1.example", 42, &b), 0);
	char want[9000];
	snprintf(want, sizeof want, "<133>1 2024-05-01T10:00:00.123Z gw-1.example gatehouse 42 query - %s", line);
	assert_string_equal(b.data, want);
	/* info for what is not a denial; facility user (1); a hostname that is not PRINTUSASCII */
	make_record(line, sizeof line, 8, "\"time\":\"2024-05-01T10:00:01.000Z\",\"event\":\"token.issue\",\"decision\":\"allow\"",
		    GH_AUDIT_ZERO_HASH);
	gh_buf_reset(&b);
	assert_int_equal(audit_syslog_format(line, strlen(line), 1, "bad host", 1, &b), 0);
	assert_true(strncmp(b.data, "<14>1 2024-05-01T10:00:01.000Z - gatehouse 1 token.issue - {\"seq\":8,", 67) == 0);
	/* a MSGID longer than 32 characters, or with a space, becomes "-" */
	make_record(line, sizeof line, 9, "\"time\":\"2024-05-01T10:00:01.000Z\",\"event\":\"a b\"", GH_AUDIT_ZERO_HASH);
	gh_buf_reset(&b);
	assert_int_equal(audit_syslog_format(line, strlen(line), 16, "h", 1, &b), 0);
	assert_true(strncmp(b.data, "<134>1 2024-05-01T10:00:01.000Z h gatehouse 1 - - {", 51) == 0);
	/* a record too long for a datagram: a stub that names it */
	size_t bigcap = GH_SINK_SYSLOG_MAX + 4096;
	char *big = malloc(bigcap), *fields = malloc(bigcap);
	assert_non_null(big);
	assert_non_null(fields);
	int k = snprintf(fields, bigcap, "\"time\":\"2024-05-01T10:00:02.000Z\",\"event\":\"query\",\"statement\":\"");
	memset(fields + k, 'x', GH_SINK_SYSLOG_MAX);
	snprintf(fields + k + GH_SINK_SYSLOG_MAX, bigcap - (size_t)k - GH_SINK_SYSLOG_MAX, "\"");
	/* make_record's stack buffer is small: build this one by hand */
	snprintf(big, bigcap, "{\"seq\":10,%s,\"prev\":\"%s\"", fields, GH_AUDIT_ZERO_HASH);
	size_t bl = strlen(big);
	snprintf(big + bl, bigcap - bl, ",\"hash\":\"%s\"}", HASH_A);
	gh_buf_reset(&b);
	assert_int_equal(audit_syslog_format(big, strlen(big), 16, "h", 1, &b), 0);
	snprintf(want, sizeof want, "<134>1 2024-05-01T10:00:02.000Z h gatehouse 1 query - {\"seq\":10,\"hash\":\"%s\","
		 "\"truncated\":true}", HASH_A);
	assert_string_equal(b.data, want);
	free(big);
	free(fields);
	/* not JSON at all: nil fields, the text as it is */
	gh_buf_reset(&b);
	assert_int_equal(audit_syslog_format("not json", 8, 16, "h", 1, &b), 0);
	assert_string_equal(b.data, "<134>1 - h gatehouse 1 - - not json");
	gh_buf_free(&b);
	CHECKED("RFC 5424 framing: PRI from facility and decision, timestamp, hostname, MSGID, nil SD, the record "
		"as MSG; a stub for records over %d bytes", GH_SINK_SYSLOG_MAX);
}

static void test_http_batch(void **state)
{
	(void)state;
	char l1[4096], l2[4096], l3[4096];
	make_record(l1, sizeof l1, 1, "\"time\":\"t\",\"event\":\"data.init\"", GH_AUDIT_ZERO_HASH);
	make_record(l2, sizeof l2, 2, "\"time\":\"t\",\"event\":\"query\",\"statement\":\"SELECT '\\\"]'\"", HASH_A);
	make_record(l3, sizeof l3, 3, "\"time\":\"t\",\"event\":\"query\",\"params\":[1,{\"a\":null}]", HASH_A);
	struct gh_buf b;
	gh_buf_init(&b, 1 << 20);
	assert_int_equal(audit_http_close(&b), 0);
	assert_string_equal(b.data, "[]");
	gh_buf_reset(&b);
	assert_int_equal(audit_http_add(&b, l1, strlen(l1)), 0);
	assert_int_equal(audit_http_add(&b, l2, strlen(l2)), 0);
	assert_int_equal(audit_http_add(&b, l3, strlen(l3)), 0);
	assert_int_equal(audit_http_close(&b), 0);
	json_error_t je;
	json_t *arr = json_loads(b.data, JSON_REJECT_DUPLICATES, &je);
	assert_true(json_is_array(arr) && json_array_size(arr) == 3);
	const char *lines[] = {l1, l2, l3};
	for (size_t i = 0; i < 3; i++) {
		json_t *one = json_loads(lines[i], 0, &je);
		assert_true(json_equal(json_array_get(arr, i), one));
		json_decref(one);
	}
	json_decref(arr);
	/* the records are in the body byte for byte, so a receiver can check their hashes */
	assert_non_null(strstr(b.data, l2));
	gh_buf_free(&b);
	CHECKED("HTTP batch body: a JSON array of the records exactly as logged; [] when empty");
}

static void test_line_check(void **state)
{
	(void)state;
	char l[4096], prev[65], hash[65];
	const char *why = NULL;
	int64_t seq = 0;
	make_record(l, sizeof l, 41, "\"time\":\"t\",\"event\":\"query\"", HASH_A);
	assert_int_equal(audit_line_check(l, strlen(l), &seq, prev, hash, &why), 0);
	assert_int_equal(seq, 41);
	assert_string_equal(prev, HASH_A);
	assert_memory_equal(hash, l + strlen(l) - 66, 64);
	char e[4096];
	snprintf(e, sizeof e, "%s", l);
	e[25] ^= 1; /* an edited byte */
	assert_int_equal(audit_line_check(e, strlen(e), &seq, prev, hash, &why), GH_EINVAL);
	assert_non_null(strstr(why, "edited"));
	assert_int_equal(audit_line_check(l, strlen(l) - 1, &seq, prev, hash, &why), GH_EINVAL);
	make_record(e, sizeof e, 0, "\"time\":\"t\"", HASH_A);
	assert_int_equal(audit_line_check(e, strlen(e), &seq, prev, hash, &why), GH_EINVAL);
	assert_int_equal(audit_line_check("{}", 2, &seq, prev, hash, &why), GH_EINVAL);
	CHECKED("the record layout followers read: seq, prev, hash checked; edits, cuts and seq 0 refused");
}

/* ---- a data directory with a real log and checkpoints ---- */

struct fixture {
	char dir[DIRLEN];
	char log[PATH_MAX], ckpts[PATH_MAX];
	uint8_t master[32];
	struct gh_audit_key key;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/gh_test_audit_sink_XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	char path[PATH_MAX];
	struct gh_error err;
	gh_error_clear(&err);
	snprintf(path, sizeof path, "%s/gatehouse.db", f->dir);
	if (gh_store_create(path, &err))
		return -1;
	snprintf(path, sizeof path, "%s/audit", f->dir);
	mkdir(path, 0700);
	snprintf(f->log, sizeof f->log, "%s/audit/audit.log", f->dir);
	snprintf(f->ckpts, sizeof f->ckpts, "%s/audit/checkpoints", f->dir);
	randombytes_buf(f->master, sizeof f->master);
	struct gh_store *st = NULL;
	snprintf(path, sizeof path, "%s/gatehouse.db", f->dir);
	if (gh_store_open(path, true, &st, &err) || gh_audit_key_load(st, f->master, true, &f->key, &err)) {
		fprintf(stderr, "setup: %s\n", err.message);
		gh_store_close(st);
		return -1;
	}
	gh_store_close(st);
	/* NREC records, checkpoints at 4, 8 and 12 */
	struct gh_audit *a = NULL;
	if (gh_audit_open(f->dir, &a, &err))
		return -1;
	for (int i = 1; i <= NREC; i++) {
		char stmt[64];
		snprintf(stmt, sizeof stmt, "SELECT %d", i);
		struct gh_audit_record r = {.time_ms = 1700000000000LL + i, .request_id = "req_1", .event = "query",
					    .user = "alice", .statement = stmt, .decision = "allow", .status = "ok",
					    .rows = i, .duration_ms = -1, .client = "127.0.0.1"};
		int64_t seq = 0;
		if (gh_audit_append(a, &r, &seq, &err) || seq != i)
			return -1;
	}
	gh_audit_close(a);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	gh_audit_key_wipe(&f->key);
	rm_rf(f->dir);
	free(f);
	return 0;
}

/* The hashes of the log's records, by seq (1-based). */
static void read_hashes(const char *log, char hashes[][65], int max)
{
	FILE *fp = fopen(log, "r");
	assert_non_null(fp);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int i = 1;
	while ((n = getline(&line, &cap, fp)) > 0 && i <= max) {
		memcpy(hashes[i], line + n - 1 - 66, 64);
		hashes[i][64] = '\0';
		i++;
	}
	free(line);
	fclose(fp);
}

static void add_checkpoint(const char *path, const struct gh_audit_key *k, int64_t seq, const char *hash)
{
	struct gh_audit_checkpoint c;
	struct gh_error err;
	gh_error_clear(&err);
	gh_audit_checkpoint_make(k, seq, hash, 1700000001000LL + seq, &c);
	if (gh_audit_checkpoint_append(path, &c, &err))
		fail_msg("append: %s", err.message);
}

static struct gh_audit_report verify_pub(const char *log, const char *ckpts, const uint8_t pk[32])
{
	struct gh_audit_report rep;
	struct gh_error err;
	gh_error_clear(&err);
	if (gh_audit_verify_public(log, ckpts, pk, &rep, &err))
		fail_msg("could not check: %s", err.message);
	return rep;
}

static void copy_file(const char *from, const char *to, size_t keep_lines)
{
	FILE *in = fopen(from, "r"), *out = fopen(to, "w");
	assert_non_null(in);
	assert_non_null(out);
	char *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t got;
	while ((got = getline(&line, &cap, in)) > 0 && n++ < keep_lines)
		fwrite(line, 1, (size_t)got, out);
	free(line);
	fclose(in);
	fclose(out);
}

static void test_key_in_store(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];
	struct gh_store *st = NULL;
	struct gh_error err;
	gh_error_clear(&err);
	snprintf(path, sizeof path, "%s/gatehouse.db", f->dir);
	assert_int_equal(gh_store_open(path, true, &st, &err), 0);
	struct gh_audit_key again;
	assert_int_equal(gh_audit_key_load(st, f->master, true, &again, &err), 0);
	assert_memory_equal(again.pk, f->key.pk, 32);
	assert_memory_equal(again.sk, f->key.sk, 64);
	gh_audit_key_wipe(&again);
	uint8_t pk[32], wrong[32];
	assert_int_equal(gh_audit_key_public(st, pk), 0);
	assert_memory_equal(pk, f->key.pk, 32);
	memcpy(wrong, f->master, 32);
	wrong[0] ^= 1;
	assert_int_equal(gh_audit_key_load(st, wrong, false, &again, &err), GH_EDENIED);
	gh_store_close(st);
	CHECKED("the checkpoint key is made once, kept sealed, opens only with the master key");
}

static void test_verify_public(void **state)
{
	struct fixture *f = *state;
	char hashes[NREC + 1][65];
	read_hashes(f->log, hashes, NREC);
	add_checkpoint(f->ckpts, &f->key, 4, hashes[4]);
	add_checkpoint(f->ckpts, &f->key, 8, hashes[8]);
	struct stat before, after;
	assert_int_equal(stat(f->ckpts, &before), 0);
	add_checkpoint(f->ckpts, &f->key, 8, hashes[8]); /* not beyond the last: skipped */
	add_checkpoint(f->ckpts, &f->key, 5, hashes[5]);
	assert_int_equal(stat(f->ckpts, &after), 0);
	assert_int_equal(before.st_size, after.st_size);

	struct gh_audit_report rep = verify_pub(f->log, f->ckpts, f->key.pk);
	if (!rep.ok)
		fail_msg("verify: %s", rep.reason);
	assert_int_equal(rep.records, NREC);
	assert_int_equal(rep.checkpoints, 2);
	assert_int_equal(rep.last_checkpoint, 8);
	struct gh_audit_report drep;
	struct gh_error err;
	gh_error_clear(&err);
	assert_int_equal(gh_audit_verify(f->dir, &drep, &err), 0);
	assert_true(drep.ok && drep.records == NREC && drep.checkpoints == 2);
	CHECKED("a log with two checkpoints verifies with the public key alone and with the data directory");

	char copy[PATH_MAX], cks[PATH_MAX];
	snprintf(copy, sizeof copy, "%s/copy.log", f->dir);
	snprintf(cks, sizeof cks, "%s/copy.checkpoints", f->dir);

	/* truncated before the last checkpoint */
	copy_file(f->log, copy, 7);
	rep = verify_pub(copy, f->ckpts, f->key.pk);
	assert_false(rep.ok);
	assert_non_null(strstr(rep.reason, "checkpoint covers seq 8"));
	/* truncated after it: the chain still holds and the checkpoints match */
	copy_file(f->log, copy, 10);
	rep = verify_pub(copy, f->ckpts, f->key.pk);
	assert_true(rep.ok && rep.records == 10 && rep.last_checkpoint == 8);
	CHECKED("a log cut before the last checkpoint fails; cut after it, the missing tail is not knowable");

	/* the other key */
	struct gh_audit_key other;
	seed_key(&other, 9);
	rep = verify_pub(f->log, f->ckpts, other.pk);
	assert_false(rep.ok);
	assert_int_equal(rep.bad_checkpoint_line, 1);
	/* a checkpoint forged with another key */
	copy_file(f->ckpts, cks, 100);
	add_checkpoint(cks, &other, 12, hashes[12]);
	rep = verify_pub(f->log, cks, f->key.pk);
	assert_false(rep.ok);
	assert_int_equal(rep.bad_checkpoint_line, 3);
	assert_non_null(strstr(rep.reason, "signature"));
	CHECKED("checkpoints signed by another key fail, naming the checkpoints line");

	/* a checkpoint for a hash the log does not have */
	unlink(cks);
	add_checkpoint(cks, &f->key, 4, hashes[5]);
	rep = verify_pub(f->log, cks, f->key.pk);
	assert_false(rep.ok);
	assert_int_equal(rep.bad_seq, 4);
	/* out of order */
	unlink(cks);
	copy_file(f->ckpts, cks, 100);
	FILE *fp = fopen(cks, "a");
	assert_non_null(fp);
	struct gh_audit_checkpoint c;
	struct gh_buf b;
	gh_buf_init(&b, 1024);
	gh_audit_checkpoint_make(&f->key, 6, hashes[6], 1, &c);
	gh_audit_checkpoint_format(&c, &b);
	fputs(b.data, fp);
	fclose(fp);
	gh_buf_free(&b);
	rep = verify_pub(f->log, cks, f->key.pk);
	assert_false(rep.ok);
	assert_non_null(strstr(rep.reason, "out of order"));
	/* an edited checkpoint line */
	unlink(cks);
	copy_file(f->ckpts, cks, 100);
	int fd = open(cks, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "9", 1, 7), 1); /* {"seq":4 -> {"seq":9 */
	close(fd);
	rep = verify_pub(f->log, cks, f->key.pk);
	assert_false(rep.ok);
	assert_int_equal(rep.bad_checkpoint_line, 1);
	/* no checkpoints at all */
	unlink(cks);
	rep = verify_pub(f->log, cks, f->key.pk);
	assert_false(rep.ok);
	assert_non_null(strstr(rep.reason, "no signed checkpoint"));
	CHECKED("a checkpoint off the chain, out of order, edited, or none at all: each fails");

	/* the whole log rewritten with a consistent chain: only the checkpoints catch it */
	FILE *in = fopen(f->log, "r"), *out = fopen(copy, "w");
	assert_non_null(in);
	assert_non_null(out);
	char *line = NULL, prevh[65] = GH_AUDIT_ZERO_HASH;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, in)) > 0) {
		line[n - 1] = '\0';
		char *body_end = line + n - 1 - GH_AUDIT_HASH_SUFFIX_LEN - GH_AUDIT_PREV_MEMBER_LEN;
		*body_end = '\0';
		char *sel = strstr(line, "SELECT 3\"");
		if (sel)
			sel[7] = '9'; /* the forger's edit */
		char head[8192];
		snprintf(head, sizeof head, "%s,\"prev\":\"%s\"", line, prevh);
		uint8_t d[32];
		crypto_hash_sha256_state hs;
		crypto_hash_sha256_init(&hs);
		crypto_hash_sha256_update(&hs, (const uint8_t *)head, strlen(head));
		crypto_hash_sha256_update(&hs, (const uint8_t *)"}", 1);
		crypto_hash_sha256_final(&hs, d);
		gh_hex_encode(d, 32, prevh);
		fprintf(out, "%s,\"hash\":\"%s\"}\n", head, prevh);
	}
	free(line);
	fclose(in);
	fclose(out);
	rep = verify_pub(copy, f->ckpts, f->key.pk);
	assert_false(rep.ok);
	assert_int_equal(rep.bad_seq, 4);
	assert_non_null(strstr(rep.reason, "rewritten"));
	CHECKED("a log rewritten with a recomputed chain fails at the first checkpoint after the edit");
}

static int no_secret(void *arg, const char *name, char *out, size_t cap)
{
	(void)arg;
	(void)name;
	(void)out;
	(void)cap;
	return GH_ENOTFOUND;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* The sinks in this process: a syslog sink to a UDP socket of the test, one to a unix socket
 * that does not exist, and the checkpointer; the counters say what happened. */
static void test_sinks_in_process(void **state)
{
	struct fixture *f = *state;
	int us = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sin;
	assert_int_equal(bind(us, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(getsockname(us, (struct sockaddr *)&sin, &sl), 0);
	struct timeval tv = {0, 200000};
	setsockopt(us, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char udp[64], nowhere[PATH_MAX];
	snprintf(udp, sizeof udp, "udp:127.0.0.1:%d", ntohs(sin.sin_port));
	snprintf(nowhere, sizeof nowhere, "%s/no-such-socket", f->dir);
	struct gh_policy_sink sinks[2] = {
		{.name = "udp", .kind = GH_SINK_SYSLOG, .batch = 3, .retry_max = 1, .facility = 16, .address = udp},
		{.name = "gone", .kind = GH_SINK_SYSLOG, .batch = 100, .retry_max = 1, .facility = 16, .address = nowhere},
	};
	struct gh_policy_audit cfg = {.checkpoint_every = 4, .sinks = sinks, .nsinks = 2};
	struct gh_audit_sinks *s = NULL;
	struct gh_error err;
	gh_error_clear(&err);
	if (gh_audit_sinks_open(f->dir, &cfg, f->master, no_secret, NULL, &s, &err) ||
	    gh_audit_sinks_start(s, &err))
		fail_msg("sinks: %s", err.message);
	struct gh_audit_sink_stats st[4];
	uint64_t written = 0, ckfail = 0;
	int64_t last = 0;
	bool done = false;
	for (int i = 0; i < 200 && !done; i++) {
		sleep_ms(25);
		size_t n = gh_audit_sinks_stats(s, st, 4);
		assert_int_equal(n, 2);
		gh_audit_sinks_checkpoint_stats(s, &written, &last, &ckfail);
		done = st[0].delivered == NREC && st[1].failures >= 2 && written == 3;
	}
	if (!done)
		fail_msg("delivered %llu, failures %llu, checkpoints %llu (last %lld)", (unsigned long long)st[0].delivered,
			 (unsigned long long)st[1].failures, (unsigned long long)written, (long long)last);
	assert_string_equal(st[0].name, "udp");
	assert_string_equal(st[0].kind, "syslog");
	assert_true(st[0].position == NREC && st[0].lag == 0 && !st[0].failing && st[0].failures == 0);
	assert_true(st[1].delivered == 0 && st[1].position == 0 && st[1].lag == NREC && st[1].failing);
	assert_true(written == 3 && last == NREC && ckfail == 0);
	char buf[8192];
	int got = 0;
	for (;;) {
		ssize_t r = recv(us, buf, sizeof buf - 1, 0);
		if (r <= 0)
			break;
		buf[r] = '\0';
		char want[32];
		snprintf(want, sizeof want, "{\"seq\":%d,", got + 1);
		assert_non_null(strstr(buf, want));
		assert_true(strncmp(buf, "<134>1 ", 7) == 0);
		got++;
	}
	assert_int_equal(got, NREC);
	/* two more records from another writer (an operator verb): picked up from the file */
	struct gh_audit *a = NULL;
	assert_int_equal(gh_audit_open(f->dir, &a, &err), 0);
	for (int i = 0; i < 2; i++) {
		struct gh_audit_record r = {.time_ms = 1700000009000LL, .event = "token.issue", .status = "ok",
					    .rows = -1, .duration_ms = -1};
		assert_int_equal(gh_audit_append(a, &r, NULL, &err), 0);
	}
	gh_audit_close(a);
	for (int i = 0; i < 200; i++) {
		sleep_ms(25);
		gh_audit_sinks_stats(s, st, 4);
		if (st[0].delivered == NREC + 2)
			break;
	}
	assert_int_equal(st[0].delivered, NREC + 2);
	assert_int_equal(st[1].lag, NREC + 2);
	gh_audit_sinks_close(s);
	struct gh_audit_checkpoint c;
	assert_int_equal(gh_audit_checkpoint_last(f->ckpts, &c, &err), 0);
	assert_int_equal(c.seq, NREC + 2); /* the shutdown checkpoint */
	assert_true(gh_audit_checkpoint_verify(&c, f->key.pk));
	/* positions are kept: the working sink at the end, the dead one at the start */
	char path[PATH_MAX], hash[65];
	struct gh_store *store = NULL;
	int64_t seq = -1, off = -1;
	snprintf(path, sizeof path, "%s/gatehouse.db", f->dir);
	assert_int_equal(gh_store_open(path, true, &store, &err), 0);
	assert_int_equal(gh_store_audit_position_get(store, "udp", &seq, &off, hash), 0);
	assert_int_equal(seq, NREC + 2);
	struct stat lst;
	assert_int_equal(stat(f->log, &lst), 0);
	assert_int_equal(off, lst.st_size);
	assert_int_equal(gh_store_audit_position_get(store, "gone", &seq, &off, hash), GH_ENOTFOUND);
	assert_int_equal(gh_store_audit_position_get(store, "#checkpoints", &seq, &off, hash), 0);
	assert_int_equal(seq, NREC + 2);
	gh_store_close(store);
	close(us);
	struct gh_audit_report rep = verify_pub(f->log, f->ckpts, f->key.pk);
	assert_true(rep.ok && rep.checkpoints == 4 && rep.last_checkpoint == NREC + 2);
	CHECKED("in process: a syslog sink delivers %d records in batches of 3 and 2 more from another writer; a dead "
		"one counts failures and lag; checkpoints at 4, 8, 12 and at close (14); positions kept", NREC);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test_setup_teardown(test_sinks_in_process, setup, teardown),
	cmocka_unit_test(test_checkpoint_sign_verify),
	cmocka_unit_test(test_checkpoint_parse_rejects),
	cmocka_unit_test(test_pubkey_pem),
	cmocka_unit_test(test_syslog_format),
	cmocka_unit_test(test_http_batch),
	cmocka_unit_test(test_line_check),
	cmocka_unit_test_setup_teardown(test_key_in_store, setup, teardown),
	cmocka_unit_test_setup_teardown(test_verify_public, setup, teardown),
};

GH_UNIT_MAIN("test_audit_sink", tests)
