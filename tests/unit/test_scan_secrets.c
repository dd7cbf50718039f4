/* Unit tests for the secrets pass of gatehouse scan (src/scan/secrets.c). Every fixture is
 * assembled at run time from short pieces and pseudo-random characters, so this file never
 * holds a real-looking secret. A fixture spec is pieces separated by '|': "~A:n" is n
 * pseudo-random characters of alphabet A, anything else is literal text. */
#include "unit.h"

#include <string.h>
#include <time.h>

#include "scan/scan.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))

static struct gh_secrets *S;
static struct gh_secrets_scratch *SCR;

/* xorshift32: the same fixtures on every run */
static uint32_t next_rand(uint32_t *st)
{
	uint32_t x = *st;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *st = x;
}

static const char *alphabet(char a)
{
	switch (a) {
	case 'A': return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	case 'U': return "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	case 'h': return "0123456789abcdef";
	case 'D': return "0123456789";
	case 'B': return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	case 'u': return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
	case 'G': return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#%&*+-./=?@^_~";
	default: return NULL;
	}
}

/* Appends the expansion of spec to out (NUL-terminated, at most cap bytes); returns its length. */
static size_t build(const char *spec, char *out, size_t cap, uint32_t *st)
{
	size_t n = strlen(out);
	const char *p = spec;
	while (p && *p) {
		const char *bar = strchr(p, '|');
		size_t plen = bar ? (size_t)(bar - p) : strlen(p);
		if (plen > 3 && p[0] == '~' && p[2] == ':' && alphabet(p[1])) {
			const char *al = alphabet(p[1]);
			size_t alen = strlen(al);
			long k = strtol(p + 3, NULL, 10);
			for (long i = 0; i < k && n + 1 < cap; i++)
				out[n++] = al[next_rand(st) % alen];
		} else {
			for (size_t i = 0; i < plen && n + 1 < cap; i++)
				out[n++] = p[i];
		}
		out[n] = 0;
		p = bar ? bar + 1 : NULL;
	}
	return n;
}

struct tcase {
	const char *rule;
	const char *before, *value, *after;
};

/* True examples: value is the secret the rule must report, exactly. */
static const struct tcase good[] = {
	{"aws-access-key-id", "const awsId = \"", "AK|IA|~U:16", "\";\n"},
	{"aws-access-key-id", "[default]\naws_access_key_id = ", "AS|IA|~U:16", "\n"},
	{"aws-secret-access-key", "# creds\nAWS_SECRET_ACCESS_KEY=", "~B:40", "\n"},
	{"aws-secret-access-key", "  \"awsSecretKey\": \"", "~B:40", "\",\n"},
	{"github-pat-classic", "git clone https://x:", "gh|p_|~A:36", "@github.com/o/r\n"},
	{"github-oauth-token", "GITHUB_OAUTH=", "gh|o_|~A:36", "\n"},
	{"github-app-user-token", "let t = '", "gh|u_|~A:36", "'\n"},
	{"github-app-installation-token", "headers: { Authorization: 'Bearer ", "gh|s_|~A:36", "' }\n"},
	{"github-refresh-token", "refresh = \"", "gh|r_|~A:36", "\"\n"},
	{"github-fine-grained-pat", "line one\nline two\n  GH=", "github|_pat_|~A:22|_|~A:59", "\n"},
	{"gitlab-pat", "CI_TOKEN: ", "gl|pat-|~u:20", "\n"},
	{"gitlab-pipeline-trigger-token", "curl -F token=", "gl|ptt-|~h:40", " https://gitlab.example/api\n"},
	{"gitlab-runner-token", "runner: ", "gl|rt-|~u:24", "\n"},
	{"gitlab-deploy-token", "deploy ", "gl|dt-|~u:20", "\n"},
	{"gitlab-feed-token", "feed=", "gl|ft-|~u:20", "&x=1\n"},
	{"gitlab-oauth-app-secret", "oauth: ", "gl|oas-|~h:64", "\n"},
	{"gitlab-ci-job-token", "job ", "gl|cbt-|~u:30", "\n"},
	{"gitlab-agent-token", "agent ", "gl|agent-|~u:50", "\n"},
	{"gitlab-scim-token", "scim ", "gl|soat-|~u:20", "\n"},
	{"slack-bot-token", "SLACK_BOT=", "xo|xb-|~D:11|-|~D:12|-|~A:24", "\n"},
	{"slack-user-token", "SLACK_USER=", "xo|xp-|~D:11|-|~D:11|-|~D:12|-|~h:32", "\n"},
	{"slack-workspace-token", "SLACK_WS=", "xo|xa-|2-|~A:40", "\n"},
	{"slack-app-token", "SLACK_APP=", "xa|pp-|1-|~U:11|-|~D:13|-|~h:64", "\n"},
	{"slack-webhook-url", "url: https://hooks.slack.com/services/", "T|~U:10|/B|~U:10|/|~A:24", "\n"},
	{"stripe-live-secret-key", "stripe.api_key = '", "sk|_live_|~A:24", "'\n"},
	{"stripe-test-secret-key", "Stripe(\"", "sk|_test_|~A:99", "\")\n"},
	{"stripe-restricted-key", "STRIPE=", "rk|_live_|~A:24", "\n"},
	{"openai-api-key", "openai.api_key = \"", "sk|-|~A:48", "\"\n"},
	{"openai-project-key", "OPENAI_API_KEY=", "sk|-proj-|~u:120", "\n"},
	{"anthropic-api-key", "new Anthropic({ apiKey: \"", "sk|-ant-|api03-|~u:93", "\" })\n"},
	{"google-api-key", "<script src=\"https://maps.googleapis.com/maps/api/js?key=", "AI|za|~u:35", "\"></script>\n"},
	{"gcp-service-account-key", "{\n  \"type\": \"service_account\",\n  \"project_id\": \"demo\",\n  \"private_key\": \"",
	 "-----BEGIN |PRIVATE KEY-----\\nMII|~B:64|\\n|~B:64|\\n-----END |PRIVATE KEY-----\\n", "\",\n  \"client_email\": \"a@b.c\"\n}\n"},
	{"gcp-oauth-client-secret", "client: ", "GOC|SPX-|~u:28", "\n"},
	{"azure-storage-connection-string", "conn = \"DefaultEndpointsProtocol=https;AccountName=acct01;AccountKey=", "~B:86|==",
	 ";EndpointSuffix=core.windows.net\"\n"},
	{"azure-storage-account-key", "AccountName=acct01\nAccountKey=", "~B:86|==", "\n"},
	{"azure-service-bus-connection-string",
	 "Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=", "~B:43|=", "\n"},
	{"twilio-api-key", "twilio:\n  api_sid: ", "SK|~h:32", "\n"},
	{"twilio-auth-token", "TWILIO_ACCOUNT_SID=AC|~h:32|\nTWILIO_AUTH_TOKEN=", "~h:32", "\n"},
	{"sendgrid-api-key", "sg = '", "SG|.|~u:22|.|~u:43", "'\n"},
	{"npm-access-token", "//registry.npmjs.org/:_authToken=", "np|m_|~A:36", "\n"},
	{"pypi-api-token", "password = ", "py|pi-|AgEIcHlwaS5vcmc|~u:80", "\n"},
	{"shopify-access-token", "X-Shopify-Access-Token: ", "sh|pat_|~h:32", "\n"},
	{"jwt", "Authorization: Bearer ", "@JWT", "\n"},
	{"private-key", "-----BEGIN |RSA PRIVATE KEY-----\n", "MII|~B:61", "\n~B:64|\n-----END |RSA PRIVATE KEY-----\n"},
	{"private-key", "key = \"-----BEGIN |PRIVATE KEY-----\\n", "MII|~B:61", "\\n-----END |PRIVATE KEY-----\"\n"},
	{"openssh-private-key", "-----BEGIN |OPENSSH PRIVATE KEY-----\n", "b3BlbnNzaC1rZXktdjE|~B:50", "\n-----END |OPENSSH PRIVATE KEY-----\n"},
	{"pgp-private-key", "-----BEGIN |PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n", "~B:64", "\n=abcd\n-----END |PGP PRIVATE KEY BLOCK-----\n"},
	{"postgres-uri-password", "DATABASE_URL=postgres://app:", "~A:16", "@db.internal:5432/app\n"},
	{"postgres-uri-password", "dsn = 'postgresql://app:", "~A:12", "@10.0.0.5/app'\n"},
	{"mysql-uri-password", "url: mysql://root:", "~A:16", "@127.0.0.1:3306/shop\n"},
	{"mongodb-uri-password", "MONGO=mongodb+srv://svc:", "~A:20", "@cluster0.abcd.mongodb.net/db\n"},
	{"redis-uri-password", "REDIS_URL=redis://:", "~A:20", "@cache:6379/0\n"},
	{"amqp-uri-password", "broker = \"amqps://bus:", "~A:18", "@mq.internal/vhost\"\n"},
	{"jdbc-password", "url=jdbc:mysql://db:3306/app?user=app&password=", "~A:16", "\n"},
	{"generic-secret-assignment", "const apiKey = \"", "~A:28", "\";\n"},
	{"generic-secret-assignment", "client_secret = '", "~G:24", "'\n"},
	{"generic-secret-assignment", "db:\n  password: ", "~A:20", "\n"},
	{"generic-secret-assignment", "{\"access_token\": \"", "~h:40", "\"}\n"},
	{"generic-secret-assignment", "export PRIVATE_KEY=", "~B:44", "\n"},
	{"generic-secret-assignment", "settings.passwd := `", "~G:16", "`\n"},
};

/* False examples: none of these may produce any finding. rule names the rule it tries. */
static const struct tcase bad[] = {
	{"aws-access-key-id", "key = \"", "AK|IA|IOSFODNN7|EXAMPLE", "\"\n"},
	{"aws-access-key-id", "key = \"", "AK|IA|~U:15", "\"\n"},
	{"aws-access-key-id", "id ", "XAK|IA|~U:16", "\n"},
	{"aws-secret-access-key", "aws_secret_access_key = \"", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "\"\n"},
	{"aws-secret-access-key", "checksum = ", "~B:40", "\n"},
	{"github-pat-classic", "t = '", "gh|p_|~A:35", "'\n"},
	{"github-pat-classic", "t = '", "gh|p_|xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "'\n"},
	{"github-oauth-token", "w ", "xgh|o_|~A:36", "\n"},
	{"github-app-user-token", "t ", "gh|u_|~A:37", "\n"},
	{"github-app-installation-token", "t ", "gh|s_|~A:20", "\n"},
	{"github-refresh-token", "t ", "gh|r-|~A:36", "\n"},
	{"github-fine-grained-pat", "t ", "github|_pat_|~A:22", "\n"},
	{"gitlab-pat", "t ", "gl|pat-|~u:10", "\n"},
	{"gitlab-pipeline-trigger-token", "t ", "gl|ptt-|~h:20", "\n"},
	{"gitlab-runner-token", "t ", "gl|rt-|XXXXXXXXXXXXXXXXXXXXXXXX", "\n"},
	{"gitlab-deploy-token", "t ", "gl|dt-|short", "\n"},
	{"gitlab-feed-token", "t ", "gl|ft-|<your token>", "\n"},
	{"gitlab-oauth-app-secret", "t ", "gl|oas-|", "\n"},
	{"gitlab-ci-job-token", "t ", "gl|cbt-|$CI_JOB_TOKEN", "\n"},
	{"gitlab-agent-token", "t ", "gl|agent-|~u:8", "\n"},
	{"gitlab-scim-token", "t ", "gl|soat-|0000000000000000000000", "\n"},
	{"slack-bot-token", "t ", "xo|xb-|123-456-abc", "\n"},
	{"slack-user-token", "t ", "xo|xp-|~D:11|-|~D:11|-|~D:12|-|~h:20", "\n"},
	{"slack-workspace-token", "t ", "xo|xa-|2-|abc", "\n"},
	{"slack-app-token", "t ", "xa|pp-|1-|~U:11|-|~D:13|-|~h:30", "\n"},
	{"slack-webhook-url", "url: https://hooks.slack.com/services/", "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "\n"},
	{"stripe-live-secret-key", "k ", "sk|_live_|~A:10", "\n"},
	{"stripe-test-secret-key", "k ", "sk|_test_|000000000000000000000000", "\n"},
	{"stripe-restricted-key", "k ", "rk|_prod_|~A:24", "\n"},
	{"openai-api-key", "k ", "sk|-|~A:20", "\n"},
	{"openai-project-key", "k ", "sk|-proj-|~u:10", "\n"},
	{"anthropic-api-key", "k ", "sk|-ant-|api03-|~u:20", "\n"},
	{"google-api-key", "k ", "AI|za|~u:30", "\n"},
	{"gcp-service-account-key", "{\"type\": \"service_account\", \"project_id\": \"demo\", \"client_email\": \"a@b.c\"}", "", "\n"},
	{"gcp-oauth-client-secret", "k ", "GOC|SPX-|~u:10", "\n"},
	{"azure-storage-connection-string", "DefaultEndpointsProtocol=https;AccountName=acct01;AccountKey=", "<account-key>", "\n"},
	{"azure-storage-account-key", "AccountKey=", "~B:40|==", "\n"},
	{"azure-service-bus-connection-string", "Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=", "{{ key }}", "\n"},
	{"twilio-api-key", "id = ", "SK|~h:32", "\n"},
	{"twilio-auth-token", "twilio:\n  auth_token: ", "your_auth_token", "\n"},
	{"sendgrid-api-key", "k ", "SG|.|~u:10|.|~u:10", "\n"},
	{"npm-access-token", "k ", "np|m_|~A:20", "\n"},
	{"pypi-api-token", "k ", "py|pi-|AgEIcHlwaS5vcmc|~u:10", "\n"},
	{"shopify-access-token", "k ", "sh|pat_|~A:32", "\n"},
	{"jwt", "k ", "eyJ|~u:20|.|~u:30|.|~u:20", "\n"},
	{"jwt", "k ", "eyJ|hello", "\n"},
	{"private-key", "-----BEGIN |RSA PRIVATE KEY-----\n", "...", "\n-----END |RSA PRIVATE KEY-----\n"},
	{"private-key", "-----BEGIN |PUBLIC KEY-----\n", "MII|~B:61", "\n-----END |PUBLIC KEY-----\n"},
	{"openssh-private-key", "-----BEGIN |OPENSSH PRIVATE KEY-----\n", "<paste your key here>", "\n"},
	{"pgp-private-key", "-----BEGIN |PGP PUBLIC KEY BLOCK-----\n\n", "~B:64", "\n"},
	{"postgres-uri-password", "DATABASE_URL=postgres://user:", "password", "@localhost/db\n"},
	{"postgres-uri-password", "DATABASE_URL=postgres://app:", "${DB_PASSWORD}", "@db/app\n"},
	{"postgres-uri-password", "DATABASE_URL=postgres://", "localhost:5432", "/db\n"},
	{"mysql-uri-password", "url: mysql://root:", "<password>", "@127.0.0.1/shop\n"},
	{"mongodb-uri-password", "uri = 'mongodb://", "<user>:<password>", "@host/db'\n"},
	{"redis-uri-password", "REDIS_URL=redis://", "cache:6379", "/0\n"},
	{"amqp-uri-password", "BROKER=amqp://guest:", "****", "@mq/\n"},
	{"jdbc-password", "url=jdbc:postgresql://db/app?user=app&password=", "${DB_PASSWORD}", "\n"},
	{"generic-secret-assignment", "password = \"", "changeme", "\"\n"},
	{"generic-secret-assignment", "const token = ", "process.env.API_TOKEN", ";\n"},
	{"generic-secret-assignment", "api_key = ", "os.environ[\"API_KEY\"]", "\n"},
	{"generic-secret-assignment", "secret = ", "os.getenv(\"SECRET\")", "\n"},
	{"generic-secret-assignment", "password: \"", "{{ vault_db_password }}", "\"\n"},
	{"generic-secret-assignment", "api_key = \"", "<your-api-key>", "\"\n"},
	{"generic-secret-assignment", "password = \"", "", "\"\n"},
	{"generic-secret-assignment", "token = \"", "aaaaaaaaaaaaaaaaaaaa", "\"\n"},
	{"generic-secret-assignment", "  password: ", "string", ";\n"},
	{"generic-secret-assignment", "const token = ", "getToken(req)", ";\n"},
	{"generic-secret-assignment", "password = ", "config.db.password1", "\n"},
	{"generic-secret-assignment", "api_key = \"", "your_api_key_here", "\"\n"},
	{"generic-secret-assignment", "secret = \"", "dummy-value-1234", "\"\n"},
	{"generic-secret-assignment", "password = '", "test1234test", "'\n"},
	{"generic-secret-assignment", "token: '", "abcabcabcabc", "'\n"},
	{"generic-secret-assignment", "API_KEY=", "${API_KEY}", "\n"},
	{"generic-secret-assignment", "password = '", "0123456789abcdef", "'\n"},
};

static int setup(void **state)
{
	struct gh_error err = {0};
	if (gh_secrets_new(&S, &err) != 0) {
		fprintf(stderr, "gh_secrets_new: %s\n", err.message);
		return -1;
	}
	if (gh_secrets_scratch_new(S, &SCR) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	gh_secrets_scratch_free(SCR);
	gh_secrets_free(S);
	return 0;
}

/* A JWT assembled at run time: HS256 header, a small payload, a pseudo-random signature. */
static void make_jwt(char *out, size_t cap, uint32_t *st)
{
	static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	static const char pay[] = "{\"sub\":\"1234567890\",\"name\":\"Ada\",\"iat\":1516239022}";
	char b[256];
	size_t n = strlen(out);
	sodium_bin2base64(b, sizeof b, (const unsigned char *)hdr, strlen(hdr), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(out + n, cap - n, "%s.", b);
	n = strlen(out);
	sodium_bin2base64(b, sizeof b, (const unsigned char *)pay, strlen(pay), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(out + n, cap - n, "%s.", b);
	build("~u:43", out, cap, st);
}

/* Expands one case into text; vs and ve bound the value. */
static size_t expand(const struct tcase *c, char *text, size_t cap, uint32_t seed, size_t *vs, size_t *ve)
{
	uint32_t st = seed;
	text[0] = 0;
	*vs = build(c->before, text, cap, &st);
	if (strcmp(c->value, "@JWT") == 0)
		make_jwt(text, cap, &st);
	else
		build(c->value, text, cap, &st);
	*ve = strlen(text);
	return build(c->after, text, cap, &st);
}

static void pos_of(const char *t, size_t off, int *line, int *col)
{
	int l = 1;
	size_t ls = 0;
	for (size_t i = 0; i < off; i++)
		if (t[i] == '\n') {
			l++;
			ls = i + 1;
		}
	*line = l;
	*col = (int)(off - ls) + 1;
}

static bool contains(const char *hay, const char *needle, size_t nlen)
{
	if (!hay)
		return false;
	size_t hl = strlen(hay);
	for (size_t i = 0; i + nlen <= hl; i++)
		if (memcmp(hay + i, needle, nlen) == 0)
			return true;
	return false;
}

/* No field of any finding holds value (or a 6-byte piece of it beyond the shown prefix). */
static void assert_not_leaked(const struct gh_findings *fs, const char *value, size_t n)
{
	for (size_t i = 0; i < fs->n; i++) {
		const struct gh_finding *f = &fs->v[i];
		const char *fields[] = {f->path, f->message, f->snippet, f->fix};
		for (size_t j = 0; j < 4; j++) {
			if (contains(fields[j], value, n))
				fail_msg("%s: field %zu holds the whole secret", f->rule, j);
			for (size_t k = 4; n >= 6 && k + 6 <= n; k++)
				if (contains(fields[j], value + k, 6) && j != 0)
					fail_msg("%s: field %zu holds a piece of the secret", f->rule, j);
		}
	}
}

static void scan_text(const char *text, size_t len, struct gh_findings *fs)
{
	gh_findings_init(fs);
	assert_int_equal(gh_secrets_scan(S, SCR, "app/config.js", (const uint8_t *)text, len, fs), 0);
}

static bool rule_exists(const char *id)
{
	const struct gh_rule_info *r;
	size_t n = gh_secrets_rules(&r);
	for (size_t i = 0; i < n; i++)
		if (strcmp(r[i].id, id) == 0)
			return true;
	return false;
}

static void test_rules_metadata(void **state)
{
	const struct gh_rule_info *r;
	size_t n = gh_secrets_rules(&r);
	assert_true(n >= 40);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(r[i].id);
		assert_true(strlen(r[i].help) > 60);
		assert_true(strstr(r[i].help, "gatehouse secret set") != NULL);
		assert_true(strstr(r[i].help, "rotate") != NULL);
		assert_true(r[i].severity >= GH_SEV_LOW && r[i].severity <= GH_SEV_CRITICAL);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(r[i].id, r[j].id);
		bool has_good = false, has_bad = false;
		for (size_t k = 0; k < sizeof good / sizeof good[0]; k++)
			has_good |= strcmp(good[k].rule, r[i].id) == 0;
		for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
			has_bad |= strcmp(bad[k].rule, r[i].id) == 0;
		if (!has_good || !has_bad)
			fail_msg("rule %s lacks a %s example", r[i].id, has_good ? "false" : "true");
	}
	for (size_t k = 0; k < sizeof good / sizeof good[0]; k++)
		assert_true(rule_exists(good[k].rule));
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
		assert_true(rule_exists(bad[k].rule));
	CHECKED("%zu rules: unique ids, help says rotate and gatehouse secret set, each has true and false examples", n);
}

static void test_true_examples(void **state)
{
	char text[4096], value[2048];
	size_t bad_cases = 0;
	for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
		const struct tcase *c = &good[k];
		size_t vs, ve;
		size_t len = expand(c, text, sizeof text, 0x9e3779b9u + (uint32_t)k * 7919u, &vs, &ve);
		memcpy(value, text + vs, ve - vs);
		value[ve - vs] = 0;
		struct gh_findings fs;
		scan_text(text, len, &fs);
		if (fs.n != 1) {
			for (size_t i = 0; i < fs.n; i++)
				fprintf(stderr, "    got %s at %d:%d\n", fs.v[i].rule, fs.v[i].line, fs.v[i].col);
			fprintf(stderr, "    case %zu (%s): %zu findings, want 1\n", k, c->rule, fs.n);
			gh_findings_free(&fs);
			bad_cases++;
			continue;
		}
		const struct gh_finding *f = &fs.v[0];
		int line, col, eline, ecol;
		pos_of(text, vs, &line, &col);
		pos_of(text, ve, &eline, &ecol);
		char want[16];
		snprintf(want, sizeof want, "%.4s\xe2\x80\xa6", value);
		bool ok = strcmp(f->rule, c->rule) == 0 && f->line == line && f->col == col && f->end_line == eline &&
			  f->end_col == ecol && strcmp(f->snippet, want) == 0 && strcmp(f->path, "app/config.js") == 0 &&
			  f->message && f->fix;
		if (!ok) {
			fprintf(stderr, "    case %zu: got %s %d:%d-%d:%d '%s', want %s %d:%d-%d:%d '%s'\n", k, f->rule, f->line,
				f->col, f->end_line, f->end_col, f->snippet, c->rule, line, col, eline, ecol, want);
			gh_findings_free(&fs);
			bad_cases++;
			continue;
		}
		assert_not_leaked(&fs, value, strlen(value));
		gh_findings_free(&fs);
	}
	if (bad_cases)
		fail_msg("%zu true examples were not reported as expected", bad_cases);
	CHECKED("%zu true examples: one finding each, right rule, exact line:col and end, snippet = 4 chars + …, value in no field",
		sizeof good / sizeof good[0]);
}

static void test_false_examples(void **state)
{
	char text[4096];
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		size_t vs, ve;
		size_t len = expand(&bad[k], text, sizeof text, 0x12345u + (uint32_t)k * 104729u, &vs, &ve);
		struct gh_findings fs;
		scan_text(text, len, &fs);
		if (fs.n) {
			fprintf(stderr, "    false case %zu (%s): got %s at %d:%d '%s'\n", k, bad[k].rule, fs.v[0].rule,
				fs.v[0].line, fs.v[0].col, fs.v[0].snippet);
			gh_findings_free(&fs);
			fail_msg("false example %zu (%s) was reported", k, bad[k].rule);
		}
		gh_findings_free(&fs);
	}
	CHECKED("%zu false examples (look-alikes, placeholders, wrong length or alphabet, env look-ups, undecodable JWT): no finding",
		sizeof bad / sizeof bad[0]);
}

/* Every true example in one buffer, separated by filler: each found once, nothing else. */
static void test_many_in_one_buffer(void **state)
{
	size_t ng = sizeof good / sizeof good[0];
	size_t cap = ng * 4200;
	char *buf = calloc(1, cap), *text = malloc(4096);
	size_t *starts = calloc(ng, sizeof *starts);
	assert_non_null(buf);
	size_t len = 0;
	for (size_t k = 0; k < ng; k++) {
		size_t vs, ve;
		size_t n = expand(&good[k], text, 4096, 0x9e3779b9u + (uint32_t)k * 7919u, &vs, &ve);
		const char *fill = "\n// unrelated code: let x = compute(a, b);\n\n";
		memcpy(buf + len, fill, strlen(fill));
		len += strlen(fill);
		starts[k] = len + vs;
		memcpy(buf + len, text, n);
		len += n;
	}
	struct gh_findings fs;
	scan_text(buf, len, &fs);
	size_t found = 0;
	for (size_t k = 0; k < ng; k++) {
		int line, col;
		pos_of(buf, starts[k], &line, &col);
		size_t hits = 0;
		for (size_t i = 0; i < fs.n; i++)
			if (fs.v[i].line == line && fs.v[i].col == col && strcmp(fs.v[i].rule, good[k].rule) == 0)
				hits++;
		if (hits != 1)
			fprintf(stderr, "    %s at %d:%d found %zu times\n", good[k].rule, line, col, hits);
		found += hits == 1;
	}
	size_t total = fs.n;
	gh_findings_free(&fs);
	free(starts);
	free(text);
	free(buf);
	assert_int_equal(found, ng);
	assert_int_equal(total, ng);
	CHECKED("%zu secrets in one %zu-byte buffer: every one found exactly once, no other finding", ng, len);
}

/* 5 MB of source-like text with a few secrets: all found; prints the throughput. */
static void test_large_buffer(void **state)
{
	size_t cap = 5u << 20;
	char *buf = malloc(cap + 1), text[4096];
	assert_non_null(buf);
	static const char *const lines[] = {
		"function handler(req, res) { const user = req.body.user; return db.query(sql, [user]); }\n",
		"    for (let i = 0; i < items.length; i++) total += items[i].price * items[i].qty;\n",
		"import os, sys  # token handling happens in auth.py; password = os.getenv(\"DB_PASSWORD\")\n",
		"  \"dependencies\": { \"express\": \"^4.18.2\", \"pg\": \"^8.11.0\" },\n",
		"const token = await getToken(req); if (!token) throw new Error('no token');\n",
		"c2VlZCBkYXRhIGZvciBiYXNlNjQgbG9va2luZyBsaW5lcyBvZiB0ZXh0IGluIGEgZmlsZQ==\n",
	};
	size_t len = 0, nl = 0, planted = 0;
	while (len < cap - 8192) {
		if (nl % 20000 == 19999) {
			size_t vs, ve;
			size_t n = expand(&good[planted % 5], text, sizeof text, 0x9e3779b9u + (uint32_t)(planted % 5) * 7919u, &vs, &ve);
			memcpy(buf + len, text, n);
			len += n;
			planted++;
		}
		const char *l = lines[nl++ % (sizeof lines / sizeof lines[0])];
		memcpy(buf + len, l, strlen(l));
		len += strlen(l);
	}
	/* best of three: the machine is shared */
	double s = 1e9;
	size_t n = 0;
	int rc = 0;
	for (int rep = 0; rep < 3 && !rc; rep++) {
		struct gh_findings fs;
		struct timespec t0, t1;
		gh_findings_init(&fs);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = gh_secrets_scan(S, SCR, "big.js", (const uint8_t *)buf, len, &fs);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double t = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (t < s)
			s = t;
		n = fs.n;
		gh_findings_free(&fs);
	}
	free(buf);
	assert_int_equal(rc, 0);
	assert_int_equal(n, planted);
	printf("  throughput: %.1f MB in %.3f s = %.0f MB/s (%zu planted secrets found)\n", (double)len / 1e6, s,
	       (double)len / 1e6 / s, n);
	CHECKED("5 MB buffer: every planted secret found, nothing else");
}

/* Binary-ish input: random bytes with NULs and secrets embedded; positions stay in bounds. */
static void test_binary_and_empty(void **state)
{
	size_t len = 1u << 20;
	uint8_t *buf = malloc(len);
	uint32_t st = 42;
	char text[4096];
	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)next_rand(&st);
	size_t vs, ve;
	size_t n = expand(&good[4], text, sizeof text, 0x9e3779b9u + 4u * 7919u, &vs, &ve);
	memcpy(buf + 4096, "\0\n", 2);
	memcpy(buf + 4098, text, n);
	struct gh_findings fs;
	gh_findings_init(&fs);
	assert_int_equal(gh_secrets_scan(S, SCR, "blob.bin", buf, len, &fs), 0);
	bool found = false;
	for (size_t i = 0; i < fs.n; i++) {
		assert_true(fs.v[i].line >= 1 && fs.v[i].col >= 1);
		assert_true(strlen(fs.v[i].snippet) <= 4 + 3);
		found |= strcmp(fs.v[i].rule, "github-pat-classic") == 0;
	}
	gh_findings_free(&fs);
	free(buf);
	assert_true(found);

	gh_findings_init(&fs);
	assert_int_equal(gh_secrets_scan(S, SCR, "empty", (const uint8_t *)"", 0, &fs), 0);
	assert_int_equal(fs.n, 0);
	assert_int_equal(gh_secrets_scan(S, SCR, "null", NULL, 0, &fs), 0);
	assert_int_equal(fs.n, 0);
	gh_findings_free(&fs);
	CHECKED("1 MB of random bytes with an embedded token: found, positions and snippets in bounds; empty input: nothing");
}

/* Input made of anchors (every rule's start repeated) stays near linear: each 1 MB buffer
 * scans in well under the timeout, and a single 1 MB line of JWTs reports exact columns. */
static void test_adversarial(void **state)
{
	static const char *const pieces[] = {"eyJ", "token=", "password: \"", "\"type\": \"service_account\"", "AKIA",
					     "jdbc:mysql:", "twilio auth_token=", "postgres://a:", "-----BEGIN PRIVATE KEY-----\\n",
					     "AccountKey=", "sk_live_", "secret: "};
	size_t len = 1u << 20;
	char *buf = malloc(len + 64);
	assert_non_null(buf);
	double worst = 1e9;
	const char *worst_piece = "";
	for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
		size_t pl = strlen(pieces[k]), n = 0;
		while (n + pl <= len) {
			memcpy(buf + n, pieces[k], pl);
			n += pl;
		}
		struct gh_findings fs;
		struct timespec t0, t1;
		gh_findings_init(&fs);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(gh_secrets_scan(S, SCR, "adv", (const uint8_t *)buf, n, &fs), 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		gh_findings_free(&fs);
		double t = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		double mbs = (double)n / 1e6 / t;
		if (mbs < worst) {
			worst = mbs;
			worst_piece = pieces[k];
		}
		assert_true(t < 5.0);
	}
	printf("  slowest adversarial input: '%s' repeated, %.0f MB/s\n", worst_piece, worst);

	/* one long line: a JWT every ~150 bytes, columns exact */
	char jwt[512];
	uint32_t st = 7;
	jwt[0] = 0;
	make_jwt(jwt, sizeof jwt, &st);
	size_t jl = strlen(jwt), n = 0, count = 0;
	while (n + jl + 2 <= len) {
		memcpy(buf + n, jwt, jl);
		n += jl;
		buf[n++] = ' ';
		count++;
	}
	struct gh_findings fs;
	gh_findings_init(&fs);
	assert_int_equal(gh_secrets_scan(S, SCR, "min.js", (const uint8_t *)buf, n, &fs), 0);
	gh_findings_sort(&fs);
	size_t ok = 0;
	for (size_t i = 0; i < fs.n; i++)
		ok += fs.v[i].line == 1 && fs.v[i].col == (int)(i * (jl + 1)) + 1 && fs.v[i].end_col == (int)(i * (jl + 1) + jl) + 1;
	size_t total = fs.n;
	gh_findings_free(&fs);
	free(buf);
	assert_int_equal(total, count);
	assert_int_equal(ok, count);
	CHECKED("12 anchor-flood inputs of 1 MB each under 5 s; %zu JWTs on one line with exact columns", count);
}

/* Two threads, one database, a scratch each: the same findings as one thread. */
struct th {
	const char *buf;
	size_t len;
	size_t n;
	int rc;
};

static void *thread_main(void *arg)
{
	struct th *t = arg;
	struct gh_secrets_scratch *scr = NULL;
	struct gh_findings fs;
	gh_findings_init(&fs);
	t->rc = gh_secrets_scratch_new(S, &scr);
	for (int i = 0; !t->rc && i < 20; i++) {
		t->rc = gh_secrets_scan(S, scr, "t.js", (const uint8_t *)t->buf, t->len, &fs);
	}
	t->n = fs.n;
	gh_findings_free(&fs);
	gh_secrets_scratch_free(scr);
	return NULL;
}

static void test_threads(void **state)
{
	char text[4096];
	size_t vs, ve;
	size_t n = expand(&good[2], text, sizeof text, 0x9e3779b9u + 2u * 7919u, &vs, &ve);
	struct th a = {text, n, 0, 0}, b = {text, n, 0, 0};
	pthread_t ta, tb;
	pthread_create(&ta, NULL, thread_main, &a);
	pthread_create(&tb, NULL, thread_main, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.rc, 0);
	assert_int_equal(b.rc, 0);
	assert_int_equal(a.n, 20);
	assert_int_equal(b.n, 20);
	CHECKED("two threads sharing the database with their own scratch: 20 findings each");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules_metadata),
		cmocka_unit_test(test_true_examples),
		cmocka_unit_test(test_false_examples),
		cmocka_unit_test(test_many_in_one_buffer),
		cmocka_unit_test(test_large_buffer),
		cmocka_unit_test(test_binary_and_empty),
		cmocka_unit_test(test_adversarial),
		cmocka_unit_test(test_threads),
	};
	if (sodium_init() < 0)
		return 1;
	int failed = cmocka_run_group_tests_name("scan_secrets", tests, setup, teardown);
	gh_unit_report("scan_secrets", sizeof tests / sizeof tests[0], failed);
	return failed ? 1 : 0;
}
