/* Unit tests for src/sandbox/proxy.c: the egress proxy, driven without a sandbox. The test plays
 * the sandbox's init: it listens on an ephemeral 127.0.0.1 port, connects to it, accepts, and
 * passes the accepted socket with a tag over a SEQPACKET socketpair whose other end the proxy
 * serves. Small servers in threads play the gateway (echo), an allowed origin (echo for CONNECT,
 * HTTP for absolute-form requests) and a not-allowed one. */
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/core.h"
#include "sandbox/proxy_parse.h"
#include "sandbox/sandbox.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))

/* ---- events collected from the proxy's threads ---- */
#define MAX_EVENTS 256
struct ev {
	char dest[300], reason[200];
	bool allowed, gateway, has_reason;
	uint64_t out, in;
};
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ev ev[MAX_EVENTS];
	size_t n;
} events = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void on_event(void *arg, const struct gh_egress_event *e)
{
	(void)arg;
	pthread_mutex_lock(&events.mu);
	if (events.n < MAX_EVENTS) {
		struct ev *x = &events.ev[events.n++];
		snprintf(x->dest, sizeof x->dest, "%s", e->dest ? e->dest : "");
		x->has_reason = e->reason != NULL;
		snprintf(x->reason, sizeof x->reason, "%s", e->reason ? e->reason : "");
		x->allowed = e->allowed;
		x->gateway = e->gateway;
		x->out = e->bytes_out;
		x->in = e->bytes_in;
	}
	pthread_cond_broadcast(&events.cv);
	pthread_mutex_unlock(&events.mu);
}

static void events_reset(void)
{
	pthread_mutex_lock(&events.mu);
	events.n = 0;
	pthread_mutex_unlock(&events.mu);
}

/* Waits up to 5 s for at least n events; returns a copy of event i (0-based). */
static struct ev event_wait(size_t n, size_t i)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&events.mu);
	while (events.n < n)
		if (pthread_cond_timedwait(&events.cv, &events.mu, &ts) != 0)
			break;
	size_t have = events.n;
	struct ev e = events.ev[i < MAX_EVENTS ? i : 0];
	pthread_mutex_unlock(&events.mu);
	if (have < n)
		fail_msg("expected %zu events, got %zu", n, have);
	return e;
}

static size_t event_count(void)
{
	pthread_mutex_lock(&events.mu);
	size_t n = events.n;
	pthread_mutex_unlock(&events.mu);
	return n;
}

/* ---- sockets ---- */
static int listen_local(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(fd, 128), 0);
	socklen_t l = sizeof a;
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static int connect_local(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

static void send_msg(int sp, const char *data, size_t n, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	memset(&ctl, 0, sizeof ctl);
	struct iovec iov = {.iov_base = (void *)(uintptr_t)data, .iov_len = n};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		m.msg_control = ctl.buf;
		m.msg_controllen = sizeof ctl.buf;
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof fd);
	}
	assert_int_equal(sendmsg(sp, &m, 0), (ssize_t)n);
}

/* The sandbox's init: a connection whose accepted side goes to the proxy with tag; returns the
 * client side (what the sandboxed program holds). */
static int sandbox_conn(int sp, int lfd, uint16_t lport, char tag)
{
	int cl = connect_local(lport);
	int acc = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(acc >= 0);
	send_msg(sp, &tag, 1, acc);
	close(acc);
	return cl;
}

static void send_str(int fd, const char *s)
{
	size_t n = strlen(s);
	assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads until EOF (or 5 s) into buf, NUL-terminated; returns the length. */
static size_t read_all(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	return n;
}

/* Reads exactly n bytes (or fails). */
static void read_exact(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = recv(fd, buf + got, n - got, 0);
		assert_true(r > 0);
		got += (size_t)r;
	}
}

/* ---- servers in threads ---- */
enum srv_mode { SRV_ECHO, SRV_HTTP };
struct srv {
	enum srv_mode mode;
	int lfd;
	uint16_t port;
	pthread_t th;
	atomic_bool stop;
	atomic_int accepted;
	pthread_mutex_t mu;
	char head[8192]; /* the last HTTP head received */
};

/* Waits for fd readable or the server stopping; false when stopping. */
static bool srv_wait(struct srv *s, int fd)
{
	while (!atomic_load(&s->stop)) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		if (poll(&pf, 1, 50) > 0)
			return true;
	}
	return false;
}

static void srv_echo(struct srv *s, int fd)
{
	char buf[4096];
	while (srv_wait(s, fd)) {
		ssize_t r = recv(fd, buf, sizeof buf, 0);
		if (r <= 0)
			break;
		if (send(fd, buf, (size_t)r, MSG_NOSIGNAL) != r)
			break;
	}
}

static void srv_http(struct srv *s, int fd)
{
	char buf[8192];
	size_t n = 0;
	while (n + 1 < sizeof buf && srv_wait(s, fd)) {
		ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = 0;
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	buf[n] = 0;
	pthread_mutex_lock(&s->mu);
	snprintf(s->head, sizeof s->head, "%s", buf);
	pthread_mutex_unlock(&s->mu);
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\nhello, origin\n";
	(void)send(fd, resp, sizeof resp - 1, MSG_NOSIGNAL);
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	while (srv_wait(s, s->lfd)) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		atomic_fetch_add(&s->accepted, 1);
		if (s->mode == SRV_ECHO)
			srv_echo(s, fd);
		else
			srv_http(s, fd);
		close(fd);
	}
	return NULL;
}

static struct srv *srv_start(enum srv_mode mode)
{
	struct srv *s = calloc(1, sizeof *s);
	assert_non_null(s);
	s->mode = mode;
	pthread_mutex_init(&s->mu, NULL);
	s->lfd = listen_local(&s->port);
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
	return s;
}

static void srv_stop(struct srv *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
	close(s->lfd);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* ---- the fixture: servers, a proxy, the sandbox's listener ---- */
struct fx {
	struct srv *gw, *tls, *http, *other;
	int sp[2];
	int lfd;
	uint16_t lport;
	struct gh_proxy *proxy;
	char origins[4][64];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	events_reset();
	f->gw = srv_start(SRV_ECHO);
	f->tls = srv_start(SRV_ECHO);
	f->http = srv_start(SRV_HTTP);
	f->other = srv_start(SRV_ECHO);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f->sp) != 0)
		return -1;
	f->lfd = listen_local(&f->lport);
	snprintf(f->origins[0], sizeof f->origins[0], "https://127.0.0.1:%u", f->tls->port);
	snprintf(f->origins[1], sizeof f->origins[1], "http://127.0.0.1:%u", f->http->port);
	snprintf(f->origins[2], sizeof f->origins[2], "http://localhost:%u", f->other->port);
	snprintf(f->origins[3], sizeof f->origins[3], "HTTPS://Example.COM");
	const char *const origins[] = {f->origins[0], f->origins[1], f->origins[2], f->origins[3]};
	struct gh_error err;
	if (gh_proxy_start(f->sp[0], "127.0.0.1", f->gw->port, origins, 4, on_event, NULL, &f->proxy, &err) != 0) {
		fprintf(stderr, "gh_proxy_start: %s\n", err.message);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	gh_proxy_stop(f->proxy);
	close(f->sp[0]);
	close(f->sp[1]);
	close(f->lfd);
	srv_stop(f->gw);
	srv_stop(f->tls);
	srv_stop(f->http);
	srv_stop(f->other);
	free(f);
	return 0;
}

/* Sends head on a new proxy connection; expects a 403 naming what and a refused event. */
static void expect_refused(struct fx *f, const char *head, const char *what, const char *reason_part)
{
	size_t before = event_count();
	int c = sandbox_conn(f->sp[1], f->lfd, f->lport, 'P');
	if (head[0])
		send_str(c, head);
	char buf[4096];
	read_all(c, buf, sizeof buf);
	close(c);
	if (strncmp(buf, "HTTP/1.1 403 Forbidden\r\n", 24) != 0)
		fail_msg("expected a 403 for %.60s, got '%.80s'", head, buf);
	if (what && !strstr(buf, what))
		fail_msg("403 body does not name %s: %s", what, buf);
	assert_non_null(strstr(buf, "Only the gateway and the allowed origins"));
	struct ev e = event_wait(before + 1, before);
	assert_false(e.allowed);
	assert_true(e.has_reason);
	if (reason_part && !strstr(e.reason, reason_part))
		fail_msg("reason '%s' lacks '%s'", e.reason, reason_part);
}

/* ---- tests ---- */

static void test_gateway_relay(void **state)
{
	struct fx *f = *state;
	int c = sandbox_conn(f->sp[1], f->lfd, f->lport, 'G');
	send_str(c, "ping from the sandbox");
	char buf[64];
	read_exact(c, buf, 21);
	assert_memory_equal(buf, "ping from the sandbox", 21);
	send_str(c, "again");
	read_exact(c, buf, 5);
	shutdown(c, SHUT_WR);
	assert_int_equal(recv(c, buf, sizeof buf, 0), 0);
	close(c);
	struct ev e = event_wait(1, 0);
	char dest[64];
	snprintf(dest, sizeof dest, "http://127.0.0.1:%u", f->gw->port);
	assert_string_equal(e.dest, dest);
	assert_true(e.allowed);
	assert_true(e.gateway);
	assert_false(e.has_reason);
	assert_int_equal(e.out, 26);
	assert_int_equal(e.in, 26);
	CHECKED("gateway relay both ways, half-close passed on, one event %s with 26/26 bytes", e.dest);
}

static void test_connect_allowed(void **state)
{
	struct fx *f = *state;
	int c = sandbox_conn(f->sp[1], f->lfd, f->lport, 'P');
	char req[128], buf[256];
	snprintf(req, sizeof req, "CONNECT 127.0.0.1:%u HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n", f->tls->port,
		 f->tls->port);
	send_str(c, req);
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	read_exact(c, buf, sizeof ok - 1);
	assert_memory_equal(buf, ok, sizeof ok - 1);
	static const char hello[] = "\x16\x03\x01 not really TLS!";
	send_str(c, hello);
	read_exact(c, buf, sizeof hello - 1);
	assert_memory_equal(buf, hello, sizeof hello - 1);
	close(c);
	struct ev e = event_wait(1, 0);
	char dest[64];
	snprintf(dest, sizeof dest, "https://127.0.0.1:%u", f->tls->port);
	assert_string_equal(e.dest, dest);
	assert_true(e.allowed);
	assert_false(e.gateway);
	assert_int_equal(e.out, 19);
	assert_int_equal(e.in, 19);
	CHECKED("CONNECT to the allowed %s: 200, tunnel both ways, 19/19 bytes reported", e.dest);
}

static void test_absolute_get_allowed(void **state)
{
	struct fx *f = *state;
	int c = sandbox_conn(f->sp[1], f->lfd, f->lport, 'P');
	char req[512], buf[4096];
	snprintf(req, sizeof req,
		 "GET http://127.0.0.1:%u/api/items?id=7 HTTP/1.1\r\nHost: evil.internal\r\n"
		 "Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\nUser-Agent: t/1\r\n"
		 "Connection: keep-alive\r\n\r\n",
		 f->http->port);
	send_str(c, req);
	read_all(c, buf, sizeof buf);
	close(c);
	assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
	assert_non_null(strstr(buf, "hello, origin"));
	struct ev e = event_wait(1, 0);
	pthread_mutex_lock(&f->http->mu);
	char head[8192];
	snprintf(head, sizeof head, "%s", f->http->head);
	pthread_mutex_unlock(&f->http->mu);
	assert_int_equal(strncmp(head, "GET /api/items?id=7 HTTP/1.1\r\n", 30), 0);
	assert_null(strcasestr(head, "Proxy-Authorization"));
	assert_null(strcasestr(head, "Proxy-Connection"));
	assert_null(strstr(head, "keep-alive"));
	assert_null(strstr(head, "evil.internal"));
	snprintf(req, sizeof req, "Host: 127.0.0.1:%u\r\n", f->http->port);
	assert_non_null(strstr(head, req));
	assert_non_null(strstr(head, "User-Agent: t/1\r\n"));
	assert_non_null(strstr(head, "Connection: close\r\n\r\n"));
	assert_true(e.allowed);
	assert_int_equal(e.out, strlen(head));
	assert_true(e.in > 14);
	CHECKED("absolute-form GET to the allowed %s: origin-form line, Host set, Proxy-* dropped, "
		"Connection: close; answer relayed (%llu bytes in)",
		e.dest, (unsigned long long)e.in);
}

static void test_not_allowed(void **state)
{
	struct fx *f = *state;
	char req[256], dest[64];
	snprintf(req, sizeof req, "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n", f->other->port);
	snprintf(dest, sizeof dest, "https://127.0.0.1:%u", f->other->port);
	expect_refused(f, req, dest, "not an allowed origin");
	snprintf(req, sizeof req, "GET http://127.0.0.1:%u/ HTTP/1.1\r\n\r\n", f->other->port);
	snprintf(dest, sizeof dest, "http://127.0.0.1:%u", f->other->port);
	expect_refused(f, req, dest, "not an allowed origin");
	/* right host and port, wrong scheme */
	snprintf(req, sizeof req, "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n", f->http->port);
	expect_refused(f, req, NULL, "not an allowed origin");
	snprintf(req, sizeof req, "GET http://127.0.0.1:%u/ HTTP/1.1\r\n\r\n", f->tls->port);
	expect_refused(f, req, NULL, "not an allowed origin");
	expect_refused(f, "CONNECT example.org:443 HTTP/1.1\r\n\r\n", "https://example.org:443", "not an allowed");
	assert_int_equal(atomic_load(&f->other->accepted), 0);
	CHECKED("CONNECT and GET to a not-allowed port, wrong scheme, other host: 403 naming it, refused "
		"events, nothing reached the server");
}

static void test_raw_ip_and_names(void **state)
{
	struct fx *f = *state;
	char req[256];
	/* the origin names localhost: the raw IP is not named */
	snprintf(req, sizeof req, "GET http://127.0.0.1:%u/ HTTP/1.1\r\n\r\n", f->other->port);
	expect_refused(f, req, NULL, "not an allowed origin");
	/* and the name resolves to loopback, which only a named IP may reach */
	snprintf(req, sizeof req, "GET http://LOCALHOST:%u/ HTTP/1.1\r\n\r\n", f->other->port);
	expect_refused(f, req, NULL, "loopback");
	assert_int_equal(atomic_load(&f->other->accepted), 0);
	/* a raw IP for an origin named by host name */
	expect_refused(f, "CONNECT 93.184.215.14:443 HTTP/1.1\r\n\r\n", "https://93.184.215.14:443",
		       "not an allowed origin");
	expect_refused(f, "CONNECT [::1]:443 HTTP/1.1\r\n\r\n", "https://[::1]:443", "not an allowed origin");
	CHECKED("raw IP not named by an origin: 403; allowed name resolving to loopback: 403");
}

static void test_bad_requests(void **state)
{
	struct fx *f = *state;
	expect_refused(f, "GARBAGE\r\n\r\n", NULL, "malformed");
	expect_refused(f, "GET http://a b/ HTTP/1.1\r\n\r\n", NULL, "malformed");
	expect_refused(f, "GET http://user@example.com/ HTTP/1.1\r\n\r\n", NULL, "malformed");
	expect_refused(f, "GET http://example.com/ HTTP/1.1\r\nX: a\nY: b\r\n\r\n", NULL, "malformed");
	expect_refused(f, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", NULL, "origin-form");
	expect_refused(f, "GET ws://example.com/ HTTP/1.1\r\n\r\n", "ws://example.com/", "scheme");
	expect_refused(f, "GET https://example.com/ HTTP/1.1\r\n\r\n", NULL, "scheme");
	expect_refused(f, "GET ftp://example.com/ HTTP/1.1\r\n\r\n", NULL, "scheme");
	/* oversized head */
	char *big = malloc(20000);
	assert_non_null(big);
	int n = snprintf(big, 20000, "GET http://example.com/ HTTP/1.1\r\nX-Pad: ");
	memset(big + n, 'a', 17000);
	big[n + 17000] = 0;
	expect_refused(f, big, NULL, "16 KiB");
	free(big);
	CHECKED("malformed line, space in target, userinfo, bare LF, origin-form, ws/https/ftp schemes, "
		"a 17 KB head: 403 and refused");
}

static void test_slow_head(void **state)
{
	struct fx *f = *state;
	/* a proxy of its own with a short head timeout */
	gh_proxy_set_head_timeout_ms(300);
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	struct gh_proxy *p = NULL;
	const char *const origins[] = {f->origins[1]};
	assert_int_equal(gh_proxy_start(sp[0], "127.0.0.1", f->gw->port, origins, 1, on_event, NULL, &p, NULL), 0);
	gh_proxy_set_head_timeout_ms(0); /* back to the default for later proxies */
	uint64_t t0 = gh_mono_us();
	int c = sandbox_conn(sp[1], f->lfd, f->lport, 'P');
	send_str(c, "GET http://exa");
	char buf[1024];
	read_all(c, buf, sizeof buf);
	uint64_t ms = (gh_mono_us() - t0) / 1000;
	close(c);
	assert_int_equal(strncmp(buf, "HTTP/1.1 403", 12), 0);
	struct ev e = event_wait(1, 0);
	assert_false(e.allowed);
	assert_non_null(strstr(e.reason, "time"));
	assert_true(ms >= 250 && ms < 3000);
	gh_proxy_stop(p);
	close(sp[0]);
	close(sp[1]);
	CHECKED("a head not finished within the (test) 300 ms: 403 after %llu ms, refused '%s'",
		(unsigned long long)ms, e.reason);
}

static void test_bad_messages(void **state)
{
	struct fx *f = *state;
	/* a bad tag with a socket: refused, the socket closed */
	int cl = connect_local(f->lport);
	int acc = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(acc >= 0);
	send_msg(f->sp[1], "X", 1, acc);
	close(acc);
	char buf[64];
	assert_true(recv(cl, buf, sizeof buf, 0) <= 0);
	close(cl);
	struct ev e = event_wait(1, 0);
	assert_false(e.allowed);
	assert_non_null(strstr(e.reason, "tag"));
	/* a tag without a socket */
	send_msg(f->sp[1], "P", 1, -1);
	e = event_wait(2, 1);
	assert_false(e.allowed);
	assert_non_null(strstr(e.reason, "without a socket"));
	/* two bytes */
	cl = connect_local(f->lport);
	acc = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
	send_msg(f->sp[1], "GG", 2, acc);
	close(acc);
	close(cl);
	e = event_wait(3, 2);
	assert_false(e.allowed);
	/* a non-socket fd */
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	send_msg(f->sp[1], "G", 1, pfd[0]);
	close(pfd[0]);
	close(pfd[1]);
	e = event_wait(4, 3);
	assert_non_null(strstr(e.reason, "stream socket"));
	/* still serving */
	int c = sandbox_conn(f->sp[1], f->lfd, f->lport, 'G');
	send_str(c, "still");
	read_exact(c, buf, 5);
	close(c);
	e = event_wait(5, 4);
	assert_true(e.allowed && e.gateway);
	CHECKED("bad tag, no fd, two tag bytes, a pipe instead of a socket: refused events; then a "
		"gateway connection is served");
}

static void test_limit_503(void **state)
{
	struct fx *f = *state;
	int cs[64];
	for (int i = 0; i < 64; i++)
		cs[i] = sandbox_conn(f->sp[1], f->lfd, f->lport, 'G');
	int c = sandbox_conn(f->sp[1], f->lfd, f->lport, 'P');
	char buf[256];
	read_all(c, buf, sizeof buf);
	close(c);
	assert_int_equal(strncmp(buf, "HTTP/1.1 503", 12), 0);
	struct ev e = event_wait(1, 0);
	assert_false(e.allowed);
	assert_non_null(strstr(e.reason, "too many"));
	for (int i = 0; i < 64; i++)
		close(cs[i]);
	event_wait(65, 0);
	CHECKED("64 live connections, the 65th answered 503 and refused; 65 events in all");
}

static void test_stop_live(void **state)
{
	struct fx *f = *state;
	int g = sandbox_conn(f->sp[1], f->lfd, f->lport, 'G');
	send_str(g, "x");
	char buf[64];
	read_exact(g, buf, 1);
	int t = sandbox_conn(f->sp[1], f->lfd, f->lport, 'P');
	char req[128];
	snprintf(req, sizeof req, "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n", f->tls->port);
	send_str(t, req);
	read_exact(t, buf, 39);
	int h = sandbox_conn(f->sp[1], f->lfd, f->lport, 'P'); /* no head yet */
	usleep(50000);
	uint64_t t0 = gh_mono_us();
	gh_proxy_stop(f->proxy);
	f->proxy = NULL;
	uint64_t ms = (gh_mono_us() - t0) / 1000;
	assert_true(ms < 1000);
	assert_int_equal(event_count(), 3);
	assert_true(recv(g, buf, sizeof buf, 0) <= 0);
	close(g);
	close(t);
	close(h);
	CHECKED("stop with a gateway relay, a tunnel and a pending head: returned in %llu ms, 3 events",
		(unsigned long long)ms);
}

static void test_start_errors(void **state)
{
	(void)state;
	struct gh_proxy *p = NULL;
	struct gh_error err;
	const char *const bad[] = {"ftp://x", "https://", "http://a:0", "http://a:70000", "http://a b", "http://[zz]:1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *const one[] = {bad[i]};
		assert_int_not_equal(gh_proxy_start(3, "127.0.0.1", 1, one, 1, on_event, NULL, &p, &err), 0);
		assert_null(p);
	}
	assert_int_not_equal(gh_proxy_start(-1, "127.0.0.1", 1, NULL, 0, on_event, NULL, &p, &err), 0);
	CHECKED("bad origins and a bad egress fd refused at start");
}

static void test_parser(void **state)
{
	(void)state;
	struct gh_proxy_head h;
	size_t used;
	const char *r = "CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: x\r\n\r\nrest";
	assert_int_equal(gh_proxy_head_parse((const uint8_t *)r, strlen(r), &used, &h), 0);
	assert_int_equal(h.kind, GH_PROXY_CONNECT);
	assert_true(h.ipv6);
	assert_true(gh_str_eq(h.host, "2001:db8::1"));
	assert_int_equal(h.port, 8443);
	assert_int_equal(used, strlen(r) - 4);
	r = "POST HTTP://Example.com HTTP/1.0\r\n\r\n";
	assert_int_equal(gh_proxy_head_parse((const uint8_t *)r, strlen(r), &used, &h), 0);
	assert_int_equal(h.kind, GH_PROXY_ABSOLUTE_HTTP);
	assert_int_equal(h.port, 80);
	assert_int_equal(h.path.len, 0);
	assert_int_equal(h.minor, 0);
	r = "CONNECT example.com HTTP/1.1\r\n\r\n";
	assert_int_equal(gh_proxy_head_parse((const uint8_t *)r, strlen(r), &used, &h), 0);
	assert_int_equal(h.port, 443);
	r = "GET http://example.com/ HTTP/1.1\r\nHost: x\r";
	assert_int_equal(gh_proxy_head_parse((const uint8_t *)r, strlen(r), &used, &h), GH_EAGAIN);
	const char *bad[] = {"GET http://e.com/ HTTP/1.1\r\n x: folded\r\n\r\n", "GET http://e.com:/ HTTP/1.1\r\n\r\n",
			     "GET http://e.com?q HTTP/1.1\r\n\r\n", "GET http://e.com/ HTTP/2.0\r\n\r\n",
			     "GET  http://e.com/ HTTP/1.1\r\n\r\n", "GET http://e.com/ HTTP/1.1\r\nX:\ra\r\n\r\n",
			     "CONNECT e.com:99999 HTTP/1.1\r\n\r\n", "CONNECT [::1 HTTP/1.1\r\n\r\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(gh_proxy_head_parse((const uint8_t *)bad[i], strlen(bad[i]), &used, &h), GH_EINVAL);
	char big[GH_PROXY_MAX_HEAD + 10];
	memset(big, 'a', sizeof big);
	memcpy(big, "GET http://e.com/ HTTP/1.1\r\nX: ", 31);
	assert_int_equal(gh_proxy_head_parse((const uint8_t *)big, sizeof big, &used, &h), GH_ETOOBIG);
	assert_int_equal(gh_proxy_head_parse((const uint8_t *)big, GH_PROXY_MAX_HEAD - 1, &used, &h), GH_EAGAIN);
	CHECKED("parser: IPv6 CONNECT, default ports, need-more, obs-fold/bad port/bad version/CR refused, 16 KiB bound");
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parser),
		cmocka_unit_test(test_start_errors),
		cmocka_unit_test_setup_teardown(test_gateway_relay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absolute_get_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_ip_and_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_head, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_503, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_live, setup, teardown),
	};
	int failed = cmocka_run_group_tests_name("sandbox_proxy", tests, NULL, NULL);
	gh_unit_report("sandbox_proxy", sizeof(tests) / sizeof(tests[0]), failed);
	return failed ? 1 : 0;
}
