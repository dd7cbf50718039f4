/* front: endpoints beyond queries and approvals (schema, usage, administration, metrics...),
 * one file each (src/front/api_*.c), listed in the route table of api.c.
 *
 * Contract. A handler runs on a worker thread, after the server checked the route's access
 * (GH_API_TOKEN: a verified token; GH_API_ADMIN: and the caller is in the policy's admins;
 * GH_API_OPEN: nothing, only for what reveals nothing about data or people). It reads the
 * request, fills resp->body with a complete document (JSON unless it sets content_type) and
 * resp->status, or calls gh_api_error. Recording:
 *   - GH_API_READ routes: the server appends one audit record (event = route's event, plus
 *     resp->resource/environment/rows/detail) and releases the response only once it is
 *     durable; if it cannot be written the caller gets 503 instead.
 *   - GH_API_CHANGE routes: the handler calls gh_api_audit BEFORE it applies anything and
 *     applies nothing if that fails (503); it may record a second event for the outcome. A
 *     change handler that returns 2xx without having recorded is answered with 500.
 * Handlers never put a secret (token, key, DSN, secret value) into the body, a log line or a
 * record, and never trust the body: bounded sizes, clear errors. */
#ifndef GH_FRONT_API_H
#define GH_FRONT_API_H

#include <stdbool.h>

#include "audit/audit.h"
#include "config/config.h"
#include "core/core.h"
#include "front/http_parse.h"
#include "identity/identity.h"

struct server;
struct worker;

enum gh_api_access { GH_API_OPEN, GH_API_TOKEN, GH_API_ADMIN };
enum gh_api_kind { GH_API_READ, GH_API_CHANGE };

struct gh_api_req {
	struct server *srv;                 /* server_int.h: store path, pools, vault, audit */
	struct worker *w;                   /* this worker: w->store (durable), w->conn (SQLite) */
	const struct gh_policy *policy;     /* the snapshot the request started with */
	int64_t policy_version;
	const struct gh_claims *claims;     /* the verified caller (zeroed for GH_API_OPEN) */
	const char *groups_json;            /* the caller's groups, a JSON array ("[]" if none) */
	bool admin;                         /* the caller is in the policy's admins */
	const struct gh_http_request *http; /* method, path, headers; gh_api_param for the query */
	const char *method;                 /* NUL-terminated */
	const char *rest;                   /* the variable path segment (gh_api_segment), NUL-terminated,
					     * "" if none; not percent-decoded */
	const char *body;                   /* NUL-terminated copy of the body (bodylen bytes) */
	size_t bodylen;
	const char *request_id, *client;
	bool audited;                       /* set by gh_api_audit */
};

struct gh_api_resp {
	int status;
	struct gh_buf *body;                /* the whole response document */
	const char *content_type;           /* NULL: application/json */
	/* for the record of a GH_API_READ route */
	const char *resource, *environment;
	int64_t rows;                       /* -1: not applicable */
	char detail[512];                   /* a JSON object, or "" */
	char rule[160];                     /* the rule that decided (a grant, a refusal), or "" */
};

typedef void (*gh_api_fn)(struct gh_api_req *req, struct gh_api_resp *resp);

struct gh_api_route {
	const char *method;                 /* "GET", "PUT", "POST", "DELETE" */
	const char *path;                   /* exact; a prefix when it ends with '/'; or with one '*'
					     * standing for one path segment ("/v1/users/" "*" "/disable") */
	enum gh_api_access access;
	enum gh_api_kind kind;
	const char *event;                  /* the audit event of a READ route ("schema.read") */
	gh_api_fn fn;
};

/* The route for method and path: NULL when no route has this path; *wrong_method is set when
 * one has the path but not the method. */
const struct gh_api_route *gh_api_find(const char *method, size_t mlen, const char *path, size_t plen,
				       bool *wrong_method);

/* The variable segment of path under route r (after a prefix route, or what its '*' matched);
 * empty for an exact route. Points into path. */
struct gh_str gh_api_segment(const struct gh_api_route *r, const char *path, size_t plen);

/* Sets an error document {"error":{"code","message","request_id"}}. message holds no secret. */
void gh_api_error(struct gh_api_req *req, struct gh_api_resp *resp, int status, const char *code,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Copies query parameter name (percent-decoded, at most n-1 bytes) into out; false when
 * absent; a value that does not fit or decodes to a NUL is refused with 400 (*bad set). */
bool gh_api_param(struct gh_api_req *req, struct gh_api_resp *resp, const char *name, char *out, size_t n,
		  bool *bad);
/* Appends r durably now, with the request's id, caller, groups, app, client and time filled
 * in (fields the handler set are kept). 0, or non-zero after setting a 503 response. */
int gh_api_audit(struct gh_api_req *req, struct gh_api_resp *resp, struct gh_audit_record *r);

#endif
