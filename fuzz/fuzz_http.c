/* fuzz: the HTTP request parser and the query body parser (front). The input is a byte stream
 * from a client: requests are parsed one after another as a keep-alive connection would
 * (pipelining), each complete one is checked against what gh_http_parse promises, and its body
 * goes to gh_query_body_parse. When the first request does not parse, the raw input is given
 * to gh_query_body_parse instead, so JSON bodies are fuzzed directly too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front/http_parse.h"
#include "front/query_body.h"

#define MAX_BODY ((size_t)1024 * 1024)
#define MAX_PIPELINED 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts unless s (when it holds bytes) lies within [lo, hi). */
static void inside(struct gh_str s, const uint8_t *lo, const uint8_t *hi, const char *what)
{
	if (s.len == 0)
		return; /* an empty string carries no bytes; it may point at a literal "" */
	const uint8_t *p = (const uint8_t *)s.p;
	if (!p || p < lo || p > hi || s.len > (size_t)(hi - p)) {
		fprintf(stderr, "fuzz_http: %s (%zu bytes) is not inside the request\n", what, s.len);
		abort();
	}
}

static void body(const char *p, size_t n)
{
	struct gh_query_body b;
	int status = 0;
	const char *code = NULL;
	char msg[256];
	msg[0] = 0;
	if (gh_query_body_parse(p, n, GH_DEFAULT_MAX_STATEMENT, &b, &status, &code, msg, sizeof msg) == 0) {
		/* accepted: the three strings and an array of params */
		if (!b.doc || !b.resource || !b.environment || !b.sql || !json_is_array(b.params) ||
		    strlen(b.sql) != b.sqllen || b.sqllen > GH_DEFAULT_MAX_STATEMENT)
			abort();
	} else if (!code || !msg[0] || (status != 400 && status != 413 && status != 500) || b.doc) {
		abort(); /* a refusal always says what and why, and holds nothing */
	}
	gh_query_body_free(&b);
}

/* Checks one complete request parsed from buf[0..len) that spans used bytes. */
static void check_request(const uint8_t *buf, size_t len, size_t used, const struct gh_http_request *r)
{
	const uint8_t *end = buf + used;
	if (used > len || r->header_bytes > used || used - r->header_bytes != r->content_length ||
	    r->body.len != r->content_length || r->nheaders > GH_HTTP_MAX_HEADERS || r->method.len == 0 ||
	    r->target.len == 0 || (r->minor != 0 && r->minor != 1))
		abort();
	inside(r->method, buf, end, "method");
	inside(r->target, buf, end, "target");
	inside(r->path, buf, end, "path");
	inside(r->query, buf, end, "query");
	inside(r->authorization, buf, end, "authorization");
	inside(r->body, buf, end, "body");
	for (size_t i = 0; i < r->nheaders; i++) {
		inside(r->headers[i].name, buf, end, "header name");
		inside(r->headers[i].value, buf, end, "header value");
	}
	if (r->body.len && (const uint8_t *)r->body.p != buf + r->header_bytes)
		abort();
	static const char *const params[] = {"since", "limit"};
	for (size_t i = 0; i < 2; i++) {
		struct gh_str v = {NULL, 0};
		if (gh_http_query_param(r, params[i], &v))
			inside(v, (const uint8_t *)r->query.p, (const uint8_t *)r->query.p + r->query.len, params[i]);
	}
	gh_http_header(r, "content-type");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gh_http_request req; /* large (64 headers): keep it off the stack */
	size_t off = 0;
	for (int n = 0; n < MAX_PIPELINED && off < size; n++) {
		size_t used = 0;
		int status = 0;
		const char *why = NULL;
		int rc = gh_http_parse(data + off, size - off, MAX_BODY, &used, &req, &status, &why);
		if (rc == 0) {
			check_request(data + off, size - off, used, &req);
			body(req.body.p, req.body.len);
			if (used == 0)
				abort(); /* a complete request spans at least its head */
			off += used;
			continue;
		}
		if (rc == GH_EAGAIN) {
			/* need more: nothing to check but that it said nothing else */
		} else if ((rc != GH_EINVAL && rc != GH_ETOOBIG) || !why ||
			   (status != 400 && status != 411 && status != 413 && status != 414 && status != 431 &&
			    status != 501 && status != 505)) {
			abort();
		}
		if (n == 0)
			body((const char *)data, size);
		break;
	}
	return 0;
}
