/* fuzz: the PostgreSQL protocol codec (front/pgwire_proto). The input is what a client sends on
 * a connection: first the startup packet(s) (an SSLRequest or GSSENCRequest may come before the
 * StartupMessage), then a stream of typed messages, each decoded by its type's decoder. When the
 * startup packet is refused, the whole input is read as a message stream instead, so framing
 * and decoders are fuzzed directly too. Every result is checked against what the header
 * promises (pointers inside the packet, strings NUL-terminated there, counts within
 * capacity), and every decoded message is encoded again and must give back the same bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front/pgwire_proto.h"

#define MAX_MESSAGES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what)
{
	fprintf(stderr, "fuzz_pgwire: %s\n", what);
	abort();
}

/* Aborts unless s lies within [lo, hi) and, when asked, is NUL-terminated there. */
static void inside(struct gh_str s, const uint8_t *lo, const uint8_t *hi, bool nul, const char *what)
{
	const uint8_t *p = (const uint8_t *)s.p;
	if (!p || p < lo || p > hi || s.len > (size_t)(hi - p) || (nul && (s.len == (size_t)(hi - p) || p[s.len] != 0)))
		die(what);
	if (nul && memchr(p, 0, s.len))
		die(what);
}

/* A refusal says why, and only with the documented codes. */
static void check_refusal(int rc, size_t used, const char *why, const char *what)
{
	if (rc == 0 || rc == GH_EAGAIN)
		return;
	if ((rc != GH_EINVAL && rc != GH_ETOOBIG) || !why[0] || used != 0)
		die(what);
}

static struct gh_buf re; /* re-encoding scratch, reused across runs */

/* Re-encoding must give back the message's bytes exactly. */
static void same(const struct gh_pgw_msg *m, const char *what)
{
	if (re.len != 5 + m->len || memcmp(re.data + 5, m->body, m->len) != 0 || (uint8_t)re.data[0] != m->type)
		die(what);
}

static void put_formats(const struct gh_pgw_formats *f)
{
	gh_pgw_put_i16(&re, (int16_t)(uint16_t)f->n);
	for (size_t i = 0; i < f->n; i++) {
		int c = gh_pgw_format(f, i);
		if (c != 0 && c != 1)
			die("format code not 0/1");
		gh_pgw_put_i16(&re, (int16_t)c);
	}
}

static void decode(const struct gh_pgw_msg *m, size_t cap)
{
	static struct gh_pgw_value values[GH_PGW_MAX_PARAMS];
	static uint32_t types[GH_PGW_MAX_PARAMS];
	const uint8_t *lo = m->body, *hi = m->body + m->len;
	char why[256];
	size_t st;
	int rc = 0;
	why[0] = 0;
	gh_buf_reset(&re);
	switch (m->type) {
	case GH_PGW_QUERY:
	case GH_PGW_PASSWORD: {
		struct gh_str s;
		rc = m->type == GH_PGW_QUERY ? gh_pgw_decode_query(m, &s, why, sizeof why)
					     : gh_pgw_decode_password(m, &s, why, sizeof why);
		if (rc == 0) {
			inside(s, lo, hi, true, "query/password string");
			gh_pgw_begin(&re, (char)m->type, &st);
			gh_pgw_put_str(&re, s.p);
			gh_pgw_end(&re, st);
			same(m, "query/password re-encoding");
		}
		break;
	}
	case GH_PGW_PARSE: {
		struct gh_pgw_parse p;
		rc = gh_pgw_decode_parse(m, &p, types, cap, why, sizeof why);
		if (rc == 0) {
			inside(p.name, lo, hi, true, "parse name");
			inside(p.query, lo, hi, true, "parse query");
			if (p.ntypes > cap || p.types != types)
				die("parse types over capacity");
			gh_pgw_begin(&re, 'P', &st);
			gh_pgw_put_str(&re, p.name.p);
			gh_pgw_put_str(&re, p.query.p);
			gh_pgw_put_i16(&re, (int16_t)(uint16_t)p.ntypes);
			for (size_t i = 0; i < p.ntypes; i++)
				gh_pgw_put_i32(&re, (int32_t)types[i]);
			gh_pgw_end(&re, st);
			same(m, "parse re-encoding");
		}
		break;
	}
	case GH_PGW_BIND: {
		struct gh_pgw_bind b;
		rc = gh_pgw_decode_bind(m, &b, values, cap, why, sizeof why);
		if (rc == 0) {
			inside(b.portal, lo, hi, true, "bind portal");
			inside(b.statement, lo, hi, true, "bind statement");
			if (b.nparams > cap || b.params != values ||
			    (b.param_formats.n > 1 && b.param_formats.n != b.nparams))
				die("bind counts");
			gh_pgw_begin(&re, 'B', &st);
			gh_pgw_put_str(&re, b.portal.p);
			gh_pgw_put_str(&re, b.statement.p);
			put_formats(&b.param_formats);
			gh_pgw_put_i16(&re, (int16_t)(uint16_t)b.nparams);
			for (size_t i = 0; i < b.nparams; i++) {
				struct gh_pgw_value v = values[i];
				if (v.len < -1 || (v.len == -1 && v.p))
					die("bind value length");
				if (v.len >= 0)
					inside((struct gh_str){v.p, (size_t)v.len}, lo, hi, false, "bind value");
				gh_pgw_put_i32(&re, v.len);
				if (v.len > 0)
					gh_buf_append(&re, v.p, (size_t)v.len);
			}
			put_formats(&b.result_formats);
			gh_pgw_end(&re, st);
			same(m, "bind re-encoding");
			/* the values also go back out as a DataRow */
			if (b.nparams <= INT16_MAX) {
				gh_buf_reset(&re);
				if (gh_pgw_build_data_row(&re, values, b.nparams) != 0)
					die("data row of bind values");
			}
		}
		break;
	}
	case GH_PGW_DESCRIBE:
	case GH_PGW_CLOSE: {
		struct gh_pgw_target t;
		rc = m->type == GH_PGW_DESCRIBE ? gh_pgw_decode_describe(m, &t, why, sizeof why)
						: gh_pgw_decode_close(m, &t, why, sizeof why);
		if (rc == 0) {
			if (t.kind != GH_PGW_OBJ_STATEMENT && t.kind != GH_PGW_OBJ_PORTAL)
				die("target kind");
			inside(t.name, lo, hi, true, "target name");
			char k = (char)t.kind;
			gh_pgw_begin(&re, (char)m->type, &st);
			gh_buf_append(&re, &k, 1);
			gh_pgw_put_str(&re, t.name.p);
			gh_pgw_end(&re, st);
			same(m, "describe/close re-encoding");
		}
		break;
	}
	case GH_PGW_EXECUTE: {
		struct gh_pgw_execute e;
		rc = gh_pgw_decode_execute(m, &e, why, sizeof why);
		if (rc == 0) {
			inside(e.portal, lo, hi, true, "execute portal");
			gh_pgw_begin(&re, 'E', &st);
			gh_pgw_put_str(&re, e.portal.p);
			gh_pgw_put_i32(&re, e.max_rows);
			gh_pgw_end(&re, st);
			same(m, "execute re-encoding");
		}
		break;
	}
	case GH_PGW_SYNC:
	case GH_PGW_FLUSH:
	case GH_PGW_TERMINATE:
	case GH_PGW_COPY_DONE:
		if (m->len != 0)
			die("body-less message with a body");
		break;
	case GH_PGW_COPY_DATA:
	case GH_PGW_COPY_FAIL:
	case GH_PGW_FUNCTION_CALL:
		break;
	default:
		die("unknown type accepted");
	}
	if (rc != 0 && ((rc != GH_EINVAL && rc != GH_ETOOBIG) || !why[0]))
		die("decoder refusal without reason");
	/* a decoder given the wrong type refuses */
	struct gh_str s;
	if (m->type != GH_PGW_QUERY && gh_pgw_decode_query(m, &s, why, sizeof why) != GH_EINVAL)
		die("query decoder accepted another type");
}

static void check_startup(const uint8_t *buf, size_t len, size_t used, const struct gh_pgw_startup *s)
{
	const uint8_t *hi = buf + used;
	if (used < 8 || used > len || used > GH_PGW_MAX_STARTUP)
		die("startup used");
	switch (s->kind) {
	case GH_PGW_SSL_REQUEST:
	case GH_PGW_GSSENC_REQUEST:
		if (used != 8)
			die("ssl/gss length");
		break;
	case GH_PGW_CANCEL_REQUEST:
		if (used != 16)
			die("cancel length");
		break;
	case GH_PGW_STARTUP_MESSAGE:
		if (!s->user.p || s->user.len == 0 || s->npairs == 0 || s->npairs > GH_PGW_MAX_STARTUP_PAIRS)
			die("startup user/pairs");
		inside(s->user, buf, hi, true, "user");
		for (size_t i = 0; i < s->npairs; i++) {
			inside(s->pairs[i].name, buf, hi, true, "pair name");
			inside(s->pairs[i].value, buf, hi, true, "pair value");
			if (s->pairs[i].name.len == 0)
				die("empty pair name");
		}
		if (s->database.p)
			inside(s->database, buf, hi, true, "database");
		if (s->options.p)
			inside(s->options, buf, hi, true, "options");
		break;
	default:
		die("startup kind");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gh_pgw_startup s; /* 64 pairs: keep it off the stack */
	if (!re.max)
		gh_buf_init(&re, (size_t)8 << 20);
	/* the last byte picks the caller's limits, so small ones are exercised too */
	size_t max = 0, cap = GH_PGW_MAX_PARAMS;
	if (size && (data[size - 1] & 0x80)) {
		max = 64 + (size_t)(data[size - 1] & 0x3f) * 16;
		cap = data[size - 1] & 7;
	}
	char why[256];
	size_t off = 0, used = 0;
	bool started = false;
	for (int n = 0; n < 4 && off <= size; n++) {
		why[0] = 0;
		int rc = gh_pgw_parse_startup(data + off, size - off, max, &used, &s, why, sizeof why);
		if (rc == GH_EAGAIN) {
			if (used <= size - off)
				die("startup EAGAIN with enough bytes");
			return 0;
		}
		check_refusal(rc, used, why, "startup refusal");
		if (rc != 0)
			break;
		check_startup(data + off, size - off, used, &s);
		off += used;
		if (s.kind == GH_PGW_STARTUP_MESSAGE) {
			started = true;
			break;
		}
		if (s.kind == GH_PGW_CANCEL_REQUEST)
			return 0;
	}
	if (!started)
		off = 0;
	for (int n = 0; n < MAX_MESSAGES && off < size; n++) {
		struct gh_pgw_msg m;
		why[0] = 0;
		int rc = gh_pgw_parse_message(data + off, size - off, max, &used, &m, why, sizeof why);
		if (rc == GH_EAGAIN) {
			if (used <= size - off)
				die("message EAGAIN with enough bytes");
			break;
		}
		check_refusal(rc, used, why, "message refusal");
		if (rc != 0)
			break;
		if (used < 5 || used > size - off || m.body != data + off + 5 || m.len != used - 5 ||
		    (max && used > max))
			die("message frame");
		decode(&m, cap);
		off += used;
	}
	return 0;
}
