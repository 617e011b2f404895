/*
 * wal_test.h: what the log's tests share: counting checks, a seeded
 * generator (splitmix64), payload patterns and temporary directories.
 * Included by one test file each, so its definitions are static.
 */
#ifndef BOOKD_WAL_TEST_H
#define BOOKD_WAL_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned long check_count, fail_count;

#define CHECK(cond)                                                        \
	do {                                                               \
		check_count++;                                             \
		if (!(cond)) {                                             \
			fail_count++;                                      \
			printf("FAIL %s:%d: %s\n", __FILE__, __LINE__,     \
			       #cond);                                     \
		}                                                          \
	} while (0)

#define CHECK_EQ(a, b)                                                     \
	do {                                                               \
		long long a_ = (long long)(a), b_ = (long long)(b);        \
		check_count++;                                             \
		if (a_ != b_) {                                            \
			fail_count++;                                      \
			printf("FAIL %s:%d: %s == %lld, not %lld\n",       \
			       __FILE__, __LINE__, #a, a_, b_);            \
		}                                                          \
	} while (0)

#define REQUIRE(cond)                                                      \
	do {                                                               \
		if (!(cond)) {                                             \
			printf("FATAL %s:%d: %s\n", __FILE__, __LINE__,    \
			       #cond);                                     \
			exit(1);                                           \
		}                                                          \
	} while (0)

static uint64_t rng_state;

static inline uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void rm_rf(const char *path)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	REQUIRE(system(cmd) == 0);
}

static inline void fill(uint8_t *p, size_t n, uint64_t k)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(((k * 131 + i * 7) % 255) + 1);
}

#endif
