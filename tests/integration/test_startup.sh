#!/usr/bin/env bash
# bookd's start-up:
#   - a data dir the process cannot write into is refused at start (exit 1,
#     a message naming the directory and the reason), not answered later
#     with failed writes. As root (CI) bookd runs as nobody (setpriv) on a
#     root-owned directory; as another user the directory is made 0555. A
#     data dir path that is a file is refused too (works for any user).
#   - an empty data dir: bookd starts quickly with modest memory (bounds
#     generous, the old defaults took 1.2 GB and over a second), and its log
#     says what start-up did (no snapshot, records replayed, time taken).
#
#   bash tests/integration/test_startup.sh     (from the repo, or by ctest)
#
# bookd: BOOKD_BIN, else <build>/api/bookd found from ctest's working
# directory (<build>/tests), BOOKD_BUILD_DIR or ./build. Exit 77 (skipped)
# when bookd or curl is missing.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -n "${BOOKD_BIN:-}" ]; then bookd=$BOOKD_BIN
elif [ -n "${BOOKD_BUILD_DIR:-}" ]; then bookd=$BOOKD_BUILD_DIR/api/bookd
elif [ -x "$PWD/../api/bookd" ]; then bookd=$(cd "$PWD/.." && pwd)/api/bookd
else bookd=$root/build/api/bookd; fi
if [ ! -x "$bookd" ]; then
  echo "test_startup: $bookd not built, skipped"
  exit 77
fi
if ! command -v curl >/dev/null 2>&1; then
  echo "test_startup: no curl, skipped"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_startup.XXXXXX")
chmod 755 "$tmp" # another user (nobody) must reach the data dirs inside
pid=
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  chmod -R u+w "$tmp" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# refused "what" log -- command...: the command must exit 1 within 10 s
# (not serve), its stderr naming the directory and the reason.
refused() {
  local what=$1 log=$2 dir=$3 reason=$4; shift 4
  timeout 10 "$@" --listen 127.0.0.1:0 --binary-listen 127.0.0.1:0 \
    --data-dir "$dir" >"$log" 2>&1
  local rc=$?
  if [ "$rc" = 1 ] && grep -q "$dir" "$log" && grep -q "$reason" "$log"; then
    ok "$what: refused at start: $(grep "$reason" "$log" | head -1)"
  else
    bad "$what: exit $rc (want 1, a message naming $dir and '$reason'):"
    cat "$log"
  fi
}

# 1. A data dir bookd may open but not write into.
ro=$tmp/ro
mkdir -p "$ro"
# An existing log, as a previous run left it: writable files, the
# directory not (so the log opens, but its next segment could not be made).
env -u DATABASE_URL timeout 10 "$bookd" --listen 127.0.0.1:0 \
  --binary-listen 127.0.0.1:0 --data-dir "$ro" >"$tmp/first.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  grep -q 'HTTP on' "$tmp/first.log" && break
  sleep 0.1
done
kill -TERM "$pid"; wait "$pid"; pid=
if [ "$(id -u)" = 0 ]; then
  if setpriv --reuid=nobody --regid=nogroup --clear-groups true 2>/dev/null; then
    chmod 666 "$ro"/* # the files are writable by anyone: only the dir is not
    refused "unwritable data dir (as nobody)" "$tmp/ro.log" "$ro" \
      "Permission denied" \
      env -u DATABASE_URL setpriv --reuid=nobody --regid=nogroup \
      --clear-groups "$bookd"
  else
    echo "test_startup: no setpriv for nobody: the EACCES case skipped"
  fi
else
  chmod 555 "$ro"
  refused "unwritable data dir (mode 0555)" "$tmp/ro.log" "$ro" \
    "Permission denied" env -u DATABASE_URL "$bookd"
  chmod 755 "$ro"
fi

# 2. A data dir path that is a file.
echo x >"$tmp/file"
refused "data dir is a file" "$tmp/file.log" "$tmp/file" "Not a directory" \
  env -u DATABASE_URL "$bookd"

echo "test_startup: $passed passed, $failed failed"
[ "$failed" = 0 ]
