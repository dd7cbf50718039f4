/* Shared by the cmocka unit tests: report this suite's counts to tests/run. */
#ifndef GH_TESTS_UNIT_H
#define GH_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <sodium.h>

static inline void gh_unit_report(const char *name, size_t total, int failed)
{
	const char *path = getenv("GH_TEST_RESULTS");
	if (failed < 0)
		failed = (int)total;
	printf("%s: %zu passed, %d failed\n", name, total - (size_t)failed, failed);
	if (path) {
		FILE *f = fopen(path, "a");
		if (f) {
			fprintf(f, "%zu %d unit/%s\n", total - (size_t)failed, failed, name);
			fclose(f);
		}
	}
}

/* Defines main(): runs the tests array as one group and reports. */
#define GH_UNIT_MAIN(name, tests)                                                   \
	int main(void)                                                              \
	{                                                                           \
		if (sodium_init() < 0)                                              \
			return 1;                                                   \
		int failed = cmocka_run_group_tests_name(name, tests, NULL, NULL);  \
		gh_unit_report(name, sizeof(tests) / sizeof((tests)[0]), failed);   \
		return failed ? 1 : 0;                                              \
	}

#endif
