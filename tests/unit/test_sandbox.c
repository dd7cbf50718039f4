/* Unit tests for src/sandbox: real commands (sh, python3, node) run through gh_sandbox_run, each
 * trying to break out or past a limit, and asserting what the attempt got. */
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "sandbox/sandbox.h"

#define CHECKED(...) (printf("  checked: " __VA_ARGS__), printf("\n"))

static const char *const base_env[] = {"PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", NULL};

struct run {
	struct gh_sandbox_result res;
	char out[65536], err[65536];
	size_t outlen, errlen;
	double secs;
};

static void opts_init(struct gh_sandbox_opts *o, const char *const *argv)
{
	memset(o, 0, sizeof *o);
	o->argv = argv;
	o->env = base_env;
	o->memory_bytes = 256LL << 20;
	o->cpu_seconds = 10;
	o->timeout_ms = 20000;
	o->tmp_bytes = 16LL << 20;
	o->output_bytes = 1 << 20;
	o->egress_fd = -1;
}

static size_t slurp(int fd, char *buf, size_t cap)
{
	lseek(fd, 0, SEEK_SET);
	size_t n = 0;
	ssize_t r;
	while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	close(fd);
	return n;
}

/* Runs o with this process's stdout/stderr captured; asserts the sandbox was built. */
static void run_opts(const struct gh_sandbox_opts *o, struct run *r)
{
	memset(r, 0, sizeof *r);
	fflush(stdout);
	fflush(stderr);
	int mo = memfd_create("out", MFD_CLOEXEC), me = memfd_create("err", MFD_CLOEXEC);
	assert_true(mo >= 0 && me >= 0);
	int so = dup(1), se = dup(2);
	dup2(mo, 1);
	dup2(me, 2);
	struct gh_error err;
	memset(&err, 0, sizeof err);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	int rc = gh_sandbox_run(o, &r->res, &err);
	clock_gettime(CLOCK_MONOTONIC, &b);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	r->secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	r->outlen = slurp(mo, r->out, sizeof r->out);
	r->errlen = slurp(me, r->err, sizeof r->err);
	if (rc != 0)
		printf("  sandbox error: %s\n", err.message);
	assert_int_equal(rc, 0);
	if (r->res.status != 0 && r->errlen)
		printf("  (child stderr: %.300s)\n", r->err);
}

static void run_sh(const char *script, struct run *r)
{
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	struct gh_sandbox_opts o;
	opts_init(&o, argv);
	run_opts(&o, r);
}

static void run_py(const char *code, struct run *r)
{
	const char *argv[] = {"/usr/bin/python3", "-c", code, NULL};
	struct gh_sandbox_opts o;
	opts_init(&o, argv);
	run_opts(&o, r);
}

static void test_check(void **state)
{
	char why[256];
	int rc = gh_sandbox_check(why, sizeof why);
	if (rc != 0)
		printf("  sandbox unavailable: %s\n", why);
	assert_int_equal(rc, 0);
	CHECKED("gh_sandbox_check: user/PID/mount/net/IPC/UTS/cgroup namespaces, proc and seccomp available");
}

/* Where namespaces cannot be created (here: refused by a seccomp filter on a forked test
 * process), the check says why and the run refuses: the command never runs. */
static void test_refuses_without_namespaces(void **state)
{
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	fflush(stdout);
	pid_t p = fork();
	assert_true(p >= 0);
	if (p == 0) {
		close(pfd[0]);
		char msg[400] = "filter";
		scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
		if (ctx && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 0) == 0 &&
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)) == 0 &&
		    seccomp_load(ctx) == 0) {
			char why[200];
			int c = gh_sandbox_check(why, sizeof why);
			const char *argv[] = {"/bin/sh", "-c", "echo RAN", NULL};
			struct gh_sandbox_opts o;
			opts_init(&o, argv);
			struct gh_sandbox_result res;
			struct gh_error err;
			memset(&err, 0, sizeof err);
			int rc = gh_sandbox_run(&o, &res, &err);
			snprintf(msg, sizeof msg, "%d %d|%.150s|%.150s", c, rc, why, err.message);
		}
		ssize_t w = write(pfd[1], msg, strlen(msg));
		(void)w;
		_exit(0);
	}
	close(pfd[1]);
	char buf[400] = {0};
	ssize_t n = read(pfd[0], buf, sizeof buf - 1);
	close(pfd[0]);
	waitpid(p, NULL, 0);
	assert_true(n > 0);
	printf("  refused: %s\n", buf);
	assert_int_equal(strncmp(buf, "-1 -6|cannot create", 19), 0);
	assert_non_null(strstr(buf, "sandbox unavailable on this machine"));
	CHECKED("without user namespaces: check fails with a reason, run refuses (GH_EDENIED), nothing ran");
}

static void test_status(void **state)
{
	struct run r;
	run_sh("exit 7", &r);
	assert_int_equal(r.res.status, 7);
	run_sh("kill -TERM $$", &r);
	assert_int_equal(r.res.status, 128 + SIGTERM);
	run_sh("echo out; echo err >&2", &r);
	assert_int_equal(r.res.status, 0);
	assert_string_equal(r.out, "out\n");
	assert_string_equal(r.err, "err\n");
	const char *argv[] = {"no-such-command", NULL};
	struct gh_sandbox_opts o;
	opts_init(&o, argv);
	run_opts(&o, &r);
	assert_int_equal(r.res.status, 127);
	CHECKED("exit 7 -> 7, SIGTERM -> 143, stdout/stderr pass through, a missing command -> 127");
}

static void test_env(void **state)
{
	const char *argv[] = {"env", NULL};
	const char *env[] = {"A=1", "PATH=/usr/bin:/bin", NULL};
	struct gh_sandbox_opts o;
	opts_init(&o, argv);
	o.env = env;
	struct run r;
	run_opts(&o, &r);
	assert_int_equal(r.res.status, 0);
	assert_string_equal(r.out, "A=1\nPATH=/usr/bin:/bin\n");
	CHECKED("the environment is exactly opts->env (argv[0] found with its PATH)");
}

static void test_identity(void **state)
{
	struct run r;
	run_sh("id -u; id -g; grep -E '^(NoNewPrivs|CapEff|CapBnd|Seccomp):' /proc/self/status; hostname", &r);
	assert_int_equal(r.res.status, 0);
	assert_non_null(strstr(r.out, "1000\n1000\n"));
	assert_non_null(strstr(r.out, "NoNewPrivs:\t1"));
	assert_non_null(strstr(r.out, "CapEff:\t0000000000000000"));
	assert_non_null(strstr(r.out, "CapBnd:\t0000000000000000"));
	assert_non_null(strstr(r.out, "Seccomp:\t2"));
	assert_non_null(strstr(r.out, "sandbox"));
	CHECKED("uid/gid 1000 inside, no capabilities, no_new_privs, seccomp filter on, own hostname");
}

static void test_filesystem(void **state)
{
	struct run r;
	run_sh("cat /etc/shadow 2>/dev/null && echo SHADOW; ls /root 2>/dev/null && echo ROOT;"
	       "ls /home 2>/dev/null && echo HOME; ls /var 2>/dev/null && echo VAR; ls /work 2>/dev/null && echo WORK;"
	       "grep -c . /etc/passwd; grep -q '^root:' /etc/passwd && echo HOSTPASSWD;"
	       "cat /etc/resolv.conf 2>/dev/null && echo RESOLV;"
	       "touch /usr/x 2>/dev/null && echo USR; touch /x 2>/dev/null && echo SLASH;"
	       "touch /etc/x 2>/dev/null && echo ETC; echo a > /dev/x 2>/dev/null && echo DEV;"
	       "echo ok > /tmp/y && cat /tmp/y; ls /dev | tr '\\n' ' '; echo; pwd",
	       &r);
	assert_int_equal(r.res.status, 0);
	const char *bad[] = {"SHADOW", "ROOT", "HOME", "VAR", "WORK", "HOSTPASSWD", "RESOLV", "USR", "SLASH", "ETC", "DEV"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (strstr(r.out, bad[i])) {
			printf("  escaped: %s\n%s\n", bad[i], r.out);
			fail();
		}
	assert_non_null(strstr(r.out, "2\nok\n"));
	assert_non_null(strstr(r.out, "fd null random stderr stdin stdout urandom zero \n/tmp\n"));
	CHECKED("no /etc/shadow, /root, /home, /var, /work, resolv.conf; our own 2-line passwd; /, /usr, /etc, /dev read-only; /tmp writable; /dev has only null zero random urandom + fd links; cwd /tmp");
}

static void test_tmp_limit(void **state)
{
	const char *argv[] = {"/bin/sh", "-c", "head -c 4000000 /dev/zero > /tmp/f; echo rc=$?; wc -c < /tmp/f", NULL};
	struct gh_sandbox_opts o;
	opts_init(&o, argv);
	o.tmp_bytes = 1 << 20;
	struct run r;
	run_opts(&o, &r);
	assert_int_equal(r.res.status, 0);
	const char *nl = strchr(r.out, '\n');
	assert_non_null(nl);
	long size = strtol(nl + 1, NULL, 10);
	assert_true(size <= (1 << 20));
	assert_null(strstr(r.out, "rc=0\n"));
	CHECKED("writing 4 MB into a 1 MiB /tmp fails (%ld bytes landed)", size);
}

static void test_processes(void **state)
{
	pid_t victim = fork();
	assert_true(victim >= 0);
	if (victim == 0) {
		alarm(20); /* never outlives a failed test for long */
		pause();
		_exit(0);
	}
	char script[256];
	snprintf(script, sizeof script,
		 "ls /proc | grep -c '^[0-9]'; cat /proc/1/cmdline | tr '\\0' ' '; echo;"
		 "kill -9 %d 2>/dev/null && echo KILLED; kill -9 1 2>/dev/null; echo alive;"
		 "ls /proc/1/fd >/dev/null 2>&1 && echo INITFD; cat /proc/1/environ >/dev/null 2>&1 && echo INITENV; true",
		 (int)victim);
	struct run r;
	run_sh(script, &r);
	bool lived = waitpid(victim, NULL, WNOHANG) == 0 && kill(victim, 0) == 0;
	kill(victim, SIGKILL);
	waitpid(victim, NULL, 0);
	assert_true(lived);
	assert_int_equal(r.res.status, 0);
	long n = strtol(r.out, NULL, 10);
	assert_true(n >= 1 && n <= 5);
	assert_null(strstr(r.out, "KILLED"));
	assert_non_null(strstr(r.out, "alive"));
	assert_null(strstr(r.out, "INITFD"));
	assert_null(strstr(r.out, "INITENV"));
	CHECKED("only %ld sandbox processes visible in /proc; kill -9 of a host pid fails and it lives; "
		"init survives kill -9 and its fds/environ are closed to the command", n);
}

static void test_fork_bomb(void **state)
{
	struct run r;
	run_py("import os,time,errno\n"
	       "n=0\n"
	       "try:\n"
	       "  while True:\n"
	       "    p=os.fork()\n"
	       "    if p==0:\n"
	       "      time.sleep(60); os._exit(0)\n"
	       "    n+=1\n"
	       "except OSError as e:\n"
	       "  print(n, e.errno == errno.EAGAIN)\n",
	       &r);
	assert_int_equal(r.res.status, 0);
	long n = strtol(r.out, NULL, 10);
	assert_true(n > 0 && n < 64);
	assert_non_null(strstr(r.out, "True"));
	assert_true(r.secs < 10);
	CHECKED("a fork bomb stops at %ld processes (EAGAIN) and the run ends in %.1f s", n, r.secs);
}

static void test_memory(void **state)
{
	const char *argv[] = {"/usr/bin/python3", "-c", "a=[]\nwhile True: a.append(b'x'*(1<<20))\n", NULL};
	struct gh_sandbox_opts o;
	opts_init(&o, argv);
	o.memory_bytes = 64LL << 20;
	struct run r;
	run_opts(&o, &r);
	if (strcmp(r.res.memory_limit_by, "RLIMIT_AS") == 0) {
		assert_true(r.res.status != 0);
	} else {
		assert_int_equal(r.res.status, 137);
		assert_non_null(strstr(r.res.reason, "out of memory (limit 64 MiB)"));
	}
	CHECKED("allocating past 64 MiB ends the run: status %d, by %s, \"%s\"", r.res.status, r.res.memory_limit_by,
		r.res.reason);
}

/* Without a writable cgroup (hidden in a private mount namespace of a forked test process),
 * memory is bounded by RLIMIT_AS: the allocation fails inside and the run ends non-zero. */
static void test_memory_rlimit_as(void **state)
{
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	fflush(stdout);
	pid_t p = fork();
	assert_true(p >= 0);
	if (p == 0) {
		close(pfd[0]);
		char msg[256] = "hide";
		if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
		    mount("tmpfs", "/sys/fs/cgroup", "tmpfs", 0, "size=64k") == 0) {
			const char *argv[] = {"/usr/bin/python3", "-c",
					      "try:\n  a = bytearray(512 << 20)\nexcept MemoryError:\n  print('MemoryError'); raise SystemExit(3)\n",
					      NULL};
			struct gh_sandbox_opts o;
			opts_init(&o, argv);
			o.memory_bytes = 128LL << 20;
			struct gh_sandbox_result res;
			struct gh_error err;
			memset(&err, 0, sizeof err);
			int devnull = open("/dev/null", O_WRONLY);
			dup2(devnull, 1);
			dup2(devnull, 2);
			int rc = gh_sandbox_run(&o, &res, &err);
			snprintf(msg, sizeof msg, "%d %d %s|%.150s", rc, res.status, res.memory_limit_by, err.message);
		}
		ssize_t w = write(pfd[1], msg, strlen(msg));
		(void)w;
		_exit(0);
	}
	close(pfd[1]);
	char buf[300] = {0};
	ssize_t n = read(pfd[0], buf, sizeof buf - 1);
	close(pfd[0]);
	waitpid(p, NULL, 0);
	assert_true(n > 0);
	printf("  rlimit run: %s\n", buf);
	assert_int_equal(strncmp(buf, "0 3 RLIMIT_AS|", 14), 0);
	CHECKED("no writable cgroup: memory_limit_by RLIMIT_AS; a 512 MiB allocation under 128 MiB gets MemoryError");
}

static void test_cpu_and_wall(void **state)
{
	const char *spin[] = {"/bin/sh", "-c", "while :; do :; done", NULL};
	struct gh_sandbox_opts o;
	opts_init(&o, spin);
	o.cpu_seconds = 1;
	struct run r;
	run_opts(&o, &r);
	assert_int_equal(r.res.status, 128 + SIGXCPU);
	assert_non_null(strstr(r.res.reason, "cpu"));
	assert_true(r.secs < 5);
	CHECKED("spinning past 1 s of CPU: status %d, \"%s\"", r.res.status, r.res.reason);

	const char *sleeper[] = {"/bin/sh", "-c", "sleep 30 & sleep 30", NULL};
	opts_init(&o, sleeper);
	o.timeout_ms = 500;
	run_opts(&o, &r);
	assert_int_equal(r.res.status, 124);
	assert_string_equal(r.res.reason, "timeout after 0.5 s");
	assert_true(r.secs < 3);
	CHECKED("sleeping past a 0.5 s wall clock: 124, \"%s\", ended in %.2f s (whole PID namespace)", r.res.reason,
		r.secs);
}

static void test_syscalls(void **state)
{
	struct run r;
	run_py("import socket, ctypes, os\n"
	       "def t(name, f):\n"
	       "  try:\n"
	       "    f(); print(name, 'OK')\n"
	       "  except OSError as e:\n"
	       "    print(name, e.errno)\n"
	       "t('raw', lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))\n"
	       "t('raw6', lambda: socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6))\n"
	       "t('packet', lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0))\n"
	       "t('netlink', lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))\n"
	       "libc = ctypes.CDLL(None, use_errno=True)\n"
	       "def c(name, rc):\n"
	       "  print(name, ctypes.get_errno() if rc != 0 else 'OK')\n"
	       "c('ptrace', libc.ptrace(0, 0, None, None))\n"
	       "c('ptrace1', libc.ptrace(16, 1, None, None))\n"
	       "c('mount', libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))\n"
	       "c('unshare', libc.unshare(0x10000000))\n"
	       "c('unsharens', libc.unshare(0x00020000))\n"
	       "c('personality', libc.personality(0x0040000) if libc.personality(0x0040000) < 0 else 0)\n"
	       "c('setns', libc.setns(0, 0))\n",
	       &r);
	assert_int_equal(r.res.status, 0);
	const char *want[] = {"raw 1\n", "raw6 1\n", "packet 1\n", "netlink 1\n", "ptrace 1\n", "ptrace1 1\n",
			      "mount 1\n", "unshare 1\n", "unsharens 1\n", "personality 1\n", "setns 1\n"};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		if (!strstr(r.out, want[i])) {
			printf("  missing %s in:\n%s\n", want[i], r.out);
			fail();
		}
	CHECKED("raw/packet/netlink sockets, ptrace, mount, unshare, personality, setns: all EPERM");
}

static void test_setuid(void **state)
{
	struct run r;
	run_sh("su -c 'id -u' root </dev/null 2>/dev/null; echo su=$?; grep -c nosuid /proc/self/mountinfo;"
	       "ls -l /usr/bin/passwd | cut -c1-10",
	       &r);
	assert_int_equal(r.res.status, 0);
	assert_null(strstr(r.out, "\n0\n"));
	assert_true(strncmp(r.out, "0\n", 2) != 0);
	assert_null(strstr(r.out, "su=0"));
	assert_non_null(strstr(r.out, "-rwsr-xr-x"));
	CHECKED("su (setuid root, present) gains nothing under no_new_privs and nosuid mounts");
}

static int listen_any(uint16_t *port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(s, 8), 0);
	socklen_t l = sizeof a;
	getsockname(s, (struct sockaddr *)&a, &l);
	*port = ntohs(a.sin_port);
	return s;
}

static void test_network(void **state)
{
	uint16_t port;
	int s = listen_any(&port);
	char code[512];
	snprintf(code, sizeof code,
		 "import socket\n"
		 "try:\n"
		 "  socket.create_connection(('127.0.0.1', %u), timeout=2); print('CONNECTED')\n"
		 "except OSError as e:\n"
		 "  print('refused', e.errno)\n"
		 "try:\n"
		 "  socket.getaddrinfo('example.com', 443); print('RESOLVED')\n"
		 "except OSError as e:\n"
		 "  print('noresolve')\n",
		 port);
	struct run r;
	run_py(code, &r);
	assert_int_equal(r.res.status, 0);
	assert_null(strstr(r.out, "CONNECTED"));
	assert_null(strstr(r.out, "RESOLVED"));
	assert_int_equal(accept(s, NULL, NULL), -1);
	close(s);
	CHECKED("a host port on 127.0.0.1 is unreachable (%.*s), no DNS", (int)strcspn(r.out, "\n"), r.out);
}

struct egress_peer {
	int fd;
	char tag;
	int got_fd;
};

static void *egress_thread(void *arg)
{
	struct egress_peer *p = arg;
	char tag = 0;
	char buf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &tag, .iov_len = 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf};
	if (recvmsg(p->fd, &m, 0) != 1)
		return NULL;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return NULL;
	int c;
	memcpy(&c, CMSG_DATA(cm), sizeof c);
	p->tag = tag;
	p->got_fd = c;
	ssize_t w = write(c, "hello", 5);
	(void)w;
	close(c);
	return NULL;
}

static void test_egress(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	struct egress_peer peer = {.fd = sv[0], .got_fd = -1};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, egress_thread, &peer), 0);
	const char *argv[] = {"/usr/bin/python3", "-c",
			      "import socket\n"
			      "s = socket.create_connection(('127.0.0.1', 3128), timeout=5)\n"
			      "print(s.recv(16).decode())\n",
			      NULL};
	struct gh_sandbox_opts o;
	opts_init(&o, argv);
	o.egress_fd = sv[1];
	o.proxy_port = 3128;
	o.gateway_port = 3129;
	struct run r;
	run_opts(&o, &r);
	pthread_join(t, NULL);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(r.res.status, 0);
	assert_int_equal(peer.tag, GH_SANDBOX_TAG_PROXY);
	assert_true(peer.got_fd >= 0);
	assert_string_equal(r.out, "hello\n");
	CHECKED("127.0.0.1:3128 inside arrives outside as a 'P' message with the socket; \"hello\" reaches the child");
}

static void test_output_bound(void **state)
{
	const char *argv[] = {"/bin/sh", "-c", "head -c 300000 /dev/zero | tr '\\0' a; head -c 300000 /dev/zero | tr '\\0' b >&2; echo done", NULL};
	struct gh_sandbox_opts o;
	opts_init(&o, argv);
	o.output_bytes = 1000;
	struct run r;
	run_opts(&o, &r);
	assert_int_equal(r.res.status, 0);
	assert_int_equal(r.outlen, 1000);
	assert_non_null(strstr(r.err, "stdout truncated at 1000 bytes"));
	assert_non_null(strstr(r.err, "stderr truncated at 1000 bytes"));
	CHECKED("300 kB on each stream with a 1000-byte bound: 1000 bytes pass, a note each, the child finishes");
}

static void test_app_dir(void **state)
{
	char dir[] = "/tmp/gh-sandbox-app-XXXXXX";
	assert_non_null(mkdtemp(dir));
	chmod(dir, 0755);
	char f[128];
	snprintf(f, sizeof f, "%s/hello.js", dir);
	FILE *fp = fopen(f, "w");
	assert_non_null(fp);
	fputs("const fs = require('fs');\n"
	      "console.log(process.cwd());\n"
	      "try { fs.writeFileSync('/app/x', 'x'); console.log('WROTE'); } catch (e) { console.log(e.code); }\n"
	      "try { fs.readFileSync('/etc/shadow'); console.log('SHADOW'); } catch (e) { console.log(e.code); }\n",
	      fp);
	fclose(fp);
	chmod(f, 0644);
	const char *argv[] = {"node", "hello.js", NULL};
	struct gh_sandbox_opts o;
	opts_init(&o, argv);
	o.app_dir = dir;
	struct run r;
	run_opts(&o, &r);
	unlink(f);
	rmdir(dir);
	assert_int_equal(r.res.status, 0);
	assert_string_equal(r.out, "/app\nEROFS\nENOENT\n");
	CHECKED("node runs /app/hello.js with cwd /app; writing /app is EROFS, /etc/shadow is ENOENT");
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	char why[256];
	if (geteuid() != 0 && gh_sandbox_check(why, sizeof why) != 0) {
		printf("test_sandbox: skipped (%s)\n", why);
		gh_unit_report("sandbox", 0, 0);
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check), cmocka_unit_test(test_refuses_without_namespaces),      cmocka_unit_test(test_status),     cmocka_unit_test(test_env),
		cmocka_unit_test(test_identity),   cmocka_unit_test(test_filesystem), cmocka_unit_test(test_tmp_limit),
		cmocka_unit_test(test_processes),  cmocka_unit_test(test_fork_bomb),  cmocka_unit_test(test_memory),     cmocka_unit_test(test_memory_rlimit_as),
		cmocka_unit_test(test_cpu_and_wall), cmocka_unit_test(test_syscalls), cmocka_unit_test(test_setuid),
		cmocka_unit_test(test_network),    cmocka_unit_test(test_egress),     cmocka_unit_test(test_output_bound),
		cmocka_unit_test(test_app_dir),
	};
	int failed = cmocka_run_group_tests_name("sandbox", tests, NULL, NULL);
	gh_unit_report("sandbox", sizeof(tests) / sizeof(tests[0]), failed);
	return failed ? 1 : 0;
}
