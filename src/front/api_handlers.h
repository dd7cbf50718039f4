/* front: the endpoints of api_*.c. GH_API_ROUTES lists them for api.c's route table as
 * X(method, path, access, kind, audit event, handler); one line each. See api.h for the
 * contract every handler keeps. */
#ifndef GH_FRONT_API_HANDLERS_H
#define GH_FRONT_API_HANDLERS_H

#include "front/api.h"

/* api_config.c */
void gh_api_config_get(struct gh_api_req *req, struct gh_api_resp *resp);
/* api_usage.c */
void gh_api_usage_get(struct gh_api_req *req, struct gh_api_resp *resp);

#define GH_API_ROUTES(X) \
	X("GET", "/v1/config", GH_API_ADMIN, GH_API_READ, "config.export", gh_api_config_get) \
	X("GET", "/v1/usage", GH_API_TOKEN, GH_API_READ, "usage.read", gh_api_usage_get)

#endif
