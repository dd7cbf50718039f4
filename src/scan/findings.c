/* scan: findings, severities and positions shared by every pass. */
#include "scan/scan.h"

#include <stdlib.h>
#include <string.h>

const char *gh_sev_name(enum gh_sev s)
{
	switch (s) {
	case GH_SEV_LOW: return "low";
	case GH_SEV_MEDIUM: return "medium";
	case GH_SEV_HIGH: return "high";
	case GH_SEV_CRITICAL: return "critical";
	default: return "unknown";
	}
}

enum gh_sev gh_sev_parse(const char *s)
{
	for (int v = GH_SEV_LOW; s && v <= GH_SEV_CRITICAL; v++)
		if (strcmp(s, gh_sev_name((enum gh_sev)v)) == 0)
			return (enum gh_sev)v;
	return 0;
}

void gh_findings_init(struct gh_findings *fs)
{
	memset(fs, 0, sizeof *fs);
	pthread_mutex_init(&fs->mu, NULL);
}

static void finding_free(struct gh_finding *f)
{
	free(f->path);
	free(f->message);
	free(f->snippet);
	free(f->fix);
}

int gh_findings_add(struct gh_findings *fs, const struct gh_finding *f)
{
	struct gh_finding c = *f;
	c.path = f->path ? gh_strdup(f->path) : NULL;
	c.message = f->message ? gh_strdup(f->message) : NULL;
	c.snippet = f->snippet ? gh_strdup(f->snippet) : NULL;
	c.fix = f->fix ? gh_strdup(f->fix) : NULL;
	if ((f->path && !c.path) || (f->message && !c.message) || (f->snippet && !c.snippet) || (f->fix && !c.fix)) {
		finding_free(&c);
		return GH_ENOMEM;
	}
	pthread_mutex_lock(&fs->mu);
	size_t max = fs->max ? fs->max : 100000;
	int rc = 0;
	if (fs->n >= max) {
		fs->truncated = true;
		rc = GH_ETOOBIG;
	} else if (fs->n == fs->cap) {
		size_t cap = fs->cap ? fs->cap * 2 : 64;
		struct gh_finding *v = realloc(fs->v, cap * sizeof *v);
		if (!v)
			rc = GH_ENOMEM;
		else {
			fs->v = v;
			fs->cap = cap;
		}
	}
	if (!rc)
		fs->v[fs->n++] = c;
	pthread_mutex_unlock(&fs->mu);
	if (rc)
		finding_free(&c);
	return rc;
}

static int cmp(const void *a, const void *b)
{
	const struct gh_finding *x = a, *y = b;
	int c = strcmp(x->path ? x->path : "", y->path ? y->path : "");
	if (c)
		return c;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return strcmp(x->rule ? x->rule : "", y->rule ? y->rule : "");
}

void gh_findings_sort(struct gh_findings *fs)
{
	if (fs->n > 1)
		qsort(fs->v, fs->n, sizeof *fs->v, cmp);
}

void gh_findings_free(struct gh_findings *fs)
{
	for (size_t i = 0; i < fs->n; i++)
		finding_free(&fs->v[i]);
	free(fs->v);
	pthread_mutex_destroy(&fs->mu);
	memset(fs, 0, sizeof *fs);
}

void gh_scan_position(const uint8_t *buf, size_t len, size_t off, int *line, int *col)
{
	int l = 1;
	size_t start = 0;
	if (off > len)
		off = len;
	for (size_t i = 0; i < off; i++)
		if (buf[i] == '\n') {
			l++;
			start = i + 1;
		}
	*line = l;
	*col = (int)(off - start) + 1;
}

enum gh_sev gh_rule_severity(const struct gh_rule_info *rules, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(rules[i].id, id) == 0)
			return rules[i].severity;
	return GH_SEV_HIGH;
}
