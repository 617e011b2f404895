#!/usr/bin/env bash
# All tests: set up, then build and run ctest in the Release build and in the
# ASan+UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
for kind in release asan; do
  scripts/build.sh "$kind"
  dir=build; [ "$kind" = asan ] && dir=build-asan
  echo "== ctest ($kind)"
  (cd "$dir" && ctest --output-on-failure -j2 --timeout 1200)
done
