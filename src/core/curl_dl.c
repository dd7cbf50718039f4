/* core: loads libcurl at first use (see curl_dl.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define GH_CURL_DL_LOADER
#include "core/curl_dl.h"

struct gh_curl_api gh_curl;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static char curl_why[200];

static void curl_load_once(void)
{
	void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(curl_why, sizeof curl_why, "libcurl could not be loaded: %s", e ? e : "unknown error");
		return;
	}
	struct gh_curl_api api;
#define GH_CURL_RESOLVE(f)                                                                  \
	if (!(api.f = (__typeof__(api.f))dlsym(h, #f))) {                                   \
		snprintf(curl_why, sizeof curl_why, "libcurl has no %s (7.66 or later needed)", #f); \
		return;                                                                     \
	}
	GH_CURL_FUNCS(GH_CURL_RESOLVE)
#undef GH_CURL_RESOLVE
	if (api.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(curl_why, sizeof curl_why, "libcurl failed to initialise");
		return;
	}
	gh_curl = api;
}

int gh_curl_load(struct gh_error *err)
{
	pthread_once(&curl_once, curl_load_once);
	if (curl_why[0])
		return gh_error_set(err, GH_EINTERNAL, "%s", curl_why);
	return 0;
}
