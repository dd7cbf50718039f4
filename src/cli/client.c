/* cli: client verbs that talk to a running server over HTTP (libcurl). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "core/core.h"
#include "core/curl_dl.h"

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct cli_response *r = arg;
	return gh_buf_append(&r->body, p, size * n) ? 0 : size * n;
}

int cli_call(const char *verb, const char *method, const char *path, const char *body, struct cli_response *r)
{
	const char *base = getenv("GATEHOUSE_URL"), *tok = getenv("GATEHOUSE_TOKEN");
	if (!base || !*base)
		base = "http://127.0.0.1:8080";
	if (!tok || !*tok) {
		fprintf(stderr, "gatehouse %s: set GATEHOUSE_TOKEN to a token (gatehouse token issue)\n", verb);
		return 2;
	}
	if (strlen(tok) > GH_TOKEN_MAX_BYTES || strpbrk(tok, "\r\n")) {
		fprintf(stderr, "gatehouse %s: GATEHOUSE_TOKEN is not a token\n", verb);
		return 2;
	}
	struct gh_buf url, auth;
	gh_buf_init(&url, 8192);
	gh_buf_init(&auth, GH_TOKEN_MAX_BYTES + 64);
	size_t bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		bl--;
	gh_buf_append(&url, base, bl);
	gh_buf_puts(&url, path);
	gh_buf_printf(&auth, "Authorization: Bearer %s", tok);
	gh_buf_init(&r->body, GH_CLIENT_MAX_RESPONSE);
	struct gh_error lerr;
	if (gh_curl_load(&lerr)) {
		fprintf(stderr, "gatehouse %s: %s\n", verb, lerr.message);
		gh_buf_free(&url);
		gh_buf_free(&auth);
		return 1;
	}
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	int rc = 1;
	if (!h || !url.data || !auth.data)
		goto done;
	hdrs = curl_slist_append(hdrs, auth.data);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url.data);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		fprintf(stderr, "gatehouse %s: cannot reach %.*s: %s\n", verb, (int)bl, base, curl_easy_strerror(cc));
		goto done;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	rc = 0;
done:
	curl_slist_free_all(hdrs);
	if (h)
		curl_easy_cleanup(h);
	/* the header held the token: wipe it */
	if (auth.data)
		memset(auth.data, 0, auth.len);
	gh_buf_free(&auth);
	gh_buf_free(&url);
	return rc;
}

int cli_print_error(const char *verb, struct cli_response *r, json_t *doc)
{
	json_t *e = json_object_get(doc, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *rule = json_string_value(json_object_get(e, "rule"));
	fprintf(stderr, "gatehouse %s: %s (%ld %s)%s%s%s\n", verb, msg ? msg : "request failed", r->status,
		code ? code : "error", rule ? " [rule " : "", rule ? rule : "", rule ? "]" : "");
	if (r->status == 400 || r->status == 404 || r->status == 413)
		return 2;
	return 1;
}

/* Display width of UTF-8 text: code points, not bytes (wide characters count as one). */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++;
	return w;
}

static void print_cell(const char *sep, const char *cell, size_t w, bool right)
{
	size_t pad = w > width(cell) ? w - width(cell) : 0;
	printf("%s", sep);
	if (right)
		printf("%*s", (int)pad, "");
	printf("%s", cell);
	if (!right)
		printf("%*s", (int)pad, "");
}

static void cell_text(json_t *v, char *out, size_t n)
{
	if (json_is_string(v))
		snprintf(out, n, "%s", json_string_value(v));
	else if (json_is_null(v))
		snprintf(out, n, "NULL");
	else {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		snprintf(out, n, "%s", s ? s : "?");
		free(s);
	}
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
}

/* Prints columns and rows as an aligned table (cells cut at 200 bytes). */
static void print_table(json_t *cols, json_t *rows)
{
	size_t nc = json_array_size(cols), nr = json_array_size(rows);
	size_t *w = calloc(nc ? nc : 1, sizeof *w);
	char cell[201];
	if (!w)
		return;
	for (size_t j = 0; j < nc; j++) {
		cell_text(json_array_get(cols, j), cell, sizeof cell);
		w[j] = width(cell);
	}
	for (size_t i = 0; i < nr; i++)
		for (size_t j = 0; j < nc; j++) {
			cell_text(json_array_get(json_array_get(rows, i), j), cell, sizeof cell);
			if (width(cell) > w[j])
				w[j] = width(cell);
		}
	for (size_t j = 0; j < nc; j++) {
		cell_text(json_array_get(cols, j), cell, sizeof cell);
		print_cell(j ? " | " : "", cell, w[j], false);
	}
	printf("\n");
	for (size_t j = 0; j < nc; j++) {
		printf("%s", j ? "-+-" : "");
		for (size_t k = 0; k < w[j]; k++)
			putchar('-');
	}
	printf("\n");
	for (size_t i = 0; i < nr; i++) {
		for (size_t j = 0; j < nc; j++) {
			json_t *v = json_array_get(json_array_get(rows, i), j);
			cell_text(v, cell, sizeof cell);
			print_cell(j ? " | " : "", cell, w[j], json_is_number(v));
		}
		printf("\n");
	}
	free(w);
}

/* Shows a successful result document: rows, rows affected, or a pending approval. */
static void print_result(json_t *doc)
{
	json_t *cols = json_object_get(doc, "columns"), *rows = json_object_get(doc, "rows");
	json_t *appr = json_object_get(doc, "approval"), *aff = json_object_get(doc, "rows_affected");
	if (json_is_object(appr)) {
		const char *id = json_string_value(json_object_get(appr, "id"));
		const char *st = json_string_value(json_object_get(appr, "status"));
		if (st && strcmp(st, "pending") == 0)
			printf("pending approval %s: a reviewer who is not you must approve it "
			       "(gatehouse approvals approve %s)\n", id ? id : "?", id ? id : "ID");
		else
			printf("approval %s: %s\n", id ? id : "?", st ? st : "?");
	}
	if (json_is_array(cols)) {
		print_table(cols, rows);
		long long n = json_integer_value(json_object_get(doc, "row_count"));
		printf("(%lld row%s%s)\n", n, n == 1 ? "" : "s",
		       json_is_true(json_object_get(doc, "truncated")) ? ", truncated" : "");
	}
	if (json_is_integer(aff))
		printf("%lld row%s affected\n", (long long)json_integer_value(aff), json_integer_value(aff) == 1 ? "" : "s");
}

/* Common tail: parse, print as JSON or human text, map status to exit code. */
static int finish_call(const char *verb, struct cli_response *r, bool as_json, void (*human)(json_t *))
{
	json_error_t je;
	json_t *doc = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &je);
	int rc;
	if (!doc) {
		fprintf(stderr, "gatehouse %s: the server answered %ld with a body that is not JSON\n", verb, r->status);
		rc = 1;
	} else if (r->status >= 200 && r->status < 300) {
		if (as_json) {
			fwrite(r->body.data, 1, r->body.len, stdout);
			printf("\n");
		} else {
			human(doc);
		}
		rc = 0;
	} else {
		if (as_json) {
			fwrite(r->body.data, 1, r->body.len, stdout);
			printf("\n");
		}
		rc = cli_print_error(verb, r, doc);
	}
	json_decref(doc);
	gh_buf_free(&r->body);
	return rc;
}

/* A command-line parameter: integers and decimals bind as numbers, everything else as text. */
static json_t *param_value(const char *s)
{
	int64_t i;
	if (gh_parse_int(s, INT64_MIN, INT64_MAX, &i) == 0)
		return json_integer(i);
	char *end = NULL;
	double d = strtod(s, &end);
	if (*s && end && !*end && strspn(s, "0123456789.-+eE") == strlen(s))
		return json_real(d);
	return json_string(s);
}

int gh_cli_query(int argc, char **argv)
{
	struct args_opt o[] = {{"resource", false, NULL}, {"env", false, NULL}, {"json", true, NULL}};
	struct args a = {o, 3, {0}, 0, false};
	if (!args_parse(&a, argc, argv, "query"))
		return 2;
	if (a.help) {
		cli_usage("query");
		return 0;
	}
	const char *res = args_get(&a, "resource"), *env = args_get(&a, "env");
	if (!res || !env || a.npos < 1)
		return cli_usage_error("query", "expected --resource R --env E SQL [PARAM...]");
	json_t *params = json_array();
	for (size_t i = 1; i < a.npos; i++)
		json_array_append_new(params, param_value(a.pos[i]));
	json_t *body = json_pack("{s:s,s:s,s:s,s:o}", "resource", res, "environment", env, "sql", a.pos[0], "params", params);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text)
		return cli_usage_error("query", "arguments are not valid UTF-8 text");
	struct cli_response r = {0};
	int rc = cli_call("query", "POST", "/v1/query", text, &r);
	free(text);
	if (rc)
		return rc;
	return finish_call("query", &r, args_get(&a, "json") != NULL, print_result);
}

static void print_approval(json_t *ap)
{
	const char *keys[] = {"id", "status", "requester", "app", "resource", "environment", "statement",
			      "created_at", "expires_at", "decided_by"};
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
		json_t *v = json_object_get(ap, keys[i]);
		if (json_is_string(v))
			printf("%-12s %s\n", keys[i], json_string_value(v));
	}
	json_t *p = json_object_get(ap, "params");
	if (json_array_size(p)) {
		char *s = json_dumps(p, JSON_COMPACT);
		printf("%-12s %s\n", "params", s ? s : "?");
		free(s);
	}
}

static void print_approvals(json_t *doc)
{
	json_t *list = json_object_get(doc, "approvals");
	if (json_is_array(list)) {
		size_t i;
		json_t *ap;
		if (json_array_size(list) == 0)
			printf("no approvals visible to you in this environment\n");
		json_array_foreach(list, i, ap) {
			if (i)
				printf("\n");
			print_approval(ap);
		}
		return;
	}
	json_t *ap = json_object_get(doc, "approval");
	if (json_is_object(ap) && !json_object_get(doc, "rows") && !json_object_get(doc, "rows_affected") &&
	    json_object_get(ap, "requester")) {
		print_approval(ap);
		return;
	}
	print_result(doc);
}

int gh_cli_approvals(int argc, char **argv)
{
	struct args_opt o[] = {{"json", true, NULL}};
	struct args a = {o, 1, {0}, 0, false};
	if (!args_parse(&a, argc, argv, "approvals"))
		return 2;
	if (a.help) {
		cli_usage("approvals");
		return 0;
	}
	bool json = args_get(&a, "json") != NULL;
	struct cli_response r = {0};
	int rc;
	char path[200];
	if (a.npos == 1 && strcmp(a.pos[0], "list") == 0) {
		rc = cli_call("approvals", "GET", "/v1/approvals", NULL, &r);
	} else if (a.npos == 2 && (strcmp(a.pos[0], "get") == 0 || strcmp(a.pos[0], "approve") == 0 ||
				   strcmp(a.pos[0], "reject") == 0)) {
		const char *id = a.pos[1];
		if (strlen(id) > 64 || strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(id))
			return cli_usage_error("approvals", "'%.64s' is not an approval id", id);
		if (strcmp(a.pos[0], "get") == 0) {
			snprintf(path, sizeof path, "/v1/approvals/%s", id);
			rc = cli_call("approvals", "GET", path, NULL, &r);
		} else {
			snprintf(path, sizeof path, "/v1/approvals/%s/%s", id, a.pos[0]);
			rc = cli_call("approvals", "POST", path, "", &r);
		}
	} else {
		return cli_usage_error("approvals", "expected list, get ID, approve ID or reject ID");
	}
	if (rc)
		return rc;
	return finish_call("approvals", &r, json, print_approvals);
}

int cli_answer_error(const char *verb, struct cli_response *r)
{
	json_error_t je;
	json_t *doc = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &je);
	int rc;
	if (!doc) {
		fprintf(stderr, "gatehouse %s: the server answered %ld with a body that is not JSON\n", verb, r->status);
		rc = 1;
	} else {
		rc = cli_print_error(verb, r, doc);
	}
	json_decref(doc);
	gh_buf_free(&r->body);
	return rc;
}

int cli_url_encode(struct gh_buf *b, const char *z)
{
	int rc = 0;
	for (const unsigned char *p = (const unsigned char *)z; *p && !rc; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    *p == '_' || *p == '.' || *p == '~')
			rc = gh_buf_append(b, p, 1);
		else
			rc = gh_buf_printf(b, "%%%02X", *p);
	}
	return rc;
}

int gh_cli_schema(int argc, char **argv)
{
	struct args_opt o[] = {{"resource", false, NULL}, {"env", false, NULL}, {"format", false, NULL}};
	struct args a = {o, 3, {0}, 0, false};
	if (!args_parse(&a, argc, argv, "schema"))
		return 2;
	if (a.help) {
		cli_usage("schema");
		return 0;
	}
	const char *res = args_get(&a, "resource"), *env = args_get(&a, "env"), *fmt = args_get(&a, "format");
	if (!res || !env || a.npos)
		return cli_usage_error("schema", "expected --resource R --env E [--format json|text]");
	if (!fmt)
		fmt = "text";
	if (strcmp(fmt, "json") != 0 && strcmp(fmt, "text") != 0)
		return cli_usage_error("schema", "--format must be json or text");
	struct gh_buf path;
	gh_buf_init(&path, 4096);
	if (gh_buf_puts(&path, "/v1/schema?resource=") || cli_url_encode(&path, res) ||
	    gh_buf_puts(&path, "&environment=") || cli_url_encode(&path, env) || gh_buf_printf(&path, "&format=%s", fmt)) {
		gh_buf_free(&path);
		return cli_usage_error("schema", "resource and environment names are too long");
	}
	struct cli_response r = {0};
	int rc = cli_call("schema", "GET", path.data, NULL, &r);
	gh_buf_free(&path);
	if (rc)
		return rc;
	if (r.status == 200) {
		/* the document as the server wrote it: JSON, or the text block for a model's context */
		fwrite(r.body.data ? r.body.data : "", 1, r.body.len, stdout);
		if (strcmp(fmt, "json") == 0)
			printf("\n");
		gh_buf_free(&r.body);
		return 0;
	}
	rc = cli_answer_error("schema", &r);
	return rc;
}
