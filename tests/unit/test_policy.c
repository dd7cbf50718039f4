/* Unit tests for src/policy: the decision function over a policy loaded from YAML. */
#include "unit.h"

#include <string.h>

#include "config/config.h"
#include "policy/policy.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))

static const char policy_yaml[] =
	"version: 1\n"
	"users:\n"
	"  - name: alice\n"
	"  - name: bob\n"
	"  - name: carol\n"
	"  - name: dana\n"
	"  - name: erin\n"
	"  - name: frank\n"
	"  - name: mallory\n"
	"    disabled: true\n"
	"groups:\n"
	"  - name: analysts\n"
	"    members: [alice, frank]\n"
	"  - name: engineers\n"
	"    members: [bob, carol]\n"
	"  - name: leads\n"
	"    members: [carol, mallory]\n"
	"  - name: platform\n"
	"    members: [dana]\n"
	"admins: [platform]\n"
	"environments:\n"
	"  - name: staging\n"
	"  - name: production\n"
	"    approval: writes\n"
	"    reviewers: [leads]\n"
	"  - name: dev\n"
	"resources:\n"
	"  - name: crm\n"
	"    kind: sqlite\n"
	"    environments:\n"
	"      staging: { path: /srv/crm-staging.db }\n"
	"      production: { path: /srv/crm.db }\n"
	"      dev: { path: /srv/crm-dev.db }\n"
	"  - name: billing\n"
	"    kind: sqlite\n"
	"    environments:\n"
	"      staging: { path: /srv/billing-staging.db }\n"
	"apps:\n"
	"  - name: invoices\n"
	"grants:\n"
	"  - { resource: crm, environment: staging, group: analysts, access: use }\n"
	"  - { resource: crm, environment: staging, group: engineers, access: edit }\n"
	"  - { resource: crm, environment: production, user: carol, access: own }\n"
	"  - { resource: crm, environment: production, group: engineers, access: edit }\n"
	"  - { resource: crm, environment: staging, user: bob, access: use }\n"
	"  - { resource: crm, environment: staging, user: erin, access: edit }\n"
	"  - { resource: crm, environment: dev, user: frank, access: own }\n"
	"  - { resource: crm, environment: staging, user: mallory, access: own }\n"
	"  - { resource: billing, environment: staging, user: dana, access: own }\n"
	"  - { resource: crm, environment: dev, user: alice, access: use }\n"
	"  - { resource: crm, environment: dev, group: analysts, access: edit }\n";

static int setup(void **state)
{
	struct gh_policy *p = NULL;
	struct gh_error err;
	gh_error_clear(&err);
	if (gh_config_parse(policy_yaml, sizeof policy_yaml - 1, "policy.yaml", NULL, &p, &err) != 0) {
		fprintf(stderr, "policy: %s\n", err.message);
		return -1;
	}
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	gh_config_unref(*state);
	return 0;
}

static struct gh_verdict decide(const struct gh_policy *p, const char *user, const char *app, const char *res,
				const char *env, enum gh_sql_class cls, const char *reason)
{
	struct gh_request_facts f = {.user = user, .app = app, .resource = res, .environment = env, .cls = cls,
				     .reason = reason};
	struct gh_verdict v;
	memset(&v, 0x5a, sizeof v); /* decide must fill every field it reports */
	gh_policy_decide(p, &f, &v);
	assert_non_null(memchr(v.rule, '\0', sizeof v.rule));
	assert_non_null(memchr(v.message, '\0', sizeof v.message));
	assert_true(v.rule[0] != '\0');     /* the deciding rule is always named */
	assert_true(v.message[0] != '\0');
	return v;
}

static void expect(const struct gh_policy *p, const char *user, const char *app, const char *res, const char *env,
		   enum gh_sql_class cls, enum gh_decision want, const char *rule)
{
	struct gh_verdict v = decide(p, user, app, res, env, cls, cls >= GH_SQL_DESTRUCTIVE ? "DROP of t" : NULL);
	if (v.decision != want || strcmp(v.rule, rule) != 0)
		fail_msg("%s app=%s %s/%s %s: got %s '%s' (%s), want %s '%s'", user, app ? app : "-", res, env,
			 gh_sql_class_name(cls), gh_decision_name(v.decision), v.rule, v.message, gh_decision_name(want),
			 rule);
}

static void test_decision_names(void **state)
{
	(void)state;
	assert_string_equal(gh_decision_name(GH_ALLOW), "allow");
	assert_string_equal(gh_decision_name(GH_PENDING), "pending");
	assert_string_equal(gh_decision_name(GH_DENY), "deny");
	assert_string_equal(gh_access_name(GH_ACCESS_USE), "use");
	assert_string_equal(gh_access_name(GH_ACCESS_EDIT), "edit");
	assert_string_equal(gh_access_name(GH_ACCESS_OWN), "own");
	assert_string_equal(gh_access_name(GH_ACCESS_NONE), "none");
	CHECKED("decision and access names");
}

static void test_identity_rules(void **state)
{
	const struct gh_policy *p = *state;
	struct gh_verdict v = decide(p, "zed", NULL, "crm", "staging", GH_SQL_READ, NULL);
	assert_int_equal(v.decision, GH_DENY);
	assert_string_equal(v.rule, "unknown-user");
	assert_non_null(strstr(v.message, "zed"));
	expect(p, "", NULL, "crm", "staging", GH_SQL_READ, GH_DENY, "unknown-user");
	expect(p, "Alice", NULL, "crm", "staging", GH_SQL_READ, GH_DENY, "unknown-user"); /* names are exact */

	/* disabled users are refused even with an own grant, and before anything else is looked at */
	v = decide(p, "mallory", NULL, "crm", "staging", GH_SQL_READ, NULL);
	assert_int_equal(v.decision, GH_DENY);
	assert_string_equal(v.rule, "user-disabled");
	assert_non_null(strstr(v.message, "mallory"));
	expect(p, "mallory", NULL, "nope", "staging", GH_SQL_DESTRUCTIVE, GH_DENY, "user-disabled");
	CHECKED("unknown-user and user-disabled come first");
}

static void test_target_rules(void **state)
{
	const struct gh_policy *p = *state;
	struct gh_verdict v = decide(p, "bob", NULL, "nope", "staging", GH_SQL_READ, NULL);
	assert_int_equal(v.decision, GH_DENY);
	assert_string_equal(v.rule, "unknown-resource");
	assert_non_null(strstr(v.message, "nope"));

	/* an environment nobody defined, and one that exists but not on this resource */
	v = decide(p, "bob", NULL, "crm", "qa", GH_SQL_READ, NULL);
	assert_int_equal(v.decision, GH_DENY);
	assert_string_equal(v.rule, "unknown-environment");
	assert_non_null(strstr(v.message, "qa"));
	expect(p, "dana", NULL, "billing", "production", GH_SQL_READ, GH_DENY, "unknown-environment");
	expect(p, "dana", NULL, "billing", "dev", GH_SQL_READ, GH_DENY, "unknown-environment");

	v = decide(p, "alice", "ghost", "crm", "staging", GH_SQL_READ, NULL);
	assert_int_equal(v.decision, GH_DENY);
	assert_string_equal(v.rule, "unknown-app");
	assert_non_null(strstr(v.message, "ghost"));
	/* an empty app is an ad hoc request, not an unknown app */
	expect(p, "bob", "", "crm", "staging", GH_SQL_READ, GH_ALLOW, "grant:crm/staging/group:engineers/edit");
	CHECKED("unknown-resource, unknown-environment (undefined and not on the resource), unknown-app");
}

static void test_absolute_refusals(void **state)
{
	const struct gh_policy *p = *state;
	/* destructive statements are refused for everyone, owners included, in every environment */
	const char *owners[][3] = {{"carol", "crm", "production"}, {"frank", "crm", "dev"}, {"dana", "billing", "staging"},
				   {"bob", "crm", "staging"}, {"alice", "crm", "staging"}};
	for (size_t i = 0; i < sizeof owners / sizeof owners[0]; i++) {
		struct gh_verdict v = decide(p, owners[i][0], NULL, owners[i][1], owners[i][2], GH_SQL_DESTRUCTIVE,
					     "DROP of users");
		assert_int_equal(v.decision, GH_DENY);
		assert_string_equal(v.rule, "destructive-ddl");
		assert_non_null(strstr(v.message, "DROP of users")); /* the analyser's reason is shown */
		v = decide(p, owners[i][0], "invoices", owners[i][1], owners[i][2], GH_SQL_DESTRUCTIVE, NULL);
		assert_string_equal(v.rule, "destructive-ddl");
	}
	assert_int_equal(gh_policy_level(p, "carol", "crm", "production", NULL, 0), GH_ACCESS_OWN);

	struct gh_verdict v = decide(p, "carol", NULL, "crm", "production", GH_SQL_FORBIDDEN, "ATTACH/DETACH reaches");
	assert_int_equal(v.decision, GH_DENY);
	assert_string_equal(v.rule, "forbidden-statement");
	assert_non_null(strstr(v.message, "ATTACH/DETACH reaches"));
	expect(p, "frank", "invoices", "crm", "dev", GH_SQL_FORBIDDEN, GH_DENY, "forbidden-statement");
	/* a user without any grant still gets the absolute rule named, not no-grant */
	expect(p, "dana", NULL, "crm", "staging", GH_SQL_DESTRUCTIVE, GH_DENY, "destructive-ddl");
	CHECKED("destructive-ddl (even for own) and forbidden-statement before any grant");
}

static void test_grant_rules(void **state)
{
	const struct gh_policy *p = *state;
	/* no grant at all */
	struct gh_verdict v = decide(p, "dana", NULL, "crm", "staging", GH_SQL_READ, NULL);
	assert_int_equal(v.decision, GH_DENY);
	assert_string_equal(v.rule, "no-grant");
	assert_int_equal(v.level, GH_ACCESS_NONE);
	assert_non_null(strstr(v.message, "dana"));

	/* use: only through a registered app */
	v = decide(p, "alice", NULL, "crm", "staging", GH_SQL_READ, NULL);
	assert_int_equal(v.decision, GH_DENY);
	assert_string_equal(v.rule, "needs-app-or-edit");
	assert_int_equal(v.level, GH_ACCESS_USE);
	v = decide(p, "alice", "invoices", "crm", "staging", GH_SQL_READ, NULL);
	assert_int_equal(v.decision, GH_ALLOW);
	assert_string_equal(v.rule, "grant:crm/staging/group:analysts/use");
	assert_int_equal(v.level, GH_ACCESS_USE);
	assert_non_null(strstr(v.message, "grant:crm/staging/group:analysts/use"));
	expect(p, "alice", "invoices", "crm", "staging", GH_SQL_WRITE, GH_ALLOW, "grant:crm/staging/group:analysts/use");
	expect(p, "alice", NULL, "crm", "staging", GH_SQL_WRITE, GH_DENY, "needs-app-or-edit");

	/* DDL needs edit even through an app */
	v = decide(p, "alice", "invoices", "crm", "staging", GH_SQL_DDL, NULL);
	assert_int_equal(v.decision, GH_DENY);
	assert_string_equal(v.rule, "ddl-needs-edit");
	assert_int_equal(v.level, GH_ACCESS_USE);

	/* edit: ad hoc reads, writes and DDL outside approval environments */
	expect(p, "erin", NULL, "crm", "staging", GH_SQL_READ, GH_ALLOW, "grant:crm/staging/user:erin/edit");
	expect(p, "erin", NULL, "crm", "staging", GH_SQL_WRITE, GH_ALLOW, "grant:crm/staging/user:erin/edit");
	expect(p, "erin", NULL, "crm", "staging", GH_SQL_DDL, GH_ALLOW, "grant:crm/staging/user:erin/edit");
	expect(p, "erin", "invoices", "crm", "staging", GH_SQL_DDL, GH_ALLOW, "grant:crm/staging/user:erin/edit");
	expect(p, "dana", NULL, "billing", "staging", GH_SQL_DDL, GH_ALLOW, "grant:billing/staging/user:dana/own");
	CHECKED("no-grant, needs-app-or-edit, ddl-needs-edit, allow naming the user or group grant");
}

static void test_approval(void **state)
{
	const struct gh_policy *p = *state;
	struct gh_verdict v = decide(p, "bob", NULL, "crm", "production", GH_SQL_WRITE, NULL);
	assert_int_equal(v.decision, GH_PENDING);
	assert_string_equal(v.rule, "approval-required");
	assert_int_equal(v.level, GH_ACCESS_EDIT);
	assert_non_null(strstr(v.message, "production"));
	expect(p, "bob", NULL, "crm", "production", GH_SQL_DDL, GH_PENDING, "approval-required");
	/* owners and app traffic wait too */
	expect(p, "carol", NULL, "crm", "production", GH_SQL_WRITE, GH_PENDING, "approval-required");
	expect(p, "carol", "invoices", "crm", "production", GH_SQL_DDL, GH_PENDING, "approval-required");
	/* reads do not wait */
	expect(p, "bob", NULL, "crm", "production", GH_SQL_READ, GH_ALLOW, "grant:crm/production/group:engineers/edit");
	/* the same write in a non-approval environment runs */
	expect(p, "bob", NULL, "crm", "staging", GH_SQL_WRITE, GH_ALLOW, "grant:crm/staging/group:engineers/edit");
	/* someone who could not run it at all is denied, not queued */
	expect(p, "erin", NULL, "crm", "production", GH_SQL_WRITE, GH_DENY, "no-grant");
	CHECKED("approval-required: writes and DDL pend in production; reads and staging writes run");
}

static void test_environment_isolation(void **state)
{
	const struct gh_policy *p = *state;
	/* erin has edit on staging only: nothing in production or dev */
	assert_int_equal(gh_policy_level(p, "erin", "crm", "staging", NULL, 0), GH_ACCESS_EDIT);
	assert_int_equal(gh_policy_level(p, "erin", "crm", "production", NULL, 0), GH_ACCESS_NONE);
	assert_int_equal(gh_policy_level(p, "erin", "crm", "dev", NULL, 0), GH_ACCESS_NONE);
	expect(p, "erin", NULL, "crm", "production", GH_SQL_READ, GH_DENY, "no-grant");
	expect(p, "erin", NULL, "crm", "dev", GH_SQL_READ, GH_DENY, "no-grant");
	/* frank owns dev; that gives him nothing in production, and only analysts' use in staging */
	assert_int_equal(gh_policy_level(p, "frank", "crm", "dev", NULL, 0), GH_ACCESS_OWN);
	assert_int_equal(gh_policy_level(p, "frank", "crm", "production", NULL, 0), GH_ACCESS_NONE);
	assert_int_equal(gh_policy_level(p, "frank", "crm", "staging", NULL, 0), GH_ACCESS_USE);
	expect(p, "frank", "invoices", "crm", "production", GH_SQL_READ, GH_DENY, "no-grant");
	/* a grant on one resource gives nothing on another in the same environment */
	assert_int_equal(gh_policy_level(p, "dana", "crm", "staging", NULL, 0), GH_ACCESS_NONE);
	assert_int_equal(gh_policy_level(p, "carol", "billing", "staging", NULL, 0), GH_ACCESS_NONE);
	/* unknown names give nothing */
	assert_int_equal(gh_policy_level(p, "zed", "crm", "staging", NULL, 0), GH_ACCESS_NONE);
	assert_int_equal(gh_policy_level(p, "bob", "crm", "qa", NULL, 0), GH_ACCESS_NONE);
	assert_int_equal(gh_policy_level(p, "bob", "nope", "staging", NULL, 0), GH_ACCESS_NONE);
	CHECKED("a grant in one environment never implies another (production explicit)");
}

static void test_highest_level_wins(void **state)
{
	const struct gh_policy *p = *state;
	char rule[160];
	/* bob: user grant use + engineers edit on staging -> edit (group) */
	assert_int_equal(gh_policy_level(p, "bob", "crm", "staging", rule, sizeof rule), GH_ACCESS_EDIT);
	assert_string_equal(rule, "grant:crm/staging/group:engineers/edit");
	/* carol: own (user, listed first) + engineers edit (listed later) on production -> own */
	assert_int_equal(gh_policy_level(p, "carol", "crm", "production", rule, sizeof rule), GH_ACCESS_OWN);
	assert_string_equal(rule, "grant:crm/production/user:carol/own");
	/* alice: user use (listed first) + analysts edit (listed later) on dev -> edit */
	assert_int_equal(gh_policy_level(p, "alice", "crm", "dev", rule, sizeof rule), GH_ACCESS_EDIT);
	assert_string_equal(rule, "grant:crm/dev/group:analysts/edit");
	/* frank: analysts edit + user own on dev -> own */
	assert_int_equal(gh_policy_level(p, "frank", "crm", "dev", rule, sizeof rule), GH_ACCESS_OWN);
	assert_string_equal(rule, "grant:crm/dev/user:frank/own");
	/* the verdict names the winning grant */
	expect(p, "bob", NULL, "crm", "staging", GH_SQL_WRITE, GH_ALLOW, "grant:crm/staging/group:engineers/edit");
	expect(p, "alice", NULL, "crm", "dev", GH_SQL_DDL, GH_ALLOW, "grant:crm/dev/group:analysts/edit");
	/* no grant leaves rule untouched */
	snprintf(rule, sizeof rule, "%s", "untouched");
	assert_int_equal(gh_policy_level(p, "dana", "crm", "staging", rule, sizeof rule), GH_ACCESS_NONE);
	assert_string_equal(rule, "untouched");
	/* a short rule buffer is truncated, not overrun */
	char small[10];
	assert_int_equal(gh_policy_level(p, "bob", "crm", "staging", small, sizeof small), GH_ACCESS_EDIT);
	assert_string_equal(small, "grant:crm");
	CHECKED("highest level wins across user and group grants, whatever their order");
}

static void test_can_review(void **state)
{
	const struct gh_policy *p = *state;
	assert_true(gh_policy_can_review(p, "carol", "production"));
	assert_false(gh_policy_can_review(p, "bob", "production"));   /* engineer, not a lead */
	assert_false(gh_policy_can_review(p, "mallory", "production")); /* a lead, but disabled */
	assert_false(gh_policy_can_review(p, "dana", "production"));  /* admin is not reviewer */
	assert_false(gh_policy_can_review(p, "carol", "staging"));    /* no reviewers there */
	assert_false(gh_policy_can_review(p, "carol", "qa"));
	assert_false(gh_policy_can_review(p, "zed", "production"));
	CHECKED("gh_policy_can_review: reviewer group members only, never disabled or unknown users");
}

static void test_owns(void **state)
{
	const struct gh_policy *p = *state;
	assert_true(gh_policy_owns(p, "carol", "crm"));   /* own in production */
	assert_true(gh_policy_owns(p, "frank", "crm"));   /* own in dev */
	assert_true(gh_policy_owns(p, "dana", "billing"));
	assert_false(gh_policy_owns(p, "bob", "crm"));    /* edit is not own */
	assert_false(gh_policy_owns(p, "erin", "crm"));
	assert_false(gh_policy_owns(p, "dana", "crm"));
	assert_false(gh_policy_owns(p, "carol", "billing"));
	assert_false(gh_policy_owns(p, "carol", "nope"));
	assert_false(gh_policy_owns(p, "zed", "crm"));
	CHECKED("gh_policy_owns: own on the resource in any environment");
}

/* A policy without grants denies everything and names the rule. */
static void test_empty_policy(void **state)
{
	(void)state;
	static const char y[] = "version: 1\n"
				"users: [{name: u}]\n"
				"environments: [{name: e}]\n"
				"resources: [{name: r, kind: sqlite, environments: {e: {path: /x.db}}}]\n";
	struct gh_policy *p = NULL;
	struct gh_error err;
	gh_error_clear(&err);
	assert_int_equal(gh_config_parse(y, sizeof y - 1, NULL, NULL, &p, &err), 0);
	for (int c = GH_SQL_READ; c <= GH_SQL_DDL; c++)
		expect(p, "u", NULL, "r", "e", (enum gh_sql_class)c, GH_DENY, "no-grant");
	assert_false(gh_policy_can_review(p, "u", "e"));
	assert_false(gh_policy_owns(p, "u", "r"));
	gh_config_unref(p);
	CHECKED("default deny with no grants");
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_decision_names),
	cmocka_unit_test_setup_teardown(test_identity_rules, setup, teardown),
	cmocka_unit_test_setup_teardown(test_target_rules, setup, teardown),
	cmocka_unit_test_setup_teardown(test_absolute_refusals, setup, teardown),
	cmocka_unit_test_setup_teardown(test_grant_rules, setup, teardown),
	cmocka_unit_test_setup_teardown(test_approval, setup, teardown),
	cmocka_unit_test_setup_teardown(test_environment_isolation, setup, teardown),
	cmocka_unit_test_setup_teardown(test_highest_level_wins, setup, teardown),
	cmocka_unit_test_setup_teardown(test_can_review, setup, teardown),
	cmocka_unit_test_setup_teardown(test_owns, setup, teardown),
	cmocka_unit_test(test_empty_policy),
};

GH_UNIT_MAIN("test_policy", tests)
