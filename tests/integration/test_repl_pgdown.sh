#!/usr/bin/env bash
# The replicator with PostgreSQL stopped under load (pg_ctl stop -m
# immediate), then started again: it must catch up with nothing lost or
# doubled (test_repl_faults's "pgdown" case, row for row against the core).
#
# Stopping a cluster would break the other tests sharing DATABASE_URL's, so
# this one starts its own throwaway cluster (scripts/pg.sh) and stops it at
# the end. Skipped (77) without DATABASE_URL (no PostgreSQL for tests), or
# without the test_repl_faults binary (run from the build's tests/ directory, as
# ctest does, or set TEST_REPL_BIN).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${TEST_REPL_BIN:-$PWD/test_repl_faults}

if [ -z "${DATABASE_URL:-}" ]; then
  echo "test_repl_pgdown: DATABASE_URL is not set, skipped"; exit 77
fi
if [ ! -x "$bin" ]; then
  echo "test_repl_pgdown: no $bin, skipped"; exit 77
fi
env_lines=$("$root/scripts/pg.sh" start) || { echo "test_repl_pgdown: no cluster"; exit 1; }
eval "$env_lines"
trap '"$root/scripts/pg.sh" stop "$BOOKD_PG_DIR"' EXIT
"$bin" pgdown
