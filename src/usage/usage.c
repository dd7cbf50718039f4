/* usage: the index file, its schema, the background thread and time parsing. */
#include "usage/usage_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Bumped whenever the tables change: an index of another version is replaced. */
#define USAGE_SCHEMA_VERSION 2

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  generation INTEGER NOT NULL,"      /* bumped by each rebuild: ids of older ones are void */
	"  seq INTEGER NOT NULL,"             /* the last record taken ... */
	"  hash TEXT NOT NULL,"               /* ... its hash ... */
	"  start_off INTEGER NOT NULL,"       /* ... where its line starts in the log ... */
	"  end_off INTEGER NOT NULL,"         /* ... and ends (after its newline) */
	"  last_time_ms INTEGER NOT NULL);"
	"INSERT OR IGNORE INTO meta VALUES (1, 1, 0, '', 0, 0, 0);"
	"CREATE TABLE IF NOT EXISTS dims ("
	"  id INTEGER PRIMARY KEY, app TEXT NOT NULL, user TEXT NOT NULL, resource TEXT NOT NULL,"
	"  environment TEXT NOT NULL, UNIQUE (app, user, resource, environment));"
	/* one row per hour: the sums of every group in it, packed (blob.c) */
	"CREATE TABLE IF NOT EXISTS buckets ("
	"  bucket INTEGER PRIMARY KEY, counts BLOB, denials BLOB, stmts BLOB);"
	"CREATE TABLE IF NOT EXISTS rules (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
	"CREATE TABLE IF NOT EXISTS fingerprints ("
	"  id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, resource TEXT NOT NULL, example TEXT NOT NULL,"
	"  UNIQUE (fingerprint, resource));"
	"CREATE TABLE IF NOT EXISTS pending ("
	"  id TEXT PRIMARY KEY, time_ms INTEGER NOT NULL, dim INTEGER NOT NULL) WITHOUT ROWID;";

int usage_sq_err(struct gh_usage *u, struct gh_error *err, const char *what)
{
	return gh_error_set(err, GH_EIO, "usage index: %s: %s", what, u->db ? sqlite3_errmsg(u->db) : "not open");
}

int usage_exec(struct gh_usage *u, const char *sql, struct gh_error *err)
{
	if (sqlite3_exec(u->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return usage_sq_err(u, err, "statement failed");
	return 0;
}

int usage_reset(struct gh_usage *u, struct gh_error *err)
{
	int rc = usage_exec(u,
			    "DELETE FROM dims; DELETE FROM buckets; DELETE FROM rules; DELETE FROM fingerprints;"
			    "DELETE FROM pending;"
			    "UPDATE meta SET generation = generation + 1, seq = 0, hash = '', start_off = 0,"
			    " end_off = 0, last_time_ms = 0",
			    err);
	usage_forget(u);
	return rc;
}

void usage_forget(struct gh_usage *u)
{
	gh_map_clear(u->dims);
	gh_map_clear(u->texts);
	gh_map_clear(u->fps);
	gh_map_clear(u->rules);
	u->text_bytes = 0;
}

/* Opens the index file; 1 when it must be replaced (another schema, or not a database). */
static int connect(struct gh_usage *u, const char *path, struct gh_error *err)
{
	if (sqlite3_open_v2(path, &u->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		return usage_sq_err(u, err, "open");
	sqlite3_busy_timeout(u->db, 60000); /* another process may be in a pass */
	sqlite3_db_config(u->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(u->db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	sqlite3_stmt *st = NULL;
	int version = -1;
	if (sqlite3_prepare_v2(u->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	int tables = -1;
	if (sqlite3_prepare_v2(u->db, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		tables = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version < 0 || tables < 0 || (tables > 0 && version != USAGE_SCHEMA_VERSION))
		return 1;
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", USAGE_SCHEMA_VERSION);
	/* derived data: a lost last transaction after a power cut is caught up again */
	if (usage_exec(u, "PRAGMA journal_mode=WAL", err) || usage_exec(u, "PRAGMA synchronous=NORMAL", err) ||
	    usage_exec(u, "BEGIN IMMEDIATE", err))
		return GH_EIO;
	if (usage_exec(u, schema, err) || usage_exec(u, sql, err)) {
		usage_exec(u, "ROLLBACK", NULL);
		return GH_EIO;
	}
	return usage_exec(u, "COMMIT", err);
}

/* Creates path (0600) if it does not exist; as root, gives it to the owner of dir, so the
 * server's account can still write an index first made by `sudo gatehouse usage`. */
static int create_file(const char *path, const char *dir, struct gh_error *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == EEXIST)
		return 0;
	if (fd < 0)
		return gh_error_set(err, GH_EIO, "usage index: %s: %s", path, strerror(errno));
	struct stat st;
	if (geteuid() == 0 && stat(dir, &st) == 0 && st.st_uid != 0 && fchown(fd, st.st_uid, st.st_gid) < 0) {
		close(fd);
		return gh_error_set(err, GH_EIO, "usage index: %s: %s", path, strerror(errno));
	}
	close(fd);
	return 0;
}

int gh_usage_open(const char *datadir, struct gh_usage **out, struct gh_error *err)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct gh_usage *u = calloc(1, sizeof *u);
	int rc;
	if (!u)
		return gh_error_set(err, GH_ENOMEM, "out of memory");
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->cv, NULL);
	u->dims = gh_map_new(NULL);
	u->texts = gh_map_new(NULL);
	u->fps = gh_map_new(NULL);
	u->rules = gh_map_new(NULL);
	u->policy_version = -1;
	if (!u->dims || !u->texts || !u->fps || !u->rules) {
		rc = gh_error_set(err, GH_ENOMEM, "out of memory");
		goto fail;
	}
	if (snprintf(u->datadir, sizeof u->datadir, "%s", datadir) >= (int)sizeof u->datadir ||
	    gh_path_join(dir, sizeof dir, datadir, "audit") || gh_path_join(path, sizeof path, dir, "usage.db") ||
	    gh_path_join(u->log_path, sizeof u->log_path, dir, "audit.log") ||
	    gh_path_join(u->store_path, sizeof u->store_path, datadir, "gatehouse.db")) {
		rc = gh_error_set(err, GH_ETOOBIG, "path too long");
		goto fail;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = gh_error_set(err, GH_EIO, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		if ((rc = create_file(path, dir, err)))
			goto fail;
		rc = connect(u, path, err);
		if (rc <= 0)
			break;
		/* another schema version or not a database: it is derived data, start again */
		sqlite3_close(u->db);
		u->db = NULL;
		gh_unlink_sqlite(path);
		rc = gh_error_set(err, GH_EIO, "usage index: %s cannot be replaced", path);
	}
	if (rc)
		goto fail;
	*out = u;
	return 0;
fail:
	gh_usage_close(u);
	return rc;
}

void gh_usage_close(struct gh_usage *u)
{
	if (!u)
		return;
	if (u->started) {
		pthread_mutex_lock(&u->mu);
		u->stop = true;
		pthread_cond_signal(&u->cv);
		pthread_mutex_unlock(&u->mu);
		pthread_join(u->thread, NULL);
	}
	if (u->db)
		sqlite3_close(u->db);
	gh_store_close(u->store);
	if (u->policy)
		gh_config_unref(u->policy);
	gh_map_free(u->dims);
	gh_map_free(u->texts);
	gh_map_free(u->fps);
	gh_map_free(u->rules);
	pthread_mutex_destroy(&u->mu);
	pthread_cond_destroy(&u->cv);
	free(u);
}

/* ---- resource kinds ---- */

void usage_policy_refresh(struct gh_usage *u)
{
	struct gh_error err;
	if (!u->store && gh_store_open(u->store_path, false, &u->store, &err))
		return; /* kinds unknown: the SQLite normaliser serves every resource */
	int64_t pv = 0, rev = 0, sec = 0;
	if (gh_store_change_marks(u->store, &pv, &rev, &sec) || pv == u->policy_version)
		return;
	char *doc = NULL;
	int64_t version = 0;
	struct gh_policy *p = NULL;
	if (gh_store_policy_load(u->store, &doc, &version) == 0 && doc &&
	    gh_config_parse(doc, strlen(doc), "stored policy", NULL, &p, &err) == 0) {
		if (u->policy)
			gh_config_unref(u->policy);
		u->policy = p;
	}
	free(doc);
	u->policy_version = pv;
}

enum gh_sql_dialect usage_dialect(struct gh_usage *u, const char *resource)
{
	const struct gh_policy_resource *r = u->policy ? gh_config_resource(u->policy, resource) : NULL;
	return r && r->kind == GH_RESOURCE_POSTGRES ? GH_SQL_DIALECT_PG : GH_SQL_DIALECT_SQLITE;
}

/* ---- background catch-up ---- */

static int64_t log_size(struct gh_usage *u)
{
	struct stat st;
	return stat(u->log_path, &st) == 0 ? (int64_t)st.st_size : 0;
}

static void *background(void *arg)
{
	struct gh_usage *u = arg;
	/* below request work: the index only has to be ready when someone asks */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
	pthread_mutex_lock(&u->mu);
	while (!u->stop) {
		int64_t size = log_size(u);
		if (size != u->seen_size) {
			pthread_mutex_unlock(&u->mu);
			struct gh_usage_stats st;
			struct gh_error err;
			bool more = true;
			int rc = 0;
			while (more && !rc && !__atomic_load_n(&u->stop, __ATOMIC_RELAXED)) {
				rc = usage_catch_up_some(u, USAGE_BACKGROUND_PASS, 1, &more, &st, &err);
				if (rc)
					gh_log(GH_LOG_WARN, "%s", err.message);
				else if (st.rebuilt)
					gh_log(GH_LOG_INFO, "usage index: rebuilt from the start of the trail");
				if (more) /* a duty cycle: never more than a tenth of a core */
					usleep((useconds_t)(st.ms * 1000.0 * (USAGE_BACKGROUND_DUTY - 1)));
			}
			pthread_mutex_lock(&u->mu);
			u->seen_size = size;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += u->interval_ms / 1000;
		ts.tv_nsec += (long)(u->interval_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!u->stop)
			pthread_cond_timedwait(&u->cv, &u->mu, &ts);
	}
	pthread_mutex_unlock(&u->mu);
	return NULL;
}

int gh_usage_start(struct gh_usage *u, int interval_ms)
{
	u->interval_ms = interval_ms > 0 ? interval_ms : 1000;
	u->seen_size = -1;
	if (pthread_create(&u->thread, NULL, background, u) != 0)
		return GH_EINTERNAL;
	u->started = true;
	return 0;
}

/* ---- time ---- */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool usage_parse_rfc3339(const char *s, size_t n, int64_t *ms)
{
	int y, mo, d, h, mi, se, frac = 0;
	if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
	    s[16] != ':' || (s[n - 1] != 'Z' && s[n - 1] != 'z'))
		return false;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) ||
	    !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
		return false;
	if (n > 20) {
		/* a fraction: '.' and 1 to 9 digits; milliseconds are kept */
		size_t fl = n - 21;
		if (s[19] != '.' || fl < 1 || fl > 9)
			return false;
		int scale = 100;
		for (size_t i = 0; i < fl; i++) {
			if (s[20 + i] < '0' || s[20 + i] > '9')
				return false;
			frac += (s[20 + i] - '0') * scale;
			scale /= 10;
		}
	}
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
		return false;
	*ms = ((days_from_civil(y, mo, d) * 86400) + h * 3600 + mi * 60 + se) * 1000 + frac;
	return true;
}

int gh_usage_parse_time(const char *s, int64_t now_ms, int64_t *out_ms)
{
	int64_t secs;
	if (!s || !*s)
		return GH_EINVAL;
	if (strchr(s, 'T') || strchr(s, 't')) {
		int64_t ms;
		if (!usage_parse_rfc3339(s, strlen(s), &ms))
			return GH_EINVAL;
		*out_ms = ms;
		return 0;
	}
	/* ten years back at most: a duration that large is a mistake */
	if (gh_parse_duration(s, &secs) || secs < 0 || secs > 10LL * 366 * 86400)
		return GH_EINVAL;
	*out_ms = now_ms - secs * 1000;
	return 0;
}
