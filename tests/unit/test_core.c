/* Unit tests for src/core: base64url, hex, parsers of durations/ints/sizes, the bounded buffer,
 * JSON string escaping, the string map and RFC 3339 time formatting. */
#include "unit.h"

#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))

/* ---- base64url ---- */

static void test_b64url_known_vectors(void **state)
{
	(void)state;
	/* RFC 4648 test vectors, unpadded and with the URL alphabet. */
	static const struct { const char *in, *out; } v[] = {
		{"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"foob", "Zm9vYg"},
		{"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
	};
	char out[64];
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		size_t n = gh_b64url_encode((const uint8_t *)v[i].in, strlen(v[i].in), out, sizeof out);
		assert_int_equal(n, strlen(v[i].out));
		assert_string_equal(out, v[i].out);
	}
	/* The URL alphabet: 0xfb 0xff -> "-_8" (standard base64 would be "+/8"). */
	static const uint8_t hi[] = {0xfb, 0xff};
	assert_int_equal(gh_b64url_encode(hi, 2, out, sizeof out), 3);
	assert_string_equal(out, "-_8");
	uint8_t dec[8];
	size_t dl = 0;
	assert_int_equal(gh_b64url_decode("-_8", 3, dec, sizeof dec, &dl), 0);
	assert_int_equal(dl, 2);
	assert_memory_equal(dec, hi, 2);
	CHECKED("base64url RFC 4648 vectors and the '-' '_' alphabet");
}

static void test_b64url_roundtrip_all_lengths(void **state)
{
	(void)state;
	uint8_t in[64], dec[64];
	char enc[100];
	for (size_t n = 0; n <= 64; n++) {
		randombytes_buf(in, sizeof in);
		size_t el = gh_b64url_encode(in, n, enc, sizeof enc);
		assert_int_equal(el, (n * 4 + 2) / 3); /* unpadded length */
		assert_int_equal(strlen(enc), el);
		assert_null(strchr(enc, '='));
		assert_null(strchr(enc, '+'));
		assert_null(strchr(enc, '/'));
		size_t dl = 12345;
		assert_int_equal(gh_b64url_decode(enc, el, dec, sizeof dec, &dl), 0);
		assert_int_equal(dl, n);
		if (n)
			assert_memory_equal(dec, in, n);
	}
	/* all byte values */
	uint8_t all[256], back[256];
	char big[400];
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	size_t el = gh_b64url_encode(all, 256, big, sizeof big);
	assert_int_equal(el, 342);
	size_t dl = 0;
	assert_int_equal(gh_b64url_decode(big, el, back, sizeof back, &dl), 0);
	assert_int_equal(dl, 256);
	assert_memory_equal(all, back, 256);
	CHECKED("base64url encode/decode round trip for every length 0..64 and all byte values");
}

static void test_b64url_encode_small_output(void **state)
{
	(void)state;
	char out[8];
	const uint8_t in[] = "abcdef"; /* 6 bytes -> 8 chars + NUL = 9 */
	assert_int_equal(gh_b64url_encode(in, 6, out, 8), 0);
	char ok[9];
	assert_int_equal(gh_b64url_encode(in, 6, ok, sizeof ok), 8);
	assert_string_equal(ok, "YWJjZGVm");
	CHECKED("base64url encode returns 0 when the output does not fit (with its NUL)");
}

static void test_b64url_decode_rejects(void **state)
{
	(void)state;
	uint8_t out[64];
	size_t ol = 0;
	/* padding is never accepted */
	assert_int_equal(gh_b64url_decode("Zg==", 4, out, sizeof out, &ol), GH_EINVAL);
	assert_int_equal(gh_b64url_decode("Zm8=", 4, out, sizeof out, &ol), GH_EINVAL);
	assert_int_equal(gh_b64url_decode("Zg=", 3, out, sizeof out, &ol), GH_EINVAL);
	assert_int_equal(gh_b64url_decode("=", 1, out, sizeof out, &ol), GH_EINVAL);
	/* standard-alphabet and other characters */
	assert_int_equal(gh_b64url_decode("+_8", 3, out, sizeof out, &ol), GH_EINVAL);
	assert_int_equal(gh_b64url_decode("-/8", 3, out, sizeof out, &ol), GH_EINVAL);
	assert_int_equal(gh_b64url_decode("Zm 9v", 5, out, sizeof out, &ol), GH_EINVAL);
	assert_int_equal(gh_b64url_decode("Zm9v\n", 5, out, sizeof out, &ol), GH_EINVAL);
	assert_int_equal(gh_b64url_decode("Zm.v", 4, out, sizeof out, &ol), GH_EINVAL);
	assert_int_equal(gh_b64url_decode("Zm\0v", 4, out, sizeof out, &ol), GH_EINVAL);
	assert_int_equal(gh_b64url_decode("Zm\xc3\xa9", 4, out, sizeof out, &ol), GH_EINVAL);
	/* impossible length (n % 4 == 1) */
	assert_int_equal(gh_b64url_decode("Z", 1, out, sizeof out, &ol), GH_EINVAL);
	assert_int_equal(gh_b64url_decode("Zm9vY", 5, out, sizeof out, &ol), GH_EINVAL);
	/* non-canonical trailing bits: "Zg" is 'f'; "Zh" has the same byte with a stray bit */
	assert_int_equal(gh_b64url_decode("Zg", 2, out, sizeof out, &ol), 0);
	assert_int_equal(gh_b64url_decode("Zh", 2, out, sizeof out, &ol), GH_EINVAL);
	assert_int_equal(gh_b64url_decode("Zv", 2, out, sizeof out, &ol), GH_EINVAL);
	assert_int_equal(gh_b64url_decode("Zm8", 3, out, sizeof out, &ol), 0);
	assert_int_equal(gh_b64url_decode("Zm9", 3, out, sizeof out, &ol), GH_EINVAL);
	assert_int_equal(gh_b64url_decode("Zm_", 3, out, sizeof out, &ol), GH_EINVAL);
	/* output capacity */
	assert_int_equal(gh_b64url_decode("Zm9vYmFy", 8, out, 5, &ol), GH_ETOOBIG);
	assert_int_equal(gh_b64url_decode("Zm9vYmFy", 8, out, 6, &ol), 0);
	assert_int_equal(ol, 6);
	assert_memory_equal(out, "foobar", 6);
	CHECKED("base64url decode refuses '=', '+', '/', spaces, NUL, non-ASCII, n%%4==1, "
		"non-canonical trailing bits and short output");
}

/* ---- hex ---- */

static void test_hex(void **state)
{
	(void)state;
	uint8_t in[32], back[32];
	char hex[65];
	for (int i = 0; i < 32; i++)
		in[i] = (uint8_t)(i * 37 + 5);
	gh_hex_encode(in, 32, hex);
	assert_int_equal(strlen(hex), 64);
	for (int i = 0; i < 64; i++)
		assert_true((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
	assert_int_equal(gh_hex_decode(hex, 64, back, 32), 0);
	assert_memory_equal(in, back, 32);

	const uint8_t k[] = {0x00, 0x01, 0xab, 0xff};
	gh_hex_encode(k, 4, hex);
	assert_string_equal(hex, "0001abff");
	gh_hex_encode(k, 0, hex);
	assert_string_equal(hex, "");
	assert_int_equal(gh_hex_decode("0001ABFF", 8, back, 4), 0); /* upper case accepted */
	assert_memory_equal(back, k, 4);
	assert_int_equal(gh_hex_decode("0001abf", 7, back, 4), GH_EINVAL);   /* odd length */
	assert_int_equal(gh_hex_decode("0001abff", 8, back, 3), GH_EINVAL);  /* length != 2*out */
	assert_int_equal(gh_hex_decode("0001abfg", 8, back, 4), GH_EINVAL);  /* not hex */
	assert_int_equal(gh_hex_decode("0x01abff", 8, back, 4), GH_EINVAL);
	assert_int_equal(gh_hex_decode(" 001abff", 8, back, 4), GH_EINVAL);
	CHECKED("hex encode is lower case, decode accepts both cases and refuses bad chars and lengths");
}

/* ---- parsers ---- */

static void test_parse_duration(void **state)
{
	(void)state;
	int64_t v = -1;
	assert_int_equal(gh_parse_duration("15m", &v), 0); assert_int_equal(v, 900);
	assert_int_equal(gh_parse_duration("2h", &v), 0); assert_int_equal(v, 7200);
	assert_int_equal(gh_parse_duration("30s", &v), 0); assert_int_equal(v, 30);
	assert_int_equal(gh_parse_duration("1d", &v), 0); assert_int_equal(v, 86400);
	assert_int_equal(gh_parse_duration("45", &v), 0); assert_int_equal(v, 45);
	assert_int_equal(gh_parse_duration("0", &v), 0); assert_int_equal(v, 0);
	assert_int_equal(gh_parse_duration("0s", &v), 0); assert_int_equal(v, 0);
	char big[40];
	snprintf(big, sizeof big, "%lldd", (long long)(INT64_MAX / 86400));
	assert_int_equal(gh_parse_duration(big, &v), 0);
	assert_int_equal(v, (INT64_MAX / 86400) * 86400);

	v = 77;
	const char *bad[] = {"", "m", "s", "-5s", "-5", "1.5h", "15 m", "15M", "15min", "1w", "h15", "15mm",
			     "abc", "9223372036854775807d", "9223372036854775808", "0x10", "1e3"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (gh_parse_duration(bad[i], &v) != GH_EINVAL)
			fail_msg("gh_parse_duration(\"%s\") accepted", bad[i]);
	}
	snprintf(big, sizeof big, "%lldd", (long long)(INT64_MAX / 86400) + 1);
	assert_int_equal(gh_parse_duration(big, &v), GH_EINVAL); /* would overflow */
	assert_int_equal(gh_parse_duration(NULL, &v), GH_EINVAL);
	assert_int_equal(v, 77); /* untouched on failure */
	CHECKED("gh_parse_duration: s/m/h/d and plain seconds; refuses signs, spaces, other units, overflow");
}

static void test_parse_int(void **state)
{
	(void)state;
	int64_t v = 0;
	assert_int_equal(gh_parse_int("0", 0, 10, &v), 0); assert_int_equal(v, 0);
	assert_int_equal(gh_parse_int("10", 0, 10, &v), 0); assert_int_equal(v, 10);
	assert_int_equal(gh_parse_int("-3", -5, 5, &v), 0); assert_int_equal(v, -3);
	assert_int_equal(gh_parse_int("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(gh_parse_int("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
	assert_true(v == INT64_MIN);
	v = 42;
	assert_int_equal(gh_parse_int("11", 0, 10, &v), GH_EINVAL);
	assert_int_equal(gh_parse_int("-1", 0, 10, &v), GH_EINVAL);
	assert_int_equal(gh_parse_int("9223372036854775808", INT64_MIN, INT64_MAX, &v), GH_EINVAL);
	assert_int_equal(gh_parse_int("-9223372036854775809", INT64_MIN, INT64_MAX, &v), GH_EINVAL);
	assert_int_equal(gh_parse_int("", 0, 10, &v), GH_EINVAL);
	assert_int_equal(gh_parse_int(NULL, 0, 10, &v), GH_EINVAL);
	assert_int_equal(gh_parse_int("5x", 0, 10, &v), GH_EINVAL);
	assert_int_equal(gh_parse_int("5 ", 0, 10, &v), GH_EINVAL);
	assert_int_equal(gh_parse_int("0x5", 0, 10, &v), GH_EINVAL);
	assert_int_equal(gh_parse_int("5.0", 0, 10, &v), GH_EINVAL);
	assert_int_equal(v, 42);
	CHECKED("gh_parse_int: bounds inclusive, INT64 extremes, overflow and trailing junk refused");
}

/* The contract says the whole string must be the number: leading blanks and '+' are not digits. */
static void test_parse_int_whole_string(void **state)
{
	(void)state;
	int64_t v = 42;
	assert_int_equal(gh_parse_int(" 5", 0, 10, &v), GH_EINVAL);
	assert_int_equal(gh_parse_int("\n5", 0, 10, &v), GH_EINVAL);
	assert_int_equal(gh_parse_int("+5", 0, 10, &v), GH_EINVAL);
	assert_int_equal(gh_parse_duration(" 15m", &v), GH_EINVAL);
	assert_int_equal(gh_parse_size(" 1M", &v), GH_EINVAL);
	assert_int_equal(v, 42);
	CHECKED("gh_parse_int/duration/size refuse leading whitespace and '+'");
}

static void test_parse_size(void **state)
{
	(void)state;
	int64_t v = 0;
	assert_int_equal(gh_parse_size("1M", &v), 0); assert_int_equal(v, 1048576);
	assert_int_equal(gh_parse_size("512K", &v), 0); assert_int_equal(v, 524288);
	assert_int_equal(gh_parse_size("1048576", &v), 0); assert_int_equal(v, 1048576);
	assert_int_equal(gh_parse_size("2G", &v), 0); assert_int_equal(v, 2147483648LL);
	assert_int_equal(gh_parse_size("0", &v), 0); assert_int_equal(v, 0);
	assert_int_equal(gh_parse_size("0K", &v), 0); assert_int_equal(v, 0);
	v = 9;
	const char *bad[] = {"", "K", "M", "1T", "1k", "1m", "1KB", "1.5M", "-1M", "-1", "M1", "1 M", "abc",
			     "9223372036854775807K", "99999999999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (gh_parse_size(bad[i], &v) != GH_EINVAL)
			fail_msg("gh_parse_size(\"%s\") accepted", bad[i]);
	assert_int_equal(gh_parse_size(NULL, &v), GH_EINVAL);
	assert_int_equal(v, 9);
	CHECKED("gh_parse_size: K/M/G multiply by 1024^n; lower case, other units, signs and overflow refused");
}

/* ---- buffers ---- */

static void test_buf_basics(void **state)
{
	(void)state;
	struct gh_buf b;
	gh_buf_init(&b, 1 << 20);
	assert_null(b.data);
	assert_int_equal(gh_buf_puts(&b, "hello"), 0);
	assert_int_equal(gh_buf_append(&b, ", ", 2), 0);
	assert_int_equal(gh_buf_printf(&b, "%s %d", "world", 42), 0);
	assert_int_equal(b.len, strlen("hello, world 42"));
	assert_string_equal(b.data, "hello, world 42");
	assert_int_equal(gh_buf_append(&b, NULL, 0), 0);
	assert_int_equal(b.len, 15);
	/* printf longer than the small stack buffer */
	char longs[1000];
	memset(longs, 'x', sizeof longs - 1);
	longs[sizeof longs - 1] = '\0';
	assert_int_equal(gh_buf_printf(&b, "[%s]", longs), 0);
	assert_int_equal(b.len, 15 + 1001);
	assert_int_equal(b.data[b.len], '\0');
	assert_int_equal(b.data[15], '[');
	assert_int_equal(b.data[b.len - 1], ']');
	gh_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	assert_int_equal(gh_buf_puts(&b, "again"), 0);
	assert_string_equal(b.data, "again");
	gh_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	CHECKED("gh_buf append/puts/printf (short and long), reset and free keep NUL termination");
}

static void test_buf_ceiling(void **state)
{
	(void)state;
	struct gh_buf b;
	gh_buf_init(&b, 10);
	assert_int_equal(gh_buf_append(&b, "12345678", 8), 0);
	assert_int_equal(gh_buf_append(&b, "abc", 3), GH_ETOOBIG);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.data, "12345678");
	assert_int_equal(gh_buf_puts(&b, "xyz"), GH_ETOOBIG);
	assert_int_equal(gh_buf_printf(&b, "%d", 123), GH_ETOOBIG);
	assert_int_equal(b.len, 8);
	assert_string_equal(b.data, "12345678");
	assert_int_equal(gh_buf_append(&b, "90", 2), 0); /* exactly max */
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "1234567890");
	assert_int_equal(gh_buf_append(&b, "!", 1), GH_ETOOBIG);
	assert_int_equal(gh_buf_append(&b, "", 0), 0);
	/* a huge n must not overflow the check */
	assert_int_equal(gh_buf_append(&b, "x", SIZE_MAX), GH_ETOOBIG);
	assert_int_equal(gh_buf_append(&b, "x", SIZE_MAX - 5), GH_ETOOBIG);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "1234567890");
	gh_buf_free(&b);

	/* long printf past the ceiling */
	gh_buf_init(&b, 300);
	assert_int_equal(gh_buf_puts(&b, "keep"), 0);
	char longs[400];
	memset(longs, 'y', sizeof longs - 1);
	longs[sizeof longs - 1] = '\0';
	assert_int_equal(gh_buf_printf(&b, "%s", longs), GH_ETOOBIG);
	assert_int_equal(b.len, 4);
	assert_string_equal(b.data, "keep");
	gh_buf_free(&b);

	/* JSON string past the ceiling: fails and never exceeds max */
	gh_buf_init(&b, 12);
	assert_int_equal(gh_buf_json_string(&b, "\x01\x02\x03", 3), GH_ETOOBIG);
	assert_true(b.len <= 12);
	assert_int_equal(b.data ? strlen(b.data) : 0, b.len);
	gh_buf_free(&b);
	CHECKED("gh_buf ceiling: appends/printf past max fail with GH_ETOOBIG and leave the contents intact");
}

/* Parses the output of gh_buf_json_string with jansson and compares it to the input bytes. */
static void json_roundtrip(const char *z, size_t n)
{
	struct gh_buf b;
	gh_buf_init(&b, 1 << 16);
	assert_int_equal(gh_buf_json_string(&b, z, n), 0);
	assert_int_equal(b.data[0], '"');
	assert_int_equal(b.data[b.len - 1], '"');
	for (size_t i = 0; i < b.len; i++)
		assert_true((unsigned char)b.data[i] >= 0x20); /* no raw control characters */
	json_error_t je;
	json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!v)
		fail_msg("jansson rejects %s: %s", b.data, je.text);
	assert_true(json_is_string(v));
	assert_int_equal(json_string_length(v), n);
	assert_memory_equal(json_string_value(v), z, n);
	json_decref(v);
	gh_buf_free(&b);
}

static void test_buf_json_string(void **state)
{
	(void)state;
	struct gh_buf b;
	gh_buf_init(&b, 4096);
	assert_int_equal(gh_buf_json_string(&b, "a\"b\\c\nd\re\tf\x01g\x1f", 14), 0);
	assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001f\"");
	gh_buf_reset(&b);
	assert_int_equal(gh_buf_json_string(&b, "", 0), 0);
	assert_string_equal(b.data, "\"\"");
	gh_buf_reset(&b);
	assert_int_equal(gh_buf_json_string(&b, "x\0y", 3), 0);
	assert_string_equal(b.data, "\"x\\u0000y\"");
	gh_buf_free(&b);

	/* every ASCII byte, alone and all together */
	char all[128];
	for (int i = 0; i < 128; i++) {
		char c = (char)i;
		json_roundtrip(&c, 1);
		all[i] = c;
	}
	json_roundtrip(all, sizeof all);
	json_roundtrip("\"\\\"\\", 4);
	json_roundtrip("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14); /* UTF-8 passes through */
	json_roundtrip("</script>\x7f", 10);
	CHECKED("gh_buf_json_string escapes quotes, backslash and all control chars; jansson reads back the bytes");
}

/* ---- map ---- */

static int freed;
static void count_free(void *v)
{
	freed++;
	free(v);
}

static int sum_each(const char *key, size_t keylen, void *value, void *arg)
{
	(void)key;
	(void)keylen;
	*(long *)arg += *(int *)value;
	return 0;
}

static int stop_each(const char *key, size_t keylen, void *value, void *arg)
{
	(void)key;
	(void)keylen;
	(void)value;
	return ++*(int *)arg >= 3;
}

static int *intv(int x)
{
	int *p = malloc(sizeof *p);
	assert_non_null(p);
	*p = x;
	return p;
}

static void test_map_basic(void **state)
{
	(void)state;
	freed = 0;
	struct gh_map *m = gh_map_new(count_free);
	assert_non_null(m);
	assert_int_equal(gh_map_count(m), 0);
	assert_null(gh_map_get(m, "a", 1));
	assert_int_equal(gh_map_put(m, "a", 1, intv(1)), 0);
	assert_int_equal(gh_map_put(m, "ab", 2, intv(2)), 0);
	assert_int_equal(gh_map_put(m, "a\0b", 3, intv(3)), 0); /* keys are by length */
	assert_int_equal(gh_map_put(m, "", 0, intv(4)), 0);
	assert_int_equal(gh_map_count(m), 4);
	assert_int_equal(*(int *)gh_map_get(m, "a", 1), 1);
	assert_int_equal(*(int *)gh_map_get(m, "abc", 2), 2); /* keylen bounds the key */
	assert_int_equal(*(int *)gh_map_get(m, "a\0b", 3), 3);
	assert_int_equal(*(int *)gh_map_get(m, "", 0), 4);
	assert_null(gh_map_get(m, "b", 1));
	assert_null(gh_map_get(m, "A", 1));

	/* replace frees the old value, not the new one */
	assert_int_equal(gh_map_put(m, "a", 1, intv(10)), 0);
	assert_int_equal(freed, 1);
	assert_int_equal(gh_map_count(m), 4);
	assert_int_equal(*(int *)gh_map_get(m, "a", 1), 10);
	/* putting the same pointer again frees nothing */
	assert_int_equal(gh_map_put(m, "a", 1, gh_map_get(m, "a", 1)), 0);
	assert_int_equal(freed, 1);

	long sum = 0;
	gh_map_each(m, sum_each, &sum);
	assert_int_equal(sum, 10 + 2 + 3 + 4);
	int visits = 0;
	gh_map_each(m, stop_each, &visits);
	assert_int_equal(visits, 3);

	assert_int_equal(gh_map_del(m, "ab", 2), 0);
	assert_int_equal(freed, 2);
	assert_int_equal(gh_map_del(m, "ab", 2), GH_ENOTFOUND);
	assert_int_equal(gh_map_del(m, "zz", 2), GH_ENOTFOUND);
	assert_null(gh_map_get(m, "ab", 2));
	assert_int_equal(gh_map_count(m), 3);

	gh_map_clear(m);
	assert_int_equal(freed, 5);
	assert_int_equal(gh_map_count(m), 0);
	assert_null(gh_map_get(m, "a", 1));
	assert_int_equal(gh_map_put(m, "a", 1, intv(7)), 0); /* usable after clear */
	assert_int_equal(*(int *)gh_map_get(m, "a", 1), 7);
	gh_map_free(m);
	assert_int_equal(freed, 6);
	gh_map_free(NULL);
	CHECKED("gh_map put/get/replace/del/each/clear/free with binary keys; free_value called exactly once");
}

static void test_map_grow(void **state)
{
	(void)state;
	freed = 0;
	struct gh_map *m = gh_map_new(count_free);
	assert_non_null(m);
	char key[32];
	for (int i = 0; i < 10000; i++) {
		int n = snprintf(key, sizeof key, "key-%d", i);
		assert_int_equal(gh_map_put(m, key, (size_t)n, intv(i)), 0);
	}
	assert_int_equal(gh_map_count(m), 10000);
	for (int i = 0; i < 10000; i++) {
		int n = snprintf(key, sizeof key, "key-%d", i);
		int *v = gh_map_get(m, key, (size_t)n);
		assert_non_null(v);
		assert_int_equal(*v, i);
	}
	long sum = 0;
	gh_map_each(m, sum_each, &sum);
	assert_int_equal(sum, 10000L * 9999 / 2);
	for (int i = 0; i < 10000; i += 2) {
		int n = snprintf(key, sizeof key, "key-%d", i);
		assert_int_equal(gh_map_del(m, key, (size_t)n), 0);
	}
	assert_int_equal(gh_map_count(m), 5000);
	assert_int_equal(freed, 5000);
	for (int i = 0; i < 10000; i++) {
		int n = snprintf(key, sizeof key, "key-%d", i);
		int *v = gh_map_get(m, key, (size_t)n);
		if (i % 2)
			assert_true(v && *v == i);
		else
			assert_null(v);
	}
	gh_map_clear(m);
	assert_int_equal(freed, 10000);
	assert_int_equal(gh_map_count(m), 0);
	gh_map_free(m);

	/* a map without a free function leaves values alone */
	int x = 5;
	m = gh_map_new(NULL);
	assert_int_equal(gh_map_put(m, "x", 1, &x), 0);
	assert_int_equal(gh_map_put(m, "x", 1, &x), 0);
	assert_ptr_equal(gh_map_get(m, "x", 1), &x);
	gh_map_free(m);
	CHECKED("gh_map grows to 10000 entries and keeps every entry through growth and deletes");
}

/* ---- time ---- */

static void test_time_rfc3339(void **state)
{
	(void)state;
	char out[32];
	gh_time_rfc3339(0, out, sizeof out);
	assert_string_equal(out, "1970-01-01T00:00:00.000Z");
	gh_time_rfc3339(1700000000123LL, out, sizeof out);
	assert_string_equal(out, "2023-11-14T22:13:20.123Z");
	gh_time_rfc3339(1709208000999LL, out, sizeof out); /* leap day */
	assert_string_equal(out, "2024-02-29T12:00:00.999Z");
	gh_time_rfc3339(253402300799999LL, out, sizeof out);
	assert_string_equal(out, "9999-12-31T23:59:59.999Z");
	assert_int_equal(strlen(out), 24);
	/* current time has the fixed shape */
	gh_time_rfc3339(gh_now_ms(), out, sizeof out);
	assert_int_equal(strlen(out), 24);
	assert_int_equal(out[4], '-'); assert_int_equal(out[7], '-'); assert_int_equal(out[10], 'T');
	assert_int_equal(out[13], ':'); assert_int_equal(out[16], ':'); assert_int_equal(out[19], '.');
	assert_int_equal(out[23], 'Z');
	/* a short output is truncated, never overrun */
	char small[11];
	memset(small, 'z', sizeof small);
	gh_time_rfc3339(0, small, sizeof small);
	assert_string_equal(small, "1970-01-01");
	CHECKED("gh_time_rfc3339 formats UTC with milliseconds, leap day, year 9999, truncates safely");
}

/* Times before 1970 are still valid RFC 3339 (milliseconds never negative). */
static void test_time_rfc3339_negative(void **state)
{
	(void)state;
	char out[32];
	gh_time_rfc3339(-1, out, sizeof out);
	assert_string_equal(out, "1969-12-31T23:59:59.999Z");
	gh_time_rfc3339(-1000, out, sizeof out);
	assert_string_equal(out, "1969-12-31T23:59:59.000Z");
	CHECKED("gh_time_rfc3339 of negative milliseconds");
}

static void test_misc(void **state)
{
	(void)state;
	/* gh_str */
	struct gh_str s = {"Hello", 5};
	assert_true(gh_str_eq(s, "Hello"));
	assert_false(gh_str_eq(s, "Hell"));
	assert_false(gh_str_eq(s, "Hello!"));
	assert_false(gh_str_eq(s, "hello"));
	assert_true(gh_str_caseeq(s, "hELLO"));
	assert_false(gh_str_caseeq(s, "hELL"));
	/* strdup */
	char *d = gh_strndup("abcdef", 3);
	assert_string_equal(d, "abc");
	free(d);
	assert_null(gh_strdup(NULL));
	d = gh_strdup("");
	assert_string_equal(d, "");
	free(d);
	/* error */
	struct gh_error err;
	gh_error_clear(&err);
	assert_int_equal(gh_error_set(&err, GH_EIO, "x=%d", 5), GH_EIO);
	assert_int_equal(err.code, GH_EIO);
	assert_string_equal(err.message, "x=5");
	assert_int_equal(gh_error_set(NULL, GH_EINVAL, "ignored"), GH_EINVAL);
	gh_error_clear(&err);
	assert_int_equal(err.code, 0);
	assert_string_equal(err.message, "");
	/* random ids */
	char id1[64], id2[64];
	gh_random_id("tok", 16, id1, sizeof id1);
	gh_random_id("tok", 16, id2, sizeof id2);
	assert_int_equal(strlen(id1), 4 + 32);
	assert_memory_equal(id1, "tok_", 4);
	assert_string_not_equal(id1, id2);
	/* path join */
	char p[8];
	assert_int_equal(gh_path_join(p, sizeof p, "a", "bc"), 0);
	assert_string_equal(p, "a/bc");
	assert_int_equal(gh_path_join(p, sizeof p, "abcd", "efg"), GH_ETOOBIG);
	CHECKED("gh_str compare, strdup, gh_error, random ids and path join");
}

/* ---- logging ---- */

/* Runs fn with stderr sent to a temporary file; returns what was written (malloc'd). */
static char *capture_stderr(void (*fn)(void))
{
	char path[] = "/tmp/gh-test-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	off_t n = lseek(fd, 0, SEEK_END);
	char *out = calloc(1, (size_t)n + 1);
	assert_non_null(out);
	assert_int_equal(pread(fd, out, (size_t)n, 0), n);
	close(fd);
	return out;
}

static void log_fields(void)
{
	gh_log_set_level(GH_LOG_INFO);
	gh_log_kv(GH_LOG_INFO, "hello \"world\"", "resource", "crm", "environment", NULL, "error", "a\nb\x01\\", NULL);
	gh_log_kv(GH_LOG_DEBUG, "not shown", "k", "v", NULL);
	gh_log(GH_LOG_WARN, "count %d", 3);
}

static void test_log_json_lines(void **state)
{
	(void)state;
	char *out = capture_stderr(log_fields);
	char *nl = strchr(out, '\n');
	assert_non_null(nl);
	json_error_t je;
	json_t *a = json_loadb(out, (size_t)(nl - out), JSON_REJECT_DUPLICATES, &je);
	json_t *b = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, &je);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(a, "level")), "info");
	assert_string_equal(json_string_value(json_object_get(a, "msg")), "hello \"world\"");
	assert_string_equal(json_string_value(json_object_get(a, "resource")), "crm");
	assert_true(json_is_null(json_object_get(a, "environment")));
	assert_string_equal(json_string_value(json_object_get(a, "error")), "a\nb\x01\\");
	assert_int_equal(strlen(json_string_value(json_object_get(a, "time"))), 24);
	assert_string_equal(json_string_value(json_object_get(b, "level")), "warn");
	assert_string_equal(json_string_value(json_object_get(b, "msg")), "count 3");
	/* two lines exactly: the debug one was filtered */
	int lines = 0;
	for (char *p = out; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 2);
	json_decref(a);
	json_decref(b);
	free(out);
	CHECKED("log lines are JSON objects with time, level, msg and fields (escaped, null); levels filter");
}

static void log_long(void)
{
	/* 3000 two-byte characters: 6000 bytes, cut to at most 4096 without splitting one */
	static char big[6001], msg[2401];
	for (int i = 0; i < 3000; i++)
		memcpy(big + 2 * i, "\xc3\xa9", 2);
	for (int i = 0; i < 1200; i++)
		memcpy(msg + 2 * i, "\xc3\xa9", 2);
	gh_log_kv(GH_LOG_ERROR, "long", "value", big, NULL);
	gh_log(GH_LOG_ERROR, "%s", msg);
}

static void test_log_cuts_long_values(void **state)
{
	(void)state;
	char *out = capture_stderr(log_long);
	char *nl = strchr(out, '\n');
	assert_non_null(nl);
	json_error_t je;
	json_t *a = json_loadb(out, (size_t)(nl - out), 0, &je); /* jansson refuses invalid UTF-8 */
	json_t *b = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, &je);
	assert_non_null(a);
	assert_non_null(b);
	size_t n = strlen(json_string_value(json_object_get(a, "value")));
	assert_true(n <= 4096 && n >= 4094 && n % 2 == 0);
	assert_true(json_is_true(json_object_get(a, "truncated")));
	n = strlen(json_string_value(json_object_get(b, "msg")));
	assert_true(n < 1024 && n >= 1021 && n % 2 == 0);
	json_decref(a);
	json_decref(b);
	free(out);
	CHECKED("long values and messages are cut at a UTF-8 boundary and marked truncated");
}

static void test_log_sensitive(void **state)
{
	(void)state;
	gh_log_set_sensitive(false);
	gh_log_set_level(GH_LOG_DEBUG);
	assert_false(gh_log_sensitive());
	gh_log_set_sensitive(true);
	assert_true(gh_log_sensitive());
	gh_log_set_level(GH_LOG_INFO);
	assert_false(gh_log_sensitive()); /* asked for, but not at debug: still off */
	assert_false(gh_log_enabled(GH_LOG_DEBUG));
	assert_true(gh_log_enabled(GH_LOG_INFO));
	gh_log_set_sensitive(false);
	CHECKED("sensitive logging needs both debug level and the explicit switch");
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(test_b64url_known_vectors),
	cmocka_unit_test(test_b64url_roundtrip_all_lengths),
	cmocka_unit_test(test_b64url_encode_small_output),
	cmocka_unit_test(test_b64url_decode_rejects),
	cmocka_unit_test(test_hex),
	cmocka_unit_test(test_parse_duration),
	cmocka_unit_test(test_parse_int),
	cmocka_unit_test(test_parse_int_whole_string),
	cmocka_unit_test(test_parse_size),
	cmocka_unit_test(test_buf_basics),
	cmocka_unit_test(test_buf_ceiling),
	cmocka_unit_test(test_buf_json_string),
	cmocka_unit_test(test_map_basic),
	cmocka_unit_test(test_map_grow),
	cmocka_unit_test(test_time_rfc3339),
	cmocka_unit_test(test_time_rfc3339_negative),
	cmocka_unit_test(test_misc),
	cmocka_unit_test(test_log_json_lines),
	cmocka_unit_test(test_log_cuts_long_values),
	cmocka_unit_test(test_log_sensitive),
};

GH_UNIT_MAIN("test_core", tests)
