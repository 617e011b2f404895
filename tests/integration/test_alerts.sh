#!/usr/bin/env bash
# Every rule of the seed's active_alerts fires from what bookd writes
# (docs/operations.md, "Alerts and what fires them"), against a real
# PostgreSQL, each provoked for real:
#   - booking time > 2 s (warning), > 5 s (critical): a slow disk, the log's
#     fdatasync delayed through BOOKD_TEST_FSYNC_FILE (tests only);
#   - database time > 500 ms (warning), > 1 s (critical): a lock held on
#     bookd.replication_state while the scheduled health check
#     (--health-every 2) reads it;
#   - high error rate: the disk fails (fdatasync EIO): bookings answered 503;
#   - partition maintenance failure: next month's partition detached and a
#     table of its name in the way; bookd restarted: its partitions_ahead
#     job fails (health check 'partitions' critical) and the partition is
#     missing;
# and the scheduled health checks land in health_checks, and the prune job
# deletes rows older than the retention (30 days), no others; every line
# bookd logged meanwhile (the failures too) is logfmt. The waitlist
# rule: test_alerts_waitlist.sh.
#
#   eval "$(scripts/pg.sh start)"; bash tests/integration/test_alerts.sh
#
# Exit 77 (skipped) without DATABASE_URL, psql, curl or jq.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/pg_lib.sh"
test_setup test_alerts curl jq
pg_need test_alerts
db_create bookd_alerts
export BOOKD_TEST_FSYNC_FILE=$tmp/fsync
echo 0 >"$BOOKD_TEST_FSYNC_FILE"

alert() { # alert TYPE SEVERITY SOURCE: polls active_alerts (10 s)
  local end=$((SECONDS + 10))
  while [ $SECONDS -lt $end ]; do
    [ "$(q "SELECT count(*) FROM active_alerts WHERE alert_type = '$1'
            AND severity = '$2' AND source = '$3'")" -gt 0 ] && return 0
    sleep 0.02
  done
  q "SELECT alert_type, severity, source, message FROM active_alerts" >&2
  return 1
}

bookd_start "$tmp/bookd.log" --health-every 2
catalog 5 5
check "replication caught up" caught_up
check "scheduled health checks land: database, booking_system, replication" \
  wait_rows "SELECT count(DISTINCT check_name) FROM health_checks
             WHERE check_name IN ('database', 'booking_system', 'replication')" 3

# ---- booking time ---------------------------------------------------------------
echo 2300 >"$BOOKD_TEST_FSYNC_FILE"
book "${EVENTS[0]}" slow1
check "a booking on a 2.3 s disk: 201" test "$st" = 201
check "booking time > 2 s: warning" alert booking_latency warning book
echo 5600 >"$BOOKD_TEST_FSYNC_FILE"
book "${EVENTS[0]}" slow2
echo 0 >"$BOOKD_TEST_FSYNC_FILE"
check "a booking on a 5.6 s disk: 201" test "$st" = 201
check "booking time > 5 s: critical" alert booking_latency critical book

# ---- database time ----------------------------------------------------------------
# hold_lock SECONDS: an ACCESS EXCLUSIVE lock on bookd.replication_state
# until the health check waits on it, then SECONDS more (timed inside
# PostgreSQL: the psql round trips of a busy machine do not count).
hold_lock() {
  psql "$DB" -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
BEGIN;
LOCK TABLE bookd.replication_state IN ACCESS EXCLUSIVE MODE;
DO \$\$
BEGIN
  FOR i IN 1..500 LOOP
    PERFORM pg_stat_clear_snapshot();
    IF EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                AND application_name = 'bookd-maintenance') THEN
      PERFORM pg_sleep($1);
      RETURN;
    END IF;
    PERFORM pg_sleep(0.02);
  END LOOP;
  RAISE EXCEPTION 'no health check waited';
END
\$\$;
COMMIT;
SQL
}
check "the health check waited on the lock (0.75 s)" hold_lock 0.75
check "database time > 500 ms: warning" alert health_check warning database
check "the health check waited on the lock (1.3 s)" hold_lock 1.3
check "database time > 1 s: critical" alert health_check critical database

# ---- errors ----------------------------------------------------------------------------
echo fail >"$BOOKD_TEST_FSYNC_FILE"
codes=
for i in $(seq 1 25); do book "${EVENTS[1]}" "err$i"; codes="$codes $st"; done
check "bookings on a failing disk: 503 each" \
  test "$(echo $codes | tr ' ' '\n' | sort -u)" = 503
check "high error rate: critical (25 of 27 bookings failed)" \
  alert booking_errors critical book
stop_pid
echo 0 >"$BOOKD_TEST_FSYNC_FILE"

# ---- partitions, and the prune job ----------------------------------------------------------
next=$(q "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month', 'YYYY_MM')")
q "ALTER TABLE class_events DETACH PARTITION class_events_$next;
   ALTER TABLE class_events_$next RENAME TO saved_$next;
   CREATE TABLE class_events_$next (x int);
   INSERT INTO performance_metrics (metric_name, metric_value, recorded_at)
   VALUES ('old', 1, now() - interval '31 days'), ('recent', 1, now() - interval '29 days');
   INSERT INTO health_checks (check_name, status, checked_at)
   VALUES ('old', 'healthy', now() - interval '31 days'),
          ('recent', 'healthy', now() - interval '29 days')" >/dev/null
bookd_start "$tmp/bookd.log" --health-every 1
check "partition maintenance failure: health check 'partitions' critical" \
  alert health_check critical partitions
check "partition maintenance failure: next month's partition missing" \
  alert partitions warning class_events
check "the failure says why" \
  wait_rows "SELECT count(*) FROM health_checks WHERE check_name = 'partitions'
             AND details->>'error' LIKE '%class_events_$next exists and is not a partition%'" 1
check "prune: rows older than 30 days deleted, younger kept" \
  wait_rows "SELECT (SELECT count(*) FROM performance_metrics WHERE metric_name IN ('old', 'recent'))
              || '/' || (SELECT count(*) FROM health_checks WHERE check_name IN ('old', 'recent'))" 1/1
check "prune: the recent ones are the ones kept" \
  test "$(q "SELECT count(*) FROM performance_metrics WHERE metric_name = 'recent'")" = 1
stop_pid
check "every line of bookd's log is logfmt with time= and level=" log_not_logfmt "$tmp/bookd.log"

echo "alerts: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
