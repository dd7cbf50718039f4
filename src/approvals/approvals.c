/* approvals: visibility, four eyes, rendering. */
#include "approvals/approvals.h"

#include <stdio.h>
#include <string.h>

#include "policy/policy.h"

bool gh_approvals_visible(const struct gh_policy *p, const struct gh_approval *a, const char *user)
{
	return strcmp(a->requester, user) == 0 || gh_policy_can_review(p, user, a->environment);
}

int gh_approvals_check_decider(const struct gh_policy *p, const struct gh_approval *a, const char *user,
			       const char **code, char *msg, size_t msglen)
{
	if (strcmp(a->requester, user) == 0) {
		*code = "four_eyes";
		snprintf(msg, msglen, "the requester cannot decide their own request; another reviewer must");
		return 403;
	}
	if (!gh_policy_can_review(p, user, a->environment)) {
		*code = "not_reviewer";
		snprintf(msg, msglen, "'%s' is not a reviewer for environment '%s'", user, a->environment);
		return 403;
	}
	if (a->status == GH_APPROVAL_EXPIRED) {
		*code = "expired";
		snprintf(msg, msglen, "approval %s expired without a decision", a->id);
		return 409;
	}
	if (a->status != GH_APPROVAL_PENDING) {
		*code = "already_decided";
		snprintf(msg, msglen, "approval %s is already %s", a->id, gh_approval_status_name(a->status));
		return 409;
	}
	return 0;
}

static int put_kv(struct gh_buf *b, const char *key, const char *v, bool comma)
{
	int rc = gh_buf_printf(b, "%s\"%s\":", comma ? "," : "", key);
	return rc ? rc : v ? gh_buf_json_string(b, v, strlen(v)) : gh_buf_puts(b, "null");
}

int gh_approvals_json(const struct gh_approval *a, struct gh_buf *b)
{
	char created[32], expires[32], decided[32];
	gh_time_rfc3339(a->created_at * 1000, created, sizeof created);
	gh_time_rfc3339(a->expires_at * 1000, expires, sizeof expires);
	gh_time_rfc3339(a->decided_at * 1000, decided, sizeof decided);
	int rc = gh_buf_puts(b, "{");
	rc = rc ? rc : put_kv(b, "id", a->id, false);
	rc = rc ? rc : put_kv(b, "status", gh_approval_status_name(a->status), true);
	rc = rc ? rc : put_kv(b, "requester", a->requester, true);
	rc = rc ? rc : put_kv(b, "app", a->app, true);
	rc = rc ? rc : put_kv(b, "resource", a->resource, true);
	rc = rc ? rc : put_kv(b, "environment", a->environment, true);
	rc = rc ? rc : put_kv(b, "statement", a->statement, true);
	rc = rc ? rc : gh_buf_printf(b, ",\"params\":%s", a->params ? a->params : "[]");
	rc = rc ? rc : put_kv(b, "class", a->class_name, true);
	rc = rc ? rc : put_kv(b, "created_at", created, true);
	rc = rc ? rc : put_kv(b, "expires_at", expires, true);
	rc = rc ? rc : put_kv(b, "decided_by", a->decided_by, true);
	rc = rc ? rc : put_kv(b, "decided_at", a->decided_by ? decided : NULL, true);
	if (!rc && a->result)
		rc = gh_buf_printf(b, ",\"result\":%s", a->result);
	return rc ? rc : gh_buf_puts(b, "}");
}
