#!/usr/bin/env bash
# bookbench end to end: a short run of every scenario against a test bookd
# (started by bookbench itself on a temp data dir and free ports) over HTTP
# and over the binary protocol, one open-loop run, and the PostgreSQL baseline
# against DATABASE_URL. Checks that every run passed bookbench's correctness
# check (no overbooking, every acknowledged booking read back, waitlists
# 1..n in FIFO order, the baseline's SQL invariants) and that the JSON and
# HTML reports were written. Not speed. Each driver also runs with --threads
# below --connections (several connections on one thread's event loop;
# result.json records the threads), the open loop too. Also: a run whose errors exceed 1% of
# its answers fails (exit 4, saying why), the bookd bookbench starts runs with
# its rate limits off (and it says so) unless --bookd-limits, result.json
# records bookd's version and build type, every chart of the HTML report
# has tick marks on both axes and at least one data point, the binary
# protocol over TCP or a unix socket (a compare's as the baseline's), a run that
# cannot be set up exits 1 without leaking (checked by the ASan build), and
# a refused flag leaves no bookd running.
#
#   bash tests/integration/test_bookbench.sh      (from the repo, or by ctest)
#
# Finds the build from ctest's working directory (<build>/tests), else
# BOOKD_BUILD_DIR, else ./build. Exit 77 (skipped) when neither bookd nor
# DATABASE_URL is there; the bookd part is skipped without build/api/bookd,
# the baseline part without DATABASE_URL (it works in a database of its own,
# bookd_bench_test_<pid>, dropped at the end).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -n "${BOOKD_BUILD_DIR:-}" ]; then build=$BOOKD_BUILD_DIR
elif [ -x "$PWD/../bench/bookbench" ]; then build=$(cd "$PWD/.." && pwd)
else build=$root/build; fi
bench=$build/bench/bookbench
bookd=$build/api/bookd

if [ ! -x "$bench" ]; then
  echo "test_bookbench: $bench not built, skipped"
  exit 77
fi
have_bookd=0; [ -x "$bookd" ] && have_bookd=1
have_pg=0; [ -n "${DATABASE_URL:-}" ] && command -v psql >/dev/null 2>&1 && have_pg=1
if [ $have_bookd = 0 ] && [ $have_pg = 0 ]; then
  echo "test_bookbench: no $bookd and no DATABASE_URL, skipped"
  exit 77
fi

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_bookbench.XXXXXX")
testdb="bookd_bench_test_$$"
cleanup() {
  if [ $have_pg = 1 ]; then
    psql "$DATABASE_URL" -X -q -c "DROP DATABASE IF EXISTS $testdb" >/dev/null 2>&1
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# run <name> <expected runs> <bookbench args...>: runs it, then checks the
# exit status, the reports, and that each run's check passed.
run() {
  local name=$1 want=$2; shift 2
  local out="$tmp/$name"
  timeout 300 "$bench" "$@" --out "$out" --quiet >"$tmp/$name.log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ]; then
    bad "$name: bookbench exited $rc"; tail -n 30 "$tmp/$name.log"; return
  fi
  ok "$name: bookbench exited 0"
  if [ -s "$out/result.json" ] && [ -s "$out/report.html" ]; then
    ok "$name: result.json and report.html written"
  else
    bad "$name: reports missing in $out"; return
  fi
  local runs checks
  runs=$(jq '.runs | length' "$out/result.json")
  checks=$(jq '[.runs[] | select(.check.ok == true)] | length' "$out/result.json")
  if [ "$runs" = "$want" ] && [ "$checks" = "$want" ]; then
    ok "$name: $runs runs, each check passed"
  else
    bad "$name: $runs runs (want $want), $checks checks passed"; tail -n 40 "$tmp/$name.log"
  fi
  if grep -q '<svg' "$out/report.html" && ! grep -q '<script' "$out/report.html" &&
     ! grep -q 'src=.http' "$out/report.html"; then
    ok "$name: the HTML report has inline plots and no scripts"
  else
    bad "$name: the HTML report"
  fi
  charts "$name" "$out/report.html"
}

# charts <name> <report.html>: every chart has tick marks on both axes (at
# least 3 each) and something drawn (a point or a bar).
# refused <name> <message> <never> <what> <bookbench args...>: runs it,
# expecting exit 1 before any run, message in its log and never not.
refused() {
  local name=$1 msg=$2 never=$3 what=$4; shift 4
  timeout 60 "$bench" "$@" --out "$tmp/$name" --quiet >"$tmp/$name.log" 2>&1
  local rc=$?
  if [ $rc -eq 1 ] && grep -q "$msg" "$tmp/$name.log" &&
     ! grep -q "$never" "$tmp/$name.log"; then
    ok "$name: $what"
  else
    bad "$name: bookbench exited $rc"; tail -n 20 "$tmp/$name.log"
  fi
}

# threads <name> <n>: every run of <name> records n threads.
threads() {
  if jq -e --argjson n "$2" '[.runs[].threads] | length > 0 and all(. == $n)' \
       "$tmp/$1/result.json" >/dev/null 2>&1; then
    ok "$1: result.json records $2 thread(s) per run"
  else
    bad "$1: result.json does not record $2 thread(s)"
  fi
}

# socket <name> <tcp|unix>: result.json says the started bookd's binary
# protocol went over that kind of socket.
socket() {
  if jq -e --arg k "$2" '.bookd.binary_socket == $k' "$tmp/$1/result.json" >/dev/null 2>&1; then
    ok "$1: the binary protocol over $2"
  else
    bad "$1: result.json's binary_socket is not $2"
  fi
}

charts() {
  local verdict
  verdict=$(awk '
    /<svg/ { n++; inside = 1; tx = ty = marks = 0 }
    inside { tx += gsub(/class=.tick-x./, "&"); ty += gsub(/class=.tick-y./, "&") }
    inside { marks += gsub(/<circle|class=.bar./, "&") }
    /<\/svg>/ { inside = 0; if (tx < 3 || ty < 3 || marks < 1) { print "chart " n ": " tx " x ticks, " ty " y ticks, " marks " marks"; bad = 1 } }
    END { if (n == 0) print "no chart"; else if (!bad) print "ok " n }' "$2")
  case "$verdict" in
    ok*) ok "$1: ${verdict#ok } charts, each with axis ticks and data" ;;
    *) bad "$1: $verdict" ;;
  esac
}

small=(--events 40 --orgs 4 --customers 2000 --capacity 10 --waitlist 10)
all=opening,steady,cancel-storm,read-heavy
if [ $have_bookd = 1 ]; then
  run http 4 run --driver bookd-http --bookd "$bookd" --scenario "$all" \
    --connections 2 --inflight 4 --duration 2 --sources 2 "${small[@]}"
  run http-loop 4 run --driver bookd-http --bookd "$bookd" --scenario "$all" \
    --connections 3 --threads 1 --inflight 4 --duration 2 --sources 2 "${small[@]}"
  threads "http-loop" 1
  if ! "$bench" --help | grep -q '^drivers built:.*bookd-binary'; then
    echo "skip binary: bookbench was built without the client library"
  else
    run binary 4 run --driver bookd-binary --bookd "$bookd" --scenario "$all" \
      --connections 2 --inflight 16 --duration 2 "${small[@]}"
    run binary-loop 4 run --driver bookd-binary --bookd "$bookd" --scenario "$all" \
      --connections 5 --threads 2 --inflight 4 --duration 2 --bookd-socket unix "${small[@]}"
    threads "binary-loop" 2
    socket binary tcp
    socket binary-loop unix
    run batch 2 run --driver bookd-binary --bookd "$bookd" --scenario opening,steady \
      --connections 2 --inflight 64 --batch 16 --duration 2 "${small[@]}"
  fi
  # bookbench says it turned the started bookd's limits off, and records its
  # version and build type
  if grep -q 'rate limits off' "$tmp/http.log"; then ok "http: bookbench says the limits are off"
  else bad "http: no word about bookd's rate limits"; fi
  want=$("$bookd" --version 2>/dev/null)
  got=$(jq -r '.bookd | "bookd \(.version) (\(.build_type))"' "$tmp/http/result.json" 2>/dev/null)
  if [ -n "$want" ] && [ "$got" = "$want" ] &&
     jq -e '.bookd.rate_limits == "off"' "$tmp/http/result.json" >/dev/null 2>&1; then
    ok "http: result.json records '$got', rate limits off"
  else
    bad "http: result.json records '$got' (bookd --version: '$want')"
  fi
  # with bookd's limits kept and a service-key limit far below the offered
  # load, most answers are 429: the run must fail and say why, and its
  # report say so too
  BOOKD_SERVICE_RATE=200 BOOKD_ADDRESS_RATE=200 \
  timeout 120 "$bench" run --driver bookd-http --bookd "$bookd" --bookd-limits \
    --scenario steady --connections 2 --inflight 8 --duration 2 "${small[@]}" \
    --out "$tmp/limited" --quiet >"$tmp/limited.log" 2>&1
  rc=$?
  if [ $rc -eq 4 ] && grep -q 'FAILED: .*% of the answers were errors' "$tmp/limited.log" &&
     jq -e '.runs[0].failed | test("errors")' "$tmp/limited/result.json" >/dev/null 2>&1 &&
     jq -e '.runs[0].error_pct > 1' "$tmp/limited/result.json" >/dev/null 2>&1 &&
     grep -q 'FAILED' "$tmp/limited/report.html"; then
    ok "limited: errors over 1% fail the run (exit 4) and say why"
  else
    bad "limited: bookbench exited $rc"; tail -n 20 "$tmp/limited.log"
  fi
  # a flag refused (an unknown scenario) before any bookd is started, so
  # none is left running
  refused refused "unknown scenario 'nosuch'" 'bookbench: started' \
    "an unknown scenario exits 1 before a bookd is started" \
    run --driver bookd-http --bookd "$bookd" --scenario opening,nosuch
  # a run shorter than a second still draws no empty chart
  run short 1 run --driver bookd-http --bookd "$bookd" --scenario opening \
    --connections 2 --inflight 4 --requests 200 "${small[@]}"
  run open-loop 1 run --driver bookd-http --bookd "$bookd" --scenario steady \
    --connections 2 --inflight 8 --rate 300 --duration 2 "${small[@]}"
  # the latency of an open-loop run is measured from the intended send time:
  # about rate x duration requests, whatever the server's speed
  n=$(grep -o '"requests":[0-9]*' "$tmp/open-loop/result.json" | head -1 | cut -d: -f2)
  if [ -n "$n" ] && [ "$n" -ge 450 ] && [ "$n" -le 700 ]; then
    ok "open-loop: $n requests at 300/s for 2 s"
  else
    bad "open-loop: ${n:-no} requests at 300/s for 2 s"
  fi
  # the same with the connections on one thread's event loop
  run open-loop-1 1 run --driver bookd-http --bookd "$bookd" --scenario steady \
    --connections 3 --threads 1 --inflight 8 --rate 300 --duration 2 "${small[@]}"
  n=$(grep -o '"requests":[0-9]*' "$tmp/open-loop-1/result.json" | head -1 | cut -d: -f2)
  if [ -n "$n" ] && [ "$n" -ge 450 ] && [ "$n" -le 700 ]; then
    ok "open-loop-1: $n requests at 300/s for 2 s on one thread"
  else
    bad "open-loop-1: ${n:-no} requests at 300/s for 2 s on one thread"
  fi
  if [ $have_pg = 1 ]; then
    # bookd replicating into a fresh database: PostgreSQL catches up and matches
    run replicated 2 run --driver bookd-http --bookd "$bookd" --bookd-replicate \
      --scenario steady,cancel-storm --connections 2 --inflight 4 --duration 2 \
      --sources 2 --check-wait 60 "${small[@]}"
    if grep -q '"report":"[^"]*replication: [0-9]* acknowledged bookings' \
         "$tmp/replicated/result.json"; then
      ok "replicated: the check compared PostgreSQL"
    else
      bad "replicated: no replication check in the report"
    fi
  fi
else
  echo "skip bookd: $bookd not built"
fi

if [ $have_pg = 1 ]; then
  case "$DATABASE_URL" in
    postgres://* | postgresql://*)
      url=$(printf '%s' "$DATABASE_URL" | sed -E "s#^(postgres(ql)?://[^/?]*)(/[^?]*)?#\1/$testdb#") ;;
    *) url="$DATABASE_URL dbname=$testdb" ;;
  esac
  if psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $testdb" >/dev/null; then
    run baseline 4 baseline --database-url "$url" --scenario "$all" \
      --connections 2 --duration 1 "${small[@]}"
    run baseline-loop 4 baseline --database-url "$url" --scenario "$all" \
      --connections 3 --threads 1 --duration 1 "${small[@]}"
    threads "baseline-loop" 1
    # side by side, bookd's binary protocol goes over the kind of socket the
    # baseline's libpq uses
    if [ $have_bookd = 1 ] && "$bench" --help | grep -q '^drivers built:.*bookd-binary'; then
      run compare 2 compare --bookd "$bookd" --database-url "$url" --scenario steady \
        --connections 2 --duration 1 "${small[@]}"
      case "$url" in *host=/* | *://*@/* | *:///*) want=unix ;; *) want=tcp ;; esac
      socket compare $want
    fi
    if psql "$url" -X -q -A -t -c "SELECT count(*) FROM baseline.class_events" 2>/dev/null |
         grep -qx 40; then
      ok "baseline: schema baseline with the run's 40 events"
    else
      bad "baseline: schema baseline missing"
    fi
  else
    bad "baseline: cannot create database $testdb"
  fi
else
  echo "skip baseline: DATABASE_URL is not set"
fi

# a run that cannot be made (its data set cannot be set up) exits 1, says
# why, and leaves nothing behind (under ASan: no leak reported)
refused unmade 'baseline-pg setup failed: connect' 'Sanitizer' \
  "a run that cannot be set up exits 1 and says why" \
  baseline --database-url "postgresql://postgres@/nodb?host=$tmp/no-server" \
  --scenario opening,steady --duration 1

echo "bookbench: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
