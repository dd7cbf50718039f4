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


/* ---- table scoping: grants with a tables: list ---- */

static const char scoped_yaml[] =
	"version: 1\n"
	"users: [{name: a}, {name: b}, {name: c}, {name: d}]\n"
	"environments: [{name: staging}]\n"
	"resources:\n"
	"  - {name: crm, kind: sqlite, environments: {staging: {path: /crm.db}}}\n"
	"  - {name: wh, kind: postgres, environments: {staging: {secret: wh}}}\n"
	"apps: [{name: app}]\n"
	"grants:\n"
	"  - {resource: crm, environment: staging, user: a, access: use,\n"
	"     tables: [invoices, \"report_*\", {name: customers, columns: [id, name]}, {name: Cust*, columns: [tier]}]}\n"
	"  - {resource: crm, environment: staging, user: b, access: edit, tables: [invoices]}\n"
	"  - {resource: crm, environment: staging, user: c, access: use}\n"
	"  - {resource: crm, environment: staging, user: c, access: edit, tables: [invoices]}\n"
	"  - {resource: crm, environment: staging, user: d, access: use, tables: [customers]}\n"
	"  - {resource: crm, environment: staging, user: d, access: edit, tables: [invoices]}\n"
	"  - {resource: wh, environment: staging, user: a, access: use,\n"
	"     tables: [\"sales.*\", orders, {name: public.customers, columns: [id]}]}\n";

/* One table touched by a statement: name, read or written, the columns read (NULL-terminated),
 * and flags. */
struct tt {
	const char *name;
	bool written, all, by_trigger;
	const char *cols[4];
};

static struct gh_verdict decide_tables(const struct gh_policy *p, const char *user, const char *app, const char *res,
				       enum gh_sql_class cls, bool own_only, bool search_path, const struct tt *tabs,
				       size_t n)
{
	struct gh_sql_table t[8];
	struct gh_sql_analysis a;
	memset(&a, 0, sizeof a);
	memset(t, 0, sizeof t);
	for (size_t i = 0; i < n; i++) {
		t[i].name = (char *)(uintptr_t)tabs[i].name;
		t[i].read = !tabs[i].written;
		t[i].written = tabs[i].written;
		t[i].direct = !tabs[i].by_trigger;
		t[i].all_columns = tabs[i].all;
		t[i].columns = (char **)(uintptr_t)tabs[i].cols;
		while (t[i].ncolumns < 4 && tabs[i].cols[t[i].ncolumns])
			t[i].ncolumns++;
	}
	a.cls = cls;
	a.tables = t;
	a.ntables = n;
	a.own_only = own_only;
	a.sets_search_path = search_path;
	struct gh_request_facts f = {.user = user, .app = app, .resource = res, .environment = "staging", .cls = cls,
				     .own_only = own_only, .analysis = &a};
	struct gh_verdict v;
	gh_policy_decide(p, &f, &v);
	assert_true(v.rule[0] && v.message[0]);
	return v;
}

#define EXPECT_T(want, rule_prefix, ...)                                                                       \
	do {                                                                                                   \
		struct gh_verdict v_ = decide_tables(__VA_ARGS__);                                             \
		if (v_.decision != (want) || strncmp(v_.rule, rule_prefix, strlen(rule_prefix)) != 0)          \
			fail_msg("line %d: got %s '%s' (%s), want %s '%s'", __LINE__, gh_decision_name(v_.decision), \
				 v_.rule, v_.message, gh_decision_name(want), rule_prefix);                      \
		printf("  %-5s %s: %s\n", gh_decision_name(v_.decision), v_.rule, v_.message);                 \
	} while (0)

static void test_table_match(void **state)
{
	(void)state;
	static const struct { const char *pat, *name; bool pg, want; } m[] = {
		{"invoices", "invoices", false, true},
		{"Invoices", "INVOICES", false, true},     /* SQLite names ignore ASCII case */
		{"Invoices", "invoices", true, false},     /* PostgreSQL's do not */
		{"report_*", "report_2024", false, true},
		{"report_*", "report_", false, true},
		{"report_*", "reports", false, false},
		{"r?port", "report", false, true},
		{"a*b*c", "axxbyyc", false, true},
		{"a*b*c", "axxbyy", false, false},
		{"*", "sqlite_master", false, false},      /* a glob never reaches the system tables */
		{"sqlite_*", "sqlite_master", false, true},
		{"sqlite_master", "sqlite_master", false, true},
		{"*", "pg_class", true, false},
		{"pg_*", "pg_stats", true, true},
		{"customers", "public.customers", true, true},
		{"public.customers", "customers", true, true},
		{"*", "customers", true, true},
		{"*", "sales.orders", true, false},        /* '*' does not cross the schema's '.' */
		{"sales.*", "sales.orders", true, true},
		{"sales.*", "sales.orders.x", true, false},
		{"*.*", "sales.orders", true, true},
		{"s?les.o*", "sales.orders", true, true},
		{"orders", "sales.orders", true, false},
		{"", "x", false, false},
	};
	for (size_t i = 0; i < sizeof m / sizeof *m; i++)
		if (gh_policy_table_match(m[i].pat, m[i].name, m[i].pg) != m[i].want)
			fail_msg("'%s' ~ '%s' (%s): want %d", m[i].pat, m[i].name, m[i].pg ? "pg" : "sqlite", m[i].want);
	CHECKED("table patterns: names, globs that never cross '.', system tables only by their prefix, "
		"SQLite case-insensitive, PostgreSQL's public schema implied");
}

static void test_table_scoping(void **state)
{
	(void)state;
	struct gh_policy *p = NULL;
	struct gh_error err;
	gh_error_clear(&err);
	if (gh_config_parse(scoped_yaml, sizeof scoped_yaml - 1, "p.yaml", NULL, &p, &err))
		fail_msg("%s", err.message);
	const enum gh_sql_class R = GH_SQL_READ, W = GH_SQL_WRITE, D = GH_SQL_DDL;

	/* a: use on invoices, report_*, customers(id, name) and Cust*(tier) */
	struct tt inv = {"invoices", false, false, false, {"id", "status"}};
	EXPECT_T(GH_ALLOW, "grant:crm/staging/user:a/use/tables", p, "a", "app", "crm", R, false, false, &inv, 1);
	struct tt notes = {"notes", false, false, false, {"body"}};
	EXPECT_T(GH_DENY, "table-not-granted", p, "a", "app", "crm", R, false, false, &notes, 1);
	struct tt both[] = {{"invoices", false, false, false, {"id"}}, {"notes", false, false, false, {"id"}}};
	EXPECT_T(GH_DENY, "table-not-granted", p, "a", "app", "crm", R, false, false, both, 2);
	struct tt cust = {"customers", false, false, false, {"ID", "name"}};
	EXPECT_T(GH_ALLOW, "grant:crm/staging/user:a", p, "a", "app", "crm", R, false, false, &cust, 1);
	struct tt cust_tier = {"customers", false, false, false, {"id", "tier"}}; /* tier through Cust* */
	EXPECT_T(GH_ALLOW, "grant:crm/staging/user:a", p, "a", "app", "crm", R, false, false, &cust_tier, 1);
	struct tt cust_ssn = {"customers", false, false, false, {"id", "ssn"}};
	EXPECT_T(GH_DENY, "column-not-granted", p, "a", "app", "crm", R, false, false, &cust_ssn, 1);
	struct tt cust_all = {"customers", false, true, false, {NULL}};
	EXPECT_T(GH_DENY, "column-not-granted", p, "a", "app", "crm", R, false, false, &cust_all, 1);
	struct tt cust_w = {"customers", true, false, false, {NULL}};
	EXPECT_T(GH_DENY, "column-not-granted", p, "a", "app", "crm", W, false, false, &cust_w, 1);
	struct tt count = {"customers", false, false, false, {NULL}}; /* count(*): no column */
	EXPECT_T(GH_ALLOW, "grant:", p, "a", "app", "crm", R, false, false, &count, 1);
	struct tt rep = {"REPORT_q1", false, false, false, {"x"}};
	EXPECT_T(GH_ALLOW, "grant:", p, "a", "app", "crm", R, false, false, &rep, 1);
	struct tt master = {"sqlite_master", false, false, false, {"sql"}};
	EXPECT_T(GH_DENY, "table-not-granted", p, "a", "app", "crm", R, false, false, &master, 1);
	/* a table only a trigger writes is the trigger's definer's business */
	struct tt via[] = {{"invoices", true, false, false, {NULL}}, {"notes", true, false, true, {NULL}}};
	EXPECT_T(GH_ALLOW, "grant:crm/staging/user:b", p, "b", NULL, "crm", W, false, false, via, 2);
	/* SQLite's own bookkeeping (a table-valued function's first use) and json_each */
	struct tt bk[] = {{"invoices", false, false, false, {"id"}}, {"sqlite_master", true, false, false, {NULL}},
			  {"json_each", false, false, false, {"value"}}};
	EXPECT_T(GH_ALLOW, "grant:", p, "a", "app", "crm", R, false, false, bk, 3);
	EXPECT_T(GH_ALLOW, "grant:", p, "a", "app", "crm", R, false, false, NULL, 0); /* SELECT 1 */
	EXPECT_T(GH_DENY, "needs-whole-resource", p, "a", "app", "crm", D, false, false, &inv, 1);
	EXPECT_T(GH_DENY, "needs-whole-resource", p, "a", "app", "crm", D, true, false, NULL, 0);
	EXPECT_T(GH_DENY, "search-path-scoped", p, "a", "app", "crm", R, false, true, &inv, 1);
	EXPECT_T(GH_DENY, "needs-app-or-edit", p, "a", NULL, "crm", R, false, false, &inv, 1);

	/* b: edit on invoices only */
	struct tt inv_w = {"invoices", true, false, false, {"status"}};
	EXPECT_T(GH_ALLOW, "grant:crm/staging/user:b/edit/tables", p, "b", NULL, "crm", W, false, false, &inv_w, 1);
	struct tt notes_w = {"notes", true, false, false, {NULL}};
	EXPECT_T(GH_DENY, "table-not-granted", p, "b", NULL, "crm", W, false, false, &notes_w, 1);

	/* c: use on everything, edit on invoices: each table gets its best grant */
	EXPECT_T(GH_ALLOW, "grant:crm/staging/user:c/edit/tables", p, "c", NULL, "crm", W, false, false, &inv_w, 1);
	EXPECT_T(GH_DENY, "needs-app-or-edit", p, "c", NULL, "crm", W, false, false, &notes_w, 1);
	EXPECT_T(GH_ALLOW, "grant:crm/staging/user:c/use", p, "c", "app", "crm", W, false, false, &notes_w, 1);
	EXPECT_T(GH_DENY, "ddl-needs-edit", p, "c", "app", "crm", D, false, false, NULL, 0);
	EXPECT_T(GH_ALLOW, "grant:", p, "c", "app", "crm", R, false, true, &inv, 1); /* a whole grant: search_path ok */

	/* d: use on customers, edit on invoices: a join is as strong as its weakest table */
	struct tt join[] = {{"invoices", false, false, false, {"id"}}, {"customers", false, false, false, {"id"}}};
	EXPECT_T(GH_DENY, "needs-app-or-edit", p, "d", NULL, "crm", R, false, false, join, 2);
	EXPECT_T(GH_ALLOW, "grant:crm/staging/user:d/use/tables", p, "d", "app", "crm", R, false, false, join, 2);

	/* PostgreSQL names: public implied, other schemas by name, exact case, no catalog through '*' */
	struct tt o1 = {"sales.orders", false, false, false, {"id"}}, o2 = {"orders", false, false, false, {"id"}};
	struct tt o3 = {"public.orders", false, false, false, {"id"}}, hr = {"hr.salaries", false, false, false, {"x"}};
	struct tt pc = {"public.customers", false, false, false, {"id"}}, pc2 = {"customers", false, false, false, {"ID"}};
	struct tt cat = {"pg_class", false, false, false, {"relname"}};
	EXPECT_T(GH_ALLOW, "grant:wh/staging/user:a/use/tables", p, "a", "app", "wh", R, false, false, &o1, 1);
	EXPECT_T(GH_ALLOW, "grant:", p, "a", "app", "wh", R, false, false, &o2, 1);
	EXPECT_T(GH_ALLOW, "grant:", p, "a", "app", "wh", R, false, false, &o3, 1);
	EXPECT_T(GH_DENY, "table-not-granted", p, "a", "app", "wh", R, false, false, &hr, 1);
	EXPECT_T(GH_ALLOW, "grant:", p, "a", "app", "wh", R, false, false, &pc, 1);
	EXPECT_T(GH_DENY, "column-not-granted", p, "a", "app", "wh", R, false, false, &pc2, 1);
	EXPECT_T(GH_DENY, "table-not-granted", p, "a", "app", "wh", R, false, false, &cat, 1);

	/* without an analysis only levels count (a BEGIN's read-only decision) */
	struct gh_request_facts f = {.user = "a", .app = "app", .resource = "crm", .environment = "staging", .cls = W};
	struct gh_verdict v;
	gh_policy_decide(p, &f, &v);
	assert_int_equal(v.decision, GH_ALLOW);

	/* listings */
	assert_int_equal(gh_policy_table_level(p, "a", "crm", "staging", "customers"), GH_ACCESS_USE);
	assert_int_equal(gh_policy_table_level(p, "a", "crm", "staging", "notes"), GH_ACCESS_NONE);
	assert_int_equal(gh_policy_table_level(p, "a", "crm", "staging", "sqlite_sequence"), GH_ACCESS_NONE);
	assert_int_equal(gh_policy_table_level(p, "c", "crm", "staging", "notes"), GH_ACCESS_USE);
	assert_int_equal(gh_policy_table_level(p, "c", "crm", "staging", "invoices"), GH_ACCESS_EDIT);
	assert_int_equal(gh_policy_table_level(p, "b", "crm", "production", "invoices"), GH_ACCESS_NONE);
	assert_true(gh_policy_column_visible(p, "a", "crm", "staging", "customers", "Name"));
	assert_true(gh_policy_column_visible(p, "a", "crm", "staging", "customers", "tier"));
	assert_false(gh_policy_column_visible(p, "a", "crm", "staging", "customers", "ssn"));
	assert_true(gh_policy_column_visible(p, "a", "crm", "staging", "invoices", "anything"));
	assert_false(gh_policy_column_visible(p, "a", "crm", "staging", "notes", "body"));
	assert_true(gh_policy_column_visible(p, "c", "crm", "staging", "notes", "body"));
	assert_true(gh_policy_column_visible(p, "a", "wh", "staging", "customers", "id"));
	assert_false(gh_policy_column_visible(p, "a", "wh", "staging", "customers", "ID"));
	assert_int_equal(gh_policy_table_level(p, "a", "wh", "staging", "sales.orders"), GH_ACCESS_USE);
	assert_int_equal(gh_policy_table_level(p, "a", "wh", "staging", "hr.salaries"), GH_ACCESS_NONE);
	gh_config_unref(p);
	CHECKED("tables lists: tables and columns not listed refused with their rule, writes to column-limited "
		"tables refused, DDL needs a whole grant, a statement takes its weakest table's best grant, views "
		"and SQLite bookkeeping left alone, search_path refused under lists only, listings agree");
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
	cmocka_unit_test(test_table_match),
	cmocka_unit_test(test_table_scoping),
};

GH_UNIT_MAIN("test_policy", tests)
