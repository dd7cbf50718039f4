/* readiness: the production-readiness checks (see readiness.h). */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "config/config.h"
#include "readiness/readiness.h"
#include "scan/scan.h"
#include "store/store.h"

/* Bounds the server's limits should stay within for production. */
#define READY_MAX_ROWS 100000
#define READY_MAX_STATEMENT_MS 60000
#define READY_MAX_BODY (16LL << 20)
#define READY_MAX_STATEMENT (1LL << 20)
/* Without a stated RPO, a backup older than this is not recent. */
#define READY_DEFAULT_BACKUP_AGE 86400

struct run {
	struct gh_ready_check *out;
	size_t n;
	const char *dir;
	const struct gh_ready_opts *o;
	struct gh_store *st;
	struct gh_policy *p; /* NULL: no policy applied */
	char *doc;           /* the applied policy's text */
};

static struct gh_ready_check *add(struct run *r, const char *area, const char *id, enum gh_ready_status s,
				  const char *fix, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static struct gh_ready_check *add(struct run *r, const char *area, const char *id, enum gh_ready_status s,
				  const char *fix, const char *fmt, ...)
{
	if (r->n >= GH_READY_MAX_CHECKS)
		return NULL;
	struct gh_ready_check *c = &r->out[r->n++];
	memset(c, 0, sizeof *c);
	c->area = area;
	c->id = id;
	c->status = s;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof c->reason, fmt, ap);
	va_end(ap);
	snprintf(c->fix, sizeof c->fix, "%s", s == GH_READY_PASS || !fix ? "" : fix);
	return c;
}

static void human_secs(int64_t s, char *out, size_t n)
{
	if (s % 86400 == 0)
		snprintf(out, n, "%lldd", (long long)(s / 86400));
	else if (s % 3600 == 0)
		snprintf(out, n, "%lldh", (long long)(s / 3600));
	else if (s % 60 == 0)
		snprintf(out, n, "%lldm", (long long)(s / 60));
	else
		snprintf(out, n, "%llds", (long long)s);
}

/* ---- secrets ---- */

static void check_data_dir(struct run *r)
{
	struct stat st;
	if (stat(r->dir, &st) < 0) {
		add(r, "secrets", "secrets.data_dir", GH_READY_FAIL, "check the path", "%s: %s", r->dir, strerror(errno));
		return;
	}
	if ((st.st_mode & 077) || st.st_uid != geteuid())
		add(r, "secrets", "secrets.data_dir", GH_READY_FAIL, "chmod 700 the data directory and own it by the server's user",
		    "the data directory is mode %03o, owner uid %u: others can reach the store and the audit trail",
		    (unsigned)(st.st_mode & 0777), (unsigned)st.st_uid);
	else
		add(r, "secrets", "secrets.data_dir", GH_READY_PASS, NULL, "mode %03o, owned by the server's user",
		    (unsigned)(st.st_mode & 0777));
}

static void check_master_key(struct run *r)
{
	if (getenv("GATEHOUSE_MASTER_KEY")) {
		add(r, "secrets", "secrets.master_key", GH_READY_PASS, NULL,
		    "the master key comes from GATEHOUSE_MASTER_KEY, not from a file beside the data");
		return;
	}
	char path[4096];
	struct stat st;
	if (gh_path_join(path, sizeof path, r->dir, "master.key") || lstat(path, &st) < 0) {
		add(r, "secrets", "secrets.master_key", GH_READY_FAIL, "restore the key, or pass GATEHOUSE_MASTER_KEY",
		    "no master key: neither GATEHOUSE_MASTER_KEY nor DIR/master.key");
		return;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077) || st.st_uid != geteuid()) {
		add(r, "secrets", "secrets.master_key", GH_READY_FAIL, "chmod 600 master.key, owned by the server's user",
		    "master.key is %s, mode %03o, owner uid %u", S_ISLNK(st.st_mode) ? "a symlink" : S_ISREG(st.st_mode) ? "a file" : "not a file",
		    (unsigned)(st.st_mode & 0777), (unsigned)st.st_uid);
		return;
	}
	add(r, "secrets", "secrets.master_key", GH_READY_WARN,
	    "keep the key in a secret manager and pass it as GATEHOUSE_MASTER_KEY; back up with --without-master-key",
	    "master.key is mode 600 but lies beside the data it protects: a copy of the directory opens every secret");
}

static void check_policy_secrets(struct run *r)
{
	if (!r->doc) {
		add(r, "secrets", "secrets.policy_plaintext", GH_READY_FAIL, "gatehouse apply a policy", "no policy has been applied");
		return;
	}
	struct gh_secrets *s = NULL;
	struct gh_secrets_scratch *scr = NULL;
	struct gh_findings fs;
	struct gh_error err;
	gh_findings_init(&fs);
	int rc = gh_secrets_new(&s, &err);
	if (!rc && gh_secrets_scratch_new(s, &scr))
		rc = GH_ENOMEM;
	if (!rc)
		rc = gh_secrets_scan(s, scr, "policy", (const uint8_t *)r->doc, strlen(r->doc), &fs);
	if (rc) {
		add(r, "secrets", "secrets.policy_plaintext", GH_READY_FAIL, "see the error; the check fails closed",
		    "the policy could not be scanned for credentials: %s", rc == GH_ENOMEM ? "out of memory" : err.message);
	} else if (fs.n) {
		char lines[200] = "";
		size_t used = 0;
		for (size_t i = 0; i < fs.n && used + 24 < sizeof lines; i++)
			used += (size_t)snprintf(lines + used, sizeof lines - used, "%s%s at line %d", i ? ", " : "",
						 fs.v[i].rule, fs.v[i].line);
		add(r, "secrets", "secrets.policy_plaintext", GH_READY_FAIL,
		    "move the value into the vault (gatehouse secret set) and name it with { secret: NAME }",
		    "the applied policy holds %zu credential(s): %s", fs.n, lines);
	} else {
		add(r, "secrets", "secrets.policy_plaintext", GH_READY_PASS, NULL,
		    "no credentials in the applied policy (connection strings are vault secrets)");
	}
	gh_findings_free(&fs);
	gh_secrets_scratch_free(scr);
	gh_secrets_free(s);
}

/* ---- authentication ---- */

static void check_tokens(struct run *r)
{
	int64_t active = 0, longl = 0;
	char max[24];
	human_secs(r->o->max_token_lifetime, max, sizeof max);
	if (gh_store_tokens_active(r->st, r->o->now, r->o->max_token_lifetime, &active, &longl)) {
		add(r, "authentication", "authentication.token_lifetime", GH_READY_FAIL, "check the store",
		    "the tokens could not be read from the store");
	} else if (longl) {
		add(r, "authentication", "authentication.token_lifetime", GH_READY_FAIL,
		    "revoke them (gatehouse token revoke ID) and issue shorter ones (--ttl)",
		    "%lld of %lld outstanding tokens live longer than %s", (long long)longl, (long long)active, max);
	} else {
		add(r, "authentication", "authentication.token_lifetime", GH_READY_PASS, NULL,
		    "%lld outstanding tokens, none living longer than %s", (long long)active, max);
	}
}

/* ---- authorization ---- */

static bool is_production(const char *name)
{
	return strcasestr(name, "prod") != NULL || strcasecmp(name, "prd") == 0 || strcasecmp(name, "live") == 0;
}

static size_t enabled_members(const struct gh_policy *p, const struct gh_policy_group *g)
{
	size_t n = 0;
	for (size_t i = 0; i < g->nmembers; i++) {
		const struct gh_policy_user *u = gh_config_user(p, g->members[i]);
		n += u && !u->disabled;
	}
	return n;
}

static void check_authorization(struct run *r)
{
	const struct gh_policy *p = r->p;
	if (!p) {
		add(r, "authorization", "authorization.production_approvals", GH_READY_FAIL, "gatehouse apply a policy",
		    "no policy has been applied");
		return;
	}
	/* approvals on production writes, by people who exist */
	size_t nprod = 0;
	char bad[300] = "";
	for (size_t i = 0; i < p->nenvs; i++) {
		const struct gh_policy_env *e = &p->envs[i];
		if (!is_production(e->name))
			continue;
		nprod++;
		size_t reviewers = 0;
		for (size_t j = 0; j < e->nreviewers; j++) {
			const struct gh_policy_group *g = gh_config_group(p, e->reviewers[j]);
			reviewers += g ? enabled_members(p, g) : 0;
		}
		if ((e->approval != GH_APPROVAL_WRITES || reviewers == 0) && strlen(bad) + strlen(e->name) + 40 < sizeof bad)
			snprintf(bad + strlen(bad), sizeof bad - strlen(bad), "%s%s (%s)", bad[0] ? ", " : "", e->name,
				 e->approval != GH_APPROVAL_WRITES ? "writes run without approval" : "no reviewer");
	}
	if (!nprod)
		add(r, "authorization", "authorization.production_approvals", GH_READY_FAIL,
		    "name the production environment (production, prod) and give it approval: writes with reviewers",
		    "no environment is recognisable as production (a name containing 'prod')");
	else if (bad[0])
		add(r, "authorization", "authorization.production_approvals", GH_READY_FAIL,
		    "set approval: writes and reviewers: [GROUP] with active members on each", "%s", bad);
	else
		add(r, "authorization", "authorization.production_approvals", GH_READY_PASS, NULL,
		    "%zu production environment(s), writes wait for a reviewer", nprod);

	/* production grants name their people: no write access to production through a group
	 * that holds every user (the same as granting it to everyone) */
	size_t nusers = 0, ngrants = 0;
	for (size_t i = 0; i < p->nusers; i++)
		nusers += !p->users[i].disabled;
	bad[0] = '\0';
	for (size_t i = 0; i < p->ngrants; i++) {
		const struct gh_policy_grant *g = &p->grants[i];
		if (!is_production(g->environment))
			continue;
		ngrants++;
		const struct gh_policy_group *grp = g->group ? gh_config_group(p, g->group) : NULL;
		if (grp && g->access >= GH_ACCESS_EDIT && nusers > 1 && enabled_members(p, grp) >= nusers &&
		    strlen(bad) + strlen(grp->name) + strlen(g->resource) + 40 < sizeof bad)
			snprintf(bad + strlen(bad), sizeof bad - strlen(bad), "%s%s on %s/%s", bad[0] ? ", " : "", grp->name,
				 g->resource, g->environment);
	}
	if (bad[0])
		add(r, "authorization", "authorization.production_grants", GH_READY_FAIL,
		    "grant production write access to the people or teams who need it, not to a group of everyone",
		    "write access to production through a group holding every user: %s", bad);
	else
		add(r, "authorization", "authorization.production_grants", GH_READY_PASS, NULL,
		    "%zu production grant(s), each naming a user or a group narrower than everyone", ngrants);

	/* own grants (which include changing RLS and approving) stay with few people */
	bad[0] = '\0';
	for (size_t i = 0; i < p->ngrants; i++) {
		const struct gh_policy_grant *g = &p->grants[i];
		const struct gh_policy_group *grp = g->group ? gh_config_group(p, g->group) : NULL;
		size_t m = grp ? enabled_members(p, grp) : 0;
		if (g->access == GH_ACCESS_OWN && m > r->o->max_own_group && strlen(bad) + strlen(grp->name) + 60 < sizeof bad)
			snprintf(bad + strlen(bad), sizeof bad - strlen(bad), "%s%s (%zu members) owns %s/%s", bad[0] ? ", " : "",
				 grp->name, m, g->resource, g->environment);
	}
	if (bad[0])
		add(r, "authorization", "authorization.own_grants", GH_READY_FAIL,
		    "grant own to a few named people; give the group edit or use", "%s; the limit is %zu", bad,
		    r->o->max_own_group);
	else
		add(r, "authorization", "authorization.own_grants", GH_READY_PASS, NULL,
		    "no own grant to a group of more than %zu people", r->o->max_own_group);
}

/* ---- input validation ---- */

static void check_limits(struct run *r)
{
	char v[400];
	int rc = gh_store_meta_get(r->st, "server.limits", v, sizeof v);
	if (rc) {
		add(r, "input validation", "input.limits", GH_READY_FAIL,
		    "start gatehouse serve on this directory with the limits you want (--max-rows, --statement-timeout, --max-body)",
		    "no server has run on this directory yet, so its limits are unknown");
		return;
	}
	json_error_t je;
	json_t *j = json_loads(v, 0, &je);
	long long rows = j ? json_integer_value(json_object_get(j, "max_rows")) : 0;
	long long ms = j ? json_integer_value(json_object_get(j, "statement_ms")) : 0;
	long long body = j ? json_integer_value(json_object_get(j, "max_body")) : 0;
	long long stmt = j ? json_integer_value(json_object_get(j, "max_statement")) : 0;
	json_decref(j);
	if (rows <= 0 || ms <= 0 || body <= 0 || stmt <= 0) {
		add(r, "input validation", "input.limits", GH_READY_FAIL, "start gatehouse serve again",
		    "the recorded limits are unreadable");
		return;
	}
	char bad[300] = "";
	if (rows > READY_MAX_ROWS)
		snprintf(bad + strlen(bad), sizeof bad - strlen(bad), "max rows %lld > %d; ", rows, READY_MAX_ROWS);
	if (ms > READY_MAX_STATEMENT_MS)
		snprintf(bad + strlen(bad), sizeof bad - strlen(bad), "statement timeout %lld ms > %d ms; ", ms,
			 READY_MAX_STATEMENT_MS);
	if (body > READY_MAX_BODY)
		snprintf(bad + strlen(bad), sizeof bad - strlen(bad), "max body %lld > %lld bytes; ", body, READY_MAX_BODY);
	if (stmt > READY_MAX_STATEMENT)
		snprintf(bad + strlen(bad), sizeof bad - strlen(bad), "max statement %lld > %lld bytes; ", stmt,
			 READY_MAX_STATEMENT);
	if (bad[0])
		add(r, "input validation", "input.limits", GH_READY_FAIL,
		    "lower them with gatehouse serve's --max-rows, --statement-timeout, --max-body, --max-statement",
		    "the server last ran with limits too loose for production: %s", bad);
	else
		add(r, "input validation", "input.limits", GH_READY_PASS, NULL,
		    "the server enforces max rows %lld, statement timeout %lld ms, body %lld bytes, statement %lld bytes", rows,
		    ms, body, stmt);
}

/* ---- logging ---- */

/* The sinks' delivery lag (records not yet acknowledged) above which a sink counts as behind. */
#define READY_MAX_SINK_LAG 10000

static void check_audit(struct run *r)
{
	struct gh_audit_report rep;
	struct gh_error err;
	memset(&rep, 0, sizeof rep);
	bool checked = gh_audit_verify(r->dir, &rep, &err) == 0;
	if (!checked)
		add(r, "logging", "logging.audit_chain", GH_READY_FAIL, "see gatehouse audit verify",
		    "the audit trail could not be checked: %s", err.message);
	else if (!rep.ok)
		add(r, "logging", "logging.audit_chain", GH_READY_FAIL,
		    "investigate: restore the trail from a backup; never edit it",
		    "the audit chain is broken at record %lld: %s", (long long)rep.bad_seq, rep.reason);
	else
		add(r, "logging", "logging.audit_chain", GH_READY_PASS, NULL,
		    "%lld records, hash chain intact and matching the store's head; every record is fsync'd before its answer",
		    (long long)rep.records);

	/* a copy leaves the machine: at least one sink, none far behind */
	const struct gh_policy_audit *au = r->p ? &r->p->audit : NULL;
	if (!au || au->nsinks == 0) {
		add(r, "logging", "logging.sinks", GH_READY_FAIL,
		    "add an audit sink to the policy (audit: { sinks: [ { name: siem, kind: http, url: https://..., "
		    "header: DD-API-KEY, api_key: { secret: NAME } } ] }, or kind: syslog)",
		    "no audit sink: the trail exists only on this machine, and whoever controls it controls the record");
	} else {
		char behind[300] = "", kinds[200] = "";
		for (size_t i = 0; i < au->nsinks; i++) {
			const struct gh_policy_sink *sk = &au->sinks[i];
			int64_t seq = 0, off = 0;
			char h[65];
			if (gh_store_audit_position_get(r->st, sk->name, &seq, &off, h))
				seq = 0;
			int64_t lag = rep.records - seq;
			snprintf(kinds + strlen(kinds), sizeof kinds - strlen(kinds), "%s%s (%s)", i ? ", " : "", sk->name,
				 sk->kind == GH_SINK_HTTP ? "http" : sk->kind == GH_SINK_SYSLOG ? "syslog" : "stdout");
			if (checked && lag > READY_MAX_SINK_LAG && strlen(behind) + strlen(sk->name) + 40 < sizeof behind)
				snprintf(behind + strlen(behind), sizeof behind - strlen(behind), "%s%s is %lld records behind",
					 behind[0] ? ", " : "", sk->name, (long long)lag);
		}
		if (behind[0])
			add(r, "logging", "logging.sinks", GH_READY_FAIL,
			    "check the sink's destination and the server log; the backlog is sent when it recovers", "%s",
			    behind);
		else
			add(r, "logging", "logging.sinks", GH_READY_PASS, NULL, "%zu sink(s): %s", au->nsinks, kinds);
	}

	/* signed checkpoints: an auditor can check a copy of the log without our secrets */
	int64_t every = au ? au->checkpoint_every : 0;
	if (!checked || !rep.ok)
		add(r, "logging", "logging.checkpoints", GH_READY_FAIL, "see gatehouse audit verify",
		    "the checkpoints cannot be trusted while the chain does not verify");
	else if (rep.checkpoints == 0)
		add(r, "logging", "logging.checkpoints", GH_READY_FAIL,
		    "run gatehouse serve (it signs a checkpoint every audit.checkpoint_every records and at shutdown)",
		    "no signed checkpoint covers the trail yet");
	else if (every > 0 && rep.records - rep.last_checkpoint > every)
		add(r, "logging", "logging.checkpoints", GH_READY_FAIL,
		    "check that the server runs its checkpointer (see its log)",
		    "the last signed checkpoint covers seq %lld of %lld: more than %lld records unsigned",
		    (long long)rep.last_checkpoint, (long long)rep.records, (long long)every);
	else
		add(r, "logging", "logging.checkpoints", GH_READY_PASS, NULL,
		    "%lld signed checkpoint(s), the last at seq %lld of %lld; publish gatehouse audit public-key to auditors",
		    (long long)rep.checkpoints, (long long)rep.last_checkpoint, (long long)rep.records);
}

/* ---- dependency security ---- */

static void check_scan_policy(struct run *r)
{
	if (!r->p) {
		add(r, "dependency security", "dependencies.scan_policy", GH_READY_FAIL, "gatehouse apply a policy",
		    "no policy has been applied");
		return;
	}
	int64_t age = r->p->scan.min_release_age;
	char h[24];
	if (age < 0)
		add(r, "dependency security", "dependencies.scan_policy", GH_READY_FAIL,
		    "add to the policy: scan: { min_release_age: 7d, fail_on: high }",
		    "the policy has no scan section with a minimum release age for dependencies");
	else if (age < 86400) {
		human_secs(age, h, sizeof h);
		add(r, "dependency security", "dependencies.scan_policy", GH_READY_FAIL, "set scan.min_release_age to 1d or more",
		    "scan.min_release_age is %s: a package published today would pass", h);
	} else {
		human_secs(age, h, sizeof h);
		add(r, "dependency security", "dependencies.scan_policy", GH_READY_PASS, NULL,
		    "gatehouse scan refuses dependencies younger than %s%s%s", h, r->p->scan.fail_on ? ", fails on " : "",
		    r->p->scan.fail_on ? r->p->scan.fail_on : "");
	}
}

/* ---- recovery ---- */

static void check_recovery(struct run *r)
{
	int64_t rto = r->p ? r->p->recovery.rto : -1, rpo = r->p ? r->p->recovery.rpo : -1;
	char a[24], b[24];
	if (rto < 0 || rpo < 0)
		add(r, "recovery", "recovery.objectives", GH_READY_FAIL,
		    "state them in the policy: recovery: { rto: 4h, rpo: 24h }",
		    "the policy states no %s%s%s", rto < 0 ? "RTO" : "", rto < 0 && rpo < 0 ? " and no " : "",
		    rpo < 0 ? "RPO" : "");
	else {
		human_secs(rto, a, sizeof a);
		human_secs(rpo, b, sizeof b);
		add(r, "recovery", "recovery.objectives", GH_READY_PASS, NULL, "RTO %s, RPO %s", a, b);
	}
	int64_t when = 0, seq = 0;
	char loc[1024];
	int rc = gh_store_backup_last(r->st, &when, loc, sizeof loc, &seq);
	int64_t max_age = rpo > 0 ? rpo : READY_DEFAULT_BACKUP_AGE;
	human_secs(max_age, a, sizeof a);
	if (rc == GH_ENOTFOUND) {
		add(r, "recovery", "recovery.backup", GH_READY_FAIL,
		    "schedule gatehouse backup --data DIR OUT (and test a restore)", "no backup was ever made of this directory");
		return;
	}
	if (rc) {
		add(r, "recovery", "recovery.backup", GH_READY_FAIL, "check the store", "the last backup could not be read");
		return;
	}
	int64_t age = r->o->now - when / 1000;
	char manifest[1100];
	struct stat st;
	human_secs(age > 0 ? age : 0, b, sizeof b);
	if (snprintf(manifest, sizeof manifest, "%s/manifest.json", loc) >= (int)sizeof manifest || stat(manifest, &st) < 0)
		add(r, "recovery", "recovery.backup", GH_READY_FAIL, "take a new backup and keep it where it can be restored from",
		    "the last backup (%s ago, at %s) is no longer there", b, loc);
	else if (age > max_age)
		add(r, "recovery", "recovery.backup", GH_READY_FAIL, "back up at least once per RPO",
		    "the last backup is %s old, more than %s%s", b, a, rpo > 0 ? " (the RPO)" : "");
	else
		add(r, "recovery", "recovery.backup", GH_READY_PASS, NULL, "the last backup is %s old (limit %s), at %s, up to audit seq %lld",
		    b, a, loc, (long long)seq);
}

const char *gh_ready_status_name(enum gh_ready_status s)
{
	return s == GH_READY_PASS ? "pass" : s == GH_READY_WARN ? "warn" : "fail";
}

int gh_readiness_run(const char *datadir, const struct gh_ready_opts *o, struct gh_ready_check *out, size_t *n,
		     struct gh_error *err)
{
	struct run r = {.out = out, .dir = datadir, .o = o};
	char path[4096];
	*n = 0;
	if (gh_path_join(path, sizeof path, datadir, "gatehouse.db"))
		return gh_error_set(err, GH_ETOOBIG, "data directory path too long");
	if (access(path, F_OK) != 0)
		return gh_error_set(err, GH_ENOTFOUND, "%s is not an initialised data directory", datadir);
	if (gh_store_open(path, false, &r.st, err))
		return err->code ? err->code : GH_EIO;
	int64_t version = 0;
	if (gh_store_policy_load(r.st, &r.doc, &version) == 0 && r.doc) {
		struct gh_error perr;
		if (gh_config_parse(r.doc, strlen(r.doc), "stored policy", NULL, &r.p, &perr))
			r.p = NULL;
	}
	check_data_dir(&r);
	check_master_key(&r);
	check_policy_secrets(&r);
	check_tokens(&r);
	check_authorization(&r);
	check_limits(&r);
	check_audit(&r);
	check_scan_policy(&r);
	check_recovery(&r);
	*n = r.n;
	if (r.p)
		gh_config_unref(r.p);
	free(r.doc);
	gh_store_close(r.st);
	return 0;
}
