/* fuzz: the policy loader (config). Every input is parsed as a policy document; a document
 * that loads is exported and the export parsed again. gh_config_export promises a document
 * that gh_config_parse "reads back to the same policy", so a re-parse that fails, or a second
 * export that differs from the first, is a real bug and aborts. The difference between the
 * two loads (gh_config_diff) must be empty. Grants' table patterns are matched against a few
 * names (a plain name must match itself). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "policy/policy.h"

#define EXPORT_MAX (64u * 1024 * 1024)

/* Reports a broken round trip with both documents, then aborts so libFuzzer keeps the input. */
static void roundtrip_failed(const char *what, const struct gh_buf *first, const struct gh_buf *second,
			     const struct gh_error *err)
{
	fprintf(stderr, "fuzz_policy: %s\n", what);
	if (err)
		fprintf(stderr, "  error: %s\n", err->message);
	fprintf(stderr, "  export:\n%.*s\n", (int)first->len, first->data);
	if (second)
		fprintf(stderr, "  second export:\n%.*s\n", (int)second->len, second->data);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gh_policy *p = NULL, *q = NULL;
	struct gh_error err;
	struct gh_buf first, second;

	memset(&err, 0, sizeof err);
	if (gh_config_parse((const char *)data, size, "fuzz", "/tmp", &p, &err) != 0) {
		if (p)
			abort(); /* failure promises nothing allocated */
		return 0;
	}
	if (!p)
		abort();

	gh_buf_init(&first, EXPORT_MAX);
	gh_buf_init(&second, EXPORT_MAX);
	if (gh_config_export(p, &first) != 0)
		abort(); /* a loaded policy always exports (far below EXPORT_MAX) */

	memset(&err, 0, sizeof err);
	if (gh_config_parse(first.data, first.len, "fuzz-export", "/tmp", &q, &err) != 0 || !q)
		roundtrip_failed("the export of a loaded policy does not parse", &first, NULL, &err);
	if (gh_config_export(q, &second) != 0)
		abort();
	if (second.len != first.len || memcmp(first.data, second.data, first.len) != 0)
		roundtrip_failed("the export does not read back to the same policy", &first, &second, NULL);

	/* the difference (remote apply's dry run): none between a policy and its re-read export,
	 * and one from nothing that always fits a ceiling of a few times the document */
	struct gh_config_diff n;
	gh_buf_reset(&second);
	if (gh_config_diff(p, q, &second, &n) != 0 || gh_config_diff_total(&n) != 0)
		roundtrip_failed("a policy differs from its own export", &first, &second, NULL);
	gh_buf_reset(&second);
	if (gh_config_diff(NULL, p, &second, &n) != 0 || n.users_added != p->nusers || n.grants_added > p->ngrants)
		roundtrip_failed("the difference from no policy is wrong", &first, &second, NULL);
	(void)gh_config_has_admin(p);

	/* table patterns: matching is total and bounded for whatever the loader accepted */
	static const char *const names[] = {"customers", "public.customers", "sales.orders", "sqlite_master",
					    "pg_class", "REPORT_q1", "", "a.b.c"};
	for (size_t i = 0; i < p->ngrants; i++)
		for (size_t j = 0; j < p->grants[i].ntables; j++) {
			const char *pat = p->grants[i].tables[j].name;
			if (!strpbrk(pat, "*?") &&
			    (!gh_policy_table_match(pat, pat, true) || !gh_policy_table_match(pat, pat, false)))
				abort(); /* a plain name always matches itself */
			for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
				(void)gh_policy_table_match(pat, names[k], true);
				(void)gh_policy_table_match(pat, names[k], false);
			}
		}
	gh_config_unref(q);
	gh_config_unref(p);
	gh_buf_free(&second);
	gh_buf_free(&first);
	return 0;
}
