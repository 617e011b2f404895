/*
 * tz_test.h: what test_tz.c and test_tz_tzif.c share: the zoneinfo
 * location, a seeded generator (TZ_TEST_SEED), times and their printing,
 * loading zones, glibc's offsets as the oracle (the tests may use libc's
 * time zones, the library must not) and the comparisons against it, files.
 */
#ifndef BOOKD_TZ_TEST_H
#define BOOKD_TZ_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* tm_gmtoff, mkdtemp, setenv */
#endif
#include "tz.h"

#include "check.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ZONEINFO "/usr/share/zoneinfo"
#define FILE_SIZE_MAX (1 << 20)
#define FLIP_ROUND_COUNT 3000
#define HOUR 3600
#define DAY INT64_C(86400)
#define SKIP 77

/* ---- helpers ---- */

static uint64_t rng_state;

static inline uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12; /* xorshift64* */
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static inline int64_t rng_range(int64_t lo, int64_t hi) /* [lo, hi) */
{
	return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo));
}

static inline int64_t at(int y, int mo, int d, int h, int mi, int s)
{
	return tz_days_from_civil(y, mo, d) * DAY + h * HOUR + mi * 60 + s;
}

/* "2026-03-29T02:30:00" for messages; four rotating buffers. */
static const char *fmt_time(int64_t t)
{
	static char bufs[4][40];
	static int next;
	char *b = bufs[next++ % 4];
	int64_t days = t / DAY - (t % DAY < 0);
	int64_t s = t - days * DAY;
	int y, mo, d;

	if (days < -(INT64_C(1) << 39) || days > (INT64_C(1) << 39)) {
		snprintf(b, 40, "%" PRId64, t);
		return b;
	}
	tz_civil_from_days(days, &y, &mo, &d);
	snprintf(b, 40, "%04d-%02d-%02dT%02d:%02d:%02d", y, mo, d,
		 (int)(s / HOUR), (int)(s / 60 % 60), (int)(s % 60));
	return b;
}

static inline struct tz *load(const char *name)
{
	struct tz *z = NULL;
	int rc = tz_load(name, &z);

	CHECK_MSG(rc == 0, "tz_load(\"%s\") = %d", name, rc);
	return rc == 0 ? z : NULL;
}

static inline void libc_zone(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static inline int32_t libc_offset(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!localtime_r(&tt, &tm))
		return INT32_MIN;
	return (int32_t)tm.tm_gmtoff;
}

static inline void check_offset(const struct tz *z, const char *label,
				int64_t t, int32_t want)
{
	int32_t got = tz_offset_at(z, t);

	/* The message is formatted only when the check fails. */
	CHECK_MSG(got == want, "%s: offset at %sZ = %d, want %d", label,
		  fmt_time(t), got, want);
}

static inline void check_utc(const struct tz *z, const char *label,
			     int64_t local, int64_t want)
{
	int64_t got = tz_local_to_utc(z, local);

	CHECK_MSG(got == want, "%s: local %s -> %sZ, want %sZ", label,
		  fmt_time(local), fmt_time(got), fmt_time(want));
}

static inline int read_file(const char *path, uint8_t *buf, size_t cap,
			    size_t *len)
{
	FILE *f = fopen(path, "rb");

	if (!f)
		return -errno;
	*len = fread(buf, 1, cap, f);
	fclose(f);
	return 0;
}

static inline int write_file(const char *dir, const char *name,
			     const uint8_t *buf, size_t len)
{
	char path[512];
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return -errno;
	if (len && fwrite(buf, 1, len, f) != len)
		rc = -EIO;
	if (fclose(f) != 0)
		rc = -EIO;
	return rc;
}

/* ---- cross-check with glibc ---- */

/* Local-time rules at a transition at T from o1 to o2 (seconds east). */
static inline void check_transition_local(const struct tz *z, const char *name,
					  int64_t T, int32_t o1, int32_t o2)
{
	if (o2 > o1) { /* gap [T + o1, T + o2) moves forward by o2 - o1 */
		check_utc(z, name, T + o1 - 1, T - 1);
		check_utc(z, name, T + o1, T);
		check_utc(z, name, T + (o1 + o2) / 2, T + (o1 + o2) / 2 - o1);
		check_utc(z, name, T + o2 - 1, T + o2 - 1 - o1);
		check_utc(z, name, T + o2, T);
	} else { /* overlap [T + o2, T + o1): the earlier instant */
		check_utc(z, name, T + o2 - 1, T + o2 - 1 - o1);
		check_utc(z, name, T + o2, T + o2 - o1);
		check_utc(z, name, T + o1 - 1, T - 1);
		check_utc(z, name, T + o1, T + o1 - o2);
	}
}

/* Compares with glibc (TZ already set) at random instants in [from, to). */
static inline void compare_random(const struct tz *z, const char *name,
				  int64_t from, int64_t to, int count)
{
	for (int i = 0; i < count; i++) {
		int64_t t = rng_range(from, to);

		check_offset(z, name, t, libc_offset(t));
	}
}

/* Compares with glibc (TZ already set) every `step` s in [from, to),
 * finding each transition to the second; optionally checks local time
 * around each. */
static inline void compare_scan(const struct tz *z, const char *name,
				int64_t from, int64_t to, int64_t step,
				bool check_local)
{
	int64_t prev_t = from;
	int32_t prev_off = libc_offset(from);

	for (int64_t t = from + step; t < to; t += step) {
		int32_t off = libc_offset(t);
		int64_t lo = prev_t, hi = t;

		check_offset(z, name, t, off);
		if (off != prev_off) {
			while (hi - lo > 1) {
				int64_t mid = lo + (hi - lo) / 2;

				if (libc_offset(mid) == prev_off)
					lo = mid;
				else
					hi = mid;
			}
			check_offset(z, name, hi - 1, libc_offset(hi - 1));
			check_offset(z, name, hi, libc_offset(hi));
			if (check_local)
				check_transition_local(z, name, hi,
						       libc_offset(hi - 1),
						       libc_offset(hi));
		}
		prev_t = t;
		prev_off = off;
	}
}

/* Every real instant maps back: local(u) -> u or an earlier twin. */
static inline void check_round_trip(const struct tz *z, const char *name,
				    int64_t from, int64_t to, int count)
{
	for (int i = 0; i < count; i++) {
		int64_t u = rng_range(from, to);
		int64_t local = u + tz_offset_at(z, u);
		int64_t r = tz_local_to_utc(z, local);

		CHECK_MSG(r + tz_offset_at(z, r) == local && r <= u,
			  "%s: %sZ is local %s -> %sZ", name, fmt_time(u),
			  fmt_time(local), fmt_time(r));
	}
}

/* The seed of a run (TZ_TEST_SEED, else time and pid), printed; 0 when
 * the system has no tzdata (the test then exits SKIP). */
static inline uint64_t tz_test_start(const char *name)
{
	const char *seed_env = getenv("TZ_TEST_SEED");
	uint64_t seed;

	if (access(ZONEINFO "/Europe/Berlin", R_OK) != 0) {
		printf("%s: skipped, no %s\n", name, ZONEINFO);
		return 0;
	}
	seed = seed_env ? strtoull(seed_env, NULL, 0)
			: (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (seed == 0)
		seed = 1;
	rng_state = seed;
	printf("%s: seed %" PRIu64 " (TZ_TEST_SEED)\n", name, seed);
	unsetenv("TZDIR");
	return seed;
}

#endif
