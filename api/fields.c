/*
 * fields.c: the values both protocols carry (fields.h).
 *
 * Purpose: one place where the HTTP adapter and the binary protocol check
 * and convert ids, customer ids, dates, times, weekdays and currencies, and
 * map core outcomes and transport errors to an API error code and an HTTP
 * status, so that both protocols say the same thing for the same input.
 *
 * Rules:
 *  - Parsers take (s, n), read at most n bytes, need no NUL, never allocate
 *    and return 0 or -EINVAL; *out is written only on success.
 *  - Ids: a decimal uint64 in 1..UINT64_MAX, digits only: no sign, no
 *    leading zero, no blanks, no overflow (wraps are refused, not reduced).
 *  - Calendar: proleptic Gregorian (core/tz.h's days_from_civil), years
 *    0000..9999 in times, no locale, no time-zone database. A date is a
 *    real day: 1900-02-29 is refused, 2000-02-29 accepted; a calendar date
 *    (fld_date_parse: series, generate) is also within the core's years,
 *    1970..9999, so that the core never refuses one without a field name.
 *  - Messages: what both protocols say for the same refusal (a field
 *    named first, "weekdays: unknown day \"XX\""; a core outcome or a
 *    transport error in words, e.g. a full log disk).
 *  - RFC 3339: "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)", 'T' and 'Z'
 *    in either case; the fraction (1..9 digits) is cut to milliseconds
 *    (truncated, never rounded up into the next second); a leap second
 *    (:60) is refused (core_time is POSIX time). A bare date is midnight
 *    UTC.
 *  - Output times are UTC with "Z", milliseconds only when not zero, so a
 *    formatted time parses back to the same core_time.
 *
 * Threads: everything here is pure and reentrant, except
 * fld_timezone_valid(), which reads the zone file (not for the hot path).
 */
#include "fields.h"
#include "bookd_assert.h"

#include "tz.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define FLD__ID_DIGITS_MAX 20  /* UINT64_MAX = 18446744073709551615 */
#define FLD__FRAC_DIGITS_MAX 9 /* nanoseconds: RFC 3339 allows more, we don't */
#define FLD__MS_PER_DAY INT64_C(86400000)
#define FLD__WEEKDAY_ECHO_MAX 8 /* bytes of a bad weekday quoted back */

_Static_assert(FLD_TIME_SIZE >= sizeof("-292275055-05-16T16:47:04.192Z"),
	       "fld time size holds any core_time");

static bool fld__digit(char c) { return c >= '0' && c <= '9'; }

/* n decimal digits at s as an int; false if any is not a digit. */
static bool fld__digits(const char *s, size_t n, int *out)
{
	int v = 0;

	ASSERT(n <= 9);
	for (size_t i = 0; i < n; i++) {
		if (!fld__digit(s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool fld_customer_id_valid(const char *s, size_t n)
{
	if (!s || n == 0 || n > CORE_CUSTOMER_ID_SIZE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    fld__digit(c))
			continue;
		if (c == '.' || c == '_' || c == ':' || c == '@' || c == '-')
			continue;
		return false;
	}
	return true;
}

bool fld_idem_key_valid(const char *s, size_t n)
{
	if (!s || n == 0 || n > FLD_IDEM_KEY_SIZE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

bool fld_text_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	if (!s && n)
		return false;
	while (i < n) {
		unsigned c = p[i], need;
		uint32_t cp;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return false; /* continuation, overlong lead, > U+10FFFF */
		}
		if (n - i <= need)
			return false;
		for (unsigned k = 1; k <= need; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += need + 1;
	}
	return true;
}

int fld_id_parse(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || n == 0 || n > FLD__ID_DIGITS_MAX || s[0] == '0')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (!fld__digit(s[i]))
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL; /* overflow */
		v = v * 10 + d;
	}
	ASSERT(v != 0); /* no leading zero and at least one digit */
	*out = v;
	return 0;
}

/* "YYYY-MM-DD" at s (exactly 10 bytes available). */
static int fld__date(const char *s, int *y, int *m, int *d)
{
	if (s[4] != '-' || s[7] != '-')
		return -EINVAL;
	if (!fld__digits(s, 4, y) || !fld__digits(s + 5, 2, m) ||
	    !fld__digits(s + 8, 2, d))
		return -EINVAL;
	if (*m < 1 || *m > 12 || *d < 1 || *d > tz_month_days(*y, *m))
		return -EINVAL;
	return 0;
}

int fld_date_parse(const char *s, size_t n, struct core_date *out)
{
	int y, m, d;

	if (!s || n != 10 || fld__date(s, &y, &m, &d) < 0)
		return -EINVAL;
	if (!tz_date_valid(y, m, d))
		return -EINVAL; /* the core's years: 1970..9999 */
	out->year = (int16_t)y;
	out->month = (int8_t)m;
	out->day = (int8_t)d;
	return 0;
}

int fld_hhmm_parse(const char *s, size_t n, uint16_t *out)
{
	int h, m;

	if (!s || n != 5 || s[2] != ':')
		return -EINVAL;
	if (!fld__digits(s, 2, &h) || !fld__digits(s + 3, 2, &m))
		return -EINVAL;
	if (h > 23 || m > 59)
		return -EINVAL;
	*out = (uint16_t)(h * 60 + m);
	ASSERT(*out < 24 * 60);
	return 0;
}

int fld_weekday_parse(const char *s, size_t n, uint8_t *bit)
{
	static const char names[7][2] = { { 'M', 'O' }, { 'T', 'U' },
					  { 'W', 'E' }, { 'T', 'H' },
					  { 'F', 'R' }, { 'S', 'A' },
					  { 'S', 'U' } };

	if (!s || n != 2)
		return -EINVAL;
	for (unsigned i = 0; i < 7; i++) {
		if (s[0] == names[i][0] && s[1] == names[i][1]) {
			*bit = (uint8_t)(1u << i);
			return 0;
		}
	}
	return -EINVAL;
}

int fld_time_parse(const char *s, size_t n, core_time *out)
{
	int y, mo, d, h, mi, sec, oh, om, ms = 0;
	int64_t days, offset_min = 0;
	size_t i;

	if (!s || n < 10 || fld__date(s, &y, &mo, &d) < 0)
		return -EINVAL;
	days = tz_days_from_civil(y, mo, d);
	if (n == 10) {
		*out = days * FLD__MS_PER_DAY;
		return 0;
	}
	/* "THH:MM:SS" then at least "Z" */
	if (n < 20 || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
	    s[16] != ':')
		return -EINVAL;
	if (!fld__digits(s + 11, 2, &h) || !fld__digits(s + 14, 2, &mi) ||
	    !fld__digits(s + 17, 2, &sec))
		return -EINVAL;
	if (h > 23 || mi > 59 || sec > 59)
		return -EINVAL;
	i = 19;
	if (s[i] == '.') {
		size_t first = ++i;

		while (i < n && fld__digit(s[i])) {
			if (i - first == FLD__FRAC_DIGITS_MAX)
				return -EINVAL;
			if (i - first < 3)
				ms = ms * 10 + (s[i] - '0');
			i++;
		}
		if (i == first)
			return -EINVAL; /* "." without digits */
		for (size_t k = i - first; k < 3; k++)
			ms *= 10;
	}
	if (i >= n)
		return -EINVAL; /* no zone */
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		if (n - i < 6 || s[i + 3] != ':')
			return -EINVAL;
		if (!fld__digits(s + i + 1, 2, &oh) ||
		    !fld__digits(s + i + 4, 2, &om))
			return -EINVAL;
		if (oh > 23 || om > 59)
			return -EINVAL;
		offset_min = (int64_t)oh * 60 + om;
		if (s[i] == '-')
			offset_min = -offset_min;
		i += 6;
	} else {
		return -EINVAL;
	}
	if (i != n)
		return -EINVAL; /* trailing bytes */
	ASSERT(ms >= 0);
	ASSERT(ms < 1000);
	*out = days * FLD__MS_PER_DAY +
	       ((int64_t)h * 3600 + mi * 60 + sec - offset_min * 60) * 1000 +
	       ms;
	return 0;
}

size_t fld_time_format(core_time t, char out[FLD_TIME_SIZE])
{
	int64_t days = t / FLD__MS_PER_DAY, rem = t % FLD__MS_PER_DAY;
	int y, mo, d, len;
	int64_t h, mi, sec, ms;

	if (rem < 0) { /* floor division: times before 1970 */
		rem += FLD__MS_PER_DAY;
		days--;
	}
	tz_civil_from_days(days, &y, &mo, &d);
	ms = rem % 1000;
	sec = rem / 1000 % 60;
	mi = rem / 60000 % 60;
	h = rem / 3600000;
	if (ms)
		len = snprintf(out, FLD_TIME_SIZE,
			       "%04d-%02d-%02dT%02" PRId64 ":%02" PRId64
			       ":%02" PRId64 ".%03" PRId64 "Z",
			       y, mo, d, h, mi, sec, ms);
	else
		len = snprintf(out, FLD_TIME_SIZE,
			       "%04d-%02d-%02dT%02" PRId64 ":%02" PRId64
			       ":%02" PRId64 "Z",
			       y, mo, d, h, mi, sec);
	ASSERT(len > 0);
	ASSERT((size_t)len < FLD_TIME_SIZE);
	return (size_t)len;
}

int fld_currency_parse(const char *s, size_t n, char out[4])
{
	char c[3];

	if (!s || n != 3)
		return -EINVAL;
	for (unsigned i = 0; i < 3; i++) {
		c[i] = s[i];
		if (c[i] >= 'A' && c[i] <= 'Z')
			c[i] = (char)(c[i] - 'A' + 'a');
		if (c[i] < 'a' || c[i] > 'z')
			return -EINVAL;
	}
	memcpy(out, c, 3);
	out[3] = '\0';
	return 0;
}

bool fld_timezone_valid(const char *name)
{
	struct tz *z = NULL;

	if (!name || !*name ||
	    strnlen(name, CORE_TZ_SIZE_MAX) >= CORE_TZ_SIZE_MAX)
		return false;
	if (tz_load(name, &z) < 0)
		return false;
	tz_free(z);
	return true;
}

int fld_weekday_error(const char *s, size_t n, char *err, size_t err_size)
{
	char v[FLD__WEEKDAY_ECHO_MAX + 1];
	size_t k = 0;

	if (!s)
		return snprintf(err, err_size,
				"weekdays: an array of \"MO\".."
				"\"SU\"");
	for (size_t i = 0; i < n && k < FLD__WEEKDAY_ECHO_MAX;
	     i++) /* printable */
		v[k++] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' &&
					 s[i] != '\\'
				 ? s[i]
				 : '?';
	v[k] = '\0';
	return snprintf(err, err_size,
			"weekdays: unknown day \"%s%s\" (MO, TU, WE, TH, FR, "
			"SA, SU)",
			v, n > k ? "..." : "");
}

int fld_series_check(const struct core_series_spec *s, char *err,
		     size_t err_size)
{
	int64_t first, last;

	first = tz_days_from_civil(s->first_date.year, s->first_date.month,
				   s->first_date.day);
	if (s->last_date.year) {
		last = tz_days_from_civil(s->last_date.year, s->last_date.month,
					  s->last_date.day);
		if (last < first) {
			snprintf(err, err_size, "last_date: before first_date");
			return -EINVAL;
		}
	}
	if (s->capacity > CORE_CAPACITY_MAX) {
		snprintf(err, err_size, "capacity: 0..%d", CORE_CAPACITY_MAX);
		return -EINVAL;
	}
	if (s->duration_min == 0 || s->duration_min > CORE_DURATION_MIN_MAX) {
		snprintf(err, err_size, "duration_min: 1..%d",
			 CORE_DURATION_MIN_MAX);
		return -EINVAL;
	}
	return 0;
}

const char *fld_event_status_name(uint8_t status)
{
	switch (status) {
	case CORE_EVENT_SCHEDULED: return "scheduled";
	case CORE_EVENT_CANCELLED: return "cancelled";
	default: return "unknown";
	}
}

const char *fld_booking_status_name(uint8_t status)
{
	return core_booking_status_name(status);
}

/* Each core outcome's error: HTTP status, code and message, by enum
 * core_code (CORE_OK is no error: a caller asking gets "internal"). */
static const struct {
	int status;
	const char *code;
	const char *message;
} fld_codes[CORE_CODE_COUNT] = {
	[CORE_OK] = { 500, "internal", "internal error" },
	[CORE_EVENT_FULL] = { 409, "event_full",
			      "the event is full and so is its waitlist" },
	[CORE_ALREADY_BOOKED] = { 409, "already_booked",
				  "the customer already has a booking on this event" },
	[CORE_NOT_BOOKABLE] = { 409, "event_not_bookable",
				"the event is cancelled or has started" },
	[CORE_NO_EVENT] = { 404, "not_found", "no such event" },
	[CORE_NO_BOOKING] = { 404, "not_found", "no such booking" },
	[CORE_NO_ORG] = { 404, "not_found", "org_id: no such org" },
	[CORE_NO_LOCATION] = { 404, "not_found",
			       "location_id: no such location in this org" },
	[CORE_NO_INSTRUCTOR] = { 404, "not_found",
				 "instructor_id: no such instructor in this org" },
	[CORE_NO_SERIES] = { 404, "not_found", "series_id: no such series" },
	[CORE_NO_CUSTOMER] = { 404, "not_found", "no such customer" },
	[CORE_NOT_ACTIVE] = { 409, "booking_not_active",
			      "the booking is no longer active" },
	[CORE_NOT_PENDING] = { 409, "booking_not_pending",
			       "the booking holds no seat" },
	[CORE_PAYMENT_MISMATCH] = { 409, "payment_mismatch",
				    "amount or currency differ from the hold" },
	[CORE_CAPACITY_BELOW_TAKEN] = { 409, "capacity_below_taken",
					"capacity: below the seats taken" },
	[CORE_IDEM_MISMATCH] = { 422, "idempotency_key_reused",
				 "idempotency key reused for another request" },
	[CORE_IDEM_IN_FLIGHT] = { 409, "idempotency_key_in_flight",
				  "a request with this idempotency key is in flight" },
	[CORE_INVALID] = { 400, "invalid_request", "invalid request" },
	[CORE_FULL] = { 503, "unavailable",
			"a table is full or the log refused the write" },
	/* the message names the limit: core_limit_message */
	[CORE_EVENT_STARTED] = { 409, "event_started",
				 "the class has started: it can no longer be "
				 "cancelled" },
	[CORE_LIMIT] = { 422, "limit_exceeded",
			 "a configured limit was reached" },
};

const char *fld_code_error(enum core_code code, int *http_status)
{
	ASSERT(code != CORE_OK); /* not an error: the caller renders it */
	if ((unsigned)code >= CORE_CODE_COUNT || !fld_codes[code].code) {
		*http_status = 500;
		return "internal";
	}
	*http_status = fld_codes[code].status;
	ASSERT(*http_status >= 400 && *http_status <= 599);
	return fld_codes[code].code;
}

const char *fld_code_message(enum core_code code)
{
	if ((unsigned)code >= CORE_CODE_COUNT || !fld_codes[code].message)
		return "internal error";
	return fld_codes[code].message;
}

/* A transport error (srv render's rc < 0): its code, HTTP status and
 * message; a row serves rc and also (0: none) an errno that means the
 * same. The log failed or is going away: writes are refused
 * ("unavailable"). */
static const struct {
	int rc, rc_also;
	int status;
	const char *code;
	const char *message;
} fld_errnos[] = {
	{ -EAGAIN, 0, 503, "overloaded", "the server is overloaded: retry" },
	{ -EINVAL, 0, 400, "invalid_request", "invalid request" },
	{ -ENOSPC, -EDQUOT, 503, "unavailable",
	  "the log's disk is full; bookings are refused until space is "
	  "freed (then restart bookd)" },
	{ -EIO, 0, 503, "unavailable",
	  "the log's disk failed to write (I/O error); bookings are refused "
	  "until bookd is restarted" },
	{ -EROFS, 0, 503, "unavailable",
	  "the log's file system is read-only; bookings are refused until "
	  "bookd is restarted" },
	{ -EFBIG, 0, 503, "unavailable",
	  "the log's file is too large; bookings are refused until bookd is "
	  "restarted" },
	{ -ENOMEM, 0, 503, "unavailable",
	  "out of memory; bookings are refused" },
	{ -ESHUTDOWN, -ECANCELED, 503, "unavailable",
	  "bookd is shutting down: retry on another node or later" },
};

/* The row of rc, or -1 (then: 500 "internal", "internal error"). */
static int fld_errno_row(int rc)
{
	const int count = (int)(sizeof(fld_errnos) / sizeof(fld_errnos[0]));

	ASSERT(rc < 0);
	for (int i = 0; i < count; i++)
		if (fld_errnos[i].rc == rc || fld_errnos[i].rc_also == rc)
			return i;
	return -1;
}

const char *fld_errno_message(int rc)
{
	int i = fld_errno_row(rc);

	return i < 0 ? "internal error" : fld_errnos[i].message;
}

const char *fld_errno_error(int rc, int *http_status)
{
	int i = fld_errno_row(rc);

	*http_status = i < 0 ? 500 : fld_errnos[i].status;
	ASSERT(*http_status >= 400 && *http_status <= 599);
	return i < 0 ? "internal" : fld_errnos[i].code;
}
