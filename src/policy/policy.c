/* policy: grants evaluated in a fixed order; the first rule that applies decides. */
#include "policy/policy.h"

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
			snprintf(rule, rulelen, "grant:%s/%s/%s:%s/%s", g->resource, g->environment,
				 g->user ? "user" : "group", g->user ? g->user : g->group, gh_access_name(g->access));
	}
	return best;
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
