/* front: PostgreSQL protocol 3.0 codec, server side (see pgwire_proto.h for the contract). */
#include "front/pgwire_proto.h"

#include <stdio.h>
#include <string.h>

#define CODE_CANCEL 80877102u
#define CODE_SSL 80877103u
#define CODE_GSSENC 80877104u

static int fail(char *why, size_t whylen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Writes the reason into why (when there is room) and returns rc. */
static int fail(char *why, size_t whylen, int rc, const char *fmt, ...)
{
	if (why && whylen) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
		if (n < 0)
			why[0] = '\0';
	}
	return rc;
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | (unsigned)p[1]);
}

static size_t effective_max(size_t max, size_t cap)
{
	if (max == 0)
		max = GH_PGW_MAX_PACKET;
	return max < cap ? max : cap;
}

/* ---- startup ---- */

/* Reads a NUL-terminated string starting at *off within p[0..end); false when no NUL. */
static bool take_cstr(const uint8_t *p, size_t end, size_t *off, struct gh_str *s)
{
	if (*off >= end)
		return false;
	const uint8_t *nul = memchr(p + *off, 0, end - *off);
	if (!nul)
		return false;
	s->p = (const char *)p + *off;
	s->len = (size_t)(nul - (p + *off));
	*off += s->len + 1;
	return true;
}

static int parse_pairs(const uint8_t *buf, size_t plen, struct gh_pgw_startup *out, char *why, size_t whylen)
{
	size_t off = 8;
	for (;;) {
		struct gh_str name, value;
		if (!take_cstr(buf, plen, &off, &name))
			return fail(why, whylen, GH_EINVAL, "invalid startup packet: parameter name not terminated");
		if (name.len == 0)
			break;
		if (!take_cstr(buf, plen, &off, &value))
			return fail(why, whylen, GH_EINVAL, "invalid startup packet: parameter \"%.64s\" has no value",
				    name.p);
		for (size_t i = 0; i < out->npairs; i++)
			if (out->pairs[i].name.len == name.len && memcmp(out->pairs[i].name.p, name.p, name.len) == 0)
				return fail(why, whylen, GH_EINVAL, "startup parameter \"%.64s\" given twice", name.p);
		if (out->npairs >= GH_PGW_MAX_STARTUP_PAIRS)
			return fail(why, whylen, GH_ETOOBIG, "more than %d startup parameters",
				    GH_PGW_MAX_STARTUP_PAIRS);
		out->pairs[out->npairs++] = (struct gh_pgw_pair){name, value};
		if (gh_str_eq(name, "user"))
			out->user = value;
		else if (gh_str_eq(name, "database"))
			out->database = value;
		else if (gh_str_eq(name, "application_name"))
			out->application_name = value;
		else if (gh_str_eq(name, "client_encoding"))
			out->client_encoding = value;
		else if (gh_str_eq(name, "options"))
			out->options = value;
	}
	if (off != plen)
		return fail(why, whylen, GH_EINVAL, "invalid startup packet: %zu bytes after the terminator",
			    plen - off);
	if (!out->user.p || out->user.len == 0)
		return fail(why, whylen, GH_EINVAL, "no PostgreSQL user name specified in startup packet");
	return 0;
}

int gh_pgw_parse_startup(const uint8_t *buf, size_t len, size_t max, size_t *used, struct gh_pgw_startup *out,
			 char *why, size_t whylen)
{
	size_t limit = effective_max(max, GH_PGW_MAX_STARTUP);
	memset(out, 0, sizeof *out);
	*used = 0;
	if (len < 4) {
		*used = 4;
		return GH_EAGAIN;
	}
	uint32_t plen = get_u32(buf);
	if (plen < 8)
		return fail(why, whylen, GH_EINVAL, "invalid length of startup packet (%u)", plen);
	if (plen > limit)
		return fail(why, whylen, GH_ETOOBIG, "startup packet of %u bytes exceeds the limit of %zu", plen,
			    limit);
	if (len < 8) {
		*used = 8;
		return GH_EAGAIN;
	}
	uint32_t code = get_u32(buf + 4);
	/* Fixed-size requests are judged as soon as the code is known. */
	if (code == CODE_SSL || code == CODE_GSSENC) {
		if (plen != 8)
			return fail(why, whylen, GH_EINVAL, "invalid length of %s request (%u)",
				    code == CODE_SSL ? "SSL" : "GSSENC", plen);
		out->kind = code == CODE_SSL ? GH_PGW_SSL_REQUEST : GH_PGW_GSSENC_REQUEST;
		*used = 8;
		return 0;
	}
	if (code == CODE_CANCEL) {
		if (plen != 16)
			return fail(why, whylen, GH_EINVAL, "invalid length of cancel request (%u)", plen);
		if (len < 16) {
			*used = 16;
			return GH_EAGAIN;
		}
		out->kind = GH_PGW_CANCEL_REQUEST;
		out->cancel_pid = get_u32(buf + 8);
		out->cancel_key = get_u32(buf + 12);
		*used = 16;
		return 0;
	}
	if (code >> 16 == 1234)
		return fail(why, whylen, GH_EINVAL, "unknown startup request code 1234.%u", code & 0xffff);
	if (code != GH_PGW_PROTOCOL_3_0)
		return fail(why, whylen, GH_EINVAL, "unsupported frontend protocol %u.%u: server supports 3.0",
			    code >> 16, code & 0xffff);
	if (len < plen) {
		*used = plen;
		return GH_EAGAIN;
	}
	out->kind = GH_PGW_STARTUP_MESSAGE;
	int rc = parse_pairs(buf, plen, out, why, whylen);
	if (rc) {
		memset(out, 0, sizeof *out);
		return rc;
	}
	*used = plen;
	return 0;
}

/* ---- typed messages ---- */

int gh_pgw_parse_message(const uint8_t *buf, size_t len, size_t max, size_t *used, struct gh_pgw_msg *out,
			 char *why, size_t whylen)
{
	memset(out, 0, sizeof *out);
	*used = 0;
	if (len < 1) {
		*used = 5;
		return GH_EAGAIN;
	}
	size_t cap = SIZE_MAX;
	bool empty = false;
	switch (buf[0]) {
	case GH_PGW_SYNC:
	case GH_PGW_FLUSH:
	case GH_PGW_TERMINATE:
	case GH_PGW_COPY_DONE:
		empty = true;
		cap = GH_PGW_MAX_SMALL;
		break;
	case GH_PGW_CLOSE:
	case GH_PGW_DESCRIBE:
	case GH_PGW_EXECUTE:
		cap = GH_PGW_MAX_SMALL;
		break;
	case GH_PGW_PASSWORD:
		cap = GH_PGW_MAX_PASSWORD;
		break;
	case GH_PGW_BIND:
	case GH_PGW_COPY_DATA:
	case GH_PGW_COPY_FAIL:
	case GH_PGW_FUNCTION_CALL:
	case GH_PGW_PARSE:
	case GH_PGW_QUERY:
		break;
	default:
		return fail(why, whylen, GH_EINVAL, "invalid frontend message type 0x%02x", buf[0]);
	}
	if (len < 5) {
		*used = 5;
		return GH_EAGAIN;
	}
	uint32_t mlen = get_u32(buf + 1);
	size_t limit = effective_max(max, cap);
	if (mlen < 4)
		return fail(why, whylen, GH_EINVAL, "invalid message length %u in '%c' message", mlen, buf[0]);
	if (limit < 1 || (size_t)mlen > limit - 1)
		return fail(why, whylen, GH_ETOOBIG, "'%c' message of %zu bytes exceeds the limit of %zu", buf[0],
			    1 + (size_t)mlen, limit);
	if (empty && mlen != 4)
		return fail(why, whylen, GH_EINVAL, "'%c' message must be empty (length %u)", buf[0], mlen);
	size_t total = 1 + (size_t)mlen;
	if (len < total) {
		*used = total;
		return GH_EAGAIN;
	}
	out->type = (enum gh_pgw_type)buf[0];
	out->body = buf + 5;
	out->len = mlen - 4;
	*used = total;
	return 0;
}

/* A cursor over one message body; every read is bounds-checked. */
struct rd {
	const uint8_t *p;
	size_t len, off;
	char type;
};

static bool rd_str(struct rd *r, struct gh_str *s)
{
	return take_cstr(r->p, r->len, &r->off, s);
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	if (r->len - r->off < 2)
		return false;
	*v = get_u16(r->p + r->off);
	r->off += 2;
	return true;
}

static bool rd_u32(struct rd *r, uint32_t *v)
{
	if (r->len - r->off < 4)
		return false;
	*v = get_u32(r->p + r->off);
	r->off += 4;
	return true;
}

static int begin_decode(const struct gh_pgw_msg *m, char type, struct rd *r, char *why, size_t whylen)
{
	*r = (struct rd){NULL, 0, 0, type};
	if (!m || (char)m->type != type || (!m->body && m->len))
		return fail(why, whylen, GH_EINVAL, "not a '%c' message", type);
	*r = (struct rd){m->body, m->len, 0, type};
	return 0;
}

static int end_decode(const struct rd *r, char *why, size_t whylen)
{
	if (r->off != r->len)
		return fail(why, whylen, GH_EINVAL, "'%c' message has %zu trailing bytes", r->type, r->len - r->off);
	return 0;
}

static int bad_str(const struct rd *r, const char *what, char *why, size_t whylen)
{
	return fail(why, whylen, GH_EINVAL, "'%c' message: %s is not NUL-terminated", r->type, what);
}

static int short_msg(const struct rd *r, const char *what, char *why, size_t whylen)
{
	return fail(why, whylen, GH_EINVAL, "'%c' message ends inside %s", r->type, what);
}

static int decode_string(const struct gh_pgw_msg *m, char type, const char *what, struct gh_str *s, char *why,
			 size_t whylen)
{
	struct rd r;
	int rc = begin_decode(m, type, &r, why, whylen);
	*s = (struct gh_str){NULL, 0};
	if (rc)
		return rc;
	if (!rd_str(&r, s))
		return bad_str(&r, what, why, whylen);
	if ((rc = end_decode(&r, why, whylen)))
		*s = (struct gh_str){NULL, 0};
	return rc;
}

int gh_pgw_decode_query(const struct gh_pgw_msg *m, struct gh_str *sql, char *why, size_t whylen)
{
	return decode_string(m, GH_PGW_QUERY, "the query", sql, why, whylen);
}

int gh_pgw_decode_password(const struct gh_pgw_msg *m, struct gh_str *password, char *why, size_t whylen)
{
	return decode_string(m, GH_PGW_PASSWORD, "the password", password, why, whylen);
}

int gh_pgw_decode_parse(const struct gh_pgw_msg *m, struct gh_pgw_parse *out, uint32_t *types, size_t cap,
			char *why, size_t whylen)
{
	struct rd r;
	uint16_t n;
	memset(out, 0, sizeof *out);
	int rc = begin_decode(m, GH_PGW_PARSE, &r, why, whylen);
	if (rc)
		return rc;
	if (!rd_str(&r, &out->name))
		return bad_str(&r, "the statement name", why, whylen);
	if (!rd_str(&r, &out->query))
		return bad_str(&r, "the query", why, whylen);
	if (!rd_u16(&r, &n))
		return short_msg(&r, "the parameter type count", why, whylen);
	if ((size_t)n * 4 > r.len - r.off)
		return fail(why, whylen, GH_EINVAL, "'P' message: %u parameter types but %zu bytes left", n,
			    r.len - r.off);
	if (n > cap)
		return fail(why, whylen, GH_ETOOBIG, "'P' message has %u parameter types; at most %zu", n, cap);
	for (size_t i = 0; i < n; i++)
		rd_u32(&r, &types[i]);
	if ((rc = end_decode(&r, why, whylen))) {
		memset(out, 0, sizeof *out);
		return rc;
	}
	out->ntypes = n;
	out->types = types;
	return 0;
}

/* Reads Int16 n and n Int16 format codes, each 0 or 1. */
static int rd_formats(struct rd *r, const char *what, struct gh_pgw_formats *f, char *why, size_t whylen)
{
	uint16_t n;
	if (!rd_u16(r, &n))
		return short_msg(r, what, why, whylen);
	if ((size_t)n * 2 > r->len - r->off)
		return fail(why, whylen, GH_EINVAL, "'%c' message: %u %s but %zu bytes left", r->type, n, what,
			    r->len - r->off);
	for (size_t i = 0; i < n; i++) {
		uint16_t c = get_u16(r->p + r->off + 2 * i);
		if (c > 1)
			return fail(why, whylen, GH_EINVAL, "'%c' message: unsupported format code %d in %s", r->type,
				    (int)(int16_t)c, what);
	}
	f->n = n;
	f->raw = r->p + r->off;
	r->off += (size_t)n * 2;
	return 0;
}

int gh_pgw_format(const struct gh_pgw_formats *f, size_t i)
{
	if (f->n == 0)
		return 0;
	if (f->n == 1)
		return get_u16(f->raw);
	if (i >= f->n)
		return -1;
	return get_u16(f->raw + 2 * i);
}

int gh_pgw_decode_bind(const struct gh_pgw_msg *m, struct gh_pgw_bind *out, struct gh_pgw_value *values,
		       size_t cap, char *why, size_t whylen)
{
	struct rd r;
	uint16_t n;
	memset(out, 0, sizeof *out);
	int rc = begin_decode(m, GH_PGW_BIND, &r, why, whylen);
	if (rc)
		return rc;
	if (!rd_str(&r, &out->portal))
		return bad_str(&r, "the portal name", why, whylen);
	if (!rd_str(&r, &out->statement))
		return bad_str(&r, "the statement name", why, whylen);
	if ((rc = rd_formats(&r, "parameter format codes", &out->param_formats, why, whylen)))
		goto fail;
	if (!rd_u16(&r, &n)) {
		rc = short_msg(&r, "the parameter count", why, whylen);
		goto fail;
	}
	if (out->param_formats.n > 1 && out->param_formats.n != n) {
		rc = fail(why, whylen, GH_EINVAL, "'B' message has %zu parameter formats but %u parameters",
			  out->param_formats.n, n);
		goto fail;
	}
	/* each parameter takes at least its 4-byte length */
	if ((size_t)n * 4 > r.len - r.off) {
		rc = fail(why, whylen, GH_EINVAL, "'B' message: %u parameters but %zu bytes left", n, r.len - r.off);
		goto fail;
	}
	if (n > cap) {
		rc = fail(why, whylen, GH_ETOOBIG, "'B' message has %u parameters; at most %zu", n, cap);
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t ul;
		if (!rd_u32(&r, &ul)) {
			rc = short_msg(&r, "a parameter length", why, whylen);
			goto fail;
		}
		int32_t l = (int32_t)ul;
		if (l == -1) {
			values[i] = (struct gh_pgw_value){NULL, -1};
			continue;
		}
		if (l < 0) {
			rc = fail(why, whylen, GH_EINVAL, "'B' message: parameter %zu has length %d", i + 1, (int)l);
			goto fail;
		}
		if ((size_t)l > r.len - r.off) {
			rc = fail(why, whylen, GH_EINVAL, "'B' message: parameter %zu of %d bytes but %zu left", i + 1,
				  (int)l, r.len - r.off);
			goto fail;
		}
		values[i] = (struct gh_pgw_value){(const char *)r.p + r.off, l};
		r.off += (size_t)l;
	}
	if ((rc = rd_formats(&r, "result format codes", &out->result_formats, why, whylen)))
		goto fail;
	if ((rc = end_decode(&r, why, whylen)))
		goto fail;
	out->nparams = n;
	out->params = values;
	return 0;
fail:
	memset(out, 0, sizeof *out);
	return rc;
}

static int decode_target(const struct gh_pgw_msg *m, char type, struct gh_pgw_target *out, char *why,
			 size_t whylen)
{
	struct rd r;
	memset(out, 0, sizeof *out);
	int rc = begin_decode(m, type, &r, why, whylen);
	if (rc)
		return rc;
	if (r.len < 1)
		return short_msg(&r, "the object kind", why, whylen);
	uint8_t k = r.p[r.off++];
	if (k != GH_PGW_OBJ_STATEMENT && k != GH_PGW_OBJ_PORTAL)
		return fail(why, whylen, GH_EINVAL, "'%c' message: invalid object kind 0x%02x (want 'S' or 'P')", type, k);
	if (!rd_str(&r, &out->name))
		return bad_str(&r, "the name", why, whylen);
	if ((rc = end_decode(&r, why, whylen))) {
		memset(out, 0, sizeof *out);
		return rc;
	}
	out->kind = (enum gh_pgw_object)k;
	return 0;
}

int gh_pgw_decode_describe(const struct gh_pgw_msg *m, struct gh_pgw_target *out, char *why, size_t whylen)
{
	return decode_target(m, GH_PGW_DESCRIBE, out, why, whylen);
}

int gh_pgw_decode_close(const struct gh_pgw_msg *m, struct gh_pgw_target *out, char *why, size_t whylen)
{
	return decode_target(m, GH_PGW_CLOSE, out, why, whylen);
}

int gh_pgw_decode_execute(const struct gh_pgw_msg *m, struct gh_pgw_execute *out, char *why, size_t whylen)
{
	struct rd r;
	uint32_t rows;
	memset(out, 0, sizeof *out);
	int rc = begin_decode(m, GH_PGW_EXECUTE, &r, why, whylen);
	if (rc)
		return rc;
	if (!rd_str(&r, &out->portal))
		return bad_str(&r, "the portal name", why, whylen);
	if (!rd_u32(&r, &rows)) {
		memset(out, 0, sizeof *out);
		return short_msg(&r, "the row limit", why, whylen);
	}
	if ((rc = end_decode(&r, why, whylen))) {
		memset(out, 0, sizeof *out);
		return rc;
	}
	out->max_rows = (int32_t)rows;
	return 0;
}

/* ---- builders ---- */

/* Drops whatever was appended after mark, keeping b NUL-terminated. */
static void rollback(struct gh_buf *b, size_t mark)
{
	b->len = mark;
	if (b->data)
		b->data[mark] = '\0';
}

int gh_pgw_put_i16(struct gh_buf *b, int16_t v)
{
	uint16_t u = (uint16_t)v;
	uint8_t p[2] = {(uint8_t)(u >> 8), (uint8_t)u};
	return gh_buf_append(b, p, 2);
}

int gh_pgw_put_i32(struct gh_buf *b, int32_t v)
{
	uint32_t u = (uint32_t)v;
	uint8_t p[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
	return gh_buf_append(b, p, 4);
}

int gh_pgw_put_str(struct gh_buf *b, const char *z)
{
	if (!z)
		return GH_EINVAL;
	return gh_buf_append(b, z, strlen(z) + 1);
}

int gh_pgw_begin(struct gh_buf *b, char type, size_t *start)
{
	*start = b->len;
	static const uint8_t zero[4];
	int rc = gh_buf_append(b, &type, 1);
	if (rc)
		return rc;
	if ((rc = gh_buf_append(b, zero, 4)))
		rollback(b, *start);
	return rc;
}

int gh_pgw_end(struct gh_buf *b, size_t start)
{
	if (start > b->len || b->len - start < 5)
		return GH_EINVAL;
	size_t mlen = b->len - start - 1;
	if (mlen > INT32_MAX)
		return GH_ETOOBIG;
	uint8_t *p = (uint8_t *)b->data + start + 1;
	p[0] = (uint8_t)(mlen >> 24);
	p[1] = (uint8_t)(mlen >> 16);
	p[2] = (uint8_t)(mlen >> 8);
	p[3] = (uint8_t)mlen;
	return 0;
}

/* Finishes a message begun at start (mark = b->len before it), or undoes it on error. */
static int finish(struct gh_buf *b, size_t mark, size_t start, int rc)
{
	if (rc == 0)
		rc = gh_pgw_end(b, start);
	if (rc)
		rollback(b, mark);
	return rc;
}

int gh_pgw_build_ssl_answer(struct gh_buf *b, bool accept)
{
	char c = accept ? 'S' : 'N';
	return gh_buf_append(b, &c, 1);
}

static int build_auth(struct gh_buf *b, int32_t code)
{
	size_t mark = b->len, start;
	int rc = gh_pgw_begin(b, 'R', &start);
	if (rc)
		return rc;
	rc = gh_pgw_put_i32(b, code);
	return finish(b, mark, start, rc);
}

int gh_pgw_build_auth_ok(struct gh_buf *b)
{
	return build_auth(b, 0);
}

int gh_pgw_build_auth_cleartext(struct gh_buf *b)
{
	return build_auth(b, 3);
}

int gh_pgw_build_parameter_status(struct gh_buf *b, const char *name, const char *value)
{
	if (!name || !value || !name[0])
		return GH_EINVAL;
	size_t mark = b->len, start;
	int rc = gh_pgw_begin(b, 'S', &start);
	if (rc)
		return rc;
	if (!(rc = gh_pgw_put_str(b, name)))
		rc = gh_pgw_put_str(b, value);
	return finish(b, mark, start, rc);
}

int gh_pgw_build_backend_key_data(struct gh_buf *b, uint32_t pid, uint32_t key)
{
	size_t mark = b->len, start;
	int rc = gh_pgw_begin(b, 'K', &start);
	if (rc)
		return rc;
	if (!(rc = gh_pgw_put_i32(b, (int32_t)pid)))
		rc = gh_pgw_put_i32(b, (int32_t)key);
	return finish(b, mark, start, rc);
}

int gh_pgw_build_ready_for_query(struct gh_buf *b, char status)
{
	if (status != 'I' && status != 'T' && status != 'E')
		return GH_EINVAL;
	size_t mark = b->len, start;
	int rc = gh_pgw_begin(b, 'Z', &start);
	if (rc)
		return rc;
	rc = gh_buf_append(b, &status, 1);
	return finish(b, mark, start, rc);
}

int gh_pgw_build_row_description(struct gh_buf *b, const struct gh_pgw_field *fields, size_t n)
{
	if (n > INT16_MAX)
		return GH_ETOOBIG;
	if (n && !fields)
		return GH_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!fields[i].name || (fields[i].format != 0 && fields[i].format != 1))
			return GH_EINVAL;
	size_t mark = b->len, start;
	int rc = gh_pgw_begin(b, 'T', &start);
	if (rc)
		return rc;
	rc = gh_pgw_put_i16(b, (int16_t)n);
	for (size_t i = 0; i < n && !rc; i++) {
		const struct gh_pgw_field *f = &fields[i];
		if ((rc = gh_pgw_put_str(b, f->name)) || (rc = gh_pgw_put_i32(b, (int32_t)f->table_oid)) ||
		    (rc = gh_pgw_put_i16(b, f->column)) || (rc = gh_pgw_put_i32(b, (int32_t)f->type_oid)) ||
		    (rc = gh_pgw_put_i16(b, f->type_size)) || (rc = gh_pgw_put_i32(b, f->type_mod)))
			break;
		rc = gh_pgw_put_i16(b, f->format);
	}
	return finish(b, mark, start, rc);
}

int gh_pgw_build_data_row(struct gh_buf *b, const struct gh_pgw_value *values, size_t n)
{
	if (n > INT16_MAX)
		return GH_ETOOBIG;
	if (n && !values)
		return GH_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (values[i].len < -1 || (values[i].len > 0 && !values[i].p))
			return GH_EINVAL;
	size_t mark = b->len, start;
	int rc = gh_pgw_begin(b, 'D', &start);
	if (rc)
		return rc;
	rc = gh_pgw_put_i16(b, (int16_t)n);
	for (size_t i = 0; i < n && !rc; i++) {
		rc = gh_pgw_put_i32(b, values[i].len);
		if (!rc && values[i].len > 0)
			rc = gh_buf_append(b, values[i].p, (size_t)values[i].len);
	}
	return finish(b, mark, start, rc);
}

int gh_pgw_build_command_complete(struct gh_buf *b, const char *tag)
{
	if (!tag)
		return GH_EINVAL;
	size_t mark = b->len, start;
	int rc = gh_pgw_begin(b, 'C', &start);
	if (rc)
		return rc;
	rc = gh_pgw_put_str(b, tag);
	return finish(b, mark, start, rc);
}

int gh_pgw_build_parameter_description(struct gh_buf *b, const uint32_t *oids, size_t n)
{
	if (n > GH_PGW_MAX_PARAMS)
		return GH_ETOOBIG;
	if (n && !oids)
		return GH_EINVAL;
	size_t mark = b->len, start;
	int rc = gh_pgw_begin(b, 't', &start);
	if (rc)
		return rc;
	rc = gh_pgw_put_i16(b, (int16_t)(uint16_t)n);
	for (size_t i = 0; i < n && !rc; i++)
		rc = gh_pgw_put_i32(b, (int32_t)oids[i]);
	return finish(b, mark, start, rc);
}

static int build_empty(struct gh_buf *b, char type)
{
	size_t mark = b->len, start;
	int rc = gh_pgw_begin(b, type, &start);
	if (rc)
		return rc;
	return finish(b, mark, start, 0);
}

int gh_pgw_build_empty_query(struct gh_buf *b) { return build_empty(b, 'I'); }
int gh_pgw_build_parse_complete(struct gh_buf *b) { return build_empty(b, '1'); }
int gh_pgw_build_bind_complete(struct gh_buf *b) { return build_empty(b, '2'); }
int gh_pgw_build_close_complete(struct gh_buf *b) { return build_empty(b, '3'); }
int gh_pgw_build_no_data(struct gh_buf *b) { return build_empty(b, 'n'); }
int gh_pgw_build_portal_suspended(struct gh_buf *b) { return build_empty(b, 's'); }

static bool one_of(const char *z, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(z, *list) == 0)
			return true;
	return false;
}

static int put_field(struct gh_buf *b, char code, const char *z)
{
	int rc = gh_buf_append(b, &code, 1);
	return rc ? rc : gh_pgw_put_str(b, z);
}

static int build_notice(struct gh_buf *b, char type, const struct gh_pgw_notice *n, const char *const *severities)
{
	if (!n || !n->severity || !n->sqlstate || !n->message || !one_of(n->severity, severities))
		return GH_EINVAL;
	if (strlen(n->sqlstate) != 5)
		return GH_EINVAL;
	for (size_t i = 0; i < 5; i++) {
		char c = n->sqlstate[i];
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')))
			return GH_EINVAL;
	}
	size_t mark = b->len, start;
	int rc = gh_pgw_begin(b, type, &start);
	if (rc)
		return rc;
	if ((rc = put_field(b, 'S', n->severity)) || (rc = put_field(b, 'V', n->severity)) ||
	    (rc = put_field(b, 'C', n->sqlstate)) || (rc = put_field(b, 'M', n->message)))
		goto done;
	if (n->detail && (rc = put_field(b, 'D', n->detail)))
		goto done;
	if (n->hint && (rc = put_field(b, 'H', n->hint)))
		goto done;
	if (n->position > 0) {
		char pos[16];
		snprintf(pos, sizeof pos, "%d", n->position);
		if ((rc = put_field(b, 'P', pos)))
			goto done;
	}
	rc = gh_buf_append(b, "", 1); /* the terminating zero byte */
done:
	return finish(b, mark, start, rc);
}

int gh_pgw_build_error(struct gh_buf *b, const struct gh_pgw_notice *n)
{
	static const char *const sev[] = {"ERROR", "FATAL", "PANIC", NULL};
	return build_notice(b, 'E', n, sev);
}

int gh_pgw_build_notice(struct gh_buf *b, const struct gh_pgw_notice *n)
{
	static const char *const sev[] = {"WARNING", "NOTICE", "DEBUG", "INFO", "LOG", NULL};
	return build_notice(b, 'N', n, sev);
}
