/* config: the policy document (YAML) — load with line-numbered errors, validate, export. */
#ifndef GH_CONFIG_H
#define GH_CONFIG_H

#include "core/core.h"

/* Access levels; each includes the ones before it. */
enum gh_access { GH_ACCESS_NONE = 0, GH_ACCESS_USE = 1, GH_ACCESS_EDIT = 2, GH_ACCESS_OWN = 3 };
enum gh_approval_mode { GH_APPROVAL_NONE = 0, GH_APPROVAL_WRITES = 1 };
enum gh_resource_kind { GH_RESOURCE_SQLITE = 1, GH_RESOURCE_POSTGRES = 2 };

struct gh_policy_user { char *name; bool disabled; };
struct gh_policy_group { char *name; char **members; size_t nmembers; };
struct gh_policy_env {
	char *name;
	enum gh_approval_mode approval;
	char **reviewers; /* group names */
	size_t nreviewers;
};
struct gh_policy_resenv {
	char *env;
	char *path;   /* sqlite: the database file, absolute; NULL for postgres */
	char *secret; /* postgres: the vault secret holding the libpq connection string; NULL for sqlite */
};
struct gh_policy_resource {
	char *name;
	enum gh_resource_kind kind;
	struct gh_policy_resenv *envs;
	size_t nenvs;
	char **schemas;   /* postgres: the schemas its schema listing shows; none: public */
	size_t nschemas;
};
struct gh_policy_app { char *name; };
/* One entry of a grant's `tables:` list: a table (or view) name or glob ('*' and '?' never
 * match '.'; PostgreSQL names may carry one schema, "sales.orders"), and optionally the only
 * columns it gives (none: every column). */
struct gh_policy_table {
	char *name;
	char **columns;
	size_t ncolumns;
};
struct gh_policy_grant {
	char *resource, *environment;
	char *user, *group; /* exactly one is set */
	enum gh_access access;
	struct gh_policy_table *tables; /* ntables == 0: the whole resource */
	size_t ntables;
};

/* Defaults for `gatehouse scan` (the policy's optional `scan` section); flags override. */
struct gh_policy_scan {
	char *fail_on;            /* low | medium | high | critical; NULL: high */
	int64_t min_release_age;  /* seconds; -1: unset (7 days) */
	char **licenses; size_t nlicenses;     /* allow-list; none: any */
	char **deny_packages; size_t ndeny;
	char *registry;           /* npm registry base URL; NULL: https://registry.npmjs.org */
	char *pypi_registry;      /* PyPI JSON API base URL; NULL: https://pypi.org/pypi */
	int64_t max_file_size;    /* bytes; -1: unset (1 MiB) */
};

/* The policy's optional `recovery` section: the recovery objectives the operators commit to
 * (`gatehouse readiness` checks backups against rpo). -1: not stated. */
struct gh_policy_recovery {
	int64_t rto; /* seconds: how long a restore may take */
	int64_t rpo; /* seconds: how much may be lost; the newest backup must be younger */
};
/* The policy's optional `audit` section: signed checkpoints and the sinks the server ships the
 * audit trail to (see audit.h). */
enum gh_sink_kind { GH_SINK_STDOUT = 1, GH_SINK_SYSLOG = 2, GH_SINK_HTTP = 3 };
struct gh_policy_sink {
	char *name;
	enum gh_sink_kind kind;
	int64_t batch;       /* records per delivery, 1..GH_SINK_MAX_BATCH (default 100) */
	int64_t retry_max;   /* seconds: the cap of the retry backoff (default 30) */
	/* http */
	char *url;           /* https://HOST[:PORT]/PATH, or http:// to 127.0.0.1 or [::1] only */
	char *header;        /* the request header that carries the API key; NULL: none */
	char *secret;        /* the vault secret holding the API key; NULL: none */
	int secret_line, secret_column; /* where the document named the secret (apply's check) */
	int64_t timeout;     /* seconds per request (default 10) */
	/* syslog */
	int facility;        /* 0..23 (default 16, local0) */
	char *address;       /* "/path" (unix datagram socket, default /dev/log) or "udp:HOST:PORT" */
};
struct gh_policy_audit {
	int64_t checkpoint_every; /* records between signed checkpoints (default 1000) */
	struct gh_policy_sink *sinks; size_t nsinks;
};
/* Name of a syslog facility number (0..23), or NULL. */
const char *gh_config_facility_name(int facility);

/* A validated policy. Immutable once loaded; shared by reference count between threads. */
struct gh_policy {
	int64_t version; /* the store's policy version; 0 until stored */
	struct gh_policy_user *users; size_t nusers;
	struct gh_policy_group *groups; size_t ngroups;
	char **admins; size_t nadmins;
	struct gh_policy_env *envs; size_t nenvs;
	struct gh_policy_resource *resources; size_t nresources;
	struct gh_policy_app *apps; size_t napps;
	struct gh_policy_grant *grants; size_t ngrants;
	struct gh_policy_scan scan;
	struct gh_policy_recovery recovery;
	struct gh_policy_audit audit;
	int refs;
};

/* Parses and validates a policy document. filename is used in error messages
 * ("FILE:LINE:COLUMN: ..."); basedir resolves relative paths (NULL: relative paths are errors).
 * On success *out is a new policy with one reference. On failure err names the first problem
 * and nothing is allocated. */
int gh_config_parse(const char *text, size_t len, const char *filename, const char *basedir,
		    struct gh_policy **out, struct gh_error *err);

/* Writes the policy as a YAML document that gh_config_parse reads back to the same policy. */
int gh_config_export(const struct gh_policy *p, struct gh_buf *out);

void gh_config_ref(struct gh_policy *p);
void gh_config_unref(struct gh_policy *p);

/* Lookups by name; NULL when absent. */
const struct gh_policy_user *gh_config_user(const struct gh_policy *p, const char *name);
const struct gh_policy_group *gh_config_group(const struct gh_policy *p, const char *name);
const struct gh_policy_env *gh_config_env(const struct gh_policy *p, const char *name);
const struct gh_policy_resource *gh_config_resource(const struct gh_policy *p, const char *name);
const struct gh_policy_resenv *gh_config_resenv(const struct gh_policy_resource *r, const char *env);
const struct gh_policy_app *gh_config_app(const struct gh_policy *p, const char *name);
/* True when user is a member of group. */
bool gh_config_in_group(const struct gh_policy *p, const char *user, const char *group);
/* Writes the names of user's groups, comma-separated, into out. */
int gh_config_user_groups(const struct gh_policy *p, const char *user, struct gh_buf *out);
/* True when user belongs to one of the admins groups. */
bool gh_config_is_admin(const struct gh_policy *p, const char *user);

/* What changed from policy a (NULL: none) to policy b, in counts and as a JSON object:
 *   {"grants":{"added":["RES/ENV/user:U/ACCESS",...],"removed":[...],
 *              "changed":[{"grant":"RES/ENV/group:G","from":"use","to":"edit"}]},
 *    "users":{"added":[],"removed":[],"disabled":[],"enabled":[]},
 *    "groups":{"added":[],"removed":[],"changed":[{"group":"G","members":{"added":[],"removed":[]}}]},
 *    "admins":{"added":[],"removed":[]}, "environments":{...}, "resources":{...}, "apps":{...}}
 * A grant is keyed by resource, environment and subject; duplicates count at their highest
 * access. Other differences (paths, approval modes, scan settings) are not listed: compare the
 * exported documents to know whether anything changed. GH_ETOOBIG when out fills up. */
struct gh_config_diff {
	size_t grants_added, grants_removed, grants_changed;
	size_t users_added, users_removed, users_disabled, users_enabled;
	size_t groups_added, groups_removed, groups_changed;
	size_t admins_added, admins_removed, envs_added, envs_removed;
	size_t resources_added, resources_removed, apps_added, apps_removed;
};
int gh_config_diff(const struct gh_policy *a, const struct gh_policy *b, struct gh_buf *out,
		   struct gh_config_diff *counts);
/* The number of listed changes. */
size_t gh_config_diff_total(const struct gh_config_diff *n);
/* True when some defined, enabled user is a member of an admins group: a policy without one
 * leaves nobody able to administer the server remotely. */
bool gh_config_has_admin(const struct gh_policy *p);
/* Checks that a token may be issued for user in env (via app when not NULL): the user is
 * defined and enabled, the environment defined, the app registered. 0, or GH_EDENIED (user
 * disabled) / GH_ENOTFOUND with the reason written into msg. */
int gh_config_token_subject(const struct gh_policy *p, const char *user, const char *env, const char *app,
			    char *msg, size_t n);

const char *gh_access_name(enum gh_access a);

/* True when s is a valid name: 1..GH_NAME_MAX of [A-Za-z0-9_-]; user names may also hold '.'
 * and '@' (emails). */
bool gh_config_valid_name(const char *s, bool user);

#endif
