#!/usr/bin/env bash
# The waitlist rule of the seed's active_alerts fires from what bookd writes
# (docs/operations.md, "Alerts and what fires them"): a promotion that
# reaches PostgreSQL late. bookd promotes in the same decision as the
# cancel that frees the seat; here the replicator cannot write
# event_waitlists for 33 s (a lock held on it), so the promotion lands ~33 s
# after it was decided: its waitlist_promotion_delay row (ms) is over 30 s
# and active_alerts shows waitlist_delay (warning). The promoted booking is
# then in PostgreSQL once, confirmed, with its promoted_at. About 40 s.
#
#   eval "$(scripts/pg.sh start)"; bash tests/integration/test_alerts_waitlist.sh
#
# Exit 77 (skipped) without DATABASE_URL, psql, curl or jq.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/pg_lib.sh"
test_setup test_alerts_waitlist curl jq
pg_need test_alerts_waitlist
db_create bookd_alerts_wl

bookd_start "$tmp/bookd.log"
catalog 1 2
ev=${EVENTS[0]}
book "$ev" ada
seated=$(printf '%s' "$body" | jq -r .booking.id)
book "$ev" bob
check "bob waits (position 1)" test "$(printf '%s' "$body" | jq -r .booking.status)" = waitlisted
check "replication caught up" caught_up
check "no waitlist alert yet" \
  test "$(q "SELECT count(*) FROM active_alerts WHERE alert_type = 'waitlist_delay'")" = 0

# The lock, held by PostgreSQL itself for 33 s from when it is taken.
psql "$DB" -X -q -c "BEGIN" -c "LOCK TABLE event_waitlists IN ACCESS EXCLUSIVE MODE" \
  -c "SELECT pg_sleep(33)" -c "COMMIT" >/dev/null 2>&1 &
locker=$!
wait_rows "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
           WHERE c.relname = 'event_waitlists' AND l.mode = 'AccessExclusiveLock'
           AND l.granted" 1 >/dev/null
svc POST "/v1/bookings/$seated/cancel" -H "Idempotency-Key: cancel-ada"
check "ada cancels: bob promoted in the same decision" \
  test "$st" = 200 -a "$(printf '%s' "$body" | jq -r .promoted.customer_id)" = bob
wait "$locker"
check "replication caught up after the lock" caught_up
check "the promotion reached PostgreSQL > 30 s after it was decided" \
  test "$(q "SELECT count(*) FROM performance_metrics WHERE metric_name = 'waitlist_promotion_delay'
             AND metric_value > 30000 AND (tags->>'event_id')::bigint = $ev")" = 1
check "waitlist processing delay: warning in active_alerts" \
  wait_rows "SELECT severity FROM active_alerts WHERE alert_type = 'waitlist_delay'
             AND source = 'waitlist_promotion_delay'" warning
check "bob's booking once, confirmed, promoted_at set" \
  test "$(q "SELECT count(*) || '/' || min(r.status) || '/' || count(w.promoted_at)
             FROM registrations r JOIN event_waitlists w ON w.booking_id = r.id
             WHERE r.customer_id = 'bob'")" = 1/confirmed/1
stop_pid

echo "alerts_waitlist: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
