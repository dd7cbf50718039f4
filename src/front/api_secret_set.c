/* front: PUT /v1/secrets/{name} — an admin sets (or rotates) a vault secret, sealed exactly as
 * `gatehouse secret set` does. Body: {"value": "..."}. Write-only: the value is in no answer,
 * log line or record (only the name is), and no route reads it back. The server's PostgreSQL
 * pools see the new version on the next request (secrets_epoch) and drain their connections. */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "front/api_handlers.h"
#include "front/api_policy.h"
#include "front/server_int.h"
#include "vault/vault.h"

/* Zeroes the decoded value inside the JSON document before it is freed. */
static void wipe_value(json_t *v)
{
	if (json_is_string(v) && json_string_length(v))
		sodium_memzero((void *)(uintptr_t)json_string_value(v), json_string_length(v));
}

void gh_api_secret_set(struct gh_api_req *req, struct gh_api_resp *resp)
{
	const char *name = req->rest;
	if (!gh_config_valid_name(name, false)) {
		gh_api_error(req, resp, 400, "bad_request", "a secret's name is 1 to %d of A-Z a-z 0-9 _ -", GH_NAME_MAX);
		return;
	}
	json_t *doc = gh_api_json_body(req, resp);
	if (!doc)
		return;
	json_t *v = json_object_get(doc, "value");
	if (json_object_size(doc) != 1 || !json_is_string(v)) {
		gh_api_error(req, resp, 400, "bad_request", "the body must be {\"value\": \"...\"} and nothing else");
		goto done;
	}
	size_t n = json_string_length(v);
	if (n == 0) {
		gh_api_error(req, resp, 400, "bad_request", "the value is empty");
		goto done;
	}
	if (n > GH_VAULT_SECRET_MAX) {
		gh_api_error(req, resp, 413, "too_large", "the value is longer than %d bytes", GH_VAULT_SECRET_MAX);
		goto done;
	}
	char detail[GH_NAME_MAX + 32];
	snprintf(detail, sizeof detail, "{\"secret\":\"%s\"}", name);
	struct gh_audit_record r = {.event = "secret.set", .decision = "allow", .rule = "admin", .status = "ok",
				    .detail_json = detail};
	if (gh_api_audit(req, resp, &r))
		goto done;
	struct server *srv = req->srv;
	int64_t version = 0;
	pthread_mutex_lock(&srv->vault_mu);
	sodium_mprotect_readonly(srv->master);
	int rc = gh_vault_secret_set(req->w->store, srv->master, name, (const uint8_t *)json_string_value(v), n,
				     &version);
	sodium_mprotect_noaccess(srv->master);
	pthread_mutex_unlock(&srv->vault_mu);
	if (rc) {
		gh_log(GH_LOG_ERROR, "secret %s: the store refused it (%d)", name, rc);
		gh_api_error(req, resp, 500, "store_unavailable", "the store refused the secret; nothing was changed");
		goto done;
	}
	gh_log(GH_LOG_INFO, "secret %s set to version %lld through the API by %s", name, (long long)version,
	       req->claims->sub);
	gh_buf_printf(resp->body, "{\"secret\":\"%s\",\"version\":%lld,\"request_id\":\"%s\"}", name,
		      (long long)version, req->request_id);
	resp->status = 200;
done:
	wipe_value(v);
	json_decref(doc);
}
