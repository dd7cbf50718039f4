/* backup: manifest.json, written by us and parsed as hostile input. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "backup/backup.h"

static const char *const file_names[GH_BACKUP_NFILES] = {"gatehouse.db", "audit/audit.log", "audit/checkpoints",
							  "master.key"};

const char *gh_backup_file_name(enum gh_backup_file f)
{
	return (unsigned)f < GH_BACKUP_NFILES ? file_names[f] : "?";
}

int gh_backup_manifest_format(const struct gh_backup_manifest *m, struct gh_buf *b)
{
	int rc = gh_buf_printf(b, "{\n  \"format\": \"%s\",\n  \"version\": %d,\n  \"created\": ", GH_BACKUP_FORMAT,
			       m->version);
	rc = rc ? rc : gh_buf_json_string(b, m->created, strlen(m->created));
	rc = rc ? rc : gh_buf_puts(b, ",\n  \"source\": ");
	rc = rc ? rc : gh_buf_json_string(b, m->source, strlen(m->source));
	rc = rc ? rc : gh_buf_printf(b, ",\n  \"audit\": {\"seq\": %lld, \"hash\": \"%s\"", (long long)m->audit_seq,
				     m->audit_hash);
	if (m->version >= 2)
		rc = rc ? rc : gh_buf_printf(b, ", \"checkpoint\": %lld", (long long)m->audit_checkpoint);
	rc = rc ? rc : gh_buf_puts(b, "},\n  \"files\": {");
	bool first = true;
	for (int i = 0; !rc && i < GH_BACKUP_NFILES; i++) {
		if (!m->files[i].present)
			continue;
		rc = gh_buf_printf(b, "%s\n    \"%s\": {\"size\": %lld, \"sha256\": \"%s\"}", first ? "" : ",",
				   file_names[i], (long long)m->files[i].size, m->files[i].sha256);
		first = false;
	}
	rc = rc ? rc : gh_buf_puts(b, "\n  }\n}\n");
	return rc;
}

static bool is_hex64(const char *p, size_t n)
{
	if (n != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

/* Refuses members of obj not named in allowed (NULL-terminated). */
static int only_members(json_t *obj, const char *where, const char *const *allowed, struct gh_error *err)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(key, *a) == 0;
		if (!ok)
			return gh_error_set(err, GH_EINVAL, "manifest.json: unknown member \"%.64s\" in %s", key, where);
	}
	return 0;
}

/* A string member: present, without NUL, shorter than cap; copied into out. */
static int get_string(json_t *obj, const char *name, char *out, size_t cap, struct gh_error *err)
{
	json_t *v = json_object_get(obj, name);
	if (!json_is_string(v))
		return gh_error_set(err, GH_EINVAL, "manifest.json: \"%s\" must be a string", name);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n == 0 || n >= cap)
		return gh_error_set(err, GH_EINVAL, "manifest.json: \"%s\" must be 1 to %zu characters", name, cap - 1);
	/* it is printed and recorded: no control characters (NUL, escapes for a terminal) */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return gh_error_set(err, GH_EINVAL, "manifest.json: \"%s\" holds a control character", name);
	memcpy(out, s, n + 1);
	return 0;
}

static int get_int(json_t *obj, const char *name, int64_t max, int64_t *out, struct gh_error *err)
{
	json_t *v = json_object_get(obj, name);
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return gh_error_set(err, GH_EINVAL, "manifest.json: \"%s\" must be an integer from 0 to %lld", name,
				    (long long)max);
	*out = (int64_t)json_integer_value(v);
	return 0;
}

static int get_hash(json_t *obj, const char *name, char out[65], struct gh_error *err)
{
	json_t *v = json_object_get(obj, name);
	if (!json_is_string(v) || !is_hex64(json_string_value(v), json_string_length(v)))
		return gh_error_set(err, GH_EINVAL, "manifest.json: \"%s\" must be 64 lowercase hexadecimal characters",
				    name);
	memcpy(out, json_string_value(v), 65);
	return 0;
}

static int parse_files(json_t *files, struct gh_backup_manifest *m, struct gh_error *err)
{
	static const char *const entry_members[] = {"size", "sha256", NULL};
	if (!json_is_object(files))
		return gh_error_set(err, GH_EINVAL, "manifest.json: \"files\" must be an object");
	const char *key;
	json_t *v;
	json_object_foreach(files, key, v) {
		int f = -1;
		for (int i = 0; i < GH_BACKUP_NFILES; i++)
			if (strcmp(key, file_names[i]) == 0)
				f = i;
		if (f < 0)
			return gh_error_set(err, GH_EINVAL, "manifest.json: \"files\" names \"%.64s\", which is not a "
					    "file of a backup", key);
		int rc;
		if (!json_is_object(v))
			return gh_error_set(err, GH_EINVAL, "manifest.json: files.\"%s\" must be an object", key);
		if ((rc = only_members(v, key, entry_members, err)) ||
		    (rc = get_int(v, "size", GH_BACKUP_MAX_FILE_BYTES, &m->files[f].size, err)) ||
		    (rc = get_hash(v, "sha256", m->files[f].sha256, err)))
			return rc;
		m->files[f].present = true;
	}
	if (!m->files[GH_BACKUP_DB].present || !m->files[GH_BACKUP_LOG].present)
		return gh_error_set(err, GH_EINVAL, "manifest.json: \"files\" must list gatehouse.db and audit/audit.log");
	if (m->files[GH_BACKUP_KEY].present && m->files[GH_BACKUP_KEY].size != 32)
		return gh_error_set(err, GH_EINVAL, "manifest.json: master.key must be 32 bytes");
	if (m->files[GH_BACKUP_CKPTS].present != (m->version >= 2))
		return gh_error_set(err, GH_EINVAL, "manifest.json: \"files\" must list audit/checkpoints in version 2 "
				    "and only there");
	return 0;
}

int gh_backup_manifest_parse(const uint8_t *buf, size_t len, struct gh_backup_manifest *m, struct gh_error *err)
{
	static const char *const top[] = {"format", "version", "created", "source", "audit", "files", NULL};
	static const char *const audit_v1[] = {"seq", "hash", NULL};
	static const char *const audit_v2[] = {"seq", "hash", "checkpoint", NULL};
	memset(m, 0, sizeof *m);
	if (len > GH_BACKUP_MANIFEST_MAX)
		return gh_error_set(err, GH_EINVAL, "manifest.json: larger than %d bytes", GH_BACKUP_MANIFEST_MAX);
	json_error_t je;
	json_t *root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
	int rc;
	if (!root)
		return gh_error_set(err, GH_EINVAL, "manifest.json: not valid JSON at line %d: %.100s", je.line, je.text);
	char format[32];
	int64_t version = 0;
	json_t *audit = json_object_get(root, "audit");
	if (!json_is_object(root)) {
		rc = gh_error_set(err, GH_EINVAL, "manifest.json: expected a JSON object");
	} else if ((rc = only_members(root, "the manifest", top, err))) {
	} else if ((rc = get_string(root, "format", format, sizeof format, err))) {
	} else if (strcmp(format, GH_BACKUP_FORMAT) != 0) {
		rc = gh_error_set(err, GH_EINVAL, "manifest.json: format is not \"%s\"", GH_BACKUP_FORMAT);
	} else if ((rc = get_int(root, "version", 1000, &version, err))) {
	} else if (version < GH_BACKUP_VERSION_MIN || version > GH_BACKUP_VERSION) {
		rc = gh_error_set(err, GH_EINVAL, "manifest.json: version %lld; this gatehouse reads versions %d to %d",
				  (long long)version, GH_BACKUP_VERSION_MIN, GH_BACKUP_VERSION);
	} else if ((rc = get_string(root, "created", m->created, sizeof m->created, err)) ||
		   (rc = get_string(root, "source", m->source, sizeof m->source, err))) {
	} else if (!json_is_object(audit)) {
		rc = gh_error_set(err, GH_EINVAL, "manifest.json: \"audit\" must be an object");
	} else if ((rc = only_members(audit, "audit", version >= 2 ? audit_v2 : audit_v1, err)) ||
		   (rc = get_int(audit, "seq", INT64_MAX, &m->audit_seq, err)) ||
		   (rc = get_hash(audit, "hash", m->audit_hash, err))) {
	} else if (version >= 2 && (rc = get_int(audit, "checkpoint", INT64_MAX, &m->audit_checkpoint, err))) {
	} else if (version >= 2 && (m->audit_checkpoint != m->audit_seq || m->audit_seq < 1)) {
		/* a backup's checkpoints end at exactly its cut, and a checkpoint names a record */
		rc = gh_error_set(err, GH_EINVAL, "manifest.json: audit.checkpoint must be audit.seq (at least 1)");
	} else {
		m->version = (int)version; /* parse_files checks what this version lists */
		rc = parse_files(json_object_get(root, "files"), m, err);
	}
	m->version = (int)version;
	json_decref(root);
	if (rc)
		memset(m, 0, sizeof *m);
	return rc;
}
