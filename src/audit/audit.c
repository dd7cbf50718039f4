/* audit: hash-chained log with group commit. */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "metrics/metrics.h"
#include "store/store.h"

#define ZERO_HASH GH_AUDIT_ZERO_HASH
#define HASH_SUFFIX_LEN GH_AUDIT_HASH_SUFFIX_LEN /* ,"hash":" + hex + "} */

struct gh_audit {
	int fd;
	char path[PATH_MAX];
	char datadir[PATH_MAX];
	struct gh_store *store; /* used only by the writer (thread or sync caller) */
	off_t size;             /* bytes of the log known to be ours and complete */
	int64_t seq;
	char hash[65];
	struct gh_buf out;

	pthread_mutex_t mu;   /* the queue */
	pthread_mutex_t wmu;  /* one write_batch at a time in this process */
	pthread_cond_t cv;
	struct gh_audit_entry *head, *tail;
	bool stop, started;
	pthread_t thread;
	_Atomic uint64_t nrecords, nsyncs; /* read by metrics on other threads */
	struct gh_metrics_family *sync_time; /* fdatasync durations, or NULL */
	void (*on_durable)(void *arg, int64_t seq); /* called by the writer thread after a batch */
	void *on_durable_arg;

	/* The store's copy of the head, written at most every GH_AUDIT_HEAD_MS under load, when
	 * the queue empties, and at close (under wmu). */
	bool head_dirty;
	int64_t head_seq;
	char head_hash[65];
	uint64_t head_written_ms;
};

#define GH_AUDIT_HEAD_MS 100

static int put_str(struct gh_buf *b, const char *key, const char *v)
{
	int rc = gh_buf_printf(b, ",\"%s\":", key);
	if (rc)
		return rc;
	return v ? gh_buf_json_string(b, v, strlen(v)) : gh_buf_puts(b, "null");
}

static int put_raw(struct gh_buf *b, const char *key, const char *v)
{
	int rc = gh_buf_printf(b, ",\"%s\":", key);
	return rc ? rc : gh_buf_puts(b, v && *v ? v : "null");
}

int gh_audit_format(const struct gh_audit_record *r, struct gh_buf *b)
{
	char ts[32];
	gh_time_rfc3339(r->time_ms, ts, sizeof ts);
	int rc = gh_buf_printf(b, "\"time\":\"%s\"", ts);
	rc = rc ? rc : put_str(b, "request_id", r->request_id);
	rc = rc ? rc : put_str(b, "event", r->event);
	rc = rc ? rc : put_str(b, "user", r->user);
	if (!rc) {
		/* groups: comma-separated in, JSON array out */
		rc = gh_buf_puts(b, ",\"groups\":[");
		const char *g = r->groups ? r->groups : "";
		bool first = true;
		while (!rc && *g) {
			const char *c = strchr(g, ',');
			size_t n = c ? (size_t)(c - g) : strlen(g);
			if (n) {
				if (!first)
					rc = gh_buf_puts(b, ",");
				rc = rc ? rc : gh_buf_json_string(b, g, n);
				first = false;
			}
			g += n + (c ? 1 : 0);
		}
		rc = rc ? rc : gh_buf_puts(b, "]");
	}
	rc = rc ? rc : put_str(b, "app", r->app && *r->app ? r->app : NULL);
	rc = rc ? rc : put_str(b, "environment", r->environment);
	rc = rc ? rc : put_str(b, "resource", r->resource);
	rc = rc ? rc : put_str(b, "statement", r->statement);
	rc = rc ? rc : put_raw(b, "params", r->params_json);
	rc = rc ? rc : put_str(b, "class", r->class_name);
	rc = rc ? rc : put_raw(b, "tables", r->tables_json);
	rc = rc ? rc : put_str(b, "decision", r->decision);
	rc = rc ? rc : put_str(b, "rule", r->rule);
	rc = rc ? rc : put_str(b, "status", r->status);
	if (!rc)
		rc = r->rows >= 0 ? gh_buf_printf(b, ",\"rows\":%lld", (long long)r->rows) : gh_buf_puts(b, ",\"rows\":null");
	if (!rc)
		rc = r->duration_ms >= 0 ? gh_buf_printf(b, ",\"duration_ms\":%.3f", r->duration_ms)
					 : gh_buf_puts(b, ",\"duration_ms\":null");
	rc = rc ? rc : put_str(b, "client", r->client);
	if (!rc && r->detail_json)
		rc = put_raw(b, "detail", r->detail_json);
	return rc;
}

/* Reads the last complete line of fd's bytes [0, size) into (seq, hash); size must end at a
 * newline (or be 0: seq 0 and the zero hash). */
static int tail_record(int fd, off_t size, int64_t *seq_out, char hash_out[65], struct gh_error *err)
{
	*seq_out = 0;
	memcpy(hash_out, ZERO_HASH, 65);
	if (size == 0)
		return 0;
	size_t want = size > GH_AUDIT_MAX_LINE ? GH_AUDIT_MAX_LINE : (size_t)size;
	char *buf = malloc(want + 1);
	if (!buf)
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	ssize_t r = pread(fd, buf, want, size - (off_t)want);
	int rc = GH_EAUDIT;
	if (r != (ssize_t)want) {
		gh_error_set(err, rc, "audit log: cannot read its tail: %s", strerror(errno));
		goto done;
	}
	buf[want] = '\0';
	size_t end = want - 1; /* the final '\n' */
	size_t start = end;
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	if (start == 0 && want < (size_t)size) {
		gh_error_set(err, rc, "audit log: last record longer than %d bytes", GH_AUDIT_MAX_LINE);
		goto done;
	}
	json_error_t je;
	json_t *v = json_loadb(buf + start, end - start, JSON_REJECT_DUPLICATES, &je);
	json_t *seq = json_object_get(v, "seq"), *hash = json_object_get(v, "hash");
	if (!json_is_integer(seq) || !json_is_string(hash) || json_string_length(hash) != 64) {
		json_decref(v);
		gh_error_set(err, rc, "audit log: last record is not a valid audit record");
		goto done;
	}
	*seq_out = json_integer_value(seq);
	memcpy(hash_out, json_string_value(hash), 65);
	json_decref(v);
	rc = 0;
done:
	free(buf);
	return rc;
}

/* Reads the last complete line of the log into the head (seq, hash). The log's bytes
 * [0, a->size) must end with a newline (or be empty). */
static int read_tail(struct gh_audit *a, struct gh_error *err)
{
	return tail_record(a->fd, a->size, &a->seq, a->hash, err);
}

/* The end of the last complete record (newline-terminated line) of fd's first size bytes. */
static int complete_end(int fd, off_t size, off_t *complete, struct gh_error *err)
{
	*complete = size;
	if (size == 0)
		return 0;
	char last;
	if (pread(fd, &last, 1, size - 1) != 1)
		return gh_error_set(err, GH_EAUDIT, "audit log: %s", strerror(errno));
	if (last != '\n') {
		char c;
		while (*complete > 0 && pread(fd, &c, 1, *complete - 1) == 1 && c != '\n')
			(*complete)--;
	}
	return 0;
}

/* Brings the in-memory head in line with the file (another process may have appended) and
 * checks it against the store's head. Called with the file lock held. A torn last line (a
 * write that was never made durable and acknowledged) is cut off, but only after the complete
 * records before it are found to reach the store's head: a log whose end was removed is
 * refused as it is, so the evidence stays for `audit verify`. */
static int resync(struct gh_audit *a, struct gh_error *err)
{
	struct stat st;
	if (fstat(a->fd, &st) < 0)
		return gh_error_set(err, GH_EAUDIT, "audit log: %s", strerror(errno));
	off_t size = st.st_size, complete = size;
	int rc = complete_end(a->fd, size, &complete, err);
	if (rc)
		return rc;
	a->size = complete;
	rc = read_tail(a, err);
	if (rc)
		return rc;
	int64_t hseq = 0;
	char hhash[65];
	if (gh_store_audit_head_get(a->store, &hseq, hhash))
		return gh_error_set(err, GH_EAUDIT, "audit head: cannot read it from the store");
	if (hseq > a->seq)
		return gh_error_set(err, GH_EAUDIT, "audit log ends at seq %lld but the store's head is seq %lld: "
				    "the log was truncated; refusing to append", (long long)a->seq, (long long)hseq);
	if (complete < size) {
		gh_log(GH_LOG_WARN, "audit log: cutting a torn last record (%lld bytes) after seq %lld",
		       (long long)(size - complete), (long long)a->seq);
		if (ftruncate(a->fd, complete) < 0 || fsync(a->fd) < 0)
			return gh_error_set(err, GH_EAUDIT, "audit log: cannot cut torn record: %s", strerror(errno));
	}
	return 0;
}

int gh_audit_open(const char *datadir, struct gh_audit **out, struct gh_error *err)
{
	struct gh_audit *a = calloc(1, sizeof *a);
	char dir[PATH_MAX], dbpath[PATH_MAX];
	int rc;
	if (!a)
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	a->fd = -1;
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->wmu, NULL);
	pthread_cond_init(&a->cv, NULL);
	gh_buf_init(&a->out, (size_t)GH_AUDIT_MAX_BATCH * 1024 + GH_AUDIT_MAX_RECORD * 2);
	snprintf(a->datadir, sizeof a->datadir, "%s", datadir);
	if (gh_path_join(dir, sizeof dir, datadir, "audit") || gh_path_join(a->path, sizeof a->path, dir, "audit.log") ||
	    gh_path_join(dbpath, sizeof dbpath, datadir, "gatehouse.db")) {
		rc = gh_error_set(err, GH_ETOOBIG, "path too long");
		goto fail;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = gh_error_set(err, GH_EAUDIT, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	a->fd = open(a->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (a->fd < 0) {
		rc = gh_error_set(err, GH_EAUDIT, "%s: %s", a->path, strerror(errno));
		goto fail;
	}
	if ((rc = gh_store_open(dbpath, false, &a->store, err)))
		goto fail;
	flock(a->fd, LOCK_EX);
	rc = resync(a, err);
	flock(a->fd, LOCK_UN);
	if (rc)
		goto fail;
	*out = a;
	return 0;
fail:
	gh_audit_close(a);
	return rc;
}

/* Writes a batch under the file lock: one write, one fdatasync. On any failure the file is
 * cut back to where it was, so no partial or unacknowledged record stays. */
static int write_batch(struct gh_audit *a, struct gh_audit_entry *list)
{
	struct gh_error err;
	int rc = 0;
	if (flock(a->fd, LOCK_EX) < 0)
		return GH_EAUDIT;
	struct stat st;
	if (fstat(a->fd, &st) < 0 || st.st_size != a->size) {
		if ((rc = resync(a, &err))) {
			gh_log(GH_LOG_ERROR, "%s", err.message);
			goto unlock;
		}
	}
	gh_buf_reset(&a->out);
	int64_t seq = a->seq;
	char hash[65];
	memcpy(hash, a->hash, 65);
	for (struct gh_audit_entry *e = list; e; e = e->next) {
		size_t start = a->out.len;
		crypto_hash_sha256_state hs;
		uint8_t digest[32];
		seq++;
		rc = gh_buf_printf(&a->out, "{\"seq\":%lld,", (long long)seq);
		rc = rc ? rc : gh_buf_append(&a->out, e->body.data ? e->body.data : "", e->body.len);
		rc = rc ? rc : gh_buf_printf(&a->out, ",\"prev\":\"%s\"", hash);
		if (rc) {
			rc = GH_EAUDIT;
			gh_log(GH_LOG_ERROR, "audit: record too large");
			goto unlock;
		}
		crypto_hash_sha256_init(&hs);
		crypto_hash_sha256_update(&hs, (const uint8_t *)a->out.data + start, a->out.len - start);
		crypto_hash_sha256_update(&hs, (const uint8_t *)"}", 1);
		crypto_hash_sha256_final(&hs, digest);
		gh_hex_encode(digest, 32, hash);
		if (gh_buf_printf(&a->out, ",\"hash\":\"%s\"}\n", hash)) {
			rc = GH_EAUDIT;
			goto unlock;
		}
		e->seq = seq;
	}
	size_t off = 0;
	while (off < a->out.len) {
		ssize_t w = write(a->fd, a->out.data + off, a->out.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			gh_log(GH_LOG_ERROR, "audit log: write failed: %s", strerror(errno));
			rc = GH_EAUDIT;
			break;
		}
		off += (size_t)w;
	}
	if (!rc) {
		uint64_t t0 = gh_mono_us();
		if (fdatasync(a->fd) < 0) {
			gh_log(GH_LOG_ERROR, "audit log: fdatasync failed: %s", strerror(errno));
			rc = GH_EAUDIT;
		}
		gh_metrics_observe_us(a->sync_time, NULL, gh_mono_us() - t0);
	}
	if (rc) {
		if (ftruncate(a->fd, a->size) < 0 || fdatasync(a->fd) < 0)
			gh_log(GH_LOG_ERROR, "audit log: cannot cut back a failed write: %s", strerror(errno));
		goto unlock;
	}
	a->size += (off_t)a->out.len;
	a->seq = seq;
	memcpy(a->hash, hash, 65);
	uint64_t n = 0;
	for (struct gh_audit_entry *e = list; e; e = e->next)
		n++;
	atomic_fetch_add_explicit(&a->nsyncs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&a->nrecords, n, memory_order_relaxed);
	/* The head may lag the log (it is a lower bound for truncation checks); never lead it. */
	a->head_dirty = true;
	a->head_seq = seq;
	memcpy(a->head_hash, hash, 65);
unlock:
	flock(a->fd, LOCK_UN);
	return rc;
}

/* Writes the head to the store when due (or now if force). Call with wmu held. */
static void head_flush(struct gh_audit *a, bool force)
{
	if (!a->head_dirty)
		return;
	uint64_t now = gh_mono_us() / 1000;
	if (!force && now - a->head_written_ms < GH_AUDIT_HEAD_MS)
		return;
	if (gh_store_audit_head_set(a->store, a->head_seq, a->head_hash))
		gh_log(GH_LOG_WARN, "audit head: store update failed; the log itself is durable");
	a->head_dirty = false;
	a->head_written_ms = now;
}

static void *writer_main(void *arg)
{
	struct gh_audit *a = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (!a->head && !a->stop)
			pthread_cond_wait(&a->cv, &a->mu);
		if (!a->head && a->stop)
			break;
		/* take up to GH_AUDIT_MAX_BATCH entries */
		struct gh_audit_entry *batch = a->head, *last = a->head;
		size_t n = 1;
		while (last->next && n < GH_AUDIT_MAX_BATCH) {
			last = last->next;
			n++;
		}
		a->head = last->next;
		if (!a->head)
			a->tail = NULL;
		last->next = NULL;
		pthread_mutex_unlock(&a->mu);

		pthread_mutex_lock(&a->wmu);
		int rc = write_batch(a, batch);
		pthread_mutex_lock(&a->mu);
		bool idle = !a->head;
		pthread_mutex_unlock(&a->mu);
		head_flush(a, idle);
		int64_t durable = a->seq;
		pthread_mutex_unlock(&a->wmu);
		if (!rc && a->on_durable)
			a->on_durable(a->on_durable_arg, durable);
		while (batch) {
			struct gh_audit_entry *next = batch->next;
			batch->next = NULL;
			batch->done(batch, rc ? GH_EAUDIT : 0);
			batch = next;
		}
		pthread_mutex_lock(&a->mu);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

int gh_audit_start(struct gh_audit *a)
{
	if (pthread_create(&a->thread, NULL, writer_main, a) != 0)
		return GH_EINTERNAL;
	a->started = true;
	return 0;
}

void gh_audit_submit(struct gh_audit *a, struct gh_audit_entry *e)
{
	e->next = NULL;
	pthread_mutex_lock(&a->mu);
	if (a->tail)
		a->tail->next = e;
	else
		a->head = e;
	a->tail = e;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

int gh_audit_append_n(struct gh_audit *a, const struct gh_audit_record *r, size_t n, int64_t *seq,
		      struct gh_error *err)
{
	if (n == 0 || n > GH_AUDIT_MAX_BATCH)
		return gh_error_set(err, GH_EINVAL, "audit: 1 to %d records at a time", GH_AUDIT_MAX_BATCH);
	struct gh_audit_entry *e = calloc(n, sizeof *e);
	if (!e)
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		gh_buf_init(&e[i].body, GH_AUDIT_MAX_RECORD);
		e[i].next = i + 1 < n ? &e[i + 1] : NULL;
		if (!rc && gh_audit_format(&r[i], &e[i].body))
			rc = gh_error_set(err, GH_EAUDIT, "audit record too large");
	}
	if (!rc) {
		pthread_mutex_lock(&a->wmu);
		int wrc = write_batch(a, e);
		head_flush(a, true);
		pthread_mutex_unlock(&a->wmu);
		if (wrc)
			rc = gh_error_set(err, GH_EAUDIT, "the audit log could not be written (see the server log)");
		else if (seq)
			*seq = e[n - 1].seq;
	}
	for (size_t i = 0; i < n; i++)
		gh_buf_free(&e[i].body);
	free(e);
	return rc;
}

int gh_audit_append(struct gh_audit *a, const struct gh_audit_record *r, int64_t *seq, struct gh_error *err)
{
	return gh_audit_append_n(a, r, 1, seq, err);
}

void gh_audit_on_durable(struct gh_audit *a, void (*fn)(void *arg, int64_t seq), void *arg)
{
	a->on_durable = fn;
	a->on_durable_arg = arg;
}

void gh_audit_stats(struct gh_audit *a, uint64_t *records, uint64_t *syncs)
{
	*records = atomic_load_explicit(&a->nrecords, memory_order_relaxed);
	*syncs = atomic_load_explicit(&a->nsyncs, memory_order_relaxed);
}

void gh_audit_set_sync_metric(struct gh_audit *a, struct gh_metrics_family *h)
{
	a->sync_time = h;
}

void gh_audit_close(struct gh_audit *a)
{
	if (!a)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->mu);
		a->stop = true;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thread, NULL);
	}
	pthread_mutex_lock(&a->wmu);
	head_flush(a, true);
	pthread_mutex_unlock(&a->wmu);
	if (a->fd >= 0)
		close(a->fd);
	gh_store_close(a->store);
	gh_buf_free(&a->out);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->wmu);
	pthread_cond_destroy(&a->cv);
	free(a);
}

/* ---- a consistent cut, for backups ---- */

static int log_path(const char *datadir, char *path, size_t n, struct gh_error *err)
{
	if (snprintf(path, n, "%s/audit/audit.log", datadir) >= (int)n)
		return gh_error_set(err, GH_ETOOBIG, "path too long");
	return 0;
}

int gh_audit_cut(const char *datadir, int (*fn)(void *arg, const struct gh_audit_cut *cut), void *arg,
		 struct gh_audit_cut *out, struct gh_error *err)
{
	char path[PATH_MAX];
	int rc = log_path(datadir, path, sizeof path, err);
	if (rc)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return gh_error_set(err, GH_EAUDIT, "%s: %s", path, strerror(errno));
	/* Writers append only under this lock and cut back a failed write before releasing it, so
	 * while it is held every complete line is a durable record and none is added. */
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			rc = gh_error_set(err, GH_EAUDIT, "%s: cannot lock: %s", path, strerror(errno));
			goto done;
		}
	}
	struct stat st;
	off_t complete = 0;
	if (fstat(fd, &st) < 0) {
		rc = gh_error_set(err, GH_EAUDIT, "%s: %s", path, strerror(errno));
		goto unlock;
	}
	if ((rc = complete_end(fd, st.st_size, &complete, err)) ||
	    (rc = tail_record(fd, complete, &out->seq, out->hash, err)))
		goto unlock;
	out->bytes = (int64_t)complete;
	rc = fn ? fn(arg, out) : 0;
unlock:
	flock(fd, LOCK_UN);
done:
	close(fd);
	return rc;
}

int gh_audit_copy(const char *datadir, const struct gh_audit_cut *cut, int dst, struct gh_error *err)
{
	char path[PATH_MAX];
	int rc = log_path(datadir, path, sizeof path, err);
	if (rc)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return gh_error_set(err, GH_EAUDIT, "%s: %s", path, strerror(errno));
	enum { CHUNK = 1 << 16 };
	char *buf = malloc(CHUNK);
	if (!buf) {
		close(fd);
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	}
	/* Bytes before the cut never change (append-only; a writer refuses a log that ends before
	 * the head): reading them needs no lock. */
	off_t off = 0;
	while (!rc && off < (off_t)cut->bytes) {
		size_t want = (size_t)((off_t)cut->bytes - off) < CHUNK ? (size_t)((off_t)cut->bytes - off) : CHUNK;
		ssize_t r = pread(fd, buf, want, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = gh_error_set(err, GH_EAUDIT, "%s: %s", path, r < 0 ? strerror(errno) : "shorter than its cut");
			break;
		}
		for (ssize_t w = 0; w < r;) {
			ssize_t k = write(dst, buf + w, (size_t)(r - w));
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				rc = gh_error_set(err, GH_EIO, "writing the audit log copy: %s", strerror(errno));
				break;
			}
			w += k;
		}
		off += r;
	}
	free(buf);
	close(fd);
	return rc;
}

/* ---- verify and read ---- */

struct line_reader {
	FILE *f;
	char *buf;
	size_t cap;
};

/* Reads one line (without '\n'); returns its length, -1 at EOF, -2 when too long,
 * -3 when the last line has no newline. */
static ssize_t next_line(struct line_reader *lr, char **line)
{
	ssize_t n = getline(&lr->buf, &lr->cap, lr->f);
	if (n < 0)
		return -1;
	if ((size_t)n > GH_AUDIT_MAX_LINE)
		return -2;
	*line = lr->buf;
	if (n == 0 || lr->buf[n - 1] != '\n')
		return -3;
	lr->buf[n - 1] = '\0';
	return n - 1;
}

static bool is_hex64(const char *p)
{
	for (int i = 0; i < 64; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

static int bad(struct gh_audit_report *rep, int64_t line, int64_t seq, const char *why)
{
	rep->ok = false;
	rep->bad_line = line;
	rep->bad_seq = seq;
	snprintf(rep->reason, sizeof rep->reason, "%s", why);
	return 0;
}

/* What a verification checks besides the chain itself. */
struct verify_plan {
	const char *log;
	bool have_head; /* the store's head (lower bound of the log's end) */
	int64_t head_seq;
	char head_hash[65];
	const char *ckpts;     /* the checkpoints file; NULL: none to check */
	const uint8_t *pk;     /* the key they must be signed with */
	bool need_checkpoint;  /* no checkpoint at all is a failure (public-key verification) */
};

static int bad_ckpt(struct gh_audit_report *rep, int64_t ckline, const char *why)
{
	rep->ok = false;
	rep->bad_line = 0;
	rep->bad_seq = -1;
	rep->bad_checkpoint_line = ckline;
	snprintf(rep->reason, sizeof rep->reason, "%s", why);
	return 0;
}

/* The next checkpoint, its signature and order checked. Returns 1 with *c, 0 at the end, -1
 * when it is bad (rep says why). */
static int next_ckpt(struct ckpt_reader *cr, const struct verify_plan *vp, int64_t after,
		     struct gh_audit_checkpoint *c, struct gh_audit_report *rep)
{
	int rc = ckpt_reader_next(cr, c);
	if (rc == 0)
		return 0;
	if (rc == GH_EIO)
		return bad_ckpt(rep, cr->line + 1, "the checkpoints file cannot be read"), -1;
	if (rc < 0)
		return bad_ckpt(rep, cr->line, "not a checkpoint line (edited, or cut short)"), -1;
	if (!gh_audit_checkpoint_verify(c, vp->pk))
		return bad_ckpt(rep, cr->line, "the checkpoint's signature does not verify with the public key "
					       "(forged, edited, or signed by another key)"), -1;
	if (c->seq <= after)
		return bad_ckpt(rep, cr->line, "checkpoints are out of order"), -1;
	return 1;
}

static int verify_run(const struct verify_plan *vp, struct gh_audit_report *rep, struct gh_error *err)
{
	struct ckpt_reader cr = {.fd = -1, .eof = true};
	struct gh_audit_checkpoint ck;
	int have_ck = 0;
	memset(rep, 0, sizeof *rep);
	rep->bad_seq = -1;
	rep->ok = true;
	if (vp->ckpts && ckpt_reader_open(&cr, vp->ckpts, err))
		return GH_EIO;
	struct line_reader lr = {.f = fopen(vp->log, "r")};
	if (!lr.f && errno != ENOENT) {
		ckpt_reader_close(&cr);
		return gh_error_set(err, GH_EIO, "%s: %s", vp->log, strerror(errno));
	}
	if (vp->ckpts && (have_ck = next_ckpt(&cr, vp, 0, &ck, rep)) < 0)
		goto out;
	char prev[65] = ZERO_HASH, msg[256];
	int64_t lineno = 0, expect = 1;
	for (;;) {
		char *line = NULL;
		ssize_t n = lr.f ? next_line(&lr, &line) : -1;
		if (n == -1)
			break;
		lineno++;
		if (n == -2) {
			bad(rep, lineno, -1, "record longer than the maximum line length");
			goto out;
		}
		if (n == -3) {
			bad(rep, lineno, -1, "last record is incomplete (no newline): truncated or torn");
			goto out;
		}
		size_t len = (size_t)n;
		if (len < HASH_SUFFIX_LEN + 2 || memcmp(line + len - HASH_SUFFIX_LEN, ",\"hash\":\"", 9) != 0 ||
		    !is_hex64(line + len - 66) || memcmp(line + len - 2, "\"}", 2) != 0) {
			bad(rep, lineno, -1, "record does not end with its hash member");
			goto out;
		}
		json_error_t je;
		json_t *v = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
		json_t *js = json_object_get(v, "seq"), *jp = json_object_get(v, "prev");
		int64_t seq = json_is_integer(js) ? json_integer_value(js) : -1;
		if (!v || seq < 0 || !json_is_string(jp)) {
			json_decref(v);
			bad(rep, lineno, seq, "record is not valid JSON with seq and prev");
			goto out;
		}
		bool prev_ok = strcmp(json_string_value(jp), prev) == 0;
		json_decref(v);
		uint8_t digest[32];
		char hex[65];
		crypto_hash_sha256_state hs;
		crypto_hash_sha256_init(&hs);
		crypto_hash_sha256_update(&hs, (const uint8_t *)line, len - HASH_SUFFIX_LEN);
		crypto_hash_sha256_update(&hs, (const uint8_t *)"}", 1);
		crypto_hash_sha256_final(&hs, digest);
		gh_hex_encode(digest, 32, hex);
		if (memcmp(hex, line + len - 66, 64) != 0) {
			bad(rep, lineno, seq, "hash does not match the record's content: the record was edited");
			goto out;
		}
		if (seq != expect) {
			snprintf(msg, sizeof msg, "expected seq %lld: a record was deleted, inserted or moved",
				 (long long)expect);
			bad(rep, lineno, seq, msg);
			goto out;
		}
		if (!prev_ok) {
			bad(rep, lineno, seq, "prev does not match the previous record's hash: the chain is broken");
			goto out;
		}
		if (vp->have_head && seq == vp->head_seq && memcmp(hex, vp->head_hash, 64) != 0) {
			bad(rep, lineno, seq, "hash differs from the head recorded in the store");
			goto out;
		}
		if (have_ck == 1 && ck.seq == seq) {
			if (memcmp(hex, ck.hash, 64) != 0) {
				bad(rep, lineno, seq, "the record's hash differs from the signed checkpoint of this seq: "
					"the log was rewritten");
				goto out;
			}
			rep->checkpoints++;
			rep->last_checkpoint = seq;
			if ((have_ck = next_ckpt(&cr, vp, seq, &ck, rep)) < 0)
				goto out;
		}
		memcpy(prev, hex, 65);
		expect++;
		rep->records++;
	}
	if (vp->have_head && vp->head_seq > rep->records) {
		snprintf(msg, sizeof msg, "log ends at seq %lld but the store's head is seq %lld: records were "
			 "removed from the end", (long long)rep->records, (long long)vp->head_seq);
		bad(rep, lineno + 1, rep->records + 1, msg);
		goto out;
	}
	if (have_ck == 1) {
		snprintf(msg, sizeof msg, "log ends at seq %lld but a signed checkpoint covers seq %lld: records were "
			 "removed from the end", (long long)rep->records, (long long)ck.seq);
		bad(rep, lineno + 1, rep->records + 1, msg);
		goto out;
	}
	if (vp->need_checkpoint && rep->checkpoints == 0) {
		bad(rep, 0, -1, "no signed checkpoint: nothing ties this log to the key (the server writes one every "
			"audit.checkpoint_every records and when it stops)");
		goto out;
	}
out:
	if (lr.f) {
		free(lr.buf);
		fclose(lr.f);
	}
	ckpt_reader_close(&cr);
	return 0;
}

int gh_audit_verify(const char *datadir, struct gh_audit_report *rep, struct gh_error *err)
{
	struct verify_plan vp = {.have_head = true};
	char path[PATH_MAX], dbpath[PATH_MAX], ckpts[PATH_MAX];
	uint8_t pk[32];
	memset(rep, 0, sizeof *rep);
	rep->bad_seq = -1;
	if (snprintf(path, sizeof path, "%s/audit/audit.log", datadir) >= (int)sizeof path ||
	    snprintf(ckpts, sizeof ckpts, "%s/audit/checkpoints", datadir) >= (int)sizeof ckpts ||
	    gh_path_join(dbpath, sizeof dbpath, datadir, "gatehouse.db"))
		return gh_error_set(err, GH_ETOOBIG, "path too long");
	struct gh_store *st = NULL;
	int rc = gh_store_open(dbpath, true, &st, err);
	if (rc)
		return rc;
	rc = gh_store_audit_head_get(st, &vp.head_seq, vp.head_hash);
	int krc = rc ? 0 : gh_audit_key_public(st, pk);
	gh_store_close(st);
	if (rc)
		return gh_error_set(err, GH_EIO, "cannot read the audit head from the store");
	if (krc && krc != GH_ENOTFOUND)
		return gh_error_set(err, GH_EIO, "cannot read the audit checkpoint key from the store");
	if (krc == 0) {
		vp.ckpts = ckpts;
		vp.pk = pk;
	}
	vp.log = path;
	return verify_run(&vp, rep, err);
}

int gh_audit_verify_public(const char *log_path, const char *ckpt_path, const uint8_t pk[32],
			   struct gh_audit_report *rep, struct gh_error *err)
{
	struct verify_plan vp = {.log = log_path, .ckpts = ckpt_path, .pk = pk, .need_checkpoint = true};
	return verify_run(&vp, rep, err);
}

/* ---- the fixed layout of a record line, for readers that follow the log (sink.c) ---- */

int audit_line_check(const char *line, size_t len, int64_t *seq, char prev[65], char hash[65], const char **why)
{
	static const char head[] = "{\"seq\":";
	const size_t hl = sizeof head - 1;
	if (len < hl + 2 + GH_AUDIT_PREV_MEMBER_LEN + HASH_SUFFIX_LEN || memcmp(line, head, hl) != 0) {
		*why = "not an audit record";
		return GH_EINVAL;
	}
	int64_t v = 0;
	size_t i = hl;
	while (i < len && line[i] >= '0' && line[i] <= '9' && i < hl + 18)
		v = v * 10 + (line[i++] - '0');
	if (i == hl || line[i] != ',' || (line[hl] == '0')) {
		*why = "the record does not start with its seq";
		return GH_EINVAL;
	}
	const char *pm = line + len - HASH_SUFFIX_LEN - GH_AUDIT_PREV_MEMBER_LEN;
	const char *hm = line + len - HASH_SUFFIX_LEN;
	if (memcmp(pm, ",\"prev\":\"", 9) != 0 || !is_hex64(pm + 9) || pm[73] != '"' ||
	    memcmp(hm, ",\"hash\":\"", 9) != 0 || !is_hex64(hm + 9) || memcmp(line + len - 2, "\"}", 2) != 0) {
		*why = "the record does not end with its prev and hash members";
		return GH_EINVAL;
	}
	uint8_t digest[32];
	crypto_hash_sha256_state hs;
	crypto_hash_sha256_init(&hs);
	crypto_hash_sha256_update(&hs, (const uint8_t *)line, len - HASH_SUFFIX_LEN);
	crypto_hash_sha256_update(&hs, (const uint8_t *)"}", 1);
	crypto_hash_sha256_final(&hs, digest);
	gh_hex_encode(digest, 32, hash);
	if (memcmp(hash, hm + 9, 64) != 0) {
		*why = "the record's hash does not match its content: it was edited";
		return GH_EINVAL;
	}
	memcpy(prev, pm + 9, 64);
	prev[64] = '\0';
	*seq = v;
	return 0;
}

int gh_audit_read(const char *datadir, int64_t since, int64_t limit,
		  int (*fn)(const char *line, size_t len, void *arg), void *arg, struct gh_error *err)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/audit/audit.log", datadir) >= (int)sizeof path)
		return gh_error_set(err, GH_ETOOBIG, "path too long");
	struct line_reader lr = {.f = fopen(path, "r")};
	if (!lr.f)
		return errno == ENOENT ? 0 : gh_error_set(err, GH_EIO, "audit log: %s", strerror(errno));
	int64_t lineno = 0, sent = 0;
	for (;;) {
		char *line = NULL;
		ssize_t n = next_line(&lr, &line);
		if (n < 0)
			break;
		lineno++; /* seq == line number in an intact log */
		if (lineno <= since)
			continue;
		if (sent >= limit || fn(line, (size_t)n, arg))
			break;
		sent++;
	}
	free(lr.buf);
	fclose(lr.f);
	return 0;
}
