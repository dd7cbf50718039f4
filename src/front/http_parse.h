/* front: HTTP/1.1 request parsing. Restartable (call again with more bytes), never reads past
 * len, bounded by the limits in core/limits.h. */
#ifndef GH_FRONT_HTTP_PARSE_H
#define GH_FRONT_HTTP_PARSE_H

#include "core/core.h"

struct gh_http_header {
	struct gh_str name, value;
};

struct gh_http_request {
	struct gh_str method, target, path, query;
	int minor; /* HTTP/1.minor */
	struct gh_http_header headers[GH_HTTP_MAX_HEADERS];
	size_t nheaders;
	struct gh_str authorization; /* empty when absent */
	struct gh_str body;
	size_t content_length;
	size_t header_bytes; /* bytes up to and including the blank line */
	bool keep_alive;
};

/* Parses one request from buf[0..len).
 * Returns 0 when complete (*used = bytes it spans), GH_EAGAIN when more bytes are needed,
 * or GH_EINVAL / GH_ETOOBIG when it must be refused, with *status the HTTP status to send
 * (400, 411, 413, 414, 431, 501, 505) and *why a short reason. Pointers in out refer into buf. */
int gh_http_parse(const uint8_t *buf, size_t len, size_t max_body, size_t *used, struct gh_http_request *out,
		  int *status, const char **why);

/* Finds a header by case-insensitive name; NULL when absent. */
const struct gh_http_header *gh_http_header(const struct gh_http_request *r, const char *name);

/* Finds query parameter name in r->query; returns false when absent. Values are not
 * percent-decoded (ours are numbers and names). */
bool gh_http_query_param(const struct gh_http_request *r, const char *name, struct gh_str *value);

#endif
