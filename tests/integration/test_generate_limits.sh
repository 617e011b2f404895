#!/usr/bin/env bash
# A generation the core cannot apply is refused before it is logged, and the
# data dir stays usable (issue 13, item 2). bookd runs with --max-events 300
# (per shard, one shard) and the default --generate-max-days 366:
#   - a daily series is created (120 events: the horizon);
#   - POST /v1/admin/generate until 9999-12-31: 422 limit_exceeded naming
#     generate_max_days, over HTTP and over the binary protocol (bookctl);
#   - until a year ahead (366 events in all > 300): 422 naming max_events,
#     and nothing of it applied (still 120 events);
#   - bookd restarts on the same data dir (the refusals were never logged),
#     with the same 120 events, and a generation within the limits works;
#   - POST /v1/admin/archive: 200 with the count (0: nothing has ended),
#     400 naming `days` when it is 0 or missing, 401 without a key.
#
#   bash tests/integration/test_generate_limits.sh   (from the repo, or by ctest)
#
# bookd and bookctl: BOOKD_BUILD_DIR, else <build>/api found from ctest's
# working directory (<build>/tests), or ./build. Exit 77 (skipped) when one
# is missing, or curl or jq.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
if [ -n "${BOOKD_BUILD_DIR:-}" ]; then api=$BOOKD_BUILD_DIR/api
elif [ -x "$PWD/../api/bookd" ]; then api=$(cd "$PWD/.." && pwd)/api
else api=$root/build/api; fi
bookd=$api/bookd bookctl=$api/bookctl
for b in "$bookd" "$bookctl"; do
  if [ ! -x "$b" ]; then
    echo "test_generate_limits: $b not built, skipped"
    exit 77
  fi
done
need_tools test_generate_limits curl jq

SVC=svc-$RANDOM$RANDOM
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_generate_limits.XXXXXX")
trap cleanup EXIT

start_bookd() {
  echo "--- bookd start" >>"$tmp/bookd.log"
  env -u DATABASE_URL "$bookd" --service-key "$SVC" --listen 127.0.0.1:0 \
    --binary-listen 127.0.0.1:0 --data-dir "$tmp/data" --shards 1 \
    --max-events 300 >>"$tmp/bookd.log" 2>&1 &
  pid=$!
  local starts line
  starts=$(grep -c '^--- bookd start' "$tmp/bookd.log")
  line=$(started_line "$tmp/bookd.log" "$starts")
  URL=$(printf '%s' "$line" | grep -o 'http://[0-9.:]*')
  BIN=$(printf '%s' "$line" | sed 's/.*binary protocol on \([0-9.:]*\).*/\1/')
  [ -n "$URL" ]
}
stop_bookd() { stop_status; }

req() { # req METHOD PATH [curl args]: $st, $body
  local m=$1 p=$2; shift 2
  st=$(curl -s -o "$tmp/b" -w '%{http_code}' -X "$m" -H "Authorization: Bearer $SVC" \
    -H 'Content-Type: application/json' "$@" "$URL$p")
  body=$(cat "$tmp/b")
}
j() { printf '%s' "$body" | jq -r "$1"; }
event_count() {
  req GET "/v1/events?limit=500"
  j '.events | length'
}

if ! start_bookd; then
  echo "test_generate_limits: bookd did not start:"; cat "$tmp/bookd.log"
  exit 1
fi
req POST /v1/orgs -d '{"name":"Studio","timezone":"UTC"}'; org=$(j .org.id)
req POST /v1/locations -d "{\"org_id\":\"$org\",\"name\":\"Hall\"}"; loc=$(j .location.id)
req POST /v1/instructors -d "{\"org_id\":\"$org\",\"name\":\"Ann\"}"; ins=$(j .instructor.id)
req POST /v1/series -d "{\"org_id\":\"$org\",\"location_id\":\"$loc\",
  \"instructor_id\":\"$ins\",\"title\":\"Daily\",\"capacity\":5,\"waitlist_capacity\":0,
  \"timezone\":\"UTC\",\"weekdays\":[\"MO\",\"TU\",\"WE\",\"TH\",\"FR\",\"SA\",\"SU\"],
  \"start_time\":\"23:30\",\"duration_min\":20,\"first_date\":\"$(date -u -d tomorrow +%F)\"}"
check "series created with 120 events (the horizon)" test "$st" = 201 -a "$(j .generated)" = 120
sid=$(j .series.id)
before=$(event_count)
check "120 events listed" test "$before" = 120

req POST /v1/admin/generate -d '{"until":"9999-12-31"}'
check "HTTP until 9999-12-31: 422 limit_exceeded ($body)" \
  test "$st" = 422 -a "$(j .error.code)" = limit_exceeded
check "HTTP: the message names the limit" \
  grep -q 'more than 366 days ahead (generate_max_days)' "$tmp/b"

"$bookctl" --addr "$BIN" --key "$SVC" generate --until 9999-12-31 >"$tmp/ctl.out" 2>&1
rc=$?
check "binary until 9999-12-31: refused ($(cat "$tmp/ctl.out"))" \
  test "$rc" = 1
check "binary: limit_exceeded naming generate_max_days" \
  grep -q 'limit_exceeded: until is more than 366 days ahead (generate_max_days)' "$tmp/ctl.out"

req POST /v1/admin/generate -d "{\"series_id\":\"$sid\",\"until\":\"$(date -u -d '+365 days' +%F)\"}"
check "HTTP a year ahead (over --max-events 300): 422 limit_exceeded ($body)" \
  test "$st" = 422 -a "$(j .error.code)" = limit_exceeded
check "HTTP: the message names max_events" grep -q 'more than 300 events (max_events' "$tmp/b"
check "nothing of it applied: still $before events" test "$(event_count)" = "$before"

check "SIGTERM: exit 0" stop_bookd
if start_bookd; then ok "restarted on the same data dir"; else
  bad "restart on the same data dir:"; tail -5 "$tmp/bookd.log"; exit 1
fi
check "the log line says what start-up did" \
  grep -q 'bookd: started: .*no snapshot, replayed [0-9]* records' "$tmp/bookd.log"
check "after the restart: still $before events" test "$(event_count)" = "$before"
req POST /v1/admin/generate -d "{\"until\":\"$(date -u -d '+150 days' +%F)\"}"
check "a generation within the limits: 200, 30 more events ($body)" \
  test "$st" = 200 -a "$(j .generated)" = 30
# The admin archive call (the core's archiving is tested in test_core_limits):
# nothing has ended yet, so nothing goes; bad input names the field.
req POST /v1/admin/archive -d '{"days":1}'
check "POST /v1/admin/archive days 1: 200, archived 0 ($body)" \
  test "$st" = 200 -a "$(j .archived)" = 0
req POST /v1/admin/archive -d '{"days":0}'
check "days 0: 400 naming days ($body)" \
  test "$st" = 400 -a "$(j .error.code)" = invalid_request
check "  the message names the field" grep -q "'days'" "$tmp/b"
req POST /v1/admin/archive -d '{}'
check "no days: 400 ($body)" test "$st" = 400
st=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"days":1}' "$URL/v1/admin/archive")
check "no key: 401" test "$st" = 401
check "still $((before + 30)) events" test "$(event_count)" = $((before + 30))
check "SIGTERM: exit 0" stop_bookd

echo "test_generate_limits: $passed passed, $failed failed"
[ "$failed" = 0 ]
