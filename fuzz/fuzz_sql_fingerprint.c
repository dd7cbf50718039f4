/* fuzz: the statement normaliser behind usage fingerprints (sql/fingerprint.c). Each input is
 * normalised as SQLite and as PostgreSQL text (the first byte picks which runs first) and the
 * contract is checked: it never fails with a buffer of 2 * len + 16, the folded text differs
 * from the written one only in the case of ASCII letters, and normalising the result again
 * gives the same text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *s, size_t len, enum gh_sql_dialect d)
{
	struct gh_buf out, fold, again;
	gh_buf_init(&out, 2 * len + 16);
	gh_buf_init(&fold, 2 * len + 16);
	if (gh_sql_normalize(s, len, d, &out, &fold) != 0) {
		fprintf(stderr, "fuzz_sql_fingerprint: normalize failed within 2 * len + 16\n");
		abort();
	}
	if (out.len != fold.len || out.len > 2 * len + 16) {
		fprintf(stderr, "fuzz_sql_fingerprint: lengths %zu / %zu for input %zu\n", out.len, fold.len, len);
		abort();
	}
	for (size_t i = 0; i < out.len; i++) {
		unsigned char a = (unsigned char)out.data[i], b = (unsigned char)fold.data[i];
		if (a != b && !(a >= 'A' && a <= 'Z' && b == a - 'A' + 'a')) {
			fprintf(stderr, "fuzz_sql_fingerprint: folded text differs at %zu\n", i);
			abort();
		}
	}
	gh_buf_init(&again, 2 * out.len + 16);
	if (gh_sql_normalize(out.data, out.len, d, &again, NULL) != 0 || again.len != out.len ||
	    memcmp(again.data, out.data, out.len) != 0) {
		fprintf(stderr, "fuzz_sql_fingerprint: not idempotent (dialect %d):\n  [%.*s]\n  [%.*s]\n", (int)d,
			(int)out.len, out.data, (int)again.len, again.data ? again.data : "");
		abort();
	}
	char fp[17];
	struct gh_buf ex;
	gh_buf_init(&ex, 2 * len + 16);
	if (gh_sql_fingerprint(s, len, d, fp, &ex) != 0 || strlen(fp) != 16 || ex.len != out.len) {
		fprintf(stderr, "fuzz_sql_fingerprint: fingerprint failed\n");
		abort();
	}
	gh_buf_free(&ex);
	gh_buf_free(&again);
	gh_buf_free(&out);
	gh_buf_free(&fold);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16384) /* libpg_query's cost grows fast with depth; the normaliser is linear */
		return 0;
	enum gh_sql_dialect first = size && (data[0] & 1) ? GH_SQL_DIALECT_PG : GH_SQL_DIALECT_SQLITE;
	check((const char *)data, size, first);
	check((const char *)data, size, first == GH_SQL_DIALECT_PG ? GH_SQL_DIALECT_SQLITE : GH_SQL_DIALECT_PG);
	return 0;
}
