# tests/integration/lib.sh: what the shell tests share, sourced by them
# after `set -uo pipefail`:
#   find_bookd NAME   sets bookd: BOOKD_BIN, else <build>/api/bookd from
#                     BOOKD_BUILD_DIR, ctest's working directory
#                     (<build>/tests) or ./build; exit 77 (skipped) if it is
#                     not built
#   need_tools NAME TOOL...  exit 77 naming the first tool missing
#   ok, bad, check    count and print results in passed and failed
#   stop_pid          TERM the background bookd in $pid, wait, clear pid
#   stop_status       the same, returning bookd's exit status
#   test_setup NAME TOOL...  find_bookd and need_tools, then tmp: a fresh
#                     temp dir named after the test, and cleanup (stop_pid,
#                     tmp removed; a test may define its own) run on EXIT
#   wait_for FILE PATTERN TRIES NAP  polls (TRIES times, NAP s apart) until
#                     PATTERN is in FILE; 1 if not, or if $pid exited first
#   started_line FILE [N]  waits (30 s) for bookd's N-th (default first)
#                     start-up line "HTTP on http://..." in FILE and prints
#                     it; 1 if there is none, or $pid exited first
#   db_url NAME       DATABASE_URL (a URL or key=value words) naming the
#                     database NAME instead of its own
#   db_make NAME      creates the database NAME next to DATABASE_URL's and
#                     prints its URL; 1 (with psql's error) if it cannot
#   log_not_logfmt FILE  prints the lines of bookd's log FILE that are not
#                     evlog's logfmt (time=<RFC 3339 UTC> level=<level>
#                     msg=...), leaving out pg_lib.sh's "--- bookd start"
#                     marks and stdout's start-up line; 1 if there are any
#   keep_logs NAME DIR  with BOOKD_TEST_LOG_DIR set (ctest sets it to
#                     <build>/test-logs), copies every *.log under DIR to
#                     $BOOKD_TEST_LOG_DIR/NAME/ before DIR is removed, for
#                     tests/integration/logs_secrets.sh; cleanup does it

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

stop_status() {
  local rc
  kill -TERM "$pid"
  wait "$pid"
  rc=$?
  pid=
  return $rc
}

db_url() {
  case "$DATABASE_URL" in
    postgres://* | postgresql://*)
      printf '%s' "$DATABASE_URL" | sed -E "s#^(postgres(ql)?://[^/?]*)(/[^?]*)?#\1/$1#" ;;
    *) printf '%s dbname=%s' "$DATABASE_URL" "$1" ;;
  esac
}

db_make() {
  psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $1" \
    >/dev/null && db_url "$1"
}

log_not_logfmt() {
  ! grep -avE '^(time=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z level=(debug|info|warn|error) msg=|--- bookd start$|bookd: HTTP on http://)' "$1"
}

keep_logs() {
  local name=$1 dir=$2 f to
  [ -n "${BOOKD_TEST_LOG_DIR:-}" ] && [ -d "$dir" ] || return 0
  to=$BOOKD_TEST_LOG_DIR/$name
  mkdir -p "$to"
  find "$dir" -name '*.log*' -type f -size -64M 2>/dev/null |
    while IFS= read -r f; do
      cp "$f" "$to/$(printf '%s' "${f#"$dir"/}" | tr / _)"
    done
}

test_name=$(basename "$0" .sh)
cleanup() {
  stop_pid
  keep_logs "$test_name" "$tmp"
  rm -rf "$tmp"
}

test_setup() {
  find_bookd "$1"
  need_tools "$@"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  trap cleanup EXIT
}

wait_for() {
  local file=$1 pattern=$2 tries=$3 nap=$4
  for _ in $(seq 1 "$tries"); do
    grep -q "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep "$nap"
  done
  return 1
}

started_line() {
  local file=$1 n=${2:-1} line
  for _ in $(seq 1 300); do
    line=$(grep -a 'HTTP on http://' "$file" | sed -n "${n}p")
    if [ -n "$line" ]; then
      printf '%s\n' "$line"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
