/*
 * bench_repl.c: the replicator (replicator/repl.h) into a real PostgreSQL.
 *
 *   DATABASE_URL=... bench_repl [--bookings N] [--series N] [--rate R]
 *                    [--seconds S] [--batch N] [--streams N]
 *                    [--sync fdatasync|write] [--keep]
 *
 * Works in its own database bookd_bench_<pid> next to DATABASE_URL's
 * (dropped at the end unless --keep).
 * 1. Catch-up: a node gets N daily series (default 100: 12,000 events of
 *    200 seats) and --bookings decisions (default 1,000,000, one booking
 *    each: BOOKING_NEW + NOTIFY records) with the replicator off; then the
 *    replicator starts and the time until PostgreSQL holds the whole log is
 *    measured: log records (entries), decoded records, rows written per
 *    second.
 * 2. Steady: bookings paced at --rate per second (default 50,000) for
 *    --seconds (default 10) while the replicator streams; repl_status is
 *    sampled every 50 ms: lag in seconds and records (mean, p99, max), and
 *    the time to drain once the load stops.
 */
#include "node.h"
#include "repl.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

const char *bench_name = "bench_repl";

#define DEPTH 512
#define LAG_SAMPLE_MAX 100000

static char db_name[64], conninfo[1024];

static void make_db(const char *base)
{
	PQconninfoOption *opts = PQconninfoParse(base, NULL), *o;
	PGconn *c = PQconnectdb(base);
	PGresult *r;
	size_t n = 0;
	char sql[128];

	if (!opts || PQstatus(c) != CONNECTION_OK)
		die("cannot connect to DATABASE_URL");
	snprintf(db_name, sizeof(db_name), "bookd_bench_%d", (int)getpid());
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db_name);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		die(PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	for (o = opts; o->keyword; o++)
		if (o->val && o->val[0] && strcmp(o->keyword, "dbname"))
			n += (size_t)snprintf(conninfo + n,
					      sizeof(conninfo) - n, "%s='%s' ",
					      o->keyword, o->val);
	snprintf(conninfo + n, sizeof(conninfo) - n, "dbname='%s'", db_name);
	PQconninfoFree(opts);
}

static void drop_db(const char *base)
{
	PGconn *c = PQconnectdb(base);
	char sql[128];

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
		 db_name);
	PQclear(PQexec(c, sql));
	PQfinish(c);
}

/* Keeps up to DEPTH bookings in flight; returns how many were answered. */
static uint64_t book(node *n, core_port *p, uint64_t count, uint64_t events,
		     uint64_t *seed, double rate, uint64_t *booked)
{
	struct core_resp out[64];
	uint64_t sent = 0, answered = 0;
	double t0 = seconds();

	while (answered < count) {
		uint64_t allowed = count;

		if (rate > 0) {
			allowed = (uint64_t)((seconds() - t0) * rate);
			if (allowed > count)
				allowed = count;
		}
		sent = bench_book_some(p, sent, allowed, answered, DEPTH, seed,
				       events);
		int k = core_poll(p, out, 64);
		for (int i = 0; i < k; i++)
			*booked += out[i].code == CORE_OK;
		answered += (uint64_t)k;
		ASSERT(answered <= sent);
		if (k == 0 && sent == answered)
			usleep(200);
	}
	(void)n;
	return answered;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/bench_repl.XXXXXX";
	const char *base = getenv("DATABASE_URL");
	uint32_t series = 100, batch = 100000, streams = 0;
	uint64_t bookings = 1000000, seed = 1, booked = 0;
	double rate = 50000, run_s = 10;
	enum wal_sync sync = WAL_SYNC_FDATASYNC;
	bool keep = false;
	struct node_config cfg;
	struct repl_config rc;
	struct repl_status st, st0;
	char err[256];
	node *n;
	repl *r;
	double t0, dt;

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : "";
		if (!strcmp(argv[i], "--keep")) {
			keep = true;
			continue;
		}
		if (!strcmp(argv[i], "--bookings"))
			bookings = strtoull(v, NULL, 10);
		else if (!strcmp(argv[i], "--series"))
			series = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(argv[i], "--rate"))
			rate = strtod(v, NULL);
		else if (!strcmp(argv[i], "--seconds"))
			run_s = strtod(v, NULL);
		else if (!strcmp(argv[i], "--batch"))
			batch = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(argv[i], "--streams"))
			streams = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(argv[i], "--sync"))
			sync = strcmp(v, "write") ? WAL_SYNC_FDATASYNC
						  : WAL_SYNC_WRITE;
		else
			die("usage: bench_repl [--bookings N] [--series N] [--rate R] "
			    "[--seconds S] [--batch N] [--streams N] "
			    "[--sync fdatasync|write] [--keep]");
		i++;
	}
	if (!base || !base[0]) {
		printf("bench_repl: DATABASE_URL not set (eval \"$(scripts/pg.sh start)\")\n");
		return 77;
	}
	if (!mkdtemp(dir))
		die("mkdtemp");
	make_db(base);

	node_config_default(&cfg);
	cfg.data_dir = dir;
	cfg.sync = sync;
	cfg.quiet = true;
	cfg.snapshot_every = 0;
	cfg.core.shard_count = 2;
	cfg.core.port_count = 2;
	cfg.core.event_count_max = series * 121 + 4096;
	uint64_t total = bookings + (uint64_t)(rate * run_s);
	cfg.core.booking_count_max = (uint32_t)(total / 2 + total / 8 + 4096);
	cfg.core.customer_count_max = CUSTOMER_COUNT;
	cfg.core.idem_count_max = 1024;
	cfg.core.ring_size = 1024;
	cfg.core.horizon_days = 119;
	if (node_open(&cfg, &n, err, sizeof(err)) != 0)
		die(err);
	core_port *p = core_port_get(node_core(n), 1);

	static struct core_series_spec spec;
	bench_studio(p, &spec, 200, 20);
	uint64_t events = 0;
	for (uint32_t i = 0; i < series; i++) {
		spec.start_minute = (uint16_t)(360 + i % 900);
		events +=
			call(p, (struct core_req){ .op = CORE_OP_SERIES_CREATE,
						   .now = NOW,
						   .u.series = &spec })
				.count;
	}

	/* 1. Catch-up. */
	t0 = seconds();
	book(n, p, bookings, events, &seed, 0, &booked);
	struct wal_stats ws;
	wal_stats(node_wal(n), &ws);
	node_wait_durable(n, ws.appended_lsn);
	printf("log: %u series, %" PRIu64 " events, %" PRIu64
	       " bookings (%" PRIu64 " booked) in %.1f s; %" PRIu64
	       " log records\n",
	       series, events, bookings, booked, seconds() - t0,
	       ws.appended_lsn);

	repl_config_default(&rc);
	rc.conninfo = conninfo;
	rc.data_dir = dir;
	rc.batch_records = batch;
	if (streams)
		rc.streams = streams;
	rc.refresh_interval_ms = 0;
	rc.quiet = true;
	t0 = seconds();
	if (repl_start(&rc, node_wal(n), &r, err, sizeof(err)) != 0)
		die(err);
	if (repl_wait_applied(r, ws.appended_lsn, 3600 * 1000) != 0) {
		repl_status(r, &st);
		die(st.error);
	}
	dt = seconds() - t0;
	repl_status(r, &st);
	printf("catch-up: %" PRIu64 " log records (%" PRIu64
	       " records, %" PRIu64
	       " rows) in %.2f s (connect and migrations included): %.0f log "
	       "records/s, %.0f records/s, %.0f rows/s; %" PRIu64
	       " transactions, last %.0f ms\n",
	       st.entries_applied, st.records_applied, st.rows_written, dt,
	       (double)st.entries_applied / dt, (double)st.records_applied / dt,
	       (double)st.rows_written / dt, st.batch_count, st.last_batch_ms);

	/* 2. Steady load. */
	if (run_s > 0 && rate > 0) {
		static double lag_s[LAG_SAMPLE_MAX], lag_r[LAG_SAMPLE_MAX];
		uint32_t samples = 0;
		uint64_t answered = 0, want = (uint64_t)(rate * run_s);
		double start = seconds(), next = start;
		struct core_resp out[64];
		uint64_t sent = 0;

		booked = 0;
		st0 = st;
		while (answered < want) {
			uint64_t allowed =
				(uint64_t)((seconds() - start) * rate);
			if (allowed > want)
				allowed = want;
			sent = bench_book_some(p, sent, allowed, answered,
					       DEPTH, &seed, events);
			int k = core_poll(p, out, 64);
			for (int i = 0; i < k; i++)
				booked += out[i].code == CORE_OK;
			answered += (uint64_t)k;
			if (seconds() >= next && samples < LAG_SAMPLE_MAX) {
				repl_status(r, &st);
				lag_s[samples] = st.lag_seconds;
				lag_r[samples++] = (double)st.lag_records;
				next += 0.05;
			}
			if (k == 0 && sent == allowed)
				usleep(100);
		}
		dt = seconds() - start;
		wal_stats(node_wal(n), &ws);
		node_wait_durable(n, ws.appended_lsn);
		double t_end = seconds();
		if (repl_wait_applied(r, ws.appended_lsn, 3600 * 1000) != 0)
			die("steady: replication did not catch up");
		double drain = seconds() - t_end;
		repl_status(r, &st);
		double sum_s = 0, sum_r = 0;
		for (uint32_t i = 0; i < samples; i++)
			sum_s += lag_s[i], sum_r += lag_r[i];
		qsort(lag_s, samples, sizeof(double), cmp_double);
		qsort(lag_r, samples, sizeof(double), cmp_double);
		printf("steady: %" PRIu64 " bookings (%" PRIu64
		       " booked) in %.2f s = "
		       "%.0f/s offered; lag over %u samples: seconds mean %.3f p99 %.3f "
		       "max %.3f, records mean %.0f p99 %.0f max %.0f; drained %.3f s "
		       "after the load; %" PRIu64
		       " transactions (%.0f log records each)\n",
		       answered, booked, dt, (double)answered / dt, samples,
		       samples ? sum_s / samples : 0,
		       samples ? lag_s[samples * 99 / 100] : 0,
		       samples ? lag_s[samples - 1] : 0,
		       samples ? sum_r / samples : 0,
		       samples ? lag_r[samples * 99 / 100] : 0,
		       samples ? lag_r[samples - 1] : 0, drain,
		       st.batch_count - st0.batch_count,
		       st.batch_count > st0.batch_count
			       ? (double)(st.entries_applied -
					  st0.entries_applied) /
					 (double)(st.batch_count -
						  st0.batch_count)
			       : 0);
	}
	repl_stop(r);
	node_close(n);
	if (!keep)
		drop_db(base);
	else
		printf("kept database %s\n", db_name);
	bench_remove_dir(dir);
	return 0;
}
