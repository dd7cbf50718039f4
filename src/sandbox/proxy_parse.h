/* sandbox (private): the egress proxy's request-head parser, exposed for the unit tests and
 * fuzz/fuzz_sandbox_proxy.c. Not part of the module's public interface (sandbox.h). */
#ifndef GH_SANDBOX_PROXY_PARSE_H
#define GH_SANDBOX_PROXY_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* A proxy request head is at most this many bytes, the blank line included (the same bound as
 * the front's header bytes: a proxy request has no reason to carry more). */
#define GH_PROXY_MAX_HEAD 16384

/* What the request target asks for. Only the first two can ever be allowed. */
enum gh_proxy_target {
	GH_PROXY_CONNECT,        /* CONNECT host[:port] (authority-form); port defaults to 443 */
	GH_PROXY_ABSOLUTE_HTTP,  /* METHOD http://host[:port]/path; port defaults to 80 */
	GH_PROXY_OTHER_SCHEME,   /* absolute-form with another scheme (https://, ws://, ftp://...) */
	GH_PROXY_ORIGIN_FORM,    /* "/path" or "*": a request for the proxy itself */
};

/* One parsed head. Every gh_str points into the parsed buffer. */
struct gh_proxy_head {
	enum gh_proxy_target kind;
	struct gh_str method;    /* the token before the first space */
	struct gh_str target;    /* the request target, as sent */
	struct gh_str host;      /* CONNECT/ABSOLUTE_HTTP: host without IPv6 brackets; else empty */
	struct gh_str path;      /* ABSOLUTE_HTTP: "/..." (empty means "/"); else empty */
	uint16_t port;           /* CONNECT/ABSOLUTE_HTTP: explicit or default port */
	bool ipv6;               /* host was a bracketed IPv6 literal */
	int minor;               /* HTTP/1.<minor>: 0 or 1 */
	size_t line_len;         /* bytes of the request line, CRLF included */
	size_t len;              /* bytes of the whole head, the blank line included */
};

/* Parses one HTTP/1.x proxy request head from buf[0..len). Never reads past len.
 * Returns 0 with *used = out->len when a whole valid head is there; GH_EAGAIN when more bytes
 * could complete it; GH_ETOOBIG when GH_PROXY_MAX_HEAD bytes hold no end of head; GH_EINVAL when
 * it is malformed (bad request line, bad header line, bare LF or CR, NUL, obs-fold, userinfo or a
 * bad host/port in the target). A head of another kind than CONNECT/ABSOLUTE_HTTP still parses
 * (the caller refuses it by kind). */
int gh_proxy_head_parse(const uint8_t *buf, size_t len, size_t *used, struct gh_proxy_head *out);

/* Iterates over the header lines of a head that gh_proxy_head_parse accepted: *pos starts at
 * h->line_len; returns true with name and value (value trimmed of spaces and tabs) and moves
 * *pos past the line, false at the blank line. */
bool gh_proxy_head_next(const uint8_t *buf, const struct gh_proxy_head *h, size_t *pos, struct gh_str *name,
			struct gh_str *value);

/* Test-only: how long a proxy connection may take to send its head (default 10 000 ms);
 * applies to proxies started afterwards. */
void gh_proxy_set_head_timeout_ms(int ms);

#endif
