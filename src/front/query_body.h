/* front: the POST /v1/query body {"resource","environment","sql","params":[]}. */
#ifndef GH_FRONT_QUERY_BODY_H
#define GH_FRONT_QUERY_BODY_H

#include <jansson.h>

#include "core/core.h"

struct gh_query_body {
	json_t *doc;            /* owns the strings below; free with gh_query_body_free */
	const char *resource, *environment, *sql;
	size_t sqllen;
	json_t *params;         /* an array (possibly empty); borrowed from doc */
};

/* Parses and validates a body. On failure returns non-zero with *status (400 or 413),
 * *code and msg set for the error document; out holds nothing to free. */
int gh_query_body_parse(const char *p, size_t len, int64_t max_statement, struct gh_query_body *out,
			int *status, const char **code, char *msg, size_t msglen);
void gh_query_body_free(struct gh_query_body *b);

#endif
