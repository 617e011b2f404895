/*
 * test_fields.c: the API's field parsers and error mapping (api/fields.h).
 *
 * Every parser input is placed right before a PROT_NONE guard page (no NUL
 * after it), so a parser that reads one byte past n crashes the test
 * (picohttpparser's test.c does the same).
 *
 * Expectations are computed independently: times from a hand-written day
 * count (a loop over years and months, not days_from_civil).
 *
 * Prints "fields: P passed, F failed" (test functions; check.h check_run)
 * and exits 0 only when all passed.
 */
#include "fields.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "guard_test.h"

/* ---- guard page ---- */

/* s copied so that its last byte is the last before the guard page. */
static const char *g(const char *s, size_t *n)
{
	*n = strlen(s);
	return guard_copy(s, *n);
}

/* ---- independent calendar ---- */

static bool leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t slow_days(int64_t y, int m, int d)
{
	static const int md[12] = { 31, 28, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31 };
	int64_t days = 0;

	for (int64_t k = 1970; k < y; k++)
		days += leap(k) ? 366 : 365;
	for (int64_t k = y; k < 1970; k++)
		days -= leap(k) ? 366 : 365;
	for (int k = 1; k < m; k++)
		days += md[k - 1] + (k == 2 && leap(y));
	return days + d - 1;
}

#define MS(y, mo, d, h, mi, s)                                                 \
	((slow_days((y), (mo), (d)) * 86400 + (h)*3600 + (mi)*60 + (s)) *      \
	 INT64_C(1000))

/* ---- parsers via the guard page ---- */

static int id(const char *s, uint64_t *v)
{
	size_t n;
	const char *p = g(s, &n);

	return fld_id_parse(p, n, v);
}

static bool cust(const char *s)
{
	size_t n;
	const char *p = g(s, &n);

	return fld_customer_id_valid(p, n);
}

static int date(const char *s, struct core_date *d)
{
	size_t n;
	const char *p = g(s, &n);

	return fld_date_parse(p, n, d);
}

static int tparse(const char *s, core_time *t)
{
	size_t n;
	const char *p = g(s, &n);

	return fld_time_parse(p, n, t);
}

static bool time_is(const char *s, core_time want)
{
	core_time t = INT64_MIN;

	if (tparse(s, &t) != 0) {
		fprintf(stderr, "  %s: refused\n", s);
		return false;
	}
	if (t != want)
		fprintf(stderr, "  %s: %" PRId64 " want %" PRId64 "\n", s, t,
			want);
	return t == want;
}

static bool time_bad(const char *s)
{
	core_time t = 12345;
	int rc = tparse(s, &t);

	if (rc != -EINVAL)
		fprintf(stderr, "  %s: accepted as %" PRId64 "\n", s, t);
	return rc == -EINVAL && t == 12345;
}

/* ---- tests ---- */

CHECK_TEST_FN(test_ids)
{
	uint64_t v = 7;

	CHECK(id("1", &v) == 0 && v == 1);
	CHECK(id("42", &v) == 0 && v == 42);
	CHECK(id("18446744073709551615", &v) == 0 && v == UINT64_MAX);
	v = 7;
	CHECK(id("18446744073709551616", &v) == -EINVAL && v == 7);
	CHECK(id("99999999999999999999", &v) == -EINVAL);
	CHECK(id("100000000000000000000", &v) == -EINVAL); /* 21 digits */
	CHECK(id("0", &v) == -EINVAL);
	CHECK(id("00", &v) == -EINVAL);
	CHECK(id("007", &v) == -EINVAL);
	CHECK(id("", &v) == -EINVAL);
	CHECK(id("+1", &v) == -EINVAL);
	CHECK(id("-1", &v) == -EINVAL);
	CHECK(id(" 1", &v) == -EINVAL);
	CHECK(id("1 ", &v) == -EINVAL);
	CHECK(id("1a", &v) == -EINVAL);
	CHECK(id("0x10", &v) == -EINVAL);
	CHECK(id("1e3", &v) == -EINVAL);
	CHECK(v == 7);
	/* n bounds the read: "12" of "123" */
	CHECK(fld_id_parse("123", 2, &v) == 0 && v == 12);
	CHECK(fld_id_parse("123", 0, &v) == -EINVAL);
}

CHECK_TEST_FN(test_customer_ids)
{
	char buf[80];

	CHECK_ALL(cust, "a", "cus_123", "user@example.com", "urn:x:y-z.1",
		  "550e8400-e29b-41d4-a716-446655440000", "ABCxyz0189._:@-");
	memset(buf, 'x', 64);
	buf[64] = '\0';
	CHECK(cust(buf)); /* 64: the maximum */
	buf[64] = 'x';
	buf[65] = '\0';
	CHECK(!cust(buf)); /* 65 */
	CHECK(!cust(""));
	CHECK(!cust("a b"));
	CHECK(!cust("a/b"));
	CHECK(!cust("a\"b"));
	CHECK(!cust("a\\b"));
	CHECK(!cust("a+b"));
	CHECK(!cust("a\tb"));
	CHECK(!cust("\xc3\xa9"));		  /* UTF-8 e-acute */
	CHECK(!fld_customer_id_valid("a\0b", 3)); /* embedded NUL */
	CHECK(!fld_customer_id_valid(NULL, 0));
}

CHECK_TEST_FN(test_dates)
{
	struct core_date d = { 1, 1, 1 };

	CHECK(date("2026-11-25", &d) == 0);
	CHECK(d.year == 2026 && d.month == 11 && d.day == 25);
	CHECK(date("2000-02-29", &d) == 0 && d.month == 2 && d.day == 29);
	CHECK(date("2024-02-29", &d) == 0);
	CHECK(date("9999-12-31", &d) == 0 && d.year == 9999);
	CHECK(date("1970-01-01", &d) == 0 && d.year == 1970);
	/* Real days, but before the core's years: refused here, with the
	 * field's name, not later by the core without one. */
	CHECK(date("1600-02-29", &d) == -EINVAL);
	CHECK(date("0000-01-01", &d) == -EINVAL);
	CHECK(date("1969-12-31", &d) == -EINVAL);
	d = (struct core_date){ 1, 1, 1 };
	CHECK(date("1900-02-29", &d) == -EINVAL);
	CHECK(d.year == 1 && d.month == 1 && d.day == 1); /* untouched */
	CHECK(date("2100-02-29", &d) == -EINVAL);
	CHECK(date("2026-02-29", &d) == -EINVAL);
	CHECK(date("2026-02-30", &d) == -EINVAL);
	CHECK(date("2026-04-31", &d) == -EINVAL);
	CHECK(date("2026-13-01", &d) == -EINVAL);
	CHECK(date("2026-00-10", &d) == -EINVAL);
	CHECK(date("2026-01-00", &d) == -EINVAL);
	CHECK(date("2026-01-32", &d) == -EINVAL);
	CHECK(date("2026-1-01", &d) == -EINVAL);
	CHECK(date("2026/01/01", &d) == -EINVAL);
	CHECK(date("26-01-01", &d) == -EINVAL);
	CHECK(date("2026-01-01T", &d) == -EINVAL);
	CHECK(date("+026-01-01", &d) == -EINVAL);
	CHECK(date("2026-0a-01", &d) == -EINVAL);
	CHECK(date("", &d) == -EINVAL);
}

CHECK_TEST_FN(test_hhmm_weekday_currency)
{
	uint16_t m = 9;
	uint8_t bit = 0;
	char cur[4] = "zzz";
	size_t n;
	const char *p;

	CHECK(fld_hhmm_parse("00:00", 5, &m) == 0 && m == 0);
	CHECK(fld_hhmm_parse("18:30", 5, &m) == 0 && m == 18 * 60 + 30);
	CHECK(fld_hhmm_parse("23:59", 5, &m) == 0 && m == 1439);
	m = 9;
	CHECK(fld_hhmm_parse("24:00", 5, &m) == -EINVAL && m == 9);
	CHECK(fld_hhmm_parse("12:60", 5, &m) == -EINVAL);
	CHECK(fld_hhmm_parse("9:30", 4, &m) == -EINVAL);
	CHECK(fld_hhmm_parse("09:30:00", 8, &m) == -EINVAL);
	CHECK(fld_hhmm_parse("09-30", 5, &m) == -EINVAL);
	CHECK(fld_hhmm_parse("0a:30", 5, &m) == -EINVAL);
	p = g("07:05", &n);
	CHECK(fld_hhmm_parse(p, n, &m) == 0 && m == 425);

	const char *days[7] = { "MO", "TU", "WE", "TH", "FR", "SA", "SU" };
	uint8_t all = 0;

	for (unsigned i = 0; i < 7; i++) {
		p = g(days[i], &n);
		CHECK(fld_weekday_parse(p, n, &bit) == 0);
		CHECK(bit == (1u << i));
		all |= bit;
	}
	CHECK(all == 0x7f);
	bit = 0;
	CHECK(fld_weekday_parse("XX", 2, &bit) == -EINVAL && bit == 0);
	CHECK(fld_weekday_parse("MON", 3, &bit) == -EINVAL);
	CHECK(fld_weekday_parse("M", 1, &bit) == -EINVAL);
	CHECK(fld_weekday_parse("mo", 2, &bit) == -EINVAL);

	p = g("EUR", &n);
	CHECK(fld_currency_parse(p, n, cur) == 0 && strcmp(cur, "eur") == 0);
	CHECK(fld_currency_parse("usd", 3, cur) == 0 &&
	      strcmp(cur, "usd") == 0);
	CHECK(fld_currency_parse("ChF", 3, cur) == 0 &&
	      strcmp(cur, "chf") == 0);
	CHECK(fld_currency_parse("eu", 2, cur) == -EINVAL);
	CHECK(fld_currency_parse("euro", 4, cur) == -EINVAL);
	CHECK(fld_currency_parse("e1r", 3, cur) == -EINVAL);
	CHECK(fld_currency_parse("e r", 3, cur) == -EINVAL);
	CHECK(fld_currency_parse("[ur", 3, cur) == -EINVAL);
	CHECK(strcmp(cur, "chf") == 0); /* untouched on refusal */
}

CHECK_TEST_FN(test_time_parse)
{
	core_time t;

	/* Each string parses to its instant (ms since 1970). */
	const struct {
		const char *s;
		core_time want;
	} good[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "1970-01-01", 0 },
		{ "2026-11-25T18:00:00Z", MS(2026, 11, 25, 18, 0, 0) },
		{ "2026-11-25t18:00:00z", MS(2026, 11, 25, 18, 0, 0) },
		{ "2026-11-25", MS(2026, 11, 25, 0, 0, 0) },
		/* offsets: 19:00+01:00 is 18:00Z */
		{ "2026-11-25T19:00:00+01:00", MS(2026, 11, 25, 18, 0, 0) },
		{ "2026-11-25T19:00:00.250+01:00",
		  MS(2026, 11, 25, 18, 0, 0) + 250 },
		{ "2026-11-25T13:30:00-04:30", MS(2026, 11, 25, 18, 0, 0) },
		{ "2026-11-25T18:00:00+00:00", MS(2026, 11, 25, 18, 0, 0) },
		{ "2026-11-25T18:00:00-00:00", MS(2026, 11, 25, 18, 0, 0) },
		/* an offset that crosses the date line and a year */
		{ "2027-01-01T05:00:00+14:00", MS(2026, 12, 31, 15, 0, 0) },
		{ "2026-12-31T23:00:00-23:59", MS(2027, 1, 1, 22, 59, 0) },
		/* fractions: 1..9 digits, truncated to ms */
		{ "2026-11-25T18:00:00.5Z", MS(2026, 11, 25, 18, 0, 0) + 500 },
		{ "2026-11-25T18:00:00.05Z", MS(2026, 11, 25, 18, 0, 0) + 50 },
		{ "2026-11-25T18:00:00.007Z", MS(2026, 11, 25, 18, 0, 0) + 7 },
		{ "2026-11-25T18:00:00.999999999Z",
		  MS(2026, 11, 25, 18, 0, 0) + 999 },
		{ "2026-11-25T18:00:00.000Z", MS(2026, 11, 25, 18, 0, 0) },
		/* leap days */
		{ "2000-02-29T12:00:00Z", MS(2000, 2, 29, 12, 0, 0) },
		{ "2024-02-29T23:59:59.999Z", MS(2024, 3, 1, 0, 0, 0) - 1 },
		{ "2100-03-01T00:00:00Z", MS(2100, 2, 28, 0, 0, 0) + 86400000 },
		/* before 1970 */
		{ "1969-12-31T23:59:59.999Z", -1 },
		{ "1900-03-01T00:00:00Z", MS(1900, 3, 1, 0, 0, 0) },
		{ "9999-12-31T23:59:59Z", MS(9999, 12, 31, 23, 59, 59) },
	};
	for (size_t i = 0; i < CHECK_COUNT_OF(good); i++)
		CHECK_MSG(time_is(good[i].s, good[i].want), "%s", good[i].s);

	CHECK_ALL(time_bad, "1900-02-29T00:00:00Z", "2026-02-29",
		  "2026-11-25T24:00:00Z", "2026-11-25T18:60:00Z",
		  "2026-11-25T18:00:60Z", /* no leap seconds */
		  "2026-11-25T18:00:00",  /* no zone */
		  "2026-11-25T18:00Z", "2026-11-25 18:00:00Z",
		  "2026-11-25T18:00:00.Z",
		  "2026-11-25T18:00:00.1234567890Z", /* 10 digits */
		  "2026-11-25T18:00:00+1:00", "2026-11-25T18:00:00+01",
		  "2026-11-25T18:00:00+0100", "2026-11-25T18:00:00+24:00",
		  "2026-11-25T18:00:00+01:60", "2026-11-25T18:00:00Zjunk",
		  "2026-11-25T18:00:00+01:00 ", "2026-11-25T18:00:00.25",
		  "2026-11-25T", "2026-11-2", "", "tomorrow");
	CHECK(fld_time_parse(NULL, 0, &t) == -EINVAL);
	/* every prefix of a valid time but the date is refused (and read
	 * within bounds: the guard page) */
	{
		const char *full = "2026-11-25T19:00:00.250+01:00";
		char pre[40];

		for (size_t k = 0; k < strlen(full); k++) {
			memcpy(pre, full, k);
			pre[k] = '\0';
			if (k == 10)
				CHECK(time_is(pre, MS(2026, 11, 25, 0, 0, 0)));
			else
				CHECK(time_bad(pre));
		}
	}
}

CHECK_TEST_FN(test_time_format)
{
	char out[FLD_TIME_SIZE];
	core_time back;
	size_t n;

	n = fld_time_format(0, out);
	CHECK(n == 20 && strcmp(out, "1970-01-01T00:00:00Z") == 0);
	n = fld_time_format(MS(2026, 11, 25, 18, 0, 0), out);
	CHECK(n == 20 && strcmp(out, "2026-11-25T18:00:00Z") == 0);
	n = fld_time_format(MS(2026, 11, 25, 18, 0, 0) + 250, out);
	CHECK(n == 24 && strcmp(out, "2026-11-25T18:00:00.250Z") == 0);
	n = fld_time_format(MS(2026, 11, 25, 18, 0, 0) + 7, out);
	CHECK(strcmp(out, "2026-11-25T18:00:00.007Z") == 0);
	fld_time_format(MS(2000, 2, 29, 23, 59, 59), out);
	CHECK(strcmp(out, "2000-02-29T23:59:59Z") == 0);
	fld_time_format(-1, out);
	CHECK(strcmp(out, "1969-12-31T23:59:59.999Z") == 0);
	fld_time_format(-86400000, out);
	CHECK(strcmp(out, "1969-12-31T00:00:00Z") == 0);
	fld_time_format(MS(1900, 3, 1, 1, 2, 3), out);
	CHECK(strcmp(out, "1900-03-01T01:02:03Z") == 0);
	fld_time_format(MS(9999, 12, 31, 23, 59, 59) + 999, out);
	CHECK(strcmp(out, "9999-12-31T23:59:59.999Z") == 0);
	/* the extremes fit in FLD_TIME_SIZE */
	n = fld_time_format(INT64_MAX, out);
	CHECK(n < FLD_TIME_SIZE && n == strlen(out));
	n = fld_time_format(INT64_MIN, out);
	CHECK(n < FLD_TIME_SIZE && n == strlen(out));

	/* round trip: every day from 1899 to 2101 at a varying time of day,
	 * and a pseudo-random sample over years 0..9999 */
	{
		unsigned bad = 0;
		uint64_t x = 0x9e3779b97f4a7c15u;
		int64_t day_end = slow_days(2101, 1, 1);
		core_time lo = MS(0, 1, 1, 0, 0, 0);
		core_time span = MS(10000, 1, 1, 0, 0, 0) - lo;

		for (int64_t day = slow_days(1899, 1, 1); day < day_end;
		     day++) {
			core_time t = day * 86400000 + (day * 7919 % 86400000);

			n = fld_time_format(t, out);
			if (fld_time_parse(out, n, &back) != 0 || back != t)
				bad++;
		}
		for (unsigned i = 0; i < 100000; i++) {
			core_time t;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			t = lo + (core_time)(x % (uint64_t)span);
			n = fld_time_format(t, out);
			if (fld_time_parse(out, n, &back) != 0 || back != t)
				bad++;
		}
		CHECK(bad == 0);
	}
}

CHECK_TEST_FN(test_timezones)
{
	CHECK(fld_timezone_valid("UTC"));
	CHECK(fld_timezone_valid("Europe/Berlin"));
	CHECK(fld_timezone_valid("America/New_York"));
	CHECK(!fld_timezone_valid("Mars/Olympus_Mons"));
	CHECK(!fld_timezone_valid(""));
	CHECK(!fld_timezone_valid(NULL));
	CHECK(!fld_timezone_valid("../etc/passwd"));
	CHECK(!fld_timezone_valid("/usr/share/zoneinfo/UTC"));
}

CHECK_TEST_FN(test_names)
{
	CHECK(strcmp(fld_event_status_name(CORE_EVENT_SCHEDULED),
		     "scheduled") == 0);
	CHECK(strcmp(fld_event_status_name(CORE_EVENT_CANCELLED),
		     "cancelled") == 0);
	CHECK(strcmp(fld_event_status_name(0), "unknown") == 0);
	CHECK(strcmp(fld_booking_status_name(CORE_BOOKING_CONFIRMED),
		     "confirmed") == 0);
	CHECK(strcmp(fld_booking_status_name(CORE_BOOKING_PENDING_PAYMENT),
		     "pending_payment") == 0);
	CHECK(strcmp(fld_booking_status_name(CORE_BOOKING_WAITLISTED),
		     "waitlisted") == 0);
	CHECK(strcmp(fld_booking_status_name(CORE_BOOKING_CANCELLED),
		     "cancelled") == 0);
}

static bool err_is(enum core_code c, const char *code, int status)
{
	int s = 0;
	const char *got = fld_code_error(c, &s);

	if (strcmp(got, code) != 0 || s != status)
		fprintf(stderr, "  code %d: %s %d, want %s %d\n", c, got, s,
			code, status);
	return strcmp(got, code) == 0 && s == status;
}

static bool errno_is(int rc, const char *code, int status)
{
	int s = 0;
	const char *got = fld_errno_error(rc, &s);

	return strcmp(got, code) == 0 && s == status;
}

CHECK_TEST_FN(test_errors)
{
	CHECK(err_is(CORE_EVENT_FULL, "event_full", 409));
	CHECK(err_is(CORE_ALREADY_BOOKED, "already_booked", 409));
	CHECK(err_is(CORE_NOT_BOOKABLE, "event_not_bookable", 409));
	CHECK(err_is(CORE_NO_EVENT, "not_found", 404));
	CHECK(err_is(CORE_NO_BOOKING, "not_found", 404));
	CHECK(err_is(CORE_NO_ORG, "not_found", 404));
	CHECK(err_is(CORE_NO_LOCATION, "not_found", 404));
	CHECK(err_is(CORE_NO_INSTRUCTOR, "not_found", 404));
	CHECK(err_is(CORE_NO_SERIES, "not_found", 404));
	CHECK(err_is(CORE_NO_CUSTOMER, "not_found", 404));
	CHECK(err_is(CORE_NOT_ACTIVE, "booking_not_active", 409));
	CHECK(err_is(CORE_NOT_PENDING, "booking_not_pending", 409));
	CHECK(err_is(CORE_PAYMENT_MISMATCH, "payment_mismatch", 409));
	CHECK(err_is(CORE_CAPACITY_BELOW_TAKEN, "capacity_below_taken", 409));
	CHECK(err_is(CORE_IDEM_MISMATCH, "idempotency_key_reused", 422));
	CHECK(err_is(CORE_IDEM_IN_FLIGHT, "idempotency_key_in_flight", 409));
	CHECK(err_is(CORE_INVALID, "invalid_request", 400));
	CHECK(err_is(CORE_FULL, "unavailable", 503));
	/* every code has a mapping other than the fallback */
	for (int c = CORE_OK + 1; c < CORE_CODE_COUNT; c++) {
		int s = 0;

		CHECK(strcmp(fld_code_error((enum core_code)c, &s),
			     "internal") != 0);
		CHECK(s >= 400 && s < 600);
	}

	CHECK(errno_is(-ENOSPC, "unavailable", 503));
	CHECK(errno_is(-EIO, "unavailable", 503));
	CHECK(errno_is(-EROFS, "unavailable", 503));
	CHECK(errno_is(-EAGAIN, "overloaded", 503));
	CHECK(errno_is(-EINVAL, "invalid_request", 400));
	CHECK(errno_is(-EPERM, "internal", 500));
	CHECK(errno_is(-ENOENT, "internal", 500));

	/* Messages: a full log disk says so (was "unavailable", or strerror
	 * on the binary protocol); the not-found of a series names its field;
	 * every code and log error has words of its own. */
	{
		static const char full[] = "the log's disk is full; bookings "
					   "are refused until space is freed";
		CHECK(strncmp(fld_errno_message(-ENOSPC), full,
			      sizeof(full) - 1) == 0);
	}
	CHECK(strcmp(fld_errno_message(-EDQUOT), fld_errno_message(-ENOSPC)) ==
	      0);
	CHECK(strstr(fld_errno_message(-EIO), "I/O error") != NULL);
	CHECK(strstr(fld_errno_message(-EROFS), "read-only") != NULL);
	CHECK(strstr(fld_errno_message(-EAGAIN), "overloaded") != NULL);
	CHECK(strncmp(fld_code_message(CORE_NO_ORG), "org_id: ", 8) == 0);
	CHECK(strncmp(fld_code_message(CORE_NO_LOCATION),
		      "location_id: ", 13) == 0);
	CHECK(strncmp(fld_code_message(CORE_NO_INSTRUCTOR),
		      "instructor_id: ", 15) == 0);
	CHECK(strncmp(fld_code_message(CORE_NO_SERIES), "series_id: ", 11) ==
	      0);
	for (int c = CORE_OK + 1; c < CORE_CODE_COUNT; c++)
		CHECK(strcmp(fld_code_message((enum core_code)c),
			     "internal error") != 0);
}

/* The validators both protocols share for keys and free text. */
CHECK_TEST_FN(test_keys_text)
{
	char k[300];

	memset(k, 'k', sizeof(k));
	CHECK(fld_idem_key_valid("k-1", 3));
	CHECK(fld_idem_key_valid(" ~", 2));
	CHECK(fld_idem_key_valid(k, 255));
	CHECK(!fld_idem_key_valid(k, 256));
	CHECK(!fld_idem_key_valid("", 0));
	CHECK(!fld_idem_key_valid("a\0b", 3));
	CHECK(!fld_idem_key_valid("a\tb", 3));
	CHECK(!fld_idem_key_valid("a\x7f", 2));
	CHECK(!fld_idem_key_valid("\xc3\xa9", 2));
	CHECK(fld_text_valid("", 0));
	CHECK(fld_text_valid("caf\xc3\xa9", 5));
	CHECK(fld_text_valid("\xf0\x9f\x98\x80", 4));
	CHECK(fld_text_valid("\xef\xbf\xbf", 3));     /* U+FFFF */
	CHECK(fld_text_valid("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
	CHECK(fld_text_valid("a\x01"
			     "b",
			     3));
	CHECK(!fld_text_valid("a\0b", 3));
	CHECK(!fld_text_valid("\xff", 1));
	CHECK(!fld_text_valid("\x80", 1));
	CHECK(!fld_text_valid("\xc3", 1));	       /* cut */
	CHECK(!fld_text_valid("\xc0\x80", 2));	       /* overlong NUL */
	CHECK(!fld_text_valid("\xe0\x80\xaf", 3));     /* overlong */
	CHECK(!fld_text_valid("\xed\xa0\x80", 3));     /* surrogate */
	CHECK(!fld_text_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	CHECK(!fld_text_valid("\xe2\x82", 2));	       /* cut */
	/* ids: no leading zero, on both protocols (bin.c uses this) */
	{
		uint64_t v = 0;
		CHECK(fld_id_parse("01", 2, &v) == -EINVAL);
		CHECK(fld_id_parse("10", 2, &v) == 0 && v == 10);
	}
}

/* The series rules both protocols check after each field's parser, and
 * the weekday message: the field and the bad value named. */
CHECK_TEST_FN(test_series_messages)
{
	struct core_series_spec s;
	char err[160];

	CHECK(fld_weekday_error("XX", 2, err, sizeof(err)) > 0);
	CHECK(strncmp(err, "weekdays: unknown day \"XX\"", 26) == 0);
	CHECK(fld_weekday_error("a\"b\\c\n", 6, err, sizeof(err)) > 0);
	CHECK(strncmp(err, "weekdays: unknown day \"a?b?c?\"", 30) == 0);
	CHECK(fld_weekday_error("MONDAYTUESDAY", 13, err, sizeof(err)) > 0);
	CHECK(strstr(err, "\"MONDAYTU...\"") != NULL);
	CHECK(fld_weekday_error(NULL, 0, err, sizeof(err)) > 0);
	CHECK(strncmp(err, "weekdays: ", 10) == 0);

	memset(&s, 0, sizeof(s));
	s.capacity = 20;
	s.duration_min = 60;
	s.first_date = (struct core_date){ 2026, 3, 2 };
	CHECK(fld_series_check(&s, err, sizeof(err)) == 0);
	s.last_date = (struct core_date){ 2026, 3, 2 };
	CHECK(fld_series_check(&s, err, sizeof(err)) == 0); /* one day */
	s.last_date = (struct core_date){ 2026, 3, 1 };
	CHECK(fld_series_check(&s, err, sizeof(err)) == -EINVAL);
	CHECK(strcmp(err, "last_date: before first_date") == 0);
	s.last_date = (struct core_date){ 0, 0, 0 };
	s.capacity = 0;
	CHECK(fld_series_check(&s, err, sizeof(err)) == 0); /* as HTTP's */
	s.capacity = 1000001;
	CHECK(fld_series_check(&s, err, sizeof(err)) == -EINVAL);
	CHECK(strncmp(err, "capacity: ", 10) == 0);
	s.capacity = 1;
	s.duration_min = 0;
	CHECK(fld_series_check(&s, err, sizeof(err)) == -EINVAL);
	CHECK(strncmp(err, "duration_min: ", 14) == 0);
	s.duration_min = 1441;
	CHECK(fld_series_check(&s, err, sizeof(err)) == -EINVAL);
}

int main(void)
{
	guard_init((size_t)sysconf(_SC_PAGESIZE));
	return check_run_all("fields", NULL);
}
