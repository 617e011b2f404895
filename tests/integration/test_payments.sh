#!/usr/bin/env bash
# Payments that start and end in bookd (payments/, docs/operations.md
# "Payments"), against the local Stripe stand-in
# (tests/integration/stripe_standin.py on 127.0.0.1; nothing reaches the
# internet), through bookd's HTTP API:
#   paid      a booking on a priced class holds a seat, its PaymentIntent is
#             made at the stand-in (amount, currency, metadata[booking_id],
#             Idempotency-Key from the booking, the secret key as bearer),
#             GET /v1/bookings/{id} shows payment_intent_id and
#             client_secret, the signed webhook payment_intent.succeeded
#             confirms it
#   refund    the customer cancels it before the cut-off: a Refund at the
#             stand-in with its own Idempotency-Key; with DATABASE_URL the
#             payments rows keep Stripe's ids (evt_..., re_...)
#   studio    the studio cancels a class (PATCH status cancelled) inside
#             the org's cut-off (720 h): its paid booking is refunded in
#             full all the same (metadata[reason] event_cancelled)
#   pending   Stripe answers a refund pending (then requires_action): bookd
#             asks again (GET /v1/refunds/{id}, no key) until it succeeded
#             (or failed: counted failed, a refund_failed row with re_...)
#   recover   the stand-in fails twice (500) then works: one intent, three
#             calls with the same Idempotency-Key
#   give up   it fails for good (BOOKD_PAYMENTS_MAX_ATTEMPTS=3 from the
#             start): the hold is released (payment_failed), the alert
#             raised in /v1/admin/status and /metrics, and cleared by the
#             next call that works
#   kill -9   a slow stand-in, bookd killed while the intent's call waits,
#             started again: still exactly one intent
#   late      (holds of 1.5 s, BOOKD_TEST_HOLD_MS) a payment that succeeds
#             after the hold expired is refunded automatically
#   keys      every Idempotency-Key starts with the log's prefix
#             (data/payments.keys: bookd-<8 hex digits>, made at the first
#             start); a log whose sender ran before the file (payments.pos
#             there, no payments.keys) keeps "bookd", its old keys; a fresh
#             log gets another prefix
# Skipped (77) without curl, jq, python3 or openssl.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
test_setup test_payments curl jq python3 openssl

whsec=whsec_test_payments_secret
svc=test-payments-service-key
data=$tmp/data
standin_pid=
start_standin() {
  rm -f "$tmp/standin.port"
  python3 "$here/stripe_standin.py" --port-file "$tmp/standin.port" \
    >>"$tmp/standin.log" 2>&1 &
  standin_pid=$!
  for _ in $(seq 1 100); do
    [ -s "$tmp/standin.port" ] && break
    sleep 0.1
  done
  standin="http://127.0.0.1:$(cat "$tmp/standin.port")"
}
stop_standin() {
  [ -n "$standin_pid" ] && kill -TERM "$standin_pid" 2>/dev/null && wait "$standin_pid" 2>/dev/null
  standin_pid=
}
cleanup() {
  stop_pid
  stop_standin
  if [ -n "${testdb:-}" ]; then
    psql "$DATABASE_URL" -X -q -c "DROP DATABASE IF EXISTS $testdb" >/dev/null 2>&1
  fi
  keep_logs test_payments "$tmp"
  if [ -n "${KEEP_TMP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}

# With PostgreSQL: a database of its own, replicated into.
url= testdb=
if [ -n "${DATABASE_URL:-}" ] && command -v psql >/dev/null; then
  testdb=payments_test_$$
  url=$(db_make "$testdb") || url= testdb=
fi

base=
start_bookd() { # [env assignments...]
  local n
  n=$(( $(grep -ac 'HTTP on http://' "$tmp/bookd.log" 2>/dev/null || true) + 1 ))
  env STRIPE_SECRET_KEY=sk_test_bookd STRIPE_API_BASE="$standin" \
    STRIPE_WEBHOOK_SECRET="$whsec" BOOKD_SERVICE_KEY="$svc" \
    BOOKD_PAYMENTS_BACKOFF_MS=50 BOOKD_PAYMENTS_BACKOFF_MAX_MS=400 \
    BOOKD_PAYMENTS_MAX_ATTEMPTS=40 BOOKD_PAYMENTS_ALERT_FAILURES=3 \
    BOOKD_PAYMENTS_TIMEOUT_MS=10000 \
    ${url:+DATABASE_URL="$url"} "$@" \
    "$bookd" --data-dir "$data" --listen 127.0.0.1:0 \
    --binary-listen 127.0.0.1:0 >>"$tmp/bookd.log" 2>&1 &
  pid=$!
  base=$(started_line "$tmp/bookd.log" "$n" | sed -E 's#.*HTTP on (http://[^,]+),.*#\1#')
  [ -n "$base" ] || { echo "bookd did not start"; tail -20 "$tmp/bookd.log"; exit 1; }
}
api() { # method path [json]: a fresh Idempotency-Key for each call
  curl -s -X "$1" "$base$2" -H "Authorization: Bearer $svc" \
    -H 'Content-Type: application/json' \
    -H "Idempotency-Key: k$(date +%s%N)$RANDOM" ${3:+-d "$3"}
}
standin_mode() { curl -s -X POST "$standin/_standin/mode" -d "$1" >/dev/null; }
standin_requests() { curl -s "$standin/_standin/requests"; }
standin_objects() { curl -s "$standin/_standin/objects"; }
# until the booking shows its intent (or N tenths of a second pass)
wait_intent() { # booking tenths
  local b
  for _ in $(seq 1 "$2"); do
    b=$(api GET "/v1/bookings/$1")
    if [ "$(printf '%s' "$b" | jq -r '.booking.payment_intent_id // empty')" != "" ]; then
      printf '%s' "$b"
      return 0
    fi
    sleep 0.1
  done
  printf '%s' "$b"
  return 1
}
wait_status() { # booking status tenths
  for _ in $(seq 1 "$3"); do
    [ "$(api GET "/v1/bookings/$1" | jq -r .booking.status)" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}
# a signed Stripe event (Stripe-Signature: t=...,v1=HMAC-SHA256 of "t.body")
webhook() { # event_id type pi booking amount
  local body t sig
  body='{"id":"'$1'","object":"event","type":"'$2'","data":{"object":{"id":"'$3'","object":"payment_intent","amount":'$5',"amount_received":'$5',"currency":"eur","metadata":{"booking_id":"'$4'"}}}}'
  t=$(date +%s)
  sig=$(printf '%s.%s' "$t" "$body" | openssl dgst -sha256 -hmac "$whsec" | sed 's/^.* //')
  curl -s -X POST "$base/v1/webhooks/stripe" -H "Stripe-Signature: t=$t,v1=$sig" \
    -H 'Content-Type: application/json' -d "$body"
}
psql_q() { psql "$url" -X -A -t -q -c "$1" 2>/dev/null; }
wait_sql() { # query expected tenths
  for _ in $(seq 1 "$3"); do
    [ "$(psql_q "$1")" = "$2" ] && return 0
    sleep 0.1
  done
  echo "  PostgreSQL: $(psql_q "$1") (expected $2)"
  return 1
}

start_standin
[ -n "$standin_pid" ] && [ -s "$tmp/standin.port" ] || { echo "the Stripe stand-in did not start"; cat "$tmp/standin.log"; exit 1; }
# 3 calls at most: "recover" needs them all, "give up" runs out of them
start_bookd BOOKD_PAYMENTS_MAX_ATTEMPTS=3
kp=$(sed -n 's/^prefix //p' "$data/payments.keys" 2>/dev/null)
export KP=$kp
check "the keys' prefix is the log's own: bookd-<8 hex digits>" \
  grep -qE '^bookd-[0-9a-f]{8}$' <<<"$kp"

# a studio with a priced class every day, from three days on (beyond the
# 12 h cancellation cut-off)
org=$(api POST /v1/orgs '{"name":"Paid Studio","timezone":"UTC"}' | jq -r '.org.id // .id')
loc=$(api POST /v1/locations "{\"org_id\":\"$org\",\"name\":\"Hall\"}" | jq -r '.location.id // .id')
ins=$(api POST /v1/instructors "{\"org_id\":\"$org\",\"name\":\"Kim\"}" | jq -r '.instructor.id // .id')
first=$(date -u -d '+3 days' +%F)
series=$(api POST /v1/series "{\"org_id\":\"$org\",\"location_id\":\"$loc\",\"instructor_id\":\"$ins\",\"title\":\"Paid Spin\",\"capacity\":10,\"waitlist_capacity\":5,\"price_cents\":1500,\"currency\":\"eur\",\"timezone\":\"UTC\",\"weekdays\":[\"MO\",\"TU\",\"WE\",\"TH\",\"FR\",\"SA\",\"SU\"],\"start_time\":\"18:00\",\"duration_min\":45,\"first_date\":\"$first\"}")
sid=$(printf '%s' "$series" | jq -r '.series.id')
ev=$(api GET "/v1/events?org_id=$org&limit=5" | jq -r --arg s "$sid" '[.events[] | select(.series_id == $s)][0].id')
check "a priced class exists" test -n "$ev" -a "$ev" != null

# ---- paid: hold -> PaymentIntent -> webhook -> confirmed ----
book=$(api POST "/v1/events/$ev/bookings" '{"customer_id":"bob"}')
b1=$(printf '%s' "$book" | jq -r .booking.id)
check "the booking holds a seat (pending_payment)" \
  test "$(printf '%s' "$book" | jq -r .booking.status)" = pending_payment
got=$(wait_intent "$b1" 100)
pi1=$(printf '%s' "$got" | jq -r '.booking.payment_intent_id // empty')
secret1=$(printf '%s' "$got" | jq -r '.booking.client_secret // empty')
check "GET shows payment_intent_id and client_secret" \
  test -n "$pi1" -a "${secret1#"${pi1}_secret_"}" != "$secret1"
check "the stand-in made one intent: amount, currency, metadata[booking_id], key, bearer" \
  python3 - "$(standin_requests)" "$(standin_objects)" "$b1" "$pi1" <<'EOF'
import json, os, sys
reqs, objs, b, pi = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
mine = [r for r in reqs if r["path"] == "/v1/payment_intents" and r["form"].get("metadata[booking_id]") == b]
intents = [i for i in objs["intents"] if i["metadata"].get("booking_id") == b]
ok = (len(intents) == 1 and intents[0]["id"] == pi and intents[0]["amount"] == 1500
      and intents[0]["currency"] == "eur" and mine
      and all(r["authorized"] and r["idempotency_key"] == os.environ["KP"] + "-pi-" + b for r in mine)
      and mine[0]["form"].get("automatic_payment_methods[enabled]") == "true"
      and mine[0]["content_type"] == "application/x-www-form-urlencoded")
if not ok:
    print(mine, intents)
sys.exit(0 if ok else 1)
EOF
out=$(webhook evt_paid_1 payment_intent.succeeded "$pi1" "$b1" 1500)
check "the signed webhook applies" test "$(printf '%s' "$out" | jq -r .outcome)" = applied
check "the booking is confirmed" wait_status "$b1" confirmed 50
check "a confirmed booking shows no client_secret" \
  test "$(api GET "/v1/bookings/$b1" | jq -r '.booking.client_secret // "none"')" = none

# ---- refund: a cancel before the cut-off ----
out=$(api POST "/v1/bookings/$b1/cancel")
check "the paid booking is cancelled" test "$(printf '%s' "$out" | jq -r .booking.status)" = cancelled
refund_of() { # pi
  standin_objects | jq -r --arg pi "$1" '[.refunds[] | select(.payment_intent == $pi)] | length'
}
wait_refund() { # pi tenths
  for _ in $(seq 1 "$2"); do
    [ "$(refund_of "$1")" = 1 ] && return 0
    sleep 0.1
  done
  return 1
}
check "a Refund of the intent at the stand-in" wait_refund "$pi1" 100
check "the refund's Idempotency-Key is the booking's and the intent's" \
  test "$(standin_requests | jq -r --arg pi "$pi1" '[.[] | select(.path == "/v1/refunds" and .form.payment_intent == $pi)][0].idempotency_key')" = "$kp-re-$b1-$pi1"
re1=$(standin_objects | jq -r --arg pi "$pi1" '.refunds[] | select(.payment_intent == $pi) | .id')
if [ -n "$url" ]; then
  check "PostgreSQL: payments rows keep Stripe's ids (evt_..., re_...)" \
    wait_sql "SELECT string_agg(status || ' ' || payment_ref || ' ' || amount_cents, ',' ORDER BY id) FROM payments WHERE booking_id = $b1" \
    "succeeded evt_paid_1 1500,refunded $re1 1500" 150
fi

# ---- studio: an event cancel refunds its paid bookings, cut-off or not ----
out=$(api PATCH "/v1/orgs/$org" '{"cancel_cutoff_hours":720}')
check "the org's cut-off is 720 h (the class is inside it)" \
  test "$(printf '%s' "$out" | jq -r .org.cancel_cutoff_hours)" = 720
ev2=$(api GET "/v1/events?org_id=$org&limit=5" | jq -r --arg s "$sid" '[.events[] | select(.series_id == $s)][1].id')
bs=$(api POST "/v1/events/$ev2/bookings" '{"customer_id":"sal"}' | jq -r .booking.id)
pis=$(wait_intent "$bs" 100 | jq -r '.booking.payment_intent_id // empty')
webhook evt_paid_s payment_intent.succeeded "$pis" "$bs" 1500 >/dev/null
check "studio: the booking is paid and confirmed" wait_status "$bs" confirmed 50
out=$(api PATCH "/v1/events/$ev2" '{"status":"cancelled"}')
check "studio: the class is cancelled" test "$(printf '%s' "$out" | jq -r .event.status)" = cancelled
check "studio: the booking with it" wait_status "$bs" cancelled 50
check "studio: a Refund of its intent at the stand-in, inside the cut-off" wait_refund "$pis" 100
check "studio: the refund's reason and key" \
  test "$(standin_requests | jq -r --arg pi "$pis" '[.[] | select(.path == "/v1/refunds" and .form.payment_intent == $pi)][0] | .form["metadata[reason]"] + " " + .idempotency_key')" = "event_cancelled $kp-re-$bs-$pis"
if [ -n "$url" ]; then
  res=$(standin_objects | jq -r --arg pi "$pis" '.refunds[] | select(.payment_intent == $pi) | .id')
  check "studio: PostgreSQL has its refunded row" \
    wait_sql "SELECT string_agg(status || ' ' || payment_ref, ',' ORDER BY id) FROM payments WHERE booking_id = $bs" \
    "succeeded evt_paid_s,refunded $res" 150
fi
api PATCH "/v1/orgs/$org" '{"cancel_cutoff_hours":12}' >/dev/null

# ---- pending: Stripe's refund is not final at once; bookd asks again ----
paid_booking() { # customer: a booking on $ev paid through its intent
  local b pi
  b=$(api POST "/v1/events/$ev/bookings" "{\"customer_id\":\"$1\"}" | jq -r .booking.id)
  pi=$(wait_intent "$b" 100 | jq -r '.booking.payment_intent_id // empty')
  webhook "evt_paid_$1" payment_intent.succeeded "$pi" "$b" 1500 >/dev/null
  wait_status "$b" confirmed 50
  printf '%s %s' "$b" "$pi"
}
refunds_count() { api GET /v1/admin/status | jq -r ".payments.refunds_$1"; }
wait_count() { # done|failed expected tenths
  for _ in $(seq 1 "$3"); do
    [ "$(refunds_count "$1")" = "$2" ] && return 0
    sleep 0.1
  done
  echo "  refunds_$1: $(refunds_count "$1") (expected $2)"
  return 1
}
done0=$(refunds_count done) failed0=$(refunds_count failed)
standin_mode '{"refund_status": "pending", "refund_polls": 2, "refund_final": "succeeded"}'
read -r bp pip <<<"$(paid_booking pat)"
api POST "/v1/bookings/$bp/cancel" >/dev/null
check "pending: a Refund made at the stand-in" wait_refund "$pip" 100
rep=$(standin_objects | jq -r --arg pi "$pip" '.refunds[] | select(.payment_intent == $pi) | .id')
check "pending: looked at again until it succeeded (counted once)" wait_count done $((done0 + 1)) 100
check "pending: GET /v1/refunds/$rep three times (pending, pending, succeeded), no key" \
  test "$(standin_requests | jq -r --arg p "/v1/refunds/$rep" '[.[] | select(.method == "GET" and .path == $p)] | (length | tostring) + " " + ([.[].idempotency_key] | unique | tostring) + " " + (.[-1].status | tostring)')" = '3 [null] 200'
check "pending: one Refund, succeeded" \
  test "$(standin_objects | jq -r --arg pi "$pip" '[.refunds[] | select(.payment_intent == $pi) | .status] | join(",")')" = succeeded
standin_mode '{"refund_status": "requires_action", "refund_polls": 1, "refund_final": "failed"}'
read -r bf pif <<<"$(paid_booking quin)"
api POST "/v1/bookings/$bf/cancel" >/dev/null
check "failed: a Refund made at the stand-in" wait_refund "$pif" 100
ref=$(standin_objects | jq -r --arg pi "$pif" '.refunds[] | select(.payment_intent == $pi) | .id')
check "failed: it failed at Stripe: counted failed, not done" wait_count failed $((failed0 + 1)) 100
check "failed: refunds_done unchanged" test "$(refunds_count done)" = $((done0 + 1))
if [ -n "$url" ]; then
  check "pending: PostgreSQL has one refunded row, when final" \
    wait_sql "SELECT string_agg(status || ' ' || payment_ref, ',' ORDER BY id) FROM payments WHERE booking_id = $bp" \
    "succeeded evt_paid_pat,refunded $rep" 150
  check "failed: PostgreSQL has a refund_failed row with Stripe's id" \
    wait_sql "SELECT string_agg(status || ' ' || payment_ref || ' ' || flagged, ',' ORDER BY id) FROM payments WHERE booking_id = $bf" \
    "succeeded evt_paid_quin false,refund_failed $ref true" 150
fi
standin_mode '{"refund_status": null}'

# ---- recover: two failures, then it works: one intent, one key ----
standin_mode '{"fail": 500, "fail_count": 2}'
b2=$(api POST "/v1/events/$ev/bookings" '{"customer_id":"cy"}' | jq -r .booking.id)
pi2=$(wait_intent "$b2" 100 | jq -r '.booking.payment_intent_id // empty')
check "after two 500s the intent is made" test -n "$pi2"
check "three calls with the same Idempotency-Key, one intent" \
  python3 - "$(standin_requests)" "$(standin_objects)" "$b2" <<'EOF'
import json, os, sys
reqs, objs, b = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
mine = [r for r in reqs if r["path"] == "/v1/payment_intents" and r["form"].get("metadata[booking_id]") == b]
keys = {r["idempotency_key"] for r in mine}
statuses = [r["status"] for r in mine]
n = len([i for i in objs["intents"] if i["metadata"].get("booking_id") == b])
ok = statuses == [500, 500, 200] and keys == {os.environ["KP"] + "-pi-" + b} and n == 1
if not ok:
    print(statuses, keys, n)
sys.exit(0 if ok else 1)
EOF

# ---- give up: failing for good releases the hold; the alert ----
standin_mode '{"fail": 500, "fail_count": null}'
b3=$(api POST "/v1/events/$ev/bookings" '{"customer_id":"dee"}' | jq -r .booking.id)
check "after 3 failed calls the hold is released (payment_failed)" wait_status "$b3" payment_failed 100
check "three calls were made for it, all with its key" \
  test "$(standin_requests | jq --arg b "$b3" --arg kp "$kp" '[.[] | select(.form["metadata[booking_id]"] == $b and .idempotency_key == $kp + "-pi-" + $b)] | length')" = 3
status=$(api GET /v1/admin/status)
check "status: the payments_failing alert, the failure counted" \
  test "$(printf '%s' "$status" | jq -r '([.alerts[] | select(.name == "payments_failing")] | length), .payments.intents_failed')" = "1
1"
check "status: no secret key in last_error" \
  test "$(printf '%s' "$status" | jq -r '.payments.last_error' | grep -c sk_test)" = 0
check "metrics: bookd_payments_alert 1" \
  grep -q '^bookd_payments_alert 1' <<<"$(curl -s "$base/metrics")"
standin_mode '{"fail": null}'
b4=$(api POST "/v1/events/$ev/bookings" '{"customer_id":"eve"}' | jq -r .booking.id)
check "a call that works again makes the intent" wait_intent "$b4" 100 >/dev/null
check "and clears the alert" \
  test "$(api GET /v1/admin/status | jq -r '[.alerts[] | select(.name == "payments_failing")] | length')" = 0

# ---- kill -9 between the hold and its intent ----
standin_mode '{"delay_ms": 2500}'
b5=$(api POST "/v1/events/$ev/bookings" '{"customer_id":"fay"}' | jq -r .booking.id)
for _ in $(seq 1 100); do
  [ "$(standin_requests | jq --arg b "$b5" '[.[] | select(.form["metadata[booking_id]"] == $b)] | length')" -ge 1 ] && break
  sleep 0.1
done
kill -KILL "$pid"; wait "$pid" 2>/dev/null; pid=
standin_mode '{"delay_ms": 0}'
start_bookd
pi5=$(wait_intent "$b5" 150 | jq -r '.booking.payment_intent_id // empty')
check "kill -9 mid-call: after the restart the booking has its intent" test -n "$pi5"
check "kill -9 mid-call: exactly one intent at the stand-in, the same key" \
  python3 - "$(standin_requests)" "$(standin_objects)" "$b5" "$pi5" <<'EOF'
import json, os, sys
reqs, objs, b, pi = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
mine = [r for r in reqs if r["form"].get("metadata[booking_id]") == b]
n = [i["id"] for i in objs["intents"] if i["metadata"].get("booking_id") == b]
ok = n == [pi] and len(mine) >= 2 and {r["idempotency_key"] for r in mine} == {os.environ["KP"] + "-pi-" + b}
if not ok:
    print([(r["status"], r["replayed"]) for r in mine], n)
sys.exit(0 if ok else 1)
EOF

# ---- late: a payment after the hold expired is refunded ----
stop_pid
start_bookd BOOKD_TEST_HOLD_MS=1500
b6=$(api POST "/v1/events/$ev/bookings" '{"customer_id":"gus"}' | jq -r .booking.id)
pi6=$(wait_intent "$b6" 100 | jq -r '.booking.payment_intent_id // empty')
check "late: the short hold has its intent" test -n "$pi6"
check "late: the hold expires" wait_status "$b6" expired 100
out=$(webhook evt_late_6 payment_intent.succeeded "$pi6" "$b6" 1500)
check "late: the payment is recorded, not applied" \
  test "$(printf '%s' "$out" | jq -r .received)" = true
check "late: refunded at the stand-in" wait_refund "$pi6" 100
if [ -n "$url" ]; then
  re6=$(standin_objects | jq -r --arg pi "$pi6" '.refunds[] | select(.payment_intent == $pi) | .id')
  check "late: PostgreSQL rows not_pending evt_late_6 and refunded $re6" \
    wait_sql "SELECT string_agg(status || ' ' || payment_ref, ',' ORDER BY id) FROM payments WHERE booking_id = $b6" \
    "not_pending evt_late_6,refunded $re6" 150
fi

# ---- keys: the old prefix where the sender ran before; a fresh log's own ----
stop_pid
rm -f "$data/payments.keys"
start_bookd
check "keys: a log the sender ran on before keeps the old prefix (bookd)" \
  test "$(sed -n 's/^prefix //p' "$data/payments.keys")" = bookd
b8=$(api POST "/v1/events/$ev/bookings" '{"customer_id":"hal"}' | jq -r .booking.id)
wait_intent "$b8" 100 >/dev/null
check "keys: its intent's key is bookd-pi-<booking>" \
  test "$(standin_requests | jq -r --arg b "$b8" '[.[] | select(.form["metadata[booking_id]"] == $b)][0].idempotency_key')" = "bookd-pi-$b8"
stop_pid
mv "$data" "$tmp/data.lost"
start_bookd
kp2=$(sed -n 's/^prefix //p' "$data/payments.keys" 2>/dev/null)
check "keys: a fresh log gets a prefix of its own" \
  test -n "$kp2" -a "$kp2" != "$kp" -a "$kp2" != bookd
check "bookd stops cleanly" stop_status
check "no ThreadSanitizer report in bookd's output" \
  test "$(grep -c 'WARNING: ThreadSanitizer' "$tmp/bookd.log")" = 0
check "no secret (sk_..., client_secret) in bookd's output" \
  test "$(grep -c "sk_test_bookd\|_secret_" "$tmp/bookd.log")" = 0

echo "test_payments: $passed passed, $failed failed"
[ "$failed" = 0 ]
