#!/usr/bin/env bash
# cpu-per-request.sh [BUILD_DIR] [BOOKD_FLAG...]: what bookd spends per
# request during bookbench binary steady (closed loop, 2 x 256 unless
# CONNS/INFL say otherwise), measured so that other work on the machine
# matters little: perf stat -e task-clock,context-switches,
# raw_syscalls:sys_enter -p <bookd> over 4 s of the run, divided by the
# growth of bookd_requests_total meanwhile; with the records per log sync
# (bookd_wal_durable_lsn over bookd_wal_fsync_seconds_count) and the mean
# sync time of the same 4 s. BOOKD_FLAGs go to bookd (e.g.
# --log-ring), so two modes of one binary can be compared by
# alternating runs (docs/benchmarks.md, "Request path (issue 17)").
# Environment: CONNS, INFL, DUR (bookbench seconds, default 8), SCEN
# (default steady). Listens on 127.0.0.1 only (free ports); the bookd and
# its temp dir are removed at the end.
set -u
cd "$(dirname "$0")/.." || exit 1
dir=${1:-build}
shift || true
# A binary of the build, not CMake's own nor a copy cpack staged
# (_CPack_Packages: left by `cpack` and by test_install, possibly older).
bin() { find "$dir" -type f -name "$1" -perm -u+x 2>/dev/null | grep -v -e CMakeFiles -e _CPack_Packages | head -n 1; }
bd=$(bin bookd); bb=$(bin bookbench)
[ -n "$bd" ] && [ -n "$bb" ] || { echo "cpu-per-request.sh: build bookd and bookbench first (in $dir)" >&2; exit 1; }
command -v perf >/dev/null || { echo "cpu-per-request.sh: needs perf" >&2; exit 1; }
w=$(mktemp -d --suffix=.cpu-per-request); mkdir -p "$w/data"
pid=
cleanup() { [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$w"; }
trap cleanup EXIT
fp() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
H=127.0.0.1:$(fp); B=127.0.0.1:$(fp); KEY=cpr-$$-$RANDOM
BOOKD_LISTEN=$H BOOKD_BINARY_LISTEN=$B BOOKD_DATA_DIR=$w/data BOOKD_SERVICE_KEY=$KEY \
  BOOKD_ADDRESS_RATE=0 BOOKD_CUSTOMER_RATE=0 BOOKD_ANON_RATE=0 BOOKD_SERVICE_RATE=0 \
  env -u DATABASE_URL timeout -s INT -k 30 600 "$bd" "$@" >"$w/bookd.out" 2>"$w/bookd.log" &
pid=$!
for _ in $(seq 150); do curl -sf "http://$H/health" >/dev/null && break; sleep 0.1; done
bpid=$(pgrep -P "$pid" bookd || echo "$pid") # timeout's child
m() { curl -s --max-time 5 "http://$H/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
"$bb" run --http "$H" --binary "$B" --key "$KEY" --driver bookd-binary --scenario "${SCEN:-steady}" \
  --connections "${CONNS:-2}" --inflight "${INFL:-256}" --duration "${DUR:-8}" --out "$w/bb" >"$w/bb.log" 2>&1 &
bbp=$!
# The measured run has begun once bookbench prints its first progress line.
for _ in $(seq 900); do grep -q '^\[' "$w/bb.log" && break; sleep 0.2; done
sleep 1
r0=$(m bookd_requests_total); l0=$(m bookd_wal_durable_lsn)
c0=$(m bookd_wal_fsync_seconds_count); s0=$(m bookd_wal_fsync_seconds_sum)
perf stat -e task-clock,context-switches,raw_syscalls:sys_enter -x, -p "$bpid" -o "$w/perf" sleep 4 2>/dev/null
r1=$(m bookd_requests_total); l1=$(m bookd_wal_durable_lsn)
c1=$(m bookd_wal_fsync_seconds_count); s1=$(m bookd_wal_fsync_seconds_sum)
wait "$bbp"
tc=$(awk -F, '/task-clock/ { print $1 }' "$w/perf")
cs=$(awk -F, '/context-switches/ { print $1 }' "$w/perf")
sc=$(awk -F, '/sys_enter/ { print $1 }' "$w/perf")
python3 - "$*" "$r0" "$r1" "$tc" "$cs" "$sc" "$l0" "$l1" "$c0" "$c1" "$s0" "$s1" <<'PY'
import sys
flags, *v = sys.argv[1:]
def f(x):
    try: return float(x)
    except ValueError: return float('nan')
r0, r1, tc, cs, sc, l0, l1, c0, c1, s0, s1 = map(f, v)
n = r1 - r0; syncs = max(1.0, c1 - c0)
print(f"bookd {flags or '(defaults)'}: {n / 4:.0f} req/s; per request {tc * 1000 / n:.2f} us CPU, "
      f"{cs / n:.3f} context switches, {sc / n:.3f} syscalls; {(l1 - l0) / syncs:.0f} records a sync, "
      f"sync mean {(s1 - s0) / syncs * 1e6:.0f} us")
PY
grep -E 'requests in|check \(' "$w/bb.log" | head -n 2 | sed 's/^/  bookbench: /'
