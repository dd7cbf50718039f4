/* front: PUT /v1/config — an admin applies a policy document, all of it or nothing, with the
 * loader that `gatehouse apply` uses. Body: {"policy": "<YAML text>", "dry_run": false,
 * "expected_version": N}. Resource paths must be absolute (they are paths on the server). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front/api_handlers.h"
#include "front/api_policy.h"
#include "front/server_int.h"

struct put_arg {
	const char *text;
	size_t len;
};

/* 422 invalid_policy naming the line and column of the first problem. */
static void invalid(struct gh_api_req *req, struct gh_api_resp *resp, const struct gh_error *err)
{
	gh_api_error(req, resp, 422, "invalid_policy", "%s", err->message);
	/* the same document with the position as members of the error */
	gh_buf_reset(resp->body);
	gh_buf_puts(resp->body, "{\"error\":{\"code\":\"invalid_policy\",\"message\":");
	gh_buf_json_string(resp->body, err->message, strlen(err->message));
	gh_buf_printf(resp->body, ",\"line\":%d,\"column\":%d,\"request_id\":\"%s\"}}", err->line, err->column,
		      req->request_id);
}

static int parse_next(struct gh_api_req *req, struct gh_api_resp *resp, struct gh_policy *copy, void *arg,
		      struct gh_policy **out)
{
	struct put_arg *a = arg;
	struct gh_error err;
	gh_error_clear(&err);
	if (gh_config_parse(a->text, a->len, "policy", NULL, out, &err)) {
		invalid(req, resp, &err);
		return GH_EINVAL;
	}
	/* an audit sink's API key must be in the vault already (audit/sink.c) */
	int rc = gh_audit_sinks_check(&(*out)->audit, req->w->store, "policy", &err);
	if (rc) {
		gh_config_unref(*out);
		*out = NULL;
		if (rc == GH_ENOTFOUND) {
			invalid(req, resp, &err);
			return GH_EINVAL;
		}
		gh_api_error(req, resp, 503, "store_unavailable", "the vault could not be read; nothing was applied");
		return rc;
	}
	return 0;
}

void gh_api_config_put(struct gh_api_req *req, struct gh_api_resp *resp)
{
	json_t *doc = gh_api_json_body(req, resp);
	if (!doc)
		return;
	struct gh_api_policy_change ch = {.event = "config.apply", .expected = -1, .next = parse_next};
	struct put_arg a = {0};
	const char *key;
	json_t *v;
	json_object_foreach(doc, key, v) {
		if (strcmp(key, "policy") == 0 && json_is_string(v)) {
			a.text = json_string_value(v);
			a.len = json_string_length(v);
		} else if (strcmp(key, "dry_run") == 0 && json_is_boolean(v)) {
			ch.dry_run = json_is_true(v);
		} else if (strcmp(key, "expected_version") == 0 && json_is_integer(v) && json_integer_value(v) >= 0) {
			ch.expected = json_integer_value(v);
		} else {
			gh_api_error(req, resp, 400, "bad_request",
				     "unexpected member '%.64s' (expected policy: string, dry_run: boolean, "
				     "expected_version: integer)", key);
			json_decref(doc);
			return;
		}
	}
	if (!a.text) {
		gh_api_error(req, resp, 400, "bad_request", "the body needs \"policy\": the YAML document as a string");
		json_decref(doc);
		return;
	}
	if (a.len > GH_POLICY_MAX_BYTES) {
		gh_api_error(req, resp, 413, "too_large", "the policy is larger than %d bytes", GH_POLICY_MAX_BYTES);
		json_decref(doc);
		return;
	}
	if (ch.dry_run)
		ch.event = "config.dry_run";
	ch.arg = &a;
	if (gh_api_policy_change(req, resp, &ch) == 0) {
		gh_buf_printf(resp->body, "{\"dry_run\":%s,\"changed\":%s,\"version\":%lld,\"previous_version\":%lld,"
					  "\"diff\":",
			      ch.dry_run ? "true" : "false", ch.changed ? "true" : "false", (long long)ch.to,
			      (long long)ch.from);
		gh_buf_append(resp->body, ch.diff.data, ch.diff.len);
		gh_buf_printf(resp->body, ",\"request_id\":\"%s\"}", req->request_id);
		resp->status = 200;
	}
	gh_buf_free(&ch.diff);
	json_decref(doc);
}
