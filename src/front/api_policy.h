/* front: what the administrative endpoints share (private to front/): changes to the policy
 * made through the API (PUT /v1/config, user disable/enable), and helpers for their bodies. */
#ifndef GH_FRONT_API_POLICY_H
#define GH_FRONT_API_POLICY_H

#include <jansson.h>

#include "front/api.h"

/* One change of the policy. The caller fills the inputs; gh_api_policy_change fills the rest. */
struct gh_api_policy_change {
	const char *event;   /* the audit event ("config.apply", "config.dry_run", "user.disable") */
	int64_t expected;    /* refuse with 409 unless the current version is this; -1: any */
	bool dry_run;        /* decide and record, apply nothing */
	const char *subject; /* optional "subject" member of the record's detail (a user's name) */
	/* Makes the next policy. With edit_current, copy is a fresh load of the current policy
	 * (NULL when none was applied) that next may change and return with gh_config_ref; else
	 * copy is NULL. *out gets one reference. Non-zero after setting an error response:
	 * nothing is applied. */
	int (*next)(struct gh_api_req *req, struct gh_api_resp *resp, struct gh_policy *copy, void *arg,
		    struct gh_policy **out);
	void *arg;
	bool edit_current;

	int64_t from, to;    /* versions before and after (to == from when nothing was applied) */
	bool changed;        /* the exported document differs from the current one */
	struct gh_config_diff counts;
	struct gh_buf diff;  /* the JSON difference (gh_config_diff); free it with gh_buf_free */
};

/* Under one lock for every policy change this server makes: loads the current policy, checks
 * the expected version (409 version_conflict), makes the next policy, refuses one that leaves
 * no enabled admin (422 no_admin), records ch->event naming the caller with the versions and
 * the counts of the difference (503 if it cannot be recorded), then, unless it is a dry run or
 * nothing changed, stores the next version in one transaction that fails with 409 if another
 * process applied a version in between (recorded as a failed outcome). 0 when the change is
 * recorded (and applied, or not needed); non-zero with the error response set. */
int gh_api_policy_change(struct gh_api_req *req, struct gh_api_resp *resp, struct gh_api_policy_change *ch);

/* Parses req's body as a JSON object (duplicate keys refused): NULL after a 400. */
json_t *gh_api_json_body(struct gh_api_req *req, struct gh_api_resp *resp);

#endif
