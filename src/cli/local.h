/* cli: operator helpers shared by the verbs in local.c and run.c (private to cli/). */
#ifndef GH_CLI_LOCAL_H
#define GH_CLI_LOCAL_H

#include "audit/audit.h"
#include "identity/identity.h"

/* Issues a token for user in env (app NULL: ad hoc) after checking them against the applied
 * policy; records it in the store and the audit trail. Returns 0, or the exit status after
 * printing why as "gatehouse VERB: ...". tok holds the token (wipe it after use). */
int cli_issue_token(const char *verb, const char *dir, const char *user, const char *env, const char *app,
		    int64_t ttl, char *tok, size_t toklen, struct gh_claims *claims);
/* Appends one operator event to the data directory's audit trail; 1 (and a message) if it
 * cannot be written. */
int cli_audit_event(const char *verb, const char *dir, struct gh_audit_record *r);

#endif
