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
	char *conninfo = db_create();
	node *n;
	repl *r;
	PGconn *c;
	uint64_t lsn;

	printf("kill9\n");
	fresh_dir();
	n = open_node(1 << 20, 0);
	CHECK(n != NULL);
	catalogue(n);
	settle(n);
	node_close(n);
	for (int cycle = 0; cycle < 3; cycle++) {
		pid_t pid = fork();
		int status;

		CHECK(pid >= 0);
		if (pid == 0)
			kill9_child(conninfo, seed + (uint64_t)cycle * 7919);
		usleep((useconds_t)(700 + rnd() % 900) * 1000);
		CHECK(kill(pid, SIGKILL) == 0);
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		c = pg_open(conninfo);
		/* On a loaded machine the child may die before its migrations
		 * created replication_state: -2 then, not a failed query. */
		printf("  cycle %d: killed at applied_lsn %" PRId64 "\n", cycle,
		       q_int(c,
			     "SELECT (to_regclass('replication_state') IS NULL)::int")
			       ? -2
			       : q_int(c,
				       "SELECT applied_lsn FROM replication_state"));
		PQfinish(c);
	}
	n = open_node(1 << 20, 0);
	CHECK(n != NULL);
	now_ms = NOW0 + 1000LL * 3600 * 1000;
	lsn = settle(n);
	r = start_caught_up(n, conninfo, 1000, lsn);
	c = pg_open(conninfo);
	compare(n, c, true);
	seed_queries(c);
	case_end(r, c, n);
}

/* A permanent error stops replication loudly and skips nothing; once the
 * cause is gone, a restart applies from where it stopped. */
CHECK_TEST_FN(test_stop)
{
	char conninfo[1024];
	node *n;
	repl *r;
	PGconn *c;
	struct repl_status st;
	struct core_resp b;
	uint32_t events;
	uint64_t lsn, before;

	printf("stop\n");
	r = fresh_caught_up(&n, conninfo, sizeof(conninfo), 500, &events,
			    &before);
	repl_stop(r);
	c = pg_open(conninfo);

	/* A row PostgreSQL should not have: the next booking's id. */
	b = book_last_open(n, events, "late-customer");
	CHECK(b.code == CORE_OK);
	PQclear(q(c,
		  "INSERT INTO registrations (id, event_id, customer_id, status)"
		  " VALUES (%" PRIu64 ", %" PRIu64 ", 'intruder', 'cancelled')",
		  b.booking.id, b.booking.event_id));
	lsn = random_ops(n, events, 300);
	r = start_repl(n, conninfo, 100);
	CHECK(r != NULL);
	CHECK(repl_wait_applied(r, lsn, WAIT_MS) == -EIO);
	repl_status(r, &st);
	CHECK(st.stopped);
	CHECK(st.state == REPL_DOWN);
	CHECK(strstr(st.error, "batch LSN") != NULL);
	CHECK(strstr(st.error, "registrations_pkey") != NULL);
	CHECK(st.applied_lsn >= before && st.applied_lsn < b.lsn);
	CHECK(q_int(c, "SELECT applied_lsn FROM replication_state") ==
	      (int64_t)st.applied_lsn);
	printf("  stopped at %" PRIu64 ": %s\n", st.applied_lsn, st.error);
	repl_stop(r);

	/* The cause removed: everything, once. */
	PQclear(q(c,
		  "DELETE FROM registrations WHERE customer_id = 'intruder'"));
	r = start_caught_up(n, conninfo, 100, lsn);
	compare(n, c, true);
	case_end(r, c, n);
}

/* replication_state moved under a running replicator (as a second one on
 * the same log would move it): the guard of its next batch
 * (repl__pg_update_one) finds no row and stops it loudly, the batch not
 * applied; put back, a restart applies everything once. */
CHECK_TEST_FN(test_moved)
{
	char conninfo[1024];
	node *n;
	repl *r;
	PGconn *c;
	struct repl_status st;
	uint32_t events;
	uint64_t lsn, at;

	printf("moved\n");
	r = fresh_caught_up(&n, conninfo, sizeof(conninfo), 300, &events, &at);
	c = pg_open(conninfo);
	PQclear(q(c,
		  "UPDATE replication_state SET streams = array_fill(%" PRIu64
		  "::bigint, ARRAY[cardinality(streams)])",
		  at + 1));
	lsn = random_ops(n, events, 100);
	CHECK(repl_wait_applied(r, lsn, WAIT_MS) == -EIO);
	repl_status(r, &st);
	CHECK(st.stopped && st.applied_lsn == at);
	CHECK(strstr(st.error, "another replicator applies this log") != NULL);
	printf("  stopped: %s\n", st.error);
	CHECK(q_int(c, "SELECT applied_lsn FROM replication_state") ==
	      (int64_t)at);
	repl_stop(r);

	PQclear(q(c,
		  "UPDATE replication_state SET streams = array_fill(%" PRIu64
		  "::bigint, ARRAY[cardinality(streams)])",
		  at));
	r = start_caught_up(n, conninfo, 100, lsn);
	compare(n, c, true);
	case_end(r, c, n);
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
	char *conninfo;
	node *n;
	repl *r;
	PGconn *c;
	uint32_t events;
	uint64_t lsn;
	struct repl_status st;

	if (!getenv("BOOKD_PG_DIR") || !strstr(base_url, "port=5432")) {
		printf("pgdown: skipped (needs BOOKD_PG_DIR of a pg.sh cluster)\n");
		return;
	}
	printf("pgdown\n");
	conninfo = db_create();
	/* small segments: snapshots could drop them */
	n = catalogued_node(128 << 10, &events);
	r = start_repl(n, conninfo, 200);
	CHECK(r != NULL);
	for (int i = 0; i < 1500; i++)
		random_op(n, events);
	CHECK(pg_ctl("stop") == 0);
	for (int i = 0; i < 3000; i++) { /* bookings go on */
		random_op(n, events);
		if (i % 100 == 0)
			usleep(10000);
		if (i % 1000 == 999) /* and snapshots: the log keeps what */
			CHECK(node_snapshot(n) == 0); /* is not replicated */
	}
	usleep(500 * 1000);
	repl_status(r, &st);
	CHECK(st.state == REPL_DOWN);
	CHECK(st.lag_records > 0);
	CHECK(st.lag_seconds > 0.2);
	printf("  down: lag %" PRIu64 " records, %.1f s, %s\n", st.lag_records,
	       st.lag_seconds, st.error);
	CHECK(pg_ctl("start") == 0);
	lsn = random_ops(n, events, 1000);
	CHECK(catch_up(r, lsn));
	repl_status(r, &st);
	CHECK(st.reconnect_count > 0);
	CHECK(st.resync_count == 0); /* wal_retain held the log back */
	c = pg_open(conninfo);
	compare(n, c, false); /* (the log's start went with the snapshots) */
	seed_queries(c);
	case_end(r, c, n);
}

int main(int argc, char **argv) { return repl_test_main("pgdown", argc, argv); }
