/*
 * test_core_limits.c: sizes and limits: tables that grow past their first
 * size and lose nothing, the configured limits, the idempotency table's
 * ceiling, and archiving past events (standalone and on the runtime).
 *
 * Helpers, times and main: core_test.h.
 */
#include "core_test.h"

/* ==== sizes and limits ================================================== */

/* Tables start small (1024 slots) and grow: 3000 events with a booking
 * each by 3000 customers, far past the first size, all there; replaying
 * the entries into a fresh state gives the same events and bookings.
 * (Issue 13: tables were allocated at their maximum; now they double, and
 * growth must lose nothing.) */
CHECK_TEST_FN(test_tables_grow)
{
	struct core_config cfg;
	struct core_series_spec spec;
	struct core_resp r;
	core_state *st, *re;
	struct core_stats stats;
	uint32_t n;

	cfg_small(&cfg, 1);
	cfg.event_count_max = 5000;
	cfg.booking_count_max = 5000;
	cfg.customer_count_max = 5000;
	cfg.horizon_days = 3000;
	elog_reset();
	g_log_on = true;
	st = core_state_new(&cfg);
	CHECK(st != NULL);
	if (!st)
		return;
	core_state_stats(st, &stats);
	/* Empty: a few MB at most, whatever the ceilings. */
	CHECK(stats.bytes_allocated < (4u << 20));
	st_catalog(st, "UTC");
	spec_init(&spec, 1, 1, 1, "UTC", EVERY_DAY, 20 * 60, D(2026, 3, 2),
		  NO_DATE);
	CHECK(st_series(st, T0, &spec, &r) == CORE_OK);
	n = st_generate(st, T0, r.id, NO_DATE);
	CHECK(n == 3001); /* today 20:00 .. today + 3000 days */
	CHECK(st_event_count(st) == n);
	for (uint64_t ev = 1; ev <= 3000; ev++) {
		char cust[24];
		snprintf(cust, sizeof(cust), "c%" PRIu64, ev);
		CHECK(st_book(st, T0, ev, cust, CORE_PAY_NONE).code == CORE_OK);
	}
	core_state_stats(st, &stats);
	CHECK(stats.booking_count == 3000);
	CHECK(stats.customer_count == 3000);
	CHECK(st_ev(st, 3000).booked == 1);

	re = core_state_new(&cfg);
	CHECK(re != NULL);
	if (re) {
		CHECK(elog_replay(re) == 0);
		for (uint64_t ev = 1; ev <= n; ev += 97) {
			struct core_event_view a = st_ev(st, ev),
					       b = st_ev(re, ev);
			CHECK(event_eq(&a, &b));
		}
		struct core_booking_view a = st_bk(st, 2999ull << 24 | 1);
		struct core_booking_view b = st_bk(re, 2999ull << 24 | 1);
		CHECK(view_eq(&a, &b));
		core_state_free(re);
	}
	g_log_on = false;
	elog_reset();
	core_state_free(st);
}

/* Ceilings refuse with CORE_LIMIT, naming the limit (resp.id, resp.count),
 * and make no entry: bookings and customers per shard, a generation chunk
 * on the standalone state, `until` past generate_max_days. */
CHECK_TEST_FN(test_limits_standalone)
{
	struct core_config cfg;
	struct core_series_spec spec;
	struct core_resp r;
	struct core_req q;
	core_state *st;
	char msg[160];

	cfg_small(&cfg, 1);
	cfg.booking_count_max = 4;
	cfg.customer_count_max = 2;
	cfg.event_count_max = 40;
	st = st_setup_with(&cfg);
	if (!st)
		return;
	spec_init(&spec, 1, 1, 1, "Europe/Berlin", EVERY_DAY, 18 * 60,
		  D(2026, 3, 2), NO_DATE);
	CHECK(st_series(st, T0, &spec, &r) == CORE_OK);
	/* 121 events wanted, 40 may be held: the chunk is refused. */
	q = q_generate(T0, 1, NO_DATE);
	CHECK(sdo(st, &q, &r) == CORE_LIMIT);
	CHECK(r.id == CORE_LIMIT_EVENTS && r.count == 40);
	CHECK(strstr(core_limit_message(&r, msg, sizeof(msg)),
		     "more than 40 events (max_events") != NULL);
	CHECK(st_event_count(st) == 0);
	/* until too far ahead: refused whatever the room. */
	q = q_generate(T0, 1, D(9999, 12, 31));
	CHECK(sdo(st, &q, &r) == CORE_LIMIT);
	CHECK(r.id == CORE_LIMIT_GENERATE_DAYS && r.count == 366);
	CHECK(strcmp(core_limit_message(&r, msg, sizeof(msg)),
		     "until is more than 366 days ahead (generate_max_days)") ==
	      0);
	/* 366 days ahead is allowed (nothing to make here: 30 days fit). */
	q = q_generate(T0, 1, D(2026, 3, 31));
	CHECK(sdo(st, &q, &r) == CORE_OK && r.count == 30);

	CHECK(st_book(st, T0, 1, "a", CORE_PAY_NONE).code == CORE_OK);
	CHECK(st_book(st, T0, 2, "a", CORE_PAY_NONE).code == CORE_OK);
	CHECK(st_book(st, T0, 1, "b", CORE_PAY_NONE).code == CORE_OK);
	/* The third customer: past max_customers (2). */
	r = st_book(st, T0, 3, "c", CORE_PAY_NONE);
	CHECK(r.code == CORE_LIMIT && r.id == CORE_LIMIT_CUSTOMERS &&
	      r.count == 2);
	CHECK(st_book(st, T0, 3, "a", CORE_PAY_NONE).code == CORE_OK);
	/* A known customer, but past max_bookings (4). */
	r = st_book(st, T0, 4, "a", CORE_PAY_NONE);
	CHECK(r.code == CORE_LIMIT && r.id == CORE_LIMIT_BOOKINGS &&
	      r.count == 4);
	CHECK(strstr(core_limit_message(&r, msg, sizeof(msg)),
		     "4 bookings (max_bookings") != NULL);
	CHECK(strcmp(core_code_name(CORE_LIMIT), "limit_exceeded") == 0);
	core_state_free(st);
}

/* Archiving: events that ended before now - days leave the state with their
 * bookings (any status), waitlists, customers left without a booking and
 * older idempotency keys; what is left is untouched; freed slots are used
 * again; replaying the log (archive included) gives the same state. */
CHECK_TEST_FN(test_archive)
{
	struct core_series_spec spec;
	struct core_resp r;
	struct core_req q;
	struct core_stats s0, s1;
	core_state *st, *re;
	core_time now = utc_ms(2026, 3, 8, 12, 0);
	uint64_t a1, b1, c2, a9, a6;

	elog_reset();
	g_log_on = true;
	st = st_setup();
	spec_init(&spec, 1, 1, 1, "Europe/Berlin", EVERY_DAY, 18 * 60,
		  D(2026, 3, 2), D(2026, 3, 11));
	spec.capacity = 1;
	spec.waitlist_capacity = 2;
	CHECK(st_series(st, T0, &spec, &r) == CORE_OK);
	CHECK(st_generate(st, T0, r.id, NO_DATE) == 10); /* ids 1..10 */
	q = q_book(T0, 1, "a", CORE_PAY_AUTO);
	with_key(&q, 1, 2, 3);
	CHECK(sdo(st, &q, &r) == CORE_OK);
	a1 = r.booking.id;
	b1 = st_book(st, T0, 1, "b", CORE_PAY_AUTO).booking.id;
	CHECK(st_bk(st, b1).status == CORE_BOOKING_WAITLISTED);
	c2 = st_book(st, T0, 2, "c", CORE_PAY_AUTO).booking.id;
	a9 = st_book(st, T0, 9, "a", CORE_PAY_AUTO).booking.id;
	a6 = st_book(st, T0, 6, "a", CORE_PAY_AUTO).booking.id;
	CHECK(st_book(st, T0, 6, "b", CORE_PAY_AUTO).code == CORE_OK);
	core_state_stats(st, &s0);
	CHECK(s0.event_count == 10 && s0.booking_count == 6 &&
	      s0.customer_count == 3);

	/* 2026-03-08 12:00Z, 1 day: events ended by 03-07 12:00Z go (the
	 * 17:00Z classes of 03-02 .. 03-06: ids 1..5). */
	q = q_new(CORE_OP_ARCHIVE, now);
	q.u.archive.days = 1;
	CHECK(sdo(st, &q, &r) == CORE_OK);
	core_state_stats(st, &s1);
	CHECK(s1.event_count == 5);
	CHECK(s1.booking_count == 3);  /* a@6, b@6, a@9 */
	CHECK(s1.customer_count == 2); /* c had only event 2 */
	for (uint64_t ev = 1; ev <= 5; ev++) {
		struct core_event_view v;
		CHECK(core_state_event(st, ev, &v) == CORE_NO_EVENT);
	}
	{
		struct core_booking_view v;
		CHECK(core_state_booking(st, a1, &v) == CORE_NO_BOOKING);
		CHECK(core_state_booking(st, b1, &v) == CORE_NO_BOOKING);
		CHECK(core_state_booking(st, c2, &v) == CORE_NO_BOOKING);
	}
	CHECK(st_bk(st, a9).status == CORE_BOOKING_CONFIRMED);
	CHECK(st_bk(st, a6).status == CORE_BOOKING_CONFIRMED);
	CHECK(st_ev(st, 6).waitlist_length == 1);
	/* The key of the archived booking is gone with it: the retry is a
	 * new request, and its event is unknown. */
	q = q_book(now, 1, "a", CORE_PAY_AUTO);
	with_key(&q, 1, 2, 3);
	CHECK(sdo(st, &q, &r) == CORE_NO_EVENT && !r.replayed);
	/* Cancelling the archived booking: unknown too. */
	q = q_cancel(now, a1);
	CHECK(sdo(st, &q, &r) == CORE_NO_BOOKING);
	/* Freed slots are used again: new customers and bookings. */
	CHECK(st_book(st, now, 7, "c", CORE_PAY_AUTO).code == CORE_OK);
	CHECK(st_book(st, now, 7, "d", CORE_PAY_AUTO).code == CORE_OK);
	CHECK(st_ev(st, 7).booked == 1 && st_ev(st, 7).waitlist_length == 1);
	/* Archiving again changes nothing more. */
	q = q_new(CORE_OP_ARCHIVE, now + 1);
	q.u.archive.days = 1;
	CHECK(sdo(st, &q, &r) == CORE_OK);
	CHECK(st_event_count(st) == 5);
	q.u.archive.days = 0;
	CHECK(sdo(st, &q, &r) == CORE_INVALID);

	re = st_new();
	CHECK(elog_replay(re) == 0);
	core_state_stats(st, &s0);
	core_state_stats(re, &s1);
	CHECK(s0.event_count == s1.event_count);
	CHECK(s0.booking_count == s1.booking_count);
	CHECK(s0.customer_count == s1.customer_count);
	for (uint64_t ev = 1; ev <= 10; ev++) {
		struct core_event_view v1, v2;
		enum core_code k1 = core_state_event(st, ev, &v1);
		CHECK(k1 == core_state_event(re, ev, &v2));
		if (k1 == CORE_OK)
			CHECK(event_eq(&v1, &v2));
	}
	{
		struct core_booking_view x = st_bk(st, a9), y = st_bk(re, a9);
		CHECK(view_eq(&x, &y));
		x = st_bk(st, 7ull << 24 | 2);
		y = st_bk(re, 7ull << 24 | 2);
		CHECK(view_eq(&x, &y) && x.position == 1);
	}
	core_state_free(re);
	g_log_on = false;
	elog_reset();
	core_state_free(st);
}

/* The idempotency ring grows as keys come but never past idem_count_max:
 * with 4 at most, a 5th key drops the first (its retry is decided afresh),
 * while 4 are all kept. */
CHECK_TEST_FN(test_idem_ceiling)
{
	struct core_config cfg;
	struct core_req q;
	struct core_resp r;
	core_state *st;
	uint64_t ev;

	cfg_small(&cfg, 1);
	cfg.idem_count_max = 4;
	st = st_setup_with(&cfg);
	if (!st)
		return;
	ev = st_event(st, 10, 0, 0, "");
	for (int i = 0; i < 5; i++) {
		char cust[8];
		snprintf(cust, sizeof(cust), "k%d", i);
		q = q_book(T0 + i, ev, cust, CORE_PAY_AUTO);
		with_key(&q, 100, (uint64_t)i + 1, 7);
		CHECK(sdo(st, &q, &r) == CORE_OK && !r.replayed);
		if (i == 3) { /* 4 keys: the first is still there */
			q = q_book(T0 + 4, ev, "k0", CORE_PAY_AUTO);
			with_key(&q, 100, 1, 7);
			CHECK(sdo(st, &q, &r) == CORE_OK && r.replayed);
		}
	}
	q = q_book(T0 + 6, ev, "k0", CORE_PAY_AUTO);
	with_key(&q, 100, 1, 7);
	CHECK(sdo(st, &q, &r) == CORE_ALREADY_BOOKED && !r.replayed);
	q = q_book(T0 + 6, ev, "k1", CORE_PAY_AUTO);
	with_key(&q, 100, 2, 7);
	CHECK(sdo(st, &q, &r) == CORE_OK && r.replayed);
	core_state_free(st);
}

/* The runtime: CORE_OP_ARCHIVE is logged once and applied by every shard
 * (resp.count: events dropped in all), listings and reads no longer see
 * the archived events, and the log replays to the same state. */
CHECK_TEST_FN(test_rt_archive)
{
	static struct core_event_view all[64];
	struct core_config cfg;
	struct core_series_spec spec;
	struct core_resp r;
	struct core_req q;
	struct rt rt;
	core_time now = utc_ms(2026, 3, 8, 12, 0);
	uint64_t lsn;
	uint32_t n;

	cfg_small(&cfg, 3);
	rt_open_logged(&rt, &cfg);
	spec_init(&spec, 1, 1, 1, "Europe/Berlin", EVERY_DAY, 18 * 60,
		  D(2026, 3, 2), D(2026, 3, 11));
	r = rt_series(rt.p, T0, &spec);
	CHECK(r.code == CORE_OK && r.count == 10);
	for (uint64_t ev = 1; ev <= 10; ev++) {
		q = q_book(T0, ev, "a", CORE_PAY_AUTO);
		CHECK(rcall(rt.p, &q).code == CORE_OK);
	}
	lsn = g_log.lsn;
	q = q_new(CORE_OP_ARCHIVE, now);
	q.u.archive.days = 1;
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK && r.count == 5);
	CHECK(g_log.lsn == lsn + 1); /* one entry, every shard applied it */
	/* A listing of all time: events 6..10 only. */
	q = q_new(CORE_OP_EVENT_LIST, now);
	q.u.list.from = 0;
	q.u.list.to = INT64_MAX;
	q.u.list.limit = 64;
	q.u.list.out = all;
	r = rcall(rt.p, &q);
	n = r.count;
	CHECK(n == 5 && all[0].id == 6 && all[4].id == 10);
	q = q_new(CORE_OP_EVENT_GET, now);
	q.event_id = 3;
	CHECK(rcall(rt.p, &q).code == CORE_NO_EVENT);
	q = q_new(CORE_OP_BOOKING_GET, now);
	q.booking_id = 3ull << 24 | 1;
	CHECK(rcall(rt.p, &q).code == CORE_NO_BOOKING);
	q.booking_id = 8ull << 24 | 1;
	CHECK(rcall(rt.p, &q).code == CORE_OK);
	core_close(rt.c);

	core_state *re = st_new();
	CHECK(elog_replay(re) == 0);
	CHECK(st_event_count(re) == 5);
	for (uint32_t i = 0; i < n; i++) {
		struct core_event_view v = st_ev(re, all[i].id);
		CHECK(event_eq(&v, &all[i]));
	}
	core_state_free(re);
	elog_reset();
}

int main(int argc, char **argv)
{
	return core_test_main("core_limits", argc, argv);
}
