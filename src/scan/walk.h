/* scan: the file tree (walk.c). Internal to the scan module. */
#ifndef GH_SCAN_WALK_H
#define GH_SCAN_WALK_H

#include "core/core.h"

struct gh_walk {
	/* in */
	const char *root;          /* a directory, or one file */
	bool use_gitignore;        /* honour .gitignore files (default) */
	int64_t max_file;          /* bytes; larger files are skipped */
	void (*on_error)(void *arg, const char *rel, const char *what); /* unreadable entries */
	void *arg;
	/* out */
	char **files;              /* relative paths, '/'-separated */
	size_t nfiles, cap;
	size_t ignored;            /* entries left out by .gitignore */
	bool single;               /* root is one file */
};

/* Collects the files to scan (never .git or node_modules, nor symbolic links). Unreadable
 * directories are reported through on_error and skipped. */
int gh_walk_collect(struct gh_walk *w, struct gh_error *err);
void gh_walk_free(struct gh_walk *w);

struct gh_mapped {
	const uint8_t *data;
	size_t len;
	const char *skipped;       /* why the file is not scanned (binary, too large, empty); NULL to scan */
};
/* Maps one collected file read-only. Errors (GH_EIO...) leave why filled. */
int gh_walk_map(const struct gh_walk *w, const char *rel, struct gh_mapped *m, char *why, size_t whylen);
void gh_walk_unmap(struct gh_mapped *m);

#endif
