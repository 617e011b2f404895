/*
 * wal_test.h: what the log's tests share: a seeded generator (splitmix64),
 * payload patterns, temporary directories, opening a log, running a test
 * case by name and the last line. The checks are check.h's (CHECK,
 * CHECK_EQ, REQUIRE). Included by one test file each, so its definitions
 * are static.
 */
#ifndef BOOKD_WAL_TEST_H
#define BOOKD_WAL_TEST_H

#include <dirent.h>
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

/* A replay callback (wal_replay) that checks records come in LSN order
 * from next on, each with fill()'s bytes for its LSN, and counts them. */
struct wal_test_readback {
	uint64_t next, count;
};

static inline int wal_test_check_record(void *ctx, uint64_t lsn,
					const void *payload, size_t size)
{
	struct wal_test_readback *rb = ctx;
	uint8_t want[256];

	CHECK_EQ(lsn, rb->next);
	REQUIRE(size <= sizeof(want));
	fill(want, size, lsn);
	CHECK(memcmp(payload, want, size) == 0);
	rb->next++;
	rb->count++;
	return 0;
}

/* The path of segment lsn (its first LSN) in dir. */
static inline void seg_path(char *out, size_t size, const char *dir,
			    uint64_t lsn)
{
	snprintf(out, size, "%s/%020" PRIu64 ".wal", dir, lsn);
}

static inline int wal_test_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The first LSNs of the segments in dir (at most max), ascending; returns
 * the count. */
static inline size_t list_segments(const char *dir, uint64_t *lsns, size_t max)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d = opendir(dir);

	REQUIRE(d != NULL);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (l == 24 && strspn(de->d_name, "0123456789") == 20 &&
		    strcmp(de->d_name + 20, ".wal") == 0) {
			REQUIRE(n < max);
			lsns[n++] = strtoull(de->d_name, NULL, 10);
		}
	}
	closedir(d);
	qsort(lsns, n, sizeof(*lsns), wal_test_cmp_u64);
	return n;
}

/* How many files in dir have a name that starts with prefix and ends
 * with suffix. */
static inline size_t count_files(const char *dir, const char *prefix,
				 const char *suffix)
{
	size_t n = 0, pl = strlen(prefix), sl = strlen(suffix);
	struct dirent *de;
	DIR *d = opendir(dir);

	REQUIRE(d != NULL);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (l >= pl + sl && strncmp(de->d_name, prefix, pl) == 0 &&
		    strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* wal_snapshot_load(dir), for its return code only: err gets its
 * message, the snapshot's bytes (if it loaded) are freed. */
static inline int snap_load_rc(const char *dir, char *err, size_t err_size)
{
	uint64_t lsn = 0;
	void *buf = NULL;
	size_t size = 0;
	int rc = wal_snapshot_load(dir, &lsn, &buf, &size, err, err_size);

	free(buf);
	return rc;
}

static char root[64];		  /* the test's temporary directory */
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
#define WAL_TEST_RUN(call)                                                     \
	do {                                                                   \
		double t0_ = wal_test_now_s();                                 \
		unsigned f0_ = check_fail_count;                               \
		call;                                                          \
		printf("%s: %-50s %s %.2f s\n", wal_test_name, #call,          \
		       check_fail_count == f0_ ? "ok  " : "FAIL",              \
		       wal_test_now_s() - t0_);                                \
	} while (0)

/* Removes root; prints the last line (check_end) and returns the exit
 * status. */
static inline int wal_test_end(uint64_t seed)
{
	rm_rf(root);
	return check_end(wal_test_name, seed);
}

#endif
