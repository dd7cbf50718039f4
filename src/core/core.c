/* core: errors, strings, buffers, time, encodings, files, logging. */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

int gh_error_set(struct gh_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof err->message, fmt, ap);
		va_end(ap);
	}
	return code;
}

void gh_error_clear(struct gh_error *err)
{
	if (err)
		memset(err, 0, sizeof *err);
}

bool gh_str_eq(struct gh_str a, const char *z)
{
	size_t n = strlen(z);
	return a.len == n && memcmp(a.p, z, n) == 0;
}

bool gh_str_caseeq(struct gh_str a, const char *z)
{
	size_t n = strlen(z);
	return a.len == n && strncasecmp(a.p, z, n) == 0;
}

char *gh_strndup(const char *p, size_t n)
{
	char *s = malloc(n + 1);
	if (!s)
		return NULL;
	if (n)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

char *gh_strdup(const char *z)
{
	return z ? gh_strndup(z, strlen(z)) : NULL;
}

/* ---- buffers ---- */

void gh_buf_init(struct gh_buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

void gh_buf_free(struct gh_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void gh_buf_reset(struct gh_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static int buf_reserve(struct gh_buf *b, size_t extra)
{
	if (extra > b->max || b->len > b->max - extra)
		return GH_ETOOBIG;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return GH_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int gh_buf_append(struct gh_buf *b, const void *p, size_t n)
{
	int rc = buf_reserve(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int gh_buf_puts(struct gh_buf *b, const char *z)
{
	return gh_buf_append(b, z, strlen(z));
}

int gh_buf_printf(struct gh_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return GH_EINVAL;
	if ((size_t)n < sizeof small)
		return gh_buf_append(b, small, (size_t)n);
	int rc = buf_reserve(b, (size_t)n);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int gh_buf_json_string(struct gh_buf *b, const char *z, size_t n)
{
	static const char hexd[] = "0123456789abcdef";
	int rc = buf_reserve(b, n + 2);
	if (rc)
		return rc;
	b->data[b->len++] = '"';
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)z[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if ((rc = gh_buf_append(b, z + run, i - run)))
			return rc;
		run = i + 1;
		char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
		size_t el = 2;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
			esc[4] = hexd[c >> 4]; esc[5] = hexd[c & 15];
			el = 6;
		}
		if ((rc = gh_buf_append(b, esc, el)))
			return rc;
	}
	if ((rc = gh_buf_append(b, z + run, n - run)))
		return rc;
	return gh_buf_append(b, "\"", 1);
}

/* ---- time ---- */

int64_t gh_now(void)
{
	return (int64_t)time(NULL);
}

int64_t gh_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t gh_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void gh_time_rfc3339(int64_t ms, char *out, size_t outlen)
{
	int64_t sec = ms / 1000, rem = ms % 1000;
	if (rem < 0) { /* floor, so times before 1970 read correctly */
		sec -= 1;
		rem += 1000;
	}
	time_t s = (time_t)sec;
	struct tm tm;
	gmtime_r(&s, &tm);
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)rem);
}

int gh_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	/* the whole string is the number: no blanks, no '+' (strtoll would skip or take them) */
	if (!s || !((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9')))
		return GH_EINVAL;
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || !end || *end || v < min || v > max)
		return GH_EINVAL;
	*out = v;
	return 0;
}

static int parse_scaled(const char *s, const char *units, const int64_t *mult, int64_t *out)
{
	if (!s || !*s || strlen(s) > 32)
		return GH_EINVAL;
	char num[40];
	size_t n = strlen(s);
	int64_t m = 1;
	const char *u = strchr(units, s[n - 1]);
	if (u && s[n - 1] != '\0') {
		m = mult[u - units];
		n--;
	}
	if (n == 0)
		return GH_EINVAL;
	memcpy(num, s, n);
	num[n] = '\0';
	int64_t v;
	if (gh_parse_int(num, 0, INT64_MAX / m, &v))
		return GH_EINVAL;
	*out = v * m;
	return 0;
}

int gh_parse_duration(const char *s, int64_t *seconds)
{
	static const int64_t mult[] = {1, 60, 3600, 86400};
	return parse_scaled(s, "smhd", mult, seconds);
}

int gh_parse_size(const char *s, int64_t *bytes)
{
	static const int64_t mult[] = {1024, 1024 * 1024, 1024LL * 1024 * 1024};
	return parse_scaled(s, "KMG", mult, bytes);
}

/* ---- encodings ---- */

void gh_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int gh_hex_digit(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int gh_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
	if (inlen != 2 * outlen)
		return GH_EINVAL;
	for (size_t i = 0; i < outlen; i++) {
		int h = gh_hex_digit((unsigned char)in[2 * i]), l = gh_hex_digit((unsigned char)in[2 * i + 1]);
		if (h < 0 || l < 0)
			return GH_EINVAL;
		out[i] = (uint8_t)(h << 4 | l);
	}
	return 0;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t gh_b64url_encode(const uint8_t *in, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t k = n - i;
		if (k > 1) v |= (uint32_t)in[i + 1] << 8;
		if (k > 2) v |= in[i + 2];
		size_t chars = k >= 3 ? 4 : k + 1;
		for (size_t j = 0; j < chars; j++) {
			if (o + 1 >= outlen)
				return 0;
			out[o++] = b64url[(v >> (18 - 6 * j)) & 63];
		}
	}
	if (o >= outlen)
		return 0;
	out[o] = '\0';
	return o;
}

int gh_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outcap, size_t *outlen)
{
	static int8_t rev[256];
	static int ready;
	if (!ready) {
		memset(rev, -1, sizeof rev);
		for (int i = 0; i < 64; i++)
			rev[(unsigned char)b64url[i]] = (int8_t)i;
		ready = 1;
	}
	if (n % 4 == 1)
		return GH_EINVAL;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = rev[(unsigned char)in[i]];
		if (v < 0)
			return GH_EINVAL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outcap)
				return GH_ETOOBIG;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits must be zero: one encoding per value (no malleable signatures). */
	if (bits && (acc & ((1u << bits) - 1)))
		return GH_EINVAL;
	*outlen = o;
	return 0;
}

void gh_random_id(const char *prefix, size_t nbytes, char *out, size_t outlen)
{
	uint8_t r[32];
	char hex[65];
	if (nbytes > sizeof r)
		nbytes = sizeof r;
	randombytes_buf(r, nbytes);
	gh_hex_encode(r, nbytes, hex);
	snprintf(out, outlen, "%s_%s", prefix, hex);
}

/* ---- files ---- */

int gh_read_file(const char *path, size_t max, char **out, size_t *outlen, struct gh_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return gh_error_set(err, GH_EIO, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return gh_error_set(err, GH_EIO, "%s: not a regular file", path);
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return gh_error_set(err, GH_ETOOBIG, "%s: larger than %zu bytes", path, max);
	}
	size_t cap = (size_t)st.st_size + 1, len = 0;
	char *p = malloc(cap);
	if (!p) {
		close(fd);
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	}
	for (;;) {
		if (len + 1 >= cap) {
			/* The file grew while reading: allow up to max. */
			if (cap > max) {
				free(p);
				close(fd);
				return gh_error_set(err, GH_ETOOBIG, "%s: larger than %zu bytes", path, max);
			}
			char *q = realloc(p, cap * 2);
			if (!q) {
				free(p);
				close(fd);
				return gh_error_set(err, GH_ENOMEM, "out of memory");
			}
			p = q;
			cap *= 2;
		}
		ssize_t r = read(fd, p + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(p);
			close(fd);
			return gh_error_set(err, GH_EIO, "%s: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	p[len] = '\0';
	*out = p;
	if (outlen)
		*outlen = len;
	return 0;
}

void gh_unlink_sqlite(const char *path)
{
	char side[PATH_MAX + 8];
	unlink(path);
	snprintf(side, sizeof side, "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof side, "%s-shm", path);
	unlink(side);
}

int gh_path_join(char *out, size_t outlen, const char *dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);
	return (n < 0 || (size_t)n >= outlen) ? GH_ETOOBIG : 0;
}

int gh_write_file_atomic(const char *path, const void *data, size_t len, int mode, struct gh_error *err)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
		return gh_error_set(err, GH_ETOOBIG, "path too long");
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return gh_error_set(err, GH_EIO, "%s: %s", tmp, strerror(errno));
	const char *p = data;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (fsync(fd) < 0)
		goto fail;
	close(fd);
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return gh_error_set(err, GH_EIO, "%s: %s", path, strerror(errno));
	}
	return 0;
fail:
	gh_error_set(err, GH_EIO, "%s: %s", tmp, strerror(errno));
	close(fd);
	unlink(tmp);
	return GH_EIO;
}

/* ---- logging ---- */

static enum gh_log_level log_level = GH_LOG_INFO;
static bool log_sensitive;

/* A log value longer than this is cut: a line stays readable and bounded. */
#define GH_LOG_MAX_VALUE 4096

void gh_log_set_level(enum gh_log_level l)
{
	log_level = l;
}

bool gh_log_enabled(enum gh_log_level l)
{
	return l >= log_level;
}

void gh_log_set_sensitive(bool on)
{
	log_sensitive = on;
}

bool gh_log_sensitive(void)
{
	return log_sensitive && log_level == GH_LOG_DEBUG;
}

/* The length of z[0..n) cut back so that it does not end inside a UTF-8 sequence (reads only
 * z[0..n)). */
static size_t utf8_cut(const char *z, size_t n)
{
	if (n == 0)
		return 0;
	size_t j = n - 1;
	while (j > 0 && n - j < 4 && ((unsigned char)z[j] & 0xC0) == 0x80)
		j--;
	unsigned char c = (unsigned char)z[j];
	size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
	return j + need <= n ? n : j;
}

/* Writes one line: time, level, msg, then the key/value pairs of ap (if any). A line that
 * cannot be formed is replaced by one that says so: stderr never gets half a JSON object. */
static void log_line(enum gh_log_level l, const char *msg, va_list *ap)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	char ts[32];
	struct gh_buf b;
	bool truncated = false;
	gh_time_rfc3339(gh_now_ms(), ts, sizeof ts);
	gh_buf_init(&b, 64 * 1024);
	int rc = gh_buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", ts, names[l]);
	rc = rc ? rc : gh_buf_json_string(&b, msg, strlen(msg));
	for (const char *k; ap && !rc && (k = va_arg(*ap, const char *));) {
		const char *v = va_arg(*ap, const char *);
		rc = gh_buf_printf(&b, ",\"%s\":", k);
		if (rc)
			break;
		if (!v) {
			rc = gh_buf_puts(&b, "null");
			continue;
		}
		size_t n = strlen(v);
		if (n > GH_LOG_MAX_VALUE) {
			n = utf8_cut(v, GH_LOG_MAX_VALUE);
			truncated = true;
		}
		rc = gh_buf_json_string(&b, v, n);
	}
	if (!rc && truncated)
		rc = gh_buf_puts(&b, ",\"truncated\":true");
	rc = rc ? rc : gh_buf_puts(&b, "}\n");
	if (rc) {
		gh_buf_reset(&b);
		rc = gh_buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"log line too long\"}\n", ts,
				   names[l]);
	}
	if (!rc && b.data)
		fwrite(b.data, 1, b.len, stderr);
	gh_buf_free(&b);
}

void gh_log(enum gh_log_level l, const char *fmt, ...)
{
	if (l < log_level)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof msg) /* cut: not inside a UTF-8 sequence */
		msg[utf8_cut(msg, sizeof msg - 1)] = '\0';
	log_line(l, msg, NULL);
}

void gh_log_kv(enum gh_log_level l, const char *msg, ...)
{
	if (l < log_level)
		return;
	va_list ap;
	va_start(ap, msg);
	log_line(l, msg, &ap);
	va_end(ap);
}
