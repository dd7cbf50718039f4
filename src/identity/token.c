/* identity: Ed25519 JWTs (RFC 7519 / RFC 8037) issued and verified by Gatehouse. */
#include "identity/identity.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vault/vault.h"

#define SK_AD "gatehouse:signing-key"

int gh_identity_keygen(struct gh_store *st, const uint8_t master[32], struct gh_error *err)
{
	uint8_t pk[32], sk[64], hash[32];
	char kid[64];
	uint8_t *sealed = NULL;
	size_t sealedlen = 0;
	crypto_sign_keypair(pk, sk);
	crypto_hash_sha256(hash, pk, sizeof pk);
	gh_hex_encode(hash, 8, kid);
	int rc = gh_vault_seal(master, SK_AD, sk, sizeof sk, &sealed, &sealedlen);
	sodium_memzero(sk, sizeof sk);
	if (rc)
		return gh_error_set(err, rc, "cannot seal the signing key");
	rc = gh_store_signing_key_put(st, kid, pk, sealed, sealedlen);
	free(sealed);
	return rc ? gh_error_set(err, rc, "cannot store the signing key") : 0;
}

int gh_identity_signer_load(struct gh_store *st, const uint8_t master[32], struct gh_signer *out,
			    struct gh_error *err)
{
	uint8_t *sealed = NULL;
	size_t sealedlen = 0, sklen = 0;
	sodium_mlock(out, sizeof *out);
	int rc = gh_store_signing_key_get(st, out->kid, out->pk, &sealed, &sealedlen);
	if (rc)
		return gh_error_set(err, rc, "no signing key in the store (was the data directory initialised?)");
	rc = gh_vault_open(master, SK_AD, sealed, sealedlen, out->sk, sizeof out->sk, &sklen);
	free(sealed);
	if (rc || sklen != sizeof out->sk) {
		sodium_memzero(out->sk, sizeof out->sk);
		return gh_error_set(err, GH_EDENIED, "the signing key does not open with this master key");
	}
	return 0;
}

void gh_identity_signer_wipe(struct gh_signer *s)
{
	sodium_memzero(s->sk, sizeof s->sk);
}

/* base64url(JSON) of a jansson value into out. */
static int b64_json(json_t *v, char *out, size_t outlen)
{
	char *s = json_dumps(v, JSON_COMPACT);
	if (!s)
		return GH_ENOMEM;
	size_t n = gh_b64url_encode((const uint8_t *)s, strlen(s), out, outlen);
	free(s);
	return n ? 0 : GH_ETOOBIG;
}

int gh_token_issue(const struct gh_signer *s, const char *user, const char *env, const char *app,
		   int64_t ttl, int64_t now, char *out, size_t outlen, struct gh_claims *claims,
		   struct gh_error *err)
{
	if (ttl <= 0 || ttl > GH_TOKEN_MAX_TTL)
		return gh_error_set(err, GH_EINVAL, "ttl must be between 1 second and 24h");
	if (strlen(user) > GH_NAME_MAX || strlen(env) > GH_NAME_MAX || (app && strlen(app) > GH_NAME_MAX))
		return gh_error_set(err, GH_EINVAL, "name too long");
	struct gh_claims c;
	memset(&c, 0, sizeof c);
	snprintf(c.sub, sizeof c.sub, "%s", user);
	snprintf(c.env, sizeof c.env, "%s", env);
	snprintf(c.app, sizeof c.app, "%s", app ? app : "");
	gh_random_id("tok", 16, c.jti, sizeof c.jti);
	c.iat = now;
	c.exp = now + ttl;

	json_t *hdr = json_pack("{s:s,s:s,s:s}", "alg", "EdDSA", "typ", "JWT", "kid", s->kid);
	json_t *pl = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "iss", GH_TOKEN_ISSUER, "sub", c.sub, "env", c.env,
			       "iat", (json_int_t)c.iat, "exp", (json_int_t)c.exp, "jti", c.jti);
	int rc = GH_ENOMEM;
	char h64[256], p64[1024];
	if (!hdr || !pl)
		goto done;
	if (app && *app && json_object_set_new(pl, "app", json_string(app)))
		goto done;
	if ((rc = b64_json(hdr, h64, sizeof h64)) || (rc = b64_json(pl, p64, sizeof p64)))
		goto done;
	char signing[1400];
	int n = snprintf(signing, sizeof signing, "%s.%s", h64, p64);
	if (n < 0 || (size_t)n >= sizeof signing) {
		rc = GH_ETOOBIG;
		goto done;
	}
	uint8_t sig[64];
	char s64[100];
	crypto_sign_detached(sig, NULL, (const uint8_t *)signing, (size_t)n, s->sk);
	gh_b64url_encode(sig, sizeof sig, s64, sizeof s64);
	if (snprintf(out, outlen, "%s.%s", signing, s64) >= (int)outlen) {
		rc = GH_ETOOBIG;
		goto done;
	}
	if (claims)
		*claims = c;
	rc = 0;
done:
	json_decref(hdr);
	json_decref(pl);
	return rc ? gh_error_set(err, rc, "cannot issue token") : 0;
}

/* Decodes one base64url JSON object segment with strict parsing. */
static json_t *segment_json(const char *p, size_t n, size_t max)
{
	uint8_t buf[GH_TOKEN_MAX_BYTES];
	size_t len = 0;
	if (n == 0 || n > max || gh_b64url_decode(p, n, buf, sizeof buf, &len))
		return NULL;
	json_error_t je;
	json_t *v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
	if (v && !json_is_object(v)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

static int claim_str(json_t *o, const char *key, char *out, size_t outlen, bool required)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return required ? GH_EINVAL : 0;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= outlen ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return GH_EINVAL;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

int gh_token_verify(const char *tok, size_t len, const char *kid, const uint8_t pk[32], int64_t now,
		    struct gh_claims *out, struct gh_error *err)
{
	if (len == 0 || len > GH_TOKEN_MAX_BYTES)
		return gh_error_set(err, GH_EINVAL, "token is empty or too long");
	const char *d1 = memchr(tok, '.', len);
	const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
	if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
		return gh_error_set(err, GH_EINVAL, "token is not a compact JWT (three dot-separated parts)");

	json_t *hdr = segment_json(tok, (size_t)(d1 - tok), 512), *pl = NULL;
	int rc = GH_EINVAL;
	if (!hdr) {
		gh_error_set(err, rc, "token header is not valid base64url JSON");
		goto done;
	}
	/* Exactly our header: alg EdDSA (never "none", never HMAC), typ JWT, our kid, nothing else. */
	json_t *alg = json_object_get(hdr, "alg"), *typ = json_object_get(hdr, "typ"), *k = json_object_get(hdr, "kid");
	if (!json_is_string(alg) || strcmp(json_string_value(alg), "EdDSA") != 0) {
		gh_error_set(err, rc, "token algorithm must be EdDSA");
		goto done;
	}
	if (!json_is_string(typ) || strcmp(json_string_value(typ), "JWT") != 0 || json_object_size(hdr) != 3) {
		gh_error_set(err, rc, "token header must be exactly {alg, typ: JWT, kid}");
		goto done;
	}
	if (!json_is_string(k) || strcmp(json_string_value(k), kid) != 0) {
		gh_error_set(err, rc, "token key id is not known");
		goto done;
	}
	uint8_t sig[64];
	size_t siglen = 0;
	size_t s64len = len - (size_t)(d2 + 1 - tok);
	if (s64len != 86 || gh_b64url_decode(d2 + 1, s64len, sig, sizeof sig, &siglen) || siglen != 64) {
		gh_error_set(err, rc, "token signature is malformed");
		goto done;
	}
	if (crypto_sign_verify_detached(sig, (const uint8_t *)tok, (size_t)(d2 - tok), pk) != 0) {
		gh_error_set(err, rc, "token signature does not verify");
		goto done;
	}
	pl = segment_json(d1 + 1, (size_t)(d2 - d1 - 1), GH_TOKEN_MAX_BYTES);
	if (!pl) {
		gh_error_set(err, rc, "token payload is not valid base64url JSON");
		goto done;
	}
	struct gh_claims c;
	memset(&c, 0, sizeof c);
	char iss[32];
	json_t *iat = json_object_get(pl, "iat"), *exp = json_object_get(pl, "exp");
	if (claim_str(pl, "iss", iss, sizeof iss, true) || strcmp(iss, GH_TOKEN_ISSUER) != 0 ||
	    claim_str(pl, "sub", c.sub, sizeof c.sub, true) || claim_str(pl, "env", c.env, sizeof c.env, true) ||
	    claim_str(pl, "app", c.app, sizeof c.app, false) || claim_str(pl, "jti", c.jti, sizeof c.jti, true) ||
	    !json_is_integer(iat) || !json_is_integer(exp)) {
		gh_error_set(err, rc, "token claims are missing or malformed");
		goto done;
	}
	c.iat = json_integer_value(iat);
	c.exp = json_integer_value(exp);
	/* bound before any arithmetic: no overflow whatever a signed token claims */
	if (c.iat <= 0 || c.exp <= 0 || c.iat > ((int64_t)1 << 40) || c.exp > ((int64_t)1 << 40) ||
	    c.exp <= c.iat || c.exp - c.iat > GH_TOKEN_MAX_TTL) {
		gh_error_set(err, rc, "token lifetime is invalid");
		goto done;
	}
	if (now > c.exp + GH_TOKEN_SKEW) {
		gh_error_set(err, rc, "token has expired");
		goto done;
	}
	if (c.iat > now + GH_TOKEN_SKEW) {
		gh_error_set(err, rc, "token is not valid yet");
		goto done;
	}
	*out = c;
	rc = 0;
done:
	json_decref(hdr);
	json_decref(pl);
	return rc;
}

int gh_identity_jwks(const struct gh_signer *s, struct gh_buf *out)
{
	char x[64];
	gh_b64url_encode(s->pk, sizeof s->pk, x, sizeof x);
	return gh_buf_printf(out, "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"alg\":\"EdDSA\",\"use\":\"sig\","
				  "\"kid\":\"%s\",\"x\":\"%s\"}]}", s->kid, x);
}
