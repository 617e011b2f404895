/*
 * test_repl_faults.c: the replicator when things fail. kill9: a child
 * process books and replicates; it is SIGKILLed at a random moment (3
 * cycles); the parent recovers the node, replicates, and everything must be
 * equal, once. stop: a row PostgreSQL should not have (the next booking's
 * id): the batch fails, replication stops (state down, stopped, the LSN
 * range and the error in status), applied_lsn stays; once the row is gone, a
 * restart applies everything, once. pgdown (argv[1] == "pgdown", needs
 * BOOKD_PG_DIR: the cluster is stopped with -m immediate under load and
 * started again; run by tests/integration/test_repl_pgdown.sh on its own
 * cluster).
 *
 * PostgreSQL, the node, compare and main: repl_test.h.
 */
#include "repl_test.h"

/* Child: book and replicate until killed. */
static void kill9_child(const char *conninfo, uint64_t child_seed)
{
	node *n = open_node(1 << 20, 0);
	repl *r;
	uint32_t events;

	if (!n)
		_exit(2);
	seed = child_seed;
	now_ms = NOW0 + (int64_t)(child_seed % 1000) * 3600 * 1000;
	r = start_repl(n, conninfo, 50);
	if (!r)
		_exit(3);
	events = event_count(n);
	for (;;) {
		random_op(n, events);
		if (rnd() % 64 == 0)
			usleep(500);
	}
}

CHECK_TEST_FN(test_kill9)
{
	struct repl_case x = { 0 };

	printf("kill9\n");
	case_db(&x);
	fresh_dir();
	x.n = open_node(1 << 20, 0);
	CHECK(x.n != NULL);
	catalogue(x.n);
	settle(x.n);
	node_close(x.n);
	for (int cycle = 0; cycle < 3; cycle++) {
		pid_t pid = fork();
		int status;

		CHECK(pid >= 0);
		if (pid == 0)
			kill9_child(x.conninfo, seed + (uint64_t)cycle * 7919);
		usleep((useconds_t)(700 + rnd() % 900) * 1000);
		CHECK(kill(pid, SIGKILL) == 0);
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		x.c = pg_open(x.conninfo);
		/* On a loaded machine the child may die before its migrations
		 * created replication_state: -2 then, not a failed query. */
		printf("  cycle %d: killed at applied_lsn %" PRId64 "\n", cycle,
		       q_int(x.c,
			     "SELECT (to_regclass('bookd.replication_state') IS NULL)::int")
			       ? -2
			       : q_int(x.c,
				       "SELECT applied_lsn FROM bookd.replication_state"));
		PQfinish(x.c);
	}
	x.n = open_node(1 << 20, 0);
	CHECK(x.n != NULL);
	now_ms = NOW0 + 1000LL * 3600 * 1000;
	x.lsn = settle(x.n);
	x.r = start_caught_up(x.n, x.conninfo, 1000, x.lsn);
	x.c = pg_open(x.conninfo);
	compare(x.n, x.c, true);
	seed_queries(x.c);
	case_end(&x);
}

/* A permanent error stops replication loudly and skips nothing; once the
 * cause is gone, a restart applies from where it stopped. */
CHECK_TEST_FN(test_stop)
{
	struct repl_case x = { 0 };
	struct core_resp b;
	uint64_t before;

	printf("stop\n");
	fresh_caught_up(&x, 500);
	before = x.lsn;
	repl_stop(x.r);
	x.c = pg_open(x.conninfo);

	/* A row PostgreSQL should not have: the next booking's id. */
	b = book_last_open(x.n, x.events, "late-customer");
	CHECK(b.code == CORE_OK);
	PQclear(q(x.c,
		  "INSERT INTO registrations (id, event_id, customer_id, status)"
		  " VALUES (%" PRIu64 ", %" PRIu64 ", 'intruder', 'cancelled')",
		  b.booking.id, b.booking.event_id));
	x.lsn = random_ops(x.n, x.events, 300);
	x.r = start_repl(x.n, x.conninfo, 100);
	CHECK(x.r != NULL);
	CHECK(repl_wait_applied(x.r, x.lsn, WAIT_MS) == -EIO);
	repl_status(x.r, &x.st);
	CHECK(x.st.stopped);
	CHECK(x.st.state == REPL_DOWN);
	CHECK(strstr(x.st.error, "batch LSN") != NULL);
	CHECK(strstr(x.st.error, "registrations_pkey") != NULL);
	CHECK(x.st.applied_lsn >= before && x.st.applied_lsn < b.lsn);
	CHECK(q_int(x.c, "SELECT applied_lsn FROM bookd.replication_state") ==
	      (int64_t)x.st.applied_lsn);
	printf("  stopped at %" PRIu64 ": %s\n", x.st.applied_lsn, x.st.error);
	repl_stop(x.r);

	/* The cause removed: everything, once. */
	PQclear(q(x.c,
		  "DELETE FROM registrations WHERE customer_id = 'intruder'"));
	x.r = start_caught_up(x.n, x.conninfo, 100, x.lsn);
	compare(x.n, x.c, true);
	case_end(&x);
}

/* replication_state moved under a running replicator (as a second one on
 * the same log would move it): the guard of its next batch
 * (repl__pg_update_one) finds no row and stops it loudly, the batch not
 * applied; put back, a restart applies everything once. */
CHECK_TEST_FN(test_moved)
{
	struct repl_case x = { 0 };
	uint64_t at;

	printf("moved\n");
	fresh_caught_up(&x, 300);
	at = x.lsn;
	x.c = pg_open(x.conninfo);
	PQclear(q(x.c,
		  "UPDATE bookd.replication_state SET streams = array_fill(%" PRIu64
		  "::bigint, ARRAY[cardinality(streams)])",
		  at + 1));
	x.lsn = random_ops(x.n, x.events, 100);
	CHECK(repl_wait_applied(x.r, x.lsn, WAIT_MS) == -EIO);
	repl_status(x.r, &x.st);
	CHECK(x.st.stopped && x.st.applied_lsn == at);
	CHECK(strstr(x.st.error, "another replicator applies this log") !=
	      NULL);
	printf("  stopped: %s\n", x.st.error);
	CHECK(q_int(x.c, "SELECT applied_lsn FROM bookd.replication_state") ==
	      (int64_t)at);
	repl_stop(x.r);

	PQclear(q(x.c,
		  "UPDATE bookd.replication_state SET streams = array_fill(%" PRIu64
		  "::bigint, ARRAY[cardinality(streams)])",
		  at));
	x.r = start_caught_up(x.n, x.conninfo, 100, x.lsn);
	compare(x.n, x.c, true);
	case_end(&x);
}

static int pg_ctl(const char *action)
{
	const char *dir = getenv("BOOKD_PG_DIR");
	char cmd[2048];
	const char *as = geteuid() == 0 ? "runuser -u postgres -- " : "";

	if (!strcmp(action, "stop"))
		snprintf(cmd, sizeof(cmd),
			 "%s/usr/lib/postgresql/15/bin/pg_ctl -D %s/data -m immediate"
			 " -w stop >/dev/null 2>&1",
			 as, dir);
	else
		snprintf(cmd, sizeof(cmd),
			 "%s/usr/lib/postgresql/15/bin/pg_ctl -D %s/data -l %s/server.log"
			 " -w -t 60 -o \"-p 5432 -k %s -c listen_addresses='' -c fsync=off"
			 " -c synchronous_commit=off -c full_page_writes=off"
			 " -c max_connections=50 -c timezone=UTC\" start >/dev/null 2>&1",
			 as, dir, dir, dir);
	return system(cmd);
}

CHECK_TEST_FN(test_pgdown)
{
	struct repl_case x = { 0 };

	if (!getenv("BOOKD_PG_DIR") || !strstr(base_url, "port=5432")) {
		printf("pgdown: skipped (needs BOOKD_PG_DIR of a pg.sh cluster)\n");
		return;
	}
	printf("pgdown\n");
	case_db(&x);
	/* small segments: snapshots could drop them */
	x.n = catalogued_node(128 << 10, &x.events);
	x.r = start_repl(x.n, x.conninfo, 200);
	CHECK(x.r != NULL);
	for (int i = 0; i < 1500; i++)
		random_op(x.n, x.events);
	CHECK(pg_ctl("stop") == 0);
	for (int i = 0; i < 3000; i++) { /* bookings go on */
		random_op(x.n, x.events);
		if (i % 100 == 0)
			usleep(10000);
		if (i % 1000 == 999) /* and snapshots: the log keeps what */
			CHECK(node_snapshot(x.n) == 0); /* is not replicated */
	}
	usleep(500 * 1000);
	repl_status(x.r, &x.st);
	CHECK(x.st.state == REPL_DOWN);
	CHECK(x.st.lag_records > 0);
	CHECK(x.st.lag_seconds > 0.2);
	printf("  down: lag %" PRIu64 " records, %.1f s, %s\n",
	       x.st.lag_records, x.st.lag_seconds, x.st.error);
	CHECK(pg_ctl("start") == 0);
	x.lsn = random_ops(x.n, x.events, 1000);
	CHECK(catch_up(x.r, x.lsn));
	repl_status(x.r, &x.st);
	CHECK(x.st.reconnect_count > 0);
	CHECK(x.st.resync_count == 0); /* wal_retain held the log back */
	x.c = pg_open(x.conninfo);
	compare(x.n, x.c,
		false); /* (the log's start went with the snapshots) */
	seed_queries(x.c);
	case_end(&x);
}

int main(int argc, char **argv) { return repl_test_main("pgdown", argc, argv); }
