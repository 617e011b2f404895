/*
 * record.c: the entry format: encoding and decoding of the records that
 * make up an entry (struct core_rec, entry.h), and the public decoder of
 * entries and snapshots that readers outside core/ use.
 *
 * Byte format (little-endian), documented in docs/core.md ("Records"):
 *     u8 type | u8 version | u16 body size | body
 * A record type's version is 1 but PAYMENT's, 2 since it carries the
 * provider's ids (its last two fields); version 1 PAYMENT records, without
 * them, still decode.
 * The body is `at` and then the fields of the type's table below, in its
 * order; strings as u8 length + bytes (no NUL). The decoder checks every
 * length against the buffer and every string against its field, and refuses
 * unknown types and versions: bytes from disk are validated, never trusted.
 */
#include "record.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define REC_VERSION 1
#define REC_VERSION_PAYMENT 2 /* ref and intent_id added */
#define REC_PAYMENT_V2_FIELDS 2
#define REC_HEADER_SIZE 4

/* The type numbers are the format's (entry.h's enum): pinned. */
_Static_assert(CORE_REC_ORG == 1, "rec type");
_Static_assert(CORE_REC_EVENT_CREATE == 7, "rec type");
_Static_assert(CORE_REC_BOOKING_NEW == 9, "rec type");
_Static_assert(CORE_REC_IDEM == 13, "rec type");
_Static_assert(CORE_REC_BOOKING_RESTORE == 14, "rec type");
_Static_assert(CORE_REC_ARCHIVE == 15, "rec type");
_Static_assert(CORE_REC_REMIND == 16, "rec type");
_Static_assert(CORE_REC_PAY_INTENT == 17, "rec type");
_Static_assert(CORE_REC_REFUND == 18, "rec type");
_Static_assert(CORE_REC_EVENT_EDIT == 19, "rec type");
_Static_assert(CORE_REC_SERIES_EDIT == 20, "rec type");
_Static_assert(CORE_REC_ORG_SETTINGS == 21, "rec type");
_Static_assert(CORE_REC_BOOKING_IMPORT == 23, "rec type");
_Static_assert(CORE_REC_LEGACY == 24, "rec type");
/* and so are the notification kinds */
_Static_assert(CORE_NOTIFY_REMINDER == 5, "notify kind");
_Static_assert(CORE_NOTIFY_PENDING_PAYMENT == 7, "notify kind");
_Static_assert(CORE_NOTIFY_INSTRUCTOR_SUBSTITUTED == 9, "notify kind");

/* ---- the body of each record type, as data ----
 *
 * One table of fields per body layout: how a field is written, where it
 * sits (its offset from the table's base) and its size there. rec_encode
 * and rec_decode walk the same tables, so writer and reader cannot drift
 * apart, and a new field is one line. */

enum field_kind {
	F_INT,	 /* little-endian integer of `size` bytes (1, 2, 4 or 8) */
	F_BOOL,	 /* u8: 0 or 1 written; read, any nonzero is true */
	F_STR,	 /* u8 length + bytes, no NUL; `size` is the field's, NUL in */
	F_DATE,	 /* struct core_date: u16 year, u8 month, u8 day */
	F_SKIPS, /* a series' skip list: u8 count, then that many F_DATE */
};

struct field {
	uint8_t kind;
	uint16_t offset, size;
};
_Static_assert(sizeof(struct core_rec) <= UINT16_MAX, "field offsets fit");

/* The tables below are laid out by hand, a record type per paragraph. */
/* clang-format off */
#define FIELD(kind, type, member)                                      \
	{ kind, (uint16_t)offsetof(type, member),                      \
	  (uint16_t)sizeof(((type *)0)->member) }
#define R_INT(m) FIELD(F_INT, struct core_rec, u.m)
#define R_STR(m) FIELD(F_STR, struct core_rec, u.m)
#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const struct field cat_fields[] = {
	R_INT(cat.id), R_INT(cat.org_id), R_STR(cat.name), R_STR(cat.timezone),
};
static const struct field customer_fields[] = {
	R_STR(customer.id), R_STR(customer.email), R_STR(customer.name),
};
#define SPEC(kind, m) FIELD(kind, struct core_rec, u.series.spec.m)
static const struct field series_fields[] = {
	R_INT(series.id),
	SPEC(F_INT, org_id), SPEC(F_INT, location_id),
	SPEC(F_INT, instructor_id), SPEC(F_STR, title),
	SPEC(F_INT, capacity), SPEC(F_INT, waitlist_capacity),
	SPEC(F_INT, price_cents), SPEC(F_STR, currency),
	SPEC(F_STR, timezone), SPEC(F_INT, weekday_mask),
	SPEC(F_INT, start_minute), SPEC(F_INT, duration_min),
	SPEC(F_DATE, first_date), SPEC(F_DATE, last_date),
	FIELD(F_SKIPS, struct core_rec, u.series.spec),
};
static const struct field series_edit_fields[] = {
	R_INT(series.id),
	SPEC(F_INT, org_id), SPEC(F_INT, location_id),
	SPEC(F_INT, instructor_id), SPEC(F_STR, title),
	SPEC(F_INT, capacity), SPEC(F_INT, waitlist_capacity),
	SPEC(F_INT, price_cents), SPEC(F_STR, currency),
	SPEC(F_STR, timezone), SPEC(F_INT, weekday_mask),
	SPEC(F_INT, start_minute), SPEC(F_INT, duration_min),
	SPEC(F_DATE, first_date), SPEC(F_DATE, last_date),
	FIELD(F_SKIPS, struct core_rec, u.series.spec),
	R_INT(series.first_event_id),
};
#undef SPEC
static const struct field generated_fields[] = {
	R_INT(generated.series_id),
	FIELD(F_DATE, struct core_rec, u.generated.through),
};
static const struct field event_fields[] = {
	R_INT(event.id), R_INT(event.series_id), R_INT(event.org_id),
	R_INT(event.location_id), R_INT(event.instructor_id),
	R_INT(event.start_at), R_INT(event.duration_min),
	R_INT(event.capacity), R_INT(event.waitlist_capacity),
	R_INT(event.price_cents), R_STR(event.currency),
};
static const struct field patch_fields[] = {
	R_INT(patch.event_id), R_INT(patch.instructor_id),
	R_INT(patch.capacity), R_INT(patch.status),
};
static const struct field edit_fields[] = {
	R_INT(edit.event_id), R_INT(edit.location_id),
	R_INT(edit.instructor_id), R_INT(edit.start_at),
	R_INT(edit.duration_min), R_INT(edit.capacity),
	R_INT(edit.waitlist_capacity), R_INT(edit.price_cents),
	R_STR(edit.currency), R_INT(edit.changed), R_STR(edit.title),
};
/* BOOKING_NEW and BOOKING_RESTORE; BOOKING_SET has no customer id. */
static const struct field booking_fields[] = {
	R_INT(booking.booking_id), R_INT(booking.status),
	R_INT(booking.hold_expires_at), R_STR(booking.customer_id),
};
/* BOOKING_IMPORT: a booking as it was in the imported data. */
static const struct field import_fields[] = {
	R_INT(booking.booking_id), R_INT(booking.status),
	R_STR(booking.customer_id), R_INT(booking.updated_at),
	R_INT(booking.joined_at), R_INT(booking.promoted_at),
};
static const struct field legacy_fields[] = {
	R_INT(legacy.kind), R_INT(legacy.bookd_id), R_STR(legacy.id),
	R_STR(legacy.detail),
};
static const struct field payment_fields[] = {
	R_INT(payment.booking_id), R_INT(payment.amount_cents),
	R_INT(payment.payment_ref), R_STR(payment.currency),
	FIELD(F_BOOL, struct core_rec, u.payment.succeeded),
	R_INT(payment.code),
	/* version 2 (REC_PAYMENT_V2_FIELDS) */
	R_STR(payment.ref), R_STR(payment.intent_id),
};
static const struct field intent_fields[] = {
	R_INT(intent.booking_id), R_STR(intent.intent_id),
};
static const struct field refund_fields[] = {
	R_INT(refund.booking_id), R_INT(refund.amount_cents),
	R_STR(refund.currency), R_STR(refund.intent_id), R_STR(refund.ref),
	R_INT(refund.reason), R_INT(refund.state),
};
static const struct field notify_fields[] = {
	R_INT(notify.booking_id), R_INT(notify.kind),
};
/* IDEM: then the answer's views (idem_views). */
static const struct field idem_fields[] = {
	R_INT(idem.hi), R_INT(idem.lo), R_INT(idem.fingerprint),
	R_INT(idem.result.op), R_INT(idem.result.code),
	R_INT(idem.result.has_promoted), R_INT(idem.result.count),
	R_INT(idem.result.id),
};
static const struct field archive_fields[] = {
	R_INT(archive.before),
};
static const struct field remind_fields[] = {
	R_INT(remind.event_id), R_INT(remind.hours), R_INT(remind.next_seq),
};
static const struct field org_settings_fields[] = {
	R_INT(org_settings.org_id), R_INT(org_settings.s.cancel_cutoff_hours),
	R_INT(org_settings.s.hold_minutes), R_INT(org_settings.s.horizon_days),
};
#undef R_INT
#undef R_STR

#define BV(kind, m) FIELD(kind, struct core_booking_view, m)
static const struct field booking_view_fields[] = {
	BV(F_INT, id), BV(F_INT, event_id), BV(F_STR, customer_id),
	BV(F_INT, status), BV(F_INT, position), BV(F_INT, hold_expires_at),
	BV(F_INT, created_at),
};
#undef BV
#define SR(m) FIELD(F_INT, struct core_idem_result, series.m)
static const struct field series_result_fields[] = {
	SR(regenerated), SR(kept), SR(cancelled),
};
#undef SR
#define EV(kind, m) FIELD(kind, struct core_event_view, m)
static const struct field event_view_fields[] = {
	EV(F_INT, id), EV(F_INT, series_id), EV(F_INT, org_id),
	EV(F_INT, location_id), EV(F_INT, instructor_id), EV(F_STR, title),
	EV(F_INT, start_at), EV(F_INT, duration_min), EV(F_INT, capacity),
	EV(F_INT, booked), EV(F_INT, held), EV(F_INT, waitlist_length),
	EV(F_INT, waitlist_capacity), EV(F_INT, price_cents),
	EV(F_STR, currency), EV(F_INT, status), EV(F_INT, version),
};
#undef EV

struct layout {
	const struct field *fields;
	uint8_t count;
};
#define LAYOUT(a) { a, COUNT_OF(a) }
static const struct layout layouts[CORE_REC_TYPE_COUNT] = {
	[CORE_REC_ORG] = LAYOUT(cat_fields),
	[CORE_REC_LOCATION] = LAYOUT(cat_fields),
	[CORE_REC_INSTRUCTOR] = LAYOUT(cat_fields),
	[CORE_REC_CUSTOMER] = LAYOUT(customer_fields),
	[CORE_REC_SERIES] = LAYOUT(series_fields),
	[CORE_REC_SERIES_GENERATED] = LAYOUT(generated_fields),
	[CORE_REC_EVENT_CREATE] = LAYOUT(event_fields),
	[CORE_REC_EVENT_PATCH] = LAYOUT(patch_fields),
	[CORE_REC_BOOKING_NEW] = LAYOUT(booking_fields),
	/* the same less its last field, the customer id */
	[CORE_REC_BOOKING_SET] = { booking_fields,
				   COUNT_OF(booking_fields) - 1 },
	[CORE_REC_PAYMENT] = LAYOUT(payment_fields),
	[CORE_REC_NOTIFY] = LAYOUT(notify_fields),
	[CORE_REC_IDEM] = LAYOUT(idem_fields),
	[CORE_REC_BOOKING_RESTORE] = LAYOUT(booking_fields),
	[CORE_REC_ARCHIVE] = LAYOUT(archive_fields),
	[CORE_REC_REMIND] = LAYOUT(remind_fields),
	[CORE_REC_PAY_INTENT] = LAYOUT(intent_fields),
	[CORE_REC_REFUND] = LAYOUT(refund_fields),
	[CORE_REC_EVENT_EDIT] = LAYOUT(edit_fields),
	[CORE_REC_SERIES_EDIT] = LAYOUT(series_edit_fields),
	[CORE_REC_ORG_SETTINGS] = LAYOUT(org_settings_fields),
	[CORE_REC_BOOKING_IMPORT] = LAYOUT(import_fields),
	[CORE_REC_LEGACY] = LAYOUT(legacy_fields),
};
/* clang-format on */

/* A PAYMENT record of version 1: without the provider's ids. */
static const struct layout payment_v1 = {
	payment_fields, COUNT_OF(payment_fields) - REC_PAYMENT_V2_FIELDS
};

static uint8_t rec_version(uint8_t type)
{
	return type == CORE_REC_PAYMENT ? REC_VERSION_PAYMENT : REC_VERSION;
}

static const struct layout booking_view = LAYOUT(booking_view_fields);
static const struct layout event_view = LAYOUT(event_view_fields);
static const struct layout series_result = LAYOUT(series_result_fields);
#undef LAYOUT

/* The views that end an IDEM record's body (its answer): an event view for
 * EVENT_PATCH, else the booking and, if one was promoted, that one. Their
 * offsets in struct core_idem_result go to offsets[]; returns how many. */
static unsigned idem_views(const struct core_idem_result *res,
			   size_t offsets[2], const struct layout **layout)
{
	if (res->op == CORE_OP_EVENT_PATCH) {
		*layout = &event_view;
		offsets[0] = offsetof(struct core_idem_result, event);
		return 1;
	}
	if (res->op == CORE_OP_SERIES_PATCH) { /* its counts, from the base */
		*layout = &series_result;
		offsets[0] = 0;
		return 1;
	}
	*layout = &booking_view;
	offsets[0] = offsetof(struct core_idem_result, booking);
	offsets[1] = offsetof(struct core_idem_result, promoted);
	return res->has_promoted ? 2 : 1;
}

/* The flag a record may end with: a booking's `late` (BOOKING_SET and
 * BOOKING_RESTORE; an IDEM's answer, its booking's), one byte after every
 * other field, written only when true, so records without it keep the
 * bytes they always had. NULL for the other types. */
static bool *late_flag(struct core_rec *r)
{
	switch (r->type) {
	case CORE_REC_BOOKING_SET:
	case CORE_REC_BOOKING_RESTORE: return &r->u.booking.late;
	case CORE_REC_IDEM:
		return r->u.idem.result.op == CORE_OP_EVENT_PATCH
			       ? NULL
			       : &r->u.idem.result.booking.late;
	default: return NULL;
	}
}

/* ---- writing ---- */

/* Integers are little-endian on disk; the hosts we build for are too. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian host");

/* The most bytes one record can take: its header, then no more than the
 * struct's own bytes (a field is written in at most its size in memory: an
 * integer as itself, a bool as a byte, a string of a field of `size` bytes
 * as a length byte and at most size - 1 bytes, a date in its 4, an IDEM's
 * views within its result), plus the skip list's count byte. */
#define REC_SIZE_BOUND (REC_HEADER_SIZE + sizeof(struct core_rec) + 1)

/* Writers take a cursor with room for REC_SIZE_BOUND bytes and return it
 * advanced: no check per field. */
static uint8_t *put_date(uint8_t *o, const struct core_date *d)
{
	uint16_t year = (uint16_t)d->year;

	memcpy(o, &year, 2);
	o[2] = (uint8_t)d->month;
	o[3] = (uint8_t)d->day;
	return o + 4;
}

/* An integer field's bytes (little-endian host), with constant sizes: a
 * store each, not a memcpy call. */
static inline void copy_int(void *dst, const void *src, size_t size)
{
	switch (size) {
	case 1: memcpy(dst, src, 1); break;
	case 2: memcpy(dst, src, 2); break;
	case 4: memcpy(dst, src, 4); break;
	case 8: memcpy(dst, src, 8); break;
	default: ASSERT(!"integer field size");
	}
}

static uint8_t *put_fields(uint8_t *o, const void *base, const struct layout *l)
{
	for (unsigned i = 0; i < l->count; i++) {
		const struct field *f = &l->fields[i];
		const void *p = (const uint8_t *)base + f->offset;
		const struct core_series_spec *s = p;
		size_t n;

		switch (f->kind) {
		case F_INT:
			copy_int(o, p, f->size);
			o += f->size;
			break;
		case F_BOOL: *o++ = *(const bool *)p; break;
		case F_STR:
			n = strnlen(p, f->size - 1u);
			ASSERT(n <= UINT8_MAX);
			*o++ = (uint8_t)n;
			memcpy(o, p, n);
			o += n;
			break;
		case F_DATE: o = put_date(o, p); break;
		case F_SKIPS:
			ASSERT(s->skip_count <= CORE_SKIP_DATE_COUNT_MAX);
			*o++ = (uint8_t)s->skip_count;
			for (uint32_t k = 0; k < s->skip_count; k++)
				o = put_date(o, &s->skip[k]);
			break;
		default: ASSERT(!"unknown field kind");
		}
	}
	return o;
}

/* Appends r whole, or sets w->overflow and appends nothing. Written in
 * place when the buffer has room for any record, else through a scratch
 * copy of the bound's size: one writer either way. */
void rec_encode(struct wbuf *w, const struct core_rec *r)
{
	uint8_t scratch[REC_SIZE_BOUND];
	bool direct = w->capacity - w->size >= REC_SIZE_BOUND;
	uint8_t *start = direct ? w->data + w->size : scratch, *o = start;
	size_t size, body;

	ASSERT(w->size <= w->capacity);
	ASSERT(r->type > 0 && r->type < CORE_REC_TYPE_COUNT);
	ASSERT(layouts[r->type].count > 0);
	o[0] = r->type;
	o[1] = rec_version(r->type);
	o += REC_HEADER_SIZE; /* body size: below */
	memcpy(o, &r->at, 8);
	o = put_fields(o + 8, r, &layouts[r->type]);
	if (r->type == CORE_REC_IDEM) {
		const struct core_idem_result *res = &r->u.idem.result;
		const struct layout *l;
		size_t off[2];
		unsigned n = idem_views(res, off, &l);

		for (unsigned k = 0; k < n; k++)
			o = put_fields(o, (const uint8_t *)res + off[k], l);
	}
	const bool *late = late_flag((struct core_rec *)r);
	if (late && *late)
		*o++ = 1;
	size = (size_t)(o - start);
	ASSERT(size <= REC_SIZE_BOUND);
	body = size - REC_HEADER_SIZE;
	ASSERT(body <= UINT16_MAX);
	start[2] = (uint8_t)body;
	start[3] = (uint8_t)(body >> 8);
	if (direct) {
		w->size += size;
	} else if (w->size + size > w->capacity) {
		w->overflow = true;
	} else {
		memcpy(w->data + w->size, scratch, size);
		w->size += size;
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

#define GET(name, type)                                                        \
	static inline type name(struct rbuf *r)                                \
	{                                                                      \
		const uint8_t *p = take(r, sizeof(type));                      \
		type v = 0;                                                    \
		if (p)                                                         \
			memcpy(&v, p, sizeof(type)); /* little-endian host */  \
		return v;                                                      \
	}
GET(get_u8, uint8_t)
GET(get_u16, uint16_t)
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

static void get_fields(struct rbuf *r, void *base, const struct layout *l)
{
	for (unsigned i = 0; i < l->count; i++) {
		const struct field *f = &l->fields[i];
		void *p = (uint8_t *)base + f->offset;
		const uint8_t *in;
		struct core_series_spec *s = p;

		switch (f->kind) {
		case F_INT: /* little-endian host; constant sizes, as put */
			in = take(r, f->size);
			if (in)
				copy_int(p, in, f->size);
			break;
		case F_BOOL: *(bool *)p = get_u8(r) != 0; break;
		case F_STR: get_str(r, p, f->size); break;
		case F_DATE: *(struct core_date *)p = get_date(r); break;
		case F_SKIPS:
			s->skip_count = get_u8(r);
			if (s->skip_count > CORE_SKIP_DATE_COUNT_MAX) {
				r->bad = true;
				return;
			}
			for (uint32_t k = 0; k < s->skip_count; k++)
				s->skip[k] = get_date(r);
			break;
		default: ASSERT(!"unknown field kind");
		}
	}
}

int rec_decode(const uint8_t *buf, size_t size, size_t *pos,
	       struct core_rec *out)
{
	struct rbuf h = { .p = buf, .size = size, .pos = *pos };
	uint8_t type = get_u8(&h), version = get_u8(&h);
	uint16_t body = get_u16(&h);
	const uint8_t *b = take(&h, body);
	struct rbuf r = { .p = b, .size = body };

	/* a number without a layout (one not in use) is unknown too */
	if (!b || type == 0 || type >= CORE_REC_TYPE_COUNT ||
	    layouts[type].count == 0 ||
	    (version != REC_VERSION && version != rec_version(type)))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->type = type;
	out->at = (core_time)get_u64(&r);
	get_fields(&r, out,
		   type == CORE_REC_PAYMENT && version == REC_VERSION
			   ? &payment_v1
			   : &layouts[type]);
	if (type == CORE_REC_IDEM) {
		struct core_idem_result *res = &out->u.idem.result;
		const struct layout *l;
		size_t off[2];
		unsigned n = idem_views(res, off, &l);

		for (unsigned k = 0; k < n; k++)
			get_fields(&r, (uint8_t *)res + off[k], l);
	}
	bool *late = late_flag(out);
	if (late && !r.bad && r.pos < r.size) {
		if (get_u8(&r) != 1) /* written only as 1 */
			return -EINVAL;
		*late = true;
	}
	if (r.bad || r.pos != r.size)
		return -EINVAL;
	ASSERT(h.pos > *pos);
	*pos = h.pos;
	return 0;
}

/* ---- the public decoder (entry.h) ----
 *
 * Readers outside core/ walk entries and snapshots through these; they
 * decode with rec_decode, so the entry format has one decoder. */

int core_entry_next(const void *entry, size_t size, size_t *pos,
		    struct core_rec *out)
{
	size_t p = *pos;

	if (p == size)
		return 0;
	if (p > size || size > CORE_ENTRY_SIZE_MAX)
		return -EINVAL;
	if (rec_decode(entry, size, &p, out) != 0)
		return -EINVAL;
	ASSERT(p > *pos);
	ASSERT(p <= size);
	*pos = p;
	return 1;
}

int core_entry_check(const void *entry, size_t size, uint32_t *count)
{
	struct core_rec r;
	size_t pos = 0;
	uint32_t n = 0;

	if (size > CORE_ENTRY_SIZE_MAX)
		return -EINVAL;
	while (pos < size) {
		if (rec_decode(entry, size, &pos, &r) != 0)
			return -EINVAL;
		n++;
	}
	if (count)
		*count = n;
	return 0;
}

uint64_t core_rec_event_id(const struct core_rec *r)
{
	switch (r->type) {
	case CORE_REC_EVENT_CREATE: return r->u.event.id;
	case CORE_REC_EVENT_PATCH: return r->u.patch.event_id;
	case CORE_REC_BOOKING_NEW:
	case CORE_REC_BOOKING_SET:
	case CORE_REC_BOOKING_RESTORE:
	case CORE_REC_BOOKING_IMPORT:
		return core_booking_event(r->u.booking.booking_id);
	case CORE_REC_PAYMENT:
		return core_booking_event(r->u.payment.booking_id);
	case CORE_REC_NOTIFY: return core_booking_event(r->u.notify.booking_id);
	case CORE_REC_PAY_INTENT:
		return core_booking_event(r->u.intent.booking_id);
	case CORE_REC_REFUND: return core_booking_event(r->u.refund.booking_id);
	case CORE_REC_REMIND: return r->u.remind.event_id;
	case CORE_REC_EVENT_EDIT: return r->u.edit.event_id;
	default: return 0;
	}
}

int core_snapshot_next(const void *snap, size_t size, size_t *pos,
		       const void **entry, size_t *entry_size)
{
	const uint8_t *p = snap;
	size_t at = *pos;
	uint64_t magic;
	uint32_t n;

	if (at == 0) {
		if (size < sizeof(magic))
			return -EINVAL;
		memcpy(&magic, p, sizeof(magic));
		if (magic != CORE_SNAP_MAGIC)
			return -EINVAL;
		at = sizeof(magic);
	}
	if (at == size) {
		*pos = at;
		return 0;
	}
	if (at > size || size - at < sizeof(n))
		return -EINVAL;
	memcpy(&n, p + at, sizeof(n));
	at += sizeof(n);
	if (n == 0 || n > CORE_ENTRY_SIZE_MAX || n > size - at)
		return -EINVAL;
	*entry = p + at;
	*entry_size = n;
	*pos = at + n;
	return 1;
}
