#!/usr/bin/env bash
# docs/openapi.yaml as code generators need it (issue 18):
#   - clients/ts/scripts/lint-openapi.mjs passes: Redocly's recommended
#     rules (the OpenAPI 3.0 structure, ...) and bookd's own (an operationId
#     equal to x-bookd-op on every operation, 429 with Retry-After on every
#     limited one, the error schema on every 4xx/5xx, Location on 201);
#   - openapi-typescript generates the client's types from it;
#   - bookd sends what the document promises for 201: a Location that
#     reads the created object back (org, location, instructor, series,
#     booking; a customer's bookings).
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

# create PATH BODY: POSTs it; 201 with a Location that GET answers 200.
# Prints the created object's id (its answer in $tmp/body, headers in
# $tmp/head).
create() {
  local st loc
  st=$(curl -s -o "$tmp/body" -D "$tmp/head" -w '%{http_code}' -X POST "$URL$1" \
    -H "Authorization: Bearer $SVC" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: k$RANDOM$RANDOM" -d "$2")
  loc=$(grep -i '^Location: ' "$tmp/head" | tr -d '\r' | cut -d' ' -f2)
  if [ "$st" = 201 ] && [ -n "$loc" ] &&
     [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL$loc" -H "Authorization: Bearer $SVC")" = 200 ]; then
    ok "POST $1: 201, Location $loc reads it" >&2
  else
    bad "POST $1: $st, Location '$loc'" >&2; cat "$tmp/head" "$tmp/body" >&2
  fi
  jq -r '.[keys[0]].id // empty' "$tmp/body"
}
org=$(create /v1/orgs '{"name":"Loc Studio","timezone":"Europe/Berlin"}')
locn=$(create /v1/locations "{\"org_id\":\"$org\",\"name\":\"Hall\"}")
ins=$(create /v1/instructors "{\"org_id\":\"$org\",\"name\":\"Kim\"}")
create /v1/customers '{"id":"cus_loc","name":"Lo"}' >/dev/null
create /v1/series "{\"org_id\":\"$org\",\"location_id\":\"$locn\",\"instructor_id\":\"$ins\",\"title\":\"Yoga\",\"capacity\":2,\"timezone\":\"Europe/Berlin\",\"weekdays\":[\"MO\",\"TU\",\"WE\",\"TH\",\"FR\",\"SA\",\"SU\"],\"start_time\":\"07:00\",\"duration_min\":60,\"first_date\":\"$(date -u -d tomorrow +%F)\"}" >/dev/null
ev=$(curl -s "$URL/v1/events?org_id=$org" -H "Authorization: Bearer $SVC" | jq -r '.events[0].id')
create "/v1/events/$ev/bookings" '{"customer_id":"cus_loc"}' >/dev/null
grep -qi '^Location: /v1/bookings/[0-9]' "$tmp/head" && ok "a booking's Location is /v1/bookings/{id}" ||
  bad "the booking's Location"

echo "test_openapi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
