/*
 * test_repl_streams.c: the replicator's streams and archived months.
 * streams: 3 streams; a trigger refuses one event's registrations with
 * SQLSTATE 40001: its stream stays behind (error names it, not stopped)
 * while the others commit past it, also across a restart asking 2 (the
 * stored 3 kept); the trigger off, it catches up, everything once. Then
 * restarts with 1 and 4 streams, and a row with streams NULL (from before
 * streams): each equal, all elements at applied_lsn, the asked count.
 * archive: the month of the busy events is archived
 * (archive_class_events_month) while more decisions on them follow:
 * replication goes on, their registrations equal the core, their rows stay
 * in the renamed partition only; an event moved into that month afterwards
 * lands in a fresh partition of it; an event missing without being archived
 * still stops it.
 *
 * PostgreSQL, the node, compare and main: repl_test.h.
 */
#include "repl_test.h"

/* ---- streams ---- */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* replication_state's positions: applied_lsn and its streams' elements
 * (all -1 without a row or with streams NULL). */
struct positions {
	int64_t applied, lo, hi, distinct, count;
};

static struct positions positions(PGconn *c)
{
	struct positions s = { -1, -1, -1, -1, -1 };
	PGresult *res =
		q(c, "SELECT applied_lsn, min(v), max(v), count(DISTINCT v),"
		     " count(v) FROM bookd.replication_state, unnest(streams) v"
		     " GROUP BY log_id, applied_lsn");

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		s.applied = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		s.lo = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		s.hi = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
		s.distinct = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
		s.count = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
	}
	PQclear(res);
	return s;
}

/* Caught up at lsn with stream_count streams, all at applied_lsn. */
static void check_positions(PGconn *c, uint64_t lsn, int64_t stream_count)
{
	struct positions s = positions(c);

	CHECK(s.count == stream_count);
	CHECK(s.distinct == 1);
	CHECK(s.applied == (int64_t)lsn);
	CHECK(s.lo == s.applied && s.hi == s.applied);
	printf("  %" PRId64 " stream%s, all at %" PRId64 "\n", s.count,
	       s.count == 1 ? "" : "s", s.applied);
}

static struct core_resp book(node *n, uint64_t event_id, const char *customer)
{
	struct core_req req = { .op = CORE_OP_BOOK,
				.now = (now_ms += OP_MS),
				.event_id = event_id };

	snprintf(req.customer_id, sizeof(req.customer_id), "%s", customer);
	req.u.book.payment = CORE_PAY_AUTO;
	req.idem = (struct core_idem){ rnd() | 1, rnd(), rnd() };
	return call(n, req);
}

/* Waits (bounded) until the error names a stream and one stream is
 * behind lsn_e while another is at or past it; *pos gets the positions,
 * err the error seen. */
static bool wait_stuck(repl *r, PGconn *c, uint64_t lsn_e,
		       struct positions *pos, char *err, size_t err_size,
		       bool *stopped)
{
	int64_t deadline = mono_ms() + 30000;
	bool named = false, behind = false;
	struct repl_status st;

	err[0] = '\0';
	do {
		repl_status(r, &st);
		if (strstr(st.error, "stream ")) {
			named = true;
			*stopped = st.stopped;
			snprintf(err, err_size, "%s", st.error);
		}
		*pos = positions(c);
		behind = pos->distinct > 1 && pos->applied < (int64_t)lsn_e &&
			 pos->lo == pos->applied && pos->hi >= (int64_t)lsn_e;
		if (named && behind)
			return true;
		usleep(20 * 1000);
	} while (mono_ms() < deadline);
	fprintf(stderr,
		"wait_stuck: error '%s', applied %" PRId64 ", streams %" PRId64
		"..%" PRId64 " (%" PRId64
		" distinct), first refused LSN %" PRIu64 "\n",
		err, pos->applied, pos->lo, pos->hi, pos->distinct, lsn_e);
	return false;
}

/* Streams: one stream keeps failing (a transient error on one event's
 * registrations) while the others commit; it catches up once the cause
 * is gone, also across a restart with another count (the stored count is
 * kept while the elements differ). Then the count changes across restarts
 * (3, 1, 4), and a row from before streams (streams NULL) is taken as all
 * at applied_lsn. Every step ends equal to the core, each record once. */
/* Decisions, a replicator with `streams` started, more decisions while it
 * runs; caught up, equal, every stream at the log's end (*lsn). */
static repl *restart_streams(node *n, PGconn *c, const char *conninfo,
			     uint32_t events, uint32_t streams, uint64_t *lsn)
{
	repl *r;

	random_ops(n, events, 200);
	r = start_repl_streams(n, conninfo, 50, streams);
	CHECK(r != NULL);
	*lsn = random_ops(n, events, 300);
	CHECK(catch_up(r, *lsn));
	compare(n, c, true);
	check_positions(c, *lsn, streams);
	return r;
}

CHECK_TEST_FN(test_streams)
{
	struct repl_case x = { 0 };
	char err[REPL_ERROR_SIZE], named[16] = "";
	const char *colon;
	struct positions pos;
	struct core_resp b;
	uint32_t booked_e = 0, booked_other = 0;
	uint64_t lsn_e = 0, ev_e = 0, errors;
	bool stopped = true;

	printf("streams\n");
	fresh_node(&x, 300);
	x.r = start_repl_streams(x.n, x.conninfo, 50, 3);
	CHECK(x.r != NULL && catch_up(x.r, x.lsn));
	x.c = pg_open(x.conninfo);
	CHECK(x.c != NULL);
	check_positions(x.c, x.lsn, 3);

	/* E: a scheduled event random_op leaves alone (ids above 12). */
	CHECK(x.events > 12);
	for (int i = 0; i < 100 && !ev_e && x.events > 12; i++) {
		uint64_t id = 13 + rnd() % (x.events - 12);
		struct core_resp e =
			call(x.n, (struct core_req){ .op = CORE_OP_EVENT_GET,
						     .now = now_ms,
						     .event_id = id });

		if (e.code == CORE_OK &&
		    e.event.status == CORE_EVENT_SCHEDULED &&
		    e.event.capacity > 0)
			ev_e = id;
	}
	CHECK(ev_e != 0);
	PQclear(q(x.c,
		  "CREATE TABLE test_refuse (event_id bigint, on_ boolean)"));
	PQclear(q(x.c, "INSERT INTO test_refuse VALUES (%" PRIu64 ", true)",
		  ev_e));
	PQclear(q(x.c,
		  "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql"
		  " AS $$ BEGIN IF EXISTS (SELECT 1 FROM test_refuse t WHERE t.on_"
		  " AND t.event_id = NEW.event_id) THEN RAISE EXCEPTION"
		  " 'test: event %% refused', NEW.event_id USING ERRCODE = '40001';"
		  " END IF; RETURN NEW; END $$"));
	PQclear(q(x.c,
		  "CREATE TRIGGER test_refuse BEFORE INSERT OR UPDATE ON"
		  " registrations FOR EACH ROW EXECUTE FUNCTION test_refuse()"));

	/* Bookings on E (one cancelled: an update too) and on the others. */
	for (int i = 0; i < 4; i++) {
		char customer[16];

		snprintf(customer, sizeof(customer), "e%d", i);
		b = book(x.n, ev_e, customer);
		if (b.code == CORE_OK && !lsn_e)
			lsn_e = b.lsn;
		booked_e += b.code == CORE_OK;
		if (i == 1 && b.code == CORE_OK)
			CHECK(call(x.n,
				   (struct core_req){ .op = CORE_OP_CANCEL,
						      .now = (now_ms += OP_MS),
						      .booking_id =
							      b.booking.id })
				      .code == CORE_OK);
	}
	for (int i = 0; i < 200; i++) {
		random_op(x.n, x.events);
		if (i % 10 == 0) {
			char customer[16];
			uint64_t id = 1 + (uint64_t)i / 10 % 12;

			snprintf(customer, sizeof(customer), "o%d", i);
			booked_other += book(x.n, id, customer).code == CORE_OK;
		}
	}
	x.lsn = settle(x.n);
	CHECK(booked_e > 0);
	CHECK(lsn_e > 0 && lsn_e < x.lsn);
	printf("  event %" PRIu64 " refused from LSN %" PRIu64 " (%u bookings;"
	       " %u explicit on others), log at %" PRIu64 "\n",
	       ev_e, lsn_e, booked_e, booked_other, x.lsn);

	/* One stream stays behind E's first booking; the others go on. */
	CHECK(wait_stuck(x.r, x.c, lsn_e, &pos, err, sizeof(err), &stopped));
	CHECK(!stopped);
	CHECK(strstr(err, "SQLSTATE 40001") != NULL);
	CHECK(strstr(err, "not applied, will retry") != NULL);
	CHECK(pos.count == 3);
	CHECK(pos.applied < (int64_t)x.lsn);
	if ((colon = strstr(err, "stream ")) != NULL)
		snprintf(named, sizeof(named), "%.*s",
			 (int)strcspn(colon, ":") + 1, colon);
	printf("  stuck: applied %" PRId64 ", streams up to %" PRId64 "; %s\n",
	       pos.applied, pos.hi, err);
	/* ... and stays there, retrying. */
	repl_status(x.r, &x.st);
	errors = x.st.error_count;
	for (int i = 0; i < 300 && x.st.error_count < errors + 3; i++) {
		usleep(20 * 1000);
		repl_status(x.r, &x.st);
	}
	CHECK(x.st.error_count >= errors + 3);
	CHECK(!x.st.stopped);
	CHECK(x.st.applied_lsn < lsn_e);
	pos = positions(x.c);
	CHECK(pos.distinct > 1);
	CHECK(pos.applied < (int64_t)lsn_e);
	CHECK(pos.hi >= (int64_t)lsn_e);
	CHECK(pos.count == 3);

	/* Restarted with another count while they differ: the stored count
	 * stays (the same stream is behind), nothing stops. Batches of one
	 * entry end below the streams ahead, and the new replicator knows no
	 * customer yet: the streams ahead insert customers only, and keep
	 * their positions. */
	repl_stop(x.r);
	x.r = start_repl_streams(x.n, x.conninfo, 1, 2);
	CHECK(x.r != NULL);
	CHECK(wait_stuck(x.r, x.c, lsn_e, &pos, err, sizeof(err), &stopped));
	CHECK(!stopped);
	CHECK(named[0] && strstr(err, named) != NULL);
	CHECK(pos.count == 3);

	/* The cause gone: the stream behind catches up; all equal, once. */
	PQclear(q(x.c, "UPDATE test_refuse SET on_ = false"));
	x.lsn = random_ops(x.n, x.events, 100);
	CHECK(catch_up(x.r, x.lsn));
	repl_status(x.r, &x.st);
	CHECK(!x.st.stopped);
	CHECK(x.st.applied_lsn == x.lsn);
	compare(x.n, x.c, true);
	check_positions(x.c, x.lsn, 3); /* the stored count, until a restart */
	CHECK(q_int(x.c,
		    "SELECT count(*) FROM registrations WHERE event_id = %" PRIu64,
		    ev_e) >= booked_e);
	PQclear(q(x.c, "DROP TRIGGER test_refuse ON registrations"));

	/* Another count at each restart: 1, then 4. */
	for (int j = 0; j < 2; j++) {
		uint32_t k = j ? 4 : 1;

		repl_stop(x.r);
		x.r = restart_streams(x.n, x.c, x.conninfo, x.events, k,
				      &x.lsn);
	}

	/* A row from before streams: all at applied_lsn, set to the count. */
	repl_stop(x.r);
	PQclear(q(x.c, "UPDATE bookd.replication_state SET streams = NULL"));
	CHECK(q_int(x.c,
		    "SELECT count(*) FROM bookd.replication_state WHERE streams IS NULL"
		    " AND applied_lsn = %" PRIu64,
		    x.lsn) == 1);
	x.r = restart_streams(x.n, x.c, x.conninfo, x.events, 2, &x.lsn);
	case_end(&x);
}

/* Every booking of events lo..hi in registrations as the core has it. */
static void compare_bookings(node *n, PGconn *c, uint64_t lo, uint64_t hi)
{
	uint32_t count = 0;

	for (uint64_t ev = lo; ev <= hi; ev++)
		for (uint32_t seq = 1;; seq++) {
			struct core_resp r =
				call(n, (struct core_req){
						.op = CORE_OP_BOOKING_GET,
						.now = now_ms,
						.booking_id = ev << 24 | seq });
			PGresult *res;

			if (r.code != CORE_OK)
				break;
			res = q(c,
				"SELECT status, customer_id FROM registrations"
				" WHERE id = %" PRIu64,
				r.booking.id);
			CHECK(PQntuples(res) == 1);
			if (PQntuples(res) == 1) {
				CHECK(strcmp(PQgetvalue(res, 0, 0),
					     core_booking_status_name(
						     r.booking.status)) == 0);
				CHECK(strcmp(PQgetvalue(res, 0, 1),
					     r.booking.customer_id) == 0);
			}
			PQclear(res);
			count++;
		}
	CHECK(q_int(c,
		    "SELECT count(*) FROM registrations WHERE event_id"
		    " BETWEEN %" PRIu64 " AND %" PRIu64,
		    lo, hi) == count);
}

CHECK_TEST_FN(test_archive)
{
	struct repl_case x = { 0 };
	char part[64], gone[80];
	PGresult *res;
	uint64_t last;
	int64_t in_month, archived;

	printf("archive\n");
	fresh_caught_up(&x, 300);
	x.c = pg_open(x.conninfo);

	/* The month of event 1 (early 2026: over) holds busy events. */
	res = q(x.c, "SELECT to_char(start_at AT TIME ZONE 'UTC', 'YYYY_MM')"
		     " FROM class_events WHERE id = 1");
	CHECK(PQntuples(res) == 1);
	snprintf(part, sizeof(part), "class_events_%s",
		 PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "?");
	PQclear(res);
	snprintf(gone, sizeof(gone), "%s_archived", part);
	in_month = q_int(x.c, "SELECT count(*) FROM %s", part);
	res = PQexec(x.c, "SELECT archive_class_events_month("
			  "(now() AT TIME ZONE 'UTC')::date)"); /* not over */
	CHECK(PQresultStatus(res) == PGRES_FATAL_ERROR);
	PQclear(res);
	archived =
		q_int(x.c,
		      "SELECT archive_class_events_month(min(start_at)::date)"
		      " FROM class_events WHERE id = 1");
	CHECK(archived == in_month && archived > 0);
	CHECK(q_int(x.c, "SELECT count(*) FROM class_events WHERE id = 1") ==
	      0);
	CHECK(q_int(x.c,
		    "SELECT count(*) FROM bookd.archived_class_events WHERE"
		    " archived_in = '%s'",
		    gone) == archived);
	CHECK(q_int(x.c, "SELECT count(*) FROM %s", gone) == archived);
	CHECK(q_int(x.c,
		    "SELECT count(*) FROM pg_inherits WHERE inhrelid ="
		    " '%s'::regclass",
		    gone) == 0);
	res = PQexec(x.c,
		     "SELECT archive_class_events_month(start_at::date)"
		     " FROM bookd.archived_class_events WHERE id = 1"); /* again */
	CHECK(PQresultStatus(res) == PGRES_FATAL_ERROR);
	PQclear(res);

	/* An event moved into the archived month (while the replicator that
	 * listed its partition runs): a fresh partition of that month takes it. */
	int64_t into =
		q_int(x.c,
		      "SELECT (extract(epoch FROM min(start_at)) * 1000"
		      ")::bigint + 3600000 FROM bookd.archived_class_events");
	struct core_resp er = { .code = CORE_NO_EVENT };
	uint64_t moved = x.events + 1;

	while (er.code != CORE_OK && --moved >= 1)
		er = call(x.n,
			  (struct core_req){ .op = CORE_OP_EVENT_PATCH,
					     .now = (now_ms += OP_MS),
					     .event_id = moved,
					     .u.patch = { .capacity = -1,
							  .start_at = into } });
	CHECK(er.code == CORE_OK);
	x.lsn = settle(x.n);
	CHECK(catch_up(x.r, x.lsn));
	CHECK(q_int(x.c, "SELECT count(*) FROM %s WHERE id = %" PRIu64, part,
		    moved) == 1);
	printf("  event %" PRIu64 " moved into %s: in a fresh partition\n",
	       moved, part);

	/* Decisions on archived events, while replicating and after a
	 * restart (the start cache gone): they apply, nothing stops. */
	x.lsn = random_ops(x.n, x.events, 300);
	CHECK(catch_up(x.r, x.lsn));
	repl_stop(x.r);
	x.lsn = random_ops(x.n, x.events, 200);
	x.r = start_caught_up(x.n, x.conninfo, 100, x.lsn);
	repl_status(x.r, &x.st);
	CHECK(!x.st.stopped && x.st.error[0] == '\0');
	compare_bookings(x.n, x.c, 1, x.events);
	CHECK(q_int(x.c, "SELECT count(*) FROM %s", gone) == archived);
	printf("  %" PRId64 " events of %s archived; every booking equal after "
	       "500 more decisions\n",
	       archived, part);
	repl_stop(x.r);

	/* A partition detached by hand (not archived): the next change to
	 * one of its events (a booking on the last event that takes one)
	 * stops replication, loudly. */
	struct core_resp br = book_last_open(x.n, x.events, "detached");

	CHECK(br.code == CORE_OK);
	last = br.booking.event_id;
	x.lsn = settle(x.n);
	res = q(x.c,
		"SELECT c.relname FROM pg_inherits i JOIN pg_class c ON"
		" c.oid = i.inhrelid WHERE i.inhparent = 'class_events'::regclass"
		" AND EXISTS (SELECT 1 FROM class_events e WHERE e.id = %" PRIu64
		" AND e.tableoid = c.oid)",
		last);
	CHECK(PQntuples(res) == 1);
	snprintf(part, sizeof(part), "%s",
		 PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "?");
	PQclear(res);
	PQclear(q(x.c, "ALTER TABLE class_events DETACH PARTITION %s", part));
	x.r = start_repl(x.n, x.conninfo, 100);
	CHECK(x.r != NULL);
	CHECK(repl_wait_applied(x.r, x.lsn, WAIT_MS) == -EIO);
	repl_status(x.r, &x.st);
	CHECK(x.st.stopped && strstr(x.st.error, "archive_class_events_month"));
	printf("  %s detached by hand: %s\n", part, x.st.error);
	case_end(&x);
}

int main(int argc, char **argv) { return repl_test_main(NULL, argc, argv); }
