/* Unit tests for src/front/pgwire_proto: the PostgreSQL protocol 3.0 codec (server side). */
#include "unit.h"

#include <string.h>

#include "front/pgwire_proto.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))

/* ---- helpers: client packets built by hand ---- */

static void put_u32(struct gh_buf *b, uint32_t v)
{
	assert_int_equal(gh_pgw_put_i32(b, (int32_t)v), 0);
}

static void put_u16(struct gh_buf *b, uint16_t v)
{
	assert_int_equal(gh_pgw_put_i16(b, (int16_t)v), 0);
}

static void put_str(struct gh_buf *b, const char *z)
{
	assert_int_equal(gh_pgw_put_str(b, z), 0);
}

static void put_raw(struct gh_buf *b, const void *p, size_t n)
{
	assert_int_equal(gh_buf_append(b, p, n), 0);
}

/* Patches the Int32 at off with v (big-endian). */
static void patch_u32(struct gh_buf *b, size_t off, uint32_t v)
{
	uint8_t *p = (uint8_t *)b->data + off;
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A startup packet with the given code and NULL-terminated name/value list (the list's final
 * empty name is appended). */
static void startup_packet(struct gh_buf *b, uint32_t code, const char *const *kv)
{
	gh_buf_reset(b);
	put_u32(b, 0);
	put_u32(b, code);
	for (; kv && *kv; kv++)
		put_str(b, *kv);
	put_raw(b, "", 1);
	patch_u32(b, 0, (uint32_t)b->len);
}

static const char *const psql_kv[] = {"user", "alice", "database", "crm", "application_name", "psql",
				      "client_encoding", "UTF8", NULL};

/* Runs a parser on a heap copy of exactly len bytes, so ASan sees any read past the input.
 * The copy is kept in *keep (freed by the caller) because results point into it. */
static uint8_t *copy_of(const void *p, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);
	assert_non_null(c);
	if (len)
		memcpy(c, p, len);
	return c;
}

static int startup(const void *p, size_t len, size_t max, size_t *used, struct gh_pgw_startup *s, char *why,
		   uint8_t **keep)
{
	*keep = copy_of(p, len);
	why[0] = 0;
	return gh_pgw_parse_startup(*keep, len, max, used, s, why, 200);
}

static int message(const void *p, size_t len, size_t max, size_t *used, struct gh_pgw_msg *m, char *why,
		   uint8_t **keep)
{
	*keep = copy_of(p, len);
	why[0] = 0;
	return gh_pgw_parse_message(*keep, len, max, used, m, why, 200);
}

static bool str_is(struct gh_str s, const char *z)
{
	return s.p && gh_str_eq(s, z) && s.p[s.len] == '\0';
}

/* Asserts the startup packet in b is refused with rc and a reason containing want. */
static void startup_refused(const char *what, const struct gh_buf *b, int want_rc, const char *want)
{
	struct gh_pgw_startup s;
	size_t used = 99;
	char why[200];
	uint8_t *keep;
	int rc = startup(b->data, b->len, 0, &used, &s, why, &keep);
	free(keep);
	if (rc != want_rc)
		fail_msg("%s: rc %d (%s), want %d", what, rc, why, want_rc);
	if (!why[0] || (want && !strstr(why, want)))
		fail_msg("%s: reason \"%s\" lacks \"%s\"", what, why, want ? want : "");
	assert_int_equal(used, 0);
	printf("  refused %-34s %s\n", what, why);
}

/* A typed client message: type, length, body. */
static void msg_begin(struct gh_buf *b, char type, size_t *start)
{
	assert_int_equal(gh_pgw_begin(b, type, start), 0);
}

static void msg_end(struct gh_buf *b, size_t start)
{
	assert_int_equal(gh_pgw_end(b, start), 0);
}

/* Frames the single message in b and checks it spans all of b. Returns the frame; *keep holds
 * the copy it points into. */
static struct gh_pgw_msg frame(const struct gh_buf *b, uint8_t **keep)
{
	struct gh_pgw_msg m;
	size_t used = 0;
	char why[200];
	int rc = message(b->data, b->len, 0, &used, &m, why, keep);
	if (rc)
		fail_msg("frame: rc %d: %s", rc, why);
	assert_int_equal(used, b->len);
	assert_int_equal(m.len, b->len - 5);
	return m;
}

/* ---- startup ---- */

static void test_startup_psql(void **state)
{
	(void)state;
	struct gh_buf b;
	gh_buf_init(&b, 1 << 16);
	startup_packet(&b, GH_PGW_PROTOCOL_3_0, psql_kv);
	struct gh_pgw_startup s;
	size_t used = 0;
	char why[200];
	uint8_t *keep;
	int rc = startup(b.data, b.len, 0, &used, &s, why, &keep);
	assert_int_equal(rc, 0);
	assert_int_equal(used, b.len);
	assert_int_equal(s.kind, GH_PGW_STARTUP_MESSAGE);
	assert_true(str_is(s.user, "alice"));
	assert_true(str_is(s.database, "crm"));
	assert_true(str_is(s.application_name, "psql"));
	assert_true(str_is(s.client_encoding, "UTF8"));
	assert_null(s.options.p);
	assert_int_equal(s.npairs, 4);
	assert_true(str_is(s.pairs[0].name, "user"));
	assert_true(str_is(s.pairs[3].value, "UTF8"));
	free(keep);

	/* extra bytes after the packet belong to the next one */
	put_raw(&b, "Q\0\0\0\x05", 5);
	rc = startup(b.data, b.len, 0, &used, &s, why, &keep);
	assert_int_equal(rc, 0);
	assert_int_equal(used, b.len - 5);
	free(keep);

	/* options, an extension option, no database */
	static const char *const kv2[] = {"user", "bob", "options", "-c search_path=x", "_pq_.foo", "1", NULL};
	startup_packet(&b, GH_PGW_PROTOCOL_3_0, kv2);
	rc = startup(b.data, b.len, 0, &used, &s, why, &keep);
	assert_int_equal(rc, 0);
	assert_true(str_is(s.options, "-c search_path=x"));
	assert_null(s.database.p);
	assert_int_equal(s.npairs, 3);
	assert_true(str_is(s.pairs[2].name, "_pq_.foo"));
	free(keep);

	/* empty values are allowed (except user) */
	static const char *const kv3[] = {"user", "u", "database", "", NULL};
	startup_packet(&b, GH_PGW_PROTOCOL_3_0, kv3);
	rc = startup(b.data, b.len, 0, &used, &s, why, &keep);
	assert_int_equal(rc, 0);
	assert_non_null(s.database.p);
	assert_int_equal(s.database.len, 0);
	free(keep);
	gh_buf_free(&b);
	CHECKED("StartupMessage: psql's pairs, pipelined bytes left, options/_pq_./absent database, empty value");
}

static void test_startup_requests(void **state)
{
	(void)state;
	struct gh_pgw_startup s;
	size_t used = 0;
	char why[200];
	uint8_t *keep;
	static const uint8_t ssl[] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
	assert_int_equal(startup(ssl, sizeof ssl, 0, &used, &s, why, &keep), 0);
	assert_int_equal(s.kind, GH_PGW_SSL_REQUEST);
	assert_int_equal(used, 8);
	free(keep);
	static const uint8_t gss[] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30};
	assert_int_equal(startup(gss, sizeof gss, 0, &used, &s, why, &keep), 0);
	assert_int_equal(s.kind, GH_PGW_GSSENC_REQUEST);
	free(keep);
	static const uint8_t cancel[] = {0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef};
	assert_int_equal(startup(cancel, sizeof cancel, 0, &used, &s, why, &keep), 0);
	assert_int_equal(s.kind, GH_PGW_CANCEL_REQUEST);
	assert_int_equal(used, 16);
	assert_int_equal(s.cancel_pid, 12345);
	assert_int_equal(s.cancel_key, 0xdeadbeefu);
	free(keep);

	/* SSLRequest followed by the StartupMessage in the same read */
	struct gh_buf b;
	gh_buf_init(&b, 1 << 16);
	startup_packet(&b, GH_PGW_PROTOCOL_3_0, psql_kv);
	uint8_t two[256];
	memcpy(two, ssl, 8);
	memcpy(two + 8, b.data, b.len);
	assert_int_equal(startup(two, 8 + b.len, 0, &used, &s, why, &keep), 0);
	assert_int_equal(s.kind, GH_PGW_SSL_REQUEST);
	assert_int_equal(used, 8);
	free(keep);
	assert_int_equal(startup(two + 8, b.len, 0, &used, &s, why, &keep), 0);
	assert_int_equal(s.kind, GH_PGW_STARTUP_MESSAGE);
	free(keep);
	gh_buf_free(&b);
	CHECKED("SSLRequest, GSSENCRequest, CancelRequest (pid 12345, key deadbeef), SSLRequest then startup");
}

static void test_startup_refused(void **state)
{
	(void)state;
	struct gh_buf b;
	gh_buf_init(&b, 1 << 20);

	startup_packet(&b, 0x00020000, psql_kv);
	startup_refused("protocol 2.0", &b, GH_EINVAL, "2.0");
	startup_packet(&b, 0x00030002, psql_kv);
	startup_refused("protocol 3.2", &b, GH_EINVAL, "3.2");
	startup_packet(&b, (1234u << 16) | 5690, NULL);
	startup_refused("unknown 1234.5690", &b, GH_EINVAL, "1234.5690");

	static const char *const nouser[] = {"database", "crm", NULL};
	startup_packet(&b, GH_PGW_PROTOCOL_3_0, nouser);
	startup_refused("missing user", &b, GH_EINVAL, "user");
	static const char *const emptyuser[] = {"user", "", NULL};
	startup_packet(&b, GH_PGW_PROTOCOL_3_0, emptyuser);
	startup_refused("empty user", &b, GH_EINVAL, "user");
	static const char *const twice[] = {"user", "alice", "user", "root", NULL};
	startup_packet(&b, GH_PGW_PROTOCOL_3_0, twice);
	startup_refused("user given twice", &b, GH_EINVAL, "twice");

	/* no final empty name: drop the last byte and fix the length */
	startup_packet(&b, GH_PGW_PROTOCOL_3_0, psql_kv);
	b.len--;
	patch_u32(&b, 0, (uint32_t)b.len);
	startup_refused("no terminator", &b, GH_EINVAL, "not terminated");
	/* a name with no value */
	startup_packet(&b, GH_PGW_PROTOCOL_3_0, psql_kv);
	b.len--;
	put_str(&b, "orphan");
	patch_u32(&b, 0, (uint32_t)b.len);
	startup_refused("name without value", &b, GH_EINVAL, "no value");
	/* last string not NUL-terminated */
	startup_packet(&b, GH_PGW_PROTOCOL_3_0, psql_kv);
	b.len -= 2;
	patch_u32(&b, 0, (uint32_t)b.len);
	startup_refused("missing NUL in value", &b, GH_EINVAL, NULL);
	/* bytes after the terminator */
	startup_packet(&b, GH_PGW_PROTOCOL_3_0, psql_kv);
	put_raw(&b, "xy", 2);
	patch_u32(&b, 0, (uint32_t)b.len);
	startup_refused("trailing bytes", &b, GH_EINVAL, "after the terminator");
	/* no pairs at all: just the code */
	gh_buf_reset(&b);
	put_u32(&b, 8);
	put_u32(&b, GH_PGW_PROTOCOL_3_0);
	startup_refused("no terminator at all", &b, GH_EINVAL, NULL);

	/* lengths */
	gh_buf_reset(&b);
	put_u32(&b, 7);
	put_u32(&b, GH_PGW_PROTOCOL_3_0);
	startup_refused("length 7", &b, GH_EINVAL, "length");
	gh_buf_reset(&b);
	put_u32(&b, 0xffffffffu);
	startup_refused("length 0xffffffff, 4 bytes", &b, GH_ETOOBIG, "exceeds");
	gh_buf_reset(&b);
	put_u32(&b, GH_PGW_MAX_STARTUP + 1);
	startup_refused("length 10001, 4 bytes", &b, GH_ETOOBIG, "10000");
	gh_buf_reset(&b);
	put_u32(&b, 12);
	put_u32(&b, 80877103);
	put_u32(&b, 0);
	startup_refused("SSLRequest of 12 bytes", &b, GH_EINVAL, "SSL");
	gh_buf_reset(&b);
	put_u32(&b, 12);
	put_u32(&b, 80877102);
	put_u32(&b, 1);
	startup_refused("CancelRequest of 12 bytes", &b, GH_EINVAL, "cancel");
	gh_buf_reset(&b);
	put_u32(&b, 20);
	put_u32(&b, 80877102);
	startup_refused("CancelRequest of 20 bytes", &b, GH_EINVAL, "cancel");

	/* a caller's smaller max */
	startup_packet(&b, GH_PGW_PROTOCOL_3_0, psql_kv);
	{
		struct gh_pgw_startup s;
		size_t used;
		char why[200];
		uint8_t *keep;
		assert_int_equal(startup(b.data, 4, 20, &used, &s, why, &keep), GH_ETOOBIG);
		free(keep);
	}

	/* 64 pairs pass, 65 are too many */
	for (int n = 64; n <= 65; n++) {
		gh_buf_reset(&b);
		put_u32(&b, 0);
		put_u32(&b, GH_PGW_PROTOCOL_3_0);
		put_str(&b, "user");
		put_str(&b, "u");
		for (int i = 1; i < n; i++) {
			char name[16];
			snprintf(name, sizeof name, "p%d", i);
			put_str(&b, name);
			put_str(&b, "v");
		}
		put_raw(&b, "", 1);
		patch_u32(&b, 0, (uint32_t)b.len);
		if (n == 64) {
			struct gh_pgw_startup s;
			size_t used;
			char why[200];
			uint8_t *keep;
			assert_int_equal(startup(b.data, b.len, 0, &used, &s, why, &keep), 0);
			assert_int_equal(s.npairs, 64);
			free(keep);
		} else {
			startup_refused("65 pairs", &b, GH_ETOOBIG, "64");
		}
	}
	gh_buf_free(&b);
	CHECKED("startup refusals: versions, codes, user, NULs, trailing bytes, lengths, pair limit");
}

/* Every strict prefix of a complete packet is GH_EAGAIN with a need > len and <= its size. */
static void every_prefix(const char *what, const uint8_t *p, size_t n, bool is_startup)
{
	for (size_t len = 0; len < n; len++) {
		size_t used = 0;
		char why[200];
		uint8_t *keep;
		int rc;
		if (is_startup) {
			struct gh_pgw_startup s;
			rc = startup(p, len, 0, &used, &s, why, &keep);
		} else {
			struct gh_pgw_msg m;
			rc = message(p, len, 0, &used, &m, why, &keep);
		}
		free(keep);
		if (rc != GH_EAGAIN)
			fail_msg("%s: prefix %zu of %zu: rc %d (%s)", what, len, n, rc, why);
		if (used <= len || used > n)
			fail_msg("%s: prefix %zu of %zu: need %zu", what, len, n, used);
	}
}

static void test_startup_partial(void **state)
{
	(void)state;
	struct gh_buf b;
	gh_buf_init(&b, 1 << 16);
	startup_packet(&b, GH_PGW_PROTOCOL_3_0, psql_kv);
	every_prefix("psql startup", (const uint8_t *)b.data, b.len, true);
	static const uint8_t cancel[] = {0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef};
	every_prefix("cancel", cancel, sizeof cancel, true);
	static const uint8_t ssl[] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
	every_prefix("ssl", ssl, sizeof ssl, true);
	/* once the length is known the need is the whole packet */
	struct gh_pgw_startup s;
	size_t used;
	char why[200];
	uint8_t *keep;
	assert_int_equal(startup(b.data, 9, 0, &used, &s, why, &keep), GH_EAGAIN);
	assert_int_equal(used, b.len);
	free(keep);
	assert_int_equal(startup(b.data, 2, 0, &used, &s, why, &keep), GH_EAGAIN);
	assert_int_equal(used, 4);
	free(keep);
	gh_buf_free(&b);
	CHECKED("every prefix of startup/cancel/SSL packets needs more, need in (len, size]");
}

/* ---- typed messages ---- */

/* The extended-query sequence psql/JDBC send: Parse, Bind, Describe, Execute, Sync. */
static void extended_sequence(struct gh_buf *b)
{
	size_t st;
	msg_begin(b, 'P', &st);
	put_str(b, "s1");
	put_str(b, "SELECT $1::int, $2");
	put_u16(b, 2);
	put_u32(b, 23);
	put_u32(b, 0);
	msg_end(b, st);
	msg_begin(b, 'B', &st);
	put_str(b, "p1");
	put_str(b, "s1");
	put_u16(b, 1);
	put_u16(b, 0);
	put_u16(b, 2);
	put_u32(b, 2);
	put_raw(b, "42", 2);
	put_u32(b, 0xffffffffu);
	put_u16(b, 1);
	put_u16(b, 1);
	msg_end(b, st);
	msg_begin(b, 'D', &st);
	put_raw(b, "P", 1);
	put_str(b, "p1");
	msg_end(b, st);
	msg_begin(b, 'E', &st);
	put_str(b, "p1");
	put_u32(b, 0);
	msg_end(b, st);
	msg_begin(b, 'S', &st);
	msg_end(b, st);
}

static void test_query_password(void **state)
{
	(void)state;
	struct gh_buf b;
	gh_buf_init(&b, 1 << 16);
	size_t st;
	uint8_t *keep;
	char why[200];
	msg_begin(&b, 'Q', &st);
	put_str(&b, "SELECT 1;");
	msg_end(&b, st);
	/* byte-for-byte what the documentation says: 'Q', Int32 length counting itself, String */
	assert_memory_equal(b.data, "Q\0\0\0\x0eSELECT 1;\0", 15);
	struct gh_pgw_msg m = frame(&b, &keep);
	assert_int_equal(m.type, GH_PGW_QUERY);
	struct gh_str sql;
	assert_int_equal(gh_pgw_decode_query(&m, &sql, why, sizeof why), 0);
	assert_true(str_is(sql, "SELECT 1;"));
	/* the wrong decoder refuses */
	struct gh_str pw;
	assert_int_equal(gh_pgw_decode_password(&m, &pw, why, sizeof why), GH_EINVAL);
	free(keep);

	gh_buf_reset(&b);
	msg_begin(&b, 'Q', &st);
	put_str(&b, "");
	msg_end(&b, st);
	m = frame(&b, &keep);
	assert_int_equal(gh_pgw_decode_query(&m, &sql, why, sizeof why), 0);
	assert_int_equal(sql.len, 0);
	free(keep);

	gh_buf_reset(&b);
	msg_begin(&b, 'p', &st);
	put_str(&b, "s3cr3t");
	msg_end(&b, st);
	m = frame(&b, &keep);
	assert_int_equal(m.type, GH_PGW_PASSWORD);
	assert_int_equal(gh_pgw_decode_password(&m, &pw, why, sizeof why), 0);
	assert_true(str_is(pw, "s3cr3t"));
	free(keep);

	/* missing NUL; trailing bytes; the password never appears in the reason */
	gh_buf_reset(&b);
	msg_begin(&b, 'p', &st);
	put_raw(&b, "s3cr3t", 6);
	msg_end(&b, st);
	m = frame(&b, &keep);
	assert_int_equal(gh_pgw_decode_password(&m, &pw, why, sizeof why), GH_EINVAL);
	assert_null(strstr(why, "s3cr3t"));
	printf("  refused %-34s %s\n", "password without NUL", why);
	free(keep);
	gh_buf_reset(&b);
	msg_begin(&b, 'Q', &st);
	put_str(&b, "SELECT 1");
	put_raw(&b, "zz", 2);
	msg_end(&b, st);
	m = frame(&b, &keep);
	assert_int_equal(gh_pgw_decode_query(&m, &sql, why, sizeof why), GH_EINVAL);
	assert_non_null(strstr(why, "trailing"));
	printf("  refused %-34s %s\n", "query with trailing bytes", why);
	free(keep);
	gh_buf_reset(&b);
	msg_begin(&b, 'Q', &st);
	msg_end(&b, st);
	m = frame(&b, &keep);
	assert_int_equal(gh_pgw_decode_query(&m, &sql, why, sizeof why), GH_EINVAL);
	free(keep);
	gh_buf_free(&b);
	CHECKED("Query and PasswordMessage round trip, exact Query bytes, missing NUL, trailing bytes, empty body");
}

static void test_extended_round_trip(void **state)
{
	(void)state;
	struct gh_buf b;
	gh_buf_init(&b, 1 << 16);
	extended_sequence(&b);
	uint8_t *keep = copy_of(b.data, b.len);
	size_t off = 0, used;
	char why[200];
	struct gh_pgw_msg m;

	assert_int_equal(gh_pgw_parse_message(keep + off, b.len - off, 0, &used, &m, why, sizeof why), 0);
	off += used;
	struct gh_pgw_parse p;
	uint32_t types[4];
	assert_int_equal(gh_pgw_decode_parse(&m, &p, types, 4, why, sizeof why), 0);
	assert_true(str_is(p.name, "s1"));
	assert_true(str_is(p.query, "SELECT $1::int, $2"));
	assert_int_equal(p.ntypes, 2);
	assert_ptr_equal(p.types, types);
	assert_int_equal(types[0], 23);
	assert_int_equal(types[1], 0);
	/* capacity too small */
	assert_int_equal(gh_pgw_decode_parse(&m, &p, types, 1, why, sizeof why), GH_ETOOBIG);

	assert_int_equal(gh_pgw_parse_message(keep + off, b.len - off, 0, &used, &m, why, sizeof why), 0);
	off += used;
	struct gh_pgw_bind bd;
	struct gh_pgw_value vals[4];
	assert_int_equal(gh_pgw_decode_bind(&m, &bd, vals, 4, why, sizeof why), 0);
	assert_true(str_is(bd.portal, "p1"));
	assert_true(str_is(bd.statement, "s1"));
	assert_int_equal(bd.nparams, 2);
	assert_int_equal(bd.params[0].len, 2);
	assert_memory_equal(bd.params[0].p, "42", 2);
	assert_int_equal(bd.params[1].len, -1);
	assert_null(bd.params[1].p);
	assert_int_equal(bd.param_formats.n, 1);
	assert_int_equal(gh_pgw_format(&bd.param_formats, 0), 0);
	assert_int_equal(gh_pgw_format(&bd.param_formats, 1), 0);
	assert_int_equal(bd.result_formats.n, 1);
	assert_int_equal(gh_pgw_format(&bd.result_formats, 5), 1);
	assert_int_equal(gh_pgw_decode_bind(&m, &bd, vals, 1, why, sizeof why), GH_ETOOBIG);
	printf("  refused %-34s %s\n", "bind over capacity", why);

	assert_int_equal(gh_pgw_parse_message(keep + off, b.len - off, 0, &used, &m, why, sizeof why), 0);
	off += used;
	struct gh_pgw_target t;
	assert_int_equal(gh_pgw_decode_describe(&m, &t, why, sizeof why), 0);
	assert_int_equal(t.kind, GH_PGW_OBJ_PORTAL);
	assert_true(str_is(t.name, "p1"));
	assert_int_equal(gh_pgw_decode_close(&m, &t, why, sizeof why), GH_EINVAL);

	assert_int_equal(gh_pgw_parse_message(keep + off, b.len - off, 0, &used, &m, why, sizeof why), 0);
	off += used;
	struct gh_pgw_execute e;
	assert_int_equal(gh_pgw_decode_execute(&m, &e, why, sizeof why), 0);
	assert_true(str_is(e.portal, "p1"));
	assert_int_equal(e.max_rows, 0);

	assert_int_equal(gh_pgw_parse_message(keep + off, b.len - off, 0, &used, &m, why, sizeof why), 0);
	off += used;
	assert_int_equal(m.type, GH_PGW_SYNC);
	assert_int_equal(m.len, 0);
	assert_int_equal(off, b.len);
	free(keep);

	/* every prefix of every message needs more */
	size_t s0 = 0;
	while (s0 < b.len) {
		uint8_t *c = copy_of(b.data + s0, b.len - s0);
		assert_int_equal(gh_pgw_parse_message(c, b.len - s0, 0, &used, &m, why, sizeof why), 0);
		free(c);
		char what[32];
		snprintf(what, sizeof what, "'%c' message", b.data[s0]);
		every_prefix(what, (const uint8_t *)b.data + s0, used, false);
		s0 += used;
	}
	gh_buf_free(&b);
	CHECKED("Parse/Bind/Describe/Execute/Sync stream: fields, NULL param, format rule, capacity, prefixes");
}

static void test_other_messages(void **state)
{
	(void)state;
	struct gh_buf b;
	gh_buf_init(&b, 1 << 16);
	size_t st;
	uint8_t *keep;
	char why[200];
	struct gh_pgw_msg m;
	struct gh_pgw_target t;

	msg_begin(&b, 'C', &st);
	put_raw(&b, "S", 1);
	put_str(&b, "");
	msg_end(&b, st);
	m = frame(&b, &keep);
	assert_int_equal(m.type, GH_PGW_CLOSE);
	assert_int_equal(gh_pgw_decode_close(&m, &t, why, sizeof why), 0);
	assert_int_equal(t.kind, GH_PGW_OBJ_STATEMENT);
	assert_int_equal(t.name.len, 0);
	free(keep);

	gh_buf_reset(&b);
	msg_begin(&b, 'D', &st);
	put_raw(&b, "X", 1);
	put_str(&b, "p");
	msg_end(&b, st);
	m = frame(&b, &keep);
	assert_int_equal(gh_pgw_decode_describe(&m, &t, why, sizeof why), GH_EINVAL);
	printf("  refused %-34s %s\n", "describe kind X", why);
	free(keep);
	gh_buf_reset(&b);
	msg_begin(&b, 'D', &st);
	msg_end(&b, st);
	m = frame(&b, &keep);
	assert_int_equal(gh_pgw_decode_describe(&m, &t, why, sizeof why), GH_EINVAL);
	free(keep);
	gh_buf_reset(&b);
	msg_begin(&b, 'D', &st);
	put_raw(&b, "Sname", 5);
	msg_end(&b, st);
	m = frame(&b, &keep);
	assert_int_equal(gh_pgw_decode_describe(&m, &t, why, sizeof why), GH_EINVAL);
	free(keep);

	/* Execute with a row limit; a negative one is passed through (PostgreSQL: no limit) */
	gh_buf_reset(&b);
	msg_begin(&b, 'E', &st);
	put_str(&b, "");
	put_u32(&b, 0xffffffffu);
	msg_end(&b, st);
	m = frame(&b, &keep);
	struct gh_pgw_execute e;
	assert_int_equal(gh_pgw_decode_execute(&m, &e, why, sizeof why), 0);
	assert_int_equal(e.max_rows, -1);
	free(keep);
	gh_buf_reset(&b);
	msg_begin(&b, 'E', &st);
	put_str(&b, "");
	put_u16(&b, 7);
	msg_end(&b, st);
	m = frame(&b, &keep);
	assert_int_equal(gh_pgw_decode_execute(&m, &e, why, sizeof why), GH_EINVAL);
	printf("  refused %-34s %s\n", "execute with short row limit", why);
	free(keep);

	/* body-less and recognised-only types */
	static const char empties[] = {'S', 'H', 'X', 'c'};
	for (size_t i = 0; i < sizeof empties; i++) {
		gh_buf_reset(&b);
		msg_begin(&b, empties[i], &st);
		msg_end(&b, st);
		m = frame(&b, &keep);
		assert_int_equal((char)m.type, empties[i]);
		free(keep);
	}
	static const char others[] = {'d', 'f', 'F'};
	for (size_t i = 0; i < sizeof others; i++) {
		gh_buf_reset(&b);
		msg_begin(&b, others[i], &st);
		put_str(&b, "x");
		msg_end(&b, st);
		m = frame(&b, &keep);
		assert_int_equal((char)m.type, others[i]);
		assert_int_equal(m.len, 2);
		free(keep);
	}
	gh_buf_free(&b);
	CHECKED("Close/Describe kinds, Execute limits, Sync/Flush/Terminate/CopyDone/CopyData/CopyFail/FunctionCall");
}

static void message_refused(const char *what, const void *p, size_t n, size_t max, int want_rc, const char *want)
{
	struct gh_pgw_msg m;
	size_t used = 99;
	char why[200];
	uint8_t *keep;
	int rc = message(p, n, max, &used, &m, why, &keep);
	free(keep);
	if (rc != want_rc)
		fail_msg("%s: rc %d (%s), want %d", what, rc, why, want_rc);
	if (!why[0] || (want && !strstr(why, want)))
		fail_msg("%s: reason \"%s\" lacks \"%s\"", what, why, want ? want : "");
	assert_int_equal(used, 0);
	printf("  refused %-34s %s\n", what, why);
}

static void test_framing_refused(void **state)
{
	(void)state;
	message_refused("unknown type 'Z'", "Z", 1, 0, GH_EINVAL, "type");
	message_refused("NUL type byte", "\0\0\0\0\4", 5, 0, GH_EINVAL, "type");
	message_refused("length 3", "Q\0\0\0\3", 5, 0, GH_EINVAL, "length");
	message_refused("length 0", "Q\0\0\0\0", 5, 0, GH_EINVAL, "length");
	message_refused("length 0x80000000 (negative)", "Q\x80\0\0\0", 5, 0, GH_ETOOBIG, "exceeds");
	message_refused("length 1 MiB + 1", "Q\0\x10\0\0", 5, 0, GH_ETOOBIG, "exceeds");
	message_refused("length over caller max", "Q\0\0\0\x40", 5, 64, GH_ETOOBIG, "64");
	message_refused("Execute of 20000 bytes", "E\0\0\x4e\x20", 5, 0, GH_ETOOBIG, "10000");
	message_refused("Sync with a body", "S\0\0\0\5x", 6, 0, GH_EINVAL, "empty");
	message_refused("Terminate with a body (header only)", "X\0\0\0\x08", 5, 0, GH_EINVAL, "empty");

	/* exactly at the limit is fine: 1 + length == max */
	struct gh_pgw_msg m;
	size_t used;
	char why[200];
	uint8_t *keep;
	assert_int_equal(message("Q\0\0\0\x3f", 5, 64, &used, &m, why, &keep), GH_EAGAIN);
	assert_int_equal(used, 64);
	free(keep);
	/* header incomplete: need 5 */
	assert_int_equal(message("Q\0", 2, 0, &used, &m, why, &keep), GH_EAGAIN);
	assert_int_equal(used, 5);
	free(keep);
	CHECKED("framing refusals: unknown type, length < 4, oversized from the header alone, non-empty Sync");
}

/* Builds a Bind body from raw parts and expects the decoder's verdict. */
static void bind_case(const char *what, const void *body, size_t n, int want_rc, const char *want)
{
	struct gh_buf b;
	gh_buf_init(&b, 1 << 16);
	size_t st;
	msg_begin(&b, 'B', &st);
	put_raw(&b, body, n);
	msg_end(&b, st);
	uint8_t *keep;
	struct gh_pgw_msg m = frame(&b, &keep);
	struct gh_pgw_bind bd;
	struct gh_pgw_value vals[8];
	char why[200] = "";
	int rc = gh_pgw_decode_bind(&m, &bd, vals, 8, why, sizeof why);
	free(keep);
	gh_buf_free(&b);
	if (rc != want_rc)
		fail_msg("%s: rc %d (%s), want %d", what, rc, why, want_rc);
	if (rc && (!why[0] || (want && !strstr(why, want))))
		fail_msg("%s: reason \"%s\" lacks \"%s\"", what, why, want ? want : "");
	if (rc)
		printf("  refused %-34s %s\n", what, why);
	else
		assert_int_equal(bd.params, vals);
}

#define B(s) s, sizeof(s) - 1

static void test_bind_refused(void **state)
{
	(void)state;
	bind_case("minimal bind", B("\0\0" "\0\0" "\0\0" "\0\0"), 0, NULL);
	bind_case("missing NUL in portal", B("portal"), GH_EINVAL, "portal");
	bind_case("missing NUL in statement", B("\0stmt"), GH_EINVAL, "statement");
	bind_case("no format count", B("\0\0"), GH_EINVAL, "format");
	bind_case("format count 0xffff", B("\0\0" "\xff\xff" "\0\0"), GH_EINVAL, "65535");
	bind_case("format code 2", B("\0\0" "\0\1\0\2" "\0\0" "\0\0"), GH_EINVAL, "format code");
	bind_case("2 formats, 3 params", B("\0\0" "\0\2\0\0\0\0" "\0\3" "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" "\0\0"),
		  GH_EINVAL, "2 parameter formats but 3");
	bind_case("2 formats, 2 params", B("\0\0" "\0\2\0\0\0\1" "\0\2" "\xff\xff\xff\xff\xff\xff\xff\xff" "\0\0"), 0, NULL);
	bind_case("param count 0xffff (-1)", B("\0\0" "\0\0" "\xff\xff" "\0\0"), GH_EINVAL, "65535");
	bind_case("param count 2, one given", B("\0\0" "\0\0" "\0\2" "\0\0\0\0" "\0\0"), GH_EINVAL, "parameter");
	bind_case("param length -2", B("\0\0" "\0\0" "\0\1" "\xff\xff\xff\xfe" "\0\0"), GH_EINVAL, "-2");
	bind_case("param length past end", B("\0\0" "\0\0" "\0\1" "\0\0\0\x09" "abc\0\0"), GH_EINVAL, "bytes but");
	bind_case("param length 0x7fffffff", B("\0\0" "\0\0" "\0\1" "\x7f\xff\xff\xff" "\0\0"), GH_EINVAL, NULL);
	bind_case("no result format count", B("\0\0" "\0\0" "\0\0"), GH_EINVAL, "result");
	bind_case("result formats short", B("\0\0" "\0\0" "\0\0" "\0\2\0\0"), GH_EINVAL, "result");
	bind_case("result format 0xffff", B("\0\0" "\0\0" "\0\0" "\0\1\xff\xff"), GH_EINVAL, "-1");
	bind_case("trailing byte", B("\0\0" "\0\0" "\0\0" "\0\0" "!"), GH_EINVAL, "trailing");
	bind_case("9 params, capacity 8", B("\0\0" "\0\0" "\0\x09" "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
					   "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
					   "\xff\xff\xff\xff" "\0\0"),
		  GH_ETOOBIG, "at most 8");
	CHECKED("Bind refusals: NULs, format counts/codes, negative counts and lengths, overruns, trailing, capacity");
}

static void parse_case(const char *what, const void *body, size_t n, int want_rc, const char *want)
{
	struct gh_buf b;
	gh_buf_init(&b, 1 << 16);
	size_t st;
	msg_begin(&b, 'P', &st);
	put_raw(&b, body, n);
	msg_end(&b, st);
	uint8_t *keep;
	struct gh_pgw_msg m = frame(&b, &keep);
	struct gh_pgw_parse p;
	uint32_t types[4];
	char why[200] = "";
	int rc = gh_pgw_decode_parse(&m, &p, types, 4, why, sizeof why);
	free(keep);
	gh_buf_free(&b);
	if (rc != want_rc)
		fail_msg("%s: rc %d (%s), want %d", what, rc, why, want_rc);
	if (rc && (!why[0] || (want && !strstr(why, want))))
		fail_msg("%s: reason \"%s\" lacks \"%s\"", what, why, want ? want : "");
	if (rc)
		printf("  refused %-34s %s\n", what, why);
}

static void test_parse_refused(void **state)
{
	(void)state;
	parse_case("minimal parse", B("\0SELECT 1\0\0\0"), 0, NULL);
	parse_case("missing NUL in name", B("s1"), GH_EINVAL, "statement name");
	parse_case("missing NUL in query", B("s1\0SELECT"), GH_EINVAL, "query");
	parse_case("no type count", B("\0q\0"), GH_EINVAL, "count");
	parse_case("count 3, 2 types", B("\0q\0\0\3\0\0\0\x17\0\0\0\x17"), GH_EINVAL, "3 parameter types");
	parse_case("count 0xffff (-1)", B("\0q\0\xff\xff\0\0\0\0"), GH_EINVAL, "65535");
	parse_case("count 1, 2 types", B("\0q\0\0\1\0\0\0\x17\0\0\0\x17"), GH_EINVAL, "trailing");
	parse_case("5 types, capacity 4", B("\0q\0\0\5\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"), GH_ETOOBIG, "at most 4");
	CHECKED("Parse refusals: NULs, counts against bytes, unsigned 0xffff, trailing, capacity");
}

/* ---- builders ---- */

static void expect_bytes(const char *what, struct gh_buf *b, const void *want, size_t n)
{
	if (b->len != n || memcmp(b->data, want, n) != 0) {
		printf("  %s: got %zu bytes:", what, b->len);
		for (size_t i = 0; i < b->len; i++)
			printf(" %02x", (uint8_t)b->data[i]);
		printf("\n");
		fail_msg("%s: bytes differ from the documented format", what);
	}
	assert_int_equal(b->data[b->len], '\0'); /* gh_buf stays NUL-terminated */
	gh_buf_reset(b);
}

static void test_builders_exact(void **state)
{
	(void)state;
	struct gh_buf b;
	gh_buf_init(&b, 1 << 16);

	assert_int_equal(gh_pgw_build_ssl_answer(&b, false), 0);
	expect_bytes("ssl N", &b, "N", 1);
	assert_int_equal(gh_pgw_build_ssl_answer(&b, true), 0);
	expect_bytes("ssl S", &b, "S", 1);
	assert_int_equal(gh_pgw_build_auth_ok(&b), 0);
	expect_bytes("AuthenticationOk", &b, "R\0\0\0\x08\0\0\0\0", 9);
	assert_int_equal(gh_pgw_build_auth_cleartext(&b), 0);
	expect_bytes("AuthenticationCleartextPassword", &b, "R\0\0\0\x08\0\0\0\x03", 9);
	assert_int_equal(gh_pgw_build_parameter_status(&b, "client_encoding", "UTF8"), 0);
	expect_bytes("ParameterStatus", &b, "S\0\0\0\x19" "client_encoding\0UTF8\0", 26);
	assert_int_equal(gh_pgw_build_backend_key_data(&b, 12345, 0xdeadbeefu), 0);
	expect_bytes("BackendKeyData", &b, "K\0\0\0\x0c\0\0\x30\x39\xde\xad\xbe\xef", 13);
	assert_int_equal(gh_pgw_build_ready_for_query(&b, 'I'), 0);
	expect_bytes("ReadyForQuery I", &b, "Z\0\0\0\x05I", 6);
	assert_int_equal(gh_pgw_build_ready_for_query(&b, 'E'), 0);
	expect_bytes("ReadyForQuery E", &b, "Z\0\0\0\x05" "E", 6);
	assert_int_equal(gh_pgw_build_ready_for_query(&b, 'X'), GH_EINVAL);
	assert_int_equal(b.len, 0);

	struct gh_pgw_field f[] = {{"id", 16384, 1, 23, 4, -1, 0}, {"?column?", 0, 0, 25, -1, -1, 0}};
	assert_int_equal(gh_pgw_build_row_description(&b, f, 2), 0);
	expect_bytes("RowDescription", &b,
		     "T\0\0\0\x36\0\x02"
		     "id\0" "\0\0\x40\0" "\0\x01" "\0\0\0\x17" "\0\x04" "\xff\xff\xff\xff" "\0\0"
		     "?column?\0" "\0\0\0\0" "\0\0" "\0\0\0\x19" "\xff\xff" "\xff\xff\xff\xff" "\0\0",
		     55);
	struct gh_pgw_field badf = {"x", 0, 0, 25, -1, -1, 2};
	assert_int_equal(gh_pgw_build_row_description(&b, &badf, 1), GH_EINVAL);

	struct gh_pgw_value v[] = {{"1", 1}, {NULL, -1}, {"", 0}};
	assert_int_equal(gh_pgw_build_data_row(&b, v, 3), 0);
	expect_bytes("DataRow", &b, "D\0\0\0\x13\0\x03" "\0\0\0\x01" "1" "\xff\xff\xff\xff" "\0\0\0\0", 20);
	struct gh_pgw_value badv = {"x", -2};
	assert_int_equal(gh_pgw_build_data_row(&b, &badv, 1), GH_EINVAL);

	assert_int_equal(gh_pgw_build_command_complete(&b, "SELECT 1"), 0);
	expect_bytes("CommandComplete", &b, "C\0\0\0\x0dSELECT 1\0", 14);
	uint32_t oids[] = {23, 25};
	assert_int_equal(gh_pgw_build_parameter_description(&b, oids, 2), 0);
	expect_bytes("ParameterDescription", &b, "t\0\0\0\x0e\0\x02\0\0\0\x17\0\0\0\x19", 15);

	assert_int_equal(gh_pgw_build_empty_query(&b), 0);
	expect_bytes("EmptyQueryResponse", &b, "I\0\0\0\x04", 5);
	assert_int_equal(gh_pgw_build_parse_complete(&b), 0);
	expect_bytes("ParseComplete", &b, "1\0\0\0\x04", 5);
	assert_int_equal(gh_pgw_build_bind_complete(&b), 0);
	expect_bytes("BindComplete", &b, "2\0\0\0\x04", 5);
	assert_int_equal(gh_pgw_build_close_complete(&b), 0);
	expect_bytes("CloseComplete", &b, "3\0\0\0\x04", 5);
	assert_int_equal(gh_pgw_build_no_data(&b), 0);
	expect_bytes("NoData", &b, "n\0\0\0\x04", 5);
	assert_int_equal(gh_pgw_build_portal_suspended(&b), 0);
	expect_bytes("PortalSuspended", &b, "s\0\0\0\x04", 5);

	struct gh_pgw_notice n = {"ERROR", "42501", "permission denied", NULL, "ask an admin", 8};
	assert_int_equal(gh_pgw_build_error(&b, &n), 0);
	expect_bytes("ErrorResponse", &b,
		     "E\0\0\0\x3e" "SERROR\0" "VERROR\0" "C42501\0" "Mpermission denied\0" "Hask an admin\0" "P8\0" "\0",
		     63);
	struct gh_pgw_notice w = {"WARNING", "01000", "careful", "a detail", NULL, 0};
	assert_int_equal(gh_pgw_build_notice(&b, &w), 0);
	expect_bytes("NoticeResponse", &b, "N\0\0\0\x31" "SWARNING\0" "VWARNING\0" "C01000\0" "Mcareful\0" "Da detail\0" "\0",
		     50);
	CHECKED("builders: exact bytes of SSL answer, Authentication*, ParameterStatus, BackendKeyData, ReadyForQuery,"
		" RowDescription, DataRow, CommandComplete, ParameterDescription, empty messages, Error/Notice");

	/* refusals of bad arguments leave b untouched */
	put_raw(&b, "keep", 4);
	struct gh_pgw_notice bad[] = {
		{"NOTICE", "42501", "m", NULL, NULL, 0}, /* notice severity in an error */
		{"ERROR", "4250", "m", NULL, NULL, 0},
		{"ERROR", "42a01", "m", NULL, NULL, 0},
		{"ERROR", "42501", NULL, NULL, NULL, 0},
		{NULL, "42501", "m", NULL, NULL, 0},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(gh_pgw_build_error(&b, &bad[i]), GH_EINVAL);
	struct gh_pgw_notice e = {"ERROR", "42501", "m", NULL, NULL, 0};
	assert_int_equal(gh_pgw_build_notice(&b, &e), GH_EINVAL);
	assert_int_equal(gh_pgw_build_command_complete(&b, NULL), GH_EINVAL);
	assert_int_equal(b.len, 4);
	gh_buf_free(&b);
	CHECKED("builders refuse bad severities, SQLSTATEs, NULL strings, format codes, lengths < -1");
}

static void test_builders_ceiling(void **state)
{
	(void)state;
	/* a buffer whose ceiling falls inside each message: the failing append leaves no half message */
	for (size_t max = 0; max < 60; max++) {
		struct gh_buf b;
		gh_buf_init(&b, max);
		struct gh_pgw_notice n = {"ERROR", "42501", "permission denied", NULL, "ask an admin", 8};
		int rc = gh_pgw_build_error(&b, &n);
		assert_int_equal(rc, GH_ETOOBIG);
		assert_int_equal(b.len, 0);
		struct gh_pgw_field f = {"id", 16384, 1, 23, 4, -1, 0};
		assert_int_equal(gh_pgw_build_row_description(&b, &f, 1), max >= 28 ? 0 : GH_ETOOBIG);
		if (max < 28)
			assert_int_equal(b.len, 0);
		gh_buf_free(&b);
	}
	/* a message appended after existing bytes is rolled back to them */
	struct gh_buf b;
	gh_buf_init(&b, 12);
	put_raw(&b, "abcdefgh", 8);
	assert_int_equal(gh_pgw_build_command_complete(&b, "SELECT 1"), GH_ETOOBIG);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.data, "abcdefgh");
	gh_buf_free(&b);
	CHECKED("builders at every ceiling: GH_ETOOBIG and the buffer exactly as before");
}

static void test_format_rule(void **state)
{
	(void)state;
	static const uint8_t codes[] = {0, 1, 0, 0, 0, 1};
	struct gh_pgw_formats none = {0, NULL}, one = {1, codes + 4}, three = {3, codes};
	assert_int_equal(gh_pgw_format(&none, 7), 0);
	assert_int_equal(gh_pgw_format(&one, 0), 1);
	assert_int_equal(gh_pgw_format(&one, 99), 1);
	assert_int_equal(gh_pgw_format(&three, 0), 1);
	assert_int_equal(gh_pgw_format(&three, 1), 0);
	assert_int_equal(gh_pgw_format(&three, 2), 1);
	assert_int_equal(gh_pgw_format(&three, 3), -1);
	CHECKED("format codes: none = text, one = all, n = each, past n = -1");
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_startup_psql),
	cmocka_unit_test(test_startup_requests),
	cmocka_unit_test(test_startup_refused),
	cmocka_unit_test(test_startup_partial),
	cmocka_unit_test(test_query_password),
	cmocka_unit_test(test_extended_round_trip),
	cmocka_unit_test(test_other_messages),
	cmocka_unit_test(test_framing_refused),
	cmocka_unit_test(test_bind_refused),
	cmocka_unit_test(test_parse_refused),
	cmocka_unit_test(test_builders_exact),
	cmocka_unit_test(test_builders_ceiling),
	cmocka_unit_test(test_format_rule),
};

GH_UNIT_MAIN("test_pgwire", tests)
