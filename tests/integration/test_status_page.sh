#!/usr/bin/env bash
# The status page (/status, web/status.html, issue 18) in headless Chromium:
# starts bookd on 127.0.0.1 with a service key and runs
# tests/integration/status_page.py against it (the key typed into the page,
# live figures that change under 400 bookings in about four seconds, no
# console error, no request to any host but bookd). Its screenshots go to
# <build>/test-output/test_status_page/ (status-before.png,
# status-load.png, status.png).
#
#   bash tests/integration/test_status_page.sh   (from the repo, or by ctest)
#
# Exit 77 (skipped) when chromium, chromedriver or Python's selenium
# (Debian's python3-selenium) is missing.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
test_setup test_status_page chromium chromedriver
py=
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import selenium' 2>/dev/null; then
    py=$p; break
  fi
done
[ -n "$py" ] || { echo "test_status_page: no python3 with selenium, skipped"; exit 77; }
out=$(cd "$(dirname "$bookd")/.." && pwd)/test-output/test_status_page
rm -rf "$out"; mkdir -p "$out"

SVC=svc-$RANDOM$RANDOM
env -u DATABASE_URL BOOKD_SERVICE_KEY=$SVC BOOKD_LISTEN=127.0.0.1:0 \
  BOOKD_BINARY_LISTEN=127.0.0.1:0 BOOKD_DATA_DIR=$tmp/data \
  "$bookd" >"$tmp/bookd.log" 2>&1 &
pid=$!
URL=$(started_line "$tmp/bookd.log" | grep -o 'http://[0-9.:]*')
[ -n "$URL" ] || { echo "test_status_page: bookd did not start:"; cat "$tmp/bookd.log"; exit 1; }

timeout 50 "$py" "$here/status_page.py" "$URL" "$SVC" "$out"
rc=$?
rm -rf "$out/profile"
echo "test_status_page: screenshots in $out"
exit $rc
