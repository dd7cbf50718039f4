/* cli: operator helpers shared by the verbs in local.c and run.c (private to cli/). */
#ifndef GH_CLI_LOCAL_H
#define GH_CLI_LOCAL_H

#include "audit/audit.h"
#include "identity/identity.h"

#define CLI_MAX_ALSO 4

/* Issues a token for user in env (app NULL: ad hoc) after checking them against the applied
 * policy; records it in the store and the audit trail. Returns 0, or the exit status after
 * printing why as "gatehouse VERB: ...". tok holds the token (wipe it after use).
 * log: the audit trail when the caller has it open (NULL: opened here). also[0..nalso-1]
 * (nalso <= CLI_MAX_ALSO) are appended in the same durable write as the token.issue record,
 * with its request id: nothing is issued unless they are recorded too. */
int cli_issue_token(const char *verb, const char *dir, struct gh_audit *log, const char *user, const char *env,
		    const char *app, int64_t ttl, struct gh_audit_record *also, size_t nalso, char *tok, size_t toklen,
		    struct gh_claims *claims);
/* Appends one operator event to the data directory's audit trail (through log when open, else
 * opened for it); 1 (and a message) if it cannot be written. */
int cli_audit_event(const char *verb, const char *dir, struct gh_audit *log, struct gh_audit_record *r);
/* Marks a token revoked (a run that never started); 0 or non-zero, nothing printed. */
int cli_revoke_token(const char *dir, const char *id);

#endif
