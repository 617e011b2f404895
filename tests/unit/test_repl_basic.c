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
#include "migrations.h"
#include "repl_test.h"

/* The seed's dashboard query over the known samples (repl_test.h
 * fake_samples) gives their true AVG, p95 (PERCENTILE_CONT: linear
 * between the two nearest ranks) and COUNT. */
static void dashboard_true(PGconn *c)
{
	double v[FAKE_BOOKS], sum = 0, pos, p95;
	unsigned lo;

	for (unsigned i = 0; i < FAKE_BOOKS; i++) {
		v[i] = (double)(uint64_t)(fake_book_ms(i) * 1e6 + 0.5) / 1e6;
		sum += v[i];
	}
	for (unsigned i = 1; i < FAKE_BOOKS; i++) /* insertion sort */
		for (unsigned k = i; k > 0 && v[k - 1] > v[k]; k--) {
			double t = v[k];
			v[k] = v[k - 1];
			v[k - 1] = t;
		}
	pos = 0.95 * (FAKE_BOOKS - 1);
	lo = (unsigned)pos;
	p95 = v[lo] + (pos - lo) * (v[lo + 1] - v[lo]);
	CHECK(q_int(c,
		    "SELECT count(*) FROM (SELECT tags->>'operation' as operation,"
		    " AVG(metric_value) as avg_ms, PERCENTILE_CONT(0.95) WITHIN"
		    " GROUP (ORDER BY metric_value) as p95_ms, COUNT(*) as count"
		    " FROM public.performance_metrics"
		    " WHERE metric_name = 'booking_operation_duration'"
		    " AND recorded_at > now() - interval '24 hours'"
		    " GROUP BY tags->>'operation') d WHERE operation = 'book'"
		    " AND count = %u AND abs(avg_ms - %.9f) < 1e-6"
		    " AND abs(p95_ms - %.9f) < 1e-6",
		    FAKE_BOOKS, sum / FAKE_BOOKS, p95) == 1);
	CHECK(q_int(c,
		    "SELECT count(*) FROM performance_metrics WHERE metric_name"
		    " = 'booking_operation_duration' AND tags = '{\"operation\":"
		    " \"cancel\", \"outcome\": \"error\", \"sample_rate\": 1}'") ==
	      FAKE_CANCELS / 5);
	/* 5 of 25 cancels failed: 20 % is the warning of active_alerts */
	CHECK(q_int(c, "SELECT count(*) FROM active_alerts WHERE alert_type ="
		       " 'booking_errors' AND source = 'cancel' AND severity ="
		       " 'warning'") == 1);
}

CHECK_TEST_FN(test_basic)
{
	struct repl_case x = { 0 };

	printf("basic\n");
	series_edits = true;
	case_db(&x);
	wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CHECK(wake_fd >= 0);
	x.n = catalogued_node(1 << 20, &x.events);
	x.lsn = random_ops(x.n, x.events, 3000);

	/* Invalid configurations are refused. */
	{
		struct repl_config cfg;
		char err[128];
		repl *bad = NULL;

		repl_config_default(&cfg);
		CHECK(repl_start(&cfg, node_wal(x.n), &bad, err, sizeof(err)) ==
		      -EINVAL);
		cfg.conninfo = "postgresql://[bad";
		CHECK(repl_start(&cfg, node_wal(x.n), &bad, err, sizeof(err)) ==
		      -EINVAL);
		repl_status(NULL, &x.st);
		CHECK(x.st.state == REPL_DISABLED);
	}

	x.r = start_caught_up(x.n, x.conninfo, 500, x.lsn);
	x.c = pg_open(x.conninfo);
	CHECK(x.c != NULL);
	compare(x.n, x.c, true);
	CHECK(q_int(x.c, "SELECT applied_lsn FROM bookd.replication_state") ==
	      (int64_t)x.lsn);
	/* the random series edits keep booked events off their pattern:
	 * compare checked each one's flag against the core's */
	printf("  %lld events detached\n",
	       (long long)q_int(x.c, "SELECT count(*) FROM class_events"
				     " WHERE detached"));

	/* The whole log in one transaction (events created and booked in
	 * the same batch), into a second database: the same rows. */
	{
		char first[64], second[1024];
		struct counts cn = { 0 };
		wal_reader *rd = NULL;
		repl *r2;
		PGconn *c2;

		snprintf(first, sizeof(first), "%s", db_name);
		snprintf(second, sizeof(second), "%s", db_create());
		CHECK(wal_reader_open(node_wal(x.n), 1, &rd) == 0);
		while (rd && wal_reader_next(rd, 100000, count_rec, &cn) > 0)
			;
		wal_reader_close(rd);
		r2 = start_caught_up(x.n, second, REPL_BATCH_RECORDS_MAX,
				     x.lsn);
		repl_status(r2, &x.st);
		/* one, but for the edits of events the batch held already:
		 * each starts the next (repl__batch_cut) */
		CHECK(x.st.batch_count >= 1 &&
		      x.st.batch_count <= 1 + cn.edits);
		CHECK(cn.edits > 0);
		c2 = pg_open(second);
		compare(x.n, c2, true);
		PQfinish(c2);
		repl_stop(r2);
		db_drop();
		snprintf(db_name, sizeof(db_name), "%s", first);
	}

	/* Streaming: more decisions while it runs. */
	x.lsn = random_ops(x.n, x.events, 2000);
	CHECK(catch_up(x.r, x.lsn));
	repl_status(x.r, &x.st);
	CHECK(x.st.state == REPL_STREAMING);
	CHECK(x.st.lag_records == 0);
	CHECK(x.st.batch_count > 1);
	compare(x.n, x.c, true);

	/* Metrics, health, views. */
	usleep(1000 * 1000);
	CHECK(repl_refresh_views(x.r) == 0);
	for (int i = 0; i < 100; i++) {
		repl_status(x.r, &x.st);
		if (x.st.refresh_count > 0)
			break;
		usleep(100 * 1000);
	}
	CHECK(x.st.refresh_count > 0);
	CHECK(x.st.metrics_rows == FAKE_BOOKS + FAKE_CANCELS);
	dashboard_true(x.c);
	CHECK(q_int(x.c, "SELECT count(*) FROM health_checks WHERE check_name ="
			 " 'replication' AND status = 'healthy'") > 0);
	CHECK(q_int(x.c, "SELECT count(*) FROM health_checks WHERE check_name ="
			 " 'database'") > 0 ||
	      q_int(x.c,
		    "SELECT count(*) FROM health_checks WHERE check_name <>"
		    " 'replication'") > 0);
	/* (event_search_mv holds events from yesterday on: these are past) */
	CHECK(q_int(x.c, "SELECT count(*) FROM org_analytics_mv") > 0);
	seed_queries(x.c);
	repl_stop(x.r);

	/* A restart: migrations once, resumes where it was. */
	x.lsn = random_ops(x.n, x.events, 500);
	x.r = start_caught_up(x.n, x.conninfo, 10000, x.lsn);
	CHECK(q_int(x.c, "SELECT count(*) FROM bookd.schema_migrations") ==
	      (int64_t)repl_migration_count);
	CHECK(q_int(x.c,
		    "SELECT count(*) FROM pg_tables WHERE schemaname ="
		    " 'public' AND tablename IN ('schema_migrations',"
		    " 'replication_state', 'archived_class_events')") == 0);
	compare(x.n, x.c, true);
	repl_stop(x.r);
	PQfinish(x.c);
	node_close(x.n);
	close(wake_fd);
	wake_fd = -1;
	series_edits = false;
	db_drop();
}

CHECK_TEST_FN(test_resync)
{
	struct repl_case x = { 0 };
	wal_reader *rd;

	printf("resync\n");
	case_db(&x);
	/* small segments, removed by snapshots */
	x.n = catalogued_node(128 << 10, &x.events);
	for (int round = 0; round < 3; round++) {
		random_ops(x.n, x.events, 3000);
		CHECK(node_snapshot(x.n) == 0);
	}
	CHECK(wal_reader_open(node_wal(x.n), 1, &rd) == -ENODATA);
	x.lsn = random_ops(x.n, x.events, 300);
	x.r = start_caught_up(x.n, x.conninfo, 2000, x.lsn);
	repl_status(x.r, &x.st);
	CHECK(x.st.resync_count == 1);
	x.c = pg_open(x.conninfo);
	compare(x.n, x.c, false);
	seed_queries(x.c);
	/* then tails as usual */
	x.lsn = random_ops(x.n, x.events, 1000);
	CHECK(catch_up(x.r, x.lsn));
	compare(x.n, x.c, false);
	case_end(&x);
}

CHECK_TEST_FN(test_corearchive)
{
	struct repl_case x = { 0 };
	struct core_resp resp;
	int64_t ev_rows, bk_rows;

	printf("corearchive\n");
	fresh_caught_up(&x, 300);
	x.c = pg_open(x.conninfo);
	ev_rows = q_int(x.c, "SELECT count(*) FROM class_events");
	bk_rows = q_int(x.c, "SELECT count(*) FROM registrations");
	CHECK(ev_rows == x.events && bk_rows > 0);

	/* Ten years on, everything has ended: the core drops it all. */
	now_ms += INT64_C(3650) * 86400 * 1000;
	resp = call(x.n, (struct core_req){ .op = CORE_OP_ARCHIVE,
					    .now = now_ms,
					    .u.archive.days = 1 });
	CHECK(resp.code == CORE_OK && resp.count == x.events);
	x.lsn = settle(x.n);
	CHECK(catch_up(x.r, x.lsn));
	repl_status(x.r, &x.st);
	CHECK(!x.st.stopped && x.st.error[0] == '\0');
	CHECK(q_int(x.c, "SELECT count(*) FROM class_events") == ev_rows);
	CHECK(q_int(x.c, "SELECT count(*) FROM registrations") == bk_rows);
	CHECK(call(x.n, (struct core_req){ .op = CORE_OP_EVENT_GET,
					   .now = now_ms,
					   .event_id = 1 })
		      .code == CORE_NO_EVENT);
	printf("  %u events archived in the core; PostgreSQL keeps %" PRId64
	       " events, %" PRId64 " registrations\n",
	       x.events, ev_rows, bk_rows);
	repl_stop(x.r);
	node_close(x.n);
	x.n = open_node(1 << 20, 0);
	CHECK(x.n != NULL);
	if (x.n) {
		CHECK(event_count(x.n) == 0);
		node_close(x.n);
	}
	PQfinish(x.c);
	db_drop();
}

int main(int argc, char **argv) { return repl_test_main(NULL, argc, argv); }
