/* fuzz: the lockfile parsers of the dependency scan (src/scan/deps.c). Every input is read as
 * each of the four formats (package-lock.json, pnpm-lock.yaml, yarn.lock, requirements.txt).
 * Beyond memory safety, a parse that succeeds must keep its promises, and a failed one must say
 * why; a broken promise aborts so libFuzzer keeps the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/deps_parse.h"

static void broken(const char *fmt, const char *what, const struct gh_dep *d)
{
	fprintf(stderr, "fuzz_scan_lockfiles: %s: %s (name %s, version %s, line %d)\n", fmt, what,
		d && d->name ? d->name : "-", d && d->version ? d->version : "-", d ? d->line : 0);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"npm", "pnpm", "yarn", "pip"};
	int lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	for (int fmt = GH_DEPS_NPM_LOCK; fmt <= GH_DEPS_PIP_REQS; fmt++) {
		struct gh_dep_list l;
		struct gh_error err;
		memset(&l, 0, sizeof l);
		memset(&err, 0, sizeof err);
		int rc = gh_deps_parse((enum gh_deps_format)fmt, data, size, &l, &err);
		if (rc != 0 && err.message[0] == '\0')
			broken(names[fmt], "failure without a message", NULL);
		if (rc == 0)
			for (size_t i = 0; i < l.n; i++) {
				const struct gh_dep *d = &l.v[i];
				if (!d->name)
					broken(names[fmt], "dependency without a name", d);
				if (d->line < 1 || d->line > lines)
					broken(names[fmt], "line outside the input", d);
				if ((d->kind == GH_DEP_NPM || d->kind == GH_DEP_PYPI) && (!d->version || !d->version[0]))
					broken(names[fmt], "pinned dependency without a version", d);
				if (d->kind == GH_DEP_NPM && !d->name[0])
					broken(names[fmt], "npm dependency with an empty name", d);
			}
		gh_deps_list_free(&l);
	}
	return 0;
}
