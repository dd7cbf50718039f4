/* fuzz: PostgreSQL statement analysis (sql, libpg_query). Each input is analysed as one text of
 * any number of statements; nothing is executed and no server is needed. Checks the contract's
 * invariants: a class in range, a reason exactly for refusals, statement spans inside the text,
 * a fingerprint of 16 hex digits or none, tables with bounded column lists, and (under LeakSanitizer) that unref frees it all. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const struct gh_sql_analysis *a)
{
	fprintf(stderr, "fuzz_pg_sql: %s (class %d, reason '%s')\n", what, (int)a->cls, a->reason);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gh_sql_analysis *a = NULL;
	/* a copy of exactly size bytes: ASan catches any read past the end */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	int rc = gh_sql_analyze_pg(text, size, &a);
	if (rc != 0) {
		free(text);
		if (rc != GH_ENOMEM || a)
			abort();
		return 0;
	}
	if (!a || a->refs != 1)
		abort();
	if (!memchr(a->reason, 0, sizeof a->reason))
		fail("reason not terminated", a);
	switch (a->cls) {
	case GH_SQL_READ: case GH_SQL_WRITE: case GH_SQL_DDL: case GH_SQL_SESSION:
		if (a->reason[0])
			fail("reason on an allowed class", a);
		if (a->nstmts == 0)
			fail("allowed text without statements", a);
		break;
	case GH_SQL_DESTRUCTIVE: case GH_SQL_FORBIDDEN:
		if (!a->reason[0])
			fail("refusal without a reason", a);
		break;
	default:
		fail("class out of range", a);
	}
	if (a->fingerprint[0] && (strlen(a->fingerprint) != 16 || strspn(a->fingerprint, "0123456789abcdef") != 16))
		fail("fingerprint not 16 hex digits", a);
	if (a->ntables > GH_SQL_MAX_NAMES || a->nfunctions > GH_SQL_MAX_NAMES || a->nparams < 0)
		fail("counts out of range", a);
	for (size_t i = 0; i < a->ntables; i++) {
		const struct gh_sql_table *t = &a->tables[i];
		if (!t->name || !t->name[0] || (!t->read && !t->written) || !t->direct)
			fail("bad table entry", a);
		if (t->ncolumns > GH_SQL_MAX_NAMES || (t->ncolumns && !t->columns))
			fail("column count out of range", a);
		for (size_t j = 0; j < t->ncolumns; j++)
			if (!t->columns[j])
				fail("bad column entry", a);
	}
	for (size_t i = 0; i < a->nfunctions; i++)
		if (!a->functions[i] || !a->functions[i][0])
			fail("bad function entry", a);
	bool destructive = false;
	enum gh_sql_class worst = GH_SQL_READ;
	static const int rank[] = {
		[GH_SQL_READ] = 0, [GH_SQL_SESSION] = 1, [GH_SQL_WRITE] = 2,
		[GH_SQL_DDL] = 3, [GH_SQL_FORBIDDEN] = 4, [GH_SQL_DESTRUCTIVE] = 5,
	};
	for (size_t i = 0; i < a->nstmts; i++) {
		const struct gh_sql_stmt *s = &a->stmts[i];
		if ((unsigned)s->cls > GH_SQL_SESSION)
			fail("statement class out of range", a);
		if (s->offset > size || s->len > size - s->offset)
			fail("statement span outside the text", a);
		if (i > 0 && s->offset < a->stmts[i - 1].offset + a->stmts[i - 1].len)
			fail("statement spans overlap", a);
		if ((s->cls == GH_SQL_SESSION) != (s->session != GH_SESSION_NONE))
			fail("session kind without session class (or the reverse)", a);
		if (s->set_local && s->session != GH_SESSION_SET)
			fail("set_local on a statement that is no SET", a);
		if (s->begin_read_only && s->session != GH_SESSION_BEGIN)
			fail("begin_read_only on a statement that is no BEGIN", a);
		destructive |= s->cls == GH_SQL_DESTRUCTIVE;
		if (rank[s->cls] > rank[worst])
			worst = s->cls;
	}
	if (a->nstmts && a->cls != worst)
		fail("text class is not its most severe statement's", a);
	if (destructive && a->cls != GH_SQL_DESTRUCTIVE)
		fail("destructive statement in a text that is not", a);
	/* the analysis does not depend on bytes after len, nor on repetition */
	struct gh_sql_analysis *b = NULL;
	if (gh_sql_analyze_pg(text, size, &b) == 0) {
		if (b->cls != a->cls || strcmp(b->reason, a->reason) != 0 || b->nstmts != a->nstmts ||
		    strcmp(b->fingerprint, a->fingerprint) != 0 || b->ntables != a->ntables ||
		    b->sets_search_path != a->sets_search_path)
			fail("a second analysis of the same text differs", a);
		gh_sql_analysis_ref(b);
		gh_sql_analysis_unref(b);
		gh_sql_analysis_unref(b);
	}
	gh_sql_analysis_unref(a);
	free(text);
	return 0;
}
