/*
 * test_model.c: model-based test of the sharded core.
 *
 * Seeded random operations (book, cancel, pay, fail payment, change
 * capacity, cancel events, time passing, retries with the same idempotency
 * key, keys reused for other requests) go to the sharded runtime through
 * core_call and to a small reference model written for obviousness, not
 * speed. Every answer is compared, the touched event and bookings after
 * every step, everything every CHECK_EVERY steps. At the end every logged
 * entry is replayed into a fresh state, which must equal the model too
 * (state = fold(entries)); and a snapshot taken half-way plus the log are
 * recovered into a runtime with one more shard, which must equal the model
 * and replay every remembered idempotency key as the model does.
 *
 *     MODEL_SEED=n MODEL_OPS=n MODEL_SHARDS=n ./test_model
 * The seed is printed first; a failure prints the step to replay it.
 */
#include "core.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUSTOMER_COUNT 60
#define EVENT_COUNT_MAX 4096
#define CHECK_EVERY 100000
#define HOLD_MS (10 * 60 * 1000)
#define RETENTION_MS (60 * 60 * 1000)
#define KEY_HISTORY 4096

/* ---- deterministic randomness ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static uint32_t rnd_below(uint32_t n) { return (uint32_t)(rnd() % n); }

static uint64_t seed;
static long step;

static void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "FAIL at step %ld (MODEL_SEED=%" PRIu64 "): ", step, seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* ---- the reference model ---- */

struct m_booking {
	uint64_t id;
	int customer;
	uint8_t status;
	core_time created, hold_expires;
};

struct m_event {
	uint64_t id;
	core_time start_at;
	uint32_t capacity, waitlist_capacity, price;
	char currency[4];
	uint8_t status;
	struct m_booking *b; /* by sequence - 1 */
	uint32_t n, cap;
};

struct m_key {
	uint64_t hi, lo, fp;
	core_time created;
	struct core_resp first;
};

static struct m_event events[EVENT_COUNT_MAX];
static uint32_t event_count;
static struct m_key *keys;
static uint32_t key_count, key_cap;
static char customer_ids[CUSTOMER_COUNT][CORE_CUSTOMER_ID_SIZE_MAX + 1];

static struct m_event *m_event_get(uint64_t id)
{
	for (uint32_t i = 0; i < event_count; i++)
		if (events[i].id == id)
			return &events[i];
	return NULL;
}

static struct m_booking *m_booking_get(uint64_t id, struct m_event **ev)
{
	struct m_event *e = m_event_get(id >> 24);
	uint64_t seq = id & 0xffffff;

	if (!e || seq == 0 || seq > e->n)
		return NULL;
	if (ev)
		*ev = e;
	return &e->b[seq - 1];
}

static bool active(uint8_t s)
{
	return s == CORE_BOOKING_CONFIRMED || s == CORE_BOOKING_PENDING_PAYMENT ||
	       s == CORE_BOOKING_WAITLISTED;
}

static uint32_t taken(const struct m_event *e)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < e->n; i++)
		n += e->b[i].status == CORE_BOOKING_CONFIRMED ||
		     e->b[i].status == CORE_BOOKING_PENDING_PAYMENT;
	return n;
}

static uint32_t count_status(const struct m_event *e, uint8_t s)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < e->n; i++)
		n += e->b[i].status == s;
	return n;
}

/* The waitlist is the waitlisted bookings in the order they were made. */
static struct m_booking *wl_head(struct m_event *e)
{
	for (uint32_t i = 0; i < e->n; i++)
		if (e->b[i].status == CORE_BOOKING_WAITLISTED)
			return &e->b[i];
	return NULL;
}

static uint32_t wl_position(const struct m_event *e, const struct m_booking *b)
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

static void m_view(const struct m_event *e, const struct m_booking *b,
		   struct core_booking_view *v)
{
	memset(v, 0, sizeof(*v));
	v->id = b->id;
	v->event_id = e->id;
	strcpy(v->customer_id, customer_ids[b->customer]);
	v->status = b->status;
	v->position = wl_position(e, b);
	v->hold_expires_at = b->status == CORE_BOOKING_PENDING_PAYMENT ? b->hold_expires : 0;
	v->created_at = b->created;
}

/* No hold expires before this (a lower bound, lowered by every new hold),
 * so that m_tick only looks when something may be due. */
static core_time next_due = INT64_MAX;

static void hold_made(core_time expires)
{
	if (expires && expires < next_due)
		next_due = expires;
}

/* A seat freed: the first waitlisted takes it. */
static uint32_t m_promote(struct m_event *e, core_time now, struct core_resp *r)
{
	uint32_t n = 0;
	struct m_booking *w;

	while (e->status == CORE_EVENT_SCHEDULED && taken(e) < e->capacity &&
	       (w = wl_head(e))) {
		w->status = e->price ? CORE_BOOKING_PENDING_PAYMENT : CORE_BOOKING_CONFIRMED;
		w->hold_expires = e->price ? now + HOLD_MS : 0;
		hold_made(w->hold_expires);
		if (n++ == 0 && r) {
			m_view(e, w, &r->promoted);
			r->has_promoted = true;
		}
	}
	return n;
}

static void m_release(struct m_event *e, struct m_booking *b, uint8_t status,
		      core_time now, struct core_resp *r)
{
	b->status = status;
	b->hold_expires = 0;
	if (r)
		m_view(e, b, &r->booking);
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
		struct m_event *best_e = NULL;
		struct m_booking *best = NULL;
		for (uint32_t i = 0; i < event_count; i++)
			for (uint32_t j = 0; j < events[i].n; j++) {
				struct m_booking *b = &events[i].b[j];
				if (b->status != CORE_BOOKING_PENDING_PAYMENT ||
				    b->hold_expires > now)
					continue;
				if (!best || b->hold_expires < best->hold_expires ||
				    (b->hold_expires == best->hold_expires && b->id < best->id)) {
					best = b;
					best_e = &events[i];
				}
			}
		if (!best)
			break;
		m_release(best_e, best, CORE_BOOKING_EXPIRED, now, NULL);
	}
	next_due = INT64_MAX;
	for (uint32_t i = 0; i < event_count; i++)
		for (uint32_t j = 0; j < events[i].n; j++)
			if (events[i].b[j].status == CORE_BOOKING_PENDING_PAYMENT)
				hold_made(events[i].b[j].hold_expires);
}

static bool customer_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > CORE_CUSTOMER_ID_SIZE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@-", id[i]))
			return false;
	return true;
}

static int customer_index(const char *id)
{
	for (int i = 0; i < CUSTOMER_COUNT; i++)
		if (strcmp(customer_ids[i], id) == 0)
			return i;
	return -1;
}

static enum core_code m_book(const struct core_req *q, struct core_resp *r)
{
	struct m_event *e = m_event_get(q->event_id);
	int cust = customer_index(q->customer_id);
	struct m_booking *b;
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
		status = hold ? CORE_BOOKING_PENDING_PAYMENT : CORE_BOOKING_CONFIRMED;
	else if (count_status(e, CORE_BOOKING_WAITLISTED) < e->waitlist_capacity)
		status = CORE_BOOKING_WAITLISTED;
	else
		return CORE_EVENT_FULL;
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 8;
		e->b = realloc(e->b, e->cap * sizeof(*e->b));
	}
	b = &e->b[e->n++];
	b->id = e->id << 24 | e->n;
	b->customer = cust;
	b->status = status;
	b->created = q->now;
	b->hold_expires = status == CORE_BOOKING_PENDING_PAYMENT ? q->now + HOLD_MS : 0;
	hold_made(b->hold_expires);
	m_view(e, b, &r->booking);
	return CORE_OK;
}

static enum core_code m_cancel(const struct core_req *q, struct core_resp *r)
{
	struct m_event *e;
	struct m_booking *b = m_booking_get(q->booking_id, &e);

	if (!b)
		return CORE_NO_BOOKING;
	if (!active(b->status))
		return CORE_NOT_ACTIVE;
	m_release(e, b, CORE_BOOKING_CANCELLED, q->now, r);
	return CORE_OK;
}

static enum core_code m_pay(const struct core_req *q, struct core_resp *r)
{
	struct m_event *e;
	struct m_booking *b = m_booking_get(q->booking_id, &e);

	if (!b)
		return CORE_NO_BOOKING;
	if (b->status != CORE_BOOKING_PENDING_PAYMENT) {
		m_view(e, b, &r->booking);
		return CORE_NOT_PENDING;
	}
	if (q->u.pay.succeeded && (q->u.pay.amount_cents != e->price ||
				   strcmp(q->u.pay.currency, e->currency) != 0)) {
		m_view(e, b, &r->booking);
		return CORE_PAYMENT_MISMATCH;
	}
	if (q->u.pay.succeeded) {
		b->status = CORE_BOOKING_CONFIRMED;
		b->hold_expires = 0;
		m_view(e, b, &r->booking);
	} else {
		m_release(e, b, CORE_BOOKING_PAYMENT_FAILED, q->now, r);
	}
	return CORE_OK;
}

static enum core_code m_patch(const struct core_req *q, struct core_resp *r)
{
	struct m_event *e = m_event_get(q->event_id);

	if (!e)
		return CORE_NO_EVENT;
	if (q->u.patch.capacity > 1000000)
		return CORE_INVALID;
	if (e->status == CORE_EVENT_CANCELLED && q->u.patch.capacity >= 0)
		return CORE_NOT_BOOKABLE;
	if (q->u.patch.cancel) {
		e->status = CORE_EVENT_CANCELLED;
		for (uint32_t i = 0; i < e->n; i++)
			if (active(e->b[i].status)) {
				e->b[i].status = CORE_BOOKING_CANCELLED;
				e->b[i].hold_expires = 0;
			}
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

static bool m_stored(const struct core_req *q, enum core_code code)
{
	return code == CORE_OK ||
	       (q->op == CORE_OP_PAY &&
		(code == CORE_NOT_PENDING || code == CORE_PAYMENT_MISMATCH));
}

/* Keys by (lo mod 2^20), newest last in each chain: a plain chained table. */
#define KEY_BUCKETS (1u << 20)
static uint32_t *key_bucket; /* index + 1 of the newest key in the bucket */
static uint32_t *key_next;   /* index + 1 of the previous key in the bucket */

static struct m_key *m_key_find(const struct core_idem *k)
{
	for (uint32_t i = key_bucket[k->lo % KEY_BUCKETS]; i; i = key_next[i - 1])
		if (keys[i - 1].hi == k->hi && keys[i - 1].lo == k->lo)
			return &keys[i - 1];
	return NULL;
}

static void m_key_add(const struct core_req *q, const struct core_resp *r)
{
	uint32_t b = q->idem.lo % KEY_BUCKETS;

	if (key_count == key_cap) {
		key_cap = key_cap ? key_cap * 2 : 1024;
		keys = realloc(keys, key_cap * sizeof(*keys));
		key_next = realloc(key_next, key_cap * sizeof(*key_next));
	}
	keys[key_count] = (struct m_key){ q->idem.hi, q->idem.lo,
					  q->idem.fingerprint, q->now, *r };
	key_next[key_count] = key_bucket[b];
	key_bucket[b] = ++key_count;
}

static void m_apply(const struct core_req *q, struct core_resp *r)
{
	memset(r, 0, sizeof(*r));
	r->op = q->op;
	m_tick(q->now);
	if (core_idem_present(&q->idem)) {
		struct m_key *k = m_key_find(&q->idem);
		if (k && k->created + RETENTION_MS > q->now) {
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
	case CORE_OP_CANCEL: r->code = m_cancel(q, r); break;
	case CORE_OP_PAY: r->code = m_pay(q, r); break;
	case CORE_OP_EVENT_PATCH: r->code = m_patch(q, r); break;
	case CORE_OP_TICK: r->code = CORE_OK; break;
	default: fail("model: op %d", q->op);
	}
	if (r->code != CORE_OK && !(q->op == CORE_OP_PAY && m_stored(q, r->code)))
		memset(&r->booking, 0, sizeof(r->booking)), r->has_promoted = false,
		memset(&r->promoted, 0, sizeof(r->promoted)), r->count = 0;
	if (core_idem_present(&q->idem) && m_stored(q, r->code)) {
		m_key_add(q, r);
	}
}

/* ---- comparing ---- */

static void cmp_view(const char *what, const struct core_booking_view *a,
		     const struct core_booking_view *m)
{
	if (a->id != m->id || a->event_id != m->event_id ||
	    strcmp(a->customer_id, m->customer_id) != 0 || a->status != m->status ||
	    a->position != m->position || a->hold_expires_at != m->hold_expires_at ||
	    a->created_at != m->created_at)
		fail("%s differs: core {id %" PRIx64 " %s pos %u hold %" PRId64
		     " created %" PRId64 " cust %s} model {id %" PRIx64
		     " %s pos %u hold %" PRId64 " created %" PRId64 " cust %s}",
		     what, a->id, core_booking_status_name(a->status), a->position,
		     a->hold_expires_at, a->created_at, a->customer_id, m->id,
		     core_booking_status_name(m->status), m->position,
		     m->hold_expires_at, m->created_at, m->customer_id);
}

static void cmp_resp(const struct core_resp *a, const struct core_resp *m)
{
	if (a->code != m->code)
		fail("op %d: code %s, model %s", m->op, core_code_name(a->code),
		     core_code_name(m->code));
	if (a->replayed != m->replayed)
		fail("op %d: replayed %d, model %d", m->op, a->replayed, m->replayed);
	if (m->op == CORE_OP_TICK || m->op == CORE_OP_EVENT_PATCH)
		return;
	if (a->code == CORE_OK || m_stored(&(struct core_req){ .op = m->op }, m->code))
		cmp_view("answer booking", &a->booking, &m->booking);
	if (a->has_promoted != m->has_promoted)
		fail("op %d: promoted %d, model %d", m->op, a->has_promoted,
		     m->has_promoted);
	if (m->has_promoted)
		cmp_view("answer promoted", &a->promoted, &m->promoted);
}

typedef int (*event_get_fn)(void *ctx, uint64_t id, struct core_event_view *v);
typedef int (*booking_get_fn)(void *ctx, uint64_t id, struct core_booking_view *v);

static void cmp_event(const struct m_event *e, event_get_fn eg, booking_get_fn bg,
		      void *ctx, bool bookings)
{
	struct core_event_view v;

	if (eg(ctx, e->id, &v) != CORE_OK)
		fail("event %" PRIu64 " missing", e->id);
	if (v.capacity != e->capacity || v.booked != count_status(e, CORE_BOOKING_CONFIRMED) ||
	    v.held != count_status(e, CORE_BOOKING_PENDING_PAYMENT) ||
	    v.waitlist_length != count_status(e, CORE_BOOKING_WAITLISTED) ||
	    v.status != e->status)
		fail("event %" PRIu64 ": core cap %u booked %u held %u wl %u status %u; "
		     "model cap %u booked %u held %u wl %u status %u",
		     e->id, v.capacity, v.booked, v.held, v.waitlist_length, v.status,
		     e->capacity, count_status(e, CORE_BOOKING_CONFIRMED),
		     count_status(e, CORE_BOOKING_PENDING_PAYMENT),
		     count_status(e, CORE_BOOKING_WAITLISTED), e->status);
	if (v.booked + v.held > v.capacity && v.status == CORE_EVENT_SCHEDULED)
		fail("event %" PRIu64 " overbooked", e->id);
	for (uint32_t i = 0; bookings && i < e->n; i++) {
		struct core_booking_view a, m;
		if (bg(ctx, e->b[i].id, &a) != CORE_OK)
			fail("booking %" PRIx64 " missing", e->b[i].id);
		m_view(e, &e->b[i], &m);
		cmp_view("stored booking", &a, &m);
	}
}

/* ---- the runtime side ---- */

static core *c;
static core_port *port;

static int rt_event(void *ctx, uint64_t id, struct core_event_view *v)
{
	struct core_req q = { .op = CORE_OP_EVENT_GET, .now = *(core_time *)ctx, .event_id = id };
	struct core_resp r;
	if (core_call(port, &q, &r))
		fail("core_call");
	*v = r.event;
	return r.code;
}

static int rt_booking(void *ctx, uint64_t id, struct core_booking_view *v)
{
	struct core_req q = { .op = CORE_OP_BOOKING_GET, .now = *(core_time *)ctx, .booking_id = id };
	struct core_resp r;
	if (core_call(port, &q, &r))
		fail("core_call");
	*v = r.booking;
	return r.code;
}

static int st_event(void *ctx, uint64_t id, struct core_event_view *v)
{
	return core_state_event(ctx, id, v);
}

static int st_booking(void *ctx, uint64_t id, struct core_booking_view *v)
{
	return core_state_booking(ctx, id, v);
}

/* The log: every entry, in log order, to replay at the end. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *log_buf;
static size_t log_size, log_cap;
static uint64_t log_lsn;

static int log_hook(void *ctx, unsigned lane, const void *entry, size_t size,
		    uint64_t *lsn)
{
	pthread_mutex_lock(&log_lock);
	if (log_size + size + 16 > log_cap) {
		log_cap = log_cap ? log_cap * 2 : (1u << 24);
		log_buf = realloc(log_buf, log_cap);
	}
	uint32_t n = (uint32_t)size, l = lane;
	*lsn = ++log_lsn;
	memcpy(log_buf + log_size, &n, 4);
	memcpy(log_buf + log_size + 4, &l, 4);
	memcpy(log_buf + log_size + 8, lsn, 8);
	memcpy(log_buf + log_size + 16, entry, size);
	log_size += 16 + size;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

static uint8_t *snap_buf;
static size_t snap_size;
static uint64_t snap_lsn; /* the snapshot holds the log up to here */

static int snap_write(void *ctx, const void *buf, size_t size)
{
	snap_buf = realloc(snap_buf, snap_size + size);
	memcpy(snap_buf + snap_size, buf, size);
	snap_size += size;
	return 0;
}

static void snapshot(core *rt)
{
	core_park(rt);
	snap_lsn = log_lsn;
	if (core_snapshot_write(rt, snap_write, NULL) != 0)
		fail("snapshot write");
	core_unpark(rt);
}

static void call(const struct core_req *q, struct core_resp *r)
{
	if (core_call(port, q, r) != 0)
		fail("core_call op %d", q->op);
}

/* Mirror the events the core generated into the model. */
static void load_events(core_time now)
{
	static struct core_event_view views[CORE_LIST_LIMIT_MAX];
	struct core_req q = { .op = CORE_OP_EVENT_LIST, .now = now };
	struct core_resp r;

	q.u.list.from = 0;
	q.u.list.to = INT64_MAX;
	q.u.list.limit = CORE_LIST_LIMIT_MAX;
	q.u.list.out = views;
	do {
		call(&q, &r);
		for (uint32_t i = 0; i < r.count; i++) {
			const struct core_event_view *v = &views[i];
			if (m_event_get(v->id))
				continue;
			if (event_count == EVENT_COUNT_MAX)
				fail("too many events");
			struct m_event *e = &events[event_count++];
			memset(e, 0, sizeof(*e));
			e->id = v->id;
			e->start_at = v->start_at;
			e->capacity = v->capacity;
			e->waitlist_capacity = v->waitlist_capacity;
			e->price = v->price_cents;
			memcpy(e->currency, v->currency, 4);
			e->status = v->status;
			if (v->booked || v->held || v->waitlist_length)
				fail("new event %" PRIu64 " not empty", v->id);
		}
		if (r.count) {
			q.u.list.after_start = views[r.count - 1].start_at;
			q.u.list.after_id = views[r.count - 1].id;
		}
	} while (r.more);
}

static void setup_catalogue(core_time now)
{
	struct core_req q = { .now = now };
	struct core_resp r;
	static struct core_series_spec spec;

	q.op = CORE_OP_ORG_CREATE;
	strcpy(q.u.cat.name, "Studio");
	strcpy(q.u.cat.timezone, "Europe/Berlin");
	call(&q, &r);
	if (r.code != CORE_OK || r.id != 1)
		fail("org create: %s", core_code_name(r.code));
	q.op = CORE_OP_LOCATION_CREATE;
	q.u.cat.org_id = 1;
	call(&q, &r);
	q.op = CORE_OP_INSTRUCTOR_CREATE;
	call(&q, &r);
	if (r.code != CORE_OK)
		fail("instructor create: %s", core_code_name(r.code));
	for (int i = 0; i < 6; i++) {
		memset(&spec, 0, sizeof(spec));
		spec.org_id = spec.location_id = spec.instructor_id = 1;
		snprintf(spec.title, sizeof(spec.title), "Class %d", i);
		spec.capacity = 1 + rnd_below(5);
		spec.waitlist_capacity = rnd_below(4);
		spec.price_cents = i % 2 ? 1500 : 0;
		strcpy(spec.currency, i % 2 ? "eur" : "");
		strcpy(spec.timezone, i % 3 ? "Europe/Berlin" : "America/New_York");
		spec.weekday_mask = (uint8_t)(1 + rnd_below(127));
		spec.start_minute = (uint16_t)(6 * 60 + rnd_below(14 * 60));
		spec.duration_min = 60;
		spec.first_date = (struct core_date){ 2026, 1, 1 };
		q.op = CORE_OP_SERIES_CREATE;
		q.u.series = &spec;
		call(&q, &r);
		if (r.code != CORE_OK)
			fail("series create: %s", core_code_name(r.code));
	}
}

static void random_idem(struct core_idem *k)
{
	k->hi = rnd();
	k->lo = rnd();
}

static uint64_t fingerprint(const struct core_req *q)
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
		h = ((h ^ q->u.pay.succeeded) * 1000003 ^ q->u.pay.amount_cents) * 1000003;
	if (q->op == CORE_OP_EVENT_PATCH)
		h = ((h ^ (uint64_t)q->u.patch.capacity) * 1000003 ^ q->u.patch.cancel) * 1000003;
	return h;
}

/* Mostly an event still to come: past ones only refuse. */
static struct m_event *pick_event(core_time now)
{
	struct m_event *e = &events[rnd_below(event_count)];

	for (int tries = 0; tries < 16 && e->start_at <= now && rnd_below(10); tries++)
		e = &events[rnd_below(event_count)];
	return e;
}

static struct m_booking *pick_booking(struct m_event **ev, core_time now)
{
	for (int tries = 0; tries < 8; tries++) {
		struct m_event *e = pick_event(now);
		if (e->n) {
			*ev = e;
			return &e->b[rnd_below(e->n)];
		}
	}
	return NULL;
}

static struct core_req history[KEY_HISTORY];
static uint32_t history_count;

static void make_request(struct core_req *q, core_time now)
{
	uint32_t dice = rnd_below(100);
	struct m_event *e = pick_event(now);
	struct m_booking *b;

	memset(q, 0, sizeof(*q));
	q->now = now;
	if (history_count && dice < 6) { /* a retry, the same request */
		*q = history[rnd_below(history_count)];
		q->now = now;
		return;
	}
	if (history_count && dice < 8) { /* the same key, another request */
		struct core_idem k = history[rnd_below(history_count)].idem;
		make_request(q, now);
		if (core_idem_present(&q->idem)) {
			q->idem.hi = k.hi;
			q->idem.lo = k.lo;
		}
		return;
	}
	if (dice < 55) {
		q->op = CORE_OP_BOOK;
		q->event_id = rnd_below(50) ? e->id : e->id + 100000;
		strcpy(q->customer_id, rnd_below(200) ? customer_ids[rnd_below(CUSTOMER_COUNT)]
						      : "bad id!");
		q->u.book.payment = rnd_below(5) ? CORE_PAY_AUTO : CORE_PAY_NONE;
	} else if (dice < 75) {
		q->op = CORE_OP_CANCEL;
		b = pick_booking(&e, now);
		q->booking_id = b ? b->id : 12345;
	} else if (dice < 88) {
		q->op = CORE_OP_PAY;
		b = pick_booking(&e, now);
		q->booking_id = b ? b->id : 12345;
		q->u.pay.succeeded = rnd_below(4) != 0;
		q->u.pay.amount_cents = rnd_below(10) ? e->price : e->price + 1;
		strcpy(q->u.pay.currency, rnd_below(20) ? e->currency : "usd");
	} else if (dice < 96) {
		q->op = CORE_OP_EVENT_PATCH;
		q->event_id = e->id;
		q->u.patch.capacity = rnd_below(6);
		if (rnd_below(10) == 0) {
			q->u.patch.capacity = -1;
			q->u.patch.cancel = rnd_below(100) == 0;
		}
	} else {
		q->op = CORE_OP_TICK;
		return;
	}
	if (q->op == CORE_OP_BOOK || q->op == CORE_OP_CANCEL || rnd_below(2)) {
		random_idem(&q->idem);
		q->idem.fingerprint = fingerprint(q);
		history[history_count < KEY_HISTORY ? history_count++
						    : rnd_below(KEY_HISTORY)] = *q;
	}
}

static void check_all(core_time now, event_get_fn eg, booking_get_fn bg, void *ctx)
{
	for (uint32_t i = 0; i < event_count; i++)
		cmp_event(&events[i], eg, bg, ctx, true);
}

int main(void)
{
	const char *env;
	long ops = 1000000;
	unsigned shards = 2;
	struct core_config cfg;
	core_time now = INT64_C(1767225600000); /* 2026-01-01T00:00:00Z */
	long counts[CORE_OP_COUNT][CORE_CODE_COUNT] = { { 0 } };

	seed = (uint64_t)time(NULL);
	if ((env = getenv("MODEL_SEED")))
		seed = strtoull(env, NULL, 10);
	if ((env = getenv("MODEL_OPS")))
		ops = strtol(env, NULL, 10);
	if ((env = getenv("MODEL_SHARDS")))
		shards = (unsigned)strtoul(env, NULL, 10);
	printf("model: seed %" PRIu64 ", %ld operations, %u shards\n", seed, ops, shards);
	rng_state = seed;

	key_bucket = calloc(KEY_BUCKETS, sizeof(*key_bucket));
	for (int i = 0; i < CUSTOMER_COUNT; i++)
		snprintf(customer_ids[i], sizeof(customer_ids[i]),
			 "cust-%02d@example.org", i);

	core_config_default(&cfg);
	cfg.shard_count = shards;
	cfg.port_count = 1;
	cfg.event_count_max = EVENT_COUNT_MAX;
	cfg.booking_count_max = 1u << 21;
	cfg.customer_count_max = 1024;
	cfg.idem_count_max = 1u << 20;
	cfg.ring_size = 64;
	cfg.hold_ms = HOLD_MS;
	cfg.idem_retention_ms = RETENTION_MS;
	cfg.horizon_days = 14;
	cfg.log = log_hook;
	if (core_open(&cfg, &c) != 0)
		fail("core_open");
	port = core_port_get(c, 0);
	setup_catalogue(now);
	load_events(now);
	if (event_count == 0)
		fail("no events generated");

	for (step = 0; step < ops; step++) {
		struct core_req q;
		struct core_resp a, m;

		if (step % 20000 == 0 && step) {
			struct core_req g = { .op = CORE_OP_GENERATE, .now = now };
			call(&g, &a);
			if (a.code != CORE_OK)
				fail("generate: %s", core_code_name(a.code));
			load_events(now);
		}
		if (rnd_below(4) == 0) {
			now += rnd_below(2000);
			struct core_req t = { .op = CORE_OP_TICK, .now = now };
			call(&t, &a);
		}
		make_request(&q, now);
		call(&q, &a);
		m_apply(&q, &m);
		cmp_resp(&a, &m);
		counts[q.op][a.code]++;

		struct m_event *e = NULL;
		if (q.op == CORE_OP_BOOK || q.op == CORE_OP_EVENT_PATCH)
			e = m_event_get(q.event_id);
		else if (q.op == CORE_OP_CANCEL || q.op == CORE_OP_PAY)
			m_booking_get(q.booking_id, &e);
		if (e)
			cmp_event(e, rt_event, rt_booking, &now, false);
		/* The bookings this step touched, as stored now. */
		uint64_t touched[2] = { m.booking.id, m.has_promoted ? m.promoted.id : 0 };
		for (int i = 0; i < 2; i++) {
			struct m_event *te;
			struct m_booking *tb = touched[i] ? m_booking_get(touched[i], &te) : NULL;
			struct core_booking_view av, mv;
			if (!tb)
				continue;
			if (rt_booking(&now, tb->id, &av) != CORE_OK)
				fail("booking %" PRIx64 " missing", tb->id);
			m_view(te, tb, &mv);
			cmp_view("stored booking", &av, &mv);
		}
		if (step % CHECK_EVERY == CHECK_EVERY - 1)
			check_all(now, rt_event, rt_booking, &now);
		if (step == ops / 2)
			snapshot(c);
	}
	check_all(now, rt_event, rt_booking, &now);
	core_close(c);

	/* state = fold(entries): replay the whole log into one fresh state. */
	core_state *st;
	cfg.shard_count = 1;
	cfg.log = NULL;
	st = core_state_new(&cfg);
	for (size_t pos = 0; pos < log_size;) {
		uint32_t n;
		memcpy(&n, log_buf + pos, 4);
		if (core_state_apply(st, log_buf + pos + 16, n) != 0)
			fail("replay of the log failed at byte %zu", pos);
		pos += 16 + n;
	}
	check_all(now, st_event, st_booking, st);
	core_state_free(st);

	/* Recovery: the mid-run snapshot plus the log after it, into a runtime
	 * with another shard count. Keys must replay as before. */
	cfg.shard_count = shards + 1;
	if (core_open(&cfg, &c) != 0)
		fail("core_open for recovery");
	port = core_port_get(c, 0);
	core_park(c);
	if (core_snapshot_load(c, snap_buf, snap_size) != 0)
		fail("snapshot load");
	for (size_t pos = 0; pos < log_size;) {
		uint32_t n;
		uint64_t lsn;
		memcpy(&n, log_buf + pos, 4);
		memcpy(&lsn, log_buf + pos + 8, 8);
		if (lsn > snap_lsn && core_replay(c, log_buf + pos + 16, n) != 0)
			fail("core_replay failed at lsn %" PRIu64, lsn);
		pos += 16 + n;
	}
	core_unpark(c);
	check_all(now, rt_event, rt_booking, &now);
	for (uint32_t i = 0; i < history_count; i++) {
		struct core_req q = history[i];
		struct core_resp a, m;
		q.now = now;
		call(&q, &a);
		m_apply(&q, &m);
		cmp_resp(&a, &m);
	}
	core_close(c);
	free(snap_buf);

	printf("model: %-12s %8s %8s\n", "operation", "outcome", "count");
	static const char *ops_names[CORE_OP_COUNT] = {
		[CORE_OP_BOOK] = "book", [CORE_OP_CANCEL] = "cancel",
		[CORE_OP_PAY] = "pay", [CORE_OP_EVENT_PATCH] = "patch",
		[CORE_OP_TICK] = "tick" };
	for (int o = 0; o < CORE_OP_COUNT; o++)
		for (int k = 0; k < CORE_CODE_COUNT; k++)
			if (counts[o][k])
				printf("model: %-12s %-24s %8ld\n", ops_names[o],
				       core_code_name(k), counts[o][k]);
	printf("model: %ld operations on %u events, %zu log bytes replayed: 1 passed, 0 failed\n",
	       ops, event_count, log_size);
	free(log_buf);
	free(keys);
	free(key_next);
	free(key_bucket);
	for (uint32_t i = 0; i < event_count; i++)
		free(events[i].b);
	return 0;
}
