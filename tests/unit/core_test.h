/*
 * core_test.h: what the test_core_*.c programs share: fixed times (T0 =
 * Monday 2026-03-02 08:00Z, 09:00 in Berlin; the single-class events are on
 * Wednesday 2026-03-04 18:00 Berlin = 17:00Z), a small configuration, an
 * entry log (elog_*: entries as applied, for replaying into a fresh state),
 * request builders (q_*), view comparisons, the standalone state's helpers
 * (st_*: sdo() decides and applies, and checks that every refusal and
 * replay makes an empty entry, except the payment outcomes that are
 * recorded and flagged), the sharded runtime's (rt_*: struct rt, rcall),
 * and core_test_main, each program's main.
 *
 * test_core_catalog.c: catalogue ids, series validation, generation.
 * test_core_booking.c: booking, cancel, holds, payments, capacity.
 * test_core_idem.c: idempotency keys, in the state and across shards.
 * test_core_log.c: state = fold(entries), corrupt entries, rebuilds.
 * test_core_limits.c: tables growing, limits, ceilings, archiving.
 * test_core_listing.c: the runtime's pipeline and fan-out listings.
 *
 * tests/unit/test_model.c compares random operations against a reference
 * model; these files state the rules of docs/contract.md "Domain rules" one
 * by one instead. Checks marked "Regression" guard bugs they found in
 * core/.
 */
#ifndef BOOKD_TEST_CORE_H
#define BOOKD_TEST_CORE_H

#include "check.h"
#include "core.h"
#include "entry.h"
#include "record.h" /* rec_encode */
#include "state.h"  /* core__state_dump */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- time ---- */

#define MIN_MS INT64_C(60000)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)
#define HOLD_MS (10 * MIN_MS)

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static inline int64_t civil_days(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static inline core_time utc_ms(int y, int mo, int d, int h, int mi)
{
	return ((civil_days(y, mo, d) * 24 + h) * 60 + mi) * MIN_MS;
}

#define D(y, m, d) ((struct core_date){ (y), (m), (d) })
#define NO_DATE D(0, 0, 0)

#define T0 utc_ms(2026, 3, 2, 8, 0)	   /* Monday, 09:00 in Berlin */
#define EV_START utc_ms(2026, 3, 4, 17, 0) /* Wednesday 18:00 Berlin */

#define MON 0x01
#define TUE 0x02
#define WED 0x04
#define THU 0x08
#define FRI 0x10
#define EVERY_DAY 0x7f

/* ---- configuration ---- */

static inline void cfg_small(struct core_config *cfg, unsigned shards)
{
	core_config_default(cfg);
	cfg->shard_count = shards;
	cfg->port_count = 1;
	cfg->event_count_max = 4096;
	cfg->booking_count_max = 1u << 16;
	cfg->customer_count_max = 4096;
	cfg->idem_count_max = 4096;
	cfg->ring_size = 64;
	cfg->hold_ms = HOLD_MS;
}

/* ---- an entry log: entries as applied, 4-byte length before each ---- */

struct elog {
	pthread_mutex_t lock;
	uint8_t *buf;
	size_t size, cap;
	uint64_t lsn;
};

static struct elog g_log = { .lock = PTHREAD_MUTEX_INITIALIZER };
static bool g_log_on; /* standalone: sdo() records what it applies */

static inline void elog_reset(void)
{
	pthread_mutex_lock(&g_log.lock);
	free(g_log.buf);
	g_log.buf = NULL;
	g_log.size = g_log.cap = 0;
	g_log.lsn = 0;
	pthread_mutex_unlock(&g_log.lock);
}

static inline uint64_t elog_add(const void *entry, size_t size)
{
	uint64_t lsn;
	uint32_t n = (uint32_t)size;

	pthread_mutex_lock(&g_log.lock);
	if (g_log.size + size + 4 > g_log.cap) {
		size_t cap = g_log.cap ? g_log.cap : 1u << 16;
		while (g_log.size + size + 4 > cap)
			cap *= 2;
		g_log.buf = realloc(g_log.buf, cap);
		if (!g_log.buf)
			abort();
		g_log.cap = cap;
	}
	memcpy(g_log.buf + g_log.size, &n, 4);
	memcpy(g_log.buf + g_log.size + 4, entry, size);
	g_log.size += 4 + size;
	lsn = ++g_log.lsn;
	pthread_mutex_unlock(&g_log.lock);
	return lsn;
}

static inline int log_hook(void *ctx, unsigned lane, const void *entry,
			   size_t size, uint64_t *lsn)
{
	(void)ctx;
	(void)lane;
	*lsn = elog_add(entry, size);
	return 0;
}

/* Applies every logged entry to st, in log order; 0 or the first error. */
static inline int elog_replay(core_state *st)
{
	for (size_t pos = 0; pos < g_log.size;) {
		uint32_t n;
		int rc;
		memcpy(&n, g_log.buf + pos, 4);
		rc = core_state_apply(st, g_log.buf + pos + 4, n);
		if (rc)
			return rc;
		pos += 4 + n;
	}
	return 0;
}

/* The records of the runtime's log for which match(rec, arg) holds. */
static inline uint32_t elog_count(bool (*match)(const struct core_rec *r,
						uint32_t arg),
				  uint32_t arg)
{
	uint32_t n = 0;

	for (size_t at = 0; at < g_log.size;) {
		uint32_t size;
		size_t pos = 0;
		struct core_rec rec;
		memcpy(&size, g_log.buf + at, 4);
		while (core_entry_next(g_log.buf + at + 4, size, &pos, &rec) >
		       0)
			n += match(&rec, arg);
		at += 4 + size;
	}
	return n;
}

/* The snapshot records of a state, encoded: the whole state as bytes. */
struct dump {
	struct wbuf w;
	uint8_t buf[1 << 16];
};

static inline void dump_rec(void *ctx, const struct core_rec *r)
{
	rec_encode(&((struct dump *)ctx)->w, r);
}

static inline void dump(const core_state *st, struct dump *d)
{
	d->w = (struct wbuf){ .data = d->buf, .capacity = sizeof(d->buf) };
	core__state_dump(st, dump_rec, d);
	CHECK(!d->w.overflow);
}

/* ---- requests ---- */

static inline struct core_req q_new(enum core_op op, core_time now)
{
	struct core_req q;
	memset(&q, 0, sizeof(q));
	q.op = op;
	q.now = now;
	return q;
}

static inline void set_customer(struct core_req *q, const char *cust)
{
	size_t n = strlen(cust);
	if (n > CORE_CUSTOMER_ID_SIZE_MAX)
		n = CORE_CUSTOMER_ID_SIZE_MAX;
	memset(q->customer_id, 0, sizeof(q->customer_id));
	memcpy(q->customer_id, cust, n);
}

static inline struct core_req q_book(core_time now, uint64_t event_id,
				     const char *cust, enum core_payment pay)
{
	struct core_req q = q_new(CORE_OP_BOOK, now);
	q.event_id = event_id;
	set_customer(&q, cust);
	q.u.book.payment = pay;
	return q;
}

static inline struct core_req q_cancel(core_time now, uint64_t booking_id)
{
	struct core_req q = q_new(CORE_OP_CANCEL, now);
	q.booking_id = booking_id;
	return q;
}

static inline struct core_req q_pay(core_time now, uint64_t booking_id, bool ok,
				    uint64_t amount, const char *currency)
{
	struct core_req q = q_new(CORE_OP_PAY, now);
	q.booking_id = booking_id;
	q.u.pay.succeeded = ok;
	q.u.pay.amount_cents = amount;
	snprintf(q.u.pay.currency, sizeof(q.u.pay.currency), "%.3s", currency);
	q.u.pay.payment_ref = booking_id * 31 + amount;
	return q;
}

static inline struct core_req q_patch(core_time now, uint64_t event_id,
				      int64_t capacity, bool cancel)
{
	struct core_req q = q_new(CORE_OP_EVENT_PATCH, now);
	q.event_id = event_id;
	q.u.patch.capacity = capacity;
	q.u.patch.cancel = cancel;
	return q;
}

static inline struct core_req q_named(enum core_op op, core_time now,
				      uint64_t org_id, const char *name,
				      const char *tz)
{
	struct core_req q = q_new(op, now);
	q.u.cat.org_id = org_id;
	snprintf(q.u.cat.name, sizeof(q.u.cat.name), "%s", name);
	snprintf(q.u.cat.timezone, sizeof(q.u.cat.timezone), "%s", tz);
	return q;
}

static inline struct core_req q_generate(core_time now, uint64_t series_id,
					 struct core_date until)
{
	struct core_req q = q_new(CORE_OP_GENERATE, now);
	q.u.generate.series_id = series_id;
	q.u.generate.until = until;
	return q;
}

static inline void with_key(struct core_req *q, uint64_t hi, uint64_t lo,
			    uint64_t fp)
{
	q->idem.hi = hi;
	q->idem.lo = lo;
	q->idem.fingerprint = fp;
}

static inline void spec_init(struct core_series_spec *s, uint64_t org,
			     uint64_t loc, uint64_t ins, const char *tz,
			     uint8_t mask, unsigned start_minute,
			     struct core_date first, struct core_date last)
{
	memset(s, 0, sizeof(*s));
	s->org_id = org;
	s->location_id = loc;
	s->instructor_id = ins;
	snprintf(s->title, sizeof(s->title), "Yoga");
	s->capacity = 10;
	s->waitlist_capacity = 5;
	snprintf(s->timezone, sizeof(s->timezone), "%s", tz);
	s->weekday_mask = mask;
	s->start_minute = (uint16_t)start_minute;
	s->duration_min = 60;
	s->first_date = first;
	s->last_date = last;
}

/* The spec of a one-class series (org, location and instructor 1) on
 * Wednesday 2026-03-04 18:00 Berlin (EV_START). */
static inline void one_class(struct core_series_spec *spec, uint32_t capacity,
			     uint32_t waitlist, uint32_t price,
			     const char *currency)
{
	spec_init(spec, 1, 1, 1, "Europe/Berlin", WED, 18 * 60, D(2026, 3, 4),
		  D(2026, 3, 4));
	spec->capacity = capacity;
	spec->waitlist_capacity = waitlist;
	spec->price_cents = price;
	snprintf(spec->currency, sizeof(spec->currency), "%s", currency);
}

/* ---- booking views ---- */

static inline bool view_eq(const struct core_booking_view *a,
			   const struct core_booking_view *b)
{
	return a->id == b->id && a->event_id == b->event_id &&
	       strcmp(a->customer_id, b->customer_id) == 0 &&
	       a->status == b->status && a->position == b->position &&
	       a->hold_expires_at == b->hold_expires_at &&
	       a->created_at == b->created_at;
}

static inline bool event_eq(const struct core_event_view *a,
			    const struct core_event_view *b)
{
	return a->id == b->id && a->series_id == b->series_id &&
	       a->org_id == b->org_id && a->location_id == b->location_id &&
	       a->instructor_id == b->instructor_id &&
	       strcmp(a->title, b->title) == 0 && a->start_at == b->start_at &&
	       a->duration_min == b->duration_min &&
	       a->capacity == b->capacity && a->booked == b->booked &&
	       a->held == b->held && a->waitlist_length == b->waitlist_length &&
	       a->waitlist_capacity == b->waitlist_capacity &&
	       a->price_cents == b->price_cents &&
	       strcmp(a->currency, b->currency) == 0 &&
	       a->status == b->status && a->version == b->version;
}

/* ---- the standalone state ---- */

/* Payment outcomes that are refused but still recorded (flagged). */
static inline bool recorded_refusal(const struct core_req *q,
				    enum core_code code)
{
	return q->op == CORE_OP_PAY &&
	       (code == CORE_NOT_PENDING || code == CORE_PAYMENT_MISMATCH);
}

/* Decide and apply. Every refusal and every replay must come with an empty
 * entry: it changes nothing. */
static inline enum core_code sdo(core_state *st, const struct core_req *q,
				 struct core_resp *r)
{
	const void *entry = NULL;
	size_t size = 0;
	enum core_code code = core_state_decide(st, q, r, &entry, &size);

	CHECK(code == r->code);
	if (r->replayed || (code != CORE_OK && !recorded_refusal(q, code)))
		CHECK(size == 0);
	if (recorded_refusal(q, code))
		CHECK(size > 0);
	if (size) {
		if (g_log_on)
			elog_add(entry, size);
		CHECK(core_state_apply(st, entry, size) == 0);
	}
	return code;
}

static inline core_state *st_new(void)
{
	struct core_config cfg;
	core_state *st;

	cfg_small(&cfg, 1);
	st = core_state_new(&cfg);
	CHECK(st != NULL);
	if (!st)
		abort();
	return st;
}

/* Org 1 (in time zone tz), location 1 and instructor 1 in st. */
static inline void st_catalog(core_state *st, const char *tz)
{
	struct core_resp r;
	struct core_req q;

	q = q_named(CORE_OP_ORG_CREATE, T0, 0, "Studio", tz);
	CHECK(sdo(st, &q, &r) == CORE_OK && r.id == 1);
	q = q_named(CORE_OP_LOCATION_CREATE, T0, 1, "Hall", "");
	CHECK(sdo(st, &q, &r) == CORE_OK && r.id == 1);
	q = q_named(CORE_OP_INSTRUCTOR_CREATE, T0, 1, "Ana", "");
	CHECK(sdo(st, &q, &r) == CORE_OK && r.id == 1);
}

/* st_setup's state, but under cfg (its ceilings): NULL, a failed
 * check, if core_state_new refuses cfg. */
static inline core_state *st_setup_with(const struct core_config *cfg)
{
	core_state *st = core_state_new(cfg);

	CHECK(st != NULL);
	if (st)
		st_catalog(st, "Europe/Berlin");
	return st;
}

/* A state with org 1 (Berlin), location 1 and instructor 1. */
static inline core_state *st_setup(void)
{
	core_state *st = st_new();

	st_catalog(st, "Europe/Berlin");
	return st;
}

static inline uint64_t st_event_count(const core_state *st)
{
	struct core_stats s;
	core_state_stats(st, &s);
	return s.event_count;
}

/* Generation until done (each chunk is its own entry); the events made. */
static inline uint32_t st_generate(core_state *st, core_time now,
				   uint64_t series_id, struct core_date until)
{
	struct core_req q = q_generate(now, series_id, until);
	struct core_resp r;
	uint32_t total = 0;

	for (int i = 0; i < 100; i++) {
		CHECK(sdo(st, &q, &r) == CORE_OK);
		total += r.count;
		if (!r.more)
			return total;
	}
	CHECK(!"generation never ends");
	return total;
}

static inline enum core_code st_series(core_state *st, core_time now,
				       struct core_series_spec *spec,
				       struct core_resp *r)
{
	struct core_req q = q_new(CORE_OP_SERIES_CREATE, now);
	q.u.series = spec;
	return sdo(st, &q, r);
}

/* One class on Wednesday 2026-03-04 18:00 Berlin (EV_START); its id. */
static inline uint64_t st_event(core_state *st, uint32_t capacity,
				uint32_t waitlist, uint32_t price,
				const char *currency)
{
	struct core_series_spec spec;
	struct core_event_view v;
	struct core_resp r;
	uint64_t id;

	one_class(&spec, capacity, waitlist, price, currency);
	CHECK(st_series(st, T0, &spec, &r) == CORE_OK);
	CHECK(r.count == 1);
	CHECK(st_generate(st, T0, r.id, NO_DATE) == 1);
	id = st_event_count(st); /* ids are dense: the newest is the count */
	CHECK(core_state_event(st, id, &v) == CORE_OK);
	CHECK(v.start_at == EV_START);
	CHECK(v.capacity == capacity);
	return id;
}

static inline struct core_resp st_book(core_state *st, core_time now,
				       uint64_t ev, const char *cust,
				       enum core_payment pay)
{
	struct core_req q = q_book(now, ev, cust, pay);
	struct core_resp r;
	sdo(st, &q, &r);
	return r;
}

/* Books customers <prefix>0 .. <prefix>(n-1) into ev at T0, T0 + 1, ...
 * (CORE_PAY_AUTO); each must be CORE_OK; their booking ids into id[]. */
static inline void st_book_each(core_state *st, uint64_t ev, const char *prefix,
				int n, uint64_t *id)
{
	for (int i = 0; i < n; i++) {
		char cust[24];
		snprintf(cust, sizeof(cust), "%s%d", prefix, i);
		struct core_resp r =
			st_book(st, T0 + i, ev, cust, CORE_PAY_AUTO);
		CHECK(r.code == CORE_OK);
		id[i] = r.booking.id;
	}
}

static inline struct core_event_view st_ev(const core_state *st, uint64_t id)
{
	struct core_event_view v;
	memset(&v, 0, sizeof(v));
	CHECK(core_state_event(st, id, &v) == CORE_OK);
	return v;
}

static inline struct core_booking_view st_bk(const core_state *st, uint64_t id)
{
	struct core_booking_view v;
	memset(&v, 0, sizeof(v));
	CHECK(core_state_booking(st, id, &v) == CORE_OK);
	return v;
}

/* The runtime expires holds on CORE_OP_TICK (and before every decision). */
struct rt {
	core *c;
	core_port *p;
};

static inline void rt_open(struct rt *rt, const struct core_config *cfg)
{
	int rc = core_open(cfg, &rt->c);
	CHECK(rc == 0);
	if (rc)
		abort();
	rt->p = core_port_get(rt->c, 0);
	CHECK(rt->p != NULL);
	CHECK(core_port_get(rt->c, cfg->port_count) == NULL);
}

static inline struct core_resp rcall(core_port *p, const struct core_req *q)
{
	struct core_resp r;
	memset(&r, 0, sizeof(r));
	CHECK(core_call(p, q, &r) == 0);
	return r;
}

/* Orgs 1 (Berlin), 2 (New York); locations 1, 2 (org 1), 3 (org 2);
 * instructors 1, 2 (org 1), 3 (org 2). */
static inline void rt_catalog(core_port *p)
{
	struct core_req q;

	q = q_named(CORE_OP_ORG_CREATE, T0, 0, "Studio", "Europe/Berlin");
	CHECK(rcall(p, &q).id == 1);
	q = q_named(CORE_OP_ORG_CREATE, T0, 0, "Loft", "America/New_York");
	CHECK(rcall(p, &q).id == 2);
	for (uint64_t i = 1; i <= 3; i++) {
		q = q_named(CORE_OP_LOCATION_CREATE, T0, i <= 2 ? 1 : 2, "Room",
			    "");
		CHECK(rcall(p, &q).id == i);
		q = q_named(CORE_OP_INSTRUCTOR_CREATE, T0, i <= 2 ? 1 : 2,
			    "Coach", "");
		CHECK(rcall(p, &q).id == i);
	}
}

/* rt_open with every entry logged (elog, emptied first) and rt_catalog. */
static inline void rt_open_logged(struct rt *rt, struct core_config *cfg)
{
	elog_reset();
	cfg->log = log_hook;
	rt_open(rt, cfg);
	rt_catalog(rt->p);
}

static inline struct core_resp rt_series(core_port *p, core_time now,
					 struct core_series_spec *spec)
{
	struct core_req q = q_new(CORE_OP_SERIES_CREATE, now);
	struct core_resp r;
	q.u.series = spec;
	r = rcall(p, &q);
	CHECK(r.code == CORE_OK);
	return r;
}

/* Every event, via EVENT_GET on the dense ids 1, 2, ... */
static inline uint32_t rt_all_events(core_port *p, core_time now,
				     struct core_event_view *out, uint32_t cap)
{
	uint32_t n = 0;

	for (uint64_t id = 1; n < cap; id++) {
		struct core_req q = q_new(CORE_OP_EVENT_GET, now);
		struct core_resp r;
		q.event_id = id;
		r = rcall(p, &q);
		if (r.code != CORE_OK)
			break;
		CHECK(r.event.id == id);
		out[n++] = r.event;
	}
	return n;
}

/* The answer to an EVENT_GET or BOOKING_GET of id; it must be found. */
static inline struct core_resp rt_get(core_port *p, enum core_op op,
				      core_time now, uint64_t id)
{
	struct core_req q = q_new(op, now);
	struct core_resp r;

	if (op == CORE_OP_EVENT_GET)
		q.event_id = id;
	else
		q.booking_id = id;
	r = rcall(p, &q);
	CHECK(r.code == CORE_OK);
	return r;
}

static inline struct core_event_view rt_ev(core_port *p, core_time now,
					   uint64_t id)
{
	return rt_get(p, CORE_OP_EVENT_GET, now, id).event;
}

static inline struct core_booking_view rt_bk(core_port *p, core_time now,
					     uint64_t id)
{
	return rt_get(p, CORE_OP_BOOKING_GET, now, id).booking;
}

/* A daily series at 18:00 Berlin from first to last (org, location and
 * instructor 1), made at T0; all events there are (rt_all_events). */
static inline uint32_t rt_daily(core_port *p, struct core_date first,
				struct core_date last,
				struct core_event_view *all, uint32_t cap)
{
	struct core_series_spec spec;

	spec_init(&spec, 1, 1, 1, "Europe/Berlin", EVERY_DAY, 18 * 60, first,
		  last);
	rt_series(p, T0, &spec);
	return rt_all_events(p, T0, all, cap);
}

/* A one-class series on Wed 2026-03-04 18:00 Berlin; the event's id. */
static inline uint64_t rt_event(core_port *p, uint32_t capacity,
				uint32_t waitlist, uint32_t price,
				const char *currency)
{
	static struct core_event_view all[4096];
	struct core_series_spec spec;
	struct core_resp r;
	uint32_t n;

	one_class(&spec, capacity, waitlist, price, currency);
	r = rt_series(p, T0, &spec);
	CHECK(r.count == 1);
	n = rt_all_events(p, T0, all, 4096);
	CHECK(n > 0 && all[n - 1].series_id == r.id);
	return n ? all[n - 1].id : 0;
}

static inline uint32_t rt_tick(core_port *p, core_time now)
{
	struct core_req q = q_new(CORE_OP_TICK, now);
	struct core_resp r = rcall(p, &q);
	CHECK(r.code == CORE_OK);
	return r.count;
}

/* How many of shard_count shards hold events of v[n]; per_shard[s]: how
 * many each. */
static inline unsigned shards_of(const core *c, const struct core_event_view *v,
				 uint32_t n, unsigned shard_count,
				 uint32_t *per_shard)
{
	unsigned used = 0;
	for (unsigned s = 0; s < shard_count; s++)
		per_shard[s] = 0;
	for (uint32_t i = 0; i < n; i++)
		per_shard[core_shard_of_event(c, v[i].id)]++;
	for (unsigned s = 0; s < shard_count; s++)
		used += per_shard[s] > 0;
	return used;
}

/* Checks the helpers' own arithmetic (2026-01-01 is day 20454, a Thursday,
 * so T0 is a Monday), then runs the program's tests (CHECK_TEST_FN; argv[1]:
 * only the one named so) and prints "<prog>: N passed, M failed" (test
 * functions). */
static inline int core_test_main(const char *prog, int argc, char **argv)
{
	CHECK(civil_days(2026, 1, 1) == 20454);
	CHECK(utc_ms(2026, 1, 1, 0, 0) == INT64_C(1767225600000));
	CHECK((civil_days(2026, 3, 2) + 3) % 7 == 0); /* 1970-01-01: Thursday */
	if (check_fail_count)
		return 1;
	return check_run_all(prog, argc > 1 ? argv[1] : NULL);
}

#endif
