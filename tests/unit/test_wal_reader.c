/*
 * test_wal_reader.c: the tailing reader (wal_reader_*): readers tailing
 * 2 concurrent appenders across many segment roll-overs see every LSN
 * once, in order, intact, never beyond the durable LSN; a reader opened
 * mid-log or ahead of the log; -ENODATA below the oldest kept record after
 * retention removed segments, and when removal happens anyway; wal_retain
 * keeps what a reader needs, the smallest of several holders' LSNs
 * (wal_retain_for); fn stopping the call; -EUCLEAN on a corrupt
 * record. Exit 0 when every check passes. Seed: WAL_SEED or the time.
 */
#include <dirent.h>
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

#define APPENDER_COUNT 2
#define PER_THREAD 12000
#define TAIL_TOTAL (APPENDER_COUNT * PER_THREAD)
#define PAYLOAD_MAX 600

static wal *open_dir_with(const char *dir, enum wal_io io, enum wal_sync sync)
{
	struct wal_config cfg;

	wal_config_default(&cfg);
	cfg.dir = dir;
	cfg.io = io;
	cfg.sync = sync;
	cfg.segment_size = SEG_SMALL;
	cfg.buffer_size = 256u << 10;
	return wal_test_open(&cfg);
}

static wal *open_dir(const char *dir)
{
	return open_dir_with(dir, WAL_IO_THREAD, WAL_SYNC_FDATASYNC);
}

static uint64_t mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return k;
}

/* A self-describing payload: the key, then fill(key); size from the key. */
static size_t key_size(uint64_t key)
{
	return 8 + mix(key) % (PAYLOAD_MAX - 8);
}

static size_t make_payload(uint8_t *p, uint64_t key)
{
	size_t size = key_size(key);

	memcpy(p, &key, 8);
	fill(p + 8, size - 8, key);
	return size;
}

/* The key in an intact payload, or UINT64_MAX. */
static uint64_t payload_key(const void *payload, size_t size)
{
	uint8_t want[PAYLOAD_MAX];
	uint64_t key;

	if (size < 8 || size > PAYLOAD_MAX)
		return UINT64_MAX;
	memcpy(&key, payload, 8);
	if (key_size(key) != size)
		return UINT64_MAX;
	make_payload(want, key);
	return memcmp(want, payload, size) == 0 ? key : UINT64_MAX;
}

/* ---- Tailing concurrent appenders -------------------------------------- */

struct tail {
	wal *w;
	uint64_t *lsn_key; /* by LSN, written by the appenders */
	_Atomic int appenders_done;
	_Atomic uint64_t last_lsn; /* the end, once appenders are done */
};

struct appender {
	struct tail *t;
	unsigned index;
	int rc;
};

static void *appender_main(void *arg)
{
	struct appender *a = arg;
	uint8_t p[PAYLOAD_MAX];
	uint64_t i, lsn = 0;

	for (i = 0; i < PER_THREAD; i++) {
		uint64_t key = (uint64_t)(a->index + 1) << 32 | i;
		size_t size = make_payload(p, key);

		a->rc = wal_append(a->t->w, p, size, &lsn);
		if (a->rc != 0)
			break;
		REQUIRE(lsn <= TAIL_TOTAL);
		a->t->lsn_key[lsn] = key;
		if (i % 1000 == 999)
			a->rc = wal_wait_durable(a->t->w,
						 lsn); /* vary batches */
		if (a->rc != 0)
			break;
	}
	return NULL;
}

struct tailer {
	struct tail *t;
	uint64_t from_lsn;  /* 0: a random durable LSN, opened late */
	uint64_t rng;	    /* its own generator */
	uint64_t *seen_key; /* by LSN */
	/* Results, read after join. */
	uint64_t expect; /* next LSN expected */
	uint64_t first;
	uint64_t records, calls, zero_calls;
	uint64_t bad_order, bad_payload, beyond_durable, bad_zero, bad_rc;
};

static uint64_t tailer_rnd(struct tailer *tr)
{
	uint64_t z = (tr->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	return z ^ (z >> 27);
}

static int tailer_cb(void *ctx, uint64_t lsn, const void *payload, size_t size)
{
	struct tailer *tr = ctx;
	uint64_t key = payload_key(payload, size);

	if (lsn != tr->expect)
		tr->bad_order++;
	if (lsn > wal_durable_lsn(tr->t->w))
		tr->beyond_durable++;
	if (key == UINT64_MAX)
		tr->bad_payload++;
	if (lsn <= TAIL_TOTAL)
		tr->seen_key[lsn] = key;
	tr->expect = lsn + 1;
	tr->records++;
	return 0;
}

static void *tailer_main(void *arg)
{
	struct tailer *tr = arg;
	struct tail *t = tr->t;
	wal_reader *r = NULL;
	uint64_t from = tr->from_lsn;
	unsigned long spins = 0;

	if (from == 0) {
		/* Mid-log: wait until a third is durable, start in it. */
		while (wal_durable_lsn(t->w) < TAIL_TOTAL / 3)
			usleep(200);
		from = 1 + tailer_rnd(tr) % wal_durable_lsn(t->w);
	}
	tr->first = from;
	tr->expect = from;
	if (wal_reader_open(t->w, from, &r) != 0) {
		tr->bad_rc++;
		return NULL;
	}
	for (;;) {
		uint64_t d0 = wal_durable_lsn(t->w);
		uint32_t max = 1 + (uint32_t)(tailer_rnd(tr) % 300);
		int rc = wal_reader_next(r, max, tailer_cb, tr);

		tr->calls++;
		if (rc < 0 || (uint32_t)rc > max) {
			tr->bad_rc++;
			break;
		}
		if (rc == 0) {
			tr->zero_calls++;
			/* Nothing read: nothing durable beyond it then. */
			if (wal_reader_lsn(r) <= d0)
				tr->bad_zero++;
			if (atomic_load(&t->appenders_done) &&
			    wal_reader_lsn(r) > atomic_load(&t->last_lsn))
				break;
			if (++spins % 64 == 0)
				usleep(50);
		}
		if (wal_reader_lsn(r) != tr->expect)
			tr->bad_order++;
	}
	wal_reader_close(r);
	return NULL;
}

static void test_tail(enum wal_io io, enum wal_sync sync)
{
	char dir[128];
	struct tail t = { 0 };
	struct appender app[APPENDER_COUNT];
	struct tailer tr[3];
	pthread_t app_th[APPENDER_COUNT], tr_th[3];
	uint64_t segs[4096], lsn;
	size_t seg_count;
	unsigned i, k;

	snprintf(dir, sizeof(dir), "%s/tail", root);
	t.w = open_dir_with(dir, io, sync);
	REQUIRE(wal_start(t.w) == 0);
	t.lsn_key = calloc(TAIL_TOTAL + 1, sizeof(*t.lsn_key));
	REQUIRE(t.lsn_key != NULL);

	/* Readers: from 1; mid-log, opened late; ahead of the log. */
	memset(tr, 0, sizeof(tr));
	tr[0].from_lsn = 1;
	tr[1].from_lsn = 0;
	tr[2].from_lsn = 1 + rnd() % TAIL_TOTAL;
	for (k = 0; k < 3; k++) {
		tr[k].t = &t;
		tr[k].rng = rnd();
		tr[k].seen_key = calloc(TAIL_TOTAL + 1, sizeof(uint64_t));
		REQUIRE(tr[k].seen_key != NULL);
		REQUIRE(pthread_create(&tr_th[k], NULL, tailer_main, &tr[k]) ==
			0);
	}
	for (i = 0; i < APPENDER_COUNT; i++) {
		app[i] = (struct appender){ &t, i, 0 };
		REQUIRE(pthread_create(&app_th[i], NULL, appender_main,
				       &app[i]) == 0);
	}
	for (i = 0; i < APPENDER_COUNT; i++) {
		pthread_join(app_th[i], NULL);
		CHECK_EQ(app[i].rc, 0);
	}
	lsn = TAIL_TOTAL;
	CHECK_EQ(wal_wait_durable(t.w, lsn), 0);
	atomic_store(&t.last_lsn, lsn);
	atomic_store(&t.appenders_done, 1);
	for (k = 0; k < 3; k++)
		pthread_join(tr_th[k], NULL);

	seg_count = list_segments(dir, segs, 4096);
	printf("tail (%s, %s): %u records in %zu segments; readers from %" PRIu64
	       ", %" PRIu64 ", %" PRIu64 ": %" PRIu64 "/%" PRIu64 "/%" PRIu64
	       " calls (%" PRIu64 "/%" PRIu64 "/%" PRIu64 " empty)\n",
	       io == WAL_IO_URING ? "io_uring" : "thread",
	       sync == WAL_SYNC_WRITE ? "sync write" : "fdatasync", TAIL_TOTAL,
	       seg_count, tr[0].first, tr[1].first, tr[2].first, tr[0].calls,
	       tr[1].calls, tr[2].calls, tr[0].zero_calls, tr[1].zero_calls,
	       tr[2].zero_calls);
	CHECK(seg_count > 20); /* many roll-overs */
	for (k = 0; k < 3; k++) {
		uint64_t l, mismatch = 0;

		CHECK_EQ(tr[k].bad_rc, 0);
		CHECK_EQ(tr[k].bad_order, 0);
		CHECK_EQ(tr[k].bad_payload, 0);
		CHECK_EQ(tr[k].beyond_durable, 0);
		CHECK_EQ(tr[k].bad_zero, 0);
		CHECK_EQ(tr[k].records, TAIL_TOTAL - tr[k].first + 1);
		CHECK_EQ(tr[k].expect, TAIL_TOTAL + 1);
		for (l = tr[k].first; l <= TAIL_TOTAL; l++)
			if (tr[k].seen_key[l] != t.lsn_key[l])
				mismatch++;
		CHECK_EQ(mismatch, 0);
		free(tr[k].seen_key);
	}
	/* Every key once: per appender, keys in LSN order are 0, 1, ... */
	{
		uint64_t next_seq[APPENDER_COUNT] = { 0 }, l, bad = 0;

		for (l = 1; l <= TAIL_TOTAL; l++) {
			uint64_t key = t.lsn_key[l];
			unsigned a = (unsigned)(key >> 32) - 1;

			if (a >= APPENDER_COUNT ||
			    (key & 0xffffffffu) != next_seq[a]++)
				bad++;
		}
		CHECK_EQ(bad, 0);
	}
	wal_close(t.w);
	free(t.lsn_key);
	rm_rf(dir);
}

/* ---- Retention, -ENODATA, fn stopping, corruption ---------------------- */

/* Single appender: the payload of LSN l is fill(size_of(l), l). */
static size_t lsn_size(uint64_t lsn) { return 1 + mix(lsn) % 400; }

static uint64_t append_lsn_n(wal *w, uint64_t count)
{
	uint8_t p[512];
	struct wal_stats st;
	uint64_t i, lsn = 0;

	for (i = 0; i < count; i++) {
		uint64_t want;

		wal_stats(w, &st);
		want = st.appended_lsn + 1;
		fill(p, lsn_size(want), want);
		REQUIRE(wal_append(w, p, lsn_size(want), &lsn) == 0);
		REQUIRE(lsn == want);
	}
	REQUIRE(wal_wait_durable(w, lsn) == 0);
	return lsn;
}

struct collect {
	uint64_t expect;
	uint64_t count;
	uint64_t bad;
	uint64_t stop_at; /* fn returns stop_rc at this LSN (0: never) */
	int stop_rc;
};

static int collect_cb(void *ctx, uint64_t lsn, const void *payload, size_t size)
{
	struct collect *c = ctx;
	uint8_t want[512];

	if (lsn == c->stop_at)
		return c->stop_rc;
	fill(want, lsn_size(lsn), lsn);
	if (lsn != c->expect || size != lsn_size(lsn) ||
	    memcmp(want, payload, size) != 0)
		c->bad++;
	c->expect = lsn + 1;
	c->count++;
	return 0;
}

/* Reads until nothing is left or an error: 0 or the error. */
static int drain(wal_reader *r, struct collect *c)
{
	int rc;

	do
		rc = wal_reader_next(r, 1 + (uint32_t)(rnd() % 100), collect_cb,
				     c);
	while (rc > 0);
	return rc;
}

static int snapshot(wal *w, uint64_t lsn)
{
	wal_snap *s = NULL;
	int rc = wal_snapshot_begin(w, lsn, &s);

	if (rc != 0)
		return rc;
	rc = wal_snapshot_write(s, &lsn, sizeof(lsn));
	if (rc != 0) {
		wal_snapshot_abort(s);
		return rc;
	}
	return wal_snapshot_commit(s);
}

static void test_retention(void)
{
	char dir[128];
	struct collect ca = { 0 }, cb = { 0 };
	wal_reader *ra = NULL, *rb = NULL, *rc_ = NULL;
	uint64_t segs[1024], hold, end;
	size_t n, m;
	wal *w;

	snprintf(dir, sizeof(dir), "%s/retain", root);
	w = open_dir(dir);
	REQUIRE(wal_start(w) == 0);
	end = append_lsn_n(w, 4000);
	n = list_segments(dir, segs, 1024);
	REQUIRE(n >= 6);

	/* The replicator holds from the middle of the third segment. */
	hold = segs[2] + (segs[3] - segs[2]) / 2;
	wal_retain(w, hold);
	CHECK_EQ(wal_reader_open(w, hold, &ra), 0);
	ca.expect = hold;
	CHECK_EQ(wal_reader_next(ra, 10, collect_cb, &ca), 10);
	CHECK_EQ(wal_reader_lsn(ra), hold + 10);

	/* Two snapshots past everything: the older one covers all but the
	 * last segment, the hold keeps the third segment and after. */
	CHECK_EQ(snapshot(w, end), 0);
	end = append_lsn_n(w, 50);
	CHECK_EQ(snapshot(w, end), 0);
	m = list_segments(dir, segs + 512, 512);
	CHECK(m >= n - 2); /* the 50 may have started one more */
	CHECK_EQ(segs[512], segs[2]);

	/* Below the oldest kept record: -ENODATA; from it: fine. */
	rb = (wal_reader *)1;
	CHECK_EQ(wal_reader_open(w, 1, &rb), -ENODATA);
	CHECK(rb == NULL);
	CHECK_EQ(wal_reader_open(w, segs[2] - 1, &rb), -ENODATA);
	CHECK_EQ(wal_reader_open(w, segs[2], &rb), 0);
	cb.expect = segs[2];
	CHECK_EQ(drain(rb, &cb), 0);
	CHECK_EQ(cb.count, end - segs[2] + 1);
	CHECK_EQ(cb.bad, 0);
	wal_reader_close(rb);

	/* The held reader goes on to the end. */
	CHECK_EQ(drain(ra, &ca), 0);
	CHECK_EQ(ca.count, end - hold + 1);
	CHECK_EQ(ca.bad, 0);
	CHECK_EQ(wal_reader_lsn(ra), end + 1);

	/* fn stopping: positive returns the count, the record comes again;
	 * negative is returned. */
	end = append_lsn_n(w, 20);
	ca.stop_at = wal_reader_lsn(ra) + 5;
	ca.stop_rc = 1;
	CHECK_EQ(wal_reader_next(ra, 100, collect_cb, &ca), 5);
	CHECK_EQ(wal_reader_lsn(ra), ca.stop_at);
	ca.stop_rc = -EPIPE;
	CHECK_EQ(wal_reader_next(ra, 100, collect_cb, &ca), -EPIPE);
	CHECK_EQ(wal_reader_lsn(ra), ca.stop_at);
	ca.stop_at = 0;
	CHECK_EQ(wal_reader_next(ra, 0, collect_cb, &ca), 0);
	CHECK_EQ(drain(ra, &ca), 0);
	CHECK_EQ(wal_reader_lsn(ra), end + 1);
	CHECK_EQ(ca.bad, 0);

	/* A reader ahead of the log waits for it. */
	CHECK_EQ(wal_reader_open(w, end + 5, &rc_), 0);
	cb = (struct collect){ .expect = end + 5 };
	CHECK_EQ(wal_reader_next(rc_, 100, collect_cb, &cb), 0);
	end = append_lsn_n(w, 3);
	CHECK_EQ(wal_reader_next(rc_, 100, collect_cb, &cb), 0);
	end = append_lsn_n(w, 600); /* a roll-over in between */
	CHECK_EQ(drain(rc_, &cb), 0);
	CHECK_EQ(cb.count, end - (end - 603 + 5) + 1);
	CHECK_EQ(cb.bad, 0);
	wal_reader_close(rc_);

	/* Removal without a hold: a reader in an old segment reads what it
	 * has mapped, then -ENODATA, and stays there. */
	n = list_segments(dir, segs, 1024);
	CHECK_EQ(wal_reader_open(w, segs[0] + 1, &rb), 0);
	cb = (struct collect){ .expect = segs[0] + 1 };
	CHECK_EQ(wal_reader_next(rb, 1, collect_cb, &cb), 1);
	wal_retain(w, UINT64_MAX);
	end = append_lsn_n(w, 1000);
	CHECK_EQ(snapshot(w, end), 0);
	end = append_lsn_n(w, 10);
	CHECK_EQ(snapshot(w, end), 0);
	m = list_segments(dir, segs + 512, 512);
	CHECK(m >= 1);
	CHECK(segs[512] > segs[1]); /* the first two went */
	CHECK_EQ(drain(rb, &cb), -ENODATA);
	CHECK_EQ(wal_reader_lsn(rb), segs[1]);
	CHECK_EQ(cb.count, segs[1] - segs[0] - 1);
	CHECK_EQ(cb.bad, 0);
	CHECK_EQ(wal_reader_next(rb, 10, collect_cb, &cb), -ENODATA);
	CHECK_EQ(wal_reader_lsn(rb), segs[1]);
	wal_reader_close(rb);
	wal_reader_close(ra);
	wal_close(w);
	rm_rf(dir);
}

/* Two holders (the replicator and the notification sender): a commit keeps
 * every segment from the smaller hold on, whichever holder it is; once one
 * lets go the other's hold still counts; with both at UINT64_MAX nothing
 * is held. */
static void test_retention_holders(void)
{
	char dir[128];
	uint64_t segs[1024], end, low, high;
	size_t n, m;
	wal *w;

	snprintf(dir, sizeof(dir), "%s/holders", root);
	w = open_dir(dir);
	REQUIRE(wal_start(w) == 0);
	CHECK_EQ(wal_retained_lsn(w), UINT64_MAX);
	end = append_lsn_n(w, 4000);
	n = list_segments(dir, segs, 1024);
	REQUIRE(n >= 6);
	low = segs[1] + 1;  /* in the second segment */
	high = segs[3] + 1; /* in the fourth */

	/* The notification sender holds less than the replicator. */
	wal_retain(w, high);
	wal_retain_for(w, WAL_HOLDER_NOTIFY, low);
	CHECK_EQ(wal_retained_lsn(w), low);
	CHECK_EQ(snapshot(w, end), 0);
	end = append_lsn_n(w, 50);
	CHECK_EQ(snapshot(w, end), 0);
	m = list_segments(dir, segs + 512, 512);
	CHECK_EQ(segs[512], segs[1]); /* only the first went */

	/* The sender moves past the replicator: the replicator's counts. */
	wal_retain_for(w, WAL_HOLDER_NOTIFY, UINT64_MAX);
	CHECK_EQ(wal_retained_lsn(w), high);
	end = append_lsn_n(w, 50);
	CHECK_EQ(snapshot(w, end), 0);
	m = list_segments(dir, segs + 512, 512);
	CHECK_EQ(segs[512], segs[3]);

	/* Both let go: all but the last segments may go. */
	wal_retain(w, UINT64_MAX);
	CHECK_EQ(wal_retained_lsn(w), UINT64_MAX);
	end = append_lsn_n(w, 50);
	CHECK_EQ(snapshot(w, end), 0);
	m = list_segments(dir, segs + 512, 512);
	CHECK(m >= 1);
	CHECK(segs[512] > segs[3]);
	wal_close(w);
	rm_rf(dir);
}

static void test_corrupt(void)
{
	char dir[128], path[192];
	struct collect c = { 0 };
	wal_reader *r = NULL;
	uint64_t segs[64], off = 64, l, bad_lsn;
	uint8_t b;
	size_t n;
	wal *w;
	int fd;

	snprintf(dir, sizeof(dir), "%s/corrupt", root);
	w = open_dir(dir);
	REQUIRE(wal_start(w) == 0);
	append_lsn_n(w, 1500);
	n = list_segments(dir, segs, 64);
	REQUIRE(n >= 3);

	/* Flip a payload byte of a record in the (sealed) first segment. */
	bad_lsn = 1 + rnd() % (segs[1] - 1);
	for (l = 1; l < bad_lsn; l++)
		off += (32 + lsn_size(l) + 7) & ~7ull;
	snprintf(path, sizeof(path), "%s/%020" PRIu64 ".wal", dir, segs[0]);
	fd = open(path, O_RDWR);
	REQUIRE(fd >= 0);
	REQUIRE(pread(fd, &b, 1, (off_t)(off + 32)) == 1);
	b ^= 0x10;
	REQUIRE(pwrite(fd, &b, 1, (off_t)(off + 32)) == 1);

	CHECK_EQ(wal_reader_open(w, 1, &r), 0);
	c.expect = 1;
	CHECK_EQ(drain(r, &c), -EUCLEAN);
	CHECK_EQ(c.count, bad_lsn - 1);
	CHECK_EQ(c.bad, 0);
	CHECK_EQ(wal_reader_lsn(r), bad_lsn);
	CHECK_EQ(wal_reader_next(r, 10, collect_cb, &c), -EUCLEAN);
	wal_reader_close(r);

	/* From after it: fine (the damage is skipped only by position). */
	CHECK_EQ(wal_reader_open(w, segs[1], &r), 0);
	c = (struct collect){ .expect = segs[1] };
	CHECK_EQ(drain(r, &c), 0);
	CHECK_EQ(c.count, 1500 - segs[1] + 1);
	wal_reader_close(r);

	/* A bad header of the next segment. */
	b ^= 0x10;
	REQUIRE(pwrite(fd, &b, 1, (off_t)(off + 32)) == 1);
	close(fd);
	snprintf(path, sizeof(path), "%s/%020" PRIu64 ".wal", dir, segs[1]);
	fd = open(path, O_RDWR);
	REQUIRE(fd >= 0);
	REQUIRE(pread(fd, &b, 1, 30) == 1);
	b ^= 0x01;
	REQUIRE(pwrite(fd, &b, 1, 30) == 1);
	close(fd);
	CHECK_EQ(wal_reader_open(w, 1, &r), 0);
	c = (struct collect){ .expect = 1 };
	CHECK_EQ(drain(r, &c), -EUCLEAN);
	CHECK_EQ(c.count, segs[1] - 1);
	CHECK_EQ(c.bad, 0);
	wal_reader_close(r);
	wal_close(w);
	rm_rf(dir);
}

int main(void)
{
	uint64_t seed = wal_test_start("wal_reader");

	test_tail(WAL_IO_THREAD, WAL_SYNC_FDATASYNC);
	test_tail(WAL_IO_URING, WAL_SYNC_WRITE);
	test_retention();
	test_retention_holders();
	test_corrupt();

	return wal_test_end(seed);
}
