/* fuzz: backup manifest.json (gh_backup_manifest_parse), hostile input on restore.
 * Whatever the bytes, the parser must not read past them, leak, or crash; when it accepts,
 * what it returns must keep its promises (required files present, hashes 64 lowercase hex,
 * strings terminated and free of control characters, sizes within the limit, version 1 or 2
 * with what that version holds) and formatting
 * it and parsing that again must give back exactly the same manifest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backup/backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_hex(const char *h)
{
	if (strlen(h) != 64)
		abort();
	for (int i = 0; i < 64; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			abort();
}

static void check_text(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	if (n == 0 || n == cap)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gh_backup_manifest m, again;
	struct gh_error err;
	memset(&err, 0, sizeof err);
	int rc = gh_backup_manifest_parse(data, size, &m, &err);
	if (rc) {
		if (rc != GH_EINVAL || !err.message[0])
			abort(); /* refusals are GH_EINVAL with a reason */
		return 0;
	}
	if (m.version < GH_BACKUP_VERSION_MIN || m.version > GH_BACKUP_VERSION || m.audit_seq < 0)
		abort();
	/* version 2 has the checkpoints file and a checkpoint at the audit seq; version 1 neither */
	if (m.version >= 2 ? !m.files[GH_BACKUP_CKPTS].present || m.audit_checkpoint != m.audit_seq || m.audit_seq < 1
			   : m.files[GH_BACKUP_CKPTS].present || m.audit_checkpoint != 0)
		abort();
	check_text(m.created, sizeof m.created);
	check_text(m.source, sizeof m.source);
	check_hex(m.audit_hash);
	if (!m.files[GH_BACKUP_DB].present || !m.files[GH_BACKUP_LOG].present)
		abort();
	for (int f = 0; f < GH_BACKUP_NFILES; f++) {
		if (!m.files[f].present)
			continue;
		check_hex(m.files[f].sha256);
		if (m.files[f].size < 0 || m.files[f].size > GH_BACKUP_MAX_FILE_BYTES)
			abort();
	}
	if (m.files[GH_BACKUP_KEY].present && m.files[GH_BACKUP_KEY].size != 32)
		abort();
	struct gh_buf b;
	gh_buf_init(&b, GH_BACKUP_MANIFEST_MAX);
	if (gh_backup_manifest_format(&m, &b))
		abort(); /* anything accepted fits when written again */
	if (gh_backup_manifest_parse((const uint8_t *)b.data, b.len, &again, &err) || memcmp(&m, &again, sizeof m))
		abort();
	gh_buf_free(&b);
	return 0;
}
