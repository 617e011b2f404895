#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for tests.
#
#   eval "$(scripts/pg.sh start)"      # starts it, exports DATABASE_URL, BOOKD_PG_DIR
#   ...
#   scripts/pg.sh stop "$BOOKD_PG_DIR" # stops it and removes its directory
#
# The cluster lives in a fresh directory (mktemp -d), listens on a unix socket
# in that directory only (set BOOKD_PG_TCP=1 to also listen on 127.0.0.1, on a
# free port), trusts local connections, runs with fsync off (test data only)
# and has a database `bookd_test`. BOOKD_PG_DURABLE=1 starts it durable
# instead (fsync, full_page_writes and synchronous_commit on) with the seed's
# "Database Tuning" (max_connections 200, shared_buffers 256MB, ...): the
# PostgreSQL baseline for bookbench. As root, the server runs as the `postgres`
# user (runuser); otherwise as the calling user. Only `export ...` lines go to
# stdout, so the output can be eval'ed; progress and errors go to stderr.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DB_NAME=${BOOKD_PG_DB:-bookd_test}
MARKER=.bookd-pg # only a directory holding this file is ever removed

die() { echo "pg.sh: $*" >&2; exit 1; }

as_owner() { # run a command as the cluster's owner
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() { # first port from 54320 nobody listens on (IPv4 loopback)
  local p
  for p in $(seq 54320 54999); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  die "no free port in 54320-54999"
}

start() {
  [ -x "$PG_BIN/initdb" ] || die "no PostgreSQL binaries in $PG_BIN (apt-get install postgresql-15)"
  local dir port listen=""
  dir=$(mktemp -d "${TMPDIR:-/tmp}/bookd-pg.XXXXXX")
  touch "$dir/$MARKER"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "no postgres user"
    chown -R postgres: "$dir"
  fi
  chmod 700 "$dir"
  port=5432 # the socket file is per directory: any port is free there
  if [ "${BOOKD_PG_TCP:-0}" = 1 ]; then port=$(free_port); listen=127.0.0.1; fi

  as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust \
    -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; die "initdb failed ($dir)"; }
  # pg_ctl hands -o to a shell: one line.
  local settings="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  settings+=" -c max_connections=50"
  if [ "${BOOKD_PG_DURABLE:-0}" = 1 ]; then
    settings="-c max_connections=200 -c shared_buffers=256MB"
    settings+=" -c effective_cache_size=1GB -c work_mem=4MB -c maintenance_work_mem=64MB"
  fi
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses='$listen' $settings \
        -c timezone=UTC" start >&2 ||
    { cat "$dir/server.log" >&2; die "server did not start ($dir)"; }
  as_owner "$PG_BIN/psql" -X -q -h "$dir" -p "$port" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -c "CREATE DATABASE $DB_NAME" >&2 ||
    die "createdb failed ($dir)"

  echo "export BOOKD_PG_DIR='$dir'"
  echo "export DATABASE_URL='postgresql://postgres@/$DB_NAME?host=$dir&port=$port'"
  if [ -n "$listen" ]; then
    echo "export DATABASE_URL_TCP='postgresql://postgres@127.0.0.1:$port/$DB_NAME'"
  fi
  echo "pg.sh: PostgreSQL 15 up in $dir (stop: scripts/pg.sh stop $dir)" >&2
}

stop() {
  local dir=${1:-${BOOKD_PG_DIR:-}}
  [ -n "$dir" ] || die "usage: pg.sh stop <dir>"
  [ -f "$dir/$MARKER" ] || die "$dir is not a pg.sh cluster directory"
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2 ||
      echo "pg.sh: pg_ctl stop failed, removing anyway" >&2
  fi
  rm -rf -- "$dir"
  echo "pg.sh: stopped and removed $dir" >&2
}

case "${1:-}" in
  start) start ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start | stop <dir>" >&2; exit 2 ;;
esac
