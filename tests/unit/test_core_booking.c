/*
 * test_core_booking.c: booking and what follows it: confirm then waitlist,
 * one active booking per customer, customer ids, priced holds, cancel and
 * FIFO promotion, holds expiring on the runtime's tick, payment outcomes,
 * capacity changes and cancelled events.
 *
 * Helpers, times and main: core_test.h.
 */
#include "core_test.h"

/* ==== booking =========================================================== */

CHECK_TEST_FN(test_book_confirm_then_waitlist)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 2, 2, 0, "");
	struct core_resp r[5];
	const char *cust[5] = { "c1", "c2", "c3", "c4", "c5" };

	for (int i = 0; i < 5; i++)
		r[i] = st_book(st, T0 + i, ev, cust[i], CORE_PAY_AUTO);
	for (int i = 0; i < 4; i++) {
		CHECK(r[i].code == CORE_OK);
		CHECK(r[i].op == CORE_OP_BOOK);
		CHECK(!r[i].replayed);
		CHECK(r[i].booking.event_id == ev);
		CHECK(core_booking_event(r[i].booking.id) == ev);
		CHECK((r[i].booking.id & 0xffffff) == (uint64_t)i + 1);
		CHECK(strcmp(r[i].booking.customer_id, cust[i]) == 0);
		CHECK(r[i].booking.created_at == T0 + i);
		CHECK(r[i].booking.hold_expires_at == 0);
		struct core_booking_view stored = st_bk(st, r[i].booking.id);
		CHECK(view_eq(&stored, &r[i].booking));
	}
	CHECK(r[0].booking.status == CORE_BOOKING_CONFIRMED);
	CHECK(r[0].booking.position == 0);
	CHECK(r[1].booking.status == CORE_BOOKING_CONFIRMED);
	CHECK(r[2].booking.status == CORE_BOOKING_WAITLISTED);
	CHECK(r[2].booking.position == 1);
	CHECK(r[3].booking.status == CORE_BOOKING_WAITLISTED);
	CHECK(r[3].booking.position == 2);
	CHECK(r[4].code == CORE_EVENT_FULL); /* no seat, no waitlist room */

	struct core_event_view v = st_ev(st, ev);
	CHECK(v.capacity == 2 && v.booked == 2 && v.held == 0);
	CHECK(v.waitlist_length == 2 && v.waitlist_capacity == 2);
	struct core_stats s;
	core_state_stats(st, &s);
	CHECK(s.booking_count == 4);
	core_state_free(st);
}

CHECK_TEST_FN(test_book_one_active_per_customer)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 1, 2, 0, "");
	struct core_resp a, b, again;
	struct core_req q;

	a = st_book(st, T0, ev, "alice", CORE_PAY_AUTO);
	CHECK(a.code == CORE_OK && a.booking.status == CORE_BOOKING_CONFIRMED);
	again = st_book(st, T0 + 1, ev, "alice", CORE_PAY_AUTO);
	CHECK(again.code == CORE_ALREADY_BOOKED);
	b = st_book(st, T0 + 2, ev, "bob", CORE_PAY_AUTO);
	CHECK(b.code == CORE_OK && b.booking.status == CORE_BOOKING_WAITLISTED);
	again = st_book(st, T0 + 3, ev, "bob",
			CORE_PAY_AUTO); /* waitlisted too */
	CHECK(again.code == CORE_ALREADY_BOOKED);
	CHECK(st_ev(st, ev).waitlist_length == 1);

	/* After a cancel the customer may book again: a new booking. */
	q = q_cancel(T0 + 4, a.booking.id);
	CHECK(sdo(st, &q, &again) == CORE_OK);
	again = st_book(st, T0 + 5, ev, "alice", CORE_PAY_AUTO);
	CHECK(again.code == CORE_OK);
	CHECK(again.booking.id != a.booking.id);
	CHECK((again.booking.id & 0xffffff) == 3);
	CHECK(again.booking.status ==
	      CORE_BOOKING_WAITLISTED); /* bob promoted */
	CHECK(again.booking.position == 1);
	CHECK(st_bk(st, a.booking.id).status == CORE_BOOKING_CANCELLED);
	CHECK(st_book(st, T0 + 6, ev, "alice", CORE_PAY_AUTO).code ==
	      CORE_ALREADY_BOOKED);
	core_state_free(st);
}

CHECK_TEST_FN(test_book_customer_ids)
{
	static const char *const bad[] = {
		"",	      "a b",	"a/b", "tab\tx", "caf\xc3\xa9",
		"semi;colon", "quote\""
	};
	static const char *const good[] = {
		"a.b_c:d@e-f",
		"550e8400-e29b-41d4-a716-446655440000",
		"Z9",
		"user@example.org",
	};
	char id64[65];
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 10, 0, 0, "");
	struct core_resp r;
	struct core_req q;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(st_book(st, T0, ev, bad[i], CORE_PAY_AUTO).code ==
		      CORE_INVALID);
	/* 65 characters: the whole field, no terminator. */
	q = q_book(T0, ev, "x", CORE_PAY_AUTO);
	memset(q.customer_id, 'a', sizeof(q.customer_id));
	CHECK(sdo(st, &q, &r) == CORE_INVALID);
	CHECK(st_ev(st, ev).booked == 0);

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		r = st_book(st, T0, ev, good[i], CORE_PAY_AUTO);
		CHECK(r.code == CORE_OK);
		CHECK(strcmp(r.booking.customer_id, good[i]) == 0);
		CHECK(strcmp(st_bk(st, r.booking.id).customer_id, good[i]) ==
		      0);
	}
	memset(id64, 'b', 64);
	id64[64] = '\0';
	r = st_book(st, T0, ev, id64, CORE_PAY_AUTO); /* 64: the maximum */
	CHECK(r.code == CORE_OK);
	CHECK(strcmp(r.booking.customer_id, id64) == 0);
	CHECK(st_ev(st, ev).booked == 5);
	core_state_free(st);
}

CHECK_TEST_FN(test_book_unknown_or_not_bookable)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 5, 0, 0, "");
	uint64_t ev2 = st_event(st, 5, 0, 0, "");
	struct core_resp r;
	struct core_req q;

	CHECK(st_book(st, T0, 999999, "c", CORE_PAY_AUTO).code ==
	      CORE_NO_EVENT);
	CHECK(st_book(st, T0, 0, "c", CORE_PAY_AUTO).code == CORE_NO_EVENT);
	/* Bookable until it starts. */
	r = st_book(st, EV_START - 1, ev, "early", CORE_PAY_AUTO);
	CHECK(r.code == CORE_OK && r.booking.status == CORE_BOOKING_CONFIRMED);
	CHECK(st_book(st, EV_START, ev, "late", CORE_PAY_AUTO).code ==
	      CORE_NOT_BOOKABLE);
	CHECK(st_book(st, EV_START + HOUR_MS, ev, "later", CORE_PAY_AUTO).code ==
	      CORE_NOT_BOOKABLE);
	CHECK(st_ev(st, ev).booked == 1);
	/* A cancelled event is not bookable. */
	q = q_patch(T0, ev2, -1, true);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(st_ev(st, ev2).status == CORE_EVENT_CANCELLED);
	CHECK(st_book(st, T0, ev2, "c", CORE_PAY_AUTO).code ==
	      CORE_NOT_BOOKABLE);
	CHECK(st_ev(st, ev2).booked == 0);
	core_state_free(st);
}

CHECK_TEST_FN(test_book_priced_hold)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 3, 1, 1500, "eur");
	uint64_t free_ev = st_event(st, 3, 1, 0, "");
	struct core_resp a, b, c, d, f;

	a = st_book(st, T0, ev, "a", CORE_PAY_AUTO);
	CHECK(a.code == CORE_OK);
	CHECK(a.booking.status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(a.booking.hold_expires_at == T0 + HOLD_MS);
	CHECK(st_bk(st, a.booking.id).hold_expires_at == T0 + HOLD_MS);
	b = st_book(st, T0 + 5, ev, "b", CORE_PAY_STRIPE);
	CHECK(b.code == CORE_OK);
	CHECK(b.booking.status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(b.booking.hold_expires_at == T0 + 5 + HOLD_MS);
	c = st_book(st, T0 + 6, ev, "c", CORE_PAY_NONE); /* paid at the desk */
	CHECK(c.code == CORE_OK);
	CHECK(c.booking.status == CORE_BOOKING_CONFIRMED);
	CHECK(c.booking.hold_expires_at == 0);

	struct core_event_view v = st_ev(st, ev);
	CHECK(v.booked == 1 && v.held == 2 && v.capacity == 3);
	CHECK(v.price_cents == 1500 && strcmp(v.currency, "eur") == 0);
	/* Holds take seats: the next one waits. */
	d = st_book(st, T0 + 7, ev, "d", CORE_PAY_AUTO);
	CHECK(d.code == CORE_OK && d.booking.status == CORE_BOOKING_WAITLISTED);
	CHECK(d.booking.hold_expires_at == 0);
	/* The price decides: a free event confirms even when asked to pay. */
	f = st_book(st, T0, free_ev, "a", CORE_PAY_STRIPE);
	CHECK(f.code == CORE_OK && f.booking.status == CORE_BOOKING_CONFIRMED);
	CHECK(f.booking.hold_expires_at == 0);
	core_state_free(st);
}

/* ==== cancel ============================================================ */

CHECK_TEST_FN(test_cancel_promotes_fifo)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 2, 3, 0, "");
	const char *cust[5] = { "b1", "b2", "w1", "w2", "w3" };
	uint64_t id[5];
	struct core_resp r;
	struct core_req q;

	for (int i = 0; i < 5; i++) {
		r = st_book(st, T0 + i, ev, cust[i], CORE_PAY_AUTO);
		CHECK(r.code == CORE_OK);
		id[i] = r.booking.id;
	}
	q = q_cancel(T0 + 10, id[0]);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(r.booking.id == id[0]);
	CHECK(r.booking.status == CORE_BOOKING_CANCELLED);
	CHECK(r.booking.position == 0);
	CHECK(r.has_promoted);
	CHECK(r.count == 1);
	CHECK(r.promoted.id == id[2]); /* the head of the waitlist */
	CHECK(r.promoted.status == CORE_BOOKING_CONFIRMED);
	CHECK(r.promoted.position == 0);
	CHECK(strcmp(r.promoted.customer_id, "w1") == 0);
	CHECK(view_eq(&r.promoted,
		      &(struct core_booking_view){ r.promoted.id, ev, "w1",
						   CORE_BOOKING_CONFIRMED, 0, 0,
						   T0 + 2, false }));
	CHECK(st_bk(st, id[0]).status == CORE_BOOKING_CANCELLED);
	CHECK(st_bk(st, id[2]).status == CORE_BOOKING_CONFIRMED);
	CHECK(st_bk(st, id[3]).position == 1); /* moved up */
	CHECK(st_bk(st, id[4]).position == 2);
	struct core_event_view v = st_ev(st, ev);
	CHECK(v.booked == 2 && v.waitlist_length == 2);

	/* A waitlisted booking leaving frees no seat: nobody is promoted. */
	q = q_cancel(T0 + 11, id[3]);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(r.booking.status == CORE_BOOKING_CANCELLED);
	CHECK(!r.has_promoted);
	CHECK(r.count == 0);
	CHECK(st_bk(st, id[4]).position == 1);
	v = st_ev(st, ev);
	CHECK(v.booked == 2 && v.waitlist_length == 1);

	/* Twice: not active. Unknown: no booking. */
	q = q_cancel(T0 + 12, id[0]);
	CHECK(sdo(st, &q, &r) == CORE_NOT_ACTIVE);
	q = q_cancel(T0 + 12, id[3]);
	CHECK(sdo(st, &q, &r) == CORE_NOT_ACTIVE);
	q = q_cancel(T0 + 12, ev << 24 | 99);
	CHECK(sdo(st, &q, &r) == CORE_NO_BOOKING);
	q = q_cancel(T0 + 12, UINT64_C(777) << 24 | 1);
	CHECK(sdo(st, &q, &r) == CORE_NO_BOOKING);
	q = q_cancel(T0 + 12, 0);
	CHECK(sdo(st, &q, &r) == CORE_NO_BOOKING);
	v = st_ev(st, ev);
	CHECK(v.booked == 2 && v.waitlist_length == 1);
	core_state_free(st);
}

/* A cancel naming a customer (the HTTP adapter sets a JWT's sub) cancels
 * only that customer's booking; another's is CORE_NO_BOOKING, unchanged. */
CHECK_TEST_FN(test_cancel_by_customer_own_only)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 2, 0, 0, "");
	struct core_resp a = st_book(st, T0, ev, "alice", CORE_PAY_AUTO);
	struct core_resp r;
	struct core_req q;

	CHECK(a.code == CORE_OK);
	q = q_cancel(T0 + 1, a.booking.id);
	set_customer(&q, "mallory");
	CHECK(sdo(st, &q, &r) == CORE_NO_BOOKING);
	CHECK(st_bk(st, a.booking.id).status == CORE_BOOKING_CONFIRMED);
	set_customer(&q, "alic"); /* a prefix is another customer */
	CHECK(sdo(st, &q, &r) == CORE_NO_BOOKING);
	set_customer(&q, "alice");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(r.booking.status == CORE_BOOKING_CANCELLED);
	CHECK(st_bk(st, a.booking.id).status == CORE_BOOKING_CANCELLED);
	core_state_free(st);
}

CHECK_TEST_FN(test_cancel_priced_promotes_to_hold)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 1, 1, 1500, "eur");
	struct core_resp a, w, r;
	struct core_req q;

	a = st_book(st, T0, ev, "a", CORE_PAY_NONE);
	w = st_book(st, T0 + 1, ev, "w", CORE_PAY_AUTO);
	CHECK(w.booking.status == CORE_BOOKING_WAITLISTED);
	q = q_cancel(T0 + 100, a.booking.id);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(r.has_promoted && r.promoted.id == w.booking.id);
	CHECK(r.promoted.status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(r.promoted.hold_expires_at == T0 + 100 + HOLD_MS);
	struct core_booking_view stored = st_bk(st, w.booking.id);
	CHECK(view_eq(&stored, &r.promoted));
	struct core_event_view v = st_ev(st, ev);
	CHECK(v.booked == 0 && v.held == 1 && v.waitlist_length == 0);
	core_state_free(st);
}

CHECK_TEST_FN(test_hold_expiry_passes_seat)
{
	struct core_config cfg;
	struct rt rt;
	struct core_resp a, b, c;
	struct core_req q;

	cfg_small(&cfg, 2);
	rt_open(&rt, &cfg);
	rt_catalog(rt.p);
	uint64_t ev = rt_event(rt.p, 1, 2, 1500, "eur");

	q = q_book(T0, ev, "a", CORE_PAY_AUTO);
	a = rcall(rt.p, &q);
	CHECK(a.code == CORE_OK &&
	      a.booking.status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(a.booking.hold_expires_at == T0 + HOLD_MS);
	q = q_book(T0 + 1, ev, "b", CORE_PAY_AUTO);
	b = rcall(rt.p, &q);
	CHECK(b.code == CORE_OK && b.booking.position == 1);
	q = q_book(T0 + 2, ev, "c", CORE_PAY_AUTO);
	c = rcall(rt.p, &q);
	CHECK(c.code == CORE_OK && c.booking.position == 2);

	/* 1 ms before the expiry: nothing. */
	CHECK(rt_tick(rt.p, T0 + HOLD_MS - 1) == 0);
	CHECK(rt_bk(rt.p, T0 + HOLD_MS - 1, a.booking.id).status ==
	      CORE_BOOKING_PENDING_PAYMENT);
	/* At the expiry: expired, the seat goes to b with a fresh hold. */
	CHECK(rt_tick(rt.p, T0 + HOLD_MS) == 1);
	struct core_booking_view va = rt_bk(rt.p, T0 + HOLD_MS, a.booking.id);
	CHECK(va.status == CORE_BOOKING_EXPIRED);
	CHECK(va.hold_expires_at == 0);
	struct core_booking_view vb = rt_bk(rt.p, T0 + HOLD_MS, b.booking.id);
	CHECK(vb.status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(vb.hold_expires_at == T0 + 2 * HOLD_MS);
	CHECK(vb.position == 0);
	CHECK(rt_bk(rt.p, T0 + HOLD_MS, c.booking.id).position == 1);
	struct core_event_view v = rt_ev(rt.p, T0 + HOLD_MS, ev);
	CHECK(v.booked == 0 && v.held == 1 && v.waitlist_length == 1);
	CHECK(rt_tick(rt.p, T0 + HOLD_MS) == 0);

	/* b's hold runs out too: c gets the seat. */
	CHECK(rt_tick(rt.p, T0 + 2 * HOLD_MS) == 1);
	CHECK(rt_bk(rt.p, T0 + 2 * HOLD_MS, b.booking.id).status ==
	      CORE_BOOKING_EXPIRED);
	struct core_booking_view vc =
		rt_bk(rt.p, T0 + 2 * HOLD_MS, c.booking.id);
	CHECK(vc.status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(vc.hold_expires_at == T0 + 3 * HOLD_MS);
	/* Paying in time confirms: nothing left to expire. */
	q = q_pay(T0 + 2 * HOLD_MS + 1, c.booking.id, true, 1500, "eur");
	CHECK(rcall(rt.p, &q).code == CORE_OK);
	CHECK(rt_tick(rt.p, T0 + 10 * HOLD_MS) == 0);
	v = rt_ev(rt.p, T0 + 10 * HOLD_MS, ev);
	CHECK(v.booked == 1 && v.held == 0 && v.waitlist_length == 0);
	/* A payment for an expired hold is refused (recorded, flagged). */
	q = q_pay(T0 + 10 * HOLD_MS, a.booking.id, true, 1500, "eur");
	CHECK(rcall(rt.p, &q).code == CORE_NOT_PENDING);
	core_close(rt.c);
}

CHECK_TEST_FN(test_payment_outcomes)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 1, 1, 1500, "eur");
	uint64_t ev2 = st_event(st, 1, 1, 1500, "eur");
	struct core_resp a, w, r;
	struct core_req q;

	a = st_book(st, T0, ev, "a", CORE_PAY_AUTO);
	w = st_book(st, T0 + 1, ev, "w", CORE_PAY_AUTO);
	CHECK(a.booking.status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(w.booking.status == CORE_BOOKING_WAITLISTED);

	/* Wrong amount, wrong currency: flagged, the hold stays. */
	q = q_pay(T0 + 10, a.booking.id, true, 1499, "eur");
	CHECK(sdo(st, &q, &r) == CORE_PAYMENT_MISMATCH);
	CHECK(r.booking.id == a.booking.id);
	CHECK(r.booking.status == CORE_BOOKING_PENDING_PAYMENT);
	q = q_pay(T0 + 11, a.booking.id, true, 1500, "usd");
	CHECK(sdo(st, &q, &r) == CORE_PAYMENT_MISMATCH);
	struct core_booking_view va = st_bk(st, a.booking.id);
	CHECK(va.status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(va.hold_expires_at == T0 + HOLD_MS);
	CHECK(st_ev(st, ev).held == 1);
	/* Paying a waitlisted booking: not pending. */
	q = q_pay(T0 + 12, w.booking.id, true, 1500, "eur");
	CHECK(sdo(st, &q, &r) == CORE_NOT_PENDING);
	CHECK(st_bk(st, w.booking.id).status == CORE_BOOKING_WAITLISTED);

	/* The right amount and currency: confirmed. */
	q = q_pay(T0 + 13, a.booking.id, true, 1500, "eur");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(r.booking.status == CORE_BOOKING_CONFIRMED);
	CHECK(r.booking.hold_expires_at == 0);
	CHECK(!r.has_promoted);
	CHECK(st_bk(st, a.booking.id).status == CORE_BOOKING_CONFIRMED);
	struct core_event_view v = st_ev(st, ev);
	CHECK(v.booked == 1 && v.held == 0 && v.waitlist_length == 1);
	/* Paid twice: not pending any more. */
	q = q_pay(T0 + 14, a.booking.id, true, 1500, "eur");
	CHECK(sdo(st, &q, &r) == CORE_NOT_PENDING);
	CHECK(st_bk(st, a.booking.id).status == CORE_BOOKING_CONFIRMED);
	q = q_pay(T0 + 14, ev << 24 | 50, true, 1500, "eur");
	CHECK(sdo(st, &q, &r) == CORE_NO_BOOKING);

	/* A failed payment releases the hold and promotes (with a hold). */
	a = st_book(st, T0, ev2, "a", CORE_PAY_AUTO);
	w = st_book(st, T0 + 1, ev2, "w", CORE_PAY_AUTO);
	q = q_pay(T0 + 20, a.booking.id, false, 1500, "eur");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(r.booking.id == a.booking.id);
	CHECK(r.booking.status == CORE_BOOKING_PAYMENT_FAILED);
	CHECK(r.has_promoted && r.count == 1);
	CHECK(r.promoted.id == w.booking.id);
	CHECK(r.promoted.status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(r.promoted.hold_expires_at == T0 + 20 + HOLD_MS);
	CHECK(st_bk(st, a.booking.id).status == CORE_BOOKING_PAYMENT_FAILED);
	CHECK(st_bk(st, w.booking.id).status == CORE_BOOKING_PENDING_PAYMENT);
	v = st_ev(st, ev2);
	CHECK(v.booked == 0 && v.held == 1 && v.waitlist_length == 0);
	core_state_free(st);
}

/* ==== capacity and event cancel ========================================= */

CHECK_TEST_FN(test_capacity_change)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 3, 5, 0, "");
	uint64_t id[7];
	struct core_resp r;
	struct core_req q;

	st_book_each(st, ev, "c", 7, id);
	/* Below what is taken: refused, nothing changes. */
	q = q_patch(T0 + 10, ev, 2, false);
	CHECK(sdo(st, &q, &r) == CORE_CAPACITY_BELOW_TAKEN);
	CHECK(st_ev(st, ev).capacity == 3);
	q = q_patch(T0 + 10, ev, 0, false);
	CHECK(sdo(st, &q, &r) == CORE_CAPACITY_BELOW_TAKEN);
	/* Exactly what is taken: fine, nobody promoted. */
	q = q_patch(T0 + 11, ev, 3, false);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(!r.has_promoted && r.count == 0);
	/* Two more seats: the first two waitlisted, in order. */
	q = q_patch(T0 + 12, ev, 5, false);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(r.count == 2);
	/* A patch answers with the event as it leaves it. */
	CHECK(r.event.capacity == 5 && r.event.booked == 5 &&
	      r.event.waitlist_length == 2);
	CHECK(st_bk(st, id[3]).status == CORE_BOOKING_CONFIRMED);
	CHECK(st_bk(st, id[4]).status == CORE_BOOKING_CONFIRMED);
	CHECK(st_bk(st, id[5]).position == 1);
	CHECK(st_bk(st, id[6]).position == 2);
	struct core_event_view v = st_ev(st, ev);
	CHECK(v.capacity == 5 && v.booked == 5 && v.waitlist_length == 2);
	/* More seats than waiting: all promoted, the rest stays free. */
	q = q_patch(T0 + 13, ev, 10, false);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(r.count == 2 && r.event.waitlist_length == 0);
	v = st_ev(st, ev);
	CHECK(v.capacity == 10 && v.booked == 7 && v.waitlist_length == 0);
	q = q_patch(T0 + 14, 424242, 5, false);
	CHECK(sdo(st, &q, &r) == CORE_NO_EVENT);
	q = q_patch(T0 + 14, ev, 2000000, false);
	CHECK(sdo(st, &q, &r) == CORE_INVALID);

	/* Holds count as taken. */
	uint64_t pev = st_event(st, 2, 0, 1500, "eur");
	CHECK(st_book(st, T0, pev, "h", CORE_PAY_AUTO).booking.status ==
	      CORE_BOOKING_PENDING_PAYMENT);
	CHECK(st_book(st, T0, pev, "k", CORE_PAY_NONE).booking.status ==
	      CORE_BOOKING_CONFIRMED);
	q = q_patch(T0 + 15, pev, 1, false);
	CHECK(sdo(st, &q, &r) == CORE_CAPACITY_BELOW_TAKEN);
	q = q_patch(T0 + 15, pev, 2, false);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	core_state_free(st);
}

CHECK_TEST_FN(test_event_cancel_cancels_bookings)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 2, 2, 1500, "eur");
	struct core_resp b[4], r;
	struct core_req q;

	b[0] = st_book(st, T0, ev, "paid", CORE_PAY_NONE);
	b[1] = st_book(st, T0, ev, "held", CORE_PAY_AUTO);
	b[2] = st_book(st, T0, ev, "wait1", CORE_PAY_AUTO);
	b[3] = st_book(st, T0, ev, "wait2", CORE_PAY_AUTO);
	CHECK(b[0].booking.status == CORE_BOOKING_CONFIRMED);
	CHECK(b[1].booking.status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(b[2].booking.status == CORE_BOOKING_WAITLISTED);
	CHECK(b[3].booking.status == CORE_BOOKING_WAITLISTED);

	q = q_patch(T0 + 1, ev, -1, true);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(!r.has_promoted);
	struct core_event_view v = st_ev(st, ev);
	CHECK(v.status == CORE_EVENT_CANCELLED);
	CHECK(v.booked == 0 && v.held == 0 && v.waitlist_length == 0);
	for (int i = 0; i < 4; i++) {
		struct core_booking_view bv = st_bk(st, b[i].booking.id);
		CHECK(bv.status == CORE_BOOKING_CANCELLED);
		CHECK(bv.position == 0 && bv.hold_expires_at == 0);
	}
	/* Afterwards: no booking, no capacity change, nothing to cancel or pay. */
	CHECK(st_book(st, T0 + 2, ev, "new", CORE_PAY_AUTO).code ==
	      CORE_NOT_BOOKABLE);
	CHECK(st_book(st, T0 + 2, ev, "paid", CORE_PAY_NONE).code ==
	      CORE_NOT_BOOKABLE);
	q = q_patch(T0 + 2, ev, 10, false);
	CHECK(sdo(st, &q, &r) == CORE_NOT_BOOKABLE);
	q = q_cancel(T0 + 2, b[0].booking.id);
	CHECK(sdo(st, &q, &r) == CORE_NOT_ACTIVE);
	q = q_pay(T0 + 2, b[1].booking.id, true, 1500, "eur");
	CHECK(sdo(st, &q, &r) == CORE_NOT_PENDING);
	v = st_ev(st, ev);
	CHECK(v.booked == 0 && v.held == 0 && v.capacity == 2);
	core_state_free(st);
}

int main(int argc, char **argv)
{
	return core_test_main("core_booking", argc, argv);
}
