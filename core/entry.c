/*
 * entry.c: the public decoder of entries and snapshots (entry.h).
 *
 * A thin layer over record.c's rec_decode: the internal struct rec is copied
 * into the public struct core_rec, so that readers outside core/ never see
 * record.h and the entry format has one decoder. The type numbers are the
 * format's, pinned below.
 */
#include "entry.h"
#include "record.h"

#include <errno.h>
#include <string.h>

/* runtime.c writes snapshots as this magic, then (u32 size, entry)*. */
#define ENTRY_SNAP_MAGIC UINT64_C(0x31504e534b4f4f42) /* "BOOKSNP1" */

_Static_assert((int)CORE_REC_ORG == (int)REC_ORG, "rec type");
_Static_assert((int)CORE_REC_EVENT_CREATE == (int)REC_EVENT_CREATE, "rec type");
_Static_assert((int)CORE_REC_BOOKING_NEW == (int)REC_BOOKING_NEW, "rec type");
_Static_assert((int)CORE_REC_IDEM == (int)REC_IDEM, "rec type");
_Static_assert((int)CORE_REC_BOOKING_RESTORE == (int)REC_BOOKING_RESTORE,
	       "rec type");
_Static_assert((int)CORE_REC_TYPE_COUNT == (int)REC_TYPE_COUNT, "rec type");

static void copy_rec(const struct rec *in, struct core_rec *out)
{
	memset(out, 0, sizeof(*out));
	out->type = in->type;
	out->at = in->at;
	switch (in->type) {
	case REC_ORG:
	case REC_LOCATION:
	case REC_INSTRUCTOR:
		out->u.cat.id = in->u.cat.id;
		out->u.cat.org_id = in->u.cat.org_id;
		memcpy(out->u.cat.name, in->u.cat.name, sizeof(out->u.cat.name));
		memcpy(out->u.cat.timezone, in->u.cat.timezone,
		       sizeof(out->u.cat.timezone));
		break;
	case REC_CUSTOMER:
		memcpy(out->u.customer.id, in->u.customer.id,
		       sizeof(out->u.customer.id));
		memcpy(out->u.customer.email, in->u.customer.email,
		       sizeof(out->u.customer.email));
		memcpy(out->u.customer.name, in->u.customer.name,
		       sizeof(out->u.customer.name));
		break;
	case REC_SERIES:
		out->u.series.id = in->u.series.id;
		out->u.series.spec = in->u.series.spec;
		break;
	case REC_SERIES_GENERATED:
		out->u.generated.series_id = in->u.generated.series_id;
		out->u.generated.through = in->u.generated.through;
		break;
	case REC_EVENT_CREATE:
		out->u.event.id = in->u.event.id;
		out->u.event.series_id = in->u.event.series_id;
		out->u.event.org_id = in->u.event.org_id;
		out->u.event.location_id = in->u.event.location_id;
		out->u.event.instructor_id = in->u.event.instructor_id;
		out->u.event.start_at = in->u.event.start_at;
		out->u.event.duration_min = in->u.event.duration_min;
		out->u.event.capacity = in->u.event.capacity;
		out->u.event.waitlist_capacity = in->u.event.waitlist_capacity;
		out->u.event.price_cents = in->u.event.price_cents;
		memcpy(out->u.event.currency, in->u.event.currency,
		       sizeof(out->u.event.currency));
		break;
	case REC_EVENT_PATCH:
		out->u.patch.event_id = in->u.patch.event_id;
		out->u.patch.instructor_id = in->u.patch.instructor_id;
		out->u.patch.capacity = in->u.patch.capacity;
		out->u.patch.status = in->u.patch.status;
		break;
	case REC_BOOKING_NEW:
	case REC_BOOKING_SET:
	case REC_BOOKING_RESTORE:
		out->u.booking.booking_id = in->u.booking.booking_id;
		out->u.booking.status = in->u.booking.status;
		out->u.booking.hold_expires_at = in->u.booking.hold_expires_at;
		memcpy(out->u.booking.customer_id, in->u.booking.customer_id,
		       sizeof(out->u.booking.customer_id));
		break;
	case REC_PAYMENT:
		out->u.payment.booking_id = in->u.payment.booking_id;
		out->u.payment.amount_cents = in->u.payment.amount_cents;
		out->u.payment.payment_ref = in->u.payment.payment_ref;
		memcpy(out->u.payment.currency, in->u.payment.currency,
		       sizeof(out->u.payment.currency));
		out->u.payment.succeeded = in->u.payment.succeeded != 0;
		out->u.payment.code = in->u.payment.code;
		break;
	case REC_NOTIFY:
		out->u.notify.booking_id = in->u.notify.booking_id;
		out->u.notify.kind = in->u.notify.kind;
		break;
	case REC_IDEM:
		out->u.idem.hi = in->u.idem.hi;
		out->u.idem.lo = in->u.idem.lo;
		out->u.idem.fingerprint = in->u.idem.fingerprint;
		out->u.idem.op = in->u.idem.result.op;
		out->u.idem.code = in->u.idem.result.code;
		break;
	case REC_ARCHIVE:
		out->u.archive.before = in->u.archive.before;
		break;
	default:
		ASSERT(!"rec_decode passed an unknown type");
	}
}

int core_entry_next(const void *entry, size_t size, size_t *pos,
		    struct core_rec *out)
{
	struct rec r;
	size_t p = *pos;

	if (p == size)
		return 0;
	if (p > size || size > CORE_ENTRY_SIZE_MAX)
		return -EINVAL;
	if (rec_decode(entry, size, &p, &r) != 0)
		return -EINVAL;
	ASSERT(p > *pos);
	ASSERT(p <= size);
	copy_rec(&r, out);
	*pos = p;
	return 1;
}

int core_entry_check(const void *entry, size_t size, uint32_t *count)
{
	struct rec r;
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
	case CORE_REC_EVENT_CREATE:
		return r->u.event.id;
	case CORE_REC_EVENT_PATCH:
		return r->u.patch.event_id;
	case CORE_REC_BOOKING_NEW:
	case CORE_REC_BOOKING_SET:
	case CORE_REC_BOOKING_RESTORE:
		return core_booking_event(r->u.booking.booking_id);
	case CORE_REC_PAYMENT:
		return core_booking_event(r->u.payment.booking_id);
	case CORE_REC_NOTIFY:
		return core_booking_event(r->u.notify.booking_id);
	default:
		return 0;
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
		if (magic != ENTRY_SNAP_MAGIC)
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

const char *core_rec_type_name(uint8_t type)
{
	static const char *const names[CORE_REC_TYPE_COUNT] = {
		[CORE_REC_ORG] = "org",
		[CORE_REC_LOCATION] = "location",
		[CORE_REC_INSTRUCTOR] = "instructor",
		[CORE_REC_CUSTOMER] = "customer",
		[CORE_REC_SERIES] = "series",
		[CORE_REC_SERIES_GENERATED] = "series_generated",
		[CORE_REC_EVENT_CREATE] = "event_create",
		[CORE_REC_EVENT_PATCH] = "event_patch",
		[CORE_REC_BOOKING_NEW] = "booking_new",
		[CORE_REC_BOOKING_SET] = "booking_set",
		[CORE_REC_PAYMENT] = "payment",
		[CORE_REC_NOTIFY] = "notify",
		[CORE_REC_IDEM] = "idem",
		[CORE_REC_BOOKING_RESTORE] = "booking_restore",
		[CORE_REC_ARCHIVE] = "archive",
	};
	return type < CORE_REC_TYPE_COUNT && names[type] ? names[type]
							 : "unknown";
}

const char *core_notify_kind_name(uint8_t kind)
{
	switch (kind) {
	case CORE_NOTIFY_BOOKING_CONFIRMED:
		return "booking_confirmed";
	case CORE_NOTIFY_PROMOTED:
		return "promoted";
	case CORE_NOTIFY_CANCELLED:
		return "cancelled";
	case CORE_NOTIFY_EVENT_CANCELLED:
		return "event_cancelled";
	case CORE_NOTIFY_REMINDER:
		return "reminder";
	case CORE_NOTIFY_HOLD_EXPIRED:
		return "hold_expired";
	default:
		return "unknown";
	}
}
