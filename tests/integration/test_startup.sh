#!/usr/bin/env bash
# bookd's start-up:
#   - a data dir the process cannot write into is refused at start (exit 1,
#     a message naming the directory and the reason), not answered later
#     with failed writes. As root (CI) bookd runs as nobody (setpriv) on a
#     root-owned directory; as another user the directory is made 0555. A
#     data dir path that is a file is refused too (works for any user).
#   - an empty data dir: bookd starts quickly with modest memory (bounds
#     generous, the old defaults took 1.2 GB and over a second), and its log
#     says what start-up did (no snapshot, records replayed, time taken).
#
#   bash tests/integration/test_startup.sh     (from the repo, or by ctest)
#
# bookd: BOOKD_BIN, else <build>/api/bookd found from ctest's working
# directory (<build>/tests), BOOKD_BUILD_DIR or ./build. Exit 77 (skipped)
# when bookd or curl is missing.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
test_setup test_startup curl
chmod 755 "$tmp" # another user (nobody) must reach the data dirs inside
cleanup() {
  stop_pid
  chmod -R u+w "$tmp" 2>/dev/null
  keep_logs test_startup "$tmp"
  rm -rf "$tmp"
}
trap cleanup EXIT

# refused "what" log -- command...: the command must exit 1 within 10 s
# (not serve), its stderr naming the directory and the reason.
refused() {
  local what=$1 log=$2 dir=$3 reason=$4; shift 4
  timeout 10 "$@" --listen 127.0.0.1:0 --binary-listen 127.0.0.1:0 \
    --data-dir "$dir" >"$log" 2>&1
  local rc=$?
  if [ "$rc" = 1 ] && grep -q "$dir" "$log" && grep -q "$reason" "$log"; then
    ok "$what: refused at start: $(grep "$reason" "$log" | head -1)"
  else
    bad "$what: exit $rc (want 1, a message naming $dir and '$reason'):"
    cat "$log"
  fi
}

# 1. A data dir bookd may open but not write into.
ro=$tmp/ro
mkdir -p "$ro"
# An existing log, as a previous run left it: writable files, the
# directory not (so the log opens, but its next segment could not be made).
env -u DATABASE_URL timeout 10 "$bookd" --listen 127.0.0.1:0 \
  --binary-listen 127.0.0.1:0 --data-dir "$ro" >"$tmp/first.log" 2>&1 &
pid=$!
wait_for "$tmp/first.log" 'HTTP on' 100 0.1
kill -TERM "$pid"; wait "$pid"; pid=
if [ "$(id -u)" = 0 ]; then
  if setpriv --reuid=nobody --regid=nogroup --clear-groups true 2>/dev/null; then
    chmod 666 "$ro"/* # the files are writable by anyone: only the dir is not
    refused "unwritable data dir (as nobody)" "$tmp/ro.log" "$ro" \
      "Permission denied" \
      env -u DATABASE_URL setpriv --reuid=nobody --regid=nogroup \
      --clear-groups "$bookd"
  else
    echo "test_startup: no setpriv for nobody: the EACCES case skipped"
  fi
else
  chmod 555 "$ro"
  refused "unwritable data dir (mode 0555)" "$tmp/ro.log" "$ro" \
    "Permission denied" env -u DATABASE_URL "$bookd"
  chmod 755 "$ro"
fi

# 2. A data dir path that is a file.
echo x >"$tmp/file"
refused "data dir is a file" "$tmp/file.log" "$tmp/file" "Not a directory" \
  env -u DATABASE_URL "$bookd"

# 3. An empty data dir: time to serve, memory, and what the log says.
# Bounds are generous (the old fixed tables took ~1.2 GB resident with
# huge pages and over a second to fault in); an ASan build gets more room.
rss_max_kb=120000 core_s_max=0.25 total_s_max=5
if ldd "$bookd" 2>/dev/null | grep -q libasan; then
  rss_max_kb=600000 core_s_max=1.0 total_s_max=15
fi
t0=$(date +%s.%N)
env -u DATABASE_URL "$bookd" --listen 127.0.0.1:0 --binary-listen 127.0.0.1:0 \
  --data-dir "$tmp/empty" >"$tmp/empty.log" 2>&1 &
pid=$!
wait_for "$tmp/empty.log" 'HTTP on' 300 0.02
t1=$(date +%s.%N)
url=$(grep -ao 'HTTP on http://[0-9.:]*' "$tmp/empty.log" | sed 's/HTTP on //')
if [ -n "$url" ] && curl -sf "$url/health" >/dev/null; then
  ok "empty data dir: serving"
else
  bad "empty data dir: not serving"; cat "$tmp/empty.log"
fi
rss_kb=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status")
kill -TERM "$pid"; wait "$pid"; pid=
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
line=$(grep 'bookd: started:' "$tmp/empty.log")
echo "     $line"
echo "     resident $rss_kb kB, serving after $secs s"
if [ "$rss_kb" -lt "$rss_max_kb" ]; then ok "resident $rss_kb kB < $rss_max_kb kB"
else bad "resident $rss_kb kB, want < $rss_max_kb kB"; fi
if lt "$secs" "$total_s_max"; then ok "serving after $secs s < $total_s_max s"
else bad "serving after $secs s, want < $total_s_max s"; fi
core_s=$(printf '%s' "$line" | sed -n 's/.*core made in \([0-9.]*\) s.*/\1/p')
if [ -n "$core_s" ] && lt "$core_s" "$core_s_max"; then
  ok "core made in $core_s s < $core_s_max s"
else
  bad "core made in '${core_s}' s, want < $core_s_max s"
fi
if printf '%s' "$line" | grep -q 'no snapshot, replayed 0 records'; then
  ok "the log says: no snapshot, 0 records replayed"
else
  bad "the start-up line does not say what happened: '$line'"
fi

# 4. With a snapshot: the line names it and what was replayed after it.
env -u DATABASE_URL "$bookd" --listen 127.0.0.1:0 --binary-listen 127.0.0.1:0 \
  --data-dir "$tmp/empty" --demo --snapshot-every 1 >"$tmp/snap.log" 2>&1 &
pid=$!
wait_for "$tmp/snap.log" 'bookd: snapshot at LSN' 300 0.05
kill -TERM "$pid"; wait "$pid"; pid=
env -u DATABASE_URL "$bookd" --listen 127.0.0.1:0 --binary-listen 127.0.0.1:0 \
  --data-dir "$tmp/empty" >"$tmp/snap2.log" 2>&1 &
pid=$!
wait_for "$tmp/snap2.log" 'HTTP on' 300 0.05
kill -TERM "$pid"; wait "$pid"; pid=
line=$(grep 'bookd: started:' "$tmp/snap2.log")
if printf '%s' "$line" | grep -q 'snapshot at LSN [1-9][0-9]* loaded ([0-9]* bytes) in [0-9.]* s, replayed [0-9]* records'; then
  ok "the log names the snapshot loaded: $line"
else
  bad "after a snapshot: '$line'"; cat "$tmp/snap.log" "$tmp/snap2.log"
fi

# 5. The booking rules' flags (docs/operations.md "Booking rules"): a
# value out of range stops bookd at start (exit 2) with a line naming the
# flag and its range; nothing is served.
rule_refused() {
  local want=$1; shift
  env -u DATABASE_URL timeout 10 "$@" "$bookd" --listen 127.0.0.1:0 \
    --binary-listen 127.0.0.1:0 --data-dir "$tmp/rules" >"$tmp/rules.log" 2>&1
  local rc=$?
  if [ "$rc" = 2 ] && grep -qF -- "$want" "$tmp/rules.log"; then
    ok "refused at start: $(grep -F -- "$want" "$tmp/rules.log" | head -1 | sed 's/.*msg=//')"
  else
    bad "$*: exit $rc (want 2 and '$want'):"; cat "$tmp/rules.log"
  fi
}
rule_refused "--hold-minutes must be 1..1440, not '0'" env BOOKD_HOLD_MINUTES=0
rule_refused "--hold-minutes must be 1..1440, not '1441'" env BOOKD_HOLD_MINUTES=1441
rule_refused "--idempotency-hours must be 24..8760, not '23'" env BOOKD_IDEMPOTENCY_HOURS=23
rule_refused "--horizon-days (400) must be at most --generate-max-days (366)" env BOOKD_HORIZON_DAYS=400
rule_refused "--horizon-days must be 1..36600, not 'x'" env BOOKD_HORIZON_DAYS=x


echo "test_startup: $passed passed, $failed failed"
[ "$failed" = 0 ]
