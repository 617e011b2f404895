/*
 * model.c: the reference model of the booking rules (see model.h).
 *
 * The rules, as the core must follow them:
 *  - a booking takes a seat while the event has one (confirmed when free or
 *    paid at the desk, else pending payment with a hold of hold_ms), else a
 *    waitlist place while there is room, else EVENT_FULL;
 *  - one active booking per customer and event; no booking once the event
 *    started or was cancelled;
 *  - a freed seat goes to the first waitlisted booking (promotion), while
 *    the class has not started (start_at > now);
 *  - a hold is released as payment_failed by a failed payment, or when the
 *    payments sender could not make its intent (CORE_PAY_KIND_INTENT
 *    without an id; on a booking not holding a seat: NOT_ACTIVE);
 *  - holds due at req.now expire first, in (expiry, booking id) order;
 *    then every class that started by now (start_at <= now) closes its
 *    waitlist: each waitlisted booking becomes waitlist_expired (a held
 *    one keeps its hold);
 *  - a cancel by the customer (req.customer_id: another's booking is
 *    unknown) at or after start is EVENT_STARTED; the service key's is
 *    recorded; a cancel of a seat (confirmed or held) at or after start -
 *    the org's cut-off is late;
 *  - a reminder run at now with leads (hours): each scheduled event that
 *    starts after now, whose closest due lead (smallest L with now >=
 *    start - L) is smaller than the last it was reminded for (or it never
 *    was), is reminded for L: one notification per confirmed booking;
 *  - an event patch changes capacity (never below the seats taken; a
 *    larger one promotes), instructor, or cancels (every active booking
 *    cancelled); an edit (a new start, duration, location or title, or a
 *    restore) is refused on a class that started or would start in the
 *    past, on a cancelled event unless it restores it (its bookings stay
 *    cancelled), with a location or instructor of another org; a new
 *    start makes its reminders due again;
 *  - a series edit (SERIES_PATCH) from a local date `from` on (today at
 *    the earliest) takes the series' new pattern (its changes on the
 *    old); each event of the series from `from` on that has not started,
 *    in start order: a cancelled one stays so (its date taken); one after
 *    a new last date is cancelled, its active bookings too, each told;
 *    when only the last date changed, nothing else; one on a date of the
 *    new pattern with its start and settings stays (booked, or its title
 *    too); a booked one otherwise stays as it is, detached; an unbooked
 *    one moves to the pattern on its date (with the new title), or is
 *    cancelled when the date is not in it; then every date of the pattern
 *    from `from` up to how far the series was generated (at most its last
 *    date) that no event of the series holds gets a new event;
 *  - an event cancel tells each active booking (event_cancelled);
 *  - a keyed request whose key is remembered (stored outcomes only, for
 *    idem_retention_ms) replays the first answer, or is refused with
 *    IDEM_MISMATCH when its fingerprint differs.
 */
#include "model.h"
#include "tz.h" /* the series' local dates, as the core's zone data says */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct model_event model_events[MODEL_EVENT_COUNT_MAX];
uint32_t model_event_count;
uint64_t model_location_org[MODEL_PLACE_COUNT];
uint64_t model_instructor_org[MODEL_PLACE_COUNT];
char model_customer_ids[MODEL_CUSTOMER_COUNT][CORE_CUSTOMER_ID_SIZE_MAX + 1];

static core_time hold_ms, retention_ms;
static core_time cutoff_ms = INT64_C(12) * 3600 * 1000;
/* The bookings whose waitlist closed since model_waitlist_expired. */
static uint64_t *expired_ids;
static uint32_t expired_count, expired_cap;
static bool m_closed[MODEL_EVENT_COUNT_MAX]; /* by event index */
/* The bookings the last REMIND notified (model_reminded). */
static uint64_t *reminded_ids;
static uint32_t reminded_count, reminded_cap;
static void (*fail_hook)(const char *msg);
struct model_series model_series[MODEL_SERIES_COUNT];
/* The last SERIES_PATCH's new events (model_series_made). */
static core_time *made_starts;
static uint32_t made_count, made_cap;
/* The bookings told of their event's cancel (model_cancel_told). */
static uint64_t *told_ids;
static uint32_t told_count, told_cap;

struct m_key {
	uint64_t hi, lo, fp;
	core_time created;
	struct core_resp first;
};

/* Keys by (lo mod 2^20), newest first in each chain: a plain chained table. */
#define KEY_BUCKETS (1u << 20)
static struct m_key *keys;
static uint32_t key_count, key_cap;
static uint32_t *key_bucket; /* index + 1 of the newest key in the bucket */
static uint32_t *key_next;   /* index + 1 of the previous key in the bucket */

/* No hold expires before this (a lower bound, lowered by every new hold),
 * so that m_tick only looks when something may be due. */
static core_time next_due = INT64_MAX;

void model_init(core_time hold, core_time idem_retention,
		void (*fail)(const char *msg))
{
	hold_ms = hold;
	retention_ms = idem_retention;
	fail_hook = fail;
	key_bucket = calloc(KEY_BUCKETS, sizeof(*key_bucket));
	if (!key_bucket)
		fail("model: out of memory");
	for (int i = 0; i < MODEL_CUSTOMER_COUNT; i++)
		snprintf(model_customer_ids[i], sizeof(model_customer_ids[i]),
			 "cust-%02d@example.org", i);
}

void model_free(void)
{
	free(keys);
	free(key_next);
	free(key_bucket);
	keys = NULL;
	key_next = key_bucket = NULL;
	key_count = key_cap = 0;
	for (uint32_t i = 0; i < model_event_count; i++)
		free(model_events[i].b);
	model_event_count = 0;
	free(reminded_ids);
	reminded_ids = NULL;
	free(expired_ids);
	expired_ids = NULL;
	expired_count = expired_cap = 0;
	memset(m_closed, 0, sizeof(m_closed));
	for (int i = 0; i < MODEL_SERIES_COUNT; i++)
		if (model_series[i].zone)
			tz_free(model_series[i].zone);
	memset(model_series, 0, sizeof(model_series));
	free(made_starts);
	made_starts = NULL;
	made_count = made_cap = 0;
	free(told_ids);
	told_ids = NULL;
	told_count = told_cap = 0;
	reminded_count = reminded_cap = 0;
	next_due = INT64_MAX;
}

static void *grow(void *p, size_t size)
{
	p = realloc(p, size);
	if (!p)
		fail_hook("model: out of memory");
	return p;
}

/* ---- events and bookings ---- */

struct model_event *model_event_get(uint64_t id)
{
	for (uint32_t i = 0; i < model_event_count; i++)
		if (model_events[i].id == id)
			return &model_events[i];
	return NULL;
}

struct model_booking *model_booking_get(uint64_t id, struct model_event **ev)
{
	struct model_event *e = model_event_get(id >> 24);
	uint64_t seq = id & 0xffffff;

	if (!e || seq == 0 || seq > e->n)
		return NULL;
	if (ev)
		*ev = e;
	return &e->b[seq - 1];
}

static void push_id(uint64_t **a, uint32_t *n, uint32_t *cap, uint64_t v)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*a = grow(*a, *cap * sizeof(**a));
	}
	(*a)[(*n)++] = v;
}

static bool active(uint8_t s)
{
	return s == CORE_BOOKING_CONFIRMED ||
	       s == CORE_BOOKING_PENDING_PAYMENT ||
	       s == CORE_BOOKING_WAITLISTED;
}

static uint32_t taken(const struct model_event *e)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < e->n; i++)
		n += e->b[i].status == CORE_BOOKING_CONFIRMED ||
		     e->b[i].status == CORE_BOOKING_PENDING_PAYMENT;
	return n;
}

uint32_t model_count_status(const struct model_event *e, uint8_t s)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < e->n; i++)
		n += e->b[i].status == s;
	return n;
}

/* The waitlist is the waitlisted bookings in the order they were made. */
static struct model_booking *wl_head(struct model_event *e)
{
	for (uint32_t i = 0; i < e->n; i++)
		if (e->b[i].status == CORE_BOOKING_WAITLISTED)
			return &e->b[i];
	return NULL;
}

static uint32_t wl_position(const struct model_event *e,
			    const struct model_booking *b)
{
	uint32_t pos = 0;
	for (uint32_t i = 0; i < e->n; i++) {
		if (e->b[i].status == CORE_BOOKING_WAITLISTED)
			pos++;
		if (&e->b[i] == b)
			return b->status == CORE_BOOKING_WAITLISTED ? pos : 0;
	}
	return 0;
}

void model_view(const struct model_event *e, const struct model_booking *b,
		struct core_booking_view *v)
{
	memset(v, 0, sizeof(*v));
	v->id = b->id;
	v->event_id = e->id;
	strcpy(v->customer_id, model_customer_ids[b->customer]);
	v->status = b->status;
	v->position = wl_position(e, b);
	v->hold_expires_at =
		b->status == CORE_BOOKING_PENDING_PAYMENT ? b->hold_expires : 0;
	v->created_at = b->created;
	v->late = b->late;
}

static void hold_made(core_time expires)
{
	if (expires && expires < next_due)
		next_due = expires;
}

/* A seat freed: the first waitlisted takes it. */
static uint32_t m_promote(struct model_event *e, core_time now,
			  struct core_resp *r)
{
	uint32_t n = 0;
	struct model_booking *w;

	while (e->status == CORE_EVENT_SCHEDULED && e->start_at > now &&
	       taken(e) < e->capacity && (w = wl_head(e))) {
		w->status = e->price ? CORE_BOOKING_PENDING_PAYMENT
				     : CORE_BOOKING_CONFIRMED;
		w->hold_expires = e->price ? now + hold_ms : 0;
		hold_made(w->hold_expires);
		if (n++ == 0 && r) {
			model_view(e, w, &r->promoted);
			r->has_promoted = true;
		}
	}
	return n;
}

static void m_release(struct model_event *e, struct model_booking *b,
		      uint8_t status, core_time now, struct core_resp *r)
{
	b->status = status;
	b->hold_expires = 0;
	if (r)
		model_view(e, b, &r->booking);
	uint32_t n = m_promote(e, now, r);
	if (r)
		r->count = n;
}

/* Holds due at now expire in (expiry, booking id) order. */
static void m_tick(core_time now)
{
	if (now < next_due)
		return;
	for (;;) {
		struct model_event *best_e = NULL;
		struct model_booking *best = NULL;
		for (uint32_t i = 0; i < model_event_count; i++)
			for (uint32_t j = 0; j < model_events[i].n; j++) {
				struct model_booking *b = &model_events[i].b[j];
				if (b->status != CORE_BOOKING_PENDING_PAYMENT ||
				    b->hold_expires > now)
					continue;
				if (!best ||
				    b->hold_expires < best->hold_expires ||
				    (b->hold_expires == best->hold_expires &&
				     b->id < best->id)) {
					best = b;
					best_e = &model_events[i];
				}
			}
		if (!best)
			break;
		m_release(best_e, best, CORE_BOOKING_EXPIRED, now, NULL);
	}
	next_due = INT64_MAX;
	for (uint32_t i = 0; i < model_event_count; i++)
		for (uint32_t j = 0; j < model_events[i].n; j++)
			if (model_events[i].b[j].status ==
			    CORE_BOOKING_PENDING_PAYMENT)
				hold_made(model_events[i].b[j].hold_expires);
}

/* Classes that started by now close their waitlists. A started class
 * takes no booking, no edit, no restore: closed once, closed for good
 * (m_closed). */

static void m_close(core_time now)
{
	for (uint32_t i = 0; i < model_event_count; i++) {
		struct model_event *e = &model_events[i];

		if (m_closed[i] || e->start_at > now)
			continue;
		m_closed[i] = true;
		for (uint32_t j = 0; j < e->n; j++) {
			if (e->b[j].status != CORE_BOOKING_WAITLISTED)
				continue;
			e->b[j].status = CORE_BOOKING_WAITLIST_EXPIRED;
			if (expired_count == expired_cap) {
				expired_cap =
					expired_cap ? expired_cap * 2 : 64;
				expired_ids =
					grow(expired_ids,
					     expired_cap *
						     sizeof(*expired_ids));
			}
			expired_ids[expired_count++] = e->b[j].id;
		}
	}
}

uint32_t model_waitlist_expired(const uint64_t **ids)
{
	uint32_t n = expired_count;

	*ids = expired_ids;
	expired_count = 0;
	return n;
}

void model_org_settings(core_time cutoff, core_time hold)
{
	cutoff_ms = cutoff;
	hold_ms = hold;
}

static bool customer_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > CORE_CUSTOMER_ID_SIZE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@-",
			    id[i]))
			return false;
	return true;
}

static int customer_index(const char *id)
{
	for (int i = 0; i < MODEL_CUSTOMER_COUNT; i++)
		if (strcmp(model_customer_ids[i], id) == 0)
			return i;
	return -1;
}

/* ---- decisions ---- */

static enum core_code m_book(const struct core_req *q, struct core_resp *r)
{
	struct model_event *e = model_event_get(q->event_id);
	int cust = customer_index(q->customer_id);
	struct model_booking *b;
	bool hold;

	if (!e)
		return CORE_NO_EVENT;
	if (!customer_ok(q->customer_id) || cust < 0)
		return CORE_INVALID;
	if (e->status != CORE_EVENT_SCHEDULED || e->start_at <= q->now)
		return CORE_NOT_BOOKABLE;
	for (uint32_t i = 0; i < e->n; i++)
		if (e->b[i].customer == cust && active(e->b[i].status))
			return CORE_ALREADY_BOOKED;
	hold = e->price > 0 && q->u.book.payment != CORE_PAY_NONE;
	uint8_t status;
	if (taken(e) < e->capacity)
		status = hold ? CORE_BOOKING_PENDING_PAYMENT
			      : CORE_BOOKING_CONFIRMED;
	else if (model_count_status(e, CORE_BOOKING_WAITLISTED) <
		 e->waitlist_capacity)
		status = CORE_BOOKING_WAITLISTED;
	else
		return CORE_EVENT_FULL;
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 8;
		e->b = grow(e->b, e->cap * sizeof(*e->b));
	}
	b = &e->b[e->n++];
	b->id = e->id << 24 | e->n;
	b->customer = cust;
	b->status = status;
	b->late = false;
	b->created = q->now;
	b->hold_expires =
		status == CORE_BOOKING_PENDING_PAYMENT ? q->now + hold_ms : 0;
	hold_made(b->hold_expires);
	model_view(e, b, &r->booking);
	return CORE_OK;
}

/* An operation on booking b (of event e), the one q names. */
typedef enum core_code m_booking_op(const struct core_req *q,
				    struct core_resp *r, struct model_event *e,
				    struct model_booking *b);

/* op on the booking q names, or CORE_NO_BOOKING if there is none. */
static enum core_code m_on_booking(const struct core_req *q,
				   struct core_resp *r, m_booking_op *op)
{
	struct model_event *e;
	struct model_booking *b = model_booking_get(q->booking_id, &e);

	return b ? op(q, r, e, b) : CORE_NO_BOOKING;
}

static enum core_code m_cancel(const struct core_req *q, struct core_resp *r,
			       struct model_event *e, struct model_booking *b)
{
	bool customer = q->customer_id[0] != '\0';

	if (customer &&
	    strcmp(model_customer_ids[b->customer], q->customer_id) != 0)
		return CORE_NO_BOOKING;
	if (!active(b->status))
		return CORE_NOT_ACTIVE;
	if (customer && e->start_at <= q->now)
		return CORE_EVENT_STARTED;
	b->late = b->status != CORE_BOOKING_WAITLISTED &&
		  q->now >= e->start_at - cutoff_ms;
	m_release(e, b, CORE_BOOKING_CANCELLED, q->now, r);
	return CORE_OK;
}

static enum core_code m_pay(const struct core_req *q, struct core_resp *r,
			    struct model_event *e, struct model_booking *b)
{
	/* The payments sender could not make the hold's intent (kind INTENT,
	 * no id): the hold is released as a failed payment; a booking not
	 * holding one: nothing (docs/core.md "Payments"). */
	if (q->u.pay.kind == CORE_PAY_KIND_INTENT && !q->u.pay.ref[0]) {
		model_view(e, b, &r->booking);
		if (b->status != CORE_BOOKING_PENDING_PAYMENT)
			return CORE_NOT_ACTIVE;
		m_release(e, b, CORE_BOOKING_PAYMENT_FAILED, q->now, r);
		return CORE_OK;
	}
	if (b->status != CORE_BOOKING_PENDING_PAYMENT) {
		model_view(e, b, &r->booking);
		return CORE_NOT_PENDING;
	}
	if (q->u.pay.succeeded &&
	    (q->u.pay.amount_cents != e->price ||
	     strcmp(q->u.pay.currency, e->currency) != 0)) {
		model_view(e, b, &r->booking);
		return CORE_PAYMENT_MISMATCH;
	}
	if (q->u.pay.succeeded) {
		b->status = CORE_BOOKING_CONFIRMED;
		b->hold_expires = 0;
		model_view(e, b, &r->booking);
	} else {
		m_release(e, b, CORE_BOOKING_PAYMENT_FAILED, q->now, r);
	}
	return CORE_OK;
}

static bool place_ok(const uint64_t *orgs, uint64_t id, uint64_t org)
{
	return id < MODEL_PLACE_COUNT && orgs[id] == org;
}

/* An event cancelled: its active bookings too, each told. */
static void m_cancel_event(struct model_event *e)
{
	e->status = CORE_EVENT_CANCELLED;
	for (uint32_t i = 0; i < e->n; i++)
		if (active(e->b[i].status)) {
			e->b[i].status = CORE_BOOKING_CANCELLED;
			e->b[i].hold_expires = 0;
			push_id(&told_ids, &told_count, &told_cap, e->b[i].id);
		}
}

uint32_t model_cancel_told(const uint64_t **ids)
{
	uint32_t n = told_count;

	*ids = told_ids;
	told_count = 0;
	return n;
}

/* An edit: start, duration, location, title, restore (with capacity and
 * instructor, if asked too). */
static enum core_code m_edit(const struct core_req *q, struct core_resp *r,
			     struct model_event *e)
{
	bool cancelled = e->status == CORE_EVENT_CANCELLED;
	uint32_t cap;

	if (q->u.patch.cancel || q->u.patch.capacity > CORE_CAPACITY_MAX ||
	    q->u.patch.duration_min > CORE_DURATION_MIN_MAX ||
	    q->u.patch.start_at < 0)
		return CORE_INVALID;
	if (q->u.patch.location_id &&
	    !place_ok(model_location_org, q->u.patch.location_id, e->org_id))
		return CORE_NO_LOCATION;
	if (q->u.patch.instructor_id &&
	    !place_ok(model_instructor_org, q->u.patch.instructor_id,
		      e->org_id))
		return CORE_NO_INSTRUCTOR;
	if ((cancelled && !q->u.patch.restore) || e->start_at <= q->now)
		return CORE_NOT_BOOKABLE;
	if (q->u.patch.start_at && q->u.patch.start_at <= q->now)
		return CORE_INVALID;
	cap = q->u.patch.capacity >= 0 ? (uint32_t)q->u.patch.capacity
				       : e->capacity;
	if (cap < taken(e))
		return CORE_CAPACITY_BELOW_TAKEN;
	if (q->u.patch.start_at && q->u.patch.start_at != e->start_at) {
		e->start_at = q->u.patch.start_at;
		e->reminded = 0;
	}
	if (q->u.patch.duration_min)
		e->duration_min = q->u.patch.duration_min;
	if (q->u.patch.location_id)
		e->location_id = q->u.patch.location_id;
	if (q->u.patch.instructor_id)
		e->instructor_id = q->u.patch.instructor_id;
	if (q->u.patch.title[0])
		memcpy(e->title, q->u.patch.title, sizeof(e->title));
	e->capacity = cap;
	e->status = CORE_EVENT_SCHEDULED;
	r->count = m_promote(e, q->now, r);
	return CORE_OK;
}

static enum core_code m_patch(const struct core_req *q, struct core_resp *r)
{
	struct model_event *e = model_event_get(q->event_id);

	if (!e)
		return CORE_NO_EVENT;
	if (q->u.patch.restore || q->u.patch.location_id ||
	    q->u.patch.start_at || q->u.patch.duration_min ||
	    q->u.patch.title[0])
		return m_edit(q, r, e);
	if (q->u.patch.capacity > CORE_CAPACITY_MAX)
		return CORE_INVALID;
	if (q->u.patch.instructor_id &&
	    !place_ok(model_instructor_org, q->u.patch.instructor_id,
		      e->org_id))
		return CORE_NO_INSTRUCTOR;
	if (e->status == CORE_EVENT_CANCELLED &&
	    (q->u.patch.capacity >= 0 || q->u.patch.instructor_id))
		return CORE_NOT_BOOKABLE;
	if (q->u.patch.capacity >= 0 && !q->u.patch.cancel &&
	    (uint32_t)q->u.patch.capacity < taken(e))
		return CORE_CAPACITY_BELOW_TAKEN;
	if (q->u.patch.instructor_id)
		e->instructor_id = q->u.patch.instructor_id;
	if (q->u.patch.cancel) {
		m_cancel_event(e);
		if (q->u.patch.capacity >= 0)
			e->capacity = (uint32_t)q->u.patch.capacity;
		return CORE_OK;
	}
	if (q->u.patch.capacity >= 0) {
		if ((uint32_t)q->u.patch.capacity < taken(e))
			return CORE_CAPACITY_BELOW_TAKEN;
		e->capacity = (uint32_t)q->u.patch.capacity;
		r->count = m_promote(e, q->now, r);
	}
	return CORE_OK;
}

/* ---- series ---- */

static int64_t m_floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The local date (days since 1970) of an instant in the series' zone. */
static int64_t m_day(const struct model_series *s, core_time t)
{
	int64_t sec = m_floor_div(t, 1000);

	return m_floor_div(sec + tz_offset_at(s->zone, sec), 86400);
}

static int64_t m_days(struct core_date d)
{
	return tz_days_from_civil(d.year, d.month, d.day);
}

/* The UTC start of spec's class on local day `day`, 0 if it has none. */
static core_time m_pattern_start(const struct core_series_spec *n,
				 const struct tz *z, int64_t day)
{
	if (!(n->weekday_mask & (1u << tz_weekday(day))) ||
	    day < m_days(n->first_date) ||
	    (n->last_date.year && day > m_days(n->last_date)))
		return 0;
	for (uint32_t i = 0; i < n->skip_count; i++)
		if (m_days(n->skip[i]) == day)
			return 0;
	return tz_local_to_utc(z, day * 86400 + n->start_minute * 60) * 1000;
}

static void m_generate(struct model_series *s, core_time now)
{
	int64_t today = m_day(s, now), from, to;

	from = m_days(s->spec.first_date);
	if (from < today)
		from = today;
	if (s->through >= 0 && from <= s->through)
		from = s->through + 1;
	to = today + s->horizon_days;
	if (s->spec.last_date.year && to > m_days(s->spec.last_date))
		to = m_days(s->spec.last_date);
	if (from <= to)
		s->through = to;
}

void model_series_add(uint64_t id, const struct core_series_spec *spec,
		      uint32_t horizon_days, core_time now)
{
	struct model_series *s;

	if (id == 0 || id > MODEL_SERIES_COUNT)
		fail_hook("model: series id out of range");
	s = &model_series[id - 1];
	s->spec = *spec;
	s->horizon_days = horizon_days;
	s->through = -1;
	if (tz_load(spec->timezone, &s->zone) != 0)
		fail_hook("model: zone");
	m_generate(s, now);
}

void model_generated(core_time now)
{
	for (int i = 0; i < MODEL_SERIES_COUNT; i++)
		if (model_series[i].zone)
			m_generate(&model_series[i], now);
}

uint32_t model_series_made(const core_time **starts)
{
	*starts = made_starts;
	return made_count;
}

static uint32_t m_active_count(const struct model_event *e)
{
	uint32_t n = 0;

	for (uint32_t i = 0; e->status == CORE_EVENT_SCHEDULED && i < e->n; i++)
		n += active(e->b[i].status);
	return n;
}

/* Does e have the new pattern's settings, starting at start? */
static bool m_fits(const struct model_event *e,
		   const struct core_series_spec *n, core_time start)
{
	return start && e->start_at == start &&
	       e->duration_min == n->duration_min &&
	       e->capacity == n->capacity &&
	       e->waitlist_capacity == n->waitlist_capacity &&
	       e->price == n->price_cents &&
	       memcmp(e->currency, n->currency, 4) == 0;
}

static bool m_currency_ok(const char *c, uint32_t price)
{
	if (price == 0 && c[0] == '\0')
		return true;
	for (int i = 0; i < 3; i++)
		if (c[i] < 'a' || c[i] > 'z')
			return false;
	return c[3] == '\0';
}

/* The series' events from local day `from` on, in (start, id) order. */
static uint32_t m_series_events(uint64_t series_id, core_time from_at,
				struct model_event **out)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < model_event_count; i++) {
		struct model_event *e = &model_events[i];
		uint32_t k;

		if (e->series_id != series_id || e->start_at < from_at)
			continue;
		for (k = n; k > 0 && (out[k - 1]->start_at > e->start_at ||
				      (out[k - 1]->start_at == e->start_at &&
				       out[k - 1]->id > e->id));
		     k--)
			out[k] = out[k - 1];
		out[k] = e;
		n++;
	}
	return n;
}

static enum core_code m_series_patch(const struct core_req *q,
				     struct core_resp *r)
{
	static struct model_event *evs[MODEL_EVENT_COUNT_MAX];
	uint64_t id = q->u.spatch.series_id;
	struct model_series *s =
		id && id <= MODEL_SERIES_COUNT && model_series[id - 1].zone
			? &model_series[id - 1]
			: NULL;
	struct core_series_spec n;
	int64_t today, from, through;
	core_time from_at;
	bool retitled, reshaped;
	uint32_t count;

	made_count = 0;
	if (!s)
		return CORE_NO_SERIES;
	if (q->u.spatch.capacity > CORE_CAPACITY_MAX ||
	    q->u.spatch.waitlist_capacity > CORE_CAPACITY_MAX ||
	    q->u.spatch.price_cents > CORE_PRICE_CENTS_MAX ||
	    q->u.spatch.start_minute >= CORE_DAY_MINUTES ||
	    q->u.spatch.duration_min > CORE_DURATION_MIN_MAX ||
	    q->u.spatch.weekday_mask > 0x7f ||
	    (q->u.spatch.from.year &&
	     !tz_date_valid(q->u.spatch.from.year, q->u.spatch.from.month,
			    q->u.spatch.from.day)))
		return CORE_INVALID;
	n = s->spec;
	if (q->u.spatch.title[0])
		memcpy(n.title, q->u.spatch.title, sizeof(n.title));
	if (q->u.spatch.capacity >= 0)
		n.capacity = (uint32_t)q->u.spatch.capacity;
	if (q->u.spatch.waitlist_capacity >= 0)
		n.waitlist_capacity = (uint32_t)q->u.spatch.waitlist_capacity;
	if (q->u.spatch.price_cents >= 0)
		n.price_cents = (uint32_t)q->u.spatch.price_cents;
	if (q->u.spatch.currency[0])
		memcpy(n.currency, q->u.spatch.currency, 4);
	if (q->u.spatch.start_minute >= 0)
		n.start_minute = (uint16_t)q->u.spatch.start_minute;
	if (q->u.spatch.duration_min)
		n.duration_min = q->u.spatch.duration_min;
	if (q->u.spatch.weekday_mask)
		n.weekday_mask = q->u.spatch.weekday_mask;
	if (q->u.spatch.last_date.year)
		n.last_date = q->u.spatch.last_date;
	if (!m_currency_ok(n.currency, n.price_cents) ||
	    (n.last_date.year &&
	     (!tz_date_valid(n.last_date.year, n.last_date.month,
			     n.last_date.day) ||
	      m_days(n.last_date) < m_days(n.first_date))))
		return CORE_INVALID;
	retitled = strcmp(n.title, s->spec.title) != 0;
	reshaped = retitled || n.capacity != s->spec.capacity ||
		   n.waitlist_capacity != s->spec.waitlist_capacity ||
		   n.price_cents != s->spec.price_cents ||
		   memcmp(n.currency, s->spec.currency, 4) != 0 ||
		   n.start_minute != s->spec.start_minute ||
		   n.duration_min != s->spec.duration_min ||
		   n.weekday_mask != s->spec.weekday_mask;
	today = m_day(s, q->now);
	from = q->u.spatch.from.year ? m_days(q->u.spatch.from) : today;
	if (from < today)
		from = today;
	from_at = tz_local_to_utc(s->zone, from * 86400) * 1000;
	through = s->through >= 0 ? s->through : from - 1;
	if (n.last_date.year && through > m_days(n.last_date))
		through = m_days(n.last_date);
	count = m_series_events(id, from_at, evs);
	for (uint32_t i = 0; i < count; i++) {
		struct model_event *e = evs[i];
		int64_t day = m_day(s, e->start_at);
		core_time start = m_pattern_start(&n, s->zone, day);

		if (e->status != CORE_EVENT_SCHEDULED || e->start_at <= q->now)
			continue;
		if (n.last_date.year && day > m_days(n.last_date)) {
			m_cancel_event(e);
			r->series.cancelled++;
			continue;
		}
		if (!reshaped || (m_fits(e, &n, start) && !retitled))
			continue;
		if (m_active_count(e)) {
			if (m_fits(e, &n, start))
				continue; /* its settings, its old title */
			e->detached = true;
			r->series.kept++;
			continue;
		}
		if (!start || start <= q->now) {
			m_cancel_event(e);
			r->series.cancelled++;
			continue;
		}
		if (start != e->start_at) {
			e->start_at = start;
			e->reminded = 0;
		}
		e->duration_min = n.duration_min;
		e->capacity = n.capacity;
		e->waitlist_capacity = n.waitlist_capacity;
		e->price = n.price_cents;
		memcpy(e->currency, n.currency, 4);
		memcpy(e->title, n.title, sizeof(e->title));
		r->series.regenerated++;
	}
	for (int64_t day = from; day <= through; day++) {
		core_time start = m_pattern_start(&n, s->zone, day);
		bool taken_day = false;

		for (uint32_t i = 0; i < count && !taken_day; i++)
			taken_day = m_day(s, evs[i]->start_at) == day;
		if (start <= q->now || taken_day)
			continue;
		if (made_count == made_cap) {
			made_cap = made_cap ? made_cap * 2 : 64;
			made_starts = grow(made_starts,
					   made_cap * sizeof(*made_starts));
		}
		made_starts[made_count++] = start;
		r->series.regenerated++;
	}
	s->spec = n;
	r->id = id;
	r->count = r->series.regenerated;
	return CORE_OK;
}

/* Outcomes remembered under an idempotency key (and answered with views). */
static bool m_stored(enum core_op op, enum core_code code)
{
	return code == CORE_OK ||
	       (op == CORE_OP_PAY &&
		(code == CORE_NOT_PENDING || code == CORE_PAYMENT_MISMATCH));
}

/* ---- reminders ---- */

uint32_t model_reminded(const uint64_t **ids)
{
	*ids = reminded_ids;
	return reminded_count;
}

static uint32_t m_remind(const struct core_req *q)
{
	reminded_count = 0;
	for (uint32_t i = 0; i < model_event_count; i++) {
		struct model_event *e = &model_events[i];
		uint16_t due = 0;

		if (e->status != CORE_EVENT_SCHEDULED || e->start_at <= q->now)
			continue;
		for (uint8_t k = 0; k < q->u.remind.count; k++) {
			uint16_t h = q->u.remind.hours[k];
			if (q->now >= e->start_at - h * INT64_C(3600000) &&
			    (!due || h < due))
				due = h;
		}
		if (!due || (e->reminded && e->reminded <= due))
			continue;
		e->reminded = due;
		for (uint32_t j = 0; j < e->n; j++) {
			if (e->b[j].status != CORE_BOOKING_CONFIRMED)
				continue;
			if (reminded_count == reminded_cap) {
				reminded_cap =
					reminded_cap ? 2 * reminded_cap : 256;
				reminded_ids =
					grow(reminded_ids,
					     reminded_cap * sizeof(uint64_t));
			}
			reminded_ids[reminded_count++] = e->b[j].id;
		}
	}
	return reminded_count;
}

/* ---- idempotency keys ---- */

static struct m_key *m_key_find(const struct core_idem *k)
{
	for (uint32_t i = key_bucket[k->lo % KEY_BUCKETS]; i;
	     i = key_next[i - 1])
		if (keys[i - 1].hi == k->hi && keys[i - 1].lo == k->lo)
			return &keys[i - 1];
	return NULL;
}

static void m_key_add(const struct core_req *q, const struct core_resp *r)
{
	uint32_t b = q->idem.lo % KEY_BUCKETS;

	if (key_count == key_cap) {
		key_cap = key_cap ? key_cap * 2 : 1024;
		keys = grow(keys, key_cap * sizeof(*keys));
		key_next = grow(key_next, key_cap * sizeof(*key_next));
	}
	keys[key_count] = (struct m_key){ q->idem.hi, q->idem.lo,
					  q->idem.fingerprint, q->now, *r };
	key_next[key_count] = key_bucket[b];
	key_bucket[b] = ++key_count;
}

void model_apply(const struct core_req *q, struct core_resp *r)
{
	memset(r, 0, sizeof(*r));
	r->op = q->op;
	m_tick(q->now);
	m_close(q->now);
	if (core_idem_present(&q->idem)) {
		struct m_key *k = m_key_find(&q->idem);
		if (k && k->created + retention_ms > q->now) {
			if (k->fp != q->idem.fingerprint) {
				r->code = CORE_IDEM_MISMATCH;
				return;
			}
			*r = k->first;
			r->replayed = true;
			return;
		}
	}
	switch (q->op) {
	case CORE_OP_BOOK: r->code = m_book(q, r); break;
	case CORE_OP_CANCEL: r->code = m_on_booking(q, r, m_cancel); break;
	case CORE_OP_PAY: r->code = m_on_booking(q, r, m_pay); break;
	case CORE_OP_EVENT_PATCH: r->code = m_patch(q, r); break;
	case CORE_OP_SERIES_PATCH: r->code = m_series_patch(q, r); break;
	case CORE_OP_TICK: r->code = CORE_OK; break;
	case CORE_OP_REMIND:
		r->code = CORE_OK;
		r->count = m_remind(q);
		return;
	default: {
		char msg[64];
		snprintf(msg, sizeof(msg), "model: op %d", q->op);
		fail_hook(msg);
		return;
	}
	}
	/* A refusal carries no views (a stored PAY refusal keeps them). */
	if (!m_stored(q->op, r->code)) {
		memset(&r->booking, 0, sizeof(r->booking));
		memset(&r->promoted, 0, sizeof(r->promoted));
		r->has_promoted = false;
		r->count = 0;
		r->id = 0;
		memset(&r->series, 0, sizeof(r->series));
	}
	if (core_idem_present(&q->idem) && m_stored(q->op, r->code))
		m_key_add(q, r);
}

uint64_t model_fingerprint(const struct core_req *q)
{
	/* What the API layer would hash: op and arguments. */
	uint64_t h = (uint64_t)q->op * 1000003;
	h = (h ^ q->event_id) * 1000003;
	h = (h ^ q->booking_id) * 1000003;
	for (const char *s = q->customer_id; *s; s++)
		h = (h ^ (uint8_t)*s) * 1000003;
	if (q->op == CORE_OP_BOOK)
		h = (h ^ (uint64_t)q->u.book.payment) * 1000003;
	if (q->op == CORE_OP_PAY)
		h = (((h ^ q->u.pay.succeeded) * 1000003 ^
		      q->u.pay.amount_cents) *
			     1000003 ^
		     q->u.pay.kind) *
		    1000003;
	if (q->op == CORE_OP_EVENT_PATCH) {
		h = ((h ^ (uint64_t)q->u.patch.capacity) * 1000003 ^
		     q->u.patch.cancel) *
		    1000003;
		h = (h ^ q->u.patch.restore ^ q->u.patch.instructor_id << 1 ^
		     q->u.patch.location_id << 20) *
		    1000003;
		h = (h ^ (uint64_t)q->u.patch.start_at ^
		     (uint64_t)q->u.patch.duration_min << 48) *
		    1000003;
		for (const char *s = q->u.patch.title; *s; s++)
			h = (h ^ (uint8_t)*s) * 1000003;
	}
	if (q->op == CORE_OP_SERIES_PATCH) {
		const int64_t v[] = {
			(int64_t)q->u.spatch.series_id,
			q->u.spatch.capacity,
			q->u.spatch.waitlist_capacity,
			q->u.spatch.price_cents,
			q->u.spatch.start_minute,
			q->u.spatch.duration_min,
			q->u.spatch.weekday_mask,
			q->u.spatch.last_date.year * 10000 +
				q->u.spatch.last_date.month * 100 +
				q->u.spatch.last_date.day,
			q->u.spatch.from.year * 10000 +
				q->u.spatch.from.month * 100 +
				q->u.spatch.from.day,
		};
		for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
			h = (h ^ (uint64_t)v[i]) * 1000003;
		for (const char *s = q->u.spatch.title; *s; s++)
			h = (h ^ (uint8_t)*s) * 1000003;
		for (const char *s = q->u.spatch.currency; *s; s++)
			h = (h ^ (uint8_t)*s) * 1000003;
	}
	return h;
}

/* ---- mirroring generated events ---- */

bool model_event_add(const struct core_event_view *v, char *err,
		     size_t err_size)
{
	struct model_event *e;

	if (model_event_get(v->id))
		return true;
	if (model_event_count == MODEL_EVENT_COUNT_MAX) {
		snprintf(err, err_size, "too many events");
		return false;
	}
	/* What the model keeps of it; no bookings yet. */
	e = &model_events[model_event_count++];
	*e = (struct model_event){
		.id = v->id,
		.start_at = v->start_at,
		.duration_min = v->duration_min,
		.location_id = v->location_id,
		.instructor_id = v->instructor_id,
		.org_id = v->org_id,
		.capacity = v->capacity,
		.waitlist_capacity = v->waitlist_capacity,
		.price = v->price_cents,
		.status = v->status,
		.series_id = v->series_id,
		.detached = v->detached,
	};
	memcpy(e->currency, v->currency, 4);
	memcpy(e->title, v->title, sizeof(e->title));
	if (v->booked || v->held || v->waitlist_length) {
		snprintf(err, err_size, "new event %" PRIu64 " not empty",
			 v->id);
		return false;
	}
	return true;
}

static bool load_one(void *ctx, const struct core_event_view *v, char *err,
		     size_t err_size)
{
	(void)ctx;
	return model_event_add(v, err, err_size);
}

bool model_load_events(const struct model_port_reader *rd, char *err,
		       size_t err_size)
{
	uint32_t count;

	return model_list_events(rd, false, load_one, NULL, &count, err,
				 err_size);
}
/* ---- comparing ---- */

bool model_cmp_view(const char *what, const struct core_booking_view *a,
		    const struct core_booking_view *m, char *err,
		    size_t err_size)
{
	if (a->id == m->id && a->event_id == m->event_id &&
	    strcmp(a->customer_id, m->customer_id) == 0 &&
	    a->status == m->status && a->position == m->position &&
	    a->hold_expires_at == m->hold_expires_at &&
	    a->created_at == m->created_at && a->late == m->late)
		return true;
	snprintf(err, err_size,
		 "%s differs: core {id %" PRIx64 " %s pos %u hold %" PRId64
		 " created %" PRId64 " cust %s late %d} model {id %" PRIx64
		 " %s pos %u hold %" PRId64 " created %" PRId64
		 " cust %s late %d}",
		 what, a->id, core_booking_status_name(a->status), a->position,
		 a->hold_expires_at, a->created_at, a->customer_id, a->late,
		 m->id, core_booking_status_name(m->status), m->position,
		 m->hold_expires_at, m->created_at, m->customer_id, m->late);
	return false;
}

bool model_cmp_resp(const struct core_resp *a, const struct core_resp *m,
		    char *err, size_t err_size)
{
	if (a->code != m->code) {
		snprintf(err, err_size, "op %d: code %s, model %s", m->op,
			 core_code_name(a->code), core_code_name(m->code));
		return false;
	}
	if (a->replayed != m->replayed) {
		snprintf(err, err_size, "op %d: replayed %d, model %d", m->op,
			 a->replayed, m->replayed);
		return false;
	}
	if (m->op == CORE_OP_REMIND && a->count != m->count) {
		snprintf(err, err_size, "remind: %u notifications, model %u",
			 a->count, m->count);
		return false;
	}
	if (m->op == CORE_OP_SERIES_PATCH &&
	    (a->id != m->id || a->count != m->count ||
	     a->series.regenerated != m->series.regenerated ||
	     a->series.kept != m->series.kept ||
	     a->series.cancelled != m->series.cancelled)) {
		snprintf(err, err_size,
			 "series patch: id %" PRIu64
			 " regenerated %u kept %u cancelled %u, model id %" PRIu64
			 " regenerated %u kept %u cancelled %u",
			 a->id, a->series.regenerated, a->series.kept,
			 a->series.cancelled, m->id, m->series.regenerated,
			 m->series.kept, m->series.cancelled);
		return false;
	}
	if (m->op == CORE_OP_TICK || m->op == CORE_OP_EVENT_PATCH ||
	    m->op == CORE_OP_REMIND || m->op == CORE_OP_SERIES_PATCH)
		return true;
	if ((a->code == CORE_OK || m_stored(m->op, m->code)) &&
	    !model_cmp_view("answer booking", &a->booking, &m->booking, err,
			    err_size))
		return false;
	if (a->has_promoted != m->has_promoted) {
		snprintf(err, err_size, "op %d: promoted %d, model %d", m->op,
			 a->has_promoted, m->has_promoted);
		return false;
	}
	if (m->has_promoted && !model_cmp_view("answer promoted", &a->promoted,
					       &m->promoted, err, err_size))
		return false;
	return true;
}

bool model_cmp_event(const struct model_event *e, model_event_get_fn eg,
		     model_booking_get_fn bg, void *ctx, bool bookings,
		     char *err, size_t err_size)
{
	struct core_event_view v;
	uint32_t booked = model_count_status(e, CORE_BOOKING_CONFIRMED);
	uint32_t held = model_count_status(e, CORE_BOOKING_PENDING_PAYMENT);
	uint32_t wl = model_count_status(e, CORE_BOOKING_WAITLISTED);

	if (eg(ctx, e->id, &v) != CORE_OK) {
		snprintf(err, err_size, "event %" PRIu64 " missing", e->id);
		return false;
	}
	if (v.capacity != e->capacity || v.booked != booked || v.held != held ||
	    v.waitlist_length != wl || v.status != e->status ||
	    v.detached != e->detached || v.price_cents != e->price ||
	    v.waitlist_capacity != e->waitlist_capacity ||
	    memcmp(v.currency, e->currency, 4) != 0) {
		snprintf(err, err_size,
			 "event %" PRIu64
			 ": core cap %u booked %u held %u wl %u/%u status %u "
			 "detached %d price %u %.3s; model cap %u booked %u "
			 "held %u wl %u/%u status %u detached %d price %u %.3s",
			 e->id, v.capacity, v.booked, v.held, v.waitlist_length,
			 v.waitlist_capacity, v.status, v.detached,
			 v.price_cents, v.currency, e->capacity, booked, held,
			 wl, e->waitlist_capacity, e->status, e->detached,
			 e->price, e->currency);
		return false;
	}
	if (v.start_at != e->start_at || v.duration_min != e->duration_min ||
	    v.location_id != e->location_id ||
	    v.instructor_id != e->instructor_id ||
	    strcmp(v.title, e->title) != 0) {
		snprintf(err, err_size,
			 "event %" PRIu64 ": core start %" PRId64
			 " dur %u loc %" PRIu64 " ins %" PRIu64
			 " title '%s'; model start %" PRId64
			 " dur %u loc %" PRIu64 " ins %" PRIu64 " title '%s'",
			 e->id, v.start_at, v.duration_min, v.location_id,
			 v.instructor_id, v.title, e->start_at, e->duration_min,
			 e->location_id, e->instructor_id, e->title);
		return false;
	}
	if (v.booked + v.held > v.capacity &&
	    v.status == CORE_EVENT_SCHEDULED) {
		snprintf(err, err_size, "event %" PRIu64 " overbooked", e->id);
		return false;
	}
	for (uint32_t i = 0; bookings && i < e->n; i++) {
		struct core_booking_view a, m;
		if (bg(ctx, e->b[i].id, &a) != CORE_OK) {
			snprintf(err, err_size, "booking %" PRIx64 " missing",
				 e->b[i].id);
			return false;
		}
		model_view(e, &e->b[i], &m);
		if (!model_cmp_view("stored booking", &a, &m, err, err_size))
			return false;
	}
	return true;
}

bool model_cmp_all(model_event_get_fn eg, model_booking_get_fn bg, void *ctx,
		   char *err, size_t err_size)
{
	for (uint32_t i = 0; i < model_event_count; i++)
		if (!model_cmp_event(&model_events[i], eg, bg, ctx, true, err,
				     err_size))
			return false;
	return true;
}

static struct core_resp port_get(const struct model_port_reader *rd,
				 enum core_op op, uint64_t id)
{
	struct core_req q = { .op = op, .now = rd->now };
	struct core_resp r;

	if (op == CORE_OP_EVENT_GET)
		q.event_id = id;
	else
		q.booking_id = id;
	if (core_call(rd->port, &q, &r) != 0)
		fail_hook(op == CORE_OP_EVENT_GET ? "core_call EVENT_GET"
						  : "core_call BOOKING_GET");
	return r;
}

int model_port_event(void *ctx, uint64_t id, struct core_event_view *v)
{
	struct core_resp r = port_get(ctx, CORE_OP_EVENT_GET, id);

	*v = r.event;
	return r.code;
}

int model_port_booking(void *ctx, uint64_t id, struct core_booking_view *v)
{
	struct core_resp r = port_get(ctx, CORE_OP_BOOKING_GET, id);

	*v = r.booking;
	return r.code;
}

bool model_list_events(const struct model_port_reader *rd, bool known,
		       bool (*each)(void *ctx, const struct core_event_view *v,
				    char *err, size_t err_size),
		       void *ctx, uint32_t *count, char *err, size_t err_size)
{
	static struct core_event_view views[CORE_LIST_LIMIT_MAX];
	struct core_req q = { .op = CORE_OP_EVENT_LIST, .now = rd->now };
	struct core_resp r;

	*count = 0;
	q.u.list.to = INT64_MAX;
	q.u.list.limit = CORE_LIST_LIMIT_MAX;
	q.u.list.out = views;
	do {
		if (core_call(rd->port, &q, &r) != 0)
			fail_hook("core_call EVENT_LIST");
		for (uint32_t i = 0; i < r.count; i++) {
			const struct core_event_view *v = &views[i];
			if (v->status == CORE_EVENT_SCHEDULED &&
			    v->booked + v->held > v->capacity) {
				snprintf(err, err_size,
					 "event %" PRIu64 " overbooked: booked "
					 "%u held %u capacity %u",
					 v->id, v->booked, v->held,
					 v->capacity);
				return false;
			}
			if (known && !model_event_get(v->id)) {
				snprintf(err, err_size,
					 "event %" PRIu64
					 " unknown to the model",
					 v->id);
				return false;
			}
			if (each && !each(ctx, v, err, err_size))
				return false;
		}
		*count += r.count;
		if (r.count) {
			q.u.list.after_start = views[r.count - 1].start_at;
			q.u.list.after_id = views[r.count - 1].id;
		}
	} while (r.more);
	return true;
}
