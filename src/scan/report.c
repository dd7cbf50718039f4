/* scan: reports (text, JSON, SARIF 2.1.0), inline suppressions, fingerprints and baselines. */
#include "scan/report.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- suppressions */

/* The text of line `line` (1-based) in buf, without its newline. */
static struct gh_str line_text(const uint8_t *buf, size_t len, int line)
{
	size_t i = 0;
	for (int l = 1; l < line && i < len; i++)
		if (buf[i] == '\n')
			l++;
	size_t j = i;
	while (j < len && buf[j] != '\n')
		j++;
	if (j > i && buf[j - 1] == '\r')
		j--;
	return (struct gh_str){(const char *)buf + i, j - i};
}

/* "gatehouse:ignore RULE-ID reason" on the line: true when it names rule (or "all") and gives
 * a reason. */
static bool line_ignores(struct gh_str l, const char *rule)
{
	static const char tag[] = "gatehouse:ignore";
	for (size_t i = 0; i + sizeof tag - 1 <= l.len; i++) {
		if (memcmp(l.p + i, tag, sizeof tag - 1) != 0)
			continue;
		size_t k = i + sizeof tag - 1;
		while (k < l.len && (l.p[k] == ' ' || l.p[k] == '\t'))
			k++;
		size_t id0 = k;
		while (k < l.len && l.p[k] != ' ' && l.p[k] != '\t')
			k++;
		size_t idn = k - id0;
		while (k < l.len && (l.p[k] == ' ' || l.p[k] == '\t'))
			k++;
		bool reason = false;
		for (size_t r = k; r < l.len; r++)
			if ((l.p[r] >= 'A' && l.p[r] <= 'Z') || (l.p[r] >= 'a' && l.p[r] <= 'z')) {
				reason = true;
				break;
			}
		if (!reason || !idn)
			continue;
		if ((idn == strlen(rule) && memcmp(l.p + id0, rule, idn) == 0) || (idn == 3 && memcmp(l.p + id0, "all", 3) == 0))
			return true;
	}
	return false;
}

bool gh_scan_suppressed(const uint8_t *buf, size_t len, int line, const char *rule)
{
	if (line >= 1 && line_ignores(line_text(buf, len, line), rule))
		return true;
	return line > 1 && line_ignores(line_text(buf, len, line - 1), rule);
}

/* ---------------------------------------------------------------- fingerprints */

void gh_scan_fingerprint(const struct gh_finding *f, const uint8_t *buf, size_t len, char out[33])
{
	/* rule, path and the finding's line with its whitespace squeezed: stable when lines move */
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 16);
	crypto_generichash_update(&st, (const uint8_t *)f->rule, strlen(f->rule) + 1);
	crypto_generichash_update(&st, (const uint8_t *)f->path, strlen(f->path) + 1);
	if (buf) {
		struct gh_str l = line_text(buf, len, f->line);
		bool space = false;
		for (size_t i = 0; i < l.len; i++) {
			uint8_t c = (uint8_t)l.p[i];
			if (c == ' ' || c == '\t') {
				space = true;
				continue;
			}
			if (space) {
				crypto_generichash_update(&st, (const uint8_t *)" ", 1);
				space = false;
			}
			crypto_generichash_update(&st, &c, 1);
		}
	} else if (f->message) {
		crypto_generichash_update(&st, (const uint8_t *)f->message, strlen(f->message));
	}
	uint8_t h[16];
	crypto_generichash_final(&st, h, sizeof h);
	gh_hex_encode(h, sizeof h, out);
}

int gh_baseline_load(const char *path, struct gh_map **out, struct gh_error *err)
{
	json_error_t je;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!doc)
		return gh_error_set(err, GH_EINVAL, "%s:%d: not a JSON report from gatehouse scan --format json: %s", path,
				    je.line, je.text);
	json_t *list = json_object_get(doc, "findings");
	struct gh_map *m = gh_map_new(NULL);
	if (!m || !json_is_array(list)) {
		json_decref(doc);
		gh_map_free(m);
		return gh_error_set(err, GH_EINVAL, "%s: no \"findings\" array (make a baseline with --format json)", path);
	}
	size_t i;
	json_t *f;
	json_array_foreach(list, i, f) {
		const char *fp = json_string_value(json_object_get(f, "fingerprint"));
		if (fp && gh_map_put(m, fp, strlen(fp), (void *)1)) {
			json_decref(doc);
			gh_map_free(m);
			return gh_error_set(err, GH_ENOMEM, "out of memory");
		}
	}
	json_decref(doc);
	*out = m;
	return 0;
}

/* ---------------------------------------------------------------- output */

static const struct gh_rule_info *rule_of(const struct gh_report *r, const char *id)
{
	for (size_t i = 0; i < r->nrules; i++)
		if (strcmp(r->rules[i].id, id) == 0)
			return &r->rules[i];
	return NULL;
}

static int write_text(FILE *out, const struct gh_report *r)
{
	const char *red = r->color ? "\033[31m" : "", *yel = r->color ? "\033[33m" : "", *bold = r->color ? "\033[1m" : "",
		   *dim = r->color ? "\033[2m" : "", *off = r->color ? "\033[0m" : "";
	const char *last = NULL;
	for (size_t i = 0; i < r->fs->n; i++) {
		const struct gh_finding *f = &r->fs->v[i];
		if (!last || strcmp(last, f->path) != 0) {
			fprintf(out, "%s%s%s\n", bold, f->path, off);
			last = f->path;
		}
		fprintf(out, "  %d:%d  %s%s%s  %s  %s\n", f->line, f->col, f->severity >= GH_SEV_HIGH ? red : yel,
			gh_sev_name(f->severity), off, f->rule, f->message ? f->message : "");
		if (f->snippet)
			fprintf(out, "        %s%s%s\n", dim, f->snippet, off);
		if (f->fix)
			fprintf(out, "        fix: %s\n", f->fix);
	}
	for (size_t i = 0; i < r->nerrors; i++)
		fprintf(out, "%serror%s %s\n", red, off, r->errors[i]);
	fprintf(out, "%zu finding%s in %zu file%s (%zu skipped: binary, too large or empty; %zu ignored by .gitignore)\n",
		r->fs->n, r->fs->n == 1 ? "" : "s", r->files, r->files == 1 ? "" : "s", r->skipped, r->ignored);
	if (r->suppressed || r->baselined)
		fprintf(out, "%zu suppressed inline, %zu in the baseline\n", r->suppressed, r->baselined);
	return ferror(out) ? GH_EIO : 0;
}

static json_t *finding_json(const struct gh_report *r, size_t i)
{
	const struct gh_finding *f = &r->fs->v[i];
	json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:i,s:s,s:s}", "rule", f->rule, "severity", gh_sev_name(f->severity),
			      "path", f->path, "line", f->line, "column", f->col, "message", f->message ? f->message : "",
			      "fingerprint", r->fingerprints ? r->fingerprints[i] : "");
	if (o && f->end_line)
		json_object_set_new(o, "end_line", json_integer(f->end_line)), json_object_set_new(o, "end_column", json_integer(f->end_col));
	if (o && f->snippet)
		json_object_set_new(o, "snippet", json_string(f->snippet));
	if (o && f->fix)
		json_object_set_new(o, "fix", json_string(f->fix));
	return o;
}

static int write_json(FILE *out, const struct gh_report *r)
{
	json_t *doc = json_object(), *list = json_array(), *errs = json_array();
	for (size_t i = 0; i < r->fs->n; i++)
		json_array_append_new(list, finding_json(r, i));
	for (size_t i = 0; i < r->nerrors; i++)
		json_array_append_new(errs, json_string(r->errors[i]));
	json_object_set_new(doc, "findings", list);
	json_object_set_new(doc, "errors", errs);
	json_object_set_new(doc, "summary", json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "files", (json_int_t)r->files,
						      "skipped", (json_int_t)r->skipped, "ignored", (json_int_t)r->ignored,
						      "findings", (json_int_t)r->fs->n, "suppressed",
						      (json_int_t)r->suppressed, "baselined", (json_int_t)r->baselined));
	int rc = json_dumpf(doc, out, JSON_INDENT(2) | JSON_ENSURE_ASCII) ? GH_EIO : 0;
	fputc('\n', out);
	json_decref(doc);
	return rc ? rc : ferror(out) ? GH_EIO : 0;
}

/* SARIF 2.1.0 as GitHub code scanning reads it: one run, the tool's rules with help text and a
 * security-severity, results with physicalLocation regions and partialFingerprints. */
static int write_sarif(FILE *out, const struct gh_report *r)
{
	json_t *rules = json_array();
	for (size_t i = 0; i < r->nrules; i++) {
		const struct gh_rule_info *ri = &r->rules[i];
		const char *level = ri->severity >= GH_SEV_HIGH ? "error" : ri->severity == GH_SEV_MEDIUM ? "warning" : "note";
		const char *secsev = ri->severity == GH_SEV_CRITICAL ? "9.5" : ri->severity == GH_SEV_HIGH ? "8.0"
				     : ri->severity == GH_SEV_MEDIUM ? "5.0" : "2.0";
		json_array_append_new(rules, json_pack("{s:s,s:s,s:{s:s},s:{s:s},s:{s:s,s:s},s:{s:s,s:[s]}}",
						       "id", ri->id, "name", ri->id, "shortDescription", "text", ri->name,
						       "fullDescription", "text", ri->help, "help", "text", ri->help,
						       "markdown", ri->help, "defaultConfiguration", "level", level,
						       "properties", "security-severity", secsev, "tags", "security"));
	}
	json_t *results = json_array();
	for (size_t i = 0; i < r->fs->n; i++) {
		const struct gh_finding *f = &r->fs->v[i];
		const struct gh_rule_info *ri = rule_of(r, f->rule);
		long idx = ri ? (long)(ri - r->rules) : -1;
		json_t *region = json_pack("{s:i,s:i}", "startLine", f->line, "startColumn", f->col);
		if (f->end_line)
			json_object_set_new(region, "endLine", json_integer(f->end_line)),
				json_object_set_new(region, "endColumn", json_integer(f->end_col));
		char msg[2048];
		snprintf(msg, sizeof msg, "%s%s%s", f->message ? f->message : f->rule, f->fix ? " Fix: " : "", f->fix ? f->fix : "");
		json_t *res = json_pack("{s:s,s:s,s:{s:s},s:[{s:{s:{s:s,s:s},s:o}}],s:{s:s}}", "ruleId", f->rule, "level",
					f->severity >= GH_SEV_HIGH ? "error" : f->severity == GH_SEV_MEDIUM ? "warning" : "note",
					"message", "text", msg, "locations", "physicalLocation", "artifactLocation", "uri",
					f->path, "uriBaseId", "%SRCROOT%", "region", region, "partialFingerprints",
					"primaryLocationLineHash", r->fingerprints ? r->fingerprints[i] : "");
		if (res && idx >= 0)
			json_object_set_new(res, "ruleIndex", json_integer(idx));
		json_array_append_new(results, res);
	}
	json_t *doc = json_pack("{s:s,s:s,s:[{s:{s:{s:s,s:s,s:s,s:o}},s:o,s:{s:{s:s}}}]}", "$schema",
				"https://json.schemastore.org/sarif-2.1.0.json", "version", "2.1.0", "runs", "tool", "driver",
				"name", "gatehouse", "informationUri", "https://github.com/gatehouse/gatehouse", "version",
				r->tool_version ? r->tool_version : "0", "rules", rules, "results", results,
				"originalUriBaseIds", "%SRCROOT%", "uri", "file:///");
	int rc = doc ? (json_dumpf(doc, out, JSON_INDENT(2) | JSON_ENSURE_ASCII) ? GH_EIO : 0) : GH_ENOMEM;
	fputc('\n', out);
	json_decref(doc);
	return rc ? rc : ferror(out) ? GH_EIO : 0;
}

int gh_report_write(FILE *out, enum gh_scan_format fmt, const struct gh_report *r)
{
	switch (fmt) {
	case GH_FMT_JSON: return write_json(out, r);
	case GH_FMT_SARIF: return write_sarif(out, r);
	default: return write_text(out, r);
	}
}
