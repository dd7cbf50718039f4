/* sandbox.c: the namespaces, the minimal root, the limits and the child's life.
 *
 * Shape of a run:
 *   caller  --clone(NEWUSER|NEWPID|NEWNS|NEWNET|NEWIPC|NEWUTS|NEWCGROUP)-->  init (PID 1 inside)
 *   caller: writes the uid/gid maps, puts init in the memory cgroup, releases it, then pumps
 *           stdout/stderr (bounded), enforces the wall clock (SIGKILL to init kills the whole
 *           PID namespace) and reaps init.
 *   init:   becomes uid/gid 1000 inside (never root, not even inside), builds the root in a
 *           tmpfs and pivots into it, brings lo up, opens the egress listeners, sets
 *           no_new_privs, loads the seccomp filter, drops every capability, then forks the
 *           command and relays accepted connections over egress_fd until the command exits.
 *   command: rlimits, cwd, execve with exactly opts->env.
 * A failure while building is reported over a pipe before anything user-supplied runs, and
 * gh_sandbox_run returns an error: nothing ran unprotected.
 *
 * Choices:
 *   - uid: the caller's uid maps to 1000 inside. When the caller is root, the sandbox runs as
 *     the host's uid/gid 65534 instead (mapped to 1000): a kernel uid of 0 would keep root's
 *     owner rights on /proc/sys and exemption from RLIMIT_NPROC even with no capability.
 *     Consequence: app_dir and extra_ro must be readable by "other" when run as root.
 *   - groups: when root, setgroups stays allowed only long enough for init to drop every
 *     supplementary group (the command has no CAP_SETGID to add any); otherwise "deny".
 *   - /tmp is noexec (writable XOR executable); /app is read-only but not noexec, since
 *     native modules shipped with an app (.so in node_modules or a wheel) are mmapped PROT_EXEC.
 *   - seccomp: default ALLOW; the dangerous set answers EPERM (clone3 answers ENOSYS so libc
 *     falls back to clone, whose namespace flags are then refused); a foreign architecture or
 *     the x32 ABI kills the process.
 *   - pids: besides RLIMIT_NPROC, a pids cgroup bounds the sandbox where one is writable. */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Limits of the sandbox (kept here rather than core/limits.h, which belongs to core). */
#define SB_INSIDE_ID 1000          /* uid and gid inside: an ordinary user, never root */
#define SB_ROOT_OUTSIDE_ID 65534   /* the host id used when the caller is root (see above) */
#define SB_NOFILE 256              /* enough for an interpreter and a few sockets */
#define SB_NPROC 64                /* processes of the sandbox user: a fork bomb stops here */
#define SB_PIDS_MAX 128            /* the pids cgroup: NPROC plus init and slack */
#define SB_DEFAULT_MEMORY (256LL << 20)
#define SB_DEFAULT_CPU 10
#define SB_DEFAULT_TIMEOUT_MS 30000
#define SB_DEFAULT_TMP (64LL << 20)
#define SB_DEFAULT_OUTPUT (8LL << 20)
#define SB_ROOT_TMPFS_BYTES (4 << 20) /* the root's own tmpfs holds only mountpoints and /etc */
#define SB_BUILD_MSG 400

/* Fixed descriptor numbers in the init process. */
enum { FD_SYNC = 3, FD_STATUS = 4, FD_BUILD = 5, FD_EGRESS = 6, FD_FIRST_FREE = 7 };

/* The message init sends when it could not build the sandbox. */
static void build_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void build_fail(const char *fmt, ...)
{
	char msg[SB_BUILD_MSG];
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof msg)
		n = sizeof msg - 1;
	int m = snprintf(msg + n, sizeof msg - (size_t)n, ": %s", strerror(e));
	if (m > 0)
		n += m;
	if ((size_t)n >= sizeof msg)
		n = sizeof msg - 1;
	ssize_t w = write(FD_BUILD, msg, (size_t)n);
	(void)w;
	_exit(127);
}

/* Writes the whole string to path; -1 with errno on failure. */
static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = strlen(s);
	ssize_t w = write(fd, s, len);
	int e = errno;
	close(fd);
	if (w != (ssize_t)len) {
		errno = w < 0 ? e : EIO;
		return -1;
	}
	return 0;
}

/* Creates a file with content (mode 0644); -1 with errno on failure. */
static int create_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	size_t len = strlen(s);
	ssize_t w = write(fd, s, len);
	close(fd);
	return w == (ssize_t)len ? 0 : -1;
}

/* mkdir -p (mode 0755); -1 with errno on failure. */
static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	int n = snprintf(buf, sizeof buf, "%s", path);
	if (n < 0 || (size_t)n >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* The per-mount flags of path that a remount inside a user namespace must keep (locked). */
static unsigned long locked_flags(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;
	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	if (sv.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	return f;
}

/* Remounts the bind at path with flags added to the ones it must keep. */
static void remount(const char *path, unsigned long flags)
{
	if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | locked_flags(path) | flags, NULL) < 0)
		build_fail("remount %s", path);
}

/* Binds the host path (seen at /oldroot<path>) read-only at /newroot<dst>. A symlink is
 * recreated as a symlink (usr-merged /bin, /lib64); an absent optional path is skipped. */
static void bind_ro(const char *host, const char *dst, bool optional)
{
	char src[PATH_MAX], to[PATH_MAX];
	struct stat st;
	if (snprintf(src, sizeof src, "/oldroot%s", host) >= (int)sizeof src ||
	    snprintf(to, sizeof to, "/newroot%s", dst) >= (int)sizeof to) {
		errno = ENAMETOOLONG;
		build_fail("bind %s", host);
	}
	if (lstat(src, &st) < 0) {
		if (optional && errno == ENOENT)
			return;
		build_fail("bind %s", host);
	}
	if (lstat(src, &st) == 0 && S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(src, target, sizeof target - 1);
		if (n < 0)
			build_fail("readlink %s", host);
		target[n] = '\0';
		char parent[PATH_MAX];
		snprintf(parent, sizeof parent, "%s", to);
		char *slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			*slash = '\0';
			if (mkdir_p(parent) < 0)
				build_fail("mkdir %s", parent);
		}
		struct stat t;
		if (lstat(to, &t) == 0)
			return; /* same link already there */
		if (symlink(target, to) < 0)
			build_fail("symlink %s", dst);
		/* an absolute target outside the binds would dangle; bind the resolved path too */
		char real[PATH_MAX];
		char hostreal[PATH_MAX];
		if (realpath(src, real) && strncmp(real, "/oldroot/", 9) == 0) {
			snprintf(hostreal, sizeof hostreal, "%s", real + 8);
			char chk[PATH_MAX + 16];
			snprintf(chk, sizeof chk, "/newroot%s", hostreal);
			if (lstat(chk, &t) < 0)
				bind_ro(hostreal, hostreal, optional);
		}
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		if (mkdir_p(to) < 0)
			build_fail("mkdir %s", dst);
	} else {
		char parent[PATH_MAX];
		snprintf(parent, sizeof parent, "%s", to);
		char *slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			*slash = '\0';
			if (mkdir_p(parent) < 0)
				build_fail("mkdir %s", parent);
		}
		int fd = open(to, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			build_fail("create %s", dst);
		close(fd);
	}
	if (mount(src, to, NULL, MS_BIND | MS_REC, NULL) < 0)
		build_fail("bind %s", host);
	remount(to, MS_RDONLY | MS_NOSUID | MS_NODEV);
}

/* Binds a host device node (read-write: /dev/null must be writable) at /newroot/dev/<name>. */
static void bind_dev(const char *name)
{
	char src[64], to[64];
	snprintf(src, sizeof src, "/oldroot/dev/%s", name);
	snprintf(to, sizeof to, "/newroot/dev/%s", name);
	int fd = open(to, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		build_fail("create /dev/%s", name);
	close(fd);
	if (mount(src, to, NULL, MS_BIND, NULL) < 0)
		build_fail("bind /dev/%s", name);
	remount(to, MS_NOSUID | MS_NOEXEC);
}

/* Builds the minimal root and pivots into it; the host's root is unmounted afterwards. */
static void build_root(const struct gh_sandbox_opts *o, int64_t tmp_bytes)
{
	char data[64];
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		build_fail("make / private");
	/* A scratch tmpfs over /tmp becomes the root for a moment: the host's root is then at
	 * /oldroot with everything reachable (including the host's /tmp), and /newroot is built. */
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") < 0)
		build_fail("mount scratch tmpfs");
	if (mkdir("/tmp/oldroot", 0755) < 0 || mkdir("/tmp/newroot", 0755) < 0)
		build_fail("mkdir scratch");
	if (syscall(SYS_pivot_root, "/tmp", "/tmp/oldroot") < 0)
		build_fail("pivot_root (scratch)");
	if (chdir("/") < 0)
		build_fail("chdir /");
	snprintf(data, sizeof data, "size=%d,mode=0755", SB_ROOT_TMPFS_BYTES);
	if (mount("tmpfs", "/newroot", "tmpfs", MS_NOSUID | MS_NODEV, data) < 0)
		build_fail("mount root tmpfs");

	static const char *const sys_paths[] = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"};
	for (size_t i = 0; i < sizeof sys_paths / sizeof sys_paths[0]; i++)
		bind_ro(sys_paths[i], sys_paths[i], true);
	if (mkdir("/newroot/etc", 0755) < 0)
		build_fail("mkdir /etc");
	bind_ro("/etc/ssl", "/etc/ssl", true);
	bind_ro("/etc/ca-certificates", "/etc/ca-certificates", true);
	bind_ro("/etc/alternatives", "/etc/alternatives", true); /* Debian's alternatives links */
	bind_ro("/etc/ld.so.cache", "/etc/ld.so.cache", true);
	if (create_file("/newroot/etc/passwd", "sandbox:x:1000:1000:sandbox:/tmp:/usr/sbin/nologin\n"
					       "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n") < 0 ||
	    create_file("/newroot/etc/group", "sandbox:x:1000:\nnogroup:x:65534:\n") < 0 ||
	    create_file("/newroot/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n") < 0 ||
	    create_file("/newroot/etc/hostname", "sandbox\n") < 0 ||
	    create_file("/newroot/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n") < 0)
		build_fail("write /etc");
	for (const char *const *p = o->extra_ro; p && *p; p++) {
		if ((*p)[0] != '/') {
			errno = EINVAL;
			build_fail("extra_ro %s is not absolute", *p);
		}
		bind_ro(*p, *p, false);
	}
	if (o->app_dir) {
		char src[PATH_MAX];
		if (snprintf(src, sizeof src, "/oldroot%s", o->app_dir) >= (int)sizeof src || o->app_dir[0] != '/') {
			errno = EINVAL;
			build_fail("app_dir %s", o->app_dir);
		}
		if (mkdir("/newroot/app", 0755) < 0)
			build_fail("mkdir /app");
		if (mount(src, "/newroot/app", NULL, MS_BIND | MS_REC, NULL) < 0)
			build_fail("bind app_dir %s", o->app_dir);
		remount("/newroot/app", MS_RDONLY | MS_NOSUID | MS_NODEV);
	}

	/* /tmp: private, bounded, writable, not executable */
	if (mkdir("/newroot/tmp", 01777) < 0)
		build_fail("mkdir /tmp");
	snprintf(data, sizeof data, "size=%lld,mode=1777", (long long)tmp_bytes);
	if (mount("tmpfs", "/newroot/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, data) < 0)
		build_fail("mount /tmp");

	/* /dev: a tmpfs with four host nodes and the fd links */
	if (mkdir("/newroot/dev", 0755) < 0)
		build_fail("mkdir /dev");
	if (mount("tmpfs", "/newroot/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755") < 0)
		build_fail("mount /dev");
	bind_dev("null");
	bind_dev("zero");
	bind_dev("random");
	bind_dev("urandom");
	if (symlink("/proc/self/fd", "/newroot/dev/fd") < 0 || symlink("/proc/self/fd/0", "/newroot/dev/stdin") < 0 ||
	    symlink("/proc/self/fd/1", "/newroot/dev/stdout") < 0 || symlink("/proc/self/fd/2", "/newroot/dev/stderr") < 0)
		build_fail("/dev links");
	remount("/newroot/dev", MS_RDONLY | MS_NOSUID | MS_NOEXEC);

	/* /proc of the new PID namespace (we are its PID 1) */
	if (mkdir("/newroot/proc", 0555) < 0)
		build_fail("mkdir /proc");
	if (mount("proc", "/newroot/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		build_fail("mount /proc");

	/* Pivot into the new root and drop the old one (and the scratch tmpfs) entirely. */
	if (chdir("/newroot") < 0)
		build_fail("chdir /newroot");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		build_fail("pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		build_fail("unmount the host root");
	if (chdir("/") < 0)
		build_fail("chdir /");
	remount("/", MS_RDONLY | MS_NOSUID | MS_NODEV);
}

/* Brings the loopback interface up in the new network namespace. */
static void loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		build_fail("socket for lo");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		build_fail("SIOCGIFFLAGS lo");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		build_fail("SIOCSIFFLAGS lo");
	close(s);
}

/* A listener on 127.0.0.1:port inside the sandbox's network namespace. */
static int listen_local(uint16_t port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		build_fail("socket");
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&a, sizeof a) < 0)
		build_fail("bind 127.0.0.1:%u", port);
	if (listen(s, 64) < 0)
		build_fail("listen 127.0.0.1:%u", port);
	return s;
}

/* Adds one rule; a failure abandons the filter. */
#define RULE(ctx, act, name, ...)                                                               \
	do {                                                                                    \
		int sc_ = seccomp_syscall_resolve_name(name);                                   \
		if (sc_ != __NR_SCMP_ERROR && seccomp_rule_add(ctx, act, sc_, __VA_ARGS__) < 0) { \
			failed = name;                                                          \
			goto fail;                                                              \
		}                                                                               \
	} while (0)

/* Compiles the seccomp filter (see the header comment for the choices) to BPF in the caller,
 * so the cloned child only loads it: no allocation there, where another thread of the caller
 * may have held the allocator's lock at clone time. The caller owns *prog (free its filter). */
static int build_filter(struct sock_fprog *prog, struct gh_error *err)
{
	const char *failed = "seccomp_init";
	int mfd = -1;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	memset(prog, 0, sizeof *prog);
	if (!ctx)
		goto fail;
	failed = "bad-arch action";
	if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) < 0)
		goto fail;
	const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
	static const char *const denied[] = {
		"ptrace", "mount", "umount", "umount2", "pivot_root", "chroot", "unshare", "setns",
		"keyctl", "add_key", "request_key", "bpf", "perf_event_open", "kexec_load",
		"kexec_file_load", "init_module", "finit_module", "delete_module", "userfaultfd",
		"process_vm_readv", "process_vm_writev", "open_by_handle_at", "name_to_handle_at",
		"swapon", "swapoff", "reboot", "acct", "quotactl", "quotactl_fd", "lookup_dcookie",
		"iopl", "ioperm", "io_uring_setup", "io_uring_enter", "io_uring_register",
		"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
		"syslog", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "vhangup",
		"kcmp", "pidfd_getfd", "uselib", "nfsservctl", "_sysctl", "vm86", "vm86old",
		"sethostname", "setdomainname",
	};
	for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++)
		RULE(ctx, eperm, denied[i], 0);
	/* clone3's flags are behind a pointer seccomp cannot read: ENOSYS makes libc use clone */
	RULE(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0);
	static const unsigned long ns_flags[] = {CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNS, CLONE_NEWNET,
						  CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP, CLONE_NEWTIME};
	for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++)
		RULE(ctx, eperm, "clone", 1, SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
	RULE(ctx, eperm, "socket", 1, SCMP_A0(SCMP_CMP_EQ, AF_PACKET));
	RULE(ctx, eperm, "socket", 1, SCMP_A0(SCMP_CMP_EQ, AF_NETLINK));
	RULE(ctx, eperm, "socket", 2, SCMP_A0(SCMP_CMP_EQ, AF_INET), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW));
	RULE(ctx, eperm, "socket", 2, SCMP_A0(SCMP_CMP_EQ, AF_INET6), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW));
	RULE(ctx, eperm, "socket", 2, SCMP_A0(SCMP_CMP_EQ, AF_INET), SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_PACKET));
	/* personality: querying (0xffffffff) and PER_LINUX are fine; any other persona is refused */
	static const unsigned long persona_bits[] = {ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ADDR_COMPAT_LAYOUT,
						      MMAP_PAGE_ZERO, ADDR_LIMIT_32BIT, ADDR_LIMIT_3GB,
						      STICKY_TIMEOUTS, SHORT_INODE, WHOLE_SECONDS, FDPIC_FUNCPTRS, UNAME26};
	for (size_t i = 0; i < sizeof persona_bits / sizeof persona_bits[0]; i++)
		/* the mask includes bit 31 so that the query (0xffffffff) does not match */
		RULE(ctx, eperm, "personality", 1,
		     SCMP_A0(SCMP_CMP_MASKED_EQ, persona_bits[i] | 0x80000000UL, persona_bits[i]));
	RULE(ctx, eperm, "personality", 1, SCMP_A0(SCMP_CMP_MASKED_EQ, 0x800000ffUL, PER_LINUX32));
	failed = "export";
	mfd = memfd_create("gh-seccomp", MFD_CLOEXEC);
	if (mfd < 0 || seccomp_export_bpf(ctx, mfd) < 0)
		goto fail;
	off_t len = lseek(mfd, 0, SEEK_END);
	if (len <= 0 || len % (off_t)sizeof(struct sock_filter) != 0 || len > 65536)
		goto fail;
	prog->filter = malloc((size_t)len);
	if (!prog->filter || pread(mfd, prog->filter, (size_t)len, 0) != (ssize_t)len) {
		free(prog->filter);
		prog->filter = NULL;
		goto fail;
	}
	prog->len = (unsigned short)((size_t)len / sizeof(struct sock_filter));
	close(mfd);
	seccomp_release(ctx);
	return 0;
fail:
	if (mfd >= 0)
		close(mfd);
	if (ctx)
		seccomp_release(ctx);
	return gh_error_set(err, GH_EINTERNAL, "sandbox: building the seccomp filter failed at %s", failed);
}

/* Sets no_new_privs and loads the compiled filter. */
static void load_seccomp(const struct sock_fprog *prog)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		build_fail("no_new_privs");
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0)
		build_fail("seccomp");
}

/* Drops every capability (bounding, ambient, effective, permitted, inheritable). */
static void drop_caps(void)
{
	for (int c = 0; c <= 63; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno == EINVAL)
			break;
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof d);
	if (syscall(SYS_capset, &h, d) < 0)
		build_fail("capset");
}

/* Executes argv[0], searching PATH from env (like execvp, but with the child's environment). */
static void exec_command(const struct gh_sandbox_opts *o, char *const *argv)
{
	char *const *envp = (char *const *)(uintptr_t)o->env;
	const char *name = argv[0];
	if (strchr(name, '/')) {
		execve(name, argv, envp);
		return;
	}
	const char *path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *const *e = o->env; e && *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	int saved = ENOENT;
	while (*path) {
		const char *end = strchr(path, ':');
		size_t len = end ? (size_t)(end - path) : strlen(path);
		char full[PATH_MAX];
		int n = snprintf(full, sizeof full, "%.*s/%s", (int)len, path, name);
		if (len > 0 && n > 0 && (size_t)n < sizeof full) {
			execve(full, argv, envp);
			if (errno != ENOENT && errno != ENOTDIR)
				saved = errno;
		}
		path += len;
		if (*path == ':')
			path++;
	}
	errno = saved;
}

struct child_args {
	const struct gh_sandbox_opts *o;
	char *const *argv;            /* the command's argv (init's private copy once scrubbed) */
	char *cmdline;                /* the caller's argument area (program_invocation_name) */
	size_t cmdline_len;           /* its length per /proc/self/cmdline; 0: leave it */
	int64_t cpu_seconds, tmp_bytes, memory_bytes;
	bool use_rlimit_as, drop_groups;
	struct sock_fprog filter;
};

/* The command: rlimits, cwd, exec. Runs after init's fork; never returns. */
static void run_command(const struct child_args *a)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	struct rlimit rl;
	rl.rlim_cur = rl.rlim_max = SB_NOFILE;
	setrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max = SB_NPROC;
	setrlimit(RLIMIT_NPROC, &rl);
	rl.rlim_cur = rl.rlim_max = (rlim_t)a->tmp_bytes;
	setrlimit(RLIMIT_FSIZE, &rl);
	rl.rlim_cur = (rlim_t)a->cpu_seconds;
	rl.rlim_max = (rlim_t)a->cpu_seconds + 1;
	setrlimit(RLIMIT_CPU, &rl);
	rl.rlim_cur = rl.rlim_max = 0;
	setrlimit(RLIMIT_CORE, &rl);
	if (a->use_rlimit_as) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)a->memory_bytes;
		setrlimit(RLIMIT_AS, &rl);
	}
	if (chdir(a->o->app_dir ? "/app" : "/tmp") < 0)
		_exit(126);
	exec_command(a->o, a->argv);
	char msg[300];
	int n = snprintf(msg, sizeof msg, "sandbox: cannot execute %s: %s\n", a->argv[0], strerror(errno));
	if (n > 0) {
		ssize_t w = write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
		(void)w;
	}
	_exit(errno == ENOENT ? 127 : 126);
}

/* Passes one accepted connection over egress as (tag, fd); closes our copy either way. */
static void relay(int listener, char tag, int egress)
{
	for (;;) {
		int c = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			return;
		char buf[CMSG_SPACE(sizeof(int))];
		memset(buf, 0, sizeof buf);
		struct iovec iov = {.iov_base = &tag, .iov_len = 1};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &c, sizeof c);
		ssize_t w = sendmsg(egress, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)w; /* the proxy gone or full: the connection is simply closed */
		close(c);
	}
}

/* The clone carries the caller's memory image, so /proc/1/cmdline inside would show the
 * caller's command line (the data directory, the app directory, the gateway). Init copies the
 * command's argv into memory of its own (mmap: no allocator here) and blanks the area. */
static void scrub_cmdline(struct child_args *a)
{
	if (!a->cmdline || !a->cmdline_len)
		return;
	size_t nargs = 0, bytes = 0;
	for (; a->argv[nargs]; nargs++)
		bytes += strlen(a->argv[nargs]) + 1;
	size_t size = (nargs + 1) * sizeof(char *) + bytes;
	char **copy = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (copy == MAP_FAILED)
		build_fail("mmap for argv");
	char *p = (char *)(copy + nargs + 1);
	for (size_t i = 0; i < nargs; i++) {
		size_t l = strlen(a->argv[i]) + 1;
		memcpy(p, a->argv[i], l);
		copy[i] = p;
		p += l;
	}
	copy[nargs] = NULL;
	a->argv = copy;
	memset(a->cmdline, 0, a->cmdline_len);
	static const char name[] = "gatehouse-sandbox-init";
	if (a->cmdline_len > sizeof name)
		memcpy(a->cmdline, name, sizeof name);
}

/* PID 1 of the sandbox. Never returns. */
static void init_main(const struct child_args *args)
{
	struct child_args ca = *args, *a = &ca;
	const struct gh_sandbox_opts *o = a->o;
	char go;
	if (read(FD_SYNC, &go, 1) != 1)
		_exit(127); /* the caller gave up */
	close(FD_SYNC);
	/* Raw system calls, not glibc's wrappers: those broadcast the change to every thread
	 * glibc believes the process has, and the caller's other threads (the egress proxy, say)
	 * do not exist in this clone; a thread caught starting up at clone time made
	 * setgroups() wait for it forever. This process is single-threaded: the call is enough. */
	if (a->drop_groups && syscall(SYS_setgroups, 0, NULL) < 0)
		build_fail("setgroups");
	if (syscall(SYS_setresgid, SB_INSIDE_ID, SB_INSIDE_ID, SB_INSIDE_ID) < 0)
		build_fail("setresgid");
	if (syscall(SYS_setresuid, SB_INSIDE_ID, SB_INSIDE_ID, SB_INSIDE_ID) < 0)
		build_fail("setresuid");
	/* after the uid change (which clears it): die with the caller */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (sethostname("sandbox", 7) < 0)
		build_fail("sethostname");
	build_root(o, a->tmp_bytes);
	loopback_up();
	int lg = -1, lp = -1;
	if (o->egress_fd >= 0) {
		lg = listen_local(o->gateway_port);
		lp = listen_local(o->proxy_port);
	}
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0)
		build_fail("sigprocmask");
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		build_fail("signalfd");
	load_seccomp(&a->filter);
	drop_caps();
	/* after build_root: the app directory and the other options may point into that area */
	scrub_cmdline(a);
	/* not dumpable: the command (same uid) cannot open /proc/1/fd and reach egress_fd */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	close(FD_BUILD); /* built: from here on, only the command's own doing */

	pid_t cmd = fork();
	if (cmd < 0)
		_exit(127);
	if (cmd == 0) {
		close(sfd);
		close(FD_STATUS);
		if (lg >= 0) {
			close(lg);
			close(lp);
		}
		if (o->egress_fd >= 0)
			close(FD_EGRESS);
		run_command(a);
	}
	struct pollfd pf[3] = {{.fd = sfd, .events = POLLIN}, {.fd = lg, .events = POLLIN}, {.fd = lp, .events = POLLIN}};
	for (;;) {
		if (poll(pf, lg >= 0 ? 3 : 1, -1) < 0 && errno != EINTR)
			_exit(127);
		if (lg >= 0 && (pf[1].revents & POLLIN))
			relay(lg, GH_SANDBOX_TAG_GATEWAY, FD_EGRESS);
		if (lp >= 0 && (pf[2].revents & POLLIN))
			relay(lp, GH_SANDBOX_TAG_PROXY, FD_EGRESS);
		if (pf[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) > 0)
				;
			int st;
			pid_t p;
			while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
				if (p != cmd)
					continue;
				ssize_t w = write(FD_STATUS, &st, sizeof st);
				(void)w;
				if (WIFEXITED(st))
					_exit(WEXITSTATUS(st));
				_exit(128 + WTERMSIG(st));
			}
		}
	}
}

/* ---- outside: cgroups ---- */

enum cg_kind { CG_NONE, CG_V2, CG_V1 };

struct cgroup {
	enum cg_kind kind;
	char mem[PATH_MAX];  /* the memory cgroup directory we created */
	char pids[PATH_MAX]; /* v1 only: the pids cgroup directory we created, or "" */
};

/* The path of our own cgroup in hierarchy `ctrl` ("" for v2's "0::") from /proc/self/cgroup. */
static int own_cgroup(const char *ctrl, char *out, size_t outlen)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -1;
	char line[1024];
	int rc = -1;
	while (fgets(line, sizeof line, f)) {
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		const char *ctrls = c1 + 1;
		bool match = false;
		if (ctrl[0] == '\0')
			match = ctrls[0] == '\0' && strncmp(line, "0", 1) == 0;
		else {
			char tmp[256];
			snprintf(tmp, sizeof tmp, "%s", ctrls);
			for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
				if (strcmp(t, ctrl) == 0)
					match = true;
		}
		if (!match)
			continue;
		char *path = c2 + 1;
		path[strcspn(path, "\n")] = '\0';
		if (snprintf(out, outlen, "%s", strcmp(path, "/") == 0 ? "" : path) < (int)outlen)
			rc = 0;
		break;
	}
	fclose(f);
	return rc;
}

/* Writes "%lld" into dir/file. */
static int cg_write(const char *dir, const char *file, long long v)
{
	char p[PATH_MAX + 64], s[32];
	snprintf(p, sizeof p, "%s/%s", dir, file);
	snprintf(s, sizeof s, "%lld", v);
	return write_str(p, s);
}

/* Reads the value after `key ` in dir/file (or the whole file's number when key is NULL). */
static long long cg_read(const char *dir, const char *file, const char *key)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof p, "%s/%s", dir, file);
	FILE *f = fopen(p, "re");
	if (!f)
		return -1;
	char line[256];
	long long v = -1;
	size_t klen = key ? strlen(key) : 0;
	while (fgets(line, sizeof line, f)) {
		if (key && (strncmp(line, key, klen) != 0 || line[klen] != ' '))
			continue;
		char *end;
		errno = 0;
		long long x = strtoll(key ? line + klen + 1 : line, &end, 10);
		if (errno == 0)
			v = x;
		break;
	}
	fclose(f);
	return v;
}

static unsigned cg_counter;

/* Creates dir under base+own path; 0 on success. */
static int cg_mkdir(const char *mount, const char *ctrl, char *out, size_t outlen)
{
	char own[PATH_MAX];
	if (own_cgroup(ctrl, own, sizeof own) < 0)
		return -1;
	int n = snprintf(out, outlen, "%s%s/gh-sandbox-%d-%u", mount, own, (int)getpid(),
			 __atomic_add_fetch(&cg_counter, 1, __ATOMIC_RELAXED));
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return mkdir(out, 0755);
}

/* The first move of a process between cgroups waits for an RCU grace period (the kernel's
 * cgroup_threadgroup_rwsem), 10-15 ms here; moves soon after it are fast. prewarm_main moves
 * this process into the cgroup it is already in (a no-op that takes the same path) so the
 * wait overlaps the caller's other start-up work instead of following it. */
static void *prewarm_main(void *arg)
{
	(void)arg;
	char own[PATH_MAX], path[PATH_MAX + 64], pid[24];
	struct stat st;
	bool v2 = stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
	if (own_cgroup(v2 ? "" : "memory", own, sizeof own) < 0)
		return NULL;
	snprintf(path, sizeof path, "%s%s/cgroup.procs", v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory", own);
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	if (write_str(path, pid) < 0)
		return NULL; /* not writable: the run will use RLIMIT_AS anyway */
	return NULL;
}

void gh_sandbox_prewarm(void)
{
	pthread_t t;
	pthread_attr_t at;
	if (pthread_attr_init(&at) != 0)
		return;
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 64 * 1024 + PATH_MAX * 4);
	if (pthread_create(&t, &at, prewarm_main, NULL) != 0)
		gh_log(GH_LOG_DEBUG, "sandbox: no prewarm thread");
	pthread_attr_destroy(&at);
}

/* Creates the sandbox's cgroup with the memory limit; kind CG_NONE when none is writable. */
static void cg_create(struct cgroup *cg, int64_t memory_bytes)
{
	memset(cg, 0, sizeof *cg);
	struct stat st;
	if (stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0) {
		if (cg_mkdir("/sys/fs/cgroup", "", cg->mem, sizeof cg->mem) == 0) {
			if (cg_write(cg->mem, "memory.max", memory_bytes) == 0) {
				cg_write(cg->mem, "memory.swap.max", 0);
				cg_write(cg->mem, "pids.max", SB_PIDS_MAX);
				cg->kind = CG_V2;
				return;
			}
			rmdir(cg->mem);
		}
		cg->mem[0] = '\0';
		return;
	}
	if (stat("/sys/fs/cgroup/memory/memory.limit_in_bytes", &st) == 0 &&
	    cg_mkdir("/sys/fs/cgroup/memory", "memory", cg->mem, sizeof cg->mem) == 0) {
		char p[PATH_MAX + 64];
		snprintf(p, sizeof p, "%s/memory.memsw.limit_in_bytes", cg->mem);
		if (cg_write(cg->mem, "memory.limit_in_bytes", memory_bytes) == 0 &&
		    (stat(p, &st) < 0 || cg_write(cg->mem, "memory.memsw.limit_in_bytes", memory_bytes) == 0)) {
			cg->kind = CG_V1;
			if (stat("/sys/fs/cgroup/pids/pids.max", &st) < 0 && stat("/sys/fs/cgroup/pids", &st) == 0 &&
			    cg_mkdir("/sys/fs/cgroup/pids", "pids", cg->pids, sizeof cg->pids) == 0) {
				if (cg_write(cg->pids, "pids.max", SB_PIDS_MAX) < 0) {
					rmdir(cg->pids);
					cg->pids[0] = '\0';
				}
			} else {
				cg->pids[0] = '\0';
			}
			return;
		}
		rmdir(cg->mem);
	}
	cg->mem[0] = '\0';
}

/* Puts pid in the sandbox's cgroup(s). */
static int cg_attach(const struct cgroup *cg, pid_t pid)
{
	if (cg->kind == CG_NONE)
		return 0;
	if (cg_write(cg->mem, "cgroup.procs", pid) < 0)
		return -1;
	if (cg->pids[0] && cg_write(cg->pids, "cgroup.procs", pid) < 0)
		return -1;
	return 0;
}

/* Whether the kernel OOM-killed something in the sandbox's cgroup. */
static bool cg_oom_killed(const struct cgroup *cg)
{
	if (cg->kind == CG_V2)
		return cg_read(cg->mem, "memory.events", "oom_kill") > 0;
	if (cg->kind == CG_V1) {
		long long k = cg_read(cg->mem, "memory.oom_control", "oom_kill");
		if (k >= 0)
			return k > 0;
		return cg_read(cg->mem, "memory.failcnt", NULL) > 0;
	}
	return false;
}

/* Removes the cgroup directories (empty once init is reaped; retried briefly). */
static void cg_remove(struct cgroup *cg)
{
	for (int i = 0; i < 50; i++) {
		bool done = true;
		if (cg->mem[0] && rmdir(cg->mem) < 0 && errno == EBUSY)
			done = false;
		else
			cg->mem[0] = '\0';
		if (cg->pids[0] && rmdir(cg->pids) < 0 && errno == EBUSY)
			done = false;
		else
			cg->pids[0] = '\0';
		if (done)
			return;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* ---- outside: the check ---- */

/* The probe child: unshares every namespace, maps itself, mounts a proc. */
static int probe_child(int report)
{
	char msg[200];
	const char *what = NULL;
	uid_t uid = geteuid();
	gid_t gid = getegid();
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP |
		    CLONE_NEWPID) < 0) {
		what = "cannot create user/mount/network/IPC/UTS/cgroup/PID namespaces";
		goto fail;
	}
	char map[64];
	snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
	if (write_str("/proc/self/setgroups", "deny") < 0 || write_str("/proc/self/uid_map", map) < 0) {
		what = "cannot write the user namespace's uid map";
		goto fail;
	}
	snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
	if (write_str("/proc/self/gid_map", map) < 0) {
		what = "cannot write the user namespace's gid map";
		goto fail;
	}
	pid_t p = fork(); /* PID 1 of the new namespace */
	if (p < 0) {
		what = "cannot fork into the new PID namespace";
		goto fail;
	}
	if (p == 0) {
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("tmpfs", "/tmp", "tmpfs", 0, "size=64k") < 0 || mkdir("/tmp/p", 0755) < 0 ||
		    mount("proc", "/tmp/p", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			_exit(3);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			_exit(4);
		scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
		if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ptrace), 0) < 0 || seccomp_load(ctx) < 0)
			_exit(5);
		seccomp_release(ctx);
		_exit(0);
	}
	int st;
	if (waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		int c = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		what = c == 3 ? "cannot mount a proc filesystem for a new PID namespace"
		     : c == 4 ? "cannot set no_new_privs"
		     : c == 5 ? "seccomp filters are not available"
			      : "the PID namespace probe failed";
		errno = 0;
		goto fail;
	}
	_exit(0);
fail:;
	int n = snprintf(msg, sizeof msg, "%s%s%s", what, errno ? ": " : "", errno ? strerror(errno) : "");
	if (n > 0) {
		ssize_t w = write(report, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
		(void)w;
	}
	_exit(1);
}

int gh_sandbox_check(char *why, size_t whylen)
{
	int pfd[2];
	if (why && whylen)
		why[0] = '\0';
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		if (why)
			snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -1;
	}
	pid_t p = fork();
	if (p < 0) {
		if (why)
			snprintf(why, whylen, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (p == 0) {
		close(pfd[0]);
		probe_child(pfd[1]);
	}
	close(pfd[1]);
	char msg[200];
	ssize_t n = read(pfd[0], msg, sizeof msg - 1);
	close(pfd[0]);
	int st = 0;
	while (waitpid(p, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (why) {
		if (n > 0) {
			msg[n] = '\0';
			snprintf(why, whylen, "%s", msg);
		} else {
			snprintf(why, whylen, "the namespace probe failed");
		}
	}
	return -1;
}

/* ---- outside: the run ---- */

/* A bounded pass-through of one of the child's output streams. */
struct stream {
	int fd;          /* our read end, -1 at EOF */
	int to;          /* where it goes (1 or 2) */
	const char *name;
	int64_t passed, limit;
	bool noted;
};

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Reads what is available; passes through up to the limit and discards the rest. */
static void pump(struct stream *s)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(s->fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(s->fd);
			s->fd = -1;
			return;
		}
		int64_t room = s->limit - s->passed;
		size_t pass = room <= 0 ? 0 : (room < n ? (size_t)room : (size_t)n);
		if (pass)
			write_all(s->to, buf, pass);
		s->passed += (int64_t)pass;
		if ((size_t)n > pass && !s->noted) {
			char note[160];
			int m = snprintf(note, sizeof note, "\n[gatehouse: sandbox %s truncated at %lld bytes]\n", s->name,
					 (long long)s->limit);
			if (m > 0)
				write_all(2, note, (size_t)m);
			s->noted = true;
		}
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Moves fd to a number >= 100 (so the fixed numbers can be assigned without collisions). */
static int lift(int fd)
{
	if (fd < 0)
		return -1;
	int n = fcntl(fd, F_DUPFD, 100);
	return n;
}

static void fmt_seconds(char *out, size_t len, int64_t ms)
{
	if (ms % 1000 == 0)
		snprintf(out, len, "%lld", (long long)(ms / 1000));
	else
		snprintf(out, len, "%.1f", (double)ms / 1000.0);
}

/* The length of this process's argument area, per the kernel (0 if it cannot be read). */
static size_t own_cmdline_len(void)
{
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[4096];
	size_t n = 0;
	ssize_t r;
	while ((r = read(fd, buf, sizeof buf)) > 0 && n < (64u << 20))
		n += (size_t)r;
	close(fd);
	return r < 0 ? 0 : n;
}

int gh_sandbox_run(const struct gh_sandbox_opts *o, struct gh_sandbox_result *res, struct gh_error *err)
{
	int rc = 0;
	int outp[2] = {-1, -1}, errp[2] = {-1, -1}, syncp[2] = {-1, -1}, statp[2] = {-1, -1}, buildp[2] = {-1, -1};
	int devnull = -1, pidfd = -1;
	pid_t pid = -1;
	struct cgroup cg;
	memset(&cg, 0, sizeof cg);
	memset(res, 0, sizeof *res);
	if (!o || !o->argv || !o->argv[0] || !o->env)
		return gh_error_set(err, GH_EINVAL, "sandbox: no command or no environment");
	/* No separate probe: building the sandbox is the check. Whatever the machine refuses
	 * (namespaces, maps, mounts, seccomp) is reported from here or from init's build pipe,
	 * before the command is started. */

	struct child_args a = {
		.o = o,
		.argv = (char *const *)(uintptr_t)o->argv,
		.cmdline = program_invocation_name,
		.cmdline_len = own_cmdline_len(),
		.cpu_seconds = o->cpu_seconds > 0 ? o->cpu_seconds : SB_DEFAULT_CPU,
		.tmp_bytes = o->tmp_bytes > 0 ? o->tmp_bytes : SB_DEFAULT_TMP,
		.memory_bytes = o->memory_bytes > 0 ? o->memory_bytes : SB_DEFAULT_MEMORY,
	};
	int64_t timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : SB_DEFAULT_TIMEOUT_MS;
	int64_t output_bytes = o->output_bytes > 0 ? o->output_bytes : SB_DEFAULT_OUTPUT;
	uid_t uid = geteuid();
	gid_t gid = getegid();
	bool root = uid == 0;
	a.drop_groups = root;

	rc = build_filter(&a.filter, err);
	if (rc != 0)
		return rc;
	cg_create(&cg, a.memory_bytes);
	a.use_rlimit_as = cg.kind == CG_NONE;
	snprintf(res->memory_limit_by, sizeof res->memory_limit_by, "%s",
		 cg.kind == CG_V2 ? "cgroup v2" : cg.kind == CG_V1 ? "cgroup v1" : "RLIMIT_AS");

	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || pipe2(syncp, O_CLOEXEC) < 0 ||
	    pipe2(statp, O_CLOEXEC) < 0 || pipe2(buildp, O_CLOEXEC) < 0 ||
	    (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		rc = gh_error_set(err, GH_EIO, "sandbox: pipes: %s", strerror(errno));
		goto out;
	}

	pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET |
						      CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | SIGCHLD),
			     NULL, NULL, NULL, NULL);
	if (pid < 0) {
		rc = gh_error_set(err, GH_EDENIED, "sandbox unavailable on this machine: new namespaces: %s%s",
				  strerror(errno),
				  errno == EPERM || errno == EINVAL || errno == ENOSPC
					  ? " (unprivileged user namespaces disabled?)" : "");
		goto out;
	}
	if (pid == 0) {
		/* fixed descriptors, every other one closed (no host fd leaks into the sandbox) */
		int fo = lift(outp[1]), fe = lift(errp[1]), fn = lift(devnull), fs = lift(syncp[0]), ft = lift(statp[1]),
		    fb = lift(buildp[1]), fg = o->egress_fd >= 0 ? lift(o->egress_fd) : -1;
		if (fo < 0 || fe < 0 || fn < 0 || fs < 0 || ft < 0 || fb < 0 || (o->egress_fd >= 0 && fg < 0))
			_exit(127);
		if (dup2(fn, 0) < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0 || dup2(fs, FD_SYNC) < 0 ||
		    dup2(ft, FD_STATUS) < 0 || dup2(fb, FD_BUILD) < 0 || (fg >= 0 && dup2(fg, FD_EGRESS) < 0))
			_exit(127);
		if (syscall(SYS_close_range, FD_FIRST_FREE, ~0U, 0) < 0)
			for (int fd = FD_FIRST_FREE; fd < 65536; fd++)
				close(fd);
		init_main(&a);
	}
	close(outp[1]);
	close(errp[1]);
	close(syncp[0]);
	close(statp[1]);
	close(buildp[1]);
	outp[1] = errp[1] = syncp[0] = statp[1] = buildp[1] = -1;

	/* maps, cgroup, then release init */
	char path[64], map[64];
	uid_t out_uid = root ? SB_ROOT_OUTSIDE_ID : uid;
	gid_t out_gid = root ? SB_ROOT_OUTSIDE_ID : gid;
	snprintf(path, sizeof path, "/proc/%d/setgroups", (int)pid);
	if (!root && write_str(path, "deny") < 0) {
		rc = gh_error_set(err, GH_EIO, "sandbox: setgroups deny: %s", strerror(errno));
		goto kill_out;
	}
	snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
	snprintf(map, sizeof map, "%d %u 1", SB_INSIDE_ID, (unsigned)out_uid);
	if (write_str(path, map) < 0) {
		rc = gh_error_set(err, GH_EIO, "sandbox: uid_map: %s", strerror(errno));
		goto kill_out;
	}
	snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
	snprintf(map, sizeof map, "%d %u 1", SB_INSIDE_ID, (unsigned)out_gid);
	if (write_str(path, map) < 0) {
		rc = gh_error_set(err, GH_EIO, "sandbox: gid_map: %s", strerror(errno));
		goto kill_out;
	}
	if (cg_attach(&cg, pid) < 0) {
		rc = gh_error_set(err, GH_EIO, "sandbox: joining the cgroup: %s", strerror(errno));
		goto kill_out;
	}
	int64_t start = now_ms();
	if (write(syncp[1], "g", 1) != 1) {
		rc = gh_error_set(err, GH_EIO, "sandbox: releasing init: %s", strerror(errno));
		goto kill_out;
	}
	close(syncp[1]);
	syncp[1] = -1;

	/* build result: EOF with nothing means built; a message means nothing ran */
	char bmsg[SB_BUILD_MSG + 1];
	ssize_t bn;
	struct pollfd bp = {.fd = buildp[0], .events = POLLIN};
	int pr;
	while ((pr = poll(&bp, 1, (int)(timeout_ms < INT_MAX ? timeout_ms : INT_MAX))) < 0 && errno == EINTR)
		;
	if (pr == 0) {
		rc = gh_error_set(err, GH_ETIMEOUT, "sandbox could not be built within %lld ms", (long long)timeout_ms);
		goto kill_out;
	}
	while ((bn = read(buildp[0], bmsg, sizeof bmsg - 1)) < 0 && errno == EINTR)
		;
	if (bn > 0) {
		bmsg[bn] = '\0';
		rc = gh_error_set(err, GH_EIO, "sandbox could not be built: %s", bmsg);
		goto kill_out;
	}

	struct stream so = {.fd = outp[0], .to = 1, .name = "stdout", .limit = output_bytes};
	struct stream se = {.fd = errp[0], .to = 2, .name = "stderr", .limit = output_bytes};
	outp[0] = errp[0] = -1;
	fcntl(so.fd, F_SETFL, O_NONBLOCK);
	fcntl(se.fd, F_SETFL, O_NONBLOCK);
	int64_t deadline = start + timeout_ms;
	bool timed_out = false, reaped = false;
	/* init's exit wakes the loop through a pidfd; without one (old kernel) it is polled */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int wst = 0;
	while (!reaped || so.fd >= 0 || se.fd >= 0) {
		struct pollfd pf[3];
		nfds_t n = 0;
		if (pidfd >= 0 && !reaped)
			pf[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		if (so.fd >= 0)
			pf[n++] = (struct pollfd){.fd = so.fd, .events = POLLIN};
		if (se.fd >= 0)
			pf[n++] = (struct pollfd){.fd = se.fd, .events = POLLIN};
		int64_t wait = reaped ? 100 : deadline - now_ms();
		if (wait > 20 && pidfd < 0)
			wait = 20; /* checks init's exit this often */
		if (wait < 0)
			wait = 0;
		if (poll(pf, n, (int)wait) > 0) {
			for (nfds_t i = 0; i < n; i++)
				if (pf[i].revents) {
					if (pf[i].fd == so.fd)
						pump(&so);
					else if (pf[i].fd == se.fd)
						pump(&se);
				}
		}
		if (!reaped) {
			pid_t w = waitpid(pid, &wst, WNOHANG);
			if (w == pid) {
				reaped = true;
				pid = -1;
			} else if (now_ms() >= deadline && !timed_out) {
				timed_out = true;
				kill(pid, SIGKILL);
			}
		}
	}

	/* the status: the command's, as init saw it; else init's own (killed) */
	int cst;
	bool have_cmd = read(statp[0], &cst, sizeof cst) == (ssize_t)sizeof cst;
	int st = have_cmd ? cst : wst;
	char secs[32];
	if (timed_out) {
		fmt_seconds(secs, sizeof secs, timeout_ms);
		res->status = GH_SANDBOX_EXIT_TIMEOUT;
		snprintf(res->reason, sizeof res->reason, "timeout after %s s", secs);
	} else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && cg_oom_killed(&cg)) {
		res->status = GH_SANDBOX_EXIT_OOM;
		snprintf(res->reason, sizeof res->reason, "killed: out of memory (limit %lld MiB)",
			 (long long)(a.memory_bytes >> 20));
	} else if (WIFSIGNALED(st)) {
		int sig = WTERMSIG(st);
		res->status = 128 + sig;
		if (sig == SIGXCPU || (sig == SIGKILL && have_cmd))
			snprintf(res->reason, sizeof res->reason, "killed: %s (cpu limit %lld s)",
				 sig == SIGXCPU ? "cpu time exceeded" : "SIGKILL", (long long)a.cpu_seconds);
		else
			snprintf(res->reason, sizeof res->reason, "killed by signal %d (%s)", sig, strsignal(sig));
		if (!have_cmd && !timed_out)
			snprintf(res->reason, sizeof res->reason, "sandbox init killed by signal %d", sig);
	} else if (WIFEXITED(st)) {
		res->status = WEXITSTATUS(st);
		if (!have_cmd && cg_oom_killed(&cg)) {
			res->status = GH_SANDBOX_EXIT_OOM;
			snprintf(res->reason, sizeof res->reason, "killed: out of memory (limit %lld MiB)",
				 (long long)(a.memory_bytes >> 20));
		}
	}
	goto out;

kill_out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		pid = -1;
	}
out:
	{
		int *fds[] = {&outp[0], &outp[1], &errp[0], &errp[1], &syncp[0], &syncp[1], &statp[0], &statp[1],
			      &buildp[0], &buildp[1], &devnull, &pidfd};
		for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
			if (*fds[i] >= 0)
				close(*fds[i]);
	}
	cg_remove(&cg);
	free(a.filter.filter);
	return rc;
}
