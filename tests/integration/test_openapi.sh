#!/usr/bin/env bash
# docs/openapi.yaml as code generators need it (issue 18):
#   - clients/ts/scripts/lint-openapi.mjs passes: Redocly's recommended
#     rules (the OpenAPI 3.0 structure, ...) and bookd's own (an operationId
#     equal to x-bookd-op on every operation, 429 with Retry-After on every
#     limited one, the error schema on every 4xx/5xx, Location on 201);
#   - openapi-typescript generates the client's types from it;
#   - bookd sends what the document promises for 201: a Location that
#     reads the created object back (org, location, instructor, series,
#     booking; a customer's bookings);
#   - each answer read here (the creations, their reads, a listing, an org's
#     patch, a cancel, the seed-compatible routes, /health, /ready) has
#     every property the document marks required, of its documented type
#     (clients/ts/scripts/check-answer.mjs): the generated types hold.
#
#   bash tests/integration/test_openapi.sh   (from the repo, or by ctest)
#
# Needs node and npm (else exit 77, skipped) and the npm registry (npm ci
# with clients/ts/package-lock.json, tests/integration/npm_lib.sh).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
. "$here/npm_lib.sh"
test_setup test_openapi curl jq
npm_deps test_openapi || { echo "test_openapi: npm ci failed"; exit 1; }

if node "$ts_dir/scripts/lint-openapi.mjs" "$root/docs/openapi.yaml" >"$tmp/lint" 2>&1; then
  ok "$(tail -1 "$tmp/lint")"
else
  bad "docs/openapi.yaml:"; cat "$tmp/lint"
fi
[ -s "$ts_dir/src/schema.d.ts" ] && ok "openapi-typescript generated src/schema.d.ts" ||
  bad "no src/schema.d.ts"

SVC=svc-$RANDOM$RANDOM
env -u DATABASE_URL BOOKD_SERVICE_KEY=$SVC BOOKD_LISTEN=127.0.0.1:0 \
  BOOKD_BINARY_LISTEN=127.0.0.1:0 BOOKD_DATA_DIR=$tmp/data \
  "$bookd" >"$tmp/bookd.log" 2>&1 &
pid=$!
URL=$(started_line "$tmp/bookd.log" | grep -o 'http://[0-9.:]*')
[ -n "$URL" ] || { echo "test_openapi: bookd did not start:"; cat "$tmp/bookd.log"; exit 1; }

# shape METHOD PATH STATUS FILE: the answer in FILE is what the document
# says METHOD PATH answers with STATUS.
shape() {
  if node "$ts_dir/scripts/check-answer.mjs" "$root/docs/openapi.yaml" "$@" 2>"$tmp/shape"; then
    ok "$1 $2: the $3 answer has what the document requires"
  else
    bad "$1 $2: the $3 answer differs from the document:"; cat "$tmp/shape" "$4"
  fi
}

# call METHOD PATH [BODY]: the answer's status (its body in $tmp/answer,
# its headers in $tmp/head)
call() {
  curl -s -o "$tmp/answer" -D "$tmp/head" -w '%{http_code}' -X "$1" "$URL$2" \
    -H "Authorization: Bearer $SVC" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: k$RANDOM$RANDOM" ${3:+-d "$3"}
}

# create PATH BODY: POSTs it; 201 with a Location that GET answers 200,
# both answers as documented. The created object's id in $created (its
# answer in $tmp/body, headers in $tmp/created). Not called in a $(...)
# subshell: the counts of ok and bad would be lost.
create() {
  local st loc
  st=$(call POST "$1" "$2")
  mv "$tmp/answer" "$tmp/body"; mv "$tmp/head" "$tmp/created"
  loc=$(grep -i '^Location: ' "$tmp/created" | tr -d '\r' | cut -d' ' -f2)
  if [ "$st" = 201 ] && [ -n "$loc" ] && [ "$(call GET "$loc")" = 200 ]; then
    ok "POST $1: 201, Location $loc reads it"
    shape POST "$1" 201 "$tmp/body"
    shape GET "$loc" 200 "$tmp/answer"
  else
    bad "POST $1: $st, Location '$loc'"; cat "$tmp/created" "$tmp/body"
  fi
  created=$(jq -r '[.[] | objects | .id][0] // empty' "$tmp/body")
}
# checked METHOD PATH STATUS [BODY]: called, answered STATUS as documented
checked() {
  local st
  st=$(call "$1" "$2" "${4:-}")
  if [ "$st" = "$3" ]; then shape "$1" "$2" "$3" "$tmp/answer"
  else bad "$1 $2: $st, not $3"; cat "$tmp/answer"; fi
}
create /v1/orgs '{"name":"Loc Studio","timezone":"Europe/Berlin"}'; org=$created
create /v1/locations "{\"org_id\":\"$org\",\"name\":\"Hall\"}"; locn=$created
create /v1/instructors "{\"org_id\":\"$org\",\"name\":\"Kim\"}"; ins=$created
create /v1/customers '{"id":"cus_loc","name":"Lo"}'
create /v1/series "{\"org_id\":\"$org\",\"location_id\":\"$locn\",\"instructor_id\":\"$ins\",\"title\":\"Yoga\",\"capacity\":2,\"timezone\":\"Europe/Berlin\",\"weekdays\":[\"MO\",\"TU\",\"WE\",\"TH\",\"FR\",\"SA\",\"SU\"],\"start_time\":\"07:00\",\"duration_min\":60,\"first_date\":\"$(date -u -d tomorrow +%F)\"}"
ev=$(curl -s "$URL/v1/events?org_id=$org" -H "Authorization: Bearer $SVC" | jq -r '.events[0].id')
create "/v1/events/$ev/bookings" '{"customer_id":"cus_loc"}'; bk=$created
grep -qi '^Location: /v1/bookings/[0-9]' "$tmp/created" && ok "a booking's Location is /v1/bookings/{id}" ||
  bad "the booking's Location"
checked GET "/v1/events?org_id=$org" 200
checked GET "/v1/orgs" 200
checked PATCH "/v1/orgs/$org" 200 '{"hold_minutes":15}'
checked GET "/v1/customers/cus_loc/bookings" 200
checked POST "/v1/bookings/$bk/cancel" 200
checked POST /functions/v1/book 200 "{\"eventId\":\"$ev\",\"customerId\":\"cus_loc\"}"
bk=$(jq -r '.booking.id' "$tmp/answer")
checked POST /functions/v1/cancel 200 "{\"bookingId\":\"$bk\",\"customerId\":\"cus_loc\"}"
checked GET "/functions/v1/events?orgId=$org" 200
checked GET /health 200
checked GET /ready 200

echo "test_openapi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
