/* cli: the HTTP client the client verbs share (client.c; private to cli/). */
#ifndef GH_CLI_CLIENT_H
#define GH_CLI_CLIENT_H

#include <jansson.h>

#include "core/core.h"

struct cli_response {
	long status;
	struct gh_buf body; /* the answer's body; the caller frees it (gh_buf_free) */
};

/* Sends one request to GATEHOUSE_URL with GATEHOUSE_TOKEN (body: JSON text or NULL). Returns
 * 0 with r filled, or the exit status after printing why ("gatehouse VERB: ..."): 2 when the
 * token is missing, 1 when the server cannot be reached. The token is never printed. */
int cli_call(const char *verb, const char *method, const char *path, const char *body, struct cli_response *r);
/* Prints an error document as "gatehouse VERB: message (STATUS code)"; returns the exit status
 * for it: 2 for 400, 404 and 413 (input errors), else 1. */
int cli_print_error(const char *verb, struct cli_response *r, json_t *doc);
/* For an answer that is not the expected success: prints its error document (or that it is
 * not JSON), frees r->body and returns the exit status. */
int cli_answer_error(const char *verb, struct cli_response *r);
/* Appends z percent-encoded (everything but RFC 3986's unreserved characters). */
int cli_url_encode(struct gh_buf *b, const char *z);

#endif
