/* front: loads OpenSSL and libevent's OpenSSL filter at first use (see tls_dl.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define GH_TLS_DL_LOADER
#include "front/tls_dl.h"

struct gh_tls_api gh_tls;

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static char tls_why[200];

static void *open_lib(const char *name)
{
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(tls_why, sizeof tls_why, "TLS: %s could not be loaded: %s", name, e ? e : "unknown error");
	}
	return h;
}

static void tls_load_once(void)
{
	void *ssl = open_lib("libssl.so.3");
	void *evssl = ssl ? open_lib("libevent_openssl-2.1.so.7") : NULL;
	if (!evssl)
		return;
	struct gh_tls_api api;
#define GH_TLS_RESOLVE(h, f)                                                      \
	if (!(api.f = (__typeof__(api.f))dlsym(h, #f))) {                           \
		snprintf(tls_why, sizeof tls_why, "TLS: no %s in its library", #f); \
		return;                                                             \
	}
#define GH_TLS_FROM_SSL(f) GH_TLS_RESOLVE(ssl, f)
#define GH_TLS_FROM_EVSSL(f) GH_TLS_RESOLVE(evssl, f)
	GH_SSL_FUNCS(GH_TLS_FROM_SSL)
	GH_EVSSL_FUNCS(GH_TLS_FROM_EVSSL)
#undef GH_TLS_FROM_SSL
#undef GH_TLS_FROM_EVSSL
#undef GH_TLS_RESOLVE
	gh_tls = api;
}

int gh_tls_load(struct gh_error *err)
{
	pthread_once(&tls_once, tls_load_once);
	if (tls_why[0])
		return gh_error_set(err, GH_EINTERNAL, "%s", tls_why);
	return 0;
}
