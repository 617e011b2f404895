/*
 * test_model.c: model-based test of the sharded core.
 *
 * Seeded random operations (book, cancel, pay, fail payment, change
 * capacity, cancel events, time passing, retries with the same idempotency
 * key, keys reused for other requests, reminder runs with random lists of
 * leads, cancels by the customer as well as by the service key, the
 * org's cut-off and hold changing now and then; time passing the classes'
 * starts closes their waitlists; series edits and ends from a date on, now
 * and then refused) go to the sharded runtime through
 * core_call and to the small reference model of tests/model.c (written for
 * obviousness, not speed). Every answer is compared, the touched event and
 * bookings after every step, everything every CHECK_EVERY steps; the
 * NOTIFY reminder records the log receives are exactly the model's (none
 * outside reminder runs), and so are its NOTIFY waitlist_expired and
 * event_cancelled; the events a series edit makes are the dates the model
 * says, with the series' new settings. At the end
 * every logged entry is replayed into a fresh state, which must equal the
 * model too (state = fold(entries)); and a snapshot taken half-way plus the
 * log are recovered into a runtime with one more shard, which must equal the
 * model and replay every remembered idempotency key as the model does.
 *
 * The shards are hosted as in bookd (no worker threads; here the waiting
 * caller runs them); MODEL_SHARD_THREADS=1 gives each a worker thread.
 *
 *     MODEL_SEED=n MODEL_OPS=n MODEL_SHARDS=n MODEL_SHARD_THREADS=1 \
 *         ./test_model
 * The seed is printed first; a failure prints the step to replay it.
 */
#include "core.h"
#include "entry.h" /* core_entry_next: the reminders logged */
#include "model.h"
#include "tz.h" /* tz_civil_from_days: a series edit's dates */

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_EVERY 100000
#define HOLD_MS (10 * 60 * 1000)
#define RETENTION_MS (60 * 60 * 1000)
#define KEY_HISTORY 4096
#define HORIZON_DAYS 14
#define SERIES_COUNT 6

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
	fprintf(stderr, "FAIL at step %ld (MODEL_SEED=%" PRIu64 "): ", step,
		seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void model_failed(const char *msg) { fail("%s", msg); }

/* ---- the runtime side ---- */

static core *c;
static core_port *port;

/* The runtime's side at now, for model_port_event and model_port_booking. */
static struct model_port_reader *rt_at(core_time now)
{
	static struct model_port_reader rd;

	rd = (struct model_port_reader){ port, now };
	return &rd;
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

/* NOTIFY records of one kind logged since the last look, by booking id;
 * seen_check compares them with the model's. */
struct seen {
	const char *what;
	uint64_t *ids;
	uint32_t count, cap;
	uint64_t total; /* checked, for the summary */
};

/* reminders; waitlists closed; bookings told of their event's cancel */
static struct seen reminders = { .what = "reminder" };
static struct seen closed = { .what = "waitlist_expired" };
static struct seen told = { .what = "event_cancelled" };
static uint64_t series_made, series_kept; /* for the summary */

static void push(struct seen *s, uint64_t v)
{
	if (s->count == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->ids = realloc(s->ids, s->cap * sizeof(uint64_t));
		if (!s->ids)
			fail("out of memory");
	}
	s->ids[s->count++] = v;
}

static void reminders_seen(const void *entry, size_t size)
{
	struct core_rec r;
	size_t pos = 0;

	while (core_entry_next(entry, size, &pos, &r) > 0) {
		if (r.type != CORE_REC_NOTIFY)
			continue;
		if (r.u.notify.kind == CORE_NOTIFY_WAITLIST_EXPIRED)
			push(&closed, r.u.notify.booking_id);
		else if (r.u.notify.kind == CORE_NOTIFY_EVENT_CANCELLED)
			push(&told, r.u.notify.booking_id);
		else if (r.u.notify.kind == CORE_NOTIFY_REMINDER)
			push(&reminders, r.u.notify.booking_id);
	}
}

static int log_hook(void *ctx, unsigned lane, const void *entry, size_t size,
		    uint64_t *lsn)
{
	pthread_mutex_lock(&log_lock);
	reminders_seen(entry, size);
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

static void cmp_resp(const struct core_resp *a, const struct core_resp *m)
{
	char err[512];

	if (!model_cmp_resp(a, m, err, sizeof(err)))
		fail("%s", err);
}

static int id_order(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The records of s logged since the last look are the model's m[0..n),
 * as sets: shards log in their own order. */
static void seen_check(struct seen *s, const uint64_t *m, uint32_t n)
{
	static uint64_t *want;
	static uint32_t want_cap;

	pthread_mutex_lock(&log_lock);
	if (s->count != n)
		fail("%u %s logged, model %u", s->count, s->what, n);
	if (n > want_cap) {
		want_cap = n;
		want = realloc(want, n * sizeof(*want));
	}
	if (n) {
		memcpy(want, m, n * sizeof(*want));
		qsort(want, n, sizeof(*want), id_order);
		qsort(s->ids, n, sizeof(*s->ids), id_order);
	}
	for (uint32_t i = 0; i < n; i++)
		if (s->ids[i] != want[i])
			fail("%s of booking %" PRIx64 ", model %" PRIx64,
			     s->what, s->ids[i], want[i]);
	s->total += n;
	s->count = 0;
	pthread_mutex_unlock(&log_lock);
}

/* The reminders (from the model's last REMIND, or none), the waitlists
 * closed and the customers told of a cancel since the last look. */
static void reminders_check(bool after_remind)
{
	const uint64_t *m = NULL;
	uint32_t n = after_remind ? model_reminded(&m) : 0;

	seen_check(&reminders, m, n);
}

static void closed_check(void)
{
	const uint64_t *m = NULL;
	uint32_t n = model_waitlist_expired(&m);

	seen_check(&closed, m, n);
}

static void told_check(void)
{
	const uint64_t *m = NULL;
	uint32_t n = model_cancel_told(&m);

	seen_check(&told, m, n);
}

/* A reminder run at now with 1..3 leads from a few (hours, up to the
 * horizon), the same in the core and the model. */
static void remind_run(core_time now)
{
	static const uint16_t leads[] = { 1, 2, 3, 6, 24, 48, 168, 336 };
	struct core_req q = { .op = CORE_OP_REMIND, .now = now };
	struct core_resp a, m;

	q.u.remind.count = (uint8_t)(1 + rnd_below(3));
	for (uint8_t i = 0; i < q.u.remind.count; i++)
		q.u.remind.hours[i] = leads[rnd_below(8)];
	if (core_call(port, &q, &a) != 0)
		fail("core_call remind");
	model_apply(&q, &m);
	cmp_resp(&a, &m);
	reminders_check(true);
	closed_check();
}

static void call(const struct core_req *q, struct core_resp *r)
{
	if (core_call(port, q, r) != 0)
		fail("core_call op %d", q->op);
}

/* Mirror the events the core generated into the model. */
static void load_events(core_time now)
{
	char err[512];

	if (!model_load_events(rt_at(now), err, sizeof(err)))
		fail("%s", err);
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
	/* For edits: location and instructor 2 of another org, 3 of ours. */
	q.op = CORE_OP_ORG_CREATE;
	strcpy(q.u.cat.name, "Other");
	call(&q, &r);
	for (uint64_t org = 2; org >= 1; org--) {
		q.u.cat.org_id = org;
		q.op = CORE_OP_LOCATION_CREATE;
		call(&q, &r);
		model_location_org[r.id] = org;
		q.op = CORE_OP_INSTRUCTOR_CREATE;
		call(&q, &r);
		if (r.code != CORE_OK || r.id != 4 - org)
			fail("instructor create: %s", core_code_name(r.code));
		model_instructor_org[r.id] = org;
	}
	model_location_org[1] = model_instructor_org[1] = 1;
	for (int i = 0; i < SERIES_COUNT; i++) {
		memset(&spec, 0, sizeof(spec));
		spec.org_id = spec.location_id = spec.instructor_id = 1;
		snprintf(spec.title, sizeof(spec.title), "Class %d", i);
		spec.capacity = 1 + rnd_below(5);
		spec.waitlist_capacity = rnd_below(4);
		spec.price_cents = i % 2 ? 1500 : 0;
		strcpy(spec.currency, i % 2 ? "eur" : "");
		strcpy(spec.timezone,
		       i % 3 ? "Europe/Berlin" : "America/New_York");
		spec.weekday_mask = (uint8_t)(1 + rnd_below(127));
		spec.start_minute = (uint16_t)(6 * 60 + rnd_below(14 * 60));
		spec.duration_min = 60;
		spec.first_date = (struct core_date){ 2026, 1, 1 };
		q.op = CORE_OP_SERIES_CREATE;
		q.u.series = &spec;
		call(&q, &r);
		if (r.code != CORE_OK)
			fail("series create: %s", core_code_name(r.code));
		model_series_add(r.id, &spec, HORIZON_DAYS, now);
	}
}

static void random_idem(struct core_idem *k)
{
	k->hi = rnd();
	k->lo = rnd();
}

/* Mostly an event still to come: past ones only refuse. */
static struct model_event *pick_event(core_time now)
{
	struct model_event *e = &model_events[rnd_below(model_event_count)];

	for (int tries = 0; tries < 16 && e->start_at <= now && rnd_below(10);
	     tries++)
		e = &model_events[rnd_below(model_event_count)];
	return e;
}

static struct model_booking *pick_booking(struct model_event **ev,
					  core_time now)
{
	for (int tries = 0; tries < 8; tries++) {
		struct model_event *e = pick_event(now);
		if (e->n) {
			*ev = e;
			return &e->b[rnd_below(e->n)];
		}
	}
	return NULL;
}

/* An edit of e: a new start (ahead, now and then past), duration,
 * location, title, a restore; capacity and instructor kept or not. */
static void random_edit(struct core_req *q, const struct model_event *e,
			core_time now)
{
	uint32_t what = rnd_below(6);

	if (rnd_below(2))
		q->u.patch.capacity = -1;
	if (what == 0 || rnd_below(6) == 0) {
		core_time day = INT64_C(86400000);
		q->u.patch.start_at =
			rnd_below(20) == 0
				? now - rnd_below(3600000)
				: now + 1 +
					  (core_time)rnd_below(14 * 24) * day /
						  24;
	}
	if (what == 1 || rnd_below(6) == 0)
		q->u.patch.duration_min = 15 + rnd_below(120);
	if (what == 2 || rnd_below(8) == 0)
		q->u.patch.location_id = 1 + rnd_below(4);
	if (what == 3 || rnd_below(8) == 0)
		snprintf(q->u.patch.title, sizeof(q->u.patch.title), "Moved %u",
			 rnd_below(5));
	if (what == 4 || e->status == CORE_EVENT_CANCELLED)
		q->u.patch.restore = rnd_below(4) != 0;
	if (what == 5 && !q->u.patch.restore && !q->u.patch.start_at)
		q->u.patch.duration_min = e->duration_min; /* no change */
}

/* The local date `days` days after now's UTC date. */
static struct core_date date_after(core_time now, int64_t days)
{
	int y, m, d;

	tz_civil_from_days(now / INT64_C(86400000) + days, &y, &m, &d);
	return (struct core_date){ (int16_t)y, (int8_t)m, (int8_t)d };
}

/* A series edit from a date on (today or up to 10 days ahead, now and then
 * one past), or an end alone; now and then of no series, or refused (a
 * price without currency, a last date before the first). */
static void random_series_patch(struct core_req *q, core_time now)
{
	q->op = CORE_OP_SERIES_PATCH;
	q->u.spatch.series_id =
		1 + rnd_below(SERIES_COUNT + (rnd_below(30) == 0));
	q->u.spatch.capacity = q->u.spatch.waitlist_capacity = -1;
	q->u.spatch.price_cents = q->u.spatch.start_minute = -1;
	if (rnd_below(4) == 0) {
		q->u.spatch.last_date =
			rnd_below(20) ? date_after(now, rnd_below(40))
				      : (struct core_date){ 2025, 6, 1 };
		return;
	}
	if (rnd_below(2))
		q->u.spatch.from = date_after(now, (int64_t)rnd_below(12) - 1);
	if (rnd_below(3) == 0)
		snprintf(q->u.spatch.title, sizeof(q->u.spatch.title),
			 "Series %u", rnd_below(4));
	if (rnd_below(3) == 0)
		q->u.spatch.capacity = 1 + rnd_below(5);
	if (rnd_below(4) == 0)
		q->u.spatch.waitlist_capacity = rnd_below(4);
	if (rnd_below(4) == 0) {
		q->u.spatch.price_cents = rnd_below(3) ? 1500 : 0;
		if (rnd_below(2))
			strcpy(q->u.spatch.currency, "eur");
	}
	if (rnd_below(4) == 0)
		q->u.spatch.start_minute =
			(int32_t)(6 * 60 + rnd_below(14 * 60));
	if (rnd_below(4) == 0)
		q->u.spatch.duration_min = 30 + rnd_below(90);
	if (rnd_below(4) == 0)
		q->u.spatch.weekday_mask = (uint8_t)(1 + rnd_below(127));
	if (rnd_below(4) == 0) /* an end moved later, or one made */
		q->u.spatch.last_date = date_after(now, 10 + rnd_below(60));
}

static struct core_req history[KEY_HISTORY];
static uint32_t history_count;

static void make_request(struct core_req *q, core_time now)
{
	uint32_t dice = rnd_below(100);
	struct model_event *e = pick_event(now);
	struct model_booking *b;

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
		strcpy(q->customer_id, rnd_below(200)
					       ? model_customer_ids[rnd_below(
							 MODEL_CUSTOMER_COUNT)]
					       : "bad id!");
		q->u.book.payment =
			rnd_below(5) ? CORE_PAY_AUTO : CORE_PAY_NONE;
	} else if (dice < 75) {
		q->op = CORE_OP_CANCEL;
		b = pick_booking(&e, now);
		/* now and then one of any class, started ones too */
		e = &model_events[rnd_below(model_event_count)];
		if (rnd_below(4) == 0 && e->n)
			b = &e->b[rnd_below(e->n)];
		q->booking_id = b ? b->id : 12345;
		/* the customer's own (a JWT), now and then another's */
		if (b && rnd_below(3) == 0) {
			int who =
				rnd_below(20)
					? b->customer
					: (int)rnd_below(MODEL_CUSTOMER_COUNT);
			strcpy(q->customer_id, model_customer_ids[who]);
		}
	} else if (dice < 88) {
		q->op = CORE_OP_PAY;
		b = pick_booking(&e, now);
		q->booking_id = b ? b->id : 12345;
		q->u.pay.succeeded = rnd_below(4) != 0;
		q->u.pay.amount_cents = rnd_below(10) ? e->price : e->price + 1;
		strcpy(q->u.pay.currency, rnd_below(20) ? e->currency : "usd");
		/* now and then the payments sender giving up on an intent */
		if (rnd_below(8) == 0)
			q->u.pay.kind = CORE_PAY_KIND_INTENT;
	} else if (dice < 96) {
		q->op = CORE_OP_EVENT_PATCH;
		q->event_id = e->id;
		q->u.patch.capacity = rnd_below(6);
		if (rnd_below(10) == 0) {
			q->u.patch.capacity = -1;
			q->u.patch.cancel = rnd_below(30) == 0;
		}
		if (rnd_below(8) == 0)
			q->u.patch.instructor_id = 1 + rnd_below(4);
		if (rnd_below(3) == 0)
			random_edit(q, e, now);
	} else if (rnd_below(60) == 0) {
		random_series_patch(q, now);
	} else {
		q->op = CORE_OP_TICK;
		return;
	}
	if (q->op == CORE_OP_BOOK || q->op == CORE_OP_CANCEL || rnd_below(2)) {
		random_idem(&q->idem);
		q->idem.fingerprint = model_fingerprint(q);
		history[history_count < KEY_HISTORY ? history_count++
						    : rnd_below(KEY_HISTORY)] =
			*q;
	}
}

/* The org's cut-off (0..48 h) and hold (the core's, or 1..30 min) change:
 * what is decided from now on follows them. */
static void org_settings_change(core_time now)
{
	struct core_req q = { .op = CORE_OP_ORG_PATCH, .now = now };
	struct core_req t = { .op = CORE_OP_TICK, .now = now };
	struct core_resp r;
	uint16_t hold = rnd_below(2) ? 0 : (uint16_t)(1 + rnd_below(30));

	/* the model first catches up with the tick the core had at now
	 * (holds that expired then were promoted under the old settings) */
	model_apply(&t, &r);

	q.u.cat.org_id = 1;
	q.u.cat.settings_set = CORE_ORG_SET_CUTOFF | CORE_ORG_SET_HOLD;
	q.u.cat.settings.cancel_cutoff_hours = (uint16_t)rnd_below(49);
	q.u.cat.settings.hold_minutes = hold;
	call(&q, &r);
	if (r.code != CORE_OK ||
	    r.org.cancel_cutoff_hours != q.u.cat.settings.cancel_cutoff_hours)
		fail("org patch: %s", core_code_name(r.code));
	model_org_settings((core_time)q.u.cat.settings.cancel_cutoff_hours *
				   3600 * 1000,
			   hold ? (core_time)hold * 60 * 1000 : HOLD_MS);
}

/* After a series edit: the events it made are the model's dates with the
 * series' settings now; every event of the series is as the model has
 * it. */
static void series_check(const struct core_req *q, const struct core_resp *a,
			 core_time now)
{
	uint32_t before = model_event_count, n;
	const core_time *starts;
	const struct model_series *s;
	char err[512];

	if (a->code != CORE_OK)
		return;
	load_events(now);
	s = &model_series[q->u.spatch.series_id - 1];
	n = a->replayed ? 0 : model_series_made(&starts);
	if (model_event_count - before != n)
		fail("series patch made %u events, model %u",
		     model_event_count - before, n);
	for (uint32_t i = 0; i < n; i++) {
		const struct model_event *e = &model_events[before + i];
		if (e->series_id != q->u.spatch.series_id ||
		    e->start_at != starts[i] ||
		    e->capacity != s->spec.capacity ||
		    e->waitlist_capacity != s->spec.waitlist_capacity ||
		    e->price != s->spec.price_cents ||
		    e->duration_min != s->spec.duration_min ||
		    strcmp(e->title, s->spec.title) != 0)
			fail("series patch: new event %" PRIu64
			     " (series %" PRIu64 ", start %" PRId64
			     ", cap %u, '%s') is not the model's (start %" PRId64
			     ", cap %u, '%s')",
			     e->id, e->series_id, e->start_at, e->capacity,
			     e->title, starts[i], s->spec.capacity,
			     s->spec.title);
	}
	series_made += n;
	series_kept += a->series.kept;
	for (uint32_t i = 0; i < model_event_count; i++)
		if (model_events[i].series_id == q->u.spatch.series_id &&
		    !model_cmp_event(&model_events[i], model_port_event,
				     model_port_booking, rt_at(now), false, err,
				     sizeof(err)))
			fail("%s", err);
}

static void check_all(core_time now, model_event_get_fn eg,
		      model_booking_get_fn bg, void *ctx)
{
	char err[512];

	if (!model_cmp_all(eg, bg, ctx, err, sizeof(err)))
		fail("%s", err);
}

int main(void)
{
	const char *env;
	long ops = 1000000;
	unsigned shards = 2;
	bool shard_threads = false;
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
	if ((env = getenv("MODEL_SHARD_THREADS")))
		shard_threads = strcmp(env, "0") != 0;
	printf("model: seed %" PRIu64 ", %ld operations, %u shards (%s)\n",
	       seed, ops, shards,
	       shard_threads ? "a worker thread each" : "hosted");
	rng_state = seed;

	model_init(HOLD_MS, RETENTION_MS, model_failed);

	core_config_default(&cfg);
	cfg.shard_count = shards;
	cfg.port_count = 1;
	if (!shard_threads) {
		/* As in bookd, no worker threads: the shards are hosted by
		 * port 1, which nobody owns here, so port 0's calls run them
		 * while they wait. */
		cfg.port_count = 2;
		cfg.host_first = 1;
		cfg.host_count = 1;
	}
	cfg.event_count_max = MODEL_EVENT_COUNT_MAX;
	cfg.booking_count_max = 1u << 21;
	cfg.customer_count_max = 1024;
	cfg.idem_count_max = 1u << 20;
	cfg.ring_size = 64;
	cfg.hold_ms = HOLD_MS;
	cfg.idem_retention_ms = RETENTION_MS;
	cfg.horizon_days = HORIZON_DAYS;
	cfg.log = log_hook;
	if (core_open(&cfg, &c) != 0)
		fail("core_open");
	port = core_port_get(c, 0);
	setup_catalogue(now);
	load_events(now);
	if (model_event_count == 0)
		fail("no events generated");

	for (step = 0; step < ops; step++) {
		struct core_req q;
		struct core_resp a, m;
		char err[512];

		if (step % 20000 == 0 && step) {
			struct core_req g = { .op = CORE_OP_GENERATE,
					      .now = now };
			call(&g, &a);
			if (a.code != CORE_OK)
				fail("generate: %s", core_code_name(a.code));
			model_generated(now);
			load_events(now);
		}
		if (rnd_below(4) == 0) {
			now += rnd_below(2000);
			struct core_req t = { .op = CORE_OP_TICK, .now = now };
			call(&t, &a);
		}
		if (rnd_below(5000) == 0)
			org_settings_change(now);
		make_request(&q, now);
		call(&q, &a);
		model_apply(&q, &m);
		cmp_resp(&a, &m);
		counts[q.op][a.code]++;
		reminders_check(false);
		closed_check();
		told_check();
		if (q.op == CORE_OP_SERIES_PATCH)
			series_check(&q, &a, now);
		if (rnd_below(50) == 0) {
			remind_run(now);
			counts[CORE_OP_REMIND][CORE_OK]++;
		}

		struct model_event *e = NULL;
		if (q.op == CORE_OP_BOOK || q.op == CORE_OP_EVENT_PATCH)
			e = model_event_get(q.event_id);
		else if (q.op == CORE_OP_CANCEL || q.op == CORE_OP_PAY)
			model_booking_get(q.booking_id, &e);
		if (e &&
		    !model_cmp_event(e, model_port_event, model_port_booking,
				     rt_at(now), false, err, sizeof(err)))
			fail("%s", err);
		/* The bookings this step touched, as stored now. */
		uint64_t touched[2] = { 0, 0 };
		if (q.op != CORE_OP_SERIES_PATCH) {
			touched[0] = m.booking.id;
			touched[1] = m.has_promoted ? m.promoted.id : 0;
		}
		for (int i = 0; i < 2; i++) {
			struct model_event *te;
			struct model_booking *tb =
				touched[i] ? model_booking_get(touched[i], &te)
					   : NULL;
			struct core_booking_view av, mv;
			if (!tb)
				continue;
			if (model_port_booking(rt_at(now), tb->id, &av) !=
			    CORE_OK)
				fail("booking %" PRIx64 " missing", tb->id);
			model_view(te, tb, &mv);
			if (!model_cmp_view("stored booking", &av, &mv, err,
					    sizeof(err)))
				fail("%s", err);
		}
		if (step % CHECK_EVERY == CHECK_EVERY - 1)
			check_all(now, model_port_event, model_port_booking,
				  rt_at(now));
		if (step == ops / 2)
			snapshot(c);
	}
	check_all(now, model_port_event, model_port_booking, rt_at(now));
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
	cfg.log = log_hook; /* to see its reminders */
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
		if (lsn > snap_lsn &&
		    core_replay(c, log_buf + pos + 16, n) != 0)
			fail("core_replay failed at lsn %" PRIu64, lsn);
		pos += 16 + n;
	}
	core_unpark(c);
	check_all(now, model_port_event, model_port_booking, rt_at(now));
	/* What went out is remembered: the next runs send what the model
	 * says, the first of them reading the whole window. */
	for (int i = 0; i < 8; i++) {
		now += rnd_below(3600 * 1000);
		remind_run(now);
	}
	for (uint32_t i = 0; i < history_count; i++) {
		struct core_req q = history[i];
		struct core_resp a, m;
		q.now = now;
		call(&q, &a);
		model_apply(&q, &m);
		cmp_resp(&a, &m);
		if (q.op == CORE_OP_SERIES_PATCH)
			series_check(&q, &a, now);
	}
	told_check();
	core_close(c);
	free(snap_buf);

	printf("model: %-12s %8s %8s\n", "operation", "outcome", "count");
	static const char *ops_names[CORE_OP_COUNT] = {
		[CORE_OP_BOOK] = "book",
		[CORE_OP_CANCEL] = "cancel",
		[CORE_OP_PAY] = "pay",
		[CORE_OP_EVENT_PATCH] = "patch",
		[CORE_OP_TICK] = "tick",
		[CORE_OP_REMIND] = "remind",
		[CORE_OP_SERIES_PATCH] = "series"
	};
	for (int o = 0; o < CORE_OP_COUNT; o++)
		for (int k = 0; k < CORE_CODE_COUNT; k++)
			if (counts[o][k])
				printf("model: %-12s %-24s %8ld\n",
				       ops_names[o], core_code_name(k),
				       counts[o][k]);
	printf("model: %" PRIu64 " reminders as the model said\n",
	       reminders.total);
	printf("model: %" PRIu64 " waitlisted bookings expired at their "
	       "class's start as the model said\n",
	       closed.total);
	printf("model: %" PRIu64 " bookings told of their event's cancel, "
	       "%" PRIu64 " events made and %" PRIu64
	       " kept detached by series edits, as the model said\n",
	       told.total, series_made, series_kept);
	printf("model: %ld operations on %u events, %zu log bytes replayed: 1 passed, 0 failed\n",
	       ops, model_event_count, log_size);
	free(log_buf);
	free(reminders.ids);
	free(closed.ids);
	free(told.ids);
	model_free();
	return 0;
}
