/*
 * test_wal_defer.c: group commit from an event loop (wal_defer_begin and
 * wal_defer_end, wal.h). A network thread appends a turn's records with
 * the writer's wake-up deferred, then wakes it once: the records must go
 * out as one batch, nothing may wait for ever, and every record must be
 * durable and intact afterwards.
 *
 *  - deferred appends to an idle writer stay unwritten until
 *    wal_defer_end, which writes them as one batch;
 *  - a turn whose records fill the buffer's half does not hang (an
 *    appender that must wait for room wakes the writer itself);
 *  - wal_defer_end without appends, or for another log, wakes nothing;
 *  - every record reads back intact, in order.
 */
#include "../wal_test.h"

#include <errno.h>

/* Counts the records read back and checks each one's bytes. */
struct readback {
	uint64_t next, count;
};

static int check_record(void *ctx, uint64_t lsn, const void *payload,
			size_t size)
{
	struct readback *rb = ctx;
	uint8_t want[256];

	CHECK_EQ(lsn, rb->next);
	REQUIRE(size <= sizeof(want));
	fill(want, size, lsn);
	CHECK(memcmp(payload, want, size) == 0);
	rb->next++;
	rb->count++;
	return 0;
}

/* Opens dir's log with the smallest buffer; starts it if start. */
static void open_small(const char *dir, wal **w, bool start)
{
	struct wal_config cfg;

	wal_config_default(&cfg);
	cfg.dir = dir;
	cfg.segment_size = SEG_SMALL;
	cfg.buffer_size = WAL_BUFFER_SIZE_MIN;
	*w = wal_test_open(&cfg);
	if (start)
		REQUIRE(wal_start(*w) == 0);
}

static uint64_t append(wal *w, size_t size)
{
	uint8_t p[256];
	uint64_t lsn = 0, next;
	struct wal_stats st;

	/* The payload is a function of the LSN the record will get (one
	 * appender: the next one handed out). */
	wal_stats(w, &st);
	next = st.appended_lsn + 1;
	fill(p, size, next);
	REQUIRE(wal_append(w, p, size, &lsn) == 0);
	CHECK_EQ(lsn, next);
	return lsn;
}

static void test_one_batch(void)
{
	char dir[128];
	struct wal_stats before, after;
	uint64_t first, last = 0;
	wal *w;

	snprintf(dir, sizeof(dir), "%s/one", root);
	open_small(dir, &w, true);
	first = append(w, 16); /* not deferred: written at once */
	REQUIRE(wal_wait_durable(w, first) == 0);
	wal_stats(w, &before);

	wal_defer_begin();
	for (int i = 0; i < 100; i++)
		last = append(w, (size_t)(i % 200));
	usleep(50 * 1000);
	/* The writer was idle and nobody woke it. */
	CHECK_EQ(wal_durable_lsn(w), first);
	wal_defer_end(w);
	REQUIRE(wal_wait_durable(w, last) == 0);
	wal_stats(w, &after);
	CHECK_EQ(after.batch_count, before.batch_count + 1);

	/* Nothing appended in between: wal_defer_end wakes nothing. */
	wal_defer_begin();
	wal_defer_end(w);
	wal_stats(w, &before);
	CHECK_EQ(before.batch_count, after.batch_count);
	wal_close(w);
}

static void test_full_turn(void)
{
	char dir[128];
	uint64_t last = 0;
	struct readback rb = { .next = 1 };
	wal *w;

	snprintf(dir, sizeof(dir), "%s/full", root);
	open_small(dir, &w, true);
	/* A turn of ~3 buffers' worth: appenders must wake the writer for
	 * room themselves, or this never returns. */
	wal_defer_begin();
	for (int i = 0; i < 4000; i++)
		last = append(w, 200);
	wal_defer_end(w);
	REQUIRE(wal_wait_durable(w, last) == 0);
	wal_close(w);

	open_small(dir, &w, false);
	CHECK(wal_replay(w, 1, check_record, &rb) == 0);
	CHECK_EQ(rb.count, last);
	wal_close(w);
}

static void test_other_log(void)
{
	char a_dir[128], b_dir[128];
	uint64_t lsn;
	wal *a, *b;

	snprintf(a_dir, sizeof(a_dir), "%s/a", root);
	snprintf(b_dir, sizeof(b_dir), "%s/b", root);
	open_small(a_dir, &a, true);
	open_small(b_dir, &b, true);
	wal_defer_begin();
	lsn = append(a, 32);
	wal_defer_end(b); /* not the log appended to: a stays unwritten */
	usleep(20 * 1000);
	CHECK_EQ(wal_durable_lsn(a), 0);
	wal_defer_begin();
	wal_defer_end(a); /* still owed to a */
	REQUIRE(wal_wait_durable(a, lsn) == 0);
	wal_close(a);
	wal_close(b);
}

int main(void)
{
	uint64_t seed = wal_test_start("wal_defer");

	WAL_TEST_RUN(test_one_batch());
	WAL_TEST_RUN(test_full_turn());
	WAL_TEST_RUN(test_other_log());
	return wal_test_end(seed);
}
