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
};

const char *gh_decision_name(enum gh_decision d);

/* Decides whether the request may run now, must wait for a reviewer, or is refused. */
void gh_policy_decide(const struct gh_policy *p, const struct gh_request_facts *f, struct gh_verdict *out);

/* The best access level user holds on (resource, environment), with the grant that gave it
 * written to rule (if non-NULL). */
enum gh_access gh_policy_level(const struct gh_policy *p, const char *user, const char *resource,
			       const char *environment, char *rule, size_t rulelen);

/* True when user may approve or reject writes in environment (member of a reviewer group). */
bool gh_policy_can_review(const struct gh_policy *p, const char *user, const char *environment);

/* True when user holds own on resource in any environment. */
bool gh_policy_owns(const struct gh_policy *p, const char *user, const char *resource);

#endif
