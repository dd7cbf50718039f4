/* scan: Hyperscan, loaded when the secrets pass starts rather than at start-up. libhs is C++:
 * linking it loads libstdc++ and makes every gatehouse command resolve its symbols before
 * main (see connector/pq_dl.h). Include this instead of <hs.h>; gh_secrets_new calls
 * gh_hs_load before anything else of Hyperscan is used. */
#ifndef GH_SCAN_HS_DL_H
#define GH_SCAN_HS_DL_H

#include <hs.h>

#include "core/core.h"

#define GH_HS_FUNCS(X)                                                                                    \
	X(hs_alloc_scratch) X(hs_compile_multi) X(hs_free_compile_error) X(hs_free_database) X(hs_free_scratch) \
	X(hs_scan)

struct gh_hs_api {
#define GH_HS_MEMBER(f) __typeof__(&f) f;
	GH_HS_FUNCS(GH_HS_MEMBER)
#undef GH_HS_MEMBER
};
extern struct gh_hs_api gh_hs;

/* Loads libhs once (thread-safe). 0, or an error with the reason. */
int gh_hs_load(struct gh_error *err);

/* the loader defines GH_HS_DL_LOADER: it names the real functions */
#ifndef GH_HS_DL_LOADER
#define hs_alloc_scratch gh_hs.hs_alloc_scratch
#define hs_compile_multi gh_hs.hs_compile_multi
#define hs_free_compile_error gh_hs.hs_free_compile_error
#define hs_free_database gh_hs.hs_free_database
#define hs_free_scratch gh_hs.hs_free_scratch
#define hs_scan gh_hs.hs_scan
#endif

#endif
