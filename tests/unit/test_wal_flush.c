/*
 * test_wal_flush.c: the caller's batch (wal.h: wal_flush_take,
 * wal_flush_done), as a network thread drives it on its own io_uring: it
 * takes the turn's records, submits a write linked to an fdatasync, and
 * hands the log the two results. Here a real io_uring does the same, and
 * the results are also made up to reach the rare paths:
 *
 *  - a taken batch is durable only after wal_flush_done, then all of it,
 *    as one batch, and reads back intact;
 *  - while the caller's batch is in flight nothing else is written (not
 *    even another thread's append, which the writer would take): the
 *    next wal_flush_take after wal_flush_done takes what came meanwhile;
 *  - a short write (the link broken: -ECANCELED) is finished by the log;
 *  - an append on the owner's thread that finds no room finishes the
 *    owner's batch itself, and the completions that come later change
 *    nothing;
 *  - a batch that would cross a segment's end is the writer's (0, writer
 *    woken), and so is everything under wal_set_syscalls;
 *  - a failed sync is the log's sticky error: nothing after it becomes
 *    durable.
 */
#include "../wal_test.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>

static void open_log(const char *dir, uint64_t segment_size, wal **w,
		     bool start)
{
	struct wal_config cfg;

	wal_config_default(&cfg);
	cfg.dir = dir;
	cfg.segment_size = segment_size;
	cfg.buffer_size = WAL_BUFFER_SIZE_MIN;
	*w = wal_test_open(&cfg);
	if (start) {
		REQUIRE(wal_start(*w) == 0);
		/* Let the writer reach its wait: a writer still starting
		 * takes what is appended as a busy one would. */
		usleep(100 * 1000);
	}
}

/* One appender at a time: the payload is a function of the next LSN. */
static pthread_mutex_t append_mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t append(wal *w, size_t size)
{
	uint8_t p[256];
	uint64_t lsn = 0, next;
	struct wal_stats st;

	pthread_mutex_lock(&append_mu);
	wal_stats(w, &st);
	next = st.appended_lsn + 1;
	fill(p, size, next);
	REQUIRE(wal_append(w, p, size, &lsn) == 0);
	CHECK_EQ(lsn, next);
	pthread_mutex_unlock(&append_mu);
	return lsn;
}

/* Submits f on ring as bookd's network thread does and waits for both
 * completions; their results in *wr and *sr. */
static void ring_flush(struct io_uring *ring, const struct wal_flush *f,
		       int *wr, int *sr)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;

	REQUIRE(sqe != NULL);
	io_uring_prep_write(sqe, f->fd, f->data, f->size, f->off);
	sqe->flags |= IOSQE_IO_LINK;
	io_uring_sqe_set_data64(sqe, 0);
	sqe = io_uring_get_sqe(ring);
	REQUIRE(sqe != NULL);
	io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(sqe, 1);
	REQUIRE(io_uring_submit(ring) == 2);
	for (int i = 0; i < 2; i++) {
		REQUIRE(io_uring_wait_cqe(ring, &cqe) == 0);
		if (io_uring_cqe_get_data64(cqe) == 0)
			*wr = cqe->res;
		else
			*sr = cqe->res;
		io_uring_cqe_seen(ring, cqe);
	}
}

/* Takes and flushes on ring every batch there is (none may be left to
 * the writer meanwhile). */
static void ring_drain(wal *w, struct io_uring *ring)
{
	struct wal_flush f;
	int wr = 0, sr = 0;

	while (wal_flush_take(w, &f) == 1) {
		ring_flush(ring, &f, &wr, &sr);
		wal_flush_done(w, &f, wr, sr);
	}
}

static void replay_all(const char *dir, uint64_t segment_size, uint64_t last)
{
	struct wal_test_readback rb = { .next = 1 };
	wal *w;

	open_log(dir, segment_size, &w, false);
	CHECK(wal_replay(w, 1, wal_test_check_record, &rb) == 0);
	CHECK_EQ(rb.count, last);
	wal_close(w);
}

static void test_ring(void)
{
	char dir[128];
	struct io_uring ring;
	struct wal_flush f;
	struct wal_stats before, after;
	uint64_t last = 0, more = 0;
	int wr = 0, sr = 0;
	wal *w;

	REQUIRE(io_uring_queue_init(8, &ring, 0) == 0);
	snprintf(dir, sizeof(dir), "%s/ring", root);
	open_log(dir, 64u << 20, &w, true);
	wal_stats(w, &before);

	/* Nothing appended: nothing to take. */
	wal_defer_begin();
	CHECK_EQ(wal_flush_take(w, &f), 0);

	wal_defer_begin();
	for (int i = 0; i < 100; i++)
		last = append(w, (size_t)(i % 200));
	REQUIRE(wal_flush_take(w, &f) == 1);
	CHECK_EQ(wal_durable_lsn(w), 0);

	/* In flight: our own take is refused, so is the writer. */
	wal_defer_begin();
	for (int i = 0; i < 10; i++)
		more = append(w, 40);
	CHECK_EQ(wal_flush_take(w, &f), 0);
	ring_flush(&ring, &f, &wr, &sr);
	CHECK_EQ(wal_durable_lsn(w), 0);
	wal_flush_done(w, &f, wr, sr);
	CHECK_EQ(wal_durable_lsn(w), last);
	wal_stats(w, &after);
	CHECK_EQ(after.batch_count, before.batch_count + 1);
	CHECK_EQ(after.sync_count, before.sync_count + 1);

	/* What came meanwhile is the next take's. */
	REQUIRE(wal_flush_take(w, &f) == 1);
	ring_flush(&ring, &f, &wr, &sr);
	wal_flush_done(w, &f, wr, sr);
	CHECK_EQ(wal_durable_lsn(w), more);
	wal_close(w);
	io_uring_queue_exit(&ring);
	replay_all(dir, 64u << 20, more);
}

struct other {
	wal *w;
	uint64_t lsn;
};

static void *other_main(void *arg)
{
	struct other *o = arg;

	o->lsn = append(o->w, 64); /* not deferred: wakes the writer */
	return NULL;
}

static void test_other_thread(void)
{
	char dir[128];
	struct io_uring ring;
	struct wal_flush f;
	struct other o;
	pthread_t th;
	uint64_t last;
	int wr = 0, sr = 0;
	wal *w;

	REQUIRE(io_uring_queue_init(8, &ring, 0) == 0);
	snprintf(dir, sizeof(dir), "%s/other", root);
	open_log(dir, 64u << 20, &w, true);
	wal_defer_begin();
	last = append(w, 100);
	REQUIRE(wal_flush_take(w, &f) == 1);
	o.w = w;
	REQUIRE(pthread_create(&th, NULL, other_main, &o) == 0);
	REQUIRE(pthread_join(th, NULL) == 0);
	usleep(50 * 1000);
	/* The writer was woken but waits: one batch at a time, in order. */
	CHECK_EQ(wal_durable_lsn(w), 0);
	ring_flush(&ring, &f, &wr, &sr);
	wal_flush_done(w, &f, wr, sr);
	CHECK_EQ(wal_durable_lsn(w), last);
	/* Another thread's record: the next take, or the writer. */
	ring_drain(w, &ring);
	REQUIRE(wal_wait_durable(w, o.lsn) == 0);
	wal_close(w);
	io_uring_queue_exit(&ring);
	replay_all(dir, 64u << 20, o.lsn);
}

static void test_short_write(void)
{
	char dir[128];
	struct wal_flush f;
	uint64_t last = 0;
	ssize_t half;
	wal *w;

	snprintf(dir, sizeof(dir), "%s/short", root);
	open_log(dir, 64u << 20, &w, true);
	wal_defer_begin();
	for (int i = 0; i < 50; i++)
		last = append(w, 200);
	REQUIRE(wal_flush_take(w, &f) == 1);
	/* Half the bytes reached the file; the link broke. */
	half = pwrite(f.fd, f.data, f.size / 2, (off_t)f.off);
	REQUIRE(half == (ssize_t)(f.size / 2));
	wal_flush_done(w, &f, (int)half, -ECANCELED);
	CHECK_EQ(wal_error(w), 0);
	CHECK_EQ(wal_durable_lsn(w), last);
	wal_close(w);
	replay_all(dir, 64u << 20, last);
}

static void test_full_in_flight(void)
{
	char dir[128];
	struct io_uring ring;
	struct wal_flush f;
	struct wal_flush copy;
	uint64_t first, last = 0;
	int wr = 0, sr = 0;
	wal *w;

	REQUIRE(io_uring_queue_init(8, &ring, 0) == 0);
	snprintf(dir, sizeof(dir), "%s/full", root);
	open_log(dir, 64u << 20, &w, true);
	wal_defer_begin();
	first = append(w, 200);
	REQUIRE(wal_flush_take(w, &f) == 1);
	copy = f; /* what the kernel was given */
	/* More than a half's worth (128 KiB) on the owner's thread: the
	 * append that finds no room finishes our batch itself. */
	wal_defer_begin();
	for (int i = 0; i < 1500; i++)
		last = append(w, 200);
	CHECK(wal_durable_lsn(w) >= first);
	/* The completions of the first submission come now. */
	ring_flush(&ring, &copy, &wr, &sr);
	CHECK_EQ(wr, (int)copy.size);
	wal_flush_done(w, &f, wr, sr);
	ring_drain(w, &ring);
	REQUIRE(wal_wait_durable(w, last) == 0);
	CHECK_EQ(wal_error(w), 0);
	wal_close(w);
	io_uring_queue_exit(&ring);
	replay_all(dir, 64u << 20, last);
}

static void test_writer_cases(void)
{
	static const struct wal_syscalls plain = { .pwrite = pwrite };
	char dir[128];
	struct wal_flush f;
	uint64_t last = 0, lsns[64];
	wal *w;

	/* A batch that crosses the segment's end: the writer rolls over. */
	snprintf(dir, sizeof(dir), "%s/roll", root);
	open_log(dir, SEG_SMALL, &w, true);
	for (int round = 0; round < 4; round++) {
		wal_defer_begin();
		for (int i = 0; i < 400; i++)
			last = append(w, 200);
		if (wal_flush_take(w, &f) == 1) {
			/* Fits in this segment: done here, synchronously. */
			REQUIRE(pwrite(f.fd, f.data, f.size, (off_t)f.off) ==
				(ssize_t)f.size);
			wal_flush_done(w, &f, (int)f.size, -ECANCELED);
		}
		REQUIRE(wal_wait_durable(w, last) == 0);
	}
	CHECK(list_segments(dir, lsns, 64) >= 2);
	wal_close(w);
	replay_all(dir, SEG_SMALL, last);

	/* A test's syscall table: every batch is the writer's. */
	snprintf(dir, sizeof(dir), "%s/table", root);
	open_log(dir, 64u << 20, &w, true);
	wal_set_syscalls(&plain);
	wal_defer_begin();
	last = append(w, 30);
	CHECK_EQ(wal_flush_take(w, &f), 0);
	REQUIRE(wal_wait_durable(w, last) == 0);
	wal_set_syscalls(NULL);
	wal_close(w);
}

static void test_failed_sync(void)
{
	char dir[128];
	struct wal_flush f;
	uint64_t lsn, more;
	wal *w;

	snprintf(dir, sizeof(dir), "%s/fail", root);
	open_log(dir, 64u << 20, &w, true);
	wal_defer_begin();
	lsn = append(w, 80);
	REQUIRE(wal_flush_take(w, &f) == 1);
	wal_defer_begin();
	more = append(w, 80); /* appended before the failure is known */
	wal_flush_done(w, &f, (int)f.size, -EIO);
	CHECK_EQ(wal_error(w), -EIO);
	CHECK_EQ(wal_durable_lsn(w), 0);
	CHECK_EQ(wal_flush_take(w, &f), 0);
	CHECK_EQ(wal_wait_durable(w, lsn), -EIO);
	CHECK_EQ(wal_wait_durable(w, more), -EIO);
	usleep(20 * 1000); /* the writer must not write it either */
	CHECK_EQ(wal_durable_lsn(w), 0);
	{
		uint8_t p[8] = { 0 };
		uint64_t x;

		CHECK_EQ(wal_append(w, p, sizeof(p), &x), -EIO);
	}
	wal_close(w);
}

int main(void)
{
	uint64_t seed = wal_test_start("wal_flush");

	WAL_TEST_RUN(test_ring());
	WAL_TEST_RUN(test_other_thread());
	WAL_TEST_RUN(test_short_write());
	WAL_TEST_RUN(test_full_in_flight());
	WAL_TEST_RUN(test_writer_cases());
	WAL_TEST_RUN(test_failed_sync());
	return wal_test_end(seed);
}
