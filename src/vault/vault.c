/* vault: master key file and AEAD sealing with libsodium. */
#include "vault/vault.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

int gh_vault_master_create(const char *datadir, struct gh_error *err)
{
	char path[PATH_MAX];
	uint8_t key[GH_VAULT_KEY_BYTES];
	if (gh_path_join(path, sizeof path, datadir, "master.key"))
		return gh_error_set(err, GH_ETOOBIG, "path too long");
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return gh_error_set(err, errno == EEXIST ? GH_EEXIST : GH_EIO, "%s: %s", path, strerror(errno));
	randombytes_buf(key, sizeof key);
	ssize_t w = write(fd, key, sizeof key);
	sodium_memzero(key, sizeof key);
	if (w != (ssize_t)sizeof key || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(path);
		return gh_error_set(err, GH_EIO, "%s: %s", path, strerror(e));
	}
	close(fd);
	return 0;
}

int gh_vault_master_load(const char *datadir, uint8_t key[GH_VAULT_KEY_BYTES], struct gh_error *err)
{
	const char *env = getenv("GATEHOUSE_MASTER_KEY");
	sodium_mlock(key, GH_VAULT_KEY_BYTES);
	if (env && *env) {
		if (gh_hex_decode(env, strlen(env), key, GH_VAULT_KEY_BYTES))
			return gh_error_set(err, GH_EINVAL, "GATEHOUSE_MASTER_KEY: expected 64 hexadecimal characters");
		return 0;
	}
	char path[PATH_MAX];
	if (gh_path_join(path, sizeof path, datadir, "master.key"))
		return gh_error_set(err, GH_ETOOBIG, "path too long");
	return gh_vault_master_read(path, key, err);
}

int gh_vault_master_read(const char *path, uint8_t key[GH_VAULT_KEY_BYTES], struct gh_error *err)
{
	sodium_mlock(key, GH_VAULT_KEY_BYTES);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return gh_error_set(err, GH_EIO, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return gh_error_set(err, GH_EIO, "%s: not a regular file", path);
	}
	if (st.st_mode & 077) {
		close(fd);
		return gh_error_set(err, GH_EDENIED, "%s: mode %03o lets others read the master key; "
				    "run chmod 600 on it", path, (unsigned)(st.st_mode & 0777));
	}
	ssize_t r = read(fd, key, GH_VAULT_KEY_BYTES);
	uint8_t extra;
	ssize_t more = read(fd, &extra, 1);
	close(fd);
	if (r != GH_VAULT_KEY_BYTES || more != 0) {
		sodium_memzero(key, GH_VAULT_KEY_BYTES);
		return gh_error_set(err, GH_EINVAL, "%s: expected exactly %d bytes", path, GH_VAULT_KEY_BYTES);
	}
	return 0;
}

int gh_vault_master_write(const char *path, const uint8_t key[GH_VAULT_KEY_BYTES], struct gh_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return gh_error_set(err, errno == EEXIST ? GH_EEXIST : GH_EIO, "%s: %s", path, strerror(errno));
	ssize_t w = write(fd, key, GH_VAULT_KEY_BYTES);
	if (w != GH_VAULT_KEY_BYTES || fchmod(fd, 0600) < 0 || fsync(fd) < 0) {
		int e = w < 0 || w == GH_VAULT_KEY_BYTES ? errno : ENOSPC;
		close(fd);
		unlink(path);
		return gh_error_set(err, GH_EIO, "%s: %s", path, strerror(e));
	}
	if (close(fd) < 0) {
		int e = errno;
		unlink(path);
		return gh_error_set(err, GH_EIO, "%s: %s", path, strerror(e));
	}
	return 0;
}

void gh_vault_wipe(void *p, size_t n)
{
	sodium_memzero(p, n);
}

int gh_vault_seal(const uint8_t key[GH_VAULT_KEY_BYTES], const char *ad, const uint8_t *pt, size_t n,
		  uint8_t **out, size_t *outlen)
{
	size_t len = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + n + crypto_aead_xchacha20poly1305_ietf_ABYTES;
	uint8_t *buf = malloc(len);
	if (!buf)
		return GH_ENOMEM;
	randombytes_buf(buf, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(buf + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen, pt, n,
						   (const uint8_t *)ad, strlen(ad), NULL, buf, key);
	*out = buf;
	*outlen = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + (size_t)clen;
	return 0;
}

int gh_vault_open(const uint8_t key[GH_VAULT_KEY_BYTES], const char *ad, const uint8_t *ct, size_t n,
		  uint8_t *out, size_t outcap, size_t *outlen)
{
	const size_t nb = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
	if (n < nb + crypto_aead_xchacha20poly1305_ietf_ABYTES)
		return GH_EINVAL;
	if (n - nb - crypto_aead_xchacha20poly1305_ietf_ABYTES > outcap)
		return GH_ETOOBIG;
	unsigned long long plen = 0;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &plen, NULL, ct + nb, n - nb, (const uint8_t *)ad,
						       strlen(ad), ct, key) != 0)
		return GH_EDENIED;
	*outlen = (size_t)plen;
	return 0;
}

/* ---- secrets: write-only storage of credentials for resources ---- */

static int secret_ad(const char *name, char *ad, size_t n)
{
	int k = snprintf(ad, n, "secret:%s", name);
	return k < 0 || (size_t)k >= n ? GH_ETOOBIG : 0;
}

int gh_vault_secret_set(struct gh_store *st, const uint8_t key[GH_VAULT_KEY_BYTES], const char *name,
			const uint8_t *value, size_t n, int64_t *version)
{
	char ad[GH_NAME_MAX + 16];
	if (n == 0 || n > GH_VAULT_SECRET_MAX || secret_ad(name, ad, sizeof ad))
		return GH_EINVAL;
	uint8_t *sealed = NULL;
	size_t slen = 0;
	int rc = gh_vault_seal(key, ad, value, n, &sealed, &slen);
	if (rc)
		return rc;
	rc = gh_store_secret_put(st, name, sealed, slen, version);
	free(sealed);
	return rc;
}

int gh_vault_secret_get(struct gh_store *st, const uint8_t key[GH_VAULT_KEY_BYTES], const char *name, char **value,
			int64_t *version)
{
	char ad[GH_NAME_MAX + 16];
	if (secret_ad(name, ad, sizeof ad))
		return GH_EINVAL;
	uint8_t *sealed = NULL;
	size_t slen = 0;
	int rc = gh_store_secret_get(st, name, &sealed, &slen, version);
	if (rc)
		return rc;
	char *out = sodium_malloc(GH_VAULT_SECRET_MAX + 1);
	size_t plen = 0;
	if (!out) {
		free(sealed);
		return GH_ENOMEM;
	}
	rc = gh_vault_open(key, ad, sealed, slen, (uint8_t *)out, GH_VAULT_SECRET_MAX, &plen);
	free(sealed);
	if (rc) {
		sodium_free(out);
		return rc;
	}
	out[plen] = '\0';
	*value = out;
	return 0;
}

void gh_vault_secret_free(char *value)
{
	if (value)
		sodium_free(value); /* zeroes the memory before releasing it */
}

struct secrets_check {
	const uint8_t *key;
	uint8_t *buf; /* guarded memory for each opened value */
	int64_t count;
	char bad[GH_NAME_MAX + 1];
};

static int check_one(const char *name, const uint8_t *sealed, size_t len, void *arg)
{
	struct secrets_check *c = arg;
	char ad[GH_NAME_MAX + 16];
	size_t plen = 0;
	int rc = secret_ad(name, ad, sizeof ad);
	if (!rc)
		rc = gh_vault_open(c->key, ad, sealed, len, c->buf, GH_VAULT_SECRET_MAX, &plen);
	sodium_memzero(c->buf, GH_VAULT_SECRET_MAX);
	if (rc) {
		snprintf(c->bad, sizeof c->bad, "%s", name);
		return GH_EDENIED;
	}
	c->count++;
	return 0;
}

int gh_vault_secrets_check(struct gh_store *st, const uint8_t key[GH_VAULT_KEY_BYTES], int64_t *count,
			   struct gh_error *err)
{
	struct secrets_check c = {.key = key};
	c.buf = sodium_malloc(GH_VAULT_SECRET_MAX);
	if (!c.buf)
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	int rc = gh_store_secret_each(st, check_one, &c);
	sodium_free(c.buf);
	*count = c.count;
	if (rc == GH_EDENIED)
		return gh_error_set(err, rc, "secret '%s' does not open with this master key", c.bad);
	if (rc)
		return gh_error_set(err, rc, "cannot read the secrets from the store");
	return 0;
}
