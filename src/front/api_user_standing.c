/* front: POST /v1/users/{name}/disable and /enable — an admin disables or enables a user by
 * applying a new policy version with the user's `disabled` flag changed (the policy stays the
 * one source of truth: export shows it, and a later apply of a document without the flag
 * enables the user again). The running server refuses a disabled user's tokens from the next
 * request on, on both fronts. Disabling the last enabled admin is refused (422 no_admin). */
#include <stdio.h>
#include <string.h>

#include "front/api_handlers.h"
#include "front/api_policy.h"

struct standing {
	const char *name;
	bool disable;
};

static int set_standing(struct gh_api_req *req, struct gh_api_resp *resp, struct gh_policy *copy, void *arg,
			struct gh_policy **out)
{
	struct standing *s = arg;
	for (size_t i = 0; copy && i < copy->nusers; i++) {
		if (strcmp(copy->users[i].name, s->name) == 0) {
			copy->users[i].disabled = s->disable;
			gh_config_ref(copy);
			*out = copy;
			return 0;
		}
	}
	gh_api_error(req, resp, 404, "not_found", "user '%s' is not defined in the policy", s->name);
	return GH_ENOTFOUND;
}

static void standing(struct gh_api_req *req, struct gh_api_resp *resp, bool disable)
{
	struct standing s = {req->rest, disable};
	if (!gh_config_valid_name(s.name, true)) {
		gh_api_error(req, resp, 400, "bad_request", "a user's name is 1 to %d of A-Z a-z 0-9 _ - . @", GH_NAME_MAX);
		return;
	}
	struct gh_api_policy_change ch = {.event = disable ? "user.disable" : "user.enable", .expected = -1,
					  .subject = s.name, .next = set_standing, .arg = &s,
					  .edit_current = true};
	if (gh_api_policy_change(req, resp, &ch) == 0) {
		gh_buf_printf(resp->body, "{\"user\":\"%s\",\"disabled\":%s,\"changed\":%s,\"version\":%lld,"
					  "\"previous_version\":%lld,\"request_id\":\"%s\"}",
			      s.name, disable ? "true" : "false", ch.changed ? "true" : "false", (long long)ch.to,
			      (long long)ch.from, req->request_id);
		resp->status = 200;
	}
	gh_buf_free(&ch.diff);
}

void gh_api_user_disable(struct gh_api_req *req, struct gh_api_resp *resp)
{
	standing(req, resp, true);
}

void gh_api_user_enable(struct gh_api_req *req, struct gh_api_resp *resp)
{
	standing(req, resp, false);
}
