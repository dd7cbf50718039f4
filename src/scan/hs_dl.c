/* scan: loads Hyperscan at first use (see hs_dl.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define GH_HS_DL_LOADER
#include "scan/hs_dl.h"

struct gh_hs_api gh_hs;

static pthread_once_t hs_once = PTHREAD_ONCE_INIT;
static char hs_why[200];

static void hs_load_once(void)
{
	void *h = dlopen("libhs.so.5", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(hs_why, sizeof hs_why, "Hyperscan (libhs) could not be loaded: %s", e ? e : "unknown error");
		return;
	}
	struct gh_hs_api api;
#define GH_HS_RESOLVE(f)                                                \
	if (!(api.f = (__typeof__(api.f))dlsym(h, #f))) {                 \
		snprintf(hs_why, sizeof hs_why, "libhs has no %s", #f); \
		return;                                                   \
	}
	GH_HS_FUNCS(GH_HS_RESOLVE)
#undef GH_HS_RESOLVE
	gh_hs = api;
}

int gh_hs_load(struct gh_error *err)
{
	pthread_once(&hs_once, hs_load_once);
	if (hs_why[0])
		return gh_error_set(err, GH_EINTERNAL, "%s", hs_why);
	return 0;
}
