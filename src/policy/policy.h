/* policy: the decision function. Pure: plain structs in, a verdict out, no I/O.
 * Default deny; the rule that decided is always named. */
#ifndef GH_POLICY_H
#define GH_POLICY_H

#include "config/config.h"
#include "sql/sql.h"

enum gh_decision { GH_DENY = 0, GH_ALLOW, GH_PENDING };

struct gh_verdict {
	enum gh_decision decision;
	char rule[160];     /* e.g. "no-grant", "destructive-ddl", "grant:crm/staging/group:analysts/use" */
	char message[384];  /* human explanation, safe to return to the caller */
	enum gh_access level; /* the caller's access level on (resource, environment) */
};

struct gh_request_facts {
	const char *user;
	const char *app;       /* NULL or "" for an ad hoc request */
	const char *resource;
	const char *environment;
	enum gh_sql_class cls;
	const char *reason;    /* the analyser's reason for destructive/forbidden, may be NULL */
	bool own_only;         /* runs only under an `own` grant (PostgreSQL DO, CALL, functions) */
	/* The statement's analysis: the tables and columns it touches, checked against grants
	 * that carry a `tables:` list. NULL: nothing known (only grants' levels count). */
	const struct gh_sql_analysis *analysis;
};

const char *gh_decision_name(enum gh_decision d);

/* Decides whether the request may run now, must wait for a reviewer, or is refused. */
void gh_policy_decide(const struct gh_policy *p, const struct gh_request_facts *f, struct gh_verdict *out);

/* The best access level user holds on (resource, environment), whatever tables the grants
 * list, with the grant that gave it written to rule (if non-NULL). */
enum gh_access gh_policy_level(const struct gh_policy *p, const char *user, const char *resource,
			       const char *environment, char *rule, size_t rulelen);

/* Table scoping. A grant with a `tables:` list covers only the tables (and columns) it lists.
 * A statement's level is, over the tables it names, the weakest of the best levels that cover
 * each; DDL and code need a grant without a list. Table names are as the resource's catalog
 * gives them: SQLite's (compared without regard to ASCII case), PostgreSQL's "table" for the
 * public schema and "schema.table" otherwise ("public.t" is "t").
 *
 * The best level user holds on table in (resource, environment), GH_ACCESS_NONE when no grant
 * covers any of it. */
enum gh_access gh_policy_table_level(const struct gh_policy *p, const char *user, const char *resource,
				     const char *environment, const char *table);
/* True when user may read column of table there: a grant covers the table whole, or lists the
 * column for it. */
bool gh_policy_column_visible(const struct gh_policy *p, const char *user, const char *resource,
			      const char *environment, const char *table, const char *column);
/* True when user's grants in (resource, environment) cover every table and column the analysed
 * statement touches, at any level (what a listing may show; levels, apps and approvals are the
 * decision's business). */
bool gh_policy_covers(const struct gh_policy *p, const char *user, const char *resource, const char *environment,
		      const struct gh_sql_analysis *a);
/* True when the grant entry pattern (a name or a glob: '*' any run of characters, '?' one,
 * neither matching '.') matches table name. A glob never matches a system table ("pg_..." on
 * PostgreSQL, "sqlite_..." on SQLite) unless it starts with that prefix itself. pg: PostgreSQL
 * (exact case, "public." ignored on both sides); else SQLite (ASCII case ignored). */
bool gh_policy_table_match(const char *pattern, const char *table, bool pg);

/* True when user may approve or reject writes in environment (member of a reviewer group). */
bool gh_policy_can_review(const struct gh_policy *p, const char *user, const char *environment);

/* True when user holds own on resource in any environment. */
bool gh_policy_owns(const struct gh_policy *p, const char *user, const char *resource);

#endif
