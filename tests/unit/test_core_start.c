/*
 * test_core_start.c: an org's settings (docs/core.md "Org settings"): set
 * at creation and by a patch, checked, logged as ORG_SETTINGS records that
 * rebuild them (log replay, snapshots), and used: a paid booking's hold,
 * generation's horizon, the cancellation cut-off (core_org_cutoff_ms).
 * And the start of a class (docs/core.md "Start of class"): cancels by the
 * customer refused from start on, the service key's recorded, late ones
 * inside the cut-off (the record's flag, its replay, snapshots); no
 * promotion from start on; the waitlist closed at start, in chunks.
 *
 * Helpers, times and main: core_test.h.
 */
#include "core_test.h"

#include "entry.h"
#include "record.h" /* rec_encode: the late flag's bytes */
#include "state.h"  /* core__state_expire_one */

/* An org patch (org_id) or create (0) giving the settings in `set`. */
static struct core_req q_org(core_time now, uint64_t org_id, uint8_t set,
			     uint16_t cutoff, uint16_t hold, uint16_t horizon)
{
	struct core_req q = org_id ? q_new(CORE_OP_ORG_PATCH, now)
				   : q_named(CORE_OP_ORG_CREATE, now, 0,
					     "Studio", "Europe/Berlin");

	q.u.cat.org_id = org_id;
	q.u.cat.settings_set = set;
	q.u.cat.settings.cancel_cutoff_hours = cutoff;
	q.u.cat.settings.hold_minutes = hold;
	q.u.cat.settings.horizon_days = horizon;
	return q;
}

static bool settings_are(const struct core_org_settings *s, uint16_t cutoff,
			 uint16_t hold, uint16_t horizon)
{
	return s->cancel_cutoff_hours == cutoff && s->hold_minutes == hold &&
	       s->horizon_days == horizon;
}

/* The ORG_SETTINGS records of an entry: how many, the last into *out. */
static int settings_recs(const void *entry, size_t size, struct core_rec *out)
{
	struct core_rec r;
	size_t pos = 0;
	int n = 0, rc;

	while ((rc = core_entry_next(entry, size, &pos, &r)) > 0)
		if (r.type == CORE_REC_ORG_SETTINGS) {
			*out = r;
			n++;
		}
	CHECK(rc == 0);
	return n;
}

CHECK_TEST_FN(test_org_settings_decide)
{
	enum {
		C = CORE_ORG_SET_CUTOFF,
		H = CORE_ORG_SET_HOLD,
		Z = CORE_ORG_SET_HORIZON
	};
	/* In order on one state; org: 0 creates; code, then the settings the
	 * answer shows (and the org keeps) when CORE_OK. */
	static const struct {
		uint64_t org;
		uint8_t set;
		uint16_t cutoff, hold, horizon;
		enum core_code code;
		uint16_t want_cutoff, want_hold, want_horizon;
	} cases[] = {
		/* org 1: none given, the defaults, no ORG_SETTINGS */
		{ 0, 0, 0, 0, 0, CORE_OK, 12, 0, 0 },
		/* org 2: a cut-off and a hold */
		{ 0, C | H, 24, 15, 0, CORE_OK, 24, 15, 0 },
		/* the bounds */
		{ 0, C, 721, 0, 0, CORE_INVALID, 0, 0, 0 },
		{ 0, H, 0, 1441, 0, CORE_INVALID, 0, 0, 0 },
		{ 0, Z, 0, 0, 367, CORE_INVALID, 0, 0, 0 },
		{ 0, 8, 0, 0, 0, CORE_INVALID, 0, 0, 0 },
		/* org 3: at the bounds, 0 hours of cut-off is none */
		{ 0, C | H | Z, 0, 1440, 366, CORE_OK, 0, 1440, 366 },
		/* patches: only what they give changes */
		{ 1, H, 0, 5, 0, CORE_OK, 12, 5, 0 },
		{ 2, C, 2, 0, 0, CORE_OK, 2, 15, 0 },
		{ 2, Z, 0, 0, 30, CORE_OK, 2, 15, 30 },
		{ 2, H | Z, 0, 0, 0, CORE_OK, 2, 0, 0 },
		{ 3, C, 720, 0, 0, CORE_OK, 720, 1440, 366 },
		{ 2, C, 721, 0, 0, CORE_INVALID, 0, 0, 0 },
		{ 9, C, 1, 0, 0, CORE_NO_ORG, 0, 0, 0 },
		{ 0 + 0, 0, 0, 0, 0, CORE_OK, 12, 0, 0 }, /* org 4 */
	};
	core_state *st = st_new();

	g_log_on = true;
	elog_reset();
	for (size_t i = 0; i < CHECK_COUNT_OF(cases); i++) {
		struct core_req q =
			q_org(T0, cases[i].org, cases[i].set, cases[i].cutoff,
			      cases[i].hold, cases[i].horizon);
		const void *entry;
		size_t size;
		struct core_resp r;
		struct core_rec rec;
		enum core_code code =
			core_state_decide(st, &q, &r, &entry, &size);

		CHECK_MSG(code == cases[i].code, "case %zu: %s", i,
			  core_code_name(code));
		if (code != CORE_OK) {
			CHECK(size == 0);
			continue;
		}
		CHECK_MSG(settings_are(&r.org, cases[i].want_cutoff,
				       cases[i].want_hold,
				       cases[i].want_horizon),
			  "case %zu", i);
		/* a creation without settings logs none; else one record
		 * with all of them as they are now */
		if (cases[i].org == 0 && cases[i].set == 0) {
			CHECK(settings_recs(entry, size, &rec) == 0);
		} else {
			CHECK_MSG(settings_recs(entry, size, &rec) == 1,
				  "case %zu", i);
			CHECK(rec.u.org_settings.org_id == r.id);
			CHECK(settings_are(&rec.u.org_settings.s,
					   cases[i].want_cutoff,
					   cases[i].want_hold,
					   cases[i].want_horizon));
		}
		if (cases[i].org)
			CHECK(r.id == cases[i].org);
		elog_add(entry, size);
		CHECK(core_state_apply(st, entry, size) == 0);
	}
	g_log_on = false;

	/* the log rebuilds them */
	core_state *re = st_new();
	CHECK(elog_replay(re) == 0);
	for (uint64_t org = 1; org <= 4; org++) {
		struct core_req q = q_org(T0, org, 0, 0, 0, 0);
		struct core_resp a, b;
		const void *e;
		size_t n;

		CHECK(core_state_decide(st, &q, &a, &e, &n) == CORE_OK);
		CHECK(core_state_decide(re, &q, &b, &e, &n) == CORE_OK);
		CHECK_MSG(memcmp(&a.org, &b.org, sizeof(a.org)) == 0,
			  "org %" PRIu64, org);
	}
	core_state_free(re);
	core_state_free(st);
	elog_reset();
}

/* A record with a number no layout has (one not in use) is refused. */
CHECK_TEST_FN(test_org_settings_record)
{
	uint8_t bytes[64] = { CORE_REC_ORG_SETTINGS, 1, 8 + 8 + 6, 0 };
	struct core_rec r;
	size_t pos = 0;
	uint64_t org = 7;
	uint16_t v[3] = { 48, 20, 90 };

	memcpy(bytes + 12, &org, 8);
	memcpy(bytes + 20, v, 6);
	CHECK(core_entry_next(bytes, 26, &pos, &r) == 1 && pos == 26);
	CHECK(r.type == CORE_REC_ORG_SETTINGS && r.u.org_settings.org_id == 7);
	CHECK(settings_are(&r.u.org_settings.s, 48, 20, 90));
	CHECK(strcmp(core_rec_type_name(r.type), "org_settings") == 0);
	/* cut short, or too long */
	pos = 0;
	bytes[2] = 8 + 8 + 5;
	CHECK(core_entry_next(bytes, 25, &pos, &r) < 0);
	bytes[2] = 8 + 8 + 6;
	CHECK(core_entry_next(bytes, 25, &pos, &r) < 0);
	/* numbers between the types in use are unknown */
	for (uint8_t t = CORE_REC_REMIND + 1; t < CORE_REC_ORG_SETTINGS; t++) {
		uint8_t empty[12] = { t, 1, 8, 0 };
		pos = 0;
		if (strcmp(core_rec_type_name(t), "unknown") == 0)
			CHECK_MSG(core_entry_next(empty, 12, &pos, &r) < 0,
				  "type %u", t);
	}
}

/* The settings at work: a paid booking's hold, a promotion's hold, the
 * horizon of generation; org 1 keeps the core's. */
CHECK_TEST_FN(test_org_settings_used)
{
	core_state *st = st_setup();
	struct core_req q = q_org(T0, 1, CORE_ORG_SET_HOLD, 0, 3, 0);
	struct core_series_spec spec;
	struct core_resp r;
	uint64_t ev, first;

	ev = st_event(st, 1, 5, 1500, "eur");
	r = st_book(st, T0, ev, "c0", CORE_PAY_AUTO);
	CHECK(r.code == CORE_OK && r.booking.hold_expires_at == T0 + HOLD_MS);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	r = st_book(st, T0 + 1, ev, "c1", CORE_PAY_AUTO);
	CHECK(r.code == CORE_OK && r.booking.status == CORE_BOOKING_WAITLISTED);
	/* c0 cancels: c1 promoted, held for the org's 3 minutes */
	q = q_cancel(T0 + 2, st_bk(st, ev << 24 | 1).id);
	CHECK(sdo(st, &q, &r) == CORE_OK && r.has_promoted);
	CHECK(r.promoted.hold_expires_at == T0 + 2 + 3 * MIN_MS);
	CHECK(st_bk(st, ev << 24 | 2).hold_expires_at == T0 + 2 + 3 * MIN_MS);

	/* generation: a daily series from T0's day, horizon 3 days */
	q = q_org(T0, 1, CORE_ORG_SET_HORIZON, 0, 0, 3);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	first = st_event_count(st);
	spec_init(&spec, 1, 1, 1, "Europe/Berlin", EVERY_DAY, 18 * 60,
		  D(2026, 3, 2), NO_DATE);
	CHECK(st_series(st, T0, &spec, &r) == CORE_OK);
	CHECK(r.count == 4); /* Mon 2 .. Thu 5 */
	CHECK(st_generate(st, T0, r.id, NO_DATE) == 4);
	CHECK(st_event_count(st) == first + 4);
	core_state_free(st);
}

static uint8_t snap[1 << 20];
static size_t snap_size;

static int snap_write(void *ctx, const void *buf, size_t size)
{
	(void)ctx;
	if (snap_size + size > sizeof(snap))
		return -ENOSPC;
	memcpy(snap + snap_size, buf, size);
	snap_size += size;
	return 0;
}

/* The runtime: settings through core_call, read by core_org_settings_get
 * and core_org_cutoff_ms, kept by a snapshot. */
CHECK_TEST_FN(test_org_settings_runtime)
{
	struct core_config cfg;
	struct core_org_settings s;
	struct core_req q;
	struct core_resp r;
	struct rt rt, rt2;

	cfg_small(&cfg, 2);
	rt_open(&rt, &cfg);
	rt_catalog(rt.p); /* orgs 1 and 2 */
	CHECK(core_org_cutoff_ms(rt.c, 1) == 12 * HOUR_MS);
	CHECK(core_org_cutoff_ms(rt.c, 99) == 12 * HOUR_MS);
	CHECK(core_org_settings_get(rt.c, 99, &s) == -ENOENT);
	q = q_org(T0, 2, CORE_ORG_SET_CUTOFF | CORE_ORG_SET_HOLD, 48, 20, 0);
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK && r.id == 2);
	CHECK(settings_are(&r.org, 48, 20, 0));
	CHECK(core_org_cutoff_ms(rt.c, 2) == 48 * HOUR_MS);
	CHECK(core_org_settings_get(rt.c, 2, &s) == 0);
	CHECK(settings_are(&s, 48, 20, 0));
	CHECK(core_org_settings_get(rt.c, 1, &s) == 0);
	CHECK(settings_are(&s, 12, 0, 0));
	q = q_org(T0, 0, CORE_ORG_SET_CUTOFF, 1, 0, 0);
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK && r.id == 3);
	CHECK(core_org_cutoff_ms(rt.c, 3) == HOUR_MS);

	snap_size = 0;
	CHECK(core_park(rt.c) == 0);
	CHECK(core_snapshot_write(rt.c, snap_write, NULL) == 0);
	core_unpark(rt.c);
	core_close(rt.c);
	rt_open(&rt2, &cfg);
	CHECK(core_park(rt2.c) == 0);
	CHECK(core_snapshot_load(rt2.c, snap, snap_size) == 0);
	core_unpark(rt2.c);
	CHECK(core_org_settings_get(rt2.c, 2, &s) == 0);
	CHECK(settings_are(&s, 48, 20, 0));
	CHECK(core_org_cutoff_ms(rt2.c, 1) == 12 * HOUR_MS);
	CHECK(core_org_cutoff_ms(rt2.c, 3) == HOUR_MS);
	core_close(rt2.c);
}

/* ==== the start of a class ============================================= */

static struct core_req q_cancel_by(core_time now, uint64_t booking_id,
				   const char *customer)
{
	struct core_req q = q_cancel(now, booking_id);

	if (customer)
		set_customer(&q, customer);
	return q;
}

CHECK_TEST_FN(test_cancel_at_start)
{
	/* a free class, 3 seats, waitlist 2: c0 c1 c2 seated, w0 w1 wait */
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 3, 2, 0, "");
	const core_time cut = EV_START - 12 * HOUR_MS;
	uint64_t id[5];
	struct core_req q;
	struct core_resp r;

	st_book_each(st, ev, "c", 3, id);
	st_book_each(st, ev, "w", 2, id + 3);
	CHECK(st_bk(st, id[3]).status == CORE_BOOKING_WAITLISTED);

	/* before the cut-off: not late, w0 promoted */
	q = q_cancel_by(cut - 1, id[0], "c0");
	CHECK(sdo(st, &q, &r) == CORE_OK && !r.booking.late);
	CHECK(r.has_promoted && r.promoted.id == id[3]);
	CHECK(!st_bk(st, id[0]).late);
	/* at the cut-off: late (the customer's own, and a waitlisted one
	 * leaving is never late) */
	q = q_cancel_by(cut, id[1], "c1");
	CHECK(sdo(st, &q, &r) == CORE_OK && r.booking.late);
	CHECK(r.has_promoted && r.promoted.id == id[4]);
	CHECK(st_bk(st, id[1]).late);
	/* from start on: the customer is refused, nothing changes */
	q = q_cancel_by(EV_START, id[2], "c2");
	CHECK(sdo(st, &q, &r) == CORE_EVENT_STARTED);
	CHECK(st_bk(st, id[2]).status == CORE_BOOKING_CONFIRMED);
	/* another's booking stays unknown to a customer */
	q = q_cancel_by(EV_START, id[2], "c0");
	CHECK(sdo(st, &q, &r) == CORE_NO_BOOKING);
	/* the service key records it, late */
	q = q_cancel_by(EV_START + MIN_MS, id[2], NULL);
	CHECK(sdo(st, &q, &r) == CORE_OK && r.booking.late);
	CHECK(r.booking.status == CORE_BOOKING_CANCELLED && !r.has_promoted);
	CHECK(strcmp(core_code_name(CORE_EVENT_STARTED), "event_started") == 0);
	core_state_free(st);

	/* a cut-off of 0 hours: late only from start on (the service key) */
	st = st_setup();
	q = q_new(CORE_OP_ORG_PATCH, T0);
	q.u.cat.org_id = 1;
	q.u.cat.settings_set = CORE_ORG_SET_CUTOFF;
	CHECK(sdo(st, &q, &r) == CORE_OK);
	ev = st_event(st, 2, 0, 0, "");
	st_book_each(st, ev, "c", 2, id);
	q = q_cancel_by(EV_START - 1, id[0], "c0");
	CHECK(sdo(st, &q, &r) == CORE_OK && !r.booking.late);
	q = q_cancel_by(EV_START, id[1], NULL);
	CHECK(sdo(st, &q, &r) == CORE_OK && r.booking.late);
	core_state_free(st);
}

/* A seat freed from start on promotes nobody: a cancel, a capacity raise,
 * a hold running out, a failed payment. */
CHECK_TEST_FN(test_no_promotion_after_start)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 2, 3, 1500, "eur");
	uint64_t id[5];
	struct core_req q;
	struct core_resp r;
	const void *entry;
	size_t size;

	/* c0 held (paid class), c1 at the desk; w0 w1 w2 wait */
	r = st_book(st, EV_START - HOLD_MS + 1, ev, "c0", CORE_PAY_AUTO);
	CHECK(r.code == CORE_OK &&
	      r.booking.status == CORE_BOOKING_PENDING_PAYMENT);
	id[0] = r.booking.id;
	r = st_book(st, EV_START - HOLD_MS + 2, ev, "c1", CORE_PAY_NONE);
	id[1] = r.booking.id;
	for (int i = 0; i < 3; i++) {
		char c[16];
		snprintf(c, sizeof(c), "w%d", i);
		r = st_book(st, EV_START - HOLD_MS + 3 + i, ev, c,
			    CORE_PAY_AUTO);
		CHECK(r.booking.status == CORE_BOOKING_WAITLISTED);
		id[2 + i] = r.booking.id;
	}
	/* the hold runs out after start: nobody promoted */
	CHECK(core__state_expire_one(st, EV_START + 1, &entry, &size));
	CHECK(core_state_apply(st, entry, size) == 0);
	CHECK(st_bk(st, id[0]).status == CORE_BOOKING_EXPIRED);
	CHECK(st_bk(st, id[2]).status == CORE_BOOKING_WAITLISTED);
	/* a cancel, a capacity raise: nobody */
	q = q_cancel_by(EV_START + 2, id[1], NULL);
	CHECK(sdo(st, &q, &r) == CORE_OK && !r.has_promoted && r.count == 0);
	q = q_patch(EV_START + 3, ev, 5, false);
	CHECK(sdo(st, &q, &r) == CORE_OK && r.count == 0);
	CHECK(r.event.waitlist_length == 3 && r.event.held == 0);
	CHECK(st_ev(st, ev).waitlist_length == 3);
	/* nor a booking, a waitlist join */
	r = st_book(st, EV_START, ev, "late", CORE_PAY_NONE);
	CHECK(r.code == CORE_NOT_BOOKABLE);
	core_state_free(st);
}

/* The records: a late cancel's flag is one byte more, only when set. */
CHECK_TEST_FN(test_late_record)
{
	struct core_rec a = { .type = CORE_REC_BOOKING_SET, .at = T0 }, b;
	uint8_t buf[256];
	struct wbuf w = { .data = buf, .capacity = sizeof(buf) };
	size_t pos = 0, plain;

	a.u.booking.booking_id = 7 << 24 | 1;
	a.u.booking.status = CORE_BOOKING_CANCELLED;
	rec_encode(&w, &a);
	plain = w.size;
	a.u.booking.late = true;
	rec_encode(&w, &a);
	CHECK(w.size == 2 * plain + 1 && buf[w.size - 1] == 1);
	CHECK(core_entry_next(buf, w.size, &pos, &b) == 1 && !b.u.booking.late);
	CHECK(core_entry_next(buf, w.size, &pos, &b) == 1 && b.u.booking.late);
	CHECK(b.u.booking.status == CORE_BOOKING_CANCELLED);
	/* the flag byte is 1 or absent: 0 or 2 is refused */
	buf[w.size - 1] = 0;
	pos = plain;
	CHECK(core_entry_next(buf, w.size, &pos, &b) < 0);
	buf[w.size - 1] = 2;
	CHECK(core_entry_next(buf, w.size, &pos, &b) < 0);
	/* a record without it (a NEW's, a NOTIFY's) takes no extra byte */
	memset(&a.u, 0, sizeof(a.u));
	a.type = CORE_REC_NOTIFY;
	a.u.notify.booking_id = 7 << 24 | 1;
	a.u.notify.kind = CORE_NOTIFY_WAITLIST_EXPIRED;
	w.size = 0;
	rec_encode(&w, &a);
	buf[w.size] = 1;
	buf[2]++;
	pos = 0;
	CHECK(core_entry_next(buf, w.size + 1, &pos, &b) < 0);
	CHECK(strcmp(core_notify_kind_name(CORE_NOTIFY_WAITLIST_EXPIRED),
		     "waitlist_expired") == 0);
	CHECK(strcmp(core_booking_status_name(CORE_BOOKING_WAITLIST_EXPIRED),
		     "waitlist_expired") == 0);
}

/* The NOTIFY waitlist_expired records of the log (elog), in order. */
static uint32_t logged_closed(uint64_t *ids, uint32_t cap, uint32_t *entries)
{
	uint32_t n = 0;

	*entries = 0;
	for (size_t at = 0; at < g_log.size;) {
		uint32_t size;
		struct core_rec r;
		size_t pos = 0;
		bool any = false;

		memcpy(&size, g_log.buf + at, 4);
		while (core_entry_next(g_log.buf + at + 4, size, &pos, &r) > 0)
			if (r.type == CORE_REC_NOTIFY &&
			    r.u.notify.kind == CORE_NOTIFY_WAITLIST_EXPIRED) {
				if (n < cap)
					ids[n] = r.u.notify.booking_id;
				n++;
				any = true;
			}
		*entries += any;
		at += 4 + size;
	}
	return n;
}

/* At start the waitlist closes (the runtime's tick): every waitlisted
 * booking expired and told, in FIFO order, in chunks of 1000; a held one
 * keeps its hold; a snapshot and the log rebuild it, late flags too. */
CHECK_TEST_FN(test_waitlist_closes)
{
	enum { WAITING = 2500 };
	static uint64_t ids[WAITING + 8], seen[WAITING + 8];
	struct core_config cfg;
	struct core_req q;
	struct core_resp r;
	uint32_t entries;
	struct rt rt, rt2;
	uint64_t ev, held;

	cfg_small(&cfg, 2);
	cfg.booking_count_max = 1 << 16;
	rt_open_logged(&rt, &cfg);
	ev = rt_event(rt.p, 2, WAITING + 10, 1500, "eur");
	q = q_book(EV_START - 5 * MIN_MS, ev, "held", CORE_PAY_AUTO);
	r = rcall(rt.p, &q);
	CHECK(r.booking.status == CORE_BOOKING_PENDING_PAYMENT);
	held = r.booking.id;
	q = q_book(EV_START - 5 * MIN_MS, ev, "desk", CORE_PAY_NONE);
	r = rcall(rt.p, &q);
	CHECK(r.booking.status == CORE_BOOKING_CONFIRMED);
	for (int i = 0; i < WAITING; i++) {
		char c[16];
		snprintf(c, sizeof(c), "w%d", i);
		q = q_book(EV_START - 5 * MIN_MS + 1, ev, c, CORE_PAY_AUTO);
		r = rcall(rt.p, &q);
		CHECK(r.code == CORE_OK &&
		      r.booking.status == CORE_BOOKING_WAITLISTED);
		ids[i] = r.booking.id;
	}
	/* the desk booking cancelled late by the service key, before start */
	q = q_cancel(EV_START - 5 * MIN_MS + 2, ev << 24 | 2);
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK && r.booking.late && r.has_promoted);
	ids[0] = 0; /* w0 took the seat (a hold: a paid class) */
	/* a tick just before start: nothing; at start: all of it */
	rt_tick(rt.p, EV_START - 1);
	CHECK(logged_closed(seen, WAITING, &entries) == 0);
	rt_tick(rt.p, EV_START);
	CHECK(logged_closed(seen, WAITING, &entries) == WAITING - 1);
	CHECK(entries == 3); /* 1000 + 1000 + 499 */
	for (int i = 1; i < WAITING; i++)
		CHECK_MSG(seen[i - 1] == ids[i], "notify %d", i);
	struct core_event_view v = rt_ev(rt.p, EV_START, ev);
	CHECK(v.waitlist_length == 0 && v.held == 2 && v.booked == 0);
	CHECK(rt_bk(rt.p, EV_START, ids[1]).status ==
	      CORE_BOOKING_WAITLIST_EXPIRED);
	CHECK(rt_bk(rt.p, EV_START, ids[1]).position == 0);
	CHECK(rt_bk(rt.p, EV_START, held).status ==
	      CORE_BOOKING_PENDING_PAYMENT);
	/* again: nothing more */
	rt_tick(rt.p, EV_START + 1);
	CHECK(logged_closed(seen, WAITING, &entries) == WAITING - 1);

	/* the snapshot and the log keep statuses and the late flag */
	snap_size = 0;
	CHECK(core_park(rt.c) == 0);
	CHECK(core_snapshot_write(rt.c, snap_write, NULL) == 0);
	core_unpark(rt.c);
	core_close(rt.c);
	cfg.log = NULL;
	cfg.shard_count = 3;
	rt_open(&rt2, &cfg);
	CHECK(core_park(rt2.c) == 0);
	CHECK(core_snapshot_load(rt2.c, snap, snap_size) == 0);
	core_unpark(rt2.c);
	CHECK(rt_bk(rt2.p, EV_START, ev << 24 | 2).late);
	CHECK(rt_bk(rt2.p, EV_START, ids[WAITING - 1]).status ==
	      CORE_BOOKING_WAITLIST_EXPIRED);
	core_close(rt2.c);
	core_state *re = st_new();
	CHECK(elog_replay(re) == 0);
	CHECK(st_bk(re, ev << 24 | 2).late);
	CHECK(st_bk(re, ids[7]).status == CORE_BOOKING_WAITLIST_EXPIRED);
	CHECK(st_ev(re, ev).waitlist_length == 0);
	core_state_free(re);
	elog_reset();
}

/* A keyed late cancel replays its answer, flag and all. */
CHECK_TEST_FN(test_late_replay)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 1, 0, 0, "");
	struct core_req q;
	struct core_resp r, again;
	uint64_t id;

	r = st_book(st, T0, ev, "c0", CORE_PAY_AUTO);
	id = r.booking.id;
	q = q_cancel(EV_START - HOUR_MS, id);
	with_key(&q, 1, 2, 3);
	CHECK(sdo(st, &q, &r) == CORE_OK && r.booking.late);
	CHECK(sdo(st, &q, &again) == CORE_OK && again.replayed);
	CHECK(again.booking.late && again.booking.id == id);
	core_state_free(st);
}

int main(int argc, char **argv)
{
	return core_test_main("core_start", argc, argv);
}
