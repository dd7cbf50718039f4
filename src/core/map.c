/* core: a string-keyed open hash map with chaining. */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

struct map_entry {
	struct map_entry *next;
	uint64_t hash;
	size_t keylen;
	void *value;
	char key[];
};

struct gh_map {
	struct map_entry **slots;
	size_t nslots, count;
	void (*free_value)(void *);
};

/* FNV-1a, 64-bit: keys are our own strings, and the map is per-owner, so flooding only
 * slows its owner; the caches that use it are bounded in entries. */
static uint64_t map_hash(const char *k, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)k[i];
		h *= 1099511628211ull;
	}
	return h;
}

struct gh_map *gh_map_new(void (*free_value)(void *))
{
	struct gh_map *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->nslots = 64;
	m->slots = calloc(m->nslots, sizeof *m->slots);
	if (!m->slots) {
		free(m);
		return NULL;
	}
	m->free_value = free_value;
	return m;
}

void gh_map_clear(struct gh_map *m)
{
	for (size_t i = 0; i < m->nslots; i++) {
		struct map_entry *e = m->slots[i];
		while (e) {
			struct map_entry *n = e->next;
			if (m->free_value)
				m->free_value(e->value);
			free(e);
			e = n;
		}
		m->slots[i] = NULL;
	}
	m->count = 0;
}

void gh_map_free(struct gh_map *m)
{
	if (!m)
		return;
	gh_map_clear(m);
	free(m->slots);
	free(m);
}

static struct map_entry **map_find(const struct gh_map *m, const char *key, size_t keylen, uint64_t h)
{
	struct map_entry **pp = &m->slots[h & (m->nslots - 1)];
	while (*pp) {
		if ((*pp)->hash == h && (*pp)->keylen == keylen && memcmp((*pp)->key, key, keylen) == 0)
			return pp;
		pp = &(*pp)->next;
	}
	return pp;
}

void *gh_map_get(const struct gh_map *m, const char *key, size_t keylen)
{
	struct map_entry **pp = map_find(m, key, keylen, map_hash(key, keylen));
	return *pp ? (*pp)->value : NULL;
}

static void map_grow(struct gh_map *m)
{
	size_t n = m->nslots * 2;
	struct map_entry **s = calloc(n, sizeof *s);
	if (!s)
		return; /* stays correct, only slower */
	for (size_t i = 0; i < m->nslots; i++) {
		struct map_entry *e = m->slots[i];
		while (e) {
			struct map_entry *next = e->next;
			e->next = s[e->hash & (n - 1)];
			s[e->hash & (n - 1)] = e;
			e = next;
		}
	}
	free(m->slots);
	m->slots = s;
	m->nslots = n;
}

int gh_map_put(struct gh_map *m, const char *key, size_t keylen, void *value)
{
	uint64_t h = map_hash(key, keylen);
	struct map_entry **pp = map_find(m, key, keylen, h);
	if (*pp) {
		if (m->free_value && (*pp)->value != value)
			m->free_value((*pp)->value);
		(*pp)->value = value;
		return 0;
	}
	struct map_entry *e = malloc(sizeof *e + keylen + 1);
	if (!e)
		return GH_ENOMEM;
	e->next = NULL;
	e->hash = h;
	e->keylen = keylen;
	e->value = value;
	memcpy(e->key, key, keylen);
	e->key[keylen] = '\0';
	*pp = e;
	if (++m->count > m->nslots)
		map_grow(m);
	return 0;
}

int gh_map_del(struct gh_map *m, const char *key, size_t keylen)
{
	struct map_entry **pp = map_find(m, key, keylen, map_hash(key, keylen));
	if (!*pp)
		return GH_ENOTFOUND;
	struct map_entry *e = *pp;
	*pp = e->next;
	if (m->free_value)
		m->free_value(e->value);
	free(e);
	m->count--;
	return 0;
}

size_t gh_map_count(const struct gh_map *m)
{
	return m->count;
}

void gh_map_each(const struct gh_map *m, int (*fn)(const char *, size_t, void *, void *), void *arg)
{
	for (size_t i = 0; i < m->nslots; i++)
		for (struct map_entry *e = m->slots[i]; e; e = e->next)
			if (fn(e->key, e->keylen, e->value, arg))
				return;
}
