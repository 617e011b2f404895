#!/usr/bin/env bash
# The reporting schema (replicator/migrations/*.sql) against a real PostgreSQL.
#
#   eval "$(scripts/pg.sh start)"; bash tests/integration/test_schema.sh
#   scripts/pg.sh stop "$BOOKD_PG_DIR"
#
# Needs DATABASE_URL (exit 77, skipped, when unset or psql is missing). Works in
# a fresh database `bookd_schema_test_<pid>` created next to DATABASE_URL's and
# dropped at the end (BOOKD_SCHEMA_KEEP_DB=1 keeps it), so it never touches
# existing data. Applies the migrations twice through a tiny runner (one
# transaction per file, versions recorded in bookd.schema_migrations), then each file
# once more by hand (every statement is safe to rerun), loads a small data set
# (2 orgs, 3 months of events, bookings, waitlists, payments, metrics), runs the
# seed's Debug Queries and Dashboard Queries verbatim, refreshes the
# materialized views (also CONCURRENTLY, twice) and calls every function.
# Last line: "schema: N passed, M failed"; exit status non-zero on a failure.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
migrations="$root/replicator/migrations"

if [ -z "${DATABASE_URL:-}" ]; then
  echo "test_schema: DATABASE_URL is not set, skipped (eval \"\$(scripts/pg.sh start)\")"
  exit 77
fi
if ! command -v psql >/dev/null 2>&1; then
  echo "test_schema: psql not found, skipped (apt-get install postgresql-client-15)"
  exit 77
fi

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
check() { # check <name> <command...>: passes when the command succeeds
  local name=$1; shift
  if "$@" >/dev/null; then ok "$name"; else bad "$name"; fi
}

# ---- A database of our own -------------------------------------------------
testdb="bookd_schema_test_$$"
case "$DATABASE_URL" in
  postgres://* | postgresql://*)
    TEST_URL=$(printf '%s' "$DATABASE_URL" | sed -E "s#^(postgres(ql)?://[^/?]*)(/[^?]*)?#\1/$testdb#") ;;
  *) TEST_URL="$DATABASE_URL dbname=$testdb" ;;
esac
if ! psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $testdb" >/dev/null; then
  echo "test_schema: cannot create database $testdb"
  echo "schema: 0 passed, 1 failed"
  exit 1
fi
cleanup() {
  if [ "${BOOKD_SCHEMA_KEEP_DB:-0}" = 1 ]; then
    echo "test_schema: kept database $testdb"
  else
    psql "$DATABASE_URL" -X -q -c "DROP DATABASE IF EXISTS $testdb" >/dev/null 2>&1
  fi
}
trap cleanup EXIT

export PGOPTIONS="--client-min-messages=warning"
sql() { psql "$TEST_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }          # run, quiet
val() { psql "$TEST_URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; } # one value
eq() { # eq <name> <sql> <expected>: the query's output equals expected
  local got
  got=$(val "$2" 2>&1)
  if [ "$got" = "$3" ]; then ok "$1"; else bad "$1: expected [$3], got [$got]"; fi
}
val_has() { # val_has <name> <sql> <pattern>: the query's output has pattern
  local got
  got=$(val "$2" 2>&1)
  if printf '%s' "$got" | grep -q "$3"; then ok "$1"; else bad "$1: [$got]"; fi
}
fails() { # fails <name> <sql>: the statement must be refused
  if val "$2" >/dev/null 2>&1; then bad "$1: was accepted"; else ok "$1"; fi
}

# ---- The migration runner ------------------------------------------------------
# What the replicator does at start-up: each NNNN_name.sql not yet recorded in
# bookd.schema_migrations is applied in one transaction together with its
# record (a fresh database: the replicator's bootstrap, which also moves a
# schema_migrations of bookd's from public, is tested by test_schema_bookd).
apply_migrations() {
  local f base version count=0
  sql -c "CREATE SCHEMA IF NOT EXISTS bookd" \
      -c "CREATE TABLE IF NOT EXISTS bookd.schema_migrations (
            version bigint PRIMARY KEY, name text,
            applied_at timestamptz NOT NULL DEFAULT now())" || return 1
  for f in "$migrations"/[0-9]*.sql; do
    base=$(basename "$f" .sql)
    version=$((10#${base%%_*}))
    if [ -n "$(val "SELECT 1 FROM bookd.schema_migrations WHERE version = $version")" ]; then
      continue
    fi
    sql --single-transaction -f "$f" \
      -c "INSERT INTO bookd.schema_migrations (version, name) VALUES ($version, '$base')" \
      >/dev/null || { echo "migration $base failed"; return 1; }
    count=$((count + 1))
  done
  echo "$count"
}

nfiles=$(ls "$migrations"/[0-9]*.sql | wc -l)
out=$(apply_migrations); rc=$?
if [ $rc -eq 0 ] && [ "$out" = "$nfiles" ]; then ok "migrations: $nfiles applied"
else bad "migrations: first run ($out)"; echo "schema: $passed passed, $failed failed"; exit 1; fi
out=$(apply_migrations); rc=$?
if [ $rc -eq 0 ] && [ "$out" = 0 ]; then ok "migrations: second run applies nothing"
else bad "migrations: second run ($out)"; fi
eq "bookd.schema_migrations records every file" \
  "SELECT count(*) FROM bookd.schema_migrations" "$nfiles"
rerun_ok=1
for f in "$migrations"/[0-9]*.sql; do
  sql --single-transaction -f "$f" >/dev/null || { rerun_ok=0; echo "rerun of $f failed"; }
done
check "every migration file runs again on the applied schema" test $rerun_ok = 1

# ---- Partitions ------------------------------------------------------------------
eq "class_events is partitioned by range on start_at" \
  "SELECT pg_get_partkeydef('class_events'::regclass)" "RANGE (start_at)"
eq "no default partition" \
  "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'class_events'::regclass AND partdefid <> 0" 0
eq "the migration created this month's partition" \
  "SELECT to_regclass('class_events_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')) IS NOT NULL" t
eq "ensure_class_events_partitions creates what is missing" \
  "SELECT ensure_class_events_partitions('2031-01-15', '2031-03-01')" 3
eq "ensure_class_events_partitions again creates nothing" \
  "SELECT ensure_class_events_partitions('2031-01-01', '2031-03-31')" 0
eq "partition bounds are UTC months" \
  "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'class_events_2031_02'" \
  "FOR VALUES FROM ('2031-02-01 00:00:00+00') TO ('2031-03-01 00:00:00+00')"
eq "bounds do not depend on the session time zone" \
  "SET TimeZone = 'Pacific/Auckland';
   DO \$\$ BEGIN PERFORM ensure_class_events_partitions('2031-04-01', '2031-04-30'); END \$\$;
   RESET TimeZone;
   SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'class_events_2031_04'" \
  "FOR VALUES FROM ('2031-04-01 00:00:00+00') TO ('2031-05-01 00:00:00+00')"
eq "partitions carry the parent's indexes" \
  "SELECT count(*) FROM pg_indexes WHERE tablename = 'class_events_2031_02'" 6
tmp=$(mktemp -d)
val "SELECT ensure_class_events_partitions('2032-01-01', '2032-12-31')" >"$tmp/a" 2>&1 &
pa=$!
val "SELECT ensure_class_events_partitions('2032-01-01', '2032-12-31')" >"$tmp/b" 2>&1
wait $pa
a=$(cat "$tmp/a") b=$(cat "$tmp/b"); rm -rf "$tmp"
n=$(val "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'class\_events\_2032\_%'")
if [[ "$a" =~ ^[0-9]+$ && "$b" =~ ^[0-9]+$ ]] && [ $((a + b)) = 12 ] && [ "$n" = 12 ]; then
  ok "two concurrent ensure_class_events_partitions calls create each partition once"
else bad "two concurrent ensure_class_events_partitions calls: [$a] [$b] [$n]"; fi
fails "ensure_class_events_partitions refuses a reversed range" \
  "SELECT ensure_class_events_partitions('2031-02-01', '2031-01-01')"
fails "an event in a month without a partition is refused" \
  "INSERT INTO class_events (id, org_id, start_at, duration_min, capacity)
   VALUES (999999, 1, '2090-01-01 10:00+00', 60, 10)"

# ---- A small realistic data set ------------------------------------------------
# Org 1 (Zurich, free yoga, Mon/Wed 18:00, 10 seats, waitlist 5) and org 2
# (New York, paid spin, Tue/Thu 07:30, 3 seats, waitlist 3), 90 days of events.
load_data() {
  sql <<'SQL'
SELECT ensure_class_events_partitions(current_date, current_date + 120);

INSERT INTO organizations (id, name, timezone) VALUES
  (1, 'Studio Limmat', 'Europe/Zurich'), (2, 'Hudson Spin', 'America/New_York')
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, updated_at = now();
INSERT INTO locations (id, org_id, name) VALUES (1, 1, 'Kreis 5'), (2, 2, 'Chelsea')
ON CONFLICT (id) DO NOTHING;
INSERT INTO instructors (id, org_id, name) VALUES (1, 1, 'Anna Meier'), (2, 2, 'Jo Park')
ON CONFLICT (id) DO NOTHING;
INSERT INTO customers (id, email, name)
SELECT 'cust-' || n, 'c' || n || '@example.com', 'Customer ' || n FROM generate_series(1, 12) n
ON CONFLICT (id) DO NOTHING;
INSERT INTO customers (id, email) VALUES ('6f1c2b9e-4d2a-4c8e-9a55-0e2f7b1d3c44', NULL)
ON CONFLICT (id) DO NOTHING;

INSERT INTO class_series (id, org_id, location_id, instructor_id, title, capacity,
  waitlist_capacity, price_cents, currency, timezone, weekday_mask, start_time,
  duration_min, first_date, last_date, skip_dates, generated_through) VALUES
  (1, 1, 1, 1, 'Vinyasa Flow', 10, 5, 0, '', 'Europe/Zurich', 1 | 4, '18:00', 60,
   current_date, NULL, ARRAY[current_date + 14], current_date + 89),
  (2, 2, 2, 2, 'Morning Spin', 3, 3, 2500, 'usd', 'America/New_York', 2 | 8, '07:30', 45,
   current_date, current_date + 180, '{}', current_date + 89)
ON CONFLICT (id) DO NOTHING;

-- events, the way generation makes them: local time in the series' zone
INSERT INTO class_events (id, series_id, org_id, location_id, instructor_id, title,
  start_at, duration_min, capacity, waitlist_capacity, price_cents, currency)
SELECT row_number() OVER (ORDER BY start_at, s.id), s.id, s.org_id, s.location_id,
       s.instructor_id, s.title, start_at, s.duration_min, s.capacity,
       s.waitlist_capacity, s.price_cents, s.currency
  FROM class_series s
 CROSS JOIN LATERAL (
   SELECT (d::date + s.start_time) AT TIME ZONE s.timezone AS start_at
     FROM generate_series(current_date + 1, current_date + 90, interval '1 day') d
    WHERE s.weekday_mask & (1 << (extract(isodow FROM d)::int - 1)) <> 0
      AND NOT d::date = ANY (s.skip_dates)) g
ON CONFLICT (id, start_at) DO NOTHING;

-- bookings: id = event_id << 24 | n
-- org 1: (event id % 11) confirmed; a full class has 2 waitlisted; one cancels
INSERT INTO registrations (id, event_id, customer_id, status, created_at)
SELECT (e.id << 24) | n, e.id, 'cust-' || n, 'confirmed', e.start_at - interval '3 days'
  FROM class_events e CROSS JOIN LATERAL generate_series(1, (e.id % 11)::int) n
 WHERE e.series_id = 1;
INSERT INTO registrations (id, event_id, customer_id, status, created_at)
SELECT (e.id << 24) | (10 + k), e.id, 'cust-' || (10 + k), 'waitlisted', e.start_at - interval '2 days'
  FROM class_events e CROSS JOIN generate_series(1, 2) k
 WHERE e.series_id = 1 AND e.id % 11 = 10;
INSERT INTO event_waitlists (booking_id, event_id, customer_id, position, joined_at)
SELECT id, event_id, customer_id, (id & 16777215)::int - 10, created_at
  FROM registrations WHERE status = 'waitlisted';
-- on the first full class, cust-1 cancels and cust-11 is promoted (free: confirmed)
WITH ev AS (SELECT min(event_id) AS id FROM registrations WHERE status = 'waitlisted')
UPDATE registrations r SET status = CASE r.customer_id WHEN 'cust-1' THEN 'cancelled' ELSE 'confirmed' END,
                           updated_at = now()
  FROM ev WHERE r.event_id = ev.id AND r.customer_id IN ('cust-1', 'cust-11');
UPDATE event_waitlists w SET promoted_at = now()
  FROM registrations r WHERE r.id = w.booking_id AND r.status = 'confirmed';

-- org 2 (paid): 2 confirmed and paid, 1 hold on even events; odd events full
-- with 1 waitlisted; a failed payment on the first event
INSERT INTO registrations (id, event_id, customer_id, status, hold_expires_at, created_at)
SELECT (e.id << 24) | n, e.id, 'cust-' || n,
       CASE WHEN n <= 2 OR e.id % 2 = 1 THEN 'confirmed' ELSE 'pending_payment' END,
       CASE WHEN n = 3 AND e.id % 2 = 0 THEN now() + interval '10 minutes' END,
       now() - interval '1 hour'
  FROM class_events e CROSS JOIN generate_series(1, 3) n
 WHERE e.series_id = 2;
INSERT INTO registrations (id, event_id, customer_id, status, created_at)
SELECT (e.id << 24) | 4, e.id, '6f1c2b9e-4d2a-4c8e-9a55-0e2f7b1d3c44', 'waitlisted', now()
  FROM class_events e WHERE e.series_id = 2 AND e.id % 2 = 1;
INSERT INTO event_waitlists (booking_id, event_id, customer_id, position, joined_at)
SELECT id, event_id, customer_id, 1, created_at
  FROM registrations WHERE customer_id = '6f1c2b9e-4d2a-4c8e-9a55-0e2f7b1d3c44';
INSERT INTO registrations (id, event_id, customer_id, status, created_at)
SELECT (e.id << 24) | 5, e.id, 'cust-9', 'payment_failed', now() - interval '2 hours'
  FROM class_events e WHERE e.series_id = 2 ORDER BY e.start_at LIMIT 1;
INSERT INTO registrations (id, event_id, customer_id, status, created_at)
SELECT (e.id << 24) | 6, e.id, 'cust-10', 'expired', now() - interval '3 hours'
  FROM class_events e WHERE e.series_id = 2 ORDER BY e.start_at LIMIT 1;

INSERT INTO payments (booking_id, customer_id, payment_ref, amount_cents, currency, status)
SELECT r.id, r.customer_id, 'evt_' || r.id, 2500, 'usd', 'succeeded'
  FROM registrations r JOIN class_series s ON s.id = 2
  JOIN class_events e ON e.id = r.event_id AND e.series_id = 2
 WHERE r.status = 'confirmed';
INSERT INTO payments (booking_id, customer_id, payment_ref, amount_cents, currency, status, flagged, code)
SELECT id, customer_id, 'evt_fail_' || id, 2500, 'usd', 'failed', false, 0
  FROM registrations WHERE status = 'payment_failed';
INSERT INTO payments (booking_id, customer_id, payment_ref, amount_cents, currency, status, flagged, code)
SELECT id, customer_id, 'evt_mismatch_' || id, 100, 'eur', 'mismatch', true, 9
  FROM registrations WHERE status = 'pending_payment' ORDER BY id LIMIT 1;

INSERT INTO notifications (id, kind, booking_id, event_id, customer_id, created_at, delivered_at)
SELECT 'n-' || id || '-confirmed', 'booking_confirmed', id, event_id, customer_id, created_at,
       created_at + interval '2 seconds'
  FROM registrations WHERE status = 'confirmed';
INSERT INTO notifications (id, kind, booking_id, event_id, customer_id)
SELECT 'n-' || booking_id || '-promoted', 'promoted', booking_id, event_id, customer_id
  FROM event_waitlists WHERE promoted_at IS NOT NULL;

-- the counters, as the replicator maintains them
UPDATE class_events e
   SET reg_count = c.confirmed, held_count = c.held, waitlist_count = c.waiting, updated_at = now()
  FROM (SELECT e2.id, e2.start_at,
               count(r.id) FILTER (WHERE r.status = 'confirmed') AS confirmed,
               count(r.id) FILTER (WHERE r.status = 'pending_payment') AS held,
               count(r.id) FILTER (WHERE r.status = 'waitlisted') AS waiting
          FROM class_events e2 LEFT JOIN registrations r ON r.event_id = e2.id
         GROUP BY e2.id, e2.start_at) c
 WHERE e.id = c.id AND e.start_at = c.start_at;
-- a cancelled event (its bookings cancelled by the same decision)
UPDATE registrations SET status = 'cancelled', updated_at = now()
 WHERE event_id = (SELECT max(id) FROM class_events WHERE series_id = 1)
   AND status IN ('confirmed', 'pending_payment', 'waitlisted');
UPDATE class_events SET status = 'cancelled', reg_count = 0, held_count = 0, waitlist_count = 0
 WHERE id = (SELECT max(id) FROM class_events WHERE series_id = 1);

-- metrics: booking latency (ms) over the last day, a slow operation just now
INSERT INTO performance_metrics (metric_name, metric_value, tags, recorded_at)
SELECT 'booking_operation_duration', 0.2 + (n % 50) * 0.1,
       jsonb_build_object('operation', (ARRAY['book', 'cancel', 'webhook'])[1 + n % 3], 'outcome', 'ok'),
       now() - (n % 1440) * interval '1 minute'
  FROM generate_series(1, 3000) n;
INSERT INTO performance_metrics (metric_name, metric_value, tags, recorded_at)
SELECT 'booking_operation_duration', 2500 + n, '{"operation":"waitlist_promote","outcome":"ok"}',
       now() - interval '1 minute'
  FROM generate_series(1, 30) n;
INSERT INTO performance_metrics (metric_name, metric_value, tags)
VALUES ('replication_lag_seconds', 0.4, '{"log_id":"node1"}');

INSERT INTO health_checks (check_name, status, details, checked_at, response_time_ms) VALUES
  ('api', 'healthy', '{}', now() - interval '2 minutes', 3),
  ('replication', 'warning', '{"lag_records": 1200}', now() - interval '1 minute', 12);

-- exactly-once position, as the replicator writes it
INSERT INTO bookd.replication_state (log_id, applied_lsn) VALUES ('node1/lane0', 4096)
ON CONFLICT (log_id) DO UPDATE SET applied_lsn = EXCLUDED.applied_lsn, updated_at = now();
INSERT INTO bookd.replication_state (log_id, applied_lsn) VALUES ('node1/lane0', 8192)
ON CONFLICT (log_id) DO UPDATE SET applied_lsn = EXCLUDED.applied_lsn, updated_at = now();
SQL
}
check "load a small data set" load_data

eq "events span at least 3 months" \
  "SELECT count(DISTINCT date_trunc('month', start_at AT TIME ZONE 'UTC')) >= 3 FROM class_events" t
eq "every month with events has its partition class_events_YYYY_MM" \
  "SELECT count(*) FROM (SELECT DISTINCT to_char(start_at AT TIME ZONE 'UTC', 'YYYY_MM') m FROM class_events) x
    WHERE NOT EXISTS (SELECT 1 FROM pg_tables WHERE tablename = 'class_events_' || m)" 0
eq "each event row lives in its month's partition" \
  "SELECT count(*) FROM class_events
    WHERE tableoid::regclass::text <> 'class_events_' || to_char(start_at AT TIME ZONE 'UTC', 'YYYY_MM')" 0
eq "upsert by (id, start_at) updates in place" \
  "INSERT INTO class_events (id, series_id, org_id, title, start_at, duration_min, capacity)
   SELECT id, series_id, org_id, title, start_at, duration_min, capacity FROM class_events WHERE id = 1
   ON CONFLICT (id, start_at) DO UPDATE SET title = EXCLUDED.title || '', updated_at = now();
   SELECT count(*) FROM class_events WHERE id = 1" 1
eq "replication_state keeps one position per log" \
  "SELECT applied_lsn FROM bookd.replication_state WHERE log_id = 'node1/lane0'" 8192
eq "bookings in all six statuses exist" \
  "SELECT count(DISTINCT status) FROM registrations" 6
fails "overbooking is refused (reg_count + held_count > capacity)" \
  "UPDATE class_events SET reg_count = capacity + 1 - held_count WHERE id = 1"
fails "a second active booking of a customer on an event is refused" \
  "INSERT INTO registrations (id, event_id, customer_id, status)
   SELECT (event_id << 24) | 200, event_id, customer_id, 'confirmed'
     FROM registrations WHERE status = 'confirmed' LIMIT 1"
fails "an unknown booking status is refused" \
  "INSERT INTO registrations (id, event_id, customer_id, status) VALUES ((7::bigint << 24) | 300, 7, 'x', 'booked')"
fails "a malformed customer id is refused" \
  "INSERT INTO customers (id) VALUES ('no spaces allowed')"
fails "a booking id not of its event is refused" \
  "INSERT INTO registrations (id, event_id, customer_id, status) VALUES (5, 7, 'cust-1', 'cancelled')"

# ---- The seed's Debug Queries, verbatim -----------------------------------------
debug_partitions=$(cat <<'SQL'
-- Check partition distribution
SELECT 
  schemaname,
  tablename,
  pg_size_pretty(pg_total_relation_size(schemaname||'.'||tablename)) as size
FROM pg_tables 
WHERE tablename LIKE 'class_events_%'
ORDER BY pg_total_relation_size(schemaname||'.'||tablename) DESC;
SQL
)
debug_conflicts=$(cat <<'SQL'
-- Check booking conflicts
SELECT 
  event_id,
  count(*) as registration_count,
  capacity,
  reg_count
FROM public.registrations r
JOIN public.class_events e ON e.id = r.event_id
WHERE r.status = 'confirmed'
GROUP BY event_id, capacity, reg_count
HAVING count(*) != reg_count;
SQL
)
debug_waitlist=$(cat <<'SQL'
-- Check waitlist processing
SELECT 
  event_id,
  count(*) as waitlist_size,
  count(*) FILTER (WHERE promoted_at IS NOT NULL) as promoted_count
FROM public.event_waitlists
GROUP BY event_id
ORDER BY waitlist_size DESC;
SQL
)
# ---- The seed's Dashboard Queries, verbatim ----------------------------------------
dash_perf=$(cat <<'SQL'
-- Booking performance (last 24h)
SELECT 
  tags->>'operation' as operation,
  AVG(metric_value) as avg_ms,
  PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY metric_value) as p95_ms,
  COUNT(*) as count
FROM public.performance_metrics 
WHERE metric_name = 'booking_operation_duration'
  AND recorded_at > now() - interval '24 hours'
GROUP BY tags->>'operation';
SQL
)
dash_alerts=$(cat <<'SQL'
-- Active alerts
SELECT * FROM public.active_alerts;
SQL
)
dash_health=$(cat <<'SQL'
-- System health
SELECT public.get_system_health_summary();
SQL
)

rows() { # rows <sql>: the number of rows the query returns ("ERR" on error)
  local out
  out=$(psql "$TEST_URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1" 2>/dev/null) || { echo ERR; return; }
  if [ -z "$out" ]; then echo 0; else printf '%s\n' "$out" | wc -l; fi
}
n=$(rows "$debug_partitions")
nparts=$(val "SELECT count(*) FROM pg_inherits WHERE inhparent = 'class_events'::regclass")
if [ "$n" = "$nparts" ]; then ok "debug: partition distribution lists the $n partitions"
else bad "debug: partition distribution: $n rows, $nparts partitions"; fi
n=$(rows "$debug_conflicts")
if [ "$n" = 0 ]; then ok "debug: booking conflicts returns no row"
else bad "debug: booking conflicts returned $n rows"; fi
n=$(psql "$TEST_URL" -X -q -A -t -v ON_ERROR_STOP=1 \
  -c "BEGIN" -c "UPDATE class_events SET reg_count = reg_count - 1 WHERE id = 10" \
  -c "$debug_conflicts" -c "ROLLBACK" 2>&1 | grep -c '|')
if [ "$n" = 1 ]; then ok "debug: booking conflicts finds a broken counter"
else bad "debug: booking conflicts on a broken counter: $n rows"; fi
n=$(rows "$debug_waitlist")
want=$(val "SELECT count(DISTINCT event_id) FROM registrations WHERE id IN (SELECT booking_id FROM event_waitlists)")
if [ "$n" = "$want" ] && [ "$n" -gt 0 ]; then ok "debug: waitlist processing lists $n events"
else bad "debug: waitlist processing: $n rows, expected $want"; fi
eq "debug: waitlist processing counts the promotion" \
  "SELECT count(*) FILTER (WHERE promoted_at IS NOT NULL) FROM event_waitlists" 1

n=$(rows "$dash_perf")
if [ "$n" = 4 ]; then ok "dashboard: booking performance per operation (4 operations)"
else bad "dashboard: booking performance: $n rows"; fi
out=$(psql "$TEST_URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$dash_alerts" 2>&1)
if [ $? -eq 0 ] && printf '%s' "$out" | grep -q '^booking_latency|warning|waitlist_promote|' &&
   printf '%s' "$out" | grep -q '^health_check|warning|replication|'; then
  ok "dashboard: active alerts (slow waitlist_promote p95 > 2s, replication warning)"
else bad "dashboard: active alerts: [$out]"; fi
val_has "dashboard: system health summary" "$dash_health" '"status": "warning"'

# ---- Materialized views ------------------------------------------------------------
for mv in event_search_mv customer_dashboard_mv instructor_schedule_mv org_analytics_mv; do
  eq "$mv has a unique index" \
    "SELECT count(*) > 0 FROM pg_indexes i JOIN pg_index x ON x.indexrelid = i.indexname::regclass
      WHERE i.tablename = '$mv' AND x.indisunique" t
done
val_has "refresh_all_materialized_views()" "SELECT refresh_all_materialized_views()" '"concurrent": true'
val_has "refresh_all_materialized_views() again" "SELECT refresh_all_materialized_views()" '"org_analytics_mv"'
check "refresh_all_materialized_views(false)" val "SELECT refresh_all_materialized_views(false)"
for i in 1 2; do
  check "REFRESH MATERIALIZED VIEW CONCURRENTLY, all four (run $i)" sql \
    -c "REFRESH MATERIALIZED VIEW CONCURRENTLY public.event_search_mv" \
    -c "REFRESH MATERIALIZED VIEW CONCURRENTLY public.customer_dashboard_mv" \
    -c "REFRESH MATERIALIZED VIEW CONCURRENTLY public.instructor_schedule_mv" \
    -c "REFRESH MATERIALIZED VIEW CONCURRENTLY public.org_analytics_mv"
done
# the seed's Step 4 checks
eq "event_search_mv has every upcoming event" \
  "SELECT (SELECT count(*) FROM public.event_search_mv) = (SELECT count(*) FROM class_events WHERE start_at >= now() - interval '1 day')" t
eq "customer_dashboard_mv has every customer" \
  "SELECT (SELECT count(*) FROM public.customer_dashboard_mv) = (SELECT count(*) FROM customers)" t
eq "instructor_schedule_mv has every event" \
  "SELECT (SELECT count(*) FROM public.instructor_schedule_mv) = (SELECT count(*) FROM class_events)" t
eq "org_analytics_mv: one row per org and month, confirmed = reg_count" \
  "SELECT (SELECT sum(confirmed) FROM public.org_analytics_mv) =
          (SELECT sum(reg_count) FROM class_events WHERE status = 'scheduled')
      AND (SELECT count(*) FROM public.org_analytics_mv) =
          (SELECT count(DISTINCT (org_id, date_trunc('month', start_at AT TIME ZONE 'UTC'))) FROM class_events)" t
eq "org_analytics_mv: revenue in usd" \
  "SELECT sum((revenue_cents->>'usd')::bigint) = (SELECT sum(amount_cents) FROM payments WHERE status = 'succeeded')
     FROM org_analytics_mv WHERE org_id = 2" t
eq "event_search_mv: available seats" \
  "SELECT bool_and(available = capacity - reg_count - held_count) FROM event_search_mv WHERE status = 'scheduled'" t
eq "event_search_mv: text search" \
  "SELECT count(*) > 0 FROM event_search_mv WHERE search_vector @@ to_tsquery('simple', 'vinyasa & anna')" t
eq "customer_dashboard_mv: cust-11 was promoted" \
  "SELECT confirmed_count >= 1 FROM customer_dashboard_mv WHERE customer_id = 'cust-11'" t

# ---- Functions -------------------------------------------------------------------
val_has "health_check_database()" "SELECT health_check_database()" '"status": "healthy"'
val_has "health_check_booking_system()" "SELECT health_check_booking_system()" '"mismatched_events": 0'
eq "get_booking_performance_summary(): 3030 operations, 4 kinds" \
  "SELECT (s->>'total_operations') || ' ' || (SELECT count(*) FROM jsonb_object_keys(s->'operations'))
     FROM (SELECT get_booking_performance_summary() s) x" "3030 4"
eq "get_booking_performance_summary(): p95 of book under 300 ms" \
  "SELECT (get_booking_performance_summary(24)->'operations'->'book'->>'p95_ms')::numeric < 300" t
eq "get_system_health_summary(): checks and alerts" \
  "SELECT (s->>'active_alerts')::int >= 2 AND jsonb_array_length(s->'checks') = 4
     FROM (SELECT get_system_health_summary() s) x" t
eq "ensure_class_events_partitions() for the data's range creates nothing" \
  "SELECT ensure_class_events_partitions(current_date, current_date + 90)" 0
eq "no partition alert once partitions exist" \
  "SELECT count(*) FROM active_alerts WHERE alert_type = 'partitions'" 0

echo "schema: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
