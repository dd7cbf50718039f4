/* config: what changes between two policies (for a dry run and the record of an apply), and
 * the checks an administrator's change must pass (someone is left to administer; a token's
 * subject exists). Pure functions over loaded policies. */
#include "config/config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The name of the i-th element of an array of structs whose first member is `char *name`
 * (users, groups, environments, resources, apps), or of an array of char * (admins). */
static const char *name_at(const void *base, size_t i, size_t stride)
{
	return *(char *const *)(const void *)((const char *)base + i * stride);
}

static int fill_names(struct gh_map *m, const void *base, size_t n, size_t stride)
{
	for (size_t i = 0; i < n; i++) {
		const char *s = name_at(base, i, stride);
		if (gh_map_put(m, s, strlen(s), (void *)1))
			return GH_ENOMEM;
	}
	return 0;
}

/* Appends ,"KEY":[...] of the names in (base, n) that are absent from other; counts them. */
static int put_missing(struct gh_buf *b, const char *key, const void *base, size_t n, size_t stride,
		       const struct gh_map *other, size_t *count)
{
	int rc = gh_buf_printf(b, "\"%s\":[", key);
	size_t k = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		const char *s = name_at(base, i, stride);
		if (gh_map_get(other, s, strlen(s)))
			continue;
		if (k++)
			rc = gh_buf_puts(b, ",");
		if (!rc)
			rc = gh_buf_json_string(b, s, strlen(s));
	}
	*count += k;
	return rc ? rc : gh_buf_puts(b, "]");
}

/* Appends "SECTION":{"added":[...],"removed":[...]} for two name arrays. */
static int diff_names(struct gh_buf *b, const char *section, const void *abase, size_t an, const void *bbase,
		      size_t bn, size_t stride, size_t *added, size_t *removed)
{
	struct gh_map *ma = gh_map_new(NULL), *mb = gh_map_new(NULL);
	int rc = ma && mb ? 0 : GH_ENOMEM;
	if (!rc)
		rc = fill_names(ma, abase, an, stride);
	if (!rc)
		rc = fill_names(mb, bbase, bn, stride);
	if (!rc)
		rc = gh_buf_printf(b, "\"%s\":{", section);
	if (!rc)
		rc = put_missing(b, "added", bbase, bn, stride, ma, added);
	if (!rc)
		rc = gh_buf_puts(b, ",");
	if (!rc)
		rc = put_missing(b, "removed", abase, an, stride, mb, removed);
	if (!rc)
		rc = gh_buf_puts(b, "}");
	gh_map_free(ma);
	gh_map_free(mb);
	return rc;
}

/* "resource/environment/user:NAME" or ".../group:NAME" into key. */
static void grant_key(const struct gh_policy_grant *g, char *key, size_t n)
{
	snprintf(key, n, "%s/%s/%s:%s", g->resource, g->environment, g->user ? "user" : "group",
		 g->user ? g->user : g->group);
}

/* Maps each grant key to the highest access the policy gives it (duplicates allowed). */
static int fill_grants(struct gh_map *m, const struct gh_policy *p)
{
	char key[4 * GH_NAME_MAX + 16];
	for (size_t i = 0; p && i < p->ngrants; i++) {
		grant_key(&p->grants[i], key, sizeof key);
		uintptr_t cur = (uintptr_t)gh_map_get(m, key, strlen(key));
		if ((uintptr_t)p->grants[i].access > cur &&
		    gh_map_put(m, key, strlen(key), (void *)(uintptr_t)p->grants[i].access))
			return GH_ENOMEM;
	}
	return 0;
}

static int put_sep(struct gh_buf *b, size_t *k)
{
	return (*k)++ ? gh_buf_puts(b, ",") : 0;
}

/* "grants":{"added":["crm/staging/group:analysts/use"],"removed":[...],
 *           "changed":[{"grant":"crm/staging/user:bob","from":"use","to":"edit"}]} */
static int diff_grants(struct gh_buf *b, const struct gh_policy *a, const struct gh_policy *p,
		       struct gh_config_diff *n)
{
	struct gh_map *ma = gh_map_new(NULL), *mb = gh_map_new(NULL), *done = gh_map_new(NULL);
	char key[4 * GH_NAME_MAX + 16];
	int rc = ma && mb && done ? 0 : GH_ENOMEM;
	if (!rc)
		rc = fill_grants(ma, a);
	if (!rc)
		rc = fill_grants(mb, p);
	size_t k = 0;
	if (!rc)
		rc = gh_buf_puts(b, "\"grants\":{\"added\":[");
	for (size_t i = 0; !rc && i < p->ngrants; i++) {
		grant_key(&p->grants[i], key, sizeof key);
		size_t kl = strlen(key);
		uintptr_t acc = (uintptr_t)gh_map_get(mb, key, kl);
		if (gh_map_get(ma, key, kl) || gh_map_get(done, key, kl))
			continue;
		rc = gh_map_put(done, key, kl, (void *)1) || put_sep(b, &k) ||
		     gh_buf_printf(b, "\"%s/%s\"", key, gh_access_name((enum gh_access)acc));
		n->grants_added++;
	}
	if (!rc)
		rc = gh_buf_puts(b, "],\"removed\":[");
	k = 0;
	for (size_t i = 0; !rc && a && i < a->ngrants; i++) {
		grant_key(&a->grants[i], key, sizeof key);
		size_t kl = strlen(key);
		uintptr_t acc = (uintptr_t)gh_map_get(ma, key, kl);
		if (gh_map_get(mb, key, kl) || gh_map_get(done, key, kl))
			continue;
		rc = gh_map_put(done, key, kl, (void *)1) || put_sep(b, &k) ||
		     gh_buf_printf(b, "\"%s/%s\"", key, gh_access_name((enum gh_access)acc));
		n->grants_removed++;
	}
	if (!rc)
		rc = gh_buf_puts(b, "],\"changed\":[");
	k = 0;
	for (size_t i = 0; !rc && i < p->ngrants; i++) {
		grant_key(&p->grants[i], key, sizeof key);
		size_t kl = strlen(key);
		uintptr_t from = (uintptr_t)gh_map_get(ma, key, kl), to = (uintptr_t)gh_map_get(mb, key, kl);
		if (!from || from == to || gh_map_get(done, key, kl))
			continue;
		rc = gh_map_put(done, key, kl, (void *)1) || put_sep(b, &k) ||
		     gh_buf_printf(b, "{\"grant\":\"%s\",\"from\":\"%s\",\"to\":\"%s\"}", key,
				   gh_access_name((enum gh_access)from), gh_access_name((enum gh_access)to));
		n->grants_changed++;
	}
	if (!rc)
		rc = gh_buf_puts(b, "]}");
	gh_map_free(ma);
	gh_map_free(mb);
	gh_map_free(done);
	return rc ? GH_ETOOBIG : 0;
}

/* "disabled":[...],"enabled":[...] for users defined in both. */
static int diff_standing(struct gh_buf *b, const struct gh_policy *a, const struct gh_policy *p,
			 struct gh_config_diff *n)
{
	int rc = 0;
	for (int pass = 0; pass < 2 && !rc; pass++) {
		bool want = pass == 0; /* first the users now disabled, then those now enabled */
		size_t k = 0;
		rc = gh_buf_printf(b, ",\"%s\":[", want ? "disabled" : "enabled");
		for (size_t i = 0; !rc && a && i < p->nusers; i++) {
			const struct gh_policy_user *was = gh_config_user(a, p->users[i].name);
			if (!was || was->disabled == p->users[i].disabled || p->users[i].disabled != want)
				continue;
			rc = put_sep(b, &k) || gh_buf_json_string(b, p->users[i].name, strlen(p->users[i].name));
			if (want)
				n->users_disabled++;
			else
				n->users_enabled++;
		}
		if (!rc)
			rc = gh_buf_puts(b, "]");
	}
	return rc;
}

/* "changed":[{"group":"g","added":[...],"removed":[...]}] for groups defined in both. */
static int diff_members(struct gh_buf *b, const struct gh_policy *a, const struct gh_policy *p,
			struct gh_config_diff *n)
{
	size_t k = 0;
	int rc = gh_buf_puts(b, ",\"changed\":[");
	for (size_t i = 0; !rc && a && i < p->ngroups; i++) {
		const struct gh_policy_group *now = &p->groups[i], *was = gh_config_group(a, now->name);
		if (!was)
			continue;
		struct gh_buf one;
		gh_buf_init(&one, b->max);
		size_t added = 0, removed = 0;
		rc = gh_buf_puts(&one, "{\"group\":") || gh_buf_json_string(&one, now->name, strlen(now->name)) ||
		     gh_buf_puts(&one, ",");
		if (!rc)
			rc = diff_names(&one, "members", was->members, was->nmembers, now->members, now->nmembers,
					sizeof(char *), &added, &removed);
		if (!rc && (added || removed)) {
			rc = put_sep(b, &k) || gh_buf_append(b, one.data, one.len) || gh_buf_puts(b, "}");
			n->groups_changed++;
		}
		gh_buf_free(&one);
	}
	return rc ? rc : gh_buf_puts(b, "]");
}

int gh_config_diff(const struct gh_policy *a, const struct gh_policy *p, struct gh_buf *b,
		   struct gh_config_diff *n)
{
	static const struct gh_policy none;
	const struct gh_policy *o = a ? a : &none;
	memset(n, 0, sizeof *n);
	int rc = gh_buf_puts(b, "{");
	if (!rc)
		rc = diff_grants(b, a, p, n);
	if (!rc)
		rc = gh_buf_puts(b, ",");
	if (!rc)
		rc = diff_names(b, "users", o->users, o->nusers, p->users, p->nusers, sizeof *p->users, &n->users_added,
				&n->users_removed);
	if (!rc) {
		b->len--; /* reopen the users object for the changes of standing */
		rc = diff_standing(b, a, p, n) || gh_buf_puts(b, "},");
	}
	if (!rc)
		rc = diff_names(b, "groups", o->groups, o->ngroups, p->groups, p->ngroups, sizeof *p->groups,
				&n->groups_added, &n->groups_removed);
	if (!rc) {
		b->len--;
		rc = diff_members(b, a, p, n) || gh_buf_puts(b, "},");
	}
	if (!rc)
		rc = diff_names(b, "admins", o->admins, o->nadmins, p->admins, p->nadmins, sizeof *p->admins,
				&n->admins_added, &n->admins_removed) || gh_buf_puts(b, ",");
	if (!rc)
		rc = diff_names(b, "environments", o->envs, o->nenvs, p->envs, p->nenvs, sizeof *p->envs,
				&n->envs_added, &n->envs_removed) || gh_buf_puts(b, ",");
	if (!rc)
		rc = diff_names(b, "resources", o->resources, o->nresources, p->resources, p->nresources,
				sizeof *p->resources, &n->resources_added, &n->resources_removed) || gh_buf_puts(b, ",");
	if (!rc)
		rc = diff_names(b, "apps", o->apps, o->napps, p->apps, p->napps, sizeof *p->apps, &n->apps_added,
				&n->apps_removed) || gh_buf_puts(b, "}");
	if (b->data)
		b->data[b->len] = '\0';
	return rc ? GH_ETOOBIG : 0;
}

size_t gh_config_diff_total(const struct gh_config_diff *n)
{
	return n->grants_added + n->grants_removed + n->grants_changed + n->users_added + n->users_removed +
	       n->users_disabled + n->users_enabled + n->groups_added + n->groups_removed + n->groups_changed +
	       n->admins_added + n->admins_removed + n->envs_added + n->envs_removed + n->resources_added +
	       n->resources_removed + n->apps_added + n->apps_removed;
}

bool gh_config_has_admin(const struct gh_policy *p)
{
	for (size_t i = 0; i < p->nadmins; i++) {
		const struct gh_policy_group *g = gh_config_group(p, p->admins[i]);
		for (size_t j = 0; g && j < g->nmembers; j++) {
			const struct gh_policy_user *u = gh_config_user(p, g->members[j]);
			if (u && !u->disabled)
				return true;
		}
	}
	return false;
}

int gh_config_token_subject(const struct gh_policy *p, const char *user, const char *env, const char *app, char *msg,
			    size_t n)
{
	const struct gh_policy_user *u = gh_config_user(p, user);
	if (!u)
		snprintf(msg, n, "user '%s' is not defined in the policy", user);
	else if (u->disabled)
		snprintf(msg, n, "user '%s' is disabled", user);
	else if (!gh_config_env(p, env))
		snprintf(msg, n, "environment '%s' is not defined in the policy", env);
	else if (app && !gh_config_app(p, app))
		snprintf(msg, n, "app '%s' is not registered in the policy", app);
	else
		return 0;
	return u && u->disabled ? GH_EDENIED : GH_ENOTFOUND;
}
