#!/usr/bin/env bash
# ctest's clients_ts_deps (the fixture test_openapi and test_ts_client
# require): the TypeScript client's npm packages into <build>/clients-ts
# (tests/integration/npm_lib.sh: npm ci from the registry with
# clients/ts/package-lock.json), so the tests' own time is theirs. Exit 77
# (skipped) without node or npm.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
. "$here/npm_lib.sh"
find_bookd clients_ts_deps
npm_deps clients_ts_deps || { echo "clients_ts_deps: npm ci failed"; exit 1; }
echo "clients_ts_deps: $ts_dir ready"
