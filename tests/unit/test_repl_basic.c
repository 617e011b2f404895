/*
 * test_repl_basic.c: the replicator's main path. basic: a node driven
 * through bookings, waitlists, cancellations and promotions, holds that
 * expire, payments (succeeded, failed, mismatched, late), capacity changes
 * and event cancels; then PostgreSQL must equal the core row for row (every
 * event's counters, capacity, status, instructor, start; every booking's
 * status, customer, hold; every waitlisted booking's place), the log's
 * records must each be there once (events, bookings, payments,
 * notifications), the seed's debug and dashboard queries run and the
 * booking-conflicts one returns no row, every month holding an event has its
 * partition; a restart applies no migration twice; metrics, health rows and
 * a view refresh arrive. resync: the log before the snapshots was removed
 * and the database is new: the replicator applies the newest snapshot, then
 * tails. corearchive: the core archives every event (CORE_OP_ARCHIVE, a log
 * record of its own): replication goes on past it, not stopped, and
 * PostgreSQL keeps every event and booking row; the node restarted replays
 * the archive (no event in memory).
 *
 * PostgreSQL, the node, compare and main: repl_test.h.
 */
#include "repl_test.h"

CHECK_TEST_FN(test_basic)
{
	char conninfo[1024];
	node *n;
	repl *r;
	PGconn *c;
	struct repl_status st;
	uint32_t events;
	uint64_t lsn;

	printf("basic\n");
	snprintf(conninfo, sizeof(conninfo), "%s", db_create());
	wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CHECK(wake_fd >= 0);
	n = catalogued_node(1 << 20, &events);
	lsn = random_ops(n, events, 3000);

	/* Invalid configurations are refused. */
	{
		struct repl_config cfg;
		char err[128];
		repl *bad = NULL;

		repl_config_default(&cfg);
		CHECK(repl_start(&cfg, node_wal(n), &bad, err, sizeof(err)) ==
		      -EINVAL);
		cfg.conninfo = "postgresql://[bad";
		CHECK(repl_start(&cfg, node_wal(n), &bad, err, sizeof(err)) ==
		      -EINVAL);
		repl_status(NULL, &st);
		CHECK(st.state == REPL_DISABLED);
	}

	r = start_caught_up(n, conninfo, 500, lsn);
	c = pg_open(conninfo);
	CHECK(c != NULL);
	compare(n, c, true);
	CHECK(q_int(c, "SELECT applied_lsn FROM replication_state") ==
	      (int64_t)lsn);

	/* The whole log in one transaction (events created and booked in
	 * the same batch), into a second database: the same rows. */
	{
		char first[64], second[1024];
		repl *r2;
		PGconn *c2;

		snprintf(first, sizeof(first), "%s", db_name);
		snprintf(second, sizeof(second), "%s", db_create());
		r2 = start_caught_up(n, second, REPL_BATCH_RECORDS_MAX, lsn);
		repl_status(r2, &st);
		CHECK(st.batch_count == 1);
		c2 = pg_open(second);
		compare(n, c2, true);
		PQfinish(c2);
		repl_stop(r2);
		db_drop();
		snprintf(db_name, sizeof(db_name), "%s", first);
	}

	/* Streaming: more decisions while it runs. */
	lsn = random_ops(n, events, 2000);
	CHECK(catch_up(r, lsn));
	repl_status(r, &st);
	CHECK(st.state == REPL_STREAMING);
	CHECK(st.lag_records == 0);
	CHECK(st.batch_count > 1);
	compare(n, c, true);

	/* Metrics, health, views. */
	usleep(1000 * 1000);
	CHECK(repl_refresh_views(r) == 0);
	for (int i = 0; i < 100; i++) {
		repl_status(r, &st);
		if (st.refresh_count > 0)
			break;
		usleep(100 * 1000);
	}
	CHECK(st.refresh_count > 0);
	CHECK(st.metrics_rows > 0);
	CHECK(q_int(c,
		    "SELECT count(*) FROM performance_metrics WHERE metric_name ="
		    " 'booking_operation_duration' AND tags->>'operation' = 'book'"
		    " AND metric_value BETWEEN 0.24 AND 0.26 AND"
		    " (tags->>'count')::int = 1000") > 0);
	CHECK(q_int(c,
		    "SELECT count(*) FROM performance_metrics WHERE metric_name ="
		    " 'booking_operation_errors' AND tags->>'operation' = 'cancel'"
		    " AND tags ?& ARRAY['interval_ms']"
		    " AND NOT tags ?| ARRAY['outcome', 'count']") > 0);
	CHECK(q_int(c, "SELECT count(*) FROM health_checks WHERE check_name ="
		       " 'replication' AND status = 'healthy'") > 0);
	CHECK(q_int(c, "SELECT count(*) FROM health_checks WHERE check_name ="
		       " 'database'") > 0 ||
	      q_int(c, "SELECT count(*) FROM health_checks WHERE check_name <>"
		       " 'replication'") > 0);
	/* (event_search_mv holds events from yesterday on: these are past) */
	CHECK(q_int(c, "SELECT count(*) FROM org_analytics_mv") > 0);
	seed_queries(c);
	repl_stop(r);

	/* A restart: migrations once, resumes where it was. */
	lsn = random_ops(n, events, 500);
	r = start_caught_up(n, conninfo, 10000, lsn);
	CHECK(q_int(c, "SELECT count(*) FROM schema_migrations") == 7);
	compare(n, c, true);
	repl_stop(r);
	PQfinish(c);
	node_close(n);
	close(wake_fd);
	wake_fd = -1;
	db_drop();
}

CHECK_TEST_FN(test_resync)
{
	char *conninfo = db_create();
	node *n;
	repl *r;
	PGconn *c;
	uint32_t events;
	uint64_t lsn;
	struct repl_status st;
	wal_reader *rd;

	printf("resync\n");
	/* small segments, removed by snapshots */
	n = catalogued_node(128 << 10, &events);
	for (int round = 0; round < 3; round++) {
		random_ops(n, events, 3000);
		CHECK(node_snapshot(n) == 0);
	}
	CHECK(wal_reader_open(node_wal(n), 1, &rd) == -ENODATA);
	lsn = random_ops(n, events, 300);
	r = start_caught_up(n, conninfo, 2000, lsn);
	repl_status(r, &st);
	CHECK(st.resync_count == 1);
	c = pg_open(conninfo);
	compare(n, c, false);
	seed_queries(c);
	/* then tails as usual */
	lsn = random_ops(n, events, 1000);
	CHECK(catch_up(r, lsn));
	compare(n, c, false);
	case_end(r, c, n);
}

CHECK_TEST_FN(test_corearchive)
{
	char conninfo[1024];
	node *n;
	repl *r;
	PGconn *c;
	struct repl_status st;
	struct core_resp resp;
	uint32_t events;
	uint64_t lsn;
	int64_t ev_rows, bk_rows;

	printf("corearchive\n");
	r = fresh_caught_up(&n, conninfo, sizeof(conninfo), 300, &events, &lsn);
	c = pg_open(conninfo);
	ev_rows = q_int(c, "SELECT count(*) FROM class_events");
	bk_rows = q_int(c, "SELECT count(*) FROM registrations");
	CHECK(ev_rows == events && bk_rows > 0);

	/* Ten years on, everything has ended: the core drops it all. */
	now_ms += INT64_C(3650) * 86400 * 1000;
	resp = call(n, (struct core_req){ .op = CORE_OP_ARCHIVE,
					  .now = now_ms,
					  .u.archive.days = 1 });
	CHECK(resp.code == CORE_OK && resp.count == events);
	lsn = settle(n);
	CHECK(catch_up(r, lsn));
	repl_status(r, &st);
	CHECK(!st.stopped && st.error[0] == '\0');
	CHECK(q_int(c, "SELECT count(*) FROM class_events") == ev_rows);
	CHECK(q_int(c, "SELECT count(*) FROM registrations") == bk_rows);
	CHECK(call(n, (struct core_req){ .op = CORE_OP_EVENT_GET,
					 .now = now_ms,
					 .event_id = 1 })
		      .code == CORE_NO_EVENT);
	printf("  %u events archived in the core; PostgreSQL keeps %" PRId64
	       " events, %" PRId64 " registrations\n",
	       events, ev_rows, bk_rows);
	repl_stop(r);
	node_close(n);
	n = open_node(1 << 20, 0);
	CHECK(n != NULL);
	if (n) {
		CHECK(event_count(n) == 0);
		node_close(n);
	}
	PQfinish(c);
	db_drop();
}

int main(int argc, char **argv) { return repl_test_main(NULL, argc, argv); }
