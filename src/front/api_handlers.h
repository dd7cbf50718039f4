/* front: the endpoints of api_*.c. GH_API_ROUTES lists them for api.c's route table as
 * X(method, path, access, kind, audit event, handler); one line each. See api.h for the
 * contract every handler keeps. */
#ifndef GH_FRONT_API_HANDLERS_H
#define GH_FRONT_API_HANDLERS_H

#include "front/api.h"

/* api_config.c */
void gh_api_config_get(struct gh_api_req *req, struct gh_api_resp *resp);
/* api_config_put.c, api_secret_set.c, api_token_issue.c, api_token_revoke.c, api_user_standing.c:
 * remote administration (api_policy.h has what they share) */
void gh_api_config_put(struct gh_api_req *req, struct gh_api_resp *resp);
void gh_api_secret_set(struct gh_api_req *req, struct gh_api_resp *resp);
void gh_api_token_issue(struct gh_api_req *req, struct gh_api_resp *resp);
void gh_api_token_revoke(struct gh_api_req *req, struct gh_api_resp *resp);
void gh_api_user_disable(struct gh_api_req *req, struct gh_api_resp *resp);
void gh_api_user_enable(struct gh_api_req *req, struct gh_api_resp *resp);

/* api_metrics.c (also served without a token on the --metrics listener, see there) */
void gh_api_metrics_get(struct gh_api_req *req, struct gh_api_resp *resp);

/* api_schema.c */
void gh_api_schema_get(struct gh_api_req *req, struct gh_api_resp *resp);

/* api_usage.c */
void gh_api_usage_get(struct gh_api_req *req, struct gh_api_resp *resp);

#define GH_API_ROUTES(X) \
	X("GET", "/v1/config", GH_API_ADMIN, GH_API_READ, "config.export", gh_api_config_get) \
	X("PUT", "/v1/config", GH_API_ADMIN, GH_API_CHANGE, NULL, gh_api_config_put) \
	X("PUT", "/v1/secrets/", GH_API_ADMIN, GH_API_CHANGE, NULL, gh_api_secret_set) \
	X("POST", "/v1/tokens", GH_API_ADMIN, GH_API_CHANGE, NULL, gh_api_token_issue) \
	X("DELETE", "/v1/tokens/", GH_API_ADMIN, GH_API_CHANGE, NULL, gh_api_token_revoke) \
	X("POST", "/v1/users/*/disable", GH_API_ADMIN, GH_API_CHANGE, NULL, gh_api_user_disable) \
	X("POST", "/v1/users/*/enable", GH_API_ADMIN, GH_API_CHANGE, NULL, gh_api_user_enable) \
	X("GET", "/metrics", GH_API_ADMIN, GH_API_READ, "metrics.read", gh_api_metrics_get) \
	X("GET", "/v1/schema", GH_API_TOKEN, GH_API_READ, "schema.read", gh_api_schema_get) \
	X("GET", "/v1/usage", GH_API_TOKEN, GH_API_READ, "usage.read", gh_api_usage_get)

#endif
