/* fuzz: the audit record scanner of the usage index (usage/record.c). The input is copied (the
 * scanner decodes in place) and scanned; every member it returns must be a NUL-terminated
 * string inside the copy. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usage/usage_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	if (!line)
		return 0;
	memcpy(line, data, size);
	line[size] = '\x7f'; /* not a NUL: a string must be terminated inside [0, size) */
	struct usage_rec r;
	if (usage_record_parse(line, size, &r)) {
		char *m[] = {r.time, r.event, r.user, r.app, r.environment, r.resource, r.statement, r.decision,
			     r.rule, r.status, r.approval, r.requester};
		for (size_t i = 0; i < sizeof m / sizeof *m; i++) {
			if (!m[i])
				continue;
			if (m[i] < line || m[i] >= line + size || !memchr(m[i], '\0', (size_t)(line + size - m[i]))) {
				fprintf(stderr, "fuzz_usage_record: member %zu is not a string inside the line\n", i);
				abort();
			}
		}
		int64_t ms;
		if (r.time)
			(void)usage_parse_rfc3339(r.time, strlen(r.time), &ms);
	}
	free(line);
	return 0;
}
