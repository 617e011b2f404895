# tests/integration/lib.sh: what the shell tests share, sourced by them
# after `set -uo pipefail`:
#   find_bookd NAME   sets bookd: BOOKD_BIN, else <build>/api/bookd from
#                     BOOKD_BUILD_DIR, ctest's working directory
#                     (<build>/tests) or ./build; exit 77 (skipped) if it is
#                     not built
#   need_tools NAME TOOL...  exit 77 naming the first tool missing
#   ok, bad, check    count and print results in passed and failed
#   stop_pid          TERM the background bookd in $pid, wait, clear pid

lib_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

find_bookd() {
  if [ -n "${BOOKD_BIN:-}" ]; then bookd=$BOOKD_BIN
  elif [ -n "${BOOKD_BUILD_DIR:-}" ]; then bookd=$BOOKD_BUILD_DIR/api/bookd
  elif [ -x "$PWD/../api/bookd" ]; then bookd=$(cd "$PWD/.." && pwd)/api/bookd
  else bookd=$lib_root/build/api/bookd; fi
  if [ ! -x "$bookd" ]; then
    echo "$1: $bookd not built, skipped"
    exit 77
  fi
}

need_tools() {
  local name=$1 tool; shift
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "$name: no $tool, skipped"
      exit 77
    fi
  done
}

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
check() { # check "what" test-args...
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

pid=
stop_pid() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  pid=
}
