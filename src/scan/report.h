/* scan: reports, suppressions, fingerprints and baselines (report.c). Internal to scan. */
#ifndef GH_SCAN_REPORT_H
#define GH_SCAN_REPORT_H

#include <stdio.h>

#include "scan/scan.h"

enum gh_scan_format { GH_FMT_TEXT, GH_FMT_JSON, GH_FMT_SARIF };

struct gh_report {
	const struct gh_findings *fs;      /* sorted */
	char (*fingerprints)[33];          /* one per finding */
	const struct gh_rule_info *rules;  /* every rule of every pass */
	size_t nrules;
	const char *const *errors;         /* "path: what went wrong" */
	size_t nerrors;
	size_t files, skipped, ignored, suppressed, baselined;
	bool color;
	const char *tool_version;
};

/* True when line `line` of buf, or the line above it, says "gatehouse:ignore RULE reason"
 * (RULE is the rule id or "all"; a reason is required). */
bool gh_scan_suppressed(const uint8_t *buf, size_t len, int line, const char *rule);
/* A finding's fingerprint (32 hex): rule, path and the whitespace-squeezed text of its line,
 * so it survives lines moving. buf NULL: the message stands in for the line. */
void gh_scan_fingerprint(const struct gh_finding *f, const uint8_t *buf, size_t len, char out[33]);
/* Loads the fingerprints of a previous `--format json` report. */
int gh_baseline_load(const char *path, struct gh_map **out, struct gh_error *err);
int gh_report_write(FILE *out, enum gh_scan_format fmt, const struct gh_report *r);

#endif
