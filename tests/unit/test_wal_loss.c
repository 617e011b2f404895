/*
 * test_wal_loss.c: damage that would lose acknowledged records silently
 * is refused (-EUCLEAN, with a message naming the file and what is lost)
 * unless the operator accepts the loss (cut_corrupt, bookd
 * --accept-log-loss): a missing last segment (the one before it ended in
 * a roll-over), a version-1 log (no trailer) still opening. The torn-tail
 * rules themselves are in test_wal.c.
 *
 * Exit 0 when every check passes. Seed: WAL_SEED or the time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "../../wal/wal.h"
#include "wal_test.h"

#define REC_SIZE 20000 /* six records to a 128 KiB segment */

static void config(struct wal_config *cfg, const char *dir, bool cut)
{
	wal_config_default(cfg);
	cfg->dir = dir;
	cfg->segment_size = SEG_SMALL;
	cfg->buffer_size = 1u << 20;
	cfg->cut_corrupt = cut;
}

static void sub_dir(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", root, name);
}

static void seg_path(char *out, size_t size, const char *dir, uint64_t lsn)
{
	snprintf(out, size, "%s/%020" PRIu64 ".wal", dir, lsn);
}

/* Appends count records keyed by their LSN, each durable before the
 * next (every one acknowledged). Returns the last LSN. */
static uint64_t append_acked(wal *w, uint64_t count)
{
	static uint8_t p[REC_SIZE];
	uint64_t i, lsn = 0;

	for (i = 0; i < count; i++) {
		fill(p, sizeof(p), wal_durable_lsn(w) + 1);
		REQUIRE(wal_append(w, p, sizeof(p), &lsn) == 0);
		REQUIRE(wal_wait_durable(w, lsn) == 0);
	}
	return lsn;
}

struct replay_count {
	uint64_t next, bad;
};

static int replay_fn(void *ctx, uint64_t lsn, const void *payload,
		     size_t size)
{
	static uint8_t want[REC_SIZE];
	struct replay_count *c = ctx;

	fill(want, sizeof(want), lsn);
	if (lsn != c->next || size != REC_SIZE ||
	    memcmp(want, payload, size) != 0)
		c->bad++;
	c->next = lsn + 1;
	return 0;
}

/* Every record 1..last replays intact, and nothing after it. */
static void check_replay(wal *w, uint64_t last)
{
	struct replay_count c = { .next = 1 };

	CHECK_EQ(wal_replay(w, 1, replay_fn, &c), 0);
	CHECK_EQ(c.bad, 0);
	CHECK_EQ(c.next, last + 1);
	CHECK_EQ(wal_durable_lsn(w), last);
}

/* The first LSNs of the segments in dir, ascending; returns the count. */
static size_t segments(const char *dir, uint64_t *lsns, size_t cap)
{
	struct dirent *de;
	size_t n = 0, i, j;
	DIR *d = opendir(dir);

	REQUIRE(d != NULL);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (l == 24 && strcmp(de->d_name + 20, ".wal") == 0) {
			REQUIRE(n < cap);
			lsns[n++] = strtoull(de->d_name, NULL, 10);
		}
	}
	closedir(d);
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && lsns[j - 1] > lsns[j]; j--) {
			uint64_t t = lsns[j];
			lsns[j] = lsns[j - 1];
			lsns[j - 1] = t;
		}
	return n;
}

static size_t count_suffix(const char *dir, const char *suffix)
{
	size_t n = 0, sl = strlen(suffix);
	struct dirent *de;
	DIR *d = opendir(dir);

	REQUIRE(d != NULL);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (l >= sl && strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* A log of `records` acknowledged records over several segments. */
static void build(const char *dir, uint64_t records)
{
	struct wal_config cfg;
	wal *w;

	rm_rf(dir);
	config(&cfg, dir, false);
	w = wal_test_open(&cfg);
	REQUIRE(wal_start(w) == 0);
	REQUIRE(append_acked(w, records) == records);
	wal_close(w);
}

static int open_err(const char *dir, bool cut, char *err, size_t err_size)
{
	struct wal_config cfg;
	wal *w = NULL;
	int rc;

	config(&cfg, dir, cut);
	err[0] = '\0';
	rc = wal_open(&cfg, &w, err, err_size);
	if (rc == 0)
		wal_close(w);
	return rc;
}

/* ---- 3: a missing successor ---------------------------------------------- */

/* The last segment deleted: the one before it ended in a roll-over, so
 * the records of the deleted one were acknowledged. Refused; accepted
 * only with cut_corrupt, which then says what is lost and leaves a log
 * that opens cleanly and takes appends at the right LSN. */
static void test_missing_last_segment(void)
{
	char dir[128], path[256], err[512];
	uint64_t lsns[16], want;
	struct wal_config cfg;
	size_t n;
	wal *w;

	sub_dir(dir, sizeof(dir), "missing-last");
	build(dir, 20);
	n = segments(dir, lsns, 16);
	REQUIRE(n >= 3);
	seg_path(path, sizeof(path), dir, lsns[n - 1]);
	REQUIRE(unlink(path) == 0);

	CHECK_EQ(open_err(dir, false, err, sizeof(err)), -EUCLEAN);
	CHECK(strstr(err, "which is missing") != NULL);
	CHECK(strstr(err, "lost") != NULL);
	CHECK(strstr(err, "accept-log-loss") != NULL);
	{
		char name[32];

		snprintf(name, sizeof(name), "%020" PRIu64 ".wal",
			 lsns[n - 1]);
		CHECK(strstr(err, name) != NULL);
	}
	printf("  refused: %s\n", err);
	/* Refusing changed nothing: refused again. */
	CHECK_EQ(open_err(dir, false, err, sizeof(err)), -EUCLEAN);

	/* Accepted: the log ends where the remaining segments end. */
	want = lsns[n - 1] - 1;
	config(&cfg, dir, true);
	w = wal_test_open(&cfg);
	check_replay(w, want);
	REQUIRE(wal_start(w) == 0);
	CHECK_EQ(append_acked(w, 8), want + 8); /* rolls over again */
	wal_close(w);
	CHECK(count_suffix(dir, ".cut") >= 1);
	config(&cfg, dir, false);
	w = wal_test_open(&cfg);
	check_replay(w, want + 8);
	wal_close(w);
	rm_rf(dir);
}

/* The last two segments deleted, or every segment after the first. */
static void test_missing_tail_segments(void)
{
	char dir[128], path[256], err[512];
	uint64_t lsns[16];
	size_t n, i;

	sub_dir(dir, sizeof(dir), "missing-two");
	build(dir, 24);
	n = segments(dir, lsns, 16);
	REQUIRE(n >= 4);
	for (i = n - 2; i < n; i++) {
		seg_path(path, sizeof(path), dir, lsns[i]);
		REQUIRE(unlink(path) == 0);
	}
	CHECK_EQ(open_err(dir, false, err, sizeof(err)), -EUCLEAN);
	CHECK(strstr(err, "which is missing") != NULL);
	for (i = 1; i < n - 2; i++) {
		seg_path(path, sizeof(path), dir, lsns[i]);
		REQUIRE(unlink(path) == 0);
	}
	CHECK_EQ(open_err(dir, false, err, sizeof(err)), -EUCLEAN);
	CHECK(strstr(err, "which is missing") != NULL);
	rm_rf(dir);
}

/* A log whose last segment was just started (no record in it yet) and a
 * log cleanly rolled over open as they are: a roll-over is not damage. */
static void test_rollover_clean(void)
{
	struct wal_config cfg;
	char dir[128];
	uint64_t lsns[16];
	size_t n, round;
	wal *w;

	sub_dir(dir, sizeof(dir), "clean");
	build(dir, 7); /* the 7th record starts segment 2 */
	n = segments(dir, lsns, 16);
	CHECK_EQ(n, 2);
	config(&cfg, dir, false);
	for (round = 0; round < 3; round++) {
		w = wal_test_open(&cfg);
		check_replay(w, 7 + round * 6);
		REQUIRE(wal_start(w) == 0);
		append_acked(w, 6);
		wal_close(w);
	}
	rm_rf(dir);
}

/* Rewrites a segment's header as format version 1 (no trailer). */
static void make_v1(const char *path)
{
	uint8_t h[64];
	uint32_t v = 1;
	uint64_t sum;
	int fd = open(path, O_RDWR);

	REQUIRE(fd >= 0);
	REQUIRE(pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h));
	memcpy(h + 8, &v, 4);
	sum = XXH3_64bits(h, 56);
	memcpy(h + 56, &sum, 8);
	REQUIRE(pwrite(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h));
	close(fd);
}

/* Logs written before the trailer existed (format version 1) open, are
 * appended to and roll over. */
static void test_version1(void)
{
	struct wal_config cfg;
	char dir[128], path[256];
	uint64_t lsns[16];
	size_t n, i;
	wal *w;

	sub_dir(dir, sizeof(dir), "v1");
	build(dir, 9);
	n = segments(dir, lsns, 16);
	REQUIRE(n == 2);
	for (i = 0; i < n; i++) {
		seg_path(path, sizeof(path), dir, lsns[i]);
		/* A version-1 segment has no trailer: zero it. */
		{
			static const uint8_t z[64];
			int fd = open(path, O_RDWR);

			REQUIRE(fd >= 0);
			REQUIRE(pwrite(fd, z, 64, SEG_SMALL - 64) == 64);
			close(fd);
		}
		make_v1(path);
	}
	config(&cfg, dir, false);
	w = wal_test_open(&cfg);
	check_replay(w, 9);
	REQUIRE(wal_start(w) == 0);
	append_acked(w, 10);
	wal_close(w);
	w = wal_test_open(&cfg);
	check_replay(w, 19);
	wal_close(w);
	rm_rf(dir);
}

#define RUN(call)                                                          \
	do {                                                               \
		unsigned long f0 = fail_count;                             \
		call;                                                      \
		printf("wal_loss: %-40s %s\n", #call,                      \
		       fail_count == f0 ? "ok" : "FAIL");                  \
	} while (0)

int main(void)
{
	uint64_t seed = wal_test_start("wal_loss");

	RUN(test_rollover_clean());
	RUN(test_missing_last_segment());
	RUN(test_missing_tail_segments());
	RUN(test_version1());
	rm_rf(root);
	if (fail_count) {
		printf("wal_loss: %lu of %lu checks FAILED (seed %" PRIu64 ")\n",
		       fail_count, check_count, seed);
		return 1;
	}
	printf("wal_loss: %lu checks passed\n", check_count);
	return 0;
}
