/* front: policy changes made through the API, serialised in this server (see api_policy.h). */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front/api_policy.h"
#include "front/server_int.h"

/* One policy change at a time through this server: a second PUT with the same expected
 * version then sees the first one's result and gets 409 before anything is recorded. Another
 * process (`gatehouse apply`) is caught by the version check inside the store transaction. */
static pthread_mutex_t change_mu = PTHREAD_MUTEX_INITIALIZER;

json_t *gh_api_json_body(struct gh_api_req *req, struct gh_api_resp *resp)
{
	json_error_t je;
	json_t *doc = json_loadb(req->body, req->bodylen, JSON_REJECT_DUPLICATES, &je);
	if (!doc || !json_is_object(doc)) {
		json_decref(doc);
		/* je.text may quote the body (a secret): say where, not what */
		gh_api_error(req, resp, 400, "bad_request", "the body must be a JSON object (%s at byte %d)",
			     doc ? "not an object" : "invalid JSON", doc ? 0 : je.position);
		return NULL;
	}
	return doc;
}

/* Records the change (or, with status "failed", that it did not happen). */
static int record(struct gh_api_req *req, struct gh_api_resp *resp, struct gh_api_policy_change *ch,
		  const char *status, const char *sha, const char *why)
{
	const struct gh_config_diff *n = &ch->counts;
	char detail[1024];
	int len = snprintf(detail, sizeof detail,
			   "{\"from_version\":%lld,\"to_version\":%lld,\"changed\":%s,\"sha256\":\"%s\","
			   "\"grants_added\":%zu,\"grants_removed\":%zu,\"grants_changed\":%zu,"
			   "\"users_added\":%zu,\"users_removed\":%zu,\"users_disabled\":%zu,\"users_enabled\":%zu,"
			   "\"groups_added\":%zu,\"groups_removed\":%zu,\"groups_changed\":%zu,"
			   "\"admins_added\":%zu,\"admins_removed\":%zu,\"environments_added\":%zu,"
			   "\"environments_removed\":%zu,\"resources_added\":%zu,\"resources_removed\":%zu,"
			   "\"apps_added\":%zu,\"apps_removed\":%zu",
			   (long long)ch->from, (long long)ch->to, ch->changed ? "true" : "false", sha, n->grants_added,
			   n->grants_removed, n->grants_changed, n->users_added, n->users_removed, n->users_disabled,
			   n->users_enabled, n->groups_added, n->groups_removed, n->groups_changed, n->admins_added,
			   n->admins_removed, n->envs_added, n->envs_removed, n->resources_added, n->resources_removed,
			   n->apps_added, n->apps_removed);
	/* names are validated ([A-Za-z0-9_.@-]), so they need no escaping */
	if (len > 0 && (size_t)len < sizeof detail && ch->subject)
		len += snprintf(detail + len, sizeof detail - (size_t)len, ",\"subject\":\"%s\"", ch->subject);
	if (len > 0 && (size_t)len < sizeof detail && why)
		len += snprintf(detail + len, sizeof detail - (size_t)len, ",\"error\":\"%s\"", why);
	if (len <= 0 || (size_t)len + 2 > sizeof detail) {
		gh_api_error(req, resp, 500, "internal", "the audit detail does not fit");
		return GH_ETOOBIG;
	}
	memcpy(detail + len, "}", 2);
	struct gh_audit_record r = {.event = ch->event, .decision = strcmp(status, "ok") == 0 ? "allow" : "deny",
				    .rule = "admin", .status = status, .detail_json = detail};
	return gh_api_audit(req, resp, &r);
}

/* The current version as the store has it now (inside the caller's transaction). */
static int current_version(struct gh_store *st, int64_t *v)
{
	int64_t nrev, sec;
	return gh_store_change_marks(st, v, &nrev, &sec);
}

int gh_api_policy_change(struct gh_api_req *req, struct gh_api_resp *resp, struct gh_api_policy_change *ch)
{
	struct gh_store *st = req->w->store;
	struct gh_policy *cur = NULL, *copy = NULL, *next = NULL;
	struct gh_buf doc;
	char *old = NULL, sha[65] = "";
	int rc = GH_EINVAL;
	gh_buf_init(&ch->diff, (size_t)GH_POLICY_MAX_BYTES * 4);
	gh_buf_init(&doc, (size_t)GH_POLICY_MAX_BYTES * 4);
	pthread_mutex_lock(&change_mu);
	if (gh_store_policy_load(st, &old, &ch->from)) {
		gh_api_error(req, resp, 500, "store_unavailable", "the policy could not be read from the store");
		goto done;
	}
	ch->to = ch->from;
	struct gh_error err;
	if (old && (gh_config_parse(old, strlen(old), "stored policy", NULL, &cur, &err) ||
		    (ch->edit_current && gh_config_parse(old, strlen(old), "stored policy", NULL, &copy, &err)))) {
		gh_log(GH_LOG_ERROR, "stored policy version %lld does not load: %s", (long long)ch->from, err.message);
		gh_api_error(req, resp, 500, "internal", "the stored policy does not load");
		goto done;
	}
	if (ch->expected >= 0 && ch->expected != ch->from) {
		gh_api_error(req, resp, 409, "version_conflict",
			     "the policy is at version %lld, not %lld: someone changed it; read it again and retry",
			     (long long)ch->from, (long long)ch->expected);
		goto done;
	}
	if (ch->next(req, resp, copy, ch->arg, &next))
		goto done;
	if (gh_config_export(next, &doc)) {
		gh_api_error(req, resp, 413, "too_large", "the policy is too large to store");
		goto done;
	}
	ch->changed = !old || strcmp(old, doc.data) != 0;
	if (gh_config_diff(cur, next, &ch->diff, &ch->counts)) {
		gh_api_error(req, resp, 413, "too_large", "the difference is too large to show");
		goto done;
	}
	if (!gh_config_has_admin(next)) {
		gh_api_error(req, resp, 422, "no_admin",
			     "the policy would leave no enabled user in an admins group, so nobody could administer "
			     "Gatehouse through the API; nothing was applied");
		goto done;
	}
	uint8_t h[32];
	crypto_hash_sha256(h, (const uint8_t *)doc.data, doc.len);
	gh_hex_encode(h, 32, sha);
	int64_t to = ch->changed ? ch->from + 1 : ch->from;
	ch->to = ch->dry_run ? ch->from : to;
	{
		/* the record names the version the change makes (or would make) */
		int64_t keep = ch->to;
		ch->to = to;
		rc = record(req, resp, ch, "ok", sha, NULL);
		ch->to = keep;
	}
	if (rc || ch->dry_run || !ch->changed)
		goto done;
	/* record, then act: store the version unless someone else stored one since */
	int64_t now = -1, saved = 0;
	const char *why = NULL;
	if (gh_store_begin(st) || current_version(st, &now))
		why = "store_unavailable";
	else if (now != ch->from)
		why = "version_conflict";
	else if (gh_store_policy_save(st, doc.data, doc.len, &saved) || gh_store_commit(st))
		why = "store_unavailable";
	if (why) {
		gh_store_rollback(st);
		int64_t keep = ch->to;
		ch->to = ch->from;
		record(req, resp, ch, "failed", sha, why); /* best effort: the change did not happen */
		ch->to = keep;
		if (strcmp(why, "version_conflict") == 0)
			gh_api_error(req, resp, 409, "version_conflict",
				     "the policy changed to version %lld meanwhile; nothing was applied", (long long)now);
		else
			gh_api_error(req, resp, 500, "store_unavailable", "the store refused the policy; nothing was applied");
		rc = GH_ECONFLICT;
		goto done;
	}
	ch->to = saved;
	gh_log(GH_LOG_INFO, "policy version %lld applied through the API by %s", (long long)saved, req->claims->sub);
done:
	pthread_mutex_unlock(&change_mu);
	gh_config_unref(next);
	gh_config_unref(copy);
	gh_config_unref(cur);
	free(old);
	gh_buf_free(&doc);
	return rc;
}
