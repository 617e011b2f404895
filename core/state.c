/*
 * state.c: one shard's deterministic state machine.
 *
 * Decide, then apply. core_state_decide() reads the state and writes the
 * decision as an entry of records (record.c); it changes nothing that
 * matters. core_state_apply() is the only way the state changes, for live
 * decisions and log replay alike, so state = fold(entries).
 *
 * Layout (arrays of slots, slot 0 means "none"; each starts at
 * TABLE_COUNT_INIT and doubles as needed, table.c; the config's *_count_max
 * are ceilings that decisions check, answering CORE_LIMIT, so a request
 * that would pass one is refused before it is logged):
 *   events[]    id, series, counters, waitlist head/tail          ~112 B
 *   bookings[]  id, times, event/customer slots, waitlist links    48 B
 *   customers[] the external id string, list of its bookings       72 B
 *   maps        event id, booking id, (event, customer) -> active booking,
 *               customer hash, idempotency key (table.c, 24 B a slot)
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
#include "internal.h"
#include "tz.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#define DAY_MS INT64_C(86400000)
#define PROMOTION_COUNT_MAX 512 /* promotions one entry may carry */

struct event {
	uint64_t id, series_id, org_id, location_id, instructor_id;
	core_time start_at;
	uint64_t version;
	uint32_t duration_min, capacity, confirmed, held;
	uint32_t waitlist_len, waitlist_capacity, price_cents;
	uint32_t wl_head, wl_tail;
	uint32_t booking_seq;
	char currency[4];
	uint8_t status;
};

struct booking {
	uint64_t id;
	core_time created_at, hold_expires_at;
	uint32_t event_slot, customer_slot;
	uint32_t wl_prev, wl_next;
	uint32_t customer_next;
	uint8_t status;
};
_Static_assert(sizeof(struct booking) == 48, "booking footprint");

struct customer {
	char id[CORE_CUSTOMER_ID_SIZE_MAX + 1];
	uint32_t bookings_head;
};

struct hold {
	core_time expires;
	uint64_t booking_id;
	uint32_t slot;
};

struct idem_entry {
	uint64_t hi, lo, fingerprint;
	core_time created;
	struct idem_result result;
};

struct day_bucket {
	uint32_t *slots;
	uint32_t count, capacity;
	bool by_org; /* slots sorted by (org, start, id) */
};

struct core_state {
	struct core_config cfg;
	unsigned index, count;
	struct catalog *cat;
	bool owns_cat;

	struct event *events;
	uint32_t event_count, event_cap; /* held; slots of the array */
	uint32_t event_slots, event_free; /* slots used; freed ones' list */
	struct map event_by_id;

	struct booking *bookings;
	uint32_t booking_count, booking_cap;
	uint32_t booking_slots, booking_free;
	struct map booking_by_id;
	struct map active; /* event_slot << 32 | customer_slot -> booking */

	struct customer *customers;
	uint32_t customer_count, customer_cap;
	uint32_t customer_slots, customer_free;
	struct map customer_by_hash;

	struct hold *holds; /* binary min-heap, from index 0 */
	uint32_t hold_count, hold_cap;

	struct idem_entry *idem; /* ring over slots 1..idem_cap */
	uint32_t idem_head, idem_count, idem_cap;
	struct map idem_by_key;

	struct day_bucket *days;
	uint32_t day_count, day_capacity;
	int64_t day_min, day_max; /* of the buckets that exist */
	struct map day_by_key; /* UTC day + 2 -> bucket slot */

	uint32_t archived; /* events the last REC_ARCHIVE dropped */

	struct wbuf w;
	uint8_t entry[CORE_ENTRY_SIZE_MAX];
};

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

static uint64_t idem_map_key(uint64_t hi, uint64_t lo)
{
	uint64_t k = hi ^ (lo * UINT64_C(0x9E3779B97F4A7C15));
	return k ? k : 1;
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
	    table_grow((void **)&st->idem, &st->idem_cap,
		       cfg->idem_count_max < TABLE_COUNT_INIT
			       ? cfg->idem_count_max : TABLE_COUNT_INIT,
		       sizeof(*st->idem)) ||
	    map_init(&st->event_by_id, TABLE_COUNT_INIT) ||
	    map_init(&st->booking_by_id, TABLE_COUNT_INIT) ||
	    map_init(&st->active, TABLE_COUNT_INIT) ||
	    map_init(&st->customer_by_hash, TABLE_COUNT_INIT) ||
	    map_init(&st->idem_by_key, TABLE_COUNT_INIT) ||
	    map_init(&st->day_by_key, 256)) {
		core_state_free(st);
		return NULL;
	}
	/* The ring never holds more than its ceiling (the array may be
	 * larger: table_grow's first size). */
	if (st->idem_cap > cfg->idem_count_max)
		st->idem_cap = cfg->idem_count_max;
	st->w = (struct wbuf){ .data = st->entry, .capacity = sizeof(st->entry) };
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
	free(st->events);
	free(st->bookings);
	free(st->customers);
	free(st->holds);
	free(st->idem);
	map_free(&st->event_by_id);
	map_free(&st->booking_by_id);
	map_free(&st->active);
	map_free(&st->customer_by_hash);
	map_free(&st->idem_by_key);
	map_free(&st->day_by_key);
	free(st);
}

/* ---- look-ups ---- */

void core__state_prefetch(const core_state *st, const struct core_req *req)
{
	switch (req->op) {
	case CORE_OP_BOOK:
		map_prefetch(&st->event_by_id, req->event_id ? req->event_id : 1);
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
	default:
		break;
	}
}

static struct event *event_get(const core_state *st, uint64_t id)
{
	uint32_t slot = id ? map_get(&st->event_by_id, id) : 0;
	return slot ? &st->events[slot] : NULL;
}

static struct booking *booking_get(const core_state *st, uint64_t id)
{
	uint32_t slot = id ? map_get(&st->booking_by_id, id) : 0;
	return slot ? &st->bookings[slot] : NULL;
}

static uint32_t customer_find(const core_state *st, const char *id)
{
	uint32_t slot = map_get(&st->customer_by_hash,
				hash_bytes(id, strlen(id)));
	if (slot && strcmp(st->customers[slot].id, id) != 0)
		return UINT32_MAX; /* a 64-bit hash collision: refuse */
	return slot;
}

static uint64_t active_key(uint32_t event_slot, uint32_t customer_slot)
{
	return (uint64_t)event_slot << 32 | customer_slot;
}

static bool status_active(uint8_t s)
{
	return s == CORE_BOOKING_CONFIRMED || s == CORE_BOOKING_PENDING_PAYMENT ||
	       s == CORE_BOOKING_WAITLISTED;
}

bool core__customer_id_ok(const char *id)
{
	size_t n = strnlen(id, CORE_CUSTOMER_ID_SIZE_MAX + 1);

	if (n == 0 || n > CORE_CUSTOMER_ID_SIZE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == ':' || c == '@' || c == '-'))
			return false;
	}
	return true;
}

static uint32_t waitlist_position(const core_state *st, const struct booking *b)
{
	const struct event *e = &st->events[b->event_slot];
	uint32_t pos = 1;

	for (uint32_t s = e->wl_head; s; s = st->bookings[s].wl_next, pos++)
		if (&st->bookings[s] == b)
			return pos;
	ASSERT(!"waitlisted booking missing from its waitlist");
}

static void booking_view(const core_state *st, const struct booking *b,
			 struct core_booking_view *out)
{
	memset(out, 0, sizeof(*out));
	out->id = b->id;
	out->event_id = st->events[b->event_slot].id;
	memcpy(out->customer_id, st->customers[b->customer_slot].id,
	       sizeof(out->customer_id));
	out->status = b->status;
	out->position = b->status == CORE_BOOKING_WAITLISTED
				? waitlist_position(st, b)
				: 0;
	out->hold_expires_at = b->status == CORE_BOOKING_PENDING_PAYMENT
				       ? b->hold_expires_at
				       : 0;
	out->created_at = b->created_at;
}

static void event_view(const core_state *st, const struct event *e,
		       struct core_event_view *out)
{
	memset(out, 0, sizeof(*out));
	out->id = e->id;
	out->series_id = e->series_id;
	out->org_id = e->org_id;
	out->location_id = e->location_id;
	out->instructor_id = e->instructor_id;
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
	out->version = e->version;
}

enum core_code core_state_event(const core_state *st, uint64_t event_id,
				struct core_event_view *out)
{
	const struct event *e = event_get(st, event_id);

	if (!e)
		return CORE_NO_EVENT;
	event_view(st, e, out);
	return CORE_OK;
}

enum core_code core_state_booking(const core_state *st, uint64_t booking_id,
				  struct core_booking_view *out)
{
	const struct booking *b = booking_get(st, booking_id);

	if (!b)
		return CORE_NO_BOOKING;
	booking_view(st, b, out);
	return CORE_OK;
}

/* ---- idempotency ---- */

static struct idem_entry *idem_find(const core_state *st, uint64_t hi,
				    uint64_t lo)
{
	uint32_t slot = map_get(&st->idem_by_key, idem_map_key(hi, lo));
	struct idem_entry *e = slot ? &st->idem[slot] : NULL;

	return e && e->hi == hi && e->lo == lo ? e : NULL;
}

/* Drops entries older than the retention, oldest first. */
static void idem_expire(core_state *st, core_time now)
{
	uint32_t max = st->idem_cap;

	while (st->idem_count) {
		uint32_t slot = st->idem_head + 1;
		struct idem_entry *e = &st->idem[slot];
		if (e->created + st->cfg.idem_retention_ms > now)
			break;
		if (map_get(&st->idem_by_key, idem_map_key(e->hi, e->lo)) == slot)
			map_del(&st->idem_by_key, idem_map_key(e->hi, e->lo));
		st->idem_head = (st->idem_head + 1) % max;
		st->idem_count--;
	}
}

enum core_code core__idem_lookup(core_state *st, const struct core_idem *k,
				 core_time now, struct core_resp *resp)
{
	const struct idem_entry *e = idem_find(st, k->hi, k->lo);

	if (!e || e->created + st->cfg.idem_retention_ms <= now)
		return CORE_OK;
	if (e->fingerprint != k->fingerprint)
		return CORE_IDEM_MISMATCH;
	resp->replayed = true;
	resp->lsn = e->result.lsn; /* the first answer waits for this too */
	resp->op = e->result.op;
	resp->code = e->result.code;
	resp->count = e->result.count;
	resp->id = e->result.id;
	resp->has_promoted = e->result.has_promoted;
	if (e->result.op == CORE_OP_EVENT_PATCH) {
		resp->event = e->result.event;
	} else {
		resp->booking = e->result.booking;
		resp->promoted = e->result.promoted;
	}
	return CORE_OK;
}

void core__idem_result(const struct core_resp *resp, struct idem_result *out)
{
	memset(out, 0, sizeof(*out));
	out->lsn = resp->lsn;
	out->op = (uint8_t)resp->op;
	out->code = (uint8_t)resp->code;
	out->count = resp->count;
	out->id = resp->id;
	out->has_promoted = resp->has_promoted;
	if (resp->op == CORE_OP_EVENT_PATCH) {
		out->event = resp->event;
	} else {
		out->booking = resp->booking;
		if (resp->has_promoted)
			out->promoted = resp->promoted;
	}
}

/* A full ring below its ceiling doubles: its entries move, oldest first,
 * to slots 1..count of a new array (head 0), the map follows them. */
static int idem_grow(core_state *st)
{
	uint32_t cap = st->idem_cap * 2, old_cap = st->idem_cap;
	struct idem_entry *old = st->idem, *to;

	if (cap > st->cfg.idem_count_max)
		cap = st->cfg.idem_count_max;
	if (cap <= old_cap)
		return -ENOSPC;
	to = table_calloc((size_t)cap + 1, sizeof(*to));
	if (!to)
		return -ENOMEM;
	for (uint32_t k = 0; k < st->idem_count; k++) {
		uint32_t slot = (st->idem_head + k) % old_cap + 1;
		uint64_t key = idem_map_key(old[slot].hi, old[slot].lo);
		to[k + 1] = old[slot];
		/* an existing key: re-pointed, the map does not grow */
		if (map_get(&st->idem_by_key, key) == slot)
			ASSERT(map_put(&st->idem_by_key, key, k + 1) == 0);
	}
	free(old);
	st->idem = to;
	st->idem_cap = cap;
	st->idem_head = 0;
	return 0;
}

void core__idem_store(core_state *st, const struct core_idem *k,
		      core_time created, const struct idem_result *res)
{
	uint32_t max;
	uint64_t key = idem_map_key(k->hi, k->lo);
	struct idem_entry *e = idem_find(st, k->hi, k->lo);
	uint32_t slot;

	/* The same key again, from its own entry and from the runtime's
	 * answer (which knows the log position): kept once. */
	if (e && e->fingerprint == k->fingerprint && e->created == created) {
		if (res->lsn)
			e->result.lsn = res->lsn;
		return;
	}
	idem_expire(st, created);
	if (st->idem_count == st->idem_cap)
		(void)idem_grow(st); /* at the ceiling or out of memory: */
	max = st->idem_cap;
	if (st->idem_count == max) {
		/* Full of live keys: the oldest goes early. Sized by config so
		 * that this does not happen within the retention. */
		struct idem_entry *old = &st->idem[st->idem_head + 1];
		if (map_get(&st->idem_by_key, idem_map_key(old->hi, old->lo)) ==
		    st->idem_head + 1)
			map_del(&st->idem_by_key, idem_map_key(old->hi, old->lo));
		st->idem_head = (st->idem_head + 1) % max;
		st->idem_count--;
	}
	slot = (st->idem_head + st->idem_count) % max + 1;
	e = &st->idem[slot];
	e->hi = k->hi;
	e->lo = k->lo;
	e->fingerprint = k->fingerprint;
	e->created = created;
	e->result = *res;
	st->idem_count++;
	if (map_put(&st->idem_by_key, key, slot) != 0) {
		/* Out of memory for the map: the key is not remembered (the
		 * newest entry goes again), the state stays consistent. */
		st->idem_count--;
		memset(e, 0, sizeof(*e));
	}
}

/* ---- deciding ---- */

static void emit(core_state *st, const struct rec *r)
{
	rec_encode(&st->w, r);
}

static void emit_set(core_state *st, core_time at, uint64_t booking_id,
		     uint8_t status, core_time hold_expires_at)
{
	struct rec r = { .type = REC_BOOKING_SET, .at = at };
	r.u.booking.booking_id = booking_id;
	r.u.booking.status = status;
	r.u.booking.hold_expires_at = hold_expires_at;
	emit(st, &r);
}

static void emit_notify(core_state *st, core_time at, uint64_t booking_id,
			uint8_t kind)
{
	struct rec r = { .type = REC_NOTIFY, .at = at };
	r.u.notify.booking_id = booking_id;
	r.u.notify.kind = kind;
	emit(st, &r);
}

/* Promote up to `seats` from the head of e's waitlist (a hold on a priced
 * event, a confirmed seat on a free one). The first promoted goes to *first. */
static uint32_t promote(core_state *st, const struct event *e, uint32_t seats,
			core_time now, struct core_booking_view *first)
{
	uint32_t n = 0;

	if (e->status != CORE_EVENT_SCHEDULED)
		return 0;
	for (uint32_t s = e->wl_head; s && n < seats; s = st->bookings[s].wl_next) {
		const struct booking *b = &st->bookings[s];
		bool hold = e->price_cents > 0;
		uint8_t status = hold ? CORE_BOOKING_PENDING_PAYMENT
				      : CORE_BOOKING_CONFIRMED;
		core_time expires = hold ? now + st->cfg.hold_ms : 0;

		emit_set(st, now, b->id, status, expires);
		emit_notify(st, now, b->id, CORE_NOTIFY_PROMOTED);
		if (n == 0 && first) {
			booking_view(st, b, first);
			first->status = status;
			first->position = 0;
			first->hold_expires_at = expires;
		}
		n++;
	}
	return n;
}

static uint32_t seats_free(const struct event *e)
{
	uint32_t taken = e->confirmed + e->held;
	return e->capacity > taken ? e->capacity - taken : 0;
}

/* A refusal at a configured ceiling: which one (resp.id) and its value
 * (resp.count), for the answer's message (core_limit_message). */
static enum core_code limit(struct core_resp *resp, enum core_limit kind,
			    uint64_t value)
{
	resp->id = kind;
	resp->count = (uint32_t)value;
	return CORE_LIMIT;
}

static enum core_code decide_book(core_state *st, const struct core_req *req,
				  struct core_resp *resp)
{
	const struct event *e = event_get(st, req->event_id);
	uint32_t cust;
	struct rec r = { .type = REC_BOOKING_NEW, .at = req->now };
	bool hold;

	if (!e)
		return CORE_NO_EVENT;
	if (!core__customer_id_ok(req->customer_id))
		return CORE_INVALID;
	if (e->status != CORE_EVENT_SCHEDULED || e->start_at <= req->now)
		return CORE_NOT_BOOKABLE;
	cust = customer_find(st, req->customer_id);
	if (cust == UINT32_MAX)
		return CORE_FULL;
	if (cust && map_get(&st->active,
			    active_key((uint32_t)(e - st->events), cust)))
		return CORE_ALREADY_BOOKED;
	if (e->booking_seq == CORE_BOOKING_SEQ_MAX)
		return limit(resp, CORE_LIMIT_EVENT_BOOKINGS, CORE_BOOKING_SEQ_MAX);
	if (st->booking_count >= st->cfg.booking_count_max)
		return limit(resp, CORE_LIMIT_BOOKINGS, st->cfg.booking_count_max);
	if (!cust && st->customer_count >= st->cfg.customer_count_max)
		return limit(resp, CORE_LIMIT_CUSTOMERS,
			     st->cfg.customer_count_max);

	r.u.booking.booking_id = e->id << CORE_BOOKING_SEQ_BITS |
				 (e->booking_seq + 1);
	memcpy(r.u.booking.customer_id, req->customer_id,
	       sizeof(r.u.booking.customer_id));
	hold = e->price_cents > 0 && req->u.book.payment != CORE_PAY_NONE;
	if (seats_free(e) > 0) {
		r.u.booking.status = hold ? CORE_BOOKING_PENDING_PAYMENT
					  : CORE_BOOKING_CONFIRMED;
		r.u.booking.hold_expires_at = hold ? req->now + st->cfg.hold_ms : 0;
	} else if (e->waitlist_len < e->waitlist_capacity) {
		r.u.booking.status = CORE_BOOKING_WAITLISTED;
	} else {
		return CORE_EVENT_FULL;
	}
	emit(st, &r);
	if (r.u.booking.status == CORE_BOOKING_CONFIRMED)
		emit_notify(st, req->now, r.u.booking.booking_id,
			    CORE_NOTIFY_BOOKING_CONFIRMED);

	struct core_booking_view *v = &resp->booking;
	v->id = r.u.booking.booking_id;
	v->event_id = e->id;
	memcpy(v->customer_id, req->customer_id, sizeof(v->customer_id));
	v->status = r.u.booking.status;
	v->position = v->status == CORE_BOOKING_WAITLISTED ? e->waitlist_len + 1
							  : 0;
	v->hold_expires_at = r.u.booking.hold_expires_at;
	v->created_at = req->now;
	return CORE_OK;
}

/* A booking leaves: cancelled, hold expired, payment failed. Its seat (if it
 * held one) goes to the head of the waitlist in the same entry. */
static void decide_release(core_state *st, const struct booking *b,
			   uint8_t status, uint8_t notify, core_time now,
			   struct core_resp *resp)
{
	const struct event *e = &st->events[b->event_slot];
	bool seat = b->status != CORE_BOOKING_WAITLISTED;

	emit_set(st, now, b->id, status, 0);
	emit_notify(st, now, b->id, notify);
	booking_view(st, b, &resp->booking);
	resp->booking.status = status;
	resp->booking.position = 0;
	resp->booking.hold_expires_at = 0;
	if (seat) {
		uint32_t n = promote(st, e, seats_free(e) + 1, now,
				     &resp->promoted);
		resp->has_promoted = n > 0;
		resp->count = n;
	}
}

static enum core_code decide_cancel(core_state *st, const struct core_req *req,
				    struct core_resp *resp)
{
	const struct booking *b = booking_get(st, req->booking_id);

	if (!b)
		return CORE_NO_BOOKING;
	/* A customer cancelling for itself (req.customer_id set, e.g. from a
	 * JWT): another customer's booking is as good as unknown. */
	if (req->customer_id[0] != '\0' &&
	    strncmp(st->customers[b->customer_slot].id, req->customer_id,
		    sizeof(req->customer_id)) != 0)
		return CORE_NO_BOOKING;
	if (!status_active(b->status))
		return CORE_NOT_ACTIVE;
	decide_release(st, b, CORE_BOOKING_CANCELLED, CORE_NOTIFY_CANCELLED,
		       req->now, resp);
	return CORE_OK;
}

static enum core_code decide_pay(core_state *st, const struct core_req *req,
				 struct core_resp *resp)
{
	const struct booking *b = booking_get(st, req->booking_id);
	const struct event *e;
	struct rec r = { .type = REC_PAYMENT, .at = req->now };
	enum core_code code = CORE_OK;

	if (!b)
		return CORE_NO_BOOKING;
	e = &st->events[b->event_slot];
	if (b->status != CORE_BOOKING_PENDING_PAYMENT)
		code = CORE_NOT_PENDING;
	else if (req->u.pay.succeeded &&
		 (req->u.pay.amount_cents != e->price_cents ||
		  strncmp(req->u.pay.currency, e->currency, 4) != 0))
		code = CORE_PAYMENT_MISMATCH;
	r.u.payment.booking_id = b->id;
	r.u.payment.amount_cents = req->u.pay.amount_cents;
	r.u.payment.payment_ref = req->u.pay.payment_ref;
	memcpy(r.u.payment.currency, req->u.pay.currency, 4);
	r.u.payment.currency[3] = '\0';
	r.u.payment.succeeded = req->u.pay.succeeded;
	r.u.payment.code = (uint8_t)code;
	emit(st, &r); /* recorded whatever the outcome, flagged by its code */
	if (code != CORE_OK) {
		booking_view(st, b, &resp->booking);
		return code;
	}
	if (req->u.pay.succeeded) {
		emit_set(st, req->now, b->id, CORE_BOOKING_CONFIRMED, 0);
		emit_notify(st, req->now, b->id, CORE_NOTIFY_BOOKING_CONFIRMED);
		booking_view(st, b, &resp->booking);
		resp->booking.status = CORE_BOOKING_CONFIRMED;
		resp->booking.hold_expires_at = 0;
	} else {
		decide_release(st, b, CORE_BOOKING_PAYMENT_FAILED,
			       CORE_NOTIFY_CANCELLED, req->now, resp);
	}
	return CORE_OK;
}

static enum core_code decide_patch(core_state *st, const struct core_req *req,
				   struct core_resp *resp)
{
	const struct event *e = event_get(st, req->event_id);
	struct rec r = { .type = REC_EVENT_PATCH, .at = req->now };
	uint32_t taken, seats = 0;

	if (!e)
		return CORE_NO_EVENT;
	if (req->u.patch.capacity > CORE_CAPACITY_MAX)
		return CORE_INVALID;
	if (req->u.patch.instructor_id) {
		const struct cat_series *s = catalog_series(st->cat, e->series_id);
		if (!catalog_has(st->cat, CORE_OP_INSTRUCTOR_CREATE,
				 req->u.patch.instructor_id) ||
		    (s && st->cat->instructors[req->u.patch.instructor_id - 1]
				    .org_id != s->spec.org_id))
			return CORE_NO_INSTRUCTOR;
	}
	if (e->status == CORE_EVENT_CANCELLED &&
	    (req->u.patch.capacity >= 0 || req->u.patch.instructor_id))
		return CORE_NOT_BOOKABLE;
	taken = e->confirmed + e->held;
	r.u.patch.event_id = e->id;
	r.u.patch.capacity = req->u.patch.capacity >= 0
				     ? (uint32_t)req->u.patch.capacity
				     : e->capacity;
	r.u.patch.instructor_id = req->u.patch.instructor_id
					  ? req->u.patch.instructor_id
					  : e->instructor_id;
	r.u.patch.status = req->u.patch.cancel ? CORE_EVENT_CANCELLED : e->status;
	if (r.u.patch.status == CORE_EVENT_SCHEDULED && r.u.patch.capacity < taken)
		return CORE_CAPACITY_BELOW_TAKEN;
	if (r.u.patch.status == CORE_EVENT_SCHEDULED &&
	    r.u.patch.capacity > taken) {
		seats = r.u.patch.capacity - taken;
		if (seats > e->waitlist_len)
			seats = e->waitlist_len;
		if (seats > PROMOTION_COUNT_MAX)
			return CORE_FULL; /* raise in smaller steps */
	}
	emit(st, &r);
	/* Cancelling the event cancels its active bookings: implied by the
	 * record, applied in apply_patch. Raising capacity promotes. */
	resp->count = promote(st, e, seats, req->now, NULL);
	/* The answer is the event as the entry leaves it (apply_patch and
	 * booking_move count one version per change). */
	struct core_event_view *v = &resp->event;
	event_view(st, e, v);
	v->capacity = r.u.patch.capacity;
	v->instructor_id = r.u.patch.instructor_id;
	v->version += 1;
	if (r.u.patch.status == CORE_EVENT_CANCELLED &&
	    e->status == CORE_EVENT_SCHEDULED) {
		v->version += e->confirmed + e->held + e->waitlist_len;
		v->booked = v->held = v->waitlist_length = 0;
	} else {
		v->version += resp->count;
		v->waitlist_length -= resp->count;
		if (e->price_cents)
			v->held += resp->count;
		else
			v->booked += resp->count;
	}
	v->status = r.u.patch.status;
	return CORE_OK;
}

static enum core_code decide(core_state *st, const struct core_req *req,
			     struct core_resp *resp)
{
	enum core_code code;

	switch (req->op) {
	case CORE_OP_BOOK:
		return decide_book(st, req, resp);
	case CORE_OP_CANCEL:
		return decide_cancel(st, req, resp);
	case CORE_OP_PAY:
		return decide_pay(st, req, resp);
	case CORE_OP_EVENT_PATCH:
		return decide_patch(st, req, resp);
	case CORE_OP_ORG_CREATE:
	case CORE_OP_LOCATION_CREATE:
	case CORE_OP_INSTRUCTOR_CREATE:
	case CORE_OP_CUSTOMER_UPSERT:
	case CORE_OP_SERIES_CREATE:
	case CORE_OP_ARCHIVE:
		if (!st->owns_cat)
			return CORE_INVALID;
		return catalog_decide(st->cat, req, resp, &st->w);
	case CORE_OP_GENERATE:
		if (!st->owns_cat)
			return CORE_INVALID;
		code = catalog_generate(st->cat, req->u.generate.series_id,
					req->u.generate.until, req->now, resp,
					&st->w);
		/* A chunk is one entry: it fits whole, or is refused. */
		if (code == CORE_OK &&
		    (uint64_t)st->event_count + resp->count >
			    st->cfg.event_count_max) {
			st->w.size = 0;
			resp->more = false;
			return limit(resp, CORE_LIMIT_EVENTS,
				     st->cfg.event_count_max);
		}
		return code;
	default:
		return CORE_INVALID;
	}
}

static bool op_mutates(enum core_op op)
{
	return op == CORE_OP_BOOK || op == CORE_OP_CANCEL || op == CORE_OP_PAY ||
	       op == CORE_OP_EVENT_PATCH || op == CORE_OP_ORG_CREATE ||
	       op == CORE_OP_LOCATION_CREATE || op == CORE_OP_INSTRUCTOR_CREATE ||
	       op == CORE_OP_CUSTOMER_UPSERT || op == CORE_OP_SERIES_CREATE ||
	       op == CORE_OP_GENERATE || op == CORE_OP_ARCHIVE;
}

enum core_code core__state_decide_nokey(core_state *st,
					const struct core_req *req,
					struct core_resp *resp,
					const void **entry, size_t *entry_size)
{
	enum core_code code;
	size_t records_end;

	memset(resp, 0, sizeof(*resp));
	resp->op = req->op;
	st->w.size = 0;
	st->w.overflow = false;
	code = decide(st, req, resp);
	resp->code = code;
	records_end = st->w.size;
	if (st->w.overflow) {
		resp->code = code = CORE_FULL;
		records_end = 0;
	}
	/* A decision that made records is kept under its key, with its first
	 * answer; a refusal made none and is decided afresh on a retry. */
	if (records_end && core_idem_present(&req->idem)) {
		struct rec r = { .type = REC_IDEM, .at = req->now };
		r.u.idem.hi = req->idem.hi;
		r.u.idem.lo = req->idem.lo;
		r.u.idem.fingerprint = req->idem.fingerprint;
		core__idem_result(resp, &r.u.idem.result);
		emit(st, &r);
		if (st->w.overflow) {
			resp->code = code = CORE_FULL;
			records_end = 0;
		}
	}
	*entry = st->w.data;
	*entry_size = records_end ? st->w.size : 0;
	return code;
}

enum core_code core_state_decide(core_state *st, const struct core_req *req,
				 struct core_resp *resp, const void **entry,
				 size_t *entry_size)
{
	*entry = NULL;
	*entry_size = 0;
	if (!op_mutates(req->op)) {
		memset(resp, 0, sizeof(*resp));
		resp->op = req->op;
		return resp->code = CORE_INVALID;
	}
	if (core_idem_present(&req->idem)) {
		enum core_code code;
		memset(resp, 0, sizeof(*resp));
		code = core__idem_lookup(st, &req->idem, req->now, resp);
		if (code != CORE_OK || resp->replayed) {
			if (code != CORE_OK) {
				memset(resp, 0, sizeof(*resp));
				resp->op = req->op;
				resp->code = code;
			}
			return resp->code;
		}
	}
	return core__state_decide_nokey(st, req, resp, entry, entry_size);
}

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

static void hold_pop(core_state *st)
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

bool core__state_expire_one(core_state *st, core_time now, const void **entry,
			    size_t *entry_size)
{
	struct core_resp resp;

	while (st->hold_count) {
		const struct hold *h = &st->holds[0];
		const struct booking *b = &st->bookings[h->slot];
		if (b->id != h->booking_id ||
		    b->status != CORE_BOOKING_PENDING_PAYMENT ||
		    b->hold_expires_at != h->expires) {
			hold_pop(st); /* stale: the booking moved on */
			continue;
		}
		if (h->expires > now)
			return false;
		memset(&resp, 0, sizeof(resp));
		st->w.size = 0;
		st->w.overflow = false;
		decide_release(st, b, CORE_BOOKING_EXPIRED,
			       CORE_NOTIFY_HOLD_EXPIRED, now, &resp);
		ASSERT(!st->w.overflow);
		*entry = st->w.data;
		*entry_size = st->w.size;
		return true;
	}
	return false;
}

/* ---- applying ---- */

static struct day_bucket *day_bucket(core_state *st, core_time start_at,
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
 * REC_ARCHIVE (before): every shard drops its events that ended before
 * `before` (start + duration <= before), with their bookings (any status),
 * waitlists, the (event, customer) index, the customers left without a
 * booking, and the idempotency keys created before `before` (past their
 * 24 h retention whenever the archive is a day or more back). Payment
 * holds of dropped bookings go stale in the heap (dropped when seen).
 * Freed slots go to free lists (an id of 0 marks them) and are used again
 * first, so memory stays what the studio holds. Nothing is allocated: an
 * archive cannot fail halfway; replaying it gives the same state.
 * Dropped events read as unknown (CORE_NO_EVENT, CORE_NO_BOOKING). */

static void customer_drop_booking(core_state *st, uint32_t cust,
				  uint32_t bslot)
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
	struct day_bucket *d = day_bucket(st, e->start_at, false);

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
				map_del(&st->active,
					active_key(slot, b->customer_slot));
			customer_drop_booking(st, b->customer_slot, bslot);
			map_del(&st->booking_by_id, id);
			memset(b, 0, sizeof(*b));
			b->customer_next = st->booking_free;
			st->booking_free = bslot;
			st->booking_count--;
		}
		day_drop(st, e, slot);
		ASSERT(map_del(&st->event_by_id, e->id));
		memset(e, 0, sizeof(*e));
		e->wl_head = st->event_free;
		st->event_free = slot;
		st->event_count--;
		dropped++;
	}
	/* Keys created before the cut: idem_expire's "older than the
	 * retention" with now = before + retention - 1. */
	idem_expire(st, before + st->cfg.idem_retention_ms - 1);
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
	struct day_bucket *d = day_bucket(st, start_at, true);

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

/* Room for events, bookings (each may bring a new customer) and holds. */
static int state_reserve(core_state *st, uint32_t events, uint32_t bookings,
			 uint32_t holds)
{
	if (table_grow((void **)&st->events, &st->event_cap,
		       (uint64_t)st->event_slots + events, sizeof(*st->events)) ||
	    map_reserve(&st->event_by_id, events) ||
	    table_grow((void **)&st->bookings, &st->booking_cap,
		       (uint64_t)st->booking_slots + bookings,
		       sizeof(*st->bookings)) ||
	    map_reserve(&st->booking_by_id, bookings) ||
	    map_reserve(&st->active, bookings) ||
	    table_grow((void **)&st->customers, &st->customer_cap,
		       (uint64_t)st->customer_slots + bookings,
		       sizeof(*st->customers)) ||
	    map_reserve(&st->customer_by_hash, bookings) ||
	    table_grow((void **)&st->holds, &st->hold_cap,
		       (uint64_t)st->hold_count + holds, sizeof(*st->holds)))
		return -ENOMEM;
	return 0;
}

static bool owns_event(const core_state *st, uint64_t event_id);

int core__state_reserve(core_state *st, const void *entry, size_t entry_size)
{
	const uint8_t *p = entry;
	uint32_t events = 0, bookings = 0, holds = 0;
	struct rec r;
	size_t pos = 0;

	while (pos < entry_size) {
		if (rec_decode(p, entry_size, &pos, &r) != 0)
			return -EINVAL;
		if (!owns_event(st, rec_event_id(&r)))
			continue;
		if (r.type == REC_EVENT_CREATE)
			events++;
		else if (r.type == REC_BOOKING_NEW ||
			 r.type == REC_BOOKING_RESTORE)
			bookings++;
		if ((r.type == REC_BOOKING_NEW || r.type == REC_BOOKING_SET ||
		     r.type == REC_BOOKING_RESTORE) &&
		    r.u.booking.status == CORE_BOOKING_PENDING_PAYMENT)
			holds++;
	}
	if (events) { /* each event's day, with room for all of them */
		for (pos = 0; pos < entry_size;) {
			ASSERT(rec_decode(p, entry_size, &pos, &r) == 0);
			if (r.type == REC_EVENT_CREATE &&
			    owns_event(st, r.u.event.id) &&
			    day_reserve(st, r.u.event.start_at, events) != 0)
				return -ENOMEM;
		}
	}
	return state_reserve(st, events, bookings, holds);
}

static int apply_event_create(core_state *st, const struct rec *r)
{
	struct day_bucket *d;
	struct event *e;
	uint32_t slot;

	if (r->u.event.id == 0 || r->u.event.id > CORE_EVENT_ID_MAX ||
	    event_get(st, r->u.event.id))
		return -EINVAL;
	if (state_reserve(st, 1, 0, 0) != 0 ||
	    day_reserve(st, r->u.event.start_at, 1) != 0)
		return -ENOMEM;
	d = day_bucket(st, r->u.event.start_at, false);
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
	case CORE_BOOKING_CONFIRMED:
		e->confirmed--;
		break;
	case CORE_BOOKING_PENDING_PAYMENT:
		e->held--;
		break;
	case CORE_BOOKING_WAITLISTED:
		waitlist_remove(st, e, b);
		break;
	}
	b->status = status;
	b->hold_expires_at = hold_expires_at;
	switch (status) {
	case CORE_BOOKING_CONFIRMED:
		e->confirmed++;
		break;
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
		e->waitlist_len++;
		break;
	default:
		map_del(&st->active, active_key(b->event_slot, b->customer_slot));
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

	if (e->status != CORE_EVENT_SCHEDULED && (takes || to == CORE_BOOKING_WAITLISTED))
		return false;
	if (takes && !took && seats_free(e) == 0)
		return false;
	if (to == CORE_BOOKING_WAITLISTED && e->waitlist_len >= e->waitlist_capacity)
		return false;
	return true;
}

static bool status_valid(uint8_t s)
{
	return s >= CORE_BOOKING_CONFIRMED && s <= CORE_BOOKING_PAYMENT_FAILED;
}

/* BOOKING_NEW: a new booking in an active status. BOOKING_RESTORE (from a
 * snapshot): a booking as it was, in any status, bookings of an event in
 * sequence order (so waitlisted ones rejoin in FIFO order). */
static int apply_booking_new(core_state *st, const struct rec *r)
{
	uint64_t id = r->u.booking.booking_id;
	struct event *e = event_get(st, core_booking_event(id));
	uint8_t status = r->u.booking.status;
	bool live = status_active(status);
	uint32_t eslot, cust, slot;
	struct booking *b;

	if (!e || (id & CORE_BOOKING_SEQ_MAX) != e->booking_seq + 1 ||
	    !status_valid(status) ||
	    (r->type == REC_BOOKING_NEW && !live) ||
	    (live && !move_fits(e, CORE_BOOKING_NONE, status)) ||
	    !core__customer_id_ok(r->u.booking.customer_id))
		return -EINVAL;
	eslot = (uint32_t)(e - st->events);
	cust = customer_find(st, r->u.booking.customer_id);
	if (cust == UINT32_MAX ||
	    (live && cust && map_get(&st->active, active_key(eslot, cust))))
		return -EINVAL;
	if (state_reserve(st, 0, 1, status == CORE_BOOKING_PENDING_PAYMENT) != 0)
		return -ENOMEM;
	if (!cust) {
		cust = slot_take(&st->customer_slots, &st->customer_free,
				 &st->customers[st->customer_free].bookings_head);
		st->customer_count++;
		memcpy(st->customers[cust].id, r->u.booking.customer_id,
		       sizeof(st->customers[cust].id));
		st->customers[cust].bookings_head = 0;
		ASSERT(map_put(&st->customer_by_hash,
			       hash_bytes(r->u.booking.customer_id,
					  strlen(r->u.booking.customer_id)),
			       cust) == 0);
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
		ASSERT(map_put(&st->active, active_key(eslot, cust), slot) == 0);
		booking_move(st, b, status, r->u.booking.hold_expires_at);
	} else {
		b->status = status;
	}
	return 0;
}

static int apply_booking_set(core_state *st, const struct rec *r)
{
	struct booking *b = booking_get(st, r->u.booking.booking_id);
	uint8_t to = r->u.booking.status;

	if (!b || !status_active(b->status) || !status_valid(to) ||
	    to == CORE_BOOKING_WAITLISTED || to == b->status ||
	    !move_fits(&st->events[b->event_slot], b->status, to))
		return -EINVAL;
	booking_move(st, b, to, r->u.booking.hold_expires_at);
	return 0;
}

static int apply_patch(core_state *st, const struct rec *r)
{
	struct event *e = event_get(st, r->u.patch.event_id);
	uint8_t status = r->u.patch.status;

	if (!e ||
	    (status != CORE_EVENT_SCHEDULED && status != CORE_EVENT_CANCELLED) ||
	    (e->status == CORE_EVENT_CANCELLED && status == CORE_EVENT_SCHEDULED) ||
	    (status == CORE_EVENT_SCHEDULED &&
	     r->u.patch.capacity < e->confirmed + e->held))
		return -EINVAL;
	e->capacity = r->u.patch.capacity;
	e->instructor_id = r->u.patch.instructor_id;
	e->version++;
	if (status == CORE_EVENT_CANCELLED && e->status != CORE_EVENT_CANCELLED) {
		e->status = CORE_EVENT_CANCELLED;
		for (uint32_t seq = 1; seq <= e->booking_seq; seq++) {
			struct booking *b = booking_get(
				st, e->id << CORE_BOOKING_SEQ_BITS | seq);
			ASSERT(b);
			if (status_active(b->status))
				booking_move(st, b, CORE_BOOKING_CANCELLED, 0);
		}
		ASSERT(e->confirmed == 0 && e->held == 0 && e->waitlist_len == 0);
	}
	return 0;
}

static bool owns_event(const core_state *st, uint64_t event_id)
{
	return core__shard_of(event_id, st->count) == st->index;
}

static int apply_rec(core_state *st, const struct rec *r)
{
	uint64_t event_id = rec_event_id(r);

	if (r->type == REC_ARCHIVE) { /* every shard, its own events */
		st->archived = state_archive(st, r->u.archive.before);
		return 0;
	}
	if (r->type == REC_IDEM) {
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
	if (r->type == REC_EVENT_CREATE && st->owns_cat) {
		int rc = catalog_apply(st->cat, r);
		if (rc)
			return rc;
	}
	if (!owns_event(st, event_id))
		return 0;
	switch (r->type) {
	case REC_EVENT_CREATE:
		return apply_event_create(st, r);
	case REC_EVENT_PATCH:
		return apply_patch(st, r);
	case REC_BOOKING_NEW:
	case REC_BOOKING_RESTORE:
		return apply_booking_new(st, r);
	case REC_BOOKING_SET:
		return apply_booking_set(st, r);
	case REC_PAYMENT: /* facts for the replicator and the notifier */
		return booking_get(st, r->u.payment.booking_id) ? 0 : -EINVAL;
	case REC_NOTIFY:
		return booking_get(st, r->u.notify.booking_id) ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

int core_state_apply(core_state *st, const void *entry, size_t entry_size)
{
	const uint8_t *p = entry;
	struct rec r;
	size_t pos = 0;
	int rc;

	if (entry_size > CORE_ENTRY_SIZE_MAX)
		return -EINVAL;
	/* Pass 1: every record decodes, or nothing is applied; and room for
	 * what the entry adds, or nothing is applied. */
	while (pos < entry_size)
		if (rec_decode(p, entry_size, &pos, &r) != 0)
			return -EINVAL;
	rc = core__state_reserve(st, entry, entry_size);
	if (rc)
		return rc;
	st->archived = 0;
	/* Pass 2: apply. A record that does not fit the state means the log
	 * and the state diverged: the caller must stop (-EUCLEAN). */
	for (pos = 0; pos < entry_size;) {
		ASSERT(rec_decode(p, entry_size, &pos, &r) == 0);
		rc = apply_rec(st, &r);
		if (rc)
			return rc == -EINVAL ? -EUCLEAN : rc;
	}
	return 0;
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
	if (q->after_id && (e->start_at < q->after_start ||
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
	const struct event *x = &((const core_state *)arg)->events[*(const uint32_t *)a];
	const struct event *y = &((const core_state *)arg)->events[*(const uint32_t *)b];

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
		struct day_bucket *d = day_bucket((core_state *)st, day * DAY_MS,
						  false);
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
		event_view(st, &st->events[slots[i]], &out[i]);
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
		booking_view(st, &st->bookings[s], &out[n++]);
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
		map_bytes(&st->active) + map_bytes(&st->customer_by_hash) +
		map_bytes(&st->idem_by_key);
}

void core__state_dump(const core_state *st, rec_sink fn, void *ctx)
{
	struct rec r;

	for (uint32_t slot = 1; slot <= st->event_slots; slot++) {
		const struct event *e = &st->events[slot];

		if (e->id == 0)
			continue; /* free (archived) */
		memset(&r, 0, sizeof(r));
		r.type = REC_EVENT_CREATE;
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
		memcpy(r.u.event.currency, e->currency, sizeof(r.u.event.currency));
		fn(ctx, &r);
		if (e->status != CORE_EVENT_SCHEDULED) {
			memset(&r.u, 0, sizeof(r.u));
			r.type = REC_EVENT_PATCH;
			r.u.patch.event_id = e->id;
			r.u.patch.instructor_id = e->instructor_id;
			r.u.patch.capacity = e->capacity;
			r.u.patch.status = e->status;
			fn(ctx, &r);
		}
		for (uint32_t seq = 1; seq <= e->booking_seq; seq++) {
			const struct booking *b =
				booking_get(st, e->id << CORE_BOOKING_SEQ_BITS | seq);
			ASSERT(b);
			memset(&r, 0, sizeof(r));
			r.type = REC_BOOKING_RESTORE;
			r.at = b->created_at;
			r.u.booking.booking_id = b->id;
			r.u.booking.status = b->status;
			r.u.booking.hold_expires_at = b->hold_expires_at;
			memcpy(r.u.booking.customer_id,
			       st->customers[b->customer_slot].id,
			       sizeof(r.u.booking.customer_id));
			fn(ctx, &r);
		}
	}
	for (uint32_t k = 0; k < st->idem_count; k++) {
		const struct idem_entry *e =
			&st->idem[(st->idem_head + k) % st->idem_cap + 1];

		memset(&r, 0, sizeof(r));
		r.type = REC_IDEM;
		r.at = e->created;
		r.u.idem.hi = e->hi;
		r.u.idem.lo = e->lo;
		r.u.idem.fingerprint = e->fingerprint;
		r.u.idem.result = e->result;
		r.u.idem.result.lsn = 0;
		fn(ctx, &r);
	}
}
