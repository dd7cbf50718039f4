/* identity: the signing key, tokens (issue, verify), the JWKS document. */
#ifndef GH_IDENTITY_H
#define GH_IDENTITY_H

#include "core/core.h"
#include "store/store.h"

#define GH_TOKEN_ISSUER "gatehouse"

struct gh_signer {
	char kid[64];
	uint8_t pk[32];
	uint8_t sk[64]; /* locked in memory; wiped by gh_identity_signer_wipe */
};

/* The claims of a verified token. */
struct gh_claims {
	char sub[GH_NAME_MAX + 1];
	char env[GH_NAME_MAX + 1];
	char app[GH_NAME_MAX + 1]; /* "" when the token names no app */
	char jti[64];
	int64_t iat, exp;
};

/* Makes a new Ed25519 key pair and stores it sealed with the master key. */
int gh_identity_keygen(struct gh_store *st, const uint8_t master[32], struct gh_error *err);
/* Loads and unseals the newest signing key. */
int gh_identity_signer_load(struct gh_store *st, const uint8_t master[32], struct gh_signer *out,
			    struct gh_error *err);
void gh_identity_signer_wipe(struct gh_signer *s);

/* Issues a token for user/env/app (app may be NULL) valid ttl seconds from now.
 * Writes the compact JWT into out and the claims into claims. */
int gh_token_issue(const struct gh_signer *s, const char *user, const char *env, const char *app,
		   int64_t ttl, int64_t now, char *out, size_t outlen, struct gh_claims *claims,
		   struct gh_error *err);

/* Verifies a compact JWT: exact alg EdDSA, typ JWT, known kid, valid signature, issuer,
 * expiry (with GH_TOKEN_SKEW), lifetime <= GH_TOKEN_MAX_TTL. Revocation and user checks
 * are the caller's. Never reads past len. err never contains the token. */
int gh_token_verify(const char *tok, size_t len, const char *kid, const uint8_t pk[32], int64_t now,
		    struct gh_claims *out, struct gh_error *err);

/* Writes the JWKS document (RFC 7517, OKP/Ed25519) for the public key. */
int gh_identity_jwks(const struct gh_signer *s, struct gh_buf *out);

#endif
