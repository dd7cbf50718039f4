/* Unit tests for src/audit: the hash-chained log, its verification against tampering, torn
 * records, truncation, several writers, and the group-commit writer thread. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "store/store.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))
#define NREC 6

#define DIRLEN 256

struct fixture {
	char dir[DIRLEN];
};

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

/* A fresh data directory with a store and an audit folder. */
static void make_datadir(char dir[DIRLEN], size_t dirlen)
{
	snprintf(dir, dirlen, "/tmp/gh_test_audit_XXXXXX");
	assert_non_null(mkdtemp(dir));
	char path[PATH_MAX];
	struct gh_error err;
	gh_error_clear(&err);
	snprintf(path, sizeof path, "%s/gatehouse.db", dir);
	if (gh_store_create(path, &err) != 0)
		fail_msg("gh_store_create: %s", err.message);
	snprintf(path, sizeof path, "%s/audit", dir);
	assert_int_equal(mkdir(path, 0700), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	make_datadir(f->dir, sizeof f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	rm_rf(f->dir);
	free(f);
	return 0;
}

static void fill_record(struct gh_audit_record *r, int i, char *stmt, size_t stmtlen)
{
	memset(r, 0, sizeof *r);
	snprintf(stmt, stmtlen, "SELECT %d FROM t WHERE name = 'x\"y'", i);
	r->time_ms = 1700000000000LL + i;
	r->request_id = "req_1";
	r->event = "query";
	r->user = "alice";
	r->groups = "analysts,engineers";
	r->app = "invoices";
	r->environment = "staging";
	r->resource = "crm";
	r->statement = stmt;
	r->params_json = "[1,\"a\"]";
	r->class_name = "read";
	r->tables_json = "[\"t\"]";
	r->decision = "allow";
	r->rule = "grant:crm/staging/group:analysts/use";
	r->status = "ok";
	r->rows = i;
	r->duration_ms = 1.25;
	r->client = "127.0.0.1";
}

static struct gh_audit *open_ok(const char *dir)
{
	struct gh_audit *a = NULL;
	struct gh_error err;
	gh_error_clear(&err);
	if (gh_audit_open(dir, &a, &err) != 0)
		fail_msg("gh_audit_open: %s", err.message);
	assert_non_null(a);
	return a;
}

static void append_n(struct gh_audit *a, int from, int n)
{
	for (int i = from; i < from + n; i++) {
		struct gh_audit_record r;
		char stmt[128];
		fill_record(&r, i, stmt, sizeof stmt);
		int64_t seq = -1;
		struct gh_error err;
		gh_error_clear(&err);
		if (gh_audit_append(a, &r, &seq, &err) != 0)
			fail_msg("gh_audit_append: %s", err.message);
		assert_true(seq == i);
	}
}

static struct gh_audit_report verify(const char *dir)
{
	struct gh_audit_report rep;
	struct gh_error err;
	gh_error_clear(&err);
	if (gh_audit_verify(dir, &rep, &err) != 0)
		fail_msg("gh_audit_verify could not check: %s", err.message);
	return rep;
}

static void expect_ok(const char *dir, int64_t records)
{
	struct gh_audit_report rep = verify(dir);
	if (!rep.ok)
		fail_msg("verify failed at line %lld seq %lld: %s", (long long)rep.bad_line, (long long)rep.bad_seq,
			 rep.reason);
	assert_true(rep.records == records);
}

static void expect_bad(const char *what, const char *dir, int64_t line, int64_t seq, const char *needle)
{
	struct gh_audit_report rep = verify(dir);
	printf("  %-48s -> ok=%d line %lld seq %lld: %s\n", what, rep.ok, (long long)rep.bad_line, (long long)rep.bad_seq,
	       rep.reason);
	if (rep.ok)
		fail_msg("%s: verify passed", what);
	if (rep.bad_line != line || rep.bad_seq != seq)
		fail_msg("%s: reported line %lld seq %lld, want line %lld seq %lld", what, (long long)rep.bad_line,
			 (long long)rep.bad_seq, (long long)line, (long long)seq);
	if (needle && !strstr(rep.reason, needle))
		fail_msg("%s: reason '%s' lacks '%s'", what, rep.reason, needle);
}

/* Reads DIR/audit/audit.log. */
static char *read_log(const char *dir, size_t *len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/audit/audit.log", dir);
	char *text = NULL;
	struct gh_error err;
	if (gh_read_file(path, 1 << 26, &text, len, &err) != 0)
		fail_msg("%s", err.message);
	return text;
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void copy_file(const char *from, const char *to)
{
	char *text = NULL;
	size_t len = 0;
	struct gh_error err;
	if (gh_read_file(from, 1 << 26, &text, &len, &err) != 0)
		fail_msg("%s", err.message);
	write_file(to, text, len);
	free(text);
}

/* A copy of src's data directory whose log is `log` (the store is copied as it is). */
static void make_copy(const char *src, char dst[DIRLEN], size_t dstlen, const char *log, size_t loglen)
{
	snprintf(dst, dstlen, "/tmp/gh_test_audit_copy_XXXXXX");
	assert_non_null(mkdtemp(dst));
	char a[PATH_MAX], b[PATH_MAX];
	static const char *const files[] = {"gatehouse.db", "gatehouse.db-wal", "gatehouse.db-shm"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(a, sizeof a, "%s/%s", src, files[i]);
		snprintf(b, sizeof b, "%s/%s", dst, files[i]);
		if (access(a, F_OK) == 0)
			copy_file(a, b);
	}
	snprintf(b, sizeof b, "%s/audit", dst);
	assert_int_equal(mkdir(b, 0700), 0);
	snprintf(b, sizeof b, "%s/audit/audit.log", dst);
	write_file(b, log, loglen);
}

/* Splits text into lines (each keeps its '\n'); returns the count. */
static int split_lines(char *text, size_t len, char **lines, size_t *lens, int max)
{
	int n = 0;
	size_t s = 0;
	for (size_t i = 0; i < len && n < max; i++)
		if (text[i] == '\n') {
			lines[n] = text + s;
			lens[n] = i + 1 - s;
			n++;
			s = i + 1;
		}
	return n;
}

/* Joins lines in the given order (indexes into lines; -1 ends). */
static void join_lines(struct gh_buf *out, char **lines, size_t *lens, const int *order)
{
	gh_buf_reset(out);
	for (int i = 0; order[i] >= 0; i++)
		assert_int_equal(gh_buf_append(out, lines[order[i]], lens[order[i]]), 0);
}

static void sha256_hex(const char *p, size_t n, char out[65])
{
	uint8_t d[32];
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)p, n);
	crypto_hash_sha256_update(&st, (const uint8_t *)"}", 1);
	crypto_hash_sha256_final(&st, d);
	gh_hex_encode(d, 32, out);
}

/* ---- tests ---- */

static void test_format(void **state)
{
	(void)state;
	struct gh_audit_record r;
	char stmt[128];
	fill_record(&r, 3, stmt, sizeof stmt);
	r.detail_json = "{\"approval\":\"apr_1\"}";
	struct gh_buf b;
	gh_buf_init(&b, 1 << 16);
	assert_int_equal(gh_audit_format(&r, &b), 0);
	struct gh_buf doc;
	gh_buf_init(&doc, 1 << 16);
	assert_int_equal(gh_buf_printf(&doc, "{%s}", b.data), 0);
	json_error_t je;
	json_t *v = json_loadb(doc.data, doc.len, JSON_REJECT_DUPLICATES, &je);
	if (!v)
		fail_msg("not JSON: %s: %s", je.text, doc.data);
	assert_string_equal(json_string_value(json_object_get(v, "time")), "2023-11-14T22:13:20.003Z");
	assert_string_equal(json_string_value(json_object_get(v, "statement")), stmt);
	assert_int_equal(json_array_size(json_object_get(v, "groups")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(v, "groups"), 1)), "engineers");
	assert_int_equal(json_array_size(json_object_get(v, "params")), 2);
	assert_int_equal(json_integer_value(json_object_get(v, "rows")), 3);
	assert_string_equal(json_string_value(json_object_get(json_object_get(v, "detail"), "approval")), "apr_1");
	json_decref(v);

	/* NULLs and "not applicable" values */
	memset(&r, 0, sizeof r);
	r.rows = -1;
	r.duration_ms = -1;
	r.app = "";
	r.groups = ",,a,,";
	gh_buf_reset(&b);
	assert_int_equal(gh_audit_format(&r, &b), 0);
	gh_buf_reset(&doc);
	assert_int_equal(gh_buf_printf(&doc, "{%s}", b.data), 0);
	v = json_loadb(doc.data, doc.len, JSON_REJECT_DUPLICATES, &je);
	assert_non_null(v);
	assert_true(json_is_null(json_object_get(v, "user")));
	assert_true(json_is_null(json_object_get(v, "app")));
	assert_true(json_is_null(json_object_get(v, "params")));
	assert_true(json_is_null(json_object_get(v, "rows")));
	assert_true(json_is_null(json_object_get(v, "duration_ms")));
	assert_null(json_object_get(v, "detail"));
	assert_int_equal(json_array_size(json_object_get(v, "groups")), 1);
	json_decref(v);
	gh_buf_free(&b);
	gh_buf_free(&doc);
	CHECKED("gh_audit_format writes valid JSON members, nulls and the groups array");
}

static void test_append_verify(void **state)
{
	struct fixture *f = *state;
	expect_ok(f->dir, 0); /* no log yet, store head 0 */
	struct gh_audit *a = open_ok(f->dir);
	append_n(a, 1, NREC);
	uint64_t recs = 0, syncs = 0;
	gh_audit_stats(a, &recs, &syncs);
	assert_int_equal(recs, NREC);
	assert_int_equal(syncs, NREC);
	gh_audit_close(a);
	expect_ok(f->dir, NREC);

	/* the lines chain: seq 1..N, prev of each = hash of the one before */
	size_t len = 0;
	char *text = read_log(f->dir, &len);
	char *lines[16];
	size_t lens[16];
	int n = split_lines(text, len, lines, lens, 16);
	assert_int_equal(n, NREC);
	char prev[65] = "0000000000000000000000000000000000000000000000000000000000000000";
	for (int i = 0; i < n; i++) {
		json_t *v = json_loadb(lines[i], lens[i] - 1, JSON_REJECT_DUPLICATES, NULL);
		assert_non_null(v);
		assert_int_equal(json_integer_value(json_object_get(v, "seq")), i + 1);
		assert_string_equal(json_string_value(json_object_get(v, "prev")), prev);
		char h[65];
		sha256_hex(lines[i], lens[i] - 1 - 75, h);
		assert_string_equal(json_string_value(json_object_get(v, "hash")), h);
		memcpy(prev, h, 65);
		json_decref(v);
	}
	free(text);

	/* reopening continues the chain */
	a = open_ok(f->dir);
	append_n(a, NREC + 1, 2);
	gh_audit_close(a);
	expect_ok(f->dir, NREC + 2);
	CHECKED("append N records, verify ok with N; hashes recomputed independently; reopen continues");
}

struct read_ctx {
	int n;
	int64_t seqs[16];
};

static int read_cb(const char *line, size_t len, void *arg)
{
	struct read_ctx *c = arg;
	json_t *v = json_loadb(line, len, 0, NULL);
	assert_non_null(v);
	c->seqs[c->n++] = json_integer_value(json_object_get(v, "seq"));
	json_decref(v);
	return 0;
}

static void test_read(void **state)
{
	struct fixture *f = *state;
	struct gh_audit *a = open_ok(f->dir);
	append_n(a, 1, NREC);
	gh_audit_close(a);
	struct read_ctx c = {0};
	struct gh_error err;
	assert_int_equal(gh_audit_read(f->dir, 2, 3, read_cb, &c, &err), 0);
	assert_int_equal(c.n, 3);
	assert_true(c.seqs[0] == 3 && c.seqs[1] == 4 && c.seqs[2] == 5);
	memset(&c, 0, sizeof c);
	assert_int_equal(gh_audit_read(f->dir, NREC, 10, read_cb, &c, &err), 0);
	assert_int_equal(c.n, 0);
	CHECKED("gh_audit_read since/limit");
}

/* Builds the original log once per test and runs one tampering on a copy. */
struct tamper {
	char *text;
	size_t len;
	char *lines[16];
	size_t lens[16];
	int n;
};

static void tamper_setup(struct fixture *f, struct tamper *t)
{
	struct gh_audit *a = open_ok(f->dir);
	append_n(a, 1, NREC);
	gh_audit_close(a);
	expect_ok(f->dir, NREC);
	t->text = read_log(f->dir, &t->len);
	t->n = split_lines(t->text, t->len, t->lines, t->lens, 16);
	assert_int_equal(t->n, NREC);
}

static void check_copy(struct fixture *f, const char *what, const char *log, size_t loglen, int64_t line, int64_t seq,
		       const char *needle)
{
	char copy[DIRLEN];
	make_copy(f->dir, copy, sizeof copy, log, loglen);
	expect_bad(what, copy, line, seq, needle);
	rm_rf(copy);
}

static void test_tamper_edit_byte(void **state)
{
	struct fixture *f = *state;
	struct tamper t;
	tamper_setup(f, &t);
	/* "SELECT 3 FROM" -> "SELECT 4 FROM" inside record 3 */
	char *copy = gh_strndup(t.text, t.len);
	char *p = strstr(copy, "SELECT 3 FROM");
	assert_non_null(p);
	p[7] = '4';
	check_copy(f, "one byte edited in record 3", copy, t.len, 3, 3, "edited");
	free(copy);
	/* a byte inside the hash itself */
	copy = gh_strndup(t.text, t.len);
	char *line2 = copy + (t.lines[1] - t.text);
	char *h = line2 + t.lens[1] - 1 - 3;
	*h = *h == 'a' ? 'b' : 'a';
	check_copy(f, "one hex digit of record 2's hash edited", copy, t.len, 2, 2, "edited");
	free(copy);
	/* the seq number of record 4 */
	copy = gh_strndup(t.text, t.len);
	p = copy + (t.lines[3] - t.text);
	assert_int_equal(strncmp(p, "{\"seq\":4,", 9), 0);
	p[7] = '9';
	check_copy(f, "seq of record 4 edited", copy, t.len, 4, 9, "edited");
	free(copy);
	free(t.text);
	CHECKED("an edited byte is found at its line and seq");
}

static void test_tamper_delete_insert_swap(void **state)
{
	struct fixture *f = *state;
	struct tamper t;
	tamper_setup(f, &t);
	struct gh_buf b;
	gh_buf_init(&b, 1 << 20);
	static const int del[] = {0, 1, 3, 4, 5, -1};
	join_lines(&b, t.lines, t.lens, del);
	check_copy(f, "middle line (seq 3) deleted", b.data, b.len, 3, 4, "expected seq 3");
	static const int del_first[] = {1, 2, 3, 4, 5, -1};
	join_lines(&b, t.lines, t.lens, del_first);
	check_copy(f, "first line deleted", b.data, b.len, 1, 2, "expected seq 1");
	static const int dup[] = {0, 1, 1, 2, 3, 4, 5, -1};
	join_lines(&b, t.lines, t.lens, dup);
	check_copy(f, "line 2 duplicated", b.data, b.len, 3, 2, "expected seq 3");
	static const int dup_last[] = {0, 1, 2, 3, 4, 5, 5, -1};
	join_lines(&b, t.lines, t.lens, dup_last);
	check_copy(f, "last line duplicated at the end", b.data, b.len, 7, 6, "expected seq 7");
	static const int swap[] = {0, 2, 1, 3, 4, 5, -1};
	join_lines(&b, t.lines, t.lens, swap);
	check_copy(f, "lines 2 and 3 swapped", b.data, b.len, 2, 3, "expected seq 2");
	static const int swap_far[] = {0, 1, 2, 3, 5, 4, -1};
	join_lines(&b, t.lines, t.lens, swap_far);
	check_copy(f, "last two lines swapped", b.data, b.len, 5, 6, "expected seq 5");
	gh_buf_free(&b);
	free(t.text);
	CHECKED("deleted, duplicated and swapped lines are found at the right line and seq");
}

static void test_tamper_truncate(void **state)
{
	struct fixture *f = *state;
	struct tamper t;
	tamper_setup(f, &t);
	size_t without_last = (size_t)(t.lines[NREC - 1] - t.text);
	/* the last line removed entirely: the store's head is beyond the log */
	check_copy(f, "last line removed entirely", t.text, without_last, NREC, NREC, "removed from the end");
	/* the last two removed */
	check_copy(f, "last two lines removed", t.text, (size_t)(t.lines[NREC - 2] - t.text), NREC - 1, NREC - 1,
		   "removed from the end");
	/* the whole log emptied */
	check_copy(f, "log emptied", t.text, 0, 1, 1, "removed from the end");
	/* the last line cut mid-way (no newline) */
	check_copy(f, "last line cut mid-way", t.text, without_last + t.lens[NREC - 1] / 2, NREC, -1, "no newline");
	/* only the final newline removed */
	check_copy(f, "final newline removed", t.text, t.len - 1, NREC, -1, "no newline");
	/* a middle line cut: the line no longer ends with its hash */
	struct gh_buf b;
	gh_buf_init(&b, 1 << 20);
	assert_int_equal(gh_buf_append(&b, t.text, (size_t)(t.lines[2] - t.text) + 40), 0);
	assert_int_equal(gh_buf_puts(&b, "\n"), 0);
	assert_int_equal(gh_buf_append(&b, t.lines[3], t.len - (size_t)(t.lines[3] - t.text)), 0);
	check_copy(f, "middle line cut short", b.data, b.len, 3, -1, "does not end with its hash");
	gh_buf_free(&b);
	free(t.text);
	CHECKED("truncations found: whole lines via the store head, partial lines by the missing newline");
}

static void test_tamper_rehash(void **state)
{
	struct fixture *f = *state;
	struct tamper t;
	tamper_setup(f, &t);
	/* edit record 3, then recompute its own hash: record 3 checks, record 4's prev does not */
	struct gh_buf b;
	gh_buf_init(&b, 1 << 20);
	for (int k = 0; k < 2; k++) {
		int target = k == 0 ? 2 : NREC - 1; /* 0-based: record 3, then the last record */
		gh_buf_reset(&b);
		for (int i = 0; i < t.n; i++) {
			if (i != target) {
				assert_int_equal(gh_buf_append(&b, t.lines[i], t.lens[i]), 0);
				continue;
			}
			char *line = gh_strndup(t.lines[i], t.lens[i]);
			char *p = strstr(line, "\"decision\":\"allow\"");
			assert_non_null(p);
			memcpy(p + 12, "ALLOW", 5);
			size_t body = t.lens[i] - 1 - 75;
			char h[65];
			sha256_hex(line, body, h);
			memcpy(line + body + 9, h, 64);
			assert_int_equal(gh_buf_append(&b, line, t.lens[i]), 0);
			free(line);
		}
		if (k == 0)
			check_copy(f, "record 3 edited and re-hashed", b.data, b.len, 4, 4, "chain is broken");
		else
			check_copy(f, "last record edited and re-hashed", b.data, b.len, NREC, NREC, "head");
	}
	gh_buf_free(&b);
	free(t.text);
	CHECKED("a re-hashed record breaks the chain at the next line, or the store head at the last");
}

static void test_torn_line_cut_on_open(void **state)
{
	struct fixture *f = *state;
	struct gh_audit *a = open_ok(f->dir);
	append_n(a, 1, 3);
	gh_audit_close(a);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/audit/audit.log", f->dir);
	int fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	static const char torn[] = "{\"seq\":4,\"time\":\"TORN-MARKER-2023";
	assert_int_equal(write(fd, torn, sizeof torn - 1), (ssize_t)(sizeof torn - 1));
	close(fd);
	/* as it is, verify reports the torn line */
	expect_bad("torn last line before open", f->dir, 4, -1, "no newline");
	a = open_ok(f->dir);
	append_n(a, 4, 2);
	gh_audit_close(a);
	expect_ok(f->dir, 5);
	size_t len = 0;
	char *text = read_log(f->dir, &len);
	assert_null(strstr(text, "TORN-MARKER")); /* no leftover of the torn bytes */
	assert_null(strstr(text, torn));
	free(text);

	/* a log that is only a torn line */
	char dir2[DIRLEN];
	make_datadir(dir2, sizeof dir2);
	snprintf(path, sizeof path, "%s/audit/audit.log", dir2);
	write_file(path, torn, sizeof torn - 1);
	a = open_ok(dir2);
	append_n(a, 1, 1);
	gh_audit_close(a);
	expect_ok(dir2, 1);
	rm_rf(dir2);
	CHECKED("gh_audit_open cuts a torn last line; appends after it verify");
}

static void test_open_refuses_truncated(void **state)
{
	struct fixture *f = *state;
	struct gh_audit *a = open_ok(f->dir);
	append_n(a, 1, 4);
	gh_audit_close(a);
	size_t len = 0;
	char *text = read_log(f->dir, &len);
	char *lines[8];
	size_t lens[8];
	assert_int_equal(split_lines(text, len, lines, lens, 8), 4);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/audit/audit.log", f->dir);
	write_file(path, text, (size_t)(lines[3] - text)); /* drop the last record */
	struct gh_audit *b = NULL;
	struct gh_error err;
	gh_error_clear(&err);
	assert_int_equal(gh_audit_open(f->dir, &b, &err), GH_EAUDIT);
	assert_null(b);
	assert_non_null(strstr(err.message, "truncated"));
	printf("  refused: %s\n", err.message);
	/* nothing was written: still 3 lines */
	size_t len2 = 0;
	char *text2 = read_log(f->dir, &len2);
	assert_int_equal(len2, (size_t)(lines[3] - text));
	free(text2);
	/* an empty log with a non-zero head is refused too */
	write_file(path, "", 0);
	gh_error_clear(&err);
	assert_int_equal(gh_audit_open(f->dir, &b, &err), GH_EAUDIT);
	free(text);
	CHECKED("gh_audit_open refuses a log whose last seq is below the store head");
}

static void test_two_writers(void **state)
{
	struct fixture *f = *state;
	struct gh_audit *a = open_ok(f->dir), *b = open_ok(f->dir);
	int seq = 1;
	for (int round = 0; round < 5; round++) {
		append_n(a, seq++, 1);
		append_n(b, seq++, 1);
		if (round % 2)
			append_n(b, seq++, 1);
		else
			append_n(a, seq++, 1);
	}
	gh_audit_close(a);
	gh_audit_close(b);
	expect_ok(f->dir, seq - 1);
	/* a third handle opened later sees the end of the chain */
	a = open_ok(f->dir);
	append_n(a, seq, 1);
	gh_audit_close(a);
	expect_ok(f->dir, seq);
	CHECKED("two handles on one directory appending alternately keep one valid chain (%d records)", seq);
}

/* ---- async ---- */

#define NTHREADS 4
#define PER_THREAD 250

struct async_ctx {
	struct gh_audit *a;
	int id;
};

static int done_ok, done_fail;
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char seen_seq[NTHREADS * PER_THREAD + 1];

static void on_done(struct gh_audit_entry *e, int status)
{
	pthread_mutex_lock(&done_mu);
	if (status == 0) {
		done_ok++;
		if (e->seq >= 1 && e->seq <= NTHREADS * PER_THREAD)
			seen_seq[e->seq]++;
	} else {
		done_fail++;
	}
	pthread_mutex_unlock(&done_mu);
	gh_buf_free(&e->body);
	free(e);
}

static void *submitter(void *arg)
{
	struct async_ctx *c = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		struct gh_audit_entry *e = calloc(1, sizeof *e);
		if (!e)
			abort();
		gh_buf_init(&e->body, GH_AUDIT_MAX_RECORD);
		struct gh_audit_record r;
		char stmt[128];
		fill_record(&r, c->id * 1000 + i, stmt, sizeof stmt);
		if (gh_audit_format(&r, &e->body))
			abort();
		e->done = on_done;
		gh_audit_submit(c->a, e);
	}
	return NULL;
}

static void test_async_group_commit(void **state)
{
	struct fixture *f = *state;
	done_ok = done_fail = 0;
	memset(seen_seq, 0, sizeof seen_seq);
	struct gh_audit *a = open_ok(f->dir);
	assert_int_equal(gh_audit_start(a), 0);
	pthread_t th[NTHREADS];
	struct async_ctx ctx[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		ctx[i] = (struct async_ctx){.a = a, .id = i};
		assert_int_equal(pthread_create(&th[i], NULL, submitter, &ctx[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	uint64_t recs = 0, syncs = 0;
	gh_audit_close(a); /* drains the queue */
	assert_int_equal(done_ok, NTHREADS * PER_THREAD);
	assert_int_equal(done_fail, 0);
	for (int s = 1; s <= NTHREADS * PER_THREAD; s++)
		if (seen_seq[s] != 1)
			fail_msg("seq %d reported %d times", s, seen_seq[s]);
	expect_ok(f->dir, NTHREADS * PER_THREAD);
	/* group commit: fewer fsyncs than records (reopen to read the counters is not possible after
	 * close; count via a second run instead) */
	a = open_ok(f->dir);
	assert_int_equal(gh_audit_start(a), 0);
	done_ok = 0;
	struct async_ctx one = {.a = a, .id = 9};
	submitter(&one);
	while (1) {
		pthread_mutex_lock(&done_mu);
		int d = done_ok + done_fail;
		pthread_mutex_unlock(&done_mu);
		if (d >= PER_THREAD)
			break;
		usleep(1000);
	}
	gh_audit_stats(a, &recs, &syncs);
	assert_int_equal(recs, PER_THREAD);
	assert_true(syncs >= 1 && syncs <= recs);
	printf("  second batch: %llu records in %llu fsyncs\n", (unsigned long long)recs, (unsigned long long)syncs);
	gh_audit_close(a);
	expect_ok(f->dir, NTHREADS * PER_THREAD + PER_THREAD);
	CHECKED("%d entries from %d threads all durable with distinct seqs; chain verifies", NTHREADS * PER_THREAD,
		NTHREADS);
}

static void test_close_null_and_missing(void **state)
{
	(void)state;
	gh_audit_close(NULL);
	struct gh_audit *a = NULL;
	struct gh_error err;
	gh_error_clear(&err);
	assert_int_not_equal(gh_audit_open("/nonexistent/gh_test_dir", &a, &err), 0);
	assert_null(a);
	struct gh_audit_report rep;
	assert_int_not_equal(gh_audit_verify("/nonexistent/gh_test_dir", &rep, &err), 0);
	CHECKED("open and verify on a missing directory fail cleanly");
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_format),
	cmocka_unit_test_setup_teardown(test_append_verify, setup, teardown),
	cmocka_unit_test_setup_teardown(test_read, setup, teardown),
	cmocka_unit_test_setup_teardown(test_tamper_edit_byte, setup, teardown),
	cmocka_unit_test_setup_teardown(test_tamper_delete_insert_swap, setup, teardown),
	cmocka_unit_test_setup_teardown(test_tamper_truncate, setup, teardown),
	cmocka_unit_test_setup_teardown(test_tamper_rehash, setup, teardown),
	cmocka_unit_test_setup_teardown(test_torn_line_cut_on_open, setup, teardown),
	cmocka_unit_test_setup_teardown(test_open_refuses_truncated, setup, teardown),
	cmocka_unit_test_setup_teardown(test_two_writers, setup, teardown),
	cmocka_unit_test_setup_teardown(test_async_group_commit, setup, teardown),
	cmocka_unit_test(test_close_null_and_missing),
};

GH_UNIT_MAIN("test_audit", tests)
