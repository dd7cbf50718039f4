/* policy: grants evaluated in a fixed order; the first rule that applies decides. */
#include "policy/policy.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

const char *gh_decision_name(enum gh_decision d)
{
	switch (d) {
	case GH_ALLOW: return "allow";
	case GH_PENDING: return "pending";
	default: return "deny";
	}
}

static bool grant_applies(const struct gh_policy *p, const struct gh_policy_grant *g, const char *user)
{
	if (g->user)
		return strcmp(g->user, user) == 0;
	return gh_config_in_group(p, user, g->group);
}

/* The rule naming grant g: "grant:RES/ENV/user:U/LEVEL" (or group:G), with "/tables" when g
 * lists tables. */
static void grant_rule(const struct gh_policy_grant *g, char *rule, size_t n)
{
	snprintf(rule, n, "grant:%s/%s/%s:%s/%s%s", g->resource, g->environment, g->user ? "user" : "group",
		 g->user ? g->user : g->group, gh_access_name(g->access), g->ntables ? "/tables" : "");
}

enum gh_access gh_policy_level(const struct gh_policy *p, const char *user, const char *resource,
			       const char *environment, char *rule, size_t rulelen)
{
	enum gh_access best = GH_ACCESS_NONE;
	for (size_t i = 0; i < p->ngrants; i++) {
		const struct gh_policy_grant *g = &p->grants[i];
		if (strcmp(g->resource, resource) != 0 || strcmp(g->environment, environment) != 0)
			continue;
		if (g->access <= best || !grant_applies(p, g, user))
			continue;
		best = g->access;
		if (rule)
			grant_rule(g, rule, rulelen);
	}
	return best;
}

/* ---- table scoping ---- */

static char fold(char c, bool nocase)
{
	return nocase && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Glob match: '*' any run, '?' any one character, neither crossing a '.'. Iterative with one
 * backtrack point (the last '*'), which is exact because no '*' may cross a '.' either. */
static bool glob(const char *p, const char *s, bool nocase)
{
	const char *star_p = NULL, *star_s = NULL;
	while (*s) {
		if (*p == '*') {
			star_p = ++p;
			star_s = s;
			continue;
		}
		if (*p && (*p == '?' ? *s != '.' : fold(*p, nocase) == fold(*s, nocase))) {
			p++;
			s++;
			continue;
		}
		if (star_p && *star_s != '.') {
			p = star_p;
			s = ++star_s;
			continue;
		}
		return false;
	}
	while (*p == '*')
		p++;
	return !*p;
}

static bool has_prefix(const char *s, const char *prefix, bool nocase)
{
	for (; *prefix; s++, prefix++)
		if (fold(*s, nocase) != fold(*prefix, nocase))
			return false;
	return true;
}

bool gh_policy_table_match(const char *pattern, const char *table, bool pg)
{
	if (pg) {
		if (strncmp(pattern, "public.", 7) == 0)
			pattern += 7;
		if (strncmp(table, "public.", 7) == 0)
			table += 7;
	}
	const char *sys = pg ? "pg_" : "sqlite_";
	bool is_glob = strpbrk(pattern, "*?") != NULL;
	if (is_glob && has_prefix(table, sys, !pg) && !has_prefix(pattern, sys, !pg))
		return false; /* "*" is the user's tables, never the catalog */
	return glob(pattern, table, !pg);
}

static bool column_listed(const struct gh_policy_table *e, const char *column, bool pg)
{
	for (size_t i = 0; i < e->ncolumns; i++)
		if (pg ? strcmp(e->columns[i], column) == 0 : sqlite3_stricmp(e->columns[i], column) == 0)
			return true;
	return false;
}

/* The applicable grants of (user, resource, environment) are those grant_applies() and that
 * name the resource and environment. */
static bool grant_for(const struct gh_policy *p, const struct gh_policy_grant *g, const char *user,
		      const char *resource, const char *environment)
{
	return strcmp(g->resource, resource) == 0 && strcmp(g->environment, environment) == 0 &&
	       grant_applies(p, g, user);
}

enum cover { COVER_NONE, COVER_NAME_ONLY, COVER_ALL };

/* Whether g covers what the statement does to table t: COVER_ALL when it does (a grant without
 * a list; an entry without columns; or t only read, naming only columns listed by g's entries
 * for it), COVER_NAME_ONLY when entries name t but not what is done to it (*why says what),
 * COVER_NONE when nothing names t. */
static enum cover grant_covers(const struct gh_policy_grant *g, const struct gh_sql_table *t, bool pg,
			       const char **bad_column)
{
	if (!g->ntables)
		return COVER_ALL;
	bool named = false;
	for (size_t i = 0; i < g->ntables; i++) {
		if (!gh_policy_table_match(g->tables[i].name, t->name, pg))
			continue;
		named = true;
		if (!g->tables[i].ncolumns)
			return COVER_ALL;
	}
	if (!named)
		return COVER_NONE;
	if (t->written || t->all_columns) {
		*bad_column = NULL;
		return COVER_NAME_ONLY;
	}
	for (size_t c = 0; c < t->ncolumns; c++) {
		bool listed = false;
		for (size_t i = 0; i < g->ntables && !listed; i++)
			listed = gh_policy_table_match(g->tables[i].name, t->name, pg) &&
				 column_listed(&g->tables[i], t->columns[c], pg);
		if (!listed) {
			*bad_column = t->columns[c];
			return COVER_NAME_ONLY;
		}
	}
	return COVER_ALL;
}

/* Tables the policy leaves alone: those only a trigger writes (its definer decided), SQLite's
 * own bookkeeping of its schema table when a statement does not read it, and SQLite's JSON
 * table-valued functions, which read only their arguments. */
static bool table_checked(const struct gh_sql_table *t, bool pg)
{
	if (!t->direct)
		return false;
	if (pg)
		return true;
	if (!t->read && sqlite3_strnicmp(t->name, "sqlite_", 7) == 0)
		return false;
	return sqlite3_stricmp(t->name, "json_each") != 0 && sqlite3_stricmp(t->name, "json_tree") != 0;
}

enum gh_access gh_policy_table_level(const struct gh_policy *p, const char *user, const char *resource,
				     const char *environment, const char *table)
{
	const struct gh_policy_resource *r = gh_config_resource(p, resource);
	bool pg = r && r->kind == GH_RESOURCE_POSTGRES;
	enum gh_access best = GH_ACCESS_NONE;
	for (size_t i = 0; r && i < p->ngrants; i++) {
		const struct gh_policy_grant *g = &p->grants[i];
		if (g->access <= best || !grant_for(p, g, user, resource, environment))
			continue;
		bool named = !g->ntables;
		for (size_t j = 0; j < g->ntables && !named; j++)
			named = gh_policy_table_match(g->tables[j].name, table, pg);
		if (named)
			best = g->access;
	}
	return best;
}

bool gh_policy_column_visible(const struct gh_policy *p, const char *user, const char *resource,
			      const char *environment, const char *table, const char *column)
{
	const struct gh_policy_resource *r = gh_config_resource(p, resource);
	bool pg = r && r->kind == GH_RESOURCE_POSTGRES;
	for (size_t i = 0; r && i < p->ngrants; i++) {
		const struct gh_policy_grant *g = &p->grants[i];
		if (!grant_for(p, g, user, resource, environment))
			continue;
		if (!g->ntables)
			return true;
		for (size_t j = 0; j < g->ntables; j++)
			if (gh_policy_table_match(g->tables[j].name, table, pg) &&
			    (!g->tables[j].ncolumns || column_listed(&g->tables[j], column, pg)))
				return true;
	}
	return false;
}

/* fmt is always a literal here with exactly two %s for a and b. */
static void verdict(struct gh_verdict *v, enum gh_decision d, const char *rule, const char *fmt, const char *a,
		    const char *b)
{
	v->decision = d;
	snprintf(v->rule, sizeof v->rule, "%s", rule);
	#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(v->message, sizeof v->message, fmt, a ? a : "", b ? b : "");
#pragma GCC diagnostic pop
}

/* Narrows v->level (and rule) to what the grants with a tables list allow for the tables the
 * statement touches. Returns false after writing a refusal into v. */
static bool scope_level(const struct gh_policy *p, const struct gh_request_facts *f, bool pg, struct gh_verdict *v,
			char *rule, size_t rulelen)
{
	enum gh_access whole = GH_ACCESS_NONE;
	const struct gh_policy_grant *whole_g = NULL;
	bool scoped = false;
	for (size_t i = 0; i < p->ngrants; i++) {
		const struct gh_policy_grant *g = &p->grants[i];
		if (!grant_for(p, g, f->user, f->resource, f->environment))
			continue;
		if (g->ntables)
			scoped = true;
		else if (g->access > whole) {
			whole = g->access;
			whole_g = g;
		}
	}
	if (!scoped)
		return true; /* every grant covers the whole resource: nothing to narrow */
	const struct gh_sql_analysis *a = f->analysis;
	if (a->sets_search_path && whole == GH_ACCESS_NONE) {
		verdict(v, GH_DENY, "search-path-scoped",
			"'%s' may use only the tables its grants list in '%s', so it may not change search_path "
			"(which changes what unqualified names mean)", f->user, f->environment);
		return false;
	}
	if (f->cls == GH_SQL_DDL || f->own_only) {
		if (whole == GH_ACCESS_NONE) {
			verdict(v, GH_DENY, "needs-whole-resource",
				"schema changes and code need a grant on the whole resource; the grants of '%s' in '%s' "
				"cover listed tables only", f->user, f->environment);
			return false;
		}
		v->level = whole;
		grant_rule(whole_g, rule, rulelen);
		return true;
	}
	enum gh_access level = GH_ACCESS_OWN + 1;
	const struct gh_policy_grant *level_g = NULL;
	for (size_t t = 0; t < a->ntables; t++) {
		const struct gh_sql_table *tab = &a->tables[t];
		if (!table_checked(tab, pg))
			continue;
		enum gh_access best = GH_ACCESS_NONE;
		const struct gh_policy_grant *best_g = NULL;
		bool named = false;
		const char *bad_column = NULL;
		for (size_t i = 0; i < p->ngrants; i++) {
			const struct gh_policy_grant *g = &p->grants[i];
			if (g->access <= best || !grant_for(p, g, f->user, f->resource, f->environment))
				continue;
			const char *bad = NULL;
			enum cover c = grant_covers(g, tab, pg, &bad);
			if (c == COVER_ALL) {
				best = g->access;
				best_g = g;
			} else if (c == COVER_NAME_ONLY && !named) {
				named = true;
				bad_column = bad;
			}
		}
		if (best == GH_ACCESS_NONE) {
			v->decision = GH_DENY;
			if (!named) {
				snprintf(v->rule, sizeof v->rule, "table-not-granted");
				snprintf(v->message, sizeof v->message, "no grant gives '%s' access to table '%s' in '%s'",
					 f->user, tab->name, f->environment);
			} else if (bad_column) {
				snprintf(v->rule, sizeof v->rule, "column-not-granted");
				snprintf(v->message, sizeof v->message,
					 "no grant gives '%s' column '%s' of table '%s' in '%s'%s", f->user, bad_column,
					 tab->name, f->environment,
					 pg ? " (an unqualified column name is counted for every table of the "
					      "statement: qualify it with its table)" : "");
			} else {
				snprintf(v->rule, sizeof v->rule, "column-not-granted");
				snprintf(v->message, sizeof v->message,
					 tab->written ? "'%s' may read only some columns of table '%s' in '%s'; writing it "
							"needs a grant on the whole table"
						      : "'%s' may read only some columns of table '%s' in '%s': name them "
							"(no *, whole rows, NATURAL JOIN or column aliases)",
					 f->user, tab->name, f->environment);
			}
			return false;
		}
		if (best < level) {
			level = best;
			level_g = best_g;
		}
	}
	if (level_g) { /* else no table named: the best grant's level stands */
		v->level = level;
		grant_rule(level_g, rule, rulelen);
	}
	return true;
}

void gh_policy_decide(const struct gh_policy *p, const struct gh_request_facts *f, struct gh_verdict *v)
{
	memset(v, 0, sizeof *v);
	const struct gh_policy_user *u = gh_config_user(p, f->user);
	if (!u) {
		verdict(v, GH_DENY, "unknown-user", "user '%s' is not defined in the policy", f->user, NULL);
		return;
	}
	if (u->disabled) {
		verdict(v, GH_DENY, "user-disabled", "user '%s' is disabled", f->user, NULL);
		return;
	}
	const struct gh_policy_resource *r = gh_config_resource(p, f->resource);
	if (!r) {
		verdict(v, GH_DENY, "unknown-resource", "resource '%s' is not defined", f->resource, NULL);
		return;
	}
	const struct gh_policy_env *env = gh_config_env(p, f->environment);
	if (!env || !gh_config_resenv(r, f->environment)) {
		verdict(v, GH_DENY, "unknown-environment", "resource '%s' has no environment '%s'", f->resource,
			f->environment);
		return;
	}
	bool has_app = f->app && *f->app;
	if (has_app && !gh_config_app(p, f->app)) {
		verdict(v, GH_DENY, "unknown-app", "app '%s' is not registered in the policy", f->app, NULL);
		return;
	}
	/* Absolute refusals come before any grant: no level of access runs these. */
	if (f->cls == GH_SQL_DESTRUCTIVE) {
		verdict(v, GH_DENY, "destructive-ddl", "destructive statements never run through Gatehouse (%s%s)",
			f->reason, NULL);
		return;
	}
	if (f->cls == GH_SQL_FORBIDDEN) {
		verdict(v, GH_DENY, "forbidden-statement", "statement refused: %s%s", f->reason, NULL);
		return;
	}
	char rule[sizeof v->rule];
	v->level = gh_policy_level(p, f->user, f->resource, f->environment, rule, sizeof rule);
	if (v->level == GH_ACCESS_NONE) {
		verdict(v, GH_DENY, "no-grant", "no grant gives '%s' access to this resource in '%s'", f->user,
			f->environment);
		return;
	}
	if (f->analysis && !scope_level(p, f, r->kind == GH_RESOURCE_POSTGRES, v, rule, sizeof rule))
		return;
	if (!has_app && v->level < GH_ACCESS_EDIT) {
		verdict(v, GH_DENY, "needs-app-or-edit",
			"'use' access runs statements only through a registered app; ad hoc statements need 'edit'%s%s",
			NULL, NULL);
		return;
	}
	if (f->cls == GH_SQL_DDL && v->level < GH_ACCESS_EDIT) {
		verdict(v, GH_DENY, "ddl-needs-edit", "schema changes need 'edit' access%s%s", NULL, NULL);
		return;
	}
	if (f->own_only && v->level < GH_ACCESS_OWN) {
		verdict(v, GH_DENY, "needs-own",
			"code and privileges (DO, CALL, functions, procedures, GRANT, REVOKE) need 'own' access: %s%s",
			f->reason && *f->reason ? f->reason : "statement runs code or changes privileges", NULL);
		return;
	}
	if ((f->cls == GH_SQL_WRITE || f->cls == GH_SQL_DDL) && env->approval == GH_APPROVAL_WRITES) {
		verdict(v, GH_PENDING, "approval-required",
			"writes in '%s' wait for a reviewer who is not the requester%s", f->environment, NULL);
		return;
	}
	v->decision = GH_ALLOW;
	snprintf(v->rule, sizeof v->rule, "%s", rule);
	snprintf(v->message, sizeof v->message, "allowed by %s", rule);
}

bool gh_policy_covers(const struct gh_policy *p, const char *user, const char *resource, const char *environment,
		      const struct gh_sql_analysis *a)
{
	const struct gh_policy_resource *r = gh_config_resource(p, resource);
	struct gh_verdict v;
	memset(&v, 0, sizeof v);
	if (!r || gh_policy_level(p, user, resource, environment, NULL, 0) == GH_ACCESS_NONE)
		return false;
	struct gh_request_facts f = {.user = user, .resource = resource, .environment = environment, .cls = a->cls,
				     .own_only = a->own_only, .analysis = a};
	char rule[sizeof v.rule];
	return scope_level(p, &f, r->kind == GH_RESOURCE_POSTGRES, &v, rule, sizeof rule);
}

bool gh_policy_can_review(const struct gh_policy *p, const char *user, const char *environment)
{
	const struct gh_policy_env *env = gh_config_env(p, environment);
	const struct gh_policy_user *u = gh_config_user(p, user);
	if (!env || !u || u->disabled)
		return false;
	for (size_t i = 0; i < env->nreviewers; i++)
		if (gh_config_in_group(p, user, env->reviewers[i]))
			return true;
	return false;
}

bool gh_policy_owns(const struct gh_policy *p, const char *user, const char *resource)
{
	const struct gh_policy_resource *r = gh_config_resource(p, resource);
	for (size_t i = 0; r && i < r->nenvs; i++)
		if (gh_policy_level(p, user, resource, r->envs[i].env, NULL, 0) >= GH_ACCESS_OWN)
			return true;
	return false;
}
