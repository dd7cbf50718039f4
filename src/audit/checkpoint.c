/* audit: signed checkpoints — the checkpoint key, the checkpoint line format, its file. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "vault/vault.h"

#define CK_AD "gatehouse:audit-checkpoint-key"
#define PEM_BEGIN "-----BEGIN PUBLIC KEY-----"
#define PEM_END "-----END PUBLIC KEY-----"

/* DER of SubjectPublicKeyInfo { AlgorithmIdentifier { id-Ed25519 (1.3.101.112) }, BIT STRING }
 * before the 32 key bytes (RFC 8410). */
static const uint8_t spki_prefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

void gh_audit_key_id(const uint8_t pk[32], char kid[17])
{
	uint8_t h[32];
	crypto_hash_sha256(h, pk, 32);
	gh_hex_encode(h, 8, kid);
}

int gh_audit_key_public(struct gh_store *st, uint8_t pk[32])
{
	return gh_store_checkpoint_key_get(st, pk, NULL, NULL);
}

int gh_audit_key_load(struct gh_store *st, const uint8_t master[32], bool create, struct gh_audit_key *out,
		      struct gh_error *err)
{
	uint8_t *sealed = NULL;
	size_t sealedlen = 0, sklen = 0;
	sodium_mlock(out, sizeof *out);
	int rc = gh_store_checkpoint_key_get(st, out->pk, &sealed, &sealedlen);
	if (rc == GH_ENOTFOUND && create) {
		uint8_t pk[32], sk[64];
		crypto_sign_keypair(pk, sk);
		rc = gh_vault_seal(master, CK_AD, sk, sizeof sk, &sealed, &sealedlen);
		sodium_memzero(sk, sizeof sk);
		if (rc)
			return gh_error_set(err, rc, "cannot seal the audit checkpoint key");
		rc = gh_store_checkpoint_key_put(st, pk, sealed, sealedlen);
		free(sealed);
		sealed = NULL;
		if (rc)
			return gh_error_set(err, rc, "cannot store the audit checkpoint key");
		/* read back: another process may have stored its key first, and that one stands */
		rc = gh_store_checkpoint_key_get(st, out->pk, &sealed, &sealedlen);
	}
	if (rc == GH_ENOTFOUND)
		return gh_error_set(err, rc, "no audit checkpoint key in the store");
	if (rc)
		return gh_error_set(err, rc, "cannot read the audit checkpoint key from the store");
	rc = gh_vault_open(master, CK_AD, sealed, sealedlen, out->sk, sizeof out->sk, &sklen);
	free(sealed);
	if (rc || sklen != sizeof out->sk) {
		sodium_memzero(out->sk, sizeof out->sk);
		return gh_error_set(err, GH_EDENIED, "the audit checkpoint key does not open with this master key");
	}
	/* the secret half carries its public half: they must agree */
	if (sodium_memcmp(out->sk + 32, out->pk, 32) != 0) {
		sodium_memzero(out->sk, sizeof out->sk);
		return gh_error_set(err, GH_EINVAL, "the stored audit checkpoint key pair does not match");
	}
	gh_audit_key_id(out->pk, out->kid);
	return 0;
}

void gh_audit_key_wipe(struct gh_audit_key *k)
{
	sodium_memzero(k->sk, sizeof k->sk);
}

int gh_audit_pubkey_pem(const uint8_t pk[32], struct gh_buf *out)
{
	uint8_t der[44];
	char b64[sodium_base64_ENCODED_LEN(44, sodium_base64_VARIANT_ORIGINAL)];
	memcpy(der, spki_prefix, sizeof spki_prefix);
	memcpy(der + sizeof spki_prefix, pk, 32);
	sodium_bin2base64(b64, sizeof b64, der, sizeof der, sodium_base64_VARIANT_ORIGINAL);
	return gh_buf_printf(out, PEM_BEGIN "\n%s\n" PEM_END "\n", b64);
}

/* Skips spaces, tabs, CR and LF from *p up to end. */
static const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

int gh_audit_pubkey_parse(const uint8_t *buf, size_t len, uint8_t pk[32])
{
	const size_t bl = sizeof PEM_BEGIN - 1, el = sizeof PEM_END - 1;
	if (len > 4096)
		return GH_EINVAL;
	const uint8_t *end = buf + len, *p = skip_ws(buf, end);
	if ((size_t)(end - p) < bl || memcmp(p, PEM_BEGIN, bl) != 0)
		return GH_EINVAL;
	p += bl;
	/* the body: base64 and line breaks only, up to the END line */
	const uint8_t *body = p;
	while (p < end && *p != '-')
		p++;
	size_t bodylen = (size_t)(p - body);
	if ((size_t)(end - p) < el || memcmp(p, PEM_END, el) != 0)
		return GH_EINVAL;
	if (skip_ws(p + el, end) != end)
		return GH_EINVAL;
	char text[256];
	size_t tn = 0;
	for (size_t i = 0; i < bodylen; i++) {
		uint8_t c = body[i];
		if (c == '\r' || c == '\n' || c == ' ' || c == '\t')
			continue;
		if (tn + 1 >= sizeof text)
			return GH_EINVAL;
		text[tn++] = (char)c;
	}
	uint8_t der[64];
	size_t derlen = 0;
	const char *b64end = NULL;
	if (sodium_base642bin(der, sizeof der, text, tn, NULL, &derlen, &b64end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    b64end != text + tn || derlen != 44 || memcmp(der, spki_prefix, sizeof spki_prefix) != 0)
		return GH_EINVAL;
	memcpy(pk, der + sizeof spki_prefix, 32);
	return 0;
}

/* The signed message: domain, version, seq, hash and time, colon-separated. */
static int signed_text(const struct gh_audit_checkpoint *c, char *out, size_t cap)
{
	int n = snprintf(out, cap, "gatehouse-audit-checkpoint:v1:%lld:%s:%s", (long long)c->seq, c->hash, c->time);
	return n > 0 && (size_t)n < cap ? n : -1;
}

void gh_audit_checkpoint_make(const struct gh_audit_key *k, int64_t seq, const char *hash, int64_t time_ms,
			      struct gh_audit_checkpoint *out)
{
	char msg[256];
	memset(out, 0, sizeof *out);
	out->seq = seq;
	memcpy(out->hash, hash, 64);
	gh_time_rfc3339(time_ms, out->time, sizeof out->time);
	memcpy(out->kid, k->kid, sizeof out->kid);
	int n = signed_text(out, msg, sizeof msg);
	crypto_sign_detached(out->sig, NULL, (const uint8_t *)msg, n > 0 ? (size_t)n : 0, k->sk);
}

int gh_audit_checkpoint_format(const struct gh_audit_checkpoint *c, struct gh_buf *out)
{
	char sig[90];
	gh_b64url_encode(c->sig, sizeof c->sig, sig, sizeof sig);
	return gh_buf_printf(out, "{\"seq\":%lld,\"hash\":\"%s\",\"time\":\"%s\",\"key\":\"%s\",\"sig\":\"%s\"}\n",
			     (long long)c->seq, c->hash, c->time, c->kid, sig);
}

bool gh_audit_checkpoint_verify(const struct gh_audit_checkpoint *c, const uint8_t pk[32])
{
	char kid[17], msg[256];
	gh_audit_key_id(pk, kid);
	if (strcmp(kid, c->kid) != 0)
		return false;
	int n = signed_text(c, msg, sizeof msg);
	return n > 0 && crypto_sign_verify_detached(c->sig, (const uint8_t *)msg, (size_t)n, pk) == 0;
}

static bool lower_hex(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

/* YYYY-MM-DDTHH:MM:SS[.fraction]Z, digits where digits belong (ranges are not the point: the
 * time is signed, and only shown). */
static bool rfc3339_shape(const char *t, size_t n)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	if (n < 20 || n > 30 || t[n - 1] != 'Z')
		return false;
	for (size_t i = 0; i < 19; i++)
		if (shape[i] == 'd' ? !(t[i] >= '0' && t[i] <= '9') : t[i] != shape[i])
			return false;
	if (n == 20)
		return true;
	if (t[19] != '.' || n < 22)
		return false;
	for (size_t i = 20; i + 1 < n; i++)
		if (!(t[i] >= '0' && t[i] <= '9'))
			return false;
	return true;
}

int gh_audit_checkpoint_parse(const uint8_t *buf, size_t len, size_t *used, struct gh_audit_checkpoint *out)
{
	const uint8_t *nl = memchr(buf, '\n', len < GH_CHECKPOINT_MAX_LINE + 1 ? len : GH_CHECKPOINT_MAX_LINE + 1);
	if (!nl)
		return len > GH_CHECKPOINT_MAX_LINE ? GH_EINVAL : GH_EAGAIN;
	size_t n = (size_t)(nl - buf);
	*used = n + 1;
	memset(out, 0, sizeof *out);
	json_error_t je;
	json_t *v = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &je);
	int rc = GH_EINVAL;
	if (!json_is_object(v) || json_object_size(v) != 5)
		goto done;
	json_t *seq = json_object_get(v, "seq"), *hash = json_object_get(v, "hash"), *time = json_object_get(v, "time");
	json_t *key = json_object_get(v, "key"), *sig = json_object_get(v, "sig");
	if (!json_is_integer(seq) || !json_is_string(hash) || !json_is_string(time) || !json_is_string(key) ||
	    !json_is_string(sig))
		goto done;
	out->seq = json_integer_value(seq);
	const char *h = json_string_value(hash), *t = json_string_value(time), *k = json_string_value(key);
	const char *s = json_string_value(sig);
	size_t hl = json_string_length(hash), tl = json_string_length(time), kl = json_string_length(key);
	size_t sl = json_string_length(sig), siglen = 0;
	if (out->seq < 1 || out->seq > ((int64_t)1 << 53) || hl != 64 || !lower_hex(h, 64) || kl != 16 ||
	    !lower_hex(k, 16) || !rfc3339_shape(t, tl) || sl != 86 ||
	    gh_b64url_decode(s, sl, out->sig, sizeof out->sig, &siglen) || siglen != 64)
		goto done;
	memcpy(out->hash, h, 65);
	memcpy(out->time, t, tl + 1);
	memcpy(out->kid, k, 17);
	rc = 0;
done:
	json_decref(v);
	return rc;
}

/* ---- the file ---- */

int ckpt_reader_open(struct ckpt_reader *r, const char *path, struct gh_error *err)
{
	memset(r, 0, sizeof *r);
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		if (errno == ENOENT) {
			r->eof = true;
			return 0;
		}
		return gh_error_set(err, GH_EIO, "%s: %s", path, strerror(errno));
	}
	return 0;
}

int ckpt_reader_next(struct ckpt_reader *r, struct gh_audit_checkpoint *out)
{
	for (;;) {
		size_t used = 0;
		if (r->len) {
			int rc = gh_audit_checkpoint_parse((const uint8_t *)r->buf, r->len, &used, out);
			if (rc == 0) {
				r->line++;
				memmove(r->buf, r->buf + used, r->len - used);
				r->len -= used;
				return 1;
			}
			if (rc != GH_EAGAIN) {
				r->line++;
				return GH_EINVAL;
			}
		}
		if (r->eof || r->fd < 0) {
			if (r->len) { /* a last line without its newline: cut short */
				r->line++;
				return GH_EINVAL;
			}
			return 0;
		}
		ssize_t got = read(r->fd, r->buf + r->len, sizeof r->buf - r->len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return GH_EIO;
		if (got == 0)
			r->eof = true;
		r->len += (size_t)got;
	}
}

void ckpt_reader_close(struct ckpt_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

/* The last complete line of fd (size bytes) as a checkpoint. */
static int last_of(int fd, off_t size, struct gh_audit_checkpoint *out)
{
	char buf[GH_CHECKPOINT_MAX_LINE + 2];
	if (size == 0)
		return GH_ENOTFOUND;
	size_t want = size > (off_t)sizeof buf ? sizeof buf : (size_t)size;
	if (pread(fd, buf, want, size - (off_t)want) != (ssize_t)want)
		return GH_EIO;
	if (buf[want - 1] != '\n')
		return GH_EINVAL;
	size_t start = want - 1;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	size_t used = 0;
	return gh_audit_checkpoint_parse((const uint8_t *)buf + start, want - start, &used, out);
}

int gh_audit_checkpoint_last(const char *path, struct gh_audit_checkpoint *out, struct gh_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? GH_ENOTFOUND : gh_error_set(err, GH_EIO, "%s: %s", path, strerror(errno));
	struct stat st;
	flock(fd, LOCK_SH);
	int rc = fstat(fd, &st) < 0 ? GH_EIO : last_of(fd, st.st_size, out);
	flock(fd, LOCK_UN);
	close(fd);
	if (rc && rc != GH_ENOTFOUND)
		return gh_error_set(err, rc, "%s: the last line is not a checkpoint", path);
	return rc;
}

int gh_audit_checkpoint_append(const char *path, const struct gh_audit_checkpoint *c, struct gh_error *err)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return gh_error_set(err, GH_EIO, "%s: %s", path, strerror(errno));
	struct gh_buf line;
	gh_buf_init(&line, GH_CHECKPOINT_MAX_LINE + 1);
	int rc = gh_audit_checkpoint_format(c, &line);
	struct stat st;
	if (rc) {
		gh_error_set(err, rc, "checkpoint line too long");
		goto out;
	}
	if (flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0) {
		rc = gh_error_set(err, GH_EIO, "%s: %s", path, strerror(errno));
		goto out;
	}
	/* the reader needs O_RDONLY access for the tail: reopen read-only on the same file */
	int rfd = open(path, O_RDONLY | O_CLOEXEC);
	struct gh_audit_checkpoint last;
	int lrc = rfd >= 0 ? last_of(rfd, st.st_size, &last) : GH_EIO;
	if (rfd >= 0)
		close(rfd);
	if (lrc == 0 && last.seq >= c->seq)
		goto unlock; /* already covered */
	if (lrc != 0 && lrc != GH_ENOTFOUND) {
		rc = gh_error_set(err, GH_EINVAL, "%s: the last line is not a checkpoint; refusing to append", path);
		goto unlock;
	}
	ssize_t w = write(fd, line.data, line.len);
	if (w != (ssize_t)line.len || fdatasync(fd) < 0) {
		rc = gh_error_set(err, GH_EIO, "%s: cannot write the checkpoint: %s", path, strerror(errno));
		if (w > 0 && ftruncate(fd, st.st_size) < 0)
			rc = gh_error_set(err, GH_EIO, "%s: cannot cut back a failed checkpoint write", path);
	}
unlock:
	flock(fd, LOCK_UN);
out:
	gh_buf_free(&line);
	close(fd);
	return rc;
}

/* Writes b's bytes to fd. */
static int write_all(int fd, const struct gh_buf *b)
{
	for (size_t w = 0; w < b->len;) {
		ssize_t k = write(fd, b->data + w, b->len - w);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return GH_EIO;
		w += (size_t)k;
	}
	return 0;
}

int gh_audit_checkpoint_copy(const char *path, const struct gh_audit_checkpoint *end, int fd,
			     struct gh_error *err)
{
	struct ckpt_reader r;
	struct gh_audit_checkpoint c;
	struct gh_buf out;
	int64_t after = 0;
	bool have_end = false;
	int rc = ckpt_reader_open(&r, path, err);
	if (rc)
		return rc;
	/* appenders hold the exclusive lock from write to fdatasync: no half line is seen */
	if (r.fd >= 0 && flock(r.fd, LOCK_SH) < 0) {
		ckpt_reader_close(&r);
		return gh_error_set(err, GH_EIO, "%s: %s", path, strerror(errno));
	}
	gh_buf_init(&out, 1 << 16);
	for (;;) {
		int n = ckpt_reader_next(&r, &c);
		if (n == 0)
			break;
		if (n == GH_EIO) {
			rc = gh_error_set(err, GH_EIO, "%s: %s", path, strerror(errno));
			break;
		}
		if (n < 0 || c.seq <= after) {
			rc = gh_error_set(err, GH_EINVAL, "%s line %lld: %s", path, (long long)r.line,
					  n < 0 ? "not a checkpoint line" : "checkpoints out of order");
			break;
		}
		if (c.seq > end->seq)
			break;
		after = c.seq;
		have_end = c.seq == end->seq;
		/* written as the writer writes it: the same bytes for a line it wrote */
		if (gh_audit_checkpoint_format(&c, &out) || (out.len > (1 << 15) && write_all(fd, &out))) {
			rc = gh_error_set(err, GH_EIO, "writing the checkpoints copy: %s", strerror(errno));
			break;
		}
		if (out.len > (1 << 15))
			gh_buf_reset(&out);
		if (have_end)
			break;
	}
	if (r.fd >= 0)
		flock(r.fd, LOCK_UN);
	ckpt_reader_close(&r);
	if (!rc && !have_end && gh_audit_checkpoint_format(end, &out))
		rc = gh_error_set(err, GH_ETOOBIG, "checkpoint line too long");
	if (!rc && write_all(fd, &out))
		rc = gh_error_set(err, GH_EIO, "writing the checkpoints copy: %s", strerror(errno));
	gh_buf_free(&out);
	return rc;
}
