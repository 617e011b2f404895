#!/usr/bin/env bash
# All tests: set up, check the style (clang-format, no include circle:
# scripts/check-style.sh), start a throwaway PostgreSQL, build and run ctest in the
# Release build and in the ASan+UBSan build, the threaded tests in the
# ThreadSanitizer build, then run each libFuzzer target briefly on its corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== style"
scripts/check-style.sh
# A throwaway PostgreSQL for the integration tests, stopped on the way out.
eval "$(scripts/pg.sh start)"
trap 'scripts/pg.sh stop "$BOOKD_PG_DIR"' EXIT
for kind in release asan; do
  scripts/build.sh "$kind"
  dir=build; [ "$kind" = asan ] && dir=build-asan
  echo "== ctest ($kind)"
  (cd "$dir" && ctest --output-on-failure -j2 --timeout 1200)
done

# ThreadSanitizer: only the tests with threads (network threads, shards,
# the log's writer, slow workers, the replicator, the snapshotter); the
# shell tests run build-tsan/api/bookd (found from ctest's working
# directory). A report fails the test: exit status 66 of the process, or
# the test finds it in bookd's log. test_crash with fewer kill cycles (each
# recovery is slow under TSan; release and asan run all 50).
scripts/build.sh tsan
echo "== ctest (tsan)"
(cd build-tsan && CRASH_CYCLES=15 ctest --output-on-failure -j2 --timeout 1200 \
  -R '^test_(net|node|crash|auth|bin_e2e|bin_e2e_auth|bin_e2e_same|wal_reader|wal_fault|wal_defer|wal_flush|wal_backup|repl_basic|repl_faults|repl_streams|http_e2e|net_e2e|repl_pgdown|jobs|jobs_e2e|core_remind|reminders|payments|notify|seed_import|import_seed)$')

echo "== fuzz (${FUZZ_SECONDS:=30} s each)"
CC=clang cmake -S . -B build-fuzz -DFUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
  "-DCMAKE_C_FLAGS_DEBUG=-g -O1" >/dev/null
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  cmake --build build-fuzz --target "$name" -j"$(nproc)" >/dev/null
  work=$(mktemp -d)
  build-fuzz/tests/fuzz/"$name" -max_total_time="$FUZZ_SECONDS" -max_len=4096 \
    -print_final_stats=1 "$work" "tests/fuzz/corpus/${name#fuzz_}" 2>&1 | tail -n 4
  rm -rf "$work"
done
