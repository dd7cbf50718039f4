/* A setuid-root helper for the escape tests (tests/e2e/test_run_escape.py): the test copies it
 * into the app directory owned by root with mode 4755 (and a copy with file capabilities) and
 * the program inside `gatehouse run` executes it. It reports what it got:
 *   probe        prints its ids, whether setuid(0) works, and its effective capabilities
 *   hold NONCE   the same, then stays alive 2 s (NONCE in its argv) so the test can read its
 *                real ids from outside the sandbox */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	uid_t r, e, s;
	gid_t gr, ge, gs;
	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	printf("ruid=%u euid=%u suid=%u rgid=%u egid=%u sgid=%u\n", (unsigned)r, (unsigned)e, (unsigned)s,
	       (unsigned)gr, (unsigned)ge, (unsigned)gs);
	int rc = setuid(0);
	printf("setuid0=%s\n", rc == 0 ? "OK" : strerror(errno));
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "CapEff:", 7) == 0 || strncmp(line, "CapPrm:", 7) == 0)
			fputs(line, stdout);
	if (f)
		fclose(f);
	fflush(stdout);
	if (argc > 2 && strcmp(argv[1], "hold") == 0)
		sleep(2);
	return 0;
}
