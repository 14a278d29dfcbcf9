/* PID 1 of the shadowvisor Linux guest, built against the kernel's own
 * tools/include/nolibc (no libc). It is the workload: it maps more anonymous
 * memory than the host gives the VM, fills it with a pattern, forks a child
 * that verifies it and rewrites half of it (copy on write: the parent's copy
 * must not change), gives a quarter back with MADV_DONTNEED (it must read back
 * as zero), unmaps another piece, re-verifies, prints the guest's /proc/meminfo
 * head and its /proc/vmstat event counters, then one line
 * "shadowvisor-init: PASS" or "shadowvisor-init: FAIL ..." and powers off
 * through the kernel (reboot -> SBI SRST).
 *
 * With svmode=balloon on the kernel command line (the kernel hands unknown
 * key=value words to init's environment) it is the balloon's workload instead:
 * it dirties svtouch MiB (default 24) and frees it, so guest free memory is
 * memory the host holds; prints MemTotal/MemFree once a second for svsecs
 * seconds (default 8) while the balloon moves; then, with svalloc=N, a child
 * maps and touches N MiB, and the line says whether it got the memory or the
 * guest's OOM killer took it.
 *
 * Everything it prints is a function of the image: no times, no addresses
 * that depend on the host, so runs with and without host pressure compare. */

#ifndef MEM_MIB
#define MEM_MIB 32
#endif

#define MEM_BYTES ((unsigned long)MEM_MIB << 20)
#define WORDS (MEM_BYTES / 4)
#define PAGE 4096u

static int failures;

static void fail(const char *what, unsigned long i, unsigned int got, unsigned int want)
{
	if (failures++ < 4)
		printf("shadowvisor-init: mismatch in %s at word %lu: got %08x want %08x\n", what, i, got, want);
}

/* Odd multiplier: distinct per word, differs between generations. */
static unsigned int pattern(unsigned long i, unsigned int gen)
{
	return (unsigned int)i * 2654435761u ^ (gen * 0x9e3779b9u) ^ 0x5a5a5a5au;
}

static void fill(volatile unsigned int *m, unsigned long from, unsigned long to, unsigned int gen)
{
	for (unsigned long i = from; i < to; i++)
		m[i] = pattern(i, gen);
}

static int verify(const char *what, volatile unsigned int *m, unsigned long from, unsigned long to, unsigned int gen)
{
	int before = failures;
	for (unsigned long i = from; i < to; i++) {
		unsigned int v = m[i], w = gen == ~0u ? 0 : pattern(i, gen);
		if (v != w)
			fail(what, i, v, w);
	}
	return failures == before;
}

/* The head of a /proc file, NUL-terminated; its length, or -1 (said once on the console when it cannot be opened). */
static ssize_t read_proc(const char *path, char *buf, size_t size, int quiet)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		if (!quiet)
			printf("shadowvisor-init: no %s (%d)\n", path, errno);
		return -1;
	}
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return n;
}

static void show_meminfo(void)
{
	static char buf[512];
	ssize_t n = read_proc("/proc/meminfo", buf, sizeof(buf), 0);
	if (n < 0)
		return;
	/* The first two lines: MemTotal and MemFree. */
	int lines = 0;
	for (ssize_t k = 0; k < n; k++)
		if (buf[k] == '\n' && ++lines == 2) {
			buf[k + 1] = 0;
			break;
		}
	printf("%s", buf);
}

/* The /proc/vmstat event counters a swap or balloon run is read by. */
static void show_vmstat(void)
{
	static char buf[4096];
	static const char *const keys[] = { "pgfault ", "pgmajfault ", "pswpin ", "pswpout ", "oom_kill ", "balloon_inflate ", "balloon_deflate " };
	if (read_proc("/proc/vmstat", buf, sizeof(buf), 0) < 0)
		return;
	printf("vmstat:");
	for (char *line = buf; *line; ) {
		char *end = line;
		while (*end && *end != '\n')
			end++;
		char c = *end;
		*end = 0;
		for (unsigned k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (strncmp(line, keys[k], strlen(keys[k])) == 0)
				printf(" %s", line);
		if (!c)
			break;
		line = end + 1;
	}
	printf("\n");
}

/* nolibc has no strstr. */
static char *find(char *s, const char *key)
{
	size_t n = strlen(key);
	for (; *s; s++)
		if (strncmp(s, key, n) == 0)
			return s;
	return 0;
}

/* The number after key and its padding (nolibc's atol does not skip blanks). */
static long field_kb(char *buf, const char *key)
{
	char *p = find(buf, key);
	if (!p)
		return -1;
	p += strlen(key);
	while (*p == ' ')
		p++;
	return atol(p);
}

/* MemTotal and MemFree in kB, from /proc/meminfo. */
static void meminfo_kb(long *total, long *free_kb)
{
	static char buf[512];
	*total = *free_kb = -1;
	if (read_proc("/proc/meminfo", buf, sizeof(buf), 1) < 0)
		return;
	*total = field_kb(buf, "MemTotal:");
	*free_kb = field_kb(buf, "MemFree:");
}

/* rv32 has only the time64 sleep: clock_nanosleep_time64(CLOCK_MONOTONIC). */
static void sleep_seconds(long s)
{
	struct { long long sec, nsec; } ts = { s, 0 };
	my_syscall4(__NR_clock_nanosleep_time64, 1, 0, &ts, 0);
}

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);
	return v ? atol(v) : dflt;
}

static void power_off(void)
{
	my_syscall0(__NR_sync);
	reboot(LINUX_REBOOT_CMD_POWER_OFF);
	for (;;)
		;
}

/* Maps and touches mib MiB one word per page; 0 when every page could be written. */
static int touch(long mib, int unmap)
{
	unsigned long bytes = (unsigned long)mib << 20;
	volatile unsigned int *m = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -1;
	for (unsigned long i = 0; i < bytes / 4; i += PAGE / 4)
		m[i] = pattern(i, 7);
	if (unmap)
		munmap((void *)m, bytes);
	return 0;
}

static int balloon_workload(void)
{
	long touch_mib = env_long("svtouch", 24), secs = env_long("svsecs", 8), alloc = env_long("svalloc", 0);
	long total, free_kb;
	if (touch_mib > 0 && touch(touch_mib, 1) != 0) {
		printf("shadowvisor-init: FAIL cannot touch %ld MiB\n", touch_mib);
		return 1;
	}
	printf("shadowvisor-init: balloon workload, touched and freed %ld MiB\n", touch_mib);
	for (long t = 0; t <= secs; t++) {
		if (t > 0)
			sleep_seconds(1);
		meminfo_kb(&total, &free_kb);
		printf("shadowvisor-init: t=%lds MemTotal %ld kB MemFree %ld kB\n", t, total, free_kb);
	}
	if (alloc > 0) {
		pid_t pid = fork();
		if (pid == 0)
			exit(touch(alloc, 0) == 0 ? 0 : 1);
		int info[32] = { 0 };
		long w = my_syscall5(__NR_waitid, P_PID, pid, info, WEXITED, 0);
		/* si_code: CLD_EXITED 1, CLD_KILLED 2; si_status: the exit status or the signal. */
		if (w == 0 && info[2] == 1 && info[5] == 0)
			printf("shadowvisor-init: child got %ld MiB\n", alloc);
		else if (w == 0 && info[2] == 2)
			printf("shadowvisor-init: child killed by signal %d asking for %ld MiB\n", info[5], alloc);
		else
			printf("shadowvisor-init: child failed (waitid %ld, code %d, status %d)\n", w, info[2], info[5]);
		meminfo_kb(&total, &free_kb);
		printf("shadowvisor-init: after the child MemTotal %ld kB MemFree %ld kB\n", total, free_kb);
	}
	show_vmstat();
	printf("shadowvisor-init: PASS\n");
	return 0;
}

int main(void)
{
	printf("shadowvisor-init: PID %d, %d MiB of anonymous memory\n", getpid(), MEM_MIB);
	if (mkdir("/proc", 0555) == 0 || errno == EEXIST)
		mount("proc", "/proc", "proc", 0, 0);
	show_meminfo();
	const char *mode = getenv("svmode");
	if (mode && strcmp(mode, "balloon") == 0) {
		balloon_workload();
		power_off();
	}

	volatile unsigned int *m = mmap(0, MEM_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		printf("shadowvisor-init: FAIL mmap %lu bytes: errno %d\n", MEM_BYTES, errno);
		power_off();
	}
	fill(m, 0, WORDS, 1);
	printf("shadowvisor-init: filled\n");
	verify("first pass", m, 0, WORDS, 1);

	/* Copy on write: the child sees generation 1 and rewrites the upper half. */
	pid_t pid = fork();
	if (pid == 0) {
		int ok = verify("child", m, 0, WORDS, 1);
		fill(m, WORDS / 2, WORDS, 2);
		ok &= verify("child rewrite", m, WORDS / 2, WORDS, 2);
		exit(ok ? 0 : 1);
	}
	if (pid < 0) {
		printf("shadowvisor-init: FAIL fork: errno %d\n", errno);
		power_off();
	}
	/* rv32 has no wait4 (its rusage has a 32-bit time_t), so nolibc's waitpid
	 * is ENOSYS there: waitid is the call. siginfo for SIGCHLD on ilp32:
	 * si_signo, si_errno, si_code (CLD_EXITED = 1), si_pid, si_uid, si_status. */
	int info[32] = { 0 };
	long w = my_syscall5(__NR_waitid, P_PID, pid, info, WEXITED, 0);
	if (w != 0 || info[2] != 1 || info[5] != 0) {
		printf("shadowvisor-init: child failed (waitid %ld, code %d, status %d)\n", w, info[2], info[5]);
		failures++;
	} else {
		printf("shadowvisor-init: child verified and rewrote its copy\n");
	}
	verify("parent after fork", m, 0, WORDS, 1);

	/* The second quarter back to the kernel: it must read as zero pages. */
	unsigned long q = WORDS / 4;
	long r = my_syscall3(__NR_madvise, (void *)(m + q), MEM_BYTES / 4, MADV_DONTNEED);
	if (r != 0) {
		printf("shadowvisor-init: madvise: %ld\n", r);
		failures++;
	}
	verify("after DONTNEED", m, q, 2 * q, ~0u);
	fill(m, q, 2 * q, 3);
	/* The last quarter unmapped; the rest must be untouched by both. */
	if (munmap((void *)(m + 3 * q), MEM_BYTES / 4) != 0) {
		printf("shadowvisor-init: munmap: errno %d\n", errno);
		failures++;
	}
	verify("final", m, 0, q, 1);
	verify("final", m, q, 2 * q, 3);
	verify("final", m, 2 * q, 3 * q, 1);
	show_meminfo();
	show_vmstat();

	if (failures == 0)
		printf("shadowvisor-init: PASS\n");
	else
		printf("shadowvisor-init: FAIL (%d mismatches)\n", failures);
	power_off();
	return 0;
}
