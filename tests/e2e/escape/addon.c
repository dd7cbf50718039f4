/* A native Node addon for the escape tests (tests/e2e/test_run_escape.py): what a malicious npm
 * package could ship in node_modules. Node has no API for raw sockets, ptrace, mount or
 * unshare; native code has the system calls themselves. Built by the test into the app
 * directory and loaded inside `gatehouse run`.
 *   sys(name, ...args) -> the call's result, or -errno. String arguments are passed as
 *   pointers to NUL-terminated copies, numbers as longs, null/undefined as 0.
 *   "clone" is a fork-like clone(flags|SIGCHLD) whose child exits at once (0 if it ran). */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif

static const struct {
	const char *name;
	long nr;
} calls[] = {
	{"ptrace", SYS_ptrace},   {"mount", SYS_mount},		{"umount2", SYS_umount2},
	{"unshare", SYS_unshare}, {"setns", SYS_setns},		{"socket", SYS_socket},
	{"setuid", SYS_setuid},	  {"setresuid", SYS_setresuid}, {"chroot", SYS_chroot},
	{"pivot_root", SYS_pivot_root}, {"clone3", SYS_clone3}, {"process_vm_readv", SYS_process_vm_readv},
	{"fsopen", SYS_fsopen},	  {"open_tree", SYS_open_tree}, {"kill", SYS_kill},
	{"bpf", SYS_bpf},	  {"keyctl", SYS_keyctl},	{"perf_event_open", SYS_perf_event_open},
	{"init_module", SYS_init_module}, {"getpid", SYS_getpid}, {"close", SYS_close},
};

#define MAXARGS 6
static char strs[MAXARGS][4096];

static napi_value do_sys(napi_env env, napi_callback_info info)
{
	size_t argc = MAXARGS + 1;
	napi_value argv[MAXARGS + 1];
	napi_value out;
	char name[64] = "";
	size_t n = 0;
	long a[MAXARGS] = {0};
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
	    napi_get_value_string_utf8(env, argv[0], name, sizeof name, &n) != napi_ok)
		return NULL;
	for (size_t i = 1; i < argc && i <= MAXARGS; i++) {
		napi_valuetype t;
		napi_typeof(env, argv[i], &t);
		if (t == napi_string) {
			napi_get_value_string_utf8(env, argv[i], strs[i - 1], sizeof strs[i - 1], &n);
			a[i - 1] = (long)(intptr_t)strs[i - 1];
		} else if (t == napi_number) {
			int64_t v = 0;
			napi_get_value_int64(env, argv[i], &v);
			a[i - 1] = (long)v;
		}
	}
	long r;
	if (strcmp(name, "clone") == 0) {
		errno = 0;
		r = syscall(SYS_clone, a[0] | SIGCHLD, 0, 0, 0, 0);
		if (r == 0)
			_exit(0);
		if (r > 0)
			waitpid((pid_t)r, NULL, 0);
		r = r < 0 ? -errno : 0;
	} else {
		long nr = -1;
		for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
			if (strcmp(calls[i].name, name) == 0)
				nr = calls[i].nr;
		if (nr < 0) {
			napi_throw_error(env, NULL, "unknown call");
			return NULL;
		}
		errno = 0;
		r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		if (r < 0)
			r = -errno;
	}
	napi_create_int64(env, r, &out);
	return out;
}

NAPI_MODULE_INIT()
{
	napi_value fn;
	napi_create_function(env, "sys", NAPI_AUTO_LENGTH, do_sys, NULL, &fn);
	napi_set_named_property(env, exports, "sys", fn);
	return exports;
}
