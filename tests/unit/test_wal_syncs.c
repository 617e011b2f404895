/*
 * test_wal_syncs.c: two syncs in flight (wal_config.syncs_in_flight 2).
 * Concurrent appenders across many segment roll-overs: every LSN is
 * durable once and in order after a reopen, durable_lsn only grows and
 * never passes the contiguous prefix of batches whose fdatasync returned
 * (observed through wal_set_syscalls), two syncs do overlap, and never on
 * the same file descriptor (each syncing thread its own: errseq). An
 * injected fdatasync failure in the first or the second of two batches in
 * flight publishes nothing past the failure. Exit 0 when every check
 * passes. Seed: WAL_SEED.
 */
#include <errno.h>
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

#define REC_SIZE 120
#define THREAD_COUNT 4
#define RECORD_COUNT_PER_THREAD 6000
#define RECORD_COUNT_MAX (THREAD_COUNT * RECORD_COUNT_PER_THREAD)
#define SYNC_FD_COUNT_MAX 8

static void sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* ---- The observing syscalls ---------------------------------------------- */

/*
 * pwrite: the LSNs of the records in what a thread writes (a batch, or
 * its part in one segment) become that thread's unsynced range.
 * fdatasync: if it returns 0, the calling thread's range is synced; the
 * contiguous prefix of synced LSNs is what durable_lsn may reach.
 */
static pthread_mutex_t obs_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t obs_cv = PTHREAD_COND_INITIALIZER;
static uint8_t synced[RECORD_COUNT_MAX + 2];
static _Atomic uint64_t synced_prefix; /* every LSN <= it synced */
static int syncing_fds[SYNC_FD_COUNT_MAX];
static unsigned syncing_count, syncing_max, same_fd_count;
static _Atomic unsigned sync_delay_us;
static __thread uint64_t my_first, my_last; /* written, unsynced */

/* The fault plan of a case: which batch (1 or 2, by the order of their
 * writes) fails its fdatasync, after both are in flight. */
static _Atomic int plan_fail_batch;
static unsigned plan_batches_written, plan_in_sync, plan_returned;
static __thread int my_batch;

static void obs_reset(void)
{
	pthread_mutex_lock(&obs_mu);
	memset(synced, 0, sizeof(synced));
	atomic_store(&synced_prefix, 0);
	syncing_count = syncing_max = same_fd_count = 0;
	plan_batches_written = plan_in_sync = plan_returned = 0;
	pthread_mutex_unlock(&obs_mu);
	atomic_store(&sync_delay_us, 0);
	atomic_store(&plan_fail_batch, 0);
}

static ssize_t obs_pwrite(int fd, const void *buf, size_t size, off_t off)
{
	const uint8_t *p = buf;
	size_t at = 0;

	/* Records only (segment headers, trailers and zeros are not). */
	while (at + WAL_RECORD_HEADER_SIZE <= size && p[at + 28] == 0xb7) {
		uint64_t lsn;
		uint32_t payload;

		memcpy(&lsn, p + at + 8, sizeof(lsn));
		memcpy(&payload, p + at + 24, sizeof(payload));
		if (my_first == 0)
			my_first = lsn;
		my_last = lsn;
		at += (WAL_RECORD_HEADER_SIZE + payload + 7) & ~(size_t)7;
	}
	if (at > 0 && atomic_load(&plan_fail_batch) != 0) {
		pthread_mutex_lock(&obs_mu);
		my_batch = (int)++plan_batches_written;
		pthread_mutex_unlock(&obs_mu);
	}
	return pwrite(fd, buf, size, off);
}

/* The fault plan: both batches' syncs wait until both are in flight; the
 * failing one returns after the other returned (failing first: after it
 * had time to wait for its turn), the other at once. */
static int plan_sync(int fd)
{
	int fail = atomic_load(&plan_fail_batch), rc;
	struct timespec ts;

	pthread_mutex_lock(&obs_mu);
	plan_in_sync++;
	pthread_cond_broadcast(&obs_cv);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	while (plan_in_sync < 2 &&
	       pthread_cond_timedwait(&obs_cv, &obs_mu, &ts) == 0)
		;
	CHECK_MSG(plan_in_sync == 2, "batch %d synced alone", my_batch);
	if (my_batch == fail) {
		while (plan_returned < 1 &&
		       pthread_cond_timedwait(&obs_cv, &obs_mu, &ts) == 0)
			;
		pthread_mutex_unlock(&obs_mu);
		sleep_us(20000); /* the other one waits for its turn */
		errno = EIO;
		return -1;
	}
	pthread_mutex_unlock(&obs_mu);
	rc = fdatasync(fd);
	pthread_mutex_lock(&obs_mu);
	plan_returned++;
	pthread_cond_broadcast(&obs_cv);
	pthread_mutex_unlock(&obs_mu);
	return rc;
}

static int obs_fdatasync(int fd)
{
	unsigned i;
	int rc;

	if (atomic_load(&plan_fail_batch) != 0 && my_batch != 0)
		return plan_sync(fd);
	if (my_first == 0) /* not a batch: the preparer's, a trailer's */
		return fdatasync(fd);
	pthread_mutex_lock(&obs_mu);
	for (i = 0; i < syncing_count; i++)
		if (syncing_fds[i] == fd)
			same_fd_count++;
	REQUIRE(syncing_count < SYNC_FD_COUNT_MAX);
	syncing_fds[syncing_count++] = fd;
	if (syncing_count > syncing_max)
		syncing_max = syncing_count;
	pthread_mutex_unlock(&obs_mu);
	if (atomic_load(&sync_delay_us) > 0)
		sleep_us(atomic_load(&sync_delay_us));
	rc = fdatasync(fd);
	pthread_mutex_lock(&obs_mu);
	for (i = 0; i < syncing_count; i++)
		if (syncing_fds[i] == fd) {
			syncing_fds[i] = syncing_fds[--syncing_count];
			break;
		}
	if (rc == 0) {
		uint64_t lsn, prefix = atomic_load(&synced_prefix);

		REQUIRE(my_last <= RECORD_COUNT_MAX);
		for (lsn = my_first; lsn <= my_last; lsn++)
			synced[lsn] = 1;
		while (prefix < RECORD_COUNT_MAX && synced[prefix + 1])
			prefix++;
		atomic_store(&synced_prefix, prefix);
	}
	my_first = my_last = 0;
	pthread_mutex_unlock(&obs_mu);
	return rc;
}

static const struct wal_syscalls obs = {
	.pwrite = obs_pwrite,
	.fdatasync = obs_fdatasync,
};

/* ---- Helpers ---------------------------------------------------------------- */

static wal *open_dir(const char *dir, unsigned syncs)
{
	struct wal_config cfg;

	wal_config_default(&cfg);
	cfg.dir = dir;
	cfg.segment_size = SEG_SMALL;
	cfg.buffer_size = 1u << 20;
	cfg.syncs_in_flight = syncs;
	return wal_test_open(&cfg);
}

/* A record's payload: its appender and its number there. */
static void payload_of(uint8_t *p, uint32_t thread, uint32_t n)
{
	fill(p, REC_SIZE, (uint64_t)thread << 32 | n);
	memcpy(p, &thread, sizeof(thread));
	memcpy(p + 4, &n, sizeof(n));
}

struct appender {
	wal *w;
	uint32_t index;
	uint64_t lsns[RECORD_COUNT_PER_THREAD];
	unsigned bad;
};

static void *appender_main(void *arg)
{
	struct appender *a = arg;
	uint8_t p[REC_SIZE];

	for (uint32_t n = 0; n < RECORD_COUNT_PER_THREAD; n++) {
		payload_of(p, a->index, n);
		if (wal_append(a->w, p, sizeof(p), &a->lsns[n]) != 0) {
			a->bad++;
			break;
		}
		/* Mostly wait, as bookd's answers do; sometimes run ahead. */
		if ((n + a->index) % 4 != 0 &&
		    wal_wait_durable(a->w, a->lsns[n]) != 0)
			a->bad++;
	}
	return NULL;
}

struct monitor {
	wal *w;
	_Atomic bool stop;
	uint64_t reads, back, ahead;
};

/* durable_lsn only grows, and never passes what fdatasync confirmed. */
static void *monitor_main(void *arg)
{
	struct monitor *m = arg;
	uint64_t last = 0;

	while (!atomic_load(&m->stop)) {
		uint64_t d = wal_durable_lsn(m->w);
		uint64_t prefix = atomic_load(&synced_prefix);

		if (d < last)
			m->back++;
		if (d > prefix)
			m->ahead++;
		last = d;
		m->reads++;
		sleep_us(20);
	}
	return NULL;
}

struct seen {
	uint64_t next;
	uint32_t next_of[THREAD_COUNT];
	unsigned bad;
};

/* Every LSN once, in order; each appender's records in its order. */
static int seen_fn(void *ctx, uint64_t lsn, const void *p, size_t size)
{
	struct seen *s = ctx;
	uint8_t want[REC_SIZE];
	uint32_t thread, n;

	if (lsn != s->next || size != REC_SIZE) {
		s->bad++;
		return 0;
	}
	s->next++;
	memcpy(&thread, p, sizeof(thread));
	memcpy(&n, (const uint8_t *)p + 4, sizeof(n));
	if (thread >= THREAD_COUNT || n != s->next_of[thread]) {
		s->bad++;
		return 0;
	}
	s->next_of[thread]++;
	payload_of(want, thread, n);
	if (memcmp(want, p, REC_SIZE) != 0)
		s->bad++;
	return 0;
}

/* ---- Tests ------------------------------------------------------------------ */

/* THREAD_COUNT appenders, 2 syncs in flight (delay_us: each fdatasync
 * takes that much longer, so that they overlap surely). */
static void test_concurrent(unsigned delay_us)
{
	static struct appender apps[THREAD_COUNT];
	pthread_t threads[THREAD_COUNT], mon_thread;
	struct monitor mon = { 0 };
	struct seen seen = { .next = 1 };
	struct wal_stats st;
	uint64_t buckets = 0, batches = 0;
	char dir[128];
	wal *w;

	snprintf(dir, sizeof(dir), "%s/concurrent-%u", root, delay_us);
	obs_reset();
	atomic_store(&sync_delay_us, delay_us);
	wal_set_syscalls(&obs);
	w = open_dir(dir, 2);
	REQUIRE(wal_start(w) == 0);
	mon.w = w;
	REQUIRE(pthread_create(&mon_thread, NULL, monitor_main, &mon) == 0);
	for (uint32_t i = 0; i < THREAD_COUNT; i++) {
		apps[i] = (struct appender){ .w = w, .index = i };
		REQUIRE(pthread_create(&threads[i], NULL, appender_main,
				       &apps[i]) == 0);
	}
	for (uint32_t i = 0; i < THREAD_COUNT; i++) {
		pthread_join(threads[i], NULL);
		CHECK_EQ(apps[i].bad, 0);
	}
	CHECK_EQ(wal_wait_durable(w, RECORD_COUNT_MAX), 0);
	atomic_store(&mon.stop, true);
	pthread_join(mon_thread, NULL);
	CHECK_EQ(wal_durable_lsn(w), RECORD_COUNT_MAX);
	CHECK_EQ(mon.back, 0);
	CHECK_EQ(mon.ahead, 0);
	CHECK_EQ(wal_error(w), 0);

	wal_stats(w, &st);
	CHECK_EQ(st.batch_records_total, RECORD_COUNT_MAX);
	for (unsigned b = 0; b < WAL_SYNC_BUCKET_COUNT; b++)
		buckets += st.sync_buckets[b];
	for (unsigned b = 0; b < WAL_BATCH_BUCKET_COUNT; b++)
		batches += st.batch_buckets[b];
	CHECK_EQ(buckets, st.sync_count);
	CHECK_EQ(batches, st.batch_count);
	CHECK(st.sync_count >= st.batch_count);
	CHECK(st.segment_count >= 10); /* roll-overs in the mix */
	pthread_mutex_lock(&obs_mu);
	printf("test_wal_syncs: delay %u us: %" PRIu64 " batches, %" PRIu64
	       " syncs, %" PRIu64 " segments, up to %u syncs at once, %" PRIu64
	       " monitor reads\n",
	       delay_us, st.batch_count, st.sync_count, st.segment_count,
	       syncing_max, mon.reads);
	CHECK(syncing_max <= 2);
	if (delay_us > 0)
		CHECK_EQ(syncing_max, 2);
	CHECK_EQ(same_fd_count, 0);
	pthread_mutex_unlock(&obs_mu);
	wal_close(w);

	wal_set_syscalls(NULL);
	w = open_dir(dir, 1);
	CHECK_EQ(wal_durable_lsn(w), RECORD_COUNT_MAX);
	CHECK_EQ(wal_replay(w, 1, seen_fn, &seen), 0);
	CHECK_EQ(seen.bad, 0);
	CHECK_EQ(seen.next, RECORD_COUNT_MAX + 1);
	for (uint32_t i = 0; i < THREAD_COUNT; i++)
		CHECK_EQ(seen.next_of[i], RECORD_COUNT_PER_THREAD);
	wal_close(w);
}

/* Two batches in flight (LSN 1, then LSN 2 while the first syncs); the
 * fdatasync of batch fail_batch fails. Nothing after the failure is
 * published: with the first failing, nothing at all (the second's own
 * sync succeeded); with the second, at most the first. */
static void test_fail_in_flight(int fail_batch)
{
	uint8_t p[REC_SIZE];
	uint64_t lsn1 = 0, lsn2 = 0;
	char dir[128];
	wal *w;

	snprintf(dir, sizeof(dir), "%s/fail-%d", root, fail_batch);
	obs_reset();
	w = open_dir(dir, 2);
	REQUIRE(wal_start(w) == 0);
	/* The preparer's zero-filling syncs go by before the plan starts. */
	sleep_us(100000);
	wal_set_syscalls(&obs);
	atomic_store(&plan_fail_batch, fail_batch);
	payload_of(p, 0, 0);
	CHECK_EQ(wal_append(w, p, sizeof(p), &lsn1), 0);
	for (unsigned i = 0; i < 5000; i++) { /* until batch 1 syncs */
		pthread_mutex_lock(&obs_mu);
		bool in_sync = plan_in_sync >= 1;
		pthread_mutex_unlock(&obs_mu);
		if (in_sync)
			break;
		sleep_us(1000);
	}
	payload_of(p, 0, 1);
	CHECK_EQ(wal_append(w, p, sizeof(p), &lsn2), 0);
	CHECK_EQ(lsn1, 1);
	CHECK_EQ(lsn2, 2);
	CHECK_EQ(wal_wait_durable(w, lsn2), -EIO);
	CHECK_EQ(wal_error(w), -EIO);
	if (fail_batch == 1)
		CHECK_EQ(wal_durable_lsn(w), 0);
	else
		CHECK(wal_durable_lsn(w) <= lsn1);
	pthread_mutex_lock(&obs_mu);
	CHECK_EQ(plan_batches_written, 2);
	CHECK_EQ(plan_in_sync, 2);
	pthread_mutex_unlock(&obs_mu);
	/* Sticky: nothing more appended or published. */
	CHECK_EQ(wal_append(w, p, sizeof(p), &lsn2), -EIO);
	sleep_us(20000);
	CHECK(wal_durable_lsn(w) <= (fail_batch == 1 ? 0 : lsn1));
	wal_close(w);
	wal_set_syscalls(NULL);
	atomic_store(&plan_fail_batch, 0);

	/* The records reached the file; recovery keeps or cuts them, and the
	 * log opens and appends again. */
	w = open_dir(dir, 2);
	REQUIRE(wal_start(w) == 0);
	CHECK_EQ(wal_append(w, p, sizeof(p), &lsn1), 0);
	CHECK_EQ(wal_wait_durable(w, lsn1), 0);
	wal_close(w);
}

static void test_config(void)
{
	struct wal_config cfg;
	char dir[128], err[256] = "";
	wal *w = NULL;

	snprintf(dir, sizeof(dir), "%s/config", root);
	wal_config_default(&cfg);
	CHECK_EQ(cfg.syncs_in_flight, 1);
	cfg.dir = dir;
	cfg.syncs_in_flight = WAL_SYNCS_IN_FLIGHT_MAX + 1;
	CHECK_EQ(wal_open(&cfg, &w, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "syncs_in_flight") != NULL);
	/* Other modes keep one batch in flight: they open and run. */
	cfg.syncs_in_flight = 2;
	cfg.sync = WAL_SYNC_WRITE;
	w = wal_test_open(&cfg);
	CHECK_EQ(wal_start(w), 0);
	{
		uint8_t p[REC_SIZE];
		uint64_t lsn = 0;

		payload_of(p, 0, 0);
		CHECK_EQ(wal_append(w, p, sizeof(p), &lsn), 0);
		CHECK_EQ(wal_wait_durable(w, lsn), 0);
	}
	wal_close(w);
}

int main(void)
{
	uint64_t seed = wal_test_start("test_wal_syncs");

	WAL_TEST_RUN(test_config());
	WAL_TEST_RUN(test_concurrent(0));
	WAL_TEST_RUN(test_concurrent(300));
	WAL_TEST_RUN(test_fail_in_flight(2));
	WAL_TEST_RUN(test_fail_in_flight(1));
	wal_set_syscalls(NULL);
	return wal_test_end(seed);
}
