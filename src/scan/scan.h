/* scan: the gate an app's source passes before it ships (`gatehouse scan PATH`). Independent of
 * the data path: uses only core and config. Passes:
 *   secrets.c   provider credentials and high-entropy values (Hyperscan, confirmed with PCRE2)
 *   inject.c    queries built from strings at SQL/GraphQL/SOQL/Mongo/Gatehouse sinks
 *               (tree-sitter: JavaScript, TypeScript/TSX, Python), and references to Gatehouse
 *               resources the scanning user may not touch
 *   deps.c      dependencies too new to trust, denied or with licences outside the allow-list
 *   walk.c      the file tree: .gitignore, size limit, binary files, mmap, threads
 *   report.c    text, JSON and SARIF 2.1.0 output; suppressions and baselines
 *   scan.c      orchestration */
#ifndef GH_SCAN_H
#define GH_SCAN_H

#include <pthread.h>
#include <stdio.h>

#include "config/config.h"
#include "core/core.h"

enum gh_sev {
	GH_SEV_LOW = 1,
	GH_SEV_MEDIUM,
	GH_SEV_HIGH,
	GH_SEV_CRITICAL,
};
const char *gh_sev_name(enum gh_sev s);
/* "low", "medium", "high", "critical" -> the severity; 0 if none of them. */
enum gh_sev gh_sev_parse(const char *s);

/* What a rule is, for reports (SARIF rule metadata) and tests. Static storage. */
struct gh_rule_info {
	const char *id;        /* stable, kebab-case: "aws-access-key-id", "sql-injection", ... */
	const char *name;      /* short human title */
	const char *help;      /* what it finds, why it matters, how to fix it */
	enum gh_sev severity;
};
/* The severity of rule id among rules[0..n); GH_SEV_HIGH for an id not listed (fails closed). */
enum gh_sev gh_rule_severity(const struct gh_rule_info *rules, size_t n, const char *id);

/* One finding. Strings are owned by the finding (gh_findings_add copies them). A secret's
 * value never appears in any field: snippet holds the redacted value (first 4 characters,
 * then "…"). */
struct gh_finding {
	const char *rule;      /* a gh_rule_info id */
	enum gh_sev severity;
	char *path;            /* relative to the scan root, '/'-separated */
	int line, col;         /* 1-based; col counts bytes */
	int end_line, end_col; /* the span's end (inclusive line, exclusive col); 0 if unknown */
	char *message;         /* what was found and why it is a problem */
	char *snippet;         /* the offending text (redacted for secrets); may be NULL */
	char *fix;             /* the safe rewrite or the remedy; may be NULL */
};

/* A thread-safe growing list of findings. */
struct gh_findings {
	pthread_mutex_t mu;
	struct gh_finding *v;
	size_t n, cap;
	size_t max;            /* stop collecting after this many (0: 100000) */
	bool truncated;
};
void gh_findings_init(struct gh_findings *fs);
/* Copies f (and its strings) into fs. GH_ENOMEM, or GH_ETOOBIG past fs->max. */
int gh_findings_add(struct gh_findings *fs, const struct gh_finding *f);
/* Sorts by path, line, col, rule: the order reports use. */
void gh_findings_sort(struct gh_findings *fs);
void gh_findings_free(struct gh_findings *fs);

/* Fills line/col from a byte offset into buf (1-based line, 1-based byte column). */
void gh_scan_position(const uint8_t *buf, size_t len, size_t off, int *line, int *col);

/* ---- secrets (secrets.c) ---- */
struct gh_secrets;
/* Compiles every rule into one Hyperscan database (and PCRE2 confirmers). */
int gh_secrets_new(struct gh_secrets **out, struct gh_error *err);
void gh_secrets_free(struct gh_secrets *s);
/* Per-thread scratch space for scanning with s. */
struct gh_secrets_scratch;
int gh_secrets_scratch_new(const struct gh_secrets *s, struct gh_secrets_scratch **out);
void gh_secrets_scratch_free(struct gh_secrets_scratch *scr);
/* Scans one file's bytes in one pass; adds findings for path. */
int gh_secrets_scan(const struct gh_secrets *s, struct gh_secrets_scratch *scr, const char *path,
		    const uint8_t *buf, size_t len, struct gh_findings *out);
/* The secret rules (for reports and tests). */
size_t gh_secrets_rules(const struct gh_rule_info **out);

/* ---- injection and resource references (inject.c) ---- */
enum gh_lang { GH_LANG_NONE, GH_LANG_JS, GH_LANG_TS, GH_LANG_TSX, GH_LANG_PY };
/* The language of a file by its name (.js .mjs .cjs .jsx / .ts .mts .cts / .tsx / .py). */
enum gh_lang gh_lang_of(const char *path);
/* Who is asking, for resource references: a policy and a user (both NULL: not checked). */
struct gh_refs_ctx {
	const struct gh_policy *policy;
	const char *user;
};
/* Parses buf with tree-sitter and adds injection findings (and, with refs, references to
 * resources that do not exist or that user lacks edit on). */
int gh_inject_scan(enum gh_lang lang, const char *path, const uint8_t *buf, size_t len,
		   const struct gh_refs_ctx *refs, struct gh_findings *out);
/* Connection strings naming Gatehouse resources (dbname=RESOURCE.ENV, postgres://.../RESOURCE.ENV)
 * in any text file. */
int gh_refs_scan_text(const char *path, const uint8_t *buf, size_t len, const struct gh_refs_ctx *refs,
		      struct gh_findings *out);
size_t gh_inject_rules(const struct gh_rule_info **out);

/* ---- dependencies (deps.c) ---- */
struct gh_deps_policy {
	int64_t min_age_s;         /* minimum release age (default 7 days) */
	const char *const *licenses; size_t nlicenses; /* allow-list; none: any licence */
	const char *const *deny; size_t ndeny;         /* package names never allowed */
	const char *registry;      /* npm registry base URL (default https://registry.npmjs.org) */
	const char *pypi_registry; /* PyPI JSON API base URL (default https://pypi.org/pypi) */
	const char *cache_dir;     /* metadata cache (default $XDG_CACHE_HOME/gatehouse/npm) */
	int64_t cache_ttl_s;       /* default 24 h */
	int64_t now;               /* the scan's clock (seconds since the epoch) */
};
/* Reads the lockfiles under root (package-lock.json v2/v3, pnpm-lock.yaml, yarn.lock, pinned
 * requirements.txt) and adds findings. What cannot be established fails closed (a finding
 * that says so). */
int gh_deps_scan(const char *root, const struct gh_deps_policy *pol, struct gh_findings *out, struct gh_error *err);
size_t gh_deps_rules(const struct gh_rule_info **out);

/* ---- the scan (scan.c) ---- */
struct gh_scan_opts {
	const char *root;          /* a directory or one file */
	int format;                /* enum gh_scan_format (report.h) */
	enum gh_sev fail_on;       /* exit 1 at or above (default high) */
	int64_t max_file;          /* larger files are skipped (default 1 MiB) */
	bool all_files;            /* also .gitignore'd paths */
	int threads;               /* 0: one per core */
	const char *baseline;      /* a previous --format json report: only new findings count */
	struct gh_refs_ctx refs;   /* resource references (policy NULL: not checked) */
	bool deps;                 /* check lockfiles */
	bool no_secrets, no_inject, no_refs; /* leave a pass out (--passes) */
	struct gh_deps_policy deps_pol;
	bool color;
	FILE *out;
};
/* Runs every pass over the tree and writes the report to o->out. *status is 0 (clean), 1
 * (findings at or above fail_on), or 2 when some file could not be read or checked (reported by
 * name; the rest was scanned: an incomplete scan does not pass). Returns non-zero with err for
 * usage and I/O errors that stop the scan. */
int gh_scan_run(const struct gh_scan_opts *o, int *status, struct gh_error *err);

#endif
