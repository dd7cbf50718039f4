/* front: the route table of the endpoints in api_*.c and the helpers they share (api.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "front/api.h"
#include "front/server_int.h"

/* One line per endpoint; handlers are declared in api_handlers.h. */
#include "front/api_handlers.h"

static const struct gh_api_route routes[] = {
#define GH_API_ROUTE(method, path, access, kind, event, fn) {method, path, access, kind, event, fn},
	GH_API_ROUTES(GH_API_ROUTE)
#undef GH_API_ROUTE
	{NULL, NULL, GH_API_ADMIN, GH_API_READ, NULL, NULL},
};

/* Matches path against a route path: exact; a prefix ending in '/' followed by one segment;
 * or with one '*' standing for one segment ("/v1/users/ * /disable" without the spaces). The
 * segment is never empty and holds no '/'. *off and *len locate it ("" for an exact route). */
static bool route_match(const char *rp, const char *path, size_t plen, size_t *off, size_t *len)
{
	size_t n = strlen(rp);
	const char *star = strchr(rp, '*');
	*off = *len = 0;
	if (star) {
		size_t pre = (size_t)(star - rp), post = n - pre - 1;
		if (plen <= pre + post || memcmp(path, rp, pre) != 0 || memcmp(path + plen - post, star + 1, post) != 0)
			return false;
		*off = pre;
		*len = plen - pre - post;
		return !memchr(path + pre, '/', *len);
	}
	if (n && rp[n - 1] == '/') {
		if (plen <= n || memcmp(path, rp, n) != 0 || memchr(path + n, '/', plen - n))
			return false;
		*off = n;
		*len = plen - n;
		return true;
	}
	return plen == n && memcmp(path, rp, n) == 0;
}

const struct gh_api_route *gh_api_find(const char *method, size_t mlen, const char *path, size_t plen,
				       bool *wrong_method)
{
	*wrong_method = false;
	for (const struct gh_api_route *r = routes; r->path; r++) {
		size_t off, len;
		if (!route_match(r->path, path, plen, &off, &len))
			continue;
		if (strlen(r->method) == mlen && memcmp(method, r->method, mlen) == 0)
			return r;
		*wrong_method = true;
	}
	return NULL;
}

struct gh_str gh_api_segment(const struct gh_api_route *r, const char *path, size_t plen)
{
	size_t off = 0, len = 0;
	struct gh_str s = {"", 0};
	if (route_match(r->path, path, plen, &off, &len)) {
		s.p = path + off;
		s.len = len;
	}
	return s;
}

void gh_api_error(struct gh_api_req *req, struct gh_api_resp *resp, int status, const char *code, const char *fmt,
		  ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	resp->status = status;
	resp->content_type = NULL;
	gh_buf_reset(resp->body);
	gh_buf_puts(resp->body, "{\"error\":{\"code\":");
	gh_buf_json_string(resp->body, code, strlen(code));
	gh_buf_puts(resp->body, ",\"message\":");
	gh_buf_json_string(resp->body, msg, strlen(msg));
	gh_buf_printf(resp->body, ",\"request_id\":\"%s\"}}", req->request_id);
}

bool gh_api_param(struct gh_api_req *req, struct gh_api_resp *resp, const char *name, char *out, size_t n,
		  bool *bad)
{
	struct gh_str v;
	*bad = false;
	if (!gh_http_query_param(req->http, name, &v))
		return false;
	size_t o = 0;
	for (size_t i = 0; i < v.len; i++) {
		int ch = (unsigned char)v.p[i];
		if (ch == '+') {
			ch = ' ';
		} else if (ch == '%') {
			if (i + 2 >= v.len)
				goto refuse;
			int hi = gh_hex_digit((unsigned char)v.p[i + 1]), lo = gh_hex_digit((unsigned char)v.p[i + 2]);
			if (hi < 0 || lo < 0)
				goto refuse;
			ch = hi * 16 + lo;
			i += 2;
		}
		if (ch == 0 || o + 1 >= n)
			goto refuse;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return true;
refuse:
	*bad = true;
	gh_api_error(req, resp, 400, "bad_request", "query parameter '%s' is malformed or too long", name);
	return false;
}

int gh_api_audit(struct gh_api_req *req, struct gh_api_resp *resp, struct gh_audit_record *r)
{
	if (!r->time_ms)
		r->time_ms = gh_now_ms();
	r->request_id = req->request_id;
	if (!r->user)
		r->user = req->claims->sub[0] ? req->claims->sub : NULL;
	if (!r->groups)
		r->groups = req->groups_json;
	if (!r->app && req->claims->app[0])
		r->app = req->claims->app;
	if (!r->client)
		r->client = req->client;
	if (r->rows == 0)
		r->rows = -1;
	if (r->duration_ms == 0)
		r->duration_ms = -1;
	struct gh_error err;
	if (gh_audit_append(req->srv->audit, r, NULL, &err)) {
		gh_api_error(req, resp, 503, "audit_unavailable",
			     "the audit trail could not be written, so nothing was changed or released");
		return GH_EAUDIT;
	}
	req->audited = true;
	return 0;
}
