/*
 * test_core_catalog.c: catalogue and series: ids of orgs, locations and
 * instructors, a series' validation, and generation (Berlin's and New York's
 * DST, never in the past, until and the horizon; on 2 and 3 shards, and
 * refused whole before the log when it would not fit).
 *
 * Helpers, times and main: core_test.h.
 */
#include "core_test.h"

/* ==== catalogue ========================================================= */

CHECK_TEST_FN(test_catalog_ids)
{
	/* Each create in order; id: the id it gets (0: refused). Refusals take
	 * no id. */
	static const struct {
		enum core_op op;
		uint64_t org;
		const char *name, *tz;
		enum core_code code;
		uint64_t id;
	} cases[] = {
		{ CORE_OP_ORG_CREATE, 0, "Studio A", "Europe/Berlin", CORE_OK,
		  1 },
		{ CORE_OP_ORG_CREATE, 0, "Studio B", "America/New_York",
		  CORE_OK, 2 },
		/* Bad time zones and empty names are malformed. */
		{ CORE_OP_ORG_CREATE, 0, "Bad", "Mars/Olympus_Mons",
		  CORE_INVALID, 0 },
		{ CORE_OP_ORG_CREATE, 0, "Bad", "", CORE_INVALID, 0 },
		{ CORE_OP_ORG_CREATE, 0, "Bad", "../../etc/passwd",
		  CORE_INVALID, 0 },
		{ CORE_OP_ORG_CREATE, 0, "", "Europe/Berlin", CORE_INVALID, 0 },
		{ CORE_OP_ORG_CREATE, 0, "Studio C", "UTC", CORE_OK, 3 },

		{ CORE_OP_LOCATION_CREATE, 1, "Hall 1", "", CORE_OK, 1 },
		{ CORE_OP_LOCATION_CREATE, 2, "Hall 2", "", CORE_OK, 2 },
		{ CORE_OP_LOCATION_CREATE, 99, "Hall", "", CORE_NO_ORG, 0 },
		{ CORE_OP_LOCATION_CREATE, 0, "Hall", "", CORE_NO_ORG, 0 },
		{ CORE_OP_LOCATION_CREATE, 1, "", "", CORE_INVALID, 0 },
		{ CORE_OP_LOCATION_CREATE, 3, "Hall 3", "", CORE_OK, 3 },

		{ CORE_OP_INSTRUCTOR_CREATE, 1, "Ana", "", CORE_OK, 1 },
		{ CORE_OP_INSTRUCTOR_CREATE, 4, "Ben", "", CORE_NO_ORG, 0 },
		{ CORE_OP_INSTRUCTOR_CREATE, 2, "", "", CORE_INVALID, 0 },
		{ CORE_OP_INSTRUCTOR_CREATE, 2, "Ben", "", CORE_OK, 2 },
	};
	core_state *st = st_new();

	for (size_t i = 0; i < CHECK_COUNT_OF(cases); i++) {
		struct core_req q = q_named(cases[i].op, T0, cases[i].org,
					    cases[i].name, cases[i].tz);
		struct core_resp r;

		CHECK_MSG(sdo(st, &q, &r) == cases[i].code, "case %zu", i);
		if (cases[i].code == CORE_OK)
			CHECK_MSG(r.id == cases[i].id, "case %zu: id %" PRIu64,
				  i, r.id);
	}
	core_state_free(st);
}

static enum core_code series_code(core_state *st, struct core_series_spec *s,
				  uint64_t *id)
{
	struct core_resp r;
	enum core_code code = st_series(st, T0, s, &r);
	*id = code == CORE_OK ? r.id : 0;
	return code;
}

CHECK_TEST_FN(test_series_validation)
{
	core_state *st = st_new();
	struct core_series_spec good, s;
	struct core_resp r;
	struct core_req q;
	uint64_t id;

	/* Orgs 1 and 2, each with its location and instructor (ids 1, 2). */
	for (uint64_t i = 1; i <= 2; i++) {
		q = q_named(CORE_OP_ORG_CREATE, T0, 0, "Studio",
			    "Europe/Berlin");
		CHECK(sdo(st, &q, &r) == CORE_OK && r.id == i);
	}
	for (uint64_t i = 1; i <= 2; i++) {
		q = q_named(CORE_OP_LOCATION_CREATE, T0, i, "Hall", "");
		CHECK(sdo(st, &q, &r) == CORE_OK && r.id == i);
		q = q_named(CORE_OP_INSTRUCTOR_CREATE, T0, i, "Coach", "");
		CHECK(sdo(st, &q, &r) == CORE_OK && r.id == i);
	}

	spec_init(&good, 1, 1, 1, "Europe/Berlin", MON | WED | FRI, 18 * 60,
		  D(2026, 3, 2), D(2026, 4, 10));

	s = good, s.location_id = 2; /* another org's */
	CHECK(series_code(st, &s, &id) == CORE_NO_LOCATION);
	s = good, s.location_id = 99;
	CHECK(series_code(st, &s, &id) == CORE_NO_LOCATION);
	s = good, s.instructor_id = 2; /* another org's */
	CHECK(series_code(st, &s, &id) == CORE_NO_INSTRUCTOR);
	s = good, s.org_id = 99;
	CHECK(series_code(st, &s, &id) == CORE_NO_ORG);
	s = good, s.weekday_mask = 0;
	CHECK(series_code(st, &s, &id) == CORE_INVALID);
	s = good, s.weekday_mask = 0x80;
	CHECK(series_code(st, &s, &id) == CORE_INVALID);
	s = good, s.start_minute = 1440;
	CHECK(series_code(st, &s, &id) == CORE_INVALID);
	s = good, s.last_date = D(2026, 3, 1);
	CHECK(series_code(st, &s, &id) == CORE_INVALID);
	s = good, s.price_cents = 1500; /* price without currency */
	CHECK(series_code(st, &s, &id) == CORE_INVALID);
	s = good, s.price_cents = 1500, strcpy(s.currency, "EUR");
	CHECK(series_code(st, &s, &id) == CORE_INVALID);
	s = good, strcpy(s.timezone, "Mars/Olympus_Mons");
	CHECK(series_code(st, &s, &id) == CORE_INVALID);
	s = good, s.timezone[0] = '\0';
	CHECK(series_code(st, &s, &id) == CORE_INVALID);
	s = good, s.duration_min = 0;
	CHECK(series_code(st, &s, &id) == CORE_INVALID);
	s = good, s.first_date = D(2026, 2, 30);
	CHECK(series_code(st, &s, &id) == CORE_INVALID);
	s = good, s.title[0] = '\0';
	CHECK(series_code(st, &s, &id) == CORE_INVALID);
	s = good, s.skip_count = 1, s.skip[0] = D(2026, 13, 1);
	CHECK(series_code(st, &s, &id) == CORE_INVALID);

	/* The limits themselves are fine; refusals took no id. */
	s = good;
	CHECK(series_code(st, &s, &id) == CORE_OK);
	CHECK(id == 1);
	s = good, s.start_minute = 1439;
	CHECK(series_code(st, &s, &id) == CORE_OK);
	CHECK(id == 2);
	s = good, s.last_date = s.first_date;
	CHECK(series_code(st, &s, &id) == CORE_OK);
	CHECK(id == 3);
	s = good, s.price_cents = 1500, strcpy(s.currency, "eur");
	CHECK(series_code(st, &s, &id) == CORE_OK);
	CHECK(id == 4);
	s = good, s.last_date = NO_DATE; /* open ended */
	CHECK(series_code(st, &s, &id) == CORE_OK);
	CHECK(id == 5);
	/* Creating a series generates nothing by itself in the state. */
	CHECK(st_event_count(st) == 0);
	core_state_free(st);
}

/* ==== generation ======================================================== */

struct want_start {
	int month, day, hour_utc;
};

static void check_starts(const core_state *st, uint64_t first_id,
			 const struct want_start *want, size_t n, int minute)
{
	for (size_t i = 0; i < n; i++) {
		struct core_event_view v = st_ev(st, first_id + i);
		CHECK(v.start_at == utc_ms(2026, want[i].month, want[i].day,
					   want[i].hour_utc, minute));
	}
}

/* Mon/Wed/Fri 18:00 Berlin across the 2026-03-29 change to summer time. */
CHECK_TEST_FN(test_generate_berlin_dst)
{
	static const struct want_start want[] = {
		{ 3, 2, 17 },  { 3, 4, 17 },  { 3, 6, 17 },  { 3, 9, 17 },
		{ 3, 11, 17 }, /* 3-13 skipped */
		{ 3, 16, 17 }, { 3, 18, 17 }, { 3, 20, 17 }, { 3, 23, 17 },
		{ 3, 25, 17 }, { 3, 27, 17 }, /* summer time from 3-29 */
		{ 3, 30, 16 }, { 4, 1, 16 },  { 4, 3, 16 }, /* 4-6 skipped */
		{ 4, 8, 16 },  { 4, 10, 16 },
	};
	const size_t n = sizeof(want) / sizeof(want[0]);
	core_state *st = st_setup();
	struct core_series_spec spec;
	struct core_resp r;

	spec_init(&spec, 1, 1, 1, "Europe/Berlin", MON | WED | FRI, 18 * 60,
		  D(2026, 3, 2), D(2026, 4, 10));
	spec.skip_count = 2;
	spec.skip[0] = D(2026, 3, 13);
	spec.skip[1] = D(2026, 4, 6);
	CHECK(st_series(st, T0, &spec, &r) == CORE_OK);
	CHECK(r.id == 1);
	CHECK(r.count == n); /* what generation will create */
	CHECK(st_event_count(st) == 0);

	CHECK(st_generate(st, T0, 0, NO_DATE) == n);
	CHECK(st_event_count(st) == n);
	check_starts(st, 1, want, n, 0);
	for (uint64_t id = 1; id <= n; id++) {
		struct core_event_view v = st_ev(st, id);
		CHECK(v.series_id == 1);
		CHECK(v.org_id == 1 && v.location_id == 1 &&
		      v.instructor_id == 1);
		CHECK(strcmp(v.title, "Yoga") == 0);
		CHECK(v.duration_min == 60);
		CHECK(v.capacity == 10 && v.waitlist_capacity == 5);
		CHECK(v.booked == 0 && v.held == 0 && v.waitlist_length == 0);
		CHECK(v.status == CORE_EVENT_SCHEDULED);
	}
	struct core_event_view none;
	CHECK(core_state_event(st, n + 1, &none) == CORE_NO_EVENT);

	/* Idempotent: again, and again a day later, nothing new. */
	CHECK(st_generate(st, T0, 0, NO_DATE) == 0);
	CHECK(st_generate(st, T0, 1, NO_DATE) == 0);
	CHECK(st_generate(st, T0 + DAY_MS, 0, NO_DATE) == 0);
	CHECK(st_event_count(st) == n);
	check_starts(st, 1, want, n, 0);
	core_state_free(st);
}

/* Tue/Thu 18:00 New York across the 2026-03-08 change: 23:00Z, then 22:00Z. */
CHECK_TEST_FN(test_generate_new_york)
{
	static const struct want_start want[] = {
		{ 3, 3, 23 },
		{ 3, 5, 23 },
		{ 3, 10, 22 },
		{ 3, 12, 22 },
	};
	core_state *st = st_setup();
	struct core_series_spec spec;
	struct core_resp r;

	spec_init(&spec, 1, 1, 1, "America/New_York", TUE | THU, 18 * 60,
		  D(2026, 3, 3), D(2026, 3, 12));
	CHECK(st_series(st, T0, &spec, &r) == CORE_OK);
	CHECK(r.count == 4);
	CHECK(st_generate(st, T0, r.id, NO_DATE) == 4);
	CHECK(st_event_count(st) == 4);
	check_starts(st, 1, want, 4, 0);
	/* A half-hour start stays local too: 07:30 NY = 12:30Z / 11:30Z. */
	spec_init(&spec, 1, 1, 1, "America/New_York", FRI, 7 * 60 + 30,
		  D(2026, 3, 6), D(2026, 3, 13));
	CHECK(st_series(st, T0, &spec, &r) == CORE_OK);
	CHECK(st_generate(st, T0, r.id, NO_DATE) == 2);
	CHECK(st_ev(st, 5).start_at == utc_ms(2026, 3, 6, 12, 30));
	CHECK(st_ev(st, 6).start_at == utc_ms(2026, 3, 13, 11, 30));
	core_state_free(st);
}

/* Nothing whose start is <= now: neither past dates nor today's class at
 * or after its start. */
CHECK_TEST_FN(test_generate_never_past)
{
	static const struct want_start want_at[] = {
		{ 3, 6, 17 },
		{ 3, 9, 17 },
		{ 3, 11, 17 },
		{ 3, 13, 17 },
	};
	static const struct want_start want_before[] = {
		{ 3, 4, 17 },  { 3, 6, 17 },  { 3, 9, 17 },
		{ 3, 11, 17 }, { 3, 13, 17 },
	};
	const core_time start =
		utc_ms(2026, 3, 4, 17, 0); /* Wed 18:00 Berlin */
	struct core_series_spec spec;
	struct core_resp r;
	core_state *st;

	spec_init(&spec, 1, 1, 1, "Europe/Berlin", MON | WED | FRI, 18 * 60,
		  D(2026, 2, 2), D(2026, 3, 13));

	/* now == today's start: today's class is not generated. */
	st = st_setup();
	CHECK(st_series(st, start, &spec, &r) == CORE_OK);
	CHECK(r.count == 4);
	CHECK(st_generate(st, start, 0, NO_DATE) == 4);
	CHECK(st_event_count(st) == 4);
	check_starts(st, 1, want_at, 4, 0);
	core_state_free(st);

	/* 1 ms before it: it is. */
	st = st_setup();
	CHECK(st_series(st, start - 1, &spec, &r) == CORE_OK);
	CHECK(r.count == 5);
	CHECK(st_generate(st, start - 1, 0, NO_DATE) == 5);
	check_starts(st, 1, want_before, 5, 0);
	core_state_free(st);

	/* A series wholly in the past generates nothing. */
	st = st_setup();
	spec.last_date = D(2026, 3, 1);
	CHECK(st_series(st, start, &spec, &r) == CORE_OK);
	CHECK(r.count == 0);
	CHECK(st_generate(st, start, 0, NO_DATE) == 0);
	CHECK(st_event_count(st) == 0);
	core_state_free(st);
}

/* `until` bounds generation; without it the horizon (default 120 days from
 * today in the series' zone, inclusive) does; a day later one more day. */
CHECK_TEST_FN(test_generate_until_and_horizon)
{
	core_state *st = st_setup();
	struct core_series_spec spec;
	struct core_resp r;
	struct core_req q;

	/* Every day 07:00 Berlin; at T0 (09:00 Berlin) today's has started. */
	spec_init(&spec, 1, 1, 1, "Europe/Berlin", EVERY_DAY, 7 * 60,
		  D(2026, 3, 2), NO_DATE);
	CHECK(st_series(st, T0, &spec, &r) == CORE_OK);
	CHECK(r.count == 120); /* 03-03 .. 06-30 (today + 120 days) */

	q = q_generate(T0, 0, D(2026, 2, 30));
	CHECK(sdo(st, &q, &r) == CORE_INVALID);

	CHECK(st_generate(st, T0, 1, D(2026, 3, 10)) == 8); /* 03-03 .. 03-10 */
	CHECK(st_event_count(st) == 8);
	CHECK(st_ev(st, 1).start_at == utc_ms(2026, 3, 3, 6, 0));
	CHECK(st_ev(st, 8).start_at == utc_ms(2026, 3, 10, 6, 0));
	CHECK(st_generate(st, T0, 1, D(2026, 3, 10)) == 0);
	CHECK(st_generate(st, T0, 1, D(2026, 3, 5)) == 0);
	CHECK(st_event_count(st) == 8);

	CHECK(st_generate(st, T0, 0, NO_DATE) == 112); /* 03-11 .. 06-30 */
	CHECK(st_event_count(st) == 120);
	CHECK(st_ev(st, 9).start_at == utc_ms(2026, 3, 11, 6, 0));
	CHECK(st_ev(st, 120).start_at == utc_ms(2026, 6, 30, 5, 0)); /* CEST */
	CHECK(st_generate(st, T0, 0, NO_DATE) == 0);

	/* The next day the horizon moves by one day. */
	CHECK(st_generate(st, T0 + DAY_MS, 0, NO_DATE) == 1);
	CHECK(st_event_count(st) == 121);
	CHECK(st_ev(st, 121).start_at == utc_ms(2026, 7, 1, 5, 0));
	CHECK(st_generate(st, T0 + DAY_MS, 0, NO_DATE) == 0);
	core_state_free(st);
}

/* ==== runtime =========================================================== */

/* Series create answers how many events it made; they all exist. */
CHECK_TEST_FN(test_rt_series_generates)
{
	static struct core_event_view all[4096];

	for (unsigned shards = 2; shards <= 3; shards++) {
		struct core_config cfg;
		struct core_series_spec a, b;
		struct core_resp ra, rb, r;
		struct core_req q;
		struct rt rt;
		uint32_t n, na = 0, nb = 0, per[3];

		cfg_small(&cfg, shards);
		cfg.horizon_days = 400; /* > 200 events: several chunks */
		rt_open(&rt, &cfg);
		rt_catalog(rt.p);
		spec_init(&a, 1, 1, 1, "Europe/Berlin", EVERY_DAY, 7 * 60,
			  D(2026, 3, 2), NO_DATE);
		ra = rt_series(rt.p, T0, &a);
		CHECK(ra.id == 1);
		CHECK(ra.count == 400); /* 03-03 .. today + 400 days */
		spec_init(&b, 2, 3, 3, "America/New_York", TUE | THU, 18 * 60,
			  D(2026, 3, 3), D(2026, 3, 12));
		rb = rt_series(rt.p, T0, &b);
		CHECK(rb.id == 2);
		CHECK(rb.count == 4);

		n = rt_all_events(rt.p, T0, all, 4096);
		for (uint32_t i = 0; i < n; i++) {
			na += all[i].series_id == 1;
			nb += all[i].series_id == 2;
		}
		CHECK(n == ra.count + rb.count);
		CHECK(na == ra.count);
		CHECK(nb == rb.count);
		CHECK(shards_of(rt.c, all, n, shards, per) == shards);
		CHECK(all[n - 1].start_at == utc_ms(2026, 3, 12, 22, 0));

		/* Generation again: nothing new. */
		q = q_generate(T0, 0, NO_DATE);
		r = rcall(rt.p, &q);
		CHECK(r.code == CORE_OK);
		CHECK(r.count == 0);
		CHECK(rt_all_events(rt.p, T0, all, 4096) == n);
		/* A day later: one more day of the open-ended series. */
		q = q_generate(T0 + DAY_MS, 0, NO_DATE);
		r = rcall(rt.p, &q);
		CHECK(r.code == CORE_OK && r.count == 1);
		CHECK(rt_all_events(rt.p, T0 + DAY_MS, all, 4096) == n + 1);
		/* An unknown series. */
		q = q_generate(T0 + DAY_MS, 99, NO_DATE);
		CHECK(rcall(rt.p, &q).code == CORE_NO_SERIES);
		core_close(rt.c);
	}
}

/* The runtime refuses a whole generation that would pass a shard's
 * ceiling, or reach past generate_max_days, before logging any of it: the
 * log does not move, no event appears, and a generation that fits still
 * works afterwards. Regression (issue 13): until=9999-12-31 logged chunks
 * until a shard's table was full, then failed an assert; every restart
 * then failed on the logged record. */
CHECK_TEST_FN(test_rt_generate_refused_before_log)
{
	static struct core_event_view all[1024];
	struct core_config cfg;
	struct core_series_spec spec;
	struct core_resp r;
	struct core_req q;
	struct rt rt;
	uint64_t lsn;
	uint32_t n;

	cfg_small(&cfg, 2);
	cfg.event_count_max = 100; /* per shard: 120 events fit on 2 */
	rt_open_logged(&rt, &cfg);
	spec_init(&spec, 1, 1, 1, "Europe/Berlin", EVERY_DAY, 18 * 60,
		  D(2026, 3, 2), NO_DATE);
	r = rt_series(rt.p, T0, &spec);
	CHECK(r.code == CORE_OK && r.count == 121);
	n = rt_all_events(rt.p, T0, all, 1024);
	CHECK(n == 121);
	lsn = g_log.lsn;

	q = q_generate(T0, 0, D(9999, 12, 31));
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_LIMIT && r.id == CORE_LIMIT_GENERATE_DAYS &&
	      r.count == 366);
	q = q_generate(T0, 0, D(2027, 3, 1)); /* +364 days: 485 in all */
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_LIMIT && r.id == CORE_LIMIT_EVENTS &&
	      r.count == 100);
	/* Also with a key: refused, nothing stored under it either. */
	with_key(&q, 77, 78, 79);
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_LIMIT);
	CHECK(g_log.lsn == lsn);
	CHECK(rt_all_events(rt.p, T0, all, 1024) == n);
	/* A series whose first generation would not fit: refused whole,
	 * the series not created. */
	spec_init(&spec, 1, 1, 1, "Europe/Berlin", EVERY_DAY, 7 * 60,
		  D(2026, 3, 2), NO_DATE);
	q = q_new(CORE_OP_SERIES_CREATE, T0);
	q.u.series = &spec;
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_LIMIT && r.id == CORE_LIMIT_EVENTS);
	CHECK(g_log.lsn == lsn);
	q = q_generate(T0, 2, NO_DATE);
	CHECK(rcall(rt.p, &q).code == CORE_NO_SERIES);
	/* 40 more days fit (161 events over 2 shards of 100). */
	q = q_generate(T0, 0, D(2026, 8, 9));
	r = rcall(rt.p, &q);
	CHECK(r.code == CORE_OK && r.count == 40);
	CHECK(g_log.lsn > lsn);
	CHECK(rt_all_events(rt.p, T0, all, 1024) == n + 40);
	core_close(rt.c);
	elog_reset();
}

int main(int argc, char **argv)
{
	return core_test_main("core_catalog", argc, argv);
}
