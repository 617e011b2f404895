/*
 * test_wal_step.c: the log's manual mode (wal_config.manual, wal_step),
 * which the deterministic simulator (tests/sim/) runs the log in: no
 * thread; appends wait in the buffer until the caller's wal_step() writes,
 * syncs and publishes them; segments roll over inside a step; an append
 * into a full buffer and wal_wait_durable() step by themselves; a failed
 * fdatasync is sticky and nothing after it is published; the log's clock
 * is the syscall table's now_ns. What a manual log wrote reopens in the
 * threaded mode with every record. Seed: WAL_SEED.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../wal/wal.h"
#include "wal_test.h"

#define RECORD_COUNT 3000

static int fail_sync; /* errno for fdatasync, 0: the real call */
static unsigned sync_calls;
static uint64_t clock_ns = 1000, clock_calls;

static int step_fdatasync(int fd)
{
	sync_calls++;
	if (fail_sync) {
		errno = fail_sync;
		return -1;
	}
	return fdatasync(fd);
}

static uint64_t step_now_ns(void)
{
	clock_calls++;
	return clock_ns;
}

static const struct wal_syscalls step_sys = {
	.fdatasync = step_fdatasync,
	.now_ns = step_now_ns,
};

struct seen {
	uint64_t count;
	bool bad;
};

static int seen_one(void *ctx, uint64_t lsn, const void *payload, size_t size)
{
	struct seen *s = ctx;
	uint8_t want[512];

	fill(want, size, lsn);
	if (lsn != s->count + 1 || size != 16 + lsn % 400 ||
	    memcmp(payload, want, size) != 0)
		s->bad = true;
	s->count++;
	return 0;
}

static void test_manual(void)
{
	char dir[128], err[256];
	struct wal_config cfg;
	struct seen s = { 0 };
	uint8_t buf[512];
	uint64_t lsn, segs[64];
	wal *w;
	int rc;

	snprintf(dir, sizeof(dir), "%s/manual", root);
	wal_config_default(&cfg);
	cfg.dir = dir;
	cfg.segment_size = SEG_SMALL;
	cfg.buffer_size = WAL_BUFFER_SIZE_MIN;
	cfg.manual = true;
	w = wal_test_open(&cfg);
	wal_set_syscalls(&step_sys);
	REQUIRE(wal_start(w) == 0);
	CHECK_EQ(wal_step(w), 0); /* nothing appended */

	/* Three appends: nothing durable until the step. */
	for (uint64_t i = 1; i <= 3; i++) {
		fill(buf, 16 + i % 400, i);
		REQUIRE(wal_append(w, buf, 16 + i % 400, &lsn) == 0);
		CHECK_EQ(lsn, i);
	}
	CHECK_EQ(wal_durable_lsn(w), 0);
	sync_calls = 0;
	CHECK_EQ(wal_step(w), 3);
	CHECK_EQ(wal_durable_lsn(w), 3);
	CHECK_EQ(sync_calls, 1); /* one batch, one fdatasync */

	/* Many: the buffer fills (appends step themselves), segments roll
	 * over inside steps; a wait steps too. */
	for (uint64_t i = 4; i <= RECORD_COUNT; i++) {
		fill(buf, 16 + i % 400, i);
		REQUIRE(wal_append(w, buf, 16 + i % 400, &lsn) == 0);
		CHECK_EQ(lsn, i);
		if (i % 700 == 0)
			CHECK_EQ(wal_wait_durable(w, i), 0);
	}
	CHECK(wal_durable_lsn(w) < RECORD_COUNT);
	CHECK_EQ(wal_wait_durable(w, RECORD_COUNT), 0);
	CHECK_EQ(wal_durable_lsn(w), RECORD_COUNT);
	CHECK(list_segments(dir, segs, 64) > 3);
	CHECK(clock_calls > 0); /* the log read its clock from the table */

	/* A failed fdatasync: sticky, nothing more published. */
	fill(buf, 16 + (RECORD_COUNT + 1) % 400, RECORD_COUNT + 1);
	REQUIRE(wal_append(w, buf, 16 + (RECORD_COUNT + 1) % 400, &lsn) == 0);
	fail_sync = EIO;
	CHECK_EQ(wal_step(w), -EIO);
	CHECK_EQ(wal_error(w), -EIO);
	CHECK_EQ(wal_durable_lsn(w), RECORD_COUNT);
	CHECK_EQ(wal_append(w, buf, 16, &lsn), -EIO);
	CHECK_EQ(wal_wait_durable(w, RECORD_COUNT + 1), -EIO);
	wal_close(w);
	fail_sync = 0;
	wal_set_syscalls(NULL);

	/* The threaded mode reads it all (the record whose sync failed may
	 * be there or not: it was written). */
	cfg.manual = false;
	w = wal_test_open(&cfg);
	rc = wal_replay(w, 1, seen_one, &s);
	CHECK_EQ(rc, 0);
	CHECK(!s.bad);
	CHECK(s.count == RECORD_COUNT || s.count == RECORD_COUNT + 1);
	wal_close(w);

	/* Manual mode takes only fdatasync and the io thread. */
	cfg.manual = true;
	cfg.sync = WAL_SYNC_WRITE;
	CHECK_EQ(wal_open(&cfg, &w, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	uint64_t seed = wal_test_start("wal_step");

	WAL_TEST_RUN(test_manual());
	return wal_test_end(seed);
}
