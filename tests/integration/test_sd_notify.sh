#!/usr/bin/env bash
# test_sd_notify: bookd's notify protocol (api/svc.c, deploy/bookd.service
# is Type=notify with WatchdogSec). A python3 listener on a unix datagram
# socket plays systemd: bookd started with NOTIFY_SOCKET (and
# WATCHDOG_USEC) sends STATUS= while recovering, READY=1 only once its
# listeners answer (the listener asks /health the moment READY=1 comes),
# WATCHDOG=1 again and again while it runs, STOPPING=1 on SIGTERM, in
# that order; without WATCHDOG_USEC no WATCHDOG=1 at all.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
test_setup test_sd_notify python3
port_http=26021 port_bin=26022
lpid=
cleanup() {
  stop_pid
  [ -n "$lpid" ] && kill "$lpid" 2>/dev/null && wait "$lpid" 2>/dev/null
  keep_logs test_sd_notify "$tmp"
  rm -rf "$tmp"
}

cat >"$tmp/listen.py" <<'PY'
# Prints each datagram on a line ("|" for its newlines); after READY=1
# asks bookd's /health at once and prints "HEALTH <status>".
import socket, sys, urllib.request
path, url, out = sys.argv[1], sys.argv[2], open(sys.argv[3], "w")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
print("listening", file=out, flush=True)
while True:
    msg = s.recv(4096).decode()
    print(msg.replace("\n", "|"), file=out, flush=True)
    if "READY=1" in msg.split("\n"):
        try:
            code = urllib.request.urlopen(url, timeout=2).status
        except Exception as e:
            code = "error %s" % e
        print("HEALTH %s" % code, file=out, flush=True)
PY

# run_bookd NAME [ENV...]: bookd with the listener as its manager, kept
# running for 4 s, then SIGTERM; messages in $tmp/NAME.msgs.
run_bookd() {
  local name=$1; shift
  python3 "$tmp/listen.py" "$tmp/$name.sock" \
    "http://127.0.0.1:$port_http/health" "$tmp/$name.msgs" &
  lpid=$!
  for _ in $(seq 1 50); do
    grep -q listening "$tmp/$name.msgs" 2>/dev/null && break
    sleep 0.1
  done
  env NOTIFY_SOCKET="$tmp/$name.sock" "$@" "$bookd" --data-dir "$tmp/$name" \
    --listen "127.0.0.1:$port_http" --binary-listen "127.0.0.1:$port_bin" \
    >"$tmp/$name.log" 2>&1 &
  pid=$!
  started_line "$tmp/$name.log" >/dev/null || { cat "$tmp/$name.log"; return 1; }
  sleep 4
  stop_status
  sleep 0.3
  kill "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null; lpid=
  sed 's/^/  | /' "$tmp/$name.msgs"
}

# line_of FILE PATTERN: the line number of the first match (0: none).
line_of() { local n; n=$(grep -n -m1 -- "$2" "$1" | cut -d: -f1); echo "${n:-0}"; }

check "bookd runs and stops (watchdog on)" run_bookd wd WATCHDOG_USEC=2500000
m=$tmp/wd.msgs
status=$(line_of "$m" '^STATUS=recovering')
ready=$(line_of "$m" 'READY=1')
health=$(line_of "$m" '^HEALTH')
stopping=$(line_of "$m" 'STOPPING=1')
check "STATUS=recovering ... before READY=1" test "$status" -gt 0 -a "$status" -lt "$ready"
check "READY=1 carries STATUS=serving" grep -q 'READY=1|STATUS=serving: HTTP on' "$m"
check "/health answered 200 the moment READY=1 came" grep -qx 'HEALTH 200' "$m"
check "... asked before any later message" test "$health" -eq $((ready + 1))
check "READY=1 before STOPPING=1" test "$ready" -gt 0 -a "$ready" -lt "$stopping"
wd_count=$(sed -n "${ready},${stopping}p" "$m" | grep -cx 'WATCHDOG=1')
check "WATCHDOG=1 keeps coming while running ($wd_count in 4 s, >= 3)" test "$wd_count" -ge 3
check "no WATCHDOG=1 before READY=1" \
  test "$(sed -n "1,${ready}p" "$m" | grep -cx 'WATCHDOG=1')" -eq 0
check "STOPPING=1 on SIGTERM" grep -q '^STOPPING=1' "$m"

check "bookd runs and stops (no watchdog)" run_bookd nowd
check "no WATCHDOG=1 without WATCHDOG_USEC" \
  test "$(grep -cx 'WATCHDOG=1' "$tmp/nowd.msgs")" -eq 0
check "READY=1 without a watchdog too" grep -q 'READY=1' "$tmp/nowd.msgs"

echo "test_sd_notify: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
