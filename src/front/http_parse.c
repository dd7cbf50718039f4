/* front: a strict HTTP/1.1 request parser (RFC 9112 subset: no chunked bodies). */
#include "front/http_parse.h"

#include <string.h>

static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int refuse(int *status, const char **why, int st, const char *reason, int rc)
{
	*status = st;
	*why = reason;
	return rc;
}

/* Finds CRLF CRLF within the first n bytes; returns the offset just past it or 0. */
static size_t find_end(const uint8_t *buf, size_t n)
{
	for (size_t i = 3; i < n; i++)
		if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
			return i + 1;
	return 0;
}

static bool str_eq_ci(const uint8_t *p, size_t n, const char *z)
{
	size_t zl = strlen(z);
	if (n != zl)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char a = p[i], b = (unsigned char)z[i];
		if (a >= 'A' && a <= 'Z') a = (unsigned char)(a + 32);
		if (b >= 'A' && b <= 'Z') b = (unsigned char)(b + 32);
		if (a != b)
			return false;
	}
	return true;
}

/* Does the comma-separated header value contain token (case-insensitive)? */
static bool has_token(struct gh_str v, const char *token)
{
	size_t i = 0;
	while (i < v.len) {
		while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
			i++;
		size_t s = i;
		while (i < v.len && v.p[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
			e--;
		if (str_eq_ci((const uint8_t *)v.p + s, e - s, token))
			return true;
	}
	return false;
}

int gh_http_parse(const uint8_t *buf, size_t len, size_t max_body, size_t *used, struct gh_http_request *out,
		  int *status, const char **why)
{
	const size_t head_max = GH_HTTP_MAX_REQUEST_LINE + GH_HTTP_MAX_HEADER_BYTES;
	size_t scan = len < head_max ? len : head_max;
	size_t hend = find_end(buf, scan);
	memset(out, 0, sizeof *out);
	/* Refuse garbage early rather than waiting for 24 KiB of it: control characters, and line
	 * ends that are not CRLF (the blank line would never be found). */
	size_t check = hend ? hend : scan;
	for (size_t i = 0; i < check; i++) {
		unsigned char c = buf[i];
		if (c == 0 || (c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f)
			return refuse(status, why, 400, "control character in request head", GH_EINVAL);
		if (c == '\n' && (i == 0 || buf[i - 1] != '\r'))
			return refuse(status, why, 400, "line not ended by CRLF", GH_EINVAL);
		if (c == '\r' && i + 1 < check && buf[i + 1] != '\n')
			return refuse(status, why, 400, "CR not followed by LF", GH_EINVAL);
	}
	/* The request line and the header fields have limits of their own. */
	const uint8_t *nl = memchr(buf, '\n', scan);
	size_t line_end = nl ? (size_t)(nl - buf) + 1 : 0;
	if ((!nl && scan > GH_HTTP_MAX_REQUEST_LINE) || line_end > GH_HTTP_MAX_REQUEST_LINE + 2)
		return refuse(status, why, 414, "request line too long", GH_ETOOBIG);
	if (nl && (hend ? hend : scan) - line_end > GH_HTTP_MAX_HEADER_BYTES)
		return refuse(status, why, 431, "request headers too large", GH_ETOOBIG);
	if (!hend)
		return GH_EAGAIN;
	out->header_bytes = hend;

	/* request line: METHOD SP target SP HTTP/1.x CRLF */
	size_t i = 0;
	while (i < hend && is_tchar(buf[i]))
		i++;
	if (i == 0 || i > 16 || buf[i] != ' ')
		return refuse(status, why, 400, "malformed request method", GH_EINVAL);
	out->method = (struct gh_str){(const char *)buf, i};
	size_t t0 = ++i;
	while (i < hend && buf[i] > 0x20 && buf[i] != 0x7f)
		i++;
	if (i == t0 || buf[i] != ' ' || buf[t0] != '/')
		return refuse(status, why, 400, "malformed request target", GH_EINVAL);
	if (i - t0 > GH_HTTP_MAX_REQUEST_LINE)
		return refuse(status, why, 414, "request target too long", GH_ETOOBIG);
	out->target = (struct gh_str){(const char *)buf + t0, i - t0};
	const char *q = memchr(out->target.p, '?', out->target.len);
	out->path = (struct gh_str){out->target.p, q ? (size_t)(q - out->target.p) : out->target.len};
	out->query = q ? (struct gh_str){q + 1, out->target.len - out->path.len - 1} : (struct gh_str){"", 0};
	i++;
	if (hend - i < 10 || memcmp(buf + i, "HTTP/", 5) != 0 || buf[i + 5] < '0' || buf[i + 5] > '9' ||
	    buf[i + 6] != '.' || buf[i + 7] < '0' || buf[i + 7] > '9')
		return refuse(status, why, 400, "malformed HTTP version", GH_EINVAL);
	if (buf[i + 5] != '1' || (buf[i + 7] != '0' && buf[i + 7] != '1'))
		return refuse(status, why, 505, "only HTTP/1.0 and HTTP/1.1 are supported", GH_EINVAL);
	out->minor = buf[i + 7] - '0';
	i += 8;
	if (buf[i] != '\r' || buf[i + 1] != '\n')
		return refuse(status, why, 400, "malformed request line", GH_EINVAL);
	i += 2;

	/* header fields */
	bool have_cl = false, close = false, keep = false;
	size_t cl = 0;
	while (i < hend - 2) {
		size_t n0 = i;
		while (i < hend && is_tchar(buf[i]))
			i++;
		if (i == n0 || buf[i] != ':')
			return refuse(status, why, 400, "malformed header field", GH_EINVAL);
		if (out->nheaders >= GH_HTTP_MAX_HEADERS)
			return refuse(status, why, 431, "too many header fields", GH_ETOOBIG);
		struct gh_http_header *h = &out->headers[out->nheaders++];
		h->name = (struct gh_str){(const char *)buf + n0, i - n0};
		i++;
		while (i < hend && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		size_t v0 = i;
		while (i < hend && buf[i] != '\r') {
			unsigned char c = buf[i];
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return refuse(status, why, 400, "control character in header value", GH_EINVAL);
			i++;
		}
		if (i + 1 >= hend || buf[i + 1] != '\n')
			return refuse(status, why, 400, "header line not ended by CRLF", GH_EINVAL);
		size_t v1 = i;
		while (v1 > v0 && (buf[v1 - 1] == ' ' || buf[v1 - 1] == '\t'))
			v1--;
		h->value = (struct gh_str){(const char *)buf + v0, v1 - v0};
		i += 2;
		if (buf[i] == ' ' || buf[i] == '\t')
			return refuse(status, why, 400, "obsolete header line folding", GH_EINVAL);

		if (gh_str_caseeq(h->name, "content-length")) {
			size_t v = 0;
			if (h->value.len == 0 || h->value.len > 12)
				return refuse(status, why, 400, "invalid Content-Length", GH_EINVAL);
			for (size_t k = 0; k < h->value.len; k++) {
				char c = h->value.p[k];
				if (c < '0' || c > '9')
					return refuse(status, why, 400, "invalid Content-Length", GH_EINVAL);
				v = v * 10 + (size_t)(c - '0');
			}
			if (have_cl && v != cl)
				return refuse(status, why, 400, "conflicting Content-Length headers", GH_EINVAL);
			have_cl = true;
			cl = v;
		} else if (gh_str_caseeq(h->name, "transfer-encoding")) {
			return refuse(status, why, 411, "Transfer-Encoding is not supported; send Content-Length", GH_EINVAL);
		} else if (gh_str_caseeq(h->name, "connection")) {
			if (has_token(h->value, "close"))
				close = true;
			if (has_token(h->value, "keep-alive"))
				keep = true;
		} else if (gh_str_caseeq(h->name, "authorization")) {
			if (out->authorization.p)
				return refuse(status, why, 400, "more than one Authorization header", GH_EINVAL);
			out->authorization = h->value;
		}
	}
	if (cl > max_body)
		return refuse(status, why, 413, "request body too large", GH_ETOOBIG);
	out->content_length = cl;
	/* HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes unless told to keep */
	out->keep_alive = !close && (out->minor == 1 || keep);
	if (len - hend < cl)
		return GH_EAGAIN;
	out->body = (struct gh_str){(const char *)buf + hend, cl};
	*used = hend + cl;
	return 0;
}

const struct gh_http_header *gh_http_header(const struct gh_http_request *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (gh_str_caseeq(r->headers[i].name, name))
			return &r->headers[i];
	return NULL;
}

bool gh_http_query_param(const struct gh_http_request *r, const char *name, struct gh_str *value)
{
	size_t nl = strlen(name), i = 0;
	while (i < r->query.len) {
		size_t s = i;
		while (i < r->query.len && r->query.p[i] != '&')
			i++;
		const char *eq = memchr(r->query.p + s, '=', i - s);
		size_t kl = eq ? (size_t)(eq - (r->query.p + s)) : i - s;
		if (kl == nl && memcmp(r->query.p + s, name, nl) == 0) {
			value->p = eq ? eq + 1 : r->query.p + i;
			value->len = eq ? (size_t)(r->query.p + i - (eq + 1)) : 0;
			return true;
		}
		i++;
	}
	return false;
}
