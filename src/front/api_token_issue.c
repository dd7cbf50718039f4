/* front: POST /v1/tokens — an admin issues a token for a user, with the checks of
 * `gatehouse token issue` (user defined and enabled, environment and app defined, TTL from 1 s
 * to 24 h). Body: {"user", "environment", "app"?, "ttl"? ("15m" or seconds)}. The token is in
 * the answer once and nowhere else; the record names the admin and the subject. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "front/api_handlers.h"
#include "front/api_policy.h"
#include "front/server_int.h"

/* A name member: absent (NULL, when optional), or a valid name; false after a 400. */
static bool name_member(struct gh_api_req *req, struct gh_api_resp *resp, json_t *doc, const char *key, bool user,
			bool required, const char **out)
{
	json_t *v = json_object_get(doc, key);
	*out = NULL;
	if (!v && !required)
		return true;
	if (!json_is_string(v) || !gh_config_valid_name(json_string_value(v), user)) {
		gh_api_error(req, resp, 400, "bad_request", "\"%s\" must be a name (1 to %d of A-Z a-z 0-9 _ -%s)", key,
			     GH_NAME_MAX, user ? " . @" : "");
		return false;
	}
	*out = json_string_value(v);
	return true;
}

void gh_api_token_issue(struct gh_api_req *req, struct gh_api_resp *resp)
{
	json_t *doc = gh_api_json_body(req, resp);
	if (!doc)
		return;
	const char *user, *env, *app, *key;
	json_t *v;
	char tok[GH_TOKEN_MAX_BYTES];
	tok[0] = '\0';
	json_object_foreach(doc, key, v) {
		if (strcmp(key, "user") && strcmp(key, "environment") && strcmp(key, "app") && strcmp(key, "ttl")) {
			gh_api_error(req, resp, 400, "bad_request",
				     "unexpected member '%.64s' (expected user, environment, app, ttl)", key);
			goto done;
		}
	}
	if (!name_member(req, resp, doc, "user", true, true, &user) ||
	    !name_member(req, resp, doc, "environment", false, true, &env) ||
	    !name_member(req, resp, doc, "app", false, false, &app))
		goto done;
	int64_t ttl = GH_TOKEN_DEFAULT_TTL;
	v = json_object_get(doc, "ttl");
	if (json_is_integer(v)) {
		ttl = json_integer_value(v);
	} else if (v && (!json_is_string(v) || gh_parse_duration(json_string_value(v), &ttl))) {
		gh_api_error(req, resp, 400, "bad_request", "\"ttl\" must be a duration (\"15m\") or seconds");
		goto done;
	}
	if (ttl <= 0 || ttl > GH_TOKEN_MAX_TTL) {
		gh_api_error(req, resp, 400, "bad_request", "\"ttl\" must be from 1s to 24h");
		goto done;
	}
	char why[300];
	int rc = gh_config_token_subject(req->policy, user, env, app, why, sizeof why);
	if (rc) {
		gh_api_error(req, resp, rc == GH_EDENIED ? 422 : 404, rc == GH_EDENIED ? "user_disabled" : "not_found",
			     "%s", why);
		goto done;
	}
	struct gh_claims claims;
	struct gh_error err;
	if (gh_token_issue(&req->srv->signer, user, env, app, ttl, gh_now(), tok, sizeof tok, &claims, &err)) {
		gh_log(GH_LOG_ERROR, "token issue: %s", err.message);
		gh_api_error(req, resp, 500, "internal", "the token could not be signed");
		goto done;
	}
	char detail[4 * GH_NAME_MAX + 200];
	snprintf(detail, sizeof detail, "{\"subject\":\"%s\",\"token_id\":\"%s\",\"expires_at\":%lld%s%s%s}", user,
		 claims.jti, (long long)claims.exp, app ? ",\"app\":\"" : "", app ? app : "", app ? "\"" : "");
	struct gh_audit_record r = {.event = "token.issue", .environment = env, .decision = "allow", .rule = "admin",
				    .status = "ok", .detail_json = detail};
	if (gh_api_audit(req, resp, &r))
		goto done;
	if (gh_store_token_add(req->w->store, claims.jti, user, env, app, claims.iat, claims.exp)) {
		gh_log(GH_LOG_ERROR, "token issue: cannot record token %s in the store", claims.jti);
		gh_api_error(req, resp, 500, "store_unavailable", "the token could not be recorded; it was not issued");
		goto done;
	}
	gh_buf_printf(resp->body, "{\"token\":\"%s\",\"id\":\"%s\",\"user\":\"%s\",\"environment\":\"%s\",\"app\":", tok,
		      claims.jti, user, env);
	if (app)
		gh_buf_printf(resp->body, "\"%s\"", app);
	else
		gh_buf_puts(resp->body, "null");
	gh_buf_printf(resp->body, ",\"expires_at\":%lld,\"request_id\":\"%s\"}", (long long)claims.exp,
		      req->request_id);
	resp->status = 200;
done:
	sodium_memzero(tok, sizeof tok);
	json_decref(doc);
}
