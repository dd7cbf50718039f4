/* gatehouse: parses the verb and hands over to the cli module. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
	static const struct {
		const char *verb;
		int (*fn)(int, char **);
	} verbs[] = {
		{"init", gh_cli_init},     {"apply", gh_cli_apply}, {"export", gh_cli_export},
		{"token", gh_cli_token},   {"serve", gh_cli_serve}, {"audit", gh_cli_audit},
		{"query", gh_cli_query},   {"approvals", gh_cli_approvals}, {"help", gh_cli_help},
		{"secret", gh_cli_secret}, {"scan", gh_cli_scan}, {"run", gh_cli_run},
		{"backup", gh_cli_backup}, {"restore", gh_cli_restore}, {"readiness", gh_cli_readiness},
		{"admin", gh_cli_admin},
		{"schema", gh_cli_schema},
		{"usage", gh_cli_usage},
	};
	if (sodium_init() < 0) {
		fprintf(stderr, "gatehouse: libsodium failed to initialise\n");
		return 1;
	}
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		gh_cli_help(1, argv);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof verbs / sizeof *verbs; i++)
		if (strcmp(argv[1], verbs[i].verb) == 0) {
			return verbs[i].fn(argc - 1, argv + 1);
		}
	fprintf(stderr, "gatehouse: unknown verb '%s' (see 'gatehouse --help')\n", argv[1]);
	return 2;
}
