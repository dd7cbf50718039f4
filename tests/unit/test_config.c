/* Unit tests for src/config: loading, validation errors with positions, export round trip. */
#include "unit.h"

#include <string.h>

#include "config/config.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))

static const char full_doc[] =
	"# a complete policy\n"
	"version: 1\n"
	"users:\n"
	"  - name: alice\n"
	"  - name: bob.smith@example.com\n"
	"  - name: carol\n"
	"  - name: mallory\n"
	"    disabled: true\n"
	"  - name: dave\n"
	"    disabled: false\n"
	"groups:\n"
	"  - name: analysts\n"
	"    members: [alice]\n"
	"  - name: engineers\n"
	"    members:\n"
	"      - bob.smith@example.com\n"
	"      - carol\n"
	"  - name: leads\n"
	"    members: [carol]\n"
	"  - name: platform-ops\n"
	"    members: [alice, carol]\n"
	"  - name: empty_group\n"
	"    members: []\n"
	"admins: [platform-ops]\n"
	"environments:\n"
	"  - name: staging\n"
	"  - name: production\n"
	"    approval: writes\n"
	"    reviewers: [leads]\n"
	"  - name: dev\n"
	"    approval: none\n"
	"resources:\n"
	"  - name: crm\n"
	"    kind: sqlite\n"
	"    environments:\n"
	"      staging: { path: /srv/crm-staging.db }\n"
	"      production:\n"
	"        path: \"/srv/crm prod.db\"\n"
	"  - name: billing\n"
	"    kind: sqlite\n"
	"    environments:\n"
	"      dev: { path: /srv/billing.db }\n"
	"apps:\n"
	"  - name: invoices\n"
	"  - name: reports_v2\n"
	"grants:\n"
	"  - { resource: crm, environment: staging, group: analysts, access: use }\n"
	"  - { resource: crm, environment: production, group: engineers, access: edit }\n"
	"  - resource: crm\n"
	"    environment: production\n"
	"    user: carol\n"
	"    access: own\n"
	"  - { resource: billing, environment: dev, user: bob.smith@example.com, access: edit }\n";

static struct gh_policy *parse_ok(const char *text, const char *basedir)
{
	struct gh_policy *p = NULL;
	struct gh_error err;
	gh_error_clear(&err);
	int rc = gh_config_parse(text, strlen(text), "policy.yaml", basedir, &p, &err);
	if (rc != 0)
		fail_msg("parse failed: %s", err.message);
	assert_non_null(p);
	assert_int_equal(p->refs, 1);
	return p;
}

/* Asserts that text fails with GH_EINVAL at line:col (0 = do not check) with needle in the message. */
static void expect_err_at(const char *text, const char *basedir, int line, int col, const char *needle)
{
	struct gh_policy *p = (struct gh_policy *)(uintptr_t)1;
	struct gh_error err;
	gh_error_clear(&err);
	int rc = gh_config_parse(text, strlen(text), "policy.yaml", basedir, &p, &err);
	if (rc != GH_EINVAL)
		fail_msg("rc %d, want GH_EINVAL for:\n%s", rc, text);
	assert_null(p);
	assert_int_equal(err.code, GH_EINVAL);
	if (!strstr(err.message, needle))
		fail_msg("message '%s' lacks '%s'", err.message, needle);
	if (line && (err.line != line || err.column != col))
		fail_msg("'%s': at %d:%d, want %d:%d", err.message, err.line, err.column, line, col);
	if (line) {
		char where[64];
		snprintf(where, sizeof where, "policy.yaml:%d:%d: ", line, col);
		if (strncmp(err.message, where, strlen(where)) != 0)
			fail_msg("message '%s' does not start with '%s'", err.message, where);
	}
	printf("  refused: %s\n", err.message);
}

static void test_full_document(void **state)
{
	(void)state;
	struct gh_policy *p = parse_ok(full_doc, NULL);
	assert_int_equal(p->nusers, 5);
	assert_int_equal(p->ngroups, 5);
	assert_int_equal(p->nadmins, 1);
	assert_int_equal(p->nenvs, 3);
	assert_int_equal(p->nresources, 2);
	assert_int_equal(p->napps, 2);
	assert_int_equal(p->ngrants, 4);
	assert_true(p->version == 0);

	assert_non_null(gh_config_user(p, "bob.smith@example.com"));
	assert_true(gh_config_user(p, "mallory")->disabled);
	assert_false(gh_config_user(p, "dave")->disabled);
	assert_false(gh_config_user(p, "alice")->disabled);
	assert_null(gh_config_user(p, "zed"));

	const struct gh_policy_group *g = gh_config_group(p, "engineers");
	assert_non_null(g);
	assert_int_equal(g->nmembers, 2);
	assert_string_equal(g->members[0], "bob.smith@example.com");
	assert_string_equal(g->members[1], "carol");
	assert_int_equal(gh_config_group(p, "empty_group")->nmembers, 0);

	const struct gh_policy_env *e = gh_config_env(p, "production");
	assert_non_null(e);
	assert_int_equal(e->approval, GH_APPROVAL_WRITES);
	assert_int_equal(e->nreviewers, 1);
	assert_string_equal(e->reviewers[0], "leads");
	assert_int_equal(gh_config_env(p, "staging")->approval, GH_APPROVAL_NONE);
	assert_int_equal(gh_config_env(p, "dev")->approval, GH_APPROVAL_NONE);

	const struct gh_policy_resource *r = gh_config_resource(p, "crm");
	assert_non_null(r);
	assert_int_equal(r->kind, GH_RESOURCE_SQLITE);
	assert_int_equal(r->nenvs, 2);
	assert_string_equal(gh_config_resenv(r, "staging")->path, "/srv/crm-staging.db");
	assert_string_equal(gh_config_resenv(r, "production")->path, "/srv/crm prod.db");
	assert_null(gh_config_resenv(r, "dev"));
	assert_null(gh_config_resenv(NULL, "dev"));
	assert_non_null(gh_config_app(p, "reports_v2"));
	assert_null(gh_config_app(p, "nope"));

	const struct gh_policy_grant *gr = &p->grants[2];
	assert_string_equal(gr->resource, "crm");
	assert_string_equal(gr->environment, "production");
	assert_string_equal(gr->user, "carol");
	assert_null(gr->group);
	assert_int_equal(gr->access, GH_ACCESS_OWN);
	assert_string_equal(p->grants[0].group, "analysts");
	assert_null(p->grants[0].user);
	assert_int_equal(p->grants[0].access, GH_ACCESS_USE);

	gh_config_ref(p);
	assert_int_equal(p->refs, 2);
	gh_config_unref(p);
	gh_config_unref(p);
	gh_config_unref(NULL);
	CHECKED("a full document loads with every section, flow and block styles, quoted paths");
}

static void test_minimal_documents(void **state)
{
	(void)state;
	struct gh_policy *p = parse_ok("version: 1\n", NULL);
	assert_int_equal(p->nusers + p->ngroups + p->nenvs + p->nresources + p->napps + p->ngrants, 0);
	assert_false(gh_config_is_admin(p, "anyone"));
	gh_config_unref(p);
	/* sections may come in any order: grants before the things they name */
	p = parse_ok("grants: [{resource: r, environment: e, user: u, access: use}]\n"
		     "resources: [{name: r, kind: sqlite, environments: {e: {path: /r.db}}}]\n"
		     "environments: [{name: e}]\n"
		     "users: [{name: u}]\n"
		     "version: 1\n", NULL);
	assert_int_equal(p->ngrants, 1);
	gh_config_unref(p);
	CHECKED("version alone is a valid policy; section order does not matter");
}

static void test_errors_structure(void **state)
{
	(void)state;
	expect_err_at("version: 1\nfoo: 1\n", NULL, 2, 1, "unknown key 'foo'");
	expect_err_at("version: 1\nusers: []\nUsers: []\n", NULL, 3, 1, "unknown key 'Users'");
	expect_err_at("version: 2\n", NULL, 1, 10, "version: expected 1");
	expect_err_at("version: one\n", NULL, 1, 10, "version: expected 1");
	expect_err_at("users: []\n", NULL, 1, 1, "missing required key 'version'");
	expect_err_at("version: 1\nversion: 1\n", NULL, 2, 1, "duplicate key 'version'");
	expect_err_at("- version: 1\n", NULL, 1, 1, "expected a mapping");
	expect_err_at("version: 1\nusers: {name: a}\n", NULL, 2, 8, "users: expected a list");
	expect_err_at("version: 1\nusers:\n  - alice\n", NULL, 3, 5, "users[]: expected a mapping");
	CHECKED("unknown top-level keys, version 2, duplicates and wrong node types are refused");
}

static void test_errors_users_groups(void **state)
{
	(void)state;
	expect_err_at("version: 1\n"
		      "users:\n"
		      "  - name: a\n"
		      "    role: admin\n", NULL, 4, 5, "users[]: unknown key 'role'");
	expect_err_at("version: 1\n"
		      "users:\n"
		      "  - name: a\n"
		      "  - name: b\n"
		      "  - name: a\n", NULL, 5, 11, "users: 'a' is defined twice");
	expect_err_at("version: 1\n"
		      "users:\n"
		      "  - disabled: true\n", NULL, 3, 5, "missing required key 'name'");
	expect_err_at("version: 1\n"
		      "users:\n"
		      "  - name: a\n"
		      "    disabled: yes\n", NULL, 4, 15, "users[].disabled: expected true or false");
	expect_err_at("version: 1\n"
		      "users:\n"
		      "  - name: a b\n", NULL, 3, 11, "users[].name: 'a b' is not a valid name");
	expect_err_at("version: 1\n"
		      "users:\n"
		      "  - name: \"\"\n", NULL, 3, 11, "users[].name: expected a name");
	expect_err_at("version: 1\n"
		      "users:\n"
		      "  - name: [a]\n", NULL, 3, 11, "users[].name: expected a string");
	expect_err_at("version: 1\n"
		      "users:\n"
		      "  - name: a\n"
		      "groups:\n"
		      "  - name: g\n"
		      "    members: [a, zed]\n", NULL, 6, 18, "groups[].members: user 'zed' is not defined");
	expect_err_at("version: 1\n"
		      "users:\n"
		      "  - name: a\n"
		      "groups:\n"
		      "  - name: g\n"
		      "    members: [a, a]\n", NULL, 6, 18, "'a' is listed twice");
	expect_err_at("version: 1\n"
		      "users:\n"
		      "  - name: a.b\n"
		      "groups:\n"
		      "  - name: g.x\n"
		      "    members: [a.b]\n", NULL, 5, 11, "groups[].name: 'g.x' is not a valid name");
	expect_err_at("version: 1\n"
		      "groups:\n"
		      "  - name: g@x\n", NULL, 3, 11, "is not a valid name");
	expect_err_at("version: 1\n"
		      "groups:\n"
		      "  - name: g\n"
		      "  - name: g\n", NULL, 4, 11, "groups: 'g' is defined twice");
	expect_err_at("version: 1\n"
		      "groups:\n"
		      "  - name: g\n"
		      "    owner: x\n", NULL, 4, 5, "groups[]: unknown key 'owner'");
	expect_err_at("version: 1\n"
		      "users: [{name: a}]\n"
		      "groups: [{name: g, members: [a]}]\n"
		      "admins: [g, nope]\n", NULL, 4, 13, "admins: group 'nope' is not defined");
	char longname[GH_NAME_MAX + 64];
	memset(longname, 'n', GH_NAME_MAX + 1);
	longname[GH_NAME_MAX + 1] = '\0';
	char doc[512];
	snprintf(doc, sizeof doc, "version: 1\nusers:\n  - name: %s\n", longname);
	expect_err_at(doc, NULL, 3, 11, "expected a name of 1 to 128 characters");
	longname[GH_NAME_MAX] = '\0';
	snprintf(doc, sizeof doc, "version: 1\nusers:\n  - name: %s\n", longname);
	struct gh_policy *p = parse_ok(doc, NULL);
	gh_config_unref(p);
	CHECKED("users/groups/admins: unknown keys, duplicates, undefined members, bad names and lengths");
}

static void test_errors_environments(void **state)
{
	(void)state;
	static const char head[] = "version: 1\n"
				   "users: [{name: a}]\n"
				   "groups: [{name: leads, members: [a]}]\n"
				   "environments:\n";
	char doc[1024];
	snprintf(doc, sizeof doc, "%s  - name: prod\n    approval: sometimes\n    reviewers: [leads]\n", head);
	expect_err_at(doc, NULL, 6, 15, "environments[].approval: expected none or writes, got 'sometimes'");
	snprintf(doc, sizeof doc, "%s  - name: prod\n    approval: writes\n", head);
	expect_err_at(doc, NULL, 6, 15, "'writes' needs at least one reviewers group");
	snprintf(doc, sizeof doc, "%s  - name: prod\n    approval: writes\n    reviewers: []\n", head);
	expect_err_at(doc, NULL, 6, 15, "'writes' needs at least one reviewers group");
	snprintf(doc, sizeof doc, "%s  - name: prod\n    approval: writes\n    reviewers: [leads, ghosts]\n", head);
	expect_err_at(doc, NULL, 7, 24, "environments[].reviewers: group 'ghosts' is not defined");
	snprintf(doc, sizeof doc, "%s  - name: prod\n  - name: prod\n", head);
	expect_err_at(doc, NULL, 6, 11, "environments: 'prod' is defined twice");
	snprintf(doc, sizeof doc, "%s  - name: prod\n    color: red\n", head);
	expect_err_at(doc, NULL, 6, 5, "environments[]: unknown key 'color'");
	snprintf(doc, sizeof doc, "%s  - name: pro.d\n", head);
	expect_err_at(doc, NULL, 5, 11, "is not a valid name");
	CHECKED("environments: approval values, writes without reviewers, unknown reviewer groups");
}

static const char res_head[] = "version: 1\n"
			       "users: [{name: a}]\n"
			       "groups: [{name: g, members: [a]}]\n"
			       "environments: [{name: staging}, {name: production}]\n";

static void test_errors_resources(void **state)
{
	(void)state;
	char doc[1024];
	snprintf(doc, sizeof doc, "%sresources:\n  - name: crm\n    kind: mysql\n"
		 "    environments: {staging: {path: /x.db}}\n", res_head);
	expect_err_at(doc, NULL, 7, 11, "resources[].kind: expected sqlite or postgres, got 'mysql'");
	/* postgres resources name a vault secret, never a path or an inline credential */
	snprintf(doc, sizeof doc, "%sresources:\n  - name: crm\n    kind: postgres\n"
		 "    environments: {staging: {path: /x.db}}\n", res_head);
	expect_err_at(doc, NULL, 8, 30, "unknown key 'path' (expected one of: secret");
	snprintf(doc, sizeof doc, "%sresources:\n  - name: crm\n    kind: postgres\n"
		 "    environments: {staging: {secret: \"postgres://u:pw@h/db\"}}\n", res_head);
	expect_err_at(doc, NULL, 8, 38, "secret");
	snprintf(doc, sizeof doc, "%sresources:\n  - name: crm\n    kind: postgres\n"
		 "    environments: {staging: {}}\n", res_head);
	expect_err_at(doc, NULL, 8, 29, "missing required key 'secret'");
	snprintf(doc, sizeof doc, "%sresources:\n  - name: crm\n    kind: sqlite\n"
		 "    environments: {staging: {secret: crm-dsn}}\n", res_head);
	expect_err_at(doc, NULL, 8, 30, "unknown key 'secret' (expected one of: path");
	snprintf(doc, sizeof doc, "%sresources:\n  - name: crm\n    kind: sqlite\n    environments:\n"
		 "      staging: {path: /x.db}\n      qa: {path: /y.db}\n", res_head);
	expect_err_at(doc, NULL, 10, 7, "resources[].environments: environment 'qa' is not defined");
	snprintf(doc, sizeof doc, "%sresources:\n  - name: crm\n    kind: sqlite\n    environments:\n"
		 "      staging: {}\n", res_head);
	expect_err_at(doc, NULL, 9, 16, "resources[].environments.staging: missing required key 'path'");
	snprintf(doc, sizeof doc, "%sresources:\n  - name: crm\n    kind: sqlite\n    environments:\n"
		 "      staging: {path: /x.db, mode: ro}\n", res_head);
	expect_err_at(doc, NULL, 9, 30, "unknown key 'mode'");
	snprintf(doc, sizeof doc, "%sresources:\n  - name: crm\n    kind: sqlite\n    environments:\n"
		 "      staging: {path: data/x.db}\n", res_head);
	expect_err_at(doc, NULL, 9, 23, "path: 'data/x.db' must be absolute here");
	snprintf(doc, sizeof doc, "%sresources:\n  - name: crm\n    kind: sqlite\n    environments:\n"
		 "      staging: {path: \"\"}\n", res_head);
	expect_err_at(doc, NULL, 9, 23, "path: expected a file path");
	snprintf(doc, sizeof doc, "%sresources:\n  - name: crm\n    kind: sqlite\n", res_head);
	expect_err_at(doc, NULL, 6, 5, "resources[]: missing required key 'environments'");
	snprintf(doc, sizeof doc, "%sresources:\n  - name: crm\n    environments: {staging: {path: /x.db}}\n", res_head);
	expect_err_at(doc, NULL, 6, 5, "resources[]: missing required key 'kind'");
	snprintf(doc, sizeof doc, "%sresources:\n  - name: crm\n    kind: sqlite\n    environments: {staging: {path: /a}}\n"
		 "  - name: crm\n    kind: sqlite\n    environments: {staging: {path: /b}}\n", res_head);
	expect_err_at(doc, NULL, 9, 11, "resources: 'crm' is defined twice");
	snprintf(doc, sizeof doc, "%sresources:\n  - name: crm\n    kind: sqlite\n    environments: [staging]\n", res_head);
	expect_err_at(doc, NULL, 8, 19, "resources[].environments: expected a mapping");
	snprintf(doc, sizeof doc, "%sapps:\n  - name: x\n    version: 2\n", res_head);
	expect_err_at(doc, NULL, 7, 5, "apps[]: unknown key 'version'");
	snprintf(doc, sizeof doc, "%sapps:\n  - name: x\n  - name: x\n", res_head);
	expect_err_at(doc, NULL, 7, 11, "apps: 'x' is defined twice");
	CHECKED("resources: unknown kind, postgres secret-only (no path, no inline DSN), undefined env, missing or relative path, missing keys, duplicates");
}

static void test_errors_grants(void **state)
{
	(void)state;
	static const char head[] = "version: 1\n"
				   "users: [{name: a}]\n"
				   "groups: [{name: g, members: [a]}]\n"
				   "environments: [{name: staging}, {name: production}]\n"
				   "resources: [{name: crm, kind: sqlite, environments: {staging: {path: /x.db}}}]\n"
				   "grants:\n";
	static const struct { const char *grant, *needle; int col; } cases[] = {
		{"  - {resource: crm, environment: staging, user: a, group: g, access: use}\n",
		 "exactly one of 'user' or 'group' is required", 5},
		{"  - {resource: crm, environment: staging, access: use}\n",
		 "exactly one of 'user' or 'group' is required", 5},
		{"  - {resource: nope, environment: staging, user: a, access: use}\n",
		 "grants[].resource: resource 'nope' is not defined", 16},
		{"  - {resource: crm, environment: qa, user: a, access: use}\n",
		 "grants[].environment: environment 'qa' is not defined", 34},
		{"  - {resource: crm, environment: staging, user: zed, access: use}\n",
		 "grants[].user: user 'zed' is not defined", 49},
		{"  - {resource: crm, environment: staging, group: ghosts, access: use}\n",
		 "grants[].group: group 'ghosts' is not defined", 50},
		{"  - {resource: crm, environment: production, user: a, access: use}\n",
		 "grants[]: resource 'crm' has no environment 'production'", 5},
		{"  - {resource: crm, environment: staging, user: a, access: admin}\n",
		 "grants[].access: expected use, edit or own, got 'admin'", 60},
		{"  - {resource: crm, environment: staging, user: a, access: none}\n",
		 "grants[].access: expected use, edit or own, got 'none'", 60},
		{"  - {resource: crm, environment: staging, user: a}\n", "missing required key 'access'", 5},
		{"  - {environment: staging, user: a, access: use}\n", "missing required key 'resource'", 5},
		{"  - {resource: crm, user: a, access: use}\n", "missing required key 'environment'", 5},
		{"  - {resource: crm, environment: staging, user: a, access: use, expires: 2030}\n",
		 "grants[]: unknown key 'expires'", 65},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char doc[1024];
		snprintf(doc, sizeof doc, "%s%s", head, cases[i].grant);
		expect_err_at(doc, NULL, 7, cases[i].col, cases[i].needle);
	}
	CHECKED("grants: both/neither user and group, undefined names, env the resource lacks, access admin");
}


/* A grant's optional tables: list (names, globs, per-table columns) and a postgres resource's
 * schemas: what they hold, what they refuse with a position, and that export keeps them. */
static void test_grant_tables(void **state)
{
	(void)state;
	static const char doc[] =
		"version: 1\n"
		"users: [{name: a}, {name: b}]\n"
		"environments: [{name: staging}]\n"
		"resources:\n"
		"  - name: crm\n"
		"    kind: sqlite\n"
		"    environments: {staging: {path: /x.db}}\n"
		"  - name: wh\n"
		"    kind: postgres\n"
		"    schemas: [public, sales]\n"
		"    environments: {staging: {secret: wh-dsn}}\n"
		"grants:\n"
		"  - resource: crm\n"
		"    environment: staging\n"
		"    user: a\n"
		"    access: use\n"
		"    tables:\n"
		"      - invoices\n"
		"      - \"report_*\"\n"
		"      - { name: customers, columns: [id, name] }\n"
		"  - { tables: [\"sales.*\", orders], resource: wh, environment: staging, user: b, access: edit }\n"
		"  - { resource: wh, environment: staging, user: a, access: use }\n";
	struct gh_policy *p = parse_ok(doc, NULL);
	assert_int_equal(p->ngrants, 3);
	const struct gh_policy_grant *g = &p->grants[0];
	assert_int_equal(g->ntables, 3);
	assert_string_equal(g->tables[0].name, "invoices");
	assert_int_equal(g->tables[0].ncolumns, 0);
	assert_string_equal(g->tables[1].name, "report_*");
	assert_string_equal(g->tables[2].name, "customers");
	assert_int_equal(g->tables[2].ncolumns, 2);
	assert_string_equal(g->tables[2].columns[1], "name");
	assert_int_equal(p->grants[1].ntables, 2);
	assert_string_equal(p->grants[1].tables[0].name, "sales.*");
	assert_int_equal(p->grants[2].ntables, 0);
	const struct gh_policy_resource *wh = gh_config_resource(p, "wh");
	assert_int_equal(wh->nschemas, 2);
	assert_string_equal(wh->schemas[1], "sales");
	assert_int_equal(gh_config_resource(p, "crm")->nschemas, 0);

	struct gh_buf e1, e2;
	gh_buf_init(&e1, 1 << 20);
	gh_buf_init(&e2, 1 << 20);
	assert_int_equal(gh_config_export(p, &e1), 0);
	assert_non_null(strstr(e1.data, "tables: [\"invoices\", \"report_*\", { name: \"customers\", columns: [\"id\", \"name\"] }]"));
	assert_non_null(strstr(e1.data, "schemas: [\"public\", \"sales\"]"));
	struct gh_policy *q = parse_ok(e1.data, NULL);
	assert_int_equal(gh_config_export(q, &e2), 0);
	assert_string_equal(e1.data, e2.data);
	assert_int_equal(q->grants[0].tables[2].ncolumns, 2);
	gh_buf_free(&e1);
	gh_buf_free(&e2);
	gh_config_unref(q);
	gh_config_unref(p);
	CHECKED("tables: names, globs, {name, columns}; schemas:; the export reads back the same");

	static const char head[] = "version: 1\n"
				   "users: [{name: a}]\n"
				   "environments: [{name: staging}]\n"
				   "resources:\n"
				   "  - {name: crm, kind: sqlite, environments: {staging: {path: /x.db}}}\n"
				   "  - {name: wh, kind: postgres, environments: {staging: {secret: s}}}\n"
				   "grants:\n";
	static const struct { const char *grant, *needle; int col; } cases[] = {
		{"  - {resource: crm, environment: staging, user: a, access: use, tables: []}\n",
		 "grants[].tables: an empty list covers nothing", 73},
		{"  - {resource: crm, environment: staging, user: a, access: use, tables: customers}\n",
		 "grants[].tables: expected a list", 73},
		{"  - {resource: crm, environment: staging, user: a, access: use, tables: [\"a b\"]}\n",
		 "'a b' is not a table name or glob", 74},
		{"  - {resource: crm, environment: staging, user: a, access: use, tables: [main.t]}\n",
		 "'main.t' is not a table name or glob", 74},
		{"  - {resource: wh, environment: staging, user: a, access: use, tables: [a.b.c]}\n",
		 "'a.b.c' is not a table name or glob", 73},
		{"  - {resource: wh, environment: staging, user: a, access: use, tables: [\".t\"]}\n",
		 "'.t' is not a table name or glob", 73},
		{"  - {resource: crm, environment: staging, user: a, access: use, tables: [t, t]}\n",
		 "grants[].tables: 't' is listed twice", 77},
		{"  - {resource: crm, environment: staging, user: a, access: use, tables: [{columns: [x]}]}\n",
		 "grants[].tables[]: missing required key 'name'", 74},
		{"  - {resource: crm, environment: staging, user: a, access: use, tables: [{name: t, columns: []}]}\n",
		 "list at least one column", 93},
		{"  - {resource: crm, environment: staging, user: a, access: use, tables: [{name: t, columns: [\"x;\"]}]}\n",
		 "'x;' is not a column name", 94},
		{"  - {resource: crm, environment: staging, user: a, access: use, tables: [{name: t, columns: [x, x]}]}\n",
		 "'x' is listed twice", 97},
		{"  - {resource: crm, environment: staging, user: a, access: use, tables: [{name: t, rows: 1}]}\n",
		 "grants[].tables[]: unknown key 'rows'", 84},
		{"  - {resource: crm, environment: staging, user: a, access: use, tables: [[t]]}\n",
		 "grants[].tables[]: expected a string", 74},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char d[1024];
		snprintf(d, sizeof d, "%s%s", head, cases[i].grant);
		expect_err_at(d, NULL, 8, cases[i].col, cases[i].needle);
	}
	expect_err_at("version: 1\nenvironments: [{name: s}]\nresources:\n"
		      "  - {name: crm, kind: sqlite, schemas: [public], environments: {s: {path: /x.db}}}\n",
		      NULL, 4, 40, "only a kind: postgres resource has schemas");
	expect_err_at("version: 1\nenvironments: [{name: s}]\nresources:\n"
		      "  - {name: wh, kind: postgres, schemas: [], environments: {s: {secret: x}}}\n",
		      NULL, 4, 41, "list at least one schema");
	CHECKED("tables:/schemas: refused with positions: empty, not a list, bad names, schema on SQLite, "
		"duplicates, missing name, empty or bad columns, unknown keys");
}

static void test_errors_yaml(void **state)
{
	(void)state;
	/* syntax */
	expect_err_at("version: 1\nusers: [\n", NULL, 0, 0, "invalid YAML");
	struct gh_error err;
	struct gh_policy *p = NULL;
	gh_error_clear(&err);
	static const char bad[] = "version: 1\nusers:\n  - name: a\n   - name: b\n";
	assert_int_equal(gh_config_parse(bad, sizeof bad - 1, "policy.yaml", NULL, &p, &err), GH_EINVAL);
	assert_null(p);
	assert_non_null(strstr(err.message, "invalid YAML"));
	assert_int_equal(err.line, 4);
	assert_true(err.column > 0);
	printf("  refused: %s\n", err.message);
	expect_err_at("version: 1\nusers: [{name: a}\n", NULL, 0, 0, "invalid YAML");
	expect_err_at("version: 1\n\tusers: []\n", NULL, 0, 0, "invalid YAML");
	/* aliases and anchors */
	expect_err_at("version: 1\n"
		      "users:\n"
		      "  - &u {name: a}\n"
		      "  - *u\n", NULL, 3, 5, "YAML aliases are not allowed");
	expect_err_at("version: 1\n"
		      "users: [{name: a}, {name: b}]\n"
		      "groups:\n"
		      "  - name: g1\n"
		      "    members: &m [a, b]\n"
		      "  - name: g2\n"
		      "    members: *m\n", NULL, 5, 14, "YAML aliases are not allowed");
	/* an alias to a scalar used twice */
	expect_err_at("version: &v 1\nusers: [{name: *v}]\n", NULL, 1, 10, "YAML aliases are not allowed");
	/* empty input */
	expect_err_at("", NULL, 0, 0, "empty document");
	expect_err_at("# only a comment\n", NULL, 0, 0, "empty document");
	CHECKED("invalid YAML with a position, aliases refused, empty document");
}

/* The second document of a stream is the offending node: its position is reported. */
static void test_two_documents(void **state)
{
	(void)state;
	struct gh_error err;
	struct gh_policy *p = NULL;
	static const char two[] = "version: 1\n---\nversion: 1\n";
	gh_error_clear(&err);
	assert_int_equal(gh_config_parse(two, sizeof two - 1, "policy.yaml", NULL, &p, &err), GH_EINVAL);
	assert_null(p);
	assert_non_null(strstr(err.message, "more than one YAML document"));
	printf("  refused: %s (line %d column %d)\n", err.message, err.line, err.column);
	assert_int_equal(err.line, 2);
	assert_true(err.column >= 1);
	CHECKED("two documents in one stream refused, pointing at the second");
}

static void test_two_documents_message(void **state)
{
	(void)state;
	static const char two[] = "---\nversion: 1\n...\n---\nversion: 1\n";
	struct gh_error err;
	struct gh_policy *p = NULL;
	gh_error_clear(&err);
	assert_int_equal(gh_config_parse(two, sizeof two - 1, NULL, NULL, &p, &err), GH_EINVAL);
	assert_null(p);
	assert_non_null(strstr(err.message, "more than one YAML document"));
	/* the default file name is used */
	assert_int_equal(strncmp(err.message, "policy:", 7), 0);
	/* a trailing document end marker alone is fine */
	p = parse_ok("---\nversion: 1\n...\n", NULL);
	gh_config_unref(p);
	CHECKED("two documents refused with explicit markers; a single marked document is fine");
}

static void test_export_roundtrip(void **state)
{
	(void)state;
	static const char rel[] = "version: 1\n"
				  "users:\n"
				  "  - name: alice\n"
				  "  - name: m\n"
				  "    disabled: true\n"
				  "groups:\n"
				  "  - name: g\n"
				  "    members: [alice, m]\n"
				  "  - name: nobody\n"
				  "    members: []\n"
				  "admins: [g]\n"
				  "environments:\n"
				  "  - name: staging\n"
				  "  - name: production\n"
				  "    approval: writes\n"
				  "    reviewers: [g]\n"
				  "resources:\n"
				  "  - name: crm\n"
				  "    kind: sqlite\n"
				  "    environments:\n"
				  "      staging: { path: data/crm-staging.db }\n"
				  "      production: { path: \"/abs/with \\\"quote\\\".db\" }\n"
				  "  - name: bare\n"
				  "    kind: sqlite\n"
				  "    environments: {}\n"
				  "apps:\n"
				  "  - name: invoices\n"
				  "grants:\n"
				  "  - { resource: crm, environment: staging, group: g, access: use }\n"
				  "  - { resource: crm, environment: production, user: alice, access: own }\n";
	struct gh_policy *p1 = parse_ok(rel, "/srv/policies");
	assert_string_equal(gh_config_resenv(gh_config_resource(p1, "crm"), "staging")->path,
			    "/srv/policies/data/crm-staging.db");
	assert_string_equal(gh_config_resenv(gh_config_resource(p1, "crm"), "production")->path,
			    "/abs/with \"quote\".db");
	struct gh_buf e1, e2;
	gh_buf_init(&e1, 1 << 20);
	gh_buf_init(&e2, 1 << 20);
	assert_int_equal(gh_config_export(p1, &e1), 0);
	assert_non_null(strstr(e1.data, "/srv/policies/data/crm-staging.db"));
	assert_null(strstr(e1.data, " data/crm-staging.db"));
	/* the export is absolute, so it loads without a basedir */
	struct gh_policy *p2 = parse_ok(e1.data, NULL);
	assert_int_equal(gh_config_export(p2, &e2), 0);
	assert_int_equal(e1.len, e2.len);
	assert_string_equal(e1.data, e2.data);
	/* and says the same things */
	assert_int_equal(p2->nusers, p1->nusers);
	assert_true(gh_config_user(p2, "m")->disabled);
	assert_int_equal(p2->ngrants, 2);
	assert_int_equal(p2->grants[1].access, GH_ACCESS_OWN);
	assert_string_equal(p2->grants[1].user, "alice");
	assert_int_equal(gh_config_env(p2, "production")->approval, GH_APPROVAL_WRITES);
	assert_int_equal(gh_config_resource(p2, "bare")->nenvs, 0);
	assert_true(gh_config_is_admin(p2, "alice"));
	printf("%s", e1.data);
	gh_buf_free(&e1);
	gh_buf_free(&e2);
	gh_config_unref(p1);
	gh_config_unref(p2);

	/* the full document too, and an empty one */
	const char *docs[] = {full_doc, "version: 1\n"};
	for (size_t i = 0; i < 2; i++) {
		p1 = parse_ok(docs[i], NULL);
		gh_buf_init(&e1, 1 << 20);
		gh_buf_init(&e2, 1 << 20);
		assert_int_equal(gh_config_export(p1, &e1), 0);
		p2 = parse_ok(e1.data, NULL);
		assert_int_equal(gh_config_export(p2, &e2), 0);
		assert_string_equal(e1.data, e2.data);
		gh_buf_free(&e1);
		gh_buf_free(&e2);
		gh_config_unref(p1);
		gh_config_unref(p2);
	}
	CHECKED("parse -> export -> parse -> export is identical; relative paths made absolute with basedir");
}

/* "gh_config_export writes a document that gh_config_parse reads back to the same policy",
 * for any path the parser accepts. apply stores the export, so a path that did not survive it
 * would make the stored policy unloadable or point the resource at another file. Paths with
 * control or line-break characters are therefore refused at parse time (with a position);
 * every other path, however unusual, must come back unchanged. */
static void test_export_roundtrip_path_chars(void **state)
{
	(void)state;
	static const struct { const char *what, *escaped; } refused[] = {
		{"DEL", "/srv/a\\x7fb.db"},
		{"C1 control U+009F", "/srv/a\\x9fb.db"},
		{"NEL U+0085", "/srv/a\\Nb.db"},
		{"tab", "/srv/a\\tb.db"},
		{"LS U+2028", "/srv/a\\Lb.db"},
		{"newline", "/srv/a\\nb.db"},
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		char doc[512];
		snprintf(doc, sizeof doc, "version: 1\nenvironments: [{name: e}]\n"
			 "resources: [{name: r, kind: sqlite, environments: {e: {path: \"%s\"}}}]\n", refused[i].escaped);
		expect_err_at(doc, NULL, 3, 62, "control characters");
		printf("  path with %-18s refused at 3:62\n", refused[i].what);
	}
	static const char *const kept[] = {
		"/srv/with space/a.db", "/srv/quote\\\"d/a.db", "/srv/back\\\\slash/a.db", "/srv/caf\xc3\xa9/\xe2\x82\xac.db",
		"/srv/colon: hash # brace {x} [y]/a.db", "/srv/'single'/a.db",
	};
	for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
		char doc[512];
		snprintf(doc, sizeof doc, "version: 1\nenvironments: [{name: e}]\n"
			 "resources: [{name: r, kind: sqlite, environments: {e: {path: \"%s\"}}}]\n", kept[i]);
		struct gh_policy *p1 = parse_ok(doc, NULL), *p2 = NULL;
		struct gh_buf e1;
		gh_buf_init(&e1, 1 << 20);
		assert_int_equal(gh_config_export(p1, &e1), 0);
		struct gh_error err;
		gh_error_clear(&err);
		int rc = gh_config_parse(e1.data, e1.len, "exported", NULL, &p2, &err);
		if (rc)
			fail_msg("export of %s does not re-parse: %s", p1->resources[0].envs[0].path, err.message);
		assert_string_equal(p1->resources[0].envs[0].path, p2->resources[0].envs[0].path);
		printf("  path %s: same after export\n", p1->resources[0].envs[0].path);
		gh_config_unref(p2);
		gh_config_unref(p1);
		gh_buf_free(&e1);
	}
	CHECKED("paths with control characters are refused with a position; unusual paths survive export unchanged");
}

static void test_export_ceiling(void **state)
{
	(void)state;
	struct gh_policy *p = parse_ok(full_doc, NULL);
	struct gh_buf b;
	gh_buf_init(&b, 64);
	assert_int_equal(gh_config_export(p, &b), GH_ETOOBIG);
	gh_buf_free(&b);
	gh_config_unref(p);
	CHECKED("export into a too-small buffer fails with GH_ETOOBIG");
}

static void test_groups_and_admins(void **state)
{
	(void)state;
	struct gh_policy *p = parse_ok(full_doc, NULL);
	struct gh_buf b;
	gh_buf_init(&b, 1024);
	assert_int_equal(gh_config_user_groups(p, "carol", &b), 0);
	assert_string_equal(b.data, "engineers,leads,platform-ops");
	gh_buf_reset(&b);
	assert_int_equal(gh_config_user_groups(p, "alice", &b), 0);
	assert_string_equal(b.data, "analysts,platform-ops");
	gh_buf_reset(&b);
	assert_int_equal(gh_config_user_groups(p, "mallory", &b), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(gh_config_user_groups(p, "zed", &b), 0);
	assert_int_equal(b.len, 0);
	gh_buf_free(&b);
	gh_buf_init(&b, 5);
	assert_int_equal(gh_config_user_groups(p, "carol", &b), GH_ETOOBIG);
	gh_buf_free(&b);

	assert_true(gh_config_in_group(p, "bob.smith@example.com", "engineers"));
	assert_false(gh_config_in_group(p, "bob.smith@example.com", "leads"));
	assert_false(gh_config_in_group(p, "alice", "nope"));
	assert_true(gh_config_is_admin(p, "alice"));
	assert_true(gh_config_is_admin(p, "carol"));
	assert_false(gh_config_is_admin(p, "bob.smith@example.com"));
	assert_false(gh_config_is_admin(p, "zed"));
	gh_config_unref(p);
	CHECKED("gh_config_user_groups lists groups in order; gh_config_is_admin through admin groups");
}

static void test_limits(void **state)
{
	(void)state;
	/* larger than GH_POLICY_MAX_BYTES */
	size_t n = GH_POLICY_MAX_BYTES + 1;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, "version: 1\n#", 12);
	big[n] = '\0';
	struct gh_policy *p = NULL;
	struct gh_error err;
	gh_error_clear(&err);
	assert_int_equal(gh_config_parse(big, n, "policy.yaml", NULL, &p, &err), GH_ETOOBIG);
	assert_null(p);
	free(big);
	/* a NUL byte inside a string */
	static const char nul[] = "version: 1\nusers:\n  - name: \"a\\0b\"\n";
	expect_err_at(nul, NULL, 3, 11, "NUL byte in string");
	/* a path that would be longer than PATH_MAX once joined */
	char *deep = malloc(5000);
	assert_non_null(deep);
	memset(deep, 'd', 4999);
	deep[4999] = '\0';
	struct gh_buf doc;
	gh_buf_init(&doc, 1 << 16);
	assert_int_equal(gh_buf_printf(&doc, "%sresources:\n  - name: r\n    kind: sqlite\n"
					     "    environments: {staging: {path: %s}}\n", res_head, deep), 0);
	expect_err_at(doc.data, NULL, 0, 0, "path: longer than");
	gh_buf_free(&doc);
	free(deep);
	CHECKED("policy larger than the limit, NUL in a name and over-long paths are refused");
}


/* The scan section: defaults for gatehouse scan, validated with positions, exported so that it
 * re-applies to the same values. */
static void test_scan_section(void **state)
{
	(void)state;
	static const char doc[] = "version: 1\n"
				  "users: [{name: alice}]\n"
				  "scan:\n"
				  "  fail_on: medium\n"
				  "  min_release_age: 3d\n"
				  "  licenses: [MIT, Apache-2.0, BSD-3-Clause]\n"
				  "  deny_packages: [event-stream, \"@evil/pkg\"]\n"
				  "  registry: http://127.0.0.1:4873\n"
				  "  max_file_size: 2M\n";
	struct gh_policy *p = parse_ok(doc, NULL);
	assert_string_equal(p->scan.fail_on, "medium");
	assert_int_equal(p->scan.min_release_age, 3 * 86400);
	assert_int_equal(p->scan.nlicenses, 3);
	assert_string_equal(p->scan.deny_packages[1], "@evil/pkg");
	assert_string_equal(p->scan.registry, "http://127.0.0.1:4873");
	assert_int_equal(p->scan.max_file_size, 2 * 1024 * 1024);
	struct gh_buf b;
	gh_buf_init(&b, 1 << 20);
	assert_int_equal(gh_config_export(p, &b), 0);
	struct gh_policy *q = parse_ok(b.data, NULL);
	assert_string_equal(q->scan.fail_on, "medium");
	assert_int_equal(q->scan.min_release_age, 3 * 86400);
	assert_int_equal(q->scan.ndeny, 2);
	assert_int_equal(q->scan.max_file_size, 2 * 1024 * 1024);
	gh_buf_free(&b);
	gh_config_unref(q);
	gh_config_unref(p);
	struct gh_policy *none = parse_ok("version: 1\n", NULL);
	assert_null(none->scan.fail_on);
	assert_int_equal(none->scan.min_release_age, -1);
	assert_int_equal(none->scan.max_file_size, -1);
	gh_config_unref(none);
	expect_err_at("version: 1\nscan:\n  fail_on: severe\n", NULL, 3, 12, "scan.fail_on: expected low, medium");
	expect_err_at("version: 1\nscan:\n  min_release_age: soon\n", NULL, 3, 20, "scan.min_release_age");
	expect_err_at("version: 1\nscan:\n  registry: ftp://x\n", NULL, 3, 13, "scan.registry: expected an http(s) URL");
	expect_err_at("version: 1\nscan:\n  deny_packages: [a, a]\n", NULL, 3, 22, "listed twice");
	expect_err_at("version: 1\nscan:\n  licenses: [\"has space\"]\n", NULL, 3, 14, "not a package name or licence");
	expect_err_at("version: 1\nscan:\n  max_file_size: 10\n", NULL, 3, 18, "scan.max_file_size");
	expect_err_at("version: 1\nscan:\n  colour: true\n", NULL, 3, 3, "scan: unknown key 'colour'");
	expect_err_at("version: 1\nscan: [x]\n", NULL, 2, 7, "scan: expected a mapping");
	CHECKED("scan section: values, export round trip, unset defaults, 8 refusals with positions");
}

/* gh_config_diff: grants keyed by resource/environment/subject (duplicates at their highest
 * access), names added and removed per section, standing and membership changes; the
 * no-admin check and the token subject check. */
static const char diff_a[] = "version: 1\n"
			     "users: [{name: alice}, {name: bob}, {name: carol, disabled: true}, {name: erin}]\n"
			     "groups: [{name: eng, members: [alice, bob]}, {name: ops, members: [erin]}]\n"
			     "admins: [ops]\n"
			     "environments: [{name: staging}, {name: qa}]\n"
			     "resources:\n"
			     "  - {name: crm, kind: sqlite, environments: {staging: {path: /a}, qa: {path: /b}}}\n"
			     "apps: [{name: inv}]\n"
			     "grants:\n"
			     "  - {resource: crm, environment: staging, group: eng, access: use}\n"
			     "  - {resource: crm, environment: staging, group: eng, access: edit}\n"
			     "  - {resource: crm, environment: qa, user: alice, access: own}\n"
			     "  - {resource: crm, environment: staging, user: bob, access: use}\n";
static const char diff_b[] = "version: 1\n"
			     "users: [{name: alice, disabled: true}, {name: bob}, {name: carol}, {name: erin}, {name: dan}]\n"
			     "groups: [{name: eng, members: [bob, dan]}, {name: ops, members: [erin]}, {name: new, members: []}]\n"
			     "admins: [ops, new]\n"
			     "environments: [{name: staging}]\n"
			     "resources:\n"
			     "  - {name: crm, kind: sqlite, environments: {staging: {path: /a}}}\n"
			     "  - {name: hr, kind: sqlite, environments: {staging: {path: /c}}}\n"
			     "apps: []\n"
			     "grants:\n"
			     "  - {resource: crm, environment: staging, group: eng, access: own}\n"
			     "  - {resource: crm, environment: staging, user: bob, access: use}\n"
			     "  - {resource: hr, environment: staging, user: dan, access: use}\n";

static void test_diff(void **state)
{
	(void)state;
	struct gh_policy *a = parse_ok(diff_a, NULL), *b = parse_ok(diff_b, NULL);
	struct gh_buf out;
	struct gh_config_diff n;
	gh_buf_init(&out, 1 << 20);
	assert_int_equal(gh_config_diff(a, b, &out, &n), 0);
	static const char want[] =
		"{\"grants\":{\"added\":[\"hr/staging/user:dan/use\"],\"removed\":[\"crm/qa/user:alice/own\"],"
		"\"changed\":[{\"grant\":\"crm/staging/group:eng\",\"from\":\"edit\",\"to\":\"own\"}]},"
		"\"users\":{\"added\":[\"dan\"],\"removed\":[],\"disabled\":[\"alice\"],\"enabled\":[\"carol\"]},"
		"\"groups\":{\"added\":[\"new\"],\"removed\":[],\"changed\":[{\"group\":\"eng\","
		"\"members\":{\"added\":[\"dan\"],\"removed\":[\"alice\"]}}]},"
		"\"admins\":{\"added\":[\"new\"],\"removed\":[]},"
		"\"environments\":{\"added\":[],\"removed\":[\"qa\"]},"
		"\"resources\":{\"added\":[\"hr\"],\"removed\":[]},"
		"\"apps\":{\"added\":[],\"removed\":[\"inv\"]}}";
	assert_string_equal(out.data, want);
	assert_int_equal(n.grants_added, 1);
	assert_int_equal(n.grants_removed, 1);
	assert_int_equal(n.grants_changed, 1);
	assert_int_equal(n.users_disabled, 1);
	assert_int_equal(n.users_enabled, 1);
	assert_int_equal(n.groups_changed, 1);
	assert_int_equal(gh_config_diff_total(&n), 12);
	/* the same policy: nothing; from nothing: everything added */
	gh_buf_reset(&out);
	assert_int_equal(gh_config_diff(a, a, &out, &n), 0);
	assert_int_equal(gh_config_diff_total(&n), 0);
	gh_buf_reset(&out);
	assert_int_equal(gh_config_diff(NULL, a, &out, &n), 0);
	assert_int_equal(n.grants_added, 3); /* four grants, two of them on one key */
	assert_int_equal(n.users_added, 4);
	assert_int_equal(n.groups_changed, 0);
	assert_non_null(strstr(out.data, "\"crm/staging/group:eng/edit\""));
	/* a ceiling too small is an error, not a cut document */
	struct gh_buf tiny;
	gh_buf_init(&tiny, 64);
	assert_int_equal(gh_config_diff(a, b, &tiny, &n), GH_ETOOBIG);
	gh_buf_free(&tiny);
	gh_buf_free(&out);
	gh_config_unref(a);
	gh_config_unref(b);
	CHECKED("policy difference: grants added/removed/changed, users, standing, members, sections; empty; from none");
}

static void test_admin_and_subject_checks(void **state)
{
	(void)state;
	struct gh_policy *a = parse_ok(diff_a, NULL);
	assert_true(gh_config_has_admin(a));
	char msg[200];
	assert_int_equal(gh_config_token_subject(a, "alice", "staging", "inv", msg, sizeof msg), 0);
	assert_int_equal(gh_config_token_subject(a, "carol", "staging", NULL, msg, sizeof msg), GH_EDENIED);
	assert_non_null(strstr(msg, "disabled"));
	assert_int_equal(gh_config_token_subject(a, "zed", "staging", NULL, msg, sizeof msg), GH_ENOTFOUND);
	assert_int_equal(gh_config_token_subject(a, "alice", "prod", NULL, msg, sizeof msg), GH_ENOTFOUND);
	assert_non_null(strstr(msg, "environment 'prod'"));
	assert_int_equal(gh_config_token_subject(a, "alice", "staging", "nope", msg, sizeof msg), GH_ENOTFOUND);
	gh_config_unref(a);
	static const char *const none[] = {
		"version: 1\nusers: [{name: erin}]\ngroups: [{name: ops, members: [erin]}]\n",
		"version: 1\nusers: [{name: erin}]\ngroups: [{name: ops, members: []}]\nadmins: [ops]\n",
		"version: 1\nusers: [{name: erin, disabled: true}]\ngroups: [{name: ops, members: [erin]}]\nadmins: [ops]\n",
	};
	for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
		struct gh_policy *p = parse_ok(none[i], NULL);
		assert_false(gh_config_has_admin(p));
		gh_config_unref(p);
	}
	CHECKED("has_admin (3 policies without an enabled admin), token subject checks");
}

static void test_audit_section(void **state)
{
	(void)state;
	static const char doc[] = "version: 1\n"
				  "audit:\n"
				  "  checkpoint_every: 50\n"
				  "  sinks:\n"
				  "    - name: siem\n"
				  "      kind: http\n"
				  "      url: https://http-intake.logs.datadoghq.eu/api/v2/logs?ddsource=gatehouse\n"
				  "      header: DD-API-KEY\n"
				  "      api_key: { secret: dd_key }\n"
				  "      batch: 500\n"
				  "      timeout: 5s\n"
				  "      retry_max: 2m\n"
				  "    - { name: collector, kind: stdout }\n"
				  "    - { name: local, kind: syslog, facility: auth, address: \"udp:[::1]:514\" }\n"
				  "    - { name: devlog, kind: syslog }\n"
				  "    - { name: loop, kind: http, url: \"http://127.0.0.1:8125/in\" }\n";
	struct gh_policy *p = parse_ok(doc, NULL);
	const struct gh_policy_audit *au = &p->audit;
	assert_int_equal(au->checkpoint_every, 50);
	assert_int_equal(au->nsinks, 5);
	assert_int_equal(au->sinks[0].kind, GH_SINK_HTTP);
	assert_string_equal(au->sinks[0].header, "DD-API-KEY");
	assert_string_equal(au->sinks[0].secret, "dd_key");
	assert_int_equal(au->sinks[0].secret_line, 9);
	assert_int_equal(au->sinks[0].secret_column, 26);
	assert_int_equal(au->sinks[0].batch, 500);
	assert_int_equal(au->sinks[0].timeout, 5);
	assert_int_equal(au->sinks[0].retry_max, 120);
	assert_int_equal(au->sinks[1].kind, GH_SINK_STDOUT);
	assert_int_equal(au->sinks[1].batch, 100);
	assert_int_equal(au->sinks[2].facility, 4);
	assert_string_equal(au->sinks[2].address, "udp:[::1]:514");
	assert_int_equal(au->sinks[3].facility, 16);
	assert_string_equal(au->sinks[3].address, "/dev/log");
	assert_null(au->sinks[4].secret);
	struct gh_buf b;
	gh_buf_init(&b, 1 << 20);
	assert_int_equal(gh_config_export(p, &b), 0);
	struct gh_policy *q = parse_ok(b.data, NULL);
	struct gh_buf b2;
	gh_buf_init(&b2, 1 << 20);
	assert_int_equal(gh_config_export(q, &b2), 0);
	assert_string_equal(b.data, b2.data);
	assert_int_equal(q->audit.checkpoint_every, 50);
	assert_string_equal(q->audit.sinks[0].url, au->sinks[0].url);
	assert_int_equal(q->audit.sinks[2].facility, 4);
	gh_buf_free(&b);
	gh_buf_free(&b2);
	gh_config_unref(q);
	gh_config_unref(p);
	struct gh_policy *none = parse_ok("version: 1\n", NULL);
	assert_int_equal(none->audit.checkpoint_every, 1000);
	assert_int_equal(none->audit.nsinks, 0);
	gh_buf_init(&b, 1 << 20);
	assert_int_equal(gh_config_export(none, &b), 0);
	assert_null(strstr(b.data, "audit:"));
	gh_buf_free(&b);
	gh_config_unref(none);
	CHECKED("audit section: sinks of each kind, defaults, secret position, export round trip");

#define S(x) "version: 1\naudit:\n  sinks:\n    - " x "\n"
	expect_err_at("version: 1\naudit:\n  checkpoint_every: 0\n", NULL, 3, 21, "audit.checkpoint_every: expected 1");
	expect_err_at("version: 1\naudit:\n  every: 5\n", NULL, 3, 3, "audit: unknown key 'every'");
	expect_err_at(S("{ kind: stdout }"), NULL, 4, 7, "missing required key 'name'");
	expect_err_at(S("{ name: a }"), NULL, 4, 7, "missing required key 'kind'");
	expect_err_at(S("{ name: a, kind: kafka }"), NULL, 4, 24, "expected stdout, syslog or http");
	expect_err_at(S("{ name: a, kind: stdout, colour: red }"), NULL, 4, 32, "unknown key 'colour'");
	expect_err_at(S("{ name: a, kind: stdout, url: \"https://x\" }"), NULL, 4, 32, "'url' is for kind: http only");
	expect_err_at(S("{ name: a, kind: http, facility: user, url: \"https://x\" }"), NULL, 4, 30,
		      "'facility' is for kind: syslog only");
	expect_err_at(S("{ name: a, kind: http }"), NULL, 4, 7, "kind http needs 'url'");
	expect_err_at(S("{ name: a, kind: http, url: \"http://siem.example.com/in\" }"), NULL, 4, 35,
		      "http:// is allowed only to 127.0.0.1 or [::1]");
	expect_err_at(S("{ name: a, kind: http, url: \"http://127.0.0.2/in\" }"), NULL, 4, 35, "use https://");
	expect_err_at(S("{ name: a, kind: http, url: \"ftp://x/in\" }"), NULL, 4, 35, "expected an https:// URL");
	expect_err_at(S("{ name: a, kind: http, url: \"https://user:pw@x/in\" }"), NULL, 4, 35,
		      "credentials in the URL are not allowed");
	expect_err_at(S("{ name: a, kind: http, url: \"https://x/in#frag\" }"), NULL, 4, 35, "fragment");
	expect_err_at(S("{ name: a, kind: http, url: \"https://x y/\" }"), NULL, 4, 35, "spaces, quotes");
	expect_err_at(S("{ name: a, kind: http, url: \"https://x:99999/\" }"), NULL, 4, 35, "HOST[:PORT]");
	expect_err_at(S("{ name: a, kind: http, url: \"https:///path\" }"), NULL, 4, 35, "HOST[:PORT]");
	expect_err_at(S("{ name: a, kind: http, url: \"https://x/\", header: X-Key }"), NULL, 4, 57,
		      "header needs 'api_key");
	expect_err_at(S("{ name: a, kind: http, url: \"https://x/\", api_key: { secret: k } }"), NULL, 4, 58,
		      "api_key needs 'header'");
	expect_err_at(S("{ name: a, kind: http, url: \"https://x/\", header: \"Bad Header\", api_key: { secret: k } }"),
		      NULL, 4, 57, "expected an HTTP header name");
	expect_err_at(S("{ name: a, kind: http, url: \"https://x/\", header: Content-Type, api_key: { secret: k } }"),
		      NULL, 4, 57, "other than those the sink sets itself");
	expect_err_at(S("{ name: a, kind: http, url: \"https://x/\", header: K, api_key: s3cr3t }"), NULL, 4, 69,
		      "api_key: expected { secret: NAME }");
	expect_err_at(S("{ name: a, kind: http, url: \"https://x/\", header: K, api_key: { value: s3cr3t } }"), NULL,
		      4, 71, "unknown key 'value'");
	expect_err_at(S("{ name: a, kind: http, url: \"https://x/\", batch: 1001 }"), NULL, 4, 56, "batch: expected 1 to 1000");
	expect_err_at(S("{ name: a, kind: http, url: \"https://x/\", timeout: 0s }"), NULL, 4, 58, "timeout");
	expect_err_at(S("{ name: a, kind: syslog, facility: local9 }"), NULL, 4, 42, "expected a syslog facility");
	expect_err_at(S("{ name: a, kind: syslog, address: \"tcp:127.0.0.1:514\" }"), NULL, 4, 41, "udp:HOST:PORT");
	expect_err_at(S("{ name: a, kind: syslog, address: \"udp:127.0.0.1\" }"), NULL, 4, 41, "udp:HOST:PORT");
	expect_err_at(S("{ name: a, kind: syslog, address: dev/log }"), NULL, 4, 41, "absolute path");
	expect_err_at("version: 1\naudit:\n  sinks:\n    - { name: a, kind: stdout }\n    - { name: a, kind: stdout }\n",
		      NULL, 5, 7, "audit.sinks: 'a' is defined twice");
	expect_err_at(S("{ name: \"a b\", kind: stdout }"), NULL, 4, 15, "not a valid name");
#undef S
	CHECKED("audit section: 31 refusals with positions (URLs, headers, secrets, kinds, facilities, addresses)");
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_audit_section),
	cmocka_unit_test(test_scan_section),
	cmocka_unit_test(test_full_document),
	cmocka_unit_test(test_minimal_documents),
	cmocka_unit_test(test_errors_structure),
	cmocka_unit_test(test_errors_users_groups),
	cmocka_unit_test(test_errors_environments),
	cmocka_unit_test(test_errors_resources),
	cmocka_unit_test(test_errors_grants),
	cmocka_unit_test(test_grant_tables),
	cmocka_unit_test(test_errors_yaml),
	cmocka_unit_test(test_two_documents),
	cmocka_unit_test(test_two_documents_message),
	cmocka_unit_test(test_export_roundtrip),
	cmocka_unit_test(test_export_roundtrip_path_chars),
	cmocka_unit_test(test_export_ceiling),
	cmocka_unit_test(test_groups_and_admins),
	cmocka_unit_test(test_limits),
	cmocka_unit_test(test_diff),
	cmocka_unit_test(test_admin_and_subject_checks),
};

GH_UNIT_MAIN("test_config", tests)
