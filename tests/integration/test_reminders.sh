#!/usr/bin/env bash
# Reminders end to end (docs/core.md "Reminders"), against a real
# PostgreSQL: bookd with BOOKD_REMINDER_HOURS=2 and a class starting in about
# an hour, two confirmed bookings (one then cancelled) and a hold on a priced
# class; bookd restarted (a reminder run at start) sends one reminder, to the
# confirmed booking only, which reaches the notifications table once; a
# second restart sends none again. The hold's pending_payment notification
# is there too.
# Then the start of a class (docs/core.md "Start of class") end to end: a
# class moved to start in a few seconds, two confirmed bookings (one by a
# customer's JWT) and one waitlisted; after the start the customer's cancel
# is 409 event_started, the service key's is recorded and late, and the
# waitlist closes; in PostgreSQL: registrations.late, the waitlisted row
# waitlist_expired with its event_waitlists row closed (left_at, not
# promoted), one waitlist_expired notification, the refused cancel nowhere.
#
#   eval "$(scripts/pg.sh start)"; bash tests/integration/test_reminders.sh
#
# Exit 77 (skipped) without DATABASE_URL, psql, curl or jq.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/pg_lib.sh"
test_setup test_reminders curl jq openssl
pg_need test_reminders
db_create reminders
export BOOKD_REMINDER_HOURS=2
SECRET=jwt-$RANDOM$RANDOM
export BOOKD_JWT_SECRET=$SECRET
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
jwt() { # jwt SUB: a customer's token
  local h p s exp=$(( $(date +%s) + 600 ))
  h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  p=$(printf '{"sub":"%s","exp":%d}' "$1" "$exp" | b64url)
  s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$SECRET" -binary | b64url)
  printf '%s.%s.%s' "$h" "$p" "$s"
}
as_customer() { # as_customer SUB METHOD PATH [curl args]: $st, $body
  local who=$1 m=$2 p=$3; shift 3
  st=$(curl -s -o "$tmp/b" -w '%{http_code}' -X "$m" \
    -H "Authorization: Bearer $(jwt "$who")" "$@" "$URL$p")
  body=$(cat "$tmp/b")
}

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

# ---- the start of a class ----
tomorrow=$(date -u -d tomorrow +%F)
json POST /v1/series "{\"org_id\":\"1\",\"location_id\":\"1\",\"instructor_id\":\"1\",\"title\":\"Starts\",\"capacity\":2,\"waitlist_capacity\":2,\"timezone\":\"UTC\",\"weekdays\":[\"MO\",\"TU\",\"WE\",\"TH\",\"FR\",\"SA\",\"SU\"],\"start_time\":\"12:00\",\"duration_min\":30,\"first_date\":\"$tomorrow\",\"last_date\":\"$tomorrow\"}"
sid=$(printf '%s' "$body" | jq -r '.series.id // .id')
svc GET "/v1/events?org_id=1&from=${tomorrow}T00:00:00Z&limit=10"
ev=$(printf '%s' "$body" | jq -r --arg s "$sid" '[.events[] | select(.series_id == $s)][0].id')
start_s=$(( $(date +%s) + 6 ))
json PATCH "/v1/events/$ev" "{\"start_at\":\"$(date -u -d "@$start_s" +%Y-%m-%dT%H:%M:%SZ)\"}"
check "a class moved to start in 6 s ($st)" test "$st" = 200
as_customer cus_jwt POST "/v1/events/$ev/bookings" -H "Idempotency-Key: j-$ev" \
  -H 'Content-Type: application/json' -d '{}'
jb=$(printf '%s' "$body" | jq -r '.booking.id // .id')
check "a customer's booking (JWT): $st" test "$st" = 201 -o "$st" = 200
book "$ev" cus_svc
sb=$(printf '%s' "$body" | jq -r '.booking.id // .id')
book "$ev" cus_wait
wb=$(printf '%s' "$body" | jq -r '.booking.id // .id')
check "the third waitlisted" \
  test "$(printf '%s' "$body" | jq -r '.booking.status // .status')" = waitlisted
while [ "$(date +%s)" -le "$start_s" ]; do sleep 0.3; done
as_customer cus_jwt POST "/v1/bookings/$jb/cancel" -H "Idempotency-Key: cj-$jb"
check "the customer's cancel after start: 409 event_started ($st $body)" \
  test "$st" = 409 -a "$(printf '%s' "$body" | jq -r '.error.code // .code')" = event_started
svc POST "/v1/bookings/$sb/cancel" -H "Idempotency-Key: cs-$sb"
check "the service key's cancel after start: recorded, late ($st)" \
  test "$st" = 200 -a "$(printf '%s' "$body" | jq -r '.booking.late // .late')" = true
expired=0
for _ in $(seq 1 100); do
  svc GET "/v1/bookings/$wb"
  [ "$(printf '%s' "$body" | jq -r '.booking.status // .status')" = waitlist_expired ] &&
    { expired=1; break; }
  sleep 0.1
done
check "the waitlisted one: waitlist_expired after the start" test "$expired" = 1
check "replication caught up (start of class)" caught_up
check "registrations: the service cancel late, the customer's still confirmed" \
  test "$(q "SELECT string_agg(id || ':' || status || ':' || late, ',' ORDER BY id) FROM registrations WHERE event_id = $ev")" = \
  "$jb:confirmed:false,$sb:cancelled:true,$wb:waitlist_expired:false"
check "the waitlist row closed at the start, not promoted" \
  test "$(q "SELECT count(*) FROM event_waitlists w JOIN class_events c ON c.id = w.event_id WHERE w.booking_id = $wb AND w.left_at >= c.start_at AND w.promoted_at IS NULL")" = 1
check "one waitlist_expired notification, to the one waiting" \
  test "$(q "SELECT string_agg(booking_id::text, ',') FROM notifications WHERE kind = 'waitlist_expired'")" = "$wb"
check "no promotion after the start" \
  test "$(q "SELECT count(*) FROM notifications WHERE kind = 'promoted' AND event_id = $ev")" = 0
stop_pid
BOOKD_REMINDER_HOURS=24,1000 BOOKD_DATA_DIR=$tmp/data "$bookd" \
  >"$tmp/bad.log" 2>&1
check "a lead out of range is refused at start (exit $?)" \
  grep -q "BOOKD_REMINDER_HOURS) must be up to 4 lead times" "$tmp/bad.log"

echo "reminders: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
