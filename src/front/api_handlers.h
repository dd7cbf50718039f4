/* front: the endpoints of api_*.c. GH_API_ROUTES lists them for api.c's route table as
 * X(method, path, access, kind, audit event, handler); one line each. See api.h for the
 * contract every handler keeps. */
#ifndef GH_FRONT_API_HANDLERS_H
#define GH_FRONT_API_HANDLERS_H

#include "front/api.h"

/* api_config.c */
void gh_api_config_get(struct gh_api_req *req, struct gh_api_resp *resp);

/* api_schema.c */
void gh_api_schema_get(struct gh_api_req *req, struct gh_api_resp *resp);

#define GH_API_ROUTES(X) \
	X("GET", "/v1/config", GH_API_ADMIN, GH_API_READ, "config.export", gh_api_config_get) \
	X("GET", "/v1/schema", GH_API_TOKEN, GH_API_READ, "schema.read", gh_api_schema_get)

#endif
