/*
 * state_int.h: one shard's state as its files see it (state.c: making it,
 * look-ups, views and reads; idem.c: idempotency keys; decide.c: deciding;
 * apply.c: applying, holds, day buckets, archiving). The design is at the
 * top of state.c. Not for the runtime: it sees core_state through state.h.
 */
#ifndef BOOKD_CORE_STATE_INT_H
#define BOOKD_CORE_STATE_INT_H

#include "catalog.h"
#include "record.h"
#include "table.h"

#include <string.h>

#define DAY_MS INT64_C(86400000)
/* Records of one decision kept as built (a booking makes 2, a cancel that
 * promotes 4, with an idempotency key one more). */
#define STATE_DECIDED_MAX 8

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
	uint8_t flags; /* EVENT_TITLED: in what was padding */
	/* the lead (hours) of the last reminder that went out whole, 0 none:
	 * in what was padding */
	uint16_t reminded_hours;
};
_Static_assert(sizeof(struct event) == 104, "event footprint");
/* event.flags: the event has a title of its own (edit.c keeps it aside,
 * so the hot struct stays small) */
#define EVENT_TITLED 1
/* event.flags: kept off its series' new pattern (an EVENT_EDIT with
 * CORE_EDIT_DETACHED: a series edit found it booked) */
#define EVENT_DETACHED 2

struct booking {
	uint64_t id;
	core_time created_at, hold_expires_at;
	uint32_t event_slot, customer_slot;
	uint32_t wl_prev, wl_next;
	uint32_t customer_next;
	uint8_t status;
	bool late; /* a late cancel (core_booking_view.late): in padding */
};
_Static_assert(sizeof(struct booking) == 48, "booking footprint");

/* A booking's payment facts beside it (a side table: few bookings have
 * them): the intent it was (or is to be) paid with and its refund, from
 * PAY_INTENT, PAYMENT and REFUND records. */
struct pay {
	uint64_t booking_id; /* 0: free (next_free links it) */
	char intent_id[CORE_PAY_REF_SIZE_MAX];
	uint8_t refund;	       /* enum core_refund_state, 0 none */
	uint8_t refund_reason; /* enum core_refund_reason */
	uint32_t next_free;
};

struct customer {
	char id[CORE_CUSTOMER_ID_SIZE_MAX + 1];
	uint32_t bookings_head;
};

struct hold {
	core_time expires;
	uint64_t booking_id;
	uint32_t slot;
};

/* An event that had a waitlist, by its start (apply.c wl_watch): the
 * waitlist closes at start (decide.c core__state_close_one). Stale entries
 * (no waitlist left, the event gone, its start moved) are dropped or moved
 * when they reach the top. */
struct wl_watch {
	core_time start;
	uint64_t event_id;
};

/* A booking operation's answer as an idempotency entry keeps it: the
 * booking view without its fixed-size customer id buffer. */
struct idem_booking {
	uint64_t id, event_id;
	core_time hold_expires_at, created_at;
	uint32_t position;
	uint8_t status;
	bool late;
	uint8_t customer_len;
	char customer_id[CORE_CUSTOMER_ID_SIZE_MAX]; /* not terminated */
};

/* One idempotency key and its first answer (idem.c). A booking answer
 * without a promotion (nearly all) is kept inline, 160 bytes; any other
 * (a promotion, an event or series patch, a catalogue answer) as the whole
 * core_idem_result out of line. */
struct idem_entry {
	uint64_t hi, lo, fingerprint;
	core_time created;
	uint64_t lsn, id;
	uint32_t count;
	uint8_t op, code, has_promoted;
	bool outline;
	union {
		struct idem_booking booking;   /* !outline */
		struct core_idem_result *full; /* outline */
	};
};
_Static_assert(sizeof(struct idem_entry) == 160, "idem entry footprint");

#define IDEM_CHUNK_SHIFT 12 /* entries of a chunk: 4096, 640 KiB */

/* A reminder half-way: an event with more confirmed bookings than one entry
 * holds (decide.c REMIND_NOTIFY_MAX) is reminded over several entries. */
struct remind_part {
	uint64_t event_id;
	uint32_t next_seq;
	uint16_t hours;
};
#define REMIND_PART_MAX 16 /* half-way reminders a shard holds at once */

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
	uint32_t event_count, event_cap;  /* held; slots of the array */
	uint32_t event_slots, event_free; /* slots used; freed ones' list */
	struct map event_by_id;

	struct booking *bookings;
	uint32_t booking_count, booking_cap;
	uint32_t booking_slots, booking_free;
	struct map booking_by_id;
	struct set active; /* event_slot << 32 | customer_slot, while active */

	struct customer *customers;
	uint32_t customer_count, customer_cap;
	uint32_t customer_slots, customer_free;
	struct map customer_by_hash;

	struct pay *pays; /* slots 1..pay_slots; pay_by_booking indexes them */
	uint32_t pay_count, pay_cap, pay_slots, pay_free;
	struct map pay_by_booking;

	struct hold *holds; /* binary min-heap, from index 0 */
	uint32_t hold_count, hold_cap;
	struct wl_watch *wl_watch; /* binary min-heap of (start, event id) */
	uint32_t wl_watch_count, wl_watch_cap;

	/* A ring of idem_count_max entries in chunks of 1 << IDEM_CHUNK_SHIFT
	 * (idem.c): a chunk exists while it holds an entry, one more is kept
	 * spare; the map holds position + 1. */
	struct idem_entry **idem_chunks;
	struct idem_entry *idem_spare;
	uint32_t idem_head, idem_count;
	struct map idem_by_key;

	struct day_bucket *days;
	uint32_t day_count, day_capacity;
	int64_t day_min, day_max; /* of the buckets that exist */
	struct map day_by_key;	  /* UTC day + 2 -> bucket slot */

	uint32_t archived; /* events the last CORE_REC_ARCHIVE dropped */

	/* Titles of the events that have one of their own (edit.c): slots
	 * 1.. of titles, freed ones listed from title_free. */
	char (*titles)[CORE_NAME_SIZE_MAX];
	uint32_t title_slots, title_cap, title_free;
	struct map title_by_event; /* event id -> slot */

	struct remind_part remind_parts[REMIND_PART_MAX];
	uint32_t remind_part_count;
	/* Where reminder runs left off (decide.c; not state: not logged, not
	 * in snapshots, the first run after a start reads the whole window):
	 * the time and sorted leads of the last whole run, and the earliest
	 * start of an event created since (apply_event_create). */
	core_time remind_prev;
	core_time remind_dirty; /* INT64_MAX: none */
	uint16_t remind_hours[CORE_REMIND_LEAD_COUNT_MAX];
	uint8_t remind_count;
	bool remind_armed;

	struct wbuf w;
	uint8_t entry[CORE_ENTRY_SIZE_MAX];
	/* The last decision's records as decide.c built them: they encode to
	 * entry[0..decided_size), so applying that entry (core_state_apply,
	 * core__state_reserve) reads them instead of decoding the bytes
	 * again. decided_count 0: the entry was written otherwise (catalogue)
	 * or had more records than fit; it is then decoded. */
	struct core_rec decided[STATE_DECIDED_MAX];
	struct core_rec decided_spare; /* built past STATE_DECIDED_MAX */
	uint32_t decided_count;
	size_t decided_size;
	/* the room they need (core__state_reserve): all on this shard's own
	 * events, none makes an event */
	uint32_t decided_bookings, decided_holds, decided_pays;
	/* What deciding a booking looked up, for applying its BOOKING_NEW
	 * (decided[0]) without looking it up again: true while no entry was
	 * applied since the decision (applied_count unchanged; deciding
	 * changes nothing). live: set by core_state_apply while it applies
	 * that decision's own entry. */
	uint64_t applied_count;
	struct {
		uint64_t applied_count, customer_hash;
		uint32_t event_slot, customer_slot; /* customer 0: new */
		bool valid, live;
	} book;
};

/* Is entry this state's last decision, whose records are in decided[]? */
static inline bool state__decided(const core_state *st, const void *entry,
				  size_t entry_size)
{
	return entry == st->entry && st->decided_count > 0 &&
	       entry_size == st->decided_size;
}

/* ---- look-ups (inline: every decision makes several) ---- */

static inline struct event *event_get(const core_state *st, uint64_t id)
{
	uint32_t slot = id ? map_get(&st->event_by_id, id) : 0;
	return slot ? &st->events[slot] : NULL;
}

static inline struct booking *booking_get(const core_state *st, uint64_t id)
{
	uint32_t slot = id ? map_get(&st->booking_by_id, id) : 0;
	return slot ? &st->bookings[slot] : NULL;
}

static inline struct pay *pay_get(const core_state *st, uint64_t booking_id)
{
	uint32_t slot = map_get(&st->pay_by_booking, booking_id);
	return slot ? &st->pays[slot] : NULL;
}

/* Records that may give a booking its pay slot (apply.c reserves one). */
static inline bool rec_pays(const struct core_rec *r)
{
	return r->type == CORE_REC_PAY_INTENT || r->type == CORE_REC_REFUND ||
	       r->type == CORE_REC_PAYMENT;
}

/* The customer's slot (0: none) from its id and hash_bytes of the id. */
static inline uint32_t customer_find_hashed(const core_state *st,
					    const char *id, uint64_t hash)
{
	uint32_t slot = map_get(&st->customer_by_hash, hash);
	if (slot && strcmp(st->customers[slot].id, id) != 0)
		return UINT32_MAX; /* a 64-bit hash collision: refuse */
	return slot;
}

static inline uint32_t customer_find(const core_state *st, const char *id)
{
	return customer_find_hashed(st, id, hash_bytes(id, strlen(id)));
}

static inline uint64_t active_key(uint32_t event_slot, uint32_t customer_slot)
{
	return (uint64_t)event_slot << 32 | customer_slot;
}

static inline bool status_active(uint8_t s)
{
	return s == CORE_BOOKING_CONFIRMED ||
	       s == CORE_BOOKING_PENDING_PAYMENT ||
	       s == CORE_BOOKING_WAITLISTED;
}

static inline uint32_t seats_free(const struct event *e)
{
	uint32_t taken = e->confirmed + e->held;
	return e->capacity > taken ? e->capacity - taken : 0;
}

/* state.c: the views a caller gets of a booking and of an event. */
void state__booking_view(const core_state *st, const struct booking *b,
			 struct core_booking_view *out);
/* The same without the waitlist place (0), for a decision that moves the
 * booking off the waitlist: no walk of the list. */
void state__booking_view_leaving(const core_state *st, const struct booking *b,
				 struct core_booking_view *out);
void state__event_view(const core_state *st, const struct event *e,
		       struct core_event_view *out);
/* idem.c: the IDEM record that keeps req's key with its first answer. */
void state__idem_rec(const struct core_req *req, const struct core_resp *resp,
		     struct core_rec *r);
/* idem.c: drops idempotency keys older than the retention, oldest first. */
uint32_t state__idem_expire(core_state *st, core_time now);
/* The idempotency ring (idem.c): made empty, freed, dumped as IDEM records
 * oldest first. */
int state__idem_init(core_state *st);
/* The first probe of the key's map slot, ahead of its look-up. */
void state__idem_prefetch(const core_state *st, const struct core_idem *k);
void state__idem_free(core_state *st);
void state__idem_dump(const core_state *st, rec_sink fn, void *ctx);
/* apply.c: the day bucket of start_at (made when create and missing; NULL
 * when missing or out of memory); the holds heap's first leaves. */
struct day_bucket *state__day_bucket(core_state *st, core_time start_at,
				     bool create);
void state__hold_pop(core_state *st);
/* apply.c: e's waitlist is watched for its start (one entry more: room
 * made by core__state_reserve, or, at most one each, by a pop first). */
void state__wl_watch(core_state *st, const struct event *e);
void state__wl_watch_pop(core_state *st);
/* apply.c: the event's half-way reminder, NULL when none. */
struct remind_part *state__remind_part(const core_state *st, uint64_t event_id);
/* edit.c: events' own titles. Room for n more (0 or -ENOMEM); set one
 * ("" drops it; room was made); drop it (archive); read it (NULL: none,
 * the series' title holds). */
int state__title_reserve(core_state *st, uint32_t n);
void state__title_set(core_state *st, struct event *e, const char *title);
void state__title_drop(core_state *st, struct event *e);
const char *state__title(const core_state *st, const struct event *e);

/* decide.c: refunds when an event is cancelled (docs/core.md "Payments").
 * Was b paid through an intent and not refunded yet? Its REFUND due
 * (amount and currency the event's) into r. Do an event cancel's NOTIFY
 * and REFUND records fit one entry (CORE_CANCEL_ROOM kept for the cancel's
 * own record and its key)? A NOTIFY takes 21 bytes (12 of header and time,
 * booking id, kind), a REFUND due at most 36 and its intent's id (its ref
 * is ""). */
#define CORE_CANCEL_ROOM 2048
#define CORE_NOTIFY_REC_BYTES 21
#define CORE_REFUND_REC_BYTES (36 + CORE_PAY_REF_SIZE_MAX)
bool core__refundable(const core_state *st, const struct booking *b);
void core__refund_due(struct core_rec *r, const core_state *st,
		      const struct booking *b, uint8_t reason, core_time at);
bool core__cancel_fits(const core_state *st, const struct event *e);

#endif
