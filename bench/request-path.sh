#!/usr/bin/env bash
# request-path.sh [BUILD_DIR]: every "Done when" line of issue 17 (the
# network path) measured in one run, each as a ratio to its baseline of the
# same run or with the figure it is judged by, printed as one table at the
# end (docs/benchmarks.md, "Request path (issue 17)", says what each line
# means). Run it from anywhere; BUILD_DIR (default build) holds bench_node,
# bookbench and bookd of a Release build.
#
#  1. bench_node (core + log, no network) against bookbench binary steady,
#     closed loop 2 x 256: two interleaved rounds, the ratio of the means.
#  2. bookbench compare at 16 connections x 1 on opening, steady,
#     cancel-storm, read-heavy against the PostgreSQL design (a durable
#     throwaway cluster from scripts/pg.sh), and read-heavy's event_get p50.
#     Both sides over a unix socket (libpq's to the cluster, and so bookd's
#     binary protocol: bookbench's --bookd-socket default in a compare).
#     Skipped, with a line saying so, when PostgreSQL is not installed.
#  3. wrk, HTTP/1.1 keep-alive, not pipelined, 64 connections: bookings
#     (bench/wrk-book.lua) against GET /health of the same bookd, two
#     interleaved rounds.
#  4. Open loop 500/s, binary, 8 x 16: bookbench's p99 and the log's
#     fdatasync p99 of that run (bookd's bookd_wal_fsync_seconds histogram,
#     read when the measured run starts and when it ends).
#  5. Syscalls per answered request during a binary steady 2 x 256 run:
#     bookd's (and bookbench's) over RP_SYSCALL_S seconds (perf stat, else
#     strace -c -f), over bookd_requests_total's growth meanwhile.
#
# Environment: RP_DURATION seconds per measured run (default 10),
# BOOKD_LOG_SYNCS (bookd's --log-syncs, also given to bench_node),
# RP_SYSCALL_S (default 5), RP_THREADS (bookbench's --threads; default its
# own: the online CPUs, at most --connections; the table's notes say how
# many drove line 2), RP_SKIP="2 3" skips those parts. Everything
# listens on 127.0.0.1 only (free ports), runs under a time limit, and is
# stopped and removed at the end (also on Ctrl-C). Each bookbench run also
# runs its check; a failed check or error budget is printed on its line.
set -u
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
dir=${1:-build}
DUR=${RP_DURATION:-10}
SYS_S=${RP_SYSCALL_S:-5}
SKIP=" ${RP_SKIP:-} "
thr=() # bookbench's --threads, when RP_THREADS sets it
[ -n "${RP_THREADS:-}" ] && thr=(--threads "$RP_THREADS")
LIMIT=$((DUR + 600)) # a run's setup, run and check, at most

# A binary of the build, not CMake's own nor a copy cpack staged
# (_CPack_Packages: left by `cpack` and by test_install, possibly older).
bin() { find "$dir" -type f -name "$1" -perm -u+x 2>/dev/null | grep -v -e CMakeFiles -e _CPack_Packages | head -n 1; }
bn=$(bin bench_node); bb=$(bin bookbench); bd=$(bin bookd)
[ -n "$bn" ] && [ -n "$bb" ] && [ -n "$bd" ] ||
  { echo "request-path.sh: build bench_node, bookbench and bookd first (in $dir)" >&2; exit 1; }

work=$(mktemp -d /tmp/request-path.XXXXXX)
KEY=rp-$$-$RANDOM
started=() # pids to stop
PG_DIR=
# Every command runs under timeout -s INT -k 30: SIGINT ends bookbench's run
# (it then stops a bookd it started) and bookd; KILL 30 s later if not.
cleanup() {
  for p in "${started[@]}"; do kill -INT "$p" 2>/dev/null; done
  for p in "${started[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "$PG_DIR" ] && scripts/pg.sh stop "$PG_DIR" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rows=() # the table, one line per measure
row() { rows+=("$(printf '| %s | %s | %s | %s | %s |' "$@")"); }
say() { echo "request-path: $*" >&2; }

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# bookd_start NAME: a bookd of our own (rate limits off) in $work/NAME;
# sets BD_PID, BD_HTTP, BD_BIN.
bookd_start() {
  local d=$work/$1
  mkdir -p "$d/data"
  BD_HTTP=127.0.0.1:$(free_port); BD_BIN=127.0.0.1:$(free_port)
  # Line 3 makes a customer a booking, all on the shard of its events:
  # two rounds pass the default ceiling of 2^20 customers a shard.
  BOOKD_LISTEN=$BD_HTTP BOOKD_BINARY_LISTEN=$BD_BIN BOOKD_DATA_DIR=$d/data BOOKD_SERVICE_KEY=$KEY \
    BOOKD_ADDRESS_RATE=0 BOOKD_CUSTOMER_RATE=0 BOOKD_ANON_RATE=0 BOOKD_SERVICE_RATE=0 \
    BOOKD_MAX_CUSTOMERS=$((1 << 23)) BOOKD_MAX_BOOKINGS=$((1 << 23)) \
    env -u DATABASE_URL timeout -s INT -k 30 $((LIMIT * 3)) "$bd" >"$d/bookd.out" 2>"$d/bookd.log" &
  BD_PID=$! # timeout's: it passes a signal on to bookd
  started+=("$BD_PID")
  for _ in $(seq 150); do
    curl -sf "http://$BD_HTTP/health" >/dev/null && return 0
    kill -0 "$BD_PID" 2>/dev/null || break
    sleep 0.1
  done
  say "bookd did not start (see its log below)"; tail -n 5 "$d/bookd.log" >&2
  return 1
}

bookd_stop() { kill -INT "$BD_PID" 2>/dev/null; wait "$BD_PID" 2>/dev/null; }

metrics() { curl -s --max-time 5 "http://$BD_HTTP/metrics"; }
requests_total() { metrics | awk '$1 == "bookd_requests_total" { print $2 }'; }

# bb_bg NAME ARGS...: bookbench in the background against our bookd, its
# output in $work/NAME.{out,err}, its results in $work/NAME/; waits until
# its data set is made (the measured run starts). Sets BB_PID.
bb_bg() {
  local name=$1; shift
  timeout -s INT -k 30 "$LIMIT" "$bb" run --binary "$BD_BIN" --http "$BD_HTTP" --key "$KEY" --out "$work/$name" --quiet \
    "${thr[@]}" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  BB_PID=$! # timeout's, as BD_PID
  started+=("$BB_PID")
  for _ in $(seq $((LIMIT * 10))); do
    grep -qs "data set ready" "$work/$name.err" && return 0
    kill -0 "$BB_PID" 2>/dev/null || break
    sleep 0.1
  done
  say "bookbench $name did not start its run:"; tail -n 5 "$work/$name.err" >&2
  return 1
}

# bb_status NAME EXIT: "check OK", or what went wrong (bookbench's exit
# status: 3 a check found a problem, 4 over the error budget).
bb_status() {
  case $2 in
    0) echo "check OK" ;;
    3) echo "CHECK FAILED" ;;
    4) echo "ERRORS OVER BUDGET" ;;
    124) echo "TIMED OUT" ;;
    *) echo "bookbench exit $2: $(grep -m1 -iE 'fail|error|lost' "$work/$1.err")" ;;
  esac
}

# json FILE EXPR: a value of bookbench's result.json (python expression
# over r, the parsed file), "?" when it is not there.
json() { python3 -c "import json, sys; r = json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null || echo "?"; }

ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.2f}' if b > 0 else '?')" "$1" "$2" 2>/dev/null || echo "?"; }
meets() { python3 -c "import sys; print('yes' if eval(sys.argv[1]) else 'NO')" "$1" 2>/dev/null || echo "?"; }

say "$(date -u +%FT%TZ), $bd ($("$bd" --version 2>/dev/null)), $DUR s per run, log syncs in flight ${BOOKD_LOG_SYNCS:-1}, work dir $work"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- 1. bench_node against bookbench binary steady 2 x 256 -------------------
if [[ $SKIP != *" 1 "* ]]; then
  node=0; net=0; ok=yes; notes=
  for round in 1 2; do
    n=$(timeout -s INT -k 30 "$LIMIT" "$bn" --dir "$work/node$round" --series 2000 --bookings 1000000 \
        --log-syncs "${BOOKD_LOG_SYNCS:-1}" 2>&1 |
        sed -n 's/^bookings: .*: \([0-9]*\)\/s;.*/\1/p')
    rm -rf "$work/node$round"
    bookd_start steady$round || { ok=no; break; }
    bb_bg steady$round --driver bookd-binary --scenario steady --connections 2 --inflight 256 --duration "$DUR" ||
      { ok=no; bookd_stop; break; }
    wait "$BB_PID"; rc=$?
    bookd_stop
    r=$(json "$work/steady$round/result.json" 'round(r["runs"][0]["goodput"])')
    say "1. round $round: bench_node ${n:-?}/s, bookbench binary steady 2 x 256 $r/s ($(bb_status steady$round $rc))"
    [ "$rc" = 0 ] || notes="$notes round $round: $(bb_status steady$round $rc);"
    [ -n "$n" ] && [ "$r" != "?" ] || { ok=no; break; }
    node=$((node + n)); net=$((net + r))
  done
  if [ "$ok" = yes ]; then
    q=$(ratio "$net" "$node")
    row "1. binary steady 2 x 256 (closed loop) / bench_node durable" \
        "$((net / 2))/s / $((node / 2))/s (means of 2 interleaved rounds)" "**$q**" ">= 0.80: $(meets "$q >= 0.8")" \
        "${notes:-checks OK}"
  else
    row "1. binary steady 2 x 256 / bench_node" "not measured (see the lines above)" "?" ">= 0.80" ""
  fi
fi

# ---- 2. bookbench compare at 16 x 1 against the PostgreSQL design ------------
if [[ $SKIP != *" 2 "* ]]; then
  pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
  if [ ! -x "$pg_bin/postgres" ] && ! command -v postgres >/dev/null; then
    row "2. compare 16 x 1 (opening, steady, cancel-storm, read-heavy)" "SKIPPED: no PostgreSQL ($pg_bin)" "" "" ""
  elif ! pg_env=$(BOOKD_PG_DURABLE=1 timeout 120 scripts/pg.sh start 2>"$work/pg.err"); then
    row "2. compare 16 x 1" "SKIPPED: scripts/pg.sh start failed: $(tail -n 1 "$work/pg.err")" "" "" ""
  else
    eval "$pg_env"; PG_DIR=$BOOKD_PG_DIR
    timeout -s INT -k 30 $((LIMIT * 4)) "$bb" compare --bookd "$bd" --database-url "$DATABASE_URL" \
      --scenario opening,steady,cancel-storm,read-heavy --connections 16 --inflight 1 --duration "$DUR" \
      "${thr[@]}" --out "$work/compare" --quiet >"$work/compare.out" 2>"$work/compare.err"
    rc=$?
    scripts/pg.sh stop "$PG_DIR" >/dev/null 2>&1; PG_DIR=
    f=$work/compare/result.json
    x() { json "$f" "[c['goodput_ratio'] for c in r['comparisons'] if c['scenario'] == '$1'][0]"; }
    o=$(x opening); s=$(x steady); c=$(x cancel-storm); h=$(x read-heavy)
    rates=$(json "$f" "' / '.join(f\"{s}: {round(a)} vs {round(b)}\" for s, a, b in [(s, [u['goodput'] for u in r['runs'] if u['scenario'] == s and u['driver'] != 'baseline-pg'][0], [u['goodput'] for u in r['runs'] if u['scenario'] == s and u['driver'] == 'baseline-pg'][0]) for s in ['opening', 'steady', 'cancel-storm', 'read-heavy']])")
    g=$(json "$f" "[round(u['by_operation']['event_get']['p50'], 3) for u in r['runs'] if u['scenario'] == 'read-heavy' and u['driver'] != 'baseline-pg'][0]")
    t=$(json "$f" "r['runs'][0].get('threads', '?')")
    sock=$(json "$f" "r['bookd'].get('binary_socket') or '?'")
    say "2. compare: req/s bookd vs PostgreSQL (durable): $rates; $(bb_status compare $rc)"
    row "2. compare 16 x 1: bookd / PostgreSQL (durable)" "opening ${o}x, steady ${s}x, cancel-storm ${c}x; read-heavy ${h}x ($rates req/s)" \
        "**${o}x / ${s}x / ${c}x / ${h}x**" ">= 10x (3 writes), >= 4x (read-heavy): $(meets "min($o, $s, $c) >= 10 and $h >= 4")" \
        "$(bb_status compare $rc); bookbench threads $t; binary over $sock"
    row "2. read-heavy event_get p50 (binary, 16 x 1)" "$g ms" "" "<= 0.100 ms: $(meets "$g <= 0.1")" "bookbench threads $t; binary over $sock"
  fi
fi

# ---- 3. HTTP: wrk bookings against GET /health of the same bookd -------------
if [[ $SKIP != *" 3 "* ]]; then
  if ! command -v wrk >/dev/null; then
    row "3. HTTP wrk 64 connections" "SKIPPED: no wrk" "" "" ""
  elif bookd_start http; then
    api() { curl -s --max-time 10 -X "$1" "http://$BD_HTTP$2" -H "Authorization: Bearer $KEY" \
              -H 'Content-Type: application/json' -H "Idempotency-Key: rp-$RANDOM-$RANDOM" ${3:+-d "$3"}; }
    org=$(api POST /v1/orgs '{"name":"rp","timezone":"UTC"}' | jq -r .org.id)
    loc=$(api POST /v1/locations "{\"org_id\":\"$org\",\"name\":\"hall\"}" | jq -r .location.id)
    ins=$(api POST /v1/instructors "{\"org_id\":\"$org\",\"name\":\"coach\"}" | jq -r .instructor.id)
    first=$(date -u -d tomorrow +%F); last=$(date -u -d '+16 days' +%F)
    api POST /v1/series "{\"org_id\":\"$org\",\"location_id\":\"$loc\",\"instructor_id\":\"$ins\",
      \"title\":\"rp\",\"capacity\":1000000,\"waitlist_capacity\":0,\"timezone\":\"UTC\",
      \"weekdays\":[\"MO\",\"TU\",\"WE\",\"TH\",\"FR\",\"SA\",\"SU\"],\"start_time\":\"10:00\",
      \"duration_min\":60,\"first_date\":\"$first\",\"last_date\":\"$last\"}" >/dev/null
    ids=$(curl -s "http://$BD_HTTP/v1/events?org_id=$org&limit=500&from=$(date -u +%F)" -H "Authorization: Bearer $KEY" |
          jq -r '[.events[].id] | join(",")')
    if [ -z "$ids" ]; then
      row "3. HTTP wrk 64 connections" "not measured: no events made ($work/http/bookd.log)" "" "" ""
    else
      hs=0; bs=0; bad=0; sent=0
      b0=$(metrics | awk '$1 == "bookd_operations_total{op=\"book\"}" { print $2 }')
      for round in 1 2; do
        timeout -s INT -k 30 $((DUR + 30)) wrk -t2 -c64 -d"${DUR}s" "http://$BD_HTTP/health" >"$work/health$round.txt" 2>&1
        timeout -s INT -k 30 $((DUR + 30)) wrk -t2 -c64 -d"${DUR}s" -s "$root/bench/wrk-book.lua" "http://$BD_HTTP" \
          -- "$ids" "$KEY" "rp$$r$round" >"$work/book$round.txt" 2>&1
        h=$(awk '/^Requests\/sec:/ { printf "%d", $2 }' "$work/health$round.txt")
        b=$(awk '/^Requests\/sec:/ { printf "%d", $2 }' "$work/book$round.txt")
        e=$(cat "$work/health$round.txt" "$work/book$round.txt" | awk '/Non-2xx/ { n += $NF } /Socket errors/ { n += 1 } END { print n + 0 }')
        say "3. round $round: wrk GET /health ${h:-?}/s, bookings ${b:-?}/s; non-2xx or socket errors: $e"
        hs=$((hs + ${h:-0})); bs=$((bs + ${b:-0})); bad=$((bad + e))
        sent=$((sent + $(awk '/requests in/ { print $1 }' "$work/book$round.txt")))
      done
      b1=$(metrics | awk '$1 == "bookd_operations_total{op=\"book\"}" { print $2 }')
      q=$(ratio "$bs" "$hs")
      row "3. HTTP wrk 64 conns (not pipelined): bookings / GET /health" \
          "$((bs / 2))/s / $((hs / 2))/s (means of 2 interleaved rounds)" "**$q**" ">= 0.70: $(meets "$q >= 0.7")" \
          "$([ "$bad" = 0 ] && echo "every answer 2xx" || echo "$bad non-2xx or socket errors: NOT A RESULT"); bookd counted $((b1 - b0)) bookings for wrk's $sent"
    fi
    bookd_stop
  fi
fi

# ---- 4. open loop 500/s, binary, 8 x 16: p99 and the log's fsync p99 --------
# q_of BEFORE AFTER Q: the q-quantile (ms) of the syncs between two scrapes
# of bookd_wal_fsync_seconds_bucket, interpolated inside its bucket.
q_of() {
  python3 - "$1" "$2" "$3" <<'EOF'
import re, sys
def buckets(path):
    b = {}
    for line in open(path):
        m = re.match(r'bookd_wal_fsync_seconds_bucket\{le="([^"]+)"\} (\d+)', line)
        if m:
            b[float("inf") if m.group(1) == "+Inf" else float(m.group(1))] = int(m.group(2))
    return b
a, z, q = buckets(sys.argv[1]), buckets(sys.argv[2]), float(sys.argv[3])
les = sorted(z)
cum = [z[le] - a.get(le, 0) for le in les]
if not cum or cum[-1] == 0:
    print("?"); sys.exit()
rank, lo, below = q * cum[-1], 0.0, 0
for le, c in zip(les, cum):
    if c >= rank:
        if le == float("inf"):
            print(f"{lo * 1e3:.3f}"); break
        print(f"{(lo + (le - lo) * (rank - below) / (c - below)) * 1e3:.3f}"); break
    lo, below = le, c
EOF
}
if [[ $SKIP != *" 4 "* ]] && bookd_start open; then
  if bb_bg open --driver bookd-binary --scenario steady --connections 8 --inflight 16 --rate 500 --duration "$DUR"; then
    metrics >"$work/open.before"
    # the measured run ends where the check begins (the check only reads)
    while kill -0 "$BB_PID" 2>/dev/null && ! grep -qs "checking" "$work/open.err"; do sleep 0.1; done
    metrics >"$work/open.after"
    wait "$BB_PID"; rc=$?
    p99=$(json "$work/open/result.json" 'round(r["runs"][0]["latency"]["p99"], 3)')
    n=$(json "$work/open/result.json" 'r["runs"][0]["requests"]')
    unsent=$(json "$work/open/result.json" 'r["runs"][0]["unsent"]')
    fp99=$(q_of "$work/open.before" "$work/open.after" 0.99)
    fp50=$(q_of "$work/open.before" "$work/open.after" 0.50)
    syncs=$(python3 -c "import sys; f = lambda p: [int(l.split()[1]) for l in open(p) if l.startswith('bookd_wal_fsync_seconds_count')][0]; print(f(sys.argv[2]) - f(sys.argv[1]))" "$work/open.before" "$work/open.after" 2>/dev/null || echo "?")
    row "4. open loop 500/s binary 8 x 16: p99 (fdatasync p99 of the run)" \
        "p99 $p99 ms over $n requests ($unsent unsent); fdatasync p50 $fp50 ms, p99 $fp99 ms over $syncs syncs" "" \
        "p99 <= 1 ms when fdatasync p99 <= 0.5 ms: $(meets "$p99 <= 1.0" | sed "s/^/$(python3 -c "print('' if $fp99 <= 0.5 else 'not judged (fdatasync p99 over 0.5 ms), met: ')" 2>/dev/null)/")" \
        "$(bb_status open $rc)"
  fi
  bookd_stop
fi

# ---- 5. syscalls per answered request, binary steady 2 x 256 ----------------
child() { pgrep -P "$1" | head -n 1; } # the process timeout runs
if [[ $SKIP != *" 5 "* ]] && bookd_start sys; then
  if bb_bg sys --driver bookd-binary --scenario steady --connections 2 --inflight 256 --duration "$DUR"; then
    sleep 2
    bdp=$(child "$BD_PID"); bbp=$(child "$BB_PID")
    r0=$(requests_total)
    if perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
      how="perf stat -e raw_syscalls:sys_enter -p PID, $SYS_S s"
      perf stat -x, -e raw_syscalls:sys_enter -p "$bbp" -o "$work/sys.bb" -- sleep "$SYS_S" &
      perf stat -x, -e raw_syscalls:sys_enter -p "$bdp" -o "$work/sys.bd" -- sleep "$SYS_S"
      wait $!
      count() { awk -F, '/raw_syscalls:sys_enter/ { print $1 }' "$1"; }
    else # strace stops the process at each syscall: slower, the ratio holds
      how="strace -c -f -p PID, $SYS_S s (perf not usable)"
      timeout -s INT "$SYS_S" strace -c -f -p "$bbp" -o "$work/sys.bb" 2>/dev/null &
      timeout -s INT "$SYS_S" strace -c -f -p "$bdp" -o "$work/sys.bd" 2>/dev/null
      wait $!
      count() { awk '$NF == "total" { print $3 }' "$1"; }
    fi
    r1=$(requests_total)
    wait "$BB_PID"; rc=$?
    req=$((r1 - r0))
    sbd=$(count "$work/sys.bd"); sbb=$(count "$work/sys.bb")
    q=$(python3 -c "print(f'{${sbd:-0} / $req:.3f}')" 2>/dev/null || echo "?")
    qb=$(python3 -c "print(f'{${sbb:-0} / $req:.3f}')" 2>/dev/null || echo "?")
    row "5. syscalls per answered request, binary steady 2 x 256" \
        "bookd ${sbd:-?} syscalls / $req requests ($how); bookbench $qb per request" "**$q**" "< 0.2: $(meets "$q < 0.2")" \
        "$(bb_status sys $rc)"
  fi
  bookd_stop
fi

echo
echo "request path (issue 17): $(date -u +%FT%TZ), $("$bd" --version 2>/dev/null), $DUR s per run, log syncs in flight ${BOOKD_LOG_SYNCS:-1};" \
     "load average now $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores;" \
     "bookbench threads ${RP_THREADS:-its default (the online CPUs, at most --connections)}"
echo "| measure | figures (same run) | ratio | target | notes |"
echo "|---|---|---|---|---|"
for r in "${rows[@]}"; do echo "$r"; done
