/* cli: gatehouse usage — usage analytics, from a data directory (--data DIR: the operator sees
 * everything) or from a server (GATEHOUSE_URL, GATEHOUSE_TOKEN: GET /v1/usage, whose scope rules
 * apply). Both produce the same JSON document; --format text prints it as tables. */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "config/config.h"
#include "usage/usage.h"

/* Bytes of a report document the CLI accepts (a server answers far less). */
#define USAGE_DOC_MAX (256 * 1024 * 1024)

struct cell_table {
	size_t ncol, nrow; /* rows include the header */
	char **cells;      /* nrow * ncol, malloc'd strings */
	const bool *right;
};

static void table_add(struct cell_table *t, char **row)
{
	char **n = realloc(t->cells, (t->nrow + 1) * t->ncol * sizeof *n);
	if (!n) {
		for (size_t j = 0; j < t->ncol; j++)
			free(row[j]);
		return;
	}
	t->cells = n;
	memcpy(t->cells + t->nrow * t->ncol, row, t->ncol * sizeof *row);
	t->nrow++;
}

static size_t text_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++;
	return w;
}

/* Prints the table with columns padded to their widest cell, numbers on the right. */
static void table_print(struct cell_table *t, const char *indent)
{
	size_t *w = calloc(t->ncol, sizeof *w);
	if (!w)
		return;
	for (size_t i = 0; i < t->nrow; i++)
		for (size_t j = 0; j < t->ncol; j++)
			if (text_width(t->cells[i * t->ncol + j]) > w[j])
				w[j] = text_width(t->cells[i * t->ncol + j]);
	struct gh_buf line;
	gh_buf_init(&line, 1024 * 1024);
	for (size_t i = 0; i < t->nrow; i++) {
		gh_buf_reset(&line);
		gh_buf_puts(&line, indent);
		for (size_t j = 0; j < t->ncol; j++) {
			const char *c = t->cells[i * t->ncol + j];
			int pad = (int)(w[j] - text_width(c));
			if (t->right[j])
				gh_buf_printf(&line, "%*s%s", pad, "", c);
			else
				gh_buf_printf(&line, "%s%*s", c, pad, "");
			if (j + 1 < t->ncol)
				gh_buf_puts(&line, "  ");
		}
		while (line.len && line.data[line.len - 1] == ' ')
			line.len--;
		printf("%.*s\n", (int)line.len, line.data ? line.data : "");
	}
	gh_buf_free(&line);
	for (size_t i = 0; i < t->nrow * t->ncol; i++)
		free(t->cells[i]);
	free(t->cells);
	free(w);
}

/* A cell's text: strings as they are (control characters blanked), null as "-", numbers. */
static char *cell(json_t *v)
{
	char *s;
	if (json_is_string(v))
		s = gh_strdup(json_string_value(v));
	else if (json_is_integer(v)) {
		char b[32];
		snprintf(b, sizeof b, "%lld", (long long)json_integer_value(v));
		s = gh_strdup(b);
	} else if (json_is_real(v)) {
		char b[32];
		snprintf(b, sizeof b, "%.3f", json_real_value(v));
		s = gh_strdup(b);
	} else
		s = gh_strdup("-");
	for (char *p = s; p && *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	return s ? s : gh_strdup("");
}

static char *approvals_cell(json_t *a)
{
	char b[96];
	snprintf(b, sizeof b, "%lld/%lld/%lld", (long long)json_integer_value(json_object_get(a, "requested")),
		 (long long)json_integer_value(json_object_get(a, "approved")),
		 (long long)json_integer_value(json_object_get(a, "rejected")));
	return gh_strdup(b);
}

static char *denials_cell(json_t *d)
{
	struct gh_buf b;
	gh_buf_init(&b, 4096);
	const char *k;
	json_t *v;
	bool first = true;
	json_object_foreach(d, k, v) {
		gh_buf_printf(&b, "%s%s %lld", first ? "" : ", ", k, (long long)json_integer_value(v));
		first = false;
	}
	char *s = gh_strdup(b.data ? b.data : "");
	gh_buf_free(&b);
	return s;
}

static void print_text(json_t *doc)
{
	json_t *groups = json_object_get(doc, "groups"), *top = json_object_get(doc, "top_statements");
	printf("usage from %s to %s (hourly buckets)\n\n", json_string_value(json_object_get(doc, "since")),
	       json_string_value(json_object_get(doc, "until")));
	static const char *const head[] = {"app", "user", "resource", "environment", "queries", "rows", "written",
					   "errors", "denied", "approvals req/ok/rej", "avg approve s", "denials"};
	static const bool right[] = {false, false, false, false, true, true, true, true, true, true, true, false};
	struct cell_table t = {12, 0, NULL, right};
	char *row[12];
	for (size_t j = 0; j < 12; j++)
		row[j] = gh_strdup(head[j]);
	table_add(&t, row);
	size_t i;
	json_t *g;
	json_t *tot = json_object_get(doc, "totals");
	json_array_foreach(groups, i, g) {
		json_t *a = json_object_get(g, "approvals");
		const char *keys[] = {"app", "user", "resource", "environment", "queries", "rows", "rows_affected",
				      "errors", "denied"};
		for (size_t j = 0; j < 9; j++)
			row[j] = cell(json_object_get(g, keys[j]));
		row[9] = approvals_cell(a);
		row[10] = cell(json_object_get(a, "avg_time_to_approve_s"));
		row[11] = denials_cell(json_object_get(g, "denials"));
		table_add(&t, row);
	}
	if ((json_array_size(groups) > 1 || json_is_true(json_object_get(doc, "truncated"))) && json_is_object(tot)) {
		json_t *a = json_object_get(tot, "approvals");
		row[0] = gh_strdup("total");
		for (size_t j = 1; j < 4; j++)
			row[j] = gh_strdup("");
		const char *keys[] = {"queries", "rows", "rows_affected", "errors", "denied"};
		for (size_t j = 0; j < 5; j++)
			row[4 + j] = cell(json_object_get(tot, keys[j]));
		row[9] = approvals_cell(a);
		row[10] = cell(json_object_get(a, "avg_time_to_approve_s"));
		row[11] = denials_cell(json_object_get(tot, "denials"));
		table_add(&t, row);
	}
	if (json_array_size(groups) == 0)
		printf("no usage in this window that you may see\n");
	else
		table_print(&t, "");
	long long total = (long long)json_integer_value(json_object_get(doc, "groups_total"));
	if (json_is_true(json_object_get(doc, "truncated")))
		printf("(%lld of %lld groups listed, most queries first; the total row covers all; see --limit)\n",
		       (long long)json_array_size(groups), total);
	if (json_array_size(top)) {
		static const char *const th[] = {"count", "resource", "fingerprint", "example"};
		static const bool tr[] = {true, false, false, false};
		struct cell_table s = {4, 0, NULL, tr};
		char *r[4];
		for (size_t j = 0; j < 4; j++)
			r[j] = gh_strdup(th[j]);
		table_add(&s, r);
		json_t *x;
		json_array_foreach(top, i, x) {
			r[0] = cell(json_object_get(x, "count"));
			r[1] = cell(json_object_get(x, "resource"));
			r[2] = cell(json_object_get(x, "fingerprint"));
			r[3] = cell(json_object_get(x, "example"));
			if (r[3] && text_width(r[3]) > 120) {
				/* cut long examples for the terminal, at a character boundary */
				size_t k = 117;
				while (k > 0 && ((unsigned char)r[3][k] & 0xC0) == 0x80)
					k--;
				r[3][k] = '\0';
				char *longer = realloc(r[3], k + 4);
				if (longer) {
					memcpy(longer + k, "...", 4);
					r[3] = longer;
				}
			}
			table_add(&s, r);
		}
		printf("\ntop statements\n");
		table_print(&s, "");
	}
}

/* Appends "?name=v" or "&name=v", v percent-encoded; nothing when v is NULL. */
static void put_param(struct gh_buf *b, const char *name, const char *v)
{
	if (!v)
		return;
	gh_buf_printf(b, "%c%s=", strchr(b->data ? b->data : "", '?') ? '&' : '?', name);
	cli_url_encode(b, v);
}

static int local_report(const char *dir, const struct gh_usage_query *q, struct gh_buf *doc)
{
	char db[PATH_MAX];
	if (gh_path_join(db, sizeof db, dir, "gatehouse.db") || access(db, F_OK) != 0) {
		fprintf(stderr, "gatehouse usage: %s is not an initialised data directory\n", dir);
		return 2;
	}
	struct gh_usage *u = NULL;
	struct gh_usage_stats st;
	struct gh_error err;
	int rc = 0;
	if (gh_usage_open(dir, &u, &err) || gh_usage_catch_up(u, &st, &err)) {
		rc = 1;
	} else {
		gh_buf_puts(doc, "{\"scope\":{\"all\":true},");
		if (gh_usage_report(u, q, doc, NULL, &err) || gh_buf_puts(doc, "}"))
			rc = 1;
	}
	if (rc)
		fprintf(stderr, "gatehouse usage: %s\n", err.message);
	gh_usage_close(u);
	return rc;
}

int gh_cli_usage(int argc, char **argv)
{
	struct args_opt o[] = {{"data", false, NULL}, {"since", false, NULL},	 {"until", false, NULL},
			       {"app", false, NULL},  {"user", false, NULL},	 {"resource", false, NULL},
			       {"env", false, NULL},  {"top", false, NULL},	 {"format", false, NULL},
			       {"limit", false, NULL}};
	struct args a = {o, 10, {0}, 0, false};
	if (!args_parse(&a, argc, argv, "usage"))
		return 2;
	if (a.help) {
		cli_usage("usage");
		return 0;
	}
	if (a.npos)
		return cli_usage_error("usage", "unexpected argument '%.64s'", a.pos[0]);
	const char *format = args_get(&a, "format") ? args_get(&a, "format") : "text";
	if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0)
		return cli_usage_error("usage", "--format: expected text or json");
	int64_t now = gh_now_ms();
	struct gh_usage_query q = {.since_ms = now - 7LL * 86400 * 1000, .until_ms = now + 1, .top = 10, .all = true};
	const char *since = args_get(&a, "since"), *until = args_get(&a, "until"), *top = args_get(&a, "top");
	const char *limit = args_get(&a, "limit");
	if (since && gh_usage_parse_time(since, now, &q.since_ms))
		return cli_usage_error("usage", "--since: expected a duration (7d, 24h, 30m) or an RFC 3339 time");
	if (until && gh_usage_parse_time(until, now, &q.until_ms))
		return cli_usage_error("usage", "--until: expected a duration (7d, 24h, 30m) or an RFC 3339 time");
	if (q.since_ms >= q.until_ms)
		return cli_usage_error("usage", "--since must be before --until");
	int64_t n = q.top;
	if (top && gh_parse_int(top, 0, GH_USAGE_MAX_TOP, &n))
		return cli_usage_error("usage", "--top: expected 0 to %d", GH_USAGE_MAX_TOP);
	q.top = (int)n;
	if (limit && gh_parse_int(limit, 1, GH_USAGE_MAX_GROUPS, &n))
		return cli_usage_error("usage", "--limit: expected 1 to %d", GH_USAGE_MAX_GROUPS);
	q.limit = limit ? (int)n : 0;
	const char *names[] = {"app", "user", "resource", "env"};
	const char **dst[] = {&q.app, &q.user, &q.resource, &q.environment};
	for (int i = 0; i < 4; i++) {
		const char *v = args_get(&a, names[i]);
		if (v && !gh_config_valid_name(v, i == 1))
			return cli_usage_error("usage", "--%s: '%.64s' is not a name", names[i], v);
		*dst[i] = v;
	}
	struct gh_buf doc;
	gh_buf_init(&doc, USAGE_DOC_MAX);
	int rc;
	const char *dir = args_get(&a, "data");
	if (dir) {
		rc = local_report(dir, &q, &doc);
	} else {
		struct gh_buf path;
		gh_buf_init(&path, 4096);
		gh_buf_puts(&path, "/v1/usage");
		/* times go as given (the server reads them against its own clock) */
		put_param(&path, "since", since ? since : "7d");
		put_param(&path, "until", until);
		put_param(&path, "app", q.app);
		put_param(&path, "user", q.user);
		put_param(&path, "resource", q.resource);
		put_param(&path, "environment", q.environment);
		put_param(&path, "top", top);
		put_param(&path, "limit", limit);
		struct cli_response r = {0};
		gh_buf_free(&doc);
		rc = cli_call("usage", "GET", path.data ? path.data : "/v1/usage", NULL, &r);
		gh_buf_free(&path);
		if (!rc && r.status != 200)
			return cli_answer_error("usage", &r);
		if (!rc)
			doc = r.body;
	}
	if (rc) {
		gh_buf_free(&doc);
		return rc;
	}
	if (strcmp(format, "json") == 0) {
		fwrite(doc.data, 1, doc.len, stdout);
		putchar('\n');
	} else {
		json_error_t je;
		json_t *d = json_loadb(doc.data ? doc.data : "", doc.len, 0, &je);
		if (!d) {
			fprintf(stderr, "gatehouse usage: the report is not JSON\n");
			rc = 1;
		} else {
			print_text(d);
		}
		json_decref(d);
	}
	gh_buf_free(&doc);
	return rc;
}
