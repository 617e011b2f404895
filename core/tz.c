/*
 * tz.c: IANA time zones read from TZif files, for local -> UTC class times.
 *
 * File format (RFC 8536; integers big-endian, times signed):
 *   header   44 bytes: "TZif", version ('2' or later), 15 unused bytes, six
 *            u32 counts: isutcnt isstdcnt leapcnt timecnt typecnt charcnt
 *   v1 data  timecnt*4 + timecnt + typecnt*6 + charcnt + leapcnt*8
 *            + isstdcnt + isutcnt bytes: skipped (sizes checked only)
 *   header   again, with the counts of the 64-bit block
 *   v2 data  timecnt i64 transition times, strictly ascending
 *            timecnt u8 type indices, each < typecnt
 *            typecnt ttinfo of 6 bytes: i32 utoff, u8 isdst, u8 desigidx
 *            charcnt designation bytes, NUL-terminated strings
 *            leapcnt*12 leap-second records, isstdcnt and isutcnt 0/1 bytes
 *   footer   '\n', a POSIX TZ string (may be empty), '\n'; the end of file
 *
 * Representation: one malloc holds struct tz followed by the file bytes.
 * The v2 table is read in place (byte loads, so alignment does not matter)
 * through pointers validated at load; the footer is parsed into a
 * struct tz__rule. Nothing is written after tz_load returns, so any number
 * of threads may query a zone.
 *
 * Offset at UTC instant t:
 *   - no transitions, or t >= the last one: the footer rule if there is one
 *     (RFC 8536 §3.2; glibc ignores it when there are no transitions),
 *     else the last transition's type (no transitions: as below);
 *   - t before the first transition: the first non-DST type, else type 0
 *     (glibc's choice; RFC 8536 says type 0; the same in every tzdata file);
 *   - otherwise the type of the last transition <= t (binary search).
 *
 * Footer rule "std offset [dst [offset] ,start[/time] ,end[/time]]": POSIX
 * offsets are west of UTC (CET-1 is +01:00); names are >= 3 letters or
 * <quoted> [A-Za-z0-9+-]; dates are Mm.w.d (week 5 = last), Jn (1..365,
 * February 29 never counted) or n (0..365); a time defaults to 02:00 and may
 * be negative or up to 167 h (RFC 8536 §3.3.1). DST without start/end rules
 * is rejected (tzdata never writes it). To evaluate, the transitions of the
 * years around t (start in standard time, end in daylight time) are listed
 * and the latest one <= t decides; on a tie DST wins, so "0/0,J365/25" is
 * DST all year as RFC 8536 requires. The rule repeats exactly every 400
 * Gregorian years (146097 days, whole weeks), so t is first reduced modulo
 * that cycle: exact, and no overflow for any int64.
 *
 * Local -> UTC: the offsets in force 26 h before and after the local time
 * (26 h bounds every valid offset) and the offsets at the instants they
 * imply are the candidates; u = local - off is real when offset_at(u) ==
 * off. Several real instants: an overlap, the earliest wins. None: a gap;
 * use the smallest candidate offset (the one before the jump), which moves
 * the wall time forward by the length of the gap.
 *
 * Failure behaviour: every byte from disk is validated (file <= 1 MiB,
 * counts capped, lengths checked before use, version 1 files refused); a
 * malformed file gives -EINVAL, never an assert or an out-of-bounds read.
 * Leap-second files ("right/...") give -ENOTSUP: bookd counts POSIX seconds.
 *
 * Names: IANA zone names only. Each component starts with a letter and
 * holds [A-Za-z0-9_+-] (no "..", "//", absolute paths); files of the tree
 * that are TZif but no zone are refused by name (-ENOENT: "posixrules",
 * "localtime", "Factory", the posix/ and SystemV/ trees; right/ is
 * -ENOTSUP), and so is a name whose file, links followed, lies outside the
 * zoneinfo directory. Other files (zone.tab, tzdata.zi, leapseconds) are
 * not TZif and fail to parse.
 */
#include "tz.h"
#include "bookd_assert.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_DIR_DEFAULT "/usr/share/zoneinfo"
#define TZ_NAME_SIZE_MAX 64 /* bytes incl. NUL: names are 1..63 bytes */
#define TZ_PATH_SIZE_MAX 4096
#define TZ_FILE_SIZE_MAX (1 << 20)
#define TZ_HEADER_SIZE 44
#define TZ_TIME_COUNT_MAX 65536u /* tzdata: < 400 */
#define TZ_TYPE_COUNT_MAX 256u	 /* type indices are one byte */
#define TZ_CHAR_COUNT_MAX 1024u	 /* tzdata: < 50 */
#define TZ_LEAP_COUNT_MAX 1024u	 /* tzdata: 27 */
#define TZ_FOOTER_SIZE_MAX 128	 /* TZ string bytes; tzdata: < 50 */
#define TZ_UTOFF_MIN (-89999)	 /* -24:59:59, RFC 8536 */
#define TZ_UTOFF_MAX 93599	 /* +25:59:59 */
#define TZ_OFFSET_HOURS_MAX 24	 /* POSIX TZ offsets */
#define TZ_RULE_HOURS_MAX 167	 /* RFC 8536 transition times */
#define TZ_RULE_TIME_DEFAULT 7200
#define TZ_CANDIDATE_COUNT_MAX 4
#define TZ_DAY_S INT64_C(86400)
#define TZ_CYCLE_DAYS INT64_C(146097) /* 400 Gregorian years */
#define TZ_CYCLE_S (TZ_CYCLE_DAYS * TZ_DAY_S)
#define TZ_WINDOW_S INT64_C(93600) /* > |any offset| */
#define TZ_DAYS_ABS_MAX (INT64_C(1) << 39)

_Static_assert(TZ_WINDOW_S > TZ_UTOFF_MAX, "window covers offsets");
_Static_assert(TZ_WINDOW_S > -(int64_t)TZ_UTOFF_MIN, "window covers offsets");
_Static_assert(TZ_CYCLE_DAYS % 7 == 0, "400 years are whole weeks");

enum tz__date_kind {
	TZ__DATE_MONTH,	 /* Mm.w.d */
	TZ__DATE_JULIAN, /* Jn, 1..365, February 29 never counted */
	TZ__DATE_ZERO,	 /* n, 0..365, February 29 counted */
};

struct tz__date {
	enum tz__date_kind kind;
	int yday;     /* JULIAN, ZERO */
	int month;    /* MONTH: 1..12 */
	int week;     /* MONTH: 1..5, 5 = last */
	int wday;     /* MONTH: 0 = Sunday ... 6 */
	int32_t time; /* seconds after local midnight, -167 h .. 167 h */
};

struct tz__rule {
	int32_t std_off; /* east of UTC */
	int32_t dst_off;
	bool has_dst;
	struct tz__date start; /* into DST, in standard local time */
	struct tz__date end;   /* out of DST, in daylight local time */
};

struct tz {
	const uint8_t *times;	/* time_count big-endian i64, ascending */
	const uint8_t *indices; /* time_count type indices, < type_count */
	const uint8_t *types;	/* type_count ttinfo, 6 bytes each */
	uint32_t time_count;
	uint32_t type_count;
	uint32_t type_before; /* type before the first transition */
	bool has_rule;
	struct tz__rule rule;
	size_t data_size;
	uint8_t data[]; /* the file */
};

struct tz__counts {
	uint32_t isut_count;
	uint32_t isstd_count;
	uint32_t leap_count;
	uint32_t time_count;
	uint32_t type_count;
	uint32_t char_count;
};

/* ---- arithmetic ---- */

static int64_t tz__floor_div(int64_t a, int64_t b)
{
	ASSERT(b > 0);
	return a / b - (a % b < 0);
}

static int64_t tz__floor_mod(int64_t a, int64_t b)
{
	int64_t r;

	ASSERT(b > 0);
	r = a % b;
	return r < 0 ? r + b : r;
}

/* a - b, saturated to the int64 range. */
static int64_t tz__sub_sat(int64_t a, int64_t b)
{
	if (b > 0 && a < INT64_MIN + b)
		return INT64_MIN;
	if (b < 0 && a > INT64_MAX + b)
		return INT64_MAX;
	return a - b;
}

static uint32_t tz__be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int32_t tz__be32_signed(const uint8_t *p)
{
	uint32_t u = tz__be32(p);

	return u <= INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

static int64_t tz__be64_signed(const uint8_t *p)
{
	uint64_t u = (uint64_t)tz__be32(p) << 32 | tz__be32(p + 4);

	return u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

/* ---- civil calendar ---- */

static bool tz__leap_year(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int tz_month_days(int64_t y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30,
				      31, 31, 30, 31, 30, 31 };

	ASSERT(m >= 1);
	ASSERT(m <= 12);
	return days[m - 1] + (m == 2 && tz__leap_year(y));
}

int64_t tz_days_from_civil(int year, int month, int day)
{
	int64_t y, era, yoe, mp, doy, doe;

	ASSERT(month >= 1);
	ASSERT(month <= 12);
	ASSERT(day >= 1);
	ASSERT(day <= 31);
	y = (int64_t)year - (month <= 2); /* years start in March */
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;			     /* [0, 399] */
	mp = month > 2 ? month - 3 : month + 9;	     /* March = 0 */
	doy = (153 * mp + 2) / 5 + day - 1;	     /* [0, 365] */
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; /* [0, 146096] */
	return era * TZ_CYCLE_DAYS + doe - 719468;   /* 719468: 0000-03-01 */
}

void tz_civil_from_days(int64_t days, int *year, int *month, int *day)
{
	int64_t z, era, doe, yoe, doy, mp, y, m;

	ASSERT(days >= -TZ_DAYS_ABS_MAX);
	ASSERT(days <= TZ_DAYS_ABS_MAX);
	z = days + 719468;
	era = (z >= 0 ? z : z - (TZ_CYCLE_DAYS - 1)) / TZ_CYCLE_DAYS;
	doe = z - era * TZ_CYCLE_DAYS; /* [0, 146096] */
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* [0, 365] */
	mp = (5 * doy + 2) / 153;		       /* [0, 11] */
	m = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + era * 400 + (m <= 2);
	*day = (int)(doy - (153 * mp + 2) / 5 + 1);
	*month = (int)m;
	*year = (int)y;
	ASSERT(*month >= 1);
	ASSERT(*day >= 1);
}

int tz_weekday(int64_t days)
{
	/* 1970-01-01 was a Thursday (3); days % 7 is in [-6, 6]. */
	return (int)((days % 7 + 10) % 7);
}

bool tz_date_valid(int year, int month, int day)
{
	if (year < 1970 || year > 9999 || month < 1 || month > 12)
		return false;
	return day >= 1 && day <= tz_month_days(year, month);
}

/* ---- POSIX TZ footer ---- */

struct tz__cursor {
	const uint8_t *p;
	const uint8_t *end;
};

static bool tz__at(const struct tz__cursor *c, char ch)
{
	return c->p < c->end && *c->p == (uint8_t)ch;
}

static bool tz__accept(struct tz__cursor *c, char ch)
{
	if (!tz__at(c, ch))
		return false;
	c->p++;
	return true;
}

static bool tz__is_digit(uint8_t ch) { return ch >= '0' && ch <= '9'; }

static bool tz__is_alpha(uint8_t ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

/* Zone abbreviation: >= 3 letters, or <...> of >= 3 [A-Za-z0-9+-]. */
static bool tz__parse_name(struct tz__cursor *c)
{
	size_t len = 0;

	if (tz__accept(c, '<')) {
		while (c->p < c->end &&
		       (tz__is_alpha(*c->p) || tz__is_digit(*c->p) ||
			*c->p == '+' || *c->p == '-')) {
			c->p++;
			len++;
		}
		if (!tz__accept(c, '>'))
			return false;
	} else {
		while (c->p < c->end && tz__is_alpha(*c->p)) {
			c->p++;
			len++;
		}
	}
	return len >= 3;
}

/* Unsigned decimal of 1..digit_count_max digits, at most value_max. */
static bool tz__parse_uint(struct tz__cursor *c, int digit_count_max,
			   int value_max, int *out)
{
	int value = 0, digit_count = 0;

	while (c->p < c->end && tz__is_digit(*c->p) &&
	       digit_count < digit_count_max) {
		value = value * 10 + (*c->p - '0');
		digit_count++;
		c->p++;
	}
	if (digit_count == 0 || value > value_max)
		return false;
	*out = value;
	return true;
}

/* [+-]hh[:mm[:ss]] in seconds, hh at most hours_max. */
static bool tz__parse_hms(struct tz__cursor *c, int hours_max, int32_t *out)
{
	int sign = 1, h, m = 0, s = 0;

	if (tz__accept(c, '-'))
		sign = -1;
	else
		(void)tz__accept(c, '+');
	if (!tz__parse_uint(c, 3, hours_max, &h))
		return false;
	if (tz__accept(c, ':')) {
		if (!tz__parse_uint(c, 2, 59, &m))
			return false;
		if (tz__accept(c, ':') && !tz__parse_uint(c, 2, 59, &s))
			return false;
	}
	*out = sign * (h * 3600 + m * 60 + s);
	return true;
}

static bool tz__parse_date(struct tz__cursor *c, struct tz__date *d)
{
	memset(d, 0, sizeof(*d));
	if (tz__accept(c, 'J')) {
		d->kind = TZ__DATE_JULIAN;
		if (!tz__parse_uint(c, 3, 365, &d->yday) || d->yday < 1)
			return false;
	} else if (tz__accept(c, 'M')) {
		d->kind = TZ__DATE_MONTH;
		if (!tz__parse_uint(c, 2, 12, &d->month) || d->month < 1 ||
		    !tz__accept(c, '.') || !tz__parse_uint(c, 1, 5, &d->week) ||
		    d->week < 1 || !tz__accept(c, '.') ||
		    !tz__parse_uint(c, 1, 6, &d->wday))
			return false;
	} else {
		d->kind = TZ__DATE_ZERO;
		if (!tz__parse_uint(c, 3, 365, &d->yday))
			return false;
	}
	d->time = TZ_RULE_TIME_DEFAULT;
	if (tz__accept(c, '/'))
		return tz__parse_hms(c, TZ_RULE_HOURS_MAX, &d->time);
	return true;
}

/* Parses a TZ string of `len` bytes; false if malformed or unsupported. */
static bool tz__parse_rule(const uint8_t *s, size_t len, struct tz__rule *r)
{
	struct tz__cursor c = { s, s + len };
	int32_t west;

	memset(r, 0, sizeof(*r));
	if (!tz__parse_name(&c) ||
	    !tz__parse_hms(&c, TZ_OFFSET_HOURS_MAX, &west))
		return false;
	r->std_off = -west;
	r->dst_off = r->std_off;
	if (c.p == c.end)
		return true;
	if (!tz__parse_name(&c))
		return false;
	r->has_dst = true;
	r->dst_off = r->std_off + 3600;
	if (!tz__at(&c, ',')) {
		if (!tz__parse_hms(&c, TZ_OFFSET_HOURS_MAX, &west))
			return false;
		r->dst_off = -west;
	}
	if (!tz__accept(&c, ',') || !tz__parse_date(&c, &r->start) ||
	    !tz__accept(&c, ',') || !tz__parse_date(&c, &r->end))
		return false;
	if (c.p != c.end)
		return false;
	ASSERT(r->std_off >= TZ_UTOFF_MIN && r->std_off <= TZ_UTOFF_MAX);
	ASSERT(r->dst_off >= TZ_UTOFF_MIN && r->dst_off <= TZ_UTOFF_MAX);
	return true;
}

/* Day number (since 1970) of rule date d in year y. */
static int64_t tz__rule_day(const struct tz__date *d, int64_t y)
{
	int64_t jan1, first, next, day;
	int wday_first;

	ASSERT(y > INT_MIN && y < INT_MAX);
	jan1 = tz_days_from_civil((int)y, 1, 1);
	switch (d->kind) {
	case TZ__DATE_JULIAN:
		return jan1 + d->yday - 1 + (tz__leap_year(y) && d->yday >= 60);
	case TZ__DATE_ZERO: return jan1 + d->yday;
	case TZ__DATE_MONTH: break;
	}
	first = tz_days_from_civil((int)y, d->month, 1);
	next = first + tz_month_days(y, d->month);
	wday_first = (tz_weekday(first) + 1) % 7; /* 0 = Sunday */
	day = first + (d->wday - wday_first + 7) % 7 + 7 * (d->week - 1);
	if (day >= next)
		day -= 7; /* week 5 in a month with four such days */
	ASSERT(day >= first);
	ASSERT(day < next);
	return day;
}

static int32_t tz__rule_offset(const struct tz__rule *r, int64_t t)
{
	int64_t t_cycle, best = 0;
	bool found = false, best_dst = false;
	int y, m, d;

	if (!r->has_dst)
		return r->std_off;
	t_cycle = tz__floor_mod(t, TZ_CYCLE_S); /* 1970 .. 2370 */
	tz_civil_from_days(tz__floor_div(t_cycle + r->std_off, TZ_DAY_S), &y,
			   &m, &d);
	/* Rule times are within +-167 h + 26 h of their day, so the latest
	 * transition <= t belongs to one of the years y - 2 .. y + 1. */
	for (int64_t yy = (int64_t)y - 2; yy <= (int64_t)y + 1; yy++) {
		int64_t start = tz__rule_day(&r->start, yy) * TZ_DAY_S +
				r->start.time - r->std_off;
		int64_t end = tz__rule_day(&r->end, yy) * TZ_DAY_S +
			      r->end.time - r->dst_off;

		if (end <= t_cycle && (!found || end > best)) {
			best = end;
			best_dst = false;
			found = true;
		}
		if (start <= t_cycle && (!found || start >= best)) {
			best = start;
			best_dst = true;
			found = true;
		}
	}
	ASSERT(found);
	return best_dst ? r->dst_off : r->std_off;
}

/* ---- TZif ---- */

static int tz__parse_header(const uint8_t *p, size_t len, struct tz__counts *n)
{
	if (len < TZ_HEADER_SIZE || memcmp(p, "TZif", 4) != 0 || p[4] < '2')
		return -EINVAL;
	n->isut_count = tz__be32(p + 20);
	n->isstd_count = tz__be32(p + 24);
	n->leap_count = tz__be32(p + 28);
	n->time_count = tz__be32(p + 32);
	n->type_count = tz__be32(p + 36);
	n->char_count = tz__be32(p + 40);
	if (n->time_count > TZ_TIME_COUNT_MAX || n->type_count == 0 ||
	    n->type_count > TZ_TYPE_COUNT_MAX || n->char_count == 0 ||
	    n->char_count > TZ_CHAR_COUNT_MAX ||
	    n->leap_count > TZ_LEAP_COUNT_MAX ||
	    (n->isut_count != 0 && n->isut_count != n->type_count) ||
	    (n->isstd_count != 0 && n->isstd_count != n->type_count))
		return -EINVAL;
	return 0;
}

/* Bytes of a data block whose times are time_size bytes (4 or 8). */
static size_t tz__block_size(const struct tz__counts *n, size_t time_size)
{
	/* Counts are capped: no overflow. */
	return (size_t)n->time_count * (time_size + 1) +
	       (size_t)n->type_count * 6 + n->char_count +
	       (size_t)n->leap_count * (time_size + 4) + n->isstd_count +
	       n->isut_count;
}

static int64_t tz__time(const struct tz *z, uint32_t i)
{
	ASSERT(i < z->time_count);
	return tz__be64_signed(z->times + (size_t)i * 8);
}

static int32_t tz__type_offset(const struct tz *z, uint32_t type)
{
	ASSERT(type < z->type_count);
	return tz__be32_signed(z->types + (size_t)type * 6);
}

/* Validates the file in z->data and points z's fields into it. */
static int tz__parse(struct tz *z)
{
	const uint8_t *buf = z->data, *chars, *isstd, *isut, *footer;
	size_t len = z->data_size, pos, size, footer_size;
	struct tz__counts n;
	int rc;

	rc = tz__parse_header(buf, len, &n);
	if (rc)
		return rc;
	size = tz__block_size(&n, 4);
	if (size > len - TZ_HEADER_SIZE)
		return -EINVAL;
	pos = TZ_HEADER_SIZE + size;
	rc = tz__parse_header(buf + pos, len - pos, &n);
	if (rc)
		return rc;
	pos += TZ_HEADER_SIZE;
	size = tz__block_size(&n, 8);
	if (size > len - pos)
		return -EINVAL;
	z->times = buf + pos;
	z->indices = z->times + (size_t)n.time_count * 8;
	z->types = z->indices + n.time_count;
	z->time_count = n.time_count;
	z->type_count = n.type_count;
	chars = z->types + (size_t)n.type_count * 6;
	isstd = chars + n.char_count + (size_t)n.leap_count * 12;
	isut = isstd + n.isstd_count;
	footer = buf + pos + size;
	footer_size = len - pos - size;
	ASSERT(isut + n.isut_count == footer);

	for (uint32_t i = 0; i < n.time_count; i++) {
		if (i > 0 && tz__time(z, i) <= tz__time(z, i - 1))
			return -EINVAL;
		if (z->indices[i] >= n.type_count)
			return -EINVAL;
	}
	z->type_before = n.type_count;
	for (uint32_t i = 0; i < n.type_count; i++) {
		const uint8_t *t = z->types + (size_t)i * 6;
		int32_t utoff = tz__be32_signed(t);
		bool is_std = n.isstd_count && isstd[i];

		if (utoff < TZ_UTOFF_MIN || utoff > TZ_UTOFF_MAX || t[4] > 1 ||
		    t[5] >= n.char_count)
			return -EINVAL;
		if ((n.isstd_count && isstd[i] > 1) ||
		    (n.isut_count && (isut[i] > 1 || (isut[i] && !is_std))))
			return -EINVAL;
		if (t[4] == 0 && z->type_before == n.type_count)
			z->type_before = i;
	}
	if (z->type_before == n.type_count)
		z->type_before = 0;
	if (chars[n.char_count - 1] != '\0')
		return -EINVAL;

	/* Footer: '\n' TZ '\n', ending the file, no '\n' inside. */
	if (footer_size < 2 || footer_size - 2 > TZ_FOOTER_SIZE_MAX ||
	    footer[0] != '\n' || footer[footer_size - 1] != '\n' ||
	    memchr(footer + 1, '\n', footer_size - 2) != NULL)
		return -EINVAL;
	z->has_rule = footer_size > 2;
	if (z->has_rule &&
	    !tz__parse_rule(footer + 1, footer_size - 2, &z->rule))
		return -EINVAL;
	if (n.leap_count != 0)
		return -ENOTSUP;
	return 0;
}

static bool tz__name_ok(const char *name)
{
	size_t len = strnlen(name, TZ_NAME_SIZE_MAX);

	if (len == 0 || len == TZ_NAME_SIZE_MAX || name[0] == '/' ||
	    strstr(name, "..") != NULL || strstr(name, "//") != NULL)
		return false;
	for (size_t i = 0; i < len; i++) {
		uint8_t ch = (uint8_t)name[i];

		if (!tz__is_alpha(ch) && !tz__is_digit(ch) && ch != '/' &&
		    ch != '_' && ch != '+' && ch != '-')
			return false;
		/* a name component starts with a letter ("Etc/GMT+5") */
		if ((i == 0 || name[i - 1] == '/') && ch != '/' &&
		    !tz__is_alpha(ch))
			return false;
	}
	return true;
}

/* Files of the zoneinfo tree that are TZif but no IANA zone name: the
 * POSIX default rules, the host's own zone, the "Factory" placeholder, and
 * the posix/ and right/ copies of the whole tree. */
static bool tz__name_denied(const char *name)
{
	static const char *const names[] = { "posixrules", "localtime",
					     "Factory" };
	static const char *const trees[] = { "posix/", "right/", "SystemV/" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	for (size_t i = 0; i < sizeof(trees) / sizeof(trees[0]); i++)
		if (strncmp(name, trees[i], strlen(trees[i])) == 0)
			return true;
	return false;
}

/* The file at path, links followed, lies inside dir (a link such as
 * "localtime" -> /etc/localtime leaves the tree: no zone of it). */
static int tz__inside(const char *dir, const char *path)
{
	char *d = realpath(dir, NULL), *p = NULL;
	size_t n;
	int rc = -ENOENT;

	if (!d)
		return -errno;
	p = realpath(path, NULL);
	if (!p) {
		rc = errno == ENOTDIR ? -ENOENT : -errno;
		goto out_free;
	}
	n = strlen(d);
	if (strncmp(p, d, n) == 0 && (n == 1 || p[n] == '/'))
		rc = 0;
out_free:
	free(p);
	free(d);
	return rc;
}

/* Reads up to size bytes; *got_size tells how many (less if it shrank). */
static int tz__read_all(int fd, uint8_t *buf, size_t size, size_t *got_size)
{
	size_t got = 0;

	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*got_size = got;
	return 0;
}

int tz_load(const char *name, struct tz **out)
{
	char path[TZ_PATH_SIZE_MAX];
	const char *dir = getenv("TZDIR");
	struct stat st;
	struct tz *z;
	size_t size;
	int fd, rc, path_len;

	ASSERT(name);
	ASSERT(out);
	*out = NULL;
	if (!tz__name_ok(name))
		return -EINVAL;
	if (tz__name_denied(name))
		return strncmp(name, "right/", 6) == 0 ? -ENOTSUP : -ENOENT;
	if (!dir || !dir[0])
		dir = TZ_DIR_DEFAULT;
	path_len = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (path_len < 0 || (size_t)path_len >= sizeof(path))
		return -ENAMETOOLONG;
	rc = tz__inside(dir, path);
	if (rc)
		return rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOTDIR ? -ENOENT : -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out_close_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -ENOENT; /* a directory such as "Europe" is no zone */
		goto out_close_fd;
	}
	if (st.st_size < TZ_HEADER_SIZE || st.st_size > TZ_FILE_SIZE_MAX) {
		rc = -EINVAL;
		goto out_close_fd;
	}
	size = (size_t)st.st_size;
	z = malloc(sizeof(*z) + size);
	if (!z) {
		rc = -ENOMEM;
		goto out_close_fd;
	}
	memset(z, 0, sizeof(*z));
	rc = tz__read_all(fd, z->data, size, &z->data_size);
	if (rc)
		goto out_free;
	rc = tz__parse(z);
	if (rc)
		goto out_free;
	close(fd);
	ASSERT(z->type_before < z->type_count);
	*out = z;
	return 0;

out_free:
	free(z);
out_close_fd:
	close(fd);
	return rc;
}

void tz_free(struct tz *z) { free(z); }

/* ---- queries ---- */

int32_t tz_offset_at(const struct tz *z, int64_t utc_s)
{
	uint32_t lo, hi, n;
	int32_t off;

	ASSERT(z);
	n = z->time_count;
	if (n == 0 || utc_s >= tz__time(z, n - 1)) {
		if (z->has_rule)
			off = tz__rule_offset(&z->rule, utc_s);
		else
			off = tz__type_offset(z, n ? z->indices[n - 1]
						   : z->type_before);
	} else if (utc_s < tz__time(z, 0)) {
		off = tz__type_offset(z, z->type_before);
	} else {
		/* time[lo] <= utc_s < time[hi] */
		lo = 0;
		hi = n - 1;
		while (hi - lo > 1) {
			uint32_t mid = lo + (hi - lo) / 2;

			if (tz__time(z, mid) <= utc_s)
				lo = mid;
			else
				hi = mid;
		}
		off = tz__type_offset(z, z->indices[lo]);
	}
	ASSERT(off >= TZ_UTOFF_MIN);
	ASSERT(off <= TZ_UTOFF_MAX);
	return off;
}

int64_t tz_local_to_utc(const struct tz *z, int64_t local_s)
{
	int32_t offs[TZ_CANDIDATE_COUNT_MAX], off_min;
	size_t count = 0;
	int64_t best = 0;
	bool found = false;

	ASSERT(z);
	offs[count++] = tz_offset_at(z, tz__sub_sat(local_s, TZ_WINDOW_S));
	offs[count] = tz_offset_at(z, tz__sub_sat(local_s, -TZ_WINDOW_S));
	count += offs[count] != offs[0];
	off_min = offs[0];
	for (size_t i = 0; i < count; i++) {
		int64_t u = tz__sub_sat(local_s, offs[i]);
		int32_t off_u = tz_offset_at(z, u);
		bool known = false;

		if (offs[i] < off_min)
			off_min = offs[i];
		if (off_u == offs[i]) {
			if (!found || u < best)
				best = u;
			found = true;
			continue;
		}
		for (size_t j = 0; j < count; j++)
			known = known || offs[j] == off_u;
		if (!known && count < TZ_CANDIDATE_COUNT_MAX)
			offs[count++] = off_u;
	}
	if (!found) /* a gap: the offset before the jump moves us forward */
		best = tz__sub_sat(local_s, off_min);
	ASSERT(count <= TZ_CANDIDATE_COUNT_MAX);
	return best;
}
