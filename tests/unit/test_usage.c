/* Unit tests for src/usage: the record scanner, time parsing, and the index against a real
 * audit log in a temporary data directory (written by the audit module): counts, incremental
 * catch-up, rebuild when the log is replaced, refusal of a broken chain, visibility. */
#include "unit.h"

#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "store/store.h"
#include "usage/usage_int.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))

static void test_record_parse(void **state)
{
	(void)state;
	char line[] = "{\"seq\":10,\"time\":\"2026-12-01T16:04:25.448Z\",\"request_id\":\"req_4\",\"event\":"
		      "\"approval.request\",\"user\":\"bob\",\"groups\":[\"engineers\",\"x\"],\"app\":null,"
		      "\"environment\":\"production\",\"resource\":\"crm\",\"statement\":\"UPDATE t SET a = '\\u00e9"
		      "\\ud83d\\ude00\\n\\\"q\\\"' WHERE id = ?\",\"params\":[3,{\"base64url\":\"AA\"}],\"class\":"
		      "\"write\",\"tables\":[\"t\"],\"decision\":\"pending\",\"rule\":\"approval-required\",\"status\":"
		      "\"pending\",\"rows\":null,\"duration_ms\":0.435,\"client\":\"127.0.0.1:1\",\"detail\":"
		      "{\"approval\":\"apr_1\",\"other\":[1,{\"x\":null}]},\"prev\":\"00\",\"hash\":\"11\"}";
	struct usage_rec r;
	assert_true(usage_record_parse(line, strlen(line), &r));
	assert_string_equal(r.event, "approval.request");
	assert_string_equal(r.user, "bob");
	assert_null(r.app);
	assert_string_equal(r.environment, "production");
	assert_string_equal(r.resource, "crm");
	assert_string_equal(r.statement, "UPDATE t SET a = '\xc3\xa9\xf0\x9f\x98\x80\n\"q\"' WHERE id = ?");
	assert_string_equal(r.approval, "apr_1");
	assert_null(r.requester);
	assert_false(r.has_rows);
	char l2[] = "{\"rows\":17,\"event\":\"query\",\"time\":\"x\"}";
	assert_true(usage_record_parse(l2, strlen(l2), &r));
	assert_true(r.has_rows);
	assert_int_equal(r.rows, 17);
	static const char *const bad[] = {
		"", "[]", "{", "{\"event\":\"query\"", "{\"event\":\"q\\x\"}", "{\"event\":\"a\nb\"}", "{\"a\":1,}",
		"{\"event\":\"\\ud800\"}", "{\"event\":\"\\ud800\\u0041\"}", "{\"a\":[1,2}", "{\"a\":1} x", "{\"a\" 1}",
		"{\"rows\":1.5e400x}", "{\"event\":\"\\u12\"}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char *c = gh_strdup(bad[i]);
		if (usage_record_parse(c, strlen(c), &r))
			fail_msg("accepted '%s'", bad[i]);
		free(c);
	}
	CHECKED("the record scanner reads the members, decodes escapes in place, refuses malformed lines");
}

static void test_times(void **state)
{
	(void)state;
	int64_t ms;
	assert_true(usage_parse_rfc3339("2026-12-01T16:04:25.448Z", 24, &ms));
	assert_int_equal(ms, 1796141065448LL);
	assert_true(usage_parse_rfc3339("1970-01-01T00:00:00Z", 20, &ms));
	assert_int_equal(ms, 0);
	assert_true(usage_parse_rfc3339("2000-02-29T23:59:59.5Z", 22, &ms));
	assert_int_equal(ms, 951868799500LL);
	static const char *const bad[] = {"2026-13-01T00:00:00Z", "2026-12-01 16:04:25Z", "2026-12-01T16:04:25",
					  "2026-12-01T16:04:25.Z", "2026-12-01T24:00:00Z", "x026-12-01T16:04:25Z",
					  "2026-12-01T16:04:25.1234567890Z"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_false(usage_parse_rfc3339(bad[i], strlen(bad[i]), &ms));
	int64_t now = 1796141065448LL, t;
	assert_int_equal(gh_usage_parse_time("7d", now, &t), 0);
	assert_int_equal(t, now - 7LL * 86400000);
	assert_int_equal(gh_usage_parse_time("30m", now, &t), 0);
	assert_int_equal(t, now - 1800000);
	assert_int_equal(gh_usage_parse_time("2026-12-01T00:00:00Z", now, &t), 0);
	assert_int_equal(gh_usage_parse_time("", now, &t), GH_EINVAL);
	assert_int_equal(gh_usage_parse_time("7x", now, &t), GH_EINVAL);
	assert_int_equal(gh_usage_parse_time("-1d", now, &t), GH_EINVAL);
	assert_int_equal(gh_usage_parse_time("99999d", now, &t), GH_EINVAL);
	CHECKED("record times and report times (durations and RFC 3339) parse, bad ones are refused");
}

/* ---- the index against a real log ---- */

struct fixture {
	char dir[64];
	struct gh_audit *log;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/gh-usage-unit-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	char db[128];
	struct gh_error err;
	snprintf(db, sizeof db, "%s/gatehouse.db", f->dir);
	if (gh_store_create(db, &err) || gh_audit_open(f->dir, &f->log, &err))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	gh_audit_close(f->log);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static int64_t base_ms(void)
{
	return gh_now_ms() - 3600000; /* an hour ago: inside a 1-day window */
}

static void append(struct fixture *f, const char *event, const char *user, const char *app, const char *stmt,
		   const char *decision, const char *rule, const char *status, int64_t rows, const char *detail,
		   int64_t t)
{
	struct gh_audit_record r = {.time_ms = t, .request_id = "req_1", .event = event, .user = user,
				    .groups = "g", .app = app, .environment = "staging", .resource = "crm",
				    .statement = stmt, .params_json = "[\"s3cret-param\"]", .class_name = "read",
				    .decision = decision, .rule = rule, .status = status, .rows = rows,
				    .duration_ms = 1, .client = "127.0.0.1:1", .detail_json = detail};
	struct gh_error err;
	assert_int_equal(gh_audit_append(f->log, &r, NULL, &err), 0);
}

static json_t *report(struct gh_usage *u, const struct gh_usage_query *q0)
{
	struct gh_usage_query q = *q0;
	int64_t now = gh_now_ms();
	if (!q.since_ms)
		q.since_ms = now - 86400000;
	if (!q.until_ms)
		q.until_ms = now + 1;
	struct gh_buf out;
	struct gh_error err;
	gh_buf_init(&out, 1 << 20);
	gh_buf_puts(&out, "{");
	assert_int_equal(gh_usage_report(u, &q, &out, NULL, &err), 0);
	gh_buf_puts(&out, "}");
	json_error_t je;
	json_t *doc = json_loadb(out.data, out.len, 0, &je);
	if (!doc)
		fail_msg("report is not JSON: %s", je.text);
	if (strstr(out.data, "s3cret"))
		fail_msg("a parameter value reached the report");
	gh_buf_free(&out);
	return doc;
}

static int64_t total(json_t *doc, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(doc, "totals"), key));
}

static void traffic(struct fixture *f, int64_t t)
{
	append(f, "query", "alice", "inv", "SELECT * FROM t WHERE id = 1", "allow", "grant", "ok", 3, NULL, t);
	append(f, "query", "alice", "inv", "SELECT * FROM t WHERE id = 22", "allow", "grant", "ok", 4, NULL, t);
	append(f, "query", "alice", "inv", "DROP TABLE t", "deny", "destructive-ddl", "denied", -1, NULL, t);
	append(f, "query", "bob", NULL, "DELETE FROM t WHERE id = 5", "allow", "grant", "started", -1, NULL, t);
	append(f, "query.outcome", "bob", NULL, "DELETE FROM t WHERE id = 5", "allow", "grant", "ok", 2, NULL, t);
	append(f, "approval.request", "bob", NULL, "UPDATE t SET a = 'x'", "pending", "approval-required", "pending",
	       -1, "{\"approval\":\"apr_1\"}", t);
	append(f, "approval.approve", "carol", NULL, "UPDATE t SET a = 'x'", "allow", "approved-by:carol", "approved",
	       -1, "{\"approval\":\"apr_1\",\"requester\":\"bob\"}", t + 4000);
	append(f, "approval.execute", "bob", NULL, "UPDATE t SET a = 'x'", "allow", "approved-by:carol", "ok", 1,
	       "{\"approval\":\"apr_1\",\"approved_by\":\"carol\"}", t + 4000);
	append(f, "token.issue", "dave", NULL, NULL, "allow", "local-operator", "ok", -1, NULL, t);
}

static void test_index(void **state)
{
	struct fixture *f = *state;
	int64_t t = base_ms();
	traffic(f, t);
	struct gh_usage *u = NULL;
	struct gh_error err;
	struct gh_usage_stats st;
	assert_int_equal(gh_usage_open(f->dir, &u, &err), 0);
	assert_int_equal(gh_usage_catch_up(u, &st, &err), 0);
	assert_int_equal(st.records, 9);
	assert_false(st.rebuilt);
	struct gh_usage_query all = {.all = true, .top = 10};
	json_t *doc = report(u, &all);
	assert_int_equal(total(doc, "queries"), 5);
	assert_int_equal(total(doc, "rows"), 7);
	assert_int_equal(total(doc, "rows_affected"), 3);
	assert_int_equal(total(doc, "denied"), 1);
	json_t *appr = json_object_get(json_object_get(doc, "totals"), "approvals");
	assert_int_equal(json_integer_value(json_object_get(appr, "requested")), 1);
	assert_int_equal(json_integer_value(json_object_get(appr, "approved")), 1);
	assert_true(json_real_value(json_object_get(appr, "avg_time_to_approve_s")) == 4.0);
	json_t *top = json_object_get(doc, "top_statements");
	assert_int_equal(json_array_size(top), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(top, 0), "example")),
			    "SELECT * FROM t WHERE id = ?");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(top, 0), "count")), 2);
	json_decref(doc);

	/* incremental: only the new records are read, and the numbers grow by exactly them */
	traffic(f, t);
	assert_int_equal(gh_usage_catch_up(u, &st, &err), 0);
	assert_int_equal(st.records, 9);
	assert_int_equal(gh_usage_catch_up(u, &st, &err), 0);
	assert_int_equal(st.records, 0);
	doc = report(u, &all);
	assert_int_equal(total(doc, "queries"), 10);
	json_decref(doc);

	/* visibility: alice sees her own usage only; an owner of crm sees all of it */
	struct gh_usage_query own = {.self = "alice", .top = 10};
	doc = report(u, &own);
	assert_int_equal(json_array_size(json_object_get(doc, "groups")), 1);
	assert_int_equal(total(doc, "queries"), 6);
	json_decref(doc);
	const char *owned[] = {"crm"};
	struct gh_usage_query owner = {.self = "zed", .owned = owned, .nowned = 1, .top = 10};
	doc = report(u, &owner);
	assert_int_equal(total(doc, "queries"), 10);
	json_decref(doc);
	struct gh_usage_query other = {.self = "alice", .user = "bob", .top = 10};
	doc = report(u, &other);
	assert_int_equal(json_array_size(json_object_get(doc, "groups")), 0);
	assert_int_equal(json_array_size(json_object_get(doc, "top_statements")), 0);
	json_decref(doc);

	/* a window before the traffic is empty */
	struct gh_usage_query old = {.all = true, .since_ms = t - 10 * 86400000LL, .until_ms = t - 5 * 86400000LL};
	doc = report(u, &old);
	assert_int_equal(total(doc, "queries"), 0);
	json_decref(doc);
	gh_usage_close(u);
	CHECKED("counts, approvals, fingerprints, incremental catch-up, visibility and windows");
}

static void test_rebuild_and_broken_chain(void **state)
{
	struct fixture *f = *state;
	int64_t t = base_ms();
	traffic(f, t);
	struct gh_usage *u = NULL;
	struct gh_error err;
	struct gh_usage_stats st;
	assert_int_equal(gh_usage_open(f->dir, &u, &err), 0);
	assert_int_equal(gh_usage_catch_up(u, &st, &err), 0);
	assert_int_equal(st.records, 9);

	/* the log is replaced by another one (a restore): the index notices and rebuilds */
	gh_audit_close(f->log);
	f->log = NULL;
	char path[128], db[128];
	snprintf(path, sizeof path, "%s/audit/audit.log", f->dir);
	snprintf(db, sizeof db, "%s/gatehouse.db", f->dir);
	assert_int_equal(unlink(path), 0);
	/* the store's head moves only forward: an operator restoring an older log resets it */
	sqlite3 *sdb = NULL;
	assert_int_equal(sqlite3_open(db, &sdb), SQLITE_OK);
	assert_int_equal(sqlite3_exec(sdb, "UPDATE audit_head SET seq = 0", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(sdb);
	assert_int_equal(gh_audit_open(f->dir, &f->log, &err), 0);
	append(f, "query", "erin", NULL, "SELECT 1", "allow", "grant", "ok", 1, NULL, t);
	assert_int_equal(gh_usage_catch_up(u, &st, &err), 0);
	assert_true(st.rebuilt);
	assert_int_equal(st.records, 1);
	struct gh_usage_query all = {.all = true, .top = 10};
	json_t *doc = report(u, &all);
	assert_int_equal(total(doc, "queries"), 1);
	json_decref(doc);

	/* a record edited after the indexed part breaks the chain: refused, nothing counted */
	append(f, "query", "erin", NULL, "SELECT 2", "allow", "grant", "ok", 1, NULL, t);
	int fd = open(path, O_RDWR | O_APPEND);
	assert_true(fd >= 0);
	const char *forged = "{\"seq\":3,\"time\":\"2026-01-01T00:00:00.000Z\",\"event\":\"query\",\"prev\":\""
			     "0000000000000000000000000000000000000000000000000000000000000000\",\"hash\":\""
			     "0000000000000000000000000000000000000000000000000000000000000000\"}\n";
	assert_int_equal(write(fd, forged, strlen(forged)), (ssize_t)strlen(forged));
	close(fd);
	assert_int_equal(gh_usage_catch_up(u, &st, &err), GH_EIO);
	assert_non_null(strstr(err.message, "chain is broken after seq 2"));
	doc = report(u, &all);
	assert_int_equal(total(doc, "queries"), 1); /* the pass with the break was rolled back */
	json_decref(doc);
	gh_usage_close(u);

	/* the index file is derived: a damaged one is replaced on open */
	char idx[128];
	snprintf(idx, sizeof idx, "%s/audit/usage.db", f->dir);
	unlink(idx);
	fd = open(idx, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(write(fd, "not a database, not at all, no.", 31), 31);
	close(fd);
	assert_int_equal(gh_usage_open(f->dir, &u, &err), 0);
	struct stat sb;
	assert_int_equal(stat(idx, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	gh_usage_close(u);
	CHECKED("a replaced log is rebuilt, a broken chain refused, a damaged index replaced (0600)");
}

static void test_fingerprint_limit(void **state)
{
	struct fixture *f = *state;
	int64_t t = base_ms();
	enum { N = USAGE_MAX_FINGERPRINTS + 5 };
	static char text[GH_AUDIT_MAX_BATCH][48];
	struct gh_audit_record r[GH_AUDIT_MAX_BATCH];
	struct gh_error err;
	for (int done = 0; done < N;) {
		int n = N - done < GH_AUDIT_MAX_BATCH ? N - done : GH_AUDIT_MAX_BATCH;
		for (int i = 0; i < n; i++) {
			snprintf(text[i], sizeof text[i], "SELECT c%d FROM t", done + i); /* a new shape each */
			r[i] = (struct gh_audit_record){.time_ms = t, .event = "query", .user = "gen", .resource = "crm",
							.environment = "staging", .statement = text[i], .decision = "allow",
							.status = "ok", .rows = 1, .duration_ms = -1};
		}
		assert_int_equal(gh_audit_append_n(f->log, r, (size_t)n, NULL, &err), 0);
		done += n;
	}
	struct gh_usage *u = NULL;
	struct gh_usage_stats st;
	assert_int_equal(gh_usage_open(f->dir, &u, &err), 0);
	assert_int_equal(gh_usage_catch_up(u, &st, &err), 0);
	assert_int_equal(st.records, N);
	struct gh_usage_query all = {.all = true, .top = 1};
	json_t *doc = report(u, &all);
	json_t *top = json_array_get(json_object_get(doc, "top_statements"), 0);
	assert_int_equal(total(doc, "queries"), N);
	assert_string_equal(json_string_value(json_object_get(top, "fingerprint")), USAGE_OTHER_FP);
	assert_int_equal(json_integer_value(json_object_get(top, "count")), 5);
	json_decref(doc);
	sqlite3_stmt *s = NULL;
	assert_int_equal(sqlite3_prepare_v2(u->db, "SELECT count(*) FROM fingerprints", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(s, 0), USAGE_MAX_FINGERPRINTS + 1);
	sqlite3_finalize(s);
	gh_usage_close(u);
	CHECKED("past %d fingerprints new shapes are counted under one (the index stays bounded)",
		USAGE_MAX_FINGERPRINTS);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_record_parse),
	cmocka_unit_test(test_times),
	cmocka_unit_test_setup_teardown(test_index, setup, teardown),
	cmocka_unit_test_setup_teardown(test_rebuild_and_broken_chain, setup, teardown),
	cmocka_unit_test_setup_teardown(test_fingerprint_limit, setup, teardown),
};

GH_UNIT_MAIN("test_usage", tests)
