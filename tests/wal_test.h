/*
 * wal_test.h: what the log's tests share: counting checks, a seeded
 * generator (splitmix64), payload patterns and temporary directories.
 * Included by one test file each, so its definitions are static.
 */
#ifndef BOOKD_WAL_TEST_H
#define BOOKD_WAL_TEST_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../wal/wal.h"

#define SEG_SMALL (128u << 10) /* the smallest segment: many roll-overs */

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

static char root[64]; /* the test's temporary directory */

/* Seeds rng_state from WAL_SEED or the clock and prints it; makes root.
 * Returns the seed, for failure messages. */
static inline uint64_t wal_test_start(const char *name)
{
	const char *seed_env = getenv("WAL_SEED");
	uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0)
				 : (uint64_t)time(NULL) ^ (uint64_t)getpid();

	printf("%s: seed %" PRIu64 " (set WAL_SEED to repeat)\n", name, seed);
	rng_state = seed;
	snprintf(root, sizeof(root), "/tmp/test_%s.XXXXXX", name);
	REQUIRE(mkdtemp(root) != NULL);
	return seed;
}

/* Opens cfg's log, or stops the test with the log's message. */
static inline wal *wal_test_open(const struct wal_config *cfg)
{
	char err[256] = "";
	wal *w = NULL;
	int rc = wal_open(cfg, &w, err, sizeof(err));

	if (rc != 0)
		printf("wal_open(%s): %d %s\n", cfg->dir, rc, err);
	REQUIRE(rc == 0);
	return w;
}

#endif
