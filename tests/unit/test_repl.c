/*
 * test_repl.c: the replicator (replicator/repl.h) against a real
 * PostgreSQL 15 (DATABASE_URL; exit 77 without it). Each case works in its
 * own database (CREATE DATABASE bookd_repl_<pid>_<n>), dropped at the end.
 *
 *   basic    a node driven through bookings, waitlists, cancellations and
 *            promotions, holds that expire, payments (succeeded, failed,
 *            mismatched, late), capacity changes and event cancels; then
 *            PostgreSQL must equal the core row for row (every event's
 *            counters, capacity, status, instructor, start; every booking's
 *            status, customer, hold; every waitlisted booking's place), the
 *            log's records must each be there once (events, bookings,
 *            payments, notifications), the seed's debug and dashboard
 *            queries run and the booking-conflicts one returns no row,
 *            every month holding an event has its partition; a restart
 *            applies no migration twice; metrics, health rows and a view
 *            refresh arrive.
 *   kill9    a child process books and replicates; it is SIGKILLed at a
 *            random moment (3 cycles); the parent recovers the node,
 *            replicates, and everything must be equal, once.
 *   resync   the log before the snapshots was removed and the database is
 *            new: the replicator applies the newest snapshot, then tails.
 *   stop     a row PostgreSQL should not have (the next booking's id): the
 *            batch fails, replication stops (state down, stopped, the LSN
 *            range and the error in status), applied_lsn stays; once the
 *            row is gone, a restart applies everything, once.
 *   streams  3 streams; a trigger refuses one event's registrations with
 *            SQLSTATE 40001: its stream stays behind (error names it, not
 *            stopped) while the others commit past it, also across a
 *            restart asking 2 (the stored 3 kept); the trigger off, it
 *            catches up, everything once. Then restarts with 1 and 4
 *            streams, and a row with streams NULL (from before streams):
 *            each equal, all elements at applied_lsn, the asked count.
 *   archive  the month of the busy events is archived
 *            (archive_class_events_month) while more decisions on them
 *            follow: replication goes on, their registrations equal the
 *            core, their rows stay in the renamed partition only, and an
 *            event missing without being archived still stops it.
 *   corearchive  the core archives every event (CORE_OP_ARCHIVE, a log
 *            record of its own): replication goes on past it, not stopped,
 *            and PostgreSQL keeps every event and booking row; the node
 *            restarted replays the archive (no event in memory).
 *   pgdown   (argv[1] == "pgdown", needs BOOKD_PG_DIR: the cluster is
 *            stopped with -m immediate under load and started again; run
 *            by tests/integration/test_repl_pgdown.sh on its own cluster).
 *
 *     TEST_REPL_SEED=n ./test_repl [basic|kill9|resync|stop|streams|archive|pgdown]
 */
#include "entry.h"
#include "node.h"
#include "repl.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define NOW0 INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define OP_MS 1000
#define HOLD_MS 20000
#define CUSTOMER_COUNT 40
#define WAIT_MS 60000

static uint64_t seed, seed0;
static char base_dir[] = "/tmp/test_repl.XXXXXX";
static char data_dir[300];
static int wake_fd = -1; /* basic: the replicator wakes on the log's eventfd */
static const char *base_url;


static uint64_t rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

/* ---- PostgreSQL helpers ---- */

/* base conninfo with another dbname, as key=value pairs. */
static char *conninfo_for(const char *db)
{
	PQconninfoOption *opts = PQconninfoParse(base_url, NULL), *o;
	static char out[1024];
	size_t n = 0;

	if (!opts)
		return NULL;
	for (o = opts; o->keyword; o++) {
		if (!o->val || !o->val[0] || !strcmp(o->keyword, "dbname"))
			continue;
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s='%s' ",
				      o->keyword, o->val);
	}
	snprintf(out + n, sizeof(out) - n, "dbname='%s'", db);
	PQconninfoFree(opts);
	return out;
}

static PGconn *pg_open(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

static PGresult *q(PGconn *c, const char *fmt, ...)
{
	char sql[4096];
	va_list ap;
	PGresult *r;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK &&
	    PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "query failed: %s\n  %s", sql,
			PQresultErrorMessage(r));
		check_fail_count++;
	}
	return r;
}

static int64_t q_int(PGconn *c, const char *fmt, ...)
{
	char sql[4096];
	va_list ap;
	PGresult *r;
	int64_t v = -1;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	r = q(c, "%s", sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

static char db_name[64];

static char *db_create(void)
{
	static int n;
	PGconn *c = pg_open(base_url);

	if (!c)
		return NULL;
	snprintf(db_name, sizeof(db_name), "bookd_repl_%d_%d_%u", (int)getpid(),
		 n++, (unsigned)(rnd() % 100000));
	PQclear(q(c, "CREATE DATABASE %s", db_name));
	PQfinish(c);
	return conninfo_for(db_name);
}

static void db_drop_name(const char *name)
{
	PGconn *c = pg_open(base_url);
	if (!c)
		return;
	PQclear(q(c, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name));
	PQfinish(c);
}

static void db_drop(void)
{
	db_drop_name(db_name);
}

/* ---- the node ---- */

static int rm_one(const char *p, const struct stat *sb, int f, struct FTW *w)
{
	(void)sb, (void)f, (void)w;
	return remove(p);
}

static void fresh_dir(void)
{
	static int n;
	snprintf(data_dir, sizeof(data_dir), "%s/d%d", base_dir, n++);
}

static node *open_node(uint64_t segment_size, uint64_t snapshot_every)
{
	struct node_config cfg;
	char err[256];
	node *n = NULL;

	node_config_default(&cfg);
	cfg.data_dir = data_dir;
	cfg.quiet = true;
	cfg.segment_size = segment_size;
	cfg.snapshot_every = snapshot_every;
	cfg.core.shard_count = 2;
	cfg.core.port_count = 2;
	cfg.core.event_count_max = 4096;
	cfg.core.booking_count_max = 1 << 16;
	cfg.core.customer_count_max = 1024;
	cfg.core.idem_count_max = 1 << 14;
	cfg.core.catalog_count_max = 64;
	cfg.core.ring_size = 64;
	cfg.core.hold_ms = HOLD_MS;
	if (wake_fd >= 0) {
		cfg.wake_fds = &wake_fd;
		cfg.wake_fd_count = 1;
	}
	if (node_open(&cfg, &n, err, sizeof(err)) != 0) {
		fprintf(stderr, "node_open: %s\n", err);
		return NULL;
	}
	return n;
}

static int64_t now_ms = NOW0;

static struct core_resp call(node *n, struct core_req req)
{
	struct core_resp r;

	memset(&r, 0, sizeof(r));
	if (core_call(core_port_get(node_core(n), 0), &req, &r) != 0)
		r.code = CORE_FULL;
	return r;
}

static uint64_t catalogue(node *n)
{
	static struct core_series_spec s[2];
	struct core_req req = { .op = CORE_OP_ORG_CREATE, .now = now_ms };
	struct core_resp r;
	uint64_t lsn = 0;

	strcpy(req.u.cat.name, "Studio\tOne \\ \xc3\xa9t\xff");
	strcpy(req.u.cat.timezone, "Europe/Berlin");
	CHECK(call(n, req).code == CORE_OK);
	req.op = CORE_OP_LOCATION_CREATE;
	req.u.cat.org_id = 1;
	strcpy(req.u.cat.name, "Main hall");
	CHECK(call(n, req).code == CORE_OK);
	req.op = CORE_OP_INSTRUCTOR_CREATE;
	strcpy(req.u.cat.name, "Ana");
	CHECK(call(n, req).code == CORE_OK);
	strcpy(req.u.cat.name, "Ben");
	CHECK(call(n, req).code == CORE_OK);
	req.op = CORE_OP_CUSTOMER_UPSERT;
	strcpy(req.customer_id, "c1");
	strcpy(req.u.cat.email, "c1@example.com");
	strcpy(req.u.cat.name, "Customer One");
	CHECK(call(n, req).code == CORE_OK);
	for (int i = 0; i < 2; i++) {
		s[i].org_id = s[i].location_id = s[i].instructor_id = 1;
		strcpy(s[i].title, i ? "Paid pilates" : "Free yoga");
		s[i].capacity = 3;
		s[i].waitlist_capacity = 2;
		s[i].price_cents = i ? 1500 : 0;
		strcpy(s[i].currency, i ? "eur" : "");
		strcpy(s[i].timezone, "Europe/Berlin");
		s[i].weekday_mask = i ? 0x15 : 0x7f;
		s[i].start_minute = 18 * 60 + 30 * i;
		s[i].duration_min = 60;
		s[i].first_date = (struct core_date){ 2026, 1, 1 };
		s[i].skip_count = 1;
		s[i].skip[0] = (struct core_date){ 2026, 1, 6 };
		r = call(n, (struct core_req){ .op = CORE_OP_SERIES_CREATE,
					       .now = now_ms, .u.series = &s[i] });
		CHECK(r.code == CORE_OK);
		lsn = r.lsn;
	}
	return lsn;
}

static uint32_t event_count(node *n)
{
	uint32_t id = 1;
	while (call(n, (struct core_req){ .op = CORE_OP_EVENT_GET, .now = now_ms,
					  .event_id = id }).code == CORE_OK)
		id++;
	return id - 1;
}

/* One random decision; the events are 1..events (a few busy ones). */
static uint64_t random_op(node *n, uint32_t events)
{
	struct core_req req = { .now = (now_ms += OP_MS) };
	uint64_t ev = 1 + rnd() % (events < 12 ? events : 12);
	uint32_t k = (uint32_t)(rnd() % 100);
	struct core_resp r;

	if (rnd() % 50 == 0)
		ev = 1 + rnd() % events;
	if (k < 50) {
		req.op = CORE_OP_BOOK;
		req.event_id = ev;
		snprintf(req.customer_id, sizeof(req.customer_id), "c%u",
			 (unsigned)(1 + rnd() % CUSTOMER_COUNT));
		req.u.book.payment = rnd() % 8 == 0 ? CORE_PAY_NONE : CORE_PAY_AUTO;
		req.idem = (struct core_idem){ rnd() | 1, rnd(), rnd() };
	} else if (k < 72) {
		req.op = CORE_OP_CANCEL;
		req.booking_id = ev << 24 | (1 + rnd() % 8);
		req.idem = (struct core_idem){ rnd() | 1, rnd(), rnd() };
	} else if (k < 90) {
		uint32_t p = (uint32_t)(rnd() % 10);

		req.op = CORE_OP_PAY;
		req.booking_id = ev << 24 | (1 + rnd() % 8);
		req.u.pay.succeeded = p < 7;
		req.u.pay.amount_cents = p == 0 ? 999 : 1500;
		strcpy(req.u.pay.currency, "eur");
		req.u.pay.payment_ref = rnd();
	} else if (k < 98) {
		req.op = CORE_OP_EVENT_PATCH;
		req.event_id = ev;
		req.u.patch.capacity = (int64_t)(rnd() % 6);
		req.u.patch.instructor_id = rnd() % 3 == 0 ? 1 + rnd() % 2 : 0;
	} else {
		req.op = CORE_OP_EVENT_PATCH;
		req.event_id = 1 + rnd() % events;
		req.u.patch.capacity = -1;
		req.u.patch.cancel = rnd() % 4 == 0;
	}
	r = call(n, req);
	return r.lsn;
}

/* Expire what is due at now on every shard, then wait for the log. */
static uint64_t settle(node *n)
{
	struct core_req req = { .op = CORE_OP_TICK, .now = now_ms };
	struct wal_stats ws;

	call(n, req);
	wal_stats(node_wal(n), &ws);
	CHECK(node_wait_durable(n, ws.appended_lsn) == 0);
	return ws.appended_lsn;
}

/* ---- PostgreSQL == core ---- */

struct counts {
	uint64_t events, bookings, payments, notifications;
};

static int count_rec(void *ctx, uint64_t lsn, const void *p, size_t size)
{
	struct counts *c = ctx;
	struct core_rec r;
	size_t pos = 0;
	(void)lsn;

	while (core_entry_next(p, size, &pos, &r) > 0) {
		c->events += r.type == CORE_REC_EVENT_CREATE;
		c->bookings += r.type == CORE_REC_BOOKING_NEW;
		c->payments += r.type == CORE_REC_PAYMENT;
		c->notifications += r.type == CORE_REC_NOTIFY;
	}
	return 0;
}

static void compare(node *n, PGconn *c, bool whole_log)
{
	uint32_t events = event_count(n), bookings = 0, waiting = 0;
	PGresult *er, *br, *wr;
	unsigned bad = check_fail_count;

	er = q(c, "SELECT id, capacity, reg_count, held_count, waitlist_count,"
		  " status, coalesce(instructor_id, 0),"
		  " (extract(epoch FROM start_at) * 1000)::bigint, title,"
		  " series_id, duration_min FROM class_events ORDER BY id");
	br = q(c, "SELECT id, customer_id, status, coalesce((extract(epoch FROM"
		  " hold_expires_at) * 1000)::bigint, 0) FROM registrations ORDER BY id");
	wr = q(c, "SELECT booking_id, rank() OVER (PARTITION BY event_id ORDER BY"
		  " position) FROM event_waitlists WHERE promoted_at IS NULL AND"
		  " left_at IS NULL ORDER BY booking_id");
	CHECK(PQntuples(er) == (int)events);
	for (uint32_t id = 1; id <= events && (int)id <= PQntuples(er); id++) {
		struct core_event_view v = call(n, (struct core_req){
			.op = CORE_OP_EVENT_GET, .now = now_ms, .event_id = id }).event;
		int row = (int)id - 1;

		CHECK(strtoull(PQgetvalue(er, row, 0), NULL, 10) == id);
		CHECK(strtoul(PQgetvalue(er, row, 1), NULL, 10) == v.capacity);
		CHECK(strtoul(PQgetvalue(er, row, 2), NULL, 10) == v.booked);
		CHECK(strtoul(PQgetvalue(er, row, 3), NULL, 10) == v.held);
		CHECK(strtoul(PQgetvalue(er, row, 4), NULL, 10) == v.waitlist_length);
		CHECK(strcmp(PQgetvalue(er, row, 5),
			     v.status == CORE_EVENT_CANCELLED ? "cancelled"
							      : "scheduled") == 0);
		CHECK(strtoull(PQgetvalue(er, row, 6), NULL, 10) == v.instructor_id);
		CHECK(strtoll(PQgetvalue(er, row, 7), NULL, 10) == v.start_at);
		CHECK(strcmp(PQgetvalue(er, row, 8), v.title) == 0);
		CHECK(strtoull(PQgetvalue(er, row, 9), NULL, 10) == v.series_id);
		CHECK(strtoul(PQgetvalue(er, row, 10), NULL, 10) == v.duration_min);
		if (check_fail_count != bad) {
			fprintf(stderr, "event %u: core cap %u booked %u held %u wl %u "
				"status %u\n", id, v.capacity, v.booked, v.held,
				v.waitlist_length, v.status);
			bad = check_fail_count;
		}
		for (uint32_t seq = 1;; seq++) {
			struct core_resp r = call(n, (struct core_req){
				.op = CORE_OP_BOOKING_GET, .now = now_ms,
				.booking_id = (uint64_t)id << 24 | seq });
			int b;

			if (r.code != CORE_OK)
				break;
			b = (int)bookings++;
			if (b >= PQntuples(br)) {
				CHECK(!"booking missing in registrations");
				continue;
			}
			CHECK(strtoull(PQgetvalue(br, b, 0), NULL, 10) == r.booking.id);
			CHECK(strcmp(PQgetvalue(br, b, 1), r.booking.customer_id) == 0);
			CHECK(strcmp(PQgetvalue(br, b, 2),
				     core_booking_status_name(r.booking.status)) == 0);
			CHECK(strtoll(PQgetvalue(br, b, 3), NULL, 10) ==
			      r.booking.hold_expires_at);
			if (r.booking.status == CORE_BOOKING_WAITLISTED) {
				int w = (int)waiting++;
				CHECK(w < PQntuples(wr));
				if (w < PQntuples(wr)) {
					CHECK(strtoull(PQgetvalue(wr, w, 0), NULL, 10) ==
					      r.booking.id);
					CHECK(strtoul(PQgetvalue(wr, w, 1), NULL, 10) ==
					      r.booking.position);
				}
			}
			if (check_fail_count != bad) {
				fprintf(stderr, "booking %" PRIu64 ": core %s hold %" PRId64
					" pos %u; pg %s\n", r.booking.id,
					core_booking_status_name(r.booking.status),
					r.booking.hold_expires_at, r.booking.position,
					b < PQntuples(br) ? PQgetvalue(br, b, 2) : "-");
				bad = check_fail_count;
			}
		}
	}
	CHECK(PQntuples(br) == (int)bookings);
	CHECK(PQntuples(wr) == (int)waiting);
	printf("  compared %u events, %u bookings (%u waitlisted)\n", events,
	       bookings, waiting);
	PQclear(er);
	PQclear(br);
	PQclear(wr);

	/* Every booking's customer has its row (implied ones are inserted by
	 * the stream their id hashes to, also after a partial commit). */
	CHECK(q_int(c, "SELECT count(*) FROM registrations r WHERE NOT EXISTS"
		       " (SELECT 1 FROM customers u WHERE u.id = r.customer_id)") == 0);

	/* The seed's booking-conflicts query: no row. */
	CHECK(q_int(c, "SELECT count(*) FROM (SELECT event_id, count(*) AS"
		       " registration_count, capacity, reg_count FROM"
		       " public.registrations r JOIN public.class_events e ON"
		       " e.id = r.event_id WHERE r.status = 'confirmed' GROUP BY"
		       " event_id, capacity, reg_count HAVING count(*) != reg_count) x")
	      == 0);
	/* Counters = registrations, for every status. */
	CHECK(q_int(c, "SELECT count(*) FROM class_events e WHERE"
		       " e.held_count <> (SELECT count(*) FROM registrations r WHERE"
		       " r.event_id = e.id AND r.status = 'pending_payment') OR"
		       " e.waitlist_count <> (SELECT count(*) FROM registrations r"
		       " WHERE r.event_id = e.id AND r.status = 'waitlisted')") == 0);
	/* A waiting row <=> a waitlisted registration. */
	CHECK(q_int(c, "SELECT count(*) FROM event_waitlists w JOIN registrations r"
		       " ON r.id = w.booking_id WHERE (w.promoted_at IS NULL AND"
		       " w.left_at IS NULL) <> (r.status = 'waitlisted')") == 0);
	/* Every month holding an event has its partition (and rows are in it). */
	CHECK(q_int(c, "SELECT count(*) FROM class_events e WHERE"
		       " e.tableoid::regclass::text <> 'class_events_' ||"
		       " to_char(e.start_at AT TIME ZONE 'UTC', 'YYYY_MM')") == 0);
	CHECK(q_int(c, "SELECT count(DISTINCT to_char(start_at AT TIME ZONE 'UTC',"
		       " 'YYYY_MM')) FROM class_events") >= 1);
	/* Every customer of a booking is a customer row. */
	CHECK(q_int(c, "SELECT count(*) FROM registrations r WHERE NOT EXISTS"
		       " (SELECT 1 FROM customers c WHERE c.id = r.customer_id)") == 0);
	if (whole_log) { /* each record of the log once */
		struct counts cn = { 0 };
		wal_reader *rd = NULL;

		CHECK(wal_reader_open(node_wal(n), 1, &rd) == 0);
		if (!rd)
			return;
		while (wal_reader_next(rd, 100000, count_rec, &cn) > 0)
			;
		wal_reader_close(rd);
		CHECK(q_int(c, "SELECT count(*) FROM class_events") == (int64_t)cn.events);
		CHECK(q_int(c, "SELECT count(*) FROM registrations") ==
		      (int64_t)cn.bookings);
		CHECK(q_int(c, "SELECT count(*) FROM payments") == (int64_t)cn.payments);
		CHECK(q_int(c, "SELECT count(*) FROM notifications") ==
		      (int64_t)cn.notifications);
		printf("  log: %" PRIu64 " events, %" PRIu64 " bookings, %" PRIu64
		       " payments, %" PRIu64 " notifications: each once\n",
		       cn.events, cn.bookings, cn.payments, cn.notifications);
	}
}

/* The seed's Debug and Dashboard queries, unchanged. */
static void seed_queries(PGconn *c)
{
	static const char *const sql[] = {
		"SELECT schemaname, tablename,"
		" pg_size_pretty(pg_total_relation_size(schemaname||'.'||tablename)) as size"
		" FROM pg_tables WHERE tablename LIKE 'class_events_%'"
		" ORDER BY pg_total_relation_size(schemaname||'.'||tablename) DESC",
		"SELECT event_id, count(*) as registration_count, capacity, reg_count"
		" FROM public.registrations r JOIN public.class_events e ON e.id = r.event_id"
		" WHERE r.status = 'confirmed' GROUP BY event_id, capacity, reg_count"
		" HAVING count(*) != reg_count",
		"SELECT event_id, count(*) as waitlist_size,"
		" count(*) FILTER (WHERE promoted_at IS NOT NULL) as promoted_count"
		" FROM public.event_waitlists GROUP BY event_id ORDER BY waitlist_size DESC",
		"SELECT tags->>'operation' as operation, AVG(metric_value) as avg_ms,"
		" PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY metric_value) as p95_ms,"
		" COUNT(*) as count FROM public.performance_metrics"
		" WHERE metric_name = 'booking_operation_duration'"
		" AND recorded_at > now() - interval '24 hours' GROUP BY tags->>'operation'",
		"SELECT * FROM public.active_alerts",
		"SELECT public.get_system_health_summary()",
		"SELECT public.health_check_database()",
		"SELECT public.get_booking_performance_summary()",
		"SELECT public.refresh_all_materialized_views()",
		"SELECT count(*) FROM public.event_search_mv",
		"SELECT count(*) FROM public.customer_dashboard_mv",
		"SELECT count(*) FROM public.instructor_schedule_mv",
		"SELECT count(*) FROM public.org_analytics_mv",
	};
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		PGresult *r = PQexec(c, sql[i]);
		CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			fprintf(stderr, "seed query %zu: %s", i,
				PQresultErrorMessage(r));
		if (i == 1)
			CHECK(PQntuples(r) == 0); /* no booking conflict */
		PQclear(r);
	}
}

/* ---- the replicator ---- */

static struct repl_op_stat fake_ops[2];
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;

/* The server's cumulative counters; two replicators may ask at once. */
static unsigned fake_metrics(void *ctx, struct repl_op_stat *out, unsigned cap)
{
	(void)ctx;
	pthread_mutex_lock(&fake_lock);
	strcpy(fake_ops[0].operation, "book");
	strcpy(fake_ops[1].operation, "cancel");
	fake_ops[0].count += 1000;
	fake_ops[0].ns_total += 1000 * 250000ull; /* 0.25 ms each */
	fake_ops[1].count += 10;
	fake_ops[1].error_count += 1;
	fake_ops[1].ns_total += 10 * 1000000ull;
	memcpy(out, fake_ops, (cap < 2 ? cap : 2) * sizeof(*out));
	pthread_mutex_unlock(&fake_lock);
	return cap < 2 ? cap : 2;
}

/* streams 0: the default count. */
static repl *start_repl_streams(node *n, const char *conninfo, uint32_t batch,
				uint32_t streams)
{
	struct repl_config cfg;
	char err[256];
	repl *r = NULL;

	repl_config_default(&cfg);
	if (streams)
		cfg.streams = streams;
	cfg.conninfo = conninfo;
	cfg.data_dir = data_dir;
	cfg.batch_records = batch;
	cfg.batch_ms = 20;
	cfg.metrics_interval_ms = 300;
	cfg.health_interval_ms = 300;
	cfg.refresh_interval_ms = 0;
	cfg.backoff_min_ms = 50;
	cfg.backoff_max_ms = 400;
	cfg.quiet = getenv("TEST_REPL_VERBOSE") == NULL;
	cfg.metrics = fake_metrics;
	cfg.wake_fd = wake_fd;
	if (repl_start(&cfg, node_wal(n), &r, err, sizeof(err)) != 0) {
		fprintf(stderr, "repl_start: %s\n", err);
		return NULL;
	}
	return r;
}

static repl *start_repl(node *n, const char *conninfo, uint32_t batch)
{
	return start_repl_streams(n, conninfo, batch, 0);
}

static bool catch_up(repl *r, uint64_t lsn)
{
	struct repl_status st;
	int rc = repl_wait_applied(r, lsn, WAIT_MS);

	repl_status(r, &st);
	if (rc)
		fprintf(stderr, "catch-up to %" PRIu64 ": %s (applied %" PRIu64
			", %s: %s)\n", lsn, strerror(-rc), st.applied_lsn,
			repl_state_name(st.state), st.error);
	return rc == 0;
}

/* A fresh database (conninfo) and node: the catalogue and `ops` random
 * decisions, settled at *lsn; *events their count. */
static node *fresh_node(char *conninfo, size_t size, int ops, uint32_t *events,
			uint64_t *lsn)
{
	node *n;

	snprintf(conninfo, size, "%s", db_create());
	fresh_dir();
	n = open_node(1 << 20, 0);
	CHECK(n != NULL);
	catalogue(n);
	*events = event_count(n);
	for (int i = 0; i < ops; i++)
		random_op(n, *events);
	*lsn = settle(n);
	return n;
}

static void test_basic(void)
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
	fresh_dir();
	wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CHECK(wake_fd >= 0);
	n = open_node(1 << 20, 0);
	CHECK(n != NULL);
	catalogue(n);
	events = event_count(n);
	for (int i = 0; i < 3000; i++)
		random_op(n, events);
	lsn = settle(n);

	/* Invalid configurations are refused. */
	{
		struct repl_config cfg;
		char err[128];
		repl *bad = NULL;

		repl_config_default(&cfg);
		CHECK(repl_start(&cfg, node_wal(n), &bad, err, sizeof(err)) == -EINVAL);
		cfg.conninfo = "postgresql://[bad";
		CHECK(repl_start(&cfg, node_wal(n), &bad, err, sizeof(err)) == -EINVAL);
		repl_status(NULL, &st);
		CHECK(st.state == REPL_DISABLED);
	}

	r = start_repl(n, conninfo, 500);
	CHECK(r != NULL);
	CHECK(catch_up(r, lsn));
	c = pg_open(conninfo);
	CHECK(c != NULL);
	compare(n, c, true);
	CHECK(q_int(c, "SELECT applied_lsn FROM replication_state") == (int64_t)lsn);

	/* The whole log in one transaction (events created and booked in
	 * the same batch), into a second database: the same rows. */
	{
		char first[64], second[1024];
		repl *r2;
		PGconn *c2;

		snprintf(first, sizeof(first), "%s", db_name);
		snprintf(second, sizeof(second), "%s", db_create());
		r2 = start_repl(n, second, REPL_BATCH_RECORDS_MAX);
		CHECK(r2 != NULL && catch_up(r2, lsn));
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
	for (int i = 0; i < 2000; i++)
		random_op(n, events);
	lsn = settle(n);
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
	CHECK(q_int(c, "SELECT count(*) FROM performance_metrics WHERE metric_name ="
		       " 'booking_operation_duration' AND tags->>'operation' = 'book'"
		       " AND metric_value BETWEEN 0.24 AND 0.26 AND"
		       " (tags->>'count')::int = 1000") > 0);
	CHECK(q_int(c, "SELECT count(*) FROM performance_metrics WHERE metric_name ="
		       " 'booking_operation_errors' AND tags->>'operation' = 'cancel'") > 0);
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
	for (int i = 0; i < 500; i++)
		random_op(n, events);
	lsn = settle(n);
	r = start_repl(n, conninfo, 10000);
	CHECK(r != NULL);
	CHECK(catch_up(r, lsn));
	CHECK(q_int(c, "SELECT count(*) FROM schema_migrations") == 7);
	compare(n, c, true);
	repl_stop(r);
	PQfinish(c);
	node_close(n);
	close(wake_fd);
	wake_fd = -1;
	db_drop();
}

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

static void test_kill9(void)
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
		       q_int(c, "SELECT (to_regclass('replication_state') IS NULL)::int")
				       ? -2
				       : q_int(c, "SELECT applied_lsn FROM replication_state"));
		PQfinish(c);
	}
	n = open_node(1 << 20, 0);
	CHECK(n != NULL);
	now_ms = NOW0 + 1000LL * 3600 * 1000;
	lsn = settle(n);
	r = start_repl(n, conninfo, 1000);
	CHECK(r != NULL && catch_up(r, lsn));
	c = pg_open(conninfo);
	compare(n, c, true);
	seed_queries(c);
	repl_stop(r);
	PQfinish(c);
	node_close(n);
	db_drop();
}

static void test_resync(void)
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
	fresh_dir();
	n = open_node(128 << 10, 0); /* small segments, removed by snapshots */
	CHECK(n != NULL);
	catalogue(n);
	events = event_count(n);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 3000; i++)
			random_op(n, events);
		settle(n);
		CHECK(node_snapshot(n) == 0);
	}
	CHECK(wal_reader_open(node_wal(n), 1, &rd) == -ENODATA);
	for (int i = 0; i < 300; i++)
		random_op(n, events);
	lsn = settle(n);
	r = start_repl(n, conninfo, 2000);
	CHECK(r != NULL && catch_up(r, lsn));
	repl_status(r, &st);
	CHECK(st.resync_count == 1);
	c = pg_open(conninfo);
	compare(n, c, false);
	seed_queries(c);
	/* then tails as usual */
	for (int i = 0; i < 1000; i++)
		random_op(n, events);
	lsn = settle(n);
	CHECK(catch_up(r, lsn));
	compare(n, c, false);
	repl_stop(r);
	PQfinish(c);
	node_close(n);
	db_drop();
}

/* Books customer on the last of events 1..events that takes a booking
 * (after random operations the last one may be full or cancelled). */
static struct core_resp book_last_open(node *n, uint32_t events,
				       const char *customer)
{
	struct core_resp b = { .code = CORE_NO_EVENT };

	for (uint32_t e = events; e >= 1 && b.code != CORE_OK; e--) {
		struct core_req bq = { .op = CORE_OP_BOOK,
				       .now = (now_ms += OP_MS),
				       .event_id = e };

		snprintf(bq.customer_id, sizeof(bq.customer_id), "%s", customer);
		b = call(n, bq);
	}
	return b;
}

/* A permanent error stops replication loudly and skips nothing; once the
 * cause is gone, a restart applies from where it stopped. */
static void test_stop(void)
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
	n = fresh_node(conninfo, sizeof(conninfo), 500, &events, &before);
	r = start_repl(n, conninfo, 100);
	CHECK(r != NULL && catch_up(r, before));
	repl_stop(r);
	c = pg_open(conninfo);

	/* A row PostgreSQL should not have: the next booking's id. */
	b = book_last_open(n, events, "late-customer");
	CHECK(b.code == CORE_OK);
	PQclear(q(c, "INSERT INTO registrations (id, event_id, customer_id, status)"
		     " VALUES (%" PRIu64 ", %" PRIu64 ", 'intruder', 'cancelled')",
		  b.booking.id, b.booking.event_id));
	for (int i = 0; i < 300; i++)
		random_op(n, events);
	lsn = settle(n);
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
	PQclear(q(c, "DELETE FROM registrations WHERE customer_id = 'intruder'"));
	r = start_repl(n, conninfo, 100);
	CHECK(r != NULL && catch_up(r, lsn));
	compare(n, c, true);
	repl_stop(r);
	PQfinish(c);
	node_close(n);
	db_drop();
}

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
	PGresult *res = q(c, "SELECT applied_lsn, min(v), max(v), count(DISTINCT v),"
			     " count(v) FROM replication_state, unnest(streams) v"
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
	struct core_req req = { .op = CORE_OP_BOOK, .now = (now_ms += OP_MS),
				.event_id = event_id };

	snprintf(req.customer_id, sizeof(req.customer_id), "%s", customer);
	req.u.book.payment = CORE_PAY_AUTO;
	req.idem = (struct core_idem){ rnd() | 1, rnd(), rnd() };
	return call(n, req);
}

/* Waits (bounded) until the error names a stream and one stream is
 * behind lsn_e while another is at or past it; *pos gets the positions,
 * err the error seen. */
static bool wait_stuck(repl *r, PGconn *c, uint64_t lsn_e, struct positions *pos,
		       char *err, size_t err_size, bool *stopped)
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
	fprintf(stderr, "wait_stuck: error '%s', applied %" PRId64 ", streams %"
		PRId64 "..%" PRId64 " (%" PRId64 " distinct), first refused LSN %"
		PRIu64 "\n", err, pos->applied, pos->lo, pos->hi, pos->distinct,
		lsn_e);
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

	for (int i = 0; i < 200; i++)
		random_op(n, events);
	settle(n);
	r = start_repl_streams(n, conninfo, 50, streams);
	CHECK(r != NULL);
	for (int i = 0; i < 300; i++)
		random_op(n, events);
	*lsn = settle(n);
	CHECK(catch_up(r, *lsn));
	compare(n, c, true);
	check_positions(c, *lsn, streams);
	return r;
}

static void test_streams(void)
{
	char conninfo[1024], err[REPL_ERROR_SIZE], named[16] = "";
	const char *colon;
	node *n;
	repl *r;
	PGconn *c;
	struct repl_status st;
	struct positions pos;
	struct core_resp b;
	uint32_t events, booked_e = 0, booked_other = 0;
	uint64_t lsn, lsn_e = 0, ev_e = 0, errors;
	bool stopped = true;

	printf("streams\n");
	n = fresh_node(conninfo, sizeof(conninfo), 300, &events, &lsn);
	r = start_repl_streams(n, conninfo, 50, 3);
	CHECK(r != NULL && catch_up(r, lsn));
	c = pg_open(conninfo);
	CHECK(c != NULL);
	check_positions(c, lsn, 3);

	/* E: a scheduled event random_op leaves alone (ids above 12). */
	CHECK(events > 12);
	for (int i = 0; i < 100 && !ev_e && events > 12; i++) {
		uint64_t id = 13 + rnd() % (events - 12);
		struct core_resp e = call(n, (struct core_req){
			.op = CORE_OP_EVENT_GET, .now = now_ms, .event_id = id });

		if (e.code == CORE_OK && e.event.status == CORE_EVENT_SCHEDULED &&
		    e.event.capacity > 0)
			ev_e = id;
	}
	CHECK(ev_e != 0);
	PQclear(q(c, "CREATE TABLE test_refuse (event_id bigint, on_ boolean)"));
	PQclear(q(c, "INSERT INTO test_refuse VALUES (%" PRIu64 ", true)", ev_e));
	PQclear(q(c, "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql"
		     " AS $$ BEGIN IF EXISTS (SELECT 1 FROM test_refuse t WHERE t.on_"
		     " AND t.event_id = NEW.event_id) THEN RAISE EXCEPTION"
		     " 'test: event %% refused', NEW.event_id USING ERRCODE = '40001';"
		     " END IF; RETURN NEW; END $$"));
	PQclear(q(c, "CREATE TRIGGER test_refuse BEFORE INSERT OR UPDATE ON"
		     " registrations FOR EACH ROW EXECUTE FUNCTION test_refuse()"));

	/* Bookings on E (one cancelled: an update too) and on the others. */
	for (int i = 0; i < 4; i++) {
		char customer[16];

		snprintf(customer, sizeof(customer), "e%d", i);
		b = book(n, ev_e, customer);
		if (b.code == CORE_OK && !lsn_e)
			lsn_e = b.lsn;
		booked_e += b.code == CORE_OK;
		if (i == 1 && b.code == CORE_OK)
			CHECK(call(n, (struct core_req){
				.op = CORE_OP_CANCEL, .now = (now_ms += OP_MS),
				.booking_id = b.booking.id }).code == CORE_OK);
	}
	for (int i = 0; i < 200; i++) {
		random_op(n, events);
		if (i % 10 == 0) {
			char customer[16];
			uint64_t id = 1 + (uint64_t)i / 10 % 12;

			snprintf(customer, sizeof(customer), "o%d", i);
			booked_other += book(n, id, customer).code == CORE_OK;
		}
	}
	lsn = settle(n);
	CHECK(booked_e > 0);
	CHECK(lsn_e > 0 && lsn_e < lsn);
	printf("  event %" PRIu64 " refused from LSN %" PRIu64 " (%u bookings;"
	       " %u explicit on others), log at %" PRIu64 "\n", ev_e, lsn_e,
	       booked_e, booked_other, lsn);

	/* One stream stays behind E's first booking; the others go on. */
	CHECK(wait_stuck(r, c, lsn_e, &pos, err, sizeof(err), &stopped));
	CHECK(!stopped);
	CHECK(strstr(err, "SQLSTATE 40001") != NULL);
	CHECK(strstr(err, "not applied, will retry") != NULL);
	CHECK(pos.count == 3);
	CHECK(pos.applied < (int64_t)lsn);
	if ((colon = strstr(err, "stream ")) != NULL)
		snprintf(named, sizeof(named), "%.*s", (int)strcspn(colon, ":") + 1,
			 colon);
	printf("  stuck: applied %" PRId64 ", streams up to %" PRId64 "; %s\n",
	       pos.applied, pos.hi, err);
	/* ... and stays there, retrying. */
	repl_status(r, &st);
	errors = st.error_count;
	for (int i = 0; i < 300 && st.error_count < errors + 3; i++) {
		usleep(20 * 1000);
		repl_status(r, &st);
	}
	CHECK(st.error_count >= errors + 3);
	CHECK(!st.stopped);
	CHECK(st.applied_lsn < lsn_e);
	pos = positions(c);
	CHECK(pos.distinct > 1);
	CHECK(pos.applied < (int64_t)lsn_e);
	CHECK(pos.hi >= (int64_t)lsn_e);
	CHECK(pos.count == 3);

	/* Restarted with another count while they differ: the stored count
	 * stays (the same stream is behind), nothing stops. Batches of one
	 * entry end below the streams ahead, and the new replicator knows no
	 * customer yet: the streams ahead insert customers only, and keep
	 * their positions. */
	repl_stop(r);
	r = start_repl_streams(n, conninfo, 1, 2);
	CHECK(r != NULL);
	CHECK(wait_stuck(r, c, lsn_e, &pos, err, sizeof(err), &stopped));
	CHECK(!stopped);
	CHECK(named[0] && strstr(err, named) != NULL);
	CHECK(pos.count == 3);

	/* The cause gone: the stream behind catches up; all equal, once. */
	PQclear(q(c, "UPDATE test_refuse SET on_ = false"));
	for (int i = 0; i < 100; i++)
		random_op(n, events);
	lsn = settle(n);
	CHECK(catch_up(r, lsn));
	repl_status(r, &st);
	CHECK(!st.stopped);
	CHECK(st.applied_lsn == lsn);
	compare(n, c, true);
	check_positions(c, lsn, 3); /* the stored count, until a restart */
	CHECK(q_int(c, "SELECT count(*) FROM registrations WHERE event_id = %"
		       PRIu64, ev_e) >= booked_e);
	PQclear(q(c, "DROP TRIGGER test_refuse ON registrations"));

	/* Another count at each restart: 1, then 4. */
	for (int j = 0; j < 2; j++) {
		uint32_t k = j ? 4 : 1;

		repl_stop(r);
		r = restart_streams(n, c, conninfo, events, k, &lsn);
	}

	/* A row from before streams: all at applied_lsn, set to the count. */
	repl_stop(r);
	PQclear(q(c, "UPDATE replication_state SET streams = NULL"));
	CHECK(q_int(c, "SELECT count(*) FROM replication_state WHERE streams IS NULL"
		       " AND applied_lsn = %" PRIu64, lsn) == 1);
	r = restart_streams(n, c, conninfo, events, 2, &lsn);
	repl_stop(r);
	PQfinish(c);
	node_close(n);
	db_drop();
}

static int pg_ctl(const char *action)
{
	const char *dir = getenv("BOOKD_PG_DIR");
	char cmd[2048];
	const char *as = geteuid() == 0 ? "runuser -u postgres -- " : "";

	if (!strcmp(action, "stop"))
		snprintf(cmd, sizeof(cmd),
			 "%s/usr/lib/postgresql/15/bin/pg_ctl -D %s/data -m immediate"
			 " -w stop >/dev/null 2>&1", as, dir);
	else
		snprintf(cmd, sizeof(cmd),
			 "%s/usr/lib/postgresql/15/bin/pg_ctl -D %s/data -l %s/server.log"
			 " -w -t 60 -o \"-p 5432 -k %s -c listen_addresses='' -c fsync=off"
			 " -c synchronous_commit=off -c full_page_writes=off"
			 " -c max_connections=50 -c timezone=UTC\" start >/dev/null 2>&1",
			 as, dir, dir, dir);
	return system(cmd);
}

/* Every booking of events lo..hi in registrations as the core has it. */
static void compare_bookings(node *n, PGconn *c, uint64_t lo, uint64_t hi)
{
	uint32_t count = 0;

	for (uint64_t ev = lo; ev <= hi; ev++)
		for (uint32_t seq = 1;; seq++) {
			struct core_resp r = call(n, (struct core_req){
				.op = CORE_OP_BOOKING_GET, .now = now_ms,
				.booking_id = ev << 24 | seq });
			PGresult *res;

			if (r.code != CORE_OK)
				break;
			res = q(c, "SELECT status, customer_id FROM registrations"
				   " WHERE id = %" PRIu64, r.booking.id);
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
	CHECK(q_int(c, "SELECT count(*) FROM registrations WHERE event_id"
		       " BETWEEN %" PRIu64 " AND %" PRIu64, lo, hi) == count);
}

static void test_archive(void)
{
	char conninfo[1024], part[64], gone[80];
	node *n;
	repl *r;
	PGconn *c;
	PGresult *res;
	struct repl_status st;
	uint32_t events;
	uint64_t lsn, last;
	int64_t in_month, archived;

	printf("archive\n");
	n = fresh_node(conninfo, sizeof(conninfo), 300, &events, &lsn);
	r = start_repl(n, conninfo, 100);
	CHECK(r != NULL && catch_up(r, lsn));
	c = pg_open(conninfo);

	/* The month of event 1 (early 2026: over) holds busy events. */
	res = q(c, "SELECT to_char(start_at AT TIME ZONE 'UTC', 'YYYY_MM')"
		   " FROM class_events WHERE id = 1");
	CHECK(PQntuples(res) == 1);
	snprintf(part, sizeof(part), "class_events_%s",
		 PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "?");
	PQclear(res);
	snprintf(gone, sizeof(gone), "%s_archived", part);
	in_month = q_int(c, "SELECT count(*) FROM %s", part);
	res = PQexec(c, "SELECT archive_class_events_month("
			"(now() AT TIME ZONE 'UTC')::date)"); /* not over */
	CHECK(PQresultStatus(res) == PGRES_FATAL_ERROR);
	PQclear(res);
	archived = q_int(c, "SELECT archive_class_events_month(min(start_at)::date)"
			    " FROM class_events WHERE id = 1");
	CHECK(archived == in_month && archived > 0);
	CHECK(q_int(c, "SELECT count(*) FROM class_events WHERE id = 1") == 0);
	CHECK(q_int(c, "SELECT count(*) FROM archived_class_events WHERE"
		       " archived_in = '%s'", gone) == archived);
	CHECK(q_int(c, "SELECT count(*) FROM %s", gone) == archived);
	CHECK(q_int(c, "SELECT count(*) FROM pg_inherits WHERE inhrelid ="
		       " '%s'::regclass", gone) == 0);
	res = PQexec(c, "SELECT archive_class_events_month(start_at::date)"
			" FROM archived_class_events WHERE id = 1"); /* again */
	CHECK(PQresultStatus(res) == PGRES_FATAL_ERROR);
	PQclear(res);

	/* Decisions on archived events, while replicating and after a
	 * restart (the start cache gone): they apply, nothing stops. */
	for (int i = 0; i < 300; i++)
		random_op(n, events);
	lsn = settle(n);
	CHECK(catch_up(r, lsn));
	repl_stop(r);
	for (int i = 0; i < 200; i++)
		random_op(n, events);
	lsn = settle(n);
	r = start_repl(n, conninfo, 100);
	CHECK(r != NULL && catch_up(r, lsn));
	repl_status(r, &st);
	CHECK(!st.stopped && st.error[0] == '\0');
	compare_bookings(n, c, 1, events);
	CHECK(q_int(c, "SELECT count(*) FROM %s", gone) == archived);
	printf("  %" PRId64 " events of %s archived; every booking equal after "
	       "500 more decisions\n", archived, part);
	repl_stop(r);

	/* A partition detached by hand (not archived): the next change to
	 * one of its events (a booking on the last event that takes one)
	 * stops replication, loudly. */
	struct core_resp br = book_last_open(n, events, "detached");

	CHECK(br.code == CORE_OK);
	last = br.booking.event_id;
	lsn = settle(n);
	res = q(c, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON"
		   " c.oid = i.inhrelid WHERE i.inhparent = 'class_events'::regclass"
		   " AND EXISTS (SELECT 1 FROM class_events e WHERE e.id = %" PRIu64
		   " AND e.tableoid = c.oid)", last);
	CHECK(PQntuples(res) == 1);
	snprintf(part, sizeof(part), "%s",
		 PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "?");
	PQclear(res);
	PQclear(q(c, "ALTER TABLE class_events DETACH PARTITION %s", part));
	r = start_repl(n, conninfo, 100);
	CHECK(r != NULL);
	CHECK(repl_wait_applied(r, lsn, WAIT_MS) == -EIO);
	repl_status(r, &st);
	CHECK(st.stopped && strstr(st.error, "archive_class_events_month"));
	printf("  %s detached by hand: %s\n", part, st.error);
	repl_stop(r);
	PQfinish(c);
	node_close(n);
	db_drop();
}

static void test_corearchive(void)
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
	n = fresh_node(conninfo, sizeof(conninfo), 300, &events, &lsn);
	r = start_repl(n, conninfo, 100);
	CHECK(r != NULL && catch_up(r, lsn));
	c = pg_open(conninfo);
	ev_rows = q_int(c, "SELECT count(*) FROM class_events");
	bk_rows = q_int(c, "SELECT count(*) FROM registrations");
	CHECK(ev_rows == events && bk_rows > 0);

	/* Ten years on, everything has ended: the core drops it all. */
	now_ms += INT64_C(3650) * 86400 * 1000;
	resp = call(n, (struct core_req){ .op = CORE_OP_ARCHIVE, .now = now_ms,
					  .u.archive.days = 1 });
	CHECK(resp.code == CORE_OK && resp.count == events);
	lsn = settle(n);
	CHECK(catch_up(r, lsn));
	repl_status(r, &st);
	CHECK(!st.stopped && st.error[0] == '\0');
	CHECK(q_int(c, "SELECT count(*) FROM class_events") == ev_rows);
	CHECK(q_int(c, "SELECT count(*) FROM registrations") == bk_rows);
	CHECK(call(n, (struct core_req){ .op = CORE_OP_EVENT_GET, .now = now_ms,
					 .event_id = 1 }).code == CORE_NO_EVENT);
	printf("  %u events archived in the core; PostgreSQL keeps %" PRId64
	       " events, %" PRId64 " registrations\n", events, ev_rows, bk_rows);
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

static void test_pgdown(void)
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
	fresh_dir();
	n = open_node(128 << 10, 0); /* small segments: snapshots could drop them */
	CHECK(n != NULL);
	catalogue(n);
	events = event_count(n);
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
	for (int i = 0; i < 1000; i++)
		random_op(n, events);
	lsn = settle(n);
	CHECK(catch_up(r, lsn));
	repl_status(r, &st);
	CHECK(st.reconnect_count > 0);
	CHECK(st.resync_count == 0); /* wal_retain held the log back */
	c = pg_open(conninfo);
	compare(n, c, false); /* (the log's start went with the snapshots) */
	seed_queries(c);
	repl_stop(r);
	PQfinish(c);
	node_close(n);
	db_drop();
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	const char *s = getenv("TEST_REPL_SEED");

	base_url = getenv("DATABASE_URL");
	if (!base_url || !base_url[0]) {
		printf("test_repl: DATABASE_URL not set: skipped\n");
		return 77;
	}
	seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
	if (!seed)
		seed = 1;
	seed0 = seed;
	printf("test_repl: seed %" PRIu64 "\n", seed);
	if (!mkdtemp(base_dir)) {
		perror("mkdtemp");
		return 1;
	}
	if (!only || !strcmp(only, "basic"))
		test_basic();
	if (!only || !strcmp(only, "kill9"))
		test_kill9();
	if (!only || !strcmp(only, "resync"))
		test_resync();
	if (!only || !strcmp(only, "stop"))
		test_stop();
	if (!only || !strcmp(only, "streams"))
		test_streams();
	if (!only || !strcmp(only, "archive"))
		test_archive();
	if (!only || !strcmp(only, "corearchive"))
		test_corearchive();
	if (only && !strcmp(only, "pgdown"))
		test_pgdown();
	if (check_fail_count == 0)
		nftw(base_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	else
		fprintf(stderr, "test_repl: seed %" PRIu64 ", data in %s\n", seed0,
			base_dir);
	printf("test_repl: %u checks, %u failed\n", check_count, check_fail_count);
	return check_fail_count ? 1 : 0;
}
