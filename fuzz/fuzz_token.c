/* fuzz: token verification (identity). One fixed Ed25519 key pair, made once from a fixed seed,
 * with key id "fuzzkid"; the clock is fixed at NOW. The first byte of the input selects a mode:
 *
 *   'I'  issue a real token with gh_token_issue (names, ttl and issue time chosen by the next
 *        bytes), apply the rest of the input to its text as edits, verify. An unedited token
 *        that was issued valid must verify to exactly the issued claims.
 *   'S'  issue a real token, decode its header and payload, apply the edits to that JSON,
 *        encode and sign it again with the key, verify: the signature is good, so this reaches
 *        every header and claim check.
 *   'J'  the rest is "HEADER-JSON\nPAYLOAD-JSON" (or only PAYLOAD-JSON, under our header):
 *        encode, sign, verify.
 *   any other byte: the whole input is the token (real tokens are seeds as they are).
 *
 * Whenever gh_token_verify accepts, the claims it returns must satisfy what it promises. */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/identity.h"

#define KID "fuzzkid"
#define NOW INT64_C(1700000000)
#define TOKCAP 12288 /* a token here may exceed GH_TOKEN_MAX_BYTES: that is a case to test */
#define JSONCAP 4608

static struct gh_signer signer;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	for (size_t i = 0; i < sizeof seed; i++)
		seed[i] = (uint8_t)(0x5a ^ i);
	crypto_sign_seed_keypair(signer.pk, signer.sk, seed);
	snprintf(signer.kid, sizeof signer.kid, "%s", KID);
	return 0;
}

/* Checks what an accepted token promises: the claims are NUL-terminated strings, the required
 * ones non-empty, the lifetime valid and the token current at NOW. */
static void check_accepted(const struct gh_claims *c)
{
	if (!memchr(c->sub, 0, sizeof c->sub) || !memchr(c->env, 0, sizeof c->env) ||
	    !memchr(c->app, 0, sizeof c->app) || !memchr(c->jti, 0, sizeof c->jti))
		abort();
	if (!c->sub[0] || !c->env[0] || !c->jti[0])
		abort();
	if (c->exp <= c->iat || c->exp - c->iat > GH_TOKEN_MAX_TTL)
		abort();
	if (NOW > c->exp + GH_TOKEN_SKEW || c->iat > NOW + GH_TOKEN_SKEW)
		abort();
}

/* Verifies tok[0..len) and checks the result; returns verify's code. */
static int verify(const char *tok, size_t len, struct gh_claims *c)
{
	struct gh_error err;
	memset(&err, 0, sizeof err);
	memset(c, 0, sizeof *c);
	int rc = gh_token_verify(tok, len, KID, signer.pk, NOW, c, &err);
	if (rc == 0)
		check_accepted(c);
	else if (rc > 0 || !err.message[0])
		abort(); /* failures are negative codes with a reason */
	return rc;
}

/* Applies 4-byte edits (op, position hi, position lo, value) to buf[0..len), which holds cap
 * bytes; op & 3 is overwrite, insert, delete or truncate. Returns the new length. */
static size_t apply_edits(char *buf, size_t len, size_t cap, const uint8_t *e, size_t n, int part)
{
	for (size_t i = 0; i + 4 <= n; i += 4) {
		if (part >= 0 && (e[i] >> 7) != part)
			continue; /* the edit is for the other part */
		size_t pos = (((size_t)e[i + 1] << 8) | e[i + 2]) % (len + 1);
		char v = (char)e[i + 3];
		switch (e[i] & 3) {
		case 0:
			if (pos < len)
				buf[pos] = v;
			break;
		case 1:
			if (len < cap) {
				memmove(buf + pos + 1, buf + pos, len - pos);
				buf[pos] = v;
				len++;
			}
			break;
		case 2:
			if (pos < len) {
				memmove(buf + pos, buf + pos + 1, len - pos - 1);
				len--;
			}
			break;
		default:
			len = pos;
		}
	}
	return len;
}

/* Encodes header and payload, signs them with the fuzz key and writes the compact JWT. */
static size_t sign_token(const char *h, size_t hn, const char *p, size_t pn, char *out, size_t cap)
{
	size_t o = 0, k;
	if (hn && !(o = gh_b64url_encode((const uint8_t *)h, hn, out, cap)))
		return 0;
	if (o + 2 >= cap)
		return 0;
	out[o++] = '.';
	if (pn) {
		if (!(k = gh_b64url_encode((const uint8_t *)p, pn, out + o, cap - o)))
			return 0;
		o += k;
	}
	uint8_t sig[crypto_sign_BYTES];
	crypto_sign_detached(sig, NULL, (const uint8_t *)out, o, signer.sk);
	if (o + 1 + 90 >= cap)
		return 0;
	out[o++] = '.';
	o += gh_b64url_encode(sig, sizeof sig, out + o, cap - o);
	return o;
}

static const char *const names[] = {
	"alice", "staging", "invoices", "", "user.name@example.com", "caf\xc3\xa9", "tab\tand\"quote",
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};
#define NNAMES (sizeof names / sizeof *names)

/* The issue parameters taken from 5 bytes: user, env, app (or none), ttl, issue time. */
struct issue {
	const char *user, *env, *app;
	int64_t ttl, iat;
};

static void issue_params(const uint8_t *b, struct issue *is)
{
	is->user = names[(b[0] & 7) % NNAMES];
	is->env = names[((b[0] >> 3) & 7) % NNAMES];
	is->app = (b[0] & 0x40) ? names[((b[1] >> 4) & 7) % NNAMES] : NULL;
	is->ttl = (int64_t)((((unsigned)b[2] << 8) | b[3]) * 2u) - 64; /* -64 .. 131006 s */
	is->iat = NOW + (int64_t)(int8_t)b[4] * 16;                   /* NOW -2048 .. +2032 s */
}

/* Mode 'I': a real token, edited as text. */
static void mode_issue(const uint8_t *data, size_t size)
{
	static char tok[TOKCAP];
	struct issue is;
	struct gh_claims issued, got;
	struct gh_error err;
	if (size < 6)
		return;
	issue_params(data + 1, &is);
	memset(&err, 0, sizeof err);
	if (gh_token_issue(&signer, is.user, is.env, is.app, is.ttl, is.iat, tok, sizeof tok, &issued, &err) != 0)
		return;
	size_t len = apply_edits(tok, strlen(tok), sizeof tok, data + 6, size - 6, -1);
	int rc = verify(tok, len, &got);
	if (size - 6 >= 4)
		return; /* edited: any answer is possible, and verify() checked an acceptance */
	/* Unedited: must verify to the issued claims exactly when it was issued valid for NOW. */
	bool want = is.user[0] && is.env[0] && NOW <= issued.exp + GH_TOKEN_SKEW && issued.iat <= NOW + GH_TOKEN_SKEW;
	if (want != (rc == 0))
		abort();
	if (rc == 0 && (strcmp(got.sub, issued.sub) || strcmp(got.env, issued.env) || strcmp(got.app, issued.app) ||
			strcmp(got.jti, issued.jti) || got.iat != issued.iat || got.exp != issued.exp))
		abort();
}

/* Decodes one base64url segment of tok into out; returns its length or (size_t)-1. */
static size_t decode_part(const char *p, size_t n, char *out, size_t cap)
{
	size_t len = 0;
	if (gh_b64url_decode(p, n, (uint8_t *)out, cap, &len) != 0)
		return (size_t)-1;
	return len;
}

/* Mode 'S': a real token whose decoded JSON is edited and signed again. */
static void mode_resign(const uint8_t *data, size_t size)
{
	static char tok[TOKCAP], out[TOKCAP], hdr[JSONCAP], pl[JSONCAP];
	struct issue is;
	struct gh_claims got;
	struct gh_error err;
	if (size < 6)
		return;
	issue_params(data + 1, &is);
	memset(&err, 0, sizeof err);
	if (gh_token_issue(&signer, is.user, is.env, is.app, is.ttl, is.iat, tok, sizeof tok, NULL, &err) != 0)
		return;
	char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (!d1 || !d2)
		abort(); /* gh_token_issue made something that is not a compact JWT */
	size_t hn = decode_part(tok, (size_t)(d1 - tok), hdr, sizeof hdr);
	size_t pn = decode_part(d1 + 1, (size_t)(d2 - d1 - 1), pl, sizeof pl);
	if (hn == (size_t)-1 || pn == (size_t)-1)
		abort(); /* gh_token_issue's own encoding does not decode */
	hn = apply_edits(hdr, hn, sizeof hdr, data + 6, size - 6, 1);
	pn = apply_edits(pl, pn, sizeof pl, data + 6, size - 6, 0);
	size_t len = sign_token(hdr, hn, pl, pn, out, sizeof out);
	if (len)
		verify(out, len, &got);
}

/* Mode 'J': JSON from the input, signed. */
static void mode_json(const uint8_t *data, size_t size)
{
	static const char our_hdr[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"" KID "\"}";
	static char out[TOKCAP];
	struct gh_claims got;
	const char *rest = (const char *)data + 1, *h = our_hdr, *p = rest;
	size_t n = size - 1, hn = sizeof our_hdr - 1, pn = n;
	const char *nl = memchr(rest, '\n', n);
	if (nl) {
		h = rest;
		hn = (size_t)(nl - rest);
		p = nl + 1;
		pn = n - hn - 1;
	}
	if (hn > JSONCAP || pn > JSONCAP)
		return;
	size_t len = sign_token(h, hn, p, pn, out, sizeof out);
	if (len)
		verify(out, len, &got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gh_claims got;
	if (size == 0)
		return 0;
	switch (data[0]) {
	case 'I':
		mode_issue(data, size);
		break;
	case 'S':
		mode_resign(data, size);
		break;
	case 'J':
		mode_json(data, size);
		break;
	default:
		verify((const char *)data, size, &got);
	}
	return 0;
}
