#!/usr/bin/env bash
# Style checks that CI runs before building: every tracked C file as
# .clang-format lays it out (clang-format 14, --dry-run -Werror: prints each
# place and fails), and no include circle between modules
# (scripts/check-includes.py). `scripts/check-style.sh --fix` reformats
# the files in place instead of failing.
set -euo pipefail
cd "$(dirname "$0")/.."
cf=$(command -v clang-format-14 || command -v clang-format)
mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "${1:-}" = --fix ]; then
  "$cf" -i "${files[@]}"
else
  "$cf" --dry-run -Werror "${files[@]}"
fi
python3 scripts/check-includes.py
