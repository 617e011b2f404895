#!/usr/bin/env bash
# The schedule page (web/index.html, docs/operations.md "The schedule
# page") in a real browser: bookd --demo on free ports, then
# tests/integration/web_page.py drives headless Chromium through Python's
# selenium (Debian's chromium, chromium-driver, python3-selenium): sign in
# from the printed link, book by keyboard and see the seats drop, cancel
# and see them rise, the class filled by another client (the service key)
# until the page offers the waitlist, join it and follow the position as it
# moves, offline and back, rate limited (429) and back, a phone-sized
# window; no console error and no request to any host but bookd. A screenshot of each step goes to
# <build>/test-logs/test_web_page/ (BOOKD_TEST_LOG_DIR; or $WEB_SHOTS).
#
#   bash tests/integration/test_web_page.sh   (from the repo, or by ctest)
#
# Exit 77 (skipped) without bookd, chromium, chromedriver or a python3
# with selenium (/usr/bin/python3 is tried when the first python3 on PATH
# lacks it).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
test_setup test_web_page
browser=$(command -v chromium || command -v chromium-browser || true)
driver=$(command -v chromedriver || true)
[ -n "$browser" ] && [ -n "$driver" ] ||
  { echo "test_web_page: no chromium or chromedriver, skipped"; exit 77; }
py=
for p in python3 /usr/bin/python3; do
  if "$p" -c 'import selenium.webdriver' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || { echo "test_web_page: no python3 with selenium, skipped"; exit 77; }

# The browser's profile holds the page's local storage (the token): in a
# temp dir of its own, not under $tmp, whose *.log files are kept.
profile=$(mktemp -d "${TMPDIR:-/tmp}/test_web_page.profile.XXXXXX")
cleanup() {
  rm -rf "$profile"
  stop_pid
  keep_logs "$test_name" "$tmp"
  rm -rf "$tmp"
}
shots=${WEB_SHOTS:-${BOOKD_TEST_LOG_DIR:-$root/build/test-logs}/test_web_page}
mkdir -p "$shots"

env -u DATABASE_URL -u BOOKD_SERVICE_KEY -u BOOKD_ANON_KEY -u BOOKD_JWT_SECRET \
  BOOKD_LISTEN=127.0.0.1:0 BOOKD_BINARY_LISTEN=127.0.0.1:0 \
  BOOKD_DATA_DIR=$tmp/data BOOKD_DEMO=1 "$bookd" >"$tmp/bookd.log" 2>&1 &
pid=$!
wait_for "$tmp/bookd.log" 'token=' 300 0.1 ||
  { echo "bookd did not print the sign-in link:"; cat "$tmp/bookd.log"; exit 1; }
page=$(grep -o '^  http://[^ ]*#key=[^&]*$' "$tmp/bookd.log" | head -1 | sed 's/^  //')
link=$(grep -o '^  http://[^ ]*&token=[^ ]*$' "$tmp/bookd.log" | head -1 | sed 's/^  //')
echo "bookd: the page and the sign-in link printed (screenshots in $shots)"

WEB_PAGE=$page WEB_LINK=$link WEB_SHOTS=$shots WEB_PROFILE=$profile WEB_SERVICE_KEY=demo-service-key \
  WEB_CHROMIUM=$browser WEB_DRIVER=$driver timeout 120 "$py" "$here/web_page.py"
rc=$?
[ $rc -eq 0 ] && ok "the page in a browser" || bad "the page in a browser (exit $rc)"
stop_pid
echo "test_web_page: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
