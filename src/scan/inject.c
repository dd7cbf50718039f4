/* scan: queries built from strings at SQL/GraphQL/SOQL/Mongo/Gatehouse sinks in JavaScript,
 * TypeScript/TSX and Python (tree-sitter), and references to Gatehouse resources that do not
 * exist or that the scanning user may not edit.
 *
 * One iterative cursor walk per file (no recursion over the tree). While walking it records
 * simple local assignments (`const q = …`, `q = …`, `q += …`) with the function scope they belong
 * to; at each sink the query argument is evaluated to one of three values:
 *   CONST   text made only of literals (safe)
 *   BUILT   text made of literals and something else: a template literal with substitutions,
 *           `+`, `.concat`, `.join`, an f-string, `%` or `.format` (reported)
 *   OPAQUE  anything else: a parameter, a call's result, a tagged template (not reported: we do
 *           not know it was built from strings, and tagged templates such as sql`…` parameterise)
 * Evaluation follows identifiers to their last assignment before the use, in the same function or
 * an enclosing one; it is bounded in depth and in work per sink and per file. */
#include "scan/scan.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <tree_sitter/api.h>

#include "policy/policy.h"

const TSLanguage *tree_sitter_javascript(void);
const TSLanguage *tree_sitter_typescript(void);
const TSLanguage *tree_sitter_tsx(void);
const TSLanguage *tree_sitter_python(void);

/* Local limits (scan-only, so kept here rather than in core/limits.h). */
enum {
	INJ_MAX_DEPTH = 64,          /* nested expressions/assignment hops followed per value */
	INJ_SINK_BUDGET = 4096,      /* nodes and assignment records looked at per sink */
	INJ_FILE_BUDGET = 1 << 23,   /* the same for the whole file: bounds pathological inputs */
	INJ_MAX_ASSIGNS = 1 << 17,   /* assignments remembered per file; later ones are not tracked */
	INJ_MAX_SCOPES = 1 << 17,    /* functions per file; deeper ones share their parent's scope */
	INJ_FRAG_MAX = 1024,         /* constant text kept per sink to recognise SQL or GraphQL */
	INJ_SNIPPET_MAX = 160,       /* bytes of source quoted in a finding */
	INJ_PARSE_TIMEOUT_US = 10 * 1000 * 1000,
};

enum val { V_OPAQUE, V_CONST, V_BUILT };

struct inj_scope {
	uint32_t parent;
};

struct inj_assign {
	const char *name;
	uint32_t nlen;
	uint32_t scope;
	uint32_t start, end;  /* bytes of the whole assignment */
	int line;
	bool aug;             /* `+=`: the previous value followed by value */
	uint32_t next;        /* the previous record in the same hash bucket, or NONE */
	TSNode value;
};

#define INJ_BUCKETS (1u << 14) /* assignment index: (scope, name) hash -> newest record */
#define INJ_NONE UINT32_MAX

struct inj {
	enum gh_lang lang;
	const char *path;
	const uint8_t *buf;
	size_t len;
	const struct gh_refs_ctx *refs;
	struct gh_findings *out;
	struct inj_scope *scopes;
	size_t nscopes, capscopes;
	struct inj_assign *as;
	size_t nas, capas;
	uint32_t *buckets;    /* INJ_BUCKETS heads of chains through inj_assign.next */
	long budget, sink_budget;
	/* per sink */
	char frag[INJ_FRAG_MAX];
	size_t nfrag;
	const char *why;
	int via_line;
	char via_name[64];
	bool via_text;        /* passed through SQLAlchemy text() */
	bool incomplete;      /* a depth or work bound was hit: the verdict is not reliable */
	/* per file */
	bool mentions_mysql, mentions_sqlite, mentions_salesforce;
	bool stop;
	int rc;
};

static const struct gh_rule_info rules[] = {
	{"sql-injection", "SQL built from strings",
	 "A SQL query's text is built from a non-constant value (template literal with ${…}, +, .concat, "
	 ".join, f-string, % or .format) and passed to a query function. A value holding a quote changes "
	 "the statement. Keep the text constant and pass values as parameters: pg $1, mysql2/sqlite ?, "
	 "DB-API %s, SQLAlchemy text(':id') with params, Prisma $queryRaw`…`, knex.raw('?', [x]).",
	 GH_SEV_HIGH},
	{"graphql-injection", "GraphQL built from strings",
	 "A GraphQL document is built from a non-constant value (in a request body's query, graphql(), "
	 "gql() or an execute call). A value can add fields, aliases or mutations. Keep the document "
	 "constant and pass values as variables.",
	 GH_SEV_HIGH},
	{"soql-injection", "SOQL built from strings",
	 "A Salesforce SOQL query (jsforce query/queryAll, simple_salesforce query/query_all) is built "
	 "from a non-constant value. A quote in the value widens the query. Use the driver's escaping "
	 "(format_soql, sobject().find()) or bind values through conditions objects.",
	 GH_SEV_HIGH},
	{"nosql-injection", "MongoDB server-side JavaScript built from strings",
	 "A MongoDB $where, $expr or $function body is a string built from a non-constant value: the "
	 "server runs it as code. Use query operators ($eq, $in, …) with values instead.",
	 GH_SEV_HIGH},
	{"gatehouse-sql-injection", "Gatehouse API request with SQL built from strings",
	 "A request to the Gatehouse API has a `sql` field built from a non-constant value. Gatehouse "
	 "enforces policy on the statement, but the app still lets its users change it. Keep `sql` "
	 "constant and send values in `params`.",
	 GH_SEV_HIGH},
	{"resource-unknown", "Reference to an unknown Gatehouse resource",
	 "The code or a connection string names a Gatehouse resource or environment that the policy "
	 "does not define; requests will be refused. Correct the name or add it to the policy.",
	 GH_SEV_MEDIUM},
	{"resource-no-edit", "Reference to a resource the user may not edit",
	 "The code or a connection string names a Gatehouse resource and environment on which the "
	 "scanning user holds less than edit; shipping it would rely on access the owner lacks. Ask an "
	 "owner for an edit grant or point the app at an environment you can edit.",
	 GH_SEV_MEDIUM},
};

size_t gh_inject_rules(const struct gh_rule_info **out)
{
	*out = rules;
	return sizeof rules / sizeof rules[0];
}

static enum gh_sev rule_sev(const char *id)
{
	return gh_rule_severity(rules, sizeof rules / sizeof rules[0], id);
}

/* The file's language from its extension; GH_LANG_NONE for anything else. */
enum gh_lang gh_lang_of(const char *path)
{
	static const struct {
		const char *ext;
		enum gh_lang lang;
	} map[] = {
		{".js", GH_LANG_JS}, {".mjs", GH_LANG_JS}, {".cjs", GH_LANG_JS}, {".jsx", GH_LANG_JS},
		{".ts", GH_LANG_TS}, {".mts", GH_LANG_TS}, {".cts", GH_LANG_TS}, {".tsx", GH_LANG_TSX},
		{".py", GH_LANG_PY},
	};
	if (!path)
		return GH_LANG_NONE;
	const char *dot = strrchr(path, '.');
	const char *slash = strrchr(path, '/');
	if (!dot || (slash && dot < slash))
		return GH_LANG_NONE;
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strcasecmp(dot, map[i].ext) == 0)
			return map[i].lang;
	return GH_LANG_NONE;
}

/* ---- small helpers over nodes ---- */

static bool is(TSNode n, const char *t)
{
	return !ts_node_is_null(n) && strcmp(ts_node_type(n), t) == 0;
}

static TSNode field(TSNode n, const char *f)
{
	if (ts_node_is_null(n))
		return n;
	return ts_node_child_by_field_name(n, f, (uint32_t)strlen(f));
}

static uint32_t nkids(TSNode n)
{
	return ts_node_is_null(n) ? 0 : ts_node_named_child_count(n);
}

static TSNode kid(TSNode n, uint32_t i)
{
	return ts_node_is_null(n) ? n : ts_node_named_child(n, i);
}

/* Named children in order through a cursor: ts_node_named_child(n, i) costs O(i), which over a
 * node with many children (a data table in an array literal) would be quadratic. */
struct kids {
	TSTreeCursor cur;
	bool ok, live;
};

static struct kids kids_of(TSNode n)
{
	struct kids k = {.ok = false, .live = false};
	if (ts_node_is_null(n))
		return k;
	k.cur = ts_tree_cursor_new(n);
	k.live = true;
	k.ok = ts_tree_cursor_goto_first_child(&k.cur);
	return k;
}

static void kids_done(struct kids *k)
{
	if (k->live)
		ts_tree_cursor_delete(&k->cur);
	k->live = k->ok = false;
}

/* The next named child into *out; false (and the cursor freed) at the end or when *budget runs
 * out (budget may be NULL). */
static bool kids_next(struct kids *k, TSNode *out, const long *budget)
{
	while (k->ok && !(budget && *budget < 0)) {
		TSNode n = ts_tree_cursor_current_node(&k->cur);
		k->ok = ts_tree_cursor_goto_next_sibling(&k->cur);
		if (ts_node_is_named(n)) {
			*out = n;
			return true;
		}
	}
	kids_done(k);
	return false;
}

/* gh_finding's strings are not const because it owns its copies; ours are borrowed. */
static char *borrow(const char *p)
{
	return (char *)(uintptr_t)p;
}

static const char *text(const struct inj *c, TSNode n, size_t *len)
{
	uint32_t s = ts_node_start_byte(n), e = ts_node_end_byte(n);
	if (s > c->len)
		s = (uint32_t)c->len;
	if (e > c->len || e < s)
		e = s;
	*len = e - s;
	return (const char *)c->buf + s;
}

static bool text_eq(const struct inj *c, TSNode n, const char *z)
{
	size_t len;
	const char *p = text(c, n, &len);
	return len == strlen(z) && memcmp(p, z, len) == 0;
}

/* Copies n's text into out (NUL-terminated, truncated to size). */
static void text_copy(const struct inj *c, TSNode n, char *out, size_t size)
{
	size_t len;
	const char *p = text(c, n, &len);
	if (len >= size)
		len = size - 1;
	memcpy(out, p, len);
	out[len] = 0;
}

/* The first named child that is not a comment. */
static TSNode first_arg(TSNode args, uint32_t skip)
{
	TSNode a;
	for (struct kids k = kids_of(args); kids_next(&k, &a, NULL);) {
		if (is(a, "comment"))
			continue;
		if (skip-- == 0) {
			kids_done(&k);
			return a;
		}
	}
	TSNode none = {0};
	return none;
}

/* Case-insensitive substring search in a bounded text (needle non-empty). The first byte is
 * matched inline; the rest is compared only there: files are searched whole. */
static bool contains_ci(const char *p, size_t len, const char *needle)
{
	size_t m = strlen(needle);
	if (m == 0 || m > len)
		return m == 0;
	unsigned char lo = (unsigned char)tolower((unsigned char)needle[0]);
	unsigned char up = (unsigned char)toupper((unsigned char)needle[0]);
	for (size_t i = 0; i + m <= len; i++) {
		unsigned char ch = (unsigned char)p[i];
		if ((ch == lo || ch == up) && strncasecmp(p + i + 1, needle + 1, m - 1) == 0)
			return true;
	}
	return false;
}

static void frag_add(struct inj *c, const char *p, size_t n)
{
	size_t room = sizeof c->frag - 1 - c->nfrag;
	if (n > room)
		n = room;
	memcpy(c->frag + c->nfrag, p, n);
	c->nfrag += n;
	c->frag[c->nfrag] = 0;
}

/* Adds the literal text of a string node (between its delimiters, outside substitutions). */
static void frag_string(struct inj *c, TSNode n, const char *sub)
{
	uint32_t s = ts_node_start_byte(n), e = ts_node_end_byte(n);
	TSNode ch;
	if (ts_node_child_count(n) && is(ts_node_child(n, 0), "string_start"))
		s = ts_node_end_byte(ts_node_child(n, 0)); /* Python: skip the prefix and quote */
	uint32_t pos = s;
	for (struct kids k = kids_of(n); kids_next(&k, &ch, NULL);) {
		if (is(ch, "string_end"))
			e = ts_node_start_byte(ch);
		if (!is(ch, sub))
			continue;
		uint32_t cs = ts_node_start_byte(ch);
		if (cs > pos && cs <= c->len)
			frag_add(c, (const char *)c->buf + pos, cs - pos);
		pos = ts_node_end_byte(ch);
	}
	if (e > pos && e <= c->len)
		frag_add(c, (const char *)c->buf + pos, e - pos);
	frag_add(c, " ", 1);
}

static enum val combine(enum val a, enum val b)
{
	if (a == V_CONST && b == V_CONST)
		return V_CONST;
	if (a == V_OPAQUE && b == V_OPAQUE)
		return V_OPAQUE;
	return V_BUILT;
}

static enum val merge(enum val a, enum val b)
{
	if (a == V_BUILT || b == V_BUILT)
		return V_BUILT;
	if (a == V_CONST && b == V_CONST)
		return V_CONST;
	return V_OPAQUE;
}

static void why(struct inj *c, const char *w)
{
	if (!c->why)
		c->why = w;
}

/* ---- evaluation ---- */

static enum val eval(struct inj *c, TSNode n, uint32_t scope, int depth);

static uint32_t bucket_of(uint32_t scope, const char *name, size_t nlen)
{
	uint32_t h = 2166136261u ^ scope * 16777619u; /* FNV-1a over the scope and the name */
	for (size_t i = 0; i < nlen; i++)
		h = (h ^ (uint8_t)name[i]) * 16777619u;
	return h & (INJ_BUCKETS - 1);
}

/* The value of name as last assigned before pos, in scope or an enclosing one. */
static enum val resolve_name(struct inj *c, const char *name, size_t nlen, uint32_t pos, uint32_t scope,
			     int depth, TSNode *node_out)
{
	if (depth > INJ_MAX_DEPTH) {
		c->incomplete = true;
		return V_OPAQUE;
	}
	for (uint32_t s = scope;; s = c->scopes[s].parent) {
		for (uint32_t i = c->buckets ? c->buckets[bucket_of(s, name, nlen)] : INJ_NONE; i != INJ_NONE;
		     i = c->as[i].next) {
			if (--c->budget < 0 || --c->sink_budget < 0)
				return V_OPAQUE;
			const struct inj_assign *a = &c->as[i];
			if (a->scope != s || a->end > pos || a->nlen != nlen || memcmp(a->name, name, nlen) != 0)
				continue;
			if (!c->via_line) {
				c->via_line = a->line;
				size_t k = nlen < sizeof c->via_name - 1 ? nlen : sizeof c->via_name - 1;
				memcpy(c->via_name, name, k);
				c->via_name[k] = 0;
			}
			if (node_out) {
				*node_out = a->aug ? (TSNode){0} : a->value;
				return V_OPAQUE;
			}
			if (a->aug) {
				enum val prev = resolve_name(c, name, nlen, a->start, s, depth + 1, NULL);
				enum val v = eval(c, a->value, s, depth + 1);
				if (combine(prev, v) == V_BUILT && (prev != V_BUILT && v != V_BUILT))
					why(c, "+= concatenation");
				return combine(prev, v);
			}
			return eval(c, a->value, a->scope, depth + 1);
		}
		if (s == 0)
			break;
	}
	return V_OPAQUE;
}

static enum val resolve(struct inj *c, TSNode id, uint32_t scope, int depth)
{
	size_t len;
	const char *p = text(c, id, &len);
	return resolve_name(c, p, len, ts_node_start_byte(id), scope, depth, NULL);
}

/* The array/list an identifier was last assigned, or the node itself. */
static TSNode resolve_node(struct inj *c, TSNode n, uint32_t scope)
{
	if (!is(n, "identifier"))
		return n;
	size_t len;
	const char *p = text(c, n, &len);
	TSNode out = {0};
	resolve_name(c, p, len, ts_node_start_byte(n), scope, 0, &out);
	return ts_node_is_null(out) ? n : out;
}

/* `.join` of an array (JS) or of a list/iterable (Python): constant when every element is. */
static enum val eval_join(struct inj *c, TSNode arr, uint32_t scope, int depth)
{
	arr = resolve_node(c, arr, scope);
	if (is(arr, "array") || is(arr, "list") || is(arr, "tuple")) {
		enum val v = V_CONST;
		TSNode el;
		for (struct kids k = kids_of(arr); kids_next(&k, &el, &c->sink_budget);) {
			if (is(el, "comment"))
				continue;
			enum val e = eval(c, el, scope, depth + 1);
			if (e != V_CONST)
				v = V_BUILT;
		}
		if (v == V_BUILT)
			why(c, ".join of non-constant values");
		return v;
	}
	why(c, ".join of non-constant values");
	return V_BUILT;
}

static bool is_plus(const struct inj *c, TSNode n)
{
	if (!is(n, c->lang == GH_LANG_PY ? "binary_operator" : "binary_expression"))
		return false;
	TSNode op = field(n, "operator");
	return !ts_node_is_null(op) && text_eq(c, op, "+");
}

/* a + b + c + …: the left-leaning chain is walked with a heap stack, not recursion, so that a
 * long concatenation costs no C stack and no depth; pieces are evaluated left to right. */
static enum val eval_plus(struct inj *c, TSNode n, uint32_t scope, int depth)
{
	size_t cnt = 0, cap = 16;
	TSNode *spine = malloc(cap * sizeof *spine);
	if (!spine)
		return V_OPAQUE;
	TSNode cur = n;
	while (is_plus(c, cur) && --c->sink_budget >= 0) {
		if (cnt == cap) {
			TSNode *v = realloc(spine, 2 * cap * sizeof *v);
			if (!v) {
				free(spine);
				return V_OPAQUE;
			}
			spine = v;
			cap *= 2;
		}
		spine[cnt++] = cur;
		cur = field(cur, "left");
	}
	enum val v = eval(c, cur, scope, depth + 1);
	bool piece_built = v == V_BUILT;
	for (size_t i = cnt; i-- > 0;) {
		enum val r = eval(c, field(spine[i], "right"), scope, depth + 1);
		piece_built |= r == V_BUILT;
		v = combine(v, r);
	}
	free(spine);
	if (v == V_BUILT && !piece_built)
		why(c, "+ concatenation");
	return v;
}

/* Alternatives (a ? b : c, a || b, tuples) : merged. */
static enum val eval_all(struct inj *c, TSNode n, uint32_t scope, int depth)
{
	enum val v = V_CONST;
	bool any = false;
	TSNode ch;
	for (struct kids k = kids_of(n); kids_next(&k, &ch, &c->sink_budget);) {
		if (is(ch, "comment"))
			continue;
		v = merge(v, eval(c, ch, scope, depth + 1));
		any = true;
	}
	return any ? v : V_CONST;
}

static enum val eval_js(struct inj *c, TSNode n, const char *t, uint32_t scope, int depth)
{
	if (!strcmp(t, "string")) {
		frag_string(c, n, "");
		return V_CONST;
	}
	if (!strcmp(t, "template_string")) {
		enum val v = V_CONST;
		TSNode ch;
		for (struct kids k = kids_of(n); kids_next(&k, &ch, &c->sink_budget);) {
			if (is(ch, "template_substitution") && eval(c, kid(ch, 0), scope, depth + 1) != V_CONST)
				v = V_BUILT;
		}
		frag_string(c, n, "template_substitution");
		if (v == V_BUILT)
			why(c, "a template literal with ${…} substitutions");
		return v;
	}
	if (!strcmp(t, "number") || !strcmp(t, "true") || !strcmp(t, "false") || !strcmp(t, "null") ||
	    !strcmp(t, "undefined"))
		return V_CONST;
	if (!strcmp(t, "identifier"))
		return resolve(c, n, scope, depth);
	if (!strcmp(t, "binary_expression")) {
		TSNode op = field(n, "operator");
		if (ts_node_is_null(op))
			return V_OPAQUE;
		if (text_eq(c, op, "+"))
			return eval_plus(c, n, scope, depth);
		if (text_eq(c, op, "||") || text_eq(c, op, "??"))
			return merge(eval(c, field(n, "left"), scope, depth + 1), eval(c, field(n, "right"), scope, depth + 1));
		return V_OPAQUE;
	}
	if (!strcmp(t, "ternary_expression"))
		return merge(eval(c, field(n, "consequence"), scope, depth + 1),
			     eval(c, field(n, "alternative"), scope, depth + 1));
	if (!strcmp(t, "parenthesized_expression") || !strcmp(t, "as_expression") || !strcmp(t, "non_null_expression") ||
	    !strcmp(t, "satisfies_expression") || !strcmp(t, "await_expression") || !strcmp(t, "type_assertion"))
		return eval(c, kid(n, 0), scope, depth + 1);
	if (!strcmp(t, "call_expression")) {
		TSNode fn = field(n, "function"), args = field(n, "arguments");
		if (!is(fn, "member_expression") || !is(args, "arguments"))
			return V_OPAQUE; /* includes tagged templates: they parameterise */
		TSNode prop = field(fn, "property"), obj = field(fn, "object");
		if (text_eq(c, prop, "concat")) {
			enum val v = eval(c, obj, scope, depth + 1), v0 = v;
			bool built = false;
			TSNode arg;
			for (struct kids k = kids_of(args); kids_next(&k, &arg, &c->sink_budget);) {
				enum val a = eval(c, arg, scope, depth + 1);
				built |= a == V_BUILT;
				v = combine(v, a);
			}
			if (v == V_BUILT && v0 != V_BUILT && !built)
				why(c, ".concat of non-constant values");
			return v;
		}
		if (text_eq(c, prop, "join")) {
			TSNode sep = first_arg(args, 0);
			if (!ts_node_is_null(sep))
				eval(c, sep, scope, depth + 1);
			return eval_join(c, obj, scope, depth);
		}
		if (text_eq(c, prop, "trim") || text_eq(c, prop, "toString") || text_eq(c, prop, "toLowerCase") ||
		    text_eq(c, prop, "toUpperCase"))
			return eval(c, obj, scope, depth + 1);
		return V_OPAQUE;
	}
	return V_OPAQUE;
}

static enum val eval_py(struct inj *c, TSNode n, const char *t, uint32_t scope, int depth)
{
	if (!strcmp(t, "string")) {
		TSNode start = ts_node_child(n, 0);
		size_t plen;
		const char *prefix = text(c, start, &plen);
		bool f = is(start, "string_start") && (memchr(prefix, 'f', plen) || memchr(prefix, 'F', plen));
		enum val v = V_CONST;
		TSNode ch;
		for (struct kids k = kids_of(f ? n : (TSNode){0}); kids_next(&k, &ch, &c->sink_budget);) {
			if (is(ch, "interpolation")) {
				TSNode e = field(ch, "expression");
				if (ts_node_is_null(e))
					e = kid(ch, 0);
				if (eval(c, e, scope, depth + 1) != V_CONST)
					v = V_BUILT;
			}
		}
		frag_string(c, n, "interpolation");
		if (v == V_BUILT)
			why(c, "an f-string with {…} fields");
		return v;
	}
	if (!strcmp(t, "concatenated_string")) {
		enum val v = V_CONST;
		TSNode ch;
		for (struct kids k = kids_of(n); kids_next(&k, &ch, &c->sink_budget);)
			v = combine(v, eval(c, ch, scope, depth + 1));
		return v;
	}
	if (!strcmp(t, "integer") || !strcmp(t, "float") || !strcmp(t, "true") || !strcmp(t, "false") ||
	    !strcmp(t, "none"))
		return V_CONST;
	if (!strcmp(t, "identifier"))
		return resolve(c, n, scope, depth);
	if (!strcmp(t, "binary_operator")) {
		TSNode op = field(n, "operator");
		if (ts_node_is_null(op))
			return V_OPAQUE;
		if (text_eq(c, op, "+"))
			return eval_plus(c, n, scope, depth);
		if (text_eq(c, op, "%")) {
			enum val l = eval(c, field(n, "left"), scope, depth + 1);
			if (l != V_CONST)
				return l == V_BUILT ? V_BUILT : V_OPAQUE;
			if (eval(c, field(n, "right"), scope, depth + 1) == V_CONST)
				return V_CONST;
			why(c, "% formatting");
			return V_BUILT;
		}
		return V_OPAQUE;
	}
	if (!strcmp(t, "boolean_operator"))
		return merge(eval(c, field(n, "left"), scope, depth + 1), eval(c, field(n, "right"), scope, depth + 1));
	if (!strcmp(t, "conditional_expression"))
		return merge(eval(c, kid(n, 0), scope, depth + 1),
			     eval(c, kid(n, 2), scope, depth + 1));
	if (!strcmp(t, "parenthesized_expression") || !strcmp(t, "await"))
		return eval(c, kid(n, 0), scope, depth + 1);
	if (!strcmp(t, "tuple") || !strcmp(t, "list"))
		return eval_all(c, n, scope, depth);
	if (!strcmp(t, "call")) {
		TSNode fn = field(n, "function"), args = field(n, "arguments");
		if (!is(args, "argument_list"))
			return V_OPAQUE;
		TSNode name = is(fn, "attribute") ? field(fn, "attribute") : fn;
		if (is(fn, "attribute") && text_eq(c, name, "format")) {
			enum val v = eval(c, field(fn, "object"), scope, depth + 1);
			bool dyn = false;
			TSNode a;
			for (struct kids k = kids_of(args); kids_next(&k, &a, &c->sink_budget);) {
				if (is(a, "keyword_argument"))
					a = field(a, "value");
				if (eval(c, a, scope, depth + 1) != V_CONST)
					dyn = true;
			}
			if (v == V_CONST && dyn) {
				why(c, ".format() with non-constant values");
				return V_BUILT;
			}
			return v;
		}
		if (is(fn, "attribute") && text_eq(c, name, "join")) {
			eval(c, field(fn, "object"), scope, depth + 1);
			TSNode a = first_arg(args, 0);
			return ts_node_is_null(a) ? V_OPAQUE : eval_join(c, a, scope, depth);
		}
		if (is(fn, "attribute") && (text_eq(c, name, "strip") || text_eq(c, name, "lower") || text_eq(c, name, "upper")))
			return eval(c, field(fn, "object"), scope, depth + 1);
		if (text_eq(c, name, "text") && (is(fn, "identifier") || is(fn, "attribute"))) {
			c->via_text = true; /* SQLAlchemy text(): the SQL is its argument */
			return eval(c, first_arg(args, 0), scope, depth + 1);
		}
		return V_OPAQUE;
	}
	return V_OPAQUE;
}

static enum val eval(struct inj *c, TSNode n, uint32_t scope, int depth)
{
	if (ts_node_is_null(n))
		return V_OPAQUE;
	if (depth > INJ_MAX_DEPTH || --c->sink_budget < 0 || --c->budget < 0) {
		c->incomplete = true;
		return V_OPAQUE;
	}
	const char *t = ts_node_type(n);
	return c->lang == GH_LANG_PY ? eval_py(c, n, t, scope, depth) : eval_js(c, n, t, scope, depth);
}

/* Starts the evaluation of one sink's argument. */
static enum val eval_sink(struct inj *c, TSNode n, uint32_t scope)
{
	c->nfrag = 0;
	c->frag[0] = 0;
	c->why = NULL;
	c->via_line = 0;
	c->via_name[0] = 0;
	c->via_text = false;
	c->incomplete = false;
	c->sink_budget = INJ_SINK_BUDGET;
	enum val v = eval(c, n, scope, 0);
	/* out of budget: parts were not looked at, so the verdict is unknown (not reported) */
	return c->incomplete || c->sink_budget < 0 || c->budget < 0 ? V_OPAQUE : v;
}

/* ---- what the constant text looks like ---- */

static bool word_at(const char *p, size_t len, size_t i, const char *w)
{
	size_t m = strlen(w);
	if (i + m > len || strncasecmp(p + i, w, m) != 0)
		return false;
	if (i > 0 && (isalnum((unsigned char)p[i - 1]) || p[i - 1] == '_'))
		return false;
	return i + m == len || !(isalnum((unsigned char)p[i + m]) || p[i + m] == '_');
}

static bool looks_sql(const struct inj *c)
{
	static const char *const kw[] = {"select", "insert", "update", "delete", "from", "where", "create",
					 "drop", "alter", "truncate", "merge", "values", "pragma", "grant", "replace"};
	for (size_t i = 0; i < c->nfrag; i++)
		for (size_t k = 0; k < sizeof kw / sizeof kw[0]; k++)
			if (word_at(c->frag, c->nfrag, i, kw[k]))
				return true;
	return false;
}

static bool looks_graphql(const struct inj *c)
{
	size_t i = 0;
	while (i < c->nfrag && (isspace((unsigned char)c->frag[i]) || c->frag[i] == '"' || c->frag[i] == '\'' ||
				c->frag[i] == '`'))
		i++;
	if (i < c->nfrag && c->frag[i] == '{')
		return true;
	return word_at(c->frag, c->nfrag, i, "query") || word_at(c->frag, c->nfrag, i, "mutation") ||
	       word_at(c->frag, c->nfrag, i, "subscription") || word_at(c->frag, c->nfrag, i, "fragment");
}

/* ---- findings ---- */

static void add(struct inj *c, const char *rule, TSNode at, const char *message, const char *fix)
{
	if (c->stop)
		return;
	TSPoint s = ts_node_start_point(at), e = ts_node_end_point(at);
	size_t len;
	const char *p = text(c, at, &len);
	char snip[INJ_SNIPPET_MAX + 4];
	size_t k = 0;
	while (k < len && k < INJ_SNIPPET_MAX && p[k] != '\n' && p[k] != '\r')
		k++;
	bool cut = k < len;
	while (cut && k > 0 && ((unsigned char)p[k] & 0xC0) == 0x80)
		k--; /* do not split a UTF-8 sequence */
	memcpy(snip, p, k);
	if (cut)
		memcpy(snip + k, "\xe2\x80\xa6", 4);
	else
		snip[k] = 0;
	struct gh_finding f = {
		.rule = rule,
		.severity = rule_sev(rule),
		.path = borrow(c->path),
		.line = (int)s.row + 1,
		.col = (int)s.column + 1,
		.end_line = (int)e.row + 1,
		.end_col = (int)e.column + 1,
		.message = borrow(message),
		.snippet = snip,
		.fix = borrow(fix),
	};
	int rc = gh_findings_add(c->out, &f);
	if (rc == GH_ETOOBIG)
		c->stop = true; /* the list says it was truncated */
	else if (rc) {
		c->rc = rc;
		c->stop = true;
	}
}

/* Reports an injection at node: what sink, why the text is unsafe, and the safe rewrite. */
static void report(struct inj *c, const char *rule, TSNode at, const char *sink, const char *fix)
{
	char msg[512];
	char via[128] = "";
	if (c->via_line)
		snprintf(via, sizeof via, " (through `%s`, assigned on line %d)", c->via_name, c->via_line);
	const char *what = !strcmp(rule, "graphql-injection") ? "GraphQL document"
			   : !strcmp(rule, "soql-injection")  ? "SOQL query"
			   : !strcmp(rule, "nosql-injection") ? "MongoDB server-side JavaScript"
							      : "SQL text";
	snprintf(msg, sizeof msg,
		 "%s passed to %s is built from a non-constant value by %s%s; a value holding a quote or "
		 "operator changes what runs",
		 what, sink, c->why ? c->why : "concatenation", via);
	add(c, rule, at, msg, fix);
}

/* ---- sinks ---- */

static const char *sql_fix(struct inj *c, const char *method, const char *recv)
{
	bool py = c->lang == GH_LANG_PY;
	if (!strcmp(method, "$queryRawUnsafe") || !strcmp(method, "$executeRawUnsafe"))
		return "Prisma: use the tagged template prisma.$queryRaw`SELECT … WHERE id = ${id}` (or $executeRaw`…`); "
		       "its ${…} values are sent as parameters";
	if (!strcmp(method, "raw") && strstr(recv, "Prisma"))
		return "Prisma: build the fragment with Prisma.sql`… WHERE id = ${id}` (parameterised), not Prisma.raw";
	if (!strcmp(method, "raw"))
		return py ? "Django: Model.objects.raw('SELECT … WHERE id = %s', [id])"
			  : "knex: knex.raw('SELECT … WHERE id = ?', [id])";
	if (!strcmp(method, "unsafe"))
		return "postgres.js: use the tagged template sql`SELECT … WHERE id = ${id}`, or sql.unsafe('… WHERE id = $1', [id])";
	if (contains_ci(recv, strlen(recv), "sequelize"))
		return "Sequelize: sequelize.query('SELECT … WHERE id = :id', { replacements: { id } })";
	if (py && (c->via_text || contains_ci(recv, strlen(recv), "session") || !strcmp(method, "exec_driver_sql")))
		return "SQLAlchemy: session.execute(text('SELECT … WHERE id = :id'), {'id': id})";
	if (py && (!strcmp(method, "read_sql") || !strcmp(method, "read_sql_query")))
		return "pandas: pd.read_sql('SELECT … WHERE id = %s', conn, params=(id,)) (the driver's placeholder style)";
	if (py && !strcmp(method, "executescript"))
		return "sqlite3: executescript takes no parameters; use cursor.execute('SELECT … WHERE id = ?', (id,))";
	if (py)
		return c->mentions_sqlite ? "sqlite3 (DB-API): cursor.execute('SELECT … WHERE id = ?', (id,))"
					  : "Python DB-API: cursor.execute('SELECT … WHERE id = %s', (id,))";
	if (!strcmp(method, "prepare") || !strcmp(method, "run") || !strcmp(method, "all") || !strcmp(method, "get") ||
	    !strcmp(method, "exec"))
		return "sqlite3/better-sqlite3: db.prepare('SELECT … WHERE id = ?').get(id), or db.all('SELECT … WHERE id = ?', [id], cb); "
		       "exec takes no parameters";
	if (!strcmp(method, "execute") || c->mentions_mysql)
		return "mysql2: connection.execute('SELECT … WHERE id = ?', [id])";
	return "pg: client.query('SELECT … WHERE id = $1', [id])";
}

static const char *soql_fix(const struct inj *c)
{
	return c->lang == GH_LANG_PY
		       ? "simple_salesforce: sf.query(format_soql('SELECT Id FROM Account WHERE Name = {}', name)), which escapes values"
		       : "jsforce: conn.sobject('Account').find({ Name: name }, ['Id']) (values escaped by jsforce), or escape "
			 "quotes and backslashes in every value before it enters the SOQL";
}

static const char *graphql_fix(const struct inj *c)
{
	return c->lang == GH_LANG_PY
		       ? "declare variables in a constant document and pass the values separately: "
			 "{\"query\": \"query($id: ID!) { user(id: $id) { name } }\", \"variables\": {\"id\": id}}"
		       : "declare variables in a constant document and pass the values separately: "
			 "{ query: 'query($id: ID!) { user(id: $id) { name } }', variables: { id } }";
}

static const char nosql_fix[] =
	"avoid $where and string code in $expr/$function: use query operators with values, e.g. "
	"{ name: { $eq: name } } or { $expr: { $eq: ['$name', name] } }";
static const char gatehouse_fix[] =
	"keep `sql` constant and send the values in `params`: "
	"{ resource, environment, sql: 'SELECT … WHERE id = $1', params: [id] }";

static bool is_sql_method(const char *m)
{
	static const char *const names[] = {"query", "execute", "executemany", "executescript", "raw", "unsafe",
					    "$queryRawUnsafe", "$executeRawUnsafe", "prepare", "run", "all", "get",
					    "exec", "queryAll", "query_all", "queryMore", "exec_driver_sql",
					    "read_sql", "read_sql_query"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(m, names[i]))
			return true;
	return false;
}

/* run/all/get/exec are everyday names (Map.get, RegExp.exec, Promise.all, axios.get): they are
 * sinks only on a receiver that looks like a database handle. */
static bool generic_ok(const char *method, const char *recv)
{
	if (strcmp(method, "run") && strcmp(method, "all") && strcmp(method, "get") && strcmp(method, "exec"))
		return true;
	size_t n = strlen(recv);
	return contains_ci(recv, n, "db") || contains_ci(recv, n, "database") || contains_ci(recv, n, "sqlite") ||
	       contains_ci(recv, n, "conn") || contains_ci(recv, n, "stmt") || contains_ci(recv, n, "statement");
}

static bool is_salesforce(const struct inj *c, const char *method, const char *recv)
{
	if (c->mentions_salesforce)
		return true; /* a file using jsforce or simple_salesforce */
	if (!strcmp(method, "queryAll") || !strcmp(method, "query_all") || !strcmp(method, "queryMore"))
		return true;
	size_t n = strlen(recv);
	const char *last = strrchr(recv, '.');
	last = last ? last + 1 : recv;
	return !strcasecmp(last, "sf") || contains_ci(recv, n, "salesforce") || contains_ci(recv, n, "force");
}

static void check_refs_pairs(struct inj *c, TSNode container, bool kwargs);
static void check_gatehouse_kwargs(struct inj *c, TSNode args, uint32_t scope);

/* A call: query sinks (first argument), graphql()/gql(), and Gatehouse keyword arguments. */
static void check_call(struct inj *c, TSNode n, uint32_t scope)
{
	bool py = c->lang == GH_LANG_PY;
	TSNode fn = field(n, "function"), args = field(n, "arguments");
	if (ts_node_is_null(fn) || ts_node_is_null(args) || !is(args, py ? "argument_list" : "arguments"))
		return; /* tagged template (sql`…`, Prisma.sql`…`, $queryRaw`…`): parameterised */
	if (py && c->refs && c->refs->policy)
		check_refs_pairs(c, args, true);
	if (py)
		check_gatehouse_kwargs(c, args, scope);
	/* TypeScript parses `await a.b<T>(…)` as a call of (await a.b) */
	for (int i = 0; i < 4 && (is(fn, "await_expression") || is(fn, "non_null_expression") ||
				  is(fn, "parenthesized_expression")); i++)
		fn = kid(fn, 0);
	char method[64] = "", recv[128] = "";
	if (is(fn, "member_expression") || is(fn, "attribute")) {
		text_copy(c, field(fn, py ? "attribute" : "property"), method, sizeof method);
		text_copy(c, field(fn, "object"), recv, sizeof recv);
	} else if (is(fn, "identifier")) {
		text_copy(c, fn, method, sizeof method);
	} else {
		return;
	}
	if (!strcmp(method, "graphql") || !strcmp(method, "graphql_sync") || !strcmp(method, "gql")) {
		TSNode a = first_arg(args, 0);
		if (strcmp(method, "gql") != 0) {
			if (is(a, "object")) {
				TSNode src = {0};
				TSNode p;
				for (struct kids k = kids_of(a); kids_next(&k, &p, NULL);) {
					if (is(p, "pair") && text_eq(c, field(p, "key"), "source"))
						src = field(p, "value");
				}
				a = src;
			} else {
				a = first_arg(args, 1);
			}
		}
		char sink[80];
		snprintf(sink, sizeof sink, "%s()", method);
		if (!ts_node_is_null(a) && !is(a, "keyword_argument") && eval_sink(c, a, scope) == V_BUILT)
			report(c, "graphql-injection", a, sink, graphql_fix(c));
		return;
	}
	if (!is_sql_method(method) || !generic_ok(method, recv))
		return;
	TSNode a = first_arg(args, 0);
	if (ts_node_is_null(a) || is(a, "keyword_argument") || eval_sink(c, a, scope) != V_BUILT)
		return;
	char sink[200];
	snprintf(sink, sizeof sink, "%s%s%s()", recv, recv[0] ? "." : "", method);
	bool strict = !strcmp(method, "$queryRawUnsafe") || !strcmp(method, "$executeRawUnsafe");
	bool sqlish = looks_sql(c);
	if (sqlish && is_salesforce(c, method, recv))
		report(c, "soql-injection", a, sink, soql_fix(c));
	else if (sqlish || strict)
		report(c, "sql-injection", a, sink, sql_fix(c, method, recv));
	else if (looks_graphql(c))
		report(c, "graphql-injection", a, sink, graphql_fix(c));
}

/* The key of a pair as text: an identifier or a string's contents. */
static bool pair_key(const struct inj *c, TSNode pair, char *out, size_t size)
{
	TSNode k = field(pair, "key");
	if (ts_node_is_null(k))
		return false;
	size_t len;
	const char *p = text(c, k, &len);
	if (is(k, "string")) {
		if (len < 2)
			return false;
		/* skip a Python prefix (r, b, u) and the quotes */
		size_t i = 0;
		while (i < len && p[i] != '"' && p[i] != '\'')
			i++;
		if (i >= len)
			return false;
		char q = p[i];
		size_t j = i + 1;
		while (j < len && p[j] != q)
			j++;
		p += i + 1;
		len = j - i - 1;
	} else if (!is(k, "property_identifier") && !is(k, "identifier")) {
		return false;
	}
	if (len >= size)
		return false;
	memcpy(out, p, len);
	out[len] = 0;
	return true;
}

/* A pair in an object literal or dict: Gatehouse `sql`, GraphQL `query`, Mongo `$where`/`$expr`. */
static void check_pair(struct inj *c, TSNode pair, uint32_t scope)
{
	char key[32];
	if (!pair_key(c, pair, key, sizeof key))
		return;
	TSNode v = field(pair, "value");
	if (ts_node_is_null(v))
		return;
	if (!strcmp(key, "sql")) {
		if (eval_sink(c, v, scope) == V_BUILT)
			report(c, "gatehouse-sql-injection", v, "a Gatehouse API request's `sql`", gatehouse_fix);
	} else if (!strcmp(key, "query")) {
		if (eval_sink(c, v, scope) != V_BUILT)
			return;
		if (looks_graphql(c) && !looks_sql(c))
			report(c, "graphql-injection", v, "a GraphQL request body's `query`", graphql_fix(c));
		else if (looks_sql(c))
			report(c, "sql-injection", v, "a request's `query`", sql_fix(c, "query", ""));
	} else if (!strcmp(key, "$where") || !strcmp(key, "$expr")) {
		if (eval_sink(c, v, scope) == V_BUILT)
			report(c, "nosql-injection", v, key, nosql_fix);
	} else if (!strcmp(key, "$function") || !strcmp(key, "$accumulator")) {
		/* { $function: { body: "…" + x, … } }: the body is code the server runs */
		if (!is(v, "object") && !is(v, "dictionary"))
			return;
		TSNode p;
		char k2[16];
		for (struct kids k = kids_of(v); kids_next(&k, &p, NULL);) {
			TSNode body = field(p, "value");
			if (is(p, "pair") && pair_key(c, p, k2, sizeof k2) && !strcmp(k2, "body") &&
			    eval_sink(c, body, scope) == V_BUILT)
				report(c, "nosql-injection", body, key, nosql_fix);
		}
	}
}

/* A Python Gatehouse client call: f(resource=…, environment=…, sql=<built>). */
static void check_gatehouse_kwargs(struct inj *c, TSNode args, uint32_t scope)
{
	TSNode p, sql = {0};
	bool resource = false;
	char key[16];
	for (struct kids k = kids_of(args); kids_next(&k, &p, NULL);) {
		if (!is(p, "keyword_argument"))
			continue;
		text_copy(c, field(p, "name"), key, sizeof key);
		if (!strcmp(key, "resource"))
			resource = true;
		else if (!strcmp(key, "sql"))
			sql = field(p, "value");
	}
	if (resource && !ts_node_is_null(sql) && eval_sink(c, sql, scope) == V_BUILT)
		report(c, "gatehouse-sql-injection", sql, "a Gatehouse API request's `sql`",
		       "keep `sql` constant and send the values in `params`: "
		       "query(resource=…, environment=…, sql='SELECT … WHERE id = $1', params=[id])");
}

/* ---- resource references ---- */

/* Checks one (resource, environment) reference against the policy and reports at node. */
static void check_ref(struct inj *c, const char *res, const char *env, TSNode at, int line, int col, int end_col,
		      const char *snippet);

/* String contents of a literal without substitutions; false for anything else. */
static bool const_string(const struct inj *c, TSNode v, char *out, size_t size)
{
	if (!is(v, "string") && !(is(v, "template_string") && nkids(v) <= 1))
		return false;
	TSNode ch;
	for (struct kids k = kids_of(v); kids_next(&k, &ch, NULL);) {
		if (!is(ch, "string_fragment") && !is(ch, "string_content") && !is(ch, "string_start") &&
		    !is(ch, "string_end")) {
			kids_done(&k);
			return false;
		}
	}
	size_t len;
	const char *p = text(c, v, &len);
	size_t i = 0;
	while (i < len && p[i] != '"' && p[i] != '\'' && p[i] != '`')
		i++;
	if (i >= len)
		return false;
	char q = p[i];
	size_t qn = 1;
	while (i + qn < len && p[i + qn] == q && qn < 3)
		qn++; /* Python triple quotes */
	if (qn == 2)
		qn = 1; /* "" is an empty string */
	if (len < i + 2 * qn)
		return false;
	size_t n = len - i - 2 * qn;
	if (n >= size)
		return false;
	memcpy(out, p + i + qn, n);
	out[n] = 0;
	return true;
}

/* Objects, dicts and keyword arguments holding both `resource` and `environment` strings. */
static void check_refs_pairs(struct inj *c, TSNode container, bool kwargs)
{
	char res[GH_NAME_MAX + 1] = "", env[GH_NAME_MAX + 1] = "";
	TSNode at = {0};
	bool hr = false, he = false;
	TSNode p;
	for (struct kids k = kids_of(container); kids_next(&k, &p, NULL);) {
		char key[16];
		TSNode v;
		if (kwargs) {
			if (!is(p, "keyword_argument"))
				continue;
			TSNode name = field(p, "name");
			if (ts_node_is_null(name))
				continue;
			text_copy(c, name, key, sizeof key);
			v = field(p, "value");
		} else {
			if (!is(p, "pair") || !pair_key(c, p, key, sizeof key))
				continue;
			v = field(p, "value");
		}
		if (ts_node_is_null(v))
			continue;
		if (!strcmp(key, "resource") && const_string(c, v, res, sizeof res)) {
			hr = true;
			at = v;
		} else if (!strcmp(key, "environment") && const_string(c, v, env, sizeof env)) {
			he = true;
		}
	}
	if (hr && he)
		check_ref(c, res, env, at, 0, 0, 0, NULL);
}

static void check_ref(struct inj *c, const char *res, const char *env, TSNode at, int line, int col, int end_col,
		      const char *snippet)
{
	const struct gh_policy *p = c->refs->policy;
	char msg[512], fix[512];
	const char *rule = NULL;
	const struct gh_policy_resource *r = gh_config_resource(p, res);
	if (!r) {
		rule = "resource-unknown";
		snprintf(msg, sizeof msg, "resource \"%s\" (environment \"%s\") is not defined in the policy; requests to it are refused",
			 res, env);
		snprintf(fix, sizeof fix, "correct the resource name, or define resource \"%s\" with environment \"%s\" in the policy", res, env);
	} else if (!gh_config_resenv(r, env)) {
		rule = "resource-unknown";
		snprintf(msg, sizeof msg, "resource \"%s\" has no environment \"%s\" in the policy; requests to it are refused", res, env);
		snprintf(fix, sizeof fix, "use an environment the policy defines for \"%s\", or add \"%s\" to that resource", res, env);
	} else if (c->refs->user && gh_policy_level(p, c->refs->user, res, env, NULL, 0) < GH_ACCESS_EDIT) {
		rule = "resource-no-edit";
		snprintf(msg, sizeof msg, "user \"%s\" does not hold edit on resource \"%s\" in environment \"%s\"",
			 c->refs->user, res, env);
		snprintf(fix, sizeof fix, "ask an owner of \"%s\" for an edit grant in \"%s\", or point the app at an environment you can edit",
			 res, env);
	}
	if (!rule)
		return;
	if (!ts_node_is_null(at)) {
		add(c, rule, at, msg, fix);
		return;
	}
	if (c->stop)
		return;
	struct gh_finding f = {
		.rule = rule, .severity = rule_sev(rule), .path = borrow(c->path), .line = line, .col = col,
		.end_line = line, .end_col = end_col, .message = msg, .snippet = borrow(snippet), .fix = fix,
	};
	int rc = gh_findings_add(c->out, &f);
	if (rc == GH_ETOOBIG)
		c->stop = true;
	else if (rc) {
		c->rc = rc;
		c->stop = true;
	}
}

/* ---- the walk ---- */

static bool is_scope(enum gh_lang lang, const char *t)
{
	if (lang == GH_LANG_PY)
		return !strcmp(t, "function_definition") || !strcmp(t, "lambda");
	return !strcmp(t, "function_declaration") || !strcmp(t, "function_expression") || !strcmp(t, "arrow_function") ||
	       !strcmp(t, "method_definition") || !strcmp(t, "generator_function_declaration") ||
	       !strcmp(t, "generator_function") || !strcmp(t, "function");
}

static void remember(struct inj *c, TSNode whole, TSNode name, TSNode value, uint32_t scope, bool aug)
{
	if (!is(name, "identifier") || ts_node_is_null(value) || c->nas >= INJ_MAX_ASSIGNS)
		return;
	if (c->nas == c->capas) {
		size_t cap = c->capas ? c->capas * 2 : 64;
		struct inj_assign *v = realloc(c->as, cap * sizeof *v);
		if (!v) {
			c->rc = GH_ENOMEM;
			c->stop = true;
			return;
		}
		c->as = v;
		c->capas = cap;
	}
	if (!c->buckets) {
		c->buckets = malloc(INJ_BUCKETS * sizeof *c->buckets);
		if (!c->buckets) {
			c->rc = GH_ENOMEM;
			c->stop = true;
			return;
		}
		memset(c->buckets, 0xff, INJ_BUCKETS * sizeof *c->buckets); /* INJ_NONE */
	}
	size_t len;
	const char *p = text(c, name, &len);
	uint32_t b = bucket_of(scope, p, len);
	c->as[c->nas] = (struct inj_assign){
		.name = p, .nlen = (uint32_t)len, .scope = scope, .start = ts_node_start_byte(whole),
		.end = ts_node_end_byte(whole), .line = (int)ts_node_start_point(whole).row + 1, .aug = aug,
		.next = c->buckets[b], .value = value,
	};
	c->buckets[b] = (uint32_t)c->nas++;
}

static void visit(struct inj *c, TSNode n, uint32_t scope)
{
	const char *t = ts_node_type(n);
	bool py = c->lang == GH_LANG_PY;
	if (!py && !strcmp(t, "variable_declarator")) {
		remember(c, n, field(n, "name"), field(n, "value"), scope, false);
	} else if ((!py && !strcmp(t, "assignment_expression")) || (py && !strcmp(t, "assignment"))) {
		remember(c, n, field(n, "left"), field(n, "right"), scope, false);
	} else if ((!py && !strcmp(t, "augmented_assignment_expression")) || (py && !strcmp(t, "augmented_assignment"))) {
		TSNode op = field(n, "operator");
		if (!ts_node_is_null(op) && text_eq(c, op, "+="))
			remember(c, n, field(n, "left"), field(n, "right"), scope, true);
	} else if (!strcmp(t, py ? "call" : "call_expression")) {
		check_call(c, n, scope);
	} else if (!strcmp(t, "pair")) {
		check_pair(c, n, scope);
	} else if (c->refs && c->refs->policy && !strcmp(t, py ? "dictionary" : "object")) {
		check_refs_pairs(c, n, false);
	}
}

/* Walks the whole tree once, iteratively, keeping a stack of function scopes. */
static void walk(struct inj *c, TSTree *tree)
{
	TSNode root = ts_tree_root_node(tree);
	TSTreeCursor cur = ts_tree_cursor_new(root);
	/* stack of (depth, scope) for the functions enclosing the current node */
	struct {
		uint32_t depth, scope;
	} *stack = NULL;
	size_t nstack = 0, capstack = 0;
	uint32_t depth = 0, scope = 0;
	c->scopes = malloc(sizeof *c->scopes);
	if (!c->scopes) {
		c->rc = GH_ENOMEM;
		goto done;
	}
	c->scopes[0].parent = 0;
	c->nscopes = c->capscopes = 1;
	for (;;) {
		TSNode n = ts_tree_cursor_current_node(&cur);
		while (nstack && stack[nstack - 1].depth >= depth)
			nstack--;
		scope = nstack ? stack[nstack - 1].scope : 0;
		if (is_scope(c->lang, ts_node_type(n)) && c->nscopes < INJ_MAX_SCOPES) {
			if (c->nscopes == c->capscopes) {
				size_t cap = c->capscopes * 2;
				struct inj_scope *v = realloc(c->scopes, cap * sizeof *v);
				if (!v) {
					c->rc = GH_ENOMEM;
					goto done;
				}
				c->scopes = v;
				c->capscopes = cap;
			}
			if (nstack == capstack) {
				size_t cap = capstack ? capstack * 2 : 32;
				void *v = realloc(stack, cap * sizeof *stack);
				if (!v) {
					c->rc = GH_ENOMEM;
					goto done;
				}
				stack = v;
				capstack = cap;
			}
			c->scopes[c->nscopes].parent = scope;
			scope = (uint32_t)c->nscopes++;
			stack[nstack].depth = depth;
			stack[nstack].scope = scope;
			nstack++;
		}
		visit(c, n, scope);
		if (c->stop)
			break;
		if (ts_tree_cursor_goto_first_child(&cur)) {
			depth++;
			continue;
		}
		while (!ts_tree_cursor_goto_next_sibling(&cur)) {
			if (!ts_tree_cursor_goto_parent(&cur))
				goto done;
			depth--;
		}
	}
done:
	free(stack);
	ts_tree_cursor_delete(&cur);
}

int gh_inject_scan(enum gh_lang lang, const char *path, const uint8_t *buf, size_t len,
		   const struct gh_refs_ctx *refs, struct gh_findings *out)
{
	const TSLanguage *l;
	switch (lang) {
	case GH_LANG_JS: l = tree_sitter_javascript(); break;
	case GH_LANG_TS: l = tree_sitter_typescript(); break;
	case GH_LANG_TSX: l = tree_sitter_tsx(); break;
	case GH_LANG_PY: l = tree_sitter_python(); break;
	default: return GH_EINVAL;
	}
	if (len > UINT32_MAX)
		return GH_ETOOBIG;
	struct inj *c = calloc(1, sizeof *c);
	if (!c)
		return GH_ENOMEM;
	c->lang = lang;
	c->path = path;
	c->buf = buf;
	c->len = len;
	c->refs = refs;
	c->out = out;
	c->budget = INJ_FILE_BUDGET;
	c->mentions_mysql = contains_ci((const char *)buf, len < 65536 ? len : 65536, "mysql");
	c->mentions_sqlite = contains_ci((const char *)buf, len < 65536 ? len : 65536, "sqlite");
	c->mentions_salesforce = contains_ci((const char *)buf, len < 65536 ? len : 65536, "jsforce") ||
				 contains_ci((const char *)buf, len < 65536 ? len : 65536, "simple_salesforce");
	int rc = 0;
	TSTree *tree = NULL;
	TSParser *parser = ts_parser_new();
	if (!parser) {
		rc = GH_ENOMEM;
		goto out;
	}
	if (!ts_parser_set_language(parser, l)) {
		rc = GH_EINTERNAL;
		goto out;
	}
	ts_parser_set_timeout_micros(parser, INJ_PARSE_TIMEOUT_US);
	tree = ts_parser_parse_string(parser, NULL, (const char *)buf, (uint32_t)len);
	if (!tree) {
		rc = GH_ETIMEOUT;
		goto out;
	}
	walk(c, tree);
	rc = c->rc;
out:
	if (tree)
		ts_tree_delete(tree);
	if (parser)
		ts_parser_delete(parser);
	free(c->as);
	free(c->buckets);
	free(c->scopes);
	free(c);
	return rc;
}

/* ---- connection strings in any text ---- */

static bool name_char(uint8_t ch)
{
	return isalnum(ch) || ch == '_' || ch == '-';
}

/* Reads NAME.ENV at buf[i]; returns the end offset, or 0 when it is not that shape. */
static size_t read_ref(const uint8_t *buf, size_t len, size_t i, char *res, char *env)
{
	size_t s = i;
	while (i < len && name_char(buf[i]) && i - s < GH_NAME_MAX)
		i++;
	if (i == s || i >= len || buf[i] != '.')
		return 0;
	size_t rl = i - s;
	size_t e = ++i;
	while (i < len && name_char(buf[i]) && i - e < GH_NAME_MAX)
		i++;
	if (i == e || (i < len && (name_char(buf[i]) || buf[i] == '.')))
		return 0;
	memcpy(res, buf + s, rl);
	res[rl] = 0;
	memcpy(env, buf + e, i - e);
	env[i - e] = 0;
	return i;
}

int gh_refs_scan_text(const char *path, const uint8_t *buf, size_t len, const struct gh_refs_ctx *refs,
		      struct gh_findings *out)
{
	if (!refs || !refs->policy)
		return 0;
	struct inj c = {.path = path, .buf = buf, .len = len, .refs = refs, .out = out};
	int line = 1;
	size_t line_start = 0, scanned = 0;
	for (size_t i = 0; i < len && !c.stop; i++) {
		size_t at = 0;
		if (buf[i] == 'd' && len - i > 6 && memcmp(buf + i, "dbname", 6) == 0 &&
		    (i == 0 || !name_char(buf[i - 1]))) {
			size_t j = i + 6;
			while (j < len && j - i < 32 && buf[j] == ' ')
				j++;
			if (j >= len || buf[j] != '=')
				continue;
			at = j + 1;
			while (at < len && at - j < 32 && buf[at] == ' ')
				at++;
			if (at < len && (buf[at] == '\'' || buf[at] == '"'))
				at++;
		} else if (buf[i] == 'p' && len - i > 11 &&
			   (memcmp(buf + i, "postgres://", 11) == 0 || (len - i > 13 && memcmp(buf + i, "postgresql://", 13) == 0))) {
			size_t j = i + (buf[i + 8] == ':' ? 11 : 13);
			while (j < len && buf[j] != '/' && buf[j] != '?' && !isspace(buf[j]) && buf[j] != '"' &&
			       buf[j] != '\'' && buf[j] != '`' && j - i < 1024)
				j++;
			if (j < len && buf[j] == '/')
				at = j + 1;
		}
		if (!at)
			continue;
		char res[GH_NAME_MAX + 1], env[GH_NAME_MAX + 1];
		size_t end = read_ref(buf, len, at, res, env);
		if (!end)
			continue;
		for (; scanned < at; scanned++)
			if (buf[scanned] == '\n') {
				line++;
				line_start = scanned + 1;
			}
		char snip[2 * GH_NAME_MAX + 2];
		snprintf(snip, sizeof snip, "%s.%s", res, env);
		TSNode none = {0};
		check_ref(&c, res, env, none, line, (int)(at - line_start) + 1, (int)(end - line_start) + 1, snip);
		i = end - 1;
	}
	return c.rc;
}
