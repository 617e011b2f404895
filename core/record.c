/*
 * record.c: encoding and decoding of the records that make up an entry.
 *
 * Byte format (little-endian), documented in docs/core.md ("Records"):
 *     u8 type | u8 version | u16 body size | body
 * The body's fields are written in the order of struct rec's members for
 * that type; strings as u8 length + bytes (no NUL). The decoder checks every
 * length against the buffer and every string against its field, and refuses
 * unknown types and versions: bytes from disk are validated, never trusted.
 */
#include "record.h"

#include <errno.h>
#include <string.h>

#define REC_VERSION 1
#define REC_HEADER_SIZE 4

/* ---- writing ---- */

static inline void put(struct wbuf *w, const void *p, size_t n)
{
	if (w->size + n > w->capacity) {
		w->overflow = true;
		return;
	}
	memcpy(w->data + w->size, p, n);
	w->size += n;
}

/* Integers are little-endian on disk; the hosts we build for are too. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian host");

static void put_u8(struct wbuf *w, uint8_t v) { put(w, &v, 1); }
static void put_u16(struct wbuf *w, uint16_t v) { put(w, &v, 2); }
static void put_u32(struct wbuf *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(struct wbuf *w, uint64_t v) { put(w, &v, 8); }

static void put_str(struct wbuf *w, const char *s, size_t field_size)
{
	size_t n = strnlen(s, field_size - 1);
	ASSERT(n <= UINT8_MAX);
	put_u8(w, (uint8_t)n);
	put(w, s, n);
}

static void put_date(struct wbuf *w, struct core_date d)
{
	put_u16(w, (uint16_t)d.year);
	put_u8(w, (uint8_t)d.month);
	put_u8(w, (uint8_t)d.day);
}

static void put_view(struct wbuf *w, const struct core_booking_view *v)
{
	put_u64(w, v->id);
	put_u64(w, v->event_id);
	put_str(w, v->customer_id, sizeof(v->customer_id));
	put_u8(w, v->status);
	put_u32(w, v->position);
	put_u64(w, (uint64_t)v->hold_expires_at);
	put_u64(w, (uint64_t)v->created_at);
}

static void put_event_view(struct wbuf *w, const struct core_event_view *v)
{
	put_u64(w, v->id);
	put_u64(w, v->series_id);
	put_u64(w, v->org_id);
	put_u64(w, v->location_id);
	put_u64(w, v->instructor_id);
	put_str(w, v->title, sizeof(v->title));
	put_u64(w, (uint64_t)v->start_at);
	put_u32(w, v->duration_min);
	put_u32(w, v->capacity);
	put_u32(w, v->booked);
	put_u32(w, v->held);
	put_u32(w, v->waitlist_length);
	put_u32(w, v->waitlist_capacity);
	put_u32(w, v->price_cents);
	put_str(w, v->currency, sizeof(v->currency));
	put_u8(w, v->status);
	put_u64(w, v->version);
}

static void put_spec(struct wbuf *w, const struct core_series_spec *s)
{
	put_u64(w, s->org_id);
	put_u64(w, s->location_id);
	put_u64(w, s->instructor_id);
	put_str(w, s->title, sizeof(s->title));
	put_u32(w, s->capacity);
	put_u32(w, s->waitlist_capacity);
	put_u32(w, s->price_cents);
	put_str(w, s->currency, sizeof(s->currency));
	put_str(w, s->timezone, sizeof(s->timezone));
	put_u8(w, s->weekday_mask);
	put_u16(w, s->start_minute);
	put_u32(w, s->duration_min);
	put_date(w, s->first_date);
	put_date(w, s->last_date);
	put_u8(w, (uint8_t)s->skip_count);
	for (uint32_t i = 0; i < s->skip_count; i++)
		put_date(w, s->skip[i]);
}

void rec_encode(struct wbuf *w, const struct rec *r)
{
	size_t start = w->size;

	put_u8(w, r->type);
	put_u8(w, REC_VERSION);
	put_u16(w, 0); /* body size, patched below */
	put_u64(w, (uint64_t)r->at);
	switch (r->type) {
	case REC_ORG:
	case REC_LOCATION:
	case REC_INSTRUCTOR:
		put_u64(w, r->u.cat.id);
		put_u64(w, r->u.cat.org_id);
		put_str(w, r->u.cat.name, sizeof(r->u.cat.name));
		put_str(w, r->u.cat.timezone, sizeof(r->u.cat.timezone));
		break;
	case REC_CUSTOMER:
		put_str(w, r->u.customer.id, sizeof(r->u.customer.id));
		put_str(w, r->u.customer.email, sizeof(r->u.customer.email));
		put_str(w, r->u.customer.name, sizeof(r->u.customer.name));
		break;
	case REC_SERIES:
		put_u64(w, r->u.series.id);
		put_spec(w, &r->u.series.spec);
		break;
	case REC_SERIES_GENERATED:
		put_u64(w, r->u.generated.series_id);
		put_date(w, r->u.generated.through);
		break;
	case REC_EVENT_CREATE:
		put_u64(w, r->u.event.id);
		put_u64(w, r->u.event.series_id);
		put_u64(w, r->u.event.org_id);
		put_u64(w, r->u.event.location_id);
		put_u64(w, r->u.event.instructor_id);
		put_u64(w, (uint64_t)r->u.event.start_at);
		put_u32(w, r->u.event.duration_min);
		put_u32(w, r->u.event.capacity);
		put_u32(w, r->u.event.waitlist_capacity);
		put_u32(w, r->u.event.price_cents);
		put_str(w, r->u.event.currency, sizeof(r->u.event.currency));
		break;
	case REC_EVENT_PATCH:
		put_u64(w, r->u.patch.event_id);
		put_u64(w, r->u.patch.instructor_id);
		put_u32(w, r->u.patch.capacity);
		put_u8(w, r->u.patch.status);
		break;
	case REC_BOOKING_NEW:
	case REC_BOOKING_SET:
	case REC_BOOKING_RESTORE:
		put_u64(w, r->u.booking.booking_id);
		put_u8(w, r->u.booking.status);
		put_u64(w, (uint64_t)r->u.booking.hold_expires_at);
		if (r->type != REC_BOOKING_SET)
			put_str(w, r->u.booking.customer_id,
				sizeof(r->u.booking.customer_id));
		break;
	case REC_PAYMENT:
		put_u64(w, r->u.payment.booking_id);
		put_u64(w, r->u.payment.amount_cents);
		put_u64(w, r->u.payment.payment_ref);
		put_str(w, r->u.payment.currency, sizeof(r->u.payment.currency));
		put_u8(w, r->u.payment.succeeded);
		put_u8(w, r->u.payment.code);
		break;
	case REC_NOTIFY:
		put_u64(w, r->u.notify.booking_id);
		put_u8(w, r->u.notify.kind);
		break;
	case REC_IDEM:
		put_u64(w, r->u.idem.hi);
		put_u64(w, r->u.idem.lo);
		put_u64(w, r->u.idem.fingerprint);
		put_u8(w, r->u.idem.result.op);
		put_u8(w, r->u.idem.result.code);
		put_u8(w, r->u.idem.result.has_promoted);
		put_u32(w, r->u.idem.result.count);
		put_u64(w, r->u.idem.result.id);
		if (r->u.idem.result.op == CORE_OP_EVENT_PATCH) {
			put_event_view(w, &r->u.idem.result.event);
			break;
		}
		put_view(w, &r->u.idem.result.booking);
		if (r->u.idem.result.has_promoted)
			put_view(w, &r->u.idem.result.promoted);
		break;
	case REC_ARCHIVE:
		put_u64(w, (uint64_t)r->u.archive.before);
		break;
	default:
		ASSERT(!"unknown record type");
	}
	if (!w->overflow) {
		size_t body = w->size - start - REC_HEADER_SIZE;
		ASSERT(body <= UINT16_MAX);
		w->data[start + 2] = (uint8_t)body;
		w->data[start + 3] = (uint8_t)(body >> 8);
	}
}

/* ---- reading ---- */

struct rbuf {
	const uint8_t *p;
	size_t size, pos;
	bool bad;
};

static inline const uint8_t *take(struct rbuf *r, size_t n)
{
	if (r->bad || r->size - r->pos < n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->pos;
	r->pos += n;
	return p;
}

#define GET(name, type)                                                       \
	static inline type name(struct rbuf *r)                               \
	{                                                                     \
		const uint8_t *p = take(r, sizeof(type));                     \
		type v = 0;                                                   \
		if (p)                                                        \
			memcpy(&v, p, sizeof(type)); /* little-endian host */ \
		return v;                                                     \
	}
GET(get_u8, uint8_t)
GET(get_u16, uint16_t)
GET(get_u32, uint32_t)
GET(get_u64, uint64_t)
#undef GET

static void get_str(struct rbuf *r, char *out, size_t field_size)
{
	uint8_t n = get_u8(r);
	const uint8_t *p;

	out[0] = '\0';
	if (n >= field_size) {
		r->bad = true;
		return;
	}
	p = take(r, n);
	if (!p)
		return;
	if (memchr(p, '\0', n)) {
		r->bad = true;
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

static struct core_date get_date(struct rbuf *r)
{
	struct core_date d;
	d.year = (int16_t)get_u16(r);
	d.month = (int8_t)get_u8(r);
	d.day = (int8_t)get_u8(r);
	return d;
}

static void get_view(struct rbuf *r, struct core_booking_view *v)
{
	v->id = get_u64(r);
	v->event_id = get_u64(r);
	get_str(r, v->customer_id, sizeof(v->customer_id));
	v->status = get_u8(r);
	v->position = get_u32(r);
	v->hold_expires_at = (core_time)get_u64(r);
	v->created_at = (core_time)get_u64(r);
}

static void get_event_view(struct rbuf *r, struct core_event_view *v)
{
	v->id = get_u64(r);
	v->series_id = get_u64(r);
	v->org_id = get_u64(r);
	v->location_id = get_u64(r);
	v->instructor_id = get_u64(r);
	get_str(r, v->title, sizeof(v->title));
	v->start_at = (core_time)get_u64(r);
	v->duration_min = get_u32(r);
	v->capacity = get_u32(r);
	v->booked = get_u32(r);
	v->held = get_u32(r);
	v->waitlist_length = get_u32(r);
	v->waitlist_capacity = get_u32(r);
	v->price_cents = get_u32(r);
	get_str(r, v->currency, sizeof(v->currency));
	v->status = get_u8(r);
	v->version = get_u64(r);
}

static void get_spec(struct rbuf *r, struct core_series_spec *s)
{
	s->org_id = get_u64(r);
	s->location_id = get_u64(r);
	s->instructor_id = get_u64(r);
	get_str(r, s->title, sizeof(s->title));
	s->capacity = get_u32(r);
	s->waitlist_capacity = get_u32(r);
	s->price_cents = get_u32(r);
	get_str(r, s->currency, sizeof(s->currency));
	get_str(r, s->timezone, sizeof(s->timezone));
	s->weekday_mask = get_u8(r);
	s->start_minute = get_u16(r);
	s->duration_min = get_u32(r);
	s->first_date = get_date(r);
	s->last_date = get_date(r);
	s->skip_count = get_u8(r);
	if (s->skip_count > CORE_SKIP_DATE_COUNT_MAX) {
		r->bad = true;
		return;
	}
	for (uint32_t i = 0; i < s->skip_count; i++)
		s->skip[i] = get_date(r);
}

int rec_decode(const uint8_t *buf, size_t size, size_t *pos, struct rec *out)
{
	struct rbuf h = { .p = buf, .size = size, .pos = *pos };
	uint8_t type = get_u8(&h), version = get_u8(&h);
	uint16_t body = get_u16(&h);
	const uint8_t *b = take(&h, body);
	struct rbuf r = { .p = b, .size = body };

	if (!b || version != REC_VERSION || type == 0 || type >= REC_TYPE_COUNT)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->type = type;
	out->at = (core_time)get_u64(&r);
	switch (type) {
	case REC_ORG:
	case REC_LOCATION:
	case REC_INSTRUCTOR:
		out->u.cat.id = get_u64(&r);
		out->u.cat.org_id = get_u64(&r);
		get_str(&r, out->u.cat.name, sizeof(out->u.cat.name));
		get_str(&r, out->u.cat.timezone, sizeof(out->u.cat.timezone));
		break;
	case REC_CUSTOMER:
		get_str(&r, out->u.customer.id, sizeof(out->u.customer.id));
		get_str(&r, out->u.customer.email, sizeof(out->u.customer.email));
		get_str(&r, out->u.customer.name, sizeof(out->u.customer.name));
		break;
	case REC_SERIES:
		out->u.series.id = get_u64(&r);
		get_spec(&r, &out->u.series.spec);
		break;
	case REC_SERIES_GENERATED:
		out->u.generated.series_id = get_u64(&r);
		out->u.generated.through = get_date(&r);
		break;
	case REC_EVENT_CREATE:
		out->u.event.id = get_u64(&r);
		out->u.event.series_id = get_u64(&r);
		out->u.event.org_id = get_u64(&r);
		out->u.event.location_id = get_u64(&r);
		out->u.event.instructor_id = get_u64(&r);
		out->u.event.start_at = (core_time)get_u64(&r);
		out->u.event.duration_min = get_u32(&r);
		out->u.event.capacity = get_u32(&r);
		out->u.event.waitlist_capacity = get_u32(&r);
		out->u.event.price_cents = get_u32(&r);
		get_str(&r, out->u.event.currency, sizeof(out->u.event.currency));
		break;
	case REC_EVENT_PATCH:
		out->u.patch.event_id = get_u64(&r);
		out->u.patch.instructor_id = get_u64(&r);
		out->u.patch.capacity = get_u32(&r);
		out->u.patch.status = get_u8(&r);
		break;
	case REC_BOOKING_NEW:
	case REC_BOOKING_SET:
	case REC_BOOKING_RESTORE:
		out->u.booking.booking_id = get_u64(&r);
		out->u.booking.status = get_u8(&r);
		out->u.booking.hold_expires_at = (core_time)get_u64(&r);
		if (type != REC_BOOKING_SET)
			get_str(&r, out->u.booking.customer_id,
				sizeof(out->u.booking.customer_id));
		break;
	case REC_PAYMENT:
		out->u.payment.booking_id = get_u64(&r);
		out->u.payment.amount_cents = get_u64(&r);
		out->u.payment.payment_ref = get_u64(&r);
		get_str(&r, out->u.payment.currency, sizeof(out->u.payment.currency));
		out->u.payment.succeeded = get_u8(&r);
		out->u.payment.code = get_u8(&r);
		break;
	case REC_NOTIFY:
		out->u.notify.booking_id = get_u64(&r);
		out->u.notify.kind = get_u8(&r);
		break;
	case REC_IDEM:
		out->u.idem.hi = get_u64(&r);
		out->u.idem.lo = get_u64(&r);
		out->u.idem.fingerprint = get_u64(&r);
		out->u.idem.result.op = get_u8(&r);
		out->u.idem.result.code = get_u8(&r);
		out->u.idem.result.has_promoted = get_u8(&r);
		out->u.idem.result.count = get_u32(&r);
		out->u.idem.result.id = get_u64(&r);
		if (out->u.idem.result.op == CORE_OP_EVENT_PATCH) {
			get_event_view(&r, &out->u.idem.result.event);
			break;
		}
		get_view(&r, &out->u.idem.result.booking);
		if (out->u.idem.result.has_promoted)
			get_view(&r, &out->u.idem.result.promoted);
		break;
	case REC_ARCHIVE:
		out->u.archive.before = (core_time)get_u64(&r);
		break;
	}
	if (r.bad || r.pos != r.size)
		return -EINVAL;
	*pos = h.pos;
	return 0;
}

uint64_t rec_event_id(const struct rec *r)
{
	switch (r->type) {
	case REC_EVENT_CREATE:
		return r->u.event.id;
	case REC_EVENT_PATCH:
		return r->u.patch.event_id;
	case REC_BOOKING_NEW:
	case REC_BOOKING_SET:
	case REC_BOOKING_RESTORE:
		return core_booking_event(r->u.booking.booking_id);
	case REC_PAYMENT:
		return core_booking_event(r->u.payment.booking_id);
	case REC_NOTIFY:
		return core_booking_event(r->u.notify.booking_id);
	default:
		return 0;
	}
}
