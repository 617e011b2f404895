/*
 * test_wal_backup.c: wal_backup (wal/wal_backup.c) copies a log while two
 * appenders write it (128 KiB segments: a roll-over every ~100 records)
 * and a third thread commits snapshots every few milliseconds (retention
 * removes segments behind them). Each copy must open as a clean log
 * (wal_snapshot_load, wal_open without cut_corrupt: its DURABLE names its
 * last record, so a hole or a cut would be refused), replay records whose
 * payloads verify, and reach at least the durable LSN read before the copy
 * began; -EAGAIN (segments removed while copying) is allowed and counted.
 * Both sync modes. Also: an existing destination is -EEXIST, a damaged
 * segment header -EUCLEAN. Seed: WAL_SEED or the time.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../wal/wal.h"
#include "wal_test.h"

#define COPY_COUNT 12
#define PAYLOAD_SIZE_MAX 1500

static _Atomic bool stop;
static _Atomic uint64_t appender_seed;

/* A payload checks itself: 8 bytes of n, then fill(n) of a size n sets. */
static size_t payload_size(uint64_t n) { return 8 + n % PAYLOAD_SIZE_MAX; }

static bool payload_ok(const uint8_t *p, size_t size)
{
	uint8_t want[8 + PAYLOAD_SIZE_MAX];
	uint64_t n;

	if (size < 8)
		return false;
	memcpy(&n, p, 8);
	if (size != payload_size(n))
		return false;
	fill(want, size - 8, n);
	return memcmp(p + 8, want, size - 8) == 0;
}

static void *appender(void *arg)
{
	wal *w = arg;
	uint8_t p[8 + PAYLOAD_SIZE_MAX];
	uint64_t n = atomic_fetch_add(&appender_seed, 1000003), lsn = 0;
	unsigned i = 0;

	while (!atomic_load(&stop)) {
		size_t size = payload_size(++n);

		memcpy(p, &n, 8);
		fill(p + 8, size - 8, n);
		if (wal_append(w, p, size, &lsn) != 0)
			break;
		if (++i % 32 == 0)
			wal_wait_durable(w, lsn);
	}
	return NULL;
}

static void *snapshotter(void *arg)
{
	wal *w = arg;
	uint8_t buf[4096];
	struct timespec nap = { 0, 3 * 1000 * 1000 };

	while (!atomic_load(&stop)) {
		uint64_t lsn = wal_durable_lsn(w);
		wal_snap *s;

		nanosleep(&nap, NULL);
		if (lsn == 0 || wal_snapshot_begin(w, lsn, &s) != 0)
			continue;
		fill(buf, sizeof(buf), lsn);
		if (wal_snapshot_write(s, buf, sizeof(buf)) == 0)
			wal_snapshot_commit(s);
		else
			wal_snapshot_abort(s);
	}
	return NULL;
}

struct replay_ctx {
	uint64_t count, last, bad;
};

static int check_record(void *ctx, uint64_t lsn, const void *payload,
			size_t size)
{
	struct replay_ctx *r = ctx;

	r->count++;
	r->last = lsn;
	if (!payload_ok(payload, size))
		r->bad++;
	return 0;
}

/* The copy in dst opens cleanly and holds every record <= durable. */
static void check_copy(const char *dst, uint64_t durable,
		       const struct wal_backup_info *info)
{
	struct wal_config cfg;
	struct replay_ctx r = { 0 };
	char err[512] = "";
	uint64_t snap_lsn = 0;
	void *buf = NULL;
	size_t size = 0;
	wal *w = NULL;
	int rc;

	rc = wal_snapshot_load(dst, &snap_lsn, &buf, &size, err, sizeof(err));
	CHECK(rc == 0 || rc == -ENOENT);
	if (rc == 0) {
		uint8_t want[4096];

		fill(want, sizeof(want), snap_lsn);
		CHECK(size == sizeof(want) && memcmp(buf, want, size) == 0);
	}
	free(buf);
	CHECK_EQ(snap_lsn, info->snapshot_lsn);
	wal_config_default(&cfg);
	cfg.dir = dst;
	rc = wal_open(&cfg, &w, err, sizeof(err));
	if (rc != 0)
		printf("wal_backup: the copy does not open: %s\n", err);
	CHECK(rc == 0);
	if (rc != 0)
		return;
	CHECK(wal_replay(w, snap_lsn + 1, check_record, &r) == 0);
	wal_close(w);
	CHECK_EQ(r.bad, 0);
	if (r.count)
		CHECK_EQ(r.last, info->last_lsn);
	CHECK((r.count ? r.last : snap_lsn) >= durable);
	CHECK(info->last_lsn >= durable);
}

static void test_live_copies(enum wal_sync sync)
{
	char src[128], dst[160], err[512];
	struct wal_config cfg;
	pthread_t th[3];
	unsigned again = 0, copied = 0;
	wal *w;

	snprintf(src, sizeof(src), "%s/src-%d", root, (int)sync);
	wal_config_default(&cfg);
	cfg.dir = src;
	cfg.segment_size = SEG_SMALL;
	cfg.buffer_size = 1u << 20;
	cfg.sync = sync;
	w = wal_test_open(&cfg);
	REQUIRE(wal_start(w) == 0);
	atomic_store(&stop, false);
	atomic_store(&appender_seed, rnd() % 1000000);
	REQUIRE(pthread_create(&th[0], NULL, appender, w) == 0);
	REQUIRE(pthread_create(&th[1], NULL, appender, w) == 0);
	REQUIRE(pthread_create(&th[2], NULL, snapshotter, w) == 0);
	for (unsigned i = 0; copied < COPY_COUNT && i < 10 * COPY_COUNT; i++) {
		struct wal_backup_info info;
		uint64_t durable;
		int rc;

		usleep((useconds_t)(rnd() % 20000));
		durable = wal_durable_lsn(w);
		snprintf(dst, sizeof(dst), "%s/copy-%d-%u", root, (int)sync, i);
		err[0] = 0;
		rc = wal_backup(src, dst, &info, err, sizeof(err));
		if (rc == -EAGAIN) {
			if (again++ == 0)
				printf("wal_backup: -EAGAIN (allowed): %s\n",
				       err);
			rm_rf(dst);
			continue;
		}
		if (rc != 0)
			printf("wal_backup: %d %s\n", rc, err);
		CHECK_EQ(rc, 0);
		if (rc == 0) {
			check_copy(dst, durable, &info);
			copied++;
		}
		rm_rf(dst);
	}
	atomic_store(&stop, true);
	for (unsigned i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	printf("wal_backup: sync %d: %u copies checked, %u -EAGAIN, log at "
	       "LSN %" PRIu64 "\n",
	       (int)sync, copied, again, wal_durable_lsn(w));
	CHECK_EQ(copied, COPY_COUNT);
	wal_close(w);
}

static void test_refusals(void)
{
	char src[128], dst[160], seg[200], err[512];
	struct wal_backup_info info;
	struct wal_config cfg;
	uint8_t p[100];
	uint64_t lsn = 0;
	wal *w;
	int fd;

	snprintf(src, sizeof(src), "%s/refuse", root);
	wal_config_default(&cfg);
	cfg.dir = src;
	cfg.segment_size = SEG_SMALL;
	w = wal_test_open(&cfg);
	REQUIRE(wal_start(w) == 0);
	fill(p, sizeof(p), 1);
	for (int i = 0; i < 10; i++)
		REQUIRE(wal_append(w, p, sizeof(p), &lsn) == 0);
	REQUIRE(wal_wait_durable(w, lsn) == 0);
	wal_close(w);
	/* A destination that exists. */
	CHECK_EQ(wal_backup(src, src, &info, err, sizeof(err)), -EEXIST);
	/* A copy of a closed log: everything, then a damaged header. */
	snprintf(dst, sizeof(dst), "%s/refuse-copy", root);
	CHECK_EQ(wal_backup(src, dst, &info, err, sizeof(err)), 0);
	CHECK_EQ(info.last_lsn, 10);
	CHECK_EQ(info.durable_lsn, 10);
	rm_rf(dst);
	seg_path(seg, sizeof(seg), src, 1);
	fd = open(seg, O_WRONLY);
	REQUIRE(fd >= 0);
	REQUIRE(pwrite(fd, "X", 1, 20) == 1);
	close(fd);
	CHECK_EQ(wal_backup(src, dst, &info, err, sizeof(err)), -EUCLEAN);
	CHECK(strstr(err, "00000000000000000001.wal") != NULL);
	rm_rf(dst);
}

int main(void)
{
	uint64_t seed = wal_test_start("wal_backup");

	WAL_TEST_RUN(test_live_copies(WAL_SYNC_WRITE));
	WAL_TEST_RUN(test_live_copies(WAL_SYNC_FDATASYNC));
	WAL_TEST_RUN(test_refusals());
	return wal_test_end(seed);
}
