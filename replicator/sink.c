/*
 * sink.c: a folded batch (fold.h) into PostgreSQL, each stream's part in
 * ONE transaction that also moves the stream's position
 * (replication_state.streams[k], guarded: WHERE it is still the value the
 * stream started from, so two replicators of one log cannot both apply).
 *
 * A stream's share of a batch
 *   The fold's rows go by COPY into temporary staging tables (ON COMMIT
 *   DELETE ROWS), then set-based statements move them into the reporting
 *   tables:
 *     (missing class_events partitions are ensured before, in a
 *     transaction of their own: ensure_class_events_partitions)
 *     catalogue upserts; new events inserted as the batch leaves them
 *     (final settings and counters); the previous status of each staged
 *     booking the batch did not create read from registrations; per other
 *     event ONE update that moves the counters by (final - previous)
 *     statuses together with the final capacity and status, so the
 *     no-overbooking CHECK sees only states the core had; new customers;
 *     registrations updated, then new ones inserted (the one-active-booking
 *     index sees a customer's old booking leave before the rebooking
 *     arrives; among new ones only the last can be active), snapshot rows
 *     upserted in id order; waitlist rows (position = order of joining); an
 *     event cancel cancels its active registrations (the core's PATCH
 *     implies it); payments; notifications (ids <log_id>/<lsn>.<k>,
 *     stable); the stream's position.
 *   Counters are differences against what PostgreSQL holds, never replayed
 *   increments, so they stay equal to the count of registrations whatever
 *   the batch boundaries, and a snapshot's absolute rows (resync) fold in
 *   the same way.
 *
 * Streams run at once, one thread each (run_parts); stream 0 first when it
 * has catalogue rows (the events of a new series read its title).
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const stage_copy[ST_COUNT] = {
	[ST_CAT] = "COPY s_cat FROM STDIN",
	[ST_CUSTOMER] = "COPY s_customer FROM STDIN",
	[ST_SERIES] = "COPY s_series FROM STDIN",
	[ST_GEN] = "COPY s_gen FROM STDIN",
	[ST_ORGSET] = "COPY s_orgset FROM STDIN",
	[ST_EVENT] =
		"COPY s_event (id, start_at, created, series_id, org_id, "
		"location_id, instructor_id, duration_min, capacity0, "
		"waitlist_capacity, price_cents, currency, capacity, "
		"set_instructor, status, cancelled, cancel_at, created_at, "
		"updated_at, needs_update, reg, held, wl, edited, new_start, "
		"title, detached) FROM STDIN",
	[ST_BOOKING] =
		"COPY s_booking (id, event_id, kind, customer_id, status, "
		"hold, created_at, updated_at, join_seq, exit_at, exit_status, "
		"late) FROM STDIN",
	[ST_PAYMENT] = "COPY s_payment FROM STDIN",
	[ST_NOTIFY] = "COPY s_notify FROM STDIN",
	[ST_NEWCUST] = "COPY s_newcust FROM STDIN",
	[ST_LEGACY] = "COPY s_legacy FROM STDIN",
};

/* ---- SQL ------------------------------------------------------------------ */

#define TS(x) "to_timestamp((" x ") / 1000.0)"
#define ACTIVE "('confirmed', 'pending_payment', 'waitlisted')"
#define SEATED "('confirmed', 'pending_payment')"

/* Staging tables, one set per connection, emptied at every commit. */
const char repl__sql_stage[] =
	"SET TimeZone = 'UTC';"
	/* a hung statement becomes an error (57014: retried), not a stall */
	"SET statement_timeout = '300s';"
	/* a commit it acknowledged survives a crash of PostgreSQL: the log
	 * is released (wal_retain) only behind a durable applied_lsn */
	"SET synchronous_commit = on;"
	"CREATE TEMP TABLE IF NOT EXISTS s_cat (seq int, kind smallint, id bigint,"
	" org_id bigint, name text, tz text, at bigint) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_customer (seq int, id text, email text,"
	" name text, at bigint) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_series (seq int, id bigint, org_id bigint,"
	" location_id bigint, instructor_id bigint, title text, capacity bigint,"
	" waitlist_capacity bigint, price_cents bigint, currency text, timezone text,"
	" weekday_mask smallint, start_time time, duration_min bigint,"
	" first_date date, last_date date, skip_dates date[], at bigint)"
	" ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_gen (seq int, series_id bigint,"
	" through date, at bigint) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_orgset (seq int, id bigint,"
	" cutoff int, hold int, horizon int, at bigint) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_event (id bigint, start_at bigint,"
	" created bool, series_id bigint, org_id bigint, location_id bigint,"
	" instructor_id bigint, duration_min bigint, capacity0 bigint,"
	" waitlist_capacity bigint, price_cents bigint, currency text,"
	" capacity bigint, set_instructor bigint, status text, cancelled bool,"
	" cancel_at bigint, created_at bigint, updated_at bigint,"
	" needs_update bool, reg int, held int, wl int, dc int NOT NULL DEFAULT 0,"
	" dh int NOT NULL DEFAULT 0, dw int NOT NULL DEFAULT 0,"
	" edited bool, new_start bigint, title text, detached bool)"
	" ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_booking (id bigint, event_id bigint,"
	" kind smallint, customer_id text, status text, hold bigint,"
	" created_at bigint, updated_at bigint, join_seq int, exit_at bigint,"
	" exit_status text, old_status text, late bool NOT NULL DEFAULT false)"
	" ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_payment (booking_id bigint, ref text,"
	" amount bigint, currency text, status text, flagged bool, code smallint,"
	" at bigint, customer_id text) ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_newcust (id text, at bigint)"
	" ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_notify (id text, kind text,"
	" booking_id bigint, lsn bigint, at bigint, customer_id text)"
	" ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS s_legacy (kind text, legacy_id text,"
	" bookd_id bigint, detail text, at bigint) ON COMMIT DELETE ROWS;";

/* Imported rows' old ids (migration 0016); a repeat does nothing. */
static const char sql_legacy[] =
	"INSERT INTO bookd.legacy_ids (kind, legacy_id, bookd_id, detail,"
	" imported_at) SELECT kind, legacy_id, bookd_id, detail, " TS(
		"at") " FROM s_legacy ON CONFLICT (kind, legacy_id) DO NOTHING";

static const char sql_catalog[] =
	"INSERT INTO organizations AS t (id, name, timezone, created_at, updated_at)"
	" SELECT DISTINCT ON (id) id, name, coalesce(nullif(tz, ''), 'UTC'),"
	" " TS("at") ", " TS(
		"at") " FROM s_cat WHERE kind = 1 ORDER BY id, seq DESC"
		      " ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
		      " timezone = excluded.timezone, updated_at = excluded.updated_at;"
		      "INSERT INTO locations AS t (id, org_id, name, timezone, created_at, updated_at)"
		      " SELECT DISTINCT ON (id) id, org_id, name, nullif(tz, ''),"
		      " " TS("at") ", " TS(
			      "at") " FROM s_cat WHERE kind = 2 ORDER BY id, seq DESC"
				    " ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id, name = excluded.name,"
				    " timezone = excluded.timezone, updated_at = excluded.updated_at;"
				    "INSERT INTO instructors AS t (id, org_id, name, created_at, updated_at)"
				    " SELECT DISTINCT ON (id) id, org_id, name,"
				    " " TS("at") ", " TS(
					    "at") " FROM s_cat WHERE kind = 3 ORDER BY id, seq DESC"
						  " ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id, name = excluded.name,"
						  " updated_at = excluded.updated_at;"
						  "INSERT INTO customers AS t (id, email, name, created_at, updated_at)"
						  " SELECT DISTINCT ON (id) id, nullif(email, ''), nullif(name, ''),"
						  " " TS("at") ", " TS(
							  "at") " FROM s_customer ORDER BY id, seq DESC"
								" ON CONFLICT (id) DO UPDATE SET email = excluded.email, name = excluded.name,"
								" updated_at = excluded.updated_at;"
								"INSERT INTO class_series AS t (id, org_id, location_id, instructor_id, title,"
								" capacity, waitlist_capacity, price_cents, currency, timezone, weekday_mask,"
								" start_time, duration_min, first_date, last_date, skip_dates, created_at,"
								" updated_at)"
								" SELECT DISTINCT ON (id) id, org_id, location_id, instructor_id, title,"
								" capacity, waitlist_capacity, price_cents, currency, timezone, weekday_mask,"
								" start_time, duration_min, first_date, last_date, skip_dates,"
								" " TS("at") ", " TS(
									"at") " FROM s_series ORDER BY id, seq DESC"
									      " ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id,"
									      " location_id = excluded.location_id, instructor_id = excluded.instructor_id,"
									      " title = excluded.title, capacity = excluded.capacity,"
									      " waitlist_capacity = excluded.waitlist_capacity,"
									      " price_cents = excluded.price_cents, currency = excluded.currency,"
									      " timezone = excluded.timezone, weekday_mask = excluded.weekday_mask,"
									      " start_time = excluded.start_time, duration_min = excluded.duration_min,"
									      " first_date = excluded.first_date, last_date = excluded.last_date,"
									      " skip_dates = excluded.skip_dates, updated_at = excluded.updated_at;"
									      "UPDATE class_series t SET generated_through = g.through,"
									      " updated_at = greatest(t.updated_at, " TS(
										      "g.at") ")"
											      " FROM (SELECT DISTINCT ON (series_id) series_id, through, at FROM s_gen"
											      " ORDER BY series_id, seq DESC) g WHERE t.id = g.series_id;"
											      /* org settings after the orgs (an org and its settings may come in
	 * one batch): the last of each org's */
											      "UPDATE organizations t SET cancel_cutoff_hours = o.cutoff,"
											      " hold_minutes = o.hold, generation_horizon_days = o.horizon,"
											      " updated_at = greatest(t.updated_at, " TS(
												      "o.at") ")"
													      " FROM (SELECT DISTINCT ON (id) id, cutoff, hold, horizon, at"
													      " FROM s_orgset ORDER BY id, seq DESC) o WHERE t.id = o.id;";

/* Events this batch touches but did not create: their start_at (the
 * partition key) from PostgreSQL, for the cache. */
static const char sql_event_start[] =
	"UPDATE s_event s SET start_at = (extract(epoch FROM c.start_at) * 1000)::bigint"
	" FROM class_events c WHERE c.id = s.id AND s.start_at = 0"
	" RETURNING s.id, s.start_at";

/* New events as they end the batch (final settings and counters); an
 * event that exists already is an error (a unique violation stops). */
#define EVENT_INSERT                                                                                                                                      \
	"INSERT INTO class_events (id, series_id, org_id, location_id,"                                                                                   \
	" instructor_id, title, start_at, duration_min, capacity,"                                                                                        \
	" waitlist_capacity, price_cents, currency, reg_count, held_count,"                                                                               \
	" waitlist_count, status, created_at, updated_at, detached)"                                                                                      \
	" SELECT e.id, nullif(e.series_id, 0), e.org_id,"                                                                                                 \
	" nullif(e.location_id, 0), nullif(e.set_instructor, 0),"                                                                                         \
	" coalesce(nullif(e.title, ''), s.title, ''), " TS(                                                                                               \
		"e.start_at") ", e.duration_min,"                                                                                                         \
			      " e.capacity, e.waitlist_capacity, e.price_cents, e.currency, e.reg,"                                                       \
			      " e.held, e.wl, e.status, " TS(                                                                                             \
				      "e.created_at") ","                                                                                                 \
						      " " TS("e.updated_at") ", e.detached FROM s_event e LEFT JOIN class_series s ON s.id = e.series_id" \
									     " WHERE e.created ORDER BY e.id"
static const char sql_event_insert[] = EVENT_INSERT;
/* From a snapshot: the event may be there; the update below sets it. */
static const char sql_event_insert_snapshot[] =
	EVENT_INSERT " ON CONFLICT (id, start_at) DO NOTHING";

static const char sql_old_status[] =
	"UPDATE s_booking s SET old_status = r.status FROM registrations r"
	" WHERE r.id = s.id AND s.kind <> 1";

static const char sql_missing_booking[] =
	"SELECT id FROM s_booking WHERE kind = 0 AND old_status IS NULL"
	" ORDER BY id LIMIT 1";

/* Per event, the counters' change from bookings this batch did not create:
 * (final - previous) statuses. */
static const char sql_event_delta[] =
	"UPDATE s_event e SET dc = d.dc, dh = d.dh, dw = d.dw FROM"
	" (SELECT event_id,"
	"  count(*) FILTER (WHERE status = 'confirmed')"
	"   - count(*) FILTER (WHERE old_status = 'confirmed') AS dc,"
	"  count(*) FILTER (WHERE status = 'pending_payment')"
	"   - count(*) FILTER (WHERE old_status = 'pending_payment') AS dh,"
	"  count(*) FILTER (WHERE status = 'waitlisted')"
	"   - count(*) FILTER (WHERE old_status = 'waitlisted') AS dw"
	"  FROM s_booking WHERE kind <> 1 GROUP BY event_id) d"
	" WHERE d.event_id = e.id AND e.needs_update";

/* From here on, the staging tables are small and the reporting tables
 * large: index look-ups (nested loops), never a scan of a whole table
 * (the partition key in the events' join prunes to one partition). */
static const char sql_nested_loops[] =
	"SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off";

/* One update per event: the counters' change with the final capacity,
 * instructor and status, so the CHECK sees one row version the core had. */
static const char sql_event_update[] =
	"UPDATE class_events c SET"
	" reg_count = CASE WHEN x.cancelled THEN 0"
	"  ELSE c.reg_count + x.reg + x.dc END,"
	" held_count = CASE WHEN x.cancelled THEN 0"
	"  ELSE c.held_count + x.held + x.dh END,"
	" waitlist_count = CASE WHEN x.cancelled THEN 0"
	"  ELSE c.waitlist_count + x.wl + x.dw END,"
	" capacity = coalesce(x.capacity, c.capacity),"
	" instructor_id = coalesce(nullif(x.set_instructor, 0), c.instructor_id),"
	" status = coalesce(x.status, c.status),"
	" updated_at = greatest(c.updated_at, " TS(
		"x.updated_at") ")"
				" FROM s_event x"
				" WHERE x.needs_update AND c.id = x.id AND c.start_at = " TS(
					"x.start_at");

/* Edited events (EVENT_EDIT, docs/core.md "Event edits"), after the update
 * above found them by the start PostgreSQL had: the new start (a move to
 * another month's partition is a row movement), place, settings, title,
 * detached (a series edit kept it: it stays so, migration 0018).
 * RETURNING: the new starts, for the cache. */
static const char sql_event_edit[] = "UPDATE class_events c SET start_at = " TS(
	"x.new_start") ","
		       " location_id = nullif(x.location_id, 0), duration_min = x.duration_min,"
		       " waitlist_capacity = x.waitlist_capacity, price_cents = x.price_cents,"
		       " currency = x.currency,"
		       " title = CASE WHEN x.title <> '' THEN x.title ELSE c.title END,"
		       " detached = c.detached OR x.detached"
		       " FROM s_event x WHERE x.edited AND x.needs_update AND c.id = x.id"
		       " AND c.start_at = " TS(
			       "x.start_at") " RETURNING c.id, x.new_start";

/* Customers the bookings imply (a repeat does nothing). */
/* Touched events that are archived (archive_class_events_month, migration
 * 0007): their own row is gone, their bookings still apply. */
static const char sql_event_archived[] =
	"SELECT count(*) FROM s_event x WHERE x.needs_update"
	" AND EXISTS (SELECT 1 FROM bookd.archived_class_events a WHERE a.id = x.id)"
	" AND NOT EXISTS (SELECT 1 FROM class_events c WHERE c.id = x.id)";

static const char sql_customers_new[] =
	"INSERT INTO customers (id, created_at, updated_at)"
	" SELECT id, " TS("min(at)") ", " TS(
		"min(at)") " FROM s_newcust GROUP BY id ORDER BY id ON CONFLICT (id) DO NOTHING";

static const char sql_reg_update[] =
	"UPDATE registrations r SET status = s.status, late = s.late,"
	" hold_expires_at = " TS(
		"nullif(s.hold, 0)") ","
				     " updated_at = " TS(
					     "s.updated_at") " FROM s_booking s WHERE r.id = s.id AND s.kind = 0;";

static const char sql_reg_insert[] =
	"INSERT INTO registrations (id, event_id, customer_id, status,"
	" hold_expires_at, created_at, updated_at, late)"
	" SELECT id, event_id, customer_id, status, " TS(
		"nullif(hold, 0)") ","
				   " " TS("created_at") ", " TS(
					   "updated_at") ", late FROM s_booking WHERE kind = 1 ORDER BY id;"; /* new ones, in id order:
							* an event's rows land
							* on one index leaf */

static const char sql_reg_restore[] =
	"INSERT INTO registrations AS r (id, event_id, customer_id, status,"
	" hold_expires_at, created_at, updated_at, late)"
	" SELECT id, event_id, customer_id, status, " TS(
		"nullif(hold, 0)") ","
				   " " TS("created_at") ", " TS(
					   "updated_at") ", late FROM s_booking WHERE kind = 2 ORDER BY id"
							 " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
							 " hold_expires_at = excluded.hold_expires_at, updated_at = excluded.updated_at,"
							 " late = excluded.late"
							 " WHERE r.status IS DISTINCT FROM excluded.status"
							 " OR r.hold_expires_at IS DISTINCT FROM excluded.hold_expires_at"
							 " OR r.late IS DISTINCT FROM excluded.late;";

/* Waitlist rows: joins, then promotions and departures. Each promotion
 * that lands also writes waitlist_promotion_delay (ms from its decision to
 * this statement; decided within the last hour: a resync or a first
 * replication of an old log is no delay) into performance_metrics, in the
 * same transaction (active_alerts' waitlist_delay reads it). */
#define PROMOTION_DELAY(cte)                                                   \
	" INSERT INTO performance_metrics (metric_name, metric_value, tags)"   \
	" SELECT 'waitlist_promotion_delay', greatest(extract(epoch FROM"      \
	" clock_timestamp() - promoted_at) * 1000, 0),"                        \
	" jsonb_build_object('event_id', event_id) FROM " cte                  \
	" WHERE promoted_at > clock_timestamp() - interval '1 hour';"

static const char sql_waitlist[] =
	"WITH j AS (INSERT INTO event_waitlists (booking_id, event_id,"
	" customer_id, position, joined_at, promoted_at, left_at)"
	" SELECT s.id, s.event_id, s.customer_id,"
	" coalesce((SELECT max(w.position) FROM event_waitlists w"
	"  WHERE w.event_id = s.event_id), 0)"
	" + row_number() OVER (PARTITION BY s.event_id ORDER BY s.join_seq),"
	" " TS("s.created_at") ","
			       " CASE WHEN s.exit_status IN " SEATED
			       " THEN " TS(
				       "s.exit_at") " END,"
						    " CASE WHEN s.exit_status NOT IN " SEATED
						    " THEN " TS(
							    "s.exit_at") " END"
									 " FROM s_booking s"
									 " WHERE s.join_seq IS NOT NULL AND (s.kind = 1 OR s.old_status IS NULL)"
									 " ON CONFLICT (booking_id) DO NOTHING"
									 " RETURNING event_id, promoted_at)" PROMOTION_DELAY(
										 "j") "WITH u AS (UPDATE event_waitlists w SET"
										      " promoted_at = CASE WHEN s.exit_status IN " SEATED
										      " THEN " TS(
											      "s.exit_at") " END,"
													   " left_at = CASE WHEN s.exit_status IN " SEATED
													   " THEN NULL ELSE " TS(
														   "s.exit_at") " END"
																" FROM s_booking s WHERE w.booking_id = s.id AND s.kind <> 1"
																" AND s.old_status = 'waitlisted' AND s.exit_status IS NOT NULL"
																" AND w.promoted_at IS NULL AND w.left_at IS NULL"
																" RETURNING w.event_id, w.promoted_at)" PROMOTION_DELAY(
																	"u");

/* The core's event cancel cancels every active booking (no record each). */
static const char sql_event_cancel[] =
	"UPDATE registrations r SET status = 'cancelled', hold_expires_at = NULL,"
	" updated_at = " TS(
		"e.cancel_at") " FROM s_event e WHERE e.cancelled AND r.event_id = e.id"
			       " AND r.status IN " ACTIVE ";"
			       "UPDATE event_waitlists w SET left_at = " TS(
				       "e.cancel_at") " FROM s_event e WHERE e.cancelled AND w.event_id = e.id"
						      " AND w.promoted_at IS NULL AND w.left_at IS NULL;";

static const char sql_payments[] =
	"INSERT INTO payments (booking_id, customer_id, provider, payment_ref,"
	" amount_cents, currency, status, flagged, code, recorded_at)"
	" SELECT p.booking_id, coalesce(p.customer_id, (SELECT r.customer_id FROM"
	" registrations r WHERE r.id = p.booking_id)), 'stripe', p.ref, p.amount,"
	" p.currency, p.status, p.flagged, p.code, " TS(
		"p.at") " FROM s_payment p"
			" ON CONFLICT (provider, payment_ref, booking_id) DO NOTHING;";

static const char sql_notify[] =
	"INSERT INTO notifications (id, kind, booking_id, event_id, customer_id,"
	" payload, created_at)"
	" SELECT n.id, n.kind, n.booking_id, n.booking_id >> 24,"
	" coalesce(n.customer_id, (SELECT r.customer_id FROM registrations r"
	" WHERE r.id = n.booking_id)), jsonb_build_object('lsn', n.lsn), " TS(
		"n.at") " FROM s_notify n ORDER BY 5;"; /* ids are unique per log: a conflict
					  * stops; in customer order, the
					  * only index that is not appended
					  * to at its end */

/* A stream moves its own position, guarded by where it started from (two
 * replicators of one log cannot both apply). applied_lsn is what every
 * stream has: the first statement locks the row, so the second sees the
 * other streams' committed moves. */
static const char sql_state_stream[] =
	"UPDATE bookd.replication_state SET streams[$2::int] = $3::bigint,"
	" updated_at = now() WHERE log_id = $1 AND streams[$2::int] = $4::bigint";
static const char sql_state_min[] =
	"UPDATE bookd.replication_state SET applied_lsn ="
	" (SELECT min(v) FROM unnest(streams) v) WHERE log_id = $1";
/* A resync's batch moves every stream at once ($3 NULL: the guard only). */
static const char sql_state_all[] =
	"UPDATE bookd.replication_state SET streams = CASE WHEN $3::bigint IS NULL"
	" THEN streams ELSE array_fill($3::bigint, ARRAY[cardinality(streams)]) END,"
	" applied_lsn = coalesce($3::bigint, applied_lsn), updated_at = now()"
	" WHERE log_id = $1 AND streams = $2::bigint[]";

/* ---- applying a batch -------------------------------------------------------- */

/* The replication_state move of part k, in its transaction: 0 or an
 * error. A resync's batch (b->snapshot) moves every stream (move false:
 * none, the guard only). */
static int move_state(repl *r, struct batch *b, uint32_t k, uint64_t to,
		      bool move)
{
	PGconn *c = r->conn[k];
	struct part *p = &b->part[k];
	char stream_s[12], to_s[24], from_s[24],
		all_s[REPL_STREAM_MAX * 24 + 2];
	int rc;

	ASSERT(c && k < r->streams);
	ASSERT(b->snapshot ? k == 0 : p->from < to); /* it moves forward */
	snprintf(to_s, sizeof(to_s), "%" PRIu64, to);
	if (b->snapshot) {
		size_t n = 0;
		const char *pa[3] = { r->log_id, all_s, move ? to_s : NULL };

		all_s[n++] = '{';
		for (uint32_t i = 0; i < r->streams; i++)
			n += (size_t)snprintf(all_s + n, sizeof(all_s) - n,
					      "%s%" PRIu64, i ? "," : "",
					      r->stream_lsn[i]);
		snprintf(all_s + n, sizeof(all_s) - n, "}");
		rc = repl__pg_update_one(c, "replication_state", sql_state_all,
					 3, pa, p->err, sizeof(p->err));
		snprintf(from_s, sizeof(from_s), "%.20s", all_s);
	} else {
		const char *ps[4] = { r->log_id, stream_s, to_s, from_s };

		snprintf(stream_s, sizeof(stream_s), "%u", k + 1);
		snprintf(from_s, sizeof(from_s), "%" PRIu64, p->from);
		rc = repl__pg_update_one(c, "replication_state",
					 sql_state_stream, 4, ps, p->err,
					 sizeof(p->err));
	}
	if (rc == -EUCLEAN)
		snprintf(p->err, sizeof(p->err),
			 "replication_state of log '%s' is no longer at %s: "
			 "another replicator applies this log",
			 r->log_id, from_s);
	if (!rc && !b->snapshot) {
		const char *pm[1] = { r->log_id };
		rc = repl__pg_run(c, "replication_state", sql_state_min, 1, pm,
				  PGRES_COMMAND_OK, NULL, p->err,
				  sizeof(p->err));
	}
	return rc;
}

/* Events the part touches whose start (the partition key) was not known:
 * read from class_events into the cache (sql_event_start). */
static int lookup_starts(repl *r, PGconn *c, char *err, size_t es)
{
	PGresult *res = NULL;
	int rc = repl__pg_run(c, "event look-up", sql_event_start, 0, NULL,
			      PGRES_TUPLES_OK, &res, err, es);

	if (rc)
		return rc;
	for (int i = 0; i < PQntuples(res); i++) {
		int64_t id, ms;

		if (PQnfields(res) != 2 ||
		    !repl__parse_i64(PQgetvalue(res, i, 0), &id) ||
		    !repl__parse_i64(PQgetvalue(res, i, 1), &ms) || id <= 0 ||
		    ms == 0) {
			snprintf(err, es, "event look-up: unexpected row");
			rc = -EPROTO;
			break;
		}
		repl__starts_set(&r->starts, (uint64_t)id, ms);
	}
	PQclear(res);
	return rc;
}

/* The previous status of each staged booking the batch did not create;
 * a booking moved in the log that PostgreSQL never saw stops (-EUCLEAN). */
static int previous_statuses(PGconn *c, const struct part *p, char *err,
			     size_t es)
{
	PGresult *res;
	int rc = repl__pg_run(c, "previous statuses", sql_old_status, 0, NULL,
			      PGRES_COMMAND_OK, NULL, err, es);

	if (rc || !p->kinds[BK_SET])
		return rc; /* restored ones may be new */
	rc = repl__pg_run(c, "previous statuses", sql_missing_booking, 0, NULL,
			  PGRES_TUPLES_OK, &res, err, es);
	if (rc)
		return rc;
	if (PQntuples(res) > 0) {
		snprintf(err, es,
			 "booking %s changed in the log but is not in "
			 "registrations (log and PostgreSQL diverged)",
			 PQgetvalue(res, 0, 0));
		rc = -EUCLEAN;
	}
	PQclear(res);
	return rc;
}

/* One update per touched event that was not created here; each must be
 * found, in class_events or among the archived ones. */
static int update_events(PGconn *c, const struct part *p, char *err, size_t es)
{
	int64_t n = -1, archived = 0;
	PGresult *res;
	int rc = repl__pg_run(c, "updating events", sql_event_update, 0, NULL,
			      PGRES_COMMAND_OK, &res, err, es);

	if (rc)
		return rc;
	if (!repl__parse_i64(PQcmdTuples(res), &n))
		n = -1;
	PQclear(res);
	if (n >= 0 && n < p->updates) { /* archived ones? */
		rc = repl__pg_run(c, "archived events", sql_event_archived, 0,
				  NULL, PGRES_TUPLES_OK, &res, err, es);
		if (rc)
			return rc;
		if (PQntuples(res) != 1 ||
		    !repl__parse_i64(PQgetvalue(res, 0, 0), &archived))
			archived = -1;
		PQclear(res);
	}
	if (n + archived != p->updates) {
		snprintf(err, es,
			 "%u events touched, %" PRId64 " found in class_events "
			 "and %" PRId64 " archived (an event the log has is "
			 "missing: a partition detached without "
			 "archive_class_events_month, or another log's data?)",
			 p->updates, n, archived);
		return -EUCLEAN;
	}
	return 0;
}

/* Edited events moved (sql_event_edit); their new starts cached. */
static int edit_events(repl *r, PGconn *c, char *err, size_t es)
{
	PGresult *res = NULL;
	int rc = repl__pg_run(c, "editing events", sql_event_edit, 0, NULL,
			      PGRES_TUPLES_OK, &res, err, es);

	if (rc)
		return rc;
	for (int i = 0; i < PQntuples(res); i++) {
		int64_t id, ms;

		if (PQnfields(res) != 2 ||
		    !repl__parse_i64(PQgetvalue(res, i, 0), &id) ||
		    !repl__parse_i64(PQgetvalue(res, i, 1), &ms) || id <= 0 ||
		    ms == 0) {
			snprintf(err, es, "editing events: unexpected row");
			rc = -EPROTO;
			break;
		}
		repl__starts_set(&r->starts, (uint64_t)id, ms);
	}
	PQclear(res);
	return rc;
}

/* Customers the bookings imply; p->customers: how many were new. */
static int insert_customers(PGconn *c, struct part *p, char *err, size_t es)
{
	PGresult *res;
	int64_t n;
	int rc = repl__pg_run(c, "customers", sql_customers_new, 0, NULL,
			      PGRES_COMMAND_OK, &res, err, es);

	if (rc)
		return rc;
	if (repl__parse_i64(PQcmdTuples(res), &n) && n > 0)
		p->customers = (uint32_t)n;
	PQclear(res);
	return 0;
}

/* Registrations, waitlist rows, an event cancel's cancels, payments and
 * notifications: they need no answer, so one round trip (one by one,
 * timed, with BOOKD_REPL_TRACE). */
static int apply_rows(PGconn *c, const struct part *p, char *err, size_t es)
{
	const char *parts[8];
	size_t np = 0, multi_size = 0;
	char *multi;
	int rc = 0;

	if (p->kinds[BK_SET])
		parts[np++] = sql_reg_update;
	if (p->kinds[BK_NEW])
		parts[np++] = sql_reg_insert;
	if (p->kinds[BK_RESTORE])
		parts[np++] = sql_reg_restore;
	if (p->rows[ST_BOOKING])
		parts[np++] = sql_waitlist;
	if (p->cancels)
		parts[np++] = sql_event_cancel;
	if (p->rows[ST_PAYMENT])
		parts[np++] = sql_payments;
	if (p->rows[ST_NOTIFY])
		parts[np++] = sql_notify;
	ASSERT(np <= sizeof(parts) / sizeof(parts[0]));
	if (np == 0)
		return 0;
	if (repl__trace_on()) {
		for (size_t i = 0; !rc && i < np; i++) {
			char what[40];

			snprintf(what, sizeof(what), "%.36s", parts[i]);
			rc = repl__pg_run(c, what, parts[i], 0, NULL,
					  PGRES_COMMAND_OK, NULL, err, es);
		}
		return rc;
	}
	for (size_t i = 0; i < np; i++)
		multi_size += strlen(parts[i]);
	multi = malloc(multi_size + 1);
	if (!multi) {
		snprintf(err, es, "out of memory");
		return -ENOMEM;
	}
	multi[0] = '\0';
	for (size_t i = 0; i < np; i++)
		strcat(multi, parts[i]);
	ASSERT(strlen(multi) == multi_size);
	rc = repl__pg_run(c, "applying bookings", multi, 0, NULL,
			  PGRES_COMMAND_OK, NULL, err, es);
	free(multi);
	return rc;
}

/* Applies part k of the batch on stream k's connection in one transaction
 * that also moves the stream's position to `to`. 0, REPL_TRANSIENT (retry
 * on a new connection) or -EPROTO / -EUCLEAN (permanent), with p->err. */
static int apply_part(repl *r, struct batch *b, uint32_t k, uint64_t to,
		      bool move)
{
	PGconn *c = r->conn[k];
	struct part *p = &b->part[k];
	char *err = p->err;
	size_t es = sizeof(p->err);
	int rc;

	ASSERT(c);
	ASSERT(k < r->streams && k < b->parts);
	rc = repl__pg_run(c, "BEGIN", "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL,
			  err, es);
	for (int s = 0; !rc && s < ST_COUNT; s++)
		if (p->rows[s])
			rc = repl__pg_copy(c, stage_copy[s], &p->st[s], err,
					   es);
	if (!rc &&
	    (p->rows[ST_CAT] || p->rows[ST_CUSTOMER] || p->rows[ST_SERIES] ||
	     p->rows[ST_GEN] || p->rows[ST_ORGSET]))
		rc = repl__pg_run(c, "catalogue", sql_catalog, 0, NULL,
				  PGRES_COMMAND_OK, NULL, err, es);
	if (!rc && p->rows[ST_LEGACY])
		rc = repl__pg_run(c, "legacy ids", sql_legacy, 0, NULL,
				  PGRES_COMMAND_OK, NULL, err, es);
	if (!rc && p->misses)
		rc = lookup_starts(r, c, err, es);
	if (!rc && p->created)
		rc = repl__pg_run(c, "inserting events",
				  b->snapshot ? sql_event_insert_snapshot
					      : sql_event_insert,
				  0, NULL, PGRES_COMMAND_OK, NULL, err, es);
	if (!rc && (p->kinds[BK_SET] || p->kinds[BK_RESTORE]))
		rc = previous_statuses(c, p, err, es);
	if (!rc && p->updates && (p->kinds[BK_SET] || p->kinds[BK_RESTORE]))
		rc = repl__pg_run(c, "event deltas", sql_event_delta, 0, NULL,
				  PGRES_COMMAND_OK, NULL, err, es);
	if (!rc)
		rc = repl__pg_run(c, "nested loops", sql_nested_loops, 0, NULL,
				  PGRES_COMMAND_OK, NULL, err, es);
	if (!rc && p->updates)
		rc = update_events(c, p, err, es);
	if (!rc && p->edits)
		rc = edit_events(r, c, err, es);
	if (!rc && p->rows[ST_NEWCUST])
		rc = insert_customers(c, p, err, es);
	if (!rc)
		rc = apply_rows(c, p, err, es);
	if (!rc && (p->from < to || b->snapshot))
		rc = move_state(r, b, k, to, move);
	if (!rc)
		rc = repl__pg_run(c, "COMMIT", "COMMIT", 0, NULL,
				  PGRES_COMMAND_OK, NULL, err, es);
	if (rc && rc != REPL_TRANSIENT && PQstatus(c) == CONNECTION_OK)
		PQclear(PQexec(c, "ROLLBACK"));
	return rc;
}

/* Part k's transaction, on a thread of its own (or the caller's). A stream
 * that has the whole batch already may still have customers to insert. */
struct job {
	repl *r;
	struct batch *b;
	uint32_t k;
	uint64_t to;
	bool move;
	pthread_t thread;
	bool started;
};

static void *job_run(void *arg)
{
	struct job *j = arg;
	struct part *p = &j->b->part[j->k];

	p->rc = 0;
	if (p->from < j->to || j->b->snapshot || p->rows[ST_NEWCUST])
		p->committed = (p->rc = apply_part(j->r, j->b, j->k, j->to,
						   j->move)) == 0;
	return NULL;
}

/* Parts lo..hi-1 at once. 0, or the first permanent error (else a
 * transient one) into b->err. */
static int run_parts(repl *r, struct batch *b, uint32_t lo, uint32_t hi,
		     uint64_t to, bool move)
{
	struct job jobs[REPL_STREAM_MAX];
	int rc = 0;

	ASSERT(lo < hi && hi <= REPL_STREAM_MAX);
	for (uint32_t k = lo; k < hi; k++) {
		jobs[k] = (struct job){
			.r = r, .b = b, .k = k, .to = to, .move = move
		};
		if (k > lo)
			jobs[k].started =
				pthread_create(&jobs[k].thread, NULL, job_run,
					       &jobs[k]) == 0;
		if (k > lo && !jobs[k].started)
			job_run(&jobs[k]); /* no thread: in turn */
	}
	job_run(&jobs[lo]);
	for (uint32_t k = lo; k < hi; k++) {
		struct part *p = &b->part[k];

		if (jobs[k].started)
			pthread_join(jobs[k].thread, NULL);
		if (p->rc == 0 || (rc && rc != REPL_TRANSIENT) ||
		    (rc == REPL_TRANSIENT && p->rc == REPL_TRANSIENT))
			continue;
		rc = p->rc;
		if (r->streams > 1)
			snprintf(b->err, sizeof(b->err), "stream %u: %s", k + 1,
				 p->err);
		else
			snprintf(b->err, sizeof(b->err), "%s", p->err);
	}
	return rc;
}

/* Applies the batch: each stream's part in a transaction of its own that
 * moves the stream's position to `to` (a resync's batch: stream 0 alone,
 * moving every stream; move false: none). Partitions first (harmless
 * ahead of time), then the parts: stream 0 first when it has catalogue
 * rows (the events of a new series read its title), else all at once.
 * 0, REPL_TRANSIENT (retry on new connections) or a permanent -errno,
 * with b->err; b->part[k].committed says which streams moved. */
int repl__apply_batch(repl *r, struct batch *b, uint64_t to, bool move)
{
	const struct part *p0 = &b->part[0];
	uint32_t n = b->snapshot ? 1 : b->parts;
	int rc;

	ASSERT(n >= 1 && n <= REPL_STREAM_MAX && n <= r->streams);
	repl__batch_finish(b);
	for (uint32_t k = 0; k < n; k++)
		for (int s = 0; s < ST_COUNT; s++)
			if (b->part[k].st[s].broken) {
				snprintf(b->err, sizeof(b->err),
					 "batch too large to stage (out of memory)");
				return -ENOMEM;
			}
	if (b->months) {
		ASSERT(b->month_lo <= b->month_hi &&
		       b->month_hi < REPL_MONTH_COUNT);
		rc = repl__partitions_ensure(r, b->month_lo, b->month_hi,
					     b->err, sizeof(b->err));
		if (rc)
			return rc;
		for (uint32_t m = b->month_lo; m <= b->month_hi; m++)
			r->months[m / 8] |= (uint8_t)(1u << (m % 8));
	}
	if (n > 1 &&
	    (p0->rows[ST_CAT] || p0->rows[ST_CUSTOMER] || p0->rows[ST_SERIES] ||
	     p0->rows[ST_GEN] || p0->rows[ST_ORGSET])) {
		rc = run_parts(r, b, 0, 1, to, move);
		return rc ? rc : run_parts(r, b, 1, n, to, move);
	}
	return run_parts(r, b, 0, n, to, move);
}
