/*
 * test_wal_snapshot.c: snapshots (write, commit, load, fall back past a
 * corrupt one) and retention (segments go only when covered by the older
 * kept snapshot and below wal_retain), and how the log continues after a
 * snapshot. Exit 0 when every check passes. Seed: WAL_SEED or the time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../wal/wal.h"
#include "wal_test.h"

static wal *open_dir(const char *dir, bool cut_corrupt)
{
	struct wal_config cfg;

	wal_config_default(&cfg);
	cfg.dir = dir;
	cfg.segment_size = SEG_SMALL;
	cfg.buffer_size = 1u << 20;
	cfg.cut_corrupt = cut_corrupt;
	return wal_test_open(&cfg);
}

/* Appends count records of size bytes keyed by their LSN; waits. */
static void append_n(wal *w, uint64_t count, size_t size)
{
	static uint8_t p[4096];
	uint64_t i, lsn = 0;

	REQUIRE(size <= sizeof(p));
	for (i = 0; i < count; i++) {
		fill(p, size, wal_durable_lsn(w) + i + 1000000);
		REQUIRE(wal_append(w, p, size, &lsn) == 0);
	}
	REQUIRE(wal_wait_durable(w, lsn) == 0);
}

/* Writes a snapshot at lsn holding size bytes of key, in odd chunks. */
static int snapshot(wal *w, uint64_t lsn, size_t size, uint64_t key)
{
	uint8_t *buf = malloc(size + 1);
	wal_snap *s = NULL;
	size_t off = 0;
	int rc;

	REQUIRE(buf != NULL);
	fill(buf, size, key);
	rc = wal_snapshot_begin(w, lsn, &s);
	if (rc != 0) {
		free(buf);
		return rc;
	}
	while (off < size) {
		size_t n = 1 + rnd() % 300000;

		if (n > size - off)
			n = size - off;
		REQUIRE(wal_snapshot_write(s, buf + off, n) == 0);
		off += n;
	}
	free(buf);
	return wal_snapshot_commit(s);
}

static bool load_is(const char *dir, uint64_t lsn, size_t size, uint64_t key)
{
	char err[256] = "";
	uint64_t got_lsn = 0;
	void *buf = NULL;
	size_t got = 0;
	uint8_t *want;
	bool ok;
	int rc = wal_snapshot_load(dir, &got_lsn, &buf, &got, err, sizeof(err));

	if (rc != 0) {
		printf("  load: %d %s\n", rc, err);
		return false;
	}
	want = malloc(size + 1);
	REQUIRE(want != NULL);
	fill(want, size, key);
	ok = got_lsn == lsn && got == size && memcmp(buf, want, size) == 0;
	if (!ok)
		printf("  load: lsn %" PRIu64 " size %zu\n", got_lsn, got);
	free(want);
	free(buf);
	return ok;
}

static void snap_path(char *out, size_t size, const char *dir, uint64_t lsn)
{
	snprintf(out, size, "%s/snap-%016" PRIx64, dir, lsn);
}

static void flip_byte(const char *path, off_t off)
{
	uint8_t b;
	int fd = open(path, O_RDWR);

	REQUIRE(fd >= 0);
	REQUIRE(pread(fd, &b, 1, off) == 1);
	b ^= 0x40;
	REQUIRE(pwrite(fd, &b, 1, off) == 1);
	close(fd);
}

struct replay_count {
	uint64_t next, count, bad;
};

static int count_fn(void *ctx, uint64_t lsn, const void *p, size_t size)
{
	struct replay_count *c = ctx;
	uint8_t want[4096];

	(void)p;
	if (lsn != c->next || size > sizeof(want))
		c->bad++;
	c->next = lsn + 1;
	c->count++;
	return 0;
}

/* ---- Tests ---------------------------------------------------------------- */

static void test_snapshot_basic(void)
{
	char dir[128], path[256], err[256];
	wal_snap *s = NULL;
	wal *w;

	snprintf(dir, sizeof(dir), "%s/basic", root);
	w = open_dir(dir, false);
	CHECK_EQ(snap_load_rc(dir, err, sizeof(err)), -ENOENT);
	CHECK_EQ(wal_start(w), 0);
	/* Empty state at LSN 0 is a valid snapshot. */
	CHECK_EQ(snapshot(w, 0, 0, 0), 0);
	CHECK(load_is(dir, 0, 0, 0));
	append_n(w, 100, 50);
	CHECK_EQ(wal_snapshot_begin(w, 101, &s), -EINVAL); /* ahead of log */
	CHECK(s == NULL);
	CHECK_EQ(snapshot(w, 50, 3u << 20, 7), 0);
	CHECK(load_is(dir, 50, 3u << 20, 7));
	/* Abort leaves nothing behind. */
	CHECK_EQ(wal_snapshot_begin(w, 60, &s), 0);
	CHECK_EQ(wal_snapshot_write(s, "abc", 3), 0);
	wal_snapshot_abort(s);
	snap_path(path, sizeof(path), dir, 60);
	CHECK(access(path, F_OK) != 0);
	CHECK_EQ(count_files(dir, "snap-", ""), 2);
	CHECK(load_is(dir, 50, 3u << 20, 7));
	/* Commit of a record just appended waits for it to be durable. */
	{
		uint64_t l = 0;

		CHECK_EQ(wal_append(w, "zz", 2, &l), 0);
		CHECK_EQ(snapshot(w, l, 1000, 8), 0);
		CHECK(wal_durable_lsn(w) >= l);
		CHECK(load_is(dir, l, 1000, 8));
		/* The two newest kept. */
		CHECK_EQ(count_files(dir, "snap-", ""), 2);
	}
	wal_close(w);
	rm_rf(dir);
}

static void test_snapshot_fallback(void)
{
	char dir[128], path[256], err[256];
	wal *w;

	snprintf(dir, sizeof(dir), "%s/fallback", root);
	w = open_dir(dir, false);
	CHECK_EQ(wal_start(w), 0);
	append_n(w, 200, 100);
	CHECK_EQ(snapshot(w, 100, 100000, 1), 0);
	CHECK_EQ(snapshot(w, 200, 100000, 2), 0);
	CHECK(load_is(dir, 200, 100000, 2));
	wal_close(w);

	/* A flipped payload byte in the newest: falls back to the older. */
	snap_path(path, sizeof(path), dir, 200);
	flip_byte(path, 32 + 5000);
	CHECK(load_is(dir, 100, 100000, 1));
	/* The log still holds what replaying from the older one needs. */
	w = open_dir(dir, false);
	{
		struct replay_count c = { .next = 101 };

		CHECK_EQ(wal_replay(w, 101, count_fn, &c), 0);
		CHECK_EQ(c.count, 100);
		CHECK_EQ(c.bad, 0);
	}
	wal_close(w);
	/* Truncated (header and trailer no longer match the size). */
	snap_path(path, sizeof(path), dir, 100);
	REQUIRE(truncate(path, 50000) == 0);
	CHECK_EQ(snap_load_rc(dir, err, sizeof(err)), -EUCLEAN);
	CHECK(strstr(err, "none of the 2 snapshots") != NULL);
	rm_rf(dir);
}

/* Which segments must be left after retention. */
static bool must_stay(const uint64_t *segs, size_t n, size_t i, uint64_t cover,
		      uint64_t retain)
{
	uint64_t last;

	if (i + 1 == n)
		return true;
	last = segs[i + 1] - 1;
	return last > cover || last >= retain;
}

static void check_retention(const char *dir, const uint64_t *before,
			    size_t before_n, uint64_t cover, uint64_t retain)
{
	uint64_t after[4096];
	size_t i, j = 0, n = list_segments(dir, after, 4096);
	bool ok = true;

	/* Exactly the segments that must stay, stayed. */
	for (i = 0; i < before_n; i++) {
		if (!must_stay(before, before_n, i, cover, retain))
			continue;
		if (j >= n || after[j] != before[i])
			ok = false;
		j++;
	}
	CHECK(ok);
	CHECK(j <= n); /* and the ones the writer added since */
}

static void test_retention(void)
{
	uint64_t before[4096];
	size_t n;
	char dir[128];
	wal *w;

	snprintf(dir, sizeof(dir), "%s/retain", root);
	w = open_dir(dir, false);
	CHECK_EQ(wal_start(w), 0);
	append_n(w, 2000, 1000); /* ~125 records a segment */
	n = list_segments(dir, before, 4096);
	CHECK(n >= 15);

	/* Held back by the replicator at 600: only segments below it. */
	wal_retain(w, 600);
	CHECK_EQ(snapshot(w, 1500, 10, 1), 0);
	check_retention(dir, before, n, 1500, 600);
	CHECK(list_segments(dir, before, 4096) < n);
	n = list_segments(dir, before, 4096);
	CHECK(before[0] <= 600);

	/* Released: the older kept snapshot (1500) bounds removal. */
	wal_retain(w, UINT64_MAX);
	CHECK_EQ(snapshot(w, 1800, 10, 2), 0);
	check_retention(dir, before, n, 1500, UINT64_MAX);
	n = list_segments(dir, before, 4096);
	CHECK(before[0] <= 1501);
	CHECK(before[0] > 1000);

	append_n(w, 200, 1000);
	CHECK_EQ(snapshot(w, 2200, 10, 3), 0); /* keeps 2200 and 1800 */
	check_retention(dir, before, n, 1800, UINT64_MAX);
	CHECK_EQ(count_files(dir, "snap-", ""), 2);
	n = list_segments(dir, before, 4096);
	CHECK(before[0] <= 1801);
	wal_close(w);

	/* Reopen: the log starts where retention left it. */
	w = open_dir(dir, false);
	CHECK(load_is(dir, 2200, 10, 3));
	{
		struct replay_count c = { .next = 1801 };

		CHECK_EQ(wal_replay(w, 1, count_fn, &c), -ENODATA);
		CHECK_EQ(wal_replay(w, 1801, count_fn, &c), 0);
		CHECK_EQ(c.count, 400);
		CHECK_EQ(c.bad, 0);
	}
	CHECK_EQ(wal_durable_lsn(w), 2200);
	wal_close(w);
	rm_rf(dir);
}

/* The log never restarts below a snapshot. */
static void test_log_after_snapshot(void)
{
	char dir[128], dir2[128], cmd[512], err[256];
	uint64_t segs[64];
	wal *w = NULL;
	struct wal_config cfg;

	snprintf(dir, sizeof(dir), "%s/after", root);
	w = open_dir(dir, false);
	CHECK_EQ(wal_start(w), 0);
	append_n(w, 10, 10);
	CHECK_EQ(snapshot(w, 10, 10, 1), 0);
	wal_close(w);
	/* All segments gone (e.g. moved away): a new log after it. */
	snprintf(cmd, sizeof(cmd), "rm -f %s/*.wal", dir);
	REQUIRE(system(cmd) == 0);
	w = open_dir(dir, false);
	CHECK_EQ(wal_durable_lsn(w), 10);
	CHECK_EQ(wal_start(w), 0);
	append_n(w, 5, 10);
	CHECK_EQ(wal_durable_lsn(w), 15);
	CHECK_EQ(list_segments(dir, segs, 64), 1);
	CHECK_EQ(segs[0], 11);
	wal_close(w);

	/* A log that ends before the snapshot lost records: refused. */
	snprintf(dir2, sizeof(dir2), "%s/after2", root);
	w = open_dir(dir2, false);
	CHECK_EQ(wal_start(w), 0);
	append_n(w, 5, 10);
	wal_close(w);
	snprintf(cmd, sizeof(cmd), "cp %s/snap-000000000000000a %s/", dir,
		 dir2);
	REQUIRE(system(cmd) == 0);
	wal_config_default(&cfg);
	cfg.dir = dir2;
	cfg.segment_size = SEG_SMALL;
	CHECK_EQ(wal_open(&cfg, &w, err, sizeof(err)), -EUCLEAN);
	CHECK(strstr(err, "records are missing") != NULL);
	w = open_dir(dir2, true);
	CHECK_EQ(wal_durable_lsn(w), 10);
	wal_close(w);
	w = open_dir(dir2, false);
	CHECK_EQ(wal_durable_lsn(w), 10);
	wal_close(w);
	rm_rf(dir);
	rm_rf(dir2);
}

int main(void)
{
	uint64_t seed = wal_test_start("wal_snap");

	test_snapshot_basic();
	test_snapshot_fallback();
	test_retention();
	test_log_after_snapshot();

	return wal_test_end(seed);
}
