/*
 * state.c: one shard's deterministic state machine: its design, making and
 * freeing it, look-ups and views, and the reads across the shard (listings,
 * a customer's bookings, stats, the snapshot dump). Deciding is in
 * decide.c (idempotency keys in idem.c), applying in apply.c; the layout
 * they share is in state_int.h, what the runtime calls in state.h.
 *
 * Decide, then apply. core_state_decide() reads the state and writes the
 * decision as an entry of records (record.c); it changes nothing that
 * matters. core_state_apply() is the only way the state changes, for live
 * decisions and log replay alike, so state = fold(entries). A decision's
 * records are built once (decide.c keeps them in st->decided as it encodes
 * them): applying the state's own last entry reads those records instead
 * of decoding its bytes again; any other entry (the log's, a copy) is
 * decoded. Both are the same records (test_core_log compares the states).
 *
 * Layout (arrays of slots, slot 0 means "none"; each starts at
 * TABLE_COUNT_INIT and doubles as needed, table.c; the config's *_count_max
 * are ceilings that decisions check, answering CORE_LIMIT, so a request
 * that would pass one is refused before it is logged):
 *   events[]    id, series, counters, waitlist head/tail          ~112 B
 *   bookings[]  id, times, event/customer slots, waitlist links    48 B
 *   customers[] the external id string, list of its bookings       72 B
 *   maps        event id, booking id, customer hash, idempotency key
 *               (table.c, 16 B a slot, load <= 1/2)
 *   active      the set of (event, customer) with an active booking (a
 *               set: 8 B a slot)
 *   holds       min-heap of (expiry, booking) for pending payments; stale
 *               entries (booking no longer pending) are dropped when seen
 *   days        events bucketed by UTC day, for listings by time range;
 *               a bucket is sorted by (org, start, id) when a listing for
 *               one org reads it after a change, so that listing visits
 *               only its org's events (binary search), whatever the
 *               number of orgs
 *   idem        ring of idempotency entries in arrival order, so the oldest
 *               are dropped first once older than the retention
 *
 * Invariants, checked when records are applied (a record that would break
 * one is refused): confirmed + held <= capacity for every scheduled event;
 * one active (confirmed, pending_payment, waitlisted) booking per customer
 * per event; waitlisted bookings form the event's FIFO list, whose length
 * is waitlist_len <= waitlist_capacity; a non-empty waitlist means no free
 * seat. A booking id is (event id << 24 | per-event sequence), so a booking
 * is routed to its event's shard without any look-up.
 *
 * Growth never fails halfway through an entry: core__state_reserve() makes
 * room for all of an entry's new events and bookings first (the runtime
 * calls it before the entry is logged; core_state_apply before applying),
 * so applying an entry either fails with nothing changed (-ENOMEM) or
 * cannot run out of room. Replay is not held to the ceilings (a log
 * written under larger ones still loads); only memory bounds it.
 *
 * Ownership: in a runtime of N shards, a state applies only the records of
 * its own events (XXH3 of the event id mod N) and of the idempotency keys
 * homed on it; catalogue records go to the catalogue, owned by the state
 * only when it runs alone (tests, tools).
 */
#include "state.h"
#include "state_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void core_config_default(struct core_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->shard_count = 2;
	cfg->port_count = 4;
	cfg->event_count_max = 1u << 20;
	cfg->booking_count_max = 1u << 22;
	cfg->customer_count_max = 1u << 20;
	cfg->idem_count_max = 1u << 20;
	cfg->catalog_count_max = 100000;
	cfg->ring_size = 4096;
	cfg->hold_ms = 10 * 60 * 1000;
	cfg->idem_retention_ms = 24 * 3600 * 1000;
	cfg->horizon_days = 120;
	cfg->generate_max_days = 366;
}

unsigned core__shard_of(uint64_t event_id, unsigned count)
{
	return count <= 1 ? 0 : (unsigned)(hash_u64(event_id) % count);
}

unsigned core__key_home(const struct core_idem *k, unsigned count)
{
	return count <= 1 ? 0 : (unsigned)((k->hi ^ k->lo) % count);
}
core_state *core__state_new(const struct core_config *cfg, struct catalog *cat,
			    unsigned index, unsigned count)
{
	core_state *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->cfg = *cfg;
	st->index = index;
	st->count = count;
	st->cat = cat;
	if (!cat) {
		st->cat = catalog_new(cfg->catalog_count_max, cfg->horizon_days,
				      cfg->generate_max_days);
		st->owns_cat = true;
	}
	/* Small at first: tables double as they fill (table_grow). */
	if (!st->cat ||
	    table_grow((void **)&st->events, &st->event_cap, 1,
		       sizeof(*st->events)) ||
	    table_grow((void **)&st->bookings, &st->booking_cap, 1,
		       sizeof(*st->bookings)) ||
	    table_grow((void **)&st->customers, &st->customer_cap, 1,
		       sizeof(*st->customers)) ||
	    table_grow((void **)&st->holds, &st->hold_cap, 1,
		       sizeof(*st->holds)) ||
	    table_grow((void **)&st->pays, &st->pay_cap, 1,
		       sizeof(*st->pays)) ||
	    map_init(&st->pay_by_booking, 64) ||
	    table_grow((void **)&st->wl_watch, &st->wl_watch_cap, 1,
		       sizeof(*st->wl_watch)) ||
	    state__idem_init(st) ||
	    map_init(&st->event_by_id, TABLE_COUNT_INIT) ||
	    map_init(&st->booking_by_id, TABLE_COUNT_INIT) ||
	    set_init(&st->active, TABLE_COUNT_INIT) ||
	    map_init(&st->customer_by_hash, TABLE_COUNT_INIT) ||
	    map_init(&st->idem_by_key, TABLE_COUNT_INIT) ||
	    map_init(&st->day_by_key, 256) ||
	    map_init(&st->title_by_event, 16)) {
		core_state_free(st);
		return NULL;
	}
	st->remind_dirty = INT64_MAX;
	st->w = (struct wbuf){ .data = st->entry,
			       .capacity = sizeof(st->entry) };
	return st;
}

core_state *core_state_new(const struct core_config *cfg)
{
	return core__state_new(cfg, NULL, 0, 1);
}

void core_state_free(core_state *st)
{
	if (!st)
		return;
	if (st->owns_cat)
		catalog_free(st->cat);
	for (uint32_t i = 1; i <= st->day_count; i++)
		free(st->days[i].slots);
	free(st->days);
	table_free(st->events, (size_t)st->event_cap + 1, sizeof(*st->events));
	table_free(st->bookings, (size_t)st->booking_cap + 1,
		   sizeof(*st->bookings));
	table_free(st->customers, (size_t)st->customer_cap + 1,
		   sizeof(*st->customers));
	table_free(st->holds, (size_t)st->hold_cap + 1, sizeof(*st->holds));
	table_free(st->pays, (size_t)st->pay_cap + 1, sizeof(*st->pays));
	map_free(&st->pay_by_booking);
	table_free(st->wl_watch, (size_t)st->wl_watch_cap + 1,
		   sizeof(*st->wl_watch));
	state__idem_free(st);
	map_free(&st->event_by_id);
	map_free(&st->booking_by_id);
	set_free(&st->active);
	map_free(&st->customer_by_hash);
	map_free(&st->idem_by_key);
	map_free(&st->day_by_key);
	map_free(&st->title_by_event);
	table_free(st->titles, (size_t)st->title_cap + 1, sizeof(*st->titles));
	free(st);
}

/* ---- look-ups ---- */

void core__state_prefetch(const core_state *st, const struct core_req *req)
{
	switch (req->op) {
	case CORE_OP_BOOK:
		map_prefetch(&st->event_by_id,
			     req->event_id ? req->event_id : 1);
		map_prefetch(&st->customer_by_hash,
			     hash_bytes(req->customer_id,
					strnlen(req->customer_id,
						sizeof(req->customer_id))));
		break;
	case CORE_OP_CANCEL:
	case CORE_OP_PAY:
	case CORE_OP_BOOKING_GET:
		map_prefetch(&st->booking_by_id,
			     req->booking_id ? req->booking_id : 1);
		break;
	default: break;
	}
}

/* A booking reads, in turn: the customer's map slot, then (from the slot
 * found there) the customer's record and the (event, customer) slot of
 * the active index, and it adds a slot to the booking id map. Each is a
 * cache miss in a big shard, and each waits for the one before. So a
 * batch is prefetched in two rounds: first every request's first slots
 * (core__state_prefetch), then, those having arrived meanwhile, what they
 * point to; the misses of the batch overlap instead of following one
 * another. Only hints: a request decided later sees the state as it is. */
void core__state_prefetch_batch(const core_state *st,
				const struct core_req *const reqs[], unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		core__state_prefetch(st, reqs[i]);
		if (core_idem_present(&reqs[i]->idem) &&
		    core__key_home(&reqs[i]->idem, st->count) == st->index)
			state__idem_prefetch(st, &reqs[i]->idem);
	}
	for (unsigned i = 0; i < n; i++) {
		const struct core_req *q = reqs[i];
		const struct event *e;
		uint32_t cust;

		if (q->op != CORE_OP_BOOK || !(e = event_get(st, q->event_id)))
			continue;
		map_prefetch(&st->booking_by_id,
			     e->id << CORE_BOOKING_SEQ_BITS |
				     (e->booking_seq + 1));
		cust = map_get(&st->customer_by_hash,
			       hash_bytes(q->customer_id,
					  strnlen(q->customer_id,
						  sizeof(q->customer_id))));
		if (!cust)
			continue;
		/* both ends: a record may straddle two cache lines */
		__builtin_prefetch(&st->customers[cust]);
		__builtin_prefetch((const char *)&st->customers[cust + 1] - 1);
		set_prefetch(&st->active,
			     active_key((uint32_t)(e - st->events), cust));
	}
}

/* A waitlisted booking's place: walked from both ends at once, so the
 * newest (a booking just waitlisted) and the next to be promoted are found
 * at once and no place costs more than half the list. */
static uint32_t waitlist_position(const core_state *st, const struct booking *b)
{
	const struct event *e = &st->events[b->event_slot];
	uint32_t f = e->wl_head, r = e->wl_tail;

	for (uint32_t k = 0; f && r; k++) {
		if (&st->bookings[f] == b)
			return k + 1;
		if (&st->bookings[r] == b)
			return e->waitlist_len - k;
		f = st->bookings[f].wl_next;
		r = st->bookings[r].wl_prev;
	}
	ASSERT(!"waitlisted booking missing from its waitlist");
}

void state__booking_view_leaving(const core_state *st, const struct booking *b,
				 struct core_booking_view *out)
{
	memset(out, 0, sizeof(*out));
	out->id = b->id;
	out->event_id = st->events[b->event_slot].id;
	memcpy(out->customer_id, st->customers[b->customer_slot].id,
	       sizeof(out->customer_id));
	out->status = b->status;
	out->hold_expires_at = b->status == CORE_BOOKING_PENDING_PAYMENT
				       ? b->hold_expires_at
				       : 0;
	out->created_at = b->created_at;
	out->late = b->late;
}

void state__booking_view(const core_state *st, const struct booking *b,
			 struct core_booking_view *out)
{
	state__booking_view_leaving(st, b, out);
	if (b->status == CORE_BOOKING_WAITLISTED)
		out->position = waitlist_position(st, b);
}

void state__event_view(const core_state *st, const struct event *e,
		       struct core_event_view *out)
{
	memset(out, 0, sizeof(*out));
	out->id = e->id;
	out->series_id = e->series_id;
	out->org_id = e->org_id;
	out->location_id = e->location_id;
	out->instructor_id = e->instructor_id;
	if (e->flags & EVENT_TITLED)
		memcpy(out->title, state__title(st, e), sizeof(out->title));
	else
		core__event_title(st->cat, out);
	out->start_at = e->start_at;
	out->duration_min = e->duration_min;
	out->capacity = e->capacity;
	out->booked = e->confirmed;
	out->held = e->held;
	out->waitlist_length = e->waitlist_len;
	out->waitlist_capacity = e->waitlist_capacity;
	out->price_cents = e->price_cents;
	memcpy(out->currency, e->currency, sizeof(out->currency));
	out->status = e->status;
	out->detached = (e->flags & EVENT_DETACHED) != 0;
	out->version = e->version;
}

enum core_code core_state_event(const core_state *st, uint64_t event_id,
				struct core_event_view *out)
{
	const struct event *e = event_get(st, event_id);

	if (!e)
		return CORE_NO_EVENT;
	state__event_view(st, e, out);
	return CORE_OK;
}

enum core_code core_state_booking(const core_state *st, uint64_t booking_id,
				  struct core_booking_view *out)
{
	const struct booking *b = booking_get(st, booking_id);

	if (!b)
		return CORE_NO_BOOKING;
	state__booking_view(st, b, out);
	return CORE_OK;
}

/* ---- reads across the shard ---- */

static bool event_before(const struct event *a, const struct event *b)
{
	return a->start_at < b->start_at ||
	       (a->start_at == b->start_at && a->id < b->id);
}

static bool event_matches(const struct event *e, const struct core_req *req)
{
	const typeof(req->u.list) *q = &req->u.list;

	if (e->start_at < q->from || e->start_at >= q->to)
		return false;
	if (q->org_id && e->org_id != q->org_id)
		return false;
	if (q->location_id && e->location_id != q->location_id)
		return false;
	if (q->instructor_id && e->instructor_id != q->instructor_id)
		return false;
	if (q->after_id &&
	    (e->start_at < q->after_start ||
	     (e->start_at == q->after_start && e->id <= q->after_id)))
		return false;
	return true;
}

/* Insertion into the sorted out[0..*n), keeping at most cap: listings are
 * short (<= 500), so this stays cheap. */
static void top_insert(const core_state *st, uint32_t *out, size_t *n,
		       size_t cap, uint32_t slot)
{
	const struct event *e = &st->events[slot];
	size_t i = *n;

	if (i == cap && !event_before(e, &st->events[out[i - 1]]))
		return;
	if (i == cap)
		i--;
	else
		(*n)++;
	while (i > 0 && event_before(e, &st->events[out[i - 1]])) {
		out[i] = out[i - 1];
		i--;
	}
	out[i] = slot;
}

static int org_order(const void *a, const void *b, void *arg)
{
	const struct event *x =
		&((const core_state *)arg)->events[*(const uint32_t *)a];
	const struct event *y =
		&((const core_state *)arg)->events[*(const uint32_t *)b];

	if (x->org_id != y->org_id)
		return x->org_id < y->org_id ? -1 : 1;
	return event_before(x, y) ? -1 : event_before(y, x);
}

/* The first of a bucket's slots whose event has org_id (or count), sorting
 * the bucket first if a change left it unsorted. The shard's own thread
 * reads its state: sorting in place is safe. */
static uint32_t org_first(const core_state *st, struct day_bucket *d,
			  uint64_t org_id)
{
	uint32_t lo = 0, hi = d->count;

	if (!d->by_org) {
		qsort_r(d->slots, d->count, sizeof(*d->slots), org_order,
			(void *)st);
		d->by_org = true;
	}
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (st->events[d->slots[mid]].org_id < org_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t core__state_list(const core_state *st, const struct core_req *req,
			struct core_event_view *out, size_t out_capacity)
{
	const typeof(req->u.list) *q = &req->u.list;
	uint32_t slots[CORE_LIST_LIMIT_MAX + 1];
	size_t n = 0, cap = out_capacity;
	int64_t day, last;

	if (cap > CORE_LIST_LIMIT_MAX + 1)
		cap = CORE_LIST_LIMIT_MAX + 1;
	if (cap == 0 || q->to <= q->from)
		return 0;
	if (st->day_count == 0)
		return 0;
	day = (q->from > q->after_start ? q->from : q->after_start);
	day = day >= 0 ? day / DAY_MS : -1;
	last = (q->to - 1) / DAY_MS;
	if (day < st->day_min)
		day = st->day_min;
	if (last > st->day_max)
		last = st->day_max;
	/* Day by day in order: once a day filled the list, later days cannot
	 * hold earlier events. */
	for (; day <= last; day++) {
		struct day_bucket *d = state__day_bucket((core_state *)st,
							 day * DAY_MS, false);
		uint32_t i = 0;

		if (!d)
			continue;
		if (q->org_id)
			i = org_first(st, d, q->org_id);
		for (; i < d->count; i++) {
			const struct event *e = &st->events[d->slots[i]];

			if (q->org_id && e->org_id != q->org_id)
				break; /* past the org's run */
			if (event_matches(e, req))
				top_insert(st, slots, &n, cap, d->slots[i]);
		}
		if (n == cap)
			break;
	}
	for (size_t i = 0; i < n; i++)
		state__event_view(st, &st->events[slots[i]], &out[i]);
	return n;
}

size_t core__state_customer(const core_state *st, const char *customer_id,
			    struct core_booking_view *out, size_t capacity)
{
	uint32_t cust = customer_find(st, customer_id);
	size_t n = 0;

	if (!cust || cust == UINT32_MAX)
		return 0;
	for (uint32_t s = st->customers[cust].bookings_head; s && n < capacity;
	     s = st->bookings[s].customer_next)
		state__booking_view(st, &st->bookings[s], &out[n++]);
	return n;
}

void core_state_stats(const core_state *st, struct core_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->event_count = st->event_count;
	out->booking_count = st->booking_count;
	out->customer_count = st->customer_count;
	out->idem_count = st->idem_count;
	out->hold_count = st->hold_count;
	out->bytes_allocated =
		(uint64_t)st->event_count * sizeof(struct event) +
		(uint64_t)st->booking_count * sizeof(struct booking) +
		(uint64_t)st->customer_count * sizeof(struct customer) +
		map_bytes(&st->event_by_id) + map_bytes(&st->booking_by_id) +
		set_bytes(&st->active) + map_bytes(&st->customer_by_hash) +
		map_bytes(&st->idem_by_key) +
		(uint64_t)st->title_slots * CORE_NAME_SIZE_MAX +
		map_bytes(&st->title_by_event) +
		(uint64_t)st->pay_count * sizeof(struct pay) +
		map_bytes(&st->pay_by_booking);
}

/* The event's reminders as REMIND records: the last whole one, then the
 * one half-way. */
static void state_dump_remind(const core_state *st, const struct event *e,
			      rec_sink fn, void *ctx)
{
	const struct remind_part *p = state__remind_part(st, e->id);
	struct core_rec r;

	memset(&r, 0, sizeof(r));
	r.type = CORE_REC_REMIND;
	r.u.remind.event_id = e->id;
	if (e->reminded_hours) {
		r.u.remind.hours = e->reminded_hours;
		fn(ctx, &r);
	}
	if (p) {
		r.u.remind.hours = p->hours;
		r.u.remind.next_seq = p->next_seq;
		fn(ctx, &r);
	}
}

/* The booking's payment facts (struct pay): PAY_INTENT with the intent,
 * then REFUND as it stands. */
static void state_dump_pay(const core_state *st, const struct event *e,
			   const struct booking *b, rec_sink fn, void *ctx)
{
	const struct pay *p = pay_get(st, b->id);
	struct core_rec r;

	if (!p)
		return;
	memset(&r, 0, sizeof(r));
	r.type = CORE_REC_PAY_INTENT;
	r.at = b->created_at;
	r.u.intent.booking_id = b->id;
	memcpy(r.u.intent.intent_id, p->intent_id, sizeof(p->intent_id));
	fn(ctx, &r);
	if (!p->refund)
		return;
	memset(&r.u, 0, sizeof(r.u));
	r.type = CORE_REC_REFUND;
	r.u.refund.booking_id = b->id;
	r.u.refund.amount_cents = e->price_cents;
	memcpy(r.u.refund.currency, e->currency, sizeof(e->currency));
	memcpy(r.u.refund.intent_id, p->intent_id, sizeof(p->intent_id));
	r.u.refund.reason = p->refund_reason;
	r.u.refund.state = p->refund;
	fn(ctx, &r);
}

void core__state_dump(const core_state *st, rec_sink fn, void *ctx)
{
	struct core_rec r;

	for (uint32_t slot = 1; slot <= st->event_slots; slot++) {
		const struct event *e = &st->events[slot];

		if (e->id == 0)
			continue; /* free (archived) */
		memset(&r, 0, sizeof(r));
		r.type = CORE_REC_EVENT_CREATE;
		r.u.event.id = e->id;
		r.u.event.series_id = e->series_id;
		r.u.event.org_id = e->org_id;
		r.u.event.location_id = e->location_id;
		r.u.event.instructor_id = e->instructor_id;
		r.u.event.start_at = e->start_at;
		r.u.event.duration_min = e->duration_min;
		r.u.event.capacity = e->capacity;
		r.u.event.waitlist_capacity = e->waitlist_capacity;
		r.u.event.price_cents = e->price_cents;
		memcpy(r.u.event.currency, e->currency,
		       sizeof(r.u.event.currency));
		fn(ctx, &r);
		if (e->flags & (EVENT_TITLED | EVENT_DETACHED)) {
			/* its own title, its being detached */
			memset(&r.u, 0, sizeof(r.u));
			r.type = CORE_REC_EVENT_EDIT;
			r.u.edit.event_id = e->id;
			r.u.edit.location_id = e->location_id;
			r.u.edit.instructor_id = e->instructor_id;
			r.u.edit.start_at = e->start_at;
			r.u.edit.duration_min = e->duration_min;
			r.u.edit.capacity = e->capacity;
			r.u.edit.waitlist_capacity = e->waitlist_capacity;
			r.u.edit.price_cents = e->price_cents;
			memcpy(r.u.edit.currency, e->currency,
			       sizeof(r.u.edit.currency));
			if (e->flags & EVENT_TITLED)
				memcpy(r.u.edit.title, state__title(st, e),
				       sizeof(r.u.edit.title));
			if (e->flags & EVENT_DETACHED)
				r.u.edit.changed = CORE_EDIT_DETACHED;
			fn(ctx, &r);
		}
		if (e->status != CORE_EVENT_SCHEDULED) {
			memset(&r.u, 0, sizeof(r.u));
			r.type = CORE_REC_EVENT_PATCH;
			r.u.patch.event_id = e->id;
			r.u.patch.instructor_id = e->instructor_id;
			r.u.patch.capacity = e->capacity;
			r.u.patch.status = e->status;
			fn(ctx, &r);
		}
		for (uint32_t seq = 1; seq <= e->booking_seq; seq++) {
			const struct booking *b =
				booking_get(st, e->id << CORE_BOOKING_SEQ_BITS |
							seq);
			ASSERT(b);
			memset(&r, 0, sizeof(r));
			r.type = CORE_REC_BOOKING_RESTORE;
			r.at = b->created_at;
			r.u.booking.booking_id = b->id;
			r.u.booking.status = b->status;
			r.u.booking.hold_expires_at = b->hold_expires_at;
			r.u.booking.late = b->late;
			memcpy(r.u.booking.customer_id,
			       st->customers[b->customer_slot].id,
			       sizeof(r.u.booking.customer_id));
			fn(ctx, &r);
			state_dump_pay(st, e, b, fn, ctx);
		}
		state_dump_remind(st, e, fn, ctx);
	}
	state__idem_dump(st, fn, ctx);
}
