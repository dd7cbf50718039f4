/* front: GET /v1/schema?resource=R&environment=E[&format=json|text] — the tables and columns
 * the caller may read of one resource in one environment, from the resource's own catalog, as
 * JSON or as a compact text block for a model's context. Nothing about other resources or
 * environments, connection strings, paths or secrets: the listing holds catalog names, types,
 * keys and comments only. Refused like a query: a token for another environment (403
 * token-environment), no grant on the resource there (403 no-grant). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector/connector.h"
#include "front/api_handlers.h"
#include "front/server_int.h"
#include "policy/policy.h"
#include "sql/sql.h"

/* The caller and place a listing is for, asked by the connector about each table and column. */
struct who {
	const struct gh_policy *p;
	const char *user, *resource, *environment;
};

static bool visible(void *arg, const char *table, const char *column)
{
	const struct who *w = arg;
	if (!column)
		return gh_policy_table_level(w->p, w->user, w->resource, w->environment, table) != GH_ACCESS_NONE;
	return gh_policy_column_visible(w->p, w->user, w->resource, w->environment, table, column);
}

/* A refusal: the error document with its rule, which the record names as well. */
static void refuse(struct gh_api_req *req, struct gh_api_resp *resp, int status, const char *code, const char *rule,
		   const char *message)
{
	resp->status = status;
	resp->content_type = NULL;
	snprintf(resp->rule, sizeof resp->rule, "%s", rule);
	gh_buf_reset(resp->body);
	gh_buf_puts(resp->body, "{\"error\":{\"code\":");
	gh_buf_json_string(resp->body, code, strlen(code));
	gh_buf_puts(resp->body, ",\"message\":");
	gh_buf_json_string(resp->body, message, strlen(message));
	gh_buf_puts(resp->body, ",\"rule\":");
	gh_buf_json_string(resp->body, rule, strlen(rule));
	gh_buf_printf(resp->body, ",\"request_id\":\"%s\"}}", req->request_id);
}

/* ---- JSON ---- */

static int json_str_or_null(struct gh_buf *b, const char *z)
{
	return z ? gh_buf_json_string(b, z, strlen(z)) : gh_buf_puts(b, "null");
}

static int json_names(struct gh_buf *b, char *const *v, size_t n)
{
	int rc = gh_buf_puts(b, "[");
	for (size_t i = 0; i < n && !rc; i++)
		rc = (i ? gh_buf_puts(b, ",") : 0) || gh_buf_json_string(b, v[i], strlen(v[i]));
	return rc ? rc : gh_buf_puts(b, "]");
}

static int json_table(struct gh_buf *b, const struct gh_schema_table *t)
{
	int rc = gh_buf_puts(b, "{\"name\":");
	rc |= gh_buf_json_string(b, t->name, strlen(t->name));
	rc |= gh_buf_printf(b, ",\"kind\":\"%s\",\"comment\":", t->kind);
	rc |= json_str_or_null(b, t->comment);
	rc |= gh_buf_puts(b, ",\"columns\":[");
	for (size_t i = 0; i < t->ncolumns; i++) {
		const struct gh_schema_column *c = &t->columns[i];
		rc |= gh_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		rc |= gh_buf_json_string(b, c->name, strlen(c->name));
		rc |= gh_buf_puts(b, ",\"type\":");
		rc |= json_str_or_null(b, c->type);
		rc |= gh_buf_printf(b, ",\"nullable\":%s,\"primary_key\":%s,\"comment\":", c->nullable ? "true" : "false",
				    c->primary_key ? "true" : "false");
		rc |= json_str_or_null(b, c->comment);
		rc |= gh_buf_puts(b, "}");
	}
	rc |= gh_buf_puts(b, "],\"foreign_keys\":[");
	for (size_t i = 0; i < t->nfks; i++) {
		const struct gh_schema_fk *f = &t->fks[i];
		rc |= gh_buf_puts(b, i ? ",{\"columns\":" : "{\"columns\":");
		rc |= json_names(b, f->columns, f->ncolumns);
		rc |= gh_buf_puts(b, ",\"references\":{\"table\":");
		rc |= gh_buf_json_string(b, f->ref_table, strlen(f->ref_table));
		rc |= gh_buf_puts(b, ",\"columns\":");
		rc |= json_names(b, f->ref_columns, f->ncolumns);
		rc |= gh_buf_puts(b, "}}");
	}
	rc |= gh_buf_puts(b, "]}");
	return rc ? GH_ETOOBIG : 0;
}

/* ---- text ---- */

/* An identifier as SQL would need it written: bare when it is a plain lower-case-safe name,
 * else double-quoted with quotes doubled. A PostgreSQL "schema.table" is written part by part. */
static int text_ident(struct gh_buf *b, const char *z, bool qualified)
{
	const char *dot = qualified ? strchr(z, '.') : NULL;
	if (dot) {
		char *schema = gh_strndup(z, (size_t)(dot - z));
		if (!schema)
			return GH_ENOMEM;
		int rc = text_ident(b, schema, false) || gh_buf_puts(b, ".") || text_ident(b, dot + 1, false);
		free(schema);
		return rc;
	}
	bool plain = *z && !(*z >= '0' && *z <= '9');
	for (const char *p = z; *p && plain; p++)
		plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_';
	if (plain)
		return gh_buf_puts(b, z);
	int rc = gh_buf_puts(b, "\"");
	for (const char *p = z; *p && !rc; p++)
		rc = (unsigned char)*p < 0x20 ? gh_buf_puts(b, " ") : *p == '"' ? gh_buf_puts(b, "\"\"") : gh_buf_append(b, p, 1);
	return rc ? rc : gh_buf_puts(b, "\"");
}

/* Free text (a type, a comment) on one line: control characters become spaces, and "*" "/"
 * cannot close the comment it sits in. lower folds ASCII letters (SQLite's declared types). */
static int text_flat(struct gh_buf *b, const char *z, bool lower)
{
	int rc = 0;
	for (const char *p = z; *p && !rc; p++) {
		char c = *p;
		if ((unsigned char)c < 0x20 || c == 0x7f)
			c = ' ';
		else if (lower && c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		rc = gh_buf_append(b, &c, 1);
		if (!rc && c == '*' && p[1] == '/')
			rc = gh_buf_puts(b, " ");
	}
	return rc;
}

/* One line per table: KIND NAME (col type [pk] [not null] [/ * comment * /], ...) [-- comment],
 * then one line per foreign key: fk NAME(cols) -> TABLE(cols). */
static int text_table(struct gh_buf *b, const struct gh_schema_table *t, bool pg)
{
	int rc = gh_buf_printf(b, "%s ", t->kind);
	rc |= text_ident(b, t->name, pg);
	rc |= gh_buf_puts(b, " (");
	for (size_t i = 0; i < t->ncolumns; i++) {
		const struct gh_schema_column *c = &t->columns[i];
		if (i)
			rc |= gh_buf_puts(b, ", ");
		rc |= text_ident(b, c->name, false);
		if (c->type) {
			rc |= gh_buf_puts(b, " ");
			rc |= text_flat(b, c->type, !pg);
		}
		if (c->primary_key)
			rc |= gh_buf_puts(b, " pk");
		if (!c->nullable && !c->primary_key)
			rc |= gh_buf_puts(b, " not null");
		if (c->comment) {
			rc |= gh_buf_puts(b, " /* ");
			rc |= text_flat(b, c->comment, false);
			rc |= gh_buf_puts(b, " */");
		}
	}
	rc |= gh_buf_puts(b, ")");
	if (t->comment) {
		rc |= gh_buf_puts(b, " -- ");
		rc |= text_flat(b, t->comment, false);
	}
	rc |= gh_buf_puts(b, "\n");
	for (size_t i = 0; i < t->nfks; i++) {
		const struct gh_schema_fk *f = &t->fks[i];
		rc |= gh_buf_puts(b, "fk ");
		rc |= text_ident(b, t->name, pg);
		rc |= gh_buf_puts(b, "(");
		for (size_t j = 0; j < f->ncolumns; j++) {
			rc |= j ? gh_buf_puts(b, ", ") : 0;
			rc |= text_ident(b, f->columns[j], false);
		}
		rc |= gh_buf_puts(b, ") -> ");
		rc |= text_ident(b, f->ref_table, pg);
		rc |= gh_buf_puts(b, "(");
		for (size_t j = 0; j < f->ncolumns; j++) {
			rc |= j ? gh_buf_puts(b, ", ") : 0;
			rc |= text_ident(b, f->ref_columns[j], false);
		}
		rc |= gh_buf_puts(b, ")\n");
	}
	return rc ? GH_ETOOBIG : 0;
}

/* Renders s into resp->body, stopping before GH_SCHEMA_MAX_BYTES at a table boundary (then
 * truncated). Returns the number of tables shown. */
static size_t render(struct gh_api_req *req, struct gh_api_resp *resp, const struct gh_policy_resource *r,
		     const char *env, const struct gh_schema *s, bool text, bool *truncated)
{
	struct gh_buf *b = resp->body;
	struct gh_buf one;
	bool pg = r->kind == GH_RESOURCE_POSTGRES;
	size_t shown = 0;
	/* room kept for the document's tail */
	const size_t tail = 256;
	gh_buf_init(&one, GH_SCHEMA_MAX_BYTES);
	gh_buf_reset(b);
	if (text) {
		gh_buf_printf(b, "-- %s resource %s, environment %s: the tables and columns you may read\n",
			      pg ? "PostgreSQL" : "SQLite", r->name, env);
	} else {
		gh_buf_puts(b, "{\"resource\":");
		gh_buf_json_string(b, r->name, strlen(r->name));
		gh_buf_puts(b, ",\"environment\":");
		gh_buf_json_string(b, env, strlen(env));
		gh_buf_printf(b, ",\"kind\":\"%s\",\"tables\":[", pg ? "postgres" : "sqlite");
	}
	*truncated = s->truncated;
	for (size_t i = 0; i < s->ntables; i++) {
		gh_buf_reset(&one);
		int rc = text ? text_table(&one, &s->tables[i], pg) : json_table(&one, &s->tables[i]);
		if (rc || b->len + one.len + 1 + tail > GH_SCHEMA_MAX_BYTES) {
			*truncated = true;
			break;
		}
		if (!text && shown)
			gh_buf_puts(b, ",");
		gh_buf_append(b, one.data, one.len);
		shown++;
	}
	gh_buf_free(&one);
	if (text) {
		if (!shown)
			gh_buf_puts(b, "-- (no tables)\n");
		if (*truncated)
			gh_buf_printf(b, "-- truncated: only the first %zu tables are shown\n", shown);
	} else {
		gh_buf_printf(b, "],\"truncated\":%s,\"request_id\":\"%s\"}", *truncated ? "true" : "false",
			      req->request_id);
	}
	return shown;
}

/* SQLite reports what a view reads as read by the statement that reads the view (a WITH clause
 * can take a view's name, so nothing else is safe), and the policy checks those tables. A view
 * is therefore listed only when reading all of it would be allowed: a model is not shown what
 * it could not query. Returns GH_ENOMEM or 0. */
static int drop_unreadable_views(struct gh_api_req *req, const char *path, const struct who *who, struct gh_schema *s)
{
	sqlite3 *db = NULL;
	struct gh_error err;
	if (gh_connector_sqlite(req->w->conn, path, &db, &err))
		return 0; /* just listed through the same connection: cannot happen; nothing to drop */
	for (size_t i = s->ntables; i-- > 0;) {
		if (strcmp(s->tables[i].kind, "view") != 0)
			continue;
		struct gh_buf sql;
		gh_buf_init(&sql, GH_SCHEMA_MAX_BYTES);
		int rc = gh_buf_puts(&sql, "SELECT * FROM main.\"");
		for (const char *p = s->tables[i].name; *p && !rc; p++)
			rc = *p == '"' ? gh_buf_puts(&sql, "\"\"") : gh_buf_append(&sql, p, 1);
		rc = rc ? rc : gh_buf_puts(&sql, "\"");
		struct gh_sql_analysis *a = NULL;
		if (rc || gh_sql_analyze_sqlite(db, sql.data, sql.len, &a)) {
			gh_buf_free(&sql);
			return GH_ENOMEM;
		}
		gh_buf_free(&sql);
		if (a->cls != GH_SQL_READ || !gh_policy_covers(who->p, who->user, who->resource, who->environment, a))
			gh_schema_remove(s, i);
		gh_sql_analysis_unref(a);
	}
	return 0;
}

/* Reads a required query parameter; false after answering 400. */
static bool param(struct gh_api_req *req, struct gh_api_resp *resp, const char *name, char *out, size_t n)
{
	bool bad;
	if (gh_api_param(req, resp, name, out, n, &bad) && *out)
		return true;
	if (!bad)
		gh_api_error(req, resp, 400, "bad_request", "query parameter '%s' is required", name);
	return false;
}

/* Lists a PostgreSQL resource on a pooled connection with the caller's claims. */
static int list_pg(struct gh_api_req *req, struct gh_api_resp *resp, const struct gh_policy_resource *r,
		   const struct gh_policy_resenv *re, struct who *who, struct gh_schema *s)
{
	struct server *srv = req->srv;
	struct gh_buf groups;
	gh_buf_init(&groups, 64 * 1024);
	gh_config_user_groups(req->policy, req->claims->sub, &groups);
	struct gh_pg_claims claims = {req->claims->sub, groups.data ? groups.data : "", req->claims->app, re->env};
	struct gh_exec_result res;
	int rc = GH_EIO;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct gh_pg_conn *pc = NULL;
		struct gh_error err;
		uint64_t epoch = __atomic_load_n(&srv->secrets_epoch, __ATOMIC_ACQUIRE);
		if (gh_pg_acquire(srv->pg, r->name, re->env, re->secret, epoch, &pc, &err)) {
			gh_log(GH_LOG_ERROR, "resource %s/%s: %s", r->name, re->env, err.message);
			if (err.code == GH_ETIMEOUT)
				gh_api_error(req, resp, 503, "pool_exhausted",
					     "every connection to the resource is busy; try again");
			else
				gh_api_error(req, resp, 502, "resource_unavailable",
					     "the resource's database cannot be reached");
			break;
		}
		bool reused = gh_pg_conn_reused(pc);
		memset(&res, 0, sizeof res);
		rc = gh_pg_schema(pc, r->schemas, r->nschemas, srv->o.statement_ms, &claims, visible, who, s, &res);
		gh_pg_release(pc);
		if (!rc)
			break;
		if (res.conn_lost && reused && attempt == 0)
			continue; /* a pooled connection that died while idle: once more on a fresh one */
		gh_log(GH_LOG_ERROR, "resource %s/%s: schema listing failed: %s", r->name, re->env, res.error);
		if (res.status == GH_ETIMEOUT)
			gh_api_error(req, resp, 504, "statement_timeout", "reading the catalog took too long");
		else
			gh_api_error(req, resp, 502, "resource_unavailable", "the resource's catalog could not be read");
		break;
	}
	gh_buf_free(&groups);
	return rc;
}

void gh_api_schema_get(struct gh_api_req *req, struct gh_api_resp *resp)
{
	char res[GH_NAME_MAX + 1], env[GH_NAME_MAX + 1], fmt[8] = "json", msg[400];
	bool bad;
	if (!param(req, resp, "resource", res, sizeof res) || !param(req, resp, "environment", env, sizeof env))
		return;
	if (!gh_api_param(req, resp, "format", fmt, sizeof fmt, &bad) && bad)
		return;
	bool text = strcmp(fmt, "text") == 0;
	if (!text && strcmp(fmt, "json") != 0) {
		gh_api_error(req, resp, 400, "bad_request", "format must be json or text");
		return;
	}
	const struct gh_policy *p = req->policy;
	const struct gh_policy_resource *r = gh_config_resource(p, res);
	const struct gh_policy_resenv *re = gh_config_resenv(r, env);
	/* names only what the caller asked for: never a list of what exists */
	if (!r || !re) {
		snprintf(msg, sizeof msg, r ? "resource '%s' has no environment '%s'" : "no resource named '%s'%.0s", res,
			 env);
		gh_api_error(req, resp, 404, "not_found", "%s", msg);
		return;
	}
	resp->resource = r->name; /* the policy outlives the record */
	resp->environment = re->env;
	if (strcmp(req->claims->env, env) != 0) {
		snprintf(msg, sizeof msg, "this token is for environment '%s', not '%s'", req->claims->env, env);
		refuse(req, resp, 403, "wrong_environment", "token-environment", msg);
		return;
	}
	char rule[160];
	if (gh_policy_level(p, req->claims->sub, r->name, re->env, rule, sizeof rule) == GH_ACCESS_NONE) {
		snprintf(msg, sizeof msg, "no grant gives '%s' access to this resource in '%s'", req->claims->sub, env);
		refuse(req, resp, 403, "denied", "no-grant", msg);
		return;
	}
	struct who who = {p, req->claims->sub, r->name, re->env};
	struct gh_schema s;
	memset(&s, 0, sizeof s);
	if (r->kind == GH_RESOURCE_SQLITE) {
		struct gh_error err;
		if (gh_connector_sqlite_schema(req->w->conn, re->path, visible, &who, &s, &err)) {
			/* the path is configuration: the log may name it, the caller does not see it */
			gh_log(GH_LOG_ERROR, "resource %s/%s: schema listing failed: %s", r->name, re->env, err.message);
			gh_api_error(req, resp, 502, "resource_unavailable", "the resource's database cannot be opened");
			return;
		}
		if (drop_unreadable_views(req, re->path, &who, &s)) {
			gh_schema_free(&s);
			gh_api_error(req, resp, 500, "internal", "out of memory");
			return;
		}
	} else if (list_pg(req, resp, r, re, &who, &s)) {
		return;
	}
	bool truncated;
	size_t shown = render(req, resp, r, re->env, &s, text, &truncated);
	gh_schema_free(&s);
	resp->status = 200;
	resp->content_type = text ? "text/plain; charset=utf-8" : NULL;
	resp->rows = (int64_t)shown;
	snprintf(resp->rule, sizeof resp->rule, "%s", rule);
	snprintf(resp->detail, sizeof resp->detail, "{\"format\":\"%s\",\"tables\":%zu,\"truncated\":%s}",
		 text ? "text" : "json", shown, truncated ? "true" : "false");
}
