/*
 * test_wal_defer.c: the log from an event loop (wal.h): group commit with
 * wal_defer_begin and wal_defer_end, and eventfds written only while their
 * owner sleeps (wal_event_fd_add's idle flag). A network thread appends a
 * turn's records with the writer's wake-up deferred, then wakes it once:
 * the records must go out as one batch, nothing may wait for ever, and
 * every record must be durable and intact afterwards.
 *
 *  - deferred appends to an idle writer stay unwritten until
 *    wal_defer_end, which writes them as one batch;
 *  - a turn whose records fill the buffer's half does not hang (an
 *    appender that must wait for room wakes the writer itself);
 *  - wal_defer_end without appends, or for another log, wakes nothing;
 *  - every record reads back intact, in order;
 *  - an eventfd added with an idle flag is written after a durable
 *    advance only while the flag is set (a busy loop is not woken for
 *    every batch), one without a flag after every advance.
 */
#include "../wal_test.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>

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
	/* The writer publishes, then goes back to wait for records: give it
	 * that moment, or it takes what follows as a busy writer would. */
	usleep(50 * 1000);
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
	struct wal_test_readback rb = { .next = 1 };
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
	CHECK(wal_replay(w, 1, wal_test_check_record, &rb) == 0);
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

/* The eventfd's count, read (and so reset), waiting up to wait_ms for it
 * (the writer writes it just after it publishes the durable position); 0
 * when it was not written. */
static uint64_t drain(int fd, int wait_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v = 0;

	if (poll(&p, 1, wait_ms) != 1 ||
	    read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

static void test_idle_watch(void)
{
	char dir[128];
	_Atomic bool idle = false;
	int busy_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int plain_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct wal_config cfg;
	uint64_t lsn;
	wal *w;

	REQUIRE(busy_fd >= 0 && plain_fd >= 0);
	snprintf(dir, sizeof(dir), "%s/idle", root);
	wal_config_default(&cfg);
	cfg.dir = dir;
	cfg.segment_size = SEG_SMALL;
	w = wal_test_open(&cfg);
	REQUIRE(wal_event_fd_add(w, busy_fd, &idle) == 0);
	REQUIRE(wal_event_fd_add(w, plain_fd, NULL) == 0);
	REQUIRE(wal_start(w) == 0);

	lsn = append(w, 8); /* the owner is busy: not woken */
	REQUIRE(wal_wait_durable(w, lsn) == 0);
	CHECK_EQ(drain(busy_fd, 50), 0);
	CHECK(drain(plain_fd, 1000) >= 1);

	atomic_store(&idle, true); /* the owner sleeps: woken */
	lsn = append(w, 8);
	REQUIRE(wal_wait_durable(w, lsn) == 0);
	CHECK(drain(busy_fd, 1000) >= 1);
	CHECK(drain(plain_fd, 1000) >= 1);
	wal_close(w);
	close(busy_fd);
	close(plain_fd);
}

int main(void)
{
	uint64_t seed = wal_test_start("wal_defer");

	WAL_TEST_RUN(test_one_batch());
	WAL_TEST_RUN(test_full_turn());
	WAL_TEST_RUN(test_other_log());
	WAL_TEST_RUN(test_idle_watch());
	return wal_test_end(seed);
}
