/* sql: statement fingerprints. A small tokenizer of its own (no parser: it must take any text,
 * including text the resource refused) rewrites a statement into a normal form in which
 * statements that differ only in literal values, parameters, comments, spacing or the length of
 * an IN list are the same text. The usage index groups statements by it and shows the normal
 * form as the example, so no value ever reaches a report. */
#include "sql/sql.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Parentheses tracked for IN lists and VALUES rows; deeper ones are still balanced, only not
 * collapsed. */
#define NORM_MAX_DEPTH 64

enum tok { T_END, T_WORD, T_QUOTED, T_LITERAL, T_OPEN, T_CLOSE, T_COMMA, T_DOT, T_SEMI, T_CAST, T_OP };

struct token {
	enum tok kind;
	const char *p;
	size_t len;
};

enum frame_kind { FR_OTHER, FR_LIST, FR_ROW };

struct frame {
	enum frame_kind kind;
	bool only_literals;   /* FR_LIST: every element so far is one literal */
	bool empty;           /* FR_LIST: no element yet */
	bool comma_pending;   /* FR_LIST: a ',' held back until the next element is known */
	size_t row_start;     /* FR_ROW: offset of its '(' in the output */
};

struct norm {
	const char *s;
	size_t len, pos;
	enum gh_sql_dialect d;
	struct gh_buf *out, *fold;
	int rc;
	bool have_prev;
	enum tok prev;
	bool prev_spaced;     /* prev is a word written with a space before '(' (a keyword) */
	bool prev_in;         /* prev is the word IN */
	bool expect_operand;  /* a sign here starts a number rather than a subtraction */
	int depth;
	struct frame frames[NORM_MAX_DEPTH + 1];     /* frames[k]: the parenthesis opened to reach depth k */
	bool values_ctx[NORM_MAX_DEPTH + 1];         /* after VALUES at this depth: '(' opens a row */
	bool have_row[NORM_MAX_DEPTH + 1];
	size_t row_from[NORM_MAX_DEPTH + 1], row_to[NORM_MAX_DEPTH + 1]; /* the previous row at a depth */
};

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_word_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool is_word_char(unsigned char c)
{
	return is_word_start(c) || is_digit(c) || c == '$';
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Skips whitespace and comments from *i. PostgreSQL block comments nest; SQLite's do not. An
 * unterminated comment runs to the end. */
static void skip_blank(const char *s, size_t len, size_t *i, enum gh_sql_dialect d)
{
	while (*i < len) {
		unsigned char c = (unsigned char)s[*i];
		if (is_space(c)) {
			(*i)++;
		} else if (c == '-' && *i + 1 < len && s[*i + 1] == '-') {
			while (*i < len && s[*i] != '\n')
				(*i)++;
		} else if (c == '/' && *i + 1 < len && s[*i + 1] == '*') {
			int nest = 1;
			*i += 2;
			while (*i < len && nest) {
				if (s[*i] == '*' && *i + 1 < len && s[*i + 1] == '/') {
					nest--;
					*i += 2;
				} else if (d == GH_SQL_DIALECT_PG && s[*i] == '/' && *i + 1 < len && s[*i + 1] == '*') {
					nest++;
					*i += 2;
				} else {
					(*i)++;
				}
			}
		} else {
			return;
		}
	}
}

/* From the opening quote at i: the offset just past the closing quote q (a doubled q is an
 * escaped one; with backslash, \x escapes x), or len when it never closes. */
static size_t scan_quoted(const char *s, size_t len, size_t i, char q, bool backslash)
{
	for (i++; i < len; i++) {
		if (backslash && s[i] == '\\') {
			i++;
			continue;
		}
		if (s[i] == q) {
			if (i + 1 < len && s[i + 1] == q) {
				i++;
				continue;
			}
			return i + 1;
		}
	}
	return len;
}

/* A number starting at i (a digit, or '.' and a digit): decimal with '_' separators, fraction
 * and exponent, or 0x hex; letters glued to it are taken with it. */
static size_t scan_number(const char *s, size_t len, size_t i)
{
	if (s[i] == '0' && i + 2 < len && (s[i + 1] == 'x' || s[i + 1] == 'X') && is_hex((unsigned char)s[i + 2])) {
		i += 2;
		while (i < len && (is_hex((unsigned char)s[i]) || s[i] == '_'))
			i++;
	} else {
		while (i < len && (is_digit((unsigned char)s[i]) || s[i] == '_'))
			i++;
		if (i < len && s[i] == '.') {
			i++;
			while (i < len && (is_digit((unsigned char)s[i]) || s[i] == '_'))
				i++;
		}
		if (i < len && (s[i] == 'e' || s[i] == 'E')) {
			size_t j = i + 1;
			if (j < len && (s[j] == '+' || s[j] == '-'))
				j++;
			if (j < len && is_digit((unsigned char)s[j])) {
				i = j;
				while (i < len && is_digit((unsigned char)s[i]))
					i++;
			}
		}
	}
	while (i < len && is_word_char((unsigned char)s[i]))
		i++;
	return i;
}

static size_t scan_word(const char *s, size_t len, size_t i)
{
	while (i < len && is_word_char((unsigned char)s[i]))
		i++;
	return i;
}

/* A parameter or literal that starts at i without a sign: its end, or 0 when none starts here. */
static size_t scan_value(const char *s, size_t len, size_t i, enum gh_sql_dialect d)
{
	unsigned char c = (unsigned char)s[i], n = i + 1 < len ? (unsigned char)s[i + 1] : 0;
	bool pg = d == GH_SQL_DIALECT_PG;
	if (c == '\'')
		return scan_quoted(s, len, i, '\'', false);
	if (is_digit(c) || (c == '.' && is_digit(n)))
		return scan_number(s, len, i);
	if (c == '?' && !(pg && (n == '|' || n == '&'))) {
		for (i++; i < len && is_digit((unsigned char)s[i]);)
			i++;
		return i;
	}
	if (pg && c == '$') {
		if (is_digit(n)) {
			for (i++; i < len && is_digit((unsigned char)s[i]);)
				i++;
			return i;
		}
		/* dollar quoting: $tag$ ... $tag$ */
		size_t t = i + 1;
		while (t < len && is_word_char((unsigned char)s[t]) && s[t] != '$' && !(t == i + 1 && is_digit((unsigned char)s[t])))
			t++;
		if (t < len && s[t] == '$') {
			size_t taglen = t + 1 - i;
			for (size_t k = t + 1; k + taglen <= len; k++)
				if (s[k] == '$' && memcmp(s + k, s + i, taglen) == 0)
					return k + taglen;
			return len;
		}
		return 0;
	}
	if (!pg && (c == ':' || c == '@' || c == '$') && (is_word_char(n) && n != '$'))
		return scan_word(s, len, i + 1);
	if (is_word_start(c)) {
		size_t j = scan_word(s, len, i);
		if (j < len && s[j] == '\'' && j - i == 1) {
			if (c == 'x' || c == 'X')
				return scan_quoted(s, len, j, '\'', false);
			if (pg && (c == 'e' || c == 'E'))
				return scan_quoted(s, len, j, '\'', true);
			if (pg && (c == 'b' || c == 'B' || c == 'n' || c == 'N'))
				return scan_quoted(s, len, j, '\'', false);
		}
		if (pg && j - i == 1 && (c == 'u' || c == 'U') && j + 1 < len && s[j] == '&' && s[j + 1] == '\'')
			return scan_quoted(s, len, j + 1, '\'', false);
	}
	return 0;
}

static const char *const two_char_ops[] = {"||", "<=", ">=", "<>", "!=", "==", "<<", ">>", "->", "~~",
					   "!~", "&&", "@>", "<@", "#>", "?|", "?&"};

/* The next token from n->pos (after blanks), advancing pos. expect says whether an operand may
 * start here (then a sign directly before a number or parameter belongs to it). */
static struct token lex(const char *s, size_t len, size_t *pos, enum gh_sql_dialect d, bool expect)
{
	struct token t = {T_END, s + len, 0};
	skip_blank(s, len, pos, d);
	size_t i = *pos;
	if (i >= len)
		return t;
	unsigned char c = (unsigned char)s[i], n = i + 1 < len ? (unsigned char)s[i + 1] : 0;
	size_t end = scan_value(s, len, i, d);
	t.p = s + i;
	if (end) {
		t.kind = T_LITERAL;
	} else if ((c == '-' || c == '+') && expect) {
		size_t j = i + 1;
		while (j < len && is_space((unsigned char)s[j]))
			j++;
		/* only a number: a sign before a parameter stays an operator, so that the normal form
		 * ("- ?") reads back the same */
		bool num = j < len && (is_digit((unsigned char)s[j]) ||
				       (s[j] == '.' && j + 1 < len && is_digit((unsigned char)s[j + 1])));
		size_t v = num ? scan_number(s, len, j) : 0;
		if (v) {
			t.kind = T_LITERAL;
			end = v;
		} else {
			t.kind = T_OP;
			end = i + 1;
		}
	} else if (is_word_start(c)) {
		t.kind = T_WORD;
		end = scan_word(s, len, i);
	} else if (c == '"') {
		/* SQLite reads a double-quoted word as a string when no column has that name: in
		 * SQLite text it may be a value, so it is one here */
		t.kind = d == GH_SQL_DIALECT_SQLITE ? T_LITERAL : T_QUOTED;
		end = scan_quoted(s, len, i, '"', false);
	} else if (d == GH_SQL_DIALECT_SQLITE && c == '`') {
		t.kind = T_QUOTED;
		end = scan_quoted(s, len, i, '`', false);
	} else if (d == GH_SQL_DIALECT_SQLITE && c == '[') {
		t.kind = T_QUOTED;
		const char *close = memchr(s + i, ']', len - i);
		end = close ? (size_t)(close - s) + 1 : len;
	} else if (c == '(' || c == ')' || c == ',' || c == '.' || c == ';') {
		t.kind = c == '(' ? T_OPEN : c == ')' ? T_CLOSE : c == ',' ? T_COMMA : c == '.' ? T_DOT : T_SEMI;
		end = i + 1;
	} else if (c == ':' && n == ':') {
		t.kind = T_CAST;
		end = i + 2;
	} else {
		t.kind = T_OP;
		end = i + 1;
		if (i + 2 < len && ((c == '-' && n == '>' && s[i + 2] == '>') || (c == '#' && n == '>' && s[i + 2] == '>')))
			end = i + 3;
		else
			for (size_t k = 0; k < sizeof two_char_ops / sizeof *two_char_ops; k++)
				if (c == (unsigned char)two_char_ops[k][0] && n == (unsigned char)two_char_ops[k][1]) {
					end = i + 2;
					break;
				}
	}
	t.len = end - i;
	*pos = end;
	return t;
}

static bool word_in(const struct token *t, const char *const *list, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (strlen(list[k]) == t->len && strncasecmp(t->p, list[k], t->len) == 0)
			return true;
	return false;
}

/* Keywords after which an operand follows (so "- 1" there is the number -1). */
static const char *const operand_words[] = {
	"select", "where", "and", "or", "not", "when", "then", "else", "is", "like", "glob", "between", "by",
	"limit", "offset", "values", "set", "on", "having", "case", "distinct", "all", "in", "return",
	"returning", "escape", "match", "regexp", "ilike", "similar", "to", "any", "some", "exists"};
/* Keywords written with a space before a following '(' (other words are names: "count(", "t("). */
static const char *const spaced_words[] = {
	"in", "values", "and", "or", "not", "exists", "as", "on", "from", "where", "select", "using", "when",
	"then", "else", "join", "having", "by", "all", "any", "some", "over", "filter", "within", "union",
	"except", "intersect", "returning", "set", "case", "is", "like", "between", "into", "conflict"};

static void put_raw(struct norm *n, const char *p, size_t len, bool fold_it)
{
	if (n->rc)
		return;
	size_t at = n->fold ? n->fold->len : 0;
	n->rc = gh_buf_append(n->out, p, len);
	if (!n->rc && n->fold) {
		n->rc = gh_buf_append(n->fold, p, len);
		if (!n->rc && fold_it)
			for (size_t k = at; k < n->fold->len; k++)
				if (n->fold->data[k] >= 'A' && n->fold->data[k] <= 'Z')
					n->fold->data[k] = (char)(n->fold->data[k] - 'A' + 'a');
	}
}

/* Writes one token with the canonical spacing before it. */
static void emit(struct norm *n, enum tok kind, const char *p, size_t len, bool fold_it)
{
	bool space = n->have_prev;
	if (space) {
		/* spaces are left out only where the two tokens cannot read back as others (a cast
		 * next to an operator ':' could) */
		enum tok pv = n->prev;
		if (pv == T_OPEN || pv == T_DOT)
			space = false;
		else if (pv == T_CAST)
			space = !(kind == T_WORD || kind == T_QUOTED);
		else if (kind == T_CLOSE || kind == T_COMMA || kind == T_DOT || kind == T_SEMI)
			space = false;
		else if (kind == T_CAST)
			space = !(pv == T_WORD || pv == T_QUOTED || pv == T_CLOSE || pv == T_LITERAL);
		else if (kind == T_OPEN && ((pv == T_WORD && !n->prev_spaced) || pv == T_QUOTED))
			space = false;
	}
	if (space)
		put_raw(n, " ", 1, false);
	put_raw(n, p, len, fold_it);
	n->have_prev = true;
	n->prev = kind;
	n->prev_spaced = false;
	n->prev_in = false;
}

static void truncate_to(struct norm *n, size_t at)
{
	if (n->rc)
		return;
	n->out->len = at;
	n->out->data[at] = '\0';
	if (n->fold) {
		n->fold->len = at;
		n->fold->data[at] = '\0';
	}
}

static struct frame *top(struct norm *n)
{
	return n->depth > 0 && n->depth <= NORM_MAX_DEPTH ? &n->frames[n->depth] : NULL;
}

/* A ',' held back in an IN list is written once the element after it is not one literal. */
static void flush_comma(struct norm *n)
{
	struct frame *f = top(n);
	if (f && f->comma_pending) {
		f->comma_pending = false;
		f->only_literals = false;
		emit(n, T_COMMA, ",", 1, false);
	}
}

int gh_sql_normalize(const char *sql, size_t len, enum gh_sql_dialect d, struct gh_buf *out, struct gh_buf *fold)
{
	struct norm *n = calloc(1, sizeof *n);
	if (!n)
		return GH_ENOMEM;
	n->s = sql;
	n->len = len;
	n->d = d;
	n->out = out;
	n->fold = fold;
	n->expect_operand = true;
	/* make sure data exists, so truncate_to can always write its terminator */
	n->rc = gh_buf_append(out, "", 0);
	if (!n->rc && fold)
		n->rc = gh_buf_append(fold, "", 0);
	while (!n->rc) {
		struct token t = lex(sql, len, &n->pos, d, n->expect_operand);
		if (t.kind == T_END)
			break;
		struct frame *f = top(n);
		int here = n->depth <= NORM_MAX_DEPTH ? n->depth : -1;
		if (here >= 0 && t.kind != T_COMMA && t.kind != T_OPEN && t.kind != T_CLOSE)
			n->values_ctx[here] = false;
		switch (t.kind) {
		case T_LITERAL: {
			if (f && f->kind == FR_LIST && f->only_literals) {
				/* one literal is a whole element when ',' or ')' follows it */
				size_t peek = n->pos;
				enum tok next = lex(sql, len, &peek, d, false).kind;
				bool whole = next == T_COMMA || next == T_CLOSE;
				if (whole && f->comma_pending) {
					f->comma_pending = false; /* ", ?" collapses into the first element */
					break;
				}
				if (whole && f->empty) {
					f->empty = false;
					emit(n, T_LITERAL, "?", 1, false);
					n->expect_operand = false;
					break;
				}
				f->empty = false;
			}
			flush_comma(n);
			if (f && f->kind == FR_LIST)
				f->only_literals = false;
			emit(n, T_LITERAL, "?", 1, false);
			n->expect_operand = false;
			break;
		}
		case T_COMMA:
			if (f && f->kind == FR_LIST && f->only_literals && !f->empty && !f->comma_pending) {
				f->comma_pending = true;
			} else {
				flush_comma(n);
				if (f && f->kind == FR_LIST) {
					f->only_literals = false;
					f->empty = false;
				}
				emit(n, T_COMMA, ",", 1, false);
			}
			n->expect_operand = true;
			break;
		case T_OPEN: {
			bool list = n->prev_in && n->have_prev && n->prev == T_WORD;
			bool row = here >= 0 && n->values_ctx[here];
			flush_comma(n);
			if (f && f->kind == FR_LIST) {
				f->only_literals = false;
				f->empty = false;
			}
			emit(n, T_OPEN, "(", 1, false);
			n->depth++;
			if (n->depth <= NORM_MAX_DEPTH) {
				struct frame *nf = &n->frames[n->depth];
				memset(nf, 0, sizeof *nf);
				nf->kind = list ? FR_LIST : row ? FR_ROW : FR_OTHER;
				nf->only_literals = true;
				nf->empty = true;
				nf->row_start = n->out->len - 1;
				n->values_ctx[n->depth] = false;
				n->have_row[n->depth] = false;
			}
			n->expect_operand = true;
			break;
		}
		case T_CLOSE: {
			flush_comma(n);
			emit(n, T_CLOSE, ")", 1, false);
			n->expect_operand = false;
			if (n->depth == 0)
				break;
			bool row = f && f->kind == FR_ROW;
			size_t from = f ? f->row_start : 0, to = n->out->len;
			n->depth--;
			int at = n->depth;
			if (!row || at > NORM_MAX_DEPTH || n->rc)
				break;
			/* a row equal to the one just before it (", " between them) is dropped */
			size_t pf = n->row_from[at], pt = n->row_to[at];
			const struct gh_buf *cmp = n->fold ? n->fold : n->out;
			if (n->have_row[at] && from == pt + 2 && memcmp(n->out->data + pt, ", ", 2) == 0 &&
			    to - from == pt - pf && memcmp(cmp->data + pf, cmp->data + from, pt - pf) == 0) {
				truncate_to(n, pt);
			} else {
				n->have_row[at] = true;
				n->row_from[at] = from;
				n->row_to[at] = to;
			}
			n->values_ctx[at] = true; /* more rows may follow */
			break;
		}
		default: {
			flush_comma(n);
			if (f && f->kind == FR_LIST) {
				f->only_literals = false;
				f->empty = false;
			}
			bool word = t.kind == T_WORD;
			emit(n, t.kind, t.p, t.len, word);
			if (word) {
				n->prev_spaced = word_in(&t, spaced_words, sizeof spaced_words / sizeof *spaced_words);
				n->prev_in = t.len == 2 && strncasecmp(t.p, "in", 2) == 0;
				n->expect_operand = word_in(&t, operand_words, sizeof operand_words / sizeof *operand_words);
				if (here >= 0 && t.len == 6 && strncasecmp(t.p, "values", 6) == 0) {
					n->values_ctx[here] = true;
					n->have_row[here] = false;
				}
			} else {
				n->expect_operand = t.kind != T_QUOTED;
			}
			break;
		}
		}
	}
	if (!n->rc) {
		/* a list left open at the end keeps its held-back comma */
		while (n->depth > 0 && !n->rc) {
			flush_comma(n);
			n->depth--;
		}
	}
	int rc = n->rc;
	free(n);
	return rc;
}

int gh_sql_fingerprint(const char *sql, size_t len, enum gh_sql_dialect d, char fp[17], struct gh_buf *example)
{
	struct gh_buf own, fold;
	struct gh_buf *out = example;
	size_t max = 2 * len + 16;
	if (!out) {
		gh_buf_init(&own, max);
		out = &own;
	}
	gh_buf_init(&fold, max);
	int rc = gh_sql_normalize(sql, len, d, out, &fold);
	if (!rc && !(d == GH_SQL_DIALECT_PG && gh_sql_fingerprint_pg(sql, len, fp) == 0)) {
		uint8_t h[8];
		crypto_generichash(h, sizeof h, (const uint8_t *)fold.data, fold.len, NULL, 0);
		gh_hex_encode(h, sizeof h, fp);
	}
	gh_buf_free(&fold);
	if (!example)
		gh_buf_free(&own);
	return rc;
}
