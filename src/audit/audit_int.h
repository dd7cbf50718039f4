/* audit: what audit.c, checkpoint.c and sink.c share. Not an API for other modules; the unit
 * tests use it to test formats directly. */
#ifndef GH_AUDIT_INT_H
#define GH_AUDIT_INT_H

#include "audit/audit.h"
#include "config/config.h"

#define GH_AUDIT_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
/* ,"hash":"<64 hex>"} at the end of every record */
#define GH_AUDIT_HASH_SUFFIX_LEN (9 + 64 + 2)
/* ,"prev":"<64 hex>" just before it */
#define GH_AUDIT_PREV_MEMBER_LEN (9 + 64 + 1)

/* Checks one log line (without its '\n') laid out as the writer writes it,
 * {"seq":N, ... ,"prev":"<hex>","hash":"<hex>"}, and that hash is the SHA-256 of the line
 * without its hash member. Fills seq, prev and hash (NUL-terminated hex). Returns 0, or
 * GH_EINVAL with *why (static text) when the line is not such a record. */
int audit_line_check(const char *line, size_t len, int64_t *seq, char prev[65], char hash[65], const char **why);

/* Reads audit/checkpoints one checkpoint at a time. */
struct ckpt_reader {
	int fd;
	char buf[GH_CHECKPOINT_MAX_LINE * 2];
	size_t len;
	int64_t line; /* 1-based number of the last line returned */
	bool eof;
};
/* Opens path; a missing file is an empty one (fd -1). GH_EIO with err on other failures. */
int ckpt_reader_open(struct ckpt_reader *r, const char *path, struct gh_error *err);
/* Returns 1 with the next checkpoint in out, 0 at the end, GH_EINVAL for a line that is not a
 * checkpoint (r->line names it), GH_EIO on a read error. Signatures are not checked here. */
int ckpt_reader_next(struct ckpt_reader *r, struct gh_audit_checkpoint *out);
void ckpt_reader_close(struct ckpt_reader *r);

/* ---- sink record formats (sink.c) ---- */

/* Appends the RFC 5424 message for one record line (JSON, without '\n'):
 * <PRI>1 TIMESTAMP HOSTNAME gatehouse PROCID MSGID - MSG, where PRI is facility*8 + severity
 * (notice for a denied decision, info otherwise), TIMESTAMP the record's time, MSGID its event
 * and MSG the record itself. A record longer than GH_SINK_SYSLOG_MAX is replaced by the stub
 * {"seq":N,"hash":"…","truncated":true}. hostname is used as given when it is 1..255
 * printable ASCII characters, else "-". */
int audit_syslog_format(const char *line, size_t len, int facility, const char *hostname, int pid,
			struct gh_buf *out);

/* Appends one record to an HTTP batch body: the body is a JSON array of the records exactly as
 * they are in the log ("[" before the first, "," between, "]" added by audit_http_close). */
int audit_http_add(struct gh_buf *body, const char *line, size_t len);
int audit_http_close(struct gh_buf *body);

#endif
