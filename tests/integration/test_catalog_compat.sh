#!/usr/bin/env bash
# The catalogue's reads and the seed-compatible routes end to end, on a
# bookd of this test's (embedded mode, free ports, its own keys), with curl
# and bookctl:
#   - GET /v1/orgs, /v1/locations, /v1/instructors, /v1/series and each
#     one's /{id}: the anon key, a customer JWT and the service key read;
#     no key or a bad one is 401; an id that does not exist, in any form,
#     is 404; lists in id order, paged with next_cursor (every object
#     once), org_id filters, limit 1..500; ETag and 304, and another ETag
#     once the object changed (an org's settings patched);
#   - the same reads over the binary protocol: bookctl show and list;
#   - series patch and end over the binary protocol (bookctl series patch,
#     series end --from, a replay under the same key, refusals);
#   - the seed's "Booking Flow Test" curl line (the deployment guide's,
#     kept here verbatim) run unchanged but for the address and the ids,
#     with the anon key and with
#     a customer JWT; the seed's cancel (bookingId, registrationId); the
#     anon key must name the customer and is held to its rate limit; the
#     seed's webhook line (its test signature refused as on /v1), and a
#     signed event on the alias then on /v1 applied once;
#   - --hold-minutes (3) shows in a hold's expiry, --horizon-days (10) in
#     what a series generates.
#
#   bash tests/integration/test_catalog_compat.sh  (from the repo, or ctest)
#
# Exit 77 (skipped) when bookd, bookctl, curl, jq or openssl is missing.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
test_setup test_catalog_compat curl jq openssl
bookctl=$(dirname "$bookd")/bookctl
[ -x "$bookctl" ] || { echo "test_catalog_compat: no bookctl"; exit 77; }

SVC=svc-$RANDOM$RANDOM
ANON=anon-$RANDOM$RANDOM
SECRET=jwt-$RANDOM$RANDOM
WHSEC=whsec_$RANDOM$RANDOM

BOOKD_SERVICE_KEY=$SVC BOOKD_ANON_KEY=$ANON BOOKD_JWT_SECRET=$SECRET \
STRIPE_WEBHOOK_SECRET=$WHSEC BOOKD_LISTEN=127.0.0.1:0 \
BOOKD_BINARY_LISTEN=127.0.0.1:0 BOOKD_DATA_DIR=$tmp/data \
BOOKD_HOLD_MINUTES=3 BOOKD_HORIZON_DAYS=10 BOOKD_IDEMPOTENCY_HOURS=48 \
BOOKD_CUSTOMER_RATE=1 \
  env -u DATABASE_URL "$bookd" >"$tmp/bookd.log" 2>&1 &
pid=$!
line=$(started_line "$tmp/bookd.log")
URL=$(printf '%s' "$line" | grep -o 'http://[0-9.:]*')
BIN=$(printf '%s' "$line" | sed -n 's/.*binary protocol on \([0-9.:]*\).*/\1/p')
if [ -z "$URL" ] || [ -z "$BIN" ]; then
  echo "test_catalog_compat: bookd did not start:"; cat "$tmp/bookd.log"
  exit 1
fi

# req METHOD PATH [curl args]: sets $st (status), $body; headers in $tmp/h.
req() {
  local m=$1 p=$2; shift 2
  st=$(curl -s -o "$tmp/b" -D "$tmp/h" -w '%{http_code}' -X "$m" "$@" "$URL$p")
  body=$(cat "$tmp/b")
}
expect() { # expect "what" STATUS [jq filter that must be true]
  local what=$1 want=$2 filter=${3:-}
  if [ "$st" = "$want" ] &&
     { [ -z "$filter" ] || jq -e "$filter" <<<"$body" >/dev/null 2>&1; }; then
    ok "$what"
  else
    bad "$what: $st $body (want $want${filter:+, $filter})"
  fi
}
etag() { tr -d '\r' <"$tmp/h" | sed -n 's/^[Ee][Tt][Aa][Gg]: //p'; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
jwt() { # jwt SUB
  local h p s exp=$(( $(date +%s) + 600 ))
  h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  p=$(printf '{"sub":"%s","exp":%d}' "$1" "$exp" | b64url)
  s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$SECRET" -binary | b64url)
  printf '%s.%s.%s' "$h" "$p" "$s"
}
AS=(-H "Authorization: Bearer $SVC" -H 'Content-Type: application/json')
AA=(-H "Authorization: Bearer $ANON")

# ---- the catalogue: 2 orgs, 3 locations, 3 instructors, 2 series ----
req POST /v1/orgs "${AS[@]}" -d '{"name":"North","timezone":"Europe/Berlin"}'
req POST /v1/orgs "${AS[@]}" -d '{"name":"South","timezone":"UTC"}'
for o in 1 2 1; do
  req POST /v1/locations "${AS[@]}" -d '{"org_id":"'$o'","name":"Room '$o'"}'
  req POST /v1/instructors "${AS[@]}" -d '{"org_id":"'$o'","name":"Coach '$o'"}'
done
today=$(date -u +%F)
req POST /v1/series "${AS[@]}" -d '{"org_id":"1","location_id":"1","instructor_id":"1","title":"Yoga","capacity":5,"waitlist_capacity":2,"timezone":"Europe/Berlin","weekdays":["MO","TU","WE","TH","FR","SA","SU"],"start_time":"23:30","duration_min":30,"first_date":"'$today'","skip_dates":["2099-01-01"]}'
expect "series 1 created" 201
# a daily class, today (if not started) to today + 10 days
expect "--horizon-days 10: 10 or 11 events generated" 201 '.generated >= 10 and .generated <= 11'
req POST /v1/series "${AS[@]}" -d '{"org_id":"2","location_id":"2","instructor_id":"2","title":"Spin","capacity":3,"price_cents":1500,"currency":"EUR","timezone":"UTC","weekdays":["MO","TU","WE","TH","FR","SA","SU"],"start_time":"23:45","duration_min":45,"first_date":"'$today'"}'
expect "series 2 created (priced)" 201

# ---- reads: who may ----
T=$(jwt cus_reader)
req GET /v1/orgs/1 "${AA[@]}"
expect "org 1, anon key" 200 '.org == {"id":"1","name":"North","timezone":"Europe/Berlin","cancel_cutoff_hours":12,"hold_minutes":null,"horizon_days":null}'
grep -qi '^cache-control: public' "$tmp/h" && ok "org: Cache-Control public" || bad "org: no Cache-Control"
req GET /v1/locations/3 -H "Authorization: Bearer $T"
expect "location 3, customer JWT" 200 '.location == {"id":"3","org_id":"1","name":"Room 1"}'
req GET /v1/instructors/2 "${AS[@]}"
expect "instructor 2, service key" 200 '.instructor.org_id == "2"'
req GET /v1/series/1 "${AA[@]}"
expect "series 1 as created" 200 '.series.title == "Yoga" and .series.weekdays == ["MO","TU","WE","TH","FR","SA","SU"] and .series.start_time == "23:30" and .series.skip_dates == ["2099-01-01"] and .series.last_date == null and .series.currency == null'
req GET /v1/series/2 "${AA[@]}"
expect "series 2: price and currency" 200 '.series.price_cents == 1500 and .series.currency == "eur"'
req GET /v1/series/1
expect "no key: 401" 401 '.error.code == "unauthorized"'
req GET /v1/orgs -H 'Authorization: Bearer nope'
expect "a bad key: 401" 401
for p in orgs/3 orgs/0 orgs/abc orgs/-1 orgs/1.0 orgs/99999999999999999999999 \
         locations/4 locations/%31x instructors/9 instructors/%20 series/3 \
         series/01; do
  req GET "/v1/$p" "${AA[@]}"
  expect "/v1/$p: 404" 404 '.error.code == "not_found"'
done

# ---- lists: order, pages, filters ----
ids=() cursor=
for page in 1 2 3 4; do
  req GET "/v1/locations?limit=1${cursor:+&cursor=$cursor}" "${AA[@]}"
  ids+=($(jq -r '.locations[].id' <<<"$body"))
  cursor=$(jq -r '.next_cursor // empty' <<<"$body")
  [ -n "$cursor" ] || break
done
[ "${ids[*]}" = "1 2 3" ] && ok "locations paged by 1: 1 2 3" ||
  bad "locations paged: ${ids[*]}"
req GET '/v1/instructors?org_id=1' "${AA[@]}"
expect "instructors of org 1" 200 '[.instructors[].id] == ["1","3"] and .next_cursor == null'
req GET '/v1/series?org_id=2' "${AA[@]}"
expect "series of org 2" 200 '[.series[].id] == ["2"]'
req GET '/v1/series?org_id=9' "${AA[@]}"
expect "series of an unknown org: empty" 200 '.series == []'
req GET '/v1/orgs' "${AA[@]}"
expect "orgs" 200 '[.orgs[].name] == ["North","South"]'
req GET '/v1/orgs?limit=501' "${AA[@]}"
expect "limit 501: 400" 400
req GET '/v1/orgs?limit=0' "${AA[@]}"
expect "limit 0: 400" 400
req GET '/v1/orgs?org_id=1' "${AA[@]}"
expect "orgs take no org_id: 400" 400
req GET "/v1/instructors?cursor=$cursor" "${AA[@]}"
[ -z "$cursor" ] || expect "another list's cursor: 400" 400

# ---- ETag, 304, and a change ----
req GET /v1/orgs/1 "${AA[@]}"
tag=$(etag)
req GET /v1/orgs/1 "${AA[@]}" -H "If-None-Match: $tag"
expect "org 1 with its ETag: 304" 304
req GET /v1/orgs "${AA[@]}"
ltag=$(etag)
req GET /v1/orgs "${AA[@]}" -H "If-None-Match: $ltag"
expect "orgs with their ETag: 304" 304
req PATCH /v1/orgs/1 "${AS[@]}" -d '{"cancel_cutoff_hours":6}'
expect "org 1 patched" 200
req GET /v1/orgs/1 "${AA[@]}" -H "If-None-Match: $tag"
expect "after the patch: 200 with the new setting" 200 '.org.cancel_cutoff_hours == 6'
[ "$(etag)" != "$tag" ] && ok "another ETag after the change" || bad "same ETag"

# ---- the binary protocol: bookctl ----
ctl() { "$bookctl" --addr "$BIN" --key "$ANON" "$@"; }
out=$(ctl show org 2) && jq -e '.org.name == "South"' <<<"$out" >/dev/null &&
  ok "bookctl show org 2" || bad "bookctl show org 2: $out"
out=$(ctl show series 1) &&
  jq -e '.series.start_time == "23:30" and .series.skip_dates == ["2099-01-01"]' <<<"$out" >/dev/null &&
  ok "bookctl show series 1" || bad "bookctl show series 1: $out"
out=$(ctl show location 3) && jq -e '.location.org_id == "1"' <<<"$out" >/dev/null &&
  ok "bookctl show location 3" || bad "bookctl show location 3: $out"
out=$(ctl show instructor 9 2>&1); rc=$?
[ "$rc" = 1 ] && grep -q 'not_found: no such instructor' <<<"$out" &&
  ok "bookctl show instructor 9: not_found" || bad "show instructor 9: $rc $out"
out=$(ctl list instructors --org 1 --limit 1) &&
  jq -e '[.instructors[].id] == ["1"] and .next_cursor == "1"' <<<"$out" >/dev/null &&
  ok "bookctl list instructors --org 1 --limit 1" || bad "list instructors: $out"
out=$(ctl list instructors --org 1 --limit 1 --cursor 1) &&
  jq -e '[.instructors[].id] == ["3"] and .next_cursor == null' <<<"$out" >/dev/null &&
  ok "bookctl list ... --cursor 1: the next page" || bad "list page 2: $out"
out=$(ctl list series) && jq -e '[.series[].title] == ["Yoga","Spin"]' <<<"$out" >/dev/null &&
  ok "bookctl list series" || bad "bookctl list series: $out"

# ---- the seed's routes ----
EV=$(curl -s "$URL/v1/events?org_id=2&limit=1" "${AA[@]}" | jq -er '.events[0].id')
FREE=$(curl -s "$URL/v1/events?org_id=1&limit=1" "${AA[@]}" | jq -er '.events[0].id')
# The seed's "Booking Flow Test" and "Webhook Testing" lines, verbatim.
seed_book='curl -X POST https://your-project.supabase.co/functions/v1/book \
  -H "Authorization: Bearer $SUPABASE_ANON_KEY" \
  -H "Content-Type: application/json" \
  -H "Idempotency-Key: test-$(date +%s)" \
  -d '"'"'{
    "eventId": "your-test-event-id",
    "customerId": "your-test-customer-id",
    "paymentMethod": "stripe"
  }'"'"''
seed_hook='curl -X POST https://your-project.supabase.co/functions/v1/webhooks-stripe \
  -H "stripe-signature: test-signature" \
  -H "Content-Type: application/json" \
  -d '"'"'{"type": "payment_intent.succeeded", "data": {"object": {"id": "pi_test"}}}'"'"''
# run_seed LINE KEY: the line with bookd's address and the test event, its
# output in $body
run_seed() {
  local cmd=${1//https:\/\/your-project.supabase.co/$URL}
  cmd=${cmd//your-test-event-id/$EV}
  body=$(SUPABASE_ANON_KEY=$2 bash -c "$cmd -s" 2>&1)
}
run_seed "$seed_book" "$ANON"
jq -e '.success == true and .booking.status == "pending_payment" and .booking.customerId == "your-test-customer-id" and .booking.eventId == "'$EV'"' <<<"$body" >/dev/null &&
  ok "the seed's book line, anon key: success, pending_payment" ||
  bad "the seed's book line (anon): $body"
BK=$(jq -r .booking.id <<<"$body")
held=$(jq -r '((.booking.holdExpiresAt | sub("\\.[0-9]+Z$"; "Z") | fromdate) - (.booking.createdAt | sub("\\.[0-9]+Z$"; "Z") | fromdate))' <<<"$body")
[ "$held" = 180 ] && ok "--hold-minutes 3: the hold runs 180 s" || bad "hold of $held s"
req GET "/v1/bookings/$BK" "${AS[@]}"
expect "the seed's booking is bookd's" 200 '.booking.status == "pending_payment"'
sleep 1 # another test-$(date +%s) key
run_seed "$seed_book" "$(jwt your-test-customer-id)"
jq -e '.success == false and .code == "already_booked"' <<<"$body" >/dev/null &&
  ok "the seed's book line, the customer's JWT: already_booked (one booking)" ||
  bad "the seed's book line (JWT): $body"
run_seed "$seed_book" "$(jwt someone-else)"
jq -e '.success == false and .code == "forbidden"' <<<"$body" >/dev/null &&
  ok "the seed's book line, another customer's JWT: forbidden" ||
  bad "the seed's book line (other JWT): $body"
# replay: the same key, the same answer
req POST /functions/v1/book "${AA[@]}" -H 'Idempotency-Key: k-1' -d '{"eventId":"'$FREE'","customerId":"cus_a"}'
expect "anon book of a free class: confirmed" 200 '.success and .booking.status == "confirmed"'
first=$body
req POST /functions/v1/book "${AA[@]}" -H 'Idempotency-Key: k-1' -d '{"eventId":"'$FREE'","customerId":"cus_a"}'
[ "$body" = "$first" ] && grep -qi '^idempotent-replayed: true' "$tmp/h" &&
  ok "a replay: the same body, Idempotent-Replayed" || bad "replay: $body"
req POST /v1/events/$FREE/bookings "${AS[@]}" -H 'Idempotency-Key: k-1' -d '{"customer_id":"cus_a"}'
expect "the same key on /v1 (service key's scope): another key, already_booked" 409
req POST /functions/v1/book "${AA[@]}" -H 'Idempotency-Key: k-2' -d '{"eventId":"'$FREE'"}'
expect "anon without customerId: 400" 400 '.success == false and .code == "invalid_request"'
req POST /functions/v1/book "${AA[@]}" -d '{"eventId":"'$FREE'","customerId":"cus_b"}'
expect "no Idempotency-Key: 400" 400 '.code == "idempotency_key_required"'
req POST /functions/v1/book "${AA[@]}" -H 'Idempotency-Key: k-3' -d '{"eventId":"a1b2c3d4-0000-4000-8000-000000000000","customerId":"cus_b"}'
expect "a seed UUID eventId: 404" 404 '.success == false and .code == "not_found"'
req POST /functions/v1/book "${AA[@]}" -H 'Idempotency-Key: k-4' -d '{"eventId":"'$FREE'","customerId":"cus_b","paymentMethod":"twint"}'
expect "an unknown paymentMethod: 400" 400
req POST /functions/v1/book -H 'Idempotency-Key: k-5' -d '{"eventId":"'$FREE'","customerId":"cus_b"}'
expect "no key: 401 in the seed's shape" 401 '.success == false and .code == "unauthorized"'
req POST /functions/v1/book "${AA[@]}" -H 'Idempotency-Key: k-6' -d '{"eventId":"'$EV'","customerId":"cus_p","paymentMethod":"none"}'
expect "anon 'none' on a priced class: still a hold" 200 '.booking.status == "pending_payment"'
# the anon key is held to the named customer's limit (1/s, burst 2): ten
# at once, each with its own key
rl_pids=
for i in 0 1 2 3 4 5 6 7 8 9; do
  curl -s -o /dev/null -w '%{http_code}\n' -X POST "${AA[@]}" \
    -H "Idempotency-Key: rl-$i" -d '{"eventId":"'$FREE'","customerId":"cus_rl"}' \
    "$URL/functions/v1/book" >"$tmp/rl.$i" &
  rl_pids="$rl_pids $!"
done
wait $rl_pids
codes=$(cat "$tmp"/rl.* | sort | uniq -c | tr -s ' \n' ' ')
case "$codes" in *429*) ok "the named customer's rate limit: $codes" ;;
  *) bad "no 429 for cus_rl: $codes" ;; esac
# cancel: bookingId or registrationId, the anon key for the booking's own
# (cus_a's two cancels below: its burst of 2 back after the books above,
# which on a quiet machine came less than a second before)
sleep 2.2
req POST /functions/v1/cancel "${AA[@]}" -H 'Idempotency-Key: c-1' -d '{"bookingId":"'$BK'"}'
expect "anon cancel without customerId: 400" 400
req POST /functions/v1/cancel "${AA[@]}" -H 'Idempotency-Key: c-2' -d '{"bookingId":"'$BK'","customerId":"cus_a"}'
expect "anon cancel of another's booking: 404" 404
req POST /functions/v1/cancel "${AA[@]}" -H 'Idempotency-Key: c-3' -d '{"registrationId":"'$BK'","customerId":"your-test-customer-id"}'
expect "the seed's cancel (registrationId): cancelled" 200 '.success and .booking.status == "cancelled" and .promoted == null'
req POST /functions/v1/cancel -H "Authorization: Bearer $(jwt cus_a)" -H 'Idempotency-Key: c-4' -d '{"bookingId":"'$(jq -r .booking.id <<<"$first")'"}'
expect "the seed's cancel (bookingId), the customer's JWT" 200 '.booking.status == "cancelled"'
req POST /functions/v1/cancel "${AA[@]}" -H 'Idempotency-Key: c-5' -d '{"bookingId":"x","customerId":"cus_a"}'
expect "cancel of no booking: 404" 404
req POST /functions/v1/cancel "${AA[@]}" -H 'Idempotency-Key: c-6' -d '{"bookingId":"1","registrationId":"1","customerId":"cus_a"}'
expect "both ids: 400" 400
# the events listing
req GET '/functions/v1/events?orgId=2&limit=1' "${AA[@]}"
expect "events, camelCase" 200 '.events[0].orgId == "2" and .events[0].priceCents == 1500 and (.nextCursor | type) == "string"'
c=$(jq -r .nextCursor <<<"$body"); etg=$(etag)
req GET "/functions/v1/events?orgId=2&limit=1&cursor=$c" "${AA[@]}"
expect "events, the next page" 200 '.events[0].id != "'$EV'"'
req GET '/functions/v1/events?orgId=2&limit=1' "${AA[@]}" -H "If-None-Match: $etg"
expect "events with their ETag: 304" 304
req GET '/functions/v1/events?org_id=2' "${AA[@]}"
expect "events: snake_case is not the seed's: 400" 400 '.success == false'
# the webhook: the seed's line (a test signature) refused as on /v1; a
# signed event on the alias, then on /v1: applied once
run_seed "$seed_hook" ""
jq -e '.error.code == "invalid_signature"' <<<"$body" >/dev/null &&
  ok "the seed's webhook line: invalid_signature (as /v1)" || bad "seed webhook: $body"
req POST /functions/v1/book "${AA[@]}" -H 'Idempotency-Key: w-1' -d '{"eventId":"'$EV'","customerId":"cus_w"}'
HB=$(jq -r .booking.id <<<"$body")
EVT='{"id":"evt_compat_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_x","amount_received":1500,"currency":"eur","metadata":{"booking_id":"'$HB'"}}}}'
ts=$(date +%s); sig=$(printf '%s.%s' "$ts" "$EVT" | openssl dgst -sha256 -hmac "$WHSEC" | sed 's/^.* //')
req POST /functions/v1/webhooks-stripe -H "Stripe-Signature: t=$ts,v1=$sig" -H 'Content-Type: application/json' -d "$EVT"
expect "a signed event on the alias: applied" 200 '.outcome == "applied" and .booking.status == "confirmed"'
req POST /v1/webhooks/stripe -H "Stripe-Signature: t=$ts,v1=$sig" -H 'Content-Type: application/json' -d "$EVT"
expect "the same event on /v1: a replay" 200 '.outcome == "applied"'
grep -qi '^idempotent-replayed: true' "$tmp/h" && ok "... Idempotent-Replayed" ||
  bad "the second delivery was not a replay"

# ---- series patch and end over the binary protocol: bookctl ----
sctl() { "$bookctl" --addr "$BIN" --key "$SVC" "$@"; }
out=$(sctl series patch 1 --capacity 7 --start 22:00 --from "$today") &&
  jq -e '.series_id == "1" and .regenerated + .kept >= 1' <<<"$out" >/dev/null &&
  ok "bookctl series patch 1: $out" || bad "bookctl series patch 1: $out"
req GET /v1/series/1 "${AA[@]}"
expect "series 1 patched over the binary protocol" 200 '.series.capacity == 7 and .series.start_time == "22:00"'
end_from=$(date -u -d "$today + 3 days" +%F)
out=$(sctl series end 1 --from "$end_from" --idem end-1) &&
  jq -e '.cancelled >= 1 and .regenerated == 0' <<<"$out" >/dev/null &&
  ok "bookctl series end 1 --from $end_from: $out" || bad "bookctl series end 1: $out"
out2=$(sctl series end 1 --from "$end_from" --idem end-1) &&
  jq -e '.replayed == true and .cancelled == '"$(jq .cancelled <<<"$out")" <<<"$out2" >/dev/null &&
  ok "bookctl series end again, same key: the first answer" || bad "series end replay: $out2"
req GET /v1/series/1 "${AA[@]}"
expect "series 1 ends the day before" 200 '.series.last_date == "'"$(date -u -d "$today + 2 days" +%F)"'"'
out=$(sctl series patch 1 2>&1); rc=$?
[ "$rc" = 2 ] && ok "bookctl series patch with nothing to change: usage (2)" || bad "nothing to change: $rc $out"
out=$(sctl series end 9 --from "$end_from" 2>&1); rc=$?
[ "$rc" != 0 ] && grep -q not_found <<<"$out" && ok "bookctl series end 9: not_found" || bad "series end 9: $rc $out"
out=$(ctl series end 2 --from "$end_from" 2>&1); rc=$?
[ "$rc" != 0 ] && grep -q forbidden <<<"$out" && ok "bookctl series end with the anon key: forbidden" || bad "anon series end: $rc $out"

kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ "$rc" = 0 ] && ok "SIGTERM: exit 0" || bad "exit $rc"
echo "test_catalog_compat: $passed passed, $failed failed"
[ "$failed" = 0 ]
