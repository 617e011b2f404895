#!/usr/bin/env bash
# soak.sh [BUILD_DIR]: bookd under a steady load for a long time, its
# resident memory, open fds, p99, replication lag and notification backlog
# sampled every 10 s and judged flat (docs/reliability.md, Soak).
#
# What runs, all on 127.0.0.1 and stopped at the end: a throwaway
# PostgreSQL (scripts/pg.sh) that bookd replicates into; the webhook sink
# (tests/integration/notify_sink.py) that bookd's notification sender
# delivers to; bookd (BUILD_DIR/api/bookd, default build/) with its rate
# limits off; two bookbench runs at once (scenario steady: 75 % bookings,
# 25 % cancels, 1 % replays; open loop, latency from the intended send
# time), one over HTTP and one over the binary protocol, each at half of
# SOAK_RATE for SOAK_SECONDS; bench/soak_watch.py sampling bookd. After the
# load: the sampler stops, replication and the notification backlog must
# drain to 0 (within 120 s), bookd is stopped with SIGTERM and must exit 0,
# and bookd's log must hold no sanitizer report. Then the table and the
# verdicts (soak_watch.py judge: its header says the rules), PASS or FAIL.
#
# Environment:
#   SOAK_SECONDS   load duration (3600)
#   SOAK_RATE      requests/s offered in total (300)
#   SOAK_WARMUP    seconds before the first judged window (300; a run
#                  under 900 s judges nothing: SOAK_RULES=0)
#   SOAK_INTERVAL  seconds between samples (10)
#   SOAK_EVENTS    events of each bookbench data set (500, capacity 20,
#                  waitlist 10: at the default rate full within the
#                  warm-up, then bookings are mostly refused and cancels
#                  free seats and promote from the waitlists)
#   SOAK_RULES     1: apply the flat rules; 0: only the table (short runs)
#   SOAK_KEEP      1: keep the work directory (logs, samples, reports)
#   SOAK_OUT       a file to copy the samples to
#   SOAK_DATABASE_URL  replicate into a fresh database of this cluster
#                  (created and dropped here) instead of starting one
# An ASan build's bookd runs with detect_leaks=1 added to ASAN_OPTIONS
# (LeakSanitizer reports at exit; UBSan aborts at the first report, the
# build has -fno-sanitize-recover): tests/integration/test_soak_lsan.sh is
# the short run CI makes of it.
# Exit: 0 PASS, 1 FAIL, 2 could not run.
set -u
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)
dir=${1:-build}
SECONDS_=${SOAK_SECONDS:-3600}
RATE=${SOAK_RATE:-300}
WARMUP=${SOAK_WARMUP:-300}
INTERVAL=${SOAK_INTERVAL:-10}
EVENTS=${SOAK_EVENTS:-500}
RULES=${SOAK_RULES:-}
if [ -z "$RULES" ]; then
  if [ "$SECONDS_" -ge 900 ]; then RULES=1; else RULES=0; fi
fi
bd=$dir/api/bookd bb=$dir/bench/bookbench
[ -x "$bd" ] && [ -x "$bb" ] ||
  { echo "soak.sh: build bookd and bookbench first (in $dir)" >&2; exit 2; }
for t in curl jq python3; do
  command -v $t >/dev/null || { echo "soak.sh: needs $t" >&2; exit 2; }
done

work=$(mktemp -d /tmp/bookd-soak.XXXXXX)
secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
key=soak-$$-$RANDOM
pids=() pg_dir= bpid= soak_db= admin_url=
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "$pg_dir" ] && "$root/scripts/pg.sh" stop "$pg_dir" >/dev/null 2>&1
  [ -n "$soak_db" ] && psql "$admin_url" -X -q \
    -c "DROP DATABASE IF EXISTS $soak_db WITH (FORCE)" >/dev/null 2>&1
  if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "soak.sh: kept $work"
  else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { echo "soak.sh: [$(date -u +%T)] $*"; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# PostgreSQL to replicate into.
if [ -n "${SOAK_DATABASE_URL:-}" ]; then
  # A fresh database in that cluster (CI's, already running), dropped at
  # the end: initdb takes long on a busy machine.
  admin_url=$SOAK_DATABASE_URL soak_db=bookd_soak_$$
  case "$admin_url" in
    postgres://* | postgresql://*)
      DATABASE_URL=$(printf '%s' "$admin_url" | sed -E "s#^(postgres(ql)?://[^/?]*)(/[^?]*)?#\1/$soak_db#") ;;
    *) DATABASE_URL="$admin_url dbname=$soak_db" ;;
  esac
  export DATABASE_URL
  psql "$admin_url" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $soak_db" \
    >/dev/null || { soak_db=; echo "soak.sh: cannot create a database" >&2; exit 2; }
else
  # A cluster of our own (pg.sh prints only export lines).
  say "starting PostgreSQL"
  pg_env=$("$root/scripts/pg.sh" start 2>"$work/pg.log") ||
    { cat "$work/pg.log" >&2; echo "soak.sh: PostgreSQL did not start" >&2; exit 2; }
  eval "$pg_env"
  pg_dir=$BOOKD_PG_DIR
fi

hook=$(free_port) http=$(free_port) bin=$(free_port)
python3 "$root/tests/integration/notify_sink.py" --out "$work/sink" \
  --secret "$secret" --http-port "$hook" >"$work/sink.log" 2>&1 &
pids+=($!)

if grep -q 'SANITIZE:BOOL=ON' "$dir/CMakeCache.txt" 2>/dev/null; then
  export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1
  say "ASan build: ASAN_OPTIONS=$ASAN_OPTIONS"
fi
NOTIFY_WEBHOOK_URL="http://127.0.0.1:$hook/hook" NOTIFY_WEBHOOK_SECRET=$secret \
  BOOKD_SERVICE_KEY=$key BOOKD_ADDRESS_RATE=0 BOOKD_CUSTOMER_RATE=0 \
  BOOKD_ANON_RATE=0 BOOKD_SERVICE_RATE=0 DATABASE_URL=$DATABASE_URL \
  "$bd" --data-dir "$work/data" --listen "127.0.0.1:$http" \
  --binary-listen "127.0.0.1:$bin" >"$work/bookd.log" 2>&1 &
bpid=$!
pids+=("$bpid")
base=http://127.0.0.1:$http
for _ in $(seq 1 300); do
  grep -q 'HTTP on' "$work/bookd.log" 2>/dev/null && break
  kill -0 "$bpid" 2>/dev/null || break
  sleep 0.1
done
grep -q 'HTTP on' "$work/bookd.log" ||
  { tail -20 "$work/bookd.log" >&2; echo "soak.sh: bookd did not start" >&2; exit 2; }
say "bookd $("$bd" --version), pid $bpid, replicating, notifications to the sink"
say "load: $RATE requests/s (half HTTP, half binary), bookbench steady, $SECONDS_ s"

python3 "$root/bench/soak_watch.py" sample --pid "$bpid" --base "$base" \
  --out "$work/samples.tsv" --interval "$INTERVAL" --stop "$work/stop" \
  2>"$work/watch.log" &
wpid=$!
pids+=("$wpid")

# Each bookbench builds its data set first (not timed: the sampler's t
# starts a few seconds before the load), then the open-loop run, then its
# check (DATABASE_URL set: PostgreSQL's tables compared with bookd's).
half=$(python3 -c "print($RATE / 2)")
bbrc=()
for drv in http binary; do
  "$bb" run --driver "bookd-$drv" --scenario steady \
    --events "$EVENTS" --customers 20000 --orgs 20 --capacity 20 \
    --waitlist 10 --connections 2 --rate "$half" --duration "$SECONDS_" \
    --http "127.0.0.1:$http" --binary "127.0.0.1:$bin" --key "$key" \
    --seed "$([ $drv = http ] && echo 1 || echo 2)" --quiet \
    --out "$work/bb-$drv" >"$work/bookbench-$drv.log" 2>&1 &
  eval "bb_$drv=$!"
done
wait "$bb_http"; bbrc+=($?)
wait "$bb_binary"; bbrc+=($?)
touch "$work/stop"
wait "$wpid" 2>/dev/null

fail=0
for i in 0 1; do
  drv=$([ $i = 0 ] && echo http || echo binary)
  say "bookbench $drv (exit ${bbrc[$i]}):"
  grep -E '^ *(book|cancel|all|total)|requests/s|check|FAIL|error' \
    "$work/bookbench-$drv.log" | head -12 | sed 's/^/    /'
  [ "${bbrc[$i]}" = 0 ] || { say "FAIL: bookbench $drv exited ${bbrc[$i]}"; fail=1; }
done

# After the load: replication and notifications drain.
drained=
for i in $(seq 1 1200); do
  st=$(curl -s "$base/v1/admin/status" -H "Authorization: Bearer $key")
  lag=$(printf '%s' "$st" | jq -r '.replication.lag_records // 0')
  bl=$(printf '%s' "$st" | jq -r '(.notifications.backlog // 0) + (.notifications.unread_records // 0)')
  if [ "$lag" = 0 ] && [ "$bl" = 0 ]; then drained=$((i / 10)); break; fi
  sleep 0.1
done
if [ -n "$drained" ]; then
  say "ok   replication lag and notification backlog 0, ${drained} s after the load"
else
  say "FAIL replication lag $lag records, notification backlog $bl, 120 s after the load"
  fail=1
fi

kill -TERM "$bpid"
wait "$bpid"
rc=$?
if [ "$rc" = 0 ]; then say "ok   bookd exited 0 on SIGTERM"
else say "FAIL bookd exited $rc on SIGTERM"; fail=1; fi
if grep -E 'Sanitizer|runtime error' "$work/bookd.log" >/dev/null; then
  say "FAIL a sanitizer report in bookd's log:"
  grep -E -A30 'Sanitizer|runtime error' "$work/bookd.log" | head -60
  fail=1
else
  say "ok   no sanitizer report in bookd's log"
fi

[ -n "${SOAK_OUT:-}" ] && cp "$work/samples.tsv" "$SOAK_OUT"
python3 "$root/bench/soak_watch.py" judge --samples "$work/samples.tsv" \
  --seconds "$SECONDS_" --warmup "$WARMUP" --rules "$RULES" || fail=1
if [ "$fail" = 0 ]; then say "PASS"; else say "FAIL"; fi
exit "$fail"
