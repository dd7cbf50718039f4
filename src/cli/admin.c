/* cli: `gatehouse admin` — remote administration through a running server (GATEHOUSE_URL,
 * GATEHOUSE_TOKEN of a user in the policy's admins): the policy, secrets, tokens, users.
 * Exit status: 0 done, 1 refused or failed (401, 403, 409, 422 no_admin, 5xx, unreachable),
 * 2 usage or input error (bad arguments, 400, 404, 413, an invalid policy). */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "config/config.h"
#include "core/core.h"
#include "vault/vault.h"

#define VERB "admin"

/* Prints an invalid policy's error as FILE:LINE:COLUMN: ... (the server calls the document
 * "policy"); other errors as the client verbs do. Returns the exit status. */
static int show_error(struct cli_response *r, json_t *doc, const char *file)
{
	json_t *e = json_object_get(doc, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	if (file && code && msg && strcmp(code, "invalid_policy") == 0) {
		if (strncmp(msg, "policy:", 7) == 0)
			fprintf(stderr, "gatehouse %s: %s:%s (nothing was applied)\n", VERB, file, msg + 7);
		else
			fprintf(stderr, "gatehouse %s: %s: %s (nothing was applied)\n", VERB, file, msg);
		return 2;
	}
	return cli_print_error(VERB, r, doc);
}

/* Sends the request and parses the answer: 0 with *out the 2xx document (json_decref it);
 * otherwise the exit status after printing why. With as_json the body is printed as it came. */
static int request(const char *method, const char *path, const char *body, bool as_json, const char *file,
		   json_t **out)
{
	struct cli_response r = {0};
	*out = NULL;
	int rc = cli_call(VERB, method, path, body, &r);
	if (rc)
		return rc;
	json_error_t je;
	json_t *doc = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, &je);
	if (as_json && r.body.data) {
		fwrite(r.body.data, 1, r.body.len, stdout);
		printf("\n");
	}
	if (!doc) {
		fprintf(stderr, "gatehouse %s: the server answered %ld with a body that is not JSON\n", VERB, r.status);
		rc = 1;
	} else if (r.status < 200 || r.status >= 300) {
		rc = show_error(&r, doc, file);
		json_decref(doc);
	} else {
		*out = doc;
	}
	if (r.body.data) /* it may hold a token just issued */
		sodium_memzero(r.body.data, r.body.len);
	gh_buf_free(&r.body);
	return rc;
}

static void print_names(const char *title, json_t *list, const char *mark)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) {
		if (json_is_string(v))
			printf("  %s %s %s\n", mark, title, json_string_value(v));
	}
}

/* Prints the difference of PUT /v1/config as lines: "+ grant ...", "- user ...", "~ grant ...". */
static void print_diff(json_t *d)
{
	json_t *g = json_object_get(d, "grants");
	print_names("grant", json_object_get(g, "added"), "+");
	print_names("grant", json_object_get(g, "removed"), "-");
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(g, "changed"), i, c) {
		printf("  ~ grant %s: %s -> %s\n", json_string_value(json_object_get(c, "grant")),
		       json_string_value(json_object_get(c, "from")), json_string_value(json_object_get(c, "to")));
	}
	static const char *const sections[][2] = {{"users", "user"},	     {"groups", "group"},
						  {"admins", "admins group"}, {"environments", "environment"},
						  {"resources", "resource"}, {"apps", "app"}};
	for (size_t k = 0; k < sizeof sections / sizeof *sections; k++) {
		json_t *s = json_object_get(d, sections[k][0]);
		print_names(sections[k][1], json_object_get(s, "added"), "+");
		print_names(sections[k][1], json_object_get(s, "removed"), "-");
	}
	json_t *u = json_object_get(d, "users");
	print_names("disabled user", json_object_get(u, "disabled"), "~");
	print_names("enabled user", json_object_get(u, "enabled"), "~");
	json_array_foreach(json_object_get(json_object_get(d, "groups"), "changed"), i, c) {
		const char *name = json_string_value(json_object_get(c, "group"));
		json_t *m = json_object_get(c, "members");
		size_t j;
		json_t *v;
		json_array_foreach(json_object_get(m, "added"), j, v)
			printf("  + member %s of group %s\n", json_string_value(v), name ? name : "?");
		json_array_foreach(json_object_get(m, "removed"), j, v)
			printf("  - member %s of group %s\n", json_string_value(v), name ? name : "?");
	}
}

static int config_get(struct args *a)
{
	if (a->npos != 2)
		return cli_usage_error(VERB, "expected config get");
	bool js = args_get(a, "json") != NULL;
	json_t *doc = NULL;
	int rc = request("GET", "/v1/config", NULL, js, NULL, &doc);
	if (!rc && !js) {
		const char *p = json_string_value(json_object_get(doc, "policy"));
		fputs(p ? p : "", stdout);
		fprintf(stderr, "policy version %lld\n", (long long)json_integer_value(json_object_get(doc, "version")));
	}
	json_decref(doc);
	return rc;
}

static int config_put(struct args *a)
{
	if (a->npos != 3)
		return cli_usage_error(VERB, "expected config put FILE [--dry-run] [--expect-version N]");
	const char *file = a->pos[2], *ev = args_get(a, "expect-version");
	bool dry = args_get(a, "dry-run") != NULL, js = args_get(a, "json") != NULL;
	int64_t expected = -1;
	if (ev && gh_parse_int(ev, 0, INT64_MAX, &expected))
		return cli_usage_error(VERB, "--expect-version: expected a version number, got '%.32s'", ev);
	char *text = NULL;
	size_t len = 0;
	struct gh_error err;
	if (gh_read_file(file, GH_POLICY_MAX_BYTES, &text, &len, &err)) {
		fprintf(stderr, "gatehouse %s: %s\n", VERB, err.message);
		return 2;
	}
	json_t *body = json_object();
	json_t *pol = json_stringn(text, len);
	free(text);
	if (!pol) {
		json_decref(body);
		fprintf(stderr, "gatehouse %s: %s is not UTF-8 text\n", VERB, file);
		return 2;
	}
	json_object_set_new(body, "policy", pol);
	json_object_set_new(body, "dry_run", json_boolean(dry));
	if (expected >= 0)
		json_object_set_new(body, "expected_version", json_integer(expected));
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!s) {
		fprintf(stderr, "gatehouse %s: out of memory\n", VERB);
		return 1;
	}
	json_t *doc = NULL;
	int rc = request("PUT", "/v1/config", s, js, file, &doc);
	free(s);
	if (!rc && !js) {
		long long v = json_integer_value(json_object_get(doc, "version"));
		long long prev = json_integer_value(json_object_get(doc, "previous_version"));
		bool changed = json_is_true(json_object_get(doc, "changed"));
		print_diff(json_object_get(doc, "diff"));
		if (dry)
			printf("dry run: %s; nothing was applied (policy version %lld)\n",
			       changed ? "the changes above would be applied" : "the policy would not change", prev);
		else if (changed)
			printf("applied %s as policy version %lld (was %lld)\n", file, v, prev);
		else
			printf("%s is the policy already applied (version %lld); nothing changed\n", file, v);
	}
	json_decref(doc);
	return rc;
}

/* secret set NAME: the value comes from stdin only, into guarded memory; one trailing newline
 * is dropped (as `gatehouse secret set` does); it is never printed. */
static int secret_set(struct args *a)
{
	if (a->npos != 3 || strcmp(a->pos[1], "set") != 0)
		return cli_usage_error(VERB, "expected secret set NAME (the value is read from stdin)");
	const char *name = a->pos[2];
	if (!gh_config_valid_name(name, false))
		return cli_usage_error(VERB, "NAME: expected 1 to %d of A-Z a-z 0-9 _ -", GH_NAME_MAX);
	/* the value and its JSON body ({"value":"…"}, at most 6 bytes per escaped byte) */
	size_t cap = GH_VAULT_SECRET_MAX + 2, bodycap = 6 * (size_t)GH_VAULT_SECRET_MAX + 32;
	uint8_t *val = sodium_malloc(cap);
	char *body = sodium_malloc(bodycap);
	int rc = 0;
	size_t n = 0;
	if (!val || !body) {
		rc = 1;
		fprintf(stderr, "gatehouse %s: out of memory\n", VERB);
		goto done;
	}
	for (;;) {
		size_t got = fread(val + n, 1, GH_VAULT_SECRET_MAX + 1 - n, stdin);
		n += got;
		if (got == 0 || n > GH_VAULT_SECRET_MAX)
			break;
	}
	if (ferror(stdin)) {
		rc = 1;
		fprintf(stderr, "gatehouse %s: cannot read the value from stdin\n", VERB);
		goto done;
	}
	if (n > GH_VAULT_SECRET_MAX) {
		rc = 2;
		fprintf(stderr, "gatehouse %s: the value is longer than %d bytes\n", VERB, GH_VAULT_SECRET_MAX);
		goto done;
	}
	if (n && val[n - 1] == '\n')
		n--;
	if (n && val[n - 1] == '\r')
		n--;
	if (n == 0) {
		rc = 2;
		fprintf(stderr, "gatehouse %s: the value on stdin is empty\n", VERB);
		goto done;
	}
	size_t o = 0;
	memcpy(body, "{\"value\":\"", 10);
	o = 10;
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = val[i];
		if (ch == '"' || ch == '\\') {
			body[o++] = '\\';
			body[o++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			static const char hex[] = "0123456789abcdef";
			memcpy(body + o, "\\u00", 4);
			body[o + 4] = hex[ch >> 4];
			body[o + 5] = hex[ch & 15];
			o += 6;
		} else {
			body[o++] = (char)ch;
		}
	}
	memcpy(body + o, "\"}", 3);
	char path[GH_NAME_MAX + 32];
	snprintf(path, sizeof path, "/v1/secrets/%s", name);
	json_t *doc = NULL;
	rc = request("PUT", path, body, args_get(a, "json") != NULL, NULL, &doc);
	if (!rc && !args_get(a, "json"))
		printf("secret %s set (version %lld)\n", name,
		       (long long)json_integer_value(json_object_get(doc, "version")));
	json_decref(doc);
done:
	if (val)
		sodium_free(val); /* zeroes before releasing */
	if (body)
		sodium_free(body);
	return rc;
}

static int token_issue(struct args *a)
{
	const char *user = args_get(a, "user"), *env = args_get(a, "env"), *app = args_get(a, "app");
	const char *ttls = args_get(a, "ttl");
	if (a->npos != 2 || !user || !env)
		return cli_usage_error(VERB, "expected token issue --user U --env E [--app A] [--ttl 15m]");
	int64_t ttl = GH_TOKEN_DEFAULT_TTL;
	if (ttls && (gh_parse_duration(ttls, &ttl) || ttl <= 0 || ttl > GH_TOKEN_MAX_TTL))
		return cli_usage_error(VERB, "--ttl: expected a duration from 1s to 24h (e.g. 15m), got '%.32s'", ttls);
	json_t *body = json_pack("{s:s,s:s,s:I}", "user", user, "environment", env, "ttl", (json_int_t)ttl);
	if (body && app)
		json_object_set_new(body, "app", json_string(app));
	char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!s)
		return cli_usage_error(VERB, "arguments are not valid UTF-8 text");
	json_t *doc = NULL;
	int rc = request("POST", "/v1/tokens", s, args_get(a, "json") != NULL, NULL, &doc);
	free(s);
	if (!rc && !args_get(a, "json")) {
		const char *tok = json_string_value(json_object_get(doc, "token"));
		printf("%s\n", tok ? tok : "");
		char when[32];
		gh_time_rfc3339(json_integer_value(json_object_get(doc, "expires_at")) * 1000, when, sizeof when);
		fprintf(stderr, "token id %s for %s in %s%s%s, expires %s\n",
			json_string_value(json_object_get(doc, "id")), user, env, app ? " via app " : "", app ? app : "",
			when);
	}
	json_t *t = json_object_get(doc, "token");
	if (json_is_string(t)) /* the token's only copy in this process besides stdout's buffer */
		sodium_memzero((void *)(uintptr_t)json_string_value(t), json_string_length(t));
	json_decref(doc);
	return rc;
}

static int token_revoke(struct args *a)
{
	if (a->npos != 3)
		return cli_usage_error(VERB, "expected token revoke ID");
	const char *id = a->pos[2];
	size_t n = strlen(id);
	if (n < 5 || n > 63 || strncmp(id, "tok_", 4) != 0 || strspn(id + 4, "0123456789abcdef") != n - 4)
		return cli_usage_error(VERB, "'%.64s' is not a token id (tok_ followed by hex digits)", id);
	char path[96];
	snprintf(path, sizeof path, "/v1/tokens/%s", id);
	json_t *doc = NULL;
	int rc = request("DELETE", path, NULL, args_get(a, "json") != NULL, NULL, &doc);
	if (!rc && !args_get(a, "json"))
		printf("%s %s\n", json_is_true(json_object_get(doc, "already_revoked")) ? "already revoked:" : "revoked", id);
	json_decref(doc);
	return rc;
}

static int user_standing(struct args *a)
{
	if (a->npos != 3 || (strcmp(a->pos[1], "disable") != 0 && strcmp(a->pos[1], "enable") != 0))
		return cli_usage_error(VERB, "expected user disable NAME or user enable NAME");
	const char *name = a->pos[2];
	if (!gh_config_valid_name(name, true))
		return cli_usage_error(VERB, "NAME: expected 1 to %d of A-Z a-z 0-9 _ - . @", GH_NAME_MAX);
	char path[GH_NAME_MAX + 32];
	snprintf(path, sizeof path, "/v1/users/%s/%s", name, a->pos[1]);
	json_t *doc = NULL;
	int rc = request("POST", path, "", args_get(a, "json") != NULL, NULL, &doc);
	if (!rc && !args_get(a, "json")) {
		bool changed = json_is_true(json_object_get(doc, "changed"));
		long long v = json_integer_value(json_object_get(doc, "version"));
		if (changed)
			printf("user %s %sd (policy version %lld)\n", name, a->pos[1], v);
		else
			printf("user %s was already %sd (policy version %lld unchanged)\n", name, a->pos[1], v);
	}
	json_decref(doc);
	return rc;
}

/* Refuses options that the sub-verb does not take (allowed: space-separated names). */
static bool only(const struct args *a, const char *allowed)
{
	for (size_t i = 0; i < a->nopts; i++) {
		const char *name = a->opts[i].name, *p = allowed;
		size_t n = strlen(name);
		bool ok = false;
		if (!a->opts[i].value)
			continue;
		while (!ok && (p = strstr(p, name)) != NULL) {
			ok = (p == allowed || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0');
			p += n;
		}
		if (!ok) {
			cli_usage_error(VERB, "option --%s does not apply to '%s %s'", name, a->pos[0],
					a->npos > 1 ? a->pos[1] : "");
			return false;
		}
	}
	return true;
}

int gh_cli_admin(int argc, char **argv)
{
	struct args_opt o[] = {{"json", true, NULL},	 {"dry-run", true, NULL}, {"expect-version", false, NULL},
			       {"user", false, NULL},	 {"env", false, NULL},	   {"app", false, NULL},
			       {"ttl", false, NULL}};
	struct args a = {o, 7, {0}, 0, false};
	if (!args_parse(&a, argc, argv, VERB))
		return 2;
	if (a.help) {
		cli_usage(VERB);
		return 0;
	}
	const char *what = a.npos ? a.pos[0] : "", *how = a.npos > 1 ? a.pos[1] : "";
	if (strcmp(what, "config") == 0 && strcmp(how, "get") == 0)
		return only(&a, "json") ? config_get(&a) : 2;
	if (strcmp(what, "config") == 0 && strcmp(how, "put") == 0)
		return only(&a, "json dry-run expect-version") ? config_put(&a) : 2;
	if (strcmp(what, "secret") == 0)
		return only(&a, "json") ? secret_set(&a) : 2;
	if (strcmp(what, "token") == 0 && strcmp(how, "issue") == 0)
		return only(&a, "json user env app ttl") ? token_issue(&a) : 2;
	if (strcmp(what, "token") == 0 && strcmp(how, "revoke") == 0)
		return only(&a, "json") ? token_revoke(&a) : 2;
	if (strcmp(what, "user") == 0)
		return only(&a, "json") ? user_standing(&a) : 2;
	return cli_usage_error(VERB, "expected config get|put, secret set, token issue|revoke or user disable|enable");
}
