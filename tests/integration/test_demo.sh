#!/usr/bin/env bash
# scripts/run.sh's demo (bookd --demo): starts it the way a newcomer does
# (BOOKD_RUN_SETUP=0: no apt, no build; a temp data dir and free ports), runs
# every curl line it prints exactly as printed, opens the schedule page's
# printed address and reads alice's bookings with the sign-in link's token,
# then stops it (SIGTERM) and starts it again on the same data dir: the
# lines are printed again and each runs again, the booking and the cancel
# as replays of the first answers.
#
#   bash tests/integration/test_demo.sh     (from the repo, or by ctest)
#
# bookd: BOOKD_BIN, else <build>/api/bookd found from ctest's working
# directory (<build>/tests), BOOKD_BUILD_DIR or ./build. Exit 77 (skipped)
# when bookd, curl or jq is missing.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
test_setup test_demo curl jq

# start <n>: scripts/run.sh on the temp data dir; waits for the demo's lines
# (or its message that there is no demo) in $tmp/out.<n>.
start() {
  local n=$1
  BOOKD_RUN_SETUP=0 BOOKD_BIN=$bookd env -u DATABASE_URL -u BOOKD_SERVICE_KEY \
    -u BOOKD_ANON_KEY bash "$root/scripts/run.sh" --data-dir "$tmp/data" \
    --listen 127.0.0.1:0 --binary-listen 127.0.0.1:0 \
    >"$tmp/out.$n" 2>"$tmp/err.$n" &
  pid=$!
  wait_for "$tmp/out.$n" 'demo studio\|demo:' 300 0.1
  sleep 0.2 # the rest of the lines (one printf each, flushed together)
}

stop() {
  kill -TERM "$pid"; wait "$pid"; local rc=$?; pid=
  [ $rc -eq 0 ] && ok "run $1: SIGTERM, exit 0" || bad "run $1: exit $rc"
}

# run_lines <n>: each printed curl line, as printed, in a fresh shell; its
# answer must be JSON without an error. Answers go to $tmp/ans.<n>.<i>.
run_lines() {
  local n=$1 i=0 line
  grep '^  curl ' "$tmp/out.$n" | sed 's/^  //' >"$tmp/lines.$n"
  local count; count=$(wc -l <"$tmp/lines.$n")
  if [ "$count" -eq 4 ]; then ok "run $n: four curl lines printed"
  else bad "run $n: $count curl lines printed"; cat "$tmp/out.$n" "$tmp/err.$n"; fi
  if grep -q 'BOOKING_ID\|[A-Z_]\{6,\}_ID\|<[a-z_]*>' "$tmp/lines.$n"; then
    bad "run $n: a placeholder in the lines"; cat "$tmp/lines.$n"
  else ok "run $n: no placeholder in the lines"; fi
  while IFS= read -r line; do
    i=$((i + 1))
    bash -c "$line" >"$tmp/ans.$n.$i" 2>&1 </dev/null
    local rc=$?
    if [ $rc -eq 0 ] && jq -e 'type == "object" and (has("error") | not)' \
         "$tmp/ans.$n.$i" >/dev/null 2>&1; then
      ok "run $n line $i: $(head -c 70 "$tmp/ans.$n.$i")..."
    else
      bad "run $n line $i (curl exit $rc): $line"; cat "$tmp/ans.$n.$i"; echo
    fi
  done <"$tmp/lines.$n"
}

# page_links <n>: the schedule page's address and alice's sign-in link, as
# printed: the page answers, the link's token is alice's.
page_links() {
  local n=$1 page link tok
  page=$(grep -o '^  http://[^ ]*/#key=[^&]*$' "$tmp/out.$n" | head -1)
  link=$(grep -o '^  http://[^ ]*/#key=[^ ]*&token=[^ ]*$' "$tmp/out.$n" | head -1)
  if [ -n "$page" ] && [ -n "$link" ]; then ok "run $n: the page's address and a sign-in link"
  else bad "run $n: no page address or sign-in link"; cat "$tmp/out.$n"; return; fi
  page=${page#  }
  [ "$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "${page%%#*}")" = \
    "200 text/html; charset=utf-8" ] && ok "run $n: the page answers" ||
    bad "run $n: the page does not answer"
  tok=${link##*token=}
  curl -s "${page%%/#*}/v1/customers/alice/bookings" -H "Authorization: Bearer $tok" |
    jq -e '.bookings | length >= 1' >/dev/null &&
    ok "run $n: the link's token reads alice's bookings" ||
    bad "run $n: the link's token"
}

start 1
run_lines 1
page_links 1
jq -e '.events | length == 3' "$tmp/ans.1.1" >/dev/null &&
  ok "run 1: the listing has three classes" || bad "run 1: the listing"
jq -e '.booking.customer_id == "bob" and .booking.status == "confirmed"' "$tmp/ans.1.2" \
  >/dev/null && ok "run 1: bob booked" || bad "run 1: bob's booking"
jq -e '.booking.customer_id == "alice"' "$tmp/ans.1.3" >/dev/null &&
  ok "run 1: the demo's booking is alice's" || bad "run 1: alice's booking"
jq -e '.booking.status == "cancelled"' "$tmp/ans.1.4" >/dev/null &&
  ok "run 1: alice's booking cancelled" || bad "run 1: the cancel"
stop 1

start 2
grep -q 'demo studio found' "$tmp/out.2" && ok "run 2: the demo found again" ||
  bad "run 2: $(cat "$tmp/out.2")"
run_lines 2
page_links 2
for i in 2 4; do
  if jq -S 'del(.booking.hold_expires_at)' "$tmp/ans.1.$i" >"$tmp/a1" 2>/dev/null &&
     jq -S 'del(.booking.hold_expires_at)' "$tmp/ans.2.$i" >"$tmp/a2" 2>/dev/null &&
     cmp -s "$tmp/a1" "$tmp/a2"; then
    ok "run 2 line $i: the first run's answer, replayed"
  else
    bad "run 2 line $i: answers differ"; cat "$tmp/ans.1.$i" "$tmp/ans.2.$i"
  fi
done
# the same ids as the first run (only the ports differ)
if diff <(sed 's/127\.0\.0\.1:[0-9]*/ADDR/' "$tmp/lines.1") \
        <(sed 's/127\.0\.0\.1:[0-9]*/ADDR/' "$tmp/lines.2") >/dev/null; then
  ok "run 2: the same lines as run 1"
else bad "run 2: other lines than run 1"; fi
stop 2

echo "test_demo: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
