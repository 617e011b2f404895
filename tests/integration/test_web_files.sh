#!/usr/bin/env bash
# The files of web/ as bookd serves them (web/README.md, api/web.h): bookd
# --demo on free ports, then curl without credentials:
#   - GET / is web/index.html byte for byte, text/html, a strong ETag,
#     Cache-Control no-cache, a Content-Security-Policy with 'self' and
#     nosniff; HEAD the same headers and no body;
#   - If-None-Match with that tag (also W/ and in a list) is 304 with the
#     tag and no body; another tag is 200;
#   - every other embedded file at /web/<name> with its type and bytes;
#     /<page> serves <page>.html;
#   - names not embedded are the API's 404 (README.md, embed.cmake, "..",
#     a missing one); POST / is 405 with Allow; OPTIONS / 204;
#   - the API keeps its paths (/health).
#
#   bash tests/integration/test_web_files.sh   (from the repo, or by ctest)
#
# Exit 77 (skipped) without bookd or curl.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
test_setup test_web_files curl

env -u DATABASE_URL BOOKD_LISTEN=127.0.0.1:0 BOOKD_BINARY_LISTEN=127.0.0.1:0 \
  BOOKD_DATA_DIR=$tmp/data BOOKD_DEMO=1 "$bookd" >"$tmp/bookd.log" 2>&1 &
pid=$!
line=$(started_line "$tmp/bookd.log") || { echo "bookd did not start:"; cat "$tmp/bookd.log"; exit 1; }
URL=$(printf '%s\n' "$line" | grep -o 'http://[0-9.:]*')
echo "bookd at $URL"

# get <name> <curl args...>: headers into $tmp/<name>.h, body into
# $tmp/<name>.b, the status printed.
get() {
  local name=$1; shift
  curl -s -D "$tmp/$name.h" -o "$tmp/$name.b" -w '%{http_code}' "$@"
}
# header <name> <header>: its value (first one, no CR).
header() {
  grep -i "^$2:" "$tmp/$1.h" | head -1 | sed 's/^[^:]*: *//' | tr -d '\r'
}

st=$(get root "$URL/")
check "GET /: 200 ($st)" [ "$st" = 200 ]
check "GET /: web/index.html's bytes" cmp -s "$tmp/root.b" "$root/web/index.html"
check "GET /: text/html" [ "$(header root Content-Type)" = "text/html; charset=utf-8" ]
etag=$(header root ETag)
check "GET /: a strong ETag ($etag)" grep -qE '^"[0-9a-f]{16}"$' <<<"$etag"
check "GET /: the tag is the file's SHA-256" \
  [ "$etag" = "\"$(sha256sum "$root/web/index.html" | head -c 16)\"" ]
check "GET /: Cache-Control no-cache" [ "$(header root Cache-Control)" = no-cache ]
check "GET /: CSP default-src 'self'" grep -q "^default-src 'self';" <<<"$(header root Content-Security-Policy)"
check "GET /: nosniff" [ "$(header root X-Content-Type-Options)" = nosniff ]

st=$(get head -I "$URL/")
check "HEAD /: 200 ($st)" [ "$st" = 200 ]
check "HEAD /: the same ETag" [ "$(header head ETag)" = "$etag" ]
check "HEAD /: the body's length" \
  [ "$(header head Content-Length)" = "$(stat -c %s "$root/web/index.html")" ]

for inm in "$etag" "W/$etag" "\"0000000000000000\", $etag" '*'; do
  st=$(get inm "$URL/" -H "If-None-Match: $inm")
  check "If-None-Match: $inm: 304 ($st)" [ "$st" = 304 ]
  check "If-None-Match: $inm: no body" [ ! -s "$tmp/inm.b" ]
  check "If-None-Match: $inm: the ETag" [ "$(header inm ETag)" = "$etag" ]
done
st=$(get inm2 "$URL/" -H 'If-None-Match: "0000000000000000"')
check "If-None-Match: another tag: 200 ($st)" [ "$st" = 200 ]

# Every embedded file, with its type.
n=0
while IFS= read -r f; do
  name=${f#"$root/web/"}
  case "$name" in
    *.html) type="text/html; charset=utf-8" ;;
    *.css) type="text/css; charset=utf-8" ;;
    *.js) type="text/javascript; charset=utf-8" ;;
    *.svg) type="image/svg+xml" ;;
    *.png) type="image/png" ;;
    *.ico) type="image/x-icon" ;;
    *.json) type="application/json" ;;
    *.txt) type="text/plain; charset=utf-8" ;;
    *) continue ;;
  esac
  n=$((n + 1))
  st=$(get f "$URL/web/$name")
  if [ "$st" = 200 ] && cmp -s "$tmp/f.b" "$f" &&
     [ "$(header f Content-Type)" = "$type" ]; then ok "/web/$name: 200, $type, its bytes"
  else bad "/web/$name: $st $(header f Content-Type)"; fi
  case "$name" in
    */*) ;;
    *.html)
      st=$(get p "$URL/${name%.html}")
      if [ "$st" = 200 ] && cmp -s "$tmp/p.b" "$f"; then ok "/${name%.html}: $name"
      else bad "/${name%.html}: $st"; fi ;;
  esac
done < <(find "$root/web" -type f | sort)
check "some files served ($n)" [ "$n" -ge 3 ]

for path in /web/README.md /web/embed.cmake /web/../README.md /web/nope.js \
            /web/ /nope /index.html /web//index.html; do
  st=$(get nf "$URL$path" --path-as-is)
  if [ "$st" = 404 ] && grep -q '"not_found"' "$tmp/nf.b"; then ok "$path: 404 not_found"
  else bad "$path: $st $(head -c 100 "$tmp/nf.b")"; fi
done

st=$(get post -X POST "$URL/" -d x)
check "POST /: 405 ($st)" [ "$st" = 405 ]
check "POST /: Allow" [ "$(header post Allow)" = "GET, HEAD, OPTIONS" ]
st=$(get opt -X OPTIONS "$URL/web/app.js")
check "OPTIONS /web/app.js: 204 ($st)" [ "$st" = 204 ]
st=$(get health "$URL/health")
check "/health: still the API's ($st)" [ "$st" = 200 ] && grep -q '"ok"' "$tmp/health.b"

stop_pid
echo "test_web_files: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
