/* front: GET /v1/config — the applied policy document, for admins (the same text as
 * `gatehouse export`). The policy holds names of secrets, never their values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front/api_handlers.h"
#include "front/server_int.h"

void gh_api_config_get(struct gh_api_req *req, struct gh_api_resp *resp)
{
	char *doc = NULL;
	int64_t version = 0;
	if (gh_store_policy_load(req->w->store, &doc, &version)) {
		gh_api_error(req, resp, 500, "store_unavailable", "the policy could not be read from the store");
		return;
	}
	if (!doc) {
		gh_api_error(req, resp, 404, "no_policy", "no policy has been applied yet");
		return;
	}
	gh_buf_printf(resp->body, "{\"version\":%lld,\"policy\":", (long long)version);
	gh_buf_json_string(resp->body, doc, strlen(doc));
	gh_buf_printf(resp->body, ",\"request_id\":\"%s\"}", req->request_id);
	free(doc);
	snprintf(resp->detail, sizeof resp->detail, "{\"policy_version\":%lld}", (long long)version);
	resp->status = 200;
}
