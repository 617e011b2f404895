# tests/integration/pg_lib.sh: what the shell tests that run bookd with
# replication into a real PostgreSQL share, sourced after lib.sh:
#   pg_need NAME      exit 77 without DATABASE_URL or psql
#   db_create NAME    a fresh database NAME_<pid> next to DATABASE_URL's,
#                     its URL in DB (dropped on EXIT unless BOOKD_KEEP_DB=1)
#   q SQL             one value (or rows, |-separated) from DB
#   bookd_start LOG [ARGS...]  bookd on free ports, data in $tmp/data,
#                     replicating into DB, with the service key $SVC: sets pid
#                     and URL; exit 1 if it does not start
#   svc METHOD PATH [curl args]  a request with the service key: $st, $body
#   catalog CAPACITY WAITLIST  an org, a location, an instructor and a daily
#                     series: EVENTS holds its first event ids (start order)
#   book EVENT CUSTOMER  a booking (Idempotency-Key: the customer and event)
#   wait_rows SQL EXPECTED  polls (10 s) until SQL gives EXPECTED
#   caught_up [TRIES]  waits (0.1 s apart, 300 by default) until bookd's
#                     replication has applied everything durable

pg_need() {
  if [ -z "${DATABASE_URL:-}" ]; then
    echo "$1: DATABASE_URL is not set, skipped (eval \"\$(scripts/pg.sh start)\")"
    exit 77
  fi
  need_tools "$@" psql
}

pg_dbs=()
pg_cleanup() {
  stop_pid
  if [ "${BOOKD_KEEP_DB:-0}" != 1 ]; then
    for d in "${pg_dbs[@]}"; do
      psql "$DATABASE_URL" -X -q -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" \
        >/dev/null 2>&1
    done
  fi
  keep_logs "$test_name" "$tmp"
  rm -rf "$tmp"
}

db_create() {
  local name=$1_$$
  DB=$(db_make "$name") || { echo "cannot create database $name"; exit 1; }
  pg_dbs+=("$name")
  trap pg_cleanup EXIT
}

export PGOPTIONS="--client-min-messages=warning"
q() { psql "$DB" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

SVC=svc-$RANDOM$RANDOM
bookd_start() {
  local log=$1 n; shift
  echo "--- bookd start" >>"$log"
  BOOKD_SERVICE_KEY=$SVC BOOKD_LISTEN=127.0.0.1:0 \
  BOOKD_BINARY_LISTEN=127.0.0.1:0 BOOKD_DATA_DIR=$tmp/data DATABASE_URL=$DB \
    "$bookd" "$@" >>"$log" 2>&1 &
  pid=$!
  n=$(grep -c '^--- bookd start' "$log")
  URL=$(started_line "$log" "$n" | grep -o 'http://[0-9.:]*')
  if [ -z "$URL" ]; then
    echo "bookd did not start:"; cat "$log"
    exit 1
  fi
}

svc() {
  local m=$1 p=$2; shift 2
  st=$(curl -s -o "$tmp/b" -w '%{http_code}' -X "$m" \
    -H "Authorization: Bearer $SVC" "$@" "$URL$p")
  body=$(cat "$tmp/b")
}
json() { svc "$1" "$2" -H 'Content-Type: application/json' -d "$3"; }

catalog() {
  local cap=$1 wl=$2 today
  today=$(date -u +%F)
  json POST /v1/orgs '{"name":"Studio","timezone":"UTC"}'
  json POST /v1/locations '{"org_id":"1","name":"Hall"}'
  json POST /v1/instructors '{"org_id":"1","name":"Sam"}'
  json POST /v1/series "{\"org_id\":\"1\",\"location_id\":\"1\",\"instructor_id\":\"1\",\"title\":\"Yoga\",\"capacity\":$cap,\"waitlist_capacity\":$wl,\"timezone\":\"UTC\",\"weekdays\":[\"MO\",\"TU\",\"WE\",\"TH\",\"FR\",\"SA\",\"SU\"],\"start_time\":\"23:59\",\"duration_min\":1,\"first_date\":\"$today\"}"
  [ "$st" = 201 ] || { echo "series: $st $body"; exit 1; }
  svc GET "/v1/events?org_id=1&from=$(date -u -d tomorrow +%F)T00:00:00Z&limit=20"
  EVENTS=($(printf '%s' "$body" | jq -r '.events[].id'))
  [ "${#EVENTS[@]}" -ge 10 ] || { echo "events: $body"; exit 1; }
}

book() {
  svc POST "/v1/events/$1/bookings" -H "Idempotency-Key: b-$1-$2" \
    -H 'Content-Type: application/json' -d "{\"customer_id\":\"$2\"}"
}

caught_up() {
  local tries=${1:-300}
  for _ in $(seq 1 "$tries"); do
    svc GET /v1/admin/status
    if [ "$st" = 200 ] &&
      [ "$(printf '%s' "$body" | jq -r '.replication.state')" = streaming ] &&
      [ "$(printf '%s' "$body" | jq -r '.replication.lag_records')" = 0 ]; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

wait_rows() { # wait_rows SQL EXPECTED: polls (10 s) until SQL gives EXPECTED
  local got
  for _ in $(seq 1 100); do
    got=$(q "$1" 2>&1)
    [ "$got" = "$2" ] && return 0
    sleep 0.1
  done
  echo "     expected [$2], got [$got]" >&2
  return 1
}
