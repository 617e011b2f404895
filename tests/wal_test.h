/*
 * wal_test.h: what the log's tests share: a seeded generator (splitmix64),
 * payload patterns, temporary directories, opening a log, running a test
 * case by name and the last line. The checks are check.h's (CHECK,
 * CHECK_EQ, REQUIRE). Included by one test file each, so its definitions
 * are static.
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
#include "unit/check.h"

#define SEG_SMALL (128u << 10) /* the smallest segment: many roll-overs */

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
static const char *wal_test_name; /* as given to wal_test_start */

/* Seeds rng_state from WAL_SEED or the clock and prints it; makes root.
 * Returns the seed, for failure messages. */
static inline uint64_t wal_test_start(const char *name)
{
	const char *seed_env = getenv("WAL_SEED");
	uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0)
				 : (uint64_t)time(NULL) ^ (uint64_t)getpid();

	printf("%s: seed %" PRIu64 " (set WAL_SEED to repeat)\n", name, seed);
	wal_test_name = name;
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

static inline double wal_test_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs one test case (a call) and prints a line: its name, ok or FAIL
 * (whether a check in it failed), and how long it took. */
#define WAL_TEST_RUN(call)                                                 \
	do {                                                               \
		double t0_ = wal_test_now_s();                             \
		unsigned f0_ = check_fail_count;                           \
		call;                                                      \
		printf("%s: %-50s %s %.2f s\n", wal_test_name, #call,      \
		       check_fail_count == f0_ ? "ok  " : "FAIL",           \
		       wal_test_now_s() - t0_);                             \
	} while (0)

/* Removes root; prints the last line (check_end) and returns the exit
 * status. */
static inline int wal_test_end(uint64_t seed)
{
	rm_rf(root);
	return check_end(wal_test_name, seed);
}

#endif
