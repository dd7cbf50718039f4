/* cli: backup and restore of a data directory (see backup/backup.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup/backup.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/local.h"
#include "store/store.h"

/* Exit status for a failed backup or restore: 2 for what the caller got wrong (a destination
 * that is not empty, no such backup, an unusable key file), 1 for everything else. */
static int status_of(int rc)
{
	return rc == GH_EEXIST || rc == GH_EINVAL || rc == GH_ENOTFOUND ? 2 : 1;
}

/* The detail of a backup.create or data.restore record. */
static int detail_json(struct gh_buf *b, const char *location_key, const char *location,
		       const struct gh_backup_manifest *m, bool restore)
{
	int rc = gh_buf_printf(b, "{\"%s\":", location_key);
	rc = rc ? rc : gh_buf_json_string(b, location, strlen(location));
	rc = rc ? rc : gh_buf_printf(b, ",\"seq\":%lld,\"hash\":\"%s\",\"master_key\":%s", (long long)m->audit_seq,
				     m->audit_hash, m->files[GH_BACKUP_KEY].present ? "true" : "false");
	if (restore) {
		rc = rc ? rc : gh_buf_puts(b, ",\"created\":");
		rc = rc ? rc : gh_buf_json_string(b, m->created, strlen(m->created));
		rc = rc ? rc : gh_buf_puts(b, ",\"source\":");
		rc = rc ? rc : gh_buf_json_string(b, m->source, strlen(m->source));
	}
	return rc ? rc : gh_buf_puts(b, "}");
}

int gh_cli_backup(int argc, char **argv)
{
	struct args_opt o[] = {{"data", false, NULL}, {"without-master-key", true, NULL}};
	struct args a = {o, 2, {0}, 0, false};
	if (!args_parse(&a, argc, argv, "backup"))
		return 2;
	if (a.help) {
		cli_usage("backup");
		return 0;
	}
	const char *dir = args_get(&a, "data");
	bool with_key = !args_get(&a, "without-master-key");
	if (!dir || a.npos != 1)
		return cli_usage_error("backup", "expected --data DIR OUT");
	char db[PATH_MAX];
	if (gh_path_join(db, sizeof db, dir, "gatehouse.db") || access(db, F_OK) != 0) {
		fprintf(stderr, "gatehouse backup: %s is not an initialised data directory\n", dir);
		return 2;
	}
	struct gh_backup_job *job = NULL;
	struct gh_error err;
	gh_error_clear(&err);
	int rc = gh_backup_create(dir, a.pos[0], with_key, &job, &err);
	if (!rc && (rc = gh_backup_commit(job, &err)))
		gh_backup_job_free(job);
	if (rc) {
		fprintf(stderr, "gatehouse backup: %s; no backup was made\n", err.message);
		return status_of(rc);
	}
	const struct gh_backup_manifest *m = gh_backup_job_manifest(job);
	const char *dest = gh_backup_job_dest(job);
	int64_t bytes = gh_backup_job_bytes(job);
	struct gh_buf detail;
	gh_buf_init(&detail, 2 * PATH_MAX + 512);
	rc = detail_json(&detail, "location", dest, m, false);
	struct gh_audit_record r = {.event = "backup.create", .status = "ok", .decision = "allow",
				    .rule = "local-operator", .detail_json = detail.data};
	/* A backup the trail does not show is not kept. */
	if (rc || cli_audit_event("backup", dir, NULL, &r)) {
		gh_backup_uncommit(job);
		gh_backup_job_free(job);
		gh_buf_free(&detail);
		if (rc)
			fprintf(stderr, "gatehouse backup: path too long to record; no backup was made\n");
		return 1;
	}
	gh_buf_free(&detail);
	struct gh_store *st = NULL;
	rc = gh_store_open(db, true, &st, &err);
	if (!rc)
		rc = gh_store_backup_note(st, gh_now_ms(), dest, m->audit_seq);
	gh_store_close(st);
	printf("backup of %s at audit seq %lld written to %s (%lld bytes)\n", m->source, (long long)m->audit_seq, dest,
	       (long long)bytes);
	if (with_key)
		fprintf(stderr, "gatehouse backup: the master key is in the backup: keep it as safe as the data "
				"directory\n");
	else
		fprintf(stderr, "gatehouse backup: the master key is not in the backup: a restore needs it "
				"(gatehouse restore --master-key FILE)\n");
	gh_backup_job_free(job);
	if (rc) {
		fprintf(stderr, "gatehouse backup: the store could not record this backup as the last one made\n");
		return 1;
	}
	return 0;
}

int gh_cli_restore(int argc, char **argv)
{
	struct args_opt o[] = {{"data", false, NULL}, {"master-key", false, NULL}};
	struct args a = {o, 2, {0}, 0, false};
	if (!args_parse(&a, argc, argv, "restore"))
		return 2;
	if (a.help) {
		cli_usage("restore");
		return 0;
	}
	const char *dir = args_get(&a, "data");
	if (!dir || a.npos != 1)
		return cli_usage_error("restore", "expected --data NEWDIR BACKUP");
	const char *backup = a.pos[0];
	struct gh_backup_job *job = NULL;
	struct gh_error err;
	gh_error_clear(&err);
	int rc = gh_backup_restore(backup, dir, args_get(&a, "master-key"), &job, &err);
	if (rc) {
		fprintf(stderr, "gatehouse restore: %s; nothing was restored\n", err.message);
		return status_of(rc);
	}
	const struct gh_backup_manifest *m = gh_backup_job_manifest(job);
	char real[PATH_MAX];
	struct gh_buf detail;
	gh_buf_init(&detail, 4 * PATH_MAX + 512);
	rc = detail_json(&detail, "backup", realpath(backup, real) ? real : backup, m, true);
	/* The restored trail says where it came from: recorded before it is put in place. */
	struct gh_audit_record r = {.event = "data.restore", .status = "ok", .decision = "allow",
				    .rule = "local-operator", .detail_json = detail.data};
	if (rc || cli_audit_event("restore", gh_backup_job_staging(job), NULL, &r)) {
		gh_backup_job_free(job);
		gh_buf_free(&detail);
		if (rc)
			fprintf(stderr, "gatehouse restore: path too long to record; nothing was restored\n");
		return 1;
	}
	gh_buf_free(&detail);
	if ((rc = gh_backup_commit(job, &err))) {
		gh_backup_job_free(job);
		fprintf(stderr, "gatehouse restore: %s; nothing was restored\n", err.message);
		return status_of(rc);
	}
	printf("restored %s (made %s from %s, audit seq %lld) into %s\n", backup, m->created, m->source,
	       (long long)m->audit_seq, gh_backup_job_dest(job));
	if (!m->files[GH_BACKUP_KEY].present && !args_get(&a, "master-key"))
		fprintf(stderr, "gatehouse restore: the master key was not written: it comes from "
				"GATEHOUSE_MASTER_KEY\n");
	if (!m->files[GH_BACKUP_CKPTS].present)
		fprintf(stderr, "gatehouse restore: the backup (format version %d) has no signed audit checkpoints: "
			"audit verify --public-key passes on it once a server has run there\n", m->version);
	gh_backup_job_free(job);
	return 0;
}
