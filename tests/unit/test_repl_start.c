/*
 * test_repl_start.c: what issue 16's start-of-class part puts into
 * PostgreSQL (migration 0014): an org's settings on its organizations row
 * (from the log, and from a snapshot when the log before it is gone);
 * and a series edit's kept events, class_events.detached (migration
 * 0018).
 * Against a real PostgreSQL (DATABASE_URL; 77 without); helpers in
 * repl_test.h.
 *
 *     TEST_REPL_SEED=n ./test_repl_start [case]
 */
#include "repl_test.h"

static struct core_resp org_call(node *n, enum core_op op, uint64_t org_id,
				 uint8_t set, uint16_t cutoff, uint16_t hold,
				 uint16_t horizon)
{
	struct core_req q = { .op = op, .now = (now_ms += OP_MS) };

	q.u.cat.org_id = org_id;
	if (op == CORE_OP_ORG_CREATE) {
		strcpy(q.u.cat.name, "Second");
		strcpy(q.u.cat.timezone, "UTC");
	}
	q.u.cat.settings_set = set;
	q.u.cat.settings.cancel_cutoff_hours = cutoff;
	q.u.cat.settings.hold_minutes = hold;
	q.u.cat.settings.horizon_days = horizon;
	return call(n, q);
}

/* org's row: "cutoff/hold/horizon", NULL as "-". */
static bool org_row_is(PGconn *c, uint64_t org, const char *want)
{
	PGresult *r = q(c,
			"SELECT cancel_cutoff_hours || '/' ||"
			" coalesce(hold_minutes::text, '-') || '/' ||"
			" coalesce(generation_horizon_days::text, '-')"
			" FROM organizations WHERE id = %" PRIu64,
			org);
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		  strcmp(PQgetvalue(r, 0, 0), want) == 0;

	if (!ok)
		fprintf(stderr, "org %" PRIu64 ": %s, want %s\n", org,
			PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "no row",
			want);
	PQclear(r);
	return ok;
}

CHECK_TEST_FN(test_org_settings)
{
	struct repl_case x = { 0 };

	printf("org_settings\n");
	case_db(&x);
	x.n = catalogued_node(1 << 20, &x.events); /* org 1: defaults */
	/* org 2 with settings; org 1 patched twice (the last wins); in one
	 * batch and across batches */
	CHECK(org_call(x.n, CORE_OP_ORG_CREATE, 0,
		       CORE_ORG_SET_CUTOFF | CORE_ORG_SET_HOLD, 48, 20, 0)
		      .code == CORE_OK);
	CHECK(org_call(x.n, CORE_OP_ORG_PATCH, 1, CORE_ORG_SET_HORIZON, 0, 0,
		       30)
		      .code == CORE_OK);
	CHECK(org_call(x.n, CORE_OP_ORG_PATCH, 1, CORE_ORG_SET_CUTOFF, 2, 0, 0)
		      .code == CORE_OK);
	x.lsn = random_ops(x.n, x.events, 200);
	x.r = start_caught_up(x.n, x.conninfo, 100, x.lsn);
	x.c = pg_open(x.conninfo);
	CHECK(org_row_is(x.c, 1, "2/-/30"));
	CHECK(org_row_is(x.c, 2, "48/20/-"));
	compare(x.n, x.c, true);

	/* streaming: a patch back to the server's hold */
	CHECK(org_call(x.n, CORE_OP_ORG_PATCH, 2, CORE_ORG_SET_HOLD, 0, 0, 0)
		      .code == CORE_OK);
	x.lsn = random_ops(x.n, x.events, 50);
	CHECK(catch_up(x.r, x.lsn));
	CHECK(org_row_is(x.c, 2, "48/-/-"));
	/* a refused patch changes nothing */
	CHECK(org_call(x.n, CORE_OP_ORG_PATCH, 2, CORE_ORG_SET_CUTOFF, 721, 0,
		       0)
		      .code == CORE_INVALID);
	case_end(&x);
}

/* The log before the snapshots gone: the snapshot's ORG_SETTINGS. */
CHECK_TEST_FN(test_org_settings_snapshot)
{
	struct repl_case x = { 0 };
	wal_reader *rd;

	printf("org_settings_snapshot\n");
	case_db(&x);
	x.n = catalogued_node(128 << 10, &x.events);
	CHECK(org_call(x.n, CORE_OP_ORG_CREATE, 0, CORE_ORG_SET_HORIZON, 0, 0,
		       90)
		      .code == CORE_OK);
	CHECK(org_call(x.n, CORE_OP_ORG_PATCH, 1, CORE_ORG_SET_CUTOFF, 0, 0, 0)
		      .code == CORE_OK);
	for (int round = 0; round < 3; round++) {
		random_ops(x.n, x.events, 3000);
		CHECK(node_snapshot(x.n) == 0);
	}
	CHECK(wal_reader_open(node_wal(x.n), 1, &rd) == -ENODATA);
	x.lsn = random_ops(x.n, x.events, 100);
	x.r = start_caught_up(x.n, x.conninfo, 2000, x.lsn);
	repl_status(x.r, &x.st);
	CHECK(x.st.resync_count == 1);
	x.c = pg_open(x.conninfo);
	CHECK(org_row_is(x.c, 1, "0/-/-"));
	CHECK(org_row_is(x.c, 2, "12/-/90"));
	compare(x.n, x.c, false);
	case_end(&x);
}

/* A series edit keeps a booked event off the new pattern, flagged
 * detached (core/series_edit.c): class_events.detached (migration 0018)
 * says so, for that event only, and stays so after a later edit of it. */
CHECK_TEST_FN(test_detached)
{
	struct repl_case x = { 0 };
	struct core_req q = { .op = CORE_OP_BOOK };
	struct core_resp r;
	uint64_t booked = 0;

	printf("detached\n");
	case_db(&x);
	x.n = catalogued_node(1 << 20, &x.events);
	/* the first class of series 1 (daily, 18:00) after a day from now */
	for (uint64_t id = 1; id <= x.events && !booked; id++) {
		struct core_event_view v =
			call(x.n, (struct core_req){ .op = CORE_OP_EVENT_GET,
						     .now = now_ms,
						     .event_id = id })
				.event;
		if (v.series_id == 1 && v.start_at > now_ms + 86400000)
			booked = id;
	}
	CHECK(booked != 0);
	q.now = (now_ms += OP_MS);
	q.event_id = booked;
	strcpy(q.customer_id, "c1");
	q.idem = (struct core_idem){ 1, 2, 3 };
	CHECK(call(x.n, q).code == CORE_OK);
	/* series 1 moves to 07:00: its booked class is kept, the rest move */
	memset(&q, 0, sizeof(q));
	q.op = CORE_OP_SERIES_PATCH;
	q.now = (now_ms += OP_MS);
	q.u.spatch.series_id = 1;
	q.u.spatch.capacity = q.u.spatch.waitlist_capacity = -1;
	q.u.spatch.price_cents = -1;
	q.u.spatch.start_minute = 7 * 60;
	r = call(x.n, q);
	CHECK(r.code == CORE_OK && r.series.kept == 1 &&
	      r.series.regenerated > 1);
	/* a later edit of the kept class (its capacity): still detached */
	memset(&q, 0, sizeof(q));
	q.op = CORE_OP_EVENT_PATCH;
	q.now = (now_ms += OP_MS);
	q.event_id = booked;
	q.u.patch.capacity = 5;
	CHECK(call(x.n, q).code == CORE_OK);
	x.lsn = settle(x.n);
	x.r = start_caught_up(x.n, x.conninfo, 100, x.lsn);
	x.c = pg_open(x.conninfo);
	CHECK(q_int(x.c,
		    "SELECT count(*) FROM class_events WHERE detached"
		    " AND id = %" PRIu64,
		    booked) == 1);
	CHECK(q_int(x.c, "SELECT count(*) FROM class_events WHERE detached") ==
	      1);
	compare(x.n, x.c, true); /* every event's flag as the core's */
	case_end(&x);
}

int main(int argc, char **argv) { return repl_test_main(NULL, argc, argv); }
