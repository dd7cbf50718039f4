/* Unit tests for src/metrics: registration checks, counters and histograms with fixed label
 * sets, callback families, the exact Prometheus text (HELP/TYPE, label escaping, cumulative
 * buckets in seconds, +Inf, _sum, _count), and lock-free updates from several threads. */
#include "unit.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "metrics/metrics.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))

static const char *const fronts[] = {"http", "pgwire", NULL};
static const char *const decisions[] = {"allow", "deny", "pending", "error", NULL};
static const struct gh_metrics_label req_labels[] = {{"front", fronts}, {"decision", decisions}};

/* Renders m into a NUL-terminated malloc'd string (the test frees it). */
static char *render(struct gh_metrics *m, void *scrape)
{
	struct gh_buf b;
	gh_buf_init(&b, 1 << 20);
	assert_int_equal(gh_metrics_render(m, scrape, &b), 0);
	char *s = gh_strdup(b.data ? b.data : "");
	gh_buf_free(&b);
	return s;
}

static void test_counter_render(void **state)
{
	(void)state;
	struct gh_metrics *m = gh_metrics_new();
	struct gh_metrics_family *req = gh_metrics_counter(m, "gh_requests_total", "Requests by front.", req_labels, 2);
	struct gh_metrics_family *plain = gh_metrics_counter(m, "gh_plain_total", "No labels.", NULL, 0);
	assert_non_null(req);
	assert_non_null(plain);
	char *s = render(m, NULL);
	/* untouched labelled series are not shown; an unlabelled counter is, at 0 */
	assert_string_equal(s, "# HELP gh_requests_total Requests by front.\n# TYPE gh_requests_total counter\n"
			       "# HELP gh_plain_total No labels.\n# TYPE gh_plain_total counter\ngh_plain_total 0\n");
	free(s);
	gh_metrics_add(req, (size_t[]){1, 2}, 1);
	gh_metrics_add(req, (size_t[]){1, 2}, 2);
	gh_metrics_add(req, (size_t[]){0, 0}, 5);
	gh_metrics_add(plain, NULL, 7);
	assert_int_equal(gh_metrics_value(req, (size_t[]){1, 2}), 3);
	assert_int_equal(gh_metrics_value(req, (size_t[]){0, 0}), 5);
	assert_int_equal(gh_metrics_value(req, (size_t[]){0, 1}), 0);
	s = render(m, NULL);
	assert_string_equal(s, "# HELP gh_requests_total Requests by front.\n# TYPE gh_requests_total counter\n"
			       "gh_requests_total{front=\"http\",decision=\"allow\"} 5\n"
			       "gh_requests_total{front=\"pgwire\",decision=\"pending\"} 3\n"
			       "# HELP gh_plain_total No labels.\n# TYPE gh_plain_total counter\ngh_plain_total 7\n");
	free(s);
	/* out-of-range indices are ignored, never written past the series */
	gh_metrics_add(req, (size_t[]){2, 0}, 1);
	gh_metrics_add(req, (size_t[]){0, 4}, 1);
	gh_metrics_add(req, NULL, 1);
	assert_int_equal(gh_metrics_value(req, (size_t[]){1, 2}), 3);
	assert_int_equal(gh_metrics_value(req, (size_t[]){0, 0}), 5);
	assert_int_equal(gh_metrics_value_index(&req_labels[1], "pending", 3), 2);
	assert_int_equal(gh_metrics_value_index(&req_labels[1], "nonsense", 3), 3);
	assert_int_equal(gh_metrics_value_index(&req_labels[1], NULL, 3), 3);
	gh_metrics_free(m);
	CHECKED("counters: only touched labelled series, label order, exact text, bad indices ignored");
}

static void test_histogram_render(void **state)
{
	(void)state;
	static const char *const kinds[] = {"sqlite", "postgres", NULL};
	static const struct gh_metrics_label kl[] = {{"kind", kinds}};
	static const uint64_t bounds[] = {25, 1000, 2500000};
	struct gh_metrics *m = gh_metrics_new();
	struct gh_metrics_family *h = gh_metrics_histogram(m, "gh_backend_seconds", "Backend time.", kl, 1, bounds, 3);
	struct gh_metrics_family *u = gh_metrics_histogram(m, "gh_sync_seconds", "Sync.", NULL, 0, bounds, 3);
	assert_non_null(h);
	assert_non_null(u);
	/* le is inclusive: an observation equal to a bound counts in that bucket */
	gh_metrics_observe_us(h, (size_t[]){1}, 25);
	gh_metrics_observe_us(h, (size_t[]){1}, 26);
	gh_metrics_observe_us(h, (size_t[]){1}, 1000);
	gh_metrics_observe_us(h, (size_t[]){1}, 3000000);
	gh_metrics_observe_us(h, (size_t[]){1}, 0);
	assert_int_equal(gh_metrics_value(h, (size_t[]){1}), 5);
	char *s = render(m, NULL);
	assert_string_equal(s,
			    "# HELP gh_backend_seconds Backend time.\n# TYPE gh_backend_seconds histogram\n"
			    "gh_backend_seconds_bucket{kind=\"postgres\",le=\"0.000025\"} 2\n"
			    "gh_backend_seconds_bucket{kind=\"postgres\",le=\"0.001\"} 4\n"
			    "gh_backend_seconds_bucket{kind=\"postgres\",le=\"2.5\"} 4\n"
			    "gh_backend_seconds_bucket{kind=\"postgres\",le=\"+Inf\"} 5\n"
			    "gh_backend_seconds_sum{kind=\"postgres\"} 3.001051\n"
			    "gh_backend_seconds_count{kind=\"postgres\"} 5\n"
			    "# HELP gh_sync_seconds Sync.\n# TYPE gh_sync_seconds histogram\n"
			    "gh_sync_seconds_bucket{le=\"0.000025\"} 0\n"
			    "gh_sync_seconds_bucket{le=\"0.001\"} 0\n"
			    "gh_sync_seconds_bucket{le=\"2.5\"} 0\n"
			    "gh_sync_seconds_bucket{le=\"+Inf\"} 0\n"
			    "gh_sync_seconds_sum 0\n"
			    "gh_sync_seconds_count 0\n");
	free(s);
	gh_metrics_free(m);
	CHECKED("histograms: inclusive le, cumulative buckets, +Inf, exact seconds in le and _sum, _count");
}

struct collect_state {
	int calls;
	void *seen_scrape;
};

static void collect(void *arg, void *scrape, struct gh_metrics_out *out)
{
	struct collect_state *st = arg;
	st->calls++;
	st->seen_scrape = scrape;
	gh_metrics_emit(out, (const char *[]){"a\\b \"c\"\nd", "x", NULL}, 1.5);
	gh_metrics_emit(out, (const char *[]){"nan", "x", NULL}, NAN);
	gh_metrics_emit(out, (const char *[]){"inf", "x", NULL}, INFINITY);
	gh_metrics_emit(out, (const char *[]){"-inf", "x", NULL}, -INFINITY);
	gh_metrics_emit(out, (const char *[]){"big", "x", NULL}, 1e20);
	gh_metrics_emit(out, (const char *[]){"neg", "x", NULL}, -3);
	gh_metrics_emit(out, (const char *[]){"only-one", NULL}, 9);      /* wrong arity: dropped */
	gh_metrics_emit(out, NULL, 9);                                    /* wrong arity: dropped */
}

static void collect_plain(void *arg, void *scrape, struct gh_metrics_out *out)
{
	gh_metrics_emit(out, NULL, 42);
}

static void test_callback_escaping(void **state)
{
	(void)state;
	struct collect_state st = {0, NULL};
	struct gh_metrics *m = gh_metrics_new();
	assert_int_equal(gh_metrics_callback(m, "gh_sink_lag", "Lag per sink.\nSecond \\ line.", GH_METRICS_GAUGE,
					     (const char *[]){"sink", "kind", NULL}, collect, &st), 0);
	assert_int_equal(gh_metrics_callback(m, "gh_up", "Up.", GH_METRICS_GAUGE, NULL, collect_plain, NULL), 0);
	int scrape_ctx = 0;
	char *s = render(m, &scrape_ctx);
	assert_string_equal(s, "# HELP gh_sink_lag Lag per sink.\\nSecond \\\\ line.\n# TYPE gh_sink_lag gauge\n"
			       "gh_sink_lag{sink=\"a\\\\b \\\"c\\\"\\nd\",kind=\"x\"} 1.5\n"
			       "gh_sink_lag{sink=\"nan\",kind=\"x\"} NaN\n"
			       "gh_sink_lag{sink=\"inf\",kind=\"x\"} +Inf\n"
			       "gh_sink_lag{sink=\"-inf\",kind=\"x\"} -Inf\n"
			       "gh_sink_lag{sink=\"big\",kind=\"x\"} 1e+20\n"
			       "gh_sink_lag{sink=\"neg\",kind=\"x\"} -3\n"
			       "# HELP gh_up Up.\n# TYPE gh_up gauge\ngh_up 42\n");
	assert_int_equal(st.calls, 1);
	assert_ptr_equal(st.seen_scrape, &scrape_ctx);
	free(s);
	gh_metrics_free(m);
	CHECKED("callback families: scrape context passed, label and HELP escaping, NaN/+Inf/-Inf, wrong arity dropped");
}

static void test_registration_refusals(void **state)
{
	(void)state;
	static const char *const empty_value[] = {"ok", "", NULL};
	static const char *const dup_values[] = {"a", "b", "a", NULL};
	static const char *const none[] = {NULL};
	static const char *const many[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13",
					   "14", "15", "16", "17", "18", "19", "20", "21", "22", "23", "24", "25",
					   "26", "27", "28", "29", "30", "31", "32", "33", "34", "35", "36", "37",
					   "38", "39", "40", "41", "42", "43", "44", "45", "46", "47", "48", "49",
					   "50", "51", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61",
					   "62", "63", "64", NULL}; /* 65 values: 65^2 = 4225 > GH_METRICS_MAX_SERIES */
	static const uint64_t ok_bounds[] = {1, 2};
	static const uint64_t bad_bounds[] = {2, 2};
	struct gh_metrics *m = gh_metrics_new();
	assert_non_null(gh_metrics_counter(m, "gh_ok_total", "ok", req_labels, 1));
	assert_non_null(gh_metrics_histogram(m, "gh_lat_seconds", "h", NULL, 0, ok_bounds, 2));
	/* names */
	assert_null(gh_metrics_counter(m, "", "x", NULL, 0));
	assert_null(gh_metrics_counter(m, "1abc", "x", NULL, 0));
	assert_null(gh_metrics_counter(m, "a-b", "x", NULL, 0));
	assert_null(gh_metrics_counter(m, "a b", "x", NULL, 0));
	assert_null(gh_metrics_counter(m, NULL, "x", NULL, 0));
	assert_null(gh_metrics_counter(m, "gh_nohelp", NULL, NULL, 0));
	assert_non_null(gh_metrics_counter(m, "gh:colon_ok", "x", NULL, 0));
	/* duplicates and names a histogram prints */
	assert_null(gh_metrics_counter(m, "gh_ok_total", "again", NULL, 0));
	assert_null(gh_metrics_counter(m, "gh_lat_seconds_count", "clash", NULL, 0));
	assert_null(gh_metrics_counter(m, "gh_lat_seconds_bucket", "clash", NULL, 0));
	assert_int_equal(gh_metrics_callback(m, "gh_lat_seconds_sum", "clash", GH_METRICS_GAUGE, NULL, collect_plain,
					     NULL), GH_EEXIST);
	assert_non_null(gh_metrics_counter(m, "gh_x_sum", "x", NULL, 0));
	assert_null(gh_metrics_histogram(m, "gh_x", "would print gh_x_sum", NULL, 0, ok_bounds, 2));
	/* labels */
	struct gh_metrics_label l;
	l = (struct gh_metrics_label){"__reserved", fronts};
	assert_null(gh_metrics_counter(m, "gh_a_total", "x", &l, 1));
	l = (struct gh_metrics_label){"bad-name", fronts};
	assert_null(gh_metrics_counter(m, "gh_a_total", "x", &l, 1));
	l = (struct gh_metrics_label){"v", empty_value};
	assert_null(gh_metrics_counter(m, "gh_a_total", "x", &l, 1));
	l = (struct gh_metrics_label){"v", dup_values};
	assert_null(gh_metrics_counter(m, "gh_a_total", "x", &l, 1));
	l = (struct gh_metrics_label){"v", none};
	assert_null(gh_metrics_counter(m, "gh_a_total", "x", &l, 1));
	l = (struct gh_metrics_label){"v", NULL};
	assert_null(gh_metrics_counter(m, "gh_a_total", "x", &l, 1));
	struct gh_metrics_label two_same[] = {{"front", fronts}, {"front", decisions}};
	assert_null(gh_metrics_counter(m, "gh_a_total", "x", two_same, 2));
	struct gh_metrics_label big[] = {{"a", many}, {"b", many}};
	assert_null(gh_metrics_counter(m, "gh_a_total", "x", big, 2));
	struct gh_metrics_label five[] = {{"a", fronts}, {"b", fronts}, {"c", fronts}, {"d", fronts}, {"e", fronts}};
	assert_null(gh_metrics_counter(m, "gh_a_total", "x", five, 5));
	assert_non_null(gh_metrics_counter(m, "gh_a_total", "x", five, 4));
	l = (struct gh_metrics_label){"le", fronts};
	assert_null(gh_metrics_histogram(m, "gh_h_seconds", "x", &l, 1, ok_bounds, 2));
	/* bounds */
	assert_null(gh_metrics_histogram(m, "gh_h_seconds", "x", NULL, 0, bad_bounds, 2));
	assert_null(gh_metrics_histogram(m, "gh_h_seconds", "x", NULL, 0, ok_bounds, 0));
	assert_null(gh_metrics_histogram(m, "gh_h_seconds", "x", NULL, 0, NULL, 2));
	/* callbacks */
	assert_int_equal(gh_metrics_callback(m, "gh_cb", "x", GH_METRICS_HISTOGRAM, NULL, collect_plain, NULL),
			 GH_EINVAL);
	assert_int_equal(gh_metrics_callback(m, "gh_cb", "x", GH_METRICS_GAUGE, NULL, NULL, NULL), GH_EINVAL);
	assert_int_equal(gh_metrics_callback(m, "gh_cb", "x", GH_METRICS_GAUGE, (const char *[]){"ok", "__no", NULL},
					     collect_plain, NULL), GH_EINVAL);
	assert_int_equal(gh_metrics_callback(m, "gh_cb", "x", GH_METRICS_GAUGE,
					     (const char *[]){"a", "b", "c", "d", "e", NULL}, collect_plain, NULL),
			 GH_ETOOBIG);
	assert_int_equal(gh_metrics_callback(m, "gh_cb", "x", GH_METRICS_COUNTER, NULL, collect_plain, NULL), 0);
	/* a family that is not a counter ignores counter updates, and the other way round */
	struct gh_metrics_family *h = gh_metrics_histogram(m, "gh_h2_seconds", "x", NULL, 0, ok_bounds, 2);
	struct gh_metrics_family *c = gh_metrics_counter(m, "gh_c2_total", "x", NULL, 0);
	gh_metrics_add(h, NULL, 5);
	gh_metrics_observe_us(c, NULL, 5);
	assert_int_equal(gh_metrics_value(h, NULL), 0);
	assert_int_equal(gh_metrics_value(c, NULL), 0);
	gh_metrics_free(m);
	CHECKED("refused: bad metric and label names, __ labels, le on histograms, empty or duplicate label "
		"values, duplicate names and histogram suffix clashes, > 4 labels, > 4096 series, bad bounds");
}

static void test_family_limit(void **state)
{
	(void)state;
	struct gh_metrics *m = gh_metrics_new();
	char name[32];
	for (int i = 0; i < GH_METRICS_MAX_FAMILIES; i++) {
		snprintf(name, sizeof name, "gh_f%d", i);
		assert_non_null(gh_metrics_counter(m, name, "x", NULL, 0));
	}
	assert_null(gh_metrics_counter(m, "gh_one_more", "x", NULL, 0));
	assert_int_equal(gh_metrics_callback(m, "gh_one_more", "x", GH_METRICS_GAUGE, NULL, collect_plain, NULL),
			 GH_ETOOBIG);
	char *s = render(m, NULL);
	assert_non_null(strstr(s, "gh_f127 0\n"));
	free(s);
	gh_metrics_free(m);
	CHECKED("at most %d families", GH_METRICS_MAX_FAMILIES);
}

static void test_render_refuses_oversized(void **state)
{
	(void)state;
	struct gh_metrics *m = gh_metrics_new();
	assert_non_null(gh_metrics_counter(m, "gh_x_total", "x", NULL, 0));
	struct gh_buf b;
	gh_buf_init(&b, 16); /* the caller's buffer is too small: an error, not a truncated page */
	assert_int_equal(gh_metrics_render(m, NULL, &b), GH_ETOOBIG);
	assert_int_equal(b.len, 0);
	gh_buf_free(&b);
	gh_metrics_free(m);
	CHECKED("a page that does not fit is refused whole");
}

#define THREADS 4
#define ROUNDS 100000

struct race {
	struct gh_metrics_family *c, *h;
};

static void *hammer(void *arg)
{
	struct race *r = arg;
	for (int i = 0; i < ROUNDS; i++) {
		gh_metrics_add(r->c, (size_t[]){(size_t)(i & 1), (size_t)(i % 4)}, 1);
		gh_metrics_observe_us(r->h, NULL, (uint64_t)(i % 3));
	}
	return NULL;
}

static void test_concurrent_updates(void **state)
{
	(void)state;
	static const uint64_t bounds[] = {1};
	struct gh_metrics *m = gh_metrics_new();
	struct race r = {gh_metrics_counter(m, "gh_race_total", "x", req_labels, 2),
			 gh_metrics_histogram(m, "gh_race_seconds", "x", NULL, 0, bounds, 1)};
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &r), 0);
	/* renders while the others write: every page is consistent with itself */
	for (int k = 0; k < 50; k++) {
		char *s = render(m, NULL);
		char *inf = strstr(s, "gh_race_seconds_bucket{le=\"+Inf\"} ");
		char *cnt = strstr(s, "gh_race_seconds_count ");
		assert_non_null(inf);
		assert_non_null(cnt);
		assert_int_equal(strtoull(inf + strlen("gh_race_seconds_bucket{le=\"+Inf\"} "), NULL, 10),
				 strtoull(cnt + strlen("gh_race_seconds_count "), NULL, 10));
		free(s);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	uint64_t total = 0;
	for (size_t f = 0; f < 2; f++)
		for (size_t d = 0; d < 4; d++)
			total += gh_metrics_value(r.c, (size_t[]){f, d});
	assert_int_equal(total, (uint64_t)THREADS * ROUNDS);
	assert_int_equal(gh_metrics_value(r.c, (size_t[]){1, 3}), (uint64_t)THREADS * ROUNDS / 4);
	assert_int_equal(gh_metrics_value(r.h, NULL), (uint64_t)THREADS * ROUNDS);
	char *s = render(m, NULL);
	/* i % 3 in {0,1,2}: 0 and 1 are <= 1 us */
	char want[200];
	uint64_t le1 = 0, sum = 0;
	for (int i = 0; i < ROUNDS; i++) {
		le1 += (i % 3) <= 1;
		sum += (uint64_t)(i % 3);
	}
	snprintf(want, sizeof want, "gh_race_seconds_bucket{le=\"0.000001\"} %llu\n",
		 (unsigned long long)(le1 * THREADS));
	assert_non_null(strstr(s, want));
	snprintf(want, sizeof want, "gh_race_seconds_sum %llu.%06llu\n", (unsigned long long)(sum * THREADS / 1000000),
		 (unsigned long long)(sum * THREADS % 1000000));
	assert_non_null(strstr(s, want));
	free(s);
	gh_metrics_free(m);
	CHECKED("%d threads x %d updates: exact totals; pages rendered meanwhile keep _count == +Inf", THREADS, ROUNDS);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_counter_render),
	cmocka_unit_test(test_histogram_render),
	cmocka_unit_test(test_callback_escaping),
	cmocka_unit_test(test_registration_refusals),
	cmocka_unit_test(test_family_limit),
	cmocka_unit_test(test_render_refuses_oversized),
	cmocka_unit_test(test_concurrent_updates),
};

GH_UNIT_MAIN("test_metrics", tests)
