/*
 * tz.h: a small time-zone library for bookd (public within core).
 *
 * Purpose: turn a series' local class time in an IANA zone ("Europe/Berlin")
 * into a UTC instant, correctly across DST changes, when dated events are
 * generated up to 120 days ahead. No dependency on libc's tzset/localtime
 * (process-global, not thread-safe, TZ-environment driven).
 *
 * Design:
 *  - tz_load reads one TZif file (RFC 8536, version 2 or later) from $TZDIR
 *    or /usr/share/zoneinfo into a single allocation, validates every count,
 *    index and length against the file size, and parses the POSIX TZ footer
 *    ("CET-1CEST,M3.5.0,M10.5.0/3") that describes instants after the last
 *    transition in the table (fat files list transitions up to 2037; slim
 *    files stop earlier; both work).
 *  - Afterwards a zone is read-only: any number of threads may query it.
 *  - Times are int64 seconds since 1970-01-01T00:00:00Z (POSIX time, no leap
 *    seconds). "Local" seconds count the same way, as if local were UTC.
 *  - Queries never fail and never allocate; any int64 input is accepted.
 *
 * Errors: tz_load returns 0 or -errno: -EINVAL for a bad name or a malformed
 * file, -ENOENT for an unknown zone, -ENOTSUP for leap-second ("right/")
 * files, -ENOMEM, or another -errno from open/read.
 */
#ifndef BOOKD_TZ_H
#define BOOKD_TZ_H

#include <stdbool.h>
#include <stdint.h>

struct tz; /* opaque loaded zone */

/* Loads zone `name` from $TZDIR or /usr/share/zoneinfo. Refuse names that are
 * empty, longer than 63 bytes, absolute, contain ".." or "//", a component
 * not starting with a letter, or characters outside [A-Za-z0-9/_+-]: -EINVAL.
 * -ENOENT for unknown, and for the tree's files that are no IANA zone
 * ("posixrules", "localtime", "Factory", posix/..., SystemV/..., a link
 * leading outside the directory); -ENOTSUP for right/...; -EINVAL for a
 * malformed file. "UTC" and "Etc/UTC" must work. On success *out is the zone,
 * to be released with tz_free; on failure *out is NULL. */
int tz_load(const char *name, struct tz **out);

/* Releases a zone from tz_load; NULL is a no-op. */
void tz_free(struct tz *z);

/* Offset east of UTC, seconds, in force at UTC instant t (seconds since
 * epoch). */
int32_t tz_offset_at(const struct tz *z, int64_t utc_s);

/* Local wall-clock time (seconds since 1970-01-01T00:00 as if local were UTC)
 * -> UTC seconds. A local time in a spring-forward gap is moved forward by
 * the gap (02:30 on the day Berlin jumps 02:00->03:00 gives 03:30 local =
 * 01:30Z); an ambiguous one in a fall-back overlap takes the earlier instant
 * (the first occurrence, still in DST). */
int64_t tz_local_to_utc(const struct tz *z, int64_t local_s);

/* Proleptic Gregorian civil calendar helpers (Howard Hinnant's algorithms).
 * month 1..12, day 1..31; days within +-2^39 (years fit in an int). */
int64_t tz_days_from_civil(int year, int month, int day); /* since 1970-01-01 */
void tz_civil_from_days(int64_t days, int *year, int *month, int *day);
int tz_weekday(int64_t days); /* 0 = Monday ... 6 = Sunday */
bool tz_date_valid(int year, int month, int day); /* year 1970..9999 */
int tz_month_days(int64_t year, int month);	  /* month 1..12: 28..31 */

#endif /* BOOKD_TZ_H */
