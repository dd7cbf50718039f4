/* sandbox: `gatehouse run` — an app's backend code in a sandbox whose only road to data is
 * Gatehouse. Independent of the data path (core and config only). Linux primitives only:
 * user, PID, mount, network, IPC, UTS and cgroup namespaces; a minimal root; no_new_privs; a
 * seccomp filter (libseccomp); rlimits; memory limited by a cgroup (v2 or v1) where one is
 * writable, else RLIMIT_AS; the whole PID namespace killed at the wall-clock timeout.
 *   sandbox.c  the namespaces, root, limits and the child's life
 *   proxy.c    the egress proxy outside the sandbox: the only way out of its network
 *              namespace, to the gateway and to allowed origins */
#ifndef GH_SANDBOX_H
#define GH_SANDBOX_H

#include <stdint.h>
#include <sys/types.h>

#include "core/core.h"

/* Exit statuses besides the child's own. */
#define GH_SANDBOX_EXIT_TIMEOUT 124
#define GH_SANDBOX_EXIT_OOM 137

/* How the child reaches the outside: inside the sandbox, listeners on 127.0.0.1 (its own
 * loopback) whose accepted connections are passed (SCM_RIGHTS) over `egress_fd`, a connected
 * AF_UNIX SOCK_SEQPACKET socket, to the proxy outside. Each message: one tag byte
 * (GH_SANDBOX_TAG_GATEWAY or _PROXY) with the accepted socket as its one fd. */
#define GH_SANDBOX_TAG_GATEWAY 'G'
#define GH_SANDBOX_TAG_PROXY 'P'

struct gh_sandbox_opts {
	const char *const *argv;   /* the command; argv[0] resolved with PATH inside */
	const char *app_dir;       /* bound read-only at /app and the working directory; NULL: none */
	const char *const *env;    /* the child's whole environment ("NAME=value"), NULL-terminated */
	int64_t memory_bytes;      /* default 256 MiB */
	int64_t cpu_seconds;       /* RLIMIT_CPU; default 10 */
	int64_t timeout_ms;        /* wall clock; default 30 s */
	int64_t tmp_bytes;         /* size of the private /tmp; default 64 MiB */
	int64_t output_bytes;      /* stdout and stderr each pass through up to this; default 8 MiB */
	int egress_fd;             /* see above; -1: no network at all (loopback only) */
	uint16_t gateway_port;     /* inside: 127.0.0.1:gateway_port leads to the gateway */
	uint16_t proxy_port;       /* inside: 127.0.0.1:proxy_port is the HTTP(S) proxy */
	const char *const *extra_ro; /* more host paths to bind read-only (the interpreter's), NULL-terminated */
};

struct gh_sandbox_result {
	int status;                /* the child's exit status, or 124 / 137, or 128+signal */
	char reason[200];          /* one line when the sandbox ended it ("timeout after 30 s") */
	char memory_limit_by[32];  /* "cgroup v2", "cgroup v1" or "RLIMIT_AS" */
};

/* Optional, at the start of a run: lets the kernel's wait before a first cgroup move overlap
 * the caller's other start-up work (a detached thread; harmless where there is no cgroup). */
void gh_sandbox_prewarm(void);
/* Whether this machine can provide every mechanism; when not, why (the run must refuse). */
int gh_sandbox_check(char *why, size_t whylen);
/* Runs the command in the sandbox and waits for it. Returns non-zero (err) only when the
 * sandbox could not be built: nothing ran unprotected. */
int gh_sandbox_run(const struct gh_sandbox_opts *o, struct gh_sandbox_result *res, struct gh_error *err);

/* ---- the egress proxy (proxy.c) ---- */
struct gh_proxy;
/* One egress event, for the audit trail: the destination, bytes each way, allowed or not. */
struct gh_egress_event {
	const char *dest;          /* "https://host:port" or "http://host:port" */
	bool allowed, gateway;
	uint64_t bytes_out, bytes_in;
	const char *reason;        /* why it was refused, or NULL */
};
typedef void (*gh_egress_fn)(void *arg, const struct gh_egress_event *ev);
/* Serves the sandbox's egress on egress_fd (the other end of the SEQPACKET socket) in its own
 * thread: gateway connections go to gateway_host:gateway_port; proxy connections carry HTTP
 * proxy requests (absolute-form http:// and CONNECT host:port) and reach only the allowed
 * origins ("https://host[:port]", "http://host[:port]"); everything else, by name or by raw
 * IP, is refused (403) and reported. on_event is called from the proxy's threads. */
int gh_proxy_start(int egress_fd, const char *gateway_host, uint16_t gateway_port, const char *const *origins,
		   size_t norigins, gh_egress_fn on_event, void *arg, struct gh_proxy **out, struct gh_error *err);
/* Stops serving and joins its threads. */
void gh_proxy_stop(struct gh_proxy *p);

#endif
