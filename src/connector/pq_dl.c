/* connector: loads libpq at first use (see pq_dl.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define GH_PQ_DL_LOADER
#include "connector/pq_dl.h"

struct gh_pq_api gh_pq;

static pthread_once_t pq_once = PTHREAD_ONCE_INIT;
static char pq_why[200];

static void pq_load_once(void)
{
	void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(pq_why, sizeof pq_why, "libpq could not be loaded: %s", e ? e : "unknown error");
		return;
	}
	struct gh_pq_api api;
#define GH_PQ_RESOLVE(f)                                                                         \
	if (!(api.f = (__typeof__(api.f))dlsym(h, #f))) {                                        \
		snprintf(pq_why, sizeof pq_why, "libpq has no %s (PostgreSQL 14 or later needed)", #f); \
		return;                                                                          \
	}
	GH_PQ_FUNCS(GH_PQ_RESOLVE)
#undef GH_PQ_RESOLVE
	gh_pq = api;
}

int gh_pq_load(struct gh_error *err)
{
	pthread_once(&pq_once, pq_load_once);
	if (pq_why[0])
		return gh_error_set(err, GH_EINTERNAL, "%s", pq_why);
	return 0;
}
