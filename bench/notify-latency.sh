#!/usr/bin/env bash
# notify-latency.sh [BUILD_DIR]: notification delivery latency end to end
# (docs/benchmarks.md "Notification latency"): bookd with a local webhook
# sink (tests/integration/notify_sink.py on 127.0.0.1) under booking load
# (bookbench run --driver bookd-http --scenario steady, open loop), and the
# latency of every notification from its decision (the body's timestamp,
# the core's decision time) to the sink receiving it, p50/p99/max over all
# notifications of the run, for two sinks in turn:
#   healthy   answers 200 at once                       (target p99 < 1 s)
#   failing   answers after NL_SLOW_MS (200) ms and 503 to a share
#             NL_FAIL_RATE (0.2) of requests, seeded     (target p99 < 30 s)
# A notification's latency counts to its first 200 (retries included).
# Environment: NL_RATE requests/s (default 200), NL_DURATION seconds of load
# (default 20). Everything listens on 127.0.0.1 (free ports), runs under a
# time limit and is stopped and removed at the end.
set -u
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
dir=${1:-build}
RATE=${NL_RATE:-200}
DUR=${NL_DURATION:-20}
SLOW=${NL_SLOW_MS:-200}
FAIL=${NL_FAIL_RATE:-0.2}
bd=$dir/api/bookd bb=$dir/bench/bookbench
[ -x "$bd" ] && [ -x "$bb" ] ||
  { echo "notify-latency.sh: build bookd and bookbench first (in $dir)" >&2; exit 1; }
py=
for p in /usr/bin/python3 python3; do
  "$p" -c 'import aiosmtpd' 2>/dev/null && { py=$p; break; }
done
[ -n "$py" ] || { echo "notify-latency.sh: needs python3 with aiosmtpd" >&2; exit 1; }

work=$(mktemp -d /tmp/notify-latency.XXXXXX)
secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
key=nl-$$-$RANDOM
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run DIR NAME [sink args...]: one bookd + sink + load; prints the row.
run() {
  local w=$work/$1 name=$2; shift 2
  local hook http bin bpid spid line base i backlog
  mkdir -p "$w"
  hook=$(free_port); http=$(free_port); bin=$(free_port)
  "$py" "$root/tests/integration/notify_sink.py" --out "$w/sink" \
    --secret "$secret" --http-port "$hook" "$@" >"$w/sink.log" 2>&1 &
  spid=$!; pids+=("$spid")
  NOTIFY_WEBHOOK_URL="http://127.0.0.1:$hook/hook" NOTIFY_WEBHOOK_SECRET=$secret \
    BOOKD_SERVICE_KEY=$key BOOKD_ADDRESS_RATE=0 BOOKD_CUSTOMER_RATE=0 \
    timeout -s INT -k 30 $((DUR + 600)) "$bd" --data-dir "$w/data" \
    --listen "127.0.0.1:$http" --binary-listen "127.0.0.1:$bin" \
    >"$w/bookd.log" 2>&1 &
  bpid=$!; pids+=("$bpid")
  for _ in $(seq 1 100); do
    grep -q 'HTTP on' "$w/bookd.log" && break
    sleep 0.1
  done
  base=http://127.0.0.1:$http
  timeout -s INT -k 30 $((DUR + 600)) "$bb" run --driver bookd-http \
    --scenario steady --events 2000 --customers 20000 --orgs 20 \
    --connections 4 --rate "$RATE" --duration "$DUR" --http "127.0.0.1:$http" \
    --binary "127.0.0.1:$bin" --key "$key" --out "$w/bb" --no-check \
    >"$w/bookbench.log" 2>&1 ||
    echo "notify-latency.sh: $name: bookbench failed (see below)" >&2
  # wait (up to 120 s) until the sender has nothing left
  for i in $(seq 1 1200); do
    backlog=$(curl -s "$base/v1/admin/status" -H "Authorization: Bearer $key" |
      jq -r '.notifications.backlog + .notifications.unread_records')
    [ "$backlog" = 0 ] && break
    sleep 0.1
  done
  line=$("$py" - "$w/sink/webhook.jsonl" <<'EOF'
import datetime, json, sys
first = {}
tries = 0
for l in open(sys.argv[1]):
    r = json.loads(l)
    tries += 1
    if r["status"] != 200 or r["id"] in first:
        continue
    t = datetime.datetime.fromisoformat(r["body"]["timestamp"].replace("Z", "+00:00"))
    first[r["id"]] = r["received"] - t.timestamp()
lat = sorted(first.values())
def q(p):
    return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
print(f"{len(lat)} | {tries} | {q(0.5) * 1e3:.0f} ms | {q(0.99) * 1e3:.0f} ms | {lat[-1] * 1e3 if lat else 0:.0f} ms")
EOF
)
  printf '| %s | %s |\n' "$name" "$line"
  grep -E 'requests|p99' "$w/bookbench.log" | head -3 | sed "s/^/  $name bookbench: /" >&2
  kill -TERM "$bpid" "$spid" 2>/dev/null
  wait "$bpid" "$spid" 2>/dev/null
}

echo "notify-latency.sh: $RATE requests/s for $DUR s (bookbench steady over HTTP), webhook sink on 127.0.0.1"
echo "| sink | notifications | requests to the sink | p50 | p99 | max |"
echo "|---|---|---|---|---|---|"
run healthy healthy
run failing "failing (${SLOW} ms, ${FAIL} refused)" --slow-ms "$SLOW" --fail-rate "$FAIL" --seed 7
