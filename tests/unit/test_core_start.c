/*
 * test_core_start.c: an org's settings (docs/core.md "Org settings"): set
 * at creation and by a patch, checked, logged as ORG_SETTINGS records that
 * rebuild them (log replay, snapshots), and used: a paid booking's hold,
 * generation's horizon, the cancellation cut-off (core_org_cutoff_ms).
 *
 * Helpers, times and main: core_test.h.
 */
#include "core_test.h"

#include "entry.h"

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

static uint8_t snap[1 << 16];
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

int main(int argc, char **argv)
{
	return core_test_main("core_start", argc, argv);
}
