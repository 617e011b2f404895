#!/usr/bin/env bash
# bookd's logs (issue 15, docs/operations.md "Logs"):
#   - BOOKD_LOG_FORMAT=json: every line on stderr is a JSON object with an
#     RFC 3339 UTC time, a level and a msg; logfmt (the default): every
#     line is time=... level=... msg=...;
#   - BOOKD_LOG_LEVEL=warn drops the info lines; an unknown format or
#     level is refused at start (exit 2);
#   - X-Request-Id: a sane one is echoed, a missing or insane one (a space,
#     65 bytes) replaced by a generated one, each answer its own;
#   - a 5xx answer (503 from a connection in the reserve) is logged at
#     level error with its X-Request-Id;
#   - with BOOKD_SLOW_REQUEST_MS=1, the bookings logged "slow request" are
#     exactly those /metrics counts over 1 ms, each with its X-Request-Id.
#
#   bash tests/integration/test_logs.sh   (from the repo, or by ctest)
#
# Exit 77 (skipped) without bookd, curl or python3.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
test_setup test_logs curl python3

SVC=svc-$RANDOM$RANDOM

# start LOG VAR=value...: bookd on free ports, stdout in LOG.out, stderr in
# LOG; sets pid and URL
start() {
  local log=$1; shift
  rm -rf "$tmp/data"
  env -u DATABASE_URL BOOKD_SERVICE_KEY=$SVC BOOKD_DEMO=1 \
    BOOKD_LISTEN=127.0.0.1:0 BOOKD_BINARY_LISTEN=127.0.0.1:0 \
    BOOKD_DATA_DIR="$tmp/data" "$@" "$bookd" >"$log.out" 2>"$log" &
  pid=$!
  URL=$(started_line "$log.out" | grep -o 'http://[0-9.:]*')
  [ -n "$URL" ] || { echo "bookd did not start: $(cat "$log")"; exit 1; }
}
rid() { # rid [curl args]: the X-Request-Id of GET /health's answer
  curl -s -D - -o /dev/null "$URL/health" "$@" | tr -d '\r' |
    sed -n 's/^X-Request-Id: //ip'
}

start "$tmp/json.log" BOOKD_LOG_FORMAT=json BOOKD_SLOW_REQUEST_MS=1 \
  BOOKD_CONNECTIONS=3 BOOKD_CONN_RESERVE=1

check "a sane X-Request-Id is echoed" test "$(rid -H 'X-Request-Id: abc-123_Z.9:+/=')" = 'abc-123_Z.9:+/='
gen1=$(rid) gen2=$(rid -H 'X-Request-Id: has space')
long=$(printf 'x%.0s' $(seq 1 65))
gen3=$(rid -H "X-Request-Id: $long")
check "missing, insane and too long ids are generated ($gen1, $gen2, $gen3)" \
  python3 -c 'import re,sys; a=sys.argv[1:]; sys.exit(not (len(set(a)) == 3 and all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]+-[0-9a-f]+", x) for x in a)))' \
  "$gen1" "$gen2" "$gen3"

# 8 bookings (fewer than the 10 slow lines a second that may pass)
for i in $(seq 1 8); do
  curl -s -o /dev/null -X POST "$URL/v1/events/1/bookings" \
    -H "Authorization: Bearer $SVC" -H "Idempotency-Key: s-$i" \
    -H "X-Request-Id: slow-$i" -H 'Content-Type: application/json' \
    -d "{\"customer_id\":\"s$i\"}"
done
metrics=$(curl -s "$URL/metrics")
over=$(printf '%s\n' "$metrics" | awk -F'[ ]' '
  /^bookd_request_duration_seconds_bucket\{op="book",protocol="http",le="0.001"\}/ { b = $2 }
  /^bookd_request_duration_seconds_count\{op="book",protocol="http"\}/ { c = $2 }
  END { print c - b }')

# two connections held open fill the table but for the reserve: the next
# one is in the reserve, and a listing there is refused 503
exec 3<>"/dev/tcp/127.0.0.1/${URL##*:}" 4<>"/dev/tcp/127.0.0.1/${URL##*:}"
sleep 0.2
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/events" -H 'X-Request-Id: over-1')
exec 3>&- 4>&-
check "a listing in the reserve: 503" test "$code" = 503
sleep 0.3
stop_pid

python3 - "$tmp/json.log" "$over" <<'EOF'
import json, re, sys
lines = open(sys.argv[1]).read().splitlines()
over = int(sys.argv[2])
passed = failed = 0
def check(what, cond, detail=''):
    global passed, failed
    if cond: passed += 1; print('ok  ', what)
    else: failed += 1; print('FAIL', what, detail)
objs = []
for l in lines:
    try: objs.append(json.loads(l))
    except ValueError: objs.append(None)
check('json: %d lines, each an object with time, level, msg' % len(lines),
      lines and all(o and re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z', o.get('time', ''))
                    and o.get('level') in ('debug', 'info', 'warn', 'error')
                    and isinstance(o.get('msg'), str) for o in objs),
      [l for l, o in zip(lines, objs) if not o][:3])
ok = [o for o in objs if o]
check('json: the start-up line is there', any(o['msg'].startswith('bookd: started:') for o in ok))
err = [o for o in ok if o['msg'] == 'error answer']
check('the 503 is logged at level error with its X-Request-Id',
      any(o['level'] == 'error' and o.get('request_id') == 'over-1' and o.get('status') == '503'
          and o.get('code') == 'overloaded' for o in err), err)
slow = [o for o in ok if o['msg'] == 'slow request']
check('slow requests: %d logged, %d bookings over 1 ms in /metrics' % (len(slow), over),
      len(slow) == over and all(o['level'] == 'warn' and o['op'] == 'book' and o['protocol'] == 'http'
                                 and re.fullmatch(r'slow-[1-8]', o['request_id'])
                                 and float(o['ms']) > 1.0 for o in slow), slow)
print('%d passed, %d failed' % (passed, failed))
sys.exit(1 if failed else 0)
EOF
[ $? = 0 ] && ok "the JSON log's checks" || bad "the JSON log's checks"

start "$tmp/logfmt.log"
stop_pid
check "logfmt: every line is time=RFC 3339 level=... msg=..." \
  test "$(grep -cvE '^time=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z level=(debug|info|warn|error) msg=' "$tmp/logfmt.log")" = 0
check "logfmt: the start-up line, message as before" \
  grep -q 'level=info msg="bookd: started: log opened in' "$tmp/logfmt.log"

start "$tmp/warn.log" BOOKD_LOG_LEVEL=warn
stop_pid
check "BOOKD_LOG_LEVEL=warn: no info line" test "$(grep -c 'level=info' "$tmp/warn.log")" = 0
check "BOOKD_LOG_LEVEL=warn: stdout still says where bookd listens" grep -q 'HTTP on http://' "$tmp/warn.log.out"

for bad in "BOOKD_LOG_LEVEL=verbose|BOOKD_LOG_LEVEL must be debug, info, warn or error" \
           "BOOKD_LOG_FORMAT=xml|BOOKD_LOG_FORMAT must be logfmt or json"; do
  env "${bad%%|*}" "$bookd" --data-dir "$tmp/data" >"$tmp/bad.log" 2>&1
  rc=$?
  check "${bad%%|*}: refused (exit $rc)" test $rc = 2 -a -n "$(grep -F "${bad#*|}" "$tmp/bad.log")"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
