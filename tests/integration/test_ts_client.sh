#!/usr/bin/env bash
# The TypeScript client (clients/ts, issue 18) against a running bookd: its
# types generated from docs/openapi.yaml (openapi-typescript), the client and
# its test compiled with tsc (strict: a call that does not match the document
# fails here), then clients/ts/test/client.test.ts under node's test runner
# against bookd on 127.0.0.1 (BOOKD_ADDRESS_RATE=5 so the anon key meets
# its 429): events created and listed, a booking made, read and cancelled,
# a 409 and a 429 as typed errors.
#
#   bash tests/integration/test_ts_client.sh   (from the repo, or by ctest)
#
# Needs node and npm (else exit 77, skipped) and the npm registry (npm ci
# with clients/ts/package-lock.json, tests/integration/npm_lib.sh).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/npm_lib.sh"
test_setup test_ts_client
npm_deps test_ts_client || { echo "test_ts_client: npm ci failed"; exit 1; }

if (cd "$ts_dir" && rm -rf dist && npx --no-install tsc -p .) >"$tmp/tsc" 2>&1; then
  ok "tsc: the client and its test type-check against the generated types"
else
  bad "tsc:"; cat "$tmp/tsc"
  exit 1
fi

SVC=svc-$RANDOM$RANDOM
ANON=anon-$RANDOM$RANDOM
env -u DATABASE_URL BOOKD_SERVICE_KEY=$SVC BOOKD_ANON_KEY=$ANON \
  BOOKD_LISTEN=127.0.0.1:0 BOOKD_BINARY_LISTEN=127.0.0.1:0 \
  BOOKD_DATA_DIR=$tmp/data BOOKD_ADDRESS_RATE=5 \
  "$bookd" >"$tmp/bookd.log" 2>&1 &
pid=$!
URL=$(started_line "$tmp/bookd.log" | grep -o 'http://[0-9.:]*')
[ -n "$URL" ] || { echo "test_ts_client: bookd did not start:"; cat "$tmp/bookd.log"; exit 1; }

if (cd "$ts_dir" && BOOKD_URL=$URL BOOKD_SERVICE_KEY=$SVC BOOKD_ANON_KEY=$ANON \
      node --test dist/test/client.test.js) >"$tmp/node" 2>&1; then
  ok "node --test: $(grep -E '^# (pass|tests)' "$tmp/node" | tr '\n' ' ')"
else
  bad "node --test:"; cat "$tmp/node"
fi

echo "test_ts_client: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
