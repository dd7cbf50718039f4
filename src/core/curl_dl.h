/* core: libcurl, loaded at first use rather than at start-up (see connector/pq_dl.h for why:
 * libcurl and what it links cost every command ~9 ms before main). Include this instead of
 * <curl/curl.h>; call gh_curl_load first, which also runs curl_global_init once. Calling a
 * curl_* function before gh_curl_load succeeded is a bug. */
#ifndef GH_CORE_CURL_DL_H
#define GH_CORE_CURL_DL_H

/* the type-checking macros of curl.h would hide the functions behind macros of their own */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
/* and curl.h wraps these two in argument-count macros */
#undef curl_easy_setopt
#undef curl_easy_getinfo

#include "core/core.h"

#define GH_CURL_FUNCS(X)                                                                                  \
	X(curl_easy_cleanup) X(curl_easy_getinfo) X(curl_easy_init) X(curl_easy_perform) X(curl_easy_setopt) \
	X(curl_easy_strerror) X(curl_global_init) X(curl_multi_add_handle) X(curl_multi_cleanup)             \
	X(curl_multi_info_read) X(curl_multi_init) X(curl_multi_perform) X(curl_multi_poll)                  \
	X(curl_multi_remove_handle) X(curl_slist_append) X(curl_slist_free_all)

struct gh_curl_api {
#define GH_CURL_MEMBER(f) __typeof__(&f) f;
	GH_CURL_FUNCS(GH_CURL_MEMBER)
#undef GH_CURL_MEMBER
};
extern struct gh_curl_api gh_curl;

/* Loads libcurl and initialises it, once (thread-safe). 0, or an error with the reason. */
int gh_curl_load(struct gh_error *err);

/* the loader defines GH_CURL_DL_LOADER: it names the real functions */
#ifndef GH_CURL_DL_LOADER
#define curl_easy_cleanup gh_curl.curl_easy_cleanup
#define curl_easy_getinfo gh_curl.curl_easy_getinfo
#define curl_easy_init gh_curl.curl_easy_init
#define curl_easy_perform gh_curl.curl_easy_perform
#define curl_easy_setopt gh_curl.curl_easy_setopt
#define curl_easy_strerror gh_curl.curl_easy_strerror
#define curl_global_init gh_curl.curl_global_init
#define curl_multi_add_handle gh_curl.curl_multi_add_handle
#define curl_multi_cleanup gh_curl.curl_multi_cleanup
#define curl_multi_info_read gh_curl.curl_multi_info_read
#define curl_multi_init gh_curl.curl_multi_init
#define curl_multi_perform gh_curl.curl_multi_perform
#define curl_multi_poll gh_curl.curl_multi_poll
#define curl_multi_remove_handle gh_curl.curl_multi_remove_handle
#define curl_slist_append gh_curl.curl_slist_append
#define curl_slist_free_all gh_curl.curl_slist_free_all

#endif

#endif
