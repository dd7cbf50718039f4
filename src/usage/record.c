/* usage: reading the members of an audit record the index needs, without building a JSON tree
 * (a general parser was most of the time of a catch-up). A bounded scanner over one top-level
 * object: the members it wants are decoded in place, everything else is skipped by structure.
 * Fuzzed (fuzz/fuzz_usage_record.c). */
#include "usage/usage_int.h"

#include <stddef.h>
#include <string.h>

/* Nesting the skipper follows inside a member it does not read (records nest two levels). */
#define REC_MAX_DEPTH 64

struct cur {
	char *p;
	size_t len, i;
};

static void ws(struct cur *c)
{
	while (c->i < c->len && (c->p[c->i] == ' ' || c->p[c->i] == '\t' || c->p[c->i] == '\n' || c->p[c->i] == '\r'))
		c->i++;
}

static int hex4(const char *s)
{
	int v = 0;
	for (int k = 0; k < 4; k++) {
		char h = s[k];
		int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* A string at c->i (its opening quote): decoded in place when decode, NUL-terminated there, and
 * returned through out. Only skipped (and checked) otherwise. False when malformed. */
static bool string(struct cur *c, bool decode, char **out)
{
	if (c->i >= c->len || c->p[c->i] != '"')
		return false;
	size_t start = ++c->i, r = start, w = start;
	while (r < c->len) {
		unsigned char ch = (unsigned char)c->p[r];
		if (ch == '"') {
			c->i = r + 1;
			if (decode) {
				c->p[w] = '\0'; /* w <= r: the closing quote or bytes already read */
				*out = c->p + start;
			}
			return true;
		}
		if (ch < 0x20)
			return false;
		if (ch != '\\') {
			if (decode)
				c->p[w] = (char)ch;
			r++;
			w++;
			continue;
		}
		if (r + 1 >= c->len)
			return false;
		char e = c->p[r + 1];
		unsigned cp;
		r += 2;
		switch (e) {
		case '"': case '\\': case '/': cp = (unsigned char)e; break;
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'u': {
			if (r + 4 > c->len)
				return false;
			int v = hex4(c->p + r);
			if (v < 0)
				return false;
			r += 4;
			cp = (unsigned)v;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (r + 6 > c->len || c->p[r] != '\\' || c->p[r + 1] != 'u')
					return false;
				int lo = hex4(c->p + r + 2);
				if (lo < 0xDC00 || lo > 0xDFFF)
					return false;
				r += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				return false;
			}
			break;
		}
		default:
			return false;
		}
		if (!decode)
			continue;
		/* UTF-8 is never longer than the escape it came from (\uXXXX: 6 bytes for at most 3;
		 * a pair: 12 for 4), so w stays behind r */
		if (cp < 0x80) {
			c->p[w++] = (char)cp;
		} else if (cp < 0x800) {
			c->p[w++] = (char)(0xC0 | (cp >> 6));
			c->p[w++] = (char)(0x80 | (cp & 0x3F));
		} else if (cp < 0x10000) {
			c->p[w++] = (char)(0xE0 | (cp >> 12));
			c->p[w++] = (char)(0x80 | ((cp >> 6) & 0x3F));
			c->p[w++] = (char)(0x80 | (cp & 0x3F));
		} else {
			c->p[w++] = (char)(0xF0 | (cp >> 18));
			c->p[w++] = (char)(0x80 | ((cp >> 12) & 0x3F));
			c->p[w++] = (char)(0x80 | ((cp >> 6) & 0x3F));
			c->p[w++] = (char)(0x80 | (cp & 0x3F));
		}
	}
	return false;
}

/* Skips one value of any kind. */
static bool skip_value(struct cur *c)
{
	int depth = 0;
	for (;;) {
		ws(c);
		if (c->i >= c->len)
			return false;
		char ch = c->p[c->i];
		if (ch == '"') {
			if (!string(c, false, NULL))
				return false;
		} else if (ch == '{' || ch == '[') {
			if (++depth > REC_MAX_DEPTH)
				return false;
			c->i++;
			continue;
		} else if (ch == '}' || ch == ']') {
			if (depth == 0)
				return false;
			depth--;
			c->i++;
		} else if (ch == ',' || ch == ':') {
			if (depth == 0)
				return false;
			c->i++;
			continue;
		} else {
			/* number or literal: a run of its characters */
			size_t s = c->i;
			while (c->i < c->len && strchr("0123456789+-.eEtruefalsn", c->p[c->i]) && c->p[c->i])
				c->i++;
			if (c->i == s)
				return false;
		}
		if (depth == 0)
			return true;
	}
}

/* An integer value (rows), or null: *set says which. */
static bool integer(struct cur *c, int64_t *v, bool *set)
{
	*set = false;
	if (c->i + 4 <= c->len && memcmp(c->p + c->i, "null", 4) == 0) {
		c->i += 4;
		return true;
	}
	bool neg = c->i < c->len && c->p[c->i] == '-';
	size_t i = c->i + neg, s = i;
	int64_t n = 0;
	while (i < c->len && c->p[i] >= '0' && c->p[i] <= '9') {
		if (n > (INT64_MAX - 9) / 10)
			return false;
		n = n * 10 + (c->p[i] - '0');
		i++;
	}
	if (i == s)
		return false;
	c->i = i;
	if (c->i < c->len && strchr(".eE", c->p[c->i]))
		return skip_value(c); /* not an integer: leave it unset */
	*v = neg ? -n : n;
	*set = true;
	return true;
}

/* A string member's value, or null (left NULL). */
static bool str_or_null(struct cur *c, char **out)
{
	*out = NULL;
	if (c->i + 4 <= c->len && memcmp(c->p + c->i, "null", 4) == 0) {
		c->i += 4;
		return true;
	}
	if (c->i < c->len && c->p[c->i] == '"')
		return string(c, true, out);
	return skip_value(c);
}

struct want {
	const char *name;
	size_t off; /* of the char * in struct usage_rec */
};

#define W(n, f) {n, offsetof(struct usage_rec, f)}
static const struct want top_members[] = {
	W("time", time), W("event", event), W("user", user), W("app", app), W("environment", environment),
	W("resource", resource), W("statement", statement), W("decision", decision), W("rule", rule),
	W("status", status),
};
static const struct want detail_members[] = {W("approval", approval), W("requester", requester)};
#undef W

/* Members of an object at c->i; strings named in want[] are read into r, rows too when top. */
static bool object(struct cur *c, struct usage_rec *r, const struct want *want, size_t nwant, bool top)
{
	ws(c);
	if (c->i >= c->len || c->p[c->i] != '{')
		return false;
	c->i++;
	ws(c);
	if (c->i < c->len && c->p[c->i] == '}') {
		c->i++;
		return true;
	}
	for (;;) {
		ws(c);
		char *name = NULL;
		if (!string(c, true, &name))
			return false;
		ws(c);
		if (c->i >= c->len || c->p[c->i] != ':')
			return false;
		c->i++;
		ws(c);
		bool done = false;
		for (size_t k = 0; k < nwant && !done; k++)
			if (strcmp(name, want[k].name) == 0) {
				if (!str_or_null(c, (char **)((char *)r + want[k].off)))
					return false;
				done = true;
			}
		if (!done && top && strcmp(name, "rows") == 0) {
			if (!integer(c, &r->rows, &r->has_rows))
				return false;
			done = true;
		}
		if (!done && top && strcmp(name, "detail") == 0 && c->i < c->len && c->p[c->i] == '{') {
			if (!object(c, r, detail_members, sizeof detail_members / sizeof *detail_members, false))
				return false;
			done = true;
		}
		if (!done && !skip_value(c))
			return false;
		ws(c);
		if (c->i < c->len && c->p[c->i] == ',') {
			c->i++;
			continue;
		}
		if (c->i < c->len && c->p[c->i] == '}') {
			c->i++;
			return true;
		}
		return false;
	}
}

bool usage_record_parse(char *line, size_t len, struct usage_rec *r)
{
	memset(r, 0, sizeof *r);
	struct cur c = {line, len, 0};
	if (!object(&c, r, top_members, sizeof top_members / sizeof *top_members, true))
		return false;
	ws(&c);
	return c.i == len;
}
