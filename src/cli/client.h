/* cli: the HTTP client of the client verbs (client.c), for verbs kept in files of their own
 * (private to cli/). */
#ifndef GH_CLI_CLIENT_H
#define GH_CLI_CLIENT_H

#include "core/core.h"

/* Sends one request to GATEHOUSE_URL with GATEHOUSE_TOKEN. 0 with *status and *out (a buffer
 * the caller frees) filled; otherwise the exit status, after printing why. */
int cli_http(const char *verb, const char *method, const char *path, const char *body, long *status,
	     struct gh_buf *out);
/* Prints the error document of a failed request; returns the exit status for its HTTP status. */
int cli_http_error(const char *verb, long status, const struct gh_buf *body);

#endif
