/*
 * repl_test.h: what the test_repl_*.c programs share. They drive the
 * replicator (replicator/repl.h) against a real PostgreSQL 15
 * (DATABASE_URL; exit 77 without it); each case works in its own database
 * (CREATE DATABASE bookd_repl_<pid>_<n>_<r>, dropped at the end) and its
 * own data folder under a mkdtemp one, so the programs may run in parallel.
 * Here: PostgreSQL helpers (q, q_int, db_create), a node (open_node,
 * catalogue, random_op: seeded by TEST_REPL_SEED), compare (PostgreSQL
 * against the core row for row, and the log's records once each),
 * seed_queries, starting the replicator and waiting for it (start_repl,
 * catch_up), and repl_test_main, each program's main.
 *
 * test_repl_basic.c: basic, resync, corearchive.
 * test_repl_faults.c: kill9, stop, pgdown.
 * test_repl_streams.c: streams, archive.
 * test_repl_start.c: org_settings, org_settings_snapshot.
 *
 *     TEST_REPL_SEED=n ./test_repl_<part> [case]
 */
#ifndef BOOKD_TEST_REPL_H
#define BOOKD_TEST_REPL_H

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
#include "node_test.h"

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

static inline uint64_t rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

/* ---- PostgreSQL helpers ---- */

/* base conninfo with another dbname, as key=value pairs. */
static inline char *conninfo_for(const char *db)
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

static inline PGconn *pg_open(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

static inline PGresult *q(PGconn *c, const char *fmt, ...)
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

static inline int64_t q_int(PGconn *c, const char *fmt, ...)
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

static inline char *db_create(void)
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

static inline void db_drop_name(const char *name)
{
	PGconn *c = pg_open(base_url);
	if (!c)
		return;
	PQclear(q(c, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name));
	PQfinish(c);
}

static inline void db_drop(void) { db_drop_name(db_name); }

/* ---- the node ---- */

static inline int rm_one(const char *p, const struct stat *sb, int f,
			 struct FTW *w)
{
	(void)sb, (void)f, (void)w;
	return remove(p);
}

static inline void fresh_dir(void)
{
	static int n;
	snprintf(data_dir, sizeof(data_dir), "%s/d%d", base_dir, n++);
}

static inline node *open_node(uint64_t segment_size, uint64_t snapshot_every)
{
	struct node_config cfg;

	node_test_config(&cfg, data_dir);
	cfg.segment_size = segment_size;
	cfg.snapshot_every = snapshot_every;
	cfg.core.port_count = 2;
	cfg.core.booking_count_max = 1 << 16;
	cfg.core.idem_count_max = 1 << 14;
	cfg.core.catalog_count_max = 64;
	cfg.core.hold_ms = HOLD_MS;
	if (wake_fd >= 0) {
		cfg.wake_fds = &wake_fd;
		cfg.wake_fd_count = 1;
	}
	return node_test_open(&cfg);
}

static int64_t now_ms = NOW0;
/* random_op also edits series (test_repl_basic): the others archive and
 * detach months the fake clock is still in, where a series edit's new
 * events would have no partition. */
static bool series_edits;

static inline struct core_resp call(node *n, struct core_req req)
{
	struct core_resp r;

	memset(&r, 0, sizeof(r));
	if (core_call(core_port_get(node_core(n), 0), &req, &r) != 0)
		r.code = CORE_FULL;
	return r;
}

static inline uint64_t catalogue(node *n)
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
					       .now = now_ms,
					       .u.series = &s[i] });
		CHECK(r.code == CORE_OK);
		lsn = r.lsn;
	}
	return lsn;
}

static inline uint32_t event_count(node *n)
{
	uint32_t id = 1;
	while (call(n, (struct core_req){ .op = CORE_OP_EVENT_GET,
					  .now = now_ms,
					  .event_id = id })
		       .code == CORE_OK)
		id++;
	return id - 1;
}

/* One random decision; the events are 1..events (a few busy ones). */
static inline uint64_t random_op(node *n, uint32_t events)
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
		req.u.book.payment =
			rnd() % 8 == 0 ? CORE_PAY_NONE : CORE_PAY_AUTO;
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
		if (rnd() % 3 == 0) { /* an edit: moved (to another month,
				       * now and then), retitled, restored */
			req.u.patch.start_at =
				rnd() % 2 ? now_ms + 3600000 +
						    (int64_t)(rnd() % 90) *
							    86400000
					  : 0;
			req.u.patch.duration_min =
				rnd() % 3 ? 0 : (uint32_t)(30 + rnd() % 60);
			if (rnd() % 3 == 0)
				snprintf(req.u.patch.title,
					 sizeof(req.u.patch.title),
					 "Edited \t%u \\ \xc3\xa9",
					 (unsigned)(rnd() % 9));
			req.u.patch.restore = rnd() % 2 == 0;
			req.u.patch.location_id = rnd() % 4 == 0;
		}
	} else if (series_edits &&
		   rnd() % 6 == 0) { /* a series changed from a date on */
		req.op = CORE_OP_SERIES_PATCH;
		req.u.spatch.series_id = 1 + rnd() % 2;
		req.u.spatch.capacity = 2 + (int64_t)(rnd() % 4);
		req.u.spatch.waitlist_capacity = -1;
		req.u.spatch.price_cents = -1;
		req.u.spatch.start_minute = (int32_t)(17 * 60 + rnd() % 180);
		if (rnd() % 2)
			snprintf(req.u.spatch.title, sizeof(req.u.spatch.title),
				 "Series %u", (unsigned)(rnd() % 5));
		req.u.spatch.weekday_mask = (uint8_t)(1 + rnd() % 127);
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
static inline uint64_t settle(node *n)
{
	struct core_req req = { .op = CORE_OP_TICK, .now = now_ms };
	struct wal_stats ws;

	call(n, req);
	wal_stats(node_wal(n), &ws);
	CHECK(node_wait_durable(n, ws.appended_lsn) == 0);
	return ws.appended_lsn;
}

/* A node in a fresh data dir (segments of segment_size, no snapshots of
 * its own) with the catalogue in it; *events the catalogue's event count. */
static inline node *catalogued_node(uint64_t segment_size, uint32_t *events)
{
	node *n;

	fresh_dir();
	n = open_node(segment_size, 0);
	CHECK(n != NULL);
	catalogue(n);
	*events = event_count(n);
	return n;
}

/* count random decisions, then settle: the last LSN. */
static inline uint64_t random_ops(node *n, uint32_t events, int count)
{
	for (int i = 0; i < count; i++)
		random_op(n, events);
	return settle(n);
}

/* ---- PostgreSQL == core ---- */

struct counts {
	uint64_t events, bookings, payments, notifications, edits;
};

static inline int count_rec(void *ctx, uint64_t lsn, const void *p, size_t size)
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
		c->edits += r.type == CORE_REC_EVENT_EDIT ||
			    r.type == CORE_REC_SERIES_EDIT;
	}
	return 0;
}

static inline void compare(node *n, PGconn *c, bool whole_log)
{
	uint32_t events = event_count(n), bookings = 0, waiting = 0;
	PGresult *er, *br, *wr;
	unsigned bad = check_fail_count;

	er = q(c, "SELECT id, capacity, reg_count, held_count, waitlist_count,"
		  " status, coalesce(instructor_id, 0),"
		  " (extract(epoch FROM start_at) * 1000)::bigint, title,"
		  " series_id, duration_min, detached FROM class_events"
		  " ORDER BY id");
	br = q(c,
	       "SELECT id, customer_id, status, coalesce((extract(epoch FROM"
	       " hold_expires_at) * 1000)::bigint, 0) FROM registrations ORDER BY id");
	wr = q(c,
	       "SELECT booking_id, rank() OVER (PARTITION BY event_id ORDER BY"
	       " position) FROM event_waitlists WHERE promoted_at IS NULL AND"
	       " left_at IS NULL ORDER BY booking_id");
	CHECK(PQntuples(er) == (int)events);
	for (uint32_t id = 1; id <= events && (int)id <= PQntuples(er); id++) {
		struct core_event_view v =
			call(n, (struct core_req){ .op = CORE_OP_EVENT_GET,
						   .now = now_ms,
						   .event_id = id })
				.event;
		int row = (int)id - 1;

		CHECK(strtoull(PQgetvalue(er, row, 0), NULL, 10) == id);
		CHECK(strtoul(PQgetvalue(er, row, 1), NULL, 10) == v.capacity);
		CHECK(strtoul(PQgetvalue(er, row, 2), NULL, 10) == v.booked);
		CHECK(strtoul(PQgetvalue(er, row, 3), NULL, 10) == v.held);
		CHECK(strtoul(PQgetvalue(er, row, 4), NULL, 10) ==
		      v.waitlist_length);
		CHECK(strcmp(PQgetvalue(er, row, 5),
			     v.status == CORE_EVENT_CANCELLED
				     ? "cancelled"
				     : "scheduled") == 0);
		CHECK(strtoull(PQgetvalue(er, row, 6), NULL, 10) ==
		      v.instructor_id);
		CHECK(strtoll(PQgetvalue(er, row, 7), NULL, 10) == v.start_at);
		CHECK(strcmp(PQgetvalue(er, row, 8), v.title) == 0);
		CHECK(strtoull(PQgetvalue(er, row, 9), NULL, 10) ==
		      v.series_id);
		CHECK(strtoul(PQgetvalue(er, row, 10), NULL, 10) ==
		      v.duration_min);
		CHECK((strcmp(PQgetvalue(er, row, 11), "t") == 0) ==
		      v.detached);
		if (check_fail_count != bad) {
			fprintf(stderr,
				"event %u: core cap %u booked %u held %u wl %u "
				"status %u title '%s' (pg '%s')\n",
				id, v.capacity, v.booked, v.held,
				v.waitlist_length, v.status, v.title,
				PQgetvalue(er, row, 8));
			bad = check_fail_count;
		}
		for (uint32_t seq = 1;; seq++) {
			struct core_resp r =
				call(n,
				     (struct core_req){
					     .op = CORE_OP_BOOKING_GET,
					     .now = now_ms,
					     .booking_id = (uint64_t)id << 24 |
							   seq });
			int b;

			if (r.code != CORE_OK)
				break;
			b = (int)bookings++;
			if (b >= PQntuples(br)) {
				CHECK(!"booking missing in registrations");
				continue;
			}
			CHECK(strtoull(PQgetvalue(br, b, 0), NULL, 10) ==
			      r.booking.id);
			CHECK(strcmp(PQgetvalue(br, b, 1),
				     r.booking.customer_id) == 0);
			CHECK(strcmp(PQgetvalue(br, b, 2),
				     core_booking_status_name(
					     r.booking.status)) == 0);
			CHECK(strtoll(PQgetvalue(br, b, 3), NULL, 10) ==
			      r.booking.hold_expires_at);
			if (r.booking.status == CORE_BOOKING_WAITLISTED) {
				int w = (int)waiting++;
				CHECK(w < PQntuples(wr));
				if (w < PQntuples(wr)) {
					CHECK(strtoull(PQgetvalue(wr, w, 0),
						       NULL,
						       10) == r.booking.id);
					CHECK(strtoul(PQgetvalue(wr, w, 1),
						      NULL, 10) ==
					      r.booking.position);
				}
			}
			if (check_fail_count != bad) {
				fprintf(stderr,
					"booking %" PRIu64
					": core %s hold %" PRId64
					" pos %u; pg %s\n",
					r.booking.id,
					core_booking_status_name(
						r.booking.status),
					r.booking.hold_expires_at,
					r.booking.position,
					b < PQntuples(br) ? PQgetvalue(br, b, 2)
							  : "-");
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
	CHECK(q_int(c,
		    "SELECT count(*) FROM registrations r WHERE NOT EXISTS"
		    " (SELECT 1 FROM customers u WHERE u.id = r.customer_id)") ==
	      0);

	/* The seed's booking-conflicts query: no row. */
	CHECK(q_int(c,
		    "SELECT count(*) FROM (SELECT event_id, count(*) AS"
		    " registration_count, capacity, reg_count FROM"
		    " public.registrations r JOIN public.class_events e ON"
		    " e.id = r.event_id WHERE r.status = 'confirmed' GROUP BY"
		    " event_id, capacity, reg_count HAVING count(*) != reg_count) x") ==
	      0);
	/* Counters = registrations, for every status. */
	CHECK(q_int(c,
		    "SELECT count(*) FROM class_events e WHERE"
		    " e.held_count <> (SELECT count(*) FROM registrations r WHERE"
		    " r.event_id = e.id AND r.status = 'pending_payment') OR"
		    " e.waitlist_count <> (SELECT count(*) FROM registrations r"
		    " WHERE r.event_id = e.id AND r.status = 'waitlisted')") ==
	      0);
	/* A waiting row <=> a waitlisted registration. */
	CHECK(q_int(c,
		    "SELECT count(*) FROM event_waitlists w JOIN registrations r"
		    " ON r.id = w.booking_id WHERE (w.promoted_at IS NULL AND"
		    " w.left_at IS NULL) <> (r.status = 'waitlisted')") == 0);
	/* Every month holding an event has its partition (and rows are in it). */
	CHECK(q_int(c,
		    "SELECT count(*) FROM class_events e WHERE"
		    " e.tableoid::regclass::text <> 'class_events_' ||"
		    " to_char(e.start_at AT TIME ZONE 'UTC', 'YYYY_MM')") == 0);
	CHECK(q_int(c,
		    "SELECT count(DISTINCT to_char(start_at AT TIME ZONE 'UTC',"
		    " 'YYYY_MM')) FROM class_events") >= 1);
	/* Every customer of a booking is a customer row. */
	CHECK(q_int(c,
		    "SELECT count(*) FROM registrations r WHERE NOT EXISTS"
		    " (SELECT 1 FROM customers c WHERE c.id = r.customer_id)") ==
	      0);
	if (whole_log) { /* each record of the log once */
		struct counts cn = { 0 };
		wal_reader *rd = NULL;

		CHECK(wal_reader_open(node_wal(n), 1, &rd) == 0);
		if (!rd)
			return;
		while (wal_reader_next(rd, 100000, count_rec, &cn) > 0)
			;
		wal_reader_close(rd);
		CHECK(q_int(c, "SELECT count(*) FROM class_events") ==
		      (int64_t)cn.events);
		CHECK(q_int(c, "SELECT count(*) FROM registrations") ==
		      (int64_t)cn.bookings);
		CHECK(q_int(c, "SELECT count(*) FROM payments") ==
		      (int64_t)cn.payments);
		CHECK(q_int(c, "SELECT count(*) FROM notifications") ==
		      (int64_t)cn.notifications);
		printf("  log: %" PRIu64 " events, %" PRIu64
		       " bookings, %" PRIu64 " payments, %" PRIu64
		       " notifications: each once\n",
		       cn.events, cn.bookings, cn.payments, cn.notifications);
	}
}

/* The seed's Debug and Dashboard queries, unchanged. */
static inline void seed_queries(PGconn *c)
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

/* The server's per-request samples, known: FAKE_BOOKS bookings of
 * (i % 97 + 1) * 0.37 ms (i = 0..), and FAKE_CANCELS cancels of 2 ms, one in
 * five an error; given once per process (to the first replicator asking),
 * in slices of at most `cap`. */
#define FAKE_BOOKS 1000
#define FAKE_CANCELS 25
static unsigned fake_given;
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;

static inline double fake_book_ms(unsigned i)
{
	return (double)(i % 97 + 1) * 0.37;
}

static inline unsigned fake_samples(void *ctx, struct repl_sample *out,
				    unsigned cap, uint64_t *dropped)
{
	struct timespec ts;
	unsigned n = 0;

	(void)ctx;
	*dropped = 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&fake_lock);
	for (; n < cap && fake_given < FAKE_BOOKS + FAKE_CANCELS; n++) {
		unsigned i = fake_given++;
		bool book = i < FAKE_BOOKS;

		out[n] = (struct repl_sample){
			.at_ms = (int64_t)ts.tv_sec * 1000 -
				 (int64_t)(FAKE_BOOKS + FAKE_CANCELS - i),
			.ns = book ? (uint64_t)(fake_book_ms(i) * 1e6 + 0.5)
				   : 2000000,
			.every = 1,
			.outcome = !book && i % 5 == 0 ? "error" : "ok",
		};
		strcpy(out[n].operation, book ? "book" : "cancel");
	}
	pthread_mutex_unlock(&fake_lock);
	return n;
}

/* streams 0: the default count. */
static inline repl *start_repl_streams(node *n, const char *conninfo,
				       uint32_t batch, uint32_t streams)
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
	cfg.samples = fake_samples;
	cfg.wake_fd = wake_fd;
	if (repl_start(&cfg, node_wal(n), &r, err, sizeof(err)) != 0) {
		fprintf(stderr, "repl_start: %s\n", err);
		return NULL;
	}
	return r;
}

static inline repl *start_repl(node *n, const char *conninfo, uint32_t batch)
{
	return start_repl_streams(n, conninfo, batch, 0);
}

static inline bool catch_up(repl *r, uint64_t lsn)
{
	struct repl_status st;
	int rc = repl_wait_applied(r, lsn, WAIT_MS);

	repl_status(r, &st);
	if (rc)
		fprintf(stderr,
			"catch-up to %" PRIu64 ": %s (applied %" PRIu64
			", %s: %s)\n",
			lsn, strerror(-rc), st.applied_lsn,
			repl_state_name(st.state), st.error);
	return rc == 0;
}

/* A replicator started (batch) and caught up with lsn, both checked. */
static inline repl *start_caught_up(node *n, const char *conninfo,
				    uint32_t batch, uint64_t lsn)
{
	repl *r = start_repl(n, conninfo, batch);

	CHECK(r != NULL && catch_up(r, lsn));
	return r;
}

/* What a case works with: its database, node, replicator, connection to
 * PostgreSQL, the catalogue's events, the LSN it waits for, the
 * replicator's last status (test_repl_fold's is struct fx). */
struct repl_case {
	char conninfo[1024];
	node *n;
	repl *r;
	PGconn *c;
	uint32_t events;
	uint64_t lsn;
	struct repl_status st;
};

/* A fresh database for the case (x->conninfo). */
static inline void case_db(struct repl_case *x)
{
	snprintf(x->conninfo, sizeof(x->conninfo), "%s", db_create());
}

/* A fresh database and node: the catalogue and `ops` random decisions,
 * settled at x->lsn; x->events their count. */
static inline void fresh_node(struct repl_case *x, int ops)
{
	case_db(x);
	x->n = catalogued_node(1 << 20, &x->events);
	x->lsn = random_ops(x->n, x->events, ops);
}

/* Books customer on the last of events 1..events that takes a booking
 * (after random operations the last one may be full or cancelled). */
static inline struct core_resp book_last_open(node *n, uint32_t events,
					      const char *customer)
{
	struct core_resp b = { .code = CORE_NO_EVENT };

	for (uint32_t e = events; e >= 1 && b.code != CORE_OK; e--) {
		struct core_req bq = { .op = CORE_OP_BOOK,
				       .now = (now_ms += OP_MS),
				       .event_id = e };

		snprintf(bq.customer_id, sizeof(bq.customer_id), "%s",
			 customer);
		b = call(n, bq);
	}
	return b;
}

/* fresh_node after ops random operations, and a replicator for it
 * (batches of 100) caught up to x->lsn. */
static inline void fresh_caught_up(struct repl_case *x, int ops)
{
	fresh_node(x, ops);
	x->r = start_caught_up(x->n, x->conninfo, 100, x->lsn);
}

/* The end of a case: the replicator stopped, the connection and the node
 * closed, the case's database dropped. */
static inline void case_end(struct repl_case *x)
{
	repl_stop(x->r);
	PQfinish(x->c);
	node_close(x->n);
	db_drop();
}

/* The seed (TEST_REPL_SEED, else the time and pid), the program's cases
 * (CHECK_TEST_FN(test_<case>): argv[1] names one case, without "test_";
 * none: all but named_only, which runs only when named), the data folder
 * removed if every check passed; prints "<prog>: N checks, M failed" and
 * returns the exit status (77: no DATABASE_URL). */
static inline int repl_test_main(const char *named_only, int argc, char **argv)
{
	const char *prog =
		strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	struct check_tests *cases = check_test_list();
	const char *only = argc > 1 ? argv[1] : NULL;
	const char *s = getenv("TEST_REPL_SEED");

	base_url = getenv("DATABASE_URL");
	if (!base_url || !base_url[0]) {
		printf("%s: DATABASE_URL not set: skipped\n", prog);
		return 77;
	}
	seed = s ? strtoull(s, NULL, 10)
		 : (uint64_t)time(NULL) ^ (uint64_t)getpid();
	if (!seed)
		seed = 1;
	seed0 = seed;
	printf("%s: seed %" PRIu64 "\n", prog, seed);
	if (!mkdtemp(base_dir)) {
		perror("mkdtemp");
		return 1;
	}
	for (size_t i = 0; i < cases->n; i++) {
		const char *name = cases->t[i].name + strlen("test_");

		if (only ? !strcmp(only, name)
			 : !named_only || strcmp(named_only, name) != 0)
			cases->t[i].fn();
	}
	if (check_fail_count == 0)
		nftw(base_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	else
		fprintf(stderr, "%s: seed %" PRIu64 ", data in %s\n", prog,
			seed0, base_dir);
	printf("%s: %u checks, %u failed\n", prog, check_count,
	       check_fail_count);
	return check_fail_count ? 1 : 0;
}

#endif
