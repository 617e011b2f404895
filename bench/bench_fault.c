/*
 * bench_fault.c: what new memory costs on this machine, three ways.
 *
 *     build/bench/bench_fault [--mib N] [--rounds R]
 *
 * Each round maps N MiB of fresh anonymous memory (default 256) three
 * times and times how its pages come in:
 *   touch     one write a 4 KiB page: a page fault each (how a table or a
 *             buffer that is simply written fills);
 *   populate  madvise(MADV_POPULATE_WRITE) over the 4 KiB pages at once
 *             (what MAP_POPULATE does at mmap);
 *   huge      the same over a huge-page-aligned mapping with MADV_HUGEPAGE
 *             (how core/table.c's big tables come in, 2 MiB at a time).
 * and prints seconds per GiB and microseconds per 4 KiB page. On the
 * project's virtual machines a page fault costs far more than the zeroing
 * it does (docs/benchmarks.md, "New memory"), which is why core/idem.c
 * populates its chunks; huge pages the guest has not used before are dear
 * too, and cheap once it has, so the first run of a benchmark after a quiet
 * spell can be slower than the next.
 */
#include "bench_util.h"

#include <getopt.h>
#include <stdint.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

const char *bench_name = "bench_fault";

#define PAGE 4096u
#define HUGE ((size_t)2 << 20)

enum way { TOUCH, POPULATE, HUGE_POPULATE };
static const char *const way_names[] = { "touch", "populate", "huge" };

/* Seconds to bring in the pages of a fresh mapping of bytes, one way. */
static double fresh(size_t bytes, enum way w)
{
	size_t len = bytes + HUGE;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a;
	double t0, t;

	if (p == MAP_FAILED)
		die("mmap");
	a = (char *)(((uintptr_t)p + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
	if (madvise(a, bytes,
		    w == HUGE_POPULATE ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) != 0)
		die("madvise");
	t0 = seconds();
	if (w == TOUCH) {
		for (size_t off = 0; off < bytes; off += PAGE)
			((volatile char *)a)[off] = 1;
	} else if (madvise(a, bytes, MADV_POPULATE_WRITE) != 0) {
		die("madvise(MADV_POPULATE_WRITE): needs Linux 5.14");
	}
	t = seconds() - t0;
	munmap(p, len);
	return t;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "mib", 1, 0, 'm' },
					      { "rounds", 1, 0, 'r' },
					      { 0, 0, 0, 0 } };
	unsigned long mib = 256, rounds = 3;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'm')
			mib = strtoul(optarg, NULL, 10);
		else if (o == 'r')
			rounds = strtoul(optarg, NULL, 10);
		else
			die("usage: bench_fault [--mib N] [--rounds R]");
	}
	if (mib < 2 || mib > 65536 || rounds < 1 || rounds > 100)
		die("--mib 2..65536, --rounds 1..100");
	size_t bytes = (size_t)mib << 20;
	printf("| round | way      | s/GiB  | us/4KiB page |\n"
	       "|-------|----------|--------|--------------|\n");
	for (unsigned long r = 1; r <= rounds; r++) {
		for (enum way w = TOUCH; w <= HUGE_POPULATE; w++) {
			double t = fresh(bytes, w);
			printf("| %5lu | %-8s | %6.3f | %12.3f |\n", r,
			       way_names[w], t * (double)(1u << 30) / bytes,
			       t * 1e6 / (double)(bytes / PAGE));
		}
	}
	return 0;
}
