/* fuzz: the secrets pass of gatehouse scan (scan/secrets.c). One compiled database and one
 * scratch, made once; each input is scanned as one file. Checked for every finding: a rule id
 * the pass declares with its severity, a position and an end inside the input (end not before
 * start), and a snippet that is at most four characters then "…" (the redaction), with message
 * and fix present. The input is also scanned a second time: the same findings (no state leaks
 * between scans). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan.h"

static struct gh_secrets *S;
static struct gh_secrets_scratch *SCR;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct gh_error err = {0};
	(void)argc;
	(void)argv;
	if (gh_secrets_new(&S, &err) != 0) {
		fprintf(stderr, "fuzz_scan_secrets: %s\n", err.message);
		abort();
	}
	if (gh_secrets_scratch_new(S, &SCR) != 0)
		abort();
	return 0;
}

/* Line and column of the end of data: the largest position a finding may have. */
static void last_position(const uint8_t *data, size_t size, int *line, int *col)
{
	gh_scan_position(data, size, size, line, col);
}

static const struct gh_rule_info *rule_of(const char *id)
{
	const struct gh_rule_info *r;
	size_t n = gh_secrets_rules(&r);
	for (size_t i = 0; id && i < n; i++)
		if (strcmp(r[i].id, id) == 0)
			return &r[i];
	return NULL;
}

static void check(const struct gh_finding *f, const uint8_t *data, size_t size, int maxl, int maxc)
{
	const struct gh_rule_info *r = rule_of(f->rule);
	if (!r || r->severity != f->severity) {
		fprintf(stderr, "fuzz_scan_secrets: unknown rule or wrong severity\n");
		abort();
	}
	if (f->line < 1 || f->col < 1 || f->line > maxl || (f->line == maxl && f->col > maxc) || f->end_line < f->line ||
	    (f->end_line == f->line && f->end_col <= f->col) || f->end_line > maxl ||
	    (f->end_line == maxl && f->end_col > maxc)) {
		fprintf(stderr, "fuzz_scan_secrets: %s position %d:%d-%d:%d outside the input (ends %d:%d)\n", f->rule, f->line,
			f->col, f->end_line, f->end_col, maxl, maxc);
		abort();
	}
	size_t sl = f->snippet ? strlen(f->snippet) : 0;
	if (!f->snippet || sl < 3 || sl > 4 + 3 || strcmp(f->snippet + sl - 3, "\xe2\x80\xa6") != 0) {
		fprintf(stderr, "fuzz_scan_secrets: %s snippet is not a redaction (%zu bytes)\n", f->rule, sl);
		abort();
	}
	if (!f->message || !f->fix || !f->path || strcmp(f->path, "fuzz/input") != 0) {
		fprintf(stderr, "fuzz_scan_secrets: %s lacks a message, fix or path\n", f->rule);
		abort();
	}
	(void)data;
	(void)size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gh_findings a, b;
	int maxl, maxc;
	gh_findings_init(&a);
	gh_findings_init(&b);
	int rc = gh_secrets_scan(S, SCR, "fuzz/input", data, size, &a);
	int rc2 = gh_secrets_scan(S, SCR, "fuzz/input", data, size, &b);
	if (rc != rc2 || (rc && rc != GH_ENOMEM)) {
		fprintf(stderr, "fuzz_scan_secrets: scan returned %d then %d\n", rc, rc2);
		abort();
	}
	last_position(data, size, &maxl, &maxc);
	if (a.n != b.n) {
		fprintf(stderr, "fuzz_scan_secrets: %zu findings, then %zu on the same input\n", a.n, b.n);
		abort();
	}
	for (size_t i = 0; i < a.n; i++) {
		check(&a.v[i], data, size, maxl, maxc);
		if (strcmp(a.v[i].rule, b.v[i].rule) != 0 || a.v[i].line != b.v[i].line || a.v[i].col != b.v[i].col) {
			fprintf(stderr, "fuzz_scan_secrets: finding %zu differs between two scans\n", i);
			abort();
		}
		/* no two findings for overlapping spans (one finding per secret) */
		if (i && a.v[i].line == a.v[i - 1].line && a.v[i].col < a.v[i - 1].end_col && a.v[i - 1].end_line == a.v[i].line) {
			fprintf(stderr, "fuzz_scan_secrets: overlapping findings %s and %s\n", a.v[i - 1].rule, a.v[i].rule);
			abort();
		}
	}
	gh_findings_free(&a);
	gh_findings_free(&b);
	return 0;
}
