/* fuzz: the injection and resource-reference pass (scan/inject.c). Each input is scanned as
 * JavaScript, TypeScript, TSX and Python (tree-sitter parses any bytes; the walk and the value
 * evaluation must stay bounded), and as plain text for connection strings, against a small
 * policy so that every reference path runs. Findings must be well formed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "scan/scan.h"

static struct gh_policy *policy;

static const char policy_yaml[] =
	"version: 1\n"
	"users:\n  - name: bob\n  - name: alice\n"
	"groups:\n  - name: eng\n    members: [bob]\n"
	"environments:\n  - name: staging\n  - name: production\n"
	"resources:\n"
	"  - name: crm\n    kind: sqlite\n    environments:\n"
	"      staging: { path: /tmp/crm-staging.db }\n      production: { path: /tmp/crm.db }\n"
	"grants:\n  - { resource: crm, environment: staging, group: eng, access: edit }\n"
	"  - { resource: crm, environment: production, user: bob, access: use }\n";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct gh_error err = {0};
	(void)argc;
	(void)argv;
	if (gh_config_parse(policy_yaml, sizeof policy_yaml - 1, "fuzz.yaml", NULL, &policy, &err) != 0) {
		fprintf(stderr, "fuzz_scan_inject: policy: %s\n", err.message);
		abort();
	}
	return 0;
}

static void check(const struct gh_findings *fs)
{
	const struct gh_rule_info *rules;
	size_t nrules = gh_inject_rules(&rules);
	for (size_t i = 0; i < fs->n; i++) {
		const struct gh_finding *f = &fs->v[i];
		bool known = false;
		for (size_t j = 0; j < nrules; j++)
			known |= f->rule && strcmp(f->rule, rules[j].id) == 0;
		if (!known || !f->message || !f->fix || !f->snippet || f->line < 1 || f->col < 1 ||
		    f->end_line < f->line) {
			fprintf(stderr, "fuzz_scan_inject: malformed finding %s at %d:%d\n", f->rule ? f->rule : "?",
				f->line, f->col);
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum gh_lang langs[] = {GH_LANG_JS, GH_LANG_TS, GH_LANG_TSX, GH_LANG_PY};
	struct gh_refs_ctx refs = {.policy = policy, .user = "bob"};
	for (size_t i = 0; i < sizeof langs / sizeof langs[0]; i++) {
		struct gh_findings fs;
		gh_findings_init(&fs);
		int rc = gh_inject_scan(langs[i], "fuzz", data, size, &refs, &fs);
		if (rc != 0 && rc != GH_ENOMEM && rc != GH_ETIMEOUT) {
			fprintf(stderr, "fuzz_scan_inject: gh_inject_scan returned %d\n", rc);
			abort();
		}
		check(&fs);
		gh_findings_free(&fs);
	}
	struct gh_findings fs;
	gh_findings_init(&fs);
	if (gh_refs_scan_text("fuzz", data, size, &refs, &fs) != 0 && fs.n == 0)
		abort();
	check(&fs);
	gh_findings_free(&fs);
	return 0;
}
