/* usage: the packed sums of one bucket. A bucket's counts, denials and statements are each one
 * BLOB: a kind byte, then entries sorted by (dim, key), each written as varints — the dim as the
 * difference from the previous entry's, the key (rule or fingerprint id) when the kind has one,
 * then the values. A month of hourly buckets is a few thousand blobs a report decodes in a tight
 * loop, instead of a million rows it would step through one by one. Decoding is bounded and
 * refuses anything malformed (fuzz/fuzz_usage_blob.c). */
#include "usage/usage_int.h"

#include <stdlib.h>
#include <string.h>

static const int nvals[] = {[USAGE_COUNTS] = USAGE_NVALS, [USAGE_DENIALS] = 1, [USAGE_STMTS] = 1};

static int put_varint(struct gh_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	do {
		uint8_t byte = v & 0x7F;
		v >>= 7;
		tmp[n++] = (uint8_t)(byte | (v ? 0x80 : 0));
	} while (v);
	return gh_buf_append(b, tmp, n);
}

static bool get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*pos >= len)
			return false;
		uint8_t byte = p[(*pos)++];
		if (shift == 63 && byte > 1)
			return false; /* more than 64 bits */
		v |= (uint64_t)(byte & 0x7F) << shift;
		if (!(byte & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

int usage_blob_encode(const struct usage_entry *e, size_t n, enum usage_kind kind, struct gh_buf *out)
{
	int rc = gh_buf_append(out, (const uint8_t[]){(uint8_t)kind}, 1);
	int64_t dim = 0, key = -1;
	for (size_t i = 0; !rc && i < n; i++) {
		if (e[i].dim < dim || (e[i].dim == dim && e[i].key <= key && i) || e[i].dim < 0 || e[i].key < 0 ||
		    e[i].dim > USAGE_MAX_VALUE || e[i].key > USAGE_MAX_VALUE)
			return GH_EINVAL; /* not sorted, or not ours */
		rc = put_varint(out, (uint64_t)(e[i].dim - dim));
		if (!rc && kind != USAGE_COUNTS)
			rc = put_varint(out, (uint64_t)e[i].key);
		for (int k = 0; !rc && k < nvals[kind]; k++)
			rc = e[i].v[k] < 0 || e[i].v[k] > USAGE_MAX_VALUE ? GH_EINVAL : put_varint(out, (uint64_t)e[i].v[k]);
		dim = e[i].dim;
		key = e[i].key;
	}
	return rc;
}

int usage_blob_start(struct usage_blob_iter *it, const void *blob, size_t len, enum usage_kind kind)
{
	memset(it, 0, sizeof *it);
	it->p = blob;
	it->len = len;
	it->kind = kind;
	it->pos = 1;
	if (len == 0) { /* an absent blob: no entries */
		it->pos = 0;
		return 0;
	}
	return it->p[0] == (uint8_t)kind ? 0 : GH_EINVAL;
}

int usage_blob_next(struct usage_blob_iter *it, struct usage_entry *e)
{
	if (it->pos >= it->len)
		return 0;
	uint64_t d, k = 0, v;
	if (!get_varint(it->p, it->len, &it->pos, &d) ||
	    (it->kind != USAGE_COUNTS && !get_varint(it->p, it->len, &it->pos, &k)) ||
	    d > (uint64_t)USAGE_MAX_VALUE || k > (uint64_t)USAGE_MAX_VALUE ||
	    (uint64_t)it->dim + d > (uint64_t)USAGE_MAX_VALUE)
		return GH_EINVAL; /* ids, like values, stay below 2^53 */
	e->dim = it->dim + (int64_t)d;
	e->key = (int64_t)k;
	if (it->n && d == 0 && e->key <= it->key)
		return GH_EINVAL; /* keys must grow within a dim */
	for (int i = 0; i < nvals[it->kind]; i++) {
		if (!get_varint(it->p, it->len, &it->pos, &v) || v > (uint64_t)USAGE_MAX_VALUE)
			return GH_EINVAL;
		e->v[i] = (int64_t)v;
	}
	it->dim = e->dim;
	it->key = e->key;
	it->n++;
	return 1;
}

int usage_entry_cmp(const void *a, const void *b)
{
	const struct usage_entry *x = a, *y = b;
	if (x->dim != y->dim)
		return x->dim < y->dim ? -1 : 1;
	return x->key < y->key ? -1 : x->key > y->key;
}

int usage_blob_merge(const void *old, size_t oldlen, const struct usage_entry *add, size_t nadd, enum usage_kind kind,
		     struct gh_buf *out)
{
	struct usage_blob_iter it;
	struct usage_entry cur, *merged = NULL;
	size_t n = 0, cap = 0, j = 0;
	int rc = usage_blob_start(&it, old, oldlen, kind), got = 0;
	if (!rc)
		got = usage_blob_next(&it, &cur);
	while (!rc && (got == 1 || j < nadd)) {
		if (got < 0) {
			rc = GH_EINVAL;
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			struct usage_entry *m = realloc(merged, cap * sizeof *m);
			if (!m) {
				rc = GH_ENOMEM;
				break;
			}
			merged = m;
		}
		int c = got != 1 ? 1 : j >= nadd ? -1 : usage_entry_cmp(&cur, &add[j]);
		if (c < 0) {
			merged[n++] = cur;
		} else if (c > 0) {
			merged[n] = add[j++];
			for (int k = 0; k < nvals[kind]; k++)
				if (merged[n].v[k] > USAGE_MAX_VALUE)
					merged[n].v[k] = USAGE_MAX_VALUE;
			n++;
		} else {
			merged[n] = cur;
			for (int k = 0; k < nvals[kind]; k++) {
				int64_t a = add[j].v[k] < 0 ? 0 : add[j].v[k] > USAGE_MAX_VALUE ? USAGE_MAX_VALUE : add[j].v[k];
				merged[n].v[k] = cur.v[k] > USAGE_MAX_VALUE - a ? USAGE_MAX_VALUE : cur.v[k] + a;
			}
			n++;
			j++;
		}
		if (c <= 0)
			got = usage_blob_next(&it, &cur);
	}
	if (!rc && got < 0)
		rc = GH_EINVAL;
	if (!rc)
		rc = usage_blob_encode(merged, n, kind, out);
	free(merged);
	return rc;
}
