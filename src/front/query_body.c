/* front: strict parsing of the query request body. */
#include "front/query_body.h"

#include "config/config.h"

#include <stdio.h>
#include <string.h>

static int refuse(struct gh_query_body *b, int *status, int st, const char **code, const char *c)
{
	json_decref(b->doc);
	memset(b, 0, sizeof *b);
	*status = st;
	*code = c;
	return GH_EINVAL;
}

int gh_query_body_parse(const char *p, size_t len, int64_t max_statement, struct gh_query_body *b,
			int *status, const char **code, char *msg, size_t msglen)
{
	json_error_t je;
	memset(b, 0, sizeof *b);
	b->doc = json_loadb(p, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(b->doc)) {
		snprintf(msg, msglen, "body must be a JSON object: %s", b->doc ? "not an object" : je.text);
		return refuse(b, status, 400, code, "bad_request");
	}
	const char *key;
	json_t *val;
	json_object_foreach(b->doc, key, val) {
		if (strcmp(key, "resource") && strcmp(key, "environment") && strcmp(key, "sql") && strcmp(key, "params")) {
			snprintf(msg, msglen, "unknown member '%.64s' (expected resource, environment, sql, params)", key);
			return refuse(b, status, 400, code, "bad_request");
		}
	}
	static const char *const want[] = {"resource", "environment", "sql"};
	for (int i = 0; i < 3; i++) {
		json_t *v = json_object_get(b->doc, want[i]);
		if (!json_is_string(v)) {
			snprintf(msg, msglen, "'%s' must be a string", want[i]);
			return refuse(b, status, 400, code, "bad_request");
		}
		if (strlen(json_string_value(v)) != json_string_length(v)) {
			snprintf(msg, msglen, "'%s' contains a NUL character", want[i]);
			return refuse(b, status, 400, code, "bad_request");
		}
	}
	b->resource = json_string_value(json_object_get(b->doc, "resource"));
	b->environment = json_string_value(json_object_get(b->doc, "environment"));
	b->sql = json_string_value(json_object_get(b->doc, "sql"));
	b->sqllen = json_string_length(json_object_get(b->doc, "sql"));
	if (!gh_config_valid_name(b->resource, false) || !gh_config_valid_name(b->environment, false)) {
		snprintf(msg, msglen, "resource and environment must be names (letters, digits, '_', '-')");
		return refuse(b, status, 400, code, "bad_request");
	}
	if ((int64_t)b->sqllen > max_statement) {
		snprintf(msg, msglen, "statement is longer than %lld bytes", (long long)max_statement);
		return refuse(b, status, 413, code, "statement_too_large");
	}
	b->params = json_object_get(b->doc, "params");
	if (b->params && !json_is_array(b->params)) {
		snprintf(msg, msglen, "'params' must be an array");
		return refuse(b, status, 400, code, "bad_request");
	}
	if (b->params && json_array_size(b->params) > GH_MAX_PARAMS) {
		snprintf(msg, msglen, "more than %d parameters", GH_MAX_PARAMS);
		return refuse(b, status, 413, code, "too_many_params");
	}
	if (!b->params) {
		b->params = json_array();
		if (!b->params || json_object_set_new(b->doc, "params", b->params)) {
			snprintf(msg, msglen, "out of memory");
			return refuse(b, status, 500, code, "internal");
		}
	}
	return 0;
}

void gh_query_body_free(struct gh_query_body *b)
{
	json_decref(b->doc);
	memset(b, 0, sizeof *b);
}
