/*
 * test_core_pay.c: the payments records and decisions (docs/core.md
 * "Payments"): PAY_INTENT and REFUND records and PAYMENT's version 2
 * encoded and decoded (a version 1 PAYMENT still reads), the payments
 * sender's outcomes (CORE_PAY_KIND_INTENT, CORE_PAY_KIND_REFUND) decided and
 * applied, a refund due on a paid booking's cancel before the org's cut-off
 * (none inside it, none for a desk payment), a refund due on a payment after
 * the hold ended (once per intent), a refund due for every paid booking of
 * an event the studio cancels (by a patch or a series end), whatever the
 * cut-off, Stripe's refund outcomes (pending once, then done or failed with
 * its id), and the state's payment facts surviving
 * a replay of the entries and a snapshot's records.
 *
 * Helpers, times and main: core_test.h.
 */
#include "core_test.h"
#include "entry.h"
#include "state.h" /* core__state_dump, core__state_expire_one */

/* ==== records ============================================================== */

static void enc(const struct core_rec *r, struct wbuf *w, uint8_t *buf,
		size_t cap)
{
	*w = (struct wbuf){ .data = buf, .capacity = cap };
	rec_encode(w, r);
	CHECK(!w->overflow);
}

CHECK_TEST_FN(test_pay_records_codec)
{
	uint8_t buf[1024];
	struct wbuf w;
	struct core_rec r, out;
	size_t pos;

	memset(&r, 0, sizeof(r));
	r.type = CORE_REC_PAY_INTENT;
	r.at = T0;
	r.u.intent.booking_id = UINT64_C(5) << 24 | 3;
	strcpy(r.u.intent.intent_id, "pi_3MtwBwLkdIwHu7ix28a3tqPa");
	enc(&r, &w, buf, sizeof(buf));
	CHECK(buf[0] == 17 && buf[1] == 1); /* type, version */
	pos = 0;
	CHECK(core_entry_next(buf, w.size, &pos, &out) == 1 && pos == w.size);
	CHECK(memcmp(&out, &r, sizeof(r)) == 0);

	memset(&r, 0, sizeof(r));
	r.type = CORE_REC_REFUND;
	r.at = T0 + 1;
	r.u.refund.booking_id = UINT64_C(5) << 24 | 3;
	r.u.refund.amount_cents = 1500;
	strcpy(r.u.refund.currency, "eur");
	strcpy(r.u.refund.intent_id, "pi_1");
	strcpy(r.u.refund.ref, "re_1");
	r.u.refund.reason = CORE_REFUND_LATE_PAYMENT;
	r.u.refund.state = CORE_REFUND_DONE;
	enc(&r, &w, buf, sizeof(buf));
	CHECK(buf[0] == 18 && buf[1] == 1);
	pos = 0;
	CHECK(core_entry_next(buf, w.size, &pos, &out) == 1);
	CHECK(memcmp(&out, &r, sizeof(r)) == 0);
	CHECK(core_rec_event_id(&out) == 5);
	CHECK(strcmp(core_rec_type_name(CORE_REC_REFUND), "refund") == 0);
	CHECK(strcmp(core_rec_type_name(CORE_REC_PAY_INTENT), "pay_intent") ==
	      0);
	/* Cut anywhere: refused, never read past. */
	for (size_t n = 0; n < w.size; n++) {
		pos = 0;
		CHECK(core_entry_next(buf, n, &pos, &out) == (n ? -EINVAL : 0));
	}

	/* PAYMENT is version 2 (Stripe's ids at its end) ... */
	memset(&r, 0, sizeof(r));
	r.type = CORE_REC_PAYMENT;
	r.at = T0 + 2;
	r.u.payment.booking_id = UINT64_C(5) << 24 | 3;
	r.u.payment.amount_cents = 1500;
	r.u.payment.payment_ref = 77;
	strcpy(r.u.payment.currency, "eur");
	r.u.payment.succeeded = true;
	r.u.payment.code = CORE_OK;
	strcpy(r.u.payment.ref, "evt_1");
	strcpy(r.u.payment.intent_id, "pi_1");
	enc(&r, &w, buf, sizeof(buf));
	CHECK(buf[0] == CORE_REC_PAYMENT && buf[1] == 2);
	pos = 0;
	CHECK(core_entry_next(buf, w.size, &pos, &out) == 1);
	CHECK(memcmp(&out, &r, sizeof(r)) == 0);
	/* ... and a version 1 one (a log written before) still reads: the
	 * same bytes less the two strings (1 + 5 and 1 + 4 bytes). */
	size_t v1 = w.size - (1 + 5) - (1 + 4);
	uint16_t body = (uint16_t)(v1 - 4);
	buf[1] = 1;
	memcpy(buf + 2, &body, 2);
	pos = 0;
	CHECK(core_entry_next(buf, v1, &pos, &out) == 1 && pos == v1);
	CHECK(out.u.payment.ref[0] == '\0' && out.u.payment.intent_id[0] == 0);
	CHECK(out.u.payment.payment_ref == 77 && out.u.payment.succeeded);
	/* Version 2 without its strings, version 3: refused. */
	buf[1] = 2;
	pos = 0;
	CHECK(core_entry_next(buf, v1, &pos, &out) == -EINVAL);
	buf[1] = 3;
	CHECK(core_entry_next(buf, v1, &pos, &out) == -EINVAL && pos == 0);
	/* Other records stay version 1: a 2 is refused. */
	memset(&r, 0, sizeof(r));
	r.type = CORE_REC_PAY_INTENT;
	enc(&r, &w, buf, sizeof(buf));
	buf[1] = 2;
	CHECK(core_entry_next(buf, w.size, &pos, &out) == -EINVAL);
}

/* ==== decisions ============================================================= */

static struct core_req q_kind(core_time now, uint64_t booking_id, uint8_t kind,
			      const char *ref)
{
	struct core_req q = q_new(CORE_OP_PAY, now);

	q.booking_id = booking_id;
	q.u.pay.kind = kind;
	snprintf(q.u.pay.ref, sizeof(q.u.pay.ref), "%s", ref);
	return q;
}

/* Stripe's webhook: payment_intent.succeeded for intent pi. */
static struct core_req q_paid(core_time now, uint64_t booking_id,
			      const char *evt, const char *pi)
{
	struct core_req q = q_pay(now, booking_id, true, 1500, "eur");

	snprintf(q.u.pay.ref, sizeof(q.u.pay.ref), "%s", evt);
	snprintf(q.u.pay.intent_id, sizeof(q.u.pay.intent_id), "%s", pi);
	return q;
}

/* Decides q on st: its code, its entry's records of `type` into out (how
 * many in *n), applied when it made one. */
static enum core_code decide_see(core_state *st, const struct core_req *q,
				 struct core_resp *r, uint8_t type,
				 struct core_rec *out, int *n)
{
	const void *entry = NULL;
	size_t size = 0, pos = 0;
	enum core_code code = core_state_decide(st, q, r, &entry, &size);
	struct core_rec rec;

	*n = 0;
	while (size && core_entry_next(entry, size, &pos, &rec) > 0)
		if (rec.type == type && (*n)++ == 0)
			*out = rec;
	if (size) {
		if (g_log_on)
			elog_add(entry, size);
		CHECK(core_state_apply(st, entry, size) == 0);
	}
	return code;
}

CHECK_TEST_FN(test_pay_intent_outcomes)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 1, 2, 1500, "eur");
	struct core_resp a = st_book(st, T0, ev, "a", CORE_PAY_AUTO);
	struct core_resp w = st_book(st, T0 + 1, ev, "w", CORE_PAY_AUTO);
	struct core_rec rec;
	struct core_resp r;
	struct core_req q;
	int n;

	CHECK(a.booking.status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(w.booking.status == CORE_BOOKING_WAITLISTED);
	/* The intent made: logged once; the same again records nothing. */
	q = q_kind(T0 + 2, a.booking.id, CORE_PAY_KIND_INTENT, "pi_A");
	CHECK(decide_see(st, &q, &r, CORE_REC_PAY_INTENT, &rec, &n) == CORE_OK);
	CHECK(n == 1 && strcmp(rec.u.intent.intent_id, "pi_A") == 0);
	CHECK(st_bk(st, a.booking.id).status == CORE_BOOKING_PENDING_PAYMENT);
	CHECK(sdo(st, &q, &r) == CORE_NOT_ACTIVE);
	/* Bytes that are no Stripe id: refused. */
	q = q_kind(T0 + 2, a.booking.id, CORE_PAY_KIND_INTENT, "pi A");
	CHECK(sdo(st, &q, &r) == CORE_INVALID);
	q = q_kind(T0 + 2, a.booking.id, 9, "pi_A");
	CHECK(sdo(st, &q, &r) == CORE_INVALID);
	/* A refund outcome with no refund due: nothing. */
	q = q_kind(T0 + 2, a.booking.id, CORE_PAY_KIND_REFUND, "re_X");
	CHECK(sdo(st, &q, &r) == CORE_NOT_ACTIVE);

	/* The intent could not be made: the hold is released (payment_failed)
	 * and its seat goes to the waitlist. */
	q = q_kind(T0 + 3, a.booking.id, CORE_PAY_KIND_INTENT, "");
	CHECK(decide_see(st, &q, &r, CORE_REC_PAY_INTENT, &rec, &n) == CORE_OK);
	CHECK(n == 1 && rec.u.intent.intent_id[0] == '\0');
	CHECK(r.booking.status == CORE_BOOKING_PAYMENT_FAILED);
	CHECK(r.has_promoted && r.promoted.id == w.booking.id);
	CHECK(st_bk(st, a.booking.id).status == CORE_BOOKING_PAYMENT_FAILED);
	CHECK(st_bk(st, w.booking.id).status == CORE_BOOKING_PENDING_PAYMENT);
	/* Once the hold is gone, a failure records nothing. */
	CHECK(sdo(st, &q, &r) == CORE_NOT_ACTIVE);
	core_state_free(st);
}

CHECK_TEST_FN(test_refund_on_cancel)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 5, 0, 1500, "eur");
	struct core_resp a = st_book(st, T0, ev, "a", CORE_PAY_AUTO);
	struct core_resp b = st_book(st, T0, ev, "b", CORE_PAY_AUTO);
	struct core_resp d = st_book(st, T0, ev, "desk", CORE_PAY_NONE);
	struct core_resp h = st_book(st, T0, ev, "held", CORE_PAY_AUTO);
	struct core_rec rec;
	struct core_resp r;
	struct core_req q;
	int n;

	/* a and b pay through intents the sender made */
	q = q_kind(T0 + 1, a.booking.id, CORE_PAY_KIND_INTENT, "pi_A");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_paid(T0 + 2, a.booking.id, "evt_A", "pi_A");
	CHECK(decide_see(st, &q, &r, CORE_REC_PAYMENT, &rec, &n) == CORE_OK);
	CHECK(n == 1 && strcmp(rec.u.payment.ref, "evt_A") == 0 &&
	      strcmp(rec.u.payment.intent_id, "pi_A") == 0);
	q = q_paid(T0 + 2, b.booking.id, "evt_B", "pi_B");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(st_bk(st, b.booking.id).status == CORE_BOOKING_CONFIRMED);

	/* a cancels well before the 12 h cut-off: a refund due of the
	 * intent, in the cancel's own entry */
	q = q_cancel(EV_START - 12 * HOUR_MS - 1, a.booking.id);
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) == CORE_OK);
	CHECK(r.booking.status == CORE_BOOKING_CANCELLED);
	CHECK(n == 1);
	CHECK(rec.u.refund.booking_id == a.booking.id);
	CHECK(rec.u.refund.amount_cents == 1500);
	CHECK(strcmp(rec.u.refund.currency, "eur") == 0);
	CHECK(strcmp(rec.u.refund.intent_id, "pi_A") == 0);
	CHECK(rec.u.refund.ref[0] == '\0');
	CHECK(rec.u.refund.reason == CORE_REFUND_CANCEL);
	CHECK(rec.u.refund.state == CORE_REFUND_DUE);
	/* b cancels inside it: cancelled, no refund */
	q = q_cancel(EV_START - 12 * HOUR_MS, b.booking.id);
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) == CORE_OK);
	CHECK(n == 0);
	/* a desk payment and an unpaid hold: nothing to refund */
	q = q_cancel(T0 + 3, d.booking.id);
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) == CORE_OK);
	CHECK(n == 0);
	q = q_cancel(T0 + 3, h.booking.id);
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) == CORE_OK);
	CHECK(n == 0);

	/* The sender's outcome: done with Stripe's id, once. */
	q = q_kind(T0 + 4, a.booking.id, CORE_PAY_KIND_REFUND, "re_A");
	q.u.pay.amount_cents = 1500;
	strcpy(q.u.pay.currency, "eur");
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) == CORE_OK);
	CHECK(n == 1 && rec.u.refund.state == CORE_REFUND_DONE);
	CHECK(strcmp(rec.u.refund.ref, "re_A") == 0);
	CHECK(strcmp(rec.u.refund.intent_id, "pi_A") == 0);
	CHECK(rec.u.refund.reason == CORE_REFUND_CANCEL);
	CHECK(sdo(st, &q, &r) == CORE_NOT_ACTIVE);
	core_state_free(st);
}

CHECK_TEST_FN(test_refund_late_payment)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 1, 0, 1500, "eur");
	struct core_resp a = st_book(st, T0, ev, "a", CORE_PAY_AUTO);
	const void *entry;
	struct core_rec rec;
	struct core_resp r;
	struct core_req q;
	size_t size;
	int n;

	q = q_kind(T0 + 1, a.booking.id, CORE_PAY_KIND_INTENT, "pi_L");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	/* The hold runs out; another takes the seat. */
	CHECK(core__state_expire_one(st, T0 + HOLD_MS, &entry, &size));
	CHECK(core_state_apply(st, entry, size) == 0);
	CHECK(st_bk(st, a.booking.id).status == CORE_BOOKING_EXPIRED);
	CHECK(st_book(st, T0 + HOLD_MS + 1, ev, "b", CORE_PAY_NONE).code ==
	      CORE_OK);
	/* Paid late: recorded (not_pending) and refunded in the same entry */
	q = q_paid(T0 + HOLD_MS + 2, a.booking.id, "evt_L", "pi_L");
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) ==
	      CORE_NOT_PENDING);
	CHECK(n == 1 && rec.u.refund.reason == CORE_REFUND_LATE_PAYMENT);
	CHECK(rec.u.refund.state == CORE_REFUND_DUE);
	CHECK(strcmp(rec.u.refund.intent_id, "pi_L") == 0);
	CHECK(rec.u.refund.amount_cents == 1500);
	CHECK(st_bk(st, a.booking.id).status == CORE_BOOKING_EXPIRED);
	/* The same intent's payment again (another event id): no second
	 * refund */
	q = q_paid(T0 + HOLD_MS + 3, a.booking.id, "evt_L2", "pi_L");
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) ==
	      CORE_NOT_PENDING);
	CHECK(n == 0);
	/* Without the intent's id nothing can be refunded: recorded only */
	struct core_resp c =
		st_book(st, T0 + 5, st_event(st, 1, 0, 1500, "eur"), "c",
			CORE_PAY_AUTO);
	q = q_cancel(T0 + 6, c.booking.id);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_paid(T0 + 7, c.booking.id, "evt_C", "");
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) ==
	      CORE_NOT_PENDING);
	CHECK(n == 0);
	/* Stripe refused for good: the refund failed, for a person. */
	q = q_kind(T0 + HOLD_MS + 9, a.booking.id, CORE_PAY_KIND_REFUND, "");
	q.u.pay.amount_cents = 1500;
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) == CORE_OK);
	CHECK(n == 1 && rec.u.refund.state == CORE_REFUND_FAILED);
	CHECK(strcmp(rec.u.refund.currency, "eur") == 0); /* the event's */
	core_state_free(st);
}

CHECK_TEST_FN(test_refund_on_event_cancel)
{
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 5, 2, 1500, "eur");
	struct core_resp a = st_book(st, T0, ev, "a", CORE_PAY_AUTO);
	struct core_resp b = st_book(st, T0, ev, "b", CORE_PAY_AUTO);
	struct core_resp d = st_book(st, T0, ev, "desk", CORE_PAY_NONE);
	struct core_resp h = st_book(st, T0, ev, "held", CORE_PAY_AUTO);
	struct core_resp g = st_book(st, T0, ev, "gone", CORE_PAY_AUTO);
	const void *entry;
	struct core_rec rec;
	struct core_resp r;
	struct core_req q;
	size_t size, pos = 0;
	int n = 0;

	/* a and b paid through intents; h holds with an intent, unpaid; g
	 * paid, cancelled early (a refund due already) */
	q = q_kind(T0 + 1, a.booking.id, CORE_PAY_KIND_INTENT, "pi_A");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_paid(T0 + 2, a.booking.id, "evt_A", "pi_A");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_paid(T0 + 2, b.booking.id, "evt_B", "pi_B");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_kind(T0 + 1, h.booking.id, CORE_PAY_KIND_INTENT, "pi_H");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_paid(T0 + 2, g.booking.id, "evt_G", "pi_G");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_cancel(T0 + 3, g.booking.id);
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) == CORE_OK);
	CHECK(n == 1 && rec.u.refund.reason == CORE_REFUND_CANCEL);
	CHECK(st_bk(st, d.booking.id).status == CORE_BOOKING_CONFIRMED);

	/* The studio cancels the event an hour before it, well inside the
	 * org's 12 h cut-off: a and b are refunded in full all the same, in
	 * the cancel's own entry; the desk payment, the unpaid hold and g
	 * (refunded already) are not. */
	q = q_patch(EV_START - HOUR_MS, ev, -1, true);
	CHECK(core_state_decide(st, &q, &r, &entry, &size) == CORE_OK);
	CHECK(size > 0);
	n = 0;
	while (core_entry_next(entry, size, &pos, &rec) > 0) {
		if (rec.type != CORE_REC_REFUND)
			continue;
		CHECK(rec.u.refund.booking_id == a.booking.id ||
		      rec.u.refund.booking_id == b.booking.id);
		CHECK(strcmp(rec.u.refund.intent_id,
			     rec.u.refund.booking_id == a.booking.id
				     ? "pi_A"
				     : "pi_B") == 0);
		CHECK(rec.u.refund.amount_cents == 1500);
		CHECK(strcmp(rec.u.refund.currency, "eur") == 0);
		CHECK(rec.u.refund.ref[0] == '\0');
		CHECK(rec.u.refund.reason == CORE_REFUND_EVENT_CANCELLED);
		CHECK(rec.u.refund.state == CORE_REFUND_DUE);
		n++;
	}
	CHECK(n == 2);
	CHECK(core_state_apply(st, entry, size) == 0);
	CHECK(st_bk(st, a.booking.id).status == CORE_BOOKING_CANCELLED);
	CHECK(st_bk(st, h.booking.id).status == CORE_BOOKING_CANCELLED);

	/* The sender's outcome for a: done, once; b's refund still due. */
	q = q_kind(EV_START, a.booking.id, CORE_PAY_KIND_REFUND, "re_A");
	q.u.pay.amount_cents = 1500;
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) == CORE_OK);
	CHECK(n == 1 && rec.u.refund.state == CORE_REFUND_DONE &&
	      rec.u.refund.reason == CORE_REFUND_EVENT_CANCELLED);
	CHECK(sdo(st, &q, &r) == CORE_NOT_ACTIVE);
	q = q_kind(EV_START, b.booking.id, CORE_PAY_KIND_REFUND, "re_B");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	/* Cancelling the cancelled event again refunds nothing more. */
	q = q_patch(EV_START - HOUR_MS + 1, ev, -1, true);
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) == CORE_OK);
	CHECK(n == 0);
	core_state_free(st);
}

CHECK_TEST_FN(test_refund_on_event_cancel_limit)
{
	static uint64_t ids[600];
	core_state *st = st_setup();
	uint64_t ev = st_event(st, 600, 0, 1500, "eur");
	struct core_resp r;
	struct core_req q;
	int n;

	/* 600 paid bookings: their NOTIFY and REFUND records would not fit
	 * one entry: refused whole, nothing changed */
	st_book_each(st, ev, "p", 600, ids);
	for (int i = 0; i < 600; i++) {
		char pi[16];
		snprintf(pi, sizeof(pi), "pi_%d", i);
		q = q_paid(T0 + 700, ids[i], "", pi);
		CHECK(sdo(st, &q, &r) == CORE_OK);
	}
	q = q_patch(EV_START - HOUR_MS, ev, -1, true);
	CHECK(sdo(st, &q, &r) == CORE_LIMIT);
	CHECK(r.id == CORE_LIMIT_CANCEL_NOTIFY);
	CHECK(st_ev(st, ev).status == CORE_EVENT_SCHEDULED);
	/* 200 cancel inside the cut-off (no refund): 400 fit */
	for (int i = 0; i < 200; i++) {
		q = q_cancel(EV_START - HOUR_MS, ids[i]);
		CHECK(sdo(st, &q, &r) == CORE_OK);
	}
	struct core_rec rec;
	q = q_patch(EV_START - HOUR_MS, ev, -1, true);
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) == CORE_OK);
	CHECK(n == 400);
	core_state_free(st);
}

/* A REFUND record due for `reason`. */
static bool refund_due(const struct core_rec *r, uint32_t reason)
{
	return r->type == CORE_REC_REFUND && r->u.refund.reason == reason &&
	       r->u.refund.state == CORE_REFUND_DUE;
}

CHECK_TEST_FN(test_refund_on_series_end)
{
	struct core_series_spec spec;
	struct core_config cfg;
	struct core_resp r, a, b;
	struct core_req q;
	struct rt rt;
	uint64_t wed, thu;

	cfg_small(&cfg, 2);
	rt_open_logged(&rt, &cfg);
	/* Wednesday 4th and Thursday 5th, 18:00 Berlin, 15 eur */
	spec_init(&spec, 1, 1, 1, "Europe/Berlin", WED | THU, 18 * 60,
		  D(2026, 3, 4), D(2026, 3, 5));
	spec.price_cents = 1500;
	strcpy(spec.currency, "eur");
	rt_series(rt.p, T0, &spec);
	wed = 1;
	thu = 2;
	q = q_book(T0, wed, "a", CORE_PAY_AUTO);
	a = rcall(rt.p, &q);
	q = q_book(T0, thu, "b", CORE_PAY_AUTO);
	b = rcall(rt.p, &q);
	CHECK(a.code == CORE_OK && b.code == CORE_OK);
	q = q_paid(T0 + 1, a.booking.id, "evt_A", "pi_A");
	CHECK(rcall(rt.p, &q).code == CORE_OK);
	q = q_paid(T0 + 1, b.booking.id, "evt_B", "pi_B");
	CHECK(rcall(rt.p, &q).code == CORE_OK);

	/* Ended on Wednesday, on Thursday 17:00 (inside the cut-off):
	 * Thursday's class cancelled, b told and refunded in full. */
	q = q_new(CORE_OP_SERIES_PATCH, utc_ms(2026, 3, 5, 16, 0));
	q.u.spatch.series_id = 1;
	q.u.spatch.capacity = q.u.spatch.waitlist_capacity = -1;
	q.u.spatch.price_cents = -1;
	q.u.spatch.start_minute = -1;
	q.u.spatch.last_date = D(2026, 3, 4);
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK && r.series.cancelled == 1);
	CHECK(elog_count(refund_due, CORE_REFUND_EVENT_CANCELLED) == 1);
	q = q_kind(utc_ms(2026, 3, 5, 16, 1), b.booking.id,
		   CORE_PAY_KIND_REFUND, "re_B");
	CHECK(rcall(rt.p, &q).code == CORE_OK);
	q = q_kind(utc_ms(2026, 3, 5, 16, 1), a.booking.id,
		   CORE_PAY_KIND_REFUND, "re_A");
	CHECK(rcall(rt.p, &q).code == CORE_NOT_ACTIVE); /* none due */
	core_close(rt.c);

	/* The log replays into one state. */
	{
		core_state *st;
		cfg.shard_count = 1;
		cfg.log = NULL;
		st = core_state_new(&cfg);
		CHECK(elog_replay(st) == 0);
		CHECK(st_ev(st, thu).status == CORE_EVENT_CANCELLED);
		CHECK(st_bk(st, b.booking.id).status == CORE_BOOKING_CANCELLED);
		core_state_free(st);
	}
	elog_reset();
}

/* ==== replay and snapshot ===================================================== */

/* The records of a dump of `type`, counted. */
static int dump_count(const struct dump *d, uint8_t type)
{
	struct core_rec r;
	size_t pos = 0;
	int n = 0;

	while (core_entry_next(d->buf, d->w.size, &pos, &r) > 0)
		n += r.type == type;
	return n;
}

CHECK_TEST_FN(test_pay_replay_and_snapshot)
{
	static struct dump da, db, dc;
	core_state *st, *re, *snap;
	uint64_t ev;
	struct core_resp a, b, r;
	struct core_req q;

	elog_reset();
	g_log_on = true;
	st = st_setup();
	ev = st_event(st, 3, 0, 1500, "eur");
	a = st_book(st, T0, ev, "a", CORE_PAY_AUTO);
	b = st_book(st, T0, ev, "b", CORE_PAY_AUTO);
	st_book(st, T0, ev, "c", CORE_PAY_AUTO); /* a hold, no intent */
	q = q_kind(T0 + 1, a.booking.id, CORE_PAY_KIND_INTENT, "pi_A");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_paid(T0 + 2, a.booking.id, "evt_A", "pi_A");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_cancel(T0 + 3, a.booking.id); /* refund due */
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_kind(T0 + 1, b.booking.id, CORE_PAY_KIND_INTENT, "pi_B");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	g_log_on = false;

	/* Replayed entries give the same state, payment facts included. */
	re = st_new();
	CHECK(elog_replay(re) == 0);
	dump(st, &da);
	dump(re, &db);
	CHECK(da.w.size == db.w.size && memcmp(da.buf, db.buf, da.w.size) == 0);
	CHECK(dump_count(&da, CORE_REC_PAY_INTENT) == 2);
	CHECK(dump_count(&da, CORE_REC_REFUND) == 1);
	/* The snapshot's records rebuild it: the refund still due there
	 * (its outcome applies), the intent still known (a second, equal
	 * one records nothing). */
	snap = st_new();
	CHECK(core_state_apply(snap, da.buf, da.w.size) == 0);
	dump(snap, &dc);
	CHECK(dc.w.size == da.w.size && memcmp(dc.buf, da.buf, da.w.size) == 0);
	q = q_kind(T0 + 4, b.booking.id, CORE_PAY_KIND_INTENT, "pi_B");
	CHECK(sdo(snap, &q, &r) == CORE_NOT_ACTIVE);
	q = q_kind(T0 + 4, a.booking.id, CORE_PAY_KIND_REFUND, "re_A");
	CHECK(sdo(snap, &q, &r) == CORE_OK);
	CHECK(sdo(snap, &q, &r) == CORE_NOT_ACTIVE);
	core_state_free(snap);
	core_state_free(re);
	core_state_free(st);
}

CHECK_TEST_FN(test_refund_outcomes)
{
	static struct dump da;
	core_state *st = st_setup(), *snap;
	uint64_t ev = st_event(st, 5, 0, 1500, "eur");
	struct core_resp a = st_book(st, T0, ev, "a", CORE_PAY_AUTO);
	struct core_resp b = st_book(st, T0, ev, "b", CORE_PAY_AUTO);
	struct core_rec rec;
	struct core_resp r;
	struct core_req q;
	int n;

	q = q_paid(T0 + 1, a.booking.id, "evt_A", "pi_A");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_paid(T0 + 1, b.booking.id, "evt_B", "pi_B");
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_cancel(T0 + 2, a.booking.id);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	q = q_cancel(T0 + 2, b.booking.id);
	CHECK(sdo(st, &q, &r) == CORE_OK);

	/* Stripe's refund is pending: logged once with its id */
	q = q_kind(T0 + 3, a.booking.id, CORE_PAY_KIND_REFUND, "re_A");
	q.u.pay.refund_state = CORE_REFUND_PENDING;
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) == CORE_OK);
	CHECK(n == 1 && rec.u.refund.state == CORE_REFUND_PENDING);
	CHECK(strcmp(rec.u.refund.ref, "re_A") == 0);
	CHECK(strcmp(rec.u.refund.intent_id, "pi_A") == 0);
	CHECK(rec.u.refund.reason == CORE_REFUND_CANCEL);
	CHECK(sdo(st, &q, &r) == CORE_NOT_ACTIVE); /* pending already */
	/* no id, an unknown state: refused */
	q = q_kind(T0 + 3, a.booking.id, CORE_PAY_KIND_REFUND, "");
	q.u.pay.refund_state = CORE_REFUND_PENDING;
	CHECK(sdo(st, &q, &r) == CORE_INVALID);
	q.u.pay.refund_state = CORE_REFUND_DONE;
	CHECK(sdo(st, &q, &r) == CORE_INVALID);
	q.u.pay.refund_state = CORE_REFUND_DUE;
	CHECK(sdo(st, &q, &r) == CORE_INVALID);
	q.u.pay.refund_state = 9;
	CHECK(sdo(st, &q, &r) == CORE_INVALID);

	/* A snapshot keeps it pending: its final outcome still applies */
	dump(st, &da);
	snap = st_new();
	CHECK(core_state_apply(snap, da.buf, da.w.size) == 0);
	q = q_kind(T0 + 4, a.booking.id, CORE_PAY_KIND_REFUND, "re_A");
	q.u.pay.refund_state = CORE_REFUND_DONE;
	CHECK(decide_see(snap, &q, &r, CORE_REC_REFUND, &rec, &n) == CORE_OK);
	CHECK(n == 1 && rec.u.refund.state == CORE_REFUND_DONE);
	CHECK(sdo(snap, &q, &r) == CORE_NOT_ACTIVE);
	core_state_free(snap);

	/* final: succeeded, once; b's failed at Stripe, with its id */
	q = q_kind(T0 + 4, a.booking.id, CORE_PAY_KIND_REFUND, "re_A");
	q.u.pay.refund_state = CORE_REFUND_DONE;
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) == CORE_OK);
	CHECK(n == 1 && rec.u.refund.state == CORE_REFUND_DONE);
	q.u.pay.refund_state = CORE_REFUND_PENDING;
	CHECK(sdo(st, &q, &r) == CORE_NOT_ACTIVE);
	q = q_kind(T0 + 4, b.booking.id, CORE_PAY_KIND_REFUND, "re_B");
	q.u.pay.refund_state = CORE_REFUND_FAILED;
	CHECK(decide_see(st, &q, &r, CORE_REC_REFUND, &rec, &n) == CORE_OK);
	CHECK(n == 1 && rec.u.refund.state == CORE_REFUND_FAILED);
	CHECK(strcmp(rec.u.refund.ref, "re_B") == 0);
	CHECK(sdo(st, &q, &r) == CORE_NOT_ACTIVE);
	core_state_free(st);
}

int main(int argc, char **argv)
{
	return core_test_main("core_pay", argc, argv);
}
