/* bench/http_read/direct.c — the peer of the governed HTTP read: the same point read called on
 * SQLite directly, the fastest honest way (one read-only connection per thread, the statement
 * prepared once and reused: bind, step, read every column, reset).
 *
 *   direct DB_PATH SECONDS THREADS [ROWS]
 *
 * Each thread draws ids uniformly from 1..ROWS (default 100000) and times every call with
 * CLOCK_MONOTONIC (the two clock reads are included in each sample, ~20-40 ns on this kind of
 * VM). Prints a human summary and one machine-readable line:
 *   DIRECT_RESULT calls=N duration_us=D rps=R p50_us=.. p90_us=.. p99_us=.. max_us=..
 * cpu_us_per_call is the process's user+system CPU time divided by the calls (less sensitive to
 * other load on the machine than the wall-clock rate).
 * Latencies are kept in a histogram with 10 ns buckets below 1 ms and 1 us buckets above
 * (up to 10 s), so percentiles are exact to 10 ns where it matters.
 *
 * Build: cc -O2 -o direct direct.c -lsqlite3 -lpthread */
#define _GNU_SOURCE
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define FINE_BUCKETS 100000  /* 10 ns each: 0 .. 1 ms */
#define COARSE_BUCKETS 10000000 /* 1 us each: 1 ms .. 10 s (stored sparsely enough: uint32) */
#define SQL "SELECT id, name, balance FROM accounts WHERE id = ?"

struct thr {
	pthread_t t;
	int idx;
	const char *path;
	double seconds;
	int64_t rows;
	uint64_t calls, found, checksum, max_ns;
	uint64_t *fine;
	uint32_t *coarse; /* allocated lazily on the first sample over 1 ms */
	int failed;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: a fast per-thread generator (rand() would take a lock) */
static uint64_t next_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void record(struct thr *t, uint64_t ns)
{
	if (ns > t->max_ns)
		t->max_ns = ns;
	if (ns < 1000000u) {
		t->fine[ns / 10]++;
		return;
	}
	if (!t->coarse && !(t->coarse = calloc(COARSE_BUCKETS, sizeof *t->coarse)))
		return;
	uint64_t us = ns / 1000u;
	t->coarse[us < COARSE_BUCKETS ? us : COARSE_BUCKETS - 1]++;
}

static void *run(void *arg)
{
	struct thr *t = arg;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	if (sqlite3_open_v2(t->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(db, SQL, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "direct: thread %d: %s\n", t->idx, db ? sqlite3_errmsg(db) : "out of memory");
		t->failed = 1;
		sqlite3_close(db);
		return NULL;
	}
	uint64_t seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(t->idx + 1) ^ now_ns();
	if (!seed)
		seed = 1;
	uint64_t end = now_ns() + (uint64_t)(t->seconds * 1e9);
	for (;;) {
		int64_t id = (int64_t)(next_rand(&seed) % (uint64_t)t->rows) + 1;
		uint64_t t0 = now_ns();
		sqlite3_bind_int64(st, 1, id);
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			/* read every column, as a client would */
			t->checksum += (uint64_t)sqlite3_column_int64(st, 0);
			const unsigned char *name = sqlite3_column_text(st, 1);
			t->checksum += (uint64_t)sqlite3_column_bytes(st, 1) + (name ? name[0] : 0);
			t->checksum += (uint64_t)sqlite3_column_int64(st, 2);
			t->found++;
		}
		sqlite3_reset(st);
		uint64_t t1 = now_ns();
		if (rc != SQLITE_DONE) {
			fprintf(stderr, "direct: thread %d: step: %s\n", t->idx, sqlite3_errmsg(db));
			t->failed = 1;
			break;
		}
		record(t, t1 - t0);
		t->calls++;
		if (t1 >= end)
			break;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return NULL;
}

/* value in ns at quantile q of the merged histograms */
static uint64_t percentile(struct thr *ts, int n, uint64_t total, double q)
{
	uint64_t want = (uint64_t)(q * (double)total);
	if (want >= total)
		want = total - 1;
	uint64_t seen = 0;
	for (size_t b = 0; b < FINE_BUCKETS; b++) {
		for (int i = 0; i < n; i++)
			seen += ts[i].fine[b];
		if (seen > want)
			return b * 10 + 5;
	}
	for (size_t b = 0; b < COARSE_BUCKETS; b++) {
		for (int i = 0; i < n; i++)
			seen += ts[i].coarse ? ts[i].coarse[b] : 0;
		if (seen > want)
			return b * 1000 + 500;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s DB_PATH SECONDS THREADS [ROWS]\n", argv[0]);
		return 2;
	}
	const char *path = argv[1];
	double seconds = atof(argv[2]);
	int n = atoi(argv[3]);
	int64_t rows = argc > 4 ? atoll(argv[4]) : 100000;
	if (seconds <= 0 || n <= 0 || n > 256 || rows <= 0) {
		fprintf(stderr, "direct: bad arguments\n");
		return 2;
	}
	struct thr *ts = calloc((size_t)n, sizeof *ts);
	if (!ts)
		return 1;
	for (int i = 0; i < n; i++) {
		ts[i].idx = i;
		ts[i].path = path;
		ts[i].seconds = seconds;
		ts[i].rows = rows;
		ts[i].fine = calloc(FINE_BUCKETS, sizeof *ts[i].fine);
		if (!ts[i].fine)
			return 1;
	}
	uint64_t t0 = now_ns();
	for (int i = 0; i < n; i++)
		if (pthread_create(&ts[i].t, NULL, run, &ts[i]) != 0) {
			fprintf(stderr, "direct: cannot start thread %d\n", i);
			return 1;
		}
	for (int i = 0; i < n; i++)
		pthread_join(ts[i].t, NULL);
	uint64_t elapsed = now_ns() - t0;

	uint64_t calls = 0, found = 0, maxns = 0, sum = 0;
	int failed = 0;
	for (int i = 0; i < n; i++) {
		calls += ts[i].calls;
		found += ts[i].found;
		sum += ts[i].checksum;
		failed |= ts[i].failed;
		if (ts[i].max_ns > maxns)
			maxns = ts[i].max_ns;
	}
	if (failed || calls == 0)
		return 1;
	double rps = (double)calls / ((double)elapsed / 1e9);
	uint64_t p50 = percentile(ts, n, calls, 0.50), p90 = percentile(ts, n, calls, 0.90),
		 p99 = percentile(ts, n, calls, 0.99);
	printf("direct: %d thread(s), %llu calls in %.2f s (%llu rows found, checksum %llx)\n", n,
	       (unsigned long long)calls, (double)elapsed / 1e9, (unsigned long long)found, (unsigned long long)sum);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu_us = (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec * 1e6 +
			(double)ru.ru_stime.tv_usec;
	printf("DIRECT_RESULT calls=%llu duration_us=%llu rps=%.1f p50_us=%.3f p90_us=%.3f p99_us=%.3f max_us=%.3f "
	       "cpu_us_per_call=%.2f\n",
	       (unsigned long long)calls, (unsigned long long)(elapsed / 1000), rps, p50 / 1000.0, p90 / 1000.0,
	       p99 / 1000.0, maxns / 1000.0, cpu_us / (double)calls);
	for (int i = 0; i < n; i++) {
		free(ts[i].fine);
		free(ts[i].coarse);
	}
	free(ts);
	return found == calls ? 0 : 1;
}
