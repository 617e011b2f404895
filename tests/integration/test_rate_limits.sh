#!/usr/bin/env bash
# Rate limits end to end (issue 13): bookd with a small address limit
# (BOOKD_ADDRESS_RATE=5, burst 10) on free ports, driven by curl from one
# address (127.0.0.1):
#   - the service key is authenticated before any address limit and not
#     held to it: 300 requests, none refused (a backend behind one address
#     was held to the address's rate);
#   - the anon key from that address: 429 rate_limited with Retry-After once
#     the burst is spent; a bad token too (429 before 401); /health never;
#   - X-Forwarded-For is ignored from a peer that is not a trusted proxy,
#     and names the client when it is (BOOKD_TRUSTED_PROXIES=127.0.0.1):
#     clients behind the proxy have their own buckets, and a forged
#     left-most entry does not give a client a fresh one;
#   - BOOKD_SERVICE_RATE gives the service key its own limit;
#   - a malformed BOOKD_TRUSTED_PROXIES is refused at start.
#
#   bash tests/integration/test_rate_limits.sh   (from the repo, or by ctest)
#
# bookd: BOOKD_BIN, else <build>/api/bookd found from ctest's working
# directory (<build>/tests), BOOKD_BUILD_DIR or ./build. Exit 77 (skipped)
# when bookd or curl is missing.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
test_setup test_rate_limits curl

SVC=svc-$RANDOM$RANDOM
ANON=anon-$RANDOM$RANDOM

# start_bookd [VAR=value...]: a fresh data dir each time.
start_bookd() {
  rm -rf "$tmp/data"
  : >"$tmp/bookd.log"
  env -u DATABASE_URL BOOKD_SERVICE_KEY=$SVC BOOKD_ANON_KEY=$ANON \
    BOOKD_LISTEN=127.0.0.1:0 BOOKD_BINARY_LISTEN=127.0.0.1:0 \
    BOOKD_DATA_DIR=$tmp/data BOOKD_ADDRESS_RATE=5 "$@" \
    "$bookd" >>"$tmp/bookd.log" 2>&1 &
  pid=$!
  URL=$(started_line "$tmp/bookd.log" | grep -o 'http://[0-9.:]*')
  if [ -z "$URL" ]; then
    echo "test_rate_limits: bookd did not start:"; cat "$tmp/bookd.log"
    exit 1
  fi
}

# many N PATH [curl args]: N requests on one connection; their statuses,
# one a line, in $tmp/st (the last one's headers in $tmp/h).
many() {
  local n=$1 p=$2; shift 2
  local urls=()
  for _ in $(seq 2 "$n"); do urls+=(-o /dev/null "$URL$p"); done
  curl -s -w '%{http_code}\n' "$@" "${urls[@]}" -D "$tmp/h" -o /dev/null "$URL$p" >"$tmp/st"
}
count() { grep -c "^$1\$" "$tmp/st"; }

start_bookd
echo "bookd at $URL (log $tmp/bookd.log)"

many 300 /v1/admin/status -H "Authorization: Bearer $SVC"
check "service key: 300 requests from one address, all 200 ($(count 200))" \
  test "$(count 200)" = 300
many 30 /v1/events -H "Authorization: Bearer $ANON"
check "anon key: the burst, then 429 ($(count 200) ok, $(count 429) limited)" \
  test "$(count 200)" -ge 10 -a "$(count 200)" -le 20 -a "$(count 429)" -ge 10
check "429 carries Retry-After" grep -qi '^Retry-After: [1-9]' "$tmp/h"
many 15 /v1/events -H "Authorization: Bearer wrong"
check "bad tokens from a limited address: 429 before 401 ($(count 429) of 15)" \
  test "$(count 429)" -ge 5 -a "$(count 429)" -gt "$(count 401)"
many 20 /health
check "/health is never limited" test "$(count 200)" = 20
st=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $SVC" "$URL/v1/admin/status")
check "the service key still gets in" test "$st" = 200
# The address's burst used up, then 10 with a forwarded address, in one curl
# (--next) so that no token refills between them on a loaded machine: an
# address taken from the header would get a fresh burst (all 10 ok).
urls=() forged=()
for _ in $(seq 1 25); do urls+=(-o /dev/null "$URL/v1/events"); done
for _ in $(seq 1 10); do forged+=(-o /dev/null "$URL/v1/events"); done
curl -s -w '%{http_code}\n' -H "Authorization: Bearer $ANON" "${urls[@]}" \
  --next -w '%{http_code}\n' -H "Authorization: Bearer $ANON" \
  -H "X-Forwarded-For: 203.0.113.7" "${forged[@]}" >"$tmp/st"
st=$(tail -n 10 "$tmp/st" | grep -c '^429$')
check "X-Forwarded-For from an untrusted peer is ignored (no fresh burst: $st of 10 limited)" \
  test "$st" -ge 8
stop_pid

start_bookd BOOKD_TRUSTED_PROXIES=127.0.0.1
all=0
for i in 1 2 3 4 5; do
  many 8 /v1/events -H "Authorization: Bearer $ANON" -H "X-Forwarded-For: 203.0.113.$i"
  all=$((all + $(count 200)))
done
check "behind a trusted proxy: five clients, each its own burst ($all of 40 ok)" test $all = 40
# The client's 20 requests, then 5 with a forged left-most entry, in one
# curl (--next) so that no token refills between them on a loaded machine:
# a forged entry that helped would get a fresh burst (all 5 answered 200).
urls=()
for _ in $(seq 1 20); do urls+=(-o /dev/null "$URL/v1/events"); done
forged=()
for _ in $(seq 1 5); do forged+=(-o /dev/null "$URL/v1/events"); done
curl -s -w '%{http_code}\n' -H "Authorization: Bearer $ANON" \
  -H "X-Forwarded-For: 198.51.100.1" "${urls[@]}" --next -w '%{http_code}\n' \
  -H "Authorization: Bearer $ANON" -H "X-Forwarded-For: 192.0.2.77, 198.51.100.1" \
  "${forged[@]}" >"$tmp/st"
first=$(head -n 20 "$tmp/st" | grep -c '^429$')
st=$(tail -n 5 "$tmp/st" | grep -c '^429$')
check "a client behind the proxy is limited ($first 429s), and a forged left-most entry does not help ($st of 5 limited)" \
  test "$first" -ge 8 -a "$st" -ge 4
stop_pid

start_bookd BOOKD_SERVICE_RATE=5
many 30 /v1/admin/status -H "Authorization: Bearer $SVC"
check "BOOKD_SERVICE_RATE=5: the service key's own limit ($(count 429) of 30 limited)" \
  test "$(count 429)" -ge 10
stop_pid

env -u DATABASE_URL BOOKD_DATA_DIR=$tmp/data2 BOOKD_LISTEN=127.0.0.1:0 \
  BOOKD_BINARY_LISTEN=127.0.0.1:0 BOOKD_TRUSTED_PROXIES="10.0.0.0/33" \
  timeout 10 "$bookd" >"$tmp/bad.log" 2>&1
rc=$?
check "a malformed BOOKD_TRUSTED_PROXIES is refused at start (exit $rc)" \
  test $rc = 2 -a -n "$(grep -o TRUSTED_PROXIES "$tmp/bad.log")"

if [ $failed != 0 ]; then
  echo "--- bookd log (tail)"; tail -n 40 "$tmp/bookd.log"
fi
echo "test_rate_limits: $passed passed, $failed failed"
[ $failed = 0 ]
