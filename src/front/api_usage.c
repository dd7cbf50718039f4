/* front: GET /v1/usage — usage analytics from the audit trail (usage/usage.h).
 *
 *   ?since=7d (default) | RFC 3339 time; &until= (default now); &app= &user= &resource=
 *   &environment= (exact names); &top=N (top statements, default 10, 0..100); &limit=N (groups
 *   listed, most queries first, default 1000, 1..100000; totals cover them all)
 *
 * Who sees what: an admin sees everyone's usage; anyone else sees their own usage (user = the
 * caller) plus all usage of the resources they own (an `own` grant in any environment, the same
 * rule as GET /v1/audit). Filters narrow what the caller may see; they never widen it, so asking
 * for another user's usage without the right gives an empty report, not an error. The answer
 * says which scope applied. The index is caught up before answering (a background thread keeps
 * it close). Examples are normalised statement text: no parameter or literal value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front/api_handlers.h"
#include "front/server_int.h"
#include "policy/policy.h"
#include "usage/usage.h"

#define DEFAULT_SINCE_MS (7LL * 86400 * 1000)
#define DEFAULT_TOP 10

/* A name filter: absent is NULL; present must be a valid name. false after answering 400. */
static bool name_param(struct gh_api_req *req, struct gh_api_resp *resp, const char *name, bool user, char *out,
		       size_t n, const char **val)
{
	bool bad;
	*val = NULL;
	if (!gh_api_param(req, resp, name, out, n, &bad))
		return !bad;
	if (!gh_config_valid_name(out, user)) {
		gh_api_error(req, resp, 400, "bad_request", "'%s' must be a name (letters, digits, _ and -%s)", name,
			     user ? ", . and @" : "");
		return false;
	}
	*val = out;
	return true;
}

static bool time_param(struct gh_api_req *req, struct gh_api_resp *resp, const char *name, int64_t now,
		       int64_t *ms)
{
	char v[64];
	bool bad;
	if (!gh_api_param(req, resp, name, v, sizeof v, &bad))
		return !bad;
	if (gh_usage_parse_time(v, now, ms)) {
		gh_api_error(req, resp, 400, "bad_request",
			     "'%s' must be a duration before now (7d, 24h, 30m, 90s) or an RFC 3339 time "
			     "(2026-01-31T12:00:00Z)", name);
		return false;
	}
	return true;
}

static bool int_param(struct gh_api_req *req, struct gh_api_resp *resp, const char *name, int lo, int hi, int *out)
{
	char v[24];
	bool bad;
	int64_t n;
	if (!gh_api_param(req, resp, name, v, sizeof v, &bad))
		return !bad;
	if (gh_parse_int(v, lo, hi, &n)) {
		gh_api_error(req, resp, 400, "bad_request", "'%s' must be a number from %d to %d", name, lo, hi);
		return false;
	}
	*out = (int)n;
	return true;
}

void gh_api_usage_get(struct gh_api_req *req, struct gh_api_resp *resp)
{
	char app[GH_NAME_MAX + 1], user[GH_NAME_MAX + 1], res[GH_NAME_MAX + 1], env[GH_NAME_MAX + 1];
	int64_t now = gh_now_ms();
	struct gh_usage_query q = {.since_ms = now - DEFAULT_SINCE_MS, .until_ms = now + 1, .top = DEFAULT_TOP};
	if (!time_param(req, resp, "since", now, &q.since_ms) || !time_param(req, resp, "until", now, &q.until_ms) ||
	    !name_param(req, resp, "app", false, app, sizeof app, &q.app) ||
	    !name_param(req, resp, "user", true, user, sizeof user, &q.user) ||
	    !name_param(req, resp, "resource", false, res, sizeof res, &q.resource) ||
	    !name_param(req, resp, "environment", false, env, sizeof env, &q.environment))
		return;
	if (!int_param(req, resp, "top", 0, GH_USAGE_MAX_TOP, &q.top) ||
	    !int_param(req, resp, "limit", 1, GH_USAGE_MAX_GROUPS, &q.limit))
		return;
	if (q.since_ms >= q.until_ms) {
		gh_api_error(req, resp, 400, "bad_request", "'since' must be before 'until'");
		return;
	}
	const struct gh_policy *p = req->policy;
	const char **owned = NULL;
	size_t nowned = 0;
	q.all = req->admin;
	q.self = req->claims->sub;
	if (!q.all && p->nresources) {
		owned = calloc(p->nresources, sizeof *owned);
		if (!owned) {
			gh_api_error(req, resp, 500, "internal", "out of memory");
			return;
		}
		for (size_t i = 0; i < p->nresources; i++)
			if (gh_policy_owns(p, q.self, p->resources[i].name))
				owned[nowned++] = p->resources[i].name;
	}
	q.owned = owned;
	q.nowned = nowned;

	struct gh_usage *u = req->srv->usage;
	struct gh_usage_stats st;
	struct gh_error err;
	int64_t groups = 0;
	if (!u || gh_usage_catch_up(u, &st, &err)) {
		if (u)
			gh_log(GH_LOG_ERROR, "GET /v1/usage: %s", err.message);
		gh_api_error(req, resp, 503, "usage_unavailable",
			     "the usage index could not be brought up to date with the audit trail (see the server log)");
		free(owned);
		return;
	}
	gh_buf_printf(resp->body, "{\"request_id\":\"%s\",\"scope\":{\"all\":%s", req->request_id, q.all ? "true" : "false");
	if (!q.all) {
		gh_buf_puts(resp->body, ",\"user\":");
		gh_buf_json_string(resp->body, q.self, strlen(q.self));
		gh_buf_puts(resp->body, ",\"owned_resources\":[");
		for (size_t i = 0; i < nowned; i++) {
			if (i)
				gh_buf_puts(resp->body, ",");
			gh_buf_json_string(resp->body, owned[i], strlen(owned[i]));
		}
		gh_buf_puts(resp->body, "]");
	}
	gh_buf_puts(resp->body, "},");
	int rc = gh_usage_report(u, &q, resp->body, &groups, &err);
	free(owned);
	if (rc || gh_buf_puts(resp->body, "}")) {
		gh_log(GH_LOG_ERROR, "GET /v1/usage: %s", rc ? err.message : "response too large");
		gh_api_error(req, resp, 503, "usage_unavailable", "the usage report could not be made (see the server log)");
		return;
	}
	char t0[40], t1[40];
	gh_time_rfc3339(q.since_ms, t0, sizeof t0);
	gh_time_rfc3339(q.until_ms, t1, sizeof t1);
	snprintf(resp->detail, sizeof resp->detail, "{\"since\":\"%s\",\"until\":\"%s\",\"indexed_seq\":%lld}", t0, t1,
		 (long long)st.seq);
	resp->rows = groups;
	resp->status = 200;
}
