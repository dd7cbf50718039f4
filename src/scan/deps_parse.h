/* scan (private): the lockfile parsers of deps.c, exposed for the unit tests and the fuzzer.
 * Not part of the scan module's public interface. */
#ifndef GH_SCAN_DEPS_PARSE_H
#define GH_SCAN_DEPS_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Lockfiles larger than this are refused (a finding): the largest real lockfiles we know of are
 * a few MiB; 64 MiB bounds memory per file while leaving a wide margin. */
#define GH_DEPS_MAX_LOCKFILE (64u * 1024 * 1024)
/* Entries per lockfile: monorepos reach ~10k packages; beyond this the file is refused. */
#define GH_DEPS_MAX_ENTRIES  200000

enum gh_deps_format {
	GH_DEPS_NPM_LOCK,   /* package-lock.json / npm-shrinkwrap.json, lockfileVersion 2 or 3 */
	GH_DEPS_PNPM_LOCK,  /* pnpm-lock.yaml, lockfileVersion 5.x, 6.x, 9.x */
	GH_DEPS_YARN_LOCK,  /* yarn.lock, classic v1 or berry */
	GH_DEPS_PIP_REQS,   /* requirements.txt */
};

enum gh_deps_kind {
	GH_DEP_NPM,         /* name@version from the npm registry: checked */
	GH_DEP_PYPI,        /* pinned name==version from PyPI */
	GH_DEP_UNPINNED,    /* a requirement without an exact version (name holds the line) */
	GH_DEP_FOREIGN,     /* not from a registry we can check (git, tarball URL): name + source */
};

/* One dependency of a lockfile. Strings are owned by the list. */
struct gh_dep {
	enum gh_deps_kind kind;
	char *name;
	char *version;      /* exact version; NULL for UNPINNED */
	char *source;       /* where it comes from when FOREIGN (resolved URL); else NULL */
	int line;           /* 1-based line of the entry in the lockfile */
};

struct gh_dep_list {
	struct gh_dep *v;
	size_t n, cap;
};

/* Parses one lockfile's bytes (need not be NUL-terminated; never reads past len) and appends
 * its dependencies to out (which the caller initialises to zeroes and frees with
 * gh_deps_list_free, also after a failure). Local packages (workspaces, links, file:) are
 * skipped. GH_EINVAL with err (message, line) when the file is malformed or of an unsupported
 * version; GH_ETOOBIG past the limits above; GH_ENOMEM. */
int gh_deps_parse(enum gh_deps_format fmt, const uint8_t *buf, size_t len, struct gh_dep_list *out,
		  struct gh_error *err);
void gh_deps_list_free(struct gh_dep_list *l);

/* The format of a lockfile by its base name; -1 when it is not one. */
int gh_deps_format_of(const char *basename);

/* Whether name is a valid npm package name ("name" or "@scope/name", URL-safe characters, no
 * leading '.' or '_'): only those are ever put into a registry URL. */
bool gh_deps_npm_name_ok(const char *name);

/* Whether name is a valid PyPI project name (PEP 508: letters, digits, "-_.", starting and ending
 * with a letter or digit); if so writes its PEP 503 normal form (lower-case, runs of "-_." as one
 * "-") to out and returns 0. GH_EINVAL otherwise (or when out is too small). Only normal forms
 * are ever put into a PyPI URL. */
int gh_deps_pypi_name_norm(const char *name, char *out, size_t outlen);

/* Whether v is a URL-safe version string to ask PyPI about (letters, digits, ".-_+!", starting
 * with a letter or digit, at most 128 bytes). */
bool gh_deps_pypi_version_ok(const char *v);

/* Parses an ISO 8601 / RFC 3339 UTC timestamp ("2021-02-20T15:42:16.891Z", offsets allowed)
 * into Unix seconds. GH_EINVAL on anything else. */
int gh_deps_parse_time(const char *s, int64_t *out);

/* Whether an SPDX licence expression is allowed by the list (case-insensitive ids; OR: any
 * side, AND: every side; parentheses flattened). NULL or empty is never allowed. */
bool gh_deps_license_ok(const char *expr, const char *const *allow, size_t nallow);

#endif
