/* config: policy loader on libyaml's document API, with strict validation. */
#include "config/config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

struct loader {
	yaml_document_t doc;
	const char *file;
	const char *basedir;
	struct gh_error *err;
	unsigned char *seen; /* per node: visited once (aliases would revisit) */
	size_t nseen;
	struct gh_policy *p;
};

static int fail_at(struct loader *L, yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail_at(struct loader *L, yaml_node_t *n, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	int line = n ? (int)n->start_mark.line + 1 : 1, col = n ? (int)n->start_mark.column + 1 : 1;
	if (L->err) {
		L->err->line = line;
		L->err->column = col;
	}
	gh_error_set(L->err, GH_EINVAL, "%s:%d:%d: %s", L->file, line, col, msg);
	if (L->err) {
		L->err->line = line;
		L->err->column = col;
	}
	return GH_EINVAL;
}

/* Returns the node for index, refusing a node reached twice (YAML aliases): a policy never
 * needs them and they are how "billion laughs" documents multiply work. */
static yaml_node_t *node_at(struct loader *L, int idx, yaml_node_t *from, int *rc)
{
	yaml_node_t *n = yaml_document_get_node(&L->doc, idx);
	if (!n) {
		*rc = fail_at(L, from, "invalid node");
		return NULL;
	}
	size_t i = (size_t)idx;
	if (i < L->nseen) {
		if (L->seen[i]) {
			*rc = fail_at(L, n, "YAML aliases are not allowed in a policy document");
			return NULL;
		}
		L->seen[i] = 1;
	}
	return n;
}

static const char *scalar(yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static int want_scalar(struct loader *L, yaml_node_t *n, const char *field)
{
	if (n->type != YAML_SCALAR_NODE)
		return fail_at(L, n, "%s: expected a string", field);
	if (strlen(scalar(n)) != n->data.scalar.length)
		return fail_at(L, n, "%s: NUL byte in string", field);
	return 0;
}

/* Names: 1..GH_NAME_MAX of [A-Za-z0-9_-], users may also use '.' and '@' (emails). */
static int want_name(struct loader *L, yaml_node_t *n, const char *field, bool user, char **out)
{
	int rc = want_scalar(L, n, field);
	if (rc)
		return rc;
	const char *s = scalar(n);
	size_t len = strlen(s);
	if (len == 0 || len > GH_NAME_MAX)
		return fail_at(L, n, "%s: expected a name of 1 to %d characters", field, GH_NAME_MAX);
	if (!gh_config_valid_name(s, user))
		return fail_at(L, n, "%s: '%.*s' is not a valid name (letters, digits, '_', '-'%s)",
			       field, (int)(len > 64 ? 64 : len), s, user ? ", '.', '@'" : "");
	*out = gh_strdup(s);
	return *out ? 0 : fail_at(L, n, "out of memory");
}

static int want_bool(struct loader *L, yaml_node_t *n, const char *field, bool *out)
{
	int rc = want_scalar(L, n, field);
	if (rc)
		return rc;
	if (strcmp(scalar(n), "true") == 0)
		*out = true;
	else if (strcmp(scalar(n), "false") == 0)
		*out = false;
	else
		return fail_at(L, n, "%s: expected true or false", field);
	return 0;
}

/* Iterates a mapping's pairs, refusing duplicate keys. */
#define FOR_PAIRS(n, pair) \
	for (yaml_node_pair_t *pair = (n)->data.mapping.pairs.start; pair < (n)->data.mapping.pairs.top; pair++)
#define FOR_ITEMS(n, item) \
	for (yaml_node_item_t *item = (n)->data.sequence.items.start; item < (n)->data.sequence.items.top; item++)

static size_t seq_len(yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static int want_map(struct loader *L, yaml_node_t *n, const char *field)
{
	if (n->type != YAML_MAPPING_NODE)
		return fail_at(L, n, "%s: expected a mapping", field);
	/* duplicate keys */
	FOR_PAIRS(n, a) {
		yaml_node_t *ka = yaml_document_get_node(&L->doc, a->key);
		if (!ka || ka->type != YAML_SCALAR_NODE)
			return fail_at(L, ka ? ka : n, "%s: keys must be strings", field);
		for (yaml_node_pair_t *b = n->data.mapping.pairs.start; b < a; b++) {
			yaml_node_t *kb = yaml_document_get_node(&L->doc, b->key);
			if (strcmp(scalar(ka), scalar(kb)) == 0)
				return fail_at(L, ka, "%s: duplicate key '%s'", field, scalar(ka));
		}
	}
	return 0;
}

static int want_seq(struct loader *L, yaml_node_t *n, const char *field)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return fail_at(L, n, "%s: expected a list", field);
	if (seq_len(n) > GH_POLICY_MAX_ENTRIES)
		return fail_at(L, n, "%s: more than %d entries", field, GH_POLICY_MAX_ENTRIES);
	return 0;
}

/* Reads a list of names into *out. */
static int want_names(struct loader *L, yaml_node_t *n, const char *field, bool user, char ***out, size_t *count)
{
	int rc = want_seq(L, n, field);
	if (rc)
		return rc;
	size_t k = seq_len(n);
	*out = calloc(k ? k : 1, sizeof **out);
	if (!*out)
		return fail_at(L, n, "out of memory");
	*count = 0;
	FOR_ITEMS(n, it) {
		yaml_node_t *v = node_at(L, *it, n, &rc);
		if (!v)
			return rc;
		if ((rc = want_name(L, v, field, user, &(*out)[*count])))
			return rc;
		for (size_t j = 0; j < *count; j++)
			if (strcmp((*out)[j], (*out)[*count]) == 0) {
				free((*out)[*count]);
				(*out)[*count] = NULL;
				return fail_at(L, v, "%s: '%s' is listed twice", field, scalar(v));
			}
		(*count)++;
	}
	return 0;
}

static yaml_node_t *key_node(struct loader *L, yaml_node_pair_t *pair)
{
	return yaml_document_get_node(&L->doc, pair->key);
}

static int unknown_key(struct loader *L, yaml_node_t *k, const char *where, const char *allowed)
{
	return fail_at(L, k, "%s: unknown key '%s' (expected one of: %s)", where, scalar(k), allowed);
}

static int load_users(struct loader *L, yaml_node_t *n)
{
	int rc = want_seq(L, n, "users");
	if (rc)
		return rc;
	struct gh_policy *p = L->p;
	p->users = calloc(seq_len(n) + 1, sizeof *p->users);
	if (!p->users)
		return fail_at(L, n, "out of memory");
	FOR_ITEMS(n, it) {
		yaml_node_t *u = node_at(L, *it, n, &rc);
		if (!u)
			return rc;
		if ((rc = want_map(L, u, "users[]")))
			return rc;
		struct gh_policy_user *dst = &p->users[p->nusers];
		p->nusers++; /* counted now so that a failure frees what was read */
		yaml_node_t *name_node = NULL;
		FOR_PAIRS(u, pair) {
			yaml_node_t *k = key_node(L, pair), *v = node_at(L, pair->value, u, &rc);
			if (!v)
				return rc;
			if (strcmp(scalar(k), "name") == 0) {
				if ((rc = want_name(L, v, "users[].name", true, &dst->name)))
					return rc;
				name_node = v;
			} else if (strcmp(scalar(k), "disabled") == 0) {
				if ((rc = want_bool(L, v, "users[].disabled", &dst->disabled)))
					return rc;
			} else
				return unknown_key(L, k, "users[]", "name, disabled");
		}
		if (!dst->name)
			return fail_at(L, u, "users[]: missing required key 'name'");
		for (size_t j = 0; j + 1 < p->nusers; j++)
			if (strcmp(p->users[j].name, dst->name) == 0)
				return fail_at(L, name_node, "users: '%s' is defined twice", dst->name);
	}
	return 0;
}

static int load_groups(struct loader *L, yaml_node_t *n)
{
	int rc = want_seq(L, n, "groups");
	if (rc)
		return rc;
	struct gh_policy *p = L->p;
	p->groups = calloc(seq_len(n) + 1, sizeof *p->groups);
	if (!p->groups)
		return fail_at(L, n, "out of memory");
	FOR_ITEMS(n, it) {
		yaml_node_t *g = node_at(L, *it, n, &rc);
		if (!g)
			return rc;
		if ((rc = want_map(L, g, "groups[]")))
			return rc;
		struct gh_policy_group *dst = &p->groups[p->ngroups];
		p->ngroups++; /* counted now so that a failure frees what was read */
		yaml_node_t *name_node = NULL, *members_node = NULL;
		FOR_PAIRS(g, pair) {
			yaml_node_t *k = key_node(L, pair), *v = node_at(L, pair->value, g, &rc);
			if (!v)
				return rc;
			if (strcmp(scalar(k), "name") == 0) {
				if ((rc = want_name(L, v, "groups[].name", false, &dst->name)))
					return rc;
				name_node = v;
			} else if (strcmp(scalar(k), "members") == 0) {
				if ((rc = want_names(L, v, "groups[].members", true, &dst->members, &dst->nmembers)))
					return rc;
				members_node = v;
			} else
				return unknown_key(L, k, "groups[]", "name, members");
		}
		if (!dst->name)
			return fail_at(L, g, "groups[]: missing required key 'name'");
		for (size_t j = 0; j + 1 < p->ngroups; j++)
			if (strcmp(p->groups[j].name, dst->name) == 0)
				return fail_at(L, name_node, "groups: '%s' is defined twice", dst->name);
		for (size_t j = 0; j < dst->nmembers; j++)
			if (!gh_config_user(p, dst->members[j])) {
				yaml_node_t *m = yaml_document_get_node(&L->doc, members_node->data.sequence.items.start[j]);
				return fail_at(L, m, "groups[].members: user '%s' is not defined under users",
					       dst->members[j]);
			}
	}
	return 0;
}

static int load_envs(struct loader *L, yaml_node_t *n)
{
	int rc = want_seq(L, n, "environments");
	if (rc)
		return rc;
	struct gh_policy *p = L->p;
	p->envs = calloc(seq_len(n) + 1, sizeof *p->envs);
	if (!p->envs)
		return fail_at(L, n, "out of memory");
	FOR_ITEMS(n, it) {
		yaml_node_t *e = node_at(L, *it, n, &rc);
		if (!e)
			return rc;
		if ((rc = want_map(L, e, "environments[]")))
			return rc;
		struct gh_policy_env *dst = &p->envs[p->nenvs];
		p->nenvs++;
		yaml_node_t *name_node = NULL, *rev_node = NULL, *appr_node = NULL;
		FOR_PAIRS(e, pair) {
			yaml_node_t *k = key_node(L, pair), *v = node_at(L, pair->value, e, &rc);
			if (!v)
				return rc;
			if (strcmp(scalar(k), "name") == 0) {
				if ((rc = want_name(L, v, "environments[].name", false, &dst->name)))
					return rc;
				name_node = v;
			} else if (strcmp(scalar(k), "approval") == 0) {
				if ((rc = want_scalar(L, v, "environments[].approval")))
					return rc;
				if (strcmp(scalar(v), "none") == 0)
					dst->approval = GH_APPROVAL_NONE;
				else if (strcmp(scalar(v), "writes") == 0)
					dst->approval = GH_APPROVAL_WRITES;
				else
					return fail_at(L, v, "environments[].approval: expected none or writes, got '%.64s'",
						       scalar(v));
				appr_node = v;
			} else if (strcmp(scalar(k), "reviewers") == 0) {
				if ((rc = want_names(L, v, "environments[].reviewers", false, &dst->reviewers,
						     &dst->nreviewers)))
					return rc;
				rev_node = v;
			} else
				return unknown_key(L, k, "environments[]", "name, approval, reviewers");
		}
		if (!dst->name)
			return fail_at(L, e, "environments[]: missing required key 'name'");
		for (size_t j = 0; j + 1 < p->nenvs; j++)
			if (strcmp(p->envs[j].name, dst->name) == 0)
				return fail_at(L, name_node, "environments: '%s' is defined twice", dst->name);
		for (size_t j = 0; j < dst->nreviewers; j++)
			if (!gh_config_group(p, dst->reviewers[j])) {
				yaml_node_t *m = yaml_document_get_node(&L->doc, rev_node->data.sequence.items.start[j]);
				return fail_at(L, m, "environments[].reviewers: group '%s' is not defined under groups",
					       dst->reviewers[j]);
			}
		if (dst->approval == GH_APPROVAL_WRITES && dst->nreviewers == 0)
			return fail_at(L, appr_node, "environments[].approval: 'writes' needs at least one "
				       "reviewers group, or no write could ever be approved");
	}
	return 0;
}

/* Resolves a resource path against the policy file's folder; the result is absolute. */
static int resolve_path(struct loader *L, yaml_node_t *v, char **out)
{
	const char *s = scalar(v);
	if (!*s)
		return fail_at(L, v, "path: expected a file path");
	/* Control characters (C0, DEL, C1 incl. NEL, line/paragraph separators) have no place in
	 * a path and would not survive export as YAML unchanged. */
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c < 0x20 || *c == 0x7f || (c[0] == 0xC2 && c[1] >= 0x80 && c[1] <= 0x9F) ||
		    (c[0] == 0xE2 && c[1] == 0x80 && (c[2] == 0xA8 || c[2] == 0xA9)))
			return fail_at(L, v, "path: control characters are not allowed in a path");
	}
	if (strlen(s) >= PATH_MAX)
		return fail_at(L, v, "path: longer than %d bytes", PATH_MAX);
	if (s[0] == '/') {
		*out = gh_strdup(s);
	} else {
		if (!L->basedir)
			return fail_at(L, v, "path: '%.64s' must be absolute here", s);
		char buf[PATH_MAX];
		if (snprintf(buf, sizeof buf, "%s/%s", L->basedir, s) >= (int)sizeof buf)
			return fail_at(L, v, "path: longer than %d bytes", PATH_MAX);
		*out = gh_strdup(buf);
	}
	return *out ? 0 : fail_at(L, v, "out of memory");
}

static int load_resources(struct loader *L, yaml_node_t *n)
{
	int rc = want_seq(L, n, "resources");
	if (rc)
		return rc;
	struct gh_policy *p = L->p;
	p->resources = calloc(seq_len(n) + 1, sizeof *p->resources);
	if (!p->resources)
		return fail_at(L, n, "out of memory");
	FOR_ITEMS(n, it) {
		yaml_node_t *r = node_at(L, *it, n, &rc);
		if (!r)
			return rc;
		if ((rc = want_map(L, r, "resources[]")))
			return rc;
		struct gh_policy_resource *dst = &p->resources[p->nresources];
		p->nresources++;
		yaml_node_t *name_node = NULL, *envs_node = NULL, *schemas_node = NULL;
		FOR_PAIRS(r, pair) {
			yaml_node_t *k = key_node(L, pair), *v = node_at(L, pair->value, r, &rc);
			if (!v)
				return rc;
			if (strcmp(scalar(k), "name") == 0) {
				if ((rc = want_name(L, v, "resources[].name", false, &dst->name)))
					return rc;
				name_node = v;
			} else if (strcmp(scalar(k), "kind") == 0) {
				if ((rc = want_scalar(L, v, "resources[].kind")))
					return rc;
				if (strcmp(scalar(v), "sqlite") == 0)
					dst->kind = GH_RESOURCE_SQLITE;
				else if (strcmp(scalar(v), "postgres") == 0)
					dst->kind = GH_RESOURCE_POSTGRES;
				else
					return fail_at(L, v, "resources[].kind: expected sqlite or postgres, got '%.64s'",
						       scalar(v));
			} else if (strcmp(scalar(k), "environments") == 0) {
				envs_node = v;
			} else if (strcmp(scalar(k), "schemas") == 0) {
				if ((rc = want_names(L, v, "resources[].schemas", false, &dst->schemas, &dst->nschemas)))
					return rc;
				if (dst->nschemas == 0)
					return fail_at(L, v, "resources[].schemas: list at least one schema, or leave the key "
						       "out for public");
				schemas_node = v;
			} else
				return unknown_key(L, k, "resources[]", "name, kind, environments, schemas");
		}
		if (schemas_node && dst->kind != GH_RESOURCE_POSTGRES)
			return fail_at(L, schemas_node, "resources[].schemas: only a kind: postgres resource has schemas");
		if (!dst->name)
			return fail_at(L, r, "resources[]: missing required key 'name'");
		if (!dst->kind)
			return fail_at(L, r, "resources[]: missing required key 'kind'");
		if (!envs_node)
			return fail_at(L, r, "resources[]: missing required key 'environments'");
		for (size_t j = 0; j + 1 < p->nresources; j++)
			if (strcmp(p->resources[j].name, dst->name) == 0)
				return fail_at(L, name_node, "resources: '%s' is defined twice", dst->name);
		if ((rc = want_map(L, envs_node, "resources[].environments")))
			return rc;
		size_t ne = (size_t)(envs_node->data.mapping.pairs.top - envs_node->data.mapping.pairs.start);
		dst->envs = calloc(ne + 1, sizeof *dst->envs);
		if (!dst->envs)
			return fail_at(L, envs_node, "out of memory");
		FOR_PAIRS(envs_node, pair) {
			yaml_node_t *k = key_node(L, pair), *v = node_at(L, pair->value, envs_node, &rc);
			if (!v)
				return rc;
			struct gh_policy_resenv *re = &dst->envs[dst->nenvs];
			dst->nenvs++;
			if ((rc = want_name(L, k, "resources[].environments", false, &re->env)))
				return rc;
			if (!gh_config_env(p, re->env))
				return fail_at(L, k, "resources[].environments: environment '%s' is not defined under "
					       "environments", re->env);
			if ((rc = want_map(L, v, "resources[].environments.ENV")))
				return rc;
			FOR_PAIRS(v, ep) {
				yaml_node_t *ek = key_node(L, ep), *ev = node_at(L, ep->value, v, &rc);
				if (!ev)
					return rc;
				bool pg = dst->kind == GH_RESOURCE_POSTGRES;
				if (!pg && strcmp(scalar(ek), "path") == 0) {
					if ((rc = want_scalar(L, ev, "path")) || (rc = resolve_path(L, ev, &re->path)))
						return rc;
				} else if (pg && strcmp(scalar(ek), "secret") == 0) {
					/* the secret's name, never its value: values live only in the vault */
					if ((rc = want_name(L, ev, "secret", false, &re->secret)))
						return rc;
				} else
					return unknown_key(L, ek, "resources[].environments.ENV",
							   pg ? "secret (a kind: postgres resource names a vault secret)"
							      : "path (a kind: sqlite resource names a database file)");
			}
			if (dst->kind == GH_RESOURCE_SQLITE && !re->path)
				return fail_at(L, v, "resources[].environments.%s: missing required key 'path'", re->env);
			if (dst->kind == GH_RESOURCE_POSTGRES && !re->secret)
				return fail_at(L, v, "resources[].environments.%s: missing required key 'secret' (the "
					       "name of a secret set with 'gatehouse secret set')", re->env);
		}
	}
	return 0;
}

static int load_apps(struct loader *L, yaml_node_t *n)
{
	int rc = want_seq(L, n, "apps");
	if (rc)
		return rc;
	struct gh_policy *p = L->p;
	p->apps = calloc(seq_len(n) + 1, sizeof *p->apps);
	if (!p->apps)
		return fail_at(L, n, "out of memory");
	FOR_ITEMS(n, it) {
		yaml_node_t *a = node_at(L, *it, n, &rc);
		if (!a)
			return rc;
		if ((rc = want_map(L, a, "apps[]")))
			return rc;
		struct gh_policy_app *dst = &p->apps[p->napps];
		p->napps++;
		yaml_node_t *name_node = NULL;
		FOR_PAIRS(a, pair) {
			yaml_node_t *k = key_node(L, pair), *v = node_at(L, pair->value, a, &rc);
			if (!v)
				return rc;
			if (strcmp(scalar(k), "name") == 0) {
				if ((rc = want_name(L, v, "apps[].name", false, &dst->name)))
					return rc;
				name_node = v;
			} else
				return unknown_key(L, k, "apps[]", "name");
		}
		if (!dst->name)
			return fail_at(L, a, "apps[]: missing required key 'name'");
		for (size_t j = 0; j + 1 < p->napps; j++)
			if (strcmp(p->apps[j].name, dst->name) == 0)
				return fail_at(L, name_node, "apps: '%s' is defined twice", dst->name);
	}
	return 0;
}

/* A character of a table or column name in a grant: letters, digits, '_', '$', '-', and any
 * byte of a UTF-8 sequence (libyaml has checked the encoding). Quotes, spaces and control
 * characters have no place there. */
static bool ident_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$' ||
	       c == '-' || c >= 0x80;
}

/* A table entry: identifier characters and the glob characters '*' and '?'; for PostgreSQL at
 * most one '.' between a schema and a table, never first or last. */
static bool valid_table_pattern(const char *s, bool pg)
{
	size_t len = strlen(s), dots = 0;
	if (len == 0 || len > 2 * GH_NAME_MAX + 1)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (!pg || ++dots > 1 || i == 0 || i + 1 == len)
				return false;
		} else if (!ident_char(c) && c != '*' && c != '?') {
			return false;
		}
	}
	return true;
}

static bool valid_column_name(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > GH_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!ident_char((unsigned char)s[i]))
			return false;
	return true;
}

/* Reads one `tables:` entry: a name, or a mapping {name, columns}. */
static int load_table_entry(struct loader *L, yaml_node_t *v, struct gh_policy_table *t, bool pg)
{
	int rc;
	yaml_node_t *name_node = v, *cols_node = NULL;
	if (v->type == YAML_MAPPING_NODE) {
		if ((rc = want_map(L, v, "grants[].tables[]")))
			return rc;
		name_node = NULL;
		FOR_PAIRS(v, pair) {
			yaml_node_t *k = key_node(L, pair), *x = node_at(L, pair->value, v, &rc);
			if (!x)
				return rc;
			if (strcmp(scalar(k), "name") == 0)
				name_node = x;
			else if (strcmp(scalar(k), "columns") == 0)
				cols_node = x;
			else
				return unknown_key(L, k, "grants[].tables[]", "name, columns");
		}
		if (!name_node)
			return fail_at(L, v, "grants[].tables[]: missing required key 'name'");
	}
	if ((rc = want_scalar(L, name_node, "grants[].tables[]")))
		return rc;
	const char *z = scalar(name_node);
	if (!valid_table_pattern(z, pg))
		return fail_at(L, name_node,
			       "grants[].tables[]: '%.64s' is not a table name or glob (letters, digits, '_', '$', "
			       "'-', '*', '?'%s)", z, pg ? ", one '.' after a schema" : "");
	if (!(t->name = gh_strdup(z)))
		return fail_at(L, name_node, "out of memory");
	if (!cols_node)
		return 0;
	if ((rc = want_seq(L, cols_node, "grants[].tables[].columns")))
		return rc;
	size_t k = seq_len(cols_node);
	if (k == 0)
		return fail_at(L, cols_node, "grants[].tables[].columns: list at least one column, or leave the key "
			       "out for every column");
	if (!(t->columns = calloc(k, sizeof *t->columns)))
		return fail_at(L, cols_node, "out of memory");
	FOR_ITEMS(cols_node, it) {
		yaml_node_t *c = node_at(L, *it, cols_node, &rc);
		if (!c)
			return rc;
		if ((rc = want_scalar(L, c, "grants[].tables[].columns")))
			return rc;
		const char *cz = scalar(c);
		if (!valid_column_name(cz))
			return fail_at(L, c, "grants[].tables[].columns: '%.64s' is not a column name (letters, digits, "
				       "'_', '$', '-')", cz);
		for (size_t j = 0; j < t->ncolumns; j++)
			if (strcmp(t->columns[j], cz) == 0)
				return fail_at(L, c, "grants[].tables[].columns: '%s' is listed twice", cz);
		if (!(t->columns[t->ncolumns] = gh_strdup(cz)))
			return fail_at(L, c, "out of memory");
		t->ncolumns++;
	}
	return 0;
}

/* A grant's optional `tables:` list: what it covers instead of the whole resource. */
static int load_grant_tables(struct loader *L, yaml_node_t *n, struct gh_policy_grant *g, bool pg)
{
	int rc = want_seq(L, n, "grants[].tables");
	if (rc)
		return rc;
	size_t k = seq_len(n);
	if (k == 0)
		return fail_at(L, n, "grants[].tables: an empty list covers nothing; list tables, or leave the key "
			       "out for the whole resource");
	if (!(g->tables = calloc(k, sizeof *g->tables)))
		return fail_at(L, n, "out of memory");
	FOR_ITEMS(n, it) {
		yaml_node_t *v = node_at(L, *it, n, &rc);
		if (!v)
			return rc;
		struct gh_policy_table *t = &g->tables[g->ntables];
		g->ntables++; /* counted now so that a failure frees what was read */
		if ((rc = load_table_entry(L, v, t, pg)))
			return rc;
		for (size_t j = 0; j + 1 < g->ntables; j++)
			if (strcmp(g->tables[j].name, t->name) == 0)
				return fail_at(L, v, "grants[].tables: '%s' is listed twice", t->name);
	}
	return 0;
}

static int load_grants(struct loader *L, yaml_node_t *n)
{
	int rc = want_seq(L, n, "grants");
	if (rc)
		return rc;
	struct gh_policy *p = L->p;
	p->grants = calloc(seq_len(n) + 1, sizeof *p->grants);
	if (!p->grants)
		return fail_at(L, n, "out of memory");
	FOR_ITEMS(n, it) {
		yaml_node_t *g = node_at(L, *it, n, &rc);
		if (!g)
			return rc;
		if ((rc = want_map(L, g, "grants[]")))
			return rc;
		struct gh_policy_grant *dst = &p->grants[p->ngrants];
		p->ngrants++;
		yaml_node_t *tables_node = NULL;
		FOR_PAIRS(g, pair) {
			yaml_node_t *k = key_node(L, pair), *v = node_at(L, pair->value, g, &rc);
			if (!v)
				return rc;
			const char *key = scalar(k);
			if (strcmp(key, "resource") == 0) {
				if ((rc = want_name(L, v, "grants[].resource", false, &dst->resource)))
					return rc;
				if (!gh_config_resource(p, dst->resource))
					return fail_at(L, v, "grants[].resource: resource '%s' is not defined under resources",
						       dst->resource);
			} else if (strcmp(key, "environment") == 0) {
				if ((rc = want_name(L, v, "grants[].environment", false, &dst->environment)))
					return rc;
				if (!gh_config_env(p, dst->environment))
					return fail_at(L, v, "grants[].environment: environment '%s' is not defined under "
						       "environments", dst->environment);
			} else if (strcmp(key, "user") == 0) {
				if ((rc = want_name(L, v, "grants[].user", true, &dst->user)))
					return rc;
				if (!gh_config_user(p, dst->user))
					return fail_at(L, v, "grants[].user: user '%s' is not defined under users", dst->user);
			} else if (strcmp(key, "group") == 0) {
				if ((rc = want_name(L, v, "grants[].group", false, &dst->group)))
					return rc;
				if (!gh_config_group(p, dst->group))
					return fail_at(L, v, "grants[].group: group '%s' is not defined under groups",
						       dst->group);
			} else if (strcmp(key, "access") == 0) {
				if ((rc = want_scalar(L, v, "grants[].access")))
					return rc;
				const char *a = scalar(v);
				if (strcmp(a, "use") == 0) dst->access = GH_ACCESS_USE;
				else if (strcmp(a, "edit") == 0) dst->access = GH_ACCESS_EDIT;
				else if (strcmp(a, "own") == 0) dst->access = GH_ACCESS_OWN;
				else
					return fail_at(L, v, "grants[].access: expected use, edit or own, got '%.64s'", a);
			} else if (strcmp(key, "tables") == 0) {
				tables_node = v; /* read below, once the resource's kind is known */
			} else
				return unknown_key(L, k, "grants[]", "resource, environment, user, group, access, tables");
		}
		if (!dst->resource)
			return fail_at(L, g, "grants[]: missing required key 'resource'");
		if (!dst->environment)
			return fail_at(L, g, "grants[]: missing required key 'environment'");
		if (!dst->access)
			return fail_at(L, g, "grants[]: missing required key 'access'");
		if (!dst->user == !dst->group)
			return fail_at(L, g, "grants[]: exactly one of 'user' or 'group' is required");
		const struct gh_policy_resource *r = gh_config_resource(p, dst->resource);
		if (!gh_config_resenv(r, dst->environment))
			return fail_at(L, g, "grants[]: resource '%s' has no environment '%s'", dst->resource,
				       dst->environment);
		if (tables_node && (rc = load_grant_tables(L, tables_node, dst, r->kind == GH_RESOURCE_POSTGRES)))
			return rc;
	}
	return 0;
}

/* Top-level sections are read in dependency order, whatever order the file uses. */
/* Package names and licence ids: 1..214 printable characters without spaces or quotes (npm's
 * limit; scoped names carry '@' and '/', SPDX ids '.', '+' and '-'). */
static int want_strings(struct loader *L, yaml_node_t *n, const char *field, char ***out, size_t *count)
{
	int rc = want_seq(L, n, field);
	if (rc)
		return rc;
	size_t k = seq_len(n);
	*out = calloc(k ? k : 1, sizeof **out);
	if (!*out)
		return fail_at(L, n, "out of memory");
	*count = 0;
	FOR_ITEMS(n, it) {
		yaml_node_t *v = node_at(L, *it, n, &rc);
		if (!v)
			return rc;
		if ((rc = want_scalar(L, v, field)))
			return rc;
		const char *z = scalar(v);
		size_t len = strlen(z);
		bool ok = len >= 1 && len <= 214;
		for (size_t i = 0; ok && i < len; i++)
			ok = z[i] > ' ' && z[i] < 0x7f && z[i] != '"' && z[i] != '\\' && z[i] != '\'';
		if (!ok)
			return fail_at(L, v, "%s: '%.64s' is not a package name or licence id", field, z);
		for (size_t j = 0; j < *count; j++)
			if (strcmp((*out)[j], z) == 0)
				return fail_at(L, v, "%s: '%s' is listed twice", field, z);
		if (!((*out)[*count] = gh_strdup(z)))
			return fail_at(L, v, "out of memory");
		(*count)++;
	}
	return 0;
}

static int load_scan(struct loader *L, yaml_node_t *n)
{
	struct gh_policy_scan *sc = &L->p->scan;
	int rc = want_map(L, n, "scan");
	if (rc)
		return rc;
	FOR_PAIRS(n, pair) {
		yaml_node_t *k = key_node(L, pair), *v = node_at(L, pair->value, n, &rc);
		if (!v)
			return rc;
		const char *key = scalar(k);
		if (strcmp(key, "fail_on") == 0) {
			if ((rc = want_scalar(L, v, "scan.fail_on")))
				return rc;
			const char *z = scalar(v);
			if (strcmp(z, "low") && strcmp(z, "medium") && strcmp(z, "high") && strcmp(z, "critical"))
				return fail_at(L, v, "scan.fail_on: expected low, medium, high or critical");
			if (!(sc->fail_on = gh_strdup(z)))
				return fail_at(L, v, "out of memory");
		} else if (strcmp(key, "min_release_age") == 0) {
			int64_t secs;
			if ((rc = want_scalar(L, v, "scan.min_release_age")))
				return rc;
			if (gh_parse_duration(scalar(v), &secs) || secs < 0 || secs > 365 * 86400)
				return fail_at(L, v, "scan.min_release_age: expected a duration up to 365d (e.g. 7d)");
			sc->min_release_age = secs;
		} else if (strcmp(key, "max_file_size") == 0) {
			int64_t b;
			if ((rc = want_scalar(L, v, "scan.max_file_size")))
				return rc;
			if (gh_parse_size(scalar(v), &b) || b < 1024 || b > (int64_t)1 << 30)
				return fail_at(L, v, "scan.max_file_size: expected a size from 1K to 1G");
			sc->max_file_size = b;
		} else if (strcmp(key, "registry") == 0 || strcmp(key, "pypi_registry") == 0) {
			bool py = key[0] == 'p';
			const char *field = py ? "scan.pypi_registry" : "scan.registry";
			if ((rc = want_scalar(L, v, field)))
				return rc;
			const char *z = scalar(v);
			if ((strncmp(z, "https://", 8) != 0 && strncmp(z, "http://", 7) != 0) || strlen(z) > 2048 ||
			    strpbrk(z, " \t\r\n\"'"))
				return fail_at(L, v, "%s: expected an http(s) URL", field);
			char **dst = py ? &sc->pypi_registry : &sc->registry;
			if (*dst)
				return fail_at(L, k, "%s: given twice", field);
			if (!(*dst = gh_strdup(z)))
				return fail_at(L, v, "out of memory");
		} else if (strcmp(key, "licenses") == 0) {
			if ((rc = want_strings(L, v, "scan.licenses", &sc->licenses, &sc->nlicenses)))
				return rc;
		} else if (strcmp(key, "deny_packages") == 0) {
			if ((rc = want_strings(L, v, "scan.deny_packages", &sc->deny_packages, &sc->ndeny)))
				return rc;
		} else {
			return unknown_key(L, k, "scan",
					   "fail_on, min_release_age, licenses, deny_packages, registry, pypi_registry, "
					   "max_file_size");
		}
	}
	return 0;
}

static int load_recovery(struct loader *L, yaml_node_t *n)
{
	struct gh_policy_recovery *rv = &L->p->recovery;
	int rc = want_map(L, n, "recovery");
	if (rc)
		return rc;
	FOR_PAIRS(n, pair) {
		yaml_node_t *k = key_node(L, pair), *v = node_at(L, pair->value, n, &rc);
		if (!v)
			return rc;
		const char *key = scalar(k);
		int64_t *dst = strcmp(key, "rto") == 0 ? &rv->rto : strcmp(key, "rpo") == 0 ? &rv->rpo : NULL;
		if (!dst)
			return unknown_key(L, k, "recovery", "rto, rpo");
		char field[16];
		snprintf(field, sizeof field, "recovery.%s", key);
		int64_t secs;
		if ((rc = want_scalar(L, v, field)))
			return rc;
		if (gh_parse_duration(scalar(v), &secs) || secs < 60 || secs > 30 * 86400)
			return fail_at(L, v, "%s: expected a duration from 1m to 30d (e.g. 4h)", field);
		*dst = secs;
	}
	return 0;
}

/* ---- the audit section: checkpoints and sinks ---- */

static const char *const facilities[] = {
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
	"ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5",
	"local6", "local7",
};

const char *gh_config_facility_name(int facility)
{
	return facility >= 0 && facility < 24 ? facilities[facility] : NULL;
}

/* A host: an IPv4 literal or DNS name ([A-Za-z0-9.-], 1..253), or "[IPv6]". */
static bool valid_host(const char *h, size_t n)
{
	if (n == 0 || n > 253)
		return false;
	if (h[0] == '[') {
		if (n < 3 || h[n - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < n; i++)
			if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f') || (h[i] >= 'A' && h[i] <= 'F') ||
			      h[i] == ':' || h[i] == '.'))
				return false;
		return true;
	}
	for (size_t i = 0; i < n; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
		      h[i] == '.' || h[i] == '-'))
			return false;
	return h[0] != '-' && h[0] != '.';
}

/* HOST:PORT after a scheme; port 1..65535 (required when need_port). */
static bool valid_hostport(const char *z, size_t n, bool need_port, const char **host, size_t *hostlen)
{
	const char *colon = NULL;
	if (n && z[0] == '[') {
		const char *rb = memchr(z, ']', n);
		if (!rb)
			return false;
		if ((size_t)(rb + 1 - z) < n) {
			if (rb[1] != ':')
				return false;
			colon = rb + 1;
		}
	} else {
		colon = memchr(z, ':', n);
	}
	size_t hl = colon ? (size_t)(colon - z) : n;
	if (!valid_host(z, hl))
		return false;
	if (colon) {
		char port[8];
		size_t pl = n - hl - 1;
		int64_t v;
		if (pl == 0 || pl >= sizeof port)
			return false;
		memcpy(port, colon + 1, pl);
		port[pl] = '\0';
		if (gh_parse_int(port, 1, 65535, &v) || port[0] == '0')
			return false;
	} else if (need_port) {
		return false;
	}
	*host = z;
	*hostlen = hl;
	return true;
}

/* A sink URL: https://HOST[:PORT][/PATH[?QUERY]], or http:// to a loopback address literal
 * (127.0.0.1, [::1]) only: audit records leave the machine encrypted. No credentials in the
 * URL (they would be in the policy and its export; the API key lives in the vault), no
 * fragment, no spaces, quotes or control characters. Returns NULL or why not. */
static const char *sink_url_problem(const char *z)
{
	size_t len = strlen(z);
	if (len > 2048)
		return "longer than 2048 characters";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)z[i];
		if (c <= 0x20 || c >= 0x7f || strchr("\"'<>\\^`{|}", c))
			return "spaces, quotes, control and non-ASCII characters are not allowed (percent-encode them)";
	}
	bool tls = strncmp(z, "https://", 8) == 0;
	if (!tls && strncmp(z, "http://", 7) != 0)
		return "expected an https:// URL";
	const char *auth = z + (tls ? 8 : 7);
	size_t an = strcspn(auth, "/?#");
	if (memchr(auth, '@', an))
		return "credentials in the URL are not allowed (put the API key in the vault: api_key: { secret: NAME })";
	if (strchr(z, '#'))
		return "a fragment (#...) is not sent to the server";
	const char *host;
	size_t hl;
	if (!valid_hostport(auth, an, false, &host, &hl))
		return "expected HOST[:PORT] after the scheme";
	bool loopback = (hl == 9 && memcmp(host, "127.0.0.1", 9) == 0) || (hl == 5 && memcmp(host, "[::1]", 5) == 0);
	if (!tls && !loopback)
		return "http:// is allowed only to 127.0.0.1 or [::1]; use https://";
	return NULL;
}

/* A header name: an RFC 9110 token, not one the HTTP sink sets itself. */
static bool valid_header_name(const char *z)
{
	static const char *const own[] = {"host", "content-length", "content-type", "transfer-encoding", "connection",
					  "expect", "user-agent", "te", "upgrade", "trailer", "keep-alive"};
	size_t n = strlen(z);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((z[i] >= 'a' && z[i] <= 'z') || (z[i] >= 'A' && z[i] <= 'Z') || (z[i] >= '0' && z[i] <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", z[i])))
			return false;
	for (size_t i = 0; i < sizeof own / sizeof *own; i++)
		if (strcasecmp(z, own[i]) == 0)
			return false;
	return true;
}

/* The syslog address: an absolute path to a unix datagram socket, or udp:HOST:PORT. */
static bool valid_syslog_address(const char *z)
{
	size_t n = strlen(z);
	if (z[0] == '/') {
		if (n >= 108) /* sun_path */
			return false;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)z[i] < 0x20 || z[i] == 0x7f)
				return false;
		return true;
	}
	const char *host;
	size_t hl;
	return strncmp(z, "udp:", 4) == 0 && valid_hostport(z + 4, n - 4, true, &host, &hl);
}

/* A duration key of a sink: 1s..max. */
static int want_seconds(struct loader *L, yaml_node_t *v, const char *field, int64_t max, int64_t *out)
{
	int rc = want_scalar(L, v, field);
	if (rc)
		return rc;
	int64_t secs;
	if (gh_parse_duration(scalar(v), &secs) || secs < 1 || secs > max)
		return fail_at(L, v, "%s: expected a duration from 1s to %llds (e.g. 30s)", field, (long long)max);
	*out = secs;
	return 0;
}

static int load_sink(struct loader *L, yaml_node_t *s, struct gh_policy_sink *dst)
{
	int rc = want_map(L, s, "audit.sinks[]");
	if (rc)
		return rc;
	/* keys first, then their meaning by kind: the order of keys in a mapping is free */
	static const char *const keys[] = {"name", "kind", "batch", "retry_max", "url", "header", "api_key",
					   "timeout", "facility", "address"};
	enum { K_NAME, K_KIND, K_BATCH, K_RETRY, K_URL, K_HEADER, K_KEY, K_TIMEOUT, K_FACILITY, K_ADDRESS, K_N };
	yaml_node_t *val[K_N] = {0}, *kn[K_N] = {0};
	FOR_PAIRS(s, pair) {
		yaml_node_t *k = key_node(L, pair), *v = node_at(L, pair->value, s, &rc);
		if (!v)
			return rc;
		size_t i;
		for (i = 0; i < K_N; i++)
			if (strcmp(scalar(k), keys[i]) == 0)
				break;
		if (i == K_N)
			return unknown_key(L, k, "audit.sinks[]", "name, kind, batch, retry_max, url, header, api_key, "
					   "timeout, facility, address");
		val[i] = v;
		kn[i] = k;
	}
	if (!val[K_NAME])
		return fail_at(L, s, "audit.sinks[]: missing required key 'name'");
	if ((rc = want_name(L, val[K_NAME], "audit.sinks[].name", false, &dst->name)))
		return rc;
	if (!val[K_KIND])
		return fail_at(L, s, "audit.sinks[]: missing required key 'kind' (stdout, syslog or http)");
	if ((rc = want_scalar(L, val[K_KIND], "audit.sinks[].kind")))
		return rc;
	const char *kind = scalar(val[K_KIND]);
	if (strcmp(kind, "stdout") == 0)
		dst->kind = GH_SINK_STDOUT;
	else if (strcmp(kind, "syslog") == 0)
		dst->kind = GH_SINK_SYSLOG;
	else if (strcmp(kind, "http") == 0)
		dst->kind = GH_SINK_HTTP;
	else
		return fail_at(L, val[K_KIND], "audit.sinks[].kind: expected stdout, syslog or http, got '%.64s'", kind);
	/* keys that belong to another kind */
	static const unsigned char http_only[] = {K_URL, K_HEADER, K_KEY, K_TIMEOUT}, syslog_only[] = {K_FACILITY, K_ADDRESS};
	for (size_t i = 0; i < sizeof http_only; i++)
		if (kn[http_only[i]] && dst->kind != GH_SINK_HTTP)
			return fail_at(L, kn[http_only[i]], "audit.sinks[]: '%s' is for kind: http only", keys[http_only[i]]);
	for (size_t i = 0; i < sizeof syslog_only; i++)
		if (kn[syslog_only[i]] && dst->kind != GH_SINK_SYSLOG)
			return fail_at(L, kn[syslog_only[i]], "audit.sinks[]: '%s' is for kind: syslog only",
				       keys[syslog_only[i]]);
	dst->batch = 100;
	dst->retry_max = 30;
	dst->timeout = 10;
	dst->facility = 16;
	if (val[K_BATCH]) {
		if ((rc = want_scalar(L, val[K_BATCH], "audit.sinks[].batch")))
			return rc;
		if (gh_parse_int(scalar(val[K_BATCH]), 1, GH_SINK_MAX_BATCH, &dst->batch))
			return fail_at(L, val[K_BATCH], "audit.sinks[].batch: expected 1 to %d records", GH_SINK_MAX_BATCH);
	}
	if (val[K_RETRY] && (rc = want_seconds(L, val[K_RETRY], "audit.sinks[].retry_max", 3600, &dst->retry_max)))
		return rc;
	if (dst->kind == GH_SINK_HTTP) {
		if (!val[K_URL])
			return fail_at(L, s, "audit.sinks[]: kind http needs 'url'");
		if ((rc = want_scalar(L, val[K_URL], "audit.sinks[].url")))
			return rc;
		const char *why = sink_url_problem(scalar(val[K_URL]));
		if (why)
			return fail_at(L, val[K_URL], "audit.sinks[].url: %s", why);
		if (!(dst->url = gh_strdup(scalar(val[K_URL]))))
			return fail_at(L, val[K_URL], "out of memory");
		if (val[K_TIMEOUT] && (rc = want_seconds(L, val[K_TIMEOUT], "audit.sinks[].timeout", 300, &dst->timeout)))
			return rc;
		if (val[K_HEADER]) {
			if ((rc = want_scalar(L, val[K_HEADER], "audit.sinks[].header")))
				return rc;
			if (!valid_header_name(scalar(val[K_HEADER])))
				return fail_at(L, val[K_HEADER], "audit.sinks[].header: expected an HTTP header name "
					       "(e.g. DD-API-KEY) other than those the sink sets itself");
			if (!(dst->header = gh_strdup(scalar(val[K_HEADER]))))
				return fail_at(L, val[K_HEADER], "out of memory");
		}
		if (val[K_KEY]) {
			yaml_node_t *m = val[K_KEY];
			if (m->type != YAML_MAPPING_NODE)
				return fail_at(L, m, "audit.sinks[].api_key: expected { secret: NAME } (the value lives in the "
					       "vault: gatehouse secret set)");
			if ((rc = want_map(L, m, "audit.sinks[].api_key")))
				return rc;
			FOR_PAIRS(m, pair) {
				yaml_node_t *k = key_node(L, pair), *v = node_at(L, pair->value, m, &rc);
				if (!v)
					return rc;
				if (strcmp(scalar(k), "secret") != 0)
					return unknown_key(L, k, "audit.sinks[].api_key", "secret");
				if ((rc = want_name(L, v, "audit.sinks[].api_key.secret", false, &dst->secret)))
					return rc;
				dst->secret_line = (int)v->start_mark.line + 1;
				dst->secret_column = (int)v->start_mark.column + 1;
			}
			if (!dst->secret)
				return fail_at(L, m, "audit.sinks[].api_key: missing required key 'secret'");
		}
		if (dst->secret && !dst->header)
			return fail_at(L, val[K_KEY], "audit.sinks[]: api_key needs 'header' (the header that carries it, "
				       "e.g. DD-API-KEY)");
		if (dst->header && !dst->secret)
			return fail_at(L, val[K_HEADER], "audit.sinks[]: header needs 'api_key: { secret: NAME }'");
	} else if (dst->kind == GH_SINK_SYSLOG) {
		if (val[K_FACILITY]) {
			if ((rc = want_scalar(L, val[K_FACILITY], "audit.sinks[].facility")))
				return rc;
			dst->facility = -1;
			for (int i = 0; i < 24; i++)
				if (strcmp(scalar(val[K_FACILITY]), facilities[i]) == 0)
					dst->facility = i;
			if (dst->facility < 0)
				return fail_at(L, val[K_FACILITY], "audit.sinks[].facility: expected a syslog facility "
					       "(user, daemon, auth, local0 .. local7, ...), got '%.64s'", scalar(val[K_FACILITY]));
		}
		const char *addr = "/dev/log";
		if (val[K_ADDRESS]) {
			if ((rc = want_scalar(L, val[K_ADDRESS], "audit.sinks[].address")))
				return rc;
			addr = scalar(val[K_ADDRESS]);
			if (!valid_syslog_address(addr))
				return fail_at(L, val[K_ADDRESS], "audit.sinks[].address: expected an absolute path to a unix "
					       "datagram socket (e.g. /dev/log) or udp:HOST:PORT");
		}
		if (!(dst->address = gh_strdup(addr)))
			return fail_at(L, s, "out of memory");
	}
	return 0;
}

static int load_audit(struct loader *L, yaml_node_t *n)
{
	struct gh_policy_audit *au = &L->p->audit;
	int rc = want_map(L, n, "audit");
	if (rc)
		return rc;
	FOR_PAIRS(n, pair) {
		yaml_node_t *k = key_node(L, pair), *v = node_at(L, pair->value, n, &rc);
		if (!v)
			return rc;
		if (strcmp(scalar(k), "checkpoint_every") == 0) {
			if ((rc = want_scalar(L, v, "audit.checkpoint_every")))
				return rc;
			if (gh_parse_int(scalar(v), 1, GH_CHECKPOINT_MAX_EVERY, &au->checkpoint_every))
				return fail_at(L, v, "audit.checkpoint_every: expected 1 to %d records", GH_CHECKPOINT_MAX_EVERY);
		} else if (strcmp(scalar(k), "sinks") == 0) {
			if ((rc = want_seq(L, v, "audit.sinks")))
				return rc;
			if (seq_len(v) > GH_SINK_MAX)
				return fail_at(L, v, "audit.sinks: more than %d sinks", GH_SINK_MAX);
			au->sinks = calloc(seq_len(v) + 1, sizeof *au->sinks);
			if (!au->sinks)
				return fail_at(L, v, "out of memory");
			FOR_ITEMS(v, it) {
				yaml_node_t *s = node_at(L, *it, v, &rc);
				if (!s)
					return rc;
				struct gh_policy_sink *dst = &au->sinks[au->nsinks];
				au->nsinks++; /* counted now so that a failure frees what was read */
				if ((rc = load_sink(L, s, dst)))
					return rc;
				for (size_t j = 0; j + 1 < au->nsinks; j++)
					if (strcmp(au->sinks[j].name, dst->name) == 0)
						return fail_at(L, s, "audit.sinks: '%s' is defined twice", dst->name);
			}
		} else
			return unknown_key(L, k, "audit", "checkpoint_every, sinks");
	}
	return 0;
}

static int load_root(struct loader *L, yaml_node_t *root)
{
	static const char *order[] = {"version", "users", "groups", "admins", "environments",
				      "resources", "apps", "grants", "scan", "recovery", "audit"};
	enum { NSECT = sizeof order / sizeof *order };
	int rc = want_map(L, root, "document");
	if (rc)
		return rc;
	yaml_node_t *sect[NSECT] = {0};
	FOR_PAIRS(root, pair) {
		yaml_node_t *k = key_node(L, pair);
		size_t i;
		for (i = 0; i < NSECT; i++)
			if (strcmp(scalar(k), order[i]) == 0)
				break;
		if (i == NSECT)
			return unknown_key(L, k, "document",
					   "version, users, groups, admins, environments, resources, apps, grants, scan, "
					   "recovery, audit");
		if (!(sect[i] = node_at(L, pair->value, root, &rc)))
			return rc;
	}
	if (!sect[0])
		return fail_at(L, root, "document: missing required key 'version'");
	if (sect[0]->type != YAML_SCALAR_NODE || strcmp(scalar(sect[0]), "1") != 0)
		return fail_at(L, sect[0], "version: expected 1");
	struct gh_policy *p = L->p;
	if (sect[1] && (rc = load_users(L, sect[1])))
		return rc;
	if (sect[2] && (rc = load_groups(L, sect[2])))
		return rc;
	if (sect[3]) {
		if ((rc = want_names(L, sect[3], "admins", false, &p->admins, &p->nadmins)))
			return rc;
		for (size_t j = 0; j < p->nadmins; j++)
			if (!gh_config_group(p, p->admins[j]))
				return fail_at(L, yaml_document_get_node(&L->doc, sect[3]->data.sequence.items.start[j]),
					       "admins: group '%s' is not defined under groups", p->admins[j]);
	}
	if (sect[4] && (rc = load_envs(L, sect[4])))
		return rc;
	if (sect[5] && (rc = load_resources(L, sect[5])))
		return rc;
	if (sect[6] && (rc = load_apps(L, sect[6])))
		return rc;
	if (sect[7] && (rc = load_grants(L, sect[7])))
		return rc;
	p->scan.min_release_age = -1;
	p->scan.max_file_size = -1;
	if (sect[8] && (rc = load_scan(L, sect[8])))
		return rc;
	p->recovery.rto = p->recovery.rpo = -1;
	if (sect[9] && (rc = load_recovery(L, sect[9])))
		return rc;
	p->audit.checkpoint_every = 1000;
	if (sect[10] && (rc = load_audit(L, sect[10])))
		return rc;
	return 0;
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void policy_free(struct gh_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nusers; i++)
		free(p->users[i].name);
	free(p->users);
	for (size_t i = 0; i < p->ngroups; i++) {
		free(p->groups[i].name);
		free_names(p->groups[i].members, p->groups[i].nmembers);
	}
	free(p->groups);
	free_names(p->admins, p->nadmins);
	free(p->scan.fail_on);
	free(p->scan.registry);
	free(p->scan.pypi_registry);
	free_names(p->scan.licenses, p->scan.nlicenses);
	free_names(p->scan.deny_packages, p->scan.ndeny);
	for (size_t i = 0; i < p->nenvs; i++) {
		free(p->envs[i].name);
		free_names(p->envs[i].reviewers, p->envs[i].nreviewers);
	}
	free(p->envs);
	for (size_t i = 0; i < p->nresources; i++) {
		struct gh_policy_resource *r = &p->resources[i];
		free(r->name);
		for (size_t j = 0; j < r->nenvs; j++) {
			free(r->envs[j].env);
			free(r->envs[j].path);
			free(r->envs[j].secret);
		}
		free(r->envs);
		free_names(r->schemas, r->nschemas);
	}
	free(p->resources);
	for (size_t i = 0; i < p->napps; i++)
		free(p->apps[i].name);
	free(p->apps);
	for (size_t i = 0; i < p->ngrants; i++) {
		struct gh_policy_grant *g = &p->grants[i];
		free(g->resource);
		free(g->environment);
		free(g->user);
		free(g->group);
		for (size_t j = 0; j < g->ntables; j++) {
			free(g->tables[j].name);
			free_names(g->tables[j].columns, g->tables[j].ncolumns);
		}
		free(g->tables);
	}
	free(p->grants);
	for (size_t i = 0; i < p->audit.nsinks; i++) {
		struct gh_policy_sink *k = &p->audit.sinks[i];
		free(k->name);
		free(k->url);
		free(k->header);
		free(k->secret);
		free(k->address);
	}
	free(p->audit.sinks);
	free(p);
}

int gh_config_parse(const char *text, size_t len, const char *filename, const char *basedir,
		    struct gh_policy **out, struct gh_error *err)
{
	struct loader L = {.file = filename ? filename : "policy", .basedir = basedir, .err = err};
	yaml_parser_t parser;
	int rc = GH_EINVAL;
	bool have_doc = false;

	*out = NULL;
	if (len > GH_POLICY_MAX_BYTES)
		return gh_error_set(err, GH_ETOOBIG, "%s: larger than %d bytes", L.file, GH_POLICY_MAX_BYTES);
	if (!yaml_parser_initialize(&parser))
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &L.doc)) {
		int line = (int)parser.problem_mark.line + 1, col = (int)parser.problem_mark.column + 1;
		if (parser.error == YAML_READER_ERROR) {
			/* reader errors (bad bytes) carry an offset, not a mark */
			line = 1;
			col = 1;
			for (size_t i = 0; i < parser.problem_offset && i < len; i++) {
				if (text[i] == '\n') {
					line++;
					col = 1;
				} else if (((unsigned char)text[i] & 0xC0) != 0x80) {
					col++;
				}
			}
		}
		gh_error_set(err, GH_EINVAL, "%s:%d:%d: invalid YAML: %s%s%s", L.file, line, col,
			     parser.problem ? parser.problem : "syntax error",
			     parser.context ? " " : "", parser.context ? parser.context : "");
		if (err) {
			err->line = line;
			err->column = col;
		}
		goto done;
	}
	have_doc = true;
	yaml_node_t *root = yaml_document_get_root_node(&L.doc);
	if (!root) {
		rc = gh_error_set(err, GH_EINVAL, "%s:1:1: empty document", L.file);
		if (err)
			err->line = err->column = 1;
		goto done;
	}
	/* A second document in the stream is refused: one file, one policy. */
	{
		yaml_document_t extra;
		if (!yaml_parser_load(&parser, &extra)) {
			int line = (int)parser.problem_mark.line + 1, col = (int)parser.problem_mark.column + 1;
			rc = gh_error_set(err, GH_EINVAL, "%s:%d:%d: invalid YAML after the first document: %s", L.file,
					  line, col, parser.problem ? parser.problem : "syntax error");
			if (err) {
				err->line = line;
				err->column = col;
			}
			goto done;
		}
		yaml_node_t *second = yaml_document_get_root_node(&extra);
		int line = second ? (int)extra.start_mark.line + 1 : 0, col = second ? (int)extra.start_mark.column + 1 : 0;
		yaml_document_delete(&extra);
		if (second) {
			rc = gh_error_set(err, GH_EINVAL, "%s:%d:%d: more than one YAML document", L.file, line, col);
			if (err) {
				err->line = line;
				err->column = col;
			}
			goto done;
		}
	}
	L.nseen = (size_t)(L.doc.nodes.top - L.doc.nodes.start) + 1;
	L.seen = calloc(L.nseen, 1);
	L.p = calloc(1, sizeof *L.p);
	if (!L.seen || !L.p) {
		rc = gh_error_set(err, GH_ENOMEM, "out of memory");
		goto done;
	}
	L.p->refs = 1;
	L.seen[1] = 1;
	rc = load_root(&L, root);
	if (rc == 0) {
		*out = L.p;
		L.p = NULL;
	}
done:
	policy_free(L.p);
	free(L.seen);
	if (have_doc)
		yaml_document_delete(&L.doc);
	yaml_parser_delete(&parser);
	return rc;
}

/* ---- export ---- */

static int put_q(struct gh_buf *b, const char *z)
{
	return gh_buf_json_string(b, z, strlen(z)); /* a JSON string is a YAML double-quoted scalar */
}

static int put_list(struct gh_buf *b, char **v, size_t n)
{
	int rc = gh_buf_puts(b, "[");
	for (size_t i = 0; i < n && !rc; i++) {
		if (i)
			rc = gh_buf_puts(b, ", ");
		if (!rc)
			rc = put_q(b, v[i]);
	}
	return rc ? rc : gh_buf_puts(b, "]");
}

bool gh_config_valid_name(const char *s, bool user)
{
	size_t len = strlen(s);
	if (len == 0 || len > GH_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '_' || c == '-' || (user && (c == '.' || c == '@'));
		if (!ok)
			return false;
	}
	return true;
}

const char *gh_access_name(enum gh_access a)
{
	switch (a) {
	case GH_ACCESS_USE: return "use";
	case GH_ACCESS_EDIT: return "edit";
	case GH_ACCESS_OWN: return "own";
	default: return "none";
	}
}

int gh_config_export(const struct gh_policy *p, struct gh_buf *b)
{
	int rc = gh_buf_puts(b, "version: 1\nusers:");
	if (!p->nusers) rc |= gh_buf_puts(b, " []");
	rc |= gh_buf_puts(b, "\n");
	for (size_t i = 0; i < p->nusers; i++) {
		rc |= gh_buf_puts(b, "  - name: ");
		rc |= put_q(b, p->users[i].name);
		if (p->users[i].disabled)
			rc |= gh_buf_puts(b, "\n    disabled: true");
		rc |= gh_buf_puts(b, "\n");
	}
	rc |= gh_buf_puts(b, "groups:");
	if (!p->ngroups) rc |= gh_buf_puts(b, " []");
	rc |= gh_buf_puts(b, "\n");
	for (size_t i = 0; i < p->ngroups; i++) {
		rc |= gh_buf_puts(b, "  - name: ");
		rc |= put_q(b, p->groups[i].name);
		rc |= gh_buf_puts(b, "\n    members: ");
		rc |= put_list(b, p->groups[i].members, p->groups[i].nmembers);
		rc |= gh_buf_puts(b, "\n");
	}
	rc |= gh_buf_puts(b, "admins: ");
	rc |= put_list(b, p->admins, p->nadmins);
	rc |= gh_buf_puts(b, "\nenvironments:");
	if (!p->nenvs) rc |= gh_buf_puts(b, " []");
	rc |= gh_buf_puts(b, "\n");
	for (size_t i = 0; i < p->nenvs; i++) {
		rc |= gh_buf_puts(b, "  - name: ");
		rc |= put_q(b, p->envs[i].name);
		rc |= gh_buf_printf(b, "\n    approval: %s\n    reviewers: ",
				    p->envs[i].approval == GH_APPROVAL_WRITES ? "writes" : "none");
		rc |= put_list(b, p->envs[i].reviewers, p->envs[i].nreviewers);
		rc |= gh_buf_puts(b, "\n");
	}
	rc |= gh_buf_puts(b, "resources:");
	if (!p->nresources) rc |= gh_buf_puts(b, " []");
	rc |= gh_buf_puts(b, "\n");
	for (size_t i = 0; i < p->nresources; i++) {
		const struct gh_policy_resource *r = &p->resources[i];
		rc |= gh_buf_puts(b, "  - name: ");
		rc |= put_q(b, r->name);
		rc |= gh_buf_puts(b, r->kind == GH_RESOURCE_POSTGRES ? "\n    kind: postgres" : "\n    kind: sqlite");
		if (r->nschemas) {
			rc |= gh_buf_puts(b, "\n    schemas: ");
			rc |= put_list(b, r->schemas, r->nschemas);
		}
		rc |= gh_buf_puts(b, "\n    environments:");
		if (!r->nenvs) rc |= gh_buf_puts(b, " {}");
		rc |= gh_buf_puts(b, "\n");
		for (size_t j = 0; j < r->nenvs; j++) {
			rc |= gh_buf_puts(b, "      ");
			rc |= put_q(b, r->envs[j].env);
			rc |= gh_buf_puts(b, r->envs[j].secret ? ": { secret: " : ": { path: ");
			rc |= put_q(b, r->envs[j].secret ? r->envs[j].secret : r->envs[j].path);
			rc |= gh_buf_puts(b, " }\n");
		}
	}
	rc |= gh_buf_puts(b, "apps:");
	if (!p->napps) rc |= gh_buf_puts(b, " []");
	rc |= gh_buf_puts(b, "\n");
	for (size_t i = 0; i < p->napps; i++) {
		rc |= gh_buf_puts(b, "  - name: ");
		rc |= put_q(b, p->apps[i].name);
		rc |= gh_buf_puts(b, "\n");
	}
	rc |= gh_buf_puts(b, "grants:");
	if (!p->ngrants) rc |= gh_buf_puts(b, " []");
	rc |= gh_buf_puts(b, "\n");
	for (size_t i = 0; i < p->ngrants; i++) {
		const struct gh_policy_grant *g = &p->grants[i];
		rc |= gh_buf_puts(b, "  - { resource: ");
		rc |= put_q(b, g->resource);
		rc |= gh_buf_puts(b, ", environment: ");
		rc |= put_q(b, g->environment);
		rc |= gh_buf_puts(b, g->user ? ", user: " : ", group: ");
		rc |= put_q(b, g->user ? g->user : g->group);
		rc |= gh_buf_printf(b, ", access: %s", gh_access_name(g->access));
		if (g->ntables) {
			rc |= gh_buf_puts(b, ", tables: [");
			for (size_t j = 0; j < g->ntables; j++) {
				const struct gh_policy_table *t = &g->tables[j];
				if (j)
					rc |= gh_buf_puts(b, ", ");
				if (!t->ncolumns) {
					rc |= put_q(b, t->name);
					continue;
				}
				rc |= gh_buf_puts(b, "{ name: ");
				rc |= put_q(b, t->name);
				rc |= gh_buf_puts(b, ", columns: ");
				rc |= put_list(b, t->columns, t->ncolumns);
				rc |= gh_buf_puts(b, " }");
			}
			rc |= gh_buf_puts(b, "]");
		}
		rc |= gh_buf_puts(b, " }\n");
	}
	const struct gh_policy_scan *sc = &p->scan;
	if (sc->fail_on || sc->min_release_age >= 0 || sc->max_file_size >= 0 || sc->registry || sc->pypi_registry ||
	    sc->nlicenses || sc->ndeny) {
		rc |= gh_buf_puts(b, "scan:\n");
		if (sc->fail_on)
			rc |= gh_buf_printf(b, "  fail_on: %s\n", sc->fail_on);
		if (sc->min_release_age >= 0)
			rc |= gh_buf_printf(b, "  min_release_age: %llds\n", (long long)sc->min_release_age);
		if (sc->max_file_size >= 0)
			rc |= gh_buf_printf(b, "  max_file_size: %lld\n", (long long)sc->max_file_size);
		if (sc->registry) {
			rc |= gh_buf_puts(b, "  registry: ");
			rc |= put_q(b, sc->registry);
			rc |= gh_buf_puts(b, "\n");
		}
		if (sc->pypi_registry) {
			rc |= gh_buf_puts(b, "  pypi_registry: ");
			rc |= put_q(b, sc->pypi_registry);
			rc |= gh_buf_puts(b, "\n");
		}
		if (sc->nlicenses) {
			rc |= gh_buf_puts(b, "  licenses: ");
			rc |= put_list(b, sc->licenses, sc->nlicenses);
			rc |= gh_buf_puts(b, "\n");
		}
		if (sc->ndeny) {
			rc |= gh_buf_puts(b, "  deny_packages: ");
			rc |= put_list(b, sc->deny_packages, sc->ndeny);
			rc |= gh_buf_puts(b, "\n");
		}
	}
	const struct gh_policy_recovery *rv = &p->recovery;
	if (rv->rto >= 0 || rv->rpo >= 0) {
		rc |= gh_buf_puts(b, "recovery:\n");
		if (rv->rto >= 0)
			rc |= gh_buf_printf(b, "  rto: %llds\n", (long long)rv->rto);
		if (rv->rpo >= 0)
			rc |= gh_buf_printf(b, "  rpo: %llds\n", (long long)rv->rpo);
	}
	const struct gh_policy_audit *au = &p->audit;
	if (au->checkpoint_every != 1000 || au->nsinks) {
		rc |= gh_buf_printf(b, "audit:\n  checkpoint_every: %lld\n  sinks:", (long long)au->checkpoint_every);
		if (!au->nsinks) rc |= gh_buf_puts(b, " []");
		rc |= gh_buf_puts(b, "\n");
		for (size_t i = 0; i < au->nsinks; i++) {
			const struct gh_policy_sink *k = &au->sinks[i];
			static const char *const kinds[] = {"", "stdout", "syslog", "http"};
			rc |= gh_buf_puts(b, "    - name: ");
			rc |= put_q(b, k->name);
			rc |= gh_buf_printf(b, "\n      kind: %s\n      batch: %lld\n      retry_max: %llds\n", kinds[k->kind],
					    (long long)k->batch, (long long)k->retry_max);
			if (k->kind == GH_SINK_HTTP) {
				rc |= gh_buf_puts(b, "      url: ");
				rc |= put_q(b, k->url);
				rc |= gh_buf_printf(b, "\n      timeout: %llds\n", (long long)k->timeout);
				if (k->header) {
					rc |= gh_buf_puts(b, "      header: ");
					rc |= put_q(b, k->header);
					rc |= gh_buf_puts(b, "\n      api_key: { secret: ");
					rc |= put_q(b, k->secret);
					rc |= gh_buf_puts(b, " }\n");
				}
			} else if (k->kind == GH_SINK_SYSLOG) {
				rc |= gh_buf_printf(b, "      facility: %s\n      address: ", facilities[k->facility]);
				rc |= put_q(b, k->address);
				rc |= gh_buf_puts(b, "\n");
			}
		}
	}
	return rc ? GH_ETOOBIG : 0;
}

void gh_config_ref(struct gh_policy *p)
{
	__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
}

void gh_config_unref(struct gh_policy *p)
{
	if (p && __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0)
		policy_free(p);
}

/* ---- lookups (linear: policies are small and lookups are few per request) ---- */

const struct gh_policy_user *gh_config_user(const struct gh_policy *p, const char *name)
{
	for (size_t i = 0; i < p->nusers; i++)
		if (p->users[i].name && strcmp(p->users[i].name, name) == 0)
			return &p->users[i];
	return NULL;
}

const struct gh_policy_group *gh_config_group(const struct gh_policy *p, const char *name)
{
	for (size_t i = 0; i < p->ngroups; i++)
		if (p->groups[i].name && strcmp(p->groups[i].name, name) == 0)
			return &p->groups[i];
	return NULL;
}

const struct gh_policy_env *gh_config_env(const struct gh_policy *p, const char *name)
{
	for (size_t i = 0; i < p->nenvs; i++)
		if (p->envs[i].name && strcmp(p->envs[i].name, name) == 0)
			return &p->envs[i];
	return NULL;
}

const struct gh_policy_resource *gh_config_resource(const struct gh_policy *p, const char *name)
{
	for (size_t i = 0; i < p->nresources; i++)
		if (p->resources[i].name && strcmp(p->resources[i].name, name) == 0)
			return &p->resources[i];
	return NULL;
}

const struct gh_policy_resenv *gh_config_resenv(const struct gh_policy_resource *r, const char *env)
{
	for (size_t i = 0; r && i < r->nenvs; i++)
		if (r->envs[i].env && strcmp(r->envs[i].env, env) == 0)
			return &r->envs[i];
	return NULL;
}

const struct gh_policy_app *gh_config_app(const struct gh_policy *p, const char *name)
{
	for (size_t i = 0; i < p->napps; i++)
		if (p->apps[i].name && strcmp(p->apps[i].name, name) == 0)
			return &p->apps[i];
	return NULL;
}

bool gh_config_in_group(const struct gh_policy *p, const char *user, const char *group)
{
	const struct gh_policy_group *g = gh_config_group(p, group);
	for (size_t i = 0; g && i < g->nmembers; i++)
		if (strcmp(g->members[i], user) == 0)
			return true;
	return false;
}

int gh_config_user_groups(const struct gh_policy *p, const char *user, struct gh_buf *out)
{
	bool first = true;
	for (size_t i = 0; i < p->ngroups; i++)
		for (size_t j = 0; j < p->groups[i].nmembers; j++)
			if (strcmp(p->groups[i].members[j], user) == 0) {
				int rc = gh_buf_printf(out, "%s%s", first ? "" : ",", p->groups[i].name);
				if (rc)
					return rc;
				first = false;
				break;
			}
	return 0;
}

bool gh_config_is_admin(const struct gh_policy *p, const char *user)
{
	for (size_t i = 0; i < p->nadmins; i++)
		if (gh_config_in_group(p, user, p->admins[i]))
			return true;
	return false;
}
