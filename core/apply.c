/*
 * apply.c: how records change a shard's state (state.c has the design):
 * core_state_apply and the room an entry needs first (core__state_reserve),
 * the holds' min-heap, the day buckets that listings read, and archiving.
 * Applying is the only way the state changes, for live decisions and log
 * replay alike.
 */
#include "state.h"
#include "state_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- holds ---- */

static bool hold_less(const struct hold *a, const struct hold *b)
{
	return a->expires < b->expires ||
	       (a->expires == b->expires && a->booking_id < b->booking_id);
}

static void hold_push(core_state *st, uint32_t slot)
{
	const struct booking *b = &st->bookings[slot];
	uint32_t i = st->hold_count++;

	ASSERT(st->hold_count <= st->hold_cap); /* reserved: state_reserve */
	st->holds[i] = (struct hold){ b->hold_expires_at, b->id, slot };
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (!hold_less(&st->holds[i], &st->holds[parent]))
			break;
		struct hold t = st->holds[i];
		st->holds[i] = st->holds[parent];
		st->holds[parent] = t;
		i = parent;
	}
}

void state__hold_pop(core_state *st)
{
	uint32_t i = 0, n = --st->hold_count;

	st->holds[0] = st->holds[n];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && hold_less(&st->holds[l], &st->holds[m]))
			m = l;
		if (r < n && hold_less(&st->holds[r], &st->holds[m]))
			m = r;
		if (m == i)
			break;
		struct hold t = st->holds[i];
		st->holds[i] = st->holds[m];
		st->holds[m] = t;
		i = m;
	}
}

/* ---- waitlists watched for their class's start ---- */

static bool wl_less(const struct wl_watch *a, const struct wl_watch *b)
{
	return a->start < b->start ||
	       (a->start == b->start && a->event_id < b->event_id);
}

void state__wl_watch(core_state *st, const struct event *e)
{
	uint32_t i = st->wl_watch_count++;

	ASSERT(st->wl_watch_count <= st->wl_watch_cap); /* state_reserve */
	st->wl_watch[i] = (struct wl_watch){ e->start_at, e->id };
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;
		if (!wl_less(&st->wl_watch[i], &st->wl_watch[parent]))
			break;
		struct wl_watch t = st->wl_watch[i];
		st->wl_watch[i] = st->wl_watch[parent];
		st->wl_watch[parent] = t;
		i = parent;
	}
}

void state__wl_watch_pop(core_state *st)
{
	uint32_t i = 0, n = --st->wl_watch_count;

	st->wl_watch[0] = st->wl_watch[n];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < n && wl_less(&st->wl_watch[l], &st->wl_watch[m]))
			m = l;
		if (r < n && wl_less(&st->wl_watch[r], &st->wl_watch[m]))
			m = r;
		if (m == i)
			break;
		struct wl_watch t = st->wl_watch[i];
		st->wl_watch[i] = st->wl_watch[m];
		st->wl_watch[m] = t;
		i = m;
	}
}

/* ---- half-way reminders (apply_remind) ---- */

struct remind_part *state__remind_part(const core_state *st, uint64_t event_id)
{
	for (uint32_t i = 0; i < st->remind_part_count; i++)
		if (st->remind_parts[i].event_id == event_id)
			return (struct remind_part *)&st->remind_parts[i];
	return NULL;
}

static void remind_part_drop(core_state *st, struct remind_part *p)
{
	if (p)
		*p = st->remind_parts[--st->remind_part_count];
}

/* ---- applying ---- */

struct day_bucket *state__day_bucket(core_state *st, core_time start_at,
				     bool create)
{
	int64_t day = start_at >= 0 ? start_at / DAY_MS : -1;
	uint64_t key = (uint64_t)(day + 2);
	uint32_t slot = map_get(&st->day_by_key, key);

	if (slot || !create)
		return slot ? &st->days[slot] : NULL;
	if (st->day_count + 1 >= st->day_capacity) {
		uint32_t cap = st->day_capacity ? st->day_capacity * 2 : 256;
		struct day_bucket *d = realloc(st->days, cap * sizeof(*d));
		if (!d)
			return NULL;
		memset(d + st->day_capacity, 0,
		       (cap - st->day_capacity) * sizeof(*d));
		st->days = d;
		st->day_capacity = cap;
	}
	if (map_put(&st->day_by_key, key, st->day_count + 1) != 0)
		return NULL;
	slot = ++st->day_count;
	if (slot == 1 || day < st->day_min)
		st->day_min = day;
	if (slot == 1 || day > st->day_max)
		st->day_max = day;
	return &st->days[slot];
}

/* A slot for a new record: a freed one (the head of its free list, whose
 * link is *next_of_head), else the next never used. Room was reserved. */
static uint32_t slot_take(uint32_t *slots, uint32_t *free_head,
			  const uint32_t *next_of_head)
{
	uint32_t slot = *free_head;

	if (slot) {
		*free_head = *next_of_head;
		return slot;
	}
	return ++*slots;
}

/* ---- archiving ----
 *
 * CORE_REC_ARCHIVE (before): every shard drops its events that ended before
 * `before` (start + duration <= before), with their bookings (any status),
 * waitlists, the (event, customer) index, the customers left without a
 * booking, and the idempotency keys created before `before` (past their
 * 24 h retention whenever the archive is a day or more back). Payment
 * holds of dropped bookings go stale in the heap (dropped when seen).
 * Freed slots go to free lists (an id of 0 marks them) and are used again
 * first, so memory stays what the studio holds. Nothing is allocated: an
 * archive cannot fail halfway; replaying it gives the same state.
 * Dropped events read as unknown (CORE_NO_EVENT, CORE_NO_BOOKING). */

static void customer_drop_booking(core_state *st, uint32_t cust, uint32_t bslot)
{
	struct customer *c = &st->customers[cust];
	uint32_t *link = &c->bookings_head;

	while (*link && *link != bslot)
		link = &st->bookings[*link].customer_next;
	ASSERT(*link == bslot);
	*link = st->bookings[bslot].customer_next;
	if (c->bookings_head == 0) { /* nothing left of it here */
		ASSERT(map_del(&st->customer_by_hash,
			       hash_bytes(c->id, strlen(c->id))));
		memset(c, 0, sizeof(*c));
		c->bookings_head = st->customer_free;
		st->customer_free = cust;
		st->customer_count--;
	}
}

static void day_drop(core_state *st, const struct event *e, uint32_t slot)
{
	struct day_bucket *d = state__day_bucket(st, e->start_at, false);

	ASSERT(d);
	for (uint32_t i = 0; i < d->count; i++) {
		if (d->slots[i] != slot)
			continue;
		d->slots[i] = d->slots[--d->count];
		d->by_org = false;
		return;
	}
	ASSERT(!"event missing from its day");
}

/* ---- payment facts (struct pay) ---- */

/* The booking's pay slot, made when missing (room was reserved). */
static struct pay *pay_take(core_state *st, uint64_t booking_id)
{
	struct pay *p = pay_get(st, booking_id);
	uint32_t slot;

	if (p)
		return p;
	ASSERT(st->pay_slots < st->pay_cap || st->pay_free);
	slot = slot_take(&st->pay_slots, &st->pay_free,
			 &st->pays[st->pay_free].next_free);
	p = &st->pays[slot];
	memset(p, 0, sizeof(*p));
	p->booking_id = booking_id;
	ASSERT(map_put(&st->pay_by_booking, booking_id, slot) == 0);
	st->pay_count++;
	return p;
}

static void pay_drop(core_state *st, uint64_t booking_id)
{
	uint32_t slot = map_get(&st->pay_by_booking, booking_id);

	if (!slot)
		return;
	map_del(&st->pay_by_booking, booking_id);
	memset(&st->pays[slot], 0, sizeof(st->pays[slot]));
	st->pays[slot].next_free = st->pay_free;
	st->pay_free = slot;
	st->pay_count--;
}

/* PAY_INTENT, PAYMENT (applied, succeeded: the intent paid) and REFUND:
 * the booking's payment facts. */
static int apply_pay(core_state *st, const struct core_rec *r)
{
	struct pay *p;

	switch (r->type) {
	case CORE_REC_PAY_INTENT:
		if (!booking_get(st, r->u.intent.booking_id))
			return -EINVAL;
		if (r->u.intent.intent_id[0] == '\0')
			return 0; /* failed: the BOOKING_SET says what follows */
		p = pay_take(st, r->u.intent.booking_id);
		memcpy(p->intent_id, r->u.intent.intent_id,
		       sizeof(p->intent_id));
		return 0;
	case CORE_REC_PAYMENT:
		if (!booking_get(st, r->u.payment.booking_id))
			return -EINVAL;
		if (r->u.payment.code != CORE_OK || !r->u.payment.succeeded ||
		    r->u.payment.intent_id[0] == '\0')
			return 0;
		p = pay_take(st, r->u.payment.booking_id);
		memcpy(p->intent_id, r->u.payment.intent_id,
		       sizeof(p->intent_id));
		return 0;
	case CORE_REC_REFUND:
		if (!booking_get(st, r->u.refund.booking_id) ||
		    r->u.refund.state < CORE_REFUND_DUE ||
		    r->u.refund.state > CORE_REFUND_PENDING ||
		    r->u.refund.reason < CORE_REFUND_CANCEL ||
		    r->u.refund.reason > CORE_REFUND_EVENT_CANCELLED)
			return -EINVAL;
		p = pay_take(st, r->u.refund.booking_id);
		if (r->u.refund.intent_id[0] != '\0')
			memcpy(p->intent_id, r->u.refund.intent_id,
			       sizeof(p->intent_id));
		p->refund = r->u.refund.state;
		p->refund_reason = r->u.refund.reason;
		return 0;
	default: return -EINVAL;
	}
}

static uint32_t state_archive(core_state *st, core_time before)
{
	uint32_t dropped = 0;

	for (uint32_t slot = 1; slot <= st->event_slots; slot++) {
		struct event *e = &st->events[slot];

		if (e->id == 0 ||
		    e->start_at + (core_time)e->duration_min * 60000 > before)
			continue;
		for (uint32_t seq = 1; seq <= e->booking_seq; seq++) {
			uint64_t id = e->id << CORE_BOOKING_SEQ_BITS | seq;
			uint32_t bslot = map_get(&st->booking_by_id, id);
			struct booking *b = &st->bookings[bslot];

			ASSERT(bslot);
			if (status_active(b->status))
				set_del(&st->active,
					active_key(slot, b->customer_slot));
			customer_drop_booking(st, b->customer_slot, bslot);
			pay_drop(st, id);
			map_del(&st->booking_by_id, id);
			memset(b, 0, sizeof(*b));
			b->customer_next = st->booking_free;
			st->booking_free = bslot;
			st->booking_count--;
		}
		day_drop(st, e, slot);
		state__title_drop(st, e);
		ASSERT(map_del(&st->event_by_id, e->id));
		memset(e, 0, sizeof(*e));
		e->wl_head = st->event_free;
		st->event_free = slot;
		st->event_count--;
		dropped++;
	}
	for (uint32_t i = st->remind_part_count; i-- > 0;)
		if (!event_get(st, st->remind_parts[i].event_id))
			remind_part_drop(st, &st->remind_parts[i]);
	/* Keys created before the cut: idem_expire's "older than the
	 * retention" with now = before + retention - 1. */
	state__idem_expire(st, before + st->cfg.idem_retention_ms - 1);
	return dropped;
}

uint32_t core__state_archive_count(const core_state *st)
{
	return st->archived;
}

/* Room in the day bucket of start_at for n more events (the bucket made
 * if missing: an empty bucket changes no answer). */
static int day_reserve(core_state *st, core_time start_at, uint32_t n)
{
	struct day_bucket *d = state__day_bucket(st, start_at, true);

	if (!d)
		return -ENOMEM;
	if ((uint64_t)d->count + n > d->capacity) {
		uint64_t cap = d->capacity ? d->capacity : 16;
		uint32_t *s;
		while (cap < (uint64_t)d->count + n)
			cap *= 2;
		if (cap > TABLE_COUNT_LIMIT)
			return -ENOMEM;
		s = realloc(d->slots, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		d->slots = s;
		d->capacity = (uint32_t)cap;
	}
	return 0;
}

/* Room for events, bookings (each may bring a new customer), holds and
 * pay slots, and watched waitlists (a new booking may start one, an edit
 * may move one). */
static int state_reserve(core_state *st, uint32_t events, uint32_t bookings,
			 uint32_t holds, uint32_t pays, uint32_t edits)
{
	if (table_grow((void **)&st->events, &st->event_cap,
		       (uint64_t)st->event_slots + events,
		       sizeof(*st->events)) ||
	    map_reserve(&st->event_by_id, events) ||
	    table_grow((void **)&st->bookings, &st->booking_cap,
		       (uint64_t)st->booking_slots + bookings,
		       sizeof(*st->bookings)) ||
	    map_reserve(&st->booking_by_id, bookings) ||
	    set_reserve(&st->active, bookings) ||
	    table_grow((void **)&st->customers, &st->customer_cap,
		       (uint64_t)st->customer_slots + bookings,
		       sizeof(*st->customers)) ||
	    map_reserve(&st->customer_by_hash, bookings) ||
	    table_grow((void **)&st->holds, &st->hold_cap,
		       (uint64_t)st->hold_count + holds, sizeof(*st->holds)) ||
	    table_grow((void **)&st->pays, &st->pay_cap,
		       (uint64_t)st->pay_slots + pays, sizeof(*st->pays)) ||
	    map_reserve(&st->pay_by_booking, pays) ||
	    table_grow((void **)&st->wl_watch, &st->wl_watch_cap,
		       (uint64_t)st->wl_watch_count + bookings + edits,
		       sizeof(*st->wl_watch)))
		return -ENOMEM;
	return 0;
}

static bool owns_event(const core_state *st, uint64_t event_id);
static int day_reserve(core_state *st, core_time start_at, uint32_t n);

/* Room for an EVENT_EDIT: its event's new day, its title. */
static int edit_reserve(core_state *st, const struct core_rec *r)
{
	if (day_reserve(st, r->u.edit.start_at, 1) != 0)
		return -ENOMEM;
	return r->u.edit.title[0] ? state__title_reserve(st, 1) : 0;
}

/* The records of an entry, one after the other: decoded from its bytes, or,
 * for the state's own last decision, the records decide.c built (the same
 * records: state_int.h). */
struct walk {
	const core_state *st;
	const uint8_t *p;
	size_t size, pos;
	uint32_t index;
	bool decided;
	struct core_rec r; /* the last one decoded */
};

static void walk_start(struct walk *w, const core_state *st, const void *entry,
		       size_t entry_size)
{
	w->st = st;
	w->p = entry;
	w->size = entry_size;
	w->pos = 0;
	w->index = 0;
	w->decided = state__decided(st, entry, entry_size);
}

/* The next record, NULL at the end; *rc -EINVAL when malformed. */
static const struct core_rec *walk_next(struct walk *w, int *rc)
{
	*rc = 0;
	if (w->decided)
		return w->index < w->st->decided_count
			       ? &w->st->decided[w->index++]
			       : NULL;
	if (w->pos >= w->size)
		return NULL;
	if (rec_decode(w->p, w->size, &w->pos, &w->r) != 0) {
		*rc = -EINVAL;
		return NULL;
	}
	return &w->r;
}

int core__state_reserve(core_state *st, const void *entry, size_t entry_size)
{
	uint32_t events = 0, bookings = 0, holds = 0, pays = 0, edits = 0;
	const struct core_rec *r;
	struct walk w;
	int rc;

	/* Our own decision: counted as it was made (decide.c emit), but for
	 * an edit's room (its EVENT_EDIT comes first: decide_edit). */
	if (state__decided(st, entry, entry_size) &&
	    st->decided[0].type != CORE_REC_EVENT_EDIT)
		return state_reserve(st, 0, st->decided_bookings,
				     st->decided_holds, st->decided_pays, 0);
	walk_start(&w, st, entry, entry_size);
	while ((r = walk_next(&w, &rc))) {
		if (!owns_event(st, core_rec_event_id(r)))
			continue;
		if (r->type == CORE_REC_EVENT_EDIT && edit_reserve(st, r) != 0)
			return -ENOMEM;
		edits += r->type == CORE_REC_EVENT_EDIT;
		if (r->type == CORE_REC_EVENT_CREATE)
			events++;
		else if (r->type == CORE_REC_BOOKING_NEW ||
			 r->type == CORE_REC_BOOKING_RESTORE ||
			 r->type == CORE_REC_BOOKING_IMPORT)
			bookings++;
		else if (rec_pays(r))
			pays++;
		if ((r->type == CORE_REC_BOOKING_NEW ||
		     r->type == CORE_REC_BOOKING_SET ||
		     r->type == CORE_REC_BOOKING_RESTORE) &&
		    r->u.booking.status == CORE_BOOKING_PENDING_PAYMENT)
			holds++;
	}
	if (rc)
		return rc;
	if (events) { /* each event's day, with room for all of them */
		walk_start(&w, st, entry, entry_size);
		while ((r = walk_next(&w, &rc))) {
			if (r->type == CORE_REC_EVENT_CREATE &&
			    owns_event(st, r->u.event.id) &&
			    day_reserve(st, r->u.event.start_at, events) != 0)
				return -ENOMEM;
		}
		ASSERT(rc == 0);
	}
	return state_reserve(st, events, bookings, holds, pays, edits);
}

static int apply_event_create(core_state *st, const struct core_rec *r)
{
	struct day_bucket *d;
	struct event *e;
	uint32_t slot;

	if (r->u.event.id == 0 || r->u.event.id > CORE_EVENT_ID_MAX ||
	    event_get(st, r->u.event.id))
		return -EINVAL;
	if (state_reserve(st, 1, 0, 0, 0, 0) != 0 ||
	    day_reserve(st, r->u.event.start_at, 1) != 0)
		return -ENOMEM;
	d = state__day_bucket(st, r->u.event.start_at, false);
	ASSERT(d);
	slot = slot_take(&st->event_slots, &st->event_free,
			 &st->events[st->event_free].wl_head);
	st->event_count++;
	e = &st->events[slot];
	memset(e, 0, sizeof(*e));
	e->id = r->u.event.id;
	e->series_id = r->u.event.series_id;
	e->org_id = r->u.event.org_id;
	e->location_id = r->u.event.location_id;
	e->instructor_id = r->u.event.instructor_id;
	e->start_at = r->u.event.start_at;
	e->duration_min = r->u.event.duration_min;
	e->capacity = r->u.event.capacity;
	e->waitlist_capacity = r->u.event.waitlist_capacity;
	e->price_cents = r->u.event.price_cents;
	memcpy(e->currency, r->u.event.currency, sizeof(e->currency));
	e->status = CORE_EVENT_SCHEDULED;
	e->version = 1;
	ASSERT(map_put(&st->event_by_id, e->id, slot) == 0);
	d->slots[d->count++] = slot;
	d->by_org = false;
	if (e->start_at < st->remind_dirty) /* a reminder run looks again */
		st->remind_dirty = e->start_at;
	return 0;
}

static void waitlist_remove(core_state *st, struct event *e, struct booking *b)
{
	if (b->wl_prev)
		st->bookings[b->wl_prev].wl_next = b->wl_next;
	else
		e->wl_head = b->wl_next;
	if (b->wl_next)
		st->bookings[b->wl_next].wl_prev = b->wl_prev;
	else
		e->wl_tail = b->wl_prev;
	b->wl_prev = b->wl_next = 0;
	e->waitlist_len--;
}

/* Moves b to status; the caller has checked that the move is allowed. */
static void booking_move(core_state *st, struct booking *b, uint8_t status,
			 core_time hold_expires_at)
{
	struct event *e = &st->events[b->event_slot];
	uint32_t slot = (uint32_t)(b - st->bookings);

	switch (b->status) {
	case CORE_BOOKING_CONFIRMED: e->confirmed--; break;
	case CORE_BOOKING_PENDING_PAYMENT: e->held--; break;
	case CORE_BOOKING_WAITLISTED: waitlist_remove(st, e, b); break;
	}
	b->status = status;
	b->hold_expires_at = hold_expires_at;
	switch (status) {
	case CORE_BOOKING_CONFIRMED: e->confirmed++; break;
	case CORE_BOOKING_PENDING_PAYMENT:
		e->held++;
		hold_push(st, slot);
		break;
	case CORE_BOOKING_WAITLISTED:
		b->wl_prev = e->wl_tail;
		b->wl_next = 0;
		if (e->wl_tail)
			st->bookings[e->wl_tail].wl_next = slot;
		else
			e->wl_head = slot;
		e->wl_tail = slot;
		if (e->waitlist_len++ == 0) /* closes at the class's start */
			state__wl_watch(st, e);
		break;
	default:
		set_del(&st->active,
			active_key(b->event_slot, b->customer_slot));
	}
	e->version++;
	ASSERT(e->confirmed + e->held <= e->capacity ||
	       e->status == CORE_EVENT_CANCELLED);
}

/* Would moving a booking of e from `from` to `to` break capacity? */
static bool move_fits(const struct event *e, uint8_t from, uint8_t to)
{
	bool takes = to == CORE_BOOKING_CONFIRMED ||
		     to == CORE_BOOKING_PENDING_PAYMENT;
	bool took = from == CORE_BOOKING_CONFIRMED ||
		    from == CORE_BOOKING_PENDING_PAYMENT;

	if (e->status != CORE_EVENT_SCHEDULED &&
	    (takes || to == CORE_BOOKING_WAITLISTED))
		return false;
	if (takes && !took && seats_free(e) == 0)
		return false;
	if (to == CORE_BOOKING_WAITLISTED &&
	    e->waitlist_len >= e->waitlist_capacity)
		return false;
	return true;
}

static bool status_valid(uint8_t s)
{
	return s >= CORE_BOOKING_CONFIRMED &&
	       s <= CORE_BOOKING_WAITLIST_EXPIRED;
}

/* BOOKING_NEW: a new booking in an active status. BOOKING_RESTORE (from a
 * snapshot) and BOOKING_IMPORT (imported data): a booking as it was, in
 * any status but a hold (an import never has one), bookings of an event
 * in sequence order (so waitlisted ones rejoin in FIFO order). */
static int apply_booking_new(core_state *st, const struct core_rec *r)
{
	uint64_t id = r->u.booking.booking_id;
	/* Our own decision's, applied right after it: what it looked up
	 * (the event, the customer id checked and found, no active booking
	 * of it on the event) still holds. */
	bool decided = st->book.live && r == &st->decided[0];
	struct event *e = decided ? &st->events[st->book.event_slot]
				  : event_get(st, core_booking_event(id));
	uint8_t status = r->u.booking.status;
	bool live = status_active(status);
	uint64_t hash;
	uint32_t eslot, cust, slot;
	struct booking *b;

	if (!e || (id & CORE_BOOKING_SEQ_MAX) != e->booking_seq + 1 ||
	    !status_valid(status) ||
	    (r->type == CORE_REC_BOOKING_NEW && !live) ||
	    (r->type == CORE_REC_BOOKING_IMPORT &&
	     status == CORE_BOOKING_PENDING_PAYMENT) ||
	    (live && !move_fits(e, CORE_BOOKING_NONE, status)))
		return -EINVAL;
	eslot = (uint32_t)(e - st->events);
	if (decided) {
		ASSERT(e->id == core_booking_event(id));
		hash = st->book.customer_hash;
		cust = st->book.customer_slot;
	} else {
		if (!core__customer_id_ok(r->u.booking.customer_id))
			return -EINVAL;
		hash = hash_bytes(r->u.booking.customer_id,
				  strlen(r->u.booking.customer_id));
		cust = customer_find_hashed(st, r->u.booking.customer_id, hash);
		if (cust == UINT32_MAX ||
		    (live && cust &&
		     set_has(&st->active, active_key(eslot, cust))))
			return -EINVAL;
	}
	DEBUG_ASSERT(customer_find(st, r->u.booking.customer_id) == cust);
	DEBUG_ASSERT(!live || !cust ||
		     !set_has(&st->active, active_key(eslot, cust)));
	/* Room for it was reserved with the whole entry (core_state_apply):
	 * nothing below can fail. */
	ASSERT(st->booking_slots < st->booking_cap || st->booking_free);
	ASSERT(st->customer_slots < st->customer_cap || st->customer_free ||
	       cust);
	ASSERT(status != CORE_BOOKING_PENDING_PAYMENT ||
	       st->hold_count < st->hold_cap);
	if (!cust) {
		cust = slot_take(&st->customer_slots, &st->customer_free,
				 &st->customers[st->customer_free]
					  .bookings_head);
		st->customer_count++;
		memcpy(st->customers[cust].id, r->u.booking.customer_id,
		       sizeof(st->customers[cust].id));
		st->customers[cust].bookings_head = 0;
		ASSERT(map_put(&st->customer_by_hash, hash, cust) == 0);
	}
	slot = slot_take(&st->booking_slots, &st->booking_free,
			 &st->bookings[st->booking_free].customer_next);
	st->booking_count++;
	b = &st->bookings[slot];
	memset(b, 0, sizeof(*b));
	b->id = id;
	b->created_at = r->at;
	b->event_slot = eslot;
	b->customer_slot = cust;
	b->customer_next = st->customers[cust].bookings_head;
	st->customers[cust].bookings_head = slot;
	e->booking_seq++;
	ASSERT(map_put(&st->booking_by_id, id, slot) == 0);
	if (live) {
		ASSERT(set_put(&st->active, active_key(eslot, cust)) == 0);
		booking_move(st, b, status, r->u.booking.hold_expires_at);
	} else {
		b->status = status;
	}
	b->late = status == CORE_BOOKING_CANCELLED && r->u.booking.late;
	return 0;
}

static int apply_booking_set(core_state *st, const struct core_rec *r)
{
	struct booking *b = booking_get(st, r->u.booking.booking_id);
	uint8_t to = r->u.booking.status;

	if (!b || !status_active(b->status) || !status_valid(to) ||
	    to == CORE_BOOKING_WAITLISTED || to == b->status ||
	    !move_fits(&st->events[b->event_slot], b->status, to) ||
	    /* only a waitlisted one expires from the list; only a
	     * cancel is late */
	    (to == CORE_BOOKING_WAITLIST_EXPIRED &&
	     b->status != CORE_BOOKING_WAITLISTED) ||
	    (r->u.booking.late && to != CORE_BOOKING_CANCELLED))
		return -EINVAL;
	booking_move(st, b, to, r->u.booking.hold_expires_at);
	b->late = r->u.booking.late;
	return 0;
}

static int apply_patch(core_state *st, const struct core_rec *r)
{
	struct event *e = event_get(st, r->u.patch.event_id);
	uint8_t status = r->u.patch.status;

	if (!e ||
	    (status != CORE_EVENT_SCHEDULED &&
	     status != CORE_EVENT_CANCELLED) ||
	    (e->status == CORE_EVENT_CANCELLED &&
	     status == CORE_EVENT_SCHEDULED) ||
	    (status == CORE_EVENT_SCHEDULED &&
	     r->u.patch.capacity < e->confirmed + e->held))
		return -EINVAL;
	e->capacity = r->u.patch.capacity;
	e->instructor_id = r->u.patch.instructor_id;
	e->version++;
	if (status == CORE_EVENT_CANCELLED &&
	    e->status != CORE_EVENT_CANCELLED) {
		e->status = CORE_EVENT_CANCELLED;
		for (uint32_t seq = 1; seq <= e->booking_seq; seq++) {
			struct booking *b =
				booking_get(st, e->id << CORE_BOOKING_SEQ_BITS |
							seq);
			ASSERT(b);
			if (status_active(b->status))
				booking_move(st, b, CORE_BOOKING_CANCELLED, 0);
		}
		ASSERT(e->confirmed == 0 && e->held == 0 &&
		       e->waitlist_len == 0);
		remind_part_drop(st, state__remind_part(st, e->id));
	}
	return 0;
}

/* EVENT_EDIT (docs/core.md "Event edits"): the event as it is now,
 * scheduled. A new start moves it between day buckets and makes its
 * reminders due again (for the new time); a cancelled event is restored
 * (its bookings stay cancelled). Room was made (edit_reserve). */
static int apply_edit(core_state *st, const struct core_rec *r)
{
	struct event *e = event_get(st, r->u.edit.event_id);
	const struct core_rec *x = r;
	struct day_bucket *to, *from;
	uint32_t slot;

	if (!e || x->u.edit.start_at <= 0 || x->u.edit.duration_min == 0 ||
	    x->u.edit.duration_min > CORE_DURATION_MIN_MAX ||
	    x->u.edit.capacity < e->confirmed + e->held ||
	    x->u.edit.waitlist_capacity < e->waitlist_len)
		return -EINVAL;
	slot = (uint32_t)(e - st->events);
	to = state__day_bucket(st, x->u.edit.start_at, false);
	from = state__day_bucket(st, e->start_at, false);
	ASSERT(to && from); /* edit_reserve made the first */
	if (to != from) {
		ASSERT(to->count < to->capacity); /* edit_reserve */
		day_drop(st, e, slot);
		to->slots[to->count++] = slot;
	}
	to->by_org = false; /* its order by start changed */
	if (x->u.edit.start_at != e->start_at) {
		e->start_at = x->u.edit.start_at;
		if (e->waitlist_len) /* it closes at the new start */
			state__wl_watch(st, e);
		e->reminded_hours = 0; /* reminders for the new time */
		remind_part_drop(st, state__remind_part(st, e->id));
		if (e->start_at < st->remind_dirty)
			st->remind_dirty = e->start_at;
	}
	e->location_id = x->u.edit.location_id;
	e->instructor_id = x->u.edit.instructor_id;
	e->duration_min = x->u.edit.duration_min;
	e->capacity = x->u.edit.capacity;
	e->waitlist_capacity = x->u.edit.waitlist_capacity;
	e->price_cents = x->u.edit.price_cents;
	memcpy(e->currency, x->u.edit.currency, sizeof(e->currency));
	state__title_set(st, e, x->u.edit.title);
	if (x->u.edit.changed & CORE_EDIT_DETACHED)
		e->flags |= EVENT_DETACHED; /* stays so */
	if (e->status != CORE_EVENT_SCHEDULED && e->start_at < st->remind_dirty)
		st->remind_dirty = e->start_at; /* restored: runs look again */
	e->status = CORE_EVENT_SCHEDULED;
	e->version++;
	return 0;
}

static bool owns_event(const core_state *st, uint64_t event_id)
{
	return core__shard_of(event_id, st->count) == st->index;
}

/* ---- reminders ---- */

/* REMIND: next_seq 0, the event is reminded for `hours` (a half-way one
 * is over); else the reminder is half-way, the next chunk from next_seq. */
static int apply_remind(core_state *st, const struct core_rec *r)
{
	struct event *e = event_get(st, r->u.remind.event_id);
	uint16_t hours = r->u.remind.hours;
	uint32_t next = r->u.remind.next_seq;
	struct remind_part *p;

	if (!e || hours == 0 || hours > CORE_REMIND_HOURS_MAX ||
	    next > e->booking_seq)
		return -EINVAL;
	p = state__remind_part(st, e->id);
	if (next == 0) {
		e->reminded_hours = hours;
		remind_part_drop(st, p);
		return 0;
	}
	if (!p) {
		if (st->remind_part_count == REMIND_PART_MAX)
			return -EINVAL; /* decide.c never makes more */
		p = &st->remind_parts[st->remind_part_count++];
		p->event_id = e->id;
	}
	p->hours = hours;
	p->next_seq = next;
	return 0;
}

static int apply_rec(core_state *st, const struct core_rec *r)
{
	uint64_t event_id = core_rec_event_id(r);

	if (r->type == CORE_REC_ARCHIVE) { /* every shard, its own events */
		st->archived = state_archive(st, r->u.archive.before);
		return 0;
	}
	if (r->type == CORE_REC_IDEM) {
		struct core_idem k = { r->u.idem.hi, r->u.idem.lo,
				       r->u.idem.fingerprint };
		if (core__key_home(&k, st->count) == st->index)
			core__idem_store(st, &k, r->at, &r->u.idem.result);
		return 0;
	}
	if (event_id == 0) {
		if (!st->owns_cat)
			return 0;
		return catalog_apply(st->cat, r);
	}
	if (r->type == CORE_REC_EVENT_CREATE && st->owns_cat) {
		int rc = catalog_apply(st->cat, r);
		if (rc)
			return rc;
	}
	if (!owns_event(st, event_id))
		return 0;
	switch (r->type) {
	case CORE_REC_EVENT_CREATE: return apply_event_create(st, r);
	case CORE_REC_EVENT_PATCH: return apply_patch(st, r);
	case CORE_REC_EVENT_EDIT: return apply_edit(st, r);
	case CORE_REC_BOOKING_NEW:
	case CORE_REC_BOOKING_RESTORE:
	case CORE_REC_BOOKING_IMPORT: return apply_booking_new(st, r);
	case CORE_REC_BOOKING_SET: return apply_booking_set(st, r);
	case CORE_REC_PAYMENT: /* facts for the replicator and the notifier */
	case CORE_REC_PAY_INTENT:
	case CORE_REC_REFUND: return apply_pay(st, r);
	case CORE_REC_NOTIFY:
		return booking_get(st, r->u.notify.booking_id) ? 0 : -EINVAL;
	case CORE_REC_REMIND: return apply_remind(st, r);
	default: return -EINVAL;
	}
}

int core_state_apply(core_state *st, const void *entry, size_t entry_size)
{
	const struct core_rec *r;
	struct walk w;
	int rc;

	if (entry_size > CORE_ENTRY_SIZE_MAX)
		return -EINVAL;
	/* Pass 1: every record decodes, or nothing is applied (our own last
	 * decision's records were built, not read: they are well formed);
	 * and room for what the entry adds, or nothing is applied. */
	if (!state__decided(st, entry, entry_size) &&
	    core_entry_check(entry, entry_size, NULL) != 0)
		return -EINVAL;
	DEBUG_ASSERT(core_entry_check(entry, entry_size, NULL) == 0);
	rc = core__state_reserve(st, entry, entry_size);
	if (rc)
		return rc;
	st->archived = 0;
	/* Pass 2: apply. A record that does not fit the state means the log
	 * and the state diverged: the caller must stop (-EUCLEAN). */
	walk_start(&w, st, entry, entry_size);
	st->book.live = w.decided && st->book.valid &&
			st->book.applied_count == st->applied_count;
	st->book.valid = false; /* once */
	st->applied_count++;
	while ((r = walk_next(&w, &rc))) {
		rc = apply_rec(st, r);
		if (rc)
			break;
	}
	st->book.live = false;
	if (rc)
		return rc == -EINVAL ? -EUCLEAN : rc;
	return 0;
}
