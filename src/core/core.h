/* core: errors, strings, buffers, time, encodings, ids, logging, a string map. */
#ifndef GH_CORE_H
#define GH_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

/* Error codes: functions that can fail return 0 or one of these (negative). */
enum gh_err {
	GH_OK = 0,
	GH_EINVAL = -1,    /* malformed input */
	GH_ENOMEM = -2,
	GH_EIO = -3,       /* file or socket I/O failed */
	GH_ENOTFOUND = -4,
	GH_EEXIST = -5,
	GH_EDENIED = -6,
	GH_ETOOBIG = -7,   /* a limit was exceeded */
	GH_EAGAIN = -8,    /* need more input */
	GH_ECONFLICT = -9,
	GH_EAUDIT = -10,   /* the audit trail could not be written */
	GH_EINTERNAL = -11,
	GH_ETIMEOUT = -12,
};

/* Detail of a failure, filled by the callee when the caller passes one. */
struct gh_error {
	int code;
	char message[512];
	int line, column; /* 1-based; 0 when not about a position in a text */
};

/* Writes a formatted message into err (if non-NULL) and returns code. */
int gh_error_set(struct gh_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void gh_error_clear(struct gh_error *err);

/* A string with a length; not necessarily NUL-terminated. */
struct gh_str {
	const char *p;
	size_t len;
};
bool gh_str_eq(struct gh_str a, const char *z);
bool gh_str_caseeq(struct gh_str a, const char *z);

/* A growable byte buffer with a ceiling: appends past max fail with GH_ETOOBIG.
 * The data is always NUL-terminated (not counted in len). */
struct gh_buf {
	char *data;
	size_t len, cap, max;
};
void gh_buf_init(struct gh_buf *b, size_t max);
void gh_buf_free(struct gh_buf *b);
void gh_buf_reset(struct gh_buf *b);
int gh_buf_append(struct gh_buf *b, const void *p, size_t n);
int gh_buf_puts(struct gh_buf *b, const char *z);
int gh_buf_printf(struct gh_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends z as a JSON string literal (with quotes), escaping as RFC 8259 requires. */
int gh_buf_json_string(struct gh_buf *b, const char *z, size_t n);

/* Time. */
int64_t gh_now(void);          /* Unix seconds */
int64_t gh_now_ms(void);       /* Unix milliseconds */
uint64_t gh_mono_us(void);     /* monotonic microseconds */
/* Formats Unix ms as RFC 3339 UTC with milliseconds into out (>= 25 bytes). */
void gh_time_rfc3339(int64_t ms, char *out, size_t outlen);
/* Parses "15m", "2h", "30s", "1d" or plain seconds; returns GH_EINVAL on anything else. */
int gh_parse_duration(const char *s, int64_t *seconds);
/* Parses a decimal integer in [min,max]; whole string must be the number. */
int gh_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);
/* Parses "1M", "512K", "1048576" into bytes. */
int gh_parse_size(const char *s, int64_t *bytes);

/* Encodings. out sizes: hex 2n+1, base64url ((n+2)/3)*4+1. */
void gh_hex_encode(const uint8_t *in, size_t n, char *out);
int gh_hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen);
/* The value of one hexadecimal digit (either case); -1 for anything else. */
int gh_hex_digit(int c);
size_t gh_b64url_encode(const uint8_t *in, size_t n, char *out, size_t outlen);
/* Decodes unpadded base64url; returns GH_EINVAL on any other character or bad length. */
int gh_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outcap, size_t *outlen);

/* Random identifier "PREFIX_" + 2*nbytes hex characters into out. */
void gh_random_id(const char *prefix, size_t nbytes, char *out, size_t outlen);

/* Reads a whole file (at most max bytes) into a NUL-terminated malloc'd buffer. */
int gh_read_file(const char *path, size_t max, char **out, size_t *outlen, struct gh_error *err);
/* Writes data to path atomically (temp file, fsync, rename) with the given mode. */
int gh_write_file_atomic(const char *path, const void *data, size_t len, int mode, struct gh_error *err);
/* Joins dir and name into out; GH_ETOOBIG when it does not fit. */
int gh_path_join(char *out, size_t outlen, const char *dir, const char *name);
/* Removes a SQLite database file and its -wal and -shm companions (what is absent is fine). */
void gh_unlink_sqlite(const char *path);

/* Logging to stderr as JSON lines, one object per line: {"time","level","msg", fields...}.
 * Library code does not print; the server and CLI do. Set the level (and sensitivity) once at
 * start-up, before other threads log. Lines are written whole (one write per line). */
enum gh_log_level { GH_LOG_DEBUG, GH_LOG_INFO, GH_LOG_WARN, GH_LOG_ERROR };
void gh_log_set_level(enum gh_log_level l);
bool gh_log_enabled(enum gh_log_level l);
/* Statement text, parameters and backends' notices may be logged only when gh_log_sensitive()
 * is true: the level is debug AND the operator asked for it (serve --log-sensitive). Secrets
 * (tokens, keys, DSNs, secret values) are never logged, whatever this says. */
void gh_log_set_sensitive(bool on);
bool gh_log_sensitive(void);
/* A line whose msg is printf-formatted (at most 1 KiB). */
void gh_log(enum gh_log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line with fields: after msg, pairs of key and value strings ending at a NULL key; a NULL
 * value is written as null. Values longer than 4 KiB are cut (at a UTF-8 boundary) and the
 * key "truncated" is added. Keys must be plain names (they are not escaped). */
void gh_log_kv(enum gh_log_level l, const char *msg, ...) __attribute__((sentinel));

/* A string-keyed hash map owning copies of its keys; values are opaque pointers.
 * Not thread-safe: each user owns one. */
struct gh_map;
struct gh_map *gh_map_new(void (*free_value)(void *));
void gh_map_free(struct gh_map *m);
void *gh_map_get(const struct gh_map *m, const char *key, size_t keylen);
/* Inserts or replaces (freeing the old value). */
int gh_map_put(struct gh_map *m, const char *key, size_t keylen, void *value);
int gh_map_del(struct gh_map *m, const char *key, size_t keylen);
size_t gh_map_count(const struct gh_map *m);
void gh_map_clear(struct gh_map *m);
/* Calls fn for each entry; stops when fn returns non-zero. */
void gh_map_each(const struct gh_map *m, int (*fn)(const char *key, size_t keylen, void *value, void *arg), void *arg);

/* Duplicates n bytes into a NUL-terminated string; NULL on allocation failure. */
char *gh_strndup(const char *p, size_t n);
char *gh_strdup(const char *z);

#endif
