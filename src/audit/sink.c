/* audit: sinks (stdout, syslog, http) and the checkpointer. Each runs on its own thread and
 * follows the log file from the position kept in the store under its name. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "config/config.h"
#include "core/curl_dl.h"
#include "metrics/metrics.h"

#define CHECKPOINTER_NAME "#checkpoints" /* '#' is never in a sink's name */
#define READ_CHUNK (64 * 1024)
#define IDLE_POLL_MS 1000    /* a caught-up thread looks at the file this often (other writers) */
#define FAIL_LOG_EVERY_MS 60000

/* ---------------------------------------------------------------- record formats */

static bool printusascii(const char *z, size_t n, size_t max)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)z[i] < 33 || (unsigned char)z[i] > 126)
			return false;
	return true;
}

int audit_syslog_format(const char *line, size_t len, int facility, const char *hostname, int pid,
			struct gh_buf *out)
{
	json_error_t je;
	json_t *v = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	json_t *t = json_object_get(v, "time"), *ev = json_object_get(v, "event"), *d = json_object_get(v, "decision");
	json_t *seq = json_object_get(v, "seq"), *hash = json_object_get(v, "hash");
	const char *ts = json_is_string(t) ? json_string_value(t) : "-";
	const char *msgid = json_is_string(ev) ? json_string_value(ev) : "-";
	if (!printusascii(ts, strlen(ts), 40))
		ts = "-";
	if (!printusascii(msgid, strlen(msgid), 32))
		msgid = "-";
	if (!hostname || !printusascii(hostname, strlen(hostname), 255))
		hostname = "-";
	int severity = json_is_string(d) && strcmp(json_string_value(d), "deny") == 0 ? 5 : 6;
	int rc = gh_buf_printf(out, "<%d>1 %s %s gatehouse %d %s - ", (facility & 31) * 8 + severity, ts, hostname, pid,
			       msgid);
	if (!rc && len <= GH_SINK_SYSLOG_MAX) {
		rc = gh_buf_append(out, line, len);
	} else if (!rc) {
		/* too long for a datagram: what the receiver needs to find it in the log */
		rc = gh_buf_printf(out, "{\"seq\":%lld,\"hash\":", json_is_integer(seq) ? (long long)json_integer_value(seq) : -1LL);
		rc = rc ? rc : json_is_string(hash) ? gh_buf_json_string(out, json_string_value(hash), json_string_length(hash))
						    : gh_buf_puts(out, "null");
		rc = rc ? rc : gh_buf_puts(out, ",\"truncated\":true}");
	}
	json_decref(v);
	return rc;
}

int audit_http_add(struct gh_buf *body, const char *line, size_t len)
{
	int rc = gh_buf_puts(body, body->len ? "," : "[");
	return rc ? rc : gh_buf_append(body, line, len);
}

int audit_http_close(struct gh_buf *body)
{
	return gh_buf_puts(body, body->len ? "]" : "[]");
}

/* ---------------------------------------------------------------- following the log */

struct pos {
	int64_t seq;
	off_t off;     /* just after record seq */
	char hash[65];
};

/* A reader of durable records after a position, checking the chain as it goes. */
struct cursor {
	int fd;
	struct pos at;
	bool checked;  /* the record after `at` was found to follow it (or `at` was found by a scan) */
	bool reread;   /* the buffer was refreshed after a record did not check */
	char who[GH_NAME_MAX + 32]; /* for log lines: "sink 'NAME'" or "checkpoints" */
	char *buf;
	size_t cap, len;
	off_t base;    /* buf holds the file's bytes [base, base + len) */
};

/* The end of what writers have finished: writers hold the exclusive lock from write to fsync
 * (and cut back failed writes under it), so a size seen under the shared lock is durable. */
static off_t durable_end(int fd)
{
	struct stat st;
	if (flock(fd, LOCK_SH) < 0)
		return -1;
	off_t end = fstat(fd, &st) == 0 ? st.st_size : -1;
	flock(fd, LOCK_UN);
	return end;
}

/* Next record before end. Returns 1 with *line (valid until the next call), 0 when no complete
 * record is there yet, GH_EINVAL (why set) when the log does not continue the chain. */
static int cursor_next(struct cursor *c, off_t end, const char **line, size_t *len, const char **why)
{
	for (;;) {
		if (c->at.off < c->base || c->at.off > c->base + (off_t)c->len) {
			c->base = c->at.off;
			c->len = 0;
		}
		size_t start = (size_t)(c->at.off - c->base);
		char *nl = memchr(c->buf + start, '\n', c->len - start);
		if (nl) {
			const char *l = c->buf + start;
			size_t n = (size_t)(nl - l);
			int64_t seq;
			char prev[65], hash[65];
			bool bad = audit_line_check(l, n, &seq, prev, hash, why) != 0;
			if (!bad && (seq != c->at.seq + 1 || strcmp(prev, c->at.hash) != 0)) {
				*why = "the record does not follow the previous one (seq or prev): the log was changed";
				bad = true;
			}
			if (bad && !c->reread) {
				/* the buffer may hold bytes of a torn record that a writer has since cut
				 * and written over: read once more from the file before judging */
				c->reread = true;
				c->base = c->at.off;
				c->len = 0;
				continue;
			}
			c->reread = false;
			if (bad)
				return GH_EINVAL;
			c->at.seq = seq;
			c->at.off += (off_t)n + 1;
			memcpy(c->at.hash, hash, 65);
			c->checked = true;
			*line = l;
			*len = n;
			return 1;
		}
		off_t have = c->base + (off_t)c->len;
		if (have >= end)
			return 0;
		if (start > 0) { /* keep only the partial line */
			memmove(c->buf, c->buf + start, c->len - start);
			c->len -= start;
			c->base += (off_t)start;
		}
		if (c->len == c->cap) {
			if (c->cap > GH_AUDIT_MAX_LINE) {
				*why = "a record longer than the maximum line length";
				return GH_EINVAL;
			}
			size_t ncap = c->cap * 2;
			char *nb = realloc(c->buf, ncap);
			if (!nb) {
				*why = "out of memory";
				return GH_EINVAL;
			}
			c->buf = nb;
			c->cap = ncap;
		}
		size_t want = c->cap - c->len;
		if ((off_t)want > end - have)
			want = (size_t)(end - have);
		ssize_t got = pread(c->fd, c->buf + c->len, want, have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			*why = got < 0 ? "the log cannot be read" : "the log is shorter than it was";
			return GH_EINVAL;
		}
		c->len += (size_t)got;
	}
}

/* Puts the cursor after record `want` by reading the log from its start (the stored offset
 * did not lead to the next record). GH_EINVAL (why set) when the log does not hold that record
 * with that hash. */
static int cursor_scan(struct cursor *c, const struct pos *want, const char **why)
{
	c->at.seq = 0;
	c->at.off = 0;
	memcpy(c->at.hash, GH_AUDIT_ZERO_HASH, 65);
	c->len = 0;
	c->base = 0;
	off_t end = durable_end(c->fd);
	while (c->at.seq < want->seq) {
		const char *l;
		size_t n;
		int rc = cursor_next(c, end, &l, &n, why);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			*why = "the log ends before the stored position: it was truncated or replaced";
			return GH_EINVAL;
		}
	}
	if (strcmp(c->at.hash, want->hash) != 0) {
		*why = "the record at the stored position has another hash: the log was replaced";
		return GH_EINVAL;
	}
	c->checked = true;
	return 0;
}

/* Next record, first making sure the stored position is where the log says. A log that does
 * not hold the stored position (restored from an older backup, or replaced) is followed again
 * from its first record, loudly: sent twice rather than not at all. */
static int cursor_read(struct cursor *c, off_t end, const char **line, size_t *len, const char **why)
{
	if (!c->checked && c->at.seq > 0) {
		struct pos want = c->at;
		if (end >= c->at.off) {
			int rc = cursor_next(c, end, line, len, why);
			if (rc >= 0)
				return rc; /* 1: it follows the position; 0: nothing after it yet */
		}
		if (cursor_scan(c, &want, why)) {
			gh_log(GH_LOG_ERROR, "audit %s: the log does not hold the stored position (seq %lld): %s; following "
			       "it again from seq 1", c->who, (long long)want.seq, *why);
			c->at.seq = 0;
			c->at.off = 0;
			memcpy(c->at.hash, GH_AUDIT_ZERO_HASH, 65);
			c->base = 0;
			c->len = 0;
		}
	}
	c->checked = true;
	return cursor_next(c, end, line, len, why);
}

/* ---------------------------------------------------------------- the sinks */

struct sink {
	struct gh_audit_sinks *s;
	char name[GH_NAME_MAX + 16];
	const char *kind;
	enum gh_sink_kind k; /* 0: the checkpointer */
	int64_t batch, retry_max_ms, timeout_ms;
	int facility;
	char *url, *header, *secret, *address;

	pthread_t thread;
	bool started;
	struct gh_store *st;
	struct cursor cur;
	struct pos committed;  /* acknowledged, and kept in the store */

	/* the batch being delivered: records [acked, n) of it are not yet acknowledged */
	struct gh_buf body;
	size_t *span;          /* body offset where record i's bytes end */
	struct pos *ends;      /* the position after record i */
	size_t n, acked;

	/* transport */
	CURL *curl;
	int sock;
	char *apikey;          /* guarded memory, only while a request is made */

	/* failure reporting */
	uint64_t fail_streak, last_fail_log_ms;
	bool dead;             /* the log does not continue the chain: stopped */

	/* counters read by gh_audit_sinks_stats (atomics) */
	uint64_t delivered, failures;
	int64_t position;
	bool failing;
};

struct metric_arg;

struct gh_audit_sinks {
	char log[PATH_MAX], ckpts[PATH_MAX], dbpath[PATH_MAX];
	struct metric_arg *metric_args; /* one per metrics family (gh_audit_sinks_metrics) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int64_t durable;      /* highest seq known durable */
	uint64_t wakes;
	bool stop;
	uint64_t stop_deadline_us;
	struct sink *sinks;   /* nsinks configured sinks, then the checkpointer */
	size_t nsinks;
	gh_audit_secret_fn secret;
	void *secret_arg;
	struct gh_audit_key key;
	int64_t every;
	char hostname[256];
	int pid;
	/* checkpointer counters (atomics) */
	uint64_t ck_written, ck_failures;
	int64_t ck_last;
};

static uint64_t now_ms(void)
{
	return gh_mono_us() / 1000;
}

static bool stopping(struct gh_audit_sinks *s)
{
	return __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
}

static bool past_deadline(struct gh_audit_sinks *s)
{
	return stopping(s) && gh_mono_us() > __atomic_load_n(&s->stop_deadline_us, __ATOMIC_ACQUIRE);
}

/* Waits up to ms for a wake-up (new records or stop); returns early when woken. */
static void wait_ms(struct gh_audit_sinks *s, uint64_t ms, uint64_t seen_wakes)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ns = (uint64_t)ts.tv_nsec + (ms % 1000) * 1000000u;
	ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	pthread_mutex_lock(&s->mu);
	while (!s->stop && s->wakes == seen_wakes)
		if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&s->mu);
}

/* A delay that is not a wake-up: only stop ends it early. */
static void sleep_ms(struct gh_audit_sinks *s, uint64_t ms)
{
	uint64_t until = now_ms() + ms;
	while (!stopping(s)) {
		uint64_t t = now_ms();
		if (t >= until)
			break;
		pthread_mutex_lock(&s->mu);
		uint64_t w = s->wakes;
		pthread_mutex_unlock(&s->mu);
		wait_ms(s, until - t, w);
	}
}

static void note_durable(struct gh_audit_sinks *s, int64_t seq)
{
	int64_t cur = __atomic_load_n(&s->durable, __ATOMIC_RELAXED);
	while (seq > cur && !__atomic_compare_exchange_n(&s->durable, &cur, seq, false, __ATOMIC_RELAXED,
							   __ATOMIC_RELAXED))
		;
}

void gh_audit_sinks_wake(void *arg, int64_t seq)
{
	struct gh_audit_sinks *s = arg;
	note_durable(s, seq);
	pthread_mutex_lock(&s->mu);
	s->wakes++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* ---- transports ---- */

static size_t discard_body(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static int curl_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct sink *k = arg;
	return past_deadline(k->s) ? 1 : 0; /* a stop does not wait for a slow receiver */
}

/* A secret as an HTTP header value: visible ASCII, inner spaces and tabs. */
static bool header_value_ok(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= 0x21 && v[i] <= 0x7e) || v[i] == ' ' || v[i] == '\t'))
			return false;
	return true;
}

/* Wipes and frees a header list that held the API key. */
static void slist_free_wiped(struct curl_slist *l)
{
	for (struct curl_slist *i = l; i; i = i->next)
		if (i->data)
			sodium_memzero(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

/* POSTs the batch; every record is acknowledged by a 2xx answer. */
static int deliver_http(struct sink *k, char *why, size_t whylen)
{
	struct curl_slist *hdrs = NULL;
	int rc = GH_EIO;
	if (!k->curl) {
		struct gh_error err;
		gh_error_clear(&err);
		if (gh_curl_load(&err)) { /* libcurl is loaded at first use */
			snprintf(why, whylen, "%.200s", err.message);
			return GH_EIO;
		}
		if (!(k->curl = curl_easy_init())) {
			snprintf(why, whylen, "cannot make an HTTP client");
			return GH_ENOMEM;
		}
	}
	CURL *h = k->curl;
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = hdrs ? curl_slist_append(hdrs, "Expect:") : NULL;
	if (!hdrs) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	if (k->secret) {
		/* read for each request: a rotated key (secret set) is used at once, and the key is
		 * held in the clear only while a request is made */
		int src = k->s->secret(k->s->secret_arg, k->secret, k->apikey, GH_SINK_API_KEY_MAX + 1);
		if (src) {
			snprintf(why, whylen, src == GH_ENOTFOUND ? "secret '%s' is not in the vault (gatehouse secret set)"
								  : "secret '%s' cannot be read from the vault", k->secret);
			goto out;
		}
		if (!header_value_ok(k->apikey)) {
			snprintf(why, whylen, "secret '%s' is not usable as an HTTP header value", k->secret);
			goto out;
		}
		size_t hl = strlen(k->header) + 2 + strlen(k->apikey) + 1;
		char *line = sodium_malloc(hl);
		if (!line) {
			snprintf(why, whylen, "out of memory");
			goto out;
		}
		snprintf(line, hl, "%s: %s", k->header, k->apikey);
		struct curl_slist *more = curl_slist_append(hdrs, line);
		sodium_free(line);
		if (!more) {
			snprintf(why, whylen, "out of memory");
			goto out;
		}
		hdrs = more;
	}
	curl_easy_setopt(h, CURLOPT_URL, k->url);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, k->body.data);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)k->body.len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "gatehouse-audit");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)k->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(k->timeout_ms < 10000 ? k->timeout_ms : 10000));
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect would resend the key elsewhere */
	curl_easy_setopt(h, CURLOPT_NOPROXY, "127.0.0.1,::1,localhost");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, curl_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, k);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	if (cc != CURLE_OK) {
		/* curl's generic text only: its error buffer may name the URL */
		snprintf(why, whylen, "%s", curl_easy_strerror(cc));
		goto out;
	}
	if (status < 200 || status > 299) {
		snprintf(why, whylen, "the receiver answered HTTP %ld", status);
		goto out;
	}
	k->acked = k->n;
	rc = 0;
out:
	if (k->apikey)
		sodium_memzero(k->apikey, GH_SINK_API_KEY_MAX + 1);
	slist_free_wiped(hdrs);
	return rc;
}

/* Writes the lines to standard output; a record is acknowledged once its line is written. A
 * reader that stops reading never holds the thread past a stop: writes wait with poll and go
 * in pieces of at most PIPE_BUF, which a pipe that polls writable takes without blocking. */
static int deliver_stdout(struct sink *k, char *why, size_t whylen)
{
	size_t off = k->acked ? k->span[k->acked - 1] : 0;
	while (off < k->body.len) {
		struct pollfd pfd = {.fd = STDOUT_FILENO, .events = POLLOUT};
		int pr = poll(&pfd, 1, 500);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0) {
			if (past_deadline(k->s)) {
				snprintf(why, whylen, "standard output is not being read");
				break;
			}
			continue;
		}
		size_t chunk = k->body.len - off > PIPE_BUF ? PIPE_BUF : k->body.len - off;
		ssize_t w = pr < 0 ? -1 : write(STDOUT_FILENO, k->body.data + off, chunk);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(why, whylen, "standard output: %s", w < 0 ? strerror(errno) : "closed");
			break;
		}
		off += (size_t)w;
		while (k->acked < k->n && k->span[k->acked] <= off)
			k->acked++;
	}
	return k->acked == k->n ? 0 : GH_EIO;
}

static int syslog_connect(struct sink *k, char *why, size_t whylen)
{
	if (k->address[0] == '/') {
		struct sockaddr_un un = {.sun_family = AF_UNIX};
		snprintf(un.sun_path, sizeof un.sun_path, "%s", k->address);
		k->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (k->sock < 0 || connect(k->sock, (struct sockaddr *)&un, sizeof un) < 0) {
			snprintf(why, whylen, "%s: %s", k->address, strerror(errno));
			goto fail;
		}
	} else {
		/* udp:HOST:PORT, HOST possibly [IPv6] */
		char host[256], port[8];
		const char *hp = k->address + 4, *colon = strrchr(hp, ':');
		size_t hl = (size_t)(colon - hp);
		if (hl >= 2 && hp[0] == '[') {
			hp++;
			hl -= 2;
		}
		snprintf(host, sizeof host, "%.*s", (int)(hl < sizeof host ? hl : sizeof host - 1), hp);
		snprintf(port, sizeof port, "%s", colon + 1);
		struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV}, *ai = NULL;
		int g = getaddrinfo(host, port, &hints, &ai);
		if (g) {
			snprintf(why, whylen, "%s: %s", k->address, gai_strerror(g));
			goto fail;
		}
		k->sock = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		int c = k->sock < 0 ? -1 : connect(k->sock, ai->ai_addr, ai->ai_addrlen);
		int e = errno;
		freeaddrinfo(ai);
		if (c < 0) {
			snprintf(why, whylen, "%s: %s", k->address, strerror(e));
			goto fail;
		}
	}
	struct timeval tv = {2, 0}; /* a full receiver queue fails the send instead of holding the thread */
	setsockopt(k->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	return 0;
fail:
	if (k->sock >= 0)
		close(k->sock);
	k->sock = -1;
	return GH_EIO;
}

/* Sends one datagram per record; a record is acknowledged once the kernel took it. */
static int deliver_syslog(struct sink *k, char *why, size_t whylen)
{
	if (k->sock < 0 && syslog_connect(k, why, whylen))
		return GH_EIO;
	while (k->acked < k->n) {
		size_t from = k->acked ? k->span[k->acked - 1] : 0, to = k->span[k->acked];
		ssize_t w = send(k->sock, k->body.data + from, to - from, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w != (ssize_t)(to - from)) {
			snprintf(why, whylen, "%s: %s", k->address, w < 0 ? strerror(errno) : "short send");
			close(k->sock); /* reconnect on the next attempt (the receiver may have restarted) */
			k->sock = -1;
			return GH_EIO;
		}
		k->acked++;
	}
	return 0;
}

/* ---- a sink's thread ---- */

static void batch_reset(struct sink *k)
{
	gh_buf_reset(&k->body);
	k->n = k->acked = 0;
}

/* Adds one record to the batch in the sink's format. */
static int batch_add(struct sink *k, const char *line, size_t len)
{
	int rc;
	switch (k->k) {
	case GH_SINK_HTTP:
		rc = audit_http_add(&k->body, line, len);
		break;
	case GH_SINK_SYSLOG:
		rc = audit_syslog_format(line, len, k->facility, k->s->hostname, k->s->pid, &k->body);
		break;
	default:
		rc = gh_buf_append(&k->body, line, len);
		rc = rc ? rc : gh_buf_puts(&k->body, "\n");
	}
	if (rc)
		return rc;
	k->span[k->n] = k->body.len;
	k->ends[k->n] = k->cur.at;
	k->n++;
	return 0;
}

/* Fills the batch with durable records. Returns the number added, or -1 when the log cannot be
 * followed (logged; the sink stops). */
static int batch_fill(struct sink *k)
{
	off_t end = durable_end(k->cur.fd);
	const char *why = "the log cannot be read";
	if (end < 0)
		goto broken;
	while ((int64_t)k->n < k->batch) {
		struct pos before = k->cur.at;
		size_t body_before = k->body.len;
		const char *line;
		size_t len;
		int rc = cursor_read(&k->cur, end, &line, &len, &why);
		if (rc == 0)
			break;
		if (rc < 0 && k->n)
			break; /* deliver what checked out first; the next fill stops the sink */
		if (rc < 0)
			goto broken;
		note_durable(k->s, k->cur.at.seq);
		int arc = batch_add(k, line, len);
		if (arc == 0 && !(k->n > 1 && k->body.len > GH_SINK_MAX_BATCH_BYTES))
			continue;
		/* over the byte bound (a first record is always taken, whatever its size): this
		 * record opens the next batch */
		if (arc == 0)
			k->n--;
		k->body.len = body_before;
		if (k->body.data)
			k->body.data[body_before] = '\0';
		k->cur.at = before;
		break;
	}
	if (k->k == GH_SINK_HTTP && k->n && audit_http_close(&k->body)) {
		why = "the batch does not fit its buffer";
		goto broken;
	}
	return (int)k->n;
broken:
	gh_log(GH_LOG_ERROR, "audit sink '%s' (%s): stopped after seq %lld: %s", k->name, k->kind,
	       (long long)k->cur.at.seq, why);
	k->dead = true;
	__atomic_store_n(&k->failing, true, __ATOMIC_RELAXED);
	return -1;
}

/* Keeps the acknowledged position in the store (a lagging store means records sent again,
 * never lost: at least once). */
static void commit(struct sink *k, const struct pos *p)
{
	k->committed = *p;
	__atomic_store_n(&k->position, p->seq, __ATOMIC_RELAXED);
	if (k->st && gh_store_audit_position_set(k->st, k->name, p->seq, (int64_t)p->off, p->hash))
		gh_log(GH_LOG_WARN, "audit sink '%s': cannot keep its position in the store; records after seq %lld "
		       "may be sent again after a restart", k->name, (long long)p->seq);
}

static void report_failure(struct sink *k, const char *why, uint64_t delay_ms)
{
	uint64_t t = now_ms();
	__atomic_add_fetch(&k->failures, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&k->failing, true, __ATOMIC_RELAXED);
	k->fail_streak++;
	if (k->fail_streak == 1 || t - k->last_fail_log_ms >= FAIL_LOG_EVERY_MS) {
		int64_t behind = __atomic_load_n(&k->s->durable, __ATOMIC_RELAXED) - k->committed.seq;
		gh_log(GH_LOG_WARN, "audit sink '%s' (%s): delivery failed (%llu in a row): %s; %lld records waiting, "
		       "next try in %.1fs", k->name, k->kind, (unsigned long long)k->fail_streak, why,
		       (long long)(behind > 0 ? behind : 0), (double)delay_ms / 1000.0);
		k->last_fail_log_ms = t;
	}
}

static void report_success(struct sink *k)
{
	if (k->fail_streak)
		gh_log(GH_LOG_INFO, "audit sink '%s' (%s): delivering again after %llu failed attempts", k->name,
		       k->kind, (unsigned long long)k->fail_streak);
	k->fail_streak = 0;
	__atomic_store_n(&k->failing, false, __ATOMIC_RELAXED);
}

static void *sink_main(void *arg)
{
	struct sink *k = arg;
	struct gh_audit_sinks *s = k->s;
	uint64_t delay = GH_SINK_RETRY_MIN_MS;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		uint64_t w = s->wakes;
		pthread_mutex_unlock(&s->mu);
		if (past_deadline(s))
			break;
		if (k->n == 0 && batch_fill(k) < 0)
			break;
		if (k->n == 0) {
			if (stopping(s))
				break; /* caught up */
			wait_ms(s, IDLE_POLL_MS, w);
			continue;
		}
		char why[256] = "";
		size_t before = k->acked;
		int rc = k->k == GH_SINK_HTTP ? deliver_http(k, why, sizeof why)
			 : k->k == GH_SINK_SYSLOG ? deliver_syslog(k, why, sizeof why)
						   : deliver_stdout(k, why, sizeof why);
		if (k->acked > before) {
			__atomic_add_fetch(&k->delivered, k->acked - before, __ATOMIC_RELAXED);
			commit(k, &k->ends[k->acked - 1]);
		}
		if (rc == 0) {
			report_success(k);
			batch_reset(k);
			delay = GH_SINK_RETRY_MIN_MS;
			continue;
		}
		if (stopping(s))
			break; /* the rest goes at the next start */
		/* capped exponential backoff with jitter, so sinks of many nodes do not retry in step */
		uint64_t d = delay / 2 + randombytes_uniform((uint32_t)(delay / 2 + 1));
		report_failure(k, why, d);
		sleep_ms(s, d);
		delay = delay * 2 > (uint64_t)k->retry_max_ms ? (uint64_t)k->retry_max_ms : delay * 2;
		if (past_deadline(s))
			break;
	}
	return NULL;
}

/* ---- the checkpointer's thread ---- */

static void checkpoint(struct sink *k, const struct pos *p)
{
	struct gh_audit_sinks *s = k->s;
	struct gh_audit_checkpoint c;
	struct gh_error err;
	gh_error_clear(&err);
	gh_audit_checkpoint_make(&s->key, p->seq, p->hash, gh_now_ms(), &c);
	if (gh_audit_checkpoint_append(s->ckpts, &c, &err)) {
		__atomic_add_fetch(&s->ck_failures, 1, __ATOMIC_RELAXED);
		gh_log(GH_LOG_ERROR, "audit checkpoint at seq %lld not written: %s", (long long)p->seq, err.message);
		return;
	}
	__atomic_add_fetch(&s->ck_written, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&s->ck_last, p->seq, __ATOMIC_RELAXED);
}

static void *checkpointer_main(void *arg)
{
	struct sink *k = arg;
	struct gh_audit_sinks *s = k->s;
	struct gh_audit_checkpoint last;
	struct gh_error err;
	gh_error_clear(&err);
	int lrc = gh_audit_checkpoint_last(s->ckpts, &last, &err);
	if (lrc && lrc != GH_ENOTFOUND) {
		gh_log(GH_LOG_ERROR, "audit checkpoints: %s; no checkpoint is written", err.message);
		__atomic_add_fetch(&s->ck_failures, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	if (lrc == GH_ENOTFOUND)
		last.seq = 0;
	if (lrc == 0 && !gh_audit_checkpoint_verify(&last, s->key.pk)) {
		gh_log(GH_LOG_ERROR, "audit checkpoints: the last checkpoint is not signed by this data directory's "
		       "checkpoint key; no checkpoint is written");
		__atomic_add_fetch(&s->ck_failures, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	__atomic_store_n(&s->ck_last, last.seq, __ATOMIC_RELAXED);
	uint64_t saved_ms = now_ms();
	for (;;) {
		pthread_mutex_lock(&s->mu);
		uint64_t w = s->wakes;
		pthread_mutex_unlock(&s->mu);
		off_t end = durable_end(k->cur.fd);
		const char *why = "the log cannot be read";
		int rc = end < 0 ? GH_EINVAL : 1;
		int budget = 10000; /* records between looks at stop and saves of the position */
		while (rc == 1 && budget-- > 0) {
			const char *line;
			size_t len;
			if ((rc = cursor_read(&k->cur, end, &line, &len, &why)) != 1)
				break;
			const struct pos *p = &k->cur.at;
			note_durable(s, p->seq);
			if (p->seq == last.seq && strcmp(p->hash, last.hash) != 0) {
				why = "the record at the last checkpoint's seq has another hash: the log was rewritten";
				rc = GH_EINVAL;
				break;
			}
			if (p->seq > last.seq && p->seq % s->every == 0) {
				checkpoint(k, p);
				last.seq = p->seq;
				memcpy(last.hash, p->hash, 65);
			}
		}
		if (rc < 0) {
			gh_log(GH_LOG_ERROR, "audit checkpoints: stopped after seq %lld: %s", (long long)k->cur.at.seq, why);
			__atomic_add_fetch(&s->ck_failures, 1, __ATOMIC_RELAXED);
			k->dead = true;
			break;
		}
		__atomic_store_n(&k->position, k->cur.at.seq, __ATOMIC_RELAXED);
		bool caught_up = rc == 0, stop_now = stopping(s) && (caught_up || past_deadline(s));
		/* The position is only where a restart resumes reading (re-reading is harmless): saved
		 * at most once a second. Each save is a store write, and every store write makes the
		 * server's loop re-check the store for policy and revocation changes. */
		if (k->cur.at.seq != k->committed.seq && (stop_now || now_ms() - saved_ms > 1000)) {
			commit(k, &k->cur.at);
			saved_ms = now_ms();
		}
		if (stop_now) {
			/* the shutdown checkpoint: the last durable record (or, when reading a long log
			 * took past the deadline, the last one checked so far) */
			if (k->cur.at.seq > last.seq)
				checkpoint(k, &k->cur.at);
			break;
		}
		if (caught_up)
			wait_ms(s, IDLE_POLL_MS, w);
	}
	return NULL;
}

/* ---- life cycle ---- */

static int sink_thread_start(struct sink *k, struct gh_error *err)
{
	struct gh_audit_sinks *s = k->s;
	int rc = gh_store_open(s->dbpath, false, &k->st, err);
	if (rc)
		return rc;
	k->cur.fd = open(s->log, O_RDONLY | O_CLOEXEC);
	if (k->cur.fd < 0)
		return gh_error_set(err, GH_EIO, "%s: %s", s->log, strerror(errno));
	int64_t seq = 0, off = 0;
	char hash[65];
	rc = gh_store_audit_position_get(k->st, k->name, &seq, &off, hash);
	if (rc == 0) {
		k->cur.at.seq = seq;
		k->cur.at.off = (off_t)off;
		memcpy(k->cur.at.hash, hash, 65);
	} else if (rc != GH_ENOTFOUND) {
		return gh_error_set(err, rc, "audit sink '%s': cannot read its position from the store", k->name);
	}
	k->committed = k->cur.at;
	k->position = k->cur.at.seq;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old); /* the thread inherits a mask with every signal blocked */
	int prc = pthread_create(&k->thread, NULL, k->k ? sink_main : checkpointer_main, k);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (prc != 0)
		return gh_error_set(err, GH_EINTERNAL, "cannot start the thread of audit sink '%s'", k->name);
	k->started = true;
	return 0;
}

static void sink_free(struct sink *k)
{
	if (k->started)
		pthread_join(k->thread, NULL);
	if (k->cur.fd >= 0)
		close(k->cur.fd);
	free(k->cur.buf);
	gh_store_close(k->st);
	gh_buf_free(&k->body);
	free(k->span);
	free(k->ends);
	if (k->curl)
		curl_easy_cleanup(k->curl);
	if (k->sock >= 0)
		close(k->sock);
	if (k->apikey)
		sodium_free(k->apikey);
	free(k->url);
	free(k->header);
	free(k->secret);
	free(k->address);
}

static int sink_init(struct gh_audit_sinks *s, struct sink *k, const struct gh_policy_sink *c)
{
	static const char *const kinds[] = {"checkpoints", "stdout", "syslog", "http"};
	k->s = s;
	k->cur.fd = -1;
	k->sock = -1;
	memcpy(k->cur.at.hash, GH_AUDIT_ZERO_HASH, 65);
	k->cur.cap = READ_CHUNK;
	k->cur.buf = malloc(k->cur.cap);
	if (!k->cur.buf)
		return GH_ENOMEM;
	if (!c) {
		snprintf(k->name, sizeof k->name, "%s", CHECKPOINTER_NAME);
		snprintf(k->cur.who, sizeof k->cur.who, "checkpoints");
		k->kind = kinds[0];
		return 0;
	}
	snprintf(k->name, sizeof k->name, "%s", c->name);
	snprintf(k->cur.who, sizeof k->cur.who, "sink '%s'", c->name);
	k->k = c->kind;
	k->kind = kinds[c->kind];
	k->batch = c->batch > 0 ? c->batch : 100;
	k->retry_max_ms = (c->retry_max > 0 ? c->retry_max : 30) * 1000;
	k->timeout_ms = (c->timeout > 0 ? c->timeout : 10) * 1000;
	k->facility = c->facility;
	gh_buf_init(&k->body, (size_t)GH_SINK_MAX_BATCH_BYTES + GH_AUDIT_MAX_LINE + 1024);
	k->span = calloc((size_t)k->batch, sizeof *k->span);
	k->ends = calloc((size_t)k->batch, sizeof *k->ends);
	if (!k->span || !k->ends)
		return GH_ENOMEM;
	if ((c->url && !(k->url = gh_strdup(c->url))) || (c->header && !(k->header = gh_strdup(c->header))) ||
	    (c->secret && !(k->secret = gh_strdup(c->secret))) || (c->address && !(k->address = gh_strdup(c->address))))
		return GH_ENOMEM;
	if (k->secret && !(k->apikey = sodium_malloc(GH_SINK_API_KEY_MAX + 1)))
		return GH_ENOMEM;
	return 0;
}

int gh_audit_sinks_open(const char *datadir, const struct gh_policy_audit *cfg, const uint8_t master[32],
			gh_audit_secret_fn secret, void *secret_arg, struct gh_audit_sinks **out, struct gh_error *err)
{
	struct gh_audit_sinks *s = calloc(1, sizeof *s);
	struct gh_store *st = NULL;
	int rc;
	if (!s)
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->secret = secret;
	s->secret_arg = secret_arg;
	s->every = cfg && cfg->checkpoint_every > 0 ? cfg->checkpoint_every : 1000;
	s->pid = (int)getpid();
	if (gethostname(s->hostname, sizeof s->hostname - 1) != 0)
		s->hostname[0] = '\0';
	if (snprintf(s->log, sizeof s->log, "%s/audit/audit.log", datadir) >= (int)sizeof s->log ||
	    snprintf(s->ckpts, sizeof s->ckpts, "%s/audit/checkpoints", datadir) >= (int)sizeof s->ckpts ||
	    gh_path_join(s->dbpath, sizeof s->dbpath, datadir, "gatehouse.db")) {
		rc = gh_error_set(err, GH_ETOOBIG, "path too long");
		goto fail;
	}
	s->nsinks = cfg ? cfg->nsinks : 0;
	s->sinks = calloc(s->nsinks + 1, sizeof *s->sinks);
	if (!s->sinks) {
		rc = gh_error_set(err, GH_ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i <= s->nsinks; i++)
		if (sink_init(s, &s->sinks[i], i < s->nsinks ? &cfg->sinks[i] : NULL)) {
			rc = gh_error_set(err, GH_ENOMEM, "out of memory");
			goto fail;
		}
	if ((rc = gh_store_open(s->dbpath, true, &st, err)))
		goto fail;
	rc = gh_audit_key_load(st, master, true, &s->key, err);
	gh_store_close(st);
	if (rc)
		goto fail;
	*out = s;
	return 0;
fail:
	gh_audit_sinks_close(s);
	return rc;
}

int gh_audit_sinks_check(const struct gh_policy_audit *cfg, struct gh_store *st, const char *filename,
			 struct gh_error *err)
{
	for (size_t i = 0; cfg && i < cfg->nsinks; i++) {
		const struct gh_policy_sink *k = &cfg->sinks[i];
		uint8_t *sealed = NULL;
		size_t len = 0;
		int64_t version = 0;
		if (!k->secret)
			continue;
		int rc = gh_store_secret_get(st, k->secret, &sealed, &len, &version);
		free(sealed); /* only whether it is there: nothing is opened */
		if (rc == GH_ENOTFOUND) {
			gh_error_set(err, rc, "%s:%d:%d: audit.sinks[].api_key.secret: secret '%s' (sink '%s') is not in the "
				     "vault; set it first", filename, k->secret_line, k->secret_column, k->secret, k->name);
			if (err) {
				err->line = k->secret_line;
				err->column = k->secret_column;
			}
			return rc;
		}
		if (rc)
			return gh_error_set(err, GH_EIO, "cannot read the vault to check audit sink '%s'", k->name);
	}
	return 0;
}

int gh_audit_sinks_start(struct gh_audit_sinks *s, struct gh_error *err)
{
	for (size_t i = 0; i <= s->nsinks; i++) {
		int rc = sink_thread_start(&s->sinks[i], err);
		if (rc)
			return rc;
	}
	return 0;
}

void gh_audit_sinks_close(struct gh_audit_sinks *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	__atomic_store_n(&s->stop_deadline_us, gh_mono_us() + (uint64_t)GH_SINK_STOP_MS * 1000u, __ATOMIC_RELEASE);
	__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
	s->wakes++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; s->sinks && i <= s->nsinks; i++)
		sink_free(&s->sinks[i]);
	free(s->sinks);
	free(s->metric_args);
	gh_audit_key_wipe(&s->key);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

size_t gh_audit_sinks_stats(struct gh_audit_sinks *s, struct gh_audit_sink_stats *out, size_t max)
{
	size_t n = 0;
	int64_t durable = __atomic_load_n(&s->durable, __ATOMIC_RELAXED);
	for (size_t i = 0; i < s->nsinks && n < max; i++, n++) {
		struct sink *k = &s->sinks[i];
		out[n].name = k->name;
		out[n].kind = k->kind;
		out[n].delivered = __atomic_load_n(&k->delivered, __ATOMIC_RELAXED);
		out[n].failures = __atomic_load_n(&k->failures, __ATOMIC_RELAXED);
		out[n].position = __atomic_load_n(&k->position, __ATOMIC_RELAXED);
		out[n].lag = durable > out[n].position ? durable - out[n].position : 0;
		out[n].failing = __atomic_load_n(&k->failing, __ATOMIC_RELAXED);
	}
	return n;
}

void gh_audit_sinks_checkpoint_stats(struct gh_audit_sinks *s, uint64_t *written, int64_t *last_seq,
				     uint64_t *failures)
{
	*written = __atomic_load_n(&s->ck_written, __ATOMIC_RELAXED);
	*last_seq = __atomic_load_n(&s->ck_last, __ATOMIC_RELAXED);
	*failures = __atomic_load_n(&s->ck_failures, __ATOMIC_RELAXED);
}

/* ---- metrics: read at scrape time ---- */

enum sink_metric { SM_DELIVERED, SM_FAILURES, SM_LAG, SM_FAILING, CK_WRITTEN, CK_LAST, CK_FAILURES };

struct metric_arg {
	struct gh_audit_sinks *s;
	enum sink_metric what;
};

static void collect(void *arg, void *scrape, struct gh_metrics_out *out)
{
	const struct metric_arg *a = arg;
	if (a->what >= CK_WRITTEN) {
		uint64_t written = 0, failures = 0;
		int64_t last = 0;
		gh_audit_sinks_checkpoint_stats(a->s, &written, &last, &failures);
		gh_metrics_emit(out, NULL, a->what == CK_WRITTEN ? (double)written
					   : a->what == CK_LAST  ? (double)last
								 : (double)failures);
		return;
	}
	struct gh_audit_sink_stats st[GH_SINK_MAX];
	size_t n = gh_audit_sinks_stats(a->s, st, GH_SINK_MAX);
	for (size_t i = 0; i < n; i++) {
		double v = a->what == SM_DELIVERED ? (double)st[i].delivered
			   : a->what == SM_FAILURES ? (double)st[i].failures
			   : a->what == SM_LAG	    ? (double)st[i].lag
						    : (st[i].failing ? 1.0 : 0.0);
		gh_metrics_emit(out, (const char *[]){st[i].name, NULL}, v);
	}
}

int gh_audit_sinks_metrics(struct gh_audit_sinks *s, struct gh_metrics *m)
{
	static const struct {
		const char *name, *help;
		enum gh_metrics_type type;
	} fam[] = {
		[SM_DELIVERED] = {"gatehouse_audit_sink_delivered_total", "Audit records the sink acknowledged since start.",
				  GH_METRICS_COUNTER},
		[SM_FAILURES] = {"gatehouse_audit_sink_failures_total", "Failed delivery attempts of the sink since start.",
				 GH_METRICS_COUNTER},
		[SM_LAG] = {"gatehouse_audit_sink_lag_records", "Durable audit records not yet acknowledged by the sink.",
			    GH_METRICS_GAUGE},
		[SM_FAILING] = {"gatehouse_audit_sink_failing", "1 while the sink's last delivery attempt failed.",
				GH_METRICS_GAUGE},
		[CK_WRITTEN] = {"gatehouse_audit_checkpoints_total", "Signed audit checkpoints written since start.",
				GH_METRICS_COUNTER},
		[CK_LAST] = {"gatehouse_audit_checkpoint_last_seq", "The audit record the last signed checkpoint covers.",
			     GH_METRICS_GAUGE},
		[CK_FAILURES] = {"gatehouse_audit_checkpoint_failures_total",
				 "Signed checkpoints that could not be written, and checkpointer stops.", GH_METRICS_COUNTER},
	};
	static const char *const sink_label[] = {"sink", NULL};
	if (!s->metric_args && !(s->metric_args = calloc(sizeof fam / sizeof *fam, sizeof *s->metric_args)))
		return GH_ENOMEM;
	for (int i = 0; i < (int)(sizeof fam / sizeof *fam); i++) {
			s->metric_args[i] = (struct metric_arg){s, (enum sink_metric)i};
		int rc = gh_metrics_callback(m, fam[i].name, fam[i].help, fam[i].type, i < CK_WRITTEN ? sink_label : NULL,
					     collect, &s->metric_args[i]);
		if (rc)
			return rc;
	}
	return 0;
}
