/*
 * test_core_listing.c: the sharded runtime's pipeline (core_submit /
 * core_poll on 2 and 3 shards) and its fan-out listings: event pages and
 * filters, a customer's bookings and where a page is cut; the catalogue's
 * reads (CORE_OP_CATALOG_GET, _LIST: objects, pages, org filter, unknown
 * ids).
 *
 * Helpers, times and main: core_test.h.
 */
#include "core_test.h"

CHECK_TEST_FN(test_rt_pipeline)
{
	enum { EVENTS = 5, REQS = 50 };

	for (unsigned shards = 2; shards <= 3; shards++) {
		static struct core_event_view all[64];
		struct core_config cfg;
		struct core_series_spec spec;
		struct core_resp ans[REQS];
		bool seen[REQS];
		struct rt rt;
		uint64_t ev[EVENTS];
		int got = 0, sent = 0, bad_rc = 0;
		uint32_t per[3];

		cfg_small(&cfg, shards);
		rt_open(&rt, &cfg);
		rt_catalog(rt.p);
		spec_init(&spec, 1, 1, 1, "Europe/Berlin", EVERY_DAY, 18 * 60,
			  D(2026, 3, 3), D(2026, 3, 3 + EVENTS - 1));
		spec.capacity = 10;
		rt_series(rt.p, T0, &spec);
		CHECK(rt_all_events(rt.p, T0, all, 64) == EVENTS);
		CHECK(shards_of(rt.c, all, EVENTS, shards, per) >= 2);
		for (int e = 0; e < EVENTS; e++)
			ev[e] = all[e].id;

		memset(seen, 0, sizeof(seen));
		for (long spin = 0; got < REQS && spin < 50000000; spin++) {
			if (sent < REQS) {
				char cust[24];
				struct core_req q;
				snprintf(cust, sizeof(cust), "p%02d", sent);
				q = q_book(T0 + sent, ev[sent % EVENTS], cust,
					   CORE_PAY_AUTO);
				if (sent % 2)
					with_key(&q, 4000 + (uint64_t)sent, 1,
						 (uint64_t)sent);
				int rc = core_submit(rt.p, &q,
						     1000 + (uint64_t)sent);
				if (rc == 0)
					sent++;
				else if (rc !=
					 -EAGAIN) /* ring full: poll, retry */
					bad_rc++;
			}
			int k = core_poll(rt.p, ans + got, REQS - got);
			if (k < 0 || k > REQS - got)
				bad_rc++;
			else if (k > 0)
				got += k;
			else if (sent == REQS)
				sched_yield();
		}
		CHECK(bad_rc == 0);
		CHECK(sent == REQS);
		CHECK(got == REQS);
		for (int i = 0; i < got; i++) {
			uint64_t t = ans[i].tag;
			CHECK(t >= 1000 && t < 1000 + REQS);
			if (t < 1000 || t >= 1000 + REQS)
				continue;
			int j = (int)(t - 1000);
			char cust[24];
			snprintf(cust, sizeof(cust), "p%02d", j);
			CHECK(!seen[j]);
			seen[j] = true;
			CHECK(ans[i].op == CORE_OP_BOOK);
			CHECK(ans[i].code == CORE_OK);
			CHECK(!ans[i].replayed);
			CHECK(ans[i].booking.event_id == ev[j % EVENTS]);
			CHECK(core_booking_event(ans[i].booking.id) ==
			      ev[j % EVENTS]);
			CHECK(strcmp(ans[i].booking.customer_id, cust) == 0);
			CHECK(ans[i].booking.status == CORE_BOOKING_CONFIRMED);
			/* Keyed requests visit their key's home first, so they
			 * may reach the event's shard after a later request:
			 * shard time never goes back, so created_at may be
			 * later than the request's now, never earlier. */
			CHECK(ans[i].booking.created_at >= T0 + j);
			CHECK(ans[i].booking.created_at < T0 + REQS);
		}
		for (int e = 0; e < EVENTS; e++)
			CHECK(rt_ev(rt.p, T0 + REQS, ev[e]).booked ==
			      REQS / EVENTS);
		/* Fan-out and catalogue ops are for core_call only. */
		struct core_req lq = q_new(CORE_OP_EVENT_LIST, T0);
		CHECK(core_submit(rt.p, &lq, 1) == -EINVAL);
		core_close(rt.c);
	}
}

/* Orders by time, then by id (the listings' order). */
static int time_id_order(core_time ta, uint64_t ia, core_time tb, uint64_t ib)
{
	if (ta != tb)
		return ta < tb ? -1 : 1;
	return ia < ib ? -1 : ia > ib;
}

static int view_order(const void *a, const void *b)
{
	const struct core_event_view *x = a, *y = b;
	return time_id_order(x->start_at, x->id, y->start_at, y->id);
}

/* Pages through EVENT_LIST with `limit`, checking the page shape; returns
 * the events in order. */
static uint32_t rt_list_pages(core_port *p, const struct core_req *filter,
			      uint32_t limit, struct core_event_view *out,
			      uint32_t cap)
{
	static struct core_event_view page[CORE_LIST_LIMIT_MAX];
	struct core_req q = *filter;
	uint32_t n = 0;

	q.op = CORE_OP_EVENT_LIST;
	q.u.list.limit = limit;
	q.u.list.out = page;
	q.u.list.after_id = 0;
	q.u.list.after_start = 0;
	for (int guard = 0; guard < 10000; guard++) {
		struct core_resp r = rcall(p, &q);
		CHECK(r.code == CORE_OK);
		CHECK(r.count <= limit);
		if (r.more)
			CHECK(r.count == limit);
		for (uint32_t i = 0; i < r.count && n < cap; i++)
			out[n++] = page[i];
		if (!r.more)
			return n;
		q.u.list.after_start = page[r.count - 1].start_at;
		q.u.list.after_id = page[r.count - 1].id;
	}
	CHECK(!"listing never ends");
	return n;
}

static bool same_sequence(const struct core_event_view *a, uint32_t na,
			  const struct core_event_view *b, uint32_t nb)
{
	if (na != nb)
		return false;
	for (uint32_t i = 0; i < na; i++)
		if (a[i].id != b[i].id || a[i].start_at != b[i].start_at)
			return false;
	return true;
}

static void rt_list_setup(struct rt *rt, unsigned shards)
{
	struct core_config cfg;
	struct core_series_spec s;

	cfg_small(&cfg, shards);
	cfg.horizon_days = 60;
	rt_open(rt, &cfg);
	rt_catalog(rt->p);
	/* Every day 07:00 Berlin; Mon/Wed/Fri 07:00 Berlin at the same
	 * instants (ties, broken by id); Tue/Thu 12:00 New York. */
	spec_init(&s, 1, 1, 1, "Europe/Berlin", EVERY_DAY, 7 * 60,
		  D(2026, 3, 2), NO_DATE);
	rt_series(rt->p, T0, &s);
	spec_init(&s, 1, 2, 2, "Europe/Berlin", MON | WED | FRI, 7 * 60,
		  D(2026, 3, 2), NO_DATE);
	rt_series(rt->p, T0, &s);
	spec_init(&s, 2, 3, 3, "America/New_York", TUE | THU, 12 * 60,
		  D(2026, 3, 2), NO_DATE);
	rt_series(rt->p, T0, &s);
}

CHECK_TEST_FN(test_rt_list_pagination)
{
	static struct core_event_view all[1024], got[1024];
	static const uint32_t limits[] = { 1, 2, 3, 7, 50, 500 };

	for (unsigned shards = 2; shards <= 3; shards++) {
		struct rt rt;
		uint32_t n, per[3];

		rt_list_setup(&rt, shards);
		n = rt_all_events(rt.p, T0, all, 1024);
		CHECK(n > 100 && n < 500);
		CHECK(shards_of(rt.c, all, n, shards, per) == shards);
		qsort(all, n, sizeof(all[0]), view_order);

		for (size_t li = 0; li < sizeof(limits) / sizeof(limits[0]);
		     li++) {
			struct core_req f = q_new(CORE_OP_EVENT_LIST, T0);
			f.u.list.from = 0;
			f.u.list.to = INT64_MAX;
			uint32_t k =
				rt_list_pages(rt.p, &f, limits[li], got, 1024);
			/* Every event exactly once, in (start_at, id) order. */
			CHECK(same_sequence(got, k, all, n));
			for (uint32_t i = 1; i < k; i++)
				CHECK(view_order(&got[i - 1], &got[i]) < 0);
		}
		/* A page exactly as long as what is left: more is false. */
		{
			static struct core_event_view page[CORE_LIST_LIMIT_MAX];
			struct core_req q = q_new(CORE_OP_EVENT_LIST, T0);
			struct core_resp r;
			q.u.list.from = 0;
			q.u.list.to = INT64_MAX;
			q.u.list.limit = 3;
			q.u.list.out = page;
			q.u.list.after_start = all[n - 4].start_at;
			q.u.list.after_id = all[n - 4].id;
			r = rcall(rt.p, &q);
			CHECK(r.count == 3 && !r.more);
			CHECK(page[2].id == all[n - 1].id);
			q.u.list.after_start = all[n - 5].start_at;
			q.u.list.after_id = all[n - 5].id;
			r = rcall(rt.p, &q);
			CHECK(r.count == 3 && r.more);
			q.u.list.limit = 0;
			CHECK(core_call(rt.p, &q, &r) == -EINVAL);
			q.u.list.limit = CORE_LIST_LIMIT_MAX + 1;
			CHECK(core_call(rt.p, &q, &r) == -EINVAL);
		}
		core_close(rt.c);
	}
}

static uint32_t filter_expected(const struct core_event_view *all, uint32_t n,
				const struct core_req *f,
				struct core_event_view *out)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct core_event_view *v = &all[i];
		if (v->start_at < f->u.list.from || v->start_at >= f->u.list.to)
			continue;
		if (f->u.list.org_id && v->org_id != f->u.list.org_id)
			continue;
		if (f->u.list.location_id &&
		    v->location_id != f->u.list.location_id)
			continue;
		if (f->u.list.instructor_id &&
		    v->instructor_id != f->u.list.instructor_id)
			continue;
		out[k++] = *v;
	}
	return k;
}

CHECK_TEST_FN(test_rt_list_filters)
{
	static struct core_event_view all[1024], got[1024], want[1024];
	struct rt rt;
	uint32_t n, k, w;

	rt_list_setup(&rt, 3);
	n = rt_all_events(rt.p, T0, all, 1024);
	qsort(all, n, sizeof(all[0]), view_order);
	CHECK(n > 60);

	struct core_req f[8];
	for (int i = 0; i < 8; i++) {
		f[i] = q_new(CORE_OP_EVENT_LIST, T0);
		f[i].u.list.from = 0;
		f[i].u.list.to = INT64_MAX;
	}
	f[0].u.list.org_id = 2;
	f[1].u.list.location_id = 2;
	f[2].u.list.instructor_id = 1;
	/* [from, to): from an event's start (kept) to another's (not kept). */
	f[3].u.list.from = all[10].start_at;
	f[3].u.list.to = all[40].start_at;
	f[4].u.list.org_id = 1;
	f[4].u.list.location_id = 1;
	f[4].u.list.from = utc_ms(2026, 3, 10, 0, 0);
	f[4].u.list.to = utc_ms(2026, 3, 20, 0, 0);
	f[5].u.list.org_id = 3;		     /* no such org: nothing */
	f[6].u.list.from = all[20].start_at; /* empty range */
	f[6].u.list.to = all[20].start_at;
	f[7].u.list.from = all[5].start_at + 1; /* between events */
	f[7].u.list.to = all[5].start_at + DAY_MS;
	for (int i = 0; i < 8; i++) {
		w = filter_expected(all, n, &f[i], want);
		k = rt_list_pages(rt.p, &f[i], 4, got, 1024);
		CHECK(same_sequence(got, k, want, w));
		for (uint32_t j = 0; j < k; j++) {
			CHECK(got[j].start_at >= f[i].u.list.from);
			CHECK(got[j].start_at < f[i].u.list.to);
		}
	}
	/* Sanity of the expectations themselves. */
	CHECK(filter_expected(all, n, &f[0], want) > 10);
	CHECK(filter_expected(all, n, &f[3], want) <= 30);
	CHECK(filter_expected(all, n, &f[5], want) == 0);
	CHECK(filter_expected(all, n, &f[6], want) == 0);
	for (uint32_t i = 0; i < n; i++)
		if (all[i].org_id == 2)
			CHECK(all[i].location_id == 3 &&
			      all[i].instructor_id == 3);

	/* Listings by org sort a day's events by org when they read it; new
	 * events of both orgs on those days come after: listed again, each
	 * org's events are all there, in order. */
	struct core_series_spec s;
	uint32_t org2_before = filter_expected(all, n, &f[0], want);
	spec_init(&s, 1, 1, 1, "Europe/Berlin", EVERY_DAY, 6 * 60,
		  D(2026, 3, 2), NO_DATE);
	rt_series(rt.p, T0, &s);
	spec_init(&s, 2, 3, 3, "America/New_York", EVERY_DAY, 9 * 60,
		  D(2026, 3, 2), NO_DATE);
	rt_series(rt.p, T0, &s);
	uint32_t n2 = rt_all_events(rt.p, T0, all, 1024);
	qsort(all, n2, sizeof(all[0]), view_order);
	CHECK(n2 > n);
	for (int i = 0; i < 8; i++) {
		w = filter_expected(all, n2, &f[i], want);
		k = rt_list_pages(rt.p, &f[i], 4, got, 1024);
		CHECK(same_sequence(got, k, want, w));
	}
	CHECK(filter_expected(all, n2, &f[0], want) > org2_before);
	core_close(rt.c);
}

static int booking_created_order(const void *a, const void *b)
{
	const struct core_booking_view *x = a, *y = b;
	return time_id_order(x->created_at, x->id, y->created_at, y->id);
}

static struct core_resp rt_customer(core_port *p, core_time now,
				    const char *cust,
				    struct core_booking_view *out, uint32_t cap)
{
	struct core_req q = q_new(CORE_OP_CUSTOMER_BOOKINGS, now);
	set_customer(&q, cust);
	q.u.customer.out = out;
	q.u.customer.capacity = cap;
	return rcall(p, &q);
}

CHECK_TEST_FN(test_rt_customer_bookings)
{
	static struct core_event_view all[64];
	struct core_booking_view out[CORE_LIST_LIMIT_MAX];
	struct core_config cfg;
	struct core_resp r;
	struct core_req q;
	struct rt rt;
	uint64_t mine[8];
	uint32_t n, per[3];

	cfg_small(&cfg, 3);
	rt_open(&rt, &cfg);
	rt_catalog(rt.p);
	n = rt_daily(rt.p, D(2026, 3, 3), D(2026, 3, 12), all, 64);
	CHECK(n == 10);
	CHECK(shards_of(rt.c, all, 6, 3, per) >= 2); /* alice's span shards */

	for (int i = 0; i < 6; i++) {
		q = q_book(T0 + 100 - i * 10, all[i].id, "alice",
			   CORE_PAY_AUTO);
		r = rcall(rt.p, &q);
		CHECK(r.code == CORE_OK);
		mine[i] = r.booking.id;
	}
	for (int i = 0; i < 2; i++) {
		q = q_book(T0 + 200 + i, all[i + 5].id, "bob", CORE_PAY_AUTO);
		CHECK(rcall(rt.p, &q).code == CORE_OK);
	}
	q = q_cancel(T0 + 300, mine[2]);
	CHECK(rcall(rt.p, &q).code == CORE_OK);

	r = rt_customer(rt.p, T0 + 400, "alice", out, 50);
	CHECK(r.code == CORE_OK);
	CHECK(r.count == 6);
	CHECK(!r.more);
	for (uint32_t i = 0; i < r.count; i++) {
		bool found = false;
		for (int j = 0; j < 6; j++)
			found |= out[i].id == mine[j];
		CHECK(found);
		CHECK(strcmp(out[i].customer_id, "alice") == 0);
		CHECK(core_booking_event(out[i].id) == out[i].event_id);
		CHECK(out[i].status == (out[i].id == mine[2]
						? CORE_BOOKING_CANCELLED
						: CORE_BOOKING_CONFIRMED));
		if (i) /* newest first */
			CHECK(booking_created_order(&out[i - 1], &out[i]) > 0);
	}
	r = rt_customer(rt.p, T0 + 400, "bob", out, 50);
	CHECK(r.count == 2 && !r.more);
	r = rt_customer(rt.p, T0 + 400, "nobody", out, 50);
	CHECK(r.count == 0 && !r.more);
	q = q_new(CORE_OP_CUSTOMER_BOOKINGS, T0 + 400);
	set_customer(&q, "alice");
	q.u.customer.out = out;
	q.u.customer.capacity = 0;
	CHECK(core_call(rt.p, &q, &r) == -EINVAL);
	core_close(rt.c);
}

/* A customer's list cut at its capacity: `more` says so, and what is kept
 * is the newest (core/port.c call_customer: "keep the newest overall"). */
CHECK_TEST_FN(test_rt_customer_bookings_cut)
{
	static struct core_event_view all[64];
	struct core_booking_view out[CORE_LIST_LIMIT_MAX];
	struct core_config cfg;
	struct core_series_spec spec;
	struct core_resp r;
	struct core_req q;
	struct rt rt;
	uint64_t in0[8], in1[8];
	uint32_t n, n0 = 0, n1 = 0;

	cfg_small(&cfg, 2);
	rt_open(&rt, &cfg);
	rt_catalog(rt.p);
	spec_init(&spec, 1, 1, 1, "Europe/Berlin", EVERY_DAY, 18 * 60,
		  D(2026, 3, 3), D(2026, 3, 22));
	rt_series(rt.p, T0, &spec);
	n = rt_all_events(rt.p, T0, all, 64);
	for (uint32_t i = 0; i < n; i++) {
		if (core_shard_of_event(rt.c, all[i].id) == 0 && n0 < 8)
			in0[n0++] = all[i].id;
		else if (core_shard_of_event(rt.c, all[i].id) == 1 && n1 < 8)
			in1[n1++] = all[i].id;
	}
	CHECK(n0 >= 3 && n1 >= 3);
	if (n0 < 3 || n1 < 3)
		goto out;

	/* Three bookings, all in shard 0; capacity 2. */
	for (int i = 0; i < 3; i++) {
		q = q_book(T0 + i, in0[i], "m", CORE_PAY_AUTO);
		CHECK(rcall(rt.p, &q).code == CORE_OK);
	}
	r = rt_customer(rt.p, T0 + 10, "m", out, 2);
	CHECK(r.count == 2);
	/* Regression: more was false although a third booking exists: each shard
	 * is asked for `capacity` bookings (call_customer copies the request
	 * unchanged, core/port.c), so a shard that holds more than that never
	 * says so; call_list asks for limit + 1 for this reason. */
	CHECK(r.more);

	/* Shard 0 at t1, t2, t10; shard 1 at t3, t4, t11 (t = T0 + 100 + ..,
	 * after the query above: shard time never goes back); capacity 2: the
	 * newest two overall are t10 and t11. */
	static const core_time t0s[3] = { 101, 102, 110 },
			       t1s[3] = { 103, 104, 111 };
	uint64_t newest0 = 0, newest1 = 0;
	for (int i = 0; i < 3; i++) {
		q = q_book(T0 + t0s[i], in0[i], "n", CORE_PAY_AUTO);
		r = rcall(rt.p, &q);
		CHECK(r.code == CORE_OK);
		newest0 = r.booking.id;
		q = q_book(T0 + t1s[i], in1[i], "n", CORE_PAY_AUTO);
		r = rcall(rt.p, &q);
		CHECK(r.code == CORE_OK);
		newest1 = r.booking.id;
	}
	CHECK(rt_bk(rt.p, T0 + 120, newest0).created_at == T0 + 110);
	CHECK(rt_bk(rt.p, T0 + 120, newest1).created_at == T0 + 111);
	r = rt_customer(rt.p, T0 + 120, "n", out, 2);
	CHECK(r.count == 2);
	CHECK(r.more);
	/* Regression: call_customer kept the first `capacity` bookings of
	 * whichever shard answers first, not the newest overall: the result
	 * is {t2, t10} or {t4, t11}, never {t10, t11}. */
	CHECK(r.count == 2 && ((out[0].id == newest0 && out[1].id == newest1) ||
			       (out[0].id == newest1 && out[1].id == newest0)));
out:
	core_close(rt.c);
}

int main(int argc, char **argv)
{
	return core_test_main("core_listing", argc, argv);
}

static struct core_resp cat_read(core_port *p, enum core_op op,
				 enum core_cat_kind kind, uint64_t id,
				 uint64_t org_id, uint64_t after_id,
				 uint32_t limit, struct core_cat_view *out)
{
	struct core_req q = q_new(op, T0);

	q.u.catalog.kind = (uint8_t)kind;
	q.u.catalog.id = id;
	q.u.catalog.org_id = org_id;
	q.u.catalog.after_id = after_id;
	q.u.catalog.limit = limit;
	q.u.catalog.out = out;
	return rcall(p, &q);
}

CHECK_TEST_FN(test_rt_catalog_reads)
{
	static struct core_cat_view v[8];
	struct core_config cfg;
	struct core_series_spec spec;
	struct core_resp r;
	struct rt rt;
	uint64_t seen = 0;

	cfg_small(&cfg, 2);
	rt_open(&rt, &cfg);
	rt_catalog(rt.p);
	spec_init(&spec, 2, 3, 3, "America/New_York", MON | WED, 18 * 60 + 30,
		  D(2026, 3, 2), D(2026, 3, 20));
	spec.capacity = 9;
	spec.price_cents = 1200;
	strcpy(spec.currency, "usd");
	spec.skip_count = 1;
	spec.skip[0] = D(2026, 3, 4);
	rt_series(rt.p, T0, &spec);

	/* one object of each kind, as created */
	r = cat_read(rt.p, CORE_OP_CATALOG_GET, CORE_CAT_ORG, 2, 0, 0, 0, v);
	CHECK(r.code == CORE_OK && r.count == 1 && v[0].id == 2);
	CHECK(v[0].kind == CORE_CAT_ORG && strcmp(v[0].name, "Loft") == 0);
	CHECK(strcmp(v[0].timezone, "America/New_York") == 0);
	CHECK(v[0].settings.cancel_cutoff_hours == CORE_CUTOFF_HOURS_DEFAULT);
	CHECK(v[0].settings.hold_minutes == 0); /* the server's */
	r = cat_read(rt.p, CORE_OP_CATALOG_GET, CORE_CAT_LOCATION, 3, 0, 0, 0,
		     v);
	CHECK(r.code == CORE_OK && v[0].org_id == 2 && v[0].id == 3);
	r = cat_read(rt.p, CORE_OP_CATALOG_GET, CORE_CAT_INSTRUCTOR, 1, 0, 0, 0,
		     v);
	CHECK(r.code == CORE_OK && v[0].org_id == 1);
	r = cat_read(rt.p, CORE_OP_CATALOG_GET, CORE_CAT_SERIES, 1, 0, 0, 0, v);
	CHECK(r.code == CORE_OK && v[0].org_id == 2);
	CHECK(memcmp(&v[0].series, &spec, sizeof(spec)) == 0);
	CHECK(strcmp(v[0].name, spec.title) == 0);
	/* unknown ids: each kind's code; a bad kind or room: invalid */
	CHECK(cat_read(rt.p, CORE_OP_CATALOG_GET, CORE_CAT_ORG, 3, 0, 0, 0, v)
		      .code == CORE_NO_ORG);
	CHECK(cat_read(rt.p, CORE_OP_CATALOG_GET, CORE_CAT_LOCATION, 0, 0, 0, 0,
		       v)
		      .code == CORE_NO_LOCATION);
	CHECK(cat_read(rt.p, CORE_OP_CATALOG_GET, CORE_CAT_INSTRUCTOR,
		       UINT64_MAX, 0, 0, 0, v)
		      .code == CORE_NO_INSTRUCTOR);
	CHECK(cat_read(rt.p, CORE_OP_CATALOG_GET, CORE_CAT_SERIES, 2, 0, 0, 0,
		       v)
		      .code == CORE_NO_SERIES);
	CHECK(cat_read(rt.p, CORE_OP_CATALOG_GET, 9, 1, 0, 0, 0, v).code ==
	      CORE_INVALID);
	CHECK(cat_read(rt.p, CORE_OP_CATALOG_GET, CORE_CAT_ORG, 1, 0, 0, 0,
		       NULL)
		      .code == CORE_INVALID);
	CHECK(cat_read(rt.p, CORE_OP_CATALOG_LIST, CORE_CAT_ORG, 0, 0, 0, 0, v)
		      .code == CORE_INVALID); /* limit 0 */

	/* lists: id order, pages of 1 with the cursor, each seen once */
	for (uint64_t after = 0, pages = 0; pages < 10; pages++) {
		r = cat_read(rt.p, CORE_OP_CATALOG_LIST, CORE_CAT_LOCATION, 0,
			     0, after, 1, v);
		CHECK(r.code == CORE_OK && r.count == 1);
		CHECK(v[0].id == after + 1);
		seen |= 1u << v[0].id;
		after = v[0].id;
		if (!r.more)
			break;
	}
	CHECK(seen == (2 | 4 | 8));
	/* of one org */
	r = cat_read(rt.p, CORE_OP_CATALOG_LIST, CORE_CAT_INSTRUCTOR, 0, 1, 0,
		     8, v);
	CHECK(r.code == CORE_OK && r.count == 2 && !r.more);
	CHECK(v[0].id == 1 && v[1].id == 2 && v[1].org_id == 1);
	r = cat_read(rt.p, CORE_OP_CATALOG_LIST, CORE_CAT_INSTRUCTOR, 0, 1, 0,
		     1, v);
	CHECK(r.count == 1 && r.more); /* instructor 2 follows */
	r = cat_read(rt.p, CORE_OP_CATALOG_LIST, CORE_CAT_INSTRUCTOR, 0, 1, 1,
		     1, v);
	CHECK(r.count == 1 && !r.more && v[0].id == 2); /* 3 is org 2's */
	r = cat_read(rt.p, CORE_OP_CATALOG_LIST, CORE_CAT_SERIES, 0, 2, 0, 8,
		     v);
	CHECK(r.count == 1 && v[0].id == 1);
	/* an unknown org's list, a cursor past the end: empty */
	CHECK(cat_read(rt.p, CORE_OP_CATALOG_LIST, CORE_CAT_SERIES, 0, 9, 0, 8,
		       v)
		      .count == 0);
	r = cat_read(rt.p, CORE_OP_CATALOG_LIST, CORE_CAT_ORG, 0, 0, UINT64_MAX,
		     8, v);
	CHECK(r.code == CORE_OK && r.count == 0 && !r.more);
	core_close(rt.c);
}
