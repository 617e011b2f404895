#!/usr/bin/env bash
# Reminders end to end (docs/core.md "Reminders"), against a real
# PostgreSQL: bookd with BOOKD_REMINDER_HOURS=2 and a class starting in about
# an hour, two confirmed bookings (one then cancelled) and a hold on a priced
# class; bookd restarted (a reminder run at start) sends one reminder, to the
# confirmed booking only, which reaches the notifications table once; a
# second restart sends none again. The hold's pending_payment notification
# is there too.
#
#   eval "$(scripts/pg.sh start)"; bash tests/integration/test_reminders.sh
#
# Exit 77 (skipped) without DATABASE_URL, psql, curl or jq.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/pg_lib.sh"
test_setup test_reminders curl jq
pg_need test_reminders
db_create reminders
export BOOKD_REMINDER_HOURS=2

bookd_start "$tmp/bookd.log"
# a class in about an hour (UTC), a free one and a priced one
at=$(date -u -d '+61 min' +%s)
day=$(date -u -d "@$at" +%F)
hm=$(date -u -d "@$at" +%H:%M)
json POST /v1/orgs '{"name":"Studio","timezone":"UTC"}'
json POST /v1/locations '{"org_id":"1","name":"Hall"}'
json POST /v1/instructors '{"org_id":"1","name":"Sam"}'
for price in 0 1500; do
  cur=$([ "$price" = 0 ] && echo '' || echo eur)
  json POST /v1/series "{\"org_id\":\"1\",\"location_id\":\"1\",\"instructor_id\":\"1\",\"title\":\"Soon\",\"capacity\":3,\"waitlist_capacity\":0,\"price_cents\":$price,\"currency\":\"$cur\",\"timezone\":\"UTC\",\"weekdays\":[\"MO\",\"TU\",\"WE\",\"TH\",\"FR\",\"SA\",\"SU\"],\"start_time\":\"$hm\",\"duration_min\":30,\"first_date\":\"$day\",\"last_date\":\"$day\"}"
  [ "$st" = 201 ] || { echo "series: $st $body"; exit 1; }
done
svc GET "/v1/events?org_id=1&from=${day}T00:00:00Z&limit=10"
EVENTS=($(printf '%s' "$body" | jq -r '.events[].id'))
check "two classes made" test "${#EVENTS[@]}" = 2
book "${EVENTS[0]}" cus_stays
stays=$(printf '%s' "$body" | jq -r '.booking.id // .id')
book "${EVENTS[0]}" cus_leaves
leaves=$(printf '%s' "$body" | jq -r '.booking.id // .id')
svc POST "/v1/bookings/$leaves/cancel" -H "Idempotency-Key: c-$leaves"
check "a booking cancelled ($st)" test "$st" = 200
book "${EVENTS[1]}" cus_holds
check "a hold on the priced class" \
  test "$(printf '%s' "$body" | jq -r '.booking.status // .status')" = pending_payment
check "replication caught up" caught_up
check "pending_payment notified once" \
  test "$(q "SELECT count(*) FROM notifications WHERE kind = 'pending_payment'")" = 1

# The run at start (and every minute): the class is within 2 h.
stop_pid
bookd_start "$tmp/bookd.log"
check "replication caught up after a restart" caught_up
check "one reminder, to the confirmed booking" \
  test "$(q "SELECT string_agg(booking_id::text, ',') FROM notifications WHERE kind = 'reminder'")" = "$stays"
stop_pid
bookd_start "$tmp/bookd.log"
check "replication caught up after a second restart" caught_up
check "no reminder twice" \
  test "$(q "SELECT count(*) FROM notifications WHERE kind = 'reminder'")" = 1
stop_pid
BOOKD_REMINDER_HOURS=24,1000 BOOKD_DATA_DIR=$tmp/data "$bookd" \
  >"$tmp/bad.log" 2>&1
check "a lead out of range is refused at start (exit $?)" \
  grep -q "BOOKD_REMINDER_HOURS) must be up to 4 lead times" "$tmp/bad.log"

echo "reminders: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
