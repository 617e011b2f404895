/*
 * test_wal_full.c: a real full disk. Mounts a 4 MiB tmpfs (needs root;
 * exit 77 to skip otherwise), appends until the log cannot get its next
 * segment, and checks: the failure is a sticky -ENOSPC, no LSN beyond
 * what was written and synced is ever reported durable, and after a
 * restart on the still-full filesystem every acknowledged record is
 * there, intact, in order. Seed: WAL_SEED or the time.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include "../../wal/wal.h"
#include "wal_test.h"

#define RECORD_COUNT_MAX 100000

static uint32_t sizes[RECORD_COUNT_MAX + 1]; /* by LSN */

static int open_log(const char *dir, wal **w, char *err, size_t err_size)
{
	struct wal_config cfg;

	wal_config_default(&cfg);
	cfg.dir = dir;
	cfg.segment_size = 128u << 10;
	cfg.buffer_size = 256u << 10;
	return wal_open(&cfg, w, err, err_size);
}

struct verify {
	uint64_t next, bad;
};

static int verify_fn(void *ctx, uint64_t lsn, const void *p, size_t size)
{
	static uint8_t want[8192];
	struct verify *v = ctx;

	if (lsn != v->next || lsn > RECORD_COUNT_MAX || size != sizes[lsn]) {
		v->bad++;
	} else {
		fill(want, size, lsn);
		if (memcmp(p, want, size) != 0)
			v->bad++;
	}
	v->next = lsn + 1;
	return 0;
}

int main(void)
{
	const char *seed_env = getenv("WAL_SEED");
	uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0)
				 : (uint64_t)time(NULL) ^ (uint64_t)getpid();
	char mnt[64] = "/tmp/test_wal_full.XXXXXX", dir[128], err[256] = "";
	uint64_t lsn = 0, acked = 0, durable_seen = 0, appended = 0;
	static uint8_t p[8192];
	struct verify v = { .next = 1 };
	wal *w = NULL;
	int rc = 0;

	printf("wal_full: seed %" PRIu64 " (set WAL_SEED to repeat)\n", seed);
	rng_state = seed;
	REQUIRE(mkdtemp(mnt) != NULL);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=4m") != 0) {
		printf("wal_full: skipped: cannot mount a tmpfs (%s); needs "
		       "root\n",
		       strerror(errno));
		rmdir(mnt);
		return 77;
	}
	snprintf(dir, sizeof(dir), "%s/log", mnt);
	REQUIRE(open_log(dir, &w, err, sizeof(err)) == 0);
	REQUIRE(wal_start(w) == 0);

	/* Fill it: a ~4 MiB filesystem takes ~30 segments. */
	while (appended < RECORD_COUNT_MAX) {
		uint32_t size = (uint32_t)(rnd() % sizeof(p));

		fill(p, size, appended + 1);
		rc = wal_append(w, p, size, &lsn);
		if (rc != 0)
			break;
		appended = lsn;
		sizes[lsn] = size;
		if (lsn % 16 == 0) {
			uint64_t d = wal_durable_lsn(w);

			CHECK(d >= durable_seen); /* never backwards */
			durable_seen = d;
			rc = wal_wait_durable(w, lsn);
			if (rc != 0)
				break;
			acked = lsn;
		}
	}
	CHECK_EQ(rc, -ENOSPC);
	CHECK_EQ(wal_error(w), -ENOSPC);
	CHECK(acked > 100);
	CHECK(wal_durable_lsn(w) >= acked);
	CHECK(wal_durable_lsn(w) <= appended);
	durable_seen = wal_durable_lsn(w);
	CHECK_EQ(wal_append(w, p, 10, &lsn), -ENOSPC);
	CHECK_EQ(wal_wait_durable(w, appended),
		 appended > durable_seen ? -ENOSPC : 0);
	wal_close(w);

	/* Restart on the full filesystem: every acknowledged record. */
	w = NULL;
	rc = open_log(dir, &w, err, sizeof(err));
	CHECK_EQ(rc, 0);
	if (rc == 0) {
		CHECK(wal_durable_lsn(w) >= durable_seen);
		CHECK_EQ(wal_replay(w, 1, verify_fn, &v), 0);
		CHECK_EQ(v.bad, 0);
		CHECK(v.next - 1 >= durable_seen);
		CHECK(v.next - 1 <= appended);
		wal_close(w);
	} else {
		printf("  reopen: %s\n", err);
	}

	REQUIRE(umount(mnt) == 0);
	rmdir(mnt);
	printf("wal_full: %" PRIu64 " records acknowledged, %" PRIu64
	       " durable\n",
	       acked, durable_seen);
	return check_end("wal_full", seed);
}
