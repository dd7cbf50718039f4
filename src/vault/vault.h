/* vault: the master key and sealing (XChaCha20-Poly1305) of what is kept encrypted at rest. */
#ifndef GH_VAULT_H
#define GH_VAULT_H

#include "core/core.h"
#include "store/store.h"

#define GH_VAULT_KEY_BYTES 32

/* Creates DIR/master.key (mode 0600, 32 random bytes); GH_EEXIST when present. */
int gh_vault_master_create(const char *datadir, struct gh_error *err);
/* Loads the master key from GATEHOUSE_MASTER_KEY (64 hex characters) or DIR/master.key.
 * Refuses a key file readable by group or others. The key is locked in memory where possible;
 * wipe it with gh_vault_wipe. */
int gh_vault_master_load(const char *datadir, uint8_t key[GH_VAULT_KEY_BYTES], struct gh_error *err);
void gh_vault_wipe(void *p, size_t n);
/* Reads a master key file: a regular file (not a symlink) of exactly 32 bytes that group and
 * others cannot read. The error names the path, never the bytes. */
int gh_vault_master_read(const char *path, uint8_t key[GH_VAULT_KEY_BYTES], struct gh_error *err);
/* Writes key to path, which must not exist (mode 0600, fsync'd); nothing stays on failure. */
int gh_vault_master_write(const char *path, const uint8_t key[GH_VAULT_KEY_BYTES], struct gh_error *err);

/* Seals pt under key with ad (the item's name) bound as associated data: out is
 * nonce || ciphertext || tag, malloc'd. */
int gh_vault_seal(const uint8_t key[GH_VAULT_KEY_BYTES], const char *ad, const uint8_t *pt, size_t n,
		  uint8_t **out, size_t *outlen);
/* Opens what gh_vault_seal made; GH_EDENIED when the key, ad or bytes do not match. */
int gh_vault_open(const uint8_t key[GH_VAULT_KEY_BYTES], const char *ad, const uint8_t *ct, size_t n,
		  uint8_t *out, size_t outcap, size_t *outlen);

/* Secrets (credentials for resources). Sealed under the master key with "secret:NAME" as
 * associated data, a fresh nonce each write; set replaces and bumps the version. There is no
 * API that lists or returns a value to a caller outside the server: get is for connectors
 * only. The value is held in guarded memory; release it with gh_vault_secret_free. */
#define GH_VAULT_SECRET_MAX 16384
int gh_vault_secret_set(struct gh_store *st, const uint8_t key[GH_VAULT_KEY_BYTES], const char *name,
			const uint8_t *value, size_t n, int64_t *version);
int gh_vault_secret_get(struct gh_store *st, const uint8_t key[GH_VAULT_KEY_BYTES], const char *name, char **value,
			int64_t *version);
void gh_vault_secret_free(char *value);
/* Opens every stored secret with key, wiping each at once (for checking a restored store):
 * GH_EDENIED naming the first that does not open. *count: how many opened. */
int gh_vault_secrets_check(struct gh_store *st, const uint8_t key[GH_VAULT_KEY_BYTES], int64_t *count,
			   struct gh_error *err);

#endif
