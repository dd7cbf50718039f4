/* cli: argument parsing and usage texts. */
#include "cli/args.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

bool args_parse(struct args *a, int argc, char **argv, const char *verb)
{
	bool opts_done = false;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		if (!opts_done && strcmp(s, "--") == 0) {
			opts_done = true;
			continue;
		}
		if (!opts_done && (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0)) {
			a->help = true;
			continue;
		}
		if (!opts_done && strncmp(s, "--", 2) == 0) {
			const char *name = s + 2, *eq = strchr(name, '=');
			size_t nl = eq ? (size_t)(eq - name) : strlen(name);
			struct args_opt *o = NULL;
			for (size_t k = 0; k < a->nopts; k++)
				if (strlen(a->opts[k].name) == nl && strncmp(a->opts[k].name, name, nl) == 0)
					o = &a->opts[k];
			if (!o) {
				cli_usage_error(verb, "unknown option '%s'", s);
				return false;
			}
			if (o->flag) {
				if (eq) {
					cli_usage_error(verb, "option --%s takes no value", o->name);
					return false;
				}
				o->value = "1";
			} else if (eq) {
				o->value = eq + 1;
			} else if (i + 1 < argc) {
				o->value = argv[++i];
			} else {
				cli_usage_error(verb, "option --%s needs a value", o->name);
				return false;
			}
			continue;
		}
		if (a->npos >= ARGS_MAX_POS) {
			cli_usage_error(verb, "too many arguments");
			return false;
		}
		a->pos[a->npos++] = s;
	}
	return true;
}

const char *args_get(const struct args *a, const char *name)
{
	for (size_t k = 0; k < a->nopts; k++)
		if (strcmp(a->opts[k].name, name) == 0)
			return a->opts[k].value;
	return NULL;
}

static const struct {
	const char *verb, *text;
} usages[] = {
	{"init", "gatehouse init --data DIR\n"
		 "  Creates DIR (mode 0700) with the store, a master key and a token signing key.\n"},
	{"apply", "gatehouse apply --data DIR FILE.yaml\n"
		  "  Validates the policy document and applies all of it atomically, or nothing.\n"},
	{"export", "gatehouse export --data DIR\n"
		   "  Prints the current policy as YAML that re-applies to the same state.\n"},
	{"token", "gatehouse token issue --data DIR --user U --env E [--app A] [--ttl 15m] [--json]\n"
		  "gatehouse token revoke --data DIR ID\n"
		  "  Issues a signed token (default 15 minutes, at most 24h) or revokes one by id.\n"},
	{"secret", "gatehouse secret set --data DIR NAME\n"
		   "  Stores a credential (for a postgres resource: a libpq connection string or URI) read\n"
		   "  from stdin, encrypted with the master key. Setting it again rotates it. It is never\n"
		   "  printed back: no verb or endpoint reads a secret.\n"},
	{"serve", "gatehouse serve --data DIR [--http 127.0.0.1:8080] [--workers N] [--max-body 1M]\n"
		  "                [--max-statement 100K] [--max-rows 10000] [--statement-timeout 30s]\n"
		  "                [--approval-ttl 24h] [--log-level debug|info|warn|error [--log-sensitive]]\n"
		  "                [--pg 127.0.0.1:6432 [--pg-tls-cert FILE --pg-tls-key FILE] [--pg-pool 8]\n"
		  "                 [--pg-max-packet 1M]] [--metrics 127.0.0.1:9090]\n"
		  "  Runs the HTTP API and, with --pg, the PostgreSQL wire front (dbname=RESOURCE.ENV,\n"
		  "  user=USER, password=TOKEN). Prints 'listening on http://ADDR:PORT' (then\n"
		  "  'listening on postgresql://ADDR:PORT', then 'listening on metrics http://ADDR:PORT')\n"
		  "  when ready; stops on SIGTERM/SIGINT. Logs are JSON lines on stderr; statements and\n"
		  "  parameters appear only with --log-level debug --log-sensitive. --metrics serves\n"
		  "  GET /metrics (Prometheus text) without a token on a listener of its own.\n"},
	{"audit", "gatehouse audit verify --data DIR\n"
		  "gatehouse audit verify --public-key FILE (--log PATH | --data DIR) [--checkpoints FILE]\n"
		  "gatehouse audit public-key --data DIR\n"
		  "  verify --data checks the hash chain of the audit trail, the head kept in the store and\n"
		  "  the signed checkpoints. With --public-key it needs nothing but a copy of the log and its\n"
		  "  checkpoints file (default: 'checkpoints' beside the log): the chain, every checkpoint's\n"
		  "  signature, and that the log matches them and reaches the last. public-key prints the\n"
		  "  checkpoint signing key (PEM) to hand to an auditor.\n"},
	{"readiness", "gatehouse readiness --data DIR [--format text|json] [--max-token-ttl 8h] [--max-own-group 5]\n"
		      "  Checks DIR against a production-readiness list (secrets, authentication,\n"
		      "  authorization, input limits, logging, dependency security, recovery) and prints\n"
		      "  each check with its reason and fix. Exit 1 if any check fails.\n"},
	{"backup", "gatehouse backup --data DIR OUT [--without-master-key]\n"
		   "  Writes an online, consistent backup of DIR (also while the server runs) to the new\n"
		   "  directory OUT: the store, the audit trail up to the store's audit head and the signed\n"
		   "  checkpoints ending with one of that record (signed now; needs the master key), the\n"
		   "  master key (unless --without-master-key: then keep it elsewhere; a restore needs it)\n"
		   "  and a manifest with each file's SHA-256. Audited as backup.create.\n"},
	{"restore", "gatehouse restore --data NEWDIR BACKUP [--master-key FILE]\n"
		    "  Verifies BACKUP (hashes, the audit chain against the store's head, the signed\n"
		    "  checkpoints up to it, that the master key opens the signing keys and every secret) and\n"
		    "  only then writes it to NEWDIR, which must be absent or empty. A damaged or tampered\n"
		    "  backup is refused (exit 1).\n"},
	{"scan", "gatehouse scan PATH [--format text|json|sarif] [--fail-on high] [--policy FILE | --data DIR]\n"
		 "                [--as USER] [--baseline FILE] [--no-deps] [--min-age 7d] [--registry URL]\n"
		 "                [--pypi-registry URL]\n"
		 "                [--max-file-size 1M] [--all] [--threads N] [--output FILE] [--color always|never]\n"
		 "                [--passes secrets,inject,refs,deps]\n"
		 "  Checks an app's source before it ships: hard-coded secrets, SQL built from strings,\n"
		 "  references to resources USER may not use (--policy/--data with --as), and dependencies\n"
		 "  too new to trust. Suppress one finding with a comment 'gatehouse:ignore RULE-ID reason'.\n"
		 "  Exit 0 clean, 1 findings at or above --fail-on, 2 usage or I/O error (also when a file\n"
		 "  could not be read or checked: the report names it).\n"},
	{"run", "gatehouse run --data DIR --app APP --env ENV --user USER [--dir APPDIR] [--memory 256M]\n"
		"              [--cpu-time 10s] [--timeout 30s] [--allow-origin https://host[:port]]...\n"
		"              [--env-pass NAME]... [--gateway 127.0.0.1:8080] -- COMMAND [ARGS...]\n"
		"  Runs an app's backend code in a sandbox (user, PID, mount, network, IPC, UTS and cgroup\n"
		"  namespaces; a minimal read-only root; seccomp; limits) whose only road out is the\n"
		"  gateway (GATEHOUSE_URL, with a fresh GATEHOUSE_TOKEN) and the allowed origins through\n"
		"  HTTP_PROXY. Egress is audited. Exit: the command's, 124 on timeout, 137 out of memory.\n"},
	{"query", "gatehouse query --resource R --env E [--json] SQL [PARAM...]\n"
		  "  Runs SQL through the server at GATEHOUSE_URL with GATEHOUSE_TOKEN. Parameters bind to ?\n"
		  "  (SQLite) or $1, $2, ... (PostgreSQL) placeholders (integers and decimals as numbers,\n"
		  "  everything else as text).\n"},
	{"schema", "gatehouse schema --resource R --env E [--format text|json]\n"
		   "  Shows the tables and columns you may read of R in E (GATEHOUSE_URL, GATEHOUSE_TOKEN):\n"
		   "  types, primary and foreign keys, comments. text (the default) is one line per table,\n"
		   "  meant to be pasted into a model's context; json is the API's document.\n"},
	{"approvals", "gatehouse approvals list [--json]\n"
		      "gatehouse approvals get ID [--json]\n"
		      "gatehouse approvals approve ID [--json]\n"
		      "gatehouse approvals reject ID [--json]\n"
		      "  Lists and decides pending writes (GATEHOUSE_URL, GATEHOUSE_TOKEN). Never your own.\n"},
	{"admin", "gatehouse admin config get [--json]\n"
		  "gatehouse admin config put FILE.yaml [--dry-run] [--expect-version N] [--json]\n"
		  "gatehouse admin secret set NAME             (value read from stdin, never from argv)\n"
		  "gatehouse admin token issue --user U --env E [--app A] [--ttl 15m] [--json]\n"
		  "gatehouse admin token revoke ID\n"
		  "gatehouse admin user disable NAME | user enable NAME\n"
		  "  Administers a running server (GATEHOUSE_URL; GATEHOUSE_TOKEN of a user in the policy's\n"
		  "  admins): every change is audited naming you. config put validates and applies the whole\n"
		  "  document or nothing and prints the difference in grants (--dry-run: only prints it);\n"
		  "  resource paths must be absolute. Exit 0 done, 1 refused or failed, 2 usage or input error.\n"},
	{"usage", "gatehouse usage [--data DIR] [--since 7d] [--until TIME] [--app A] [--user U]\n"
		  "                [--resource R] [--env E] [--top 10] [--limit 1000] [--format text|json]\n"
		  "  Usage from the audit trail per app, user, resource and environment: statements, rows,\n"
		  "  denials by rule, approvals and time to approve, top statements by fingerprint. With\n"
		  "  --data, from the data directory (everything); otherwise from the server at\n"
		  "  GATEHOUSE_URL (admins see everything, others their own usage and resources they own).\n"
		  "  TIME: a duration before now (7d, 24h, 30m) or RFC 3339 (2026-01-31T12:00:00Z).\n"},
};

void cli_usage(const char *verb)
{
	if (verb) {
		for (size_t i = 0; i < sizeof usages / sizeof *usages; i++)
			if (strcmp(usages[i].verb, verb) == 0) {
				fputs(usages[i].text, stdout);
				return;
			}
	}
	fputs("gatehouse: governed access to data for internal apps\n\n"
	      "Operator verbs act on a data directory (file access to it is the root of trust):\n", stdout);
	for (size_t i = 0; i < sizeof usages / sizeof *usages; i++) {
		if (strcmp(usages[i].verb, "query") == 0)
			fputs("\nClient verbs talk to a running server (GATEHOUSE_URL, GATEHOUSE_TOKEN):\n", stdout);
		fputs(usages[i].text, stdout);
	}
	fputs("\nExit status: 0 ok, 1 denied or failed, 2 usage or input error.\n"
	      "Run 'gatehouse VERB --help' for one verb.\n", stdout);
}

int cli_usage_error(const char *verb, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "gatehouse %s: ", verb ? verb : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see 'gatehouse %s --help')\n", verb ? verb : "");
	return 2;
}

int gh_cli_help(int argc, char **argv)
{
	cli_usage(argc > 1 ? argv[1] : NULL);
	return 0;
}
