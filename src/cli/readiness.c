/* cli: `gatehouse readiness` — the production-readiness table of a data directory. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "readiness/readiness.h"

static void json_str(const char *s)
{
	struct gh_buf b;
	gh_buf_init(&b, 4096);
	gh_buf_json_string(&b, s, strlen(s));
	fwrite(b.data ? b.data : "\"\"", 1, b.data ? b.len : 2, stdout);
	gh_buf_free(&b);
}

int gh_cli_readiness(int argc, char **argv)
{
	struct args_opt o[] = {{"data", false, NULL},
			       {"format", false, NULL},
			       {"max-token-ttl", false, NULL},
			       {"max-own-group", false, NULL}};
	struct args a = {o, sizeof o / sizeof *o, {0}, 0, false};
	if (!args_parse(&a, argc, argv, "readiness"))
		return 2;
	if (a.help) {
		cli_usage("readiness");
		return 0;
	}
	const char *dir = args_get(&a, "data"), *fmt = args_get(&a, "format"), *v;
	if (!dir || a.npos)
		return cli_usage_error("readiness", "expected --data DIR");
	if (fmt && strcmp(fmt, "text") && strcmp(fmt, "json"))
		return cli_usage_error("readiness", "--format: expected text or json");
	struct gh_ready_opts ro = {.now = gh_now(), .max_token_lifetime = 8 * 3600, .max_own_group = 5};
	int64_t n;
	if ((v = args_get(&a, "max-token-ttl"))) {
		if (gh_parse_duration(v, &n) || n < 60 || n > 86400)
			return cli_usage_error("readiness", "--max-token-ttl: expected 1m to 24h");
		ro.max_token_lifetime = n;
	}
	if ((v = args_get(&a, "max-own-group"))) {
		if (gh_parse_int(v, 1, 10000, &n))
			return cli_usage_error("readiness", "--max-own-group: expected 1 to 10000");
		ro.max_own_group = (size_t)n;
	}
	struct gh_ready_check checks[GH_READY_MAX_CHECKS];
	size_t nc = 0;
	struct gh_error err;
	gh_error_clear(&err);
	if (gh_readiness_run(dir, &ro, checks, &nc, &err)) {
		fprintf(stderr, "gatehouse readiness: %s\n", err.message);
		return 2;
	}
	size_t fails = 0, warns = 0;
	for (size_t i = 0; i < nc; i++) {
		fails += checks[i].status == GH_READY_FAIL;
		warns += checks[i].status == GH_READY_WARN;
	}
	if (fmt && strcmp(fmt, "json") == 0) {
		printf("{\"ready\":%s,\"failed\":%zu,\"warnings\":%zu,\"checks\":[", fails ? "false" : "true", fails, warns);
		for (size_t i = 0; i < nc; i++) {
			printf("%s{\"id\":\"%s\",\"area\":\"%s\",\"result\":\"%s\",\"reason\":", i ? "," : "", checks[i].id,
			       checks[i].area, gh_ready_status_name(checks[i].status));
			json_str(checks[i].reason);
			printf(",\"fix\":");
			json_str(checks[i].fix);
			printf("}");
		}
		printf("]}\n");
	} else {
		printf("%-36s %-6s %s\n", "CHECK", "RESULT", "REASON / FIX");
		for (size_t i = 0; i < nc; i++) {
			const struct gh_ready_check *c = &checks[i];
			printf("%-36s %-6s %s\n", c->id, c->status == GH_READY_PASS ? "pass" : c->status == GH_READY_WARN ? "WARN" : "FAIL",
			       c->reason);
			if (c->fix[0])
				printf("%-36s %-6s fix: %s\n", "", "", c->fix);
		}
		printf("\n%zu checks: %zu passed, %zu warnings, %zu failed — %s\n", nc, nc - fails - warns, warns, fails,
		       fails ? "NOT READY for production" : "ready for production");
	}
	return fails ? 1 : 0;
}
