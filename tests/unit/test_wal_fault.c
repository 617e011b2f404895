/*
 * test_wal_fault.c: storage faults injected through wal_set_syscalls().
 * A failed fdatasync or write makes the log refuse every later append
 * with a sticky error, freezes the durable LSN, fails the waiters, and is
 * never retried into a false success (fsyncgate); a failed segment
 * preparation is retried once, then sticky. After each fault the log
 * reopens with every acknowledged record intact. A real full disk is in
 * test_wal_full.c. Exit 0 when every check passes. Seed: WAL_SEED.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
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

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* ---- The injected syscalls --------------------------------------------- */

static _Atomic int fail_sync;	     /* errno for fdatasync, 0: real call */
static _Atomic int fail_write;	     /* errno for pwrite */
static _Atomic int fail_alloc;	     /* errno for fallocate */
static _Atomic int fail_alloc_count; /* fail only this many, -1: all */
static _Atomic int torn_write; /* write half of the next pwrite, then fail */
static _Atomic unsigned sync_calls, write_calls;
static _Atomic unsigned sync_delay_ms;

static int fake_fdatasync(int fd)
{
	int e = atomic_load(&fail_sync);

	atomic_fetch_add(&sync_calls, 1);
	if (atomic_load(&sync_delay_ms) > 0)
		sleep_ms(atomic_load(&sync_delay_ms));
	if (e != 0) {
		errno = e;
		return -1;
	}
	return fdatasync(fd);
}

static ssize_t fake_pwrite(int fd, const void *buf, size_t size, off_t off)
{
	int e = atomic_load(&fail_write);

	atomic_fetch_add(&write_calls, 1);
	if (atomic_load(&torn_write) && size > 64) {
		/* Half a batch reaches the file, then the device fails. */
		atomic_store(&torn_write, 0);
		atomic_store(&fail_write, EIO);
		return pwrite(fd, buf, size / 2, off);
	}
	if (e != 0) {
		errno = e;
		return -1;
	}
	return pwrite(fd, buf, size, off);
}

static int fake_fallocate(int fd, int mode, off_t off, off_t len)
{
	int e = atomic_load(&fail_alloc);

	if (e != 0 && atomic_load(&fail_alloc_count) != 0) {
		if (atomic_load(&fail_alloc_count) > 0)
			atomic_fetch_sub(&fail_alloc_count, 1);
		errno = e;
		return -1;
	}
	return fallocate(fd, mode, off, len);
}

static const struct wal_syscalls fake = {
	.pwrite = fake_pwrite,
	.fdatasync = fake_fdatasync,
	.fallocate = fake_fallocate,
};

static void faults_clear(void)
{
	atomic_store(&fail_sync, 0);
	atomic_store(&fail_write, 0);
	atomic_store(&fail_alloc, 0);
	atomic_store(&fail_alloc_count, 0);
	atomic_store(&torn_write, 0);
	atomic_store(&sync_delay_ms, 0);
}

/* ---- Helpers ---------------------------------------------------------------- */

static wal *open_dir(const char *dir, uint32_t buffer_size)
{
	struct wal_config cfg;

	wal_config_default(&cfg);
	cfg.dir = dir;
	cfg.segment_size = SEG_SMALL;
	cfg.buffer_size = buffer_size;
	return wal_test_open(&cfg);
}

#define REC_SIZE 200

static int append_key(wal *w, uint64_t key, uint64_t *lsn)
{
	uint8_t p[REC_SIZE];

	fill(p, sizeof(p), key);
	return wal_append(w, p, sizeof(p), lsn);
}

struct verify {
	uint64_t next, bad;
};

/* Every record's payload is keyed by its LSN. */
static int verify_fn(void *ctx, uint64_t lsn, const void *p, size_t size)
{
	struct verify *v = ctx;
	uint8_t want[REC_SIZE];

	fill(want, sizeof(want), lsn);
	if (lsn != v->next || size != REC_SIZE || memcmp(p, want, size) != 0)
		v->bad++;
	v->next = lsn + 1;
	return 0;
}

/* Reopens with the real syscalls: at least acked records, all intact. */
static void check_reopen(const char *dir, uint64_t acked)
{
	struct verify v = { .next = 1 };
	wal *w;

	wal_set_syscalls(NULL);
	faults_clear();
	w = open_dir(dir, 1u << 20);
	CHECK(wal_durable_lsn(w) >= acked);
	CHECK_EQ(wal_replay(w, 1, verify_fn, &v), 0);
	CHECK_EQ(v.bad, 0);
	CHECK(v.next - 1 >= acked);
	wal_close(w);
}

static bool event_fd_ready(const wal *w)
{
	struct pollfd p = { .fd = wal_event_fd(w), .events = POLLIN };

	return poll(&p, 1, 1000) == 1;
}

/* ---- Tests ------------------------------------------------------------------ */

/* fdatasync fails once: never retried, never success afterwards. */
static void test_fsync_failure(int err_no)
{
	char dir[128];
	uint64_t lsn = 0, acked, i;
	unsigned calls;
	wal *w;

	snprintf(dir, sizeof(dir), "%s/fsync", root);
	wal_set_syscalls(&fake);
	w = open_dir(dir, 1u << 20);
	CHECK_EQ(wal_start(w), 0);
	sleep_ms(50); /* the preparer's fdatasync is done */
	for (i = 1; i <= 50; i++) {
		CHECK_EQ(append_key(w, i, &lsn), 0);
		if (i % 10 == 0)
			CHECK_EQ(wal_wait_durable(w, lsn), 0);
	}
	acked = wal_durable_lsn(w);
	CHECK_EQ(acked, 50);

	atomic_store(&fail_sync, err_no);
	CHECK_EQ(append_key(w, 51, &lsn), 0);
	CHECK_EQ(lsn, 51);
	CHECK_EQ(wal_wait_durable(w, lsn), -err_no);
	CHECK_EQ(wal_error(w), -err_no);
	CHECK_EQ(wal_durable_lsn(w), acked);
	CHECK(event_fd_ready(w));
	/* The device "recovers": the log must not believe it. */
	atomic_store(&fail_sync, 0);
	calls = atomic_load(&sync_calls);
	CHECK_EQ(append_key(w, 52, &lsn), -err_no);
	sleep_ms(50);
	CHECK_EQ(wal_durable_lsn(w), acked);
	CHECK_EQ(wal_wait_durable(w, 51), -err_no);
	CHECK_EQ(atomic_load(&sync_calls), calls); /* no retry */
	wal_close(w);
	CHECK_EQ(atomic_load(&sync_calls), calls); /* not even at close */
	check_reopen(dir, acked);
	rm_rf(dir);
}

/* pwrite fails (EIO, ENOSPC), also after writing half a batch. */
static void test_write_failure(int err_no, bool torn)
{
	char dir[128];
	uint64_t lsn = 0, acked, i;
	wal *w;

	snprintf(dir, sizeof(dir), "%s/write", root);
	wal_set_syscalls(&fake);
	w = open_dir(dir, 1u << 20);
	CHECK_EQ(wal_start(w), 0);
	for (i = 1; i <= 30; i++)
		CHECK_EQ(append_key(w, i, &lsn), 0);
	CHECK_EQ(wal_wait_durable(w, lsn), 0);
	acked = wal_durable_lsn(w);

	if (torn)
		atomic_store(&torn_write, 1);
	else
		atomic_store(&fail_write, err_no);
	for (i = 31; i <= 60; i++)
		if (append_key(w, i, &lsn) != 0)
			break;
	CHECK_EQ(wal_wait_durable(w, lsn), torn ? -EIO : -err_no);
	CHECK_EQ(wal_durable_lsn(w), acked);
	CHECK_EQ(append_key(w, 99, &lsn), torn ? -EIO : -err_no);
	wal_close(w);
	check_reopen(dir, acked);
	rm_rf(dir);
}

/* The next segment cannot be allocated: one retry in the writer, then
 * sticky -ENOSPC; what the full segments hold stays acknowledged. */
static void test_prepare_failure(bool transient)
{
	char dir[128];
	uint64_t lsn = 0, acked = 0, i;
	int rc = 0;
	wal *w;

	snprintf(dir, sizeof(dir), "%s/prep", root);
	wal_set_syscalls(&fake);
	w = open_dir(dir, 1u << 20);
	/* The preparer's attempt fails; the writer's retry too, or not. */
	atomic_store(&fail_alloc, ENOSPC);
	atomic_store(&fail_alloc_count, transient ? 1 : -1);
	CHECK_EQ(wal_start(w), 0);
	for (i = 1; i <= 2000; i++) {
		rc = append_key(w, i, &lsn);
		if (rc != 0)
			break;
		if (i % 20 == 0) {
			rc = wal_wait_durable(w, lsn);
			if (rc != 0)
				break;
			acked = lsn;
		}
	}
	if (transient) {
		CHECK_EQ(rc, 0);
		CHECK_EQ(wal_error(w), 0);
		CHECK_EQ(acked, 2000);
	} else {
		CHECK_EQ(rc, -ENOSPC);
		CHECK_EQ(wal_error(w), -ENOSPC);
		/* The first segment held ~560 records, all synced. */
		CHECK(wal_durable_lsn(w) >= acked);
		CHECK(wal_durable_lsn(w) > 500);
		CHECK(wal_durable_lsn(w) < 700);
		acked = wal_durable_lsn(w);
	}
	wal_close(w);
	check_reopen(dir, acked);
	rm_rf(dir);
}

/* Appenders blocked on a full buffer wake up with the error. */
struct blocked_arg {
	wal *w;
	unsigned id;
	int rc;
	uint64_t appended;
};

static void *blocked_main(void *argp)
{
	struct blocked_arg *a = argp;
	uint8_t p[4000];
	uint64_t lsn;
	int i;

	memset(p, (int)a->id + 1, sizeof(p));
	for (i = 0; i < 100000; i++) {
		a->rc = wal_append(a->w, p, sizeof(p), &lsn);
		if (a->rc != 0)
			break;
		a->appended++;
	}
	return NULL;
}

static void test_blocked_appenders(void)
{
	struct blocked_arg args[4];
	pthread_t th[4];
	char dir[128];
	uint64_t lsn = 0;
	unsigned i;
	wal *w;

	snprintf(dir, sizeof(dir), "%s/blocked", root);
	wal_set_syscalls(&fake);
	w = open_dir(dir, WAL_BUFFER_SIZE_MIN);
	CHECK_EQ(wal_start(w), 0);
	CHECK_EQ(append_key(w, 1, &lsn), 0);
	CHECK_EQ(wal_wait_durable(w, lsn), 0);
	atomic_store(&sync_delay_ms, 30);
	for (i = 0; i < 4; i++) {
		args[i] = (struct blocked_arg){ .w = w, .id = i };
		REQUIRE(pthread_create(&th[i], NULL, blocked_main, &args[i]) ==
			0);
	}
	sleep_ms(100); /* the buffer fills, appenders wait */
	atomic_store(&fail_sync, EIO);
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(args[i].rc, -EIO);
	}
	CHECK_EQ(wal_error(w), -EIO);
	wal_close(w);
	wal_set_syscalls(NULL);
	faults_clear();
	w = open_dir(dir, 1u << 20);
	CHECK(wal_durable_lsn(w) >= 1);
	wal_close(w);
	rm_rf(dir);
}

/* A failing snapshot write leaves the previous snapshot in place. */
static void test_snapshot_failure(void)
{
	char dir[128], err[256];
	uint64_t lsn = 0;
	void *buf = NULL;
	size_t size = 0;
	wal_snap *s = NULL;
	wal *w;

	snprintf(dir, sizeof(dir), "%s/snapfail", root);
	wal_set_syscalls(&fake);
	w = open_dir(dir, 1u << 20);
	CHECK_EQ(wal_start(w), 0);
	CHECK_EQ(append_key(w, 1, &lsn), 0);
	CHECK_EQ(wal_snapshot_begin(w, 1, &s), 0);
	CHECK_EQ(wal_snapshot_write(s, "good", 4), 0);
	CHECK_EQ(wal_snapshot_commit(s), 0);
	CHECK_EQ(wal_snapshot_begin(w, 1, &s), 0);
	CHECK_EQ(wal_snapshot_write(s, "bad!", 4), 0);
	atomic_store(&fail_sync, EIO);
	CHECK_EQ(wal_snapshot_commit(s), -EIO);
	atomic_store(&fail_sync, 0);
	wal_close(w);
	wal_set_syscalls(NULL);
	CHECK_EQ(wal_snapshot_load(dir, &lsn, &buf, &size, err, sizeof(err)),
		 0);
	CHECK(size == 4 && memcmp(buf, "good", 4) == 0);
	free(buf);
	rm_rf(dir);
}

int main(void)
{
	uint64_t seed = wal_test_start("wal_fault");

	test_fsync_failure(EIO);
	test_fsync_failure(ENOSPC);
	test_write_failure(EIO, false);
	test_write_failure(ENOSPC, false);
	test_write_failure(EIO, true);
	test_prepare_failure(true);
	test_prepare_failure(false);
	test_blocked_appenders();
	test_snapshot_failure();

	wal_set_syscalls(NULL);
	return wal_test_end(seed);
}
