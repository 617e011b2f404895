/*
 * fields.h: the values both protocols carry, checked and converted the same
 * way (internal to api/): ids, customer ids, dates, times, weekdays, and
 * the error code and HTTP status of each core outcome.
 *
 * Parsers take (s, n), need no NUL, never allocate, and return 0 or -EINVAL.
 */
#ifndef BOOKD_FIELDS_H
#define BOOKD_FIELDS_H

#include "core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLD_TIME_SIZE 32 /* "2026-11-25T18:00:00Z" and its NUL, with room */

#define FLD_IDEM_KEY_SIZE_MAX 255

/* 1-64 of A-Za-z0-9._:@- */
bool fld_customer_id_valid(const char *s, size_t n);
/* An idempotency key: 1-255 bytes of printable ASCII (0x20..0x7e), as an
 * HTTP header can carry it; the binary protocol takes the same. */
bool fld_idem_key_valid(const char *s, size_t n);
/* Free text (titles, names, emails): valid UTF-8 (no overlong forms, no
 * surrogates, at most U+10FFFF) without NUL, as a JSON string decodes. */
bool fld_text_valid(const char *s, size_t n);
/* An id as the API shows it: a decimal string of a non-zero uint64, digits
 * only, no leading zero ("01" is no id, on either protocol). */
int fld_id_parse(const char *s, size_t n, uint64_t *out);
/* "YYYY-MM-DD", a real calendar date, years 1970..9999. */
int fld_date_parse(const char *s, size_t n, struct core_date *out);
/* "HH:MM", 00:00..23:59, as minutes after midnight. */
int fld_hhmm_parse(const char *s, size_t n, uint16_t *out);
/* "MO".."SU" as a bit of core_series_spec.weekday_mask. */
int fld_weekday_parse(const char *s, size_t n, uint8_t *bit);
/* RFC 3339 ("2026-11-25T18:00:00Z", "...T19:00:00.250+01:00") or a date
 * ("2026-11-25", midnight UTC). */
int fld_time_parse(const char *s, size_t n, core_time *out);
/* RFC 3339 in UTC with milliseconds only when not zero. Returns length. */
size_t fld_time_format(core_time t, char out[FLD_TIME_SIZE]);
/* A three-letter currency, lower-cased into out[4]. */
int fld_currency_parse(const char *s, size_t n, char out[4]);
/* Checks an IANA zone name by loading it. */
bool fld_timezone_valid(const char *name);

/* The message for a weekday that fld_weekday_parse refused (s NULL: not
 * a string): 'weekdays: unknown day "XX" (MO, ...)'; snprintf's result. */
int fld_weekday_error(const char *s, size_t n, char *err, size_t err_size);
/* What a series spec must satisfy beyond each field's own parser (the
 * core's series rules), the field named in err: last_date not before
 * first_date, capacity 0..CORE_CAPACITY_MAX, duration_min
 * 1..CORE_DURATION_MIN_MAX. 0 or -EINVAL. */
int fld_series_check(const struct core_series_spec *s, char *err,
		     size_t err_size);

const char *fld_event_status_name(uint8_t status);   /* "scheduled", ... */
const char *fld_booking_status_name(uint8_t status); /* "confirmed", ... */

/* The API's error for a core outcome other than CORE_OK: its code string
 * ("event_full", ...) and HTTP status (409, 404, ...). */
const char *fld_code_error(enum core_code code, int *http_status);
/* The same for a transport error from srv render (rc < 0). */
const char *fld_errno_error(int rc, int *http_status);
/* The message of each: the field named where there is one ("location_id:
 * no such location in this org"); for a failing log what failed and what
 * it means (-ENOSPC: "the log's disk is full; bookings are refused until
 * space is freed ..."). */
const char *fld_code_message(enum core_code code);
const char *fld_errno_message(int rc);

#endif
