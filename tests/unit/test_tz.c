/*
 * test_tz.c: unit test of core/tz (IANA zones, local class time -> UTC):
 * the civil calendar, zone names, Berlin by hand, real zones against glibc;
 * test_tz_tzif.c the TZif files and footers themselves (tz_test.h).
 *
 * Needs the system tzdata in /usr/share/zoneinfo (TZif v2+); exits 77 (skip)
 * without it. glibc's localtime_r is the oracle for offsets: the test may use
 * libc's time zones, the library must not. Random parts print their seed;
 * rerun with TZ_TEST_SEED=<seed>. TZ_TEST_ZONES="Area/City ..." replaces the
 * list of zones cross-checked against glibc (e.g. every zone in tzdata).
 */
#include "tz_test.h"

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

int main(void)
{
	uint64_t seed = tz_test_start("tz");

	if (!seed)
		return SKIP;
	test_civil();
	test_names();
	test_berlin();
	test_zones();
	test_libc_zones();
	return check_end("tz", seed);
}
