/* scan: the orchestration of `gatehouse scan`. Collects the tree, maps each file once, runs
 * every pass that applies to it on a pool of threads (one per core), drops suppressed
 * findings, checks lockfiles, applies the baseline, and writes the report. */
#include "scan/scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scan/report.h"
#include "scan/walk.h"

struct job {
	const struct gh_scan_opts *o;
	struct gh_walk *w;
	const struct gh_secrets *secrets;
	struct gh_findings *all;
	size_t next;                  /* the next file index (atomic) */
	pthread_mutex_t mu;           /* errors and counters */
	char **errors;
	size_t nerrors, cap;
	size_t skipped, suppressed;
	bool failed;                  /* out of memory in a worker */
};

static void add_error(struct job *j, const char *rel, const char *what)
{
	char *e = malloc(strlen(rel) + strlen(what) + 3);
	if (!e)
		return;
	snprintf(e, strlen(rel) + strlen(what) + 3, "%s: %s", *rel ? rel : ".", what);
	pthread_mutex_lock(&j->mu);
	if (j->nerrors == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 16;
		char **v = realloc(j->errors, cap * sizeof *v);
		if (!v) {
			pthread_mutex_unlock(&j->mu);
			free(e);
			return;
		}
		j->errors = v;
		j->cap = cap;
	}
	j->errors[j->nerrors++] = e;
	pthread_mutex_unlock(&j->mu);
}

static void walk_error(void *arg, const char *rel, const char *what)
{
	add_error(arg, rel, what);
}

/* One file: every pass into a local list, then what is not suppressed into the shared one. */
static void scan_file(struct job *j, struct gh_secrets_scratch *scr, const char *rel)
{
	struct gh_mapped m;
	char why[300];
	if (gh_walk_map(j->w, rel, &m, why, sizeof why)) {
		add_error(j, rel, why);
		return;
	}
	if (m.skipped) {
		pthread_mutex_lock(&j->mu);
		j->skipped++;
		pthread_mutex_unlock(&j->mu);
		gh_walk_unmap(&m);
		return;
	}
	struct gh_findings local;
	gh_findings_init(&local);
	/* every pass runs; one that cannot finish is reported for this file and the others go on */
	int rc = j->o->no_secrets ? 0 : gh_secrets_scan(j->secrets, scr, rel, m.data, m.len, &local);
	if (rc && rc != GH_ENOMEM)
		add_error(j, rel, "the secrets pass did not finish");
	enum gh_lang lang = gh_lang_of(rel);
	const struct gh_refs_ctx *refs = j->o->refs.policy ? &j->o->refs : NULL;
	int irc = lang != GH_LANG_NONE && !j->o->no_inject ? gh_inject_scan(lang, rel, m.data, m.len, refs, &local) : 0;
	if (irc && irc != GH_ENOMEM)
		add_error(j, rel, irc == GH_ETIMEOUT ? "parsing took too long; queries built from strings were not checked"
						     : "the injection pass did not finish");
	/* connection strings naming resources, in any text (code included) */
	int frc = refs && !j->o->no_refs ? gh_refs_scan_text(rel, m.data, m.len, refs, &local) : 0;
	if (frc && frc != GH_ENOMEM)
		add_error(j, rel, "the resource-reference pass did not finish");
	if (rc == GH_ENOMEM || irc == GH_ENOMEM || frc == GH_ENOMEM)
		j->failed = true;
	size_t supp = 0;
	for (size_t i = 0; i < local.n; i++) {
		struct gh_finding *f = &local.v[i];
		if (gh_scan_suppressed(m.data, m.len, f->line, f->rule)) {
			supp++;
			continue;
		}
		if (gh_findings_add(j->all, f) == GH_ENOMEM)
			j->failed = true;
	}
	if (supp) {
		pthread_mutex_lock(&j->mu);
		j->suppressed += supp;
		pthread_mutex_unlock(&j->mu);
	}
	gh_findings_free(&local);
	gh_walk_unmap(&m);
}

static void *worker(void *arg)
{
	struct job *j = arg;
	struct gh_secrets_scratch *scr = NULL;
	if (gh_secrets_scratch_new(j->secrets, &scr)) {
		j->failed = true;
		return NULL;
	}
	for (;;) {
		size_t i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
		if (i >= j->w->nfiles)
			break;
		scan_file(j, scr, j->w->files[i]);
	}
	gh_secrets_scratch_free(scr);
	return NULL;
}

/* Every rule of every pass, for the report. */
static struct gh_rule_info *all_rules(size_t *n)
{
	const struct gh_rule_info *a, *b, *c;
	size_t na = gh_secrets_rules(&a), nb = gh_inject_rules(&b), nc = gh_deps_rules(&c);
	struct gh_rule_info *v = calloc(na + nb + nc + 1, sizeof *v);
	if (!v)
		return NULL;
	memcpy(v, a, na * sizeof *v);
	memcpy(v + na, b, nb * sizeof *v);
	memcpy(v + na + nb, c, nc * sizeof *v);
	*n = na + nb + nc;
	return v;
}


int gh_scan_run(const struct gh_scan_opts *o, int *status, struct gh_error *err)
{
	struct gh_walk w = {.root = o->root, .use_gitignore = !o->all_files,
			    .max_file = o->max_file > 0 ? o->max_file : 1024 * 1024};
	struct job j = {.o = o, .w = &w};
	struct gh_findings all;
	struct gh_secrets *secrets = NULL;
	struct gh_map *baseline = NULL;
	struct gh_rule_info *rules = NULL;
	char (*fps)[33] = NULL;
	int rc = 0;
	gh_findings_init(&all);
	pthread_mutex_init(&j.mu, NULL);
	w.on_error = walk_error;
	w.arg = &j;
	j.all = &all;
	if (o->baseline && (rc = gh_baseline_load(o->baseline, &baseline, err)))
		goto out;
	if ((rc = gh_secrets_new(&secrets, err)))
		goto out;
	j.secrets = secrets;
	if ((rc = gh_walk_collect(&w, err)))
		goto out;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int nt = o->threads > 0 ? o->threads : ncpu > 0 ? (int)ncpu : 1;
	if (nt > 64)
		nt = 64;
	if ((size_t)nt > w.nfiles)
		nt = w.nfiles ? (int)w.nfiles : 1;
	pthread_t th[64];
	int started = 0;
	for (; started < nt; started++)
		if (pthread_create(&th[started], NULL, worker, &j))
			break;
	if (started == 0)
		worker(&j);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (j.failed) {
		rc = gh_error_set(err, GH_ENOMEM, "out of memory while scanning");
		goto out;
	}
	if (o->deps && !w.single && (rc = gh_deps_scan(o->root, &o->deps_pol, &all, err)))
		goto out;
	gh_findings_sort(&all);
	/* fingerprints, then the baseline: keep only findings it does not hold */
	fps = calloc(all.n + 1, sizeof *fps);
	if (!fps) {
		rc = gh_error_set(err, GH_ENOMEM, "out of memory");
		goto out;
	}
	/* a finding's fingerprint needs its line's text: findings are sorted by path, so each
	 * file is mapped once for all of its findings */
	size_t kept = 0, baselined = 0;
	struct gh_mapped cur = {0};
	char *curpath = NULL; /* a copy: baselined findings are freed below */
	for (size_t i = 0; i < all.n; i++) {
		char fp[33], why[300];
		if (!curpath || strcmp(curpath, all.v[i].path) != 0) {
			gh_walk_unmap(&cur);
			if (gh_walk_map(&w, all.v[i].path, &cur, why, sizeof why))
				memset(&cur, 0, sizeof cur);
			free(curpath);
			curpath = gh_strdup(all.v[i].path);
		}
		gh_scan_fingerprint(&all.v[i], cur.data, cur.len, fp);
		if (baseline && gh_map_get(baseline, fp, strlen(fp))) {
			baselined++;
			free(all.v[i].path);
			free(all.v[i].message);
			free(all.v[i].snippet);
			free(all.v[i].fix);
			continue;
		}
		memcpy(fps[kept], fp, 33);
		all.v[kept++] = all.v[i];
	}
	gh_walk_unmap(&cur);
	free(curpath);
	all.n = kept;
	size_t nrules = 0;
	if (!(rules = all_rules(&nrules))) {
		rc = gh_error_set(err, GH_ENOMEM, "out of memory");
		goto out;
	}
	struct gh_report rep = {.fs = &all, .fingerprints = fps, .rules = rules, .nrules = nrules,
				.errors = (const char *const *)j.errors, .nerrors = j.nerrors, .files = w.nfiles,
				.skipped = j.skipped, .ignored = w.ignored, .suppressed = j.suppressed,
				.baselined = baselined, .color = o->color, .tool_version = "0.4"};
	if ((rc = gh_report_write(o->out, o->format, &rep))) {
		gh_error_set(err, rc, "cannot write the report");
		goto out;
	}
	enum gh_sev fail = o->fail_on ? o->fail_on : GH_SEV_HIGH;
	*status = 0;
	for (size_t i = 0; i < all.n; i++)
		if (all.v[i].severity >= fail)
			*status = 1;
	/* a file that could not be read or checked leaves the scan incomplete: fail closed */
	if (j.nerrors)
		*status = 2;
out:
	free(rules);
	free(fps);
	gh_map_free(baseline);
	gh_secrets_free(secrets);
	gh_findings_free(&all);
	gh_walk_free(&w);
	for (size_t i = 0; i < j.nerrors; i++)
		free(j.errors[i]);
	free(j.errors);
	pthread_mutex_destroy(&j.mu);
	return rc;
}
