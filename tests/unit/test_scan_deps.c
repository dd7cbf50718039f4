/* Unit tests for src/scan/deps.c: the lockfile parsers and the dependency checks against a
 * local npm registry and PyPI JSON API served by this test (a thread on 127.0.0.1, fixture
 * documents from tests/scan/deps/registry and tests/scan/deps/pypi). Never touches the internet. */
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scan/deps_parse.h"
#include "scan/scan.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))

/* The scan's clock: 2026-06-01T00:00:00Z. new-pkg@2.0.0 is published 2 days before it. */
#define NOW 1780272000LL

static char fixtures[1024]; /* tests/scan/deps */

/* ---- the test registry ---- */

struct registry {
	int fd;
	int port;
	pthread_t th;
	atomic_int requests;
	atomic_bool stop;
	char url[64];
	char pypi_url[80];
};

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void respond(int fd, int status, const char *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, len);
	send_all(fd, head, (size_t)n);
	send_all(fd, body, len);
}

static void serve_file(int fd, const char *file)
{
	FILE *f = fopen(file, "rb");
	if (!f) {
		respond(fd, 404, "{\"message\":\"Not Found\"}", 23);
		return;
	}
	static char body[1 << 16];
	size_t len = fread(body, 1, sizeof body, f);
	fclose(f);
	respond(fd, 200, body, len);
}

/* PyPI: "NAME/VERSION/json" with NAME in PEP 503 normal form -> pypi/NAME-VERSION.json. */
static void serve_pypi(int fd, const char *rest)
{
	char name[256], ver[256], tail[16];
	if (sscanf(rest, "%255[^/]/%255[^/]/%15s", name, ver, tail) != 3 || strcmp(tail, "json") != 0) {
		respond(fd, 400, "{}", 2);
		return;
	}
	for (const char *q = name; *q; q++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '-')) {
			respond(fd, 400, "{}", 2); /* not normalised: the client must never send it */
			return;
		}
	for (const char *q = ver; *q; q++)
		if (q == ver ? *q == '.' : strchr("/\\", *q) != NULL) {
			respond(fd, 400, "{}", 2);
			return;
		}
	if (strcmp(name, "broken-py") == 0) {
		respond(fd, 500, "{\"error\":\"internal\"}", 20);
		return;
	}
	char file[2048];
	snprintf(file, sizeof file, "%s/pypi/%s-%s.json", fixtures, name, ver);
	serve_file(fd, file);
}

static void serve_one(struct registry *r, int fd)
{
	char req[8192];
	size_t n = 0;
	while (n < sizeof req - 1) {
		ssize_t k = recv(fd, req + n, sizeof req - 1 - n, 0);
		if (k <= 0)
			return;
		n += (size_t)k;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	atomic_fetch_add(&r->requests, 1);
	char path[512];
	if (sscanf(req, "GET /%500s HTTP/1.1", path) != 1) {
		respond(fd, 400, "{}", 2);
		return;
	}
	if (strncmp(path, "pypi/", 5) == 0) {
		serve_pypi(fd, path + 5);
		return;
	}
	/* "@scope%2fname" -> "@scope__name" */
	char name[512];
	size_t k = 0;
	for (size_t i = 0; path[i] && k < sizeof name - 3; i++) {
		if (path[i] == '%' && (strncmp(path + i, "%2f", 3) == 0 || strncmp(path + i, "%2F", 3) == 0)) {
			name[k++] = '_';
			name[k++] = '_';
			i += 2;
		} else if (path[i] == '/' || path[i] == '.') {
			respond(fd, 400, "{}", 2); /* a name the client must never send */
			return;
		} else
			name[k++] = path[i];
	}
	name[k] = '\0';
	if (strcmp(name, "broken-pkg") == 0) {
		respond(fd, 500, "{\"error\":\"internal\"}", 20);
		return;
	}
	if (strcmp(name, "huge-pkg") == 0) {
		size_t big = 33u * 1024 * 1024;
		char *b = malloc(big);
		if (b) {
			memset(b, ' ', big);
			b[0] = '{';
			respond(fd, 200, b, big);
			free(b);
		}
		return;
	}
	char file[2048];
	snprintf(file, sizeof file, "%s/registry/%s.json", fixtures, name);
	FILE *f = fopen(file, "rb");
	if (!f) {
		respond(fd, 404, "{\"error\":\"Not found\"}", 21);
		return;
	}
	static char body[1 << 16];
	size_t len = fread(body, 1, sizeof body, f);
	fclose(f);
	respond(fd, 200, body, len);
}

static void *serve(void *arg)
{
	struct registry *r = arg;
	while (!atomic_load(&r->stop)) {
		int c = accept(r->fd, NULL, NULL);
		if (c < 0)
			continue;
		if (!atomic_load(&r->stop))
			serve_one(r, c);
		close(c);
	}
	return NULL;
}

static struct registry *registry_start(void)
{
	struct registry *r = calloc(1, sizeof *r);
	assert_non_null(r);
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(r->fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	assert_int_equal(bind(r->fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(r->fd, 64), 0);
	assert_int_equal(getsockname(r->fd, (struct sockaddr *)&a, &al), 0);
	r->port = ntohs(a.sin_port);
	snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d/", r->port);
	snprintf(r->pypi_url, sizeof r->pypi_url, "http://127.0.0.1:%d/pypi/", r->port);
	assert_int_equal(pthread_create(&r->th, NULL, serve, r), 0);
	return r;
}

static void registry_stop(struct registry *r)
{
	atomic_store(&r->stop, true);
	int c = socket(AF_INET, SOCK_STREAM, 0); /* wake accept() */
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	(void)connect(c, (struct sockaddr *)&a, sizeof a);
	close(c);
	pthread_join(r->th, NULL);
	close(r->fd);
	free(r);
}

/* ---- helpers ---- */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

struct env {
	struct registry *reg;
	char cache[256];
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	if (!e)
		return -1;
	e->reg = registry_start();
	snprintf(e->cache, sizeof e->cache, "/tmp/gh-deps-cache-XXXXXX");
	if (!mkdtemp(e->cache))
		return -1;
	strncat(e->cache, "/sub/npm", sizeof e->cache - strlen(e->cache) - 1); /* created by the scan */
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	registry_stop(e->reg);
	char *slash = strstr(e->cache, "/sub/npm");
	*slash = '\0';
	nftw(e->cache, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(e);
	return 0;
}

static const char *const allow[] = {"MIT", "ISC", "Apache-2.0", "BSD-3-Clause"};
static const char *const deny[] = {"evil-pkg", "evil-py"};

static struct gh_deps_policy policy(const struct env *e)
{
	struct gh_deps_policy p = {
		.min_age_s = 7 * 86400, .licenses = allow, .nlicenses = 4, .deny = deny, .ndeny = 2,
		.registry = e->reg->url, .pypi_registry = e->reg->pypi_url, .cache_dir = e->cache, .cache_ttl_s = 3600, .now = NOW,
	};
	return p;
}

struct want {
	const char *rule;
	const char *path;
	int line;
	const char *pkg; /* must appear in the message */
};

static void dump(const struct gh_findings *fs)
{
	for (size_t i = 0; i < fs->n; i++)
		printf("    %s %s:%d %s\n", fs->v[i].rule, fs->v[i].path, fs->v[i].line, fs->v[i].message);
}

/* Scans fixtures/dir and asserts exactly the wanted findings (any order). */
static void expect_scan(const struct gh_deps_policy *p, const char *dir, const struct want *w, size_t nw)
{
	char root[1200];
	snprintf(root, sizeof root, "%s/%s", fixtures, dir);
	struct gh_findings fs;
	struct gh_error err;
	memset(&err, 0, sizeof err);
	gh_findings_init(&fs);
	int rc = gh_deps_scan(root, p, &fs, &err);
	if (rc)
		fprintf(stderr, "scan %s: %s\n", dir, err.message);
	assert_int_equal(rc, 0);
	bool *used = calloc(fs.n + 1, sizeof *used);
	bool ok = fs.n == nw;
	for (size_t i = 0; i < nw && ok; i++) {
		bool found = false;
		for (size_t j = 0; j < fs.n && !found; j++) {
			const struct gh_finding *f = &fs.v[j];
			if (!used[j] && strcmp(f->rule, w[i].rule) == 0 && strcmp(f->path, w[i].path) == 0 &&
			    f->line == w[i].line && strstr(f->message, w[i].pkg)) {
				used[j] = found = true;
				assert_non_null(f->fix);
				assert_true(f->severity >= GH_SEV_LOW && f->severity <= GH_SEV_CRITICAL);
			}
		}
		if (!found) {
			fprintf(stderr, "missing: %s %s:%d %s\n", w[i].rule, w[i].path, w[i].line, w[i].pkg);
			ok = false;
		}
	}
	if (getenv("GH_TEST_VERBOSE"))
		dump(&fs);
	if (!ok) {
		fprintf(stderr, "%s: got %zu findings, want %zu:\n", dir, fs.n, nw);
		dump(&fs);
	}
	free(used);
	gh_findings_free(&fs);
	assert_true(ok);
	CHECKED("%s: exactly the %zu expected findings", dir, nw);
}

#define EXPECT(p, dir, ...)                                                              \
	do {                                                                             \
		static const struct want w_[] = {__VA_ARGS__};                           \
		expect_scan(p, dir, w_, sizeof w_ / sizeof w_[0]);                       \
	} while (0)

/* ---- the fixtures ---- */

static void test_npm_v3(void **state)
{
	struct env *e = *state;
	struct gh_deps_policy p = policy(e);
	EXPECT(&p, "npm-v3",
	       {"dep-too-new", "package-lock.json", 17, "new-pkg@2.0.0 was published 2d 0h ago"},
	       {"dep-unverified", "package-lock.json", 22, "old-pkg@9.9.9"},
	       {"dep-license", "package-lock.json", 26, "gpl-pkg@1.0.0 is licensed GPL-3.0-only"},
	       {"dep-denied", "package-lock.json", 33, "evil-pkg"},
	       {"dep-unverified", "package-lock.json", 36, "missing-pkg"},
	       {"dep-unverified", "package-lock.json", 39, "broken-pkg@1.0.0 cannot be verified: the registry"},
	       {"dep-unverified", "package-lock.json", 42, "garbage-pkg"},
	       {"dep-unverified", "package-lock.json", 45, "huge-pkg@1.0.0 cannot be verified: the registry's answer is larger"},
	       {"dep-unverified", "package-lock.json", 48, "notime-pkg"},
	       {"dep-license", "package-lock.json", 51, "nolic-pkg@1.0.0 declares no licence"},
	       {"dep-unverified", "package-lock.json", 75, "gitdep"},
	       {"dep-unverified", "package-lock.json", 79, "bad name"});
	/* denied packages are never asked about; the registry saw every other distinct name */
	assert_int_equal(atomic_load(&e->reg->requests), 12);
	CHECKED("npm-v3: 12 registry requests, none for the denied, foreign or invalid names");
}

static void test_npm_v2(void **state)
{
	struct env *e = *state;
	struct gh_deps_policy p = policy(e);
	EXPECT(&p, "npm-v2",
	       {"dep-too-new", "package-lock.json", 8, "new-pkg"},
	       {"dep-license", "package-lock.json", 9, "gpl-pkg"},
	       {"dep-denied", "package-lock.json", 10, "evil-pkg"},
	       {"dep-unverified", "package-lock.json", 11, "missing-pkg"});
}

static void test_pnpm(void **state)
{
	struct env *e = *state;
	struct gh_deps_policy p = policy(e);
	EXPECT(&p, "pnpm",
	       {"dep-too-new", "v6/pnpm-lock.yaml", 21, "new-pkg@2.0.0"},
	       {"dep-denied", "v6/pnpm-lock.yaml", 33, "evil-pkg"},
	       {"dep-unverified", "v6/pnpm-lock.yaml", 37, "broken-pkg"},
	       {"dep-unverified", "v6/pnpm-lock.yaml", 41, "gitdep"},
	       {"dep-license", "v9/pnpm-lock.yaml", 23, "gpl-pkg"},
	       {"dep-too-new", "v9/pnpm-lock.yaml", 26, "new-pkg@2.0.0"},
	       {"dep-unverified", "v9/pnpm-lock.yaml", 29, "missing-pkg"});
}

static void test_yarn_classic(void **state)
{
	struct env *e = *state;
	struct gh_deps_policy p = policy(e);
	EXPECT(&p, "yarn-classic",
	       {"dep-denied", "yarn.lock", 10, "evil-pkg"},
	       {"dep-unverified", "yarn.lock", 15, "garbage-pkg"},
	       {"dep-unverified", "yarn.lock", 19, "gitdep"},
	       {"dep-license", "yarn.lock", 23, "gpl-pkg"},
	       {"dep-too-new", "yarn.lock", 30, "new-pkg@2.0.0"});
}

static void test_yarn_berry(void **state)
{
	struct env *e = *state;
	struct gh_deps_policy p = policy(e);
	EXPECT(&p, "yarn-berry",
	       {"dep-unverified", "yarn.lock", 23, "huge-pkg"},
	       {"dep-too-new", "yarn.lock", 29, "new-pkg@2.0.0"},
	       {"dep-license", "yarn.lock", 35, "nolic-pkg"},
	       {"dep-unverified", "yarn.lock", 41, "notime-pkg"},
	       {"dep-unverified", "yarn.lock", 59, "gitdep"});
}

/* The findings of the python fixture against the fixture PyPI (requests, pkg-with-extras and
 * urllib3 are old and MIT/Apache-licensed: no finding). */
#define PYTHON_FINDINGS(newpy)                                                                                  \
	{"dep-unpinned", "requirements.txt", 6, "flask>=2.0"},                                              \
	{"dep-unpinned", "requirements.txt", 7, "Django==4.2.*"},                                           \
	{"dep-unpinned", "requirements.txt", 8, "numpy"},                                                   \
	{"dep-denied", "requirements.txt", 12, "Evil_Py==1.0 is on the policy's deny list"},               \
	{"dep-unpinned", "requirements.txt", 14, "example/thing.git"},                                      \
	{"dep-too-new", "requirements.txt", 16, newpy},                                                    \
	{"dep-license", "requirements.txt", 17, "GPL_py==1.0.0 (PyPI) is licensed GPL-3.0,"},              \
	{"dep-license", "requirements.txt", 18, "lexpr-py==1.0.0 (PyPI) is licensed LGPL-3.0-or-later AND MIT"}, \
	{"dep-yanked", "requirements.txt", 19, "yanked-py==1.0.0 (PyPI) was yanked (broken build)"},        \
	{"dep-yanked", "requirements.txt", 20, "allyanked-py==1.0.0 (PyPI) was yanked"},                   \
	{"dep-unverified", "requirements.txt", 21, "missing-py==1.0.0 (PyPI) cannot be verified: not on PyPI"}, \
	{"dep-unverified", "requirements.txt", 22, "broken-py==1.0.0 (PyPI) cannot be verified: the registry"}, \
	{"dep-unverified", "requirements.txt", 23, "garbage-py==1.0.0 (PyPI) cannot be verified: the registry's answer is not"}, \
	{"dep-unverified", "requirements.txt", 24, "nofiles-py==1.0.0 (PyPI) cannot be verified: PyPI lists no files"}, \
	{"dep-license", "requirements.txt", 25, "Nolic.Py==1.0.0 (PyPI) declares no licence"}

/* Distinct pinned releases asked about (Evil_Py is denied, never asked). */
#define PYTHON_REQUESTS 13

static void test_python(void **state)
{
	struct env *e = *state;
	struct gh_deps_policy p = policy(e);
	EXPECT(&p, "python", PYTHON_FINDINGS("new-py==2.0.0 (PyPI) was published 2d 0h ago (2026-05-30T00:00:00"));
	assert_int_equal(atomic_load(&e->reg->requests), PYTHON_REQUESTS);
	CHECKED("python: %d PyPI requests, names in PEP 503 form, none for the denied", PYTHON_REQUESTS);

	/* without an allow-list and with a 1-day minimum age only yanked and unverifiable remain */
	p.nlicenses = 0;
	p.min_age_s = 86400;
	EXPECT(&p, "python",
	       {"dep-unpinned", "requirements.txt", 6, "flask>=2.0"},
	       {"dep-unpinned", "requirements.txt", 7, "Django==4.2.*"},
	       {"dep-unpinned", "requirements.txt", 8, "numpy"},
	       {"dep-denied", "requirements.txt", 12, "Evil_Py"},
	       {"dep-unpinned", "requirements.txt", 14, "example/thing.git"},
	       {"dep-yanked", "requirements.txt", 19, "yanked-py"},
	       {"dep-yanked", "requirements.txt", 20, "allyanked-py"},
	       {"dep-unverified", "requirements.txt", 21, "missing-py"},
	       {"dep-unverified", "requirements.txt", 22, "broken-py"},
	       {"dep-unverified", "requirements.txt", 23, "garbage-py"},
	       {"dep-unverified", "requirements.txt", 24, "nofiles-py"});
	CHECKED("python: no allow-list, 1-day minimum age");
}

/* PyPI answers are cached per release: a second scan asks only for what failed; past the TTL,
 * or with another PyPI base URL, PyPI is asked again. */
static void test_cache_pypi(void **state)
{
	struct env *e = *state;
	struct gh_deps_policy p = policy(e);
	EXPECT(&p, "python", PYTHON_FINDINGS("new-py==2.0.0 (PyPI) was published 2d "));
	assert_int_equal(atomic_load(&e->reg->requests), PYTHON_REQUESTS);
	CHECKED("first scan: %d requests", PYTHON_REQUESTS);

	atomic_store(&e->reg->requests, 0);
	p.now = NOW + 3599;
	EXPECT(&p, "python", PYTHON_FINDINGS("new-py==2.0.0 (PyPI) was published 2d "));
	assert_int_equal(atomic_load(&e->reg->requests), 3); /* 404, 500, garbage: never cached */
	CHECKED("second scan within the TTL: 3 requests (the failures)");

	/* the npm cache beside it is separate: npm packages are still asked for */
	atomic_store(&e->reg->requests, 0);
	EXPECT(&p, "npm-v2", {"dep-too-new", "package-lock.json", 8, "new-pkg"},
	       {"dep-license", "package-lock.json", 9, "gpl-pkg"}, {"dep-denied", "package-lock.json", 10, "evil-pkg"},
	       {"dep-unverified", "package-lock.json", 11, "missing-pkg"});
	assert_int_equal(atomic_load(&e->reg->requests), 5);
	CHECKED("npm and PyPI entries do not mix");

	atomic_store(&e->reg->requests, 0);
	p.now = NOW + 3600;
	EXPECT(&p, "python", PYTHON_FINDINGS("new-py==2.0.0 (PyPI) was published 2d "));
	assert_int_equal(atomic_load(&e->reg->requests), PYTHON_REQUESTS);
	CHECKED("scan at the TTL: PyPI is asked again");

	atomic_store(&e->reg->requests, 0);
	p.now = NOW + 3700;
	char other[80];
	snprintf(other, sizeof other, "http://localhost:%d/pypi", e->reg->port);
	p.pypi_registry = other;
	EXPECT(&p, "python", PYTHON_FINDINGS("new-py==2.0.0 (PyPI) was published 2d "));
	assert_int_equal(atomic_load(&e->reg->requests), PYTHON_REQUESTS);
	CHECKED("another PyPI URL does not share the cache");

	/* a PyPI base that is not http(s) stops the scan with a reason */
	p.pypi_registry = "ftp://pypi.example.invalid";
	struct gh_findings fs;
	struct gh_error err;
	char root[1200];
	snprintf(root, sizeof root, "%s/python", fixtures);
	gh_findings_init(&fs);
	memset(&err, 0, sizeof err);
	assert_int_equal(gh_deps_scan(root, &p, &fs, &err), GH_EINVAL);
	assert_non_null(strstr(err.message, "not an http(s) URL"));
	gh_findings_free(&fs);
	CHECKED("a PyPI URL that is not http(s) is refused");
}

/* The root may be one lockfile; a root that does not exist is an error, not a clean scan. */
static void test_roots(void **state)
{
	struct env *e = *state;
	struct gh_deps_policy p = policy(e);
	EXPECT(&p, "npm-v2/package-lock.json", {"dep-too-new", "package-lock.json", 8, "new-pkg"},
	       {"dep-license", "package-lock.json", 9, "gpl-pkg"}, {"dep-denied", "package-lock.json", 10, "evil-pkg"},
	       {"dep-unverified", "package-lock.json", 11, "missing-pkg"});
	struct gh_findings fs;
	struct gh_error err;
	gh_findings_init(&fs);
	memset(&err, 0, sizeof err);
	assert_int_equal(gh_deps_scan("/nonexistent/gatehouse-deps", &p, &fs, &err), GH_EIO);
	assert_non_null(strstr(err.message, "/nonexistent/gatehouse-deps"));
	assert_int_equal(fs.n, 0);
	gh_findings_free(&fs);
	CHECKED("a missing root fails with its name");
}

/* Without an allow-list any licence passes; a shorter minimum age lets new-pkg through. */
static void test_policy_knobs(void **state)
{
	struct env *e = *state;
	struct gh_deps_policy p = policy(e);
	p.nlicenses = 0;
	p.min_age_s = 86400;
	p.ndeny = 0;
	EXPECT(&p, "npm-v2", {"dep-unverified", "package-lock.json", 11, "missing-pkg"});
	static const char *const scope[] = {"@scope/*"};
	p.deny = scope;
	p.ndeny = 1;
	EXPECT(&p, "npm-v2", {"dep-unverified", "package-lock.json", 11, "missing-pkg"},
	       {"dep-denied", "package-lock.json", 12, "@scope/scoped@1.2.3 is on the policy's deny list"});
	CHECKED("no allow-list: any licence; 1-day minimum age; \"@scope/*\" denies the scope");
}

/* Replaces every file in dir with bytes that are not a cache entry. */
static void spoil_cache(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "for f in '%s'/*.json; do printf 'garbage' > \"$f\"; done", dir);
	assert_int_equal(system(cmd), 0);
}

/* Answers are cached per package: a second scan asks only for what failed (never cached); past
 * the TTL the registry is asked again. */
static void test_cache(void **state)
{
	struct env *e = *state;
	struct gh_deps_policy p = policy(e);
	char parent[256];
	snprintf(parent, sizeof parent, "%s", e->cache);
	*strrchr(parent, '/') = '\0';
	assert_int_equal(mkdir(parent, 0755), 0);
	assert_int_equal(mkdir(e->cache, 0755), 0); /* ours but open to others: tightened */
	EXPECT(&p, "npm-v2", {"dep-too-new", "package-lock.json", 8, "new-pkg"},
	       {"dep-license", "package-lock.json", 9, "gpl-pkg"}, {"dep-denied", "package-lock.json", 10, "evil-pkg"},
	       {"dep-unverified", "package-lock.json", 11, "missing-pkg"});
	assert_int_equal(atomic_load(&e->reg->requests), 5); /* old, new, gpl, missing, @scope/scoped */
	struct stat st;
	assert_int_equal(stat(e->cache, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	CHECKED("first scan: 5 requests, cache directory tightened to 0700");

	atomic_store(&e->reg->requests, 0);
	p.now = NOW + 3599;
	EXPECT(&p, "npm-v2", {"dep-too-new", "package-lock.json", 8, "new-pkg"},
	       {"dep-license", "package-lock.json", 9, "gpl-pkg"}, {"dep-denied", "package-lock.json", 10, "evil-pkg"},
	       {"dep-unverified", "package-lock.json", 11, "missing-pkg"});
	assert_int_equal(atomic_load(&e->reg->requests), 1); /* only the 404 */
	CHECKED("second scan within the TTL: 1 request (the 404 is not cached)");

	atomic_store(&e->reg->requests, 0);
	p.now = NOW + 3600;
	EXPECT(&p, "npm-v2", {"dep-too-new", "package-lock.json", 8, "new-pkg"},
	       {"dep-license", "package-lock.json", 9, "gpl-pkg"}, {"dep-denied", "package-lock.json", 10, "evil-pkg"},
	       {"dep-unverified", "package-lock.json", 11, "missing-pkg"});
	assert_int_equal(atomic_load(&e->reg->requests), 5);
	CHECKED("scan at the TTL: the registry is asked again (5 requests)");

	/* entries that are not ours are ignored and replaced */
	spoil_cache(e->cache);
	atomic_store(&e->reg->requests, 0);
	EXPECT(&p, "npm-v2", {"dep-too-new", "package-lock.json", 8, "new-pkg"},
	       {"dep-license", "package-lock.json", 9, "gpl-pkg"}, {"dep-denied", "package-lock.json", 10, "evil-pkg"},
	       {"dep-unverified", "package-lock.json", 11, "missing-pkg"});
	assert_int_equal(atomic_load(&e->reg->requests), 5);
	atomic_store(&e->reg->requests, 0);
	EXPECT(&p, "npm-v2", {"dep-too-new", "package-lock.json", 8, "new-pkg"},
	       {"dep-license", "package-lock.json", 9, "gpl-pkg"}, {"dep-denied", "package-lock.json", 10, "evil-pkg"},
	       {"dep-unverified", "package-lock.json", 11, "missing-pkg"});
	assert_int_equal(atomic_load(&e->reg->requests), 1);
	CHECKED("spoiled cache entries are ignored and rewritten");

	/* a cache from another registry is not used */
	atomic_store(&e->reg->requests, 0);
	char other[80];
	snprintf(other, sizeof other, "http://localhost:%d", e->reg->port);
	p.registry = other;
	p.now = NOW + 3700;
	EXPECT(&p, "npm-v2", {"dep-too-new", "package-lock.json", 8, "new-pkg"},
	       {"dep-license", "package-lock.json", 9, "gpl-pkg"}, {"dep-denied", "package-lock.json", 10, "evil-pkg"},
	       {"dep-unverified", "package-lock.json", 11, "missing-pkg"});
	assert_int_equal(atomic_load(&e->reg->requests), 5);
	CHECKED("another registry URL does not share the cache");
}

/* A registry that cannot be reached fails closed: every npm package is dep-unverified. */
static void test_unreachable(void **state)
{
	struct env *e = *state;
	struct gh_deps_policy p = policy(e);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &al), 0);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
	p.registry = url; /* bound, not listening: connection refused */
	p.pypi_registry = url;
	EXPECT(&p, "npm-v2",
	       {"dep-unverified", "package-lock.json", 7, "old-pkg@1.0.0 cannot be verified: registry"},
	       {"dep-unverified", "package-lock.json", 8, "new-pkg"},
	       {"dep-unverified", "package-lock.json", 9, "gpl-pkg"},
	       {"dep-denied", "package-lock.json", 10, "evil-pkg"},
	       {"dep-unverified", "package-lock.json", 11, "missing-pkg"},
	       {"dep-unverified", "package-lock.json", 12, "@scope/scoped"});
	EXPECT(&p, "python",
	       {"dep-unverified", "requirements.txt", 5, "requests==2.31.0 (PyPI) cannot be verified: registry"},
	       {"dep-unpinned", "requirements.txt", 6, "flask>=2.0"},
	       {"dep-unpinned", "requirements.txt", 7, "Django==4.2.*"},
	       {"dep-unpinned", "requirements.txt", 8, "numpy"},
	       {"dep-unverified", "requirements.txt", 9, "pkg-with-extras==1.0.3 (PyPI)"},
	       {"dep-denied", "requirements.txt", 12, "Evil_Py"},
	       {"dep-unpinned", "requirements.txt", 14, "example/thing.git"},
	       {"dep-unverified", "requirements.txt", 15, "urllib3==2.0.7 (PyPI)"},
	       {"dep-unverified", "requirements.txt", 16, "new-py"},
	       {"dep-unverified", "requirements.txt", 17, "GPL_py"},
	       {"dep-unverified", "requirements.txt", 18, "lexpr-py"},
	       {"dep-unverified", "requirements.txt", 19, "yanked-py"},
	       {"dep-unverified", "requirements.txt", 20, "allyanked-py"},
	       {"dep-unverified", "requirements.txt", 21, "missing-py"},
	       {"dep-unverified", "requirements.txt", 22, "broken-py"},
	       {"dep-unverified", "requirements.txt", 23, "garbage-py"},
	       {"dep-unverified", "requirements.txt", 24, "nofiles-py"},
	       {"dep-unverified", "requirements.txt", 25, "Nolic.Py"});
	close(s);
}

/* ---- parsers and helpers, without the network ---- */

static size_t parse(enum gh_deps_format fmt, const char *text, struct gh_dep_list *l, struct gh_error *err)
{
	memset(l, 0, sizeof *l);
	memset(err, 0, sizeof *err);
	int rc = gh_deps_parse(fmt, (const uint8_t *)text, strlen(text), l, err);
	return rc ? (size_t)-1 : l->n;
}

static void test_parse_edges(void **state)
{
	struct gh_dep_list l;
	struct gh_error err;

	assert_int_equal(parse(GH_DEPS_NPM_LOCK, "{\"lockfileVersion\": 1, \"dependencies\": {}}", &l, &err), (size_t)-1);
	assert_non_null(strstr(err.message, "lockfileVersion 1 is not supported"));
	gh_deps_list_free(&l);
	assert_int_equal(parse(GH_DEPS_NPM_LOCK, "{\"lockfileVersion\": 3,\n \"packages\": {\n", &l, &err), (size_t)-1);
	assert_int_equal(err.line, 3);
	gh_deps_list_free(&l);
	CHECKED("npm: lockfile v1 and truncated JSON are refused with a reason and a line");

	assert_int_equal(parse(GH_DEPS_PNPM_LOCK,
			       "lockfileVersion: 5.4\npackages:\n  /a/1.0.0:\n    dev: false\n"
			       "  /@s/b/2.0.0_react@17.0.2:\n    dev: false\n", &l, &err), 2);
	assert_string_equal(l.v[0].name, "a");
	assert_string_equal(l.v[0].version, "1.0.0");
	assert_string_equal(l.v[1].name, "@s/b");
	assert_string_equal(l.v[1].version, "2.0.0");
	assert_int_equal(l.v[1].line, 5);
	gh_deps_list_free(&l);
	assert_int_equal(parse(GH_DEPS_PNPM_LOCK, "lockfileVersion: '6.0'\npackages: [1, 2\n", &l, &err), (size_t)-1);
	gh_deps_list_free(&l);
	assert_int_equal(parse(GH_DEPS_PNPM_LOCK, "a: &x [*x]\n", &l, &err), (size_t)-1);
	gh_deps_list_free(&l);
	CHECKED("pnpm: v5 keys with peer suffixes, malformed YAML refused");

	assert_int_equal(parse(GH_DEPS_YARN_LOCK, "a@^1:\n  version \"1.0.0\"\nnot a header\n", &l, &err), (size_t)-1);
	assert_int_equal(err.line, 3);
	gh_deps_list_free(&l);
	assert_int_equal(parse(GH_DEPS_YARN_LOCK, "a@^1:\r\n  version \"1.0.0\"\r\n  resolved \"https://r/a/-/a-1.0.0.tgz\"\r\n",
			       &l, &err), 1);
	assert_string_equal(l.v[0].version, "1.0.0");
	assert_int_equal(l.v[0].kind, GH_DEP_NPM);
	gh_deps_list_free(&l);
	CHECKED("yarn: CRLF lines; a stray top-level line is refused at its line");

	assert_int_equal(parse(GH_DEPS_PIP_REQS, "a==1 \\\n", &l, &err), 1);
	assert_int_equal(l.v[0].kind, GH_DEP_PYPI);
	gh_deps_list_free(&l);
	CHECKED("requirements: a trailing continuation at the end of the file");

	int64_t t;
	assert_int_equal(gh_deps_parse_time("2026-05-30T00:00:00.000Z", &t), 0);
	assert_int_equal(t, NOW - 2 * 86400);
	assert_int_equal(gh_deps_parse_time("2026-05-30T02:00:00+02:00", &t), 0);
	assert_int_equal(t, NOW - 2 * 86400);
	assert_int_not_equal(gh_deps_parse_time("2026-05-30", &t), 0);
	assert_int_not_equal(gh_deps_parse_time("2026-05-30T00:00:00", &t), 0);
	assert_int_not_equal(gh_deps_parse_time("2026-13-30T00:00:00Z", &t), 0);
	assert_int_not_equal(gh_deps_parse_time("2026-05-30T00:00:00Zjunk", &t), 0);
	CHECKED("ISO 8601 times: fractions, offsets; dates, local times and junk refused");

	assert_true(gh_deps_license_ok("mit", allow, 4));
	assert_true(gh_deps_license_ok("(GPL-3.0-only OR MIT)", allow, 4));
	assert_true(gh_deps_license_ok("MIT AND ISC", allow, 4));
	assert_false(gh_deps_license_ok("MIT AND GPL-3.0-only", allow, 4));
	assert_false(gh_deps_license_ok("UNLICENSED", allow, 4));
	assert_false(gh_deps_license_ok("", allow, 4));
	assert_false(gh_deps_license_ok(NULL, allow, 4));
	CHECKED("licence expressions: OR any, AND all, missing never");

	assert_true(gh_deps_npm_name_ok("lodash"));
	assert_true(gh_deps_npm_name_ok("@babel/core"));
	assert_false(gh_deps_npm_name_ok("../etc/passwd"));
	assert_false(gh_deps_npm_name_ok("@scope/"));
	assert_false(gh_deps_npm_name_ok("a/b"));
	assert_false(gh_deps_npm_name_ok("a?b=c"));
	assert_false(gh_deps_npm_name_ok(".hidden"));
	CHECKED("npm names: only URL-safe names reach a registry URL");

	char norm[32];
	assert_int_equal(gh_deps_pypi_name_norm("Foo__Bar.-baz", norm, sizeof norm), 0);
	assert_string_equal(norm, "foo-bar-baz");
	assert_int_equal(gh_deps_pypi_name_norm("zope.interface", norm, sizeof norm), 0);
	assert_string_equal(norm, "zope-interface");
	assert_int_not_equal(gh_deps_pypi_name_norm("../etc", norm, sizeof norm), 0);
	assert_int_not_equal(gh_deps_pypi_name_norm("a/b", norm, sizeof norm), 0);
	assert_int_not_equal(gh_deps_pypi_name_norm("-a", norm, sizeof norm), 0);
	assert_int_not_equal(gh_deps_pypi_name_norm("a-", norm, sizeof norm), 0);
	assert_int_not_equal(gh_deps_pypi_name_norm("", norm, sizeof norm), 0);
	assert_int_not_equal(gh_deps_pypi_name_norm("a-very-long-name-that-does-not-fit", norm, sizeof norm), 0);
	assert_true(gh_deps_pypi_version_ok("1!2.0.0rc1+local.1"));
	assert_false(gh_deps_pypi_version_ok("../1"));
	assert_false(gh_deps_pypi_version_ok("1/2"));
	assert_false(gh_deps_pypi_version_ok("1?x"));
	assert_false(gh_deps_pypi_version_ok(""));
	CHECKED("PyPI names: PEP 503 normal form; only URL-safe names and versions reach a URL");
}

static void test_rules(void **state)
{
	const struct gh_rule_info *r;
	size_t n = gh_deps_rules(&r);
	static const char *const ids[] = {"dep-too-new", "dep-denied", "dep-license", "dep-unverified", "dep-unpinned",
					  "dep-yanked"};
	assert_int_equal(n, 6);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(r[i].id, ids[i]);
		assert_non_null(r[i].help);
	}
	CHECKED("six rules with help");
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_rules),
	cmocka_unit_test(test_parse_edges),
	cmocka_unit_test_setup_teardown(test_npm_v3, setup, teardown),
	cmocka_unit_test_setup_teardown(test_npm_v2, setup, teardown),
	cmocka_unit_test_setup_teardown(test_pnpm, setup, teardown),
	cmocka_unit_test_setup_teardown(test_yarn_classic, setup, teardown),
	cmocka_unit_test_setup_teardown(test_yarn_berry, setup, teardown),
	cmocka_unit_test_setup_teardown(test_python, setup, teardown),
	cmocka_unit_test_setup_teardown(test_policy_knobs, setup, teardown),
	cmocka_unit_test_setup_teardown(test_roots, setup, teardown),
	cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
	cmocka_unit_test_setup_teardown(test_cache_pypi, setup, teardown),
	cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
};

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	/* fixtures sit beside this file: tests/unit/../scan/deps (the suite runs from the repository) */
	const char *env = getenv("GH_DEPS_FIXTURES");
	snprintf(fixtures, sizeof fixtures, "%s", env ? env : "tests/scan/deps");
	int failed = cmocka_run_group_tests_name("test_scan_deps", tests, NULL, NULL);
	gh_unit_report("test_scan_deps", sizeof(tests) / sizeof(tests[0]), failed);
	return failed ? 1 : 0;
}
