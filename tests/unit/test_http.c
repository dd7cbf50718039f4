/* Unit tests for src/front: the HTTP/1.1 request parser and the /v1/query body parser. */
#include "unit.h"

#include <string.h>

#include "front/api_handlers.h"
#include "front/http_parse.h"
#include "front/query_body.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))
#define MAXB ((size_t)GH_DEFAULT_MAX_BODY)

/* Parses exactly len bytes from a heap copy, so ASan sees any read past the input. */
static int parse_n(const char *text, size_t len, size_t max_body, size_t *used, struct gh_http_request *r, int *status,
		   const char **why)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	if (len)
		memcpy(copy, text, len);
	*status = 0;
	*why = NULL;
	int rc = gh_http_parse(copy, len, max_body, used, r, status, why);
	/* pointers in r refer into copy: rebase them onto text for the caller */
	const char *lo = (const char *)copy, *hi = lo + len;
#define REBASE(s) \
	if ((s).p && (s).p >= lo && (s).p <= hi) (s).p = text + ((s).p - lo)
	REBASE(r->method); REBASE(r->target); REBASE(r->path); REBASE(r->query);
	REBASE(r->authorization); REBASE(r->body);
	for (size_t i = 0; i < r->nheaders && i < GH_HTTP_MAX_HEADERS; i++) {
		REBASE(r->headers[i].name);
		REBASE(r->headers[i].value);
	}
#undef REBASE
	free(copy);
	return rc;
}

static int parse(const char *text, size_t *used, struct gh_http_request *r, int *status, const char **why)
{
	return parse_n(text, strlen(text), MAXB, used, r, status, why);
}

static bool str_is(struct gh_str s, const char *z)
{
	return gh_str_eq(s, z);
}

/* Asserts text is refused with status. */
static void expect_status_n(const char *what, const char *text, size_t len, size_t max_body, int want)
{
	struct gh_http_request r;
	size_t used = 0;
	int status;
	const char *why;
	int rc = parse_n(text, len, max_body, &used, &r, &status, &why);
	if (rc == 0 || rc == GH_EAGAIN)
		fail_msg("%s: rc %d (%s), want status %d", what, rc, rc ? "need more" : "complete", want);
	if (status != want)
		fail_msg("%s: status %d (%s), want %d", what, status, why ? why : "", want);
	assert_true(rc == GH_EINVAL || rc == GH_ETOOBIG);
	assert_non_null(why);
	printf("  %d %-44s %s\n", status, what, why);
}

static void expect_status(const char *what, const char *text, int want)
{
	expect_status_n(what, text, strlen(text), MAXB, want);
}

static void test_get_complete(void **state)
{
	(void)state;
	const char *req = "GET /v1/schema?resource=crm&environment=staging HTTP/1.1\r\n"
			  "Host: localhost:8080\r\n"
			  "Authorization: Bearer abc.def.ghi\r\n"
			  "X-Spaces:   padded value \t \r\n"
			  "Accept: */*\r\n"
			  "\r\n";
	struct gh_http_request r;
	size_t used = 0;
	int status;
	const char *why;
	assert_int_equal(parse(req, &used, &r, &status, &why), 0);
	assert_int_equal(used, strlen(req));
	assert_int_equal(r.header_bytes, strlen(req));
	assert_true(str_is(r.method, "GET"));
	assert_true(str_is(r.target, "/v1/schema?resource=crm&environment=staging"));
	assert_true(str_is(r.path, "/v1/schema"));
	assert_true(str_is(r.query, "resource=crm&environment=staging"));
	assert_int_equal(r.minor, 1);
	assert_int_equal(r.nheaders, 4);
	assert_true(str_is(r.headers[0].name, "Host"));
	assert_true(str_is(r.headers[0].value, "localhost:8080"));
	assert_true(str_is(r.headers[2].value, "padded value"));
	assert_true(str_is(r.authorization, "Bearer abc.def.ghi"));
	assert_int_equal(r.content_length, 0);
	assert_int_equal(r.body.len, 0);
	assert_true(r.keep_alive);
	const struct gh_http_header *h = gh_http_header(&r, "aCCEPT");
	assert_non_null(h);
	assert_true(str_is(h->value, "*/*"));
	assert_null(gh_http_header(&r, "Content-Length"));
	assert_null(gh_http_header(&r, "Hos"));

	/* no query, no headers, HTTP/1.0 */
	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &used, &r, &status, &why), 0);
	assert_int_equal(used, 18);
	assert_true(str_is(r.path, "/"));
	assert_int_equal(r.query.len, 0);
	assert_int_equal(r.minor, 0);
	assert_int_equal(r.nheaders, 0);
	assert_int_equal(r.authorization.len, 0);
	assert_false(r.keep_alive);
	CHECKED("complete GET: method, target, path, query, headers, Authorization, keep-alive");
}

static void test_post_body(void **state)
{
	(void)state;
	const char *req = "POST /v1/query HTTP/1.1\r\n"
			  "Content-Type: application/json\r\n"
			  "content-length: 26\r\n"
			  "\r\n"
			  "{\"sql\":\"SELECT 1\\r\\n\\r\\n\"}";
	struct gh_http_request r;
	size_t used = 0;
	int status;
	const char *why;
	assert_int_equal(parse(req, &used, &r, &status, &why), 0);
	assert_int_equal(used, strlen(req));
	assert_true(str_is(r.method, "POST"));
	assert_int_equal(r.content_length, 26);
	assert_int_equal(r.body.len, 26);
	assert_memory_equal(r.body.p, "{\"sql\":\"SELECT 1\\r\\n\\r\\n\"}", 26);
	assert_int_equal(r.header_bytes, strlen(req) - 26);
	/* a body containing CRLF CRLF and NUL bytes is opaque */
	static const char bin[] = "POST /x HTTP/1.1\r\nContent-Length: 6\r\n\r\n\r\n\0\r\n\0";
	assert_int_equal(parse_n(bin, sizeof bin - 1, MAXB, &used, &r, &status, &why), 0);
	assert_int_equal(used, sizeof bin - 1);
	assert_int_equal(r.body.len, 6);
	/* the same Content-Length twice is not a conflict; leading zeros are digits */
	assert_int_equal(parse("POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 003\r\n\r\nabc", &used, &r,
			       &status, &why), 0);
	assert_int_equal(r.body.len, 3);
	/* a body exactly max_body long */
	char big[200];
	snprintf(big, sizeof big, "POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789");
	assert_int_equal(parse_n(big, strlen(big), 10, &used, &r, &status, &why), 0);
	assert_int_equal(r.body.len, 10);
	CHECKED("POST with a body: Content-Length (case-insensitive), body bytes, duplicate equal lengths");
}

static void test_every_prefix_needs_more(void **state)
{
	(void)state;
	const char *reqs[] = {
		"GET /v1/audit?since=3 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x\r\n\r\n",
		"POST /v1/query HTTP/1.1\r\nHost: a\r\nContent-Length: 22\r\n\r\n{\"a\":\"\\r\\n\\r\\n\",\"b\":1}",
		"GET / HTTP/1.0\r\n\r\n",
	};
	for (size_t k = 0; k < sizeof reqs / sizeof reqs[0]; k++) {
		size_t len = strlen(reqs[k]);
		for (size_t n = 0; n < len; n++) {
			struct gh_http_request r;
			size_t used = 999;
			int status;
			const char *why;
			int rc = parse_n(reqs[k], n, MAXB, &used, &r, &status, &why);
			if (rc != GH_EAGAIN)
				fail_msg("request %zu, prefix of %zu/%zu bytes: rc %d status %d (%s)", k, n, len, rc, status,
					 why ? why : "");
		}
		struct gh_http_request r;
		size_t used = 0;
		int status;
		const char *why;
		assert_int_equal(parse_n(reqs[k], len, MAXB, &used, &r, &status, &why), 0);
		assert_int_equal(used, len);
	}
	CHECKED("GH_EAGAIN for every prefix (byte by byte), complete exactly at the full length");
}

static void test_pipelined(void **state)
{
	(void)state;
	const char *first = "GET /a?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
	const char *second = "POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
	const char *third = "GET /c HTTP/1.1\r\nConnection: close\r\n\r\n";
	struct gh_buf b;
	gh_buf_init(&b, 4096);
	assert_int_equal(gh_buf_puts(&b, first), 0);
	assert_int_equal(gh_buf_puts(&b, second), 0);
	assert_int_equal(gh_buf_puts(&b, third), 0);
	struct gh_http_request r;
	size_t used = 0, off = 0;
	int status;
	const char *why;
	assert_int_equal(parse_n(b.data, b.len, MAXB, &used, &r, &status, &why), 0);
	assert_int_equal(used, strlen(first));
	assert_true(str_is(r.path, "/a"));
	off += used;
	assert_int_equal(parse_n(b.data + off, b.len - off, MAXB, &used, &r, &status, &why), 0);
	assert_int_equal(used, strlen(second));
	assert_true(str_is(r.path, "/b"));
	assert_true(str_is(r.body, "abc"));
	off += used;
	assert_int_equal(parse_n(b.data + off, b.len - off, MAXB, &used, &r, &status, &why), 0);
	assert_int_equal(used, strlen(third));
	assert_true(str_is(r.path, "/c"));
	assert_false(r.keep_alive);
	off += used;
	assert_int_equal(off, b.len);
	/* a partial second request after a complete first one */
	assert_int_equal(parse_n(b.data, strlen(first) + 10, MAXB, &used, &r, &status, &why), 0);
	assert_int_equal(used, strlen(first));
	assert_int_equal(parse_n(b.data + used, 10, MAXB, &used, &r, &status, &why), GH_EAGAIN);
	gh_buf_free(&b);
	CHECKED("three pipelined requests in one buffer: used is each request's own length");
}

static void test_keep_alive(void **state)
{
	(void)state;
	static const struct { const char *req; bool keep; } cases[] = {
		{"GET / HTTP/1.1\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nconnection: CLOSE\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nConnection: Upgrade, close\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", true},
		{"GET / HTTP/1.0\r\n\r\n", false},
		{"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
		{"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct gh_http_request r;
		size_t used;
		int status;
		const char *why;
		assert_int_equal(parse(cases[i].req, &used, &r, &status, &why), 0);
		if (r.keep_alive != cases[i].keep)
			fail_msg("%s: keep_alive %d", cases[i].req, r.keep_alive);
	}
	CHECKED("keep-alive: 1.1 on by default, Connection: close off; 1.0 off unless keep-alive");
}

/* HTTP/1.0 clients ask for persistence with "Connection: keep-alive" (RFC 9112 appendix C.2.2). */
static void test_keep_alive_http10(void **state)
{
	(void)state;
	static const char *const reqs[] = {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
					   "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
					   "GET / HTTP/1.0\r\nHost: a\r\nConnection: TE, keep-alive\r\n\r\n"};
	for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
		struct gh_http_request r;
		size_t used;
		int status;
		const char *why;
		assert_int_equal(parse(reqs[i], &used, &r, &status, &why), 0);
		assert_int_equal(r.minor, 0);
		if (!r.keep_alive)
			fail_msg("%s: keep_alive 0, want 1", reqs[i]);
	}
	CHECKED("HTTP/1.0 with Connection: keep-alive stays open");
}

static void test_query_params(void **state)
{
	(void)state;
	struct gh_http_request r;
	size_t used;
	int status;
	const char *why;
	assert_int_equal(parse("GET /v1/audit?since=5&limit=10&flag&empty=&a=b=c&since=7 HTTP/1.1\r\n\r\n", &used, &r,
			       &status, &why), 0);
	struct gh_str v;
	assert_true(gh_http_query_param(&r, "since", &v));
	assert_true(str_is(v, "5")); /* the first occurrence */
	assert_true(gh_http_query_param(&r, "limit", &v));
	assert_true(str_is(v, "10"));
	assert_true(gh_http_query_param(&r, "flag", &v));
	assert_int_equal(v.len, 0);
	assert_true(gh_http_query_param(&r, "empty", &v));
	assert_int_equal(v.len, 0);
	assert_true(gh_http_query_param(&r, "a", &v));
	assert_true(str_is(v, "b=c"));
	assert_false(gh_http_query_param(&r, "sinc", &v));
	assert_false(gh_http_query_param(&r, "limits", &v));
	assert_false(gh_http_query_param(&r, "b", &v));
	assert_false(gh_http_query_param(&r, "", &v) && v.len > 0);
	assert_int_equal(parse("GET /v1/audit HTTP/1.1\r\n\r\n", &used, &r, &status, &why), 0);
	assert_false(gh_http_query_param(&r, "since", &v));
	assert_int_equal(parse("GET /x? HTTP/1.1\r\n\r\n", &used, &r, &status, &why), 0);
	assert_true(str_is(r.path, "/x"));
	assert_int_equal(r.query.len, 0);
	assert_false(gh_http_query_param(&r, "x", &v));
	assert_int_equal(parse("GET /x?resource=crm HTTP/1.1\r\n\r\n", &used, &r, &status, &why), 0);
	assert_true(gh_http_query_param(&r, "resource", &v));
	assert_true(str_is(v, "crm"));
	CHECKED("query parameter lookup: exact names, first wins, empty values, '=' in values");
}

static void test_methods_and_targets(void **state)
{
	(void)state;
	struct gh_http_request r;
	size_t used;
	int status;
	const char *why;
	/* methods are tokens; case is kept for the router to refuse */
	assert_int_equal(parse("get / HTTP/1.1\r\n\r\n", &used, &r, &status, &why), 0);
	assert_true(str_is(r.method, "get"));
	assert_int_equal(parse("DELETE /v1/tokens/tok_1 HTTP/1.1\r\n\r\n", &used, &r, &status, &why), 0);
	assert_true(str_is(r.method, "DELETE"));
	expect_status("method with a slash", "GE/T / HTTP/1.1\r\n\r\n", 400);
	expect_status("method too long", "ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n\r\n", 400);
	expect_status("no method", " / HTTP/1.1\r\n\r\n", 400);
	expect_status("two spaces after method", "GET  / HTTP/1.1\r\n\r\n", 400);
	expect_status("target without a slash", "GET index.html HTTP/1.1\r\n\r\n", 400);
	expect_status("asterisk target", "OPTIONS * HTTP/1.1\r\n\r\n", 400);
	expect_status("absolute-form target", "GET http://evil/ HTTP/1.1\r\n\r\n", 400);
	expect_status("no target", "GET HTTP/1.1\r\n\r\n", 400);
	expect_status("no version", "GET /\r\n\r\n", 400);
	expect_status("lower-case version", "GET / http/1.1\r\n\r\n", 400);
	expect_status("version with junk", "GET / HTTP/1.1x\r\n\r\n", 400);
	expect_status("space after version", "GET / HTTP/1.1 \r\n\r\n", 400);
	expect_status("HTTP/1.2", "GET / HTTP/1.2\r\n\r\n", 505);
	expect_status("HTTP/1.9", "GET / HTTP/1.9\r\n\r\n", 505);
	CHECKED("methods are tokens (lower case kept), origin-form targets only, HTTP/1.x versions");
}

/* A major version we do not speak is "version not supported", not a malformed request. */
static void test_http2_is_505(void **state)
{
	(void)state;
	expect_status("HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 505);
	expect_status("HTTP/3.0", "GET / HTTP/3.0\r\n\r\n", 505);
	CHECKED("HTTP/2.0 and HTTP/3.0 request lines get 505");
}

static void test_limits(void **state)
{
	(void)state;
	struct gh_buf b;
	/* 414: a request line longer than the limit, even before it ends */
	gh_buf_init(&b, 1 << 20);
	assert_int_equal(gh_buf_puts(&b, "GET /"), 0);
	for (int i = 0; i < GH_HTTP_MAX_REQUEST_LINE; i++)
		assert_int_equal(gh_buf_puts(&b, "a"), 0);
	expect_status_n("request line over 8 KiB, unfinished", b.data, b.len, MAXB, 414);
	assert_int_equal(gh_buf_puts(&b, " HTTP/1.1\r\n\r\n"), 0);
	expect_status_n("request target over 8 KiB, complete", b.data, b.len, MAXB, 414);
	gh_buf_free(&b);

	/* 431: too many header fields */
	gh_buf_init(&b, 1 << 20);
	assert_int_equal(gh_buf_puts(&b, "GET / HTTP/1.1\r\n"), 0);
	for (int i = 0; i < GH_HTTP_MAX_HEADERS; i++)
		assert_int_equal(gh_buf_printf(&b, "X-H%d: v\r\n", i), 0);
	size_t at_max = b.len;
	assert_int_equal(gh_buf_puts(&b, "\r\n"), 0);
	struct gh_http_request r;
	size_t used;
	int status;
	const char *why;
	assert_int_equal(parse_n(b.data, b.len, MAXB, &used, &r, &status, &why), 0); /* exactly the maximum */
	assert_int_equal(r.nheaders, GH_HTTP_MAX_HEADERS);
	b.len = at_max;
	assert_int_equal(gh_buf_puts(&b, "X-One-Too-Many: v\r\n\r\n"), 0);
	expect_status_n("65 header fields", b.data, b.len, MAXB, 431);
	gh_buf_free(&b);

	/* 431: a header block that never ends */
	gh_buf_init(&b, 1 << 20);
	assert_int_equal(gh_buf_puts(&b, "GET / HTTP/1.1\r\n"), 0);
	while (b.len < GH_HTTP_MAX_REQUEST_LINE + GH_HTTP_MAX_HEADER_BYTES + 10)
		assert_int_equal(gh_buf_puts(&b, "X-Filler: 0123456789012345678901234567890123456789\r\n"), 0);
	expect_status_n("header block over the limit, unfinished", b.data, b.len, MAXB, 431);
	assert_int_equal(gh_buf_puts(&b, "\r\n"), 0);
	expect_status_n("header block over the limit, complete", b.data, b.len, MAXB, 431);
	gh_buf_free(&b);

	/* 413 before the body arrives */
	expect_status("Content-Length over max_body (no body sent)",
		      "POST /v1/query HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n", 413);
	expect_status_n("Content-Length 11 with max_body 10", "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 39, 10,
			413);
	expect_status("Content-Length of 12 digits", "POST / HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n", 413);
	/* at the limit: waits for the body */
	assert_int_equal(parse_n("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n", 39, 10, &used, &r, &status, &why),
			 GH_EAGAIN);
	CHECKED("414 long request line, 431 too many headers / head too large, 413 before the body");
}

/* GH_HTTP_MAX_HEADER_BYTES bounds the header fields themselves (limits.h: "all header bytes of
 * one request"), whatever the length of the request line. */
static void test_header_bytes_limit(void **state)
{
	(void)state;
	struct gh_buf b;
	gh_buf_init(&b, 1 << 20);
	assert_int_equal(gh_buf_puts(&b, "GET / HTTP/1.1\r\n"), 0);
	size_t start = b.len;
	for (int i = 0; b.len - start <= GH_HTTP_MAX_HEADER_BYTES + 100 && i < GH_HTTP_MAX_HEADERS - 1; i++) {
		assert_int_equal(gh_buf_printf(&b, "X-Big%d: ", i), 0);
		for (int k = 0; k < 400; k++)
			assert_int_equal(gh_buf_puts(&b, "v"), 0);
		assert_int_equal(gh_buf_puts(&b, "\r\n"), 0);
	}
	size_t fields = b.len - start;
	assert_int_equal(gh_buf_puts(&b, "\r\n"), 0);
	struct gh_http_request r;
	size_t used = 0;
	int status;
	const char *why;
	int rc = parse_n(b.data, b.len, MAXB, &used, &r, &status, &why);
	gh_buf_free(&b); /* before asserting: a failure must not leak */
	assert_true(fields > GH_HTTP_MAX_HEADER_BYTES);
	printf("  %zu bytes of header fields: rc %d status %d\n", fields, rc, rc ? status : 0);
	assert_int_equal(rc, GH_ETOOBIG);
	assert_int_equal(status, 431);
	CHECKED("header fields totalling more than 16 KiB get 431");
}

static void test_malformed_headers(void **state)
{
	(void)state;
	expect_status("Transfer-Encoding: chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411);
	expect_status("Transfer-Encoding: identity", "POST / HTTP/1.1\r\ntransfer-encoding: identity\r\n\r\n", 411);
	expect_status("Transfer-Encoding with Content-Length",
		      "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc", 411);
	expect_status("conflicting Content-Length",
		      "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef", 400);
	expect_status("Content-Length list", "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nabcde", 400);
	expect_status("non-digit Content-Length", "POST / HTTP/1.1\r\nContent-Length: 5a\r\n\r\nabcde", 400);
	expect_status("negative Content-Length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
	expect_status("plus-signed Content-Length", "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nabcde", 400);
	expect_status("hex Content-Length", "POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\nabcde", 400);
	expect_status("empty Content-Length", "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", 400);
	expect_status("13-digit Content-Length", "POST / HTTP/1.1\r\nContent-Length: 0000000000005\r\n\r\nabcde", 400);
	expect_status("obs-fold", "GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n", 400);
	expect_status("obs-fold with tab", "GET / HTTP/1.1\r\nX-A: one\r\n\ttwo\r\n\r\n", 400);
	expect_status("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);
	expect_status("empty header name", "GET / HTTP/1.1\r\n: a\r\n\r\n", 400);
	expect_status("header without colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", 400);
	expect_status("two Authorization headers", "GET / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n", 400);
	expect_status("CR alone in a value", "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400);
	expect_status("LF alone in a value", "GET / HTTP/1.1\r\nX-A: a\nb\r\n\r\n", 400);
	expect_status("bare LF after the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400);
	expect_status("control char in a value", "GET / HTTP/1.1\r\nX-A: a\x01" "b\r\n\r\n", 400);
	expect_status("DEL in a value", "GET / HTTP/1.1\r\nX-A: a\x7f" "b\r\n\r\n", 400);
	expect_status("escape in the target", "GET /\x1b[31m HTTP/1.1\r\n\r\n", 400);
	expect_status_n("NUL in the request line", "GET /\0 HTTP/1.1\r\n\r\n", 19, MAXB, 400);
	expect_status_n("NUL in a header value", "GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 28, MAXB, 400);
	expect_status_n("NUL early, head incomplete", "GE\0", 3, MAXB, 400);
	expect_status("control char early, head incomplete", "GET /\x01", 400);
	/* tabs in values are allowed */
	struct gh_http_request r;
	size_t used;
	int status;
	const char *why;
	assert_int_equal(parse("GET / HTTP/1.1\r\nX-A: a\tb\r\n\r\n", &used, &r, &status, &why), 0);
	assert_true(str_is(r.headers[0].value, "a\tb"));
	CHECKED("411 Transfer-Encoding; 400 for bad Content-Length, obs-fold, stray CR/LF, control chars");
}

/* A request that uses bare LF line ends throughout has ended; it is refused, not waited on. */
static void test_bare_lf_request(void **state)
{
	(void)state;
	expect_status("bare LF line ends throughout", "GET / HTTP/1.1\nHost: a\n\n", 400);
	expect_status("bare LF, no headers", "GET / HTTP/1.1\n\n", 400);
	expect_status("bare LF ending the last header", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400);
	CHECKED("requests with only bare LF line ends get 400");
}

/* ---- query body ---- */

static int body(const char *json, int64_t max_stmt, struct gh_query_body *b, int *status, const char **code,
		char *msg, size_t msglen)
{
	size_t n = strlen(json);
	char *copy = malloc(n ? n : 1);
	assert_non_null(copy);
	memcpy(copy, json, n);
	memset(b, 0x5a, sizeof *b);
	*status = 0;
	*code = NULL;
	msg[0] = '\0';
	int rc = gh_query_body_parse(copy, n, max_stmt, b, status, code, msg, msglen);
	free(copy);
	return rc;
}

static void expect_body_err(const char *what, const char *json, int64_t max_stmt, int want_status,
			    const char *want_code, const char *needle)
{
	struct gh_query_body b;
	int status;
	const char *code;
	char msg[256];
	int rc = body(json, max_stmt, &b, &status, &code, msg, sizeof msg);
	if (rc == 0)
		fail_msg("%s: accepted", what);
	assert_int_equal(status, want_status);
	assert_non_null(code);
	assert_string_equal(code, want_code);
	assert_null(b.doc); /* nothing to free on failure */
	assert_null(b.sql);
	if (needle && !strstr(msg, needle))
		fail_msg("%s: message '%s' lacks '%s'", what, msg, needle);
	printf("  %d %-20s %-36s %s\n", status, code, what, msg);
}

static void test_query_body_valid(void **state)
{
	(void)state;
	struct gh_query_body b;
	int status;
	const char *code;
	char msg[256];
	assert_int_equal(body("{\"resource\":\"crm\",\"environment\":\"staging\",\"sql\":\"SELECT ?, ?\","
			      "\"params\":[1,\"two\",null]}", 1000, &b, &status, &code, msg, sizeof msg), 0);
	assert_string_equal(b.resource, "crm");
	assert_string_equal(b.environment, "staging");
	assert_string_equal(b.sql, "SELECT ?, ?");
	assert_int_equal(b.sqllen, 11);
	assert_true(json_is_array(b.params));
	assert_int_equal(json_array_size(b.params), 3);
	gh_query_body_free(&b);
	assert_null(b.doc);

	/* params may be omitted: an empty array is provided */
	assert_int_equal(body("{\"sql\":\"SELECT 1\",\"environment\":\"prod-1\",\"resource\":\"CRM_2\"}", 1000, &b, &status,
			      &code, msg, sizeof msg), 0);
	assert_true(json_is_array(b.params));
	assert_int_equal(json_array_size(b.params), 0);
	gh_query_body_free(&b);

	/* a statement exactly at the limit; unicode counts in bytes */
	assert_int_equal(body("{\"resource\":\"r\",\"environment\":\"e\",\"sql\":\"0123456789\"}", 10, &b, &status, &code,
			      msg, sizeof msg), 0);
	gh_query_body_free(&b);
	assert_int_equal(body("{\"resource\":\"r\",\"environment\":\"e\",\"sql\":\"\\u00e9\",\"params\":[]}", 2, &b, &status,
			      &code, msg, sizeof msg), 0);
	assert_int_equal(b.sqllen, 2);
	gh_query_body_free(&b);
	CHECKED("valid bodies, params optional, statement length in bytes at the limit");
}

static void test_query_body_errors(void **state)
{
	(void)state;
	expect_body_err("not JSON", "{resource: crm}", 1000, 400, "bad_request", "JSON object");
	expect_body_err("empty body", "", 1000, 400, "bad_request", "JSON object");
	expect_body_err("an array", "[\"crm\",\"staging\",\"SELECT 1\"]", 1000, 400, "bad_request", "JSON object");
	expect_body_err("trailing garbage", "{\"resource\":\"r\",\"environment\":\"e\",\"sql\":\"x\"} {}", 1000, 400,
			"bad_request", NULL);
	expect_body_err("missing resource", "{\"environment\":\"e\",\"sql\":\"x\"}", 1000, 400, "bad_request",
			"'resource' must be a string");
	expect_body_err("missing environment", "{\"resource\":\"r\",\"sql\":\"x\"}", 1000, 400, "bad_request",
			"'environment' must be a string");
	expect_body_err("missing sql", "{\"resource\":\"r\",\"environment\":\"e\"}", 1000, 400, "bad_request",
			"'sql' must be a string");
	expect_body_err("resource a number", "{\"resource\":5,\"environment\":\"e\",\"sql\":\"x\"}", 1000, 400,
			"bad_request", "'resource' must be a string");
	expect_body_err("sql null", "{\"resource\":\"r\",\"environment\":\"e\",\"sql\":null}", 1000, 400, "bad_request",
			"'sql' must be a string");
	expect_body_err("sql an array", "{\"resource\":\"r\",\"environment\":\"e\",\"sql\":[\"x\"]}", 1000, 400,
			"bad_request", "'sql' must be a string");
	expect_body_err("unknown member", "{\"resource\":\"r\",\"environment\":\"e\",\"sql\":\"x\",\"user\":\"root\"}", 1000,
			400, "bad_request", "unknown member 'user'");
	expect_body_err("duplicate resource", "{\"resource\":\"r\",\"resource\":\"s\",\"environment\":\"e\",\"sql\":\"x\"}",
			1000, 400, "bad_request", NULL);
	expect_body_err("duplicate sql", "{\"resource\":\"r\",\"environment\":\"e\",\"sql\":\"SELECT 1\",\"sql\":\"DROP\"}",
			1000, 400, "bad_request", NULL);
	expect_body_err("resource with a space", "{\"resource\":\"c rm\",\"environment\":\"e\",\"sql\":\"x\"}", 1000, 400,
			"bad_request", "must be names");
	expect_body_err("resource with a dot", "{\"resource\":\"crm.db\",\"environment\":\"e\",\"sql\":\"x\"}", 1000, 400,
			"bad_request", "must be names");
	expect_body_err("environment path", "{\"resource\":\"r\",\"environment\":\"../prod\",\"sql\":\"x\"}", 1000, 400,
			"bad_request", "must be names");
	expect_body_err("empty environment", "{\"resource\":\"r\",\"environment\":\"\",\"sql\":\"x\"}", 1000, 400,
			"bad_request", "must be names");
	expect_body_err("sql over max_statement", "{\"resource\":\"r\",\"environment\":\"e\",\"sql\":\"01234567890\"}", 10,
			413, "statement_too_large", "longer than 10 bytes");
	expect_body_err("params an object", "{\"resource\":\"r\",\"environment\":\"e\",\"sql\":\"x\",\"params\":{}}", 1000,
			400, "bad_request", "'params' must be an array");
	expect_body_err("params a string", "{\"resource\":\"r\",\"environment\":\"e\",\"sql\":\"x\",\"params\":\"1\"}", 1000,
			400, "bad_request", "'params' must be an array");
	expect_body_err("params null", "{\"resource\":\"r\",\"environment\":\"e\",\"sql\":\"x\",\"params\":null}", 1000,
			400, "bad_request", "'params' must be an array");
	expect_body_err("NUL inside sql", "{\"resource\":\"r\",\"environment\":\"e\",\"sql\":\"SELECT 1\\u0000; DROP TABLE t\"}",
			1000, 400, "bad_request", NULL);
	expect_body_err("NUL inside resource", "{\"resource\":\"r\\u0000x\",\"environment\":\"e\",\"sql\":\"x\"}", 1000, 400,
			"bad_request", NULL);
	expect_body_err("invalid UTF-8 in sql", "{\"resource\":\"r\",\"environment\":\"e\",\"sql\":\"\xff\"}", 1000, 400,
			"bad_request", NULL);

	/* too many parameters */
	struct gh_buf b;
	gh_buf_init(&b, 1 << 20);
	assert_int_equal(gh_buf_puts(&b, "{\"resource\":\"r\",\"environment\":\"e\",\"sql\":\"x\",\"params\":[0"), 0);
	for (int i = 1; i <= GH_MAX_PARAMS; i++)
		assert_int_equal(gh_buf_puts(&b, ",0"), 0);
	assert_int_equal(gh_buf_puts(&b, "]}"), 0);
	expect_body_err("32767 params", b.data, 1000, 413, "too_many_params", "more than");
	gh_buf_free(&b);
	CHECKED("body errors: missing/wrong-type/unknown/duplicate members, bad names, 413 statement_too_large");
}

/* The endpoint route table: exact paths, prefixes ending in '/', and one '*' segment, with the
 * variable segment handed to the handler; a segment is never empty and holds no '/'. */
static const struct gh_api_route *route(const char *method, const char *path, bool *wrong)
{
	return gh_api_find(method, strlen(method), path, strlen(path), wrong);
}

static void test_api_routes(void **state)
{
	(void)state;
	bool wrong = false;
	const struct gh_api_route *r = route("POST", "/v1/users/bob.smith@example.com/disable", &wrong);
	assert_non_null(r);
	assert_ptr_equal(r->fn, gh_api_user_disable);
	const char *path = "/v1/users/bob.smith@example.com/disable";
	struct gh_str seg = gh_api_segment(r, path, strlen(path));
	assert_int_equal(seg.len, strlen("bob.smith@example.com"));
	assert_memory_equal(seg.p, "bob.smith@example.com", seg.len);
	assert_ptr_equal(route("POST", "/v1/users/bob/enable", &wrong)->fn, gh_api_user_enable);
	assert_null(route("POST", "/v1/users//disable", &wrong));
	assert_null(route("POST", "/v1/users/a/b/disable", &wrong));
	assert_null(route("POST", "/v1/users/bob/disabled", &wrong));
	assert_null(route("POST", "/v1/users/disable", &wrong));
	assert_null(route("GET", "/v1/users/bob/disable", &wrong));
	assert_true(wrong);
	r = route("DELETE", "/v1/tokens/tok_ab", &wrong);
	assert_non_null(r);
	seg = gh_api_segment(r, "/v1/tokens/tok_ab", 17);
	assert_int_equal(seg.len, 6);
	assert_null(route("DELETE", "/v1/tokens/", &wrong));
	assert_null(route("DELETE", "/v1/tokens/a/b", &wrong));
	assert_ptr_equal(route("POST", "/v1/tokens", &wrong)->fn, gh_api_token_issue);
	assert_null(route("GET", "/v1/secrets/x", &wrong));
	assert_true(wrong);
	assert_ptr_equal(route("PUT", "/v1/config", &wrong)->fn, gh_api_config_put);
	r = route("GET", "/v1/config", &wrong);
	assert_int_equal(gh_api_segment(r, "/v1/config", 10).len, 0);
	assert_null(route("GET", "/v1/config/x", &wrong));
	assert_false(wrong);
	CHECKED("route table: exact, prefix and '*' routes, segments, 405 vs 404");
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_get_complete),
	cmocka_unit_test(test_post_body),
	cmocka_unit_test(test_every_prefix_needs_more),
	cmocka_unit_test(test_pipelined),
	cmocka_unit_test(test_keep_alive),
	cmocka_unit_test(test_keep_alive_http10),
	cmocka_unit_test(test_query_params),
	cmocka_unit_test(test_methods_and_targets),
	cmocka_unit_test(test_http2_is_505),
	cmocka_unit_test(test_limits),
	cmocka_unit_test(test_header_bytes_limit),
	cmocka_unit_test(test_malformed_headers),
	cmocka_unit_test(test_bare_lf_request),
	cmocka_unit_test(test_query_body_valid),
	cmocka_unit_test(test_query_body_errors),
	cmocka_unit_test(test_api_routes),
};

GH_UNIT_MAIN("test_http", tests)
