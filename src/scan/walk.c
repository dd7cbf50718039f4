/* scan: the file tree. Collects the files under a root that a scan reads: .git and
 * node_modules never; .gitignore'd paths unless asked; then each file is read through mmap
 * by a pool of threads (one per core). Binary files (a NUL byte in the first 8 KiB) and files
 * over the size limit are skipped and counted. */
#include "scan/walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define WALK_MAX_DEPTH 64
#define WALK_MAX_FILES 2000000

/* One .gitignore rule, relative to the directory that holds the file. */
struct ignore_rule {
	char *pattern;   /* without leading '!' and trailing '/' */
	bool negate, dir_only, anchored;
};

struct ignore_set {
	struct ignore_set *up;
	char *base;      /* the directory (relative to the root, "" for the root) */
	struct ignore_rule *rules;
	size_t n;
};

static void ignore_free(struct ignore_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->rules[i].pattern);
	free(s->rules);
	free(s->base);
	free(s);
}

/* Reads DIR/.gitignore (facts of the format from git's documentation: blank lines and '#'
 * comments ignored, '!' negates, a trailing '/' matches directories only, a '/' at the start
 * or in the middle anchors the pattern to the .gitignore's directory, '**' spans directories). */
static struct ignore_set *ignore_load(const char *abs_dir, const char *rel_dir, struct ignore_set *up)
{
	char path[4096];
	if (snprintf(path, sizeof path, "%s/.gitignore", abs_dir) >= (int)sizeof path)
		return up;
	FILE *f = fopen(path, "r");
	if (!f)
		return up;
	struct ignore_set *s = calloc(1, sizeof *s);
	if (!s || !(s->base = gh_strdup(rel_dir))) {
		free(s);
		fclose(f);
		return up;
	}
	s->up = up;
	char line[4096];
	size_t cap = 0;
	while (fgets(line, sizeof line, f)) {
		size_t n = strcspn(line, "\r\n");
		line[n] = '\0';
		while (n && line[n - 1] == ' ' && (n < 2 || line[n - 2] != '\\'))
			line[--n] = '\0';
		if (!n || line[0] == '#')
			continue;
		struct ignore_rule r = {0};
		char *p = line;
		if (*p == '!') {
			r.negate = true;
			p++;
		} else if (*p == '\\') {
			p++;
		}
		size_t len = strlen(p);
		if (len && p[len - 1] == '/') {
			r.dir_only = true;
			p[--len] = '\0';
		}
		if (*p == '/') {
			r.anchored = true;
			p++;
		} else if (strchr(p, '/')) {
			r.anchored = true;
		}
		if (!*p)
			continue;
		if (s->n == cap) {
			cap = cap ? cap * 2 : 16;
			struct ignore_rule *v = realloc(s->rules, cap * sizeof *v);
			if (!v)
				break;
			s->rules = v;
		}
		if (!(r.pattern = gh_strdup(p)))
			break;
		s->rules[s->n++] = r;
	}
	fclose(f);
	return s;
}

/* Matches a pattern with '**' segments against a '/'-separated path. */
static bool glob_match(const char *pat, const char *path)
{
	const char *dd = strstr(pat, "**");
	if (!dd)
		return fnmatch(pat, path, FNM_PATHNAME | FNM_PERIOD) == 0 || fnmatch(pat, path, FNM_PATHNAME) == 0;
	/* "a/STARSTAR/b": try the rest of the pattern at every '/' boundary of path */
	size_t pre = (size_t)(dd - pat);
	char head[1024];
	if (pre >= sizeof head)
		return false;
	memcpy(head, pat, pre);
	head[pre] = '\0';
	const char *rest = dd + 2;
	if (*rest == '/')
		rest++;
	size_t hl = strlen(head);
	if (hl && head[hl - 1] == '/')
		head[--hl] = '\0';
	if (hl) {
		/* the head must match a leading part of path ending at a '/' */
		for (const char *q = path; *q; q++) {
			if (*q != '/')
				continue;
			char part[1024];
			size_t k = (size_t)(q - path);
			if (k >= sizeof part)
				return false;
			memcpy(part, path, k);
			part[k] = '\0';
			if (fnmatch(head, part, FNM_PATHNAME) == 0) {
				const char *tail = q + 1;
				if (!*rest)
					return true;
				for (const char *t = tail;; t++) {
					if (glob_match(rest, t))
						return true;
					t = strchr(t, '/');
					if (!t)
						break;
				}
			}
		}
		return false;
	}
	if (!*rest)
		return true;
	for (const char *t = path;; t++) {
		if (glob_match(rest, t))
			return true;
		t = strchr(t, '/');
		if (!t)
			return false;
	}
}

/* True when rel (relative to the root) is ignored by the sets in force. Later rules and
 * deeper files win, as in git. */
static bool ignored(const struct ignore_set *s, const char *rel, bool is_dir)
{
	int verdict = -1; /* -1 undecided, 0 keep, 1 ignore */
	for (; s && verdict < 0; s = s->up) {
		size_t bl = strlen(s->base);
		if (bl && (strncmp(rel, s->base, bl) != 0 || rel[bl] != '/'))
			continue;
		const char *sub = bl ? rel + bl + 1 : rel;
		const char *name = strrchr(sub, '/');
		name = name ? name + 1 : sub;
		for (size_t i = s->n; i-- > 0;) {
			const struct ignore_rule *r = &s->rules[i];
			if (r->dir_only && !is_dir)
				continue;
			bool m = r->anchored ? glob_match(r->pattern, sub) : glob_match(r->pattern, name);
			if (m) {
				verdict = r->negate ? 0 : 1;
				break;
			}
		}
	}
	return verdict == 1;
}

static int add_file(struct gh_walk *w, const char *rel)
{
	if (w->nfiles >= WALK_MAX_FILES)
		return GH_ETOOBIG;
	if (w->nfiles == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		char **v = realloc(w->files, cap * sizeof *v);
		if (!v)
			return GH_ENOMEM;
		w->files = v;
		w->cap = cap;
	}
	if (!(w->files[w->nfiles] = gh_strdup(rel)))
		return GH_ENOMEM;
	w->nfiles++;
	return 0;
}

static void note_error(struct gh_walk *w, const char *rel, const char *what)
{
	if (w->on_error)
		w->on_error(w->arg, rel, what);
}

static int walk_dir(struct gh_walk *w, const char *rel, struct ignore_set *up, int depth)
{
	char abs[4096];
	if (snprintf(abs, sizeof abs, "%s%s%s", w->root, *rel ? "/" : "", rel) >= (int)sizeof abs) {
		note_error(w, rel, "path too long");
		return 0;
	}
	if (depth > WALK_MAX_DEPTH) {
		note_error(w, rel, "directory nesting too deep; not scanned");
		return 0;
	}
	struct ignore_set *set = w->use_gitignore ? ignore_load(abs, rel, up) : up;
	DIR *d = opendir(abs);
	if (!d) {
		note_error(w, rel, strerror(errno));
		if (set != up)
			ignore_free(set);
		return 0;
	}
	int rc = 0;
	struct dirent *e;
	while (!rc && (e = readdir(d))) {
		const char *n = e->d_name;
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strcmp(n, ".git") == 0 || strcmp(n, "node_modules") == 0)
			continue;
		char child[4096];
		if (snprintf(child, sizeof child, "%s%s%s", rel, *rel ? "/" : "", n) >= (int)sizeof child) {
			note_error(w, rel, "path too long");
			continue;
		}
		struct stat st;
		char cabs[4096 + 256];
		if (snprintf(cabs, sizeof cabs, "%s/%s", abs, n) >= (int)sizeof cabs)
			continue;
		if (lstat(cabs, &st) != 0) {
			note_error(w, child, strerror(errno));
			continue;
		}
		if (S_ISLNK(st.st_mode))
			continue; /* symbolic links are not followed: they may leave the tree */
		bool is_dir = S_ISDIR(st.st_mode);
		if (set && ignored(set, child, is_dir)) {
			w->ignored++;
			continue;
		}
		if (is_dir)
			rc = walk_dir(w, child, set, depth + 1);
		else if (S_ISREG(st.st_mode))
			rc = add_file(w, child);
	}
	closedir(d);
	if (set != up)
		ignore_free(set);
	return rc;
}

int gh_walk_collect(struct gh_walk *w, struct gh_error *err)
{
	struct stat st;
	if (stat(w->root, &st) != 0)
		return gh_error_set(err, GH_EIO, "%s: %s", w->root, strerror(errno));
	if (S_ISREG(st.st_mode)) {
		/* a single file: the root is its directory */
		const char *slash = strrchr(w->root, '/');
		int rc = add_file(w, slash ? slash + 1 : w->root);
		if (rc)
			return gh_error_set(err, rc, "out of memory");
		w->single = true;
		return 0;
	}
	if (!S_ISDIR(st.st_mode))
		return gh_error_set(err, GH_EINVAL, "%s: not a file or directory", w->root);
	int rc = walk_dir(w, "", NULL, 0);
	if (rc == GH_ETOOBIG)
		return gh_error_set(err, rc, "%s: more than %d files", w->root, WALK_MAX_FILES);
	if (rc)
		return gh_error_set(err, rc, "out of memory");
	return 0;
}

/* Opens one file read-only and maps it. Returns 0 (skip set when it must not be scanned). */
int gh_walk_map(const struct gh_walk *w, const char *rel, struct gh_mapped *m, char *why, size_t whylen)
{
	memset(m, 0, sizeof *m);
	char abs[4096];
	if (w->single)
		snprintf(abs, sizeof abs, "%s", w->root);
	else if (snprintf(abs, sizeof abs, "%s/%s", w->root, rel) >= (int)sizeof abs) {
		snprintf(why, whylen, "path too long");
		return GH_ETOOBIG;
	}
	int fd = open(abs, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		snprintf(why, whylen, "cannot open: %s", strerror(errno));
		return GH_EIO;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		close(fd);
		return GH_EIO;
	}
	if (st.st_size > w->max_file) {
		m->skipped = "larger than the size limit";
		close(fd);
		return 0;
	}
	if (st.st_size == 0) {
		close(fd);
		m->skipped = "empty";
		return 0;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		snprintf(why, whylen, "cannot map: %s", strerror(errno));
		return GH_EIO;
	}
	m->data = p;
	m->len = (size_t)st.st_size;
	size_t probe = m->len < 8192 ? m->len : 8192;
	if (memchr(m->data, '\0', probe))
		m->skipped = "binary";
	return 0;
}

void gh_walk_unmap(struct gh_mapped *m)
{
	if (m->data)
		munmap((void *)(uintptr_t)m->data, m->len);
	memset(m, 0, sizeof *m);
}

void gh_walk_free(struct gh_walk *w)
{
	for (size_t i = 0; i < w->nfiles; i++)
		free(w->files[i]);
	free(w->files);
	w->files = NULL;
	w->nfiles = w->cap = 0;
}
