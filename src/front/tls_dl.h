/* front: OpenSSL and libevent's OpenSSL filter, loaded when the wire front is given a TLS
 * certificate rather than at start-up: libcrypto's thousands of symbol bindings cost every
 * gatehouse command ~2 ms before main (see connector/pq_dl.h). Include this instead of the
 * OpenSSL and event2/bufferevent_ssl.h headers; gh_tls_load first. */
#ifndef GH_FRONT_TLS_DL_H
#define GH_FRONT_TLS_DL_H

#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "core/core.h"

#define GH_SSL_FUNCS(X)                                                                               \
	X(TLS_server_method) X(SSL_new) X(SSL_free) X(SSL_CTX_use_certificate_chain_file)               \
	X(SSL_CTX_use_PrivateKey_file) X(SSL_CTX_ctrl) X(SSL_CTX_new) X(SSL_CTX_free) X(SSL_CTX_check_private_key)
#define GH_EVSSL_FUNCS(X) X(bufferevent_openssl_filter_new)

struct gh_tls_api {
#define GH_TLS_MEMBER(f) __typeof__(&f) f;
	GH_SSL_FUNCS(GH_TLS_MEMBER)
	GH_EVSSL_FUNCS(GH_TLS_MEMBER)
#undef GH_TLS_MEMBER
};
extern struct gh_tls_api gh_tls;

/* Loads libssl and libevent_openssl once (thread-safe). 0, or an error with the reason. */
int gh_tls_load(struct gh_error *err);

/* the loader defines GH_TLS_DL_LOADER: it names the real functions */
#ifndef GH_TLS_DL_LOADER
#define TLS_server_method gh_tls.TLS_server_method
#define SSL_new gh_tls.SSL_new
#define SSL_free gh_tls.SSL_free
#define SSL_CTX_use_certificate_chain_file gh_tls.SSL_CTX_use_certificate_chain_file
#define SSL_CTX_use_PrivateKey_file gh_tls.SSL_CTX_use_PrivateKey_file
#define SSL_CTX_ctrl gh_tls.SSL_CTX_ctrl
#define SSL_CTX_new gh_tls.SSL_CTX_new
#define SSL_CTX_free gh_tls.SSL_CTX_free
#define SSL_CTX_check_private_key gh_tls.SSL_CTX_check_private_key
#define bufferevent_openssl_filter_new gh_tls.bufferevent_openssl_filter_new
#endif

#endif
