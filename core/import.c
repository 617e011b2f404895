/*
 * import.c: the core's side of imports (import.h): old ids looked up in
 * the catalogue, the next ids, and an import entry checked whole before it
 * is logged. The check follows what applying asks of each record
 * (catalog_apply, apply.c's apply_event_create and apply_booking_new), so
 * that an entry that passes applies in every shard: cat_apply asserts it.
 */
#include "import.h"
#include "runtime.h"
#include "tz.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *core_legacy_kind_name(uint8_t kind)
{
	static const char *const names[CORE_LEGACY_KIND_COUNT] = {
		[CORE_LEGACY_ORG] = "org",
		[CORE_LEGACY_LOCATION] = "location",
		[CORE_LEGACY_INSTRUCTOR] = "instructor",
		[CORE_LEGACY_CUSTOMER] = "customer",
		[CORE_LEGACY_SERIES] = "series",
		[CORE_LEGACY_EVENT] = "event",
		[CORE_LEGACY_BOOKING] = "booking",
		[CORE_LEGACY_WAITLIST] = "waitlist",
	};
	return kind < CORE_LEGACY_KIND_COUNT && names[kind] ? names[kind]
							    : "unknown";
}

int core_legacy_get(core *c, uint8_t kind, const char *id, uint64_t *bookd_id)
{
	const struct cat_legacy *l;
	int rc;

	pthread_mutex_lock(&c->cat_lock);
	rc = catalog_legacy_find(c->cat, kind, id, &l);
	if (rc == 0)
		*bookd_id = l->bookd_id;
	pthread_mutex_unlock(&c->cat_lock);
	return rc;
}

static void next_ids(const struct catalog *cat, struct core_import_next *out)
{
	out->org = cat->org_count + 1u;
	out->location = cat->location_count + 1u;
	out->instructor = cat->instructor_count + 1u;
	out->series = cat->series_count + 1u;
	out->event = cat->next_event_id;
}

void core_import_next(core *c, struct core_import_next *out)
{
	pthread_mutex_lock(&c->cat_lock);
	next_ids(c->cat, out);
	pthread_mutex_unlock(&c->cat_lock);
}

size_t core_import_rec_size(const struct core_rec *r)
{
	static _Thread_local uint8_t scratch[CORE_IMPORT_ENTRY_MAX];
	struct wbuf w = { .data = scratch, .capacity = sizeof(scratch) };

	rec_encode(&w, r);
	ASSERT(!w.overflow); /* one record always fits */
	return w.size;
}

/* ---- the check ---- */

/* An event created by the entry, as its bookings fill it. */
struct imp_event {
	uint64_t id, instructor_id;
	uint32_t capacity, waitlist_capacity, seq, taken, waitlisted;
	bool cancelled;
};

/* Hashes seen in this entry (old ids; an event's active customers): open
 * addressing, 0 free; cleared per use. */
#define SEEN_SLOTS 8192 /* > 2 x the records an entry can hold */
struct seen {
	uint64_t slot[SEEN_SLOTS];
};

/* false when h was there already. */
static bool seen_add(struct seen *s, uint64_t h)
{
	uint32_t i = (uint32_t)h & (SEEN_SLOTS - 1);

	h |= 1; /* never 0 */
	while (s->slot[i]) {
		if (s->slot[i] == h)
			return false;
		i = (i + 1) & (SEEN_SLOTS - 1);
	}
	s->slot[i] = h;
	return true;
}

struct check {
	const struct catalog *cat;
	struct core_import_next next; /* as the entry's records take them */
	struct imp_event *ev;	      /* the entry's events */
	uint32_t ev_count;
	struct seen legacy, active; /* active: the last event's customers */
};

static bool named_ok(const char *s, size_t size)
{
	size_t n = strnlen(s, size);
	return n > 0 && n < size;
}

static bool status_importable(uint8_t s)
{
	return s == CORE_BOOKING_CONFIRMED || s == CORE_BOOKING_WAITLISTED ||
	       s == CORE_BOOKING_CANCELLED || s == CORE_BOOKING_EXPIRED ||
	       s == CORE_BOOKING_PAYMENT_FAILED ||
	       s == CORE_BOOKING_WAITLIST_EXPIRED;
}

static int check_booking(struct check *k, const struct core_rec *r)
{
	uint64_t eid = core_booking_event(r->u.booking.booking_id);
	struct imp_event *e = k->ev_count ? &k->ev[k->ev_count - 1] : NULL;
	uint8_t st = r->u.booking.status;
	bool active =
		st == CORE_BOOKING_CONFIRMED || st == CORE_BOOKING_WAITLISTED;

	/* the entry's last event, not cancelled yet, the next sequence */
	if (!e || e->id != eid || e->cancelled ||
	    (r->u.booking.booking_id & CORE_BOOKING_SEQ_MAX) != e->seq + 1 ||
	    !status_importable(st) ||
	    !core__customer_id_ok(r->u.booking.customer_id))
		return -EINVAL;
	if (active &&
	    !seen_add(&k->active, hash_bytes(r->u.booking.customer_id,
					     strlen(r->u.booking.customer_id))))
		return -EINVAL; /* twice active on the event */
	if (st == CORE_BOOKING_CONFIRMED && e->taken++ >= e->capacity)
		return -EINVAL;
	if (st == CORE_BOOKING_WAITLISTED &&
	    e->waitlisted++ >= e->waitlist_capacity)
		return -EINVAL;
	e->seq++;
	return 0;
}

static int check_event(struct check *k, const struct core_rec *r)
{
	const struct catalog *cat = k->cat;
	struct imp_event *e;

	if (r->u.event.id != k->next.event ||
	    r->u.event.id > CORE_EVENT_ID_MAX ||
	    r->u.event.series_id >= k->next.series || r->u.event.org_id == 0 ||
	    r->u.event.org_id > cat->org_count ||
	    r->u.event.location_id > cat->location_count ||
	    r->u.event.instructor_id > cat->instructor_count ||
	    r->u.event.start_at <= 0 || r->u.event.duration_min == 0 ||
	    r->u.event.duration_min > CORE_DURATION_MIN_MAX ||
	    r->u.event.capacity > CORE_CAPACITY_MAX ||
	    r->u.event.waitlist_capacity > CORE_CAPACITY_MAX ||
	    r->u.event.price_cents > CORE_PRICE_CENTS_MAX)
		return -EINVAL;
	k->next.event++;
	e = &k->ev[k->ev_count++];
	memset(e, 0, sizeof(*e));
	e->id = r->u.event.id;
	e->instructor_id = r->u.event.instructor_id;
	e->capacity = r->u.event.capacity;
	e->waitlist_capacity = r->u.event.waitlist_capacity;
	memset(&k->active, 0, sizeof(k->active));
	return 0;
}

static int check_rec(struct check *k, const struct core_rec *r)
{
	const struct catalog *cat = k->cat;
	struct imp_event *e;

	switch (r->type) {
	case CORE_REC_ORG:
		if (r->u.cat.id != k->next.org++ || r->u.cat.org_id != 0 ||
		    !named_ok(r->u.cat.name, sizeof(r->u.cat.name)))
			return -EINVAL;
		return 0;
	case CORE_REC_LOCATION:
	case CORE_REC_INSTRUCTOR: {
		uint64_t *next = r->type == CORE_REC_LOCATION
					 ? &k->next.location
					 : &k->next.instructor;
		if (r->u.cat.id != (*next)++ || r->u.cat.org_id == 0 ||
		    r->u.cat.org_id >= k->next.org ||
		    !named_ok(r->u.cat.name, sizeof(r->u.cat.name)))
			return -EINVAL;
		return 0;
	}
	case CORE_REC_CUSTOMER:
		return core__customer_id_ok(r->u.customer.id) ? 0 : -EINVAL;
	case CORE_REC_SERIES:
		/* its org, location and instructor in earlier entries */
		if (r->u.series.id != k->next.series++ ||
		    catalog_series_check(cat, &r->u.series.spec) != CORE_OK)
			return -EINVAL;
		return 0;
	case CORE_REC_SERIES_GENERATED: {
		struct core_date d = r->u.generated.through;
		if (r->u.generated.series_id == 0 ||
		    r->u.generated.series_id >= k->next.series ||
		    !tz_date_valid(d.year, d.month, d.day))
			return -EINVAL;
		return 0;
	}
	case CORE_REC_EVENT_CREATE: return check_event(k, r);
	case CORE_REC_EVENT_PATCH:
		e = k->ev_count ? &k->ev[k->ev_count - 1] : NULL;
		if (!e || e->id != r->u.patch.event_id || e->cancelled ||
		    r->u.patch.status != CORE_EVENT_CANCELLED ||
		    r->u.patch.capacity != e->capacity ||
		    r->u.patch.instructor_id != e->instructor_id)
			return -EINVAL;
		e->cancelled = true;
		return 0;
	case CORE_REC_BOOKING_IMPORT: return check_booking(k, r);
	case CORE_REC_LEGACY: {
		const struct cat_legacy *old;
		if (r->u.legacy.kind == 0 ||
		    r->u.legacy.kind >= CORE_LEGACY_KIND_COUNT ||
		    r->u.legacy.id[0] == '\0' ||
		    catalog_legacy_find(cat, r->u.legacy.kind, r->u.legacy.id,
					&old) != -ENOENT ||
		    !seen_add(&k->legacy, catalog_legacy_hash(r->u.legacy.kind,
							      r->u.legacy.id)))
			return -EINVAL;
		return 0;
	}
	default: return -EINVAL;
	}
}

int core_import_write(core_port *p, const struct core_rec *recs, uint32_t n,
		      uint64_t *lsn, uint32_t *bad)
{
	core *c = p->c;
	struct check *k;
	bool kinds[5] = { false };
	uint32_t customers = 0;
	struct wbuf w = { .data = p->entry, .capacity = CORE_ENTRY_SIZE_MAX };
	int rc = 0;

	*lsn = 0;
	*bad = 0;
	if (n == 0 || n > SEEN_SLOTS / 2)
		return n ? -E2BIG : -EINVAL;
	k = calloc(1, sizeof(*k));
	if (!k || !(k->ev = calloc(n, sizeof(*k->ev)))) {
		if (k)
			free(k);
		return -ENOMEM;
	}
	pthread_mutex_lock(&c->cat_lock);
	k->cat = c->cat;
	next_ids(c->cat, &k->next);
	/* The maker planned from core_import_next: the first new id of
	 * each kind in the entry must still be the next one. */
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		const struct core_rec *r = &recs[i];
		uint64_t want = 0, got = 0;
		int kind = -1;

		switch (r->type) {
		case CORE_REC_ORG:
			kind = 0, want = k->next.org, got = r->u.cat.id;
			break;
		case CORE_REC_LOCATION:
			kind = 1, want = k->next.location, got = r->u.cat.id;
			break;
		case CORE_REC_INSTRUCTOR:
			kind = 2, want = k->next.instructor, got = r->u.cat.id;
			break;
		case CORE_REC_SERIES:
			kind = 3, want = k->next.series, got = r->u.series.id;
			break;
		case CORE_REC_EVENT_CREATE:
			kind = 4, want = k->next.event, got = r->u.event.id;
			break;
		case CORE_REC_CUSTOMER: customers++; break;
		}
		if (kind >= 0 && !kinds[kind] && want != got)
			rc = -ESTALE; /* taken since the maker asked */
		else if ((rc = check_rec(k, r)) != 0)
			*bad = i;
		if (kind >= 0)
			kinds[kind] = true;
		if (rc == 0)
			rec_encode(&w, r);
		if (w.overflow)
			rc = -E2BIG;
	}
	/* Room in the catalogue, so that applying cannot fail. */
	if (rc == 0 &&
	    (k->next.org - 1 > c->cat->count_max ||
	     k->next.location - 1 > c->cat->count_max ||
	     k->next.instructor - 1 > c->cat->count_max ||
	     k->next.series - 1 > c->cat->count_max ||
	     (uint64_t)c->cat->customer_count + customers > c->cat->count_max))
		rc = -ENOSPC;
	if (rc == 0)
		rc = catalog_legacy_reserve(c->cat, n);
	if (rc == 0)
		rc = core__cat_write(p, w.data, w.size, lsn);
	pthread_mutex_unlock(&c->cat_lock);
	free(k->ev);
	free(k);
	return rc;
}
