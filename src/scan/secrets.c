/* scan: the secrets pass. Every rule is compiled into one Hyperscan database that finds
 * candidates in a single pass over a file; each candidate is confirmed, and the secret's exact
 * span extracted, by the rule's PCRE2 expression run on a small window around it, then checked
 * (entropy, placeholders, JWT header) in C. Overlapping findings are reduced to one per secret:
 * the most specific rule wins. A secret's value is never copied into a finding: only its first
 * four characters, then "…".
 *
 * The rules are written from each provider's published token format (prefixes, lengths and
 * alphabets); see the help text of each rule. */
#include "scan/scan.h"
#include "scan/hs_dl.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* How a confirmed value is checked before it becomes a finding. */
enum chk {
	CHK_TOKEN,   /* a prefixed random token: not a look-alike (runs, "example", low entropy) */
	CHK_CONTEXT, /* a bare random value found by its context: placeholders and entropy */
	CHK_JWT,     /* header decodes to a JSON object with "alg" */
	CHK_DBPASS,  /* a password inside a URI or JDBC string: not a placeholder */
	CHK_GENERIC, /* a value assigned to a secret-sounding name: entropy per alphabet */
};

/* One rule. re is PCRE2; the secret is its first capture group that took part in the match
 * (the whole match if none). hs is the Hyperscan expression that finds candidates (NULL: re,
 * in prefilter mode). A candidate ending at offset e is confirmed by re on
 * [e - back, e + fwd]; back covers the distance from the start of a match to the end of
 * its anchor (at least 64). prio breaks overlaps: higher wins. */
struct srule {
	struct gh_rule_info info;
	const char *re;
	const char *hs;
	unsigned back, fwd;
	enum chk chk;
	int prio;
	bool before; /* the match may start before the anchor (context first): search the window */
	/* For anchored rules, how far later anchors are skipped after an attempt, so that input
	 * made of anchors stays linear: 0 none, SKIP_RUN the URL-safe run the attempt started in
	 * (a JWT), otherwise that many bytes after a failed attempt (its lazy gap was searched). */
	unsigned skip;
};

#define SKIP_RUN UINT_MAX

#define FIXTXT " Remove it from the source, store it with `gatehouse secret set NAME` (or another secret store) and read it at run time; then rotate it at the provider, because everyone with the repository or its history already has it."

#define SEV_C GH_SEV_CRITICAL
#define SEV_H GH_SEV_HIGH
#define SEV_M GH_SEV_MEDIUM
#define SEV_L GH_SEV_LOW

/* Character classes used below. */
#define B62 "[A-Za-z0-9]"
#define URLSAFE "[A-Za-z0-9_\\-]"
#define NOT_URLSAFE "(?![A-Za-z0-9_\\-])"
/* A JSON "\n" escape or real whitespace between a PEM header and its body. */
#define PEMGAP "(?:\\\\[rn]|\\s){1,8}"
/* Assignment in JS/TS/Python/YAML/JSON/.env/Go: name, optional closing quote, operator. */
#define ASSIGN "[\"']?\\s{0,5}(?::=|=>|[:=])\\s{0,5}[\"'`]?"
#define HS_ASSIGN "[\"']?\\s{0,5}(:=|=>|:|=)\\s{0,5}[\"']?"

/* A URI scheme with user:password@ : the password is the secret. */
#define DBURI(scheme) "\\b" scheme "://[^:/?#@\\s\"'`<>]{0,128}:([^@/?#\\s\"'`<>]{1,256})@[A-Za-z0-9_\\[]"

static const struct srule rules[] = {
	/* ---- AWS ---- */
	{{"aws-access-key-id", "AWS access key ID",
	  "An AWS access key ID (AKIA… long-term or ASIA… temporary, 20 characters). With its secret key it signs requests as an IAM user or role." FIXTXT,
	  SEV_C},
	 "\\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})\\b", NULL, 32, 8, CHK_TOKEN, 3, false, 0},
	{{"aws-secret-access-key", "AWS secret access key",
	  "A 40-character AWS secret access key assigned next to an AWS or secret name. It signs API requests with the rights of its IAM user." FIXTXT,
	  SEV_C},
	 "(?i)(?:aws|secret)[a-z0-9_.\\-]{0,30}" ASSIGN "([a-z0-9/+]{40})(?![a-z0-9/+=])",
	 "(?i)(aws|secret)[a-z0-9_.\\-]{0,30}" HS_ASSIGN "[a-z0-9/+]{40}", 128, 8, CHK_CONTEXT, 3, false, 0},

	/* ---- GitHub ---- */
	{{"github-pat-classic", "GitHub personal access token (classic)",
	  "A classic GitHub personal access token (ghp_ and 36 characters). It acts as its user on every repository and organisation the token's scopes reach." FIXTXT,
	  SEV_C},
	 "\\b(ghp_" B62 "{36})\\b", NULL, 64, 8, CHK_TOKEN, 3, false, 0},
	{{"github-oauth-token", "GitHub OAuth access token",
	  "A GitHub OAuth app access token (gho_ and 36 characters). It acts as the user who authorised the app." FIXTXT, SEV_C},
	 "\\b(gho_" B62 "{36})\\b", NULL, 64, 8, CHK_TOKEN, 3, false, 0},
	{{"github-app-user-token", "GitHub App user-to-server token",
	  "A GitHub App user-to-server token (ghu_ and 36 characters). It acts as a user through a GitHub App." FIXTXT, SEV_C},
	 "\\b(ghu_" B62 "{36})\\b", NULL, 64, 8, CHK_TOKEN, 3, false, 0},
	{{"github-app-installation-token", "GitHub App installation token",
	  "A GitHub App server-to-server (installation) token (ghs_ and 36 characters). It acts as the app on every repository it is installed on." FIXTXT,
	  SEV_C},
	 "\\b(ghs_" B62 "{36})\\b", NULL, 64, 8, CHK_TOKEN, 3, false, 0},
	{{"github-refresh-token", "GitHub refresh token",
	  "A GitHub App refresh token (ghr_ and 36 characters). It mints new user-to-server tokens." FIXTXT, SEV_C},
	 "\\b(ghr_" B62 "{36})\\b", NULL, 64, 8, CHK_TOKEN, 3, false, 0},
	{{"github-fine-grained-pat", "GitHub fine-grained personal access token",
	  "A fine-grained GitHub personal access token (github_pat_, 22 characters, _, 59 characters). It acts as its user on the repositories it was granted." FIXTXT,
	  SEV_C},
	 "\\b(github_pat_" B62 "{22}_" B62 "{59})\\b", NULL, 128, 8, CHK_TOKEN, 3, false, 0},

	/* ---- GitLab ---- */
	{{"gitlab-pat", "GitLab personal access token",
	  "A GitLab personal, project or group access token (glpat-). It calls the GitLab API as its owner with the token's scopes." FIXTXT, SEV_C},
	 "\\b(glpat-" URLSAFE "{20,200})" NOT_URLSAFE, "glpat-" URLSAFE "{20}", 32, 200, CHK_TOKEN, 3, false, 0},
	{{"gitlab-pipeline-trigger-token", "GitLab pipeline trigger token",
	  "A GitLab pipeline trigger token (glptt- and 40 hex). It starts pipelines, with their secrets, on the project." FIXTXT, SEV_H},
	 "\\b(glptt-[0-9a-f]{40})\\b", NULL, 64, 8, CHK_TOKEN, 3, false, 0},
	{{"gitlab-runner-token", "GitLab runner authentication token",
	  "A GitLab runner authentication token (glrt-). Whoever holds it can register a runner and receive CI jobs, with their variables." FIXTXT, SEV_H},
	 "\\b(glrtr?-" URLSAFE "{20,200})" NOT_URLSAFE, "glrtr?-" URLSAFE "{20}", 32, 200, CHK_TOKEN, 3, false, 0},
	{{"gitlab-deploy-token", "GitLab deploy token",
	  "A GitLab deploy token (gldt-). It reads (and may write) the repository, packages and registry." FIXTXT, SEV_H},
	 "\\b(gldt-" URLSAFE "{20,200})" NOT_URLSAFE, "gldt-" URLSAFE "{20}", 32, 200, CHK_TOKEN, 3, false, 0},
	{{"gitlab-feed-token", "GitLab feed token",
	  "A GitLab feed token (glft-). It reads the user's RSS/Atom and calendar feeds, including private projects' activity." FIXTXT, SEV_M},
	 "\\b(glft-" URLSAFE "{20,200})" NOT_URLSAFE, "glft-" URLSAFE "{20}", 32, 200, CHK_TOKEN, 3, false, 0},
	{{"gitlab-oauth-app-secret", "GitLab OAuth application secret",
	  "A GitLab OAuth application secret (gloas-). It lets anyone impersonate the application in OAuth flows." FIXTXT, SEV_H},
	 "\\b(gloas-" URLSAFE "{20,200})" NOT_URLSAFE, "gloas-" URLSAFE "{20}", 32, 200, CHK_TOKEN, 3, false, 0},
	{{"gitlab-ci-job-token", "GitLab CI/CD job token",
	  "A GitLab CI/CD job token (glcbt-). While the job runs it reaches the project's API, packages and registry." FIXTXT, SEV_M},
	 "\\b(glcbt-" URLSAFE "{20,200})" NOT_URLSAFE, "glcbt-" URLSAFE "{20}", 32, 200, CHK_TOKEN, 3, false, 0},
	{{"gitlab-agent-token", "GitLab agent for Kubernetes token",
	  "A GitLab agent for Kubernetes token (glagent-). It connects a cluster agent to GitLab." FIXTXT, SEV_H},
	 "\\b(glagent-" URLSAFE "{20,200})" NOT_URLSAFE, "glagent-" URLSAFE "{20}", 32, 200, CHK_TOKEN, 3, false, 0},
	{{"gitlab-scim-token", "GitLab SCIM token",
	  "A GitLab SCIM OAuth token (glsoat-). It provisions and removes users of the group." FIXTXT, SEV_H},
	 "\\b(glsoat-" URLSAFE "{20,200})" NOT_URLSAFE, "glsoat-" URLSAFE "{20}", 32, 200, CHK_TOKEN, 3, false, 0},

	/* ---- Slack ---- */
	{{"slack-bot-token", "Slack bot token",
	  "A Slack bot user OAuth token (xoxb-). It reads and posts in every channel the bot is in." FIXTXT, SEV_H},
	 "\\b(xoxb-[0-9]{8,13}-[0-9]{8,13}-" B62 "{24,34})\\b", "xoxb-[0-9]{8,13}-[0-9]{8,13}-" B62 "{24}", 64, 16, CHK_TOKEN, 3, false, 0},
	{{"slack-user-token", "Slack user token",
	  "A Slack user OAuth token (xoxp-). It acts as the user in the workspace, including private messages within its scopes." FIXTXT, SEV_C},
	 "\\b(xoxp-[0-9]{8,13}-[0-9]{8,13}-[0-9]{8,13}-[a-f0-9]{32})\\b", NULL, 128, 8, CHK_TOKEN, 3, false, 0},
	{{"slack-workspace-token", "Slack workspace access token",
	  "A Slack workspace app access token (xoxa-). It acts for a workspace app." FIXTXT, SEV_H},
	 "\\b(xoxa-[0-9]-" "[A-Za-z0-9\\-]{30,200})(?![A-Za-z0-9\\-])", "xoxa-[0-9]-[A-Za-z0-9\\-]{30}", 32, 200, CHK_TOKEN, 3, false, 0},
	{{"slack-app-token", "Slack app-level token",
	  "A Slack app-level token (xapp-). It opens Socket Mode connections and receives the app's events." FIXTXT, SEV_H},
	 "\\b(xapp-[0-9]-[A-Z0-9]{9,12}-[0-9]{10,14}-[a-f0-9]{64})\\b", "xapp-[0-9]-[A-Z0-9]{9,12}-[0-9]{10,14}-[a-f0-9]{64}", 160, 8, CHK_TOKEN, 3, false, 0},
	{{"slack-webhook-url", "Slack incoming webhook URL",
	  "A Slack incoming webhook URL (hooks.slack.com/services/T…/B…/…). Anyone with it can post into the channel, as your app." FIXTXT, SEV_M},
	 "https://hooks\\.slack\\.com/services/(T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/" B62 "{24})\\b", "https://hooks\\.slack\\.com/services/T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/" B62 "{24}", 128, 8, CHK_TOKEN, 3, false, 0},

	/* ---- Stripe ---- */
	{{"stripe-live-secret-key", "Stripe live secret key",
	  "A Stripe live-mode secret key (sk_live_). It moves real money: charges, refunds and payouts on the account." FIXTXT, SEV_C},
	 "\\b(sk_live_" B62 "{24,247})\\b", "sk_live_" B62 "{24}", 32, 256, CHK_TOKEN, 3, false, 0},
	{{"stripe-test-secret-key", "Stripe test secret key",
	  "A Stripe test-mode secret key (sk_test_). It has no access to real money but exposes the account's test data and settings." FIXTXT, SEV_M},
	 "\\b(sk_test_" B62 "{24,247})\\b", "sk_test_" B62 "{24}", 32, 256, CHK_TOKEN, 3, false, 0},
	{{"stripe-restricted-key", "Stripe restricted key",
	  "A Stripe restricted API key (rk_live_ or rk_test_). It has the permissions it was created with, often on live data." FIXTXT, SEV_H},
	 "\\b(rk_(?:live|test)_" B62 "{24,247})\\b", "rk_(live|test)_" B62 "{24}", 32, 256, CHK_TOKEN, 3, false, 0},

	/* ---- OpenAI, Anthropic ---- */
	{{"openai-api-key", "OpenAI API key",
	  "An OpenAI API key (sk- and 48 characters). Requests made with it are billed to the organisation." FIXTXT, SEV_H},
	 "\\b(sk-" B62 "{48})\\b", NULL, 64, 8, CHK_TOKEN, 3, false, 0},
	{{"openai-project-key", "OpenAI project or service-account key",
	  "An OpenAI project, service-account or admin key (sk-proj-, sk-svcacct-, sk-admin-). Requests made with it are billed to the project." FIXTXT,
	  SEV_H},
	 "\\b(sk-(?:proj|svcacct|admin)-" URLSAFE "{40,250})" NOT_URLSAFE, "sk-(proj|svcacct|admin)-" URLSAFE "{40}", 64, 256, CHK_TOKEN, 3, false, 0},
	{{"anthropic-api-key", "Anthropic API key",
	  "An Anthropic API or admin key (sk-ant-api03-, sk-ant-admin01-, …). Requests made with it are billed to the workspace." FIXTXT, SEV_H},
	 "\\b(sk-ant-[a-z]{3,6}[0-9]{2}-" URLSAFE "{80,120})" NOT_URLSAFE, "sk-ant-[a-z]{3,6}[0-9]{2}-" URLSAFE "{80}", 128, 64, CHK_TOKEN, 4, false, 0},

	/* ---- Google ---- */
	{{"google-api-key", "Google API key",
	  "A Google API key (AIza and 35 characters). Depending on its restrictions it calls Maps, Firebase, Gemini and other billed APIs." FIXTXT, SEV_H},
	 "\\b(AIza" URLSAFE "{35})" NOT_URLSAFE, "AIza" URLSAFE "{35}", 64, 8, CHK_TOKEN, 3, false, 0},
	{{"gcp-service-account-key", "Google Cloud service-account key",
	  "A Google Cloud service-account key file (\"type\": \"service_account\" with a \"private_key\"). It authenticates as the service account, with all its IAM roles." FIXTXT,
	  SEV_C},
	 "\"type\"\\s*:\\s*\"service_account\"[\\s\\S]{0,2000}?\"private_key\"\\s*:\\s*\"(-----BEGIN[^\"]{40,8000})\"",
	 "\"type\"\\s{0,5}:\\s{0,5}\"service_account\"", 64, 12288, CHK_TOKEN, 5, false, 2048},
	{{"gcp-oauth-client-secret", "Google OAuth client secret",
	  "A Google OAuth client secret (GOCSPX-). With the client ID it lets anyone act as your OAuth application." FIXTXT, SEV_H},
	 "\\b(GOCSPX-" URLSAFE "{28})" NOT_URLSAFE, "GOCSPX-" URLSAFE "{28}", 64, 8, CHK_TOKEN, 3, false, 0},

	/* ---- Azure ---- */
	{{"azure-storage-connection-string", "Azure Storage connection string",
	  "An Azure Storage connection string with its account key (DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…). The key gives full control of the storage account's data." FIXTXT,
	  SEV_C},
	 "DefaultEndpointsProtocol=https?;AccountName=[A-Za-z0-9]{3,24};AccountKey=([A-Za-z0-9+/]{86}==)",
	 "AccountKey=[A-Za-z0-9+/]{86}==", 200, 8, CHK_TOKEN, 4, true, 0},
	{{"azure-storage-account-key", "Azure Storage account key",
	  "An Azure Storage account key (AccountKey= and 88 base64 characters). It gives full control of the storage account's data." FIXTXT, SEV_C},
	 "AccountKey=([A-Za-z0-9+/]{86}==)", "AccountKey=[A-Za-z0-9+/]{86}==", 128, 8, CHK_TOKEN, 3, false, 0},
	{{"azure-service-bus-connection-string", "Azure Service Bus / Event Hubs connection string",
	  "An Azure Service Bus or Event Hubs connection string with a shared access key (Endpoint=sb://…;SharedAccessKey=…). It sends and receives messages with the key's rights." FIXTXT,
	  SEV_H},
	 "Endpoint=sb://[A-Za-z0-9.\\-]{1,200}/?;SharedAccessKeyName=[^;\\s\"']{1,256};SharedAccessKey=([A-Za-z0-9+/]{43}=)",
	 "SharedAccessKey=[A-Za-z0-9+/]{43}=", 600, 8, CHK_TOKEN, 3, true, 0},

	/* ---- Twilio ---- */
	{{"twilio-api-key", "Twilio API key SID",
	  "A Twilio API key SID (SK and 32 hex) next to Twilio configuration. With its secret it calls the Twilio API: messages and calls billed to you." FIXTXT,
	  SEV_M},
	 "(?i:twilio)[\\s\\S]{0,120}?\\b(SK[0-9a-f]{32})\\b", "SK[0-9a-f]{32}", 200, 8, CHK_TOKEN, 3, true, 0},
	{{"twilio-auth-token", "Twilio auth token",
	  "A Twilio auth token (32 hex) assigned as an auth token next to Twilio or an account SID (AC and 32 hex). It controls the whole Twilio account." FIXTXT,
	  SEV_C},
	 "(?i)(?:twilio|\\bAC[0-9a-f]{32}\\b)[\\s\\S]{0,160}?auth_?token[a-z_]{0,10}" ASSIGN "([0-9a-f]{32})\\b",
	 "(?i)auth_?token[a-z_]{0,10}" HS_ASSIGN "[0-9a-f]{32}", 300, 8, CHK_CONTEXT, 4, true, 0},

	/* ---- Other providers ---- */
	{{"sendgrid-api-key", "SendGrid API key",
	  "A SendGrid API key (SG., 22 characters, ., 43 characters). It sends mail as your domain." FIXTXT, SEV_H},
	 "\\b(SG\\." URLSAFE "{22}\\." URLSAFE "{43})" NOT_URLSAFE, "SG\\." URLSAFE "{22}\\." URLSAFE "{43}", 96, 8, CHK_TOKEN, 3, false, 0},
	{{"npm-access-token", "npm access token",
	  "An npm access token (npm_ and 36 characters). It can publish packages as its user: a supply-chain risk for everyone who installs them." FIXTXT, SEV_C},
	 "\\b(npm_" B62 "{36})\\b", NULL, 64, 8, CHK_TOKEN, 3, false, 0},
	{{"pypi-api-token", "PyPI API token",
	  "A PyPI API token (pypi-AgEIcHlwaS5vcmc…). It uploads releases of your packages." FIXTXT, SEV_C},
	 "\\b(pypi-AgEIcHlwaS5vcmc" URLSAFE "{50,400})" NOT_URLSAFE, "pypi-AgEIcHlwaS5vcmc" URLSAFE "{50}", 96, 400, CHK_TOKEN, 3, false, 0},
	{{"shopify-access-token", "Shopify access token or shared secret",
	  "A Shopify admin, custom-app or private-app access token or shared secret (shpat_, shpca_, shppa_, shpss_ and 32 hex). It reads and changes the shop's orders, customers and products." FIXTXT,
	  SEV_H},
	 "\\b(shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})\\b", NULL, 64, 8, CHK_TOKEN, 3, false, 0},
	{{"jwt", "JSON Web Token",
	  "A JSON Web Token (three base64url parts whose header is JSON with \"alg\"). A bearer token: whoever has it is its subject until it expires, and it may reveal claims." FIXTXT,
	  SEV_M},
	 "\\b(eyJ" URLSAFE "{10,300}\\." URLSAFE "{10,4000}\\." URLSAFE "{10,1000})" NOT_URLSAFE, "eyJ" URLSAFE "{10}", 16, 6100, CHK_JWT, 2, false, SKIP_RUN},

	/* ---- Private keys ---- */
	{{"private-key", "Private key (PEM)",
	  "A PEM private key (-----BEGIN … PRIVATE KEY----- with a key body): RSA, EC, DSA, PKCS#8 or encrypted PKCS#8. Whoever has it can sign and decrypt as its owner." FIXTXT,
	  SEV_C},
	 "-----BEGIN (?:RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY-----" PEMGAP
	 "(?:Proc-Type:[^\\n\\\\]{0,100}(?:\\\\n|\\n)DEK-Info:[^\\n\\\\]{0,200}(?:\\\\[rn]|\\s){1,8})?([A-Za-z0-9+/]{40,80})",
	 "-----BEGIN (RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY-----", 8, 512, CHK_TOKEN, 4, false, 0},
	{{"openssh-private-key", "OpenSSH private key",
	  "An OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY-----). It logs in wherever its public key is authorised." FIXTXT, SEV_C},
	 "-----BEGIN OPENSSH PRIVATE KEY-----" PEMGAP "(b3BlbnNzaC1rZXktdjE[A-Za-z0-9+/]{20,80})",
	 "-----BEGIN OPENSSH PRIVATE KEY-----", 8, 256, CHK_TOKEN, 4, false, 0},
	{{"pgp-private-key", "PGP private key block",
	  "An OpenPGP private key block (-----BEGIN PGP PRIVATE KEY BLOCK-----). It signs and decrypts as its owner." FIXTXT, SEV_C},
	 "-----BEGIN PGP PRIVATE KEY BLOCK-----(?:\\\\[rn]|\\s|[A-Za-z]{2,20}: [^\\n\\\\]{0,200}){1,12}([A-Za-z0-9+/]{40,80})",
	 "-----BEGIN PGP PRIVATE KEY BLOCK-----", 8, 1024, CHK_TOKEN, 4, false, 0},

	/* ---- Connection strings with inline passwords ---- */
	{{"postgres-uri-password", "PostgreSQL URI with a password",
	  "A postgres:// or postgresql:// URI with an inline password. It connects to the database as that user." FIXTXT, SEV_H},
	 DBURI("postgres(?:ql)?"), "postgres(ql)?://", 16, 420, CHK_DBPASS, 3, false, 0},
	{{"mysql-uri-password", "MySQL URI with a password",
	  "A mysql:// URI with an inline password. It connects to the database as that user." FIXTXT, SEV_H},
	 DBURI("mysqlx?"), "mysqlx?://", 16, 420, CHK_DBPASS, 3, false, 0},
	{{"mongodb-uri-password", "MongoDB URI with a password",
	  "A mongodb:// or mongodb+srv:// URI with an inline password. It connects to the cluster as that user." FIXTXT, SEV_H},
	 DBURI("mongodb(?:\\+srv)?"), "mongodb(\\+srv)?://", 16, 420, CHK_DBPASS, 3, false, 0},
	{{"redis-uri-password", "Redis URI with a password",
	  "A redis:// or rediss:// URI with an inline password. It reads and writes everything in the Redis instance." FIXTXT, SEV_H},
	 DBURI("rediss?"), "rediss?://", 16, 420, CHK_DBPASS, 3, false, 0},
	{{"amqp-uri-password", "AMQP URI with a password",
	  "An amqp:// or amqps:// URI (RabbitMQ and others) with an inline password. It publishes and consumes the broker's messages." FIXTXT, SEV_H},
	 DBURI("amqps?"), "amqps?://", 16, 420, CHK_DBPASS, 3, false, 0},
	{{"jdbc-password", "JDBC URL with a password",
	  "A JDBC URL with a password= parameter. It connects to the database as that user." FIXTXT, SEV_H},
	 "(?i)\\bjdbc:[a-z0-9]{2,20}:[^\\s\"'`]{0,300}?[;?&:]password=([^;&\\s\"'`]{1,256})", "(?i)jdbc:[a-z0-9]{2,20}:", 8, 600, CHK_DBPASS, 3, false, 0},

	/* ---- Generic ---- */
	{{"generic-secret-assignment", "Hard-coded secret",
	  "A high-entropy value assigned to a name such as password, secret, api_key, token, access_token, private_key or client_secret (JavaScript, TypeScript, Python, YAML, JSON, .env). Placeholders and environment look-ups are not reported." FIXTXT,
	  SEV_M},
	 "(?i)(?:passwd|password|pwd|secret|api[_\\-]?key|apikey|token|private[_\\-]?key|auth[_\\-]?key)[a-z0-9_\\-]{0,30}"
	 ASSIGN "(?:(?<=\")([^\"\\n]{8,200})\"|(?<=')([^'\\n]{8,200})'|(?<=`)([^`\\n$]{8,200})`|(?<![\"'`])([^\\s\"'`,;#()\\[\\]{}<>=:]{8,200}+={0,2})(?=[\\s,;#]|$))",
	 "(?i)(passwd|password|pwd|secret|api[_\\-]?key|apikey|token|private[_\\-]?key|auth[_\\-]?key)[a-z0-9_\\-]{0,30}[\"']?\\s{0,5}[:=]",
	 64, 240, CHK_GENERIC, 1, false, 0},
};

#define NRULES (sizeof rules / sizeof rules[0])

struct gh_secrets {
	hs_database_t *db;
	pcre2_code *re[NRULES];
	uint32_t ngroups; /* the largest capture count over every rule, for match data */
};

/* A confirmed secret: rule and the byte span of the value. */
struct cand {
	uint32_t rule;
	size_t s, e;
};

struct gh_secrets_scratch {
	hs_scratch_t *hs;
	pcre2_match_data *md;
	size_t done[NRULES]; /* per rule: candidates ending at or before this were already handled */
	size_t last_from[NRULES]; /* per anchored rule: the start last tried (SIZE_MAX: none) */
	size_t skip_until[NRULES]; /* per anchored rule: anchors starting before this are skipped */
	struct cand *c;
	size_t n, cap;
};

/* Per-scan state for the Hyperscan callback. */
struct scan_ctx {
	const struct gh_secrets *s;
	struct gh_secrets_scratch *scr;
	const uint8_t *buf;
	size_t len;
	int rc;
};

/* The most candidates kept per buffer: far more secrets than any real file holds, and a bound
 * on memory for adversarial input (gh_findings caps the total anyway). */
#define MAX_CANDS 100000

static struct gh_rule_info infos[NRULES];
static pthread_once_t infos_once = PTHREAD_ONCE_INIT;

static void infos_init(void)
{
	for (size_t i = 0; i < NRULES; i++)
		infos[i] = rules[i].info;
}

size_t gh_secrets_rules(const struct gh_rule_info **out)
{
	pthread_once(&infos_once, infos_init);
	*out = infos;
	return NRULES;
}

/* ---- checks on a confirmed value ---- */

/* Shannon entropy of p[0..n) in bits per byte. */
static double entropy(const uint8_t *p, size_t n)
{
	unsigned cnt[256] = {0};
	double h = 0;
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		cnt[p[i]]++;
	for (int i = 0; i < 256; i++)
		if (cnt[i]) {
			double q = (double)cnt[i] / (double)n;
			h -= q * log2(q);
		}
	return h;
}

static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c | 0x20) : c;
}

/* Case-insensitive (ASCII letters only) substring search in a bounded value. */
static bool has_ci(const uint8_t *p, size_t n, const char *needle)
{
	size_t m = strlen(needle);
	for (size_t i = 0; i + m <= n; i++) {
		size_t j = 0;
		while (j < m && lower(p[i + j]) == lower((uint8_t)needle[j]))
			j++;
		if (j == m)
			return true;
	}
	return false;
}

/* The longest run of one repeated byte. */
static size_t longest_run(const uint8_t *p, size_t n)
{
	size_t best = 0, run = 0;
	for (size_t i = 0; i < n; i++) {
		run = (i && p[i] == p[i - 1]) ? run + 1 : 1;
		if (run > best)
			best = run;
	}
	return best;
}

/* Placeholders, templates and environment look-ups: values that are not secrets. */
static bool placeholder(const uint8_t *p, size_t n)
{
	static const char *const words[] = {
		"changeme", "change_me", "change-me", "example", "dummy", "placeholder", "your_", "your-",
		"yourpass", "yoursecret", "yourtoken", "yourkey", "<", ">", "${", "{{", "%(", "%s",
		"process.env", "import.meta.env", "os.environ", "getenv", "environ[", "env(", "xxxx",
		"****", "....", "redacted", "sample", "fake", "test", "secret", "password", "passwd",
		"replace", "insert", "todo", "fixme", "foobar", "lorem", "12345678", "abcdefgh", "qwerty",
	};
	if (!n)
		return true;
	if (p[0] == '$' || p[0] == '%' || p[0] == '{' || p[0] == '[')
		return true;
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (has_ci(p, n, words[i]))
			return true;
	return false;
}

static bool is_hexdigit(uint8_t c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static bool is_b64char(uint8_t c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '+' ||
	       c == '/' || c == '=' || c == '_' || c == '-';
}

static bool is_urlsafe(uint8_t c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '_' || c == '-';
}

/* A dotted name (config.db.password1, self.api_key): code, not a value. */
static bool dotted_identifier(const uint8_t *p, size_t n)
{
	bool dot = false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c == '.')
			dot = true;
		else if (!(c == '_' || c == '$' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')))
			return false;
	}
	return dot;
}

/* A value assigned to a secret-sounding name: long enough, letters and digits or symbols,
 * above the entropy threshold of its alphabet, and not a placeholder or a reference. */
static bool check_generic(const uint8_t *p, size_t n, bool quoted)
{
	bool hex = true, b64 = true, alpha = false, other = false;
	if (n < 8 || longest_run(p, n) >= 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (!is_hexdigit(c))
			hex = false;
		if (!is_b64char(c))
			b64 = false;
		if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
			alpha = true;
		else
			other = true; /* digits and symbols */
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	if (!alpha || !other)
		return false;
	if (!quoted && dotted_identifier(p, n))
		return false;
	double h = entropy(p, n);
	bool high = hex ? n >= 16 && h >= 3.0 : b64 ? (n >= 20 ? h >= 3.5 : h >= 2.9) : h >= 3.0;
	/* last, the costliest: placeholders, and URIs (the connection-string rules' business) */
	return high && !placeholder(p, n) && !has_ci(p, n, "://");
}

/* A prefixed token: its prefix is known, so refuse only look-alikes. */
static bool check_token(const uint8_t *p, size_t n)
{
	return longest_run(p, n) < 6 && !has_ci(p, n, "example") && entropy(p, n) >= 3.0;
}

/* A bare random value found by context (hex or base64). */
static bool check_context(const uint8_t *p, size_t n)
{
	bool hex = true;
	if (placeholder(p, n) || longest_run(p, n) >= 5)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_hexdigit(p[i]))
			hex = false;
	return entropy(p, n) >= (hex ? 3.0 : 3.5);
}

static bool check_dbpass(const uint8_t *p, size_t n)
{
	static const char *const exact[] = {"pass", "pwd", "pw", "p", "x"};
	static const char *const words[] = {"password", "passwd", "secret", "changeme", "example", "****",
					    "xxx", "<", "${", "{{", "%s", "%(", "$(", "your"};
	if (!n || p[0] == '$' || p[0] == '{' || p[0] == '%' || p[0] == '*' || p[0] == ':')
		return false;
	for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
		if (n == strlen(exact[i]) && has_ci(p, n, exact[i]))
			return false;
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (has_ci(p, n, words[i]))
			return false;
	return true;
}

/* Decodes unpadded base64url p[0..n) into out (at most cap bytes); false on any other byte,
 * an impossible length or overflow. (Local, so that scanning threads share no lazily built
 * table.) */
static bool b64url(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	if (n % 4 == 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
			: c == '-' ? 62 : c == '_' ? 63 : -1;
		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return false;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	*outlen = o;
	return true;
}

/* The first part of a JWT decodes to a JSON object with a string "alg". */
static bool check_jwt(const uint8_t *p, size_t n)
{
	uint8_t hdr[768];
	size_t hlen = 0, dot = 0;
	while (dot < n && p[dot] != '.')
		dot++;
	if (dot == n || !b64url(p, dot, hdr, sizeof hdr, &hlen))
		return false;
	json_t *root = json_loadb((const char *)hdr, hlen, JSON_REJECT_DUPLICATES, NULL);
	bool ok = root && json_is_object(root) && json_is_string(json_object_get(root, "alg"));
	json_decref(root);
	return ok;
}

static bool check(const struct srule *r, const uint8_t *buf, size_t s, size_t e, size_t ms)
{
	const uint8_t *p = buf + s;
	size_t n = e - s;
	switch (r->chk) {
	case CHK_TOKEN: return check_token(p, n);
	case CHK_CONTEXT: return check_context(p, n);
	case CHK_JWT: return check_jwt(p, n);
	case CHK_DBPASS: return check_dbpass(p, n);
	case CHK_GENERIC: return check_generic(p, n, s > ms && (buf[s - 1] == '"' || buf[s - 1] == '\'' || buf[s - 1] == '`'));
	}
	return false;
}

/* ---- compile ---- */

/* Whether the rule's anchor starts where its match starts (Hyperscan reports that start). */
static bool anchored(const struct srule *r)
{
	return r->hs && !r->before;
}

int gh_secrets_new(struct gh_secrets **out, struct gh_error *err)
{
	const char *exprs[NRULES];
	unsigned flags[NRULES], ids[NRULES];
	hs_compile_error_t *cerr = NULL;
	*out = NULL;
	if (gh_hs_load(err))
		return err->code;
	struct gh_secrets *s = calloc(1, sizeof *s);
	int rc = GH_ENOMEM;
	if (!s)
		return gh_error_set(err, GH_ENOMEM, "secrets: out of memory");
	for (size_t i = 0; i < NRULES; i++) {
		int ec;
		PCRE2_SIZE eo;
		uint32_t cap = 0;
		/* anchored rules are compiled anchored: the JIT does not take PCRE2_ANCHORED at match time */
		uint32_t opts = PCRE2_NEVER_UTF | PCRE2_NEVER_UCP | (anchored(&rules[i]) ? PCRE2_ANCHORED : 0);
		s->re[i] = pcre2_compile((PCRE2_SPTR)rules[i].re, PCRE2_ZERO_TERMINATED, opts, &ec, &eo, NULL);
		if (!s->re[i]) {
			PCRE2_UCHAR msg[160];
			pcre2_get_error_message(ec, msg, sizeof msg);
			rc = gh_error_set(err, GH_EINTERNAL, "secrets: rule %s: PCRE2 at %zu: %s", rules[i].info.id,
					  (size_t)eo, (const char *)msg);
			goto fail;
		}
		(void)pcre2_jit_compile(s->re[i], PCRE2_JIT_COMPLETE); /* the interpreter if no JIT */
		pcre2_pattern_info(s->re[i], PCRE2_INFO_CAPTURECOUNT, &cap);
		if (cap > s->ngroups)
			s->ngroups = cap;
		exprs[i] = rules[i].hs ? rules[i].hs : rules[i].re;
		/* an anchor that starts where the match starts reports that start: one anchored
		 * PCRE2 attempt confirms it */
		flags[i] = !rules[i].hs ? HS_FLAG_PREFILTER : anchored(&rules[i]) ? HS_FLAG_SOM_LEFTMOST : 0;
		ids[i] = (unsigned)i;
	}
	if (hs_compile_multi(exprs, flags, ids, (unsigned)NRULES, HS_MODE_BLOCK, NULL, &s->db, &cerr) != HS_SUCCESS) {
		int idx = cerr ? cerr->expression : -1;
		rc = gh_error_set(err, GH_EINTERNAL, "secrets: Hyperscan: rule %s: %s",
				  idx >= 0 && (size_t)idx < NRULES ? rules[idx].info.id : "?",
				  cerr && cerr->message ? cerr->message : "?");
		hs_free_compile_error(cerr);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	gh_secrets_free(s);
	return rc;
}

void gh_secrets_free(struct gh_secrets *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < NRULES; i++)
		pcre2_code_free(s->re[i]);
	hs_free_database(s->db);
	free(s);
}

int gh_secrets_scratch_new(const struct gh_secrets *s, struct gh_secrets_scratch **out)
{
	struct gh_secrets_scratch *scr = calloc(1, sizeof *scr);
	*out = NULL;
	if (!scr)
		return GH_ENOMEM;
	if (hs_alloc_scratch(s->db, &scr->hs) != HS_SUCCESS)
		goto fail;
	scr->md = pcre2_match_data_create(s->ngroups + 1, NULL);
	if (!scr->md)
		goto fail;
	*out = scr;
	return 0;
fail:
	gh_secrets_scratch_free(scr);
	return GH_ENOMEM;
}

void gh_secrets_scratch_free(struct gh_secrets_scratch *scr)
{
	if (!scr)
		return;
	hs_free_scratch(scr->hs);
	pcre2_match_data_free(scr->md);
	free(scr->c);
	free(scr);
}

/* ---- scan ---- */

static int cand_add(struct gh_secrets_scratch *scr, uint32_t rule, size_t s, size_t e)
{
	if (scr->n == scr->cap) {
		if (scr->cap >= MAX_CANDS)
			return GH_ETOOBIG;
		size_t cap = scr->cap ? scr->cap * 2 : 64;
		struct cand *c = realloc(scr->c, cap * sizeof *c);
		if (!c)
			return GH_ENOMEM;
		scr->c = c;
		scr->cap = cap;
	}
	scr->c[scr->n++] = (struct cand){rule, s, e};
	return 0;
}

/* Records the match in md (n groups) as a candidate if its value passes the rule's check. */
static void take(struct scan_ctx *c, unsigned id, int n)
{
	PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->scr->md);
	size_t ms = ov[0], me = ov[1], vs = ms, ve = me;
	for (int g = 1; g < n; g++)
		if (ov[2 * g] != PCRE2_UNSET) {
			vs = ov[2 * g];
			ve = ov[2 * g + 1];
			break;
		}
	c->scr->done[id] = me;
	if (ve > vs && check(&rules[id], c->buf, vs, ve, ms)) {
		int rc = cand_add(c->scr, id, vs, ve);
		if (rc)
			c->rc = rc;
	}
}

/* Confirms a Hyperscan candidate of rule id ending at `to` (starting at `from` for anchored
 * rules) with PCRE2: anchored rules by one anchored attempt at from; the others by a search of
 * the window around `to`, where the first match that ends at or after `to` is the candidate's. */
static void confirm(struct scan_ctx *c, unsigned id, size_t from, size_t to)
{
	const struct srule *r = &rules[id];
	size_t back = r->back > 64 ? r->back : 64; /* at least the longest anchor */
	size_t ws = to > back ? to - back : 0;
	size_t we = c->len - to > r->fwd ? to + r->fwd : c->len;
	pcre2_match_data *md = c->scr->md;
	c->scr->done[id] = to;
	if (anchored(r)) {
		if (from == c->scr->last_from[id] || from < c->scr->skip_until[id])
			return;
		c->scr->last_from[id] = from;
		int n = pcre2_match(c->s->re[id], c->buf, we, from, 0, md, NULL);
		if (n > 0)
			take(c, id, n);
		if (r->skip == SKIP_RUN) {
			size_t e = from;
			while (e < c->len && is_urlsafe(c->buf[e]))
				e++;
			c->scr->skip_until[id] = e;
		} else if (r->skip && n <= 0) {
			c->scr->skip_until[id] = from + r->skip;
		}
		return;
	}
	for (size_t start = ws; start <= we;) {
		int n = pcre2_match(c->s->re[id], c->buf, we, start, 0, md, NULL);
		if (n <= 0)
			return;
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		if (ov[1] >= to) {
			take(c, id, n);
			return;
		}
		start = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
	}
}

static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void *ctx)
{
	struct scan_ctx *c = ctx;
	(void)flags;
	if (id >= NRULES || to <= c->scr->done[id])
		return 0;
	confirm(c, id, (size_t)from, (size_t)to);
	return c->rc ? 1 : 0;
}

/* Order for overlap resolution: by start, then by better rule first. */
static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->s != y->s)
		return x->s < y->s ? -1 : 1;
	if (rules[x->rule].prio != rules[y->rule].prio)
		return rules[x->rule].prio > rules[y->rule].prio ? -1 : 1;
	if (x->e != y->e)
		return x->e > y->e ? -1 : 1;
	return x->rule < y->rule ? -1 : (x->rule > y->rule);
}

/* Whether candidate a should replace b when they overlap. */
static bool better(const struct cand *a, const struct cand *b)
{
	if (rules[a->rule].prio != rules[b->rule].prio)
		return rules[a->rule].prio > rules[b->rule].prio;
	return a->e - a->s > b->e - b->s;
}

/* The redacted form of a value: its first 4 characters (printable ASCII; anything else shown
 * as '?'), fewer for short values so that at most half of one is shown, then "…". */
static void redact(const uint8_t *p, size_t n, char out[16])
{
	size_t k = n >= 8 ? 4 : n / 2, i;
	for (i = 0; i < k; i++)
		out[i] = (p[i] > 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
	memcpy(out + i, "\xe2\x80\xa6", 4);
}

/* A cursor for positions of increasing offsets: the line and line start of the last offset, so
 * that a file's findings cost one pass over it in all (gh_scan_position counts from the start,
 * which is quadratic on a long minified line full of findings). */
struct cursor {
	size_t off, line_start;
	int line;
};

/* Moves cur forward to off (off >= cur->off) and gives off's line and byte column, as
 * gh_scan_position would. */
static void position(const uint8_t *buf, struct cursor *cur, size_t off, int *line, int *col)
{
	const uint8_t *p = buf + cur->off, *end = buf + off, *nl;
	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		cur->line++;
		cur->line_start = (size_t)(nl - buf) + 1;
		p = nl + 1;
	}
	cur->off = off;
	*line = cur->line;
	*col = (int)(off - cur->line_start) + 1;
}

static int emit(const struct gh_secrets_scratch *scr, const char *path, const uint8_t *buf, size_t len,
		struct gh_findings *out)
{
	struct cursor cur = {0, 0, 1};
	for (size_t i = 0; i < scr->n; i++) {
		const struct cand *k = &scr->c[i];
		const struct srule *r = &rules[k->rule];
		char snip[16], msg[256], fix[320];
		struct gh_finding f = {0};
		int rc;
		redact(buf + k->s, k->e - k->s, snip);
		snprintf(msg, sizeof msg, "%s in the source: anyone who can read this file or its history can use it",
			 r->info.name);
		snprintf(fix, sizeof fix,
			 "Rotate this %s at the provider now; store the new value with `gatehouse secret set NAME` (or a secret store) and read it at run time.",
			 r->info.name);
		f.rule = r->info.id;
		f.severity = r->info.severity;
		f.path = (char *)(uintptr_t)path;
		position(buf, &cur, k->s, &f.line, &f.col);
		struct cursor after = cur; /* the next secret starts at or after this one's end */
		position(buf, &after, k->e, &f.end_line, &f.end_col);
		f.message = msg;
		f.snippet = snip;
		f.fix = fix;
		rc = gh_findings_add(out, &f);
		if (rc == GH_ETOOBIG)
			return 0; /* out->truncated says so */
		if (rc)
			return rc;
	}
	return 0;
}

int gh_secrets_scan(const struct gh_secrets *s, struct gh_secrets_scratch *scr, const char *path,
		    const uint8_t *buf, size_t len, struct gh_findings *out)
{
	struct scan_ctx c = {s, scr, buf, len, 0};
	if (!s || !scr || (!buf && len))
		return GH_EINVAL;
	if (len == 0)
		return 0;
	if (len > UINT_MAX)
		return GH_ETOOBIG;
	memset(scr->done, 0, sizeof scr->done);
	memset(scr->last_from, 0xff, sizeof scr->last_from);
	memset(scr->skip_until, 0, sizeof scr->skip_until);
	scr->n = 0;
	hs_error_t he = hs_scan(s->db, (const char *)buf, (unsigned)len, 0, scr->hs, on_match, &c);
	if (he != HS_SUCCESS && he != HS_SCAN_TERMINATED)
		return GH_EINTERNAL;
	if (c.rc == GH_ENOMEM)
		return GH_ENOMEM;
	if (c.rc == GH_ETOOBIG) { /* keep what was found, and say that more may exist */
		pthread_mutex_lock(&out->mu);
		out->truncated = true;
		pthread_mutex_unlock(&out->mu);
	}
	/* one finding per secret: among overlapping spans the best rule wins */
	if (scr->n > 1)
		qsort(scr->c, scr->n, sizeof *scr->c, cand_cmp);
	size_t k = 0;
	for (size_t i = 0; i < scr->n; i++) {
		if (k && scr->c[i].s < scr->c[k - 1].e) {
			if (better(&scr->c[i], &scr->c[k - 1]))
				scr->c[k - 1] = scr->c[i];
			continue;
		}
		scr->c[k++] = scr->c[i];
	}
	scr->n = k;
	int rc = emit(scr, path, buf, len, out);
	scr->n = 0;
	return rc;
}
