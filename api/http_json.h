/*
 * http_json.h: the HTTP adapter's JSON (http_json.c): a writer into a
 * bounded buffer (RFC 8259 escaping, UTF-8 checked) and strict readers of
 * request bodies (jansson). The leaf of the adapter: it includes no other
 * http_ header. ASSERT (core/bookd_assert.h) comes with it.
 *
 * The adapter's files and what each includes (no circle):
 *   http_json.c    <- http_json.h, fields.h      (the leaf)
 *   http_write.c   <- http_write.h, http_json.h  (answers' bytes)
 *   http_status.c  <- http_status.h (-> http_json.h), fields.h
 *   http_render.c  <- http_render.h (-> http_req.h, http_write.h),
 *                     http_json.h, fields.h, ops.h
 *   http_routes.c  <- http_routes.h (-> http_req.h), http_render.h,
 *                     http_status.h,
 *                     http_json.h, fields.h, hex.h, ops.h
 *   http.c         <- http_render.h, http_routes.h, http_json.h, hex.h
 *                     (framing; calls http_route and http_render)
 * http_req.h is types only (the parsed request, the catalogue slot).
 */
#ifndef BOOKD_HTTP_JSON_H
#define BOOKD_HTTP_JSON_H

#include "core.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_ERR_SIZE_MAX 160 /* an error message */

#define HTTP_U64_DEC_SIZE 21 /* 20 digits and a NUL */
/* v in decimal into out (NUL-terminated); returns the length. */
size_t http_u64_dec(uint64_t v, char out[HTTP_U64_DEC_SIZE]);

/* ASSERT: our own invariants (never input), on in release builds too. */
#include "bookd_assert.h"

/* ---- the JSON writer: into a bounded buffer, never fails but overflows */

struct jw {
	char *p;
	size_t n, cap;
	bool overflow;
	uint32_t depth;
	uint32_t first; /* bit d: nothing written yet at depth d */
};

void jw_init(struct jw *w, char *buf, size_t cap);
void jw_raw(struct jw *w, const char *s, size_t n);
void jw_obj_begin(struct jw *w);
void jw_obj_end(struct jw *w);
void jw_arr_begin(struct jw *w);
void jw_arr_end(struct jw *w);
/* A key inside an object (escaped); then one value. */
void jw_key(struct jw *w, const char *k);
void jw_str(struct jw *w, const char *s, size_t n); /* escaped, UTF-8 fixed */
void jw_cstr(struct jw *w, const char *s);	    /* NULL: null */
void jw_u64(struct jw *w, uint64_t v);
void jw_i64(struct jw *w, int64_t v);
void jw_double(struct jw *w, double v);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
void jw_id(struct jw *w, uint64_t id);		/* "123" (ids are strings) */
void jw_time(struct jw *w, core_time t);	/* RFC 3339 UTC */
void jw_date(struct jw *w, struct core_date d); /* "YYYY-MM-DD" or null */
/* printf into the buffer as it is (no separator, no escaping): at most
 * 255 bytes, else the writer overflows. */
void jw_rawf(struct jw *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A key and its value in one call. */
void jw_kv_u64(struct jw *w, const char *key, uint64_t v);
void jw_kv_id(struct jw *w, const char *key, uint64_t id);
void jw_kv_cstr(struct jw *w, const char *key, const char *s);
/* s of a fixed-size field: up to its first NUL, at most size bytes. */
void jw_kv_strn(struct jw *w, const char *key, const char *s, size_t size);
void jw_kv_double(struct jw *w, const char *key, double v);

void jw_event(struct jw *w, const struct core_event_view *e);
void jw_booking(struct jw *w, const struct core_booking_view *b);
void jw_series(struct jw *w, uint64_t id, const struct core_series_spec *s);
/* A catalogue read's object: an org {id, name, timezone,
 * cancel_cutoff_hours, hold_minutes, horizon_days}, a location or an
 * instructor {id, org_id, name}, a series as jw_series. */
void jw_cat(struct jw *w, const struct core_cat_view *v);
/* The seed-compatible routes' shapes: an event and a booking in camelCase
 * (eventId, customerId, startAt, ...; docs/http.md). */
void jw_event_camel(struct jw *w, const struct core_event_view *e);
void jw_booking_camel(struct jw *w, const struct core_booking_view *b);

/* ---- strict readers of request bodies (jansson) ----
 * Each returns 0, or -EINVAL with a message in err (naming the field). A
 * missing optional field leaves *out unchanged and returns 0; *present
 * (when not NULL) says whether it was there. */

struct jr {
	json_t *root;
	char err[HTTP_ERR_SIZE_MAX];
};

/* Parses body into an object (duplicates, invalid UTF-8, NUL, huge
 * numbers refused); 0 or -EINVAL. */
int jr_open(struct jr *r, const void *body, size_t size);
void jr_close(struct jr *r);
/* Every key of the object is one of allowed (NULL-terminated). */
int jr_only(struct jr *r, const char *const *allowed);
int jr_str(struct jr *r, const char *key, bool required, char *out,
	   size_t out_size, size_t *len);
int jr_uint(struct jr *r, const char *key, bool required, uint64_t max,
	    uint64_t *out, bool *present);
int jr_id(struct jr *r, const char *key, bool required, uint64_t *out,
	  bool *present);
/* An id of any form, as the seed's bodies carry them (a string or a
 * number): *out 0 when it is no id of ours (the caller answers 404);
 * -EINVAL for another type. */
int jr_ref(struct jr *r, const char *key, bool required, uint64_t *out,
	   bool *present);
int jr_date(struct jr *r, const char *key, bool required, struct core_date *out,
	    bool *present);
int jr_fail(struct jr *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A series body (POST /v1/series) into s: every field checked (fields.h
 * parsers, fld_series_check), unknown ones refused. */
int jr_series(struct jr *r, struct core_series_spec *s);

#endif
