/* scan: dependencies. Reads the lockfiles under a root (package-lock.json v2/v3, pnpm-lock.yaml,
 * yarn.lock classic and berry, requirements.txt), asks the npm registry (npm packages) and PyPI's
 * JSON API (pinned Python requirements) when each version was published and under which licence,
 * and reports what is too new, denied, yanked, licensed outside the allow-list, unpinned, or cannot
 * be established (fail closed). Registry answers are cached on disk per registry and package (npm)
 * or per registry, project and version (PyPI). */
#include "scan/scan.h"
#include "scan/deps_parse.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <yaml.h>

#include "core/curl_dl.h"

/* Limits private to this pass (candidates for core/limits.h). */
/* One registry document: the largest npm packuments (every version of a busy package) run to
 * ~20 MiB; past 32 MiB we stop reading and fail closed. */
#define DEPS_MAX_RESPONSE   (32u * 1024 * 1024)
/* Seconds to connect to the registry, and for the whole exchange. */
#define DEPS_CONNECT_S      5L
#define DEPS_TOTAL_S        20L
/* Directory depth walked below the root looking for lockfiles. */
#define DEPS_MAX_DEPTH      32
/* Lockfiles per scan: a monorepo with more than this is refused rather than walked forever. */
#define DEPS_MAX_LOCKFILES  10000
/* Registry requests in flight at once. */
#define DEPS_PARALLEL       8

#define DEFAULT_REGISTRY    "https://registry.npmjs.org"
#define DEFAULT_PYPI        "https://pypi.org/pypi"
/* PyPI's info.license is free text (often the whole licence); longer than this it is not taken as
 * an identifier and the classifiers are used instead. */
#define PYPI_MAX_LICENSE_ID 64
#define DEFAULT_MIN_AGE     (7 * 24 * 3600)
#define DEFAULT_TTL         (24 * 3600)
#define CACHE_MAGIC         "gatehouse-npm-cache 1 "

static const struct gh_rule_info rules[] = {
	{"dep-too-new", "Dependency released too recently",
	 "A locked package version was published less than the minimum release age before the scan. "
	 "New releases are how hijacked maintainer accounts ship malware; waiting lets the registry "
	 "and the community catch them. Pin a version published before the cut-off, or wait.",
	 GH_SEV_HIGH},
	{"dep-denied", "Denied dependency",
	 "A locked package is on the policy's deny list. Remove it (and whatever depends on it).",
	 GH_SEV_CRITICAL},
	{"dep-license", "Dependency licence outside the allow-list",
	 "A locked package version declares a licence that is not on the allow-list, or none at all. "
	 "Replace the package, or have the licence approved and added to the allow-list.",
	 GH_SEV_HIGH},
	{"dep-unverified", "Dependency that cannot be verified",
	 "The release age or licence of a locked package could not be established (registry "
	 "unreachable or erroring, package or version unknown, publish time missing, source not a "
	 "registry, lockfile unreadable). What cannot be checked is not allowed: fix the cause and "
	 "scan again.",
	 GH_SEV_HIGH},
	{"dep-unpinned", "Unpinned requirement",
	 "A Python requirement without an exact version (name==version) resolves to whatever is "
	 "newest at install time, so it cannot be checked. Pin it (pip-compile, pip freeze).",
	 GH_SEV_MEDIUM},
	{"dep-yanked", "Yanked dependency",
	 "A pinned Python requirement names a release its maintainers yanked from PyPI (the release, "
	 "or every file of it, is marked yanked). Releases are yanked for being broken or unsafe; pip "
	 "only installs them when pinned exactly. Pin a release that is not yanked.",
	 GH_SEV_HIGH},
};

size_t gh_deps_rules(const struct gh_rule_info **out)
{
	*out = rules;
	return sizeof rules / sizeof rules[0];
}

static enum gh_sev rule_sev(const char *id)
{
	return gh_rule_severity(rules, sizeof rules / sizeof rules[0], id);
}

/* ======================================================================================
 * Parsers
 * ====================================================================================== */

void gh_deps_list_free(struct gh_dep_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].version);
		free(l->v[i].source);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* Appends a dependency, copying the strings (name/version/source with their lengths; NULL
 * pointers stay NULL). */
static int list_add(struct gh_dep_list *l, enum gh_deps_kind kind, const char *name, size_t nlen,
		    const char *ver, size_t vlen, const char *src, size_t slen, int line)
{
	if (l->n >= GH_DEPS_MAX_ENTRIES)
		return GH_ETOOBIG;
	/* a NUL ends a name as C reads it: keep what C would read, so checks and messages agree */
	nlen = strnlen(name, nlen);
	if (src)
		slen = strnlen(src, slen);
	if (nlen == 0) { /* "node_modules/", "//1.0.0", "\0@1": nothing to ask a registry for */
		if (kind == GH_DEP_NPM || kind == GH_DEP_PYPI)
			kind = GH_DEP_FOREIGN;
		name = "(no package name)";
		nlen = strlen(name);
		if (!src) {
			src = name;
			slen = nlen;
		}
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct gh_dep *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return GH_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	struct gh_dep d = {.kind = kind, .line = line > 0 ? line : 1};
	d.name = gh_strndup(name, nlen);
	d.version = ver ? gh_strndup(ver, vlen) : NULL;
	d.source = src ? gh_strndup(src, slen) : NULL;
	if (!d.name || (ver && !d.version) || (src && !d.source)) {
		free(d.name);
		free(d.version);
		free(d.source);
		return GH_ENOMEM;
	}
	l->v[l->n++] = d;
	return 0;
}

static bool starts(const char *p, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);
	return n >= k && memcmp(p, prefix, k) == 0;
}

static const char *memfind(const char *p, size_t n, const char *needle)
{
	return memmem(p, n, needle, strlen(needle));
}

/* Splits "name@rest" (the name may start with '@' for a scope) at the '@' after the name.
 * Returns the name's length, or 0 when there is no such '@'. */
static size_t split_at(const char *p, size_t n)
{
	if (n < 2)
		return 0;
	const char *a = memchr(p + 1, '@', n - 1);
	return a ? (size_t)(a - p) : 0;
}

/* Whether s is plausibly an exact semver version (what a registry lists). */
static bool version_ok(const char *s, size_t n)
{
	if (n == 0 || n > 256 || !isdigit((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '.' && c != '-' && c != '+')
			return false;
	}
	return true;
}

bool gh_deps_npm_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 214)
		return false;
	const char *base = name;
	if (name[0] == '@') {
		const char *slash = strchr(name, '/');
		if (!slash || slash == name + 1 || slash[1] == '\0')
			return false;
		for (const char *p = name + 1; p < slash; p++)
			if (!isalnum((unsigned char)*p) && !strchr("-._~", *p))
				return false;
		if (name[1] == '.' || name[1] == '_')
			return false;
		base = slash + 1;
	}
	if (base[0] == '.' || base[0] == '_')
		return false;
	for (const char *p = base; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-._~", *p))
			return false;
	return true;
}

int gh_deps_pypi_name_norm(const char *name, char *out, size_t outlen)
{
	size_t n = strlen(name), k = 0;
	if (n == 0 || n > 200 || !isalnum((unsigned char)name[0]) || !isalnum((unsigned char)name[n - 1]))
		return GH_EINVAL;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (ch == '-' || ch == '_' || ch == '.') {
			if (k && out[k - 1] == '-')
				continue;
			ch = '-';
		} else if (isalnum((unsigned char)ch))
			ch = (char)tolower((unsigned char)ch);
		else
			return GH_EINVAL;
		if (k + 1 >= outlen)
			return GH_EINVAL;
		out[k++] = ch;
	}
	out[k] = '\0';
	return 0;
}

bool gh_deps_pypi_version_ok(const char *v)
{
	size_t n = v ? strlen(v) : 0;
	if (n == 0 || n > 128 || !isalnum((unsigned char)v[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && !strchr(".-_+!", v[i]))
			return false;
	return true;
}

/* ---- package-lock.json ---- */

/* Records the line of each "node_modules/..." key (first occurrence) in one pass. */
static int npm_key_lines(const char *p, size_t n, struct gh_map *lines)
{
	int line = 1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			line++;
			continue;
		}
		if (p[i] != '"' || !starts(p + i + 1, n - i - 1, "node_modules/"))
			continue;
		size_t s = i + 1, e = s;
		while (e < n && p[e] != '"' && p[e] != '\\' && p[e] != '\n')
			e++;
		if (e >= n || p[e] != '"')
			continue;
		size_t k = e + 1;
		while (k < n && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r'))
			k++;
		if (k < n && p[k] == ':' && !gh_map_get(lines, p + s, e - s)) {
			int rc = gh_map_put(lines, p + s, e - s, (void *)(intptr_t)line);
			if (rc)
				return rc;
		}
		i = e;
	}
	return 0;
}

static int parse_npm(const uint8_t *buf, size_t len, struct gh_dep_list *out, struct gh_error *err)
{
	const char *p = (const char *)buf;
	json_error_t je;
	struct gh_map *lines = NULL;
	int rc = 0;
	json_t *root = json_loadb(p, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		rc = gh_error_set(err, GH_EINVAL, "not valid JSON: %s", je.text);
		if (err)
			err->line = je.line > 0 ? je.line : 1;
		return rc;
	}
	json_t *ver = json_object_get(root, "lockfileVersion");
	json_t *pkgs = json_object_get(root, "packages");
	if (!json_is_object(root) || !json_is_integer(ver)) {
		rc = gh_error_set(err, GH_EINVAL, "no lockfileVersion: not an npm lockfile");
		goto done;
	}
	if (json_integer_value(ver) < 2 || json_integer_value(ver) > 3 || !json_is_object(pkgs)) {
		rc = gh_error_set(err, GH_EINVAL,
				  "lockfileVersion %" JSON_INTEGER_FORMAT " is not supported (need 2 or 3 with "
				  "\"packages\"; regenerate it with npm 7 or later)", json_integer_value(ver));
		goto done;
	}
	lines = gh_map_new(NULL);
	if (!lines || (rc = npm_key_lines(p, len, lines)) != 0) {
		rc = rc ? rc : GH_ENOMEM;
		goto done;
	}
	const char *key;
	json_t *v;
	json_object_foreach(pkgs, key, v) {
		const char *nm = strstr(key, "node_modules/");
		if (!nm || !json_is_object(v) || json_is_true(json_object_get(v, "link")))
			continue; /* the root project, a workspace folder, or a link to one */
		for (const char *q; (q = strstr(nm + 1, "node_modules/")) != NULL;)
			nm = q;
		const char *name = nm + strlen("node_modules/");
		json_t *jn = json_object_get(v, "name"); /* aliases: "node_modules/alias" + "name": "real" */
		if (json_is_string(jn))
			name = json_string_value(jn);
		int line = (int)(intptr_t)gh_map_get(lines, key, strlen(key));
		const char *version = json_string_value(json_object_get(v, "version"));
		const char *resolved = json_string_value(json_object_get(v, "resolved"));
		if (resolved && (strncmp(resolved, "file:", 5) == 0 || strncmp(resolved, "link:", 5) == 0))
			continue; /* local code, part of the project */
		bool registry = !resolved || ((strncmp(resolved, "https://", 8) == 0 || strncmp(resolved, "http://", 7) == 0) &&
					      strstr(resolved, "/-/") != NULL);
		if (!version || !registry || !version_ok(version, strlen(version)))
			rc = list_add(out, GH_DEP_FOREIGN, name, strlen(name), version, version ? strlen(version) : 0,
				      resolved ? resolved : "(no registry version)", strlen(resolved ? resolved : "(no registry version)"),
				      line);
		else
			rc = list_add(out, GH_DEP_NPM, name, strlen(name), version, strlen(version), NULL, 0, line);
		if (rc) {
			if (rc == GH_ETOOBIG)
				gh_error_set(err, rc, "more than %d packages", GH_DEPS_MAX_ENTRIES);
			goto done;
		}
	}
done:
	gh_map_free(lines);
	json_decref(root);
	return rc;
}

/* ---- pnpm-lock.yaml ---- */

static yaml_node_t *ymap_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(doc, pr->key);
		if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(key) &&
		    memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
			return yaml_document_get_node(doc, pr->value);
	}
	return NULL;
}

/* One key of pnpm's "packages" map: "/name@1.0.0(peer@2)" (v6), "name@1.0.0" (v9),
 * "/name/1.0.0_peer" (v5). */
static int pnpm_entry(const char *k, size_t n, bool v5, int line, struct gh_dep_list *out)
{
	if (starts(k, n, "file:") || starts(k, n, "link:") || starts(k, n, "workspace:"))
		return 0;
	if (memfind(k, n, "://") || starts(k, n, "github.com/") || starts(k, n, "/github.com/") ||
	    memfind(k, n, "codeload.github.com"))
		return list_add(out, GH_DEP_FOREIGN, k, n, NULL, 0, k, n, line);
	if (n && k[0] == '/') {
		k++;
		n--;
	}
	const char *paren = memchr(k, '(', n);
	if (paren)
		n = (size_t)(paren - k);
	size_t nl;
	const char *ver;
	if (v5) {
		const char *slash = memchr(k, '/', n);
		if (slash && k[0] == '@')
			slash = memchr(slash + 1, '/', n - (size_t)(slash + 1 - k));
		if (!slash)
			return list_add(out, GH_DEP_FOREIGN, k, n, NULL, 0, k, n, line);
		nl = (size_t)(slash - k);
		ver = slash + 1;
		const char *us = memchr(ver, '_', n - nl - 1);
		size_t vl = us ? (size_t)(us - ver) : n - nl - 1;
		if (!version_ok(ver, vl))
			return list_add(out, GH_DEP_FOREIGN, k, nl, NULL, 0, k, n, line);
		return list_add(out, GH_DEP_NPM, k, nl, ver, vl, NULL, 0, line);
	}
	nl = split_at(k, n);
	if (!nl || !version_ok(k + nl + 1, n - nl - 1))
		return list_add(out, GH_DEP_FOREIGN, k, nl ? nl : n, NULL, 0, k, n, line);
	return list_add(out, GH_DEP_NPM, k, nl, k + nl + 1, n - nl - 1, NULL, 0, line);
}

static int parse_pnpm(const uint8_t *buf, size_t len, struct gh_dep_list *out, struct gh_error *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	int rc = 0;
	if (!yaml_parser_initialize(&parser))
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = gh_error_set(err, GH_EINVAL, "not valid YAML: %s", parser.problem ? parser.problem : "syntax error");
		if (err)
			err->line = (int)parser.problem_mark.line + 1;
		yaml_parser_delete(&parser);
		return rc;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	yaml_node_t *lv = ymap_get(&doc, root, "lockfileVersion");
	if (!lv || lv->type != YAML_SCALAR_NODE) {
		rc = gh_error_set(err, GH_EINVAL, "no lockfileVersion: not a pnpm lockfile");
		goto done;
	}
	char vbuf[16] = {0};
	const char *vs = (const char *)lv->data.scalar.value;
	size_t vl = lv->data.scalar.length < sizeof vbuf - 1 ? lv->data.scalar.length : sizeof vbuf - 1;
	memcpy(vbuf, vs, vl);
	long major = strtol(vbuf[0] == '\'' || vbuf[0] == '"' ? vbuf + 1 : vbuf, NULL, 10);
	if (major < 5 || major > 9) {
		rc = gh_error_set(err, GH_EINVAL, "lockfileVersion %s is not supported (5 to 9)", vbuf);
		goto done;
	}
	yaml_node_t *pkgs = ymap_get(&doc, root, "packages");
	if (!pkgs)
		goto done; /* no dependencies */
	/* libyaml also breaks lines at CR, NEL, LS and PS; reported lines count '\n' only, so a line
	 * past the last one is clamped to it */
	int maxline = 1;
	for (size_t i = 0; i < len; i++)
		maxline += buf[i] == '\n';
	if (pkgs->type != YAML_MAPPING_NODE) {
		rc = gh_error_set(err, GH_EINVAL, "\"packages\" is not a mapping");
		if (err)
			err->line = (int)pkgs->start_mark.line + 1;
		goto done;
	}
	for (yaml_node_pair_t *pr = pkgs->data.mapping.pairs.start; pr < pkgs->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(&doc, pr->value);
		if (!k || k->type != YAML_SCALAR_NODE)
			continue;
		yaml_node_t *res = ymap_get(&doc, v, "resolution");
		yaml_node_t *type = ymap_get(&doc, res, "type");
		if (type && type->type == YAML_SCALAR_NODE && type->data.scalar.length == 9 &&
		    memcmp(type->data.scalar.value, "directory", 9) == 0)
			continue; /* a local folder */
		size_t before = out->n;
		int line = k->start_mark.line + 1 < (size_t)maxline ? (int)k->start_mark.line + 1 : maxline;
		rc = pnpm_entry((const char *)k->data.scalar.value, k->data.scalar.length, major < 6, line, out);
		yaml_node_t *nm = ymap_get(&doc, v, "name"); /* git/tarball entries name themselves */
		if (!rc && out->n > before && out->v[before].kind == GH_DEP_FOREIGN && nm && nm->type == YAML_SCALAR_NODE) {
			char *name = gh_strndup((const char *)nm->data.scalar.value, nm->data.scalar.length);
			if (!name)
				rc = GH_ENOMEM;
			else {
				free(out->v[before].name);
				out->v[before].name = name;
			}
		}
		if (rc) {
			if (rc == GH_ETOOBIG)
				gh_error_set(err, rc, "more than %d packages", GH_DEPS_MAX_ENTRIES);
			goto done;
		}
	}
done:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

/* ---- yarn.lock (classic v1 and berry) ---- */

struct yarn_entry {
	bool open, skip;
	const char *spec; size_t speclen;   /* the first "name@range" of the header */
	const char *ver; size_t verlen;
	const char *resolved; size_t reslen;     /* classic */
	const char *resolution; size_t rnlen;    /* berry */
	int line;
};

/* Strips surrounding whitespace and one pair of quotes. */
static void trim_q(const char **p, size_t *n)
{
	while (*n && isspace((unsigned char)(*p)[0])) {
		(*p)++;
		(*n)--;
	}
	while (*n && isspace((unsigned char)(*p)[*n - 1]))
		(*n)--;
	if (*n >= 2 && ((*p)[0] == '"' || (*p)[0] == '\'') && (*p)[*n - 1] == (*p)[0]) {
		(*p)++;
		*n -= 2;
	}
}

static int yarn_flush(struct yarn_entry *e, struct gh_dep_list *out)
{
	if (!e->open || e->skip)
		return 0;
	e->open = false;
	const char *s = e->spec;
	size_t n = e->speclen;
	size_t nl = split_at(s, n);
	if (!nl)
		return list_add(out, GH_DEP_FOREIGN, s, n, NULL, 0, s, n, e->line);
	if (e->resolution) { /* berry: "name@npm:1.2.3", "name@workspace:.", "name@patch:...", git... */
		const char *r = e->resolution;
		size_t rl = e->rnlen, rnl = split_at(r, rl);
		if (!rnl)
			return list_add(out, GH_DEP_FOREIGN, s, nl, NULL, 0, r, rl, e->line);
		const char *proto = r + rnl + 1;
		size_t pl = rl - rnl - 1;
		if (starts(proto, pl, "workspace:") || starts(proto, pl, "link:") || starts(proto, pl, "portal:") ||
		    starts(proto, pl, "file:") || starts(proto, pl, "patch:"))
			return 0; /* local, or a patch of a package listed on its own */
		if (starts(proto, pl, "npm:") && version_ok(proto + 4, pl - 4))
			return list_add(out, GH_DEP_NPM, r, rnl, proto + 4, pl - 4, NULL, 0, e->line);
		return list_add(out, GH_DEP_FOREIGN, r, rnl, NULL, 0, r, rl, e->line);
	}
	/* classic */
	const char *range = s + nl + 1;
	size_t rl = n - nl - 1;
	if (starts(range, rl, "file:") || starts(range, rl, "link:") || starts(range, rl, "workspace:"))
		return 0;
	const char *name = s;
	if (starts(range, rl, "npm:")) { /* alias@npm:real@^1 */
		size_t anl = split_at(range + 4, rl - 4);
		if (anl) {
			name = range + 4;
			nl = anl;
		}
	}
	bool registry = !e->resolved ||
			((starts(e->resolved, e->reslen, "https://") || starts(e->resolved, e->reslen, "http://")) &&
			 memfind(e->resolved, e->reslen, "/-/") && !memfind(e->resolved, e->reslen, "codeload.github.com"));
	if (!e->ver || !registry || !version_ok(e->ver, e->verlen))
		return list_add(out, GH_DEP_FOREIGN, name, nl, e->ver, e->ver ? e->verlen : 0,
				e->resolved ? e->resolved : "(no registry version)",
				e->resolved ? e->reslen : strlen("(no registry version)"), e->line);
	return list_add(out, GH_DEP_NPM, name, nl, e->ver, e->verlen, NULL, 0, e->line);
}

static int parse_yarn(const uint8_t *buf, size_t len, struct gh_dep_list *out, struct gh_error *err)
{
	const char *p = (const char *)buf, *end = p + len;
	struct yarn_entry e = {0};
	int line = 0, rc = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *s = p;
		size_t n = (size_t)(le - p);
		p = nl ? nl + 1 : end;
		line++;
		if (n && s[n - 1] == '\r')
			n--;
		size_t ind = 0;
		while (ind < n && s[ind] == ' ')
			ind++;
		if (ind == n || s[ind] == '#')
			continue;
		if (ind == 0) { /* an entry header: specs then ':' */
			if ((rc = yarn_flush(&e, out)) != 0)
				goto fail;
			while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
				n--;
			if (!n || s[n - 1] != ':') {
				rc = gh_error_set(err, GH_EINVAL, "expected an entry header ending in ':'");
				if (err)
					err->line = line;
				goto fail;
			}
			n--;
			memset(&e, 0, sizeof e);
			e.open = true;
			e.line = line;
			if (starts(s, n, "__metadata")) {
				e.skip = true;
				continue;
			}
			const char *spec = s;
			size_t sl;
			if (spec[0] == '"') {
				const char *q = memchr(spec + 1, '"', n - 1);
				spec++;
				sl = q ? (size_t)(q - spec) : n - 1;
			} else {
				const char *c = memchr(spec, ',', n);
				sl = c ? (size_t)(c - spec) : n;
			}
			const char *c = memchr(spec, ',', sl); /* berry: "a@npm:1, a@npm:^1" in one string */
			if (c)
				sl = (size_t)(c - spec);
			trim_q(&spec, &sl);
			e.spec = spec;
			e.speclen = sl;
			continue;
		}
		if (!e.open || ind != 2)
			continue; /* nested fields (dependencies, ...) */
		const char *k = s + ind;
		size_t kn = n - ind, klen = 0;
		while (klen < kn && k[klen] != ' ' && k[klen] != ':')
			klen++;
		const char *v = k + klen;
		size_t vn = kn - klen;
		if (vn && v[0] == ':') {
			v++;
			vn--;
		}
		trim_q(&v, &vn);
		if (klen == 7 && memcmp(k, "version", 7) == 0) {
			e.ver = v;
			e.verlen = vn;
		} else if (klen == 8 && memcmp(k, "resolved", 8) == 0) {
			e.resolved = v;
			e.reslen = vn;
		} else if (klen == 10 && memcmp(k, "resolution", 10) == 0) {
			e.resolution = v;
			e.rnlen = vn;
		}
	}
	rc = yarn_flush(&e, out);
fail:
	if (rc == GH_ETOOBIG)
		gh_error_set(err, rc, "more than %d packages", GH_DEPS_MAX_ENTRIES);
	return rc;
}

/* ---- requirements.txt ---- */

static bool pep503_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

/* One logical requirement line (continuations joined, comments removed, trimmed). */
static int pip_requirement(const char *s, size_t n, int line, struct gh_dep_list *out)
{
	const char *semi = memchr(s, ';', n); /* environment markers */
	size_t rn = semi ? (size_t)(semi - s) : n;
	const char *opt = memfind(s, rn, " --"); /* per-requirement options: --hash=... */
	if (opt)
		rn = (size_t)(opt - s);
	char req[512];
	size_t k = 0;
	for (size_t i = 0; i < rn && k < sizeof req - 1; i++)
		if (!isspace((unsigned char)s[i]))
			req[k++] = s[i];
	if (k == 0)
		return 0;
	size_t nl = 0;
	while (nl < k && pep503_char(req[nl]))
		nl++;
	size_t j = nl;
	if (j < k && req[j] == '[') { /* extras */
		const char *rb = memchr(req + j, ']', k - j);
		j = rb ? (size_t)(rb - req) + 1 : k;
	}
	size_t op = 0;
	if (k - j > 3 && memcmp(req + j, "===", 3) == 0)
		op = 3;
	else if (k - j > 2 && memcmp(req + j, "==", 2) == 0)
		op = 2;
	if (nl && !memfind(s, n, "://") && op) {
		const char *ver = req + j + op;
		size_t vl = k - j - op;
		bool exact = vl > 0;
		for (size_t i = 0; i < vl; i++)
			if (!pep503_char(ver[i]) && ver[i] != '+' && ver[i] != '!')
				exact = false; /* "==1.*", ",<2", ... */
		if (exact)
			return list_add(out, GH_DEP_PYPI, req, nl, ver, vl, NULL, 0, line);
	}
	/* name is the requirement as written (trimmed) */
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return list_add(out, GH_DEP_UNPINNED, s, n < 200 ? n : 200, NULL, 0, NULL, 0, line);
}

static int parse_pip(const uint8_t *buf, size_t len, struct gh_dep_list *out, struct gh_error *err)
{
	const char *p = (const char *)buf, *end = p + len;
	char logical[4096];
	size_t ln = 0;
	int line = 0, start = 0, rc = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *s = p;
		size_t n = (size_t)(le - p);
		p = nl ? nl + 1 : end;
		line++;
		if (ln == 0)
			start = line;
		if (n && s[n - 1] == '\r')
			n--;
		/* comments: '#' at the start or after whitespace */
		for (size_t i = 0; i < n; i++)
			if (s[i] == '#' && (i == 0 || isspace((unsigned char)s[i - 1]))) {
				n = i;
				break;
			}
		bool cont = n && s[n - 1] == '\\';
		if (cont)
			n--;
		size_t avail = ln < sizeof logical - 2 ? sizeof logical - 2 - ln : 0;
		size_t take = n < avail ? n : avail;
		memcpy(logical + ln, s, take);
		ln += take;
		if (avail)
			logical[ln++] = ' ';
		if (cont && p < end)
			continue;
		const char *r = logical;
		size_t rn = ln;
		while (rn && isspace((unsigned char)*r)) {
			r++;
			rn--;
		}
		ln = 0;
		if (rn == 0 || r[0] == '-')
			continue; /* blank, or an option line: -r, -c, -e, --index-url, --hash */
		if ((rc = pip_requirement(r, rn, start, out)) != 0) {
			if (rc == GH_ETOOBIG)
				gh_error_set(err, rc, "more than %d requirements", GH_DEPS_MAX_ENTRIES);
			return rc;
		}
	}
	return 0;
}

int gh_deps_parse(enum gh_deps_format fmt, const uint8_t *buf, size_t len, struct gh_dep_list *out,
		  struct gh_error *err)
{
	if (len > GH_DEPS_MAX_LOCKFILE)
		return gh_error_set(err, GH_ETOOBIG, "larger than %u bytes", GH_DEPS_MAX_LOCKFILE);
	switch (fmt) {
	case GH_DEPS_NPM_LOCK: return parse_npm(buf, len, out, err);
	case GH_DEPS_PNPM_LOCK: return parse_pnpm(buf, len, out, err);
	case GH_DEPS_YARN_LOCK: return parse_yarn(buf, len, out, err);
	case GH_DEPS_PIP_REQS: return parse_pip(buf, len, out, err);
	}
	return gh_error_set(err, GH_EINVAL, "unknown lockfile format");
}

int gh_deps_format_of(const char *b)
{
	if (strcmp(b, "package-lock.json") == 0 || strcmp(b, "npm-shrinkwrap.json") == 0)
		return GH_DEPS_NPM_LOCK;
	if (strcmp(b, "pnpm-lock.yaml") == 0)
		return GH_DEPS_PNPM_LOCK;
	if (strcmp(b, "yarn.lock") == 0)
		return GH_DEPS_YARN_LOCK;
	if (strcmp(b, "requirements.txt") == 0)
		return GH_DEPS_PIP_REQS;
	return -1;
}

/* ---- small helpers for the checks ---- */

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int gh_deps_parse_time(const char *s, int64_t *out)
{
	int Y, M, D, h, m, sec;
	size_t n = strlen(s);
	if (n < 19 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
	    digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || digits(s + 11, 2, &h) ||
	    s[13] != ':' || digits(s + 14, 2, &m) || s[16] != ':' || digits(s + 17, 2, &sec))
		return GH_EINVAL;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return GH_EINVAL;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return GH_EINVAL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	int64_t off = 0;
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-') {
		int oh, om;
		if (strlen(p) < 6 || digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return GH_EINVAL;
		off = (oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
		p += 6;
	} else
		return GH_EINVAL;
	if (*p)
		return GH_EINVAL;
	struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = sec};
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return GH_EINVAL;
	*out = (int64_t)t - off;
	return 0;
}

static bool license_id_ok(const char *p, size_t n, const char *const *allow, size_t nallow)
{
	while (n && (isspace((unsigned char)*p) || *p == '(')) {
		p++;
		n--;
	}
	while (n && (isspace((unsigned char)p[n - 1]) || p[n - 1] == ')'))
		n--;
	if (!n)
		return false;
	for (size_t i = 0; i < nallow; i++)
		if (allow[i] && strlen(allow[i]) == n && strncasecmp(allow[i], p, n) == 0)
			return true;
	return false;
}

/* AND-terms of one OR-alternative: all must be allowed. */
static bool license_and_ok(const char *p, size_t n, const char *const *allow, size_t nallow)
{
	for (;;) {
		const char *a = memfind(p, n, " AND ");
		size_t t = a ? (size_t)(a - p) : n;
		if (!license_id_ok(p, t, allow, nallow))
			return false;
		if (!a)
			return true;
		p = a + 5;
		n -= t + 5;
	}
}

bool gh_deps_license_ok(const char *expr, const char *const *allow, size_t nallow)
{
	if (!expr || !*expr)
		return false;
	if (license_id_ok(expr, strlen(expr), allow, nallow))
		return true;
	const char *p = expr;
	size_t n = strlen(expr);
	for (;;) {
		const char *o = memfind(p, n, " OR ");
		size_t t = o ? (size_t)(o - p) : n;
		if (license_and_ok(p, t, allow, nallow))
			return true;
		if (!o)
			return false;
		p = o + 4;
		n -= t + 4;
	}
}

/* ======================================================================================
 * Registry client with an on-disk cache
 * ====================================================================================== */

/* One registry request in flight: its own handle and body, the answer or why there is none. */
struct slot {
	CURL *h;
	struct gh_buf body;
	bool busy;
	json_t *doc;
	char why[512];
	char path[4200];   /* the cache file */
	const char *name;
	bool pypi;         /* a PyPI release document (else an npm packument) */
};

/* The registry client: DEPS_PARALLEL handles on one multi handle (which shares connections). */
struct fetch {
	CURLM *m;
	struct curl_slist *hdrs;
	struct slot slot[DEPS_PARALLEL];
	char registry[1024];
	char pypi[1024];   /* PyPI JSON API base, no trailing '/' */
	char cache_dir[4096];
	bool cache_ok;
	int64_t ttl, now;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct gh_buf *b = arg;
	size_t n = size * nmemb;
	return gh_buf_append(b, ptr, n) == 0 ? n : 0; /* 0: curl stops with CURLE_WRITE_ERROR */
}

/* Creates dir and its parents (0700), then accepts it for the cache only when it is a real
 * directory owned by us and closed to others (a shared cache could be poisoned). */
static bool cache_dir_ready(const char *dir)
{
	char tmp[4096];
	int n = snprintf(tmp, sizeof tmp, "%s", dir);
	if (n <= 0 || (size_t)n >= sizeof tmp)
		return false;
	for (char *q = tmp + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return false;
		*q = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return false;
	struct stat st;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return false;
	if ((st.st_mode & 077) && chmod(dir, 0700) < 0)
		return false;
	return true;
}

static int fetch_init(struct fetch *f, const struct gh_deps_policy *pol, int64_t now, struct gh_error *err)
{
	memset(f, 0, sizeof *f);
	f->now = now;
	f->ttl = pol->cache_ttl_s ? pol->cache_ttl_s : DEFAULT_TTL;
	const char *reg = pol->registry && *pol->registry ? pol->registry : DEFAULT_REGISTRY;
	int n = snprintf(f->registry, sizeof f->registry, "%s", reg);
	if (n <= 0 || (size_t)n >= sizeof f->registry)
		return gh_error_set(err, GH_EINVAL, "registry URL too long");
	while (n > 0 && f->registry[n - 1] == '/')
		f->registry[--n] = '\0';
	if (strncmp(f->registry, "https://", 8) != 0 && strncmp(f->registry, "http://", 7) != 0)
		return gh_error_set(err, GH_EINVAL, "registry %.200s: not an http(s) URL", f->registry);
	const char *py = pol->pypi_registry && *pol->pypi_registry ? pol->pypi_registry : DEFAULT_PYPI;
	n = snprintf(f->pypi, sizeof f->pypi, "%s", py);
	if (n <= 0 || (size_t)n >= sizeof f->pypi)
		return gh_error_set(err, GH_EINVAL, "PyPI registry URL too long");
	while (n > 0 && f->pypi[n - 1] == '/')
		f->pypi[--n] = '\0';
	if (strncmp(f->pypi, "https://", 8) != 0 && strncmp(f->pypi, "http://", 7) != 0)
		return gh_error_set(err, GH_EINVAL, "PyPI registry %.200s: not an http(s) URL", f->pypi);
	if (pol->cache_dir && *pol->cache_dir)
		n = snprintf(f->cache_dir, sizeof f->cache_dir, "%s", pol->cache_dir);
	else if (getenv("XDG_CACHE_HOME") && getenv("XDG_CACHE_HOME")[0] == '/')
		n = snprintf(f->cache_dir, sizeof f->cache_dir, "%s/gatehouse/npm", getenv("XDG_CACHE_HOME"));
	else if (getenv("HOME") && getenv("HOME")[0] == '/')
		n = snprintf(f->cache_dir, sizeof f->cache_dir, "%s/.cache/gatehouse/npm", getenv("HOME"));
	else
		n = 0;
	f->cache_ok = f->ttl > 0 && n > 0 && (size_t)n < sizeof f->cache_dir && cache_dir_ready(f->cache_dir);

	if (gh_curl_load(err))
		return err->code;
	f->m = curl_multi_init();
	f->hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (!f->m || !f->hdrs)
		return gh_error_set(err, GH_ENOMEM, "cannot create an HTTP client");
	for (size_t i = 0; i < DEPS_PARALLEL; i++) {
		struct slot *s = &f->slot[i];
		gh_buf_init(&s->body, DEPS_MAX_RESPONSE);
		s->h = curl_easy_init();
		if (!s->h)
			return gh_error_set(err, GH_ENOMEM, "cannot create an HTTP client");
		curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, f->hdrs);
		curl_easy_setopt(s->h, CURLOPT_USERAGENT, "gatehouse-scan");
		curl_easy_setopt(s->h, CURLOPT_CONNECTTIMEOUT, DEPS_CONNECT_S);
		curl_easy_setopt(s->h, CURLOPT_TIMEOUT, DEPS_TOTAL_S);
		curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(s->h, CURLOPT_ACCEPT_ENCODING, "");
		curl_easy_setopt(s->h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)DEPS_MAX_RESPONSE);
		curl_easy_setopt(s->h, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(s->h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
		curl_easy_setopt(s->h, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(s->h, CURLOPT_MAXREDIRS, 3L);
		curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(s->h, CURLOPT_WRITEDATA, &s->body);
		curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
	}
	return 0;
}

static void fetch_free(struct fetch *f)
{
	for (size_t i = 0; i < DEPS_PARALLEL; i++) {
		struct slot *s = &f->slot[i];
		if (s->h) {
			if (s->busy && f->m)
				curl_multi_remove_handle(f->m, s->h);
			curl_easy_cleanup(s->h);
		}
		json_decref(s->doc);
		gh_buf_free(&s->body);
	}
	if (f->m)
		curl_multi_cleanup(f->m);
	curl_slist_free_all(f->hdrs);
}

/* The cache file of a document: a hash of the registry and the name (npm), or of "pypi", the
 * PyPI base, the normalised project name and the version (PyPI: one document per release). */
static void cache_path(const struct fetch *f, const char *name, const char *pypi_version, char *out, size_t outlen)
{
	uint8_t h[32];
	char hex[65];
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, sizeof h);
	if (pypi_version) {
		crypto_generichash_update(&st, (const uint8_t *)"pypi\n", 5);
		crypto_generichash_update(&st, (const uint8_t *)f->pypi, strlen(f->pypi));
	} else
		crypto_generichash_update(&st, (const uint8_t *)f->registry, strlen(f->registry));
	crypto_generichash_update(&st, (const uint8_t *)"\n", 1);
	crypto_generichash_update(&st, (const uint8_t *)name, strlen(name));
	if (pypi_version) {
		crypto_generichash_update(&st, (const uint8_t *)"\n", 1);
		crypto_generichash_update(&st, (const uint8_t *)pypi_version, strlen(pypi_version));
	}
	crypto_generichash_final(&st, h, sizeof h);
	gh_hex_encode(h, sizeof h, hex);
	if (snprintf(out, outlen, "%s/%s.json", f->cache_dir, hex) >= (int)outlen)
		out[0] = '\0';
}

/* A fresh cached document for name, or NULL. */
static json_t *cache_get(const struct fetch *f, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	if (!f->cache_ok || !path[0] || gh_read_file(path, DEPS_MAX_RESPONSE + 64, &data, &len, NULL) != 0)
		return NULL;
	json_t *doc = NULL;
	size_t ml = strlen(CACHE_MAGIC);
	char *nl = memchr(data, '\n', len);
	if (len > ml && memcmp(data, CACHE_MAGIC, ml) == 0 && nl) {
		*nl = '\0';
		int64_t fetched;
		if (gh_parse_int(data + ml, 0, INT64_MAX, &fetched) == 0 && f->now >= fetched && f->now - fetched < f->ttl) {
			json_error_t je;
			doc = json_loadb(nl + 1, len - (size_t)(nl + 1 - data), 0, &je);
			if (doc && !json_is_object(doc)) {
				json_decref(doc);
				doc = NULL;
			}
		}
	}
	free(data);
	return doc;
}

static void cache_put(const struct fetch *f, const char *path, const char *body, size_t len)
{
	struct gh_buf b;
	if (!f->cache_ok || !path[0])
		return;
	gh_buf_init(&b, DEPS_MAX_RESPONSE + 64);
	if (gh_buf_printf(&b, CACHE_MAGIC "%" PRId64 "\n", f->now) == 0 && gh_buf_append(&b, body, len) == 0)
		(void)gh_write_file_atomic(path, b.data, b.len, 0600, NULL); /* a cache that fails is only slower */
	gh_buf_free(&b);
}

/* Starts getting the document for dependency d into slot s: the npm packument of d's name, or
 * the PyPI release document of d's name and version. From the cache (done at once), or a request
 * added to the multi handle (s->busy). A name or version that is not URL-safe fails at once
 * (s->why). */
static void fetch_start(struct fetch *f, struct slot *s, const struct gh_dep *d)
{
	char url[2048], norm[256];
	const char *name = d->name;
	int n;
	s->name = name;
	s->pypi = d->kind == GH_DEP_PYPI;
	s->doc = NULL;
	s->why[0] = '\0';
	s->busy = false;
	if (s->pypi) {
		if (gh_deps_pypi_name_norm(name, norm, sizeof norm) != 0) {
			snprintf(s->why, sizeof s->why, "not a valid PyPI project name");
			return;
		}
		if (!gh_deps_pypi_version_ok(d->version)) {
			snprintf(s->why, sizeof s->why, "not a valid PyPI version");
			return;
		}
		cache_path(f, norm, d->version, s->path, sizeof s->path);
		if ((s->doc = cache_get(f, s->path)) != NULL)
			return;
		n = snprintf(url, sizeof url, "%s/%s/%s/json", f->pypi, norm, d->version);
	} else {
		if (!gh_deps_npm_name_ok(name)) {
			snprintf(s->why, sizeof s->why, "not a valid npm package name");
			return;
		}
		cache_path(f, name, NULL, s->path, sizeof s->path);
		if ((s->doc = cache_get(f, s->path)) != NULL)
			return;
		const char *slash = name[0] == '@' ? strchr(name, '/') : NULL;
		n = slash ? snprintf(url, sizeof url, "%s/%.*s%%2f%s", f->registry, (int)(slash - name), name, slash + 1)
			  : snprintf(url, sizeof url, "%s/%s", f->registry, name);
	}
	if (n <= 0 || (size_t)n >= sizeof url) {
		snprintf(s->why, sizeof s->why, "registry URL too long");
		return;
	}
	gh_buf_reset(&s->body);
	curl_easy_setopt(s->h, CURLOPT_URL, url);
	if (curl_multi_add_handle(f->m, s->h) != CURLM_OK) {
		snprintf(s->why, sizeof s->why, "cannot start a registry request");
		return;
	}
	s->busy = true;
}

/* Turns a finished transfer into s->doc, or s->why; caches good answers. */
static void fetch_done(struct fetch *f, struct slot *s, CURLcode cc)
{
	long status = 0;
	const char *base = s->pypi ? f->pypi : f->registry;
	curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(f->m, s->h);
	s->busy = false;
	if (cc == CURLE_WRITE_ERROR || cc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(s->why, sizeof s->why, "the registry's answer is larger than %u bytes", DEPS_MAX_RESPONSE);
		return;
	}
	if (cc != CURLE_OK) {
		snprintf(s->why, sizeof s->why, "registry %.200s unreachable: %s", base, curl_easy_strerror(cc));
		return;
	}
	if (status == 404) {
		if (s->pypi)
			snprintf(s->why, sizeof s->why, "not on PyPI: %.200s does not know this release (HTTP 404)", base);
		else
			snprintf(s->why, sizeof s->why, "not found in the registry %.200s (HTTP 404)", base);
		return;
	}
	if (status != 200) {
		snprintf(s->why, sizeof s->why, "the registry %.200s answered HTTP %ld", base, status);
		return;
	}
	json_error_t je;
	json_t *doc = json_loadb(s->body.data, s->body.len, 0, &je);
	if (!doc || !json_is_object(doc)) {
		snprintf(s->why, sizeof s->why, "the registry's answer is not a JSON object%s%s", doc ? "" : ": ",
			 doc ? "" : je.text);
		json_decref(doc);
		return;
	}
	s->doc = doc;
	cache_put(f, s->path, s->body.data, s->body.len);
}

/* Runs the requests started in the slots until all have finished. */
static void fetch_wait(struct fetch *f)
{
	int running = 0;
	curl_multi_perform(f->m, &running);
	for (;;) {
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(f->m, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct slot *s = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			if (s)
				fetch_done(f, s, msg->data.result);
		}
		if (!running)
			break;
		if (curl_multi_poll(f->m, NULL, 0, 1000, NULL) != CURLM_OK)
			break;
		curl_multi_perform(f->m, &running);
	}
	for (size_t i = 0; i < DEPS_PARALLEL; i++) /* a transfer the multi handle lost: fail closed */
		if (f->slot[i].busy) {
			curl_multi_remove_handle(f->m, f->slot[i].h);
			f->slot[i].busy = false;
			snprintf(f->slot[i].why, sizeof f->slot[i].why, "the registry request did not finish");
		}
}

/* ======================================================================================
 * The scan
 * ====================================================================================== */

struct item {
	const struct gh_dep *d;
	const char *path;   /* the lockfile, relative to root */
};

struct lockfile {
	char *path;         /* relative to root */
	struct gh_dep_list deps;
};

struct ctx {
	const struct gh_deps_policy *pol;
	int64_t now, min_age;
	struct gh_findings *out;
	struct lockfile *lf;
	size_t nlf, caplf;
};

static int add(struct ctx *c, const char *rule, const char *path, int line, const char *snippet, const char *fix,
	       const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static int add(struct ctx *c, const char *rule, const char *path, int line, const char *snippet, const char *fix,
	       const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct gh_finding f = {
		.rule = rule, .severity = rule_sev(rule), .path = (char *)(uintptr_t)path, .line = line > 0 ? line : 1,
		.col = 1, .message = msg, .snippet = (char *)(uintptr_t)snippet, .fix = (char *)(uintptr_t)fix,
	};
	int rc = gh_findings_add(c->out, &f);
	return rc == GH_ETOOBIG ? 0 : rc; /* past the maximum the list says truncated */
}

/* "2d 3h", "5h 2m", "42s": a duration for people. */
static void fmt_dur(int64_t s, char *out, size_t outlen)
{
	if (s < 0)
		s = 0;
	if (s >= 86400)
		snprintf(out, outlen, "%" PRId64 "d %" PRId64 "h", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(out, outlen, "%" PRId64 "h %" PRId64 "m", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(out, outlen, "%" PRId64 "m", s / 60);
	else
		snprintf(out, outlen, "%" PRId64 "s", s);
}

/* PyPI names compare as PEP 503 says: case-insensitive, runs of "-", "_", "." equal. */
static bool pep503_eq(const char *a, const char *b)
{
	for (;;) {
		bool sa = *a == '-' || *a == '_' || *a == '.', sb = *b == '-' || *b == '_' || *b == '.';
		if (sa != sb)
			return false;
		if (sa) {
			while (*a == '-' || *a == '_' || *a == '.')
				a++;
			while (*b == '-' || *b == '_' || *b == '.')
				b++;
			continue;
		}
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return false;
		if (!*a)
			return true;
		a++;
		b++;
	}
}

/* Whether the policy denies this package: an exact name, "@scope/" + "*" for a whole npm
 * scope, and PEP 503 equivalence for PyPI names. */
static bool denied(const struct gh_deps_policy *pol, const struct gh_dep *d)
{
	for (size_t i = 0; i < pol->ndeny; i++) {
		const char *x = pol->deny[i];
		size_t n = x ? strlen(x) : 0;
		if (!n)
			continue;
		if (strcmp(x, d->name) == 0 || (d->kind == GH_DEP_PYPI && pep503_eq(x, d->name)))
			return true;
		if (n > 2 && x[0] == '@' && strcmp(x + n - 2, "/*") == 0 && strncmp(x, d->name, n - 1) == 0)
			return true;
	}
	return false;
}

static const char *json_license(json_t *v)
{
	json_t *l = json_object_get(v, "license");
	if (json_is_string(l))
		return json_string_value(l);
	if (json_is_object(l) && json_is_string(json_object_get(l, "type")))
		return json_string_value(json_object_get(l, "type"));
	json_t *ls = json_object_get(v, "licenses"); /* legacy: [{type, url}] */
	if (json_is_array(ls) && json_array_size(ls) == 1) {
		json_t *t = json_array_get(ls, 0);
		if (json_is_string(t))
			return json_string_value(t);
		return json_string_value(json_object_get(t, "type"));
	}
	return NULL;
}

/* The classifier names of the common OSI licences and their SPDX ids. */
static const struct {
	const char *classifier; /* after "License :: OSI Approved :: " */
	const char *spdx;
} pypi_classifiers[] = {
	{"MIT License", "MIT"},
	{"Apache Software License", "Apache-2.0"},
	{"BSD 3-Clause License", "BSD-3-Clause"},
	{"BSD 2-Clause License", "BSD-2-Clause"},
	{"ISC License (ISCL)", "ISC"},
	{"GNU General Public License v3 (GPLv3)", "GPL-3.0"},
	{"GNU General Public License v3 or later (GPLv3+)", "GPL-3.0-or-later"},
	{"GNU General Public License v2 (GPLv2)", "GPL-2.0"},
	{"GNU General Public License v2 or later (GPLv2+)", "GPL-2.0-or-later"},
	{"GNU Lesser General Public License v3 (LGPLv3)", "LGPL-3.0"},
	{"GNU Lesser General Public License v3 or later (LGPLv3+)", "LGPL-3.0-or-later"},
	{"Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"},
	{"Python Software Foundation License", "PSF-2.0"},
};

/* Whether s is a short, one-line licence identifier or expression (not the licence's text). */
static bool pypi_license_short(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n > 0 && n <= PYPI_MAX_LICENSE_ID && !strpbrk(s, "\r\n") && strcasecmp(s, "UNKNOWN") != 0;
}

/* The licence of a PyPI release from its "info": license_expression (PEP 639), else a short
 * "license", else the OSI classifiers (their SPDX ids joined with AND: a package listing two is
 * held to both; a classifier we cannot map is reported by its name, so it is never allowed).
 * Writes into buf; NULL when none is declared. */
static const char *pypi_license(json_t *info, char *buf, size_t buflen)
{
	const char *s = json_string_value(json_object_get(info, "license_expression"));
	if (s && *s && !strpbrk(s, "\r\n"))
		return s;
	s = json_string_value(json_object_get(info, "license"));
	if (pypi_license_short(s))
		return s;
	static const char osi[] = "License :: OSI Approved :: ";
	json_t *cls = json_object_get(info, "classifiers"), *c;
	size_t i, k = 0;
	buf[0] = '\0';
	json_array_foreach(cls, i, c) {
		const char *t = json_string_value(c);
		if (!t || strncmp(t, osi, sizeof osi - 1) != 0)
			continue;
		t += sizeof osi - 1;
		const char *id = t;
		for (size_t j = 0; j < sizeof pypi_classifiers / sizeof pypi_classifiers[0]; j++)
			if (strcmp(t, pypi_classifiers[j].classifier) == 0)
				id = pypi_classifiers[j].spdx;
		int w = snprintf(buf + k, buflen - k, "%s%s", k ? " AND " : "", id);
		if (w < 0 || (size_t)w >= buflen - k) {
			snprintf(buf, buflen, "(too many licence classifiers)"); /* never allowed */
			return buf;
		}
		k += (size_t)w;
	}
	return k ? buf : NULL;
}

static const char unverified_fix[] =
	"make the package resolvable from the registry (or reachable) and scan again; a dependency "
	"that cannot be checked is not allowed";

/* Checks one npm package version against its registry document (NULL: why says why). */
static int check_npm(struct ctx *c, const struct item *it, json_t *doc, const char *why)
{
	const struct gh_dep *d = it->d;
	char snip[512], fix[1024];
	snprintf(snip, sizeof snip, "%s@%s", d->name, d->version);
	if (!doc)
		return add(c, "dep-unverified", it->path, d->line, snip, unverified_fix, "%s@%s cannot be verified: %s",
			   d->name, d->version, why);
	json_t *v = json_object_get(json_object_get(doc, "versions"), d->version);
	if (!json_is_object(v))
		return add(c, "dep-unverified", it->path, d->line, snip, unverified_fix,
			   "%s@%s cannot be verified: the registry does not list version %s", d->name, d->version,
			   d->version);
	int rc = 0;
	const char *ts = json_string_value(json_object_get(json_object_get(doc, "time"), d->version));
	int64_t pub;
	if (!ts || gh_deps_parse_time(ts, &pub) != 0)
		rc = add(c, "dep-unverified", it->path, d->line, snip, unverified_fix,
			 "%s@%s cannot be verified: the registry gives no%s publish time, so its release age "
			 "cannot be established", d->name, d->version, ts ? " valid" : "");
	else if (c->now - pub < c->min_age) {
		char age[64], min[64], pubs[40], cut[40], until[40];
		fmt_dur(c->now - pub, age, sizeof age);
		fmt_dur(c->min_age, min, sizeof min);
		gh_time_rfc3339(pub * 1000, pubs, sizeof pubs);
		gh_time_rfc3339((c->now - c->min_age) * 1000, cut, sizeof cut);
		gh_time_rfc3339((pub + c->min_age) * 1000, until, sizeof until);
		snprintf(fix, sizeof fix, "pin a version of %s published before %s, or wait until %s before taking %s",
			 d->name, cut, until, d->version);
		rc = add(c, "dep-too-new", it->path, d->line, snip, fix,
			 "%s@%s was published %s ago (%s), less than the minimum release age of %s", d->name,
			 d->version, age, pubs, min);
	}
	if (rc || c->pol->nlicenses == 0)
		return rc;
	const char *lic = json_license(v);
	if (gh_deps_license_ok(lic, c->pol->licenses, c->pol->nlicenses))
		return 0;
	snprintf(fix, sizeof fix, "replace %s with a package under an allowed licence, or have %s approved and added "
		 "to the allow-list", d->name, lic ? lic : "its licence");
	if (!lic)
		return add(c, "dep-license", it->path, d->line, snip, fix,
			   "%s@%s declares no licence; only allowed licences may ship", d->name, d->version);
	return add(c, "dep-license", it->path, d->line, snip, fix,
		   "%s@%s is licensed %s, which is not in the allow-list", d->name, d->version, lic);
}

/* Checks one pinned PyPI release against its JSON API document (NULL: why says why): yanked,
 * release age (the earliest upload of its files), licence. */
static int check_pypi(struct ctx *c, const struct item *it, json_t *doc, const char *why)
{
	const struct gh_dep *d = it->d;
	char snip[512], fix[1024], licbuf[512];
	snprintf(snip, sizeof snip, "%s==%s", d->name, d->version);
	if (!doc)
		return add(c, "dep-unverified", it->path, d->line, snip, unverified_fix,
			   "%s==%s (PyPI) cannot be verified: %s", d->name, d->version, why);
	json_t *info = json_object_get(doc, "info");
	json_t *urls = json_object_get(doc, "urls");
	if (!json_is_object(info) || !json_is_array(urls))
		return add(c, "dep-unverified", it->path, d->line, snip, unverified_fix,
			   "%s==%s (PyPI) cannot be verified: the answer is not a PyPI release document "
			   "(no \"info\" or \"urls\")", d->name, d->version);
	int rc = 0;
	size_t i, nfiles = json_array_size(urls), nyanked = 0;
	bool have = false;
	int64_t pub = 0;
	json_t *u;
	json_array_foreach(urls, i, u) {
		const char *ts = json_string_value(json_object_get(u, "upload_time_iso_8601"));
		int64_t t;
		if (json_is_true(json_object_get(u, "yanked")))
			nyanked++;
		/* a file without a valid time is left out: the earliest of the others is no earlier
		 * than the release, so the age found is never more than the true one */
		if (ts && gh_deps_parse_time(ts, &t) == 0 && (!have || t < pub)) {
			pub = t;
			have = true;
		}
	}
	if (json_is_true(json_object_get(info, "yanked")) || (nfiles > 0 && nyanked == nfiles)) {
		const char *reason = json_string_value(json_object_get(info, "yanked_reason"));
		snprintf(fix, sizeof fix, "pin a release of %s that is not yanked", d->name);
		rc = add(c, "dep-yanked", it->path, d->line, snip, fix, "%s==%s (PyPI) was yanked%s%.300s%s", d->name,
			 d->version, reason && *reason ? " (" : "", reason && *reason ? reason : "",
			 reason && *reason ? ")" : "");
	}
	if (!rc && !have)
		rc = add(c, "dep-unverified", it->path, d->line, snip, unverified_fix,
			 "%s==%s (PyPI) cannot be verified: PyPI lists %s, so its publish time cannot be "
			 "established", d->name, d->version, nfiles ? "no valid upload time for its files" : "no files for it");
	else if (!rc && c->now - pub < c->min_age) {
		char age[64], min[64], pubs[40], cut[40], until[40];
		fmt_dur(c->now - pub, age, sizeof age);
		fmt_dur(c->min_age, min, sizeof min);
		gh_time_rfc3339(pub * 1000, pubs, sizeof pubs);
		gh_time_rfc3339((c->now - c->min_age) * 1000, cut, sizeof cut);
		gh_time_rfc3339((pub + c->min_age) * 1000, until, sizeof until);
		snprintf(fix, sizeof fix, "pin a release of %s published before %s, or wait until %s before taking %s",
			 d->name, cut, until, d->version);
		rc = add(c, "dep-too-new", it->path, d->line, snip, fix,
			 "%s==%s (PyPI) was published %s ago (%s), less than the minimum release age of %s", d->name,
			 d->version, age, pubs, min);
	}
	if (rc || c->pol->nlicenses == 0)
		return rc;
	const char *lic = pypi_license(info, licbuf, sizeof licbuf);
	if (gh_deps_license_ok(lic, c->pol->licenses, c->pol->nlicenses))
		return 0;
	snprintf(fix, sizeof fix, "replace %s with a package under an allowed licence, or have %s approved and added "
		 "to the allow-list", d->name, lic ? lic : "its licence");
	if (!lic)
		return add(c, "dep-license", it->path, d->line, snip, fix,
			   "%s==%s (PyPI) declares no licence; only allowed licences may ship", d->name, d->version);
	return add(c, "dep-license", it->path, d->line, snip, fix,
		   "%s==%s (PyPI) is licensed %s, which is not in the allow-list", d->name, d->version, lic);
}

/* Findings that need no registry: denied names, unpinned and foreign sources. */
static int check_local(struct ctx *c, const struct item *it, bool *need_registry)
{
	const struct gh_dep *d = it->d;
	char snip[512], fix[512];
	*need_registry = false;
	if (d->kind == GH_DEP_UNPINNED)
		return add(c, "dep-unpinned", it->path, d->line, d->name,
			   "pin it to an exact version (name==version), e.g. with pip-compile or pip freeze",
			   "requirement \"%s\" has no exact version (==), so its release cannot be checked", d->name);
	snprintf(snip, sizeof snip, "%s%s%s", d->name, d->version ? (d->kind == GH_DEP_PYPI ? "==" : "@") : "",
		 d->version ? d->version : "");
	if (denied(c->pol, d)) {
		snprintf(fix, sizeof fix, "remove %s (and whatever depends on it) from the dependencies", d->name);
		return add(c, "dep-denied", it->path, d->line, snip, fix, "%s is on the policy's deny list", snip);
	}
	if (d->kind == GH_DEP_FOREIGN)
		return add(c, "dep-unverified", it->path, d->line, snip,
			   "depend on a registry release instead, or vendor the code into the repository",
			   "%s cannot be verified: it does not come from the registry (%s)", d->name,
			   d->source ? d->source : "unknown source");
	*need_registry = true;
	return 0;
}

/* Items sort by kind, name, version, path, line: each registry document's items are adjacent. */
static int cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int r = (x->d->kind > y->d->kind) - (x->d->kind < y->d->kind);
	if (!r)
		r = strcmp(x->d->name, y->d->name);
	if (!r)
		r = strcmp(x->d->version, y->d->version);
	if (!r)
		r = strcmp(x->path, y->path);
	if (!r)
		r = (x->d->line > y->d->line) - (x->d->line < y->d->line);
	return r;
}

/* Whether a and b are answered by the same registry document. */
static bool same_doc(const struct gh_dep *a, const struct gh_dep *b)
{
	return a->kind == b->kind && strcmp(a->name, b->name) == 0 &&
	       (a->kind != GH_DEP_PYPI || strcmp(a->version, b->version) == 0);
}

static int lockfile_add(struct ctx *c, const char *abs, const char *rel, enum gh_deps_format fmt)
{
	if (c->nlf >= DEPS_MAX_LOCKFILES)
		return GH_ETOOBIG;
	if (c->nlf == c->caplf) {
		size_t cap = c->caplf ? c->caplf * 2 : 8;
		struct lockfile *v = realloc(c->lf, cap * sizeof *v);
		if (!v)
			return GH_ENOMEM;
		c->lf = v;
		c->caplf = cap;
	}
	struct lockfile *l = &c->lf[c->nlf];
	memset(l, 0, sizeof *l);
	l->path = gh_strdup(rel);
	if (!l->path)
		return GH_ENOMEM;
	c->nlf++;
	char *data = NULL;
	size_t len = 0;
	struct gh_error e;
	memset(&e, 0, sizeof e);
	int rc = gh_read_file(abs, GH_DEPS_MAX_LOCKFILE, &data, &len, &e);
	if (rc == 0)
		rc = gh_deps_parse(fmt, (const uint8_t *)data, len, &l->deps, &e);
	free(data);
	if (rc == GH_ENOMEM)
		return rc;
	if (rc) {
		gh_deps_list_free(&l->deps); /* a lockfile half read is not checked half */
		return add(c, "dep-unverified", rel, e.line, NULL,
			   "fix or regenerate the lockfile with a supported package manager version",
			   "lockfile %s cannot be read, so its dependencies cannot be checked: %s", rel, e.message);
	}
	return 0;
}

static int walk(struct ctx *c, const char *abs, const char *rel, int depth)
{
	if (depth > DEPS_MAX_DEPTH)
		return 0;
	DIR *dir = opendir(abs);
	if (!dir)
		return 0; /* unreadable folders are skipped, as the file walk does */
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(dir)) != NULL) {
		const char *nm = de->d_name;
		if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0 || strcmp(nm, ".git") == 0 ||
		    strcmp(nm, "node_modules") == 0)
			continue;
		char a[4096], r[4096];
		if (gh_path_join(a, sizeof a, abs, nm) != 0)
			continue;
		if (rel[0] ? snprintf(r, sizeof r, "%s/%s", rel, nm) >= (int)sizeof r
			   : snprintf(r, sizeof r, "%s", nm) >= (int)sizeof r)
			continue;
		struct stat st;
		if (lstat(a, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			rc = walk(c, a, r, depth + 1);
		else if (S_ISREG(st.st_mode) && gh_deps_format_of(nm) >= 0)
			rc = lockfile_add(c, a, r, (enum gh_deps_format)gh_deps_format_of(nm));
	}
	closedir(dir);
	return rc;
}

int gh_deps_scan(const char *root, const struct gh_deps_policy *pol, struct gh_findings *out, struct gh_error *err)
{
	struct ctx c = {.pol = pol, .out = out};
	struct fetch f;
	struct item *items = NULL;
	size_t nitems = 0;
	int rc;
	c.now = pol->now ? pol->now : gh_now();
	c.min_age = pol->min_age_s > 0 ? pol->min_age_s : DEFAULT_MIN_AGE;
	memset(&f, 0, sizeof f);

	struct stat st;
	if (stat(root, &st) < 0) {
		rc = gh_error_set(err, GH_EIO, "%s: %s", root, strerror(errno));
		goto done;
	}
	if (S_ISDIR(st.st_mode))
		rc = walk(&c, root, "", 0);
	else {
		const char *base = strrchr(root, '/') ? strrchr(root, '/') + 1 : root;
		rc = gh_deps_format_of(base) >= 0 ? lockfile_add(&c, root, base, (enum gh_deps_format)gh_deps_format_of(base)) : 0;
	}
	if (rc == GH_ETOOBIG) {
		gh_error_set(err, rc, "more than %d lockfiles under %s", DEPS_MAX_LOCKFILES, root);
		goto done;
	}
	if (rc) {
		gh_error_set(err, rc, "out of memory");
		goto done;
	}

	size_t total = 0;
	for (size_t i = 0; i < c.nlf; i++)
		total += c.lf[i].deps.n;
	items = calloc(total ? total : 1, sizeof *items);
	if (!items) {
		rc = gh_error_set(err, GH_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < c.nlf; i++)
		for (size_t j = 0; j < c.lf[i].deps.n; j++) {
			struct item it = {.d = &c.lf[i].deps.v[j], .path = c.lf[i].path};
			bool need = false;
			if ((rc = check_local(&c, &it, &need)) != 0) {
				gh_error_set(err, rc, "out of memory");
				goto done;
			}
			if (need)
				items[nitems++] = it;
		}
	if (nitems == 0)
		goto done;
	qsort(items, nitems, sizeof *items, cmp_item);
	if ((rc = fetch_init(&f, pol, c.now, err)) != 0)
		goto done;

	/* groups of items sharing one document (an npm name; a PyPI name and version) in batches of
	 * DEPS_PARALLEL: fetch together, then check, then release */
	for (size_t i = 0; i < nitems;) {
		size_t start[DEPS_PARALLEL + 1], nb = 0, j = i;
		while (j < nitems && nb < DEPS_PARALLEL) {
			start[nb] = j;
			fetch_start(&f, &f.slot[nb], items[j].d);
			nb++;
			while (j < nitems && same_doc(items[j].d, items[start[nb - 1]].d))
				j++;
		}
		start[nb] = j;
		fetch_wait(&f);
		for (size_t b = 0; b < nb && rc == 0; b++)
			for (size_t k = start[b]; k < start[b + 1] && rc == 0; k++) {
				if (k > start[b] && strcmp(items[k].d->version, items[k - 1].d->version) == 0 &&
				    strcmp(items[k].path, items[k - 1].path) == 0)
					continue; /* the same version again in one lockfile (nested node_modules) */
				rc = items[k].d->kind == GH_DEP_PYPI ? check_pypi(&c, &items[k], f.slot[b].doc, f.slot[b].why)
								     : check_npm(&c, &items[k], f.slot[b].doc, f.slot[b].why);
			}
		for (size_t b = 0; b < nb; b++) {
			json_decref(f.slot[b].doc);
			f.slot[b].doc = NULL;
		}
		if (rc) {
			gh_error_set(err, rc, "out of memory");
			goto done;
		}
		i = j;
	}
done:
	fetch_free(&f);
	free(items);
	for (size_t i = 0; i < c.nlf; i++) {
		free(c.lf[i].path);
		gh_deps_list_free(&c.lf[i].deps);
	}
	free(c.lf);
	return rc;
}
