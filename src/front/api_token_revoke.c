/* front: DELETE /v1/tokens/{id} — an admin revokes a token. 404 for an id never issued; a
 * token already revoked answers 200 again (already_revoked). The running server refuses the
 * token from the next request on (gh_srv_refresh reloads revocations when their count moves). */
#include <stdio.h>
#include <string.h>

#include "front/api_handlers.h"
#include "front/server_int.h"

void gh_api_token_revoke(struct gh_api_req *req, struct gh_api_resp *resp)
{
	const char *id = req->rest;
	size_t n = strlen(id);
	if (n < 5 || n > 63 || strncmp(id, "tok_", 4) != 0 || strspn(id + 4, "0123456789abcdef") != n - 4) {
		gh_api_error(req, resp, 400, "bad_request", "a token id is tok_ followed by hex digits");
		return;
	}
	char subject[GH_NAME_MAX + 1] = "";
	bool revoked = false;
	int rc = gh_store_token_get(req->w->store, id, subject, sizeof subject, &revoked);
	if (rc == GH_ENOTFOUND) {
		gh_api_error(req, resp, 404, "not_found", "no token with id %s was issued", id);
		return;
	}
	if (rc) {
		gh_api_error(req, resp, 500, "store_unavailable", "the store could not be read");
		return;
	}
	char detail[GH_NAME_MAX + 160];
	snprintf(detail, sizeof detail, "{\"token_id\":\"%s\",\"subject\":\"%s\",\"already_revoked\":%s}", id, subject,
		 revoked ? "true" : "false");
	struct gh_audit_record r = {.event = "token.revoke", .decision = "allow", .rule = "admin", .status = "ok",
				    .detail_json = detail};
	if (gh_api_audit(req, resp, &r))
		return;
	rc = revoked ? GH_EEXIST : gh_store_token_revoke(req->w->store, id, gh_now());
	if (rc && rc != GH_EEXIST) {
		gh_api_error(req, resp, 500, "store_unavailable", "the store refused the revocation");
		return;
	}
	gh_buf_printf(resp->body, "{\"id\":\"%s\",\"revoked\":true,\"already_revoked\":%s,\"request_id\":\"%s\"}", id,
		      rc == GH_EEXIST ? "true" : "false", req->request_id);
	resp->status = 200;
}
