#!/usr/bin/env bash
# The docs carry the whole contract and their examples run as written.
#
#   1. No tracked file points outside the repo (to a sibling "shared" tree or
#      its spec file): the project carries its own contract in docs/.
#   2. Every flag and environment variable of `bookd --help` is in
#      docs/operations.md.
#   3. Every example in README.md and docs/*.md is marked, and runs:
#      - a block fenced with "```sh example" holds shell lines (curl,
#        bookctl, variable assignments). The blocks of one file run in order
#        in one bash, against a fresh bookd of their own (temp data dir, free
#        ports; the keys the docs name: service key svc-key, anon key
#        anon-key, JWT secret jwt-example, Stripe webhook secret
#        whsec_example). The docs' addresses
#        127.0.0.1:8080 and 127.0.0.1:7070 are replaced by the real ones and
#        build/api/ by the build's. A curl line must answer the status its
#        comment `# -> 201` names (then the text after it must be in the
#        body), else a 2xx; any other line must exit 0, or the status its
#        comment `# -> exit 1` names (then the text after it must be in its
#        output).
#      - a block fenced with "```sql example" runs in psql (ON_ERROR_STOP)
#        on the database that file's bookd replicates into, once it caught
#        up. A file with SQL examples runs only with DATABASE_URL (scripts/
#        pg.sh); without it, that file is skipped and said so.
#      - a line that looks like an example (starts with curl, bookctl,
#        build/api/bookctl, SELECT) outside such a block fails: nothing
#        escapes the run.
#   (The binary protocol's frames in docs/protocol.md are run by
#   tests/unit/test_docs_bin.c.)
#
#   bash tests/integration/test_docs.sh     (from the repo, or by ctest)
#
# bookd: BOOKD_BIN, else <build>/api/bookd from ctest's working directory
# (<build>/tests), BOOKD_BUILD_DIR or ./build. Parts 2 and 3 are skipped
# (exit 77 if part 1 passed) without bookd, curl, jq or openssl.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
if [ -n "${BOOKD_BIN:-}" ]; then bookd=$BOOKD_BIN
elif [ -n "${BOOKD_BUILD_DIR:-}" ]; then bookd=$BOOKD_BUILD_DIR/api/bookd
elif [ -x "$PWD/../api/bookd" ]; then bookd=$(cd "$PWD/.." && pwd)/api/bookd
else bookd=$root/build/api/bookd; fi
build=$(cd "$(dirname "$bookd")/.." 2>/dev/null && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_docs.XXXXXX")
pid= db=
cleanup() {
  stop_bookd
  keep_logs test_docs "$tmp"
  rm -rf "$tmp"
}
stop_bookd() {
  stop_pid
  if [ -n "$db" ]; then
    psql "$DATABASE_URL" -X -q -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
    db=
  fi
}
trap cleanup EXIT

# ---- 1. self-contained -----------------------------------------------------
cd "$root" || exit 1
outside='\.\./shared|SPEC'
outside+='\.md' # split, so that this file does not name it
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
  hits=$(git -C "$root" ls-files -z | xargs -0 grep -nE "$outside" -- 2>/dev/null)
else
  hits=$(grep -rnE "$outside" --exclude-dir=build\* --exclude-dir=.git . 2>/dev/null)
fi
if [ -z "$hits" ]; then ok "no tracked file points outside the repo"
else bad "files point outside the repo:"; echo "$hits" | head -20; fi
for f in README.md docs/contract.md docs/openapi.yaml docs/protocol.md docs/operations.md \
         docs/replication.md; do
  [ -s "$f" ] && ok "$f is there" || bad "$f missing"
done

# ---- 3a. every example is marked ---------------------------------------------
# lines outside "```sh example" / "```sql example" blocks that look like one
unmarked=$(awk '
  FNR == 1 { inside = 0 }
  /^```(sh|sql) example$/ { inside = 1; next }
  /^```/ { if (inside) inside = 0; next }
  !inside && /^ *(curl |bookctl |build\/api\/bookctl |SELECT |select )/ { print FILENAME ":" FNR ": " $0 }
' README.md docs/*.md)
if [ -z "$unmarked" ]; then ok "every example in the docs is in a marked block"
else bad "examples outside a marked block:"; echo "$unmarked"; fi
count=$(grep -cE '^```(sh|sql) example$' README.md docs/*.md | awk -F: '{ n += $2 } END { print n }')
if [ "$count" -ge 10 ]; then ok "$count example blocks"; else bad "only $count example blocks"; fi

if [ ! -x "$bookd" ]; then
  echo "test_docs: $bookd not built: examples not run"
  [ "$failed" -eq 0 ] && exit 77 || exit 1
fi
for tool in curl jq openssl; do
  if ! command -v $tool >/dev/null 2>&1; then
    echo "test_docs: no $tool: examples not run"
    [ "$failed" -eq 0 ] && exit 77 || exit 1
  fi
done

# ---- 2. flags documented -----------------------------------------------------
missing=
for w in $("$bookd" --help | grep -oE -- '--[a-z-]+|\[[A-Z_]+\]' | tr -d '[]' | sort -u); do
  grep -qF -- "$w" docs/operations.md || missing+=" $w"
done
if [ -z "$missing" ]; then ok "every flag and variable of bookd --help is in docs/operations.md"
else bad "not in docs/operations.md:$missing"; fi

# ---- 3b. running them ------------------------------------------------------

# start_bookd <file>: a fresh bookd for that file's examples (replicating into
# a fresh database when the file has SQL examples); sets HTTP, BIN, DB_URL.
start_bookd() {
  local name=$1 url=
  rm -rf "$tmp/data"
  if [ -n "${2:-}" ]; then
    db="bookd_docs_$$"
    psql "$DATABASE_URL" -X -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" \
      >/dev/null || { bad "$name: cannot create a database"; db=; return 1; }
    url=$(db_url "$db")
  fi
  DB_URL=$url
  env -u DATABASE_URL ${url:+DATABASE_URL="$url"} BOOKD_SERVICE_KEY=svc-key \
    BOOKD_ANON_KEY=anon-key STRIPE_WEBHOOK_SECRET=whsec_example BOOKD_JWT_SECRET=jwt-example \
    BOOKD_LISTEN=127.0.0.1:0 BOOKD_BINARY_LISTEN=127.0.0.1:0 BOOKD_DATA_DIR="$tmp/data" \
    BOOKD_REFRESH_EVERY=0 "$bookd" >"$tmp/$name.bookd.log" 2>&1 &
  pid=$!
  HTTP= BIN=
  for _ in $(seq 1 300); do
    HTTP=$(grep -ao 'HTTP on http://[0-9.:]*' "$tmp/$name.bookd.log" | sed 's/HTTP on http:\/\///')
    BIN=$(grep -ao 'binary protocol on [0-9.:]*' "$tmp/$name.bookd.log" | sed 's/binary protocol on //')
    [ -n "$HTTP" ] && [ -n "$BIN" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  bad "$name: bookd did not start"; cat "$tmp/$name.bookd.log"; return 1
}

# script_of <file>: the file's example blocks as one bash script, each
# command followed by its check.
script_of() {
  awk -v http="$HTTP" -v bin="$BIN" -v build="$build" -v file="$1" -v q="'" '
    function sub_all(s) {
      gsub(/127\.0\.0\.1:8080/, http, s); gsub(/127\.0\.0\.1:7070/, bin, s)
      gsub(/build\/api\//, build "/api/", s)
      return s
    }
    function flush(   want, text, c, pre) {
      if (cmd == "") return
      want = ""; text = ""
      if (match(cmd, /[ \t]+# -> .*$/)) {
        want = substr(cmd, RSTART, RLENGTH); cmd = substr(cmd, 1, RSTART - 1)
        sub(/^[ \t]+# -> /, "", want)
        if (want ~ /^exit /) { want = substr(want, 6); pre = "exit " } else pre = ""
        if (match(want, / /)) { text = substr(want, RSTART + 1); want = substr(want, 1, RSTART - 1) }
        want = pre want
      }
      c = sub_all(cmd)
      printf "echo %s\n", q "--- " file ":" start q
      if (c ~ /^curl /) {
        sub(/^curl /, "__curl ", c)
        printf "%s\n__check_http %d %s %s\n", c, start, q want q, q text q
      } else {
        printf "{ %s\n} >\"$__tmp/body\" 2>&1\n__check_exit $? %d %s %s\n", c, start, q want q, q text q
      }
      cmd = ""
    }
    /^```sh example$/ { mode = "sh"; next }
    /^```sql example$/ { mode = "sql"; printf "__sql %d <<%s\n", FNR + 1, q "__SQL__" q; next }
    /^```/ && mode != "" {
      if (mode == "sh") flush(); else print "__SQL__"
      mode = ""; next
    }
    mode == "sql" { print; next }
    mode == "sh" {
      if (cmd == "") { if ($0 ~ /^[ \t]*(#|$)/) next; start = FNR; cmd = $0 }
      else cmd = cmd "\n" $0
      if ($0 !~ /\\$/) flush()
    }
  ' "$1"
}

# run_file <file>: its examples against a fresh bookd.
run_file() {
  local f=$1 name sql=
  name=$(basename "$f" .md)
  grep -q '^```sh example$\|^```sql example$' "$f" || return 0
  if grep -q '^```sql example$' "$f"; then
    if [ -z "${DATABASE_URL:-}" ] || ! command -v psql >/dev/null 2>&1; then
      echo "skip $f: its SQL examples need DATABASE_URL (scripts/pg.sh start)"
      return 0
    fi
    sql=1
  fi
  start_bookd "$name" $sql || return
  {
    cat <<'EOF'
set -u
__fails=0 __runs=0
__curl() { rm -f "$__tmp/body"; command curl "$@" -o "$__tmp/body" -w '%{http_code}' >"$__tmp/status"; }
__check_http() { # line want text
  local st; st=$(cat "$__tmp/status" 2>/dev/null)
  __runs=$((__runs + 1))
  if { [ -n "$2" ] && [ "$st" = "$2" ]; } || { [ -z "$2" ] && [ "${st#2}" != "$st" ]; }; then
    if [ -z "$3" ] || grep -qF -- "$3" "$__tmp/body"; then
      echo "    $st $(head -c 150 "$__tmp/body" 2>/dev/null)"; return
    fi
  fi
  __fails=$((__fails + 1))
  echo "FAILED line $1: status $st (want ${2:-2xx}${3:+, with $3}): $(head -c 600 "$__tmp/body" 2>/dev/null)"
}
__check_exit() { # status line want text
  local want=${3#exit}
  want=${want# }
  __runs=$((__runs + 1))
  if [ "$1" = "${want:-0}" ] && { [ -z "$4" ] || grep -qF -- "$4" "$__tmp/body"; }; then
    [ -s "$__tmp/body" ] && echo "    exit $1: $(head -c 150 "$__tmp/body")"
    return
  fi
  __fails=$((__fails + 1))
  echo "FAILED line $2: exit $1 (want ${want:-0}${4:+, with $4}): $(head -c 600 "$__tmp/body")"
}
__sql() { # line; the SQL on stdin, once replication caught up
  local i lag
  for i in $(seq 1 200); do
    lag=$(command curl -s "http://$__http/v1/admin/status" -H 'Authorization: Bearer svc-key' |
          jq -r '"\(.replication.state) \(.replication.lag_records)"')
    [ "$lag" = "streaming 0" ] && break
    sleep 0.1
  done
  __runs=$((__runs + 1))
  if psql "$__db" -X -q -v ON_ERROR_STOP=1 -P pager=off >"$__tmp/sql.out" 2>&1; then
    sed 's/^/    /' "$__tmp/sql.out" | head -n 20
  else
    __fails=$((__fails + 1)); echo "FAILED SQL at line $1 (replication: $lag):"; cat "$__tmp/sql.out"
  fi
}
EOF
    script_of "$f"
    echo 'echo "__result $__runs $__fails"'
  } >"$tmp/$name.sh"
  (cd "$tmp" && __tmp=$tmp __http=$HTTP __db=$DB_URL BOOKD_BINARY_LISTEN=$BIN \
     BOOKD_SERVICE_KEY= bash "$tmp/$name.sh") >"$tmp/$name.out" 2>&1
  local res runs fails
  res=$(grep '^__result ' "$tmp/$name.out" | tail -1)
  runs=$(echo "$res" | cut -d' ' -f2); fails=$(echo "$res" | cut -d' ' -f3)
  if [ -n "$res" ] && [ "$fails" = 0 ] && [ "$runs" -gt 0 ]; then
    ok "$f: $runs examples ran as written"
  else
    bad "$f: ${fails:-?} of ${runs:-?} examples failed"
    grep -B1 -A6 '^FAILED' "$tmp/$name.out" | head -n 80
    [ -n "$res" ] || tail -n 30 "$tmp/$name.out"
  fi
  [ -n "${DOCS_VERBOSE:-}" ] && cat "$tmp/$name.out"
  stop_bookd
}

for f in README.md docs/*.md; do
  run_file "$f"
done

echo "test_docs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
