/* fuzz: the packed bucket sums of the usage index (usage/blob.c). The first byte picks the kind;
 * the rest is read as a blob of that kind. What decodes must encode again to a blob that decodes
 * to the same entries, and merging entries into it must succeed or refuse (never crash). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usage/usage_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENTRIES 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum usage_kind kind = (enum usage_kind)(1 + data[0] % 3);
	struct usage_blob_iter it;
	static struct usage_entry e[MAX_ENTRIES];
	size_t n = 0;
	int got = 0;
	if (usage_blob_start(&it, data + 1, size - 1, kind) != 0)
		return 0;
	while (n < MAX_ENTRIES) {
		memset(&e[n], 0, sizeof e[n]);
		if ((got = usage_blob_next(&it, &e[n])) != 1)
			break;
		n++;
	}
	if (got < 0 || n == MAX_ENTRIES)
		return 0;
	struct gh_buf out;
	gh_buf_init(&out, 1 << 24);
	if (usage_blob_encode(e, n, kind, &out) != 0) {
		fprintf(stderr, "fuzz_usage_blob: decoded entries do not encode\n");
		abort();
	}
	struct usage_entry x;
	size_t k = 0;
	if (usage_blob_start(&it, out.data, out.len, kind) != 0)
		abort();
	memset(&x, 0, sizeof x);
	while ((got = usage_blob_next(&it, &x)) == 1) {
		if (k >= n || usage_entry_cmp(&x, &e[k]) != 0 || memcmp(x.v, e[k].v, sizeof x.v) != 0) {
			fprintf(stderr, "fuzz_usage_blob: entry %zu changed on the way back\n", k);
			abort();
		}
		k++;
		memset(&x, 0, sizeof x);
	}
	if (got != 0 || k != n)
		abort();
	/* merging: one entry at the first dim and key (summed) and one past the last (appended) */
	struct usage_entry add[2];
	memset(add, 0, sizeof add);
	add[0] = n ? e[0] : add[0];
	for (int i = 0; i < USAGE_NVALS; i++)
		add[0].v[i] = 1;
	add[1].dim = n ? e[n - 1].dim + 1 : 1;
	add[1].v[0] = 2;
	struct gh_buf merged;
	gh_buf_init(&merged, 1 << 24);
	int rc = usage_blob_merge(data + 1, size - 1, add, 2, kind, &merged);
	if (rc != 0 && rc != GH_EINVAL) /* sums may overflow what a varint holds: refused */
		abort();
	gh_buf_free(&merged);
	gh_buf_free(&out);
	return 0;
}
