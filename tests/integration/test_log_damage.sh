#!/usr/bin/env bash
# bookd and a damaged log (docs/operations.md "When the log is damaged"):
#   - a segment truncated after a clean stop: bookd refuses to start (exit
#     1, the segment named, "it was truncated", the flag named), every time;
#     --accept-log-loss starts it, logs CUT CORRUPT LOG and keeps a .cut
#     copy; the next start needs no flag;
#   - --recover-stop-before LSN: the log is cut before that record (the
#     records before it applied, the rest kept in a .cut file), logged; an
#     LSN outside the log is refused; the same flag again (left set) is
#     refused, the records since the cut kept; the next start needs no flag.
# The log's own rules (a missing successor, zeros behind DURABLE, ...) are
# tested in tests/unit/test_wal_loss.c.
#
#   bash tests/integration/test_log_damage.sh     (from the repo, or by ctest)
#
# bookd: BOOKD_BIN, else <build>/api/bookd found from ctest's working
# directory (<build>/tests), BOOKD_BUILD_DIR or ./build. Exit 77 (skipped)
# when bookd or curl is missing.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
test_setup test_log_damage curl
data=$tmp/data
SVC=svc-$RANDOM$RANDOM

# start log [flags...]: bookd in the background on free ports; sets pid and
# url once it serves (0), or returns 1 if it exited first.
start() {
  local log=$1; shift
  env -u DATABASE_URL "$bookd" --listen 127.0.0.1:0 \
    --binary-listen 127.0.0.1:0 --data-dir "$data" --service-key "$SVC" \
    "$@" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    if grep -q 'HTTP on' "$log"; then
      url=$(sed -n 's/.*HTTP on \(http:[^,]*\),.*/\1/p' "$log" | head -1)
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { wait "$pid"; pid=; return 1; }
    sleep 0.1
  done
  return 1
}
stop() { stop_status; }
# refused what log want... -- flags: bookd must exit 1 within 10 s, its
# output holding every wanted string.
refused() {
  local what=$1 log=$2; shift 2
  local want=()
  while [ "$1" != -- ]; do want+=("$1"); shift; done
  shift
  timeout 10 env -u DATABASE_URL "$bookd" --listen 127.0.0.1:0 \
    --binary-listen 127.0.0.1:0 --data-dir "$data" "$@" >"$log" 2>&1
  local rc=$? w
  for w in "${want[@]}"; do
    grep -qF -- "$w" "$log" || rc="$rc, no '$w'"
  done
  if [ "$rc" = 1 ]; then
    ok "$what: $(grep -F -- "${want[0]}" "$log" | head -1 | cut -c1-160)..."
  else
    bad "$what: exit $rc (want 1 and ${want[*]}):"
    cat "$log"
  fi
}
api() { # api METHOD PATH [json]: prints the status code, body in $tmp/body
  curl -s -o "$tmp/body" -w '%{http_code}' -X "$1" "$url$2" \
    -H "Authorization: Bearer $SVC" -H 'Content-Type: application/json' \
    ${3:+-d "$3"}
}

# A log: an org (LSN 1) and two locations (LSN 2, 3).
if ! start "$tmp/first.log"; then
  bad "bookd did not start:"; cat "$tmp/first.log"; exit 1
fi
code=$(api POST /v1/orgs '{"name":"Studio","timezone":"Europe/Berlin"}')
org=$(sed -n 's/.*"id":"\{0,1\}\([0-9A-Za-z_-]*\)"\{0,1\}.*/\1/p' "$tmp/body")
c2=$(api POST /v1/locations "{\"org_id\":\"$org\",\"name\":\"Hall\"}")
c3=$(api POST /v1/locations "{\"org_id\":\"$org\",\"name\":\"Annex\"}")
if [ "$code" = 201 ] && [ "$c2" = 201 ] && [ "$c3" = 201 ] && stop; then
  ok "a log of three records, stopped cleanly"
else
  bad "setting up: org $code, locations $c2 $c3 ($(cat "$tmp/body"))"
  exit 1
fi
cp -a "$data" "$tmp/clean"
seg=$(cd "$data" && ls ./*.wal | head -1)
seg=${seg#./}

# 1. A truncated segment: refused, every time; accepted with the flag.
truncate -s 4096 "$data/$seg"
for try in 1 2; do
  refused "truncated segment, start $try" "$tmp/trunc$try.log" \
    "$seg" "it was truncated" "--accept-log-loss" --
done
if start "$tmp/accept.log" --accept-log-loss && grep -q 'CUT CORRUPT LOG' "$tmp/accept.log" &&
   ls "$data"/*.cut >/dev/null 2>&1 && stop; then
  ok "--accept-log-loss: starts, $(grep -o 'the log now ends at LSN [0-9]*' "$tmp/accept.log")"
else
  bad "--accept-log-loss:"; cat "$tmp/accept.log"
fi
if start "$tmp/after.log" && stop; then
  ok "the next start needs no flag"
else
  bad "start after --accept-log-loss:"; cat "$tmp/after.log"
fi

# 2. --recover-stop-before: back to the clean log, cut before LSN 3.
rm -rf "$data"; cp -a "$tmp/clean" "$data"
refused "--recover-stop-before outside the log" "$tmp/far.log" \
  "holds LSN 1..3" -- --recover-stop-before 9
"$bookd" --data-dir "$data" --recover-stop-before x >"$tmp/nan.log" 2>&1
rc=$?
if [ "$rc" = 2 ] && grep -q -- "--recover-stop-before must be a log LSN" "$tmp/nan.log"; then
  ok "--recover-stop-before x: exit 2, $(cat "$tmp/nan.log")"
else
  bad "--recover-stop-before x: exit $rc: $(cat "$tmp/nan.log")"
fi
if start "$tmp/stop.log" --recover-stop-before 3 &&
   grep -q "CUT AT THE OPERATOR'S REQUEST: .* now ends at LSN 2; records 3..3" "$tmp/stop.log"; then
  ok "--recover-stop-before 3: $(grep -o 'now ends at LSN 2; records 3..3' "$tmp/stop.log")"
  # LSN 1 and 2 were applied: the org takes another location, LSN 3 now.
  code=$(api POST /v1/locations "{\"org_id\":\"$org\",\"name\":\"Roof\"}")
  if [ "$code" = 201 ]; then ok "the records before it were applied"
  else bad "location after the cut: $code $(cat "$tmp/body")"; fi
  stop || bad "stop after --recover-stop-before"
  if grep -qa Annex "$data"/*.cut; then ok "the cut record is kept in a .cut file"
  else bad "no .cut file holds the cut record"; fi
else
  bad "--recover-stop-before 3:"; cat "$tmp/stop.log"
fi
# The flag left set: LSN 3 is now the new location, acknowledged; cutting
# again would drop it: refused.
refused "--recover-stop-before 3 again" "$tmp/again.log" \
  "cut before LSN 3 already" -- --recover-stop-before 3
if start "$tmp/after2.log" && stop; then
  ok "the next start needs no flag"
else
  bad "start after --recover-stop-before:"; cat "$tmp/after2.log"
fi

echo "test_log_damage: $passed passed, $failed failed"
[ "$failed" = 0 ]
