/* fuzz: the egress proxy's request-head parser (sandbox/proxy_parse.h). The input is the start of
 * a proxy connection from the sandbox. Checks what gh_proxy_head_parse promises: a known result
 * code; on success a head within the input and within GH_PROXY_MAX_HEAD, every string inside it,
 * a host and non-zero port for CONNECT and http:// targets, header lines that iterate to the blank
 * line; and restartability: every shorter prefix of an accepted head asks for more. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/proxy_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_sandbox_proxy: %s\n", what);
	abort();
}

/* Aborts unless s lies within buf[0..len). */
static void inside(struct gh_str s, const uint8_t *buf, size_t len, const char *what)
{
	if (s.len == 0)
		return;
	const uint8_t *p = (const uint8_t *)s.p;
	if (!p || p < buf || p > buf + len || s.len > (size_t)(buf + len - p))
		fail(what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a private copy of exactly size bytes, so ASan sees any read past the end */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct gh_proxy_head h;
	size_t used = 0;
	int rc = gh_proxy_head_parse(buf, size, &used, &h);
	if (rc != 0 && rc != GH_EAGAIN && rc != GH_EINVAL && rc != GH_ETOOBIG)
		fail("unknown result code");
	if (rc == GH_ETOOBIG && size < GH_PROXY_MAX_HEAD)
		fail("too big below the limit");
	if (rc == 0) {
		if (used != h.len || h.len > size || h.len > GH_PROXY_MAX_HEAD || h.line_len > h.len || h.len < 4)
			fail("bad lengths");
		if (memcmp(buf + h.len - 4, "\r\n\r\n", 4) != 0)
			fail("head does not end with a blank line");
		inside(h.method, buf, h.len, "method");
		inside(h.target, buf, h.len, "target");
		inside(h.host, buf, h.len, "host");
		inside(h.path, buf, h.len, "path");
		if (h.method.len == 0 || h.target.len == 0 || (h.minor != 0 && h.minor != 1))
			fail("request line fields");
		if (h.kind == GH_PROXY_CONNECT || h.kind == GH_PROXY_ABSOLUTE_HTTP) {
			if (h.host.len == 0 || h.port == 0)
				fail("no host or port");
			for (size_t i = 0; i < h.host.len; i++)
				if (h.host.p[i] <= ' ' || h.host.p[i] == '/' || h.host.p[i] == '@' || h.host.p[i] == ']')
					fail("bad byte in host");
		}
		if (h.kind == GH_PROXY_ABSOLUTE_HTTP && h.path.len && h.path.p[0] != '/')
			fail("path not origin-form");
		size_t pos = h.line_len, n = 0;
		struct gh_str name, value;
		while (gh_proxy_head_next(buf, &h, &pos, &name, &value)) {
			inside(name, buf, h.len, "header name");
			inside(value, buf, h.len, "header value");
			if (name.len == 0 || pos > h.len - 2 || ++n > GH_PROXY_MAX_HEAD)
				fail("header iteration");
		}
		if (pos != h.len - 2)
			fail("header iteration did not end at the blank line");
		/* restartable: any prefix of an accepted head needs more */
		size_t cuts[3] = {h.len - 1, h.len / 2, h.line_len - 1};
		for (int i = 0; i < 3; i++) {
			struct gh_proxy_head h2;
			size_t u2;
			if (gh_proxy_head_parse(buf, cuts[i], &u2, &h2) != GH_EAGAIN)
				fail("a prefix of an accepted head did not ask for more");
		}
	}
	free(buf);
	return 0;
}
