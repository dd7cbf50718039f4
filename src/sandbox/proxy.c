/* sandbox: the egress proxy outside the sandbox (see sandbox.h).
 *
 * Threads: one acceptor thread reads egress_fd (SEQPACKET, one tag byte + one socket in
 * SCM_RIGHTS per message); each accepted connection is served by its own thread, at most
 * GH_PROXY_MAX_CONNS at once (more are answered 503 and reported refused). A connection thread
 * uses non-blocking sockets and poll(), and every poll also watches the proxy's wake pipe, so
 * gh_proxy_stop makes every thread return promptly (a getaddrinfo in progress is the one call
 * it cannot interrupt). Each connection reports exactly one event, from its own thread; the
 * acceptor reports refused messages from its thread: on_event must be thread-safe.
 *
 * Events: `allowed` is the policy's decision. A refused connection (bad message, unknown tag,
 * malformed or oversized or late head, origin-form, another scheme, not an allowed origin, a name
 * resolving to a loopback/link-local/private/own address, over the connection limit) reports
 * allowed=false with a reason and gets a 403 (503 over the limit; gateway connections are just
 * closed). An allowed destination that cannot be reached reports allowed=true with a reason and
 * gets a 502. Stop reports every live connection too (exactly one event per connection).
 *
 * egress_fd stays the caller's: stop shuts down its reading side but does not close it. The
 * limits below are the proxy's own and private to it (src/core/limits.h is not ours to edit). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/proxy_parse.h"
#include "sandbox/sandbox.h"

/* Connections served at once: a sandboxed backend needs a handful; 64 threads bound memory. */
#define GH_PROXY_MAX_CONNS 64
/* Connect timeout to the gateway or an origin (ms). */
#define GH_PROXY_CONNECT_MS 10000
/* Default time a proxy connection has to send its request head (ms). */
#define GH_PROXY_HEAD_MS 10000
/* Bytes buffered per relay direction. */
#define GH_PROXY_RELAY_BUF 16384
/* Time to deliver a refusal (403/502/503) before giving up on the client (ms). */
#define GH_PROXY_REFUSAL_MS 2000
/* Bytes of a refused client's further input read and dropped so the refusal is not lost to a
 * reset. */
#define GH_PROXY_DRAIN_MAX (256 * 1024)
/* Origins accepted by gh_proxy_start. */
#define GH_PROXY_MAX_ORIGINS 1024
/* fds accepted in one control message before it is judged (extra ones are closed). */
#define GH_PROXY_MAX_MSG_FDS 16

static atomic_int head_timeout_ms = GH_PROXY_HEAD_MS;

void gh_proxy_set_head_timeout_ms(int ms)
{
	atomic_store(&head_timeout_ms, ms > 0 ? ms : GH_PROXY_HEAD_MS);
}

/* ------------------------------------------------------------------------------------------
 * The request-head parser */

static bool is_tchar(uint8_t c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_host_char(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' ||
	       c == '_';
}

/* Parses "host[:port]" or "[v6]:port" in s[0..n) into h; def is the default port. */
static int parse_authority(const uint8_t *s, size_t n, uint16_t def, struct gh_proxy_head *h)
{
	size_t i = 0;
	h->ipv6 = false;
	if (n > 0 && s[0] == '[') {
		size_t j = 1;
		while (j < n && s[j] != ']') {
			uint8_t c = s[j];
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
			      c == '.'))
				return GH_EINVAL;
			j++;
		}
		if (j >= n || j == 1 || j - 1 > 45)
			return GH_EINVAL;
		h->host.p = (const char *)s + 1;
		h->host.len = j - 1;
		h->ipv6 = true;
		i = j + 1;
	} else {
		while (i < n && s[i] != ':') {
			if (!is_host_char(s[i]))
				return GH_EINVAL;
			i++;
		}
		if (i == 0 || i > 253)
			return GH_EINVAL;
		h->host.p = (const char *)s;
		h->host.len = i;
	}
	if (i == n) {
		h->port = def;
		return 0;
	}
	if (s[i] != ':' || i + 1 == n || n - (i + 1) > 5)
		return GH_EINVAL;
	unsigned long port = 0;
	for (size_t k = i + 1; k < n; k++) {
		if (s[k] < '0' || s[k] > '9')
			return GH_EINVAL;
		port = port * 10 + (unsigned long)(s[k] - '0');
	}
	if (port == 0 || port > 65535)
		return GH_EINVAL;
	h->port = (uint16_t)port;
	return 0;
}

/* Classifies and splits the request target t[0..n). */
static int parse_target(const uint8_t *t, size_t n, struct gh_proxy_head *h)
{
	if (h->method.len == 7 && memcmp(h->method.p, "CONNECT", 7) == 0) {
		h->kind = GH_PROXY_CONNECT;
		return parse_authority(t, n, 443, h);
	}
	if (t[0] == '/' || (n == 1 && t[0] == '*')) {
		h->kind = GH_PROXY_ORIGIN_FORM;
		return 0;
	}
	/* absolute-form: scheme ":" ... */
	size_t i = 0;
	while (i < n && t[i] != ':') {
		uint8_t c = t[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (i > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'));
		if (!ok)
			return GH_EINVAL;
		i++;
	}
	if (i == 0 || i == n)
		return GH_EINVAL;
	if (!(i == 4 && strncasecmp((const char *)t, "http", 4) == 0)) {
		h->kind = GH_PROXY_OTHER_SCHEME;
		return 0;
	}
	if (n - i < 3 || t[i + 1] != '/' || t[i + 2] != '/')
		return GH_EINVAL;
	size_t a = i + 3, e = a;
	while (e < n && t[e] != '/' && t[e] != '?' && t[e] != '#') {
		if (t[e] == '@')
			return GH_EINVAL; /* userinfo: never forwarded, never matched */
		e++;
	}
	if (e < n && t[e] != '/')
		return GH_EINVAL;
	h->kind = GH_PROXY_ABSOLUTE_HTTP;
	h->path.p = (const char *)t + e;
	h->path.len = n - e;
	return parse_authority(t + a, e - a, 80, h);
}

/* Parses the request line buf[0..n) (without CRLF). */
static int parse_request_line(const uint8_t *buf, size_t n, struct gh_proxy_head *h)
{
	size_t i = 0;
	while (i < n && buf[i] != ' ') {
		if (!is_tchar(buf[i]))
			return GH_EINVAL;
		i++;
	}
	if (i == 0 || i == n)
		return GH_EINVAL;
	h->method.p = (const char *)buf;
	h->method.len = i;
	size_t ts = ++i;
	while (i < n && buf[i] != ' ') {
		if (buf[i] <= 0x20 || buf[i] >= 0x7f)
			return GH_EINVAL;
		i++;
	}
	if (i == ts || i == n)
		return GH_EINVAL;
	h->target.p = (const char *)buf + ts;
	h->target.len = i - ts;
	i++;
	if (n - i != 8 || memcmp(buf + i, "HTTP/1.", 7) != 0 || (buf[i + 7] != '0' && buf[i + 7] != '1'))
		return GH_EINVAL;
	h->minor = buf[i + 7] - '0';
	return parse_target(buf + ts, h->target.len, h);
}

/* Checks one header line buf[0..n) (without CRLF): token ":" visible or blank bytes. */
static int check_header_line(const uint8_t *buf, size_t n)
{
	size_t i = 0;
	while (i < n && buf[i] != ':') {
		if (!is_tchar(buf[i]))
			return GH_EINVAL; /* includes a leading space or tab: obs-fold */
		i++;
	}
	if (i == 0 || i == n)
		return GH_EINVAL;
	for (i++; i < n; i++)
		if ((buf[i] < 0x20 && buf[i] != '\t') || buf[i] == 0x7f)
			return GH_EINVAL;
	return 0;
}

int gh_proxy_head_parse(const uint8_t *buf, size_t len, size_t *used, struct gh_proxy_head *out)
{
	memset(out, 0, sizeof *out);
	*used = 0;
	size_t lim = len < GH_PROXY_MAX_HEAD ? len : GH_PROXY_MAX_HEAD;
	size_t start = 0, line = 0;
	for (size_t i = 0; i < lim; i++) {
		uint8_t c = buf[i];
		if (c == 0)
			return GH_EINVAL;
		if (c == '\n')
			return GH_EINVAL; /* a bare LF */
		if (c != '\r')
			continue;
		if (i + 1 >= lim)
			break; /* the LF may come */
		if (buf[i + 1] != '\n')
			return GH_EINVAL; /* a bare CR */
		size_t n = i - start;
		int rc;
		if (line == 0) {
			rc = parse_request_line(buf, n, out);
			out->line_len = i + 2;
		} else if (n == 0) {
			out->len = i + 2;
			*used = out->len;
			return 0;
		} else {
			rc = check_header_line(buf + start, n);
		}
		if (rc)
			return rc;
		line++;
		i++;
		start = i + 1;
	}
	if (len >= GH_PROXY_MAX_HEAD)
		return GH_ETOOBIG;
	return GH_EAGAIN;
}

bool gh_proxy_head_next(const uint8_t *buf, const struct gh_proxy_head *h, size_t *pos, struct gh_str *name,
			struct gh_str *value)
{
	size_t s = *pos;
	if (s + 2 >= h->len)
		return false;
	size_t e = s;
	while (buf[e] != '\r')
		e++;
	size_t c = s;
	while (buf[c] != ':')
		c++;
	name->p = (const char *)buf + s;
	name->len = c - s;
	size_t vs = c + 1, ve = e;
	while (vs < ve && (buf[vs] == ' ' || buf[vs] == '\t'))
		vs++;
	while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
		ve--;
	value->p = (const char *)buf + vs;
	value->len = ve - vs;
	*pos = e + 2;
	return true;
}

/* ------------------------------------------------------------------------------------------
 * The proxy */

enum origin_scheme { SCHEME_HTTP, SCHEME_HTTPS };

struct origin {
	enum origin_scheme scheme;
	char host[256]; /* lower case; IPv6 without brackets */
	uint16_t port;
	bool literal;   /* the host is an IP address: connect to it whatever its range */
};

struct conn;

struct gh_proxy {
	int egress_fd;
	int wake[2];                /* written once by stop: every poll watches wake[0] */
	atomic_bool stopping;
	char *gateway_host;
	uint16_t gateway_port;
	struct origin *origins;
	size_t norigins;
	gh_egress_fn on_event;
	void *arg;
	int head_ms;
	pthread_t acceptor;
	pthread_mutex_t mu;
	struct conn *conns;         /* live and finished, not yet joined (under mu) */
	size_t nlive;               /* under mu */
};

/* One accepted connection, owned by its thread until done, then joined and freed by the acceptor
 * or stop. */
struct conn {
	struct gh_proxy *p;
	struct conn *next;
	pthread_t th;
	int fd;                     /* the sandbox side */
	int up;                     /* the upstream side, or -1 */
	char tag;
	atomic_bool done;
	char dest[300];
	uint64_t bytes_out, bytes_in;
	uint8_t head[GH_PROXY_MAX_HEAD];
	size_t headlen;
};

static void report(struct gh_proxy *p, const char *dest, bool allowed, bool gateway, uint64_t out, uint64_t in,
		   const char *reason)
{
	struct gh_egress_event ev = {
		.dest = dest, .allowed = allowed, .gateway = gateway, .bytes_out = out, .bytes_in = in, .reason = reason};
	if (p->on_event)
		p->on_event(p->arg, &ev);
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = gh_mono_us();
	if (now >= deadline)
		return 0;
	uint64_t ms = (deadline - now + 999) / 1000;
	return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

/* Waits until fd has events ev, the deadline passes (GH_ETIMEOUT) or the proxy stops (GH_EIO). */
static int wait_fd(struct gh_proxy *p, int fd, short ev, uint64_t deadline)
{
	for (;;) {
		struct pollfd pf[2] = {{.fd = fd, .events = ev}, {.fd = p->wake[0], .events = POLLIN}};
		int ms = remaining_ms(deadline);
		if (ms == 0)
			return GH_ETIMEOUT;
		int n = poll(pf, 2, ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || pf[1].revents)
			return GH_EIO;
		if (n > 0)
			return 0;
	}
}

/* Sends all of buf within ms (best effort: used for the refusals and the forwarded head). */
static int send_all(struct gh_proxy *p, int fd, const void *buf, size_t n, int ms)
{
	uint64_t deadline = gh_mono_us() + (uint64_t)ms * 1000;
	const char *s = buf;
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			s += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = wait_fd(p, fd, POLLOUT, deadline);
			if (rc)
				return rc;
			continue;
		}
		return GH_EIO;
	}
	return 0;
}

/* Answers the sandbox with a short error response naming dest. */
static void answer_error(struct gh_proxy *p, int fd, int code, const char *status, const char *dest,
			 const char *why)
{
	char body[700], resp[1024];
	int bn = snprintf(body, sizeof body,
			  "gatehouse egress proxy: %s refused (%s). Only the gateway and the allowed origins are "
			  "reachable from this sandbox.\n",
			  dest, why);
	if (bn < 0)
		return;
	if ((size_t)bn >= sizeof body)
		bn = (int)sizeof body - 1;
	int rn = snprintf(resp, sizeof resp,
			  "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
			  "Connection: close\r\n\r\n%s",
			  code, status, bn, body);
	if (rn < 0 || (size_t)rn >= sizeof resp)
		return;
	if (send_all(p, fd, resp, (size_t)rn, GH_PROXY_REFUSAL_MS) != 0)
		return;
	/* Closing with unread input would reset the connection and could lose the answer: stop
	 * sending, then drain what the client still sends, bounded in time and bytes. */
	shutdown(fd, SHUT_WR);
	uint64_t deadline = gh_mono_us() + (uint64_t)GH_PROXY_REFUSAL_MS * 1000;
	char sink[4096];
	for (size_t total = 0; total < GH_PROXY_DRAIN_MAX;) {
		ssize_t r = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			break;
		if (r > 0) {
			total += (size_t)r;
			continue;
		}
		if (wait_fd(p, fd, POLLIN, deadline) != 0)
			break;
	}
}

/* Whether a is loopback, link-local, private, unspecified, multicast or reserved. */
static bool addr_is_internal(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		uint32_t a = ntohl(in->sin_addr.s_addr);
		return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 || (a & 0xffc00000u) == 0x64400000u ||
		       (a & 0xffff0000u) == 0xa9fe0000u || (a & 0xfff00000u) == 0xac100000u ||
		       (a & 0xffff0000u) == 0xc0a80000u || (a >> 28) >= 14;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *b = in6->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) || IN6_IS_ADDR_V4COMPAT(&in6->sin6_addr)) {
			struct sockaddr_in v4 = {.sin_family = AF_INET};
			memcpy(&v4.sin_addr, b + 12, 4);
			return addr_is_internal((const struct sockaddr *)&v4);
		}
		return IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr) || IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		       (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || (b[0] & 0xfe) == 0xfc || b[0] == 0xff ||
		       (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b);
	}
	return true;
}

/* Whether sa is one of this host's own interface addresses. */
static bool addr_is_local_interface(const struct sockaddr *sa)
{
	struct ifaddrs *ifs = NULL;
	bool hit = false;
	if (getifaddrs(&ifs) != 0)
		return true; /* cannot tell: fail closed */
	for (struct ifaddrs *i = ifs; i && !hit; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != sa->sa_family)
			continue;
		if (sa->sa_family == AF_INET)
			hit = ((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
			      ((const struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
		else if (sa->sa_family == AF_INET6)
			hit = memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr,
				     &((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16) == 0;
	}
	freeifaddrs(ifs);
	return hit;
}

/* Connects to one address with the deadline; returns the connected non-blocking socket or -1. */
static int connect_addr(struct gh_proxy *p, const struct addrinfo *ai, uint64_t deadline)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS)
		goto fail;
	if (wait_fd(p, fd, POLLOUT, deadline))
		goto fail;
	int soerr = 0;
	socklen_t sl = sizeof soerr;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

/* Resolves host:port and connects within GH_PROXY_CONNECT_MS. With check, addresses that are
 * internal or the host's own are skipped. Returns the socket, or -1 with *why set. */
static int dial(struct gh_proxy *p, const char *host, uint16_t port, bool numeric, bool check, const char **why)
{
	char service[8];
	snprintf(service, sizeof service, "%u", (unsigned)port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = numeric ? AI_NUMERICHOST : 0};
	struct addrinfo *res = NULL;
	if (getaddrinfo(host, service, &hints, &res) != 0 || !res) {
		*why = "the name does not resolve";
		return -1;
	}
	uint64_t deadline = gh_mono_us() + (uint64_t)GH_PROXY_CONNECT_MS * 1000;
	int fd = -1;
	bool any_allowed = false;
	for (struct addrinfo *ai = res; ai && fd < 0 && !atomic_load(&p->stopping); ai = ai->ai_next) {
		if (check && (addr_is_internal(ai->ai_addr) || addr_is_local_interface(ai->ai_addr)))
			continue;
		any_allowed = true;
		fd = connect_addr(p, ai, deadline);
	}
	freeaddrinfo(res);
	if (fd < 0)
		*why = any_allowed ? "connect failed or timed out"
				   : "the name resolves to a loopback, link-local or private address";
	return fd;
}

/* Relays bytes both ways between c->fd and c->up until both directions are closed, an error
 * occurs, or the proxy stops. Counts bytes into c. */
static void relay(struct conn *c)
{
	struct dir {
		int from, to;
		char *buf;
		size_t off, len;
		bool eof, shut;
		uint64_t *count;
	} d[2] = {
		{.from = c->fd, .to = c->up, .count = &c->bytes_out},
		{.from = c->up, .to = c->fd, .count = &c->bytes_in},
	};
	d[0].buf = malloc(GH_PROXY_RELAY_BUF);
	d[1].buf = malloc(GH_PROXY_RELAY_BUF);
	if (!d[0].buf || !d[1].buf)
		goto done;
	set_nonblock(c->fd);
	set_nonblock(c->up);
	while (!(d[0].shut && d[1].shut)) {
		short ev_fd = 0, ev_up = 0;
		for (int i = 0; i < 2; i++) {
			short *evf = d[i].from == c->fd ? &ev_fd : &ev_up;
			short *evt = d[i].to == c->fd ? &ev_fd : &ev_up;
			if (d[i].len == 0 && !d[i].eof)
				*evf |= POLLIN;
			if (d[i].len > 0)
				*evt |= POLLOUT;
		}
		struct pollfd pf[3] = {{.fd = c->fd, .events = ev_fd}, {.fd = c->up, .events = ev_up},
				       {.fd = c->p->wake[0], .events = POLLIN}};
		int n = poll(pf, 3, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || pf[2].revents)
			goto done;
		for (int i = 0; i < 2; i++) {
			struct dir *x = &d[i];
			if (x->len > 0) {
				ssize_t w = send(x->to, x->buf + x->off, x->len, MSG_NOSIGNAL);
				if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
					goto done;
				if (w > 0) {
					x->off += (size_t)w;
					x->len -= (size_t)w;
					*x->count += (uint64_t)w;
				}
			}
			if (x->len == 0 && !x->eof) {
				x->off = 0;
				ssize_t r = recv(x->from, x->buf, GH_PROXY_RELAY_BUF, 0);
				if (r > 0)
					x->len = (size_t)r;
				else if (r == 0)
					x->eof = true;
				else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
					goto done;
			}
			if (x->eof && x->len == 0 && !x->shut) {
				shutdown(x->to, SHUT_WR);
				x->shut = true;
			}
		}
		/* A socket in error, or hung up both ways while we wait on nothing from it (poll would
		 * report the hang-up again at once: end rather than spin). */
		for (int k = 0; k < 2; k++)
			if ((pf[k].revents & (POLLERR | POLLNVAL)) || ((pf[k].revents & POLLHUP) && pf[k].events == 0))
				goto done;
	}
done:
	free(d[0].buf);
	free(d[1].buf);
}

/* Reads the request head from c->fd into c->head within the head timeout. Returns 0 with h
 * filled, or an error with *why. */
static int read_head(struct conn *c, struct gh_proxy_head *h, const char **why)
{
	uint64_t deadline = gh_mono_us() + (uint64_t)c->p->head_ms * 1000;
	set_nonblock(c->fd);
	for (;;) {
		size_t used = 0;
		int rc = gh_proxy_head_parse(c->head, c->headlen, &used, h);
		if (rc == 0)
			return 0;
		if (rc == GH_ETOOBIG) {
			*why = "request head larger than 16 KiB";
			return rc;
		}
		if (rc != GH_EAGAIN) {
			*why = "malformed request head";
			return rc;
		}
		rc = wait_fd(c->p, c->fd, POLLIN, deadline);
		if (rc) {
			*why = rc == GH_ETIMEOUT ? "request head not received within the time limit" : "proxy stopping";
			return rc;
		}
		ssize_t r = recv(c->fd, c->head + c->headlen, sizeof c->head - c->headlen, 0);
		if (r == 0) {
			*why = "connection closed before a whole request head";
			return GH_EIO;
		}
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			*why = "read error";
			return GH_EIO;
		}
		c->headlen += (size_t)r;
	}
}

/* Finds the allowed origin for scheme/host/port, or NULL. */
static const struct origin *find_origin(struct gh_proxy *p, enum origin_scheme scheme, struct gh_str host,
					uint16_t port)
{
	for (size_t i = 0; i < p->norigins; i++) {
		const struct origin *o = &p->origins[i];
		if (o->scheme == scheme && o->port == port && strlen(o->host) == host.len &&
		    strncasecmp(o->host, host.p, host.len) == 0)
			return o;
	}
	return NULL;
}

/* Builds the head forwarded upstream for an absolute-form request: origin-form request line,
 * Host set to the target, Proxy-*, Connection, Keep-Alive and Host headers dropped,
 * "Connection: close" added. */
static int rewrite_head(const struct conn *c, const struct gh_proxy_head *h, struct gh_buf *out)
{
	int rc = gh_buf_append(out, h->method.p, h->method.len);
	rc = rc ? rc : gh_buf_puts(out, " ");
	rc = rc ? rc : (h->path.len ? gh_buf_append(out, h->path.p, h->path.len) : gh_buf_puts(out, "/"));
	rc = rc ? rc : gh_buf_printf(out, " HTTP/1.%d\r\nHost: %s%.*s%s", h->minor, h->ipv6 ? "[" : "",
				     (int)h->host.len, h->host.p, h->ipv6 ? "]" : "");
	if (!rc && h->port != 80)
		rc = gh_buf_printf(out, ":%u", (unsigned)h->port);
	rc = rc ? rc : gh_buf_puts(out, "\r\n");
	size_t pos = h->line_len;
	struct gh_str name, value;
	while (!rc && gh_proxy_head_next(c->head, h, &pos, &name, &value)) {
		if ((name.len >= 6 && strncasecmp(name.p, "proxy-", 6) == 0) || gh_str_caseeq(name, "connection") ||
		    gh_str_caseeq(name, "keep-alive") || gh_str_caseeq(name, "host"))
			continue;
		rc = gh_buf_append(out, name.p, name.len);
		rc = rc ? rc : gh_buf_puts(out, ": ");
		rc = rc ? rc : gh_buf_append(out, value.p, value.len);
		rc = rc ? rc : gh_buf_puts(out, "\r\n");
	}
	rc = rc ? rc : gh_buf_puts(out, "Connection: close\r\n\r\n");
	/* bytes the client sent after the head (a body) */
	rc = rc ? rc : gh_buf_append(out, c->head + h->len, c->headlen - h->len);
	return rc;
}

/* Serves a gateway connection. */
static void serve_gateway(struct conn *c)
{
	struct gh_proxy *p = c->p;
	const char *why = NULL;
	snprintf(c->dest, sizeof c->dest, "http://%s:%u", p->gateway_host, (unsigned)p->gateway_port);
	c->up = dial(p, p->gateway_host, p->gateway_port, false, false, &why);
	if (c->up < 0) {
		report(p, c->dest, true, true, 0, 0, "the gateway is unreachable");
		return;
	}
	relay(c);
	report(p, c->dest, true, true, c->bytes_out, c->bytes_in, NULL);
}

/* Serves a proxy connection: one request head, then a tunnel or one forwarded request. */
static void serve_proxy(struct conn *c)
{
	struct gh_proxy *p = c->p;
	struct gh_proxy_head h;
	const char *why = NULL;
	snprintf(c->dest, sizeof c->dest, "(proxy request)");
	if (read_head(c, &h, &why) != 0) {
		if (c->headlen > 0 && !atomic_load(&p->stopping))
			answer_error(p, c->fd, 403, "Forbidden", "the request", why);
		report(p, c->dest, false, false, 0, 0, why);
		return;
	}
	bool https = h.kind == GH_PROXY_CONNECT;
	if (h.kind == GH_PROXY_CONNECT || h.kind == GH_PROXY_ABSOLUTE_HTTP) {
		snprintf(c->dest, sizeof c->dest, "%s://%s%.*s%s:%u", https ? "https" : "http", h.ipv6 ? "[" : "",
			 (int)h.host.len, h.host.p, h.ipv6 ? "]" : "", (unsigned)h.port);
	} else {
		snprintf(c->dest, sizeof c->dest, "%.*s", (int)(h.target.len > 256 ? 256 : h.target.len), h.target.p);
		why = h.kind == GH_PROXY_ORIGIN_FORM ? "not a proxy request (origin-form)"
						     : "scheme not supported (only http:// and CONNECT)";
		goto refuse;
	}
	const struct origin *o = find_origin(p, https ? SCHEME_HTTPS : SCHEME_HTTP, h.host, h.port);
	if (!o) {
		why = "not an allowed origin";
		goto refuse;
	}
	c->up = dial(p, o->host, o->port, o->literal, !o->literal, &why);
	if (c->up < 0) {
		if (strstr(why, "private")) /* refused by address, not an upstream failure */
			goto refuse;
		answer_error(p, c->fd, 502, "Bad Gateway", c->dest, why);
		report(p, c->dest, true, false, 0, 0, why);
		return;
	}
	if (https) {
		static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
		if (send_all(p, c->fd, ok, sizeof ok - 1, GH_PROXY_REFUSAL_MS) != 0)
			goto relayed;
		if (c->headlen > h.len) { /* the client did not wait for the 200 */
			if (send_all(p, c->up, c->head + h.len, c->headlen - h.len, GH_PROXY_CONNECT_MS) != 0)
				goto relayed;
			c->bytes_out += c->headlen - h.len;
		}
	} else {
		struct gh_buf b;
		gh_buf_init(&b, 2 * GH_PROXY_MAX_HEAD);
		int rc = rewrite_head(c, &h, &b);
		if (rc == 0)
			rc = send_all(p, c->up, b.data, b.len, GH_PROXY_CONNECT_MS);
		if (rc == 0)
			c->bytes_out += b.len;
		gh_buf_free(&b);
		if (rc != 0)
			goto relayed;
	}
	relay(c);
relayed:
	report(p, c->dest, true, false, c->bytes_out, c->bytes_in, NULL);
	return;
refuse:
	answer_error(p, c->fd, 403, "Forbidden", c->dest, why);
	report(p, c->dest, false, false, 0, 0, why);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	if (c->tag == GH_SANDBOX_TAG_GATEWAY)
		serve_gateway(c);
	else
		serve_proxy(c);
	if (c->up >= 0)
		close(c->up);
	close(c->fd);
	c->up = c->fd = -1;
	pthread_mutex_lock(&c->p->mu);
	c->p->nlive--;
	pthread_mutex_unlock(&c->p->mu);
	atomic_store(&c->done, true);
	return NULL;
}

/* Joins and frees finished connections (all of them with all = true). */
static void reap(struct gh_proxy *p, bool all)
{
	pthread_mutex_lock(&p->mu);
	struct conn **pp = &p->conns;
	while (*pp) {
		struct conn *c = *pp;
		if (all || atomic_load(&c->done)) {
			*pp = c->next;
			pthread_mutex_unlock(&p->mu);
			pthread_join(c->th, NULL);
			free(c);
			pthread_mutex_lock(&p->mu);
			pp = &p->conns; /* the list may have changed */
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&p->mu);
}

/* Starts serving fd (tag checked) in a new thread, or refuses it. Takes fd. */
static void admit(struct gh_proxy *p, char tag, int fd)
{
	reap(p, false);
	pthread_mutex_lock(&p->mu);
	bool full = p->nlive >= GH_PROXY_MAX_CONNS;
	if (!full)
		p->nlive++;
	pthread_mutex_unlock(&p->mu);
	if (full) {
		if (tag == GH_SANDBOX_TAG_PROXY) {
			static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
						   "Connection: close\r\n\r\n";
			(void)send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		close(fd);
		report(p, tag == GH_SANDBOX_TAG_GATEWAY ? "(gateway)" : "(proxy request)", false,
		       tag == GH_SANDBOX_TAG_GATEWAY, 0, 0, "too many egress connections at once");
		return;
	}
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		goto fail;
	c->p = p;
	c->fd = fd;
	c->up = -1;
	c->tag = tag;
	pthread_mutex_lock(&p->mu);
	if (pthread_create(&c->th, NULL, conn_main, c) != 0) {
		pthread_mutex_unlock(&p->mu);
		free(c);
		goto fail;
	}
	c->next = p->conns;
	p->conns = c;
	pthread_mutex_unlock(&p->mu);
	return;
fail:
	pthread_mutex_lock(&p->mu);
	p->nlive--;
	pthread_mutex_unlock(&p->mu);
	close(fd);
	report(p, "(egress)", false, tag == GH_SANDBOX_TAG_GATEWAY, 0, 0, "out of resources");
}

/* Receives one message from egress_fd and admits or refuses it. Returns false when the socket
 * is closed or broken (the acceptor ends). */
static bool receive_one(struct gh_proxy *p)
{
	char tag[2];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * GH_PROXY_MAX_MSG_FDS)];
	} ctl;
	struct iovec iov = {.iov_base = tag, .iov_len = sizeof tag};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
	ssize_t n = recvmsg(p->egress_fd, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
	if (n == 0 && m.msg_controllen == 0)
		return false; /* the sandbox side closed */
	int fds[GH_PROXY_MAX_MSG_FDS];
	size_t nfds = 0;
	bool other = false;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
			size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
				if (nfds < GH_PROXY_MAX_MSG_FDS)
					fds[nfds++] = fd;
				else
					close(fd);
			}
		} else {
			other = true;
		}
	}
	const char *why = NULL;
	int type = 0;
	socklen_t tl = sizeof type;
	if (other || (m.msg_flags & (MSG_CTRUNC | MSG_TRUNC)))
		why = "malformed egress message";
	else if (n != 1)
		why = "egress message is not one tag byte";
	else if (tag[0] != GH_SANDBOX_TAG_GATEWAY && tag[0] != GH_SANDBOX_TAG_PROXY)
		why = "unknown egress tag";
	else if (nfds != 1)
		why = nfds == 0 ? "egress message without a socket" : "egress message with more than one fd";
	else if (getsockopt(fds[0], SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM)
		why = "egress fd is not a stream socket";
	if (why) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		report(p, "(egress)", false, false, 0, 0, why);
		return true;
	}
	admit(p, tag[0], fds[0]);
	return true;
}

static void *acceptor_main(void *arg)
{
	struct gh_proxy *p = arg;
	while (!atomic_load(&p->stopping)) {
		struct pollfd pf[2] = {{.fd = p->egress_fd, .events = POLLIN}, {.fd = p->wake[0], .events = POLLIN}};
		int n = poll(pf, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || pf[1].revents)
			break;
		if (pf[0].revents & POLLNVAL)
			break;
		if (!receive_one(p))
			break;
	}
	return NULL;
}

/* Parses "http[s]://host[:port][/]" into o; host lower-cased. */
static int parse_origin(const char *z, struct origin *o)
{
	size_t zl = strlen(z);
	const char *rest;
	uint16_t def;
	if (strncasecmp(z, "https://", 8) == 0) {
		o->scheme = SCHEME_HTTPS;
		rest = z + 8;
		def = 443;
	} else if (strncasecmp(z, "http://", 7) == 0) {
		o->scheme = SCHEME_HTTP;
		rest = z + 7;
		def = 80;
	} else {
		return GH_EINVAL;
	}
	size_t n = zl - (size_t)(rest - z);
	if (n > 0 && rest[n - 1] == '/')
		n--;
	struct gh_proxy_head h;
	memset(&h, 0, sizeof h);
	if (parse_authority((const uint8_t *)rest, n, def, &h) != 0 || h.host.len >= sizeof o->host)
		return GH_EINVAL;
	for (size_t i = 0; i < h.host.len; i++) {
		char c = h.host.p[i];
		o->host[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	o->host[h.host.len] = 0;
	o->port = h.port;
	unsigned char tmp[16];
	o->literal = inet_pton(h.ipv6 ? AF_INET6 : AF_INET, o->host, tmp) == 1;
	if (h.ipv6 && !o->literal)
		return GH_EINVAL;
	return 0;
}

static void proxy_free(struct gh_proxy *p)
{
	if (p->wake[0] >= 0)
		close(p->wake[0]);
	if (p->wake[1] >= 0)
		close(p->wake[1]);
	pthread_mutex_destroy(&p->mu);
	free(p->gateway_host);
	free(p->origins);
	free(p);
}

int gh_proxy_start(int egress_fd, const char *gateway_host, uint16_t gateway_port, const char *const *origins,
		   size_t norigins, gh_egress_fn on_event, void *arg, struct gh_proxy **out, struct gh_error *err)
{
	*out = NULL;
	if (egress_fd < 0 || !gateway_host || !*gateway_host || gateway_port == 0 || norigins > GH_PROXY_MAX_ORIGINS ||
	    (norigins > 0 && !origins))
		return gh_error_set(err, GH_EINVAL, "proxy: bad arguments (egress fd, gateway or origins)");
	struct gh_proxy *p = calloc(1, sizeof *p);
	if (!p)
		return gh_error_set(err, GH_ENOMEM, "proxy: out of memory");
	p->wake[0] = p->wake[1] = -1;
	pthread_mutex_init(&p->mu, NULL);
	p->egress_fd = egress_fd;
	p->gateway_port = gateway_port;
	p->on_event = on_event;
	p->arg = arg;
	p->head_ms = atomic_load(&head_timeout_ms);
	int rc;
	p->gateway_host = gh_strdup(gateway_host);
	p->origins = calloc(norigins ? norigins : 1, sizeof *p->origins);
	if (!p->gateway_host || !p->origins) {
		rc = gh_error_set(err, GH_ENOMEM, "proxy: out of memory");
		goto fail;
	}
	for (size_t i = 0; i < norigins; i++) {
		if (!origins[i] || parse_origin(origins[i], &p->origins[i]) != 0) {
			rc = gh_error_set(err, GH_EINVAL, "proxy: origin %zu is not http[s]://host[:port]", i + 1);
			goto fail;
		}
	}
	p->norigins = norigins;
	if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		rc = gh_error_set(err, GH_EIO, "proxy: pipe: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&p->acceptor, NULL, acceptor_main, p) != 0) {
		rc = gh_error_set(err, GH_EIO, "proxy: cannot start its thread");
		goto fail;
	}
	*out = p;
	return 0;
fail:
	proxy_free(p);
	return rc;
}

void gh_proxy_stop(struct gh_proxy *p)
{
	if (!p)
		return;
	atomic_store(&p->stopping, true);
	ssize_t w;
	do
		w = write(p->wake[1], "x", 1);
	while (w < 0 && errno == EINTR);
	shutdown(p->egress_fd, SHUT_RD);
	pthread_join(p->acceptor, NULL);
	reap(p, true);
	proxy_free(p);
}
