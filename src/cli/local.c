/* cli: operator verbs that act on the data directory directly. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/local.h"
#include "config/config.h"
#include "front/front.h"
#include "identity/identity.h"
#include "store/store.h"
#include "vault/vault.h"

static int fail(const char *verb, const char *msg)
{
	fprintf(stderr, "gatehouse %s: %s\n", verb, msg);
	return 1;
}

/* Identifies the operator in audit records: file access to the data directory is the
 * authority, so the record names the local account. */
static void local_client(char *out, size_t n)
{
	snprintf(out, n, "local:uid=%u", (unsigned)getuid());
}

static int open_store(const char *verb, const char *datadir, struct gh_store **st)
{
	char path[PATH_MAX];
	struct gh_error err;
	if (gh_path_join(path, sizeof path, datadir, "gatehouse.db"))
		return fail(verb, "data directory path too long");
	if (access(path, F_OK) != 0) {
		fprintf(stderr, "gatehouse %s: %s is not an initialised data directory (run gatehouse init --data %s)\n",
			verb, datadir, datadir);
		return 2;
	}
	if (gh_store_open(path, true, st, &err))
		return fail(verb, err.message);
	return 0;
}

/* Appends operator events r[0..n-1] to the audit trail in one durable write, through log when
 * given (else the trail is opened for it); they share one request id. The operation fails if
 * they cannot be written. */
static int audit_events(const char *verb, const char *datadir, struct gh_audit *log, struct gh_audit_record *r,
			size_t n)
{
	struct gh_audit *a = log;
	struct gh_error err;
	char client[64], rid[48];
	local_client(client, sizeof client);
	gh_random_id("req", 8, rid, sizeof rid);
	for (size_t i = 0; i < n; i++) {
		r[i].time_ms = gh_now_ms();
		r[i].client = client;
		r[i].rows = -1;
		r[i].duration_ms = -1;
		r[i].request_id = rid;
	}
	if ((!a && gh_audit_open(datadir, &a, &err)) || gh_audit_append_n(a, r, n, NULL, &err)) {
		if (!log)
			gh_audit_close(a);
		fprintf(stderr, "gatehouse %s: audit trail unavailable, nothing was changed: %s\n", verb, err.message);
		return 1;
	}
	if (!log)
		gh_audit_close(a);
	return 0;
}

static int audit_event(const char *verb, const char *datadir, struct gh_audit_record *r)
{
	return audit_events(verb, datadir, NULL, r, 1);
}

int gh_cli_init(int argc, char **argv)
{
	struct args_opt o[] = {{"data", false, NULL}};
	struct args a = {o, 1, {0}, 0, false};
	if (!args_parse(&a, argc, argv, "init"))
		return 2;
	if (a.help) {
		cli_usage("init");
		return 0;
	}
	const char *dir = args_get(&a, "data");
	if (!dir || a.npos)
		return cli_usage_error("init", "expected --data DIR");
	char db[PATH_MAX], key[PATH_MAX];
	struct gh_error err;
	if (gh_path_join(db, sizeof db, dir, "gatehouse.db") || gh_path_join(key, sizeof key, dir, "master.key"))
		return fail("init", "path too long");
	bool made_dir = false;
	if (mkdir(dir, 0700) == 0) {
		made_dir = true;
	} else if (errno != EEXIST) {
		fprintf(stderr, "gatehouse init: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	if (access(db, F_OK) == 0 || access(key, F_OK) == 0) {
		fprintf(stderr, "gatehouse init: %s is already initialised; nothing was changed\n", dir);
		return 1;
	}
	chmod(dir, 0700);
	uint8_t master[GH_VAULT_KEY_BYTES];
	struct gh_store *st = NULL;
	int rc = gh_vault_master_create(dir, &err);
	if (!rc)
		rc = gh_store_create(db, &err);
	if (!rc)
		rc = gh_store_open(db, true, &st, &err);
	if (!rc)
		rc = gh_vault_master_load(dir, master, &err);
	if (!rc) {
		rc = gh_identity_keygen(st, master, &err);
		if (!rc) { /* the audit checkpoint key, made now rather than at first need */
			struct gh_audit_key ck;
			rc = gh_audit_key_load(st, master, true, &ck, &err);
			gh_audit_key_wipe(&ck);
		}
		gh_vault_wipe(master, sizeof master);
	}
	gh_store_close(st);
	if (!rc) {
		struct gh_audit_record r = {.event = "data.init", .status = "ok"};
		rc = audit_event("init", dir, &r);
	}
	if (rc) {
		/* nothing half-made stays behind */
		char p[PATH_MAX + 16];
		gh_unlink_sqlite(db);
		unlink(key);
		snprintf(p, sizeof p, "%s/audit/audit.log", dir);
		unlink(p);
		snprintf(p, sizeof p, "%s/audit", dir);
		rmdir(p);
		if (made_dir)
			rmdir(dir);
		if (err.message[0])
			fprintf(stderr, "gatehouse init: %s\n", err.message);
		return 1;
	}
	printf("initialised %s\n", dir);
	return 0;
}

/* An audit sink's API key names a vault secret: one that is not there is an error now rather
 * than a sink that fails later. Returns 0, or 2 (1 when the store cannot say) after printing
 * FILE:LINE:COLUMN and why. */
static int check_sink_secrets(const char *file, const char *dir, const struct gh_policy *p, struct gh_store *st)
{
	struct gh_error err;
	gh_error_clear(&err);
	int rc = gh_audit_sinks_check(&p->audit, st, file, &err);
	if (rc == GH_ENOTFOUND) {
		fprintf(stderr, "gatehouse apply: %s with: gatehouse secret set --data %s NAME\nnothing was applied\n",
			err.message, dir);
		return 2;
	}
	return rc ? fail("apply", "cannot read the vault; nothing was applied") : 0;
}

int gh_cli_apply(int argc, char **argv)
{
	struct args_opt o[] = {{"data", false, NULL}};
	struct args a = {o, 1, {0}, 0, false};
	if (!args_parse(&a, argc, argv, "apply"))
		return 2;
	if (a.help) {
		cli_usage("apply");
		return 0;
	}
	const char *dir = args_get(&a, "data");
	if (!dir || a.npos != 1)
		return cli_usage_error("apply", "expected --data DIR FILE.yaml");
	const char *file = a.pos[0];
	char *text = NULL, real[PATH_MAX], base[PATH_MAX];
	size_t len = 0;
	struct gh_error err;
	gh_error_clear(&err);
	if (gh_read_file(file, GH_POLICY_MAX_BYTES, &text, &len, &err)) {
		fprintf(stderr, "gatehouse apply: %s\n", err.message);
		return 2;
	}
	if (!realpath(file, real)) {
		free(text);
		fprintf(stderr, "gatehouse apply: %s: %s\n", file, strerror(errno));
		return 2;
	}
	snprintf(base, sizeof base, "%s", dirname(real));
	struct gh_policy *p = NULL;
	if (gh_config_parse(text, len, file, base, &p, &err)) {
		free(text);
		fprintf(stderr, "gatehouse apply: %s\n", err.message);
		return 2;
	}
	free(text);
	struct gh_buf doc;
	gh_buf_init(&doc, GH_POLICY_MAX_BYTES * 4);
	struct gh_store *st = NULL;
	int rc = gh_config_export(p, &doc) ? fail("apply", "policy too large to store") : 0;
	if (!rc)
		rc = open_store("apply", dir, &st);
	if (!rc)
		rc = check_sink_secrets(file, dir, p, st);
	gh_config_unref(p);
	int64_t version = 0;
	if (!rc) {
		char *old = NULL;
		int64_t cur = 0;
		gh_store_policy_load(st, &old, &cur);
		free(old);
		uint8_t h[32];
		char hex[65], detail[200];
		crypto_hash_sha256(h, (const uint8_t *)doc.data, doc.len);
		gh_hex_encode(h, 32, hex);
		snprintf(detail, sizeof detail, "{\"version\":%lld,\"sha256\":\"%s\"}", (long long)cur + 1, hex);
		/* record, then act: the apply is refused if it cannot be recorded */
		struct gh_audit_record r = {.event = "policy.apply", .status = "ok", .decision = "allow",
					    .rule = "local-operator", .detail_json = detail};
		rc = audit_event("apply", dir, &r);
	}
	if (!rc && gh_store_policy_save(st, doc.data, doc.len, &version))
		rc = fail("apply", "the store refused the policy; nothing was applied");
	gh_store_close(st);
	gh_buf_free(&doc);
	if (!rc)
		printf("applied %s as policy version %lld\n", file, (long long)version);
	return rc;
}

int gh_cli_export(int argc, char **argv)
{
	struct args_opt o[] = {{"data", false, NULL}};
	struct args a = {o, 1, {0}, 0, false};
	if (!args_parse(&a, argc, argv, "export"))
		return 2;
	if (a.help) {
		cli_usage("export");
		return 0;
	}
	const char *dir = args_get(&a, "data");
	if (!dir || a.npos)
		return cli_usage_error("export", "expected --data DIR");
	struct gh_store *st = NULL;
	int rc = open_store("export", dir, &st);
	if (rc)
		return rc;
	char *doc = NULL;
	int64_t version = 0;
	rc = gh_store_policy_load(st, &doc, &version);
	gh_store_close(st);
	if (rc)
		return fail("export", "cannot read the policy from the store");
	if (!doc)
		return fail("export", "no policy has been applied yet");
	fputs(doc, stdout);
	free(doc);
	return 0;
}

static int load_policy(const char *verb, struct gh_store *st, struct gh_policy **p)
{
	char *doc = NULL;
	int64_t version = 0;
	struct gh_error err;
	if (gh_store_policy_load(st, &doc, &version) || !doc) {
		free(doc);
		return fail(verb, "no policy has been applied yet (gatehouse apply)");
	}
	int rc = gh_config_parse(doc, strlen(doc), "stored policy", NULL, p, &err);
	free(doc);
	return rc ? fail(verb, err.message) : 0;
}

/* Issues a token for user in env (via app, or ad hoc) after checking them against the applied
 * policy; records it in the store and the audit trail. Returns 0, or the exit status after
 * printing why as "gatehouse VERB: ...". */
int cli_issue_token(const char *verb, const char *dir, struct gh_audit *log, const char *user, const char *env,
		    const char *app, int64_t ttl, struct gh_audit_record *also, size_t nalso, char *tok, size_t toklen,
		    struct gh_claims *claims)
{
	struct gh_store *st = NULL;
	struct gh_policy *p = NULL;
	int rc = open_store(verb, dir, &st);
	if (rc)
		return rc;
	if ((rc = load_policy(verb, st, &p))) {
		gh_store_close(st);
		return rc;
	}
	char msg[300] = "";
	if (gh_config_token_subject(p, user, env, app, msg, sizeof msg)) {
		gh_config_unref(p);
		gh_store_close(st);
		fprintf(stderr, "gatehouse %s: %s\n", verb, msg);
		return 2;
	}
	uint8_t master[GH_VAULT_KEY_BYTES];
	struct gh_signer signer;
	struct gh_error err;
	gh_error_clear(&err);
	rc = gh_vault_master_load(dir, master, &err);
	if (!rc) {
		rc = gh_identity_signer_load(st, master, &signer, &err);
		gh_vault_wipe(master, sizeof master);
	}
	int64_t now = gh_now();
	if (!rc) {
		rc = gh_token_issue(&signer, user, env, app, ttl, now, tok, toklen, claims, &err);
		gh_identity_signer_wipe(&signer);
	}
	if (!rc) {
		char detail[300], groups[1] = "";
		snprintf(detail, sizeof detail, "{\"token_id\":\"%s\",\"expires_at\":%lld}", claims->jti,
			 (long long)claims->exp);
		struct gh_audit_record r[1 + CLI_MAX_ALSO] = {
			{.event = "token.issue", .user = user, .groups = groups, .app = app, .environment = env,
			 .status = "ok", .decision = "allow", .rule = "local-operator", .detail_json = detail}};
		for (size_t i = 0; i < nalso && i < CLI_MAX_ALSO; i++)
			r[1 + i] = also[i];
		rc = audit_events(verb, dir, log, r, 1 + (nalso < CLI_MAX_ALSO ? nalso : CLI_MAX_ALSO));
	}
	if (!rc && gh_store_token_add(st, claims->jti, user, env, app, claims->iat, claims->exp))
		rc = fail(verb, "cannot record the token in the store");
	gh_config_unref(p);
	gh_store_close(st);
	if (rc) {
		sodium_memzero(tok, toklen);
		if (err.message[0] && rc != 1)
			fprintf(stderr, "gatehouse %s: %s\n", verb, err.message);
		return 1;
	}
	return 0;
}

int cli_audit_event(const char *verb, const char *dir, struct gh_audit *log, struct gh_audit_record *r)
{
	return audit_events(verb, dir, log, r, 1);
}

int cli_revoke_token(const char *dir, const char *id)
{
	char path[PATH_MAX];
	struct gh_store *st = NULL;
	struct gh_error err;
	if (gh_path_join(path, sizeof path, dir, "gatehouse.db") || gh_store_open(path, true, &st, &err))
		return 1;
	int rc = gh_store_token_revoke(st, id, gh_now());
	gh_store_close(st);
	return rc;
}

static int token_issue(struct args *a)
{
	const char *dir = args_get(a, "data"), *user = args_get(a, "user"), *env = args_get(a, "env");
	const char *app = args_get(a, "app"), *ttls = args_get(a, "ttl");
	if (!dir || !user || !env || a->npos != 1)
		return cli_usage_error("token", "expected issue --data DIR --user U --env E [--app A] [--ttl 15m]");
	int64_t ttl = GH_TOKEN_DEFAULT_TTL;
	if (ttls && (gh_parse_duration(ttls, &ttl) || ttl <= 0 || ttl > GH_TOKEN_MAX_TTL))
		return cli_usage_error("token", "--ttl: expected a duration from 1s to 24h (e.g. 15m), got '%s'", ttls);
	struct gh_claims claims;
	char tok[GH_TOKEN_MAX_BYTES];
	int rc = cli_issue_token("token", dir, NULL, user, env, app, ttl, NULL, 0, tok, sizeof tok, &claims);
	if (rc)
		return rc;
	if (args_get(a, "json")) {
		printf("{\"token\":\"%s\",\"id\":\"%s\",\"user\":\"%s\",\"environment\":\"%s\",\"expires_at\":%lld}\n",
		       tok, claims.jti, user, env, (long long)claims.exp);
	} else {
		printf("%s\n", tok);
		char when[32];
		gh_time_rfc3339(claims.exp * 1000, when, sizeof when);
		fprintf(stderr, "token id %s for %s in %s%s%s, expires %s\n", claims.jti, user, env, app ? " via app " : "",
			app ? app : "", when);
	}
	sodium_memzero(tok, sizeof tok);
	return 0;
}

static int token_revoke(struct args *a)
{
	const char *dir = args_get(a, "data");
	if (!dir || a->npos != 2)
		return cli_usage_error("token", "expected revoke --data DIR ID");
	const char *id = a->pos[1];
	struct gh_store *st = NULL;
	int rc = open_store("token", dir, &st);
	if (rc)
		return rc;
	char detail[200];
	snprintf(detail, sizeof detail, "{\"token_id\":\"%.64s\"}", id);
	for (char *q = detail; *q; q++)
		if (*q == '\\' || (unsigned char)*q < 0x20)
			*q = '?';
	struct gh_audit_record r = {.event = "token.revoke", .status = "ok", .decision = "allow",
				    .rule = "local-operator", .detail_json = detail};
	rc = gh_store_token_revoke(st, id, gh_now());
	if (rc == GH_ENOTFOUND) {
		gh_store_close(st);
		fprintf(stderr, "gatehouse token: no token with id '%.64s'\n", id);
		return 2;
	}
	if (rc == GH_EEXIST) {
		gh_store_close(st);
		fprintf(stderr, "gatehouse token: token '%.64s' is already revoked\n", id);
		return 0;
	}
	if (rc) {
		gh_store_close(st);
		return fail("token", "the store refused the revocation");
	}
	gh_store_close(st);
	/* A revocation that cannot be recorded still stands: refusing access is the safe side. */
	if (audit_event("token", dir, &r))
		return 1;
	printf("revoked %s\n", id);
	return 0;
}

int gh_cli_token(int argc, char **argv)
{
	struct args_opt o[] = {{"data", false, NULL}, {"user", false, NULL}, {"env", false, NULL},
			       {"app", false, NULL},  {"ttl", false, NULL},  {"json", true, NULL}};
	struct args a = {o, 6, {0}, 0, false};
	if (!args_parse(&a, argc, argv, "token"))
		return 2;
	if (a.help) {
		cli_usage("token");
		return 0;
	}
	if (a.npos >= 1 && strcmp(a.pos[0], "issue") == 0)
		return token_issue(&a);
	if (a.npos >= 1 && strcmp(a.pos[0], "revoke") == 0)
		return token_revoke(&a);
	return cli_usage_error("token", "expected 'issue' or 'revoke'");
}

int gh_cli_serve(int argc, char **argv)
{
	struct args_opt o[] = {{"data", false, NULL},	       {"http", false, NULL},
			       {"workers", false, NULL},       {"max-body", false, NULL},
			       {"max-statement", false, NULL}, {"max-rows", false, NULL},
			       {"statement-timeout", false, NULL}, {"approval-ttl", false, NULL},
			       {"log-level", false, NULL},     {"pg", false, NULL},
			       {"pg-tls-cert", false, NULL},   {"pg-tls-key", false, NULL},
			       {"pg-pool", false, NULL},       {"pg-max-packet", false, NULL},
			       {"metrics", false, NULL},       {"log-sensitive", true, NULL}};
	struct args a = {o, sizeof o / sizeof o[0], {0}, 0, false};
	if (!args_parse(&a, argc, argv, "serve"))
		return 2;
	if (a.help) {
		cli_usage("serve");
		return 0;
	}
	struct gh_server_opts so;
	gh_server_opts_default(&so);
	so.datadir = args_get(&a, "data");
	if (!so.datadir || a.npos)
		return cli_usage_error("serve", "expected --data DIR");
	const char *v;
	int64_t n;
	if ((v = args_get(&a, "http")))
		so.http_addr = v;
	if ((v = args_get(&a, "workers"))) {
		if (gh_parse_int(v, 1, 256, &n))
			return cli_usage_error("serve", "--workers: expected 1 to 256");
		so.workers = (int)n;
	}
	if ((v = args_get(&a, "max-body"))) {
		if (gh_parse_size(v, &n) || n < 1024 || n > 64 * 1024 * 1024)
			return cli_usage_error("serve", "--max-body: expected a size from 1K to 64M");
		so.max_body = n;
	}
	if ((v = args_get(&a, "max-statement"))) {
		if (gh_parse_size(v, &n) || n < 16 || n > 16 * 1024 * 1024)
			return cli_usage_error("serve", "--max-statement: expected a size from 16 to 16M");
		so.max_statement = n;
	}
	if ((v = args_get(&a, "max-rows"))) {
		if (gh_parse_int(v, 1, 10000000, &n))
			return cli_usage_error("serve", "--max-rows: expected 1 to 10000000");
		so.max_rows = n;
	}
	if ((v = args_get(&a, "statement-timeout"))) {
		if (gh_parse_duration(v, &n) || n < 1 || n > 3600)
			return cli_usage_error("serve", "--statement-timeout: expected 1s to 1h");
		so.statement_ms = n * 1000;
	}
	if ((v = args_get(&a, "approval-ttl"))) {
		if (gh_parse_duration(v, &n) || n < 1 || n > GH_MAX_APPROVAL_TTL)
			return cli_usage_error("serve", "--approval-ttl: expected 1s to 30d");
		so.approval_ttl = n;
	}
	so.pg_addr = args_get(&a, "pg");
	so.pg_tls_cert = args_get(&a, "pg-tls-cert");
	so.pg_tls_key = args_get(&a, "pg-tls-key");
	if ((so.pg_tls_cert || so.pg_tls_key) && !so.pg_addr)
		return cli_usage_error("serve", "--pg-tls-cert/--pg-tls-key need --pg ADDR");
	if ((v = args_get(&a, "pg-pool"))) {
		if (gh_parse_int(v, 1, 1000, &n))
			return cli_usage_error("serve", "--pg-pool: expected 1 to 1000");
		so.pg_pool = (int)n;
	}
	if ((v = args_get(&a, "pg-max-packet"))) {
		if (gh_parse_size(v, &n) || n < 4096 || n > 64 * 1024 * 1024)
			return cli_usage_error("serve", "--pg-max-packet: expected a size from 4K to 64M");
		so.pg_max_packet = n;
	}
	if ((v = args_get(&a, "log-level"))) {
		if (strcmp(v, "debug") == 0) gh_log_set_level(GH_LOG_DEBUG);
		else if (strcmp(v, "info") == 0) gh_log_set_level(GH_LOG_INFO);
		else if (strcmp(v, "warn") == 0) gh_log_set_level(GH_LOG_WARN);
		else if (strcmp(v, "error") == 0) gh_log_set_level(GH_LOG_ERROR);
		else return cli_usage_error("serve", "--log-level: expected debug, info, warn or error");
	}
	/* Statements and parameters reach the log only when the operator asks twice. */
	if (args_get(&a, "log-sensitive")) {
		if (!gh_log_enabled(GH_LOG_DEBUG))
			return cli_usage_error("serve", "--log-sensitive needs --log-level debug");
		gh_log_set_sensitive(true);
	}
	so.metrics_addr = args_get(&a, "metrics");
	char db[PATH_MAX];
	if (gh_path_join(db, sizeof db, so.datadir, "gatehouse.db") || access(db, F_OK) != 0) {
		fprintf(stderr, "gatehouse serve: %s is not an initialised data directory\n", so.datadir);
		return 2;
	}
	struct gh_error err;
	gh_error_clear(&err);
	if (gh_server_run(&so, &err)) {
		/* the server's stderr is JSON lines, its last words included */
		gh_log_kv(GH_LOG_ERROR, "gatehouse serve: cannot run", "error", err.message, NULL);
		return 1;
	}
	return 0;
}

/* Prints a verification's outcome; returns the exit status. */
static int audit_report(const struct gh_audit_report *rep, bool public_key)
{
	if (rep->ok) {
		if (!public_key) {
			printf("ok: %lld records\n", (long long)rep->records);
			return 0;
		}
		printf("ok: %lld records; %lld signed checkpoints, the last at seq %lld", (long long)rep->records,
		       (long long)rep->checkpoints, (long long)rep->last_checkpoint);
		if (rep->records > rep->last_checkpoint)
			printf(" (the %lld records after it are chained but not signed yet)",
			       (long long)(rep->records - rep->last_checkpoint));
		printf("\n");
		return 0;
	}
	if (rep->bad_checkpoint_line > 0)
		printf("FAILED at checkpoints line %lld: %s\n", (long long)rep->bad_checkpoint_line, rep->reason);
	else if (rep->bad_line <= 0)
		printf("FAILED: %s\n", rep->reason);
	else if (rep->bad_seq >= 0)
		printf("FAILED at line %lld (seq %lld): %s\n", (long long)rep->bad_line, (long long)rep->bad_seq, rep->reason);
	else
		printf("FAILED at line %lld: %s\n", (long long)rep->bad_line, rep->reason);
	printf("%lld records verified before it", (long long)rep->records);
	if (public_key && rep->checkpoints)
		printf(", %lld checkpoints (the last at seq %lld)", (long long)rep->checkpoints,
		       (long long)rep->last_checkpoint);
	printf("\n");
	return 1;
}

/* audit verify --public-key FILE (--log PATH | --data DIR) [--checkpoints FILE]: a copy of the
 * log checked against the signed checkpoints, reading nothing else (no store, no master key). */
static int audit_verify_public(const struct args *a)
{
	const char *keyfile = args_get(a, "public-key"), *dir = args_get(a, "data"), *log = args_get(a, "log");
	const char *ck = args_get(a, "checkpoints");
	char logpath[PATH_MAX], ckpath[PATH_MAX];
	if (!dir == !log)
		return cli_usage_error("audit", "verify --public-key FILE needs one of --log PATH or --data DIR");
	if (dir) {
		if (snprintf(logpath, sizeof logpath, "%s/audit/audit.log", dir) >= (int)sizeof logpath)
			return fail("audit", "path too long");
		log = logpath;
	}
	if (!ck) {
		char tmp[PATH_MAX];
		snprintf(tmp, sizeof tmp, "%s", log);
		if (snprintf(ckpath, sizeof ckpath, "%s/checkpoints", dirname(tmp)) >= (int)sizeof ckpath)
			return fail("audit", "path too long");
		ck = ckpath;
	}
	char *text = NULL;
	size_t len = 0;
	uint8_t pk[32];
	struct gh_error err;
	gh_error_clear(&err);
	if (gh_read_file(keyfile, 4096, &text, &len, &err)) {
		fprintf(stderr, "gatehouse audit: %s\n", err.message);
		return 2;
	}
	int rc = gh_audit_pubkey_parse((const uint8_t *)text, len, pk);
	free(text);
	if (rc) {
		fprintf(stderr, "gatehouse audit: %s: not an Ed25519 public key in PEM (as 'gatehouse audit public-key' "
			"prints it)\n", keyfile);
		return 2;
	}
	if (access(log, R_OK) != 0) {
		fprintf(stderr, "gatehouse audit: %s: %s\n", log, strerror(errno));
		return 2;
	}
	struct gh_audit_report rep;
	if (gh_audit_verify_public(log, ck, pk, &rep, &err))
		return fail("audit", err.message);
	return audit_report(&rep, true);
}

/* audit public-key --data DIR: the checkpoint key's public half (made on first need). */
static int audit_public_key(const struct args *a)
{
	const char *dir = args_get(a, "data");
	if (!dir)
		return cli_usage_error("audit", "expected public-key --data DIR");
	struct gh_store *st = NULL;
	int rc = open_store("audit", dir, &st);
	if (rc)
		return rc;
	uint8_t pk[32];
	struct gh_error err;
	gh_error_clear(&err);
	rc = gh_audit_key_public(st, pk);
	if (rc == GH_ENOTFOUND) { /* a data directory made before checkpoints existed */
		uint8_t master[GH_VAULT_KEY_BYTES];
		struct gh_audit_key ck;
		rc = gh_vault_master_load(dir, master, &err);
		if (!rc) {
			rc = gh_audit_key_load(st, master, true, &ck, &err);
			gh_vault_wipe(master, sizeof master);
			memcpy(pk, ck.pk, sizeof pk);
			gh_audit_key_wipe(&ck);
		}
	} else if (rc) {
		gh_error_set(&err, rc, "cannot read the audit checkpoint key from the store");
	}
	gh_store_close(st);
	if (rc)
		return fail("audit", err.message);
	struct gh_buf pem;
	gh_buf_init(&pem, 1024);
	if (gh_audit_pubkey_pem(pk, &pem)) {
		gh_buf_free(&pem);
		return fail("audit", "out of memory");
	}
	fputs(pem.data, stdout);
	gh_buf_free(&pem);
	return 0;
}

int gh_cli_audit(int argc, char **argv)
{
	struct args_opt o[] = {{"data", false, NULL}, {"public-key", false, NULL}, {"log", false, NULL},
			       {"checkpoints", false, NULL}};
	struct args a = {o, 4, {0}, 0, false};
	if (!args_parse(&a, argc, argv, "audit"))
		return 2;
	if (a.help) {
		cli_usage("audit");
		return 0;
	}
	const char *dir = args_get(&a, "data");
	if (a.npos == 1 && strcmp(a.pos[0], "public-key") == 0) {
		if (args_get(&a, "public-key") || args_get(&a, "log") || args_get(&a, "checkpoints"))
			return cli_usage_error("audit", "public-key takes only --data DIR");
		return audit_public_key(&a);
	}
	if (a.npos != 1 || strcmp(a.pos[0], "verify") != 0)
		return cli_usage_error("audit", "expected verify --data DIR, verify --public-key FILE (--log PATH | "
				       "--data DIR), or public-key --data DIR");
	if (args_get(&a, "public-key"))
		return audit_verify_public(&a);
	if (!dir || args_get(&a, "log") || args_get(&a, "checkpoints"))
		return cli_usage_error("audit", "expected verify --data DIR (a copy of the log alone: verify "
				       "--public-key FILE --log PATH)");
	char db[PATH_MAX];
	if (gh_path_join(db, sizeof db, dir, "gatehouse.db") || access(db, F_OK) != 0) {
		fprintf(stderr, "gatehouse audit: %s is not an initialised data directory\n", dir);
		return 2;
	}
	struct gh_audit_report rep;
	struct gh_error err;
	if (gh_audit_verify(dir, &rep, &err))
		return fail("audit", err.message);
	return audit_report(&rep, false);
}

/* secret set: the value comes from stdin only (argv and the environment are visible to other
 * processes and shells' history). One trailing newline (from echo or a here-string) is
 * dropped; the value is never printed. */
int gh_cli_secret(int argc, char **argv)
{
	struct args_opt o[] = {{"data", false, NULL}};
	struct args a = {o, 1, {0}, 0, false};
	if (!args_parse(&a, argc, argv, "secret"))
		return 2;
	if (a.help) {
		cli_usage("secret");
		return 0;
	}
	const char *dir = args_get(&a, "data");
	if (!dir || a.npos != 2 || strcmp(a.pos[0], "set") != 0)
		return cli_usage_error("secret", "expected set --data DIR NAME (the value is read from stdin)");
	const char *name = a.pos[1];
	if (!gh_config_valid_name(name, false))
		return cli_usage_error("secret", "NAME: expected 1 to %d of A-Z a-z 0-9 _ -", GH_NAME_MAX);
	uint8_t *val = sodium_malloc(GH_VAULT_SECRET_MAX + 2);
	if (!val)
		return fail("secret", "out of memory");
	size_t n = 0;
	for (;;) {
		size_t got = fread(val + n, 1, GH_VAULT_SECRET_MAX + 1 - n, stdin);
		n += got;
		if (got == 0 || n > GH_VAULT_SECRET_MAX)
			break;
	}
	int rc = 0;
	if (ferror(stdin))
		rc = fail("secret", "cannot read the value from stdin");
	else if (n > GH_VAULT_SECRET_MAX)
		rc = fail("secret", "the value is longer than 16 KiB"), rc = 2;
	if (!rc && n && val[n - 1] == '\n')
		n--;
	if (!rc && n && val[n - 1] == '\r')
		n--;
	if (!rc && n == 0)
		rc = 2, fprintf(stderr, "gatehouse secret: the value on stdin is empty\n");
	struct gh_store *st = NULL;
	if (!rc)
		rc = open_store("secret", dir, &st);
	uint8_t master[GH_VAULT_KEY_BYTES];
	struct gh_error err;
	int64_t version = 0;
	if (!rc && gh_vault_master_load(dir, master, &err))
		rc = fail("secret", err.message);
	else if (!rc) {
		if (gh_vault_secret_set(st, master, name, val, n, &version))
			rc = fail("secret", "the store refused the secret; nothing was changed");
		gh_vault_wipe(master, sizeof master);
	}
	sodium_free(val);
	gh_store_close(st);
	if (rc)
		return rc;
	char detail[GH_NAME_MAX + 64];
	snprintf(detail, sizeof detail, "{\"secret\":\"%s\",\"version\":%lld}", name, (long long)version);
	struct gh_audit_record r = {.event = "secret.set", .status = "ok", .decision = "allow",
				    .rule = "local-operator", .detail_json = detail};
	/* Like a revocation, a stored secret stands even if its record cannot be written: the
	 * failure is reported and the exit status says so. */
	if (audit_event("secret", dir, &r))
		return 1;
	printf("secret %s set (version %lld)\n", name, (long long)version);
	return 0;
}
