/*
 * test_core_remind.c: reminders before class (CORE_OP_REMIND, docs/core.md
 * "Reminders") and the pending_payment notification: a lead goes out once
 * per event, to the bookings confirmed then, also after a replay of the log
 * or a snapshot; none for cancelled bookings or events or classes already
 * started; several leads due at once send the closest; a changed list of
 * leads is safe; an event made inside the window is found; an event with
 * more bookings than one entry holds is reminded in chunks, and a restart
 * between two chunks sends only the rest. Cancelling an event tells its
 * active bookings (event_cancelled).
 *
 * Helpers, times and main: core_test.h.
 */
#include "core_test.h"
#include "state.h" /* core__state_remind */

/* ---- what the runs committed ---- */

#define SEEN_MAX 8192

static uint64_t seen[SEEN_MAX]; /* NOTIFY REMINDER booking ids, in order */
static uint32_t seen_count;
static uint16_t last_hours;	/* of the last REMIND record */
static uint32_t remind_records; /* REMIND records committed */
static int fail_after = -1;	/* commits before the hook refuses */

static void seen_reset(void)
{
	seen_count = 0;
	last_hours = 0;
	remind_records = 0;
}

/* The commit of a standalone state: logged, applied, its records seen. */
static int commit(void *ctx, const void *entry, size_t size)
{
	struct core_rec r;
	size_t pos = 0;

	if (fail_after == 0)
		return -EIO;
	if (fail_after > 0)
		fail_after--;
	while (core_entry_next(entry, size, &pos, &r) > 0) {
		if (r.type == CORE_REC_REMIND) {
			last_hours = r.u.remind.hours;
			remind_records++;
		}
		if (r.type == CORE_REC_NOTIFY &&
		    r.u.notify.kind == CORE_NOTIFY_REMINDER &&
		    seen_count < SEEN_MAX)
			seen[seen_count++] = r.u.notify.booking_id;
	}
	CHECK(pos == size);
	elog_add(entry, size);
	CHECK(core_state_apply(ctx, entry, size) == 0);
	return 0;
}

/* A run at now with the leads given (0 ends the list); its return code,
 * the notifications in *n. */
static int remind_n(core_state *st, core_time now, uint32_t *n, int h0, int h1,
		    int h2)
{
	struct core_req q = q_new(CORE_OP_REMIND, now);
	int hs[3] = { h0, h1, h2 };

	for (int i = 0; i < 3 && hs[i]; i++)
		q.u.remind.hours[q.u.remind.count++] = (uint16_t)hs[i];
	return core__state_remind(st, &q, commit, st, n);
}

/* The notifications of a run that must succeed. */
static uint32_t remind(core_state *st, core_time now, int h0, int h1)
{
	uint32_t n = 0;

	CHECK(remind_n(st, now, &n, h0, h1, 0) == 0);
	return n;
}

static bool seen_has(uint64_t id)
{
	for (uint32_t i = 0; i < seen_count; i++)
		if (seen[i] == id)
			return true;
	return false;
}

/* ==== once, to the confirmed bookings ================================== */

CHECK_TEST_FN(test_once_to_confirmed)
{
	core_state *st;
	uint64_t ev, ids[4];
	struct core_resp r;
	struct core_req q;

	elog_reset();
	seen_reset();
	st = st_setup();
	ev = st_event(st, 3, 2, 0, "");
	st_book_each(st, ev, "c", 4, ids); /* 3 confirmed, 1 waitlisted */
	CHECK(st_bk(st, ids[3]).status == CORE_BOOKING_WAITLISTED);
	q = q_cancel(T0 + 10, ids[1]); /* c3 is promoted */
	CHECK(sdo(st, &q, &r) == CORE_OK && r.has_promoted);
	q = q_cancel(T0 + 11, ids[2]);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	/* 24 h and a minute before: nothing due yet */
	CHECK(remind(st, EV_START - 24 * HOUR_MS - MIN_MS, 24, 0) == 0);
	CHECK(seen_count == 0 && remind_records == 0);
	/* at 24 h: c0 and c3, not the cancelled ones */
	CHECK(remind(st, EV_START - 24 * HOUR_MS, 24, 0) == 2);
	CHECK(seen_count == 2 && seen[0] == ids[0] && seen[1] == ids[3]);
	CHECK(remind_records == 1 && last_hours == 24);
	/* once: not again, later or at the same time */
	CHECK(remind(st, EV_START - 24 * HOUR_MS, 24, 0) == 0);
	CHECK(remind(st, EV_START - 5 * HOUR_MS, 24, 0) == 0);
	/* a booking made after the reminder went out gets none */
	struct core_resp late =
		st_book(st, EV_START - 4 * HOUR_MS, ev, "late", CORE_PAY_AUTO);
	CHECK(late.code == CORE_OK &&
	      late.booking.status == CORE_BOOKING_CONFIRMED);
	CHECK(remind(st, EV_START - 3 * HOUR_MS, 24, 0) == 0);
	CHECK(seen_count == 2 && remind_records == 1);
	core_state_free(st);
	elog_reset();
}

/* The notifications of one entry, of a kind, into ids (their count). */
static uint32_t notified(const void *entry, size_t size, uint8_t kind,
			 uint64_t *ids)
{
	struct core_rec r;
	size_t pos = 0;
	uint32_t n = 0;

	while (core_entry_next(entry, size, &pos, &r) > 0)
		if (r.type == CORE_REC_NOTIFY && r.u.notify.kind == kind)
			ids[n++] = r.u.notify.booking_id;
	return n;
}

CHECK_TEST_FN(test_pending_payment_notified)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 1, 1, 1500, "eur"), ids[4];
	struct core_resp r, r2;
	struct core_req q;
	const void *entry;
	size_t size;

	/* a hold on a priced event: pending_payment, not confirmed */
	q = q_book(T0, ev, "payer", CORE_PAY_AUTO);
	CHECK(core_state_decide(st, &q, &r, &entry, &size) == CORE_OK);
	CHECK(r.booking.status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(notified(entry, size, CORE_NOTIFY_PENDING_PAYMENT, ids) == 1 &&
	      ids[0] == r.booking.id);
	CHECK(notified(entry, size, CORE_NOTIFY_BOOKING_CONFIRMED, ids) == 0);
	CHECK(core_state_apply(st, entry, size) == 0);
	CHECK(core_notify_kind_name(CORE_NOTIFY_PENDING_PAYMENT)[0] == 'p');
	CHECK(strcmp(core_notify_kind_name(CORE_NOTIFY_PENDING_PAYMENT),
		     "pending_payment") == 0);
	/* the waitlisted one promoted to a hold: PROMOTED only */
	q = q_book(T0 + 2, ev, "waiter", CORE_PAY_AUTO);
	CHECK(sdo(st, &q, &r2) == CORE_OK &&
	      r2.booking.status == CORE_BOOKING_WAITLISTED);
	q = q_cancel(T0 + 3, r.booking.id);
	CHECK(core_state_decide(st, &q, &r, &entry, &size) == CORE_OK);
	CHECK(r.has_promoted &&
	      r.promoted.status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(notified(entry, size, CORE_NOTIFY_PROMOTED, ids) == 1);
	CHECK(notified(entry, size, CORE_NOTIFY_PENDING_PAYMENT, ids) == 0);
	CHECK(core_state_apply(st, entry, size) == 0);
	/* holds get no reminder: only confirmed bookings do */
	seen_reset();
	CHECK(remind(st, EV_START - HOUR_MS, 24, 0) == 0);
	CHECK(remind_records == 1);
	core_state_free(st);
}

/* Cancelling an event tells each active booking (confirmed, held,
 * waitlisted), in its entry, after the patch; not one cancelled before. An
 * event with more active bookings than an entry carries is refused. */
CHECK_TEST_FN(test_event_cancel_notified)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 2, 2, 0, ""), ids[4], got[4];
	uint64_t big = st_event(st, 3001, 0, 0, "");
	static uint64_t big_ids[3001];
	struct core_resp r;
	struct core_req q;
	const void *entry;
	size_t size;

	st_book_each(st, ev, "e", 4, ids); /* 2 confirmed, 2 waitlisted */
	q = q_cancel(T0 + 10, ids[3]);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_patch(T0 + 11, ev, -1, true);
	CHECK(core_state_decide(st, &q, &r, &entry, &size) == CORE_OK);
	CHECK_EQ(notified(entry, size, CORE_NOTIFY_EVENT_CANCELLED, got), 3);
	CHECK(got[0] == ids[0] && got[1] == ids[1] && got[2] == ids[2]);
	CHECK(core_state_apply(st, entry, size) == 0);
	CHECK(st_bk(st, ids[2]).status == CORE_BOOKING_CANCELLED);
	/* cancelled already: no change, nobody told again */
	q = q_patch(T0 + 12, ev, -1, true);
	CHECK(core_state_decide(st, &q, &r, &entry, &size) == CORE_OK);
	CHECK_EQ(notified(entry, size, CORE_NOTIFY_EVENT_CANCELLED, got), 0);
	CHECK(core_state_apply(st, entry, size) == 0);
	/* 3001 active bookings: more than one entry can tell */
	st_book_each(st, big, "b", 3001, big_ids);
	q = q_patch(T0 + 13, big, -1, true);
	CHECK(sdo(st, &q, &r) == CORE_LIMIT);
	CHECK(r.id == CORE_LIMIT_CANCEL_NOTIFY && r.count == 3000);
	q = q_cancel(T0 + 14, big_ids[0]);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_patch(T0 + 15, big, -1, true);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	core_state_free(st);
}

/* ==== none for cancelled events, started classes ======================= */

CHECK_TEST_FN(test_none_cancelled_or_started)
{
	core_state *st = st_setup();
	uint64_t a = st_event(st, 2, 0, 0, ""), b = st_event(st, 2, 0, 0, "");
	uint64_t ids[2];
	struct core_resp r;
	struct core_req q;

	elog_reset();
	seen_reset();
	st_book_each(st, a, "a", 2, ids);
	st_book_each(st, b, "b", 2, ids);
	q = q_patch(T0 + 10, a, -1, true); /* a is cancelled */
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(remind(st, EV_START - 2 * HOUR_MS, 2, 0) == 2);
	CHECK(seen_count == 2 && seen_has(ids[0]) && seen_has(ids[1]));
	CHECK(remind_records == 1);
	/* a class that started gets none, whenever the first run is */
	core_state_free(st);
	st = st_setup();
	b = st_event(st, 2, 0, 0, "");
	st_book_each(st, b, "b", 2, ids);
	seen_reset();
	CHECK(remind(st, EV_START, 24, 2) == 0);
	CHECK(remind(st, EV_START + HOUR_MS, 24, 2) == 0);
	CHECK(remind_records == 0);
	/* one millisecond before it starts still counts */
	core_state_free(st);
	st = st_setup();
	b = st_event(st, 2, 0, 0, "");
	st_book_each(st, b, "b", 2, ids);
	CHECK(remind(st, EV_START - 1, 24, 0) == 2);
	core_state_free(st);
	elog_reset();
}

/* ==== several leads, changed leads ===================================== */

CHECK_TEST_FN(test_leads)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 2, 0, 0, ""), ids[2];

	seen_reset();
	st_book_each(st, ev, "c", 2, ids);
	/* after downtime, 24 h and 2 h are both due: only 2 h goes out */
	CHECK(remind(st, EV_START - HOUR_MS, 24, 2) == 2);
	CHECK(remind_records == 1 && last_hours == 2);
	CHECK(remind(st, EV_START - 30 * MIN_MS, 2, 24) == 0);
	core_state_free(st);

	st = st_setup();
	ev = st_event(st, 2, 0, 0, "");
	st_book_each(st, ev, "c", 2, ids);
	seen_reset();
	/* 24 h goes out; then the list becomes 24,2: 2 h goes out too */
	CHECK(remind(st, EV_START - 20 * HOUR_MS, 24, 0) == 2);
	CHECK(last_hours == 24);
	CHECK(remind(st, EV_START - 3 * HOUR_MS, 2, 24) == 0);
	CHECK(remind(st, EV_START - 2 * HOUR_MS, 2, 24) == 2);
	CHECK(remind_records == 2 && last_hours == 2);
	/* a larger lead added later is past: nothing (2 h went out) */
	CHECK(remind(st, EV_START - HOUR_MS, 48, 0) == 0);
	CHECK(remind(st, EV_START - HOUR_MS, 1, 0) == 2);
	CHECK(remind_records == 3 && last_hours == 1);
	CHECK(seen_count == 6);
	/* leads out of range are refused, nothing decided */
	uint32_t n = 7;
	CHECK(remind_n(st, EV_START - HOUR_MS, &n, 0, 0, 0) == 0 && n == 0);
	CHECK(remind_n(st, EV_START - HOUR_MS, &n, 721, 0, 0) == -EINVAL);
	CHECK(remind_n(st, EV_START - HOUR_MS, &n, 2, 721, 0) == -EINVAL);
	struct core_req q = q_new(CORE_OP_REMIND, EV_START);
	q.u.remind.count = CORE_REMIND_LEAD_COUNT_MAX + 1;
	CHECK(core__state_remind(st, &q, commit, st, &n) == -EINVAL);
	core_state_free(st);
}

/* ==== an event made inside the window, runs that fail ================== */

CHECK_TEST_FN(test_new_event_and_failed_commit)
{
	core_state *st = st_setup();
	struct core_series_spec spec;
	struct core_resp r;
	uint64_t ev, ids[2];

	seen_reset();
	/* armed: runs before the event exists */
	CHECK(remind(st, EV_START - 5 * HOUR_MS, 24, 0) == 0);
	CHECK(remind(st, EV_START - 4 * HOUR_MS, 24, 0) == 0);
	/* a series made now, its class in 3 h (inside the 24 h window) */
	one_class(&spec, 4, 0, 0, "");
	CHECK(st_series(st, EV_START - 4 * HOUR_MS, &spec, &r) == CORE_OK);
	CHECK(st_generate(st, EV_START - 4 * HOUR_MS, r.id, NO_DATE) == 1);
	ev = st_event_count(st);
	st_book_each(st, ev, "n", 2, ids);
	/* the log refuses: nothing applied, the next run decides it again */
	fail_after = 0;
	uint32_t n = 0;
	CHECK(remind_n(st, EV_START - 3 * HOUR_MS, &n, 24, 0, 0) == -EIO);
	CHECK(n == 0 && remind_records == 0);
	fail_after = -1;
	CHECK(remind(st, EV_START - 3 * HOUR_MS + MIN_MS, 24, 0) == 2);
	CHECK(seen_count == 2 && seen[0] == ids[0] && seen[1] == ids[1]);
	core_state_free(st);
}

/* ==== after a restart: the log, a snapshot ============================= */

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

CHECK_TEST_FN(test_replay_and_snapshot)
{
	struct core_config cfg;
	struct rt rt, rt2;
	uint64_t ev, ids[3];
	struct core_req q;
	struct core_resp r;

	cfg_small(&cfg, 3);
	rt_open_logged(&rt, &cfg);
	ev = rt_event(rt.p, 5, 0, 0, "");
	for (int i = 0; i < 3; i++) {
		char cust[16];
		snprintf(cust, sizeof(cust), "r%d", i);
		q = q_book(T0 + i, ev, cust, CORE_PAY_AUTO);
		r = rcall(rt.p, &q);
		CHECK(r.code == CORE_OK);
		ids[i] = r.booking.id;
	}
	q = q_new(CORE_OP_REMIND, EV_START - 23 * HOUR_MS);
	q.u.remind.count = 2;
	q.u.remind.hours[0] = 24;
	q.u.remind.hours[1] = 2;
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK && r.count == 3);
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK && r.count == 0);
	/* a bad lead: refused */
	q.u.remind.hours[1] = 0;
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_INVALID);
	q.u.remind.hours[1] = 2;
	/* the snapshot: what went out is in it */
	snap_size = 0;
	CHECK(core_park(rt.c) == 0);
	CHECK(core_snapshot_write(rt.c, snap_write, NULL) == 0);
	core_unpark(rt.c);
	core_close(rt.c);

	/* a runtime from the snapshot (another shard count): nothing again
	 * for 24 h, the 2 h lead when it comes */
	cfg.shard_count = 2;
	cfg.log = NULL;
	rt_open(&rt2, &cfg);
	CHECK(core_park(rt2.c) == 0);
	CHECK(core_snapshot_load(rt2.c, snap, snap_size) == 0);
	core_unpark(rt2.c);
	q.now = EV_START - 20 * HOUR_MS;
	r = rcall(rt2.p, &q);
	CHECK(r.code == CORE_OK && r.count == 0);
	q.now = EV_START - 2 * HOUR_MS;
	r = rcall(rt2.p, &q);
	CHECK(r.code == CORE_OK && r.count == 3);
	core_close(rt2.c);

	/* a state from the log: the same */
	core_state *re = st_new();
	CHECK(elog_replay(re) == 0);
	seen_reset();
	CHECK(remind(re, EV_START - 20 * HOUR_MS, 24, 2) == 0);
	CHECK(remind(re, EV_START - 2 * HOUR_MS, 24, 2) == 3);
	CHECK(seen_has(ids[0]) && seen_has(ids[1]) && seen_has(ids[2]));
	core_state_free(re);
	elog_reset();
}

/* ==== an event larger than an entry ==================================== */

#define BIG 7000 /* confirmed bookings: three entries of reminders */

CHECK_TEST_FN(test_large_event_in_chunks)
{
	struct core_config cfg;
	core_state *st, *re;
	struct core_series_spec spec;
	struct core_resp r;
	size_t first_end = 0;
	uint64_t ev;

	cfg_small(&cfg, 1);
	cfg.customer_count_max = BIG + 16;
	elog_reset();
	g_log_on = true; /* the bookings too: a restart replays them */
	st = st_setup_with(&cfg);
	one_class(&spec, BIG, 0, 0, "");
	CHECK(st_series(st, T0, &spec, &r) == CORE_OK);
	CHECK(st_generate(st, T0, r.id, NO_DATE) == 1);
	ev = st_event_count(st);
	for (int i = 0; i < BIG; i++) {
		char cust[16];
		snprintf(cust, sizeof(cust), "big%d", i);
		CHECK(st_book(st, T0 + i, ev, cust, CORE_PAY_AUTO).code ==
		      CORE_OK);
	}
	/* the run is cut after its first entry (the log refuses the next) */
	seen_reset();
	fail_after = 1;
	uint32_t n = 0;
	CHECK(remind_n(st, EV_START - HOUR_MS, &n, 2, 0, 0) == -EIO);
	fail_after = -1;
	CHECK(n == seen_count && remind_records == 1 && seen_count > 0 &&
	      seen_count < BIG);
	first_end = g_log.size;
	uint32_t first = seen_count;

	/* a restart here (the log so far, into a fresh state) sends the
	 * rest, each booking once */
	re = core_state_new(&cfg);
	CHECK(elog_replay(re) == 0);
	CHECK(remind(re, EV_START - HOUR_MS + MIN_MS, 2, 0) == BIG - first);
	CHECK(seen_count == BIG && remind_records >= 3);
	for (uint32_t i = 1; i < seen_count; i++)
		CHECK(seen[i] > seen[i - 1]);
	CHECK(remind(re, EV_START - HOUR_MS + 2 * MIN_MS, 2, 0) == 0);
	core_state_free(re);
	/* and so does the state that was cut */
	CHECK(g_log.size > first_end);
	seen_reset();
	CHECK(remind(st, EV_START - HOUR_MS + MIN_MS, 2, 0) == BIG - first);
	core_state_free(st);
	g_log_on = false;
	elog_reset();
}

int main(int argc, char **argv)
{
	return core_test_main("core_remind", argc, argv);
}
