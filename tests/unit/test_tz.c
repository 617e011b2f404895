/*
 * test_tz.c: unit test of core/tz (IANA zones, local class time -> UTC).
 *
 * Needs the system tzdata in /usr/share/zoneinfo (TZif v2+); exits 77 (skip)
 * without it. glibc's localtime_r is the oracle for offsets: the test may use
 * libc's time zones, the library must not. Random parts print their seed;
 * rerun with TZ_TEST_SEED=<seed>. TZ_TEST_ZONES="Area/City ..." replaces the
 * list of zones cross-checked against glibc (e.g. every zone in tzdata).
 */
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

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12; /* xorshift64* */
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static int64_t rng_range(int64_t lo, int64_t hi) /* [lo, hi) */
{
	return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo));
}

static int64_t at(int y, int mo, int d, int h, int mi, int s)
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

static struct tz *load(const char *name)
{
	struct tz *z = NULL;
	int rc = tz_load(name, &z);

	CHECK_MSG(rc == 0, "tz_load(\"%s\") = %d", name, rc);
	return rc == 0 ? z : NULL;
}

static void libc_zone(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static int32_t libc_offset(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!localtime_r(&tt, &tm))
		return INT32_MIN;
	return (int32_t)tm.tm_gmtoff;
}

static void check_offset(const struct tz *z, const char *label, int64_t t,
			 int32_t want)
{
	int32_t got = tz_offset_at(z, t);

	/* The message is formatted only when the check fails. */
	CHECK_MSG(got == want, "%s: offset at %sZ = %d, want %d", label,
		  fmt_time(t), got, want);
}

static void check_utc(const struct tz *z, const char *label, int64_t local,
		      int64_t want)
{
	int64_t got = tz_local_to_utc(z, local);

	CHECK_MSG(got == want, "%s: local %s -> %sZ, want %sZ", label,
		  fmt_time(local), fmt_time(got), fmt_time(want));
}

static int read_file(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "rb");

	if (!f)
		return -errno;
	*len = fread(buf, 1, cap, f);
	fclose(f);
	return 0;
}

static int write_file(const char *dir, const char *name, const uint8_t *buf,
		      size_t len)
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

/* ---- civil calendar ---- */

static void test_civil(void)
{
	static const int month_days[12] = { 31, 28, 31, 30, 31, 30,
					    31, 31, 30, 31, 30, 31 };
	static const struct {
		int y, m, d, wday;
	} known[] = {
		{ 1970, 1, 1, 3 },  { 1969, 12, 31, 2 }, { 2000, 1, 1, 5 },
		{ 2024, 2, 29, 3 }, { 2026, 3, 29, 6 },	 { 2026, 10, 25, 6 },
		{ 2026, 3, 30, 0 }, { 2100, 1, 1, 4 },	 { 9999, 12, 31, 4 },
	};
	int y = 1970, m = 1, d = 1;
	int64_t last = tz_days_from_civil(2100, 12, 31);

	CHECK_MSG(tz_days_from_civil(1970, 1, 1) == 0, "epoch");
	CHECK_MSG(tz_days_from_civil(2000, 3, 1) == 11017, "2000-03-01");
	CHECK_MSG(tz_days_from_civil(1969, 12, 31) == -1, "1969-12-31");
	for (int64_t days = 0; days <= last; days++) {
		int cy, cm, cd;
		bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
		time_t tt = (time_t)(days * DAY);
		struct tm tm;

		tz_civil_from_days(days, &cy, &cm, &cd);
		CHECK_MSG(cy == y && cm == m && cd == d,
			  "day %" PRId64 ": %d-%d-%d, want %d-%d-%d", days, cy,
			  cm, cd, y, m, d);
		CHECK_MSG(tz_days_from_civil(y, m, d) == days,
			  "days_from_civil(%d-%d-%d)", y, m, d);
		CHECK_MSG(tz_date_valid(y, m, d), "valid %d-%d-%d", y, m, d);
		gmtime_r(&tt, &tm);
		CHECK_MSG(tz_weekday(days) == (tm.tm_wday + 6) % 7,
			  "weekday of %d-%d-%d", y, m, d);
		if (++d > month_days[m - 1] + (m == 2 && leap)) {
			d = 1;
			if (++m > 12) {
				m = 1;
				y++;
			}
		}
	}
	/* Far from the epoch, both signs. */
	for (int64_t days = -100000000; days <= 100000000; days += 99991) {
		int cy, cm, cd;

		tz_civil_from_days(days, &cy, &cm, &cd);
		CHECK_MSG(tz_days_from_civil(cy, cm, cd) == days,
			  "round trip %" PRId64, days);
	}
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		int64_t days =
			tz_days_from_civil(known[i].y, known[i].m, known[i].d);

		CHECK_MSG(tz_weekday(days) == known[i].wday,
			  "weekday %d-%d-%d = %d", known[i].y, known[i].m,
			  known[i].d, tz_weekday(days));
	}
	CHECK_MSG(tz_weekday(-7) == 3 && tz_weekday(INT64_MAX) >= 0 &&
			  tz_weekday(INT64_MIN) <= 6,
		  "weekday extremes");
	CHECK_MSG(tz_date_valid(2024, 2, 29), "2024-02-29");
	CHECK_MSG(tz_date_valid(2000, 2, 29), "2000-02-29");
	CHECK_MSG(!tz_date_valid(2023, 2, 29), "2023-02-29");
	CHECK_MSG(!tz_date_valid(2100, 2, 29), "2100-02-29");
	CHECK_MSG(tz_date_valid(1970, 1, 1), "1970-01-01");
	CHECK_MSG(!tz_date_valid(1969, 12, 31), "1969-12-31");
	CHECK_MSG(tz_date_valid(9999, 12, 31), "9999-12-31");
	CHECK_MSG(!tz_date_valid(10000, 1, 1), "10000-01-01");
	CHECK_MSG(!tz_date_valid(2026, 13, 1), "month 13");
	CHECK_MSG(!tz_date_valid(2026, 0, 1), "month 0");
	CHECK_MSG(!tz_date_valid(2026, 4, 31), "April 31");
	CHECK_MSG(!tz_date_valid(2026, 4, 0), "day 0");
	CHECK_MSG(!tz_date_valid(2026, 1, -1), "day -1");
}

/* ---- named zones ---- */

/* Times on a day in Berlin (y-mo-d), h:mi:s with an offset off (the
 * list ends at off 0). In berlin_utc the times are UTC and off the offset
 * then; in berlin_local they are local and off what is subtracted to get
 * UTC (in a gap the offset before it, in an overlap the first one). */
struct berlin_day {
	const char *label;
	int y, mo, d;
	struct {
		int h, mi, s;
		int32_t off;
	} t[6];
};

static const struct berlin_day berlin_utc[] = {
	{ "Berlin summer", 2026, 7, 1, { { 12, 0, 0, 7200 } } },
	{ "Berlin winter", 2026, 1, 15, { { 12, 0, 0, 3600 } } },
	/* 2026-03-29 01:00Z: CET -> CEST; 2026-10-25 01:00Z: CEST -> CET. */
	{ "Berlin", 2026, 3, 29, { { 0, 59, 59, 3600 }, { 1, 0, 0, 7200 } } },
	{ "Berlin", 2026, 10, 25, { { 0, 59, 59, 7200 }, { 1, 0, 0, 3600 } } },
	/* After the table (fat files end in 2037): the footer rule. */
	{ "Berlin 2040", 2040, 7, 1, { { 0, 0, 0, 7200 } } },
	{ "Berlin 2040", 2040, 1, 1, { { 0, 0, 0, 3600 } } },
	{ "Berlin 2040",
	  2040,
	  3,
	  25,
	  { { 0, 59, 59, 3600 }, { 1, 0, 0, 7200 } } },
	{ "Berlin 2040",
	  2040,
	  10,
	  28,
	  { { 0, 59, 59, 7200 }, { 1, 0, 0, 3600 } } },
	{ "Berlin 2100", 2100, 7, 1, { { 0, 0, 0, 7200 } } },
	{ "Berlin 9999", 9999, 7, 1, { { 0, 0, 0, 7200 } } },
	{ "Berlin 9999", 9999, 12, 31, { { 0, 0, 0, 3600 } } },
	/* Before the table: local mean time, +0:53:28. */
	{ "Berlin 1850", 1850, 1, 1, { { 0, 0, 0, 3208 } } },
};

/* One day a line (its checks wrapped), as the tables above read. */
/* clang-format off */
static const struct berlin_day berlin_local[] = {
	/* Spring forward: local 02:00..02:59:59 does not exist; moved
	 * forward by the hour, 02:30 is 03:30 CEST = 01:30Z. */
	{ "Berlin gap", 2026, 3, 29,
	  { { 2, 30, 0, 3600 }, { 2, 0, 0, 3600 }, { 2, 59, 59, 3600 },
	    { 1, 59, 59, 3600 }, { 3, 0, 0, 7200 }, { 3, 30, 0, 7200 } } },
	/* Fall back: local 02:00..02:59:59 happens twice; the first (CEST)
	 * wins, 02:30 is 00:30Z (and 01:59:59 the day before's 23:59:59Z). */
	{ "Berlin overlap", 2026, 10, 25,
	  { { 2, 30, 0, 7200 }, { 2, 0, 0, 7200 }, { 2, 59, 59, 7200 },
	    { 1, 59, 59, 7200 }, { 3, 0, 0, 3600 } } },
	/* The footer rule. */
	{ "Berlin 2040 gap", 2040, 3, 25, { { 2, 30, 0, 3600 } } },
	{ "Berlin 2040 overlap", 2040, 10, 28, { { 2, 30, 0, 7200 } } },
};
/* clang-format on */

/* Calls check(z, label, time, off) for every time of days[0..count). */
static void berlin_each(const struct tz *z, const struct berlin_day *days,
			size_t count,
			void (*check)(const struct tz *z, const char *label,
				      int64_t t, int32_t off))
{
	for (size_t i = 0; i < count; i++) {
		const struct berlin_day *b = &days[i];

		for (size_t k = 0; k < 6 && b->t[k].off != 0; k++)
			check(z, b->label,
			      at(b->y, b->mo, b->d, b->t[k].h, b->t[k].mi,
				 b->t[k].s),
			      b->t[k].off);
	}
}

static void check_local(const struct tz *z, const char *label, int64_t local,
			int32_t off)
{
	check_utc(z, label, local, local - off);
}

static void test_berlin(void)
{
	struct tz *z = load("Europe/Berlin");
	int64_t monday, last_monday;

	if (!z)
		return;
	berlin_each(z, berlin_utc, sizeof(berlin_utc) / sizeof(berlin_utc[0]),
		    check_offset);
	berlin_each(z, berlin_local,
		    sizeof(berlin_local) / sizeof(berlin_local[0]),
		    check_local);

	/* A class every Monday 18:00 local stays 18:00 local: 16:00Z in
	 * summer time (30 March .. 19 October 2026), 17:00Z otherwise. */
	monday = tz_days_from_civil(2026, 1, 5);
	last_monday = tz_days_from_civil(2027, 1, 25);
	for (int64_t day = monday; day <= last_monday; day += 7) {
		int64_t local = day * DAY + 18 * HOUR;
		int64_t utc = tz_local_to_utc(z, local);
		bool summer = day >= tz_days_from_civil(2026, 3, 30) &&
			      day <= tz_days_from_civil(2026, 10, 19);

		CHECK_MSG(tz_weekday(day) == 0, "%s is a Monday",
			  fmt_time(local));
		CHECK_MSG(utc + tz_offset_at(z, utc) == local,
			  "Monday %s keeps local time", fmt_time(local));
		CHECK_MSG(utc == day * DAY + (summer ? 16 : 17) * HOUR,
			  "Monday %s 18:00 -> %sZ", fmt_time(local),
			  fmt_time(utc));
	}

	/* Any int64 is accepted. */
	CHECK_MSG(tz_offset_at(z, INT64_MAX) == 3600 ||
			  tz_offset_at(z, INT64_MAX) == 7200,
		  "INT64_MAX");
	CHECK_MSG(tz_offset_at(z, INT64_MIN) == 3208, "INT64_MIN");
	CHECK_MSG(tz_local_to_utc(z, INT64_MIN) == INT64_MIN,
		  "INT64_MIN local");
	CHECK_MSG(tz_local_to_utc(z, INT64_MAX) <= INT64_MAX - 3600,
		  "INT64_MAX local");
	tz_free(z);
}

static void test_zones(void)
{
	struct tz *z;

	if ((z = load("America/New_York"))) {
		check_offset(z, "New York winter", at(2026, 1, 15, 12, 0, 0),
			     -5 * HOUR);
		check_offset(z, "New York summer", at(2026, 7, 15, 12, 0, 0),
			     -4 * HOUR);
		/* 2026-03-08 02:00 EST -> 03:00 EDT; 11-01 02:00 EDT -> 01:00
		 * EST. */
		check_utc(z, "New York gap", at(2026, 3, 8, 2, 30, 0),
			  at(2026, 3, 8, 7, 30, 0));
		check_utc(z, "New York overlap", at(2026, 11, 1, 1, 30, 0),
			  at(2026, 11, 1, 5, 30, 0));
		check_utc(z, "New York", at(2026, 11, 1, 2, 30, 0),
			  at(2026, 11, 1, 7, 30, 0));
		check_offset(z, "New York 2050", at(2050, 7, 1, 0, 0, 0),
			     -4 * HOUR);
		tz_free(z);
	}
	if ((z = load("Australia/Sydney"))) {
		/* Southern hemisphere: DST (+11) over the new year. */
		check_offset(z, "Sydney January", at(2026, 1, 15, 0, 0, 0),
			     11 * HOUR);
		check_offset(z, "Sydney July", at(2026, 7, 15, 0, 0, 0),
			     10 * HOUR);
		/* 2026-04-05 03:00 AEDT -> 02:00 AEST; 10-04 02:00 AEST ->
		 * 03:00 AEDT. */
		check_utc(z, "Sydney overlap", at(2026, 4, 5, 2, 30, 0),
			  at(2026, 4, 4, 15, 30, 0));
		check_utc(z, "Sydney gap", at(2026, 10, 4, 2, 30, 0),
			  at(2026, 10, 3, 16, 30, 0));
		check_offset(z, "Sydney 2060", at(2060, 1, 1, 0, 0, 0),
			     11 * HOUR);
		check_offset(z, "Sydney 2060", at(2060, 6, 1, 0, 0, 0),
			     10 * HOUR);
		tz_free(z);
	}
	if ((z = load("Asia/Kolkata"))) {
		check_offset(z, "Kolkata", at(2026, 1, 15, 0, 0, 0), 19800);
		check_offset(z, "Kolkata", at(2026, 7, 15, 0, 0, 0), 19800);
		check_offset(z, "Kolkata", at(2050, 7, 15, 0, 0, 0), 19800);
		check_utc(z, "Kolkata", at(2026, 6, 1, 10, 0, 0),
			  at(2026, 6, 1, 4, 30, 0));
		tz_free(z);
	}
	static const char *const utc_names[] = { "UTC", "Etc/UTC" };
	for (size_t i = 0; i < 2; i++) {
		if (!(z = load(utc_names[i])))
			continue;
		for (int64_t t = -(INT64_C(1) << 40); t < (INT64_C(1) << 40);
		     t += INT64_C(1) << 33) {
			check_offset(z, utc_names[i], t, 0);
			check_utc(z, utc_names[i], t, t);
		}
		tz_free(z);
	}
}

/* tz_load(name) fails with want (or with also) and sets *out to NULL. */
static void check_load_fails(const char *name, int want, int also)
{
	static int not_a_zone;
	struct tz *z = (struct tz *)&not_a_zone;
	int rc = tz_load(name, &z);

	CHECK_MSG(rc == want || rc == also, "tz_load(\"%s\") = %d, want %d",
		  name, rc, want);
	CHECK_MSG(z == NULL, "*out is NULL on failure");
}

static void test_names(void)
{
	static const char *const bad[] = {
		"",
		"../etc/passwd",
		"/abs",
		"/usr/share/zoneinfo/UTC",
		"Europe/../../etc/passwd",
		"Europe/..",
		"..",
		".",
		"./UTC",
		"Europe/Berlin ",
		"Europe/Ber lin",
		"UTC;rm",
		"UTC\n",
		"Europe\\Berlin",
		"Europe/Berlin.",
		"\xc3\xa9t\xc3\xa9",
		"Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	static const char *const unknown[] = {
		"Nowhere/City",
		"Europe",
		"Europe/",
		"UTC/x",
		"Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	struct tz *z;

	CHECK_MSG(strlen(bad[sizeof(bad) / sizeof(bad[0]) - 1]) == 64,
		  "64 bytes");
	CHECK_MSG(strlen(unknown[4]) == 63, "63 bytes");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_load_fails(bad[i], -EINVAL, -EINVAL);
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		check_load_fails(unknown[i], -ENOENT, -ENOENT);
	if (access(ZONEINFO "/right/UTC", R_OK) == 0) {
		int rc = tz_load("right/UTC", &z);

		CHECK_MSG(rc == -ENOTSUP, "leap-second zone: %d", rc);
		tz_free(z);
	}
	/* Files of the tree that are TZif (or a link to one) but no IANA zone
	 * name: refused even though they load as TZif (posixrules did). */
	static const char *const not_zones[] = {
		"posixrules",	       "localtime", "Factory",
		"posix/Europe/Berlin", "posix/UTC", "SystemV/EST5",
		"right/Europe/Berlin",
	};
	for (size_t i = 0; i < sizeof(not_zones) / sizeof(not_zones[0]); i++)
		check_load_fails(not_zones[i], -ENOENT, -ENOTSUP);
	/* Malformed names that open a real file: refused as names. */
	static const char *const odd[] = {
		"Europe//Berlin", "Etc//UTC", "-UTC",
		"Europe/_Berlin", "Etc/+5",   "0UTC",
	};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		int rc = tz_load(odd[i], &z);

		CHECK_MSG(rc == -EINVAL, "tz_load(\"%s\") = %d, want -EINVAL",
			  odd[i], rc);
	}
	/* IANA names, canonical and backward links, still load. */
	static const char *const zones[] = {
		"UTC",
		"Etc/UTC",
		"Etc/GMT+5",
		"Etc/GMT-14",
		"America/New_York",
		"America/Argentina/Buenos_Aires",
		"US/Eastern",
		"GMT",
		"EST5EDT",
	};
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
		char path[256];
		int rc;

		snprintf(path, sizeof(path), ZONEINFO "/%s", zones[i]);
		if (access(path, R_OK) != 0)
			continue; /* not in this tzdata */
		rc = tz_load(zones[i], &z);
		CHECK_MSG(rc == 0, "tz_load(\"%s\") = %d, want 0", zones[i],
			  rc);
		tz_free(z);
	}
	tz_free(NULL);
}

/* A link in TZDIR leading out of it (as zoneinfo's "localtime" does, to
 * /etc/localtime) is no zone, even to a real TZif file; one inside is. */
static void test_link_outside(const char *dir)
{
	char path[512];
	struct tz *z = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/Outside", dir);
	unlink(path);
	CHECK_MSG(symlink(ZONEINFO "/Europe/Berlin", path) == 0, "symlink: %s",
		  strerror(errno));
	rc = tz_load("Outside", &z);
	CHECK_MSG(rc == -ENOENT, "link out of TZDIR: %d, want -ENOENT", rc);
	CHECK_MSG(z == NULL, "*out is NULL on failure");
	unlink(path);
}

/* ---- cross-check with glibc ---- */

/* Local-time rules at a transition at T from o1 to o2 (seconds east). */
static void check_transition_local(const struct tz *z, const char *name,
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
static void compare_random(const struct tz *z, const char *name, int64_t from,
			   int64_t to, int count)
{
	for (int i = 0; i < count; i++) {
		int64_t t = rng_range(from, to);

		check_offset(z, name, t, libc_offset(t));
	}
}

/* Compares with glibc (TZ already set) every `step` s in [from, to),
 * finding each transition to the second; optionally checks local time
 * around each. */
static void compare_scan(const struct tz *z, const char *name, int64_t from,
			 int64_t to, int64_t step, bool check_local)
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
static void check_round_trip(const struct tz *z, const char *name, int64_t from,
			     int64_t to, int count)
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

static void test_libc_zones(void)
{
	static const char *const zones[] = {
		"Europe/Berlin",
		"Europe/London",
		"Europe/Dublin",
		"Europe/Lisbon",
		"Europe/Moscow",
		"Europe/Istanbul",
		"Europe/Kyiv",
		"America/New_York",
		"America/Chicago",
		"America/Denver",
		"America/Phoenix",
		"America/Los_Angeles",
		"America/Anchorage",
		"America/St_Johns",
		"America/Sao_Paulo",
		"America/Santiago",
		"America/Havana",
		"America/Nuuk",
		"America/Mexico_City",
		"America/Asuncion",
		"America/Caracas",
		"Pacific/Honolulu",
		"Pacific/Auckland",
		"Pacific/Chatham",
		"Pacific/Apia",
		"Pacific/Kiritimati",
		"Pacific/Easter",
		"Australia/Sydney",
		"Australia/Adelaide",
		"Australia/Lord_Howe",
		"Australia/Perth",
		"Asia/Kolkata",
		"Asia/Kathmandu",
		"Asia/Tehran",
		"Asia/Jerusalem",
		"Asia/Gaza",
		"Asia/Tokyo",
		"Asia/Shanghai",
		"Africa/Casablanca",
		"Africa/Cairo",
		"Africa/Johannesburg",
		"Antarctica/Troll",
		"Atlantic/Azores",
		"UTC",
		"Etc/UTC",
		"Etc/GMT+5",
		"Etc/GMT-14",
	};
	const char *env = getenv("TZ_TEST_ZONES");
	char list[1 << 16];
	const char *names[4096];
	size_t count = 0;

	if (env && strlen(env) < sizeof(list)) {
		strcpy(list, env);
		for (char *tok = strtok(list, " \t\n");
		     tok && count < sizeof(names) / sizeof(names[0]);
		     tok = strtok(NULL, " \t\n"))
			names[count++] = tok;
	} else {
		for (; count < sizeof(zones) / sizeof(zones[0]); count++)
			names[count] = zones[count];
	}
	for (size_t i = 0; i < count; i++) {
		struct tz *z = load(names[i]);

		if (!z)
			continue;
		libc_zone(names[i]);
		compare_random(z, names[i], at(2000, 1, 1, 0, 0, 0),
			       at(2037, 1, 1, 0, 0, 0), 300);
		compare_random(z, names[i], at(1800, 1, 1, 0, 0, 0),
			       at(2400, 1, 1, 0, 0, 0), 200);
		compare_scan(z, names[i], at(1970, 1, 1, 0, 0, 0),
			     at(2070, 1, 1, 0, 0, 0), 6 * HOUR, true);
		check_round_trip(z, names[i], at(1970, 1, 1, 0, 0, 0),
				 at(2100, 1, 1, 0, 0, 0), 2000);
		tz_free(z);
	}
	printf("tz: %zu zones cross-checked with glibc\n", count);
}

/* ---- synthetic TZif files ---- */

struct tzif_spec {
	const int64_t *times;
	const uint8_t *indices;
	uint32_t time_count;
	const int32_t *utoffs; /* type i: utoffs[i], isdst[i] */
	const uint8_t *isdst;
	uint32_t type_count;
	uint32_t leap_count;
	const char *footer; /* TZ string between the newlines */
	char version;
};

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static uint8_t *put64(uint8_t *p, int64_t v)
{
	p = put32(p, (uint32_t)((uint64_t)v >> 32));
	return put32(p, (uint32_t)(uint64_t)v);
}

static uint8_t *put_header(uint8_t *p, char version, uint32_t leap_count,
			   uint32_t time_count, uint32_t type_count,
			   uint32_t char_count)
{
	memcpy(p, "TZif", 4);
	p[4] = (uint8_t)version;
	memset(p + 5, 0, 15);
	p = put32(p + 20, 0); /* isutcnt */
	p = put32(p, 0);      /* isstdcnt */
	p = put32(p, leap_count);
	p = put32(p, time_count);
	p = put32(p, type_count);
	return put32(p, char_count);
}

/* Where the second header starts in a built file. */
#define V2_HEADER_POS (44 + 7)

static size_t build_tzif(uint8_t *buf, const struct tzif_spec *s)
{
	uint8_t *p = buf;

	/* v1 block: one type, one NUL designation (like zic -b slim). */
	p = put_header(p, s->version, 0, 0, 1, 1);
	memset(p, 0, 7);
	p += 7;
	p = put_header(p, s->version, s->leap_count, s->time_count,
		       s->type_count, 4);
	for (uint32_t i = 0; i < s->time_count; i++)
		p = put64(p, s->times[i]);
	for (uint32_t i = 0; i < s->time_count; i++)
		*p++ = s->indices[i];
	for (uint32_t i = 0; i < s->type_count; i++) {
		p = put32(p, (uint32_t)s->utoffs[i]);
		*p++ = s->isdst[i];
		*p++ = 0;
	}
	memcpy(p, "ABC", 4);
	p += 4;
	for (uint32_t i = 0; i < s->leap_count; i++) {
		p = put64(p, INT64_C(78796800) + i * 15778800);
		p = put32(p, i + 1);
	}
	p += sprintf((char *)p, "\n%s\n", s->footer);
	return (size_t)(p - buf);
}

static int load_bytes(const char *dir, const uint8_t *buf, size_t len,
		      struct tz **out)
{
	int rc = write_file(dir, "Test", buf, len);

	*out = NULL;
	if (rc)
		return rc;
	return tz_load("Test", out);
}

static int load_spec(const char *dir, const struct tzif_spec *s,
		     struct tz **out)
{
	static uint8_t buf[8192];

	return load_bytes(dir, buf, build_tzif(buf, s), out);
}

/* A zone with no transitions: the footer alone decides. */
static int load_footer(const char *dir, const char *footer, struct tz **out)
{
	static const int32_t utoffs[1] = { 0 };
	static const uint8_t isdst[1] = { 0 };
	struct tzif_spec s = { .utoffs = utoffs,
			       .isdst = isdst,
			       .type_count = 1,
			       .footer = footer,
			       .version = '3' };

	return load_spec(dir, &s, out);
}

/* One offset a footer-only zone must give at an instant. */
struct footer_offset {
	const char *label;
	int64_t t;
	int32_t want;
};

/* Loads the footer-only zone and checks each of c[0..n) in it. */
static void check_footer_offsets(const char *dir, const char *footer,
				 const struct footer_offset *c, size_t n)
{
	struct tz *z;

	if (load_footer(dir, footer, &z) != 0)
		return;
	for (size_t i = 0; i < n; i++)
		check_offset(z, c[i].label, c[i].t, c[i].want);
	tz_free(z);
}

static void test_footers(const char *dir)
{
	static const char *const libc_ok[] = {
		"CET-1CEST,M3.5.0,M10.5.0/3",
		"<+03>-3",
		"<-0330>3:30",
		"<-00>0",
		"UTC0",
		"IST-5:30",
		"XXX3YYY,J60/2,J300/2",
		"XXX3YYY,59,299",
		"AEST-10AEDT,M10.1.0,M4.1.0/3",
		"IST-1GMT0,M10.5.0,M3.5.0/1",
		"<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
		"EET-2EEST,M3.4.4/50,M10.4.4/50",
		"IST-2IDT,M3.4.4/26,M10.5.0",
		"<+00>0<+02>-2,M3.5.0/1,M10.5.0/3",
		"NST3:30NDT,M3.2.0,M11.1.0",
		"<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45",
		"<-04>4<-03>,M9.1.6/24,M4.1.6/24",
		"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
		"EET-2EEST,M4.5.5/0,M10.5.4/24",
		"CST5CDT,M3.2.0/0,M11.1.0/1",
		"ABC+1:02:03DEF-4:05:06,M3.2.0/1:02:03,M11.1.0/-0:30:15",
		"AAA+24BBB-24,M5.1.0,M6.1.0",
	};
	static const char *const bad[] = {
		"CET",
		"CET-",
		"CET-1CEST",
		"CET-1CEST,M3.5.0",
		"CET-1CEST,M3.5.0,",
		"CET-1CEST;M3.5.0,M10.5.0",
		"CET-1CEST,M13.5.0,M10.5.0",
		"CET-1CEST,M0.5.0,M10.5.0",
		"CET-1CEST,M3.6.0,M10.5.0",
		"CET-1CEST,M3.0.0,M10.5.0",
		"CET-1CEST,M3.5.7,M10.5.0",
		"CET-1CEST,M3.5,M10.5.0",
		"CET-1CEST,M3.5.0/168,M10.5.0",
		"CET-1CEST,M3.5.0/,M10.5.0",
		"CET-1CEST,J0,J365",
		"CET-1CEST,J366,J1",
		"CET-1CEST,366,0",
		"CET-25",
		"CET-1:60",
		"CET-1:00:60",
		"CET-1CEST-25,J1,J2",
		"CET-1 ",
		" CET-1",
		"CE-1",
		"<+03",
		"<+3>-3",
		"<+0 3>-3",
		"<+03>",
		"CET-1CEST,M3.5.0,M10.5.0/3,",
		"CET1000",
		"CET-1CEST,M3.5.0,M10.5.0/3x",
		"CET-1\r",
	};
	struct tz *z;
	int rc;

	for (size_t i = 0; i < sizeof(libc_ok) / sizeof(libc_ok[0]); i++) {
		rc = load_footer(dir, libc_ok[i], &z);
		CHECK_MSG(rc == 0, "footer \"%s\": %d", libc_ok[i], rc);
		if (rc)
			continue;
		libc_zone(libc_ok[i]);
		compare_random(z, libc_ok[i], at(1970, 1, 1, 0, 0, 0),
			       at(2200, 1, 1, 0, 0, 0), 500);
		compare_scan(z, libc_ok[i], at(2020, 1, 1, 0, 0, 0),
			     at(2030, 1, 1, 0, 0, 0), 3 * HOUR, true);
		/* Across 2370, where the 400-year reduction wraps. */
		compare_scan(z, libc_ok[i], at(2366, 1, 1, 0, 0, 0),
			     at(2374, 1, 1, 0, 0, 0), 3 * HOUR, false);
		tz_free(z);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = load_footer(dir, bad[i], &z);
		CHECK_MSG(rc == -EINVAL, "footer \"%s\": %d, want -EINVAL",
			  bad[i], rc);
		tz_free(z);
	}

	/* Jn never counts February 29, n does (2024 is a leap year). */
	const struct footer_offset jn[] = {
		{ "J60", at(2024, 3, 1, 4, 59, 59), -3 * HOUR },
		{ "J60", at(2024, 3, 1, 5, 0, 0), -2 * HOUR },
		{ "J300", at(2024, 10, 27, 3, 59, 59), -2 * HOUR },
		{ "J300", at(2024, 10, 27, 4, 0, 0), -3 * HOUR },
	};
	const struct footer_offset n[] = {
		{ "n59", at(2024, 2, 29, 4, 59, 59), -3 * HOUR },
		{ "n59", at(2024, 2, 29, 5, 0, 0), -2 * HOUR },
		{ "n59", at(2023, 3, 1, 5, 0, 0), -2 * HOUR },
		{ "n299", at(2024, 10, 26, 4, 0, 0), -3 * HOUR },
		{ "n299", at(2023, 10, 27, 3, 59, 59), -2 * HOUR },
	};
	check_footer_offsets(dir, "XXX3YYY,J60/2,J300/2", jn,
			     CHECK_COUNT_OF(jn));
	check_footer_offsets(dir, "XXX3YYY,59,299", n, CHECK_COUNT_OF(n));
	/* DST all year (RFC 8536 §3.3.1), also across the new year, where
	 * glibc (which uses the UTC year) disagrees for five hours. */
	if (load_footer(dir, "EST5EDT,0/0,J365/25", &z) == 0) {
		for (int i = 0; i < 2000; i++)
			check_offset(z, "all-year DST",
				     rng_range(at(1970, 1, 1, 0, 0, 0),
					       at(2200, 1, 1, 0, 0, 0)),
				     -4 * HOUR);
		for (int y = 2020; y < 2030; y++)
			for (int64_t t = at(y, 12, 31, 20, 0, 0);
			     t < at(y + 1, 1, 1, 8, 0, 0); t += 600)
				check_offset(z, "all-year DST", t, -4 * HOUR);
		tz_free(z);
	}
	/* Times past the day's end wrap into the next year. */
	if (load_footer(dir, "AAA0BBB,M1.1.0/-167,M12.5.6/167", &z) == 0) {
		/* 2025: 1st Sunday of January (5th) -167 h = 2024-12-29
		 * 01:00Z; last Saturday of December (27th) + 167 h =
		 * 2026-01-02 23:00 local BBB = 22:00Z. */
		check_offset(z, "wrap", at(2024, 12, 29, 0, 59, 59), 0);
		check_offset(z, "wrap", at(2024, 12, 29, 1, 0, 0), HOUR);
		check_offset(z, "wrap", at(2026, 1, 2, 21, 59, 59), HOUR);
		check_offset(z, "wrap", at(2026, 1, 2, 22, 0, 0), 0);
		check_round_trip(z, "wrap", at(1970, 1, 1, 0, 0, 0),
				 at(2100, 1, 1, 0, 0, 0), 1000);
		tz_free(z);
	}
}

static void test_tzif(const char *dir)
{
	static const int64_t times[3] = { -100000, 0, 1000000 };
	static const uint8_t indices[3] = { 1, 2, 1 };
	static const int32_t utoffs[3] = { 1234, 3600, 7200 };
	static const uint8_t isdst[3] = { 1, 0, 1 };
	const struct tzif_spec good = {
		.times = times,
		.indices = indices,
		.time_count = 3,
		.utoffs = utoffs,
		.isdst = isdst,
		.type_count = 3,
		.footer = "",
		.version = '2',
	};
	struct tzif_spec s;
	static uint8_t buf[8192];
	size_t len;
	struct tz *z;
	int rc;

	/* Table only, no footer rule: last type after the table, the first
	 * non-DST type (1, +1 h) before it. */
	rc = load_spec(dir, &good, &z);
	CHECK_MSG(rc == 0, "synthetic: %d", rc);
	if (rc == 0) {
		check_offset(z, "synthetic", INT64_MIN, 3600);
		check_offset(z, "synthetic", -100001, 3600);
		check_offset(z, "synthetic", -100000, 3600);
		check_offset(z, "synthetic", -1, 3600);
		check_offset(z, "synthetic", 0, 7200);
		check_offset(z, "synthetic", 999999, 7200);
		check_offset(z, "synthetic", 1000000, 3600);
		check_offset(z, "synthetic", INT64_MAX, 3600);
		check_utc(z, "synthetic gap", 3600 + 1800, 1800);
		check_utc(z, "synthetic overlap", 1000000 + 3600 + 5,
			  1000000 - 3600 + 5);
		tz_free(z);
	}
	s = good;
	s.version = '4';
	s.footer = "<+01>-1<+02>-2,M3.5.0,M10.5.0/3";
	rc = load_spec(dir, &s, &z);
	CHECK_MSG(rc == 0, "version 4: %d", rc);
	tz_free(z);

	s = good;
	s.version = '\0';
	CHECK_MSG(load_spec(dir, &s, &z) == -EINVAL, "version 1 refused");
	s = good;
	s.footer = "CET-1CEST";
	CHECK_MSG(load_spec(dir, &s, &z) == -EINVAL, "DST without rule");
	s = good;
	s.leap_count = 3;
	rc = load_spec(dir, &s, &z);
	CHECK_MSG(rc == -ENOTSUP, "leap seconds: %d", rc);
	tz_free(z);
	{
		static const int64_t t2[3] = { 0, 0, 5 }, t3[3] = { 5, 0, 9 };
		static const uint8_t i2[3] = { 0, 3, 1 };
		static const int32_t o2[3] = { 0, -90000, 0 };
		static const int32_t o3[3] = { 0, 93600, 0 };
		static const uint8_t d2[3] = { 0, 2, 0 };
		/* The good table with one of its arrays replaced (NULL: the
		 * good one's): each is refused. */
		static const struct {
			const char *what;
			const int64_t *times;
			const uint8_t *indices;
			const int32_t *utoffs;
			const uint8_t *isdst;
		} bad[] = {
			{ "equal times", t2, NULL, NULL, NULL },
			{ "descending times", t3, NULL, NULL, NULL },
			{ "index range", NULL, i2, NULL, NULL },
			{ "utoff < -24:59:59", NULL, NULL, o2, NULL },
			{ "utoff > 25:59:59", NULL, NULL, o3, NULL },
			{ "isdst 2", NULL, NULL, NULL, d2 },
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			s = good;
			s.times = bad[i].times ? bad[i].times : s.times;
			s.indices = bad[i].indices ? bad[i].indices : s.indices;
			s.utoffs = bad[i].utoffs ? bad[i].utoffs : s.utoffs;
			s.isdst = bad[i].isdst ? bad[i].isdst : s.isdst;
			CHECK_MSG(load_spec(dir, &s, &z) == -EINVAL, "%s",
				  bad[i].what);
		}
	}

	/* Patched bytes of the good file. */
	static const struct {
		size_t pos;
		uint8_t value;
		const char *what;
	} patches[] = {
		{ 0, 'X', "magic" },
		{ V2_HEADER_POS, 'X', "v2 magic" },
		{ V2_HEADER_POS + 32, 0xff, "timecnt huge" },
		{ V2_HEADER_POS + 35, 4, "timecnt + 1" },
		{ V2_HEADER_POS + 36, 0x80, "typecnt huge" },
		{ V2_HEADER_POS + 39, 0, "typecnt 0" },
		{ V2_HEADER_POS + 43, 0, "charcnt 0" },
		{ V2_HEADER_POS + 23, 3, "isutcnt 3 without data" },
		{ V2_HEADER_POS + 27, 1, "isstdcnt 1" },
		{ 32, 0x7f, "v1 timecnt huge" },
		{ 43, 2, "v1 charcnt + 1" },
	};
	len = build_tzif(buf, &good);
	for (size_t i = 0; i < sizeof(patches) / sizeof(patches[0]); i++) {
		uint8_t saved = buf[patches[i].pos];

		buf[patches[i].pos] = patches[i].value;
		rc = load_bytes(dir, buf, len, &z);
		CHECK_MSG(rc == -EINVAL, "%s: %d", patches[i].what, rc);
		tz_free(z);
		buf[patches[i].pos] = saved;
	}
	/* Designations must end in NUL; no trailing bytes; newlines. */
	{
		size_t chars = V2_HEADER_POS + 44 + 3 * 9 + 3 * 6;

		CHECK_MSG(memcmp(buf + chars, "ABC", 4) == 0, "layout");
		buf[chars + 3] = 'D';
		CHECK_MSG(load_bytes(dir, buf, len, &z) == -EINVAL, "no NUL");
		buf[chars + 3] = '\0';
		buf[len] = 'x';
		CHECK_MSG(load_bytes(dir, buf, len + 1, &z) == -EINVAL,
			  "trailing");
		buf[len] = '\n';
		CHECK_MSG(load_bytes(dir, buf, len + 1, &z) == -EINVAL,
			  "\\n\\n\\n");
		buf[len - 2] = 'x';
		CHECK_MSG(load_bytes(dir, buf, len, &z) == -EINVAL,
			  "footer \\n");
	}
	CHECK_MSG(load_bytes(dir, buf, 0, &z) == -EINVAL, "empty file");
}

/* Truncated and bit-flipped copies of a real zone file. */
static void test_malformed(const char *dir, const struct tz *ref)
{
	static uint8_t orig[FILE_SIZE_MAX], buf[FILE_SIZE_MAX];
	size_t len = 0;
	struct tz *z;
	unsigned long loaded = 0;
	int rc;

	rc = read_file(ZONEINFO "/Europe/Berlin", orig, sizeof(orig), &len);
	CHECK_MSG(rc == 0 && len > 100, "read Berlin: %d", rc);
	if (rc || len <= 100)
		return;
	for (size_t n = 0; n < len; n++) {
		rc = load_bytes(dir, orig, n, &z);
		CHECK_MSG(rc == -EINVAL, "truncated to %zu bytes: %d", n, rc);
		tz_free(z);
	}
	rc = load_bytes(dir, orig, len, &z);
	CHECK_MSG(rc == 0, "full copy: %d", rc);
	if (rc == 0) {
		for (int i = 0; i < 1000; i++) {
			int64_t t = rng_range(at(1800, 1, 1, 0, 0, 0),
					      at(2200, 1, 1, 0, 0, 0));

			check_offset(z, "copy", t, tz_offset_at(ref, t));
		}
		tz_free(z);
	}
	for (int round = 0; round < FLIP_ROUND_COUNT; round++) {
		int flip_count = 1 + (int)(rng_next() % 4);
		/* Half the rounds aim at the headers and the footer. */
		bool edges = rng_next() % 2;

		memcpy(buf, orig, len);
		for (int i = 0; i < flip_count; i++) {
			size_t pos = (size_t)rng_next() % len;

			if (edges) {
				size_t k = (size_t)rng_next() % 64;
				pos = k < 44 ? k : len - 1 - (k - 44);
			}
			buf[pos] ^= (uint8_t)(1 + rng_next() % 255);
		}
		rc = load_bytes(dir, buf, len, &z);
		CHECK_MSG(rc == 0 || rc == -EINVAL, "flip round %d: %d", round,
			  rc);
		if (rc != 0)
			continue;
		loaded++;
		for (int i = 0; i < 50; i++) {
			int64_t t = (int64_t)rng_next();
			int64_t local = rng_range(at(1800, 1, 1, 0, 0, 0),
						  at(2400, 1, 1, 0, 0, 0));
			int32_t off = tz_offset_at(z, t);

			CHECK_MSG(off > -25 * HOUR && off < 26 * HOUR,
				  "offset %d", off);
			(void)tz_local_to_utc(z, local);
			(void)tz_local_to_utc(z, t);
		}
		tz_free(z);
	}
	/* Random bytes after a valid-looking header. */
	for (int round = 0; round < 500; round++) {
		size_t n = 44 + (size_t)rng_next() % 512;

		memcpy(buf, orig, 44);
		for (size_t i = 44; i < n; i++)
			buf[i] = (uint8_t)rng_next();
		rc = load_bytes(dir, buf, n, &z);
		CHECK_MSG(rc == -EINVAL, "random body %d: %d", round, rc);
		tz_free(z);
	}
	printf("tz: %zu truncations, %d flip rounds (%lu still valid)\n", len,
	       FLIP_ROUND_COUNT, loaded);
}

int main(void)
{
	const char *seed_env = getenv("TZ_TEST_SEED");
	char dir[] = "/tmp/test_tz.XXXXXX";
	char path[64];
	struct tz *berlin;
	uint64_t seed;

	if (access(ZONEINFO "/Europe/Berlin", R_OK) != 0) {
		printf("tz: skipped, no %s\n", ZONEINFO);
		return SKIP;
	}
	seed = seed_env ? strtoull(seed_env, NULL, 0)
			: (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (seed == 0)
		seed = 1;
	rng_state = seed;
	printf("tz: seed %" PRIu64 " (TZ_TEST_SEED)\n", seed);
	unsetenv("TZDIR");

	test_civil();
	test_names();
	test_berlin();
	test_zones();
	test_libc_zones();

	if (!mkdtemp(dir)) {
		printf("FAIL mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	berlin = load("Europe/Berlin"); /* before TZDIR points to dir */
	setenv("TZDIR", dir, 1);
	test_footers(dir);
	test_tzif(dir);
	if (berlin)
		test_malformed(dir, berlin);
	test_link_outside(dir);
	unsetenv("TZDIR");
	tz_free(berlin);
	snprintf(path, sizeof(path), "%s/Test", dir);
	unlink(path);
	rmdir(dir);

	return check_end("tz", seed);
}
