/*
 * test_core_edit.c: event edits (docs/core.md "Event edits"): a new start,
 * duration, location, title or instructor, and the restore of a cancelled
 * event, each one EVENT_EDIT and the notifications of the booked customers;
 * refusals that leave nothing behind; the day buckets a listing reads and
 * the reminders follow a moved start; an event's own title survives the
 * log's replay, a snapshot and archiving; the record's bytes.
 *
 * Helpers, times and main: core_test.h.
 */
#include "core_test.h"
#include "state.h" /* core__state_dump, core__state_remind */

/* ---- a decision's records ---- */

#define RECS_MAX 64

struct recs {
	struct core_rec r[RECS_MAX];
	uint32_t n;
};

/* sdo(), keeping the entry's records in *out. */
static enum core_code edo(core_state *st, const struct core_req *q,
			  struct core_resp *r, struct recs *out)
{
	const void *entry = NULL;
	size_t size = 0, pos = 0;
	enum core_code code = core_state_decide(st, q, r, &entry, &size);

	out->n = 0;
	if (code != CORE_OK)
		CHECK(size == 0);
	while (out->n < RECS_MAX &&
	       core_entry_next(entry, size, &pos, &out->r[out->n]) > 0)
		out->n++;
	CHECK(pos == size);
	if (g_log_on && size)
		elog_add(entry, size);
	if (size)
		CHECK(core_state_apply(st, entry, size) == 0);
	return code;
}

static uint32_t notifies(const struct recs *x, uint8_t kind)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < x->n; i++)
		n += x->r[i].type == CORE_REC_NOTIFY &&
		     x->r[i].u.notify.kind == kind;
	return n;
}

static struct core_req q_edit(core_time now, uint64_t event_id)
{
	struct core_req q = q_patch(now, event_id, -1, false);
	return q;
}

/* Org 2 with location 2 and instructor 2; location 3 and instructor 3 of
 * org 1 (st_setup made org 1's location and instructor 1). */
static void more_places(core_state *st)
{
	struct core_resp r;
	struct core_req q;

	q = q_named(CORE_OP_ORG_CREATE, T0, 0, "Loft", "Europe/Berlin");
	CHECK(sdo(st, &q, &r) == CORE_OK && r.id == 2);
	for (uint64_t org = 2; org >= 1; org--) {
		q = q_named(CORE_OP_LOCATION_CREATE, T0, org, "Room", "");
		CHECK(sdo(st, &q, &r) == CORE_OK && r.id == 4 - org);
		q = q_named(CORE_OP_INSTRUCTOR_CREATE, T0, org, "Bo", "");
		CHECK(sdo(st, &q, &r) == CORE_OK && r.id == 4 - org);
	}
}

/* ==== an edit and its notifications ==================================== */

CHECK_TEST_FN(test_edit_moves_and_tells)
{
	core_state *st = st_setup();
	struct core_resp r;
	struct recs x;
	struct core_req q;
	uint64_t ev, ids[4];
	struct core_event_view v;

	more_places(st);
	ev = st_event(st, 2, 2, 0, "");
	st_book_each(st, ev, "c", 4, ids); /* 2 confirmed, 2 waitlisted */
	q = q_cancel(T0 + 10, ids[3]);
	CHECK(sdo(st, &q, &r) == CORE_OK);

	/* a new start, duration, location and title: one EVENT_EDIT, one
	 * event_changed to each active booking (3: the cancelled one not) */
	q = q_edit(T0 + 20, ev);
	q.u.patch.start_at = EV_START + DAY_MS + HOUR_MS;
	q.u.patch.duration_min = 75;
	q.u.patch.location_id = 3;
	snprintf(q.u.patch.title, sizeof(q.u.patch.title), "Yoga (moved)");
	CHECK(edo(st, &q, &r, &x) == CORE_OK);
	CHECK(x.n == 1 + 3);
	CHECK(x.r[0].type == CORE_REC_EVENT_EDIT);
	CHECK(x.r[0].u.edit.changed == (CORE_EDIT_START | CORE_EDIT_DURATION |
					CORE_EDIT_LOCATION | CORE_EDIT_TITLE));
	CHECK(notifies(&x, CORE_NOTIFY_EVENT_CHANGED) == 3);
	CHECK(x.r[1].u.notify.booking_id == ids[0] &&
	      x.r[3].u.notify.booking_id == ids[2]);
	v = st_ev(st, ev);
	CHECK(event_eq(&v, &r.event)); /* the answer is the event as left */
	CHECK(v.start_at == EV_START + DAY_MS + HOUR_MS &&
	      v.duration_min == 75 && v.location_id == 3 &&
	      strcmp(v.title, "Yoga (moved)") == 0);
	CHECK(v.booked == 2 && v.waitlist_length == 1);

	/* a new instructor: instructor_substituted to each, through the
	 * patch of old (capacity and instructor) and through an edit */
	q = q_edit(T0 + 30, ev);
	q.u.patch.instructor_id = 3;
	CHECK(edo(st, &q, &r, &x) == CORE_OK);
	CHECK(x.r[0].type == CORE_REC_EVENT_PATCH);
	CHECK(notifies(&x, CORE_NOTIFY_INSTRUCTOR_SUBSTITUTED) == 3 &&
	      x.n == 4);
	CHECK(st_ev(st, ev).instructor_id == 3);
	q.u.patch.instructor_id = 1;
	q.u.patch.duration_min = 60;
	CHECK(edo(st, &q, &r, &x) == CORE_OK);
	CHECK(x.r[0].type == CORE_REC_EVENT_EDIT &&
	      x.r[0].u.edit.changed ==
		      (CORE_EDIT_INSTRUCTOR | CORE_EDIT_DURATION));
	CHECK(notifies(&x, CORE_NOTIFY_INSTRUCTOR_SUBSTITUTED) == 3 &&
	      notifies(&x, CORE_NOTIFY_EVENT_CHANGED) == 3);
	/* the same instructor again: no news, nobody told */
	q = q_edit(T0 + 31, ev);
	q.u.patch.instructor_id = 1;
	CHECK(edo(st, &q, &r, &x) == CORE_OK && x.n == 1);
	/* a larger capacity with an edit promotes, as a patch does */
	q = q_edit(T0 + 40, ev);
	q.u.patch.capacity = 3;
	snprintf(q.u.patch.title, sizeof(q.u.patch.title), "Yoga (moved)");
	CHECK(edo(st, &q, &r, &x) == CORE_OK);
	CHECK(x.r[0].u.edit.changed == CORE_EDIT_CAPACITY);
	CHECK(notifies(&x, CORE_NOTIFY_EVENT_CHANGED) == 0 &&
	      notifies(&x, CORE_NOTIFY_PROMOTED) == 1 && r.count == 1);
	v = st_ev(st, ev);
	CHECK(event_eq(&v, &r.event) && v.booked == 3 &&
	      v.waitlist_length == 0);
	core_state_free(st);
}

/* ==== refusals: nothing half-applied ==================================== */

CHECK_TEST_FN(test_edit_refusals)
{
	core_state *st = st_setup();
	struct core_event_view before;
	struct core_resp r;
	struct core_req q;
	uint64_t ev, ids[3];

	more_places(st);
	ev = st_event(st, 3, 0, 0, "");
	st_book_each(st, ev, "c", 3, ids);
	before = st_ev(st, ev);
#define REFUSED(code_)                                                         \
	do {                                                                   \
		struct core_event_view after;                                  \
		CHECK(sdo(st, &q, &r) == (code_));                             \
		after = st_ev(st, ev);                                         \
		CHECK(event_eq(&after, &before));                              \
	} while (0)
	q = q_edit(T0, ev); /* a start in the past */
	q.u.patch.start_at = T0 - 1;
	REFUSED(CORE_INVALID);
	q.u.patch.start_at = T0;
	REFUSED(CORE_INVALID);
	q = q_edit(T0, ev); /* a location unknown, another org's */
	q.u.patch.location_id = 9;
	REFUSED(CORE_NO_LOCATION);
	q.u.patch.location_id = 2;
	REFUSED(CORE_NO_LOCATION);
	q = q_edit(T0, ev);
	q.u.patch.duration_min = 30;
	q.u.patch.instructor_id = 2; /* another org's */
	REFUSED(CORE_NO_INSTRUCTOR);
	q.u.patch.instructor_id = 0;
	q.u.patch.duration_min = CORE_DURATION_MIN_MAX + 1;
	REFUSED(CORE_INVALID);
	q = q_edit(T0, ev); /* a move with capacity below the taken seats */
	q.u.patch.start_at = EV_START + HOUR_MS;
	q.u.patch.capacity = 2;
	REFUSED(CORE_CAPACITY_BELOW_TAKEN);
	q = q_edit(T0, ev); /* a cancel is no edit */
	q.u.patch.start_at = EV_START + HOUR_MS;
	q.u.patch.cancel = true;
	REFUSED(CORE_INVALID);
	q = q_edit(T0, ev); /* restoring a scheduled event: nothing to do */
	q.u.patch.restore = true;
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(st_ev(st, ev).version == before.version + 1);
	before = st_ev(st, ev);
	q = q_edit(EV_START, ev); /* the class started */
	q.u.patch.start_at = EV_START + DAY_MS;
	REFUSED(CORE_NOT_BOOKABLE);
	q = q_edit(T0, ev + 1);
	q.u.patch.duration_min = 30;
	CHECK(sdo(st, &q, &r) == CORE_NO_EVENT);
#undef REFUSED
	core_state_free(st);
}

/* ==== restore ============================================================ */

CHECK_TEST_FN(test_restore)
{
	core_state *st = st_setup();
	struct core_event_view v;
	struct core_resp r;
	struct recs x;
	struct core_req q;
	uint64_t ev, ids[3];

	ev = st_event(st, 2, 2, 0, "");
	st_book_each(st, ev, "c", 3, ids);
	q = q_patch(T0 + 5, ev, -1, true);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	/* a cancelled event changes only when restored */
	q = q_edit(T0 + 6, ev);
	q.u.patch.duration_min = 90;
	CHECK(sdo(st, &q, &r) == CORE_NOT_BOOKABLE);
	q.u.patch.restore = true;
	CHECK(edo(st, &q, &r, &x) == CORE_OK);
	CHECK(x.n == 1 && x.r[0].type == CORE_REC_EVENT_EDIT);
	CHECK(x.r[0].u.edit.changed ==
	      (CORE_EDIT_RESTORED | CORE_EDIT_DURATION));
	v = st_ev(st, ev);
	CHECK(event_eq(&v, &r.event));
	CHECK(v.status == CORE_EVENT_SCHEDULED && v.duration_min == 90 &&
	      v.booked == 0 && v.waitlist_length == 0);
	/* its bookings stay cancelled; the customers may book again */
	for (int i = 0; i < 3; i++)
		CHECK(st_bk(st, ids[i]).status == CORE_BOOKING_CANCELLED);
	CHECK(st_book(st, T0 + 7, ev, "c0", CORE_PAY_AUTO).code == CORE_OK);
	CHECK(st_ev(st, ev).booked == 1);
	/* a cancelled class that started is not restored */
	q = q_patch(T0 + 8, ev, -1, true);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_edit(EV_START + 1, ev);
	q.u.patch.restore = true;
	CHECK(sdo(st, &q, &r) == CORE_NOT_BOOKABLE);
	q.u.patch.start_at = EV_START + DAY_MS; /* unless moved: still not */
	CHECK(sdo(st, &q, &r) == CORE_NOT_BOOKABLE);
	core_state_free(st);
}

/* ==== listings and reminders follow the start =========================== */

static int commit_apply(void *ctx, const void *entry, size_t size)
{
	CHECK(core_state_apply(ctx, entry, size) == 0);
	return 0;
}

static uint32_t remind_at(core_state *st, core_time now, uint16_t hours)
{
	struct core_req q = q_new(CORE_OP_REMIND, now);
	uint32_t n = 0;

	q.u.remind.hours[0] = hours;
	q.u.remind.count = 1;
	CHECK(core__state_remind(st, &q, commit_apply, st, &n) == 0);
	return n;
}

CHECK_TEST_FN(test_move_reminders)
{
	core_state *st = st_setup();
	struct core_resp r;
	struct core_req q;
	uint64_t ev, ids[2];

	ev = st_event(st, 5, 0, 0, "");
	st_book_each(st, ev, "c", 2, ids);
	/* reminded 24 h before */
	CHECK(remind_at(st, EV_START - 23 * HOUR_MS, 24) == 2);
	CHECK(remind_at(st, EV_START - 22 * HOUR_MS, 24) == 0);
	/* moved two days later: reminded again, 24 h before the new start,
	 * not before */
	q = q_edit(EV_START - 21 * HOUR_MS, ev);
	q.u.patch.start_at = EV_START + 2 * DAY_MS;
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(remind_at(st, EV_START - 20 * HOUR_MS, 24) == 0);
	CHECK(remind_at(st, EV_START + DAY_MS + HOUR_MS, 24) == 2);
	CHECK(remind_at(st, EV_START + DAY_MS + 2 * HOUR_MS, 24) == 0);
	/* moved earlier, into a window a run already read: found */
	q = q_edit(EV_START + DAY_MS + 3 * HOUR_MS, ev);
	q.u.patch.start_at = EV_START + DAY_MS + 10 * HOUR_MS;
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(remind_at(st, EV_START + DAY_MS + 4 * HOUR_MS, 24) == 2);
	core_state_free(st);
}

CHECK_TEST_FN(test_move_listing)
{
	struct core_config cfg;
	struct core_event_view out[16];
	struct core_series_spec spec;
	struct core_resp r;
	struct core_req q;
	struct rt rt;
	uint64_t ev;

	cfg_small(&cfg, 3);
	rt_open(&rt, &cfg);
	rt_catalog(rt.p);
	one_class(&spec, 5, 0, 0, "");
	q = q_new(CORE_OP_SERIES_CREATE, T0);
	q.u.series = &spec;
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK);
	ev = 1;
	/* moved a week on: listed in its new day, not its old one */
	q = q_edit(T0, ev);
	q.u.patch.start_at = EV_START + 7 * DAY_MS;
	snprintf(q.u.patch.title, sizeof(q.u.patch.title), "Moved");
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK && r.event.start_at == EV_START + 7 * DAY_MS);
	q = q_new(CORE_OP_EVENT_LIST, T0);
	q.u.list.from = EV_START - DAY_MS;
	q.u.list.to = EV_START + DAY_MS;
	q.u.list.limit = 16;
	q.u.list.out = out;
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK && r.count == 0);
	q.u.list.from = EV_START + 6 * DAY_MS;
	q.u.list.to = EV_START + 8 * DAY_MS;
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK && r.count == 1 && out[0].id == ev &&
	      strcmp(out[0].title, "Moved") == 0);
	core_close(rt.c);
}

/* ==== the log, snapshots, archiving ===================================== */

CHECK_TEST_FN(test_edit_replay_snapshot_archive)
{
	static struct dump d;
	struct core_config cfg;
	core_state *st, *re;
	struct core_event_view a, b;
	struct core_resp r;
	struct core_req q;
	struct core_stats stats;
	uint64_t ev, ev2, ids[2];

	elog_reset();
	g_log_on = true;
	st = st_setup();
	ev = st_event(st, 3, 1, 0, "");
	ev2 = st_event(st, 3, 1, 0, "");
	st_book_each(st, ev, "c", 2, ids);
	q = q_edit(T0 + 10, ev);
	snprintf(q.u.patch.title, sizeof(q.u.patch.title), "Own title");
	q.u.patch.start_at = EV_START + 3 * DAY_MS;
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_edit(T0 + 11, ev2);
	snprintf(q.u.patch.title, sizeof(q.u.patch.title), "Gone soon");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_patch(T0 + 12, ev2, -1, true);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	a = st_ev(st, ev);
	CHECK(strcmp(a.title, "Own title") == 0);
	CHECK(strcmp(st_ev(st, ev2).title, "Gone soon") == 0);

	/* the log replayed */
	cfg_small(&cfg, 1);
	re = core_state_new(&cfg);
	CHECK(elog_replay(re) == 0);
	b = st_ev(re, ev);
	CHECK(event_eq(&a, &b));
	core_state_free(re);

	/* a snapshot loaded: EVENT_CREATE, EVENT_EDIT (its title), then the
	 * cancel */
	re = core_state_new(&cfg);
	{
		/* the catalogue's records first, as runtime snapshots do */
		size_t pos = 0;
		struct core_rec rec;
		uint32_t edits = 0;
		for (size_t at = 0; at < g_log.size;) {
			uint32_t n;
			memcpy(&n, g_log.buf + at, 4);
			pos = 0;
			while (core_entry_next(g_log.buf + at + 4, n, &pos,
					       &rec) > 0)
				if (core_rec_event_id(&rec) == 0 &&
				    rec.type != CORE_REC_IDEM) {
					struct wbuf one = { .data = d.buf,
							    .capacity = sizeof(
								    d.buf) };
					rec_encode(&one, &rec);
					CHECK(core_state_apply(re, one.data,
							       one.size) == 0);
				}
			at += 4 + n;
		}
		dump(st, &d);
		pos = 0;
		while (core_entry_next(d.buf, d.w.size, &pos, &rec) > 0)
			edits += rec.type == CORE_REC_EVENT_EDIT;
		CHECK(edits == 2);
		CHECK(core_state_apply(re, d.buf, d.w.size) == 0);
	}
	b = st_ev(re, ev);
	CHECK(strcmp(b.title, "Own title") == 0 &&
	      b.start_at == EV_START + 3 * DAY_MS && b.booked == 2);
	b = st_ev(re, ev2);
	CHECK(strcmp(b.title, "Gone soon") == 0 &&
	      b.status == CORE_EVENT_CANCELLED);
	core_state_free(re);

	/* archived: the titles kept aside go with their events, and their
	 * slots are used again */
	q = q_new(CORE_OP_ARCHIVE, EV_START + 10 * DAY_MS);
	q.u.archive.days = 1;
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(st_event_count(st) == 0);
	{
		struct core_series_spec spec;
		one_class(&spec, 3, 1, 0, "");
		CHECK(st_series(st, T0, &spec, &r) == CORE_OK);
		CHECK(st_generate(st, T0, r.id, NO_DATE) == 1);
		ev = 3; /* ids are dense */
	}
	q = q_edit(T0 + 20, ev);
	snprintf(q.u.patch.title, sizeof(q.u.patch.title), "Again");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(strcmp(st_ev(st, ev).title, "Again") == 0);
	core_state_stats(st, &stats);
	CHECK(stats.event_count == 1 &&
	      stats.bytes_allocated < 64 * 1024 * 1024);
	core_state_free(st);
	g_log_on = false;
	elog_reset();
}

/* ==== series edits ====================================================== */

/* The events of series 1 in [from, to), by start, into out (at most 64). */
static uint32_t series_events(core_port *p, core_time from, core_time to,
			      struct core_event_view *out)
{
	struct core_req q = q_new(CORE_OP_EVENT_LIST, T0);
	struct core_resp r;

	q.u.list.from = from;
	q.u.list.to = to;
	q.u.list.limit = 64;
	q.u.list.out = out;
	r = rcall(p, &q);
	CHECK(r.code == CORE_OK && !r.more);
	return r.count;
}

static bool notify_of(const struct core_rec *r, uint32_t kind)
{
	return r->type == CORE_REC_NOTIFY && r->u.notify.kind == kind;
}

CHECK_TEST_FN(test_series_patch_and_end)
{
	static struct core_event_view ev[64];
	struct core_series_spec spec;
	struct core_config cfg;
	struct core_resp r;
	struct core_req q;
	struct rt rt;
	uint64_t booked, late;
	uint32_t n, kept = 0, moved = 0;
	core_time day0 = utc_ms(2026, 3, 2, 0, 0); /* Monday */

	cfg_small(&cfg, 3);
	rt_open_logged(&rt, &cfg);
	/* every day 18:00 Berlin, 2 weeks: 14 events */
	spec_init(&spec, 1, 1, 1, "Europe/Berlin", EVERY_DAY, 18 * 60,
		  D(2026, 3, 2), D(2026, 3, 15));
	q = q_new(CORE_OP_SERIES_CREATE, T0);
	q.u.series = &spec;
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK);
	n = series_events(rt.p, day0, day0 + 14 * DAY_MS, ev);
	CHECK(n == 14);
	booked = ev[1].id; /* Tuesday 3rd */
	late = ev[12].id;  /* Saturday 14th */
	q = q_book(T0, booked, "ann", CORE_PAY_AUTO);
	CHECK(rcall(rt.p, &q).code == CORE_OK);
	q = q_book(T0, late, "bob", CORE_PAY_AUTO);
	CHECK(rcall(rt.p, &q).code == CORE_OK);

	/* from Tuesday 3rd: Mondays, Wednesdays, Fridays at 19:00, for 7 */
	q = q_new(CORE_OP_SERIES_PATCH, T0);
	q.u.spatch.series_id = 1;
	q.u.spatch.capacity = 7;
	q.u.spatch.waitlist_capacity = -1;
	q.u.spatch.price_cents = -1;
	q.u.spatch.start_minute = 19 * 60;
	q.u.spatch.weekday_mask = MON | WED | FRI;
	q.u.spatch.from = D(2026, 3, 3);
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK);
	/* 13 from the 3rd: the 5 unbooked on M/W/F moved (4th, 6th, 9th,
	 * 11th, 13th), the 2 booked kept, the other 6 cancelled */
	CHECK(r.series.regenerated == 5 && r.series.kept == 2 &&
	      r.series.cancelled == 6);
	n = series_events(rt.p, day0, day0 + 15 * DAY_MS, ev);
	CHECK(n == 14);
	for (uint32_t i = 0; i < n; i++) {
		if (ev[i].id == booked || ev[i].id == late) {
			CHECK(ev[i].detached && ev[i].capacity == 10 &&
			      ev[i].status == CORE_EVENT_SCHEDULED);
			kept++;
		} else if (ev[i].status == CORE_EVENT_SCHEDULED &&
			   ev[i].start_at > day0 + DAY_MS) {
			CHECK(ev[i].capacity == 7 && !ev[i].detached);
			CHECK((ev[i].start_at + HOUR_MS) % DAY_MS ==
			      19 * HOUR_MS); /* 19:00 Berlin (UTC+1) */
			moved++;
		}
	}
	CHECK(kept == 2 && moved == 5);
	/* Monday 2nd (before from) untouched */
	CHECK(ev[0].capacity == 10 && ev[0].start_at == day0 + 17 * HOUR_MS);
	/* nobody is told of a pattern change; the booked are kept */
	CHECK(elog_count(notify_of, CORE_NOTIFY_EVENT_CHANGED) == 0);

	/* ended on Thursday 12th: later events cancelled, bob's booking too,
	 * and bob told */
	q = q_new(CORE_OP_SERIES_PATCH, T0 + 1000);
	q.u.spatch.series_id = 1;
	q.u.spatch.capacity = q.u.spatch.waitlist_capacity = -1;
	q.u.spatch.price_cents = -1;
	q.u.spatch.start_minute = -1;
	q.u.spatch.last_date = D(2026, 3, 12);
	with_key(&q, 7, 8, 9);
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK && r.series.cancelled == 2 &&
	      r.series.kept == 0);
	CHECK(elog_count(notify_of, CORE_NOTIFY_EVENT_CANCELLED) == 1);
	q.u.spatch.series_id = 1;
	r = rcall(rt.p, &q); /* the same key: the first answer */
	CHECK(r.replayed && r.series.cancelled == 2);
	{
		struct core_req g = q_new(CORE_OP_BOOKING_GET, T0);
		g.booking_id = late << 24 | 1;
		CHECK(rcall(rt.p, &g).booking.status == CORE_BOOKING_CANCELLED);
	}
	/* refusals change nothing */
	q = q_new(CORE_OP_SERIES_PATCH, T0 + 2000);
	q.u.spatch.series_id = 9;
	q.u.spatch.capacity = q.u.spatch.waitlist_capacity = -1;
	q.u.spatch.price_cents = -1;
	q.u.spatch.start_minute = -1;
	CHECK(rcall(rt.p, &q).code == CORE_NO_SERIES);
	q.u.spatch.series_id = 1;
	q.u.spatch.last_date = D(2026, 2, 1); /* before its first date */
	CHECK(rcall(rt.p, &q).code == CORE_INVALID);
	q.u.spatch.last_date = D(0, 0, 0);
	q.u.spatch.start_minute = 24 * 60;
	CHECK(rcall(rt.p, &q).code == CORE_INVALID);
	/* from a day with none of its events on or after it: nothing to
	 * plan (an empty plan once reached qsort with a null array: UBSan) */
	q.u.spatch.start_minute = -1;
	q.u.spatch.capacity = 8;
	q.u.spatch.from = D(2026, 4, 1);
	r = rcall(rt.p, &q);
	CHECK_MSG(r.code == CORE_OK && r.series.regenerated == 0 &&
			  r.series.kept == 0 && r.series.cancelled == 0,
		  "code %d", (int)r.code);
	core_close(rt.c);

	/* the log replayed into one state: the same events */
	{
		core_state *st;
		cfg.shard_count = 1;
		cfg.log = NULL;
		st = core_state_new(&cfg);
		CHECK(elog_replay(st) == 0);
		CHECK(st_ev(st, booked).detached);
		CHECK(st_ev(st, late).status == CORE_EVENT_CANCELLED);
		core_state_free(st);
	}
	elog_reset();
}

/* ==== the record ========================================================= */

CHECK_TEST_FN(test_edit_record)
{
	uint8_t buf[512];
	struct wbuf w = { .data = buf, .capacity = sizeof(buf) };
	struct core_rec a, b;
	size_t pos = 0;

	memset(&a, 0, sizeof(a));
	a.type = CORE_REC_EVENT_EDIT;
	a.at = T0;
	a.u.edit.event_id = 77;
	a.u.edit.location_id = 3;
	a.u.edit.instructor_id = 4;
	a.u.edit.start_at = EV_START;
	a.u.edit.duration_min = 45;
	a.u.edit.capacity = 12;
	a.u.edit.waitlist_capacity = 3;
	a.u.edit.price_cents = 1500;
	strcpy(a.u.edit.currency, "eur");
	a.u.edit.changed = CORE_EDIT_START | CORE_EDIT_TITLE;
	strcpy(a.u.edit.title, "Pilates");
	rec_encode(&w, &a);
	CHECK(!w.overflow);
	CHECK(core_entry_next(buf, w.size, &pos, &b) == 1 && pos == w.size);
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);
	CHECK(core_rec_event_id(&b) == 77);
	CHECK(strcmp(core_rec_type_name(CORE_REC_EVENT_EDIT), "event_edit") ==
	      0);
	CHECK(strcmp(core_notify_kind_name(CORE_NOTIFY_EVENT_CHANGED),
		     "event_changed") == 0);
	CHECK(strcmp(core_notify_kind_name(CORE_NOTIFY_INSTRUCTOR_SUBSTITUTED),
		     "instructor_substituted") == 0);
	/* cut short: refused */
	pos = 0;
	CHECK(core_entry_next(buf, w.size - 1, &pos, &b) == -EINVAL);
	/* a type number with no layout (another build's) is refused */
	buf[0] = 18;
	pos = 0;
	CHECK(core_entry_next(buf, w.size, &pos, &b) == -EINVAL);
}

int main(int argc, char **argv)
{
	return core_test_main("core_edit", argc, argv);
}
