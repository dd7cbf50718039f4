/* cli: `gatehouse scan PATH`, the static gate an app's source passes before it ships. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "config/config.h"
#include "scan/report.h"
#include "scan/scan.h"
#include "store/store.h"

/* The policy whose scan section sets the defaults and whose grants resource references are
 * checked against: a policy file, or the one applied in a data directory. */
static int scan_policy(const char *file, const char *dir, struct gh_policy **out)
{
	struct gh_error err;
	if (file) {
		size_t n = 0;
		char *text = NULL;
		if (gh_read_file(file, 1024 * 1024, &text, &n, &err)) {
			fprintf(stderr, "gatehouse scan: --policy: %s\n", err.message);
			return 2;
		}
		char base[PATH_MAX];
		snprintf(base, sizeof base, "%s", file);
		char *slash = strrchr(base, '/');
		if (slash)
			*slash = '\0';
		else
			snprintf(base, sizeof base, ".");
		int rc = gh_config_parse(text, n, file, base, out, &err);
		free(text);
		if (rc) {
			fprintf(stderr, "gatehouse scan: %s\n", err.message);
			return 2;
		}
		return 0;
	}
	char path[PATH_MAX];
	struct gh_store *st = NULL;
	if (gh_path_join(path, sizeof path, dir, "gatehouse.db") || access(path, F_OK) != 0) {
		fprintf(stderr, "gatehouse scan: %s is not an initialised data directory\n", dir);
		return 2;
	}
	if (gh_store_open(path, false, &st, &err)) {
		fprintf(stderr, "gatehouse scan: %s\n", err.message);
		return 2;
	}
	char *doc = NULL;
	int64_t version = 0;
	int rc = 0;
	if (gh_store_policy_load(st, &doc, &version) || !doc) {
		fprintf(stderr, "gatehouse scan: no policy has been applied in %s\n", dir);
		rc = 2;
	} else if (gh_config_parse(doc, strlen(doc), "stored policy", NULL, out, &err)) {
		fprintf(stderr, "gatehouse scan: %s\n", err.message);
		rc = 2;
	}
	free(doc);
	gh_store_close(st);
	return rc;
}

int gh_cli_scan(int argc, char **argv)
{
	struct args_opt o[] = {{"format", false, NULL},	 {"fail-on", false, NULL},   {"policy", false, NULL},
			       {"data", false, NULL},	 {"as", false, NULL},	     {"baseline", false, NULL},
			       {"no-deps", true, NULL},	 {"min-age", false, NULL},   {"registry", false, NULL},
			       {"max-file-size", false, NULL}, {"all", true, NULL},  {"threads", false, NULL},
			       {"output", false, NULL},	 {"color", false, NULL},     {"passes", false, NULL},
			       {"pypi-registry", false, NULL}};
	struct args a = {o, sizeof o / sizeof *o, {0}, 0, false};
	if (!args_parse(&a, argc, argv, "scan"))
		return 2;
	if (a.help) {
		cli_usage("scan");
		return 0;
	}
	if (a.npos != 1)
		return cli_usage_error("scan", "expected one PATH");
	struct gh_scan_opts so;
	memset(&so, 0, sizeof so);
	so.root = a.pos[0];
	so.deps = !args_get(&a, "no-deps");
	so.all_files = args_get(&a, "all") != NULL;
	const char *v, *pfile = args_get(&a, "policy"), *pdir = args_get(&a, "data");
	if (pfile && pdir)
		return cli_usage_error("scan", "--policy and --data: give one");
	struct gh_policy *pol = NULL;
	if ((pfile || pdir)) {
		int rc = scan_policy(pfile, pdir, &pol);
		if (rc)
			return rc;
	}
	so.refs.policy = pol;
	so.refs.user = args_get(&a, "as");
	if (so.refs.user && !pol)
		return cli_usage_error("scan", "--as USER needs --policy FILE or --data DIR");
	if (so.refs.user && !gh_config_user(pol, so.refs.user)) {
		gh_config_unref(pol);
		return cli_usage_error("scan", "--as: '%s' is not a user of the policy", so.refs.user);
	}
	/* defaults: the policy's scan section, then flags */
	const struct gh_policy_scan *ps = pol ? &pol->scan : NULL;
	so.fail_on = ps && ps->fail_on ? gh_sev_parse(ps->fail_on) : GH_SEV_HIGH;
	so.max_file = ps && ps->max_file_size > 0 ? ps->max_file_size : 1024 * 1024;
	so.deps_pol.min_age_s = ps && ps->min_release_age >= 0 ? ps->min_release_age : 7 * 86400;
	so.deps_pol.registry = ps && ps->registry ? ps->registry : "https://registry.npmjs.org";
	so.deps_pol.pypi_registry = ps && ps->pypi_registry ? ps->pypi_registry : "https://pypi.org/pypi";
	if (ps) {
		so.deps_pol.licenses = (const char *const *)ps->licenses;
		so.deps_pol.nlicenses = ps->nlicenses;
		so.deps_pol.deny = (const char *const *)ps->deny_packages;
		so.deps_pol.ndeny = ps->ndeny;
	}
	so.deps_pol.cache_ttl_s = 24 * 3600;
	so.deps_pol.now = (int64_t)time(NULL);
	int64_t n;
	int rc = 0;
	if ((v = args_get(&a, "format"))) {
		if (strcmp(v, "text") == 0) so.format = GH_FMT_TEXT;
		else if (strcmp(v, "json") == 0) so.format = GH_FMT_JSON;
		else if (strcmp(v, "sarif") == 0) so.format = GH_FMT_SARIF;
		else rc = cli_usage_error("scan", "--format: expected text, json or sarif");
	}
	if (!rc && (v = args_get(&a, "fail-on")) && !(so.fail_on = gh_sev_parse(v)))
		rc = cli_usage_error("scan", "--fail-on: expected low, medium, high or critical");
	if (!rc && (v = args_get(&a, "min-age"))) {
		if (gh_parse_duration(v, &n) || n < 0 || n > 365 * 86400)
			rc = cli_usage_error("scan", "--min-age: expected a duration up to 365d (e.g. 7d)");
		else
			so.deps_pol.min_age_s = n;
	}
	if (!rc && (v = args_get(&a, "registry"))) {
		if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
			rc = cli_usage_error("scan", "--registry: expected an http(s) URL");
		else
			so.deps_pol.registry = v;
	}
	if (!rc && (v = args_get(&a, "pypi-registry"))) {
		if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
			rc = cli_usage_error("scan", "--pypi-registry: expected an http(s) URL");
		else
			so.deps_pol.pypi_registry = v;
	}
	if (!rc && (v = args_get(&a, "max-file-size"))) {
		if (gh_parse_size(v, &n) || n < 1024 || n > (int64_t)1 << 30)
			rc = cli_usage_error("scan", "--max-file-size: expected a size from 1K to 1G");
		else
			so.max_file = n;
	}
	if (!rc && (v = args_get(&a, "threads"))) {
		if (gh_parse_int(v, 1, 64, &n))
			rc = cli_usage_error("scan", "--threads: expected 1 to 64");
		else
			so.threads = (int)n;
	}
	if (!rc && (v = args_get(&a, "passes"))) {
		/* a comma-separated subset of secrets, inject, refs, deps */
		bool want[4] = {false, false, false, false};
		static const char *const names[] = {"secrets", "inject", "refs", "deps"};
		char list[128];
		snprintf(list, sizeof list, "%s", v);
		for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
			size_t k = 0;
			while (k < 4 && strcmp(tok, names[k]) != 0)
				k++;
			if (k == 4)
				rc = cli_usage_error("scan", "--passes: expected a comma-separated list of secrets, inject, "
							     "refs, deps; got '%.32s'", tok);
			else
				want[k] = true;
		}
		so.no_secrets = !want[0];
		so.no_inject = !want[1];
		so.no_refs = !want[2];
		so.deps = so.deps && want[3];
	}
	so.baseline = args_get(&a, "baseline");
	FILE *out = stdout;
	if (!rc && (v = args_get(&a, "output")) && !(out = fopen(v, "w"))) {
		fprintf(stderr, "gatehouse scan: --output: cannot write %s\n", v);
		rc = 2;
	}
	so.out = out;
	const char *color = args_get(&a, "color");
	so.color = so.format == GH_FMT_TEXT && (color ? strcmp(color, "always") == 0
						      : (out == stdout && isatty(STDOUT_FILENO)));
	char cache[PATH_MAX];
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	if (xdg && *xdg)
		snprintf(cache, sizeof cache, "%s/gatehouse/npm", xdg);
	else
		snprintf(cache, sizeof cache, "%s/.cache/gatehouse/npm", home && *home ? home : "/tmp");
	so.deps_pol.cache_dir = cache;
	int status = 0;
	if (!rc) {
		struct gh_error err;
		gh_error_clear(&err);
		if (gh_scan_run(&so, &status, &err)) {
			fprintf(stderr, "gatehouse scan: %s\n", err.message);
			rc = 2;
		}
	}
	if (out != stdout && fclose(out) != 0 && !rc) {
		fprintf(stderr, "gatehouse scan: --output: write failed\n");
		rc = 2;
	}
	if (pol)
		gh_config_unref(pol);
	return rc ? rc : status;
}
