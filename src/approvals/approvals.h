/* approvals: who may see and decide pending writes, and how an approval is shown.
 * Exactly-once execution rests on gh_store_approval_claim (one atomic state change). */
#ifndef GH_APPROVALS_H
#define GH_APPROVALS_H

#include "config/config.h"
#include "store/store.h"

/* True when user may see a: their own requests, and requests they may review. */
bool gh_approvals_visible(const struct gh_policy *p, const struct gh_approval *a, const char *user);

/* Checks that user may decide a now. Returns 0, or the HTTP status to refuse with and sets
 * *code ("four_eyes", "not_reviewer", "already_decided", "expired") and msg. */
int gh_approvals_check_decider(const struct gh_policy *p, const struct gh_approval *a, const char *user,
			       const char **code, char *msg, size_t msglen);

/* Appends the approval as a JSON object. */
int gh_approvals_json(const struct gh_approval *a, struct gh_buf *out);

#endif
