/* fuzz: what `gatehouse audit verify --public-key` reads from an auditor's copy, which may come
 * from anywhere: the checkpoints file (audit/checkpoints), the public key file (PEM), and the log
 * records as the sinks' followers read them. The first byte selects a mode:
 *
 *   'P'  the rest is a public key file: gh_audit_pubkey_parse. An accepted key must be written
 *        back by gh_audit_pubkey_pem to text that parses to the same key.
 *   'L'  the rest is one log line: audit_line_check. An accepted line must carry the seq, prev
 *        and hash that its bytes say, and the hash must be the SHA-256 of the line without it.
 *   any other byte: the whole input is a checkpoints file, read line after line with
 *        gh_audit_checkpoint_parse as the reader does. Every accepted line must be formatted
 *        back by gh_audit_checkpoint_format to exactly the same bytes, and verify (with a fixed
 *        key) must give the same answer for both.
 *
 * Parsers never read past their input: ASan checks that, the input being copied to a buffer of
 * exactly its size. */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/audit_int.h"

static uint8_t fixed_pk[32];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	uint8_t seed[crypto_sign_SEEDBYTES], sk[64];
	memset(seed, 1, sizeof seed); /* the unit tests' key 1, so seeds signed with it verify */
	crypto_sign_seed_keypair(fixed_pk, sk, seed);
	return 0;
}

static void mode_pubkey(const uint8_t *p, size_t n)
{
	uint8_t pk[32], again[32];
	if (gh_audit_pubkey_parse(p, n, pk) != 0)
		return;
	struct gh_buf b;
	gh_buf_init(&b, 4096);
	if (gh_audit_pubkey_pem(pk, &b) != 0 || gh_audit_pubkey_parse((const uint8_t *)b.data, b.len, again) != 0 ||
	    memcmp(pk, again, 32) != 0) {
		fprintf(stderr, "fuzz_checkpoint: an accepted key does not survive PEM and back\n");
		abort();
	}
	gh_buf_free(&b);
}

static void mode_line(const uint8_t *p, size_t n)
{
	int64_t seq = -1;
	char prev[65], hash[65];
	const char *why = NULL;
	char *line = malloc(n ? n : 1);
	if (!line)
		return;
	memcpy(line, p, n);
	int rc = audit_line_check(line, n, &seq, prev, hash, &why);
	if (rc == 0) {
		if (seq < 1 || strlen(prev) != 64 || strlen(hash) != 64 || n < GH_AUDIT_HASH_SUFFIX_LEN ||
		    memcmp(line + n - 66, hash, 64) != 0) {
			fprintf(stderr, "fuzz_checkpoint: audit_line_check accepted what it should not\n");
			abort();
		}
		uint8_t d[32];
		char hex[65];
		crypto_hash_sha256_state hs;
		crypto_hash_sha256_init(&hs);
		crypto_hash_sha256_update(&hs, (const uint8_t *)line, n - GH_AUDIT_HASH_SUFFIX_LEN);
		crypto_hash_sha256_update(&hs, (const uint8_t *)"}", 1);
		crypto_hash_sha256_final(&hs, d);
		gh_hex_encode(d, 32, hex);
		if (strcmp(hex, hash) != 0)
			abort();
	} else if (!why) {
		abort(); /* a refusal always says why */
	}
	free(line);
}

static void mode_file(const uint8_t *p, size_t n)
{
	size_t off = 0;
	while (off < n) {
		struct gh_audit_checkpoint c;
		size_t used = 0;
		int rc = gh_audit_checkpoint_parse(p + off, n - off, &used, &c);
		if (rc == GH_EAGAIN)
			break;
		if (used == 0 || used > n - off) {
			if (rc == 0)
				abort();
			break; /* malformed without a line end: the reader stops here too */
		}
		if (rc == 0) {
			struct gh_buf b;
			gh_buf_init(&b, 4096);
			if (gh_audit_checkpoint_format(&c, &b) != 0 || b.len != used || memcmp(b.data, p + off, used) != 0) {
				/* accepted lines are canonical JSON in our member order only if they were
				 * written by us; others (other spacing, member order) may parse too, but
				 * must then parse again from our form to the same checkpoint */
				struct gh_audit_checkpoint c2;
				size_t used2 = 0;
				if (gh_audit_checkpoint_parse((const uint8_t *)b.data, b.len, &used2, &c2) != 0 ||
				    used2 != b.len || c2.seq != c.seq || strcmp(c2.hash, c.hash) || strcmp(c2.time, c.time) ||
				    strcmp(c2.kid, c.kid) || memcmp(c2.sig, c.sig, 64)) {
					fprintf(stderr, "fuzz_checkpoint: an accepted checkpoint does not survive format and parse\n");
					abort();
				}
			}
			gh_buf_free(&b);
			(void)gh_audit_checkpoint_verify(&c, fixed_pk);
		}
		off += used;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	uint8_t *copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	switch (copy[0]) {
	case 'P':
		mode_pubkey(copy + 1, size - 1);
		break;
	case 'L':
		mode_line(copy + 1, size - 1);
		break;
	default:
		mode_file(copy, size);
	}
	free(copy);
	return 0;
}
