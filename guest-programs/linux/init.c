/* PID 1 of the shadowvisor Linux guest, built against the kernel's own
 * tools/include/nolibc (no libc). It is the workload: it maps more anonymous
 * memory than the host gives the VM, fills it with a pattern, forks a child
 * that verifies it and rewrites half of it (copy on write: the parent's copy
 * must not change), gives a quarter back with MADV_DONTNEED (it must read back
 * as zero), unmaps another piece, re-verifies, prints the guest's /proc/meminfo
 * head, then one line "shadowvisor-init: PASS" or "shadowvisor-init: FAIL ..."
 * and powers off through the kernel (reboot -> SBI SRST).
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

static void show_meminfo(void)
{
	static char buf[512];
	int fd = open("/proc/meminfo", O_RDONLY);
	if (fd < 0) {
		printf("shadowvisor-init: no /proc/meminfo (%d)\n", errno);
		return;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	/* The first two lines: MemTotal and MemFree. */
	int lines = 0;
	for (ssize_t k = 0; k < n; k++)
		if (buf[k] == '\n' && ++lines == 2) {
			buf[k + 1] = 0;
			break;
		}
	printf("%s", buf);
}

static void power_off(void)
{
	my_syscall0(__NR_sync);
	reboot(LINUX_REBOOT_CMD_POWER_OFF);
	for (;;)
		;
}

int main(void)
{
	printf("shadowvisor-init: PID %d, %d MiB of anonymous memory\n", getpid(), MEM_MIB);
	if (mkdir("/proc", 0555) == 0 || errno == EEXIST)
		mount("proc", "/proc", "proc", 0, 0);
	show_meminfo();

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

	if (failures == 0)
		printf("shadowvisor-init: PASS\n");
	else
		printf("shadowvisor-init: FAIL (%d mismatches)\n", failures);
	power_off();
	return 0;
}
