/* cli: a small argument parser shared by the verbs (private to cli/). */
#ifndef GH_CLI_ARGS_H
#define GH_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#define ARGS_MAX_POS 256

struct args_opt {
	const char *name;   /* without the leading "--" */
	bool flag;          /* takes no value */
	const char *value;  /* set by args_parse; "1" for a flag that was given */
};

struct args {
	struct args_opt *opts;
	size_t nopts;
	const char *pos[ARGS_MAX_POS];
	size_t npos;
	bool help;
};

/* Parses argv[1..argc) ("--name value", "--name=value", "--" ends options). Prints a usage
 * error to stderr and returns false on an unknown option or a missing value. */
bool args_parse(struct args *a, int argc, char **argv, const char *verb);
const char *args_get(const struct args *a, const char *name);

/* Prints the usage of verb (or of everything for NULL) to stdout. */
void cli_usage(const char *verb);
/* Prints "gatehouse VERB: message" and a hint to stderr; returns 2. */
int cli_usage_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
