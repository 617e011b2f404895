/*
 * http_json.c: JSON for the HTTP adapter (see http.c for the design).
 *
 * The writer appends to a caller's bounded buffer: it never allocates and
 * never fails, it only overflows (the answer is then replaced by a 500).
 * Strings are escaped per RFC 8259 ('"', '\\', control characters) and
 * checked as UTF-8 on the way out: a byte that starts no valid sequence
 * (overlong, surrogate, > U+10FFFF, truncated) becomes U+FFFD, so the
 * output is valid JSON whatever bytes a value holds. Ids are written as
 * strings, times as RFC 3339 UTC.
 *
 * The readers take a request body through jansson (json_loadb with
 * JSON_REJECT_DUPLICATES; jansson refuses invalid UTF-8, NUL in strings and
 * integers beyond int64) and check every field's type and range strictly,
 * with a message naming the field. Ids are accepted as decimal strings (as
 * the API writes them) or as positive integers. jr_series reads a whole
 * series body with them (the only body with nested arrays).
 */
#include "http_json.h"

#include "fields.h"
#include "payments.h"

#include <errno.h>
#include <stdlib.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- writer ---- */

void jw_init(struct jw *w, char *buf, size_t cap)
{
	ASSERT(buf);
	w->p = buf;
	w->n = 0;
	w->cap = cap;
	w->overflow = false;
	w->depth = 0;
	w->first = 1;
}

void jw_raw(struct jw *w, const char *s, size_t n)
{
	ASSERT(w->n <= w->cap);
	if (w->overflow || n > w->cap - w->n) {
		w->overflow = true;
		return;
	}
	memcpy(w->p + w->n, s, n);
	w->n += n;
	ASSERT(w->n <= w->cap);
}

static void jw_ch(struct jw *w, char c)
{
	ASSERT(w->n <= w->cap);
	if (w->overflow || w->n == w->cap) {
		w->overflow = true;
		return;
	}
	w->p[w->n++] = c;
	ASSERT(w->n <= w->cap);
}

/* Before a value: a comma unless it is the first at this depth (a value
 * after a key never takes one: jw_key cleared the flag). */
static void jw_sep(struct jw *w)
{
	uint32_t bit;

	ASSERT(w->depth <= 31);
	bit = 1u << w->depth;

	if (w->first & bit)
		w->first &= ~bit;
	else
		jw_ch(w, ',');
}

static void jw_open(struct jw *w, char c)
{
	jw_sep(w);
	jw_ch(w, c);
	if (w->depth >= 31) {
		w->overflow = true; /* our own documents are shallow */
		return;
	}
	w->depth++;
	ASSERT(w->depth <= 31);
	w->first |= 1u << w->depth;
}

static void jw_close(struct jw *w, char c)
{
	ASSERT(w->depth <= 31);
	if (w->depth == 0) {
		w->overflow = true;
		return;
	}
	w->depth--;
	jw_ch(w, c);
}

void jw_obj_begin(struct jw *w) { jw_open(w, '{'); }
void jw_obj_end(struct jw *w) { jw_close(w, '}'); }
void jw_arr_begin(struct jw *w) { jw_open(w, '['); }
void jw_arr_end(struct jw *w) { jw_close(w, ']'); }

/* Length of the valid UTF-8 sequence at s[0..n), or 0 (RFC 3629). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && s[1] < 0xa0)
			return 0; /* overlong */
		if (c == 0xed && s[1] >= 0xa0)
			return 0; /* surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && s[1] < 0x90)
			return 0; /* overlong */
		if (c == 0xf4 && s[1] >= 0x90)
			return 0; /* > U+10FFFF */
		return 4;
	}
	return 0;
}

static void jw_escaped(struct jw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	jw_ch(w, '"');
	while (i < n && !w->overflow) {
		unsigned char c;
		size_t k, run = i;

		/* Plain ASCII goes out in one copy. */
		while (run < n && u[run] >= 0x20 && u[run] < 0x7f &&
		       u[run] != '"' && u[run] != '\\')
			run++;
		if (run > i) {
			jw_raw(w, s + i, run - i);
			i = run;
			continue;
		}
		c = u[i];
		if (c == '"' || c == '\\') {
			jw_ch(w, '\\');
			jw_ch(w, (char)c);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			char e[6] = { '\\', 'u',	 '0',
				      '0',  hex[c >> 4], hex[c & 15] };
			switch (c) {
			case '\n': jw_raw(w, "\\n", 2); break;
			case '\r': jw_raw(w, "\\r", 2); break;
			case '\t': jw_raw(w, "\\t", 2); break;
			case '\b': jw_raw(w, "\\b", 2); break;
			case '\f': jw_raw(w, "\\f", 2); break;
			default: jw_raw(w, e, 6); break;
			}
			i++;
		} else if ((k = utf8_len(u + i, n - i)) == 0) {
			jw_raw(w, "\\ufffd", 6);
			i++;
		} else {
			jw_raw(w, s + i, k);
			i += k;
		}
	}
	jw_ch(w, '"');
}

void jw_key(struct jw *w, const char *k)
{
	jw_sep(w);
	jw_escaped(w, k, strlen(k));
	jw_ch(w, ':');
	w->first |= 1u << (w->depth & 31); /* the value takes no comma */
}

void jw_str(struct jw *w, const char *s, size_t n)
{
	jw_sep(w);
	jw_escaped(w, s, n);
}

void jw_cstr(struct jw *w, const char *s)
{
	if (!s)
		jw_null(w);
	else
		jw_str(w, s, strlen(s));
}

void jw_rawf(struct jw *w, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= sizeof(tmp)) {
		w->overflow = true;
		return;
	}
	jw_raw(w, tmp, (size_t)k);
}

void jw_u64(struct jw *w, uint64_t v)
{
	char d[HTTP_U64_DEC_SIZE];

	jw_sep(w);
	jw_raw(w, d, http_u64_dec(v, d));
}

void jw_i64(struct jw *w, int64_t v)
{
	jw_sep(w);
	jw_rawf(w, "%" PRId64, v);
}

void jw_double(struct jw *w, double v)
{
	size_t start;

	if (!isfinite(v)) {
		jw_null(w);
		return;
	}
	jw_sep(w);
	start = w->n;
	jw_rawf(w, "%.3f", v);
	if (w->n - start >= 64)
		w->overflow = true; /* 64 characters or more (about 1e60):
				     * overflowed before, and still does */
}

void jw_bool(struct jw *w, bool v)
{
	jw_sep(w);
	if (v)
		jw_raw(w, "true", 4);
	else
		jw_raw(w, "false", 5);
}

void jw_null(struct jw *w)
{
	jw_sep(w);
	jw_raw(w, "null", 4);
}

void jw_id(struct jw *w, uint64_t id)
{
	char d[HTTP_U64_DEC_SIZE + 2];
	size_t n = http_u64_dec(id, d + 1);

	d[0] = '"';
	d[n + 1] = '"';
	jw_sep(w);
	jw_raw(w, d, n + 2);
}

void jw_kv_u64(struct jw *w, const char *key, uint64_t v)
{
	jw_key(w, key);
	jw_u64(w, v);
}

void jw_kv_id(struct jw *w, const char *key, uint64_t id)
{
	jw_key(w, key);
	jw_id(w, id);
}

void jw_kv_cstr(struct jw *w, const char *key, const char *s)
{
	jw_key(w, key);
	jw_cstr(w, s);
}

void jw_kv_strn(struct jw *w, const char *key, const char *s, size_t size)
{
	jw_key(w, key);
	jw_str(w, s, strnlen(s, size));
}

void jw_kv_double(struct jw *w, const char *key, double v)
{
	jw_key(w, key);
	jw_double(w, v);
}

void jw_time(struct jw *w, core_time t)
{
	char buf[FLD_TIME_SIZE];
	size_t n = fld_time_format(t, buf);

	jw_str(w, buf, n);
}

void jw_date(struct jw *w, struct core_date d)
{
	if (d.year == 0) {
		jw_null(w);
		return;
	}
	jw_sep(w);
	jw_rawf(w, "\"%04d-%02d-%02d\"", d.year, d.month, d.day);
}

/* ---- views ---- */

/* What an event and its series share, in this order: where it is held,
 * by whom, and its title. */
static void jw_place(struct jw *w, uint64_t org_id, uint64_t location_id,
		     uint64_t instructor_id, const char *title,
		     size_t title_size)
{
	jw_kv_id(w, "org_id", org_id);
	jw_kv_id(w, "location_id", location_id);
	jw_kv_id(w, "instructor_id", instructor_id);
	jw_kv_strn(w, "title", title, title_size);
}

/* "price_cents" and "currency" (null when the class is free of one). */
static void jw_price(struct jw *w, uint32_t price_cents, const char *currency,
		     size_t currency_size)
{
	size_t n = strnlen(currency, currency_size);

	jw_kv_u64(w, "price_cents", price_cents);
	jw_key(w, "currency");
	if (n)
		jw_str(w, currency, n);
	else
		jw_null(w);
}

void jw_event(struct jw *w, const struct core_event_view *e)
{
	uint32_t taken = e->booked + e->held;
	uint32_t available =
		e->status == CORE_EVENT_SCHEDULED && e->capacity > taken
			? e->capacity - taken
			: 0;
	uint32_t depth = w->depth;

	jw_obj_begin(w);
	jw_kv_id(w, "id", e->id);
	jw_kv_id(w, "series_id", e->series_id);
	jw_place(w, e->org_id, e->location_id, e->instructor_id, e->title,
		 sizeof(e->title));
	jw_key(w, "start_at");
	jw_time(w, e->start_at);
	jw_kv_u64(w, "duration_min", e->duration_min);
	jw_kv_u64(w, "capacity", e->capacity);
	jw_kv_u64(w, "booked", e->booked);
	jw_kv_u64(w, "held", e->held);
	jw_kv_u64(w, "available", available);
	jw_kv_u64(w, "waitlist_length", e->waitlist_length);
	jw_kv_u64(w, "waitlist_capacity", e->waitlist_capacity);
	jw_price(w, e->price_cents, e->currency, sizeof(e->currency));
	jw_kv_cstr(w, "status", fld_event_status_name(e->status));
	if (e->detached) { /* kept off its series' pattern (series edit) */
		jw_key(w, "detached");
		jw_bool(w, true);
	}
	jw_obj_end(w);
	ASSERT(w->overflow || w->depth == depth);
}

void jw_booking(struct jw *w, const struct core_booking_view *b)
{
	uint32_t depth = w->depth;
	char intent_id[CORE_PAY_REF_SIZE_MAX], secret[PAYMENTS_SECRET_SIZE];

	jw_obj_begin(w);
	jw_kv_id(w, "id", b->id);
	jw_kv_id(w, "event_id", b->event_id);
	jw_kv_strn(w, "customer_id", b->customer_id, sizeof(b->customer_id));
	jw_kv_cstr(w, "status", fld_booking_status_name(b->status));
	if (b->status == CORE_BOOKING_WAITLISTED && b->position)
		jw_kv_u64(w, "position", b->position);
	if (b->status == CORE_BOOKING_PENDING_PAYMENT && b->hold_expires_at) {
		jw_key(w, "hold_expires_at");
		jw_time(w, b->hold_expires_at);
	}
	jw_key(w, "created_at");
	jw_time(w, b->created_at);
	if (b->late) /* a cancel inside the org's cut-off: only when so */
	{
		jw_key(w, "late");
		jw_bool(w, true);
	}
	/* the hold's PaymentIntent for Stripe.js, once the payments sender
	 * made it (payments.h; docs/http.md "Paying") */
	if (b->status == CORE_BOOKING_PENDING_PAYMENT &&
	    payments_intent_of(b->id, intent_id, secret)) {
		jw_kv_cstr(w, "payment_intent_id", intent_id);
		jw_kv_cstr(w, "client_secret", secret);
	}
	jw_obj_end(w);
	ASSERT(w->overflow || w->depth == depth);
}

/* ---- the seed-compatible shapes (docs/http.md "Seed-compatible
 * routes"): the same views in camelCase ---- */

void jw_event_camel(struct jw *w, const struct core_event_view *e)
{
	uint32_t taken = e->booked + e->held;
	uint32_t available =
		e->status == CORE_EVENT_SCHEDULED && e->capacity > taken
			? e->capacity - taken
			: 0;
	uint32_t depth = w->depth;

	jw_obj_begin(w);
	jw_kv_id(w, "id", e->id);
	jw_kv_id(w, "seriesId", e->series_id);
	jw_kv_id(w, "orgId", e->org_id);
	jw_kv_id(w, "locationId", e->location_id);
	jw_kv_id(w, "instructorId", e->instructor_id);
	jw_kv_strn(w, "title", e->title, sizeof(e->title));
	jw_key(w, "startAt");
	jw_time(w, e->start_at);
	jw_kv_u64(w, "durationMin", e->duration_min);
	jw_kv_u64(w, "capacity", e->capacity);
	jw_kv_u64(w, "booked", e->booked);
	jw_kv_u64(w, "held", e->held);
	jw_kv_u64(w, "available", available);
	jw_kv_u64(w, "waitlistLength", e->waitlist_length);
	jw_kv_u64(w, "waitlistCapacity", e->waitlist_capacity);
	jw_kv_u64(w, "priceCents", e->price_cents);
	jw_key(w, "currency");
	if (e->currency[0])
		jw_str(w, e->currency,
		       strnlen(e->currency, sizeof(e->currency)));
	else
		jw_null(w);
	jw_kv_cstr(w, "status", fld_event_status_name(e->status));
	jw_obj_end(w);
	ASSERT(w->overflow || w->depth == depth);
}

void jw_booking_camel(struct jw *w, const struct core_booking_view *b)
{
	uint32_t depth = w->depth;
	char intent_id[CORE_PAY_REF_SIZE_MAX], secret[PAYMENTS_SECRET_SIZE];

	jw_obj_begin(w);
	jw_kv_id(w, "id", b->id);
	jw_kv_id(w, "eventId", b->event_id);
	jw_kv_strn(w, "customerId", b->customer_id, sizeof(b->customer_id));
	jw_kv_cstr(w, "status", fld_booking_status_name(b->status));
	if (b->status == CORE_BOOKING_WAITLISTED && b->position)
		jw_kv_u64(w, "position", b->position);
	if (b->status == CORE_BOOKING_PENDING_PAYMENT && b->hold_expires_at) {
		jw_key(w, "holdExpiresAt");
		jw_time(w, b->hold_expires_at);
	}
	jw_key(w, "createdAt");
	jw_time(w, b->created_at);
	if (b->status == CORE_BOOKING_PENDING_PAYMENT &&
	    payments_intent_of(b->id, intent_id, secret)) {
		jw_kv_cstr(w, "paymentIntentId", intent_id);
		jw_kv_cstr(w, "clientSecret", secret);
	}
	jw_obj_end(w);
	ASSERT(w->overflow || w->depth == depth);
}

void jw_series(struct jw *w, uint64_t id, const struct core_series_spec *s)
{
	static const char *const day[7] = { "MO", "TU", "WE", "TH",
					    "FR", "SA", "SU" };
	uint32_t depth = w->depth;

	ASSERT(s->skip_count <= CORE_SKIP_DATE_COUNT_MAX);
	jw_obj_begin(w);
	jw_kv_id(w, "id", id);
	jw_place(w, s->org_id, s->location_id, s->instructor_id, s->title,
		 sizeof(s->title));
	jw_kv_u64(w, "capacity", s->capacity);
	jw_kv_u64(w, "waitlist_capacity", s->waitlist_capacity);
	jw_price(w, s->price_cents, s->currency, sizeof(s->currency));
	jw_kv_strn(w, "timezone", s->timezone, sizeof(s->timezone));
	jw_key(w, "weekdays");
	jw_arr_begin(w);
	for (int i = 0; i < 7; i++)
		if (s->weekday_mask & (1u << i))
			jw_cstr(w, day[i]);
	jw_arr_end(w);
	jw_key(w, "start_time");
	jw_sep(w);
	jw_rawf(w, "\"%02u:%02u\"", s->start_minute / 60u % 100u,
		s->start_minute % 60u);
	jw_kv_u64(w, "duration_min", s->duration_min);
	jw_key(w, "first_date");
	jw_date(w, s->first_date);
	jw_key(w, "last_date");
	jw_date(w, s->last_date);
	jw_key(w, "skip_dates");
	jw_arr_begin(w);
	for (uint32_t i = 0; i < s->skip_count && i < CORE_SKIP_DATE_COUNT_MAX;
	     i++)
		jw_date(w, s->skip[i]);
	jw_arr_end(w);
	jw_obj_end(w);
	ASSERT(w->overflow || w->depth == depth);
}

void jw_cat(struct jw *w, const struct core_cat_view *v)
{
	uint32_t depth = w->depth;

	if (v->kind == CORE_CAT_SERIES) {
		jw_series(w, v->id, &v->series);
		return;
	}
	jw_obj_begin(w);
	jw_kv_id(w, "id", v->id);
	if (v->kind != CORE_CAT_ORG)
		jw_kv_id(w, "org_id", v->org_id);
	jw_kv_strn(w, "name", v->name, sizeof(v->name));
	if (v->kind == CORE_CAT_ORG) {
		/* as org.create and org.patch answer them: 0 is null, the
		 * server's own */
		jw_kv_strn(w, "timezone", v->timezone, sizeof(v->timezone));
		jw_kv_u64(w, "cancel_cutoff_hours",
			  v->settings.cancel_cutoff_hours);
		jw_key(w, "hold_minutes");
		if (v->settings.hold_minutes)
			jw_u64(w, v->settings.hold_minutes);
		else
			jw_null(w);
		jw_key(w, "horizon_days");
		if (v->settings.horizon_days)
			jw_u64(w, v->settings.horizon_days);
		else
			jw_null(w);
	}
	jw_obj_end(w);
	ASSERT(w->overflow || w->depth == depth);
}

/* ---- readers ---- */

int jr_fail(struct jr *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int jr_open(struct jr *r, const void *body, size_t size)
{
	json_error_t e;

	r->root = NULL;
	r->err[0] = '\0';
	if (size == 0)
		return jr_fail(r, "a JSON object body is required");
	r->root = json_loadb(body, size, JSON_REJECT_DUPLICATES, &e);
	if (!r->root)
		return jr_fail(r, "malformed JSON at byte %d: %.80s",
			       e.position, e.text);
	if (!json_is_object(r->root)) {
		json_decref(r->root);
		r->root = NULL;
		return jr_fail(r, "the body must be a JSON object");
	}
	return 0;
}

void jr_close(struct jr *r)
{
	if (r->root)
		json_decref(r->root);
	r->root = NULL;
}

int jr_only(struct jr *r, const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(r->root, key, v)
	{
		size_t i;
		for (i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (!allowed[i])
			return jr_fail(r, "unknown field '%.40s'", key);
	}
	return 0;
}

static json_t *jr_get(struct jr *r, const char *key)
{
	json_t *v = json_object_get(r->root, key);

	return v && json_is_null(v) ? NULL : v;
}

/* key's value into *v (NULL when absent or null; *present, if asked,
 * says which); -EINVAL when it is absent and required. */
static int jr_field(struct jr *r, const char *key, bool required, bool *present,
		    json_t **v)
{
	*v = jr_get(r, key);
	if (present)
		*present = *v != NULL;
	if (!*v && required)
		return jr_fail(r, "field '%s' is required", key);
	return 0;
}

/* jr_field, and the value (when there) is of type (what: "a string"). */
static int jr_typed(struct jr *r, const char *key, bool required, bool *present,
		    json_type type, const char *what, json_t **v)
{
	int rc = jr_field(r, key, required, present, v);

	if (rc == 0 && *v && json_typeof(*v) != type)
		return jr_fail(r, "field '%s' must be %s", key, what);
	return rc;
}

int jr_str(struct jr *r, const char *key, bool required, char *out,
	   size_t out_size, size_t *len)
{
	json_t *v;
	size_t n;
	int rc;

	rc = jr_typed(r, key, required, NULL, JSON_STRING, "a string", &v);
	if (rc || !v)
		return rc;
	n = json_string_length(v);
	if (n >= out_size)
		return jr_fail(r, "field '%s' is too long (at most %zu bytes)",
			       key, out_size - 1);
	if (memchr(json_string_value(v), '\0', n))
		return jr_fail(r, "field '%s' holds a NUL", key);
	memcpy(out, json_string_value(v), n);
	out[n] = '\0';
	if (len)
		*len = n;
	return 0;
}

int jr_uint(struct jr *r, const char *key, bool required, uint64_t max,
	    uint64_t *out, bool *present)
{
	json_int_t i;
	json_t *v;
	int rc;

	rc = jr_typed(r, key, required, present, JSON_INTEGER, "an integer",
		      &v);
	if (rc || !v)
		return rc;
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i > max)
		return jr_fail(r, "field '%s' must be within 0..%" PRIu64, key,
			       max);
	*out = (uint64_t)i;
	return 0;
}

int jr_id(struct jr *r, const char *key, bool required, uint64_t *out,
	  bool *present)
{
	json_t *v;
	int rc;

	if ((rc = jr_field(r, key, required, present, &v)) || !v)
		return rc;
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v) &&
	    fld_id_parse(json_string_value(v), json_string_length(v), out) == 0)
		return 0;
	return jr_fail(r, "field '%s' must be an id (a decimal string)", key);
}

int jr_ref(struct jr *r, const char *key, bool required, uint64_t *out,
	   bool *present)
{
	json_t *v;
	int rc;

	*out = 0;
	if ((rc = jr_field(r, key, required, present, &v)) || !v)
		return rc;
	if (json_is_integer(v)) {
		if (json_integer_value(v) > 0)
			*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		if (fld_id_parse(json_string_value(v), json_string_length(v),
				 out))
			*out = 0;
		return 0;
	}
	return jr_fail(r, "field '%s' must be an id (a string)", key);
}

int jr_date(struct jr *r, const char *key, bool required, struct core_date *out,
	    bool *present)
{
	json_t *v;
	int rc;

	if ((rc = jr_field(r, key, required, present, &v)) || !v)
		return rc;
	if (!json_is_string(v) ||
	    fld_date_parse(json_string_value(v), json_string_length(v), out))
		return jr_fail(r, "field '%s' must be a date YYYY-MM-DD", key);
	return 0;
}

size_t http_u64_dec(uint64_t v, char out[HTTP_U64_DEC_SIZE])
{
	char tmp[HTTP_U64_DEC_SIZE];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
	return n;
}

int jr_series(struct jr *r, struct core_series_spec *s)
{
	static const char *const allowed[] = {
		"org_id",      "location_id", "instructor_id",
		"title",       "capacity",    "waitlist_capacity",
		"price_cents", "currency",    "timezone",
		"weekdays",    "start_time",  "duration_min",
		"first_date",  "last_date",   "skip_dates",
		NULL
	};
	uint64_t v;
	size_t n = 0;
	char buf[16];
	json_t *a, *e;
	size_t i;
	int rc;

	if ((rc = jr_only(r, allowed)) ||
	    (rc = jr_id(r, "org_id", true, &s->org_id, NULL)) ||
	    (rc = jr_id(r, "location_id", true, &s->location_id, NULL)) ||
	    (rc = jr_id(r, "instructor_id", true, &s->instructor_id, NULL)) ||
	    (rc = jr_str(r, "title", true, s->title, sizeof(s->title), &n)))
		return rc;
	if (n == 0)
		return jr_fail(r, "field 'title' must not be empty");
	if ((rc = jr_uint(r, "capacity", true, CORE_CAPACITY_MAX, &v, NULL)))
		return rc;
	s->capacity = (uint32_t)v;
	v = 0;
	if ((rc = jr_uint(r, "waitlist_capacity", false, CORE_CAPACITY_MAX, &v,
			  NULL)))
		return rc;
	s->waitlist_capacity = (uint32_t)v;
	v = 0;
	if ((rc = jr_uint(r, "price_cents", false, CORE_PRICE_CENTS_MAX, &v,
			  NULL)))
		return rc;
	s->price_cents = (uint32_t)v;
	n = 0;
	if ((rc = jr_str(r, "currency", false, buf, sizeof(buf), &n)))
		return rc;
	if (n && fld_currency_parse(buf, n, s->currency))
		return jr_fail(r, "field 'currency' must be a 3-letter ISO "
				  "4217 code");
	if (!n && s->price_cents)
		return jr_fail(r, "field 'currency' is required with a price");
	if ((rc = jr_str(r, "timezone", true, s->timezone, sizeof(s->timezone),
			 NULL)))
		return rc;
	if (!fld_timezone_valid(s->timezone))
		return jr_fail(r, "field 'timezone' must be an IANA time zone");
	a = json_object_get(r->root, "weekdays");
	if (!a || !json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > 7)
		return jr_fail(r, "field 'weekdays' must be an array of 1-7 "
				  "of \"MO\"..\"SU\"");
	json_array_foreach(a, i, e)
	{
		uint8_t bit;
		if (!json_is_string(e) ||
		    fld_weekday_parse(json_string_value(e),
				      json_string_length(e), &bit)) {
			fld_weekday_error(json_string_value(e),
					  json_string_length(e), r->err,
					  sizeof(r->err));
			return -EINVAL;
		}
		s->weekday_mask |= bit;
	}
	n = 0;
	if ((rc = jr_str(r, "start_time", true, buf, sizeof(buf), &n)))
		return rc;
	if (fld_hhmm_parse(buf, n, &s->start_minute))
		return jr_fail(r, "field 'start_time' must be HH:MM");
	if ((rc = jr_uint(r, "duration_min", true, CORE_DURATION_MIN_MAX, &v,
			  NULL)))
		return rc;
	if (v == 0)
		return jr_fail(r, "field 'duration_min' must be within 1..%d",
			       CORE_DURATION_MIN_MAX);
	s->duration_min = (uint32_t)v;
	if ((rc = jr_date(r, "first_date", true, &s->first_date, NULL)) ||
	    (rc = jr_date(r, "last_date", false, &s->last_date, NULL)))
		return rc;
	a = json_object_get(r->root, "skip_dates");
	if (a && !json_is_null(a)) {
		if (!json_is_array(a) ||
		    json_array_size(a) > CORE_SKIP_DATE_COUNT_MAX)
			return jr_fail(r, "field 'skip_dates' must be an array "
					  "of at most 64 dates");
		json_array_foreach(a, i, e)
		{
			if (!json_is_string(e) ||
			    fld_date_parse(json_string_value(e),
					   json_string_length(e),
					   &s->skip[s->skip_count]))
				return jr_fail(r,
					       "field 'skip_dates' must hold "
					       "dates YYYY-MM-DD");
			s->skip_count++;
		}
	}
	return fld_series_check(s, r->err, sizeof(r->err));
}
