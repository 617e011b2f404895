#!/usr/bin/env bash
# The HTTP API end to end: starts bookd on a temp data dir and free ports
# (embedded mode, keys and a JWT secret of this test's) and drives it with
# curl:
#   - the life cycle: org, location, instructor, series (generated), generate,
#     list with paging, book (confirmed, waitlisted, event_full,
#     already_booked), replay with the same key, 422 for the key reused with
#     another body, cancel with promotion, PATCH capacity below taken (409)
#     and above (promotes);
#   - auth refusals: no key 401, anon booking 403, a JWT booking for another
#     customer 403, a JWT cancelling or reading another's booking 404, an
#     expired JWT 401 token_expired;
#   - HTTP: pipelining (three requests in one write), ETag + If-None-Match
#     304, CORS preflight, 413 for a big body, malformed JSON 400, 405, 404;
#   - 200 concurrent bookings racing for a 20-seat event with a waitlist of
#     50: exactly 20 confirmed, 50 waitlisted (positions 1..50), 130
#     event_full, no customer twice, and the event's counters agree;
#   - SIGTERM exits 0; after a restart on the same data dir, and again after
#     a kill -9, replays of acknowledged bookings return the first answers;
#   - a half-closed client still gets its answers; a slow-loris sender is
#     answered 408 and closed while others are served.
#
#   bash tests/integration/test_http_e2e.sh     (from the repo, or by ctest)
#
# bookd: BOOKD_BIN, else <build>/api/bookd found from ctest's working
# directory (<build>/tests), BOOKD_BUILD_DIR or ./build. Exit 77 (skipped)
# when bookd, curl, jq or openssl is missing.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
test_setup test_http_e2e curl jq openssl

SVC=svc-$RANDOM$RANDOM
ANON=anon-$RANDOM$RANDOM
SECRET=jwt-$RANDOM$RANDOM
ORIGIN=https://app.example

start_bookd() {
  echo "--- bookd start" >>"$tmp/bookd.log"
  BOOKD_SERVICE_KEY=$SVC BOOKD_ANON_KEY=$ANON BOOKD_JWT_SECRET=$SECRET \
  ALLOWED_ORIGINS=$ORIGIN BOOKD_LISTEN=127.0.0.1:0 \
  BOOKD_BINARY_LISTEN=127.0.0.1:0 BOOKD_DATA_DIR=$tmp/data \
    env -u DATABASE_URL "$bookd" >>"$tmp/bookd.log" 2>&1 &  # embedded mode
  pid=$!
  starts=$(grep -c '^--- bookd start' "$tmp/bookd.log")
  URL=$(started_line "$tmp/bookd.log" "$starts" | grep -o 'http://[0-9.:]*')
  if [ -z "$URL" ]; then
    echo "test_http_e2e: bookd did not start:"; cat "$tmp/bookd.log"
    exit 1
  fi
  HOSTPORT=${URL#http://}
}

# req METHOD PATH [curl args]: sets $st (status), $body; headers in $tmp/h.
req() {
  local m=$1 p=$2; shift 2
  st=$(curl -s -o "$tmp/b" -D "$tmp/h" -w '%{http_code}' -X "$m" "$@" "$URL$p")
  body=$(cat "$tmp/b")
}
svc() { req "$@" -H "Authorization: Bearer $SVC"; }
hdr() { grep -i "^$1:" "$tmp/h" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }
j() { printf '%s' "$body" | jq -r "$1"; }
errcode() { j '.error.code'; }

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
jwt() { # jwt SUB EXP_OFFSET_S
  local h p s exp=$(( $(date +%s) + $2 ))
  h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  p=$(printf '{"sub":"%s","exp":%d}' "$1" "$exp" | b64url)
  s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$SECRET" -binary | b64url)
  printf '%s.%s.%s' "$h" "$p" "$s"
}

start_bookd
echo "bookd at $URL (log $tmp/bookd.log)"

# ---- operations ----
req GET /health;  check "GET /health 200" test "$st" = 200
req GET /ready;   check "GET /ready 200" test "$st" = 200
req GET /metrics; check "GET /metrics 200 prometheus" grep -q '^bookd_up 1' "$tmp/b"

# ---- catalogue ----
svc POST /v1/orgs -d '{"name":"Studio","timezone":"Europe/Berlin"}'
check "POST /v1/orgs 201" test "$st" = 201
org=$(j .org.id)
svc POST /v1/locations -d "{\"org_id\":\"$org\",\"name\":\"Hall\"}"
check "POST /v1/locations 201" test "$st" = 201
loc=$(j .location.id)
svc POST /v1/instructors -d "{\"org_id\":\"$org\",\"name\":\"Ann\"}"
check "POST /v1/instructors 201" test "$st" = 201
ins=$(j .instructor.id)
for tzname in posixrules localtime Factory posix/Europe/Berlin right/UTC 'Europe//Berlin'; do
  svc POST /v1/orgs -d "{\"name\":\"Studio\",\"timezone\":\"$tzname\"}"
  check "org with timezone $tzname: 400 naming timezone" \
    test "$st" = 400 -a "$(errcode)" = invalid_request -a "$(printf '%s' "$body" | grep -c timezone)" = 1
done
svc POST /v1/customers -d '{"id":"cus_1","email":"one@example.com","name":"One"}'
check "POST /v1/customers 201" test "$st" = 201
first=$(date -u -d tomorrow +%F)
series() { # series CAP WAITLIST KEY
  svc POST /v1/series -H "Idempotency-Key: $3" -d "{\"org_id\":\"$org\",\"location_id\":\"$loc\",
    \"instructor_id\":\"$ins\",\"title\":\"Flow $1\",\"capacity\":$1,\"waitlist_capacity\":$2,
    \"timezone\":\"UTC\",\"weekdays\":[\"MO\",\"TU\",\"WE\",\"TH\",\"FR\",\"SA\",\"SU\"],
    \"start_time\":\"10:00\",\"duration_min\":60,\"first_date\":\"$first\"}"
}
series 2 2 ser-1
check "POST /v1/series 201 with generated > 0" test "$st" = 201 -a "$(j .generated)" -gt 0
sid=$(j .series.id)
body_series=$body
series 2 2 ser-1
check "series replay: same body, Idempotent-Replayed" \
  test "$st" = 201 -a "$body" = "$body_series" -a "$(hdr Idempotent-Replayed)" = true
svc POST /v1/admin/generate -d "{\"until\":\"$(date -u -d '+30 days' +%F)\"}"
check "POST /v1/admin/generate 200" test "$st" = 200 -a "$(j .generated)" -ge 0
svc GET /v1/admin/status
check "GET /v1/admin/status: shards, wal, replication disabled" \
  test "$st" = 200 -a "$(j .shards)" -ge 1 -a "$(j .replication.state)" = disabled
check "GET /v1/admin/status: fsync latency p50 and p99 from the histogram, 0 < p50 <= p99" \
  awk -v a="$(j .wal.fsync_latency_us.p50)" -v b="$(j .wal.fsync_latency_us.p99)" 'BEGIN { exit !(a > 0 && a <= b) }'
req GET /metrics
check "GET /metrics: bookd_wal_fsync_seconds histogram, +Inf bucket = count >= bookd_wal_fsync_total > 0" \
  awk '/^bookd_wal_fsync_seconds_bucket\{le="\+Inf"\}/ { inf = $2 } /^bookd_wal_fsync_seconds_count / { n = $2 }
    /^bookd_wal_fsync_total / { t = $2 } /^# TYPE bookd_wal_fsync_seconds histogram/ { h = 1 }
    END { exit !(h && t > 0 && inf == n && n >= t) }' "$tmp/b"
svc POST /v1/admin/refresh
check "POST /v1/admin/refresh in embedded mode: 409 replication_disabled" \
  test "$st" = 409 -a "$(j .error.code)" = replication_disabled

# ---- listing ----
req GET "/v1/events?org_id=$org&limit=2" -H "Authorization: Bearer $ANON"
check "GET /v1/events 200, 2 events, a cursor" \
  test "$st" = 200 -a "$(j '.events|length')" = 2 -a "$(j .next_cursor)" != null
ev=$(j '.events[0].id'); ev2=$(j '.events[1].id'); cursor=$(j .next_cursor)
etag=$(hdr ETag)
check "list has ETag and Cache-Control" test -n "$etag" -a -n "$(hdr Cache-Control)"
req GET "/v1/events?org_id=$org&limit=2" -H "Authorization: Bearer $ANON" -H "If-None-Match: $etag"
check "list If-None-Match: 304" test "$st" = 304
req GET "/v1/events?org_id=$org&limit=2&cursor=$cursor" -H "Authorization: Bearer $ANON"
p2=$(j '.events[0].id')
check "second page starts after the first" test "$st" = 200 -a "$p2" != "$ev" -a "$p2" != "$ev2"
req GET "/v1/events/$ev" -H "Authorization: Bearer $ANON"
check "GET /v1/events/{id} 200, capacity 2" test "$st" = 200 -a "$(j .event.capacity)" = 2
etag=$(hdr ETag)
req GET "/v1/events/$ev" -H "Authorization: Bearer $ANON" -H "If-None-Match: $etag"
check "event If-None-Match: 304" test "$st" = 304
req GET /v1/events/999999999 -H "Authorization: Bearer $ANON"
check "unknown event 404" test "$st" = 404 -a "$(errcode)" = not_found
req GET /v1/events/not-an-id -H "Authorization: Bearer $ANON"
check "malformed event id 404" test "$st" = 404

# ---- booking life cycle ----
book() { # book CUSTOMER KEY
  svc POST "/v1/events/$ev/bookings" -H "Idempotency-Key: $2" \
    -d "{\"customer_id\":\"$1\"}"
}
book c1 k-c1; check "c1 confirmed 201" test "$st" = 201 -a "$(j .booking.status)" = confirmed
b1=$(j .booking.id); body_b1=$body
book c2 k-c2; check "c2 confirmed" test "$(j .booking.status)" = confirmed
b2=$(j .booking.id)
book c3 k-c3; check "c3 waitlisted at 1" test "$(j .booking.status)" = waitlisted -a "$(j .booking.position)" = 1
b3=$(j .booking.id)
book c4 k-c4; check "c4 waitlisted at 2" test "$(j .booking.status)" = waitlisted -a "$(j .booking.position)" = 2
b4=$(j .booking.id)
book c5 k-c5; check "c5 409 event_full" test "$st" = 409 -a "$(errcode)" = event_full
book c1 k-c1-again; check "c1 again 409 already_booked" test "$st" = 409 -a "$(errcode)" = already_booked
book c1 k-c1
check "replay: 201, same body, Idempotent-Replayed" \
  test "$st" = 201 -a "$body" = "$body_b1" -a "$(hdr Idempotent-Replayed)" = true
book c9 k-c1; check "key reused for another body: 422" test "$st" = 422 -a "$(errcode)" = idempotency_key_reused
svc POST "/v1/events/$ev/bookings" -d '{"customer_id":"c6"}'
check "no Idempotency-Key: 400 idempotency_key_required" test "$st" = 400 -a "$(errcode)" = idempotency_key_required

svc POST "/v1/bookings/$b1/cancel" -H "Idempotency-Key: x-b1"
check "cancel c1: 200, c3 promoted to confirmed" \
  test "$st" = 200 -a "$(j .booking.status)" = cancelled -a "$(j .promoted.id)" = "$b3" -a "$(j .promoted.status)" = confirmed
body_x1=$body
svc POST "/v1/bookings/$b1/cancel" -H "Idempotency-Key: x-b1"
check "cancel replay: same body" test "$st" = 200 -a "$body" = "$body_x1" -a "$(hdr Idempotent-Replayed)" = true
svc POST "/v1/bookings/$b1/cancel" -H "Idempotency-Key: x-b1-again"
check "cancel again: 409 booking_not_active" test "$st" = 409 -a "$(errcode)" = booking_not_active
svc GET "/v1/bookings/$b4"
check "c4 moved up to position 1" test "$st" = 200 -a "$(j .booking.position)" = 1
svc GET /v1/customers/c3/bookings
check "GET /v1/customers/c3/bookings lists the booking" test "$st" = 200 -a "$(j '.bookings[0].id')" = "$b3"

svc PATCH "/v1/events/$ev" -d '{"capacity":1}'
check "PATCH capacity below taken: 409 capacity_below_taken" test "$st" = 409 -a "$(errcode)" = capacity_below_taken
svc PATCH "/v1/events/$ev" -d '{"capacity":3}'
check "PATCH capacity 3: 200, c4 promoted (booked 3)" \
  test "$st" = 200 -a "$(j .event.booked)" = 3 -a "$(j .event.waitlist_length)" = 0
svc PATCH "/v1/events/$ev" -d '{"capacity":3,"colour":"red"}'
check "PATCH unknown field: 400 naming it" test "$st" = 400 -a "$(errcode)" = invalid_request
printf '%s' "$body" | grep -q colour; check "... the message names 'colour'" test $? = 0

# ---- auth ----
req GET /v1/events; check "no key: 401 unauthorized" test "$st" = 401 -a "$(errcode)" = unauthorized
req GET /v1/events -H "Authorization: Bearer wrong"; check "bad key: 401" test "$st" = 401
req POST "/v1/events/$ev2/bookings" -H "Authorization: Bearer $ANON" -H "Idempotency-Key: a1" -d '{"customer_id":"c1"}'
check "anon booking: 403 forbidden" test "$st" = 403 -a "$(errcode)" = forbidden
req POST /v1/orgs -H "Authorization: Bearer $ANON" -d '{"name":"x"}'
check "anon on a service route: 403" test "$st" = 403
T2=$(jwt c2 600)
req POST "/v1/events/$ev2/bookings" -H "Authorization: Bearer $T2" -H "Idempotency-Key: j1" -d '{"customer_id":"c3"}'
check "JWT booking for another customer: 403" test "$st" = 403
req POST "/v1/bookings/$b3/cancel" -H "Authorization: Bearer $T2" -H "Idempotency-Key: j2"
check "JWT cancelling another's booking: 404" test "$st" = 404
svc GET "/v1/bookings/$b3"
check "... and that booking is untouched" test "$(j .booking.status)" = confirmed
req GET "/v1/bookings/$b3" -H "Authorization: Bearer $T2"
check "JWT reading another's booking: 404" test "$st" = 404
req GET "/v1/bookings/$b2" -H "Authorization: Bearer $T2"
check "JWT reading its own booking: 200" test "$st" = 200 -a "$(j .booking.customer_id)" = c2
req GET /v1/customers/c3/bookings -H "Authorization: Bearer $T2"
check "JWT reading another's list: 403" test "$st" = 403
req POST "/v1/events/$ev2/bookings" -H "Authorization: Bearer $T2" -H "Idempotency-Key: j3" -d '{}'
check "JWT booking for itself: 201" test "$st" = 201 -a "$(j .booking.customer_id)" = c2
req GET /v1/events -H "Authorization: Bearer $(jwt c2 -60)"
check "expired JWT: 401 token_expired" test "$st" = 401 -a "$(errcode)" = token_expired
req POST "/v1/events/$p2/bookings" -H "Authorization: Bearer $(jwt c8 600)" -H "Idempotency-Key: j4" \
  -d '{"payment":"none"}'
check "JWT booking a free event with payment none: 201 confirmed" \
  test "$st" = 201 -a "$(j .booking.status)" = confirmed -a "$(j .booking.customer_id)" = c8

# ---- HTTP ----
{
  exec 3<>"/dev/tcp/${HOSTPORT%:*}/${HOSTPORT##*:}"
  printf 'GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/events/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\nGET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$ev" "$ANON" >&3
  timeout 10 cat <&3 >"$tmp/pipe"
  exec 3<&-
}
check "pipelining: three answers on one connection, in order" \
  test "$(grep -ao 'HTTP/1.1 200 OK' "$tmp/pipe" | wc -l)" = 3 -a \
       "$(grep -o '"status":"[a-z]*"' "$tmp/pipe" | tr '\n' ' ')" = '"status":"ok" "status":"scheduled" "status":"ready" '
req OPTIONS "/v1/events/$ev/bookings" -H "Origin: $ORIGIN" -H "Access-Control-Request-Method: POST" \
  -H "Access-Control-Request-Headers: authorization, idempotency-key"
check "CORS preflight: 204 with Allow-Origin and Allow-Headers" \
  test "$st" = 204 -a "$(hdr Access-Control-Allow-Origin)" = "$ORIGIN" -a -n "$(hdr Access-Control-Allow-Headers)"
req GET "/v1/events/$ev" -H "Authorization: Bearer $ANON" -H "Origin: $ORIGIN"
check "CORS on a normal answer" test "$(hdr Access-Control-Allow-Origin)" = "$ORIGIN"
req GET "/v1/events/$ev" -H "Authorization: Bearer $ANON" -H "Origin: https://evil.example"
check "no CORS for another origin" test -z "$(hdr Access-Control-Allow-Origin)"
head -c 70000 /dev/zero | tr '\0' 'a' >"$tmp/big"
svc POST /v1/orgs --data-binary "@$tmp/big"
check "70000-byte body: 413" test "$st" = 413 -a "$(errcode)" = payload_too_large
svc POST /v1/orgs -d '{"name":"x",'
check "malformed JSON: 400 invalid_request" test "$st" = 400 -a "$(errcode)" = invalid_request
svc POST /v1/orgs --data-binary $'{"name":"\xff\xfe"}'
check "invalid UTF-8: 400" test "$st" = 400
svc PATCH "/v1/events/$ev" -d '{"capacity":123456789012345678901234567890}'
check "huge number: 400" test "$st" = 400
svc DELETE "/v1/events/$ev"
check "DELETE: 405 with Allow" test "$st" = 405 -a -n "$(hdr Allow)"
svc GET /v1/nowhere; check "unknown route: 404" test "$st" = 404
svc POST "/v1/events/$ev/bookings" -H "Idempotency-Key: ch-1" -H "Transfer-Encoding: chunked" \
  -d '{"customer_id":"chunky"}'
check "chunked request body: 201" test "$st" = 201 -a "$(j .booking.customer_id)" = chunky

# ---- 200 concurrent bookings for 20 seats ----
svc POST /v1/series -H "Idempotency-Key: ser-race" -d "{\"org_id\":\"$org\",\"location_id\":\"$loc\",
  \"instructor_id\":\"$ins\",\"title\":\"Race\",\"capacity\":20,\"waitlist_capacity\":50,
  \"timezone\":\"UTC\",\"weekdays\":[\"MO\",\"TU\",\"WE\",\"TH\",\"FR\",\"SA\",\"SU\"],
  \"start_time\":\"12:00\",\"duration_min\":60,\"first_date\":\"$first\",\"last_date\":\"$first\"}"
check "race series created" test "$st" = 201 -a "$(j .generated)" = 1
race_sid=$(j .series.id)
req GET "/v1/events?org_id=$org&from=$first&limit=500" -H "Authorization: Bearer $ANON"
race_ev=$(printf '%s' "$body" | jq -r ".events[] | select(.series_id == \"$race_sid\") | .id")
mkdir -p "$tmp/race"
race_one() {
  curl -s -o "$tmp/race/$1.json" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $SVC" -H "Idempotency-Key: race-$1" \
    -d "{\"customer_id\":\"racer-$1\"}" "$URL/v1/events/$race_ev/bookings" >"$tmp/race/$1.st"
}
export -f race_one; export tmp SVC URL race_ev
seq 1 200 | xargs -P 50 -I{} bash -c 'race_one {}'
confirmed=0 waitlisted=0 full=0 other=0
for i in $(seq 1 200); do
  s=$(cat "$tmp/race/$i.st" 2>/dev/null)
  if [ "$s" = 201 ]; then
    case $(jq -r .booking.status "$tmp/race/$i.json") in
      confirmed) confirmed=$((confirmed + 1)) ;;
      waitlisted) waitlisted=$((waitlisted + 1)) ;;
      *) other=$((other + 1)) ;;
    esac
  elif [ "$s" = 409 ] && [ "$(jq -r .error.code "$tmp/race/$i.json")" = event_full ]; then
    full=$((full + 1))
  else
    other=$((other + 1))
  fi
done
echo "race: $confirmed confirmed, $waitlisted waitlisted, $full event_full, $other other"
check "race: exactly 20 confirmed" test $confirmed = 20
check "race: 50 waitlisted, 130 event_full, nothing else" test $waitlisted = 50 -a $full = 130 -a $other = 0
positions=$(cat "$tmp"/race/*.json | jq -r 'select(.booking.status == "waitlisted") | .booking.position' | sort -n | tr '\n' ' ')
check "race: waitlist positions are 1..50" test "$positions" = "$(seq 1 50 | tr '\n' ' ')"
dups=$(cat "$tmp"/race/*.json | jq -r 'select(.booking) | .booking.customer_id' | sort | uniq -d | wc -l)
check "race: no customer twice" test "$dups" = 0
req GET "/v1/events/$race_ev" -H "Authorization: Bearer $ANON"
check "race: the event says booked 20, waitlist 50" \
  test "$(j .event.booked)" = 20 -a "$(j .event.waitlist_length)" = 50 -a "$(j .event.available)" = 0

# ---- SIGTERM, restart, replay ----
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
check "SIGTERM: exit 0" test $rc = 0
start_bookd
book c1 k-c1
check "after restart: replay of the first booking, same body" \
  test "$st" = 201 -a "$body" = "$body_b1" -a "$(hdr Idempotent-Replayed)" = true
req GET "/v1/events/$race_ev" -H "Authorization: Bearer $ANON"
check "after restart: the race event is as it was" test "$(j .event.booked)" = 20 -a "$(j .event.waitlist_length)" = 50

book c7 k-c7-after-restart
check "after restart: a new booking" test "$st" = 201
body_c7=$body

# ---- kill -9, restart, replay both ----
kill -KILL "$pid"; wait "$pid" 2>/dev/null; pid=
start_bookd
book c1 k-c1
check "after kill -9: replay of the first booking, same body" \
  test "$st" = 201 -a "$body" = "$body_b1" -a "$(hdr Idempotent-Replayed)" = true
book c7 k-c7-after-restart
check "after kill -9: replay of the acknowledged booking, same body" \
  test "$st" = 201 -a "$body" = "$body_c7" -a "$(hdr Idempotent-Replayed)" = true

# ---- a half-closed client still gets its answers ----
if command -v python3 >/dev/null 2>&1; then
  half=$(python3 - "${HOSTPORT%:*}" "${HOSTPORT##*:}" "$ANON" "$ev" <<'PY'
import socket, sys
host, port, anon, ev = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection((host, port))
s.sendall(("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
           "GET /v1/events/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
           % (ev, anon)).encode())
s.shutdown(socket.SHUT_WR)
s.settimeout(10)
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
print(data.count(b"HTTP/1.1 200 OK"))
PY
)
  check "half-closed client: both answers, then the server closes" test "$half" = 2

  # A slow-loris sender dripping a request head byte by byte is answered
  # 408 and closed (net.c's request timeout, 10 s from the first byte), and
  # others are served meanwhile.
  python3 - "${HOSTPORT%:*}" "${HOSTPORT##*:}" >"$tmp/loris" <<'PY' &
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
head = b"GET /health HTTP/1.1\r\nX-Slow: " + b"a" * 100
t0 = time.time()
closed = False
got = b""
for i in range(len(head)):
    try:
        s.sendall(head[i:i + 1])
        s.settimeout(0.25)
        d = s.recv(4096)
        if d:  # the answer: read it to the close
            s.settimeout(5)
            while d:
                got += d
                d = s.recv(4096)
        closed = True
        break
    except socket.timeout:
        pass
    except OSError:
        closed = True
        break
    if time.time() - t0 > 20:
        break
print("closed" if closed else "open", int(time.time() - t0),
      got.split(b"\r\n")[0].decode() if got else "-")
PY
  loris=$!
  sleep 2
  req GET /health
  check "served while a slow sender drips" test "$st" = 200
  wait $loris
  check "slow-loris sender answered 408 and closed within 20 s ($(cat "$tmp/loris"))" \
    grep -q '^closed [0-9]* HTTP/1.1 408 ' "$tmp/loris"
fi

kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
check "SIGTERM after the restarts: exit 0 (also no sanitizer report)" test $rc = 0
# A sanitizer build of bookd reports into its log, also from a bookd killed
# (SIGKILL) before it could exit non-zero.
no_report() { ! grep -qa -e 'Sanitizer' -e 'runtime error' "$tmp/bookd.log"; }
check "no sanitizer report in bookd's log (any start)" no_report

if [ $failed != 0 ]; then
  echo "--- bookd log (tail)"; tail -n 40 "$tmp/bookd.log"
fi
echo "test_http_e2e: $passed passed, $failed failed"
[ $failed = 0 ]
