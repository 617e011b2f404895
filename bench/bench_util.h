/*
 * bench_util.h: what the micro-benchmarks (bench_core, bench_node,
 * bench_repl) share: a monotonic clock, a seeded generator, and dying with
 * the program's name.
 */
#ifndef BOOKD_BENCH_UTIL_H
#define BOOKD_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NOW INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define CUSTOMER_COUNT 1000000

static inline double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* splitmix64 */
static inline uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

extern const char *bench_name;

static inline void die(const char *what)
{
	fprintf(stderr, "%s: %s\n", bench_name, what);
	exit(1);
}

#endif
