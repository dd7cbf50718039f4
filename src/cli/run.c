/* cli: `gatehouse run` — an app's backend code in a sandbox whose only road to data is the
 * gateway. A fresh token for the app, user and environment (valid for the run's timeout) is
 * the child's GATEHOUSE_TOKEN; GATEHOUSE_URL and HTTP(S)_PROXY point at listeners on the
 * sandbox's own loopback whose connections the egress proxy outside serves. Egress is audited. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "audit/audit.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/local.h"
#include "config/config.h"
#include "sandbox/sandbox.h"

#define RUN_MAX_ORIGINS 32
#define RUN_MAX_ENV 64
#define RUN_GATEWAY_PORT 8080 /* inside the sandbox */
#define RUN_PROXY_PORT 3128

struct run_audit {
	pthread_mutex_t mu;
	struct gh_audit *log;
	const char *user, *app, *env;
	unsigned failures;
};

/* One record per egress connection (called from the proxy's threads). */
static void on_egress(void *arg, const struct gh_egress_event *ev)
{
	struct run_audit *ra = arg;
	char detail[700];
	struct gh_buf d;
	gh_buf_init(&d, sizeof detail);
	gh_buf_puts(&d, "{\"destination\":");
	gh_buf_json_string(&d, ev->dest ? ev->dest : "", ev->dest ? strlen(ev->dest) : 0);
	gh_buf_printf(&d, ",\"gateway\":%s,\"bytes_out\":%llu,\"bytes_in\":%llu", ev->gateway ? "true" : "false",
		      (unsigned long long)ev->bytes_out, (unsigned long long)ev->bytes_in);
	if (ev->reason) {
		gh_buf_puts(&d, ",\"reason\":");
		gh_buf_json_string(&d, ev->reason, strlen(ev->reason));
	}
	gh_buf_puts(&d, "}");
	snprintf(detail, sizeof detail, "%s", d.data ? d.data : "{}");
	gh_buf_free(&d);
	char rid[48], groups[1] = "";
	gh_random_id("req", 8, rid, sizeof rid);
	struct gh_audit_record r = {.time_ms = gh_now_ms(), .request_id = rid, .event = "sandbox.egress",
				    .user = ra->user, .groups = groups, .app = ra->app, .environment = ra->env,
				    .decision = ev->allowed ? "allow" : "deny",
				    .rule = ev->allowed ? (ev->gateway ? "gateway" : "allow-origin") : "egress-refused",
				    .status = ev->allowed ? "ok" : "refused", .rows = -1, .duration_ms = -1,
				    .client = "sandbox", .detail_json = detail};
	struct gh_error err;
	pthread_mutex_lock(&ra->mu);
	if (gh_audit_append(ra->log, &r, NULL, &err))
		ra->failures++;
	pthread_mutex_unlock(&ra->mu);
	if (!ev->allowed)
		fprintf(stderr, "gatehouse run: egress refused: %s%s%s\n", ev->dest ? ev->dest : "?",
			ev->reason ? ": " : "", ev->reason ? ev->reason : "");
}

/* The directory of the command's executable when it lies outside the read-only system paths,
 * so that it can be bound into the sandbox. */
static const char *command_dir(const char *cmd, char *out, size_t n)
{
	char path[PATH_MAX];
	if (strchr(cmd, '/')) {
		if (!realpath(cmd, path))
			return NULL;
	} else {
		const char *p = getenv("PATH");
		char dirs[4096];
		snprintf(dirs, sizeof dirs, "%s", p ? p : "/usr/bin:/bin");
		bool found = false;
		for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
			char c[PATH_MAX];
			if (snprintf(c, sizeof c, "%s/%s", d, cmd) < (int)sizeof c && access(c, X_OK) == 0 && realpath(c, path))
				found = true;
		}
		if (!found)
			return NULL;
	}
	static const char *const sys[] = {"/usr/", "/bin/", "/lib/", "/lib64/", "/sbin/"};
	for (size_t i = 0; i < sizeof sys / sizeof *sys; i++)
		if (strncmp(path, sys[i], strlen(sys[i])) == 0)
			return NULL;
	char *slash = strrchr(path, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	snprintf(out, n, "%s", path);
	return out;
}

static int parse_hostport(const char *s, char *host, size_t hn, uint16_t *port)
{
	const char *p = s;
	if (strncmp(p, "http://", 7) == 0)
		p += 7;
	const char *colon = strrchr(p, ':');
	if (!colon || colon == p || (size_t)(colon - p) >= hn)
		return GH_EINVAL;
	int64_t n;
	char num[8];
	snprintf(num, sizeof num, "%.*s", (int)strcspn(colon + 1, "/"), colon + 1);
	if (gh_parse_int(num, 1, 65535, &n))
		return GH_EINVAL;
	memcpy(host, p, (size_t)(colon - p));
	host[colon - p] = '\0';
	*port = (uint16_t)n;
	return 0;
}

int gh_cli_run(int argc, char **argv)
{
	/* everything after "--" is the command */
	int dd = -1;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			dd = i;
			break;
		}
	struct args_opt o[] = {{"data", false, NULL},	    {"app", false, NULL},      {"env", false, NULL},
			       {"user", false, NULL},	    {"dir", false, NULL},      {"memory", false, NULL},
			       {"cpu-time", false, NULL},   {"timeout", false, NULL},  {"gateway", false, NULL}};
	struct args a = {o, sizeof o / sizeof *o, {0}, 0, false};
	/* --allow-origin and --env-pass repeat: collected here, the rest parsed by args_parse */
	const char *origins[RUN_MAX_ORIGINS], *pass[RUN_MAX_ENV];
	size_t norigins = 0, npass = 0;
	char *rest[256];
	int nrest = 0;
	int end = dd >= 0 ? dd : argc;
	for (int i = 0; i < end && nrest < 255; i++) {
		if ((strcmp(argv[i], "--allow-origin") == 0 || strcmp(argv[i], "--env-pass") == 0) && i + 1 < end) {
			bool orig = argv[i][2] == 'a';
			if (orig ? norigins >= RUN_MAX_ORIGINS : npass >= RUN_MAX_ENV)
				return cli_usage_error("run", "too many %s", argv[i]);
			if (orig)
				origins[norigins++] = argv[++i];
			else
				pass[npass++] = argv[++i];
			continue;
		}
		rest[nrest++] = argv[i];
	}
	if (!args_parse(&a, nrest, rest, "run"))
		return 2;
	if (a.help) {
		cli_usage("run");
		return 0;
	}
	const char *dir = args_get(&a, "data"), *app = args_get(&a, "app"), *env = args_get(&a, "env");
	const char *user = args_get(&a, "user");
	if (!dir || !app || !env || !user || dd < 0 || dd + 1 >= argc || a.npos)
		return cli_usage_error("run", "expected --data DIR --app APP --env ENV --user USER [options] -- COMMAND [ARGS...]");
	struct gh_sandbox_opts so;
	memset(&so, 0, sizeof so);
	so.memory_bytes = 256LL << 20;
	so.cpu_seconds = 10;
	so.timeout_ms = 30000;
	so.tmp_bytes = 64LL << 20;
	so.output_bytes = 8LL << 20;
	so.gateway_port = RUN_GATEWAY_PORT;
	so.proxy_port = RUN_PROXY_PORT;
	const char *v;
	int64_t n;
	if ((v = args_get(&a, "memory"))) {
		if (gh_parse_size(v, &n) || n < (16LL << 20) || n > (64LL << 30))
			return cli_usage_error("run", "--memory: expected a size from 16M to 64G");
		so.memory_bytes = n;
	}
	if ((v = args_get(&a, "cpu-time"))) {
		if (gh_parse_duration(v, &n) || n < 1 || n > 86400)
			return cli_usage_error("run", "--cpu-time: expected 1s to 24h");
		so.cpu_seconds = n;
	}
	if ((v = args_get(&a, "timeout"))) {
		if (gh_parse_duration(v, &n) || n < 1 || n > 86400)
			return cli_usage_error("run", "--timeout: expected 1s to 24h");
		so.timeout_ms = n * 1000;
	}
	for (size_t i = 0; i < norigins; i++) {
		const char *s = origins[i];
		char h[256];
		uint16_t port;
		bool https = strncmp(s, "https://", 8) == 0, http = strncmp(s, "http://", 7) == 0;
		const char *hp = https ? s + 8 : http ? s + 7 : NULL;
		if (!hp || !*hp || strchr(hp, '/') || strlen(s) > 300 ||
		    (strchr(hp, ':') && parse_hostport(hp, h, sizeof h, &port)))
			return cli_usage_error("run", "--allow-origin: expected https://host[:port] or http://host[:port], got '%.64s'", s);
	}
	for (size_t i = 0; i < npass; i++)
		/* GATEHOUSE_*: the run's own (the token) and the gateway's (GATEHOUSE_MASTER_KEY) */
		if (!gh_config_valid_name(pass[i], false) || strncmp(pass[i], "GATEHOUSE_", 10) == 0)
			return cli_usage_error("run", "--env-pass: '%.64s' is not a variable that can be passed", pass[i]);
	char ghost[256] = "127.0.0.1";
	uint16_t gport = 8080;
	if ((v = args_get(&a, "gateway")) && parse_hostport(v, ghost, sizeof ghost, &gport))
		return cli_usage_error("run", "--gateway: expected HOST:PORT of the gatehouse server");

	/* The egress proxy first, then the token and its records, then the sandbox: the token is
	 * issued, with its token.issue and sandbox.start records in one durable write, only
	 * when everything the run needs is in place. */
	gh_sandbox_prewarm();
	struct run_audit ra = {.user = user, .app = app, .env = env};
	pthread_mutex_init(&ra.mu, NULL);
	struct gh_error err;
	gh_error_clear(&err);
	int rc, sp[2] = {-1, -1};
	struct gh_proxy *proxy = NULL;
	char *passed[RUN_MAX_ENV];
	size_t npassed = 0;
	char tok[GH_TOKEN_MAX_BYTES], buf_tok[GH_TOKEN_MAX_BYTES + 32];
	tok[0] = buf_tok[0] = '\0';
	if (gh_audit_open(dir, &ra.log, &err)) {
		fprintf(stderr, "gatehouse run: audit trail unavailable, nothing ran: %s\n", err.message);
		rc = 1;
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
		fprintf(stderr, "gatehouse run: socketpair: %s\n", strerror(errno));
		rc = 1;
		goto out;
	}
	if (gh_proxy_start(sp[0], ghost, gport, origins, norigins, on_egress, &ra, &proxy, &err)) {
		fprintf(stderr, "gatehouse run: %s\n", err.message);
		rc = 1;
		goto out;
	}

	/* the token, for the run's lifetime (at least a minute) */
	struct gh_claims claims;
	int64_t ttl = so.timeout_ms / 1000 + 60;
	char detail[200];
	snprintf(detail, sizeof detail, "{\"timeout_s\":%lld,\"memory\":%lld,\"cpu_s\":%lld}",
		 (long long)(so.timeout_ms / 1000), (long long)so.memory_bytes, (long long)so.cpu_seconds);
	struct gh_audit_record start = {.event = "sandbox.start", .user = user, .groups = "", .app = app,
					.environment = env, .status = "ok", .decision = "allow",
					.rule = "local-operator", .detail_json = detail};
	rc = cli_issue_token("run", dir, ra.log, user, env, app, ttl > GH_TOKEN_MAX_TTL ? GH_TOKEN_MAX_TTL : ttl,
			     &start, 1, tok, sizeof tok, &claims);
	if (rc)
		goto out;

	/* the child's environment: the token, the gateway and the proxy, and what --env-pass names */
	char *envv[RUN_MAX_ENV + 16];
	size_t ne = 0;
	char buf_url[64], buf_p1[64], buf_p2[64], buf_p3[64], buf_p4[64];
	snprintf(buf_tok, sizeof buf_tok, "GATEHOUSE_TOKEN=%s", tok);
	snprintf(buf_url, sizeof buf_url, "GATEHOUSE_URL=http://127.0.0.1:%u", RUN_GATEWAY_PORT);
	snprintf(buf_p1, sizeof buf_p1, "HTTP_PROXY=http://127.0.0.1:%u", RUN_PROXY_PORT);
	snprintf(buf_p2, sizeof buf_p2, "HTTPS_PROXY=http://127.0.0.1:%u", RUN_PROXY_PORT);
	snprintf(buf_p3, sizeof buf_p3, "http_proxy=http://127.0.0.1:%u", RUN_PROXY_PORT);
	snprintf(buf_p4, sizeof buf_p4, "https_proxy=http://127.0.0.1:%u", RUN_PROXY_PORT);
	envv[ne++] = buf_tok;
	envv[ne++] = buf_url;
	envv[ne++] = buf_p1;
	envv[ne++] = buf_p2;
	envv[ne++] = buf_p3;
	envv[ne++] = buf_p4;
	envv[ne++] = (char *)(uintptr_t)"NO_PROXY=127.0.0.1,localhost";
	envv[ne++] = (char *)(uintptr_t)"no_proxy=127.0.0.1,localhost";
	envv[ne++] = (char *)(uintptr_t)"PATH=/usr/local/bin:/usr/bin:/bin";
	envv[ne++] = (char *)(uintptr_t)"HOME=/tmp";
	envv[ne++] = (char *)(uintptr_t)"LANG=C.UTF-8";
	for (size_t i = 0; i < npass; i++) {
		const char *val = getenv(pass[i]);
		if (!val)
			continue;
		size_t len = strlen(pass[i]) + strlen(val) + 2;
		if (!(passed[npassed] = malloc(len)))
			break;
		snprintf(passed[npassed], len, "%s=%s", pass[i], val);
		envv[ne++] = passed[npassed++];
	}
	envv[ne] = NULL;

	char cdir[PATH_MAX];
	const char *extra[2] = {command_dir(argv[dd + 1], cdir, sizeof cdir), NULL};
	so.argv = (const char *const *)(argv + dd + 1);
	so.env = (const char *const *)envv;
	so.app_dir = args_get(&a, "dir");
	so.extra_ro = extra;
	so.egress_fd = sp[1];
	struct gh_sandbox_result res;
	memset(&res, 0, sizeof res);
	int src = gh_sandbox_run(&so, &res, &err);
	if (src) {
		/* nothing ran: the token goes, and the trail says why */
		fprintf(stderr, "gatehouse run: refusing to run without a sandbox: %s\n", err.message);
		if (cli_revoke_token(dir, claims.jti))
			fprintf(stderr, "gatehouse run: the run's token %s could not be revoked; it expires in %lld s\n",
				claims.jti, (long long)ttl);
		rc = 1;
		snprintf(detail, sizeof detail, "{\"refused\":\"sandbox unavailable\",\"token_id\":\"%s\"}", claims.jti);
	} else {
		if (res.reason[0])
			fprintf(stderr, "gatehouse run: %s\n", res.reason);
		rc = res.status;
		snprintf(detail, sizeof detail, "{\"exit\":%d,\"memory_limit\":\"%s\"}", res.status, res.memory_limit_by);
	}
	struct gh_audit_record fin = {.event = "sandbox.exit", .user = user, .groups = "", .app = app,
				      .environment = env, .status = src ? "refused" : res.status ? "error" : "ok",
				      .decision = src ? "deny" : "allow", .rule = "local-operator", .detail_json = detail};
	cli_audit_event("run", dir, ra.log, &fin);
	/* the token lives as long as the run, not until its expiry */
	if (!src && cli_revoke_token(dir, claims.jti))
		fprintf(stderr, "gatehouse run: the run's token %s could not be revoked; it expires in %lld s\n", claims.jti,
			(long long)ttl);
out:
	gh_proxy_stop(proxy);
	if (sp[0] >= 0 && !proxy)
		close(sp[0]);
	if (sp[1] >= 0)
		close(sp[1]);
	gh_audit_close(ra.log);
	if (ra.failures)
		fprintf(stderr, "gatehouse run: %u egress record(s) could not be written to the audit trail\n", ra.failures);
	pthread_mutex_destroy(&ra.mu);
	for (size_t i = 0; i < npassed; i++)
		free(passed[i]);
	sodium_memzero(tok, sizeof tok);
	sodium_memzero(buf_tok, sizeof buf_tok);
	return rc;
}
